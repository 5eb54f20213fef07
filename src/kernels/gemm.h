/* Matrix products whose results do not depend on the number of threads.
 *
 * OpenBLAS sums over K in blocks whose boundaries differ between its single-
 * and multi-threaded drivers (0.3.21: for K above its block size and not a
 * multiple of 32), so a plain threaded cblas_sgemm gives thread-count
 * dependent bits. regain therefore runs OpenBLAS single-threaded and splits
 * the work itself into pieces whose size depends only on the shapes, each
 * computed by one single-threaded OpenBLAS call:
 * - rg_gemm_rows: fixed blocks of rows of C, one single-threaded sgemm each
 *   (every element sees the full K, summed the same way);
 * - rg_gemm_tn_acc: C += A^T B over a long K (weight gradients, K = images x
 *   positions), split into fixed chunks of K whose partial products are
 *   computed in parallel and added to C in chunk order.
 * All matrices are row-major.
 */
#ifndef REGAIN_KERNELS_GEMM_H
#define REGAIN_KERNELS_GEMM_H

#include <stddef.h>

#include "kernels/kernels.h"

/* Rows of the partial-product chunks of rg_gemm_tn_acc. */
#define RG_GEMM_K_CHUNK 4096

/* C[M,N] = A[M,K] * op(B) + beta * C, op(B) = B[K,N] or, with trans_b,
 * the transpose of B[N,K]. */
void rg_gemm_rows(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);
/* The same, then C[i, j] = act(C[i, j] + bias[j]) block by block while the
 * block is still in cache (bias may be NULL; ldc must equal N). */
void rg_gemm_rows_bias_act(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, const float *bias, rg_act act);

/* One single-threaded product, C = A op(B) + beta C as rg_gemm_rows, for
 * callers that split the work into fixed blocks themselves: call it from
 * inside a parallel loop (gemm.c says why). */
void rg_gemm_block(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);

/* C[M,N] = A^T B + beta C with A[K,M], B[K,N], single-threaded like rg_gemm_block,
 * over K in fixed pieces of RG_GEMM_K_PIECE rows (C += each piece's product,
 * in order): OpenBLAS blocks a longer K differently depending on whether it
 * is called from inside an active parallel region (measured: weight
 * gradients of K = 392 to 3920 rows differed between 1 and 2 threads). */
#define RG_GEMM_K_PIECE 256
void rg_gemm_tn_block(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc);

/* Floats of scratch rg_gemm_tn_acc needs for these shapes. */
size_t rg_gemm_tn_acc_scratch(int M, int N, int K);

/* C[M,N] += A^T B with A[K,M], B[K,N]; scratch as sized above. */
void rg_gemm_tn_acc(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                    float *scratch);

#endif
