/* Which kernels OpenBLAS runs, and the OPENBLAS_CORETYPE that corrects a
 * fallback (regain/cpu.h).
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the
 * CPU's family and model numbers when it is loaded. A release knows only
 * the CPUs that came before it: 0.3.21 (Debian 12) runs its Prescott (SSE3)
 * kernels on Intel Emerald Rapids (measured) and AMD Zen 5 (its source
 * knows AMD's families up to Zen 4's), where mbv2-tiny trains 1.5x faster
 * on its SkylakeX kernels (docs/performance.md). The choice is made before
 * main() runs, and the environment is read only then, so the fix is to
 * start the process again with OPENBLAS_CORETYPE set (the regain command
 * does so). */
#include "regain/cpu.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *rg_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

const char *rg_blas_coretype_for(const char *core, rg_isa supported)
{
    /* OpenBLAS's cores whose kernels use AVX2 and FMA (Zen's are Haswell's). */
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids",
                                             "Excavator"};
    if (supported < RG_ISA_AVX2 || !core) return NULL;
    for (size_t i = 0; i < sizeof avx2_cores / sizeof avx2_cores[0]; i++)
        if (!strcasecmp(core, avx2_cores[i])) return NULL;
    /* SkylakeX's kernels need AVX-512 F, CD, BW, DQ and VL: every CPU with
     * the four that RG_ISA_AVX512 asks for has CD as well. */
    return supported >= RG_ISA_AVX512 ? "SkylakeX" : "Haswell";
}

const char *rg_blas_coretype_advice(void)
{
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set) return NULL; /* the user's choice stands */
    const char *config = openblas_get_config();
    if (!config || !strstr(config, "DYNAMIC_ARCH")) return NULL; /* built for one core: nothing to choose */
    return rg_blas_coretype_for(rg_blas_core(), rg_cpu_isa_supported());
}
