/* Post-training quantization end to end on Fashion-MNIST: mbv2-tiny trained
 * briefly by the CLI (2000 images, 2 epochs), then `regain quantize` in the
 * settings the docs describe and `regain quant-report`. The int8 model must
 * stay within a few points of the float one; the tables must hold what the
 * docs say they hold. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/quant_model.h"
#include "regain/rt.h"

static char out[1 << 16];
static char ckpt[700];

#define expect_cli(...) rgt_expect_cli("REGAIN_CLI", out, sizeof out, __VA_ARGS__)

static int setup(void **state)
{
    rgt_root_setup(state);
    snprintf(ckpt, sizeof ckpt, "%s/run/best.safetensors", rgt_root);
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "'%s' train --model mbv2-tiny --train-limit 2000 --test-limit 500 --epochs 2 --batch 64 --lr 0.05 "
             "--warmup-epochs 0.5 --threads 2 --workers 1 --out '%s/run'",
             rgt_env("REGAIN_CLI"), rgt_root);
    int code = rgt_run(cmd, out, sizeof out);
    if (code != 0) {
        fprintf(stderr, "setup: %s failed (%d):\n%s\n", cmd, code, out);
        return -1;
    }
    return 0;
}

/* "  float      75.50" -> 75.50 */
static double row(const char *text, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, "\n  %s ", name);
    const char *p = strstr(text, key);
    if (!p) fail_msg("no row '%s' in:\n%s", name, text);
    return strtod(p + strlen(key), NULL);
}

static void quantize(const char *opts, double *f, double *q)
{
    expect_cli(0, "int8 arena", "diff", "quantize '%s' --calib 128 --limit 500 --threads 2 %s", ckpt, opts);
    *f = row(out, "float   ");
    *q = row(out, "int8    ");
    double d = row(out, "diff    ");
    print_message("%-45s float %.2f  int8 %.2f  diff %+.2f\n", opts, *f, *q, d);
    assert_true(d > *q - *f - 0.011 && d < *q - *f + 0.011);
}

static void test_quantize_settings(void **state)
{
    (void)state;
    double f, q, f0 = -1;
    static const char *const settings[] = {"", "--per-tensor", "--per-tensor --equalize --bias-correct",
                                           "--equalize --bias-correct --observer percentile"};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        quantize(settings[i], &f, &q);
        if (f0 < 0) f0 = f;
        assert_true(f == f0);         /* the float model is the same every time */
        assert_true(f > 50.0);        /* it learned something */
        assert_true(q > f - 3.0);     /* int8 within a few points */
    }
    /* the arena line: planned smaller than one slot per tensor */
    unsigned long planned = 0, all = 0;
    const char *p = strstr(out, "int8 arena");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "int8 arena %lu bytes per image (liveness plan; %lu unplanned)", &planned, &all), 2);
    assert_true(planned < all);
}

static void test_written_model(void **state)
{
    (void)state;
    const char *path = rgt_in_root("q.rgm");
    expect_cli(0, "wrote", "AdaRound", "quantize '%s' --calib 64 --limit 200 --equalize --adaround --out '%s'", ckpt, path);
    rg_rgm *m;
    rg_error err = {0};
    assert_int_equal(rg_rgm_load(path, &m, &err), RG_OK);
    assert_true(m->n_ops > 20);
    rg_rgm_free(m);
}

static void test_quant_report(void **state)
{
    (void)state;
    expect_cli(0, "SQNR dB", "remedy", "quant-report '%s' --calib 64 --per-tensor", ckpt);
    /* one row per op: the depthwise layers and the classifier are there */
    assert_non_null(strstr(out, "b1.dw "));
    assert_non_null(strstr(out, "depthwise"));
    assert_non_null(strstr(out, "\n  fc "));
    assert_non_null(strstr(out, "rows flagged"));
    assert_non_null(strstr(out, "\n  input "));
    assert_non_null(strstr(out, "output SQNR"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_settings),
        cmocka_unit_test(test_written_model),
        cmocka_unit_test(test_quant_report),
    };
    return cmocka_run_group_tests(tests, setup, rgt_root_teardown);
}
