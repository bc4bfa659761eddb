/* cast.c -- Cast and CastLike between every numeric type, bool and string.
 *
 * Plain C types convert with one generated loop per (source, destination) pair. float16
 * and bfloat16 go through float32 in small blocks; double -> half rounds to odd on the
 * way through float32 so that the result is correctly rounded (no double rounding).
 * Float -> integer never hits undefined behaviour: NaN gives 0, values are truncated
 * toward zero into int64 (saturating) and then wrap to the destination width, which is
 * what numpy and C on x86 give for in-range values. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ops/op.h"

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

/* ------------------------------------------------------------------ numeric loops */

static inline int64_t f2i64(double v) {
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}
static inline uint64_t f2u64(double v) {
    if (v >= 9.2233720368547758e18) return v >= 1.8446744073709552e19 ? UINT64_MAX : (uint64_t)v;
    return (uint64_t)f2i64(v);
}

/* Conversion of one value by (source kind, destination kind): F float, I integer, B bool.
 * U64 is separate because it needs the full unsigned range. */
#define CV_F_F(DT, v) ((DT)(v))
#define CV_F_I(DT, v) ((DT)f2i64((double)(v)))
#define CV_F_U(DT, v) ((DT)f2u64((double)(v)))
#define CV_F_B(DT, v) ((DT)((v) != 0))
#define CV_I_F(DT, v) ((DT)(v))
#define CV_I_I(DT, v) ((DT)(v))
#define CV_I_U(DT, v) ((DT)(v))
#define CV_I_B(DT, v) ((DT)((v) != 0))
#define CV_B_F(DT, v) ((DT)((v) != 0))
#define CV_B_I(DT, v) ((DT)((v) != 0))
#define CV_B_U(DT, v) ((DT)((v) != 0))
#define CV_B_B(DT, v) ((DT)((v) != 0))

typedef void (*cast_fn)(const void *src, void *dst, int64_t n);

#define CAST_FN(SS, ST, SK, SD, DS, DT, DK, DD)                                              \
    static void cast_##SS##_##DS(const void *s_, void *d_, int64_t n) {                      \
        const ST *s = (const ST *)s_;                                                        \
        DT *d = (DT *)d_;                                                                    \
        for (int64_t i = 0; i < n; i++) d[i] = CV_##SK##_##DK(DT, s[i]);                     \
    }

/* Source kinds: U64 reads like any integer. */
#define K_F F
#define K_I I
#define K_U I
#define K_B B
#define SRC_KIND(K) K_##K

#define CAST_FN_S(SS, ST, SK, SD, DS, DT, DK, DD) CAST_FN_S2(SS, ST, SRC_KIND(SK), SD, DS, DT, DK, DD)
#define CAST_FN_S2(...) CAST_FN(__VA_ARGS__)

#define CAST_DSTS(SS, ST, SK, SD)                                                            \
    CAST_FN_S(SS, ST, SK, SD, f32, float, F, PL_F32)                                         \
    CAST_FN_S(SS, ST, SK, SD, f64, double, F, PL_F64)                                        \
    CAST_FN_S(SS, ST, SK, SD, i8, int8_t, I, PL_I8)                                          \
    CAST_FN_S(SS, ST, SK, SD, i16, int16_t, I, PL_I16)                                       \
    CAST_FN_S(SS, ST, SK, SD, i32, int32_t, I, PL_I32)                                       \
    CAST_FN_S(SS, ST, SK, SD, i64, int64_t, I, PL_I64)                                       \
    CAST_FN_S(SS, ST, SK, SD, u8, uint8_t, I, PL_U8)                                         \
    CAST_FN_S(SS, ST, SK, SD, u16, uint16_t, I, PL_U16)                                      \
    CAST_FN_S(SS, ST, SK, SD, u32, uint32_t, I, PL_U32)                                      \
    CAST_FN_S(SS, ST, SK, SD, u64, uint64_t, U, PL_U64)                                      \
    CAST_FN_S(SS, ST, SK, SD, b, uint8_t, B, PL_BOOL)

