/* regain — microcontroller export: an int8 model (.rgm) as a self-contained
 * C99 library.
 *
 * rg_export_c writes a directory that builds with any C99 compiler, host or
 * embedded, and needs nothing from libc but memcpy and memset:
 *
 *   model.h, model.c   the weights, biases, requantization parameters,
 *                      per-channel clamps and lookup tables as const
 *                      arrays (flash), one statically sized arena
 *                      (RAM, placed by the runtime's memory planner), and
 *                      int model_invoke(const int8_t *in, int8_t *out): a
 *                      straight-line sequence of integer reference kernel
 *                      calls with constant arguments
 *   kernels/, regain/, quant/
 *                      the project's own integer reference kernels
 *                      (src/quant/ref_*.c, fixedpoint.c and their headers),
 *                      copied byte for byte: the code the host tests hold to
 *                      the specification is the code that ships; compiled
 *                      with -DRG_FREESTANDING, which leaves out their
 *                      host-only helpers
 *   golden.h, golden.c the golden inputs, the host runtime's outputs for
 *                      them, and every layer's output for the first one
 *   selfcheck.c        runs the model on the golden inputs and compares
 *                      every layer and every output, printing with printf
 *                      (semihosting on the boards)
 *   board/             start-up code and linker scripts for the Arm MPS2
 *                      AN386 (Cortex-M4) and AN500 (Cortex-M7) boards
 *   Makefile           host, m4, m7, run-m4, run-m7, size (docs/deployment.md)
 *
 *     rg_export_c_options o = rg_export_c_default();
 *     rg_export_c_stats s;
 *     if (rg_export_c(m, "out/model_c", &o, &s, &err)) ...;
 *
 * Every file is written atomically; an existing directory is reused and
 * files of the same names are replaced.
 */
#ifndef REGAIN_EXPORT_C_H
#define REGAIN_EXPORT_C_H

#include <stddef.h>
#include <stdint.h>

#include "regain/rt.h"
#include "regain/status.h"

typedef struct {
    int32_t n_inputs;       /* golden inputs, in [1, 64] (default 2) */
    const int8_t *inputs;   /* n_inputs quantized images of the input's shape,
                             * or NULL: uniform random int8 from seed */
    uint64_t seed;          /* default 1 */
    const char *name;       /* recorded in the generated files (the model's
                             * file name); NULL: "model" */
} rg_export_c_options;

typedef struct {
    size_t const_bytes;     /* weights, biases, requantization arrays,
                             * per-channel clamps and lookup tables
                             * (rg_rgm_param_bytes) */
    size_t arena_bytes;     /* the static arena (activations) */
    size_t golden_bytes;    /* golden inputs, outputs and layer outputs */
    int32_t n_layers;       /* kernel calls in model_invoke */
    int32_t n_files;        /* files written */
} rg_export_c_stats;

rg_export_c_options rg_export_c_default(void);

/* Writes the library for m into dir (created with its parents if missing).
 * The goldens are computed with the host runtime (rg_rt_invoke_trace on
 * the default kernel table). Errors: RG_ERR_FORMAT for a model that fails
 * rg_rgm_check; RG_ERR_UNSUPPORTED naming the op for a kind the export does
 * not know (every kind of .rgm version 2 is known); RG_ERR_ARG for bad options; RG_ERR_IO naming the path that
 * could not be made or written. stats may be NULL. */
rg_status rg_export_c(const rg_rgm *m, const char *dir, const rg_export_c_options *opt, rg_export_c_stats *stats,
                      rg_error *err);

#endif
