/* regain — post-training quantization as a library: the calibration set and
 * the int8 model's accuracy, shared by `regain quantize` and the recipes'
 * `kind = quantize` runs.
 *
 *     float *calib; int32_t n;
 *     rg_ptq_calibration(&train, 512, seed, mean, std, &calib, &n, &err);
 *     rg_quant_lower(g, calib, n, &cfg, &m, &err);
 *     rg_eval_result r;
 *     rg_qmodel_evaluate(m, &test, mean, std, 64, NULL, NULL, &r, &err);
 */
#ifndef REGAIN_PTQ_H
#define REGAIN_PTQ_H

#include <stdint.h>

#include "regain/data.h"
#include "regain/observer.h"
#include "regain/quant_model.h"
#include "regain/trainer.h"

/* Observer kinds by name: minmax, moving-average, percentile, mse, entropy.
 * Parse returns RG_ERR_ARG naming the value and the choices. */
const char *rg_obs_kind_name(rg_obs_kind kind);
rg_status rg_obs_kind_parse(const char *name, rg_obs_kind *kind, rg_error *err);

/* Input normalization x = (pixel / 255 - mean) / std of n bytes. */
void rg_ptq_normalize(const uint8_t *px, size_t n, float mean, float std, float *out);

/* A seeded calibration subset of ds: the first min(n, ds->n) images of a
 * permutation keyed by seed, normalized. *images (caller frees) holds
 * *count images. */
rg_status rg_ptq_calibration(const rg_dataset *ds, int32_t n, uint64_t seed, float mean, float std, float **images,
                             int32_t *count, rg_error *err);

/* The int8 model's accuracy and confusion matrix on ds, in batches;
 * progress (may be NULL) is called with images done and total. r is freed
 * with rg_eval_result_free; r->loss is NaN (the int8 model gives logits of
 * limited precision, not a training loss). */
rg_status rg_qmodel_evaluate(const rg_qmodel *m, const rg_dataset *ds, float mean, float std, int32_t batch,
                             void (*progress)(void *user, int32_t done, int32_t total), void *user,
                             rg_eval_result *r, rg_error *err);

#endif
