/* Lowering-time parameters of the multiply, concat and lookup-table ops
 * (contracts in include/regain/quant_kernels.h, derivations in
 * docs/quantization.md §3): what is computed once from the tensors'
 * quantization parameters, in double, so that the kernels (and a device)
 * need only integers. Kept apart from the ref_*.c kernels: it uses libm. */
#include "regain/quant_kernels.h"

#include <math.h>

const char *rg_q_lut_fn_name(int32_t fn)
{
    switch (fn) {
    case RG_Q_LUT_HSWISH: return "hswish";
    case RG_Q_LUT_SIGMOID: return "sigmoid";
    default: return "?";
    }
}

double rg_q_lut_fn_eval(rg_q_lut_fn fn, double x)
{
    switch (fn) {
    case RG_Q_LUT_HSWISH: {
        double r = x + 3.0;
        r = r < 0.0 ? 0.0 : r > 6.0 ? 6.0 : r;
        return x * r / 6.0;
    }
    case RG_Q_LUT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    }
    return 0.0;
}

rg_status rg_q_lut_build(rg_q_lut_fn fn, rg_qparams in, rg_qparams out, int8_t table[256], rg_error *err)
{
    if (fn != RG_Q_LUT_HSWISH && fn != RG_Q_LUT_SIGMOID)
        return rg_fail(err, RG_ERR_ARG, "lookup table: function %d unknown (1 hswish, 2 sigmoid)", (int)fn);
    rg_status st;
    if ((st = rg_q_params_check(in, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "lookup table: input", err)) ||
        (st = rg_q_params_check(out, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "lookup table: output", err)))
        return st;
    for (int32_t q = RG_Q_ACT_MIN; q <= RG_Q_ACT_MAX; q++) {
        double x = (double)in.scale * (double)(q - in.zero_point);
        double v = round(rg_q_lut_fn_eval(fn, x) / (double)out.scale) + out.zero_point;
        table[q + 128] = (int8_t)(v < RG_Q_ACT_MIN ? RG_Q_ACT_MIN : v > RG_Q_ACT_MAX ? RG_Q_ACT_MAX : v);
    }
    return RG_OK;
}

rg_status rg_q_mul_prepare(rg_qparams in1, rg_qparams in2, rg_qparams out, rg_q_activation act,
                           rg_q_mul_params *p, rg_error *err)
{
    rg_status st;
    if ((st = rg_q_params_check(in1, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "mul: input 1", err)) ||
        (st = rg_q_params_check(in2, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "mul: input 2", err)) ||
        (st = rg_q_params_check(out, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "mul: output", err)))
        return st;
    double m = (double)in1.scale * (double)in2.scale / (double)out.scale;
    if ((st = rg_q_multiplier(m, &p->multiplier, &p->shift, err))) return rg_error_prefix(err, "mul");
    p->in1_zp = in1.zero_point;
    p->in2_zp = in2.zero_point;
    p->out_zp = out.zero_point;
    return rg_q_activation_range(act, out, &p->act_min, &p->act_max, err);
}

rg_status rg_q_concat_prepare(int32_t n, const rg_qparams *in, const int32_t *c, rg_qparams out,
                              rg_q_concat_params *p, rg_error *err)
{
    if (n < 1 || n > RG_Q_CONCAT_MAX)
        return rg_fail(err, RG_ERR_ARG, "concat: %d inputs, need 1 to %d", (int)n, RG_Q_CONCAT_MAX);
    rg_status st = rg_q_params_check(out, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "concat: output", err);
    if (st) return st;
    p->n_in = n;
    p->out_zp = out.zero_point;
    for (int32_t k = 0; k < n; k++) {
        if ((st = rg_q_params_check(in[k], RG_Q_ACT_MIN, RG_Q_ACT_MAX, "concat: input", err)) ||
            (st = rg_q_multiplier((double)in[k].scale / (double)out.scale, &p->multiplier[k], &p->shift[k], err)))
            return rg_error_prefix(err, "concat input %d", (int)k);
        p->c[k] = c[k];
        p->in_zp[k] = in[k].zero_point;
    }
    return RG_OK;
}
