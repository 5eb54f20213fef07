/* Chooses the kernel table from the instruction set in use. */
#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "regain/cpu.h"

const rg_kernel_table rg_kernels_ref = {
    .name = "ref",
    .act_forward = rg_ref_act_forward,
    .act_backward = rg_ref_act_backward,
    .bn_sums = rg_ref_bn_sums,
    .bn_apply = rg_ref_bn_apply,
    .bn_grad_sums = rg_ref_bn_grad_sums,
    .bn_grad_apply = rg_ref_bn_grad_apply,
    .gemm_nn = rg_ref_gemm_nn,
    .conv_forward = rg_ref_conv_forward,
    .conv_weight_grad = rg_ref_conv_weight_grad,
    .bias_act = rg_ref_bias_act,
    .dw_forward = rg_ref_dw_forward,
    .dw_backward_data = rg_ref_dw_backward_data,
    .dw_backward_weight = rg_ref_dw_backward_weight,
    .wino_input = rg_ref_wino_input,
    .wino_output = rg_ref_wino_output,
    .minmax = rg_ref_minmax,
    .fq_forward = rg_ref_fq_forward,
    .fq_ste = rg_ref_fq_ste,
    .fq_requant = rg_ref_fq_requant,
    .fq_add = rg_ref_fq_add,
};

const rg_kernel_table *rg_kernels(void)
{
    switch (rg_cpu_isa()) {
    case RG_ISA_AVX512_VNNI: /* the float kernels have no use for VNNI */
    case RG_ISA_AVX512: return &rg_kernels_avx512;
    case RG_ISA_AVX2: return &rg_kernels_avx2;
    case RG_ISA_REF: break;
    }
    return &rg_kernels_ref;
}
