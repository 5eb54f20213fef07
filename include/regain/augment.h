/* regain — image augmentation: configuration, policies, spec text.
 *
 * Augmentations act on one HWC uint8 image (c = 1 or 3) in place. All
 * randomness comes from an rg_rng that the caller keys by what the image is,
 * normally rg_rng_keyed(seed, epoch, sample_index), so an image is augmented
 * the same way whichever thread handles it and in whatever order. Each
 * augmentation is split in two: a draw of its parameters from the rng, then a
 * deterministic apply, so tests can pin the parameters and check pixels
 * exactly. The individual operations are in augment_ops.h; batch-level
 * mixup and CutMix in mix.h.
 *
 *     rg_augment_config aug = {.crop_pad = 4, .hflip = 1};
 *     if (rg_augment_parse("randaugment:n=2,m=9 + erasing:p=0.25", &aug, &err) != RG_OK ||
 *         rg_augment_validate(&aug, &err) != RG_OK) ...
 *     rg_rng r = rg_rng_keyed(seed, epoch, i);
 *     rg_augment_image(&aug, img, scratch, 28, 28, 1, &r);
 *
 * Order. Parameters are drawn in a fixed order, and the draws of newer
 * features come after the older ones so that a configuration that does not
 * use them keeps producing the same images: crop (dy, dx), hflip, then
 * vflip, resized crop, policy, cutout, erasing. They are applied in the
 * order a torchvision pipeline would use: resized crop, padded crop, flips,
 * policy ops, cutout, erasing.
 *
 * Spec text (rg_augment_parse), items joined by '+', each "name" or
 * "name:key=value,key=value"; see docs/augmentation.md:
 *     randaugment[:n=2,m=9]     trivialaugment     autoaugment[:cifar10|svhn|imagenet]
 *     (each policy also takes fill=0..255, the value geometric ops bring in)
 *     resizedcrop[:scale=0.08..1,ratio=0.75..1.333]  crop[:pad=4]  hflip  vflip
 *     cutout:size=8[,p=1]       erasing[:p=0.5,scale=0.02..0.33,ratio=0.3..3.3,value=0..255|random]
 *     none
 */
#ifndef REGAIN_AUGMENT_H
#define REGAIN_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "regain/rng.h"
#include "regain/status.h"

/* Policies (rg_augment_config.policy). Appended at the end only. */
typedef enum {
    RG_AUG_POLICY_NONE = 0,
    RG_AUG_POLICY_RANDAUGMENT,    /* ra_n ops uniformly from 14, magnitude bin ra_m of 31 */
    RG_AUG_POLICY_TRIVIALAUGMENT, /* one op of 14, one bin of 31 uniformly (the "wide" space) */
    RG_AUG_POLICY_AUTOAUGMENT     /* one of 25 published sub-policies (two ops each) */
} rg_augment_policy;

/* AutoAugment's published tables (rg_augment_config.autoaugment), as
 * torchvision 0.14 defines them. */
typedef enum { RG_AUTOAUG_CIFAR10 = 0, RG_AUTOAUG_SVHN, RG_AUTOAUG_IMAGENET } rg_autoaugment_table;

/* A zeroed configuration does nothing. New fields are appended. */
typedef struct {
    int32_t crop_pad;   /* random crop with this zero padding (0 = off) */
    int hflip;          /* random horizontal flip with p=0.5 */
    /* --- appended after crop_pad/hflip --- */
    int vflip;          /* random vertical flip with p=0.5 */
    int resized_crop;   /* random resized crop back to h x w (torchvision RandomResizedCrop) */
    float rrc_scale[2]; /* area fraction range, 0 < lo <= hi <= 1 */
    float rrc_ratio[2]; /* aspect ratio (w/h) range, 0 < lo <= hi */
    int32_t policy;     /* rg_augment_policy */
    int32_t ra_n;       /* RandAugment ops per image, 1..RG_AUGMENT_MAX_OPS */
    int32_t ra_m;       /* RandAugment magnitude bin, 0..RG_AUGMENT_MAX_MAGNITUDE */
    int32_t autoaugment;/* rg_autoaugment_table */
    int32_t fill;       /* 0..255: value of the pixels that geometric ops bring in */
    float cutout_p;     /* Cutout probability (0 = off) */
    int32_t cutout_size;/* Cutout square side in pixels, >= 1 when cutout_p > 0 */
    float erase_p;      /* random erasing probability (0 = off) */
    float erase_scale[2]; /* erased area fraction range, 0 < lo <= hi <= 1 */
    float erase_ratio[2]; /* erased aspect ratio range, 0 < lo <= hi */
    int erase_random;   /* 1: erase with uniform random bytes; 0: with erase_value */
    int32_t erase_value;/* 0..255 */
} rg_augment_config;

