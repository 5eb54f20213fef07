/* IDX readers and datasets: round trips of small files (raw and gzip),
 * loading a directory, split, head, checksum, and the real Fashion-MNIST test
 * split when it is installed. */
#include "test_support.h"

#include "regain/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- Writing IDX files ------------------------------------------------- */

/* Builds an IDX file in memory: magic, dims, payload. Caller frees. */
static uint8_t *idx_bytes(uint32_t magic, const uint32_t *dims, int ndims, const uint8_t *data,
                          size_t data_len, size_t *len)
{
    *len = 4 + 4 * (size_t)ndims + data_len;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    uint32_t words[4] = {magic, 0, 0, 0};
    for (int i = 0; i < ndims; i++) words[1 + i] = dims[i];
    for (int i = 0; i <= ndims; i++) {
        b[4 * i + 0] = (uint8_t)(words[i] >> 24);
        b[4 * i + 1] = (uint8_t)(words[i] >> 16);
        b[4 * i + 2] = (uint8_t)(words[i] >> 8);
        b[4 * i + 3] = (uint8_t)words[i];
    }
    if (data_len) memcpy(b + 4 + 4 * (size_t)ndims, data, data_len);
    return b;
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void write_file(const char *path, const void *data, size_t len, int gzip)
{
    if (gzip)
        write_gz(path, data, len);
    else
        rgt_write_file(path, data, len);
}

static void write_images(const char *path, uint32_t n, uint32_t h, uint32_t w,
                         const uint8_t *pixels, int gzip)
{
    const uint32_t dims[3] = {n, h, w};
    size_t len;
    uint8_t *b = idx_bytes(0x803, dims, 3, pixels, (size_t)n * h * w, &len);
    write_file(path, b, len, gzip);
    free(b);
}

static void write_labels(const char *path, uint32_t n, const uint8_t *labels, int gzip)
{
    size_t len;
    uint8_t *b = idx_bytes(0x801, &n, 1, labels, n, &len);
    write_file(path, b, len, gzip);
    free(b);
}

/* Sample i has every pixel (i*7 + k) & 255 and first pixel i, so a sample
 * can be recognized after a split. */
static void make_pixels(uint8_t *p, uint32_t n, uint32_t hw)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < hw; k++) p[i * hw + k] = (uint8_t)(k == 0 ? i : (i * 7 + k));
}

static void path_in(const rgt_dir *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

/* ---- Round trips ------------------------------------------------------- */

static void round_trip(void **state, int gzip)
{
    rgt_dir *f = *state;
    enum { N = 7, H = 5, W = 3 };
    uint8_t pixels[N * H * W], labels[N];
    make_pixels(pixels, N, H * W);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % 4);

    char ip[600], lp[600];
    /* Names without .gz on purpose: the format is told by its magic bytes. */
    path_in(f, "images", ip, sizeof ip);
    path_in(f, "labels", lp, sizeof lp);
    write_images(ip, N, H, W, pixels, gzip);
    write_labels(lp, N, labels, gzip);

    rg_error err = {0};
    uint8_t *px = NULL, *lb = NULL;
    int32_t n = 0, h = 0, w = 0, nl = 0;
    assert_int_equal(rg_idx_read_images(ip, &px, &n, &h, &w, &err), RG_OK);
    assert_int_equal(n, N);
    assert_int_equal(h, H);
    assert_int_equal(w, W);
    assert_memory_equal(px, pixels, sizeof pixels);
    assert_int_equal(rg_idx_read_labels(lp, &lb, &nl, &err), RG_OK);
    assert_int_equal(nl, N);
    assert_memory_equal(lb, labels, sizeof labels);
    free(px);
    free(lb);
}

static void test_round_trip_raw(void **state) { round_trip(state, 0); }
static void test_round_trip_gzip(void **state) { round_trip(state, 1); }

