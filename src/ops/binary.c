/* binary.c -- the broadcast iterator and the arithmetic element-wise ops: Add Sub Mul
 * Div Pow Mod BitShift BitwiseAnd BitwiseOr BitwiseXor and the variadic Sum Mean Max
 * Min.
 *
 * Integer arithmetic is exact and never undefined: add/sub/mul wrap around (computed in
 * the unsigned type), x / 0 and x % 0 are 0, INT_MIN / -1 wraps to INT_MIN, shifts by
 * the bit width or more give 0, and integer Pow uses exact repeated squaring. */
#include "ops/binary.h"

#include <math.h>
#include <string.h>

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

/* ------------------------------------------------------------------ iterator */

pl_status binary_iter_init(binary_iter *it, int nin, const pl_tensor *const *ins, int ndim,
                           const int64_t *dims) {
    int64_t full[BINARY_MAX_IN][PL_MAX_DIMS];
    if (nin < 1 || nin > BINARY_MAX_IN || ndim < 0 || ndim > PL_MAX_DIMS)
        return pl_error(PL_ERR_INTERNAL, "broadcast of %d inputs to rank %d", nin, ndim);
    it->nin = nin;
    it->numel = pl_dims_numel(ndim, dims);
    if (it->numel < 0) return pl_error(PL_ERR_MODEL, "output shape overflows");
    for (int k = 0; k < nin; k++) {
        const pl_tensor *t = ins[k];
        if (t->ndim < 0 || t->ndim > ndim)
            return pl_error(PL_ERR_INTERNAL, "input of rank %d cannot broadcast to rank %d",
                            t->ndim, ndim);
        int off = ndim - t->ndim;
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] != 1 && t->dims[d] != dims[off + d])
                return pl_error(PL_ERR_INTERNAL, "input dim %d (%lld) does not broadcast to %lld",
                                d, (long long)t->dims[d], (long long)dims[off + d]);
        pl_broadcast_strides(t, ndim, dims, full[k]);
    }
    /* Drop size-1 axes; merge an axis into the previous kept one when every operand
     * walks both as one contiguous run. */
    int r = 0;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] == 1) continue;
        bool merge = r > 0;
        for (int k = 0; k < nin && merge; k++)
            if (it->st[k][r - 1] != full[k][d] * dims[d]) merge = false;
        if (merge) {
            it->dims[r - 1] *= dims[d];
            for (int k = 0; k < nin; k++) it->st[k][r - 1] = full[k][d];
        } else {
            it->dims[r] = dims[d];
            for (int k = 0; k < nin; k++) it->st[k][r] = full[k][d];
            r++;
        }
    }
    if (r == 0) {
        it->dims[0] = 1;
        for (int k = 0; k < nin; k++) it->st[k][0] = 0;
        r = 1;
    }
    it->ndim = r;
    return PL_OK;
}

void binary_iter_run(const binary_iter *it, binary_inner_fn fn, void *ctx) {
    if (it->numel == 0) return;
    int last = it->ndim - 1;
    int64_t n = it->dims[last];
    int64_t inner[BINARY_MAX_IN], off[BINARY_MAX_IN] = {0}, idx[PL_MAX_DIMS] = {0};
    for (int k = 0; k < it->nin; k++) inner[k] = it->st[k][last];
    int64_t outer = it->numel / n, out_off = 0;
    for (int64_t o = 0; o < outer; o++, out_off += n) {
        fn(ctx, off, out_off, n, inner);
        for (int d = last - 1; d >= 0; d--) {
            for (int k = 0; k < it->nin; k++) off[k] += it->st[k][d];
            if (++idx[d] < it->dims[d]) break;
            for (int k = 0; k < it->nin; k++) off[k] -= it->st[k][d] * it->dims[d];
            idx[d] = 0;
        }
    }
}

typedef struct apply_ctx {
    binary_kernel k;
    const char *a, *b;
    char *y;
    size_t ea, eb, ey;
} apply_ctx;

