/* Operator fusion at planning time.
 *
 * Batch norm + relu/relu6, in both plans: in a MobileNet-style network most
 * batch norms feed a relu6 and nothing else. Fused, the batch norm writes
 * relu6(bn(x)) straight into the activation's output, and its backward pass
 * reads that output to mask the gradient (0 < y < 6). The batch norm's own
 * output is never stored: one activation and one gradient buffer fewer per
 * pair, and two passes over memory fewer each way.
 *
 * Convolution + batch norm [+ relu/relu6], in evaluation plans: the running
 * statistics are constants, so the batch norm folds into the convolution's
 * weights and bias and the activation into its output loop (ops/conv.c).
 * A pointwise one's chain goes on through a residual add that reads it
 * [+ relu/relu6]: the add's other input joins the output loop too
 * (MobileNetV2's projection), and the add's pass over memory is saved.
 *
 * Convolution -> batch norm, in training plans: the two are paired
 * (rg_node.bn_pair, ops/bn.h) but both still run and the convolution's
 * output is stored; the convolution takes the statistics and computes the
 * input gradient of the batch norm where its data is in cache.
 *
 * Add + relu/relu6, in both plans (a ResNet block's end): the add writes
 * the activation's output and its backward masks the gradient by it, as
 * batch norm's does.
 *
 * Batch norm [+ relu/relu6] -> pointwise, depthwise or direct convolutions,
 * adds or global average pooling, in training plans: fed (rg_node.bn_feed,
 * ops/bn.h) when every reader of the chain output is one of these; each
 * reader applies the batch norm to its input as it reads it, the first
 * takes the batch norm's gradient sums as it writes their input (the last
 * write of it in the backward pass), and the chain output is not written.
 *
 * Gradient memory, in training plans (rg_graph_grad_owners): an add whose
 * backward writes an input's gradient first hands that input its own
 * output gradient's memory instead of copying into a buffer of its own.
 */
#include "graph/fuse.h"
#include "ops/conv.h"

#include <stdlib.h>

#include <string.h>

int32_t rg_graph_sole_reader(const rg_graph *g, int32_t v)
{
    if (v == g->output) return -1;
    int32_t reader = -1;
    for (int32_t j = 1; j < g->n_nodes; j++)
        for (int32_t k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] == v) {
                if (reader >= 0) return -1;
                reader = j;
            }
    return reader;
}

/* A tapped value has a reader outside the graph: never fused away. */
static int32_t sole_reader(const rg_graph *g, int32_t v)
{
    return g->tapped && g->tapped[v] ? -1 : rg_graph_sole_reader(g, v);
}

/* Whether every reader of value v can compute it from batch norm as it
 * reads it: pointwise, depthwise and direct convolutions, global average
 * pooling, adds (an add may be fed on both inputs; it finds them with
 * rg_bn_feeding), each reading v once. The first reader, or -1. */
static int32_t feedable_readers(const rg_graph *g, int32_t v)
{
    if (v == g->output || (g->tapped && g->tapped[v])) return -1;
    int32_t first = -1;
    for (int32_t j = 1; j < g->n_nodes; j++) {
        const rg_node *n = &g->nodes[j];
        int reads = 0;
        for (int32_t k = 0; k < n->n_in; k++) reads += n->in[k] == v;
        if (!reads) continue;
        int can = n->op == RG_OP_GAP || n->op == RG_OP_ADD || (n->op == RG_OP_CONV && rg_conv_can_take_bn_feed(g, n));
        if (reads > 1 || !can) return -1;
        if (first < 0) first = j;
    }
    return first;
}

static void link(rg_graph *g, int32_t a, int32_t b)
{
    g->nodes[a].fuse_next = b;
    g->nodes[b].fuse_prev = a;
}

