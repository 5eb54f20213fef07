/* AdaRound (contract and the objective in include/regain/adaround.h).
 *
 * Each output channel is an independent problem (its output depends on its
 * own weight row only), solved with Adam on V over a fixed set of input
 * patches: rows of the layer's im2col matrix at positions drawn from rg_rng
 * keyed by (seed, op, row), from the float model's activations. Everything
 * runs in a fixed order: the result does not depend on threads. */
#include "regain/adaround.h"
#include "regain/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ZETA 1.1f
#define GAMMA (-0.1f)

rg_adaround_config rg_adaround_default(void)
{
    rg_adaround_config c = {.iters = 300, .rows = 512, .images = 64, .lambda = 0.1f, .lr = 0.05f, .warmup = 0.2f};
    return c;
}

static float rect_sigmoid(float v, float *dh_dv)
{
    float sg = 1.0f / (1.0f + expf(-v));
    float h = sg * (ZETA - GAMMA) + GAMMA;
    if (h <= 0.0f || h >= 1.0f) {
        *dh_dv = 0.0f;
        return h <= 0.0f ? 0.0f : 1.0f;
    }
    *dh_dv = sg * (1.0f - sg) * (ZETA - GAMMA);
    return h;
}

/* One channel: w[k] (float weights), x[r * xs + k * ks] (rows of inputs),
 * scale s. Writes the chosen grid values back into w. */
static void round_channel(float *w, int32_t kk, const float *x, int32_t rows, size_t xs, size_t ks, float s,
                          const rg_adaround_config *cfg, float *buf)
{
    float *fl = buf, *v = buf + kk, *mv = buf + 2 * kk, *vv = buf + 3 * kk, *g = buf + 4 * kk, *dh = buf + 5 * kk,
          *h = buf + 6 * kk, *e = buf + 7 * kk; /* e: rows */
    uint8_t learn_any = 0;
    float wmax = 0.0f;
    for (int32_t k = 0; k < kk; k++) wmax = fmaxf(wmax, fabsf(w[k]));
    double ex2 = 0.0;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < kk; k++) ex2 += (double)x[r * xs + k * ks] * x[r * xs + k * ks];
    ex2 /= (double)rows * kk;
    if (!(ex2 > 0.0) || !(s > 0.0f)) return;
    const float norm = (float)(1.0 / ((double)s * s * ex2 * rows));
    for (int32_t k = 0; k < kk; k++) {
        float q = w[k] / s;
        fl[k] = floorf(q);
        float rest = q - fl[k];
        /* elements at the channel's extreme keep nearest rounding: they set the scale */
        if (fabsf(w[k]) >= wmax * (1.0f - 1e-6f) || fabsf(q) > (float)RG_Q_W_MAX - 0.5f) {
            v[k] = NAN;
            continue;
        }
        learn_any = 1;
        float t = (rest - GAMMA) / (ZETA - GAMMA); /* h(V) = rest at the start */
        t = fminf(fmaxf(t, 1e-4f), 1.0f - 1e-4f);
        v[k] = logf(t / (1.0f - t));
        mv[k] = vv[k] = 0.0f;
    }
    if (!learn_any) return;
    const int32_t warm = (int32_t)(cfg->warmup * (float)cfg->iters);
    for (int32_t it = 0; it < cfg->iters; it++) {
        for (int32_t k = 0; k < kk; k++) h[k] = isnan(v[k]) ? roundf(w[k] / s) - fl[k] : rect_sigmoid(v[k], &dh[k]);
        for (int32_t r = 0; r < rows; r++) {
            double acc = 0.0;
            for (int32_t k = 0; k < kk; k++) acc += (double)(s * (fl[k] + h[k]) - w[k]) * x[r * xs + k * ks];
            e[r] = (float)acc;
        }
        float beta = 0.0f;
        int reg = it >= warm;
        if (reg) beta = 20.0f + (2.0f - 20.0f) * (float)(it - warm) / (float)(cfg->iters - warm > 1 ? cfg->iters - warm - 1 : 1);
        for (int32_t k = 0; k < kk; k++) {
            if (isnan(v[k])) continue;
            double gr = 0.0;
            for (int32_t r = 0; r < rows; r++) gr += (double)e[r] * x[r * xs + k * ks];
            float gh = 2.0f * s * (float)gr * norm;
            if (reg) {
                float u = 2.0f * h[k] - 1.0f, au = fabsf(u);
                if (au > 0.0f) gh += -cfg->lambda * beta * powf(au, beta - 1.0f) * (u > 0 ? 1.0f : -1.0f) * 2.0f;
            }
            g[k] = gh * dh[k];
            /* Adam */
            const float b1 = 0.9f, b2 = 0.999f;
            mv[k] = b1 * mv[k] + (1 - b1) * g[k];
            vv[k] = b2 * vv[k] + (1 - b2) * g[k] * g[k];
            float mh = mv[k] / (1.0f - powf(b1, (float)(it + 1))), vh = vv[k] / (1.0f - powf(b2, (float)(it + 1)));
            v[k] -= cfg->lr * mh / (sqrtf(vh) + 1e-8f);
        }
    }
    for (int32_t k = 0; k < kk; k++) {
        float q;
        if (isnan(v[k])) q = roundf(w[k] / s);
        else {
            float d;
            q = fl[k] + (rect_sigmoid(v[k], &d) >= 0.5f ? 1.0f : 0.0f);
        }
        q = fminf(fmaxf(q, (float)RG_Q_W_MIN), (float)RG_Q_W_MAX);
        w[k] = s * q;
    }
}

