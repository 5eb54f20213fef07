/* Batch loader and augmentation: coverage per epoch, normalization,
 * bit-identical batches whatever the number of workers, per-epoch orders,
 * restarting an epoch mid-way, and exact crop/flip pixels. */
#include "test_support.h"

#include "regain/augment.h"
#include "regain/loader.h"
#include "regain/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- A synthetic in-memory dataset ------------------------------------- */

static rg_dataset make_dataset(int32_t n, int32_t h, int32_t w, int32_t c)
{
    rg_dataset ds = {0};
    ds.n = n, ds.h = h, ds.w = w, ds.c = c, ds.n_classes = 10;
    size_t sb = (size_t)h * w * c;
    ds.pixels = malloc(sb * (size_t)n);
    ds.labels = malloc((size_t)n);
    assert_non_null(ds.pixels);
    assert_non_null(ds.labels);
    rg_rng r = rg_rng_keyed(1234, 0, 0);
    for (size_t k = 0; k < sb * (size_t)n; k++) ds.pixels[k] = (uint8_t)rg_rng_u64(&r);
    for (int32_t i = 0; i < n; i++) ds.labels[i] = (uint8_t)(i % 10);
    strcpy(ds.source, "synthetic");
    return ds;
}

static rg_loader *make_loader(const rg_dataset *ds, const rg_loader_config *cfg)
{
    rg_error err = {0};
    rg_loader *ld = NULL;
    rg_status st = rg_loader_create(ds, cfg, &ld, &err);
    if (st != RG_OK) fail_msg("rg_loader_create: %s", err.msg);
    return ld;
}

/* Everything one epoch produced, concatenated. */
typedef struct {
    float *x;
    int32_t *y, *idx, *counts;
    int32_t batches, samples;
} epoch_dump;

static epoch_dump dump_epoch(rg_loader *ld, const rg_dataset *ds, int32_t epoch)
{
    const size_t sb = rg_dataset_sample_bytes(ds);
    epoch_dump d = {0};
    d.x = malloc(sizeof(float) * sb * (size_t)ds->n);
    d.y = malloc(sizeof(int32_t) * (size_t)ds->n);
    d.idx = malloc(sizeof(int32_t) * (size_t)ds->n);
    d.counts = calloc((size_t)ds->n + 1, sizeof(int32_t));
    assert_true(d.x && d.y && d.idx && d.counts);
    rg_loader_start_epoch(ld, epoch);
    const float *x;
    const int32_t *y, *idx;
    int32_t count;
    while (rg_loader_next(ld, &x, &y, &idx, &count)) {
        assert_in_range(count, 1, ds->n - d.samples);
        memcpy(d.x + (size_t)d.samples * sb, x, sizeof(float) * sb * (size_t)count);
        memcpy(d.y + d.samples, y, sizeof(int32_t) * (size_t)count);
        memcpy(d.idx + d.samples, idx, sizeof(int32_t) * (size_t)count);
        d.counts[d.batches++] = count;
        d.samples += count;
    }
    assert_int_equal(d.batches, rg_loader_batches(ld));
    /* After the end, the epoch stays finished. */
    assert_int_equal(rg_loader_next(ld, &x, &y, &idx, &count), 0);
    assert_int_equal(count, 0);
    return d;
}

static void dump_free(epoch_dump *d)
{
    free(d->x);
    free(d->y);
    free(d->idx);
    free(d->counts);
}

static void assert_dumps_equal(const epoch_dump *a, const epoch_dump *b, size_t sb)
{
    assert_int_equal(a->batches, b->batches);
    assert_int_equal(a->samples, b->samples);
    assert_memory_equal(a->counts, b->counts, sizeof(int32_t) * (size_t)a->batches);
    assert_memory_equal(a->idx, b->idx, sizeof(int32_t) * (size_t)a->samples);
    assert_memory_equal(a->y, b->y, sizeof(int32_t) * (size_t)a->samples);
    /* Bit-identical floats, not merely close. */
    assert_memory_equal(a->x, b->x, sizeof(float) * sb * (size_t)a->samples);
}

static float norm(uint8_t p, float mean, float std) { return ((float)p / 255.0f - mean) / std; }

