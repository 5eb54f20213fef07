/* Channel rearrangements: concat, slice (a split is two slices) and the
 * ShuffleNet channel shuffle. All are copies along the innermost axis. */
#include "ops/op.h"
#include "core/parallel.h"

#include <string.h>

#define ROWS 1024 /* positions per piece of work */

typedef struct {
    const float *src;
    float *dst;
    int32_t cs, so, cd, od, count, acc;
} channel_copy;

static void copy_rows(void *ctx, size_t first, size_t rows, int thread)
{
    (void)thread;
    const channel_copy *w = ctx;
    for (size_t r = first; r < first + rows; r++) {
        const float *s = w->src + r * w->cs + w->so;
        float *d = w->dst + r * w->cd + w->od;
        if (w->acc)
            for (int32_t k = 0; k < w->count; k++) d[k] += s[k];
        else
            memcpy(d, s, (size_t)w->count * sizeof(float));
    }
}

/* Copies `count` channels per position from src (stride cs, offset so) to dst
 * (stride cd, offset od), accumulating when acc is set. */
static void copy_channels(const float *src, int32_t cs, int32_t so, float *dst, int32_t cd, int32_t od,
                          int32_t count, size_t positions, int acc)
{
    channel_copy w = {src, dst, cs, so, cd, od, count, acc};
    rg_parallel_rows(positions, ROWS, 0, RG_SCHEDULE_STATIC, copy_rows, &w);
}

static size_t positions(const rg_op_call *c)
{
    rg_shape s = rg_out_shape(c);
    return (size_t)s.n * s.h * s.w;
}

static void concat_forward(const rg_op_call *c)
{
    int32_t cy = rg_out_shape(c).c, off = 0;
    for (int32_t i = 0; i < c->node->n_in; i++) {
        int32_t ci = rg_in_shape(c, i).c;
        copy_channels(rg_in(c, i), ci, 0, rg_out(c), cy, off, ci, positions(c), 0);
        off += ci;
    }
}

static void concat_backward(const rg_op_call *c)
{
    int32_t cy = rg_out_shape(c).c, off = 0;
    for (int32_t i = 0; i < c->node->n_in; i++) {
        int32_t ci = rg_in_shape(c, i).c;
        copy_channels(rg_dout(c), cy, off, rg_din(c, i), ci, 0, ci, positions(c), 1);
        off += ci;
    }
}

static void slice_forward(const rg_op_call *c)
{
    int32_t cx = rg_in_shape(c, 0).c, cy = rg_out_shape(c).c;
    copy_channels(rg_in(c, 0), cx, c->node->a.slice.offset, rg_out(c), cy, 0, cy, positions(c), 0);
}

static void slice_backward(const rg_op_call *c)
{
    int32_t cx = rg_in_shape(c, 0).c, cy = rg_out_shape(c).c;
    copy_channels(rg_dout(c), cy, 0, rg_din(c, 0), cx, c->node->a.slice.offset, cy, positions(c), 1);
}

/* Shuffle with g groups of k = C/g channels: view channels as (g, k),
 * transpose to (k, g). Output channel j*g + i comes from input i*k + j. */
static void shuffle_rows(void *ctx, size_t first, size_t rows, int thread)
{
    (void)thread;
    const rg_op_call *c = ctx;
    int32_t C = rg_out_shape(c).c, g = c->node->a.shuffle.groups, k = C / g;
    const float *x = rg_in(c, 0);
    float *y = rg_out(c);
    for (size_t r = first; r < first + rows; r++)
        for (int32_t i = 0; i < g; i++)
            for (int32_t j = 0; j < k; j++) y[r * C + j * g + i] = x[r * C + i * k + j];
}

static void shuffle_forward(const rg_op_call *c)
{
    rg_parallel_rows(positions(c), ROWS, 0, RG_SCHEDULE_STATIC, shuffle_rows, (void *)c);
}

static void shuffle_backward(const rg_op_call *c)
{
    int32_t C = rg_out_shape(c).c, g = c->node->a.shuffle.groups, k = C / g;
    const float *dy = rg_dout(c);
    float *dx = rg_din(c, 0);
    size_t P = positions(c);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < P; r++)
        for (int32_t i = 0; i < g; i++)
            for (int32_t j = 0; j < k; j++) dx[r * C + i * k + j] += dy[r * C + j * g + i];
}

const rg_op_def rg_op_concat = {.name = "concat", .forward = concat_forward, .backward = concat_backward};
const rg_op_def rg_op_slice = {.name = "slice", .forward = slice_forward, .backward = slice_backward};
const rg_op_def rg_op_shuffle = {.name = "shuffle", .forward = shuffle_forward, .backward = shuffle_backward};
