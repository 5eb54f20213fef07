/* regain — the static op graph: build, plan, forward, backward.
 *
 * A graph is a list of nodes in topological order over NHWC float32 values.
 * It is built once (from a model spec, see spec.h, or with the rg_graph_add_*
 * builder calls), then planned for a batch size: the plan places every
 * activation, gradient and scratch buffer at an offset in one arena, so the
 * training step itself never allocates.
 *
 *     rg_graph *g;
 *     rg_graph_from_spec(text, "my.spec", &g, &err);
 *     rg_graph_init_params(g, seed);
 *     rg_graph_plan(g, 128, RG_PLAN_TRAIN, &err);
 *     memcpy(rg_graph_input(g), batch, ...);
 *     rg_graph_forward(g, &ctx);                 // ctx.training = 1
 *     ... write dLoss/dLogits into rg_graph_output_grad(g) ...
 *     rg_graph_backward(g, &ctx);                // fills g->grad_data
 *
 * Parameters (trainable), their gradients and BN running statistics
 * (buffers) each live in one contiguous block, so the optimizer is one loop
 * and a checkpoint one write.
 */
#ifndef REGAIN_GRAPH_H
#define REGAIN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"

#define RG_MAX_INPUTS 4
#define RG_NAME_MAX 96

typedef struct {
    int32_t n, h, w, c;
} rg_shape;

/* Op types. Appended at the end only. */
typedef enum {
    RG_OP_INPUT = 0,
    RG_OP_CONV,      /* 2-D convolution, groups; weight OHWI [cout, kh, kw, cin/groups] */
    RG_OP_BN,        /* batch normalization over N*H*W per channel */
    RG_OP_RELU,
    RG_OP_RELU6,
    RG_OP_HSWISH,    /* x * relu6(x + 3) / 6 */
    RG_OP_SIGMOID,
    RG_OP_ADD,       /* a + b, same shape */
    RG_OP_MUL,       /* a * b, b may be (n,1,1,c): channel broadcast (SE gating) */
    RG_OP_CONCAT,    /* along channels */
    RG_OP_SLICE,     /* channels [offset, offset+count) (split = two slices) */
    RG_OP_SHUFFLE,   /* channel shuffle with `groups` */
    RG_OP_MAXPOOL,
    RG_OP_AVGPOOL,   /* count_include_pad = 0 */
    RG_OP_GAP,       /* global average pool: (n,h,w,c) -> (n,1,1,c) */
    RG_OP_LINEAR,    /* (n,1,1,in) or flattened (n,h,w,c) -> (n,1,1,out); weight [out, in] */
    RG_OP_DROPOUT,   /* inverted dropout, mask keyed by (seed, step, node) */
    RG_OP_FAKE_QUANT, /* QAT quantize-dequantize of an activation (regain/qat.h) */
    RG_OP_COUNT
} rg_op_type;

typedef struct {
    int32_t kh, kw, stride, pad, groups, cout, has_bias;
} rg_conv_attr;

