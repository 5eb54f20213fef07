/* Bad safetensors files and file-system faults: every one must give an error
 * (never a crash, a leak or undefined behaviour: this program is built with
 * ASan and UBSan) whose message starts with the path and says what is wrong. */
#include "test_support.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "regain/fileio.h"
#include "regain/safetensors.h"

static char dir[512];
static char path[600];
static int quiet; /* set while sweeping many cases: do not print each message */

static int setup(void **state)
{
    (void)state;
    rgt_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rgt_rmtree(dir);
    return 0;
}

/* Writes the 8-byte length of header, header itself (hlen bytes) and data. */
static void write_raw(const char *header, size_t hlen, const void *data, size_t dsize)
{
    size_t total = 8 + hlen + dsize;
    unsigned char *buf = malloc(total);
    assert_non_null(buf);
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    memcpy(buf + 8, header, hlen);
    if (dsize) memcpy(buf + 8 + hlen, data, dsize);
    rgt_write_file(path, buf, total);
    free(buf);
}

static void write_st(const char *header, size_t dsize)
{
    static const unsigned char zeros[256];
    assert_true(dsize <= sizeof zeros);
    write_raw(header, strlen(header), zeros, dsize);
}

/* rg_st_read(p) must fail with code (or any error if code is RG_OK) and a
 * message that starts with p and contains every word given. */
static void expect_error_at(const char *p, rg_status code, const char *w1, const char *w2)
{
    rg_error err = {0};
    rg_st_file *f = (rg_st_file *)&err; /* must be reset to NULL */
    rg_status st = rg_st_read(p, &f, &err);
    if (!quiet) print_message("    %s\n", err.msg);
    if (st == RG_OK) {
        rg_st_free(f);
        fail_msg("%s was accepted", p);
    }
    assert_null(f);
    assert_int_equal(st, err.code);
    if (code != RG_OK && st != code)
        fail_msg("expected %s, got %s: %s", rg_status_name(code), rg_status_name(st), err.msg);
    if (strncmp(err.msg, p, strlen(p)) != 0) fail_msg("message does not start with the path: %s", err.msg);
    if (w1 && !strstr(err.msg, w1)) fail_msg("message lacks '%s': %s", w1, err.msg);
    if (w2 && !strstr(err.msg, w2)) fail_msg("message lacks '%s': %s", w2, err.msg);
}

static void expect_error(rg_status code, const char *w1, const char *w2) { expect_error_at(path, code, w1, w2); }

/* A valid two-tensor file, written by us, returned as bytes. */
static unsigned char *valid_file(size_t *size)
{
    static const float a[6] = {1, 2, 3, 4, 5, 6};
    static const float b[2] = {-1, -2};
    const rg_st_tensor t[] = {{.name = "a", .ndim = 2, .shape = {2, 3}, .data = a},
                              {.name = "b", .ndim = 1, .shape = {2}, .data = b}};
    const rg_st_meta m[] = {{"k", "v"}};
    rg_error err = {0};
    if (rg_st_write(path, t, 2, m, 1, &err) != RG_OK) fail_msg("%s", err.msg);
    return rgt_read_file(path, size);
}

/* ---- whole-file problems ------------------------------------------------ */

static void test_missing_and_not_a_file(void **state)
{
    (void)state;
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nope.safetensors", dir);
    expect_error_at(missing, RG_ERR_IO, "No such file", NULL);
    expect_error_at(dir, RG_ERR_IO, "not a regular file", NULL);
}

