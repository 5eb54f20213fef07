/* Softmax cross-entropy with label smoothing, hard or soft targets.
 *
 *   p = softmax(z),  q = (1 - eps) t + eps / C   (t: one-hot(y), or mixed labels)
 *   L = -sum_c q_c log p_c,   dL/dz = p - q   (per sample; divided by n for the mean)
 */
#include "regain/train.h"

#include <math.h>

/* One sample: targets t (NULL: one-hot of label). Writes dL/dz / n into d
 * when not NULL; returns the sample's loss. */
static double xent_row(const float *z, int32_t classes, const float *t, int32_t label, double smoothing, float *d,
                       int32_t n)
{
    double zmax = z[0];
    for (int32_t c = 1; c < classes; c++)
        if (z[c] > zmax) zmax = z[c];
    double sum = 0.0;
    for (int32_t c = 0; c < classes; c++) sum += exp((double)z[c] - zmax);
    double lse = zmax + log(sum), loss = 0.0, off = smoothing / (double)classes;
    for (int32_t c = 0; c < classes; c++) {
        double target = t ? t[c] : c == label;
        double q = (1.0 - smoothing) * target + off;
        double logp = (double)z[c] - lse;
        loss -= q * logp;
        if (d) d[c] = (float)((exp(logp) - q) / (double)n);
    }
    return loss;
}

float rg_xent_forward_backward(const float *logits, const int32_t *labels, int32_t n, int32_t classes,
                               float smoothing, float *dlogits, float *per_sample)
{
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double loss = xent_row(logits + (size_t)i * classes, classes, NULL, labels[i], smoothing,
                               dlogits ? dlogits + (size_t)i * classes : NULL, n);
        if (per_sample) per_sample[i] = (float)loss;
        total += loss;
    }
    return n ? (float)(total / (double)n) : 0.0f;
}

float rg_xent_soft_forward_backward(const float *logits, const float *targets, int32_t n, int32_t classes,
                                    float smoothing, float *dlogits, float *per_sample)
{
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double loss = xent_row(logits + (size_t)i * classes, classes, targets + (size_t)i * classes, -1, smoothing,
                               dlogits ? dlogits + (size_t)i * classes : NULL, n);
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
