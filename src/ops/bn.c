/* Batch normalization over the N*H*W positions of each channel (NHWC).
 *
 * Training: mean and biased variance from the batch normalize; the running
 * statistics move by `momentum` towards the batch mean and the UNBIASED
 * variance (PyTorch's convention). Evaluation: running statistics normalize.
 *
 *   xhat = (x - mean) * invstd,  y = gamma * xhat + beta
 *   backward (training), M = N*H*W:
 *   dgamma = sum(dy * xhat), dbeta = sum(dy)
 *   dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
 *
 * When fused with the relu/relu6 that follows (graph/fuse.c), the forward
 * pass writes act(y) into the activation's output and the backward pass
 * takes dy * act'(y) as its incoming gradient, y recomputed from x.
 *
 * Statistics are taken per image (in parallel, float within an image of at
 * most a few thousand positions; the forward pass's mean and variance by
 * two passes over the image while it is in cache) and then combined over
 * images in order in double, so the result does not depend on the thread
 * count.
 * Paired with the convolution producing its input (ops/bn.h), batch norm
 * takes the per-image moments from it and leaves the elementwise backward
 * pass to it. Fed to the convolution reading its output, it leaves the
 * elementwise forward pass and the per-image gradient sums to that one.
 *
 * saved = mean[C], invstd[C] from the forward pass; when paired also
 * scale[C], shift[C], k1[C], k2[C], k3[C] (the backward's affine map and
 * constants, for the convolution) and the per-image moments m[N*C], q[N*C]
 * in double (in the backward pass of a fed batch norm: the per-image
 * gradient sums, sum g and sum g (x - mean)).
 */
#include "core/parallel.h"
#include "graph/fuse.h"
#include "ops/bn.h"
#include "ops/conv.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

#define ROWS_PER_PIECE 256 /* positions per parallel piece of the elementwise passes */

static size_t bn_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    /* two doubles per (image, channel) */
    return (size_t)batch * g->values[n->out].shape.c * 4;
}

#define PAIRED_CONSTS 7 /* mean, invstd, scale, shift, k1, k2, k3 */

static size_t moments_at(int32_t C) { return ((size_t)C * PAIRED_CONSTS + 1) & ~(size_t)1; /* doubles */ }

static size_t bn_saved(const rg_graph *g, const rg_node *n, int32_t batch)
{
    size_t C = (size_t)g->values[n->out].shape.c;
    return n->bn_pair || n->bn_feed ? moments_at((int32_t)C) + 4 * (size_t)batch * C : 2 * C;
}

/* The paired state of batch norm bn: constants (see the top) and moments. */
static float *paired_consts(rg_graph *g, int32_t bn) { return g->arena + g->nodes[bn].saved_off; }
static double *paired_moments(rg_graph *g, int32_t bn, int32_t C)
{
    return (double *)(paired_consts(g, bn) + moments_at(C));
}

/* The fused activation (none when not fused) and the value it writes. */
static rg_act fused_act(const rg_op_call *call, int32_t *value)
{
    *value = rg_graph_chain_output(call->g, call->index);
    return rg_fused_act(call->g, call->node);
}

/* Per-image channel sums into p0[n*C + c], p1[n*C + c] (see kernels.h:
 * bn_sums without dy, bn_grad_sums with it). */
static void per_image_grad_sums(const rg_kernel_table *k, const float *x, const float *dy, const float *scale,
                                const float *shift, rg_act act, const float *mean, rg_shape s, double *p0, double *p1)
{
    size_t hw = (size_t)s.h * s.w;
    int32_t C = s.c;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        float f0[C], f1[C];
        size_t off = (size_t)n * hw * C;
        k->bn_grad_sums(x + off, dy + off, scale, shift, act, mean, hw, C, f0, f1);
        for (int32_t c = 0; c < C; c++) {
            p0[(size_t)n * C + c] = f0[c];
            p1[(size_t)n * C + c] = f1[c];
        }
    }
}

/* Each image's channel means and sums of squared deviations from them,
 * m[n*C + c] and q[n*C + c], by the two-pass method on the image alone: the
 * second pass finds it still in cache, so the batch is read from memory
 * once. (An image of a benchmark network holds at most 28 x 28 x 96 floats,
 * well inside a core's L2.) */