static void apply_inner(void *vctx, const int64_t *off, int64_t out_off, int64_t n,
                        const int64_t *stride) {
    const apply_ctx *x = (const apply_ctx *)vctx;
    x->k(x->a + (size_t)off[0] * x->ea, stride[0], x->b + (size_t)off[1] * x->eb, stride[1],
         x->y + (size_t)out_off * x->ey, n);
}

pl_status binary_apply(const pl_tensor *a, const pl_tensor *b, pl_tensor *out, binary_kernel k) {
    if (!k) return pl_error(PL_ERR_INTERNAL, "no kernel for type %s", pl_dtype_name(a->dtype));
    binary_iter it;
    const pl_tensor *ins[2] = {a, b};
    PL_TRY(binary_iter_init(&it, 2, ins, out->ndim, out->dims));
    apply_ctx x = {k, (const char *)a->data, (const char *)b->data, (char *)out->data,
                   pl_dtype_size(a->dtype), pl_dtype_size(b->dtype), pl_dtype_size(out->dtype)};
    binary_iter_run(&it, apply_inner, &x);
    return PL_OK;
}

bool binary_shapes_known(const pl_op_ctx *c, int n) {
    for (int k = 0; k < n; k++) {
        if (!pl_has_in(c, k)) continue;
        const pl_tensor *t = c->in[k];
        if (t->ndim < 0) return false;
        for (int d = 0; d < t->ndim && d < PL_MAX_DIMS; d++)
            if (t->dims[d] < 0) return false;
    }
    return true;
}

pl_status binary_infer_shape(pl_op_ctx *c, int n, int *ndim, int64_t *dims) {
    if (n > c->nin) n = c->nin;
    for (int k = 0; k < n; k++)
        if (pl_has_in(c, k) && c->in[k]->ndim > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_MODEL, "input %d has %d dims, at most %d supported", k,
                               c->in[k]->ndim, PL_MAX_DIMS);
    if (!binary_shapes_known(c, n)) return PL_NEED_VALUE;
    PL_TRY(pl_op_broadcast(c, n, (const pl_tensor *const *)c->in, ndim, dims));
    if (pl_dims_numel(*ndim, dims) < 0)
        return pl_op_error(c, PL_ERR_MODEL, "output shape overflows");
    return PL_OK;
}

/* Opset < 7 broadcast (attribute broadcast = 1): B's dims sit at A's axes
 * [axis, axis + rank B), default the trailing ones. Gives B as a view of that rank,
 * which numpy-style broadcasting then handles. Later opsets: B unchanged. */
static pl_status legacy_b(pl_op_ctx *c, pl_tensor *view, const pl_tensor **b) {
    const pl_tensor *a = c->in[0], *s = c->in[1];
    *b = s;
    if (c->opset >= 7 || pl_attr_int(c->node, "broadcast", 0) == 0) return PL_OK;
    if (s->ndim > a->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "B has rank %d, more than A's %d", s->ndim, a->ndim);
    int64_t axis = pl_attr_int(c->node, "axis", a->ndim - s->ndim);
    if (axis < 0) axis += a->ndim;
    if (axis < 0 || axis + s->ndim > a->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'axis' = %lld does not fit B of rank %d in A of rank %d",
                           (long long)pl_attr_int(c->node, "axis", 0), s->ndim, a->ndim);
    *view = *s;
    view->ndim = a->ndim;
    for (int d = 0; d < a->ndim; d++) view->dims[d] = 1;
    for (int d = 0; d < s->ndim; d++) view->dims[axis + d] = s->dims[d];
    *b = view;
    return PL_OK;
}