static int has_weights(const rg_qop *o)
{
    return o->kind == RG_QOP_CONV || o->kind == RG_QOP_DEPTHWISE || o->kind == RG_QOP_FC;
}

/* Row r of op's input patches (im2col of image b at output position p), kk
 * values per channel group, into dst: dense conv [k_h, k_w, c_in], fc the
 * whole input, depthwise [k_h * k_w][c]. */
static void patch(const rg_qmodel *m, const rg_qop *o, const float *x, int32_t b, int32_t oy, int32_t ox, float *dst)
{
    const rg_qtensor *in = &m->tensors[o->in[0]];
    if (o->kind == RG_QOP_FC) {
        size_t nin = (size_t)in->h * in->w * in->c;
        memcpy(dst, x + (size_t)b * nin, sizeof(float) * nin);
        return;
    }
    for (int32_t ky = 0; ky < o->k_h; ky++)
        for (int32_t kx = 0; kx < o->k_w; kx++) {
            int32_t iy = oy * o->stride - o->pad + ky, ix = ox * o->stride - o->pad + kx;
            float *d = dst + ((size_t)ky * o->k_w + kx) * in->c;
            if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w) memset(d, 0, sizeof(float) * (size_t)in->c);
            else memcpy(d, x + (((size_t)b * in->h + iy) * in->w + ix) * in->c, sizeof(float) * (size_t)in->c);
        }
}

rg_status rg_quant_adaround(rg_qmodel *m, const float *images, int32_t n, const rg_adaround_config *cfg,
                            rg_error *err)
{
    if (n < 1) return rg_fail(err, RG_ERR_ARG, "adaround: images %d must be >= 1", (int)n);
    if (cfg->iters < 1 || cfg->rows < 1 || cfg->images < 1 || !(cfg->lambda >= 0) || !(cfg->lr > 0) ||
        !(cfg->warmup >= 0 && cfg->warmup < 1))
        return rg_fail(err, RG_ERR_ARG, "adaround: bad config (iters %d, rows %d, images %d, lambda %g, lr %g, warmup %g)",
                       (int)cfg->iters, (int)cfg->rows, (int)cfg->images, (double)cfg->lambda, (double)cfg->lr,
                       (double)cfg->warmup);
    const int32_t nb = n < cfg->images ? n : cfg->images;
    size_t widest_k = 1, widest_w = 1;
    int32_t total = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        if (!has_weights(&m->ops[i])) continue;
        if (!m->ops[i].fw) return rg_fail(err, RG_ERR_ARG, "adaround: %s has no float weights", m->ops[i].name);
        size_t wc = rg_qmodel_weight_count(m, i), k = wc / (size_t)m->ops[i].out_c;
        if (m->ops[i].kind == RG_QOP_DEPTHWISE) k = wc; /* a patch holds every channel */
        if (k > widest_k) widest_k = k;
        if (wc > widest_w) widest_w = wc;
        total++;
    }
    size_t rows_max = (size_t)(cfg->rows > nb ? cfg->rows : nb);
    float *farena = rg_malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, nb), err);
    float *x = rg_malloc(sizeof(float) * rows_max * widest_k, err);
    float *buf = rg_malloc(sizeof(float) * (8 * widest_k + rows_max), err);
    int8_t *q = rg_malloc(widest_w, err);
    float *scales = rg_malloc(sizeof(float) * widest_w, err);
    rg_status st = farena && x && buf && q && scales ? RG_OK : RG_ERR_NOMEM;
    if (!st) st = rg_qmodel_run_ref(m, farena, images, nb, err);
    int32_t done = 0;
    for (int32_t i = 0; i < m->n_ops && !st; i++) {
        rg_qop *o = &m->ops[i];
        if (!has_weights(o)) continue;
        const rg_qtensor *out = &m->tensors[o->out];
        size_t wc = rg_qmodel_weight_count(m, i), per = wc / (size_t)o->out_c;
        size_t plen = o->kind == RG_QOP_DEPTHWISE ? per * (size_t)o->out_c : per;
        int32_t rows = o->kind == RG_QOP_FC ? nb : cfg->rows;
        const float *xin = rg_qmodel_ftensor(m, farena, nb, o->in[0]);
        for (int32_t r = 0; r < rows; r++) {
            rg_rng g = rg_rng_keyed(cfg->seed, (uint64_t)i, (uint64_t)r);
            int32_t b = o->kind == RG_QOP_FC ? r : (int32_t)rg_rng_below(&g, (uint32_t)nb);
            int32_t oy = (int32_t)rg_rng_below(&g, (uint32_t)out->h), ox = (int32_t)rg_rng_below(&g, (uint32_t)out->w);
            patch(m, o, xin, b, oy, ox, x + (size_t)r * plen);
        }
        if ((st = rg_q_quantize_weights(o->fw, o->out_c, per, m->per_channel, q, scales, err))) break;
        for (int32_t c = 0; c < o->out_c; c++) {
            float s = scales[m->per_channel ? c : 0];
            if (o->kind == RG_QOP_DEPTHWISE) /* channel c of every tap: stride out_c */
                round_channel(o->fw + (size_t)c * per, (int32_t)per, x + c, rows, plen, (size_t)o->out_c, s, cfg, buf);
            else
                round_channel(o->fw + (size_t)c * per, (int32_t)per, x, rows, plen, 1, s, cfg, buf);
        }
        done++;
        if (cfg->progress) cfg->progress(cfg->progress_user, "adaround", done, total);
    }
    free(farena);
    free(x);
    free(buf);
    free(q);
    free(scales);
    return st;
}
