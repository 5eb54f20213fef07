/* Augmentation spec text: "item[:opt,opt] + item ..." into an
 * rg_augment_config and back (the grammar is in augment.h and
 * docs/augmentation.md). Errors name the item and the option. */
#include "regain/augment.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SPEC 1024

static const char *const table_names[] = {"cifar10", "svhn", "imagenet"};

/* Trims blanks at both ends in place. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static rg_status parse_int(const char *item, const char *key, const char *v, int32_t lo, int32_t hi, int32_t *out,
                           rg_error *err)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: '%s' is not an integer", item, key, v);
    if (x < lo || x > hi)
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: %lld is outside [%d, %d]", item, key, x, lo, hi);
    *out = (int32_t)x;
    return RG_OK;
}

static rg_status parse_float(const char *item, const char *key, const char *v, double lo, double hi, float *out,
                             rg_error *err)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: '%s' is not a number", item, key, v);
    if ((float)x < (float)lo || (float)x > (float)hi)
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: %g is outside [%g, %g]", item, key, x, lo, hi);
    *out = (float)x;
    return RG_OK;
}

/* "lo..hi" with 0 < lo <= hi <= max. */
static rg_status parse_range(const char *item, const char *key, const char *v, double max, float out[2],
                             rg_error *err)
{
    const char *dots = strstr(v, "..");
    if (!dots)
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: '%s' is not a range lo..hi", item, key, v);
    char lo[64], hi[64];
    size_t nl = (size_t)(dots - v);
    if (nl >= sizeof lo || strlen(dots + 2) >= sizeof hi)
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: '%s' is too long", item, key, v);
    memcpy(lo, v, nl);
    lo[nl] = 0;
    snprintf(hi, sizeof hi, "%s", dots + 2);
    float r[2];
    rg_status st;
    if ((st = parse_float(item, key, lo, 0, max, &r[0], err)) || (st = parse_float(item, key, hi, 0, max, &r[1], err)))
        return st;
    if (!(r[0] > 0.0f) || r[0] > r[1])
        return rg_fail(err, RG_ERR_ARG, "augment: %s: %s: %g..%g must satisfy 0 < lo <= hi", item, key,
                       (double)r[0], (double)r[1]);
    out[0] = r[0];
    out[1] = r[1];
    return RG_OK;
}

typedef struct {
    int policy, crop, hflip, vflip, rrc, cutout, erasing;
} seen_items;

/* Applies one option "key=value" (or a bare word in `key` with value NULL)
 * of item `name`. */
static rg_status item_option(const char *name, char *key, char *value, rg_augment_config *c, rg_error *err)
{
    if (!strcmp(name, "autoaugment") && !value) {
        value = key;
        key = "policy";
    }
    if (!value)
        return rg_fail(err, RG_ERR_ARG, "augment: %s: '%s' is not key=value", name, key);
    int policy_item = !strcmp(name, "randaugment") || !strcmp(name, "trivialaugment") || !strcmp(name, "autoaugment");
    if (policy_item && !strcmp(key, "fill")) return parse_int(name, key, value, 0, 255, &c->fill, err);
    if (!strcmp(name, "randaugment")) {
        if (!strcmp(key, "n")) return parse_int(name, key, value, 1, RG_AUGMENT_MAX_OPS, &c->ra_n, err);
        if (!strcmp(key, "m")) return parse_int(name, key, value, 0, RG_AUGMENT_MAX_MAGNITUDE, &c->ra_m, err);
        return rg_fail(err, RG_ERR_ARG, "augment: randaugment: unknown option '%s' (n, m, fill)", key);
    }
    if (!strcmp(name, "trivialaugment"))
        return rg_fail(err, RG_ERR_ARG, "augment: trivialaugment: unknown option '%s' (fill)", key);
    if (!strcmp(name, "autoaugment")) {
        if (strcmp(key, "policy"))
            return rg_fail(err, RG_ERR_ARG, "augment: autoaugment: unknown option '%s' (policy, fill)", key);
        for (int i = 0; i < 3; i++)
            if (!strcmp(value, table_names[i])) {
                c->autoaugment = i;
                return RG_OK;
            }
        return rg_fail(err, RG_ERR_ARG, "augment: autoaugment: policy: '%s' is not a table (cifar10, svhn, imagenet)",
                       value);
    }
    if (!strcmp(name, "resizedcrop")) {
        if (!strcmp(key, "scale")) return parse_range(name, key, value, 1.0, c->rrc_scale, err);
        if (!strcmp(key, "ratio")) return parse_range(name, key, value, 1000.0, c->rrc_ratio, err);
        return rg_fail(err, RG_ERR_ARG, "augment: resizedcrop: unknown option '%s' (scale, ratio)", key);
    }
    if (!strcmp(name, "crop")) {
        if (!strcmp(key, "pad")) return parse_int(name, key, value, 0, RG_AUGMENT_MAX_PAD, &c->crop_pad, err);
        return rg_fail(err, RG_ERR_ARG, "augment: crop: unknown option '%s' (pad)", key);
    }
    if (!strcmp(name, "cutout")) {
        if (!strcmp(key, "size")) return parse_int(name, key, value, 1, RG_AUGMENT_MAX_PAD, &c->cutout_size, err);
        if (!strcmp(key, "p")) return parse_float(name, key, value, 0, 1, &c->cutout_p, err);
        return rg_fail(err, RG_ERR_ARG, "augment: cutout: unknown option '%s' (size, p)", key);
    }
    if (!strcmp(name, "erasing")) {
        if (!strcmp(key, "p")) return parse_float(name, key, value, 0, 1, &c->erase_p, err);
        if (!strcmp(key, "scale")) return parse_range(name, key, value, 1.0, c->erase_scale, err);
        if (!strcmp(key, "ratio")) return parse_range(name, key, value, 1000.0, c->erase_ratio, err);
        if (!strcmp(key, "value")) {
            if (!strcmp(value, "random")) {
                c->erase_random = 1;
                return RG_OK;
            }
            c->erase_random = 0;
            if (parse_int(name, key, value, 0, 255, &c->erase_value, err) != RG_OK)
                return rg_fail(err, RG_ERR_ARG, "augment: erasing: value: '%s' is not 0..255 or random", value);
            return RG_OK;
        }
        return rg_fail(err, RG_ERR_ARG, "augment: erasing: unknown option '%s' (p, scale, ratio, value)", key);
    }
    /* hflip, vflip take no options */
    return rg_fail(err, RG_ERR_ARG, "augment: %s: takes no options (got '%s')", name, key);
}