static void test_empty_and_truncated(void **state)
{
    (void)state;
    rgt_write_file(path, "", 0);
    expect_error(RG_ERR_FORMAT, "empty", NULL);

    size_t size;
    unsigned char *ok = valid_file(&size);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | ok[k];
    /* inside the length, inside the header, just after it, inside the data */
    const size_t cuts[] = {1, 7, 8, 9, 8 + (size_t)hlen / 2, 8 + (size_t)hlen - 1, 8 + (size_t)hlen,
                           8 + (size_t)hlen + 5, size - 1};
    const char *words[] = {"truncated", "truncated", "truncated", "truncated", "truncated",
                           "truncated", "out of range", "out of range", "out of range"};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        rgt_write_file(path, ok, cuts[i]);
        expect_error(RG_ERR_FORMAT, words[i], i < 6 ? NULL : "truncated file?");
    }
    /* Every other cut too: an error each time, never a crash. */
    quiet = 1;
    for (size_t cut = 0; cut < size; cut++) {
        rgt_write_file(path, ok, cut);
        expect_error(RG_ERR_FORMAT, NULL, NULL);
    }
    quiet = 0;
    free(ok);
}

static void test_header_length(void **state)
{
    (void)state;
    unsigned char huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'}; /* 2^40 */
    rgt_write_file(path, huge, sizeof huge);
    expect_error(RG_ERR_FORMAT, "header length", "too large");
    unsigned char all_ff[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    rgt_write_file(path, all_ff, sizeof all_ff);
    expect_error(RG_ERR_FORMAT, "too large", NULL);
    unsigned char past_end[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    rgt_write_file(path, past_end, sizeof past_end);
    expect_error(RG_ERR_FORMAT, "header length 100", "truncated");
}

/* ---- header syntax ------------------------------------------------------ */

static void test_header_not_json(void **state)
{
    (void)state;
    write_st("hello, world", 0);
    expect_error(RG_ERR_FORMAT, "not valid JSON", NULL);
    write_st("", 0);
    expect_error(RG_ERR_FORMAT, "not valid JSON", NULL);
    write_st("{\"a\": {\"dtype\": \"F32\"", 0);
    expect_error(RG_ERR_FORMAT, "not valid JSON", NULL);
    write_st("{} {}", 0);
    expect_error(RG_ERR_FORMAT, "trailing", NULL);
    write_raw("{}\0   ", 6, NULL, 0);
    expect_error(RG_ERR_FORMAT, "control character", NULL);
    write_st("{\"a\nb\": {}}", 0);
    expect_error(RG_ERR_FORMAT, "control character", NULL);
    write_st("{\"a\\u0000b\": {}}", 0);
    expect_error(RG_ERR_FORMAT, "NUL", NULL);
    write_st("{\"a\xff\": {}}", 0);
    expect_error(RG_ERR_FORMAT, "UTF-8", NULL);
    write_st("{\"a\xc0\xaf\": {}}", 0); /* overlong '/' */
    expect_error(RG_ERR_FORMAT, "UTF-8", NULL);
    write_st("{\"a\xed\xa0\x80\": {}}", 0); /* surrogate */
    expect_error(RG_ERR_FORMAT, "UTF-8", NULL);
    write_st("\xEF\xBB\xBF{}", 0);
    expect_error(RG_ERR_FORMAT, "byte-order mark", NULL);
    write_st("{\"a\\ud800\": {}}", 0); /* lone escaped surrogate */
    expect_error(RG_ERR_FORMAT, "not valid JSON", NULL);
    /* deep nesting: cJSON's limit stops it, no stack overflow */
    char deep[4100];
    memset(deep, '[', 4000);
    deep[4000] = 0;
    write_st(deep, 0);
    expect_error(RG_ERR_FORMAT, "not valid JSON", NULL);
}

static void test_header_not_object(void **state)
{
    (void)state;
    const char *headers[] = {"[1, 2]", "\"str\"", "42", "null", "true"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        write_st(headers[i], 0);
        expect_error(RG_ERR_FORMAT, "not a JSON object", NULL);
    }
    write_st("{\"a\": 5}", 0);
    expect_error(RG_ERR_FORMAT, "tensor 'a'", "not a JSON object");
}

/* ---- tensor entries ----------------------------------------------------- */

static void test_dtype(void **state)
{
    (void)state;
    write_st("{\"w\": {\"dtype\": \"F33\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "unknown dtype 'F33'");
    write_st("{\"w\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4);
    expect_error(RG_ERR_UNSUPPORTED, "tensor 'w'", "F16 is not supported");
    write_st("{\"w\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "dtype is not a string");
}

static void test_fields(void **state)
{
    (void)state;
    write_st("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "missing field 'dtype'");
    write_st("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "missing field 'shape'");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "missing field 'data_offsets'");
    write_st("{\"w\": {\"dtype\": \"F32\", \"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "duplicate field 'dtype'");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"scale\": 1}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "unknown field 'scale'");
    write_st("{\"\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "empty name", NULL);
}

static void test_shape(void **state)
{
    (void)state;
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "shape[0] is -2, not a non-negative integer");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 2.5], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "shape[1] is 2.5");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "shape[0]");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "shape[0] is not a number");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "shape is not an array");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4);
    expect_error(RG_ERR_UNSUPPORTED, "tensor 'w'", "9 dimensions");
    /* 2^48 * 2^48 * 4 bytes overflows 64 bits */
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [281474976710656, 281474976710656], \"data_offsets\": [0, 0]}}",
             0);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "too large");
}

