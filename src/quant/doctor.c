/* The quantization doctor (contract in include/regain/quant_doctor.h). */
#include "regain/quant_doctor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rg_qdoc_config rg_qdoc_default(void)
{
    rg_qdoc_config c = {.low_sqnr_db = 20.0, .drop_db = 6.0, .wide_ratio = 20.0, .biased_ratio = 0.3,
                        .clipped_ratio = 0.005, .batch = 32};
    return c;
}

static double db(double signal, double noise)
{
    if (noise <= 0.0) return 200.0; /* exact: shown as a large finite number */
    if (signal <= 0.0) return -200.0;
    return 10.0 * log10(signal / noise);
}

/* The one remedy worth trying first for a layer (see docs/quantization.md,
 * "The quantization doctor"). */
static const char *remedy(const rg_qmodel *m, const rg_qdoc_layer *r)
{
    int weak = (r->flags & (RG_QDOC_LOW_SQNR | RG_QDOC_BIG_DROP)) != 0;
    if (!weak && !(r->flags & (RG_QDOC_WIDE_CHANNELS | RG_QDOC_BIASED))) return "-";
    if (weak && (r->flags & RG_QDOC_CLIPPED)) return "less clipping: --observer minmax or mse";
    if (r->has_weights && (r->flags & RG_QDOC_WIDE_CHANNELS) && !m->per_channel)
        return "per-channel weights (drop --per-tensor)";
    if (r->has_weights && (r->flags & RG_QDOC_WIDE_CHANNELS)) return "cross-layer equalization (--equalize)";
    if (r->has_weights && (r->flags & RG_QDOC_BIASED)) return "bias correction (--bias-correct)";
    if (!weak) return "-";
    if (r->sqnr_db < 10.0) return "keep in higher precision (int16), or QAT (regain qat)";
    if (r->kind == RG_QOP_ADD || r->kind == RG_QOP_CONCAT) return "a clipping observer (--observer mse), or QAT";
    return "a clipping observer (--observer mse|percentile), or QAT (regain qat)";
}

