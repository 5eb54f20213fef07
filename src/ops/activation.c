/* Pointwise activations: ReLU, ReLU6, hard-swish, sigmoid.
 *
 *   relu:    y = max(x, 0)               dy/dx = [x > 0]
 *   relu6:   y = min(max(x, 0), 6)       dy/dx = [0 < x < 6]
 *   hswish:  y = x * relu6(x + 3) / 6    dy/dx = 0 (x < -3), 1 (x > 3), (2x + 3) / 6 otherwise
 *   sigmoid: y = 1 / (1 + e^-x)          dy/dx = y (1 - y)
 *
 * The derivative at the kinks follows PyTorch (relu: 0 at x = 0; hswish:
 * x/3 + 1/2 on [-3, 3]), so gradients match its goldens exactly. relu,
 * relu6 and hswish run through the kernel table (kernels/kernels.h); a relu
 * or relu6 right after batch norm is usually fused into it (graph/fuse.c)
 * and then never runs here.
 */
#include "ops/op.h"
#include "core/parallel.h"
#include "kernels/kernels.h"

#include <math.h>

/* Pieces of a flat array per thread: fixed size, so the split does not
 * depend on the thread count (not that an elementwise op would care). */
#define PIECE 16384

static rg_act act_of(rg_op_type op)
{
    switch (op) {
    case RG_OP_RELU: return RG_ACT_RELU;
    case RG_OP_RELU6: return RG_ACT_RELU6;
    case RG_OP_HSWISH: return RG_ACT_HSWISH;
    default: return RG_ACT_NONE;
    }
}

/* One piece of an activation's forward pass (relu, relu6, hswish, sigmoid). */
static void act_piece(void *ctx, size_t first, size_t count, int thread)
{
    (void)thread;
    const rg_op_call *c = ctx;
    const float *x = rg_in(c, 0);
    float *y = rg_out(c);
    if (c->node->op != RG_OP_SIGMOID) {
        rg_kernels()->act_forward(act_of(c->node->op), x + first, y + first, count);
        return;
    }
    for (size_t e = first; e < first + count; e++) y[e] = 1.0f / (1.0f + expf(-x[e]));
}

static void act_forward(const rg_op_call *c)
{
    rg_parallel_rows(rg_shape_count(rg_out_shape(c)), PIECE, 0, RG_SCHEDULE_STATIC, act_piece, (void *)c);
}

static void act_backward(const rg_op_call *c)
{
    const rg_kernel_table *k = rg_kernels();
    rg_act act = act_of(c->node->op);
    const float *x = rg_in(c, 0), *dy = rg_dout(c);
    float *dx = rg_din(c, 0);
    if (!dx) return;
    int store = rg_din_fresh(c, 0);
    size_t count = rg_shape_count(rg_out_shape(c)), pieces = (count + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pieces; p++) {
        size_t i = p * PIECE, n = count - i < PIECE ? count - i : PIECE;
        k->act_backward(act, x + i, dy + i, dx + i, n, store);
    }
}

const rg_op_def rg_op_relu = {.name = "relu", .forward = act_forward, .backward = act_backward, .stores_fresh_din = 1};
const rg_op_def rg_op_relu6 = {.name = "relu6", .forward = act_forward, .backward = act_backward,
                               .stores_fresh_din = 1};
const rg_op_def rg_op_hswish = {.name = "hswish", .forward = act_forward, .backward = act_backward,
                                .stores_fresh_din = 1};

static void sigmoid_backward(const rg_op_call *c)
{
    const float *y = rg_out(c), *dy = rg_dout(c);
    float *dx = rg_din(c, 0);
    if (!dx) return;
    size_t count = rg_shape_count(rg_out_shape(c));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

const rg_op_def rg_op_sigmoid = {.name = "sigmoid", .forward = act_forward, .backward = sigmoid_backward};
