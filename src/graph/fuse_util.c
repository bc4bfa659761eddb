/* fuse_util.c -- analysis (constant folding, shape probing, use counts) and graph
 * editing for the fusion passes; see fuse.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/fuse.h"
#include "ops/op.h"

/* ------------------------------------------------------------------ small helpers */

static void node_free(pl_node *n) {
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->nattr; i++) pl_attr_clear(&n->attrs[i]);
    free(n->attrs);
    memset(n, 0, sizeof *n);
}

/* Ops whose run() can be called outside a session: no subgraphs, not random, not
 * self-allocating. */
static bool foldable(const pl_node *n) {
    if (!n->op || (n->op->flags & (PL_OP_NOFOLD | PL_OP_SELF_ALLOC))) return false;
    for (int a = 0; a < n->nattr; a++)
        if (n->attrs[a].type == PL_ATTR_GRAPH || n->attrs[a].type == PL_ATTR_GRAPHS) return false;
    return true;
}

static void ctx_for(const pl_node *n, pl_tensor **in, pl_tensor **out, pl_op_ctx *c) {
    memset(c, 0, sizeof *c);
    c->node = n;
    c->opset = n->opset;
    c->nin = n->nin;
    c->nout = n->nout;
    c->in = in;
    c->out = out;
    c->planning = true;
}

static bool outputs_valid(const pl_op_ctx *c) {
    for (int k = 0; k < c->nout; k++) {
        const pl_tensor *t = c->out[k];
        if (!t) continue;
        if (t->ndim < 0 || t->ndim > PL_MAX_DIMS || pl_numel(t) < 0) return false;
        if (t->dtype != PL_STRING && pl_dtype_size(t->dtype) == 0) return false;
    }
    return true;
}

/* Collects the names of enclosing-scope values read by subgraphs (any depth). */
static void mark_outer(fz_ctx *z, const pl_graph *sg) {
    for (int v = 0; v < sg->nvalues; v++) {
        if (sg->values[v].kind != PL_VALUE_OUTER) continue;
        int id = pl_graph_find_value(z->g, sg->values[v].name);
        if (id >= 0) z->pinned[id] = true;
    }
    for (int i = 0; i < sg->nnodes; i++) {
        const pl_node *n = &sg->nodes[i];
        for (int a = 0; a < n->nattr; a++) {
            const pl_attr *at = &n->attrs[a];
            if (at->type == PL_ATTR_GRAPH && at->g) mark_outer(z, at->g);
        }
    }
}

/* ------------------------------------------------------------------ constant folding */

/* Runs every node whose inputs are all constants (in order, so chains fold) and turns
 * its outputs into constants, as planning would; failures are left for planning to
 * report. Graph outputs are left alone. */
static void fold_constants(fz_ctx *z) {
    pl_graph *g = z->g;
    for (int i = 0; i < g->nnodes; i++) {
        pl_node *n = &g->nodes[i];
        if (z->dead[i] || !foldable(n) || n->nin > 64 || n->nout > 64) continue;
        bool ok = n->nout > 0;
        for (int k = 0; k < n->nin && ok; k++) {
            int v = n->in[k];
            if (v >= 0 && !(g->values[v].kind == PL_VALUE_CONST && g->values[v].t.data)) ok = false;
        }
        for (int k = 0; k < n->nout && ok; k++) {
            int v = n->out[k];
            if (v >= 0 && (z->pinned[v] || g->values[v].kind != PL_VALUE_INTERMEDIATE)) ok = false;
        }
        if (!ok) continue;
        pl_tensor *in[65] = {0}, *out[65] = {0}; /* slot 0 NULL when a node has no inputs or outputs */
        for (int k = 0; k < n->nin; k++) in[k] = n->in[k] >= 0 ? &g->values[n->in[k]].t : NULL;
        for (int k = 0; k < n->nout; k++) out[k] = n->out[k] >= 0 ? &g->values[n->out[k]].t : NULL;
        pl_op_ctx c;
        ctx_for(n, in, out, &c);
        pl_status st = n->op->infer(&c);
        if (st == PL_OK && !outputs_valid(&c)) st = PL_ERR_MODEL;
        for (int k = 0; k < n->nout && st == PL_OK; k++)
            if (out[k]) st = pl_tensor_alloc(out[k]);
        if (st == PL_OK) {
            c.planning = false;
            st = n->op->run(&c);
        }
        if (st != PL_OK) {
            for (int k = 0; k < n->nout; k++)
                if (out[k]) {
                    pl_tensor_free_data(out[k]);
                    out[k]->ndim = -1;
                }
            pl_error_clear();
            continue;
        }
        for (int k = 0; k < n->nout; k++) {
            if (n->out[k] < 0) continue;
            g->values[n->out[k]].kind = PL_VALUE_CONST;
            g->values[n->out[k]].producer = -1;
        }
        z->dead[i] = true;
        z->changes++;
    }
}

