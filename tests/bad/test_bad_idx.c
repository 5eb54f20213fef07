/* Bad IDX input: every damaged, truncated, oversized or missing file yields
 * the right status and a message naming the file and the problem, and never
 * a crash, a leak or undefined behaviour (this program is built with ASan
 * and UBSan). Ends with a small deterministic mutation fuzz. */
#include "test_support.h"

#include "regain/data.h"
#include "regain/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *in_dir(const rgt_dir *f, const char *name)
{
    static char buf[4][700];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", f->dir, name);
    return p;
}

/* ---- Building files ---------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t len;
} bytes;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* magic, ndims dims, then `payload` bytes of a counting pattern. */
static bytes idx(uint32_t magic, int ndims, const uint32_t *dims, size_t payload)
{
    bytes r = {.len = 4 + 4 * (size_t)ndims + payload};
    r.b = malloc(r.len + 1);
    assert_non_null(r.b);
    put32(r.b, magic);
    for (int i = 0; i < ndims; i++) put32(r.b + 4 + 4 * i, dims[i]);
    for (size_t k = 0; k < payload; k++) r.b[4 + 4 * (size_t)ndims + k] = (uint8_t)(k % 10);
    return r;
}

static bytes images(uint32_t n, uint32_t h, uint32_t w, size_t payload)
{
    const uint32_t d[3] = {n, h, w};
    return idx(0x803, 3, d, payload);
}

static bytes labels(uint32_t n, size_t payload)
{
    return idx(0x801, 1, &n, payload);
}

static void write_raw(const char *path, bytes b)
{
    rgt_write_file(path, b.b, b.len);
    free(b.b);
}

static void write_gz(const char *path, bytes b)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    if (b.len) assert_int_equal(gzwrite(gz, b.b, (unsigned)b.len), (int)b.len);
    assert_int_equal(gzclose(gz), Z_OK);
    free(b.b);
}

/* ---- Expectations ------------------------------------------------------ */

static void expect_msg(const rg_error *err, const char *path, const char *word)
{
    if (path && !strstr(err->msg, path))
        fail_msg("message \"%s\" does not name the file %s", err->msg, path);
    if (word && !strstr(err->msg, word))
        fail_msg("message \"%s\" lacks \"%s\"", err->msg, word);
}

/* Reads path as images, expects `want` and a message with path and word;
 * outputs must be reset. */
static void expect_images(const char *path, rg_status want, const char *word)
{
    rg_error err = {0};
    uint8_t *px = (uint8_t *)&err;
    int32_t n = -1, h = -1, w = -1;
    rg_status got = rg_idx_read_images(path, &px, &n, &h, &w, &err);
    if (got != want)
        fail_msg("%s: status %s, expected %s (%s)", path, rg_status_name(got),
                 rg_status_name(want), err.msg);
    assert_int_equal(err.code, want);
    assert_null(px);
    assert_int_equal(n, 0);
    assert_int_equal(h, 0);
    assert_int_equal(w, 0);
    expect_msg(&err, path, word);
}

static void expect_labels(const char *path, rg_status want, const char *word)
{
    rg_error err = {0};
    uint8_t *lb = (uint8_t *)&err;
    int32_t n = -1;
    rg_status got = rg_idx_read_labels(path, &lb, &n, &err);
    if (got != want)
        fail_msg("%s: status %s, expected %s (%s)", path, rg_status_name(got),
                 rg_status_name(want), err.msg);
    assert_null(lb);
    assert_int_equal(n, 0);
    expect_msg(&err, path, word);
}

/* ---- Header problems --------------------------------------------------- */

static void test_wrong_magic(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "images-badmagic");
    const uint32_t d[3] = {2, 2, 2};
    write_raw(p, idx(0x12345678, 3, d, 8));
    expect_images(p, RG_ERR_FORMAT, "magic");

    /* A labels file given as images: the magic says so. */
    p = in_dir(f, "labels-as-images");
    write_raw(p, labels(4, 4));
    expect_images(p, RG_ERR_FORMAT, "magic");
    p = in_dir(f, "images-as-labels.gz");
    write_gz(p, images(2, 2, 2, 8));
    expect_labels(p, RG_ERR_FORMAT, "magic");

    /* A valid IDX element type other than unsigned byte: unsupported. */
    p = in_dir(f, "images-float");
    write_raw(p, idx(0x00000D03, 3, d, 32));
    expect_images(p, RG_ERR_UNSUPPORTED, "element type");

    /* Zero dimensions in the magic itself. */
    p = in_dir(f, "labels-nodims");
    write_raw(p, idx(0x00000800, 0, d, 0));
    expect_labels(p, RG_ERR_FORMAT, "magic");

    /* A text file. */
    p = in_dir(f, "readme.txt");
    rgt_write_file(p, "hello, world\n", 13);
    expect_images(p, RG_ERR_FORMAT, "magic");
}

