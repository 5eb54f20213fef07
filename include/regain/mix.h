/* regain — batch-level mixup and CutMix with soft targets.
 *
 * Both mix each sample of a batch with its neighbour in the batch (sample i
 * with sample i-1, the first with the last: torchvision's batch.roll(1)) and
 * replace the one-hot labels by soft targets, count x classes floats whose
 * rows sum to 1:
 *   mixup  (Zhang et al., 2018): x_i = lam x_i + (1 - lam) x_{i-1}, lam ~ Beta(alpha, alpha);
 *   CutMix (Yun et al., 2019):   a box of x_{i-1} pasted into x_i; the box's side is
 *          sqrt(1 - lam) of the image's, its centre uniform, clipped at the borders,
 *          and lam is then set to 1 - box area / image area, the share of x_i left.
 * With both enabled each batch uses one of the two, chosen with p = 1/2 (as
 * torchvision's reference recipe's RandomChoice). The draws come from
 * rg_rng_keyed(seed, epoch, RG_MIX_KEY + batch_index), so a batch is mixed
 * the same way whatever the number of loader threads.
 *
 *     rg_mix_config mc = {.mixup_alpha = 0.2f, .cutmix_alpha = 1.0f};
 *     rg_mix_params p;
 *     rg_mix_draw(&mc, seed, epoch, b, 28, 28, &p);
 *     if (rg_mix_apply(&p, x, scratch, n, 28, 28, 1, labels, 10, targets, &err)) ...
 */
#ifndef REGAIN_MIX_H
#define REGAIN_MIX_H

#include <stdint.h>

#include "regain/status.h"

/* Key base of the per-batch streams: above every sample index, so a batch
 * stream never coincides with a sample's augmentation stream. */
#define RG_MIX_KEY 0x4D49580000000000ull /* "MIX" << 40 */

/* Largest accepted alpha. */
#define RG_MIX_MAX_ALPHA 100.0f

typedef struct {
    float mixup_alpha;  /* > 0 enables mixup */
    float cutmix_alpha; /* > 0 enables CutMix */
} rg_mix_config;

typedef enum { RG_MIX_NONE = 0, RG_MIX_MIXUP, RG_MIX_CUTMIX } rg_mix_kind;

typedef struct {
    int32_t kind;           /* rg_mix_kind */
    float lambda;           /* weight of each sample's own label */
    int32_t y0, x0, y1, x1; /* CutMix box, rows [y0, y1) and columns [x0, x1) */
} rg_mix_params;

/* Checks 0 <= mixup_alpha, cutmix_alpha <= RG_MIX_MAX_ALPHA (finite); errors
 * are RG_ERR_ARG naming the field ("mixup: alpha -1 ..."). */
rg_status rg_mix_validate(const rg_mix_config *cfg, rg_error *err);
/* 1 when mixup or CutMix is on. */
int rg_mix_active(const rg_mix_config *cfg);

/* Draws the mixing of batch `batch` of epoch `epoch` for h x w images from
 * rg_rng_keyed(seed, epoch, RG_MIX_KEY + batch), in this order: the choice
 * (rg_rng_below(2): 0 mixup, 1 CutMix) only when both are on; lam =
 * rg_rng_beta(alpha, alpha); for CutMix the box centre row then column
 * (rg_rng_below(h), rg_rng_below(w)), the half sides int(r*h), int(r*w) with
 * r = sqrt(1 - lam) / 2, and lam = 1 - area / (h*w). kind is RG_MIX_NONE
 * when both are off. cfg must be valid. */
void rg_mix_draw(const rg_mix_config *cfg, uint64_t seed, int64_t epoch, int64_t batch, int32_t h, int32_t w,
                 rg_mix_params *p);

/* Mixes the float NHWC batch x (n samples of h x w x c) in place as p says
 * and writes targets (n x classes): row i holds lambda at labels[i] plus
 * 1 - lambda at labels[i-1] (labels[n-1] for row 0), so each row sums to 1;
 * with RG_MIX_NONE, x is untouched and targets are one-hot. scratch holds
 * h*w*c floats owned by the caller. Fails with RG_ERR_ARG (x unchanged) when
 * n < 1, classes < 1 or a label is outside [0, classes). */
rg_status rg_mix_apply(const rg_mix_params *p, float *x, float *scratch, int32_t n, int32_t h, int32_t w, int32_t c,
                       const int32_t *labels, int32_t classes, float *targets, rg_error *err);

#endif
