/* regain — batch loader: shuffling, augmentation, normalization, prefetch.
 *
 * A loader turns a dataset into float batches for training. Worker threads
 * produce the next batches while the caller runs its training step; the
 * batches come back strictly in order, and their contents are bit-identical
 * whatever the number of workers: the epoch's order is a permutation keyed
 * by (seed, epoch, 0x5348), the augmentation of sample i in epoch e draws
 * from rg_rng_keyed(seed, e, i), and the mixup / CutMix of batch b from
 * rg_rng_keyed(seed, e, RG_MIX_KEY + b) (mix.h), so no random number depends
 * on scheduling.
 *
 *     rg_loader_config cfg = {.batch = 64, .shuffle = 1, .mean = 0.2860f,
 *                             .std = 0.3530f, .augment = 1,
 *                             .aug = {.crop_pad = 2, .hflip = 1},
 *                             .seed = 7, .workers = 2};
 *     rg_loader *ld = NULL;
 *     if (rg_loader_create(&train, &cfg, &ld, &err) != RG_OK) ...
 *     for (int32_t e = 0; e < epochs; e++) {
 *         rg_loader_start_epoch(ld, e);
 *         const float *x; const int32_t *y; int32_t count;
 *         while (rg_loader_next(ld, &x, &y, NULL, &count))
 *             step(x, y, count);          // x: count x h x w x c, NHWC
 *     }
 *     rg_loader_free(ld);
 *
 * A loader has one consumer: rg_loader_start_epoch, rg_loader_next and
 * rg_loader_free are called from one thread (or serialized by the caller).
 */
#ifndef REGAIN_LOADER_H
#define REGAIN_LOADER_H

#include <stdint.h>

#include "regain/augment.h"
#include "regain/data.h"
#include "regain/mix.h"
#include "regain/status.h"

typedef struct {
    int32_t batch;
    int shuffle;            /* permutation of the dataset per epoch keyed by (seed, epoch, 0x5348) */
    int drop_last;
    float mean, std;        /* output = (pixel/255 - mean) / std; per-channel arrays not needed yet (single value used for all channels) */
    rg_augment_config aug;  /* applied only when augment != 0 */
    int augment;
    uint64_t seed;
    int32_t workers;        /* 0 = produce batches synchronously on the caller's thread */
    int32_t prefetch;       /* batches in flight, default 2 when 0 */
    rg_mix_config mix;      /* batch mixup / CutMix (off when zeroed): soft targets from rg_loader_next_soft */
} rg_loader_config;

/* Largest accepted workers and prefetch. */
#define RG_LOADER_MAX_WORKERS 256
#define RG_LOADER_MAX_PREFETCH 256

typedef struct rg_loader rg_loader;

/* Creates a loader over *ds. The loader borrows ds: it must stay alive and
 * unchanged until rg_loader_free. cfg is copied.
 *
 * Checks: ds well formed with n > 0; batch > 0; mean finite; std finite and
 * > 0; 0 <= workers <= RG_LOADER_MAX_WORKERS; 0 <= prefetch <=
 * RG_LOADER_MAX_PREFETCH; aug valid when augment; mix valid (mixing needs
 * ds->n_classes >= 1 and every label below it); at least one batch per
 * epoch (drop_last with n < batch is an error). Workers are started here and
 * wait for rg_loader_start_epoch. At most `prefetch` batches are produced at
 * once beyond the one the caller holds, so workers beyond prefetch idle.
 *
 * On success *out is a new loader, released with rg_loader_free. On failure
 * *out is NULL and err says why (RG_ERR_ARG, RG_ERR_NOMEM, or RG_ERR_IO when
 * a thread cannot be started). */
rg_status rg_loader_create(const rg_dataset *ds, const rg_loader_config *cfg, rg_loader **out,
                           rg_error *err);

/* Starts epoch `epoch` (0-based, >= 0): batches are produced in order
 * 0..nb-1. May be called at any time, also in the middle of an epoch:
 * batches of the previous epoch still being produced are finished and
 * discarded first (the call waits for at most one batch per worker), and
 * pointers from earlier rg_loader_next calls become invalid. Starting the
 * same epoch again yields the same batches. */
void rg_loader_start_epoch(rg_loader *ld, int32_t epoch);

/* Starts epoch `epoch` over the m samples indices[0..m) (dataset indices in
 * [0, n), copied; repeats allowed, 0 <= m <= n) instead of the whole dataset,
 * with rg_loader_start_epoch's semantics otherwise. The order is the keyed
 * permutation of (seed, epoch, 0x5348) over positions 0..m-1 of the list, so
 * batches are bit-identical whatever the number of workers, and the subset
 * 0..n-1 in ascending order gives exactly the batches of
 * rg_loader_start_epoch. The epoch has ceil(m / batch) batches (m / batch
 * with drop_last): rg_loader_batches reports it. indices NULL = the whole
 * dataset. An index outside [0, n) or m outside [0, n] is RG_ERR_ARG, and
 * the loader is then unchanged. */
rg_status rg_loader_start_epoch_subset(rg_loader *ld, int32_t epoch, const int32_t *indices, int32_t m,
                                       rg_error *err);

/* Right after starting an epoch: its first `batches` batches are not
 * produced, and rg_loader_next goes on with batch `batches`. Each batch is
 * a function of (seed, epoch, its index) alone, so the rest of the epoch
 * is what it would have been (a run resumed in the middle of an epoch). */
void rg_loader_skip(rg_loader *ld, int32_t batches);

/* Next batch of the epoch: *x points to count*h*w*c floats NHWC, *y to count
 * int32 labels, *indices (may be NULL) to the dataset indices of the samples.
 * Pointers stay valid until the next call (of rg_loader_next,
 * rg_loader_start_epoch or rg_loader_free) and are owned by the loader.
 * count is `batch`, except for a shorter last batch when drop_last is 0.
 * Returns 0 when the epoch has no more batches (or none was started), 1
 * otherwise. Blocks until the batch is ready. */
int rg_loader_next(rg_loader *ld, const float **x, const int32_t **y, const int32_t **indices,
                   int32_t *count);

/* rg_loader_next, plus *targets (may be NULL): with mixing on (cfg.mix),
 * count x rg_loader_classes(ld) soft-target floats whose rows sum to 1
 * (the labels in *y are then each sample's own label, the one with weight
 * lambda); with mixing off, *targets is set to NULL. Same lifetime as *x. */
int rg_loader_next_soft(rg_loader *ld, const float **x, const int32_t **y, const float **targets,
                        const int32_t **indices, int32_t *count);

/* Width of a soft-target row: the dataset's n_classes. */
int32_t rg_loader_classes(const rg_loader *ld);

/* Batches in the current epoch (before the first one: of the whole dataset):
 * count / batch with drop_last, ceil(count / batch) otherwise, count being n
 * or the size of the epoch's subset. */
int32_t rg_loader_batches(const rg_loader *ld);

/* Stops the workers (a batch being produced is finished first), joins them
 * and releases everything. Safe on NULL and in the middle of an epoch. */
void rg_loader_free(rg_loader *ld);

#endif
