/* The compute kernels behind the float ops, one table per instruction set.
 *
 * Each kernel works on one contiguous piece (a range of floats, the rows of
 * one image); the ops split the work across threads so that every output is
 * computed by exactly one call, whatever the thread count. The reference
 * table (plain C, kernels/NAME_ref.c) defines what each kernel computes; the
 * AVX2 and AVX-512 tables (kernels/NAME.inc compiled per instruction set, see
 * kernels/simd.h) compute the same up to float rounding: they may fuse a
 * multiply and an add, and sum in another order within a piece. The tests
 * hold every table to the reference with a stated tolerance.
 */
#ifndef REGAIN_KERNELS_KERNELS_H
#define REGAIN_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "regain/quant_kernels.h"

/* Activations the kernels apply, alone or fused after batch norm. */
typedef enum { RG_ACT_NONE = 0, RG_ACT_RELU, RG_ACT_RELU6, RG_ACT_HSWISH } rg_act;

/* Geometry of a depthwise convolution on one NHWC image: kh x kw taps,
 * stride, zero padding, c channels. */
typedef struct {
    int32_t h, w, c, ho, wo, kh, kw, stride, pad;
} rg_dw_geom;

/* Geometry of a dense convolution of one NHWC image whose input was
 * zero-padded beforehand: hp x wp x cin in, ho x wo x cout out, output
 * (oh, ow) reading the window at (oh * stride, ow * stride); ho <= (hp -
 * kh) / stride + 1 and wo <= (wp - kw) / stride + 1. */
typedef struct {
    int32_t hp, wp, cin, ho, wo, cout, kh, kw, stride;
} rg_conv_geom;

/* Fake quantization's requantization of a convolution or linear output
 * (ops/fake_quant.c, "integer-exact"): per output channel k of c, the
 * reciprocal of the accumulator's scale s_in s_w[k] and the int8 model's
 * fixed-point multiplier and shift; the output's zero point, clamp and scale. */
typedef struct {
    const double *inv_acc;
    const int32_t *mult, *shift;
    int32_t zero_point, lo, hi;
    float scale;
} rg_fq_requant;

/* Fake quantization after an add: the inputs' scales (their zero points are
 * the add's), the int8 model's add (regain/quant_kernels.h) and the
 * output's scale (its zero point is the add's). */
typedef struct {
    float scale_a, scale_b, scale_y;
    rg_q_add_params add;
} rg_fq_add;

