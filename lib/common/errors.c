/*
 * tmem_strerror / tmem_errname: words for the negative error codes of
 * <tmem/errors.h>, one table.
 */
#include <tmem/errors.h>

#include <stddef.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} errtab[] = {
    {TMEM_EPERM, "EPERM", "Operation not permitted"},
    {TMEM_ENOMEM, "ENOMEM", "Out of memory"},
    {TMEM_ENOSPC, "ENOSPC", "No space left (budget or cap)"},
    {TMEM_ENODEV, "ENODEV", "No such pool or client"},
    {TMEM_EINVAL, "EINVAL", "Invalid argument"},
    {TMEM_ERANGE, "ERANGE", "Numerical result out of range"},
    {TMEM_EEXIST, "EEXIST", "Already exists"},
    {-EIO, "EIO", "Input/output error"},
    {-EPROTO, "EPROTO", "Protocol error"},
    {-EBADMSG, "EBADMSG", "Bad message"},
    {-EPROTONOSUPPORT, "EPROTONOSUPPORT", "Protocol version not supported"},
    {-ECONNREFUSED, "ECONNREFUSED", "Connection refused"},
    {-ENOENT, "ENOENT", "No such file or directory"},
    {-EACCES, "EACCES", "Permission denied"},
    {-EAGAIN, "EAGAIN", "Resource temporarily unavailable"},
    {-E2BIG, "E2BIG", "Argument list too long"},
    {-EMSGSIZE, "EMSGSIZE", "Message too long"},
    {-EBUSY, "EBUSY", "Device or resource busy"},
    {-ENOTSUP, "ENOTSUP", "Operation not supported"},
    {-ETIMEDOUT, "ETIMEDOUT", "Timed out"},
    {-EPIPE, "EPIPE", "Broken pipe (peer gone)"},
    {TMEM_EFROZEN, "EFROZEN", "Client is frozen"},
    {TMEM_EEMPTY, "EEMPTY", "Nothing there"},
};

static size_t find(int err)
{
    for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (errtab[i].code == err)
            return i;
    return (size_t)-1;
}

const char *tmem_strerror(int err)
{
    size_t i = find(err);
    return i == (size_t)-1 ? "Unknown error" : errtab[i].text;
}

const char *tmem_errname(int err)
{
    size_t i = find(err);
    return i == (size_t)-1 ? "E?" : errtab[i].name;
}
