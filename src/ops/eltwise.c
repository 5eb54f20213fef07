/* Elementwise add and multiply of two values.
 *
 *   add: y = a + b (same shape)                  da += dy, db += dy (a fresh gradient: a copy)
 *        or act(a + b) with a fused relu/relu6   the same with dy * act'(y) (graph/fuse.c; the
 *                                                slope from the output equals the slope from the sum)
 *   mul: y = a * b, b same shape or (N,1,1,C)    da += dy * b
 *        (channel broadcast: the gate of a       db += dy * a, summed over
 *         squeeze-excitation block)                   H*W per image when broadcast
 */
#include "graph/fuse.h"
#include "kernels/kernels.h"
#include "ops/op.h"

#include <string.h>

#define PIECE 16384 /* elements a parallel piece of the fused add */

static void add_forward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1);
    rg_act act = rg_fused_act(c->g, c->node);
    float *y = rg_graph_act(c->g, rg_graph_chain_output(c->g, c->index));
    size_t count = rg_shape_count(rg_out_shape(c));
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

static void add_backward(const rg_op_call *c)
{
    rg_act act = rg_fused_act(c->g, c->node);
    int32_t out = rg_graph_chain_output(c->g, c->index);
    const float *dy = rg_graph_grad(c->g, out);
    size_t count = rg_shape_count(rg_out_shape(c));
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

const rg_op_def rg_op_add = {.name = "add", .forward = add_forward, .backward = add_backward, .stores_fresh_din = 1};
const rg_op_def rg_op_mul = {.name = "mul", .forward = mul_forward, .backward = mul_backward};
