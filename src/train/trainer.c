/* trainer.c -- the public training API (pillar.h, section "training").
 *
 * The trainer owns a copy of the model's graph (the master graph). Its trainable
 * parameters are moved into one flat float32 array (w) that the graph's values point
 * into, so saving writes the trained values; gradients, optimizer moments and pruning
 * masks are flat arrays of the same layout.
 *
 * A step splits the batch into one contiguous slice per thread (the first B % T slices
 * one example larger). Each slice runs on its own replica (activations, gradients of
 * its own, parameters shared read-only) as one task of the thread pool; then, on the
 * calling thread, per-node commits (BatchNorm running statistics) in replica order,
 * and the optimizer update in parallel chunks, each summing the replicas' gradients in
 * replica order. Nothing depends on which thread ran which task, so a seeded run is
 * reproducible at a given thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "onnx/onnx_export.h"
#include "train/train.h"

struct pillar_train_options {
    pillar_optimizer opt;
    float lr, momentum, weight_decay;
    int64_t batch;
    int threads;
    uint64_t seed;
    pillar_precision precision;
    pillar_loss loss;
    char *output;
    int prune_rows, prune_cols;
    bool prune_keep_ends; /* first and last prunable layers stay dense */
    char *prune_skip;     /* comma-separated node or weight names kept dense, or NULL */
};

typedef struct tr_param {
    int value;
    int64_t off, n;
    bool prunable;
    int64_t rows, cols;
} tr_param;

/* What one replica's task reports back. */
typedef struct rep_result {
    pl_status st;
    char msg[PL_ERROR_MAX];
    double loss;
    int64_t correct;
    int64_t row0, rows;
} rep_result;

struct pillar_trainer {
    struct pillar_train_options o;
    pl_graph *g;
    pl_opset *opsets;
    int nopsets;
    char *producer;
    char *path;
    int input, target;
    tr_program *prog;
    pl_threadpool *pool;
    int nthreads;
    tr_replica **rep;
    rep_result *res;
    int nparams;
    tr_param *params;
    int64_t flat_n;
    float *w, **grads, *m, *v;
    uint8_t *mask;
    tr_optim optim;
    int *commit_nodes;
    int ncommit;
    /* the call being run by the tasks */
    const pl_tensor *x, *labels;
    int64_t batch, chunk;
    bool training;
    int nrep_used;
};

static pl_status nomem(void) {
    return pl_error(PL_ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ options */

pillar_status pillar_train_options_create(pillar_train_options **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_create: out is NULL");
    pillar_train_options *o = calloc(1, sizeof *o);
    if (!o) return nomem();
    o->opt = PILLAR_OPTIMIZER_SGD;
    o->lr = 0.01f;
    o->batch = 64;
    o->precision = PILLAR_PRECISION_FP32;
    o->loss = PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY;
    o->prune_rows = o->prune_cols = 1;
    *out = o;
    return PL_OK;
}

void pillar_train_options_destroy(pillar_train_options *o) {
    if (!o) return;
    free(o->output);
    free(o->prune_skip);
    free(o);
}

pillar_status pillar_train_options_set_optimizer(pillar_train_options *o, pillar_optimizer opt,
                                                 float lr, float momentum, float weight_decay) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_optimizer: options is NULL");
    if (opt != PILLAR_OPTIMIZER_SGD && opt != PILLAR_OPTIMIZER_ADAM &&
        opt != PILLAR_OPTIMIZER_ADAMW)
        return pl_error(PL_ERR_ARGUMENT, "unknown optimizer %d", (int)opt);
    if (!(lr >= 0.0f) || !isfinite(lr))
        return pl_error(PL_ERR_ARGUMENT, "learning rate %g is not valid", lr);
    if (!(momentum >= 0.0f && momentum < 1.0f))
        return pl_error(PL_ERR_ARGUMENT, "momentum %g is not in [0, 1)", momentum);
    if (!(weight_decay >= 0.0f) || !isfinite(weight_decay))
        return pl_error(PL_ERR_ARGUMENT, "weight decay %g is not valid", weight_decay);
    o->opt = opt;
    o->lr = lr;
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    return PL_OK;
}

pillar_status pillar_train_options_set_batch(pillar_train_options *o, int64_t batch) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_batch: options is NULL");
    if (batch < 1 || batch > ((int64_t)1 << 30))
        return pl_error(PL_ERR_ARGUMENT, "batch size %lld is not valid", (long long)batch);
    o->batch = batch;
    return PL_OK;
}

pillar_status pillar_train_options_set_threads(pillar_train_options *o, int threads) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_threads: options is NULL");
    if (threads < 0 || threads > 1024)
        return pl_error(PL_ERR_ARGUMENT, "thread count %d is not valid", threads);
    o->threads = threads;
    return PL_OK;
}

pillar_status pillar_train_options_set_seed(pillar_train_options *o, uint64_t seed) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_seed: options is NULL");
    o->seed = seed;
    return PL_OK;
}

pillar_status pillar_train_options_set_precision(pillar_train_options *o, pillar_precision p) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_precision: options is NULL");
    if (p != PILLAR_PRECISION_FP32 && p != PILLAR_PRECISION_BF16)
        return pl_error(PL_ERR_ARGUMENT, "unknown precision %d", (int)p);
    o->precision = p;
    return PL_OK;
}

