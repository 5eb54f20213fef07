/* regain quantize and regain quant-report on bad input, run as the
 * sanitizer build: every bad argument or file gets a clear error naming it
 * and the documented exit code; the good paths run clean under ASan/UBSan. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "regain/quant_model.h"
#include "regain/rt.h"
#include "regain/safetensors.h"

static char data_dir[600], run_dir[600], ckpt[700];
static char out[1 << 16];

#define expect_cli(...) rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, __VA_ARGS__)

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An IDX file of n items (images side x side with a class-dependent pattern, or labels). */
static void write_idx(const char *dir, const char *name, int images, uint32_t n, uint32_t side)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t area = (size_t)side * side, head = images ? 16 : 8, payload = images ? (size_t)n * area : n;
    uint8_t *b = malloc(head + payload);
    assert_non_null(b);
    put32(b, images ? 0x803 : 0x801);
    put32(b + 4, n);
    if (images) put32(b + 8, side), put32(b + 12, side);
    for (size_t k = 0; k < payload; k++) {
        size_t item = images ? k / area : k, pix = k % area;
        b[head + k] = images ? (uint8_t)((pix * 7 + item % 10 * 40 + (pix / side) * (item % 10)) & 0xff)
                             : (uint8_t)(item % 10);
    }
    rgt_write_file(p, b, head + payload);
    free(b);
}

/* An IDX dataset in dir (made if missing): train and test images side x side, labels. */
static void write_dataset(const char *dir, uint32_t n_train, uint32_t n_test, uint32_t side)
{
    mkdir(dir, 0777);
    write_idx(dir, "train-images-idx3-ubyte", 1, n_train, side);
    write_idx(dir, "train-labels-idx1-ubyte", 0, n_train, side);
    write_idx(dir, "t10k-images-idx3-ubyte", 1, n_test, side);
    write_idx(dir, "t10k-labels-idx1-ubyte", 0, n_test, side);
}

static int setup(void **state)
{
    (void)state;
    rgt_tmpdir(rgt_root, sizeof rgt_root);
    snprintf(data_dir, sizeof data_dir, "%s/data", rgt_root);
    snprintf(run_dir, sizeof run_dir, "%s/run", rgt_root);
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run_dir);
    write_dataset(data_dir, 256, 64, 28);
    /* images the model does not take */
    char small_dir[700];
    snprintf(small_dir, sizeof small_dir, "%s/small", rgt_root);
    write_dataset(small_dir, 32, 16, 14);
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "'%s' train --data '%s' --model mbv2-tiny --train-limit 256 --test-limit 64 --epochs 1 --batch 64 "
             "--threads 2 --workers 0 --out '%s'",
             rgt_env("REGAIN_CLI"), data_dir, run_dir);
    int code = rgt_run(cmd, out, sizeof out);
    if (code != 0) {
        fprintf(stderr, "setup: %s failed (%d):\n%s\n", cmd, code, out);
        return -1;
    }
    size_t n;
    uint8_t *b = rgt_read_file(ckpt, &n);
    b[n - 100] ^= 0x10;
    rgt_write_file(rgt_in_root("tampered.safetensors"), b, n);
    free(b);
    static const float w[2] = {1, 2};
    rg_st_tensor t = {.name = "w", .ndim = 1, .shape = {2}, .data = w};
    rg_error err = {0};
    if (rg_st_write(rgt_in_root("foreign.safetensors"), &t, 1, NULL, 0, &err) != RG_OK) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rgt_rmtree(rgt_root);
    return 0;
}

static void test_command_line(void **state)
{
    (void)state;
    expect_cli(0, "usage: regain quantize", "--observer", "quantize --help");
    expect_cli(0, "usage: regain quant-report", "--equalize", "quant-report --help");
    expect_cli(2, "missing the checkpoint", NULL, "quantize --calib 8");
    expect_cli(2, "--calib", "'0'", "quantize '%s' --calib 0", ckpt);
    expect_cli(2, "--calib", "'-5'", "quantize '%s' --calib -5", ckpt);
    expect_cli(2, "--observer: 'kl' is not an observer", "entropy", "quantize '%s' --observer kl", ckpt);
    expect_cli(2, "--percentile", "needs --observer percentile", "quantize '%s' --percentile 99.9", ckpt);
    expect_cli(2, "--requant must be fixed or fp32", "'float'", "quantize '%s' --requant float", ckpt);
    expect_cli(2, "--requant", "needs a value", "quantize '%s' --requant", ckpt);
    expect_cli(2, "--requant bad: need fixed or fp32", NULL, "export-rgm '%s' --requant bad --out x.rgm", ckpt);
    expect_cli(2, "--percentile", "(50, 100]", "quantize '%s' --observer percentile --percentile 40", ckpt);
    expect_cli(2, "needs a value", "--observer", "quantize '%s' --observer", ckpt);
    expect_cli(2, "unknown option or bad value", "--bogus", "quantize '%s' --bogus 1", ckpt);
    expect_cli(2, "only one checkpoint", NULL, "quantize '%s' '%s'", ckpt, ckpt);
    expect_cli(2, "--out belongs to", NULL, "quant-report '%s' --out x", ckpt);
    expect_cli(2, "is not an observer", NULL, "quant-report '%s' --observer none", ckpt);
}

static void test_bad_files(void **state)
{
    (void)state;
    expect_cli(3, "missing.safetensors", NULL, "quantize '%s' --data '%s'", rgt_in_root("missing.safetensors"),
               data_dir);
    expect_cli(3, "missing.safetensors", NULL, "quant-report '%s' --data '%s'", rgt_in_root("missing.safetensors"),
               data_dir);
    expect_cli(4, "checksum", NULL, "quantize '%s' --data '%s'", rgt_in_root("tampered.safetensors"), data_dir);
    expect_cli(4, "foreign.safetensors", NULL, "quantize '%s' --data '%s'", rgt_in_root("foreign.safetensors"),
               data_dir);
    expect_cli(5, "no-such-dir", NULL, "quantize '%s' --data '%s/no-such-dir'", ckpt, rgt_root);
    /* the message quotes the dataset's shape (it was read after the dataset was freed) */
    expect_cli(4, "images are 14x14x1", "the model takes 28x28x1", "quantize '%s' --data '%s/small'", ckpt, rgt_root);
    expect_cli(3, "no-dir", NULL, "quantize '%s' --data '%s' --calib 8 --limit 8 --out '%s/no-dir/q.safetensors'",
               ckpt, data_dir, rgt_root);
}

/* The good paths, under the sanitizers: every option, a written model that
 * loads back. */
static void test_good_paths(void **state)
{
    (void)state;
    expect_cli(0, "int8", "diff", "quantize '%s' --data '%s' --calib 16 --limit 32 --observer percentile "
               "--percentile 99.9 --equalize --bias-correct --out '%s'", ckpt, data_dir, rgt_in_root("q.rgm"));
    assert_non_null(strstr(out, "calibrate"));
    rg_rgm *m;
    rg_error err = {0};
    assert_int_equal(rg_rgm_load(rgt_in_root("q.rgm"), &m, &err), RG_OK);
    rg_rgm_free(m);
    expect_cli(0, "SQNR dB", "remedy", "quant-report '%s' --data '%s' --calib 16 --per-tensor --observer mse", ckpt,
               data_dir);
    assert_non_null(strstr(out, "b1.dw"));
    assert_non_null(strstr(out, "output SQNR"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_good_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
