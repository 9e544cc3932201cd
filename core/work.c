/* work.c — the workspace of core/bp.h: one arena, walked from a size table, holding the
 * activations, deltas and scratch for a chunk of rows (its layout: struct bp_work in
 * core_int.h); the chunk size that keeps small networks in cache.
 */
#include "core/core_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of n elements of es bytes, rounded up to 64 so every buffer starts cache-aligned. */
static int64_t pad64(int64_t n, size_t es)
{
    return (n * (int64_t)es + 63) & ~(int64_t)63;
}

/* Bytes of one element of a workspace in this precision. */
static size_t elem_size(bp_precision precision)
{
    return precision == BP_FLOAT32 ? sizeof(float) : sizeof(double);
}

const char *bp_precision_name(bp_precision p)
{
    return p == BP_FLOAT64 ? "float64" : p == BP_FLOAT32 ? "float32" : NULL;
}

bp_precision bp_work_precision(const bp_work *w)
{
    return w->precision;
}

/* Rows per chunk for this network: networks whose every layer is small (s_l·s_{l+1} ≤ 8192,
 * e.g. digits' 64-32-10) are bound by how their activations fit in L1/L2 and by OpenBLAS's
 * small-matrix kernels, so they take 2^17 / max s_l·s_{l+1} rows (64 for 64-32-10: 0.46 ms
 * instead of 0.60 for its full-batch J+grad); larger networks take BP_CHUNK_ROWS, where the
 * GEMMs reach their best rate. A function of the spec alone: results never depend on how many
 * rows a workspace was sized for. */
int64_t bp_chunk_rows(const bp_spec *spec)
{
    int64_t max_prod = 1;
    for (int l = 0; l + 1 < spec->n_layers; l++) {
        int64_t p = (int64_t)spec->sizes[l] * spec->sizes[l + 1];
        max_prod = p > max_prod ? p : max_prod;
    }
    if (max_prod > 8192)
        return BP_CHUNK_ROWS;
    int64_t rows = 64;
    while (rows < BP_CHUNK_ROWS && 2 * rows * max_prod <= ((int64_t)1 << 17))
        rows *= 2;
    return rows;
}

int bp_shards(const bp_spec *spec, int64_t m)
{
    int64_t s = m / BP_SHARD_MIN_ROWS;
    int64_t by_budget = BP_SHARD_BUDGET / bp_param_count(spec);
    if (s > BP_MAX_SHARDS)
        s = BP_MAX_SHARDS;
    if (s > by_budget)
        s = by_budget;
    return s < 1 ? 1 : (int)s;
}

int core_shards(const bp_spec *spec, int64_t m)
{
    return bp_shards(spec, m);
}

/* The widest hidden layer and the widest layer after the input. */
static void widest(const bp_spec *spec, int64_t *max_hidden, int64_t *max_units)
{
    int L = spec->n_layers;
    *max_hidden = *max_units = 0;
    for (int l = 1; l < L; l++) {
        if (spec->sizes[l] > *max_units)
            *max_units = spec->sizes[l];
        if (l < L - 1 && spec->sizes[l] > *max_hidden)
            *max_hidden = spec->sizes[l];
    }
}

/* Bytes of one thread's scratch arena for chunks of `rows` rows of es-byte elements. All
 * sizes are ≤ 2048 · 64 · 65536 elements: far from int64 overflow. */
static int64_t scratch_bytes(const bp_spec *spec, int64_t rows, size_t es)
{
    int L = spec->n_layers;
    int64_t max_hidden, max_units;
    widest(spec, &max_hidden, &max_units);
    int64_t total = 0;
    for (int l = 1; l < L; l++)
        total += pad64(rows * spec->sizes[l], es);
    return total + pad64(rows * max_hidden, es) + pad64(rows * spec->sizes[L - 1], es) +
           2 * pad64(max_units, es);
}

/* Carves sc's buffers out of a new arena. 0 ok, -1 out of memory. */
static int scratch_init(core_scratch *sc, const bp_spec *spec, int64_t rows, size_t es)
{
    int L = spec->n_layers;
    int64_t max_hidden, max_units;
    widest(spec, &max_hidden, &max_units);
    memset(sc, 0, sizeof *sc);
    sc->arena = aligned_alloc(64, (size_t)scratch_bytes(spec, rows, es));
    if (!sc->arena)
        return -1;
    char *p = sc->arena;
    for (int l = 1; l < L; l++) {
        sc->act[l] = p;
        p += pad64(rows * spec->sizes[l], es);
    }
    sc->scratch = p;
    p += pad64(rows * max_hidden, es);
    sc->outbuf = p;
    p += pad64(rows * spec->sizes[L - 1], es);
    sc->colsum = p;
    p += pad64(max_units, es);
    sc->bias = p;
    return 0;
}

