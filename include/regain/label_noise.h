/* regain — label noise: corrupt a seeded fraction of training labels, for
 * experiments on learning with noisy labels.
 *
 * Two kinds:
 *   symmetric   exactly round(fraction * n) samples, drawn uniformly, each get
 *               a label drawn uniformly from the OTHER classes (so exactly
 *               that fraction of labels is wrong; some papers also allow the
 *               true class, which makes the real noise rate fraction*(K-1)/K).
 *   asymmetric  class-dependent: a map sends class c to map[c]; of each class
 *               c with map[c] != c exactly round(fraction * n_c) samples get
 *               label map[c]; classes mapped to themselves stay clean. The
 *               default map for 10 classes is Fashion-MNIST's confusable pairs
 *               T-shirt/top <-> Shirt (0 <-> 6), Pullover <-> Coat (2 <-> 4),
 *               Sandal <-> Sneaker (5 <-> 7).
 *
 * Which samples flip comes from a permutation drawn from rg_rng_keyed(seed,
 * 0x4C4E, 0) and the new symmetric labels from rg_rng_keyed(seed, 0x4C4E,
 * 1 + i): the same (seed, data) always gives the same noisy labels.
 *
 *     uint8_t *clean = malloc(train.n);
 *     rg_label_noise_config nc = {.kind = RG_NOISE_SYMMETRIC, .fraction = 0.4f, .seed = 1};
 *     int32_t flipped;
 *     if (rg_label_noise_apply(&train, &nc, clean, &flipped, &err) != RG_OK) ...
 *     // train.labels[i] != clean[i] exactly for the flipped samples
 */
#ifndef REGAIN_LABEL_NOISE_H
#define REGAIN_LABEL_NOISE_H

#include <stdint.h>

#include "regain/data.h"
#include "regain/status.h"

typedef enum { RG_NOISE_SYMMETRIC = 0, RG_NOISE_ASYMMETRIC = 1 } rg_noise_kind;

/* Most classes a map may name (labels are bytes). */
#define RG_NOISE_MAX_CLASSES 256

typedef struct {
    rg_noise_kind kind;
    float fraction;         /* in [0, 1] */
    const int32_t *map;     /* asymmetric: n_classes entries, class -> class; NULL = the default map */
    uint64_t seed;
} rg_label_noise_config;

/* Corrupts ds->labels in place as cfg says. clean (may be NULL) receives the
 * n original labels first. *flipped (may be NULL) receives the number of
 * labels changed. Checks: fraction in [0, 1]; symmetric needs >= 2 classes;
 * asymmetric needs a map of ds->n_classes entries in [0, n_classes), or,
 * without one, exactly 10 classes (the default map). Errors are RG_ERR_ARG
 * naming the problem; ds is unchanged on failure. */
rg_status rg_label_noise_apply(rg_dataset *ds, const rg_label_noise_config *cfg, uint8_t *clean, int32_t *flipped,
                               rg_error *err);

/* The default asymmetric map for 10 classes (Fashion-MNIST pairs above). */
const int32_t *rg_label_noise_default_map(void);

/* Parses a map written "FROM:TO,FROM:TO,..." (spaces allowed) into map[0 ..
 * classes), every other class mapped to itself. Errors (RG_ERR_ARG) name the
 * entry: not "a:b", a class outside [0, classes), a class given twice. */
rg_status rg_label_noise_parse_map(const char *text, int32_t classes, int32_t *map, rg_error *err);

#endif
