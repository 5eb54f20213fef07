/* Elementwise add and multiply of two values.
 *
 *   add: y = a + b (same shape)                  da += dy, db += dy (a fresh gradient: a copy)
 *   mul: y = a * b, b same shape or (N,1,1,C)    da += dy * b
 *        (channel broadcast: the gate of a       db += dy * a, summed over
 *         squeeze-excitation block)                   H*W per image when broadcast
 */
#include "ops/op.h"

#include <string.h>

static void add_forward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1);
    float *y = rg_out(c);
    size_t count = rg_shape_count(rg_out_shape(c));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

static void add_backward(const rg_op_call *c)
{
    const float *dy = rg_dout(c);
    size_t count = rg_shape_count(rg_out_shape(c));
    for (int k = 0; k < 2; k++) {
        float *d = rg_din(c, k);
        if (rg_din_fresh(c, k)) {
            memcpy(d, dy, count * sizeof(float));
            continue;
        }
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) d[i] += dy[i];
    }
}

static int broadcast(const rg_op_call *c)
{
    rg_shape b = rg_in_shape(c, 1), y = rg_out_shape(c);
    return b.h * b.w == 1 && y.h * y.w != 1;
}

static void mul_forward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1);
    float *y = rg_out(c);
    rg_shape s = rg_out_shape(c);
    if (!broadcast(c)) {
        size_t count = rg_shape_count(s);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) y[i] = a[i] * b[i];
        return;
    }
    size_t hw = (size_t)s.h * s.w;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++)
        for (size_t r = 0; r < hw; r++) {
            size_t o = ((size_t)n * hw + r) * s.c;
            for (int32_t ch = 0; ch < s.c; ch++) y[o + ch] = a[o + ch] * b[(size_t)n * s.c + ch];
        }
}

static void mul_backward(const rg_op_call *c)
{
    const float *a = rg_in(c, 0), *b = rg_in(c, 1), *dy = rg_dout(c);
    float *da = rg_din(c, 0), *db = rg_din(c, 1);
    rg_shape s = rg_out_shape(c);
    if (!broadcast(c)) {
        size_t count = rg_shape_count(s);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++) {
            da[i] += dy[i] * b[i];
            db[i] += dy[i] * a[i];
        }
        return;
    }
    size_t hw = (size_t)s.h * s.w;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        float *dbn = db + (size_t)n * s.c;
        const float *bn = b + (size_t)n * s.c;
        for (size_t r = 0; r < hw; r++) {
            size_t o = ((size_t)n * hw + r) * s.c;
            for (int32_t ch = 0; ch < s.c; ch++) {
                da[o + ch] += dy[o + ch] * bn[ch];
                dbn[ch] += dy[o + ch] * a[o + ch];
            }
        }
    }
}

const rg_op_def rg_op_add = {.name = "add", .forward = add_forward, .backward = add_backward, .stores_fresh_din = 1};
const rg_op_def rg_op_mul = {.name = "mul", .forward = mul_forward, .backward = mul_backward};
