/* Optimizers over the one parameter block.
 *
 * SGD (PyTorch semantics): g' = g + wd * w;  b = mu * b + g';
 *   w -= lr * (nesterov ? g' + mu * b : b)
 * AdamW (Loshchilov & Hutter): w -= lr * wd * w;  m = b1 m + (1-b1) g;
 *   v = b2 v + (1-b2) g^2;  w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * Weight decay skips parameters flagged no_decay (BN and biases) unless
 * decay_all is set.
 */
#include "regain/train.h"

#include <math.h>
#include <string.h>

rg_status rg_optim_init(rg_optim *o, const rg_optim_config *cfg, const rg_graph *g, rg_error *err)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    if (cfg->kind != RG_OPTIM_SGD && cfg->kind != RG_OPTIM_ADAMW)
        return rg_fail(err, RG_ERR_ARG, "unknown optimizer kind %d", (int)cfg->kind);
    if (!(cfg->weight_decay >= 0.0f) || !(cfg->momentum >= 0.0f && cfg->momentum < 1.0f))
        return rg_fail(err, RG_ERR_ARG, "weight decay must be >= 0 and momentum in [0, 1)");
    if (cfg->kind == RG_OPTIM_ADAMW &&
        !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f && cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f && cfg->eps > 0.0f))
        return rg_fail(err, RG_ERR_ARG, "AdamW needs beta1, beta2 in [0, 1) and eps > 0");
    o->floats = g->param_floats;
    o->m = rg_alloc_aligned((o->floats + 1) * sizeof(float), err);
    if (!o->m) return RG_ERR_NOMEM;
    memset(o->m, 0, o->floats * sizeof(float));
    if (cfg->kind == RG_OPTIM_ADAMW) {
        o->v = rg_alloc_aligned((o->floats + 1) * sizeof(float), err);
        if (!o->v) return RG_ERR_NOMEM;
        memset(o->v, 0, o->floats * sizeof(float));
    }
    return RG_OK;
}

void rg_optim_free(rg_optim *o)
{
    rg_free_aligned(o->m);
    rg_free_aligned(o->v);
    o->m = o->v = NULL;
}

void rg_optim_step(rg_optim *o, rg_graph *g, float lr)
{
    const rg_optim_config *c = &o->cfg;
    o->t++;
    float bc1 = 1.0f - powf(c->beta1, (float)o->t), bc2 = 1.0f - powf(c->beta2, (float)o->t);
    for (int32_t i = 0; i < g->n_params; i++) {
        const rg_param *p = &g->params[i];
        float *w = g->param_data + p->offset, *gr = g->grad_data + p->offset;
        float *m = o->m + p->offset, *v = o->v ? o->v + p->offset : NULL;
        float wd = (p->no_decay && !c->decay_all) ? 0.0f : c->weight_decay;
        size_t n = p->count;
        if (c->kind == RG_OPTIM_SGD) {
            float mu = c->momentum;
#pragma omp parallel for schedule(static) if (n > 65536)
            for (size_t k = 0; k < n; k++) {
                float gk = gr[k] + wd * w[k];
                if (mu > 0.0f) {
                    m[k] = mu * m[k] + gk;
                    gk = c->nesterov ? gk + mu * m[k] : m[k];
                }
                w[k] -= lr * gk;
            }
        } else {
            float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
#pragma omp parallel for schedule(static) if (n > 65536)
            for (size_t k = 0; k < n; k++) {
                w[k] -= lr * wd * w[k];
                m[k] = b1 * m[k] + (1.0f - b1) * gr[k];
                v[k] = b2 * v[k] + (1.0f - b2) * gr[k] * gr[k];
                w[k] -= lr * (m[k] / bc1) / (sqrtf(v[k] / bc2) + eps);
            }
        }
    }
}