/* Largest accepted crop_pad; most ops of one RandAugment; magnitude bins. */
#define RG_AUGMENT_MAX_PAD 4096
#define RG_AUGMENT_MAX_OPS 16
#define RG_AUGMENT_BINS 31
#define RG_AUGMENT_MAX_MAGNITUDE (RG_AUGMENT_BINS - 1)

/* The random choices for one image. Fields not drawn are 0. */
typedef struct {
    int32_t dy, dx;     /* crop shift in [-crop_pad, crop_pad] */
    int flip;           /* 1 = mirror left-right */
    /* --- appended --- */
    int vflip;          /* 1 = mirror top-bottom */
    int resized;        /* 1 = resized crop of the box below */
    int32_t rc_top, rc_left, rc_h, rc_w;
    int32_t n_ops;      /* policy ops to apply, in order */
    int32_t op[RG_AUGMENT_MAX_OPS];        /* rg_aug_op */
    float magnitude[RG_AUGMENT_MAX_OPS];   /* signed, as rg_aug_op_apply takes it */
    uint8_t fill;       /* for geometric policy ops */
    int cutout;         /* 1 = Cutout box below, filled with 0 */
    int32_t cut_top, cut_left, cut_h, cut_w;
    int erase;          /* 1 = erase box below */
    int32_t er_top, er_left, er_h, er_w;
    int erase_random;   /* 1 = bytes from rg_rng_keyed(erase_seed, 0, 0); 0 = erase_value */
    uint8_t erase_value;
    uint64_t erase_seed;
} rg_augment_params;

/* Checks a configuration; fails with RG_ERR_ARG and a message naming the
 * field: 0 <= crop_pad <= RG_AUGMENT_MAX_PAD; hflip, vflip, resized_crop,
 * erase_random 0 or 1; policy known; for RandAugment 1 <= ra_n <=
 * RG_AUGMENT_MAX_OPS and 0 <= ra_m <= RG_AUGMENT_MAX_MAGNITUDE; autoaugment
 * table known; fill in 0..255; probabilities in [0, 1]; with cutout on,
 * cutout_size >= 1; ranges (lo, hi) finite with 0 < lo <= hi (scales <= 1)
 * when their feature is on. */
rg_status rg_augment_validate(const rg_augment_config *cfg, rg_error *err);

/* Reads spec text (see the top of this file) on top of *cfg: each item sets
 * its fields (with torchvision's defaults for the options it does not name),
 * others stay. An empty or all-blank spec changes nothing. Errors are
 * RG_ERR_ARG naming the item and key, e.g. "augment: randaugment: m: 31 is
 * outside [0, 30]"; *cfg is unchanged on error. The result is validated. */
rg_status rg_augment_parse(const char *spec, rg_augment_config *cfg, rg_error *err);

/* Writes the canonical spec of *cfg into buf (size bytes, NUL-terminated),
 * every option spelled out (crop_pad and hflip included), "none" when
 * nothing is on. Parsing it into a zeroed configuration gives *cfg back.
 * Returns the length it needed (as snprintf). */
size_t rg_augment_format(const rg_augment_config *cfg, char *buf, size_t size);

/* 1 when cfg changes images at all. */
int rg_augment_active(const rg_augment_config *cfg);

/* Draws the parameters for one h x w image from rng, in this fixed order:
 * dy then dx, each rg_rng_below(rng, 2*crop_pad+1) - crop_pad, only when
 * crop_pad > 0; flip = rg_rng_below(rng, 2), only when hflip; vflip likewise
 * when vflip; then the resized crop, the policy, Cutout and erasing (each
 * only when on; their draws are listed in docs/augmentation.md). cfg must be
 * valid. */
void rg_augment_draw(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p);

/* Applies p to the h x w x c image img in place; scratch holds h*w*c bytes
 * owned by the caller (contents on return unspecified). The crop and flip
 * part is
 *     out(y, x) = in(y + dy, xs + dx),  xs = flip ? w-1-x : x,
 * with 0 where the source lies outside the image: a crop of the image zero
 * padded by crop_pad on each side whose top-left corner is at
 * (crop_pad + dy, crop_pad + dx), then mirrored. A resized crop comes before
 * it, vflip, policy ops, Cutout and erasing after it. */
void rg_augment_apply(const rg_augment_params *p, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c);

/* Augments one HWC uint8 image in place: rg_augment_draw then
 * rg_augment_apply. scratch holds h*w*c bytes owned by the caller; all
 * randomness comes from rng (keyed by the caller with (seed, epoch, sample)).
 * cfg must be valid (rg_augment_validate). */
void rg_augment_image(const rg_augment_config *cfg, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c, rg_rng *rng);

#endif
