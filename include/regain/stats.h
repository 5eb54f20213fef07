/* regain — the statistics of a report: summaries over seeds, paired
 * comparisons and the Pareto front.
 *
 * Each run of an experiment is repeated with several seeds. A run is
 * summarized by the mean, the sample standard deviation and a 95 %
 * confidence interval of the mean (Student t). Two runs are compared seed by
 * seed (the same seed gives both the same data order and initialization, so
 * the per-seed differences remove most of the noise): the mean difference,
 * its confidence interval and a two-sided p-value, from a paired t-test
 * (Student t with n - 1 degrees of freedom: with the usual 3 seeds its
 * interval is wide, as it should be). The verdict reads the interval only: "gain"
 * when it lies above 0, "loss" when below, otherwise "no detectable
 * difference". docs/report.md has the formulas.
 *
 *     rg_summary s;
 *     rg_stats_summarize(top1, n_seeds, &s);              // s.mean, s.sd, s.lo, s.hi
 *     rg_paired d;
 *     rg_stats_paired(base, treat, n_pairs, &d, &err);
 *     printf("%+.2f [%.2f, %.2f] p=%.3g %s\n", d.mean, d.lo, d.hi, d.p, rg_verdict_name(d.verdict));
 *
 * Quantiles and tail probabilities of the t distribution come from GSL.
 * Only rg_stats_paired allocates (its n differences), and reports
 * out-of-memory as a status.
 */
#ifndef REGAIN_STATS_H
#define REGAIN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"

/* Two-sided confidence level of every interval. */
#define RG_STATS_LEVEL 0.95

/* Mean, sample standard deviation (n - 1 in the denominator) and the
 * RG_STATS_LEVEL confidence interval of the mean, mean -+ t(n-1) * sd / sqrt(n).
 * With n = 1 the sd and the interval are NaN; with n = 0 everything is. */
typedef struct {
    int32_t n;
    double mean, sd, lo, hi;
} rg_summary;

double rg_stats_mean(const double *x, size_t n);
/* The median of x, which it sorts in place (the mean of the middle two
 * when n is even); NaN when n = 0. Timings use it: a noisy neighbour moves
 * a median less than a mean. */
double rg_stats_median(double *x, size_t n);
/* Sample standard deviation; NaN when n < 2. */
double rg_stats_sd(const double *x, size_t n);
/* The p-quantile of Student's t with df degrees of freedom (0 < p < 1, df > 0). */
double rg_stats_t_quantile(double p, double df);
void rg_stats_summarize(const double *x, size_t n, rg_summary *out);

typedef enum {
    RG_PAIRED_NONE = 0,      /* fewer than 2 pairs: nothing can be said */
    RG_PAIRED_T = 1          /* paired t-test */
} rg_paired_method;

typedef enum {
    RG_VERDICT_NONE = 0,     /* the interval holds 0 */
    RG_VERDICT_GAIN = 1,     /* the interval lies above 0 */
    RG_VERDICT_LOSS = 2,     /* the interval lies below 0 */
    RG_VERDICT_UNTESTED = 3  /* fewer than 2 pairs: no interval, nothing tested */
} rg_verdict;

/* A paired comparison: d_i = treatment_i - baseline_i over n pairs. */
typedef struct {
    int32_t n;
    double mean, sd;         /* of the differences */
    double lo, hi;           /* RG_STATS_LEVEL interval of the mean difference (NaN when n < 2) */
    double t;                /* t statistic (NaN when n < 2) */
    double p;                /* two-sided p-value of "mean difference = 0" (NaN when n < 2) */
    rg_paired_method method;
    rg_verdict verdict;
} rg_paired;

/* Compares treatment against baseline, pair i being (baseline[i],
 * treatment[i]), with the paired t-test: interval mean -+ t(n-1) * sd /
 * sqrt(n), p = 2 P(T > |t|) (n >= 2; with every difference equal, the
 * interval is that value and p is 0, or 1 when it is 0). Fails on n < 0
 * (RG_ERR_ARG) or allocation (RG_ERR_NOMEM). */
rg_status rg_stats_paired(const double *baseline, const double *treatment, int32_t n, rg_paired *out, rg_error *err);

/* "gain", "loss", "no detectable difference" or "not tested". */
const char *rg_verdict_name(rg_verdict v);
/* "paired t-test" or "too few pairs". */
const char *rg_paired_method_name(rg_paired_method m);

/* The Pareto front of points (cost[i], value[i]), lower cost and higher value
 * being better: writes into front the indices of the points that no other
 * point dominates (another point at most as costly and at least as good, and
 * strictly better in one of the two), sorted by increasing cost, and returns
 * how many there are. Of several identical points only the first is kept.
 * Points whose cost or value is NaN take no part. front has room for n. */
size_t rg_stats_pareto(const double *cost, const double *value, size_t n, size_t *front);

#endif
