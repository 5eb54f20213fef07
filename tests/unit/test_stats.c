/* The report's statistics (stats.h) against values computed independently.
 *
 * Sources of the expected values:
 *   [R]    R's t.test(extra ~ group, data = sleep, paired = TRUE) on the
 *          sleep data shipped with R (Student, 1908), as printed by R:
 *          t = -4.0621, df = 9, p-value = 0.002833,
 *          95 % CI -2.4598858 -0.7001142, mean difference -1.58.
 *   [form] closed forms of Student's t, computed by hand:
 *          df = 1: quantile tan(pi (p - 1/2)); df = 2: (2p - 1) sqrt(2 / (4p(1 - p)));
 *          df = 4: F(t) = 1/2 + (3/4) x (1 - x^2/3) with x = t / sqrt(4 + t^2)
 *          (checked against a Simpson integration of the density).
 *   [table] Student t critical values as printed in statistics tables
 *          (e.g. the NIST/SEMATECH e-Handbook, table 1.3.6.7.2), 3 decimals.
 *   [hand] sums worked out in the comment next to the check.
 */
#include "test_support.h"

#include <math.h>
#include <string.h>

#include "regain/stats.h"

#define NEAR(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static void test_t_quantiles(void **state)
{
    (void)state;
    /* [form] */
    NEAR(rg_stats_t_quantile(0.975, 1), 12.706204736174696, 1e-9);
    NEAR(rg_stats_t_quantile(0.975, 2), 4.302652729749464, 1e-9);
    NEAR(rg_stats_t_quantile(0.025, 2), -4.302652729749464, 1e-9);
    /* [table] */
    static const struct {
        double df, t;
    } table[] = {{4, 2.776}, {7, 2.365}, {9, 2.262}, {29, 2.045}, {100, 1.984}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        NEAR(rg_stats_t_quantile(0.975, table[i].df), table[i].t, 5e-4);
}

static void test_summary(void **state)
{
    (void)state;
    /* [hand] x = 2 4 4 4 5 5 7 9: mean 40 / 8 = 5; squared deviations
     * 9 1 1 1 0 0 4 16 sum to 32, sd = sqrt(32 / 7) = 2.1380899353; the
     * interval is 5 -+ t(0.975, 7) * sd / sqrt(8) = 5 -+ 2.3646242516 *
     * 0.7559289460 = 5 -+ 1.7874879182. */
    const double x[8] = {2, 4, 4, 4, 5, 5, 7, 9};
    rg_summary s;
    rg_stats_summarize(x, 8, &s);
    assert_int_equal(s.n, 8);
    NEAR(s.mean, 5.0, 1e-12);
    NEAR(s.sd, 2.1380899353, 1e-9);
    NEAR(s.lo, 5 - 1.7874879182, 1e-8);
    NEAR(s.hi, 5 + 1.7874879182, 1e-8);

    /* Accuracies that differ in the 4th decimal keep their spread. */
    const double y[3] = {0.9001, 0.9002, 0.9003};
    NEAR(rg_stats_sd(y, 3), 1e-4, 1e-12);

    rg_stats_summarize(x, 1, &s);
    NEAR(s.mean, 2.0, 0);
    assert_true(isnan(s.sd) && isnan(s.lo) && isnan(s.hi));
    rg_stats_summarize(x, 0, &s);
    assert_true(isnan(s.mean));
}

static void test_paired_t_sleep(void **state)
{
    (void)state;
    /* [R] the sleep data: extra hours of sleep with drug 1 and drug 2 for
     * the same 10 patients; R's difference is group 1 - group 2, so drug 2
     * is the "baseline" here. */
    const double drug1[10] = {0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0};
    const double drug2[10] = {1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4};
    rg_paired d;
    rg_error err = {0};
    assert_int_equal(rg_stats_paired(drug2, drug1, 10, &d, &err), RG_OK);
    assert_int_equal(d.method, RG_PAIRED_T);
    assert_int_equal(d.n, 10);
    NEAR(d.mean, -1.58, 1e-12);
    NEAR(d.t, -4.0621, 5e-5);
    NEAR(d.p, 0.002833, 5e-7);
    NEAR(d.lo, -2.4598858, 5e-8);
    NEAR(d.hi, -0.7001142, 5e-8);
    assert_int_equal(d.verdict, RG_VERDICT_LOSS);
    assert_string_equal(rg_verdict_name(d.verdict), "loss");
    assert_string_equal(rg_paired_method_name(d.method), "paired t-test");

    /* Swapped, the same interval mirrored: a gain. */
    assert_int_equal(rg_stats_paired(drug1, drug2, 10, &d, &err), RG_OK);
    NEAR(d.lo, 0.7001142, 5e-8);
    assert_int_equal(d.verdict, RG_VERDICT_GAIN);
}

static void test_paired_t_five(void **state)
{
    (void)state;
    /* [hand]+[form] 5 pairs, differences 1..5:
     * mean 3, sd sqrt(10 / 4) = 1.5811388301, t = 3 / (sd / sqrt 5) =
     * 4.2426406871, df = 4; x = t / sqrt(4 + t^2) = 0.9045340337,
     * F = 1/2 + (3/4) x (1 - x^2 / 3) = 0.9933822002, p = 2 (1 - F) =
     * 0.0132355996; the interval is 3 -+ 2.7764451052 * 0.7071067812. */
    const double base[5] = {10, 10, 10, 10, 10}, treat[5] = {11, 12, 13, 14, 15};
    rg_paired d;
    assert_int_equal(rg_stats_paired(base, treat, 5, &d, NULL), RG_OK);
    assert_int_equal(d.method, RG_PAIRED_T);
    NEAR(d.t, 4.2426406871, 1e-9);
    NEAR(d.p, 0.0132355996, 1e-9);
    NEAR(d.lo, 3 - 2.7764451052 * 0.7071067812, 1e-8);
    assert_int_equal(d.verdict, RG_VERDICT_GAIN);

    /* No spread at all: the mean is certain. */
    const double same[5] = {10.5, 10.5, 10.5, 10.5, 10.5};
    assert_int_equal(rg_stats_paired(base, same, 5, &d, NULL), RG_OK);
    NEAR(d.p, 0.0, 0);
    NEAR(d.lo, 0.5, 1e-12);
    assert_int_equal(d.verdict, RG_VERDICT_GAIN);
    assert_int_equal(rg_stats_paired(base, base, 5, &d, NULL), RG_OK);
    NEAR(d.p, 1.0, 0);
    assert_int_equal(d.verdict, RG_VERDICT_NONE);
}

static void test_paired_t_few(void **state)
{
    (void)state;
    /* [hand] differences -1, 2, 3 (n = 3, df = 2, where Student's t has a
     * closed form: P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2 and t(0.975) =
     * 0.95 / sqrt(2 * 0.975 * 0.025) = 4.3026527297): mean 4/3, sd
     * sqrt(13/3) = 2.0816659995, se = sd / sqrt 3 = 1.2018504252, t =
     * 1.1094003925, p = 1 - t / sqrt(t^2 + 2) = 0.3827866002, interval
     * 4/3 -+ 4.3026527297 se = [-3.8378116792, 6.5044783459]. */
    const double base[3] = {0, 0, 0}, treat[3] = {-1, 2, 3};
    rg_paired d;
    assert_int_equal(rg_stats_paired(base, treat, 3, &d, NULL), RG_OK);
    assert_int_equal(d.method, RG_PAIRED_T);
    NEAR(d.mean, 4.0 / 3.0, 1e-12);
    NEAR(d.t, 1.1094003925, 1e-9);
    NEAR(d.p, 0.3827866002, 1e-9);
    NEAR(d.lo, -3.8378116792, 1e-9);
    NEAR(d.hi, 6.5044783459, 1e-9);
    assert_int_equal(d.verdict, RG_VERDICT_NONE);
    assert_string_equal(rg_verdict_name(d.verdict), "no detectable difference");

    /* Every seed better is not enough by itself: 0.5, 0.9, 0.7 gives
     * t = 6.0621778265, p = 0.0261483189, interval [0.2031724576,
     * 1.1968275424]: a gain; with 2 pairs, -0.2 and -0.4 (t(0.975, 1) =
     * 12.7062047362), the interval [-1.5706204736, 0.9706204736] holds 0. */
    const double up[3] = {0.5, 0.9, 0.7};
    assert_int_equal(rg_stats_paired(base, up, 3, &d, NULL), RG_OK);
    NEAR(d.p, 0.0261483189, 1e-9);
    NEAR(d.lo, 0.2031724576, 1e-9);
    assert_int_equal(d.verdict, RG_VERDICT_GAIN);
    const double down[2] = {-0.2, -0.4};
    assert_int_equal(rg_stats_paired(base, down, 2, &d, NULL), RG_OK);
    NEAR(d.lo, -0.3 - 12.7062047362 * 0.1, 1e-8);
    NEAR(d.hi, -0.3 + 12.7062047362 * 0.1, 1e-8);
    assert_int_equal(d.verdict, RG_VERDICT_NONE);

    /* One pair or none: nothing to say. */
    assert_int_equal(rg_stats_paired(base, up, 1, &d, NULL), RG_OK);
    assert_int_equal(d.method, RG_PAIRED_NONE);
    NEAR(d.mean, 0.5, 1e-12);
    assert_true(isnan(d.lo) && isnan(d.p));
    assert_int_equal(d.verdict, RG_VERDICT_UNTESTED);
    assert_string_equal(rg_verdict_name(d.verdict), "not tested");
    assert_string_equal(rg_paired_method_name(d.method), "too few pairs");
    assert_int_equal(rg_stats_paired(NULL, NULL, 0, &d, NULL), RG_OK);
    assert_true(isnan(d.mean));
    assert_int_equal(d.verdict, RG_VERDICT_UNTESTED);
    rg_error err = {0};
    assert_int_equal(rg_stats_paired(NULL, NULL, -1, &d, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "negative"));
}

static void test_pareto(void **state)
{
    (void)state;
    /* cost, value: E is listed first to check the ordering; C is beaten by
     * B (same cost, lower value), D by B (same value, higher cost), G is a
     * copy of A (only the first is kept), F has no cost. */
    const double cost[7] = {4, 1, 2, 2, 3, NAN, 1};
    const double value[7] = {90, 80, 85, 84, 85, 99, 80};
    size_t front[7];
    size_t n = rg_stats_pareto(cost, value, 7, front);
    assert_int_equal(n, 3);
    assert_int_equal(front[0], 1);  /* A */
    assert_int_equal(front[1], 2);  /* B */
    assert_int_equal(front[2], 0);  /* E */
    assert_int_equal(rg_stats_pareto(cost, value, 0, front), 0);
    /* One point is its own front. */
    assert_int_equal(rg_stats_pareto(cost + 1, value + 1, 1, front), 1);
    assert_int_equal(front[0], 0);
}

static void test_median(void **state)
{
    (void)state;
    double odd[5] = {3, 9, 1, 7, 2};
    assert_true(rg_stats_median(odd, 5) == 3);
    assert_true(odd[0] == 1 && odd[4] == 9);   /* sorted in place */
    double even[4] = {4, 1, 10, 2};
    assert_true(rg_stats_median(even, 4) == 3);   /* (2 + 4) / 2 */
    double one = 5;
    assert_true(rg_stats_median(&one, 1) == 5);
    assert_true(isnan(rg_stats_median(NULL, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_t_quantiles),   cmocka_unit_test(test_summary),   cmocka_unit_test(test_paired_t_sleep),
        cmocka_unit_test(test_paired_t_five), cmocka_unit_test(test_paired_t_few), cmocka_unit_test(test_pareto),
        cmocka_unit_test(test_median),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
