/* core_int.h — what every file of the core shares and nothing outside core/ includes: the one
 * writer of error messages into a caller's bp_error.
 */
#ifndef BP_CORE_INT_H
#define BP_CORE_INT_H

#include "core/bp.h"

/* Writes a formatted message into err (which may be NULL). Defined in net.c. */
void bpi_set_err(bp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
