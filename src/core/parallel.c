/* rg_parallel_for (core/parallel.h). */
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
