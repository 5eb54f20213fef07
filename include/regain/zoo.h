/* regain — the built-in model zoo.
 *
 * Every zoo model is a model spec (spec.h) generated from a family and two
 * multipliers. Names: a base name from rg_zoo_families(), optionally followed
 * by "-w<width>" and/or "-d<depth>" multipliers, e.g. "mobilenetv2-w0.5",
 * "efficientnet-lite-w1.0-d1.2", "resnet20-w2". The benchmark networks
 * "mbv2-tiny", "resnet20" and "resnet20-w2" are exactly those of
 * docs/benchmark-models.md.
 *
 *     char *spec;
 *     if (rg_zoo_spec("mbv2-tiny", 10, &spec, &err) == RG_OK) { ...; free(spec); }
 */
#ifndef REGAIN_ZOO_H
#define REGAIN_ZOO_H

#include <stdint.h>

#include "regain/graph.h"

typedef struct {
    const char *name;        /* base name */
    const char *description; /* one line */
} rg_zoo_family;

/* The families, NULL-terminated. */
const rg_zoo_family *rg_zoo_families(void);
/* The names `regain models` lists (families and their common multipliers), NULL-terminated. */
const char *const *rg_zoo_listed(void);

/* Writes the spec of zoo model `name` for a 28x28x1 input and n_classes
 * outputs into a newly allocated string (*spec, caller frees). Unknown names
 * and bad multipliers give RG_ERR_NOTFOUND / RG_ERR_ARG naming the model. */
rg_status rg_zoo_spec(const char *name, int32_t n_classes, char **spec, rg_error *err);
/* Same, for an input of h x w x c. */
rg_status rg_zoo_spec_for(const char *name, int32_t h, int32_t w, int32_t c, int32_t n_classes, char **spec,
                          rg_error *err);

/* Builds a zoo model (rg_zoo_spec + rg_spec_build). */
rg_status rg_zoo_build(const char *name, int32_t h, int32_t w, int32_t c, int32_t n_classes, rg_graph **out,
                       rg_error *err);

#endif
