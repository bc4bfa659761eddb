/* test_qdq_fusion.c -- the QDQ fusion pass (src/graph/fuse_qdq.c) and the integer ops it
 * makes, on small QDQ graphs built in the IR the way ONNX Runtime's quantizer writes
 * them (u8 activations with zero points, s8 per-channel weights, int32 biases via
 * DequantizeLinear): the fused plan's ops and kernels, its outputs against the unfused
 * float graph (PILLAR_OPT=0; the two differ only by float rounding of the sums before
 * requantisation), bit-identical fused outputs on every kernel level, block-sparse
 * weights, DQ -> Clip | Relu -> Q chains as table lookups (exact), what must not fuse,
 * and the errors of the integer ops. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "exec/session.h"
#include "graph/ir.h"
#include "pillar.h"

#define CHECK_SEED 0x8a5cd789635d2dffull
#include "check.h"
#include "graph_build.h"
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

/* ------------------------------------------------------------------ graph building */

static void tb_input(pl_model *m, const char *name, int ndim, const int64_t *dims) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    g->values[v].kind = PL_VALUE_INPUT;
    g->values[v].declared = true;
    pl_tensor_set_shape(&g->values[v].t, PL_F32, ndim, dims);
    g->inputs = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    g->inputs[g->ninputs++] = v;
}

/* A constant; vals NULL: random values in [lo, hi] (integers for integer types). */
static pl_tensor *tb_const(pl_model *m, const char *name, pl_dtype t, int ndim, const int64_t *dims,
                           const double *vals, double lo, double hi) {
    pl_value *val = &m->graph->values[tb_val(m, name)];
    val->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&val->t, t, ndim, dims);
    pl_tensor_alloc(&val->t);
    for (int64_t i = 0; i < pl_numel(&val->t); i++) {
        double v = vals ? vals[i] : lo + (hi - lo) * (frand() + 1) / 2;
        pl_set_f64(&val->t, i, t == PL_F32 ? v : round(v));
    }
    return &val->t;
}


static void tb_qparams(pl_model *m, const char *base, float scale, int zp, pl_dtype zt) {
    char s[64], z[64];
    snprintf(s, sizeof s, "%s_s", base);
    snprintf(z, sizeof z, "%s_z", base);
    double sv = scale, zv = zp;
    tb_const(m, s, PL_F32, 0, NULL, &sv, 0, 0);
    tb_const(m, z, zt, 0, NULL, &zv, 0, 0);
}

/* Q then DQ of value `x` with params `p` (u8): writes <x>_q and <x>_d. */
static void tb_qdq(pl_model *m, const char *x, const char *p) {
    char ins[160], q[64], d[64];
    snprintf(q, sizeof q, "%s_q", x);
    snprintf(d, sizeof d, "%s_d", x);
    snprintf(ins, sizeof ins, "%s,%s_s,%s_z", x, p, p);
    tb_node(m, "QuantizeLinear", ins, q);
    snprintf(ins, sizeof ins, "%s,%s_s,%s_z", q, p, p);
    tb_node(m, "DequantizeLinear", ins, d);
}

/* An s8 per-channel weight [M, ...] with its DQ (axis 0) writing <name>_d; `sparse`
 * zeroes most groups of 4 consecutive input channels at each tap (dims[1] % 4 == 0). */
static void tb_weight(pl_model *m, const char *name, int ndim, const int64_t *dims, bool sparse) {
    char b[64], ins[200];
    pl_tensor *w = tb_const(m, name, PL_I8, ndim, dims, NULL, -127, 127);
    if (sparse) {
        int64_t taps = 1;
        for (int d = 2; d < ndim; d++) taps *= dims[d];
        for (int64_t o = 0; o < dims[0]; o++)
            for (int64_t c4 = 0; c4 < dims[1] / 4; c4++)
                for (int64_t t = 0; t < taps; t++)
                    if (rnd() % 10 < 8)
                        for (int64_t c = c4 * 4; c < c4 * 4 + 4; c++)
                            ((int8_t *)w->data)[(o * dims[1] + c) * taps + t] = 0;
    }
    double *sc = malloc(sizeof(double) * (size_t)dims[0]);
    for (int64_t i = 0; i < dims[0]; i++) sc[i] = 0.002 + 0.002 * (frand() + 1);
    snprintf(b, sizeof b, "%s_s", name);
    tb_const(m, b, PL_F32, 1, dims, sc, 0, 0);
    snprintf(b, sizeof b, "%s_z", name);
    double *zz = calloc((size_t)dims[0], sizeof(double));
    tb_const(m, b, PL_I8, 1, dims, zz, 0, 0);
    free(sc);
    free(zz);
    snprintf(ins, sizeof ins, "%s,%s_s,%s_z", name, name, name);
    snprintf(b, sizeof b, "%s_d", name);
    tb_attr_i(m, tb_node(m, "DequantizeLinear", ins, b), "axis", 0);
}

