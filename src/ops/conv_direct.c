/* Dense convolutions run direct: the input is zero-padded once per image
 * and the kernels' conv_forward (an implicit GEMM, kernels/conv.inc) walks
 * the taps at the stride, with no column buffer. The weight gradient has
 * its own kernel, summed per group of images and then over the groups in
 * order.
 *
 * The input gradient is split by the stride's phases: the input rows ih
 * with (ih + pad) mod s = r receive only the kernel rows kh = r, r + s, ...
 * (and so for columns), from output rows q, q - 1, ..., where ih = s q -
 * pad + r. Each phase (rh, rw) is therefore a stride-1 convolution of the
 * padded output gradient with those taps of the weight, flipped: no
 * multiply by an inserted zero. With stride 1 there is one phase, the
 * whole flipped weight, written straight into the input gradient; with a
 * larger stride each phase goes through a per-thread buffer into its rows
 * and columns of the input gradient.
 *
 * The forward pass and the input gradient of a 3x3, stride-1, padding-1
 * convolution of 16 channels or more run by Winograd F(2x2, 3x3) instead
 * (rg_conv_is_wino): per image the tiles are transformed (kernels'
 * wino_input), multiplied plane by plane by the transformed weight
 * (gemm_nn), and transformed back (wino_output). */
#include "core/parallel.h"
#include "ops/bn.h"
#include "ops/conv.h"

#include <omp.h>
#include <string.h>

#define WGRAD_GROUP 8 /* images summed into one weight-gradient partial */
#define WINO_FLOATS ((size_t)160 << 10) /* a thread's transformed tiles, input and output: 640 KiB, in L2 */
#define MAX_STRIDE RG_CONV_DIRECT_MAX_STRIDE

/* One dimension's phase r: j taps (kernel index r + s (j - 1 - t) for tap
 * t of the flipped sub-kernel), outputs q0 .. q0 + n - 1 (input index s q
 * - pad + r). */
typedef struct {
    int32_t taps, q0, n;
} phase;

static phase phase_of(int32_t in, int32_t k, int32_t s, int32_t pad, int32_t r)
{
    phase p = {r < k ? (k - r + s - 1) / s : 0, pad >= r ? (pad - r + s - 1) / s : 0, 0};
    /* s * (the last q) at most; when it is >= 0, last / s >= q0 - 1 (pad >= r)
     * or q0 = 0 (pad < r), so n is never negative */
    int32_t last = in - 1 + pad - r;
    p.n = last < 0 ? 0 : last / s - p.q0 + 1;
    return p;
}

typedef struct {
    rg_conv_geom fwd; /* forward */
    int32_t n, s;
    int32_t top, left, hp, wp; /* the output gradient's padding and padded size */
    phase ph[MAX_STRIDE], pw[MAX_STRIDE];
    size_t xp, dyp, kc, slot;  /* floats: padded input, padded output gradient (per image), weight, phase buffer */
    int32_t tiles_w, tiles, wino; /* by Winograd F(2x2, 3x3): the tile grid, tiles at a time (0: direct) */
} direct_plan;

