/* Malformed .rgm model files (regain/rt.h): every truncation, every flipped
 * byte, wrong magic and version, and fields out of range behind a valid
 * checksum (recomputed here) must be rejected with RG_ERR_FORMAT and a
 * message naming the file and the field, never read out of bounds (this
 * program runs under AddressSanitizer and UBSan). Two models: a small one
 * with the version 1 kinds, and one with every kind and field version 2
 * added (concat, split, shuffle, mul, lut, a per-channel clamp). A version
 * 1 file (written by the version 1 writer: the fuzzing corpus's
 * every-kind.rgm) still loads and runs. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "regain/rt.h"

#define OPB 320 /* op record bytes, version 2 */

/* A small valid model: 6x6x2 -> conv 3x3 (4) -> clamp -> gap -> fc (3). */
static int8_t w_conv[4 * 3 * 3 * 2], w_fc[3 * 4];
static int32_t b4[4], m4[4], s4[4], b3[3], m3[3], s3[3];
static float f3[3] = {0.01f, 0.02f, 0.5f}; /* the fc's fp32 scales (version 3) */

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
                       .act_max = 127, .weights = w_fc, .bias = b3, .multipliers = m3, .shifts = s3, .scales = f3};
    *m = (rg_rgm){.tensors = t, .n_tensors = 5, .ops = o, .n_ops = 4, .input = 0, .output = 4, .mean = 0.5f,
                  .std = 0.25f};
    return m;
}

/* Every version 2 kind: 4x4x4 -> pw conv (6, per-channel clamp) -> split
 * channels [4, 6) -> hswish lut -> gap -> mul (broadcast gate) -> concat
 * with the conv output -> shuffle (2 groups). */
static int8_t w_pw[6 * 4], table[256];
static int32_t b6[6], m6[6], s6[6], amc6[6] = {100, 50, 0, -50, 127, 10};

static rg_rgm *ops_model(rg_rgm *m, rg_rgm_tensor *t, rg_rgm_op *o)
{
    for (size_t i = 0; i < sizeof w_pw; i++) w_pw[i] = (int8_t)((int)(i * 29 % 255) - 127);
    for (int i = 0; i < 256; i++) table[i] = (int8_t)(i / 2 - 64);
    for (int i = 0; i < 6; i++) b6[i] = 40 * i - 100, m6[i] = (1 << 30) + 7 * i, s6[i] = -5;
    t[0] = (rg_rgm_tensor){4, 4, 4, {0.02f, -3}};
    t[1] = (rg_rgm_tensor){4, 4, 6, {0.05f, -128}};
    t[2] = (rg_rgm_tensor){4, 4, 2, {0.05f, -128}};
    t[3] = (rg_rgm_tensor){4, 4, 2, {0.03f, 0}};
    t[4] = (rg_rgm_tensor){1, 1, 2, {0.03f, 0}};
    t[5] = (rg_rgm_tensor){4, 4, 2, {0.04f, 1}};
    t[6] = (rg_rgm_tensor){4, 4, 8, {0.05f, -128}};
    t[7] = (rg_rgm_tensor){4, 4, 8, {0.05f, -128}};
    memset(o, 0, 7 * sizeof *o);
    o[0] = (rg_rgm_op){.kind = RG_RT_CONV, .name = "pw", .in = {0, -1}, .out = 1, .k_h = 1, .k_w = 1, .stride = 1,
                       .out_c = 6, .act_min = -128, .act_max = 127, .weights = w_pw, .bias = b6, .multipliers = m6,
                       .shifts = s6, .act_max_c = amc6};
    o[1] = (rg_rgm_op){.kind = RG_RT_SPLIT, .name = "split", .in = {1, -1}, .out = 2, .ch_begin = 4};
    o[2] = (rg_rgm_op){.kind = RG_RT_LUT, .name = "hswish", .in = {2, -1}, .out = 3, .lut_fn = RG_Q_LUT_HSWISH,
                       .lut = table};
    o[3] = (rg_rgm_op){.kind = RG_RT_GAP, .name = "gap", .in = {3, -1}, .out = 4, .act_min = -128, .act_max = 127,
                       .gap_multiplier = 1 << 30, .gap_shift = 1};
    o[4] = (rg_rgm_op){.kind = RG_RT_MUL, .name = "mul", .in = {3, 4}, .out = 5, .act_min = -128, .act_max = 127,
                       .mul_multiplier = 1 << 30, .mul_shift = -3};
    o[5] = (rg_rgm_op){.kind = RG_RT_CONCAT, .name = "cat", .in = {1, 5, -1, -1}, .n_in = 2, .out = 6,
                       .cat_multipliers = {1 << 30, (1 << 30) + 5}, .cat_shifts = {1, 0}};
    o[6] = (rg_rgm_op){.kind = RG_RT_SHUFFLE, .name = "shuffle", .in = {6, -1}, .out = 7, .groups = 2};
    *m = (rg_rgm){.tensors = t, .n_tensors = 8, .ops = o, .n_ops = 7, .input = 0, .output = 7, .mean = 0.5f,
                  .std = 0.25f};
    return m;
}

