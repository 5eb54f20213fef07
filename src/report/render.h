/* The report's writers (private to src/report): the tables both report.md
 * and report.html show, and one renderer per file.
 *
 * tables.c decides what each table holds (columns, formats), so that the
 * Markdown and the HTML report never disagree; markdown.c and html.c only
 * lay the tables (and, for HTML, the charts) out. */
#ifndef REGAIN_REPORT_RENDER_H
#define REGAIN_REPORT_RENDER_H

#include <stdint.h>

#include "regain/report.h"
#include "report/text.h"

#define RG_TABLE_MAX_COLS 12

/* A table of formatted cells. */
typedef struct {
    int32_t cols, rows;
    char head[RG_TABLE_MAX_COLS][48];   /* column titles */
    char align[RG_TABLE_MAX_COLS];  /* 'l' or 'r' */
    char **cell;                    /* rows x cols strings */
    int32_t highlight;              /* row to stress (the best run), -1 for none */
    int32_t tone_col;               /* column shown as a colored badge, -1 for none */
    int8_t *tone;                   /* per row: 1 gain, -1 loss, 0 neither */
    int failed;                     /* an allocation failed */
} rg_table;

/* Each fills *t (release with rg_table_free; check t->failed). */
void rg_table_summary(const rg_report *r, rg_table *t);
void rg_table_comparisons(const rg_report *r, rg_table *t);
void rg_table_seeds(const rg_report *r, rg_table *t);
/* Rows: true classes; columns: predicted, in % of the row. */
void rg_table_confusion(const rg_report_run *run, rg_table *t);
/* Per class: images, accuracy, and the class it is most often mistaken for. */
void rg_table_classes(const rg_report_run *run, rg_table *t);
void rg_table_environment(const rg_report *r, rg_table *t);
void rg_table_free(rg_table *t);

/* The name of class c of run (rg_class_name). */
const char *rg_report_class(const rg_report_run *run, int32_t c, char *buf, size_t size);
/* "91.23 ± 0.15" for a run's top-1 (or "91.23" with one seed). */
const char *rg_report_top1(const rg_report_run *run, char *buf, size_t size);
/* A sentence on the rows that are not finished, or NULL when all are. */
const char *rg_report_unfinished(const rg_report *r, char *buf, size_t size);
/* The comparisons table's explanation: em marks the verdicts ("*" in
 * Markdown, "" in HTML), whisker follows the interval's name. */
const char *rg_report_comparisons_note(char *buf, size_t size, const char *em, const char *whisker);
/* Appends to o, when the seeds ran on more than one kind of CPU, the note
 * that lists the kinds and says which one the summary's latency and
 * training time come from (plain text, to escape), and returns 1; returns 0
 * and appends nothing otherwise. */
int rg_report_timing_note(const rg_report *r, rg_text *o);
/* A sentence naming the teacher runs left out of the best run, or NULL
 * when there are none (or every run is a teacher). */
const char *rg_report_teachers(const rg_report *r, char *buf, size_t size);

void rg_report_markdown(const rg_report *r, rg_text *out);
void rg_report_html(const rg_report *r, rg_text *out);
void rg_report_csv(const rg_report *r, rg_text *out);
/* results.json as a new string (caller frees), NULL when out of memory. */
char *rg_report_json(const rg_report *r);

#endif
