/* What a run ran on, for the store's environment table: the commit regain
 * was built from, the compiler, the CPU and its vector features, the host,
 * the kernels OpenBLAS chose. */
#include "exp/environment.h"
#include "regain/cpu.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Set by CMake for this file only, from `git rev-parse HEAD` at configure
 * time (CMake re-configures when HEAD moves). */
#ifndef REGAIN_GIT_COMMIT
#define REGAIN_GIT_COMMIT "unknown"
#endif

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
    snprintf(e->cpu_model, sizeof e->cpu_model, "%s", rg_cpu_model());
    snprintf(e->cpu_features, sizeof e->cpu_features, "%s", rg_cpu_features());
    if (gethostname(e->hostname, sizeof e->hostname - 1) != 0) snprintf(e->hostname, sizeof e->hostname, "unknown");
    snprintf(e->blas_core, sizeof e->blas_core, "%s", rg_blas_core());
}