/* ---- Coverage and normalization ---------------------------------------- */

static void check_coverage(int32_t workers)
{
    rg_dataset ds = make_dataset(103, 5, 4, 3);
    const size_t sb = rg_dataset_sample_bytes(&ds);
    rg_loader_config cfg = {.batch = 10, .shuffle = 1, .mean = 0.5f, .std = 0.25f, .seed = 9,
                            .workers = workers};
    rg_loader *ld = make_loader(&ds, &cfg);
    assert_int_equal(rg_loader_batches(ld), 11);
    for (int32_t e = 0; e < 2; e++) {
        epoch_dump d = dump_epoch(ld, &ds, e);
        assert_int_equal(d.samples, 103);
        for (int32_t b = 0; b < 10; b++) assert_int_equal(d.counts[b], 10);
        assert_int_equal(d.counts[10], 3);
        int *seen = calloc(103, sizeof(int));
        for (int32_t k = 0; k < d.samples; k++) {
            const int32_t i = d.idx[k];
            assert_in_range(i, 0, 102);
            seen[i]++;
            assert_int_equal(d.y[k], ds.labels[i]);
            for (size_t q = 0; q < sb; q++) {
                const uint8_t p = ds.pixels[(size_t)i * sb + q];
                assert_float_equal(d.x[(size_t)k * sb + q], norm(p, 0.5f, 0.25f), 1e-6);
            }
        }
        for (int32_t i = 0; i < 103; i++) assert_int_equal(seen[i], 1);
        /* Shuffled: not the identity order. */
        int identity = 1;
        for (int32_t k = 0; k < d.samples; k++) identity &= d.idx[k] == k;
        assert_false(identity);
        free(seen);
        dump_free(&d);
    }
    rg_loader_free(ld);

    /* drop_last: 10 full batches, 100 distinct samples. */
    cfg.drop_last = 1;
    ld = make_loader(&ds, &cfg);
    assert_int_equal(rg_loader_batches(ld), 10);
    epoch_dump d = dump_epoch(ld, &ds, 3);
    assert_int_equal(d.samples, 100);
    int *seen = calloc(103, sizeof(int));
    for (int32_t k = 0; k < d.samples; k++) assert_int_equal(seen[d.idx[k]]++, 0);
    free(seen);
    dump_free(&d);
    rg_loader_free(ld);
    rg_dataset_free(&ds);
}

static void test_coverage_sync(void **state) { (void)state; check_coverage(0); }
static void test_coverage_workers(void **state) { (void)state; check_coverage(3); }

static void test_normalization_values(void **state)
{
    (void)state;
    rg_dataset ds = make_dataset(4, 1, 2, 1);
    const uint8_t px[8] = {0, 255, 51, 128, 1, 254, 100, 200};
    memcpy(ds.pixels, px, sizeof px);
    rg_loader_config cfg = {.batch = 4, .mean = 0.2860f, .std = 0.3530f};
    rg_loader *ld = make_loader(&ds, &cfg);
    rg_loader_start_epoch(ld, 0);
    const float *x;
    const int32_t *y;
    int32_t count;
    assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 1);
    assert_int_equal(count, 4);
    /* Unshuffled: dataset order. Values worked out by hand. */
    assert_float_equal(x[0], (0.0 - 0.2860) / 0.3530, 1e-5);
    assert_float_equal(x[1], (1.0 - 0.2860) / 0.3530, 1e-5);
    assert_float_equal(x[2], (0.2 - 0.2860) / 0.3530, 1e-5);
    for (int k = 0; k < 8; k++) assert_float_equal(x[k], norm(px[k], 0.2860f, 0.3530f), 1e-6);
    for (int k = 0; k < 4; k++) assert_int_equal(y[k], ds.labels[k]);
    assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 0);
    rg_loader_free(ld);

    /* mean 0, std 1: plain pixel / 255. */
    cfg.mean = 0.0f, cfg.std = 1.0f;
    ld = make_loader(&ds, &cfg);
    rg_loader_start_epoch(ld, 0);
    assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 1);
    assert_true(x[0] == 0.0f);
    assert_true(x[1] == 1.0f);
    assert_float_equal(x[2], 0.2, 1e-7);
    rg_loader_free(ld);
    rg_dataset_free(&ds);
}

