/* session.c -- planning and running a model.
 *
 * Planning (at session creation, or at the first run when an input shape is only known
 * then): shape inference node by node in topological order; nodes whose inputs are all
 * known are run once and become constants (constant folding, which also resolves the
 * Shape -> Gather -> Concat -> Reshape chains of exported models); the remaining nodes
 * form the execution list. Nodes whose output shape depends on run-time values
 * (NonZero, a Reshape fed by a computed shape) are marked dynamic and re-inferred at
 * each run; everything else gets a fixed place in one arena, laid out by liveness.
 *
 * Memory: the session's graph shares the model's constants (pl_graph_clone_shared), and
 * once a plan is final (every input shape fixed) the raw constants that no step reads
 * any more, because their only readers packed them in prepare(), are let go. */
#include "exec/session.h"
#include "exec/columns.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "graph/passes.h"
#include "graph/halos_pass.h"

typedef struct live_block {
    int64_t off, size;
    int last;
} live_block;

static bool shapes_final(const struct pillar_session *s);
static void keep_always(const pl_graph *g, bool *keep);
static void release_early(pl_session *s, const pl_node *n, unsigned packed, const int *uses,
                          const bool *keep);

static pl_status nomem(void) { return pl_error(PL_ERR_NOMEM, "out of memory while planning the session"); }

static void free_steps(pl_session *s) {
    for (int i = 0; i < s->nsteps; i++) {
        const pl_op *op = s->g->nodes[s->steps[i].node].op;
        if (s->steps[i].state && op->release) op->release(s->steps[i].state);
        free(s->steps[i].in);
        free(s->steps[i].out);
    }
    free(s->steps);
    s->steps = NULL;
    s->nsteps = 0;
    free(s->step_params);
    free(s->step_zeros);
    free(s->step_macs);
    s->step_params = s->step_zeros = s->step_macs = NULL;
    free(s->step_ms);
    free(s->step_calls);
    s->step_ms = NULL;
    s->step_calls = NULL;
}

/* Values computed by a previous plan are forgotten; constants from the file stay. */
static void reset_plan(pl_session *s) {
    pl_graph *g = s->g;
    for (int v = 0; v < g->nvalues; v++) {
        pl_value *val = &g->values[v];
        if (val->kind == PL_VALUE_CONST && val->producer < 0) continue;
        if (val->kind == PL_VALUE_INPUT || val->kind == PL_VALUE_OUTER) {
            val->t.data = NULL;
            val->t.owns = false;
            if (val->kind == PL_VALUE_OUTER) val->t.ndim = -1;
            continue;
        }
        pl_tensor_free_data(&val->t);
        if (val->producer >= 0) {
            val->kind = PL_VALUE_INTERMEDIATE;
            val->t.ndim = -1;
        }
    }
    pl_columns_free(s);
    free_steps(s);
    free(s->arena);
    s->arena = NULL;
    s->arena_bytes = 0;
    free(s->scratch);
    s->scratch = NULL;
    s->scratch_bytes = 0;
    s->planned = false;
}

static const pl_shape_opt *find_opt(const pl_shape_opt *list, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0) return &list[i];
    return NULL;
}

/* The shape an input is planned with: given at run time, else from the options, else
 * declared in the model with symbolic dims filled from the options. Returns false if
 * some dimension is still unknown. */
static bool input_shape(const pl_session *s, int idx, const pl_tensor *given, pl_tensor *t) {
    const pl_value *v = &s->g->values[s->g->inputs[idx]];
    *t = s->decl ? s->decl[idx] : v->t;
    t->data = NULL;
    t->owns = false;
    if (given) {
        pl_tensor_set_shape(t, s->parent ? given->dtype : t->dtype, given->ndim, given->dims);
        return true;
    }
    const pl_shape_opt *o = find_opt(s->opts.shapes, s->opts.nshapes, v->name);
    if (o) {
        pl_tensor_set_shape(t, v->t.dtype, o->ndim, o->dims);
        return true;
    }
    if (t->ndim < 0) return false;
    for (int d = 0; d < t->ndim; d++) {
        if (t->dims[d] >= 0) continue;
        const pl_shape_opt *sym = v->dim_names[d] ? find_opt(s->opts.dims, s->opts.ndims, v->dim_names[d]) : NULL;
        if (!sym) return false;
        t->dims[d] = sym->dims[0];
    }
    return true;
}

static pl_status check_outputs(const pl_op_ctx *c) {
    for (int k = 0; k < c->nout; k++) {
        const pl_tensor *t = c->out[k];
        if (!t) continue;
        if (t->ndim < 0 || t->ndim > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_INTERNAL, "shape inference left output %d without a shape", k);
        if (pl_numel(t) < 0)
            return pl_op_error(c, PL_ERR_MODEL, "output %d has a negative or overflowing shape", k);
        if (pl_dtype_size(t->dtype) == 0)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "output %d has type %s", k, pl_dtype_name(t->dtype));
    }
    return PL_OK;
}

static pl_status run_subgraph(const pl_op_ctx *c, pl_graph *g, int nin, const pl_tensor *const *in, int nout,
                              pl_tensor *out);

static void make_ctx(pl_session *s, const pl_node *n, pl_tensor **in, pl_tensor **out, pl_op_ctx *c) {
    c->subgraph = run_subgraph;
    c->exec = s;
    c->pool = s->pool;
    c->scratch = s->scratch;
    c->scratch_size = s->scratch_bytes;
    for (int k = 0; k < n->nin; k++) in[k] = n->in[k] >= 0 ? &s->g->values[n->in[k]].t : NULL;
    for (int k = 0; k < n->nout; k++) out[k] = n->out[k] >= 0 ? &s->g->values[n->out[k]].t : NULL;
    c->node = n;
    c->opset = n->opset;
    c->nin = n->nin;
    c->nout = n->nout;
    c->in = in;
    c->out = out;
}