static void image_moments(const rg_kernel_table *k, const float *xi, size_t hw, int32_t C, double *m, double *q)
{
    float f0[C > 0 ? C : 1], f1[C > 0 ? C : 1], mean[C > 0 ? C : 1];
    memset(mean, 0, sizeof mean);
    k->bn_sums(xi, mean, hw, C, f0, f1);
    for (int32_t c = 0; c < C; c++) mean[c] = f0[c] / (float)hw;
    k->bn_sums(xi, mean, hw, C, f0, f1);
    for (int32_t c = 0; c < C; c++) {
        /* f0 (the deviations' sum) is ~0; subtracting its square
         * corrects the rounding of the mean ("corrected two-pass") */
        double d = f0[c];
        m[c] = (double)mean[c] + d / (double)hw;
        q[c] = (double)f1[c] - d * d / (double)hw;
    }
}

static void per_image_moments(const rg_kernel_table *k, const float *x, rg_shape s, double *m, double *q)
{
    size_t hw = (size_t)s.h * s.w;
    int32_t C = s.c;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++)
        image_moments(k, x + (size_t)n * hw * C, hw, C, m + (size_t)n * C, q + (size_t)n * C);
}

void rg_bn_take_moments(rg_graph *g, int32_t bn, int32_t image, const float *x)
{
    rg_shape s = g->values[g->nodes[bn].out].shape;
    double *m = paired_moments(g, bn, s.c), *q = m + (size_t)g->planned_batch * s.c;
    image_moments(rg_kernels(), x, (size_t)s.h * s.w, s.c, m + (size_t)image * s.c, q + (size_t)image * s.c);
}

/* The affine map batch norm applies: y = x * scale + shift. The backward
 * pass recomputes it with the same operations, so a fused activation's
 * mask is the forward's bit for bit. */
