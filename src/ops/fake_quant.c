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
 * to and never observes. */
#include "ops/op.h"
#include "regain/fake_quant.h"
#include "regain/qat.h"

#include <math.h>
#include <string.h>

static float *range_of(const rg_op_call *c)
{
    return c->g->buffer_data + c->g->buffers[c->node->buffer[0]].offset;
}

static void observe(const rg_op_call *c, const float *x, size_t n)
{
    const rg_node *node = c->node;
    float *r = range_of(c);
    if (!(node->a.fq.observe || r[2] == 0.0f) || n == 0) return;
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) { /* min and max do not depend on the order */
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    if (!isfinite(lo) || !isfinite(hi)) return; /* a diverged batch must not poison the range */
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
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = p.scale * (float)(rg_q_quantize_value(x[i], p, qmin, qmax) - p.zero_point);
}

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
    float *d = c->scratch;
    if (node->a.fq.lsq && !node->a.fq.observe && node->a.fq.tie < 0) {
        double ds = 0.0;
        size_t per = n / (size_t)(s.n > 0 ? s.n : 1);
        rg_fq_backward_lsq(x, dy, n, p, qmin, qmax, rg_fq_lsq_grad_scale(per, qmax), d, &ds);
        rg_param_grad(c, 0)[0] += (float)ds;
    } else {
        rg_fq_backward_ste(x, dy, n, p, qmin, qmax, d);
    }
    if (dx)
        for (size_t i = 0; i < n; i++) dx[i] += d[i];
}

static size_t fq_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    rg_shape s = g->values[n->out].shape;
    s.n = batch;
    return rg_shape_count(s);
}

const rg_op_def rg_op_fake_quant = {.name = "fake_quant", .forward = fq_forward, .backward = fq_backward,
                                    .scratch_floats = fq_scratch};
