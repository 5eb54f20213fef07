/* Reference dense convolution of a padded image (kernels.h). */
#include "kernels/ref.h"

void rg_ref_conv_forward(const rg_conv_geom *g, const float *xp, const float *wt, float *y, int accumulate,
                         const float *bias, rg_act act)
{
    for (int32_t oh = 0; oh < g->ho; oh++)
        for (int32_t ow = 0; ow < g->wo; ow++)
            for (int32_t co = 0; co < g->cout; co++) {
                float s = 0.0f;
                for (int32_t kh = 0; kh < g->kh; kh++)
                    for (int32_t kw = 0; kw < g->kw; kw++)
                        for (int32_t ci = 0; ci < g->cin; ci++)
                            s += xp[((size_t)(oh * g->stride + kh) * g->wp + ow * g->stride + kw) * g->cin + ci] *
                                 wt[(((size_t)kh * g->kw + kw) * g->cin + ci) * g->cout + co];
                float *d = &y[((size_t)oh * g->wo + ow) * g->cout + co];
                if (accumulate) *d += s;
                else *d = rg_act_value(act, s + (bias ? bias[co] : 0.0f));
            }
}

void rg_ref_conv_weight_grad(const rg_conv_geom *g, const float *xp, const float *dy, float *dwt)
{
    for (int32_t kh = 0; kh < g->kh; kh++)
        for (int32_t kw = 0; kw < g->kw; kw++)
            for (int32_t ci = 0; ci < g->cin; ci++)
                for (int32_t co = 0; co < g->cout; co++) {
                    float s = 0.0f;
                    for (int32_t oh = 0; oh < g->ho; oh++)
                        for (int32_t ow = 0; ow < g->wo; ow++)
                            s += xp[((size_t)(oh * g->stride + kh) * g->wp + ow * g->stride + kw) * g->cin + ci] *
                                 dy[((size_t)oh * g->wo + ow) * g->cout + co];
                    dwt[(((size_t)kh * g->kw + kw) * g->cin + ci) * g->cout + co] += s;
                }
}
