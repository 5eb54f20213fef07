/* Graph construction: nodes, values, parameters and shape inference.
 *
 * Every builder call checks its inputs, infers the output shape and creates
 * the node's parameters; errors name the node and the problem. Parameters are
 * only described here (offsets into the future block); rg_graph_finish
 * allocates the blocks once all are known.
 */
#include "regain/graph.h"
#include "ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t rg_shape_count(rg_shape s) { return (size_t)s.n * (size_t)s.h * (size_t)s.w * (size_t)s.c; }

static rg_status grow(void **arr, int32_t *cap, int32_t need, size_t elem, rg_error *err)
{
    if (need <= *cap) return RG_OK;
    int32_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return rg_fail(err, RG_ERR_NOMEM, "out of memory growing the graph");
    *arr = p;
    *cap = nc;
    return RG_OK;
}

rg_status rg_graph_create(int32_t h, int32_t w, int32_t c, rg_graph **out, rg_error *err)
{
    if (h <= 0 || w <= 0 || c <= 0 || h > 4096 || w > 4096 || c > 4096)
        return rg_fail(err, RG_ERR_SHAPE, "input shape %dx%dx%d is not valid (each must be 1..4096)", h, w, c);
    rg_graph *g = rg_calloc(1, sizeof *g, err);
    if (!g) return RG_ERR_NOMEM;
    g->input = g->output = -1;
    if (grow((void **)&g->nodes, &g->cap_nodes, 1, sizeof(rg_node), err) ||
        grow((void **)&g->values, &g->cap_values, 1, sizeof(rg_value), err)) {
        rg_graph_free(g);
        return RG_ERR_NOMEM;
    }
    rg_node *n = &g->nodes[0];
    memset(n, 0, sizeof *n);
    n->op = RG_OP_INPUT;
    snprintf(n->name, sizeof n->name, "input");
    n->out = 0;
    n->param[0] = n->param[1] = n->buffer[0] = n->buffer[1] = -1;
    g->values[0] = (rg_value){.shape = {1, h, w, c}, .producer = 0, .last_use = 0};
    g->n_nodes = g->n_values = 1;
    g->input = 0;
    *out = g;
    return RG_OK;
}

void rg_graph_free(rg_graph *g)
{
    if (!g) return;
    free(g->nodes);
    free(g->values);
    free(g->params);
    free(g->buffers);
    rg_free_aligned(g->param_data);
    rg_free_aligned(g->grad_data);
    rg_free_aligned(g->buffer_data);
    rg_free_aligned(g->arena);
    free(g->grad_fresh);
    free(g->tapped);
    free(g->extra_grad);
    rg_graph_unfold(g);
    free(g->spec);
    free(g);
}

int32_t rg_graph_find_node(const rg_graph *g, const char *name)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

int32_t rg_graph_find_layer(const rg_graph *g, const char *name)
{
    size_t len = strlen(name);
    int32_t found = -1;
    for (int32_t i = 1; i < g->n_nodes; i++) {
        const char *n = g->nodes[i].name;
        if (!strncmp(n, name, len) && (n[len] == 0 || n[len] == '.')) found = g->nodes[i].out;
    }
    return found;
}

rg_status rg_graph_tap(rg_graph *g, int32_t v, rg_error *err)
{
    if (v < 0 || v >= g->n_values) return rg_fail(err, RG_ERR_ARG, "tap: value %d does not exist", v);
    if (!g->tapped) {
        g->tapped = rg_calloc((size_t)g->n_values, 1, err);
        g->extra_grad = rg_calloc((size_t)g->n_values, sizeof *g->extra_grad, err);
        if (!g->tapped || !g->extra_grad) return RG_ERR_NOMEM;
    }
    g->tapped[v] = 1;
    return RG_OK;
}

void rg_graph_set_extra_grad(rg_graph *g, int32_t v, const float *grad)
{
    if (g->extra_grad && v >= 0 && v < g->n_values && g->tapped[v]) g->extra_grad[v] = grad;
}

