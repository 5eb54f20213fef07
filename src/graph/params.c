/* Parameter initialization. Each tensor draws from its own stream keyed by
 * (seed, tensor index), so adding a layer does not change the others. */
#include "regain/graph.h"
#include "regain/rng.h"

#include <math.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void rg_graph_init_params(rg_graph *g, uint64_t seed)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_node *n = &g->nodes[i];
        for (int s = 0; s < 2; s++) {
            int32_t pid = n->param[s];
            if (pid < 0) continue;
            const rg_param *p = &g->params[pid];
            float *d = g->param_data + p->offset;
            rg_rng r = rg_rng_keyed(seed, 0x1417, (uint64_t)pid);
            if (n->op == RG_OP_BN) {
                float v = s == 0 ? 1.0f : 0.0f;
                for (size_t k = 0; k < p->count; k++) d[k] = v;
            } else if (s == 1) {
                memset(d, 0, p->count * sizeof(float));
            } else if (n->op == RG_OP_CONV) {
                /* Kaiming normal, mode fan_out, ReLU gain (torchvision's choice). */
                float std = sqrtf(2.0f / (float)p->fan_out);
                for (size_t k = 0; k < p->count; k++) d[k] = std * rg_rng_normal(&r);
            } else {
                for (size_t k = 0; k < p->count; k++) d[k] = 0.01f * rg_rng_normal(&r);
            }
        }
    }
    for (int32_t b = 0; b < g->n_buffers; b++) {
        const rg_param *p = &g->buffers[b];
        float v = ends_with(p->name, "running_var") ? 1.0f : 0.0f;
        for (size_t k = 0; k < p->count; k++) g->buffer_data[p->offset + k] = v;
    }
}
