/* Geometric augmentations: flips, nearest-neighbour affine warps (rotate,
 * shear, translate) and the bilinear resized crop.
 *
 * The affine warp reproduces torchvision 0.14's tensor path
 * (_gen_affine_grid + grid_sample, mode "nearest", align_corners False)
 * step by step in float32: the map is evaluated at pixel centres about the
 * image centre, normalized by half the size, un-normalized again and rounded
 * half to even. Doing the same float operations in the same order is what
 * makes the nearest pixel agree with torchvision even where the exact source
 * coordinate lies close to a half-integer.
 */
#include "regain/augment_ops.h"

/* Results must not depend on the compiler fusing a*b+c into one rounding
 * (clang does by default; GCC does not in ISO C mode). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

void rg_aug_hflip(uint8_t *img, int32_t h, int32_t w, int32_t c)
{
    for (int32_t y = 0; y < h; y++) {
        uint8_t *row = img + (size_t)y * (size_t)w * (size_t)c;
        for (int32_t a = 0, b = w - 1; a < b; a++, b--)
            for (int32_t k = 0; k < c; k++) {
                uint8_t t = row[(size_t)a * c + k];
                row[(size_t)a * c + k] = row[(size_t)b * c + k];
                row[(size_t)b * c + k] = t;
            }
    }
}

void rg_aug_vflip(uint8_t *img, int32_t h, int32_t w, int32_t c)
{
    const size_t row = (size_t)w * (size_t)c;
    for (int32_t a = 0, b = h - 1; a < b; a++, b--) {
        uint8_t *ra = img + (size_t)a * row, *rb = img + (size_t)b * row;
        for (size_t k = 0; k < row; k++) {
            uint8_t t = ra[k];
            ra[k] = rb[k];
            rb[k] = t;
        }
    }
}

void rg_aug_affine(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, const double m[6],
                   uint8_t fill)
{
    const size_t row = (size_t)w * (size_t)c;
    memcpy(scratch, img, (size_t)h * row);
    /* theta (float32) divided by [w/2, h/2]: torchvision's rescaled_theta. */
    const float hw = 0.5f * (float)w, hh = 0.5f * (float)h;
    const float r00 = (float)m[0] / hw, r10 = (float)m[1] / hw, r20 = (float)m[2] / hw;
    const float r01 = (float)m[3] / hh, r11 = (float)m[4] / hh, r21 = (float)m[5] / hh;
    for (int32_t y = 0; y < h; y++) {
        /* base grid: linspace(-h/2 + 0.5, h/2 - 0.5, h), exact in float */
        const float v = -0.5f * (float)h + 0.5f + (float)y;
        uint8_t *dst = img + (size_t)y * row;
        for (int32_t x = 0; x < w; x++) {
            const float u = -0.5f * (float)w + 0.5f + (float)x;
            const float gx = u * r00 + v * r10 + r20;
            const float gy = u * r01 + v * r11 + r21;
            /* grid_sample: ((g + 1) * size - 1) / 2, then nearest */
            const float ix = nearbyintf((gx + 1.0f) * hw - 0.5f);
            const float iy = nearbyintf((gy + 1.0f) * hh - 0.5f);
            uint8_t *d = dst + (size_t)x * (size_t)c;
            if (!(ix >= 0.0f && ix < (float)w && iy >= 0.0f && iy < (float)h)) {
                memset(d, fill, (size_t)c);
                continue;
            }
            memcpy(d, scratch + (size_t)iy * row + (size_t)ix * (size_t)c, (size_t)c);
        }
    }
}

/* torchvision's _get_inverse_affine_matrix (inverted) for angle, translate
 * (tx, ty), scale 1, shear (sx, sy) degrees, and center (cx, cy) relative to
 * the image centre. Double precision, as in Python. */
static void inverse_affine(double angle, double tx, double ty, double shx, double shy, double cx, double cy,
                           double m[6])
{
    const double deg = 3.14159265358979323846 / 180.0;
    const double rot = angle * deg, sx = shx * deg, sy = shy * deg;
    const double a = cos(rot - sy) / cos(sy);
    const double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    const double cc = sin(rot - sy) / cos(sy);
    const double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    m[0] = d;
    m[1] = -b;
    m[2] = 0.0;
    m[3] = -cc;
    m[4] = a;
    m[5] = 0.0;
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
}

