/* regain bench int8 MODEL: the whole int8 runtime (regain/rt.h) on a model,
 * images/s and latency at a batch and thread count, optionally per op. The
 * JSON line is the one bench/compare.py reads from every tool. */
#include "cli.h"
#include "regain/bench.h"
#include "regain/cpu.h"
#include "regain/graph.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/rt.h"
#include "regain/rt_qmodel.h"
#include "regain/stats.h"
#include "regain/zoo.h"
#include "rt/kernels/qk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help_text =
    "usage: regain bench int8 MODEL [options]\n"
    "\n"
    "Times the int8 runtime on MODEL: a .rgm file, or a zoo name (then the\n"
    "network gets random weights and is lowered with activation ranges\n"
    "calibrated on 64 noise images: the speed is that of a trained model of\n"
    "the same shape). Each step runs --batch float images through the\n"
    "runtime (quantize the input, every op, dequantize the logits), as the\n"
    "peers in bench/ do. Prints the median images/s over the timed windows.\n"
    "\n"
    "  --batch N        images per step (default 1)\n"
    "  --threads N      threads sharing the images of a step (default 1)\n"
    "  --micro-batch N  images a thread runs through the network together\n"
    "                   (default: 1 at batch 1, else 8)\n"
    "  --steps N        timed windows (default 200)\n"
    "  --window N       steps per window (default 1)\n"
    "  --warmup N       untimed steps first (default 20)\n"
    "  --isa NAME       ref, avx2, avx512 or avx512vnni: use at most these kernels\n"
    "  --profile        then time every op alone (one image, one thread, median\n"
    "                   over the steps) and print the per-op table\n"
    "  --requant RULE   fixed (default) or fp32: the zoo network's requantization\n"
    "                   (regain quantize --requant); a .rgm file keeps its own\n"
    "  --json           print one JSON line (the format bench/compare.py reads)\n"
    "\n"
    "Without MODEL, 'regain bench int8 [--batch N] [--seconds S]' times the\n"
    "kernel tables layer by layer against the reference.\n";

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

/* A zoo network with random weights, lowered on noise: for timing only. */
static rg_status zoo_model(const char *name, int fp32, rg_qmodel **qm, rg_rgm **out, rg_error *err)
{
    enum { CALIB = 64 };
    rg_graph *g;
    rg_status st = rg_zoo_build(name, 28, 28, 1, 10, &g, err);
    if (st) return st;
    rg_graph_init_params(g, 1);
    float *calib = malloc(sizeof(float) * 28 * 28 * CALIB);
    if (!calib) {
        rg_graph_free(g);
        return rg_fail(err, RG_ERR_NOMEM, "bench int8: out of memory");
    }
    rg_rng r = rg_rng_keyed(1, 0, 0);
    for (int i = 0; i < 28 * 28 * CALIB; i++) calib[i] = rg_rng_normal(&r);
    rg_lower_config cfg = rg_lower_default();
    cfg.batch = 8; /* small calibration batches: the float graph's memory is most of the peak RSS */
    st = rg_quant_lower(g, calib, CALIB, &cfg, qm, err);
    if (!st && fp32) st = rg_qmodel_use_fp32(*qm, err);
    free(calib);
    rg_graph_free(g);
    if (!st) st = rg_rgm_from_qmodel(*qm, 0.286f, 0.353f, out, err);
    return st;
}

typedef struct {
    double *t; /* per op: seconds of the current image */
    double last;
} prof_state;

static void prof_trace(void *user, int32_t op, const int8_t *y)
{
    (void)y;
    prof_state *s = user;
    double t = cli_now_s();
    s->t[op] = t - s->last;
    s->last = t;
}