/* An int32 bias [M] in units of x_scale * w_scale (per channel) with its DQ. */
static void tb_bias(pl_model *m, const char *name, const char *w, int64_t M, float xs) {
    char b[64], ins[200];
    const int64_t d[1] = {M};
    tb_const(m, name, PL_I32, 1, d, NULL, -3000, 3000);
    snprintf(b, sizeof b, "%s_s", w);
    const pl_tensor *ws = &m->graph->values[pl_graph_find_value(m->graph, b)].t;
    double *sc = malloc(sizeof(double) * (size_t)M);
    for (int64_t i = 0; i < M; i++) sc[i] = (double)(xs * ((const float *)ws->data)[i]);
    snprintf(b, sizeof b, "%s_s", name);
    tb_const(m, b, PL_F32, 1, d, sc, 0, 0);
    free(sc);
    snprintf(ins, sizeof ins, "%s,%s_s", name, name);
    snprintf(b, sizeof b, "%s_d", name);
    tb_attr_i(m, tb_node(m, "DequantizeLinear", ins, b), "axis", 0);
}

/* ------------------------------------------------------------------ running */

typedef struct result {
    int steps;
    char ops[64][24];
    char kernels[64][48];
    pillar_tensor *out[4];
} result;

static void result_free(result *r) {
    for (int k = 0; k < 4; k++) pillar_tensor_destroy(r->out[k]);
    memset(r, 0, sizeof *r);
}

static bool run(pl_model *m, pillar_tensor *x, bool opt, int isa, int threads, result *r) {
    memset(r, 0, sizeof *r);
    if (opt)
        unsetenv("PILLAR_OPT");
    else
        setenv("PILLAR_OPT", "0", 1);
    pl_cpu_force_isa(isa);
    pillar_options *o;
    pillar_options_create(&o);
    pillar_options_set_threads(o, threads);
    pillar_session *s = NULL;
    pillar_status st = pillar_session_create(m, o, &s);
    pillar_options_destroy(o);
    bool ok = st == PILLAR_OK;
    CHECK(ok, "session: %s", pillar_last_error());
    if (ok) {
        const char *names[1] = {pl_graph_find_value(m->graph, "x") >= 0 ? "x" : "x"};
        const size_t nout = (size_t)m->graph->noutputs;
        st = pillar_session_run(s, 1, names, (const pillar_tensor *const *)&x, nout, NULL, r->out);
        ok = st == PILLAR_OK;
        CHECK(ok, "run: %s", pillar_last_error());
        r->steps = (int)pillar_session_node_count(s);
        for (int i = 0; i < r->steps && i < 64; i++) {
            const char *op = "";
            pillar_session_node(s, (size_t)i, NULL, &op, NULL, NULL, NULL, NULL, NULL);
            snprintf(r->ops[i], sizeof r->ops[i], "%s", op);
            snprintf(r->kernels[i], sizeof r->kernels[i], "%s", pillar_session_node_kernel(s, (size_t)i));
        }
    }
    pillar_session_destroy(s);
    unsetenv("PILLAR_OPT");
    pl_cpu_force_isa(-1);
    return ok;
}

static int count_op(const result *r, const char *op) {
    int n = 0;
    for (int i = 0; i < r->steps && i < 64; i++) n += !strcmp(r->ops[i], op);
    return n;
}

static bool has_kernel(const result *r, const char *prefix) {
    for (int i = 0; i < r->steps && i < 64; i++)
        if (!strncmp(r->kernels[i], prefix, strlen(prefix))) return true;
    return false;
}

