/* regain — which instruction set the kernels use.
 *
 * The CPU is asked once (cpuid, through the compiler's builtins) and every
 * fast kernel is chosen from the answer. The environment variable
 * REGAIN_ISA=ref|avx2|avx512|avx512vnni lowers the choice (never above what
 * the CPU has), so the tests can run every path on any machine and a user can
 * rule out a fast kernel when chasing a difference.
 *
 * The levels are ordered: each includes the ones below. The float kernels
 * use AVX-512 at both AVX-512 levels; the int8 kernels (src/rt/kernels/qk.h)
 * use vpdpbusd at RG_ISA_AVX512_VNNI and their AVX2 code below it.
 */
#ifndef REGAIN_CPU_H
#define REGAIN_CPU_H

typedef enum {
    RG_ISA_REF = 0,    /* portable C, the reference every fast kernel is tested against */
    RG_ISA_AVX2 = 1,   /* AVX2 + FMA, 8 floats a vector */
    RG_ISA_AVX512 = 2, /* AVX-512 F/BW/DQ/VL, 16 floats a vector */
    RG_ISA_AVX512_VNNI = 3, /* AVX-512 + VNNI (vpdpbusd: u8 x s8 dot products of 4) */
} rg_isa;

/* The instruction set in use: the best the CPU has, capped by REGAIN_ISA. */
rg_isa rg_cpu_isa(void);
/* The best the CPU has, ignoring REGAIN_ISA. */
rg_isa rg_cpu_isa_supported(void);
/* Forces an instruction set (clamped to what the CPU has); for tests. */
void rg_cpu_set_isa(rg_isa isa);
const char *rg_isa_name(rg_isa isa);
/* Parses "ref", "avx2", "avx512", "avx512vnni"; -1 if none of these. */
int rg_isa_parse(const char *name);
/* The CPU's model name, and the flags of /proc/cpuinfo that matter for the
 * kernels ("sse4_2 avx avx2 fma ... avx512_vnni"), read once; for reports. */
const char *rg_cpu_model(void);
const char *rg_cpu_features(void);
/* "MODEL (FEATURES)". */
const char *rg_cpu_description(void);

/* OpenBLAS (the matrix products of pointwise weight gradients, im2col and
 * the classifier) chooses its own kernels from the CPU's model number when it
 * is loaded, and a release falls back to its SSE3 "Prescott" kernels on CPUs
 * newer than itself (0.3.21, Debian 12's, on Zen 5 and Emerald Rapids).
 *
 * rg_blas_core: the kernel set OpenBLAS runs ("SkylakeX", "Haswell",
 * "Prescott", ...). rg_blas_coretype_for: the OPENBLAS_CORETYPE that matches
 * a CPU of `supported` when OpenBLAS runs `core`, or NULL when `core` already
 * uses AVX2 and FMA (or the CPU has neither). rg_blas_coretype_advice: that
 * value for this process, or NULL when OPENBLAS_CORETYPE is already set or
 * OpenBLAS was built for one core. OpenBLAS reads the variable only when it
 * is loaded, so a program acting on the advice sets it and starts itself
 * again (tools/regain.c does). */
const char *rg_blas_core(void);
const char *rg_blas_coretype_for(const char *core, rg_isa supported);
const char *rg_blas_coretype_advice(void);

#endif