/* ------------------------------------------------------------------ shape probe */

#define FZ_MAX_SYMS 24
#define FZ_PROBE_DATA_MAX 65536 /* elements an op may compute while probing */

static const int64_t sentinels[FZ_PROBES][FZ_MAX_SYMS] = {
    {1009, 1013, 1019, 1021, 1031, 1033, 1039, 1049, 1051, 1061, 1063, 1069,
     1087, 1091, 1093, 1097, 1103, 1109, 1117, 1123, 1129, 1151, 1153, 1163},
    {1171, 1181, 1187, 1193, 1201, 1213, 1217, 1223, 1229, 1231, 1237, 1249,
     1259, 1277, 1279, 1283, 1289, 1291, 1297, 1301, 1303, 1307, 1319, 1321}};

/* Sets the probe tensors of graph inputs; returns whether any dim was symbolic. */
static bool probe_inputs(fz_ctx *z, int p) {
    pl_graph *g = z->g;
    const char *names[FZ_MAX_SYMS];
    int nsym = 0;
    bool symbolic = false;
    for (int i = 0; i < g->ninputs; i++) {
        int v = g->inputs[i];
        const pl_value *val = &g->values[v];
        pl_tensor *t = &z->probe[p][v];
        *t = val->t;
        t->data = NULL;
        t->owns = false;
        t->cap = 0;
        if (t->ndim < 0 || t->ndim > PL_MAX_DIMS) {
            t->ndim = -1;
            continue;
        }
        for (int d = 0; d < t->ndim; d++) {
            if (t->dims[d] >= 0) continue;
            symbolic = true;
            int s = -1;
            const char *nm = val->dim_names[d];
            for (int k = 0; nm && k < nsym; k++)
                if (names[k] && !strcmp(names[k], nm)) s = k;
            if (s < 0 && nsym < FZ_MAX_SYMS) {
                s = nsym;
                names[nsym++] = nm;
            }
            if (s < 0) {
                t->ndim = -1;
                break;
            }
            t->dims[d] = sentinels[p][s];
        }
    }
    return symbolic;
}

static void probe_run(fz_ctx *z, int p) {
    pl_graph *g = z->g;
    pl_tensor *pt = z->probe[p];
    for (int v = 0; v < z->nvalues; v++) {
        const pl_value *val = &g->values[v];
        if (val->kind == PL_VALUE_CONST && val->t.data) {
            pt[v] = val->t;
            pt[v].owns = false;
        } else if (val->kind != PL_VALUE_INPUT) {
            memset(&pt[v], 0, sizeof pt[v]);
            pt[v].ndim = -1;
        }
    }
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        if (z->dead[i] || !n->op || n->nin > 64 || n->nout > 64) continue;
        pl_tensor *in[65] = {0}, *out[65] = {0}; /* slot 0 NULL when a node has no inputs or outputs */
        bool known = true, data = true;
        for (int k = 0; k < n->nin; k++) {
            in[k] = n->in[k] >= 0 ? &pt[n->in[k]] : NULL;
            if (!in[k]) continue;
            if (in[k]->ndim < 0) known = false;
            if (!in[k]->data) data = false;
        }
        for (int k = 0; k < n->nout; k++) out[k] = n->out[k] >= 0 ? &pt[n->out[k]] : NULL;
        if (!known) continue;
        pl_op_ctx c;
        ctx_for(n, in, out, &c);
        pl_status st = n->op->infer(&c);
        if (st != PL_OK || !outputs_valid(&c)) {
            for (int k = 0; k < n->nout; k++)
                if (out[k]) out[k]->ndim = -1;
            continue;
        }
        /* small computed values (shape arithmetic) are worked out too, so that a
         * Reshape fed by Shape -> Gather -> Concat gets a shape */
        if (!foldable(n) || !(data || (n->op->flags & PL_OP_FOLD_SHAPE))) continue;
        int64_t total = 0;
        for (int k = 0; k < n->nout; k++)
            if (out[k]) total += pl_numel(out[k]);
        if (total > FZ_PROBE_DATA_MAX) continue;
        st = PL_OK;
        for (int k = 0; k < n->nout && st == PL_OK; k++)
            if (out[k] && out[k]->dtype != PL_STRING)
                st = pl_tensor_alloc(out[k]);
            else if (out[k])
                st = PL_ERR_UNSUPPORTED;
        if (st == PL_OK) {
            c.planning = false;
            st = n->op->run(&c);
        }
        for (int k = 0; k < n->nout; k++) {
            if (!out[k]) continue;
            if (st != PL_OK)
                pl_tensor_free_data(out[k]);
            else
                z->probe_owned[p][n->out[k]] = true;
        }
    }
}

