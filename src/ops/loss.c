/* loss.c -- NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 *
 * Both view the scores as [N][C][D] (D = product of the trailing dims d1..dk) and the
 * targets as [N][D]. Everything is computed in double and rounded once at the end, so
 * the values are as exact as the output type allows (the trainer relies on this).
 *
 *   loss[n][d] = -logp[n][t][d] * w[t]   (t = target[n][d]; 0 when t == ignore_index)
 *   reduction "none": loss as is, shape (N, d1..dk)
 *             "sum":  sum of loss
 *             "mean": sum of loss / sum of w[t] over non-ignored elements (w = 1 when
 *                     no weight is given); 0/0 (everything ignored) gives NaN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/linalg_util.h"

typedef enum { LOSS_NONE, LOSS_SUM, LOSS_MEAN } loss_reduction;

typedef struct loss_shape {
    int64_t N, C, D;
    loss_reduction red;
    bool has_ii;
    int64_t ii;
} loss_shape;

/* Checks inputs 0 (scores), 1 (targets), 2 (optional weights) and the attributes. */
static pl_status loss_check(const pl_op_ctx *c, loss_shape *s) {
    static const pl_dtype tt[] = {PL_I32, PL_I64, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 3));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(pl_op_check_dtype(c, 1, tt));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(linalg_shapes_known(c));
    const pl_tensor *x = c->in[0], *t = c->in[1];
    if (x->ndim < 2)
        return pl_op_error(c, PL_ERR_MODEL, "input 0 has %d dims, expected at least 2 (N, C, ...)",
                           x->ndim);
    if (t->ndim != x->ndim - 1)
        return pl_op_error(c, PL_ERR_MODEL, "input 1 has %d dims, expected %d", t->ndim,
                           x->ndim - 1);
    for (int d = 0; d < t->ndim; d++) {
        int64_t want = x->dims[d == 0 ? 0 : d + 1];
        if (t->dims[d] != want)
            return pl_op_error(c, PL_ERR_INPUT, "input 1 dim %d is %lld, expected %lld", d,
                               (long long)t->dims[d], (long long)want);
    }
    s->N = x->dims[0];
    s->C = x->dims[1];
    s->D = linalg_prod(x->dims, 2, x->ndim);
    if (s->D < 0) return pl_op_error(c, PL_ERR_MODEL, "input 0 shape overflows");
    if (pl_has_in(c, 2)) {
        const pl_tensor *w = c->in[2];
        if (w->ndim != 1 || w->dims[0] != s->C)
            return pl_op_error(c, PL_ERR_INPUT, "input 2 (weight) must be 1-D with %lld values",
                               (long long)s->C);
    }
    const char *r = pl_attr_str(c->node, "reduction", "mean");
    if (strcmp(r, "none") == 0)
        s->red = LOSS_NONE;
    else if (strcmp(r, "sum") == 0)
        s->red = LOSS_SUM;
    else if (strcmp(r, "mean") == 0)
        s->red = LOSS_MEAN;
    else
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'reduction' = '%s' is not supported", r);
    s->has_ii = pl_attr_find(c->node, "ignore_index") != NULL;
    s->ii = pl_attr_int(c->node, "ignore_index", 0);
    return PL_OK;
}

static void loss_set_out(pl_op_ctx *c, const loss_shape *s) {
    const pl_tensor *x = c->in[0];
    if (s->red == LOSS_NONE)
        pl_op_set_out(c, 0, x->dtype, c->in[1]->ndim, c->in[1]->dims);
    else
        pl_op_set_out(c, 0, x->dtype, 0, NULL);
}

/* The loss proper, over log-probabilities logp laid out [N][C][D]. */
static pl_status loss_core(const pl_op_ctx *c, const loss_shape *s, const double *logp) {
    const pl_tensor *t = c->in[1], *w = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *out = c->out[0];
    int64_t nt = s->N * s->D;
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < nt; i++) {
        int64_t n = i / s->D, d = i % s->D; /* nt > 0 implies D > 0 */
        int64_t k = pl_get_i64(t, i);
        double v = 0;
        if (!(s->has_ii && k == s->ii)) {
            if (k < 0 || k >= s->C) {
                return pl_op_error(c, PL_ERR_INPUT,
                                   "target %lld at index %lld is outside [0, %lld)", (long long)k,
                                   (long long)i, (long long)s->C);
            }
            double wk = w ? pl_get_f64(w, k) : 1.0;
            v = -logp[(n * s->C + k) * s->D + d] * wk;
            wsum += wk;
        }
        if (s->red == LOSS_NONE) {
            if (out) pl_set_f64(out, i, v);
        } else {
            sum += v;
        }
    }
    if (s->red != LOSS_NONE && out) pl_set_f64(out, 0, s->red == LOSS_SUM ? sum : sum / wsum);
    return PL_OK;
}

/* ---- NegativeLogLikelihoodLoss ---- */

pl_status nllloss_infer(pl_op_ctx *c) {
    loss_shape s;
    PL_TRY(loss_check(c, &s));
    loss_set_out(c, &s);
    return PL_OK;
}

pl_status nllloss_run(pl_op_ctx *c) {
    loss_shape s;
    PL_TRY(loss_check(c, &s));
    double *logp = NULL;
    PL_TRY(linalg_load_f64(c, c->in[0], &logp));
    pl_status st = loss_core(c, &s, logp);
    free(logp);
    return st;
}

/* ---- SoftmaxCrossEntropyLoss ---- */

pl_status sceloss_infer(pl_op_ctx *c) {
    loss_shape s;
    PL_TRY(loss_check(c, &s));
    loss_set_out(c, &s);
    pl_op_same_as(c, 1, 0); /* log_prob, if wanted */
    return PL_OK;
}

pl_status sceloss_run(pl_op_ctx *c) {
    loss_shape s;
    PL_TRY(loss_check(c, &s));
    double *lp = NULL;
    PL_TRY(linalg_load_f64(c, c->in[0], &lp));
    /* log-softmax over C, in place, stable (max subtracted). */
    for (int64_t n = 0; n < s.N; n++)
        for (int64_t d = 0; d < s.D; d++) {
            double *p = lp + n * s.C * s.D + d;
            if (s.C == 0) continue;
            double mx = p[0], sum = 0;
            for (int64_t k = 1; k < s.C; k++)
                if (p[k * s.D] > mx) mx = p[k * s.D];
            for (int64_t k = 0; k < s.C; k++) sum += exp(p[k * s.D] - mx);
            double lse = mx + log(sum);
            for (int64_t k = 0; k < s.C; k++) p[k * s.D] -= lse;
        }
    pl_status st = loss_core(c, &s, lp);
    if (st == PL_OK && c->nout > 1 && c->out[1])
        linalg_store_f64(c->out[1], lp, pl_numel(c->in[0]));
    free(lp);
    return st;
}
