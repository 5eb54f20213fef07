/* regain — the int8 quantization scheme and its fixed-point arithmetic.
 *
 * regain follows TFLite's int8 scheme, so that a model scores the same on the
 * host as on a device (derivations: docs/quantization.md):
 *
 *   real = scale * (q - zero_point)
 *
 *   - activations: asymmetric int8 per tensor, q in [-128, 127], a zero point
 *     chosen so that real 0 is exactly representable (padding, ReLU);
 *   - weights: symmetric int8 per output channel (or per tensor), zero point
 *     0, q in [-127, 127] (so that -q never overflows);
 *   - bias: int32, scale s_in * s_w[c], zero point 0;
 *   - requantization: the real multiplier M = s_in * s_w[c] / s_out is
 *     stored as a Q31 integer M0 in [2^30, 2^31) and a shift with
 *     M = M0 * 2^(shift - 31), applied with gemmlowp's saturating rounding
 *     doubling high multiply and rounding divide by a power of two.
 *
 * Rounding: every float -> int conversion rounds half away from zero (C's
 * round, TFLite's TfLiteRound) and divides by the scale (x / scale, in
 * float), as TFLite's reference Quantize does.
 *
 *     rg_qparams a;
 *     rg_q_params_from_range(-1.5f, 6.0f, RG_Q_ACT_MIN, RG_Q_ACT_MAX, &a, &err);
 *     rg_q_quantize(x, n, a, RG_Q_ACT_MIN, RG_Q_ACT_MAX, q, &err);
 *
 *     int32_t m, s;
 *     rg_q_multiplier(0.0123, &m, &s, &err);    // once, at lowering time
 *     int32_t y = rg_q_mul_by_multiplier(acc, m, s);  // per output value
 *
 * The integer reference kernels are in regain/quant_kernels.h, observers in
 * regain/observer.h, fake quantization for QAT in regain/fake_quant.h.
 */
#ifndef REGAIN_QUANT_H
#define REGAIN_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"

#define RG_Q_ACT_MIN (-128)   /* activations: the full int8 range */
#define RG_Q_ACT_MAX 127
#define RG_Q_W_MIN (-127)     /* weights: symmetric, -128 unused */
#define RG_Q_W_MAX 127
#define RG_Q_SHIFT_MIN (-31)  /* range of a multiplier's shift (see rg_q_multiplier) */
#define RG_Q_SHIFT_MAX 30

/* The affine map of one tensor (or one channel): real = scale * (q - zero_point). */
typedef struct {
    float scale;          /* > 0, finite */
    int32_t zero_point;   /* in [qmin, qmax] */
} rg_qparams;

/* ------------------------------------------------------------------------
 * Scheme: quantization parameters, quantize, dequantize
 * ------------------------------------------------------------------------ */

/* Asymmetric parameters for values observed in [lo, hi], to integers in
 * [qmin, qmax] (qmin < qmax, both within int32 and qmax - qmin <= 65535).
 * The range is first widened to contain 0 (lo = min(lo, 0), hi = max(hi, 0))
 * so that real 0 (padding, the ReLU floor) is an integer exactly. Then, as
 * PyTorch's observers compute them (float32 arithmetic):
 *   scale = max((hi - lo) / (qmax - qmin), FLT_EPSILON)
 *   zero_point = clamp(qmin - round(lo / scale), qmin, qmax)
 * (round half away from zero; PyTorch rounds half to even, which differs
 * only when lo / scale is exactly half an integer). The range actually
 * represented, scale * ([qmin, qmax] - zero_point), is [lo, hi] nudged by
 * less than scale / 2 at each end.
 * Errors (RG_ERR_ARG, message naming lo/hi/qmin/qmax): NaN or infinite ends,
 * lo > hi, qmin >= qmax. */
rg_status rg_q_params_from_range(float lo, float hi, int32_t qmin, int32_t qmax, rg_qparams *out,
                                 rg_error *err);

/* Symmetric parameters (zero point 0) for values in [-absmax, absmax] to
 * integers in [-qmax, qmax]: scale = max(absmax / qmax, FLT_EPSILON).
 * Errors: absmax NaN, infinite or negative; qmax < 1. */
