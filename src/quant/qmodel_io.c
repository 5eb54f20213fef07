/* Saving and loading an int8 model (contract in include/regain/quant_model.h).
 *
 * A safetensors file (so that it carries regain's crc32 of the data and
 * loads in other ecosystems): per weight op i the tensors "op<i>.weights"
 * (I8), "op<i>.bias", "op<i>.multipliers", "op<i>.shifts" and, after
 * equalization, "op<i>.act_max_c" (I32); the metadata "regain.kind" =
 * "int8-model", "regain.qmodel_version" = "1" and "regain.qmodel", a text
 * with one line per tensor and per op (every integer parameter, scales as
 * C99 hexadecimal floats so they read back bit for bit). The later int8
 * runtime format (.rgm) will replace this container. */
#include "regain/quant_model.h"
#include "regain/safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QMODEL_VERSION "1"

static int has_weights(const rg_qop *o)
{
    return o->kind == RG_QOP_CONV || o->kind == RG_QOP_DEPTHWISE || o->kind == RG_QOP_FC;
}

/* Appends printf output to a growing buffer. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? 2 * b->cap : 4096) + (size_t)n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

rg_status rg_qmodel_save(const char *path, const rg_qmodel *m, const char *source, rg_error *err)
{
    for (int32_t i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind > RG_QOP_CONCAT)
            return rg_fail(err, RG_ERR_UNSUPPORTED,
                           "%s: op %d (%s): %s is not in the int8 model container (version " QMODEL_VERSION
                           "); write a .rgm (rg_rgm_write_qmodel)",
                           path, (int)i, m->ops[i].name, rg_qop_kind_name(m->ops[i].kind));
    sbuf b = {0};
    sb_printf(&b, "qmodel %d %d %d %d %d\n", (int)m->n_tensors, (int)m->n_ops, (int)m->input, (int)m->output,
              m->per_channel);
    for (int32_t t = 0; t < m->n_tensors; t++) {
        const rg_qtensor *q = &m->tensors[t];
        sb_printf(&b, "tensor %d %d %d %d %a %d %d\n", (int)t, (int)q->h, (int)q->w, (int)q->c, (double)q->q.scale,
                  (int)q->q.zero_point, (int)q->value);
    }
    int32_t n_st = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_qop *o = &m->ops[i];
        const rg_q_add_params *a = &o->add;
        const rg_q_gap_params *g = &o->gap;
        sb_printf(&b, "op %d %d %s %d %d %d %d %d %d %d %d %d %d %d %d %d %d\n", (int)i, (int)o->kind, o->name,
                  (int)o->n_in, (int)o->in[0], (int)o->in[1], (int)o->in[2], (int)o->in[3], (int)o->out, (int)o->k_h,
                  (int)o->k_w, (int)o->stride, (int)o->pad, (int)o->out_c, (int)o->act_min, (int)o->act_max,
                  o->act_max_c != NULL);
        sb_printf(&b, "add %d %d %d %d %d %d %d %d %d %d %d %d\n", (int)a->in1_zp, (int)a->in2_zp, (int)a->out_zp,
                  (int)a->left_shift, (int)a->in1_multiplier, (int)a->in1_shift, (int)a->in2_multiplier,
                  (int)a->in2_shift, (int)a->out_multiplier, (int)a->out_shift, (int)a->act_min, (int)a->act_max);
        sb_printf(&b, "gap %d %d %d %d %d %d %d %d\n", (int)g->in_zp, (int)g->out_zp, (int)g->multiplier,
                  (int)g->shift, (int)g->act_min, (int)g->act_max, (int)o->cat_multipliers[0], (int)o->cat_shifts[0]);
        sb_printf(&b, "cat %d %d %d %d %d %d\n", (int)o->cat_multipliers[1], (int)o->cat_shifts[1],
                  (int)o->cat_multipliers[2], (int)o->cat_shifts[2], (int)o->cat_multipliers[3],
                  (int)o->cat_shifts[3]);
        if (has_weights(o)) n_st += o->act_max_c ? 5 : 4;
    }
    if (b.oom) {
        free(b.s);
        return rg_fail(err, RG_ERR_NOMEM, "%s: out of memory describing the model", path);
    }
    rg_st_tensor *ts = rg_calloc((size_t)(n_st > 0 ? n_st : 1), sizeof *ts, err);
    char (*names)[RG_NAME_MAX + 32] = rg_calloc((size_t)(n_st > 0 ? n_st : 1), sizeof *names, err);
    if (!ts || !names) {
        free(b.s);
        free(ts);
        free(names);
        return RG_ERR_NOMEM;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_qop *o = &m->ops[i];
        if (!has_weights(o)) continue;
        const rg_qtensor *in = &m->tensors[o->in[0]];
        int64_t per = o->kind == RG_QOP_CONV        ? (int64_t)o->k_h * o->k_w * in->c
                      : o->kind == RG_QOP_DEPTHWISE ? (int64_t)o->k_h * o->k_w
                                                    : (int64_t)in->h * in->w * in->c;
        const struct {
            const char *suffix;
            const void *raw;
            rg_st_dtype dt;
            int64_t n;
        } parts[] = {{"weights", o->weights, RG_ST_I8, per * o->out_c},
                     {"bias", o->bias, RG_ST_I32, o->out_c},
                     {"multipliers", o->multipliers, RG_ST_I32, o->out_c},
                     {"shifts", o->shifts, RG_ST_I32, o->out_c},
                     {"act_max_c", o->act_max_c, RG_ST_I32, o->out_c}};
        for (int p = 0; p < (o->act_max_c ? 5 : 4); p++, k++) {
            snprintf(names[k], sizeof names[k], "op%d.%s", (int)i, parts[p].suffix);
            ts[k].name = names[k];
            ts[k].ndim = 1;
            ts[k].shape[0] = parts[p].n;
            ts[k].dtype = parts[p].dt;
            ts[k].raw = parts[p].raw;
        }
    }
    rg_st_meta meta[] = {{"regain.kind", "int8-model"},
                         {"regain.qmodel_version", QMODEL_VERSION},
                         {"regain.qmodel", b.s},
                         {"regain.source", source ? source : ""}};
    rg_status st = rg_st_write(path, ts, n_st, meta, 4, err);
    free(b.s);
    free(ts);
    free(names);
    return st;
}

static rg_status bad(const char *path, const char *what, rg_error *err)
{
    return rg_fail(err, RG_ERR_FORMAT, "%s: int8 model: %s", path, what);
}

static rg_status load_array(const rg_st_file *f, const char *path, int32_t op, const char *suffix, rg_st_dtype dt,
                            int64_t n, void **out, rg_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "op%d.%s", (int)op, suffix);
    const rg_st_tensor *t = rg_st_find(f, name);
    size_t elem = dt == RG_ST_I8 ? 1 : 4;
    if (!t || t->dtype != dt || t->ndim != 1 || t->shape[0] != n)
        return rg_fail(err, RG_ERR_FORMAT, "%s: int8 model: tensor %s missing or of the wrong type or shape", path,
                       name);
    *out = rg_malloc(elem * (size_t)(n > 0 ? n : 1), err);
    if (!*out) return RG_ERR_NOMEM;
    memcpy(*out, t->raw, elem * (size_t)n);
    return RG_OK;
}

static int in_range(int v, int lo, int hi)
{
    return v >= lo && v <= hi;
}

/* The shapes an op's kernel relies on, so that a malformed file cannot make
 * a kernel read or write outside a tensor. */
