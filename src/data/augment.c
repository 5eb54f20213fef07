/* Image augmentation: random crop with zero padding, horizontal flip. */
#include "regain/augment.h"

#include <string.h>

rg_status rg_augment_validate(const rg_augment_config *cfg, rg_error *err)
{
    if (!cfg) return rg_fail(err, RG_ERR_ARG, "augment: configuration is NULL");
    if (cfg->crop_pad < 0 || cfg->crop_pad > RG_AUGMENT_MAX_PAD)
        return rg_fail(err, RG_ERR_ARG, "augment: crop_pad %d is outside [0, %d]", cfg->crop_pad,
                       RG_AUGMENT_MAX_PAD);
    if (cfg->hflip != 0 && cfg->hflip != 1)
        return rg_fail(err, RG_ERR_ARG, "augment: hflip %d must be 0 or 1", cfg->hflip);
    return RG_OK;
}

void rg_augment_draw(const rg_augment_config *cfg, rg_rng *rng, rg_augment_params *p)
{
    p->dy = p->dx = 0;
    p->flip = 0;
    /* The order of draws is part of the contract (see augment.h): changing
     * it changes every augmented image of every recorded run. */
    if (cfg->crop_pad > 0) {
        const uint32_t span = 2u * (uint32_t)cfg->crop_pad + 1u;
        p->dy = (int32_t)rg_rng_below(rng, span) - cfg->crop_pad;
        p->dx = (int32_t)rg_rng_below(rng, span) - cfg->crop_pad;
    }
    if (cfg->hflip) p->flip = (int)rg_rng_below(rng, 2);
}

void rg_augment_apply(const rg_augment_params *p, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c)
{
    if (p->dy == 0 && p->dx == 0 && !p->flip) return;
    const size_t row = (size_t)w * (size_t)c;
    memcpy(scratch, img, (size_t)h * row);
    for (int32_t y = 0; y < h; y++) {
        uint8_t *dst = img + (size_t)y * row;
        const int32_t sy = y + p->dy;
        if (sy < 0 || sy >= h) {
            memset(dst, 0, row);
            continue;
        }
        const uint8_t *src = scratch + (size_t)sy * row;
        for (int32_t x = 0; x < w; x++) {
            const int32_t sx = (p->flip ? w - 1 - x : x) + p->dx;
            uint8_t *d = dst + (size_t)x * (size_t)c;
            if (sx < 0 || sx >= w)
                memset(d, 0, (size_t)c);
            else
                memcpy(d, src + (size_t)sx * (size_t)c, (size_t)c);
        }
    }
}

void rg_augment_image(const rg_augment_config *cfg, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c, rg_rng *rng)
{
    rg_augment_params p;
    rg_augment_draw(cfg, rng, &p);
    rg_augment_apply(&p, img, scratch, h, w, c);
}
