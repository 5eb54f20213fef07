/* The regain command on bad input, run as the sanitizer build
 * ($REGAIN_CLI_SAN): every mistake on the command line and every damaged
 * file gives the documented exit code (tools/regain.c: 2 bad command line,
 * 3 I/O error, 4 malformed input file, 5 not found), a message that names
 * the file (or option) and the problem, and no AddressSanitizer,
 * LeakSanitizer or UndefinedBehaviorSanitizer report.
 *
 * The group setup writes a tiny IDX dataset and trains one epoch on it with
 * the optimized CLI ($REGAIN_CLI) to get a valid checkpoint to damage. */
#include "test_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "regain/cpu.h"
#include "regain/safetensors.h"

static char data_dir[600], run_dir[600], ckpt[700];
static char out[1 << 16];

/* "cd ROOT && regain-san ARGS": exit code, words, no sanitizer report */
#define expect_cli(...) rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, __VA_ARGS__)

/* ---- files --------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An IDX file: magic, dims, then `payload` bytes (pixels: a pattern that
 * depends on the label of the image, labels: i % 10). */
static void write_idx(const char *path, uint32_t magic, int ndims, const uint32_t *dims, size_t payload)
{
    size_t head = 4 + 4 * (size_t)ndims;
    uint8_t *b = malloc(head + payload + 1);
    assert_non_null(b);
    put32(b, magic);
    for (int i = 0; i < ndims; i++) put32(b + 4 + 4 * i, dims[i]);
    size_t per = ndims == 3 ? (size_t)dims[1] * dims[2] : 1;
    for (size_t k = 0; k < payload; k++) {
        size_t item = k / per, pix = k % per;
        b[head + k] = ndims == 3 ? (uint8_t)((pix * 7 + item % 10 * 40 + (pix / 28) * (item % 10)) & 0xff)
                                 : (uint8_t)(item % 10);
    }
    rgt_write_file(path, b, head + payload);
    free(b);
}

static void write_images(const char *dir, const char *name, uint32_t n, size_t payload)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    const uint32_t d[3] = {n, 28, 28};
    write_idx(p, 0x803, 3, d, payload);
}

static void write_labels(const char *dir, const char *name, uint32_t n, size_t payload)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_idx(p, 0x801, 1, &n, payload);
}

/* A complete dataset directory with n_train and n_test images. */
static void write_dataset(const char *dir, uint32_t n_train, uint32_t n_test)
{
    mkdir(dir, 0777);
    write_images(dir, "train-images-idx3-ubyte", n_train, (size_t)n_train * 784);
    write_labels(dir, "train-labels-idx1-ubyte", n_train, n_train);
    write_images(dir, "t10k-images-idx3-ubyte", n_test, (size_t)n_test * 784);
    write_labels(dir, "t10k-labels-idx1-ubyte", n_test, n_test);
}

static void write_text(const char *path, const char *text) { rgt_write_file(path, text, strlen(text)); }

/* Copies a whole file. */
static void copy_file(const char *from, const char *to)
{
    size_t n;
    void *b = rgt_read_file(from, &n);
    rgt_write_file(to, b, n);
    free(b);
}

