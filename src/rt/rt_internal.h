/* Internals of the int8 runtime (regain/rt.h), shared by its files. */
#ifndef REGAIN_RT_INTERNAL_H
#define REGAIN_RT_INTERNAL_H

#include "regain/rt.h"
#include "rt/kernels/qk.h"

typedef enum { PATH_GEMM, PATH_CONV, PATH_DW, PATH_FC, PATH_ADD, PATH_AVGPOOL, PATH_MAXPOOL, PATH_GAP, PATH_CLAMP,
               PATH_REF /* rt_ref_ops.h: concat, split, shuffle, mul, lut */ } rt_path;

typedef struct {
    rt_path path;
    rg_qk_gemm g;
    rg_qk_dw d;
    rg_qk_conv c;
    rg_q_pool_params pool;
    rg_q_gap_params gap;
    int64_t n;              /* elements (add, clamp), rows (gemm) */
} rt_op;

struct rg_rt {
    const rg_rgm *m;
    const rg_qk_table *t;
    rt_op *ops;
    void *packed;
    size_t packed_size;
    int32_t *first, *last, *group;
    size_t *off;
    size_t scratch_off, arena;  /* in a slot: scratch after mb images' activations; all slots */
    size_t slot;                /* one thread's part of the arena */
    int32_t mb, threads;        /* rg_rt_options */
    rg_rt_plan_stats stats;
};

size_t rg_rt_align(size_t n);
/* Bytes of tensor t (one image). */
static inline size_t rg_rt_tensor_bytes(const rg_rgm *m, int32_t t)
{
    return (size_t)m->tensors[t].h * (size_t)m->tensors[t].w * (size_t)m->tensors[t].c;
}
/* Fills rt->first/last/group/off and rt->stats (arena, naive, bounds). */
rg_status rg_rt_plan(rg_rt *rt, rg_error *err);

#endif