typedef struct {
    rg_op_type op;
    char name[RG_NAME_MAX];
    int32_t n_in;
    int32_t in[RG_MAX_INPUTS]; /* value ids */
    int32_t out;               /* value id */
    int32_t param[2];          /* param ids (weight/gamma, bias/beta), -1 if none */
    int32_t buffer[2];         /* buffer ids (running mean, running var), -1 if none */
    union {
        rg_conv_attr conv;
        /* frozen (QAT, regain/qat.h): running statistics normalize in
         * training too and are not updated */
        struct { float eps, momentum; int32_t frozen; } bn;
        struct { int32_t offset, count; } slice;
        struct { int32_t groups; } shuffle;
        struct { int32_t k, stride, pad; } pool;
        struct { int32_t out_features; } linear;
        struct { float p; } dropout;
        /* fake quantization (regain/qat.h): integers [qmin, qmax]; tie >= 0:
         * the parameters of fake-quant node `tie` (pools, clamps); observe:
         * moving-average min/max updated in training; lsq: learned scale;
         * in_fq >= 0: the output of a convolution or linear layer whose
         * input is quantized by node in_fq, requantized as the integer
         * model does (buffer[1]: the layer's weight scales) */
        struct { int32_t qmin, qmax, tie, observe, lsq, in_fq; float momentum; } fq;
    } a;
    size_t scratch_floats;     /* per-node scratch, sized by the plan */
    size_t saved_off;          /* arena offset of the node's saved state, set by the plan */
    /* Fusion (graph/fuse.c, at planning). A chain of nodes, each the only
     * reader of the one before, runs as one: its head computes the whole
     * chain and writes the last node's output; the others do nothing, and
     * the values inside the chain are not stored. Chains: batch norm +
     * relu/relu6 (both plans), and in an evaluation plan convolution + batch
     * norm [+ relu/relu6], the batch norm folded into the convolution.
     * 0 = none (node 0 is the input, never in a chain). */
    int32_t fuse_next, fuse_prev;
    /* Training plans (graph/fuse.c): a convolution whose output only a
     * batch norm reads, and that batch norm, name each other here. With
     * batch statistics the convolution takes each image's statistics while
     * its output is in cache, and (pointwise and depthwise) applies the
     * batch norm's input gradient block by block as it reads it, so that
     * gradient is never stored. 0 = none. */
    int32_t bn_pair;
    /* Training plans: a batch norm whose chain output (act(bn(x))) is read
     * only by convolutions (pointwise, depthwise, direct), adds and global
     * average pooling is fed: it names its first reader here, and each
     * convolution or pooling reading it names the batch norm (an add, which
     * may be fed twice, finds its batch norms by its inputs). With batch
     * statistics the batch norm computes no pass over memory itself: each
     * reader applies it (and its activation) to its input block by block
     * as it reads x, the first reader takes the batch norm's gradient sums
     * per image as it writes their input, and the chain output is never
     * written. 0 = none. */
    int32_t bn_feed;
} rg_node;

typedef struct {
    rg_shape shape;            /* n is the planned batch; per-image shape fixed at build */
    int32_t producer;          /* node id */
    int32_t last_use;          /* last node id reading it (for the inference plan) */
    size_t act_off, grad_off;  /* float offsets in the arena (SIZE_MAX: no gradient) */
} rg_value;

typedef struct {
    char name[RG_NAME_MAX];
    int32_t ndim;
    int32_t dims[4];
    size_t offset, count;      /* in floats, in the param (or buffer) block */
    int32_t no_decay;          /* BN parameters and biases: skipped by weight decay */
    int32_t fan_in, fan_out;   /* for initialization */
} rg_param;

typedef enum { RG_PLAN_EVAL = 0, RG_PLAN_TRAIN = 1 } rg_plan_mode;

typedef struct rg_graph {
    rg_node *nodes;
    int32_t n_nodes, cap_nodes;
    rg_value *values;
    int32_t n_values, cap_values;
    rg_param *params;
    int32_t n_params, cap_params;
    size_t param_floats;
    float *param_data, *grad_data; /* one block each */
    rg_param *buffers;
    int32_t n_buffers, cap_buffers;
    size_t buffer_floats;
    float *buffer_data;
    int32_t input, output;         /* value ids */
    char *spec;                    /* the model spec text this graph was built from (owned) */

    /* Plan (rg_graph_plan). */
    int32_t batch;                 /* images in the current pass (<= planned_batch) */
    int32_t planned_batch;         /* capacity of the plan */
    rg_plan_mode mode;
    float *arena;                  /* activations, gradients and scratch */
    size_t arena_floats;
    size_t act_floats;             /* of which activations (for reports) */
    size_t scratch_off;            /* shared scratch region, in floats */
    size_t scratch_floats;
    int32_t plan_threads;          /* omp_get_max_threads() at planning: ops' per-thread buffers are sized
                                      for it, and a pass runs on no more threads than this */
    /* Optional per-node timing (regain bench --profile): when set, forward
     * and backward seconds of node i accumulate into profile_s[2i], [2i+1]. */
    double *profile_s;
    /* During a backward pass: 1 while a value's gradient holds nothing yet
     * and its first writer may store instead of accumulate (graph/run.c). */
    uint8_t *grad_fresh;
    /* Batch norms folded into their convolutions once (rg_graph_fold), for
     * an evaluation plan; folded_at[node] is each convolution's offset. NULL
     * when the plan folds on every pass. */
    float *folded;
    size_t *folded_at;
    /* Tapped values (rg_graph_tap): per value, 1 when a loss outside the
     * graph reads it (distillation hints); extra_grad[v], when set, is added
     * into v's gradient during the backward pass. NULL until the first tap. */
    uint8_t *tapped;
    const float **extra_grad;
} rg_graph;