/* A raw file named .gz is still read as raw. */
static void test_raw_named_gz(void **state)
{
    rgt_dir *f = *state;
    uint8_t labels[3] = {2, 0, 1};
    char lp[600];
    path_in(f, "labels.gz", lp, sizeof lp);
    write_labels(lp, 3, labels, 0);
    rg_error err = {0};
    uint8_t *lb = NULL;
    int32_t n = 0;
    assert_int_equal(rg_idx_read_labels(lp, &lb, &n, &err), RG_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(lb, labels, 3);
    free(lb);
}

/* A payload larger than the reader's first chunk exercises buffer growth. */
static void test_large_gzip(void **state)
{
    rgt_dir *f = *state;
    const uint32_t n = 7000, h = 28, w = 28; /* 5.5 MB > the 4 MiB first chunk */
    size_t bytes = (size_t)n * h * w;
    uint8_t *pixels = malloc(bytes);
    assert_non_null(pixels);
    for (size_t k = 0; k < bytes; k++) pixels[k] = (uint8_t)(k * 2654435761u >> 24);
    char ip[600];
    path_in(f, "big-images.gz", ip, sizeof ip);
    write_images(ip, n, h, w, pixels, 1);

    rg_error err = {0};
    uint8_t *px = NULL;
    int32_t rn, rh, rw;
    assert_int_equal(rg_idx_read_images(ip, &px, &rn, &rh, &rw, &err), RG_OK);
    assert_int_equal(rn, (int32_t)n);
    assert_memory_equal(px, pixels, bytes);
    free(px);
    free(pixels);
}

/* ---- Datasets ---------------------------------------------------------- */

enum { DN = 20, DH = 4, DW = 3, DT = 6 };

/* Writes a dataset directory: train raw (DN samples), test gzip (DT). */
static void write_dataset_dir(const rgt_dir *f, uint8_t *pixels, uint8_t *labels)
{
    char p[600];
    make_pixels(pixels, DN, DH * DW);
    for (int i = 0; i < DN; i++) labels[i] = (uint8_t)((i * 3) % 5);
    path_in(f, "train-images-idx3-ubyte", p, sizeof p);
    write_images(p, DN, DH, DW, pixels, 0);
    path_in(f, "train-labels-idx1-ubyte", p, sizeof p);
    write_labels(p, DN, labels, 0);
    path_in(f, "t10k-images-idx3-ubyte.gz", p, sizeof p);
    write_images(p, DT, DH, DW, pixels, 1);
    path_in(f, "t10k-labels-idx1-ubyte.gz", p, sizeof p);
    write_labels(p, DT, labels, 1);
}

static void test_dataset_load_dir(void **state)
{
    rgt_dir *f = *state;
    uint8_t pixels[DN * DH * DW], labels[DN];
    write_dataset_dir(f, pixels, labels);

    rg_error err = {0};
    rg_dataset tr = {0}, te = {0};
    assert_int_equal(rg_dataset_load(f->dir, "train", &tr, &err), RG_OK);
    assert_int_equal(tr.n, DN);
    assert_int_equal(tr.h, DH);
    assert_int_equal(tr.w, DW);
    assert_int_equal(tr.c, 1);
    assert_int_equal(tr.n_classes, 5);
    assert_memory_equal(tr.pixels, pixels, sizeof pixels);
    assert_memory_equal(tr.labels, labels, sizeof labels);
    assert_non_null(strstr(tr.source, "train-images-idx3-ubyte"));
    assert_int_equal(rg_dataset_sample_bytes(&tr), DH * DW);

    assert_int_equal(rg_dataset_load(f->dir, "test", &te, &err), RG_OK);
    assert_int_equal(te.n, DT);
    assert_memory_equal(te.pixels, pixels, (size_t)DT * DH * DW);
    assert_non_null(strstr(te.source, "t10k-images-idx3-ubyte.gz"));
    /* labels of the first 6 samples: 0 3 1 4 2 0 */
    assert_int_equal(te.n_classes, 5);
    rg_dataset_free(&tr);
    rg_dataset_free(&te);
    rg_dataset_free(&te); /* freeing twice is harmless: free zeroes */
}

/* Index of the sample a split copied: its first pixel (make_pixels). */
static int32_t sample_id(const rg_dataset *ds, int32_t k)
{
    return ds->pixels[(size_t)k * rg_dataset_sample_bytes(ds)];
}

static void test_split(void **state)
{
    rgt_dir *f = *state;
    uint8_t pixels[DN * DH * DW], labels[DN];
    write_dataset_dir(f, pixels, labels);
    rg_error err = {0};
    rg_dataset full = {0}, tr = {0}, va = {0}, tr2 = {0}, va2 = {0}, va3 = {0}, tr3 = {0};
    assert_int_equal(rg_dataset_load(f->dir, "train", &full, &err), RG_OK);
    const uint32_t before = rg_dataset_checksum(&full);

    assert_int_equal(rg_dataset_split(&full, 6, 42, &tr, &va, &err), RG_OK);
    assert_int_equal(tr.n, DN - 6);
    assert_int_equal(va.n, 6);
    assert_int_equal(tr.h, DH);
    assert_int_equal(va.w, DW);
    assert_int_equal(va.n_classes, full.n_classes);
    assert_int_equal(rg_dataset_checksum(&full), before); /* full untouched */

    /* Every sample lands in exactly one part, in the original order, with
     * its own pixels and label. */
    int seen[DN] = {0};
    const rg_dataset *parts[2] = {&tr, &va};
    for (int p = 0; p < 2; p++) {
        int32_t prev = -1;
        for (int32_t k = 0; k < parts[p]->n; k++) {
            int32_t id = sample_id(parts[p], k);
            assert_in_range(id, 0, DN - 1);
            assert_true(id > prev);
            prev = id;
            seen[id]++;
            assert_memory_equal(parts[p]->pixels + (size_t)k * DH * DW,
                                pixels + (size_t)id * DH * DW, DH * DW);
            assert_int_equal(parts[p]->labels[k], labels[id]);
        }
    }
    for (int i = 0; i < DN; i++) assert_int_equal(seen[i], 1);

    /* Same seed, same split; another seed, another split. */
    assert_int_equal(rg_dataset_split(&full, 6, 42, &tr2, &va2, &err), RG_OK);
    assert_int_equal(rg_dataset_checksum(&va2), rg_dataset_checksum(&va));
    assert_int_equal(rg_dataset_checksum(&tr2), rg_dataset_checksum(&tr));
    assert_int_equal(rg_dataset_split(&full, 6, 43, &tr3, &va3, &err), RG_OK);
    assert_int_not_equal(rg_dataset_checksum(&va3), rg_dataset_checksum(&va));
    rg_dataset_free(&tr2);
    rg_dataset_free(&va2);
    rg_dataset_free(&tr3);
    rg_dataset_free(&va3);

    /* Edges: nothing or everything held out; out of range is an error. */
    assert_int_equal(rg_dataset_split(&full, 0, 1, &tr2, &va2, &err), RG_OK);
    assert_int_equal(tr2.n, DN);
    assert_int_equal(va2.n, 0);
    assert_memory_equal(tr2.pixels, full.pixels, sizeof pixels);
    rg_dataset_free(&tr2);
    rg_dataset_free(&va2);
    assert_int_equal(rg_dataset_split(&full, DN, 1, &tr2, &va2, &err), RG_OK);
    assert_int_equal(tr2.n, 0);
    assert_memory_equal(va2.pixels, full.pixels, sizeof pixels);
    rg_dataset_free(&tr2);
    rg_dataset_free(&va2);
    assert_int_equal(rg_dataset_split(&full, DN + 1, 1, &tr2, &va2, &err), RG_ERR_ARG);
    assert_int_equal(rg_dataset_split(&full, -1, 1, &tr2, &va2, &err), RG_ERR_ARG);
    assert_null(tr2.pixels);
    assert_null(va2.pixels);

    rg_dataset_free(&tr);
    rg_dataset_free(&va);
    rg_dataset_free(&full);
}

static void test_head_and_checksum(void **state)
{
    rgt_dir *f = *state;
    uint8_t pixels[DN * DH * DW], labels[DN];
    write_dataset_dir(f, pixels, labels);
    rg_error err = {0};
    rg_dataset full = {0}, head = {0}, head2 = {0};
    assert_int_equal(rg_dataset_load(f->dir, "train", &full, &err), RG_OK);
    assert_int_equal(rg_dataset_head(&full, 5, &head, &err), RG_OK);
    assert_int_equal(head.n, 5);
    assert_memory_equal(head.pixels, pixels, (size_t)5 * DH * DW);
    assert_memory_equal(head.labels, labels, 5);
    assert_non_null(strstr(head.source, "[first 5]"));
    assert_int_equal(rg_dataset_head(&full, DN + 1, &head2, &err), RG_ERR_ARG);

    /* The checksum is stable, and follows pixels, labels and shape. */
    const uint32_t c0 = rg_dataset_checksum(&full);
    assert_int_equal(rg_dataset_checksum(&full), c0);
    assert_int_not_equal(rg_dataset_checksum(&head), c0);
    full.pixels[37] ^= 1;
    assert_int_not_equal(rg_dataset_checksum(&full), c0);
    full.pixels[37] ^= 1;
    assert_int_equal(rg_dataset_checksum(&full), c0);
    full.labels[3] ^= 1;
    assert_int_not_equal(rg_dataset_checksum(&full), c0);
    full.labels[3] ^= 1;
    full.h = DW, full.w = DH; /* same bytes, other shape */
    assert_int_not_equal(rg_dataset_checksum(&full), c0);
    full.h = DH, full.w = DW;

    rg_dataset_free(&head);
    rg_dataset_free(&full);
}

/* ---- The real data, when installed ------------------------------------- */

static void test_fashion_mnist(void **state)
{
    (void)state;
    struct stat st;
    if (stat(RG_FASHION_MNIST_DIR, &st) != 0) {
        print_message("skipped: %s not installed\n", RG_FASHION_MNIST_DIR);
        skip();
    }
    rg_error err = {0};
    rg_dataset te = {0};
    rg_status s = rg_dataset_load("fashion-mnist", "test", &te, &err);
    if (s != RG_OK) fail_msg("%s", err.msg);
    assert_int_equal(te.n, 10000);
    assert_int_equal(te.h, 28);
    assert_int_equal(te.w, 28);
    assert_int_equal(te.c, 1);
    assert_int_equal(te.n_classes, 10);
    int counts[10] = {0};
    for (int32_t i = 0; i < te.n; i++) counts[te.labels[i]]++;
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], 1000); /* balanced test set */
    rg_dataset_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_raw, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_gzip, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_raw_named_gz, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_large_gzip, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_dataset_load_dir, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_split, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test_setup_teardown(test_head_and_checksum, rgt_dir_setup, rgt_dir_teardown),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
