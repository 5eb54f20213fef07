/* Fully connected layer over the flattened image: x (N, F) with F = H*W*C in
 * NHWC order, weight (Out, F), optional bias (Out).
 *   y = x W^T + b      dx += dy W      dW += dy^T x      db += sum_n dy
 */
#include "ops/op.h"
#include "kernels/gemm.h"

static uint64_t linear_macs(const rg_graph *g, const rg_node *n)
{
    rg_shape x = g->values[n->in[0]].shape;
    return (uint64_t)x.h * x.w * x.c * n->a.linear.out_features;
}

static size_t linear_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    rg_shape x = g->values[n->in[0]].shape;
    return rg_gemm_tn_acc_scratch(n->a.linear.out_features, x.h * x.w * x.c, batch);
}

static void linear_forward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0);
    int32_t F = xs.h * xs.w * xs.c, O = c->node->a.linear.out_features, N = xs.n;
    float *y = rg_out(c);
    rg_gemm_rows(1, N, O, F, rg_in(c, 0), F, rg_param_data(c, 0), F, 0.0f, y, O);
    if (c->node->param[1] >= 0) {
        const float *b = rg_param_data(c, 1);
        for (int32_t n = 0; n < N; n++)
            for (int32_t o = 0; o < O; o++) y[(size_t)n * O + o] += b[o];
    }
}

static void linear_backward(const rg_op_call *c)
{
    rg_shape xs = rg_in_shape(c, 0);
    int32_t F = xs.h * xs.w * xs.c, O = c->node->a.linear.out_features, N = xs.n;
    const float *dy = rg_dout(c);
    rg_gemm_tn_acc(O, F, N, dy, O, rg_in(c, 0), F, rg_param_grad(c, 0), F, c->scratch);
    rg_gemm_rows(0, N, F, O, dy, O, rg_param_data(c, 0), F, rg_din_fresh(c, 0) ? 0.0f : 1.0f, rg_din(c, 0), F);
    if (c->node->param[1] >= 0) {
        float *db = rg_param_grad(c, 1);
        for (int32_t n = 0; n < N; n++)
            for (int32_t o = 0; o < O; o++) db[o] += dy[(size_t)n * O + o];
    }
}

const rg_op_def rg_op_linear = {.name = "linear", .forward = linear_forward, .backward = linear_backward,
                                .scratch_floats = linear_scratch, .macs = linear_macs, .stores_fresh_din = 1};
