/* A growing text buffer with the escaping and number formats the report
 * writers share (private to src/report).
 *
 * Appending never fails at the call site: an allocation failure marks the
 * buffer failed, later appends are ignored, and the writer checks `failed`
 * once at the end. That keeps hundreds of appends free of error plumbing. */
#ifndef REGAIN_REPORT_TEXT_H
#define REGAIN_REPORT_TEXT_H

#include <stddef.h>

typedef struct {
    char *data;     /* NUL-terminated once anything was appended */
    size_t len, cap;
    int failed;     /* an allocation failed: the content is incomplete */
} rg_text;

void rg_text_putn(rg_text *t, const char *s, size_t n);
void rg_text_put(rg_text *t, const char *s);
void rg_text_printf(rg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s escaped for HTML and SVG text and attribute values (& < > " '). */
void rg_text_html(rg_text *t, const char *s);
/* s escaped for Markdown text and table cells: the punctuation that
 * Markdown acts on inside a line (\ ` * _ < > | & ~, and [ when s could
 * form a link) is backslash-escaped, line breaks become spaces. */
void rg_text_md(rg_text *t, const char *s);
/* s as one CSV field (RFC 4180: quoted when it holds , " or a line break). */
void rg_text_csv(rg_text *t, const char *s);
void rg_text_free(rg_text *t);

/* Number formats for tables and charts; NaN prints as an em dash. Each
 * writes into buf (size bytes) and returns buf. */
#define RG_NA "\xe2\x80\x94"
const char *rg_fmt_fixed(double v, int decimals, char *buf, size_t size);
/* 812, 45.6 k, 1.23 M, 4.56 G */
const char *rg_fmt_count(double v, char *buf, size_t size);
/* 812 B, 48.1 KiB, 1.20 MiB */
const char *rg_fmt_bytes(double v, char *buf, size_t size);
/* 12.3 s, 4.5 min, 1.25 h */
const char *rg_fmt_seconds(double v, char *buf, size_t size);
/* 0.42, 0.0028, < 0.0001 */
const char *rg_fmt_p(double p, char *buf, size_t size);

#endif
