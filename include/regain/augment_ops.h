/* regain — individual image augmentation operations.
 *
 * Every operation here is deterministic: its parameters are arguments, and
 * the random draws that choose them live in augment.h (policies) so tests can
 * pin the parameters and compare pixels with torchvision (tests/golden/).
 * Images are one HWC uint8 image, c = 1 (grayscale) or c = 3 (RGB), changed
 * in place; `scratch` is h*w*c bytes owned by the caller whose contents on
 * return are unspecified.
 *
 *     uint8_t img[28 * 28], scratch[28 * 28];
 *     rg_aug_rotate(img, scratch, 28, 28, 1, 30.0f, 0);         // 30 degrees counter-clockwise
 *     rg_aug_op_apply(RG_AUG_SOLARIZE, 128.0f, img, scratch, 28, 28, 1, 0);
 *
 * Semantics follow torchvision 0.14's tensor (uint8) code paths: blends are
 * computed in float32 and truncated, geometric ops sample the nearest pixel
 * of an inverse affine map and fill the outside with `fill`. docs/
 * augmentation.md lists where and why results may differ from torchvision.
 */
#ifndef REGAIN_AUGMENT_OPS_H
#define REGAIN_AUGMENT_OPS_H

#include <stdint.h>

/* The operations of the policies. The first RG_AUG_RANDAUGMENT_OPS are
 * RandAugment's and TrivialAugment's, in torchvision's order (a uniform draw
 * below that count picks one); Invert is used only by AutoAugment. Values
 * are stored in nothing; appended at the end only all the same. */
typedef enum {
    RG_AUG_IDENTITY = 0,
    RG_AUG_SHEAR_X,
    RG_AUG_SHEAR_Y,
    RG_AUG_TRANSLATE_X,
    RG_AUG_TRANSLATE_Y,
    RG_AUG_ROTATE,
    RG_AUG_BRIGHTNESS,
    RG_AUG_COLOR,
    RG_AUG_CONTRAST,
    RG_AUG_SHARPNESS,
    RG_AUG_POSTERIZE,
    RG_AUG_SOLARIZE,
    RG_AUG_AUTOCONTRAST,
    RG_AUG_EQUALIZE,
    RG_AUG_INVERT,
    RG_AUG_OP_COUNT
} rg_aug_op;

#define RG_AUG_RANDAUGMENT_OPS 14

/* Name of an op as in torchvision ("ShearX", "AutoContrast", ...); "?" when
 * out of range. */
const char *rg_aug_op_name(rg_aug_op op);

/* ---- Geometric (geometric.c) -------------------------------------------- */

/* Mirrors left-right / top-bottom. */
void rg_aug_hflip(uint8_t *img, int32_t h, int32_t w, int32_t c);
void rg_aug_vflip(uint8_t *img, int32_t h, int32_t w, int32_t c);

/* Nearest-neighbour inverse affine warp: output pixel (x, y) takes the input
 * pixel nearest (round half to even) to
 *     sx = m[0]*u + m[1]*v + m[2] + (w-1)/2,  sy = m[3]*u + m[4]*v + m[5] + (h-1)/2
 * with u = x - (w-1)/2, v = y - (h-1)/2 (coordinates about the image centre),
 * and `fill` in every channel where (sx, sy) lies outside the image. m is the
 * matrix torchvision's _get_inverse_affine_matrix returns. */
void rg_aug_affine(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, const double m[6],
                   uint8_t fill);

/* Rotation by `degrees` counter-clockwise about the image centre (torchvision
 * F.rotate, expand = False). */
void rg_aug_rotate(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, float degrees,
                   uint8_t fill);
/* Shear about the top-left corner: x' = x + factor*y (ShearX) or y' = y +
 * factor*x (ShearY), as torchvision's autoaugment applies it (shear angle
 * atan(factor), center [0, 0]). */
void rg_aug_shear_x(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, float factor,
                    uint8_t fill);
void rg_aug_shear_y(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, float factor,
                    uint8_t fill);
/* Shift by whole pixels: out(y, x) = in(y, x - dx) (TranslateX) or in(y - dy, x). */
void rg_aug_translate_x(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t dx,
                        uint8_t fill);
void rg_aug_translate_y(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t dy,
                        uint8_t fill);

/* Crops the box (top, left, ch, cw), which must lie inside the image, and
 * resizes it back to h x w with bilinear interpolation (half-pixel centres,
 * no antialiasing, rounded to nearest), as torchvision's resized_crop on a
 * uint8 tensor with antialias off. */
