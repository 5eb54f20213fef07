/* Pointwise activations: ReLU, ReLU6, hard-swish, sigmoid.
 *
 *   relu:    y = max(x, 0)               dy/dx = [x > 0]
 *   relu6:   y = min(max(x, 0), 6)       dy/dx = [0 < x < 6]
 *   hswish:  y = x * relu6(x + 3) / 6    dy/dx = 0 (x < -3), 1 (x > 3), (2x + 3) / 6 otherwise
 *   sigmoid: y = 1 / (1 + e^-x)          dy/dx = y (1 - y)
 *
 * The derivative at the kinks follows PyTorch (relu: 0 at x = 0; hswish:
 * x/3 + 1/2 on [-3, 3]), so gradients match its goldens exactly.
 */
#include "ops/op.h"

#include <math.h>

#define ELEMENTWISE(NAME, FWD, BWD)                                                   \
    static void NAME##_forward(const rg_op_call *c)                                  \
    {                                                                                \
        const float *x = rg_in(c, 0);                                                \
        float *y = rg_out(c);                                                        \
        size_t count = rg_shape_count(rg_out_shape(c));                              \
        _Pragma("omp parallel for schedule(static)")                            \
        for (size_t i = 0; i < count; i++) { float v = x[i]; y[i] = (FWD); }          \
    }                                                                                \
    static void NAME##_backward(const rg_op_call *c)                                 \
    {                                                                                \
        const float *x = rg_in(c, 0), *y = rg_out(c), *dy = rg_dout(c);              \
        float *dx = rg_din(c, 0);                                                    \
        size_t count = rg_shape_count(rg_out_shape(c));                              \
        _Pragma("omp parallel for schedule(static)")                            \
        for (size_t i = 0; i < count; i++) {                                         \
            float v = x[i], out = y[i];                                              \
            (void)v; (void)out;                                                      \
            dx[i] += dy[i] * (BWD);                                                  \
        }                                                                            \
    }                                                                                \
    const rg_op_def rg_op_##NAME = {#NAME, NAME##_forward, NAME##_backward, NULL, NULL, NULL};

ELEMENTWISE(relu, v > 0.0f ? v : 0.0f, v > 0.0f ? 1.0f : 0.0f)
ELEMENTWISE(relu6, v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f, (v > 0.0f && v < 6.0f) ? 1.0f : 0.0f)
ELEMENTWISE(hswish, v <= -3.0f ? 0.0f : (v >= 3.0f ? v : v * (v + 3.0f) * (1.0f / 6.0f)),
            v < -3.0f ? 0.0f : (v > 3.0f ? 1.0f : v * (1.0f / 3.0f) + 0.5f))
ELEMENTWISE(sigmoid, 1.0f / (1.0f + expf(-v)), out * (1.0f - out))