pl_status binary_infer_pair(pl_op_ctx *c, int *ndim, int64_t *dims) {
    if (c->opset >= 7 || pl_attr_int(c->node, "broadcast", 0) == 0)
        return binary_infer_shape(c, 2, ndim, dims);
    for (int k = 0; k < 2; k++)
        if (c->in[k]->ndim > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_MODEL, "input %d has %d dims, at most %d supported", k,
                               c->in[k]->ndim, PL_MAX_DIMS);
    if (!binary_shapes_known(c, 2)) return PL_NEED_VALUE;
    pl_tensor view;
    const pl_tensor *ts[2] = {c->in[0], NULL};
    PL_TRY(legacy_b(c, &view, &ts[1]));
    PL_TRY(pl_op_broadcast(c, 2, ts, ndim, dims));
    if (pl_dims_numel(*ndim, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output shape overflows");
    return PL_OK;
}

pl_status binary_apply_pair(pl_op_ctx *c, binary_kernel k) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    pl_tensor view;
    const pl_tensor *b;
    PL_TRY(legacy_b(c, &view, &b));
    return binary_apply(c->in[0], b, c->out[0], k);
}

/* ------------------------------------------------------------------ kernels */

/* Integer helpers with defined results for every input. */
static inline int64_t idiv_s(int64_t x, int64_t z) {
    if (z == 0) return 0;
    if (z == -1) return (int64_t)(0 - (uint64_t)x);
    return x / z;
}
static inline uint64_t idiv_u(uint64_t x, uint64_t z) { return z ? x / z : 0; }
/* Mod with the sign of the divisor (Python / numpy), the ONNX default (fmod = 0). */
static inline int64_t imod_s(int64_t x, int64_t z) {
    if (z == 0 || z == -1) return 0;
    int64_t r = x % z;
    if (r != 0 && ((r < 0) != (z < 0))) r += z;
    return r;
}
/* C remainder (sign of the dividend), fmod = 1. */
static inline int64_t irem_s(int64_t x, int64_t z) {
    if (z == 0 || z == -1) return 0;
    return x % z;
}
static inline uint64_t imod_u(uint64_t x, uint64_t z) { return z ? x % z : 0; }

/* x^e by repeated squaring, wrapping modulo 2^64 (so the low bits are exact for every
 * narrower type too). */
static inline uint64_t ipow_u(uint64_t x, uint64_t e) {
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return r;
}
/* Signed: negative exponents give the truncated 1/x^|e|: 1, +-1, or 0 (also for x = 0,
 * where numpy refuses and other engines hit undefined behaviour). */
static inline uint64_t ipow_s(int64_t x, int64_t e) {
    if (e >= 0) return ipow_u((uint64_t)x, (uint64_t)e);
    if (x == 1) return 1;
    if (x == -1) return (e & 1) ? (uint64_t)-1 : 1;
    return 0;
}

#define F_ADD(C, U, x, z) ((x) + (z))
#define F_SUB(C, U, x, z) ((x) - (z))
#define F_MUL(C, U, x, z) ((x) * (z))
#define F_DIV(C, U, x, z) ((x) / (z))
#define I_ADD(C, U, x, z) ((C)((U)(x) + (U)(z)))
#define I_SUB(C, U, x, z) ((C)((U)(x) - (U)(z)))
#define I_MUL(C, U, x, z) ((C)((U)(x) * (U)(z)))
#define S_DIV(C, U, x, z) ((C)idiv_s(x, z))
#define U_DIV(C, U, x, z) ((C)idiv_u(x, z))
#define F_FMOD(C, U, x, z) (_Generic((x), float: fmodf, default: fmod)(x, z))
#define S_MOD(C, U, x, z) ((C)imod_s(x, z))
#define S_REM(C, U, x, z) ((C)irem_s(x, z))
#define U_MOD(C, U, x, z) ((C)imod_u(x, z))
#define F_POW(C, U, x, z) (_Generic((x), float: powf, default: pow)(x, z))
#define S_POW(C, U, x, z) ((C)ipow_s(x, z))
#define U_POW(C, U, x, z) ((C)ipow_u(x, z))
/* Max/Min propagate NaN like numpy. */
#define F_MAX(C, U, x, z) (((x) != (x) || (x) > (z)) ? (x) : (z))
#define F_MIN(C, U, x, z) (((x) != (x) || (x) < (z)) ? (x) : (z))
#define I_MAX(C, U, x, z) ((x) > (z) ? (x) : (z))
#define I_MIN(C, U, x, z) ((x) < (z) ? (x) : (z))
#define I_SHL(C, U, x, z) ((z) >= sizeof(C) * 8 ? (C)0 : (C)((U)(x) << (z)))
#define I_SHR(C, U, x, z) ((z) >= sizeof(C) * 8 ? (C)0 : (C)((x) >> (z)))
#define I_AND(C, U, x, z) ((C)((x) & (z)))
#define I_OR(C, U, x, z) ((C)((x) | (z)))
#define I_XOR(C, U, x, z) ((C)((x) ^ (z)))

FLOAT_KERNELS(add, TY_SAME, ST_SAME, F_ADD)
INT_KERNELS(add, TY_SAME, I_ADD, I_ADD)
FLOAT_KERNELS(sub, TY_SAME, ST_SAME, F_SUB)
INT_KERNELS(sub, TY_SAME, I_SUB, I_SUB)
FLOAT_KERNELS(mul, TY_SAME, ST_SAME, F_MUL)
INT_KERNELS(mul, TY_SAME, I_MUL, I_MUL)
FLOAT_KERNELS(div, TY_SAME, ST_SAME, F_DIV)
INT_KERNELS(div, TY_SAME, S_DIV, U_DIV)
FLOAT_KERNELS(fmod, TY_SAME, ST_SAME, F_FMOD)
INT_KERNELS(mod, TY_SAME, S_MOD, U_MOD)
INT_KERNELS(rem, TY_SAME, S_REM, U_MOD)
FLOAT_KERNELS(pow, TY_SAME, ST_SAME, F_POW)
INT_KERNELS(pow, TY_SAME, S_POW, U_POW)
FLOAT_KERNELS(max, TY_SAME, ST_SAME, F_MAX)
INT_KERNELS(max, TY_SAME, I_MAX, I_MAX)
FLOAT_KERNELS(min, TY_SAME, ST_SAME, F_MIN)
INT_KERNELS(min, TY_SAME, I_MIN, I_MIN)
UINT_KERNELS(shl, TY_SAME, I_SHL)
UINT_KERNELS(shr, TY_SAME, I_SHR)
INT_KERNELS(band, TY_SAME, I_AND, I_AND)
INT_KERNELS(bor, TY_SAME, I_OR, I_OR)
INT_KERNELS(bxor, TY_SAME, I_XOR, I_XOR)

static const binary_kernel add_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(add), INT_SLOTS(add)};
static const binary_kernel sub_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(sub), INT_SLOTS(sub)};
static const binary_kernel mul_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(mul), INT_SLOTS(mul)};
static const binary_kernel div_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(div), INT_SLOTS(div)};
static const binary_kernel mod_tab[DTYPE_SLOTS] = {INT_SLOTS(mod)};
static const binary_kernel fmod_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(fmod), INT_SLOTS(rem)};
static const binary_kernel pow_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(pow), INT_SLOTS(pow)};
static const binary_kernel max_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(max), INT_SLOTS(max)};
static const binary_kernel min_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(min), INT_SLOTS(min)};
static const binary_kernel shl_tab[DTYPE_SLOTS] = {
    [PL_U8] = shl_u8, [PL_U16] = shl_u16, [PL_U32] = shl_u32, [PL_U64] = shl_u64};
