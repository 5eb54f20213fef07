/* Elementwise add and multiply of two values.
 *
 *   add: y = a + b (same shape)                  da += dy, db += dy (a fresh gradient: a copy)
 *        or act(a + b) with a fused relu/relu6   the same with dy * act'(y) (graph/fuse.c; the
 *                                                slope from the output equals the slope from the sum)
 *        In training an input that is a batch norm's chain output read by
 *        nothing else is fed (ops/bn.h: a residual block's projection): the
 *        add computes it image by image into cache as it reads it, and takes
 *        the batch norm's gradient sums as it writes that input's gradient.
 *   mul: y = a * b, b same shape or (N,1,1,C)    da += dy * b
 *        (channel broadcast: the gate of a       db += dy * a, summed over
 *         squeeze-excitation block)                   H*W per image when broadcast
 */
#include "graph/fuse.h"
#include "kernels/kernels.h"
#include "ops/bn.h"
#include "ops/conv.h"

#include <omp.h>
#include <string.h>

#define PIECE 16384 /* elements a parallel piece of the fused add */

/* The batch norm feeding this add in this pass (0: none) and which input
 * it gives. */
static int32_t add_feed(const rg_op_call *c, int *which)
{
    int32_t feed = c->node->bn_feed;
    if (!rg_bn_pair_active(c->g, c->ctx, feed)) return 0;
    *which = c->node->in[0] == rg_graph_chain_output(c->g, feed) ? 0 : 1;
    return feed;
}

/* Per thread, one image of the fed input (rg_conv_slots). */
static size_t add_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    (void)batch;
    rg_shape y = g->values[n->out].shape;
    return n->bn_feed ? rg_conv_slots_floats(g, (size_t)y.h * y.w * y.c) : 0;
}

/* Fed: image by image, the batch norm's chain output into cache, added
 * there, the fused activation applied while it is in cache. */
static void add_forward_fed(const rg_op_call *c, int32_t feed, int which, rg_act act, float *y)
{
    const rg_kernel_table *k = rg_kernels();
    const float *other = rg_in(c, 1 - which);
    rg_shape s = rg_out_shape(c);
    size_t hw = (size_t)s.h * s.w, per = hw * s.c;
#pragma omp parallel num_threads(rg_conv_slots(c->g))
    {
        float *slot = c->scratch + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(static)
        for (int32_t n = 0; n < s.n; n++) {
            rg_bn_feed_apply(c->g, feed, (size_t)n * hw, hw, slot);
            const float *restrict o = other + (size_t)n * per;
            float *restrict yn = y + (size_t)n * per;
            for (size_t i = 0; i < per; i++) yn[i] = o[i] + slot[i];
            if (act != RG_ACT_NONE) k->act_forward(act, yn, yn, per);
        }
    }
}

static void add_forward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1);
    rg_act act = rg_fused_act(c->g, c->node);
    float *y = rg_graph_act(c->g, rg_graph_chain_output(c->g, c->index));
    size_t count = rg_shape_count(rg_out_shape(c));
    int which;
    int32_t feed = add_feed(c, &which);
    if (feed) {
        add_forward_fed(c, feed, which, act, y);
        return;
    }
    if (act == RG_ACT_NONE) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
        return;
    }
    const rg_kernel_table *k = rg_kernels();
    size_t pieces = (count + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pieces; p++) {
        size_t i0 = p * PIECE, n = count - i0 < PIECE ? count - i0 : PIECE;
        for (size_t i = i0; i < i0 + n; i++) y[i] = a[i] + b[i];
        k->act_forward(act, y + i0, y + i0, n);
    }
}

/* Fed: image by image, both inputs' gradients, then the batch norm's
 * gradient sums of the fed input's while it is in cache (the add is its
 * sole reader, so it is whole and fresh). */
static void add_backward_fed(const rg_op_call *c, int32_t feed, int which, rg_act act, const float *dy)
{
    const rg_kernel_table *k = rg_kernels();
    const float *y = rg_graph_act(c->g, rg_graph_chain_output(c->g, c->index));
    rg_shape s = rg_out_shape(c);
    size_t per = (size_t)s.h * s.w * s.c;
    float *d[2] = {rg_din(c, 0), rg_din(c, 1)};
    int fresh[2] = {rg_din_fresh(c, 0), rg_din_fresh(c, 1)};
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        size_t o = (size_t)n * per;
        for (int i = 0; i < 2; i++) {
            int j = i ? which : 1 - which; /* the fed input's last, so it is in cache for the sums */
            if (act != RG_ACT_NONE) {
                k->act_backward(act, y + o, dy + o, d[j] + o, per, fresh[j]);
            } else if (fresh[j]) {
                memcpy(d[j] + o, dy + o, per * sizeof(float));
            } else {
                float *restrict dj = d[j] + o;
                const float *restrict g = dy + o;
                for (size_t e = 0; e < per; e++) dj[e] += g[e];
            }
        }
        rg_bn_feed_grad_sums(c->g, feed, n, d[which] + o);
    }
}