static direct_plan direct_geometry(const rg_graph *g, const rg_node *n, int32_t batch)
{
    const rg_conv_attr *a = &n->a.conv;
    rg_shape x = g->values[n->in[0]].shape, y = g->values[n->out].shape;
    direct_plan d;
    memset(&d, 0, sizeof d);
    d.n = batch;
    d.s = a->stride;
    d.fwd = (rg_conv_geom){x.h + 2 * a->pad, x.w + 2 * a->pad, x.c, y.h, y.w, a->cout, a->kh, a->kw, a->stride};
    /* phase r reads output-gradient rows q0 - taps + 1 .. q0 + n - 1:
     * enough padding above and below for every phase */
    int32_t bottom = 0, right = 0, most_h = 0, most_w = 0;
    for (int32_t r = 0; r < d.s; r++) { /* d.s <= MAX_STRIDE: rg_conv_is_direct */
        phase h = d.ph[r] = phase_of(x.h, a->kh, d.s, a->pad, r), w = d.pw[r] = phase_of(x.w, a->kw, d.s, a->pad, r);
        if (h.taps > 0 && h.taps - 1 - h.q0 > d.top) d.top = h.taps - 1 - h.q0;
        if (w.taps > 0 && w.taps - 1 - w.q0 > d.left) d.left = w.taps - 1 - w.q0;
        if (h.q0 + h.n - y.h > bottom) bottom = h.q0 + h.n - y.h;
        if (w.q0 + w.n - y.w > right) right = w.q0 + w.n - y.w;
        if (h.n > most_h) most_h = h.n;
        if (w.n > most_w) most_w = w.n;
    }
    d.hp = d.top + y.h + bottom;
    d.wp = d.left + y.w + right;
    d.xp = (size_t)d.fwd.hp * d.fwd.wp * x.c;
    d.dyp = (size_t)d.hp * d.wp * a->cout;
    d.kc = (size_t)a->kh * a->kw * x.c * a->cout;
    d.slot = d.s > 1 ? (size_t)most_h * most_w * x.c : 0;
    /* Winograd: as many tiles at a time as keep them in L2 (for the
     * benchmark networks, a whole image or half one) */
    if (rg_conv_is_wino(g, n)) {
        d.tiles_w = (y.w + 1) / 2;
        d.tiles = d.tiles_w * ((y.h + 1) / 2);
        size_t fit = WINO_FLOATS / (16 * ((size_t)x.c + a->cout));
        d.wino = fit < 1 ? 1 : fit < (size_t)d.tiles ? (int32_t)fit : d.tiles;
    }
    return d;
}

/* Floats of a thread's Winograd tiles: input, then output, transformed. */
static size_t wino_floats(const direct_plan *d) { return (size_t)16 * d->wino * (d->fwd.cin + d->fwd.cout); }

/* weight [kh][kw][ci][co] | flipped weight, phase after phase (or the
 * Winograd weight over both) | weight-gradient partials | per thread: a
 * padded input image, a padded output-gradient image, a phase buffer or
 * the Winograd tiles */
static size_t slot_floats(const direct_plan *d)
{
    size_t wino = wino_floats(d); /* no phase buffer at stride 1, where the tiles are */
    return d->xp + d->dyp + (wino > d->slot ? wino : d->slot);
}

size_t rg_conv_direct_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    direct_plan d = direct_geometry(g, n, batch);
    size_t groups = (size_t)(batch + WGRAD_GROUP - 1) / WGRAD_GROUP;
    return 2 * d.kc + groups * d.kc + rg_conv_slots_floats(g, slot_floats(&d));
}

/* The first per-thread buffer in a call's scratch (the layout above, for
 * the planned batch). */
static float *slots_of(const rg_op_call *call, const direct_plan *d)
{
    return call->scratch + (2 + (size_t)(d->n + WGRAD_GROUP - 1) / WGRAD_GROUP) * d->kc;
}

/* dst = an h x w x c image with `top` and `left` rows/columns of zeros
 * before and the rest of the padded size hp x wp after: rows of src, or,
 * fed by batch norm `feed` (rg_node.bn_feed, training), rows row0 ... of
 * its chain output act(bn(x)) computed straight into place, so that output
 * is never stored. One image, just before a kernel reads it: padding the
 * whole batch first measured 7% of a resnet20 training step, the copies
 * going out to memory and back. */
static void pad_image(rg_graph *g, int32_t feed, size_t row0, const float *src, int32_t h, int32_t w, int32_t c,
                      int32_t hp, int32_t wp, int32_t top, int32_t left, float *dst)
{
    int32_t right = wp - w - left, bottom = hp - h - top;
    /* zeros only where the image is not: whole rows above and below, the
     * columns left and right of each row */
    memset(dst, 0, (size_t)top * wp * c * sizeof(float));
    memset(dst + (size_t)(top + h) * wp * c, 0, (size_t)bottom * wp * c * sizeof(float));
    for (int32_t r = 0; r < h; r++) {
        float *row = dst + (size_t)(r + top) * wp * c;
        memset(row, 0, (size_t)left * c * sizeof(float));
        if (feed) rg_bn_feed_apply(g, feed, row0 + (size_t)r * w, (size_t)w, row + (size_t)left * c);
        else memcpy(row + (size_t)left * c, src + (size_t)r * w * c, (size_t)w * c * sizeof(float));
        memset(row + (size_t)(left + w) * c, 0, (size_t)right * c * sizeof(float));
    }
}

