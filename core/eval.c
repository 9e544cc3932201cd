/* eval.c — measuring a trained net and the standardization kept with it (core/bp.h):
 * bp_evaluate (cost, accuracy, confusion, per-class and averaged precision / recall / F1,
 * log-loss, ROC AUC; MSE / MAE / R² for a linear output), and the per-feature transform
 * x' = (x − μ)/σ: fitted on the training rows (bp_standardize_fit), applied to data
 * (bp_standardize_apply) or folded into Θ^(1) for consumers that take raw inputs
 * (bp_fold_standardize).
 *
 * The outputs come from bp_predict (the BLAS forward pass, chunked) and J from bp_cost_grad;
 * the figures are then plain passes over m × s_L numbers.
 */
#include "core/core_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bp_eval_clear(bp_eval *e)
{
    if (!e)
        return;
    free(e->confusion);
    free(e->precision);
    free(e->recall);
    free(e->f1);
    free(e->support);
    memset(e, 0, sizeof *e);
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* Per-class precision / recall / F1 and their macro and support-weighted means. */
static void class_scores(bp_eval *e)
{
    int K = e->K;
    for (int a = 0; a < 3; a++)
        e->macro[a] = e->weighted[a] = 0.0;
    for (int k = 0; k < K; k++) {
        int64_t tp = e->confusion[(int64_t)k * K + k], pred = 0, sup = 0;
        for (int j = 0; j < K; j++) {
            pred += e->confusion[(int64_t)j * K + k];
            sup += e->confusion[(int64_t)k * K + j];
        }
        double p = ratio((double)tp, (double)pred), r = ratio((double)tp, (double)sup);
        double f = ratio(2.0 * p * r, p + r);
        e->precision[k] = p;
        e->recall[k] = r;
        e->f1[k] = f;
        e->support[k] = sup;
        const double v[3] = {p, r, f};
        for (int a = 0; a < 3; a++) {
            e->macro[a] += v[a] / K;
            e->weighted[a] += v[a] * (double)sup / (double)e->m;
        }
    }
}

typedef struct {
    double score;
    int pos;
} scored;

static int by_score(const void *a, const void *b)
{
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

/* ROC AUC by the rank statistic (Mann–Whitney U): tied scores share their mean rank. NaN
 * when one class is empty; -1 out of memory. */
static int roc_auc(double *auc, const double *out, const double *Y, int64_t m, int K_out)
{
    scored *v = malloc((size_t)m * sizeof *v);
    if (!v)
        return -1;
    for (int64_t i = 0; i < m; i++) {
        v[i].score = K_out == 1 ? out[i] : out[i * K_out + 1];
        v[i].pos = core_row_label(Y + i * K_out, K_out) == 1;
    }
    qsort(v, (size_t)m, sizeof *v, by_score);
    double rank_sum = 0;
    int64_t n_pos = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j < m && v[j].score == v[i].score)
            j++;
        double mid = 0.5 * (double)(i + 1 + j); /* mean of ranks i+1 .. j */
        for (int64_t k = i; k < j; k++)
            if (v[k].pos) {
                rank_sum += mid;
                n_pos++;
            }
        i = j;
    }
    int64_t n_neg = m - n_pos;
    *auc = n_pos && n_neg ? (rank_sum - 0.5 * (double)n_pos * (double)(n_pos + 1)) /
                                ((double)n_pos * (double)n_neg)
                          : NAN;
    free(v);
    return 0;
}

/* MSE, MAE, R² of outputs out against Y (m × K). -1 out of memory. */
static int regression_scores(bp_eval *e, const double *out, const double *Y, int64_t m, int K)
{
    double *mean = calloc((size_t)K, sizeof *mean), *ss_res = calloc((size_t)K, sizeof *ss_res);
    double *ss_tot = calloc((size_t)K, sizeof *ss_tot);
    int rc = -1;
    if (!mean || !ss_res || !ss_tot)
        goto cleanup;
    double se = 0, ae = 0;
    for (int64_t i = 0; i < m; i++)
        for (int k = 0; k < K; k++) {
            double d = out[i * K + k] - Y[i * K + k];
            se += d * d;
            ae += fabs(d);
            ss_res[k] += d * d;
            mean[k] += Y[i * K + k];
        }
    for (int k = 0; k < K; k++)
        mean[k] /= (double)m;
    for (int64_t i = 0; i < m; i++)
        for (int k = 0; k < K; k++) {
            double d = Y[i * K + k] - mean[k];
            ss_tot[k] += d * d;
        }
    double r2 = 0;
    for (int k = 0; k < K; k++)
        r2 += ss_tot[k] > 0 ? 1.0 - ss_res[k] / ss_tot[k] : (ss_res[k] == 0 ? 1.0 : 0.0);
    e->mse = se / ((double)m * K);
    e->mae = ae / ((double)m * K);
    e->r2 = r2 / K;
    rc = 0;
cleanup:
    free(mean);
    free(ss_res);
    free(ss_tot);
    return rc;
}

