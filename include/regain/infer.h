/* regain — batched inference: each thread runs its own slice of the batch.
 *
 * A large batch through one graph streams every activation through main
 * memory, and every layer waits for all threads at its end. An inference
 * session instead plans the graph (evaluation plan: batch norm folded,
 * activations fused, memory reused by liveness) for a micro-batch small
 * enough that a whole pass stays in the core's cache, gives every thread its
 * own arena, and lets the threads take micro-batches independently, with no
 * synchronization inside the network. Results do not depend on the number
 * of threads; within float rounding they do not depend on how the batch is
 * cut either (the tests hold them to 1e-5).
 *
 *     rg_infer *s;
 *     rg_infer_create(g, &s, &err);          // g finished, weights loaded
 *     rg_infer_run(s, images, n, logits);    // n images of h*w*c floats
 *     rg_infer_free(s);
 *
 * The session takes a snapshot of g's weights when it is made (batch norms
 * folded into the convolutions, rg_graph_fold); after changing them, make a
 * new session. g must outlive it and is re-planned by it (any plan g had is
 * replaced).
 */
#ifndef REGAIN_INFER_H
#define REGAIN_INFER_H

#include <stdint.h>

#include "regain/graph.h"

typedef struct rg_infer rg_infer;

/* threads 0 = omp_get_max_threads(); micro_batch 0 = chosen from the
 * network's activation memory (a pass of one micro-batch fits in about
 * 1 MiB of cache). */
rg_status rg_infer_create(rg_graph *g, int32_t threads, int32_t micro_batch, rg_infer **out, rg_error *err);
/* logits[n][classes] for images[n][h*w*c]. */
void rg_infer_run(rg_infer *s, const float *images, int32_t n, float *logits);
int32_t rg_infer_micro_batch(const rg_infer *s);
void rg_infer_free(rg_infer *s);

#endif
