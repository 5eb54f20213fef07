/* Internal op interface: one table entry per op type.
 *
 * Shapes are inferred by the builder (graph/build.c) when a node is added;
 * an op here only computes. Conventions shared by every op:
 * - forward writes its output value completely;
 * - backward ACCUMULATES into the gradients of its inputs (dX += ...), since a
 *   value read by several nodes receives the sum of their contributions; the
 *   graph zeroes each gradient before its first writer runs, or, for ops
 *   that declare stores_fresh_din, lets that writer store (dX = ...);
 * - parameter gradients are accumulated too (zeroed by the graph);
 * - `scratch` is shared by all nodes (valid during one forward or backward
 *   call only); `saved` is per node and survives from forward to backward.
 * - reductions run in a fixed order that does not depend on the number of
 *   threads, so results are bit-identical whatever OMP_NUM_THREADS is.
 */
#ifndef REGAIN_OPS_OP_H
#define REGAIN_OPS_OP_H

#include "regain/graph.h"
#include "graph/fuse.h"
#include "kernels/kernels.h"

typedef struct {
    rg_graph *g;
    rg_node *node;
    int32_t index;        /* node index in the graph */
    const rg_exec *ctx;
    float *scratch;       /* shared scratch, node->scratch_floats long */
    float *saved;         /* per-node state kept from forward to backward */
} rg_op_call;

typedef struct {
    const char *name;
    void (*forward)(const rg_op_call *c);
    void (*backward)(const rg_op_call *c);
    /* Scratch floats this node needs for `batch` images (NULL: none). */
    size_t (*scratch_floats)(const rg_graph *g, const rg_node *n, int32_t batch);
    /* Floats saved from forward to backward in training (NULL: none). */
    size_t (*saved_floats)(const rg_graph *g, const rg_node *n, int32_t batch);
    /* Multiply-accumulates per image (NULL: counted as zero). */
    uint64_t (*macs)(const rg_graph *g, const rg_node *n);
    /* 1: the backward pass stores into an input gradient that is still fresh
     * (rg_din_fresh) instead of adding to it, so the graph need not zero it
     * first: a write and a read of the whole gradient saved. */
    int stores_fresh_din;
    /* For ops that head an evaluation chain (graph/fuse.c): floats of their
     * weights with the chain folded in, and the folding (NULL: none). */
    size_t (*folded_floats)(const rg_graph *g, const rg_node *n);
    void (*fold)(const rg_graph *g, const rg_node *n, float *folded);
} rg_op_def;

const rg_op_def *rg_op_def_get(rg_op_type op);

/* Accessors used by every op. */
static inline rg_shape rg_in_shape(const rg_op_call *c, int i)
{
    rg_shape s = c->g->values[c->node->in[i]].shape;
    s.n = c->g->batch;
    return s;
}
static inline rg_shape rg_out_shape(const rg_op_call *c)
{
    rg_shape s = c->g->values[c->node->out].shape;
    s.n = c->g->batch;
    return s;
}
static inline float *rg_in(const rg_op_call *c, int i) { return rg_graph_act(c->g, c->node->in[i]); }
static inline float *rg_out(const rg_op_call *c) { return rg_graph_act(c->g, c->node->out); }
static inline float *rg_din(const rg_op_call *c, int i) { return rg_graph_grad(c->g, c->node->in[i]); }
/* Input i's gradient, or NULL when it is the graph input and the pass
 * asks for none (rg_exec.no_input_grad): for ops that skip a NULL din. */
static inline float *rg_din_wanted(const rg_op_call *c, int i)
{
    return c->ctx->no_input_grad && c->node->in[i] == c->g->input ? NULL : rg_din(c, i);
}
/* Whether input i's gradient holds nothing yet: this node is its first
 * writer (only asked by ops with stores_fresh_din). */
static inline int rg_din_fresh(const rg_op_call *c, int i) { return c->g->grad_fresh[c->node->in[i]]; }
static inline float *rg_dout(const rg_op_call *c) { return rg_graph_grad(c->g, c->node->out); }
static inline float *rg_param_data(const rg_op_call *c, int i)
{
    return c->g->param_data + c->g->params[c->node->param[i]].offset;
}
static inline float *rg_param_grad(const rg_op_call *c, int i)
{
    return c->g->grad_data + c->g->params[c->node->param[i]].offset;
}
static inline float *rg_buffer_data(const rg_op_call *c, int i)
{
    return c->g->buffer_data + c->g->buffers[c->node->buffer[i]].offset;
}

/* The relu/relu6 fused after node n, a batch norm or an add (none if not
 * fused; a batch norm may instead be followed in its chain by an add). */
static inline rg_act rg_fused_act(const rg_graph *g, const rg_node *n)
{
    if (!n->fuse_next) return RG_ACT_NONE;
    switch (g->nodes[n->fuse_next].op) {
    case RG_OP_RELU6: return RG_ACT_RELU6;
    case RG_OP_RELU: return RG_ACT_RELU;
    default: return RG_ACT_NONE;
    }
}

/* Op entry points, one file each under src/ops/. */
extern const rg_op_def rg_op_conv, rg_op_bn, rg_op_relu, rg_op_relu6, rg_op_hswish,
    rg_op_sigmoid, rg_op_add, rg_op_mul, rg_op_concat, rg_op_slice, rg_op_shuffle,
    rg_op_maxpool, rg_op_avgpool, rg_op_gap, rg_op_linear, rg_op_dropout,
    rg_op_fake_quant;

#endif
