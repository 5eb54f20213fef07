/* Batch normalization over the N*H*W positions of each channel (NHWC).
 *
 * Training: mean and biased variance from the batch normalize; the running
 * statistics move by `momentum` towards the batch mean and the UNBIASED
 * variance (PyTorch's convention). Evaluation: running statistics normalize.
 *
 *   xhat = (x - mean) * invstd,  y = gamma * xhat + beta
 *   backward (training), M = N*H*W:
 *   dgamma = sum(dy * xhat), dbeta = sum(dy)
 *   dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
 *
 * Statistics are summed in double, per image first (in parallel) and then
 * over images in order, so the result does not depend on the thread count.
 * saved = mean[C], invstd[C] from the forward pass.
 */
#include "ops/op.h"

#include <math.h>
#include <string.h>

static size_t bn_scratch(const rg_graph *g, const rg_node *n, int32_t batch)
{
    /* two doubles per (image, channel) */
    return (size_t)batch * g->values[n->out].shape.c * 4;
}

static size_t bn_saved(const rg_graph *g, const rg_node *n, int32_t batch)
{
    (void)batch;
    return (size_t)g->values[n->out].shape.c * 2;
}

/* Per-image channel sums, p0[n*C + c] and p1[n*C + c]:
 *   without b: sum (a - mean) and sum (a - mean)^2
 *   with b:    sum b and sum b * (a - mean)      (b = dy in the backward pass)
 * An image holds at most a few thousand positions, so float accumulators
 * lose nothing that matters here and keep the loop vectorized; images are
 * then summed in double, in order. */
static void per_image_sums(const float *a, const float *b, const float *mean, rg_shape s, double *p0, double *p1)
{
    size_t hw = (size_t)s.h * s.w;
    int32_t C = s.c;
#pragma omp parallel for schedule(static)
    for (int32_t n = 0; n < s.n; n++) {
        float f0[C], f1[C];
        for (int32_t c = 0; c < C; c++) f0[c] = f1[c] = 0.0f;
        const float *an = a + (size_t)n * hw * C;
        const float *bn = b ? b + (size_t)n * hw * C : NULL;
        for (size_t r = 0; r < hw; r++) {
            const float *ar = an + r * C;
            if (bn) {
                const float *br = bn + r * C;
                for (int32_t c = 0; c < C; c++) {
                    f0[c] += br[c];
                    f1[c] += br[c] * (ar[c] - mean[c]);
                }
            } else {
                for (int32_t c = 0; c < C; c++) {
                    float d = ar[c] - mean[c];
                    f0[c] += d;
                    f1[c] += d * d;
                }
            }
        }
        for (int32_t c = 0; c < C; c++) {
            p0[(size_t)n * C + c] = f0[c];
            p1[(size_t)n * C + c] = f1[c];
        }
    }
}

static void reduce_images(const double *part, int32_t N, int32_t C, double *out)
{
    for (int32_t c = 0; c < C; c++) out[c] = 0.0;
    for (int32_t n = 0; n < N; n++)
        for (int32_t c = 0; c < C; c++) out[c] += part[(size_t)n * C + c];
}

static void bn_forward(const rg_op_call *call)
{
    rg_shape s = rg_out_shape(call);
    int32_t C = s.c;
    const float *x = rg_in(call, 0), *gamma = rg_param_data(call, 0), *beta = rg_param_data(call, 1);
    float *y = rg_out(call), *rmean = rg_buffer_data(call, 0), *rvar = rg_buffer_data(call, 1);
    float *mean = call->saved, *invstd = call->saved + C;
    float eps = call->node->a.bn.eps;
    size_t M = (size_t)s.n * s.h * s.w;
    float scale[C > 0 ? C : 1], shift[C > 0 ? C : 1];

    if (call->ctx->training) {
        double *p0 = (double *)call->scratch, *p1 = p0 + (size_t)s.n * C;
        double sum[C > 0 ? C : 1], sq[C > 0 ? C : 1];
        float zero_mean[C > 0 ? C : 1];
        memset(zero_mean, 0, sizeof zero_mean);
        /* First the mean, then squared deviations from it (two passes keep the
         * variance accurate when |mean| >> std). The first pass's s1 is unused. */
        per_image_sums(x, NULL, zero_mean, s, p0, p1);
        reduce_images(p0, s.n, C, sum);
        for (int32_t c = 0; c < C; c++) mean[c] = (float)(sum[c] / (double)M);
        per_image_sums(x, NULL, mean, s, p0, p1);
        reduce_images(p0, s.n, C, sum);
        reduce_images(p1, s.n, C, sq);
        float m = call->node->a.bn.momentum;
        for (int32_t c = 0; c < C; c++) {
            /* sum[c] (deviations) is ~0; subtracting its square corrects the
             * rounding of mean (the "corrected two-pass" algorithm). */
            double var = (sq[c] - sum[c] * sum[c] / (double)M) / (double)M;
            if (var < 0) var = 0;
            invstd[c] = (float)(1.0 / sqrt(var + eps));
            double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
            rmean[c] = (1.0f - m) * rmean[c] + m * mean[c];
            rvar[c] = (1.0f - m) * rvar[c] + m * (float)unbiased;
        }
    } else {
        for (int32_t c = 0; c < C; c++) {
            mean[c] = rmean[c];
            invstd[c] = 1.0f / sqrtf(rvar[c] + eps);
        }
    }
    for (int32_t c = 0; c < C; c++) {
        scale[c] = gamma[c] * invstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < M; r++)
        for (int32_t c = 0; c < C; c++) y[r * C + c] = x[r * C + c] * scale[c] + shift[c];
}

static void bn_backward(const rg_op_call *call)
{
    rg_shape s = rg_out_shape(call);
    int32_t C = s.c;
    const float *x = rg_in(call, 0), *dy = rg_dout(call), *gamma = rg_param_data(call, 0);
    float *dx = rg_din(call, 0), *dgamma = rg_param_grad(call, 0), *dbeta = rg_param_grad(call, 1);
    const float *mean = call->saved, *invstd = call->saved + C;
    size_t M = (size_t)s.n * s.h * s.w;
    double *p0 = (double *)call->scratch, *p1 = p0 + (size_t)s.n * C;
    double sdy[C > 0 ? C : 1], sdyx[C > 0 ? C : 1];
    per_image_sums(x, dy, mean, s, p0, p1);
    reduce_images(p0, s.n, C, sdy);
    reduce_images(p1, s.n, C, sdyx);
    float k1[C > 0 ? C : 1], k2[C > 0 ? C : 1], k3[C > 0 ? C : 1];
    for (int32_t c = 0; c < C; c++) {
        double dg = sdyx[c] * invstd[c]; /* sum(dy * xhat) */
        dgamma[c] += (float)dg;
        dbeta[c] += (float)sdy[c];
        if (call->ctx->training) {
            /* dx = gamma*invstd*(dy - dbeta/M - xhat*dgamma/M), xhat = (x-mean)*invstd */
            k1[c] = gamma[c] * invstd[c];
            k2[c] = (float)(sdy[c] / (double)M);
            k3[c] = (float)(dg / (double)M) * invstd[c];
        } else {
            k1[c] = gamma[c] * invstd[c];
            k2[c] = 0.0f;
            k3[c] = 0.0f;
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < M; r++)
        for (int32_t c = 0; c < C; c++) {
            float xm = x[r * C + c] - mean[c];
            dx[r * C + c] += k1[c] * (dy[r * C + c] - k2[c] - xm * k3[c]);
        }
}

const rg_op_def rg_op_bn = {"bn", bn_forward, bn_backward, bn_scratch, bn_saved, NULL};