/* Multiply-accumulates of the common heavy ops, for `pillar inspect`. */
static int64_t node_macs(const pl_node *n, pl_tensor **in, pl_tensor **out) {
    if (!out[0] || out[0]->ndim < 0) return 0;
    int64_t on = pl_numel(out[0]);
    const char *op = n->op_type;
    if ((!strcmp(op, "Conv") || !strcmp(op, "ConvInteger") || !strcmp(op, "QLinearConv"))) {
        const pl_tensor *w = in[!strcmp(op, "QLinearConv") ? 3 : 1];
        if (!w || w->ndim < 2 || w->dims[0] == 0) return 0;
        return on * (pl_numel(w) / w->dims[0]);
    }
    if (!strcmp(op, "ConvTranspose")) {
        const pl_tensor *x = in[0], *w = in[1];
        if (!x || !w || w->ndim < 2 || w->dims[0] == 0 || x->ndim < 0) return 0;
        return pl_numel(x) * (pl_numel(w) / w->dims[0]);
    }
    if (!strcmp(op, "MatMul") || !strcmp(op, "MatMulInteger") || !strcmp(op, "Gemm")) {
        const pl_tensor *a = in[0];
        if (!a || a->ndim < 1) return 0;
        int64_t k = a->dims[a->ndim - 1];
        if (!strcmp(op, "Gemm") && pl_attr_int(n, "transA", 0) && a->ndim == 2) k = a->dims[0];
        return on * k;
    }
    return 0;
}

/* Zeros among the elements of a float tensor (sparsity shown by inspect and bench). A
 * typed loop: the weights of a large model are scanned at every session creation. */
static int64_t count_zeros(const pl_tensor *t) {
    int64_t n = pl_numel(t), z = 0;
    switch (t->dtype) {
    case PL_F32: {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++) z += p[i] == 0.0f;
        break;
    }
    case PL_F64: {
        const double *p = t->data;
        for (int64_t i = 0; i < n; i++) z += p[i] == 0.0;
        break;
    }
    case PL_F16:
    case PL_BF16: { /* +0 and -0: every bit but the sign clear */
        const uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++) z += (p[i] & 0x7fff) == 0;
        break;
    }
    case PL_I8: {
        const int8_t *p = t->data;
        for (int64_t i = 0; i < n; i++) z += p[i] == 0;
        break;
    }
    default:
        break;
    }
    return z;
}

static pl_status plan_memory(pl_session *s) {
    pl_graph *g = s->g;
    int nv = g->nvalues;
    int *first = malloc((size_t)nv * sizeof(int)), *last = malloc((size_t)nv * sizeof(int));
    free(s->value_offset);
    s->value_offset = malloc((size_t)nv * sizeof(int64_t));
    live_block *blocks = malloc((size_t)(nv ? nv : 1) * sizeof(live_block));
    if (!first || !last || !s->value_offset || !blocks) {
        free(first); free(last); free(blocks);
        return nomem();
    }
    for (int v = 0; v < nv; v++) {
        first[v] = -1;
        last[v] = -1;
        s->value_offset[v] = -1;
    }
    for (int i = 0; i < s->nsteps; i++) {
        const pl_node *n = &g->nodes[s->steps[i].node];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0 && last[n->in[k]] < i) last[n->in[k]] = i;
        if (s->steps[i].dynamic) continue;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0) {
                first[n->out[k]] = i;
                if (last[n->out[k]] < i) last[n->out[k]] = i;
            }
    }
    for (int k = 0; k < g->noutputs; k++) last[g->outputs[k]] = s->nsteps;
    pl_columns_extend_live(s, last); /* a chain reads its input until its last step */
    int nb = 0;
    int64_t top = 0;
    for (int i = 0; i < s->nsteps; i++) {
        const pl_node *n = &g->nodes[s->steps[i].node];
        if (s->steps[i].dynamic) continue;
        for (int k = 0; k < n->nout; k++) {
            int v = n->out[k];
            if (v < 0 || first[v] != i) continue;
            if (g->values[v].t.dtype == PL_STRING) continue; /* strings own their elements */
            if (s->col_internal && s->col_internal[v]) continue; /* inside a column chain */
            int64_t size = ((int64_t)pl_nbytes(&g->values[v].t) + 63) & ~(int64_t)63;
            if (size == 0) size = 64;
            /* drop blocks that died before this step, then first-fit between the rest */
            int live = 0;
            for (int b = 0; b < nb; b++)
                if (blocks[b].last >= i) blocks[live++] = blocks[b];
            nb = live;
            for (int a = 1; a < nb; a++) { /* insertion sort by offset */
                live_block x = blocks[a];
                int b = a - 1;
                while (b >= 0 && blocks[b].off > x.off) {
                    blocks[b + 1] = blocks[b];
                    b--;
                }
                blocks[b + 1] = x;
            }
            int64_t off = 0;
            for (int b = 0; b < nb; b++) {
                if (blocks[b].off - off >= size) break;
                if (blocks[b].off + blocks[b].size > off) off = blocks[b].off + blocks[b].size;
            }
            blocks[nb++] = (live_block){off, size, last[v]};
            s->value_offset[v] = off;
            if (off + size > top) top = off + size;
        }
    }
    free(first); free(last); free(blocks);
    s->arena_bytes = (size_t)top;
    s->arena = top ? aligned_alloc(64, (size_t)top) : NULL;
    if (top && !s->arena) return pl_error(PL_ERR_NOMEM, "out of memory: the session needs %lld bytes for intermediate tensors", (long long)top);
    for (int i = 0; i < s->nsteps; i++) {
        const pl_node *n = &g->nodes[s->steps[i].node];
        for (int k = 0; k < n->nout && !s->steps[i].dynamic; k++)
            if (n->out[k] >= 0 && g->values[n->out[k]].t.dtype == PL_STRING) PL_TRY(pl_tensor_alloc(&g->values[n->out[k]].t));
    }
    for (int v = 0; v < nv; v++) {
        if (s->value_offset[v] < 0) continue;
        pl_tensor *t = &g->values[v].t;
        t->data = s->arena + s->value_offset[v];
        t->owns = false;
        t->cap = pl_nbytes(t);
    }
    return PL_OK;
}

