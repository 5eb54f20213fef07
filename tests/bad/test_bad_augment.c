/* Augmentation under AddressSanitizer and UBSan: mutated spec text never
 * crashes the parser (it is accepted or rejected with a message), and every
 * policy and box applies safely to degenerate image sizes (1x1, 1xN, Nx1,
 * 2x2) and to both channel counts. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/augment.h"
#include "regain/augment_ops.h"
#include "regain/mix.h"
#include "regain/rng.h"

static void test_spec_mutations(void **state)
{
    (void)state;
    static const char *seeds[] = {"randaugment:n=2,m=9 + erasing:p=0.5,scale=0.02..0.33,ratio=0.3..3.3,value=random",
                                  "autoaugment:svhn,fill=3 + resizedcrop:scale=0.08..1,ratio=0.75..1.33 + vflip",
                                  "crop:pad=4 + hflip + trivialaugment + cutout:size=8,p=0.5"};
    static const char alphabet[] = "+:,=.. 0123456789-eanmpxrz\t";
    rg_rng r = rg_rng_keyed(1, 2, 3);
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", seeds[iter % 3]);
        size_t len = strlen(buf);
        int edits = 1 + (int)rg_rng_below(&r, 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = rg_rng_below(&r, (uint32_t)len);
            switch (rg_rng_below(&r, 3)) {
            case 0: buf[at] = alphabet[rg_rng_below(&r, sizeof alphabet - 1)]; break;
            case 1: memmove(buf + at, buf + at + 1, len - at), len--; break;
            default:
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at + 1);
                    buf[at] = alphabet[rg_rng_below(&r, sizeof alphabet - 1)];
                    len++;
                }
            }
        }
        rg_augment_config c = {0};
        rg_error err = {0};
        if (rg_augment_parse(buf, &c, &err) == RG_OK) {
            accepted++;
            assert_int_equal(rg_augment_validate(&c, &err), RG_OK);
            char text[512];
            rg_augment_format(&c, text, sizeof text);
            rg_augment_config back = {0};
            if (rg_augment_parse(text, &back, &err) != RG_OK) fail_msg("'%s' -> '%s': %s", buf, text, err.msg);
        } else {
            rejected++;
            assert_true(strncmp(err.msg, "augment: ", 9) == 0);
        }
    }
    assert_true(accepted > 100 && rejected > 100);
    /* far too long */
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    rg_augment_config c = {0};
    rg_error err = {0};
    assert_int_equal(rg_augment_parse(big, &c, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "longer"));
}

static void test_small_images(void **state)
{
    (void)state;
    static const char *specs[] = {
        "crop:pad=3 + hflip + vflip + resizedcrop + randaugment:n=4,m=30,fill=9 + cutout:size=5 + erasing:p=1,value=random",
        "trivialaugment + erasing:p=1,scale=0.5..1,ratio=0.1..10", "autoaugment:imagenet + resizedcrop:scale=1..1",
        "autoaugment:svhn", "autoaugment:cifar10 + cutout:size=100",
        /* aspect ratios that draw sides beyond int32 (their conversion was undefined) */
        "resizedcrop:ratio=1e-30..1 + erasing:p=1,scale=0.5..1,ratio=1e-30..1000"};
    static const int32_t sizes[][2] = {{1, 1}, {1, 7}, {7, 1}, {2, 2}, {3, 5}, {28, 28}};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        rg_augment_config c = {0};
        rg_error err = {0};
        if (rg_augment_parse(specs[s], &c, &err) != RG_OK) fail_msg("%s: %s", specs[s], err.msg);
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
            for (int32_t ch = 1; ch <= 3; ch += 2)
                for (uint64_t i = 0; i < 300; i++) {
                    const int32_t h = sizes[z][0], w = sizes[z][1];
                    const size_t n = (size_t)h * w * ch;
                    uint8_t *img = malloc(n), *scratch = malloc(n);
                    assert_non_null(img);
                    assert_non_null(scratch);
                    memset(img, (int)(i * 37), n);
                    rg_rng r = rg_rng_keyed(s, z, i);
                    rg_augment_image(&c, img, scratch, h, w, ch, &r);
                    free(img);
                    free(scratch);
                }
    }
    /* every op at extreme magnitudes on a 1x1 and a 2x3 image */
    for (int op = 0; op < RG_AUG_OP_COUNT; op++) {
        const float mags[] = {-1e30f, -135.0f, -1.0f, 0.0f, 0.99f, 1e30f};
        for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
            uint8_t a[1] = {200}, sa[1], b[18], sb[18];
            memset(b, 100, sizeof b);
            rg_aug_op_apply((rg_aug_op)op, mags[m], a, sa, 1, 1, 1, 0);
            rg_aug_op_apply((rg_aug_op)op, mags[m], b, sb, 2, 3, 3, 255);
        }
    }
    /* mixing a batch of one 1x1 image */
    rg_mix_config mc = {.mixup_alpha = 0.01f, .cutmix_alpha = 0.01f};
    for (int64_t b = 0; b < 200; b++) {
        rg_mix_params p;
        rg_mix_draw(&mc, 1, 0, b, 1, 1, &p);
        float x[1] = {0.5f}, scratch[1], t[3];
        const int32_t y[1] = {2};
        rg_error err = {0};
        assert_int_equal(rg_mix_apply(&p, x, scratch, 1, 1, 1, 1, y, 3, t, &err), RG_OK);
        assert_true(t[2] > 0.999f && t[2] < 1.001f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_spec_mutations), cmocka_unit_test(test_small_images)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