/* The padded input image i. */
static void pad_input(const rg_op_call *call, int32_t feed, const direct_plan *d, int32_t i, float *xp)
{
    rg_shape xs = rg_in_shape(call, 0);
    int32_t pad = call->node->a.conv.pad;
    const float *x = feed ? NULL : rg_in(call, 0) + (size_t)i * xs.h * xs.w * xs.c;
    pad_image(call->g, feed, (size_t)i * xs.h * xs.w, x, xs.h, xs.w, xs.c, d->fwd.hp, d->fwd.wp, pad, pad, xp);
}

/* G g G^T, G as in kernels/winograd_ref.c; each output channel's row of
 * every plane written in turn. */
void rg_conv_wino_weight(const float *w, int32_t cin, int32_t cout, int flip, float *u)
{
    size_t plane = (size_t)cin * cout;
    for (int32_t co = 0; co < cout; co++)
        for (int32_t ci = 0; ci < cin; ci++) {
            float g[3][3], t[4][3];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j] = flip ? w[(((size_t)co * 3 + 2 - i) * 3 + 2 - j) * cin + ci]
                                   : w[(((size_t)co * 3 + i) * 3 + j) * cin + ci];
            for (int j = 0; j < 3; j++) { /* G g */
                t[0][j] = g[0][j];
                t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
                t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
                t[3][j] = g[2][j];
            }
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]),
                              t[i][2]};
                size_t at = flip ? (size_t)co * cin + ci : (size_t)ci * cout + co;
                for (int j = 0; j < 4; j++) u[(size_t)(i * 4 + j) * plane + at] = r[j];
            }
        }
}

/* One padded image (the forward's input, cin channels in and cout out, or
 * the input gradient's padded output gradient, the other way round) by
 * Winograd: tiles transformed, 16 matrix products of (tiles x cin) by
 * (cin x cout), transformed back with bias and activation, or added. */
static void wino_image(const direct_plan *d, const float *xp, int32_t cin, int32_t cout, const float *u,
                       int accumulate, const float *bias, rg_act act, float *buf, float *y)
{
    const rg_kernel_table *k = rg_kernels();
    for (int32_t t0 = 0; t0 < d->tiles; t0 += d->wino) {
        int32_t nt = d->tiles - t0 < d->wino ? d->tiles - t0 : d->wino;
        float *v = buf, *m = buf + (size_t)16 * nt * cin;
        k->wino_input(xp, d->fwd.hp, d->fwd.wp, cin, d->tiles_w, t0, nt, v);
        for (int xi = 0; xi < 16; xi++)
            k->gemm_nn(nt, cout, cin, v + (size_t)xi * nt * cin, cin, u + (size_t)xi * cin * cout, cout,
                       m + (size_t)xi * nt * cout, cout, 0, NULL, RG_ACT_NONE);
        k->wino_output(m, d->tiles_w, t0, nt, d->fwd.ho, d->fwd.wo, cout, accumulate, bias, act, y);
    }
}

typedef struct {
    const rg_op_call *call;
    const conv_out *o;
    const direct_plan *d;
    const float *u, *wt;
    float *slots;
    size_t per, yi;
    int32_t cin, bn, feed;
} forward_pass;

static void forward_image(void *ctx, int32_t i, int thread)
{
    const forward_pass *f = ctx;
    const direct_plan *d = f->d;
    const conv_out *o = f->o;
    float *xp = f->slots + (size_t)thread * f->per, *y = o->y + i * f->yi;
    pad_input(f->call, f->feed, d, i, xp);
    if (d->wino) wino_image(d, xp, f->cin, f->call->node->a.conv.cout, f->u, 0, o->bias, o->act, xp + d->xp + d->dyp, y);
    else rg_kernels()->conv_forward(&d->fwd, xp, f->wt, y, 0, o->bias, o->act);
    if (f->bn) rg_bn_take_moments(f->call->g, f->bn, i, y);
}