rg_status rg_q_params_symmetric(float absmax, int32_t qmax, rg_qparams *out, rg_error *err);

/* Checks that p is usable with integers in [qmin, qmax]: scale finite and
 * > 0 (and normal: 1 / scale must be finite), zero point in [qmin, qmax].
 * what names the tensor in the message ("conv1 input"). */
rg_status rg_q_params_check(rg_qparams p, int32_t qmin, int32_t qmax, const char *what, rg_error *err);

/* One value: clamp(round(x / scale) + zero_point, qmin, qmax); NaN maps to
 * the zero point (real 0). No checks (rg_q_params_check first). */
int32_t rg_q_quantize_value(float x, rg_qparams p, int32_t qmin, int32_t qmax);

/* q[i] = rg_q_quantize_value(x[i], p, qmin, qmax) for n values, qmin and
 * qmax within [-128, 127]. Errors: bad p (rg_q_params_check), bad range. */
rg_status rg_q_quantize(const float *x, size_t n, rg_qparams p, int32_t qmin, int32_t qmax, int8_t *q,
                        rg_error *err);

/* x[i] = scale * (q[i] - zero_point), in float. */
void rg_q_dequantize(const int8_t *q, size_t n, rg_qparams p, float *x);

/* Symmetric weight quantization. w holds `channels` rows of `per_channel`
 * floats each (regain's weight layouts put the output channel first: OHWI
 * convolutions, [out, in] linear layers). With per_channel != 0 each row
 * gets its own scale (scales[channels]); otherwise one scale for the whole
 * tensor (scales[0]). scale = max|w| / 127 over the row (tensor), floored at
 * FLT_EPSILON; q in [-127, 127]. Errors: non-finite weights (the message
 * names the channel), channels < 1. */
rg_status rg_q_quantize_weights(const float *w, int32_t channels, size_t per_channel, int per_channel_scales,
                                int8_t *q, float *scales, rg_error *err);

/* Bias quantization: q[c] = round(b[c] / (in_scale * w_scale[c])) in
 * double from the float product in_scale * w_scale[c] (as TFLite), with
 * w_scale[c] = w_scales[per_channel_scales ? c : 0]; saturated to
 * [-INT32_MAX, INT32_MAX]. *saturated (may be NULL) receives the number of
 * saturated entries (a sign that the weight or input scale is far too
 * small). Errors: non-finite bias, bad scales. */
rg_status rg_q_quantize_bias(const float *b, int32_t channels, float in_scale, const float *w_scales,
                             int per_channel_scales, int32_t *q, int32_t *saturated, rg_error *err);

/* ------------------------------------------------------------------------
 * Fixed point (gemmlowp / TFLite semantics, bit for bit)
 * ------------------------------------------------------------------------ */

/* Decomposes a real multiplier M >= 0 into (m, shift) with
 *   M ~= m * 2^(shift - 31),  m in [2^30, 2^31 - 1] (Q31 of [0.5, 1)),
 * as TFLite's QuantizeMultiplier: frexp gives M = f * 2^shift with f in
 * [0.5, 1), m = round(f * 2^31) (half away from zero); if that rounds up to
 * 2^31, m = 2^30 and shift + 1. M = 0 gives (0, 0); M below about 2^-32
 * (shift < -31) is flushed to (0, 0) as TFLite does (every product would
 * round to 0 anyway). Errors (RG_ERR_ARG): M NaN, infinite or negative;
 * shift > 30 (M >= 2^30), which the int32 left shift cannot carry. */
rg_status rg_q_multiplier(double real_multiplier, int32_t *multiplier, int32_t *shift, rg_error *err);

/* Checks a (multiplier, shift) pair as the kernels need it: multiplier >= 0,
 * shift in [RG_Q_SHIFT_MIN, RG_Q_SHIFT_MAX]. what names it in the message. */
rg_status rg_q_multiplier_check(int32_t multiplier, int32_t shift, const char *what, rg_error *err);

/* gemmlowp SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b,
 * rounded half up (toward +infinity: the nudge is 2^30 for a*b >= 0 and
 * 1 - 2^30 below, then division truncates), i.e. round(a*b / 2^31) with
 * ties toward +inf; the one overflow, a = b = INT32_MIN, saturates to
 * INT32_MAX. */
