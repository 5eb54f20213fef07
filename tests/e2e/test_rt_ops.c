/* The ops of .rgm version 2 end to end: a lowered model using every one of
 * them (channel split and shuffle, multiply with a broadcast gate and
 * elementwise, hard-swish and sigmoid lookup tables, concat with rescaling,
 * a standalone clamp, and a convolution with equalization's per-channel
 * clamp) is built directly as an rg_qmodel (the float lowering does not
 * produce these ops), its integer parameters derived by
 * rg_qmodel_requantize_op as the lowering would (rgt_ops_model,
 * tests/support/qmodel_fixture.h), then:
 *   - written to .rgm and loaded back: every new field and array survives,
 *     and serializing the loaded model gives the same bytes;
 *   - run by the runtime on every kernel table this CPU runs: the output and
 *     every intermediate tensor equal rg_qmodel_run's (the reference
 *     executor) bit for bit, with the arena filled with garbage first;
 *   - the per-channel clamp binds (the test could not pass without it);
 *   - the int8 model follows the float one (rg_qmodel_run_ref) closely;
 *   - regain rt-info describes it, and refuses it (exit 4, the op and the
 *     field named) once a version 2 field is out of range. */
#include "test_support.h"
#include "qmodel_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "regain/cpu.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/rt.h"
#include "regain/rt_qmodel.h"
#include "rt/kernels/qk.h"

enum { N_IMAGES = 6 };

typedef struct {
    const rg_qmodel *qm;
    const int8_t *qarena; /* rg_qmodel_run's, N_IMAGES images, every tensor kept */
    int image, mismatches, clip_hits;
} trace_state;

static void trace_op(void *user, int32_t op, const int8_t *y)
{
    trace_state *s = user;
    const rg_qmodel *qm = s->qm;
    const rg_qtensor *t = &qm->tensors[qm->ops[op].out];
    size_t n = (size_t)t->h * t->w * t->c;
    const int8_t *want = rg_qmodel_tensor(qm, (int8_t *)s->qarena, N_IMAGES, qm->ops[op].out) + (size_t)s->image * n;
    if (memcmp(y, want, n) != 0) {
        if (!s->mismatches) print_error("op %d (%s) differs from rg_qmodel_run\n", (int)op, qm->ops[op].name);
        s->mismatches++;
    }
    const rg_qop *o = &qm->ops[op];
    if (o->act_max_c) /* the per-channel clamp binds somewhere, and nothing is above it */
        for (size_t i = 0; i < n; i++) {
            int32_t c = (int32_t)(i % (size_t)t->c);
            assert_true(y[i] <= o->act_max_c[c]);
            s->clip_hits += o->act_max_c[c] < o->act_max && y[i] == o->act_max_c[c];
        }
}

