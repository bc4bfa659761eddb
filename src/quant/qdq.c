/* qdq.c -- the QDQ rewrite behind pillar_model_quantize: picks the Conv/Gemm/MatMul
 * nodes with constant float weights, calibrates the ranges of their float inputs and
 * outputs, and writes the model as ONNX Runtime's quantizer does in QDQ format:
 *
 *   x -> QuantizeLinear(x_scale, x_zp:u8) -> DequantizeLinear -> Conv -> y -> Q -> DQ -> ...
 *   W:int8 -> DequantizeLinear(w_scale[C], 0, axis) -^   ^- B:int32 -> DequantizeLinear
 *
 * A Relu, or a Clip whose lower bound is 0, between the op and its output's Q is
 * removed: with the output's range starting at 0, the uint8 zero point is 0 and Q
 * already clamps negatives to it (ONNX Runtime's quantizer removes it too, and its
 * fusion and pillar's then see op -> Q directly). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

typedef struct target {
    int node;
    int x, w, b;  /* value ids; b -1 when the bias stays float or is absent */
    int axis;     /* weight channel axis, -1 per tensor */
    int y;        /* the output that gets Q/DQ (after a removed activation), -1: none */
    int fold;     /* the Relu/Clip node removed, -1 if none */
} target;

typedef struct rw {
    pl_graph *g;
    int norig;    /* nodes before the rewrite */
    int *anchor;  /* per new node: 2k = before original node k, 2k+1 = after, -1 = first */
    int nanchor, cap_anchor;
} rw;

static pl_status nomem(void) { return pl_error(PL_ERR_NOMEM, "out of memory while quantizing"); }

/* A value name not yet used in g: base + suffix, then base + suffix + "_2", ... */
static char *unique_name(const pl_graph *g, const char *base, const char *suffix) {
    size_t n = strlen(base) + strlen(suffix) + 16;
    char *s = malloc(n);
    if (!s) return NULL;
    snprintf(s, n, "%s%s", base, suffix);
    for (int k = 2; pl_graph_find_value(g, s) >= 0; k++) snprintf(s, n, "%s%s_%d", base, suffix, k);
    return s;
}

static int new_value(pl_graph *g, const char *base, const char *suffix) {
    char *name = unique_name(g, base, suffix);
    if (!name) return -1;
    int v = pl_graph_add_value(g, name);
    free(name);
    return v;
}

/* A constant value holding `t` (its buffer is moved in). */
static int new_const(pl_graph *g, const char *base, const char *suffix, pl_tensor *t) {
    int v = new_value(g, base, suffix);
    if (v < 0) {
        pl_tensor_free_data(t);
        return -1;
    }
    pl_value *val = &g->values[v];
    val->kind = PL_VALUE_CONST;
    val->t = *t;
    memset(t, 0, sizeof *t);
    return v;
}

static int scalar_const(pl_graph *g, const char *base, const char *suffix, pl_dtype dt, double x) {
    pl_tensor t = {0};
    pl_tensor_set_shape(&t, dt, 0, NULL);
    if (pl_tensor_alloc(&t) != PL_OK) return -1;
    pl_set_f64(&t, 0, x);
    return new_const(g, base, suffix, &t);
}

/* Appends node `op` (in[0..nin) -> out) anchored at `anchor`; axis >= 0 adds the
 * attribute. Returns PL_OK or NOMEM. */
static pl_status add_node(rw *r, const char *base, const char *op, int nin, const int *in, int out, int axis,
                          int anchor) {
    pl_graph *g = r->g;
    if (r->nanchor == r->cap_anchor) {
        int cap = r->cap_anchor ? 2 * r->cap_anchor : 256;
        int *a = realloc(r->anchor, (size_t)cap * sizeof *a);
        if (!a) return nomem();
        r->anchor = a;
        r->cap_anchor = cap;
    }
    int k = pl_graph_add_node(g);
    if (k < 0) return nomem();
    r->anchor[r->nanchor++] = anchor;
    pl_node *n = &g->nodes[k];
    size_t len = strlen(base) + strlen(op) + 2;
    n->name = malloc(len);
    n->op_type = strdup(op);
    n->domain = strdup("");
    n->in = malloc((size_t)nin * sizeof(int));
    n->out = malloc(sizeof(int));
    if (axis >= 0) n->attrs = calloc(1, sizeof(pl_attr));
    if (!n->name || !n->op_type || !n->domain || !n->in || !n->out || (axis >= 0 && !n->attrs)) return nomem();
    snprintf(n->name, len, "%s_%s", base, op);
    memcpy(n->in, in, (size_t)nin * sizeof(int));
    n->nin = nin;
    n->out[0] = out;
    n->nout = 1;
    if (axis >= 0) {
        n->nattr = 1;
        n->attrs[0].type = PL_ATTR_INT;
        n->attrs[0].i = axis;
        if (!(n->attrs[0].name = strdup("axis"))) return nomem();
    }
    g->values[out].producer = k;
    return PL_OK;
}

