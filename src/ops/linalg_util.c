/* linalg_util.c -- helpers for the linalg op family (see linalg_util.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/linalg_util.h"

pl_status linalg_shapes_known(const pl_op_ctx *c) {
    for (int i = 0; i < c->nin; i++) {
        const pl_tensor *t = c->in[i];
        if (!t) continue;
        if (t->ndim > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_MODEL, "input %d has %d dims, at most %d supported", i,
                               t->ndim, PL_MAX_DIMS);
        bool unknown = t->ndim < 0;
        for (int d = 0; d < t->ndim && !unknown; d++) unknown = t->dims[d] < 0;
        if (unknown) {
            if (c->planning) return PL_NEED_VALUE;
            return pl_op_error(c, PL_ERR_INPUT, "input %d has an unknown or negative shape", i);
        }
        if (pl_numel(t) < 0)
            return pl_op_error(c, PL_ERR_MODEL, "input %d has too many elements", i);
    }
    return PL_OK;
}

static void *alloc_elems(const pl_op_ctx *c, int64_t n, size_t es) {
    if (n < 0 || (uint64_t)n > (uint64_t)(SIZE_MAX / 2) / es) {
        pl_op_error(c, PL_ERR_NOMEM, "buffer of %lld elements is too large", (long long)n);
        return NULL;
    }
    void *p = malloc(n ? (size_t)n * es : 1);
    if (!p) pl_op_error(c, PL_ERR_NOMEM, "out of memory (%lld elements)", (long long)n);
    return p;
}

pl_status linalg_load_f32(const pl_op_ctx *c, const pl_tensor *t, float **buf) {
    int64_t n = pl_numel(t);
    float *p = alloc_elems(c, n, sizeof(float));
    *buf = p;
    if (!p) return PL_ERR_NOMEM;
    if (t->dtype == PL_F32) {
        if (n) memcpy(p, t->data, (size_t)n * sizeof(float));
    } else if (t->dtype == PL_F16) {
        const uint16_t *h = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = pl_f16_to_f32(h[i]);
    } else if (t->dtype == PL_BF16) {
        const uint16_t *h = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = pl_bf16_to_f32(h[i]);
    } else {
        for (int64_t i = 0; i < n; i++) p[i] = (float)pl_get_f64(t, i);
    }
    return PL_OK;
}

pl_status linalg_load_f64(const pl_op_ctx *c, const pl_tensor *t, double **buf) {
    int64_t n = pl_numel(t);
    double *p = alloc_elems(c, n, sizeof(double));
    *buf = p;
    if (!p) return PL_ERR_NOMEM;
    if (t->dtype == PL_F64) {
        if (n) memcpy(p, t->data, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++) p[i] = pl_get_f64(t, i);
    }
    return PL_OK;
}

pl_status linalg_load_i64(const pl_op_ctx *c, const pl_tensor *t, int64_t **buf) {
    int64_t n = pl_numel(t);
    int64_t *p = alloc_elems(c, n, sizeof(int64_t));
    *buf = p;
    if (!p) return PL_ERR_NOMEM;
    if (t->dtype == PL_I64 || t->dtype == PL_U64) {
        if (n) memcpy(p, t->data, (size_t)n * sizeof(int64_t));
    } else {
        for (int64_t i = 0; i < n; i++) p[i] = pl_get_i64(t, i);
    }
    return PL_OK;
}

void linalg_store_f32(pl_tensor *t, const float *src, int64_t n) {
    if (t->dtype == PL_F32) {
        if (n) memcpy(t->data, src, (size_t)n * sizeof(float));
    } else if (t->dtype == PL_F16) {
        uint16_t *h = t->data;
        for (int64_t i = 0; i < n; i++) h[i] = pl_f32_to_f16(src[i]);
    } else if (t->dtype == PL_BF16) {
        uint16_t *h = t->data;
        for (int64_t i = 0; i < n; i++) h[i] = pl_f32_to_bf16(src[i]);
    } else {
        for (int64_t i = 0; i < n; i++) pl_set_f64(t, i, src[i]);
    }
}

void linalg_store_f64(pl_tensor *t, const double *src, int64_t n) {
    if (t->dtype == PL_F64) {
        if (n) memcpy(t->data, src, (size_t)n * sizeof(double));
    } else {
        for (int64_t i = 0; i < n; i++) pl_set_f64(t, i, src[i]);
    }
}

int64_t linalg_prod(const int64_t *dims, int from, int to) {
    return pl_dims_numel(to - from, dims + from);
}

int64_t linalg_round_sat(double v, double add, int64_t lo, int64_t hi) {
    double r = v != v ? 0.0 : nearbyint(v); /* default rounding mode: half to even */
    r += add;
    if (!(r >= (double)lo)) return r != r ? 0 : lo;
    if (r >= (double)hi) return hi;
    return (int64_t)r;
}

bool linalg_int_range(pl_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case PL_U8:
        *lo = 0;
        *hi = UINT8_MAX;
        return true;
    case PL_I8:
        *lo = INT8_MIN;
        *hi = INT8_MAX;
        return true;
    case PL_U16:
        *lo = 0;
        *hi = UINT16_MAX;
        return true;
    case PL_I16:
        *lo = INT16_MIN;
        *hi = INT16_MAX;
        return true;
    case PL_U32:
        *lo = 0;
        *hi = UINT32_MAX;
        return true;
    case PL_I32:
        *lo = INT32_MIN;
        *hi = INT32_MAX;
        return true;
    default:
        return false;
    }
}
