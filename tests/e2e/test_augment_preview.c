/* regain augment-preview end to end: a PNG of the expected size from the
 * installed Fashion-MNIST, the same file for the same arguments, a
 * different one for another epoch, and clear errors for bad options. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/data.h"

/* Width and height from a PNG's IHDR (big-endian at bytes 16 and 20). */
static void png_size(const uint8_t *b, size_t n, uint32_t *w, uint32_t *h)
{
    static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(n > 33);
    assert_memory_equal(b, magic, 8);
    assert_memory_equal(b + 12, "IHDR", 4);
    *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
}

static void test_preview(void **state)
{
    (void)state;
    char out[4096];
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "wrote a.png", "randaugment:n=2,m=9",
                   "augment-preview --augment 'randaugment:n=2,m=9 + erasing:p=0.5' --count 9 --scale 1 --out a.png");
    size_t na, nb, nc;
    uint8_t *a = rgt_read_file(rgt_in_root("a.png"), &na);
    uint32_t w, h;
    png_size(a, na, &w, &h);
    /* 3x3 cells of 28 + 2 px gaps, two grids 8 px apart */
    assert_int_equal(w, 2 * (3 * 30 - 2) + 8);
    assert_int_equal(h, 3 * 30 - 2);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "wrote b.png", NULL,
                   "augment-preview --augment 'randaugment:n=2,m=9 + erasing:p=0.5' --count 9 --scale 1 --out b.png");
    uint8_t *b = rgt_read_file(rgt_in_root("b.png"), &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "epoch 1", NULL,
                   "augment-preview --augment 'randaugment:n=2,m=9 + erasing:p=0.5' --count 9 --scale 1 --epoch 1 "
                   "--out c.png");
    uint8_t *c = rgt_read_file(rgt_in_root("c.png"), &nc);
    assert_true(nc != na || memcmp(a, c, na) != 0);
    free(a);
    free(b);
    free(c);

    /* bad options: exit 2, the message names the field */
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "randaugment: m", "outside [0, 30]",
                   "augment-preview --augment randaugment:m=77");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "--count", NULL, "augment-preview --count 0");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "--scale", "integer", "augment-preview --scale 1.5");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 2, "unknown option", NULL, "augment-preview --colour red");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 3, "x.png", NULL, "augment-preview --count 4 --out no/such/dir/x.png");
}

int main(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", RG_FASHION_MNIST_DIR);
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "%s is missing: install the fashion-mnist package (scripts/install-deps)\n", p);
        return 1;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_preview)};
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
