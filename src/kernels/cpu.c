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
        return __builtin_cpu_supports("avx512vnni") ? RG_ISA_AVX512_VNNI : RG_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RG_ISA_AVX2;
#endif
    return RG_ISA_REF;
}

int rg_isa_parse(const char *name)
{
    static const char *names[] = {"ref", "avx2", "avx512", "avx512vnni"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *rg_isa_name(rg_isa isa)
{
    switch (isa) {
    case RG_ISA_REF: return "ref";
    case RG_ISA_AVX2: return "avx2";
    case RG_ISA_AVX512: return "avx512";
    case RG_ISA_AVX512_VNNI: return "avx512vnni";
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

/* The flags that change which kernels run or how fast. */
static const char *const interesting[] = {"sse4_2",      "avx",      "avx2",     "fma",      "f16c",     "avx512f",
                                          "avx512dq",    "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                                          "avx_vnni",    "amx_tile", "amx_int8", "amx_bf16", "asimd",
                                          "asimddp",     "sve",      NULL};

static char model[128], features[256];

/* Reads the model name and the interesting flags of /proc/cpuinfo, once. */
static void read_cpuinfo(void)
{
    if (model[0]) return;
    snprintf(model, sizeof model, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    int have_model = 0, have_flags = 0;
    while ((!have_model || !have_flags) && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        if (!have_model && !strncmp(line, "model name", 10)) {
            snprintf(model, sizeof model, "%s", v);
            have_model = 1;
        } else if (!have_flags && (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8))) {
            size_t len = 0;
            for (const char *const *w = interesting; *w && len < sizeof features; w++) {
                /* whole words only: "avx" must not match inside "avx2" */
                size_t wl = strlen(*w);
                for (const char *p = v; (p = strstr(p, *w)); p += wl)
                    if ((p == v || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == 0)) {
                        len += (size_t)snprintf(features + len, sizeof features - len, "%s%s", len ? " " : "", *w);
                        break;
                    }
            }
            have_flags = 1;
        }
    }
    fclose(f);
}

const char *rg_cpu_model(void)
{
    read_cpuinfo();
    return model;
}

const char *rg_cpu_features(void)
{
    read_cpuinfo();
    return features;
}

const char *rg_cpu_description(void)
{
    static char desc[sizeof model + sizeof features + 4];
    read_cpuinfo();
    snprintf(desc, sizeof desc, "%s (%s)", model, features[0] ? features : "no vector extensions listed");
    return desc;
}
