/* AVX-512 build of kernels/peak.inc. */
#include "kernels/peak.inc"