void rg_aug_rotate(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, float degrees,
                   uint8_t fill)
{
    double m[6];
    /* F.rotate passes -angle to the matrix (its documented sign convention). */
    inverse_affine(-(double)degrees, 0, 0, 0, 0, 0, 0, m);
    rg_aug_affine(img, scratch, h, w, c, m, fill);
}

/* autoaugment's shear: angle degrees(atan(factor)) about the top-left corner. */
void rg_aug_shear_x(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, float factor,
                    uint8_t fill)
{
    double m[6];
    const double ang = atan((double)factor) * (180.0 / 3.14159265358979323846);
    inverse_affine(0, 0, 0, ang, 0, -0.5 * w, -0.5 * h, m);
    rg_aug_affine(img, scratch, h, w, c, m, fill);
}

void rg_aug_shear_y(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, float factor,
                    uint8_t fill)
{
    double m[6];
    const double ang = atan((double)factor) * (180.0 / 3.14159265358979323846);
    inverse_affine(0, 0, 0, 0, ang, -0.5 * w, -0.5 * h, m);
    rg_aug_affine(img, scratch, h, w, c, m, fill);
}

/* Whole-pixel shifts are exact, so they are a plain copy rather than a warp. */
static void shift(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t dx, int32_t dy,
                  uint8_t fill)
{
    const size_t row = (size_t)w * (size_t)c;
    memcpy(scratch, img, (size_t)h * row);
    for (int32_t y = 0; y < h; y++) {
        const int64_t sy = (int64_t)y - dy;
        uint8_t *dst = img + (size_t)y * row;
        for (int32_t x = 0; x < w; x++) {
            const int64_t sx = (int64_t)x - dx;
            uint8_t *d = dst + (size_t)x * (size_t)c;
            if (sy < 0 || sy >= h || sx < 0 || sx >= w)
                memset(d, fill, (size_t)c);
            else
                memcpy(d, scratch + (size_t)sy * row + (size_t)sx * (size_t)c, (size_t)c);
        }
    }
}

void rg_aug_translate_x(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t dx,
                        uint8_t fill)
{
    shift(img, scratch, h, w, c, dx, 0, fill);
}

void rg_aug_translate_y(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t dy,
                        uint8_t fill)
{
    shift(img, scratch, h, w, c, 0, dy, fill);
}

/* Source index and weights of one output coordinate, as ATen's
 * upsample_bilinear2d with align_corners False computes them (float32). */
static void linear_index(int32_t out, int32_t in, int32_t i, int32_t *i0, int32_t *i1, float *l0, float *l1)
{
    const float scale = (float)in / (float)out;
    /* ATen: scale * (dst_index + 0.5) - 0.5 with a double 0.5, so the
     * product and difference are double, rounded to float once */
    float src = (float)((double)scale * ((double)i + 0.5) - 0.5);
    if (src < 0.0f) src = 0.0f;
    *i0 = (int32_t)src;
    if (*i0 > in - 1) *i0 = in - 1;
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    *l1 = src - (float)*i0;
    *l0 = 1.0f - *l1;
}

void rg_aug_resized_crop(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, int32_t top,
                         int32_t left, int32_t ch, int32_t cw)
{
    const size_t row = (size_t)w * (size_t)c;
    memcpy(scratch, img, (size_t)h * row);
    const uint8_t *src = scratch + (size_t)top * row + (size_t)left * (size_t)c;
    for (int32_t y = 0; y < h; y++) {
        int32_t y0, y1;
        float ly0, ly1;
        linear_index(h, ch, y, &y0, &y1, &ly0, &ly1);
        for (int32_t x = 0; x < w; x++) {
            int32_t x0, x1;
            float lx0, lx1;
            linear_index(w, cw, x, &x0, &x1, &lx0, &lx1);
            for (int32_t k = 0; k < c; k++) {
                const float p00 = src[(size_t)y0 * row + (size_t)x0 * c + k];
                const float p01 = src[(size_t)y0 * row + (size_t)x1 * c + k];
                const float p10 = src[(size_t)y1 * row + (size_t)x0 * c + k];
                const float p11 = src[(size_t)y1 * row + (size_t)x1 * c + k];
                float v = ly0 * (lx0 * p00 + lx1 * p01) + ly1 * (lx0 * p10 + lx1 * p11);
                v = nearbyintf(v);
                img[(size_t)y * row + (size_t)x * c + k] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
            }
        }
    }
}
