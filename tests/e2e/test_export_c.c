/* The microcontroller export (regain/export_c.h, regain export --c): a
 * lowered model (every op kind of version 1; every version 2 op with a
 * per-channel clamp; a four-input concat; mbv2-tiny, plain and equalized)
 * is exported with inputs chosen here, the library is built natively and
 * for a Cortex-M4 and a Cortex-M7 (arm-none-eabi-gcc, -Wall -Wextra, no
 * warning allowed) and its self-check run natively and under QEMU (MPS2
 * AN386 and AN500, semihosting). Every run must print the outputs the host
 * runtime computes with the reference kernel table, byte for byte, and pass
 * its own per-layer comparison. The exported kernels must be the project's
 * files unchanged, the library must need nothing from libc but
 * memcpy/memset, and a self-check whose goldens are damaged, or whose model
 * lost its per-channel clamp, must fail. Bad command lines and files get
 * clear errors. */
#include "test_support.h"
#include "qmodel_fixture.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/export_c.h"
#include "regain/graph.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/rt.h"
#include "regain/rt_qmodel.h"
#include "regain/zoo.h"
#include "rt/kernels/qk.h"

#define QEMU_TIMEOUT "timeout 120 "
#define M4 "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"

static char out[1 << 16];

static void require_tool(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s", tool);
    if (rgt_run(cmd, NULL, 0) != 0) fail_msg("%s not found: run scripts/install-deps", tool);
}

/* Lowers g (random weights, calibrated on 32 noise images) and writes the
 * .rgm to rgt_root/name; returns the loaded model. */
static rg_rgm *lowered_as(rg_graph *g, const char *name, int fp32)
{
    const rg_value *in = &g->values[g->input];
    size_t image = (size_t)in->shape.h * in->shape.w * in->shape.c;
    rg_graph_init_params(g, 3);
    int32_t fc = rg_graph_find_param(g, "fc.weight");
    if (fc >= 0) /* a tiny last layer at init: scale it so the logits spread */
        for (size_t k = 0; k < g->params[fc].count; k++) g->param_data[g->params[fc].offset + k] *= 30.0f;
    float *calib = malloc(sizeof(float) * 32 * image);
    rg_rng r = rg_rng_keyed(11, 0, 0);
    for (size_t i = 0; i < 32 * image; i++) calib[i] = rg_rng_normal(&r);
    rg_lower_config cfg = rg_lower_default();
    cfg.batch = 16;
    rg_qmodel *qm;
    CHECK(rg_quant_lower(g, calib, 32, &cfg, &qm, &E));
    if (fp32) CHECK(rg_qmodel_use_fp32(qm, &E));
    free(calib);
    CHECK(rg_rgm_write_qmodel(qm, 0.3f, 0.35f, rgt_in_root(name), &E));
    rg_qmodel_free(qm);
    rg_rgm *m;
    CHECK(rg_rgm_load(rgt_in_root(name), &m, &E));
    return m;
}

static rg_rgm *lowered(rg_graph *g, const char *name) { return lowered_as(g, name, 0); }

/* Reads the "output k:" line of a self-check's output into y (n values). */
static void parse_output(const char *text, int k, int8_t *y, size_t n)
{
    char key[32];
    snprintf(key, sizeof key, "output %d:", k);
    const char *p = strstr(text, key);
    if (!p) fail_msg("no '%s' line in:\n%s", key, text);
    p += strlen(key);
    for (size_t i = 0; i < n; i++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) fail_msg("'%s' holds %zu values, expected %zu", key, i, n);
        y[i] = (int8_t)v;
        p = end;
    }
}

/* A self-check's output against the runtime's outputs want[n_in][n]. */
static void expect_outputs(const char *label, const char *text, int rc, const int8_t *want, int n_in, size_t n)
{
    if (rc != 0 || !strstr(text, "selfcheck: PASS")) fail_msg("%s: self-check failed (exit %d):\n%s", label, rc, text);
    int8_t *got = malloc(n);
    for (int k = 0; k < n_in; k++) {
        parse_output(text, k, got, n);
        if (memcmp(got, want + (size_t)k * n, n) != 0) fail_msg("%s: output %d differs from the host runtime", label, k);
    }
    free(got);
}