/* Confusion, accuracy, class scores and (K == 2) ROC AUC from the outputs. -1 OOM. */
static int classification_scores(bp_eval *e, const double *out, const int32_t *pred,
                                 const double *Y, int64_t m, int K_out)
{
    int K = e->K;
    e->confusion = calloc((size_t)K * (size_t)K, sizeof *e->confusion);
    e->precision = calloc((size_t)K, sizeof *e->precision);
    e->recall = calloc((size_t)K, sizeof *e->recall);
    e->f1 = calloc((size_t)K, sizeof *e->f1);
    e->support = calloc((size_t)K, sizeof *e->support);
    if (!e->confusion || !e->precision || !e->recall || !e->f1 || !e->support)
        return -1;
    int64_t right = 0;
    for (int64_t i = 0; i < m; i++) {
        int t = core_row_label(Y + i * K_out, K_out);
        e->confusion[(int64_t)t * K + pred[i]]++;
        right += t == pred[i];
    }
    e->accuracy = (double)right / (double)m;
    class_scores(e);
    return K == 2 ? roc_auc(&e->roc_auc, out, Y, m, K_out) : 0;
}

int bp_evaluate(bp_eval *out, bp_work *w, const double *X, const double *Y, const double *theta,
                int64_t m, double lambda, bp_error *err)
{
    const bp_spec *sp = &w->spec;
    int K_out = sp->sizes[sp->n_layers - 1];
    int classify = sp->output != BP_OUT_LINEAR;
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->m = m;
    out->K = classify ? (K_out == 1 ? 2 : K_out) : 0;
    out->log_loss = out->accuracy = out->roc_auc = NAN;
    out->mse = out->mae = out->r2 = NAN;
    double *A = malloc((size_t)m * (size_t)K_out * sizeof *A);   /* m × s_L */
    int32_t *pred = classify ? malloc((size_t)m * sizeof *pred) : NULL; /* m */
    if (!A || (classify && !pred))
        goto cleanup;
    bp_predict(A, pred, w, X, theta, m);
    double data = bp_cost_grad(NULL, w, X, Y, theta, m, 0.0, m);
    out->cost = lambda != 0.0 ? bp_cost_grad(NULL, w, X, Y, theta, m, lambda, m) : data;
    if (classify) {
        out->log_loss = data;
        if (classification_scores(out, A, pred, Y, m, K_out) != 0)
            goto cleanup;
    } else if (regression_scores(out, A, Y, m, K_out) != 0) {
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0) {
        bp_eval_clear(out);
        core_set_error(err, "out of memory evaluating %lld rows", (long long)m);
    }
    free(A);
    free(pred);
    return rc;
}

/* ---- standardization ---- */

void bp_standardize_fit(double *mean, double *sd, const double *X, const unsigned char *skip,
                        int64_t m, int64_t n)
{
    int64_t used = 0;
    memset(mean, 0, (size_t)n * sizeof *mean);
    memset(sd, 0, (size_t)n * sizeof *sd);
    for (int64_t i = 0; i < m; i++) {
        if (skip && skip[i])
            continue;
        used++;
        for (int64_t k = 0; k < n; k++)
            mean[k] += X[i * n + k];
    }
    if (used == 0)
        used = 1;
    for (int64_t k = 0; k < n; k++)
        mean[k] /= (double)used;
    for (int64_t i = 0; i < m; i++) {
        if (skip && skip[i])
            continue;
        for (int64_t k = 0; k < n; k++) {
            double d = X[i * n + k] - mean[k];
            sd[k] += d * d;
        }
    }
    for (int64_t k = 0; k < n; k++) {
        sd[k] = sqrt(sd[k] / (double)used);
        if (!(sd[k] > 0))
            sd[k] = 1.0;
    }
}

void bp_standardize_apply(double *Xout, const double *X, const double *mean, const double *sd,
                          int64_t m, int64_t n)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < n; k++)
            Xout[i * n + k] = (X[i * n + k] - mean[k]) / sd[k];
}

void bp_fold_standardize(double *theta_out, const double *theta, const double *mean,
                         const double *sd, const bp_spec *spec)
{
    int s_in = spec->sizes[0], s_out = spec->sizes[1];
    int64_t P = bp_param_count(spec);
    if (theta_out != theta)
        memcpy(theta_out, theta, (size_t)P * sizeof *theta);
    if (!mean || !sd)
        return; /* no standardization: a plain copy */
    for (int j = 0; j < s_out; j++) {
        const double *row = theta + (int64_t)j * (s_in + 1);       /* Θ^(1)[j, :] */
        double *orow = theta_out + (int64_t)j * (s_in + 1);
        double b = row[0];
        for (int k = 0; k < s_in; k++) {
            double sk = sd[k] != 0 && isfinite(sd[k]) ? sd[k] : 1.0; /* constant: centred */
            double wk = row[1 + k] / sk;
            b -= wk * mean[k];
            orow[1 + k] = wk;
        }
        orow[0] = b;
    }
}