/* Per-call execution context. */
typedef struct {
    int training;     /* BN uses batch statistics and updates buffers; dropout active */
    uint64_t seed;    /* for dropout masks, keyed with step and node */
    uint64_t step;
    /* backward: the graph input's gradient may be skipped (a trainer needs
     * none; a hint adapter's input gradient is the student's) */
    int no_input_grad;
} rg_exec;

/* ---- building ------------------------------------------------------------ */

/* An empty graph with an input of one image of h x w x c. */
rg_status rg_graph_create(int32_t h, int32_t w, int32_t c, rg_graph **out, rg_error *err);
void rg_graph_free(rg_graph *g);

/* Builder calls. Each infers the output shape from its inputs, creates the
 * node's parameters (named "<name>.weight", "<name>.bias", BN:
 * "<name>.weight/.bias" and buffers "<name>.running_mean/_var") and returns
 * the new value id in *out. Errors (impossible shapes, duplicate names) name
 * the node. */
rg_status rg_graph_add_conv(rg_graph *g, const char *name, int32_t in, rg_conv_attr attr, int32_t *out, rg_error *err);
rg_status rg_graph_add_bn(rg_graph *g, const char *name, int32_t in, int32_t *out, rg_error *err);
rg_status rg_graph_add_unary(rg_graph *g, rg_op_type op, const char *name, int32_t in, int32_t *out, rg_error *err);
rg_status rg_graph_add_binary(rg_graph *g, rg_op_type op, const char *name, int32_t a, int32_t b, int32_t *out, rg_error *err);
rg_status rg_graph_add_concat(rg_graph *g, const char *name, const int32_t *ins, int32_t n_in, int32_t *out, rg_error *err);
rg_status rg_graph_add_slice(rg_graph *g, const char *name, int32_t in, int32_t offset, int32_t count, int32_t *out, rg_error *err);
rg_status rg_graph_add_shuffle(rg_graph *g, const char *name, int32_t in, int32_t groups, int32_t *out, rg_error *err);
rg_status rg_graph_add_pool(rg_graph *g, rg_op_type op, const char *name, int32_t in, int32_t k, int32_t stride, int32_t pad, int32_t *out, rg_error *err);
rg_status rg_graph_add_linear(rg_graph *g, const char *name, int32_t in, int32_t out_features, int has_bias, int32_t *out, rg_error *err);
rg_status rg_graph_add_dropout(rg_graph *g, const char *name, int32_t in, float p, int32_t *out, rg_error *err);
/* Marks the graph's output (logits) and allocates the parameter blocks. */
rg_status rg_graph_finish(rg_graph *g, int32_t output, rg_error *err);

/* ---- parameters ------------------------------------------------------------ */

/* Deterministic initialization from seed: conv weights Kaiming normal
 * (fan_out, gain sqrt(2)), BN gamma 1 beta 0, running mean 0 var 1, linear
 * weight N(0, 0.01), biases 0. Each tensor's stream is keyed by (seed, index). */
