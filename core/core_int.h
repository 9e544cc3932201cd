/* core_int.h — what the files of the core share and nothing outside core/ includes: the one
 * writer of error messages into a caller's bp_error, and a workspace's spec.
 */
#ifndef BP_CORE_INT_H
#define BP_CORE_INT_H

#include "core/bp.h"

/* Writes a formatted message into err (which may be NULL). Defined in model.c. */
void bpi_set_err(bp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The spec a workspace was made for (borrowed). Defined in net.c. */
const bp_spec *bpi_work_spec(const bp_work *w);

#endif
