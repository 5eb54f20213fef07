/* Curriculum pieces: pacing values at known epochs, the selection ramp,
 * orders (easy/hard/random) and picks, label noise (exact counts,
 * determinism, the asymmetric map), scores files, the sampler's epochs, and
 * loader epochs over a subset (bit-identical across worker counts, and equal
 * to a plain epoch for the whole set). */
#include "test_support.h"

#include "regain/curriculum.h"
#include "regain/label_noise.h"
#include "regain/loader.h"
#include "regain/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void near(double got, double want, const char *what)
{
    if (fabs(got - want) > 1e-6) fail_msg("%s: %.9f, expected %.9f", what, got, want);
}

/* ---- pacing ---------------------------------------------------------------------- */

static void test_pacing_values(void **state)
{
    (void)state;
    /* start 0.2, all data from epoch 5 (1-based): t = e / 4 */
    rg_pacing p = {RG_PACE_LINEAR, 0.2f, 5, 2};
    const double s = 0.2;
    near(rg_pacing_fraction(&p, 0), s, "linear e0");
    near(rg_pacing_fraction(&p, 1), s + (1 - s) * 0.25, "linear e1");
    near(rg_pacing_fraction(&p, 2), s + (1 - s) * 0.5, "linear e2");
    near(rg_pacing_fraction(&p, 4), 1.0, "linear e4");
    near(rg_pacing_fraction(&p, 9), 1.0, "linear e9");
    assert_int_equal(rg_pacing_count(&p, 1, 100), 40);
    assert_int_equal(rg_pacing_count(&p, 0, 100), 20);
    assert_int_equal(rg_pacing_count(&p, 4, 100), 100);
    assert_int_equal(rg_pacing_count(&p, 0, 3), 1);   /* ceil(0.6) */
    assert_int_equal(rg_pacing_count(&p, 0, 0), 0);
    p.kind = RG_PACE_ROOT;
    near(rg_pacing_fraction(&p, 0), s, "root e0");
    near(rg_pacing_fraction(&p, 2), sqrt(s * s + (1 - s * s) * 0.5), "root e2");
    near(rg_pacing_fraction(&p, 2), 0.7211102551, "root e2 value");
    assert_int_equal(rg_pacing_count(&p, 2, 100), 73);
    near(rg_pacing_fraction(&p, 4), 1.0, "root e4");
    p.kind = RG_PACE_GEOMETRIC;
    near(rg_pacing_fraction(&p, 0), s, "geometric e0");
    near(rg_pacing_fraction(&p, 2), sqrt(s), "geometric e2");
    near(rg_pacing_fraction(&p, 3), pow(s, 0.25), "geometric e3");
    assert_int_equal(rg_pacing_count(&p, 2, 100), 45);
    near(rg_pacing_fraction(&p, 4), 1.0, "geometric e4");
    p.kind = RG_PACE_STEP; /* 2 steps: 0.2, 0.2, 0.6, 0.6, 1 */
    near(rg_pacing_fraction(&p, 0), s, "step e0");
    near(rg_pacing_fraction(&p, 1), s, "step e1");
    near(rg_pacing_fraction(&p, 2), s + (1 - s) * 0.5, "step e2");
    near(rg_pacing_fraction(&p, 3), s + (1 - s) * 0.5, "step e3");
    near(rg_pacing_fraction(&p, 4), 1.0, "step e4");
    /* every kind: non-decreasing, in [s, 1] */
    for (int k = 0; k < 4; k++) {
        p.kind = (rg_pacing_kind)k;
        double last = 0;
        for (int32_t e = 0; e < 8; e++) {
            double f = rg_pacing_fraction(&p, e);
            assert_true(f >= last && f >= s && f <= 1.0);
            last = f;
        }
    }
    /* all data at once when full_epoch is 1 */
    p = (rg_pacing){RG_PACE_LINEAR, 0.1f, 1, 1};
    near(rg_pacing_fraction(&p, 0), 1.0, "full_epoch 1");
    rg_error err = {0};
    p.start = 0.0f;
    assert_int_equal(rg_pacing_check(&p, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "pacing_start"));
}

static void test_select_ramp(void **state)
{
    (void)state;
    /* keep 0.6 (forget rate 0.4), warm-up 2 epochs, ramp over 4 */
    near(rg_select_keep_fraction(0.6f, 2, 4, 0), 1.0, "warm-up e0");
    near(rg_select_keep_fraction(0.6f, 2, 4, 1), 1.0, "warm-up e1");
    near(rg_select_keep_fraction(0.6f, 2, 4, 2), 1 - (1 - 0.6) * 0.25, "ramp e2");
    near(rg_select_keep_fraction(0.6f, 2, 4, 3), 1 - (1 - 0.6) * 0.5, "ramp e3");
    near(rg_select_keep_fraction(0.6f, 2, 4, 5), 0.6, "ramp end");
    near(rg_select_keep_fraction(0.6f, 2, 4, 50), 0.6, "after");
    near(rg_select_keep_fraction(0.6f, 2, 0, 2), 0.6, "no ramp");
    near(rg_select_keep_fraction(1.0f, 0, 0, 5), 1.0, "off");
}

