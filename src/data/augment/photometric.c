/* Photometric augmentations on uint8 pixels.
 *
 * torchvision 0.14 computes its enhancements ("blends") on uint8 tensors as
 *     (ratio * img1 + (1 - ratio) * img2).clamp(0, 255).to(uint8)
 * in float32: each product rounded to float, the sum rounded to float, and
 * the conversion to uint8 truncating. The functions below do the same float
 * operations in the same order, which is what makes them agree with
 * torchvision bit for bit (tests/golden/test_augment_golden.c).
 */
#include "regain/augment_ops.h"

/* Results must not depend on the compiler fusing a*b+c into one rounding
 * (clang does by default; GCC does not in ISO C mode). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <stddef.h>
#include <string.h>

/* One blended value: a = ratio * v1 and b = (1 - ratio) * v2, each rounded to
 * float, then summed, clamped and truncated. */
static inline uint8_t blend1(float ratio, float inv, float v1, float v2)
{
    const float a = ratio * v1;
    const float b = inv * v2;
    float s = a + b;
    if (!(s > 0.0f)) s = 0.0f;
    if (s > 255.0f) s = 255.0f;
    return (uint8_t)s;
}

/* torchvision receives the factor as a Python float (double): the blend
 * uses float(ratio) and float(1.0 - ratio), both rounded from the double.
 * Rounding the factor first and then subtracting gives a different second
 * weight, which moves results that are exact integers in real arithmetic
 * (a factor times a value minus the rest) to the integer below. */
static float complement(double ratio) { return (float)(1.0 - ratio); }

void rg_aug_brightness(uint8_t *img, int32_t n, int32_t c, double factor)
{
    const float inv = complement(factor);
    const size_t total = (size_t)n * (size_t)c;
    for (size_t i = 0; i < total; i++) img[i] = blend1((float)factor, inv, (float)img[i], 0.0f);
}

/* torchvision's rgb_to_grayscale for uint8: 0.2989 r + 0.587 g + 0.114 b in
 * float32, truncated. */
static inline uint8_t gray(const uint8_t *p)
{
    const float r = 0.2989f * (float)p[0];
    const float g = 0.587f * (float)p[1];
    const float b = 0.114f * (float)p[2];
    return (uint8_t)((r + g) + b);
}

void rg_aug_contrast(uint8_t *img, int32_t n, int32_t c, double factor)
{
    /* The mean of (grayscale) byte values: the integer sum is exact, and
     * torch's CPU mean divides the float sum by the count once. */
    uint64_t sum = 0;
    for (int32_t i = 0; i < n; i++) sum += c == 3 ? gray(img + (size_t)i * 3) : img[(size_t)i * (size_t)c];
    const float mean = (float)sum / (float)n;
    const float inv = complement(factor);
    const size_t total = (size_t)n * (size_t)c;
    for (size_t i = 0; i < total; i++) img[i] = blend1((float)factor, inv, (float)img[i], mean);
}

void rg_aug_color(uint8_t *img, int32_t n, int32_t c, double factor)
{
    if (c != 3) return; /* torchvision (and PIL) leave grayscale images alone */
    const float inv = complement(factor);
    for (int32_t i = 0; i < n; i++) {
        uint8_t *p = img + (size_t)i * 3;
        const float l = (float)gray(p);
        for (int k = 0; k < 3; k++) p[k] = blend1((float)factor, inv, (float)p[k], l);
    }
}