/* The exported kernels and headers are the project's files, byte for byte. */
static void expect_same_sources(const char *dir)
{
    char root[1024], pattern[1100], a[1200], b[1200];
    snprintf(root, sizeof root, "%s/../..", rgt_env("REGAIN_GOLDEN_DIR"));
    snprintf(pattern, sizeof pattern, "%s/src/quant/ref_*.c", root);
    glob_t gl;
    assert_int_equal(glob(pattern, 0, NULL, &gl), 0);
    assert_true(gl.gl_pathc >= 5);
    const char *pairs[][2] = {{"kernels/fixedpoint.c", "src/quant/fixedpoint.c"},
                              {"regain/quant_kernels.h", "include/regain/quant_kernels.h"},
                              {"regain/quant.h", "include/regain/quant.h"},
                              {"regain/status.h", "include/regain/status.h"},
                              {"quant/ref_check.h", "src/quant/ref_check.h"}};
    size_t n_pairs = sizeof pairs / sizeof pairs[0];
    for (size_t i = 0; i < n_pairs + gl.gl_pathc; i++) {
        if (i < n_pairs) {
            snprintf(a, sizeof a, "%s/%s", dir, pairs[i][0]);
            snprintf(b, sizeof b, "%s/%s", root, pairs[i][1]);
        } else {
            const char *src = gl.gl_pathv[i - n_pairs];
            snprintf(a, sizeof a, "%s/kernels/%s", dir, strrchr(src, '/') + 1);
            snprintf(b, sizeof b, "%s", src);
        }
        size_t sa, sb;
        char *da = rgt_read_file(a, &sa), *db = rgt_read_file(b, &sb);
        if (sa != sb || memcmp(da, db, sa) != 0) fail_msg("%s is not a copy of %s", a, b);
        free(da);
        free(db);
    }
    globfree(&gl);
}

static int run_in(const char *dir, const char *what)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s </dev/null", dir, what);
    return rgt_run(cmd, out, sizeof out);
}

static void expect_clean_build(const char *dir, const char *targets)
{
    char what[256];
    snprintf(what, sizeof what, "make -j2 %s", targets);
    int rc = run_in(dir, what);
    if (rc != 0 || strstr(out, "warning")) fail_msg("%s in %s: exit %d or warnings:\n%s", what, dir, rc, out);
}

typedef struct {
    long text, data, bss;
} arm_size;

/* The arm-none-eabi-size line of elf in the output of make size. */
static arm_size size_of(const char *text, const char *elf)
{
    const char *p = strstr(text, elf);
    assert_non_null(p);
    while (p > text && p[-1] != '\n') p--;
    arm_size s;
    assert_int_equal(sscanf(p, "%ld %ld %ld", &s.text, &s.data, &s.bss), 3);
    return s;
}

/* Exports m with n_in random inputs into rgt_root/label, builds and runs the
 * self-check natively and (cross) on both boards; checks the outputs against
 * the runtime on the reference table. */