/* ---- orders ------------------------------------------------------------------------ */

static void test_orders(void **state)
{
    (void)state;
    const float scores[6] = {3.0f, 1.0f, 4.0f, 1.5f, 9.0f, 2.0f};
    int32_t rank[6], sub[6];
    CHECK(rg_curriculum_rank(scores, 6, RG_ORDER_EASY, 1, rank, &E));
    const int32_t easy[6] = {1, 3, 5, 0, 2, 4};
    assert_memory_equal(rank, easy, sizeof easy);
    rg_curriculum_pick(rank, 3, sub);
    const int32_t easy3[3] = {1, 3, 5};
    assert_memory_equal(sub, easy3, sizeof easy3);
    CHECK(rg_curriculum_rank(scores, 6, RG_ORDER_HARD, 1, rank, &E));
    const int32_t hard[6] = {4, 2, 0, 5, 3, 1};
    assert_memory_equal(rank, hard, sizeof hard);
    rg_curriculum_pick(rank, 2, sub);
    assert_int_equal(sub[0], 2);
    assert_int_equal(sub[1], 4);

    /* random: a permutation, the same for a seed, ignoring the scores */
    enum { N = 200 };
    float sc[N];
    int32_t r1[N], r2[N], r3[N], r4[N];
    for (int i = 0; i < N; i++) sc[i] = (float)i;
    CHECK(rg_curriculum_rank(NULL, N, RG_ORDER_RANDOM, 5, r1, &E));
    CHECK(rg_curriculum_rank(sc, N, RG_ORDER_RANDOM, 5, r2, &E));
    CHECK(rg_curriculum_rank(NULL, N, RG_ORDER_RANDOM, 6, r3, &E));
    assert_memory_equal(r1, r2, sizeof r1);
    assert_memory_not_equal(r1, r3, sizeof r1);
    int seen[N] = {0};
    for (int i = 0; i < N; i++) seen[r1[i]]++;
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    /* not the identity nor easy order */
    int in_place = 0;
    for (int i = 0; i < N; i++) in_place += r1[i] == i;
    assert_true(in_place < 20);

    /* equal scores keep the random order; NaN is the hardest */
    for (int i = 0; i < N; i++) sc[i] = 1.0f;
    sc[17] = 0.5f;
    sc[3] = NAN;
    CHECK(rg_curriculum_rank(sc, N, RG_ORDER_EASY, 5, r4, &E));
    assert_int_equal(r4[0], 17);
    assert_int_equal(r4[N - 1], 3);
    int32_t j = 1;
    for (int i = 0; i < N; i++)
        if (r1[i] != 17 && r1[i] != 3) assert_int_equal(r4[j++], r1[i]);

    rg_error err = {0};
    assert_int_equal(rg_curriculum_rank(NULL, N, RG_ORDER_EASY, 5, r4, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "curriculum_order"));
}

/* ---- label noise -------------------------------------------------------------------- */

/* The true labels, i % classes, as a resumed run loads them again. */
static void clean_labels(rg_dataset *ds)
{
    for (int32_t i = 0; i < ds->n; i++) ds->labels[i] = (uint8_t)(i % ds->n_classes);
}

static rg_dataset labels_only(int32_t n, int32_t classes)
{
    rg_dataset ds = {0};
    ds.n = n, ds.h = 1, ds.w = 1, ds.c = 1, ds.n_classes = classes;
    ds.pixels = calloc((size_t)n, 1);
    ds.labels = malloc((size_t)n);
    clean_labels(&ds);
    strcpy(ds.source, "labels");
    return ds;
}

static void test_label_noise_symmetric(void **state)
{
    (void)state;
    rg_dataset a = labels_only(1000, 10), b = labels_only(1000, 10), c = labels_only(1000, 10);
    uint8_t clean[1000];
    int32_t flipped;
    rg_label_noise_config nc = {.kind = RG_NOISE_SYMMETRIC, .fraction = 0.4f, .seed = 3};
    CHECK(rg_label_noise_apply(&a, &nc, clean, &flipped, &E));
    assert_int_equal(flipped, 400);
    int differ = 0, to[10] = {0};
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(clean[i], i % 10);
        if (a.labels[i] != clean[i]) {
            differ++;
            to[a.labels[i]]++;
        }
        assert_true(a.labels[i] < 10);
    }
    assert_int_equal(differ, 400);
    /* spread over the other classes: about 40 each */
    for (int k = 0; k < 10; k++) assert_in_range(to[k], 15, 70);
    /* the same seed, the same labels; another seed, another set */
    CHECK(rg_label_noise_apply(&b, &nc, NULL, NULL, &E));
    assert_memory_equal(a.labels, b.labels, 1000);
    nc.seed = 4;
    CHECK(rg_label_noise_apply(&c, &nc, NULL, &flipped, &E));
    assert_int_equal(flipped, 400);
    assert_memory_not_equal(a.labels, c.labels, 1000);
    rg_dataset_free(&a);
    rg_dataset_free(&b);
    rg_dataset_free(&c);

    /* round(fraction * n): 0.5 * 7 = 3.5 -> 4; fraction 0 and 1 */
    rg_dataset d = labels_only(7, 3);
    nc = (rg_label_noise_config){.kind = RG_NOISE_SYMMETRIC, .fraction = 0.5f, .seed = 1};
    CHECK(rg_label_noise_apply(&d, &nc, NULL, &flipped, &E));
    assert_int_equal(flipped, 4);
    rg_dataset_free(&d);
    d = labels_only(50, 2);
    nc.fraction = 1.0f;
    CHECK(rg_label_noise_apply(&d, &nc, NULL, &flipped, &E));
    assert_int_equal(flipped, 50);
    for (int i = 0; i < 50; i++) assert_int_equal(d.labels[i], 1 - i % 2);
    rg_dataset_free(&d);
}

