/* act.h — activation functions g, their derivatives g′ and the numerically stable pieces of the
 * output costs, shared by core/net.c and the core tests. Internal to core/ (not part of the
 * public contract in bp.h). All functions are pure and inline: no state.
 *
 * Derivatives are written in terms of the unit's OUTPUT a = g(z), which is what the forward
 * pass keeps: sigmoid g′ = a(1 − a), tanh g′ = 1 − a², relu g′ = [a > 0] (0 at the kink).
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

/* log(1 + e^{−|z|}), the shared part of softplus(z) and softplus(−z), never overflowing. */
static inline double bp_log1pexp_neg_abs(double z)
{
    return log1p(exp(-fabs(z)));
}

/* Logistic loss of one output from its pre-activation z and target y:
 * −[y log σ(z) + (1−y) log(1−σ(z))] = y·softplus(−z) + (1−y)·softplus(z). */
static inline double bp_logistic_loss(double z, double y)
{
    double t = bp_log1pexp_neg_abs(z);
    double pos = z > 0.0 ? z : 0.0;  /* max(z, 0)  */
    double neg = z < 0.0 ? -z : 0.0; /* max(−z, 0) */
    return y * (neg + t) + (1.0 - y) * (pos + t);
}

#endif
