/* The runtime's reference-kernel ops (rt_ref_ops.h): the parameter structs
 * of the integer reference kernels, filled from a checked .rgm op and its
 * tensors (zero points always come from the tensors). */
#include "rt/rt_ref_ops.h"

void rg_rt_ref_op(const rg_rgm *m, const rg_rgm_op *o, const int8_t *const *x, int8_t *y, int32_t batch)
{
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    const int64_t hw = (int64_t)out->h * out->w, rows = (int64_t)batch * hw;
    switch (o->kind) {
    case RG_RT_CONCAT: {
        rg_q_concat_params p = {.n_in = o->n_in, .out_zp = out->q.zero_point};
        for (int32_t k = 0; k < o->n_in; k++) {
            const rg_rgm_tensor *t = &m->tensors[o->in[k]];
            p.c[k] = t->c;
            p.in_zp[k] = t->q.zero_point;
            p.multiplier[k] = o->cat_multipliers[k];
            p.shift[k] = o->cat_shifts[k];
        }
        rg_q_concat_s8(&p, x, rows, y, NULL);
        break;
    }
    case RG_RT_SPLIT: rg_q_split_s8(x[0], rows, in->c, o->ch_begin, out->c, y, NULL); break;
    case RG_RT_SHUFFLE: rg_q_shuffle_s8(x[0], rows, out->c, o->groups, y, NULL); break;
    case RG_RT_MUL: {
        const rg_rgm_tensor *b = &m->tensors[o->in[1]];
        rg_q_mul_params p = {.in1_zp = in->q.zero_point, .in2_zp = b->q.zero_point, .out_zp = out->q.zero_point,
                             .multiplier = o->mul_multiplier, .shift = o->mul_shift, .act_min = o->act_min,
                             .act_max = o->act_max};
        rg_q_mul_s8(&p, x[0], x[1], batch, hw, out->c, (int64_t)b->h * b->w, y, NULL);
        break;
    }
    case RG_RT_LUT: rg_q_lut_s8(o->lut, x[0], rows * out->c, y, NULL); break;
    default: break; /* the other kinds have their own paths (runtime.c) */
    }
}

void rg_rt_clamp_channels(const rg_rgm *m, const rg_rgm_op *o, int8_t *y, int32_t batch)
{
    if (!o->act_max_c) return;
    const rg_rgm_tensor *out = &m->tensors[o->out];
    rg_q_clamp_channels_s8(y, (int64_t)batch * out->h * out->w, out->c, o->act_max_c, y, NULL);
}
