/* Observers: ranges for quantization from calibration data. Contracts in
 * include/regain/observer.h, the methods explained in docs/quantization.md.
 *
 * The histogram lives on a grid anchored at 0: bin j covers
 * [(base + j) * width, (base + j + 1) * width). When data falls outside, the
 * width is multiplied by an integer k and the bins merged; each old bin lies
 * inside exactly one new bin because both grids contain every multiple of
 * the new width, so the counts move exactly. */
#include "regain/observer.h"
#include "regain/quant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double width;     /* > 0 once started */
    int64_t base;     /* index of bin 0 on the grid */
    int32_t bins;
    double *count;    /* [bins] */
    double *scratch;  /* [bins]: the merge target when the grid grows */
    int started;
    uint64_t zeros;   /* zeros seen before the first non-zero value fixed a width */
} histogram;

struct rg_observer {
    rg_obs_config cfg;
    uint64_t n;
    float min, max;   /* exact extremes of everything seen */
    float avg_min, avg_max; /* MOVING_AVG */
    histogram h;      /* PERCENTILE, MSE: signed values; ENTROPY: |x| */
};

rg_obs_config rg_obs_default(rg_obs_kind kind)
{
    rg_obs_config c = {.kind = kind, .momentum = 0.01, .percentile = 99.99, .bins = 2048, .num_bits = 8};
    return c;
}

static int uses_histogram(rg_obs_kind k)
{
    return k == RG_OBS_PERCENTILE || k == RG_OBS_MSE || k == RG_OBS_ENTROPY;
}

rg_status rg_obs_create(const rg_obs_config *cfg, rg_observer **out, rg_error *err)
{
    *out = NULL;
    if ((int)cfg->kind < RG_OBS_MINMAX || cfg->kind > RG_OBS_ENTROPY)
        return rg_fail(err, RG_ERR_ARG, "observer: unknown kind %d", (int)cfg->kind);
    if (cfg->kind == RG_OBS_MOVING_AVG && !(cfg->momentum > 0.0 && cfg->momentum <= 1.0))
        return rg_fail(err, RG_ERR_ARG, "observer: momentum %g must be in (0, 1]", cfg->momentum);
    if (cfg->kind == RG_OBS_PERCENTILE && !(cfg->percentile > 50.0 && cfg->percentile <= 100.0))
        return rg_fail(err, RG_ERR_ARG, "observer: percentile %g must be in (50, 100]", cfg->percentile);
    if (uses_histogram(cfg->kind) && (cfg->bins < 16 || cfg->bins > (1 << 20)))
        return rg_fail(err, RG_ERR_ARG, "observer: bins %d must be in [16, 1048576]", (int)cfg->bins);
    if ((cfg->kind == RG_OBS_MSE || cfg->kind == RG_OBS_ENTROPY) && (cfg->num_bits < 2 || cfg->num_bits > 16))
        return rg_fail(err, RG_ERR_ARG, "observer: num_bits %d must be in [2, 16]", (int)cfg->num_bits);
    if (cfg->kind == RG_OBS_ENTROPY && cfg->bins < (2 << cfg->num_bits))
        return rg_fail(err, RG_ERR_ARG, "observer: bins %d must be at least 2^(num_bits+1) = %d for entropy",
                       (int)cfg->bins, 2 << cfg->num_bits);
    rg_observer *o = rg_calloc(1, sizeof *o, err);
    if (!o) return RG_ERR_NOMEM;
    o->cfg = *cfg;
    o->min = INFINITY;
    o->max = -INFINITY;
    if (uses_histogram(cfg->kind)) {
        o->h.bins = cfg->bins;
        o->h.count = rg_calloc((size_t)cfg->bins, sizeof(double), err);
        o->h.scratch = o->h.count ? rg_calloc((size_t)cfg->bins, sizeof(double), err) : NULL;
        if (!o->h.scratch) {
            free(o->h.count);
            free(o);
            return RG_ERR_NOMEM;
        }
    }
    *out = o;
    return RG_OK;
}

void rg_obs_free(rg_observer *o)
{
    if (!o) return;
    free(o->h.count);
    free(o->h.scratch);
    free(o);
}

uint64_t rg_obs_count(const rg_observer *o)
{
    return o->n;
}

/* ---- histogram ---- */

static int64_t grid_floor(double v, double width)
{
    return (int64_t)floor(v / width);
}

