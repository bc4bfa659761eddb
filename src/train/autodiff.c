/* autodiff.c -- the backward schedule of a graph, and replicas that run it.
 *
 * A program classifies every value of the graph: the data input, trainable parameters
 * (read from the graph at each run, never folded), other constants, and computed
 * values. It marks which values need a gradient: those that depend on a parameter (or
 * on the input, for gradient checks) AND influence the target (the logits). Nodes
 * between them run their backward (grad.def) in reverse topological order; nodes off
 * those paths (shape computations, constants) need none.
 *
 * A replica plans the program for one input shape: shape inference node by node;
 * nodes whose inputs are all constant (or that only read shapes) run once at planning
 * and become constants; every other value gets its own buffer, kept until the
 * backward (activations are never overwritten within a step). Buffers only grow, so
 * re-planning for a batch size seen before allocates nothing. */
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

enum { TK_ACT = 0, TK_INPUT = 1, TK_PARAM = 2, TK_CONST = 3 };
enum { NS_RUN = 0, NS_FOLDED = 1, NS_DYNAMIC = 2, NS_SKIP = 3 };

struct tr_program {
    const pl_graph *g;
    int input, target;
    uint8_t *kind;     /* per value: TK_* */
    bool *grad;        /* per value: may carry a gradient (dependence and influence) */
    const pl_op **ops; /* per node */
    const tr_grad **entry;
};

struct tr_replica {
    const tr_program *p;
    int nv, nn;
    pl_tensor *val; /* per value: this replica's view */
    void **vbuf;    /* own buffers of computed values */
    size_t *vcap;
    bool *known;     /* constant at this plan (file constant or folded) */
    pl_tensor *grad; /* per value: gradient (data NULL when it has none) */
    void **gbuf;
    size_t *gcap;
    float **gbound; /* caller-owned gradient buffers of parameters */
    bool *rgrad;    /* gradient wanted at this plan (grad and float32) */
    uint8_t *nstat; /* per node: NS_* */
    bool *bwd;      /* per node: runs a backward at this plan */
    pl_tensor ***nin, ***nout, ***ngin, ***ngout;
    void **state;
    size_t *state_cap;
    void *scratch[TR_SCRATCH_SLOTS];
    size_t scratch_cap[TR_SCRATCH_SLOTS];
    bool planned;
    int plan_ndim;
    int64_t plan_dims[PL_MAX_DIMS];
    pl_dtype plan_dtype;
};

static pl_status nomem(void) {
    return pl_error(PL_ERR_NOMEM, "out of memory preparing the training graph");
}

/* ------------------------------------------------------------------ registry */

#define GRAD(name, bwd, diff) pl_status bwd(tr_ctx *c);
#define GRAD_FWD(name, fwd, bwd, diff)                                                             \
    pl_status fwd(tr_ctx *c);                                                                      \
    pl_status bwd(tr_ctx *c);
#define GRAD_COMMIT(name, fwd, bwd, diff, commit)                                                  \
    GRAD_FWD(name, fwd, bwd, diff)                                                                 \
    pl_status commit(const pl_node *n, int opset, pl_tensor *const *in, void *const *states,       \
                     const int64_t *rows, int nrep);
#include "train/grad.def"
#undef GRAD
#undef GRAD_FWD
#undef GRAD_COMMIT

static const tr_grad grad_table[] = {
#define GRAD(name, bwd, diff) {name, NULL, bwd, diff, NULL},
#define GRAD_FWD(name, fwd, bwd, diff) {name, fwd, bwd, diff, NULL},
#define GRAD_COMMIT(name, fwd, bwd, diff, commit) {name, fwd, bwd, diff, commit},
#include "train/grad.def"
#undef GRAD
#undef GRAD_FWD
#undef GRAD_COMMIT
    {NULL, NULL, NULL, 0, NULL}};

int tr_grad_count(void) {
    return (int)(sizeof grad_table / sizeof grad_table[0]) - 1;
}
const tr_grad *tr_grad_at(int i) {
    return i >= 0 && i < tr_grad_count() ? &grad_table[i] : NULL;
}

