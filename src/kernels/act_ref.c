/* Reference activation kernels. */
#include "kernels/ref.h"

void rg_ref_act_forward(rg_act act, const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = rg_act_value(act, x[i]);
}

void rg_ref_act_backward(rg_act act, const float *x, const float *dy, float *dx, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * rg_act_slope(act, x[i]);
}
