/* Summaries over seeds, paired comparisons and the Pareto front (see
 * include/regain/stats.h; formulas in docs/report.md). */
#include "regain/stats.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>

double rg_stats_mean(const double *x, size_t n)
{
    if (!n) return NAN;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

double rg_stats_sd(const double *x, size_t n)
{
    if (n < 2) return NAN;
    /* Two passes: the one-pass sum of squares loses every digit when the
     * spread is tiny next to the mean (accuracies of 0.9 differing by 1e-4). */
    double m = rg_stats_mean(x, n), ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    return sqrt(ss / (double)(n - 1));
}

double rg_stats_t_quantile(double p, double df)
{
    return gsl_cdf_tdist_Pinv(p, df);
}

/* Half width of the RG_STATS_LEVEL interval of a mean of n values. */
static double half_width(double sd, size_t n)
{
    return rg_stats_t_quantile(0.5 + RG_STATS_LEVEL / 2.0, (double)(n - 1)) * sd / sqrt((double)n);
}

void rg_stats_summarize(const double *x, size_t n, rg_summary *out)
{
    out->n = (int32_t)n;
    out->mean = rg_stats_mean(x, n);
    out->sd = rg_stats_sd(x, n);
    out->lo = out->hi = NAN;
    if (n >= 2) {
        double h = half_width(out->sd, n);
        out->lo = out->mean - h;
        out->hi = out->mean + h;
    }
}

const char *rg_verdict_name(rg_verdict v)
{
    switch (v) {
    case RG_VERDICT_GAIN: return "gain";
    case RG_VERDICT_LOSS: return "loss";
    case RG_VERDICT_UNTESTED: return "not tested";
    case RG_VERDICT_NONE: break;
    }
    return "no detectable difference";
}

const char *rg_paired_method_name(rg_paired_method m)
{
    switch (m) {
    case RG_PAIRED_T: return "paired t-test";
    case RG_PAIRED_NONE: break;
    }
    return "too few pairs";
}

static void paired_t(int32_t n, rg_paired *out)
{
    out->method = RG_PAIRED_T;
    double se = out->sd / sqrt((double)n);
    if (se == 0.0) {
        /* Every difference is the same: no spread, so the mean is certain. */
        out->t = out->mean == 0.0 ? 0.0 : copysign(INFINITY, out->mean);
        out->p = out->mean == 0.0 ? 1.0 : 0.0;
        out->lo = out->hi = out->mean;
        return;
    }
    out->t = out->mean / se;
    out->p = 2.0 * gsl_cdf_tdist_Q(fabs(out->t), (double)(n - 1));
    if (out->p > 1.0) out->p = 1.0;
    double h = half_width(out->sd, (size_t)n);
    out->lo = out->mean - h;
    out->hi = out->mean + h;
}

rg_status rg_stats_paired(const double *baseline, const double *treatment, int32_t n, rg_paired *out, rg_error *err)
{
    *out = (rg_paired){.n = n, .mean = NAN, .sd = NAN, .lo = NAN, .hi = NAN, .t = NAN, .p = NAN,
                       .verdict = n < 2 ? RG_VERDICT_UNTESTED : RG_VERDICT_NONE};
    if (n < 0) return rg_fail(err, RG_ERR_ARG, "paired comparison: negative number of pairs (%d)", n);
    if (n == 0) return RG_OK;
    double *d = rg_malloc((size_t)n * sizeof *d, err);
    if (!d) return RG_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) d[i] = treatment[i] - baseline[i];
    out->mean = rg_stats_mean(d, (size_t)n);
    out->sd = rg_stats_sd(d, (size_t)n);
    free(d);
    if (n >= 2) paired_t(n, out);
    if (out->lo > 0.0) out->verdict = RG_VERDICT_GAIN;
    else if (out->hi < 0.0) out->verdict = RG_VERDICT_LOSS;
    return RG_OK;
}

static int ascending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rg_stats_median(double *x, size_t n)
{
    if (!n) return NAN;
    qsort(x, n, sizeof *x, ascending);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

size_t rg_stats_pareto(const double *cost, const double *value, size_t n, size_t *front)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(cost[i]) || isnan(value[i])) continue;
        int dominated = 0;
        for (size_t j = 0; j < n && !dominated; j++) {
            if (j == i || isnan(cost[j]) || isnan(value[j])) continue;
            if (cost[j] > cost[i] || value[j] < value[i]) continue;
            /* j is at least as good in both: it dominates when strictly
             * better in one, and an identical earlier point wins the tie. */
            dominated = cost[j] < cost[i] || value[j] > value[i] || j < i;
        }
        if (!dominated) front[k++] = i;
    }
    /* Insertion sort by cost: the front is short, and on it a lower cost
     * always comes with a lower value, so cost alone orders it. */
    for (size_t a = 1; a < k; a++) {
        size_t v = front[a], b = a;
        for (; b > 0 && cost[front[b - 1]] > cost[v]; b--) front[b] = front[b - 1];
        front[b] = v;
    }
    return k;
}
