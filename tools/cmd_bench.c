/* regain bench: images/s, latency and memory of training or inference, and
 * the per-layer profile against the machine's peak. */
#include "cli.h"
#include "regain/bench.h"
#include "regain/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help_text =
    "usage: regain bench train|infer MODEL [options]\n"
    "       regain bench loader [--data NAME|DIR] [--batch N] [--workers N] [--seconds S]\n"
    "                           [--augment SPEC] [--model MODEL]\n"
    "       regain bench int8 [--batch N] [--seconds S]   (int8 kernels; see --help there)\n"
    "\n"
    "Times training steps (forward, loss, backward, SGD update) or inference\n"
    "passes of MODEL (a zoo name or a spec file) on random 28x28x1 inputs and\n"
    "prints the median images/s over the timed steps, the median step time and\n"
    "the peak memory.\n"
    "\n"
    "  --batch N      images per step (default 128 for train, 1 for infer)\n"
    "  --threads N    compute threads (default: all cores)\n"
    "  --steps N      timed windows (default 20 for train, 200 for infer)\n"
    "  --window N     steps per timed window (default 1: every step timed alone)\n"
    "  --warmup N     untimed steps first (default 3 for train, 20 for infer)\n"
    "  --isa NAME     ref, avx2, avx512 or avx512vnni: use at most these kernels\n"
    "  --micro-batch N  inference: images each thread runs at a time (default:\n"
    "                 as many as keep a pass in about 1 MiB of cache)\n"
    "  --profile      time every layer; print per layer type its share of the\n"
    "                 step, GFLOP/s and share of the measured FMA peak\n"
    "  --layers       the profile, then every layer on its own row (name,\n"
    "                 shapes, times, share of the step, GFLOP/s, share of peak)\n"
    "  --json         print one JSON line (the format bench/compare.py reads)\n"
    "\n"
    "'bench loader' times the data loader alone: shuffled training images with\n"
    "random crop and flip, normalized, from --workers threads (default 2), for\n"
    "--seconds (default 3), on --data (default fashion-mnist). Its images/s\n"
    "must stay well above the training step's. --augment SPEC adds an\n"
    "augmentation spec on top of crop and flip (docs/augmentation.md); the\n"
    "augmentation alone is then timed on one thread too. --model MODEL also\n"
    "times a few training steps of MODEL (batch --batch, all cores), so the\n"
    "three rates stand side by side.\n";

static int parse_int(const char *cmd, const char *key, const char *v, int32_t lo, int32_t *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end || x < lo || x > 1 << 24) return cli_usage_error(cmd, "%s: '%s' is not an integer >= %d", key, v, lo);
    *out = (int32_t)x;
    return 0;
}

