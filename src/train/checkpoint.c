/* Checkpoint save and load over the safetensors module. */
#include "regain/checkpoint.h"
#include "regain/spec.h"
#include "regain/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "checkpoint-1"

typedef struct {
    rg_st_tensor *t;
    char (*names)[RG_NAME_MAX + 16];
    int32_t n, cap;
} tensor_list;

static void push2(tensor_list *l, const char *part, const char *prefix, const rg_param *p, const float *data)
{
    rg_st_tensor *t = &l->t[l->n];
    snprintf(l->names[l->n], sizeof l->names[0], "%s%s%s", part, prefix, p->name);
    memset(t, 0, sizeof *t);
    t->name = l->names[l->n];
    t->ndim = p->ndim;
    for (int32_t i = 0; i < p->ndim; i++) t->shape[i] = p->dims[i];
    t->data = data + p->offset;
    t->dtype = RG_ST_F32;
    l->n++;
}

static void push(tensor_list *l, const char *prefix, const rg_param *p, const float *data)
{
    push2(l, "", prefix, p, data);
}

rg_status rg_checkpoint_save(const char *path, const rg_graph *g, const rg_optim *opt, const rg_ema *ema,
                             const rg_st_meta *meta, int32_t n_meta, rg_error *err)
{
    return rg_checkpoint_save_with(path, g, opt, ema, NULL, meta, n_meta, err);
}

rg_status rg_checkpoint_save_with(const char *path, const rg_graph *g, const rg_optim *opt, const rg_ema *ema,
                                  const rg_checkpoint_extras *extras, const rg_st_meta *meta, int32_t n_meta,
                                  rg_error *err)
{
    static const rg_checkpoint_extras none = {0};
    const rg_checkpoint_extras *x = extras ? extras : &none;
    int32_t per = g->n_params + g->n_buffers;
    tensor_list l = {0};
    l.cap = per * 4 + x->n_tensors;
    for (int32_t k = 0; k < x->n_parts; k++) l.cap += 3 * x->parts[k].g->n_params + x->parts[k].g->n_buffers;
    l.t = rg_calloc((size_t)l.cap, sizeof *l.t, err);
    l.names = rg_calloc((size_t)l.cap, sizeof *l.names, err);
    rg_st_meta *all = rg_calloc((size_t)n_meta + 4, sizeof *all, err);
    rg_status st = RG_ERR_NOMEM;
    if (!l.t || !l.names || !all) goto done;
    for (int32_t i = 0; i < g->n_params; i++) push(&l, "", &g->params[i], g->param_data);
    for (int32_t i = 0; i < g->n_buffers; i++) push(&l, "", &g->buffers[i], g->buffer_data);
    if (opt) {
        for (int32_t i = 0; i < g->n_params; i++) push(&l, "optim.m.", &g->params[i], opt->m);
        if (opt->v)
            for (int32_t i = 0; i < g->n_params; i++) push(&l, "optim.v.", &g->params[i], opt->v);
    }
    if (ema && ema->params) {
        for (int32_t i = 0; i < g->n_params; i++) push(&l, "ema.", &g->params[i], ema->params);
        for (int32_t i = 0; i < g->n_buffers; i++) push(&l, "ema.", &g->buffers[i], ema->buffers);
    }
    for (int32_t k = 0; k < x->n_parts; k++) {
        const rg_checkpoint_part *q = &x->parts[k];
        for (int32_t i = 0; i < q->g->n_params; i++) push2(&l, q->prefix, "", &q->g->params[i], q->g->param_data);
        for (int32_t i = 0; i < q->g->n_buffers; i++) push2(&l, q->prefix, "", &q->g->buffers[i], q->g->buffer_data);
        for (int32_t i = 0; q->opt && i < q->g->n_params; i++)
            push2(&l, q->prefix, "optim.m.", &q->g->params[i], q->opt->m);
        for (int32_t i = 0; q->opt && q->opt->v && i < q->g->n_params; i++)
            push2(&l, q->prefix, "optim.v.", &q->g->params[i], q->opt->v);
    }
    for (int32_t i = 0; i < x->n_tensors; i++) l.t[l.n++] = x->tensors[i];
    char steps[32];
    snprintf(steps, sizeof steps, "%llu", opt ? (unsigned long long)opt->t : 0ull);
    int32_t k = 0;
    all[k++] = (rg_st_meta){"regain.format", FORMAT};
    all[k++] = (rg_st_meta){"regain.spec", g->spec ? g->spec : ""};
    all[k++] = (rg_st_meta){"regain.optim_steps", steps};
    for (int32_t i = 0; i < n_meta; i++) all[k++] = meta[i];
    st = rg_st_write(path, l.t, l.n, all, k, err);
done:
    free(l.t);
    free(l.names);
    free(all);
    return st;
}

