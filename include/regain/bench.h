/* regain — speed and memory benchmarks of a model (regain bench).
 *
 * A benchmark builds the model, plans it for the batch, runs warm-up steps
 * and then times `steps` windows of `window` steps each on random inputs: a
 * training step is forward, softmax cross-entropy, backward and an SGD
 * update; an inference step is one eval-mode forward pass. Throughput and
 * latency are medians over the windows, so a noisy neighbour moves them
 * little.
 *
 * With profile set, every node's forward and backward time is recorded and
 * summed per layer type, with the arithmetic each did, so the report can say
 * which share of the machine's peak each kind of layer reaches.
 */
#ifndef REGAIN_BENCH_H
#define REGAIN_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "regain/augment.h"
#include "regain/status.h"

typedef struct {
    const char *model;      /* zoo name or spec path */
    int train;              /* 1: training step, 0: inference */
    int32_t batch, threads; /* threads 0 = all cores */
    int32_t steps, warmup;  /* timed windows, untimed steps before them */
    int32_t window;         /* steps per timed window (0 or 1: each step timed alone) */
    int profile;            /* 1: per layer type; 2: also every layer */
    int32_t micro_batch;    /* inference: images per thread at a time (0 = chosen by the session) */
    uint64_t seed;
} rg_bench_config;

/* Time and arithmetic of one kind of layer over the timed steps. */
typedef struct {
    char kind[32];          /* "conv 3x3", "conv 1x1", "depthwise 3x3", "bn", "relu6", ... */
    double fwd_s, bwd_s;    /* seconds per step */
    double flops;           /* floating-point operations per step (multiply-add = 2), fwd + bwd */
    double bytes;           /* bytes read and written per step (estimate), fwd + bwd */
    int32_t layers;
} rg_bench_layer_kind;

/* One layer of the profile (profile 2), in graph order. */
typedef struct {
    char name[48], kind[32];
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    double fwd_s, bwd_s, flops;     /* as rg_bench_layer_kind, this layer alone */
} rg_bench_layer;

typedef struct {
    double images_per_s;            /* median */
    double images_per_s_min, images_per_s_max;
    double step_ms;                 /* median time of one step */
    int32_t steps;
    size_t arena_bytes;             /* planned activations, gradients, scratch (all threads) */
    int32_t micro_batch;            /* inference: images each thread runs at a time */
    size_t peak_rss_bytes;          /* of the whole process, at the end */
    double macs_per_image;
    /* profile (when asked) */
    rg_bench_layer_kind *kinds;
    int32_t n_kinds;
    double other_s;                 /* per step: loss, optimizer, gradient zeroing, data */
    int32_t profile_images;         /* images the kinds' times and flops cover: the batch, or
                                     * the first thread's share when threads split it */
    rg_bench_layer *layers;         /* profile 2: every layer (a fused activation is part of
                                     * the layer before it) */
    int32_t n_layers;
} rg_bench_result;

rg_status rg_bench_run(const rg_bench_config *cfg, rg_bench_result *res, rg_error *err);
void rg_bench_result_free(rg_bench_result *res);

/* The loader alone (regain/loader.h): batches of `batch` training images of
 * the data set `data` (a name or an IDX directory), shuffled, augmented by
 * *aug (NULL: random crop with pad 2 and flip), normalized, produced by
 * `workers` threads, as fast as they come for `seconds`; images/s over the
 * whole time. The training step must never wait for it: compare with
 * rg_bench_run's images/s. */
rg_status rg_bench_loader(const char *data, int32_t batch, int32_t workers, double seconds,
                          const rg_augment_config *aug, double *images_per_s, rg_error *err);

/* Augmentation alone: rg_augment_image with *aug over the training images of
 * `data` in order, on the calling thread, for `seconds`; images/s. A
 * loader with W workers augments at most about W times as fast. */
rg_status rg_bench_augment(const char *data, const rg_augment_config *aug, double seconds, double *images_per_s,
                           rg_error *err);

/* Peak fused multiply-add throughput of this machine with the kernels'
 * instruction set, in GFLOP/s, measured with `threads` threads (about 0.1 s). */
double rg_bench_peak_gflops(int32_t threads);

/* Peak resident memory of this process so far, in bytes. */
size_t rg_peak_rss_bytes(void);

#endif
