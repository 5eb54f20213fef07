/* The smallest firmware around an exported model: start-up code, the model
 * and a main that runs it once on a zero image. Built by `make size` to
 * measure what the model costs on a board (flash: text + data; RAM: data +
 * bss, which holds the arena), without the self-check's golden vectors and
 * printf. */
#include "model.h"

int main(void)
{
    static int8_t in[MODEL_INPUT_BYTES], out[MODEL_OUTPUT_BYTES];
    return model_invoke(in, out);
}
