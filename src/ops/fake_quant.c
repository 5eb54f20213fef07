/* Fake quantization of an activation for QAT (regain/qat.h):
 *
 *   y = s * (clamp(round(x / s) + z, qmin, qmax) - z)
 *
 * with the parameters of rg_qat_node_params. In training, while the node
 * observes (a.fq.observe, or before it has seen anything), the batch's
 * extremes first move the range buffer (lo, hi, seen, zero point) by
 * moving-average min/max: the first batch sets it, later ones move it by
 * the averaging constant c (m += c * (batch - m)). With LSQ the scale
 * parameter follows the observer while it observes and is learned after.
 * Backward: straight-through (dx += dy where not clipped); LSQ adds the
 * step-size gradient times 1 / sqrt(N * qmax), N the values per image.
 * A tied node (pools, clamps) uses the parameters of the node it is tied
 * to and never observes.
 *
 * Integer-exact requantization (a.fq.in_fq >= 0, after a convolution or
 * linear chain): the integer model computes its output code as
 * MBQM(acc, M[c]) + z with acc the int32 accumulator and M[c] = s_in s_w[c]
 * / s, which rounds twice and can differ from round(x / s) + z by one code
 * even far from a tie when M is coarse (4-bit weights). Since the float
 * value is x = s_in s_w[c] acc up to float rounding (weights, bias and
 * input are on their grids), the node recovers acc = round(x / (s_in
 * s_w[c])) and applies the very same fixed-point multiplier and the fused
 * activation's clamp, so its codes are the integer model's. */
#include "kernels/kernels.h"
#include "ops/op.h"
#include "quant/qround.h"
#include "regain/fake_quant.h"
#include "regain/quant.h"
#include "regain/quant_kernels.h"
#include "regain/qat.h"

#include <math.h>
#include <string.h>

#define PIECE 4096 /* values (or rows of values) per parallel piece */

static float *range_of(const rg_op_call *c)
{
    return c->g->buffer_data + c->g->buffers[c->node->buffer[0]].offset;
}

static void observe(const rg_op_call *c, const float *x, size_t n)
{
    const rg_node *node = c->node;
    float *r = range_of(c);
    if (!(node->a.fq.observe || r[2] == 0.0f) || n == 0) return;
    /* min and max do not depend on the order: pieces on any threads */
    const rg_kernel_table *k = rg_kernels();
    size_t pieces = (n + PIECE - 1) / PIECE;
    float lo = x[0], hi = x[0];
    int nan = 0;
#pragma omp parallel for schedule(static) reduction(min : lo) reduction(max : hi) reduction(| : nan)
    for (size_t p = 0; p < pieces; p++) {
        float a, b;
        k->minmax(x + p * PIECE, n - p * PIECE < PIECE ? n - p * PIECE : PIECE, &a, &b);
        nan |= a != a;
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    /* a diverged batch must not poison the range */
    if (nan || !isfinite(lo) || !isfinite(hi)) return;
    if (r[2] == 0.0f) {
        r[0] = lo;
        r[1] = hi;
        r[2] = 1.0f;
    } else {
        float m = node->a.fq.momentum;
        r[0] += m * (lo - r[0]);
        r[1] += m * (hi - r[1]);
    }
    rg_qparams p;
    rg_error e;
    if (rg_q_params_from_range(r[0], r[1], node->a.fq.qmin, node->a.fq.qmax, &p, &e) == RG_OK) {
        r[3] = (float)p.zero_point;
        if (node->a.fq.lsq) rg_param_data(c, 0)[0] = p.scale;
    }
}

/* The integer model's requantization of a convolution or linear output
 * (see the top). Returns 0 when it does not apply (no input range or
 * weight scales yet), leaving y to plain fake quantization. */
static int integer_exact(const rg_op_call *c, rg_qparams p, int32_t C, float *y)
{
    const rg_graph *g = c->g;
    const rg_node *node = c->node;
    rg_qparams in;
    if (node->a.fq.in_fq < 0 || node->buffer[1] < 0 || !rg_qat_node_params(g, node->a.fq.in_fq, &in)) return 0;
    const float *ws = g->buffer_data + g->buffers[node->buffer[1]].offset;
    if (!(ws[0] > 0.0f)) return 0;
    int32_t mult[C], shift[C], lo, hi;
    double inv_acc[C];
    rg_error e;
    if (rg_q_requant_params(in.scale, ws, C, p.scale, C, mult, shift, &e)) return 0;
    /* float product, as the int32 bias; x is acc_scale times an integer up
     * to the float rounding of the convolution's sums, so multiplying by
     * the reciprocal (a division costs 15-20 cycles per value) recovers the
     * same integer unless x / acc_scale lies within a double's rounding of
     * a half, where the float sums have already decided nothing */
    for (int32_t k = 0; k < C; k++) inv_acc[k] = 1.0 / (double)(in.scale * ws[k]);
    rg_op_type prod = g->nodes[g->values[node->in[0]].producer].op;
    rg_q_activation act = prod == RG_OP_RELU6 ? RG_Q_ACT_RELU6 : prod == RG_OP_RELU ? RG_Q_ACT_RELU : RG_Q_ACT_NONE;
    if (rg_q_activation_range(act, p, &lo, &hi, &e)) return 0;
    const float *x = rg_in(c, 0);
    size_t rows = rg_shape_count(rg_out_shape(c)) / (size_t)C, per = PIECE / (size_t)C + 1;
    const rg_fq_requant q = {inv_acc, mult, shift, p.zero_point, lo, hi, p.scale};
    const rg_kernel_table *k = rg_kernels();
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r += per)
        k->fq_requant(x + r * (size_t)C, rows - r < per ? rows - r : per, C, &q, y + r * (size_t)C);
    return 1;
}

