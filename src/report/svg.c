/* SVG charts of the report: lines, scatter with Pareto front, bars with
 * error bars, heat map (see svg.h). */
#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "system-ui, -apple-system, &quot;Segoe UI&quot;, Roboto, &quot;Helvetica Neue&quot;, Arial, sans-serif"
#define INK "#1f2933"
#define MUTED "#616e7c"
#define GRID "#e4e7eb"
#define AXIS "#9aa5b1"

const char *rg_svg_color(size_t i)
{
    static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    return palette[i % (sizeof palette / sizeof palette[0])];
}

/* ---- frame, scales, axes ------------------------------------------------------------ */

static void open_svg(rg_text *t, double w, double h, const char *aria)
{
    rg_text_printf(t, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"",
                   w, h, w, h);
    rg_text_html(t, aria ? aria : "chart");
    rg_text_printf(t, "\" font-family=\"%s\" font-size=\"12\">\n", FONT);
}

static void close_svg(rg_text *t)
{
    rg_text_put(t, "</svg>\n");
}

/* Text at (x, y); anchor is start, middle or end; extra holds more attributes (or ""). */
static void text_at(rg_text *t, double x, double y, const char *anchor, const char *fill, const char *extra,
                    const char *s)
{
    rg_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"%s\"%s%s>", x, y, anchor, fill,
                   *extra ? " " : "", extra);
    rg_text_html(t, s);
    rg_text_put(t, "</text>\n");
}

/* s cut to at most max characters (UTF-8 aware), the last one an ellipsis
 * when s is longer. buf must hold 4 * max + 4 bytes. */
static const char *clip(const char *s, size_t max, char *buf, size_t size)
{
    size_t chars = 0, i = 0;
    /* i ends at the start of character number max + 1, or at the end */
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == max) break;
    if (!s[i]) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    size_t cut = i;  /* back to the start of character number max */
    do cut--;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80);
    snprintf(buf, size, "%.*s\xe2\x80\xa6", (int)cut, s);
    return buf;
}

typedef struct {
    double lo, hi, step;    /* data range shown; step between ticks (linear) */
    int log;
    double p0, p1;          /* pixels of lo and hi */
} scale;

static double px(const scale *s, double v)
{
    double f = s->log ? (log10(v) - log10(s->lo)) / (log10(s->hi) - log10(s->lo)) : (v - s->lo) / (s->hi - s->lo);
    return s->p0 + f * (s->p1 - s->p0);
}

/* 1, 2 or 5 times a power of ten near x (Heckbert, "Nice numbers for graph labels"). */
static double nice(double x, int round)
{
    double e = floor(log10(x)), f = x / pow(10.0, e), n;
    if (round) n = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return n * pow(10.0, e);
}

/* The largest 1, 2 or 5 times a power of ten <= v (v > 0), or with up = 1
 * the smallest one >= v. */
static double grid125(double v, int up)
{
    double e = pow(10.0, floor(log10(v))), m = v / e;
    if (up) return (m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10) * e;
    return (m >= 5 - 1e-9 ? 5 : m >= 2 - 1e-9 ? 2 : 1) * e;
}

/* A scale over [lo, hi] with about `ticks` nice ticks. It widens to the
 * enclosing ticks unless tight (then the ticks are those inside); a log
 * scale widens to the enclosing 1-2-5 values. */
static scale make_scale(double lo, double hi, int ticks, int integer, int log_scale, int tight, double p0, double p1)
{
    scale s = {.p0 = p0, .p1 = p1, .log = log_scale};
    if (!(lo <= hi)) lo = 0, hi = 1;   /* no data (NaN) */
    if (log_scale) {
        if (!(lo > 0)) lo = hi > 0 ? hi / 10 : 1;
        s.lo = grid125(lo, 0);
        s.hi = grid125(hi, 1);
        if (s.hi <= s.lo) s.hi = grid125(s.lo * 1.5, 1);
        return s;
    }
    if (hi - lo < 1e-12 * (fabs(lo) + 1)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.05 : 1;
        if (integer) pad = 1;
        lo -= pad, hi += pad;
    }
    s.step = nice(nice(hi - lo, 0) / (ticks - 1), 1);
    if (integer && s.step < 1) s.step = 1;
    if (tight) {
        s.lo = lo, s.hi = hi;
        return s;
    }
    s.lo = floor(lo / s.step + 1e-9) * s.step;
    s.hi = ceil(hi / s.step - 1e-9) * s.step;
    if (s.hi <= s.lo) s.hi = s.lo + s.step;
    return s;
}

