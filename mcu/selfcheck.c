/* Self-check of a model exported by `regain export --c`: runs the model on
 * the golden inputs and compares every layer's output (for the first input)
 * and every final output with what the host runtime computed, byte for
 * byte. Prints through printf: the console on a host, semihosting on the
 * MPS2 boards (newlib's rdimon). The last line is "selfcheck: PASS" or
 * "selfcheck: FAIL"; the exit status is 0 or 1. The "output" lines let a
 * test compare the bits themselves across builds. */
#include <stdio.h>
#include <string.h>

#include "golden.h"
#include "model.h"

typedef struct {
    int32_t calls, bad_layers;
} layer_check;

static void check_layer(void *user, int32_t layer, const int8_t *y, int32_t n)
{
    layer_check *c = user;
    const golden_layer *g = &golden_layers[layer];
    int32_t differ = 0;
    if (layer != c->calls || n != g->size) differ = n;
    else
        for (int32_t i = 0; i < n; i++) differ += y[i] != g->data[i];
    c->calls++;
    if (differ) {
        printf("layer %d (%s): %d of %d values differ from the host runtime\n", (int)layer, model_layer_names[layer],
               (int)differ, (int)n);
        c->bad_layers++;
    }
}

int main(void)
{
    static int8_t out[MODEL_OUTPUT_BYTES];
    int failures = 0;
    printf("selfcheck: %s, %d layers, arena %d bytes, %d golden inputs\n", MODEL_NAME, MODEL_N_LAYERS,
           (int)MODEL_ARENA_BYTES, GOLDEN_N_INPUTS);
    for (int k = 0; k < GOLDEN_N_INPUTS; k++) {
        layer_check lc = {0, 0};
        memset(out, 0, sizeof out);
        int rc = model_invoke_layers(golden_inputs[k], out, k == 0 ? check_layer : NULL, &lc);
        if (rc) printf("input %d: layer %d refused its parameters\n", k, rc - 1);
        if (k == 0 && lc.calls != MODEL_N_LAYERS) {
            printf("input 0: %d layers reported, expected %d\n", (int)lc.calls, MODEL_N_LAYERS);
            lc.bad_layers++;
        }
        printf("output %d:", k);
        for (int i = 0; i < MODEL_OUTPUT_BYTES; i++) printf(" %d", out[i]);
        printf("\n");
        int same = memcmp(out, golden_outputs[k], sizeof out) == 0;
        if (k == 0) printf("input 0: %d of %d layers match\n", MODEL_N_LAYERS - (int)lc.bad_layers, MODEL_N_LAYERS);
        printf("input %d: output %s\n", k, same ? "matches" : "DIFFERS");
        if (rc || !same || lc.bad_layers) failures++;
    }
    printf("selfcheck: %s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
