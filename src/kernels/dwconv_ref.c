/* Reference depthwise convolution kernels, one NHWC image at a time. */
#include "kernels/ref.h"

void rg_ref_dw_forward(const rg_dw_geom *g, const float *x, const float *wt, const float *bias, rg_act act, float *y)
{
    int32_t C = g->c;
    for (int32_t oh = 0; oh < g->ho; oh++)
        for (int32_t ow = 0; ow < g->wo; ow++) {
            float *dst = y + ((size_t)oh * g->wo + ow) * C;
            for (int32_t ch = 0; ch < C; ch++) dst[ch] = bias ? bias[ch] : 0.0f;
            for (int32_t kh = 0; kh < g->kh; kh++) {
                int32_t ih = oh * g->stride - g->pad + kh;
                if (ih < 0 || ih >= g->h) continue;
                for (int32_t kw = 0; kw < g->kw; kw++) {
                    int32_t iw = ow * g->stride - g->pad + kw;
                    if (iw < 0 || iw >= g->w) continue;
                    const float *src = x + ((size_t)ih * g->w + iw) * C;
                    const float *wk = wt + (size_t)(kh * g->kw + kw) * C;
                    for (int32_t ch = 0; ch < C; ch++) dst[ch] += src[ch] * wk[ch];
                }
            }
            for (int32_t ch = 0; ch < C; ch++) dst[ch] = rg_act_value(act, dst[ch]);
        }
}

void rg_ref_dw_backward_data(const rg_dw_geom *g, const float *dy, const float *wt, float *dx, int store)
{
    int32_t C = g->c;
    if (store)
        for (size_t i = 0, n = (size_t)g->h * g->w * C; i < n; i++) dx[i] = 0.0f;
    for (int32_t oh = 0; oh < g->ho; oh++)
        for (int32_t ow = 0; ow < g->wo; ow++) {
            const float *gy = dy + ((size_t)oh * g->wo + ow) * C;
            for (int32_t kh = 0; kh < g->kh; kh++) {
                int32_t ih = oh * g->stride - g->pad + kh;
                if (ih < 0 || ih >= g->h) continue;
                for (int32_t kw = 0; kw < g->kw; kw++) {
                    int32_t iw = ow * g->stride - g->pad + kw;
                    if (iw < 0 || iw >= g->w) continue;
                    float *d = dx + ((size_t)ih * g->w + iw) * C;
                    const float *wk = wt + (size_t)(kh * g->kw + kw) * C;
                    for (int32_t ch = 0; ch < C; ch++) d[ch] += gy[ch] * wk[ch];
                }
            }
        }
}

void rg_ref_dw_backward_weight(const rg_dw_geom *g, const float *dy, const float *x, float *dwt)
{
    int32_t C = g->c;
    for (size_t i = 0, n = (size_t)g->kh * g->kw * C; i < n; i++) dwt[i] = 0.0f;
    for (int32_t oh = 0; oh < g->ho; oh++)
        for (int32_t ow = 0; ow < g->wo; ow++) {
            const float *gy = dy + ((size_t)oh * g->wo + ow) * C;
            for (int32_t kh = 0; kh < g->kh; kh++) {
                int32_t ih = oh * g->stride - g->pad + kh;
                if (ih < 0 || ih >= g->h) continue;
                for (int32_t kw = 0; kw < g->kw; kw++) {
                    int32_t iw = ow * g->stride - g->pad + kw;
                    if (iw < 0 || iw >= g->w) continue;
                    const float *src = x + ((size_t)ih * g->w + iw) * C;
                    float *pk = dwt + (size_t)(kh * g->kw + kw) * C;
                    for (int32_t ch = 0; ch < C; ch++) pk[ch] += gy[ch] * src[ch];
                }
            }
        }
}
