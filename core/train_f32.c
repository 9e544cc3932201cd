/* train_f32.c — the trainer's float32 rows (training.precision "float32"): the training and
 * validation rows converted once, at bp_trainer_new, into one trainer-owned float32 arena that
 * every pass of the job then reads (core_pass on a BP_FLOAT32 workspace). The weights and
 * the optimizer state stay float64 (master weights): each pass rounds Θ to float32, so the
 * optimizers (optim.c) and the checkpoint image (checkpoint.c) are those of float64.
 */
#include "core/train_int.h"

#include <math.h>

/* dst = src rounded to float32 (n values); -1 at the first value beyond float32's range. */
static int to_f32(float *dst, const double *src, int64_t n, int64_t *bad)
{
    for (int64_t i = 0; i < n; i++) {
        dst[i] = (float)src[i];
        if (!isfinite(dst[i])) {
            *bad = i;
            return -1;
        }
    }
    return 0;
}

/* The rows the passes read: the float64 rows, or (BP_FLOAT32) float32 copies made here,
 * once: a value beyond float32's range is refused (naming it as check_data does). */
int train_pass_rows(bp_trainer *t, bp_error *err)
{
    t->es = t->cfg.precision == BP_FLOAT32 ? sizeof(float) : sizeof(double);
    if (t->cfg.precision != BP_FLOAT32) {
        t->x_tr = t->Xtr, t->y_tr = t->Ytr, t->x_va = t->Xva, t->y_va = t->Yva;
        return 0;
    }
    int64_t ni = t->n_in, no = t->n_out, mt = t->m_train, mv = t->m_val, bad;
    t->own32 = train_alloc(t->m_all * (ni + no), sizeof(float));
    if (!t->own32) {
        core_set_error(err, "out of memory for the float32 copy of %lld rows",
                       (long long)t->m_all);
        return -1;
    }
    float *xt = t->own32, *xv = xt + mt * ni, *yt = xv + mv * ni, *yv = yt + mt * no;
    const char *what = "X";
    int64_t cols = ni;
    if (to_f32(xt, t->Xtr, mt * ni, &bad) != 0 ||
        (mv > 0 && to_f32(xv, t->Xva, mv * ni, &bad) != 0))
        goto range;
    what = "Y";
    cols = no;
    if (to_f32(yt, t->Ytr, mt * no, &bad) != 0 ||
        (mv > 0 && to_f32(yv, t->Yva, mv * no, &bad) != 0))
        goto range;
    t->x_tr = xt, t->y_tr = yt, t->x_va = xv, t->y_va = yv;
    return 0;
range:
    core_set_error(err, "%s: a value (row %lld of the training or validation rows, column %lld) "
                   "is beyond float32's range; use precision float64", what,
                   (long long)(bad / cols), (long long)(bad % cols));
    return -1;
}

