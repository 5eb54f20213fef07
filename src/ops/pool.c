/* Max and average pooling over k x k windows (NHWC), and global average pooling.
 *
 * max: padding counts as -inf; the gradient goes to the first maximum in
 *      window scan order (as PyTorch does), found again in backward.
 * avg: the divisor is the number of in-bounds taps (count_include_pad = 0).
 * gap: y[n, c] = mean over H*W of x[n, :, :, c]; dx += dy / (H*W).
 *      Fed by a batch norm in training (ops/bn.h: a network's head), it
 *      computes each image's act(bn(x)) into cache as it reads it, and takes
 *      the batch norm's gradient sums of each image it writes.
 */
#include "core/parallel.h"
#include "ops/bn.h"
#include "ops/conv.h"

#include <float.h>
#include <math.h>
#include <omp.h>

typedef struct {
    int32_t h0, h1, w0, w1; /* in-bounds window [h0, h1) x [w0, w1) */
} window;

static window window_at(const rg_op_call *c, rg_shape xs, int32_t oh, int32_t ow)
{
    int32_t k = c->node->a.pool.k, s = c->node->a.pool.stride, p = c->node->a.pool.pad;
    window w = {oh * s - p, oh * s - p + k, ow * s - p, ow * s - p + k};
    if (w.h0 < 0) w.h0 = 0;
    if (w.w0 < 0) w.w0 = 0;
    if (w.h1 > xs.h) w.h1 = xs.h;
    if (w.w1 > xs.w) w.w1 = xs.w;
    return w;
}

static void maxpool_forward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0), ys = rg_out_shape(c);
    const float *x = rg_in(c, 0);
    float *y = rg_out(c);
#pragma omp parallel for collapse(2) schedule(static)
    for (int32_t n = 0; n < ys.n; n++)
        for (int32_t oh = 0; oh < ys.h; oh++)
            for (int32_t ow = 0; ow < ys.w; ow++) {
                window w = window_at(c, xs, oh, ow);
                float *d = y + (((size_t)n * ys.h + oh) * ys.w + ow) * ys.c;
                for (int32_t ch = 0; ch < ys.c; ch++) d[ch] = -INFINITY;
                for (int32_t ih = w.h0; ih < w.h1; ih++)
                    for (int32_t iw = w.w0; iw < w.w1; iw++) {
                        const float *s = x + (((size_t)n * xs.h + ih) * xs.w + iw) * xs.c;
                        for (int32_t ch = 0; ch < ys.c; ch++)
                            if (s[ch] > d[ch]) d[ch] = s[ch];
                    }
            }
}

static void maxpool_backward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0), ys = rg_out_shape(c);
    const float *x = rg_in(c, 0), *y = rg_out(c), *dy = rg_dout(c);
    float *dx = rg_din(c, 0);
    /* Parallel over images: windows of one image may overlap, images never do. */
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < ys.n; n++)
        for (int32_t oh = 0; oh < ys.h; oh++)
            for (int32_t ow = 0; ow < ys.w; ow++) {
                window w = window_at(c, xs, oh, ow);
                size_t yo = (((size_t)n * ys.h + oh) * ys.w + ow) * ys.c;
                for (int32_t ch = 0; ch < ys.c; ch++) {
                    int found = 0;
                    for (int32_t ih = w.h0; ih < w.h1 && !found; ih++)
                        for (int32_t iw = w.w0; iw < w.w1 && !found; iw++) {
                            size_t xo = (((size_t)n * xs.h + ih) * xs.w + iw) * xs.c + ch;
                            if (x[xo] == y[yo + ch]) {
                                dx[xo] += dy[yo + ch];
                                found = 1;
                            }
                        }
                }
            }
}

static void avgpool_forward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0), ys = rg_out_shape(c);
    const float *x = rg_in(c, 0);
    float *y = rg_out(c);
#pragma omp parallel for collapse(2) schedule(static)
    for (int32_t n = 0; n < ys.n; n++)
        for (int32_t oh = 0; oh < ys.h; oh++)
            for (int32_t ow = 0; ow < ys.w; ow++) {
                window w = window_at(c, xs, oh, ow);
                float *d = y + (((size_t)n * ys.h + oh) * ys.w + ow) * ys.c;
                float inv = 1.0f / (float)((w.h1 - w.h0) * (w.w1 - w.w0));
                for (int32_t ch = 0; ch < ys.c; ch++) d[ch] = 0.0f;
                for (int32_t ih = w.h0; ih < w.h1; ih++)
                    for (int32_t iw = w.w0; iw < w.w1; iw++) {
                        const float *s = x + (((size_t)n * xs.h + ih) * xs.w + iw) * xs.c;
                        for (int32_t ch = 0; ch < ys.c; ch++) d[ch] += s[ch];
                    }
                for (int32_t ch = 0; ch < ys.c; ch++) d[ch] *= inv;
            }
}

