/* regain — cross-layer equalization of a lowered model (Nagel et al. 2019,
 * "Data-Free Quantization", section 4.1), safe for ReLU6.
 *
 * Two consecutive weight layers A -> B (A a convolution whose output only B
 * reads; B a dense or depthwise convolution) compute B(f(A x)). For s > 0
 * per channel, f(y / s) = f(y) / s when f is the identity or ReLU, so
 * dividing A's output channel c (weights and bias) by s_c and multiplying
 * B's input channel c by s_c leaves the network's function unchanged. With
 * s_c = sqrt(r_A[c] / r_B[c]) (r: the largest |weight| of the channel in A's
 * output and B's input) both channel ranges become sqrt(r_A r_B): the small
 * channels of a depthwise layer are no longer rounded to nothing by a
 * per-tensor (or a neighbour's) scale.
 *
 * ReLU6 is not scale-equivariant: relu6(y / s) != relu6(y) / s. It is when
 * its clip scales too: min(max(y / s, 0), 6 / s) = relu6(y) / s. So instead
 * of replacing ReLU6 by ReLU (which changes the network), A keeps a
 * per-channel upper clamp clip[c] = 6 / s_c (rg_qop.clip), applied in float
 * and, in the int8 model, as a per-channel clamp of the requantized output
 * (rg_qop.act_max_c). The equalized float model computes the same function
 * as the original, clipping included (docs/quantization.md derives it).
 *
 *     rg_equalize_stats st;
 *     rg_quant_equalize(m, 8, &st, &err);   // m's fw/fb from rg_quant_lower's pass 2
 */
#ifndef REGAIN_EQUALIZE_H
#define REGAIN_EQUALIZE_H

#include "regain/quant_model.h"

typedef struct {
    int32_t pairs;          /* layer pairs equalized */
    int32_t clipped;        /* of which with a ReLU6 (per-channel clip) */
} rg_equalize_stats;

/* Equalizes every eligible pair of m's float weights (fw, fb, clip), in
 * iters sweeps over the pairs in op order (each sweep moves the ranges
 * closer to the fixed point; 1 is exact for isolated pairs). Must run
 * before calibration and rg_qmodel_requantize_op (the int8 parameters are
 * derived from fw afterwards). st may be NULL. Errors: RG_ERR_ARG (iters <
 * 1, a model without float weights), RG_ERR_NOMEM. */
rg_status rg_quant_equalize(rg_qmodel *m, int32_t iters, rg_equalize_stats *st, rg_error *err);

#endif
