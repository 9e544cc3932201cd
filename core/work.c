/* work.c — the workspace of core/bp.h: one arena, walked from a size table, holding the
 * activations, deltas and scratch for a chunk of rows (its layout: struct bp_work in
 * core_int.h); the chunk size that keeps small networks in cache.
 */
#include "core/core_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Doubles rounded up to a multiple of 8 (64 bytes) so every buffer starts cache-aligned. */
static int64_t pad8(int64_t n)
{
    return (n + 7) & ~(int64_t)7;
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

bp_work *bp_work_new(const bp_spec *spec, int64_t max_rows, bp_error *err)
{
    if (bp_spec_validate(spec, err) != 0)
        return NULL;
    if (max_rows < 1) {
        core_set_error(err, "rows: must be at least 1");
        return NULL;
    }
    int L = spec->n_layers;
    int64_t chunk = bp_chunk_rows(spec);
    int64_t rows = max_rows < chunk ? max_rows : chunk;
    int64_t max_hidden = 0, max_units = 0;
    for (int l = 1; l < L; l++) {
        if (spec->sizes[l] > max_units)
            max_units = spec->sizes[l];
        if (l < L - 1 && spec->sizes[l] > max_hidden)
            max_hidden = spec->sizes[l];
    }
    /* All sizes below are ≤ 2048 · 64 · 65536 doubles: far from int64 overflow. */
    int64_t total = 0;
    for (int l = 1; l < L; l++)
        total += pad8(rows * spec->sizes[l]);
    total += pad8(rows * max_hidden) + pad8(rows * spec->sizes[L - 1]) + 2 * pad8(max_units);
    size_t bytes = (size_t)total * sizeof(double);

    bp_work *w = calloc(1, sizeof *w);
    if (!w) {
        core_set_error(err, "workspace: out of memory");
        return NULL;
    }
    w->arena = aligned_alloc(64, bytes);
    if (!w->arena) {
        core_set_error(err, "workspace: cannot allocate %zu bytes for %lld rows", bytes,
                    (long long)rows);
        free(w);
        return NULL;
    }
    w->spec = *spec;
    w->rows = rows;
    w->bytes = bytes + sizeof *w;
    double *p = w->arena;
    for (int l = 1; l < L; l++) {
        w->act[l] = p;
        p += pad8(rows * spec->sizes[l]);
    }
    w->scratch = p;
    p += pad8(rows * max_hidden);
    w->outbuf = p;
    p += pad8(rows * spec->sizes[L - 1]);
    w->colsum = p;
    p += pad8(max_units);
    w->bias = p;
    return w;
}

void bp_work_free(bp_work *w)
{
    if (!w)
        return;
    free(w->arena);
    free(w);
}

size_t bp_work_bytes(const bp_work *w)
{
    return w ? w->bytes : 0;
}