const tr_grad *tr_grad_find(const char *op_type) {
    for (int i = 0; i < tr_grad_count(); i++)
        if (!strcmp(grad_table[i].op, op_type)) return &grad_table[i];
    return NULL;
}

/* ------------------------------------------------------------------ helpers for ops */

void *tr_state(tr_ctx *c, size_t bytes) {
    tr_replica *r = c->rep;
    int node = (int)(c->op.node - r->p->g->nodes);
    if (r->state_cap[node] >= bytes && r->state[node]) return r->state[node];
    void *p = realloc(r->state[node], bytes ? bytes : 1);
    if (!p) return NULL;
    r->state[node] = p;
    r->state_cap[node] = bytes;
    return p;
}

void *tr_scratch_slot(tr_ctx *c, int slot, size_t bytes) {
    tr_replica *r = c->rep;
    bytes = (bytes + 63) & ~(size_t)63;
    if (r->scratch_cap[slot] >= bytes && r->scratch[slot]) return r->scratch[slot];
    free(r->scratch[slot]);
    r->scratch[slot] = aligned_alloc(64, bytes ? bytes : 64);
    r->scratch_cap[slot] = r->scratch[slot] ? bytes : 0;
    return r->scratch[slot];
}

void *tr_scratch(tr_ctx *c, size_t bytes) {
    return tr_scratch_slot(c, TR_SCRATCH_OP, bytes);
}

pl_status tr_nomem(const tr_ctx *c) {
    return pl_op_error(&c->op, PL_ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ program */

static bool is_float_value(const pl_value *v) {
    return v->t.ndim < 0 || pl_dtype_is_float(v->t.dtype) || v->t.dtype == PL_UNDEF;
}

pl_status tr_program_create(const pl_graph *g, const bool *is_param, int input, int target,
                            bool input_grad, tr_program **out) {
    tr_program *p = calloc(1, sizeof *p);
    if (!p) return nomem();
    int nv = g->nvalues, nn = g->nnodes;
    p->g = g;
    p->input = input;
    p->target = target;
    p->kind = calloc((size_t)nv + 1, 1);
    p->grad = calloc((size_t)nv + 1, sizeof(bool));
    p->ops = calloc((size_t)nn + 1, sizeof *p->ops);
    p->entry = calloc((size_t)nn + 1, sizeof *p->entry);
    bool *need = calloc((size_t)nv + 1, sizeof(bool)),
         *reach = calloc((size_t)nv + 1, sizeof(bool));
    pl_status st = PL_OK;
    if (!p->kind || !p->grad || !p->ops || !p->entry || !need || !reach) {
        st = nomem();
        goto done;
    }
    if (target < 0 || target >= nv) {
        st = pl_error(PL_ERR_ARGUMENT, "training target value %d does not exist", target);
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        const pl_value *val = &g->values[v];
        if (v == input)
            p->kind[v] = TK_INPUT;
        else if (val->kind == PL_VALUE_CONST && val->producer < 0)
            p->kind[v] = is_param && is_param[v] ? TK_PARAM : TK_CONST;
        else if (val->producer >= 0)
            p->kind[v] = TK_ACT;
        else if (val->kind == PL_VALUE_INPUT) {
            st = pl_error(
                PL_ERR_UNSUPPORTED,
                "model input '%s' is not fed by the trainer (only one data input is supported)",
                val->name);
            goto done;
        } else {
            st = pl_error(PL_ERR_UNSUPPORTED, "value '%s' has no producer", val->name);
            goto done;
        }
        if (p->kind[v] == TK_PARAM) need[v] = true;
        if (p->kind[v] == TK_INPUT && input_grad) need[v] = true;
    }
    for (int i = 0; i < nn; i++) {
        const pl_node *n = &g->nodes[i];
        p->ops[i] = pl_op_find(n->domain, n->op_type);
        if (!p->ops[i]) {
            st = pl_error(PL_ERR_UNSUPPORTED, "node '%s': op '%s' is not supported", n->name,
                          n->op_type);
            goto done;
        }
        bool dflt = !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx");
        p->entry[i] = dflt ? tr_grad_find(n->op_type) : NULL;
        /* forward: does an output depend on something trainable? Ops without a backward
         * propagate through every input, so that the planner can name them if they sit
         * on a path to the loss. */
        bool dep = false;
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v < 0 || !need[v]) continue;
            if (!p->entry[i] || (k < 32 && (p->entry[i]->diff >> k) & 1)) dep = true;
        }
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && dep && is_float_value(&g->values[n->out[k]]))
                need[n->out[k]] = true;
    }
    reach[target] = true;
    for (int i = nn - 1; i >= 0; i--) {
        const pl_node *n = &g->nodes[i];
        bool r = false;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && reach[n->out[k]]) r = true;
        if (!r) continue;
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v < 0) continue;
            if (!p->entry[i] || (k < 32 && (p->entry[i]->diff >> k) & 1)) reach[v] = true;
        }
    }
    for (int v = 0; v < nv; v++) p->grad[v] = need[v] && reach[v];
    *out = p;
