/* fold.c — folds a per-feature standardization x' = (x − μ)/σ into the first layer's weights
 * (core/bp.h, bp_fold_standardize), so that a network trained on standardized rows takes raw
 * rows: the exports (ONNX, TensorFlow.js) then need no preprocessing step.
 *   W'[i][j] = W[i][j] / σ_j        b'[i] = b[i] − Σ_j W[i][j] · μ_j / σ_j
 * Every layer after the first is copied unchanged.
 */
#include "core/core_int.h"

#include <math.h>
#include <string.h>

void bp_fold_standardize(double *theta_out, const double *theta, const double *mean,
                         const double *sd, const bp_spec *spec)
{
    int64_t n = bp_param_count(spec);
    if (theta_out != theta)
        memmove(theta_out, theta, (size_t)n * sizeof *theta);
    if (!mean || !sd)
        return;
    int64_t s1 = spec->sizes[0], s2 = spec->sizes[1];
    for (int64_t i = 0; i < s2; i++) {
        double *row = theta_out + i * (s1 + 1); /* Θ^(1)[i, :]: bias, then s1 weights */
        double shift = 0;
        for (int64_t j = 0; j < s1; j++) {
            double sigma = isfinite(sd[j]) && sd[j] > 0 ? sd[j] : 1.0;
            double w = row[1 + j] / sigma;
            shift += w * mean[j];
            row[1 + j] = w;
        }
        row[0] -= shift;
    }
}