/* a / b rounded half away from zero (b > 0), as the integer pooling */
static int64_t div_round(int64_t a, int64_t b) { return a > 0 ? (a + b / 2) / b : (a - b / 2) / b; }

/* After an average pool (a tied node), the integer model rounds the mean of
 * the raw int8 codes, half away from zero: at exact halves that differs from
 * round(mean(q - z)) + z whenever z moves the sign. The window's sum of
 * codes is recovered exactly from the float mean (its inputs are on the
 * grid) and rounded the integer way. Returns 0 when the producer is not an
 * average pool. */
static int avgpool_exact(const rg_op_call *c, rg_qparams p, float *y)
{
    const rg_graph *g = c->g;
    const rg_node *pool = &g->nodes[g->values[c->node->in[0]].producer];
    if (pool->op != RG_OP_AVGPOOL) return 0;
    rg_shape in = g->values[pool->in[0]].shape, out = rg_out_shape(c);
    int32_t k = pool->a.pool.k, st = pool->a.pool.stride, pad = pool->a.pool.pad;
    int32_t qmin = c->node->a.fq.qmin, qmax = c->node->a.fq.qmax;
    const float *x = rg_in(c, 0);
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oh = 0; oh < out.h; oh++)
            for (int32_t ow = 0; ow < out.w; ow++) {
                int32_t hs = oh * st - pad, ws = ow * st - pad;
                int32_t h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
                int32_t h1 = hs + k > in.h ? in.h : hs + k, w1 = ws + k > in.w ? in.w : ws + k;
                int64_t count = (int64_t)(h1 - h0) * (w1 - w0);
                size_t at = (((size_t)n * out.h + oh) * out.w + ow) * (size_t)out.c;
                for (int32_t ch = 0; ch < out.c; ch++) {
                    int64_t sum = (int64_t)llround((double)x[at + ch] / (double)p.scale * (double)count) +
                                  (int64_t)p.zero_point * count;
                    int64_t q = count > 0 ? div_round(sum, count) : p.zero_point;
                    q = q < qmin ? qmin : q > qmax ? qmax : q;
                    y[at + ch] = p.scale * (float)(q - p.zero_point);
                }
            }
    return 1;
}

/* The parameters of the fake-quant node that value v comes from (through
 * max pools and dropout); 0 if none. */
static int source_params(const rg_graph *g, int32_t v, rg_qparams *p)
{
    while (v >= 0) {
        int32_t node = g->values[v].producer;
        const rg_node *n = &g->nodes[node];
        if (n->op == RG_OP_FAKE_QUANT) return rg_qat_node_params(g, node, p);
        if (n->op != RG_OP_MAXPOOL && n->op != RG_OP_DROPOUT) return 0;
        v = n->in[0];
    }
    return 0;
}

/* After a global average pool, the integer model computes
 * div_round(MBQM(sum(q - z_in), s_in / s), H*W) + z: two roundings. The sum
 * is recovered exactly from the float mean and rounded the same way.
 * Returns 0 when the producer is not a global average pool. */
static int gap_exact(const rg_op_call *c, rg_qparams p, float *y)
{
    const rg_graph *g = c->g;
    const rg_node *gap = &g->nodes[g->values[c->node->in[0]].producer];
    if (gap->op != RG_OP_GAP) return 0;
    rg_qparams in;
    int32_t mult, shift;
    rg_error e;
    if (!source_params(g, gap->in[0], &in) ||
        rg_q_multiplier((double)in.scale / (double)p.scale, &mult, &shift, &e) != RG_OK)
        return 0;
    rg_shape is = g->values[gap->in[0]].shape, out = rg_out_shape(c);
    int64_t hw = (int64_t)is.h * is.w;
    int32_t qmin = c->node->a.fq.qmin, qmax = c->node->a.fq.qmax;
    const float *x = rg_in(c, 0);
    size_t n = rg_shape_count(out);
    for (size_t i = 0; i < n; i++) {
        double sum = rg_q_round((double)x[i] / (double)in.scale * (double)hw);
        sum = sum > 2147483647.0 ? 2147483647.0 : sum < -2147483647.0 ? -2147483647.0 : sum;
        int64_t a = div_round(rg_q_mul_by_multiplier((int32_t)sum, mult, shift), hw) + p.zero_point;
        a = a < qmin ? qmin : a > qmax ? qmax : a;
        y[i] = p.scale * (float)(a - p.zero_point);
    }
    return 1;
}

