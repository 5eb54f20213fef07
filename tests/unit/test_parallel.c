/* rg_parallel_for (core/parallel.h): every piece runs exactly once, on a
 * thread index inside the region's, with either schedule; on one thread,
 * with one piece, or inside a parallel region it runs on the calling
 * thread in piece order without opening a region (not even an inactive
 * one: libgomp ends each with a system call); asked for two threads
 * with several pieces it does open one. rg_parallel_rows: the rows are
 * cut into pieces of the size asked (the last shorter), each row visited
 * once, the same pieces on any thread count. */
#include "test_support.h"

#include <omp.h>
#include <string.h>

#include "core/parallel.h"

enum { PIECES = 37 };

typedef struct {
    int runs[PIECES];
    int order[PIECES], next; /* filled only when serial */
    int bad_thread, in_region, team, level; /* level: regions around a piece, inactive ones too */
} record;

static void visit(void *ctx, int32_t p, int thread)
{
    record *r = ctx;
#pragma omp atomic
    r->runs[p]++;
    if (thread < 0 || thread >= omp_get_num_threads()) r->bad_thread = 1;
    if (omp_in_parallel()) r->in_region = 1;
    if (omp_get_level() > r->level) {
#pragma omp critical
        if (omp_get_level() > r->level) r->level = omp_get_level();
    }
    if (omp_get_num_threads() > r->team) {
#pragma omp critical
        if (omp_get_num_threads() > r->team) r->team = omp_get_num_threads();
    }
    if (!omp_in_parallel()) r->order[r->next++] = p;
}

static void run(int32_t pieces, int threads, rg_schedule s, record *r)
{
    memset(r, 0, sizeof *r);
    rg_parallel_for(pieces, threads, s, visit, r);
    for (int32_t p = 0; p < PIECES; p++)
        if (r->runs[p] != (p < pieces)) fail_msg("piece %d ran %d times (%d pieces)", p, r->runs[p], pieces);
    assert_false(r->bad_thread);
}

static void expect_serial(const record *r, int32_t pieces)
{
    assert_int_equal(r->level, 0); /* not even a region of one thread */
    assert_false(r->in_region);
    assert_int_equal(r->team, 1);
    for (int32_t p = 0; p < pieces; p++) assert_int_equal(r->order[p], p);
}

static void test_parallel_for(void **state)
{
    (void)state;
    record r;
    for (int s = 0; s < 2; s++) {
        rg_schedule sched = s ? RG_SCHEDULE_DYNAMIC : RG_SCHEDULE_STATIC;
        run(PIECES, 2, sched, &r);
        assert_true(r.in_region);
        assert_int_equal(r.team, 2);
        run(PIECES, 1, sched, &r);
        expect_serial(&r, PIECES);
        run(1, 2, sched, &r);
        expect_serial(&r, 1);
        run(0, 2, sched, &r);
        /* inside a region already (an inference session's threads): serial */
#pragma omp parallel num_threads(2)
        {
#pragma omp single
            {
                record inner;
                memset(&inner, 0, sizeof inner);
                rg_parallel_for(PIECES, 2, sched, visit, &inner);
                for (int32_t p = 0; p < PIECES; p++) assert_int_equal(inner.runs[p], 1);
                assert_int_equal(inner.team, 2); /* the enclosing team: no nested one */
                assert_int_equal(inner.level, 1);
            }
        }
    }
    /* 0 threads: OpenMP's own count */
    omp_set_num_threads(1);
    run(PIECES, 0, RG_SCHEDULE_STATIC, &r);
    expect_serial(&r, PIECES);
}

enum { ROWS = 1000 };

typedef struct {
    int visits[ROWS];
    size_t piece_first[ROWS], piece_count[ROWS]; /* indexed by a piece's first row */
    int bad;
} row_record;

static void visit_rows(void *ctx, size_t first, size_t count, int thread)
{
    row_record *r = ctx;
    if (thread < 0 || thread >= omp_get_num_threads() || count == 0 || first + count > ROWS) {
        r->bad = 1;
        return;
    }
    r->piece_first[first] = first + 1; /* 0: no piece starts here */
    r->piece_count[first] = count;
    for (size_t i = first; i < first + count; i++) r->visits[i]++; /* pieces do not overlap */
}

static void test_parallel_rows(void **state)
{
    (void)state;
    static row_record r;
    const size_t totals[] = {0, 1, 63, 64, 65, ROWS};
    for (int threads = 1; threads <= 2; threads++)
        for (size_t t = 0; t < sizeof totals / sizeof *totals; t++) {
            size_t total = totals[t], per = 64;
            memset(&r, 0, sizeof r);
            rg_parallel_rows(total, per, threads, threads == 2 ? RG_SCHEDULE_DYNAMIC : RG_SCHEDULE_STATIC,
                             visit_rows, &r);
            assert_false(r.bad);
            for (size_t i = 0; i < ROWS; i++) {
                if (r.visits[i] != (i < total)) fail_msg("row %zu of %zu visited %d times", i, total, r.visits[i]);
                int starts = i < total && i % per == 0;
                assert_int_equal(r.piece_first[i] != 0, starts);
                if (starts) assert_int_equal(r.piece_count[i], total - i < per ? total - i : per);
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parallel_for), cmocka_unit_test(test_parallel_rows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
