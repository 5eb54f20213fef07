/* 2-D convolution, NHWC.
 *
 *   x: (N, H, W, Cin)   w: (Cout, KH, KW, Cin/groups) "OHWI"   y: (N, Ho, Wo, Cout)
 *   y[n,oh,ow,co] = sum_{kh,kw,ci} x[n, oh*s-p+kh, ow*s-p+kw, g*Cg+ci] * w[co,kh,kw,ci]
 *
 * Four paths, chosen by shape:
 * - pointwise (1x1, stride 1, no padding, one group): one matrix product over
 *   (N*H*W, Cin) x (Cin, Cout), no copy at all (here);
 * - depthwise (groups = Cin = Cout): the kernel table's direct kernels
 *   (ops/conv_depthwise.c);
 * - dense, stride 1 to 4: direct, an implicit GEMM over the padded input
 *   (ops/conv_direct.c); the forward pass and input gradient of a 3x3
 *   stride-1 one with 16 channels or more by Winograd F(2x2, 3x3) there;
 * - everything else (strided, grouped): im2col over a chunk of images, then
 *   one sgemm per group (here). The im2col row layout (kh, kw, ci) matches
 *   the OHWI weight layout, so the weight needs no transposition. Chunks
 *   bound the scratch size; weight gradients are accumulated chunk after
 *   chunk in a fixed order.
 * In an evaluation plan a convolution followed by batch norm (and relu/
 * relu6) runs as one, the batch norm folded into its weights
 * (rg_conv_output). Matrix products go through kernels/gemm.h or the kernel
 * table, whose results do not depend on the number of threads.
 */
#include "ops/conv.h"
#include "core/parallel.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"

#include "ops/bn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define IM2COL_MAX_FLOATS ((size_t)4 << 20) /* 16 MiB of column buffer per chunk */

#define is_pointwise rg_conv_is_pointwise

#define PW_BLOCK_FLOATS 65536 /* floats of a block's widest side, paired pointwise (stays in L2) */

size_t rg_conv_slots_floats(const rg_graph *g, size_t per) { return (size_t)g->plan_threads * per; }

int rg_conv_slots(const rg_graph *g)
{
    int t = omp_get_max_threads();
    return t < g->plan_threads ? t : g->plan_threads;
}

/* A pointwise convolution paired with batch norms (ops/bn.h) runs in blocks
 * of whole images. Its scratch: the weight-gradient partial of every block,
 * then per thread one block of the input (fed) and of the output gradient
 * (paired). */
typedef struct {
    int32_t hw, cin, cout, per, blocks; /* per: images per block */
    size_t partials, in, out, slot;     /* floats */
} pw_layout;

