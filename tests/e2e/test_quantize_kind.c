/* Recipes with `kind = quantize` runs: post-training quantization of another
 * run's checkpoint, recorded in the store like a training run (top-1 = the
 * int8 model's), its int8 model as the artifact, cached like any run, and
 * compared with the float run in the report. Through the command line, on a
 * slice of Fashion-MNIST with the tiny network. */
#include "test_support.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/quant_model.h"
#include "regain/rt.h"

static char out[1 << 16];

static const char recipe[] = "[experiment]\n"
                             "name = q\n"
                             "seeds = 1\n"
                             "[defaults]\n"
                             "model = tiny.spec\n"
                             "epochs = 3\n"
                             "batch = 32\n"
                             "lr = 0.05\n"
                             "warmup_epochs = 0.5\n"
                             "crop_pad = 0\n"
                             "hflip = 0\n"
                             "train_limit = 2000\n"
                             "test_limit = 300\n"
                             "[run float]\n"
                             "[run int8]\n"
                             "kind = quantize\n"
                             "init = @float\n"
                             "ptq_calib = 64\n"
                             "[run int8-remedies]\n"
                             "extends = int8\n"
                             "ptq_per_tensor = 1\n"
                             "ptq_equalize = 1\n"
                             "ptq_bias_correct = 1\n"
                             "ptq_requant_fp32 = 1\n"
                             "[compare int8-vs-float]\n"
                             "baseline = float\n"
                             "treatment = int8\n";

static double number(const cJSON *runs, const char *run, const char *key)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, runs)
    {
        if (strcmp(cJSON_GetObjectItem(o, "run")->valuestring, run)) continue;
        const cJSON *v = cJSON_GetObjectItem(o, key);
        if (!cJSON_IsNumber(v)) fail_msg("run %s: %s is not a number", run, key);
        return v->valuedouble;
    }
    fail_msg("no run %s", run);
    return NAN;
}

static void test_quantize_runs(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    rgt_write_text("tiny.spec", rgt_tiny_spec);
    rgt_write_text("q.ini", recipe);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "3 ran", NULL, "run q.ini");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, NULL, NULL, "runs --json");
    cJSON *runs = cJSON_Parse(out);
    assert_true(cJSON_IsArray(runs));
    double f = number(runs, "float", "test_top1"), q = number(runs, "int8", "test_top1");
    double r = number(runs, "int8-remedies", "test_top1");
    /* the tiny network learns something in 3 epochs; int8 stays near it */
    assert_true(f > 0.4);
    assert_true(fabs(q - f) < 0.05);
    assert_true(fabs(r - f) < 0.08);
    /* the int8 model's bytes: one per weight, fewer than the float's four */
    assert_true(number(runs, "int8", "model_bytes") * 3 < number(runs, "float", "model_bytes"));
    /* the int8 model's latency on the runtime, as the float run's on the graph */
    assert_true(number(runs, "int8", "latency_ms") > 0 && number(runs, "float", "latency_ms") > 0);
    cJSON_Delete(runs);

    /* the artifact is the int8 model for the runtime, and it loads */
    rg_rgm *m;
    CHECK(rg_rgm_load(rgt_in_root("runs/q/int8/seed1/int8.rgm"), &m, &E));
    assert_true(m->n_ops > 3);
    assert_string_equal(rg_rgm_requant_name(m), "fixed");
    rg_rgm_free(m);
    /* ptq_requant_fp32: the layers carry fp32 scales */
    CHECK(rg_rgm_load(rgt_in_root("runs/q/int8-remedies/seed1/int8.rgm"), &m, &E));
    assert_string_equal(rg_rgm_requant_name(m), "fp32");
    rg_rgm_free(m);

    /* cached: nothing runs again; the report compares int8 with float */
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "3 cached", NULL, "run q.ini");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, NULL, NULL, "report q");
    size_t n;
    char *md = rgt_read_file(rgt_in_root("runs/q/report/report.md"), &n);
    assert_non_null(strstr(md, "| int8-vs-float | float | int8 |"));
    free(md);
}

static void test_quantize_errors(void **state)
{
    (void)state;
    /* no checkpoint to quantize, an unknown observer: named by key */
    rgt_write_text("noinit.ini", "[experiment]\nname = e\n[run a]\nkind = quantize\n");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 1, "init", "needs the checkpoint", "run noinit.ini");
    rgt_write_text("obs.ini", "[experiment]\nname = e2\n[run a]\nptq_observer = median\n");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 4, "obs.ini:3", "ptq_observer", "run obs.ini --dry-run");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_runs),
        cmocka_unit_test(test_quantize_errors),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
