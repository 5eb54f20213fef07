/* The augmentation library: spec parsing and its errors, validation, the
 * documented draw order (old configurations unchanged), each policy's draws,
 * the boxes of resized crop, Cutout and erasing, hand-checked pixel ops,
 * determinism, and the loader under a policy and mixing (identical batches
 * with 0, 1 and 3 workers, labels unchanged except as soft targets). */
#include "test_support.h"

#include "regain/augment.h"
#include "regain/augment_ops.h"
#include "regain/loader.h"
#include "regain/mix.h"
#include "regain/rng.h"
#include "regain/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fixed textured h x w x c image. */
static void fill_image(uint8_t *img, int32_t h, int32_t w, int32_t c, uint64_t key)
{
    rg_rng r = rg_rng_keyed(99, key, 0);
    for (size_t k = 0; k < (size_t)h * w * c; k++) img[k] = (uint8_t)(rg_rng_u64(&r) >> 56);
}

static rg_augment_config parse_ok(const char *spec)
{
    rg_augment_config c = {0};
    rg_error err = {0};
    if (rg_augment_parse(spec, &c, &err) != RG_OK) fail_msg("'%s' rejected: %s", spec, err.msg);
    return c;
}

/* ---- Spec text ----------------------------------------------------------- */

static void test_spec_parse(void **state)
{
    (void)state;
    rg_augment_config c = parse_ok("randaugment:n=3,m=12");
    assert_int_equal(c.policy, RG_AUG_POLICY_RANDAUGMENT);
    assert_int_equal(c.ra_n, 3);
    assert_int_equal(c.ra_m, 12);
    c = parse_ok("  RandAugment ");
    assert_int_equal(c.ra_n, 2); /* torchvision's defaults */
    assert_int_equal(c.ra_m, 9);
    c = parse_ok("trivialaugment");
    assert_int_equal(c.policy, RG_AUG_POLICY_TRIVIALAUGMENT);
    c = parse_ok("autoaugment:svhn");
    assert_int_equal(c.policy, RG_AUG_POLICY_AUTOAUGMENT);
    assert_int_equal(c.autoaugment, RG_AUTOAUG_SVHN);
    c = parse_ok("autoaugment");
    assert_int_equal(c.autoaugment, RG_AUTOAUG_IMAGENET);
    c = parse_ok("autoaugment:policy=cifar10,fill=128 + erasing:p=0.25,value=random + cutout:size=8,p=0.5");
    assert_int_equal(c.autoaugment, RG_AUTOAUG_CIFAR10);
    assert_int_equal(c.fill, 128);
    assert_true(c.erase_p == 0.25f);
    assert_int_equal(c.erase_random, 1);
    assert_true(c.erase_scale[0] == 0.02f && c.erase_scale[1] == 0.33f);
    assert_true(c.erase_ratio[0] == 0.3f && c.erase_ratio[1] == 3.3f);
    assert_int_equal(c.cutout_size, 8);
    assert_true(c.cutout_p == 0.5f);
    c = parse_ok("resizedcrop:scale=0.5..1,ratio=0.8..1.25 + crop:pad=2 + hflip + vflip");
    assert_int_equal(c.resized_crop, 1);
    assert_true(c.rrc_scale[0] == 0.5f && c.rrc_ratio[1] == 1.25f);
    assert_int_equal(c.crop_pad, 2);
    assert_int_equal(c.hflip, 1);
    assert_int_equal(c.vflip, 1);

    /* Parsing adds to what is there; an empty spec and "none" change nothing. */
    rg_augment_config base = {.crop_pad = 2, .hflip = 1};
    rg_error err = {0};
    assert_int_equal(rg_augment_parse("", &base, &err), RG_OK);
    assert_int_equal(rg_augment_parse("none", &base, &err), RG_OK);
    assert_int_equal(base.crop_pad, 2);
    assert_int_equal(rg_augment_active(&base), 1);
    assert_int_equal(rg_augment_parse("trivialaugment", &base, &err), RG_OK);
    assert_int_equal(base.crop_pad, 2);
    assert_int_equal(base.policy, RG_AUG_POLICY_TRIVIALAUGMENT);

    /* The canonical text parses back to the same configuration. */
    const char *specs[] = {"randaugment:n=1,m=30,fill=7 + erasing:p=1,scale=0.1..0.2,ratio=0.5..2,value=9",
                           "crop:pad=4 + hflip + trivialaugment + cutout:size=16",
                           "resizedcrop + vflip + autoaugment:imagenet + erasing:value=random", "none"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        rg_augment_config a = parse_ok(specs[i]);
        char text[512];
        size_t len = rg_augment_format(&a, text, sizeof text);
        assert_int_equal(len, strlen(text));
        rg_augment_config b = parse_ok(text);
        if (memcmp(&a, &b, sizeof a)) fail_msg("'%s' -> '%s' does not round-trip", specs[i], text);
    }
    rg_augment_config off = {0};
    char text[64];
    rg_augment_format(&off, text, sizeof text);
    assert_string_equal(text, "none");
}

