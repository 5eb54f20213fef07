/* regain bench: timed training and inference steps (regain/bench.h). */
#include "regain/bench.h"
#include "regain/cpu.h"
#include "regain/infer.h"
#include "regain/loader.h"
#include "regain/rng.h"
#include "regain/stats.h"
#include "regain/train.h"
#include "regain/trainer.h"
#include "kernels/peak.h"
#include "ops/op.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

size_t rg_peak_rss_bytes(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return 0;
    return (size_t)u.ru_maxrss * 1024; /* Linux reports KiB */
}

double rg_bench_peak_gflops(int32_t threads)
{
    double (*fma)(long) = rg_peak_fma_ref;
    switch (rg_cpu_isa()) {
    case RG_ISA_AVX512_VNNI:
    case RG_ISA_AVX512: fma = rg_peak_fma_avx512; break;
    case RG_ISA_AVX2: fma = rg_peak_fma_avx2; break;
    case RG_ISA_REF: break;
    }
    int n = threads > 0 ? threads : omp_get_num_procs();
    double best = 0.0;
    /* best of a few tries: the figure is the machine's limit, not its mood */
    for (int attempt = 0; attempt < 3; attempt++) {
        double flops = 0.0, t0 = now_s();
#pragma omp parallel num_threads(n) reduction(+ : flops)
        flops += fma(4000000);
        double rate = flops / (now_s() - t0) / 1e9;
        if (rate > best) best = rate;
    }
    return best;
}

/* The kind of layer a node is, for the profile's rows. */
static void layer_kind(const rg_graph *g, const rg_node *n, char *buf, size_t size)
{
    if (n->op == RG_OP_CONV) {
        const rg_conv_attr *a = &n->a.conv;
        int32_t cin = g->values[n->in[0]].shape.c;
        const char *what = a->groups == cin && a->cout == cin && cin > 1 ? "depthwise" : a->groups > 1 ? "grouped conv" : "conv";
        snprintf(buf, size, "%s %dx%d", what, a->kh, a->kw);
    } else {
        snprintf(buf, size, "%s", rg_op_name(n->op));
    }
}

/* Bytes an elementwise-style node moves per step: its inputs and output once
 * forward; backward reads them and the output gradient and writes the input
 * gradients. An estimate, for the memory-bound layers' share of bandwidth. */
static void node_traffic(const rg_graph *g, const rg_node *n, int32_t batch, int train, double *flops, double *bytes)
{
    const rg_op_def *d = rg_op_def_get(n->op);
    double macs = d->macs ? (double)d->macs(g, n) * batch : 0.0;
    double in = 0.0, out = (double)g->values[n->out].shape.h * g->values[n->out].shape.w * g->values[n->out].shape.c;
    for (int i = 0; i < n->n_in; i++) {
        rg_shape s = g->values[n->in[i]].shape;
        in += (double)s.h * s.w * s.c;
    }
    in *= batch * sizeof(float);
    out *= batch * sizeof(float);
    /* forward 2 flops a MAC; backward the same again for the input gradient
     * and for the weight gradient */
    *flops = 2.0 * macs * (train ? 3.0 : 1.0);
    *bytes = (in + out) * (train ? 3.0 : 1.0);
}

