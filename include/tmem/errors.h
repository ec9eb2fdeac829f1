/*
 * tmem error codes.
 *
 * Every tmem function that can fail returns an int: 0 or a positive value on
 * success, a negative errno-style code on failure (libuv's convention).  The
 * codes are the Linux errno values, negated, plus two of tmem's own taken
 * from the original Xen ABI (EFROZEN = 1000, EEMPTY = 1001).
 *
 *   TMEM_ENOMEM  -12   the host could not allocate memory for the operation
 *   TMEM_ENOSPC  -28   over the store's budget or the client's cap
 *   TMEM_EPERM    -1   refused: bad pool flags, not an administrator, ...
 *   TMEM_ENODEV  -19   no such pool / client
 *   TMEM_EINVAL  -22   malformed argument
 *   TMEM_ERANGE  -34   numeric value out of range
 *   TMEM_EFROZEN -1000 the client is frozen: puts are refused
 *   TMEM_EEMPTY  -1001 nothing to return (reserved, as in the original)
 */
#ifndef TMEM_ERRORS_H
#define TMEM_ERRORS_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TMEM_EPERM (-EPERM)
#define TMEM_ENOMEM (-ENOMEM)
#define TMEM_ENOSPC (-ENOSPC)
#define TMEM_ENODEV (-ENODEV)
#define TMEM_EINVAL (-EINVAL)
#define TMEM_ERANGE (-ERANGE)
#define TMEM_EEXIST (-EEXIST)
#define TMEM_EAGAIN (-EAGAIN)
#define TMEM_EFROZEN (-1000)
#define TMEM_EEMPTY (-1001)

/* Returns a static, human-readable description of a tmem error code
 * (negative), e.g. "Frozen client (EFROZEN)".  Never returns NULL. */
const char *tmem_strerror(int err);

/* Returns the symbolic name of the code ("ENOSPC", "EFROZEN", ...) or
 * "E?" for an unknown one.  Never returns NULL. */
const char *tmem_errname(int err);

#ifdef __cplusplus
}
#endif
#endif