static double max_diff(const pillar_tensor *a, const pillar_tensor *b, double *scale) {
    double d = 0, mx = 0;
    if (!a || !b || !pl_tensor_same_shape(a, b)) return INFINITY;
    for (int64_t i = 0; i < pl_numel(a); i++) {
        double x = pl_get_f64(a, i), y = pl_get_f64(b, i);
        if (!(fabs(x - y) <= d)) d = fabs(x - y);
        if (fabs(x) > mx) mx = fabs(x);
    }
    if (scale) *scale = mx;
    return d;
}

static pillar_tensor *make_input(int ndim, const int64_t *dims) {
    pillar_tensor *x;
    pillar_tensor_create(PILLAR_FLOAT32, (size_t)ndim, dims, NULL, &x);
    for (int64_t i = 0; i < pillar_tensor_numel(x); i++) pl_set_f64(x, i, 2 * frand());
    return x;
}

/* The fused plan vs the float graph (tolerance `tol` in output units) and the same
 * bits on every level and thread count. */
static void check_model(const char *what, pl_model *m, pillar_tensor *x, double tol,
                        const char *want_kernel, int want_steps) {
    cases++;
    result ref, first;
    if (!run(m, x, false, PL_ISA_REF, 1, &ref)) return;
    bool have_first = false;
    for (int isa = 0; isa <= (int)pl_cpu()->best; isa++)
        for (int th = 1; th <= 2; th++) {
            result r;
            if (!run(m, x, true, isa, th, &r)) continue;
            CHECK(r.steps == want_steps, "%s (%s): %d steps, expected %d", what, pl_isa_name((pl_isa)isa),
                  r.steps, want_steps);
            CHECK(!want_kernel || has_kernel(&r, want_kernel), "%s (%s): no kernel '%s'", what,
                  pl_isa_name((pl_isa)isa), want_kernel);
            for (int k = 0; k < m->graph->noutputs; k++) {
                double scale, d = max_diff(ref.out[k], r.out[k], &scale);
                CHECK(d <= tol, "%s (%s, %d threads): output %d differs from the float graph by %g (scale %g)",
                      what, pl_isa_name((pl_isa)isa), th, k, d, scale);
                if (have_first) {
                    const pillar_tensor *a = first.out[k], *b = r.out[k];
                    CHECK(pl_tensor_same_shape(a, b) && !memcmp(a->data, b->data, pl_nbytes(a)),
                          "%s (%s, %d threads): output %d not bit-identical to the ref level", what,
                          pl_isa_name((pl_isa)isa), th, k);
                }
            }
            if (!have_first) {
                first = r;
                have_first = true;
            } else {
                result_free(&r);
            }
        }
    if (have_first) result_free(&first);
    result_free(&ref);
}

/* ------------------------------------------------------------------ cases */

/* x -> Q/DQ -> Conv 3x3 (bias) -> Relu -> Q/DQ -> MaxPool -> Q/DQ -> Conv 1x1 -> Q/DQ
 *   -> Add(., maxpool branch) -> Relu -> Q/DQ -> Conv 3x3 stride 2 -> float output */