static int shapes_ok(const rg_qmodel *m, const rg_qop *o)
{
    const rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    switch (o->kind) {
    case RG_QOP_CONV: return o->out_c == out->c && o->k_h >= 1 && o->k_w >= 1 && o->stride >= 1 && o->pad >= 0;
    case RG_QOP_DEPTHWISE:
        return o->out_c == out->c && in->c == out->c && o->k_h >= 1 && o->k_w >= 1 && o->stride >= 1 && o->pad >= 0;
    case RG_QOP_FC: return out->h == 1 && out->w == 1 && out->c == o->out_c;
    case RG_QOP_ADD: {
        const rg_qtensor *b = &m->tensors[o->in[1]];
        return o->n_in == 2 && in->h == out->h && in->w == out->w && in->c == out->c && b->h == out->h &&
               b->w == out->w && b->c == out->c;
    }
    case RG_QOP_CLAMP: return in->h == out->h && in->w == out->w && in->c == out->c;
    case RG_QOP_AVGPOOL:
    case RG_QOP_MAXPOOL: return in->c == out->c && o->k_h >= 1 && o->k_w >= 1 && o->stride >= 1 && o->pad >= 0;
    case RG_QOP_GAP: return out->h == 1 && out->w == 1 && out->c == in->c;
    case RG_QOP_CONCAT: {
        int32_t c = 0;
        for (int32_t k = 0; k < o->n_in; k++) {
            const rg_qtensor *t = &m->tensors[o->in[k]];
            if (t->h != out->h || t->w != out->w) return 0;
            c += t->c;
        }
        return o->n_in >= 2 && c == out->c;
    }
    default: break; /* version 1 has no other kinds (the loader refuses them first) */
    }
    return 0;
}