/* Starts the grid so that [lo, hi] (lo <= 0 <= hi, hi > lo) fits in the bins. */
static void hist_start(histogram *h, double lo, double hi)
{
    double w = (hi - lo) / (double)(h->bins - 1);
    while (grid_floor(hi, w) - grid_floor(lo, w) > h->bins - 1) w *= 1.0 + 1e-9;
    h->width = w;
    h->base = grid_floor(lo, w);
    h->started = 1;
    memset(h->count, 0, sizeof(double) * (size_t)h->bins);
}

/* floor(j / k) for k >= 1 that may exceed int64: |j| <= bins there. */
static int64_t floor_div(int64_t j, double k)
{
    if (k > 4e18) return j >= 0 ? 0 : -1;
    int64_t ki = (int64_t)k, q = j / ki;
    if (j % ki != 0 && j < 0) q--;
    return q;
}

/* Grows the grid so that [lo, hi] fits too, beside the bins in use (the
 * empty part of the old grid is not kept: a grid that only ever doubled
 * would grow far past the data). k = 1 is a plain shift. */
static void hist_grow(histogram *h, double lo, double hi)
{
    double cur_lo = (double)h->base * h->width, cur_hi = (double)(h->base + h->bins) * h->width;
    if (lo >= cur_lo && hi < cur_hi) return;
    int32_t jmin = 0, jmax = h->bins - 1;
    while (jmin < h->bins - 1 && h->count[jmin] == 0.0) jmin++;
    while (jmax > jmin && h->count[jmax] == 0.0) jmax--;
    int64_t old_lo = h->base + jmin, old_hi = h->base + jmax; /* grid indices in use */
    double span = fmax(hi, (double)(old_hi + 1) * h->width) - fmin(lo, (double)old_lo * h->width);
    double k = ceil(span / (h->width * (double)(h->bins - 1)));
    if (k < 1) k = 1;
    int64_t nlo, nhi;
    for (;;) {
        double nw = h->width * k;
        int64_t a = grid_floor(lo, nw), b = floor_div(old_lo, k), c = grid_floor(hi, nw), d = floor_div(old_hi, k);
        nlo = a < b ? a : b;
        nhi = c > d ? c : d;
        if (nhi - nlo <= h->bins - 1) break;
        k += k < 4e18 ? 1 : k;
    }
    double *dst = h->scratch;
    memset(dst, 0, sizeof(double) * (size_t)h->bins);
    for (int32_t j = jmin; j <= jmax; j++) {
        if (h->count[j] == 0.0) continue;
        dst[floor_div(h->base + j, k) - nlo] += h->count[j];
    }
    h->scratch = h->count;
    h->count = dst;
    h->width *= k;
    h->base = nlo;
}

static int32_t hist_index(const histogram *h, double v)
{
    int64_t t = grid_floor(v, h->width) - h->base;
    if (t < 0) t = 0; /* rounding at the edges */
    if (t >= h->bins) t = h->bins - 1;
    return (int32_t)t;
}

static void hist_observe(histogram *h, const float *x, size_t n, int absolute, float bmin, float bmax)
{
    double lo = absolute ? 0.0 : fmin((double)bmin, 0.0);
    double hi = absolute ? fmax(fabs((double)bmin), fabs((double)bmax)) : fmax((double)bmax, 0.0);
    if (!h->started) {
        if (hi == lo) { /* only zeros so far: no width to choose yet */
            h->zeros += n;
            return;
        }
        hist_start(h, lo, hi);
        h->count[hist_index(h, 0.0)] += (double)h->zeros;
        h->zeros = 0;
    } else {
        hist_grow(h, lo, hi);
    }
    /* The entropy histogram leaves exact zeros out: after a ReLU they are
     * often half the values, and real 0 is always exactly representable
     * (the zero point), but in the bin-merging model of the KL search a
     * spike in bin 0 smeared over its group dominates the divergence and
     * drags the threshold far down (seen on mbv2-tiny: ReLU6 outputs
     * clipped at 2.6, 12 dB instead of 30). */
    for (size_t i = 0; i < n; i++) {
        if (absolute && x[i] == 0.0f) continue;
        h->count[hist_index(h, absolute ? fabs((double)x[i]) : (double)x[i])] += 1.0;
    }
}