static void export_and_run(rg_rgm *m, const char *label, int n_in, int cross, rg_export_c_stats *st)
{
    size_t in_n = (size_t)m->tensors[m->input].h * m->tensors[m->input].w * m->tensors[m->input].c;
    size_t out_n = (size_t)m->tensors[m->output].h * m->tensors[m->output].w * m->tensors[m->output].c;
    int8_t *x = malloc(in_n * (size_t)n_in), *want = malloc(out_n * (size_t)n_in);
    rg_rng r = rg_rng_keyed(7, 0, 0);
    for (size_t i = 0; i < in_n * (size_t)n_in; i++) x[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
    rg_rt *rt;
    CHECK(rg_rt_prepare(m, rg_qk_table_for(RG_ISA_REF), &rt, &E));
    void *arena = rg_alloc_aligned(rg_rt_arena_size(rt), &E);
    for (int k = 0; k < n_in; k++) rg_rt_invoke(rt, arena, x + (size_t)k * in_n, want + (size_t)k * out_n);
    rg_rt_plan_stats ps;
    rg_rt_plan_stats_get(rt, &ps);

    char dir[600];
    snprintf(dir, sizeof dir, "%s", rgt_in_root(label));
    rg_export_c_options o = rg_export_c_default();
    o.n_inputs = n_in;
    o.inputs = x;
    o.name = label;
    CHECK(rg_export_c(m, dir, &o, st, &E));
    assert_int_equal(st->n_layers, m->n_ops);
    assert_int_equal(st->arena_bytes, ps.arena);
    assert_true(st->const_bytes >= rg_rgm_param_bytes(m));
    expect_same_sources(dir);

    expect_clean_build(dir, "host");
    expect_outputs("host", out, run_in(dir, "./selfcheck-host"), want, n_in, out_n);
    if (cross) {
        expect_clean_build(dir, "m4 m7");
        expect_outputs("Cortex-M4 (mps2-an386)", out, run_in(dir, QEMU_TIMEOUT "make -s run-m4"), want, n_in, out_n);
        expect_outputs("Cortex-M7 (mps2-an500)", out, run_in(dir, QEMU_TIMEOUT "make -s run-m7"), want, n_in, out_n);
        assert_int_equal(run_in(dir, "make -s size"), 0);
        for (int b = 0; b < 2; b++) {
            arm_size s = size_of(out, b ? "tiny-m7.elf" : "tiny-m4.elf");
            print_message("%s on Cortex-M%d: flash %ld bytes (text %ld + data %ld), RAM %ld bytes (data + bss); "
                          "weights %zu, arena %zu\n",
                          label, b ? 7 : 4, s.text + s.data, s.text, s.data, s.data + s.bss, st->const_bytes,
                          st->arena_bytes);
            assert_true((size_t)s.text >= st->const_bytes);
            assert_true((size_t)s.bss >= st->arena_bytes);
        }
    }
    rg_free_aligned(arena);
    rg_rt_free(rt);
    free(x);
    free(want);
}

static void test_every_kind(void **state)
{
    (void)state;
    require_tool("arm-none-eabi-gcc");
    require_tool("qemu-system-arm");
    rg_graph *g = rgt_every_kind_graph();
    rg_rgm *m = lowered(g, "every.rgm");
    int kinds[RG_RT_CLAMP + 1] = {0}, pointwise = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        kinds[m->ops[i].kind]++;
        pointwise += m->ops[i].kind == RG_RT_CONV && m->ops[i].k_h == 1;
    }
    for (int k = 0; k <= RG_RT_CLAMP; k++) assert_true(kinds[k] > 0);
    assert_true(pointwise > 0);
    rg_export_c_stats st;
    export_and_run(m, "every", 3, 1, &st);
    const char *dir = rgt_in_root("every");

    /* nothing from libc but memcpy and memset (and the compiler's own
     * helpers, __aeabi_*, from libgcc) */
    assert_int_equal(run_in(dir, "arm-none-eabi-gcc " M4 " -std=c99 -O2 -I. -DRG_FREESTANDING -nostdlib -r -o lib.o "
                                 "model.c kernels/*.c && arm-none-eabi-nm -u lib.o"),
                     0);
    static char syms[sizeof out];
    memcpy(syms, out, sizeof out);
    int n_syms = 0;
    for (char *line = strtok(syms, "\n"); line; line = strtok(NULL, "\n")) {
        char *sym = strrchr(line, ' ');
        sym = sym ? sym + 1 : line;
        if (strcmp(sym, "memcpy") && strcmp(sym, "memset") && strncmp(sym, "__aeabi_", 8))
            fail_msg("the library needs %s from outside", sym);
        n_syms++;
    }
    assert_true(n_syms >= 1); /* memcpy at least: the listing was read */

    /* damaged goldens: one value of layer 1 and one of output 0 */
    char path[700];
    snprintf(path, sizeof path, "%s/golden.c", dir);
    size_t size;
    char *text = rgt_read_file(path, &size);
    const char *marks[] = {"l1[", "golden_outputs[GOLDEN_N_INPUTS][MODEL_OUTPUT_BYTES] = {{"};
    for (int k = 0; k < 2; k++) {
        char *p = strstr(text, marks[k]);
        assert_non_null(p);
        p = strchr(p, '{') + (k ? 2 : 1);
        while (*p == ' ' || *p == '\n') p++;
        /* the first value becomes another one of the same width or less */
        char *end;
        long v = strtol(p, &end, 10);
        char repl[8];
        int w = snprintf(repl, sizeof repl, "%d", v == 0 ? 1 : 0);
        memcpy(p, repl, (size_t)w);
        memset(p + w, ' ', (size_t)(end - p - w));
    }
    rgt_write_file(path, text, size);
    free(text);
    expect_clean_build(dir, "host m4");
    const char *runs[] = {"./selfcheck-host", QEMU_TIMEOUT "make -s run-m4"};
    for (int k = 0; k < 2; k++) {
        int rc = run_in(dir, runs[k]);
        if (rc == 0 || !strstr(out, "selfcheck: FAIL") || !strstr(out, "layer 1 (") ||
            !strstr(out, "input 0: output DIFFERS") || !strstr(out, "input 1: output matches"))
            fail_msg("%s with damaged goldens: exit %d\n%s", runs[k], rc, out);
    }
    rg_rgm_free(m);
    rg_graph_free(g);
}

