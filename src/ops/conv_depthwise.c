/* Depthwise convolutions: the kernel table's direct kernels
 * (kernels/dwconv.inc), one image per call, images in parallel; the weight
 * gradient is summed per image and then over images in order. Paired with
 * a batch norm in training (ops/bn.h), each image's moments are taken as it
 * is written, and the output gradient is computed per image into cache; fed
 * by one, each input image is computed into cache as it is read. */
#include "core/parallel.h"
#include "ops/bn.h"
#include "ops/conv.h"

#include <omp.h>
#include <string.h>

/* wt[(kh, kw), c] = w[c, kh, kw]: channels innermost, as the kernels want. */
static void transpose_dw_weight(const float *w, int32_t c, int32_t kk, float *wt)
{
    for (int32_t ch = 0; ch < c; ch++)
        for (int32_t k = 0; k < kk; k++) wt[(size_t)k * c + ch] = w[(size_t)ch * kk + k];
}

static rg_dw_geom dw_geom(const rg_op_call *call)
{
    const rg_conv_attr *a = &call->node->a.conv;
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    return (rg_dw_geom){xs.h, xs.w, xs.c, ys.h, ys.w, a->kh, a->kw, a->stride, a->pad};
}

/* The batch norms this call works with (ops/bn.h): the one reading its
 * output (pair) and the one whose chain output it reads (feed), 0 when
 * none or inactive; and the per-thread buffers they need, after the
 * transposed and the flipped weight and the per-image weight-gradient
 * partials: one input image (feed), one output-gradient image (pair), and
 * one input-gradient image when another node also reads the input (its
 * gradient is then added to, not stored: see rg_conv_dw_backward). */
typedef struct {
    int32_t pair, feed;
    float *slots;
    size_t per;
    int threads;
} dw_bn;

/* Whether node n (depthwise) shares its input with later readers, whose
 * backward writes the input's gradient before n's. */
static int input_shared(const rg_graph *g, const rg_node *n)
{
    return g->values[n->in[0]].last_use != (int32_t)(n - g->nodes);
}

static size_t slot_floats(const rg_graph *g, const rg_node *n)
{
    rg_shape x = g->values[n->in[0]].shape, y = g->values[n->out].shape;
    size_t in = (size_t)x.h * x.w * x.c;
    return (n->bn_feed ? in : 0) + (n->bn_pair ? (size_t)y.h * y.w * y.c : 0) + (input_shared(g, n) ? in : 0);
}

static dw_bn dw_bn_of(const rg_op_call *call, const rg_dw_geom *geo)
{
    const rg_graph *g = call->g;
    dw_bn b;
    b.pair = rg_bn_pair_active(g, call->ctx, call->node->bn_pair) ? call->node->bn_pair : 0;
    b.feed = rg_bn_pair_active(g, call->ctx, call->node->bn_feed) ? call->node->bn_feed : 0;
    size_t kc = (size_t)geo->kh * geo->kw * geo->c;
    b.per = slot_floats(g, call->node);
    b.slots = call->scratch + 2 * kc + (size_t)g->planned_batch * kc;
    b.threads = b.per ? rg_conv_slots(g) : omp_get_max_threads();
    return b;
}

size_t rg_conv_dw_slots_floats(const rg_graph *g, const rg_node *n)
{
    size_t per = slot_floats(g, n);
    return per ? rg_conv_slots_floats(g, per) : 0;
}

typedef struct {
    const rg_op_call *call;
    rg_dw_geom geo;
    const float *x, *wt;
    conv_out o;
    dw_bn b;
} dw_pass;

static void dw_forward_image(void *ctx, int32_t n, int thread)
{
    const dw_pass *d = ctx;
    const rg_dw_geom *geo = &d->geo;
    size_t hw = (size_t)geo->h * geo->w, yi = (size_t)geo->ho * geo->wo * geo->c;
    const float *xn = d->x + n * hw * geo->c;
    if (d->b.feed) {
        float *xin = d->b.slots + (size_t)thread * d->b.per;
        rg_bn_feed_apply(d->call->g, d->b.feed, (size_t)n * hw, hw, xin);
        xn = xin;
    }
    rg_kernels()->dw_forward(geo, xn, d->wt, d->o.bias, d->o.act, d->o.y + n * yi);
    if (d->b.pair) rg_bn_take_moments(d->call->g, d->b.pair, n, d->o.y + n * yi);
}

/* One image per kernel call, images in parallel. */
void rg_conv_dw_forward(const rg_op_call *call)
{
    dw_pass d = {call, dw_geom(call), rg_in(call, 0), call->scratch, rg_conv_output(call), {0}};
    transpose_dw_weight(d.o.w, d.geo.c, d.geo.kh * d.geo.kw, call->scratch);
    d.b = dw_bn_of(call, &d.geo);
    rg_parallel_for(call->g->batch, d.b.threads, RG_SCHEDULE_STATIC, dw_forward_image, &d);
}

