/* halos_op.c -- PillarHalosTopK, the internal op that `--lsh-output` (the session
 * option pillar_options_set_lsh_output) puts in place of a model's wide last layer
 * (src/graph/halos_pass.c). It never comes from a file.
 *
 *   inputs:  A [..., dim] float32, W float32 (trans_b = 1: [n_out, dim], else
 *            [dim, n_out]), optional bias float32 of n_out values (or one)
 *   attrs:   trans_b, alpha, beta (logits = alpha * A W + beta * bias, as Gemm),
 *            K, L (LSH key bits and tables), k (labels to return)
 *   outputs: scores [..., k] float32, labels [..., k] int64, best first
 *
 * At session creation prepare() builds a HALOS index over the output neurons
 * (src/lsh/halos.h) and keeps its own copy of W and the bias (the raw constants can
 * then be released). run() hashes each row of A, scores only the candidates the
 * tables return (plus the outputs with the largest bias), and writes the best k with
 * their exact logits. Slots beyond the number of candidates get label -1 and score
 * -inf. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "lsh/halos.h"
#include "ops/op.h"

typedef struct halos_state {
    pl_halos_index *ix;
    int nq;               /* one query object per pool thread */
    pl_halos_query **q;
    pl_status *status;    /* per thread: the first error of its rows */
    int64_t n_scored;     /* candidates scored in the last run, all rows (for tests) */
    int64_t *scored;      /* per thread */
} halos_state;

/* n_out and dim from W's shape and trans_b; error when W is not a matrix. */
static pl_status weight_dims(const pl_op_ctx *c, int64_t *n_out, int64_t *dim) {
    const pl_tensor *w = c->in[1];
    if (w->ndim != 2)
        return pl_op_error(c, PL_ERR_MODEL, "the weight has %d dims, expected 2", w->ndim);
    bool tb = pl_attr_int(c->node, "trans_b", 0) != 0;
    *n_out = tb ? w->dims[0] : w->dims[1];
    *dim = tb ? w->dims[1] : w->dims[0];
    return PL_OK;
}

pl_status halos_infer(pl_op_ctx *c) {
    static const pl_dtype f32[] = {PL_F32, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 3));
    for (int i = 0; i < 3; i++)
        if (pl_has_in(c, i)) PL_TRY(pl_op_check_dtype(c, i, f32));
    const pl_tensor *a = c->in[0];
    int64_t n_out, dim;
    PL_TRY(weight_dims(c, &n_out, &dim));
    if (a->ndim < 1) return pl_op_error(c, PL_ERR_INPUT, "input A is a scalar, expected [..., %lld]", (long long)dim);
    if (a->dims[a->ndim - 1] != dim)
        return pl_op_error(c, PL_ERR_INPUT, "input A has %lld values per row, the layer takes %lld",
                           (long long)a->dims[a->ndim - 1], (long long)dim);
    if (pl_has_in(c, 2)) {
        int64_t nb = pl_numel(c->in[2]);
        if (nb != n_out && nb != 1)
            return pl_op_error(c, PL_ERR_MODEL, "the bias has %lld values, expected %lld or 1", (long long)nb,
                               (long long)n_out);
    }
    int64_t k = pl_attr_int(c->node, "k", 5);
    if (k < 1) return pl_op_error(c, PL_ERR_MODEL, "k = %lld, expected >= 1", (long long)k);
    if (k > n_out) k = n_out;
    int64_t dims[PL_MAX_DIMS];
    memcpy(dims, a->dims, sizeof(int64_t) * (size_t)a->ndim);
    dims[a->ndim - 1] = k;
    pl_op_set_out(c, 0, PL_F32, a->ndim, dims);
    pl_op_set_out(c, 1, PL_I64, a->ndim, dims);
    return PL_OK;
}

void halos_release(void *p) {
    halos_state *s = p;
    if (!s) return;
    for (int i = 0; s->q && i < s->nq; i++) pl_halos_query_destroy(s->q[i]);
    free(s->q);
    free(s->status);
    free(s->scored);
    pl_halos_index_destroy(s->ix);
    free(s);
}

/* W (scaled by alpha) and the bias (scaled by beta, broadcast to n_out) in the form
 * the index takes: wout and bout point into the constants when no scaling is needed,
 * else to new buffers the caller frees (wfree, bfree). */
static pl_status index_inputs(const pl_op_ctx *c, int64_t n_out, int64_t dim, const float **wout,
                              float **wfree, const float **bout, float **bfree) {
    float alpha = pl_attr_float(c->node, "alpha", 1.0f), beta = pl_attr_float(c->node, "beta", 1.0f);
    const float *w = c->in[1]->data;
    *wout = w;
    *wfree = *bfree = NULL;
    *bout = NULL;
    if (alpha != 1.0f) {
        int64_t n = n_out * dim;
        if (!(*wfree = malloc(sizeof(float) * (size_t)n))) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++) (*wfree)[i] = alpha * w[i];
        *wout = *wfree;
    }
    if (!pl_has_in(c, 2)) return PL_OK;
    const float *b = c->in[2]->data;
    int64_t nb = pl_numel(c->in[2]);
    if (nb == n_out && beta == 1.0f) {
        *bout = b;
        return PL_OK;
    }
    if (!(*bfree = malloc(sizeof(float) * (size_t)n_out))) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    for (int64_t j = 0; j < n_out; j++) (*bfree)[j] = beta * b[nb == 1 ? 0 : j];
    *bout = *bfree;
    return PL_OK;
}

