/* Quantization-aware training: the graph transform that inserts the
 * quantization points, and the per-step weight fake quantization with
 * batch-norm folding (contract and design in include/regain/qat.h;
 * docs/quantization.md, section 13).
 *
 * The transform rebuilds the node list with a fake-quant node after each
 * quantization point, re-pointing the point's readers to it, then grows the
 * buffer and parameter blocks for the ranges and LSQ scales (existing
 * tensors keep their offsets and values). Weights are fake-quantized on the
 * parameter block itself, between rg_qat_begin and rg_qat_end, so the
 * convolution and linear ops need no QAT code and their fast kernels run
 * unchanged. */
#include "regain/qat.h"
#include "graph/fuse.h"
#include "regain/fake_quant.h"
#include "ops/conv.h"
#include "quant/qround.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t node;        /* conv or linear */
    int32_t bn;          /* the batch norm folded into it, -1 none */
    int32_t scale_param; /* LSQ: "<node>.qscale", -1 otherwise */
    int32_t cout;
    size_t per, master_off, factor_off;
    int32_t in_fq;       /* the fake-quant node of the layer's input (-1: none) */
    int32_t out_fq;      /* the fake-quant node after its chain (-1: none) */
    int32_t bias_param;  /* the bias the folded bias is fake-quantized through: BN beta, else the layer's bias */
    size_t bias_off;     /* its master copy, after the weights' */
} wlayer;

struct rg_qat {
    rg_graph *g;
    rg_qat_config cfg;
    wlayer *w;
    int32_t n_w;
    float *master;         /* the float weights while the fake-quantized ones are in the block */
    float *tmp, *tmp2;     /* one layer */
    float *scales;         /* one layer's scales */
    float *factors;        /* every layer's fold factors f[c] as rg_qat_begin used them */
    double *dscales;
    int active;
};

rg_qat_config rg_qat_default(void)
{
    rg_qat_config c = {.weight_bits = 8, .per_tensor = 0, .lsq = 0, .freeze_bn = 2, .freeze_observers = 3,
                       .momentum = 0.01f};
    return c;
}

rg_status rg_qat_check_config(const rg_qat_config *c, rg_error *err)
{
    if (c->weight_bits != 8 && c->weight_bits != 4)
        return rg_fail(err, RG_ERR_ARG, "qat_weight_bits: %d is not supported (8, or 4 for W4A8)", (int)c->weight_bits);
    if (c->freeze_bn < -1)
        return rg_fail(err, RG_ERR_ARG, "qat_freeze_bn: %d must be an epoch >= 0, or -1 (never)", (int)c->freeze_bn);
    if (c->freeze_observers < -1)
        return rg_fail(err, RG_ERR_ARG, "qat_freeze_observers: %d must be an epoch >= 0, or -1 (never)",
                       (int)c->freeze_observers);
    if (!(c->momentum > 0.0f && c->momentum <= 1.0f))
        return rg_fail(err, RG_ERR_ARG, "qat_momentum: %g must be in (0, 1]", (double)c->momentum);
    return RG_OK;
}

const rg_qat_config *rg_qat_config_of(const rg_qat *q) { return &q->cfg; }

int32_t rg_qat_weight_qmax(const rg_qat *q) { return q->cfg.weight_bits == 4 ? 7 : 127; }

/* ---- the transform ---- */

enum { PT_NONE = 0, PT_OBSERVED = 1, PT_TIED = 2 };

/* The value whose quantization point a pass-through value (max pool,
 * dropout output) shares, -1 if none. */
static int32_t point_source(const rg_graph *g, const uint8_t *point, int32_t v)
{
    while (v >= 0 && point[v] == PT_NONE) {
        const rg_node *p = &g->nodes[g->values[v].producer];
        if (p->op != RG_OP_MAXPOOL && p->op != RG_OP_DROPOUT) return -1;
        v = p->in[0];
    }
    return v;
}

