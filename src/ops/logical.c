/* logical.c -- boolean and bitwise ops: And Or Xor Not, BitwiseNot, and Where (a
 * three-way broadcast select, over any element type including string). */
#include <stdlib.h>
#include <string.h>

#include "ops/binary.h"

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#define L_AND(C, U, x, z) ((uint8_t)((x) & (z)))
#define L_OR(C, U, x, z) ((uint8_t)((x) | (z)))
#define L_XOR(C, U, x, z) ((uint8_t)((x) ^ (z)))

/* LD_BOOL normalises every stored byte to 0/1 first. */
BOOL_KERNEL(land, L_AND)
BOOL_KERNEL(lor, L_OR)
BOOL_KERNEL(lxor, L_XOR)

static pl_status logical_infer(pl_op_ctx *c) {
    static const pl_dtype b[] = {PL_BOOL, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 2));
    PL_TRY(pl_op_check_dtype(c, 0, b));
    PL_TRY(pl_op_check_dtype(c, 1, b));
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(binary_infer_pair(c, &nd, dims));
    pl_op_set_out(c, 0, PL_BOOL, nd, dims);
    return PL_OK;
}

#define LOGICAL_OP(name, k)                                                                  \
    pl_status logical_##name##_infer(pl_op_ctx *c) { return logical_infer(c); }              \
    pl_status logical_##name##_run(pl_op_ctx *c) {                                           \
        return binary_apply_pair(c, k);                                                      \
    }

LOGICAL_OP(and, land_bool)
LOGICAL_OP(or, lor_bool)
LOGICAL_OP(xor, lxor_bool)

/* ------------------------------------------------------------------ Not, BitwiseNot */

static pl_status one_input_infer(pl_op_ctx *c, bool want_bool) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    pl_dtype t = c->in[0]->dtype;
    if (want_bool ? t != PL_BOOL : !pl_dtype_is_int(t))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has type %s, which this op does not take",
                           pl_dtype_name(t));
    if (!binary_shapes_known(c, 1)) return PL_NEED_VALUE;
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status logical_not_infer(pl_op_ctx *c) { return one_input_infer(c, true); }

pl_status logical_not_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const uint8_t *x = (const uint8_t *)c->in[0]->data;
    uint8_t *y = (uint8_t *)c->out[0]->data;
    int64_t n = pl_numel(c->in[0]);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] == 0;
    return PL_OK;
}

pl_status logical_bitnot_infer(pl_op_ctx *c) { return one_input_infer(c, false); }

/* ~x on the raw bits: the same for signed and unsigned types of one width. */
pl_status logical_bitnot_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const void *x = c->in[0]->data;
    void *y = c->out[0]->data;
    int64_t n = pl_numel(c->in[0]);
    switch (pl_dtype_size(c->in[0]->dtype)) {
    case 1:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)y)[i] = (uint8_t)~((const uint8_t *)x)[i];
        break;
    case 2:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)y)[i] = (uint16_t)~((const uint16_t *)x)[i];
        break;
    case 4:
        for (int64_t i = 0; i < n; i++) ((uint32_t *)y)[i] = ~((const uint32_t *)x)[i];
        break;
    default:
        for (int64_t i = 0; i < n; i++) ((uint64_t *)y)[i] = ~((const uint64_t *)x)[i];
        break;
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Where */

pl_status logical_where_infer(pl_op_ctx *c) {
    static const pl_dtype b[] = {PL_BOOL, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 3, 3));
    PL_TRY(pl_op_check_dtype(c, 0, b));
    PL_TRY(pl_op_check_same_dtype(c, 1, 2));
    if (pl_dtype_size(c->in[1]->dtype) == 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 1 has type %s, which this op does not take",
                           pl_dtype_name(c->in[1]->dtype));
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(binary_infer_shape(c, 3, &nd, dims));
    pl_op_set_out(c, 0, c->in[1]->dtype, nd, dims);
    return PL_OK;
}

typedef struct where_ctx {
    const uint8_t *cond;
    const char *x, *y;
    char *out;
    size_t es;
    bool strings;
    bool nomem;
} where_ctx;

#define WHERE_LOOP(T)                                                                        \
    {                                                                                        \
        const T *x = (const T *)w->x + off[1], *y = (const T *)w->y + off[2];                \
        T *o = (T *)w->out + out_off;                                                        \
        if (s[0] == 1 && s[1] == 1 && s[2] == 1)                                             \
            for (int64_t i = 0; i < n; i++) o[i] = cond[i] ? x[i] : y[i];                    \
        else                                                                                 \
            for (int64_t i = 0; i < n; i++) o[i] = cond[i * s[0]] ? x[i * s[1]] : y[i * s[2]]; \
        break;                                                                               \
    }

static void where_inner(void *vctx, const int64_t *off, int64_t out_off, int64_t n,
                        const int64_t *s) {
    where_ctx *w = (where_ctx *)vctx;
    const uint8_t *cond = w->cond + off[0];
    if (w->strings) {
        char *const *x = (char *const *)w->x + off[1], *const *y = (char *const *)w->y + off[2];
        char **o = (char **)w->out + out_off;
        for (int64_t i = 0; i < n; i++) {
            const char *v = cond[i * s[0]] ? x[i * s[1]] : y[i * s[2]];
            free(o[i]);
            o[i] = strdup(v ? v : "");
            if (!o[i]) w->nomem = true;
        }
        return;
    }
    switch (w->es) {
    case 1: WHERE_LOOP(uint8_t)
    case 2: WHERE_LOOP(uint16_t)
    case 4: WHERE_LOOP(uint32_t)
    default: WHERE_LOOP(uint64_t)
    }
}

pl_status logical_where_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    pl_tensor *out = c->out[0];
    if (c->in[1]->dtype != out->dtype || c->in[2]->dtype != out->dtype)
        return pl_op_error(c, PL_ERR_INPUT, "X and Y must have the output's type");
    binary_iter it;
    const pl_tensor *ins[3] = {c->in[0], c->in[1], c->in[2]};
    PL_TRY(binary_iter_init(&it, 3, ins, out->ndim, out->dims));
    where_ctx w = {(const uint8_t *)c->in[0]->data, (const char *)c->in[1]->data,
                   (const char *)c->in[2]->data, (char *)out->data, pl_dtype_size(out->dtype),
                   out->dtype == PL_STRING, false};
    binary_iter_run(&it, where_inner, &w);
    if (w.nomem) return pl_op_error(c, PL_ERR_NOMEM, "out of memory copying strings");
    return PL_OK;
}
