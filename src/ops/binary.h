/* binary.h -- shared machinery of the element-wise op files (binary.c, compare.c,
 * logical.c, activation.c, unary.c): a broadcast iterator over up to three inputs and
 * macros that stamp out typed inner loops.
 *
 * The iterator first drops size-1 axes and merges axes that are contiguous for every
 * operand, so a same-shape op becomes one flat loop and "tensor op scalar" becomes one
 * loop with a zero stride; the inner loops special-case strides 0 and 1, which the
 * compiler vectorises. */
#ifndef PL_OPS_BINARY_H
#define PL_OPS_BINARY_H

#include <stdint.h>

#include "ops/op.h"

#define BINARY_MAX_IN 3

typedef struct binary_iter {
    int nin;
    int ndim;                               /* >= 1 after collapsing */
    int64_t dims[PL_MAX_DIMS];
    int64_t st[BINARY_MAX_IN][PL_MAX_DIMS]; /* element strides; the output is contiguous */
    int64_t numel;
} binary_iter;

/* Called once per inner run: element offsets of each input (off[k]) and of the
 * output, the run length n and the per-input element stride along the run. */
typedef void (*binary_inner_fn)(void *ctx, const int64_t *off, int64_t out_off, int64_t n,
                                const int64_t *stride);

/* Plans iteration of output shape (ndim, dims) over the inputs; each input must be
 * broadcastable to it (checked: PL_ERR_INTERNAL otherwise, never an out-of-bounds
 * read). */
pl_status binary_iter_init(binary_iter *it, int nin, const pl_tensor *const *ins, int ndim,
                           const int64_t *dims);
void binary_iter_run(const binary_iter *it, binary_inner_fn fn, void *ctx);

/* A typed inner loop: y[i] = f(a[i*sa], b[i*sb]) for i < n. */
typedef void (*binary_kernel)(const void *a, int64_t sa, const void *b, int64_t sb, void *y,
                              int64_t n);

/* Runs kernel k over out = f(a, b) with broadcasting to out's shape. `a` may be `out`
 * itself (used by the variadic ops to accumulate). */
pl_status binary_apply(const pl_tensor *a, const pl_tensor *b, pl_tensor *out, binary_kernel k);

/* Shape inference shared by the element-wise ops: inputs 0..n-1 (missing ones
 * skipped) must have known shapes (else PL_NEED_VALUE, re-inferred at run time);
 * writes their broadcast shape. */
pl_status binary_infer_shape(pl_op_ctx *c, int n, int *ndim, int64_t *dims);
/* Two-input ops (Add Sub Mul Div And Or Xor Equal Less Greater ...): the broadcast
 * shape of inputs 0 and 1, and the run, honouring the opset < 7 form where B is
 * broadcast only with attribute broadcast = 1, its dims aligned with A's at `axis`. */
pl_status binary_infer_pair(pl_op_ctx *c, int *ndim, int64_t *dims);
pl_status binary_apply_pair(pl_op_ctx *c, binary_kernel k);
/* True when every present input among the first n has a known rank and dims. */
bool binary_shapes_known(const pl_op_ctx *c, int n);

/* ---- typed loop generation ----
 * BIN_KERNEL(name, T, TY, C, U, LD, ST, EXPR) defines
 *   static void name(a, sa, b, sb, y, n)
 * over inputs stored as T, output stored as TY, computing in C: LD(stored) -> C,
 * ST(C result) -> TY, EXPR(C, U, x, z) the result for one element (U: the unsigned type
 * used for wrap-around integer arithmetic). INT_KERNELS takes one expression for the
 * signed and one for the unsigned types. */
#define LD_ID(v) (v)
#define ST_ID(v) (v)
#define LD_F16(v) pl_f16_to_f32(v)
#define ST_F16(v) pl_f32_to_f16(v)
#define LD_BF16(v) pl_bf16_to_f32(v)
#define ST_BF16(v) pl_f32_to_bf16(v)
#define LD_BOOL(v) ((v) != 0)

#define BIN_KERNEL(name, T, TY, C, U, LD, ST, EXPR)                                          \
    static void name(const void *a_, int64_t sa, const void *b_, int64_t sb, void *y_,       \
                     int64_t n) {                                                            \
        const T *a = (const T *)a_;                                                          \
        const T *b = (const T *)b_;                                                          \
        TY *y = (TY *)y_;                                                                    \
        if (sa == 1 && sb == 1) {                                                            \
            for (int64_t i = 0; i < n; i++) {                                                \
                C x = LD(a[i]), z = LD(b[i]);                                                \
                y[i] = ST(EXPR(C, U, x, z));                                                 \
            }                                                                                \
        } else if (sa == 1 && sb == 0) {                                                     \
            const C z = LD(b[0]);                                                            \
            for (int64_t i = 0; i < n; i++) {                                                \
                C x = LD(a[i]);                                                              \
                y[i] = ST(EXPR(C, U, x, z));                                                 \
            }                                                                                \
        } else if (sa == 0 && sb == 1) {                                                     \
            const C x = LD(a[0]);                                                            \
            for (int64_t i = 0; i < n; i++) {                                                \
                C z = LD(b[i]);                                                              \
                y[i] = ST(EXPR(C, U, x, z));                                                 \
            }                                                                                \
        } else {                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                \
                C x = LD(a[i * sa]), z = LD(b[i * sb]);                                      \
                y[i] = ST(EXPR(C, U, x, z));                                                 \
            }                                                                                \
        }                                                                                    \
    }

