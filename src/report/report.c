/* Writes the report's files into a directory, each atomically (report.h). */
#include "regain/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "regain/fileio.h"
#include "report/render.h"

const char *const rg_report_files[] = {"report.md", "report.html", "results.json", "results.csv", NULL};

static rg_status write_one(const char *dir, const char *name, const char *data, size_t size, int failed,
                           rg_error *err)
{
    if (failed || !data) return rg_fail(err, RG_ERR_NOMEM, "out of memory writing %s/%s", dir, name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = rg_malloc(n, err);
    if (!path) return RG_ERR_NOMEM;
    snprintf(path, n, "%s/%s", dir, name);
    rg_status st = rg_write_file_atomic(path, data, size, err);
    free(path);
    return st;
}

rg_status rg_report_write(const rg_report *r, const char *out_dir, rg_error *err)
{
    if (!r->n_runs) return rg_fail(err, RG_ERR_ARG, "report of '%s': no finished runs to report", r->experiment);
    rg_status st = rg_make_dirs(out_dir, err);
    if (st) return st;
    rg_text t = {0};
    rg_report_markdown(r, &t);
    st = write_one(out_dir, "report.md", t.data, t.len, t.failed, err);
    rg_text_free(&t);
    if (st) return st;
    rg_report_html(r, &t);
    st = write_one(out_dir, "report.html", t.data, t.len, t.failed, err);
    rg_text_free(&t);
    if (st) return st;
    char *json = rg_report_json(r);
    st = write_one(out_dir, "results.json", json, json ? strlen(json) : 0, 0, err);
    free(json);
    if (st) return st;
    rg_report_csv(r, &t);
    st = write_one(out_dir, "results.csv", t.data, t.len, t.failed, err);
    rg_text_free(&t);
    return st;
}