static int32_t find_in(const rg_param *arr, int32_t n, const char *name)
{
    for (int32_t i = 0; i < n; i++)
        if (strcmp(arr[i].name, name) == 0) return i;
    return -1;
}
int32_t rg_graph_find_param(const rg_graph *g, const char *name) { return find_in(g->params, g->n_params, name); }
int32_t rg_graph_find_buffer(const rg_graph *g, const char *name) { return find_in(g->buffers, g->n_buffers, name); }

/* Starts a node: checks the name and input ids, reserves slots. */
static rg_status begin_node(rg_graph *g, rg_op_type op, const char *name, const int32_t *ins, int32_t n_in,
                            rg_node **out, rg_error *err)
{
    if (g->param_data) return rg_fail(err, RG_ERR_ARG, "graph is finished: cannot add node '%s'", name);
    if (!name || !*name) return rg_fail(err, RG_ERR_ARG, "a %s node needs a name", rg_op_name(op));
    if (strlen(name) >= RG_NAME_MAX - 20)
        return rg_fail(err, RG_ERR_ARG, "node name '%.40s...' is too long (at most %d characters)", name, RG_NAME_MAX - 21);
    if (rg_graph_find_node(g, name) >= 0) return rg_fail(err, RG_ERR_SPEC, "duplicate layer name '%s'", name);
    for (int32_t i = 0; i < n_in; i++)
        if (ins[i] < 0 || ins[i] >= g->n_values)
            return rg_fail(err, RG_ERR_ARG, "%s: input %d refers to no value", name, i);
    rg_status st;
    if ((st = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(rg_node), err)) ||
        (st = grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(rg_value), err)))
        return st;
    rg_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->n_in = n_in;
    for (int32_t i = 0; i < n_in; i++) n->in[i] = ins[i];
    n->param[0] = n->param[1] = n->buffer[0] = n->buffer[1] = -1;
    n->out = -1;
    *out = n;
    return RG_OK;
}

/* Commits the node begun last with output shape s; returns the value id. */
static int32_t end_node(rg_graph *g, rg_node *n, rg_shape s)
{
    int32_t node_id = g->n_nodes++;
    int32_t v = g->n_values++;
    g->values[v] = (rg_value){.shape = s, .producer = node_id, .last_use = node_id};
    n->out = v;
    for (int32_t i = 0; i < n->n_in; i++) g->values[n->in[i]].last_use = node_id;
    return v;
}