static uint8_t *good, *good2;
static size_t good_size, good2_size;

static int setup(void **state)
{
    (void)state;
    static rg_rgm m, m2;
    static rg_rgm_tensor t[5], t2[8];
    static rg_rgm_op o[4], o2[7];
    void *data;
    CHECK(rg_rgm_serialize(small_model(&m, t, o), &data, &good_size, &E));
    good = data;
    CHECK(rg_rgm_serialize(ops_model(&m2, t2, o2), &data, &good2_size, &E));
    good2 = data;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(good);
    free(good2);
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
    assert_int_equal(m->version, 3);
    assert_null(m->ops[0].scales);
    assert_true(m->ops[3].scales[2] == 0.5f);
    assert_string_equal(rg_rgm_requant_name(m), "fp32");
    rg_rt *rt;
    CHECK(rg_rt_prepare(m, NULL, &rt, &E));
    int8_t *arena = malloc(rg_rt_arena_size(rt)), x[72] = {0}, y[3];
    rg_rt_invoke(rt, arena, x, y);
    assert_true(rg_rt_tensor_in_place(rt, 2)); /* the clamp */
    free(arena);
    rg_rt_free(rt);
    rg_rgm_free(m);
    /* the version 2 model prepares and runs on the reference table */
    CHECK(rg_rgm_parse(good2, good2_size, "good2.rgm", &m, &E));
    assert_int_equal(m->version, 3);
    assert_string_equal(rg_rgm_requant_name(m), "fixed");
    assert_int_equal(m->ops[0].act_max_c[3], -50);
    assert_int_equal(m->ops[2].lut[200], table[200]);
    CHECK(rg_rt_prepare(m, NULL, &rt, &E));
    int8_t *arena2 = malloc(rg_rt_arena_size(rt)), x2[64] = {0}, y2[128];
    rg_rt_invoke(rt, arena2, x2, y2);
    free(arena2);
    rg_rt_free(rt);
    rg_rgm_free(m);
}

/* A version 1 file, as the version 1 writer wrote it, loads and runs; a
 * version 2 kind inside a version 1 file is refused. */
static void test_version_1(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/../fuzz/corpus/every-kind.rgm", rgt_env("REGAIN_GOLDEN_DIR"));
    size_t n;
    uint8_t *f = rgt_read_file(path, &n);
    assert_int_equal(get32(f + 4), 1);
    rg_rgm *m;
    CHECK(rg_rgm_parse(f, n, "v1.rgm", &m, &E));
    assert_int_equal(m->version, 1);
    rg_rt *rt;
    CHECK(rg_rt_prepare(m, NULL, &rt, &E));
    const rg_rgm_tensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    int8_t *arena = malloc(rg_rt_arena_size(rt)), *x = calloc((size_t)ti->h * ti->w * ti->c, 1),
           *y = malloc((size_t)to->h * to->w * to->c);
    rg_rt_invoke(rt, arena, x, y);
    free(arena), free(x), free(y);
    rg_rt_free(rt);
    /* written again, it becomes a version 3 file of the same model */
    void *data;
    size_t size;
    CHECK(rg_rgm_serialize(m, &data, &size, &E));
    rg_rgm *m2;
    CHECK(rg_rgm_parse(data, size, "v3.rgm", &m2, &E));
    assert_int_equal(m2->version, 3);
    assert_int_equal(m2->n_ops, m->n_ops);
    for (int32_t i = 0; i < m->n_ops; i++) assert_int_equal((int)m2->ops[i].kind, (int)m->ops[i].kind);
    free(data);
    rg_rgm_free(m2);
    rg_rgm_free(m);
    size_t ops = (size_t)get64(f + 56);
    put32(f + ops, RG_RT_MUL);
    reseal(f, n);
    expect_bad(f, n, "kind 11 unknown", "version 1");
    free(f);
}