/* Each bad spec is rejected, the message names what is wrong, and the
 * configuration is left as it was. */
static void test_spec_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *want1, *want2;
    } bad[] = {
        {"randaugment:m=31", "randaugment: m", "outside [0, 30]"},
        {"randaugment:n=0", "randaugment: n", "outside [1, 16]"},
        {"randaugment:n=two", "randaugment: n", "not an integer"},
        {"randaugment:k=1", "randaugment", "unknown option 'k'"},
        {"randaugment:", "randaugment", "without options"},
        {"randaugment + trivialaugment", "trivialaugment", "only one policy"},
        {"autoaugment:cifar100", "autoaugment: policy", "'cifar100' is not a table"},
        {"trivialaugment:m=3", "trivialaugment", "unknown option 'm'"},
        {"rotate", "'rotate' is not an augmentation", NULL},
        {"hflip:p=0.3", "hflip", "takes no options"},
        {"hflip + hflip", "hflip", "given twice"},
        {"crop:pad=-1", "crop: pad", "outside"},
        {"cutout", "cutout: size", "missing"},
        {"cutout:size=4,p=1.5", "cutout: p", "outside [0, 1]"},
        {"erasing:p=nan", "erasing: p", "not a number"},
        {"erasing:scale=0.3", "erasing: scale", "not a range"},
        {"erasing:scale=0.5..0.1", "erasing: scale", "0 < lo <= hi"},
        {"erasing:scale=0..0.1", "erasing: scale", "0 < lo <= hi"},
        {"erasing:scale=0.1..2", "erasing: scale", "outside"},
        {"erasing:ratio=2..1", "erasing: ratio", "0 < lo <= hi"},
        {"erasing:value=300", "erasing: value", "0..255 or random"},
        {"resizedcrop:ratio=x..1", "resizedcrop: ratio", "not a number"},
        {"randaugment:fill=256", "randaugment: fill", "outside [0, 255]"},
        {"hflip ++ vflip", "empty item", NULL},
        {"erasing:p=0.5,,value=0", "erasing", "empty option"},
        {"randaugment:n", "randaugment", "not key=value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rg_augment_config c = {.crop_pad = 3}, before = c;
        rg_error err = {0};
        rg_status st = rg_augment_parse(bad[i].spec, &c, &err);
        if (st != RG_ERR_ARG) fail_msg("'%s' was accepted", bad[i].spec);
        if (!strstr(err.msg, bad[i].want1) || (bad[i].want2 && !strstr(err.msg, bad[i].want2)))
            fail_msg("'%s': message '%s' lacks '%s' / '%s'", bad[i].spec, err.msg, bad[i].want1,
                     bad[i].want2 ? bad[i].want2 : "");
        assert_memory_equal(&c, &before, sizeof c);
    }
}