/* The lower bound of a Clip node if it is a constant, else NAN. */
static float clip_min(const pl_graph *g, const pl_node *n) {
    if (n->nin >= 2 && n->in[1] >= 0) {
        const pl_value *v = &g->values[n->in[1]];
        if (v->kind != PL_VALUE_CONST || !v->t.data || pl_numel(&v->t) != 1) return NAN;
        return (float)pl_get_f64(&v->t, 0);
    }
    if (n->nin >= 2) return -INFINITY; /* omitted min */
    const pl_attr *a = pl_attr_find(n, "min");
    return a ? a->f : -INFINITY;
}

static bool is_const_f32(const pl_graph *g, int v) {
    return v >= 0 && g->values[v].kind == PL_VALUE_CONST && g->values[v].producer < 0 && g->values[v].t.data &&
           g->values[v].t.dtype == PL_F32;
}

static bool excluded(const pl_quant_options *o, const char *name) {
    for (int i = 0; i < o->nexclude; i++)
        if (!strcmp(o->exclude[i], name)) return true;
    return false;
}

/* Ops whose 8-bit output equals the op applied to the 8-bit input when both share a
 * scale and zero point. */
static bool direct_op(const pl_node *n) {
    static const char *const ops[] = {"MaxPool", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"};
    if (n->domain[0] || n->nin < 1 || n->in[0] < 0 || (n->nout > 1 && n->out[1] >= 0)) return false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(n->op_type, ops[i])) return true;
    return false;
}

/* The index in act[] of the quantized tensor that value v is made from through direct
 * ops only, or -1. */
static int shared_source(const pl_graph *g, const int *act, int nact, int v) {
    for (int hops = 0; hops < 64; hops++) {
        int p = g->values[v].producer;
        if (p < 0 || !direct_op(&g->nodes[p])) return -1;
        v = g->nodes[p].in[0];
        for (int k = 0; k < nact; k++)
            if (act[k] == v) return k;
    }
    return -1;
}

/* Finds the nodes to quantize and what to do with each. */
static pl_status pick_targets(const pl_graph *g, const pl_quant_options *o, const int *cons, const int *cons_node,
                              target *t, int *nt) {
    *nt = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        if (n->domain[0] || n->nin < 2 || n->nout < 1 || n->out[0] < 0 || excluded(o, n->name)) continue;
        bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm"),
             matmul = !strcmp(n->op_type, "MatMul");
        if (!conv && !gemm && !matmul) continue;
        int x = n->in[0], w = n->in[1];
        if (x < 0 || !is_const_f32(g, w) || g->values[x].kind == PL_VALUE_CONST) continue;
        if (g->values[x].t.dtype != PL_F32 && g->values[x].t.dtype != PL_UNDEF) continue;
        const pl_tensor *wt = &g->values[w].t;
        target tg = {.node = i, .x = x, .w = w, .b = -1, .axis = -1, .y = -1, .fold = -1};
        if (conv) {
            if (wt->ndim < 3) continue;
            tg.axis = 0;
        } else if (gemm) {
            if (wt->ndim != 2 || pl_attr_int(n, "transA", 0)) continue;
            tg.axis = pl_attr_int(n, "transB", 0) ? 0 : 1;
        } else {
            if (wt->ndim < 1) continue;
            tg.axis = wt->ndim >= 2 ? wt->ndim - 1 : -1;
        }
        if (o->per_tensor) tg.axis = -1;
        int64_t cout = conv ? wt->dims[0] : gemm ? wt->dims[pl_attr_int(n, "transB", 0) ? 0 : 1] : 0;
        if ((conv || gemm) && n->nin >= 3 && is_const_f32(g, n->in[2]) && pl_numel(&g->values[n->in[2]].t) == cout &&
            g->values[n->in[2]].t.ndim == 1 &&
            (conv || (pl_attr_float(n, "alpha", 1.0f) == 1.0f && pl_attr_float(n, "beta", 1.0f) == 1.0f)))
            tg.b = n->in[2];
        /* the output (after a Relu / Clip(0, ..) that only this node feeds) */
        int y = n->out[0];
        if (cons[y] == 1 && !g->values[y].is_output) {
            const pl_node *a = &g->nodes[cons_node[y]];
            bool relu = !a->domain[0] && !strcmp(a->op_type, "Relu");
            bool clip0 = !a->domain[0] && !strcmp(a->op_type, "Clip") && clip_min(g, a) == 0.0f;
            if ((relu || clip0) && a->nout >= 1 && a->out[0] >= 0 && a->in[0] == y &&
                !g->values[a->out[0]].is_output && cons[a->out[0]] >= 1) {
                tg.fold = cons_node[y];
                y = a->out[0];
            }
        }
        if (!g->values[y].is_output && cons[y] >= 1) tg.y = y;
        else tg.fold = -1;
        t[(*nt)++] = tg;
    }
    return PL_OK;
}

