/* zoo.h -- ready-made architectures with seeded random weights, built directly as graph
 * IR (what pillar_model_zoo returns), and the small graph-building kit they share.
 *
 * The kit keeps the first failure in the builder (z->st) and turns every later call
 * into a no-op returning -1 / NULL, so an architecture is written as straight-line code
 * and checks one status at the end (pl_zoo_finish).
 *
 * Weights are He-initialised from a splitmix64 stream seeded by the caller: uniform in
 * [-a, a] with a = gain * sqrt(3 / fan_in) (standard deviation gain / sqrt(fan_in)), so
 * the same seed gives bit-identical models on every machine. BatchNorm is already
 * folded (as torch's ONNX export does in eval mode): every conv has a bias and there
 * are no BatchNormalization nodes. */
#ifndef PL_ZOO_H
#define PL_ZOO_H

#include <stdint.h>

#include "graph/ir.h"

/* The opset the zoo writes (that of bench/models/export.py's exports). */
#define PL_ZOO_OPSET 13

typedef struct pl_zoo {
    pl_model *m;
    pl_graph *g;
    pl_status st; /* the first failure; once set, every call does nothing */
    uint64_t rng; /* splitmix64 state */
} pl_zoo;

/* Starts a model named `arch` (used for messages, as the path "zoo:<arch>"). */
pl_status pl_zoo_begin(pl_zoo *z, const char *arch, uint64_t seed);
/* Frees a model that was not finished (after a failure). */
void pl_zoo_abort(pl_zoo *z);
/* Marks `out` as the float32 graph output `name` of shape [batch, classes] and hands
 * the model over. On failure everything is freed and the first error is returned. */
pl_status pl_zoo_finish(pl_zoo *z, int out, const char *name, int64_t classes, pl_model **model);

/* A float32 graph input [batch(symbolic "batch"), dims...]; returns its value id. */
int pl_zoo_input(pl_zoo *z, const char *name, int ndim, const int64_t *dims);
/* A zero-filled float32 initializer; returns its data (NULL on failure) and its value
 * id in *id. */
float *pl_zoo_const(pl_zoo *z, const char *name, int ndim, const int64_t *dims, int *id);
/* A float32 scalar initializer; returns its value id. */
int pl_zoo_scalar(pl_zoo *z, const char *name, float v);
/* Appends node `op` named `name` with inputs in[0..nin) and one output named
 * "<name>_output_0"; returns the output's value id, and the node index in *node if
 * node != NULL. */
int pl_zoo_node(pl_zoo *z, const char *op, const char *name, int nin, const int *in, int *node);
/* Attributes on node index `node`. */
void pl_zoo_attr_int(pl_zoo *z, int node, const char *name, int64_t v);
void pl_zoo_attr_float(pl_zoo *z, int node, const char *name, float v);
void pl_zoo_attr_ints(pl_zoo *z, int node, const char *name, int n, const int64_t *v);

/* Uniform in [lo, hi) from the builder's stream. */
float pl_zoo_uniform(pl_zoo *z, float lo, float hi);
/* n values, uniform with standard deviation `std` (zero mean). */
void pl_zoo_fill_he(pl_zoo *z, float *w, int64_t n, double std);

/* Conv(x) with weight "<param>.weight" [cout, cin/groups, k, k] (He init times `gain`)
 * and bias "<param>.bias" (small random: the folded BatchNorm shift), stride, padding
 * k/2 on every side, `groups`. Node name "/<param with '.' -> '/'>/Conv". */
int pl_zoo_conv(pl_zoo *z, const char *param, int x, int64_t cin, int64_t cout, int k, int stride,
                int64_t groups, double gain);
/* One-input op (Relu, GlobalAveragePool, Flatten ...) named "/<scope>/<op>". */
int pl_zoo_unary(pl_zoo *z, const char *op, const char *scope, int x);
/* Clip(x, lo, hi) with shared scalar initializers (ReLU6 when lo=0, hi=6). */
int pl_zoo_clip(pl_zoo *z, const char *scope, int x, float lo, float hi);
/* Add(a, b) named "/<scope>/Add". */
int pl_zoo_add(pl_zoo *z, const char *scope, int a, int b);
/* MaxPool k x k, stride, symmetric padding `pad`. */
int pl_zoo_maxpool(pl_zoo *z, const char *scope, int x, int k, int stride, int pad);
/* Gemm(x, W^T) + b with W "<param>.weight" [nout, nin] (He init times `gain`) and bias
 * "<param>.bias" [nout] (zero). */
int pl_zoo_linear(pl_zoo *z, const char *param, int x, int64_t nin, int64_t nout, double gain);

/* ---------------------------------------------------------------- architectures */

/* Dispatch for pillar_model_zoo: chw may be NULL (the architecture's default), classes
 * 0 (its default). PL_ERR_ARGUMENT for an unknown name or a bad shape. */
pl_status pl_zoo_build(const char *name, const int64_t *chw, int64_t classes, uint64_t seed,
                       pl_model **out);

/* torchvision's ResNet-50 (v1.5: stride on the 3x3 conv) and MobileNetV2 (width 1.0),
 * default 3x224x224 and 1000 classes. In imagenet.c. */
pl_status pl_zoo_resnet50(const int64_t *chw, int64_t classes, uint64_t seed, pl_model **out);
pl_status pl_zoo_mobilenet_v2(const int64_t *chw, int64_t classes, uint64_t seed, pl_model **out);

/* The small architectures to train from scratch ("mlp", "lenet", "resnet8"; default
 * 1x28x28, 10 classes), in small.c (the training side owns it). Returns
 * PL_ERR_ARGUMENT "unknown architecture" for any other name. */
pl_status pl_zoo_small(const char *name, const int64_t *chw, int64_t classes, uint64_t seed,
                       pl_model **out);

#endif
