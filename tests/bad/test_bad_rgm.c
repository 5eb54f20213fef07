/* Malformed .rgm model files (regain/rt.h): every truncation, every flipped
 * byte, wrong magic and version, and fields out of range behind a valid
 * checksum (recomputed here) must be rejected with RG_ERR_FORMAT and a
 * message naming the file and the field, never read out of bounds (this
 * program runs under AddressSanitizer and UBSan). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "regain/rt.h"

/* A small valid model: 6x6x2 -> conv 3x3 (4) -> clamp -> gap -> fc (3). */
static int8_t w_conv[4 * 3 * 3 * 2], w_fc[3 * 4];
static int32_t b4[4], m4[4], s4[4], b3[3], m3[3], s3[3];

static rg_rgm *small_model(rg_rgm *m, rg_rgm_tensor *t, rg_rgm_op *o)
{
    for (size_t i = 0; i < sizeof w_conv; i++) w_conv[i] = (int8_t)((int)(i * 37 % 255) - 127);
    for (size_t i = 0; i < sizeof w_fc; i++) w_fc[i] = (int8_t)((int)(i * 53 % 255) - 127);
    for (int i = 0; i < 4; i++) b4[i] = 100 * i - 150, m4[i] = (1 << 30) + i, s4[i] = -6;
    for (int i = 0; i < 3; i++) b3[i] = 7 * i, m3[i] = (1 << 30) + 3 * i, s3[i] = -4;
    t[0] = (rg_rgm_tensor){6, 6, 2, {0.02f, -3}};
    t[1] = (rg_rgm_tensor){6, 6, 4, {0.05f, 2}};
    t[2] = (rg_rgm_tensor){6, 6, 4, {0.05f, 2}};
    t[3] = (rg_rgm_tensor){1, 1, 4, {0.04f, 1}};
    t[4] = (rg_rgm_tensor){1, 1, 3, {0.1f, 0}};
    memset(o, 0, 4 * sizeof *o);
    o[0] = (rg_rgm_op){.kind = RG_RT_CONV, .name = "conv", .in = {0, -1}, .out = 1, .k_h = 3, .k_w = 3, .stride = 1,
                       .pad = 1, .out_c = 4, .act_min = -128, .act_max = 127, .weights = w_conv, .bias = b4,
                       .multipliers = m4, .shifts = s4};
    o[1] = (rg_rgm_op){.kind = RG_RT_CLAMP, .name = "relu", .in = {1, -1}, .out = 2, .act_min = 2, .act_max = 127};
    rg_q_gap_params gp;
    CHECK(rg_q_gap_prepare(1, 6, 6, 4, t[2].q, t[3].q, &gp, &E));
    o[2] = (rg_rgm_op){.kind = RG_RT_GAP, .name = "gap", .in = {2, -1}, .out = 3, .act_min = -128, .act_max = 127,
                       .gap_multiplier = gp.multiplier, .gap_shift = gp.shift};
    o[3] = (rg_rgm_op){.kind = RG_RT_FC, .name = "fc", .in = {3, -1}, .out = 4, .out_c = 3, .act_min = -128,
                       .act_max = 127, .weights = w_fc, .bias = b3, .multipliers = m3, .shifts = s3};
    *m = (rg_rgm){.tensors = t, .n_tensors = 5, .ops = o, .n_ops = 4, .input = 0, .output = 4, .mean = 0.5f,
                  .std = 0.25f};
    return m;
}

static uint8_t *good;
static size_t good_size;