/* The tick values of s into v (room for 64); returns how many. */
static int ticks_of(const scale *s, double *v)
{
    int n = 0;
    if (s->log) {
        /* 1, 2 and 5 in each decade, or only the powers of ten when that
         * would crowd the axis. */
        for (int only_powers = 0; only_powers < 2; only_powers++) {
            n = 0;
            for (double d = pow(10.0, floor(log10(s->lo))); d <= s->hi * 1.0001 && n < 60; d *= 10)
                for (int m = 1; m <= 5; m += m == 1 ? 1 : 3)
                    if ((m == 1 || !only_powers) && d * m >= s->lo * 0.9999 && d * m <= s->hi * 1.0001) v[n++] = d * m;
            if (n <= 8) break;
        }
        return n;
    }
    if (!(s->step > 0)) return 0;
    for (double x = ceil(s->lo / s->step - 1e-9) * s->step; x <= s->hi + s->step * 1e-6 && n < 64; x += s->step)
        v[n++] = fabs(x) < s->step * 1e-9 ? 0.0 : x;
    return n;
}

static const char *tick_label(const scale *s, double v, char *buf, size_t size)
{
    if (s->log) snprintf(buf, size, "%g", v);
    else snprintf(buf, size, "%.*f", s->step >= 1 ? 0 : (int)ceil(-log10(s->step) - 1e-9), v);
    return buf;
}

/* Grid lines, tick labels, the two axis lines and their labels around the
 * plot area (sx.p0..sx.p1 by sy.p1..sy.p0). */
static void draw_axes(rg_text *t, const scale *sx, const scale *sy, const rg_svg_axes *ax)
{
    double v[64];
    char b[64];
    int n = ticks_of(sy, v);
    for (int i = 0; i < n; i++) {
        double y = px(sy, v[i]);
        rg_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                       sx->p0, y, sx->p1, y, GRID);
        text_at(t, sx->p0 - 8, y + 4, "end", MUTED, "", tick_label(sy, v[i], b, sizeof b));
    }
    n = ticks_of(sx, v);
    for (int i = 0; i < n; i++) {
        double x = px(sx, v[i]);
        rg_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n", x,
                       sy->p0, x, sy->p0 + 5, AXIS);
        text_at(t, x, sy->p0 + 19, "middle", MUTED, "", tick_label(sx, v[i], b, sizeof b));
    }
    rg_text_printf(t,
                   "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                   sx->p0, sy->p1, sy->p0, sx->p1, AXIS);
    if (ax->x_label) text_at(t, (sx->p0 + sx->p1) / 2, sy->p0 + 40, "middle", INK, "font-weight=\"600\"", ax->x_label);
    if (ax->y_label) {
        char rot[96];
        double cy = (sy->p0 + sy->p1) / 2;
        snprintf(rot, sizeof rot, "font-weight=\"600\" transform=\"rotate(-90 %.1f %.1f)\"", sx->p0 - 46, cy);
        text_at(t, sx->p0 - 46, cy, "middle", INK, rot, ax->y_label);
    }
}

static void legend_at(rg_text *t, double x, double y, const rg_svg_legend *l, size_t n)
{
    char b[128];
    for (size_t i = 0; i < n; i++, y += 20) {
        const char *col = l[i].hex ? l[i].hex : rg_svg_color(l[i].color);
        if (l[i].dot)
            rg_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\"/>\n", x + 11, y - 4, col);
        else
            rg_text_printf(t,
                           "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n",
                           x, y - 4, x + 22, y - 4, col, l[i].dashed ? " stroke-dasharray=\"5 3\"" : "");
        rg_text_printf(t, "<g><title>");
        rg_text_html(t, l[i].label);
        rg_text_put(t, "</title>");
        text_at(t, x + 30, y, "start", INK, "", clip(l[i].label, 22, b, sizeof b));
        rg_text_put(t, "</g>\n");
    }
}

/* ---- line chart --------------------------------------------------------------------- */

