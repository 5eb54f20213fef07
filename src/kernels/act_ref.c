/* Reference activation kernels. */
#include "kernels/ref.h"

void rg_ref_act_forward(rg_act act, const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = rg_act_value(act, x[i]);
}

void rg_ref_bias_act(float *y, size_t rows, int32_t c, const float *bias, rg_act act)
{
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) y[r * c + k] = rg_act_value(act, y[r * c + k] + (bias ? bias[k] : 0.0f));
}

void rg_ref_act_backward(rg_act act, const float *x, const float *dy, float *dx, size_t n, int store)
{
    for (size_t i = 0; i < n; i++) dx[i] = (store ? 0.0f : dx[i]) + dy[i] * rg_act_slope(act, x[i]);
}