/* Puts the rewritten nodes in a topological order: each new node goes right before
 * (weights) or after (activations) the original node it was anchored to. */
static pl_status reorder(rw *r, const bool *dead) {
    pl_graph *g = r->g;
    pl_node *nodes = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *nodes);
    if (!nodes) return nomem();
    int k = 0;
    for (int j = 0; j < r->nanchor; j++)
        if (r->anchor[j] == -1) nodes[k++] = g->nodes[r->norig + j];
    for (int i = 0; i < r->norig; i++) {
        for (int j = 0; j < r->nanchor; j++)
            if (r->anchor[j] == 2 * i) nodes[k++] = g->nodes[r->norig + j];
        if (!dead[i]) nodes[k++] = g->nodes[i];
        for (int j = 0; j < r->nanchor; j++)
            if (r->anchor[j] == 2 * i + 1) nodes[k++] = g->nodes[r->norig + j];
    }
    for (int i = 0; i < r->norig; i++) {
        if (!dead[i]) continue;
        pl_node *n = &g->nodes[i];
        free(n->name);
        free(n->op_type);
        free(n->domain);
        free(n->in);
        free(n->out);
        for (int a = 0; a < n->nattr; a++) pl_attr_clear(&n->attrs[a]);
        free(n->attrs);
    }
    free(g->nodes);
    g->nodes = nodes;
    g->nnodes = k;
    g->cap_nodes = k ? k : 1;
    for (int v = 0; v < g->nvalues; v++) g->values[v].producer = -1;
    for (int i = 0; i < g->nnodes; i++)
        for (int o = 0; o < g->nodes[i].nout; o++)
            if (g->nodes[i].out[o] >= 0) g->values[g->nodes[i].out[o]].producer = i;
    return PL_OK;
}

/* Inserts x -> Q -> DQ for activation `v` and makes every reader of v (but the new Q)
 * read the DQ output. */
static pl_status insert_qdq(rw *r, int v, float scale, uint8_t zp) {
    pl_graph *g = r->g;
    char *base = strdup(g->values[v].name);
    if (!base) return nomem();
    int s = scalar_const(g, base, "_scale", PL_F32, scale);
    int z = scalar_const(g, base, "_zero_point", PL_U8, zp);
    int q = new_value(g, base, "_quantized");
    int dq = new_value(g, base, "_dequantized");
    pl_status st = (s < 0 || z < 0 || q < 0 || dq < 0) ? nomem() : PL_OK;
    if (st == PL_OK) {
        g->values[q].t.dtype = PL_U8;
        g->values[dq].t.dtype = PL_F32;
        g->values[dq].t.ndim = g->values[v].t.ndim;
        memcpy(g->values[dq].t.dims, g->values[v].t.dims, sizeof g->values[dq].t.dims);
        for (int i = 0; i < g->nnodes; i++)
            for (int k = 0; k < g->nodes[i].nin; k++)
                if (g->nodes[i].in[k] == v) g->nodes[i].in[k] = dq;
        int p = g->values[v].producer;
        int anchor = p < 0 ? -1 : 2 * p + 1;
        int qin[3] = {v, s, z}, dqin[3] = {q, s, z};
        st = add_node(r, base, "QuantizeLinear", 3, qin, q, -1, anchor);
        if (st == PL_OK) st = add_node(r, base, "DequantizeLinear", 3, dqin, dq, -1, anchor);
    }
    free(base);
    return st;
}

