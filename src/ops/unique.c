/* unique.c -- Unique: the distinct elements (or, with 'axis', the distinct slices along
 * that axis) of the input, sorted ascending (sorted=1, the default) or in order of first
 * occurrence, with the int64 outputs indices (first occurrence of each), inverse_indices
 * (for each input element/slice, its position in Y) and counts.
 *
 * The output shape depends on the values, so infer computes the whole result (and
 * returns PL_NEED_VALUE while the input is unknown); run computes it again to fill the
 * outputs. Slices compare lexicographically in C order; NaN equals NaN and ranks above
 * every number. */
#include <stdlib.h>
#include <string.h>

#include "kernels/reduce/reduce.h"
#include "ops/op.h"

typedef struct uq_view {
    const pl_tensor *x;
    int64_t m;      /* number of slices */
    int64_t outer;  /* slice m = elements (o * m + m_) * inner + i for o < outer, i < inner */
    int64_t inner;
} uq_view;

/* -1/0/1 comparing elements a and b of x, exact for every type. */
static int uq_elem_cmp(const pl_tensor *x, int64_t a, int64_t b) {
    switch (x->dtype) {
    case PL_STRING: {
        const char *s = ((char *const *)x->data)[a], *t = ((char *const *)x->data)[b];
        int r = strcmp(s ? s : "", t ? t : "");
        return r < 0 ? -1 : r > 0;
    }
    case PL_I64: {
        int64_t p = ((const int64_t *)x->data)[a], q = ((const int64_t *)x->data)[b];
        return p < q ? -1 : p > q;
    }
    case PL_U64: {
        uint64_t p = ((const uint64_t *)x->data)[a], q = ((const uint64_t *)x->data)[b];
        return p < q ? -1 : p > q;
    }
    default: {
        double p = pl_get_f64(x, a), q = pl_get_f64(x, b);
        bool pn = p != p, qn = q != q;
        if (pn || qn) return pn == qn ? 0 : (pn ? 1 : -1);
        return p < q ? -1 : p > q;
    }
    }
}

static int uq_slice_cmp(const uq_view *v, int64_t a, int64_t b) {
    for (int64_t o = 0; o < v->outer; o++) {
        int64_t pa = (o * v->m + a) * v->inner, pb = (o * v->m + b) * v->inner;
        for (int64_t i = 0; i < v->inner; i++) {
            int r = uq_elem_cmp(v->x, pa + i, pb + i);
            if (r) return r;
        }
    }
    return 0;
}

static bool uq_less(const void *ctx, int64_t a, int64_t b) {
    return uq_slice_cmp(ctx, a, b) < 0;
}

static bool uq_less_i64(const void *ctx, int64_t a, int64_t b) {
    const int64_t *k = ctx;
    return k[a] < k[b];
}

/* The result: u distinct slices; first[u], inverse[m], counts[u] (any may be NULL). */
typedef struct uq_result {
    int64_t u;
    int64_t *first, *inverse, *counts;
} uq_result;

static void uq_free(uq_result *r) {
    free(r->first), free(r->inverse), free(r->counts);
    memset(r, 0, sizeof *r);
}

/* Sorts the slice indices stably (so each run of equal slices starts with its first
 * occurrence), numbers the runs, and for sorted=0 renumbers them by first occurrence. */
static pl_status uq_compute(const pl_op_ctx *c, const uq_view *v, bool sorted, uq_result *r) {
    int64_t m = v->m;
    size_t sz = (size_t)(m > 0 ? m : 1) * sizeof(int64_t);
    int64_t *ord = malloc(sz), *tmp = malloc(sz), *grp = malloc(sz), *rep = malloc(sz),
            *cnt = malloc(sz), *pos = malloc(sz), *inv = malloc(sz);
    memset(r, 0, sizeof *r);
    if (!ord || !tmp || !grp || !rep || !cnt || !pos || !inv) {
        free(ord), free(tmp), free(grp), free(rep), free(cnt), free(pos), free(inv);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < m; i++) ord[i] = i;
    pl_sort_indices(ord, m, uq_less, v, tmp);
    int64_t u = 0;
    for (int64_t j = 0; j < m; j++) {
        if (j == 0 || uq_slice_cmp(v, ord[j - 1], ord[j]) != 0) {
            rep[u] = ord[j];
            cnt[u] = 0;
            u++;
        }
        cnt[u - 1]++;
        grp[ord[j]] = u - 1;
    }
    /* pos[g]: where group g goes in the output */
    if (sorted) {
        for (int64_t g = 0; g < u; g++) pos[g] = g;
    } else {
        for (int64_t g = 0; g < u; g++) ord[g] = g;
        pl_sort_indices(ord, u, uq_less_i64, rep, tmp);
        for (int64_t p = 0; p < u; p++) pos[ord[p]] = p;
    }
    size_t usz = (size_t)(u > 0 ? u : 1) * sizeof(int64_t);
    r->first = malloc(usz);
    r->counts = malloc(usz);
    if (!r->first || !r->counts) {
        free(ord), free(tmp), free(grp), free(rep), free(cnt), free(pos), free(inv);
        uq_free(r);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    for (int64_t g = 0; g < u; g++) {
        r->first[pos[g]] = rep[g];
        r->counts[pos[g]] = cnt[g];
    }
    for (int64_t i = 0; i < m; i++) inv[i] = pos[grp[i]];
    r->inverse = inv;
    r->u = u;
    free(ord), free(tmp), free(grp), free(rep), free(cnt), free(pos);
    return PL_OK;
}

/* Validates the node; fills the slice view. *axis is -1 without the attribute. */
static pl_status uq_setup(const pl_op_ctx *c, uq_view *v, int *axis) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    const pl_tensor *x = c->in[0];
    if (pl_dtype_size(x->dtype) == 0 && x->dtype != PL_STRING)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input type %s is not supported",
                           pl_dtype_name(x->dtype));
    if (x->ndim < 0 || !x->data) {
        if (c->planning) return PL_NEED_VALUE;
        return pl_op_error(c, PL_ERR_INTERNAL, "input value is not known");
    }
    if (x->ndim > PL_MAX_DIMS) return pl_op_error(c, PL_ERR_MODEL, "input rank %d", x->ndim);
    int64_t total = pl_numel(x);
    if (total < 0) return pl_op_error(c, PL_ERR_MODEL, "input shape is invalid");
    *axis = -1;
    v->x = x;
    if (pl_attr_find(c->node, "axis")) {
        if (x->ndim == 0) return pl_op_error(c, PL_ERR_MODEL, "attribute 'axis' given for a scalar input");
        PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, axis));
        v->m = x->dims[*axis];
        v->outer = 1;
        v->inner = 1;
        for (int d = 0; d < *axis; d++) v->outer *= x->dims[d];
        for (int d = *axis + 1; d < x->ndim; d++) v->inner *= x->dims[d];
    } else {
        v->m = total;
        v->outer = 1;
        v->inner = 1;
    }
    return PL_OK;
}

