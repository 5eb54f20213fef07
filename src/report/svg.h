/* SVG charts of the report (private to src/report).
 *
 * Each function appends one <svg> element, meant to be inlined in HTML (so
 * no xmlns and no external reference: colors, fonts and sizes are
 * attributes on the elements). Every text is escaped; NaN values are left
 * out (a NaN in a line breaks the line). Axes get "nice" ticks (1, 2 or 5
 * times a power of ten) that enclose the data. The charts are fixed-size in
 * user units with a viewBox, so CSS can scale them to the page width.
 */
#ifndef REGAIN_REPORT_SVG_H
#define REGAIN_REPORT_SVG_H

#include <stddef.h>
#include <stdint.h>

#include "report/text.h"

/* The i-th color of the palette (Tableau 10; it cycles), as "#rrggbb". */
const char *rg_svg_color(size_t i);

typedef struct {
    const char *aria;       /* what the chart shows, for screen readers */
    const char *x_label, *y_label;
    int x_log;              /* logarithmic x axis (all x > 0) */
    int x_integer;          /* x ticks at whole numbers only (epochs) */
} rg_svg_axes;

/* A legend entry: a short line in the color (dashed or not), or a dot. */
typedef struct {
    const char *label;
    size_t color;
    int dashed, dot;
    const char *hex;        /* overrides color when not NULL */
} rg_svg_legend;

/* A line through (x[i], y[i]). */
typedef struct {
    const double *x, *y;
    size_t n;
    size_t color;
    int dashed;
    const char *tooltip;    /* shown on hover (SVG <title>); may be NULL */
} rg_svg_series;

void rg_svg_lines(rg_text *t, const rg_svg_axes *ax, const rg_svg_series *s, size_t n, const rg_svg_legend *legend,
                  size_t n_legend);

/* A labeled point with a vertical error bar of y_err on each side (0 or NaN: none). */
typedef struct {
    const char *label;
    double x, y, y_err;
    size_t color;
} rg_svg_point;

/* Points, and the Pareto front (indices into p, by increasing x) as a line
 * through its points, which are ringed. */
void rg_svg_scatter(rg_text *t, const rg_svg_axes *ax, const rg_svg_point *p, size_t n, const size_t *front,
                    size_t n_front);

/* A horizontal bar from 0 to value with a whisker from lo to hi. tone: 1
 * gain (green), -1 loss (red), 0 neither (grey). */
typedef struct {
    const char *label;
    double value, lo, hi;
    int tone;
} rg_svg_bar;

void rg_svg_bars(rg_text *t, const rg_svg_axes *ax, const rg_svg_bar *b, size_t n);

/* A k x k confusion matrix (rows true labels, columns predictions) as a
 * heat map: the shade of each cell is its share of the row, the cell shows
 * it in percent, the tooltip the count. labels: k class names. */
void rg_svg_heatmap(rg_text *t, const char *aria, const int64_t *counts, int32_t k, const char *const *labels);

#endif
