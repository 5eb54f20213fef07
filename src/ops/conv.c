/* 2-D convolution, NHWC.
 *
 *   x: (N, H, W, Cin)   w: (Cout, KH, KW, Cin/groups) "OHWI"   y: (N, Ho, Wo, Cout)
 *   y[n,oh,ow,co] = sum_{kh,kw,ci} x[n, oh*s-p+kh, ow*s-p+kw, g*Cg+ci] * w[co,kh,kw,ci]
 *
 * Three paths, chosen by shape:
 * - pointwise (1x1, stride 1, no padding, one group): one sgemm over
 *   (N*H*W, Cin) x (Cin, Cout), no copy at all;
 * - depthwise (groups = Cin = Cout): the kernel table's direct kernels, one
 *   image per call (kernels/kernels.h);
 * - everything else: im2col over a chunk of images, then one sgemm per group.
 *   The im2col row layout (kh, kw, ci) matches the OHWI weight layout, so the
 *   weight needs no transposition. Chunks bound the scratch size; weight
 *   gradients are accumulated chunk after chunk in a fixed order.
 * In an evaluation plan a convolution followed by batch norm (and relu/
 * relu6) runs as one, the batch norm folded into its weights (conv_output).
 * Matrix products go through kernels/gemm.h, whose results do not depend on
 * the number of threads.
 */
#include "ops/op.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

#define IM2COL_MAX_FLOATS ((size_t)4 << 20) /* 16 MiB of column buffer per chunk */

static int is_pointwise(const rg_conv_attr *a)
{
    return a->kh == 1 && a->kw == 1 && a->stride == 1 && a->pad == 0 && a->groups == 1;
}

/* Dense stride-1 convolutions run direct (kernels' conv_forward), without a
 * column buffer; the input gradient is the same convolution of the padded
 * output gradient with the flipped weight, which needs pad <= k - 1. */
static int is_direct(const rg_conv_attr *a)
{
    return a->groups == 1 && a->stride == 1 && a->kh * a->kw > 1 && a->pad <= a->kh - 1 && a->pad <= a->kw - 1;
}

static int is_depthwise(const rg_graph *g, const rg_node *n)
{
    int32_t cin = g->values[n->in[0]].shape.c;
    return n->a.conv.groups == cin && n->a.conv.cout == cin && cin > 1;
}

/* Images per im2col chunk: as many as fit the column budget, at least one. */
static int32_t chunk_images(const rg_graph *g, const rg_node *n, int32_t batch)
{
    const rg_conv_attr *a = &n->a.conv;
    rg_shape y = g->values[n->out].shape;
    int32_t cg = g->values[n->in[0]].shape.c / a->groups;
    size_t per_image = (size_t)y.h * y.w * a->kh * a->kw * cg;
    size_t k = IM2COL_MAX_FLOATS / (per_image ? per_image : 1);
    if (k < 1) k = 1;
    if (k > (size_t)batch) k = (size_t)batch;
    return (int32_t)k;
}

/* What a convolution's forward pass uses and writes. Alone: its weight and
 * bias, into its output. At the head of an evaluation chain (graph/fuse.c):
 * the batch norm's running statistics folded in,
 *     w' = w * scale,  b' = (b - mean) * scale + beta,  scale = gamma / sqrt(var + eps),
 * the chain's activation, and the chain's output. */
typedef struct {
    const float *w, *bias; /* bias may be NULL */
    rg_act act;
    float *y;
} conv_out;

/* ---- direct (dense, stride 1) -------------------------------------------------------- */

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
static size_t direct_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
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

static void direct_forward(const rg_op_call *call, const conv_out *o)
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
#pragma omp parallel for schedule(static)
    for (int32_t i = 0; i < xs.n; i++) k->conv_forward(&d.fwd, xp + i * d.xp, wt, o->y + i * yi, 0, o->bias, o->act);
}