/* Overwrites with spaces the first line of dir/model.c that holds what. */
static void blank_line(const char *dir, const char *what)
{
    char path[700];
    snprintf(path, sizeof path, "%s/model.c", dir);
    size_t size;
    char *text = rgt_read_file(path, &size);
    char *p = strstr(text, what);
    if (!p) fail_msg("no '%s' in %s", what, path);
    while (p > text && p[-1] != '\n') p--;
    for (; *p != '\n'; p++) *p = ' ';
    rgt_write_file(path, text, size);
    free(text);
}

/* Every op of .rgm version 2 (tests/support/qmodel_fixture.h: split,
 * lookup tables, multiply with a broadcast gate and elementwise, concat with
 * rescaling, shuffle, a per-channel clamp) on both boards. Without the
 * per-channel clamp the self-check fails at that layer: the clamp binds,
 * so the comparison would catch an export that left it out. */
static void test_new_ops(void **state)
{
    (void)state;
    require_tool("arm-none-eabi-gcc");
    require_tool("qemu-system-arm");
    rg_qmodel *qm = rgt_ops_model();
    rg_rgm *m;
    CHECK(rg_rgm_from_qmodel(qm, 0.25f, 0.5f, &m, &E));
    int kinds[RG_RT_N_KINDS] = {0}, clamped = 0;
    for (int32_t i = 0; i < m->n_ops; i++) kinds[m->ops[i].kind]++, clamped += m->ops[i].act_max_c != NULL;
    for (int k = RG_RT_CONCAT; k < RG_RT_N_KINDS; k++) assert_true(kinds[k] > 0);
    assert_true(clamped > 0);
    rg_export_c_stats st;
    export_and_run(m, "ops", 3, 1, &st);
    assert_int_equal(st.const_bytes, rg_rgm_param_bytes(m)); /* tables and clamps counted */

    const char *dir = rgt_in_root("ops");
    blank_line(dir, "rg_q_clamp_channels_s8("); /* hc0 is now unused: a warning, not checked here */
    assert_int_equal(run_in(dir, "make -s host"), 0);
    int rc = run_in(dir, "./selfcheck-host");
    if (rc == 0 || !strstr(out, "selfcheck: FAIL") || !strstr(out, "layer 0 (pw)"))
        fail_msg("without the per-channel clamp: exit %d\n%s", rc, out);
    rg_rgm_free(m);
    rg_qmodel_free(qm);
}

/* A concat of four inputs (the most an op reads), one of them twice, each
 * rescaled by its own multiplier to an output with another zero point:
 * in[0..3] and the four parameter sets must reach the kernel in order.
 * Built as an rg_rgm directly; natively only (the kernels are the ones the
 * board runs above). */
