/* grad_shape.c -- backward of data movement (Reshape and friends, Transpose, Concat,
 * Split, Slice, Gather) and of the ReduceMean / ReduceSum reductions. Each routes the
 * output gradient back to where the forward read it from, adding (an input element may
 * be read several times, e.g. Gather with repeated indices). */
#include <stdlib.h>

#include "train/grad_util.h"

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t r = 1;
    for (int i = from; i < to; i++) r *= d[i];
    return r;
}

static pl_status axis_of(const tr_ctx *c, int64_t a, int rank, int *out) {
    return pl_op_axis(&c->op, a, rank, out);
}

/* Reshape, Flatten, Squeeze, Unsqueeze: same elements in the same order. */
pl_status grad_copy_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    gu_add(gu_f(c->gin[0]), gu_f(c->gout[0]), pl_numel(c->gout[0]));
    return PL_OK;
}

pl_status grad_transpose_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const pl_tensor *X = c->op.in[0], *Y = c->op.out[0];
    const int r = X->ndim;
    int64_t perm[PL_MAX_DIMS];
    size_t np;
    const int64_t *pa = pl_attr_ints(c->op.node, "perm", &np);
    for (int d = 0; d < r; d++) perm[d] = pa && np == (size_t)r ? pa[d] : r - 1 - d;
    int64_t xs[PL_MAX_DIMS], st[2][PL_MAX_DIMS];
    pl_strides(r, X->dims, xs);
    pl_strides(r, Y->dims, st[0]);
    for (int d = 0; d < r; d++) {
        if (perm[d] < 0 || perm[d] >= r)
            return pl_op_error(&c->op, PL_ERR_MODEL, "perm value out of range");
        st[1][d] = xs[perm[d]];
    }
    gu_walk w;
    gu_walk_init_st(&w, r, Y->dims, 2, (const int64_t(*)[PL_MAX_DIMS])st);
    const float *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    const int64_t n = pl_numel(Y);
    if (n) GU_WALK(&w, n, gx[o1] += g[o0]);
    return PL_OK;
}

pl_status grad_concat_bwd(tr_ctx *c) {
    if (!c->gout[0]) return PL_OK;
    const pl_tensor *Y = c->op.out[0];
    int axis;
    PL_TRY(axis_of(c, pl_attr_int(c->op.node, "axis", 0), Y->ndim, &axis));
    const int64_t outer = prod(Y->dims, 0, axis), inner = prod(Y->dims, axis + 1, Y->ndim);
    const int64_t ylen = Y->dims[axis] * inner;
    const float *g = gu_f(c->gout[0]);
    int64_t off = 0;
    for (int k = 0; k < c->op.nin; k++) {
        const pl_tensor *X = c->op.in[k];
        if (!X) continue;
        const int64_t xlen = X->dims[axis] * inner;
        float *gx = gu_f(c->gin[k]);
        if (gx)
            for (int64_t o = 0; o < outer; o++) gu_add(gx + o * xlen, g + o * ylen + off, xlen);
        off += xlen;
    }
    return PL_OK;
}

pl_status grad_split_bwd(tr_ctx *c) {
    if (!c->gin[0]) return PL_OK;
    const pl_tensor *X = c->op.in[0];
    int axis;
    PL_TRY(axis_of(c, pl_attr_int(c->op.node, "axis", 0), X->ndim, &axis));
    const int64_t outer = prod(X->dims, 0, axis), inner = prod(X->dims, axis + 1, X->ndim);
    const int64_t xlen = X->dims[axis] * inner;
    float *gx = gu_f(c->gin[0]);
    int64_t off = 0;
    for (int k = 0; k < c->op.nout; k++) {
        const pl_tensor *Y = c->op.out[k];
        if (!Y)
            return pl_op_error(&c->op, PL_ERR_UNSUPPORTED, "backward needs every output of Split");
        const int64_t ylen = Y->dims[axis] * inner;
        const float *g = gu_f(c->gout[k]);
        if (g)
            for (int64_t o = 0; o < outer; o++) gu_add(gx + o * xlen + off, g + o * ylen, ylen);
        off += ylen;
    }
    return PL_OK;
}

/* Reads the starts/ends/axes/steps of a Slice (attributes before opset 10, inputs
 * after) and gives, per axis of x, the first index and the step. */