static int setup(void **state)
{
    (void)state;
    static rg_rgm m;
    static rg_rgm_tensor t[5];
    static rg_rgm_op o[4];
    void *data;
    CHECK(rg_rgm_serialize(small_model(&m, t, o), &data, &good_size, &E));
    good = data;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(good);
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
static void reseal(uint8_t *f, size_t n)
{
    put32(f + 16, (uint32_t)crc32(crc32(0L, Z_NULL, 0), f + 20, (uInt)(n - 20)));
}

/* Parses f and expects RG_ERR_FORMAT with a message holding the name and every word. */
static void expect_bad(const uint8_t *f, size_t n, const char *word, const char *word2)
{
    rg_rgm *m = (rg_rgm *)1;
    rg_error err = {0};
    rg_status st = rg_rgm_parse(f, n, "bad.rgm", &m, &err);
    if (st != RG_ERR_FORMAT || !strstr(err.msg, "bad.rgm") || (word && !strstr(err.msg, word)) ||
        (word2 && !strstr(err.msg, word2)))
        print_error("expected a format error with '%s' '%s', got %d: %s\n", word ? word : "", word2 ? word2 : "",
                    (int)st, err.msg);
    assert_int_equal(st, RG_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(err.msg, "bad.rgm"));
    if (word) assert_non_null(strstr(err.msg, word));
    if (word2) assert_non_null(strstr(err.msg, word2));
}

static void test_good_loads(void **state)
{
    (void)state;
    rg_rgm *m;
    CHECK(rg_rgm_parse(good, good_size, "good.rgm", &m, &E));
    assert_int_equal(m->n_ops, 4);
    rg_rt *rt;
    CHECK(rg_rt_prepare(m, NULL, &rt, &E));
    int8_t *arena = malloc(rg_rt_arena_size(rt)), x[72] = {0}, y[3];
    rg_rt_invoke(rt, arena, x, y);
    assert_true(rg_rt_tensor_in_place(rt, 2)); /* the clamp */
    free(arena);
    rg_rt_free(rt);
    rg_rgm_free(m);
}

static void test_truncated(void **state)
{
    (void)state;
    for (size_t n = 0; n < good_size; n++) {
        uint8_t *f = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
        memcpy(f, good, n);
        expect_bad(f, n, "truncated", NULL);
        free(f);
    }
    uint8_t *f = malloc(good_size + 1);
    memcpy(f, good, good_size);
    f[good_size] = 0;
    expect_bad(f, good_size + 1, "trailing data", NULL);
    free(f);
}

static void test_flipped_bytes(void **state)
{
    (void)state;
    uint8_t *f = malloc(good_size);
    for (size_t i = 0; i < good_size; i++) {
        memcpy(f, good, good_size);
        f[i] ^= (uint8_t)(1u << (i % 8));
        const char *word = i < 4 ? "magic" : i < 8 ? "version" : i < 16 ? "file_size" : "crc32";
        expect_bad(f, good_size, word, NULL);
    }
    free(f);
}

static void test_magic_version(void **state)
{
    (void)state;
    uint8_t *f = malloc(good_size);
    memcpy(f, good, good_size);
    memcpy(f, "GGUF", 4);
    expect_bad(f, good_size, "magic", NULL);
    memcpy(f, good, good_size);
    put32(f + 4, 2);
    expect_bad(f, good_size, "version", "2");
    free(f);
}

/* A 32-bit field at off set to v, the checksum recomputed. */
static void bad_field(size_t off, uint32_t v, const char *word, const char *word2)
{
    uint8_t *f = malloc(good_size);
    memcpy(f, good, good_size);
    put32(f + off, v);
    reseal(f, good_size);
    expect_bad(f, good_size, word, word2);
    free(f);
}

static void test_fields_behind_valid_checksum(void **state)
{
    (void)state;
    const size_t ops = (size_t)get64(good + 56), t0 = (size_t)get64(good + 48), blob = (size_t)get64(good + 64);
    const size_t conv = ops, fc = ops + 3 * 192;
    bad_field(20, 64, "header_size", NULL);
    bad_field(24, 70000, "n_tensors", NULL);
    bad_field(24, 0, "n_tensors", NULL);
    bad_field(28, 0, "n_ops", NULL);
    bad_field(28, 9, "ops_offset", NULL); /* more ops than the file holds */
    bad_field(32, 9, "input", NULL);
    bad_field(36, 0, "output", NULL);
    float nan = NAN, zero = 0;
    uint32_t u;
    memcpy(&u, &nan, 4);
    bad_field(40, u, "normalization", NULL);
    memcpy(&u, &zero, 4);
    bad_field(44, u, "normalization", NULL);
    bad_field(48, 8, "tensors_offset", NULL);
    bad_field(48, 0xFFFFFF00u, "tensors_offset", NULL);
    bad_field(56, (uint32_t)t0, "ops_offset", NULL);
    bad_field(64, (uint32_t)blob + 4, "blob_offset", NULL);
    bad_field(64, (uint32_t)blob + 64, "blob_size", NULL);
    bad_field(72, 5, "blob_size", NULL);
    /* tensors */
    bad_field(t0 + 32 + 0, 0, "tensor 1", "shape");
    bad_field(t0 + 32 + 8, 100000, "tensor 1", "shape");
    bad_field(t0 + 32 + 4, 5, "conv", "output"); /* conv output width no longer what the window gives */
    memcpy(&u, &nan, 4);
    bad_field(t0 + 12, u, "tensor 0", "scale");
    bad_field(t0 + 16, 300, "tensor 0", "zero_point");
    bad_field(t0 + 24, 1, "tensor 0", "reserved");
    /* ops */
    bad_field(conv, 42, "op 0", "kind");
    bad_field(conv + 52, 99, "op 0", "in[0]");
    bad_field(conv + 56, 3, "op 0", "in[1]");
    bad_field(conv + 60, (uint32_t)-5, "op 0", "out");
    bad_field(conv + 60, 0, "op 0", "written twice");
    bad_field(conv + 52, 2, "op 0", "read before");
    bad_field(conv + 64, 0, "op 0", "kernel");
    bad_field(conv + 72, 0, "conv", "stride");
    bad_field(conv + 76, 3, "conv", "pad");
    bad_field(conv + 80, 5, "conv", NULL); /* out_c: the arrays no longer fit or match */
    bad_field(conv + 84, 200, "conv", "act_min");
    bad_field(conv + 88, 200, "conv", "act_max");
    bad_field(conv + 148, 1, "op 0", "reserved");
    bad_field(conv + 152, 1000000, "op 0", "weights_offset");
    bad_field(conv + 152, 2, "op 0", "weights_offset"); /* every array 4-byte aligned */
    bad_field(conv + 160, 3, "op 0", "bias_offset");
    bad_field(conv + 168, (uint32_t)(good_size - blob - 4), "op 0", "multipliers_offset");
    /* a name without its NUL */
    uint8_t *f = malloc(good_size);
    memcpy(f, good, good_size);
    memset(f + fc + 4, 'a', RG_RGM_NAME_MAX);
    reseal(f, good_size);
    expect_bad(f, good_size, "op 3", "name");
    free(f);
}

static void test_parameters(void **state)
{
    (void)state;
    const size_t ops = (size_t)get64(good + 56), blob = (size_t)get64(good + 64);
    const size_t conv = ops, clamp = ops + 192, gap = ops + 2 * 192, fc = ops + 3 * 192;
    size_t mult = blob + (size_t)get64(good + conv + 168), shift = blob + (size_t)get64(good + conv + 176);
    bad_field(mult + 4, 0x80000000u, "conv", "multipliers[1]");
    bad_field(shift + 8, 31, "conv", "shifts[2]");
    bad_field(shift, (uint32_t)-32, "conv", "shifts[0]");
    bad_field(clamp + 84, (uint32_t)-129, "relu", "act_min");
    bad_field(gap + 52 + 4 * 22, (uint32_t)-1, "gap", NULL);
    bad_field(fc + 80, 4, "fc", "out_c");
    bad_field(fc + 168, 0xFFFFFFFFu, "fc", "multipliers_offset");
    bad_field(clamp + 152, 0, "relu", "weights_offset"); /* a clamp has no weights */
    /* fc without weights */
    uint8_t *f = malloc(good_size);
    memcpy(f, good, good_size);
    memset(f + fc + 152, 0xff, 8);
    reseal(f, good_size);
    expect_bad(f, good_size, "fc", "weights missing");
    free(f);
}

static void test_files(void **state)
{
    (void)state;
    char dir[256], path[300];
    rgt_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cut.rgm", dir);
    rgt_write_file(path, good, good_size / 2);
    rg_rgm *m;
    rg_error err = {0};
    assert_int_equal(rg_rgm_load(path, &m, &err), RG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "truncated"));
    snprintf(path, sizeof path, "%s/missing.rgm", dir);
    assert_int_equal(rg_rgm_load(path, &m, &err), RG_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.rgm"));
    /* an invalid model is never written */
    rg_rgm mm;
    rg_rgm_tensor t[5];
    rg_rgm_op o[4];
    small_model(&mm, t, o);
    o[3].in[0] = 7;
    snprintf(path, sizeof path, "%s/w.rgm", dir);
    assert_int_equal(rg_rgm_write(&mm, path, &err), RG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "in[0]"));
    assert_int_equal(access(path, F_OK), -1);
    rgt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_loads),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_magic_version),
        cmocka_unit_test(test_fields_behind_valid_checksum),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
