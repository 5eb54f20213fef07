/* Image augmentation: validation, the draw of one image's parameters in the
 * documented order, and their application in pipeline order. */
#include "internal.h"

#include <math.h>
#include <string.h>

static rg_status check_range(const float r[2], int is_scale, const char *field, rg_error *err)
{
    if (!isfinite(r[0]) || !isfinite(r[1]) || !(r[0] > 0.0f) || r[0] > r[1] || (is_scale && r[1] > 1.0f))
        return rg_fail(err, RG_ERR_ARG, "augment: %s %g..%g must satisfy 0 < lo <= hi%s", field, (double)r[0],
                       (double)r[1], is_scale ? " <= 1" : "");
    return RG_OK;
}

static rg_status check_prob(float p, const char *field, rg_error *err)
{
    if (!(p >= 0.0f && p <= 1.0f))
        return rg_fail(err, RG_ERR_ARG, "augment: %s %g is outside [0, 1]", field, (double)p);
    return RG_OK;
}

static rg_status check_bool(int v, const char *field, rg_error *err)
{
    if (v != 0 && v != 1) return rg_fail(err, RG_ERR_ARG, "augment: %s %d must be 0 or 1", field, v);
    return RG_OK;
}

rg_status rg_augment_validate(const rg_augment_config *cfg, rg_error *err)
{
    if (!cfg) return rg_fail(err, RG_ERR_ARG, "augment: configuration is NULL");
    if (cfg->crop_pad < 0 || cfg->crop_pad > RG_AUGMENT_MAX_PAD)
        return rg_fail(err, RG_ERR_ARG, "augment: crop_pad %d is outside [0, %d]", cfg->crop_pad,
                       RG_AUGMENT_MAX_PAD);
    rg_status st;
    if ((st = check_bool(cfg->hflip, "hflip", err)) || (st = check_bool(cfg->vflip, "vflip", err)) ||
        (st = check_bool(cfg->resized_crop, "resized_crop", err)) ||
        (st = check_bool(cfg->erase_random, "erase_random", err)))
        return st;
    if (cfg->resized_crop && ((st = check_range(cfg->rrc_scale, 1, "resizedcrop scale", err)) ||
                              (st = check_range(cfg->rrc_ratio, 0, "resizedcrop ratio", err))))
        return st;
    switch (cfg->policy) {
    case RG_AUG_POLICY_NONE:
    case RG_AUG_POLICY_TRIVIALAUGMENT: break;
    case RG_AUG_POLICY_RANDAUGMENT:
        if (cfg->ra_n < 1 || cfg->ra_n > RG_AUGMENT_MAX_OPS)
            return rg_fail(err, RG_ERR_ARG, "augment: randaugment n %d is outside [1, %d]", cfg->ra_n,
                           RG_AUGMENT_MAX_OPS);
        if (cfg->ra_m < 0 || cfg->ra_m > RG_AUGMENT_MAX_MAGNITUDE)
            return rg_fail(err, RG_ERR_ARG, "augment: randaugment m %d is outside [0, %d]", cfg->ra_m,
                           RG_AUGMENT_MAX_MAGNITUDE);
        break;
    case RG_AUG_POLICY_AUTOAUGMENT:
        if (cfg->autoaugment < RG_AUTOAUG_CIFAR10 || cfg->autoaugment > RG_AUTOAUG_IMAGENET)
            return rg_fail(err, RG_ERR_ARG, "augment: autoaugment table %d is unknown (0 cifar10, 1 svhn, 2 imagenet)",
                           cfg->autoaugment);
        break;
    default: return rg_fail(err, RG_ERR_ARG, "augment: policy %d is unknown", cfg->policy);
    }
    if (cfg->fill < 0 || cfg->fill > 255)
        return rg_fail(err, RG_ERR_ARG, "augment: fill %d is outside [0, 255]", cfg->fill);
    if ((st = check_prob(cfg->cutout_p, "cutout p", err))) return st;
    if (cfg->cutout_p > 0.0f && (cfg->cutout_size < 1 || cfg->cutout_size > RG_AUGMENT_MAX_PAD))
        return rg_fail(err, RG_ERR_ARG, "augment: cutout size %d is outside [1, %d]", cfg->cutout_size,
                       RG_AUGMENT_MAX_PAD);
    if ((st = check_prob(cfg->erase_p, "erasing p", err))) return st;
    if (cfg->erase_p > 0.0f) {
        if ((st = check_range(cfg->erase_scale, 1, "erasing scale", err)) ||
            (st = check_range(cfg->erase_ratio, 0, "erasing ratio", err)))
            return st;
        if (cfg->erase_value < 0 || cfg->erase_value > 255)
            return rg_fail(err, RG_ERR_ARG, "augment: erasing value %d is outside [0, 255]", cfg->erase_value);
    }
    return RG_OK;
}

int rg_augment_active(const rg_augment_config *cfg)
{
    return cfg->crop_pad > 0 || cfg->hflip || cfg->vflip || cfg->resized_crop || cfg->policy != RG_AUG_POLICY_NONE ||
           cfg->cutout_p > 0.0f || cfg->erase_p > 0.0f;
}

void rg_augment_draw(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p)
{
    memset(p, 0, sizeof *p);
    /* The order of draws is part of the contract (see augment.h): changing
     * it changes every augmented image of every recorded run. New features
     * draw after the old ones, and only when they are on. */
    if (cfg->crop_pad > 0) {
        const uint32_t span = 2u * (uint32_t)cfg->crop_pad + 1u;
        p->dy = (int32_t)rg_rng_below(rng, span) - cfg->crop_pad;
        p->dx = (int32_t)rg_rng_below(rng, span) - cfg->crop_pad;
    }
    if (cfg->hflip) p->flip = (int)rg_rng_below(rng, 2);
    if (cfg->vflip) p->vflip = (int)rg_rng_below(rng, 2);
    if (cfg->resized_crop) aug_draw_resized_crop(cfg, h, w, rng, p);
    if (cfg->policy != RG_AUG_POLICY_NONE) aug_draw_policy(cfg, h, w, rng, p);
    if (cfg->cutout_p > 0.0f) aug_draw_cutout(cfg, h, w, rng, p);
    if (cfg->erase_p > 0.0f) aug_draw_erasing(cfg, h, w, rng, p);
}

/* The padded crop and horizontal flip in one pass (the original module). */
static void crop_flip(const rg_augment_params *p, uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c)
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

void rg_augment_apply(const rg_augment_params *p, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c)
{
    if (p->resized) rg_aug_resized_crop(img, scratch, h, w, c, p->rc_top, p->rc_left, p->rc_h, p->rc_w);
    crop_flip(p, img, scratch, h, w, c);
    if (p->vflip) rg_aug_vflip(img, h, w, c);
    for (int32_t i = 0; i < p->n_ops && i < RG_AUGMENT_MAX_OPS; i++)
        rg_aug_op_apply((rg_aug_op)p->op[i], p->magnitude[i], img, scratch, h, w, c, p->fill);
    aug_apply_erasures(p, img, h, w, c);
}

void rg_augment_image(const rg_augment_config *cfg, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c, rg_rng *rng)
{
    rg_augment_params p;
    rg_augment_draw(cfg, h, w, rng, &p);
    rg_augment_apply(&p, img, scratch, h, w, c);
}