static pl_status plan_steps(pl_session *s, const int *uses, const bool *keep);
static pl_status release_decided(pl_session *s, bool all, int *done, const int *uses, const bool *keep);

/* Plans for the given input shapes (given[i] may be NULL: use options / declared). */
static pl_status plan(pl_session *s, const pl_tensor *const *given) {
    pl_graph *g = s->g;
    if (s->weights_released) /* cannot happen with fixed input shapes; stay safe */
        return pl_error(PL_ERR_INTERNAL,
                        "the session cannot be planned again: it released the raw weights it packed");
    reset_plan(s);
    for (int i = 0; i < g->ninputs; i++) {
        pl_tensor t;
        if (!input_shape(s, i, given ? given[i] : NULL, &t)) return PL_NEED_VALUE;
        pl_value *v = &g->values[g->inputs[i]];
        if (pl_numel(&t) < 0) return pl_error(PL_ERR_INPUT, "input '%s': shape overflows", v->name);
        v->t.ndim = t.ndim;
        v->t.dtype = t.dtype;
        memcpy(v->t.dims, t.dims, sizeof t.dims);
        v->t.data = NULL;
    }
    /* a subgraph reads enclosing values as they are now (it is re-planned per call) */
    for (int v = 0; v < g->nvalues; v++) {
        pl_value *val = &g->values[v];
        if (val->kind != PL_VALUE_OUTER) continue;
        const pl_tensor *src = NULL;
        for (pl_session *p = s->parent; p && !src; p = p->parent) {
            int id = pl_graph_find_value(p->g, val->name);
            if (id >= 0 && p->g->values[id].t.ndim >= 0) src = &p->g->values[id].t;
        }
        if (!src) return pl_error(PL_ERR_MODEL, "subgraph value '%s' is not defined in an enclosing graph", val->name);
        val->t = *src;
        val->t.owns = false;
        val->t.cap = 0;
    }
    s->steps = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(pl_step));
    s->step_params = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(int64_t));
    s->step_zeros = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(int64_t));
    s->step_macs = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(int64_t));
    s->step_ms = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(double));
    s->step_calls = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(int64_t));
    if (!s->steps || !s->step_params || !s->step_zeros || !s->step_macs || !s->step_ms ||
        !s->step_calls)
        return nomem();
    /* a final plan lets packed raw weights go as it goes (release_early) */
    int *uses = NULL;
    bool *keep = NULL;
    if (shapes_final(s)) {
        uses = calloc((size_t)g->nvalues + 1, sizeof *uses);
        keep = calloc((size_t)g->nvalues + 1, sizeof *keep);
        if (!uses || !keep) {
            free(uses);
            free(keep);
            return nomem();
        }
        keep_always(g, keep);
        for (int i = 0; i < g->nnodes; i++)
            for (int k = 0; k < g->nodes[i].nin; k++)
                if (g->nodes[i].in[k] >= 0) uses[g->nodes[i].in[k]]++;
    }
    pl_status st = pl_columns_begin(s);
    if (st == PL_OK) st = plan_steps(s, uses, keep);
    free(uses);
    free(keep);
    PL_TRY(st);
    PL_TRY(pl_columns_finish(s));
    PL_TRY(plan_memory(s));
    if (s->scratch_bytes) {
        s->scratch_bytes = (s->scratch_bytes + 63) & ~(size_t)63;
        if (!(s->scratch = aligned_alloc(64, s->scratch_bytes)))
            return pl_error(PL_ERR_NOMEM, "out of memory: %zu bytes of scratch", s->scratch_bytes);
    }
    s->planned = true;
    return PL_OK;
}