static void test_concat4(void **state)
{
    (void)state;
    rg_qparams q = {0.05f, 3};
    rg_rgm_tensor t[4] = {{2, 2, 3, q}, {2, 2, 3, q}, {2, 2, 3, q}, {2, 2, 12, {0.05f, -7}}};
    rg_rgm_op ops[3];
    memset(ops, 0, sizeof ops);
    const int32_t lo[2] = {-50, -128}, hi[2] = {60, 0};
    for (int k = 0; k < 2; k++)
        ops[k] = (rg_rgm_op){.kind = RG_RT_CLAMP, .in = {0, -1, -1, -1}, .out = 1 + k, .act_min = lo[k], .act_max = hi[k]};
    snprintf(ops[0].name, sizeof ops[0].name, "lo");
    snprintf(ops[1].name, sizeof ops[1].name, "hi");
    /* M = 1, 0.5, 0.75, 1.5 (multiplier / 2^31 * 2^shift) */
    ops[2] = (rg_rgm_op){.kind = RG_RT_CONCAT, .name = "cat4", .in = {1, 0, 2, 1}, .out = 3, .n_in = 4,
                         .cat_multipliers = {1 << 30, 1 << 30, 1610612736, 1610612736}, .cat_shifts = {1, 0, 0, 1}};
    rg_rgm m = {.tensors = t, .n_tensors = 4, .ops = ops, .n_ops = 3, .input = 0, .output = 3, .mean = 0, .std = 1};
    CHECK(rg_rgm_check(&m, &E));
    rg_export_c_stats st;
    export_and_run(&m, "cat4", 3, 0, &st);
    char path[700];
    snprintf(path, sizeof path, "%s/model.c", rgt_in_root("cat4"));
    size_t size;
    char *text = rgt_read_file(path, &size);
    assert_non_null(strstr(text, ".n_in = 4"));
    free(text);
}

/* mbv2-tiny, the benchmark student, on both boards; the flash and RAM
 * figures are printed (docs/deployment.md quotes them). */
static void test_mbv2_tiny(void **state)
{
    (void)state;
    require_tool("arm-none-eabi-gcc");
    require_tool("qemu-system-arm");
    rg_graph *g;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    rg_rgm *m = lowered(g, "mbv2.rgm");
    rg_export_c_stats st;
    export_and_run(m, "mbv2", 2, 1, &st);
    assert_int_equal(st.const_bytes, rg_rgm_param_bytes(m));
    /* the golden inputs from the test set, through the command line */
    rgt_require_fashion_mnist();
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "golden inputs: 1 (test images)", NULL,
                   "export --c mbv2_data mbv2.rgm --data fashion-mnist --inputs 1");
    size_t size;
    char *h = rgt_read_file(rgt_in_root("mbv2_data/golden.h"), &size);
    assert_non_null(strstr(h, "#define GOLDEN_N_INPUTS 1"));
    free(h);
    rg_rgm_free(m);
    rg_graph_free(g);
}

/* mbv2-tiny with fp32 requantization (regain quantize --requant fp32): the
 * Cortex-M4F's and M7's single-precision FPU give the host's bits, and the
 * flash holds the scales alone (4 bytes a channel, not 8). */
static void test_mbv2_tiny_fp32(void **state)
{
    (void)state;
    require_tool("arm-none-eabi-gcc");
    require_tool("qemu-system-arm");
    rg_graph *g;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    rg_rgm *m = lowered_as(g, "mbv2f.rgm", 1);
    assert_string_equal(rg_rgm_requant_name(m), "fp32");
    rg_export_c_stats st;
    export_and_run(m, "mbv2f", 2, 1, &st);
    assert_int_equal(st.const_bytes, rg_rgm_param_bytes(m));
    size_t size;
    char *c = rgt_read_file(rgt_in_root("mbv2f/model.c"), &size);
    assert_non_null(strstr(c, ".scales = f0"));
    assert_null(strstr(c, ".multipliers = m0"));
    free(c);
    rg_rgm_free(m);
    rg_graph_free(g);
}

/* mbv2-tiny lowered with cross-layer equalization: its ReLU6 layers carry
 * per-channel clamps that bind (tests/support/qmodel_fixture.h); on both
 * boards. */
