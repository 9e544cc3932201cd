/* vmath.h — exp, log1p, expm1 and tanh on 8 doubles at a time, for the elementwise passes in core/net.c.
 *
 * Why: glibc's scalar exp costs ~10 ns an element here, which made the sigmoid passes take
 * longer than the GEMMs on small layers. These kernels use GCC's generic vector types, so the
 * same source becomes AVX-512, AVX2 or SSE2 code depending on the caller's target (net.c
 * compiles its hot loops with target_clones). Only +, −, ×, ÷ and bit operations are used, and
 * the file is built without FMA contraction (-std=c11 implies -ffp-contract=off), so every
 * target gives bit-identical results.
 *
 * Accuracy (not an approximation): exp reduces x = k·ln2 + r with fdlibm's two-part ln2 and
 * evaluates 1 + r + r²·q(r) with a degree-9 Chebyshev fit q (< 2e-17 relative, no division);
 * log1p is fdlibm's k_log.h kernel. Both measured within 1 ulp of glibc over 16 million
 * points (tests/core_net.c checks 1.6 million of them on every run).
 *   bp_v8_exp(&x):      e^x for any x; +∞ above 709.78, 0 below −745.13, NaN stays NaN.
 *   bp_v8_log1p01(&u):  log(1 + u) for u in [0, 1] (what the logistic cost needs: u = e^{−|z|}).
 *   bp_v8_expm1(&x):    e^x − 1 for x ≤ 700 (the tanh kernel's building block).
 *   bp_v8_tanh(&x):     tanh for any x (the tanh hidden layers), fdlibm's formulas.
 * Internal to core/; everything is static inline and stateless.
 */
#ifndef BP_VMATH_H
#define BP_VMATH_H

#include <stdint.h>
#include <string.h>

/* Every function returning these vectors is always_inline inside one translation unit, so no
 * vector ever crosses a call boundary and GCC's ABI warning does not apply. (Vectors are passed
 * IN by pointer or through macros: GCC notes a 64-byte-aligned by-value parameter however it
 * is inlined.) */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef double bp_v8d __attribute__((vector_size(64)));
typedef int64_t bp_v8l __attribute__((vector_size(64)));
typedef uint64_t bp_v8u __attribute__((vector_size(64)));

#define BP_V8_ALWAYS static inline __attribute__((always_inline))

BP_V8_ALWAYS bp_v8d bp_v8_splat(double x)
{
    return (bp_v8d){x, x, x, x, x, x, x, x};
}

typedef float bp_v8f __attribute__((vector_size(32)));

/* 8 floats widened to doubles (exactly) / 8 doubles rounded to floats (once, to nearest): the
 * float32 passes compute every elementwise kernel in double between these two. */
BP_V8_ALWAYS bp_v8d bp_v8_load_f32(const float *p)
{
    bp_v8f v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, bp_v8d);
}

#define bp_v8_store_f32(p, v)                                              \
    do {                                                                   \
        const bp_v8f bp_v8_tmpf_ = __builtin_convertvector((v), bp_v8f);   \
        memcpy((p), &bp_v8_tmpf_, sizeof bp_v8_tmpf_);                     \
    } while (0)

/* Unaligned load/store of 8 doubles. */
BP_V8_ALWAYS bp_v8d bp_v8_load(const double *p)
{
    bp_v8d v;
    memcpy(&v, p, sizeof v);
    return v;
}

#define bp_v8_store(p, v)                                  \
    do {                                                   \
        const bp_v8d bp_v8_tmp_ = (v);                     \
        memcpy((p), &bp_v8_tmp_, sizeof bp_v8_tmp_);       \
    } while (0)

/* mask ? a : b, lane by lane (mask lanes are all-ones or zero, as comparisons give). mask is
 * evaluated twice: pass a variable or a side-effect-free expression. */
#define bp_v8_select(mask, a, b) \
    ((bp_v8d)(((bp_v8l)(a) & (mask)) | ((bp_v8l)(b) & ~(mask))))

/* Lanes i < cnt all-ones, the rest zero. */
BP_V8_ALWAYS bp_v8l bp_v8_first(int cnt)
{
    const bp_v8l idx = {0, 1, 2, 3, 4, 5, 6, 7};
    bp_v8l c = {cnt, cnt, cnt, cnt, cnt, cnt, cnt, cnt};
    return idx < c;
}

