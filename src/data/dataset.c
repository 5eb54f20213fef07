/* Datasets: loading an IDX split, hold-out splits, heads, checksums. */
#include "regain/data.h"
#include "regain/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Key of the hold-out permutation ("VA"), fixed so that a seed always names
 * the same validation set. */
#define SPLIT_KEY 0x5641u

/* ---- Helpers ----------------------------------------------------------- */

size_t rg_dataset_sample_bytes(const rg_dataset *ds)
{
    if (!ds || ds->h <= 0 || ds->w <= 0 || ds->c <= 0) return 0;
    return (size_t)ds->h * (size_t)ds->w * (size_t)ds->c;
}

void rg_dataset_free(rg_dataset *ds)
{
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* Checks that *ds is a well-formed in-memory dataset (n may be 0). */
static rg_status dataset_check(const rg_dataset *ds, const char *fn, rg_error *err)
{
    if (!ds) return rg_fail(err, RG_ERR_ARG, "%s: dataset is NULL", fn);
    if (ds->n < 0 || ds->h <= 0 || ds->w <= 0 || ds->c <= 0)
        return rg_fail(err, RG_ERR_ARG, "%s: dataset %s has invalid shape %d x %d x %d x %d", fn,
                       ds->source, ds->n, ds->h, ds->w, ds->c);
    if (ds->n > 0 && (!ds->pixels || !ds->labels))
        return rg_fail(err, RG_ERR_ARG, "%s: dataset %s has no pixels or labels", fn, ds->source);
    size_t total;
    if (__builtin_mul_overflow(rg_dataset_sample_bytes(ds), (size_t)ds->n, &total))
        return rg_fail(err, RG_ERR_ARG, "%s: dataset %s is larger than the address space", fn,
                       ds->source);
    return RG_OK;
}

/* Records where a dataset came from; a path too long for the field keeps
 * its end (the file names), marked by a leading "...". */
static void set_source(rg_dataset *ds, const char *path)
{
    const size_t cap = sizeof ds->source, len = strlen(path);
    if (len < cap) {
        memcpy(ds->source, path, len + 1);
    } else {
        memcpy(ds->source, "...", 3);
        memcpy(ds->source + 3, path + len - (cap - 4), cap - 4 + 1);
    }
}

/* Allocates an empty n-sample dataset shaped like `like`. */
static rg_status dataset_alloc(rg_dataset *out, int32_t n, const rg_dataset *like, rg_error *err)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    out->h = like->h;
    out->w = like->w;
    out->c = like->c;
    out->n_classes = like->n_classes;
    out->pixels = rg_malloc(rg_dataset_sample_bytes(like) * (size_t)n, err);
    out->labels = out->pixels ? rg_malloc((size_t)n, err) : NULL;
    if (!out->labels) {
        rg_dataset_free(out);
        return err ? rg_error_prefix(err, "%s: %d images", like->source, n) : RG_ERR_NOMEM;
    }
    return RG_OK;
}

/* ---- Loading ----------------------------------------------------------- */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Finds dir/name or dir/name.gz (the plain file wins) and writes its path. */
static rg_status find_idx(const char *dir, const char *name, char *path, size_t size,
                          rg_error *err)
{
    struct stat st;
    static const char *const suffixes[2] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        int len = snprintf(path, size, "%s/%s%s", dir, name, suffixes[i]);
        if (len < 0 || (size_t)len >= size)
            return rg_fail(err, RG_ERR_ARG, "%s: directory path too long", dir);
        if (stat(path, &st) == 0) return RG_OK;
    }
    return rg_fail(err, RG_ERR_NOTFOUND, "%s: missing %s (or %s.gz)", dir, name, name);
}