rg_status rg_obs_observe(rg_observer *o, const float *x, size_t n, rg_error *err)
{
    if (n == 0) return RG_OK;
    float bmin = INFINITY, bmax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return rg_fail(err, RG_ERR_ARG, "observer: value %zu of the batch is %g (not finite)", i, (double)x[i]);
        if (x[i] < bmin) bmin = x[i];
        if (x[i] > bmax) bmax = x[i];
    }
    if (o->cfg.kind == RG_OBS_MOVING_AVG) {
        if (o->n == 0) {
            o->avg_min = bmin;
            o->avg_max = bmax;
        } else { /* float arithmetic, as PyTorch's float32 tensors */
            float c = (float)o->cfg.momentum;
            o->avg_min = o->avg_min + c * (bmin - o->avg_min);
            o->avg_max = o->avg_max + c * (bmax - o->avg_max);
        }
    }
    if (uses_histogram(o->cfg.kind)) hist_observe(&o->h, x, n, o->cfg.kind == RG_OBS_ENTROPY, bmin, bmax);
    if (bmin < o->min) o->min = bmin;
    if (bmax > o->max) o->max = bmax;
    o->n += n;
    return RG_OK;
}

/* ---- ranges from the histogram ---- */

/* The value below which a fraction q of the counts lies (uniform within a bin). */
static double hist_quantile(const histogram *h, double q)
{
    double total = 0.0;
    for (int32_t j = 0; j < h->bins; j++) total += h->count[j];
    double target = q * total, cum = 0.0;
    for (int32_t j = 0; j < h->bins; j++) {
        double c = h->count[j];
        if (c > 0.0 && cum + c >= target) return ((double)(h->base + j) + (target - cum) / c) * h->width;
        cum += c;
    }
    return (double)(h->base + h->bins) * h->width;
}

/* Squared quantization error of the histogram (bin centres) for range [lo, hi]. */
static double hist_mse(const histogram *h, float lo, float hi, int32_t qmin, int32_t qmax)
{
    rg_qparams p;
    if (rg_q_params_from_range(lo, hi, qmin, qmax, &p, NULL) != RG_OK) return INFINITY;
    double e = 0.0;
    for (int32_t j = 0; j < h->bins; j++) {
        if (h->count[j] == 0.0) continue;
        float v = (float)(((double)(h->base + j) + 0.5) * h->width);
        float back = p.scale * (float)(rg_q_quantize_value(v, p, qmin, qmax) - p.zero_point);
        double d = (double)back - (double)v;
        e += h->count[j] * d * d;
    }
    return e;
}

/* Clipping ranges [a * min, b * max]: first a = b over a grid of 100 steps,
 * then each end alone around the best, keeping the smallest error. */
static void mse_range(const rg_observer *o, float *lo, float *hi)
{
    int32_t qmin = -(1 << (o->cfg.num_bits - 1)), qmax = (1 << (o->cfg.num_bits - 1)) - 1;
    float mn = fminf(o->min, 0.0f), mx = fmaxf(o->max, 0.0f);
    double best = INFINITY;
    float bl = mn, bh = mx;
    for (int i = 1; i <= 100; i++) {
        float a = (float)i / 100.0f;
        double e = hist_mse(&o->h, a * mn, a * mx, qmin, qmax);
        if (e < best) { best = e; bl = a * mn; bh = a * mx; }
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 1; i <= 100; i++) {
            float a = (float)i / 100.0f;
            float l = pass == 0 ? a * mn : bl, u = pass == 0 ? bh : a * mx;
            double e = hist_mse(&o->h, l, u, qmin, qmax);
            if (e < best) { best = e; bl = l; bh = u; }
        }
    *lo = bl;
    *hi = bh;
}

/* Normalizes d[0..n) to sum 1 and moves a little mass (1e-4 per empty bin)
 * onto the empty bins, as MXNet's calibration does: without it a single
 * outlier folded into P's last bin, where Q is empty, makes every clipping
 * threshold infinitely bad and the search keeps the full range. */
static void smooth(double *d, int32_t n, double sum)
{
    const double eps = 1e-4;
    int32_t zeros = 0;
    for (int32_t j = 0; j < n; j++) {
        d[j] /= sum;
        zeros += d[j] == 0.0;
    }
    if (zeros == 0 || zeros == n) return;
    double take = eps * zeros / (double)(n - zeros);
    for (int32_t j = 0; j < n; j++) d[j] = d[j] == 0.0 ? eps : fmax(d[j] - take, eps * 1e-3);
}

/* TensorRT's entropy calibration over the histogram of |x|: for each
 * threshold i (in bins), P = counts[0..i) with the outliers added to bin
 * i-1, Q = counts[0..i) merged into `levels` groups and spread back evenly
 * over the bins where P is non-zero; both smoothed; pick the i minimizing
 * KL(P || Q). */