static void test_label_noise_asymmetric(void **state)
{
    (void)state;
    rg_dataset a = labels_only(1000, 10);
    uint8_t clean[1000];
    int32_t flipped;
    rg_label_noise_config nc = {.kind = RG_NOISE_ASYMMETRIC, .fraction = 0.4f, .seed = 9};
    CHECK(rg_label_noise_apply(&a, &nc, clean, &flipped, &E));
    /* classes 0, 2, 4, 5, 6, 7 are paired: 40 of each 100 flip */
    assert_int_equal(flipped, 240);
    const int32_t *map = rg_label_noise_default_map();
    const int32_t want_map[10] = {6, 1, 4, 3, 2, 7, 0, 5, 8, 9};
    assert_memory_equal(map, want_map, sizeof want_map);
    int per[10] = {0};
    for (int i = 0; i < 1000; i++)
        if (a.labels[i] != clean[i]) {
            assert_int_equal(a.labels[i], map[clean[i]]);
            per[clean[i]]++;
        }
    const int want[10] = {40, 0, 40, 0, 40, 40, 40, 40, 0, 0};
    assert_memory_equal(per, want, sizeof want);
    rg_dataset_free(&a);

    /* a user map: 3 -> 8 only */
    int32_t m[10];
    CHECK(rg_label_noise_parse_map(" 3 : 8 ", 10, m, &E));
    for (int k = 0; k < 10; k++) assert_int_equal(m[k], k == 3 ? 8 : k);
    CHECK(rg_label_noise_parse_map("0:6,6:0, 2:4 ,4:2", 10, m, &E));
    assert_int_equal(m[6], 0);
    assert_int_equal(m[2], 4);
    a = labels_only(1000, 10);
    CHECK(rg_label_noise_parse_map("3:8", 10, m, &E));
    nc.map = m;
    nc.fraction = 0.25f;
    CHECK(rg_label_noise_apply(&a, &nc, clean, &flipped, &E));
    assert_int_equal(flipped, 25);
    for (int i = 0; i < 1000; i++) assert_true(a.labels[i] == clean[i] || (clean[i] == 3 && a.labels[i] == 8));
    rg_dataset_free(&a);

    /* bad maps and configurations */
    rg_error err = {0};
    assert_int_equal(rg_label_noise_parse_map("0:6,0:5", 10, m, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "class 0 is mapped twice"));
    assert_int_equal(rg_label_noise_parse_map("0-6", 10, m, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "FROM:TO"));
    assert_int_equal(rg_label_noise_parse_map("0:12", 10, m, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "outside [0, 10)"));
    assert_int_equal(rg_label_noise_parse_map("0:6;", 10, m, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "expected ','"));
    a = labels_only(30, 3);
    nc = (rg_label_noise_config){.kind = RG_NOISE_ASYMMETRIC, .fraction = 0.4f, .seed = 9};
    assert_int_equal(rg_label_noise_apply(&a, &nc, NULL, NULL, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "10 classes"));
    nc.kind = RG_NOISE_SYMMETRIC;
    nc.fraction = 1.5f;
    assert_int_equal(rg_label_noise_apply(&a, &nc, NULL, NULL, &err), RG_ERR_ARG);
    for (int i = 0; i < 30; i++) assert_int_equal(a.labels[i], i % 3); /* unchanged */
    rg_dataset_free(&a);
}

/* ---- scores files ------------------------------------------------------------------------ */

static void test_scores_file(void **state)
{
    (void)state;
    float s[4];
    rgt_write_text("plain.txt", "# difficulty\n0.5\n1e-3\n\n  2\n-1.25\n");
    CHECK(rg_curriculum_read_scores(rgt_in_root("plain.txt"), 4, s, &E));
    const float want[4] = {0.5f, 1e-3f, 2.0f, -1.25f};
    assert_memory_equal(s, want, sizeof want);
    rgt_write_text("pairs.txt", "3 -1.25\n0 0.5\n2 2\n1 0.001\n");
    memset(s, 0, sizeof s);
    CHECK(rg_curriculum_read_scores(rgt_in_root("pairs.txt"), 4, s, &E));
    assert_memory_equal(s, want, sizeof want);
}

/* ---- the sampler ---------------------------------------------------------------------------- */