/* Sets an item's fields to their defaults (torchvision's) and marks it. */
static rg_status item_begin(const char *name, rg_augment_config *c, seen_items *seen, rg_error *err)
{
    int *flag = NULL;
    int policy = RG_AUG_POLICY_NONE;
    if (!strcmp(name, "randaugment")) policy = RG_AUG_POLICY_RANDAUGMENT;
    else if (!strcmp(name, "trivialaugment")) policy = RG_AUG_POLICY_TRIVIALAUGMENT;
    else if (!strcmp(name, "autoaugment")) policy = RG_AUG_POLICY_AUTOAUGMENT;
    if (policy != RG_AUG_POLICY_NONE) {
        if (seen->policy)
            return rg_fail(err, RG_ERR_ARG, "augment: %s: only one policy (randaugment, trivialaugment, autoaugment) per spec",
                           name);
        seen->policy = 1;
        c->policy = policy;
        c->ra_n = 2;
        c->ra_m = 9;
        c->autoaugment = RG_AUTOAUG_IMAGENET;
        c->fill = 0;
        return RG_OK;
    }
    if (!strcmp(name, "crop")) {
        flag = &seen->crop;
        c->crop_pad = 4;
    } else if (!strcmp(name, "hflip")) {
        flag = &seen->hflip;
        c->hflip = 1;
    } else if (!strcmp(name, "vflip")) {
        flag = &seen->vflip;
        c->vflip = 1;
    } else if (!strcmp(name, "resizedcrop")) {
        flag = &seen->rrc;
        c->resized_crop = 1;
        c->rrc_scale[0] = 0.08f;
        c->rrc_scale[1] = 1.0f;
        c->rrc_ratio[0] = (float)(3.0 / 4.0);
        c->rrc_ratio[1] = (float)(4.0 / 3.0);
    } else if (!strcmp(name, "cutout")) {
        flag = &seen->cutout;
        c->cutout_p = 1.0f;
        c->cutout_size = 0; /* required */
    } else if (!strcmp(name, "erasing")) {
        flag = &seen->erasing;
        c->erase_p = 0.5f;
        c->erase_scale[0] = 0.02f;
        c->erase_scale[1] = 0.33f;
        c->erase_ratio[0] = 0.3f;
        c->erase_ratio[1] = 3.3f;
        c->erase_random = 0;
        c->erase_value = 0;
    } else {
        return rg_fail(err, RG_ERR_ARG,
                       "augment: '%s' is not an augmentation (randaugment, trivialaugment, autoaugment, "
                       "resizedcrop, crop, hflip, vflip, cutout, erasing, none)",
                       name);
    }
    if (*flag) return rg_fail(err, RG_ERR_ARG, "augment: %s: given twice", name);
    *flag = 1;
    return RG_OK;
}