done:
    free(need);
    free(reach);
    if (st != PL_OK) tr_program_destroy(p);
    return st;
}

void tr_program_destroy(tr_program *p) {
    if (!p) return;
    free(p->kind);
    free(p->grad);
    free(p->ops);
    free(p->entry);
    free(p);
}

bool tr_program_param_used(const tr_program *p, int v) {
    return v >= 0 && v < p->g->nvalues && p->kind[v] == TK_PARAM && p->grad[v];
}

/* ------------------------------------------------------------------ replica */

pl_status tr_replica_create(const tr_program *p, tr_replica **out) {
    tr_replica *r = calloc(1, sizeof *r);
    if (!r) return nomem();
    const pl_graph *g = p->g;
    int nv = g->nvalues, nn = g->nnodes;
    r->p = p;
    r->nv = nv;
    r->nn = nn;
    r->val = calloc((size_t)nv + 1, sizeof *r->val);
    r->vbuf = calloc((size_t)nv + 1, sizeof *r->vbuf);
    r->vcap = calloc((size_t)nv + 1, sizeof *r->vcap);
    r->known = calloc((size_t)nv + 1, sizeof *r->known);
    r->grad = calloc((size_t)nv + 1, sizeof *r->grad);
    r->gbuf = calloc((size_t)nv + 1, sizeof *r->gbuf);
    r->gcap = calloc((size_t)nv + 1, sizeof *r->gcap);
    r->gbound = calloc((size_t)nv + 1, sizeof *r->gbound);
    r->rgrad = calloc((size_t)nv + 1, sizeof *r->rgrad);
    r->nstat = calloc((size_t)nn + 1, 1);
    r->bwd = calloc((size_t)nn + 1, sizeof *r->bwd);
    r->nin = calloc((size_t)nn + 1, sizeof *r->nin);
    r->nout = calloc((size_t)nn + 1, sizeof *r->nout);
    r->ngin = calloc((size_t)nn + 1, sizeof *r->ngin);
    r->ngout = calloc((size_t)nn + 1, sizeof *r->ngout);
    r->state = calloc((size_t)nn + 1, sizeof *r->state);
    r->state_cap = calloc((size_t)nn + 1, sizeof *r->state_cap);
    if (!r->val || !r->vbuf || !r->vcap || !r->known || !r->grad || !r->gbuf || !r->gcap ||
        !r->gbound || !r->rgrad || !r->nstat || !r->bwd || !r->nin || !r->nout || !r->ngin ||
        !r->ngout || !r->state || !r->state_cap)
        goto fail;
    for (int i = 0; i < nn; i++) {
        const pl_node *n = &g->nodes[i];
        r->nin[i] = calloc((size_t)n->nin + 1, sizeof(pl_tensor *));
        r->ngin[i] = calloc((size_t)n->nin + 1, sizeof(pl_tensor *));
        r->nout[i] = calloc((size_t)n->nout + 1, sizeof(pl_tensor *));
        r->ngout[i] = calloc((size_t)n->nout + 1, sizeof(pl_tensor *));
        if (!r->nin[i] || !r->ngin[i] || !r->nout[i] || !r->ngout[i]) goto fail;
        for (int k = 0; k < n->nin; k++) r->nin[i][k] = n->in[k] >= 0 ? &r->val[n->in[k]] : NULL;
        for (int k = 0; k < n->nout; k++)
            r->nout[i][k] = n->out[k] >= 0 ? &r->val[n->out[k]] : NULL;
    }
    *out = r;
    return PL_OK;
fail:
    tr_replica_destroy(r);
    return nomem();
}

