/* The runtime's arena plan: activation tensors placed by liveness.
 *
 * Each tensor lives from the op that writes it (-1 for the model input) to
 * the last op that reads it (n_ops for the model output). A clamp or table
 * lookup whose input dies there writes over its input (in place: the
 * kernels allow x == y), so the two share one buffer. Buffers are then placed
 * with the greedy heuristic TFLite Micro uses: in a fixed order, each at the
 * lowest 64-byte aligned offset where it overlaps no placed buffer alive at
 * the same time. Two orders are tried (largest first, TFLite Micro's; and
 * longest-lived first, ties by size) and the smaller peak is kept: neither
 * wins on every graph, and planning is cheap.
 *
 * For the report (rt-info) the same placement without in-place sharing and
 * with largest-first order only is the "TFLite Micro greedy" figure. */
#include "rt/rt_internal.h"

#include <stdlib.h>
#include <string.h>

size_t rg_rt_align(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

typedef struct {
    int32_t id;
    size_t size;
    int32_t first, last;
    size_t off;
} buf;

static int by_size(const void *a, const void *b)
{
    const buf *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id;
}

static int by_life(const void *a, const void *b)
{
    const buf *x = a, *y = b;
    int32_t lx = x->last - x->first, ly = y->last - y->first;
    if (lx != ly) return lx < ly ? 1 : -1;
    return by_size(a, b);
}

/* Places bufs (in their current order); returns the peak. placed: scratch
 * of n indices. */
static size_t place(buf *b, int32_t n, int32_t *placed)
{
    size_t peak = 0;
    int32_t np = 0;
    for (int32_t i = 0; i < n; i++) {
        /* candidate offsets: 0 and the end of every conflicting buffer; the
         * lowest that fits wins (n is small: quadratic is fine) */
        size_t best = SIZE_MAX;
        for (int32_t c = -1; c < np; c++) {
            size_t off = 0;
            if (c >= 0) {
                const buf *p = &b[placed[c]];
                if (p->last < b[i].first || b[i].last < p->first) continue;
                off = p->off + p->size;
            }
            if (off >= best) continue;
            int ok = 1;
            for (int32_t k = 0; k < np && ok; k++) {
                const buf *p = &b[placed[k]];
                if (p->last < b[i].first || b[i].last < p->first) continue;
                if (off < p->off + p->size && p->off < off + b[i].size) ok = 0;
            }
            if (ok) best = off;
        }
        b[i].off = best;
        placed[np++] = i;
        if (best + b[i].size > peak) peak = best + b[i].size;
    }
    return peak;
}

rg_status rg_rt_plan(rg_rt *rt, rg_error *err)
{
    const rg_rgm *m = rt->m;
    int32_t nt = m->n_tensors;
    rt->first = malloc(sizeof(int32_t) * (size_t)nt);
    rt->last = malloc(sizeof(int32_t) * (size_t)nt);
    rt->off = calloc((size_t)nt, sizeof(size_t));
    rt->group = malloc(sizeof(int32_t) * (size_t)nt);
    buf *b = malloc(sizeof(buf) * (size_t)nt), *b2 = malloc(sizeof(buf) * (size_t)nt);
    int32_t *placed = malloc(sizeof(int32_t) * (size_t)nt);
    rg_status st = RG_OK;
    if (!rt->first || !rt->last || !rt->off || !rt->group || !b || !b2 || !placed) {
        st = rg_fail(err, RG_ERR_NOMEM, "rt: out of memory planning the arena");
        goto done;
    }
    /* lives; a tensor no op writes (other than the input) is not used */
    for (int32_t t = 0; t < nt; t++) rt->first[t] = rt->last[t] = -2, rt->group[t] = t;
    rt->first[m->input] = rt->last[m->input] = -1;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        for (int32_t k = 0; k < rg_rgm_op_n_in(o); k++) rt->last[o->in[k]] = i;
        rt->first[o->out] = rt->last[o->out] = i;
    }
    rt->last[m->output] = m->n_ops;
    /* in place: a clamp or a table lookup (elementwise, x == y allowed) over
     * an input that dies there */
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        if ((o->kind == RG_RT_CLAMP || o->kind == RG_RT_LUT) && rt->last[o->in[0]] == i && o->in[0] != m->output)
            rt->group[o->out] = rt->group[o->in[0]];
    }
    /* the naive figure, the lower bound and the TFLite Micro greedy plan */
    rg_rt_plan_stats *s = &rt->stats;
    int32_t n = 0;
    for (int32_t t = 0; t < nt; t++) {
        if (rt->first[t] == -2) continue;
        size_t sz = rg_rt_align(rg_rt_tensor_bytes(m, t));
        s->naive += sz;
        b[n++] = (buf){t, sz, rt->first[t], rt->last[t], 0};
    }
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        size_t need = rg_rt_align(rg_rt_tensor_bytes(m, o->in[0]));
        for (int32_t k = 1; k < rg_rgm_op_n_in(o); k++) {
            int dup = 0; /* an input read twice counts once */
            for (int32_t j = 0; j < k; j++) dup |= o->in[j] == o->in[k];
            if (!dup) need += rg_rt_align(rg_rt_tensor_bytes(m, o->in[k]));
        }
        if (rt->group[o->out] != rt->group[o->in[0]]) need += rg_rt_align(rg_rt_tensor_bytes(m, o->out));
        if (need > s->lower_bound) s->lower_bound = need;
    }
    qsort(b, (size_t)n, sizeof *b, by_size);
    s->tflm_greedy = place(b, n, placed);
    /* the runtime's plan: one buffer per group, lives merged */
    n = 0;
    for (int32_t t = 0; t < nt; t++) {
        if (rt->first[t] == -2 || rt->group[t] != t) continue;
        b[n++] = (buf){t, rg_rt_align(rg_rt_tensor_bytes(m, t)), rt->first[t], rt->last[t], 0};
    }
    for (int32_t t = 0; t < nt; t++) {
        if (rt->first[t] == -2 || rt->group[t] == t) continue;
        /* groups are chains of clamps: the root was made before its members */
        int32_t r = t;
        while (rt->group[r] != r) r = rt->group[r];
        for (int32_t k = 0; k < n; k++)
            if (b[k].id == r && rt->last[t] > b[k].last) b[k].last = rt->last[t];
    }
    memcpy(b2, b, sizeof(buf) * (size_t)n);
    qsort(b, (size_t)n, sizeof *b, by_size);
    size_t p1 = place(b, n, placed);
    qsort(b2, (size_t)n, sizeof *b2, by_life);
    size_t p2 = place(b2, n, placed);
    const buf *win = p2 < p1 ? b2 : b;
    s->arena = p2 < p1 ? p2 : p1;
    for (int32_t k = 0; k < n; k++) rt->off[win[k].id] = win[k].off;
    for (int32_t t = 0; t < nt; t++) {
        int32_t r = t;
        while (rt->group[r] != r) r = rt->group[r];
        rt->off[t] = rt->off[r];
    }
done:
    free(b);
    free(b2);
    free(placed);
    return st;
}
