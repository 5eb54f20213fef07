/* regain — observers: the range [lo, hi] of a tensor seen over calibration
 * batches, from which its quantization parameters are chosen.
 *
 * Post-training quantization runs the float model on a few hundred training
 * images and lets one observer per activation watch the values go by. How
 * the observer turns what it saw into a range decides much of the accuracy:
 *
 *   RG_OBS_MINMAX      the extremes (no clipping: outliers stretch the scale)
 *   RG_OBS_MOVING_AVG  extremes per batch, averaged: m += c * (batch - m)
 *                      (the first batch sets m), as PyTorch's
 *                      MovingAverageMinMaxObserver with averaging constant c
 *   RG_OBS_PERCENTILE  the p-th and (100-p)-th percentiles of a histogram
 *   RG_OBS_MSE         the clipping range minimizing the mean squared
 *                      quantization error over the histogram
 *   RG_OBS_ENTROPY     TensorRT's calibration: the symmetric threshold whose
 *                      quantized distribution is closest (KL divergence) to
 *                      the observed one
 *
 * The histogram observers keep 2048 bins (configurable) over a range that
 * grows with the data: when a batch falls outside, the bins are merged by an
 * integer factor and the range extended on the same grid, so nothing is
 * approximated and the result does not depend on how the data was batched
 * except through the first batch's range. Derivations: docs/quantization.md.
 *
 *     rg_observer *o;
 *     rg_obs_config cfg = rg_obs_default(RG_OBS_PERCENTILE);
 *     cfg.percentile = 99.99;
 *     rg_obs_create(&cfg, &o, &err);
 *     for (each calibration batch) rg_obs_observe(o, act, n, &err);
 *     float lo, hi;
 *     rg_obs_range(o, &lo, &hi, &err);
 *     rg_q_params_from_range(lo, hi, RG_Q_ACT_MIN, RG_Q_ACT_MAX, &qp, &err);
 *     rg_obs_free(o);
 */
#ifndef REGAIN_OBSERVER_H
#define REGAIN_OBSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"

/* Values are appended at the end only. */
typedef enum {
    RG_OBS_MINMAX = 0,
    RG_OBS_MOVING_AVG = 1,
    RG_OBS_PERCENTILE = 2,
    RG_OBS_MSE = 3,
    RG_OBS_ENTROPY = 4
} rg_obs_kind;

typedef struct {
    rg_obs_kind kind;
    double momentum;       /* MOVING_AVG: averaging constant c in (0, 1]; default 0.01 */
    double percentile;     /* PERCENTILE: p in (50, 100]; default 99.99 */
    int32_t bins;          /* histogram kinds: bins in [16, 1 << 20]; default 2048 */
    int32_t num_bits;      /* MSE and ENTROPY: bits of the quantized values in [2, 16]; default 8 */
} rg_obs_config;

typedef struct rg_observer rg_observer;

/* The default configuration for kind (values above). */
rg_obs_config rg_obs_default(rg_obs_kind kind);

/* A fresh observer. Errors (RG_ERR_ARG, naming the field): unknown kind,
 * momentum, percentile, bins or num_bits out of range; RG_ERR_NOMEM. */
rg_status rg_obs_create(const rg_obs_config *cfg, rg_observer **out, rg_error *err);

/* Watches n values (one batch). NaN or infinite values are rejected
 * (RG_ERR_ARG, with the index) and leave the observer unchanged: a NaN in a
 * calibration pass means the float model is broken, not an outlier to clip.
 * n = 0 is a no-op. */
rg_status rg_obs_observe(rg_observer *o, const float *x, size_t n, rg_error *err);

/* The range chosen from everything observed so far. It need not contain 0
 * (rg_q_params_from_range widens it). ENTROPY returns [-T, T], or [0, T]
 * when no negative value was seen (its histogram of |x| leaves exact zeros
 * out: they are always representable). Only zeros observed: [0, 0] for the
 * histogram kinds. Errors: nothing observed yet (RG_ERR_ARG). */
rg_status rg_obs_range(const rg_observer *o, float *lo, float *hi, rg_error *err);

/* Number of values observed so far. */
uint64_t rg_obs_count(const rg_observer *o);

/* Releases o; NULL is a no-op. */
void rg_obs_free(rg_observer *o);

/* Per-channel extremes of a weight tensor stored channel-first (`channels`
 * rows of `per_channel` values: OHWI convolutions, [out, in] linear):
 * lo[c] = min, hi[c] = max of row c. Errors: channels < 1, per_channel < 1,
 * non-finite values (naming the channel). */
rg_status rg_obs_channel_minmax(const float *w, int32_t channels, size_t per_channel, float *lo, float *hi,
                                rg_error *err);

#endif
