/* Inverted dropout: in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p);
 * identity in evaluation. The mask of image n is drawn from the stream keyed
 * by (seed, step, node * 2^20 + n), so it is recomputed identically in the
 * backward pass instead of being stored, and does not depend on threads. */
#include "ops/op.h"
#include "regain/rng.h"

#include <string.h>

static void apply(const rg_op_call *c, const float *src, float *dst, int accumulate)
{
    rg_shape s = rg_out_shape(c);
    size_t per = (size_t)s.h * s.w * s.c;
    float p = c->node->a.dropout.p, keep_scale = 1.0f / (1.0f - p);
    if (!c->ctx->training || p == 0.0f) {
        size_t count = per * (size_t)s.n;
        if (accumulate)
            for (size_t i = 0; i < count; i++) dst[i] += src[i];
        else
            memcpy(dst, src, count * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        rg_rng r = rg_rng_keyed(c->ctx->seed, c->ctx->step, ((uint64_t)c->index << 20) + (uint64_t)n);
        const float *a = src + (size_t)n * per;
        float *d = dst + (size_t)n * per;
        for (size_t i = 0; i < per; i++) {
            float m = rg_rng_uniform(&r) >= p ? keep_scale : 0.0f;
            if (accumulate)
                d[i] += a[i] * m;
            else
                d[i] = a[i] * m;
        }
    }
}

static void dropout_forward(const rg_op_call *c) { apply(c, rg_in(c, 0), rg_out(c), 0); }
static void dropout_backward(const rg_op_call *c) { apply(c, rg_dout(c), rg_din(c, 0), 1); }

const rg_op_def rg_op_dropout = {.name = "dropout", .forward = dropout_forward, .backward = dropout_backward};
