/* What a run ran on, for the store's environment table: the commit regain
 * was built from, the compiler, the CPU and its vector features, the host. */
#include "exp/environment.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Set by CMake for this file only, from `git rev-parse HEAD` at configure
 * time (CMake re-configures when HEAD moves). */
#ifndef REGAIN_GIT_COMMIT
#define REGAIN_GIT_COMMIT "unknown"
#endif

/* The flags that change which kernels run or how fast. */
static const char *const interesting[] = {"sse4_2",   "avx",         "avx2",       "fma",      "f16c",
                                          "avx512f",  "avx512dq",    "avx512bw",   "avx512vl", "avx512_vnni",
                                          "avx512_bf16", "avx_vnni", "amx_tile",   "amx_int8", "amx_bf16",
                                          "asimd",    "asimddp",     "sve",        NULL};

static void cpuinfo(rg_exp_env *e)
{
    snprintf(e->cpu_model, sizeof e->cpu_model, "unknown");
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
            snprintf(e->cpu_model, sizeof e->cpu_model, "%s", v);
            have_model = 1;
        } else if (!have_flags && (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8))) {
            size_t len = 0;
            for (const char *const *w = interesting; *w; w++) {
                /* whole words only: "avx" must not match inside "avx2" */
                size_t wl = strlen(*w);
                for (const char *p = v; (p = strstr(p, *w)); p += wl)
                    if ((p == v || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == 0)) {
                        len += (size_t)snprintf(e->cpu_features + len, sizeof e->cpu_features - len, "%s%s",
                                                len ? " " : "", *w);
                        break;
                    }
                if (len >= sizeof e->cpu_features) break;
            }
            have_flags = 1;
        }
    }
    fclose(f);
}

void rg_exp_env_collect(rg_exp_env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->git_commit, sizeof e->git_commit, "%s", REGAIN_GIT_COMMIT);
#if defined(__clang__)
    snprintf(e->compiler, sizeof e->compiler, "clang %s", __VERSION__);
#elif defined(__GNUC__)
    snprintf(e->compiler, sizeof e->compiler, "gcc %s", __VERSION__);
#else
    snprintf(e->compiler, sizeof e->compiler, "%s", __VERSION__);
#endif
    cpuinfo(e);
    if (gethostname(e->hostname, sizeof e->hostname - 1) != 0) snprintf(e->hostname, sizeof e->hostname, "unknown");
}