/* Per op: median over `steps` images of its time alone, one thread. */
static void profile(const rg_rgm *m, const rg_rt *rt1, void *arena, const int8_t *x, int32_t steps)
{
    int32_t n = m->n_ops;
    double *all = malloc(sizeof(double) * (size_t)n * (size_t)steps), *col = malloc(sizeof(double) * (size_t)steps);
    prof_state s = {malloc(sizeof(double) * (size_t)n), 0};
    int8_t out[4096];
    for (int32_t k = 0; k < steps; k++) {
        s.last = cli_now_s();
        rg_rt_invoke_trace(rt1, arena, x, out, prof_trace, &s);
        for (int32_t i = 0; i < n; i++) all[(size_t)i * steps + k] = s.t[i];
    }
    double total = 0, med[1024];
    int64_t total_macs = 0;
    for (int32_t i = 0; i < n && i < 1024; i++) {
        memcpy(col, all + (size_t)i * steps, sizeof(double) * (size_t)steps);
        med[i] = rg_stats_median(col, (size_t)steps);
        total += med[i];
        total_macs += rg_rgm_op_macs(m, i);
    }
    printf("\nprofile: every op alone, one image, one thread, %s kernels (median of %d)\n", rg_rt_table_name(rt1),
           (int)steps);
    printf("%3s %-24s %-9s %-16s %9s %8s %6s %8s\n", "op", "name", "kind", "in > out", "MACs", "us", "share",
           "GMAC/s");
    for (int32_t i = 0; i < n && i < 1024; i++) {
        const rg_rgm_op *o = &m->ops[i];
        const rg_rgm_tensor *a = &m->tensors[o->in[0]], *b = &m->tensors[o->out];
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%d>%d%s", (int)a->h, (int)a->w, (int)a->c, (int)b->c,
                 b->h < a->h && o->kind != RG_RT_GAP ? "/2" : "");
        int64_t macs = rg_rgm_op_macs(m, i);
        const char *kind = rg_rt_kind_name(o->kind);
        if (o->kind == RG_RT_CONV && o->k_h == 1 && o->k_w == 1) kind = "pointwise";
        printf("%3d %-24.24s %-9s %-16s %9lld %8.2f %5.1f%%", (int)i, o->name, kind, shape, (long long)macs,
               med[i] * 1e6, 100.0 * med[i] / total);
        if (macs > 0) printf(" %8.1f", (double)macs / med[i] / 1e9);
        printf("\n");
    }
    printf("%3s %-24s %-9s %-16s %9lld %8.2f %5s  %8.1f\n", "", "total (ops alone)", "", "", (long long)total_macs,
           total * 1e6, "", (double)total_macs / total / 1e9);
    free(all), free(col), free(s.t);
}