static void avgpool_backward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0), ys = rg_out_shape(c);
    const float *dy = rg_dout(c);
    float *dx = rg_din(c, 0);
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < ys.n; n++)
        for (int32_t oh = 0; oh < ys.h; oh++)
            for (int32_t ow = 0; ow < ys.w; ow++) {
                window w = window_at(c, xs, oh, ow);
                const float *g = dy + (((size_t)n * ys.h + oh) * ys.w + ow) * ys.c;
                float inv = 1.0f / (float)((w.h1 - w.h0) * (w.w1 - w.w0));
                for (int32_t ih = w.h0; ih < w.h1; ih++)
                    for (int32_t iw = w.w0; iw < w.w1; iw++) {
                        float *d = dx + (((size_t)n * xs.h + ih) * xs.w + iw) * xs.c;
                        for (int32_t ch = 0; ch < ys.c; ch++) d[ch] += g[ch] * inv;
                    }
            }
}

/* The batch norm feeding this gap in this pass (0: none). Its scratch:
 * per thread, one input image (rg_conv_slots). */
static int32_t gap_feed(const rg_op_call *c)
{
    int32_t feed = c->node->bn_feed;
    return rg_bn_pair_active(c->g, c->ctx, feed) ? feed : 0;
}

static size_t gap_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    (void)batch;
    rg_shape x = g->values[n->in[0]].shape;
    return n->bn_feed ? rg_conv_slots_floats(g, (size_t)x.h * x.w * x.c) : 0;
}

static void gap_image(void *ctx, int32_t n, int thread)
{
    const rg_op_call *c = ctx;
    rg_shape xs = rg_in_shape(c, 0);
    size_t hw = (size_t)xs.h * xs.w;
    float inv = 1.0f / (float)hw, *y = rg_out(c) + (size_t)n * xs.c;
    int32_t feed = gap_feed(c);
    const float *restrict xn = rg_in(c, 0) + (size_t)n * hw * xs.c;
    if (feed) {
        float *slot = c->scratch + (size_t)thread * hw * xs.c;
        rg_bn_feed_apply(c->g, feed, (size_t)n * hw, hw, slot);
        xn = slot;
    }
    /* 64 channels at a time summed over the rows in registers (a fixed
     * count the -O2 vectorizer takes; it left the loop over all channels,
     * one load and store of each sum per row, scalar), then the rest one
     * by one; each channel's rows in order either way */
    int32_t c0 = 0;
    for (; c0 + 64 <= xs.c; c0 += 64) {
        float acc[64] = {0};
        for (size_t r = 0; r < hw; r++)
            for (int32_t k = 0; k < 64; k++) acc[k] += xn[r * xs.c + c0 + k];
        for (int32_t k = 0; k < 64; k++) y[c0 + k] = acc[k] * inv;
    }
    for (; c0 < xs.c; c0++) {
        float sum = 0.0f;
        for (size_t r = 0; r < hw; r++) sum += xn[r * xs.c + c0];
        y[c0] = sum * inv;
    }
}

static void gap_forward(const rg_op_call *c)
{
    rg_parallel_for(rg_in_shape(c, 0).n, gap_feed(c) ? rg_conv_slots(c->g) : 0, RG_SCHEDULE_STATIC, gap_image,
                    (void *)c);
}

/* A fresh input gradient is stored (no clearing pass before it). */
static void gap_backward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0);
    const float *restrict dy = rg_dout(c);
    float *restrict dx = rg_din(c, 0);
    int fresh = rg_din_fresh(c, 0);
    size_t hw = (size_t)xs.h * xs.w;
    float inv = 1.0f / (float)hw;
    int32_t feed = gap_feed(c);
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < xs.n; n++) {
        const float *restrict g = dy + (size_t)n * xs.c;
        float *dn = dx + (size_t)n * hw * xs.c;
        for (size_t r = 0; r < hw; r++) {
            float *restrict d = dn + r * xs.c;
            if (fresh)
                for (int32_t ch = 0; ch < xs.c; ch++) d[ch] = g[ch] * inv;
            else
                for (int32_t ch = 0; ch < xs.c; ch++) d[ch] += g[ch] * inv;
        }
        /* fed: gap is the last to write this image's gradient, so it is whole */
        if (feed && rg_bn_feed_takes_sums(c->g, feed, c->index)) rg_bn_feed_grad_sums(c->g, feed, n, dn);
    }
}

const rg_op_def rg_op_maxpool = {.name = "maxpool", .forward = maxpool_forward, .backward = maxpool_backward};
const rg_op_def rg_op_avgpool = {.name = "avgpool", .forward = avgpool_forward, .backward = avgpool_backward};
const rg_op_def rg_op_gap = {.name = "gap",
                             .forward = gap_forward,
                             .backward = gap_backward,
                             .scratch_floats = gap_scratch,
                             .stores_fresh_din = 1};
