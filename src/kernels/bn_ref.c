/* Reference batch-norm kernels (see kernels.h for what each computes). */
#include "kernels/ref.h"

void rg_ref_bn_sums(const float *x, const float *mean, size_t rows, int32_t c, float *s0, float *s1)
{
    for (int32_t k = 0; k < c; k++) s0[k] = s1[k] = 0.0f;
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) {
            float d = x[r * c + k] - mean[k];
            s0[k] += d;
            s1[k] += d * d;
        }
}

void rg_ref_bn_apply(const float *x, const float *scale, const float *shift, size_t rows, int32_t c, rg_act act,
                     float *y)
{
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) y[r * c + k] = rg_act_value(act, x[r * c + k] * scale[k] + shift[k]);
}

/* The gradient reaching batch norm's output through the fused activation,
 * whose derivative is taken at the forward's pre-activation, recomputed. */
static inline float grad_in(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                            size_t i, int32_t k)
{
    return act == RG_ACT_NONE ? dy[i] : dy[i] * rg_act_slope(act, x[i] * scale[k] + shift[k]);
}

void rg_ref_bn_grad_sums(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                         const float *mean, size_t rows, int32_t c, float *s0, float *s1)
{
    for (int32_t k = 0; k < c; k++) s0[k] = s1[k] = 0.0f;
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) {
            size_t i = r * c + k;
            float g = grad_in(x, dy, scale, shift, act, i, k);
            s0[k] += g;
            s1[k] += g * (x[i] - mean[k]);
        }
}

void rg_ref_bn_grad_apply(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                          const float *mean, const float *k1, const float *k2, const float *k3, size_t rows,
                          int32_t c, float *dx, int store)
{
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) {
            size_t i = r * c + k;
            float g = grad_in(x, dy, scale, shift, act, i, k);
            dx[i] = (store ? 0.0f : dx[i]) + k1[k] * (g - k2[k] - (x[i] - mean[k]) * k3[k]);
        }
}