rg_status rg_dataset_load(const char *name_or_dir, const char *split, rg_dataset *out,
                          rg_error *err)
{
    if (!out) return rg_fail(err, RG_ERR_ARG, "rg_dataset_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!name_or_dir || !*name_or_dir)
        return rg_fail(err, RG_ERR_ARG, "dataset name or directory is empty");

    const int named = strcmp(name_or_dir, "fashion-mnist") == 0;
    const char *dir = named ? RG_FASHION_MNIST_DIR : name_or_dir;
    if (!is_dir(dir)) {
        if (named)
            return rg_fail(err, RG_ERR_NOTFOUND, "fashion-mnist: dataset not installed (no directory %s)",
                           dir);
        return rg_fail(err, RG_ERR_NOTFOUND,
                       "%s: no such dataset or directory (named datasets: fashion-mnist)", dir);
    }

    const char *prefix;
    if (split && strcmp(split, "train") == 0)
        prefix = "train";
    else if (split && strcmp(split, "test") == 0)
        prefix = "t10k";
    else
        return rg_fail(err, RG_ERR_ARG, "%s: split \"%s\": expected \"train\" or \"test\"", dir,
                       split ? split : "(null)");

    char name[64], img_path[4096], lab_path[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    rg_status st = find_idx(dir, name, img_path, sizeof img_path, err);
    if (st != RG_OK) return st;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    st = find_idx(dir, name, lab_path, sizeof lab_path, err);
    if (st != RG_OK) return st;

    uint8_t *pixels = NULL, *labels = NULL;
    int32_t n = 0, h = 0, w = 0, n_labels = 0;
    st = rg_idx_read_images(img_path, &pixels, &n, &h, &w, err);
    if (st != RG_OK) return st;
    st = rg_idx_read_labels(lab_path, &labels, &n_labels, err);
    if (st != RG_OK) {
        free(pixels);
        return st;
    }
    if (n_labels != n) {
        free(pixels);
        free(labels);
        return rg_fail(err, RG_ERR_FORMAT, "%s has %d images but %s has %d labels", img_path, n,
                       lab_path, n_labels);
    }

    /* Labels are bytes, so < 256 holds by construction; n_classes follows
     * the data rather than a table of known datasets. */
    int32_t max_label = 0;
    for (int32_t i = 0; i < n; i++)
        if (labels[i] > max_label) max_label = labels[i];

    out->n = n;
    out->h = h;
    out->w = w;
    out->c = 1;
    out->pixels = pixels;
    out->labels = labels;
    out->n_classes = max_label + 1;
    set_source(out, img_path);
    return RG_OK;
}

/* ---- Subsets ----------------------------------------------------------- */

rg_status rg_dataset_split(const rg_dataset *full, int32_t n_val, uint64_t seed,
                           rg_dataset *train, rg_dataset *val, rg_error *err)
{
    if (!train || !val) return rg_fail(err, RG_ERR_ARG, "rg_dataset_split: NULL output");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    rg_status st = dataset_check(full, "rg_dataset_split", err);
    if (st != RG_OK) return st;
    if (n_val < 0 || n_val > full->n)
        return rg_fail(err, RG_ERR_ARG, "%s: validation size %d is outside [0, %d]", full->source,
                       n_val, full->n);

    const int32_t n = full->n;
    uint32_t *perm = rg_malloc(sizeof *perm * (size_t)n, err);
    uint8_t *in_val = perm ? rg_calloc((size_t)n, 1, err) : NULL;
    if (!in_val) {
        free(perm);
        return err ? rg_error_prefix(err, "%s: splitting off the validation set", full->source) : RG_ERR_NOMEM;
    }
    rg_rng rng = rg_rng_keyed(seed, SPLIT_KEY, 0);
    rg_rng_permutation(&rng, perm, (uint32_t)n);
    for (int32_t i = 0; i < n_val; i++) in_val[perm[i]] = 1;
    free(perm);

    if ((st = dataset_alloc(train, n - n_val, full, err)) != RG_OK ||
        (st = dataset_alloc(val, n_val, full, err)) != RG_OK) {
        rg_dataset_free(train);
        free(in_val);
        return st;
    }
    /* One pass in dataset order keeps both parts in their original order. */
    const size_t sb = rg_dataset_sample_bytes(full);
    int32_t it = 0, iv = 0;
    for (int32_t i = 0; i < n; i++) {
        rg_dataset *to = in_val[i] ? val : train;
        int32_t *k = in_val[i] ? &iv : &it;
        memcpy(to->pixels + (size_t)*k * sb, full->pixels + (size_t)i * sb, sb);
        to->labels[*k] = full->labels[i];
        (*k)++;
    }
    free(in_val);
    snprintf(train->source, sizeof train->source, "%.200s [train part, seed %llu]", full->source,
             (unsigned long long)seed);
    snprintf(val->source, sizeof val->source, "%.200s [val part, seed %llu]", full->source,
             (unsigned long long)seed);
    return RG_OK;
}

rg_status rg_dataset_head(const rg_dataset *full, int32_t n, rg_dataset *out, rg_error *err)
{
    if (!out) return rg_fail(err, RG_ERR_ARG, "rg_dataset_head: NULL output");
    memset(out, 0, sizeof *out);
    rg_status st = dataset_check(full, "rg_dataset_head", err);
    if (st != RG_OK) return st;
    if (n < 0 || n > full->n)
        return rg_fail(err, RG_ERR_ARG, "%s: head size %d is outside [0, %d]", full->source, n,
                       full->n);
    if ((st = dataset_alloc(out, n, full, err)) != RG_OK) return st;
    if (n > 0) {
        memcpy(out->pixels, full->pixels, rg_dataset_sample_bytes(full) * (size_t)n);
        memcpy(out->labels, full->labels, (size_t)n);
    }
    snprintf(out->source, sizeof out->source, "%.200s [first %d]", full->source, n);
    return RG_OK;
}

/* ---- Identification ---------------------------------------------------- */

/* zlib's crc32 takes a uInt length: feed large blocks in pieces. */
static uLong crc_bytes(uLong crc, const uint8_t *p, size_t len)
{
    while (len > 0) {
        uInt piece = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, p, piece);
        p += piece;
        len -= piece;
    }
    return crc;
}

uint32_t rg_dataset_checksum(const rg_dataset *ds)
{
    if (!ds) return 0;
    uint8_t shape[16];
    const int32_t dims[4] = {ds->n, ds->h, ds->w, ds->c};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++) shape[4 * i + b] = (uint8_t)((uint32_t)dims[i] >> (8 * b));
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc_bytes(crc, shape, sizeof shape);
    if (ds->n > 0 && ds->pixels && ds->labels) {
        crc = crc_bytes(crc, ds->pixels, rg_dataset_sample_bytes(ds) * (size_t)ds->n);
        crc = crc_bytes(crc, ds->labels, (size_t)ds->n);
    }
    return (uint32_t)crc;
}