static void direct_backward(const rg_op_call *call)
{
    const rg_conv_attr *a = &call->node->a.conv;
    const rg_kernel_table *k = rg_kernels();
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    direct_plan d = direct_geometry(call->g, call->node, call->g->planned_batch);
    float *xp = call->scratch, *dyp = xp + (size_t)d.n * d.xp + d.kc, *wf = dyp + (size_t)d.n * d.dyp,
          *part = wf + d.kc;
    const float *w = rg_param_data(call, 0), *dy = rg_dout(call);
    float *dx = rg_din(call, 0), *dw = rg_param_grad(call, 0);
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

static size_t conv_scratch_base(const rg_graph *g, const rg_node *n, int32_t batch)
{
    const rg_conv_attr *a = &n->a.conv;
    rg_shape y = g->values[n->out].shape;
    int32_t cin = g->values[n->in[0]].shape.c;
    if (is_pointwise(a)) return rg_gemm_tn_acc_scratch(a->cout, cin, batch * y.h * y.w);
    if (is_direct(a) && !is_depthwise(g, n)) return direct_scratch(g, n, batch);
    if (is_depthwise(g, n)) {
        /* transposed weight (KH*KW*C) + per-image weight-gradient partials */
        size_t kc = (size_t)a->kh * a->kw * a->cout;
        return kc + (size_t)batch * kc;
    }
    int32_t cg = cin / a->groups, K = a->kh * a->kw * cg, rows = chunk_images(g, n, batch) * y.h * y.w;
    /* column buffer, then the partial weight-gradient products */
    return (size_t)rows * K + rg_gemm_tn_acc_scratch(a->cout / a->groups, K, rows);
}

/* Floats of weight: cout x (kh * kw * cin / groups). */
static size_t weight_floats(const rg_graph *g, const rg_node *n)
{
    const rg_conv_attr *a = &n->a.conv;
    return (size_t)a->cout * a->kh * a->kw * (g->values[n->in[0]].shape.c / a->groups);
}

static size_t conv_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    size_t base = conv_scratch_base(g, n, batch);
    /* a folded batch norm (evaluation chain): folded weights and bias after the rest */
    return n->fuse_next ? base + rg_conv_folded_floats(g, n) : base;
}

static uint64_t conv_macs(const rg_graph *g, const rg_node *n)
{
    const rg_conv_attr *a = &n->a.conv;
    rg_shape y = g->values[n->out].shape;
    int32_t cg = g->values[n->in[0]].shape.c / a->groups;
    return (uint64_t)y.h * y.w * a->cout * cg * a->kh * a->kw;
}

/* ---- im2col / col2im for one group of channels ------------------------------ */

/* col[(n, oh, ow), (kh, kw, ci)] = x[n, oh*s-p+kh, ow*s-p+kw, c0+ci], zero outside. */
static void im2col(const float *x, rg_shape xs, int32_t nimg, int32_t c0, int32_t cg, const rg_conv_attr *a,
                   int32_t ho, int32_t wo, float *col)
{
    size_t K = (size_t)a->kh * a->kw * cg;
    int32_t rows = nimg * ho * wo;
#pragma omp parallel for schedule(static)
    for (int32_t r = 0; r < rows; r++) {
        int32_t n = r / (ho * wo), oh = (r / wo) % ho, ow = r % wo;
        float *dst = col + (size_t)r * K;
        for (int32_t kh = 0; kh < a->kh; kh++) {
            int32_t ih = oh * a->stride - a->pad + kh;
            for (int32_t kw = 0; kw < a->kw; kw++) {
                int32_t iw = ow * a->stride - a->pad + kw;
                if (ih < 0 || ih >= xs.h || iw < 0 || iw >= xs.w) {
                    memset(dst, 0, (size_t)cg * sizeof(float));
                } else {
                    memcpy(dst, x + (((size_t)n * xs.h + ih) * xs.w + iw) * xs.c + c0, (size_t)cg * sizeof(float));
                }
                dst += cg;
            }
        }
    }
}

/* dx[n, ih, iw, c0+ci] += dcol[...]: the adjoint of im2col. Parallel over
 * images, which never share an input pixel. */
static void col2im(const float *dcol, rg_shape xs, int32_t nimg, int32_t c0, int32_t cg, const rg_conv_attr *a,
                   int32_t ho, int32_t wo, float *dx)
{
    size_t K = (size_t)a->kh * a->kw * cg;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < nimg; n++) {
        for (int32_t oh = 0; oh < ho; oh++)
            for (int32_t ow = 0; ow < wo; ow++) {
                const float *src = dcol + ((size_t)(n * ho + oh) * wo + ow) * K;
                for (int32_t kh = 0; kh < a->kh; kh++) {
                    int32_t ih = oh * a->stride - a->pad + kh;
                    for (int32_t kw = 0; kw < a->kw; kw++, src += cg) {
                        int32_t iw = ow * a->stride - a->pad + kw;
                        if (ih < 0 || ih >= xs.h || iw < 0 || iw >= xs.w) continue;
                        float *d = dx + (((size_t)n * xs.h + ih) * xs.w + iw) * xs.c + c0;
                        for (int32_t ci = 0; ci < cg; ci++) d[ci] += src[ci];
                    }
                }
            }
    }
}