static void test_offsets(void **state)
{
    (void)state;
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [25], \"data_offsets\": [0, 100]}}", 24);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "out of range");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "end before");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "data_offsets");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "data_offsets");
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": \"0-8\"}}", 8);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "data_offsets");
    /* size not matching the shape */
    write_st("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "size mismatch");
    write_st("{\"w\": {\"dtype\": \"I64\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}}", 24);
    expect_error(RG_ERR_FORMAT, "tensor 'w'", "needs 48");
}

static void test_layout(void **state)
{
    (void)state;
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}",
             24);
    expect_error(RG_ERR_FORMAT, "tensor 'b'", "overlap tensor 'a'");
    /* identical ranges */
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
             16);
    expect_error(RG_ERR_FORMAT, "overlap", NULL);
    /* an empty tensor inside another */
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
             " \"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}}",
             16);
    expect_error(RG_ERR_FORMAT, "tensor 'e'", "overlap");
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [12, 20]}}",
             20);
    expect_error(RG_ERR_FORMAT, "gap", "[8, 12)");
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12);
    expect_error(RG_ERR_FORMAT, "gap", "[0, 4)");
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 12);
    expect_error(RG_ERR_FORMAT, "gap", "[8, 12)");
    write_st("{}", 4);
    expect_error(RG_ERR_FORMAT, "gap", NULL);
}

static void test_duplicates(void **state)
{
    (void)state;
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
             " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
             12);
    expect_error(RG_ERR_FORMAT, "duplicate tensor name 'a'", NULL);
    /* the same name spelled differently: \u escape vs raw */
    write_st("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"\\u0061\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
             8);
    expect_error(RG_ERR_FORMAT, "duplicate tensor name 'a'", NULL);
    write_st("{\"__metadata__\": {}, \"__metadata__\": {}}", 0);
    expect_error(RG_ERR_FORMAT, "duplicate \"__metadata__\"", NULL);
}