static pw_layout pw_layout_of(const rg_graph *g, const rg_node *n, int32_t batch)
{
    pw_layout l;
    rg_shape y = g->values[n->out].shape;
    l.hw = y.h * y.w;
    l.cin = g->values[n->in[0]].shape.c;
    l.cout = y.c;
    int32_t wide = l.cin > l.cout ? l.cin : l.cout;
    l.per = (int32_t)(PW_BLOCK_FLOATS / ((size_t)l.hw * wide));
    if (l.per < 1) l.per = 1;
    if (l.per > batch) l.per = batch;
    l.blocks = (batch + l.per - 1) / l.per;
    l.partials = (size_t)l.blocks * l.cout * l.cin;
    l.in = n->bn_feed ? (size_t)l.per * l.hw * l.cin : 0;
    l.out = n->bn_pair ? (size_t)l.per * l.hw * l.cout : 0;
    l.slot = l.in + l.out;
    return l;
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

static size_t conv_scratch_base(const rg_graph *g, const rg_node *n, int32_t batch)
{
    const rg_conv_attr *a = &n->a.conv;
    rg_shape y = g->values[n->out].shape;
    int32_t cin = g->values[n->in[0]].shape.c;
    if (is_pointwise(a)) {
        size_t base = rg_gemm_tn_acc_scratch(a->cout, cin, batch * y.h * y.w);
        if (!n->bn_pair && !n->bn_feed) return base;
        pw_layout l = pw_layout_of(g, n, batch);
        size_t blocked = l.partials + rg_conv_slots_floats(g, l.slot);
        return blocked > base ? blocked : base;
    }
    if (rg_conv_is_direct(a) && !rg_conv_is_depthwise(g, n)) return rg_conv_direct_scratch(g, n, batch);
    if (rg_conv_is_depthwise(g, n)) {
        /* transposed and flipped weight (KH*KW*C each) + per-image
         * weight-gradient partials + the per-thread buffers of ops/bn.h's
         * pairings */
        size_t kc = (size_t)a->kh * a->kw * a->cout;
        return 2 * kc + (size_t)batch * kc + rg_conv_dw_slots_floats(g, n);
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

#define COL_ROWS 256 /* rows of a piece of im2col or of an epilogue */

typedef struct {
    const float *x;
    rg_shape xs;
    int32_t rows, c0, cg, ho, wo;
    const rg_conv_attr *a;
    float *col;
} im2col_work;

static void im2col_rows(void *ctx, size_t first, size_t count, int thread)
{
    (void)thread;
    const im2col_work *w = ctx;
    const rg_conv_attr *a = w->a;
    int32_t cg = w->cg, ho = w->ho, wo = w->wo;
    size_t K = (size_t)a->kh * a->kw * cg;
    for (int32_t r = (int32_t)first; r < (int32_t)(first + count); r++) {
        int32_t n = r / (ho * wo), oh = (r / wo) % ho, ow = r % wo;
        float *dst = w->col + (size_t)r * K;
        for (int32_t kh = 0; kh < a->kh; kh++) {
            int32_t ih = oh * a->stride - a->pad + kh;
            for (int32_t kw = 0; kw < a->kw; kw++) {
                int32_t iw = ow * a->stride - a->pad + kw;
                if (ih < 0 || ih >= w->xs.h || iw < 0 || iw >= w->xs.w) {
                    memset(dst, 0, (size_t)cg * sizeof(float));
                } else {
                    memcpy(dst, w->x + (((size_t)n * w->xs.h + ih) * w->xs.w + iw) * w->xs.c + w->c0,
                           (size_t)cg * sizeof(float));
                }
                dst += cg;
            }
        }
    }
}

/* col[(n, oh, ow), (kh, kw, ci)] = x[n, oh*s-p+kh, ow*s-p+kw, c0+ci], zero outside. */
static void im2col(const float *x, rg_shape xs, int32_t nimg, int32_t c0, int32_t cg, const rg_conv_attr *a,
                   int32_t ho, int32_t wo, float *col)
{
    im2col_work w = {x, xs, nimg * ho * wo, c0, cg, ho, wo, a, col};
    rg_parallel_rows((size_t)w.rows, COL_ROWS, 0, RG_SCHEDULE_STATIC, im2col_rows, &w);
}

typedef struct {
    float *y;
    int32_t rows, c;
    const float *bias;
    rg_act act;
} epilogue_work;

static void epilogue_rows(void *ctx, size_t first, size_t count, int thread)
{
    (void)thread;
    const epilogue_work *w = ctx;
    rg_kernels()->bias_act(w->y + first * w->c, count, w->c, w->bias, w->act);
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

/* ---- batch norm folded into the weights ----------------------------------------- */


size_t rg_conv_folded_floats(const rg_graph *g, const rg_node *n)
{
    /* a pointwise convolution keeps its folded weight transposed as well,
     * [cin][cout], the layout the kernels' gemm_nn reads */
    size_t w = weight_floats(g, n), wino = rg_conv_is_wino(g, n) ? 16 * w / 9 : 0;
    return (is_pointwise(&n->a.conv) ? 2 * w : w) + (size_t)n->a.conv.cout + wino;
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
    if (rg_conv_is_wino(g, n)) rg_conv_wino_weight(wf, (int32_t)(per_out / 9), n->a.conv.cout, 0, bf + n->a.conv.cout);
    if (!is_pointwise(&n->a.conv)) return;
    int32_t cin = (int32_t)per_out, cout = n->a.conv.cout;
    float *wt = bf + cout;
    for (int32_t co = 0; co < cout; co++)
        for (int32_t ci = 0; ci < cin; ci++) wt[(size_t)ci * cout + co] = wf[(size_t)co * cin + ci];
}

conv_out rg_conv_output(const rg_op_call *call)
{
    rg_graph *g = call->g;
    const rg_node *n = call->node;
    conv_out o = {rg_param_data(call, 0), n->param[1] >= 0 ? rg_param_data(call, 1) : NULL, NULL, NULL,
                  RG_ACT_NONE, rg_out(call)};
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
    if (rg_conv_is_wino(g, n)) o.wino = o.bias + n->a.conv.cout;
    const rg_node *last = &g->nodes[n->fuse_next]; /* the batch norm */
    if (last->fuse_next && g->nodes[last->fuse_next].op == RG_OP_ADD) {
        const rg_node *add = &g->nodes[last->fuse_next];
        o.residual = rg_graph_act(g, add->in[add->in[0] == last->out ? 1 : 0]);
        last = add;
    }
    o.act = rg_fused_act(g, last);
    o.y = rg_graph_act(g, rg_graph_chain_output(g, call->index));
    return o;
}

/* db[k] += sum_r dy[r, k], rows summed in order for determinism. */
void rg_conv_bias_grad(const float *dy, size_t rows, int32_t c, float *db)
{
#pragma omp parallel for schedule(static)
    for (int32_t k = 0; k < c; k++) {
        double s = 0.0;
        for (size_t r = 0; r < rows; r++) s += dy[r * c + k];
        db[k] += (float)s;
    }
}

/* ---- pointwise ------------------------------------------------------------------------ */

#define PW_ROWS 192 /* rows of a parallel piece: a multiple of the kernels' row tile */

/* C[M, N] = act(A[M, K] B[K, N] + bias [+ R]) through the kernel table, or
 * with accumulate C += A B, rows in fixed pieces over the threads. A
 * residual R (a fused add) is copied into each piece of C just before the
 * product adds to it, while the piece is in cache. */
typedef struct {
    int32_t M, N, K;
    const float *A, *B, *R, *bias;
    float *C;
    int accumulate;
    rg_act act;
} pw_product;

static void pw_piece(void *ctx, size_t first, size_t count, int thread)
{
    (void)thread;
    const pw_product *w = ctx;
    int32_t N = w->N;
    float *c = w->C + first * N;
    if (w->R) memcpy(c, w->R + first * N, count * N * sizeof *c);
    rg_kernels()->gemm_nn((int32_t)count, N, w->K, w->A + first * w->K, w->K, w->B, N, c, N, w->accumulate || w->R,
                          w->bias, w->act);
}

static void pw_gemm(int32_t M, int32_t N, int32_t K, const float *A, const float *B, float *C, int accumulate,
                    const float *R, const float *bias, rg_act act)
{
    pw_product w = {M, N, K, A, B, R, bias, C, accumulate, act};
    rg_parallel_rows((size_t)M, PW_ROWS, 0, RG_SCHEDULE_STATIC, pw_piece, &w);
}

/* With pairings (ops/bn.h) in training: blocks of whole images; fed, each
 * block's input act(bn(x)) computed into cache first; paired, each image's
 * moments taken right after its block is written. */
static void pw_forward_blocks(const rg_op_call *call, const conv_out *o, int32_t pair, int32_t feed)
{
    const rg_kernel_table *k = rg_kernels();
    pw_layout l = pw_layout_of(call->g, call->node, call->g->planned_batch);
    int32_t N = call->g->batch, blocks = (N + l.per - 1) / l.per;
    const float *x = rg_in(call, 0);
    float *slots = call->scratch + l.partials;
    int threads = rg_conv_slots(call->g);
    /* the weight as (Cin, Cout) for the kernels' gemm_nn, in the partials'
     * room (the backward's): OpenBLAS with beta 0 would clear each output
     * block in memory before accumulating into it, one more pass */
    float *wt = call->scratch;
    for (int32_t co = 0; co < l.cout; co++)
        for (int32_t ci = 0; ci < l.cin; ci++) wt[(size_t)ci * l.cout + co] = o->w[(size_t)co * l.cin + ci];
#pragma omp parallel num_threads(threads)
    {
        float *xin = slots + (size_t)omp_get_thread_num() * l.slot;
#pragma omp for schedule(dynamic, 1)
        for (int32_t b = 0; b < blocks; b++) {
            int32_t n0 = b * l.per, nb = N - n0 < l.per ? N - n0 : l.per;
            size_t r0 = (size_t)n0 * l.hw, rows = (size_t)nb * l.hw;
            const float *a = x + r0 * l.cin;
            if (feed) {
                rg_bn_feed_apply(call->g, feed, r0, rows, xin);
                a = xin;
            }
            float *y = o->y + r0 * l.cout;
            k->gemm_nn((int32_t)rows, l.cout, l.cin, a, l.cin, wt, l.cout, y, l.cout, 0, o->bias, o->act);
            if (pair)
                for (int32_t i = 0; i < nb; i++)
                    rg_bn_take_moments(call->g, pair, n0 + i, y + (size_t)i * l.hw * l.cout);
        }
    }
}

/* Backward with pairings, per block of images: paired, the batch norm's
 * input gradient (this convolution's output gradient) computed into cache;
 * fed, the input recomputed into cache; from there the block's weight-
 * gradient partial and input gradient, and (fed) the feeding batch norm's
 * gradient sums while that input gradient is in cache. The partials are
 * summed in block order. */
static void pw_backward_blocks(const rg_op_call *call, int32_t pair, int32_t feed)
{
    const rg_kernel_table *k = rg_kernels();
    pw_layout l = pw_layout_of(call->g, call->node, call->g->planned_batch);
    int32_t N = call->g->batch, blocks = (N + l.per - 1) / l.per, cin = l.cin, cout = l.cout;
    const float *x = rg_in(call, 0), *w = rg_param_data(call, 0), *dout = rg_dout(call);
    float *dx = rg_din_wanted(call, 0), *dw = rg_param_grad(call, 0);
    float *part = call->scratch, *slots = part + l.partials;
    size_t mn = (size_t)cout * cin;
    int threads = rg_conv_slots(call->g);
    int accumulate = dx && !rg_din_fresh(call, 0);
#pragma omp parallel num_threads(threads)
    {
        float *xin = slots + (size_t)omp_get_thread_num() * l.slot, *g = xin + l.in;
#pragma omp for schedule(dynamic, 1)
        for (int32_t b = 0; b < blocks; b++) {
            int32_t n0 = b * l.per, nb = N - n0 < l.per ? N - n0 : l.per;
            size_t r0 = (size_t)n0 * l.hw;
            int rows = nb * l.hw;
            const float *dy = dout + r0 * cout, *a = x + r0 * cin;
            if (pair) {
                rg_bn_input_grad(call->g, pair, r0, (size_t)rows, g);
                dy = g;
            }
            if (feed) {
                rg_bn_feed_apply(call->g, feed, r0, (size_t)rows, xin);
                a = xin;
            }
            /* dW_b[Cout, Cin] = dY_b^T X_b ; dX_b = dY_b W */
            rg_gemm_tn_block(cout, cin, rows, dy, cout, a, cin, 0.0f, part + (size_t)b * mn, cin);
            if (!dx) continue;
            k->gemm_nn(rows, cin, cout, dy, cout, w, cin, dx + r0 * cin, cin, accumulate, NULL, RG_ACT_NONE);
            if (feed && rg_bn_feed_takes_sums(call->g, feed, call->index))
                for (int32_t i = 0; i < nb; i++)
                    rg_bn_feed_grad_sums(call->g, feed, n0 + i, dx + (r0 + (size_t)i * l.hw) * cin);
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t i0 = 0; i0 < mn; i0 += 64) {
        /* 64 sums at a time, the blocks added in order: contiguous loads */
        size_t m = mn - i0 < 64 ? mn - i0 : 64;
        float s[64];
        memcpy(s, dw + i0, m * sizeof *s);
        for (int32_t b = 0; b < blocks; b++) {
            const float *p = part + (size_t)b * mn + i0;
            for (size_t i = 0; i < m; i++) s[i] += p[i];
        }
        memcpy(dw + i0, s, m * sizeof *s);
    }
}

/* ---- dense and grouped ---------------------------------------------------------------- */

static void conv_forward(const rg_op_call *call)
{
    const rg_node *n = call->node;
    const rg_conv_attr *a = &n->a.conv;
    if (rg_conv_is_depthwise(call->g, n)) {
        rg_conv_dw_forward(call);
        return;
    }
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    const float *x = rg_in(call, 0);
    conv_out o = rg_conv_output(call);
    int epilogue = o.bias || o.act != RG_ACT_NONE;
    if (rg_conv_is_direct(a)) {
        rg_conv_direct_forward(call, &o);
        return;
    }
    if (is_pointwise(a)) {
        int32_t rows = ys.n * ys.h * ys.w;
        int32_t pair = rg_bn_pair_active(call->g, call->ctx, n->bn_pair) ? n->bn_pair : 0;
        int32_t feed = rg_bn_pair_active(call->g, call->ctx, n->bn_feed) ? n->bn_feed : 0;
        if (pair || feed) {
            pw_forward_blocks(call, &o, pair, feed);
            return;
        }
        if (n->fuse_next && (call->g->folded || o.residual)) {
            /* folded once, transposed once (rg_conv_fold): the kernels'
             * gemm_nn, measured 13% (batch 256) to 19% (batch 1) faster
             * over a whole inference than OpenBLAS here; and the only
             * path with the residual add of the chain */
            pw_gemm(rows, ys.c, xs.c, x, o.bias + ys.c, o.y, 0, o.residual, o.bias, o.act);
            return;
        }
        /* OpenBLAS, with the epilogue on each block while it is in cache:
         * measured a little faster here than kernels' gemm_nn, which would
         * need the weight transposed on every call */
        if (epilogue) rg_gemm_rows_bias_act(1, rows, ys.c, xs.c, x, xs.c, o.w, xs.c, 0.0f, o.y, o.bias, o.act);
        else rg_gemm_rows(1, rows, ys.c, xs.c, x, xs.c, o.w, xs.c, 0.0f, o.y, ys.c);
        return;
    }
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
        epilogue_work w = {o.y + n0 * yi, rows, ys.c, o.bias, o.act};
        rg_parallel_rows((size_t)rows, COL_ROWS, 0, RG_SCHEDULE_STATIC, epilogue_rows, &w);
    }
}

static void conv_backward(const rg_op_call *call)
{
    const rg_node *n = call->node;
    const rg_conv_attr *a = &n->a.conv;
    if (rg_conv_is_depthwise(call->g, n)) {
        rg_conv_dw_backward(call);
        return;
    }
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    const float *x = rg_in(call, 0), *w = rg_param_data(call, 0), *dy = rg_dout(call);
    float *dx = rg_din_wanted(call, 0), *dw = rg_param_grad(call, 0);
    if (rg_conv_is_direct(a)) {
        rg_conv_direct_backward(call);
    } else if (is_pointwise(a) && (rg_bn_pair_active(call->g, call->ctx, n->bn_pair) ||
                                   rg_bn_pair_active(call->g, call->ctx, n->bn_feed))) {
        pw_backward_blocks(call, rg_bn_pair_active(call->g, call->ctx, n->bn_pair) ? n->bn_pair : 0,
                           rg_bn_pair_active(call->g, call->ctx, n->bn_feed) ? n->bn_feed : 0);
    } else if (is_pointwise(a)) {
        int32_t rows = ys.n * ys.h * ys.w;
        /* dW[Cout, Cin] += dY^T X ; dX[rows, Cin] += dY W */
        rg_gemm_tn_acc(ys.c, xs.c, rows, dy, ys.c, x, xs.c, dw, xs.c, call->scratch);
        /* dX = dY W needs no transposition: the kernels' gemm_nn, which
         * measured about 5% faster over a training step than OpenBLAS here */
        if (dx) pw_gemm(rows, xs.c, ys.c, dy, w, dx, !rg_din_fresh(call, 0), NULL, NULL, RG_ACT_NONE);
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
    if (n->param[1] >= 0) rg_conv_bias_grad(dy, (size_t)ys.n * ys.h * ys.w, ys.c, rg_param_grad(call, 1));
}

const rg_op_def rg_op_conv = {.name = "conv", .forward = conv_forward, .backward = conv_backward,
                              .scratch_floats = conv_scratch, .macs = conv_macs, .stores_fresh_din = 1,
                              .folded_floats = rg_conv_folded_floats, .fold = rg_conv_fold};
