/* core_int.h — what the files of the core share and nothing outside core/ includes: the one
 * writer of error messages into a caller's bp_error, and the workspace's layout (made in
 * work.c, used by the passes in net.c).
 */
#ifndef BP_CORE_INT_H
#define BP_CORE_INT_H

#include "core/bp.h"

/* A macro's value as a string literal (limits named in messages). */
#define CORE_STR_(x) #x
#define CORE_STR(x) CORE_STR_(x)

/* Writes a formatted message into err (which may be NULL). Defined in model.c. */
void core_set_error(bp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Arg-max label of one row a of K outputs (the first on ties); K == 1: a >= 0.5. Defined in
 * net.c; bp_predict's labels and bp_evaluate's true classes (of target rows). */
int32_t core_row_label(const double *a, int K);
/* Activations and deltas for a chunk of rows, in one arena (bp_work_new, work.c). */
struct bp_work {
    bp_spec spec;
    int64_t rows;                   /* rows per chunk: min(max_rows, bp_chunk_rows(spec)). An
                                     * m above max_rows still works, in chunks of max_rows;
                                     * results are then only the same as with a bigger
                                     * workspace when max_rows ≥ bp_chunk_rows(spec) (bp.h's
                                     * fixed-chunk promise assumes m ≤ max_rows, which every
                                     * caller here keeps). */
    double *act[BP_MAX_LAYERS];     /* act[l]: rows × s_l, l = 1 .. L-1 (act[0] unused: X) */
    double *scratch;                /* rows × max hidden s_l: δ_l before the g′ product */
    double *outbuf;                 /* rows × s_L: e^{z − max} for softmax */
    double *colsum;                 /* max s_l, l ≥ 1: bias-column sums of the newest δ */
    double *bias;                   /* max s_l, l ≥ 1: Θ_l[:, 0] gathered contiguously */
    double *arena;                  /* owns every buffer above */
    size_t bytes;
};


#endif