bp_work *bp_work_new(const bp_spec *spec, int64_t max_rows, bp_error *err)
{
    return core_work_new(spec, max_rows, 1, BP_FLOAT64, err);
}

bp_work *bp_work_new_precision(const bp_spec *spec, int64_t max_rows, bp_precision precision,
                               bp_error *err)
{
    return core_work_new(spec, max_rows, 1, precision, err);
}

bp_work *core_work_new(const bp_spec *spec, int64_t max_rows, int grads, bp_precision precision,
                       bp_error *err)
{
    if (!bp_precision_name(precision)) {
        core_set_error(err, "precision: must be float64 or float32");
        return NULL;
    }
    if (bp_spec_validate(spec, err) != 0)
        return NULL;
    if (max_rows < 1) {
        core_set_error(err, "rows: must be at least 1");
        return NULL;
    }
    int64_t chunk = bp_chunk_rows(spec);
    int64_t rows = max_rows < chunk ? max_rows : chunk;
    int64_t P = bp_param_count(spec);
    size_t es = elem_size(precision);
    size_t bytes = (size_t)scratch_bytes(spec, rows, es);

    bp_work *w = calloc(1, sizeof *w);
    if (!w || !(w->sc = calloc(1, sizeof *w->sc))) {
        free(w);
        core_set_error(err, "workspace: out of memory");
        return NULL;
    }
    w->spec = *spec;
    w->rows = rows;
    w->n_sc = 1;
    w->precision = precision;
    w->n_grads = grads ? bp_shards(spec, max_rows) - 1 : 0;
    if (scratch_init(&w->sc[0], spec, rows, es) != 0)
        goto oom;
    if (precision == BP_FLOAT32) {
        /* P ≤ BP_MAX_PARAMS: no overflow */
        w->theta32 = malloc((size_t)P * sizeof(float));
        w->grad32 = grads ? malloc((size_t)P * sizeof(float)) : NULL;
        if (!w->theta32 || (grads && !w->grad32))
            goto oom;
        bytes += (size_t)P * sizeof(float) * (grads ? 2 : 1);
    }
    if (w->n_grads > 0) {
        /* n_grads · P ≤ BP_SHARD_BUDGET: no overflow */
        size_t gbytes = (size_t)(w->n_grads * P) * es;
        w->grads[0] = malloc(gbytes);
        if (!w->grads[0])
            goto oom;
        for (int g = 1; g < w->n_grads; g++)
            w->grads[g] = (char *)w->grads[0] + (size_t)g * (size_t)P * es;
        bytes += gbytes;
    }
    w->bytes = bytes + sizeof *w;
    return w;
oom:
    core_set_error(err, "workspace: cannot allocate %zu bytes for %lld rows", bytes,
                   (long long)rows);
    bp_work_free(w);
    return NULL;
}

int bp_work_set_pool(bp_work *w, bp_pool *pool, bp_error *err)
{
    int need = pool ? bp_pool_threads(pool) : 1;
    if (need > w->n_sc) {
        core_scratch *sc = realloc(w->sc, (size_t)need * sizeof *sc);
        if (!sc) {
            core_set_error(err, "workspace: out of memory for %d threads", need);
            return -1;
        }
        w->sc = sc;
        for (; w->n_sc < need; w->n_sc++) {
            size_t es = elem_size(w->precision);
            if (scratch_init(&w->sc[w->n_sc], &w->spec, w->rows, es) != 0) {
                core_set_error(err, "workspace: out of memory for %d threads", need);
                return -1;
            }
            w->bytes += (size_t)scratch_bytes(&w->spec, w->rows, es);
        }
    }
    w->pool = pool;
    return 0;
}

void bp_work_free(bp_work *w)
{
    if (!w)
        return;
    for (int t = 0; t < w->n_sc; t++)
        free(w->sc[t].arena);
    free(w->sc);
    free(w->grads[0]);
    free(w->theta32);
    free(w->grad32);
    free(w);
}

size_t bp_work_bytes(const bp_work *w)
{
    return w ? w->bytes : 0;
}