void rg_svg_lines(rg_text *t, const rg_svg_axes *ax, const rg_svg_series *s, size_t n, const rg_svg_legend *legend,
                  size_t n_legend)
{
    /* Tall enough for the legend, which lists every run. */
    const double W = 760, H = fmax(340, 16 + 20.0 * (double)n_legend + 40), L = 70, R = W - 200, T = 16, B = H - 56;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            if (isnan(s[k].x[i]) || isnan(s[k].y[i])) continue;
            xlo = fmin(xlo, s[k].x[i]), xhi = fmax(xhi, s[k].x[i]);
            ylo = fmin(ylo, s[k].y[i]), yhi = fmax(yhi, s[k].y[i]);
        }
    scale sx = make_scale(xlo, xhi, 8, ax->x_integer, ax->x_log, 1, L, R);
    scale sy = make_scale(ylo, yhi, 6, 0, 0, 0, B, T);
    open_svg(t, W, H, ax->aria);
    draw_axes(t, &sx, &sy, ax);
    for (size_t k = 0; k < n; k++) {
        const char *col = rg_svg_color(s[k].color);
        rg_text_put(t, "<path d=\"");
        int pen = 0;
        size_t shown = 0;
        for (size_t i = 0; i < s[k].n; i++) {
            if (isnan(s[k].x[i]) || isnan(s[k].y[i])) {
                pen = 0;
                continue;
            }
            rg_text_printf(t, "%s%.1f %.1f", pen ? "L" : "M", px(&sx, s[k].x[i]), px(&sy, s[k].y[i]));
            pen = 1;
            shown++;
        }
        rg_text_printf(t, "\" fill=\"none\" stroke=\"%s\" stroke-linejoin=\"round\"%s>", col,
                       s[k].dashed ? " stroke-width=\"1.5\" stroke-dasharray=\"5 4\" stroke-opacity=\"0.6\""
                                   : " stroke-width=\"2.2\"");
        if (s[k].tooltip) {
            rg_text_put(t, "<title>");
            rg_text_html(t, s[k].tooltip);
            rg_text_put(t, "</title>");
        }
        rg_text_put(t, "</path>\n");
        /* Dots mark the epochs when there are few enough to tell apart. */
        if (!s[k].dashed && shown <= 40)
            for (size_t i = 0; i < s[k].n; i++)
                if (!isnan(s[k].x[i]) && !isnan(s[k].y[i]))
                    rg_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", px(&sx, s[k].x[i]),
                                   px(&sy, s[k].y[i]), col);
    }
    legend_at(t, R + 24, T + 14, legend, n_legend);
    close_svg(t);
}

/* ---- scatter with Pareto front ---------------------------------------------------- */

typedef struct {
    double x0, y0, x1, y1;
} box;

/* Area that a and b share. */
static double overlap(const box *a, const box *b)
{
    double w = fmin(a->x1, b->x1) - fmax(a->x0, b->x0), h = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
    return w > 0 && h > 0 ? w * h : 0.0;
}

/* Where the label (about w wide) of the point at (x, y) goes: of eight
 * spots around the point, the one that overlaps the boxes in taken[0..n)
 * and sticks out of `area` the least (the first such). Returns the text's
 * box; *tx, *ty and *anchor receive its position. */
static box place_label(double x, double y, double w, const box *taken, size_t n, const box *area, double *tx,
                       double *ty, const char **anchor)
{
    static const struct {
        double dx, dy;
        const char *anchor;
    } spot[] = {{11, -7, "start"}, {11, 16, "start"}, {-11, -7, "end"}, {-11, 16, "end"},
                {0, -15, "middle"}, {0, 25, "middle"}, {12, 4, "start"}, {-12, 4, "end"}};
    box best = {0};
    double best_cost = INFINITY;
    for (size_t k = 0; k < sizeof spot / sizeof spot[0] && best_cost > 0; k++) {
        double bx = x + spot[k].dx, by = y + spot[k].dy;
        double x0 = spot[k].anchor[0] == 's' ? bx : spot[k].anchor[0] == 'e' ? bx - w : bx - w / 2;
        box b = {x0, by - 10, x0 + w, by + 3};
        /* sticking out of the plot costs more than covering another label */
        double cost = 4 * ((b.x1 - b.x0) * (b.y1 - b.y0) - overlap(&b, area));
        for (size_t i = 0; i < n; i++) cost += overlap(&b, &taken[i]);
        if (cost < best_cost) {
            best_cost = cost, best = b;
            *tx = bx, *ty = by, *anchor = spot[k].anchor;
        }
    }
    return best;
}

