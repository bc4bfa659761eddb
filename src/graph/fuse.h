/* fuse.h -- the shared state and graph-editing helpers of the fusion passes
 * (fuse_util.c), and the passes themselves (fuse_epilogue.c, fuse_norm.c), run in a
 * fixed order by passes.c. Internal to src/graph.
 *
 * The passes run before the session plans, so values carry no shapes yet. fz_analyze
 * first folds the nodes whose inputs are all constants (as planning would; Constant
 * nodes included, so patterns can read their values), then "probes" shapes: it runs
 * every op's shape inference with the declared input shapes. A symbolic input
 * dimension gets a sentinel size; the probe runs twice with two different sentinel
 * sets, and a fact (a dimension, or two shapes being equal) is trusted only if both
 * runs agree, so decisions hold for every size the dimension may take at run time. */
#ifndef PL_GRAPH_FUSE_H
#define PL_GRAPH_FUSE_H

#include "graph/ir.h"

#define FZ_PROBES 2

typedef struct fz_ctx {
    pl_graph *g;
    int nvalues;                 /* values analysed (new values added later are consts) */
    int *uses;                   /* per value: input slots of live nodes reading it */
    bool *pinned;                /* graph outputs and values read by subgraphs */
    bool *dead;                  /* per node: removed (compacted away by fz_finish) */
    int nprobes;                 /* 1 when no input has a symbolic dimension */
    pl_tensor *probe[FZ_PROBES]; /* per value: probed dtype and shape (ndim -1: unknown) */
    bool *probe_owned[FZ_PROBES];
    int changes; /* rewrites done, for tests and logging */
} fz_ctx;

/* Folds constants, probes shapes and counts uses. */
pl_status fz_analyze(fz_ctx *z, pl_graph *g);
/* Removes dead nodes (keeping the order of the others), fixes producers, frees. */
void fz_finish(fz_ctx *z);

/* ---- queries ---- */
/* Index of the live node producing value v, or -1. */
int fz_producer(const fz_ctx *z, int v);
/* The value is a constant with data. */
bool fz_is_const(const fz_ctx *z, int v);
/* The scalar value of a one-element float/int constant. */
bool fz_const_scalar(const fz_ctx *z, int v, double *out);
/* Read only by one input slot of live nodes, not pinned: may be fused away. */
bool fz_single_use(const fz_ctx *z, int v);
/* The one live node reading v (and the input slot), when v has a single use. */
int fz_only_consumer(const fz_ctx *z, int v, int *slot);
/* Probed shape known (in every probe) and of float32 type. */
bool fz_known_f32(const fz_ctx *z, int v);
/* Probed shapes of a and b known and equal in every probe. */
bool fz_same_shape(const fz_ctx *z, int a, int b);
/* Probed rank of v (-1 unknown) and dimension d if the same in every probe (else -1). */
int fz_rank(const fz_ctx *z, int v);
int64_t fz_dim(const fz_ctx *z, int v, int d);

/* ---- edits ---- */
/* Marks node i dead and updates the use counts of its inputs. */
void fz_kill(fz_ctx *z, int i);
/* Node i writes value v as output k. */
void fz_set_output(fz_ctx *z, int i, int k, int v);
/* Sets input k of node i (growing the input list with omitted slots), updating uses. */
pl_status fz_set_input(fz_ctx *z, int i, int k, int v);
/* Moves node `from` into the slot of dead node `to` (later in order). */
void fz_move(fz_ctx *z, int from, int to);
/* Sets an attribute on node i (replacing one of the same name). */
pl_status fz_set_attr_int(fz_ctx *z, int i, const char *name, int64_t v);
pl_status fz_set_attr_float(fz_ctx *z, int i, const char *name, float v);
pl_status fz_set_attr_str(fz_ctx *z, int i, const char *name, const char *s);
/* Adds a float32 constant value of the given shape (data copied); returns its id. */
pl_status fz_add_const_f32(fz_ctx *z, const char *name, int ndim, const int64_t *dims,
                           const float *data, int *id);
/* Reads a constant as float32 values (any float type); false if not a float const. */
bool fz_const_floats(const fz_ctx *z, int v, float *out, int64_t n);
/* Turns node i into a fresh node of `op_type` (attributes dropped, inputs/outputs
 * kept); op resolved from the registry. */
pl_status fz_retype(fz_ctx *z, int i, const char *op_type);

/* ---- the passes (each returns PL_OK; rewrites counted in z->changes) ---- */
pl_status fz_pass_layernorm(fz_ctx *z);
pl_status fz_pass_scale(fz_ctx *z);
pl_status fz_pass_bias(fz_ctx *z);
pl_status fz_pass_residual(fz_ctx *z);
pl_status fz_pass_activation(fz_ctx *z);
/* fuse_attention.c: the multi-head attention core -> PillarAttention (after the above). */
pl_status fz_pass_attention(fz_ctx *z);

/* A producer whose output can take the fused epilogue (Conv, ConvTranspose, Gemm,
 * MatMul) in the default domain. */
bool fz_is_epilogue_op(const pl_node *n);

/* Node n is the default-domain (ai.onnx) operator `op`. */
bool fz_is_op(const pl_node *n, const char *op);

#endif