/* ---- fixture --------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    rgt_tmpdir(rgt_root, sizeof rgt_root);
    snprintf(data_dir, sizeof data_dir, "%s/data", rgt_root);
    snprintf(run_dir, sizeof run_dir, "%s/run", rgt_root);
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run_dir);
    write_dataset(data_dir, 256, 128);

    /* A valid checkpoint, from the optimized CLI. */
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "'%s' train --data '%s' --model mbv2-tiny --train-limit 256 --test-limit 128 --epochs 1 --batch 64 "
             "--threads 2 --workers 0 --out '%s'",
             rgt_env("REGAIN_CLI"), data_dir, run_dir);
    int code = rgt_run(cmd, out, sizeof out);
    if (code != 0) {
        fprintf(stderr, "setup: %s failed (%d):\n%s\n", cmd, code, out);
        return -1;
    }

    /* Damaged copies of it. */
    size_t n;
    uint8_t *b = rgt_read_file(ckpt, &n);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | b[k];
    if (n < 8 + hlen + 4096) {
        fprintf(stderr, "setup: %s is smaller than expected\n", ckpt);
        return -1;
    }
    /* truncated in the middle of the data section */
    rgt_write_file(rgt_in_root("truncated.safetensors"), b, (size_t)(8 + hlen + (n - 8 - hlen) / 2));
    /* truncated in the middle of the header */
    rgt_write_file(rgt_in_root("cut-header.safetensors"), b, (size_t)(8 + hlen / 2));
    /* one byte of a weight flipped: only the crc32 can tell */
    b[8 + hlen + 1000] ^= 0x10;
    rgt_write_file(rgt_in_root("tampered.safetensors"), b, n);
    free(b);
    rgt_write_file(rgt_in_root("empty.safetensors"), "", 0);
    write_text(rgt_in_root("text.safetensors"), "hello, this is not a checkpoint at all\n");

    /* A valid safetensors file that is not a regain checkpoint. */
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    rg_st_tensor t = {.name = "stem.weight", .ndim = 2, .shape = {2, 3}, .data = w};
    rg_st_meta m = {"format", "pt"};
    rg_error err = {0};
    if (rg_st_write(rgt_in_root("foreign.safetensors"), &t, 1, &m, 1, &err) != RG_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    /* One from another version of the format: the message quotes it (it
     * was read after the file was freed; found by tests/fuzz/fuzz_parsers.c). */
    rg_st_meta later[2] = {{"regain.format", "checkpoint-9"}, {"regain.spec", "input h=28 w=28 c=1"}};
    if (rg_st_write(rgt_in_root("later.safetensors"), &t, 1, later, 2, &err) != RG_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rgt_rmtree(rgt_root);
    return 0;
}

/* ---- the command line -------------------------------------------------------------------- */

static void test_help_and_models(void **state)
{
    (void)state;
    expect_cli(0, "usage: regain", "Exit codes", "--help");
    expect_cli(0, "usage: regain train", "--lr", "train --help");
    /* defaults beside their keys, also after the keys formatted only when set */
    expect_cli(0, "(docs/augmentation.md) (default )", "CutMix Beta alpha (0 = off) (default 0)", "train --help");
    expect_cli(0, "usage: regain eval", NULL, "eval --help");
    expect_cli(0, "mbv2-tiny", "resnet20", "models");
    expect_cli(0, "ir name=b1", NULL, "models --spec mbv2-tiny");
    /* the valid checkpoint the damaged ones come from is fine */
    expect_cli(0, "mbv2-tiny", "epochs done     1", "info '%s'", ckpt);
    expect_cli(0, "top-1 accuracy", " of 128)", "eval '%s' --data '%s'", ckpt, data_dir);
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_cli(2, "usage: regain", NULL, "%s", "");
    expect_cli(2, "unknown command 'frobnicate'", NULL, "frobnicate --now");
    expect_cli(2, "unknown key 'bogus'", NULL, "train --bogus 1");
    expect_cli(2, "needs a value", "--epochs", "train --epochs");
    expect_cli(2, "unexpected argument 'stray'", NULL, "train stray");
    expect_cli(2, "epochs", "out of range", "train --epochs 0");
    expect_cli(2, "epochs", "not an integer", "train --epochs 1.5");
    expect_cli(2, "lr", "not a number", "train --lr abc");
    expect_cli(2, "lr", "must be > 0", "train --lr 0");
    expect_cli(2, "nesterov", "not a boolean", "train --nesterov maybe");
    expect_cli(2, "rmsprop", "optim", "train --optim rmsprop");
    expect_cli(2, "warmup_epochs", NULL, "train --epochs 2 --warmup-epochs 3");
    expect_cli(2, "unknown option or bad value", "--bogus", "eval '%s' --bogus 3", ckpt);
    expect_cli(2, "--batch", "bad value", "eval '%s' --batch 0", ckpt);
    expect_cli(2, "missing the checkpoint", NULL, "eval");
    expect_cli(2, "only one checkpoint", NULL, "eval '%s' '%s'", ckpt, ckpt);
    expect_cli(2, "unknown option '--bogus'", NULL, "info --bogus");
    expect_cli(2, "missing the checkpoint", NULL, "info");
    expect_cli(2, "unknown argument", NULL, "models --bogus");
    /* values the saved configuration could not give back on resume */
    expect_cli(2, "teacher: 'runs/a #2/best.safetensors'", "comment", "train --teacher 'runs/a #2/best.safetensors'");
    expect_cli(2, "init: ' x.safetensors'", "white space", "train --init ' x.safetensors'");
}

/* regain bench: a short run of each kind works and prints what it measured;
 * bad arguments are refused with the option named. */
static void test_bench(void **state)
{
    (void)state;
    expect_cli(0, "usage: regain bench", "--profile", "bench --help");
    expect_cli(0, "\"tool\": \"regain\"", "\"work\": \"infer\"", "bench infer mbv2-tiny --steps 2 --warmup 0 --json");
    expect_cli(0, "layer type", "depthwise 3x3", "bench train mbv2-tiny --batch 4 --steps 1 --warmup 0 --profile");
    /* --layers: every layer on its row, by name, with its shapes (b2's strided depthwise) */
    expect_cli(0, "b2.dw ", "28x28x64     14x14x64", "bench train mbv2-tiny --batch 4 --steps 1 --warmup 0 --layers");
    expect_cli(0, "(the rows time the first thread, which ran 2 of the 4 images",  "b7.project",
               "bench infer mbv2-tiny --batch 4 --threads 2 --micro-batch 1 --steps 1 --warmup 0 --layers");
    expect_cli(0, "kernels ref", NULL, "bench infer mbv2-tiny --steps 1 --warmup 0 --isa ref");
    expect_cli(2, "'train', 'infer', 'loader' or 'int8'", NULL, "bench fly mbv2-tiny");
    /* the int8 kernels under the sanitizers, each table compared with the
     * reference inside the command (exit 1 if one differs) */
    expect_cli(0, "total", "dw3x3", "bench int8 --seconds 0.001");
    expect_cli(2, "--batch", "integer", "bench int8 --batch 0");
    expect_cli(2, "unknown option '--bogus'", NULL, "bench int8 --bogus 1");
    expect_cli(0, "images/s", "crop 2 + flip", "bench loader --data '%s' --seconds 1 --batch 8", data_dir);
    expect_cli(5, "no/such/dir", NULL, "bench loader --data no/such/dir --seconds 1");
    expect_cli(2, "unknown option '--bogus'", NULL, "bench loader --bogus 1");
    expect_cli(2, "--workers", "integer", "bench loader --workers -1");
    expect_cli(2, "needs train|infer and a MODEL", NULL, "bench train");
    expect_cli(2, "--batch", "integer", "bench train mbv2-tiny --batch 0");
    expect_cli(2, "--steps", "integer", "bench infer mbv2-tiny --steps x");
    expect_cli(2, "--window", "integer", "bench infer mbv2-tiny --window 0");
    expect_cli(0, "median of 2 windows", NULL, "bench infer mbv2-tiny --steps 2 --window 3 --warmup 0");
    expect_cli(2, "--isa", "sse9", "bench infer mbv2-tiny --isa sse9");
    expect_cli(2, "unknown option '--bogus'", NULL, "bench infer mbv2-tiny --bogus 1");
    expect_cli(5, "nosuchnet", NULL, "bench infer nosuchnet");
}

/* The kernels OpenBLAS runs, as `regain bench --json` reports them. */
static void blas_core_of_run(const char *env, char *core, size_t size)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "env %s '%s' bench infer mbv2-tiny --steps 1 --warmup 0 --json", env,
             rgt_env("REGAIN_CLI_SAN"));
    assert_int_equal(rgt_run(cmd, out, sizeof out), 0);
    const char *p = strstr(out, "\"blas_core\": \"");
    if (!p) fail_msg("%s: no blas_core in its result line:\n%s", cmd, out);
    p += strlen("\"blas_core\": \"");
    size_t n = strcspn(p, "\"");
    assert_true(n > 0 && n < size);
    memcpy(core, p, n);
    core[n] = 0;
}