static void print_profile(const rg_bench_config *cfg, const rg_bench_result *r)
{
    double peak = rg_bench_peak_gflops(cfg->threads);
    /* rows that time one thread's share of the images compare with that
     * share of the peak; the whole step counts every image */
    double share = r->profile_images > 0 && r->profile_images < cfg->batch ? (double)r->profile_images / cfg->batch : 1.0;
    double step_s = r->step_ms / 1e3, total = 0.0;
    for (int32_t k = 0; k < r->n_kinds; k++) total += r->kinds[k].fwd_s + r->kinds[k].bwd_s;
    total += r->other_s;
    printf("\nprofile (per step; peak FMA throughput measured now: %.0f GFLOP/s on %d thread%s)\n", peak,
           cfg->threads, cfg->threads == 1 ? "" : "s");
    if (share < 1.0)
        printf("(the rows time the first thread, which ran %d of the %d images: its share of the peak)\n",
               r->profile_images, cfg->batch);
    printf("%-18s %6s %9s %9s %7s %9s %8s %8s\n", "layer type", "layers", "fwd ms", "bwd ms", "share", "GFLOP/s",
           "of peak", "GB/s");
    printf("%-18s %6s %9s %9s %7s %9s %8s %8s\n", "------------------", "------", "------", "------", "-----",
           "-------", "-------", "----");
    for (int32_t k = 0; k < r->n_kinds; k++) {
        const rg_bench_layer_kind *row = &r->kinds[k];
        double t = row->fwd_s + row->bwd_s;
        printf("%-18s %6d %9.2f %9.2f %6.1f%%", row->kind, row->layers, row->fwd_s * 1e3, row->bwd_s * 1e3,
               100.0 * t / total);
        if (row->flops > 0 && t > 0)
            printf(" %9.1f %7.1f%%", row->flops / t / 1e9, 100.0 * row->flops / t / 1e9 / (peak * share));
        else
            printf(" %9s %8s", "-", "-");
        printf(" %8.1f\n", t > 0 ? row->bytes / t / 1e9 : 0.0);
    }
    printf("%-18s %6s %9s %9s %6.1f%%\n", cfg->train ? "loss, optimizer" : "other", "", "", "",
           100.0 * r->other_s / total);
    double flops = 0.0;
    for (int32_t k = 0; k < r->n_kinds; k++) flops += r->kinds[k].flops / share;
    printf("whole step: %.1f GFLOP/s, %.1f%% of peak (profiled step %.2f ms, median step %.2f ms)\n",
           flops / step_s / 1e9, 100.0 * flops / step_s / 1e9 / peak, total * 1e3, r->step_ms);
    if (!r->n_layers) return;
    printf("\n%-4s %-22s %-14s %-12s %-12s %8s %8s %6s %8s %8s\n", "#", "layer", "type", "in", "out", "fwd ms",
           "bwd ms", "share", "GFLOP/s", "of peak");
    for (int32_t i = 0; i < r->n_layers; i++) {
        const rg_bench_layer *l = &r->layers[i];
        char in[24], out[24];
        snprintf(in, sizeof in, "%dx%dx%d", l->in_h, l->in_w, l->in_c);
        snprintf(out, sizeof out, "%dx%dx%d", l->out_h, l->out_w, l->out_c);
        double t = l->fwd_s + l->bwd_s;
        printf("%-4d %-22s %-14s %-12s %-12s %8.3f %8.3f %5.1f%%", i, l->name, l->kind, in, out, l->fwd_s * 1e3,
               l->bwd_s * 1e3, 100.0 * t / total);
        if (l->flops > 0 && t > 0)
            printf(" %8.1f %7.1f%%\n", l->flops / t / 1e9, 100.0 * l->flops / t / 1e9 / (peak * share));
        else
            printf(" %8s %8s\n", "-", "-");
    }
}