/* Marks the values after which a fake-quant node goes; tie_src[v] for tied ones. */
static rg_status find_points(const rg_graph *g, uint8_t *point, int32_t *tie_src, rg_error *err)
{
    uint8_t *done = rg_calloc((size_t)g->n_nodes, 1, err);
    if (!done) return RG_ERR_NOMEM;
    rg_status st = RG_OK;
    point[g->input] = PT_OBSERVED;
    for (int32_t i = 1; i < g->n_nodes && !st; i++) {
        if (done[i]) continue;
        const rg_node *n = &g->nodes[i];
        switch (n->op) {
        case RG_OP_CONV: {
            if (n->a.conv.groups != 1 && !rg_conv_is_depthwise(g, n)) {
                st = rg_fail(err, RG_ERR_UNSUPPORTED, "qat: %s: grouped convolution (groups %d) has no int8 lowering",
                             n->name, (int)n->a.conv.groups);
                break;
            }
            int32_t last = i, r = rg_graph_sole_reader(g, n->out);
            if (r > 0 && g->nodes[r].op == RG_OP_BN) {
                done[r] = 1;
                last = r;
                r = rg_graph_sole_reader(g, g->nodes[r].out);
            }
            if (r > 0 && (g->nodes[r].op == RG_OP_RELU || g->nodes[r].op == RG_OP_RELU6)) {
                done[r] = 1;
                last = r;
            }
            point[g->nodes[last].out] = PT_OBSERVED;
            break;
        }
        case RG_OP_LINEAR:
        case RG_OP_ADD:
        case RG_OP_GAP: point[n->out] = PT_OBSERVED; break;
        case RG_OP_AVGPOOL:
        case RG_OP_RELU:
        case RG_OP_RELU6: {
            int32_t src = point_source(g, point, n->in[0]);
            if (src < 0) {
                st = rg_fail(err, RG_ERR_UNSUPPORTED, "qat: %s reads a value with no quantization point", n->name);
                break;
            }
            point[n->out] = PT_TIED;
            tie_src[n->out] = src;
            break;
        }
        case RG_OP_MAXPOOL:
        case RG_OP_DROPOUT: break;
        case RG_OP_FAKE_QUANT:
            st = rg_fail(err, RG_ERR_ARG, "qat: the graph is already prepared for QAT (node %s)", n->name);
            break;
        default:
            st = rg_fail(err, RG_ERR_UNSUPPORTED, "qat: %s: op %s has no int8 lowering (QAT supports conv, bn after "
                         "conv, relu, relu6, add, max/avg pool, gap, linear, dropout)", n->name, rg_op_name(n->op));
        }
    }
    free(done);
    return st;
}