static void test_truncated_header(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "images-header7");
    bytes b = images(2, 2, 2, 8);
    b.len = 7;
    write_raw(p, b);
    expect_images(p, RG_ERR_FORMAT, "truncated header");
    expect_images(p, RG_ERR_FORMAT, "expected 16 bytes, found 7");

    p = in_dir(f, "labels-header3.gz");
    b = labels(2, 2);
    b.len = 3;
    write_gz(p, b);
    expect_labels(p, RG_ERR_FORMAT, "truncated header");

    p = in_dir(f, "empty");
    rgt_write_file(p, "", 0);
    expect_images(p, RG_ERR_FORMAT, "empty file");
    p = in_dir(f, "empty.gz");
    write_gz(p, (bytes){.b = NULL, .len = 0});
    expect_labels(p, RG_ERR_FORMAT, "truncated header");
}

static void test_zero_dimensions(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "images-n0");
    write_raw(p, images(0, 28, 28, 0));
    expect_images(p, RG_ERR_FORMAT, "zero dimension");
    p = in_dir(f, "images-h0");
    write_raw(p, images(5, 0, 28, 0));
    expect_images(p, RG_ERR_FORMAT, "zero dimension");
    p = in_dir(f, "images-w0.gz");
    write_gz(p, images(5, 28, 0, 0));
    expect_images(p, RG_ERR_FORMAT, "zero dimension");
    p = in_dir(f, "labels-n0");
    write_raw(p, labels(0, 0));
    expect_labels(p, RG_ERR_FORMAT, "zero dimension");
}

static void test_absurd_dimensions(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "images-2e31");
    write_raw(p, images(0x80000000u, 28, 28, 100));
    expect_images(p, RG_ERR_FORMAT, "implausible dimensions");
    expect_images(p, RG_ERR_FORMAT, "2147483648");
    p = in_dir(f, "images-huge-side");
    write_raw(p, images(10, 5000, 28, 100));
    expect_images(p, RG_ERR_FORMAT, "implausible");
    p = in_dir(f, "images-max");
    write_raw(p, images(0xffffffffu, 0xffffffffu, 0xffffffffu, 0));
    expect_images(p, RG_ERR_FORMAT, "implausible");
    p = in_dir(f, "labels-2e31.gz");
    write_gz(p, labels(0x80000000u, 10));
    expect_labels(p, RG_ERR_FORMAT, "implausible");

    /* Each side within its limit, the whole beyond the byte limit (1.6e15
     * bytes claimed). */
    p = in_dir(f, "images-too-many-bytes");
    write_raw(p, images(RG_IDX_MAX_ITEMS, RG_IDX_MAX_SIDE, RG_IDX_MAX_SIDE, 1000));
    expect_images(p, RG_ERR_FORMAT, "implausible size");
    expect_images(p, RG_ERR_FORMAT, "(limit 4294967296)");
    /* A gzip stream that would expand past the limit is refused before any
     * of its payload is read. */
    p = in_dir(f, "images-5GiB-claimed.gz");
    write_gz(p, images(5u << 20, 32, 32, 1000));
    expect_images(p, RG_ERR_FORMAT, "implausible size");

    /* Within the limits but far larger than the file (4.1e9 bytes claimed):
     * reported as truncated, without a huge allocation. */
    p = in_dir(f, "images-liar");
    write_raw(p, images(1000000u, 64, 64, 1000));
    expect_images(p, RG_ERR_FORMAT, "truncated");
    expect_images(p, RG_ERR_FORMAT, "found 1000");
}

/* ---- Payload problems -------------------------------------------------- */