#define CAST_SRCS(X)                                                                         \
    X(f32, float, F, PL_F32)                                                                 \
    X(f64, double, F, PL_F64)                                                                \
    X(i8, int8_t, I, PL_I8)                                                                  \
    X(i16, int16_t, I, PL_I16)                                                               \
    X(i32, int32_t, I, PL_I32)                                                               \
    X(i64, int64_t, I, PL_I64)                                                               \
    X(u8, uint8_t, I, PL_U8)                                                                 \
    X(u16, uint16_t, I, PL_U16)                                                              \
    X(u32, uint32_t, I, PL_U32)                                                              \
    X(u64, uint64_t, U, PL_U64)                                                              \
    X(b, uint8_t, B, PL_BOOL)

CAST_SRCS(CAST_DSTS)

#define SLOT(SS, ST, SK, SD, DS, DT, DK, DD) [SD][DD] = cast_##SS##_##DS,
#define SLOT_DSTS(SS, ST, SK, SD)                                                            \
    SLOT(SS, ST, SK, SD, f32, float, F, PL_F32)                                              \
    SLOT(SS, ST, SK, SD, f64, double, F, PL_F64)                                             \
    SLOT(SS, ST, SK, SD, i8, int8_t, I, PL_I8)                                               \
    SLOT(SS, ST, SK, SD, i16, int16_t, I, PL_I16)                                            \
    SLOT(SS, ST, SK, SD, i32, int32_t, I, PL_I32)                                            \
    SLOT(SS, ST, SK, SD, i64, int64_t, I, PL_I64)                                            \
    SLOT(SS, ST, SK, SD, u8, uint8_t, I, PL_U8)                                              \
    SLOT(SS, ST, SK, SD, u16, uint16_t, I, PL_U16)                                           \
    SLOT(SS, ST, SK, SD, u32, uint32_t, I, PL_U32)                                           \
    SLOT(SS, ST, SK, SD, u64, uint64_t, U, PL_U64)                                           \
    SLOT(SS, ST, SK, SD, b, uint8_t, B, PL_BOOL)

#define NSLOTS 17
static const cast_fn cast_tab[NSLOTS][NSLOTS] = {CAST_SRCS(SLOT_DSTS)};

static bool is_half(pl_dtype t) { return t == PL_F16 || t == PL_BF16; }

/* double -> float rounding to odd: the float keeps a sticky low bit, so a later
 * round-to-nearest to a narrower type (<= 22 bits of mantissa) is correctly rounded. */
static inline float d2f_odd(double d) {
    float f = (float)d;
    if ((double)f != d && d == d) {
        uint32_t b;
        memcpy(&b, &f, 4);
        if (fabs((double)f) > fabs(d)) b -= 1; /* toward zero */
        b |= 1;
        memcpy(&f, &b, 4);
    }
    return f;
}

static inline uint16_t f2half(pl_dtype t, float f) {
    return t == PL_F16 ? pl_f32_to_f16(f) : pl_f32_to_bf16(f);
}
static inline float half2f(pl_dtype t, uint16_t h) {
    return t == PL_F16 ? pl_f16_to_f32(h) : pl_bf16_to_f32(h);
}

#define BLOCK 256

