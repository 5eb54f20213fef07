/* AVX2 build of kernels/peak.inc. */
#include "kernels/peak.inc"
