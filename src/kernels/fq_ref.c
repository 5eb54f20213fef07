/* Reference fake-quantization kernels (QAT): the integer model's rounding
 * and requantization, value by value (regain/quant.h, quant/qround.h). */
#include "kernels/ref.h"
#include "quant/qround.h"

void rg_ref_minmax(const float *x, size_t n, float *lo, float *hi)
{
    float a = x[0], b = x[0];
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        nan |= x[i] != x[i];
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *lo = nan ? NAN : a;
    *hi = nan ? NAN : b;
}

void rg_ref_fq_forward(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax, float *y)
{
    rg_qparams p = {scale, zp};
    for (size_t i = 0; i < n; i++) y[i] = scale * (float)(rg_q_quantize_code(x[i], p, qmin, qmax) - zp);
}

void rg_ref_fq_ste(const float *x, const float *dy, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                   float *dx)
{
    for (size_t i = 0; i < n; i++) {
        /* in float: |x / scale| may exceed int32 */
        float v = rg_q_roundf(x[i] / scale) + (float)zp;
        if (v >= (float)qmin && v <= (float)qmax) dx[i] += dy[i];
    }
}

void rg_ref_fq_requant(const float *x, size_t rows, int32_t c, const rg_fq_requant *q, float *y)
{
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) {
            size_t i = r * (size_t)c + (size_t)k;
            double a = rg_q_round((double)x[i] * q->inv_acc[k]);
            a = a != a ? 0.0 : a > 2147483647.0 ? 2147483647.0 : a < -2147483647.0 ? -2147483647.0 : a;
            int64_t v = (int64_t)rg_q_mul_by_multiplier((int32_t)a, q->mult[k], q->shift[k]) + q->zero_point;
            v = v < q->lo ? q->lo : v > q->hi ? q->hi : v;
            y[i] = q->scale * (float)(v - q->zero_point);
        }
}

void rg_ref_fq_add(const float *a, const float *b, size_t n, const rg_fq_add *p, float *y)
{
    const rg_q_add_params *q = &p->add;
    rg_qparams pa = {p->scale_a, q->in1_zp}, pb = {p->scale_b, q->in2_zp};
    for (size_t i = 0; i < n; i++) {
        /* rg_q_add_s8 on the two codes */
        int32_t v1 = (rg_q_quantize_code(a[i], pa, -128, 127) - q->in1_zp) * (1 << q->left_shift);
        int32_t v2 = (rg_q_quantize_code(b[i], pb, -128, 127) - q->in2_zp) * (1 << q->left_shift);
        int64_t sum = (int64_t)rg_q_mul_by_multiplier(v1, q->in1_multiplier, q->in1_shift) +
                      rg_q_mul_by_multiplier(v2, q->in2_multiplier, q->in2_shift);
        sum = sum > INT32_MAX ? INT32_MAX : sum < INT32_MIN ? INT32_MIN : sum;
        int64_t r = (int64_t)rg_q_mul_by_multiplier((int32_t)sum, q->out_multiplier, q->out_shift) + q->out_zp;
        r = r < q->act_min ? q->act_min : r > q->act_max ? q->act_max : r;
        y[i] = p->scale_y * (float)(r - q->out_zp);
    }
}