static const binary_kernel shr_tab[DTYPE_SLOTS] = {
    [PL_U8] = shr_u8, [PL_U16] = shr_u16, [PL_U32] = shr_u32, [PL_U64] = shr_u64};
static const binary_kernel band_tab[DTYPE_SLOTS] = {INT_SLOTS(band)};
static const binary_kernel bor_tab[DTYPE_SLOTS] = {INT_SLOTS(bor)};
static const binary_kernel bxor_tab[DTYPE_SLOTS] = {INT_SLOTS(bxor)};

/* ------------------------------------------------------------------ two-input ops */

static pl_status no_kernel(pl_op_ctx *c, int i) {
    return pl_op_error(c, PL_ERR_UNSUPPORTED, "input %d has type %s, which this op does not take",
                       i, pl_dtype_name(c->in[i]->dtype));
}

/* Two inputs of one type, output of that type and the broadcast shape. */
static pl_status same_type_infer(pl_op_ctx *c, const binary_kernel *tab) {
    PL_TRY(pl_op_check_arity(c, 2, 2));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    if (!binary_kernel_for(tab, c->in[0]->dtype)) return no_kernel(c, 0);
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(binary_infer_pair(c, &nd, dims));
    pl_op_set_out(c, 0, c->in[0]->dtype, nd, dims);
    return PL_OK;
}

