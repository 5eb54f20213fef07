/* Elementwise add and multiply of two values.
 *
 *   add: y = a + b (same shape)                  da += dy, db += dy (a fresh gradient: a copy)
 *        or act(a + b) with a fused relu/relu6   the same with dy * act'(y) (graph/fuse.c; the
 *                                                slope from the output equals the slope from the sum)
 *        In training an input that is a fed batch norm's chain output
 *        (ops/bn.h: a residual block's projection, the block input) is
 *        computed a few rows at a time into L1 as the add reads it; the
 *        add takes the batch norm's gradient sums as it writes that input's
 *        gradient when it is the last to write it.
 *   mul: y = a * b, b same shape or (N,1,1,C)    da += dy * b
 *        (channel broadcast: the gate of a       db += dy * a, summed over
 *         squeeze-excitation block)                   H*W per image when broadcast
 */
#include "core/parallel.h"
#include "graph/fuse.h"
#include "kernels/kernels.h"
#include "ops/bn.h"
#include "ops/conv.h"

#include <omp.h>
#include <string.h>

/* The batch norms feeding this add's inputs in this pass (0: none). */
static void add_feeds(const rg_op_call *c, int32_t feed[2])
{
    for (int k = 0; k < 2; k++) {
        int32_t bn = rg_bn_feeding(c->g, c->node->in[k]);
        feed[k] = rg_bn_pair_active(c->g, c->ctx, bn) ? bn : 0;
    }
}

#define PIECE_FLOATS 2048 /* the forward pass's piece: 8 KiB, a fed input stays in L1 for the add */

static size_t piece_rows(int32_t c) { return c < PIECE_FLOATS ? (size_t)(PIECE_FLOATS / c) : 1; }

/* Per thread, a piece of each fed input (rg_conv_slots). */
static size_t add_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    (void)batch;
    int32_t c = g->values[n->out].shape.c;
    int fed = rg_bn_feeding(g, n->in[0]) || rg_bn_feeding(g, n->in[1]);
    return fed ? rg_conv_slots_floats(g, 2 * piece_rows(c) * (size_t)c) : 0;
}

typedef struct {
    const rg_op_call *c;
    rg_act act;
    float *y;
    int32_t feed[2], channels;
    size_t rows, step;
} add_pass;

/* One piece of rows: each fed input's chain output computed into L1, the
 * sum, the fused activation applied while the sum is in L1. */
static void add_piece(void *ctx, size_t r0, size_t nr, int thread)
{
    const add_pass *w = ctx;
    size_t C = (size_t)w->channels, count = nr * C;
    /* no scratch when nothing is fed (add_scratch) */
    float *slot = w->feed[0] || w->feed[1] ? w->c->scratch + (size_t)thread * 2 * w->step * C : NULL;
    const float *in[2];
    for (int i = 0; i < 2; i++) {
        in[i] = rg_in(w->c, i) + r0 * C;
        if (w->feed[i]) {
            rg_bn_feed_apply(w->c->g, w->feed[i], r0, nr, slot + i * w->step * C);
            in[i] = slot + i * w->step * C;
        }
    }
    const float *restrict a = in[0], *restrict b = in[1];
    float *restrict yp = w->y + r0 * C;
    for (size_t e = 0; e < count; e++) yp[e] = a[e] + b[e];
    if (w->act != RG_ACT_NONE) rg_kernels()->act_forward(w->act, yp, yp, count);
}

static void add_forward(const rg_op_call *c)
{
    rg_shape s = rg_out_shape(c);
    add_pass w = {c, rg_fused_act(c->g, c->node), rg_graph_act(c->g, rg_graph_chain_output(c->g, c->index)),
                  {0, 0}, s.c, (size_t)s.n * s.h * s.w, piece_rows(s.c)};
    add_feeds(c, w.feed);
    rg_parallel_rows(w.rows, w.step, rg_conv_slots(c->g), RG_SCHEDULE_STATIC, add_piece, &w);
}

/* Image by image, both inputs' gradients (add(x, x) adds twice into x's
 * gradient, zeroed first: not fresh, graph/run.c), then the gradient sums
 * of each fed batch norm for which this add writes the gradient last (its
 * first reader, ops/bn.h), while that gradient, whole, is in cache. An
 * input whose gradient is the output gradient's memory (graph/fuse.h:
 * rg_graph_grad_owners) is not copied; a fused activation masks that memory
 * in place, after the other input's gradient has read it. */
static void add_backward(const rg_op_call *c)
{
    const rg_kernel_table *k = rg_kernels();
    rg_act act = rg_fused_act(c->g, c->node);
    int32_t out = rg_graph_chain_output(c->g, c->index);
    float *dy = rg_graph_grad(c->g, out);
    const float *y = rg_graph_act(c->g, out);
    rg_shape s = rg_out_shape(c);
    size_t per = (size_t)s.h * s.w * s.c;
    int32_t feed[2];
    add_feeds(c, feed);
    int sums[2];
    for (int i = 0; i < 2; i++) sums[i] = feed[i] && rg_bn_feed_takes_sums(c->g, feed[i], c->index);
    /* an input that shares the output gradient's memory goes last */
    int owned[2], order[2] = {0, 1};
    for (int i = 0; i < 2; i++) owned[i] = rg_din(c, i) == dy;
    if (owned[0] && !owned[1]) order[0] = 1, order[1] = 0;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        size_t o = (size_t)n * per;
        int masked = 0; /* the shared memory, masked once */
        for (int j = 0; j < 2; j++) {
            int i = order[j];
            float *d = rg_din(c, i) + o;
            int fresh = rg_din_fresh(c, i);
            if (owned[i]) {
                if (act != RG_ACT_NONE && !masked) k->act_backward(act, y + o, d, d, per, 1);
                masked = 1;
            } else if (act != RG_ACT_NONE) {
                k->act_backward(act, y + o, dy + o, d, per, fresh);
            } else if (fresh) {
                memcpy(d, dy + o, per * sizeof(float));
            } else {
                const float *restrict g = dy + o;
                float *restrict dd = d;
                for (size_t e = 0; e < per; e++) dd[e] += g[e];
            }
            if (sums[i]) rg_bn_feed_grad_sums(c->g, feed[i], n, d);
        }
    }
}

static int broadcast(const rg_op_call *c)
{
    rg_shape b = rg_in_shape(c, 1), y = rg_out_shape(c);
    return b.h * b.w == 1 && y.h * y.w != 1;
}

/* One image of mul's forward pass. */
static void mul_image(void *ctx, int32_t n, int thread)
{
    (void)thread;
    const rg_op_call *c = ctx;
    rg_shape s = rg_out_shape(c);
    size_t hw = (size_t)s.h * s.w, o = (size_t)n * hw * s.c;
    const float *a = rg_in(c, 0) + o, *b = rg_in(c, 1);
    float *y = rg_out(c) + o;
    if (!broadcast(c)) {
        for (size_t i = 0; i < hw * s.c; i++) y[i] = a[i] * b[o + i];
        return;
    }
    for (size_t r = 0; r < hw; r++)
        for (int32_t ch = 0; ch < s.c; ch++) y[r * s.c + ch] = a[r * s.c + ch] * b[(size_t)n * s.c + ch];
}

static void mul_forward(const rg_op_call *c)
{
    rg_parallel_for(rg_out_shape(c).n, 0, RG_SCHEDULE_STATIC, mul_image, (void *)c);
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