/* W:int8 (+ scales, zero points) -> DequantizeLinear; returns the DQ output in *out and
 * the float scales (owned by the graph) in *scales. */
static pl_status insert_weight(rw *r, const target *t, int *out, const float **scales, int64_t *nscales) {
    pl_graph *g = r->g;
    pl_tensor q = {0}, sc = {0};
    PL_TRY(pl_quant_weight(&g->values[t->w].t, t->axis, &q, &sc));
    char *base = strdup(g->values[t->w].name);
    if (!base) {
        pl_tensor_free_data(&q);
        pl_tensor_free_data(&sc);
        return nomem();
    }
    int64_t C = pl_numel(&sc);
    pl_tensor zp = {0};
    pl_tensor_set_shape(&zp, PL_I8, sc.ndim, sc.dims);
    pl_status st = pl_tensor_alloc(&zp) == PL_OK ? PL_OK : nomem();
    int vq = new_const(g, base, "_quantized", &q);
    int vs = new_const(g, base, "_scale", &sc);
    int vz = st == PL_OK ? new_const(g, base, "_zero_point", &zp) : -1;
    int vdq = new_value(g, base, "_dequantized");
    if (st == PL_OK && (vq < 0 || vs < 0 || vz < 0 || vdq < 0)) st = nomem();
    if (st == PL_OK) {
        g->values[vdq].t.dtype = PL_F32;
        int in[3] = {vq, vs, vz};
        st = add_node(r, base, "DequantizeLinear", 3, in, vdq, t->axis, 2 * t->node);
        *out = vdq;
        *scales = g->values[vs].t.data;
        *nscales = C;
    }
    pl_tensor_free_data(&q);
    pl_tensor_free_data(&sc);
    pl_tensor_free_data(&zp);
    free(base);
    return st;
}

/* B:int32 with scale x_scale * w_scale[c] -> DequantizeLinear (axis 0). */
static pl_status insert_bias(rw *r, const target *t, float xs, const float *ws, int64_t nws, int *out) {
    pl_graph *g = r->g;
    const pl_tensor *b = &g->values[t->b].t;
    int64_t n = pl_numel(b);
    pl_tensor q = {0}, sc = {0}, zp = {0};
    pl_tensor_set_shape(&q, PL_I32, 1, &n);
    pl_tensor_set_shape(&sc, PL_F32, 1, &n);
    pl_tensor_set_shape(&zp, PL_I32, 1, &n);
    pl_status st = PL_OK;
    if (pl_tensor_alloc(&q) != PL_OK || pl_tensor_alloc(&sc) != PL_OK || pl_tensor_alloc(&zp) != PL_OK) st = nomem();
    char *base = st == PL_OK ? strdup(g->values[t->b].name) : NULL;
    if (st == PL_OK && !base) st = nomem();
    if (st == PL_OK) {
        const float *bf = b->data;
        for (int64_t c = 0; c < n; c++) {
            float s = xs * ws[nws > 1 ? c : 0];
            double v = nearbyint((double)bf[c] / (double)s);
            if (!(v > -2147483647.0)) v = v != v ? 0 : -2147483647.0;
            if (v > 2147483647.0) v = 2147483647.0;
            ((float *)sc.data)[c] = s;
            ((int32_t *)q.data)[c] = (int32_t)v;
        }
        int vq = new_const(g, base, "_quantized", &q);
        int vs = new_const(g, base, "_scale", &sc);
        int vz = new_const(g, base, "_zero_point", &zp);
        int vdq = new_value(g, base, "_dequantized");
        if (vq < 0 || vs < 0 || vz < 0 || vdq < 0) st = nomem();
        else {
            g->values[vdq].t.dtype = PL_F32;
            int in[3] = {vq, vs, vz};
            st = add_node(r, base, "DequantizeLinear", 3, in, vdq, 0, 2 * t->node);
            *out = vdq;
        }
    }
    pl_tensor_free_data(&q);
    pl_tensor_free_data(&sc);
    pl_tensor_free_data(&zp);
    free(base);
    return st;
}