static void test_validate(void **state)
{
    (void)state;
    static const struct {
        rg_augment_config cfg;
        const char *field;
    } bad[] = {
        {{.crop_pad = -1}, "crop_pad"},
        {{.hflip = 2}, "hflip"},
        {{.vflip = -1}, "vflip"},
        {{.resized_crop = 1}, "resizedcrop scale"},
        {{.resized_crop = 1, .rrc_scale = {0.1f, 1.0f}}, "resizedcrop ratio"},
        {{.policy = 9}, "policy 9"},
        {{.policy = RG_AUG_POLICY_RANDAUGMENT, .ra_n = 0}, "randaugment n"},
        {{.policy = RG_AUG_POLICY_RANDAUGMENT, .ra_n = 2, .ra_m = 31}, "randaugment m"},
        {{.policy = RG_AUG_POLICY_AUTOAUGMENT, .autoaugment = 3}, "autoaugment table"},
        {{.fill = 256}, "fill"},
        {{.cutout_p = 0.5f}, "cutout size"},
        {{.cutout_p = -0.5f}, "cutout p"},
        {{.erase_p = 2.0f}, "erasing p"},
        {{.erase_p = 0.5f, .erase_scale = {0.1f, 0.2f}}, "erasing ratio"},
        {{.erase_p = 0.5f, .erase_scale = {0.1f, 0.2f}, .erase_ratio = {1, 2}, .erase_value = -1}, "erasing value"},
        {{.erase_random = 3}, "erase_random"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rg_error err = {0};
        assert_int_equal(rg_augment_validate(&bad[i].cfg, &err), RG_ERR_ARG);
        if (!strstr(err.msg, bad[i].field)) fail_msg("case %zu: '%s' does not name '%s'", i, err.msg, bad[i].field);
    }
    rg_error err = {0};
    assert_int_equal(rg_augment_validate(NULL, &err), RG_ERR_ARG);
    const rg_augment_config zero = {0};
    assert_int_equal(rg_augment_validate(&zero, &err), RG_OK);
    assert_int_equal(rg_augment_active(&zero), 0);
}

/* ---- Draws ------------------------------------------------------------- */

/* New features draw after crop and flip: those stay what they were. */
static void test_old_draws_kept(void **state)
{
    (void)state;
    rg_augment_config old = {.crop_pad = 2, .hflip = 1};
    rg_augment_config more = parse_ok("crop:pad=2 + hflip + vflip + resizedcrop + randaugment + cutout:size=4 + erasing:p=1");
    for (uint64_t i = 0; i < 200; i++) {
        rg_rng a = rg_rng_keyed(5, 1, i), b = a;
        rg_augment_params pa, pb;
        rg_augment_draw(&old, 28, 28, &a, &pa);
        rg_augment_draw(&more, 28, 28, &b, &pb);
        assert_int_equal(pa.dy, pb.dy);
        assert_int_equal(pa.dx, pb.dx);
        assert_int_equal(pa.flip, pb.flip);
        assert_int_equal(pa.n_ops, 0);
        assert_int_equal(pb.n_ops, 2);
    }
}

static void test_randaugment_draws(void **state)
{
    (void)state;
    rg_augment_config c = parse_ok("randaugment:n=3,m=20");
    int counts[RG_AUG_OP_COUNT] = {0}, negative = 0, signed_ops = 0;
    const int trials = 7000;
    for (int i = 0; i < trials; i++) {
        rg_rng r = rg_rng_keyed(1, 0, (uint64_t)i);
        rg_augment_params p;
        rg_augment_draw(&c, 32, 32, &r, &p);
        assert_int_equal(p.n_ops, 3);
        for (int k = 0; k < 3; k++) {
            rg_aug_op op = (rg_aug_op)p.op[k];
            assert_in_range(op, 0, RG_AUG_RANDAUGMENT_OPS - 1);
            counts[op]++;
            float want = rg_aug_magnitude(RG_AUG_SPACE_RANDAUGMENT, op, 20, 31, 32, 32);
            if (!rg_aug_op_has_magnitude(op)) want = 0;
            assert_true(fabsf(p.magnitude[k]) == want);
            if (rg_aug_op_signed(op)) {
                signed_ops++;
                negative += p.magnitude[k] < 0;
            } else {
                assert_true(p.magnitude[k] >= 0);
            }
        }
    }
    /* every op about 1/14 of the time, signs about half */
    for (int op = 0; op < RG_AUG_RANDAUGMENT_OPS; op++)
        assert_in_range(counts[op], 3 * trials / 14 * 8 / 10, 3 * trials / 14 * 12 / 10);
    assert_int_equal(counts[RG_AUG_INVERT], 0);
    assert_in_range(negative, signed_ops * 45 / 100, signed_ops * 55 / 100);
    /* the magnitudes at bin 9 (torchvision's default) */
    assert_true(fabsf(rg_aug_magnitude(RG_AUG_SPACE_RANDAUGMENT, RG_AUG_ROTATE, 9, 31, 28, 28) - 9.0f) < 1e-5f);
    assert_int_equal((int)rg_aug_magnitude(RG_AUG_SPACE_RANDAUGMENT, RG_AUG_POSTERIZE, 9, 31, 28, 28), 7);
    assert_true(fabsf(rg_aug_magnitude(RG_AUG_SPACE_RANDAUGMENT, RG_AUG_SOLARIZE, 9, 31, 28, 28) - 178.5f) < 1e-4f);
}

static void test_trivial_and_auto_draws(void **state)
{
    (void)state;
    rg_augment_config t = parse_ok("trivialaugment");
    int bins_seen[31] = {0};
    for (int i = 0; i < 3000; i++) {
        rg_rng r = rg_rng_keyed(2, 0, (uint64_t)i);
        rg_augment_params p;
        rg_augment_draw(&t, 28, 28, &r, &p);
        assert_int_equal(p.n_ops, 1);
        if (p.op[0] == RG_AUG_ROTATE) {
            /* wide space: multiples of 4.5 degrees up to 135 */
            float steps = fabsf(p.magnitude[0]) / 4.5f;
            assert_true(fabsf(steps - nearbyintf(steps)) < 1e-4f);
            bins_seen[(int)nearbyintf(steps)]++;
        }
    }
    int distinct = 0;
    for (int b = 0; b < 31; b++) distinct += bins_seen[b] > 0;
    assert_true(distinct > 20);

    /* AutoAugment: at most two ops, from the table; cifar10's first
     * sub-policy is (Invert 0.1, Contrast 0.2 at bin 6): over many draws
     * only table ops appear, and Invert (absent from RandAugment) does. */
    rg_augment_config a = parse_ok("autoaugment:cifar10");
    int invert = 0, total_ops = 0, hist[3] = {0};
    for (int i = 0; i < 5000; i++) {
        rg_rng r = rg_rng_keyed(3, 0, (uint64_t)i);
        rg_augment_params p;
        rg_augment_draw(&a, 32, 32, &r, &p);
        assert_in_range(p.n_ops, 0, 2);
        hist[p.n_ops]++;
        for (int k = 0; k < p.n_ops; k++) {
            invert += p.op[k] == RG_AUG_INVERT;
            total_ops++;
            assert_int_not_equal(p.op[k], RG_AUG_IDENTITY);
        }
    }
    assert_true(invert > 0);
    assert_true(hist[0] > 0 && hist[1] > 0 && hist[2] > 0);
    /* mean application probability of cifar10's 50 steps is 0.5524 */
    assert_in_range(total_ops, 2 * 5000 * 50 / 100, 2 * 5000 * 60 / 100);
}

/* ---- Boxes -------------------------------------------------------------- */

static void test_boxes(void **state)
{
    (void)state;
    rg_augment_config c = parse_ok("resizedcrop:scale=0.25..0.5 + cutout:size=10 + erasing:p=1,scale=0.1..0.2");
    for (uint64_t i = 0; i < 2000; i++) {
        rg_rng r = rg_rng_keyed(4, 2, i);
        rg_augment_params p;
        rg_augment_draw(&c, 28, 20, &r, &p);
        assert_int_equal(p.resized, 1);
        assert_true(p.rc_top >= 0 && p.rc_left >= 0 && p.rc_h >= 1 && p.rc_w >= 1);
        assert_true(p.rc_top + p.rc_h <= 28 && p.rc_left + p.rc_w <= 20);
        double area = (double)p.rc_h * p.rc_w / (28.0 * 20.0);
        assert_true(area > 0.18 && area < 0.6); /* the scale, up to side rounding */
        double ratio = (double)p.rc_w / p.rc_h;
        assert_true(ratio > 0.6 && ratio < 1.6);
        /* Cutout: a 10x10 square clipped at the borders */
        assert_int_equal(p.cutout, 1);
        assert_true(p.cut_h >= 5 && p.cut_h <= 10 && p.cut_w >= 5 && p.cut_w <= 10);
        assert_true(p.cut_top + p.cut_h <= 28 && p.cut_left + p.cut_w <= 20);
        /* erasing: p = 1 always finds a box at these scales */
        assert_int_equal(p.erase, 1);
        assert_true(p.er_top + p.er_h <= 28 && p.er_left + p.er_w <= 20 && p.er_h < 28 && p.er_w < 20);
        double ea = (double)p.er_h * p.er_w / (28.0 * 20.0);
        assert_true(ea > 0.05 && ea < 0.3);
    }
    /* erasing with p = 0.3: about 30% of the images */
    rg_augment_config e = parse_ok("erasing:p=0.3");
    int erased = 0;
    for (uint64_t i = 0; i < 4000; i++) {
        rg_rng r = rg_rng_keyed(4, 3, i);
        rg_augment_params p;
        rg_augment_draw(&e, 28, 28, &r, &p);
        erased += p.erase;
    }
    assert_in_range(erased, 1000, 1400);
}

/* ---- Pixels by hand --------------------------------------------------------- */

static void test_pixels(void **state)
{
    (void)state;
    uint8_t px[6] = {0, 64, 127, 128, 200, 255}, scratch[64];
    rg_aug_posterize(px, 6, 1, 2);
    const uint8_t post[6] = {0, 64, 64, 128, 192, 192};
    assert_memory_equal(px, post, 6);
    uint8_t so[4] = {10, 127, 128, 250};
    rg_aug_solarize(so, 4, 1, 128.0f);
    const uint8_t sol[4] = {10, 127, 127, 5};
    assert_memory_equal(so, sol, 4);
    uint8_t inv[2] = {0, 200};
    rg_aug_invert(inv, 2, 1);
    assert_int_equal(inv[0], 255);
    assert_int_equal(inv[1], 55);
    /* autocontrast stretches 50..150 to 0..255; constant images stay */
    uint8_t ac[3] = {50, 100, 150}, flat[3] = {7, 7, 7};
    rg_aug_autocontrast(ac, 3, 1);
    assert_int_equal(ac[0], 0);
    assert_int_equal(ac[1], 127);
    assert_int_equal(ac[2], 255);
    rg_aug_autocontrast(flat, 3, 1);
    rg_aug_equalize(flat, 3, 1);
    assert_int_equal(flat[0], 7);
    /* brightness 0.5 halves (truncating); color leaves grayscale alone */
    uint8_t br[3] = {9, 100, 255};
    rg_aug_brightness(br, 3, 1, 0.5);
    assert_int_equal(br[0], 4);
    assert_int_equal(br[1], 50);
    assert_int_equal(br[2], 127);
    uint8_t g[4] = {1, 2, 3, 4}, g0[4] = {1, 2, 3, 4};
    rg_aug_color(g, 4, 1, 0.0);
    assert_memory_equal(g, g0, 4);
    /* color 0 on RGB gives the grayscale value in all three channels */
    uint8_t rgb[3] = {200, 100, 50};
    rg_aug_color(rgb, 1, 3, 0.0);
    const uint8_t l = (uint8_t)(0.2989f * 200 + 0.587f * 100 + 0.114f * 50);
    assert_int_equal(rgb[0], l);
    assert_int_equal(rgb[2], l);
    /* translate and rotate by 90 degrees on a 3x3 */
    uint8_t t[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    rg_aug_translate_x(t, scratch, 3, 3, 1, 1, 0);
    const uint8_t tx[9] = {0, 1, 2, 0, 4, 5, 0, 7, 8};
    assert_memory_equal(t, tx, 9);
    uint8_t rt[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    rg_aug_rotate(rt, scratch, 3, 3, 1, 90.0f, 0);
    const uint8_t r90[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7}; /* counter-clockwise */
    assert_memory_equal(rt, r90, 9);
    uint8_t vf[6] = {1, 2, 3, 4, 5, 6};
    rg_aug_vflip(vf, 3, 2, 1);
    const uint8_t vfl[6] = {5, 6, 3, 4, 1, 2};
    assert_memory_equal(vf, vfl, 6);
    /* erase: constant, clipped box; and per-byte values */
    uint8_t er[12] = {0};
    memset(er, 9, sizeof er);
    rg_aug_erase(er, 2, 2, 3, 1, 1, 5, 5, 0, NULL);
    const uint8_t erw[12] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0};
    assert_memory_equal(er, erw, 12);
    /* resized crop of the full image is the identity */
    uint8_t img[5 * 7 * 3], orig[5 * 7 * 3], sc[5 * 7 * 3];
    fill_image(img, 5, 7, 3, 1);
    memcpy(orig, img, sizeof img);
    rg_aug_resized_crop(img, sc, 5, 7, 3, 0, 0, 5, 7);
    assert_memory_equal(img, orig, sizeof img);
}

/* Erasing fills its box, Cutout zeroes its box, nothing else changes. */
static void test_erasing_apply(void **state)
{
    (void)state;
    rg_augment_config c = parse_ok("erasing:p=1,value=random + cutout:size=6");
    for (uint64_t i = 0; i < 50; i++) {
        uint8_t img[20 * 20 * 3], orig[20 * 20 * 3], scratch[20 * 20 * 3];
        fill_image(img, 20, 20, 3, i);
        memcpy(orig, img, sizeof img);
        rg_rng r = rg_rng_keyed(8, 0, i);
        rg_augment_params p;
        rg_augment_draw(&c, 20, 20, &r, &p);
        rg_augment_apply(&p, img, scratch, 20, 20, 3);
        int changed_in_erase = 0;
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 20; x++) {
                int in_cut = y >= p.cut_top && y < p.cut_top + p.cut_h && x >= p.cut_left && x < p.cut_left + p.cut_w;
                int in_er = p.erase && y >= p.er_top && y < p.er_top + p.er_h && x >= p.er_left &&
                            x < p.er_left + p.er_w;
                for (int k = 0; k < 3; k++) {
                    size_t o = ((size_t)y * 20 + x) * 3 + k;
                    if (in_er) changed_in_erase += img[o] != orig[o];
                    else if (in_cut) assert_int_equal(img[o], 0);
                    else assert_int_equal(img[o], orig[o]);
                }
            }
        if (p.erase && p.er_h * p.er_w > 4) assert_true(changed_in_erase > 0);
    }
}

/* ---- Determinism ------------------------------------------------------------- */

static void test_determinism(void **state)
{
    (void)state;
    const char *specs[] = {"randaugment:n=2,m=9 + erasing:p=0.5,value=random", "trivialaugment + cutout:size=8",
                           "autoaugment:imagenet + resizedcrop + vflip", "crop:pad=2 + hflip"};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        rg_augment_config c = parse_ok(specs[s]);
        int differ = 0;
        for (uint64_t i = 0; i < 40; i++) {
            for (int ch = 1; ch <= 3; ch += 2) {
                uint8_t a[16 * 16 * 3], b[16 * 16 * 3], other[16 * 16 * 3], sc[16 * 16 * 3];
                fill_image(a, 16, 16, ch, i);
                memcpy(b, a, sizeof a);
                memcpy(other, a, sizeof a);
                rg_rng r1 = rg_rng_keyed(7, 3, i), r2 = rg_rng_keyed(7, 3, i), r3 = rg_rng_keyed(7, 4, i);
                rg_augment_image(&c, a, sc, 16, 16, ch, &r1);
                rg_augment_image(&c, b, sc, 16, 16, ch, &r2);
                rg_augment_image(&c, other, sc, 16, 16, ch, &r3);
                assert_memory_equal(a, b, (size_t)16 * 16 * ch);
                differ += memcmp(a, other, (size_t)16 * 16 * ch) != 0;
            }
        }
        /* another epoch augments differently (most of the time) */
        assert_true(differ > 40);
    }
}