void rg_svg_scatter(rg_text *t, const rg_svg_axes *ax, const rg_svg_point *p, size_t n, const size_t *front,
                    size_t n_front)
{
    const double W = 540, H = 380, L = 70, R = W - 24, T = 34, B = H - 56;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(p[i].x) || isnan(p[i].y) || (ax->x_log && !(p[i].x > 0))) continue;
        double e = isnan(p[i].y_err) ? 0 : p[i].y_err;
        xlo = fmin(xlo, p[i].x), xhi = fmax(xhi, p[i].x);
        ylo = fmin(ylo, p[i].y - e), yhi = fmax(yhi, p[i].y + e);
    }
    /* Room around the points for their labels. */
    if (!ax->x_log && xlo <= xhi) {
        double pad = (xhi - xlo) * 0.08 + 1e-9;
        /* costs are not negative: no axis below 0 for them */
        xlo = xlo >= 0 && xlo - pad < 0 ? 0 : xlo - pad;
        xhi += pad;
    }
    scale sx = make_scale(xlo, xhi, 6, 0, ax->x_log, 0, L, R);
    scale sy = make_scale(ylo, yhi, 6, 0, 0, 0, B, T);
    open_svg(t, W, H, ax->aria);
    draw_axes(t, &sx, &sy, ax);
    if (n_front > 1) {
        rg_text_put(t, "<path d=\"");
        for (size_t i = 0; i < n_front; i++)
            rg_text_printf(t, "%s%.1f %.1f", i ? "L" : "M", px(&sx, p[front[i]].x), px(&sy, p[front[i]].y));
        rg_text_printf(t, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\n", INK);
    }
    /* Label boxes go after the points' own: a label avoids every dot and
     * every label placed before it. */
    box *taken = calloc(2 * n + 1, sizeof *taken);
    size_t n_taken = 0;
    if (!taken) t->failed = 1;
    box area = {L, T - 30, R + 20, B};
    for (size_t i = 0; taken && i < n; i++)
        if (!isnan(p[i].x) && !isnan(p[i].y) && !(ax->x_log && !(p[i].x > 0))) {
            double x = px(&sx, p[i].x), y = px(&sy, p[i].y);
            taken[n_taken++] = (box){x - 8, y - 8, x + 8, y + 8};
        }
    for (size_t i = 0; taken && i < n; i++) {
        if (isnan(p[i].x) || isnan(p[i].y) || (ax->x_log && !(p[i].x > 0))) continue;
        double x = px(&sx, p[i].x), y = px(&sy, p[i].y);
        const char *col = rg_svg_color(p[i].color);
        int on_front = 0;
        for (size_t k = 0; k < n_front; k++) on_front |= front[k] == i;
        rg_text_put(t, "<g><title>");
        rg_text_html(t, p[i].label);
        rg_text_printf(t, ": %.2f %% at %g</title>\n", p[i].y, p[i].x);
        if (p[i].y_err > 0)
            rg_text_printf(t, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                           x, px(&sy, p[i].y - p[i].y_err), px(&sy, p[i].y + p[i].y_err), x - 4,
                           px(&sy, p[i].y - p[i].y_err), x - 4, px(&sy, p[i].y + p[i].y_err), col);
        if (on_front)
            rg_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                           x, y, INK);
        rg_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"1\"/>\n", x,
                       y, col);
        char b[128];
        clip(p[i].label, 24, b, sizeof b);
        size_t chars = 0;
        for (const char *c = b; *c; c++) chars += ((unsigned char)*c & 0xc0) != 0x80;
        double tx = x, ty = y;
        const char *anchor = "start";
        box lb = place_label(x, y, 6.6 * (double)chars, taken, n_taken, &area, &tx, &ty, &anchor);
        taken[n_taken++] = lb;
        /* a white halo keeps the label legible over the front's line */
        text_at(t, tx, ty, anchor, INK, "stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\"", b);
        rg_text_put(t, "</g>\n");
    }
    free(taken);
    rg_svg_legend key[] = {{.label = "Pareto front", .hex = INK, .dashed = 1}};
    legend_at(t, L + 8, 20, key, n_front > 1 ? 1 : 0);
    close_svg(t);
}

/* ---- bars with error bars ------------------------------------------------------------ */