/* ---- Determinism across workers ---------------------------------------- */

static void test_workers_bit_identical(void **state)
{
    (void)state;
    rg_dataset ds = make_dataset(157, 6, 5, 2);
    const size_t sb = rg_dataset_sample_bytes(&ds);
    rg_loader_config cfg = {.batch = 8, .shuffle = 1, .mean = 0.3f, .std = 0.4f, .augment = 1,
                            .aug = {.crop_pad = 2, .hflip = 1}, .seed = 77};
    const int32_t workers[] = {0, 1, 3, 3};
    const int32_t prefetch[] = {0, 0, 0, 5};
    epoch_dump ref[3];
    for (int v = 0; v < 4; v++) {
        cfg.workers = workers[v];
        cfg.prefetch = prefetch[v];
        rg_loader *ld = make_loader(&ds, &cfg);
        for (int32_t e = 0; e < 3; e++) {
            epoch_dump d = dump_epoch(ld, &ds, e);
            if (v == 0) {
                ref[e] = d;
            } else {
                assert_dumps_equal(&ref[e], &d, sb);
                dump_free(&d);
            }
        }
        rg_loader_free(ld);
    }

    /* Each sample is its own augmentation keyed by (seed, epoch, index):
     * recompute a few by hand and compare. */
    uint8_t *img = malloc(sb), *scratch = malloc(sb);
    int augmented = 0;
    for (int32_t e = 0; e < 3; e++) {
        for (int32_t k = 0; k < ref[e].samples; k += 13) {
            const int32_t i = ref[e].idx[k];
            memcpy(img, ds.pixels + (size_t)i * sb, sb);
            rg_rng r = rg_rng_keyed(77, (uint64_t)e, (uint64_t)i);
            rg_augment_image(&cfg.aug, img, scratch, ds.h, ds.w, ds.c, &r);
            augmented |= memcmp(img, ds.pixels + (size_t)i * sb, sb) != 0;
            for (size_t q = 0; q < sb; q++)
                assert_true(ref[e].x[(size_t)k * sb + q] == norm(img[q], 0.3f, 0.4f));
            assert_int_equal(ref[e].y[k], ds.labels[i]); /* labels are kept */
        }
    }
    assert_true(augmented);

    /* The same sample is augmented differently in different epochs. */
    int32_t *pos1 = malloc(sizeof(int32_t) * (size_t)ds.n);
    for (int32_t k = 0; k < ref[1].samples; k++) pos1[ref[1].idx[k]] = k;
    int differ = 0;
    for (int32_t k = 0; k < ref[0].samples; k++)
        differ += memcmp(ref[0].x + (size_t)k * sb, ref[1].x + (size_t)pos1[ref[0].idx[k]] * sb,
                         sizeof(float) * sb) != 0;
    assert_true(differ > ds.n / 2);
    free(pos1);
    free(img);
    free(scratch);
    for (int e = 0; e < 3; e++) dump_free(&ref[e]);
    rg_dataset_free(&ds);
}

