/* Batch loader: per-epoch order, augmentation, normalization, and worker
 * threads that prefetch batches into a ring of slots.
 *
 * Slots. Batch b of an epoch is always produced into slot b % nslots, with
 * nslots = prefetch + 1: one slot for the batch the caller holds, `prefetch`
 * for batches in flight. A worker may claim batch b only when
 * b < released + nslots, where `released` is the index of the batch the
 * caller is asking for (everything before it has been handed back), so a
 * slot is never written while the caller may still read it. Each slot
 * records which batch it holds (`ready`), so batches are returned in order
 * however the workers finish.
 *
 * Epoch changes. rg_loader_start_epoch stops new claims, waits until no
 * worker is producing (`active` == 0), and only then replaces the order and
 * clears the slots, so a worker never reads an order or writes a slot that
 * is being reset. All shared fields are guarded by `mu`; the slot buffers
 * are written by one worker outside the lock and published by setting
 * `ready` under it.
 */
#include "regain/loader.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Key of the per-epoch shuffle ("SH"). */
#define SHUFFLE_KEY 0x5348u

typedef struct {
    float *x;          /* batch * sample floats, NHWC */
    int32_t *y;        /* batch labels */
    int32_t *idx;      /* batch dataset indices */
    uint8_t *img;      /* one image being augmented */
    uint8_t *scratch;  /* scratch for rg_augment_image */
    float *targets;    /* batch x classes soft targets (mixing only) */
    float *mix_scratch;/* one sample of floats (mixing only) */
    int32_t count;     /* samples in the batch */
    int32_t ready;     /* batch index held, -1 when none */
} loader_slot;

struct rg_loader {
    const rg_dataset *ds; /* borrowed */
    rg_loader_config cfg;
    size_t sample;        /* bytes (= floats) per image */
    int32_t nb;           /* batches in the current epoch */
    float lut[256];       /* pixel byte -> normalized value */
    uint32_t *perm;       /* epoch order, count entries; NULL without shuffle */
    int32_t *subset;      /* the epoch's samples (n capacity) when use_subset */
    int use_subset;
    int32_t count;        /* samples in the current epoch: n, or the subset's size */
    int mixing;           /* cfg.mix active */
    int32_t epoch;
    int32_t nslots;
    loader_slot *slots;

    /* Synchronous mode (no workers). */
    int32_t sync_next;
    int sync_started;

    /* Threaded mode; everything below is guarded by mu. */
    int32_t nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* workers: a batch may be claimable, or stop */
    pthread_cond_t ready_cv; /* consumer: a slot was filled */
    pthread_cond_t idle_cv;  /* start_epoch: the last active worker finished */
    int running;             /* claims allowed for the current epoch */
    int stop;
    int32_t next_claim;      /* next batch a worker will produce */
    int32_t next_consume;    /* next batch rg_loader_next returns */
    int32_t released;        /* batches before this one are handed back */
    int32_t active;          /* workers producing a batch right now */
};

/* ---- Producing one batch ----------------------------------------------- */

/* Fills slot s with batch b of the current epoch. Reads only fields that
 * stay fixed while any worker is active. */
static void produce(const rg_loader *ld, int32_t b, loader_slot *s)
{
    const rg_dataset *ds = ld->ds;
    const int64_t start = (int64_t)b * ld->cfg.batch;
    const int64_t left = ld->count - start;
    const int32_t count = (int32_t)(left < ld->cfg.batch ? left : ld->cfg.batch);
    const size_t sb = ld->sample;
    for (int32_t j = 0; j < count; j++) {
        const int64_t pos = start + j;
        const int64_t at = ld->perm ? (int64_t)ld->perm[pos] : pos;
        const int32_t i = ld->use_subset ? ld->subset[at] : (int32_t)at;
        const uint8_t *pix = ds->pixels + (size_t)i * sb;
        if (ld->cfg.augment) {
            memcpy(s->img, pix, sb);
            rg_rng r = rg_rng_keyed(ld->cfg.seed, (uint64_t)ld->epoch, (uint64_t)i);
            rg_augment_image(&ld->cfg.aug, s->img, s->scratch, ds->h, ds->w, ds->c, &r);
            pix = s->img;
        }
        float *dst = s->x + (size_t)j * sb;
        for (size_t k = 0; k < sb; k++) dst[k] = ld->lut[pix[k]];
        s->y[j] = ds->labels[i];
        s->idx[j] = i;
    }
    s->count = count;
    if (ld->mixing) {
        rg_mix_params mp;
        rg_mix_draw(&ld->cfg.mix, ld->cfg.seed, ld->epoch, b, ds->h, ds->w, &mp);
        /* labels were checked against n_classes at creation: cannot fail */
        (void)rg_mix_apply(&mp, s->x, s->mix_scratch, count, ds->h, ds->w, ds->c, s->y, ds->n_classes, s->targets,
                           NULL);
    }
}

