/* ir.h -- the graph IR: values (named tensors), nodes (an op applied to values) and
 * graphs. Built by the ONNX importer, refined by shape inference and passes, executed
 * by src/exec. Knows nothing of ISAs or kernels. */
#ifndef PL_IR_H
#define PL_IR_H

#include "core/tensor.h"

struct pl_op;
struct pl_graph;

/* Constant data shared by a model and the sessions made from it (read-only for all of
 * them): freed when the last holder lets go. */
typedef struct pl_shared_buf pl_shared_buf;

typedef enum pl_attr_type {
    PL_ATTR_UNDEFINED = 0,
    PL_ATTR_FLOAT = 1,
    PL_ATTR_INT = 2,
    PL_ATTR_STRING = 3,
    PL_ATTR_TENSOR = 4,
    PL_ATTR_GRAPH = 5,
    PL_ATTR_FLOATS = 6,
    PL_ATTR_INTS = 7,
    PL_ATTR_STRINGS = 8,
    PL_ATTR_TENSORS = 9,
    PL_ATTR_GRAPHS = 10,
} pl_attr_type;

typedef struct pl_attr {
    char *name;
    pl_attr_type type;
    float f;
    int64_t i;
    char *s;            /* STRING (NUL-terminated; slen bytes, may hold NULs) */
    size_t slen;
    size_t n;           /* element count of FLOATS / INTS / STRINGS */
    float *floats;
    int64_t *ints;
    char **strings;
    pl_tensor *t;       /* TENSOR */
    struct pl_graph *g; /* GRAPH */
} pl_attr;

typedef enum pl_value_kind {
    PL_VALUE_INTERMEDIATE = 0, /* produced by a node */
    PL_VALUE_INPUT = 1,        /* fed by the user at run time */
    PL_VALUE_CONST = 2,        /* initializer, Constant, or folded: t.data is set */
    PL_VALUE_OUTER = 3,        /* a subgraph's reference to an enclosing graph's value */
} pl_value_kind;

typedef struct pl_value {
    char *name;
    pl_value_kind kind;
    pl_tensor t;                        /* type, shape (ndim -1: unknown), data if CONST */
    char *dim_names[PL_MAX_DIMS];       /* symbolic dims of declared inputs/outputs */
    bool declared;                      /* has a type from value_info / graph io */
    bool is_output;
    int producer;                       /* node index, -1 if none */
    pl_shared_buf *shared;              /* set: t.data belongs to this shared buffer
                                           (t.owns is false); never write through it */
} pl_value;

typedef struct pl_node {
    char *name;       /* never NULL: "" from the file becomes "<op>_<index>" */
    char *op_type;
    char *domain;     /* "" for the default ONNX domain */
    int opset;        /* version of the node's domain imported by the model */
    int nin, nout;
    int *in;          /* value ids; -1 for an omitted optional input/output */
    int *out;
    int nattr;
    pl_attr *attrs;
    const struct pl_op *op; /* resolved at session creation, NULL if unknown */
} pl_node;

typedef struct pl_graph {
    char *name;
    int nnodes, cap_nodes;
    pl_node *nodes;
    int nvalues, cap_values;
    pl_value *values;
    int ninputs;      /* user-fed inputs (initializers excluded) */
    int *inputs;
    int noutputs;
    int *outputs;
    struct pl_graph *parent; /* for subgraphs */
} pl_graph;

typedef struct pl_opset {
    char *domain;
    int64_t version;
} pl_opset;

/* A loaded model: the public pillar_model handle. */
typedef struct pillar_model {
    char *path;        /* for messages */
    char *dir;         /* for external data */
    int64_t ir_version;
    int nopsets;
    pl_opset *opsets;
    char *producer;
    pl_graph *graph;
} pl_model;

pl_graph *pl_graph_new(void);
void pl_graph_free(pl_graph *g);
/* Finds a value by name, -1 if none. Linear in the number of values; the importer
 * keeps its own hash index while building. */
int pl_graph_find_value(const pl_graph *g, const char *name);
/* Adds a value (name copied); returns its id or -1 on out of memory. */
int pl_graph_add_value(pl_graph *g, const char *name);
/* Appends a zeroed node, returns its index or -1. */
int pl_graph_add_node(pl_graph *g);
void pl_attr_clear(pl_attr *a);
void pl_model_free(pl_model *m);
/* Deep copy, constants included (the trainer, which updates weights in place). NULL on
 * out of memory. */
pl_graph *pl_graph_clone(const pl_graph *g, pl_graph *parent);
/* Copy whose constants (non-string, also in subgraphs) share their data with `g`
 * through reference-counted buffers: sessions use it so that a session does not double
 * the weights, and the model and its sessions can be freed in any order, from any
 * thread. The first such clone turns g's owned constants into shared ones (under a
 * lock, so sessions may be created from one model on several threads at once). Nobody
 * may write to shared data: a pass that changes a constant adds a new value, and code
 * that edits a model's weights in place calls pl_value_make_writable first. */
pl_graph *pl_graph_clone_shared(pl_graph *g, pl_graph *parent);
/* Lets go of a constant's data (dropping a share, or freeing owned data); keeps its
 * dtype and dims. */
void pl_value_drop_data(pl_value *v);
/* Makes v's data `data`, owned elsewhere (a read-only file mapping: src/onnx/import.c):
 * shared like any constant, and release(ctx) runs when the last holder lets go (at once
 * if this fails, leaving v as it was). Set t's dtype and dims first. */
pl_status pl_value_set_external(pl_value *v, void *data, void (*release)(void *ctx), void *ctx);
/* Makes a constant's data private to this graph (copying it if it is shared with
 * others or owned elsewhere), so it may be written in place. */
pl_status pl_value_make_writable(pl_value *v);
/* Holders of a shared constant's data (0 when not shared), for tests. */
int pl_value_share_count(const pl_value *v);
/* Version of `domain` ("" = ai.onnx) imported by the model, or 0. */
int pl_model_opset(const pl_model *m, const char *domain);

/* Attribute lookup. The typed getters return `def` when absent; a present attribute of
 * the wrong type is treated as absent (shape inference reports it through
 * pl_attr_check). */
const pl_attr *pl_attr_find(const pl_node *n, const char *name);
int64_t pl_attr_int(const pl_node *n, const char *name, int64_t def);
float pl_attr_float(const pl_node *n, const char *name, float def);
const char *pl_attr_str(const pl_node *n, const char *name, const char *def);
/* NULL (and *count = 0) when absent. */
const int64_t *pl_attr_ints(const pl_node *n, const char *name, size_t *count);
const float *pl_attr_floats(const pl_node *n, const char *name, size_t *count);

#endif