static void test_epochs_differ(void **state)
{
    (void)state;
    rg_dataset ds = make_dataset(64, 2, 2, 1);
    rg_loader_config cfg = {.batch = 16, .shuffle = 1, .mean = 0.0f, .std = 1.0f, .seed = 5,
                            .workers = 2};
    rg_loader *ld = make_loader(&ds, &cfg);
    epoch_dump e0 = dump_epoch(ld, &ds, 0);
    epoch_dump e1 = dump_epoch(ld, &ds, 1);
    epoch_dump e0b = dump_epoch(ld, &ds, 0);
    assert_memory_not_equal(e0.idx, e1.idx, sizeof(int32_t) * 64);
    assert_memory_equal(e0.idx, e0b.idx, sizeof(int32_t) * 64); /* replayable */
    rg_loader_free(ld);

    /* The order is the documented permutation keyed by (seed, epoch, 0x5348). */
    uint32_t perm[64];
    rg_rng r = rg_rng_keyed(5, 1, 0x5348);
    rg_rng_permutation(&r, perm, 64);
    for (int k = 0; k < 64; k++) assert_int_equal(e1.idx[k], (int32_t)perm[k]);

    /* Another seed, another order. */
    cfg.seed = 6;
    ld = make_loader(&ds, &cfg);
    epoch_dump s6 = dump_epoch(ld, &ds, 0);
    assert_memory_not_equal(e0.idx, s6.idx, sizeof(int32_t) * 64);
    rg_loader_free(ld);

    /* Without shuffle: dataset order in every epoch. */
    cfg.shuffle = 0;
    ld = make_loader(&ds, &cfg);
    epoch_dump ns = dump_epoch(ld, &ds, 4);
    for (int k = 0; k < 64; k++) assert_int_equal(ns.idx[k], k);
    rg_loader_free(ld);

    dump_free(&e0);
    dump_free(&e1);
    dump_free(&e0b);
    dump_free(&s6);
    dump_free(&ns);
    rg_dataset_free(&ds);
}

/* ---- Restarting and stopping mid-epoch --------------------------------- */

/* Shuffled, augmented, batches with a short last one. */
static rg_loader_config augmenting_config(void)
{
    return (rg_loader_config){.batch = 7, .shuffle = 1, .mean = 0.1f, .std = 0.9f, .augment = 1,
                              .aug = {.crop_pad = 3, .hflip = 1}, .seed = 11, .workers = 0};
}

/* Epoch `epoch` of cfg produced by a fresh loader. */
static epoch_dump reference_epoch(const rg_dataset *ds, const rg_loader_config *cfg, int32_t epoch)
{
    rg_loader *ld = make_loader(ds, cfg);
    epoch_dump d = dump_epoch(ld, ds, epoch);
    rg_loader_free(ld);
    return d;
}

static void test_restart_mid_epoch(void **state)
{
    (void)state;
    rg_dataset ds = make_dataset(200, 8, 8, 1);
    const size_t sb = rg_dataset_sample_bytes(&ds);
    rg_loader_config cfg = augmenting_config();
    epoch_dump ref = reference_epoch(&ds, &cfg, 1);

    cfg.workers = 4;
    cfg.prefetch = 6;
    rg_loader *ld = make_loader(&ds, &cfg);
    const float *x;
    const int32_t *y;
    int32_t count;
    for (int round = 0; round < 20; round++) {
        /* Take a few batches of epoch 0, leaving others in flight, then
         * switch to epoch 1: it must come out exactly as from scratch. */
        rg_loader_start_epoch(ld, 0);
        for (int b = 0; b < round % 5; b++) assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 1);
        epoch_dump d = dump_epoch(ld, &ds, 1);
        assert_dumps_equal(&ref, &d, sb);
        dump_free(&d);
    }
    /* Restart without taking anything, twice in a row. */
    rg_loader_start_epoch(ld, 2);
    rg_loader_start_epoch(ld, 2);
    /* Free while batches are in flight. */
    rg_loader_start_epoch(ld, 0);
    assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 1);
    rg_loader_free(ld);

    /* next before any epoch: nothing. */
    ld = make_loader(&ds, &cfg);
    assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 0);
    rg_loader_free(ld);
    cfg.workers = 0;
    ld = make_loader(&ds, &cfg);
    assert_int_equal(rg_loader_next(ld, &x, &y, NULL, &count), 0);
    rg_loader_free(ld);
    rg_loader_free(NULL);

    dump_free(&ref);
    rg_dataset_free(&ds);
}

/* Skipping the first k batches of an epoch gives exactly the rest of the
 * epoch from scratch (a run resumed in the middle of an epoch), with and
 * without workers, including a skip past the end. */