static pl_model *conv_net(bool sparse, int C) {
    pl_model *m = tb_new("test_qdq", 13);
    const int64_t xd[4] = {1, C, 11, 13};
    tb_input(m, "x", 4, xd);
    tb_qparams(m, "px", 2.0f / 255, 128, PL_U8);
    tb_qparams(m, "p1", 6.0f / 255, 0, PL_U8);
    tb_qparams(m, "p2", 8.0f / 255, 100, PL_U8);
    tb_qparams(m, "p3", 9.0f / 255, 0, PL_U8);
    tb_qdq(m, "x", "px");
    const int64_t w1d[4] = {12, C, 3, 3}, w2d[4] = {12, 12, 1, 1}, w3d[4] = {8, 12, 3, 3};
    tb_weight(m, "w1", 4, w1d, false);
    tb_bias(m, "b1", "w1", 12, 2.0f / 255);
    tb_weight(m, "w2", 4, w2d, sparse);
    tb_weight(m, "w3", 4, w3d, sparse);
    const int64_t pads[4] = {1, 1, 1, 1}, k2[2] = {2, 2}, s2[2] = {2, 2}, k3[2] = {3, 3};
    int n = tb_node(m, "Conv", "x_d,w1_d,b1_d", "y1");
    tb_attr_ints(m, n, "pads", 4, pads);
    tb_attr_ints(m, n, "kernel_shape", 2, k3);
    tb_node(m, "Relu", "y1", "r1");
    tb_qdq(m, "r1", "p1");
    n = tb_node(m, "MaxPool", "r1_d", "mp");
    tb_attr_ints(m, n, "kernel_shape", 2, k2);
    tb_attr_ints(m, n, "strides", 2, s2);
    tb_qdq(m, "mp", "p1");
    tb_node(m, "Conv", "mp_d,w2_d", "y2");
    tb_qdq(m, "y2", "p2");
    tb_node(m, "Add", "y2_d,mp_d", "a");
    tb_node(m, "Relu", "a", "ar");
    tb_qdq(m, "ar", "p3");
    n = tb_node(m, "Conv", "ar_d,w3_d", "y");
    tb_attr_ints(m, n, "pads", 4, pads);
    tb_attr_ints(m, n, "strides", 2, s2);
    tb_output(m, "y");
    return m;
}

static void case_conv_net(bool sparse, int C) {
    pl_model *m = conv_net(sparse, C);
    const int64_t xd[4] = {1, C, 11, 13};
    pillar_tensor *x = make_input(4, xd);
    /* fused: Q(x), QLinearConv, QMaxPool, QLinearConv, QLinearAdd, QLinearConv (float) */
    char what[64];
    snprintf(what, sizeof what, "conv net (C=%d%s)", C, sparse ? ", sparse" : "");
    check_model(what, m, x, 0.1, sparse ? "int8 sparse" : "int8", 6);
    result r;
    if (run(m, x, true, -1, 2, &r)) {
        CHECK(count_op(&r, "QLinearConv") == 3, "%s: %d QLinearConv", what, count_op(&r, "QLinearConv"));
        CHECK(count_op(&r, "QMaxPool") == 1 && count_op(&r, "QLinearAdd") == 1, "%s: pool/add not fused", what);
        CHECK(count_op(&r, "DequantizeLinear") == 0, "%s: a DequantizeLinear is left", what);
        /* the first 3x3 layer (dense weights, 8 channels at 11x13) reads its image directly
         * on VNNI (the bit-identical check above covers it against the ref level) */
        const bool vnni = pl_cpu()->avx512_vnni && pl_cpu()->avx512bw;
        CHECK(has_kernel(&r, "int8 vnni implicit") == (vnni && C % 4 == 0),
              "%s: implicit-GEMM kernel %s", what, vnni && C % 4 == 0 ? "not chosen" : "chosen");
        result_free(&r);
    }
    pillar_tensor_destroy(x);
    pl_model_free(m);
}

/* x [3, 16] -> Q/DQ -> Gemm(transB, DQ(w [10, 16]), DQ(bias)) -> Relu -> Q/DQ ->
 * MatMul(DQ(w [10, 6])) -> float output */
