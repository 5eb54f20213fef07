/* The report end to end: `regain run` on a tiny recipe (2 runs x 2 seeds of
 * one epoch on 256 Fashion-MNIST images) fills a real experiment store,
 * `regain report` reads it, and headless Chromium opens report.html:
 * the page must load without a single console message (it has no script,
 * so any message is an error: a blocked outside reference, a parse
 * problem) and render into a screenshot that is not blank.
 *
 * So that "no console message" means something, the same Chromium command
 * first opens a control page with an outside image and an inline script
 * under the report's Content-Security-Policy and must report both.
 *
 * Where chromium is not installed the browser part is skipped (cmocka
 * skip(); scripts/install-deps installs it). Run time: about 10 s on two
 * cores. */
#include "test_support.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char out[1 << 17];

static void regain_ok(const char *args) { rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, NULL, NULL, "%s", args); }

static const char *recipe =
    "[experiment]\nname = tiny\nseeds = 1, 2\nstore = runs/regain.db\n"
    "[defaults]\nmodel = mbv2-tiny\nepochs = 1\ntrain_limit = 256\ntest_limit = 256\n"
    "[run baseline]\n"
    "[run smoothed]\nlabel_smoothing = 0.1\n"
    "[compare smoothing]\nbaseline = baseline\ntreatment = smoothed\n";

static int setup(void **state)
{
    rgt_root_setup(state);
    rgt_write_text("tiny.ini", recipe);
    regain_ok("run tiny.ini");
    regain_ok("report tiny");
    return 0;
}

/* ---- the report of a real store ----------------------------------------------------- */

static void test_report_of_real_runs(void **state)
{
    (void)state;
    /* The command names the four files it wrote. */
    regain_ok("report tiny --out rep2");
    for (const char *f = "report.md\0report.html\0results.json\0results.csv\0"; *f; f += strlen(f) + 1) {
        char want[64];
        snprintf(want, sizeof want, "rep2/%s", f);
        if (!strstr(out, want)) fail_msg("regain report does not name %s:\n%s", want, out);
        struct stat sb;
        if (stat(rgt_in_root(want), &sb) != 0 || sb.st_size < 100) fail_msg("%s is missing or nearly empty", want);
    }

    size_t n;
    char *js = rgt_read_file(rgt_in_root("runs/tiny/report/results.json"), &n);
    cJSON *root_json = cJSON_Parse(js);
    if (!root_json) fail_msg("results.json does not parse:\n%.400s", js);
    const cJSON *runs = cJSON_GetObjectItem(root_json, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), 2);
    const cJSON *run;
    cJSON_ArrayForEach(run, runs)
    {
        assert_int_equal(cJSON_GetObjectItem(run, "n_seeds")->valueint, 2);
        double mean = cJSON_GetObjectItem(cJSON_GetObjectItem(run, "test_top1_pct"), "mean")->valuedouble;
        assert_true(mean > 0 && mean <= 100);
        /* One epoch recorded per seed, and the final accuracy matches the
         * last epoch's test accuracy. */
        const cJSON *epochs = cJSON_GetObjectItem(run, "epochs");
        assert_int_equal(cJSON_GetArraySize(epochs), 1);
        const cJSON *e0 = cJSON_GetArrayItem(epochs, 0);
        assert_int_equal(cJSON_GetObjectItem(e0, "epoch")->valueint, 1);
        assert_true(fabs(cJSON_GetObjectItem(e0, "test_top1_pct")->valuedouble - mean) < 1e-6);
        /* The confusion matrix sums the 2 seeds' 256 test images. */
        const cJSON *m = cJSON_GetObjectItem(run, "confusion");
        assert_int_equal(cJSON_GetArraySize(m), 10);
        double total = 0;
        const cJSON *row, *cell;
        cJSON_ArrayForEach(row, m) cJSON_ArrayForEach(cell, row) total += cell->valuedouble;
        assert_true(total == 512);
        assert_true(cJSON_GetObjectItem(run, "params")->valuedouble > 1000);
        assert_true(cJSON_GetObjectItem(run, "latency_ms")->valuedouble > 0);
    }
    const cJSON *cmp = cJSON_GetArrayItem(cJSON_GetObjectItem(root_json, "comparisons"), 0);
    assert_string_equal(cJSON_GetObjectItem(cmp, "method")->valuestring, "paired t-test");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cmp, "paired_seeds")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root_json, "environment")), 1);
    /* the run recorded the kernels OpenBLAS ran */
    const cJSON *blas = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root_json, "environment"), 0),
                                            "blas_core");
    assert_true(cJSON_IsString(blas) && blas->valuestring[0]);
    cJSON_Delete(root_json);
    free(js);
}