static void test_sampler(void **state)
{
    (void)state;
    rg_train_config c;
    rg_train_config_default(&c);
    c.epochs = 4;
    snprintf(c.curriculum, sizeof c.curriculum, "file");
    snprintf(c.curriculum_scores, sizeof c.curriculum_scores, "%s", rgt_in_root("s100.txt"));
    char text[2000] = "";
    size_t len = 0;
    for (int i = 0; i < 100; i++) len += (size_t)snprintf(text + len, sizeof text - len, "%d\n", (i * 37) % 100);
    rgt_write_text("s100.txt", text);
    c.pacing_start = 0.3f;
    c.pacing_full_epoch = 3; /* 30, 65, 100, 100 samples */
    rg_dataset ds = labels_only(100, 10);
    rg_sampler *s = NULL;
    CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
    assert_non_null(s);
    assert_int_equal(rg_sampler_wants_losses(s), 0);
    const int32_t *sub;
    int32_t m;
    CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
    assert_int_equal(m, 30);
    assert_non_null(sub);
    /* the easiest 30: scores 0..29 */
    for (int32_t j = 0; j < m; j++) {
        assert_true((sub[j] * 37) % 100 < 30);
        if (j) assert_true(sub[j] > sub[j - 1]);
    }
    CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
    assert_int_equal(m, 65);
    CHECK(rg_sampler_epoch(s, 2, &sub, &m, &E));
    assert_int_equal(m, 100);
    assert_null(sub);
    rg_sampler_free(s);

    /* anti-curriculum: the hardest */
    snprintf(c.curriculum_order, sizeof c.curriculum_order, "hard");
    CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
    CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
    for (int32_t j = 0; j < m; j++) assert_true((sub[j] * 37) % 100 >= 70);
    rg_sampler_free(s);

    /* selection with label noise: after the warm-up the small-loss half; losses
     * recorded as "noisy samples have large loss" keep only clean ones */
    rg_train_config_default(&c);
    c.epochs = 4;
    c.label_noise = 0.3f;
    c.select_keep = 0.5f;
    c.select_warmup = 1;
    c.select_ramp_epochs = 2;
    CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
    assert_int_equal(rg_sampler_wants_losses(s), 1);
    int64_t used;
    double noisy;
    CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
    assert_null(sub);
    assert_int_equal(m, 100);
    rg_sampler_stats(s, &used, &noisy);
    assert_int_equal(used, 100);
    near(noisy, 0.3, "noisy fraction of all");
    int32_t idx[100];
    float loss[100];
    for (int i = 0; i < 100; i++) {
        idx[i] = i;
        loss[i] = ds.labels[i] != i % 10 ? 5.0f + (float)i : (float)i * 0.01f;
    }
    rg_sampler_record(s, idx, loss, 100);
    CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
    assert_int_equal(m, 75); /* keep 1 - 0.5 * 1/2 */
    rg_sampler_stats(s, &used, &noisy);
    assert_int_equal(used, 75);
    near(noisy, 5.0 / 75.0, "noisy kept at 75%"); /* all 70 clean plus the 5 least-lossy noisy */
    CHECK(rg_sampler_epoch(s, 2, &sub, &m, &E));
    assert_int_equal(m, 50);
    rg_sampler_stats(s, &used, &noisy);
    near(noisy, 0.0, "noisy kept at 50%");
    for (int32_t j = 0; j < m; j++) assert_true(loss[sub[j]] < 1.0f);
    /* its state for the checkpoint */
    rg_st_tensor t[2];
    assert_int_equal(rg_sampler_tensors(s, t, 2, 0), 1);
    assert_string_equal(t[0].name, "sample.loss");
    assert_int_equal(t[0].shape[0], 100);
    rg_sampler_free(s);
    rg_dataset_free(&ds);

    /* nothing on: no sampler */
    rg_train_config_default(&c);
    ds = labels_only(10, 10);
    CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
    assert_null(s);
    rg_dataset_free(&ds);
}

/* Per-class selection: where one class's losses are all high (a hard
 * class), global selection drops it, per-class selection keeps its share:
 * the smallest-loss half of every class. */
static void test_select_per_class(void **state)
{
    (void)state;
    rg_train_config c;
    rg_train_config_default(&c);
    c.epochs = 3;
    c.select_keep = 0.5f;
    c.select_warmup = 1;
    c.select_ramp_epochs = 0;
    rg_dataset ds = labels_only(100, 10);
    int32_t idx[100];
    float loss[100];
    for (int i = 0; i < 100; i++) {
        idx[i] = i;
        /* class 3 is hard: every loss above every other class's */
        loss[i] = (i % 10 == 3 ? 10.0f : 0.0f) + 0.01f * (float)((i * 7) % 100);
    }
    for (int per_class = 0; per_class <= 1; per_class++) {
        c.select_per_class = per_class;
        CHECK(rg_train_config_validate(&c, &E));
        rg_sampler *s = NULL;
        CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
        const int32_t *sub;
        int32_t m;
        CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
        rg_sampler_record(s, idx, loss, 100);
        CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
        assert_int_equal(m, 50);
        int32_t per[10] = {0};
        for (int32_t j = 0; j < m; j++) {
            per[sub[j] % 10]++;
            if (j) assert_true(sub[j] > sub[j - 1]);
        }
        if (!per_class) {
            assert_int_equal(per[3], 0);
        } else {
            /* five of each class, and within a class the five smallest losses */
            for (int k = 0; k < 10; k++) assert_int_equal(per[k], 5);
            for (int32_t j = 0; j < m; j++) {
                int below = 0;
                for (int i = sub[j] % 10; i < 100; i += 10) below += loss[i] < loss[sub[j]];
                assert_true(below < 5);
            }
        }
        rg_sampler_free(s);
    }
    /* it divides selection: without selection there is nothing to divide */
    c.select_keep = 1.0f;
    assert_int_equal(rg_train_config_validate(&c, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "select_per_class"));
    rg_dataset_free(&ds);
}