pl_status halos_prepare(pl_op_ctx *c) {
    if (!c->in[1]->data || (pl_has_in(c, 2) && !c->in[2]->data))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "the weight and bias must be constants of the model");
    int64_t n_out, dim;
    PL_TRY(weight_dims(c, &n_out, &dim));
    pl_halos_opts o;
    pl_halos_opts_default(&o, n_out);
    o.lsh.K = (int)pl_attr_int(c->node, "K", o.lsh.K);
    o.lsh.L = (int)pl_attr_int(c->node, "L", o.lsh.L);
    o.layout = pl_attr_int(c->node, "trans_b", 0) ? PL_HALOS_ROWS : PL_HALOS_COLS;
    o.threads = pl_threadpool_size(c->pool);
    halos_state *s = calloc(1, sizeof *s);
    if (!s) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    c->state = s; /* released by the executor, also on failure */
    const float *w, *b;
    float *wfree, *bfree;
    PL_TRY(index_inputs(c, n_out, dim, &w, &wfree, &b, &bfree));
    pl_status st = pl_halos_index_build(w, b, n_out, dim, &o, &s->ix);
    free(wfree);
    free(bfree);
    if (st != PL_OK) {
        pl_error_prefix("node '%s' (%s): HALOS index", c->node->name, c->node->op_type);
        return st;
    }
    s->nq = pl_threadpool_size(c->pool);
    s->q = calloc((size_t)s->nq, sizeof *s->q);
    s->status = calloc((size_t)s->nq, sizeof *s->status);
    s->scored = calloc((size_t)s->nq, sizeof *s->scored);
    if (!s->q || !s->status || !s->scored) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->nq; i++) PL_TRY(pl_halos_query_create(s->ix, &s->q[i]));
    int64_t k = pl_attr_int(c->node, "k", 5);
    if (k > n_out) k = n_out;
    c->scratch_size = sizeof(uint32_t) * (size_t)k * (size_t)s->nq;
    c->packed_inputs = 1u << 1 | (pl_has_in(c, 2) ? 1u << 2 : 0);
    /* candidates from the tables + outputs with the largest bias, scored per row */
    snprintf(c->kernel, sizeof c->kernel, "halos K=%d L=%d %lld+%lld cand", o.lsh.K, o.lsh.L,
             (long long)o.max_candidates, (long long)o.head);
    return PL_OK;
}

typedef struct halos_job {
    halos_state *s;
    const float *a;
    float *scores;
    int64_t *labels;
    uint32_t *lab32; /* k per thread */
    int64_t rows, dim, k, per_task;
} halos_job;

static void halos_rows(void *ctx, int task, int thread) {
    halos_job *j = ctx;
    halos_state *s = j->s;
    int64_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    uint32_t *lab = j->lab32 + (size_t)thread * (size_t)j->k;
    for (int64_t r = r0; r < r1 && s->status[thread] == PL_OK; r++) {
        int64_t n = 0;
        float *sc = j->scores + r * j->k;
        s->status[thread] = pl_halos_topk(s->q[thread], j->a + r * j->dim, (int)j->k, lab, sc, &n);
        s->scored[thread] += n;
        for (int64_t i = 0; i < j->k; i++) j->labels[r * j->k + i] = lab[i] == UINT32_MAX ? -1 : (int64_t)lab[i];
    }
}

pl_status halos_run(pl_op_ctx *c) {
    halos_state *s = c->state;
    if (!s) return pl_op_error(c, PL_ERR_UNSUPPORTED, "the HALOS index was not built (shapes not static)");
    const pl_tensor *a = c->in[0];
    int64_t dim = a->dims[a->ndim - 1], k = c->out[0] ? c->out[0]->dims[a->ndim - 1] : 0;
    if (!c->out[0] || !c->out[1]) return pl_op_error(c, PL_ERR_INTERNAL, "both outputs are needed");
    if (c->scratch_size < sizeof(uint32_t) * (size_t)k * (size_t)s->nq)
        return pl_op_error(c, PL_ERR_INTERNAL, "scratch too small");
    int64_t rows = dim ? pl_numel(a) / dim : 0;
    halos_job j = {s, a->data, c->out[0]->data, c->out[1]->data, c->scratch, rows, dim, k, 1};
    int nt = pl_threadpool_size(c->pool);
    int64_t ntasks = rows < (int64_t)nt * 4 ? rows : (int64_t)nt * 4;
    if (ntasks > 0) j.per_task = (rows + ntasks - 1) / ntasks;
    for (int i = 0; i < s->nq; i++) s->status[i] = PL_OK, s->scored[i] = 0;
    if (ntasks > 0) pl_threadpool_run(nt <= s->nq ? c->pool : NULL, halos_rows, &j, (int)((rows + j.per_task - 1) / j.per_task));
    s->n_scored = 0;
    for (int i = 0; i < s->nq; i++) {
        if (s->status[i] != PL_OK) {
            pl_error_prefix("node '%s' (%s)", c->node->name, c->node->op_type);
            return s->status[i];
        }
        s->n_scored += s->scored[i];
    }
    return PL_OK;
}