/* ---- bias ------------------------------------------------------------------------ */


size_t rg_conv_folded_floats(const rg_graph *g, const rg_node *n)
{
    /* a pointwise convolution keeps its folded weight transposed as well,
     * [cin][cout], the layout the kernels' gemm_nn reads */
    size_t w = weight_floats(g, n);
    return (is_pointwise(&n->a.conv) ? 2 * w : w) + (size_t)n->a.conv.cout;
}

void rg_conv_fold(const rg_graph *g, const rg_node *n, float *folded)
{
    const rg_node *bn = &g->nodes[n->fuse_next];
    const float *w = g->param_data + g->params[n->param[0]].offset;
    const float *b = n->param[1] >= 0 ? g->param_data + g->params[n->param[1]].offset : NULL;
    const float *gamma = g->param_data + g->params[bn->param[0]].offset;
    const float *beta = g->param_data + g->params[bn->param[1]].offset;
    const float *mean = g->buffer_data + g->buffers[bn->buffer[0]].offset;
    const float *var = g->buffer_data + g->buffers[bn->buffer[1]].offset;
    size_t per_out = weight_floats(g, n) / (size_t)n->a.conv.cout;
    float *wf = folded, *bf = folded + weight_floats(g, n);
    for (int32_t co = 0; co < n->a.conv.cout; co++) {
        float scale = gamma[co] / sqrtf(var[co] + bn->a.bn.eps);
        for (size_t k = 0; k < per_out; k++) wf[co * per_out + k] = w[co * per_out + k] * scale;
        bf[co] = ((b ? b[co] : 0.0f) - mean[co]) * scale + beta[co];
    }
    if (!is_pointwise(&n->a.conv)) return;
    int32_t cin = (int32_t)per_out, cout = n->a.conv.cout;
    float *wt = bf + cout;
    for (int32_t co = 0; co < cout; co++)
        for (int32_t ci = 0; ci < cin; ci++) wt[(size_t)ci * cout + co] = wf[(size_t)co * cin + ci];
}

static conv_out conv_output(const rg_op_call *call)
{
    rg_graph *g = call->g;
    const rg_node *n = call->node;
    conv_out o = {rg_param_data(call, 0), n->param[1] >= 0 ? rg_param_data(call, 1) : NULL, RG_ACT_NONE, rg_out(call)};
    if (!n->fuse_next) return o;
    /* folded once by rg_graph_fold (an inference session), or here on every
     * call, since the weights may have changed since the last */
    float *folded = g->folded ? g->folded + g->folded_at[call->index] : NULL;
    if (!folded) {
        folded = call->scratch + conv_scratch_base(g, n, g->planned_batch);
        rg_conv_fold(g, n, folded);
    }
    o.w = folded;
    o.bias = folded + weight_floats(g, n);
    const rg_node *bn = &g->nodes[n->fuse_next];
    o.act = rg_fused_act(g, bn);
    o.y = rg_graph_act(g, rg_graph_chain_output(g, call->index));
    return o;
}

/* db[k] += sum_r dy[r, k], rows summed in order for determinism. */
static void bias_grad(const float *dy, size_t rows, int32_t c, float *db)
{
#pragma omp parallel for schedule(static)
    for (int32_t k = 0; k < c; k++) {
        double s = 0.0;
        for (size_t r = 0; r < rows; r++) s += dy[r * c + k];
        db[k] += (float)s;
    }
}

/* ---- depthwise -------------------------------------------------------------------- */

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

/* One image per kernel call, images in parallel. */
static void dw_forward(const rg_op_call *call)
{
    const rg_kernel_table *k = rg_kernels();
    rg_dw_geom geo = dw_geom(call);
    int32_t N = call->g->batch;
    size_t xi = (size_t)geo.h * geo.w * geo.c, yi = (size_t)geo.ho * geo.wo * geo.c;
    const float *x = rg_in(call, 0);
    conv_out o = conv_output(call);
    float *wt = call->scratch;
    transpose_dw_weight(o.w, geo.c, geo.kh * geo.kw, wt);
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < N; n++) k->dw_forward(&geo, x + n * xi, wt, o.bias, o.act, o.y + n * yi);
}

