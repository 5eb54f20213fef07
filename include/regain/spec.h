/* regain — model specs: a plain-text description of a network.
 *
 * One layer or block per line; `#` starts a comment. The first token is the
 * layer kind, the rest are key=value pairs or bare flags:
 *
 *     input h=28 w=28 c=1
 *     conv name=stem c=16 k=3 s=1 bn act=relu6
 *     ir name=b1 t=1 c=16 s=1
 *     ir name=b2 t=4 c=24 s=2
 *     conv name=head c=256 k=1 bn act=relu6
 *     gap
 *     fc name=fc n=10
 *
 * Each line reads the previous line's output unless it says `in=NAME`
 * (or `in=A,B` for add, mul and concat). The full grammar, every kind and its
 * keys, and how composite blocks expand to ops are in docs/model-spec.md.
 * Errors name the origin, the line and what is wrong:
 *     "my.spec:4: ir: unknown key 'tt' (known: name in t e c s k act se)"
 */
#ifndef REGAIN_SPEC_H
#define REGAIN_SPEC_H

#include "regain/graph.h"

/* Builds and finishes a graph from spec text. origin names the text in error
 * messages (a file name, or "zoo:mbv2-tiny"). The graph keeps a copy of the
 * text. Parameters are zero: call rg_graph_init_params or load a checkpoint. */
rg_status rg_spec_build(const char *text, const char *origin, rg_graph **out, rg_error *err);

/* Reads a spec file and builds it (errors name the file). */
rg_status rg_spec_build_file(const char *path, rg_graph **out, rg_error *err);

#endif