rg_status rg_bench_run(const rg_bench_config *cfg, rg_bench_result *res, rg_error *err)
{
    memset(res, 0, sizeof *res);
    if (cfg->batch < 1 || cfg->steps < 1 || cfg->warmup < 0)
        return rg_fail(err, RG_ERR_ARG, "bench: batch and steps must be at least 1 (batch %d, steps %d)", cfg->batch,
                       cfg->steps);
    rg_set_threads(cfg->threads);
    rg_graph *g = NULL;
    rg_status st = rg_model_build(cfg->model, 28, 28, 1, 10, &g, err);
    if (st) return st;
    rg_graph_init_params(g, cfg->seed);
    rg_optim opt = {0};
    rg_optim_config oc = {.kind = RG_OPTIM_SGD, .momentum = 0.9f, .nesterov = 1, .weight_decay = 5e-4f};
    rg_infer *session = NULL;
    double *times = NULL, *profile = NULL;
    int32_t *labels = NULL;
    float *images = NULL, *logits = NULL;
    size_t per_image = 28 * 28;
    /* training: one graph, all threads on every layer; inference: a session
     * (regain/infer.h), each thread on its own micro-batches */
    if (cfg->train) st = rg_graph_plan(g, cfg->batch, RG_PLAN_TRAIN, err);
    else st = rg_infer_create(g, cfg->threads, cfg->micro_batch, &session, err);
    if (st) goto done;
    if (cfg->train && (st = rg_optim_init(&opt, &oc, g, err))) goto done;
    rg_graph_stats gs;
    if ((st = rg_graph_stats_compute(g, &gs, err))) goto done;
    res->macs_per_image = (double)gs.macs;
    /* an inference session gives every thread an arena of the plan's size */
    size_t arenas = cfg->train ? 1 : (size_t)(cfg->threads > 0 ? cfg->threads : omp_get_max_threads());
    res->arena_bytes = g->arena_floats * sizeof(float) * arenas;
    res->micro_batch = session ? rg_infer_micro_batch(session) : cfg->batch;

    times = rg_calloc((size_t)cfg->steps, sizeof *times, err);
    labels = rg_calloc((size_t)cfg->batch, sizeof *labels, err);
    images = rg_calloc((size_t)cfg->batch * per_image, sizeof *images, err);
    logits = rg_calloc((size_t)cfg->batch * 10, sizeof *logits, err);
    profile = cfg->profile ? rg_calloc((size_t)g->n_nodes * 2, sizeof *profile, err) : NULL;
    if (!times || !labels || !images || !logits || (cfg->profile && !profile)) {
        st = rg_fail(err, RG_ERR_NOMEM, "bench: out of memory");
        goto done;
    }
    /* random images around the normalized data's range, random labels */
    rg_rng rng = rg_rng_keyed(cfg->seed, 7, 0);
    for (size_t i = 0, n = (size_t)cfg->batch * per_image; i < n; i++) images[i] = rg_rng_uniform(&rng) * 2.0f - 1.0f;
    for (int32_t i = 0; i < cfg->batch; i++) labels[i] = (int32_t)rg_rng_below(&rng, 10);
    if (cfg->train) memcpy(rg_graph_input(g), images, (size_t)cfg->batch * per_image * sizeof(float));

    rg_exec ctx = {.training = 1, .seed = cfg->seed, .no_input_grad = 1};
    int32_t window = cfg->window > 1 ? cfg->window : 1;
    double loop_s = 0.0;
    uint64_t step = 0;
    for (int32_t s = -cfg->warmup; s < cfg->steps; s++) {
        if (s == 0) g->profile_s = profile;
        double t0 = now_s();
        /* warm-up is counted in steps, the timed part in windows of steps */
        for (int32_t k = 0; k < (s < 0 ? 1 : window); k++, step++) {
            if (cfg->train) {
                ctx.step = step;
                rg_graph_forward(g, &ctx);
                rg_xent_forward_backward(rg_graph_output(g), labels, cfg->batch, 10, 0.0f, rg_graph_output_grad(g),
                                         NULL);
                rg_graph_backward(g, &ctx);
                rg_optim_step(&opt, g, 0.01f);
            } else {
                rg_infer_run(session, images, cfg->batch, logits);
            }
        }
        double dt = (now_s() - t0) / (s < 0 ? 1 : window);
        if (s >= 0) {
            times[s] = dt;
            loop_s += dt;
        }
    }
    g->profile_s = NULL;
    res->steps = cfg->steps;
    double median = rg_stats_median(times, (size_t)cfg->steps);   /* sorts times */
    res->step_ms = median * 1e3;
    res->images_per_s = cfg->batch / median;
    res->images_per_s_min = cfg->batch / times[cfg->steps - 1];
    res->images_per_s_max = cfg->batch / times[0];

    if (profile) {
        res->kinds = rg_calloc((size_t)g->n_nodes, sizeof *res->kinds, err);
        res->layers = cfg->profile > 1 ? rg_calloc((size_t)g->n_nodes, sizeof *res->layers, err) : NULL;
        if (!res->kinds || (cfg->profile > 1 && !res->layers)) {
            st = rg_fail(err, RG_ERR_NOMEM, "bench: out of memory");
            goto done;
        }
        double nodes_s = 0.0, per_step = 1.0 / ((double)cfg->steps * window);
        /* inference profiles time the first thread, which ran about
         * batch / threads of the images */
        int32_t threads = cfg->threads > 0 ? cfg->threads : 1;
        res->profile_images = cfg->train || cfg->batch <= res->micro_batch ? cfg->batch
                                                                            : (cfg->batch + threads - 1) / threads;
        for (int32_t i = 0; i < g->n_nodes; i++) {
            const rg_node *n = &g->nodes[i];
            if (n->op == RG_OP_INPUT) continue;
            char kind[32];
            layer_kind(g, n, kind, sizeof kind);
            int32_t k = 0;
            while (k < res->n_kinds && strcmp(res->kinds[k].kind, kind)) k++;
            rg_bench_layer_kind *row = &res->kinds[k];
            if (k == res->n_kinds) {
                res->n_kinds++;
                snprintf(row->kind, sizeof row->kind, "%s", kind);
            }
            double flops, bytes, fwd_s = profile[2 * i] * per_step, bwd_s = profile[2 * i + 1] * per_step;
            node_traffic(g, n, res->profile_images, cfg->train, &flops, &bytes);
            row->fwd_s += fwd_s;
            row->bwd_s += bwd_s;
            row->flops += flops;
            row->bytes += bytes;
            row->layers++;
            nodes_s += profile[2 * i] + profile[2 * i + 1];
            if (res->layers && !n->fuse_prev) {
                rg_bench_layer *l = &res->layers[res->n_layers++];
                rg_shape xs = g->values[n->in[0]].shape, ys = g->values[n->out].shape;
                *l = (rg_bench_layer){.in_h = xs.h, .in_w = xs.w, .in_c = xs.c, .out_h = ys.h, .out_w = ys.w,
                                      .out_c = ys.c, .fwd_s = fwd_s, .bwd_s = bwd_s, .flops = flops};
                snprintf(l->name, sizeof l->name, "%.47s", n->name);
                snprintf(l->kind, sizeof l->kind, "%s", kind);
            }
        }
        /* loop_s sums the windows' per-step times; nodes_s every step's */
        res->other_s = loop_s / cfg->steps - nodes_s * per_step;
    }
    res->peak_rss_bytes = rg_peak_rss_bytes();
done:
    free(times);
    free(labels);
    free(profile);
    free(images);
    free(logits);
    rg_infer_free(session);
    rg_optim_free(&opt);
    rg_graph_free(g);
    return st;
}