static void count_uses(fz_ctx *z) {
    pl_graph *g = z->g;
    memset(z->uses, 0, sizeof(int) * (size_t)z->nvalues);
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] >= 0) z->uses[g->nodes[i].in[k]]++;
    }
}

pl_status fz_analyze(fz_ctx *z, pl_graph *g) {
    memset(z, 0, sizeof *z);
    z->g = g;
    z->nvalues = g->nvalues;
    size_t nv = (size_t)(g->nvalues ? g->nvalues : 1), nn = (size_t)(g->nnodes ? g->nnodes : 1);
    z->uses = calloc(nv, sizeof(int));
    z->pinned = calloc(nv, sizeof(bool));
    z->dead = calloc(nn, sizeof(bool));
    for (int p = 0; p < FZ_PROBES; p++) {
        z->probe[p] = calloc(nv, sizeof(pl_tensor));
        z->probe_owned[p] = calloc(nv, sizeof(bool));
        if (!z->probe[p] || !z->probe_owned[p])
            return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    }
    if (!z->uses || !z->pinned || !z->dead)
        return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    for (int k = 0; k < g->noutputs; k++) z->pinned[g->outputs[k]] = true;
    for (int v = 0; v < g->nvalues; v++)
        if (g->values[v].is_output) z->pinned[v] = true;
    for (int i = 0; i < g->nnodes; i++)
        for (int a = 0; a < g->nodes[i].nattr; a++) {
            const pl_attr *at = &g->nodes[i].attrs[a];
            if (at->type == PL_ATTR_GRAPH && at->g) mark_outer(z, at->g);
        }
    fold_constants(z);
    z->nprobes = 1;
    bool symbolic = probe_inputs(z, 0);
    probe_run(z, 0);
    if (symbolic) {
        z->nprobes = 2;
        probe_inputs(z, 1);
        probe_run(z, 1);
    }
    pl_error_clear();
    count_uses(z);
    return PL_OK;
}

void fz_finish(fz_ctx *z) {
    pl_graph *g = z->g;
    if (g && z->dead) {
        int w = 0;
        for (int i = 0; i < g->nnodes; i++) {
            if (z->dead[i]) {
                node_free(&g->nodes[i]);
                continue;
            }
            if (w != i) g->nodes[w] = g->nodes[i];
            w++;
        }
        g->nnodes = w;
        for (int v = 0; v < g->nvalues; v++)
            if (g->values[v].producer >= 0) g->values[v].producer = -1;
        for (int i = 0; i < g->nnodes; i++)
            for (int k = 0; k < g->nodes[i].nout; k++)
                if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
    }
    for (int p = 0; p < FZ_PROBES; p++) {
        if (z->probe[p] && z->probe_owned[p])
            for (int v = 0; v < z->nvalues; v++)
                if (z->probe_owned[p][v]) pl_tensor_free_data(&z->probe[p][v]);
        free(z->probe[p]);
        free(z->probe_owned[p]);
    }
    free(z->uses);
    free(z->pinned);
    free(z->dead);
    memset(z, 0, sizeof *z);
}

