/* regain models: the zoo with its sizes. */
#include "cli.h"
#include "regain/spec.h"
#include "regain/zoo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_models(int argc, char **argv)
{
    const char *spec_of = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: regain models [--spec NAME]\n\n"
                   "Lists the zoo: trainable parameters, multiply-accumulates per 28x28 image\n"
                   "and peak activation memory of a batch-1 inference plan. Any family takes\n"
                   "-w<width> and -d<depth> multipliers (e.g. mobilenetv2-w0.75-d0.5).\n"
                   "--spec NAME prints the model spec of NAME.\n");
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--spec") && i + 1 < argc) spec_of = argv[++i];
        else return cli_usage_error("models", "unknown argument '%s'", argv[i]);
    }
    rg_error err = {0};
    if (spec_of) {
        char *spec;
        if (rg_zoo_spec(spec_of, 10, &spec, &err)) return cli_fail(&err);
        fputs(spec, stdout);
        free(spec);
        return EXIT_OK;
    }
    printf("%-24s %12s %14s %14s\n", "model", "parameters", "MACs/image", "act. peak KiB");
    printf("%-24s %12s %14s %14s\n", "------------------------", "----------", "----------", "-------------");
    for (const char *const *n = rg_zoo_listed(); *n; n++) {
        rg_graph *g;
        rg_graph_stats s;
        if (rg_zoo_build(*n, 28, 28, 1, 10, &g, &err) || rg_graph_stats_compute(g, &s, &err)) return cli_fail(&err);
        printf("%-24s %12zu %14llu %14.1f\n", *n, s.params, (unsigned long long)s.macs,
               (double)s.peak_act_bytes / 1024.0);
        rg_graph_free(g);
    }
    printf("\nfamilies (add -w<width> and/or -d<depth>):\n");
    for (const rg_zoo_family *f = rg_zoo_families(); f->name; f++) printf("  %-20s %s\n", f->name, f->description);
    return EXIT_OK;
}