pillar_status pillar_train_options_set_loss(pillar_train_options *o, pillar_loss loss,
                                            const char *output) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_loss: options is NULL");
    if (loss != PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY && loss != PILLAR_LOSS_NLL &&
        loss != PILLAR_LOSS_MSE)
        return pl_error(PL_ERR_ARGUMENT, "unknown loss %d", (int)loss);
    char *s = NULL;
    if (output && !(s = strdup(output))) return nomem();
    free(o->output);
    o->output = s;
    o->loss = loss;
    return PL_OK;
}

pillar_status pillar_train_options_set_prune_block(pillar_train_options *o, int rows, int cols) {
    if (!o)
        return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_prune_block: options is NULL");
    if (rows < 1 || cols < 1 || rows > 4096 || cols > 4096)
        return pl_error(PL_ERR_ARGUMENT, "prune block %dx%d is not valid", rows, cols);
    o->prune_rows = rows;
    o->prune_cols = cols;
    return PL_OK;
}

pillar_status pillar_train_options_set_prune_skip(pillar_train_options *o, int keep_first_last,
                                                  const char *skip) {
    if (!o)
        return pl_error(PL_ERR_ARGUMENT, "pillar_train_options_set_prune_skip: options is NULL");
    char *s = NULL;
    if (skip && *skip && !(s = strdup(skip))) return nomem();
    free(o->prune_skip);
    o->prune_skip = s;
    o->prune_keep_ends = keep_first_last != 0;
    return PL_OK;
}

/* ------------------------------------------------------------------ create */

static bool binary_arith(const char *op) {
    return !strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div") ||
           !strcmp(op, "Pow");
}

/* Trainable: a float32 initializer feeding a differentiable input of an op that has a
 * backward. For element-wise arithmetic only when it has more than one element and the
 * other operand already depends on a trainable weight: a bias after MatMul trains, but
 * the 0.5, sqrt 2 and 1.0 of exported Gelu, or an input normalisation (x - mean) / std,
 * stay fixed, as they are buffers or constants in the framework the model came from.
 * One pass in topological order decides it, tracking which values depend on weights. */
static pl_status find_params(pillar_trainer *t, bool *is_param) {
    pl_graph *g = t->g;
    bool *dep = calloc((size_t)g->nvalues + 1, sizeof(bool));
    if (!dep) return nomem();
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        const tr_grad *e = n->domain[0] ? NULL : tr_grad_find(n->op_type);
        const bool arith = binary_arith(n->op_type);
        for (int k = 0; e && k < n->nin && k < 32; k++) {
            int v = n->in[k];
            if (v < 0 || !((e->diff >> k) & 1)) continue;
            const pl_value *val = &g->values[v];
            if (val->kind != PL_VALUE_CONST || val->producer >= 0 || !val->t.data ||
                val->t.dtype != PL_F32)
                continue;
            if (arith) {
                int other = n->nin == 2 ? n->in[1 - k] : -1;
                if (pl_numel(&val->t) <= 1 || other < 0 || !dep[other]) continue;
            }
            is_param[v] = dep[v] = true;
        }
        bool d = false;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0 && dep[n->in[k]]) d = true;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0) dep[n->out[k]] = d;
    }
    free(dep);
    return PL_OK;
}

static bool prunable_use(const pl_graph *g, int v) {
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] != v) continue;
            if ((!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm")) && k == 1) return true;
            if (!strcmp(n->op_type, "MatMul")) return true;
        }
    }
    return false;
}

static int param_of_value(const pillar_trainer *t, int v) {
    for (int p = 0; p < t->nparams; p++)
        if (t->params[p].value == v) return p;
    return -1;
}

/* Counts the prunable parameters that node n uses as its weight (Conv and Gemm input
 * 1, either MatMul input); with `clear`, makes them not prunable. */
static int node_prunable(pillar_trainer *t, const pl_node *n, bool clear) {
    int count = 0;
    const bool cg = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm");
    const bool mm = !strcmp(n->op_type, "MatMul");
    if (n->domain[0] || (!cg && !mm)) return 0;
    for (int k = 0; k < n->nin; k++) {
        if (n->in[k] < 0 || (cg && k != 1)) continue;
        int p = param_of_value(t, n->in[k]);
        if (p < 0 || !t->params[p].prunable) continue;
        count++;
        if (clear) t->params[p].prunable = false;
    }
    return count;
}

/* Weights that pruning leaves dense: with keep_ends those of the first and the last
 * layer (graph order) that have a prunable weight -- the input layer is small and
 * sensitive, the last one is the classifier -- and those named in `skip` (node or
 * weight names, comma-separated). A name that matches no prunable layer is an error,
 * so that a typo does not silently prune the layer it meant. */
