/* Box-shaped augmentations: the random resized crop's box, Cutout and random
 * erasing (their draws and the erase itself).
 *
 * The box draws follow torchvision 0.14's RandomResizedCrop.get_params and
 * RandomErasing.get_params: up to 10 attempts of (area fraction uniform in
 * scale, log aspect ratio uniform in log(ratio)), sides rounded half to even
 * as Python's round(), a position uniform among those that fit.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

void rg_aug_erase(uint8_t *img, int32_t h, int32_t w, int32_t c, int32_t top, int32_t left, int32_t eh,
                  int32_t ew, uint8_t value, const uint8_t *values)
{
    int32_t y0 = top < 0 ? 0 : top, x0 = left < 0 ? 0 : left;
    int32_t y1 = top + eh > h ? h : top + eh, x1 = left + ew > w ? w : left + ew;
    for (int32_t y = y0; y < y1; y++)
        for (int32_t x = x0; x < x1; x++) {
            uint8_t *d = img + ((size_t)y * (size_t)w + (size_t)x) * (size_t)c;
            if (values)
                memcpy(d, values + (((size_t)(y - top) * (size_t)ew + (size_t)(x - left)) * (size_t)c), (size_t)c);
            else
                memset(d, value, (size_t)c);
        }
}

/* a + (b - a) * u, as torch's uniform_(a, b). */
static double uniform_in(rg_rng *rng, double a, double b) { return a + (b - a) * (double)rg_rng_uniform(rng); }

/* Python's int(round(x)) for x >= 0 (half to even). */
/* A side far beyond any image (an extreme aspect ratio draws one) is
 * clamped before the conversion, which would otherwise be undefined; the
 * callers then reject it like any box that does not fit. */
static int32_t round_half_even(double x) { return x < 1e9 ? (int32_t)nearbyint(x) : 1000000000; }

void aug_draw_resized_crop(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng,
                           rg_augment_params *p)
{
    const double area = (double)h * (double)w;
    const double lr0 = log((double)cfg->rrc_ratio[0]), lr1 = log((double)cfg->rrc_ratio[1]);
    p->resized = 1;
    for (int attempt = 0; attempt < 10; attempt++) {
        const double target = area * uniform_in(rng, cfg->rrc_scale[0], cfg->rrc_scale[1]);
        const double aspect = exp(uniform_in(rng, lr0, lr1));
        const int32_t cw = round_half_even(sqrt(target * aspect));
        const int32_t ch = round_half_even(sqrt(target / aspect));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            p->rc_top = (int32_t)rg_rng_below(rng, (uint32_t)(h - ch + 1));
            p->rc_left = (int32_t)rg_rng_below(rng, (uint32_t)(w - cw + 1));
            p->rc_h = ch;
            p->rc_w = cw;
            return;
        }
    }
    /* fallback: the central crop with the ratio clamped into range */
    const double in_ratio = (double)w / (double)h;
    int32_t cw = w, ch = h;
    if (in_ratio < cfg->rrc_ratio[0]) {
        ch = round_half_even((double)cw / cfg->rrc_ratio[0]);
    } else if (in_ratio > cfg->rrc_ratio[1]) {
        cw = round_half_even((double)ch * cfg->rrc_ratio[1]);
    }
    if (ch < 1) ch = 1;
    if (cw < 1) cw = 1;
    p->rc_top = (h - ch) / 2;
    p->rc_left = (w - cw) / 2;
    p->rc_h = ch;
    p->rc_w = cw;
}

void aug_draw_cutout(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p)
{
    /* DeVries & Taylor (2017): a size x size square whose centre is uniform
     * over the image, clipped at the borders; applied with probability p. */
    if (!(rg_rng_uniform(rng) < cfg->cutout_p)) return;
    const int32_t cy = (int32_t)rg_rng_below(rng, (uint32_t)h);
    const int32_t cx = (int32_t)rg_rng_below(rng, (uint32_t)w);
    const int32_t half = cfg->cutout_size / 2;
    int32_t y0 = cy - half, x0 = cx - half, y1 = cy - half + cfg->cutout_size, x1 = cx - half + cfg->cutout_size;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > h) y1 = h;
    if (x1 > w) x1 = w;
    p->cutout = 1;
    p->cut_top = y0;
    p->cut_left = x0;
    p->cut_h = y1 - y0;
    p->cut_w = x1 - x0;
}

void aug_draw_erasing(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p)
{
    if (!(rg_rng_uniform(rng) < cfg->erase_p)) return;
    const double area = (double)h * (double)w;
    const double lr0 = log((double)cfg->erase_ratio[0]), lr1 = log((double)cfg->erase_ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        const double target = area * uniform_in(rng, cfg->erase_scale[0], cfg->erase_scale[1]);
        const double aspect = exp(uniform_in(rng, lr0, lr1));
        /* torchvision's RandomErasing takes the ratio as height / width */
        const int32_t eh = round_half_even(sqrt(target * aspect));
        const int32_t ew = round_half_even(sqrt(target / aspect));
        if (!(eh < h && ew < w)) continue;
        p->erase = 1;
        p->er_top = (int32_t)rg_rng_below(rng, (uint32_t)(h - eh + 1));
        p->er_left = (int32_t)rg_rng_below(rng, (uint32_t)(w - ew + 1));
        p->er_h = eh;
        p->er_w = ew;
        p->erase_random = cfg->erase_random;
        p->erase_value = (uint8_t)cfg->erase_value;
        if (cfg->erase_random) p->erase_seed = rg_rng_u64(rng);
        return;
    }
    /* No box fitted in 10 attempts: torchvision returns the image unchanged. */
}

void aug_apply_erasures(const rg_augment_params *p, uint8_t *img, int32_t h, int32_t w, int32_t c)
{
    if (p->cutout) rg_aug_erase(img, h, w, c, p->cut_top, p->cut_left, p->cut_h, p->cut_w, 0, NULL);
    if (p->erase) {
        if (!p->erase_random) {
            rg_aug_erase(img, h, w, c, p->er_top, p->er_left, p->er_h, p->er_w, p->erase_value, NULL);
            return;
        }
        /* Random bytes generated row by row, so no buffer is needed: the
         * k-th byte of the box is the k-th byte of the keyed stream. */
        rg_rng r = rg_rng_keyed(p->erase_seed, 0, 0);
        for (int32_t y = p->er_top; y < p->er_top + p->er_h && y < h; y++)
            for (int32_t x = p->er_left; x < p->er_left + p->er_w && x < w; x++)
                for (int32_t k = 0; k < c; k++)
                    img[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)k] = (uint8_t)(rg_rng_u64(&r) >> 56);
    }
}