int cmd_bench_int8_model(int argc, char **argv)
{
    const char *model = NULL;
    int32_t batch = 1, threads = 1, mb = 0, steps = 200, window = 1, warmup = 20;
    int json = 0, prof = 0, fp32 = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_text, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--profile")) prof = 1;
        else if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) return cli_usage_error("bench int8", "%s needs a value", a);
            const char *v = argv[++i];
            struct {
                const char *key;
                int32_t *to, lo, hi;
            } keys[] = {{"--batch", &batch, 1, 1 << 16}, {"--threads", &threads, 1, 256},
                        {"--micro-batch", &mb, 1, 4096}, {"--steps", &steps, 1, 1 << 20},
                        {"--window", &window, 1, 1 << 20}, {"--warmup", &warmup, 0, 1 << 20}};
            int found = 0;
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
                if (strcmp(a, keys[k].key)) continue;
                char *end;
                long x = strtol(v, &end, 10);
                if (*v == 0 || *end || x < keys[k].lo || x > keys[k].hi)
                    return cli_usage_error("bench int8", "%s: '%s' is not an integer in [%d, %d]", a, v,
                                           (int)keys[k].lo, (int)keys[k].hi);
                *keys[k].to = (int32_t)x;
                found = 1;
            }
            if (!found && !strcmp(a, "--isa")) {
                int isa = rg_isa_parse(v);
                if (isa < 0)
                    return cli_usage_error("bench int8", "--isa: '%s' is not ref, avx2, avx512 or avx512vnni", v);
                rg_cpu_set_isa((rg_isa)isa);
                found = 1;
            }
            if (!found && !strcmp(a, "--requant")) {
                if (strcmp(v, "fixed") && strcmp(v, "fp32"))
                    return cli_usage_error("bench int8", "--requant: '%s' is not fixed or fp32", v);
                fp32 = !strcmp(v, "fp32");
                found = 1;
            }
            if (!found) return cli_usage_error("bench int8", "unknown option '%s'", a);
        } else if (!model)
            model = a;
        else
            return cli_usage_error("bench int8", "unexpected argument '%s'", a);
    }
    if (mb == 0) mb = batch == 1 ? 1 : 8;
    if (mb > batch) mb = batch;

    rg_error err = {0};
    rg_qmodel *qm = NULL;
    rg_rgm *m = NULL;
    rg_status st = ends_with(model, ".rgm") ? rg_rgm_load(model, &m, &err) : zoo_model(model, fp32, &qm, &m, &err);
    if (st) {
        rg_qmodel_free(qm);
        return cli_fail(&err);
    }
    rg_rt *rt = NULL, *rt1 = NULL;
    const rg_rt_options o = {mb, threads}, one = {1, 1};
    void *arena = NULL;
    float *x = NULL, *y = NULL;
    double *win = NULL;
    int rc = EXIT_OK;
    if ((st = rg_rt_prepare_opts(m, NULL, &o, &rt, &err)) || (prof && (st = rg_rt_prepare_opts(m, NULL, &one, &rt1, &err))))
        goto done;
    const rg_rgm_tensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    size_t in_n = (size_t)ti->h * ti->w * ti->c, out_n = (size_t)to->h * to->w * to->c;
    arena = rg_alloc_aligned(rg_rt_arena_size(rt), &err);
    x = malloc(sizeof(float) * in_n * (size_t)batch);
    y = malloc(sizeof(float) * out_n * (size_t)batch);
    win = malloc(sizeof(double) * (size_t)steps);
    if (!arena || !x || !y || !win) {
        st = rg_fail(&err, RG_ERR_NOMEM, "bench int8: out of memory");
        goto done;
    }
    rg_rng r = rg_rng_keyed(2, 0, 0);
    for (size_t i = 0; i < in_n * (size_t)batch; i++) x[i] = rg_rng_normal(&r);
    for (int32_t k = 0; k < warmup; k++) rg_rt_invoke_batch_float(rt, arena, batch, x, y);
    for (int32_t k = 0; k < steps; k++) {
        double t0 = cli_now_s();
        for (int32_t s = 0; s < window; s++) rg_rt_invoke_batch_float(rt, arena, batch, x, y);
        win[k] = cli_now_s() - t0;
    }
    double med = rg_stats_median(win, (size_t)steps), ips = (double)batch * window / med, lat_ms = med / window * 1e3;
    if (json)
        printf("{\"tool\": \"regain\", \"work\": \"int8\", \"model\": \"%s\", \"batch\": %d, \"threads\": %d, "
               "\"images_per_s\": %.2f, \"latency_ms\": %.4f, \"windows\": %d, \"peak_rss_mib\": %.1f, "
               "\"isa\": \"%s\", \"micro_batch\": %d, \"requant\": \"%s\"}\n",
               model, (int)batch, (int)threads, ips, lat_ms, (int)steps, (double)rg_peak_rss_bytes() / (1 << 20),
               rg_rt_table_name(rt), (int)mb, rg_rgm_requant_name(m));
    else {
        printf("int8 %s, batch %d, %d thread%s, micro-batch %d, kernels %s, requantization %s, %s\n", model, (int)batch,
               (int)threads, threads == 1 ? "" : "s", (int)mb, rg_rt_table_name(rt), rg_rgm_requant_name(m),
               rg_cpu_description());
        printf("  images/s   %.1f (median of %d %s; min %.1f, max %.1f)\n", ips, (int)steps,
               window > 1 ? "windows" : "steps", (double)batch * window / win[steps - 1],
               (double)batch * window / win[0]);
        printf("  step       %.4f ms\n", lat_ms);
        printf("  arena      %zu bytes (%d x %zu), packed weights %zu bytes\n", rg_rt_arena_size(rt), (int)threads,
               rg_rt_arena_size(rt) / (size_t)threads, rg_rt_packed_size(rt));
    }
    if (prof) {
        int8_t *x8 = malloc(in_n);
        for (size_t i = 0; i < in_n; i++) x8[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
        profile(m, rt1, arena, x8, steps);
        free(x8);
    }
done:
    if (st) rc = cli_fail(&err);
    rg_free_aligned(arena);
    free(x), free(y), free(win);
    rg_rt_free(rt), rg_rt_free(rt1);
    rg_rgm_free(m);
    rg_qmodel_free(qm);
    return rc;
}
