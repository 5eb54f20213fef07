/* Cross-layer equalization with per-channel ReLU6 clips (contract and
 * derivation summary in include/regain/equalize.h; the full derivation in
 * docs/quantization.md). */
#include "regain/equalize.h"

#include <math.h>
#include <stdlib.h>

static int has_weights(const rg_qop *o)
{
    return o->kind == RG_QOP_CONV || o->kind == RG_QOP_DEPTHWISE || o->kind == RG_QOP_FC;
}

/* The op that reads tensor t, when exactly one does (else -1). */
static int32_t sole_reader(const rg_qmodel *m, int32_t t)
{
    if (t == m->output) return -1;
    int32_t r = -1;
    for (int32_t i = 0; i < m->n_ops; i++)
        for (int32_t k = 0; k < m->ops[i].n_in; k++)
            if (m->ops[i].in[k] == t) {
                if (r >= 0) return -1;
                r = i;
            }
    return r;
}

static rg_status equalize_pair(rg_qmodel *m, int32_t a, int32_t b, float *ra, float *rb, rg_error *err)
{
    rg_qop *A = &m->ops[a], *B = &m->ops[b];
    const int32_t c_out = A->out_c;
    const size_t per_a = rg_qmodel_weight_count(m, a) / (size_t)c_out;
    for (int32_t c = 0; c < c_out; c++) {
        float r = 0.0f;
        for (size_t k = 0; k < per_a; k++) r = fmaxf(r, fabsf(A->fw[(size_t)c * per_a + k]));
        ra[c] = r;
        rb[c] = 0.0f;
    }
    if (B->kind == RG_QOP_DEPTHWISE) { /* [c, kh, kw] */
        size_t per_b = (size_t)B->k_h * B->k_w;
        for (int32_t c = 0; c < c_out; c++)
            for (size_t k = 0; k < per_b; k++) rb[c] = fmaxf(rb[c], fabsf(B->fw[(size_t)c * per_b + k]));
    } else { /* OHWI: input channel c is the innermost index */
        size_t rows = rg_qmodel_weight_count(m, b) / (size_t)c_out;
        for (size_t r = 0; r < rows; r++)
            for (int32_t c = 0; c < c_out; c++) rb[c] = fmaxf(rb[c], fabsf(B->fw[r * (size_t)c_out + c]));
    }
    if (isfinite(A->f_hi) && !A->clip) { /* a ReLU6: its clip becomes per channel */
        if (!(A->clip = rg_malloc(sizeof(float) * (size_t)c_out, err))) return RG_ERR_NOMEM;
        for (int32_t c = 0; c < c_out; c++) A->clip[c] = A->f_hi;
        A->f_hi = INFINITY;
    }
    for (int32_t c = 0; c < c_out; c++) {
        if (!(ra[c] > 0.0f) || !(rb[c] > 0.0f)) continue; /* a dead channel: nothing to balance */
        float s = sqrtf(ra[c] / rb[c]);
        if (!isfinite(s) || s <= 0.0f) continue;
        /* A's output channel c divided by s: weights, bias and clip */
        for (size_t k = 0; k < per_a; k++) A->fw[(size_t)c * per_a + k] /= s;
        A->fb[c] /= s;
        if (A->clip) A->clip[c] /= s;
        /* B's input channel c multiplied by s */
        if (B->kind == RG_QOP_DEPTHWISE) {
            size_t per_b = (size_t)B->k_h * B->k_w;
            for (size_t k = 0; k < per_b; k++) B->fw[(size_t)c * per_b + k] *= s;
        } else {
            size_t rows = rg_qmodel_weight_count(m, b) / (size_t)c_out;
            for (size_t r = 0; r < rows; r++) B->fw[r * (size_t)c_out + c] *= s;
        }
    }
    return RG_OK;
}

rg_status rg_quant_equalize(rg_qmodel *m, int32_t iters, rg_equalize_stats *st, rg_error *err)
{
    if (iters < 1) return rg_fail(err, RG_ERR_ARG, "equalize: iters %d must be >= 1", (int)iters);
    rg_equalize_stats s = {0, 0};
    int32_t *pair_b = rg_malloc(sizeof(int32_t) * (size_t)(m->n_ops > 0 ? m->n_ops : 1), err);
    if (!pair_b) return RG_ERR_NOMEM;
    int32_t widest = 1;
    for (int32_t a = 0; a < m->n_ops; a++) {
        const rg_qop *A = &m->ops[a];
        pair_b[a] = -1;
        if (A->kind != RG_QOP_CONV && A->kind != RG_QOP_DEPTHWISE) continue;
        if (!A->fw || !A->fb) {
            free(pair_b);
            return rg_fail(err, RG_ERR_ARG, "equalize: %s has no float weights", A->name);
        }
        int32_t b = sole_reader(m, A->out);
        if (b < 0) continue;
        const rg_qop *B = &m->ops[b];
        if ((B->kind != RG_QOP_CONV && B->kind != RG_QOP_DEPTHWISE) || B->in[0] != A->out || !B->fw) continue;
        /* only the identity, ReLU and ReLU6 commute with a positive scale */
        if (!(A->f_lo == 0.0f || isinf(A->f_lo))) continue;
        pair_b[a] = b;
        s.pairs++;
        if (isfinite(A->f_hi) || A->clip) s.clipped++;
        if (A->out_c > widest) widest = A->out_c;
    }
    float *ra = rg_malloc(sizeof(float) * 2 * (size_t)widest, err);
    rg_status rc = ra ? RG_OK : RG_ERR_NOMEM;
    for (int32_t it = 0; it < iters && !rc; it++)
        for (int32_t a = 0; a < m->n_ops && !rc; a++)
            if (pair_b[a] >= 0 && has_weights(&m->ops[a])) rc = equalize_pair(m, a, pair_b[a], ra, ra + widest, err);
    free(ra);
    free(pair_b);
    if (st) *st = s;
    return rc;
}
