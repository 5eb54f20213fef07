/* regain — integer reference kernels for int8 inference (the specification).
 *
 * Plain C, NHWC int8 activations, regain's weight layouts. These are the
 * semantics the int8 runtime's fast kernels and the QAT lowering are checked
 * against bit for bit; they follow TFLite's reference_integer_ops formulas:
 *
 *   conv / fc:  acc = bias[c] + sum (x - in_zp) * w          (int32)
 *               y   = clamp(mul_by_multiplier(acc, m[c], s[c]) + out_zp,
 *                           act_min, act_max)
 *               or, when the layer has float scales (fp32 requantization,
 *               regain/quant.h rg_q_requant_fp32):
 *               y   = rg_q_requant_fp32(acc, scales[c], out_zp, act_min, act_max)
 *   add:        TFLite's int8 add (inputs shifted left by 20, rescaled by
 *               their own multipliers, summed, rescaled to the output)
 *   avg pool:   sum over the valid window / count, rounded half away from 0
 *   global avg: TFLite's int8 Mean over H*W (rescaled, then divided)
 *
 * Parameters are plain structs; the caller owns every buffer (no kernel
 * allocates; none needs scratch memory). Each kernel validates its struct
 * first and returns RG_ERR_ARG / RG_ERR_SHAPE with a message naming the
 * field. Requantization arrays (multipliers, shifts) always hold one entry
 * per output channel; a per-tensor layer repeats the same pair
 * (rg_q_requant_params does this from one weight scale).
 *
 *     int32_t m[16], s[16];
 *     rg_q_requant_params(s_in, w_scales, 16, s_out, 16, m, s, &err);
 *     rg_q_conv_params p = {.batch = 1, .in_h = 28, .in_w = 28, .in_c = 8,
 *                           .out_h = 28, .out_w = 28, .out_c = 16,
 *                           .k_h = 3, .k_w = 3, .stride_h = 1, .stride_w = 1,
 *                           .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_left = 1,
 *                           .in_zp = zp_in, .out_zp = zp_out, .act_min = lo, .act_max = hi,
 *                           .multipliers = m, .shifts = s};
 *     rg_q_conv2d_s8(&p, x, w, bias, y, &err);
 */
#ifndef REGAIN_QUANT_KERNELS_H
#define REGAIN_QUANT_KERNELS_H

#include <stdint.h>

#include "regain/quant.h"

/* Output size of a convolution or pooling window along one axis:
 * (in + pad_before + pad_after - dilation*(k-1) - 1) / stride + 1, or 0 when
 * the window never fits. */
int32_t rg_q_out_size(int32_t in, int32_t k, int32_t stride, int32_t dilation, int32_t pad_before,
                      int32_t pad_after);

/* Convolution (dense and depthwise). Input [batch, in_h, in_w, in_c],
 * output [batch, out_h, out_w, out_c]. Taps outside the input read real 0
 * (the zero point), i.e. contribute nothing. */
typedef struct {
    int32_t batch, in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dilation_h, dilation_w;
    int32_t pad_top, pad_left;      /* bottom/right padding follow from out_h/out_w */
    int32_t in_zp, out_zp;          /* in [-128, 127] */
    int32_t act_min, act_max;       /* -128 <= act_min <= act_max <= 127 */
    const int32_t *multipliers;     /* [out_c], each >= 0 */
    const int32_t *shifts;          /* [out_c], each in [-31, 30] */
    const float *scales;            /* [out_c] finite, >= 0: fp32 requantization; NULL: the multipliers */
} rg_q_conv_params;

/* Dense convolution. w: OHWI [out_c, k_h, k_w, in_c], int8 (symmetric, zero
 * point 0); bias: [out_c] int32 or NULL. out_h/out_w must be at most what
 * the padding allows (rg_q_out_size with pad_bottom/right >= 0). */
rg_status rg_q_conv2d_s8(const rg_q_conv_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                         int8_t *y, rg_error *err);

/* Depthwise convolution, channel multiplier 1: out_c == in_c; w:
 * [c, k_h, k_w] (regain's [C, KH, KW, 1]); bias [c] or NULL. */
rg_status rg_q_depthwise_s8(const rg_q_conv_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                            int8_t *y, rg_error *err);

/* Fully connected: x [batch, in_features], w [out_features, in_features],
 * bias [out_features] or NULL, y [batch, out_features]. */
typedef struct {
    int32_t batch, in_features, out_features;
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;
    const int32_t *multipliers;     /* [out_features] */
    const int32_t *shifts;          /* [out_features] */
    const float *scales;            /* [out_features] or NULL, as rg_q_conv_params's */
} rg_q_fc_params;

rg_status rg_q_fc_s8(const rg_q_fc_params *p, const int8_t *x, const int8_t *w, const int32_t *bias, int8_t *y,
                     rg_error *err);