void tr_replica_destroy(tr_replica *r) {
    if (!r) return;
    for (int v = 0; r->vbuf && v < r->nv; v++) free(r->vbuf[v]);
    for (int v = 0; r->gbuf && v < r->nv; v++) free(r->gbuf[v]);
    for (int i = 0; i < r->nn; i++) {
        if (r->nin) free(r->nin[i]);
        if (r->nout) free(r->nout[i]);
        if (r->ngin) free(r->ngin[i]);
        if (r->ngout) free(r->ngout[i]);
        if (r->state) free(r->state[i]);
    }
    free(r->val);
    free(r->vbuf);
    free(r->vcap);
    free(r->known);
    free(r->grad);
    free(r->gbuf);
    free(r->gcap);
    free(r->gbound);
    free(r->rgrad);
    free(r->nstat);
    free(r->bwd);
    free(r->nin);
    free(r->nout);
    free(r->ngin);
    free(r->ngout);
    free(r->state);
    free(r->state_cap);
    for (int k = 0; k < TR_SCRATCH_SLOTS; k++) free(r->scratch[k]);
    free(r);
}

void tr_replica_bind_grad(tr_replica *r, int v, float *buf) {
    r->gbound[v] = buf;
}

/* Gives computed value v a buffer of its own for its current type and shape. */
static pl_status own_buffer(tr_replica *r, int v) {
    pl_tensor *t = &r->val[v];
    int64_t n = pl_numel(t);
    size_t es = pl_dtype_size(t->dtype);
    if (n < 0)
        return pl_error(PL_ERR_MODEL, "value '%s' has an overflowing shape",
                        r->p->g->values[v].name);
    if (es == 0)
        return pl_error(PL_ERR_UNSUPPORTED,
                        "value '%s' has type %s, which training does not support",
                        r->p->g->values[v].name, pl_dtype_name(t->dtype));
    if ((uint64_t)n > (uint64_t)(SIZE_MAX / 4) / es) return nomem();
    size_t bytes = ((size_t)n * es + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    if (r->vcap[v] < bytes) {
        free(r->vbuf[v]);
        r->vbuf[v] = aligned_alloc(64, bytes);
        r->vcap[v] = r->vbuf[v] ? bytes : 0;
        if (!r->vbuf[v])
            return pl_error(PL_ERR_NOMEM, "out of memory: %zu bytes for value '%s'", bytes,
                            r->p->g->values[v].name);
    }
    t->data = r->vbuf[v];
    t->owns = false;
    t->cap = r->vcap[v];
    return PL_OK;
}

static void make_ctx(tr_replica *r, int i, tr_ctx *c) {
    const pl_node *n = &r->p->g->nodes[i];
    memset(c, 0, sizeof *c);
    c->op.node = n;
    c->op.opset = n->opset;
    c->op.nin = n->nin;
    c->op.nout = n->nout;
    c->op.in = r->nin[i];
    c->op.out = r->nout[i];
    c->gin = r->ngin[i];
    c->gout = r->ngout[i];
    c->state = &r->state[i];
    c->rep = r;
}

static pl_status plan(tr_replica *r, const pl_tensor *x) {
    const tr_program *p = r->p;
    const pl_graph *g = p->g;
    r->planned = false;
    for (int v = 0; v < r->nv; v++) {
        const pl_value *gv = &g->values[v];
        pl_tensor *t = &r->val[v];
        r->known[v] = false;
        switch (p->kind[v]) {
        case TK_CONST:
            *t = gv->t;
            t->owns = false;
            r->known[v] = true;
            break;
        case TK_PARAM:
            *t = gv->t;
            t->owns = false;
            t->data = NULL; /* hidden while planning: nothing may fold a parameter */
            break;
        case TK_INPUT:
            memset(t, 0, sizeof *t);
            pl_tensor_set_shape(t, x->dtype, x->ndim, x->dims);
            break;
        default:
            memset(t, 0, sizeof *t);
            t->ndim = -1;
            break;
        }
    }
    for (int i = 0; i < r->nn; i++) {
        const pl_node *n = &g->nodes[i];
        const pl_op *op = p->ops[i];
        tr_ctx c;
        make_ctx(r, i, &c);
        c.op.planning = true;
        bool shapes = true, all_known = true;
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] < 0) continue;
            if (r->val[n->in[k]].ndim < 0) shapes = false;
            if (!r->known[n->in[k]]) all_known = false;
        }
        pl_status st = shapes ? op->infer(&c.op) : PL_NEED_VALUE;
        if (st == PL_NEED_VALUE) {
            r->nstat[i] = NS_DYNAMIC;
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0) r->val[n->out[k]].ndim = -1;
            continue;
        }
        if (st != PL_OK) return st;
        for (int k = 0; k < n->nout; k++) {
            if (n->out[k] < 0) continue;
            const pl_tensor *t = &r->val[n->out[k]];
            if (t->ndim < 0 || t->ndim > PL_MAX_DIMS)
                return pl_op_error(&c.op, PL_ERR_INTERNAL,
                                   "shape inference left output %d without a shape", k);
            PL_TRY(own_buffer(r, n->out[k]));
        }
        bool fold = !(op->flags & PL_OP_NOFOLD) && (all_known || (op->flags & PL_OP_FOLD_SHAPE));
        if (op->flags & PL_OP_SELF_ALLOC) fold = false;
        if (fold) {
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0)
                    memset(r->val[n->out[k]].data, 0, pl_nbytes(&r->val[n->out[k]]));
            c.op.planning = false;
            PL_TRY(op->run(&c.op));
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0) r->known[n->out[k]] = true;
            r->nstat[i] = NS_FOLDED;
        } else {
            r->nstat[i] = NS_RUN;
        }
    }
    /* which gradients exist at this plan, and which nodes run a backward */
    for (int v = 0; v < r->nv; v++) {
        r->rgrad[v] = p->grad[v] && !r->known[v];
        const pl_tensor *t = &r->val[v];
        if (r->rgrad[v] && t->ndim >= 0 && t->dtype != PL_F32) {
            if (pl_dtype_is_float(t->dtype) && p->kind[v] == TK_PARAM)
                return pl_error(PL_ERR_UNSUPPORTED,
                                "parameter '%s' is %s; training supports float32 parameters",
                                g->values[v].name, pl_dtype_name(t->dtype));
            r->rgrad[v] = false;
        }
    }
    for (int i = 0; i < r->nn; i++) {
        const pl_node *n = &g->nodes[i];
        const tr_grad *e = p->entry[i];
        r->bwd[i] = false;
        if (r->nstat[i] == NS_FOLDED) continue;
        bool og = false, ig = false;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && r->rgrad[n->out[k]]) og = true;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0 && r->rgrad[n->in[k]] && (!e || (k < 32 && (e->diff >> k) & 1)))
                ig = true;
        if (!og || !ig) continue;
        if (!e)
            return pl_error(PL_ERR_UNSUPPORTED,
                            "node '%s' (%s): training needs its backward, which is not implemented "
                            "(it lies between trainable weights and the loss)",
                            n->name, n->op_type);
        r->bwd[i] = true;
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            r->ngin[i][k] =
                v >= 0 && r->rgrad[v] && k < 32 && ((e->diff >> k) & 1) ? &r->grad[v] : NULL;
        }
        for (int k = 0; k < n->nout; k++) {
            int v = n->out[k];
            r->ngout[i][k] = v >= 0 && r->rgrad[v] ? &r->grad[v] : NULL;
        }
    }
    for (int v = 0; v < r->nv; v++)
        if (p->kind[v] == TK_PARAM) r->val[v].data = g->values[v].t.data;
    r->plan_ndim = x->ndim;
    r->plan_dtype = x->dtype;
    memcpy(r->plan_dims, x->dims, sizeof r->plan_dims);
    r->planned = true;
    return PL_OK;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