/* 3 epochs, 30 % noise; after one epoch, keep half at once; correct at 0.9 */
static rg_train_config relabel_config(void)
{
    rg_train_config c;
    rg_train_config_default(&c);
    c.epochs = 3;
    c.label_noise = 0.3f;
    c.select_keep = 0.5f;
    c.select_warmup = 1;
    c.select_ramp_epochs = 0;
    c.select_relabel = 0.9f;
    return c;
}

/* Label correction: of the samples selection drops, those whose recorded
 * prediction is confident come back with it as their label; labels return
 * to their given values every epoch before that; its state travels with
 * the checkpoint. */
static void test_label_correction(void **state)
{
    (void)state;
    rg_train_config c = relabel_config();
    CHECK(rg_train_config_validate(&c, &E));
    rg_dataset ds = labels_only(100, 10);
    rg_sampler *s = NULL;
    CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
    assert_int_equal(rg_sampler_wants_logits(s), 1);
    uint8_t given[100];
    memcpy(given, ds.labels, sizeof given);
    const int32_t *sub;
    int32_t m;
    CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
    assert_int_equal(m, 100);
    assert_memory_equal(ds.labels, given, sizeof given);
    /* the model predicts every true class i % 10: confidently (p = 0.98),
     * except for the noisy samples of odd index (p = 0.23) */
    int32_t idx[100], noisy_even = 0;
    float logits[100 * 10] = {0};
    for (int i = 0; i < 100; i++) {
        idx[i] = i;
        int noisy = given[i] != i % 10;
        logits[i * 10 + i % 10] = noisy && (i % 2) ? 1.0f : 6.0f + 0.001f * (float)i;
        noisy_even += noisy && !(i % 2);
    }
    rg_sampler_record_logits(s, idx, logits, 100, 10);
    for (int32_t e = 1; e <= 2; e++) {
        CHECK(rg_sampler_epoch(s, e, &sub, &m, &E));
        /* 50 kept (all clean: smallest loss against their given label), the
         * other 20 clean relabeled to what they were, the confident noisy
         * ones corrected; the unconfident noisy ones left out */
        assert_int_equal(m, 70 + noisy_even);
        for (int32_t j = 0; j < m; j++) {
            assert_int_equal(ds.labels[sub[j]], sub[j] % 10);
            if (j) assert_true(sub[j] > sub[j - 1]);
        }
        for (int i = 0; i < 100; i++)
            if (given[i] != i % 10 && (i % 2)) assert_int_equal(ds.labels[i], given[i]);
        int64_t used;
        double noisy;
        rg_sampler_stats(s, &used, &noisy);
        assert_int_equal(used, m);
        near(noisy, 0.0, "labels trained on after correction");
    }
    rg_st_tensor t[4];
    assert_int_equal(rg_sampler_tensors(s, t, 4, 0), 3);
    assert_string_equal(t[1].name, "sample.pred");
    assert_string_equal(t[2].name, "sample.conf");
    /* resumed from them: the same epoch; from a damaged copy (a prediction
     * that is no class): refused, naming the sample */
    float state_copy[3][100];
    for (int k = 0; k < 3; k++) {
        memcpy(state_copy[k], t[k].data, sizeof state_copy[k]);
        t[k].data = state_copy[k];
    }
    const char *ck = rgt_in_root("state.safetensors");
    CHECK(rg_st_write(ck, t, 3, NULL, 0, &E));
    rg_sampler_free(s);
    rg_st_file *f;
    CHECK(rg_st_read(ck, &f, &E));
    /* a resumed run loads the clean labels again, and the noise again */
    clean_labels(&ds);
    CHECK(rg_sampler_create(&c, &ds, f, &s, &E));
    CHECK(rg_sampler_epoch(s, 2, &sub, &m, &E));
    assert_int_equal(m, 70 + noisy_even);
    rg_sampler_free(s);
    rg_st_free(f);
    state_copy[1][17] = 12.0f;
    CHECK(rg_st_write(ck, t, 3, NULL, 0, &E));
    CHECK(rg_st_read(ck, &f, &E));
    clean_labels(&ds);
    assert_int_equal(rg_sampler_create(&c, &ds, f, &s, &E), RG_ERR_FORMAT);
    assert_null(s);
    assert_non_null(strstr(E.msg, "sample 17"));
    assert_non_null(strstr(E.msg, "sample.pred 12"));
    rg_st_free(f);
    rg_dataset_free(&ds);
}