static void test_truncated_data(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "images-short");
    write_raw(p, images(3, 4, 5, 59));
    expect_images(p, RG_ERR_FORMAT, "truncated: expected 60 pixel bytes, found 59");
    p = in_dir(f, "images-short.gz");
    write_gz(p, images(3, 4, 5, 1));
    expect_images(p, RG_ERR_FORMAT, "truncated: expected 60 pixel bytes, found 1");
    p = in_dir(f, "labels-short");
    write_raw(p, labels(10, 0));
    expect_labels(p, RG_ERR_FORMAT, "truncated: expected 10 label bytes, found 0");
}

static void test_trailing_bytes(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "images-long");
    write_raw(p, images(3, 4, 5, 61));
    expect_images(p, RG_ERR_FORMAT, "trailing data: 1 byte after");
    p = in_dir(f, "labels-long.gz");
    write_gz(p, labels(10, 10 + 5000));
    expect_labels(p, RG_ERR_FORMAT, "trailing data: 5000 bytes");
    /* 4 MB of zeros after the labels (a few kB compressed): counted up to
     * a limit, not to the end */
    p = in_dir(f, "labels-bomb.gz");
    write_gz(p, labels(10, 10 + ((size_t)4 << 20)));
    expect_labels(p, RG_ERR_FORMAT, "trailing data: at least 1048576 bytes");
}

/* ---- Files that are not there or not files ----------------------------- */

static void test_missing(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "no-such-file.gz");
    expect_images(p, RG_ERR_IO, "No such file");
    expect_labels(p, RG_ERR_IO, "cannot open");
    expect_images(f->dir, RG_ERR_IO, "directory");

    rg_error err = {0};
    rg_dataset ds = {0};
    assert_int_equal(rg_dataset_load(in_dir(f, "nodir"), "train", &ds, &err), RG_ERR_NOTFOUND);
    expect_msg(&err, "nodir", "no such dataset");
    assert_int_equal(rg_dataset_load(f->dir, "train", &ds, &err), RG_ERR_NOTFOUND);
    expect_msg(&err, f->dir, "train-images-idx3-ubyte");
    assert_int_equal(rg_dataset_load(f->dir, "validation", &ds, &err), RG_ERR_ARG);
    expect_msg(&err, "validation", "split");
    assert_int_equal(rg_dataset_load(f->dir, NULL, &ds, &err), RG_ERR_ARG);
    assert_int_equal(rg_dataset_load("", "train", &ds, &err), RG_ERR_ARG);
    assert_null(ds.pixels);

    /* Images there, labels missing. */
    write_raw(in_dir(f, "t10k-images-idx3-ubyte"), images(2, 2, 2, 8));
    assert_int_equal(rg_dataset_load(f->dir, "test", &ds, &err), RG_ERR_NOTFOUND);
    expect_msg(&err, f->dir, "t10k-labels-idx1-ubyte");
}

static void test_count_mismatch(void **state)
{
    rgt_dir *f = *state;
    write_raw(in_dir(f, "train-images-idx3-ubyte"), images(5, 2, 3, 30));
    write_gz(in_dir(f, "train-labels-idx1-ubyte.gz"), labels(4, 4));
    rg_error err = {0};
    rg_dataset ds = {0};
    assert_int_equal(rg_dataset_load(f->dir, "train", &ds, &err), RG_ERR_FORMAT);
    expect_msg(&err, "train-images-idx3-ubyte", "5 images");
    expect_msg(&err, "train-labels-idx1-ubyte.gz", "4 labels");
    assert_null(ds.pixels);
    assert_null(ds.labels);
    assert_int_equal(ds.n, 0);

    /* A bad file inside a dataset directory: the reader's message passes through. */
    write_raw(in_dir(f, "t10k-images-idx3-ubyte"), images(5, 2, 3, 29));
    write_raw(in_dir(f, "t10k-labels-idx1-ubyte"), labels(5, 5));
    assert_int_equal(rg_dataset_load(f->dir, "test", &ds, &err), RG_ERR_FORMAT);
    expect_msg(&err, "t10k-images-idx3-ubyte", "truncated");
}

/* ---- Damaged gzip ------------------------------------------------------ */

/* A valid gzip IDX file in memory, via a temporary file. */
static bytes gz_bytes(const rgt_dir *f, bytes raw)
{
    const char *tmp = in_dir(f, "tmp.gz");
    write_gz(tmp, raw);
    bytes r;
    r.b = rgt_read_file(tmp, &r.len);
    remove(tmp);
    return r;
}

