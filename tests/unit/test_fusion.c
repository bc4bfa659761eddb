/* test_fusion.c -- the graph fusion passes (src/graph/fuse_*.c) on small graphs built
 * in the IR: for each, the session's step count with the passes (default) and without
 * (PILLAR_OPT=0), and the outputs of both, on every kernel level this CPU has. Also the
 * cases that must NOT fuse (broadcasting residuals, graph outputs, second readers,
 * other symbols, non-constant Clip bounds, float64), symbolic batch sizes re-planned at
 * run time, the fused-epilogue attributes on MatMul/Gemm of other dtypes, and the
 * float32 Einsum (batched GEMM) path against the float64 generic loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "exec/session.h"
#include "graph/ir.h"
#include "pillar.h"
#include "graph_build.h"

static int failures, cases;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 20) % 2000001) / 1000000.0f - 1.0f;
}

/* ------------------------------------------------------------------ graph building */

/* A graph input; a negative dim is symbolic, named by `syms` (one name per such dim,
 * comma separated, in order). */
static void tb_input(pl_model *m, const char *name, pl_dtype t, int ndim, const int64_t *dims,
                     const char *syms) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    pl_value *val = &g->values[v];
    val->kind = PL_VALUE_INPUT;
    val->declared = true;
    pl_tensor_set_shape(&val->t, t, ndim, dims);
    const char *s = syms;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] >= 0 || !s) continue;
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        val->dim_names[d] = strndup(s, len);
        s = e ? e + 1 : NULL;
    }
    g->inputs = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    g->inputs[g->ninputs++] = v;
}

static void tb_const(pl_model *m, const char *name, pl_dtype t, int ndim, const int64_t *dims,
                     const float *vals) {
    pl_value *val = &m->graph->values[tb_val(m, name)];
    val->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&val->t, t, ndim, dims);
    pl_tensor_alloc(&val->t);
    for (int64_t i = 0; i < pl_numel(&val->t); i++)
        pl_set_f64(&val->t, i, vals ? vals[i] : frand());
}

static void tb_scalar(pl_model *m, const char *name, float v) {
    tb_const(m, name, PL_F32, 0, NULL, &v);
}

/* ------------------------------------------------------------------ running */

#include "pass_check.h"

/* Checks on every ISA that the fused graph has `want` steps (and the unfused `ref`). */
static void expect(const char *what, pl_model *m, feed *f, int want, int ref, double tol) {
    cases++;
    for (int isa = 0; isa <= (int)pl_cpu()->best; isa++) {
        int r = -1, s = run_both(what, m, f, isa, 2, &r, tol);
        CHECK(s == want, "%s: %d steps with the passes, expected %d", what, s, want);
        CHECK(r == ref, "%s: %d steps without the passes, expected %d", what, r, ref);
    }
}

/* ------------------------------------------------------------------ cases */

static const int64_t d4x8[] = {4, 8}, d8x16[] = {8, 16}, d16[] = {16}, d4x16[] = {4, 16};