/* Writes the sampler's tensors, with the current epoch's choice, to path,
 * `mend` changing them first (a damaged checkpoint: it returns the count
 * left), and returns the file. */
static rg_st_file *stopped_state(rg_sampler *s, const char *path, int32_t (*mend)(rg_st_tensor *t, int32_t n))
{
    rg_st_tensor t[6];
    int32_t n = rg_sampler_tensors(s, t, 6, 1);
    if (mend) n = mend(t, n);
    CHECK(rg_st_write(path, t, n, NULL, 0, &E));
    rg_st_file *f;
    CHECK(rg_st_read(path, &f, &E));
    return f;
}

static rg_st_tensor *named(rg_st_tensor *t, int32_t n, const char *name)
{
    for (int32_t k = 0; k < n; k++)
        if (!strcmp(t[k].name, name)) return &t[k];
    fail_msg("no tensor %s", name);
    return NULL;
}

static int32_t bad_subset[100];
static uint8_t bad_labels[100];

static int32_t unsorted(rg_st_tensor *t, int32_t n)
{
    rg_st_tensor *s = named(t, n, "sample.subset");
    memcpy(bad_subset, s->raw, (size_t)s->shape[0] * sizeof *bad_subset);
    int32_t keep = bad_subset[3];
    bad_subset[3] = bad_subset[4];
    bad_subset[4] = keep;
    s->raw = bad_subset;
    return n;
}

static int32_t past_the_end(rg_st_tensor *t, int32_t n)
{
    rg_st_tensor *s = named(t, n, "sample.subset");
    memcpy(bad_subset, s->raw, (size_t)s->shape[0] * sizeof *bad_subset);
    bad_subset[s->shape[0] - 1] = 100;
    s->raw = bad_subset;
    return n;
}

static int32_t no_class(rg_st_tensor *t, int32_t n)
{
    rg_st_tensor *l = named(t, n, "sample.label");
    memcpy(bad_labels, l->raw, sizeof bad_labels);
    bad_labels[42] = 10;
    l->raw = bad_labels;
    return n;
}

/* the tensor moved out of the file (the last one in its place) */
static int32_t dropped(rg_st_tensor *t, int32_t n, const char *name)
{
    *named(t, n, name) = t[n - 1];
    return n - 1;
}

static int32_t labels_dropped(rg_st_tensor *t, int32_t n) { return dropped(t, n, "sample.label"); }

static int32_t subset_dropped(rg_st_tensor *t, int32_t n) { return dropped(t, n, "sample.subset"); }

static int32_t float_subset(rg_st_tensor *t, int32_t n)
{
    static float as_float[100];
    rg_st_tensor *s = named(t, n, "sample.subset");
    for (int64_t j = 0; j < s->shape[0]; j++) as_float[j] = (float)((const int32_t *)s->raw)[j];
    s->dtype = RG_ST_F32;
    s->data = as_float;
    s->raw = NULL;
    return n;
}

/* A run stopped in the middle of an epoch: the epoch's subset and labels
 * travel with the checkpoint, so the resumed sampler returns them although
 * the records changed since (chosen again from the saved records, the
 * epoch would differ); a damaged choice is refused, naming the tensor. */
