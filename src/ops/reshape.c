/* reshape.c -- ops that change a tensor's shape or the order of its elements:
 * Reshape, Flatten, Squeeze, Unsqueeze, Transpose, DepthToSpace, SpaceToDepth. */
#include "ops/tensor_misc.h"

/* ------------------------------------------------------------------ Reshape */

static pl_status reshape_shape(pl_op_ctx *c, int *ndim, int64_t *dims) {
    int64_t sh[PL_MAX_DIMS];
    int n = 0;
    if (c->opset < 5) {
        PL_TRY(tm_begin(c, 1, 1));
        size_t cnt = 0;
        const int64_t *a = pl_attr_ints(c->node, "shape", &cnt);
        if (cnt > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "shape has %zu dims, at most %d supported",
                               cnt, PL_MAX_DIMS);
        for (size_t i = 0; i < cnt; i++) sh[i] = a[i];
        n = (int)cnt;
    } else {
        PL_TRY(tm_begin(c, 2, 2));
        PL_TRY(tm_check_index(c, 1));
        if (c->in[1]->ndim != 1)
            return pl_op_error(c, PL_ERR_MODEL, "shape input has %d dims, expected 1",
                               c->in[1]->ndim);
        PL_TRY(pl_op_input_ints(c, 1, sh, PL_MAX_DIMS, &n));
    }
    const pl_tensor *x = c->in[0];
    bool allowzero = pl_attr_int(c->node, "allowzero", 0) != 0;
    int neg = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        int64_t v = sh[i];
        if (v == -1) {
            if (neg >= 0) return pl_op_error(c, PL_ERR_MODEL, "shape has more than one -1");
            neg = i;
            dims[i] = 1;
            continue;
        }
        if (v == 0 && !allowzero) {
            if (i >= x->ndim)
                return pl_op_error(c, PL_ERR_INPUT,
                                   "shape[%d] = 0 copies a dim the input (rank %d) lacks", i,
                                   x->ndim);
            v = x->dims[i];
        } else if (v < 0) {
            return pl_op_error(c, PL_ERR_MODEL, "shape[%d] = %lld is invalid", i, (long long)v);
        }
        dims[i] = v;
        if (v != 0 && known > INT64_MAX / v) return pl_op_error(c, PL_ERR_MODEL, "shape overflows");
        known *= v;
    }
    int64_t total = pl_numel(x);
    if (neg >= 0) {
        if (known == 0 || total % known != 0)
            return pl_op_error(c, PL_ERR_INPUT,
                               "cannot reshape %lld elements: -1 cannot be inferred",
                               (long long)total);
        dims[neg] = total / known;
    } else if (known != total) {
        char b1[128];
        return pl_op_error(c, PL_ERR_INPUT, "cannot reshape %s (%lld elements) into %lld elements",
                           pl_shape_str(x, b1, sizeof b1), (long long)total, (long long)known);
    }
    *ndim = n;
    return PL_OK;
}

pl_status reshape_infer(pl_op_ctx *c) {
    int n = 0;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(reshape_shape(c, &n, dims));
    pl_op_set_out(c, 0, c->in[0]->dtype, n, dims);
    return PL_OK;
}

/* Reshape, Flatten, Squeeze and Unsqueeze keep the element order: a plain copy. */
pl_status reshape_run(pl_op_ctx *c) {
    return tm_copy_all(c, c->out[0], c->in[0]);
}

/* ------------------------------------------------------------------ Flatten */

pl_status flatten_infer(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 1));
    const pl_tensor *x = c->in[0];
    int r = x->ndim;
    int64_t axis = pl_attr_int(c->node, "axis", 1);
    if (axis < -r || axis > r)
        return pl_op_error(c, PL_ERR_MODEL, "axis %lld is out of range for rank %d",
                           (long long)axis, r);
    if (axis < 0) axis += r;
    int64_t dims[2] = {tm_prod(x->dims, 0, (int)axis), tm_prod(x->dims, (int)axis, r)};
    pl_op_set_out(c, 0, x->dtype, 2, dims);
    return PL_OK;
}

/* ------------------------------------------------------------------ Squeeze, Unsqueeze */

pl_status squeeze_infer(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 2));
    const pl_tensor *x = c->in[0];
    int64_t axes[PL_MAX_DIMS];
    int n;
    bool present;
    PL_TRY(tm_axes(c, "axes", 13, 1, axes, PL_MAX_DIMS, &n, &present));
    bool drop[PL_MAX_DIMS] = {false};
    if (present && n > 0) {
        for (int i = 0; i < n; i++) {
            int a;
            PL_TRY(pl_op_axis(c, axes[i], x->ndim, &a));
            if (x->dims[a] != 1)
                return pl_op_error(c, PL_ERR_INPUT, "cannot squeeze axis %d of size %lld", a,
                                   (long long)x->dims[a]);
            drop[a] = true;
        }
    } else {
        for (int d = 0; d < x->ndim; d++) drop[d] = x->dims[d] == 1;
    }
    int64_t dims[PL_MAX_DIMS];
    int r = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!drop[d]) dims[r++] = x->dims[d];
    pl_op_set_out(c, 0, x->dtype, r, dims);
    return PL_OK;
}