rg_status rg_qmodel_load(const char *path, rg_qmodel **out, rg_error *err)
{
    *out = NULL;
    rg_st_file *f;
    rg_status st = rg_st_read(path, &f, err);
    if (st) return st;
    const char *kind = rg_st_meta_get(f, "regain.kind"), *ver = rg_st_meta_get(f, "regain.qmodel_version");
    const char *text = rg_st_meta_get(f, "regain.qmodel");
    /* the messages quote the file's metadata: format them before freeing it */
    if (!kind || strcmp(kind, "int8-model") || !text) {
        st = rg_fail(err, RG_ERR_FORMAT, "%s: not an int8 model (regain.kind is %.40s)", path, kind ? kind : "missing");
        rg_st_free(f);
        return st;
    }
    if (!ver || strcmp(ver, QMODEL_VERSION)) {
        st = rg_fail(err, RG_ERR_UNSUPPORTED, "%s: int8 model version %.20s (this regain reads %s)", path,
                     ver ? ver : "missing", QMODEL_VERSION);
        rg_st_free(f);
        return st;
    }
    rg_qmodel *m = rg_calloc(1, sizeof *m, err);
    if (!m) {
        rg_st_free(f);
        return RG_ERR_NOMEM;
    }
    const char *p = text;
    int used = 0, nt, no, in, outt, pc;
    if (sscanf(p, "qmodel %d %d %d %d %d\n%n", &nt, &no, &in, &outt, &pc, &used) != 5 || !in_range(nt, 1, 1 << 20) ||
        !in_range(no, 1, 1 << 20) || !in_range(in, 0, nt - 1) || !in_range(outt, 0, nt - 1)) {
        st = bad(path, "bad header line", err);
        goto done;
    }
    p += used;
    m->tensors = rg_calloc((size_t)nt, sizeof *m->tensors, err);
    m->ops = rg_calloc((size_t)no, sizeof *m->ops, err);
    if (!m->tensors || !m->ops) {
        st = RG_ERR_NOMEM;
        goto done;
    }
    m->n_tensors = nt;
    m->input = in;
    m->output = outt;
    m->per_channel = pc != 0;
    for (int32_t t = 0; t < nt; t++) {
        int id, h, w, c, zp, value;
        double scale;
        if (sscanf(p, "tensor %d %d %d %d %la %d %d\n%n", &id, &h, &w, &c, &scale, &zp, &value, &used) != 7 ||
            id != t || !in_range(h, 1, 1 << 16) || !in_range(w, 1, 1 << 16) || !in_range(c, 1, 1 << 20)) {
            st = bad(path, "bad tensor line", err);
            goto done;
        }
        p += used;
        rg_qtensor *q = &m->tensors[t];
        q->h = h;
        q->w = w;
        q->c = c;
        q->q.scale = (float)scale;
        q->q.zero_point = zp;
        q->value = value;
        if ((st = rg_q_params_check(q->q, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "tensor", err))) {
            rg_error_prefix(err, "%s: int8 model: tensor %d", path, (int)t);
            goto done;
        }
    }
    for (int32_t i = 0; i < no; i++) {
        rg_qop *o = &m->ops[i];
        m->n_ops = i + 1;
        int id, k, nin, ins[4], ot, kh, kw, s, pad, oc, amin, amax, has_c;
        char name[RG_NAME_MAX];
        if (sscanf(p, "op %d %d %95s %d %d %d %d %d %d %d %d %d %d %d %d %d %d\n%n", &id, &k, name, &nin, &ins[0],
                   &ins[1], &ins[2], &ins[3], &ot, &kh, &kw, &s, &pad, &oc, &amin, &amax, &has_c, &used) != 17 ||
            id != i || !in_range(k, 0, RG_QOP_CONCAT) || !in_range(nin, 1, RG_MAX_INPUTS) || !in_range(ot, 0, nt - 1)) {
            st = bad(path, "bad op line", err);
            goto done;
        }
        p += used;
        o->kind = (rg_qop_kind)k;
        snprintf(o->name, sizeof o->name, "%s", name);
        o->n_in = nin;
        for (int j = 0; j < RG_MAX_INPUTS; j++) {
            if (j < nin ? !in_range(ins[j], 0, nt - 1) : ins[j] != -1) {
                st = bad(path, "op input out of range", err);
                goto done;
            }
            o->in[j] = ins[j];
        }
        o->out = ot;
        o->k_h = kh;
        o->k_w = kw;
        o->stride = s;
        o->pad = pad;
        o->out_c = oc;
        o->act_min = amin;
        o->act_max = amax;
        if (!shapes_ok(m, o)) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s: int8 model: op %d (%s): shapes of its tensors do not fit", path,
                         (int)i, o->name);
            goto done;
        }
        rg_q_add_params *a = &o->add;
        rg_q_gap_params *g = &o->gap;
        int v[12];
        if (sscanf(p, "add %d %d %d %d %d %d %d %d %d %d %d %d\n%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7], &v[8], &v[9], &v[10], &v[11], &used) != 12) {
            st = bad(path, "bad add line", err);
            goto done;
        }
        p += used;
        *a = (rg_q_add_params){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
        if (sscanf(p, "gap %d %d %d %d %d %d %d %d\n%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                   &used) != 8) {
            st = bad(path, "bad gap line", err);
            goto done;
        }
        p += used;
        const rg_qtensor *ti = &m->tensors[o->in[0]];
        g->batch = 1;
        g->h = ti->h;
        g->w = ti->w;
        g->c = ti->c;
        g->in_zp = v[0];
        g->out_zp = v[1];
        g->multiplier = v[2];
        g->shift = v[3];
        g->act_min = v[4];
        g->act_max = v[5];
        o->cat_multipliers[0] = v[6];
        o->cat_shifts[0] = v[7];
        if (sscanf(p, "cat %d %d %d %d %d %d\n%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &used) != 6) {
            st = bad(path, "bad cat line", err);
            goto done;
        }
        p += used;
        for (int j = 1; j < 4; j++) {
            o->cat_multipliers[j] = v[2 * j - 2];
            o->cat_shifts[j] = v[2 * j - 1];
        }
        if (has_weights(o)) {
            if (!in_range(oc, 1, 1 << 20) || oc != m->tensors[ot].c * (o->kind == RG_QOP_FC ? m->tensors[ot].h * m->tensors[ot].w : 1)) {
                st = bad(path, "op output channels do not match its tensor", err);
                goto done;
            }
            int64_t per = o->kind == RG_QOP_CONV        ? (int64_t)kh * kw * ti->c
                          : o->kind == RG_QOP_DEPTHWISE ? (int64_t)kh * kw
                                                        : (int64_t)ti->h * ti->w * ti->c;
            if ((st = load_array(f, path, i, "weights", RG_ST_I8, per * oc, (void **)&o->weights, err)) ||
                (st = load_array(f, path, i, "bias", RG_ST_I32, oc, (void **)&o->bias, err)) ||
                (st = load_array(f, path, i, "multipliers", RG_ST_I32, oc, (void **)&o->multipliers, err)) ||
                (st = load_array(f, path, i, "shifts", RG_ST_I32, oc, (void **)&o->shifts, err)) ||
                (has_c && (st = load_array(f, path, i, "act_max_c", RG_ST_I32, oc, (void **)&o->act_max_c, err))))
                goto done;
            o->w_scales = rg_calloc((size_t)oc, sizeof(float), err);
            if (!o->w_scales) {
                st = RG_ERR_NOMEM;
                goto done;
            }
        }
    }
    size_t off = 0;
    for (int32_t t = 0; t < nt; t++) {
        m->tensors[t].foffset = off;
        off += (size_t)m->tensors[t].h * m->tensors[t].w * m->tensors[t].c;
    }
    m->image_floats = off;
    rg_qmodel_plan_arena(m, 0);
done:
    rg_st_free(f);
    if (st) {
        rg_qmodel_free(m);
        return st;
    }
    *out = m;
    return RG_OK;
}