static void affine(const rg_op_call *call, int32_t C, float *scale, float *shift)
{
    const float *gamma = rg_param_data(call, 0), *beta = rg_param_data(call, 1);
    const float *mean = call->saved, *invstd = call->saved + C;
    for (int32_t c = 0; c < C; c++) {
        scale[c] = gamma[c] * invstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
}

/* Batch statistics normalize in training, unless QAT froze this batch norm
 * (then the running statistics do, as in inference, and stay as they are). */
static int batch_stats(const rg_op_call *call) { return call->ctx->training && !call->node->a.bn.frozen; }

static void reduce_images(const double *part, int32_t N, int32_t C, double *out)
{
    for (int32_t c = 0; c < C; c++) out[c] = 0.0;
    for (int32_t n = 0; n < N; n++)
        for (int32_t c = 0; c < C; c++) out[c] += part[(size_t)n * C + c];
}

typedef struct {
    const float *x, *scale, *shift;
    float *y;
    size_t rows;
    int32_t C;
    rg_act act;
} bn_application;

static void bn_apply_rows(void *ctx, size_t first, size_t count, int thread)
{
    (void)thread;
    const bn_application *w = ctx;
    rg_kernels()->bn_apply(w->x + first * w->C, w->scale, w->shift, count, w->C, w->act, w->y + first * w->C);
}

static void bn_forward(const rg_op_call *call)
{
    const rg_kernel_table *k = rg_kernels();
    rg_shape s = rg_out_shape(call);
    int32_t C = s.c, yv;
    rg_act act = fused_act(call, &yv);
    const float *x = rg_in(call, 0);
    float *y = rg_graph_act(call->g, yv), *rmean = rg_buffer_data(call, 0), *rvar = rg_buffer_data(call, 1);
    float *mean = call->saved, *invstd = call->saved + C;
    float eps = call->node->a.bn.eps;
    size_t M = (size_t)s.n * s.h * s.w;
    float scale[C > 0 ? C : 1], shift[C > 0 ? C : 1];

    if (batch_stats(call)) {
        double *pm = (double *)call->scratch, *pq = pm + (size_t)s.n * C;
        double hw = (double)s.h * s.w;
        if (call->node->bn_pair) {
            /* taken by the convolution as it wrote x */
            pm = paired_moments(call->g, call->index, C);
            pq = pm + (size_t)call->g->planned_batch * C;
        } else {
            per_image_moments(k, x, s, pm, pq);
        }
        float m = call->node->a.bn.momentum;
        /* The images combined in order (Chan et al.): the batch mean, then
         * each image's squares about its own mean plus its mean's offset.
         * Images in the outer loop: the channels' sums are independent
         * chains walked in memory order (a channel at a time, they were one
         * dependent chain read at a stride: 0.1 to 0.2 ms a layer). */
        double mu[C > 0 ? C : 1], q[C > 0 ? C : 1];
        reduce_images(pm, s.n, C, mu);
        for (int32_t c = 0; c < C; c++) {
            mu[c] /= (double)s.n;
            q[c] = 0.0;
        }
        for (int32_t n = 0; n < s.n; n++)
            for (int32_t c = 0; c < C; c++) {
                double d = pm[(size_t)n * C + c] - mu[c];
                q[c] += pq[(size_t)n * C + c] + hw * d * d;
            }
        for (int32_t c = 0; c < C; c++) {
            mean[c] = (float)mu[c];
            double var = q[c] / (double)M;
            if (var < 0) var = 0;
            invstd[c] = (float)(1.0 / sqrt(var + eps));
            double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
            rmean[c] = (1.0f - m) * rmean[c] + m * mean[c];
            rvar[c] = (1.0f - m) * rvar[c] + m * (float)unbiased;
        }
    } else {
        for (int32_t c = 0; c < C; c++) {
            mean[c] = rmean[c];
            invstd[c] = 1.0f / sqrtf(rvar[c] + eps);
        }
    }
    affine(call, C, scale, shift);
    if (call->node->bn_feed && batch_stats(call)) {
        /* the reader applies it (rg_bn_feed_apply) */
        float *st = paired_consts(call->g, call->index);
        memcpy(st + 2 * C, scale, sizeof scale);
        memcpy(st + 3 * C, shift, sizeof shift);
        return;
    }
    bn_application w = {x, scale, shift, y, M, C, act};
    rg_parallel_rows(M, ROWS_PER_PIECE, 0, RG_SCHEDULE_STATIC, bn_apply_rows, &w);
}

static void bn_backward(const rg_op_call *call)
{
    const rg_kernel_table *k = rg_kernels();
    rg_shape s = rg_out_shape(call);
    int32_t C = s.c, yv;
    rg_act act = fused_act(call, &yv);
    const float *x = rg_in(call, 0), *gamma = rg_param_data(call, 0);
    const float *dy = rg_graph_grad(call->g, yv);
    float *dx = rg_din(call, 0), *dgamma = rg_param_grad(call, 0), *dbeta = rg_param_grad(call, 1);
    const float *mean = call->saved, *invstd = call->saved + C;
    /* a fused activation's mask comes from the forward's pre-activation,
     * recomputed from x: its output need not be read */
    float scale[C > 0 ? C : 1], shift[C > 0 ? C : 1];
    affine(call, C, scale, shift);
    size_t M = (size_t)s.n * s.h * s.w;
    double *p0 = (double *)call->scratch, *p1 = p0 + (size_t)s.n * C;
    double sdy[C > 0 ? C : 1], sdyx[C > 0 ? C : 1];
    if (call->node->bn_feed && batch_stats(call)) {
        /* taken by the reader as it wrote dy (rg_bn_feed_grad_sums) */
        p0 = paired_moments(call->g, call->index, C);
        p1 = p0 + (size_t)call->g->planned_batch * C;
    } else {
        per_image_grad_sums(k, x, dy, scale, shift, act, mean, s, p0, p1);
    }
    reduce_images(p0, s.n, C, sdy);
    reduce_images(p1, s.n, C, sdyx);
    float k1[C > 0 ? C : 1], k2[C > 0 ? C : 1], k3[C > 0 ? C : 1];
    for (int32_t c = 0; c < C; c++) {
        double dg = sdyx[c] * invstd[c]; /* sum(dy * xhat) */
        dgamma[c] += (float)dg;
        dbeta[c] += (float)sdy[c];
        /* dx = gamma*invstd*(dy - dbeta/M - xhat*dgamma/M), xhat = (x-mean)*invstd;
         * in eval mode the statistics are constants and only the first term stays */
        k1[c] = gamma[c] * invstd[c];
        k2[c] = batch_stats(call) ? (float)(sdy[c] / (double)M) : 0.0f;
        k3[c] = batch_stats(call) ? (float)(dg / (double)M) * invstd[c] : 0.0f;
    }
    if (call->node->bn_pair && batch_stats(call) && rg_conv_applies_bn_grad(call->g, call->node->bn_pair)) {
        /* the convolution computes dx as it reads it (rg_bn_input_grad) */
        float *st = paired_consts(call->g, call->index);
        memcpy(st + 2 * C, scale, sizeof scale);
        memcpy(st + 3 * C, shift, sizeof shift);
        memcpy(st + 4 * C, k1, sizeof k1);
        memcpy(st + 5 * C, k2, sizeof k2);
        memcpy(st + 6 * C, k3, sizeof k3);
        return;
    }
    if (!dx) return;
    int store = rg_din_fresh(call, 0);
    size_t pieces = (M + ROWS_PER_PIECE - 1) / ROWS_PER_PIECE;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pieces; p++) {
        size_t r0 = p * ROWS_PER_PIECE, rows = M - r0 < ROWS_PER_PIECE ? M - r0 : ROWS_PER_PIECE;
        k->bn_grad_apply(x + r0 * C, dy + r0 * C, scale, shift, act, mean, k1, k2, k3, rows, C, dx + r0 * C, store);
    }
}