/* ---- Mixup and CutMix ----------------------------------------------------------- */

static void test_beta_gamma(void **state)
{
    (void)state;
    const double shapes[] = {0.2, 1.0, 3.5};
    for (size_t s = 0; s < 3; s++) {
        rg_rng r = rg_rng_keyed(11, s, 0);
        double sum = 0, sum2 = 0;
        const int n = 20000;
        for (int i = 0; i < n; i++) {
            double g = rg_rng_gamma(&r, shapes[s]);
            assert_true(g >= 0 && isfinite(g));
            sum += g;
            sum2 += g * g;
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        /* Gamma(k, 1): mean k, variance k */
        assert_true(fabs(mean - shapes[s]) < 0.05 * shapes[s] + 0.02);
        assert_true(fabs(var - shapes[s]) < 0.1 * shapes[s] + 0.03);
    }
    rg_rng r = rg_rng_keyed(12, 0, 0);
    double sum = 0;
    for (int i = 0; i < 20000; i++) {
        double b = rg_rng_beta(&r, 2.0, 6.0);
        assert_true(b >= 0 && b <= 1);
        sum += b;
    }
    assert_true(fabs(sum / 20000 - 0.25) < 0.01); /* a / (a + b) */
}

static void check_rows(const float *t, int32_t n, int32_t classes)
{
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t k = 0; k < classes; k++) {
            assert_true(t[(size_t)i * classes + k] >= 0.0f);
            s += t[(size_t)i * classes + k];
        }
        assert_true(fabs(s - 1.0) < 1e-6);
    }
}