static void uq_set_shapes(pl_op_ctx *c, const uq_view *v, int axis, int64_t u) {
    const pl_tensor *x = c->in[0];
    int64_t dims[PL_MAX_DIMS];
    if (axis < 0) {
        pl_op_set_out(c, 0, x->dtype, 1, &u);
    } else {
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = u;
        pl_op_set_out(c, 0, x->dtype, x->ndim, dims);
    }
    pl_op_set_out(c, 1, PL_I64, 1, &u);
    pl_op_set_out(c, 2, PL_I64, 1, &v->m);
    pl_op_set_out(c, 3, PL_I64, 1, &u);
}

pl_status unique_infer(pl_op_ctx *c) {
    uq_view v;
    int axis;
    PL_TRY(uq_setup(c, &v, &axis));
    uq_result r;
    PL_TRY(uq_compute(c, &v, pl_attr_int(c->node, "sorted", 1) != 0, &r));
    uq_set_shapes(c, &v, axis, r.u);
    uq_free(&r);
    return PL_OK;
}

pl_status unique_run(pl_op_ctx *c) {
    uq_view v;
    int axis;
    PL_TRY(uq_setup(c, &v, &axis));
    uq_result r;
    PL_TRY(uq_compute(c, &v, pl_attr_int(c->node, "sorted", 1) != 0, &r));
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->nout > 0 ? c->out[0] : NULL;
    pl_status st = PL_OK;
    int64_t want[4] = {v.outer * r.u * v.inner, r.u, v.m, r.u};
    for (int i = 0; i < 4 && i < c->nout; i++)
        if (c->out[i] && pl_numel(c->out[i]) != want[i]) {
            uq_free(&r);
            return pl_op_error(c, PL_ERR_INTERNAL, "output %d has %lld elements, expected %lld",
                               i, (long long)pl_numel(c->out[i]), (long long)want[i]);
        }
    if (y) {
        size_t es = pl_dtype_size(x->dtype);
        if (x->dtype == PL_STRING) es = sizeof(char *);
        for (int64_t o = 0; o < v.outer && st == PL_OK; o++)
            for (int64_t q = 0; q < r.u && st == PL_OK; q++) {
                int64_t src = (o * v.m + r.first[q]) * v.inner;
                int64_t dst = (o * r.u + q) * v.inner;
                if (x->dtype != PL_STRING) {
                    memcpy((char *)y->data + dst * es, (const char *)x->data + src * es,
                           (size_t)v.inner * es);
                    continue;
                }
                char *const *xs = x->data;
                char **ys = y->data;
                for (int64_t i = 0; i < v.inner; i++) {
                    free(ys[dst + i]);
                    ys[dst + i] = strdup(xs[src + i] ? xs[src + i] : "");
                    if (!ys[dst + i]) {
                        st = pl_op_error(c, PL_ERR_NOMEM, "out of memory");
                        break;
                    }
                }
            }
    }
    if (st == PL_OK) {
        if (c->nout > 1 && c->out[1]) memcpy(c->out[1]->data, r.first, (size_t)r.u * 8);
        if (c->nout > 2 && c->out[2]) memcpy(c->out[2]->data, r.inverse, (size_t)v.m * 8);
        if (c->nout > 3 && c->out[3]) memcpy(c->out[3]->data, r.counts, (size_t)r.u * 8);
    }
    uq_free(&r);
    return st;
}