static void test_skip_batches(void **state)
{
    (void)state;
    rg_dataset ds = make_dataset(200, 8, 8, 1);
    const size_t sb = rg_dataset_sample_bytes(&ds);
    rg_loader_config cfg = augmenting_config();
    epoch_dump ref = reference_epoch(&ds, &cfg, 1);
    for (int32_t workers = 0; workers <= 3; workers += 3) {
        cfg.workers = workers;
        cfg.prefetch = workers ? 4 : 0;
        rg_loader *ld = make_loader(&ds, &cfg);
        for (int32_t k = 0; k <= ref.batches + 1; k += 5) {
            rg_loader_start_epoch(ld, 1);
            const float *x;
            const int32_t *y, *idx;
            int32_t count, b = k < ref.batches ? k : ref.batches, at = 0;
            for (int32_t j = 0; j < b; j++) at += ref.counts[j];
            /* batches already in flight are dropped */
            if (workers && k == 5) assert_int_equal(rg_loader_next(ld, &x, &y, &idx, &count), 1);
            if (workers && k == 5) rg_loader_start_epoch(ld, 1);
            rg_loader_skip(ld, k);
            while (rg_loader_next(ld, &x, &y, &idx, &count)) {
                assert_int_equal(count, ref.counts[b]);
                assert_memory_equal(idx, ref.idx + at, sizeof(int32_t) * (size_t)count);
                assert_memory_equal(x, ref.x + (size_t)at * sb, sizeof(float) * sb * (size_t)count);
                at += count;
                b++;
            }
            assert_int_equal(b, ref.batches);
            assert_int_equal(at, ref.samples);
        }
        rg_loader_free(ld);
    }
    dump_free(&ref);
    rg_dataset_free(&ds);
}

/* ---- Configuration errors ---------------------------------------------- */

static void expect_create_error(const rg_dataset *ds, const rg_loader_config *cfg,
                                const char *word)
{
    rg_error err = {0};
    rg_loader *ld = (rg_loader *)&err; /* must be overwritten with NULL */
    assert_int_equal(rg_loader_create(ds, cfg, &ld, &err), RG_ERR_ARG);
    assert_null(ld);
    if (!strstr(err.msg, word)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, word);
}

static void test_config_errors(void **state)
{
    (void)state;
    rg_dataset ds = make_dataset(10, 2, 2, 1);
    const rg_loader_config good = {.batch = 4, .mean = 0.0f, .std = 1.0f};
    rg_loader_config c = good;
    c.batch = 0;
    expect_create_error(&ds, &c, "batch");
    c = good, c.std = 0.0f;
    expect_create_error(&ds, &c, "std");
    c = good, c.std = NAN;
    expect_create_error(&ds, &c, "std");
    c = good, c.mean = INFINITY;
    expect_create_error(&ds, &c, "mean");
    c = good, c.workers = -1;
    expect_create_error(&ds, &c, "workers");
    c = good, c.prefetch = -2;
    expect_create_error(&ds, &c, "prefetch");
    c = good, c.augment = 1, c.aug.crop_pad = -1;
    expect_create_error(&ds, &c, "crop_pad");
    c = good, c.augment = 1, c.aug.hflip = 2;
    expect_create_error(&ds, &c, "hflip");
    c = good, c.batch = 11, c.drop_last = 1;
    expect_create_error(&ds, &c, "drop_last");
    /* An invalid augmentation is ignored while augment is off. */
    c = good, c.aug.crop_pad = -1;
    rg_error err = {0};
    rg_loader *ld = NULL;
    assert_int_equal(rg_loader_create(&ds, &c, &ld, &err), RG_OK);
    rg_loader_free(ld);
    rg_dataset empty = ds;
    empty.n = 0;
    expect_create_error(&empty, &good, "empty");
    rg_dataset_free(&ds);
}

/* ---- Augmentation pixels, checked by hand ------------------------------ */

/* The 3x3 image
 *     1 2 3
 *     4 5 6
 *     7 8 9                                                              */
static const uint8_t IMG3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void apply3(int32_t dy, int32_t dx, int flip, uint8_t *out)
{
    uint8_t scratch[9];
    memcpy(out, IMG3, 9);
    rg_augment_params p = {.dy = dy, .dx = dx, .flip = flip};
    rg_augment_apply(&p, out, scratch, 3, 3, 1);
}

