/* Executing a lowered int8 model with the integer reference kernels, and
 * planning its arena (contract in include/regain/quant_model.h). */
#include "regain/quant_model.h"

#include <stdlib.h>
#include <string.h>

static size_t tensor_size(const rg_qtensor *t)
{
    return (size_t)t->h * t->w * t->c;
}

/* Greedy by size, as src/graph/plan.c does for floats: a tensor lives from
 * the op that writes it (the input: from before the first op) to the last op
 * that reads it (the output: to the end). Tensors are taken largest first
 * (ties by id, so the plan is deterministic) and each goes to the lowest
 * 64-byte aligned offset where it overlaps no placed tensor whose lifetime
 * meets its own. An op's inputs live through the op, so its output never
 * lands on them. */
void rg_qmodel_plan_arena(rg_qmodel *m, int all_tensors)
{
    const int32_t nt = m->n_tensors;
    size_t total = 0;
    for (int32_t t = 0; t < nt; t++) total += (tensor_size(&m->tensors[t]) + 63) & ~(size_t)63;
    m->tensor_bytes = total;
    int32_t *first = malloc(sizeof(int32_t) * (size_t)nt * 3);
    if (all_tensors || !first) { /* one slot each (also the fallback without memory) */
        free(first);
        size_t off = 0;
        for (int32_t t = 0; t < nt; t++) {
            m->tensors[t].offset = off;
            off += (tensor_size(&m->tensors[t]) + 63) & ~(size_t)63;
        }
        m->image_bytes = off;
        return;
    }
    int32_t *last = first + nt, *order = first + 2 * nt;
    for (int32_t t = 0; t < nt; t++) {
        first[t] = m->n_ops;
        last[t] = -1;
        order[t] = t;
    }
    first[m->input] = -1;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_qop *o = &m->ops[i];
        if (first[o->out] > i) first[o->out] = i;
        if (last[o->out] < i) last[o->out] = i;
        for (int32_t k = 0; k < o->n_in; k++)
            if (o->in[k] >= 0 && last[o->in[k]] < i) last[o->in[k]] = i;
    }
    last[m->output] = m->n_ops;
    for (int32_t a = 1; a < nt; a++) { /* insertion sort: size descending, id ascending */
        int32_t t = order[a], j = a;
        size_t st = tensor_size(&m->tensors[t]);
        while (j > 0 && tensor_size(&m->tensors[order[j - 1]]) < st) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = t;
    }
    size_t peak = 0;
    for (int32_t a = 0; a < nt; a++) {
        int32_t t = order[a];
        size_t size = (tensor_size(&m->tensors[t]) + 63) & ~(size_t)63, off = 0;
        int moved = 1;
        while (moved) { /* first fit: move past every conflicting placed tensor */
            moved = 0;
            for (int32_t b = 0; b < a; b++) {
                int32_t u = order[b];
                if (last[u] < first[t] || last[t] < first[u]) continue;
                size_t uo = m->tensors[u].offset, us = (tensor_size(&m->tensors[u]) + 63) & ~(size_t)63;
                if (off < uo + us && uo < off + size) {
                    off = uo + us;
                    moved = 1;
                }
            }
        }
        m->tensors[t].offset = off;
        if (off + size > peak) peak = off + size;
    }
    m->image_bytes = peak;
    free(first);
}

size_t rg_qmodel_arena_bytes(const rg_qmodel *m, int32_t batch)
{
    return m->image_bytes * (size_t)(batch > 0 ? batch : 0);
}

int8_t *rg_qmodel_tensor(const rg_qmodel *m, int8_t *arena, int32_t batch, int32_t t)
{
    return arena + m->tensors[t].offset * (size_t)batch;
}