/* OpenBLAS falls back to SSE3 kernels on CPUs newer than its release; the
 * command starts itself again with OPENBLAS_CORETYPE naming kernels the CPU
 * can run (regain/cpu.h), and leaves a user's choice alone. */
static void test_blas_coretype(void **state)
{
    (void)state;
    char core[64];
    blas_core_of_run("-u OPENBLAS_CORETYPE", core, sizeof core);
    if (rg_blas_coretype_for(core, rg_cpu_isa_supported()))
        fail_msg("regain bench ran OpenBLAS's %s kernels on a CPU with %s", core,
                 rg_isa_name(rg_cpu_isa_supported()));
    blas_core_of_run("OPENBLAS_CORETYPE=Prescott", core, sizeof core);
    assert_string_equal(core, "Prescott");
}

/* ---- train: models, specs, configuration files ---------------------------------------------- */

static void test_train_model_errors(void **state)
{
    (void)state;
    const char *out_dir = rgt_in_root("never");
    expect_cli(5, "no-such-model", NULL, "train --data '%s' --model no-such-model --epochs 1 --out '%s'", data_dir,
               out_dir);

    const char *spec = rgt_in_root("bad.spec");
    const char *text = "input h=28 w=28 c=1\n"
                       "conv name=stem c=8 k=3 bn act=relu6\n"
                       "ir name=b1 t=2 tt=2 c=8\n"
                       "gap\n"
                       "fc n=10\n";
    write_text(spec, text);
    char where[800];
    snprintf(where, sizeof where, "%s:3", spec);
    expect_cli(4, where, "unknown key 'tt'", "train --data '%s' --model '%s' --epochs 1 --out '%s'", data_dir, spec,
               out_dir);

    /* a spec whose input does not match the data */
    spec = rgt_in_root("wide.spec");
    text = "input h=32 w=32 c=1\nconv name=stem c=8 k=3 bn act=relu\ngap\nfc n=10\n";
    write_text(spec, text);
    expect_cli(4, spec, "32x32x1", "train --data '%s' --model '%s' --epochs 1 --out '%s'", data_dir, spec, out_dir);

    /* a spec that is not there (a path, so not a zoo name) */
    expect_cli(3, rgt_in_root("missing.spec"), NULL, "train --data '%s' --model '%s' --epochs 1 --out '%s'", data_dir,
               rgt_in_root("missing.spec"), out_dir);

    /* configuration files */
    const char *cfg = rgt_in_root("bad.cfg");
    write_text(cfg, "epochs = 2\nthis line has no equals sign\n");
    snprintf(where, sizeof where, "%s:2", cfg);
    expect_cli(4, where, "key = value", "train --config '%s'", cfg);
    cfg = rgt_in_root("unknown.cfg");
    write_text(cfg, "# comment\nepochs = 2\nlearning_rate = 0.1\n");
    snprintf(where, sizeof where, "%s:3", cfg);
    expect_cli(2, where, "unknown key 'learning_rate'", "train --config '%s'", cfg);
    expect_cli(3, rgt_in_root("no.cfg"), NULL, "train --config '%s'", rgt_in_root("no.cfg"));

    /* nothing was trained */
    struct stat sb;
    assert_int_not_equal(stat(rgt_in_root("never/last.safetensors"), &sb), 0);
}