void rg_graph_init_params(rg_graph *g, uint64_t seed);
int32_t rg_graph_find_param(const rg_graph *g, const char *name);   /* -1 if none */
int32_t rg_graph_find_buffer(const rg_graph *g, const char *name);  /* -1 if none */
int32_t rg_graph_find_node(const rg_graph *g, const char *name);    /* -1 if none */
/* The value a layer name stands for: the output of the last node named
 * `name` or "name.<anything>", so a block's name ("b3", "l2.1") gives the
 * block's output and a convolution's name ("b3.dw") its output after batch
 * norm and activation; a full node name with nothing below it ("b3.dw.bn")
 * that node's output. -1 if no node matches. */
int32_t rg_graph_find_layer(const rg_graph *g, const char *name);

/* ---- taps: losses on inner values -------------------------------------------------- */

/* Marks value v as read by a loss outside the graph, before planning (the
 * next rg_graph_plan honours it): every plan then stores v whole, never
 * fuses it away, and keeps it valid after the forward pass until the next
 * one; a training plan gives it a gradient. */
rg_status rg_graph_tap(rg_graph *g, int32_t v, rg_error *err);
/* During the next backward passes, adds grad (batch x per-image size floats,
 * owned by the caller, read during rg_graph_backward) into the gradient of
 * the tapped value v: the loss's dL/dv, on top of what flows from the
 * graph's output. NULL stops it. */
void rg_graph_set_extra_grad(rg_graph *g, int32_t v, const float *grad);

/* ---- planning and running ---------------------------------------------------- */

/* Whether value v is stored by the current plan: false inside a fused chain
 * (see rg_node.fuse_next). */
int rg_graph_value_stored(const rg_graph *g, int32_t v);

/* Plans the arena for `batch` images. RG_PLAN_TRAIN keeps every activation
 * for the backward pass and gives every value a gradient slot; RG_PLAN_EVAL
 * reuses memory by liveness. Replaces any previous plan. */
rg_status rg_graph_plan(rg_graph *g, int32_t batch, rg_plan_mode mode, rg_error *err);
/* Sets the number of images of the next passes, 1..planned batch (a last,
 * smaller batch of an epoch runs on the same plan). */
rg_status rg_graph_set_batch(rg_graph *g, int32_t batch, rg_error *err);
float *rg_graph_input(rg_graph *g);
float *rg_graph_output(rg_graph *g);
float *rg_graph_output_grad(rg_graph *g);
/* Activation and gradient of a value in the current plan. */
float *rg_graph_act(rg_graph *g, int32_t value);
float *rg_graph_grad(rg_graph *g, int32_t value);

/* Folds the batch norms of an evaluation plan into their convolutions now,
 * once, instead of on every forward pass: a snapshot of the weights, which
 * later changes to parameters or buffers do not reach until the next
 * rg_graph_fold or rg_graph_plan. Worth it when the batch is small. */
rg_status rg_graph_fold(rg_graph *g, rg_error *err);

/* Forward pass over the planned batch (the first `batch` images of the
 * input). An evaluation plan always runs in evaluation mode. */
void rg_graph_forward(rg_graph *g, const rg_exec *ctx);
/* Backward pass: the caller has written dL/d(output) into
 * rg_graph_output_grad(g). Zeroes and fills the parameter gradients and the
 * input's gradient; the gradients of inner values share memory by liveness
 * and are not valid after the pass. Requires a RG_PLAN_TRAIN plan and a prior forward with
 * ctx->training set the same way. */
void rg_graph_backward(rg_graph *g, const rg_exec *ctx);

/* ---- reports ------------------------------------------------------------------ */

typedef struct {
    size_t params;          /* trainable parameters */
    size_t buffers;         /* BN running statistics */
    uint64_t macs;          /* forward multiply-accumulates per image (conv and linear) */
    size_t peak_act_bytes;  /* activation arena of the batch-1 inference plan */
} rg_graph_stats;
rg_status rg_graph_stats_compute(const rg_graph *g, rg_graph_stats *st, rg_error *err);

const char *rg_op_name(rg_op_type op);
size_t rg_shape_count(rg_shape s);   /* n*h*w*c */

#endif
