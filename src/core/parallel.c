/* rg_parallel_for and rg_parallel_rows (core/parallel.h). */
#include "core/parallel.h"

#include <omp.h>

void rg_parallel_for(int32_t pieces, int threads, rg_schedule schedule, rg_piece_fn fn, void *ctx)
{
    int t = threads > 0 ? threads : omp_get_max_threads();
    if (t <= 1 || pieces <= 1 || omp_in_parallel()) {
        for (int32_t p = 0; p < pieces; p++) fn(ctx, p, 0);
        return;
    }
    if (schedule == RG_SCHEDULE_DYNAMIC) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
        for (int32_t p = 0; p < pieces; p++) fn(ctx, p, omp_get_thread_num());
    } else {
#pragma omp parallel for schedule(static) num_threads(t)
        for (int32_t p = 0; p < pieces; p++) fn(ctx, p, omp_get_thread_num());
    }
}

typedef struct {
    size_t total, per_piece;
    rg_rows_fn fn;
    void *ctx;
} row_range;

static void row_piece(void *ctx, int32_t p, int thread)
{
    const row_range *r = ctx;
    size_t first = (size_t)p * r->per_piece, rest = r->total - first;
    r->fn(r->ctx, first, rest < r->per_piece ? rest : r->per_piece, thread);
}

void rg_parallel_rows(size_t total, size_t per_piece, int threads, rg_schedule schedule, rg_rows_fn fn, void *ctx)
{
    row_range r = {total, per_piece, fn, ctx};
    rg_parallel_for((int32_t)((total + per_piece - 1) / per_piece), threads, schedule, row_piece, &r);
}
