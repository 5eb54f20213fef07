/* AVX2 + FMA kernel table (kernels/kernels.inc). */
#include "kernels/kernels.inc"
