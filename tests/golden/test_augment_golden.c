/* Augmentation ops against torchvision 0.14 (goldens written by
 * tools/golden/gen_augment_golden.py into tests/golden/augment/).
 *
 * Every policy op (RandAugment's, TrivialAugmentWide's and AutoAugment's
 * magnitude tables at fixed bins, both signs, with and without a fill), the
 * flips and the bilinear resized crop are applied with fixed parameters to a
 * grayscale 28x28 and an RGB 16x16 image and compared with torchvision's
 * output. The tolerance of each kind is stated in `tolerances` below and
 * explained in docs/augmentation.md; the magnitude tables and AutoAugment's
 * policy tables are compared too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/augment.h"
#include "regain/augment_ops.h"
#include "test_support.h"

/* Allowed difference per case kind: the largest absolute difference of a
 * byte and the fraction of bytes that may differ at all. {0, 0} is exact. */
typedef struct {
    const char *kind;
    int max_abs;
    double max_frac;
} tolerance;

static const tolerance tolerances[] = {
    /* Same float32 operations in the same order as torchvision: exact. */
    {"Identity", 0, 0}, {"Brightness", 0, 0}, {"Color", 0, 0}, {"Contrast", 0, 0},
    {"Sharpness", 0, 0}, {"Posterize", 0, 0}, {"Solarize", 0, 0}, {"AutoContrast", 0, 0},
    {"Equalize", 0, 0}, {"Invert", 0, 0}, {"hflip", 0, 0}, {"vflip", 0, 0},
    /* Whole-pixel shifts: exact. */
    {"TranslateX", 0, 0}, {"TranslateY", 0, 0},
    /* Nearest-pixel warps: the grid is computed with torchvision's float32
     * operations in its order, so the nearest pixel agrees even next to a
     * half-integer source coordinate: exact. */
    {"Rotate", 0, 0}, {"ShearX", 0, 0}, {"ShearY", 0, 0},
    /* Bilinear: the weights are ATen's, but its vectorized kernels group
     * the four products differently from our scalar sum; the last-ulp
     * difference moves a value across .5 now and then: off by one on at
     * most 2% of the bytes (measured: up to 5 of 784). */
    {"resizedcrop", 1, 0.02},
};

static const tolerance *tolerance_of(const char *kind)
{
    for (size_t i = 0; i < sizeof tolerances / sizeof tolerances[0]; i++)
        if (!strcmp(tolerances[i].kind, kind)) return &tolerances[i];
    fail_msg("no tolerance stated for '%s'", kind);
    return NULL;
}

typedef struct {
    int32_t h, w, c;
    uint8_t *px;
} image;

static image images[4];
static int n_images;

static uint8_t *unhex(const char *s, size_t n)
{
    if (strlen(s) != 2 * n) fail_msg("golden hex has %zu digits, expected %zu", strlen(s), 2 * n);
    uint8_t *out = malloc(n);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) fail_msg("bad hex");
        out[i] = (uint8_t)v;
    }
    return out;
}

static char *read_golden(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/augment/%s", rgt_env("REGAIN_GOLDEN_DIR"), name);
    size_t size;
    char *text = rgt_read_file(path, &size);
    assert_non_null(text);
    return text;
}

static rg_aug_op op_by_name(const char *name)
{
    for (int i = 0; i < RG_AUG_OP_COUNT; i++)
        if (!strcmp(rg_aug_op_name((rg_aug_op)i), name)) return (rg_aug_op)i;
    fail_msg("unknown op '%s' in goldens", name);
    return RG_AUG_IDENTITY;
}

typedef struct {
    int cases, differing_cases;
} tally;

