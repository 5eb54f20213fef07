/* Exponential moving average of the weights (and BN statistics), evaluated in
 * place of the raw weights when enabled. */
#include "regain/train.h"

#include <string.h>

rg_status rg_ema_init(rg_ema *e, float decay, const rg_graph *g, rg_error *err)
{
    memset(e, 0, sizeof *e);
    if (!(decay >= 0.0f && decay < 1.0f)) return rg_fail(err, RG_ERR_ARG, "EMA decay %g is not in [0, 1)", decay);
    e->decay = decay;
    e->param_floats = g->param_floats;
    e->buffer_floats = g->buffer_floats;
    e->params = rg_alloc_aligned((e->param_floats + 1) * sizeof(float), err);
    e->buffers = rg_alloc_aligned((e->buffer_floats + 1) * sizeof(float), err);
    if (!e->params || !e->buffers) {
        rg_ema_free(e);
        return RG_ERR_NOMEM;
    }
    memcpy(e->params, g->param_data, e->param_floats * sizeof(float));
    memcpy(e->buffers, g->buffer_data, e->buffer_floats * sizeof(float));
    return RG_OK;
}

static void blend(float *avg, const float *cur, size_t n, float d)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) avg[i] = d * avg[i] + (1.0f - d) * cur[i];
}

void rg_ema_update(rg_ema *e, const rg_graph *g)
{
    blend(e->params, g->param_data, e->param_floats, e->decay);
    blend(e->buffers, g->buffer_data, e->buffer_floats, e->decay);
}

void rg_ema_swap(rg_ema *e, rg_graph *g)
{
    float *t = g->param_data;
    g->param_data = e->params;
    e->params = t;
    t = g->buffer_data;
    g->buffer_data = e->buffers;
    e->buffers = t;
}

void rg_ema_free(rg_ema *e)
{
    rg_free_aligned(e->params);
    rg_free_aligned(e->buffers);
    e->params = e->buffers = NULL;
}