/* Appends a tensor description to a parameter or buffer list. */
static rg_status add_tensor(rg_param **arr, int32_t *n, int32_t *cap, size_t *floats, const char *name, int32_t count,
                            int32_t *id, rg_error *err)
{
    if (*n == *cap) {
        int32_t nc = *cap ? 2 * *cap : 16;
        rg_param *p = realloc(*arr, sizeof *p * (size_t)nc);
        if (!p) return rg_fail(err, RG_ERR_NOMEM, "qat: out of memory");
        *arr = p;
        *cap = nc;
    }
    rg_param *p = &(*arr)[*n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = 1;
    p->dims[0] = count;
    p->count = (size_t)count;
    p->offset = *floats;
    *floats += ((size_t)count + 15) & ~(size_t)15;
    p->no_decay = 1; /* ranges and scales are not weights */
    p->fan_in = p->fan_out = 1;
    *id = (*n)++;
    return RG_OK;
}

/* A block grown to `floats` (+1, as rg_graph_finish), old contents kept, the rest zero. */
static rg_status grow_block(float **block, size_t old, size_t floats, rg_error *err)
{
    float *b = rg_alloc_aligned((floats + 1) * sizeof(float), err);
    if (!b) return RG_ERR_NOMEM;
    memset(b, 0, (floats + 1) * sizeof(float));
    if (*block) memcpy(b, *block, old * sizeof(float));
    rg_free_aligned(*block);
    *block = b;
    return RG_OK;
}

static rg_status insert_nodes(rg_graph *g, const rg_qat_config *cfg, const uint8_t *point, const int32_t *tie_src,
                              rg_error *err)
{
    int32_t n_points = 0;
    for (int32_t v = 0; v < g->n_values; v++) n_points += point[v] != PT_NONE;
    int32_t cap_n = g->n_nodes + n_points, cap_v = g->n_values + n_points;
    rg_node *nodes = rg_calloc((size_t)cap_n, sizeof *nodes, err);
    rg_value *values = rg_calloc((size_t)cap_v, sizeof *values, err);
    int32_t *remap = rg_malloc(sizeof(int32_t) * (size_t)g->n_values, err);
    int32_t *fq_of = rg_malloc(sizeof(int32_t) * (size_t)g->n_values, err);
    if (!nodes || !values || !remap || !fq_of) {
        free(nodes);
        free(values);
        free(remap);
        free(fq_of);
        return RG_ERR_NOMEM;
    }
    memcpy(values, g->values, sizeof *values * (size_t)g->n_values);
    for (int32_t v = 0; v < g->n_values; v++) remap[v] = v, fq_of[v] = -1;
    int32_t nn = 0, nv = g->n_values;
    rg_status st = RG_OK;
    for (int32_t i = 0; i < g->n_nodes && !st; i++) {
        rg_node *n = &nodes[nn++];
        *n = g->nodes[i];
        n->fuse_next = n->fuse_prev = 0;
        for (int32_t k = 0; k < n->n_in; k++) n->in[k] = remap[n->in[k]];
        int32_t v = g->nodes[i].out;
        if (point[v] == PT_NONE) continue;
        rg_node *f = &nodes[nn];
        memset(f, 0, sizeof *f);
        f->op = RG_OP_FAKE_QUANT;
        snprintf(f->name, sizeof f->name, "%.80s.fq", g->nodes[i].name);
        f->n_in = 1;
        f->in[0] = v;
        f->out = nv;
        f->param[0] = f->param[1] = f->buffer[0] = f->buffer[1] = -1;
        f->a.fq.qmin = RG_Q_ACT_MIN;
        f->a.fq.qmax = RG_Q_ACT_MAX;
        f->a.fq.observe = 1;
        f->a.fq.lsq = cfg->lsq && point[v] == PT_OBSERVED;
        f->a.fq.momentum = cfg->momentum;
        f->a.fq.tie = -1;
        f->a.fq.in_fq = -1;
        if (point[v] == PT_TIED) {
            int32_t t = fq_of[tie_src[v]];
            if (t >= 0 && nodes[t].a.fq.tie >= 0) t = nodes[t].a.fq.tie;
            if (t < 0) st = rg_fail(err, RG_ERR_UNSUPPORTED, "qat: %s: no quantization point to share", g->nodes[i].name);
            f->a.fq.tie = t;
        }
        values[nv] = g->values[v];
        remap[v] = nv++;
        fq_of[v] = nn++;
    }
    if (st) {
        free(nodes);
        free(values);
        free(remap);
        free(fq_of);
        return st;
    }
    /* producers and last readers of the new order */
    for (int32_t i = 0; i < nn; i++) {
        values[nodes[i].out].producer = i;
        values[nodes[i].out].last_use = i;
    }
    for (int32_t i = 0; i < nn; i++)
        for (int32_t k = 0; k < nodes[i].n_in; k++) values[nodes[i].in[k]].last_use = i;
    g->output = remap[g->output];
    values[g->output].last_use = nn;
    free(g->nodes);
    free(g->values);
    g->nodes = nodes;
    g->values = values;
    g->cap_nodes = g->n_nodes = nn;
    int32_t old_values = g->n_values;
    g->cap_values = g->n_values = nv;
    free(remap);
    free(fq_of);
    if (g->tapped) { /* taps made before the transform keep their values */
        uint8_t *t = rg_calloc((size_t)nv, 1, err);
        const float **e = rg_calloc((size_t)nv, sizeof *e, err);
        if (!t || !e) {
            free(t);
            free(e);
            return RG_ERR_NOMEM;
        }
        memcpy(t, g->tapped, (size_t)old_values);
        memcpy(e, g->extra_grad, sizeof *e * (size_t)old_values);
        free(g->tapped);
        free(g->extra_grad);
        g->tapped = t;
        g->extra_grad = e;
    }
    return RG_OK;
}

/* The factor f[c] = gamma / sqrt(var + eps) of rg_conv_fold (1 without a batch
 * norm, or where it is 0: such a channel is not folded). */
static float fold_factor(const rg_graph *g, int32_t bn, int32_t c)
{
    if (bn < 0) return 1.0f;
    const rg_node *b = &g->nodes[bn];
    float gamma = g->param_data[g->params[b->param[0]].offset + (size_t)c];
    float var = g->buffer_data[g->buffers[b->buffer[1]].offset + (size_t)c];
    float f = gamma / sqrtf(var + b->a.bn.eps);
    return (f != 0.0f && isfinite(f)) ? f : 1.0f;
}

/* v = the folded weights of layer L from the weights w in the block. */
static void folded(const rg_qat *q, const wlayer *L, const float *w, float *v)
{
    for (int32_t c = 0; c < L->cout; c++) {
        float f = fold_factor(q->g, L->bn, c);
        for (size_t k = 0; k < L->per; k++) v[(size_t)c * L->per + k] = w[(size_t)c * L->per + k] * f;
    }
}

static void layer_scales(const rg_qat *q, const wlayer *L, const float *v, float *s)
{
    const rg_graph *g = q->g;
    int32_t qmax = rg_qat_weight_qmax(q), ns = q->cfg.per_tensor ? 1 : L->cout;
    if (L->scale_param >= 0) {
        const float *p = g->param_data + g->params[L->scale_param].offset;
        for (int32_t c = 0; c < L->cout; c++) {
            float x = p[q->cfg.per_tensor ? 0 : c];
            s[c] = x >= 1e-8f && isfinite(x) ? x : 1e-8f; /* a learned scale must stay positive */
        }
        return;
    }
    size_t per = q->cfg.per_tensor ? L->per * (size_t)L->cout : L->per;
    for (int32_t c = 0; c < ns; c++) {
        float m = 0.0f;
        for (size_t k = 0; k < per; k++) {
            float a = fabsf(v[(size_t)c * per + k]);
            m = a > m ? a : m;
        }
        rg_qparams p = {FLT_EPSILON, 0};
        rg_error e;
        if (rg_q_params_symmetric(m, qmax, &p, &e) != RG_OK) p.scale = FLT_EPSILON;
        s[c] = p.scale;
    }
    for (int32_t c = ns; c < L->cout; c++) s[c] = s[0];
}

static rg_status find_layers(rg_qat *q, rg_error *err)
{
    rg_graph *g = q->g;
    q->w = rg_calloc((size_t)g->n_nodes, sizeof *q->w, err);
    if (!q->w) return RG_ERR_NOMEM;
    size_t total = 0, largest = 1, n_factors = 0;
    int32_t widest = 1;
    for (int32_t i = 1; i < g->n_nodes; i++) {
        const rg_node *n = &g->nodes[i];
        if (n->op != RG_OP_CONV && n->op != RG_OP_LINEAR) continue;
        wlayer *L = &q->w[q->n_w++];
        L->node = i;
        L->cout = n->op == RG_OP_CONV ? n->a.conv.cout : n->a.linear.out_features;
        L->per = g->params[n->param[0]].count / (size_t)L->cout;
        L->bn = -1;
        L->scale_param = -1;
        if (n->op == RG_OP_CONV) {
            int32_t r = rg_graph_sole_reader(g, n->out);
            if (r > 0 && g->nodes[r].op == RG_OP_BN) L->bn = r;
        }
        L->out_fq = -1;
        { /* the chain conv [+ bn] [+ relu/relu6] (or linear) ends in a fake-quant node */
            int32_t at = L->bn >= 0 ? L->bn : i, r = rg_graph_sole_reader(g, g->nodes[at].out);
            if (r > 0 && (g->nodes[r].op == RG_OP_RELU || g->nodes[r].op == RG_OP_RELU6)) r = rg_graph_sole_reader(g, g->nodes[r].out);
            if (r > 0 && g->nodes[r].op == RG_OP_FAKE_QUANT && g->nodes[r].a.fq.tie < 0) L->out_fq = r;
        }
        L->bias_param = L->bn >= 0 ? g->nodes[L->bn].param[1] : n->param[1];
        L->in_fq = -1;
        for (int32_t v = n->in[0]; v >= 0;) { /* through max pools and dropout to a fake-quant node */
            const rg_node *p = &g->nodes[g->values[v].producer];
            if (p->op == RG_OP_FAKE_QUANT) L->in_fq = g->values[v].producer;
            v = (p->op == RG_OP_MAXPOOL || p->op == RG_OP_DROPOUT) ? p->in[0] : -1;
        }
        if (L->out_fq >= 0) g->nodes[L->out_fq].a.fq.in_fq = L->in_fq;
        L->master_off = total;
        total += L->per * (size_t)L->cout;
        L->bias_off = total;
        total += (size_t)L->cout;
        L->factor_off = n_factors;
        n_factors += (size_t)L->cout;
        largest = L->per * (size_t)L->cout > largest ? L->per * (size_t)L->cout : largest;
        widest = L->cout > widest ? L->cout : widest;
    }
    q->master = rg_malloc(sizeof(float) * (total ? total : 1), err);
    q->tmp = rg_malloc(sizeof(float) * largest, err);
    q->tmp2 = rg_malloc(sizeof(float) * largest, err);
    q->scales = rg_malloc(sizeof(float) * (size_t)widest, err);
    q->factors = rg_malloc(sizeof(float) * (n_factors ? n_factors : 1), err);
    q->dscales = rg_malloc(sizeof(double) * (size_t)widest, err);
    if (!q->master || !q->tmp || !q->tmp2 || !q->scales || !q->dscales || !q->factors) return RG_ERR_NOMEM;
    return RG_OK;
}

/* Buffers for the ranges and, with LSQ, the scale parameters. */
static rg_status add_state(rg_qat *q, rg_error *err)
{
    rg_graph *g = q->g;
    size_t old_b = g->buffer_floats, old_p = g->param_floats;
    char name[RG_NAME_MAX + 16];
    rg_status st = RG_OK;
    for (int32_t i = 1; i < g->n_nodes && !st; i++) {
        rg_node *n = &g->nodes[i];
        if (n->op != RG_OP_FAKE_QUANT || n->a.fq.tie >= 0) continue;
        snprintf(name, sizeof name, "%s.qrange", n->name);
        st = add_tensor(&g->buffers, &g->n_buffers, &g->cap_buffers, &g->buffer_floats, name, 4, &n->buffer[0], err);
        if (!st && n->a.fq.lsq) {
            snprintf(name, sizeof name, "%s.qscale", n->name);
            st = add_tensor(&g->params, &g->n_params, &g->cap_params, &g->param_floats, name, 1, &n->param[0], err);
        }
    }
    for (int32_t k = 0; k < q->n_w && !st; k++) {
        wlayer *L = &q->w[k];
        if (L->out_fq < 0 || L->in_fq < 0) continue;
        rg_node *f = &g->nodes[L->out_fq];
        snprintf(name, sizeof name, "%s.wscale", f->name);
        st = add_tensor(&g->buffers, &g->n_buffers, &g->cap_buffers, &g->buffer_floats, name, L->cout, &f->buffer[1], err);
    }
    for (int32_t k = 0; k < q->n_w && !st && q->cfg.lsq; k++) {
        wlayer *L = &q->w[k];
        snprintf(name, sizeof name, "%s.qscale", g->nodes[L->node].name);
        st = add_tensor(&g->params, &g->n_params, &g->cap_params, &g->param_floats, name,
                        q->cfg.per_tensor ? 1 : L->cout, &L->scale_param, err);
    }
    if (!st) st = grow_block(&g->buffer_data, old_b, g->buffer_floats, err);
    if (!st) st = grow_block(&g->param_data, old_p, g->param_floats, err);
    if (!st) st = grow_block(&g->grad_data, old_p, g->param_floats, err);
    if (st) return st;
    /* LSQ weight scales start where the max rule puts them */
    for (int32_t k = 0; k < q->n_w && q->cfg.lsq; k++) {
        wlayer *L = &q->w[k];
        int32_t sp = L->scale_param;
        L->scale_param = -1;
        const float *w = g->param_data + g->params[g->nodes[L->node].param[0]].offset;
        folded(q, L, w, q->tmp);
        layer_scales(q, L, q->tmp, q->scales);
        L->scale_param = sp;
        memcpy(g->param_data + g->params[sp].offset, q->scales, sizeof(float) * (q->cfg.per_tensor ? 1 : L->cout));
    }
    return RG_OK;
}

rg_status rg_qat_prepare(rg_graph *g, const rg_qat_config *cfg, rg_qat **out, rg_error *err)
{
    *out = NULL;
    rg_status st = rg_qat_check_config(cfg, err);
    if (st) return st;
    if (!g->param_data) return rg_fail(err, RG_ERR_ARG, "qat: the graph is not finished");
    uint8_t *point = rg_calloc((size_t)g->n_values, 1, err);
    int32_t *tie_src = rg_malloc(sizeof(int32_t) * (size_t)g->n_values, err);
    if (!point || !tie_src) {
        free(point);
        free(tie_src);
        return RG_ERR_NOMEM;
    }
    st = find_points(g, point, tie_src, err);
    if (!st) st = insert_nodes(g, cfg, point, tie_src, err);
    free(point);
    free(tie_src);
    if (st) return st;
    rg_qat *q = rg_calloc(1, sizeof *q, err);
    if (!q) return RG_ERR_NOMEM;
    q->g = g;
    q->cfg = *cfg;
    if ((st = find_layers(q, err)) || (st = add_state(q, err))) {
        rg_qat_free(q);
        return st;
    }
    /* the plan no longer matches the nodes */
    rg_free_aligned(g->arena);
    g->arena = NULL;
    rg_qat_set_epoch(q, 0);
    *out = q;
    return RG_OK;
}

void rg_qat_free(rg_qat *q)
{
    if (!q) return;
    if (q->active) rg_qat_end(q, 0);
    free(q->w);
    free(q->master);
    free(q->tmp);
    free(q->tmp2);
    free(q->scales);
    free(q->factors);
    free(q->dscales);
    free(q);
}

void rg_qat_set_epoch(rg_qat *q, int32_t epoch)
{
    rg_graph *g = q->g;
    int freeze_obs = q->cfg.freeze_observers >= 0 && epoch >= q->cfg.freeze_observers;
    for (int32_t i = 1; i < g->n_nodes; i++)
        if (g->nodes[i].op == RG_OP_FAKE_QUANT) g->nodes[i].a.fq.observe = !freeze_obs;
    int freeze_bn = q->cfg.freeze_bn >= 0 && epoch >= q->cfg.freeze_bn;
    for (int32_t k = 0; k < q->n_w; k++)
        if (q->w[k].bn >= 0) g->nodes[q->w[k].bn].a.bn.frozen = freeze_bn;
}

int rg_qat_node_params(const rg_graph *g, int32_t node, rg_qparams *p)
{
    const rg_node *n = &g->nodes[node];
    if (n->a.fq.tie >= 0) n = &g->nodes[n->a.fq.tie];
    if (n->buffer[0] < 0) return 0;
    const float *r = g->buffer_data + g->buffers[n->buffer[0]].offset;
    if (r[2] == 0.0f) return 0;
    if (n->a.fq.lsq && !n->a.fq.observe) {
        float s = g->param_data[g->params[n->param[0]].offset];
        p->scale = s >= 1e-8f && isfinite(s) ? s : 1e-8f;
        p->zero_point = (int32_t)r[3];
        return 1;
    }
    rg_error e;
    return rg_q_params_from_range(r[0], r[1], n->a.fq.qmin, n->a.fq.qmax, p, &e) == RG_OK;
}

rg_status rg_qat_weight_scales(const rg_qat *q, int32_t node, float *scales, rg_error *err)
{
    for (int32_t k = 0; k < q->n_w; k++)
        if (q->w[k].node == node) {
            const wlayer *L = &q->w[k];
            const float *w = q->active ? q->master + L->master_off
                                       : q->g->param_data + q->g->params[q->g->nodes[node].param[0]].offset;
            folded(q, L, w, q->tmp);
            layer_scales(q, L, q->tmp, scales);
            return RG_OK;
        }
    return rg_fail(err, RG_ERR_ARG, "qat: node %d is not a quantized weight layer", (int)node);
}

/* The folded bias b' = (b - mean) f + beta (as rg_conv_fold computes it) is
 * held at the int32 grid s_in * s_w[c] of the integer model: the bias (or,
 * with a batch norm, beta) moves by round(b' / (s_in s_w)) s_in s_w - b', so
 * that the frozen graph adds exactly the bias the int8 model adds. This
 * matters with 4-bit weights, whose scales make that grid coarse. */
static void fake_quant_bias(rg_qat *q, const wlayer *L)
{
    rg_graph *g = q->g;
    if (L->bias_param < 0) return;
    float *b = g->param_data + g->params[L->bias_param].offset;
    memcpy(q->master + L->bias_off, b, sizeof(float) * (size_t)L->cout);
    rg_qparams in;
    if (L->in_fq < 0 || !rg_qat_node_params(g, L->in_fq, &in)) return;
    const rg_node *n = &g->nodes[L->node];
    const float *cb = L->bn >= 0 && n->param[1] >= 0 ? g->param_data + g->params[n->param[1]].offset : NULL;
    for (int32_t c = 0; c < L->cout; c++) {
        float folded_b = b[c];
        if (L->bn >= 0) {
            const rg_node *bn = &g->nodes[L->bn];
            float mean = g->buffer_data[g->buffers[bn->buffer[0]].offset + (size_t)c];
            float var = g->buffer_data[g->buffers[bn->buffer[1]].offset + (size_t)c];
            float gamma = g->param_data[g->params[bn->param[0]].offset + (size_t)c];
            folded_b = ((cb ? cb[c] : 0.0f) - mean) * (gamma / sqrtf(var + bn->a.bn.eps)) + b[c];
        }
        float s = in.scale * q->scales[c]; /* float product, as rg_q_quantize_bias */
        if (!(s > 0.0f) || !isfinite(s)) continue;
        double r = rg_q_round((double)folded_b / (double)s);
        if (fabs(r) > (double)INT32_MAX) continue;
        b[c] += (float)(r * (double)s - (double)folded_b);
    }
}

void rg_qat_begin(rg_qat *q)
{
    if (q->active) return;
    rg_graph *g = q->g;
    int32_t qmax = rg_qat_weight_qmax(q);
    for (int32_t k = 0; k < q->n_w; k++) {
        const wlayer *L = &q->w[k];
        float *w = g->param_data + g->params[g->nodes[L->node].param[0]].offset;
        size_t n = L->per * (size_t)L->cout;
        memcpy(q->master + L->master_off, w, n * sizeof(float));
        folded(q, L, w, q->tmp);
        layer_scales(q, L, q->tmp, q->scales);
        for (int32_t c = 0; c < L->cout; c++) {
            rg_qparams p = {q->scales[c], 0};
            float f = fold_factor(g, L->bn, c);
            q->factors[L->factor_off + (size_t)c] = f;
            for (size_t i = 0; i < L->per; i++) {
                size_t at = (size_t)c * L->per + i;
                float y = p.scale * (float)rg_q_quantize_value(q->tmp[at], p, -qmax, qmax);
                w[at] = L->bn >= 0 ? y / f : y;
            }
        }
        fake_quant_bias(q, L);
        if (L->out_fq >= 0 && g->nodes[L->out_fq].buffer[1] >= 0)
            memcpy(g->buffer_data + g->buffers[g->nodes[L->out_fq].buffer[1]].offset, q->scales,
                   sizeof(float) * (size_t)L->cout);
    }
    q->active = 1;
}

void rg_qat_end(rg_qat *q, int grads)
{
    if (!q->active) return;
    rg_graph *g = q->g;
    int32_t qmax = rg_qat_weight_qmax(q);
    for (int32_t k = 0; k < q->n_w; k++) {
        const wlayer *L = &q->w[k];
        const rg_node *n = &g->nodes[L->node];
        float *w = g->param_data + g->params[n->param[0]].offset;
        size_t cnt = L->per * (size_t)L->cout;
        memcpy(w, q->master + L->master_off, cnt * sizeof(float));
        if (L->bias_param >= 0)
            memcpy(g->param_data + g->params[L->bias_param].offset, q->master + L->bias_off,
                   sizeof(float) * (size_t)L->cout);
        if (!grads) continue;
        float *dw = g->grad_data + g->params[n->param[0]].offset;
        /* the fold factors of rg_qat_begin: a training pass has moved the
         * running statistics since */
        const float *fs = q->factors + L->factor_off;
        for (int32_t c = 0; c < L->cout; c++)
            for (size_t i = 0; i < L->per; i++) q->tmp[(size_t)c * L->per + i] = w[(size_t)c * L->per + i] * fs[c];
        layer_scales(q, L, q->tmp, q->scales);
        /* W'' = fq(W f) / f: dL/dW = dL/dW'' where W f was not clipped, and
         * dL/ds = sum dL/dW'' / f * dfq/ds */
        if (L->scale_param >= 0) {
            for (int32_t c = 0; c < L->cout; c++) {
                float f = fs[c];
                for (size_t i = 0; i < L->per; i++) q->tmp2[(size_t)c * L->per + i] = dw[(size_t)c * L->per + i] / f;
                q->dscales[c] = 0.0;
            }
            float gs = rg_fq_lsq_grad_scale(q->cfg.per_tensor ? cnt : L->per, qmax);
            rg_fq_backward_lsq_channels(q->tmp, q->tmp2, L->cout, L->per, q->scales, -qmax, qmax, gs, q->tmp2,
                                        q->dscales);
            float *ds = g->grad_data + g->params[L->scale_param].offset;
            if (q->cfg.per_tensor) {
                double s = 0.0;
                for (int32_t c = 0; c < L->cout; c++) s += q->dscales[c];
                ds[0] += (float)s;
            } else {
                for (int32_t c = 0; c < L->cout; c++) ds[c] += (float)q->dscales[c];
            }
        }
        for (int32_t c = 0; c < L->cout; c++) {
            float s = q->scales[c];
            for (size_t i = 0; i < L->per; i++) {
                size_t at = (size_t)c * L->per + i;
                float u = rg_q_roundf(q->tmp[at] / s);
                if (!(u >= (float)-qmax && u <= (float)qmax)) dw[at] = 0.0f; /* clipped: no gradient */
            }
        }
    }
    q->active = 0;
}

int32_t rg_qat_fq_after(const rg_graph *g, const char *name)
{
    int32_t node = rg_graph_find_node(g, name);
    if (node < 0) return -1;
    int32_t v = g->nodes[node].out;
    for (int32_t i = node + 1; i < g->n_nodes; i++)
        if (g->nodes[i].op == RG_OP_FAKE_QUANT && g->nodes[i].in[0] == v) return i;
    return -1;
}
