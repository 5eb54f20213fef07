/* Augmentation policies: the op set, its magnitude tables, AutoAugment's
 * published sub-policies (data), and the draws of RandAugment,
 * TrivialAugment (wide) and AutoAugment.
 *
 * Everything mirrors torchvision 0.14's transforms/autoaugment.py: the op
 * order (so a uniform index picks the same op), the magnitude tables
 * (torch.linspace in float32), which ops draw a sign and which sign value
 * negates. The random numbers themselves come from rg_rng, not torch's
 * generator, so the images are the same distribution, not the same samples.
 */
#include "internal.h"

#include <math.h>

static const char *const op_names[RG_AUG_OP_COUNT] = {
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize", "Invert"};

const char *rg_aug_op_name(rg_aug_op op)
{
    return (unsigned)op < RG_AUG_OP_COUNT ? op_names[op] : "?";
}

int rg_aug_op_has_magnitude(rg_aug_op op)
{
    return op != RG_AUG_IDENTITY && op != RG_AUG_AUTOCONTRAST && op != RG_AUG_EQUALIZE &&
           op != RG_AUG_INVERT && (unsigned)op < RG_AUG_OP_COUNT;
}

int rg_aug_op_signed(rg_aug_op op) { return op >= RG_AUG_SHEAR_X && op <= RG_AUG_SHARPNESS; }

/* torch.linspace(start, end, steps)[i] for float32: the step in float, the
 * first half counted from start, the second from end. */
static float linspace(float start, float end, int32_t steps, int32_t i)
{
    if (steps == 1) return start;
    const float step = (end - start) / (float)(steps - 1);
    return i < steps / 2 ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

float rg_aug_magnitude(rg_aug_space space, rg_aug_op op, int32_t bin, int32_t bins, int32_t h, int32_t w)
{
    const int wide = space == RG_AUG_SPACE_TRIVIALWIDE;
    switch (op) {
    case RG_AUG_SHEAR_X:
    case RG_AUG_SHEAR_Y: return linspace(0.0f, wide ? 0.99f : 0.3f, bins, bin);
    case RG_AUG_TRANSLATE_X:
        return linspace(0.0f, wide ? 32.0f : (float)(150.0 / 331.0 * w), bins, bin);
    case RG_AUG_TRANSLATE_Y:
        return linspace(0.0f, wide ? 32.0f : (float)(150.0 / 331.0 * h), bins, bin);
    case RG_AUG_ROTATE: return linspace(0.0f, wide ? 135.0f : 30.0f, bins, bin);
    case RG_AUG_BRIGHTNESS:
    case RG_AUG_COLOR:
    case RG_AUG_CONTRAST:
    case RG_AUG_SHARPNESS: return linspace(0.0f, wide ? 0.99f : 0.9f, bins, bin);
    case RG_AUG_POSTERIZE: {
        /* 8 - (arange(bins) / ((bins - 1) / k)).round(), k = 6 wide, 4 otherwise */
        const float q = (float)((double)(bins - 1) / (wide ? 6.0 : 4.0));
        return (float)(8 - (int32_t)nearbyintf((float)bin / q));
    }
    case RG_AUG_SOLARIZE: return linspace(255.0f, 0.0f, bins, bin);
    default: return 0.0f;
    }
}

void rg_aug_op_apply(rg_aug_op op, float magnitude, uint8_t *img, uint8_t *scratch, int32_t h, int32_t w,
                     int32_t c, uint8_t fill)
{
    const int32_t n = h * w;
    /* integer magnitudes are cast below: keep the cast defined for any float */
    const float imag = magnitude != magnitude ? 0.0f : magnitude > 1e6f ? 1e6f : magnitude < -1e6f ? -1e6f : magnitude;
    /* 1.0 + magnitude in double, as Python computes it (see photometric.c) */
    double factor = 1.0 + (double)magnitude;
    if (factor < 0.0) factor = 0.0;
    switch (op) {
    case RG_AUG_SHEAR_X: rg_aug_shear_x(img, scratch, h, w, c, magnitude, fill); break;
    case RG_AUG_SHEAR_Y: rg_aug_shear_y(img, scratch, h, w, c, magnitude, fill); break;
    case RG_AUG_TRANSLATE_X: rg_aug_translate_x(img, scratch, h, w, c, (int32_t)imag, fill); break;
    case RG_AUG_TRANSLATE_Y: rg_aug_translate_y(img, scratch, h, w, c, (int32_t)imag, fill); break;
    case RG_AUG_ROTATE: rg_aug_rotate(img, scratch, h, w, c, magnitude, fill); break;
    case RG_AUG_BRIGHTNESS: rg_aug_brightness(img, n, c, factor); break;
    case RG_AUG_COLOR: rg_aug_color(img, n, c, factor); break;
    case RG_AUG_CONTRAST: rg_aug_contrast(img, n, c, factor); break;
    case RG_AUG_SHARPNESS: rg_aug_sharpness(img, scratch, h, w, c, factor); break;
    case RG_AUG_POSTERIZE: rg_aug_posterize(img, n, c, (int32_t)imag); break;
    case RG_AUG_SOLARIZE: rg_aug_solarize(img, n, c, magnitude); break;
    case RG_AUG_AUTOCONTRAST: rg_aug_autocontrast(img, n, c); break;
    case RG_AUG_EQUALIZE: rg_aug_equalize(img, n, c); break;
    case RG_AUG_INVERT: rg_aug_invert(img, n, c); break;
    default: break;
    }
}

/* ---- AutoAugment's sub-policies ------------------------------------------ */

/* One op of a sub-policy: applied when a uniform draw is <= p, with bin
 * `bin` of the 10-bin AutoAugment space (-1: no magnitude). */
typedef struct {
    uint8_t op;
    float p;
    int8_t bin;
} aa_step;

#define AA(o1, p1, m1, o2, p2, m2) {{RG_AUG_##o1, p1, m1}, {RG_AUG_##o2, p2, m2}}
#define N -1

/* torchvision 0.14 AutoAugmentPolicy.IMAGENET, CIFAR10, SVHN (25 each),
 * from "AutoAugment: Learning Augmentation Strategies from Data" (Cubuk et
 * al., 2019), appendix tables. */
static const aa_step aa_imagenet[25][2] = {
    AA(POSTERIZE, 0.4f, 8, ROTATE, 0.6f, 9),          AA(SOLARIZE, 0.6f, 5, AUTOCONTRAST, 0.6f, N),
    AA(EQUALIZE, 0.8f, N, EQUALIZE, 0.6f, N),         AA(POSTERIZE, 0.6f, 7, POSTERIZE, 0.6f, 6),
    AA(EQUALIZE, 0.4f, N, SOLARIZE, 0.2f, 4),         AA(EQUALIZE, 0.4f, N, ROTATE, 0.8f, 8),
    AA(SOLARIZE, 0.6f, 3, EQUALIZE, 0.6f, N),         AA(POSTERIZE, 0.8f, 5, EQUALIZE, 1.0f, N),
    AA(ROTATE, 0.2f, 3, SOLARIZE, 0.6f, 8),           AA(EQUALIZE, 0.6f, N, POSTERIZE, 0.4f, 6),
    AA(ROTATE, 0.8f, 8, COLOR, 0.4f, 0),              AA(ROTATE, 0.4f, 9, EQUALIZE, 0.6f, N),
    AA(EQUALIZE, 0.0f, N, EQUALIZE, 0.8f, N),         AA(INVERT, 0.6f, N, EQUALIZE, 1.0f, N),
    AA(COLOR, 0.6f, 4, CONTRAST, 1.0f, 8),            AA(ROTATE, 0.8f, 8, COLOR, 1.0f, 2),
    AA(COLOR, 0.8f, 8, SOLARIZE, 0.8f, 7),            AA(SHARPNESS, 0.4f, 7, INVERT, 0.6f, N),
    AA(SHEAR_X, 0.6f, 5, EQUALIZE, 1.0f, N),          AA(COLOR, 0.4f, 0, EQUALIZE, 0.6f, N),
    AA(EQUALIZE, 0.4f, N, SOLARIZE, 0.2f, 4),         AA(SOLARIZE, 0.6f, 5, AUTOCONTRAST, 0.6f, N),
    AA(INVERT, 0.6f, N, EQUALIZE, 1.0f, N),           AA(COLOR, 0.6f, 4, CONTRAST, 1.0f, 8),
    AA(EQUALIZE, 0.8f, N, EQUALIZE, 0.6f, N),
};

static const aa_step aa_cifar10[25][2] = {
    AA(INVERT, 0.1f, N, CONTRAST, 0.2f, 6),           AA(ROTATE, 0.7f, 2, TRANSLATE_X, 0.3f, 9),
    AA(SHARPNESS, 0.8f, 1, SHARPNESS, 0.9f, 3),       AA(SHEAR_Y, 0.5f, 8, TRANSLATE_Y, 0.7f, 9),
    AA(AUTOCONTRAST, 0.5f, N, EQUALIZE, 0.9f, N),     AA(SHEAR_Y, 0.2f, 7, POSTERIZE, 0.3f, 7),
    AA(COLOR, 0.4f, 3, BRIGHTNESS, 0.6f, 7),          AA(SHARPNESS, 0.3f, 9, BRIGHTNESS, 0.7f, 9),
    AA(EQUALIZE, 0.6f, N, EQUALIZE, 0.5f, N),         AA(CONTRAST, 0.6f, 7, SHARPNESS, 0.6f, 5),
    AA(COLOR, 0.7f, 7, TRANSLATE_X, 0.5f, 8),         AA(EQUALIZE, 0.3f, N, AUTOCONTRAST, 0.4f, N),
    AA(TRANSLATE_Y, 0.4f, 3, SHARPNESS, 0.2f, 6),     AA(BRIGHTNESS, 0.9f, 6, COLOR, 0.2f, 8),
    AA(SOLARIZE, 0.5f, 2, INVERT, 0.0f, N),           AA(EQUALIZE, 0.2f, N, AUTOCONTRAST, 0.6f, N),
    AA(EQUALIZE, 0.2f, N, EQUALIZE, 0.6f, N),         AA(COLOR, 0.9f, 9, EQUALIZE, 0.6f, N),
    AA(AUTOCONTRAST, 0.8f, N, SOLARIZE, 0.2f, 8),     AA(BRIGHTNESS, 0.1f, 3, COLOR, 0.7f, 0),
    AA(SOLARIZE, 0.4f, 5, AUTOCONTRAST, 0.9f, N),     AA(TRANSLATE_Y, 0.9f, 9, TRANSLATE_Y, 0.7f, 9),
    AA(AUTOCONTRAST, 0.9f, N, SOLARIZE, 0.8f, 3),     AA(EQUALIZE, 0.8f, N, INVERT, 0.1f, N),
    AA(TRANSLATE_Y, 0.7f, 9, AUTOCONTRAST, 0.9f, N),
};

static const aa_step aa_svhn[25][2] = {
    AA(SHEAR_X, 0.9f, 4, INVERT, 0.2f, N),            AA(SHEAR_Y, 0.9f, 8, INVERT, 0.7f, N),
    AA(EQUALIZE, 0.6f, N, SOLARIZE, 0.6f, 6),         AA(INVERT, 0.9f, N, EQUALIZE, 0.6f, N),
    AA(EQUALIZE, 0.6f, N, ROTATE, 0.9f, 3),           AA(SHEAR_X, 0.9f, 4, AUTOCONTRAST, 0.8f, N),
    AA(SHEAR_Y, 0.9f, 8, INVERT, 0.4f, N),            AA(SHEAR_Y, 0.9f, 5, SOLARIZE, 0.2f, 6),
    AA(INVERT, 0.9f, N, AUTOCONTRAST, 0.8f, N),       AA(EQUALIZE, 0.6f, N, ROTATE, 0.9f, 3),
    AA(SHEAR_X, 0.9f, 4, SOLARIZE, 0.3f, 3),          AA(SHEAR_Y, 0.8f, 8, INVERT, 0.7f, N),
    AA(EQUALIZE, 0.9f, N, TRANSLATE_Y, 0.6f, 6),      AA(INVERT, 0.9f, N, EQUALIZE, 0.6f, N),
    AA(CONTRAST, 0.3f, 3, ROTATE, 0.8f, 4),           AA(INVERT, 0.8f, N, TRANSLATE_Y, 0.0f, 2),
    AA(SHEAR_Y, 0.7f, 6, SOLARIZE, 0.4f, 8),          AA(INVERT, 0.6f, N, ROTATE, 0.8f, 4),
    AA(SHEAR_Y, 0.3f, 7, TRANSLATE_X, 0.9f, 3),       AA(SHEAR_X, 0.1f, 6, INVERT, 0.6f, N),
    AA(SOLARIZE, 0.7f, 2, TRANSLATE_Y, 0.6f, 7),      AA(SHEAR_Y, 0.8f, 4, INVERT, 0.8f, N),
    AA(SHEAR_X, 0.7f, 9, TRANSLATE_Y, 0.8f, 3),       AA(SHEAR_Y, 0.8f, 5, AUTOCONTRAST, 0.7f, N),
    AA(SHEAR_X, 0.7f, 2, INVERT, 0.1f, N),
};

#undef N
#undef AA

#define AA_BINS 10
#define AA_POLICIES 25

static const aa_step (*aa_table(int32_t table))[2]
{
    return table == RG_AUTOAUG_SVHN ? aa_svhn : table == RG_AUTOAUG_IMAGENET ? aa_imagenet : aa_cifar10;
}

int rg_aug_autoaugment_step(int32_t table, int32_t sub, int32_t k, rg_aug_op *op, float *p, int32_t *bin)
{
    if (table < RG_AUTOAUG_CIFAR10 || table > RG_AUTOAUG_IMAGENET || sub < 0 || sub >= AA_POLICIES || k < 0 || k > 1)
        return -1;
    const aa_step *st = &aa_table(table)[sub][k];
    *op = (rg_aug_op)st->op;
    *p = st->p;
    *bin = st->bin;
    return 0;
}

/* ---- Draws ----------------------------------------------------------------- */

/* Appends op with magnitude bin `bin` (-1 = none) to p, the sign negated
 * when `negate` (only for signed ops). */
static void push(rg_augment_params *p, rg_aug_space space, rg_aug_op op, int32_t bin, int32_t bins, int negate,
                 int32_t h, int32_t w)
{
    float m = bin >= 0 && rg_aug_op_has_magnitude(op) ? rg_aug_magnitude(space, op, bin, bins, h, w) : 0.0f;
    if (negate && rg_aug_op_signed(op)) m = -m;
    p->op[p->n_ops] = (int32_t)op;
    p->magnitude[p->n_ops] = m;
    p->n_ops++;
}

void aug_draw_policy(const rg_augment_config *cfg, int32_t h, int32_t w, rg_rng *rng, rg_augment_params *p)
{
    p->n_ops = 0;
    p->fill = (uint8_t)cfg->fill;
    switch (cfg->policy) {
    case RG_AUG_POLICY_RANDAUGMENT:
        /* per op: its index, then a sign bit only for signed ops (1 negates) */
        for (int32_t i = 0; i < cfg->ra_n; i++) {
            const rg_aug_op op = (rg_aug_op)rg_rng_below(rng, RG_AUG_RANDAUGMENT_OPS);
            const int neg = rg_aug_op_signed(op) ? (int)rg_rng_below(rng, 2) : 0;
            push(p, RG_AUG_SPACE_RANDAUGMENT, op, cfg->ra_m, RG_AUGMENT_BINS, neg, h, w);
        }
        break;
    case RG_AUG_POLICY_TRIVIALAUGMENT: {
        /* op index, a bin only for ops with a magnitude, a sign only for signed ops */
        const rg_aug_op op = (rg_aug_op)rg_rng_below(rng, RG_AUG_RANDAUGMENT_OPS);
        const int32_t bin = rg_aug_op_has_magnitude(op) ? (int32_t)rg_rng_below(rng, RG_AUGMENT_BINS) : -1;
        const int neg = rg_aug_op_signed(op) ? (int)rg_rng_below(rng, 2) : 0;
        push(p, RG_AUG_SPACE_TRIVIALWIDE, op, bin, RG_AUGMENT_BINS, neg, h, w);
        break;
    }
    case RG_AUG_POLICY_AUTOAUGMENT: {
        /* as torchvision's get_params: sub-policy index, two uniforms, two
         * sign bits (0 negates), all drawn whether used or not */
        const aa_step(*table)[2] = aa_table(cfg->autoaugment);
        const uint32_t id = rg_rng_below(rng, AA_POLICIES);
        float u[2];
        uint32_t s[2];
        u[0] = rg_rng_uniform(rng);
        u[1] = rg_rng_uniform(rng);
        s[0] = rg_rng_below(rng, 2);
        s[1] = rg_rng_below(rng, 2);
        for (int k = 0; k < 2; k++) {
            const aa_step *st = &table[id][k];
            if (u[k] <= st->p)
                push(p, RG_AUG_SPACE_AUTOAUGMENT, (rg_aug_op)st->op, st->bin, AA_BINS, s[k] == 0, h, w);
        }
        break;
    }
    default: break;
    }
}