static int32_t batches_of(const rg_loader *ld, int32_t count)
{
    return ld->cfg.drop_last ? count / ld->cfg.batch
                             : (int32_t)(((int64_t)count + ld->cfg.batch - 1) / ld->cfg.batch);
}

/* Sets the samples and order of epoch e (only with no worker active). The
 * order is a keyed permutation of positions in the sample list, so an epoch
 * over the subset 0..n-1 is the same as one over the whole dataset. */
static void set_epoch(rg_loader *ld, int32_t epoch, const int32_t *indices, int32_t m)
{
    ld->epoch = epoch;
    ld->use_subset = indices != NULL;
    ld->count = indices ? m : ld->ds->n;
    if (indices && m > 0) memcpy(ld->subset, indices, (size_t)m * sizeof *indices);
    ld->nb = batches_of(ld, ld->count);
    if (ld->perm) {
        rg_rng r = rg_rng_keyed(ld->cfg.seed, (uint64_t)epoch, SHUFFLE_KEY);
        rg_rng_permutation(&r, ld->perm, (uint32_t)ld->count);
    }
}

/* ---- Workers ----------------------------------------------------------- */

static int claimable(const rg_loader *ld)
{
    return ld->running && ld->next_claim < ld->nb &&
           ld->next_claim < ld->released + ld->nslots;
}

