/* act.h — the scalar sigmoid and its gradient (the course's sigmoidGradient), shared by
 * core/net.c (prediction outputs) and the core tests. Internal to core/, not part of bp.h.
 * The hot loops in net.c use the 8-wide kernels of core/vmath.h instead, and take g′ from the
 * unit's OUTPUT a = g(z): sigmoid a(1 − a), tanh 1 − a², relu [a > 0] (0 at the kink).
 */
#ifndef BP_ACT_H
#define BP_ACT_H

#include <math.h>

/* σ(z) = 1 / (1 + e^{−z}); exact limits 0 and 1 for large |z| (no NaN: 1/(1+inf) = 0). */
static inline double bp_sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* σ′(z) = σ(z)(1 − σ(z)), the course's sigmoidGradient. */
static inline double bp_sigmoid_gradient(double z)
{
    double a = bp_sigmoid(z);
    return a * (1.0 - a);
}

#endif
