/* Rounding half away from zero (C's roundf/round), written so that the
 * compiler keeps it inline: without SSE4.1 in the baseline ISA, roundf is a
 * call into libm, and the fake-quantization loops of QAT call it for every
 * activation and weight of every step (11 % of a QAT step in a profile).
 *
 * Exact for every float/double: below 2^23 (2^52) the truncation through an
 * int32 (int64) conversion is exact and so is x - trunc(x); above, every
 * value is already an integer (and inf/NaN pass through, as with roundf).
 * The sign of a zero result follows x, as roundf's does. */
#ifndef RG_QUANT_QROUND_H
#define RG_QUANT_QROUND_H

#include "regain/quant.h"

#include <math.h>
#include <stdint.h>

static inline float rg_q_roundf(float x)
{
    if (!(fabsf(x) < 8388608.0f)) return x;
    float t = (float)(int32_t)x, d = x - t;
    /* comparisons as 0/1 values, not branches: on activations the fraction
     * is random and a branch would be mispredicted half the time */
    float r = t + (float)(d >= 0.5f) - (float)(d <= -0.5f);
    return copysignf(r, x);
}

static inline double rg_q_round(double x)
{
    if (!(fabs(x) < 4503599627370496.0)) return x;
    double t = (double)(int64_t)x, d = x - t;
    double r = t + (double)(d >= 0.5) - (double)(d <= -0.5);
    return copysign(r, x);
}

/* rg_q_quantize_value (regain/quant.h), inline for the per-element loops */
static inline int32_t rg_q_quantize_code(float x, rg_qparams p, int32_t qmin, int32_t qmax)
{
    if (isnan(x)) return p.zero_point;
    /* clamp in float before converting: x / scale may exceed int32 */
    float r = rg_q_roundf(x / p.scale) + (float)p.zero_point;
    if (r <= (float)qmin) return qmin;
    if (r >= (float)qmax) return qmax;
    return (int32_t)r;
}

#endif