static void dw_backward(const rg_op_call *call)
{
    const rg_kernel_table *k = rg_kernels();
    rg_dw_geom geo = dw_geom(call);
    int32_t N = call->g->batch, C = geo.c, KK = geo.kh * geo.kw;
    size_t xi = (size_t)geo.h * geo.w * C, yi = (size_t)geo.ho * geo.wo * C, kc = (size_t)KK * C;
    const float *x = rg_in(call, 0), *dy = rg_dout(call);
    float *dx = rg_din(call, 0), *wt = call->scratch, *part = call->scratch + kc;
    transpose_dw_weight(rg_param_data(call, 0), C, KK, wt);
    int store = dx && rg_din_fresh(call, 0);
    /* Per image: input gradient and this image's share of the weight gradient. */
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < N; n++) {
        if (dx) k->dw_backward_data(&geo, dy + n * yi, wt, dx + n * xi, store);
        k->dw_backward_weight(&geo, dy + n * yi, x + n * xi, part + n * kc);
    }
    /* Reduce the per-image partials in image order (thread-count independent). */
    float *dw = rg_param_grad(call, 0);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < kc; i++) {
        float s = 0.0f;
        for (int32_t n = 0; n < N; n++) s += part[(size_t)n * kc + i];
        int32_t ch = (int32_t)(i % (size_t)C), kk = (int32_t)(i / (size_t)C);
        dw[(size_t)ch * KK + kk] += s;
    }
    if (call->node->param[1] >= 0) bias_grad(dy, (size_t)N * geo.ho * geo.wo, C, rg_param_grad(call, 1));
}

/* ---- pointwise ------------------------------------------------------------------------ */

#define PW_ROWS 192 /* rows of a parallel piece: a multiple of the kernels' row tile */

/* C[M, N] (+)= A[M, K] B[K, N] (+ bias, act) through the kernel table, rows
 * in fixed pieces over the threads. */
static void pw_gemm(int32_t M, int32_t N, int32_t K, const float *A, const float *B, float *C, int accumulate,
                    const float *bias, rg_act act)
{
    const rg_kernel_table *k = rg_kernels();
    int32_t pieces = (M + PW_ROWS - 1) / PW_ROWS;
#pragma omp parallel for schedule(static)
    for (int32_t p = 0; p < pieces; p++) {
        int32_t r0 = p * PW_ROWS, m = M - r0 < PW_ROWS ? M - r0 : PW_ROWS;
        k->gemm_nn(m, N, K, A + (size_t)r0 * K, K, B, N, C + (size_t)r0 * N, N, accumulate, bias, act);
    }
}

/* ---- dense and grouped ---------------------------------------------------------------- */

static void conv_forward(const rg_op_call *call)
{
    const rg_node *n = call->node;
    const rg_conv_attr *a = &n->a.conv;
    if (is_depthwise(call->g, n)) {
        dw_forward(call);
        return;
    }
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    const float *x = rg_in(call, 0);
    conv_out o = conv_output(call);
    int epilogue = o.bias || o.act != RG_ACT_NONE;
    if (is_direct(a)) {
        direct_forward(call, &o);
        return;
    }
    if (is_pointwise(a)) {
        int32_t rows = ys.n * ys.h * ys.w;
        if (call->g->folded && n->fuse_next) {
            /* folded once, transposed once (rg_conv_fold): the kernels'
             * gemm_nn, measured 13% (batch 256) to 19% (batch 1) faster
             * over a whole inference than OpenBLAS here */
            pw_gemm(rows, ys.c, xs.c, x, o.bias + ys.c, o.y, 0, o.bias, o.act);
            return;
        }
        /* OpenBLAS, with the epilogue on each block while it is in cache:
         * measured a little faster here than kernels' gemm_nn, which would
         * need the weight transposed on every call */
        if (epilogue) rg_gemm_rows_bias_act(1, rows, ys.c, xs.c, x, xs.c, o.w, xs.c, 0.0f, o.y, o.bias, o.act);
        else rg_gemm_rows(1, rows, ys.c, xs.c, x, xs.c, o.w, xs.c, 0.0f, o.y, ys.c);
        return;
    }
    const rg_kernel_table *k = rg_kernels();
    int32_t G = a->groups, cg = xs.c / G, coutg = a->cout / G;
    int32_t K = a->kh * a->kw * cg, chunk = chunk_images(call->g, n, xs.n);
    size_t xi = (size_t)xs.h * xs.w * xs.c, yi = (size_t)ys.h * ys.w * ys.c;
    for (int32_t n0 = 0; n0 < xs.n; n0 += chunk) {
        int32_t nb = xs.n - n0 < chunk ? xs.n - n0 : chunk, rows = nb * ys.h * ys.w;
        for (int32_t gi = 0; gi < G; gi++) {
            im2col(x + n0 * xi, xs, nb, gi * cg, cg, a, ys.h, ys.w, call->scratch);
            rg_gemm_rows(1, rows, coutg, K, call->scratch, K, o.w + (size_t)gi * coutg * K, K, 0.0f,
                         o.y + n0 * yi + gi * coutg, ys.c);
        }
        if (!epilogue) continue;
        /* the chunk's rows, in fixed pieces over the threads */
        float *yc = o.y + n0 * yi;
        int32_t pieces = (rows + 255) / 256;
#pragma omp parallel for schedule(static)
        for (int32_t p = 0; p < pieces; p++) {
            int32_t r0 = p * 256, m = rows - r0 < 256 ? rows - r0 : 256;
            k->bias_act(yc + (size_t)r0 * ys.c, (size_t)m, ys.c, o.bias, o.act);
        }
    }
}