static rg_status add_tensor(rg_param **arr, int32_t *n, int32_t *cap, size_t *floats, const char *name,
                            int32_t ndim, const int32_t *dims, int32_t no_decay, int32_t fan_in,
                            int32_t fan_out, int32_t *id, rg_error *err)
{
    rg_status st = grow((void **)arr, cap, *n + 1, sizeof(rg_param), err);
    if (st) return st;
    rg_param *p = &(*arr)[*n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->count = 1;
    for (int32_t i = 0; i < ndim; i++) {
        p->dims[i] = dims[i];
        p->count *= (size_t)dims[i];
    }
    /* 16-float alignment of each tensor keeps vector loads aligned. */
    p->offset = *floats;
    *floats += (p->count + 15) & ~(size_t)15;
    p->no_decay = no_decay;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    *id = (*n)++;
    return RG_OK;
}

static rg_status add_param(rg_graph *g, rg_node *n, int slot, const char *suffix, int32_t ndim,
                           const int32_t *dims, int32_t no_decay, int32_t fan_in, int32_t fan_out,
                           rg_error *err)
{
    char name[RG_NAME_MAX];
    snprintf(name, sizeof name, "%.74s.%.20s", n->name, suffix);
    return add_tensor(&g->params, &g->n_params, &g->cap_params, &g->param_floats, name, ndim, dims, no_decay,
                      fan_in, fan_out, &n->param[slot], err);
}

static rg_status add_buffer(rg_graph *g, rg_node *n, int slot, const char *suffix, int32_t count, rg_error *err)
{
    char name[RG_NAME_MAX];
    snprintf(name, sizeof name, "%.74s.%.20s", n->name, suffix);
    return add_tensor(&g->buffers, &g->n_buffers, &g->cap_buffers, &g->buffer_floats, name, 1, &count, 1, 0, 0,
                      &n->buffer[slot], err);
}

static rg_shape vshape(const rg_graph *g, int32_t v) { return g->values[v].shape; }

/* Output size of a window op; error if it would be empty. */
static rg_status window_out(const char *name, int32_t in, int32_t k, int32_t s, int32_t p, const char *axis,
                            int32_t *out, rg_error *err)
{
    if (k <= 0 || s <= 0 || p < 0)
        return rg_fail(err, RG_ERR_SHAPE, "%s: kernel %d, stride %d, padding %d are not valid", name, k, s, p);
    if (p >= k)
        return rg_fail(err, RG_ERR_SHAPE, "%s: padding %d must be smaller than the kernel %d", name, p, k);
    int32_t span = in + 2 * p - k;
    if (span < 0)
        return rg_fail(err, RG_ERR_SHAPE, "%s: kernel %d does not fit the input %s %d (padding %d)", name, k,
                       axis, in, p);
    *out = span / s + 1;
    return RG_OK;
}

rg_status rg_graph_add_conv(rg_graph *g, const char *name, int32_t in, rg_conv_attr a, int32_t *out, rg_error *err)
{
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_CONV, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape x = vshape(g, in);
    if (a.groups <= 0) a.groups = 1;
    if (a.cout <= 0) return rg_fail(err, RG_ERR_SHAPE, "%s: output channels must be positive, got %d", name, a.cout);
    if (x.c % a.groups || a.cout % a.groups)
        return rg_fail(err, RG_ERR_SHAPE, "%s: %d groups do not divide input channels %d and output channels %d",
                       name, a.groups, x.c, a.cout);
    rg_shape y = {1, 0, 0, a.cout};
    if ((st = window_out(name, x.h, a.kh, a.stride, a.pad, "height", &y.h, err)) ||
        (st = window_out(name, x.w, a.kw, a.stride, a.pad, "width", &y.w, err)))
        return st;
    n->a.conv = a;
    int32_t cg = x.c / a.groups;
    int32_t dims[4] = {a.cout, a.kh, a.kw, cg};
    /* fan_out as PyTorch computes it (not divided by groups), so the
     * Kaiming init of a depthwise weight matches the reference recipe */
    int32_t fan_in = cg * a.kh * a.kw, fan_out = a.cout * a.kh * a.kw;
    if ((st = add_param(g, n, 0, "weight", 4, dims, 0, fan_in, fan_out, err))) return st;
    if (a.has_bias && (st = add_param(g, n, 1, "bias", 1, &a.cout, 1, fan_in, fan_out, err))) return st;
    *out = end_node(g, n, y);
    return RG_OK;
}

rg_status rg_graph_add_bn(rg_graph *g, const char *name, int32_t in, int32_t *out, rg_error *err)
{
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_BN, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape x = vshape(g, in);
    n->a.bn.eps = 1e-5f;
    n->a.bn.momentum = 0.1f;
    if ((st = add_param(g, n, 0, "weight", 1, &x.c, 1, 0, 0, err)) ||
        (st = add_param(g, n, 1, "bias", 1, &x.c, 1, 0, 0, err)) ||
        (st = add_buffer(g, n, 0, "running_mean", x.c, err)) || (st = add_buffer(g, n, 1, "running_var", x.c, err)))
        return st;
    *out = end_node(g, n, x);
    return RG_OK;
}

rg_status rg_graph_add_unary(rg_graph *g, rg_op_type op, const char *name, int32_t in, int32_t *out, rg_error *err)
{
    if (op != RG_OP_RELU && op != RG_OP_RELU6 && op != RG_OP_HSWISH && op != RG_OP_SIGMOID && op != RG_OP_GAP)
        return rg_fail(err, RG_ERR_ARG, "%s: %s is not a unary op", name, rg_op_name(op));
    rg_node *n;
    rg_status st = begin_node(g, op, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape y = vshape(g, in);
    if (op == RG_OP_GAP) y.h = y.w = 1;
    *out = end_node(g, n, y);
    return RG_OK;
}

rg_status rg_graph_add_binary(rg_graph *g, rg_op_type op, const char *name, int32_t a, int32_t b, int32_t *out,
                              rg_error *err)
{
    if (op != RG_OP_ADD && op != RG_OP_MUL) return rg_fail(err, RG_ERR_ARG, "%s: not a binary op", name);
    int32_t ins[2] = {a, b};
    rg_node *n;
    rg_status st = begin_node(g, op, name, ins, 2, &n, err);
    if (st) return st;
    rg_shape sa = vshape(g, a), sb = vshape(g, b);
    int same = sa.h == sb.h && sa.w == sb.w && sa.c == sb.c;
    int bcast = op == RG_OP_MUL && sb.h == 1 && sb.w == 1 && sb.c == sa.c;
    if (!same && !bcast)
        return rg_fail(err, RG_ERR_SHAPE, "%s: cannot %s shapes %dx%dx%d and %dx%dx%d", name,
                       op == RG_OP_ADD ? "add" : "multiply", sa.h, sa.w, sa.c, sb.h, sb.w, sb.c);
    *out = end_node(g, n, sa);
    return RG_OK;
}

rg_status rg_graph_add_concat(rg_graph *g, const char *name, const int32_t *ins, int32_t n_in, int32_t *out,
                              rg_error *err)
{
    if (n_in < 1 || n_in > RG_MAX_INPUTS)
        return rg_fail(err, RG_ERR_ARG, "%s: concat takes 1 to %d inputs, got %d", name, RG_MAX_INPUTS, n_in);
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_CONCAT, name, ins, n_in, &n, err);
    if (st) return st;
    rg_shape y = vshape(g, ins[0]);
    for (int32_t i = 1; i < n_in; i++) {
        rg_shape s = vshape(g, ins[i]);
        if (s.h != y.h || s.w != y.w)
            return rg_fail(err, RG_ERR_SHAPE, "%s: cannot concatenate %dx%d with %dx%d", name, y.h, y.w, s.h, s.w);
        y.c += s.c;
    }
    *out = end_node(g, n, y);
    return RG_OK;
}

rg_status rg_graph_add_slice(rg_graph *g, const char *name, int32_t in, int32_t offset, int32_t count, int32_t *out,
                             rg_error *err)
{
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_SLICE, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape x = vshape(g, in);
    if (offset < 0 || count <= 0 || offset + count > x.c)
        return rg_fail(err, RG_ERR_SHAPE, "%s: channels [%d, %d) are outside the input's %d channels", name, offset,
                       offset + count, x.c);
    n->a.slice.offset = offset;
    n->a.slice.count = count;
    x.c = count;
    *out = end_node(g, n, x);
    return RG_OK;
}

rg_status rg_graph_add_shuffle(rg_graph *g, const char *name, int32_t in, int32_t groups, int32_t *out,
                               rg_error *err)
{
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_SHUFFLE, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape x = vshape(g, in);
    if (groups <= 0 || x.c % groups)
        return rg_fail(err, RG_ERR_SHAPE, "%s: %d groups do not divide %d channels", name, groups, x.c);
    n->a.shuffle.groups = groups;
    *out = end_node(g, n, x);
    return RG_OK;
}

rg_status rg_graph_add_pool(rg_graph *g, rg_op_type op, const char *name, int32_t in, int32_t k, int32_t stride,
                            int32_t pad, int32_t *out, rg_error *err)
{
    if (op != RG_OP_MAXPOOL && op != RG_OP_AVGPOOL) return rg_fail(err, RG_ERR_ARG, "%s: not a pooling op", name);
    rg_node *n;
    rg_status st = begin_node(g, op, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape x = vshape(g, in), y = x;
    if ((st = window_out(name, x.h, k, stride, pad, "height", &y.h, err)) ||
        (st = window_out(name, x.w, k, stride, pad, "width", &y.w, err)))
        return st;
    n->a.pool.k = k;
    n->a.pool.stride = stride;
    n->a.pool.pad = pad;
    *out = end_node(g, n, y);
    return RG_OK;
}

rg_status rg_graph_add_linear(rg_graph *g, const char *name, int32_t in, int32_t out_features, int has_bias,
                              int32_t *out, rg_error *err)
{
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_LINEAR, name, &in, 1, &n, err);
    if (st) return st;
    rg_shape x = vshape(g, in);
    if (out_features <= 0)
        return rg_fail(err, RG_ERR_SHAPE, "%s: output features must be positive, got %d", name, out_features);
    /* h*w*c reaches 4096^3 from a spec: checked in 64 bits (the int32
     * product overflowed, undefined behaviour) before it becomes a dimension */
    int64_t fin64 = (int64_t)x.h * x.w * x.c;
    if (fin64 > INT32_MAX)
        return rg_fail(err, RG_ERR_SHAPE, "%s: %lld input features (%dx%dx%d) are too many (at most %d)", name,
                       (long long)fin64, x.h, x.w, x.c, INT32_MAX);
    int32_t fin = (int32_t)fin64;
    int32_t dims[2] = {out_features, fin};
    n->a.linear.out_features = out_features;
    if ((st = add_param(g, n, 0, "weight", 2, dims, 0, fin, out_features, err))) return st;
    if (has_bias && (st = add_param(g, n, 1, "bias", 1, &out_features, 1, fin, out_features, err))) return st;
    *out = end_node(g, n, (rg_shape){1, 1, 1, out_features});
    return RG_OK;
}

rg_status rg_graph_add_dropout(rg_graph *g, const char *name, int32_t in, float p, int32_t *out, rg_error *err)
{
    if (!(p >= 0.0f && p < 1.0f)) return rg_fail(err, RG_ERR_ARG, "%s: dropout p must be in [0, 1), got %g", name, p);
    rg_node *n;
    rg_status st = begin_node(g, RG_OP_DROPOUT, name, &in, 1, &n, err);
    if (st) return st;
    n->a.dropout.p = p;
    *out = end_node(g, n, vshape(g, in));
    return RG_OK;
}

rg_status rg_graph_finish(rg_graph *g, int32_t output, rg_error *err)
{
    if (g->param_data) return rg_fail(err, RG_ERR_ARG, "graph is already finished");
    if (output < 0 || output >= g->n_values) return rg_fail(err, RG_ERR_ARG, "output refers to no value");
    g->output = output;
    g->values[output].last_use = g->n_nodes; /* the output outlives every node */
    g->param_data = rg_alloc_aligned((g->param_floats + 1) * sizeof(float), err);
    g->grad_data = rg_alloc_aligned((g->param_floats + 1) * sizeof(float), err);
    g->buffer_data = rg_alloc_aligned((g->buffer_floats + 1) * sizeof(float), err);
    if (!g->param_data || !g->grad_data || !g->buffer_data) return RG_ERR_NOMEM;
    memset(g->param_data, 0, g->param_floats * sizeof(float));
    memset(g->grad_data, 0, g->param_floats * sizeof(float));
    memset(g->buffer_data, 0, g->buffer_floats * sizeof(float));
    return RG_OK;
}