void rg_conv_direct_forward(const rg_op_call *call, const conv_out *o)
{
    const rg_conv_attr *a = &call->node->a.conv;
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    direct_plan d = direct_geometry(call->g, call->node, call->g->planned_batch);
    size_t per = slot_floats(&d);
    float *wt = call->scratch, *slots = slots_of(call, &d);
    int32_t K = a->kh * a->kw * xs.c;
    /* OHWI [co][kh][kw][ci] -> [kh][kw][ci][co], or the Winograd weight
     * (16 planes: room for it in the weight's and the flipped weight's) */
    const float *u = o->wino ? o->wino : wt;
    if (d.wino && !o->wino) rg_conv_wino_weight(o->w, xs.c, a->cout, 0, wt);
    else if (!d.wino)
        for (int32_t co = 0; co < a->cout; co++)
            for (int32_t t = 0; t < K; t++) wt[(size_t)t * a->cout + co] = o->w[(size_t)co * K + t];
    size_t yi = (size_t)ys.h * ys.w * ys.c;
    /* paired with a batch norm (ops/bn.h): each image's moments while it is in cache */
    int32_t bn = rg_bn_pair_active(call->g, call->ctx, call->node->bn_pair) ? call->node->bn_pair : 0;
    int32_t feed = rg_bn_pair_active(call->g, call->ctx, call->node->bn_feed) ? call->node->bn_feed : 0;
    forward_pass f = {call, o, &d, u, wt, slots, per, yi, xs.c, bn, feed};
    rg_parallel_for(xs.n, rg_conv_slots(call->g), RG_SCHEDULE_STATIC, forward_image, &f);
}

/* Flipped taps of each phase (rh, rw), one after the other from wf:
 * wf[th][tw][co][ci] = w[co][rh + s (jh - 1 - th)][rw + s (jw - 1 - tw)][ci];
 * at[rh s + rw] the phase's offset. */
static void flip_phases(const direct_plan *d, const rg_conv_attr *a, int32_t cin, const float *w, float *wf,
                        size_t *at)
{
    int32_t s = d->s, cout = a->cout;
    size_t used = 0;
    for (int32_t rh = 0; rh < s; rh++)
        for (int32_t rw = 0; rw < s; rw++) {
            int32_t jh = d->ph[rh].taps, jw = d->pw[rw].taps;
            at[rh * s + rw] = used;
            for (int32_t th = 0; th < jh; th++)
                for (int32_t tw = 0; tw < jw; tw++) {
                    int32_t kh = rh + s * (jh - 1 - th), kw = rw + s * (jw - 1 - tw);
                    float *dst = wf + used + (size_t)(th * jw + tw) * cout * cin;
                    for (int32_t co = 0; co < cout; co++)
                        memcpy(dst + (size_t)co * cin, w + (((size_t)co * a->kh + kh) * a->kw + kw) * cin,
                               (size_t)cin * sizeof(float));
                }
            used += (size_t)jh * jw * cout * cin;
        }
}

/* One image's input gradient from its padded output gradient dyp, phase by
 * phase (buf: the phase buffer, stride > 1). */
static void input_grad(const direct_plan *d, const rg_conv_attr *a, rg_shape xs, const float *dyp, const float *wf,
                       const size_t *at, int accumulate, float *buf, float *dx)
{
    const rg_kernel_table *k = rg_kernels();
    int32_t s = d->s, cin = xs.c, cout = a->cout;
    for (int32_t rh = 0; rh < s; rh++)
        for (int32_t rw = 0; rw < s; rw++) {
            phase p = d->ph[rh], q = d->pw[rw];
            if (p.n == 0 || q.n == 0) continue;
            int taps = p.taps > 0 && q.taps > 0;
            if (!taps && accumulate) continue; /* no tap reaches these positions */
            if (taps) {
                rg_conv_geom geo = {d->hp, d->wp, cout, p.n, q.n, cin, p.taps, q.taps, 1};
                size_t from = ((size_t)(p.q0 - p.taps + 1 + d->top) * d->wp + (q.q0 - q.taps + 1 + d->left)) * cout;
                if (s == 1) { /* one phase: every position, in order, straight into dx */
                    k->conv_forward(&geo, dyp + from, wf, dx, accumulate, NULL, RG_ACT_NONE);
                    return;
                }
                k->conv_forward(&geo, dyp + from, wf + at[rh * s + rw], buf, 0, NULL, RG_ACT_NONE);
            }
            /* the phase's positions of dx: every s-th row and column */
            int32_t ih0 = s * p.q0 - a->pad + rh, iw0 = s * q.q0 - a->pad + rw;
            for (int32_t u = 0; u < p.n; u++)
                for (int32_t v = 0; v < q.n; v++) {
                    float *dst = dx + ((size_t)(ih0 + s * u) * xs.w + iw0 + s * v) * cin;
                    const float *src = buf + ((size_t)u * q.n + v) * cin;
                    if (!taps) memset(dst, 0, (size_t)cin * sizeof(float));
                    else if (accumulate)
                        for (int32_t c = 0; c < cin; c++) dst[c] += src[c];
                    else memcpy(dst, src, (size_t)cin * sizeof(float));
                }
        }
}