static float entropy_threshold(const histogram *h, int32_t levels)
{
    const int32_t nb = h->bins;
    double *p = malloc(sizeof(double) * (size_t)nb), *q = malloc(sizeof(double) * (size_t)nb);
    if (!p || !q) { /* no memory: fall back to no clipping */
        free(p);
        free(q);
        return (float)((double)(h->base + nb) * h->width);
    }
    double total_tail = 0.0;
    for (int32_t j = 0; j < nb; j++) total_tail += h->count[j];
    /* the highest non-empty bin bounds the useful thresholds */
    int32_t top = nb;
    while (top > 1 && h->count[top - 1] == 0.0) top--;
    int32_t stride = nb > 2048 ? nb / 2048 : 1;
    double best = INFINITY;
    int32_t best_i = top;
    double below = 0.0; /* sum counts[0..i) */
    int32_t summed = 0;
    for (int32_t i = levels; i <= top; i += stride) {
        while (summed < i) below += h->count[summed++];
        double outliers = total_tail - below;
        memcpy(p, h->count, sizeof(double) * (size_t)i);
        p[i - 1] += outliers;
        double psum = below + outliers;
        if (psum <= 0.0) continue;
        double qsum = 0.0;
        for (int32_t g = 0; g < levels; g++) {
            int32_t b0 = (int32_t)((int64_t)g * i / levels), b1 = (int32_t)((int64_t)(g + 1) * i / levels);
            double s = 0.0;
            int32_t nz = 0;
            for (int32_t j = b0; j < b1; j++) {
                s += h->count[j];
                nz += p[j] != 0.0;
            }
            for (int32_t j = b0; j < b1; j++) q[j] = (p[j] != 0.0 && nz) ? s / nz : 0.0;
            qsum += s;
        }
        if (qsum <= 0.0) continue;
        smooth(p, i, psum);
        smooth(q, i, qsum);
        double kl = 0.0;
        for (int32_t j = 0; j < i; j++) kl += p[j] * log(p[j] / q[j]);
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    free(p);
    free(q);
    return (float)((double)(h->base + best_i) * h->width);
}

rg_status rg_obs_range(const rg_observer *o, float *lo, float *hi, rg_error *err)
{
    if (o->n == 0) return rg_fail(err, RG_ERR_ARG, "observer: no values observed yet");
    if (uses_histogram(o->cfg.kind) && !o->h.started) { /* only zeros */
        *lo = *hi = 0.0f;
        return RG_OK;
    }
    switch (o->cfg.kind) {
    case RG_OBS_MINMAX:
        *lo = o->min;
        *hi = o->max;
        break;
    case RG_OBS_MOVING_AVG:
        *lo = o->avg_min;
        *hi = o->avg_max;
        break;
    case RG_OBS_PERCENTILE: {
        double p = o->cfg.percentile / 100.0;
        *lo = (float)fmax(hist_quantile(&o->h, 1.0 - p), (double)o->min);
        *hi = (float)fmin(hist_quantile(&o->h, p), (double)o->max);
        if (*lo > *hi) *lo = *hi;
        break;
    }
    case RG_OBS_MSE: mse_range(o, lo, hi); break;
    case RG_OBS_ENTROPY: {
        int signed_data = o->min < 0.0f;
        float t = entropy_threshold(&o->h, signed_data ? (1 << (o->cfg.num_bits - 1)) : (1 << o->cfg.num_bits));
        float amax = fmaxf(fabsf(o->min), fabsf(o->max));
        if (t > amax) t = amax;
        *hi = t;
        *lo = signed_data ? -t : 0.0f;
        break;
    }
    }
    return RG_OK;
}

rg_status rg_obs_channel_minmax(const float *w, int32_t channels, size_t per_channel, float *lo, float *hi,
                                rg_error *err)
{
    if (channels < 1 || per_channel < 1)
        return rg_fail(err, RG_ERR_ARG, "channel min/max: channels %d and per_channel %zu must be >= 1",
                       (int)channels, per_channel);
    for (int32_t c = 0; c < channels; c++) {
        const float *row = w + (size_t)c * per_channel;
        float mn = INFINITY, mx = -INFINITY;
        for (size_t i = 0; i < per_channel; i++) {
            if (!isfinite(row[i]))
                return rg_fail(err, RG_ERR_ARG, "channel min/max: channel %d element %zu is %g (not finite)",
                               (int)c, i, (double)row[i]);
            mn = fminf(mn, row[i]);
            mx = fmaxf(mx, row[i]);
        }
        lo[c] = mn;
        hi[c] = mx;
    }
    return RG_OK;
}
