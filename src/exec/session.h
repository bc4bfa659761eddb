/* session.h -- a planned model: its own copy of the graph (constants shared with the
 * model, see pl_graph_clone_shared) with shapes inferred and constants folded, the
 * execution list, and the memory plan. This struct is the public pillar_session
 * handle. */
#ifndef PL_SESSION_H
#define PL_SESSION_H

#include <time.h>

#include "graph/ir.h"
#include "ops/op.h"

typedef struct pl_shape_opt {
    char *name;
    int ndim;
    int64_t dims[PL_MAX_DIMS];
} pl_shape_opt;

typedef struct pillar_options {
    int threads;
    int nshapes;
    pl_shape_opt *shapes; /* per-input shapes */
    int ndims;
    pl_shape_opt *dims;   /* symbolic dim values: name + dims[0] */
    int lsh_k, lsh_l, lsh_topk; /* pillar_options_set_lsh_output (lsh_k 0: off) */
    int schedule;      /* pillar_schedule */
    bool schedule_set; /* else PILLAR_SCHEDULE from the environment, else auto */
} pl_options;

/* One step of the execution list. */
typedef struct pl_step {
    int node;           /* index into graph->nodes */
    bool dynamic;       /* shapes known only at run time: infer before each run */
    pl_tensor **in;     /* pointers into the session's values */
    pl_tensor **out;
    void *state;        /* from the op's prepare(), freed with its release() */
    char kernel[48];    /* what prepare() chose ("" when it did not say) */
    unsigned packed_inputs; /* inputs prepare() packed (see pl_op_ctx.packed_inputs) */
    int chain;          /* 1 + the column chain (exec/columns.h) running this step, 0: none */
} pl_step;

typedef struct pillar_session {
    pl_model *model_info; /* shallow: path and opsets only (owned copy) */
    pl_graph *g;          /* owned clone */
    pl_options opts;
    int nsteps;
    pl_step *steps;
    bool planned;
    /* the shapes the current plan was made for, one per graph input */
    pl_tensor *decl; /* each graph input's type and shape as declared (no data) */
    int64_t *value_offset; /* arena offset per value, -1 if not in the arena */
    int64_t *value_bytes;
    uint8_t *arena;
    size_t arena_bytes;
    /* per-step inspection data */
    int64_t *step_params;
    int64_t *step_zeros;
    int64_t *step_macs;
    /* subgraph sessions (If/Loop/Scan bodies): the graph is borrowed from the parent
     * node's attribute and outer-scope values are read from the parent */
    struct pillar_session *parent;
    bool owns_graph;
    int nsubs;
    struct pillar_session **subs;
    struct pl_threadpool *pool; /* owned by the top session, shared by subgraphs */
    void *scratch;
    size_t scratch_bytes;
    bool poison; /* PILLAR_POISON=1: NaN-fill outputs of PL_OP_WRITES_ALL ops */
    /* raw constants that only packing steps read were let go after planning (the
     * plan is then final: the input shapes cannot change) */
    bool weights_released;
    size_t released_bytes;
    /* per-step timing (pillar_session_set_profiling), allocated with the steps */
    bool profiling;
    clockid_t profile_clock; /* CLOCK_THREAD_CPUTIME_ID with PILLAR_PROFILE_CPU set */
    double *step_ms;
    int64_t *step_calls;
    /* the column schedule (exec/columns.h); col_internal[v]: v lives only in the
     * per-thread buffers of a chain (no arena space) */
    struct pl_columns *cols;
    bool *col_internal;
} pl_session;

#endif
