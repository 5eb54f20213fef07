/* CPU feature detection and the instruction-set choice (regain/cpu.h). */
#include "regain/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int chosen = -1;

rg_isa rg_cpu_isa_supported(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return RG_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RG_ISA_AVX2;
#endif
    return RG_ISA_REF;
}

int rg_isa_parse(const char *name)
{
    static const char *names[] = {"ref", "avx2", "avx512"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *rg_isa_name(rg_isa isa)
{
    switch (isa) {
    case RG_ISA_REF: return "ref";
    case RG_ISA_AVX2: return "avx2";
    case RG_ISA_AVX512: return "avx512";
    }
    return "?";
}

void rg_cpu_set_isa(rg_isa isa)
{
    rg_isa best = rg_cpu_isa_supported();
    chosen = (int)(isa < best ? isa : best);
}

rg_isa rg_cpu_isa(void)
{
    if (chosen < 0) {
        rg_isa isa = rg_cpu_isa_supported();
        const char *env = getenv("REGAIN_ISA");
        if (env && *env) {
            int want = rg_isa_parse(env);
            /* An unknown value is ignored rather than fatal: kernels are an
             * implementation detail and results do not depend on the choice
             * beyond float rounding. */
            if (want >= 0 && (rg_isa)want < isa) isa = (rg_isa)want;
        }
        chosen = (int)isa;
    }
    return (rg_isa)chosen;
}

const char *rg_cpu_description(void)
{
    static char desc[256];
    if (desc[0]) return desc;
    char model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10)) continue;
            char *colon = strchr(line, ':');
            if (!colon) break;
            colon++;
            while (*colon == ' ') colon++;
            colon[strcspn(colon, "\n")] = 0;
            snprintf(model, sizeof model, "%s", colon);
            break;
        }
        fclose(f);
    }
    char feats[96] = "";
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    static const char *names[] = {"avx2", "fma", "avx512f", "avx512vnni"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int has = 0;
        switch (i) {
        case 0: has = __builtin_cpu_supports("avx2"); break;
        case 1: has = __builtin_cpu_supports("fma"); break;
        case 2: has = __builtin_cpu_supports("avx512f"); break;
        case 3: has = __builtin_cpu_supports("avx512vnni"); break;
        }
        if (!has) continue;
        size_t len = strlen(feats);
        snprintf(feats + len, sizeof feats - len, "%s%s", len ? " " : "", names[i]);
    }
#endif
    snprintf(desc, sizeof desc, "%s (%s)", model, feats[0] ? feats : "baseline x86-64");
    return desc;
}