void rg_graph_fuse(rg_graph *g, rg_plan_mode mode)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        rg_node *n = &g->nodes[i];
        n->fuse_next = n->fuse_prev = n->bn_pair = n->bn_feed = 0;
    }
    for (int32_t i = 1; i < g->n_nodes; i++) {
        if (g->nodes[i].op != RG_OP_BN && g->nodes[i].op != RG_OP_ADD) continue;
        int32_t act = sole_reader(g, g->nodes[i].out);
        if (act > 0 && (g->nodes[act].op == RG_OP_RELU || g->nodes[act].op == RG_OP_RELU6)) link(g, i, act);
        if (g->nodes[i].op != RG_OP_BN) continue;
        int32_t out = rg_graph_chain_output(g, i);
        int32_t first = mode == RG_PLAN_TRAIN ? feedable_readers(g, out) : -1;
        if (first > 0) {
            /* the chain's output is computed where each reader reads it; the
             * first reader's backward writes its gradient last (the others
             * wrote theirs before), so it takes the gradient sums */
            g->nodes[i].bn_feed = first;
            for (int32_t j = first; j < g->n_nodes; j++)
                if (g->nodes[j].op != RG_OP_ADD && g->nodes[j].in[0] == out) g->nodes[j].bn_feed = i;
        }
        int32_t conv = g->values[g->nodes[i].in[0]].producer;
        if (g->nodes[conv].op != RG_OP_CONV || sole_reader(g, g->nodes[conv].out) != i) continue;
        if (mode == RG_PLAN_EVAL) {
            link(g, conv, i);
            /* a residual block's end: the add is the pointwise
             * convolution's epilogue (ops/conv.c), when its other input
             * exists by then */
            int32_t add = g->nodes[i].fuse_next ? -1 : sole_reader(g, g->nodes[i].out);
            if (add > 0 && g->nodes[add].op == RG_OP_ADD && rg_conv_is_pointwise(&g->nodes[conv].a.conv)) {
                const rg_node *a = &g->nodes[add];
                int32_t other = a->in[0] == g->nodes[i].out ? a->in[1] : a->in[0];
                if (a->in[0] != a->in[1] && g->values[other].producer < conv) link(g, i, add);
            }
        } else if (rg_conv_can_pair_bn(g, &g->nodes[conv])) {
            /* the convolution's output stays stored (batch norm's backward
             * reads it); only its gradient is computed where it is read */
            g->nodes[conv].bn_pair = i;
            g->nodes[i].bn_pair = conv;
        }
    }
}

int32_t rg_graph_chain_head(const rg_graph *g, int32_t node)
{
    while (g->nodes[node].fuse_prev) node = g->nodes[node].fuse_prev;
    return node;
}

int32_t rg_graph_chain_output(const rg_graph *g, int32_t node)
{
    while (g->nodes[node].fuse_next) node = g->nodes[node].fuse_next;
    return g->nodes[node].out;
}

int32_t rg_graph_value_written_at(const rg_graph *g, int32_t v)
{
    return rg_graph_chain_head(g, g->values[v].producer);
}

int32_t rg_graph_grad_last_reader(const rg_graph *g, int32_t v)
{
    int32_t at = rg_graph_value_written_at(g, v);
    const rg_node *n = &g->nodes[at];
    if (n->op == RG_OP_BN && n->bn_pair && rg_conv_applies_bn_grad(g, n->bn_pair)) return n->bn_pair;
    return at;
}

/* Whether the nodes other than `add` that write value x's gradient (its
 * readers) all run their backward after the last read of value y's
 * gradient (the backward runs nodes in reverse). */
static int writes_after_last_read(const rg_graph *g, int32_t add, int32_t x, int32_t y)
{
    int32_t last_read = rg_graph_grad_last_reader(g, y);
    for (int32_t j = 1; j < g->n_nodes; j++) {
        if (j == add) continue;
        for (int32_t k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] == x && j >= last_read) return 0;
    }
    return 1;
}

static int tapped(const rg_graph *g, int32_t v) { return g->tapped && g->tapped[v]; }