/* Families of instantiations: op##_f32 ... op##_u64 (and op##_bool for BOOL_KERNEL). */
#define FLOAT_KERNELS(op, TYF, STF, EXPR)                                                    \
    BIN_KERNEL(op##_f32, float, TYF(float), float, float, LD_ID, STF(ST_ID), EXPR)           \
    BIN_KERNEL(op##_f64, double, TYF(double), double, double, LD_ID, STF(ST_ID), EXPR)       \
    BIN_KERNEL(op##_f16, uint16_t, TYF(uint16_t), float, float, LD_F16, STF(ST_F16), EXPR)   \
    BIN_KERNEL(op##_bf16, uint16_t, TYF(uint16_t), float, float, LD_BF16, STF(ST_BF16), EXPR)
#define INT_KERNELS(op, TYF, SEXPR, UEXPR)                                                  \
    BIN_KERNEL(op##_i8, int8_t, TYF(int8_t), int8_t, unsigned, LD_ID, ST_ID, SEXPR)          \
    BIN_KERNEL(op##_i16, int16_t, TYF(int16_t), int16_t, unsigned, LD_ID, ST_ID, SEXPR)      \
    BIN_KERNEL(op##_i32, int32_t, TYF(int32_t), int32_t, uint32_t, LD_ID, ST_ID, SEXPR)      \
    BIN_KERNEL(op##_i64, int64_t, TYF(int64_t), int64_t, uint64_t, LD_ID, ST_ID, SEXPR)      \
    BIN_KERNEL(op##_u8, uint8_t, TYF(uint8_t), uint8_t, unsigned, LD_ID, ST_ID, UEXPR)       \
    BIN_KERNEL(op##_u16, uint16_t, TYF(uint16_t), uint16_t, unsigned, LD_ID, ST_ID, UEXPR)   \
    BIN_KERNEL(op##_u32, uint32_t, TYF(uint32_t), uint32_t, uint32_t, LD_ID, ST_ID, UEXPR)   \
    BIN_KERNEL(op##_u64, uint64_t, TYF(uint64_t), uint64_t, uint64_t, LD_ID, ST_ID, UEXPR)
#define UINT_KERNELS(op, TYF, EXPR)                                                          \
    BIN_KERNEL(op##_u8, uint8_t, TYF(uint8_t), uint8_t, unsigned, LD_ID, ST_ID, EXPR)        \
    BIN_KERNEL(op##_u16, uint16_t, TYF(uint16_t), uint16_t, unsigned, LD_ID, ST_ID, EXPR)    \
    BIN_KERNEL(op##_u32, uint32_t, TYF(uint32_t), uint32_t, uint32_t, LD_ID, ST_ID, EXPR)    \
    BIN_KERNEL(op##_u64, uint64_t, TYF(uint64_t), uint64_t, uint64_t, LD_ID, ST_ID, EXPR)
#define BOOL_KERNEL(op, EXPR)                                                                \
    BIN_KERNEL(op##_bool, uint8_t, uint8_t, uint8_t, unsigned, LD_BOOL, ST_ID, EXPR)

/* Output type selectors: same as the input, or bool (uint8 storage). */
#define TY_SAME(T) T
#define TY_BOOL(T) uint8_t
#define ST_SAME(st) st
#define ST_BOOL(st) ST_ID

/* Dispatch tables indexed by dtype (PL_BF16 == 16 is the largest). */
#define DTYPE_SLOTS 17
#define FLOAT_SLOTS(op)                                                                      \
    [PL_F32] = op##_f32, [PL_F64] = op##_f64, [PL_F16] = op##_f16, [PL_BF16] = op##_bf16
#define INT_SLOTS(op)                                                                        \
    [PL_I8] = op##_i8, [PL_I16] = op##_i16, [PL_I32] = op##_i32, [PL_I64] = op##_i64,        \
    [PL_U8] = op##_u8, [PL_U16] = op##_u16, [PL_U32] = op##_u32, [PL_U64] = op##_u64

static inline binary_kernel binary_kernel_for(const binary_kernel *tab, pl_dtype t) {
    return (int)t >= 0 && (int)t < DTYPE_SLOTS ? tab[t] : 0;
}

#endif