rg_status rg_quant_doctor(rg_qmodel *m, const float *images, int32_t n, const rg_qdoc_config *cfg,
                          rg_qdoc_layer **rows, int32_t *n_rows, rg_error *err)
{
    *rows = NULL;
    *n_rows = 0;
    if (n < 1) return rg_fail(err, RG_ERR_ARG, "doctor: images %d must be >= 1", (int)n);
    if (cfg->batch < 1) return rg_fail(err, RG_ERR_ARG, "doctor: batch %d must be >= 1", (int)cfg->batch);
    if (!(cfg->wide_ratio > 1.0)) return rg_fail(err, RG_ERR_ARG, "doctor: wide_ratio %g must be > 1", cfg->wide_ratio);
    const int32_t batch = cfg->batch, nt = m->n_tensors;
    size_t *saved = rg_malloc(sizeof(size_t) * (size_t)nt, err);
    double *acc = rg_calloc((size_t)nt * 3, sizeof(double), err); /* signal, noise, error sum */
    uint64_t *cnt = rg_calloc((size_t)nt * 2, sizeof(uint64_t), err); /* values, values clipped */
    rg_qdoc_layer *out = rg_calloc((size_t)m->n_ops + 1, sizeof *out, err);
    if (!saved || !acc || !cnt || !out) {
        free(saved);
        free(acc);
        free(cnt);
        free(out);
        return RG_ERR_NOMEM;
    }
    const size_t saved_bytes = m->image_bytes;
    for (int32_t t = 0; t < nt; t++) saved[t] = m->tensors[t].offset;
    rg_qmodel_plan_arena(m, 1);
    const rg_qtensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    size_t image = (size_t)ti->h * ti->w * ti->c, widest = 0;
    for (int32_t t = 0; t < nt; t++) {
        size_t s = (size_t)m->tensors[t].h * m->tensors[t].w * m->tensors[t].c;
        if (s > widest) widest = s;
    }
    float *farena = rg_malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, batch), err);
    int8_t *arena = rg_malloc(rg_qmodel_arena_bytes(m, batch), err);
    int8_t *qin = rg_malloc(image * (size_t)batch, err);
    int8_t *qout = rg_malloc((size_t)to->h * to->w * to->c * (size_t)batch, err);
    float *deq = rg_malloc(sizeof(float) * widest * (size_t)batch, err);
    rg_status st = farena && arena && qin && qout && deq ? RG_OK : RG_ERR_NOMEM;
    for (int32_t at = 0; at < n && !st; at += batch) {
        int32_t nb = n - at < batch ? n - at : batch;
        const float *x = images + (size_t)at * image;
        if ((st = rg_qmodel_run_ref(m, farena, x, nb, err))) break;
        if ((st = rg_q_quantize(x, image * (size_t)nb, ti->q, RG_Q_ACT_MIN, RG_Q_ACT_MAX, qin, err))) break;
        if ((st = rg_qmodel_run(m, arena, qin, nb, qout, err))) break;
        for (int32_t t = 0; t < nt; t++) {
            const rg_qtensor *q = &m->tensors[t];
            size_t count = (size_t)nb * q->h * q->w * q->c;
            rg_q_dequantize(rg_qmodel_tensor(m, arena, nb, t), count, q->q, deq);
            const float *ref = rg_qmodel_ftensor(m, farena, nb, t);
            /* the representable range, half a step wider: beyond it, clipped */
            const float lo = q->q.scale * ((float)(RG_Q_ACT_MIN - q->q.zero_point) - 0.5f),
                        hi = q->q.scale * ((float)(RG_Q_ACT_MAX - q->q.zero_point) + 0.5f);
            for (size_t i = 0; i < count; i++) {
                cnt[nt + t] += ref[i] < lo || ref[i] > hi;
                double e = (double)deq[i] - ref[i];
                acc[3 * t] += (double)ref[i] * ref[i];
                acc[3 * t + 1] += e * e;
                acc[3 * t + 2] += e;
            }
            cnt[t] += count;
        }
    }
    if (!st) { /* row 0: the quantized input */
        rg_qdoc_layer *r = &out[0];
        int32_t t = m->input;
        snprintf(r->name, sizeof r->name, "input");
        r->kind = RG_QOP_CLAMP;
        r->op = -1;
        r->tensor = t;
        r->sqnr_db = db(acc[3 * t], acc[3 * t + 1]);
        double rms = sqrt(acc[3 * t + 1] / (double)(cnt[t] ? cnt[t] : 1));
        r->err_bias = rms > 0 ? fabs(acc[3 * t + 2] / (double)(cnt[t] ? cnt[t] : 1)) / rms : 0.0;
        r->out_scale = m->tensors[t].q.scale;
        r->clipped = cnt[t] ? (double)cnt[nt + t] / (double)cnt[t] : 0.0;
        if (r->sqnr_db < cfg->low_sqnr_db) r->flags |= RG_QDOC_LOW_SQNR;
        r->remedy = r->flags ? "a wider input range (the input is observed with min/max)" : "-";
    }
    for (int32_t i = 0; i < m->n_ops && !st; i++) {
        const rg_qop *o = &m->ops[i];
        rg_qdoc_layer *r = &out[i + 1];
        int32_t t = o->out;
        memcpy(r->name, o->name, sizeof r->name);
        r->kind = o->kind;
        r->op = i;
        r->tensor = t;
        r->sqnr_db = db(acc[3 * t], acc[3 * t + 1]);
        double in_db = INFINITY;
        for (int32_t k = 0; k < o->n_in; k++) {
            double d = db(acc[3 * o->in[k]], acc[3 * o->in[k] + 1]);
            if (d < in_db) in_db = d;
        }
        r->drop_db = in_db - r->sqnr_db;
        double rms = sqrt(acc[3 * t + 1] / (double)(cnt[t] ? cnt[t] : 1));
        r->err_bias = rms > 0 ? fabs(acc[3 * t + 2] / (double)(cnt[t] ? cnt[t] : 1)) / rms : 0.0;
        r->out_scale = m->tensors[t].q.scale;
        r->clipped = cnt[t] ? (double)cnt[nt + t] / (double)cnt[t] : 0.0;
        if (r->clipped > cfg->clipped_ratio) r->flags |= RG_QDOC_CLIPPED;
        size_t count = rg_qmodel_weight_count(m, i);
        if (count && o->fw) {
            r->has_weights = 1;
            size_t per = count / (size_t)o->out_c;
            float lo = INFINITY, hi = 0.0f;
            for (int32_t c = 0; c < o->out_c; c++) {
                float mx = 0.0f;
                for (size_t k = 0; k < per; k++) mx = fmaxf(mx, fabsf(o->fw[(size_t)c * per + k]));
                if (mx > 0.0f && mx < lo) lo = mx;
                if (mx > hi) hi = mx;
            }
            r->w_range_min = isfinite(lo) ? lo : 0.0f;
            r->w_range_max = hi;
            r->w_range_ratio = r->w_range_min > 0.0f ? hi / r->w_range_min : 0.0f;
            if (r->w_range_ratio > cfg->wide_ratio) r->flags |= RG_QDOC_WIDE_CHANNELS;
        }
        if (r->sqnr_db < cfg->low_sqnr_db) r->flags |= RG_QDOC_LOW_SQNR;
        /* a large drop matters only where the result is not already fine */
        if (r->drop_db > cfg->drop_db && r->sqnr_db < cfg->low_sqnr_db + 10.0) r->flags |= RG_QDOC_BIG_DROP;
        if (r->err_bias > cfg->biased_ratio) r->flags |= RG_QDOC_BIASED;
        r->remedy = remedy(m, r);
    }
    for (int32_t t = 0; t < nt; t++) m->tensors[t].offset = saved[t];
    m->image_bytes = saved_bytes;
    free(saved);
    free(acc);
    free(cnt);
    free(farena);
    free(arena);
    free(qin);
    free(qout);
    free(deq);
    if (st) {
        free(out);
        return st;
    }
    *rows = out;
    *n_rows = m->n_ops + 1;
    return RG_OK;
}