/* Whether add node `add` can hand its output gradient's memory to input k:
 * the add writes that gradient first (it is the input's last reader), and
 * nothing reads the output's gradient after the add. */
static int can_hand_over(const rg_graph *g, int32_t add, int k)
{
    const rg_node *n = &g->nodes[add];
    int32_t v = n->in[k], o = rg_graph_chain_output(g, add);
    return n->n_in == 2 && n->in[0] != n->in[1] && g->values[v].last_use == add && v != g->input &&
           v != g->output && o != g->output && !tapped(g, v) && !tapped(g, o);
}

void rg_graph_grad_owners(const rg_graph *g, int32_t *owner)
{
    for (int32_t v = 0; v < g->n_values; v++) owner[v] = v;
    if (g->mode != RG_PLAN_TRAIN) return;
    /* from the last add back: an add's output may already live in a later
     * add's memory (a chain of residual blocks) */
    for (int32_t add = g->n_nodes - 1; add > 0; add--) {
        const rg_node *n = &g->nodes[add];
        if (n->op != RG_OP_ADD || n->fuse_prev) continue;
        int32_t o = rg_graph_chain_output(g, add), root = owner[o];
        /* that memory's other gradients must all have been read for the last time */
        int free_then = 1;
        for (int32_t w = 0; w < g->n_values; w++)
            if (w != o && owner[w] == root && rg_graph_grad_last_reader(g, w) <= add) free_then = 0;
        if (!free_then) continue;
        int take[2] = {can_hand_over(g, add, 0), can_hand_over(g, add, 1)};
        /* both inputs, only when neither's other writers can change it
         * before the other input's gradient is read for the last time */
        if (take[0] && take[1] && !(writes_after_last_read(g, add, n->in[0], n->in[1]) &&
                                    writes_after_last_read(g, add, n->in[1], n->in[0])))
            take[1] = 0;
        for (int k = 0; k < 2; k++)
            if (take[k]) owner[n->in[k]] = root;
    }
}

int rg_graph_value_stored(const rg_graph *g, int32_t v) { return g->nodes[g->values[v].producer].fuse_next == 0; }

void rg_graph_unfold(rg_graph *g)
{
    free(g->folded);
    free(g->folded_at);
    g->folded = NULL;
    g->folded_at = NULL;
}

rg_status rg_graph_fold(rg_graph *g, rg_error *err)
{
    if (!g->arena || g->mode != RG_PLAN_EVAL) return rg_fail(err, RG_ERR_ARG, "fold: the graph has no evaluation plan");
    rg_graph_unfold(g);
    size_t total = 0;
    size_t *at = rg_calloc((size_t)g->n_nodes, sizeof *at, err);
    if (!at) return RG_ERR_NOMEM;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_op_def *d = rg_op_def_get(g->nodes[i].op);
        if (d->fold && g->nodes[i].fuse_next) {
            at[i] = total;
            total += d->folded_floats(g, &g->nodes[i]);
        }
    }
    float *folded = rg_malloc((total + 1) * sizeof *folded, err);
    if (!folded) {
        free(at);
        return RG_ERR_NOMEM;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_op_def *d = rg_op_def_get(g->nodes[i].op);
        if (d->fold && g->nodes[i].fuse_next) d->fold(g, &g->nodes[i], folded + at[i]);
    }
    g->folded = folded;
    g->folded_at = at;
    return RG_OK;
}

rg_status rg_graph_with_eval_fusion(const rg_graph *g, rg_graph *copy, rg_error *err)
{
    *copy = *g;
    copy->folded = NULL;
    copy->folded_at = NULL;
    copy->nodes = rg_malloc((size_t)g->n_nodes * sizeof *g->nodes, err);
    if (!copy->nodes) return RG_ERR_NOMEM;
    memcpy(copy->nodes, g->nodes, (size_t)g->n_nodes * sizeof *g->nodes);
    rg_graph_fuse(copy, RG_PLAN_EVAL);
    return RG_OK;
}