static void conv_backward(const rg_op_call *call)
{
    const rg_node *n = call->node;
    const rg_conv_attr *a = &n->a.conv;
    if (is_depthwise(call->g, n)) {
        dw_backward(call);
        return;
    }
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    const float *x = rg_in(call, 0), *w = rg_param_data(call, 0), *dy = rg_dout(call);
    float *dx = rg_din(call, 0), *dw = rg_param_grad(call, 0);
    if (is_direct(a)) {
        direct_backward(call);
    } else if (is_pointwise(a)) {
        int32_t rows = ys.n * ys.h * ys.w;
        /* dW[Cout, Cin] += dY^T X ; dX[rows, Cin] += dY W */
        rg_gemm_tn_acc(ys.c, xs.c, rows, dy, ys.c, x, xs.c, dw, xs.c, call->scratch);
        /* dX = dY W needs no transposition: the kernels' gemm_nn, which
         * measured about 5% faster over a training step than OpenBLAS here */
        if (dx) pw_gemm(rows, xs.c, ys.c, dy, w, dx, !rg_din_fresh(call, 0), NULL, RG_ACT_NONE);
    } else {
        int32_t G = a->groups, cg = xs.c / G, coutg = a->cout / G;
        int32_t K = a->kh * a->kw * cg, chunk = chunk_images(call->g, n, xs.n);
        size_t xi = (size_t)xs.h * xs.w * xs.c, yi = (size_t)ys.h * ys.w * ys.c;
        /* col2im adds up overlapping windows: a fresh gradient starts at zero */
        if (dx && rg_din_fresh(call, 0)) memset(dx, 0, (size_t)xs.n * xi * sizeof(float));
        for (int32_t n0 = 0; n0 < xs.n; n0 += chunk) {
            int32_t nb = xs.n - n0 < chunk ? xs.n - n0 : chunk, rows = nb * ys.h * ys.w;
            for (int32_t gi = 0; gi < G; gi++) {
                const float *dyg = dy + n0 * yi + gi * coutg;
                float *col = call->scratch, *partial = col + (size_t)rows * K;
                im2col(x + n0 * xi, xs, nb, gi * cg, cg, a, ys.h, ys.w, col);
                rg_gemm_tn_acc(coutg, K, rows, dyg, ys.c, col, K, dw + (size_t)gi * coutg * K, K, partial);
                if (!dx) continue;
                /* the column buffer is reused for the column gradient */
                rg_gemm_rows(0, rows, K, coutg, dyg, ys.c, w + (size_t)gi * coutg * K, K, 0.0f, col, K);
                col2im(call->scratch, xs, nb, gi * cg, cg, a, ys.h, ys.w, dx + n0 * xi);
            }
        }
    }
    if (n->param[1] >= 0) bias_grad(dy, (size_t)ys.n * ys.h * ys.w, ys.c, rg_param_grad(call, 1));
}

const rg_op_def rg_op_conv = {"conv", conv_forward, conv_backward, conv_scratch, NULL, conv_macs, 1};
