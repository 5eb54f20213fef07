/* regain — image augmentation.
 *
 * Augmentations act on one HWC uint8 image in place. All randomness comes
 * from an rg_rng that the caller keys by what the image is, normally
 * rg_rng_keyed(seed, epoch, sample_index), so an image is augmented the same
 * way whichever thread handles it and in whatever order. Each augmentation
 * is split in two: a draw of its parameters from the rng, then a
 * deterministic apply, so tests can pin the parameters and check pixels
 * exactly.
 *
 *     rg_augment_config aug = {.crop_pad = 4, .hflip = 1};
 *     if (rg_augment_validate(&aug, &err) != RG_OK) ...
 *     rg_rng r = rg_rng_keyed(seed, epoch, i);
 *     rg_augment_image(&aug, img, scratch, 28, 28, 1, &r);
 *
 * This is the place for the full library (RandAugment and friends); new
 * fields are appended to the structs, and their draws come after the
 * existing ones so that old configurations keep producing the same images.
 */
#ifndef REGAIN_AUGMENT_H
#define REGAIN_AUGMENT_H

#include <stdint.h>

#include "regain/rng.h"
#include "regain/status.h"

typedef struct {
    int32_t crop_pad;   /* random crop with this zero padding (0 = off) */
    int hflip;          /* random horizontal flip with p=0.5 */
} rg_augment_config;

/* Largest accepted crop_pad. */
#define RG_AUGMENT_MAX_PAD 4096

/* The random choices for one image. */
typedef struct {
    int32_t dy, dx;     /* crop shift in [-crop_pad, crop_pad] */
    int flip;           /* 1 = mirror left-right */
} rg_augment_params;

/* Checks a configuration: 0 <= crop_pad <= RG_AUGMENT_MAX_PAD, hflip 0 or 1.
 * Fails with RG_ERR_ARG and a message naming the field. */
rg_status rg_augment_validate(const rg_augment_config *cfg, rg_error *err);

/* Draws the parameters for one image from rng, in this fixed order: dy then
 * dx, each rg_rng_below(rng, 2*crop_pad+1) - crop_pad, only when crop_pad >
 * 0; then flip = rg_rng_below(rng, 2), only when hflip. Fields not drawn are
 * 0. cfg must be valid. */
void rg_augment_draw(const rg_augment_config *cfg, rg_rng *rng, rg_augment_params *p);

/* Applies p to the h x w x c image img in place; scratch holds h*w*c bytes
 * owned by the caller (contents on return unspecified). The result is
 *     out(y, x) = in(y + dy, xs + dx),  xs = flip ? w-1-x : x,
 * with 0 where the source lies outside the image: a crop of the image zero
 * padded by crop_pad on each side whose top-left corner is at
 * (crop_pad + dy, crop_pad + dx), then mirrored. */
void rg_augment_apply(const rg_augment_params *p, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c);

/* Augments one HWC uint8 image in place: rg_augment_draw then
 * rg_augment_apply. scratch holds h*w*c bytes owned by the caller; all
 * randomness comes from rng (keyed by the caller with (seed, epoch, sample)).
 * cfg must be valid (rg_augment_validate). */
void rg_augment_image(const rg_augment_config *cfg, uint8_t *img, uint8_t *scratch, int32_t h,
                      int32_t w, int32_t c, rg_rng *rng);

#endif