void rg_conv_direct_backward(const rg_op_call *call)
{
    const rg_conv_attr *a = &call->node->a.conv;
    const rg_kernel_table *k = rg_kernels();
    rg_shape xs = rg_in_shape(call, 0), ys = rg_out_shape(call);
    direct_plan d = direct_geometry(call->g, call->node, call->g->planned_batch);
    int32_t N = xs.n, K = a->kh * a->kw * xs.c, groups = (N + WGRAD_GROUP - 1) / WGRAD_GROUP;
    size_t per = slot_floats(&d), xi = (size_t)xs.h * xs.w * xs.c, yi = (size_t)ys.h * ys.w * ys.c;
    float *wf = call->scratch + d.kc, *part = wf + d.kc;
    float *slots = slots_of(call, &d);
    const float *w = rg_param_data(call, 0), *dy = rg_dout(call);
    float *dx = rg_din_wanted(call, 0), *dw = rg_param_grad(call, 0);
    int32_t feed = rg_bn_pair_active(call->g, call->ctx, call->node->bn_feed) ? call->node->bn_feed : 0;
    size_t at[MAX_STRIDE * MAX_STRIDE];
    /* the input gradient's weight: flipped phase by phase, or by Winograd
     * (its 16 planes in the room of the forward's weight and the flipped one) */
    float *u = call->scratch;
    if (dx && d.wino) rg_conv_wino_weight(w, xs.c, a->cout, 1, u);
    else if (dx) flip_phases(&d, a, xs.c, w, wf, at);
    int accumulate = dx && !rg_din_fresh(call, 0);
    /* Per group of images, each image padded into cache once: its share
     * of the group's weight-gradient partial, then its input gradient
     * (fed: then the feeding batch norm's gradient sums, while that
     * gradient, complete, is in cache). */
    int threads = rg_conv_slots(call->g);
#pragma omp parallel num_threads(threads)
    {
        float *xp = slots + (size_t)omp_get_thread_num() * per, *dyp = xp + d.xp, *buf = dyp + d.dyp;
#pragma omp for schedule(static)
        for (int32_t gi = 0; gi < groups; gi++) {
            float *pg = part + (size_t)gi * d.kc;
            memset(pg, 0, d.kc * sizeof(float));
            for (int32_t i = gi * WGRAD_GROUP; i < N && i < (gi + 1) * WGRAD_GROUP; i++) {
                pad_input(call, feed, &d, i, xp);
                k->conv_weight_grad(&d.fwd, xp, dy + i * yi, pg);
                if (!dx) continue;
                pad_image(call->g, 0, 0, dy + i * yi, ys.h, ys.w, ys.c, d.hp, d.wp, d.top, d.left, dyp);
                if (d.wino) wino_image(&d, dyp, a->cout, xs.c, u, accumulate, NULL, RG_ACT_NONE, buf, dx + i * xi);
                else input_grad(&d, a, xs, dyp, wf, at, accumulate, buf, dx + i * xi);
                if (feed && rg_bn_feed_takes_sums(call->g, feed, call->index))
                    rg_bn_feed_grad_sums(call->g, feed, i, dx + i * xi);
            }
        }
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
}
