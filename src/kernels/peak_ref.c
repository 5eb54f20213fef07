/* Peak throughput of plain C code (the reference instruction set). */
#include "kernels/peak.h"

double rg_peak_fma_ref(long iters)
{
    enum { CHAINS = 8 };
    float acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = acc[j] * 0.999999f + 1e-7f;
    float sum = 0.0f;
    for (int j = 0; j < CHAINS; j++) sum += acc[j];
    return sum == sum ? (double)iters * CHAINS * 2.0 : 0.0;
}