pl_status unsqueeze_infer(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 2));
    const pl_tensor *x = c->in[0];
    int64_t axes[PL_MAX_DIMS];
    int n;
    bool present;
    PL_TRY(tm_axes(c, "axes", 13, 1, axes, PL_MAX_DIMS, &n, &present));
    if (!present) return pl_op_error(c, PL_ERR_MODEL, "axes are missing");
    int r = x->ndim + n;
    if (r > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "output would have %d dims, at most %d supported",
                           r, PL_MAX_DIMS);
    bool ins[PL_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        PL_TRY(pl_op_axis(c, axes[i], r, &a));
        if (ins[a]) return pl_op_error(c, PL_ERR_MODEL, "axis %d is repeated", a);
        ins[a] = true;
    }
    int64_t dims[PL_MAX_DIMS];
    for (int d = 0, k = 0; d < r; d++) dims[d] = ins[d] ? 1 : x->dims[k++];
    pl_op_set_out(c, 0, x->dtype, r, dims);
    return PL_OK;
}

/* ------------------------------------------------------------------ Transpose */

static pl_status transpose_perm(pl_op_ctx *c, int *perm) {
    PL_TRY(tm_begin(c, 1, 1));
    int r = c->in[0]->ndim;
    size_t n = 0;
    const int64_t *p = pl_attr_ints(c->node, "perm", &n);
    if (!p) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return PL_OK;
    }
    if ((int)n != r) return pl_op_error(c, PL_ERR_MODEL, "perm has %zu values for rank %d", n, r);
    bool seen[PL_MAX_DIMS] = {false};
    for (int i = 0; i < r; i++) {
        int a;
        PL_TRY(pl_op_axis(c, p[i], r, &a));
        if (seen[a]) return pl_op_error(c, PL_ERR_MODEL, "perm repeats axis %d", a);
        seen[a] = true;
        perm[i] = a;
    }
    return PL_OK;
}

pl_status transpose_infer(pl_op_ctx *c) {
    int perm[PL_MAX_DIMS];
    PL_TRY(transpose_perm(c, perm));
    const pl_tensor *x = c->in[0];
    int64_t dims[PL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = x->dims[perm[i]];
    pl_op_set_out(c, 0, x->dtype, x->ndim, dims);
    return PL_OK;
}

pl_status transpose_run(pl_op_ctx *c) {
    int perm[PL_MAX_DIMS];
    PL_TRY(transpose_perm(c, perm));
    const pl_tensor *x = c->in[0];
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    int64_t st[PL_MAX_DIMS], ss[PL_MAX_DIMS], dims[PL_MAX_DIMS];
    pl_strides(x->ndim, x->dims, st);
    for (int i = 0; i < x->ndim; i++) {
        ss[i] = st[perm[i]];
        dims[i] = x->dims[perm[i]];
    }
    tm_strided_copy(o->data, x->data, pl_dtype_size(x->dtype), x->ndim, dims, ss, 0);
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ DepthToSpace, SpaceToDepth */

/* Both ops are a 6-D transpose of a reshaped NCHW tensor. This fills the output shape
 * and the 6-D view (dims and source strides, in output order). */
static pl_status d2s_view(pl_op_ctx *c, int64_t *odims, int64_t *vd, int64_t *vs) {
    PL_TRY(tm_begin(c, 1, 1));
    const pl_tensor *x = c->in[0];
    if (x->ndim != 4) return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, expected 4", x->ndim);
    int64_t b = pl_attr_int(c->node, "blocksize", 0);
    if (b < 1 || b > (int64_t)1 << 20)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'blocksize' = %lld is invalid",
                           (long long)b);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (strcmp(c->node->op_type, "DepthToSpace") == 0) {
        if (C % (b * b) != 0)
            return pl_op_error(c, PL_ERR_INPUT,
                               "channels %lld are not a multiple of blocksize^2 %lld", (long long)C,
                               (long long)(b * b));
        const char *mode = pl_attr_str(c->node, "mode", "DCR");
        int64_t Cq = C / (b * b), HW = H * W;
        bool dcr = strcmp(mode, "DCR") == 0;
        if (!dcr && strcmp(mode, "CRD") != 0)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported",
                               mode);
        /* source strides of (c', b1, b2) in the input's channel axis */
        int64_t sc = dcr ? HW : b * b * HW, sb1 = dcr ? b * Cq * HW : b * HW,
                sb2 = dcr ? Cq * HW : HW;
        int64_t d[6] = {N, Cq, H, b, W, b}, s[6] = {C * HW, sc, W, sb1, 1, sb2};
        memcpy(vd, d, sizeof d);
        memcpy(vs, s, sizeof s);
        odims[0] = N, odims[1] = Cq, odims[2] = H * b, odims[3] = W * b;
    } else {
        if (H % b != 0 || W % b != 0)
            return pl_op_error(c, PL_ERR_INPUT,
                               "height %lld and width %lld must be multiples of %lld", (long long)H,
                               (long long)W, (long long)b);
        int64_t Hq = H / b, Wq = W / b;
        int64_t d[6] = {N, b, b, C, Hq, Wq}, s[6] = {C * H * W, W, 1, H * W, b * W, b};
        memcpy(vd, d, sizeof d);
        memcpy(vs, s, sizeof s);
        odims[0] = N, odims[1] = C * b * b, odims[2] = Hq, odims[3] = Wq;
    }
    return tm_check_shape(c, 4, odims);
}

pl_status d2s_infer(pl_op_ctx *c) {
    int64_t od[4], vd[6], vs[6];
    PL_TRY(d2s_view(c, od, vd, vs));
    pl_op_set_out(c, 0, c->in[0]->dtype, 4, od);
    return PL_OK;
}

pl_status d2s_run(pl_op_ctx *c) {
    int64_t od[4], vd[6], vs[6];
    PL_TRY(d2s_view(c, od, vd, vs));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    tm_strided_copy(o->data, c->in[0]->data, pl_dtype_size(o->dtype), 6, vd, vs, 0);
    return tm_own_strings(c, o);
}