void rg_svg_bars(rg_text *t, const rg_svg_axes *ax, const rg_svg_bar *b, size_t n)
{
    const double W = 760, L = 210, R = W - 180, T = 12, ROW = 36;
    const double H = T + ROW * (double)(n ? n : 1) + 56, B = H - 56;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        double v[3] = {b[i].value, b[i].lo, b[i].hi};
        for (int k = 0; k < 3; k++)
            if (!isnan(v[k])) lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
    }
    if (hi - lo < 1e-9) lo = -1, hi = 1;
    scale sx = make_scale(lo, hi, 7, 0, 0, 0, L, R);
    scale sy = {.lo = 0, .hi = 1, .p0 = B, .p1 = T};   /* step 0: no y ticks */
    open_svg(t, W, H, ax->aria);
    draw_axes(t, &sx, &sy, ax);
    double x0 = px(&sx, 0);
    for (size_t i = 0; i < n; i++) {
        double yc = T + ROW * ((double)i + 0.5);
        const char *col = b[i].tone > 0 ? "#59a14f" : b[i].tone < 0 ? "#e15759" : "#a3acb9";
        char buf[160];
        rg_text_put(t, "<g><title>");
        rg_text_html(t, b[i].label);
        rg_text_put(t, "</title>\n");
        text_at(t, L - 10, yc + 4, "end", INK, "", clip(b[i].label, 28, buf, sizeof buf));
        if (!isnan(b[i].value)) {
            double xv = px(&sx, b[i].value);
            rg_text_printf(t, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"2\" fill=\"%s\" fill-opacity=\"0.85\"/>\n",
                           fmin(x0, xv), yc - ROW * 0.3, fabs(xv - x0), ROW * 0.6, col);
        }
        if (!isnan(b[i].lo) && !isnan(b[i].hi)) {
            double a = px(&sx, b[i].lo), c = px(&sx, b[i].hi);
            rg_text_printf(t, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fv12M%.1f %.1fv12\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                           a, yc, c, a, yc - 6, c, yc - 6, INK);
        }
        if (isnan(b[i].value)) snprintf(buf, sizeof buf, "no pairs");
        else if (isnan(b[i].lo)) snprintf(buf, sizeof buf, "%+.2f", b[i].value);
        else snprintf(buf, sizeof buf, "%+.2f  [%+.2f, %+.2f]", b[i].value, b[i].lo, b[i].hi);
        text_at(t, R + 14, yc + 4, "start", INK, "", buf);
        rg_text_put(t, "</g>\n");
    }
    rg_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\"/>\n", x0, T,
                   x0, B, INK);
    close_svg(t);
}

/* ---- heat map ----------------------------------------------------------------------- */

void rg_svg_heatmap(rg_text *t, const char *aria, const int64_t *counts, int32_t k, const char *const *labels)
{
    if (k < 1) return;
    const double cell = fmax(8.0, fmin(42.0, 440.0 / k)), L = 120, T = 12;
    const double side = cell * k, W = L + side + 20, H = T + side + 110;
    open_svg(t, W, H, aria);
    char b[128];
    for (int32_t i = 0; i < k; i++) {
        int64_t row = 0;
        for (int32_t j = 0; j < k; j++) row += counts[(size_t)i * k + j];
        for (int32_t j = 0; j < k; j++) {
            int64_t c = counts[(size_t)i * k + j];
            double f = row ? (double)c / (double)row : 0.0;
            /* The square root makes the small off-diagonal shares, where the
             * confusions are, visible beside a dominant diagonal. */
            double s = sqrt(f);
            int r = (int)lround(247 + (8 - 247) * s), g = (int)lround(251 + (69 - 251) * s),
                bl = (int)lround(255 + (148 - 255) * s);
            double x = L + j * cell, y = T + i * cell;
            rg_text_put(t, "<g><title>true ");
            rg_text_html(t, labels[i]);
            rg_text_put(t, ", predicted ");
            rg_text_html(t, labels[j]);
            rg_text_printf(t, ": %lld (%.1f %%)</title>", (long long)c, 100.0 * f);
            rg_text_printf(t, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\" stroke=\"#fff\" stroke-width=\"1\"/>",
                           x, y, cell, cell, r, g, bl);
            if (cell >= 22 && row) {
                snprintf(b, sizeof b, cell >= 34 ? "%.1f" : "%.0f", 100.0 * f);
                rg_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%s\" fill=\"%s\">%s</text>",
                               x + cell / 2, y + cell / 2 + 4, cell >= 34 ? "11" : "9", s > 0.55 ? "#fff" : INK,
                               c ? b : "\xc2\xb7");
            }
            rg_text_put(t, "</g>\n");
        }
    }
    /* Row labels at the left, column labels slanted below. */
    double fs = fmin(12.0, cell * 0.8);
    for (int32_t i = 0; i < k; i++) {
        char fsz[48];
        snprintf(fsz, sizeof fsz, "font-size=\"%.0f\"", fs);
        text_at(t, L - 8, T + i * cell + cell / 2 + 4, "end", INK, fsz, clip(labels[i], 16, b, sizeof b));
        double x = L + i * cell + cell / 2, y = T + side + 14;
        char rot[96];
        snprintf(rot, sizeof rot, "font-size=\"%.0f\" transform=\"rotate(-40 %.1f %.1f)\"", fs, x, y);
        text_at(t, x, y, "end", INK, rot, clip(labels[i], 16, b, sizeof b));
    }
    text_at(t, L + side / 2, H - 8, "middle", INK, "font-weight=\"600\"", "predicted class");
    char rot[96];
    snprintf(rot, sizeof rot, "font-weight=\"600\" transform=\"rotate(-90 14 %.1f)\"", T + side / 2);
    text_at(t, 14, T + side / 2, "middle", INK, rot, "true class");
    close_svg(t);
}