BP_V8_ALWAYS double bp_v8_hsum(const bp_v8d *pv)
{
    bp_v8d v = *pv;
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* q(r) of bp_v8_exp's e^r = 1 + r + r²·q(r) by Estrin's scheme: pairs c_i + c_{i+1} r, then
 * combined with r², r⁴, r⁸ (the terms fall fast: |r| ≤ 0.35, so the order barely matters for
 * rounding; the accuracy tests below cover it). */
BP_V8_ALWAYS bp_v8d bp_v8_expq(const bp_v8d *pr)
{
    bp_v8d r = *pr;
    bp_v8d r2 = r * r;
    bp_v8d r4 = r2 * r2;
    bp_v8d r8 = r4 * r4;
    bp_v8d p01 = bp_v8_splat(0x1.0000000000001p-1) + r * bp_v8_splat(0x1.5555555555556p-3);
    bp_v8d p23 = bp_v8_splat(0x1.5555555553d64p-5) + r * bp_v8_splat(0x1.11111111109b4p-7);
    bp_v8d p45 = bp_v8_splat(0x1.6c16c1788b646p-10) + r * bp_v8_splat(0x1.a01a01a7c3d59p-13);
    bp_v8d p67 = bp_v8_splat(0x1.a019b90eefe8ep-16) + r * bp_v8_splat(0x1.71de0daf7a6ccp-19);
    bp_v8d p89 = bp_v8_splat(0x1.2891834686c7ep-22) + r * bp_v8_splat(0x1.af38a71a18cb9p-26);
    bp_v8d p03 = p01 + r2 * p23;
    bp_v8d p47 = p45 + r2 * p67;
    return (p03 + r4 * p47) + r8 * p89;
}

/* The argument reduction of bp_v8_exp and bp_v8_expm1: x clamped to [x_min, x_max] (NaN
 * compares false and stays NaN), then x = k ln2 + r, |r| ≤ ln2/2, with r = hi − lo (hi exact,
 * lo = k · ln2's low part) and k from the rounding shifter's low mantissa bits. */
BP_V8_ALWAYS void bp_v8_reduce_ln2(bp_v8l *k, bp_v8d *hi, bp_v8d *lo, bp_v8d *r,
                                   const bp_v8d *px, double x_min, double x_max)
{
    const bp_v8d ln2_hi = bp_v8_splat(6.93147180369123816490e-01);
    const bp_v8d ln2_lo = bp_v8_splat(1.90821492927058770002e-10);
    const bp_v8d log2e = bp_v8_splat(1.44269504088896338700e+00);
    const bp_v8d shifter = bp_v8_splat(0x1.8p52); /* adding it rounds to an integer */
    const bp_v8d hi_lim = bp_v8_splat(x_max), lo_lim = bp_v8_splat(x_min);
    bp_v8d x = *px;
    x = bp_v8_select(x > hi_lim, hi_lim, x);
    x = bp_v8_select(x < lo_lim, lo_lim, x);
    bp_v8d t = x * log2e + shifter;
    bp_v8d kd = t - shifter;
    *k = (bp_v8l)t - (bp_v8l)shifter;
    *hi = x - kd * ln2_hi; /* exact */
    *lo = kd * ln2_lo;
    *r = *hi - *lo;
}

BP_V8_ALWAYS bp_v8d bp_v8_exp(const bp_v8d *px)
{
    const bp_v8d one = bp_v8_splat(1.0);
    /* Clamped: beyond [−746, 710] e^x is ∞ or 0 anyway. */
    bp_v8l k;
    bp_v8d hi, lo, r;
    bp_v8_reduce_ln2(&k, &hi, &lo, &r, px, -746.0, 710.0);
    /* e^r = 1 + r + r²·q(r), q a degree-9 Chebyshev fit of (e^r − 1 − r)/r² on
     * |r| ≤ 0.3466 (error in e^r < 2e-17 relative; no division), evaluated by Estrin's scheme
     * (a dependency chain of 6 operations instead of Horner's 18: the loops that call this are
     * latency-bound), adding 1 last. */
    bp_v8d q = bp_v8_expq(&r);
    bp_v8d y = one + (r + r * (r * q));
    /* y · 2^k as y · 2^k1 · 2^k2, both factors normal for k in [−1076, 1024]. */
    bp_v8l k1 = k >> 1, k2 = k - k1;
    bp_v8d s1 = (bp_v8d)((bp_v8u)(k1 + 1023) << 52);
    bp_v8d s2 = (bp_v8d)((bp_v8u)(k2 + 1023) << 52);
    return y * s1 * s2;
}

BP_V8_ALWAYS bp_v8d bp_v8_log1p01(const bp_v8d *pu)
{
    bp_v8d u = *pu;
    const bp_v8d ln2_hi = bp_v8_splat(6.93147180369123816490e-01);
    const bp_v8d ln2_lo = bp_v8_splat(1.90821492927058770002e-10);
    const bp_v8d Lg1 = bp_v8_splat(6.666666666666735130e-01);
    const bp_v8d Lg2 = bp_v8_splat(3.999999999940941908e-01);
    const bp_v8d Lg3 = bp_v8_splat(2.857142874366239149e-01);
    const bp_v8d Lg4 = bp_v8_splat(2.222219843214978396e-01);
    const bp_v8d Lg5 = bp_v8_splat(1.818357216161805012e-01);
    const bp_v8d Lg6 = bp_v8_splat(1.531383769920937332e-01);
    const bp_v8d Lg7 = bp_v8_splat(1.479819860511658591e-01);
    const bp_v8d one = bp_v8_splat(1.0), two = bp_v8_splat(2.0), half = bp_v8_splat(0.5);
    const bp_v8d zero = bp_v8_splat(0.0);

    /* 1 + u = 2^k (1 + f) with f in [√2/2 − 1, √2 − 1]: f = u (k = 0) or (u − 1)/2 (k = 1),
     * both formed without the rounding of 1 + u. */
    bp_v8l big = (one + u) > bp_v8_splat(1.41421356237309504880);
    bp_v8d f = bp_v8_select(big, (u - one) * half, u);
    bp_v8d kd = bp_v8_select(big, one, zero);
    /* log(1 + f) = f − hfsq + s (hfsq + R), s = f / (2 + f) (fdlibm k_log.h) */
    bp_v8d s = f / (two + f);
    bp_v8d z = s * s;
    bp_v8d w = z * z;
    bp_v8d t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    bp_v8d t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    bp_v8d R = t2 + t1;
    bp_v8d hfsq = half * f * f;
    return kd * ln2_hi - ((hfsq - (s * (hfsq + R) + kd * ln2_lo)) - f);
}

/* e^x − 1 for x ≤ 700 (larger x are taken as 700; NaN stays NaN), accurate near 0 where
 * e^x − 1 cancels: the same reduction and polynomial as bp_v8_exp, with r's rounding error c
 * carried, and 2^k·(e^r − 1) + (2^k − 1) formed without adding 1 first (fdlibm's approach). */
BP_V8_ALWAYS bp_v8d bp_v8_expm1(const bp_v8d *px)
{
    const bp_v8d one = bp_v8_splat(1.0);
    /* Clamped to [−60, 700]: below −60 e^x − 1 rounds to −1 anyway; the clamps keep 2^k a
     * normal number. */
    bp_v8l k;
    bp_v8d hi, lo, r;
    bp_v8_reduce_ln2(&k, &hi, &lo, &r, px, -60.0, 700.0);
    bp_v8d c = (hi - r) - lo;    /* what rounding r lost (0 when k = 0) */
    bp_v8d q = bp_v8_expq(&r);
    bp_v8d s = (bp_v8d)((bp_v8u)(k + 1023) << 52); /* 2^k, k in [−87, 1010] */
    /* 2^k (e^{r+c} − 1) + (2^k − 1) with e^{r+c} − 1 = r + (r²q + c): the big parts first
     * (s·r and s − 1 are exact, and their sum is where cancellation happens), then the small
     * tail, so p's rounding never meets the cancellation. */
    return (s * r + (s - one)) + s * (r * (r * q) + c);
}

/* tanh(x) for any x (±∞ → ±1, NaN stays NaN), fdlibm's formulas on |x| (a = |x|):
 *   a < 1:  t = e^{2a} − 1, tanh = t / (t + 2)
 *   a ≥ 1:  t = e^{2a} − 1, tanh = 1 − 2 / (t + 2)     (a is capped at 22: tanh = 1 there)
 * with the sign of x put back; one expm1 and one division for both cases. */
BP_V8_ALWAYS bp_v8d bp_v8_tanh(const bp_v8d *px)
{
    bp_v8d x = *px;
    const bp_v8l sign_mask = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN,
                              INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
    const bp_v8d one = bp_v8_splat(1.0), two = bp_v8_splat(2.0), cap = bp_v8_splat(22.0);
    bp_v8d a = (bp_v8d)((bp_v8l)x & ~sign_mask);
    a = bp_v8_select(a > cap, cap, a);
    bp_v8l small = a < one;
    bp_v8d arg = a + a;
    bp_v8d t = bp_v8_expm1(&arg);
    bp_v8d num = bp_v8_select(small, t, two);
    bp_v8d qt = num / (t + two);
    bp_v8d z = bp_v8_select(small, qt, one - qt);
    /* |z| with x's sign (t = −0 at x = ±0 would otherwise give −0 for +0) */
    return (bp_v8d)(((bp_v8l)z & ~sign_mask) | ((bp_v8l)x & sign_mask));
}

#endif
