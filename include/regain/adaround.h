/* regain — AdaRound: learned rounding of the weights (Nagel et al. 2020,
 * "Up or Down? Adaptive Rounding for Post-Training Quantization").
 *
 * Rounding each weight to the nearest level minimizes each weight's error,
 * not the layer's: errors of weights that meet the same inputs add up. With
 * the weight's scale s fixed, AdaRound chooses per weight between floor(w/s)
 * and floor(w/s) + 1 by learning a soft choice h(V) = clamp(sigmoid(V) *
 * (zeta - gamma) + gamma, 0, 1) (the rectified sigmoid, zeta = 1.1,
 * gamma = -0.1) to minimize, per output channel,
 *
 *     || (s (floor(W/s) + h(V)) - W) x ||^2 / (s^2 E[x^2])  +  lambda sum (1 - |2 h(V) - 1|^beta)
 *
 * over inputs x of the layer from calibration images (patches of the float
 * model's activations); the regularizer, with beta annealed from 20 to 2
 * after a warm-up, pushes every h to 0 or 1. The result is written back into
 * the op's float weights as s * (floor + round(h)), exactly on the grid, so
 * the weight quantization reproduces it. Elements at the channel's largest
 * magnitude keep nearest rounding (they define the scale).
 *
 *     rg_adaround_config ac = rg_adaround_default();
 *     rg_quant_adaround(m, calib, n, &ac, &err);   // before rg_qmodel_requantize_op
 */
#ifndef REGAIN_ADAROUND_H
#define REGAIN_ADAROUND_H

#include "regain/quant_model.h"

typedef struct {
    int32_t iters;          /* optimization steps per layer (default 300) */
    int32_t rows;           /* input patches per layer (default 512) */
    int32_t images;         /* calibration images the patches come from (default 64) */
    float lambda;           /* regularizer weight, against the normalized reconstruction loss (default 0.1) */
    float lr;               /* Adam step on V (default 0.05) */
    float warmup;           /* fraction of iters without the regularizer (default 0.2) */
    uint64_t seed;          /* patch positions (default 0) */
    void (*progress)(void *user, const char *stage, int32_t done, int32_t total);
    void *progress_user;
} rg_adaround_config;

rg_adaround_config rg_adaround_default(void);

/* Learns the rounding of every weight op of m (conv, depthwise, fc) on
 * n images (NHWC floats of the model's input), per channel or per tensor
 * scales as m->per_channel, and rewrites fw on the chosen grid points.
 * Call before rg_qmodel_requantize_op (rg_quant_lower does, with
 * cfg.adaround). Errors: RG_ERR_ARG (n < 1, a bad config), RG_ERR_NOMEM. */
rg_status rg_quant_adaround(rg_qmodel *m, const float *images, int32_t n, const rg_adaround_config *cfg,
                            rg_error *err);

#endif
