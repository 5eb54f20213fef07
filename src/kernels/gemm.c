/* Thread-count independent matrix products over single-threaded OpenBLAS. */
#include "kernels/gemm.h"
#include "core/parallel.h"

#include <cblas.h>
#include <omp.h>

#define ROW_BLOCK 1024

/* OpenBLAS's OpenMP build runs a call single-threaded when it is made inside
 * an active parallel region, and with omp_get_max_threads() threads
 * otherwise (openblas_set_num_threads is overridden at the next call). So
 * a call made outside one (rg_parallel_for runs a single piece of work, or
 * any work on one thread, on the calling thread) or inside a region of one
 * thread (not active) runs with the thread count lowered to 1 for its
 * duration (a pointwise backward planned on one thread and run on more
 * summed otherwise on AVX2 machines). */
static void sgemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc)
{
    int restore = !omp_in_parallel() && omp_get_max_threads() > 1 ? omp_get_max_threads() : 0;
    if (restore) omp_set_num_threads(1);
    if (M == 1 && !trans_a) {
        /* one row (a classifier at batch 1): a matrix-vector product,
         * without sgemm's packing (mbv2-tiny's fc at batch 1: about 3 us
         * before, under 1 after, measured together with running it
         * outside a parallel region). With beta 0 C is cleared first:
         * sgemv scales it, and 0 * NaN is NaN. */
        if (beta == 0.0f)
            for (int j = 0; j < N; j++) C[j] = 0.0f;
        if (trans_b) cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, B, ldb, A, 1, beta, C, 1);
        else cblas_sgemv(CblasRowMajor, CblasTrans, K, N, 1.0f, B, ldb, A, 1, beta, C, 1);
    } else {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                    1.0f, A, lda, B, ldb, beta, C, ldc);
    }
    if (restore) omp_set_num_threads(restore);
}

typedef struct {
    int trans_b, M, N, K, lda, ldb, ldc, epilogue;
    const float *A, *B, *bias;
    float beta, *C;
    rg_act act;
} rows_product;

static void rows_block(void *ctx, size_t first, size_t count, int thread)
{
    (void)thread;
    const rows_product *w = ctx;
    float *c = w->C + first * w->ldc;
    sgemm(0, w->trans_b, (int)count, w->N, w->K, w->A + first * w->lda, w->lda, w->B, w->ldb, w->beta, c, w->ldc);
    if (w->epilogue) rg_kernels()->bias_act(c, count, w->N, w->bias, w->act);
}

static void gemm_rows(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, const float *bias, rg_act act, int epilogue)
{
    rows_product w = {trans_b, M, N, K, lda, ldb, ldc, epilogue, A, B, bias, beta, C, act};
    rg_parallel_rows((size_t)M, ROW_BLOCK, 0, RG_SCHEDULE_DYNAMIC, rows_block, &w);
}

void rg_gemm_rows(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
    gemm_rows(trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, NULL, RG_ACT_NONE, 0);
}

void rg_gemm_rows_bias_act(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, const float *bias, rg_act act)
{
    gemm_rows(trans_b, M, N, K, A, lda, B, ldb, beta, C, N, bias, act, 1);
}

void rg_gemm_block(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc)
{
    sgemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void rg_gemm_tn_block(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc)
{
    for (int k0 = 0; k0 < K || k0 == 0; k0 += RG_GEMM_K_PIECE) {
        int kc = K - k0 < RG_GEMM_K_PIECE ? K - k0 : RG_GEMM_K_PIECE;
        sgemm(1, 0, M, N, kc, A + (size_t)k0 * lda, lda, B + (size_t)k0 * ldb, ldb, k0 ? 1.0f : beta, C, ldc);
    }
}

static int k_chunks(int K) { return (K + RG_GEMM_K_CHUNK - 1) / RG_GEMM_K_CHUNK; }

size_t rg_gemm_tn_acc_scratch(int M, int N, int K)
{
    int chunks = k_chunks(K);
    return chunks > 1 ? (size_t)chunks * (size_t)M * (size_t)N : 0;
}

void rg_gemm_tn_acc(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                    float *scratch)
{
    int chunks = k_chunks(K);
    if (chunks <= 1) {
#pragma omp parallel
#pragma omp single
        rg_gemm_tn_block(M, N, K, A, lda, B, ldb, 1.0f, C, ldc);
        return;
    }
    size_t mn = (size_t)M * N;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++) {
        int k0 = c * RG_GEMM_K_CHUNK, kc = K - k0 < RG_GEMM_K_CHUNK ? K - k0 : RG_GEMM_K_CHUNK;
        rg_gemm_tn_block(M, N, kc, A + (size_t)k0 * lda, lda, B + (size_t)k0 * ldb, ldb, 0.0f, scratch + (size_t)c * mn,
                         N);
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = C[(size_t)i * ldc + j];
            for (int c = 0; c < chunks; c++) s += scratch[(size_t)c * mn + (size_t)i * N + j];
            C[(size_t)i * ldc + j] = s;
        }
}