/* Drops the data of float constants no node reads any more (the replaced weights), so
 * the writer leaves them out. */
static void drop_unused(pl_graph *g, const bool *replaced, int nreplaced) {
    bool *used = calloc((size_t)(g->nvalues ? g->nvalues : 1), sizeof *used);
    if (!used) return;
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] >= 0) used[g->nodes[i].in[k]] = true;
    for (int v = 0; v < nreplaced; v++)
        if (replaced[v] && !used[v] && !g->values[v].is_output) pl_tensor_free_data(&g->values[v].t);
    free(used);
}

static pl_status copy_model(const pl_model *m, pl_graph *g, pl_model **out) {
    pl_model *q = calloc(1, sizeof *q);
    if (!q) return nomem();
    q->graph = g;
    q->ir_version = m->ir_version > 7 ? m->ir_version : 7;
    q->path = strdup(m->path ? m->path : "model");
    q->dir = strdup(m->dir ? m->dir : ".");
    q->producer = strdup("pillar quantize");
    q->opsets = calloc((size_t)(m->nopsets ? m->nopsets : 1), sizeof *q->opsets);
    if (!q->path || !q->dir || !q->producer || !q->opsets) {
        pl_model_free(q);
        return nomem();
    }
    for (int i = 0; i < m->nopsets; i++) {
        q->opsets[i].version = m->opsets[i].version;
        q->nopsets = i + 1;
        if (!(q->opsets[i].domain = strdup(m->opsets[i].domain ? m->opsets[i].domain : ""))) {
            pl_model_free(q);
            return nomem();
        }
    }
    *out = q;
    return PL_OK;
}

/* Counts readers of every value, and remembers one reading node. */
static pl_status count_consumers(const pl_graph *g, int **cons, int **cons_node) {
    *cons = calloc((size_t)(g->nvalues ? g->nvalues : 1), sizeof(int));
    *cons_node = calloc((size_t)(g->nvalues ? g->nvalues : 1), sizeof(int));
    if (!*cons || !*cons_node) return nomem();
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) {
            int v = g->nodes[i].in[k];
            if (v < 0) continue;
            (*cons)[v]++;
            (*cons_node)[v] = i;
        }
    /* a value read by a subgraph (by name) counts as read twice: never folded */
    for (int i = 0; i < g->nnodes; i++)
        for (int a = 0; a < g->nodes[i].nattr; a++)
            if (g->nodes[i].attrs[a].g || g->nodes[i].attrs[a].type == PL_ATTR_GRAPHS)
                for (int v = 0; v < g->nvalues; v++) (*cons)[v] += 2;
    return PL_OK;
}

