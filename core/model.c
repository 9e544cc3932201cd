/* model.c — the network's description and parameters (core/bp.h): spec validation, the
 * unrolled Θ layout and names, the PRNG and weight initialisation, finite checks, the core's
 * error writer, and the finite-difference gradient check (which needs only the public cost).
 */
#include "core/core_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void core_set_error(bp_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

/* ---- spec ---- */

int bp_spec_validate(const bp_spec *spec, bp_error *err)
{
    if (!spec) {
        core_set_error(err, "network: missing");
        return -1;
    }
    if (spec->n_layers < 2 || spec->n_layers > BP_MAX_LAYERS) {
        core_set_error(err, "layers: need 2..%d entries", BP_MAX_LAYERS);
        return -1;
    }
    for (int i = 0; i < spec->n_layers; i++) {
        if (spec->sizes[i] < 1 || spec->sizes[i] > BP_MAX_UNITS) {
            core_set_error(err, "layers[%d]: must be an integer in 1..%d", i, BP_MAX_UNITS);
            return -1;
        }
    }
    if ((int)spec->hidden < (int)BP_ACT_SIGMOID || (int)spec->hidden > (int)BP_ACT_RELU) {
        core_set_error(err, "activation: must be one of sigmoid, tanh, relu");
        return -1;
    }
    if ((int)spec->output < (int)BP_OUT_SIGMOID || (int)spec->output > (int)BP_OUT_LINEAR) {
        core_set_error(err, "output: must be one of sigmoid, softmax, linear");
        return -1;
    }
    /* At most 63 terms each ≤ 65536 · 65537 < 2^33: the int64 sum cannot overflow. */
    int64_t n = bp_param_count(spec);
    if (n > BP_MAX_PARAMS) {
        core_set_error(err, "layers: %lld parameters exceed the limit of %lld", (long long)n,
                    (long long)BP_MAX_PARAMS);
        return -1;
    }
    return 0;
}

int64_t bp_layer_offset(const bp_spec *spec, int l)
{
    int64_t off = 0;
    for (int k = 0; k < l && k < spec->n_layers - 1; k++)
        off += (int64_t)spec->sizes[k + 1] * ((int64_t)spec->sizes[k] + 1);
    return off;
}

int64_t bp_param_count(const bp_spec *spec)
{
    return bp_layer_offset(spec, spec->n_layers - 1);
}

const char *bp_act_name(bp_act a)
{
    static const char *const names[] = {"sigmoid", "tanh", "relu"};
    return (unsigned)a < sizeof names / sizeof *names ? names[a] : "unknown";
}

const char *bp_out_name(bp_out o)
{
    static const char *const names[] = {"sigmoid", "softmax", "linear"};
    return (unsigned)o < sizeof names / sizeof *names ? names[o] : "unknown";
}

/* ---- PRNG: xoshiro256** (Blackman & Vigna), state expanded from the seed by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void bp_rng_seed(bp_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t bp_rng_next(bp_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bp_rng_uniform(bp_rng *rng)
{
    return (double)(bp_rng_next(rng) >> 11) * 0x1.0p-53;
}

void bp_init_weights(double *theta, const bp_spec *spec, double epsilon, bp_rng *rng)
{
    double *p = theta;
    for (int l = 0; l + 1 < spec->n_layers; l++) {
        int64_t n = (int64_t)spec->sizes[l + 1] * ((int64_t)spec->sizes[l] + 1);
        double eps = epsilon > 0.0
                         ? epsilon
                         : sqrt(6.0) / sqrt((double)spec->sizes[l] + (double)spec->sizes[l + 1]);
        for (int64_t i = 0; i < n; i++)
            p[i] = (2.0 * bp_rng_uniform(rng) - 1.0) * eps;
        p += n;
    }
}

int bp_check_finite(const double *v, int64_t n, int64_t *bad_index)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            if (bad_index)
                *bad_index = i;
            return -1;
        }
    }
    return 0;
}

/* ---- gradient checking ---- */

int bp_gradcheck(bp_gradcheck_result *res, double *analytic, double *numerical, bp_work *w,
                 const double *X, const double *Y, const double *theta, int64_t m,
                 double lambda, double epsilon, bp_error *err)
{
    int rc = -1;
    double *tp = NULL;
    int64_t P = bp_param_count(&w->spec);
    if (!(epsilon > 0.0) || !isfinite(epsilon)) {
        core_set_error(err, "epsilon: must be a positive number");
        goto cleanup;
    }
    if (m < 1) {
        core_set_error(err, "X: need at least one row");
        goto cleanup;
    }
    tp = malloc(sizeof(double) * (size_t)P);
    if (!tp) {
        core_set_error(err, "gradient check: out of memory");
        goto cleanup;
    }
    memcpy(tp, theta, sizeof(double) * (size_t)P);
    memset(analytic, 0, sizeof(double) * (size_t)P);
    bp_cost_grad(analytic, w, X, Y, theta, m, lambda, m);
    for (int64_t i = 0; i < P; i++) {
        double t = tp[i];
        tp[i] = t + epsilon;
        double jp = bp_cost_grad(NULL, w, X, Y, tp, m, lambda, m);
        tp[i] = t - epsilon;
        double jm = bp_cost_grad(NULL, w, X, Y, tp, m, lambda, m);
        tp[i] = t;
        numerical[i] = (jp - jm) / (2.0 * epsilon);
    }
    double diff2 = 0.0, sum2 = 0.0, maxabs = 0.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < P; i++) {
        double d = numerical[i] - analytic[i], s = numerical[i] + analytic[i];
        diff2 += d * d;
        sum2 += s * s;
        if (fabs(d) > maxabs) {
            maxabs = fabs(d);
            worst = i;
        }
    }
    /* both zero → 0; num = −grad ≠ 0 → +∞ (as far apart as gradients can be) */
    res->relative_difference = sum2 > 0.0 ? sqrt(diff2) / sqrt(sum2)
                                          : (diff2 > 0.0 ? INFINITY : 0.0);
    res->max_abs_difference = maxabs;
    res->worst_index = worst;
    if (!isfinite(diff2) || !isfinite(sum2)) {
        core_set_error(err, "gradient check: cost or gradient is not finite at these weights");
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(tp);
    return rc;
}
