/* Peak floating-point throughput of one core, per instruction set: runs
 * `iters` rounds of independent fused multiply-adds and returns the floating-
 * point operations done (a multiply-add counts 2). */
#ifndef REGAIN_KERNELS_PEAK_H
#define REGAIN_KERNELS_PEAK_H

double rg_peak_fma_ref(long iters);
double rg_peak_fma_avx2(long iters);
double rg_peak_fma_avx512(long iters);

#endif
