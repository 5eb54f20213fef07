/* regain augment-preview: one training batch before and after augmentation,
 * as a PNG grid, so a person can see what the model sees. */
#include "cli.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "regain/augment.h"
#include "regain/data.h"
#include "regain/fileio.h"
#include "regain/loader.h"

static const char *help_text =
    "usage: regain augment-preview [options]\n"
    "\n"
    "Writes a PNG with the first batch of an epoch as the trainer's loader\n"
    "makes it: on the left the images as stored, on the right the same images\n"
    "augmented (and mixed, with --mixup/--cutmix), each side a square-ish grid.\n"
    "\n"
    "  --data NAME|DIR  dataset (default fashion-mnist)\n"
    "  --augment SPEC   augmentation spec (docs/augmentation.md), on top of\n"
    "                   --crop-pad and --hflip\n"
    "  --crop-pad N     random crop padding (default 2, as the trainer)\n"
    "  --hflip 0|1      random horizontal flip (default 1, as the trainer)\n"
    "  --mixup A        mixup Beta alpha (default 0 = off)\n"
    "  --cutmix A       CutMix Beta alpha (default 0 = off)\n"
    "  --seed N         the trainer's seed (default 1)\n"
    "  --epoch E        0-based epoch (default 0)\n"
    "  --count N        images (default 64, at most 1024)\n"
    "  --scale N        pixels per image pixel (default 2, at most 8)\n"
    "  --out FILE.png   output (default augment-preview.png), written atomically\n";

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;
} png_buffer;

static void png_append(png_structp png, png_bytep bytes, png_size_t n)
{
    png_buffer *b = png_get_io_ptr(png);
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void png_flush_none(png_structp png) { (void)png; }

/* Encodes an 8-bit gray (c = 1) or RGB (c = 3) image of width x height into
 * b. Returns 0 on success. libpng reports errors by longjmp. */
static int encode_png(const uint8_t *pixels, int32_t width, int32_t height, int32_t c, png_buffer *b)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        return -1;
    }
    for (int32_t y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * width * c);
    png_set_write_fn(png, b, png_append, png_flush_none);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return b->failed ? -1 : 0;
}

static int parse_num(const char *key, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi))
        return cli_usage_error("augment-preview", "%s: '%s' is not a number in [%g, %g]", key, v, lo, hi);
    *out = x;
    return 0;
}

/* Copies one h x w x c image into the canvas at cell (gx, gy) of a grid
 * whose cells are (h*scale + gap) apart, starting at x offset ox. */
static void blit(uint8_t *canvas, int32_t cw, const uint8_t *img, int32_t h, int32_t w, int32_t c, int32_t scale,
                 int32_t x0, int32_t y0)
{
    for (int32_t y = 0; y < h * scale; y++)
        for (int32_t x = 0; x < w * scale; x++)
            memcpy(canvas + ((size_t)(y0 + y) * cw + (size_t)(x0 + x)) * c,
                   img + ((size_t)(y / scale) * w + (size_t)(x / scale)) * c, (size_t)c);
}