static int bench_loader(int argc, char **argv)
{
    const char *data = "fashion-mnist", *spec = NULL, *model = NULL;
    int32_t batch = 128, workers = 2, seconds = 3;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) return cli_usage_error("bench", "%s needs a value", argv[i]);
        const char *a = argv[i], *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--batch")) rc = parse_int("bench", a, v, 1, &batch);
        else if (!strcmp(a, "--workers")) rc = parse_int("bench", a, v, 0, &workers);
        else if (!strcmp(a, "--seconds")) rc = parse_int("bench", a, v, 1, &seconds);
        else if (!strcmp(a, "--augment")) spec = v;
        else if (!strcmp(a, "--model")) model = v;
        else return cli_usage_error("bench", "unknown option '%s'", a);
        if (rc) return rc;
    }
    rg_error err = {0};
    rg_augment_config aug = {.crop_pad = 2, .hflip = 1};
    if (spec && rg_augment_parse(spec, &aug, &err)) return cli_usage_error("bench", "--augment: %s", err.msg);
    char text[512];
    rg_augment_format(&aug, text, sizeof text);
    double rate;
    if (rg_bench_loader(data, batch, workers, seconds, &aug, &rate, &err)) return cli_fail(&err);
    printf("loader %s, batch %d, %d worker%s, %s: %.0f images/s\n", data, batch, workers, workers == 1 ? "" : "s",
           spec ? text : "crop 2 + flip", rate);
    if (spec) {
        if (rg_bench_augment(data, &aug, seconds, &rate, &err)) return cli_fail(&err);
        printf("augmentation alone, 1 thread, %s: %.0f images/s\n", text, rate);
    }
    if (model) {
        rg_bench_config cfg = {.model = model, .train = 1, .batch = batch, .steps = 5, .warmup = 1, .seed = 1,
                               .threads = (int32_t)sysconf(_SC_NPROCESSORS_ONLN)};
        rg_bench_result r;
        if (rg_bench_run(&cfg, &r, &err)) return cli_fail(&err);
        printf("training %s, batch %d, %d threads: %.0f images/s (median of %d steps)\n", model, batch, cfg.threads,
               r.images_per_s, r.steps);
        rg_bench_result_free(&r);
    }
    return EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "loader")) return bench_loader(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "int8")) return cmd_bench_int8(argc, argv);
    rg_bench_config cfg = {.seed = 1, .batch = -1, .steps = -1, .warmup = -1};
    int json = 0, positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_text, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--profile")) cfg.profile = cfg.profile > 1 ? cfg.profile : 1;
        else if (!strcmp(a, "--layers")) cfg.profile = 2;
        else if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) return cli_usage_error("bench", "%s needs a value", a);
            const char *v = argv[++i];
            int rc = 0;
            if (!strcmp(a, "--batch")) rc = parse_int("bench", a, v, 1, &cfg.batch);
            else if (!strcmp(a, "--threads")) rc = parse_int("bench", a, v, 0, &cfg.threads);
            else if (!strcmp(a, "--steps")) rc = parse_int("bench", a, v, 1, &cfg.steps);
            else if (!strcmp(a, "--warmup")) rc = parse_int("bench", a, v, 0, &cfg.warmup);
            else if (!strcmp(a, "--window")) rc = parse_int("bench", a, v, 1, &cfg.window);
            else if (!strcmp(a, "--micro-batch")) rc = parse_int("bench", a, v, 1, &cfg.micro_batch);
            else if (!strcmp(a, "--isa")) {
                int isa = rg_isa_parse(v);
                if (isa < 0) return cli_usage_error("bench", "--isa: '%s' is not ref, avx2, avx512 or avx512vnni", v);
                rg_cpu_set_isa((rg_isa)isa);
            } else
                return cli_usage_error("bench", "unknown option '%s'", a);
            if (rc) return rc;
        } else if (positional == 0) {
            if (strcmp(a, "train") && strcmp(a, "infer"))
                return cli_usage_error("bench", "first argument must be 'train', 'infer', 'loader' or 'int8', not '%s'", a);
            cfg.train = !strcmp(a, "train");
            positional++;
        } else if (positional == 1) {
            cfg.model = a;
            positional++;
        } else
            return cli_usage_error("bench", "unexpected argument '%s'", a);
    }
    if (positional < 2) return cli_usage_error("bench", "needs train|infer and a MODEL");
    if (cfg.batch < 0) cfg.batch = cfg.train ? 128 : 1;
    if (cfg.steps < 0) cfg.steps = cfg.train ? 20 : 200;
    if (cfg.warmup < 0) cfg.warmup = cfg.train ? 3 : 20;
    if (cfg.threads == 0) cfg.threads = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);

    rg_bench_result r;
    rg_error err = {0};
    if (rg_bench_run(&cfg, &r, &err)) return cli_fail(&err);
    const char *work = cfg.train ? "train" : "infer";
    if (json) {
        printf("{\"tool\": \"regain\", \"work\": \"%s\", \"model\": \"%s\", \"batch\": %d, \"threads\": %d, "
               "\"images_per_s\": %.2f, \"latency_ms\": %.4f, \"windows\": %d, \"peak_rss_mib\": %.1f, "
               "\"isa\": \"%s\", \"blas_core\": \"%s\"}\n",
               work, cfg.model, cfg.batch, cfg.threads, r.images_per_s, r.step_ms, r.steps,
               (double)r.peak_rss_bytes / (1 << 20), rg_isa_name(rg_cpu_isa()), rg_blas_core());
    } else {
        printf("%s %s, batch %d, %d thread%s, kernels %s, OpenBLAS %s, %s\n", work, cfg.model, cfg.batch,
               cfg.threads, cfg.threads == 1 ? "" : "s", rg_isa_name(rg_cpu_isa()), rg_blas_core(),
               rg_cpu_description());
        printf("  images/s   %.1f (median of %d %s; min %.1f, max %.1f)\n", r.images_per_s, r.steps,
               cfg.window > 1 ? "windows" : "steps",
               r.images_per_s_min, r.images_per_s_max);
        printf("  step       %.3f ms\n", r.step_ms);
        printf("  arena      %.1f MiB planned\n", (double)r.arena_bytes / (1 << 20));
        if (!cfg.train) printf("  micro-batch %d images per thread at a time\n", r.micro_batch);
        printf("  peak RSS   %.1f MiB\n", (double)r.peak_rss_bytes / (1 << 20));
        if (cfg.profile) print_profile(&cfg, &r);
    }
    rg_bench_result_free(&r);
    return EXIT_OK;
}