void rg_bench_result_free(rg_bench_result *res)
{
    free(res->kinds);
    free(res->layers);
    res->kinds = NULL;
    res->layers = NULL;
    res->n_kinds = res->n_layers = 0;
}

rg_status rg_bench_loader(const char *data, int32_t batch, int32_t workers, double seconds,
                          const rg_augment_config *aug, double *images_per_s, rg_error *err)
{
    *images_per_s = 0.0;
    rg_dataset ds;
    rg_status st = rg_dataset_load(data, "train", &ds, err);
    if (st) return st;
    rg_loader_config lc = {.batch = batch, .shuffle = 1, .drop_last = 1, .mean = 0.286f, .std = 0.353f,
                           .aug = {.crop_pad = 2, .hflip = 1}, .augment = 1, .seed = 1, .workers = workers};
    if (aug) lc.aug = *aug;
    lc.augment = rg_augment_active(&lc.aug);
    rg_loader *ld = NULL;
    if ((st = rg_loader_create(&ds, &lc, &ld, err))) {
        rg_dataset_free(&ds);
        return st;
    }
    double t0 = now_s(), t = t0;
    int64_t images = 0;
    for (int32_t epoch = 0; t - t0 < seconds; epoch++) {
        rg_loader_start_epoch(ld, epoch);
        const float *x;
        const int32_t *y;
        int32_t count;
        while ((t = now_s()) - t0 < seconds && rg_loader_next(ld, &x, &y, NULL, &count)) images += count;
    }
    *images_per_s = (double)images / (t - t0);
    rg_loader_free(ld);
    rg_dataset_free(&ds);
    return RG_OK;
}

rg_status rg_bench_augment(const char *data, const rg_augment_config *aug, double seconds, double *images_per_s,
                           rg_error *err)
{
    *images_per_s = 0.0;
    rg_status st = rg_augment_validate(aug, err);
    if (st) return st;
    rg_dataset ds;
    if ((st = rg_dataset_load(data, "train", &ds, err))) return st;
    const size_t sb = rg_dataset_sample_bytes(&ds);
    uint8_t *img = rg_malloc(sb, err), *scratch = rg_malloc(sb, err);
    if (!img || !scratch) {
        free(img);
        free(scratch);
        rg_dataset_free(&ds);
        return RG_ERR_NOMEM;
    }
    double t0 = now_s(), t = t0;
    int64_t images = 0;
    /* the clock is read every 64 images: it costs about as much as a flip */
    while (t - t0 < seconds) {
        for (int k = 0; k < 64; k++, images++) {
            const int32_t i = (int32_t)(images % ds.n);
            memcpy(img, ds.pixels + (size_t)i * sb, sb);
            rg_rng r = rg_rng_keyed(1, (uint64_t)(images / ds.n), (uint64_t)i);
            rg_augment_image(aug, img, scratch, ds.h, ds.w, ds.c, &r);
        }
        t = now_s();
    }
    *images_per_s = (double)images / (t - t0);
    free(img);
    free(scratch);
    rg_dataset_free(&ds);
    return RG_OK;
}
