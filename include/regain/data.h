/* regain — datasets: IDX files, splits and identification.
 *
 * A dataset is n images of h x w x c unsigned bytes (NHWC, one block) plus n
 * byte labels. It comes from IDX files, the format of MNIST and
 * Fashion-MNIST, read raw or gzip-compressed (told apart by the gzip magic
 * bytes 1f 8b, never by the file name). Everything read is validated: a
 * damaged or hostile file yields RG_ERR_FORMAT with a message naming the file
 * and the problem, never a crash and never an allocation sized by an
 * unchecked header.
 *
 *     rg_error err = {0};
 *     rg_dataset full = {0}, train = {0}, val = {0};
 *     if (rg_dataset_load("fashion-mnist", "train", &full, &err) != RG_OK ||
 *         rg_dataset_split(&full, 5000, seed, &train, &val, &err) != RG_OK) {
 *         fprintf(stderr, "regain: %s\n", err.msg);   // tools only
 *         ...
 *     }
 *     rg_dataset_free(&full);          // train and val hold their own copies
 *     ...
 *     rg_dataset_free(&train);
 *     rg_dataset_free(&val);
 *
 * Batching, shuffling and augmentation live in loader.h and augment.h.
 */
#ifndef REGAIN_DATA_H
#define REGAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"

typedef struct {
    int32_t n, h, w, c;     /* images are NHWC uint8, n*h*w*c bytes */
    uint8_t *pixels;
    uint8_t *labels;        /* n labels */
    int32_t n_classes;      /* max label + 1 (10 for Fashion-MNIST) */
    char source[256];       /* where it came from, for messages and reports */
} rg_dataset;

/* Limits beyond which an IDX header is rejected as implausible. */
#define RG_IDX_MAX_ITEMS 100000000u
#define RG_IDX_MAX_SIDE 4096u
/* The most pixel bytes (n*h*w) an image file may hold. A gzip stream can
 * expand a thousandfold: without a limit, a small file with a plausible
 * header could make the reader grow its buffer to many gigabytes.
 * Fashion-MNIST's training images are 47 MB. */
#define RG_IDX_MAX_BYTES ((uint64_t)1 << 32)

/* The directory that the name "fashion-mnist" stands for. */
#define RG_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- IDX readers ------------------------------------------------------- */

/* Reads an IDX image file (magic 0x00000803: unsigned bytes, 3 dimensions
 * n x h x w) from path, raw or gzip.
 *
 * Checks: the magic (an other IDX element type is RG_ERR_UNSUPPORTED, an other
 * magic RG_ERR_FORMAT), 0 < n <= RG_IDX_MAX_ITEMS, 0 < h, w <= RG_IDX_MAX_SIDE,
 * n*h*w <= RG_IDX_MAX_BYTES, and that the file holds exactly n*h*w pixel
 * bytes after the header (fewer is "truncated", more is "trailing data");
 * for gzip, the stream itself must be intact (CRC and length checked).
 * Memory grows with the bytes actually read, so a header that lies about
 * its size costs nothing.
 *
 * On success *pixels is a new malloc'd block of n*h*w bytes that the caller
 * releases with free(). On failure *pixels is NULL, *n = *h = *w = 0, and err
 * holds "PATH: problem" with RG_ERR_IO (cannot open or read), RG_ERR_FORMAT,
 * RG_ERR_UNSUPPORTED or RG_ERR_NOMEM. */
rg_status rg_idx_read_images(const char *path, uint8_t **pixels, int32_t *n, int32_t *h,
                             int32_t *w, rg_error *err);

/* Reads an IDX label file (magic 0x00000801: unsigned bytes, 1 dimension n),
 * raw or gzip, with the same checks and error conventions as
 * rg_idx_read_images. On success *labels is a new malloc'd block of n bytes
 * that the caller releases with free(). */
rg_status rg_idx_read_labels(const char *path, uint8_t **labels, int32_t *n, rg_error *err);

/* ---- Datasets ---------------------------------------------------------- */

/* Loads one split of an IDX dataset into *out (c = 1).
 *
 * name_or_dir is "fashion-mnist" (the fixed directory RG_FASHION_MNIST_DIR)
 * or a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally with a
 * .gz suffix (the plain name wins when both exist). split is "train" or
 * "test" (the t10k files). The image and label counts must agree
 * (RG_ERR_FORMAT naming both files and both counts otherwise); n_classes is
 * the largest label + 1; source is the images file's path.
 *
 * On success *out owns its memory (release with rg_dataset_free). On failure
 * *out is zeroed and owns nothing; a missing dataset or file is
 * RG_ERR_NOTFOUND, a bad split name RG_ERR_ARG, and the readers' errors pass
 * through unchanged. */
rg_status rg_dataset_load(const char *name_or_dir, const char *split, rg_dataset *out,
                          rg_error *err);

/* Deterministic hold-out: a permutation of 0..n-1 drawn from
 * rg_rng_keyed(seed, 0x5641, 0) sends its first n_val entries to *val and the
 * rest to *train; both keep the original relative order of their samples.
 * 0 <= n_val <= full->n (either part may be empty). *train and *val are new
 * copies (release each with rg_dataset_free) with full's h, w, c and
 * n_classes; *full is not modified. On failure both are zeroed. */
rg_status rg_dataset_split(const rg_dataset *full, int32_t n_val, uint64_t seed,
                           rg_dataset *train, rg_dataset *val, rg_error *err);

/* Copies the first n samples of *full (0 <= n <= full->n) into *out, a new
 * dataset released with rg_dataset_free; for tests and quick runs. On failure
 * *out is zeroed. */
rg_status rg_dataset_head(const rg_dataset *full, int32_t n, rg_dataset *out, rg_error *err);

/* Releases what *ds owns and zeroes it. Safe on a zeroed dataset and NULL.
 * Only for datasets made by this module (pixels and labels come from malloc). */
void rg_dataset_free(rg_dataset *ds);

/* Bytes of one image: h*w*c. */
size_t rg_dataset_sample_bytes(const rg_dataset *ds);

/* CRC-32 (zlib's) over the shape (n, h, w, c as four little-endian 32-bit
 * words), then the pixels, then the labels: identifies the data in reports
 * and run records. Not a cryptographic hash. */
uint32_t rg_dataset_checksum(const rg_dataset *ds);

/* The name of class c (0 <= c < classes) for tables and reports: the
 * Fashion-MNIST names ("T-shirt/top", ..., "Ankle boot") when there are 10
 * classes, otherwise "class <c>" written into buf (size bytes). */
const char *rg_class_name(int32_t classes, int32_t c, char *buf, size_t size);

#endif
