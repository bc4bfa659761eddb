/* topk.c -- TopK: the k largest (or smallest) elements along an axis and their int64
 * indices. k is an attribute before opset 10 and an input after; 'largest' and 'sorted'
 * exist from opset 11. Equal values come out lower index first; NaN ranks above every
 * number. Results are always sorted (sorted=0 leaves the order free). */
#include <stdlib.h>
#include <string.h>

#include "kernels/reduce/reduce.h"
#include "ops/op.h"

static pl_status topk_setup(const pl_op_ctx *c, int *axis, int64_t *k) {
    PL_TRY(pl_op_check_arity(c, 1, 2));
    const pl_tensor *x = c->in[0];
    if (x->dtype == PL_STRING || pl_dtype_size(x->dtype) == 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input type %s is not supported",
                           pl_dtype_name(x->dtype));
    PL_TRY(pl_op_input_known(c, 0));
    if (x->ndim == 0) return pl_op_error(c, PL_ERR_MODEL, "input is a scalar, needs rank >= 1");
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", -1), x->ndim, axis));
    if (pl_has_in(c, 1)) {
        int64_t kv[1];
        int n = 0;
        PL_TRY(pl_op_input_ints(c, 1, kv, 1, &n));
        if (n != 1) return pl_op_error(c, PL_ERR_MODEL, "input K must hold one value, has %d", n);
        *k = kv[0];
    } else {
        if (!pl_attr_find(c->node, "k"))
            return pl_op_error(c, PL_ERR_MODEL, "needs input K or attribute 'k'");
        *k = pl_attr_int(c->node, "k", 0);
    }
    if (*k < 0) return pl_op_error(c, PL_ERR_INPUT, "k = %lld is negative", (long long)*k);
    if (*k > x->dims[*axis])
        return pl_op_error(c, PL_ERR_INPUT, "k = %lld is larger than axis %d (size %lld)",
                           (long long)*k, *axis, (long long)x->dims[*axis]);
    return PL_OK;
}

pl_status topk_infer(pl_op_ctx *c) {
    int axis;
    int64_t k;
    PL_TRY(topk_setup(c, &axis, &k));
    const pl_tensor *x = c->in[0];
    int64_t dims[PL_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    pl_op_set_out(c, 0, x->dtype, x->ndim, dims);
    pl_op_set_out(c, 1, PL_I64, x->ndim, dims);
    return PL_OK;
}

/* One slice's keys, in one of three exact representations. */
typedef struct topk_keys {
    const double *f;   /* floats and small integers */
    const int64_t *i;  /* int64, or uint64 bits when is_unsigned */
    bool is_unsigned;
    bool largest;
} topk_keys;

/* -1, 0, 1 for a < b, a == b, a > b, with NaN above every number and equal to NaN. */
static int topk_cmp(const topk_keys *kk, int64_t a, int64_t b) {
    if (kk->f) {
        double x = kk->f[a], y = kk->f[b];
        bool xn = x != x, yn = y != y;
        if (xn || yn) return xn == yn ? 0 : (xn ? 1 : -1);
        return x < y ? -1 : x > y;
    }
    if (kk->is_unsigned) {
        uint64_t x = (uint64_t)kk->i[a], y = (uint64_t)kk->i[b];
        return x < y ? -1 : x > y;
    }
    int64_t x = kk->i[a], y = kk->i[b];
    return x < y ? -1 : x > y;
}

/* a comes before b: better value, or equal value and lower index. */
static bool topk_less(const void *ctx, int64_t a, int64_t b) {
    const topk_keys *kk = ctx;
    int r = topk_cmp(kk, a, b);
    if (r != 0) return kk->largest ? r > 0 : r < 0;
    return a < b;
}

pl_status topk_run(pl_op_ctx *c) {
    int axis;
    int64_t k;
    PL_TRY(topk_setup(c, &axis, &k));
    const pl_tensor *x = c->in[0];
    pl_tensor *yv = c->nout > 0 ? c->out[0] : NULL;
    pl_tensor *yi = c->nout > 1 ? c->out[1] : NULL;
    int64_t n = x->dims[axis], outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++) inner *= x->dims[d];
    if (k == 0 || outer * inner == 0) return PL_OK;

    bool use_f = x->dtype != PL_I64 && x->dtype != PL_U64; /* double is exact for the rest */
    topk_keys kk = {.is_unsigned = x->dtype == PL_U64,
                    .largest = pl_attr_int(c->node, "largest", 1) != 0};
    double *fk = use_f ? malloc((size_t)n * sizeof *fk) : NULL;
    int64_t *ik = use_f ? NULL : malloc((size_t)n * sizeof *ik);
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    int64_t *sel = malloc((size_t)n * sizeof *sel);
    int64_t *tmp = malloc((size_t)n * sizeof *tmp);
    if ((use_f ? !fk : !ik) || !idx || !sel || !tmp) {
        free(fk), free(ik), free(idx), free(sel), free(tmp);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    kk.f = fk;
    kk.i = ik;
    size_t es = pl_dtype_size(x->dtype);
    const char *xb = x->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i;
            if (x->dtype == PL_F32) {
                const float *xf = (const float *)x->data + base;
                for (int64_t j = 0; j < n; j++) fk[j] = xf[j * inner];
            } else if (use_f) {
                for (int64_t j = 0; j < n; j++) fk[j] = pl_get_f64(x, base + j * inner);
            } else {
                for (int64_t j = 0; j < n; j++) ik[j] = pl_get_i64(x, base + j * inner);
            }
            for (int64_t j = 0; j < n; j++) idx[j] = j;
            /* a bounded heap wins when k is small against n; otherwise sort it all */
            if (k * 8 < n) {
                pl_select_indices(idx, n, k, topk_less, &kk, sel, tmp);
            } else {
                pl_sort_indices(idx, n, topk_less, &kk, tmp);
                memcpy(sel, idx, (size_t)k * sizeof *sel);
            }
            int64_t obase = o * k * inner + i;
            for (int64_t j = 0; j < k; j++) {
                int64_t oi = obase + j * inner;
                if (yv) memcpy((char *)yv->data + oi * es, xb + (base + sel[j] * inner) * es, es);
                if (yi) ((int64_t *)yi->data)[oi] = sel[j];
            }
        }
    free(fk), free(ik), free(idx), free(sel), free(tmp);
    return PL_OK;
}