static void case_gemm_matmul(void) {
    pl_model *m = tb_new("test_qdq", 13);
    const int64_t xd[2] = {3, 16};
    tb_input(m, "x", 2, xd);
    tb_qparams(m, "px", 2.0f / 255, 128, PL_U8);
    tb_qparams(m, "p1", 5.0f / 255, 0, PL_U8);
    tb_qdq(m, "x", "px");
    const int64_t w1d[2] = {10, 16};
    tb_weight(m, "w1", 2, w1d, false);
    tb_bias(m, "b1", "w1", 10, 2.0f / 255);
    /* MatMul weight [K=10, N=6], per column: DQ axis 1 */
    const int64_t w2d[2] = {10, 6}, n6[1] = {6};
    tb_const(m, "w2", PL_I8, 2, w2d, NULL, -127, 127);
    double sc[6], zz[6] = {0};
    for (int i = 0; i < 6; i++) sc[i] = 0.003 + 0.001 * i;
    tb_const(m, "w2_s", PL_F32, 1, n6, sc, 0, 0);
    tb_const(m, "w2_z", PL_I8, 1, n6, zz, 0, 0);
    int n = tb_node(m, "DequantizeLinear", "w2,w2_s,w2_z", "w2_d");
    tb_attr_i(m, n, "axis", 1);
    n = tb_node(m, "Gemm", "x_d,w1_d,b1_d", "g");
    tb_attr_i(m, n, "transB", 1);
    tb_node(m, "Relu", "g", "gr");
    tb_qdq(m, "gr", "p1");
    tb_node(m, "MatMul", "gr_d,w2_d", "y");
    tb_output(m, "y");
    pillar_tensor *x = make_input(2, xd);
    check_model("gemm + matmul", m, x, 0.05, "int8", 3);
    result r;
    if (run(m, x, true, -1, 1, &r)) {
        CHECK(count_op(&r, "QLinearMatMul") == 2, "gemm + matmul: %d QLinearMatMul", count_op(&r, "QLinearMatMul"));
        result_free(&r);
    }
    pillar_tensor_destroy(x);
    pl_model_free(m);
}

/* Patterns that must not fuse: a weight that is not constant, and a Conv output that
 * is also a graph output (the Relu/Q chain stays; the conv still takes integer inputs
 * and writes float). */
static void case_no_fusion(void) {
    cases++;
    pl_model *m = tb_new("test_qdq", 13);
    const int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {4, 4, 1, 1};
    tb_input(m, "x", 4, xd);
    tb_input(m, "wf", 4, wd);
    tb_qparams(m, "px", 2.0f / 255, 128, PL_U8);
    tb_qparams(m, "pw", 1.0f / 127, 0, PL_I8);
    tb_qdq(m, "x", "px");
    tb_node(m, "QuantizeLinear", "wf,pw_s,pw_z", "wq");
    tb_node(m, "DequantizeLinear", "wq,pw_s,pw_z", "w_d");
    tb_node(m, "Conv", "x_d,w_d", "y");
    tb_output(m, "y");
    /* two inputs: feed both */
    pillar_tensor *x = make_input(4, xd), *w = make_input(4, wd);
    pillar_session *s = NULL;
    pillar_options *o;
    pillar_options_create(&o);
    CHECK(pillar_session_create(m, o, &s) == PILLAR_OK, "no fusion: %s", pillar_last_error());
    pillar_options_destroy(o);
    bool conv = false;
    for (size_t i = 0; s && i < pillar_session_node_count(s); i++) {
        const char *op;
        pillar_session_node(s, i, NULL, &op, NULL, NULL, NULL, NULL, NULL);
        conv |= !strcmp(op, "Conv");
    }
    CHECK(conv, "no fusion: a Conv with a non-constant weight was fused");
    pillar_session_destroy(s);
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(w);
    pl_model_free(m);

    /* the Conv output is a graph output too */
    m = tb_new("test_qdq", 13);
    tb_input(m, "x", 4, xd);
    tb_qparams(m, "px", 2.0f / 255, 128, PL_U8);
    tb_qparams(m, "p1", 4.0f / 255, 0, PL_U8);
    tb_qdq(m, "x", "px");
    tb_weight(m, "w1", 4, wd, false);
    tb_node(m, "Conv", "x_d,w1_d", "y");
    tb_qdq(m, "y", "p1");
    tb_output(m, "y");
    tb_output(m, "y_d");
    x = make_input(4, xd);
    check_model("pinned conv output", m, x, 0.05, "int8", 4);
    pillar_tensor_destroy(x);
    pl_model_free(m);
}

/* DQ -> Clip | Relu -> Q chains between 8-bit values become table lookups (QLut) that
 * give exactly the unfused float ops' values: u8 -> u8 through a Clip, u8 -> s8 and
 * s8 -> u8 through Relus, on shapes around the vector widths (32, 64 bytes). */