static pl_status apply_prune_skip(pillar_trainer *t, bool keep_ends, const char *skip) {
    pl_graph *g = t->g;
    int first = -1, last = -1;
    for (int i = 0; i < g->nnodes; i++)
        if (node_prunable(t, &g->nodes[i], false)) {
            if (first < 0) first = i;
            last = i;
        }
    /* names are checked against the prunable set before anything is cleared */
    bool *drop = calloc((size_t)t->nparams + 1, sizeof(bool));
    char *list = skip ? strdup(skip) : NULL;
    if (!drop || (skip && !list)) {
        free(drop);
        free(list);
        return nomem();
    }
    pl_status st = PL_OK;
    for (char *save = NULL, *tok = list ? strtok_r(list, ",", &save) : NULL; tok && st == PL_OK;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        for (size_t n = strlen(tok); n > 0 && tok[n - 1] == ' '; n--) tok[n - 1] = 0;
        if (!*tok) continue;
        bool found = false;
        for (int i = 0; i < g->nnodes; i++) {
            const pl_node *n = &g->nodes[i];
            if (!n->name || strcmp(n->name, tok)) continue;
            const bool cg = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm");
            const bool mm = !strcmp(n->op_type, "MatMul");
            for (int k = 0; k < n->nin && (cg || mm) && !n->domain[0]; k++) {
                int p = n->in[k] >= 0 && (!cg || k == 1) ? param_of_value(t, n->in[k]) : -1;
                if (p >= 0 && t->params[p].prunable) found = drop[p] = true;
            }
        }
        int p = param_of_value(t, pl_graph_find_value(g, tok));
        if (p >= 0 && t->params[p].prunable) found = drop[p] = true;
        if (!found)
            st = pl_error(PL_ERR_ARGUMENT,
                          "%s: prune skip list: '%s' is not a Conv, Gemm or MatMul node (or weight) "
                          "with a prunable weight",
                          t->path, tok);
    }
    if (st == PL_OK) {
        if (keep_ends && first >= 0) {
            node_prunable(t, &g->nodes[first], true);
            node_prunable(t, &g->nodes[last], true);
        }
        for (int p = 0; p < t->nparams; p++)
            if (drop[p]) t->params[p].prunable = false;
    }
    free(drop);
    free(list);
    return st;
}

void pillar_trainer_destroy(pillar_trainer *t) {
    if (!t) return;
    for (int r = 0; t->rep && r < t->nthreads; r++) tr_replica_destroy(t->rep[r]);
    free(t->rep);
    tr_program_destroy(t->prog);
    pl_threadpool_destroy(t->pool);
    if (t->g)
        for (int p = 0; p < t->nparams; p++) {
            pl_tensor *pt = &t->g->values[t->params[p].value].t;
            if (pt->owns) continue; /* not moved into t->w yet (creation failed): freed below */
            pt->data = NULL;
        }
    pl_graph_free(t->g);
    for (int i = 0; i < t->nopsets; i++) free(t->opsets[i].domain);
    free(t->opsets);
    free(t->producer);
    free(t->path);
    free(t->params);
    free(t->w);
    for (int r = 0; t->grads && r < t->nthreads; r++) free(t->grads[r]);
    free(t->grads);
    free(t->m);
    free(t->v);
    free(t->mask);
    free(t->res);
    free(t->commit_nodes);
    free(t->o.output);
    free(t->o.prune_skip);
    free(t);
}