/* ------------------------------------------------------------------ queries */

int fz_producer(const fz_ctx *z, int v) {
    if (v < 0 || v >= z->g->nvalues) return -1;
    int p = z->g->values[v].producer;
    return p >= 0 && p < z->g->nnodes && !z->dead[p] ? p : -1;
}

bool fz_is_const(const fz_ctx *z, int v) {
    return v >= 0 && z->g->values[v].kind == PL_VALUE_CONST && z->g->values[v].t.data;
}

bool fz_const_scalar(const fz_ctx *z, int v, double *out) {
    if (!fz_is_const(z, v)) return false;
    const pl_tensor *t = &z->g->values[v].t;
    if (pl_numel(t) != 1 || !(pl_dtype_is_float(t->dtype) || pl_dtype_is_int(t->dtype)))
        return false;
    *out = pl_get_f64(t, 0);
    return true;
}

bool fz_single_use(const fz_ctx *z, int v) {
    return v >= 0 && v < z->nvalues && z->uses[v] == 1 && !z->pinned[v];
}

int fz_only_consumer(const fz_ctx *z, int v, int *slot) {
    if (!fz_single_use(z, v)) return -1;
    const pl_graph *g = z->g;
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] == v) {
                if (slot) *slot = k;
                return i;
            }
    }
    return -1;
}

bool fz_known_f32(const fz_ctx *z, int v) {
    if (v < 0) return false;
    if (v >= z->nvalues) return z->g->values[v].t.dtype == PL_F32 && z->g->values[v].t.data;
    for (int p = 0; p < z->nprobes; p++)
        if (z->probe[p][v].ndim < 0 || z->probe[p][v].dtype != PL_F32) return false;
    return true;
}

static const pl_tensor *shape_of(const fz_ctx *z, int p, int v) {
    if (v >= z->nvalues) return &z->g->values[v].t; /* consts added by passes */
    return &z->probe[p][v];
}

bool fz_same_shape(const fz_ctx *z, int a, int b) {
    if (a < 0 || b < 0) return false;
    for (int p = 0; p < z->nprobes; p++) {
        const pl_tensor *x = shape_of(z, p, a), *y = shape_of(z, p, b);
        if (x->ndim < 0 || y->ndim < 0 || x->ndim != y->ndim) return false;
        for (int d = 0; d < x->ndim; d++)
            if (x->dims[d] != y->dims[d]) return false;
    }
    return true;
}

int fz_rank(const fz_ctx *z, int v) {
    if (v < 0) return -1;
    int r = shape_of(z, 0, v)->ndim;
    for (int p = 1; p < z->nprobes; p++)
        if (shape_of(z, p, v)->ndim != r) return -1;
    return r;
}

int64_t fz_dim(const fz_ctx *z, int v, int d) {
    int r = fz_rank(z, v);
    if (r < 0 || d < 0 || d >= r) return -1;
    int64_t x = shape_of(z, 0, v)->dims[d];
    for (int p = 1; p < z->nprobes; p++)
        if (shape_of(z, p, v)->dims[d] != x) return -1;
    return x;
}

bool fz_const_floats(const fz_ctx *z, int v, float *out, int64_t n) {
    if (!fz_is_const(z, v)) return false;
    const pl_tensor *t = &z->g->values[v].t;
    if (!pl_dtype_is_float(t->dtype) || pl_numel(t) != n) return false;
    for (int64_t i = 0; i < n; i++) out[i] = (float)pl_get_f64(t, i);
    return true;
}

bool fz_is_op(const pl_node *n, const char *op) {
    return (!n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx")) && !strcmp(n->op_type, op);
}

bool fz_is_epilogue_op(const pl_node *n) {
    return fz_is_op(n, "Conv") || fz_is_op(n, "ConvTranspose") || fz_is_op(n, "Gemm") ||
           fz_is_op(n, "MatMul");
}

/* ------------------------------------------------------------------ edits */

void fz_kill(fz_ctx *z, int i) {
    if (z->dead[i]) return;
    z->dead[i] = true;
    const pl_node *n = &z->g->nodes[i];
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0 && n->in[k] < z->nvalues) z->uses[n->in[k]]--;
}

