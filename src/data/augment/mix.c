/* Batch-level mixup and CutMix (see mix.h for the draws' contract). */
#include "regain/mix.h"

#include <math.h>
#include <string.h>

#include "regain/rng.h"

static rg_status check_alpha(float a, const char *field, rg_error *err)
{
    if (!isfinite(a) || a < 0.0f || a > RG_MIX_MAX_ALPHA)
        return rg_fail(err, RG_ERR_ARG, "%s: alpha %g is outside [0, %g] (0 = off)", field, (double)a,
                       (double)RG_MIX_MAX_ALPHA);
    return RG_OK;
}

rg_status rg_mix_validate(const rg_mix_config *cfg, rg_error *err)
{
    if (!cfg) return rg_fail(err, RG_ERR_ARG, "mix: configuration is NULL");
    rg_status st;
    if ((st = check_alpha(cfg->mixup_alpha, "mixup", err)) || (st = check_alpha(cfg->cutmix_alpha, "cutmix", err)))
        return st;
    return RG_OK;
}

int rg_mix_active(const rg_mix_config *cfg) { return cfg->mixup_alpha > 0.0f || cfg->cutmix_alpha > 0.0f; }

void rg_mix_draw(const rg_mix_config *cfg, uint64_t seed, int64_t epoch, int64_t batch, int32_t h, int32_t w,
                 rg_mix_params *p)
{
    memset(p, 0, sizeof *p);
    p->lambda = 1.0f;
    const int mix = cfg->mixup_alpha > 0.0f, cut = cfg->cutmix_alpha > 0.0f;
    if (!mix && !cut) return;
    rg_rng r = rg_rng_keyed(seed, (uint64_t)epoch, RG_MIX_KEY + (uint64_t)batch);
    int use_cut = cut;
    if (mix && cut) use_cut = (int)rg_rng_below(&r, 2);
    const double alpha = use_cut ? cfg->cutmix_alpha : cfg->mixup_alpha;
    double lam = rg_rng_beta(&r, alpha, alpha);
    if (!use_cut) {
        p->kind = RG_MIX_MIXUP;
        p->lambda = (float)lam;
        return;
    }
    /* torchvision's reference RandomCutmix */
    const int32_t cy = (int32_t)rg_rng_below(&r, (uint32_t)h);
    const int32_t cx = (int32_t)rg_rng_below(&r, (uint32_t)w);
    const double rr = 0.5 * sqrt(1.0 - lam);
    const int32_t hh = (int32_t)(rr * h), hw = (int32_t)(rr * w);
    p->kind = RG_MIX_CUTMIX;
    p->y0 = cy - hh < 0 ? 0 : cy - hh;
    p->x0 = cx - hw < 0 ? 0 : cx - hw;
    p->y1 = cy + hh > h ? h : cy + hh;
    p->x1 = cx + hw > w ? w : cx + hw;
    p->lambda = (float)(1.0 - (double)(p->x1 - p->x0) * (double)(p->y1 - p->y0) / ((double)w * (double)h));
}

rg_status rg_mix_apply(const rg_mix_params *p, float *x, float *scratch, int32_t n, int32_t h, int32_t w, int32_t c,
                       const int32_t *labels, int32_t classes, float *targets, rg_error *err)
{
    if (n < 1 || classes < 1)
        return rg_fail(err, RG_ERR_ARG, "mix: batch of %d samples and %d classes (both must be >= 1)", n, classes);
    for (int32_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return rg_fail(err, RG_ERR_ARG, "mix: label %d of sample %d is outside [0, %d)", labels[i], i, classes);
    const size_t sample = (size_t)h * (size_t)w * (size_t)c;
    const float lam = p->kind == RG_MIX_NONE ? 1.0f : p->lambda;
    /* targets: own label lam, the partner's 1 - lam (summed when equal) */
    memset(targets, 0, sizeof(float) * (size_t)n * (size_t)classes);
    for (int32_t i = 0; i < n; i++) {
        const int32_t j = i == 0 ? n - 1 : i - 1;
        float *t = targets + (size_t)i * (size_t)classes;
        t[labels[i]] += lam;
        t[labels[j]] += 1.0f - lam;
    }
    if (p->kind == RG_MIX_NONE) return RG_OK;
    /* In place from the last sample down, so x[i-1] is still original when
     * sample i reads it; sample 0 reads the saved original of sample n-1. */
    memcpy(scratch, x + (size_t)(n - 1) * sample, sample * sizeof(float));
    const size_t row = (size_t)w * (size_t)c;
    for (int32_t i = n - 1; i >= 0; i--) {
        float *xi = x + (size_t)i * sample;
        const float *xj = i == 0 ? scratch : x + (size_t)(i - 1) * sample;
        if (p->kind == RG_MIX_MIXUP) {
            const float a = p->lambda, b = 1.0f - p->lambda;
            for (size_t k = 0; k < sample; k++) xi[k] = a * xi[k] + b * xj[k];
        } else {
            for (int32_t y = p->y0; y < p->y1; y++)
                memcpy(xi + (size_t)y * row + (size_t)p->x0 * c, xj + (size_t)y * row + (size_t)p->x0 * c,
                       (size_t)(p->x1 - p->x0) * (size_t)c * sizeof(float));
        }
    }
    return RG_OK;
}