static void case_lut(void) {
    static const int64_t shapes[3][4] = {{1, 3, 7, 11}, {2, 3, 17, 19}, {1, 1, 8, 8}};
    for (int sh = 0; sh < 3; sh++) {
        pl_model *m = tb_new("test_qdq", 13);
        tb_input(m, "x", 4, shapes[sh]);
        tb_qparams(m, "px", 4.0f / 255, 128, PL_U8);
        tb_qparams(m, "p1", 3.0f / 255, 7, PL_U8);
        tb_qparams(m, "p2", 1.5f / 127, -5, PL_I8);
        tb_qparams(m, "p3", 2.0f / 255, 3, PL_U8);
        const double lo = -0.37, hi = 1.21;
        tb_const(m, "lo", PL_F32, 0, NULL, &lo, 0, 0);
        tb_const(m, "hi", PL_F32, 0, NULL, &hi, 0, 0);
        tb_qdq(m, "x", "px");
        tb_node(m, "Clip", "x_d,lo,hi", "c");
        tb_qdq(m, "c", "p1");
        tb_node(m, "Relu", "c_d", "r");
        tb_qdq(m, "r", "p2");
        tb_node(m, "Relu", "r_d", "r2");
        tb_qdq(m, "r2", "p3");
        tb_output(m, "r2_d");
        pillar_tensor *x = make_input(4, shapes[sh]);
        /* fused: Q(x), 3 QLut, DQ; exact against the float ops */
        check_model("table lookup chain", m, x, 0.0, NULL, 5);
        result r;
        if (run(m, x, true, -1, 2, &r)) {
            CHECK(count_op(&r, "QLut") == 3, "lut: %d QLut, expected 3", count_op(&r, "QLut"));
            result_free(&r);
        }
        pillar_tensor_destroy(x);
        pl_model_free(m);
    }
}

/* The integer ops' errors name the node and the problem. */
static void case_errors(void) {
    cases++;
    pl_model *m = tb_new("test_qdq", 13);
    const int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {4, 4, 1, 1}, two[1] = {2};
    tb_input(m, "x", 4, xd);
    tb_qparams(m, "px", 2.0f / 255, 128, PL_U8);
    tb_node(m, "QuantizeLinear", "x,px_s,px_z", "xq");
    double sv[2] = {0.1, 0.2};
    tb_const(m, "bad_s", PL_F32, 1, two, sv, 0, 0);
    int n = tb_node(m, "QLinearAdd", "xq,bad_s,px_z,xq,px_s,px_z,px_s,px_z", "y");
    free(m->graph->nodes[n].domain);
    m->graph->nodes[n].domain = strdup("pillar");
    tb_output(m, "y");
    pillar_session *s = NULL;
    pillar_options *o;
    pillar_options_create(&o);
    pillar_status st = pillar_session_create(m, o, &s);
    CHECK(st != PILLAR_OK && strstr(pillar_last_error(), "QLinearAdd") &&
              strstr(pillar_last_error(), "must be a single value"),
          "QLinearAdd error: %s", pillar_last_error());
    pillar_session_destroy(s);
    pl_model_free(m);

    /* an activation the integer ops do not fuse */
    m = tb_new("test_qdq", 13);
    tb_input(m, "x", 4, xd);
    tb_qparams(m, "px", 2.0f / 255, 128, PL_U8);
    tb_node(m, "QuantizeLinear", "x,px_s,px_z", "xq");
    tb_const(m, "w", PL_I8, 4, wd, NULL, -5, 5);
    tb_qparams(m, "pw", 0.01f, 0, PL_I8);
    n = tb_node(m, "QLinearConv", "xq,px_s,px_z,w,pw_s,pw_z,px_s,px_z", "y");
    pl_attr *a = tb_attr(m, n, "pillar_act", PL_ATTR_STRING);
    a->s = strdup("Sigmoid");
    a->slen = 7;
    tb_output(m, "y");
    s = NULL;
    st = pillar_session_create(m, o, &s);
    CHECK(st != PILLAR_OK && strstr(pillar_last_error(), "fused activation 'Sigmoid'"),
          "activation error: %s", pillar_last_error());
    pillar_session_destroy(s);
    pillar_options_destroy(o);
    pl_model_free(m);
}

int main(void) {
    case_conv_net(false, 8);
    case_conv_net(true, 8);
    case_conv_net(false, 3);
    case_gemm_matmul();
    case_no_fusion();
    case_lut();
    case_errors();
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