/* After an add, the integer model rescales both inputs with 20 bits of
 * headroom and rounds three times (regain/quant_kernels.h). The inputs are
 * on their grids, so their codes are exact: the node runs the integer add
 * itself on them (kernels' fq_add). Returns 0 when the producer
 * is not an add or an input has no parameters yet. */
static int add_exact(const rg_op_call *c, rg_qparams p, float *y)
{
    const rg_graph *g = c->g;
    const rg_node *add = &g->nodes[g->values[c->node->in[0]].producer];
    if (add->op != RG_OP_ADD) return 0;
    rg_qparams a, b;
    rg_q_add_params ap;
    rg_error e;
    if (!source_params(g, add->in[0], &a) || !source_params(g, add->in[1], &b) ||
        rg_q_add_prepare(a, b, p, RG_Q_ACT_NONE, &ap, &e) != RG_OK)
        return 0;
    size_t n = rg_shape_count(rg_out_shape(c));
    const float *xa = rg_graph_act(c->g, add->in[0]), *xb = rg_graph_act(c->g, add->in[1]);
    const rg_fq_add q = {a.scale, b.scale, p.scale, ap};
    const rg_kernel_table *k = rg_kernels();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += PIECE) k->fq_add(xa + i, xb + i, n - i < PIECE ? n - i : PIECE, &q, y + i);
    return 1;
}

static void fq_forward(const rg_op_call *c)
{
    rg_shape s = rg_out_shape(c);
    size_t n = rg_shape_count(s);
    const float *x = rg_in(c, 0);
    float *y = rg_out(c);
    if (c->ctx->training && c->node->a.fq.tie < 0) observe(c, x, n);
    rg_qparams p;
    if (!rg_qat_node_params(c->g, c->index, &p)) {
        memcpy(y, x, n * sizeof(float));
        return;
    }
    int32_t qmin = c->node->a.fq.qmin, qmax = c->node->a.fq.qmax;
    if (integer_exact(c, p, s.c, y)) return;
    if (c->node->a.fq.tie >= 0 && avgpool_exact(c, p, y)) return;
    if (c->node->a.fq.tie < 0 && (gap_exact(c, p, y) || add_exact(c, p, y))) return;
    const rg_kernel_table *k = rg_kernels();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += PIECE)
        k->fq_forward(x + i, n - i < PIECE ? n - i : PIECE, p.scale, p.zero_point, qmin, qmax, y + i);
}

static size_t lsq_part_at(size_t n) { return (n + 1) & ~(size_t)1; }

static void fq_backward(const rg_op_call *c)
{
    rg_shape s = rg_out_shape(c);
    size_t n = rg_shape_count(s);
    const float *x = rg_in(c, 0), *dy = rg_dout(c);
    float *dx = rg_din(c, 0);
    rg_qparams p;
    if (!rg_qat_node_params(c->g, c->index, &p)) {
        if (dx)
            for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    const rg_node *node = c->node;
    int32_t qmin = node->a.fq.qmin, qmax = node->a.fq.qmax;
    if (node->a.fq.lsq && !node->a.fq.observe && node->a.fq.tie < 0) {
        /* pieces on any threads, their step-size sums added in piece order */
        float *d = c->scratch, g = rg_fq_lsq_grad_scale(n / (size_t)(s.n > 0 ? s.n : 1), qmax);
        size_t pieces = (n + PIECE - 1) / PIECE;
        double *part = (double *)(c->scratch + lsq_part_at(n)), ds = 0.0;
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < pieces; k++) {
            size_t i = k * PIECE, m = n - i < PIECE ? n - i : PIECE;
            part[k] = 0.0;
            rg_fq_backward_lsq(x + i, dy + i, m, p, qmin, qmax, g, d + i, &part[k]);
            if (dx)
                for (size_t j = i; j < i + m; j++) dx[j] += d[j];
        }
        for (size_t k = 0; k < pieces; k++) ds += part[k];
        rg_param_grad(c, 0)[0] += (float)ds;
        return;
    }
    if (!dx) return;
    const rg_kernel_table *k = rg_kernels();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += PIECE)
        k->fq_ste(x + i, dy + i, n - i < PIECE ? n - i : PIECE, p.scale, p.zero_point, qmin, qmax, dx + i);
}

/* LSQ's backward gathers its input gradient in the scratch first, then
 * (8-byte aligned) each piece's step-size sum. */
static size_t fq_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    rg_shape s = g->values[n->out].shape;
    s.n = batch;
    size_t count = rg_shape_count(s);
    return n->a.fq.lsq ? lsq_part_at(count) + 2 * ((count + PIECE - 1) / PIECE + 1) : 0;
}

const rg_op_def rg_op_fake_quant = {.name = "fake_quant", .forward = fq_forward, .backward = fq_backward,
                                    .scratch_floats = fq_scratch};
