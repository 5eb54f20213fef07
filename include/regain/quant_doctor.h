/* regain — the quantization doctor: where an int8 model loses accuracy, and
 * what to do about it.
 *
 * rg_quant_doctor runs the float version of a lowered model
 * (rg_qmodel_run_ref) and the int8 model (rg_qmodel_run) on the same images
 * and compares every op's output: the signal-to-quantization-noise ratio
 * SQNR = 10 log10(sum x^2 / sum (x - x~)^2) of the float activation x against
 * the dequantized int8 one x~ (errors accumulate along the network, so the
 * drop from an op's inputs to its output is what the op itself loses), the
 * mean of the error relative to its RMS (a biased error, which bias
 * correction removes), and for weight ops the per-output-channel weight
 * ranges max|W[c]| (their spread is what per-tensor scales and activations
 * downstream suffer from). Each layer gets flags and one recommended remedy.
 *
 *     rg_qdoc_config dc = rg_qdoc_default();
 *     rg_qdoc_layer *rows; int32_t n_rows;
 *     rg_quant_doctor(m, calib, 256, &dc, &rows, &n_rows, &err);
 *     ... print rows[i].name, .sqnr_db, .flags, .remedy ...
 *     free(rows);
 */
#ifndef REGAIN_QUANT_DOCTOR_H
#define REGAIN_QUANT_DOCTOR_H

#include "regain/quant_model.h"

enum {
    RG_QDOC_LOW_SQNR = 1,      /* SQNR below low_sqnr_db */
    RG_QDOC_BIG_DROP = 2,      /* loses more than drop_db against its inputs, ending below low_sqnr_db + 10 */
    RG_QDOC_WIDE_CHANNELS = 4, /* weight channel ranges spread beyond wide_ratio */
    RG_QDOC_BIASED = 8,        /* |mean error| above biased_ratio of the RMS error */
    RG_QDOC_CLIPPED = 16       /* more than clipped_ratio of the float values outside the int8 range */
};

typedef struct {
    double low_sqnr_db;     /* default 20 */
    double drop_db;         /* default 6 */
    double wide_ratio;      /* default 20 (largest / smallest nonzero channel range) */
    double biased_ratio;    /* default 0.3 */
    double clipped_ratio;   /* default 0.005 */
    int32_t batch;          /* default 32 */
} rg_qdoc_config;

rg_qdoc_config rg_qdoc_default(void);

typedef struct {
    char name[RG_NAME_MAX];
    rg_qop_kind kind;
    int32_t op, tensor;         /* op -1: the model's input */
    double sqnr_db;             /* float vs int8 output, over all images */
    double drop_db;             /* lowest input SQNR minus sqnr_db (input image: quantized input's SQNR) */
    double err_bias;            /* |mean error| / RMS error */
    double clipped;             /* fraction of float values beyond the int8 range (half a step wider) */
    int has_weights;
    float w_range_min, w_range_max;  /* smallest nonzero / largest max|W[c]| over output channels */
    float w_range_ratio;        /* w_range_max / w_range_min (0 without weights) */
    float out_scale;            /* the output tensor's scale */
    unsigned flags;             /* RG_QDOC_* */
    const char *remedy;         /* static text: the recommended remedy, "-" when none */
} rg_qdoc_layer;

/* Diagnoses m on n images (NHWC floats of the model's input shape, already
 * normalized). *rows (caller frees) and *n_rows = m->n_ops + 1: row 0 is
 * the quantized input (op -1, no weights), row i + 1 op i.
 * m's arena plan is left as it was (the doctor reads every tensor, so it
 * plans one slot per tensor while it runs). Errors: RG_ERR_ARG (n < 1, bad
 * config), RG_ERR_NOMEM. */
rg_status rg_quant_doctor(rg_qmodel *m, const float *images, int32_t n, const rg_qdoc_config *cfg,
                          rg_qdoc_layer **rows, int32_t *n_rows, rg_error *err);

#endif