static void test_metadata(void **state)
{
    (void)state;
    write_st("{\"__metadata__\": {\"k\": 1}}", 0);
    expect_error(RG_ERR_FORMAT, "metadata 'k'", "not a string");
    write_st("{\"__metadata__\": {\"ok\": \"v\", \"k\": [\"v\"]}}", 0);
    expect_error(RG_ERR_FORMAT, "metadata 'k'", "not a string");
    write_st("{\"__metadata__\": {\"k\": null}}", 0);
    expect_error(RG_ERR_FORMAT, "metadata 'k'", "not a string");
    write_st("{\"__metadata__\": [\"k\", \"v\"]}", 0);
    expect_error(RG_ERR_FORMAT, "__metadata__", "not a JSON object");
    write_st("{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0);
    expect_error(RG_ERR_FORMAT, "metadata", "duplicate key 'k'");
    write_st("{\"__metadata__\": {\"regain.crc32\": \"xyz\"}}", 0);
    expect_error(RG_ERR_FORMAT, "regain.crc32", "malformed");
    write_st("{\"__metadata__\": {\"regain.crc32\": \"0000000000\"}}", 0);
    expect_error(RG_ERR_FORMAT, "regain.crc32", "malformed");
}

/* ---- corruption --------------------------------------------------------- */

static void test_flipped_data_byte(void **state)
{
    (void)state;
    size_t size;
    unsigned char *bytes = valid_file(&size);
    bytes[size - 3] ^= 0x10;
    rgt_write_file(path, bytes, size);
    expect_error(RG_ERR_FORMAT, "checksum mismatch", "modified or corrupted");
    free(bytes);
}

/* Every single-bit flip anywhere in a valid file: an error or (when the
 * flip only renames something) a valid file; never a crash or a leak. */
static void test_every_bit_flip(void **state)
{
    (void)state;
    size_t size;
    unsigned char *bytes = valid_file(&size);
    int accepted = 0;
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            bytes[i] ^= (unsigned char)(1u << bit);
            rgt_write_file(path, bytes, size);
            rg_error err = {0};
            rg_st_file *f = NULL;
            rg_status st = rg_st_read(path, &f, &err);
            if (st == RG_OK) {
                accepted++;
                rg_st_free(f);
            } else {
                assert_null(f);
                assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
            }
            bytes[i] ^= (unsigned char)(1u << bit);
        }
    /* Data flips are all caught by the crc: only header text flips pass. */
    size_t hlen = bytes[0] | (size_t)bytes[1] << 8;
    assert_true((size_t)accepted < 8 * hlen);
    free(bytes);
}

/* ---- file-system faults in atomic writes -------------------------------- */

static int count_entries(const char *d)
{
    DIR *dp = opendir(d);
    assert_non_null(dp);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dp);
    return n;
}

static void test_atomic_faults(void **state)
{
    (void)state;
    /* The target is a directory: rename fails, the temp file is removed. */
    char target[700];
    snprintf(target, sizeof target, "%s/occupied", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    rg_error err = {0};
    assert_int_equal(rg_write_file_atomic(target, "x", 1, &err), RG_ERR_IO);
    print_message("    %s\n", err.msg);
    assert_int_equal(strncmp(err.msg, target, strlen(target)), 0);
    assert_non_null(strstr(err.msg, "rename"));
    assert_non_null(strstr(err.msg, "directory"));
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(rg_st_write(target, NULL, 0, NULL, 0, &err), RG_ERR_IO);
    assert_int_equal(count_entries(dir), 1);

    /* The directory does not exist. */
    char nodir[700];
    snprintf(nodir, sizeof nodir, "%s/missing/x.bin", dir);
    assert_int_equal(rg_write_file_atomic(nodir, "x", 1, &err), RG_ERR_IO);
    assert_int_equal(strncmp(err.msg, nodir, strlen(nodir)), 0);
    assert_non_null(strstr(err.msg, "No such file"));

    /* rg_read_file: missing, a directory, over the limit. */
    void *data = (void *)1;
    size_t size = 1;
    assert_int_equal(rg_read_file(nodir, 10, &data, &size, &err), RG_ERR_IO);
    assert_null(data);
    assert_int_equal(size, 0);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(rg_read_file(target, 10, &data, &size, &err), RG_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    rgt_write_file(path, "0123456789", 10);
    assert_int_equal(rg_read_file(path, 9, &data, &size, &err), RG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "too large"));

    /* Bad arguments. */
    assert_int_equal(rg_atomic_open(NULL, NULL, &err), RG_ERR_ARG);
    assert_int_equal(rg_atomic_write(NULL, "x", 1, &err), RG_ERR_ARG);
    assert_int_equal(rg_atomic_commit(NULL, &err), RG_ERR_ARG);
    rg_atomic_abort(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_and_not_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_not_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_not_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_data_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_bit_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
