/* compare.c -- comparisons with a bool result: Equal Less Greater LessOrEqual
 * GreaterOrEqual (multidirectional broadcast; Equal also on bool and string). NaN
 * compares false to everything, as in IEEE and numpy. */
#include <string.h>

#include "ops/binary.h"

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#define C_EQ(C, U, x, z) ((x) == (z))
#define C_LT(C, U, x, z) ((x) < (z))
#define C_GT(C, U, x, z) ((x) > (z))
#define C_LE(C, U, x, z) ((x) <= (z))
#define C_GE(C, U, x, z) ((x) >= (z))

FLOAT_KERNELS(eq, TY_BOOL, ST_BOOL, C_EQ)
INT_KERNELS(eq, TY_BOOL, C_EQ, C_EQ)
BOOL_KERNEL(eq, C_EQ)
FLOAT_KERNELS(lt, TY_BOOL, ST_BOOL, C_LT)
INT_KERNELS(lt, TY_BOOL, C_LT, C_LT)
FLOAT_KERNELS(gt, TY_BOOL, ST_BOOL, C_GT)
INT_KERNELS(gt, TY_BOOL, C_GT, C_GT)
FLOAT_KERNELS(le, TY_BOOL, ST_BOOL, C_LE)
INT_KERNELS(le, TY_BOOL, C_LE, C_LE)
FLOAT_KERNELS(ge, TY_BOOL, ST_BOOL, C_GE)
INT_KERNELS(ge, TY_BOOL, C_GE, C_GE)

/* Strings: element type is char *, NULL treated as "". */
static void eq_str(const void *a_, int64_t sa, const void *b_, int64_t sb, void *y_, int64_t n) {
    char *const *a = (char *const *)a_;
    char *const *b = (char *const *)b_;
    uint8_t *y = (uint8_t *)y_;
    for (int64_t i = 0; i < n; i++) {
        const char *p = a[i * sa], *q = b[i * sb];
        y[i] = strcmp(p ? p : "", q ? q : "") == 0;
    }
}

static const binary_kernel eq_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(eq), INT_SLOTS(eq),
                                                  [PL_BOOL] = eq_bool, [PL_STRING] = eq_str};
static const binary_kernel lt_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(lt), INT_SLOTS(lt)};
static const binary_kernel gt_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(gt), INT_SLOTS(gt)};
static const binary_kernel le_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(le), INT_SLOTS(le)};
static const binary_kernel ge_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(ge), INT_SLOTS(ge)};

static pl_status compare_infer(pl_op_ctx *c, const binary_kernel *tab) {
    PL_TRY(pl_op_check_arity(c, 2, 2));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    if (!binary_kernel_for(tab, c->in[0]->dtype))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has type %s, which this op does not take",
                           pl_dtype_name(c->in[0]->dtype));
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(binary_infer_pair(c, &nd, dims));
    pl_op_set_out(c, 0, PL_BOOL, nd, dims);
    return PL_OK;
}

static pl_status compare_run(pl_op_ctx *c, const binary_kernel *tab) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    if (c->in[0]->dtype != c->in[1]->dtype)
        return pl_op_error(c, PL_ERR_INPUT, "inputs have different types");
    return binary_apply_pair(c, binary_kernel_for(tab, c->in[0]->dtype));
}

#define COMPARE_OP(name, tab)                                                                \
    pl_status compare_##name##_infer(pl_op_ctx *c) { return compare_infer(c, tab); }         \
    pl_status compare_##name##_run(pl_op_ctx *c) { return compare_run(c, tab); }

COMPARE_OP(equal, eq_tab)
COMPARE_OP(less, lt_tab)
COMPARE_OP(greater, gt_tab)
COMPARE_OP(less_equal, le_tab)
COMPARE_OP(greater_equal, ge_tab)