static rg_status run_op(const rg_qmodel *m, const rg_qop *o, int8_t *arena, int32_t batch, rg_error *err)
{
    const rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    const int8_t *x = rg_qmodel_tensor(m, arena, batch, o->in[0]);
    int8_t *y = rg_qmodel_tensor(m, arena, batch, o->out);
    switch (o->kind) {
    case RG_QOP_CONV:
    case RG_QOP_DEPTHWISE: {
        rg_q_conv_params p = {.batch = batch, .in_h = in->h, .in_w = in->w, .in_c = in->c, .out_h = out->h,
                              .out_w = out->w, .out_c = out->c, .k_h = o->k_h, .k_w = o->k_w, .stride_h = o->stride,
                              .stride_w = o->stride, .dilation_h = 1, .dilation_w = 1, .pad_top = o->pad,
                              .pad_left = o->pad, .in_zp = in->q.zero_point, .out_zp = out->q.zero_point,
                              .act_min = o->act_min, .act_max = o->act_max, .multipliers = o->multipliers,
                              .shifts = o->shifts, .scales = o->scales};
        rg_status st = o->kind == RG_QOP_CONV ? rg_q_conv2d_s8(&p, x, o->weights, o->bias, y, err)
                                              : rg_q_depthwise_s8(&p, x, o->weights, o->bias, y, err);
        if (!st && o->act_max_c) /* per-channel upper clamp after equalization */
            st = rg_q_clamp_channels_s8(y, (int64_t)batch * out->h * out->w, out->c, o->act_max_c, y, err);
        return st;
    }
    case RG_QOP_CONCAT: {
        /* each input rescaled to the output's parameters (a copy when equal) */
        rg_q_concat_params p = {.n_in = o->n_in, .out_zp = out->q.zero_point};
        const int8_t *xs[RG_Q_CONCAT_MAX];
        if (o->n_in < 1 || o->n_in > RG_Q_CONCAT_MAX)
            return rg_fail(err, RG_ERR_ARG, "qmodel: concat of %d inputs", (int)o->n_in);
        for (int32_t k = 0; k < o->n_in; k++) {
            const rg_qtensor *ti = &m->tensors[o->in[k]];
            xs[k] = rg_qmodel_tensor(m, arena, batch, o->in[k]);
            p.c[k] = ti->c;
            p.in_zp[k] = ti->q.zero_point;
            p.multiplier[k] = o->cat_multipliers[k];
            p.shift[k] = o->cat_shifts[k];
        }
        return rg_q_concat_s8(&p, xs, (int64_t)batch * out->h * out->w, y, err);
    }
    case RG_QOP_SPLIT:
        return rg_q_split_s8(x, (int64_t)batch * out->h * out->w, in->c, o->ch_begin, out->c, y, err);
    case RG_QOP_SHUFFLE:
        return rg_q_shuffle_s8(x, (int64_t)batch * out->h * out->w, out->c, o->groups, y, err);
    case RG_QOP_MUL: {
        const rg_qtensor *b = &m->tensors[o->in[1]];
        return rg_q_mul_s8(&o->mul, x, rg_qmodel_tensor(m, arena, batch, o->in[1]), batch, (int64_t)out->h * out->w,
                           out->c, (int64_t)b->h * b->w, y, err);
    }
    case RG_QOP_LUT:
        return rg_q_lut_s8(o->lut, x, (int64_t)batch * out->h * out->w * out->c, y, err);
    case RG_QOP_FC: {
        rg_q_fc_params p = {.batch = batch, .in_features = in->h * in->w * in->c, .out_features = o->out_c,
                            .in_zp = in->q.zero_point, .out_zp = out->q.zero_point, .act_min = o->act_min,
                            .act_max = o->act_max, .multipliers = o->multipliers, .shifts = o->shifts,
                            .scales = o->scales};
        return rg_q_fc_s8(&p, x, o->weights, o->bias, y, err);
    }
    case RG_QOP_ADD:
        return rg_q_add_s8(&o->add, x, rg_qmodel_tensor(m, arena, batch, o->in[1]),
                           (int64_t)batch * out->h * out->w * out->c, y, err);
    case RG_QOP_CLAMP:
        return rg_q_clamp_s8(x, (int64_t)batch * out->h * out->w * out->c, o->act_min, o->act_max, y, err);
    case RG_QOP_AVGPOOL:
    case RG_QOP_MAXPOOL: {
        rg_q_pool_params p = {.batch = batch, .in_h = in->h, .in_w = in->w, .c = in->c, .out_h = out->h,
                              .out_w = out->w, .k_h = o->k_h, .k_w = o->k_w, .stride_h = o->stride,
                              .stride_w = o->stride, .pad_top = o->pad, .pad_left = o->pad, .act_min = o->act_min,
                              .act_max = o->act_max};
        return o->kind == RG_QOP_AVGPOOL ? rg_q_avgpool_s8(&p, x, y, err) : rg_q_maxpool_s8(&p, x, y, err);
    }
    case RG_QOP_GAP: {
        rg_q_gap_params p = o->gap;
        p.batch = batch;
        return rg_q_gap_s8(&p, x, y, err);
    }
    }
    return rg_fail(err, RG_ERR_ARG, "qmodel: op %s has unknown kind %d", o->name, (int)o->kind);
}

rg_status rg_qmodel_run(const rg_qmodel *m, int8_t *arena, const int8_t *in, int32_t batch, int8_t *out,
                        rg_error *err)
{
    if (batch < 1) return rg_fail(err, RG_ERR_ARG, "qmodel: batch %d must be >= 1", (int)batch);
    const rg_qtensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    memcpy(rg_qmodel_tensor(m, arena, batch, m->input), in, (size_t)batch * ti->h * ti->w * ti->c);
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_status st = run_op(m, &m->ops[i], arena, batch, err);
        if (st) return rg_error_prefix(err, "qmodel: %s", m->ops[i].name);
    }
    memcpy(out, rg_qmodel_tensor(m, arena, batch, m->output), (size_t)batch * to->h * to->w * to->c);
    return RG_OK;
}

rg_status rg_qmodel_run_float(const rg_qmodel *m, int8_t *arena, const float *in, int32_t batch, float *out,
                              rg_error *err)
{
    if (batch < 1) return rg_fail(err, RG_ERR_ARG, "qmodel: batch %d must be >= 1", (int)batch);
    const rg_qtensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    int8_t *x = rg_qmodel_tensor(m, arena, batch, m->input);
    rg_status st = rg_q_quantize(in, (size_t)batch * ti->h * ti->w * ti->c, ti->q, RG_Q_ACT_MIN, RG_Q_ACT_MAX, x, err);
    if (st) return st;
    for (int32_t i = 0; i < m->n_ops; i++) {
        st = run_op(m, &m->ops[i], arena, batch, err);
        if (st) return rg_error_prefix(err, "qmodel: %s", m->ops[i].name);
    }
    rg_q_dequantize(rg_qmodel_tensor(m, arena, batch, m->output), (size_t)batch * to->h * to->w * to->c, to->q, out);
    return RG_OK;
}