static void test_mbv2_tiny_equalized(void **state)
{
    (void)state;
    require_tool("arm-none-eabi-gcc");
    require_tool("qemu-system-arm");
    rg_graph *g;
    rg_qmodel *qm = rgt_mbv2_tiny_equalized(&g);
    CHECK(rg_rgm_write_qmodel(qm, 0.3f, 0.35f, rgt_in_root("mbv2eq.rgm"), &E));
    rg_qmodel_free(qm);
    rg_rgm *m;
    CHECK(rg_rgm_load(rgt_in_root("mbv2eq.rgm"), &m, &E));
    int32_t clamped = 0;
    for (int32_t i = 0; i < m->n_ops; i++) clamped += m->ops[i].act_max_c != NULL;
    assert_true(clamped > 0);
    rg_export_c_stats st;
    export_and_run(m, "mbv2eq", 2, 1, &st);
    assert_int_equal(st.const_bytes, rg_rgm_param_bytes(m));
    rg_rgm_free(m);
    rg_graph_free(g);
}

/* The command line: a working export prints its table; errors name the
 * file or the option. */
static void test_cli(void **state)
{
    (void)state;
    rg_graph *g = rgt_every_kind_graph();
    rg_rgm *m = lowered(g, "cli.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "arena", "flash", "export --c cli_c cli.rgm --inputs 2 --seed 5");
    assert_non_null(strstr(out, "golden inputs: 2 (random)"));
    size_t size;
    char *h = rgt_read_file(rgt_in_root("cli_c/golden.h"), &size);
    assert_non_null(strstr(h, "#define GOLDEN_N_INPUTS 2"));
    free(h);
    /* the same export again replaces the files (and still builds) */
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "arena", NULL, "export --c cli_c cli.rgm");
    assert_int_equal(run_in(rgt_in_root("cli_c"), "make -s host && ./selfcheck-host"), 0);
    assert_non_null(strstr(out, "selfcheck: PASS"));

    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "missing --c", NULL, "export cli.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "missing the model", NULL, "export --c x");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "--inputs 0", "[1, 64]", "export --c x cli.rgm --inputs 0");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "unknown option --cc", NULL, "export --cc x cli.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 3, "nope.rgm", "cannot open", "export --c x nope.rgm");
    rgt_write_text("text.rgm", "not a model\n");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 4, "text.rgm", NULL, "export --c x text.rgm");
    /* an unwritable directory: a file is in the way */
    rgt_write_text("plain", "a file\n");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 3, "plain", "cannot create directory", "export --c plain/sub cli.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "Cortex-M4", NULL, "export --help");
    /* --data: the images must have the model's shape (12x12x3 here) */
    rgt_require_fashion_mnist();
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 4, "images are 28x28x1", "the model takes 12x12x3",
                   "export --c x cli.rgm --data fashion-mnist");

    /* the library: a model that is not valid is refused, naming the op */
    rg_rgm bad = *m;
    rg_rgm_op *ops = malloc(sizeof(rg_rgm_op) * (size_t)m->n_ops);
    memcpy(ops, m->ops, sizeof(rg_rgm_op) * (size_t)m->n_ops);
    ops[2].kind = RG_RT_N_KINDS;
    bad.ops = ops;
    rg_export_c_options o = rg_export_c_default();
    o.name = "bad.rgm";
    assert_int_equal(rg_export_c(&bad, rgt_in_root("bad_c"), &o, NULL, &E), RG_ERR_FORMAT);
    assert_non_null(strstr(E.msg, "bad.rgm"));
    assert_non_null(strstr(E.msg, "op 2"));
    o.n_inputs = 0;
    assert_int_equal(rg_export_c(m, rgt_in_root("bad_c"), &o, NULL, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "n_inputs 0"));
    free(ops);
    rg_rgm_free(m);
    rg_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_new_ops),
        cmocka_unit_test(test_concat4),
        cmocka_unit_test(test_mbv2_tiny),
        cmocka_unit_test(test_mbv2_tiny_equalized),
        cmocka_unit_test(test_mbv2_tiny_fp32),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