static void test_stopped_epoch(void **state)
{
    (void)state;
    rg_train_config c = relabel_config();
    CHECK(rg_train_config_validate(&c, &E));
    rg_dataset ds = labels_only(100, 10);
    rg_sampler *s = NULL;
    CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
    const int32_t *sub;
    int32_t m, idx[100];
    float logits[100 * 10] = {0};
    for (int i = 0; i < 100; i++) {
        idx[i] = i;
        logits[i * 10 + i % 10] = 2.0f + 0.05f * (float)i; /* later samples surer */
    }
    CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
    rg_sampler_record_logits(s, idx, logits, 100, 10);
    CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
    assert_true(m < 100);
    int32_t chosen[100];
    uint8_t labels[100];
    int32_t chosen_m = m;
    memcpy(chosen, sub, (size_t)m * sizeof *chosen);
    memcpy(labels, ds.labels, sizeof labels);
    /* part of epoch 1 trained: the first samples now the surest */
    for (int i = 0; i < 100; i++) logits[i * 10 + i % 10] = 8.0f - 0.05f * (float)i;
    rg_sampler_record_logits(s, idx, logits, 50, 10);

    const char *ck = rgt_in_root("stopped.safetensors");
    rg_st_file *f = stopped_state(s, ck, NULL);
    rg_sampler_free(s);
    clean_labels(&ds);
    CHECK(rg_sampler_create(&c, &ds, f, &s, &E));
    assert_true(rg_sampler_resumes_epoch(s));
    CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
    assert_int_equal(m, chosen_m);
    assert_memory_equal(sub, chosen, (size_t)m * sizeof *chosen);
    assert_memory_equal(ds.labels, labels, sizeof labels);
    assert_false(rg_sampler_resumes_epoch(s));
    rg_st_free(f);

    /* the same records without the saved choice: another epoch 1 */
    rg_st_tensor t[6];
    int32_t n = rg_sampler_tensors(s, t, 6, 0);
    CHECK(rg_st_write(ck, t, n, NULL, 0, &E));
    rg_sampler_free(s);
    CHECK(rg_st_read(ck, &f, &E));
    clean_labels(&ds);
    CHECK(rg_sampler_create(&c, &ds, f, &s, &E));
    assert_false(rg_sampler_resumes_epoch(s));
    CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
    assert_true(m != chosen_m || memcmp(sub, chosen, (size_t)m * sizeof *chosen));
    rg_st_free(f);

    /* damaged: each refused with what is wrong */
    struct {
        int32_t (*mend)(rg_st_tensor *, int32_t);
        const char *says;
    } bad[] = {
        {unsorted, "sample.subset[4] = "},
        {past_the_end, "is not an ascending index below 100"},
        {no_class, "sample.label[42] = 10 is not a class of 10"},
        {labels_dropped, "sample.label is missing"},
        {subset_dropped, "sample.subset is missing beside sample.label"},
        {float_subset, "sample.subset is malformed"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        clean_labels(&ds);
        CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
        f = stopped_state(s, ck, bad[b].mend);
        rg_sampler *r = NULL;
        clean_labels(&ds);
        assert_int_equal(rg_sampler_create(&c, &ds, f, &r, &E), RG_ERR_FORMAT);
        assert_null(r);
        if (!strstr(E.msg, bad[b].says)) fail_msg("case %zu: %s", b, E.msg);
        rg_st_free(f);
    }
    rg_sampler_free(s);
    rg_dataset_free(&ds);
}

/* select_refresh: the samples an epoch left out are listed (the complement
 * of its subset, ascending), and predictions recorded for them change the
 * next epoch's correction but not its selection, which ranks by the losses
 * of training. Without select_refresh nothing is listed. */
static void test_refresh_predictions(void **state)
{
    (void)state;
    rg_train_config c = relabel_config();
    for (int refresh = 0; refresh <= 1; refresh++) {
        c.select_refresh = refresh;
        CHECK(rg_train_config_validate(&c, &E));
        rg_dataset ds = labels_only(100, 10);
        rg_sampler *s = NULL;
        CHECK(rg_sampler_create(&c, &ds, NULL, &s, &E));
        uint8_t given[100];
        memcpy(given, ds.labels, sizeof given);
        const int32_t *sub, *unseen;
        int32_t m;
        CHECK(rg_sampler_epoch(s, 0, &sub, &m, &E));
        /* all trained in the warm-up epoch: none left out */
        assert_int_equal(rg_sampler_unseen(s, &unseen), 0);
        /* trained on: every noisy sample unsure (p = 0.23 on its true class) */
        int32_t idx[100], noisy = 0;
        float logits[100 * 10] = {0};
        for (int i = 0; i < 100; i++) {
            idx[i] = i;
            int is_noisy = given[i] != i % 10;
            logits[i * 10 + i % 10] = is_noisy ? 1.0f : 6.0f + 0.001f * (float)i;
            noisy += is_noisy;
        }
        rg_sampler_record_logits(s, idx, logits, 100, 10);
        CHECK(rg_sampler_epoch(s, 1, &sub, &m, &E));
        assert_int_equal(m, 70); /* 50 kept, the 20 other clean ones relabeled to themselves */
        int32_t k = rg_sampler_unseen(s, &unseen);
        if (!refresh) {
            assert_int_equal(k, 0);
            assert_null(unseen);
        } else {
            /* the complement: the noisy samples, ascending */
            assert_int_equal(k, noisy);
            for (int32_t j = 0; j < k; j++) {
                assert_true(given[unseen[j]] != unseen[j] % 10);
                if (j) assert_true(unseen[j] > unseen[j - 1]);
            }
            /* the model now predicts their true class confidently */
            float fresh[100 * 10] = {0};
            int32_t ids[100];
            for (int32_t j = 0; j < k; j++) {
                ids[j] = unseen[j];
                fresh[j * 10 + unseen[j] % 10] = 8.0f;
            }
            rg_sampler_record_predictions(s, ids, fresh, k, 10);
        }
        CHECK(rg_sampler_epoch(s, 2, &sub, &m, &E));
        /* the same 50 kept (their losses unchanged), and with fresh
         * predictions every noisy sample corrected */
        assert_int_equal(m, refresh ? 100 : 70);
        if (refresh) assert_null(sub); /* all of them */
        for (int32_t j = 0; j < m; j++) {
            int32_t i = sub ? sub[j] : j;
            assert_int_equal(ds.labels[i], i % 10);
        }
        rg_sampler_free(s);
        rg_dataset_free(&ds);
    }
}

/* ---- loader subsets ---------------------------------------------------------------------- */

static rg_dataset pixels_dataset(int32_t n)
{
    rg_dataset ds = labels_only(n, 10);
    free(ds.pixels);
    ds.h = 3, ds.w = 3;
    ds.pixels = malloc((size_t)n * 9);
    rg_rng r = rg_rng_keyed(77, 0, 0);
    for (int32_t i = 0; i < n * 9; i++) ds.pixels[i] = (uint8_t)rg_rng_u64(&r);
    return ds;
}

/* Concatenated (x, y, idx) of one epoch over a subset; returns samples. */
static int32_t run_subset(rg_dataset *ds, int32_t workers, int32_t epoch, const int32_t *subset, int32_t m, float *x,
                          int32_t *y, int32_t *idx, int32_t *batches)
{
    rg_loader_config lc = {.batch = 8, .shuffle = 1, .mean = 0.5f, .std = 0.25f, .augment = 1,
                           .aug = {.crop_pad = 1, .hflip = 1}, .seed = 5, .workers = workers, .prefetch = 3};
    rg_loader *ld = NULL;
    CHECK(rg_loader_create(ds, &lc, &ld, &E));
    /* an earlier full epoch and a restart must not matter */
    rg_loader_start_epoch(ld, epoch + 1);
    CHECK(rg_loader_start_epoch_subset(ld, epoch, subset, m, &E));
    const float *bx;
    const int32_t *by, *bi;
    int32_t count, total = 0;
    *batches = 0;
    while (rg_loader_next(ld, &bx, &by, &bi, &count)) {
        memcpy(x + (size_t)total * 9, bx, (size_t)count * 9 * sizeof(float));
        memcpy(y + total, by, (size_t)count * sizeof(int32_t));
        memcpy(idx + total, bi, (size_t)count * sizeof(int32_t));
        total += count;
        (*batches)++;
    }
    assert_int_equal(*batches, rg_loader_batches(ld));
    rg_loader_free(ld);
    return total;
}

static void test_loader_subset(void **state)
{
    (void)state;
    enum { N = 60 };
    rg_dataset ds = pixels_dataset(N);
    int32_t subset[23];
    for (int32_t j = 0; j < 23; j++) subset[j] = (j * 7 + 3) % N;
    static float x0[N * 9], x1[N * 9];
    int32_t y0[N], y1[N], i0[N], i1[N], nb0, nb1;
    int32_t m0 = run_subset(&ds, 0, 2, subset, 23, x0, y0, i0, &nb0);
    assert_int_equal(m0, 23);
    assert_int_equal(nb0, 3); /* ceil(23 / 8) */
    /* each subset sample once */
    int seen[N] = {0};
    for (int32_t j = 0; j < 23; j++) seen[i0[j]]++;
    for (int32_t j = 0; j < 23; j++) assert_int_equal(seen[subset[j]], 1);
    for (int32_t j = 0; j < 23; j++) assert_int_equal(y0[j], ds.labels[i0[j]]);
    for (int32_t w = 1; w <= 4; w += 3) {
        int32_t m1 = run_subset(&ds, w, 2, subset, 23, x1, y1, i1, &nb1);
        assert_int_equal(m1, 23);
        assert_int_equal(nb1, nb0);
        assert_memory_equal(x0, x1, sizeof(float) * 23 * 9);
        assert_memory_equal(i0, i1, sizeof(int32_t) * 23);
        assert_memory_equal(y0, y1, sizeof(int32_t) * 23);
    }
    /* the subset is shuffled, and differently in another epoch */
    int32_t m2 = run_subset(&ds, 2, 3, subset, 23, x1, y1, i1, &nb1);
    assert_int_equal(m2, 23);
    assert_memory_not_equal(i0, i1, sizeof(int32_t) * 23);

    /* the whole dataset as a subset = a plain epoch */
    int32_t all[N];
    for (int32_t j = 0; j < N; j++) all[j] = j;
    int32_t mf = run_subset(&ds, 3, 4, all, N, x0, y0, i0, &nb0);
    int32_t mn = run_subset(&ds, 0, 4, NULL, 0, x1, y1, i1, &nb1);
    assert_int_equal(mf, N);
    assert_int_equal(mn, N);
    assert_int_equal(nb0, 8);
    assert_memory_equal(x0, x1, sizeof x0);
    assert_memory_equal(i0, i1, sizeof i0);

    /* bad subsets leave the loader as it was */
    rg_loader_config lc = {.batch = 8, .shuffle = 1, .mean = 0.5f, .std = 0.25f, .seed = 5, .workers = 2};
    rg_loader *ld = NULL;
    CHECK(rg_loader_create(&ds, &lc, &ld, &E));
    rg_error err = {0};
    int32_t bad[2] = {3, N};
    assert_int_equal(rg_loader_start_epoch_subset(ld, 0, bad, 2, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "outside [0, 60)"));
    assert_int_equal(rg_loader_start_epoch_subset(ld, 0, bad, N + 1, &err), RG_ERR_ARG);
    assert_int_equal(rg_loader_batches(ld), 8);
    rg_loader_free(ld);
    rg_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pacing_values),     cmocka_unit_test(test_select_ramp),
        cmocka_unit_test(test_select_per_class),
        cmocka_unit_test(test_orders),            cmocka_unit_test(test_label_noise_symmetric),
        cmocka_unit_test(test_label_noise_asymmetric), cmocka_unit_test(test_scores_file),
        cmocka_unit_test(test_sampler),           cmocka_unit_test(test_label_correction),
        cmocka_unit_test(test_stopped_epoch),
        cmocka_unit_test(test_refresh_predictions),
        cmocka_unit_test(test_loader_subset),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
