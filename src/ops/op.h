/* op.h -- how an operator is implemented. Each op has two functions:
 *
 *   infer(ctx): check the inputs (count, types, ranks, attributes) and set every
 *     output's dtype and shape with pl_tensor_set_shape(). Inputs whose values are
 *     known (constants while planning, everything at run time) have data != NULL;
 *     if the output shape depends on an input value that is not known yet, return
 *     PL_NEED_VALUE (the executor then re-infers this node at run time). Errors go
 *     through pl_op_error(), which names the node.
 *   run(ctx): compute. Every present input has data; every output has its dtype and
 *     shape from infer and an allocated, zeroed buffer. Return PL_OK or an error.
 *
 * Ops are listed once, in ops.def (one OP() line each, or OPP() with prepare/release); the registry, declarations and
 * dispatch are generated from that list. An op file holds the glue (attributes, shapes)
 * and calls plain-array kernels in src/kernels/<family>/ for the heavy arithmetic.
 */
#ifndef PL_OP_H
#define PL_OP_H

#include "core/tensor.h"
#include "graph/ir.h"

typedef struct pl_op_ctx {
    const pl_node *node;
    int opset;        /* opset version of the node's domain */
    int nin, nout;    /* as written in the model (omitted trailing ones not counted) */
    pl_tensor **in;   /* in[i] is NULL when optional input i is omitted */
    pl_tensor **out;  /* out[i] is NULL when optional output i is not wanted */
    bool planning;    /* true during session creation (input data may be NULL) */
    /* Runs a subgraph (If/Loop/Scan bodies) in the scope of this node: nin inputs bound
     * to the subgraph's inputs in order; out[0..nout) receive owned copies of its
     * outputs (release with pl_tensor_free_data). Set by the executor. */
    pl_status (*subgraph)(const struct pl_op_ctx *c, pl_graph *g, int nin,
                          const pl_tensor *const *in, int nout, pl_tensor *out);
    void *exec;       /* the executor's state for `subgraph` */
    void *state;      /* what prepare() made for this node (packed weights...), or NULL */
    struct pl_threadpool *pool; /* the session's worker threads (NULL: run serially) */
    void *scratch;    /* per-session scratch, at least the scratch_size prepare() asked */
    size_t scratch_size;
    /* prepare() may name the kernel it chose here, e.g. "winograd", "sparse csr 91%",
     * "int8 vnni" (shown by `pillar inspect` and `pillar bench --verbose`) */
    char kernel[48];
    /* prepare() sets bit k when it keeps its own packed copy of constant input k and
     * run() will never read in[k]->data again (only its dtype and dims): the executor
     * may then release the raw constant to save memory */
    unsigned packed_inputs;
} pl_op_ctx;

typedef pl_status (*pl_op_fn)(pl_op_ctx *c);

enum {
    PL_OP_FOLD_SHAPE = 1, /* output depends only on input shapes (Shape, Size): fold */
    PL_OP_NOFOLD = 2,     /* never constant-fold (random ops) */
    PL_OP_WRITES_ALL = 8, /* run() writes every output element: the executor skips
                             zero-filling (PILLAR_POISON=1 fills with NaN instead, to
                             check the claim in tests) */
    PL_OP_SELF_ALLOC = 4, /* run() sets output shapes and allocates them (control flow);
                             infer() returns PL_NEED_VALUE */
};

typedef struct pl_op {
    const char *name;   /* ONNX op_type */
    const char *domain; /* "" for ai.onnx */
    pl_op_fn infer;
    pl_op_fn run;
    unsigned flags;
    /* Optional (OPP lines of ops.def): called once at session creation for a node whose
     * shapes are static, with constant inputs' data available. It may choose a fast
     * path, pack weights into c->state (freed with release) and ask for per-run scratch
     * by setting c->scratch_size. run() then sees the same c->state. */
    pl_op_fn prepare;
    void (*release)(void *state);
} pl_op;

/* The op for (domain, op_type), or NULL. domain "" and "ai.onnx" are the same. */
const pl_op *pl_op_find(const char *domain, const char *op_type);
/* Number of registered ops and the i-th one (for `pillar help ops`, docs). */
int pl_op_count(void);
const pl_op *pl_op_at(int i);

/* Sets the thread's message to "node 'NAME' (OP): <msg>" and returns code. */
pl_status pl_op_error(const pl_op_ctx *c, pl_status code, const char *fmt, ...) PL_PRINTF(3, 4);

/* Input present (non-NULL)? */
static inline bool pl_has_in(const pl_op_ctx *c, int i) { return i < c->nin && c->in[i]; }

/* Checks min <= number of inputs <= max (max < 0: unbounded) and that inputs
 * 0..required-1 are present; reports a clear error otherwise. */
pl_status pl_op_check_arity(const pl_op_ctx *c, int min_in, int max_in);
/* Checks that input i's dtype is one of the list (terminated by PL_UNDEF). */
pl_status pl_op_check_dtype(const pl_op_ctx *c, int i, const pl_dtype *allowed);
/* Requires input i to be float32/float64/float16/bfloat16. */
pl_status pl_op_check_float(const pl_op_ctx *c, int i);
/* Requires inputs i and j to have the same dtype. */
pl_status pl_op_check_same_dtype(const pl_op_ctx *c, int i, int j);

/* Reads the integer values of input i (int32 or int64) into vals (up to max). Returns
 * PL_NEED_VALUE when planning and the value is not known yet. *count gets the number
 * of elements; more than max is an error. */
pl_status pl_op_input_ints(const pl_op_ctx *c, int i, int64_t *vals, int max, int *count);
/* A scalar (or 1-element) input as double / int64, PL_NEED_VALUE if not known. */
pl_status pl_op_input_scalar(const pl_op_ctx *c, int i, double *v);

/* Input i has a known, valid shape: PL_NEED_VALUE while planning if its rank or a
 * dimension is not known yet, an error for an invalid rank or overflowing size. */
pl_status pl_op_input_known(const pl_op_ctx *c, int i);

/* Normalises a possibly negative axis against rank; error if out of range. */
pl_status pl_op_axis(const pl_op_ctx *c, int64_t axis, int rank, int *out);

/* Numpy-style multidirectional broadcast of n shapes into (ndim, dims). */
pl_status pl_op_broadcast(const pl_op_ctx *c, int n, const pl_tensor *const *ts, int *ndim,
                          int64_t *dims);
/* Element strides of `t` viewed with the broadcast shape (ndim, dims): 0 on broadcast
 * axes. */
void pl_broadcast_strides(const pl_tensor *t, int ndim, const int64_t *dims, int64_t *strides);

/* Sets output i's dtype and shape (no-op if that output is not wanted). */
void pl_op_set_out(pl_op_ctx *c, int i, pl_dtype dtype, int ndim, const int64_t *dims);
/* Output i gets the dtype and shape of input j. */
void pl_op_same_as(pl_op_ctx *c, int i, int j);

#endif
