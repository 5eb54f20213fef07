/* Label noise: symmetric and class-dependent (asymmetric) corruption of a
 * seeded, exactly counted set of training labels (see label_noise.h). */
#include "regain/label_noise.h"
#include "regain/rng.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Key of the label-noise draws ("LN"). */
#define NOISE_KEY 0x4C4Eu

static const int32_t fashion_pairs[10] = {6, 1, 4, 3, 2, 7, 0, 5, 8, 9};

const int32_t *rg_label_noise_default_map(void) { return fashion_pairs; }

/* round(fraction * n), halves away from zero, computed in double. */
static int32_t exact_count(float fraction, int32_t n) { return (int32_t)llround((double)fraction * (double)n); }

rg_status rg_label_noise_apply(rg_dataset *ds, const rg_label_noise_config *cfg, uint8_t *clean, int32_t *flipped,
                               rg_error *err)
{
    if (flipped) *flipped = 0;
    if (!ds || !cfg) return rg_fail(err, RG_ERR_ARG, "label_noise: dataset or configuration is NULL");
    if (!(cfg->fraction >= 0.0f && cfg->fraction <= 1.0f))
        return rg_fail(err, RG_ERR_ARG, "label_noise: fraction %g is outside [0, 1]", (double)cfg->fraction);
    const int32_t n = ds->n, k = ds->n_classes;
    if (n < 0 || (n > 0 && !ds->labels)) return rg_fail(err, RG_ERR_ARG, "label_noise: dataset %s has no labels", ds->source);
    if (k < 1 || k > RG_NOISE_MAX_CLASSES)
        return rg_fail(err, RG_ERR_ARG, "label_noise: %d classes is outside [1, %d]", k, RG_NOISE_MAX_CLASSES);
    const int32_t *map = NULL;
    if (cfg->kind == RG_NOISE_SYMMETRIC) {
        if (k < 2 && cfg->fraction > 0.0f)
            return rg_fail(err, RG_ERR_ARG, "label_noise: symmetric noise needs at least 2 classes, %s has %d",
                           ds->source, k);
    } else if (cfg->kind == RG_NOISE_ASYMMETRIC) {
        map = cfg->map;
        if (!map) {
            if (k != 10)
                return rg_fail(err, RG_ERR_ARG,
                               "label_noise_map: the default asymmetric map is for 10 classes (Fashion-MNIST); "
                               "%s has %d: give a map",
                               ds->source, k);
            map = fashion_pairs;
        }
        for (int32_t c = 0; c < k; c++)
            if (map[c] < 0 || map[c] >= k)
                return rg_fail(err, RG_ERR_ARG, "label_noise_map: class %d maps to %d, outside [0, %d)", c, map[c], k);
    } else {
        return rg_fail(err, RG_ERR_ARG, "label_noise_kind: %d is not a kind of noise", (int)cfg->kind);
    }
    for (int32_t i = 0; i < n; i++)
        if (ds->labels[i] >= k)
            return rg_fail(err, RG_ERR_ARG, "label_noise: %s: label %d of sample %d is not below n_classes %d",
                           ds->source, ds->labels[i], i, k);
    if (clean && n > 0) memcpy(clean, ds->labels, (size_t)n);
    if (n == 0 || cfg->fraction == 0.0f) return RG_OK;

    uint32_t *perm = rg_malloc((size_t)n * sizeof *perm, err);
    if (!perm) return RG_ERR_NOMEM;
    rg_rng r = rg_rng_keyed(cfg->seed, NOISE_KEY, 0);
    rg_rng_permutation(&r, perm, (uint32_t)n);
    int32_t changed = 0;
    if (!map) {
        const int32_t want = exact_count(cfg->fraction, n);
        for (int32_t j = 0; j < want; j++) {
            const uint32_t i = perm[j];
            rg_rng s = rg_rng_keyed(cfg->seed, NOISE_KEY, 1 + (uint64_t)i);
            /* uniform over the k - 1 other classes */
            int32_t to = (int32_t)rg_rng_below(&s, (uint32_t)(k - 1));
            if (to >= ds->labels[i]) to++;
            ds->labels[i] = (uint8_t)to;
        }
        changed = want;
    } else {
        /* per class: the first round(fraction * n_c) samples of class c in
         * permutation order go to map[c] */
        int32_t count[RG_NOISE_MAX_CLASSES] = {0}, want[RG_NOISE_MAX_CLASSES] = {0};
        for (int32_t i = 0; i < n; i++) count[ds->labels[i]]++;
        for (int32_t c = 0; c < k; c++) want[c] = map[c] == c ? 0 : exact_count(cfg->fraction, count[c]);
        for (int32_t j = 0; j < n; j++) {
            const uint32_t i = perm[j];
            /* each sample is visited once, so its label here is still the clean one */
            const int32_t c = ds->labels[i];
            if (want[c] > 0) {
                want[c]--;
                ds->labels[i] = (uint8_t)map[c];
                changed++;
            }
        }
    }
    free(perm);
    if (flipped) *flipped = changed;
    return RG_OK;
}

rg_status rg_label_noise_parse_map(const char *text, int32_t classes, int32_t *map, rg_error *err)
{
    if (classes < 1 || classes > RG_NOISE_MAX_CLASSES)
        return rg_fail(err, RG_ERR_ARG, "label_noise_map: %d classes is outside [1, %d]", classes,
                       RG_NOISE_MAX_CLASSES);
    uint8_t seen[RG_NOISE_MAX_CLASSES] = {0};
    for (int32_t c = 0; c < classes; c++) map[c] = c;
    const char *p = text;
    int entry = 0;
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        entry++;
        char *end;
        errno = 0;
        long from = strtol(p, &end, 10);
        const char *q = end;
        while (isspace((unsigned char)*q)) q++;
        if (end == p || errno || *q != ':')
            return rg_fail(err, RG_ERR_ARG, "label_noise_map: entry %d ('%.20s') is not FROM:TO", entry, p);
        q++;
        errno = 0;
        long to = strtol(q, &end, 10);
        if (end == q || errno)
            return rg_fail(err, RG_ERR_ARG, "label_noise_map: entry %d ('%.20s') is not FROM:TO", entry, p);
        if (from < 0 || from >= classes || to < 0 || to >= classes)
            return rg_fail(err, RG_ERR_ARG, "label_noise_map: entry %d (%ld:%ld) names a class outside [0, %d)", entry,
                           from, to, classes);
        if (seen[from]) return rg_fail(err, RG_ERR_ARG, "label_noise_map: class %ld is mapped twice", from);
        seen[from] = 1;
        map[from] = (int32_t)to;
        p = end;
        while (isspace((unsigned char)*p)) p++;
        if (*p == ',') p++;
        else if (*p)
            return rg_fail(err, RG_ERR_ARG, "label_noise_map: expected ',' after entry %d, found '%.20s'", entry, p);
    }
    return RG_OK;
}