/* MatMul + bias + Relu, with the bias first in the Add. */
static void case_linear_relu(void) {
    pl_model *m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 3, (int64_t[]){2, 3, 8}, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_const(m, "b", PL_F32, 1, d16, NULL);
    tb_node(m, "MatMul", "x,w", "mm");
    tb_node(m, "Add", "b,mm", "a");
    tb_node(m, "Relu", "a", "y");
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 3, (int64_t[]){2, 3, 8}, 3);
    expect("matmul+bias+relu", m, &f, 1, 3, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* Gemm (transB, no C) + bias [1, N] + Sigmoid; and a Gemm with C + LeakyRelu(alpha 0). */
static void case_gemm(void) {
    pl_model *m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_const(m, "w", PL_F32, 2, (int64_t[]){16, 8}, NULL);
    tb_const(m, "b", PL_F32, 2, (int64_t[]){1, 16}, NULL);
    tb_const(m, "c2", PL_F32, 1, d16, NULL);
    tb_const(m, "w2", PL_F32, 2, (int64_t[]){16, 16}, NULL);
    int g = tb_node(m, "Gemm", "x,w", "g");
    tb_attr_i(m, g, "transB", 1);
    tb_attr_f(m, g, "alpha", 0.5f);
    tb_node(m, "Add", "g,b", "a");
    tb_node(m, "Sigmoid", "a", "s");
    int g2 = tb_node(m, "Gemm", "s,w2,c2", "g2");
    tb_attr_f(m, g2, "beta", 2.0f);
    int l = tb_node(m, "LeakyRelu", "g2", "y");
    tb_attr_f(m, l, "alpha", 0.0f);
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    expect("gemm+bias+sigmoid, gemm(C)+leakyrelu(0)", m, &f, 2, 5, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* Residual: Add(MatMul, r) + Tanh where r is computed after the MatMul (the MatMul must
 * move down), plus HardSigmoid (applied after the GEMM). */
static void case_residual_moves(void) {
    pl_model *m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_input(m, "r0", PL_F32, 2, d4x16, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_node(m, "MatMul", "x,w", "mm");
    tb_node(m, "Relu", "r0", "r");
    tb_node(m, "Add", "mm,r", "a");
    tb_node(m, "Tanh", "a", "t");
    int h = tb_node(m, "MatMul", "t,w2", "m2");
    (void)h;
    tb_const(m, "w2", PL_F32, 2, (int64_t[]){16, 16}, NULL);
    int hs = tb_node(m, "HardSigmoid", "m2", "y");
    tb_attr_f(m, hs, "alpha", 0.3f);
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    feed_add(&f, "r0", PL_F32, 2, d4x16, 3);
    expect("residual computed later, tanh, hardsigmoid", m, &f, 3, 6, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* Cases that must not fuse. */
static void case_no_fusion(void) {
    /* residual [4, 1] broadcasts: not a residual (and not a constant bias) */
    pl_model *m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_input(m, "r", PL_F32, 2, (int64_t[]){4, 1}, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_node(m, "MatMul", "x,w", "mm");
    tb_node(m, "Add", "mm,r", "y");
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    feed_add(&f, "r", PL_F32, 2, (int64_t[]){4, 1}, 3);
    expect("broadcast residual", m, &f, 2, 2, 1e-5);
    feed_free(&f);
    pl_model_free(m);

    /* the MatMul output is also a graph output; a second reader; bias that grows rank */
    m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_const(m, "b3", PL_F32, 3, (int64_t[]){1, 1, 16}, NULL);
    tb_node(m, "MatMul", "x,w", "mm");
    tb_node(m, "Relu", "mm", "y");
    tb_node(m, "MatMul", "x,w", "mm2");
    tb_node(m, "Relu", "mm2", "y2");
    tb_node(m, "Sigmoid", "mm2", "y3");
    tb_node(m, "MatMul", "x,w", "mm3");
    tb_node(m, "Add", "mm3,b3", "y4");
    tb_output(m, "mm");
    tb_output(m, "y");
    tb_output(m, "y2");
    tb_output(m, "y3");
    tb_output(m, "y4");
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    expect("outputs and second readers", m, &f, 7, 7, 1e-5);
    feed_free(&f);
    pl_model_free(m);

    /* Clip with a computed bound; float64 MatMul + bias */
    m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_input(m, "lo", PL_F32, 0, NULL, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_input(m, "xd", PL_F64, 2, d4x8, NULL);
    tb_const(m, "wd", PL_F64, 2, d8x16, NULL);
    tb_const(m, "bd", PL_F64, 1, d16, NULL);
    tb_scalar(m, "hi", 0.5f);
    tb_node(m, "MatMul", "x,w", "mm");
    tb_node(m, "Clip", "mm,lo,hi", "y");
    tb_node(m, "MatMul", "xd,wd", "md");
    tb_node(m, "Add", "md,bd", "yd");
    tb_output(m, "y");
    tb_output(m, "yd");
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    feed_add(&f, "lo", PL_F32, 0, NULL, 3);
    feed_add(&f, "xd", PL_F64, 2, d4x8, 3);
    expect("computed clip bound, float64", m, &f, 4, 4, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* Layer norm written out (with Constant nodes for 2 and eps), as PyTorch exports it. */
static void case_layernorm(bool affine) {
    pl_model *m = tb_new("test_fusion", 13);
    const int64_t dx[] = {2, 5, 24};
    tb_input(m, "x", PL_F32, 3, dx, NULL);
    tb_const(m, "gamma", PL_F32, 1, (int64_t[]){24}, NULL);
    tb_const(m, "beta", PL_F32, 1, (int64_t[]){24}, NULL);
    const int64_t last[] = {-1};
    int r1 = tb_node(m, "ReduceMean", "x", "m");
    tb_attr_ints(m, r1, "axes", 1, last);
    tb_node(m, "Sub", "x,m", "d");
    int c2 = tb_node(m, "Constant", "", "two");
    pl_attr *a = tb_attr(m, c2, "value", PL_ATTR_TENSOR);
    a->t = calloc(1, sizeof(pl_tensor));
    pl_tensor_set_shape(a->t, PL_F32, 0, NULL);
    pl_tensor_alloc(a->t);
    *(float *)a->t->data = 2.0f;
    tb_node(m, "Pow", "d,two", "p");
    int r2 = tb_node(m, "ReduceMean", "p", "v");
    tb_attr_ints(m, r2, "axes", 1, last);
    tb_scalar(m, "eps", 1e-5f);
    tb_node(m, "Add", "v,eps", "ve");
    tb_node(m, "Sqrt", "ve", "s");
    tb_node(m, "Div", "d,s", "n");
    if (affine) {
        tb_node(m, "Mul", "n,gamma", "g");
        tb_node(m, "Add", "beta,g", "y");
    } else {
        tb_node(m, "Relu", "n", "y");
    }
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 3, dx, 3);
    /* Constant is folded in both; 8 ops + Mul/Add or Relu */
    expect(affine ? "layernorm" : "layernorm (no affine)", m, &f, affine ? 1 : 2, affine ? 9 : 8,
           1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* GELU written out after a MatMul + bias: erf form (Div by sqrt 2) and tanh form. */
static void case_gelu(bool tanh_form) {
    pl_model *m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_const(m, "b", PL_F32, 1, d16, NULL);
    tb_node(m, "MatMul", "x,w", "mm");
    tb_node(m, "Add", "mm,b", "h");
    int before = 2;
    if (!tanh_form) {
        tb_scalar(m, "sqrt2", 1.4142135f);
        tb_scalar(m, "one", 1.0f);
        tb_scalar(m, "half", 0.5f);
        tb_node(m, "Div", "h,sqrt2", "t1");
        tb_node(m, "Erf", "t1", "t2");
        tb_node(m, "Add", "t2,one", "t3");
        tb_node(m, "Mul", "h,t3", "t4");
        tb_node(m, "Mul", "t4,half", "y");
        before += 5;
    } else {
        tb_scalar(m, "half", 0.5f);
        tb_scalar(m, "three", 3.0f);
        tb_scalar(m, "k", 0.044715f);
        tb_scalar(m, "c", 0.7978845608f);
        tb_scalar(m, "one", 1.0f);
        tb_node(m, "Mul", "h,half", "u0");
        tb_node(m, "Pow", "h,three", "u1");
        tb_node(m, "Mul", "u1,k", "u2");
        tb_node(m, "Add", "h,u2", "u3");
        tb_node(m, "Mul", "u3,c", "u4");
        tb_node(m, "Tanh", "u4", "u5");
        tb_node(m, "Add", "one,u5", "u6");
        tb_node(m, "Mul", "u0,u6", "y");
        before += 8;
    }
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    expect(tanh_form ? "gelu (tanh)" : "gelu (erf)", m, &f, 1, before, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* 2 x GELU-like chain: a scaled GELU (2 * gelu) must not be taken as GELU, but the
 * prefix that is GELU is. */
static void case_gelu_prefix(void) {
    pl_model *m = tb_new("test_fusion", 13);
    tb_input(m, "x", PL_F32, 2, d4x8, NULL);
    tb_const(m, "w", PL_F32, 2, d8x16, NULL);
    tb_scalar(m, "sqrt2", 1.4142135f);
    tb_scalar(m, "one", 1.0f);
    tb_scalar(m, "half", 0.5f);
    tb_scalar(m, "two", 2.0f);
    tb_node(m, "MatMul", "x,w", "h");
    tb_node(m, "Div", "h,sqrt2", "t1");
    tb_node(m, "Erf", "t1", "t2");
    tb_node(m, "Add", "t2,one", "t3");
    tb_node(m, "Mul", "t3,half", "t4");
    tb_node(m, "Mul", "h,t4", "t5");
    tb_node(m, "Mul", "t5,two", "y");
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 2, d4x8, 3);
    expect("gelu then a scale", m, &f, 2, 7, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* Attention-like: scale after a batched MatMul, softmax, MatMul, residual; opset 11
 * Clip (Constant min/max inputs) after a MatMul. */
static void case_attention(void) {
    pl_model *m = tb_new("test_fusion", 13);
    const int64_t dq[] = {1, 3, 10, 8}, dk[] = {1, 3, 8, 10};
    tb_input(m, "q", PL_F32, 4, dq, NULL);
    tb_input(m, "k", PL_F32, 4, dk, NULL);
    tb_input(m, "v", PL_F32, 4, dq, NULL);
    tb_scalar(m, "scale", 2.828427f);
    tb_scalar(m, "lo", 0.0f);
    tb_scalar(m, "hi", 6.0f);
    tb_input(m, "mask0", PL_F32, 4, (int64_t[]){1, 1, 1, 10}, NULL);
    tb_node(m, "MatMul", "q,k", "s");
    tb_node(m, "Relu", "mask0", "mask"); /* computed after the MatMul: it must move */
    tb_node(m, "Div", "s,scale", "ss");
    tb_node(m, "Add", "ss,mask", "sm");
    int sm = tb_node(m, "Softmax", "sm", "p");
    tb_attr_i(m, sm, "axis", -1);
    tb_node(m, "MatMul", "p,v", "o");
    tb_node(m, "Add", "o,q", "r");
    tb_node(m, "MatMul", "r,k", "z");
    tb_node(m, "Clip", "z,lo,hi", "y");
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "q", PL_F32, 4, dq, 3);
    feed_add(&f, "k", PL_F32, 4, dk, 3);
    feed_add(&f, "v", PL_F32, 4, dq, 3);
    feed_add(&f, "mask0", PL_F32, 4, (int64_t[]){1, 1, 1, 10}, 3);
    expect("attention scale, mask, residual, clip", m, &f, 5, 9, 1e-5);
    feed_free(&f);
    pl_model_free(m);
}

/* Conv + bias-free residual + Relu (ResNet block end), Conv + Clip (MobileNet). */
static void case_conv(void) {
    pl_model *m = tb_new("test_fusion", 13);
    const int64_t dx[] = {1, 4, 6, 6}, dw[] = {4, 4, 3, 3};
    tb_input(m, "x", PL_F32, 4, dx, NULL);
    tb_const(m, "w", PL_F32, 4, dw, NULL);
    tb_const(m, "w2", PL_F32, 4, dw, NULL);
    tb_const(m, "b2", PL_F32, 1, (int64_t[]){4}, NULL);
    tb_scalar(m, "lo", 0.0f);
    tb_scalar(m, "hi", 6.0f);
    int c = tb_node(m, "Conv", "x,w", "c");
    tb_attr_ints(m, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
    tb_node(m, "Add", "c,x", "a");
    tb_node(m, "Relu", "a", "r");
    int c2 = tb_node(m, "Conv", "r,w2,b2", "c2");
    tb_attr_ints(m, c2, "pads", 4, (int64_t[]){1, 1, 1, 1});
    tb_node(m, "Clip", "c2,lo,hi", "y");
    tb_output(m, "y");
    feed f = {0};
    feed_add(&f, "x", PL_F32, 4, dx, 3);
    expect("conv residual relu, conv clip", m, &f, 2, 5, 1e-4);
    feed_free(&f);
    pl_model_free(m);
}

/* A symbolic batch: fused (same symbol on both sides of the residual), then run at two
 * batch sizes (re-planned); with different symbols it must not fuse. */
static void case_symbolic(void) {
    for (int same = 0; same < 2; same++) {
        pl_model *m = tb_new("test_fusion", 13);
        tb_input(m, "x", PL_F32, 2, (int64_t[]){-1, 8}, "batch");
        tb_input(m, "r", PL_F32, 2, (int64_t[]){-1, 16}, same ? "batch" : "other");
        tb_const(m, "w", PL_F32, 2, d8x16, NULL);
        tb_const(m, "b", PL_F32, 1, d16, NULL);
        tb_node(m, "MatMul", "x,w", "mm");
        tb_node(m, "Add", "mm,b", "h");
        tb_node(m, "Add", "h,r", "y");
        tb_output(m, "y");
        for (int batch = 3; batch <= 5; batch += 2) {
            feed f = {0};
            feed_add(&f, "x", PL_F32, 2, (int64_t[]){batch, 8}, 3);
            feed_add(&f, "r", PL_F32, 2, (int64_t[]){batch, 16}, 3);
            expect(same ? "symbolic batch" : "two symbols", m, &f, same ? 1 : 2, 3, 1e-5);
            feed_free(&f);
        }
        pl_model_free(m);
    }
}

/* The epilogue attributes set by hand on MatMul / Gemm of other types (the passes only
 * make them for float32, but every implementation honours them). */
static void case_attrs_other_types(void) {
    static const pl_dtype types[] = {PL_F64, PL_F16, PL_I32, PL_F32};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        pl_dtype T = types[t];
        pl_model *m = tb_new("test_fusion", 13);
        tb_input(m, "x", T, 2, d4x8, NULL);
        tb_input(m, "r", T, 2, d4x16, NULL);
        tb_const(m, "w", T, 2, d8x16, NULL);
        tb_const(m, "b", T, 1, d16, NULL);
        int mm = tb_node(m, "MatMul", "x,w,b,r", "y");
        tb_attr_i(m, mm, "pillar_bias", 1);
        tb_attr_i(m, mm, "pillar_residual", 1);
        tb_attr_s(m, mm, "pillar_act", "Relu");
        if (T != PL_I32) tb_attr_f(m, mm, "pillar_alpha", 0.5f);
        int g = tb_node(m, "Gemm", "x,w,,r", "y2");
        tb_attr_i(m, g, "pillar_residual", 1);
        tb_attr_s(m, g, "pillar_act", "Clip");
        tb_attr_f(m, g, "pillar_act_alpha", -1.0f);
        tb_attr_f(m, g, "pillar_act_beta", 2.0f);
        tb_output(m, "y");
        tb_output(m, "y2");
        /* expected values computed here in double */
        setenv("PILLAR_OPT", "0", 1);
        pillar_session *s;
        pillar_status st = pillar_session_create(m, NULL, &s);
        CHECK(st == PILLAR_OK, "attrs %s: %s", pl_dtype_name(T), pillar_last_error());
        feed f = {0};
        feed_add(&f, "x", T, 2, d4x8, 3);
        feed_add(&f, "r", T, 2, d4x16, 3);
        pillar_tensor *out[2] = {NULL, NULL};
        if (st == PILLAR_OK) {
            st = pillar_session_run(s, 2, f.names, (const pillar_tensor *const *)f.t, 2, NULL, out);
            CHECK(st == PILLAR_OK, "attrs %s: run: %s", pl_dtype_name(T), pillar_last_error());
        }
        const pl_graph *gr = m->graph;
        const pl_tensor *w = &gr->values[pl_graph_find_value(gr, "w")].t;
        const pl_tensor *b = &gr->values[pl_graph_find_value(gr, "b")].t;
        double tol = T == PL_F16 ? 2e-2 : 1e-5;
        for (int i = 0; st == PILLAR_OK && i < 4; i++)
            for (int j = 0; j < 16; j++) {
                double acc = 0;
                for (int k = 0; k < 8; k++)
                    acc += pl_get_f64(f.t[0], i * 8 + k) * pl_get_f64(w, k * 16 + j);
                double r = pl_get_f64(f.t[1], i * 16 + j);
                double y = (T == PL_I32 ? 1.0 : 0.5) * acc + pl_get_f64(b, j) + r;
                y = y > 0 ? y : 0;
                double y2 = acc + r;
                y2 = y2 < -1 ? -1 : y2 > 2 ? 2 : y2;
                double got = pl_get_f64(out[0], i * 16 + j), got2 = pl_get_f64(out[1], i * 16 + j);
                CHECK(fabs(got - y) <= tol * (1 + fabs(y)),
                      "attrs %s: MatMul [%d,%d] = %g, expected %g", pl_dtype_name(T), i, j, got, y);
                CHECK(fabs(got2 - y2) <= tol * (1 + fabs(y2)),
                      "attrs %s: Gemm [%d,%d] = %g, expected %g", pl_dtype_name(T), i, j, got2, y2);
            }
        cases++;
        for (int k = 0; k < 2; k++) pillar_tensor_destroy(out[k]);
        pillar_session_destroy(s);
        unsetenv("PILLAR_OPT");
        feed_free(&f);
        pl_model_free(m);
    }
}

/* Einsum of two float32 inputs (the batched-GEMM path) against the same contraction in
 * float64 (the generic loop): matmul forms, broadcasting, a diagonal, labels summed in
 * one input only, an outer product, a full contraction. */
static void case_einsum(void) {
    static const struct {
        const char *eq;
        int na, nb;
        int64_t da[4], db[4];
    } eqs[] = {
        {"bij,bjk->bik", 3, 3, {2, 3, 4}, {2, 4, 5}},
        {"bhqd,bhkd->bhqk", 4, 4, {1, 2, 5, 8}, {1, 2, 6, 8}},
        {"...ij,...jk->...ik", 4, 3, {2, 1, 3, 4}, {5, 4, 2}},
        {"ij,jk", 2, 2, {3, 4}, {4, 6}},
        {"ii,ij->j", 2, 2, {4, 4}, {4, 3}},
        {"bij,bi->bj", 3, 2, {2, 5, 3}, {2, 5}},
        {"i,j->ij", 1, 1, {7}, {5}},
        {"ij,ij->", 2, 2, {3, 4}, {3, 4}},
        {"ijk,j->ik", 3, 1, {2, 3, 4}, {3}},
        {"ij,kl->ijkl", 2, 2, {2, 3}, {1, 2}},
    };
    for (size_t e = 0; e < sizeof eqs / sizeof eqs[0]; e++) {
        pillar_tensor *res[2] = {NULL, NULL};
        float av[128], bv[128];
        for (int i = 0; i < 128; i++) {
            av[i] = frand();
            bv[i] = frand();
        }
        for (int w = 0; w < 2; w++) {
            pl_dtype T = w ? PL_F64 : PL_F32;
            pl_model *m = tb_new("test_fusion", 13);
            tb_input(m, "a", T, eqs[e].na, eqs[e].da, NULL);
            tb_input(m, "b", T, eqs[e].nb, eqs[e].db, NULL);
            int n = tb_node(m, "Einsum", "a,b", "y");
            tb_attr_s(m, n, "equation", eqs[e].eq);
            tb_output(m, "y");
            feed f = {0};
            feed_add(&f, "a", T, eqs[e].na, eqs[e].da, 3);
            feed_add(&f, "b", T, eqs[e].nb, eqs[e].db, 3);
            for (int64_t i = 0; i < pillar_tensor_numel(f.t[0]); i++) pl_set_f64(f.t[0], i, av[i]);
            for (int64_t i = 0; i < pillar_tensor_numel(f.t[1]); i++) pl_set_f64(f.t[1], i, bv[i]);
            pillar_options *o;
            pillar_options_create(&o);
            pillar_options_set_threads(o, 2);
            pillar_session *s = NULL;
            pillar_status st = pillar_session_create(m, o, &s);
            if (st == PILLAR_OK)
                st = pillar_session_run(s, 2, f.names, (const pillar_tensor *const *)f.t, 1, NULL,
                                        &res[w]);
            CHECK(st == PILLAR_OK, "einsum '%s' (%s): %s", eqs[e].eq, pl_dtype_name(T),
                  pillar_last_error());
            pillar_session_destroy(s);
            pillar_options_destroy(o);
            feed_free(&f);
            pl_model_free(m);
        }
        cases++;
        if (res[0] && res[1]) {
            CHECK(pl_tensor_same_shape(res[0], res[1]), "einsum '%s': shapes differ", eqs[e].eq);
            for (int64_t i = 0; pl_tensor_same_shape(res[0], res[1]) && i < pl_numel(res[0]); i++) {
                double x = pl_get_f64(res[0], i), y = pl_get_f64(res[1], i);
                CHECK(fabs(x - y) <= 1e-5 * (1 + fabs(y)), "einsum '%s' [%lld]: %g vs %g",
                      eqs[e].eq, (long long)i, x, y);
            }
        }
        pillar_tensor_destroy(res[0]);
        pillar_tensor_destroy(res[1]);
    }
}

int main(void) {
    case_linear_relu();
    case_gemm();
    case_residual_moves();
    case_no_fusion();
    case_layernorm(true);
    case_layernorm(false);
    case_gelu(false);
    case_gelu(true);
    case_gelu_prefix();
    case_attention();
    case_conv();
    case_symbolic();
    case_attrs_other_types();
    case_einsum();
    printf("test_fusion: %d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