static void add_backward(const rg_op_call *c)
{
    rg_act act = rg_fused_act(c->g, c->node);
    int32_t out = rg_graph_chain_output(c->g, c->index);
    const float *dy = rg_graph_grad(c->g, out);
    size_t count = rg_shape_count(rg_out_shape(c));
    int which;
    int32_t feed = add_feed(c, &which);
    if (feed) {
        add_backward_fed(c, feed, which, act, dy);
        return;
    }
    if (act != RG_ACT_NONE) {
        /* both inputs' gradients piece by piece, dy and y read while in
         * cache; add(x, x) adds twice into x's gradient, zeroed first (not
         * fresh: graph/run.c) */
        const rg_kernel_table *k = rg_kernels();
        const float *y = rg_graph_act(c->g, out);
        float *d0 = rg_din(c, 0), *d1 = rg_din(c, 1);
        int s0 = rg_din_fresh(c, 0), s1 = rg_din_fresh(c, 1);
        size_t pieces = (count + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static)
        for (size_t p = 0; p < pieces; p++) {
            size_t i0 = p * PIECE, n = count - i0 < PIECE ? count - i0 : PIECE;
            k->act_backward(act, y + i0, dy + i0, d0 + i0, n, s0);
            k->act_backward(act, y + i0, dy + i0, d1 + i0, n, s1);
        }
        return;
    }
    for (int k = 0; k < 2; k++) {
        float *d = rg_din(c, k);
        if (rg_din_fresh(c, k)) {
            /* a copy, split over the threads (one thread alone does not
             * reach the memory's bandwidth) */
            size_t pieces = (count + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static)
            for (size_t p = 0; p < pieces; p++) {
                size_t i0 = p * PIECE, n = count - i0 < PIECE ? count - i0 : PIECE;
                memcpy(d + i0, dy + i0, n * sizeof(float));
            }
            continue;
        }
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) d[i] += dy[i];
    }
}

static int broadcast(const rg_op_call *c)
{
    rg_shape b = rg_in_shape(c, 1), y = rg_out_shape(c);
    return b.h * b.w == 1 && y.h * y.w != 1;
}

static void mul_forward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1);
    float *y = rg_out(c);
    rg_shape s = rg_out_shape(c);
    if (!broadcast(c)) {
        size_t count = rg_shape_count(s);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) y[i] = a[i] * b[i];
        return;
    }
    size_t hw = (size_t)s.h * s.w;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++)
        for (size_t r = 0; r < hw; r++) {
            size_t o = ((size_t)n * hw + r) * s.c;
            for (int32_t ch = 0; ch < s.c; ch++) y[o + ch] = a[o + ch] * b[(size_t)n * s.c + ch];
        }
}

static void mul_backward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1), *dy = rg_dout(c);
    float *da = rg_din(c, 0), *db = rg_din(c, 1);
    rg_shape s = rg_out_shape(c);
    if (!broadcast(c)) {
        size_t count = rg_shape_count(s);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) {
            da[i] += dy[i] * b[i];
            db[i] += dy[i] * a[i];
        }
        return;
    }
    size_t hw = (size_t)s.h * s.w;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        float *dbn = db + (size_t)n * s.c;
        const float *bn = b + (size_t)n * s.c;
        for (size_t r = 0; r < hw; r++) {
            size_t o = ((size_t)n * hw + r) * s.c;
            for (int32_t ch = 0; ch < s.c; ch++) {
                da[o + ch] += dy[o + ch] * bn[ch];
                dbn[ch] += dy[o + ch] * a[o + ch];
            }
        }
    }
}

const rg_op_def rg_op_add = {.name = "add",
                             .forward = add_forward,
                             .backward = add_backward,
                             .scratch_floats = add_scratch,
                             .stores_fresh_din = 1};
const rg_op_def rg_op_mul = {.name = "mul", .forward = mul_forward, .backward = mul_backward};
