/* Text buffer, escaping and number formats of the report writers (text.h). */
#include "report/text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(rg_text *t, size_t extra)
{
    if (t->failed) return 0;
    if (t->len + extra + 1 <= t->cap) return 1;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + extra + 1) cap *= 2;
    char *p = realloc(t->data, cap);
    if (!p) {
        t->failed = 1;
        return 0;
    }
    t->data = p;
    t->cap = cap;
    return 1;
}

void rg_text_putn(rg_text *t, const char *s, size_t n)
{
    if (!reserve(t, n)) return;
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}

void rg_text_put(rg_text *t, const char *s)
{
    rg_text_putn(t, s, strlen(s));
}

void rg_text_printf(rg_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(t, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void rg_text_html(rg_text *t, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': rg_text_put(t, "&amp;"); break;
        case '<': rg_text_put(t, "&lt;"); break;
        case '>': rg_text_put(t, "&gt;"); break;
        case '"': rg_text_put(t, "&quot;"); break;
        case '\'': rg_text_put(t, "&#39;"); break;
        default: rg_text_putn(t, p, 1);
        }
    }
}

void rg_text_md(rg_text *t, const char *s)
{
    /* Brackets only make a link as "[text](target)": escaping them always
     * would litter every interval "[0.1, 0.2]" with backslashes. */
    int link = strstr(s, "](") != NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            rg_text_put(t, " ");
        } else if (strchr("\\`*_<>|&~", *p) || (link && *p == '[')) {
            rg_text_putn(t, "\\", 1);
            rg_text_putn(t, p, 1);
        } else {
            rg_text_putn(t, p, 1);
        }
    }
}

void rg_text_csv(rg_text *t, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        rg_text_put(t, s);
        return;
    }
    rg_text_put(t, "\"");
    for (const char *p = s; *p; p++) rg_text_putn(t, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
    rg_text_put(t, "\"");
}

void rg_text_free(rg_text *t)
{
    free(t->data);
    *t = (rg_text){0};
}

const char *rg_fmt_fixed(double v, int decimals, char *buf, size_t size)
{
    if (isnan(v)) snprintf(buf, size, RG_NA);
    else snprintf(buf, size, "%.*f", decimals, v);
    return buf;
}

/* v / scale with three significant digits and the unit. */
static const char *scaled(double v, double scale, const char *unit, char *buf, size_t size)
{
    double x = v / scale;
    int dec = fabs(x) >= 100 ? 0 : fabs(x) >= 10 ? 1 : 2;
    snprintf(buf, size, "%.*f %s", dec, x, unit);
    return buf;
}

const char *rg_fmt_count(double v, char *buf, size_t size)
{
    if (isnan(v)) snprintf(buf, size, RG_NA);
    else if (fabs(v) >= 1e9) scaled(v, 1e9, "G", buf, size);
    else if (fabs(v) >= 1e6) scaled(v, 1e6, "M", buf, size);
    else if (fabs(v) >= 1e4) scaled(v, 1e3, "k", buf, size);
    else snprintf(buf, size, "%.0f", v);
    return buf;
}

const char *rg_fmt_bytes(double v, char *buf, size_t size)
{
    if (isnan(v)) snprintf(buf, size, RG_NA);
    else if (fabs(v) >= 1024.0 * 1024.0 * 1024.0) scaled(v, 1024.0 * 1024.0 * 1024.0, "GiB", buf, size);
    else if (fabs(v) >= 1024.0 * 1024.0) scaled(v, 1024.0 * 1024.0, "MiB", buf, size);
    else if (fabs(v) >= 1024.0) scaled(v, 1024.0, "KiB", buf, size);
    else snprintf(buf, size, "%.0f B", v);
    return buf;
}

const char *rg_fmt_seconds(double v, char *buf, size_t size)
{
    if (isnan(v)) snprintf(buf, size, RG_NA);
    else if (v >= 3600.0) snprintf(buf, size, "%.2f h", v / 3600.0);
    else if (v >= 60.0) snprintf(buf, size, "%.1f min", v / 60.0);
    else snprintf(buf, size, "%.1f s", v);
    return buf;
}

const char *rg_fmt_p(double p, char *buf, size_t size)
{
    if (isnan(p)) snprintf(buf, size, RG_NA);
    else if (p < 1e-4) snprintf(buf, size, "< 0.0001");
    else if (p < 0.01) snprintf(buf, size, "%.4f", p);
    else snprintf(buf, size, "%.2f", p);
    return buf;
}
