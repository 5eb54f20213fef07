/* AVX-512 kernel table (kernels/kernels.inc). */
#include "kernels/kernels.inc"