/* Pointwise (1x1, stride 1, no padding) convolution: the fully connected
 * kernel over batch*h*w rows (p->batch counts pixels here). Same bits as
 * rg_q_conv2d_s8 with k = 1. */
rg_status rg_q_pointwise_s8(const rg_q_fc_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                            int8_t *y, rg_error *err);

/* Elementwise add of two int8 tensors with their own parameters (a residual
 * connection), TFLite's int8 add. Fill with rg_q_add_prepare. */
typedef struct {
    int32_t in1_zp, in2_zp, out_zp;
    int32_t left_shift;             /* 20 for int8 */
    int32_t in1_multiplier, in1_shift, in2_multiplier, in2_shift;
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
    /* fp32 requantization (regain/quant.h rg_q_requant_fp32's rule) when
     * both are > 0: u = (float)(a - in1_zp) * in1_scale, w = (float)(b -
     * in2_zp) * in2_scale, y = round_half_even(clamp(u + w)) + out_zp, each
     * step one IEEE single operation; in*_scale = s_in* / s_out. Both 0:
     * the fixed-point rule above (the multipliers are checked either way). */
    float in1_scale, in2_scale;
} rg_q_add_params;

/* From the two inputs' and the output's parameters, as TFLite prepares its
 * add: twice_max = 2 * max(s1, s2); input multipliers s_i / twice_max
 * (< 1); output multiplier twice_max / (2^20 * s_out). act_min/act_max from
 * the fused activation. */
rg_status rg_q_add_prepare(rg_qparams in1, rg_qparams in2, rg_qparams out, rg_q_activation act,
                           rg_q_add_params *p, rg_error *err);

/* y[i] = add(a[i], b[i]) for n elements (same shapes; no broadcast). */
rg_status rg_q_add_s8(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y,
                      rg_error *err);

/* Average and max pooling (input and output share their parameters: pooling
 * commutes with the affine map, so no rescaling). Windows are clipped to the
 * input; the average divides by the number of valid taps (TFLite: padding
 * does not count), rounding half away from zero. */
typedef struct {
    int32_t batch, in_h, in_w, c;
    int32_t out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} rg_q_pool_params;

rg_status rg_q_avgpool_s8(const rg_q_pool_params *p, const int8_t *x, int8_t *y, rg_error *err);
rg_status rg_q_maxpool_s8(const rg_q_pool_params *p, const int8_t *x, int8_t *y, rg_error *err);

/* Global average pooling [batch, h, w, c] -> [batch, c] as TFLite's int8
 * Mean: acc = sum (x - in_zp); acc = mul_by_multiplier(acc, m, s) with
 * m, s from in_scale / out_scale; acc = acc / (h*w) rounded half away from
 * zero; y = clamp(acc + out_zp). Fill with rg_q_gap_prepare. */
typedef struct {
    int32_t batch, h, w, c;
    int32_t in_zp, out_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} rg_q_gap_params;

rg_status rg_q_gap_prepare(int32_t batch, int32_t h, int32_t w, int32_t c, rg_qparams in, rg_qparams out,
                           rg_q_gap_params *p, rg_error *err);
rg_status rg_q_gap_s8(const rg_q_gap_params *p, const int8_t *x, int8_t *y, rg_error *err);

/* y[i] = clamp(x[i], lo, hi) (a standalone ReLU / ReLU6 on int8 values;
 * bounds from rg_q_activation_range). x and y may be the same buffer. */
rg_status rg_q_clamp_s8(const int8_t *x, int64_t n, int32_t lo, int32_t hi, int8_t *y, rg_error *err);

/* ------------------------------------------------------------------------
 * Channel ops, multiply, lookup tables (ShuffleNet, squeeze-excitation,
 * MobileNetV3). All NHWC; "rows" counts pixels (batch * h * w).
 * ------------------------------------------------------------------------ */

/* y[r, c] = clamp(x[r, c], act_min, hi[c]): the per-output-channel upper
 * clamp that equalization leaves on a ReLU6 layer (each channel's 6 divided
 * by its equalization scale), applied after the layer's own clamp. hi: [c],
 * each in [-128, 127]; x and y may be the same buffer. Exact. */
rg_status rg_q_clamp_channels_s8(const int8_t *x, int64_t rows, int32_t c, const int32_t *hi, int8_t *y,
                                 rg_error *err);

/* Channel split: y [rows, out_c] = x [rows, begin : begin + out_c] of x
 * [rows, in_c] (one output of a split; ShuffleNet's two halves are two
 * ops). Input and output share their parameters: a copy, exact. */
rg_status rg_q_split_s8(const int8_t *x, int64_t rows, int32_t in_c, int32_t begin, int32_t out_c, int8_t *y,
                        rg_error *err);