/* Numeric cast of n elements; the table covers plain types, halves are staged. */
static void cast_numeric(pl_dtype st, const void *src, pl_dtype dt, void *dst, int64_t n) {
    if (!is_half(st) && !is_half(dt)) {
        cast_tab[st][dt](src, dst, n);
        return;
    }
    size_t ss = pl_dtype_size(st), ds = pl_dtype_size(dt);
    if (is_half(st)) {
        const uint16_t *h = (const uint16_t *)src;
        float buf[BLOCK];
        for (int64_t i = 0; i < n; i += BLOCK) {
            int64_t m = n - i < BLOCK ? n - i : BLOCK;
            for (int64_t j = 0; j < m; j++) buf[j] = half2f(st, h[i + j]);
            if (is_half(dt))
                for (int64_t j = 0; j < m; j++) ((uint16_t *)dst)[i + j] = f2half(dt, buf[j]);
            else
                cast_tab[PL_F32][dt](buf, (char *)dst + (size_t)i * ds, m);
        }
        return;
    }
    uint16_t *h = (uint16_t *)dst;
    if (st == PL_F32) {
        const float *f = (const float *)src;
        for (int64_t i = 0; i < n; i++) h[i] = f2half(dt, f[i]);
        return;
    }
    double buf[BLOCK];
    for (int64_t i = 0; i < n; i += BLOCK) {
        int64_t m = n - i < BLOCK ? n - i : BLOCK;
        cast_tab[st][PL_F64]((const char *)src + (size_t)i * ss, buf, m);
        for (int64_t j = 0; j < m; j++) h[i + j] = f2half(dt, d2f_odd(buf[j]));
    }
}

/* ------------------------------------------------------------------ strings */

/* Shortest "%g" text that reads back to the same value in the source type. */
static void format_float(char *buf, size_t n, double v, pl_dtype t) {
    if (v != v) {
        snprintf(buf, n, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v > 0 ? "INF" : "-INF");
        return;
    }
    int maxp = t == PL_F64 ? 17 : 9;
    for (int p = 1; p <= maxp; p++) {
        snprintf(buf, n, "%.*g", p, v);
        double back = strtod(buf, NULL);
        bool same;
        switch (t) {
        case PL_F64: same = back == v; break;
        case PL_F32: same = (float)back == (float)v; break;
        case PL_F16: same = pl_f32_to_f16(d2f_odd(back)) == pl_f32_to_f16((float)v); break;
        default: same = pl_f32_to_bf16(d2f_odd(back)) == pl_f32_to_bf16((float)v); break;
        }
        if (same) return;
    }
}

static pl_status to_string(pl_op_ctx *c, const pl_tensor *x, pl_tensor *y) {
    int64_t n = pl_numel(x);
    char **out = (char **)y->data;
    char buf[64];
    for (int64_t i = 0; i < n; i++) {
        pl_dtype t = x->dtype;
        if (t == PL_STRING) {
            const char *s = ((char *const *)x->data)[i];
            free(out[i]);
            out[i] = strdup(s ? s : "");
            if (!out[i]) return pl_op_error(c, PL_ERR_NOMEM, "out of memory copying strings");
            continue;
        }
        if (pl_dtype_is_float(t)) format_float(buf, sizeof buf, pl_get_f64(x, i), t);
        else if (t == PL_U64)
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)x->data)[i]);
        else snprintf(buf, sizeof buf, "%lld", (long long)pl_get_i64(x, i));
        free(out[i]);
        out[i] = strdup(buf);
        if (!out[i]) return pl_op_error(c, PL_ERR_NOMEM, "out of memory making strings");
    }
    return PL_OK;
}

/* Does s hold only trailing white space? */
static bool rest_blank(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    return *s == 0;
}

/* Parses one string for a numeric destination. Integers are read exactly when the text
 * is an integer literal; anything else goes through strtod ("1e3", "2.5", "INF",
 * "-inf", "NaN" in any case). */