void rg_conv_dw_backward(const rg_op_call *call)
{
    const rg_kernel_table *k = rg_kernels();
    rg_dw_geom geo = dw_geom(call);
    int32_t N = call->g->batch, C = geo.c, KK = geo.kh * geo.kw;
    size_t xi = (size_t)geo.h * geo.w * C, yi = (size_t)geo.ho * geo.wo * C, kc = (size_t)KK * C;
    const float *x = rg_in(call, 0), *dy = rg_dout(call);
    float *dx = rg_din_wanted(call, 0), *wt = call->scratch, *wf = wt + kc, *part = wf + kc;
    transpose_dw_weight(rg_param_data(call, 0), C, KK, wt);
    int store = dx && rg_din_fresh(call, 0);
    dw_bn b = dw_bn_of(call, &geo);
    /* The input gradient of a stride-1 convolution with a square kernel is
     * the forward convolution of the output gradient with the kernel
     * flipped (taps reversed) and padding k - 1 - pad: the forward kernel,
     * which shares loads between neighbouring outputs, measured faster
     * than the gather of dw_backward_data. Straight into a fresh gradient;
     * into a per-thread image, then added, when another reader of the
     * input wrote its gradient first (mbv2-tiny's b1, beside the add:
     * 2.05 -> 1.62 ms a step). */
    int shared = input_shared(call->g, call->node);
    int as_forward = dx && (store || shared) && geo.stride == 1 && geo.kh == geo.kw && geo.pad <= geo.kh - 1;
    rg_dw_geom flip = {geo.ho, geo.wo, C, geo.h, geo.w, geo.kh, geo.kw, 1, geo.kh - 1 - geo.pad};
    if (as_forward)
        for (int32_t t = 0; t < KK; t++) memcpy(wf + (size_t)t * C, wt + (size_t)(KK - 1 - t) * C, (size_t)C * sizeof *wf);
    /* Per image: input gradient and this image's share of the weight
     * gradient (fed: the input recomputed and the batch norm's gradient
     * sums taken; paired: the output gradient computed, both in cache). */
#pragma omp parallel num_threads(b.threads)
    {
        float *slot = b.per ? b.slots + (size_t)omp_get_thread_num() * b.per : NULL;
        float *xin = slot, *g = b.feed ? slot + xi : slot, *dxs = g + (b.pair ? yi : 0);
#pragma omp for schedule(static)
        for (int32_t n = 0; n < N; n++) {
            const float *dyn = dy + n * yi, *xn = x + n * xi;
            if (b.pair) {
                rg_bn_input_grad(call->g, b.pair, (size_t)n * geo.ho * geo.wo, (size_t)geo.ho * geo.wo, g);
                dyn = g;
            }
            if (as_forward && store) {
                k->dw_forward(&flip, dyn, wf, NULL, RG_ACT_NONE, dx + n * xi);
            } else if (as_forward) {
                k->dw_forward(&flip, dyn, wf, NULL, RG_ACT_NONE, dxs);
                float *restrict d = dx + n * xi;
                for (size_t i = 0; i < xi; i++) d[i] += dxs[i];
            } else if (dx) {
                k->dw_backward_data(&geo, dyn, wt, dx + n * xi, store);
            }
            if (b.feed) {
                if (dx && rg_bn_feed_takes_sums(call->g, b.feed, call->index))
                    rg_bn_feed_grad_sums(call->g, b.feed, n, dx + n * xi);
                rg_bn_feed_apply(call->g, b.feed, (size_t)n * geo.h * geo.w, (size_t)geo.h * geo.w, xin);
                xn = xin;
            }
            k->dw_backward_weight(&geo, dyn, xn, part + n * kc);
        }
    }
    /* Reduce the per-image partials in image order (thread-count independent). */
    float *dw = rg_param_grad(call, 0);
#pragma omp parallel for schedule(static)
    for (size_t i0 = 0; i0 < kc; i0 += 64) {
        /* 64 sums at a time, the images added in order: contiguous loads */
        size_t m = kc - i0 < 64 ? kc - i0 : 64;
        float s[64] = {0};
        for (int32_t n = 0; n < N; n++) {
            const float *p = part + (size_t)n * kc + i0;
            for (size_t i = 0; i < m; i++) s[i] += p[i];
        }
        for (size_t i = i0; i < i0 + m; i++) {
            int32_t ch = (int32_t)(i % (size_t)C), kk = (int32_t)(i / (size_t)C);
            dw[(size_t)ch * KK + kk] += s[i - i0];
        }
    }
    if (call->node->param[1] >= 0) rg_conv_bias_grad(dy, (size_t)N * geo.ho * geo.wo, C, rg_param_grad(call, 1));
}

