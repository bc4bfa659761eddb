/* test_sparse_matmul.c -- MatMul and Gemm with a constant sparse float32 weight
 * (ops/matmul_sparse.c) on every kernel level this CPU has: the transposes and the
 * sparse matrix-vector product against their plain-C twins, then whole nodes in
 * sessions forced onto the sparse path (PILLAR_SPARSE=1) against a float64 reference on
 * awkward shapes (T = 1 matrix-vector, below/at/above the 16-wide vectors and the
 * 64-channel bands, token chunks), weights with 0 nonzeros, a few, half and all,
 * every fused epilogue (scale, bias, residual, each activation), Gemm transA/transB/
 * alpha/beta with C absent, a constant row, an input row; then the chooser: dense
 * weights stay dense, very sparse ones go sparse, PILLAR_SPARSE=0 never. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "graph/ir.h"
#include "kernels/sparse/spmm_matmul.h"
#include "pillar.h"

#include "check.h"
#include "graph_build.h"
static float frand(void) {
    return (float)(rnd() % 2000001) / 1000000.0f - 1.0f;
}

/* A weight of n values with a fraction `density` of nonzeros (exactly 0 and 1 honoured). */
static void fill_sparse(float *w, int64_t n, double density) {
    for (int64_t i = 0; i < n; i++)
        w[i] = (double)(rnd() % 100000) / 100000.0 < density ? frand() : 0.0f;
}

/* ------------------------------------------------------------------ kernels */

static void test_kernels(pl_isa isa) {
    const int64_t dims[] = {1, 3, 15, 16, 17, 31, 32, 33, 64, 70};
    float *src = malloc(sizeof(float) * 80 * 90), *d1 = malloc(sizeof(float) * 90 * 80),
          *d2 = malloc(sizeof(float) * 90 * 80);
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++) {
            int64_t rows = dims[a], cols = dims[b], lds = cols + (a & 1) * 3,
                    ldd = rows + (b & 1) * 5;
            for (int64_t i = 0; i < rows * lds; i++) src[i] = frand();
            for (int64_t i = 0; i < cols * ldd; i++) d1[i] = d2[i] = -7.0f;
            pl_spmm_transpose(src, rows, cols, lds, d1, ldd);
            pl_spmm_transpose_ref(src, rows, cols, lds, d2, ldd);
            CHECK(!memcmp(d1, d2, sizeof(float) * (size_t)(cols * ldd)),
                  "%s: transpose %lldx%lld differs", pl_isa_name(isa), (long long)rows,
                  (long long)cols);
        }
    /* matrix-vector: rows with 0, 1, 15, 16, 17, 31, 32, 33, ... nonzeros */
    const double dens[] = {0.0, 0.02, 0.3, 1.0};
    for (int di = 0; di < 4; di++)
        for (int64_t K = 1; K <= 70; K += 23) {
            const int64_t M = 37;
            float *W = malloc(sizeof(float) * (size_t)(M * K)), x[3 * 70], y1[37], y2[37];
            fill_sparse(W, M * K, dens[di]);
            for (int64_t m = 0; m < M && K >= 33; m++) /* exact counts around the vector width */
                for (int64_t k = 0; k < K; k++) W[m * K + k] = k < m ? 1.0f + frand() : 0.0f;
            for (int i = 0; i < 3 * 70; i++) x[i] = frand();
            pl_sparse_w *w = NULL;
            CHECK(pl_sparse_pack(W, M, K, K, 1, &w) == PL_OK, "pack");
            for (int incx = 1; incx <= 3; incx += 2) {
                pl_spmm_gemv(w, 2, M, x, incx, y1);
                pl_spmm_gemv_ref(w, 2, M, x, incx, y2);
                double err = 0;
                for (int64_t m = 2; m < M; m++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++) s += (double)W[m * K + k] * x[k * incx];
                    err = fmax(err, fabs(y1[m - 2] - s) + fabs(y2[m - 2] - s));
                }
                CHECK(err < 1e-4, "%s: gemv K %lld density %g incx %d: error %g", pl_isa_name(isa),
                      (long long)K, dens[di], incx, err);
            }
            pl_sparse_destroy(w);
            free(W);
        }
    free(src);
    free(d1);
    free(d2);
}