static pl_status quantize(const pl_model *m, const pl_quant_options *o, size_t n_samples,
                          const pl_tensor *const *samples, pl_graph *g, int *ntargets) {
    int *cons = NULL, *cons_node = NULL, *act = NULL;
    target *t = NULL;
    float *lo = NULL, *hi = NULL;
    const char **names = NULL;
    bool *dead = NULL, *replaced = NULL;
    int *wdq = NULL;
    const float **wsc = NULL;
    int64_t *nwsc = NULL;
    rw r = {.g = g, .norig = g->nnodes};
    float *xs = NULL;
    int nt = 0, nact = 0, nrep = 0;
    pl_status st = count_consumers(g, &cons, &cons_node);
    if (st != PL_OK) goto done;
    t = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *t);
    act = malloc((size_t)(2 * g->nnodes + 1) * sizeof *act);
    dead = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *dead);
    if (!t || !act || !dead) {
        st = nomem();
        goto done;
    }
    pick_targets(g, o, cons, cons_node, t, &nt);
    *ntargets = nt;
    /* the activations to calibrate, each once */
    for (int i = 0; i < nt; i++) {
        int cand[2] = {t[i].x, t[i].y};
        for (int c = 0; c < 2; c++) {
            if (cand[c] < 0) continue;
            bool seen = false;
            for (int k = 0; k < nact && !seen; k++) seen = act[k] == cand[c];
            if (!seen) act[nact++] = cand[c];
        }
    }
    names = malloc((size_t)(nact ? nact : 1) * sizeof *names);
    lo = malloc((size_t)(nact ? nact : 1) * sizeof *lo);
    hi = malloc((size_t)(nact ? nact : 1) * sizeof *hi);
    if (!names || !lo || !hi) {
        st = nomem();
        goto done;
    }
    for (int k = 0; k < nact; k++) names[k] = g->values[act[k]].name;
    if (nact) st = pl_quant_calibrate(m, o, nact, names, n_samples, samples, lo, hi);
    if (st != PL_OK) goto done;
    /* remove the folded activations: the op writes their output directly */
    for (int i = 0; i < nt; i++) {
        if (t[i].fold < 0) continue;
        g->nodes[t[i].node].out[0] = t[i].y;
        g->values[t[i].y].producer = t[i].node;
        dead[t[i].fold] = true;
    }
    xs = malloc((size_t)(nact ? nact : 1) * sizeof *xs);
    if (!xs) {
        st = nomem();
        goto done;
    }
    /* a tensor that only max-pooling / reshaping made from another quantized tensor
     * takes that tensor's range: its values are then exactly the 8-bit ones (ONNX
     * Runtime's quantizer does the same, and runs such ops on 8 bits) */
    for (int k = 0; k < nact; k++) {
        int root = k;
        for (int hops = 0; hops < nact; hops++) {
            int src = shared_source(g, act, nact, act[root]);
            if (src < 0) break;
            root = src;
        }
        lo[k] = lo[root];
        hi[k] = hi[root];
    }
    for (int k = 0; k < nact && st == PL_OK; k++) {
        uint8_t zp;
        pl_quant_affine_u8(lo[k], hi[k], &xs[k], &zp);
        st = insert_qdq(&r, act[k], xs[k], zp);
    }
    /* weights (each once, shared ones too) and biases */
    nrep = g->nvalues;
    wdq = malloc((size_t)g->nvalues * sizeof *wdq);
    wsc = malloc((size_t)g->nvalues * sizeof *wsc);
    nwsc = malloc((size_t)g->nvalues * sizeof *nwsc);
    replaced = calloc((size_t)g->nvalues, sizeof *replaced);
    if (st == PL_OK && (!wdq || !wsc || !nwsc || !replaced)) st = nomem();
    for (int v = 0; st == PL_OK && v < g->nvalues; v++) wdq[v] = -1;
    for (int i = 0; i < nt && st == PL_OK; i++) {
        if (wdq[t[i].w] < 0) st = insert_weight(&r, &t[i], &wdq[t[i].w], &wsc[t[i].w], &nwsc[t[i].w]);
        if (st != PL_OK) break;
        replaced[t[i].w] = true;
        g->nodes[t[i].node].in[1] = wdq[t[i].w];
        if (t[i].b < 0) continue;
        int k = 0;
        while (act[k] != t[i].x) k++;
        int bdq = -1;
        st = insert_bias(&r, &t[i], xs[k], wsc[t[i].w], nwsc[t[i].w], &bdq);
        if (st != PL_OK) break;
        replaced[t[i].b] = true;
        g->nodes[t[i].node].in[2] = bdq;
    }
    if (st == PL_OK) st = reorder(&r, dead);
    if (st == PL_OK) drop_unused(g, replaced, nrep);
done:
    free(xs);
    free(cons);
    free(cons_node);
    free(act);
    free(t);
    free(names);
    free(lo);
    free(hi);
    free(dead);
    free(replaced);
    free(wdq);
    free(wsc);
    free(nwsc);
    free(r.anchor);
    return st;
}