int cmd_augment_preview(int argc, char **argv)
{
    const char *data = "fashion-mnist", *spec = "", *out = "augment-preview.png";
    double crop_pad = 2, hflip = 1, mixup = 0, cutmix = 0, seed = 1, epoch = 0, count = 64, scale = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_text, stdout);
            return EXIT_OK;
        }
        if (i + 1 >= argc) return cli_usage_error("augment-preview", "%s needs a value", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--augment")) spec = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--crop-pad")) rc = parse_num(a, v, 0, 64, &crop_pad);
        else if (!strcmp(a, "--hflip")) rc = parse_num(a, v, 0, 1, &hflip);
        else if (!strcmp(a, "--mixup")) rc = parse_num(a, v, 0, RG_MIX_MAX_ALPHA, &mixup);
        else if (!strcmp(a, "--cutmix")) rc = parse_num(a, v, 0, RG_MIX_MAX_ALPHA, &cutmix);
        else if (!strcmp(a, "--seed")) rc = parse_num(a, v, 0, 9007199254740991.0, &seed);
        else if (!strcmp(a, "--epoch")) rc = parse_num(a, v, 0, 1e6, &epoch);
        else if (!strcmp(a, "--count")) rc = parse_num(a, v, 1, 1024, &count);
        else if (!strcmp(a, "--scale")) rc = parse_num(a, v, 1, 8, &scale);
        else return cli_usage_error("augment-preview", "unknown option '%s'", a);
        if (rc) return rc;
        if ((!strcmp(a, "--crop-pad") || !strcmp(a, "--hflip") || !strcmp(a, "--seed") || !strcmp(a, "--epoch") ||
             !strcmp(a, "--count") || !strcmp(a, "--scale")) &&
            floor(strtod(v, NULL)) != strtod(v, NULL))
            return cli_usage_error("augment-preview", "%s: '%s' is not an integer", a, v);
    }
    rg_error err = {0};
    rg_loader_config lc = {.batch = (int32_t)count, .shuffle = 1, .mean = 0.0f, .std = 1.0f,
                           .seed = (uint64_t)seed, .workers = 0};
    lc.aug.crop_pad = (int32_t)crop_pad;
    lc.aug.hflip = (int)hflip;
    if (rg_augment_parse(spec, &lc.aug, &err)) return cli_usage_error("augment-preview", "--augment: %s", err.msg);
    lc.augment = rg_augment_active(&lc.aug);
    lc.mix = (rg_mix_config){.mixup_alpha = (float)mixup, .cutmix_alpha = (float)cutmix};

    rg_dataset ds;
    if (rg_dataset_load(data, "train", &ds, &err)) return cli_fail(&err);
    if (lc.batch > ds.n) lc.batch = ds.n;
    rg_loader *ld = NULL;
    if (rg_loader_create(&ds, &lc, &ld, &err)) {
        rg_dataset_free(&ds);
        return cli_fail(&err);
    }
    rg_loader_start_epoch(ld, (int32_t)epoch);
    const float *x;
    const int32_t *y, *idx;
    int32_t n = 0;
    rg_loader_next(ld, &x, &y, &idx, &n);

    /* Two grids side by side, 2 pixels between cells and 8 between grids;
     * the background is mid-gray so black and white images both show. */
    const int32_t h = ds.h, w = ds.w, c = ds.c, s = (int32_t)scale, gap = 2, mid = 8;
    int32_t cols = 1;
    while (cols * cols < n) cols++;
    const int32_t rows = (n + cols - 1) / cols;
    const int32_t gw = cols * (w * s + gap) - gap, gh = rows * (h * s + gap) - gap;
    const int32_t cw = 2 * gw + mid, ch = gh;
    const size_t sb = rg_dataset_sample_bytes(&ds);
    uint8_t *canvas = malloc((size_t)cw * ch * c), *img = malloc(sb);
    int rc = EXIT_OK;
    if (!canvas || !img) {
        rc = cli_fail(&(rg_error){RG_ERR_NOMEM, "out of memory for the preview"});
        goto done;
    }
    memset(canvas, 128, (size_t)cw * ch * c);
    for (int32_t k = 0; k < n; k++) {
        const int32_t x0 = (k % cols) * (w * s + gap), y0 = (k / cols) * (h * s + gap);
        blit(canvas, cw, ds.pixels + (size_t)idx[k] * sb, h, w, c, s, x0, y0);
        for (size_t q = 0; q < sb; q++) {
            float v = nearbyintf(x[(size_t)k * sb + q] * 255.0f);
            img[q] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
        }
        blit(canvas, cw, img, h, w, c, s, gw + mid + x0, y0);
    }
    png_buffer b = {0};
    if (encode_png(canvas, cw, ch, c, &b)) {
        rc = cli_fail(&(rg_error){RG_ERR_NOMEM, "cannot encode the PNG (out of memory)"});
    } else if (rg_write_file_atomic(out, b.data, b.len, &err)) {
        rc = cli_fail(&err);
    } else {
        char text[512];
        rg_augment_format(&lc.aug, text, sizeof text);
        printf("wrote %s: %d images of %s, epoch %d, seed %.0f, before | after %s%s%s\n", out, n, data, (int)epoch,
               seed, text, mixup > 0 ? " + mixup" : "", cutmix > 0 ? " + cutmix" : "");
    }
    free(b.data);
done:
    free(canvas);
    free(img);
    rg_loader_free(ld);
    rg_dataset_free(&ds);
    return rc;
}