/* Compares got with want under kind's tolerance; prints each difference. */
static void compare(const char *kind, const char *label, const uint8_t *got, const uint8_t *want, size_t n,
                    tally *t)
{
    const tolerance *tol = tolerance_of(kind);
    size_t diff = 0;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)want[i]);
        if (d) diff++;
        if (d > worst) worst = d;
    }
    t->cases++;
    if (diff) {
        t->differing_cases++;
        printf("  %-40s %zu of %zu bytes differ, max %d\n", label, diff, n, worst);
    }
    if (worst > tol->max_abs || (double)diff > tol->max_frac * (double)n)
        fail_msg("%s: %zu of %zu bytes differ from torchvision (max abs %d); allowed max abs %d, fraction %g", label,
                 diff, n, worst, tol->max_abs, tol->max_frac);
}

static void test_ops_match_torchvision(void **state)
{
    (void)state;
    char *text = read_golden("ops.txt");
    tally t = {0};
    int kinds_seen[RG_AUG_OP_COUNT] = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char kind[32], hex[8192], label[128];
        int idx, a, b, cc, d;
        float mag;
        if (sscanf(line, "image %d %d %d %d %8191s", &idx, &a, &b, &cc, hex) == 5) {
            assert_int_equal(idx, n_images);
            assert_true(n_images < 4);
            images[idx] = (image){a, b, cc, unhex(hex, (size_t)a * b * cc)};
            n_images++;
            continue;
        }
        /* the image index: second field, third for op lines */
        if (sscanf(line, "%31s", kind) != 1 ||
            (strcmp(kind, "op") ? sscanf(line, "%*s %d", &idx) : sscanf(line, "%*s %*s %d", &idx)) != 1 || idx < 0 ||
            idx >= n_images)
            fail_msg("bad line: %.60s", line);
        const image *im = &images[idx];
        const size_t n = (size_t)im->h * im->w * im->c;
        uint8_t *got = malloc(n), *scratch = malloc(n);
        assert_non_null(got);
        assert_non_null(scratch);
        memcpy(got, im->px, n);
        if (!strcmp(kind, "op")) {
            char name[32];
            int fill;
            if (sscanf(line, "op %31s %d %f %d %8191s", name, &idx, &mag, &fill, hex) != 5) fail_msg("bad op line");
            rg_aug_op op = op_by_name(name);
            kinds_seen[op]++;
            rg_aug_op_apply(op, mag, got, scratch, im->h, im->w, im->c, (uint8_t)fill);
            snprintf(label, sizeof label, "%s(%g, fill %d) on image %d", name, (double)mag, fill, idx);
            uint8_t *want = unhex(hex, n);
            compare(name, label, got, want, n, &t);
            free(want);
        } else if (!strcmp(kind, "hflip") || !strcmp(kind, "vflip")) {
            if (sscanf(line, "%*s %d %8191s", &idx, hex) != 2) fail_msg("bad flip line");
            if (kind[0] == 'h') rg_aug_hflip(got, im->h, im->w, im->c);
            else rg_aug_vflip(got, im->h, im->w, im->c);
            snprintf(label, sizeof label, "%s on image %d", kind, idx);
            uint8_t *want = unhex(hex, n);
            compare(kind, label, got, want, n, &t);
            free(want);
        } else if (!strcmp(kind, "resizedcrop")) {
            if (sscanf(line, "resizedcrop %d %d %d %d %d %8191s", &idx, &a, &b, &cc, &d, hex) != 6)
                fail_msg("bad resizedcrop line");
            rg_aug_resized_crop(got, scratch, im->h, im->w, im->c, a, b, cc, d);
            snprintf(label, sizeof label, "resizedcrop(%d,%d,%d,%d) on image %d", a, b, cc, d, idx);
            uint8_t *want = unhex(hex, n);
            compare(kind, label, got, want, n, &t);
            free(want);
        } else {
            fail_msg("unknown golden kind '%s'", kind);
        }
        free(got);
        free(scratch);
    }
    printf("  %d cases, %d not byte-identical\n", t.cases, t.differing_cases);
    /* every op is covered, and the goldens are not trivially few */
    for (int i = 0; i < RG_AUG_OP_COUNT; i++)
        if (!kinds_seen[i]) fail_msg("no golden case for %s", rg_aug_op_name((rg_aug_op)i));
    assert_true(t.cases > 150);
    assert_int_equal(n_images, 2);
    for (int i = 0; i < n_images; i++) free(images[i].px);
    n_images = 0;
    free(text);
}

