/* Loops over independent pieces of work on the OpenMP threads, or on the
 * calling thread alone when a parallel region would have one thread.
 *
 * libgomp (GCC 12) ends every parallel region with a futex system call,
 * even a region of one thread, even one with a false if() clause, and a
 * nested one inside a region makes two. On the project's virtual machines
 * a system call costs about a microsecond, and one mbv2-tiny inference at
 * batch 1 opens some 30 regions: a fifth of its time went there. Loops
 * that may run on one thread (the forward passes: inference on one thread,
 * and every op of an inference session that splits a batch over its
 * threads) go through rg_parallel_for, which opens no region then.
 */
#ifndef REGAIN_CORE_PARALLEL_H
#define REGAIN_CORE_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

/* One piece of work: piece in [0, pieces), on thread `thread` in [0, the
 * region's threads) (0 when run on the calling thread), for per-thread
 * buffers. */
typedef void (*rg_piece_fn)(void *ctx, int32_t piece, int thread);

typedef enum { RG_SCHEDULE_STATIC, RG_SCHEDULE_DYNAMIC } rg_schedule;

/* fn(ctx, p, thread) for every piece p, on `threads` threads (0: as many
 * as OpenMP would use), pieces handed out as the schedule says; in order
 * on the calling thread when inside a parallel region already, when one
 * thread would run, or when there is one piece. Each piece must give the
 * same result on any thread. */
void rg_parallel_for(int32_t pieces, int threads, rg_schedule schedule, rg_piece_fn fn, void *ctx);

/* Rows [first, first + count) of a range, on thread `thread` as above. */
typedef void (*rg_rows_fn)(void *ctx, size_t first, size_t count, int thread);

/* rg_parallel_for over rows [0, total) cut into pieces of per_piece rows
 * (the last one shorter): fn(ctx, first, count, thread) for each. The
 * pieces do not depend on the thread count. */
void rg_parallel_rows(size_t total, size_t per_piece, int threads, rg_schedule schedule, rg_rows_fn fn, void *ctx);

#endif
