/* regain export --c DIR MODEL.rgm: an int8 model as a self-contained C99
 * library for a microcontroller (regain/export_c.h, docs/deployment.md). */
#include "cli.h"
#include "regain/data.h"
#include "regain/export_c.h"
#include "regain/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The flash estimate printed before cross-compiling: the integer reference
 * kernels, start-up code and memcpy/memset on a Cortex-M4 at -O2, plus each
 * layer's kernel call and parameter struct. Fitted to arm-none-eabi-size of
 * the minimal firmware (tiny-m4.elf) less the weights: 10524 bytes for a
 * 10-layer model with every version 1 op kind, 11800 for mbv2-tiny's 28
 * layers (the tests print these; docs/deployment.md has the figures). */
#define CODE_BASE_BYTES 9800
#define CODE_PER_LAYER_BYTES 72

static const char *help_text =
    "usage: regain export --c DIR MODEL.rgm [--inputs N] [--seed S] [--data fashion-mnist|DIR]\n"
    "\n"
    "Writes the int8 model MODEL.rgm (regain export-rgm) as a self-contained C99\n"
    "library into DIR: the weights as const arrays, one static arena planned by\n"
    "liveness, int model_invoke(const int8_t *in, int8_t *out), the project's\n"
    "integer reference kernels (no libc but memcpy and memset), golden vectors\n"
    "from the host runtime (every layer's output for the first input, the final\n"
    "output for each) and a self-check program, with start-up code and linker\n"
    "scripts for the Arm MPS2 AN386 (Cortex-M4) and AN500 (Cortex-M7) boards.\n"
    "\n"
    "  --inputs N   golden inputs, 1 to 64 (default 2)\n"
    "  --seed S     the random golden inputs' seed (default 1)\n"
    "  --data D     take the golden inputs from the first N test images of a\n"
    "               data set instead, normalized and quantized as the model expects\n"
    "\n"
    "Then: make -C DIR host && DIR/selfcheck-host; make -C DIR run-m4 run-m7 size\n"
    "(arm-none-eabi-gcc, newlib and qemu-system-arm; see docs/deployment.md).\n";

/* The first n test images of data, normalized and quantized for m. */
static rg_status load_inputs(const rg_rgm *m, const char *data, int32_t n, int8_t **out, rg_error *err)
{
    *out = NULL;
    rg_dataset ds = {0};
    rg_status st = rg_dataset_load(data, "test", &ds, err);
    const rg_rgm_tensor *ti = &m->tensors[m->input];
    if (!st && (ds.h != ti->h || ds.w != ti->w || ds.c != ti->c))
        st = rg_fail(err, RG_ERR_SHAPE, "%s: images are %dx%dx%d, the model takes %dx%dx%d", ds.source, (int)ds.h,
                     (int)ds.w, (int)ds.c, (int)ti->h, (int)ti->w, (int)ti->c);
    if (!st && ds.n < n)
        st = rg_fail(err, RG_ERR_ARG, "%s: --inputs %d but the test split has %d images", ds.source, (int)n, (int)ds.n);
    size_t k = (size_t)n * (size_t)ti->h * ti->w * ti->c;
    if (!st && !(*out = malloc(k))) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < k; i++) {
        float x = ((float)ds.pixels[i] / 255.0f - m->mean) / m->std;
        (*out)[i] = (int8_t)rg_q_quantize_value(x, ti->q, RG_Q_ACT_MIN, RG_Q_ACT_MAX);
    }
    rg_dataset_free(&ds);
    return st;
}

int cmd_export(int argc, char **argv)
{
    const char *dir = NULL, *model = NULL, *data = NULL;
    int32_t n_inputs = 2;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_text, stdout);
            return EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (model) return cli_usage_error("export", "only one model, got '%s' and '%s'", model, a);
            model = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("export", "option %s needs a value", a);
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--c")) dir = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--inputs")) {
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 64) return cli_usage_error("export", "--inputs %s: need an integer in [1, 64]", v);
            n_inputs = (int32_t)n;
        } else if (!strcmp(a, "--seed")) {
            seed = strtoull(v, &end, 10);
            if (!*v || *end || *v == '-') return cli_usage_error("export", "--seed %s: need an integer >= 0", v);
        } else return cli_usage_error("export", "unknown option %s", a);
    }
    if (!dir) return cli_usage_error("export", "missing --c DIR (the only export format)");
    if (!model) return cli_usage_error("export", "missing the model file (MODEL.rgm)");
    rg_error err = {0};
    rg_rgm *m = NULL;
    int8_t *inputs = NULL;
    rg_status st = rg_rgm_load(model, &m, &err);
    if (!st && data) st = load_inputs(m, data, n_inputs, &inputs, &err);
    rg_export_c_options o = rg_export_c_default();
    o.n_inputs = n_inputs;
    o.inputs = inputs;
    o.seed = seed;
    const char *base = strrchr(model, '/');
    o.name = base ? base + 1 : model;
    rg_export_c_stats s;
    if (!st) st = rg_export_c(m, dir, &o, &s, &err);
    if (!st) {
        size_t code = CODE_BASE_BYTES + CODE_PER_LAYER_BYTES * (size_t)s.n_layers;
        printf("%s: %d files, %d layers, golden inputs: %d (%s)\n", dir, (int)s.n_files, (int)s.n_layers, (int)n_inputs,
               data ? "test images" : "random");
        printf("  flash  weights and parameters   %9zu bytes (%.1f KiB)\n", s.const_bytes, (double)s.const_bytes / 1024);
        printf("         code (estimate, M4 -O2)  %9zu bytes\n", code);
        printf("         total (estimate)         %9zu bytes (%.1f KiB)\n", s.const_bytes + code,
               (double)(s.const_bytes + code) / 1024);
        printf("  RAM    arena                    %9zu bytes (%.1f KiB), plus the stack\n", s.arena_bytes,
               (double)s.arena_bytes / 1024);
        printf("  golden vectors (self-check)     %9zu bytes\n", s.golden_bytes);
        printf("next: make -C %s host && %s/selfcheck-host; make -C %s run-m4 run-m7 size\n", dir, dir, dir);
    }
    free(inputs);
    rg_rgm_free(m);
    return st ? cli_fail(&err) : EXIT_OK;
}