static void *worker_main(void *arg)
{
    rg_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !claimable(ld)) pthread_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop) break;
        const int32_t b = ld->next_claim++;
        loader_slot *s = &ld->slots[b % ld->nslots];
        ld->active++;
        pthread_mutex_unlock(&ld->mu);

        produce(ld, b, s);

        pthread_mutex_lock(&ld->mu);
        ld->active--;
        /* Publish even if the epoch was restarted meanwhile: start_epoch
         * clears every slot after the last active worker is done. */
        s->ready = b;
        pthread_cond_broadcast(&ld->ready_cv);
        if (ld->active == 0) pthread_cond_signal(&ld->idle_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* ---- Creation and release ---------------------------------------------- */

static rg_status check_config(const rg_dataset *ds, const rg_loader_config *cfg, rg_error *err)
{
    if (!ds || !cfg) return rg_fail(err, RG_ERR_ARG, "loader: dataset or configuration is NULL");
    if (ds->n <= 0 || ds->h <= 0 || ds->w <= 0 || ds->c <= 0 || !ds->pixels || !ds->labels)
        return rg_fail(err, RG_ERR_ARG, "loader: dataset %s is empty or malformed (%d x %d x %d x %d)",
                       ds->source, ds->n, ds->h, ds->w, ds->c);
    if (cfg->batch <= 0) return rg_fail(err, RG_ERR_ARG, "loader: batch %d must be > 0", cfg->batch);
    if (!isfinite(cfg->mean))
        return rg_fail(err, RG_ERR_ARG, "loader: mean %g is not finite", (double)cfg->mean);
    if (!isfinite(cfg->std) || !(cfg->std > 0.0f))
        return rg_fail(err, RG_ERR_ARG, "loader: std %g must be finite and > 0", (double)cfg->std);
    if (cfg->workers < 0 || cfg->workers > RG_LOADER_MAX_WORKERS)
        return rg_fail(err, RG_ERR_ARG, "loader: workers %d is outside [0, %d]", cfg->workers,
                       RG_LOADER_MAX_WORKERS);
    if (cfg->prefetch < 0 || cfg->prefetch > RG_LOADER_MAX_PREFETCH)
        return rg_fail(err, RG_ERR_ARG, "loader: prefetch %d is outside [0, %d]", cfg->prefetch,
                       RG_LOADER_MAX_PREFETCH);
    if (cfg->augment) {
        rg_status st = rg_augment_validate(&cfg->aug, err);
        if (st != RG_OK) return rg_error_prefix(err, "loader");
    }
    if (rg_mix_validate(&cfg->mix, err) != RG_OK) return rg_error_prefix(err, "loader");
    if (rg_mix_active(&cfg->mix)) {
        if (ds->n_classes < 1)
            return rg_fail(err, RG_ERR_ARG, "loader: mixing needs the number of classes of %s", ds->source);
        for (int32_t i = 0; i < ds->n; i++)
            if (ds->labels[i] >= ds->n_classes)
                return rg_fail(err, RG_ERR_ARG, "loader: label %d of sample %d in %s is not below n_classes %d",
                               ds->labels[i], i, ds->source, ds->n_classes);
    }
    if (cfg->drop_last && ds->n < cfg->batch)
        return rg_fail(err, RG_ERR_ARG,
                       "loader: dataset %s has %d samples, fewer than one batch of %d (drop_last)",
                       ds->source, ds->n, cfg->batch);
    size_t total;
    if (__builtin_mul_overflow(rg_dataset_sample_bytes(ds), (size_t)cfg->batch * sizeof(float),
                               &total))
        return rg_fail(err, RG_ERR_ARG, "loader: batch %d of %zu-byte images is too large",
                       cfg->batch, rg_dataset_sample_bytes(ds));
    return RG_OK;
}

static void free_slots(rg_loader *ld)
{
    if (!ld->slots) return;
    for (int32_t i = 0; i < ld->nslots; i++) {
        loader_slot *s = &ld->slots[i];
        rg_free_aligned(s->x);
        free(s->y);
        free(s->idx);
        free(s->img);
        free(s->scratch);
        rg_free_aligned(s->targets);
        free(s->mix_scratch);
    }
    free(ld->slots);
    ld->slots = NULL;
}

static rg_status alloc_slots(rg_loader *ld, rg_error *err)
{
    ld->slots = rg_calloc((size_t)ld->nslots, sizeof *ld->slots, err);
    if (!ld->slots) return RG_ERR_NOMEM;
    const size_t batch = (size_t)ld->cfg.batch;
    for (int32_t i = 0; i < ld->nslots; i++) {
        loader_slot *s = &ld->slots[i];
        s->ready = -1;
        if (!(s->x = rg_alloc_aligned(batch * ld->sample * sizeof(float), err)) ||
            !(s->y = rg_malloc(batch * sizeof(int32_t), err)) ||
            !(s->idx = rg_malloc(batch * sizeof(int32_t), err)))
            return RG_ERR_NOMEM;
        if (ld->cfg.augment && (!(s->img = rg_malloc(ld->sample, err)) ||
                                !(s->scratch = rg_malloc(ld->sample, err))))
            return RG_ERR_NOMEM;
        if (ld->mixing &&
            (!(s->targets = rg_alloc_aligned(batch * (size_t)ld->ds->n_classes * sizeof(float), err)) ||
             !(s->mix_scratch = rg_malloc(ld->sample * sizeof(float), err))))
            return RG_ERR_NOMEM;
    }
    return RG_OK;
}

/* Stops and joins the started workers; the sync primitives stay alive. */
static void stop_workers(rg_loader *ld)
{
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int32_t i = 0; i < ld->nthreads; i++) pthread_join(ld->threads[i], NULL);
    ld->nthreads = 0;
}

