/* The reference kernels (plain C): what every kernel computes. */
#ifndef REGAIN_KERNELS_REF_H
#define REGAIN_KERNELS_REF_H

#include "kernels/kernels.h"

void rg_ref_act_forward(rg_act act, const float *x, float *y, size_t n);
void rg_ref_act_backward(rg_act act, const float *x, const float *dy, float *dx, size_t n, int store);
void rg_ref_bn_sums(const float *x, const float *mean, size_t rows, int32_t c, float *s0, float *s1);
void rg_ref_bn_apply(const float *x, const float *scale, const float *shift, size_t rows, int32_t c, rg_act act,
                     float *y);
void rg_ref_bn_grad_sums(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                         const float *mean, size_t rows, int32_t c, float *s0, float *s1);
void rg_ref_bn_grad_apply(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                          const float *mean, const float *k1, const float *k2, const float *k3, size_t rows,
                          int32_t c, float *dx, int store);
void rg_ref_gemm_nn(int32_t M, int32_t N, int32_t K, const float *A, int32_t lda, const float *B, int32_t ldb,
                    float *C, int32_t ldc, int accumulate, const float *bias, rg_act act);
void rg_ref_conv_forward(const rg_conv_geom *g, const float *xp, const float *wt, float *y, int accumulate,
                         const float *bias, rg_act act);
void rg_ref_conv_weight_grad(const rg_conv_geom *g, const float *xp, const float *dy, float *dwt);
void rg_ref_bias_act(float *y, size_t rows, int32_t c, const float *bias, rg_act act);
void rg_ref_dw_forward(const rg_dw_geom *g, const float *x, const float *wt, const float *bias, rg_act act, float *y);
void rg_ref_dw_backward_data(const rg_dw_geom *g, const float *dy, const float *wt, float *dx, int store);
void rg_ref_dw_backward_weight(const rg_dw_geom *g, const float *dy, const float *x, float *dwt);
void rg_ref_wino_input(const float *xp, int32_t hp, int32_t wp, int32_t c, int32_t tiles_w, int32_t t0, int32_t nt,
                       float *v);
void rg_ref_wino_output(const float *m, int32_t tiles_w, int32_t t0, int32_t nt, int32_t ho, int32_t wo, int32_t c,
                        int accumulate, const float *bias, rg_act act, float *y);
void rg_ref_minmax(const float *x, size_t n, float *lo, float *hi);
void rg_ref_fq_forward(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax, float *y);
void rg_ref_fq_ste(const float *x, const float *dy, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                   float *dx);
void rg_ref_fq_requant(const float *x, size_t rows, int32_t c, const rg_fq_requant *q, float *y);
void rg_ref_fq_add(const float *a, const float *b, size_t n, const rg_fq_add *p, float *y);

/* The activation and its derivative for one value (shared by the reference
 * kernels; the derivative at the kinks follows PyTorch: relu'(0) = 0,
 * hswish' = x/3 + 1/2 on [-3, 3]). */
static inline float rg_act_value(rg_act act, float v)
{
    switch (act) {
    case RG_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case RG_ACT_RELU6: return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
    case RG_ACT_HSWISH: return v <= -3.0f ? 0.0f : (v >= 3.0f ? v : v * (v + 3.0f) * (1.0f / 6.0f));
    case RG_ACT_NONE: break;
    }
    return v;
}

static inline float rg_act_slope(rg_act act, float v)
{
    switch (act) {
    case RG_ACT_RELU: return v > 0.0f ? 1.0f : 0.0f;
    case RG_ACT_RELU6: return (v > 0.0f && v < 6.0f) ? 1.0f : 0.0f;
    case RG_ACT_HSWISH: return v < -3.0f ? 0.0f : (v > 3.0f ? 1.0f : v * (1.0f / 3.0f) + 0.5f);
    case RG_ACT_NONE: break;
    }
    return 1.0f;
}

#endif