pl_status tr_replica_forward(tr_replica *r, const pl_tensor *x, const tr_run *o) {
    const tr_program *p = r->p;
    const pl_graph *g = p->g;
    bool same = r->planned && r->plan_ndim == x->ndim && r->plan_dtype == x->dtype;
    for (int d = 0; same && d < x->ndim; d++) same = r->plan_dims[d] == x->dims[d];
    if (!same) {
        pl_status st = plan(r, x);
        if (st != PL_OK) {
            r->planned = false;
            return st;
        }
    }
    if (p->input >= 0) r->val[p->input].data = x->data;
    for (int v = 0; v < r->nv; v++)
        if (p->kind[v] == TK_PARAM) r->val[v].data = g->values[v].t.data;
    for (int i = 0; i < r->nn; i++) {
        if (r->nstat[i] == NS_FOLDED) continue;
        const pl_node *n = &g->nodes[i];
        const tr_grad *e = p->entry[i];
        tr_ctx c;
        make_ctx(r, i, &c);
        c.training = o->training;
        c.bf16 = o->bf16;
        c.seed = mix64(o->seed ^ mix64((uint64_t)i + 1));
        c.row0 = o->row0;
        if (r->nstat[i] == NS_DYNAMIC) {
            PL_TRY(p->ops[i]->infer(&c.op));
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0) PL_TRY(own_buffer(r, n->out[k]));
        }
        if (e && e->forward) {
            PL_TRY(e->forward(&c));
        } else {
            for (int k = 0; k < n->nout; k++)
                if (n->out[k] >= 0)
                    memset(r->val[n->out[k]].data, 0, pl_nbytes(&r->val[n->out[k]]));
            PL_TRY(p->ops[i]->run(&c.op));
        }
    }
    return PL_OK;
}