static void test_mix(void **state)
{
    (void)state;
    enum { N = 5, H = 6, W = 8, C = 2, K = 4 };
    const int32_t labels[N] = {0, 1, 2, 3, 1};
    float x[N * H * W * C], orig[N * H * W * C], scratch[H * W * C], t[N * K];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) orig[i] = (float)i * 0.01f - 1.0f;
    rg_error err = {0};

    /* off: untouched pixels, one-hot targets */
    rg_mix_config off = {0};
    rg_mix_params p;
    rg_mix_draw(&off, 1, 0, 0, H, W, &p);
    assert_int_equal(p.kind, RG_MIX_NONE);
    memcpy(x, orig, sizeof x);
    assert_int_equal(rg_mix_apply(&p, x, scratch, N, H, W, C, labels, K, t, &err), RG_OK);
    assert_memory_equal(x, orig, sizeof x);
    for (int i = 0; i < N; i++) assert_true(t[i * K + labels[i]] == 1.0f);
    check_rows(t, N, K);

    /* mixup: x_i = lam x_i + (1 - lam) x_{i-1}, targets lam / 1 - lam */
    rg_mix_config mu = {.mixup_alpha = 0.4f};
    for (int64_t b = 0; b < 20; b++) {
        rg_mix_draw(&mu, 3, 1, b, H, W, &p);
        assert_int_equal(p.kind, RG_MIX_MIXUP);
        assert_true(p.lambda >= 0.0f && p.lambda <= 1.0f);
        memcpy(x, orig, sizeof x);
        assert_int_equal(rg_mix_apply(&p, x, scratch, N, H, W, C, labels, K, t, &err), RG_OK);
        check_rows(t, N, K);
        const size_t S = H * W * C;
        for (int i = 0; i < N; i++) {
            int j = (i + N - 1) % N;
            for (size_t k = 0; k < S; k += 7)
                assert_true(x[i * S + k] == p.lambda * orig[i * S + k] + (1.0f - p.lambda) * orig[j * S + k]);
            if (labels[i] != labels[j]) {
                assert_true(t[i * K + labels[i]] == p.lambda);
                assert_true(fabsf(t[i * K + labels[j]] - (1.0f - p.lambda)) < 1e-7f);
            }
        }
        /* the same key, the same mixing; the stream is per batch */
        rg_mix_params q;
        rg_mix_draw(&mu, 3, 1, b, H, W, &q);
        assert_memory_equal(&p, &q, sizeof p);
    }

    /* CutMix: the box comes from the partner, lam = 1 - box area / image area */
    rg_mix_config cm = {.cutmix_alpha = 1.0f};
    int nonempty = 0;
    for (int64_t b = 0; b < 40; b++) {
        rg_mix_draw(&cm, 4, 0, b, H, W, &p);
        assert_int_equal(p.kind, RG_MIX_CUTMIX);
        assert_true(p.y0 >= 0 && p.y0 <= p.y1 && p.y1 <= H && p.x0 >= 0 && p.x0 <= p.x1 && p.x1 <= W);
        const double area = (double)(p.y1 - p.y0) * (p.x1 - p.x0);
        assert_true(fabs(p.lambda - (1.0 - area / (H * W))) < 1e-6);
        nonempty += area > 0;
        memcpy(x, orig, sizeof x);
        assert_int_equal(rg_mix_apply(&p, x, scratch, N, H, W, C, labels, K, t, &err), RG_OK);
        check_rows(t, N, K);
        for (int i = 0; i < N; i++) {
            int j = (i + N - 1) % N;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    for (int k = 0; k < C; k++) {
                        size_t o = (((size_t)y * W + xx) * C + k);
                        int in = y >= p.y0 && y < p.y1 && xx >= p.x0 && xx < p.x1;
                        assert_true(x[i * H * W * C + o] == orig[(in ? j : i) * H * W * C + o]);
                    }
        }
    }
    assert_true(nonempty > 20);

    /* both on: each batch uses one, both occur */
    rg_mix_config both = {.mixup_alpha = 0.2f, .cutmix_alpha = 1.0f};
    int kinds[3] = {0};
    for (int64_t b = 0; b < 100; b++) {
        rg_mix_draw(&both, 5, 0, b, H, W, &p);
        kinds[p.kind]++;
    }
    assert_true(kinds[RG_MIX_MIXUP] > 30 && kinds[RG_MIX_CUTMIX] > 30 && kinds[RG_MIX_NONE] == 0);

    /* bad input */
    const int32_t bad_labels[N] = {0, 1, 7, 3, 1};
    assert_int_equal(rg_mix_apply(&p, x, scratch, N, H, W, C, bad_labels, K, t, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "label 7 of sample 2"));
    rg_mix_config neg = {.mixup_alpha = -1.0f};
    assert_int_equal(rg_mix_validate(&neg, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "mixup: alpha"));
    rg_mix_config inf = {.cutmix_alpha = INFINITY};
    assert_int_equal(rg_mix_validate(&inf, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "cutmix: alpha"));
}