typedef struct {
    const char *name;

    /* y[i] = act(x[i]), i < n. */
    void (*act_forward)(rg_act act, const float *x, float *y, size_t n);
    /* dx[i] += dy[i] * act'(x[i]), or = with store set (the backward kernels'
     * `store`: dx holds nothing yet, see ops/op.h). For relu and relu6 the
     * derivative may as well be read from the output (0 < y < 6 exactly when
     * 0 < x < 6), so x may be the activation's output there. */
    void (*act_backward)(rg_act act, const float *x, const float *dy, float *dx, size_t n, int store);

    /* Batch norm over `rows` positions of c channels (NHWC rows).
     * Per-channel sums: s0[c] = sum (x - mean), s1[c] = sum (x - mean)^2. */
    void (*bn_sums)(const float *x, const float *mean, size_t rows, int32_t c, float *s0, float *s1);
    /* y = act(x * scale + shift) per channel. */
    void (*bn_apply)(const float *x, const float *scale, const float *shift, size_t rows, int32_t c, rg_act act,
                     float *y);
    /* With g = dy * act'(x * scale + shift) (act relu/relu6 fused after the
     * batch norm, scale and shift those of bn_apply, so the mask is the
     * forward's bit for bit without reading its output; g = dy when act is
     * none): s0[c] = sum g, s1[c] = sum g * (x - mean). */
    void (*bn_grad_sums)(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                         const float *mean, size_t rows, int32_t c, float *s0, float *s1);
    /* dx += k1 * (g - k2 - (x - mean) * k3), g as above (= with store). */
    void (*bn_grad_apply)(const float *x, const float *dy, const float *scale, const float *shift, rg_act act,
                          const float *mean, const float *k1, const float *k2, const float *k3, size_t rows,
                          int32_t c, float *dx, int store);

    /* C[M, N] = act(A[M, K] B[K, N] + bias), or with accumulate
     * act(C + A B + bias) (bias may be NULL; act RG_ACT_NONE for a plain
     * sum; a residual add fused after a pointwise convolution). Row-major
     * with leading dimensions; for the small, skinny products of pointwise
     * convolutions, where a general BLAS spends its time packing. Every row
     * of C is computed the same way whatever M is. */
    void (*gemm_nn)(int32_t M, int32_t N, int32_t K, const float *A, int32_t lda, const float *B, int32_t ldb,
                    float *C, int32_t ldc, int accumulate, const float *bias, rg_act act);

    /* Dense convolution of one padded image (implicit GEMM: no column
     * buffer). wt is [kh][kw][cin][cout], s the stride;
     *   y[oh, ow, co] = act(bias[co] + sum xp[s oh + kh, s ow + kw, ci] wt[kh, kw, ci, co])
     * or, with accumulate, y += the sum (no bias, no activation). */
    void (*conv_forward)(const rg_conv_geom *g, const float *xp, const float *wt, float *y, int accumulate,
                         const float *bias, rg_act act);
    /* Winograd F(2x2, 3x3) of a stride-1 3x3 convolution of a padded image
     * xp (hp x wp x c), in tiles of 2x2 outputs numbered row by row over a
     * grid tiles_w wide (kernels/winograd_ref.c has the matrices).
     * wino_input: v[xi][t][ci] = (B^T d B)[xi] of the 4x4 input patch d of
     * tile t0 + t, t < nt, zero past the image's edge;
     * wino_output: y[2 ty + i, 2 tx + j, co] = act(bias[co] + (A^T m A)[i][j])
     * of m[xi][t][co], for the positions inside ho x wo; or, with
     * accumulate, y += (A^T m A)[i][j] (no bias, no activation). */
    void (*wino_input)(const float *xp, int32_t hp, int32_t wp, int32_t c, int32_t tiles_w, int32_t t0, int32_t nt,
                       float *v);
    void (*wino_output)(const float *m, int32_t tiles_w, int32_t t0, int32_t nt, int32_t ho, int32_t wo, int32_t c,
                        int accumulate, const float *bias, rg_act act, float *y);
    /* dwt[kh, kw, ci, co] += sum over (oh, ow) of xp[s oh + kh, s ow + kw, ci] dy[oh, ow, co]. */
    void (*conv_weight_grad)(const rg_conv_geom *g, const float *xp, const float *dy, float *dwt);

    /* In place: y[r, c] = act(y[r, c] + bias[c]) (bias may be NULL). The
     * epilogue of a convolution with a folded batch norm or a bias. */
    void (*bias_act)(float *y, size_t rows, int32_t c, const float *bias, rg_act act);

    /* Depthwise convolution of one image; wt is the weight as [kh*kw][c]
     * (channels innermost). y = act(conv(x) + bias) (bias may be NULL). */
    void (*dw_forward)(const rg_dw_geom *g, const float *x, const float *wt, const float *bias, rg_act act,
                       float *y);
    /* dx += the input gradient of one image (= with store). */
    void (*dw_backward_data)(const rg_dw_geom *g, const float *dy, const float *wt, float *dx, int store);
    /* dwt = this image's weight gradient, [kh*kw][c] (overwritten). */
    void (*dw_backward_weight)(const rg_dw_geom *g, const float *dy, const float *x, float *dwt);
    /* Fake quantization (QAT), exact: every table gives the reference's
     * bits (the rounding is regain/quant.h's, half away from zero).
     * Smallest and largest of x[0..n) (n >= 1); both NaN when one is. */
    void (*minmax)(const float *x, size_t n, float *lo, float *hi);
    /* y = scale * (clamp(round(x / scale) + zp, qmin, qmax) - zp); 0 for NaN. */
    void (*fq_forward)(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax, float *y);
    /* The straight-through estimator: dx += dy where round(x / scale) + zp
     * lies in [qmin, qmax], nothing elsewhere (nor for NaN). */
    void (*fq_ste)(const float *x, const float *dy, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                   float *dx);
    /* rows x c values: acc = round(x * inv_acc[k]) (0 for NaN, clamped to
     * +-(2^31 - 1)), code = clamp(rg_q_mul_by_multiplier(acc, mult[k],
     * shift[k]) + zp, lo, hi), y = scale * (code - zp). */
    void (*fq_requant)(const float *x, size_t rows, int32_t c, const rg_fq_requant *q, float *y);
    /* n values: the int8 codes of a and b (as fq_forward's, over [-128,
     * 127]), the int8 model's add of them (rg_q_add_s8), y = scale_y *
     * (code - out_zp). */
    void (*fq_add)(const float *a, const float *b, size_t n, const rg_fq_add *p, float *y);
} rg_kernel_table;

/* The table of the instruction set in use (regain/cpu.h). */
const rg_kernel_table *rg_kernels(void);

extern const rg_kernel_table rg_kernels_ref, rg_kernels_avx2, rg_kernels_avx512;

#endif
