/* The convolution op's parts (ops/conv.c dispatches; conv_direct.c and
 * conv_depthwise.c hold the two direct paths). */
#ifndef REGAIN_OPS_CONV_H
#define REGAIN_OPS_CONV_H

#include "ops/op.h"

/* What a convolution's forward pass uses and writes. Alone: its weight and
 * bias, into its output. At the head of an evaluation chain (graph/fuse.c):
 * the batch norm's running statistics folded in,
 *     w' = w * scale,  b' = (b - mean) * scale + beta,  scale = gamma / sqrt(var + eps),
 * the chain's activation, and the chain's output; a pointwise chain that
 * ends in a residual add (conv, bn, add [, relu]) also the add's other
 * input, y = act(x w' + b' + residual). */
typedef struct {
    const float *w, *bias;  /* bias may be NULL */
    const float *wino;      /* w transformed for Winograd (rg_conv_wino_weight), when folded; else NULL */
    const float *residual;  /* same shape as y, or NULL */
    rg_act act;
    float *y;
} conv_out;

/* The weight, bias, activation and output of this call (folding the batch
 * norm of an evaluation chain in, ops/conv.c). */
conv_out rg_conv_output(const rg_op_call *call);
/* The convolution with the batch norm of its evaluation chain folded in:
 * rg_conv_folded_floats floats, the weight, then the bias (and for a
 * pointwise convolution the weight again, transposed; for one that runs by
 * Winograd, the weight transformed). */
size_t rg_conv_folded_floats(const rg_graph *g, const rg_node *n);
void rg_conv_fold(const rg_graph *g, const rg_node *n, float *folded);
/* db[k] += sum over rows of dy[r, k], rows in order. */
void rg_conv_bias_grad(const float *dy, size_t rows, int32_t c, float *db);

/* Dense convolutions with more than one tap run direct (kernels'
 * conv_forward), without a column buffer; the input gradient is, per phase
 * of the stride, a convolution of the padded output gradient with part of
 * the flipped weight (ops/conv_direct.c), which needs pad <= k - 1 (the
 * graph builder rejects any other padding). A strided 1x1 convolution
 * measured faster by im2col (a strided copy) and one product. */
#define RG_CONV_DIRECT_MAX_STRIDE 4
static inline int rg_conv_is_direct(const rg_conv_attr *a)
{
    return a->groups == 1 && a->kh * a->kw > 1 && a->stride <= RG_CONV_DIRECT_MAX_STRIDE;
}

/* A direct convolution whose forward pass and input gradient run by
 * Winograd F(2x2, 3x3) (ops/conv_direct.c): 3x3, stride 1, padding 1, and
 * at least 16 input and output channels (narrower, the transforms cost
 * more than the 16 products of 36 save). */
#define RG_CONV_WINO_MIN_CHANNELS 16
static inline int rg_conv_is_wino(const rg_graph *g, const rg_node *n)
{
    const rg_conv_attr *a = &n->a.conv;
    return a->groups == 1 && a->kh == 3 && a->kw == 3 && a->stride == 1 && a->pad == 1 &&
           g->values[n->in[0]].shape.c >= RG_CONV_WINO_MIN_CHANNELS && a->cout >= RG_CONV_WINO_MIN_CHANNELS;
}
/* u[xi][ci][co] = (G g G^T)[xi] of the OHWI 3x3 weight w: 16 cin x cout
 * planes; with flip, those of the input gradient's convolution (the taps
 * reversed, the channels swapped): 16 cout x cin planes. */
void rg_conv_wino_weight(const float *w, int32_t cin, int32_t cout, int flip, float *u);

/* Depthwise: one filter per channel. */
static inline int rg_conv_is_depthwise(const rg_graph *g, const rg_node *n)
{
    int32_t cin = g->values[n->in[0]].shape.c;
    return n->a.conv.groups == cin && n->a.conv.cout == cin && cin > 1;
}

/* Pointwise: 1x1, stride 1, no padding, one group (one matrix product). */
static inline int rg_conv_is_pointwise(const rg_conv_attr *a)
{
    return a->kh == 1 && a->kw == 1 && a->stride == 1 && a->pad == 0 && a->groups == 1;
}

/* Paths that take the moments of a paired batch norm (ops/bn.h) as they
 * write each image: pointwise, depthwise, direct. */
static inline int rg_conv_can_pair_bn(const rg_graph *g, const rg_node *n)
{
    /* a bias's gradient would need the batch norm's input gradient stored */
    if (n->param[1] >= 0) return 0;
    return rg_conv_is_pointwise(&n->a.conv) || rg_conv_is_depthwise(g, n) || rg_conv_is_direct(&n->a.conv);
}

/* Per-thread buffers in a convolution's scratch: one for each thread at
 * planning (rg_graph.plan_threads), `per` floats each
 * (rg_conv_slots_floats). The scratch's layout depends on that count only,
 * never on the threads of the moment, and a parallel loop using the
 * buffers runs on rg_conv_slots(g) threads, no more than were planned, so
 * a later change of the thread count stays safe; which thread takes which
 * block never changes a result. */
size_t rg_conv_slots_floats(const rg_graph *g, size_t per);
int rg_conv_slots(const rg_graph *g);

/* Paths that can read their input as act(bn(x)) computed block by block
 * (rg_node.bn_feed): pointwise, depthwise and direct. */
static inline int rg_conv_can_take_bn_feed(const rg_graph *g, const rg_node *n)
{
    return rg_conv_is_pointwise(&n->a.conv) || rg_conv_is_depthwise(g, n) || rg_conv_is_direct(&n->a.conv);
}

/* Whether convolution `conv` (a node index) computes its paired batch
 * norm's input gradient itself (pointwise and depthwise). */
static inline int rg_conv_applies_bn_grad(const rg_graph *g, int32_t conv)
{
    const rg_node *n = &g->nodes[conv];
    return rg_conv_is_pointwise(&n->a.conv) || rg_conv_is_depthwise(g, n);
}

/* Direct dense convolution (ops/conv_direct.c). */
size_t rg_conv_direct_scratch(const rg_graph *g, const rg_node *n, int32_t batch);
void rg_conv_direct_forward(const rg_op_call *call, const conv_out *o);
void rg_conv_direct_backward(const rg_op_call *call);

/* Depthwise convolution (ops/conv_depthwise.c). */
void rg_conv_dw_forward(const rg_op_call *call);
void rg_conv_dw_backward(const rg_op_call *call);
/* Scratch floats of its per-thread buffers (after the weight-gradient partials). */
size_t rg_conv_dw_slots_floats(const rg_graph *g, const rg_node *n);

#endif
