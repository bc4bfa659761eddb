/* tensor_misc.c -- helpers shared by the data-movement ops (see tensor_misc.h), and
 * the small generator/selection ops: Range, OneHot, EyeLike, Trilu, NonZero, Compress,
 * ReverseSequence. */
#include "ops/tensor_misc.h"

#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ shared helpers */

pl_status tm_begin(const pl_op_ctx *c, int min_in, int max_in) {
    PL_TRY(pl_op_check_arity(c, min_in, max_in));
    for (int i = 0; i < c->nin; i++) {
        const pl_tensor *t = c->in[i];
        if (!t) continue;
        if (t->ndim < 0) {
            if (c->planning) return PL_NEED_VALUE;
            return pl_op_error(c, PL_ERR_INTERNAL, "input %d has no known rank at run time", i);
        }
        if (t->ndim > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "input %d has %d dims, at most %d supported",
                               i, t->ndim, PL_MAX_DIMS);
        if (pl_numel(t) < 0)
            return pl_op_error(c, PL_ERR_MODEL, "input %d has a negative or overflowing shape", i);
    }
    return PL_OK;
}

pl_status tm_check_index(const pl_op_ctx *c, int i) {
    const pl_tensor *t = c->in[i];
    if (t && t->dtype != PL_I32 && t->dtype != PL_I64)
        return pl_op_error(c, PL_ERR_MODEL, "input %d must be int32 or int64, not %s", i,
                           pl_dtype_name(t->dtype));
    return PL_OK;
}

pl_status tm_check_shape(const pl_op_ctx *c, int ndim, const int64_t *dims) {
    if (ndim > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "output would have %d dims, at most %d supported",
                           ndim, PL_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0)
            return pl_op_error(c, PL_ERR_MODEL, "output dim %d would be negative (%lld)", i,
                               (long long)dims[i]);
    if (pl_dims_numel(ndim, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    return PL_OK;
}

pl_status tm_own_strings(const pl_op_ctx *c, pl_tensor *out) {
    if (!out || out->dtype != PL_STRING || !out->data) return PL_OK;
    int64_t n = pl_numel(out);
    char **s = (char **)out->data;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i]) continue;
        char *d = strdup(s[i]);
        if (!d) {
            for (int64_t j = i; j < n; j++) s[j] = NULL; /* still borrowed: drop them */
            return pl_op_error(c, PL_ERR_NOMEM, "out of memory copying strings");
        }
        s[i] = d;
    }
    return PL_OK;
}

pl_status tm_copy_all(const pl_op_ctx *c, pl_tensor *dst, const pl_tensor *src) {
    if (!dst) return PL_OK;
    int64_t n = pl_numel(src);
    if (n != pl_numel(dst) || dst->dtype != src->dtype)
        return pl_op_error(c, PL_ERR_INTERNAL, "output does not match its input");
    if (n > 0 && dst->data != src->data)
        memcpy(dst->data, src->data, (size_t)n * pl_dtype_size(src->dtype));
    return tm_own_strings(c, dst);
}

/* Copies the 2-D plane rows x cols where the source is contiguous along rows (stride 1)
 * and strided along cols, while the destination is contiguous along cols: a transpose,
 * done in square tiles so that both sides stay in cache. */
#define TM_TILE 32
/* Element copies go through fixed-size memcpy (compiled to plain moves) so that any
 * element type can be moved without aliasing concerns. */
#define TM_TILED(W)                                                                                \
    do {                                                                                           \
        for (int64_t r0 = 0; r0 < rows; r0 += TM_TILE)                                             \
            for (int64_t c0 = 0; c0 < cols; c0 += TM_TILE) {                                       \
                int64_t r1 = r0 + TM_TILE < rows ? r0 + TM_TILE : rows;                            \
                int64_t c1 = c0 + TM_TILE < cols ? c0 + TM_TILE : cols;                            \
                for (int64_t r = r0; r < r1; r++)                                                  \
                    for (int64_t q = c0; q < c1; q++)                                              \
                        memcpy(dst + (r * dstride + q) * W, src + (r + q * sstride) * W, W);       \
            }                                                                                      \
    } while (0)

static void tm_plane(char *dst, const char *src, size_t es, int64_t rows, int64_t cols,
                     int64_t dstride, int64_t sstride) {
    switch (es) {
    case 1:
        TM_TILED(1);
        break;
    case 2:
        TM_TILED(2);
        break;
    case 4:
        TM_TILED(4);
        break;
    case 8:
        TM_TILED(8);
        break;
    default:
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < cols; q++)
                memcpy(dst + (size_t)(r * dstride + q) * es, src + (size_t)(r + q * sstride) * es,
                       es);
    }
}