/* ---- The loader under a policy and mixing --------------------------------------- */

typedef struct {
    float *x, *t;
    int32_t *y, *idx;
    size_t nx, nt;
} loader_dump;

static loader_dump dump(const rg_dataset *ds, rg_loader_config cfg, int32_t workers, int32_t epoch)
{
    cfg.workers = workers;
    rg_error err = {0};
    rg_loader *ld = NULL;
    if (rg_loader_create(ds, &cfg, &ld, &err) != RG_OK) fail_msg("rg_loader_create: %s", err.msg);
    const size_t sb = (size_t)ds->h * ds->w * ds->c;
    const int32_t classes = rg_loader_classes(ld);
    loader_dump d = {calloc((size_t)ds->n * sb, sizeof(float)), calloc((size_t)ds->n * classes, sizeof(float)),
                     calloc((size_t)ds->n, sizeof(int32_t)), calloc((size_t)ds->n, sizeof(int32_t)), 0, 0};
    rg_loader_start_epoch(ld, epoch);
    const float *x, *t;
    const int32_t *y, *idx;
    int32_t count, seen = 0;
    while (rg_loader_next_soft(ld, &x, &y, &t, &idx, &count)) {
        memcpy(d.x + (size_t)seen * sb, x, (size_t)count * sb * sizeof(float));
        memcpy(d.y + seen, y, (size_t)count * sizeof(int32_t));
        memcpy(d.idx + seen, idx, (size_t)count * sizeof(int32_t));
        if (t) {
            memcpy(d.t + (size_t)seen * classes, t, (size_t)count * classes * sizeof(float));
            d.nt += (size_t)count * classes;
        }
        seen += count;
    }
    assert_int_equal(seen, ds->n);
    d.nx = (size_t)seen * sb;
    rg_loader_free(ld);
    return d;
}