/* ---- train: damaged datasets ------------------------------------------------------------------- */

static void test_train_data_errors(void **state)
{
    (void)state;
    const char *out_dir = rgt_in_root("never");
    char file[800];

    /* training images cut short */
    const char *d = rgt_in_root("data-truncated");
    write_dataset(d, 20, 10);
    write_images(d, "train-images-idx3-ubyte", 20, 20 * 784 - 100);
    snprintf(file, sizeof file, "%s/train-images-idx3-ubyte", d);
    expect_cli(4, file, "truncated", "train --data '%s' --epochs 1 --out '%s'", d, out_dir);

    /* test labels cut short */
    d = rgt_in_root("data-truncated-labels");
    write_dataset(d, 20, 10);
    write_labels(d, "t10k-labels-idx1-ubyte", 10, 7);
    snprintf(file, sizeof file, "%s/t10k-labels-idx1-ubyte", d);
    expect_cli(4, file, "truncated", "train --data '%s' --epochs 1 --out '%s'", d, out_dir);

    /* wrong magic: a label file where the images should be */
    d = rgt_in_root("data-magic");
    write_dataset(d, 20, 10);
    snprintf(file, sizeof file, "%s/train-images-idx3-ubyte", d);
    const uint32_t n20 = 20;
    write_idx(file, 0x801, 1, &n20, 20);
    expect_cli(4, file, "magic", "train --data '%s' --epochs 1 --out '%s'", d, out_dir);

    /* 20 images, 19 labels */
    d = rgt_in_root("data-count");
    write_dataset(d, 20, 10);
    write_labels(d, "train-labels-idx1-ubyte", 19, 19);
    expect_cli(4, "20 images", "19 labels", "train --data '%s' --epochs 1 --out '%s'", d, out_dir);

    /* a dataset directory without its test files */
    d = rgt_in_root("data-partial");
    write_dataset(d, 20, 10);
    snprintf(file, sizeof file, "%s/t10k-images-idx3-ubyte", d);
    assert_int_equal(remove(file), 0);
    expect_cli(5, d, "t10k-images-idx3-ubyte", "train --data '%s' --epochs 1 --out '%s'", d, out_dir);

    /* no such directory */
    expect_cli(5, rgt_in_root("no-data"), NULL, "train --data '%s' --epochs 1 --out '%s'", rgt_in_root("no-data"), out_dir);
}