void rg_aug_resized_crop(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t top,
                         int32_t left, int32_t ch, int32_t cw);

/* ---- Photometric (photometric.c) ---------------------------------------- */
/* n = h*w pixels of c channels. Enhancement factors are doubles because
 * torchvision derives both blend weights, float(f) and float(1 - f), from
 * the double f; passing a rounded float would change results. */

/* factor * img, truncated to [0, 255] (factor >= 0). */
void rg_aug_brightness(uint8_t *img, int32_t n, int32_t c, double factor);
/* Blend with the mean of the grayscale image (factor >= 0). */
void rg_aug_contrast(uint8_t *img, int32_t n, int32_t c, double factor);
/* Blend with the grayscale image (saturation); no-op for c = 1. */
void rg_aug_color(uint8_t *img, int32_t n, int32_t c, double factor);
/* Blend with the image smoothed by the 3x3 kernel [1 1 1; 1 5 1; 1 1 1]/13
 * (border pixels kept); no-op when h or w <= 2. */
void rg_aug_sharpness(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, double factor);
/* Keeps the top `bits` bits (0..8) of each value. */
void rg_aug_posterize(uint8_t *img, int32_t n, int32_t c, int32_t bits);
/* Inverts every value >= threshold. */
void rg_aug_solarize(uint8_t *img, int32_t n, int32_t c, float threshold);
/* Stretches each channel to [0, 255] (unchanged where it is constant). */
void rg_aug_autocontrast(uint8_t *img, int32_t n, int32_t c);
/* Histogram equalization per channel (PIL's ImageOps.equalize rule). */
void rg_aug_equalize(uint8_t *img, int32_t n, int32_t c);
/* 255 - value. */
void rg_aug_invert(uint8_t *img, int32_t n, int32_t c);

/* ---- Erasing (erase.c) --------------------------------------------------- */

/* Sets the box (top, left, eh, ew), clipped to the image, to `value` in every
 * channel, or, when values is not NULL, to values[k] for the k-th byte of the
 * box in row-major HWC order (eh*ew*c bytes). */
void rg_aug_erase(uint8_t *img, int32_t h, int32_t w, int32_t c, int32_t top, int32_t left, int32_t eh,
                  int32_t ew, uint8_t value, const uint8_t *values);

/* ---- One policy op -------------------------------------------------------- */

/* Applies op with a signed magnitude exactly as torchvision's autoaugment
 * _apply_op does: shear factor, translation in pixels (truncated toward
 * zero), rotation in degrees, enhancement factor 1 + magnitude (brightness,
 * color, contrast, sharpness; clamped at 0), posterize bits (truncated),
 * solarize threshold; the magnitude is ignored by the others. */
void rg_aug_op_apply(rg_aug_op op, float magnitude, uint8_t *img, uint8_t *scratch, int32_t h, int32_t w,
                     int32_t c, uint8_t fill);

/* Magnitude tables. */
typedef enum {
    RG_AUG_SPACE_RANDAUGMENT = 0, /* torchvision RandAugment (31 bins by default) */
    RG_AUG_SPACE_TRIVIALWIDE,     /* TrivialAugmentWide */
    RG_AUG_SPACE_AUTOAUGMENT      /* AutoAugment (its tables use 10 bins) */
} rg_aug_space;

/* Unsigned magnitude of op at bin `bin` of `bins` (bins >= 2, 0 <= bin <
 * bins) in the given space for an h x w image, computed like torch.linspace
 * in float32; 0 for ops without a magnitude. */
float rg_aug_magnitude(rg_aug_space space, rg_aug_op op, int32_t bin, int32_t bins, int32_t h, int32_t w);
/* Step k (0 or 1) of sub-policy `sub` (0..24) of AutoAugment table `table`
 * (rg_autoaugment_table in augment.h): its op, probability and bin of the
 * 10-bin space (-1 = no magnitude). Returns 0, or -1 when out of range. */
int rg_aug_autoaugment_step(int32_t table, int32_t sub, int32_t k, rg_aug_op *op, float *p, int32_t *bin);

/* 1 when op has a magnitude table in the space, 0 otherwise. */
int rg_aug_op_has_magnitude(rg_aug_op op);
/* 1 when the magnitude's sign is drawn (shear, translate, rotate, enhancements). */
int rg_aug_op_signed(rg_aug_op op);

#endif