pl_tensor *tr_replica_value(tr_replica *r, int v) {
    return v >= 0 && v < r->nv ? &r->val[v] : NULL;
}

pl_status tr_replica_begin_backward(tr_replica *r, pl_tensor **target_grad) {
    if (!r->planned) return pl_error(PL_ERR_INTERNAL, "backward before a forward");
    for (int v = 0; v < r->nv; v++) {
        pl_tensor *gt = &r->grad[v];
        if (!r->rgrad[v]) {
            gt->data = NULL;
            continue;
        }
        const pl_tensor *t = &r->val[v];
        pl_tensor_set_shape(gt, PL_F32, t->ndim, t->dims);
        gt->owns = false;
        size_t bytes = (size_t)pl_numel(gt) * sizeof(float);
        if (r->gbound[v]) {
            gt->data = r->gbound[v];
        } else {
            size_t want = (bytes + 63) & ~(size_t)63;
            if (!want) want = 64;
            if (r->gcap[v] < want) {
                free(r->gbuf[v]);
                r->gbuf[v] = aligned_alloc(64, want);
                r->gcap[v] = r->gbuf[v] ? want : 0;
                if (!r->gbuf[v]) return nomem();
            }
            gt->data = r->gbuf[v];
        }
        gt->cap = bytes;
        memset(gt->data, 0, bytes);
    }
    int t = r->p->target;
    if (!r->rgrad[t])
        return pl_error(PL_ERR_MODEL,
                        "the loss output '%s' does not depend on any trainable weight",
                        r->p->g->values[t].name);
    *target_grad = &r->grad[t];
    return PL_OK;
}

pl_status tr_replica_backward(tr_replica *r, const tr_run *o) {
    const tr_program *p = r->p;
    for (int i = r->nn - 1; i >= 0; i--) {
        if (!r->bwd[i]) continue;
        tr_ctx c;
        make_ctx(r, i, &c);
        c.training = o->training;
        c.bf16 = o->bf16;
        c.seed = mix64(o->seed ^ mix64((uint64_t)i + 1));
        c.row0 = o->row0;
        PL_TRY(p->entry[i]->backward(&c));
    }
    return PL_OK;
}

pl_tensor *tr_replica_grad(tr_replica *r, int v) {
    return v >= 0 && v < r->nv && r->rgrad[v] && r->grad[v].data ? &r->grad[v] : NULL;
}

void *tr_replica_node_state(tr_replica *r, int node) {
    return node >= 0 && node < r->nn ? r->state[node] : NULL;
}