static pl_status from_string(pl_op_ctx *c, const pl_tensor *x, pl_tensor *y) {
    int64_t n = pl_numel(x);
    char *const *in = (char *const *)x->data;
    pl_dtype t = y->dtype;
    for (int64_t i = 0; i < n; i++) {
        const char *s = in[i] ? in[i] : "";
        char *end;
        if (t == PL_BOOL) {
            const char *p = s;
            while (isspace((unsigned char)*p)) p++;
            if (strncasecmp(p, "true", 4) == 0 && rest_blank(p + 4)) {
                ((uint8_t *)y->data)[i] = 1;
                continue;
            }
            if (strncasecmp(p, "false", 5) == 0 && rest_blank(p + 5)) {
                ((uint8_t *)y->data)[i] = 0;
                continue;
            }
        }
        if (pl_dtype_is_int(t)) {
            errno = 0;
            if (t == PL_U64 && s[strspn(s, " \t\n\r\f\v")] != '-') {
                unsigned long long u = strtoull(s, &end, 10);
                if (end != s && errno == 0 && rest_blank(end)) {
                    ((uint64_t *)y->data)[i] = u;
                    continue;
                }
            } else if (t != PL_U64) {
                long long v = strtoll(s, &end, 10);
                if (end != s && errno == 0 && rest_blank(end)) {
                    pl_set_i64(y, i, v);
                    continue;
                }
            }
        }
        if (t == PL_F32) {
            float f = strtof(s, &end);
            if (end != s && rest_blank(end)) {
                ((float *)y->data)[i] = f;
                continue;
            }
        } else {
            double d = strtod(s, &end);
            if (end != s && rest_blank(end)) {
                if (is_half(t)) ((uint16_t *)y->data)[i] = f2half(t, d2f_odd(d));
                else cast_numeric(PL_F64, &d, t, (char *)y->data + (size_t)i * pl_dtype_size(t), 1);
                continue;
            }
        }
        return pl_op_error(c, PL_ERR_INPUT, "element %lld ('%.40s') is not a number", (long long)i,
                           s);
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ ops */

static bool castable(pl_dtype t) {
    return t == PL_STRING || t == PL_BOOL || pl_dtype_is_float(t) || pl_dtype_is_int(t);
}

static pl_status cast_infer_to(pl_op_ctx *c, int64_t to) {
    const pl_tensor *x = c->in[0];
    if (!castable(x->dtype))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has type %s, which Cast does not take",
                           pl_dtype_name(x->dtype));
    if (to <= 0 || to > 16 || !castable((pl_dtype)to)) {
        if (to >= 14 && to <= 23) /* complex, float8, int4 types */
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "cast to ONNX type %lld is not supported",
                               (long long)to);
        return pl_op_error(c, PL_ERR_MODEL, "cast to unknown type %lld", (long long)to);
    }
    if (x->ndim > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_MODEL, "input 0 has %d dims, at most %d supported", x->ndim,
                           PL_MAX_DIMS);
    if (x->ndim < 0) return PL_NEED_VALUE;
    for (int d = 0; d < x->ndim; d++)
        if (x->dims[d] < 0) return PL_NEED_VALUE;
    pl_op_set_out(c, 0, (pl_dtype)to, x->ndim, x->dims);
    return PL_OK;
}

pl_status cast_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    const pl_attr *a = pl_attr_find(c->node, "to");
    if (!a || a->type != PL_ATTR_INT)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'to' is missing or not an integer");
    return cast_infer_to(c, a->i);
}

pl_status castlike_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 2));
    return cast_infer_to(c, c->in[1]->dtype);
}

pl_status cast_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    int64_t n = pl_numel(x);
    if (n != pl_numel(y)) return pl_op_error(c, PL_ERR_INTERNAL, "output size differs from input");
    if (y->dtype == PL_STRING) return to_string(c, x, y);
    if (x->dtype == PL_STRING) return from_string(c, x, y);
    if (x->dtype == y->dtype) {
        memcpy(y->data, x->data, pl_nbytes(x));
        return PL_OK;
    }
    if (!castable(x->dtype) || !castable(y->dtype))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "cast from %s to %s", pl_dtype_name(x->dtype),
                           pl_dtype_name(y->dtype));
    cast_numeric(x->dtype, x->data, y->dtype, y->data, n);
    return PL_OK;
}

pl_status castlike_run(pl_op_ctx *c) { return cast_run(c); }