rg_status rg_loader_create(const rg_dataset *ds, const rg_loader_config *cfg, rg_loader **out,
                           rg_error *err)
{
    if (!out) return rg_fail(err, RG_ERR_ARG, "loader: NULL output");
    *out = NULL;
    rg_status st = check_config(ds, cfg, err);
    if (st != RG_OK) return st;

    rg_loader *ld = rg_calloc(1, sizeof *ld, err);
    if (!ld) return RG_ERR_NOMEM;
    ld->ds = ds;
    ld->cfg = *cfg;
    ld->cfg.shuffle = cfg->shuffle != 0;
    ld->cfg.drop_last = cfg->drop_last != 0;
    ld->cfg.augment = cfg->augment != 0;
    ld->mixing = rg_mix_active(&cfg->mix);
    if (ld->cfg.prefetch == 0) ld->cfg.prefetch = 2;
    ld->sample = rg_dataset_sample_bytes(ds);
    ld->count = ds->n;
    ld->nb = batches_of(ld, ds->n);
    /* The table is the definition of the normalization: one float
     * expression per byte value, the same on every path. */
    for (int v = 0; v < 256; v++) ld->lut[v] = ((float)v / 255.0f - cfg->mean) / cfg->std;
    ld->nslots = ld->cfg.workers > 0 ? ld->cfg.prefetch + 1 : 1;
    ld->epoch = -1;

    if (ld->cfg.shuffle && !(ld->perm = rg_malloc(sizeof *ld->perm * (size_t)ds->n, err))) {
        st = RG_ERR_NOMEM;
        goto fail_mem;
    }
    if (!(ld->subset = rg_malloc(sizeof *ld->subset * (size_t)ds->n, err))) {
        st = RG_ERR_NOMEM;
        goto fail_mem;
    }
    if ((st = alloc_slots(ld, err)) != RG_OK) goto fail_mem;
    if (ld->cfg.workers == 0) {
        *out = ld;
        return RG_OK;
    }

    int e;
    if ((e = pthread_mutex_init(&ld->mu, NULL)) != 0) {
        st = rg_fail(err, RG_ERR_IO, "loader: cannot create a mutex: %s", strerror(e));
        goto fail_mem;
    }
    if ((e = pthread_cond_init(&ld->work_cv, NULL)) != 0) goto fail_cv0;
    if ((e = pthread_cond_init(&ld->ready_cv, NULL)) != 0) goto fail_cv1;
    if ((e = pthread_cond_init(&ld->idle_cv, NULL)) != 0) goto fail_cv2;
    ld->threads = rg_calloc((size_t)ld->cfg.workers, sizeof *ld->threads, err);
    if (!ld->threads) {
        st = RG_ERR_NOMEM;
        goto fail_threads;
    }
    for (int32_t i = 0; i < ld->cfg.workers; i++) {
        if ((e = pthread_create(&ld->threads[i], NULL, worker_main, ld)) != 0) {
            st = rg_fail(err, RG_ERR_IO, "loader: cannot start worker %d of %d: %s", i + 1,
                         ld->cfg.workers, strerror(e));
            goto fail_threads;
        }
        ld->nthreads++;
    }
    *out = ld;
    return RG_OK;

fail_threads:
    stop_workers(ld);
    free(ld->threads);
    pthread_cond_destroy(&ld->idle_cv);
fail_cv2:
    pthread_cond_destroy(&ld->ready_cv);
fail_cv1:
    pthread_cond_destroy(&ld->work_cv);
fail_cv0:
    if (st == RG_OK) st = rg_fail(err, RG_ERR_IO, "loader: cannot create a condition variable: %s",
                                  strerror(e));
    pthread_mutex_destroy(&ld->mu);
fail_mem:
    free_slots(ld);
    free(ld->subset);
    free(ld->perm);
    free(ld);
    return st;
}

void rg_loader_free(rg_loader *ld)
{
    if (!ld) return;
    if (ld->cfg.workers > 0) {
        stop_workers(ld);
        free(ld->threads);
        pthread_cond_destroy(&ld->idle_cv);
        pthread_cond_destroy(&ld->ready_cv);
        pthread_cond_destroy(&ld->work_cv);
        pthread_mutex_destroy(&ld->mu);
    }
    free_slots(ld);
    free(ld->subset);
    free(ld->perm);
    free(ld);
}

int32_t rg_loader_batches(const rg_loader *ld) { return ld ? ld->nb : 0; }

int32_t rg_loader_classes(const rg_loader *ld) { return ld ? ld->ds->n_classes : 0; }