static void truncations(const uint8_t *src, size_t size)
{
    for (size_t n = 0; n < size; n++) {
        uint8_t *f = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
        memcpy(f, src, n);
        expect_bad(f, n, "truncated", NULL);
        free(f);
    }
    uint8_t *f = malloc(size + 1);
    memcpy(f, src, size);
    f[size] = 0;
    expect_bad(f, size + 1, "trailing data", NULL);
    free(f);
}

static void test_truncated(void **state)
{
    (void)state;
    truncations(good, good_size);
    truncations(good2, good2_size);
}

static void flips(const uint8_t *src, size_t size)
{
    uint8_t *f = malloc(size);
    for (size_t i = 0; i < size; i++) {
        memcpy(f, src, size);
        f[i] ^= (uint8_t)(1u << (i % 8));
        const char *word = i < 4 ? "magic" : i < 8 ? "version" : i < 16 ? "file_size" : "crc32";
        expect_bad(f, size, word, NULL);
    }
    free(f);
}

static void test_flipped_bytes(void **state)
{
    (void)state;
    flips(good, good_size);
    flips(good2, good2_size);
}

static void test_magic_version(void **state)
{
    (void)state;
    uint8_t *f = malloc(good_size);
    memcpy(f, good, good_size);
    memcpy(f, "GGUF", 4);
    expect_bad(f, good_size, "magic", NULL);
    memcpy(f, good, good_size);
    put32(f + 4, 4);
    expect_bad(f, good_size, "version", "4");
    put32(f + 4, 0);
    expect_bad(f, good_size, "version", "versions 1 to 3");
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
    const size_t conv = ops, fc = ops + 3 * OPB;
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
    bad_field(conv + 148, 2, "op 0", "n_in");
    bad_field(conv + 260, 1, "op 0", "scales_offset");
    bad_field(conv + 268, 0x3f800000u, "op 0", "in1_scale"); /* an add's fp32 scale on a conv */
    bad_field(conv + 276, 1, "op 0", "reserved");
    bad_field(conv + OPB - 4, 1, "op 0", "reserved");
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
    const size_t conv = ops, clamp = ops + OPB, gap = ops + 2 * OPB, fc = ops + 3 * OPB;
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

/* good2's field at off set to v (32 bits), the checksum recomputed */
static void bad_field2(size_t off, uint32_t v, const char *word, const char *word2)
{
    uint8_t *f = malloc(good2_size);
    memcpy(f, good2, good2_size);
    put32(f + off, v);
    reseal(f, good2_size);
    expect_bad(f, good2_size, word, word2);
    free(f);
}

/* the fields and arrays of version 2, each out of range */
static void test_version_2_fields(void **state)
{
    (void)state;
    const size_t ops = (size_t)get64(good2 + 56), t0 = (size_t)get64(good2 + 48), blob = (size_t)get64(good2 + 64);
    const size_t pw = ops, split = ops + OPB, lut = ops + 2 * OPB, mul = ops + 4 * OPB, cat = ops + 5 * OPB,
                 shuffle = ops + 6 * OPB;
    /* inputs: n_in and the slots beyond it */
    bad_field2(cat + 148, 5, "op 5 (cat)", "n_in 5");
    bad_field2(cat + 148, 1, "op 5 (cat)", "n_in 1");
    bad_field2(cat + 148, 3, "op 5 (cat)", "in[2]"); /* a third input that is -1 */
    bad_field2(mul + 148, 1, "op 4 (mul)", "n_in");
    bad_field2(pw + 200, 3, "op 0 (pw)", "in[2]");
    bad_field2(cat + 204, 0, "op 5 (cat)", "in[3]");
    bad_field2(mul + 56, (uint32_t)-1, "op 4 (mul)", "in[1]");
    /* concat */
    bad_field2(cat + 212, (uint32_t)-5, "op 5 (cat)", "cat[1]_multiplier");
    bad_field2(cat + 224, 31, "op 5 (cat)", "cat[0]_shift");
    bad_field2(cat + 216, 7, "op 5 (cat)", "cat[2]"); /* an input the concat does not have */
    bad_field2(pw + 208, 7, "op 0 (pw)", "cat[0]");
    bad_field2(t0 + 6 * 32 + 8, 9, "op 5 (cat)", "channels"); /* output channels != sum of the inputs' */
    /* split */
    bad_field2(split + 240, 5, "op 1 (split)", "ch_begin 5");
    bad_field2(split + 240, (uint32_t)-1, "op 1 (split)", "ch_begin -1");
    bad_field2(pw + 240, 1, "op 0 (pw)", "ch_begin");
    bad_field2(t0 + 2 * 32 + 16, (uint32_t)-127, "op 1 (split)", "zero point");
    /* shuffle */
    bad_field2(shuffle + 244, 3, "op 6 (shuffle)", "groups 3");
    bad_field2(shuffle + 244, 0, "op 6 (shuffle)", "groups 0");
    bad_field2(lut + 244, 2, "op 2 (hswish)", "groups");
    /* mul */
    bad_field2(mul + 248, (uint32_t)-1, "op 4 (mul)", "mul_multiplier");
    bad_field2(mul + 252, 40, "op 4 (mul)", "mul_shift");
    bad_field2(mul + 84, 200, "op 4 (mul)", "act_min");
    bad_field2(split + 248, 5, "op 1 (split)", "mul_multiplier");
    /* lut */
    bad_field2(lut + 256, 3, "op 2 (hswish)", "lut_fn 3");
    bad_field2(lut + 256, 0, "op 2 (hswish)", "lut_fn 0");
    bad_field2(pw + 256, 1, "op 0 (pw)", "lut_fn");
    bad_field2(lut + 192, 3, "op 2 (hswish)", "lut_offset");            /* unaligned */
    bad_field2(lut + 192, (uint32_t)(good2_size - blob - 128), "op 2 (hswish)", "lut_offset"); /* past the blob */
    bad_field2(pw + 192, 0, "op 0 (pw)", "lut_offset given");
    uint8_t *f = malloc(good2_size);
    memcpy(f, good2, good2_size);
    memset(f + lut + 192, 0xff, 8);
    reseal(f, good2_size);
    expect_bad(f, good2_size, "op 2 (hswish)", "lut missing");
    free(f);
    /* the per-channel clamp */
    size_t amc = blob + (size_t)get64(good2 + pw + 184);
    bad_field2(amc + 4 * 2, 128, "op 0 (pw)", "act_max_c[2]");
    bad_field2(pw + 84, 60, "op 0 (pw)", "act_max_c[1]"); /* act_min 60 above act_max_c[1] = 50 */
    bad_field2(pw + 184, 5, "op 0 (pw)", "act_max_c_offset");
    bad_field2(split + 184, 0, "op 1 (split)", "act_max_c_offset given");
    /* reserved bytes after the version 2 fields */
    bad_field2(shuffle + 300, 1, "op 6 (shuffle)", "reserved");
}

/* version 3's fp32 scales, each out of range; a version 2 file (no scales:
 * the offset's bytes reserved, zero) still loads */
static void test_version_3_scales(void **state)
{
    (void)state;
    const size_t ops = (size_t)get64(good + 56), blob = (size_t)get64(good + 64);
    const size_t relu = ops + OPB, fc = ops + 3 * OPB, sc = blob + (size_t)get64(good + fc + 260);
    float bad[] = {NAN, INFINITY, -0.25f};
    for (int k = 0; k < 3; k++) {
        uint32_t u;
        memcpy(&u, &bad[k], 4);
        bad_field(sc + 4, u, "op 3 (fc)", "scales[1]");
    }
    bad_field(fc + 260, 6, "op 3", "scales_offset");                               /* unaligned */
    bad_field(fc + 260, (uint32_t)(good_size - blob - 8), "op 3", "scales_offset"); /* past the blob */
    bad_field(relu + 260, 0, "op 1", "scales_offset given");
    /* version 2: the same model without scales, the field zero */
    uint8_t *f = malloc(good2_size);
    memcpy(f, good2, good2_size);
    const size_t ops2 = (size_t)get64(good2 + 56);
    for (uint32_t i = 0; i < get32(good2 + 28); i++) memset(f + ops2 + (size_t)i * OPB + 260, 0, 8);
    put32(f + 4, 2);
    reseal(f, good2_size);
    rg_rgm *m;
    CHECK(rg_rgm_parse(f, good2_size, "v2.rgm", &m, &E));
    assert_int_equal(m->version, 2);
    for (int32_t i = 0; i < m->n_ops; i++) assert_null(m->ops[i].scales);
    rg_rgm_free(m);
    f[ops2 + 263] = 1;
    reseal(f, good2_size);
    expect_bad(f, good2_size, "op 0 (pw)", "reserved byte 263");
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
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_version_3_scales),
        cmocka_unit_test(test_version_2_fields),
        cmocka_unit_test(test_fields_behind_valid_checksum),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