void rg_aug_sharpness(uint8_t *img, uint8_t *scratch, int32_t h, int32_t w, int32_t c, double factor)
{
    if (h <= 2 || w <= 2) return;
    const size_t row = (size_t)w * (size_t)c;
    /* scratch = the "degenerate" image: the smoothed interior, rounded half
     * to even, with the original border. */
    memcpy(scratch, img, (size_t)h * row);
    const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    for (int32_t y = 1; y < h - 1; y++)
        for (int32_t x = 1; x < w - 1; x++)
            for (int32_t k = 0; k < c; k++) {
                const uint8_t *p = img + (size_t)y * row + (size_t)x * c + k;
                float s = 0.0f;
                for (int32_t dy = -1; dy <= 1; dy++)
                    for (int32_t dx = -1; dx <= 1; dx++) {
                        const float v = (float)p[(ptrdiff_t)dy * (ptrdiff_t)row + (ptrdiff_t)dx * c];
                        s += (dy == 0 && dx == 0 ? k5 : k1) * v;
                    }
                /* round half to even, then clamp, as _cast_squeeze_out */
                float r = nearbyintf(s);
                scratch[(size_t)y * row + (size_t)x * c + k] = (uint8_t)(r < 0.0f ? 0.0f : r > 255.0f ? 255.0f : r);
            }
    const float inv = complement(factor);
    const size_t total = (size_t)h * row;
    for (size_t i = 0; i < total; i++) img[i] = blend1((float)factor, inv, (float)img[i], (float)scratch[i]);
}

void rg_aug_posterize(uint8_t *img, int32_t n, int32_t c, int32_t bits)
{
    if (bits < 0) bits = 0;
    if (bits > 8) bits = 8;
    const uint8_t mask = (uint8_t)(0xFFu << (8 - bits));
    const size_t total = (size_t)n * (size_t)c;
    for (size_t i = 0; i < total; i++) img[i] &= mask;
}

void rg_aug_solarize(uint8_t *img, int32_t n, int32_t c, float threshold)
{
    const size_t total = (size_t)n * (size_t)c;
    for (size_t i = 0; i < total; i++)
        if ((float)img[i] >= threshold) img[i] = (uint8_t)(255 - img[i]);
}

void rg_aug_invert(uint8_t *img, int32_t n, int32_t c)
{
    const size_t total = (size_t)n * (size_t)c;
    for (size_t i = 0; i < total; i++) img[i] = (uint8_t)(255 - img[i]);
}

void rg_aug_autocontrast(uint8_t *img, int32_t n, int32_t c)
{
    for (int32_t k = 0; k < c; k++) {
        uint8_t lo = 255, hi = 0;
        for (int32_t i = 0; i < n; i++) {
            const uint8_t v = img[(size_t)i * c + k];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (lo == hi) continue; /* scale would be infinite: torchvision keeps the channel */
        /* torch evaluates `255.0 / t` as t.reciprocal() * 255.0 */
        const float recip = 1.0f / ((float)hi - (float)lo);
        const float scale = recip * 255.0f;
        for (int32_t i = 0; i < n; i++) {
            uint8_t *p = img + (size_t)i * c + k;
            float v = ((float)*p - (float)lo) * scale;
            if (v > 255.0f) v = 255.0f;
            *p = (uint8_t)v;
        }
    }
}

void rg_aug_equalize(uint8_t *img, int32_t n, int32_t c)
{
    for (int32_t k = 0; k < c; k++) {
        int64_t hist[256] = {0};
        for (int32_t i = 0; i < n; i++) hist[img[(size_t)i * c + k]]++;
        /* step = (count of all pixels except those of the last non-empty bin) / 255 */
        int last = 255;
        while (last > 0 && hist[last] == 0) last--;
        const int64_t step = ((int64_t)n - hist[last]) / 255;
        if (step == 0) continue;
        uint8_t lut[256];
        int64_t cum = 0;
        for (int v = 0; v < 256; v++) {
            /* lut[v] = (cumsum up to v-1 + step/2) / step, clamped */
            int64_t q = (cum + step / 2) / step;
            lut[v] = (uint8_t)(q > 255 ? 255 : q);
            cum += hist[v];
        }
        for (int32_t i = 0; i < n; i++) {
            uint8_t *p = img + (size_t)i * c + k;
            *p = lut[*p];
        }
    }
}
