/* Batch norm's side of its pairing with the convolution that produces its
 * input (rg_node.bn_pair, graph/fuse.c), in training with batch statistics:
 * - forward: the convolution hands over each image's channel moments,
 *   taken while the image it just wrote is in cache (rg_bn_take_moments),
 *   so batch norm reads its input once instead of twice;
 * - backward (pointwise and depthwise convolutions): batch norm computes
 *   its reductions and parameter gradients only; the convolution computes
 *   batch norm's input gradient block by block into cache as it needs it
 *   (rg_bn_input_grad), so that gradient is never written to memory.
 * The results are those of the unpaired ops up to float rounding of the
 * same operations in another grouping (the moments are bit-identical).
 */
#ifndef REGAIN_OPS_BN_H
#define REGAIN_OPS_BN_H

#include "ops/op.h"

/* Whether batch norm `bn` (a node index, 0 = none) is paired and uses batch
 * statistics in this pass. */
static inline int rg_bn_pair_active(const rg_graph *g, const rg_exec *ctx, int32_t bn)
{
    return bn > 0 && ctx->training && !g->nodes[bn].a.bn.frozen;
}

/* Image `image`'s channel moments (x: its hw x C output) for batch norm bn. */
void rg_bn_take_moments(rg_graph *g, int32_t bn, int32_t image, const float *x);

/* The fed batch norm (rg_node.bn_feed) whose chain output value v is,
 * 0 when v is none's. */
int32_t rg_bn_feeding(const rg_graph *g, int32_t v);
/* Whether reader `node` takes fed batch norm bn's gradient sums: only the
 * first of its readers does, whose backward writes the gradient last. */
static inline int rg_bn_feed_takes_sums(const rg_graph *g, int32_t bn, int32_t node)
{
    return g->nodes[bn].bn_feed == node;
}

/* Fed (rg_node.bn_feed): rows [r0, r0 + rows) of the chain output
 * act(x * scale + shift) of batch norm bn into out, after bn's forward ran. */
void rg_bn_feed_apply(rg_graph *g, int32_t bn, size_t r0, size_t rows, float *out);
/* Fed: batch norm bn's gradient sums of image `image` (dy: that image of
 * the chain output's gradient, complete), during the reader's backward. */
void rg_bn_feed_grad_sums(rg_graph *g, int32_t bn, int32_t image, const float *dy);

/* Rows [r0, r0 + rows) of batch norm bn's input gradient into out (rows x
 * C floats), after bn's backward ran. */
void rg_bn_input_grad(rg_graph *g, int32_t bn, size_t r0, size_t rows, float *out);

#endif