int32_t rg_bn_feeding(const rg_graph *g, int32_t v)
{
    int32_t head = rg_graph_value_written_at(g, v);
    return g->nodes[head].op == RG_OP_BN && g->nodes[head].bn_feed && rg_graph_chain_output(g, head) == v ? head : 0;
}

void rg_bn_feed_apply(rg_graph *g, int32_t bn, size_t r0, size_t rows, float *out)
{
    const rg_node *n = &g->nodes[bn];
    int32_t C = g->values[n->out].shape.c;
    const float *st = paired_consts(g, bn);
    rg_kernels()->bn_apply(rg_graph_act(g, n->in[0]) + r0 * C, st + 2 * C, st + 3 * C, rows, C, rg_fused_act(g, n),
                           out);
}

void rg_bn_feed_grad_sums(rg_graph *g, int32_t bn, int32_t image, const float *dy)
{
    const rg_node *n = &g->nodes[bn];
    rg_shape s = g->values[n->out].shape;
    int32_t C = s.c;
    size_t hw = (size_t)s.h * s.w;
    const float *st = paired_consts(g, bn);
    float f0[C > 0 ? C : 1], f1[C > 0 ? C : 1];
    rg_kernels()->bn_grad_sums(rg_graph_act(g, n->in[0]) + (size_t)image * hw * C, dy, st + 2 * C, st + 3 * C,
                               rg_fused_act(g, n), st, hw, C, f0, f1);
    double *p0 = paired_moments(g, bn, C) + (size_t)image * C, *p1 = p0 + (size_t)g->planned_batch * C;
    for (int32_t c = 0; c < C; c++) {
        p0[c] = f0[c];
        p1[c] = f1[c];
    }
}

void rg_bn_input_grad(rg_graph *g, int32_t bn, size_t r0, size_t rows, float *out)
{
    const rg_node *n = &g->nodes[bn];
    int32_t C = g->values[n->out].shape.c;
    const float *st = paired_consts(g, bn);
    const float *x = rg_graph_act(g, n->in[0]) + r0 * C;
    const float *dy = rg_graph_grad(g, rg_graph_chain_output(g, bn)) + r0 * C;
    rg_kernels()->bn_grad_apply(x, dy, st + 2 * C, st + 3 * C, rg_fused_act(g, n), st, st + 4 * C, st + 5 * C,
                                st + 6 * C, rows, C, out, 1);
}

const rg_op_def rg_op_bn = {.name = "bn", .forward = bn_forward, .backward = bn_backward,
                            .scratch_floats = bn_scratch, .saved_floats = bn_saved, .stores_fresh_din = 1};