static float *alloc_floats(int64_t n) {
    size_t bytes = ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

pillar_status pillar_trainer_create(const pillar_model *m, const pillar_train_options *o,
                                    pillar_trainer **out) {
    pl_error_clear();
    if (!m || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_create: NULL argument");
    pillar_train_options defaults;
    if (!o) {
        memset(&defaults, 0, sizeof defaults);
        defaults.lr = 0.01f;
        defaults.batch = 64;
        defaults.prune_rows = defaults.prune_cols = 1;
        o = &defaults;
    }
    pillar_trainer *t = calloc(1, sizeof *t);
    if (!t) return nomem();
    pl_status st = PL_OK;
    bool *is_param = NULL;
    t->o = *o;
    t->o.output = NULL;
    t->o.prune_skip = NULL; /* applied below, not kept */
    if (o->output && !(t->o.output = strdup(o->output))) goto oom;
    if (!(t->path = strdup(m->path ? m->path : "model"))) goto oom;
    if (m->producer && !(t->producer = strdup(m->producer))) goto oom;
    t->opsets = calloc((size_t)m->nopsets + 1, sizeof *t->opsets);
    if (!t->opsets) goto oom;
    for (int i = 0; i < m->nopsets; i++) {
        t->opsets[i].version = m->opsets[i].version;
        if (!(t->opsets[i].domain = strdup(m->opsets[i].domain ? m->opsets[i].domain : "")))
            goto oom;
        t->nopsets = i + 1;
    }
    if (!(t->g = pl_graph_clone(m->graph, NULL))) goto oom;
    pl_graph *g = t->g;
    for (int i = 0; i < g->nnodes; i++) g->nodes[i].opset = pl_model_opset(m, g->nodes[i].domain);
    if (g->ninputs != 1) {
        st = pl_error(PL_ERR_UNSUPPORTED,
                      "%s: the model has %d inputs; training supports models with one data input",
                      t->path, g->ninputs);
        goto fail;
    }
    t->input = g->inputs[0];
    t->target = -1;
    if (o->output) {
        for (int k = 0; k < g->noutputs; k++)
            if (!strcmp(g->values[g->outputs[k]].name, o->output)) t->target = g->outputs[k];
        if (t->target < 0) t->target = pl_graph_find_value(g, o->output);
        if (t->target < 0 || g->values[t->target].producer < 0) {
            st = pl_error(PL_ERR_ARGUMENT,
                          "%s: the loss output '%s' is not a computed value of the model", t->path,
                          o->output);
            goto fail;
        }
    } else {
        if (g->noutputs != 1) {
            st = pl_error(PL_ERR_ARGUMENT,
                          "%s: the model has %d outputs; name the one the loss is attached to",
                          t->path, g->noutputs);
            goto fail;
        }
        t->target = g->outputs[0];
    }
    if (!(is_param = calloc((size_t)g->nvalues + 1, sizeof(bool)))) goto oom;
    if ((st = find_params(t, is_param)) != PL_OK) goto fail;
    /* every trainable parameter moves into the flat array */
    t->params = calloc((size_t)g->nvalues + 1, sizeof *t->params);
    if (!t->params) goto oom;
    int64_t off = 0;
    for (int v = 0; v < g->nvalues; v++) {
        if (!is_param[v]) continue;
        tr_param *p = &t->params[t->nparams++];
        const pl_tensor *pt = &g->values[v].t;
        p->value = v;
        p->off = off;
        p->n = pl_numel(pt);
        p->prunable = pt->ndim >= 2 && prunable_use(g, v);
        p->rows = pt->ndim >= 1 ? pt->dims[0] : 1;
        p->cols = p->rows > 0 ? p->n / p->rows : 0;
        off += (p->n + 15) & ~(int64_t)15;
    }
    if (t->nparams == 0) {
        st = pl_error(PL_ERR_MODEL, "%s: the model has no float32 initializers to train", t->path);
        goto fail;
    }
    if ((st = apply_prune_skip(t, o->prune_keep_ends, o->prune_skip)) != PL_OK) goto fail;
    t->flat_n = off;
    if (!(t->w = alloc_floats(off))) goto oom;
    for (int p = 0; p < t->nparams; p++) {
        pl_tensor *pt = &g->values[t->params[p].value].t;
        memcpy(t->w + t->params[p].off, pt->data, (size_t)t->params[p].n * sizeof(float));
        pl_tensor_free_data(pt);
        pt->data = t->w + t->params[p].off;
        pt->owns = false;
        pt->cap = (size_t)t->params[p].n * sizeof(float);
    }
    st = tr_program_create(g, is_param, t->input, t->target, false, &t->prog);
    if (st != PL_OK) {
        pl_error_prefix("%s", t->path);
        goto fail;
    }
    /* threads, replicas, per-replica gradient arrays */
    t->nthreads = o->threads > 0 ? o->threads : pl_cpu_default_threads();
    if (t->nthreads > 1) {
        t->pool = pl_threadpool_create(t->nthreads);
        if (!t->pool)
            t->nthreads = 1;
        else
            t->nthreads = pl_threadpool_size(t->pool);
    }
    t->rep = calloc((size_t)t->nthreads, sizeof *t->rep);
    t->grads = calloc((size_t)t->nthreads, sizeof *t->grads);
    t->res = calloc((size_t)t->nthreads, sizeof *t->res);
    if (!t->rep || !t->grads || !t->res) goto oom;
    for (int r = 0; r < t->nthreads; r++) {
        if ((st = tr_replica_create(t->prog, &t->rep[r])) != PL_OK) goto fail;
        if (!(t->grads[r] = alloc_floats(off))) goto oom;
        for (int p = 0; p < t->nparams; p++)
            if (tr_program_param_used(t->prog, t->params[p].value))
                tr_replica_bind_grad(t->rep[r], t->params[p].value, t->grads[r] + t->params[p].off);
    }
    t->optim.kind = o->opt;
    t->optim.lr = o->lr;
    t->optim.momentum = o->momentum;
    t->optim.weight_decay = o->weight_decay;
    t->optim.beta1 = o->opt != PILLAR_OPTIMIZER_SGD && o->momentum > 0.0f ? o->momentum : 0.9f;
    t->optim.beta2 = 0.999f;
    t->optim.eps = 1e-8f;
    int nm = tr_optim_moments(&t->optim);
    if (nm >= 1 && !(t->m = alloc_floats(off))) goto oom;
    if (nm >= 2 && !(t->v = alloc_floats(off))) goto oom;
    t->commit_nodes = calloc((size_t)g->nnodes + 1, sizeof(int));
    if (!t->commit_nodes) goto oom;
    for (int i = 0; i < g->nnodes; i++) {
        const tr_grad *e = g->nodes[i].domain[0] ? NULL : tr_grad_find(g->nodes[i].op_type);
        if (e && e->commit) t->commit_nodes[t->ncommit++] = i;
    }
    free(is_param);
    *out = t;
    return PL_OK;
oom:
    st = nomem();
fail:
    free(is_param);
    pillar_trainer_destroy(t);
    return st;
}

/* ------------------------------------------------------------------ steps */

static pl_status check_x(const pillar_trainer *t, const pl_tensor *x, const char *fn) {
    const pl_value *in = &t->g->values[t->input];
    char a[128], b[128];
    if (!x || x->ndim < 1 || x->ndim > PL_MAX_DIMS || pl_numel(x) < 0 ||
        (pl_numel(x) > 0 && !x->data))
        return pl_error(PL_ERR_ARGUMENT, "%s: x is not a valid tensor", fn);
    if (x->dtype != in->t.dtype)
        return pl_error(PL_ERR_INPUT, "%s: input '%s' must be %s, got %s", fn, in->name,
                        pl_dtype_name(in->t.dtype), pl_dtype_name(x->dtype));
    if (x->dims[0] < 1) return pl_error(PL_ERR_INPUT, "%s: the batch is empty", fn);
    bool ok = in->t.ndim < 0 || in->t.ndim == x->ndim;
    for (int d = 1; ok && in->t.ndim >= 0 && d < x->ndim; d++)
        ok = in->t.dims[d] < 0 || in->t.dims[d] == x->dims[d];
    if (!ok)
        return pl_error(PL_ERR_INPUT, "%s: input '%s' has shape %s, the model expects %s", fn,
                        in->name, pl_shape_str(x, a, sizeof a), pl_shape_str(&in->t, b, sizeof b));
    return PL_OK;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* x rows [row0, row0 + rows) as a tensor view. */
static pl_tensor slice_rows(const pl_tensor *x, int64_t row0, int64_t rows) {
    pl_tensor s = *x;
    s.owns = false;
    s.dims[0] = rows;
    int64_t per = x->dims[0] > 0 ? pl_numel(x) / x->dims[0] : 0;
    s.data = (char *)x->data + (size_t)(row0 * per) * pl_dtype_size(x->dtype);
    return s;
}

static void record(rep_result *res, pl_status st) {
    res->st = st;
    if (st != PL_OK) snprintf(res->msg, sizeof res->msg, "%s", pl_error_msg());
}

/* One replica's training step: forward on its slice, loss, backward. */
static void train_task(void *ctx, int task, int thread) {
    (void)thread; /* replicas are indexed by task: results do not depend on the thread */
    pillar_trainer *t = ctx;
    rep_result *res = &t->res[task];
    tr_replica *r = t->rep[task];
    tr_run run = {.training = true,
                  .bf16 = t->o.precision == PILLAR_PRECISION_BF16,
                  .seed = mix64(t->o.seed ^ mix64((uint64_t)t->optim.step + 0x5151)),
                  .row0 = res->row0};
    pl_tensor xs = slice_rows(t->x, res->row0, res->rows);
    pl_status st = tr_replica_forward(r, &xs, &run);
    pl_tensor *out = st == PL_OK ? tr_replica_value(r, t->target) : NULL, *gt = NULL;
    if (st == PL_OK) st = tr_loss_check(t->o.loss, t->labels, t->batch, out->ndim, out->dims);
    if (st == PL_OK) st = tr_replica_begin_backward(r, &gt);
    if (st == PL_OK) {
        st = tr_loss(t->o.loss, out, t->labels, res->row0, 1.0 / (double)t->batch, gt, &res->loss,
                     &res->correct);
    }
    if (st == PL_OK) st = tr_replica_backward(r, &run);
    record(res, st);
}

typedef struct update_ctx {
    pillar_trainer *t;
    int64_t chunk;
} update_ctx;

static void update_task(void *ctx, int task, int thread) {
    (void)thread;
    update_ctx *u = ctx;
    pillar_trainer *t = u->t;
    int64_t i0 = (int64_t)task * u->chunk, i1 = i0 + u->chunk;
    if (i1 > t->flat_n) i1 = t->flat_n;
    tr_optim_update(&t->optim, t->w, t->grads, t->nrep_used, t->m, t->v, t->mask, i0, i1);
}

/* Splits `batch` rows over the replicas: returns how many are used. */
static int split_batch(pillar_trainer *t, int64_t batch) {
    int R = batch < t->nthreads ? (int)batch : t->nthreads;
    int64_t base = batch / R, rem = batch % R, row = 0;
    for (int r = 0; r < R; r++) {
        rep_result *res = &t->res[r];
        memset(res, 0, sizeof *res);
        res->row0 = row;
        res->rows = base + (r < rem ? 1 : 0);
        row += res->rows;
    }
    return R;
}

static pl_status first_error(pillar_trainer *t, int R, const char *fn) {
    for (int r = 0; r < R; r++)
        if (t->res[r].st != PL_OK) return pl_error(t->res[r].st, "%s: %s", fn, t->res[r].msg);
    return PL_OK;
}

pillar_status pillar_trainer_step(pillar_trainer *t, const pillar_tensor *x,
                                  const pillar_tensor *labels, float *loss_out,
                                  int64_t *correct_out) {
    pl_error_clear();
    if (!t || !x || !labels) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_step: NULL argument");
    PL_TRY(check_x(t, x, "pillar_trainer_step"));
    const int64_t B = x->dims[0];
    if (labels->ndim < 1 || labels->dims[0] != B)
        return pl_error(PL_ERR_INPUT, "pillar_trainer_step: %lld labels for %lld examples",
                        (long long)(labels->ndim >= 1 ? labels->dims[0] : 0), (long long)B);
    t->x = x;
    t->labels = labels;
    t->batch = B;
    int R = split_batch(t, B);
    t->nrep_used = R;
    if (R > 1)
        pl_threadpool_run(t->pool, train_task, t, R);
    else
        train_task(t, 0, 0);
    PL_TRY(first_error(t, R, "pillar_trainer_step"));
    /* once-per-step commits, in replica order */
    for (int k = 0; k < t->ncommit; k++) {
        int ni = t->commit_nodes[k];
        const pl_node *n = &t->g->nodes[ni];
        void *states[1024];
        int64_t rows[1024];
        pl_tensor *in[16] = {0};
        for (int r = 0; r < R && r < 1024; r++) {
            states[r] = tr_replica_node_state(t->rep[r], ni);
            rows[r] = t->res[r].rows;
        }
        for (int i = 0; i < n->nin && i < 16; i++)
            in[i] = n->in[i] >= 0 ? &t->g->values[n->in[i]].t : NULL;
        const tr_grad *e = tr_grad_find(n->op_type);
        PL_TRY(e->commit(n, n->opset, in, states, rows, R));
    }
    /* reduce + update, in chunks of whole cache lines */
    update_ctx u = {t, 16384};
    int64_t nchunks = (t->flat_n + u.chunk - 1) / u.chunk;
    if (t->pool && nchunks > 1)
        pl_threadpool_run(t->pool, update_task, &u, (int)nchunks);
    else
        for (int64_t k = 0; k < nchunks; k++) update_task(&u, (int)k, 0);
    t->optim.step++;
    double loss = 0;
    int64_t correct = 0;
    for (int r = 0; r < R; r++) {
        loss += t->res[r].loss;
        correct += t->res[r].correct;
    }
    if (loss_out) *loss_out = (float)(loss / (double)B);
    if (correct_out) *correct_out = correct;
    return PL_OK;
}

/* Evaluation: replica r takes chunks r, r + R, ... of `chunk` rows each. */
static void eval_task(void *ctx, int task, int thread) {
    (void)thread;
    pillar_trainer *t = ctx;
    rep_result *res = &t->res[task];
    tr_replica *r = t->rep[task];
    tr_run run = {.training = false, .bf16 = t->o.precision == PILLAR_PRECISION_BF16};
    int64_t nchunks = (t->batch + t->chunk - 1) / t->chunk;
    pl_status st = PL_OK;
    for (int64_t k = task; k < nchunks && st == PL_OK; k += t->nrep_used) {
        int64_t row0 = k * t->chunk, rows = t->batch - row0 < t->chunk ? t->batch - row0 : t->chunk;
        pl_tensor xs = slice_rows(t->x, row0, rows);
        run.row0 = row0;
        st = tr_replica_forward(r, &xs, &run);
        if (st != PL_OK) break;
        pl_tensor *out = tr_replica_value(r, t->target);
        if (t->labels) {
            st = tr_loss_check(t->o.loss, t->labels, t->batch, out->ndim, out->dims);
            if (st == PL_OK)
                st = tr_loss(t->o.loss, out, t->labels, row0, 0.0, NULL, &res->loss, &res->correct);
        }
    }
    record(res, st);
}

pillar_status pillar_trainer_evaluate(pillar_trainer *t, const pillar_tensor *x,
                                      const pillar_tensor *labels, float *loss_out,
                                      int64_t *correct_out) {
    pl_error_clear();
    if (!t || !x || !labels)
        return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_evaluate: NULL argument");
    PL_TRY(check_x(t, x, "pillar_trainer_evaluate"));
    const int64_t B = x->dims[0];
    if (labels->ndim < 1 || labels->dims[0] != B)
        return pl_error(PL_ERR_INPUT, "pillar_trainer_evaluate: %lld labels for %lld examples",
                        (long long)(labels->ndim >= 1 ? labels->dims[0] : 0), (long long)B);
    t->x = x;
    t->labels = labels;
    t->batch = B;
    t->chunk = (t->o.batch + t->nthreads - 1) / t->nthreads;
    if (t->chunk < 1) t->chunk = 1;
    int64_t nchunks = (B + t->chunk - 1) / t->chunk;
    int R = nchunks < t->nthreads ? (int)nchunks : t->nthreads;
    for (int r = 0; r < R; r++) memset(&t->res[r], 0, sizeof t->res[r]);
    t->nrep_used = R;
    if (R > 1)
        pl_threadpool_run(t->pool, eval_task, t, R);
    else
        eval_task(t, 0, 0);
    PL_TRY(first_error(t, R, "pillar_trainer_evaluate"));
    double loss = 0;
    int64_t correct = 0;
    for (int r = 0; r < R; r++) {
        loss += t->res[r].loss;
        correct += t->res[r].correct;
    }
    if (loss_out) *loss_out = (float)(loss / (double)B);
    if (correct_out) *correct_out = correct;
    return PL_OK;
}

pillar_status pillar_trainer_set_lr(pillar_trainer *t, float lr) {
    if (!t) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_set_lr: trainer is NULL");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return pl_error(PL_ERR_ARGUMENT, "learning rate %g is not valid", lr);
    t->optim.lr = lr;
    return PL_OK;
}

/* ------------------------------------------------------------------ pruning */

pillar_status pillar_trainer_prune(pillar_trainer *t, float sparsity) {
    pl_error_clear();
    if (!t) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_prune: trainer is NULL");
    if (!(sparsity >= 0.0f && sparsity <= 1.0f))
        return pl_error(PL_ERR_ARGUMENT, "sparsity %g is not in [0, 1]", sparsity);
    if (!t->mask) {
        if (!(t->mask = malloc((size_t)(t->flat_n ? t->flat_n : 1)))) return nomem();
        memset(t->mask, 1, (size_t)t->flat_n);
    }
    for (int p = 0; p < t->nparams; p++) {
        const tr_param *pp = &t->params[p];
        if (!pp->prunable) continue;
        PL_TRY(tr_prune_mask(t->w + pp->off, pp->rows, pp->cols, t->o.prune_rows, t->o.prune_cols,
                             sparsity, t->mask + pp->off));
        for (int64_t i = pp->off; i < pp->off + pp->n; i++)
            if (!t->mask[i]) {
                if (t->m) t->m[i] = 0.0f;
                if (t->v) t->v[i] = 0.0f;
            }
    }
    return PL_OK;
}

double pillar_trainer_sparsity(const pillar_trainer *t) {
    if (!t) return 0.0;
    int64_t zeros = 0, total = 0;
    for (int p = 0; p < t->nparams; p++) {
        const tr_param *pp = &t->params[p];
        if (!pp->prunable) continue;
        for (int64_t i = 0; i < pp->n; i++) zeros += t->w[pp->off + i] == 0.0f;
        total += pp->n;
    }
    return total ? (double)zeros / (double)total : 0.0;
}

/* ------------------------------------------------------------------ saving */

/* The inference form: BatchNormalization without training_mode or the extra outputs;
 * Dropout without its training_mode input. */
static void to_inference_form(pl_graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        pl_node *n = &g->nodes[i];
        if (n->domain[0]) continue;
        if (!strcmp(n->op_type, "BatchNormalization")) {
            for (int a = 0; a < n->nattr; a++)
                if (!strcmp(n->attrs[a].name, "training_mode") && n->attrs[a].type == PL_ATTR_INT)
                    n->attrs[a].i = 0;
            for (int k = 1; k < n->nout; k++)
                if (n->out[k] >= 0) {
                    bool used = false;
                    for (int o = 0; o < g->noutputs; o++) used |= g->outputs[o] == n->out[k];
                    if (!used) g->values[n->out[k]].producer = -1;
                }
            n->nout = 1;
        } else if (!strcmp(n->op_type, "Dropout") && n->nin > 2) {
            n->nin = 2;
        }
    }
}

pillar_status pillar_trainer_save(const pillar_trainer *t, const char *path) {
    pl_error_clear();
    if (!t || !path) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_save: NULL argument");
    pl_graph *g = pl_graph_clone(t->g, NULL);
    if (!g) return nomem();
    to_inference_form(g);
    /* outputs the model left untyped get the type (and shape, batch symbolic) the
     * trainer inferred */
    const pl_value *in = &g->values[t->input];
    for (int k = 0; k < g->noutputs; k++) {
        pl_value *ov = &g->values[g->outputs[k]];
        if (ov->t.dtype != PL_UNDEF) continue;
        const pl_tensor *rt = tr_replica_value(t->rep[0], g->outputs[k]);
        if (rt && rt->ndim >= 0 && rt->dtype != PL_UNDEF) {
            pl_tensor_set_shape(&ov->t, rt->dtype, rt->ndim, rt->dims);
            if (rt->ndim > 0 && in->dim_names[0] && !ov->dim_names[0])
                ov->dim_names[0] = strdup(in->dim_names[0]);
            else if (rt->ndim > 0 && in->t.ndim > 0 && in->t.dims[0] < 0)
                ov->t.dims[0] = -1;
        } else {
            ov->t.dtype = PL_F32;
            ov->t.ndim = -1;
        }
    }
    pl_status st = pl_onnx_save_graph(g, t->opsets, t->nopsets, "pillar", path);
    pl_graph_free(g);
    return st;
}

/* Checkpoint file: "PLTRAIN1", then little-endian u64 fields: flat size, step, number
 * of moment arrays, mask present, number of extra tensors; the flat arrays (w, moments,
 * mask); then each extra tensor (running statistics) as name length, name, byte count,
 * bytes. Restore checks that everything matches the trainer's model. */
static const char ckpt_magic[8] = {'P', 'L', 'T', 'R', 'A', 'I', 'N', '1'};

static bool is_extra(const pillar_trainer *t, int v) {
    for (int k = 0; k < t->ncommit; k++) {
        const pl_node *n = &t->g->nodes[t->commit_nodes[k]];
        for (int i = 3; i < n->nin && i <= 4; i++)
            if (n->in[i] == v) return true;
    }
    return false;
}

pillar_status pillar_trainer_checkpoint(const pillar_trainer *t, const char *path) {
    pl_error_clear();
    if (!t || !path) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_checkpoint: NULL argument");
    FILE *f = fopen(path, "wb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot open for writing", path);
    uint64_t nextra = 0;
    for (int v = 0; v < t->g->nvalues; v++) nextra += is_extra(t, v) && t->g->values[v].t.data;
    uint64_t hdr[6] = {(uint64_t)t->flat_n,
                       (uint64_t)t->optim.step,
                       (uint64_t)tr_optim_moments(&t->optim),
                       t->mask != NULL,
                       nextra,
                       (uint64_t)t->optim.kind};
    bool ok = fwrite(ckpt_magic, 1, 8, f) == 8 && fwrite(hdr, sizeof hdr, 1, f) == 1;
    size_t fb = (size_t)t->flat_n * sizeof(float);
    ok = ok && fwrite(t->w, 1, fb, f) == fb;
    if (ok && t->m) ok = fwrite(t->m, 1, fb, f) == fb;
    if (ok && t->v) ok = fwrite(t->v, 1, fb, f) == fb;
    if (ok && t->mask) ok = fwrite(t->mask, 1, (size_t)t->flat_n, f) == (size_t)t->flat_n;
    for (int v = 0; ok && v < t->g->nvalues; v++) {
        const pl_value *val = &t->g->values[v];
        if (!is_extra(t, v) || !val->t.data) continue;
        uint64_t nl = strlen(val->name), nb = pl_nbytes(&val->t);
        ok = fwrite(&nl, 8, 1, f) == 1 && fwrite(val->name, 1, nl, f) == nl &&
             fwrite(&nb, 8, 1, f) == 1 && fwrite(val->t.data, 1, nb, f) == nb;
    }
    if (fclose(f) != 0) ok = false;
    if (!ok) return pl_error(PL_ERR_IO, "%s: write failed", path);
    return PL_OK;
}

pillar_status pillar_trainer_restore(pillar_trainer *t, const char *path) {
    pl_error_clear();
    if (!t || !path) return pl_error(PL_ERR_ARGUMENT, "pillar_trainer_restore: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot open", path);
    char magic[8];
    uint64_t hdr[6];
    pl_status st = PL_OK;
    float *w = NULL, *m = NULL, *v = NULL;
    uint8_t *mask = NULL;
    size_t fb = (size_t)t->flat_n * sizeof(float);
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, ckpt_magic, 8) ||
        fread(hdr, sizeof hdr, 1, f) != 1) {
        st = pl_error(PL_ERR_IO, "%s: not a pillar training checkpoint", path);
        goto done;
    }
    if (hdr[0] != (uint64_t)t->flat_n || hdr[2] != (uint64_t)tr_optim_moments(&t->optim) ||
        hdr[5] != (uint64_t)t->optim.kind || hdr[3] > 1) {
        st = pl_error(PL_ERR_INPUT, "%s: the checkpoint is for another model or optimizer", path);
        goto done;
    }
    w = alloc_floats(t->flat_n);
    m = hdr[2] >= 1 ? alloc_floats(t->flat_n) : NULL;
    v = hdr[2] >= 2 ? alloc_floats(t->flat_n) : NULL;
    mask = hdr[3] ? malloc((size_t)(t->flat_n ? t->flat_n : 1)) : NULL;
    if (!w || (hdr[2] >= 1 && !m) || (hdr[2] >= 2 && !v) || (hdr[3] && !mask)) {
        st = nomem();
        goto done;
    }
    bool ok = fread(w, 1, fb, f) == fb;
    if (ok && m) ok = fread(m, 1, fb, f) == fb;
    if (ok && v) ok = fread(v, 1, fb, f) == fb;
    if (ok && mask) ok = fread(mask, 1, (size_t)t->flat_n, f) == (size_t)t->flat_n;
    if (!ok) {
        st = pl_error(PL_ERR_IO, "%s: truncated checkpoint", path);
        goto done;
    }
    /* extra tensors: read all first, then apply */
    for (uint64_t k = 0; k < hdr[4]; k++) {
        uint64_t nl, nb;
        char name[1024];
        if (fread(&nl, 8, 1, f) != 1 || nl >= sizeof name || fread(name, 1, nl, f) != nl) {
            st = pl_error(PL_ERR_IO, "%s: truncated checkpoint", path);
            goto done;
        }
        name[nl] = 0;
        int id = pl_graph_find_value(t->g, name);
        if (fread(&nb, 8, 1, f) != 1 || id < 0 || !is_extra(t, id) || !t->g->values[id].t.data ||
            nb != pl_nbytes(&t->g->values[id].t)) {
            st = pl_error(PL_ERR_INPUT, "%s: tensor '%s' does not match the model", path, name);
            goto done;
        }
        if (fread(t->g->values[id].t.data, 1, nb, f) != nb) {
            st = pl_error(PL_ERR_IO, "%s: truncated checkpoint", path);
            goto done;
        }
    }
    memcpy(t->w, w, fb);
    if (m) memcpy(t->m, m, fb);
    if (v) memcpy(t->v, v, fb);
    free(t->mask);
    t->mask = mask;
    mask = NULL;
    t->optim.step = (int64_t)hdr[1];
done:
    fclose(f);
    free(w);
    free(m);
    free(v);
    free(mask);
    return st;
}