/* plan(), node by node: infer, fold or prepare, count weights. */
static pl_status plan_steps(pl_session *s, const int *uses, const bool *keep) {
    pl_graph *g = s->g;
    int col_released = 0; /* steps before it: release_decided() is done with them */
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        pl_tensor **in = calloc((size_t)n->nin + 1, sizeof *in), **out = calloc((size_t)n->nout + 1, sizeof *out);
        if (!in || !out) {
            free(in); free(out);
            return nomem();
        }
        pl_op_ctx c = {0};
        make_ctx(s, n, in, out, &c);
        c.planning = true;
        bool known = true, all_const = true;
        for (int k = 0; k < n->nin; k++) {
            if (!in[k]) continue;
            if (in[k]->ndim < 0) known = false;
            if (!in[k]->data) all_const = false;
        }
        pl_status st = known ? n->op->infer(&c) : PL_NEED_VALUE;
        if (st == PL_OK) st = check_outputs(&c);
        bool dynamic = st == PL_NEED_VALUE;
        if (st != PL_OK && !dynamic) {
            free(in); free(out);
            return st;
        }
        if (dynamic) {
            for (int k = 0; k < n->nout; k++)
                if (out[k]) out[k]->ndim = -1;
        } else if (!(n->op->flags & PL_OP_NOFOLD) && (all_const || (n->op->flags & PL_OP_FOLD_SHAPE))) {
            for (int k = 0; k < n->nout && st == PL_OK; k++)
                if (out[k]) st = pl_tensor_alloc(out[k]);
            c.planning = false;
            if (st == PL_OK) st = n->op->run(&c);
            free(in); free(out);
            if (st != PL_OK) return st;
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0) g->values[n->out[k]].kind = PL_VALUE_CONST;
            continue;
        }
        pl_step *step = &s->steps[s->nsteps];
        step->node = i;
        step->dynamic = dynamic;
        step->in = in;
        step->out = out;
        if (!dynamic && n->op->prepare) {
            c.state = NULL;
            c.scratch_size = 0;
            c.kernel[0] = 0;
            c.packed_inputs = 0;
            st = n->op->prepare(&c);
            step->packed_inputs = c.packed_inputs;
            step->state = c.state;
            memcpy(step->kernel, c.kernel, sizeof step->kernel);
            step->kernel[sizeof step->kernel - 1] = 0;
            if (st != PL_OK) {
                s->nsteps++; /* so that free_steps releases it */
                return st;
            }
            if (c.scratch_size > s->scratch_bytes) s->scratch_bytes = c.scratch_size;
        }
        for (int k = 0; k < n->nin; k++) {
            /* weights: float constants, and int8 matrices (quantized weights) */
            if (!in[k] || !in[k]->data) continue;
            if (!pl_dtype_is_float(in[k]->dtype) && !(in[k]->dtype == PL_I8 && in[k]->ndim >= 2)) continue;
            s->step_params[s->nsteps] += pl_numel(in[k]);
            /* a Gather reads only the rows it picks: counting the zeros of its table would
             * make a mapped embedding table resident (src/onnx/import.c) */
            if (k == 0 && !strcmp(n->op_type, "Gather")) continue;
            s->step_zeros[s->nsteps] += count_zeros(in[k]);
        }
        s->step_macs[s->nsteps] = dynamic ? 0 : node_macs(n, in, out);
        /* a column chain plans its band convolutions from the raw weights later */
        bool col_cand = !s->parent && !strcmp(n->op_type, "Conv") && pl_columns_requested(s) != PILLAR_SCHEDULE_LAYERS;
        if (uses && step->packed_inputs && !col_cand) release_early(s, n, step->packed_inputs, uses, keep);
        s->nsteps++;
        if (uses) PL_TRY(release_decided(s, false, &col_released, uses, keep));
    }
    if (uses) PL_TRY(release_decided(s, true, &col_released, uses, keep));
    return PL_OK;
}

/* During a final plan: the Conv steps whose column chain is decided (band plans made
 * from their raw weights, or left layer by layer) let their packed raw weights go, so
 * that raw and packed weights of the whole model never coexist. */
static pl_status release_decided(pl_session *s, bool all, int *done, const int *uses, const bool *keep) {
    int decided = s->nsteps;
    PL_TRY(pl_columns_advance(s, all, &decided));
    for (; *done < decided; (*done)++) {
        const pl_step *sp = &s->steps[*done];
        const pl_node *n = &s->g->nodes[sp->node];
        bool col_cand = !s->parent && !strcmp(n->op_type, "Conv") && pl_columns_requested(s) != PILLAR_SCHEDULE_LAYERS;
        if (col_cand && sp->packed_inputs) release_early(s, n, sp->packed_inputs, uses, keep);
    }
    return PL_OK;
}

/* Whether a plan is the last one: every input's shape is fixed by the model or the
 * options, so a run with another shape is refused instead of re-planned. */
static bool shapes_final(const pl_session *s) {
    if (s->parent) return false; /* subgraphs re-plan at every call */
    for (int k = 0; k < s->g->ninputs; k++) {
        pl_tensor t;
        if (!input_shape(s, k, NULL, &t) || t.ndim < 0) return false;
    }
    return true;
}

/* Marks in keep[] the values of `g` that subgraphs (at any depth) below `sg` read from
 * an enclosing scope, by name. */
static void keep_outer(const pl_graph *g, const pl_graph *sg, bool *keep) {
    for (int v = 0; sg != g && v < sg->nvalues; v++)
        if (sg->values[v].kind == PL_VALUE_OUTER) {
            int id = pl_graph_find_value(g, sg->values[v].name);
            if (id >= 0) keep[id] = true;
        }
    for (int i = 0; i < sg->nnodes; i++)
        for (int a = 0; a < sg->nodes[i].nattr; a++)
            if (sg->nodes[i].attrs[a].g) keep_outer(g, sg->nodes[i].attrs[a].g, keep);
}

/* Values no release may touch: graph outputs and what subgraphs read. */
static void keep_always(const pl_graph *g, bool *keep) {
    for (int k = 0; k < g->noutputs; k++) keep[g->outputs[k]] = true;
    keep_outer(g, g, keep);
}

static void release_value(pl_session *s, int v) {
    pl_value *val = &s->g->values[v];
    if (val->kind != PL_VALUE_CONST || !val->t.data || val->t.dtype == PL_STRING) return;
    s->released_bytes += pl_nbytes(&val->t);
    pl_value_drop_data(val);
    s->weights_released = true;
}

/* During a final plan, right after node `n` packed its inputs: the constants whose
 * every use in the graph is a packed input of `n` go at once, so that a session whose
 * model is gone (pillar_session_create_from) never holds a layer's raw and packed
 * weights for the whole model together. uses[v]: v's inputs slots over all nodes. */
static void release_early(pl_session *s, const pl_node *n, unsigned packed, const int *uses,
                          const bool *keep) {
    for (int k = 0; k < n->nin && k < 32; k++) {
        int v = n->in[k];
        if (v < 0 || !(packed >> k & 1u) || keep[v]) continue;
        int here = 0;
        for (int j = 0; j < n->nin && j < 32; j++) here += n->in[j] == v && (packed >> j & 1u);
        if (uses[v] == here) release_value(s, v);
    }
}

