/* Batches and threads in the int8 runtime (rg_rt_prepare_opts,
 * rg_rt_invoke_batch): mbv2-tiny, lowered from random weights, is run image
 * by image on the reference table; every table this CPU runs, with several
 * micro-batches and thread counts (including partial last micro-batches and
 * more threads than micro-batches), must give the same bytes, with the arena
 * filled with garbage first. The arena size follows the documented formula,
 * and bad options are refused with a message naming them. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/cpu.h"
#include "regain/graph.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/rt.h"
#include "regain/rt_qmodel.h"
#include "regain/zoo.h"
#include "rt/kernels/qk.h"

enum { N_IMAGES = 13, N_CALIB = 32 };

static rg_qmodel *qm;
static rg_rgm *model;
static int8_t *images, *want;
static size_t in_n, out_n;

static int setup(void **state)
{
    (void)state;
    rg_error err;
    rg_graph *g;
    if (rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &err)) return -1;
    rg_graph_init_params(g, 3);
    float *calib = malloc(sizeof(float) * 28 * 28 * N_CALIB);
    rg_rng r = rg_rng_keyed(7, 0, 0);
    for (int i = 0; i < 28 * 28 * N_CALIB; i++) calib[i] = rg_rng_normal(&r);
    rg_lower_config cfg = rg_lower_default();
    cfg.batch = 16;
    rg_status st = rg_quant_lower(g, calib, N_CALIB, &cfg, &qm, &err);
    free(calib);
    rg_graph_free(g);
    if (st || rg_rgm_from_qmodel(qm, 0.3f, 0.35f, &model, &err)) return -1;
    in_n = (size_t)28 * 28;
    out_n = 10;
    images = malloc(in_n * N_IMAGES);
    want = malloc(out_n * N_IMAGES);
    for (size_t i = 0; i < in_n * N_IMAGES; i++) images[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
    /* the specification: the reference table, one image at a time */
    rg_rt *rt;
    if (rg_rt_prepare(model, &rg_qk_ref, &rt, &err)) return -1;
    void *arena = malloc(rg_rt_arena_size(rt));
    for (int i = 0; i < N_IMAGES; i++) rg_rt_invoke(rt, arena, images + (size_t)i * in_n, want + (size_t)i * out_n);
    free(arena);
    rg_rt_free(rt);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rg_rgm_free(model);
    rg_qmodel_free(qm);
    free(images);
    free(want);
    return 0;
}

static size_t align64(size_t n)
{
    return (n + 63) / 64 * 64;
}

static void test_batch_equals_single(void **state)
{
    (void)state;
    const rg_isa levels[] = {RG_ISA_REF, RG_ISA_AVX2, RG_ISA_AVX512_VNNI};
    const rg_rt_options opts[] = {{1, 1}, {4, 1}, {13, 1}, {32, 1}, {1, 2}, {3, 2}, {5, 3}, {2, 7}, {16, 4}};
    int8_t *got = malloc(out_n * N_IMAGES);
    /* the images give different outputs (else a mixed-up order would pass) */
    int distinct = 0;
    for (int i = 1; i < N_IMAGES; i++) distinct += memcmp(want, want + (size_t)i * out_n, out_n) != 0;
    assert_true(distinct >= N_IMAGES / 2);
    for (int l = 0; l < 3; l++) {
        if (levels[l] > rg_cpu_isa_supported()) continue;
        const rg_qk_table *t = rg_qk_table_for(levels[l]);
        for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
            rg_rt *rt;
            CHECK(rg_rt_prepare_opts(model, t, &opts[k], &rt, &E));
            rg_rt_options back = rg_rt_options_get(rt);
            assert_int_equal(back.micro_batch, opts[k].micro_batch);
            assert_int_equal(back.threads, opts[k].threads);
            /* threads * (the plan times the micro-batch, then the scratch) */
            rg_rt_plan_stats s;
            rg_rt_plan_stats_get(rt, &s);
            size_t slot = align64(align64(s.arena) * (size_t)opts[k].micro_batch + s.scratch);
            assert_int_equal(rg_rt_arena_size(rt), slot * (size_t)opts[k].threads);
            size_t an = rg_rt_arena_size(rt);
            uint8_t *arena = rg_alloc_aligned(an, &E);
            for (int32_t n = 0; n <= N_IMAGES; n += N_IMAGES - 6) { /* 0, 7 and 13 images */
                for (size_t b = 0; b < an; b++) arena[b] = (uint8_t)(0x5A ^ (b * 13 + (size_t)n));
                memset(got, 0x77, out_n * N_IMAGES);
                rg_rt_invoke_batch(rt, arena, n, images, got);
                if (memcmp(got, want, out_n * (size_t)n)) {
                    print_error("%s, micro-batch %d, %d threads, %d images: differs from the reference\n", t->name,
                                (int)opts[k].micro_batch, (int)opts[k].threads, (int)n);
                    fail();
                }
                /* nothing written past the n outputs */
                for (size_t b = out_n * (size_t)n; b < out_n * N_IMAGES; b++) assert_int_equal(got[b], 0x77);
            }
            rg_free_aligned(arena);
            rg_rt_free(rt);
        }
    }
    free(got);
}

/* the float entry in batches gives rg_rt_invoke_float's values */
static void test_batch_float(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * in_n * N_IMAGES), *one = malloc(sizeof(float) * out_n),
          *all = malloc(sizeof(float) * out_n * N_IMAGES);
    rg_rng r = rg_rng_keyed(8, 0, 0);
    for (size_t i = 0; i < in_n * N_IMAGES; i++) x[i] = rg_rng_normal(&r);
    rg_rt *rt, *rt1;
    const rg_rt_options o = {4, 2};
    CHECK(rg_rt_prepare_opts(model, NULL, &o, &rt, &E));
    CHECK(rg_rt_prepare(model, NULL, &rt1, &E));
    void *arena = malloc(rg_rt_arena_size(rt)), *arena1 = malloc(rg_rt_arena_size(rt1));
    rg_rt_invoke_batch_float(rt, arena, N_IMAGES, x, all);
    for (int i = 0; i < N_IMAGES; i++) {
        rg_rt_invoke_float(rt1, arena1, x + (size_t)i * in_n, one);
        assert_memory_equal(one, all + (size_t)i * out_n, sizeof(float) * out_n);
    }
    free(arena), free(arena1), free(x), free(one), free(all);
    rg_rt_free(rt), rg_rt_free(rt1);
}

static void test_bad_options(void **state)
{
    (void)state;
    const rg_rt_options bad[] = {{0, 1}, {4097, 1}, {1, 0}, {1, 257}};
    const char *field[] = {"micro_batch", "micro_batch", "threads", "threads"};
    for (int i = 0; i < 4; i++) {
        rg_rt *rt = (rg_rt *)1;
        rg_error err = {0};
        assert_int_equal(rg_rt_prepare_opts(model, NULL, &bad[i], &rt, &err), RG_ERR_ARG);
        assert_null(rt);
        assert_non_null(strstr(err.msg, field[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_batch_float),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