/* tm_strided_copy when dim j (< n-1) is the source's contiguous one: tiled planes of
 * (j, n-1), looping over the other dims. */
static void tm_strided_tiled(char *dst, const char *src, size_t es, int n, const int64_t *d,
                             const int64_t *s, int j) {
    int64_t ost[TM_MAX_DIMS], idx[TM_MAX_DIMS] = {0};
    ost[n - 1] = 1;
    for (int k = n - 2; k >= 0; k--) ost[k] = ost[k + 1] * d[k + 1];
    for (;;) {
        int64_t so = 0, dof = 0;
        for (int k = 0; k < n - 1; k++)
            if (k != j) so += idx[k] * s[k], dof += idx[k] * ost[k];
        tm_plane(dst + (size_t)dof * es, src + (size_t)so * es, es, d[j], d[n - 1], ost[j],
                 s[n - 1]);
        int k = n - 2;
        while (k >= 0) {
            if (k == j) {
                k--;
                continue;
            }
            if (++idx[k] < d[k]) break;
            idx[k] = 0;
            k--;
        }
        if (k < 0) break;
    }
}

/* Drops unit dims and merges dims that are contiguous in the source, so that the
 * common cases (plain copies, transposes of a few big blocks) run as long memcpy's. */
void tm_strided_copy(void *dst, const void *src, size_t es, int ndim, const int64_t *dims,
                     const int64_t *ss, int64_t soff) {
    int64_t d[TM_MAX_DIMS], s[TM_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0) return;
        if (dims[i] == 1) continue;
        if (n > 0 && s[n - 1] == ss[i] * dims[i]) {
            d[n - 1] *= dims[i];
            s[n - 1] = ss[i];
        } else {
            d[n] = dims[i];
            s[n] = ss[i];
            n++;
        }
    }
    char *o = (char *)dst;
    const char *in = (const char *)src + (size_t)soff * es;
    if (n == 0) {
        tm_copy1(o, in, es);
        return;
    }
    int64_t inner = d[n - 1], istride = s[n - 1];
    if (istride != 1 && inner >= 8)
        for (int j = n - 2; j >= 0; j--)
            if (s[j] == 1 && d[j] >= 8) {
                tm_strided_tiled(o, in, es, n, d, s, j);
                return;
            }
    int64_t idx[TM_MAX_DIMS] = {0};
    int64_t off = 0;
    for (;;) {
        tm_copy_run(o, in + (size_t)off * es, es, inner, istride);
        o += (size_t)inner * es;
        int k = n - 2;
        while (k >= 0) {
            idx[k]++;
            off += s[k];
            if (idx[k] < d[k]) break;
            off -= s[k] * d[k];
            idx[k] = 0;
            k--;
        }
        if (k < 0) break;
    }
}

pl_status tm_axes(const pl_op_ctx *c, const char *name, int input_opset, int in, int64_t *axes,
                  int max, int *count, bool *present) {
    *count = 0;
    *present = false;
    if (c->opset < input_opset) {
        size_t n = 0;
        const int64_t *a = pl_attr_ints(c->node, name, &n);
        if (!a) return PL_OK;
        if (n > (size_t)max)
            return pl_op_error(c, PL_ERR_MODEL, "attribute '%s' has %zu values, at most %d allowed",
                               name, n, max);
        for (size_t i = 0; i < n; i++) axes[i] = a[i];
        *count = (int)n;
        *present = true;
        return PL_OK;
    }
    if (!pl_has_in(c, in)) return PL_OK;
    PL_TRY(pl_op_input_ints(c, in, axes, max, count));
    *present = true;
    return PL_OK;
}