static void dump_free(loader_dump *d)
{
    free(d->x);
    free(d->t);
    free(d->y);
    free(d->idx);
}

static void test_loader_policy_and_mix(void **state)
{
    (void)state;
    rg_dataset ds = {.n = 150, .h = 12, .w = 12, .c = 3, .n_classes = 10};
    ds.pixels = malloc((size_t)150 * 12 * 12 * 3);
    ds.labels = malloc(150);
    assert_non_null(ds.pixels);
    assert_non_null(ds.labels);
    fill_image(ds.pixels, 150 * 12, 12, 3, 77);
    for (int i = 0; i < 150; i++) ds.labels[i] = (uint8_t)((i * 7) % 10);
    strcpy(ds.source, "synthetic");

    rg_loader_config cfg = {.batch = 16, .shuffle = 1, .mean = 0.5f, .std = 0.25f, .augment = 1, .seed = 21};
    cfg.aug = parse_ok("crop:pad=2 + hflip + randaugment:n=2,m=9 + erasing:p=0.5,value=random");
    /* a policy alone: labels are the dataset's, no soft targets */
    loader_dump a0 = dump(&ds, cfg, 0, 2);
    assert_int_equal(a0.nt, 0);
    for (int i = 0; i < ds.n; i++) assert_int_equal(a0.y[i], ds.labels[a0.idx[i]]);
    for (int w = 1; w <= 3; w += 2) {
        loader_dump a = dump(&ds, cfg, w, 2);
        assert_memory_equal(a.x, a0.x, a0.nx * sizeof(float));
        assert_memory_equal(a.y, a0.y, (size_t)ds.n * sizeof(int32_t));
        dump_free(&a);
    }
    /* with mixing: the same with 0, 1, 3 workers; rows sum to one, each
     * sample's own label keeps the weight lambda >= 0 */
    cfg.mix = (rg_mix_config){.mixup_alpha = 0.3f, .cutmix_alpha = 1.0f};
    loader_dump m0 = dump(&ds, cfg, 0, 2);
    assert_int_equal(m0.nt, (size_t)ds.n * 10);
    check_rows(m0.t, ds.n, 10);
    for (int i = 0; i < ds.n; i++) {
        assert_int_equal(m0.y[i], ds.labels[m0.idx[i]]);
        /* weight only on the own label and the batch neighbour's */
        const int first = i / 16 * 16, last = first + 15 < ds.n - 1 ? first + 15 : ds.n - 1;
        const int partner = i == first ? last : i - 1;
        for (int k = 0; k < 10; k++)
            if (m0.t[(size_t)i * 10 + k] != 0.0f) assert_true(k == m0.y[i] || k == m0.y[partner]);
    }
    assert_memory_not_equal(m0.x, a0.x, a0.nx * sizeof(float));
    for (int w = 1; w <= 3; w += 2) {
        loader_dump m = dump(&ds, cfg, w, 2);
        assert_memory_equal(m.x, m0.x, m0.nx * sizeof(float));
        assert_memory_equal(m.t, m0.t, m0.nt * sizeof(float));
        dump_free(&m);
    }
    /* a label the class count does not cover is rejected at creation */
    ds.labels[5] = 12;
    rg_error err = {0};
    rg_loader *ld = NULL;
    assert_int_equal(rg_loader_create(&ds, &cfg, &ld, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "label 12 of sample 5"));
    assert_null(ld);
    cfg.mix.mixup_alpha = -2.0f;
    assert_int_equal(rg_loader_create(&ds, &cfg, &ld, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "mixup"));
    dump_free(&a0);
    dump_free(&m0);
    free(ds.pixels);
    free(ds.labels);
}