static pl_status slice_params(const tr_ctx *c, int64_t *start, int64_t *step) {
    const pl_tensor *X = c->op.in[0];
    const int r = X->ndim;
    int64_t starts[PL_MAX_DIMS], ends[PL_MAX_DIMS], axes[PL_MAX_DIMS], steps[PL_MAX_DIMS];
    int ns = 0, ne = 0, na = 0, nst = 0;
    if (c->op.opset < 10) {
        size_t a, b, d;
        const int64_t *s = pl_attr_ints(c->op.node, "starts", &a),
                      *e = pl_attr_ints(c->op.node, "ends", &b);
        const int64_t *ax = pl_attr_ints(c->op.node, "axes", &d);
        if (!s || !e || a != b || a > PL_MAX_DIMS || (ax && d != a))
            return pl_op_error(&c->op, PL_ERR_MODEL, "bad starts/ends/axes attributes");
        ns = ne = (int)a;
        for (int i = 0; i < ns; i++) {
            starts[i] = s[i];
            ends[i] = e[i];
            axes[i] = ax ? ax[i] : i;
            steps[i] = 1;
        }
        na = nst = ns;
    } else {
        PL_TRY(pl_op_input_ints(&c->op, 1, starts, PL_MAX_DIMS, &ns));
        PL_TRY(pl_op_input_ints(&c->op, 2, ends, PL_MAX_DIMS, &ne));
        if (pl_has_in(&c->op, 3))
            PL_TRY(pl_op_input_ints(&c->op, 3, axes, PL_MAX_DIMS, &na));
        else
            for (na = 0; na < ns; na++) axes[na] = na;
        if (pl_has_in(&c->op, 4))
            PL_TRY(pl_op_input_ints(&c->op, 4, steps, PL_MAX_DIMS, &nst));
        else
            for (nst = 0; nst < ns; nst++) steps[nst] = 1;
        if (ne != ns || na != ns || nst != ns)
            return pl_op_error(&c->op, PL_ERR_MODEL, "starts/ends/axes/steps differ in length");
    }
    for (int d = 0; d < r; d++) {
        start[d] = 0;
        step[d] = 1;
    }
    for (int i = 0; i < ns; i++) {
        int ax;
        PL_TRY(axis_of(c, axes[i], r, &ax));
        const int64_t dim = X->dims[ax], sp = steps[i];
        if (sp == 0) return pl_op_error(&c->op, PL_ERR_MODEL, "slice step 0");
        int64_t s = starts[i];
        if (s < 0) s += dim;
        if (sp > 0)
            s = s < 0 ? 0 : (s > dim ? dim : s);
        else
            s = s < 0 ? 0 : (s > dim - 1 ? dim - 1 : s);
        start[ax] = s;
        step[ax] = sp;
    }
    return PL_OK;
}

pl_status grad_slice_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const pl_tensor *X = c->op.in[0], *Y = c->op.out[0];
    int64_t start[PL_MAX_DIMS], step[PL_MAX_DIMS], xs[PL_MAX_DIMS], st[2][PL_MAX_DIMS];
    PL_TRY(slice_params(c, start, step));
    pl_strides(X->ndim, X->dims, xs);
    pl_strides(Y->ndim, Y->dims, st[0]);
    int64_t base = 0;
    for (int d = 0; d < X->ndim; d++) {
        base += start[d] * xs[d];
        st[1][d] = step[d] * xs[d];
    }
    const int64_t n = pl_numel(Y);
    if (n == 0) return PL_OK;
    gu_walk w;
    gu_walk_init_st(&w, Y->ndim, Y->dims, 2, (const int64_t(*)[PL_MAX_DIMS])st);
    const float *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]) + base;
    GU_WALK(&w, n, gx[o1] += g[o0]);
    return PL_OK;
}

/* Gather: embedding rows (or slices along `axis`) accumulate the gradients of every
 * output that read them. The forward op has checked the indices. */
pl_status grad_gather_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const pl_tensor *X = c->op.in[0], *I = c->op.in[1];
    int axis;
    PL_TRY(axis_of(c, pl_attr_int(c->op.node, "axis", 0), X->ndim, &axis));
    const int64_t dim = X->dims[axis], outer = prod(X->dims, 0, axis),
                  inner = prod(X->dims, axis + 1, X->ndim);
    const int64_t ni = pl_numel(I);
    const float *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = pl_get_i64(I, j);
            if (k < 0) k += dim;
            if (k < 0 || k >= dim)
                return pl_op_error(&c->op, PL_ERR_INPUT, "index %lld is out of range",
                                   (long long)k);
            gu_add(gx + (o * dim + k) * inner, g + (o * ni + j) * inner, inner);
        }
    return PL_OK;
}

/* ReduceMean / ReduceSum: every input element gets its group's output gradient (over
 * the group size for the mean). Axes come from the attribute, or from input 1 for
 * ReduceSum at opset >= 13 and ReduceMean at opset >= 18. */
pl_status grad_reduce_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const pl_tensor *X = c->op.in[0];
    const bool mean = !strcmp(c->op.node->op_type, "ReduceMean");
    const bool axes_input = mean ? c->op.opset >= 18 : c->op.opset >= 13;
    int64_t axes[PL_MAX_DIMS];
    int na = 0;
    if (axes_input) {
        if (pl_has_in(&c->op, 1)) PL_TRY(pl_op_input_ints(&c->op, 1, axes, PL_MAX_DIMS, &na));
    } else {
        size_t n;
        const int64_t *a = pl_attr_ints(c->op.node, "axes", &n);
        if (n > PL_MAX_DIMS) return pl_op_error(&c->op, PL_ERR_MODEL, "too many axes");
        for (size_t i = 0; a && i < n; i++) axes[na++] = a[i];
    }
    const int r = X->ndim;
    bool red[PL_MAX_DIMS] = {false};
    if (na == 0) {
        if (pl_attr_int(c->op.node, "noop_with_empty_axes", 0)) return grad_copy_bwd(c);
        for (int d = 0; d < r; d++) red[d] = true;
    }
    for (int i = 0; i < na; i++) {
        int ax;
        PL_TRY(axis_of(c, axes[i], r, &ax));
        red[ax] = true;
    }
    pl_tensor view = {.dtype = PL_F32, .ndim = r};
    int64_t count = 1;
    for (int d = 0; d < r; d++) {
        view.dims[d] = red[d] ? 1 : X->dims[d];
        if (red[d]) count *= X->dims[d];
    }
    const float scale = mean && count > 0 ? 1.0f / (float)count : 1.0f;
    const pl_tensor *ops[2] = {NULL, &view};
    gu_walk w;
    gu_walk_init(&w, r, X->dims, 2, ops);
    const float *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    const int64_t n = pl_numel(X);
    if (n) GU_WALK(&w, n, gx[o0] += g[o1] * scale);
    return PL_OK;
}
