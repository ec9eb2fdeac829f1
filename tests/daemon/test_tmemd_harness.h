/* Moved: the harness is tests/lib/tmemd_harness.h, linked into every suite. */
#include "../lib/tmemd_harness.h"