/* ---- Trainer keys ------------------------------------------------------------------- */

static void test_trainer_keys(void **state)
{
    (void)state;
    rg_train_config c;
    rg_train_config_default(&c);
    rg_error err = {0};
    rg_augment_config aug;
    rg_mix_config mix;
    /* the defaults: crop 2 + flip as before, nothing else */
    assert_int_equal(rg_train_augment_config(&c, &aug, &mix, &err), RG_OK);
    rg_augment_config want = {.crop_pad = 2, .hflip = 1};
    assert_memory_equal(&aug, &want, sizeof aug);
    assert_int_equal(rg_mix_active(&mix), 0);

    CHECK(rg_train_config_parse(&c, "augment = trivialaugment + cutout:size=8\nerasing = 0.25\n", "t", &E));
    assert_int_equal(rg_train_augment_config(&c, &aug, &mix, &err), RG_OK);
    assert_int_equal(aug.policy, RG_AUG_POLICY_TRIVIALAUGMENT);
    assert_int_equal(aug.crop_pad, 2);
    assert_true(aug.erase_p == 0.25f && aug.erase_scale[1] == 0.33f);
    CHECK(rg_train_config_validate(&c, &E));
    /* the keys survive format -> parse */
    char *text = rg_train_config_format(&c);
    assert_non_null(strstr(text, "augment = trivialaugment + cutout:size=8\n"));
    rg_train_config back;
    rg_train_config_default(&back);
    CHECK(rg_train_config_parse(&back, text, "fmt", &E));
    assert_string_equal(back.augment, c.augment);
    assert_true(back.erasing == c.erasing);
    free(text);

    /* errors name the key */
    rg_train_config bad = c;
    snprintf(bad.augment, sizeof bad.augment, "randaugment:m=99");
    assert_int_equal(rg_train_config_validate(&bad, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "augment: randaugment: m"));
    snprintf(bad.augment, sizeof bad.augment, "erasing:p=0.5");
    assert_int_equal(rg_train_config_validate(&bad, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "erasing: random erasing is also in augment"));
    assert_int_equal(rg_train_config_set(&bad, "erasing", "1.5", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "erasing"));
    assert_int_equal(rg_train_config_set(&bad, "mixup", "-1", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "mixup"));
    /* mixing: soft targets into the loss (trained in e2e/test_train) */
    rg_train_config mixc = c;
    CHECK(rg_train_config_set(&mixc, "cutmix", "1", &E));
    assert_int_equal(rg_train_augment_config(&mixc, &aug, &mix, &err), RG_OK);
    assert_true(mix.cutmix_alpha == 1.0f);
    CHECK(rg_train_config_validate(&mixc, &E));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parse),        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_validate),          cmocka_unit_test(test_old_draws_kept),
        cmocka_unit_test(test_randaugment_draws), cmocka_unit_test(test_trivial_and_auto_draws),
        cmocka_unit_test(test_boxes),             cmocka_unit_test(test_pixels),
        cmocka_unit_test(test_erasing_apply),     cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_beta_gamma),        cmocka_unit_test(test_mix),
        cmocka_unit_test(test_loader_policy_and_mix), cmocka_unit_test(test_trainer_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
