/* Dense stride-1 convolutions run direct: the input is zero-padded once per
 * image and the kernels' conv_forward (an implicit GEMM, kernels/conv.inc)
 * walks the taps, with no column buffer. The input gradient is the same
 * convolution of the padded output gradient with the flipped weight; the
 * weight gradient has its own kernel, summed per group of images and then
 * over the groups in order. */
#include "ops/bn.h"
#include "ops/conv.h"

#include <string.h>

#define WGRAD_GROUP 8 /* images summed into one weight-gradient partial */

typedef struct {
    rg_conv_geom fwd, bwd; /* forward; input gradient (padded output gradient in) */
    int32_t n;
    size_t xp, dyp, kc;    /* floats: padded input, padded output gradient (per image), weight */
} direct_plan;

static direct_plan direct_geometry(const rg_graph *g, const rg_node *n, int32_t batch)
{
    const rg_conv_attr *a = &n->a.conv;
    rg_shape x = g->values[n->in[0]].shape, y = g->values[n->out].shape;
    int32_t ph = a->kh - 1 - a->pad, pw = a->kw - 1 - a->pad; /* padding of the output gradient */
    direct_plan d;
    d.n = batch;
    d.fwd = (rg_conv_geom){x.h + 2 * a->pad, x.w + 2 * a->pad, x.c, y.h, y.w, a->cout, a->kh, a->kw};
    d.bwd = (rg_conv_geom){y.h + 2 * ph, y.w + 2 * pw, a->cout, x.h, x.w, x.c, a->kh, a->kw};
    d.xp = (size_t)d.fwd.hp * d.fwd.wp * x.c;
    d.dyp = (size_t)d.bwd.hp * d.bwd.wp * a->cout;
    d.kc = (size_t)a->kh * a->kw * x.c * a->cout;
    return d;
}

/* padded input | weight [kh][kw][ci][co] | padded output gradient | flipped
 * weight | weight-gradient partials */
size_t rg_conv_direct_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    direct_plan d = direct_geometry(g, n, batch);
    size_t groups = (size_t)(batch + WGRAD_GROUP - 1) / WGRAD_GROUP;
    return (size_t)batch * d.xp + d.kc + (size_t)batch * d.dyp + d.kc + groups * d.kc;
}

/* dst[n] = src[n] with `top` and `left` rows/columns of zeros before and
 * the rest of the padded size after, every image in parallel. */
static void pad_images(const float *src, int32_t n, int32_t h, int32_t w, int32_t c, int32_t hp, int32_t wp,
                       int32_t top, int32_t left, float *dst)
{
    int32_t right = wp - w - left, bottom = hp - h - top;
#pragma omp parallel for schedule(static)
    for (int32_t i = 0; i < n; i++) {
        float *d = dst + (size_t)i * hp * wp * c;
        const float *s = src + (size_t)i * h * w * c;
        /* zeros only where the image is not: whole rows above and below,
         * the columns left and right of each row */
        memset(d, 0, (size_t)top * wp * c * sizeof(float));
        memset(d + (size_t)(top + h) * wp * c, 0, (size_t)bottom * wp * c * sizeof(float));
        for (int32_t r = 0; r < h; r++) {
            float *row = d + (size_t)(r + top) * wp * c;
            memset(row, 0, (size_t)left * c * sizeof(float));
            memcpy(row + (size_t)left * c, s + (size_t)r * w * c, (size_t)w * c * sizeof(float));
            memset(row + (size_t)(left + w) * c, 0, (size_t)right * c * sizeof(float));
        }
    }
}