/* ------------------------------------------------------------------ nodes in sessions */

static pl_tensor *add_const(pl_model *m, const char *name, int ndim, const int64_t *dims) {
    pl_value *v = &m->graph->values[tb_val(m, name)];
    v->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&v->t, PL_F32, ndim, dims);
    pl_tensor_alloc(&v->t);
    return &v->t;
}

static void add_input(pl_model *m, const char *name, int ndim, const int64_t *dims) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    g->values[v].kind = PL_VALUE_INPUT;
    g->values[v].declared = true;
    pl_tensor_set_shape(&g->values[v].t, PL_F32, ndim, dims);
    g->inputs = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    g->inputs[g->ninputs++] = v;
}

/* One case: Y = epilogue(alpha op(A) op(W) + beta C). */
typedef struct mm_case {
    bool gemm, ta, tb;
    int64_t batch, T, N, K; /* MatMul A is [batch, T, K]; Gemm needs batch 1 */
    double density;
    float alpha, beta;
    int cmode; /* Gemm C: 0 none, 1 const [N], 2 const [1, N], 3 input [N]; MatMul: 1 = pillar_bias
                */
    bool residual;
    const char *act; /* NULL or a pillar_act name */
    int threads;
} mm_case;

static double act_ref(const char *a, double x) {
    if (!a) return x;
    if (!strcmp(a, "Relu")) return x > 0 ? x : 0;
    if (!strcmp(a, "Clip")) return x < -0.5 ? -0.5 : x > 0.5 ? 0.5 : x;
    if (!strcmp(a, "LeakyRelu")) return x >= 0 ? x : 0.01 * x;
    if (!strcmp(a, "Sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(a, "Tanh")) return tanh(x);
    if (!strcmp(a, "HardSigmoid")) return fmax(0, fmin(1, 0.2 * x + 0.5));
    if (!strcmp(a, "HardSwish")) return x * fmax(0, fmin(6, x + 3)) / 6;
    if (!strcmp(a, "Gelu")) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    return NAN;
}

static void run_case(const mm_case *k, pl_isa isa) {
    pl_model *m = tb_new("test_sparse_matmul", 17);
    pl_graph *g = m->graph;
    const int64_t TT = k->batch * k->T;
    int64_t adims[3] = {k->batch, k->T, k->K};
    if (k->gemm) {
        adims[0] = k->ta ? k->K : k->T;
        adims[1] = k->ta ? k->T : k->K;
    }
    add_input(m, "A", k->gemm ? 2 : 3, adims);
    int64_t wd[2] = {k->tb ? k->N : k->K, k->tb ? k->K : k->N};
    pl_tensor *wt = add_const(m, "W", 2, wd);
    float *W = wt->data;
    fill_sparse(W, k->N * k->K, k->density);
    int ni = pl_graph_add_node(g);
    pl_node *n = &g->nodes[ni];
    n->name = strdup("mm");
    n->op_type = strdup(k->gemm ? "Gemm" : "MatMul");
    n->domain = strdup("");
    n->opset = 17;
    n->in = malloc(4 * sizeof(int));
    n->out = malloc(sizeof(int));
    n->nin = 2;
    n->in[0] = tb_val(m, "A");
    n->in[1] = tb_val(m, "W");
    n->in[2] = n->in[3] = -1;
    float *cvals = NULL;
    int64_t cn[2] = {1, k->N};
    if (k->cmode == 1 || k->cmode == 2) {
        cvals = add_const(m, "C", k->cmode, k->cmode == 1 ? cn + 1 : cn)->data;
        for (int64_t i = 0; i < k->N; i++) cvals[i] = frand();
        n = &g->nodes[ni];
        n->in[2] = tb_val(m, "C");
        n->nin = 3;
    } else if (k->cmode == 3) {
        add_input(m, "C", 1, cn + 1);
        n = &g->nodes[ni];
        n->in[2] = tb_val(m, "C");
        n->nin = 3;
    }
    if (k->residual) {
        int64_t rd[3] = {k->batch, k->T, k->N};
        add_input(m, "R", k->gemm ? 2 : 3, k->gemm ? rd + 1 : rd);
        n = &g->nodes[ni];
        n->in[3] = tb_val(m, "R");
        n->nin = 4;
        tb_attr(m, ni, "pillar_residual", PL_ATTR_INT)->i = 1;
    }
    if (!k->gemm && k->cmode == 1) tb_attr(m, ni, "pillar_bias", PL_ATTR_INT)->i = 1;
    if (k->gemm) {
        tb_attr(m, ni, "transA", PL_ATTR_INT)->i = k->ta;
        tb_attr(m, ni, "transB", PL_ATTR_INT)->i = k->tb;
        tb_attr(m, ni, "alpha", PL_ATTR_FLOAT)->f = k->alpha;
        tb_attr(m, ni, "beta", PL_ATTR_FLOAT)->f = k->beta;
    } else if (k->alpha != 1.0f) {
        tb_attr(m, ni, "pillar_alpha", PL_ATTR_FLOAT)->f = k->alpha;
    }
    if (k->act) {
        pl_attr *a = tb_attr(m, ni, "pillar_act", PL_ATTR_STRING);
        a->s = strdup(k->act);
        a->slen = strlen(k->act);
        if (!strcmp(k->act, "Clip")) {
            tb_attr(m, ni, "pillar_act_alpha", PL_ATTR_FLOAT)->f = -0.5f;
            tb_attr(m, ni, "pillar_act_beta", PL_ATTR_FLOAT)->f = 0.5f;
        }
    }
    n->out[0] = tb_val(m, "Y");
    n->nout = 1;
    g->values[n->out[0]].producer = ni;
    g->values[n->out[0]].is_output = true;
    g->outputs = malloc(sizeof(int));
    g->outputs[g->noutputs++] = n->out[0];

    /* inputs */
    const char *names[3];
    pillar_tensor *ins[3];
    int nin = 0;
    pillar_tensor_create(PILLAR_FLOAT32, k->gemm ? 2 : 3, adims, NULL, &ins[nin]);
    names[nin++] = "A";
    float *A = pillar_tensor_data(ins[0]), *C = NULL, *R = NULL;
    for (int64_t i = 0; i < TT * k->K; i++) A[i] = frand();
    if (k->cmode == 3) {
        pillar_tensor_create(PILLAR_FLOAT32, 1, cn + 1, NULL, &ins[nin]);
        C = pillar_tensor_data(ins[nin]);
        for (int64_t i = 0; i < k->N; i++) C[i] = frand();
        names[nin++] = "C";
    }
    if (k->residual) {
        int64_t rd[3] = {k->batch, k->T, k->N};
        pillar_tensor_create(PILLAR_FLOAT32, k->gemm ? 2 : 3, k->gemm ? rd + 1 : rd, NULL,
                             &ins[nin]);
        R = pillar_tensor_data(ins[nin]);
        for (int64_t i = 0; i < TT * k->N; i++) R[i] = frand();
        names[nin++] = "R";
    }
    const float *cv = cvals ? cvals : C;
    double *ref = malloc(sizeof(double) * (size_t)(TT * k->N));
    double scale = 1e-30;
    for (int64_t t = 0; t < TT; t++)
        for (int64_t j = 0; j < k->N; j++) {
            double s = 0;
            for (int64_t q = 0; q < k->K; q++) {
                double a = k->gemm && k->ta ? A[q * k->T + t] : A[t * k->K + q];
                double w = k->tb ? W[j * k->K + q] : W[q * k->N + j];
                s += a * w;
            }
            s *= k->alpha;
            if (cv) s += (k->gemm ? k->beta : 1.0) * cv[j];
            if (R) s += R[t * k->N + j];
            ref[t * k->N + j] = act_ref(k->act, s);
            scale = fmax(scale, fabs(ref[t * k->N + j]));
        }

    char what[200];
    snprintf(what, sizeof what,
             "%s %s T=%lldx%lld N=%lld K=%lld dens %g ta %d tb %d alpha %g beta %g c %d res %d act "
             "%s thr %d",
             pl_isa_name(isa), k->gemm ? "Gemm" : "MatMul", (long long)k->batch, (long long)k->T,
             (long long)k->N, (long long)k->K, k->density, k->ta, k->tb, k->alpha, k->beta,
             k->cmode, k->residual, k->act ? k->act : "-", k->threads);
    pillar_options *o = NULL;
    pillar_options_create(&o);
    pillar_options_set_threads(o, k->threads);
    pillar_session *s = NULL;
    pillar_status st = pillar_session_create(m, o, &s);
    CHECK(st == PILLAR_OK, "%s: session: %s", what, pillar_last_error());
    if (st == PILLAR_OK) {
        const char *kern = pillar_session_node_kernel(s, 0);
        /* a C input scaled by beta is not a column bias: the dense path must take it */
        bool want = !(k->gemm && k->cmode == 3 && k->beta != 1.0f);
        CHECK(!strncmp(kern, "sparse", 6) == want, "%s: kernel '%s', expected %s", what, kern,
              want ? "sparse" : "dense");
        for (int rep = 0; rep < 2; rep++) { /* twice: the raw weight may be gone after packing */
            pillar_tensor *y = NULL;
            st = pillar_session_run(s, (size_t)nin, names, (const pillar_tensor *const *)ins, 1,
                                    NULL, &y);
            CHECK(st == PILLAR_OK, "%s: run: %s", what, pillar_last_error());
            if (st != PILLAR_OK) break;
            const float *yv = pillar_tensor_data(y);
            double err = 0;
            for (int64_t i = 0; i < TT * k->N; i++) err = fmax(err, fabs(yv[i] - ref[i]));
            CHECK(err <= 1e-5 * scale + 1e-6 && pillar_tensor_numel(y) == TT * k->N,
                  "%s: max error %g (scale %g)", what, err, scale);
            pillar_tensor_destroy(y);
        }
    }
    pillar_session_destroy(s);
    pillar_options_destroy(o);
    for (int i = 0; i < nin; i++) pillar_tensor_destroy(ins[i]);
    free(ref);
    pl_model_free(m);
}

static const char *acts[] = {NULL,   "Relu",        "Clip",      "LeakyRelu", "Sigmoid",
                             "Tanh", "HardSigmoid", "HardSwish", "Gelu"};
#define NACTS (int)(sizeof acts / sizeof acts[0])

static void test_nodes(pl_isa isa) {
    const int64_t Ts[] = {1, 3, 16, 17, 33, 130};
    const int64_t Ns[] = {1, 5, 64, 65, 130};
    const int64_t Ks[] = {1, 7, 64, 100};
    const double dens[] = {0.0, 0.05, 0.5, 1.0};
    int i = 0;
    for (int ti = 0; ti < 6; ti++)
        for (int ni = 0; ni < 5; ni++)
            for (int ki = 0; ki < 4; ki++, i++) {
                mm_case k = {.gemm = i % 2,
                             .batch = 1,
                             .T = Ts[ti],
                             .N = Ns[ni],
                             .K = Ks[ki],
                             .density = dens[(i / 2) % 4],
                             .alpha = 1,
                             .beta = 1,
                             .threads = 1 + i % 3};
                k.act = acts[i % NACTS];
                k.residual = i % 5 == 1;
                if (k.gemm) {
                    k.ta = (i / 3) % 2;
                    k.tb = (i / 7) % 2;
                    k.alpha = i % 4 == 1 ? 0.5f : 1.0f;
                    k.beta = i % 6 == 3 ? 2.0f : 1.0f;
                    k.cmode = (i / 5) % 4;
                } else {
                    k.batch = ti % 2 ? 2 : 1;
                    k.alpha = i % 4 == 2 ? 0.25f : 1.0f;
                    k.cmode = (i / 3) % 2;
                }
                run_case(&k, isa);
            }
    /* BERT-like: token chunks (K * T floats above half of L2) and 64-channel bands */
    mm_case big = {.gemm = false,
                   .batch = 1,
                   .T = 130,
                   .N = 200,
                   .K = 1100,
                   .density = 0.1,
                   .alpha = 1,
                   .cmode = 1,
                   .residual = true,
                   .act = "Gelu",
                   .threads = 2};
    run_case(&big, isa);
    big.gemm = true;
    big.tb = true;
    big.ta = true;
    big.cmode = 2;
    big.beta = 0.5f;
    big.alpha = 2.0f;
    run_case(&big, isa);
}

/* The chooser without PILLAR_SPARSE: dense weights stay on the dense path, 95% sparse
 * BERT-sized ones go sparse; PILLAR_SPARSE=0 keeps everything dense. */
static void test_chooser(void) {
    const double dens[] = {1.0, 0.05};
    for (int mode = 0; mode < 2; mode++)
        for (int d = 0; d < 2; d++) {
            if (mode)
                setenv("PILLAR_SPARSE", "0", 1);
            else
                unsetenv("PILLAR_SPARSE");
            pl_model *m = tb_new("test_sparse_matmul", 17);
            int64_t ad[2] = {128, 512}, wd[2] = {512, 512};
            add_input(m, "A", 2, ad);
            fill_sparse(add_const(m, "W", 2, wd)->data, 512 * 512, dens[d]);
            pl_graph *g = m->graph;
            int ni = pl_graph_add_node(g);
            pl_node *n = &g->nodes[ni];
            n->name = strdup("mm");
            n->op_type = strdup("MatMul");
            n->domain = strdup("");
            n->opset = 17;
            n->in = malloc(2 * sizeof(int));
            n->out = malloc(sizeof(int));
            n->nin = 2;
            n->in[0] = tb_val(m, "A");
            n->in[1] = tb_val(m, "W");
            n->out[0] = tb_val(m, "Y");
            n = &g->nodes[ni];
            n->nout = 1;
            g->values[n->out[0]].producer = ni;
            g->values[n->out[0]].is_output = true;
            g->outputs = malloc(sizeof(int));
            g->outputs[g->noutputs++] = n->out[0];
            pillar_session *s = NULL;
            CHECK(pillar_session_create(m, NULL, &s) == PILLAR_OK, "chooser session: %s",
                  pillar_last_error());
            const char *kern = s ? pillar_session_node_kernel(s, 0) : "";
            bool sparse = !strncmp(kern, "sparse", 6);
            CHECK(sparse == (mode == 0 && d == 1), "PILLAR_SPARSE %s, density %g: kernel '%s'",
                  mode ? "0" : "unset", dens[d], kern);
            pillar_session_destroy(s);
            pl_model_free(m);
        }
    unsetenv("PILLAR_SPARSE");
}

int main(void) {
    const pl_cpu_info *ci = pl_cpu();
    for (int isa = 0; isa <= (int)ci->best; isa++) {
        pl_cpu_force_isa(isa);
        test_kernels((pl_isa)isa);
        setenv("PILLAR_SPARSE", "1", 1);
        test_nodes((pl_isa)isa);
        unsetenv("PILLAR_SPARSE");
    }
    pl_cpu_force_isa(-1);
    test_chooser();
    printf("test_sparse_matmul: %d checks, %d failed\n", cases, failures);
    return failures != 0;
}