static void test_magnitude_tables(void **state)
{
    (void)state;
    char *text = read_golden("magnitudes.txt");
    char *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char space[8], name[32];
        int bins, h, w, sign, used;
        if (sscanf(line, "%7s %31s %d %d %d %d%n", space, name, &bins, &h, &w, &sign, &used) != 6)
            fail_msg("bad magnitude line: %.60s", line);
        rg_aug_space sp = !strcmp(space, "ra")   ? RG_AUG_SPACE_RANDAUGMENT
                          : !strcmp(space, "ta") ? RG_AUG_SPACE_TRIVIALWIDE
                                                 : RG_AUG_SPACE_AUTOAUGMENT;
        rg_aug_op op = op_by_name(name);
        assert_int_equal(rg_aug_op_has_magnitude(op), 1);
        assert_int_equal(rg_aug_op_signed(op), sign);
        const char *p = line + used;
        for (int b = 0; b < bins; b++) {
            char *end;
            double want = strtod(p, &end);
            if (end == p) fail_msg("%s %s: %d values, expected %d", space, name, b, bins);
            p = end;
            float got = rg_aug_magnitude(sp, op, b, bins, h, w);
            /* torch's vectorized linspace can differ from the scalar
             * formula by one ulp; what the ops use exactly (posterize bits,
             * whole-pixel translations) must be equal. */
            if (op == RG_AUG_POSTERIZE) assert_int_equal((int)got, (int)want);
            if (op == RG_AUG_TRANSLATE_X || op == RG_AUG_TRANSLATE_Y) assert_int_equal((int)got, (int)want);
            if (fabs((double)got - want) > 1e-6 * fmax(1.0, fabs(want)))
                fail_msg("%s %s bin %d of %d (%dx%d): %.9g, torchvision %.9g", space, name, b, bins, h, w, (double)got,
                         want);
        }
        lines++;
    }
    assert_true(lines >= 90);
    free(text);
}

/* AutoAugment's tables, stored as data in policy.c, against torchvision's. */
static void test_autoaugment_tables(void **state)
{
    (void)state;
    char *text = read_golden("autoaugment.txt");
    char *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char table[16], name[2][32];
        int sub, bin[2];
        float prob[2];
        if (sscanf(line, "%15s %d %31s %f %d %31s %f %d", table, &sub, name[0], &prob[0], &bin[0], name[1], &prob[1],
                   &bin[1]) != 8)
            fail_msg("bad autoaugment line: %.60s", line);
        const int32_t t = !strcmp(table, "cifar10") ? RG_AUTOAUG_CIFAR10
                          : !strcmp(table, "svhn")  ? RG_AUTOAUG_SVHN
                                                    : RG_AUTOAUG_IMAGENET;
        for (int k = 0; k < 2; k++) {
            rg_aug_op op;
            float p;
            int32_t b;
            assert_int_equal(rg_aug_autoaugment_step(t, sub, k, &op, &p, &b), 0);
            if (strcmp(rg_aug_op_name(op), name[k]) || p != prob[k] || b != bin[k])
                fail_msg("%s sub-policy %d step %d: %s %g %d, torchvision %s %g %d", table, sub, k, rg_aug_op_name(op),
                         (double)p, b, name[k], (double)prob[k], bin[k]);
        }
        lines++;
    }
    assert_int_equal(lines, 75);
    rg_aug_op op;
    float p;
    int32_t b;
    assert_int_equal(rg_aug_autoaugment_step(3, 0, 0, &op, &p, &b), -1);
    assert_int_equal(rg_aug_autoaugment_step(0, 25, 0, &op, &p, &b), -1);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magnitude_tables),
        cmocka_unit_test(test_autoaugment_tables),
        cmocka_unit_test(test_ops_match_torchvision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