/* ---- Epochs and batches ------------------------------------------------ */

void rg_loader_start_epoch(rg_loader *ld, int32_t epoch) { rg_loader_start_epoch_subset(ld, epoch, NULL, 0, NULL); }

rg_status rg_loader_start_epoch_subset(rg_loader *ld, int32_t epoch, const int32_t *indices, int32_t m, rg_error *err)
{
    if (!ld) return rg_fail(err, RG_ERR_ARG, "loader: NULL loader");
    if (indices) {
        if (m < 0 || m > ld->ds->n)
            return rg_fail(err, RG_ERR_ARG, "loader: subset of %d samples is outside [0, %d]", m, ld->ds->n);
        for (int32_t j = 0; j < m; j++)
            if (indices[j] < 0 || indices[j] >= ld->ds->n)
                return rg_fail(err, RG_ERR_ARG, "loader: subset entry %d is sample %d, outside [0, %d)", j, indices[j],
                               ld->ds->n);
    }
    if (ld->cfg.workers == 0) {
        set_epoch(ld, epoch, indices, m);
        ld->sync_next = 0;
        ld->sync_started = 1;
        return RG_OK;
    }
    pthread_mutex_lock(&ld->mu);
    ld->running = 0; /* no new claims; drain the ones in progress */
    while (ld->active > 0) pthread_cond_wait(&ld->idle_cv, &ld->mu);
    set_epoch(ld, epoch, indices, m);
    for (int32_t i = 0; i < ld->nslots; i++) ld->slots[i].ready = -1;
    ld->next_claim = ld->next_consume = ld->released = 0;
    ld->running = 1;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    return RG_OK;
}

void rg_loader_skip(rg_loader *ld, int32_t batches)
{
    if (!ld || batches <= 0) return;
    if (ld->cfg.workers == 0) {
        ld->sync_next = batches < ld->nb ? batches : ld->nb;
        return;
    }
    pthread_mutex_lock(&ld->mu);
    ld->running = 0;
    while (ld->active > 0) pthread_cond_wait(&ld->idle_cv, &ld->mu);
    for (int32_t i = 0; i < ld->nslots; i++) ld->slots[i].ready = -1;
    ld->next_claim = ld->next_consume = ld->released = batches < ld->nb ? batches : ld->nb;
    ld->running = 1;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
}

static int hand_out(const loader_slot *s, const float **x, const int32_t **y, const float **targets,
                    const int32_t **indices, int32_t *count)
{
    if (x) *x = s->x;
    if (targets) *targets = s->targets;
    if (y) *y = s->y;
    if (indices) *indices = s->idx;
    if (count) *count = s->count;
    return 1;
}

int rg_loader_next(rg_loader *ld, const float **x, const int32_t **y, const int32_t **indices,
                   int32_t *count)
{
    return rg_loader_next_soft(ld, x, y, NULL, indices, count);
}

int rg_loader_next_soft(rg_loader *ld, const float **x, const int32_t **y, const float **targets,
                        const int32_t **indices, int32_t *count)
{
    if (count) *count = 0;
    if (targets) *targets = NULL;
    if (!ld) return 0;
    if (ld->cfg.workers == 0) {
        if (!ld->sync_started || ld->sync_next >= ld->nb) return 0;
        produce(ld, ld->sync_next, &ld->slots[0]);
        ld->sync_next++;
        return hand_out(&ld->slots[0], x, y, targets, indices, count);
    }
    pthread_mutex_lock(&ld->mu);
    if (!ld->running || ld->next_consume >= ld->nb) {
        ld->released = ld->nb;
        pthread_mutex_unlock(&ld->mu);
        return 0;
    }
    const int32_t b = ld->next_consume;
    ld->released = b; /* the batch handed out last time is given back */
    pthread_cond_broadcast(&ld->work_cv);
    loader_slot *s = &ld->slots[b % ld->nslots];
    while (s->ready != b) pthread_cond_wait(&ld->ready_cv, &ld->mu);
    ld->next_consume = b + 1;
    pthread_mutex_unlock(&ld->mu);
    return hand_out(s, x, y, targets, indices, count);
}
