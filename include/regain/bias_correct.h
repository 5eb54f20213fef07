/* regain — empirical bias correction (Nagel et al. 2019, "Data-Free
 * Quantization", section 4.2, its empirical variant).
 *
 * Quantizing weights W to W~ shifts each output channel's mean: the error
 * eps = W~ - W is not zero mean per channel, and E[(W~ - W) x] != 0 when the
 * inputs x have a nonzero mean (after ReLU they always do). The shift is
 * measured on calibration data: for each weight op, the pre-activation
 * outputs with W~ and with W on the same float inputs, averaged over images
 * and positions per output channel; the bias is lowered by that mean, so the
 * quantized layer's expected output equals the float one's.
 *
 *     rg_bias_correct_config bc = {.batch = 32};
 *     rg_quant_bias_correct(m, calib, n_calib, &bc, &err);   // adjusts fb
 *     rg_qmodel_requantize_op(m, i, &err);                   // for each op
 */
#ifndef REGAIN_BIAS_CORRECT_H
#define REGAIN_BIAS_CORRECT_H

#include "regain/quant_model.h"

typedef struct {
    int32_t batch;      /* images per pass (>= 1) */
    void (*progress)(void *user, const char *stage, int32_t done, int32_t total);
    void *progress_user;
} rg_bias_correct_config;

/* Corrects the float bias fb of every weight op of m (conv, depthwise, fc)
 * for the error of its weights quantized as m->per_channel says, measured on
 * n images (NHWC floats of the model's input shape) run through the float
 * model (rg_qmodel_run_ref): fb[c] -= mean over images and positions of
 * (W~ x - W x)[c]. The int8 parameters are not updated: call
 * rg_qmodel_requantize_op afterwards (rg_quant_lower does). Errors: RG_ERR_ARG
 * (n < 1, batch < 1), RG_ERR_NOMEM. */
rg_status rg_quant_bias_correct(rg_qmodel *m, const float *images, int32_t n, const rg_bias_correct_config *cfg,
                                rg_error *err);

#endif
