/* One kernel source, several instruction sets.
 *
 * A fast kernel is written once in a *.inc file with the compiler's vector
 * extensions (a vector of RG_VEC floats, +, *, loads and stores below) and
 * included by one small file per instruction set: kernels/x86/NAME_avx2.c,
 * kernels/x86/NAME_avx512.c. The build compiles those files with -mavx2
 * -mfma or -mavx512f... and -ffp-contract=fast (CMakeLists.txt), so the
 * same loops become 8- or 16-float FMA code; RG_ISA_FN(name) gives each
 * copy its own name (name_avx2, name_avx512). Which copy runs is chosen at
 * run time (regain/cpu.h). The plain C reference of each kernel lives in
 * NAME_ref.c and stays free of these tricks.
 */
#ifndef REGAIN_KERNELS_SIMD_H
#define REGAIN_KERNELS_SIMD_H

#include <immintrin.h>
#include <stdint.h>

#if defined(__AVX512F__)
#define RG_VEC 16
#define RG_ISA_FN(name) name##_avx512
#elif defined(__AVX2__)
#define RG_VEC 8
#define RG_ISA_FN(name) name##_avx2
#else
#error "kernels/simd.h is for the per-ISA kernel files only"
#endif

/* A vector value. Values stay plain vector types so the compiler keeps
 * register tiles in registers; memory is reached through rg_vmem below. */
typedef float rg_vf __attribute__((vector_size(RG_VEC * sizeof(float))));
/* Comparison results (all ones or zero per lane), for masking by bits. */
typedef int32_t rg_vi __attribute__((vector_size(RG_VEC * sizeof(int32_t))));
/* aligned(4): loads and stores may be unaligned; may_alias: they read and
 * write float arrays. */
typedef float rg_vmem __attribute__((vector_size(RG_VEC * sizeof(float)), aligned(4), may_alias));

static inline rg_vf rg_vload(const float *p) { return *(const rg_vmem *)p; }
static inline void rg_vstore(float *p, rg_vf v) { *(rg_vmem *)p = v; }
/* Software prefetch for the streaming kernels (kernels/bn.inc): the lines
 * of [p + RG_PREFETCH_AHEAD, p + RG_PREFETCH_AHEAD + n) into L1. 4 KiB
 * ahead measured best (1, 2, 4 and 8 KiB tried). The address is formed as
 * an integer: it may lie past the array, which a prefetch may touch (it
 * never faults) but C pointer arithmetic may not. */
#define RG_PREFETCH_AHEAD 1024 /* floats */
static inline void rg_prefetch_ahead(const float *p, int32_t n)
{
    uintptr_t a = (uintptr_t)p + RG_PREFETCH_AHEAD * sizeof(float);
    for (int32_t j = 0; j < n; j += 64 / (int32_t)sizeof(float))
        _mm_prefetch((const char *)(a + (uintptr_t)j * sizeof(float)), _MM_HINT_T0);
}
/* A broadcast (vbroadcastss, or folded into an FMA as a memory broadcast). */
#if RG_VEC == 16
static inline rg_vf rg_vset1(float x) { return (rg_vf)_mm512_set1_ps(x); }
#else
static inline rg_vf rg_vset1(float x) { return (rg_vf)_mm256_set1_ps(x); }
#endif
/* Lanes of v where mask is set, zero elsewhere. */
static inline rg_vf rg_vand(rg_vf v, rg_vi mask) { return (rg_vf)((rg_vi)v & mask); }
/* The first n < RG_VEC lanes (channel tails): masked loads and stores that
 * never touch memory past p[n-1]. */
#if RG_VEC == 16
static inline rg_vf rg_vload_n(const float *p, int n)
{
    return (rg_vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
static inline void rg_vstore_n(float *p, rg_vf v, int n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v);
}
#else
static inline __m256i rg_lane_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline rg_vf rg_vload_n(const float *p, int n) { return (rg_vf)_mm256_maskload_ps(p, rg_lane_mask(n)); }
static inline void rg_vstore_n(float *p, rg_vf v, int n) { _mm256_maskstore_ps(p, rg_lane_mask(n), (__m256)v); }
#endif
/* Loads and stores of n <= RG_VEC lanes, full vectors without a mask. */
static inline rg_vf rg_vload_k(const float *p, int n) { return n == RG_VEC ? rg_vload(p) : rg_vload_n(p, n); }
static inline void rg_vstore_k(float *p, rg_vf v, int n)
{
    if (n == RG_VEC) rg_vstore(p, v);
    else rg_vstore_n(p, v, n);
}

#if RG_VEC == 16
/* Half a vector (8 floats, a ymm register), for tails of at most 8 lanes:
 * on Zen 4 a 512-bit FMA takes both 256-bit pipes, so a masked 16-lane FMA
 * that uses 8 lanes costs twice a 256-bit one. Widened (upper lanes zero)
 * for the epilogues, which then run the full-vector code. */
typedef float rg_vh __attribute__((vector_size(8 * sizeof(float))));
static inline rg_vh rg_vhset1(float x) { return (rg_vh)_mm256_set1_ps(x); }
static inline rg_vh rg_vhload_n(const float *p, int n)
{
    return n == 8 ? (rg_vh)_mm256_loadu_ps(p) : (rg_vh)_mm256_maskz_loadu_ps((__mmask8)((1u << n) - 1u), p);
}
static inline rg_vf rg_vh_widen(rg_vh v) { return (rg_vf)_mm512_zextps256_ps512((__m256)v); }
#endif

/* C has no vector ?:, so min and max come from the intrinsics. */
#if RG_VEC == 16
static inline rg_vf rg_vmax(rg_vf a, rg_vf b) { return (rg_vf)_mm512_max_ps((__m512)a, (__m512)b); }
static inline rg_vf rg_vmin(rg_vf a, rg_vf b) { return (rg_vf)_mm512_min_ps((__m512)a, (__m512)b); }
#else
static inline rg_vf rg_vmax(rg_vf a, rg_vf b) { return (rg_vf)_mm256_max_ps((__m256)a, (__m256)b); }
static inline rg_vf rg_vmin(rg_vf a, rg_vf b) { return (rg_vf)_mm256_min_ps((__m256)a, (__m256)b); }
#endif

#endif