static inline int32_t rg_q_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX; /* 2^62 * 2 / 2^32 does not fit */
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30));
    /* C division truncates toward zero, as gemmlowp relies on */
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away
 * from zero; exponent in [0, 31] (not checked). */
static inline int32_t rg_q_rdbpot(int32_t x, int32_t exponent)
{
    int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* >> of a negative int is an arithmetic shift with gcc and clang */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier: x * m * 2^(shift - 31) as
 *   rdbpot(srdhm(x * 2^max(shift, 0), m), max(-shift, 0)).
 * The left shift is done in 64 bits and saturated to int32 (TFLite's int32
 * product would overflow there; with real models it never does). Requires
 * shift in [RG_Q_SHIFT_MIN, RG_Q_SHIFT_MAX] (not checked here). */
static inline int32_t rg_q_mul_by_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * (INT64_C(1) << left);
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return rg_q_rdbpot(rg_q_srdhm((int32_t)shifted, multiplier), right);
}

/* The last steps of the fp32 rule: v clamped to [act_min - zp, act_max -
 * zp], rounded to the nearest integer, ties to even, plus zp. */
static inline int32_t rg_q_round_fp32(float v, int32_t zp, int32_t act_min, int32_t act_max)
{
    const float lo = (float)(act_min - zp), hi = (float)(act_max - zp);
    float c = v < lo ? lo : v > hi ? hi : v;
    return (int32_t)((c + 12582912.0f) - 12582912.0f) + zp;
}

/* Whether s can be an fp32 requantization scale: finite and >= 0 (NaN
 * fails every comparison; infinity minus itself is NaN). */
static inline int rg_q_scale_valid(float s) { return s >= 0.0f && s - s == 0.0f; }

/* The fp32 requantization, a layer's alternative to the multipliers
 * (regain/quant_kernels.h, `scales`): the accumulator times the channel's
 * float scale (s_in * s_w / s_out), in IEEE single precision, clamped to
 * [act_min - zp, act_max - zp], rounded to the nearest integer (ties to
 * even), plus the zero point. It is the rule XNNPACK, ONNX Runtime's MLAS and
 * oneDNN requantize with; each step is one correctly rounded IEEE operation,
 * so every machine with IEEE floats (an x86 vector unit, a Cortex-M4F's
 * FPU, soft-float) gives the same bits. The rounding adds and subtracts
 * 1.5 * 2^23, which rounds |v| < 2^22 to an integer in the current (nearest
 * even) mode without libm; after the clamp |v| <= 255. */
static inline int32_t rg_q_requant_fp32(int32_t acc, float scale, int32_t zp, int32_t act_min, int32_t act_max)
{
    volatile float v = (float)acc * scale; /* volatile: rounded on its own, never fused into the add below */
    return rg_q_round_fp32(v, zp, act_min, act_max);
}

/* Requantization of one convolution or fully connected layer: for each
 * output channel c, rg_q_multiplier(in_scale * w_scale / out_scale) in
 * double, with w_scale = w_scales[n_w_scales == 1 ? 0 : c]. n_w_scales is 1
 * (per tensor) or out_channels (per channel). Fills multipliers[out_channels]
 * and shifts[out_channels]. Errors: bad scales, a multiplier out of range
 * (the message names the channel). */
rg_status rg_q_requant_params(float in_scale, const float *w_scales, int32_t n_w_scales, float out_scale,
                              int32_t out_channels, int32_t *multipliers, int32_t *shifts, rg_error *err);

/* Fused activations, as clamps of the output's integer range. */
typedef enum { RG_Q_ACT_NONE = 0, RG_Q_ACT_RELU = 1, RG_Q_ACT_RELU6 = 2 } rg_q_activation;

/* The output clamp [*lo, *hi] for activation act on an output with
 * parameters out (TFLite CalculateActivationRangeQuantized): NONE gives
 * [-128, 127]; RELU [max(-128, zp), 127]; RELU6 additionally
 * hi = min(127, zp + round(6 / scale)). Errors: bad out, unknown act. */
rg_status rg_q_activation_range(rg_q_activation act, rg_qparams out, int32_t *lo, int32_t *hi, rg_error *err);

#endif
