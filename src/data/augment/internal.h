/* Private to src/data/augment/: the draws of each feature, called by
 * rg_augment_draw in the documented order. */
#ifndef REGAIN_AUGMENT_INTERNAL_H
#define REGAIN_AUGMENT_INTERNAL_H

#include "regain/augment.h"
#include "regain/augment_ops.h"

/* policy.c: RandAugment / TrivialAugment / AutoAugment ops and magnitudes. */
void aug_draw_policy(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p);
/* erase.c: the resized-crop box, the Cutout box, the erasing box. */
void aug_draw_resized_crop(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng,
                           rg_augment_params *p);
void aug_draw_cutout(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p);
void aug_draw_erasing(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p);
/* erase.c: applies the Cutout and erasing boxes of p. */
void aug_apply_erasures(const rg_augment_params *p, uint8_t *img, int32_t h, int32_t w, int32_t c);

#endif