/* ---- Chromium ------------------------------------------------------------------------- */

/* Loads file in headless Chromium with console logging on stderr and a
 * screenshot into png; Chromium's output goes into `out`. Returns the
 * number of console messages. Fails the test when no screenshot came. */
static int chromium(const char *file, const char *png, const char *profile)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run "
             "--disable-background-networking --user-data-dir='%s' --enable-logging=stderr --v=0 "
             "--hide-scrollbars --window-size=1280,2400 --screenshot='%s' 'file://%s'",
             rgt_in_root(profile), png, file);
    int code = rgt_run(cmd, out, sizeof out);
    struct stat sb;
    if (stat(png, &sb) != 0) fail_msg("chromium (exit %d) made no screenshot of %s:\n%s", code, file, out);
    int lines = 0;
    for (const char *p = out; (p = strstr(p, ":CONSOLE")); p++) lines++;
    return lines;
}

/* A PNG's width and height (IHDR); fails the test when path is no PNG. */
static void png_size(const char *path, size_t *bytes, uint32_t *w, uint32_t *h)
{
    unsigned char *p = rgt_read_file(path, bytes);
    if (*bytes < 24 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) || memcmp(p + 12, "IHDR", 4)) fail_msg("%s is not a PNG", path);
    *w = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
    *h = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
    free(p);
}

static void test_chromium(void **state)
{
    (void)state;
    if (rgt_run("command -v chromium", NULL, 0) != 0) {
        printf("chromium is not installed: the browser check is skipped (scripts/install-deps installs it)\n");
        skip();
    }
    /* The control: under the report's policy, an outside image and an
     * inline script are refused, and Chromium says so on the console. */
    size_t n;
    char *html = rgt_read_file(rgt_in_root("runs/tiny/report/report.html"), &n);
    const char *csp = strstr(html, "<meta http-equiv=\"Content-Security-Policy\"");
    assert_non_null(csp);
    const char *csp_end = strchr(csp, '>');
    char control[2048];
    snprintf(control, sizeof control,
             "<!DOCTYPE html><html><head>%.*s><title>control</title></head><body><p>control</p>"
             "<img src=\"http://127.0.0.1:9/x.png\" alt=\"\"><script>console.error('control')</script></body></html>",
             (int)(csp_end - csp), csp);
    free(html);
    rgt_write_file(rgt_in_root("control.html"), control, strlen(control));
    int control_lines = chromium(rgt_in_root("control.html"), rgt_in_root("control.png"), "profile1");
    if (control_lines < 2) fail_msg("the control page gave %d console messages, expected 2:\n%s", control_lines, out);

    /* The report: no console message at all, and a screenshot with content. */
    int lines = chromium(rgt_in_root("runs/tiny/report/report.html"), rgt_in_root("report.png"), "profile2");
    if (lines) fail_msg("report.html gave %d console messages in Chromium:\n%s", lines, out);
    uint32_t w, h;
    size_t bytes, blank;
    png_size(rgt_in_root("report.png"), &bytes, &w, &h);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 2400);
    /* A blank page of this size compresses to a few kilobytes; the control
     * page (one word) gives the baseline. */
    png_size(rgt_in_root("control.png"), &blank, &w, &h);
    if (bytes < 8 * blank || bytes < 50000)
        fail_msg("the screenshot is nearly blank: %zu bytes (the one-word control page: %zu)", bytes, blank);
    printf("screenshot: %zu bytes, %ux%u\n", bytes, w, h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_of_real_runs),
        cmocka_unit_test(test_chromium),
    };
    return cmocka_run_group_tests(tests, setup, rgt_root_teardown);
}
