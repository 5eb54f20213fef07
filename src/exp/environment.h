/* The environment a run ran in (store table `environment`). */
#ifndef REGAIN_EXP_ENVIRONMENT_H
#define REGAIN_EXP_ENVIRONMENT_H

typedef struct {
    char git_commit[64], compiler[160], cpu_model[256], cpu_features[512], hostname[256], blas_core[64];
} rg_exp_env;

/* Fills e: build commit, compiler, CPU model and vector features from
 * /proc/cpuinfo, host name ("unknown" where not available), the kernels
 * OpenBLAS runs. */
void rg_exp_env_collect(rg_exp_env *e);

#endif