/* Channel shuffle (ShuffleNet): the c channels, seen as [groups, c/groups],
 * transposed: y[r, j*groups + g] = x[r, g*(c/groups) + j]. groups divides c.
 * A permutation, exact; x and y must not overlap. */
rg_status rg_q_shuffle_s8(const int8_t *x, int64_t rows, int32_t c, int32_t groups, int8_t *y, rg_error *err);

/* Concatenation along channels of up to RG_Q_CONCAT_MAX inputs, each
 * requantized to the output's parameters:
 *   y = clamp(out_zp + MBQM(x_k - in_zp[k], multiplier[k], shift[k]))
 * (MBQM: rg_q_mul_by_multiplier; M_k = s_k / s_out). An input with the
 * output's parameters (M_k = 1, i.e. multiplier 2^30 and shift 1, and the
 * same zero point) is copied, which is the same bits. */
#define RG_Q_CONCAT_MAX 4
typedef struct {
    int32_t n_in;                           /* 1 .. RG_Q_CONCAT_MAX */
    int32_t c[RG_Q_CONCAT_MAX];             /* channels of each input, >= 1 */
    int32_t in_zp[RG_Q_CONCAT_MAX];
    int32_t multiplier[RG_Q_CONCAT_MAX], shift[RG_Q_CONCAT_MAX];
    int32_t out_zp;
} rg_q_concat_params;

/* x[k]: [rows, c[k]]; y: [rows, sum c]. */
rg_status rg_q_concat_s8(const rg_q_concat_params *p, const int8_t *const *x, int64_t rows, int8_t *y,
                         rg_error *err);

/* Elementwise multiply with broadcast, TFLite's int8 Mul:
 *   acc = (a - in1_zp) * (b - in2_zp)                 (|acc| <= 65536)
 *   y   = clamp(out_zp + MBQM(acc, multiplier, shift), act_min, act_max)
 * with multiplier/shift from M = s1 * s2 / s_out (rg_q_mul_prepare). */
typedef struct {
    int32_t in1_zp, in2_zp, out_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} rg_q_mul_params;

/* a: [batch, hw, c]; b: [batch, b_hw, c] with b_hw == hw (same shape) or
 * b_hw == 1 (one value per image and channel, broadcast over the pixels:
 * squeeze-excitation's [N, 1, 1, C] gate); y: [batch, hw, c]. y may be a. */
rg_status rg_q_mul_s8(const rg_q_mul_params *p, const int8_t *a, const int8_t *b, int32_t batch, int64_t hw,
                      int32_t c, int64_t b_hw, int8_t *y, rg_error *err);

/* Table lookup: y[i] = table[x[i] + 128] (an int8 -> int8 function of one
 * argument, tabulated at lowering time: hard-swish, sigmoid; see
 * rg_q_lut_build). Exact by construction; x and y may be the same buffer. */
rg_status rg_q_lut_s8(const int8_t *table, const int8_t *x, int64_t n, int8_t *y, rg_error *err);

/* ---- preparing them (lowering time; uses libm, not for a device) ---- */

/* The functions a lookup table can hold (the values are the .rgm file's). */
typedef enum { RG_Q_LUT_HSWISH = 1, RG_Q_LUT_SIGMOID = 2 } rg_q_lut_fn;
#define RG_Q_LUT_FN_MAX 2

/* "hswish", "sigmoid", or "?" */
const char *rg_q_lut_fn_name(int32_t fn);

/* The real function in double: hswish(x) = x * min(max(x + 3, 0), 6) / 6;
 * sigmoid(x) = 1 / (1 + exp(-x)). */
double rg_q_lut_fn_eval(rg_q_lut_fn fn, double x);

/* table[q + 128] for q in [-128, 127]:
 *   x = s_in * (q - z_in)                (double, from the float scale)
 *   table = clamp(round(f(x) / s_out) + z_out, -128, 127)
 * (round half away from zero, the division in double). Errors: unknown fn,
 * bad parameters (RG_ERR_ARG naming them). */
rg_status rg_q_lut_build(rg_q_lut_fn fn, rg_qparams in, rg_qparams out, int8_t table[256], rg_error *err);

/* From the inputs' and the output's parameters: multiplier and shift of
 * M = s1 * s2 / s_out (rg_q_multiplier, in double), the zero points, and
 * act_min/act_max from act. Errors: bad parameters, M >= 2^30. */
rg_status rg_q_mul_prepare(rg_qparams in1, rg_qparams in2, rg_qparams out, rg_q_activation act,
                           rg_q_mul_params *p, rg_error *err);

/* Concat parameters: M_k = s_k / s_out for each of the n inputs (channels
 * c[k]) and the zero points. */
rg_status rg_q_concat_prepare(int32_t n, const rg_qparams *in, const int32_t *c, rg_qparams out,
                              rg_q_concat_params *p, rg_error *err);

#endif
