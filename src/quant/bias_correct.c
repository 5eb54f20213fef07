/* Empirical bias correction (contract in include/regain/bias_correct.h).
 * The inputs of every layer are the float model's (the expectation the
 * correction aims at is the float network's); per output channel the mean
 * difference of the pre-activations with dequantized and float weights is
 * accumulated in double, in a fixed order, and subtracted from the bias. */
#include "regain/bias_correct.h"

#include <stdlib.h>
#include <string.h>

static int has_weights(const rg_qop *o)
{
    return o->kind == RG_QOP_CONV || o->kind == RG_QOP_DEPTHWISE || o->kind == RG_QOP_FC;
}

rg_status rg_quant_bias_correct(rg_qmodel *m, const float *images, int32_t n, const rg_bias_correct_config *cfg,
                                rg_error *err)
{
    if (n < 1) return rg_fail(err, RG_ERR_ARG, "bias correction: images %d must be >= 1", (int)n);
    if (cfg->batch < 1) return rg_fail(err, RG_ERR_ARG, "bias correction: batch %d must be >= 1", (int)cfg->batch);
    const int32_t batch = cfg->batch;
    size_t widest_w = 0, widest_out = 0, total_c = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        if (!has_weights(&m->ops[i])) continue;
        const rg_qtensor *t = &m->tensors[m->ops[i].out];
        size_t wc = rg_qmodel_weight_count(m, i), oc = (size_t)batch * t->h * t->w * t->c;
        if (wc > widest_w) widest_w = wc;
        if (oc > widest_out) widest_out = oc;
        total_c += (size_t)m->ops[i].out_c;
    }
    float *farena = rg_malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, batch), err);
    float *wq = rg_malloc(sizeof(float) * (widest_w ? widest_w : 1), err);
    float *yf = rg_malloc(sizeof(float) * (widest_out ? widest_out : 1), err);
    double *diff = rg_calloc(total_c ? total_c : 1, sizeof(double), err);
    rg_status st = farena && wq && yf && diff ? RG_OK : RG_ERR_NOMEM;
    uint64_t rows_seen = 0;
    const rg_qtensor *ti = &m->tensors[m->input];
    size_t image = (size_t)ti->h * ti->w * ti->c;
    for (int32_t at = 0; at < n && !st; at += batch) {
        int32_t nb = n - at < batch ? n - at : batch;
        if ((st = rg_qmodel_run_ref(m, farena, images + (size_t)at * image, nb, err))) break;
        size_t dc = 0;
        for (int32_t i = 0; i < m->n_ops && !st; i++) {
            const rg_qop *o = &m->ops[i];
            if (!has_weights(o)) continue;
            const rg_qtensor *t = &m->tensors[o->out];
            size_t rows = (size_t)nb * t->h * t->w, cnt = rows * (size_t)t->c;
            float *y = rg_qmodel_ftensor(m, farena, nb, o->out);
            if ((st = rg_qmodel_dequantized_weights(m, i, wq, err))) break;
            if ((st = rg_qmodel_run_ref_op(m, i, farena, nb, NULL, 1, err))) break;
            memcpy(yf, y, sizeof(float) * cnt);
            if ((st = rg_qmodel_run_ref_op(m, i, farena, nb, wq, 1, err))) break;
            for (size_t r = 0; r < rows; r++)
                for (int32_t c = 0; c < t->c; c++)
                    diff[dc + (size_t)c] += (double)y[r * (size_t)t->c + c] - yf[r * (size_t)t->c + c];
            /* restore the float output that the later ops read */
            if ((st = rg_qmodel_run_ref_op(m, i, farena, nb, NULL, 0, err))) break;
            dc += (size_t)o->out_c;
        }
        rows_seen += (uint64_t)nb;
        if (cfg->progress) cfg->progress(cfg->progress_user, "bias-correct", at + nb, n);
    }
    if (!st) {
        size_t dc = 0;
        for (int32_t i = 0; i < m->n_ops; i++) {
            rg_qop *o = &m->ops[i];
            if (!has_weights(o)) continue;
            const rg_qtensor *t = &m->tensors[o->out];
            double count = (double)rows_seen * t->h * t->w;
            for (int32_t c = 0; c < o->out_c; c++) o->fb[c] -= (float)(diff[dc + (size_t)c] / count);
            dc += (size_t)o->out_c;
        }
    }
    free(farena);
    free(wq);
    free(yf);
    free(diff);
    return st;
}