static void test_augment_exact(void **state)
{
    (void)state;
    uint8_t out[9];
    apply3(0, 0, 0, out);
    assert_memory_equal(out, IMG3, 9);
    /* Window one down, one right: the content moves up and left. */
    apply3(1, 1, 0, out);
    const uint8_t down_right[9] = {5, 6, 0, 8, 9, 0, 0, 0, 0};
    assert_memory_equal(out, down_right, 9);
    apply3(-1, 0, 0, out);
    const uint8_t up[9] = {0, 0, 0, 1, 2, 3, 4, 5, 6};
    assert_memory_equal(out, up, 9);
    apply3(0, 0, 1, out);
    const uint8_t flipped[9] = {3, 2, 1, 6, 5, 4, 9, 8, 7};
    assert_memory_equal(out, flipped, 9);
    /* Crop then mirror: out(y, x) = in(y + dy, w-1-x + dx). */
    apply3(0, -1, 1, out);
    const uint8_t crop_flip[9] = {2, 1, 0, 5, 4, 0, 8, 7, 0};
    assert_memory_equal(out, crop_flip, 9);
    apply3(2, 2, 0, out);
    const uint8_t corner[9] = {9, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, corner, 9);

    /* Channels move together: a 1x2 RGB image flipped. */
    uint8_t rgb[6] = {10, 11, 12, 20, 21, 22}, scratch[6];
    rg_augment_params p = {.flip = 1};
    rg_augment_apply(&p, rgb, scratch, 1, 2, 3);
    const uint8_t rgb_flipped[6] = {20, 21, 22, 10, 11, 12};
    assert_memory_equal(rgb, rgb_flipped, 6);
}

static void test_augment_draws(void **state)
{
    (void)state;
    const rg_augment_config cfg = {.crop_pad = 1, .hflip = 1};
    rg_error err = {0};
    assert_int_equal(rg_augment_validate(&cfg, &err), RG_OK);
    /* Over many keys: every result is one of the 18 (dy, dx, flip)
     * outcomes, the documented draw order holds, and all outcomes occur. */
    int hits[3][3][2] = {{{0}}};
    for (uint64_t i = 0; i < 500; i++) {
        rg_rng r = rg_rng_keyed(3, 0, i), again = r, manual = r;
        uint8_t img[9], scratch[9], want[9];
        memcpy(img, IMG3, 9);
        rg_augment_image(&cfg, img, scratch, 3, 3, 1, &r);
        rg_augment_params p;
        rg_augment_draw(&cfg, 3, 3, &again, &p);
        assert_in_range(p.dy + 1, 0, 2);
        assert_in_range(p.dx + 1, 0, 2);
        assert_in_range(p.flip, 0, 1);
        assert_int_equal(p.dy, (int32_t)rg_rng_below(&manual, 3) - 1);
        assert_int_equal(p.dx, (int32_t)rg_rng_below(&manual, 3) - 1);
        assert_int_equal(p.flip, (int)rg_rng_below(&manual, 2));
        apply3(p.dy, p.dx, p.flip, want);
        assert_memory_equal(img, want, 9);
        hits[p.dy + 1][p.dx + 1][p.flip]++;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int f = 0; f < 2; f++) assert_true(hits[a][b][f] > 0);

    /* Off means untouched and no draws. */
    const rg_augment_config off = {0};
    rg_rng r = rg_rng_keyed(3, 0, 0), before = r;
    uint8_t img[9], scratch[9];
    memcpy(img, IMG3, 9);
    rg_augment_image(&off, img, scratch, 3, 3, 1, &r);
    assert_memory_equal(img, IMG3, 9);
    assert_memory_equal(&r, &before, sizeof r);

    const rg_augment_config bad = {.crop_pad = RG_AUGMENT_MAX_PAD + 1};
    assert_int_equal(rg_augment_validate(&bad, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "crop_pad"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage_sync),
        cmocka_unit_test(test_coverage_workers),
        cmocka_unit_test(test_normalization_values),
        cmocka_unit_test(test_workers_bit_identical),
        cmocka_unit_test(test_epochs_differ),
        cmocka_unit_test(test_restart_mid_epoch),
        cmocka_unit_test(test_skip_batches),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_augment_exact),
        cmocka_unit_test(test_augment_draws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