pillar_status pillar_model_quantize(const pillar_model *m, const pillar_quantize_options *o, size_t n_samples,
                                    const pillar_tensor *const *samples, pillar_model **out) {
    pl_error_clear();
    if (!m || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_model_quantize: model or out is NULL");
    pl_quant_options dflt = {.method = PILLAR_CALIBRATE_MINMAX, .percentile = 100.0};
    if (!o) o = &dflt;
    const char *path = m->path ? m->path : "model";
    if (n_samples == 0 || !samples)
        return pl_error(PL_ERR_ARGUMENT, "%s: quantize: no calibration samples given", path);
    for (size_t i = 0; i < n_samples * (size_t)m->graph->ninputs; i++)
        if (!samples[i]) return pl_error(PL_ERR_ARGUMENT, "%s: quantize: calibration tensor %zu is NULL", path, i);
    for (int e = 0; e < o->nexclude; e++) {
        bool found = false;
        for (int i = 0; i < m->graph->nnodes && !found; i++) found = !strcmp(m->graph->nodes[i].name, o->exclude[e]);
        if (!found)
            return pl_error(PL_ERR_ARGUMENT, "%s: quantize: --exclude names node '%s', which the model does not have",
                            path, o->exclude[e]);
    }
    int opset = pl_model_opset(m, "");
    if (opset < 10)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: quantize: opset %d is too old for QuantizeLinear (needs 10)", path, opset);
    if (opset < 13 && !o->per_tensor)
        return pl_error(PL_ERR_UNSUPPORTED,
                        "%s: quantize: per-channel weights need opset 13 (the model has %d); use per-tensor scales",
                        path, opset);
    pl_graph *g = pl_graph_clone(m->graph, NULL);
    if (!g) return nomem();
    int nt = 0;
    pl_status st = quantize(m, o, n_samples, samples, g, &nt);
    if (st == PL_OK && nt == 0)
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: quantize: no Conv, Gemm or MatMul node with a constant float weight to quantize",
                      path);
    if (st != PL_OK) {
        pl_graph_free(g);
        return st;
    }
    return copy_model(m, g, out);
}

/* ---- options ---- */

pillar_status pillar_quantize_options_create(pillar_quantize_options **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_quantize_options_create: out is NULL");
    pl_quant_options *o = calloc(1, sizeof *o);
    if (!o) return nomem();
    o->method = PILLAR_CALIBRATE_MINMAX;
    o->percentile = 100.0;
    *out = o;
    return PL_OK;
}

void pillar_quantize_options_destroy(pillar_quantize_options *o) {
    if (!o) return;
    for (int i = 0; i < o->nexclude; i++) free(o->exclude[i]);
    free(o->exclude);
    free(o);
}

pillar_status pillar_quantize_options_set_method(pillar_quantize_options *o, pillar_calibration method,
                                                 double percentile) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_quantize_options_set_method: options is NULL");
    if (method != PILLAR_CALIBRATE_MINMAX && method != PILLAR_CALIBRATE_PERCENTILE)
        return pl_error(PL_ERR_ARGUMENT, "calibration method %d is not minmax (0) or percentile (1)", (int)method);
    if (method == PILLAR_CALIBRATE_PERCENTILE && !(percentile > 50.0 && percentile <= 100.0))
        return pl_error(PL_ERR_ARGUMENT, "percentile %g is not in (50, 100]", percentile);
    o->method = method;
    o->percentile = method == PILLAR_CALIBRATE_PERCENTILE ? percentile : 100.0;
    return PL_OK;
}

pillar_status pillar_quantize_options_set_per_tensor(pillar_quantize_options *o, int per_tensor) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_quantize_options_set_per_tensor: options is NULL");
    o->per_tensor = per_tensor != 0;
    return PL_OK;
}

pillar_status pillar_quantize_options_exclude(pillar_quantize_options *o, const char *node) {
    if (!o || !node) return pl_error(PL_ERR_ARGUMENT, "pillar_quantize_options_exclude: NULL argument");
    char **l = realloc(o->exclude, (size_t)(o->nexclude + 1) * sizeof *l);
    if (!l) return nomem();
    o->exclude = l;
    if (!(l[o->nexclude] = strdup(node))) return nomem();
    o->nexclude++;
    return PL_OK;
}

pillar_status pillar_quantize_options_set_threads(pillar_quantize_options *o, int threads) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_quantize_options_set_threads: options is NULL");
    if (threads < 0 || threads > 1024) return pl_error(PL_ERR_ARGUMENT, "threads must be between 0 and 1024, not %d", threads);
    o->threads = threads;
    return PL_OK;
}