/* After a final plan: lets go of every constant that no step will read again -- read
 * only by steps that packed it (pl_step.packed_inputs), or by no step at all (folded
 * away, or replaced by a graph pass) -- unless it is a graph output or a subgraph reads
 * it. The values keep their dtype and dims for the ops' infer(). For a constant shared
 * with the model this drops the session's share (freed with the model, or now if the
 * model is gone). */
static pl_status release_packed(pl_session *s) {
    pl_graph *g = s->g;
    bool *keep = calloc((size_t)g->nvalues + 1, sizeof *keep);
    if (!keep) return nomem();
    keep_always(g, keep);
    for (int i = 0; i < s->nsteps; i++) {
        const pl_step *st = &s->steps[i];
        const pl_node *n = &g->nodes[st->node];
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] < 0) continue;
            bool packed = k < 32 && (st->packed_inputs >> k & 1u);
            if (!packed) keep[n->in[k]] = true;
        }
    }
    for (int v = 0; v < g->nvalues; v++)
        if (!keep[v]) release_value(s, v);
    free(keep);
    return PL_OK;
}

static pl_status plan_checked(pl_session *s, const pl_tensor *const *given) {
    pl_status st = plan(s, given);
    if (st == PL_OK && shapes_final(s)) st = release_packed(s);
    if (st != PL_OK && st != PL_NEED_VALUE) pl_error_prefix("%s", s->model_info->path);
    return st;
}

/* Both ways of making a session; with `take` (== m) the model is freed once its nodes
 * are resolved, so that the session holds the only share of each weight and planning
 * frees raw weights as their kernels pack them. */
static pl_status create(const pl_model *m, const pl_options *o, pl_session **out, pl_model *take) {
    pl_session *s = calloc(1, sizeof *s);
    if (!s) {
        pl_model_free(take);
        return nomem();
    }
    pl_status st = PL_OK;
    s->model_info = calloc(1, sizeof(pl_model));
    /* the model stays unchanged for its users: only who owns its constants' data does */
    s->g = pl_graph_clone_shared(m->graph, NULL);
    if (!s->model_info || !s->g || !(s->model_info->path = strdup(m->path))) {
        st = nomem();
        goto fail;
    }
    if (o) {
        s->opts.threads = o->threads;
        s->opts.lsh_k = o->lsh_k, s->opts.lsh_l = o->lsh_l, s->opts.lsh_topk = o->lsh_topk;
        s->opts.schedule = o->schedule, s->opts.schedule_set = o->schedule_set;
        s->opts.shapes = calloc((size_t)o->nshapes + 1, sizeof(pl_shape_opt));
        s->opts.dims = calloc((size_t)o->ndims + 1, sizeof(pl_shape_opt));
        if (!s->opts.shapes || !s->opts.dims) {
            st = nomem();
            goto fail;
        }
        for (int i = 0; i < o->nshapes; i++) {
            s->opts.shapes[i] = o->shapes[i];
            if (!(s->opts.shapes[i].name = strdup(o->shapes[i].name))) {
                st = nomem();
                goto fail;
            }
            s->opts.nshapes = i + 1;
        }
        for (int i = 0; i < o->ndims; i++) {
            s->opts.dims[i] = o->dims[i];
            if (!(s->opts.dims[i].name = strdup(o->dims[i].name))) {
                st = nomem();
                goto fail;
            }
            s->opts.ndims = i + 1;
        }
    }
    pl_graph *g = s->g;
    const char *path = s->model_info->path;
    if (!(s->decl = calloc((size_t)g->ninputs + 1, sizeof(pl_tensor)))) {
        st = nomem();
        goto fail;
    }
    for (int i = 0; i < g->ninputs; i++) {
        s->decl[i] = g->values[g->inputs[i]].t;
        s->decl[i].data = NULL;
        s->decl[i].owns = false;
    }
    for (int i = 0; i < g->nnodes; i++) {
        pl_node *n = &g->nodes[i];
        n->op = pl_op_find(n->domain, n->op_type);
        n->opset = pl_model_opset(m, n->domain);
        if (!n->op) {
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: node '%s': op '%s'%s%s%s is not supported", m->path, n->name, n->op_type,
                          n->domain[0] ? " (domain '" : "", n->domain, n->domain[0] ? "')" : "");
            goto fail;
        }
    }
    if (take) { /* nothing below reads the model */
        pl_model_free(take);
        take = NULL;
        m = NULL;
    }
    for (int i = 0; i < g->ninputs; i++) {
        const pl_value *v = &g->values[g->inputs[i]];
        if (v->t.ndim == -2 || pl_dtype_size(v->t.dtype) == 0) {
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: input '%s' has type %s, which is not supported", path, v->name,
                          v->t.ndim == -2 ? "sequence/map/optional" : pl_dtype_name(v->t.dtype));
            goto fail;
        }
    }
    for (int i = 0; i < s->opts.nshapes; i++) {
        const pl_shape_opt *so = &s->opts.shapes[i];
        int id = -1;
        for (int k = 0; k < g->ninputs; k++)
            if (!strcmp(g->values[g->inputs[k]].name, so->name)) id = g->inputs[k];
        if (id < 0) {
            st = pl_error(PL_ERR_ARGUMENT, "%s: a shape is given for '%s', which is not an input of the model", path, so->name);
            goto fail;
        }
        int di = 0;
        while (g->inputs[di] != id) di++;
        const pl_tensor *dt = &s->decl[di];
        bool ok = dt->ndim < 0 || dt->ndim == so->ndim;
        for (int d = 0; ok && dt->ndim >= 0 && d < so->ndim; d++) ok = dt->dims[d] < 0 || dt->dims[d] == so->dims[d];
        if (!ok) {
            char a[128], b[128];
            pl_tensor tmp = {.ndim = so->ndim};
            memcpy(tmp.dims, so->dims, sizeof tmp.dims);
            st = pl_error(PL_ERR_INPUT, "%s: shape %s given for input '%s' does not fit its declared shape %s", path,
                          pl_shape_str(&tmp, a, sizeof a), so->name, pl_shape_str(dt, b, sizeof b));
            goto fail;
        }
    }
    {
        const char *lvl = getenv("PILLAR_OPT");
        st = pl_graph_optimize(g, lvl && lvl[0] == '0' ? 0 : 1);
        if (st == PL_OK && s->opts.lsh_k > 0) st = pl_graph_lsh_output(g, s->opts.lsh_k, s->opts.lsh_l, s->opts.lsh_topk);
        if (st != PL_OK) {
            pl_error_prefix("%s", path);
            goto fail;
        }
    }
    s->poison = getenv("PILLAR_POISON") && getenv("PILLAR_POISON")[0] == '1';
    s->profile_clock = getenv("PILLAR_PROFILE_CPU") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    /* worker threads: a pool of one is no pool */
    if (s->opts.threads != 1) {
        s->pool = pl_threadpool_create(s->opts.threads);
        if (s->pool && pl_threadpool_size(s->pool) < 2) {
            pl_threadpool_destroy(s->pool);
            s->pool = NULL;
        }
    }
    st = plan_checked(s, NULL);
    if (st == PL_NEED_VALUE) st = PL_OK; /* planned at the first run */
    if (st != PL_OK) goto fail;
    *out = s;
    return PL_OK;