pl_status tm_elements_offsets(const pl_op_ctx *c, const pl_tensor *data, const pl_tensor *ind,
                              int axis, int64_t **offs) {
    *offs = NULL;
    int r = data->ndim;
    if (ind->ndim != r)
        return pl_op_error(c, PL_ERR_MODEL, "indices have %d dims, data has %d", ind->ndim, r);
    for (int d = 0; d < r; d++)
        if (d != axis && ind->dims[d] > data->dims[d])
            return pl_op_error(c, PL_ERR_INPUT, "indices dim %d (%lld) exceeds data dim (%lld)", d,
                               (long long)ind->dims[d], (long long)data->dims[d]);
    int64_t n = pl_numel(ind);
    if (n == 0) return PL_OK;
    int64_t *o = (int64_t *)malloc(sizeof(int64_t) * (size_t)n);
    if (!o) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    int64_t st[PL_MAX_DIMS], idx[PL_MAX_DIMS] = {0}, base = 0, dim = data->dims[axis];
    pl_strides(r, data->dims, st);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = tm_idx(ind, i);
        if (k < -dim || k >= dim) {
            free(o);
            return pl_op_error(c, PL_ERR_INPUT,
                               "index %lld is out of range for axis %d of size %lld", (long long)k,
                               axis, (long long)dim);
        }
        if (k < 0) k += dim;
        o[i] = base + k * st[axis];
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++;
            if (d != axis) base += st[d];
            if (idx[d] < ind->dims[d]) break;
            if (d != axis) base -= st[d] * ind->dims[d];
            idx[d] = 0;
        }
    }
    *offs = o;
    return PL_OK;
}

/* ------------------------------------------------------------------ Range */

/* Number of elements of Range; integer types are computed exactly in 128 bits. */
static pl_status range_count(pl_op_ctx *c, int64_t *n_out) {
    PL_TRY(tm_begin(c, 3, 3));
    pl_dtype t = c->in[0]->dtype;
    if (t == PL_STRING || t == PL_BOOL || t == PL_UNDEF)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "type %s is not supported", pl_dtype_name(t));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    for (int i = 0; i < 3; i++) {
        if (pl_numel(c->in[i]) != 1)
            return pl_op_error(c, PL_ERR_MODEL, "input %d must be a scalar", i);
        if (!c->in[i]->data) return PL_NEED_VALUE;
    }
    int64_t n;
    if (pl_dtype_is_int(t)) {
        __int128 s = pl_get_i64(c->in[0], 0), l = pl_get_i64(c->in[1], 0),
                 d = pl_get_i64(c->in[2], 0);
        if (t == PL_U64) {
            s = (uint64_t)pl_get_i64(c->in[0], 0);
            l = (uint64_t)pl_get_i64(c->in[1], 0);
            d = (uint64_t)pl_get_i64(c->in[2], 0);
        }
        if (d == 0) return pl_op_error(c, PL_ERR_INPUT, "delta is 0");
        __int128 diff = l - s, q;
        if ((diff > 0) != (d > 0) || diff == 0)
            q = 0;
        else if (d > 0)
            q = (diff + d - 1) / d;
        else
            q = (diff + d + 1) / d;
        if (q > ((__int128)1 << 48)) return pl_op_error(c, PL_ERR_INPUT, "range is too long");
        n = (int64_t)q;
    } else {
        double s = pl_get_f64(c->in[0], 0), l = pl_get_f64(c->in[1], 0),
               d = pl_get_f64(c->in[2], 0);
        if (d == 0) return pl_op_error(c, PL_ERR_INPUT, "delta is 0");
        double q = ceil((l - s) / d);
        if (q != q) return pl_op_error(c, PL_ERR_INPUT, "range length is not a number");
        if (q < 0) q = 0;
        if (q > 281474976710656.0) return pl_op_error(c, PL_ERR_INPUT, "range is too long");
        n = (int64_t)q;
    }
    *n_out = n;
    return PL_OK;
}

pl_status range_infer(pl_op_ctx *c) {
    int64_t n;
    PL_TRY(range_count(c, &n));
    pl_op_set_out(c, 0, c->in[0]->dtype, 1, &n);
    return PL_OK;
}