/* Copies tensor part+prefix+p->name of f into dst + p->offset after checking its shape. */
static rg_status load_tensor2(const rg_st_file *f, const char *part, const char *prefix, const rg_param *p, float *dst,
                              rg_error *err)
{
    char name[2 * RG_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s%s%s", part, prefix, p->name);
    int64_t shape[4];
    for (int32_t i = 0; i < p->ndim; i++) shape[i] = p->dims[i];
    return rg_st_copy(f, name, p->ndim, shape, dst + p->offset, err);
}

static rg_status load_tensor(const rg_st_file *f, const char *prefix, const rg_param *p, float *dst, rg_error *err)
{
    return load_tensor2(f, "", prefix, p, dst, err);
}

rg_status rg_checkpoint_load_weights(const rg_st_file *f, rg_graph *g, int ema, rg_error *err)
{
    const char *prefix = ema ? "ema." : "";
    rg_status st = RG_OK;
    for (int32_t i = 0; i < g->n_params && !st; i++) st = load_tensor(f, prefix, &g->params[i], g->param_data, err);
    for (int32_t i = 0; i < g->n_buffers && !st; i++)
        st = load_tensor(f, prefix, &g->buffers[i], g->buffer_data, err);
    return st;
}

rg_status rg_checkpoint_load(const char *path, int prefer_ema, rg_graph **out, rg_st_file **file, rg_error *err)
{
    *out = NULL;
    if (file) *file = NULL;
    rg_st_file *f;
    rg_status st = rg_st_read(path, &f, err);
    if (st) return st;
    const char *fmt = rg_st_meta_get(f, "regain.format"), *spec = rg_st_meta_get(f, "regain.spec");
    if (!fmt || strcmp(fmt, FORMAT) != 0 || !spec) {
        /* the message quotes the metadata: written before the file is freed */
        st = rg_fail(err, RG_ERR_FORMAT, "%s: not a regain checkpoint (metadata 'regain.format' is %s%s%s)", path,
                     fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
        rg_st_free(f);
        return st;
    }
    char origin[600];
    snprintf(origin, sizeof origin, "%s (regain.spec)", path);
    rg_graph *g;
    if ((st = rg_spec_build(spec, origin, &g, err))) {
        rg_st_free(f);
        return st;
    }
    int ema = 0;
    if (prefer_ema && g->n_params > 0) {
        char name[RG_NAME_MAX + 16];
        snprintf(name, sizeof name, "ema.%s", g->params[0].name);
        ema = rg_st_find(f, name) != NULL;
    }
    if ((st = rg_checkpoint_load_weights(f, g, ema, err))) {
        rg_graph_free(g);
        rg_st_free(f);
        return st;
    }
    *out = g;
    if (file) *file = f;
    else rg_st_free(f);
    return RG_OK;
}

rg_status rg_checkpoint_load_state(const rg_st_file *f, const char *path, const rg_graph *g, rg_optim *opt,
                                   rg_ema *ema, rg_error *err)
{
    rg_status st = RG_OK;
    if (opt) {
        for (int32_t i = 0; i < g->n_params && !st; i++) st = load_tensor(f, "optim.m.", &g->params[i], opt->m, err);
        if (opt->v)
            for (int32_t i = 0; i < g->n_params && !st; i++)
                st = load_tensor(f, "optim.v.", &g->params[i], opt->v, err);
        const char *steps = rg_st_meta_get(f, "regain.optim_steps");
        char *end = NULL;
        unsigned long long t = steps ? strtoull(steps, &end, 10) : 0;
        if (!st && (!steps || *end))
            st = rg_fail(err, RG_ERR_FORMAT, "%s: metadata 'regain.optim_steps' is missing or not a number", path);
        opt->t = t;
    }
    if (ema && ema->params) {
        for (int32_t i = 0; i < g->n_params && !st; i++) st = load_tensor(f, "ema.", &g->params[i], ema->params, err);
        for (int32_t i = 0; i < g->n_buffers && !st; i++)
            st = load_tensor(f, "ema.", &g->buffers[i], ema->buffers, err);
    }
    return st;
}

rg_status rg_checkpoint_load_part(const rg_st_file *f, const rg_checkpoint_part *part, rg_error *err)
{
    const rg_graph *g = part->g;
    rg_status st = RG_OK;
    for (int32_t i = 0; i < g->n_params && !st; i++)
        st = load_tensor2(f, part->prefix, "", &g->params[i], g->param_data, err);
    for (int32_t i = 0; i < g->n_buffers && !st; i++)
        st = load_tensor2(f, part->prefix, "", &g->buffers[i], g->buffer_data, err);
    for (int32_t i = 0; part->opt && i < g->n_params && !st; i++)
        st = load_tensor2(f, part->prefix, "optim.m.", &g->params[i], part->opt->m, err);
    for (int32_t i = 0; part->opt && part->opt->v && i < g->n_params && !st; i++)
        st = load_tensor2(f, part->prefix, "optim.v.", &g->params[i], part->opt->v, err);
    if (st) return st;
    /* the part's optimizer took exactly the model's steps */
    const char *steps = rg_st_meta_get(f, "regain.optim_steps");
    if (part->opt && steps) part->opt->t = strtoull(steps, NULL, 10);
    return RG_OK;
}

void rg_checkpoint_normalization(const rg_st_file *f, float *mean, float *std)
{
    rg_train_config d;
    rg_train_config_default(&d);
    *mean = d.mean;
    *std = d.std;
    const char *text = rg_st_meta_get(f, "regain.normalize");
    float m, s;
    if (text && sscanf(text, "%f,%f", &m, &s) == 2 && isfinite(m) && isfinite(s) && s > 0.0f) {
        *mean = m;
        *std = s;
    }
}