void rg_conv_direct_forward(const rg_op_call *call, const conv_out *o)
{
    const rg_conv_attr *a = &call->node->a.conv;
    const rg_kernel_table *k = rg_kernels();
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    direct_plan d = direct_geometry(call->g, call->node, call->g->planned_batch);
    float *xp = call->scratch, *wt = xp + (size_t)d.n * d.xp;
    int32_t K = a->kh * a->kw * xs.c;
    /* OHWI [co][kh][kw][ci] -> [kh][kw][ci][co] */
    for (int32_t co = 0; co < a->cout; co++)
        for (int32_t t = 0; t < K; t++) wt[(size_t)t * a->cout + co] = o->w[(size_t)co * K + t];
    pad_images(rg_in(call, 0), xs.n, xs.h, xs.w, xs.c, d.fwd.hp, d.fwd.wp, a->pad, a->pad, xp);
    size_t yi = (size_t)ys.h * ys.w * ys.c;
    /* paired with a batch norm (ops/bn.h): each image's moments while it is in cache */
    int32_t bn = rg_bn_pair_active(call->g, call->ctx, call->node->bn_pair) ? call->node->bn_pair : 0;
#pragma omp parallel for schedule(static)
    for (int32_t i = 0; i < xs.n; i++) {
        k->conv_forward(&d.fwd, xp + i * d.xp, wt, o->y + i * yi, 0, o->bias, o->act);
        if (bn) rg_bn_take_moments(call->g, bn, i, o->y + i * yi);
    }
}

void rg_conv_direct_backward(const rg_op_call *call)
{
    const rg_conv_attr *a = &call->node->a.conv;
    const rg_kernel_table *k = rg_kernels();
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    direct_plan d = direct_geometry(call->g, call->node, call->g->planned_batch);
    float *xp = call->scratch, *dyp = xp + (size_t)d.n * d.xp + d.kc, *wf = dyp + (size_t)d.n * d.dyp,
          *part = wf + d.kc;
    const float *w = rg_param_data(call, 0), *dy = rg_dout(call);
    float *dx = rg_din_wanted(call, 0), *dw = rg_param_grad(call, 0);
    int32_t K = a->kh * a->kw * xs.c, N = xs.n, KK = a->kh * a->kw;
    size_t xi = (size_t)xs.h * xs.w * xs.c, yi = (size_t)ys.h * ys.w * ys.c;

    /* weight gradient: per group of images, then the groups in order */
    pad_images(rg_in(call, 0), N, xs.h, xs.w, xs.c, d.fwd.hp, d.fwd.wp, a->pad, a->pad, xp);
    int32_t groups = (N + WGRAD_GROUP - 1) / WGRAD_GROUP;
#pragma omp parallel for schedule(static)
    for (int32_t gi = 0; gi < groups; gi++) {
        float *pg = part + (size_t)gi * d.kc;
        memset(pg, 0, d.kc * sizeof(float));
        for (int32_t i = gi * WGRAD_GROUP; i < N && i < (gi + 1) * WGRAD_GROUP; i++)
            k->conv_weight_grad(&d.fwd, xp + i * d.xp, dy + i * yi, pg);
    }
    /* group 0 collects the others in order (contiguous rows), then the
     * sum goes back to the OHWI layout */
#pragma omp parallel for schedule(static)
    for (int32_t t = 0; t < K; t++) {
        float *row = part + (size_t)t * a->cout;
        for (int32_t gi = 1; gi < groups; gi++) {
            const float *other = part + (size_t)gi * d.kc + (size_t)t * a->cout;
            for (int32_t co = 0; co < a->cout; co++) row[co] += other[co];
        }
        for (int32_t co = 0; co < a->cout; co++) dw[(size_t)co * K + t] += row[co];
    }
    if (!dx) return;
    /* input gradient: the padded output gradient convolved with the flipped
     * weight, wf[kh'][kw'][co][ci] = w[co][kh-1-kh'][kw-1-kw'][ci] */
    for (int32_t co = 0; co < a->cout; co++)
        for (int32_t t = 0; t < KK; t++) {
            int32_t kh = t / a->kw, kw = t % a->kw, f = (a->kh - 1 - kh) * a->kw + (a->kw - 1 - kw);
            for (int32_t ci = 0; ci < xs.c; ci++)
                wf[((size_t)f * a->cout + co) * xs.c + ci] = w[((size_t)co * KK + t) * xs.c + ci];
        }
    pad_images(dy, N, ys.h, ys.w, ys.c, d.bwd.hp, d.bwd.wp, a->kh - 1 - a->pad, a->kw - 1 - a->pad, dyp);
    int accumulate = !rg_din_fresh(call, 0);
#pragma omp parallel for schedule(static)
    for (int32_t i = 0; i < N; i++) k->conv_forward(&d.bwd, dyp + i * d.dyp, wf, dx + i * xi, accumulate, NULL, RG_ACT_NONE);
}