static pl_status same_type_run(pl_op_ctx *c, const binary_kernel *tab) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    binary_kernel k = binary_kernel_for(tab, c->in[0]->dtype);
    if (!k || c->in[1]->dtype != c->in[0]->dtype) return no_kernel(c, 0);
    return binary_apply_pair(c, k);
}

#define SAME_TYPE_OP(name, tab)                                                              \
    pl_status binary_##name##_infer(pl_op_ctx *c) { return same_type_infer(c, tab); }        \
    pl_status binary_##name##_run(pl_op_ctx *c) { return same_type_run(c, tab); }

SAME_TYPE_OP(add, add_tab)
SAME_TYPE_OP(sub, sub_tab)
SAME_TYPE_OP(mul, mul_tab)
SAME_TYPE_OP(div, div_tab)
SAME_TYPE_OP(and, band_tab)
SAME_TYPE_OP(or, bor_tab)
SAME_TYPE_OP(xor, bxor_tab)

/* Mod: fmod = 0 is the sign-of-divisor modulo (integers only, per the spec), fmod = 1
 * the C remainder. */
pl_status binary_mod_infer(pl_op_ctx *c) {
    int64_t fm = pl_attr_int(c->node, "fmod", 0);
    if (fm != 0 && fm != 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'fmod' = %lld, expected 0 or 1",
                           (long long)fm);
    PL_TRY(pl_op_check_arity(c, 2, 2));
    if (fm == 0 && pl_dtype_is_float(c->in[0]->dtype))
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'fmod' must be 1 for %s inputs",
                           pl_dtype_name(c->in[0]->dtype));
    return same_type_infer(c, fm ? fmod_tab : mod_tab);
}

pl_status binary_mod_run(pl_op_ctx *c) {
    return same_type_run(c, pl_attr_int(c->node, "fmod", 0) ? fmod_tab : mod_tab);
}

static pl_status shift_direction(pl_op_ctx *c, const binary_kernel **tab) {
    const char *dir = pl_attr_str(c->node, "direction", NULL);
    if (!dir) return pl_op_error(c, PL_ERR_MODEL, "attribute 'direction' is missing");
    if (strcmp(dir, "LEFT") == 0) *tab = shl_tab;
    else if (strcmp(dir, "RIGHT") == 0) *tab = shr_tab;
    else
        return pl_op_error(c, PL_ERR_MODEL,
                           "attribute 'direction' = '%s', expected 'LEFT' or 'RIGHT'", dir);
    return PL_OK;
}

pl_status binary_shift_infer(pl_op_ctx *c) {
    const binary_kernel *tab;
    PL_TRY(shift_direction(c, &tab));
    return same_type_infer(c, tab);
}

pl_status binary_shift_run(pl_op_ctx *c) {
    const binary_kernel *tab;
    PL_TRY(shift_direction(c, &tab));
    return same_type_run(c, tab);
}

/* ------------------------------------------------------------------ Pow */

pl_status binary_pow_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 2));
    for (int i = 0; i < 2; i++) {
        pl_dtype t = c->in[i]->dtype;
        if (!pl_dtype_is_float(t) && !pl_dtype_is_int(t)) return no_kernel(c, i);
    }
    if (c->opset < 12 && c->in[0]->dtype != c->in[1]->dtype)
        return pl_op_error(c, PL_ERR_MODEL, "base is %s but exponent is %s (opset %d)",
                           pl_dtype_name(c->in[0]->dtype), pl_dtype_name(c->in[1]->dtype),
                           c->opset);
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(binary_infer_shape(c, 2, &nd, dims));
    pl_op_set_out(c, 0, c->in[0]->dtype, nd, dims);
    return PL_OK;
}

typedef struct pow_ctx {
    const pl_tensor *a, *b;
    pl_tensor *y;
} pow_ctx;

/* Base and exponent of different types: integers stay exact (the exponent read as
 * unsigned for unsigned types), anything with a float goes through double. */