static void test_corrupted_gzip(void **state)
{
    rgt_dir *f = *state;
    /* Bad CRC in the trailer: the data decompresses, the check fails. */
    bytes g = gz_bytes(f, images(20, 8, 8, 20 * 64));
    g.b[g.len - 8] ^= 0xff;
    const char *p = in_dir(f, "images-badcrc.gz");
    write_raw(p, g);
    expect_images(p, RG_ERR_FORMAT, "corrupted gzip");

    /* Bad length in the trailer. */
    g = gz_bytes(f, images(20, 8, 8, 20 * 64));
    g.b[g.len - 1] ^= 0x01;
    p = in_dir(f, "images-badlen.gz");
    write_raw(p, g);
    expect_images(p, RG_ERR_FORMAT, "corrupted gzip");

    /* Garbage in the deflate stream. */
    g = gz_bytes(f, images(20, 8, 8, 20 * 64));
    for (size_t k = 12; k < g.len - 8; k += 3) g.b[k] = (uint8_t)(k * 37);
    p = in_dir(f, "images-garbage.gz");
    write_raw(p, g);
    expect_images(p, RG_ERR_FORMAT, "corrupted gzip");

    /* Unknown compression method in the gzip header. */
    g = gz_bytes(f, labels(10, 10));
    g.b[2] = 7;
    p = in_dir(f, "labels-method.gz");
    write_raw(p, g);
    expect_labels(p, RG_ERR_FORMAT, "corrupted gzip");

    /* The gzip file cut in half, and cut just before its trailer. */
    g = gz_bytes(f, images(20, 8, 8, 20 * 64));
    g.len /= 2;
    p = in_dir(f, "images-cut.gz");
    write_raw(p, g);
    expect_images(p, RG_ERR_FORMAT, "truncated");
    expect_images(p, RG_ERR_FORMAT, "gzip stream ends early");
    g = gz_bytes(f, labels(10, 10));
    g.len -= 8;
    p = in_dir(f, "labels-notrailer.gz");
    write_raw(p, g);
    expect_labels(p, RG_ERR_FORMAT, "truncated gzip stream");
}

/* ---- Mutation fuzz ----------------------------------------------------- */

/* Random byte flips, truncations and extensions of valid files, raw and
 * gzip: any status is acceptable, but a failure must name the file and a
 * success must be self-consistent. Deterministic (keyed rng). */
static void test_mutations(void **state)
{
    rgt_dir *f = *state;
    const char *p = in_dir(f, "fuzz");
    const bytes base_raw = images(6, 5, 4, 120);
    const bytes base_gz = gz_bytes(f, images(6, 5, 4, 120));
    int failures = 0;
    for (uint64_t it = 0; it < 400; it++) {
        rg_rng r = rg_rng_keyed(99, it, 0);
        const bytes *base = (it & 1) ? &base_gz : &base_raw;
        size_t len = base->len;
        switch (rg_rng_below(&r, 3)) {
        case 0: len = rg_rng_below(&r, (uint32_t)base->len); break;
        case 1: len = base->len + 1 + rg_rng_below(&r, 16); break;
        default: break;
        }
        uint8_t *b = calloc(len + 1, 1);
        assert_non_null(b);
        memcpy(b, base->b, len < base->len ? len : base->len);
        const uint32_t flips = rg_rng_below(&r, 4);
        for (uint32_t k = 0; k < flips && len > 0; k++)
            b[rg_rng_below(&r, (uint32_t)len)] ^= (uint8_t)(1u << rg_rng_below(&r, 8));
        rgt_write_file(p, b, len);
        free(b);

        rg_error err = {0};
        uint8_t *px = NULL;
        int32_t n, h, w;
        rg_status st = rg_idx_read_images(p, &px, &n, &h, &w, &err);
        if (st == RG_OK) {
            assert_non_null(px);
            assert_true(n > 0 && h > 0 && w > 0);
            free(px);
        } else {
            failures++;
            assert_null(px);
            expect_msg(&err, p, NULL);
        }
    }
    assert_true(failures > 200); /* most mutations are caught */
    free(base_raw.b);
    free(base_gz.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_magic, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_header, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_zero_dimensions, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_absurd_dimensions, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_data, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_trailing_bytes, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_missing, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_count_mismatch, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_gzip, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_mutations, rgt_dir_setup, rgt_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
