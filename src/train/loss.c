/* Softmax cross-entropy with label smoothing.
 *
 *   p = softmax(z),  q = (1 - eps) onehot(y) + eps / C
 *   L = -sum_c q_c log p_c,   dL/dz = p - q   (per sample; divided by n for the mean)
 */
#include "regain/train.h"

#include <math.h>

float rg_xent_forward_backward(const float *logits, const int32_t *labels, int32_t n, int32_t classes,
                               float smoothing, float *dlogits, float *per_sample)
{
    double total = 0.0;
    double off = smoothing / (double)classes, on = 1.0 - smoothing + off;
    for (int32_t i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        double zmax = z[0];
        for (int32_t c = 1; c < classes; c++)
            if (z[c] > zmax) zmax = z[c];
        double sum = 0.0;
        for (int32_t c = 0; c < classes; c++) sum += exp((double)z[c] - zmax);
        double lse = zmax + log(sum), loss = 0.0;
        for (int32_t c = 0; c < classes; c++) {
            double q = c == labels[i] ? on : off;
            double logp = (double)z[c] - lse;
            loss -= q * logp;
            if (dlogits) dlogits[(size_t)i * classes + c] = (float)((exp(logp) - q) / (double)n);
        }
        if (per_sample) per_sample[i] = (float)loss;
        total += loss;
    }
    return n ? (float)(total / (double)n) : 0.0f;
}

int32_t rg_count_correct(const float *logits, const int32_t *labels, int32_t n, int32_t classes)
{
    int32_t correct = 0;
    for (int32_t i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        int32_t best = 0;
        for (int32_t c = 1; c < classes; c++)
            if (z[c] > z[best]) best = c;
        correct += best == labels[i];
    }
    return correct;
}