fail:
    pillar_session_destroy(s);
    pl_model_free(take);
    return st;
}

pillar_status pillar_session_create(const pillar_model *m, const pillar_options *o,
                                    pillar_session **out) {
    pl_error_clear();
    if (!m || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_session_create: NULL argument");
    return create(m, o, out, NULL);
}

pillar_status pillar_session_create_from(pillar_model **m, const pillar_options *o,
                                         pillar_session **out) {
    pl_error_clear();
    pl_model *take = m ? *m : NULL;
    if (m) *m = NULL;
    if (!take || !out) {
        pl_model_free(take);
        return pl_error(PL_ERR_ARGUMENT, "pillar_session_create_from: NULL argument");
    }
    return create(take, o, out, take);
}

void pillar_session_destroy(pillar_session *s) {
    if (!s) return;
    for (int i = 0; i < s->nsubs; i++) pillar_session_destroy(s->subs[i]);
    free(s->subs);
    if (s->parent) { /* borrowed graph: release what planning put in it */
        reset_plan(s);
        free(s->value_offset);
        if (s->model_info) free(s->model_info->path);
        free(s->model_info);
        free(s);
        return;
    }
    pl_columns_free(s);
    free_steps(s);
    if (s->g) {
        for (int i = 0; i < s->g->ninputs; i++) s->g->values[s->g->inputs[i]].t.data = NULL;
        for (int v = 0; v < s->g->nvalues; v++)
            if (!s->g->values[v].t.owns) s->g->values[v].t.data = NULL;
    }
    pl_graph_free(s->g);
    free(s->arena);
    free(s->value_offset);
    free(s->decl);
    free(s->scratch);
    pl_threadpool_destroy(s->pool);
    for (int i = 0; i < s->opts.nshapes; i++) free(s->opts.shapes[i].name);
    for (int i = 0; i < s->opts.ndims; i++) free(s->opts.dims[i].name);
    free(s->opts.shapes);
    free(s->opts.dims);
    if (s->model_info) free(s->model_info->path);
    free(s->model_info);
    free(s);
}

static double now_ms(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* One step: re-infers a dynamic node, clears (or poisons) its outputs, runs it. */
static pl_status run_step(pl_session *s, pl_step *st) {
    const pl_node *n = &s->g->nodes[st->node];
    pl_op_ctx c = {0};
    make_ctx(s, n, st->in, st->out, &c);
    c.planning = false;
    c.state = st->state;
    if (st->dynamic && (n->op->flags & PL_OP_SELF_ALLOC)) {
        PL_TRY(n->op->run(&c));
        return check_outputs(&c);
    }
    if (st->dynamic) {
        for (int k = 0; k < n->nin; k++)
            if (st->in[k] && !st->in[k]->data)
                return pl_op_error(&c, PL_ERR_INTERNAL, "input %d has no value at run time", k);
        PL_TRY(n->op->infer(&c));
        PL_TRY(check_outputs(&c));
        for (int k = 0; k < n->nout; k++)
            if (st->out[k]) PL_TRY(pl_tensor_alloc(st->out[k]));
    }
    bool writes_all = (n->op->flags & PL_OP_WRITES_ALL) != 0;
    for (int k = 0; k < n->nout; k++)
        if (st->out[k] && st->out[k]->data) {
            if (st->out[k]->dtype == PL_STRING && st->out[k]->owns) {
                pl_tensor_free_data(st->out[k]); /* strings: always fresh (NULL) */
                PL_TRY(pl_tensor_alloc(st->out[k]));
            } else if (writes_all) {
                if (s->poison) memset(st->out[k]->data, 0xff, pl_nbytes(st->out[k]));
            } else {
                memset(st->out[k]->data, 0, pl_nbytes(st->out[k]));
            }
        }
    PL_TRY(n->op->run(&c));
    return PL_OK;
}

/* Step i, or the whole column chain it starts (the chain's other steps do nothing). */
static pl_status run_one(pl_session *s, int i) {
    const pl_step *st = &s->steps[i];
    if (!st->chain) return run_step(s, &s->steps[i]);
    if (i > 0 && s->steps[i - 1].chain == st->chain) return PL_OK;
    pl_status r = pl_columns_run(s, st->chain - 1);
    if (r != PL_OK) pl_error_prefix("node '%s'", s->g->nodes[st->node].name);
    return r;
}

static pl_status run_steps(pl_session *s) {
    bool prof = s->profiling && s->step_ms;
    for (int i = 0; i < s->nsteps; i++) {
        if (!prof) {
            PL_TRY(run_one(s, i));
            continue;
        }
        double t0 = now_ms(s->profile_clock);
        pl_status st = run_one(s, i);
        s->step_ms[i] += now_ms(s->profile_clock) - t0;
        s->step_calls[i]++;
        if (st != PL_OK) return st;
    }
    return PL_OK;
}

pillar_status pillar_session_run(pillar_session *s, size_t n_inputs, const char *const *names,
                                 const pillar_tensor *const *inputs, size_t n_outputs,
                                 const char *const *output_names, pillar_tensor **outputs) {
    pl_error_clear();
    if (!s || (n_inputs && (!names || !inputs)) || (n_outputs && !outputs))
        return pl_error(PL_ERR_ARGUMENT, "pillar_session_run: NULL argument");
    pl_graph *g = s->g;
    const char *path = s->model_info->path;
    const pl_tensor **bound = calloc((size_t)g->ninputs + 1, sizeof *bound);
    if (!bound) return nomem();
    pl_status st = PL_OK;
    for (size_t i = 0; i < n_inputs; i++) {
        if (!names[i] || !inputs[i]) {
            st = pl_error(PL_ERR_ARGUMENT, "pillar_session_run: input %zu is NULL", i);
            goto done;
        }
        int k = 0;
        while (k < g->ninputs && strcmp(g->values[g->inputs[k]].name, names[i]) != 0) k++;
        if (k == g->ninputs) {
            st = pl_error(PL_ERR_INPUT, "%s: '%s' is not an input of the model", path, names[i]);
            goto done;
        }
        if (bound[k]) {
            st = pl_error(PL_ERR_INPUT, "%s: input '%s' is given twice", path, names[i]);
            goto done;
        }
        const pl_value *v = &g->values[g->inputs[k]];
        const pl_tensor *t = inputs[i];
        if (t->dtype != v->t.dtype) {
            st = pl_error(PL_ERR_INPUT, "%s: input '%s' must be %s, got %s", path, names[i], pl_dtype_name(v->t.dtype), pl_dtype_name(t->dtype));
            goto done;
        }
        if (t->ndim < 0 || t->ndim > PL_MAX_DIMS || pl_numel(t) < 0 || (pl_numel(t) > 0 && !t->data)) {
            st = pl_error(PL_ERR_INPUT, "%s: input '%s' is not a valid tensor", path, names[i]);
            goto done;
        }
        bound[k] = t;
    }
    for (int k = 0; k < g->ninputs; k++)
        if (!bound[k]) {
            st = pl_error(PL_ERR_INPUT, "%s: input '%s' is not given", path, g->values[g->inputs[k]].name);
            goto done;
        }
    /* shapes must fit what the model declares; a change of a free dimension re-plans */
    bool same = s->planned;
    for (int k = 0; k < g->ninputs; k++) {
        const pl_value *v = &g->values[g->inputs[k]];
        const pl_tensor *t = bound[k];
        pl_tensor declared;
        bool fixed = input_shape(s, k, NULL, &declared) && declared.ndim >= 0;
        bool ok = true;
        if (fixed) {
            ok = declared.ndim == t->ndim;
            for (int d = 0; ok && d < t->ndim; d++) ok = declared.dims[d] == t->dims[d];
        } else if (s->decl[k].ndim >= 0) {
            declared = s->decl[k];
            ok = declared.ndim == t->ndim;
            for (int d = 0; ok && d < t->ndim; d++) ok = declared.dims[d] < 0 || declared.dims[d] == t->dims[d];
        }
        if (!ok) {
            char a[128], b[128];
            st = pl_error(PL_ERR_INPUT, "%s: input '%s' has shape %s, the model expects %s", path, v->name,
                          pl_shape_str(t, a, sizeof a), pl_shape_str(&declared, b, sizeof b));
            goto done;
        }
        if (same && !pl_tensor_same_shape(&v->t, t)) same = false;
    }
    if (!same) {
        st = plan_checked(s, bound);
        if (st != PL_OK) {
            if (st == PL_NEED_VALUE) st = pl_error(PL_ERR_INTERNAL, "%s: could not plan for the given input shapes", path);
            s->planned = false;
            goto done;
        }
    }
    for (int k = 0; k < g->ninputs; k++) {
        pl_tensor *vt = &g->values[g->inputs[k]].t;
        vt->data = bound[k]->data;
        vt->owns = false;
    }
    st = run_steps(s);
    if (st != PL_OK) {
        pl_error_prefix("%s", path);
        goto done;
    }
    size_t want = output_names ? n_outputs : (size_t)g->noutputs;
    if (!output_names && n_outputs != (size_t)g->noutputs) {
        st = pl_error(PL_ERR_ARGUMENT, "pillar_session_run: the model has %d outputs, %zu requested", g->noutputs, n_outputs);
        goto done;
    }
    for (size_t i = 0; i < want; i++) outputs[i] = NULL;
    for (size_t i = 0; i < want; i++) {
        int id = -1;
        if (output_names) {
            for (int k = 0; k < g->noutputs; k++)
                if (output_names[i] && !strcmp(g->values[g->outputs[k]].name, output_names[i])) id = g->outputs[k];
            if (id < 0) {
                st = pl_error(PL_ERR_ARGUMENT, "%s: '%s' is not an output of the model", path, output_names[i] ? output_names[i] : "(null)");
                break;
            }
        } else {
            id = g->outputs[i];
        }
        pl_tensor *t = calloc(1, sizeof *t);
        if (!t) {
            st = nomem();
            break;
        }
        st = pl_tensor_copy(t, &g->values[id].t);
        outputs[i] = t;
        if (st != PL_OK) break;
    }
    if (st != PL_OK)
        for (size_t i = 0; i < want; i++) {
            pillar_tensor_destroy(outputs[i]);
            outputs[i] = NULL;
        }
done:
    for (int k = 0; k < g->ninputs; k++) g->values[g->inputs[k]].t.data = NULL;
    free(bound);
    return st;
}

size_t pillar_session_node_count(const pillar_session *s) { return s && s->planned ? (size_t)s->nsteps : 0; }

pillar_status pillar_session_node(const pillar_session *s, size_t i, const char **name_out,
                                  const char **op_out, int *ndim_out, const int64_t **dims_out,
                                  int64_t *params_out, double *sparsity_out, int64_t *macs_out) {
    if (!s || !s->planned || i >= (size_t)s->nsteps)
        return pl_error(PL_ERR_ARGUMENT, "pillar_session_node: no node %zu", i);
    const pl_step *st = &s->steps[i];
    const pl_node *n = &s->g->nodes[st->node];
    const pl_tensor *o = NULL;
    for (int k = 0; k < n->nout && !o; k++) o = st->out[k];
    if (name_out) *name_out = n->name;
    if (op_out) *op_out = n->op_type;
    if (ndim_out) *ndim_out = o && !st->dynamic ? o->ndim : -1;
    if (dims_out) *dims_out = o ? o->dims : NULL;
    if (params_out) *params_out = s->step_params[i];
    if (sparsity_out) *sparsity_out = s->step_params[i] ? (double)s->step_zeros[i] / (double)s->step_params[i] : 0.0;
    if (macs_out) *macs_out = s->step_macs[i];
    return PL_OK;
}

const char *pillar_session_node_kernel(const pillar_session *s, size_t i) {
    if (!s || !s->planned || i >= (size_t)s->nsteps) return "";
    return s->steps[i].kernel;
}

size_t pillar_session_arena_bytes(const pillar_session *s) { return s ? s->arena_bytes : 0; }

size_t pillar_session_released_bytes(const pillar_session *s) { return s ? s->released_bytes : 0; }

pillar_status pillar_session_set_profiling(pillar_session *s, int on) {
    if (!s) return pl_error(PL_ERR_ARGUMENT, "pillar_session_set_profiling: session is NULL");
    s->profiling = on != 0;
    if (s->profiling && s->planned) {
        memset(s->step_ms, 0, (size_t)s->nsteps * sizeof *s->step_ms);
        memset(s->step_calls, 0, (size_t)s->nsteps * sizeof *s->step_calls);
    }
    return PL_OK;
}

pillar_status pillar_session_node_time(const pillar_session *s, size_t i, double *ms_total_out,
                                       int64_t *calls_out) {
    if (!s || !s->planned || i >= (size_t)s->nsteps)
        return pl_error(PL_ERR_ARGUMENT, "pillar_session_node_time: no node %zu", i);
    if (ms_total_out) *ms_total_out = s->step_ms[i];
    if (calls_out) *calls_out = s->step_calls[i];
    return PL_OK;
}

/* The session that runs subgraph `g` of the node in `c`, made on first use. */
static pl_status sub_session(pl_session *parent, const pl_op_ctx *c, pl_graph *g, pl_session **out) {
    for (int i = 0; i < parent->nsubs; i++)
        if (parent->subs[i]->g == g) {
            *out = parent->subs[i];
            return PL_OK;
        }
    pl_session **subs = realloc(parent->subs, (size_t)(parent->nsubs + 1) * sizeof *subs);
    if (!subs) return nomem();
    parent->subs = subs;
    pl_session *s = calloc(1, sizeof *s);
    if (!s) return nomem();
    s->parent = parent;
    s->pool = parent->pool;
    s->g = g;
    s->model_info = calloc(1, sizeof(pl_model));
    if (!s->model_info || !(s->model_info->path = strdup(parent->model_info->path))) {
        free(s->model_info);
        free(s);
        return nomem();
    }
    subs[parent->nsubs++] = s;
    for (int i = 0; i < g->nnodes; i++) {
        pl_node *n = &g->nodes[i];
        n->op = pl_op_find(n->domain, n->op_type);
        n->opset = n->domain[0] ? 1 : c->opset;
        if (!n->op)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "subgraph node '%s': op '%s' is not supported", n->name, n->op_type);
    }
    *out = s;
    return PL_OK;
}

static pl_status run_subgraph(const pl_op_ctx *c, pl_graph *g, int nin, const pl_tensor *const *in, int nout,
                              pl_tensor *out) {
    pl_session *s = NULL;
    PL_TRY(sub_session((pl_session *)c->exec, c, g, &s));
    if (nin != g->ninputs)
        return pl_op_error(c, PL_ERR_MODEL, "subgraph takes %d inputs, %d given", g->ninputs, nin);
    if (nout > g->noutputs)
        return pl_op_error(c, PL_ERR_MODEL, "subgraph has %d outputs, %d wanted", g->noutputs, nout);
    pl_status st = plan(s, in);
    if (st == PL_NEED_VALUE) st = pl_op_error(c, PL_ERR_INTERNAL, "cannot plan the subgraph");
    for (int k = 0; st == PL_OK && k < g->ninputs; k++) {
        pl_tensor *vt = &g->values[g->inputs[k]].t;
        vt->data = in[k]->data;
        vt->owns = false;
    }
    if (st == PL_OK) st = run_steps(s);
    for (int k = 0; st == PL_OK && k < nout; k++) st = pl_tensor_copy(&out[k], &g->values[g->outputs[k]].t);
    for (int k = 0; k < g->ninputs; k++) g->values[g->inputs[k]].t.data = NULL;
    return st;
}
