/* Reference small matrix product (kernels.h: gemm_nn). */
#include "kernels/ref.h"

void rg_ref_gemm_nn(int32_t M, int32_t N, int32_t K, const float *A, int32_t lda, const float *B, int32_t ldb,
                    float *C, int32_t ldc, int accumulate, const float *bias, rg_act act)
{
    for (int32_t i = 0; i < M; i++)
        for (int32_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (int32_t k = 0; k < K; k++) s += A[(size_t)i * lda + k] * B[(size_t)k * ldb + j];
            float *c = &C[(size_t)i * ldc + j];
            if (accumulate) s += *c;
            *c = rg_act_value(act, s + (bias ? bias[j] : 0.0f));
        }
}