void fz_set_output(fz_ctx *z, int i, int k, int v) {
    z->g->nodes[i].out[k] = v;
    z->g->values[v].producer = i;
}

pl_status fz_set_input(fz_ctx *z, int i, int k, int v) {
    pl_node *n = &z->g->nodes[i];
    if (k >= n->nin) {
        int *in = realloc(n->in, (size_t)(k + 1) * sizeof(int));
        if (!in) return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
        for (int j = n->nin; j <= k; j++) in[j] = -1;
        n->in = in;
        n->nin = k + 1;
    }
    int old = n->in[k];
    if (old >= 0 && old < z->nvalues) z->uses[old]--;
    n->in[k] = v;
    if (v >= 0 && v < z->nvalues) z->uses[v]++;
    return PL_OK;
}

void fz_move(fz_ctx *z, int from, int to) {
    pl_graph *g = z->g;
    node_free(&g->nodes[to]);
    g->nodes[to] = g->nodes[from];
    memset(&g->nodes[from], 0, sizeof g->nodes[from]);
    z->dead[from] = true;
    z->dead[to] = false;
    for (int k = 0; k < g->nodes[to].nout; k++)
        if (g->nodes[to].out[k] >= 0) g->values[g->nodes[to].out[k]].producer = to;
}

static pl_attr *attr_slot(fz_ctx *z, int i, const char *name) {
    pl_node *n = &z->g->nodes[i];
    for (int a = 0; a < n->nattr; a++)
        if (!strcmp(n->attrs[a].name, name)) {
            pl_attr_clear(&n->attrs[a]);
            n->attrs[a].name = strdup(name);
            return n->attrs[a].name ? &n->attrs[a] : NULL;
        }
    pl_attr *at = realloc(n->attrs, (size_t)(n->nattr + 1) * sizeof *at);
    if (!at) return NULL;
    n->attrs = at;
    memset(&at[n->nattr], 0, sizeof at[0]);
    at[n->nattr].name = strdup(name);
    if (!at[n->nattr].name) return NULL;
    return &at[n->nattr++];
}

pl_status fz_set_attr_int(fz_ctx *z, int i, const char *name, int64_t v) {
    pl_attr *a = attr_slot(z, i, name);
    if (!a) return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    a->type = PL_ATTR_INT;
    a->i = v;
    return PL_OK;
}

pl_status fz_set_attr_float(fz_ctx *z, int i, const char *name, float v) {
    pl_attr *a = attr_slot(z, i, name);
    if (!a) return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    a->type = PL_ATTR_FLOAT;
    a->f = v;
    return PL_OK;
}

pl_status fz_set_attr_str(fz_ctx *z, int i, const char *name, const char *s) {
    pl_attr *a = attr_slot(z, i, name);
    if (!a || !(a->s = strdup(s))) return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    a->type = PL_ATTR_STRING;
    a->slen = strlen(s);
    return PL_OK;
}

pl_status fz_add_const_f32(fz_ctx *z, const char *name, int ndim, const int64_t *dims,
                           const float *data, int *id) {
    pl_graph *g = z->g;
    char buf[256];
    int suffix = 0;
    snprintf(buf, sizeof buf, "%s", name);
    while (pl_graph_find_value(g, buf) >= 0) snprintf(buf, sizeof buf, "%s_%d", name, ++suffix);
    int v = pl_graph_add_value(g, buf);
    if (v < 0) return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    pl_value *val = &g->values[v];
    val->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&val->t, PL_F32, ndim, dims);
    PL_TRY(pl_tensor_alloc(&val->t));
    memcpy(val->t.data, data, (size_t)pl_numel(&val->t) * sizeof(float));
    *id = v;
    return PL_OK;
}

pl_status fz_retype(fz_ctx *z, int i, const char *op_type) {
    pl_node *n = &z->g->nodes[i];
    const pl_op *op = pl_op_find("", op_type);
    char *t = strdup(op_type);
    if (!op || !t) {
        free(t);
        return pl_error(PL_ERR_INTERNAL, "graph passes: op '%s' is not registered", op_type);
    }
    free(n->op_type);
    n->op_type = t;
    for (int a = 0; a < n->nattr; a++) pl_attr_clear(&n->attrs[a]);
    n->nattr = 0;
    n->op = op;
    return PL_OK;
}