static void pow_mixed_inner(void *vctx, const int64_t *off, int64_t out_off, int64_t n,
                            const int64_t *stride) {
    const pow_ctx *p = (const pow_ctx *)vctx;
    bool aint = pl_dtype_is_int(p->a->dtype), bint = pl_dtype_is_int(p->b->dtype);
    bool asig = pl_dtype_is_signed(p->a->dtype), bsig = pl_dtype_is_signed(p->b->dtype);
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = off[0] + i * stride[0], ib = off[1] + i * stride[1], iy = out_off + i;
        if (aint && bint) {
            int64_t x = pl_get_i64(p->a, ia), e = pl_get_i64(p->b, ib);
            uint64_t r;
            if (bsig && e < 0) r = asig ? ipow_s(x, e) : (uint64_t)(x == 1);
            else r = ipow_u((uint64_t)x, (uint64_t)e);
            pl_set_i64(p->y, iy, (int64_t)r);
        } else {
            pl_set_f64(p->y, iy, pow(pl_get_f64(p->a, ia), pl_get_f64(p->b, ib)));
        }
    }
}

pl_status binary_pow_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const pl_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype == PL_F32 && pl_numel(b) == 1 && pl_get_f64(b, 0) == 2.0)
        return binary_apply(a, a, c->out[0], mul_f32); /* x^2 (norms): x * x */
    if (a->dtype == b->dtype) return same_type_run(c, pow_tab);
    binary_iter it;
    const pl_tensor *ins[2] = {a, b};
    PL_TRY(binary_iter_init(&it, 2, ins, c->out[0]->ndim, c->out[0]->dims));
    pow_ctx p = {a, b, c->out[0]};
    binary_iter_run(&it, pow_mixed_inner, &p);
    return PL_OK;
}

/* ------------------------------------------------------------------ variadic */

static const binary_kernel *variadic_tab(const pl_op_ctx *c) {
    const char *op = c->node->op_type;
    if (strcmp(op, "Max") == 0) return max_tab;
    if (strcmp(op, "Min") == 0) return min_tab;
    return add_tab; /* Sum, Mean */
}

pl_status binary_variadic_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, -1));
    for (int i = 1; i < c->nin; i++) {
        if (!c->in[i]) return pl_op_error(c, PL_ERR_MODEL, "input %d is missing", i);
        PL_TRY(pl_op_check_same_dtype(c, 0, i));
    }
    pl_dtype t = c->in[0]->dtype;
    if (!binary_kernel_for(variadic_tab(c), t)) return no_kernel(c, 0);
    if (strcmp(c->node->op_type, "Mean") == 0 && !pl_dtype_is_float(t)) return no_kernel(c, 0);
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(binary_infer_shape(c, c->nin, &nd, dims));
    pl_op_set_out(c, 0, t, nd, dims);
    return PL_OK;
}

/* Folds the inputs pairwise into the output: out = in0 op in1, then out = out op in_k. */
pl_status binary_variadic_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    pl_tensor *y = c->out[0];
    binary_kernel k = binary_kernel_for(variadic_tab(c), c->in[0]->dtype);
    if (!k) return no_kernel(c, 0);
    if (c->nin == 1) {
        if (pl_numel(c->in[0]) != pl_numel(y))
            return pl_op_error(c, PL_ERR_INTERNAL, "output size differs from the input's");
        memcpy(y->data, c->in[0]->data, pl_nbytes(y));
    } else {
        PL_TRY(binary_apply(c->in[0], c->in[1], y, k));
        for (int i = 2; i < c->nin; i++) PL_TRY(binary_apply(y, c->in[i], y, k));
    }
    if (strcmp(c->node->op_type, "Mean") == 0 && c->nin > 1) {
        int64_t n = pl_numel(y);
        if (y->dtype == PL_F32) {
            float *d = (float *)y->data, cnt = (float)c->nin;
            for (int64_t i = 0; i < n; i++) d[i] /= cnt;
        } else {
            for (int64_t i = 0; i < n; i++) pl_set_f64(y, i, pl_get_f64(y, i) / c->nin);
        }
    }
    return PL_OK;
}