/* ---- eval and info: damaged checkpoints -------------------------------------------------------- */

static void expect_bad_checkpoint(int code, const char *name, const char *word)
{
    const char *p = rgt_in_root(name);
    expect_cli(code, p, word, "eval '%s' --data '%s'", p, data_dir);
    expect_cli(code, p, word, "info '%s'", p);
}

static void test_bad_checkpoints(void **state)
{
    (void)state;
    expect_bad_checkpoint(3, "missing.safetensors", "cannot open");
    expect_bad_checkpoint(3, "data", "not a regular file"); /* a directory */
    expect_bad_checkpoint(4, "truncated.safetensors", "truncated");
    expect_bad_checkpoint(4, "cut-header.safetensors", "truncated");
    expect_bad_checkpoint(4, "tampered.safetensors", "checksum mismatch");
    expect_bad_checkpoint(4, "empty.safetensors", "empty");
    expect_bad_checkpoint(4, "text.safetensors", "header length");
    expect_bad_checkpoint(4, "foreign.safetensors", "not a regain checkpoint");
    expect_bad_checkpoint(4, "later.safetensors", "'regain.format' is 'checkpoint-9'");
}

/* ---- train --resume ------------------------------------------------------------------------------ */

static void test_resume_errors(void **state)
{
    (void)state;
    /* a new run into a directory that holds one is refused, never replaced */
    expect_cli(2, run_dir, "--overwrite", "train --data '%s' --epochs 1 --out '%s'", data_dir, run_dir);
    /* a directory without last.safetensors */
    const char *d = rgt_in_root("empty-run");
    assert_int_equal(mkdir(d, 0777), 0);
    char file[800];
    snprintf(file, sizeof file, "%s/last.safetensors", d);
    expect_cli(3, file, "cannot open", "train --resume '%s'", d);
    /* no such directory */
    expect_cli(3, "last.safetensors", NULL, "train --resume '%s'", rgt_in_root("no-run"));

    /* last.safetensors damaged, or a checkpoint without training state */
    d = rgt_in_root("tampered-run");
    assert_int_equal(mkdir(d, 0777), 0);
    snprintf(file, sizeof file, "%s/last.safetensors", d);
    copy_file(rgt_in_root("tampered.safetensors"), file);
    expect_cli(4, file, "checksum mismatch", "train --resume '%s'", d);

    d = rgt_in_root("foreign-run");
    assert_int_equal(mkdir(d, 0777), 0);
    snprintf(file, sizeof file, "%s/last.safetensors", d);
    copy_file(rgt_in_root("foreign.safetensors"), file);
    expect_cli(4, file, "not a training checkpoint", "train --resume '%s'", d);

    /* best.safetensors holds the weights only, without the optimizer state:
     * not resumable */
    d = rgt_in_root("weights-run");
    assert_int_equal(mkdir(d, 0777), 0);
    snprintf(file, sizeof file, "%s/last.safetensors", d);
    char best[800];
    snprintf(best, sizeof best, "%s/best.safetensors", run_dir);
    copy_file(best, file);
    expect_cli(4, file, "weights only", "train --resume '%s'", d);
}