pl_status range_run(pl_op_ctx *c) {
    int64_t n;
    PL_TRY(range_count(c, &n));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    pl_dtype t = o->dtype;
    if (t == PL_F32) {
        float s = ((const float *)c->in[0]->data)[0], d = ((const float *)c->in[2]->data)[0];
        float *y = (float *)o->data;
        for (int64_t i = 0; i < n; i++) y[i] = s + (float)i * d;
    } else if (pl_dtype_is_int(t)) {
        uint64_t s = (uint64_t)pl_get_i64(c->in[0], 0), d = (uint64_t)pl_get_i64(c->in[2], 0);
        for (int64_t i = 0; i < n; i++) pl_set_i64(o, i, (int64_t)(s + (uint64_t)i * d));
    } else {
        double s = pl_get_f64(c->in[0], 0), d = pl_get_f64(c->in[2], 0);
        for (int64_t i = 0; i < n; i++) pl_set_f64(o, i, s + (double)i * d);
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ OneHot */

static pl_status onehot_params(pl_op_ctx *c, int *axis, int64_t *depth) {
    PL_TRY(tm_begin(c, 3, 3));
    const pl_tensor *ind = c->in[0];
    if (ind->dtype == PL_STRING || c->in[1]->dtype == PL_STRING)
        return pl_op_error(c, PL_ERR_MODEL, "indices and depth must be numeric");
    if (pl_numel(c->in[2]) != 2)
        return pl_op_error(c, PL_ERR_MODEL, "values must hold 2 elements (off, on), has %lld",
                           (long long)pl_numel(c->in[2]));
    int r = ind->ndim + 1;
    if (r > PL_MAX_DIMS) return pl_op_error(c, PL_ERR_UNSUPPORTED, "output would have %d dims", r);
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", -1), r, axis));
    if (pl_numel(c->in[1]) != 1) return pl_op_error(c, PL_ERR_MODEL, "depth must be a scalar");
    if (!c->in[1]->data) return PL_NEED_VALUE;
    double dv = pl_get_f64(c->in[1], 0);
    if (!(dv >= 0) || dv > 4e18) return pl_op_error(c, PL_ERR_INPUT, "depth %g is invalid", dv);
    int64_t d = pl_dtype_is_int(c->in[1]->dtype) ? pl_get_i64(c->in[1], 0) : (int64_t)dv;
    if (d < 0) return pl_op_error(c, PL_ERR_INPUT, "depth %lld is invalid", (long long)d);
    *depth = d;
    return PL_OK;
}

pl_status onehot_infer(pl_op_ctx *c) {
    int axis;
    int64_t depth;
    PL_TRY(onehot_params(c, &axis, &depth));
    const pl_tensor *ind = c->in[0];
    int64_t dims[PL_MAX_DIMS];
    int r = ind->ndim + 1;
    for (int i = 0, k = 0; i < r; i++) dims[i] = i == axis ? depth : ind->dims[k++];
    PL_TRY(tm_check_shape(c, r, dims));
    pl_op_set_out(c, 0, c->in[2]->dtype, r, dims);
    return PL_OK;
}

/* Indices outside [-depth, depth) give an all-"off" row, as the ONNX spec defines. */
pl_status onehot_run(pl_op_ctx *c) {
    int axis;
    int64_t depth;
    PL_TRY(onehot_params(c, &axis, &depth));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *ind = c->in[0], *vals = c->in[2];
    size_t es = pl_dtype_size(o->dtype);
    const char *off = (const char *)vals->data, *on = off + es;
    char *y = (char *)o->data;
    int64_t total = pl_numel(o);
    for (int64_t i = 0; i < total; i++) tm_copy1(y + (size_t)i * es, off, es);
    int64_t outer = tm_prod(ind->dims, 0, axis), inner = tm_prod(ind->dims, axis, ind->ndim);
    bool isint = pl_dtype_is_int(ind->dtype) || ind->dtype == PL_BOOL;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            int64_t k = a * inner + b, v;
            if (isint) {
                v = pl_get_i64(ind, k);
            } else {
                double f = pl_get_f64(ind, k);
                if (!(f > -9e18 && f < 9e18)) continue;
                v = (int64_t)f;
            }
            if (v < 0) v += depth;
            if (v < 0 || v >= depth) continue;
            tm_copy1(y + (size_t)((a * depth + v) * inner + b) * es, on, es);
        }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ EyeLike */

static pl_status eyelike_dtype(pl_op_ctx *c, pl_dtype *t) {
    PL_TRY(tm_begin(c, 1, 1));
    if (c->in[0]->ndim != 2)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, expected 2", c->in[0]->ndim);
    int64_t dt = pl_attr_int(c->node, "dtype", (int64_t)c->in[0]->dtype);
    *t = (pl_dtype)dt;
    if (dt < 0 || dt > 64 || pl_dtype_size(*t) == 0 || *t == PL_STRING)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'dtype' = %lld is not supported",
                           (long long)dt);
    return PL_OK;
}

pl_status eyelike_infer(pl_op_ctx *c) {
    pl_dtype t;
    PL_TRY(eyelike_dtype(c, &t));
    pl_op_set_out(c, 0, t, 2, c->in[0]->dims);
    return PL_OK;
}

pl_status eyelike_run(pl_op_ctx *c) {
    pl_dtype t;
    PL_TRY(eyelike_dtype(c, &t));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    int64_t rows = o->dims[0], cols = o->dims[1], k = pl_attr_int(c->node, "k", 0);
    for (int64_t i = 0; i < rows; i++) {
        if (k > cols || k < -rows) break;
        int64_t j = i + k;
        if (j >= 0 && j < cols) pl_set_f64(o, i * cols + j, 1.0);
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Trilu */

static pl_status trilu_check(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 2));
    if (c->in[0]->ndim < 2)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, needs at least 2", c->in[0]->ndim);
    if (pl_has_in(c, 1)) {
        PL_TRY(tm_check_index(c, 1));
        if (pl_numel(c->in[1]) != 1) return pl_op_error(c, PL_ERR_MODEL, "k must be a scalar");
    }
    return PL_OK;
}

pl_status trilu_infer(pl_op_ctx *c) {
    PL_TRY(trilu_check(c));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status trilu_run(pl_op_ctx *c) {
    PL_TRY(trilu_check(c));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    int64_t k = pl_has_in(c, 1) ? tm_idx(c->in[1], 0) : 0;
    bool upper = pl_attr_int(c->node, "upper", 1) != 0;
    int r = x->ndim;
    int64_t rows = x->dims[r - 2], cols = x->dims[r - 1];
    int64_t nmat = tm_prod(x->dims, 0, r - 2);
    int64_t lim = rows + cols + 1;
    if (k > lim) k = lim;
    if (k < -lim) k = -lim;
    size_t es = pl_dtype_size(x->dtype);
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    for (int64_t m = 0; m < nmat; m++)
        for (int64_t i = 0; i < rows; i++) {
            int64_t b, e; /* kept columns [b, e) of row i */
            if (upper) {
                b = i + k < 0 ? 0 : i + k;
                e = cols;
            } else {
                b = 0;
                e = i + k + 1 > cols ? cols : i + k + 1;
            }
            if (b >= e) continue;
            size_t off = (size_t)((m * rows + i) * cols + b) * es;
            memcpy(dst + off, src + off, (size_t)(e - b) * es);
        }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ NonZero */

static bool nz_at(const pl_tensor *t, int64_t i) {
    if (t->dtype == PL_STRING) {
        const char *s = ((char *const *)t->data)[i];
        return s && s[0];
    }
    if (pl_dtype_is_float(t->dtype)) return pl_get_f64(t, i) != 0;
    return pl_get_i64(t, i) != 0;
}

static pl_status nonzero_count(pl_op_ctx *c, int64_t *nnz) {
    PL_TRY(tm_begin(c, 1, 1));
    const pl_tensor *x = c->in[0];
    if (!x->data) return PL_NEED_VALUE;
    int64_t n = pl_numel(x), k = 0;
    if (x->dtype == PL_F32) {
        const float *p = (const float *)x->data;
        for (int64_t i = 0; i < n; i++) k += p[i] != 0;
    } else {
        for (int64_t i = 0; i < n; i++) k += nz_at(x, i);
    }
    *nnz = k;
    return PL_OK;
}

pl_status nonzero_infer(pl_op_ctx *c) {
    int64_t nnz;
    PL_TRY(nonzero_count(c, &nnz));
    const pl_tensor *x = c->in[0];
    int64_t dims[2] = {x->ndim > 0 ? x->ndim : 1, nnz};
    pl_op_set_out(c, 0, PL_I64, 2, dims);
    return PL_OK;
}

/* A scalar input is treated as a 1-element vector (as numpy does). */
pl_status nonzero_run(pl_op_ctx *c) {
    int64_t nnz;
    PL_TRY(nonzero_count(c, &nnz));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    int r = x->ndim > 0 ? x->ndim : 1;
    int64_t dims[PL_MAX_DIMS] = {1};
    for (int d = 0; d < x->ndim; d++) dims[d] = x->dims[d];
    int64_t n = pl_numel(x), idx[PL_MAX_DIMS] = {0}, j = 0;
    int64_t *y = (int64_t *)o->data;
    for (int64_t i = 0; i < n; i++) {
        if (nz_at(x, i) && j < nnz) {
            for (int d = 0; d < r; d++) y[d * nnz + j] = idx[d];
            j++;
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Compress */

/* axis < 0 on return: no axis (the input is flattened). *kept: selected count. */
static pl_status compress_params(pl_op_ctx *c, int *axis, int64_t *kept) {
    PL_TRY(tm_begin(c, 2, 2));
    const pl_tensor *x = c->in[0], *cond = c->in[1];
    if (cond->ndim != 1)
        return pl_op_error(c, PL_ERR_MODEL, "condition has %d dims, expected 1", cond->ndim);
    if (cond->dtype != PL_BOOL)
        return pl_op_error(c, PL_ERR_MODEL, "condition must be bool, not %s",
                           pl_dtype_name(cond->dtype));
    *axis = -1;
    int64_t len = pl_numel(x);
    if (pl_attr_find(c->node, "axis")) {
        if (x->ndim < 1) return pl_op_error(c, PL_ERR_MODEL, "axis given for a scalar input");
        PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, axis));
        len = x->dims[*axis];
    }
    if (!cond->data) return PL_NEED_VALUE;
    const uint8_t *b = (const uint8_t *)cond->data;
    int64_t n = cond->dims[0], k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!b[i]) continue;
        if (i >= len)
            return pl_op_error(c, PL_ERR_INPUT, "condition selects index %lld beyond length %lld",
                               (long long)i, (long long)len);
        k++;
    }
    *kept = k;
    return PL_OK;
}

pl_status compress_infer(pl_op_ctx *c) {
    int axis;
    int64_t kept;
    PL_TRY(compress_params(c, &axis, &kept));
    const pl_tensor *x = c->in[0];
    if (axis < 0) {
        pl_op_set_out(c, 0, x->dtype, 1, &kept);
    } else {
        int64_t dims[PL_MAX_DIMS];
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
        dims[axis] = kept;
        pl_op_set_out(c, 0, x->dtype, x->ndim, dims);
    }
    return PL_OK;
}

pl_status compress_run(pl_op_ctx *c) {
    int axis;
    int64_t kept;
    PL_TRY(compress_params(c, &axis, &kept));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    const uint8_t *b = (const uint8_t *)c->in[1]->data;
    int64_t outer = 1, len = pl_numel(x), inner = 1;
    if (axis >= 0) {
        outer = tm_prod(x->dims, 0, axis);
        len = x->dims[axis];
        inner = tm_prod(x->dims, axis + 1, x->ndim);
    }
    int64_t n = c->in[1]->dims[0] < len ? c->in[1]->dims[0] : len;
    size_t es = pl_dtype_size(x->dtype), blk = (size_t)inner * es;
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < n; i++)
            if (b[i]) {
                memcpy(dst, src + (size_t)(a * len + i) * blk, blk);
                dst += blk;
            }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ ReverseSequence */

static pl_status revseq_params(pl_op_ctx *c, int *batch_axis, int *time_axis) {
    PL_TRY(tm_begin(c, 2, 2));
    const pl_tensor *x = c->in[0], *lens = c->in[1];
    if (x->ndim < 2)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, needs at least 2", x->ndim);
    int64_t ba = pl_attr_int(c->node, "batch_axis", 1), ta = pl_attr_int(c->node, "time_axis", 0);
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
        return pl_op_error(c, PL_ERR_MODEL, "batch_axis %lld and time_axis %lld must be 0 and 1",
                           (long long)ba, (long long)ta);
    PL_TRY(tm_check_index(c, 1));
    if (lens->ndim != 1 || lens->dims[0] != x->dims[ba])
        return pl_op_error(c, PL_ERR_INPUT, "sequence_lens must have one value per batch (%lld)",
                           (long long)x->dims[ba]);
    *batch_axis = (int)ba;
    *time_axis = (int)ta;
    return PL_OK;
}

pl_status revseq_infer(pl_op_ctx *c) {
    int ba, ta;
    PL_TRY(revseq_params(c, &ba, &ta));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status revseq_run(pl_op_ctx *c) {
    int ba, ta;
    PL_TRY(revseq_params(c, &ba, &ta));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    int64_t B = x->dims[ba], T = x->dims[ta], inner = tm_prod(x->dims, 2, x->ndim);
    size_t es = pl_dtype_size(x->dtype), blk = (size_t)inner * es;
    for (int64_t b = 0; b < B; b++) {
        int64_t L = tm_idx(c->in[1], b);
        if (L < 0 || L > T)
            return pl_op_error(c, PL_ERR_INPUT, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                               (long long)b, (long long)L, (long long)T);
        for (int64_t t = 0; t < T; t++) {
            int64_t s = t < L ? L - 1 - t : t;
            int64_t od = ta == 0 ? t * B + b : b * T + t;
            int64_t sd = ta == 0 ? s * B + b : b * T + s;
            memcpy((char *)o->data + (size_t)od * blk, (const char *)x->data + (size_t)sd * blk,
                   blk);
        }
    }
    return tm_own_strings(c, o);
}