static void test_every_new_op(void **state)
{
    (void)state;
    rg_qmodel *qm = rgt_ops_model();
    int kinds[RG_QOP_N_KINDS] = {0};
    for (int32_t i = 0; i < qm->n_ops; i++) kinds[qm->ops[i].kind]++;
    for (int k = RG_QOP_CONCAT; k < RG_QOP_N_KINDS; k++) assert_true(kinds[k] > 0);
    assert_non_null(qm->ops[0].act_max_c);

    /* .rgm round trip */
    const char *path = rgt_in_root("ops.rgm");
    CHECK(rg_rgm_write_qmodel(qm, 0.25f, 0.5f, path, &E));
    rg_rgm *m, *direct;
    CHECK(rg_rgm_load(path, &m, &E));
    assert_int_equal(m->version, RG_RGM_VERSION);
    assert_int_equal(m->n_ops, qm->n_ops);
    for (int32_t i = 0; i < qm->n_ops; i++) {
        const rg_qop *s = &qm->ops[i];
        const rg_rgm_op *o = &m->ops[i];
        assert_int_equal((int)o->kind, (int)s->kind);
        assert_string_equal(o->name, s->name);
        for (int32_t k = 0; k < rg_rgm_op_n_in(o); k++) assert_int_equal(o->in[k], s->in[k]);
        switch (s->kind) {
        case RG_QOP_SPLIT: assert_int_equal(o->ch_begin, s->ch_begin); break;
        case RG_QOP_SHUFFLE: assert_int_equal(o->groups, s->groups); break;
        case RG_QOP_MUL:
            assert_int_equal(o->mul_multiplier, s->mul.multiplier);
            assert_int_equal(o->mul_shift, s->mul.shift);
            assert_int_equal(o->act_min, s->mul.act_min);
            break;
        case RG_QOP_LUT:
            assert_int_equal(o->lut_fn, (int32_t)s->lut_fn);
            assert_memory_equal(o->lut, s->lut, 256);
            break;
        case RG_QOP_CONCAT:
            assert_int_equal(o->n_in, 2);
            for (int k = 0; k < 2; k++) {
                assert_int_equal(o->cat_multipliers[k], s->cat_multipliers[k]);
                assert_int_equal(o->cat_shifts[k], s->cat_shifts[k]);
            }
            break;
        case RG_QOP_CONV: assert_memory_equal(o->act_max_c, s->act_max_c, sizeof(int32_t) * 8); break;
        default: break;
        }
    }
    void *b1, *b2;
    size_t s1, s2;
    CHECK(rg_rgm_from_qmodel(qm, 0.25f, 0.5f, &direct, &E));
    CHECK(rg_rgm_serialize(direct, &b1, &s1, &E));
    CHECK(rg_rgm_serialize(m, &b2, &s2, &E));
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    free(b1), free(b2);
    rg_rgm_free(direct);

    /* the reference executor on N_IMAGES random images */
    const size_t in_n = 6 * 6 * 4, out_n = 5;
    int8_t x[N_IMAGES * 6 * 6 * 4], want[N_IMAGES * 5], got[5];
    rg_rng r = rg_rng_keyed(3, 0, 0);
    for (size_t i = 0; i < sizeof x; i++) x[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
    int8_t *qarena = malloc(rg_qmodel_arena_bytes(qm, N_IMAGES));
    CHECK(rg_qmodel_run(qm, qarena, x, N_IMAGES, want, &E));

    const rg_isa levels[] = {RG_ISA_REF, RG_ISA_AVX2, RG_ISA_AVX512_VNNI};
    for (int l = 0; l < 3; l++) {
        if (levels[l] > rg_cpu_isa_supported()) continue;
        rg_rt *rt;
        CHECK(rg_rt_prepare(m, rg_qk_table_for(levels[l]), &rt, &E));
        size_t an = rg_rt_arena_size(rt);
        uint8_t *arena = rg_alloc_aligned(an, &E);
        trace_state ts = {qm, qarena, 0, 0, 0};
        for (int i = 0; i < N_IMAGES; i++) {
            for (size_t k = 0; k < an; k++) arena[k] = (uint8_t)(0x5A ^ (k * 13 + (size_t)i));
            ts.image = i;
            rg_rt_invoke_trace(rt, arena, x + (size_t)i * in_n, got, trace_op, &ts);
            assert_memory_equal(got, want + (size_t)i * out_n, out_n);
        }
        assert_int_equal(ts.mismatches, 0);
        print_message("%s: per-channel clamp reached %d times\n", rg_rt_table_name(rt), ts.clip_hits);
        assert_true(ts.clip_hits > 0);
        /* the lookup tables run in place over inputs that die there */
        assert_true(rg_rt_tensor_in_place(rt, 4) || rg_rt_tensor_in_place(rt, 6));
        rg_free_aligned(arena);
        rg_rt_free(rt);
    }

    /* the int8 model approximates the float model it stands for */
    float *fa = malloc(sizeof(float) * rg_qmodel_float_arena_floats(qm, N_IMAGES)), fx[N_IMAGES * 6 * 6 * 4];
    const rg_qtensor *ti = &qm->tensors[0], *to = &qm->tensors[13];
    rg_q_dequantize(x, sizeof x, ti->q, fx);
    CHECK(rg_qmodel_run_ref(qm, fa, fx, N_IMAGES, &E));
    const float *fy = rg_qmodel_ftensor(qm, fa, N_IMAGES, 13);
    double worst = 0, spread = 0;
    for (size_t i = 0; i < N_IMAGES * out_n; i++) {
        double q = (double)to->q.scale * (want[i] - to->q.zero_point);
        worst = fmax(worst, fabs(q - fy[i]));
        spread = fmax(spread, fabs(fy[i]));
    }
    print_message("int8 against float: largest difference %.3f (output scale %.3f, largest |logit| %.3f)\n", worst,
                  (double)to->q.scale, spread);
    assert_true(spread > 10 * to->q.scale); /* the logits are not all near 0 */
    assert_true(worst < 6 * to->q.scale); /* measured: 3.8 steps after ten ops */
    free(fa);

    char out[1 << 15];
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, ".rgm version 3", "hswish table", "rt-info ops.rgm");
    assert_non_null(strstr(out, "sigmoid table"));
    assert_non_null(strstr(out, "per-channel clamp"));
    assert_non_null(strstr(out, "channels [4, 8)"));
    assert_non_null(strstr(out, "2 groups"));
    assert_non_null(strstr(out, "x 1x1x4 (broadcast)"));
    /* a bad version 2 field behind a valid checksum: exit 4, the op and the
     * field named (the table function of op 3, the hswish lut) */
    size_t size;
    uint8_t *bytes = rgt_read_file(path, &size);
    uint64_t ops = 0;
    for (int k = 0; k < 8; k++) ops |= (uint64_t)bytes[56 + k] << (8 * k);
    bytes[ops + 3 * 320 + 256] = 9;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), bytes + 20, (uInt)(size - 20));
    for (int k = 0; k < 4; k++) bytes[16 + k] = (uint8_t)(crc >> (8 * k));
    rgt_write_file(rgt_in_root("badfn.rgm"), bytes, size);
    free(bytes);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 4, "op 3 (hswish)", "lut_fn 9", "rt-info badfn.rgm");
    free(qarena);
    rg_rgm_free(m);
    rg_qmodel_free(qm);
}

/* rg_qmodel_requantize_op refuses a split or shuffle that would change the
 * values, and the old int8 container refuses the new ops with a pointer to
 * .rgm. */
static void test_refusals(void **state)
{
    (void)state;
    rg_qmodel *qm = rgt_ops_model();
    rg_error err = {0};
    qm->tensors[2].q.zero_point = -127;
    assert_int_equal(rg_qmodel_requantize_op(qm, 1, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "split_a"));
    assert_non_null(strstr(err.msg, "must equal"));
    qm->tensors[2].q.zero_point = -128;
    /* a mul whose zero points no longer match its tensors is not exported */
    qm->tensors[7].q.zero_point = -89;
    rg_rgm *m;
    assert_int_equal(rg_rgm_from_qmodel(qm, 0, 1, &m, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "excite"));
    rg_qmodel_free(qm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_new_op),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