/* ---- train: distillation -------------------------------------------------------------------------- */

static void test_distill_errors(void **state)
{
    (void)state;
    const char *o = rgt_in_root("never-distilled");
#define TRAIN "train --data '%s' --epochs 1 --out '%s' "
    expect_cli(3, "teacher: ", "cannot open", TRAIN "--teacher '%s' --kd-alpha 0.5", data_dir, o,
               rgt_in_root("missing.safetensors"));
    expect_cli(4, "teacher: ", "checksum mismatch", TRAIN "--teacher '%s' --kd-alpha 0.5", data_dir, o,
               rgt_in_root("tampered.safetensors"));
    expect_cli(4, "teacher: ", "not a regain checkpoint", TRAIN "--teacher '%s' --kd-alpha 0.5", data_dir, o,
               rgt_in_root("foreign.safetensors"));
    expect_cli(2, "teacher: ", "no teacher checkpoint", TRAIN "--kd-alpha 0.5", data_dir, o);
    expect_cli(2, "teacher: ", "no distillation loss", TRAIN "--teacher '%s'", data_dir, o, ckpt);
    expect_cli(2, "teacher2: ", "without teacher", TRAIN "--teacher2 '%s' --kd-alpha 0.5", data_dir, o, ckpt);
    expect_cli(2, "kd_alpha", NULL, TRAIN "--teacher '%s' --kd-alpha 1.5", data_dir, o, ckpt);
    expect_cli(2, "hints: 'b3'", "not a layer pair", TRAIN "--teacher '%s' --hints b3", data_dir, o, ckpt);
    expect_cli(2, "hints: ", "::", TRAIN "--teacher '%s' --hints b3:b3,::", data_dir, o, ckpt);
    expect_cli(2, "at: ", "ends with a comma", TRAIN "--teacher '%s' --at b3:b3,", data_dir, o, ckpt);
    expect_cli(2, "at: ", "more than 4", TRAIN "--teacher '%s' --at a:a,b:b,c:c,d:d,e:e", data_dir, o, ckpt);
    expect_cli(2, "hints: ", "student has no layer 'zz'", TRAIN "--teacher '%s' --hints zz:b3", data_dir, o, ckpt);
    expect_cli(2, "at: ", "has no layer 'zz'", TRAIN "--teacher '%s' --at b3:zz", data_dir, o, ckpt);
    /* a teacher that learned other inputs than the student's batches */
    expect_cli(2, "teacher ", "normalized with mean", TRAIN "--teacher '%s' --kd-alpha 0.5 --mean 0.5", data_dir, o,
               ckpt);
    struct stat sb;
    assert_int_not_equal(stat(rgt_in_root("never-distilled/last.safetensors"), &sb), 0);

    /* the teacher file replaced under a run: its resume is refused */
    char teacher[800], best[800];
    snprintf(teacher, sizeof teacher, "%s", rgt_in_root("teacher.safetensors"));
    snprintf(best, sizeof best, "%s/best.safetensors", run_dir);
    copy_file(ckpt, teacher);
    const char *taught = rgt_in_root("taught");
    expect_cli(0, "teacher", NULL,
               TRAIN "--teacher '%s' --kd-alpha 0.5 --train-limit 256 --test-limit 128 --batch 64 --workers 0",
               data_dir, taught, teacher);
    expect_cli(0, "resuming", NULL, "train --resume '%s'", taught);
    copy_file(best, teacher);
    expect_cli(2, "taught/last.safetensors", "teacher files changed", "train --resume '%s'", taught);
#undef TRAIN
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_models),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_bench),
        cmocka_unit_test(test_blas_coretype),
        cmocka_unit_test(test_train_model_errors),
        cmocka_unit_test(test_train_data_errors),
        cmocka_unit_test(test_bad_checkpoints),
        cmocka_unit_test(test_resume_errors),
        cmocka_unit_test(test_distill_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