static rg_status parse_item(char *item, rg_augment_config *c, seen_items *seen, rg_error *err)
{
    char *colon = strchr(item, ':');
    char *opts = NULL;
    if (colon) {
        *colon = 0;
        opts = colon + 1;
    }
    char *name = trim(item);
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (!*name) return rg_fail(err, RG_ERR_ARG, "augment: empty item (two '+' in a row, or a leading ':')");
    if (!strcmp(name, "none")) {
        if (opts && *trim(opts)) return rg_fail(err, RG_ERR_ARG, "augment: none: takes no options");
        return RG_OK;
    }
    rg_status st = item_begin(name, c, seen, err);
    if (st) return st;
    if (opts) {
        int any = 0;
        /* split at ',' by hand: strtok would skip empty options silently */
        for (char *o = opts;;) {
            char *comma = strchr(o, ',');
            if (comma) *comma = 0;
            char *opt = trim(o);
            if (!*opt) {
                if (!comma && !any) break; /* "name:" alone: reported below */
                return rg_fail(err, RG_ERR_ARG, "augment: %s: empty option", name);
            }
            char *eq = strchr(opt, '=');
            char *value = NULL;
            if (eq) {
                *eq = 0;
                value = trim(eq + 1);
            }
            if ((st = item_option(name, trim(opt), value, c, err))) return st;
            any = 1;
            if (!comma) break;
            o = comma + 1;
        }
        if (!any) return rg_fail(err, RG_ERR_ARG, "augment: %s: ':' without options", name);
    }
    if (!strcmp(name, "cutout") && c->cutout_size < 1)
        return rg_fail(err, RG_ERR_ARG, "augment: cutout: size: missing (e.g. cutout:size=8)");
    return RG_OK;
}

rg_status rg_augment_parse(const char *spec, rg_augment_config *cfg, rg_error *err)
{
    if (!spec || !cfg) return rg_fail(err, RG_ERR_ARG, "augment: spec or configuration is NULL");
    if (strlen(spec) >= MAX_SPEC)
        return rg_fail(err, RG_ERR_ARG, "augment: spec is longer than %d characters", MAX_SPEC - 1);
    char buf[MAX_SPEC];
    snprintf(buf, sizeof buf, "%s", spec);
    if (!*trim(buf)) return RG_OK;
    rg_augment_config c = *cfg;
    seen_items seen = {0};
    char *p = buf;
    for (;;) {
        char *plus = strchr(p, '+');
        if (plus) *plus = 0;
        rg_status st = parse_item(p, &c, &seen, err);
        if (st) return st;
        if (!plus) break;
        p = plus + 1;
    }
    rg_status st = rg_augment_validate(&c, err);
    if (st) return st;
    *cfg = c;
    return RG_OK;
}

/* Appends printf text to buf at *len (never past size). */
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*len < size ? buf + *len : NULL, *len < size ? size - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n;
}

/* The shortest "%g" text that reads back as the same float. */
static const char *shortest(float v, char *buf, size_t size)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

size_t rg_augment_format(const rg_augment_config *c, char *buf, size_t size)
{
    size_t len = 0;
    const char *sep = "";
    char f[4][32];
    if (size) buf[0] = 0;
#define SEP() (put(buf, size, &len, "%s", sep), sep = " + ")
    if (c->crop_pad > 0) SEP(), put(buf, size, &len, "crop:pad=%d", c->crop_pad);
    if (c->hflip) SEP(), put(buf, size, &len, "hflip");
    if (c->vflip) SEP(), put(buf, size, &len, "vflip");
    if (c->resized_crop)
        SEP(), put(buf, size, &len, "resizedcrop:scale=%s..%s,ratio=%s..%s", shortest(c->rrc_scale[0], f[0], 32),
                   shortest(c->rrc_scale[1], f[1], 32), shortest(c->rrc_ratio[0], f[2], 32),
                   shortest(c->rrc_ratio[1], f[3], 32));
    if (c->policy == RG_AUG_POLICY_RANDAUGMENT)
        SEP(), put(buf, size, &len, "randaugment:n=%d,m=%d,fill=%d", c->ra_n, c->ra_m, c->fill);
    else if (c->policy == RG_AUG_POLICY_TRIVIALAUGMENT)
        SEP(), put(buf, size, &len, "trivialaugment:fill=%d", c->fill);
    else if (c->policy == RG_AUG_POLICY_AUTOAUGMENT)
        SEP(), put(buf, size, &len, "autoaugment:policy=%s,fill=%d",
                   c->autoaugment >= 0 && c->autoaugment < 3 ? table_names[c->autoaugment] : "?", c->fill);
    if (c->cutout_p > 0.0f)
        SEP(), put(buf, size, &len, "cutout:size=%d,p=%s", c->cutout_size, shortest(c->cutout_p, f[0], 32));
    if (c->erase_p > 0.0f) {
        SEP(), put(buf, size, &len, "erasing:p=%s,scale=", shortest(c->erase_p, f[0], 32));
        put(buf, size, &len, "%s..%s,ratio=%s..%s,value=", shortest(c->erase_scale[0], f[0], 32),
            shortest(c->erase_scale[1], f[1], 32), shortest(c->erase_ratio[0], f[2], 32),
            shortest(c->erase_ratio[1], f[3], 32));
        if (c->erase_random) put(buf, size, &len, "random");
        else put(buf, size, &len, "%d", c->erase_value);
    }
#undef SEP
    if (len == 0) put(buf, size, &len, "none");
    return len;
}
