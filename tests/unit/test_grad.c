/* test_grad.c -- finite-difference checks of every backward function of the trainer
 * (src/train/grad.def), on small random problems with several shapes each (strides,
 * padding, dilations, groups, broadcasting, opset variants), plus the losses and a
 * tiny end-to-end fit through the public API.
 *
 * Each case is a small graph; the function checked is L = sum(r * y) for a fixed random
 * r over the target output y. Its gradient from the backward is compared with central
 * differences (L(p + eps) - L(p - eps)) / 2 eps, Richardson-extrapolated from eps and
 * 2 eps, for every element (or a random sample
 * of 40) of the data input and of every parameter. Forward passes are float32 but
 * deterministic, so outputs a perturbation does not touch cancel exactly; with eps
 * chosen per op (away from kinks for Relu/MaxPool/Clip) the relative error
 * |analytic - numeric| / max(|analytic|, |numeric|, floor) must stay below 1e-3, where
 * floor = max(1e-2, 5% of the largest analytic gradient of that tensor) keeps float32
 * rounding in tiny gradients (which come from cancelling larger terms) from counting
 * as errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pillar.h"
#include "train/train.h"

static int failures = 0, checks = 0;
static bool exercised[256]; /* by index in the grad.def table */
static uint64_t rng_state = 0x12345678u;

static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float frand(float lo, float hi) {
    return lo + (hi - lo) * (float)urand();
}

/* ------------------------------------------------------------------ graph building */

static pl_graph *G;
static bool params[256];
static int node_opset = 17;

static int value(const char *name) {
    int v = pl_graph_add_value(G, name);
    if (v < 0 || v >= 256) {
        fprintf(stderr, "too many values\n");
        exit(2);
    }
    return v;
}

static void set_dims(pl_tensor *t, pl_dtype dt, int nd, const int64_t *d) {
    pl_tensor_set_shape(t, dt, nd, d);
}

static int input(const char *name, pl_dtype dt, int nd, const int64_t *d) {
    int v = value(name);
    G->values[v].kind = PL_VALUE_INPUT;
    set_dims(&G->values[v].t, dt, nd, d);
    G->inputs = realloc(G->inputs, (size_t)(G->ninputs + 1) * sizeof(int));
    G->inputs[G->ninputs++] = v;
    return v;
}

/* A float32 initializer with uniform values in [lo, hi) (away from 0 if lo > 0 by sign
 * flips when `signs`); trainable when `param`. */
static int constf(const char *name, int nd, const int64_t *d, float lo, float hi, bool signs,
                  bool param) {
    int v = value(name);
    pl_tensor *t = &G->values[v].t;
    G->values[v].kind = PL_VALUE_CONST;
    set_dims(t, PL_F32, nd, d);
    pl_tensor_alloc(t);
    float *p = t->data;
    for (int64_t i = 0; i < pl_numel(t); i++)
        p[i] = frand(lo, hi) * (signs && urand() < 0.5 ? -1.0f : 1.0f);
    params[v] = param;
    return v;
}

static int consti(const char *name, int n, const int64_t *vals) {
    int v = value(name);
    pl_tensor *t = &G->values[v].t;
    G->values[v].kind = PL_VALUE_CONST;
    int64_t d[1] = {n};
    set_dims(t, PL_I64, 1, d);
    pl_tensor_alloc(t);
    memcpy(t->data, vals, (size_t)n * sizeof(int64_t));
    return v;
}

static int nodev(const char *op, int nin, const int *in, int nout, int *out_ids) {
    int i = pl_graph_add_node(G);
    pl_node *n = &G->nodes[i];
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%d", op, i);
    n->name = strdup(buf);
    n->op_type = strdup(op);
    n->domain = strdup("");
    n->opset = node_opset;
    n->nin = nin;
    n->nout = nout;
    n->in = malloc((size_t)(nin ? nin : 1) * sizeof(int));
    n->out = malloc((size_t)nout * sizeof(int));
    memcpy(n->in, in, (size_t)nin * sizeof(int));
    for (int k = 0; k < nout; k++) {
        snprintf(buf, sizeof buf, "%s_%d_out%d", op, i, k);
        int v = value(buf);
        G->values[v].producer = i;
        n = &G->nodes[i];
        n->out[k] = v;
        if (out_ids) out_ids[k] = v;
    }
    return i;
}

/* One-output node; returns the output value. */
static int node(const char *op, int nin, const int *in) {
    int out;
    nodev(op, nin, in, 1, &out);
    return out;
}

static pl_attr *new_attr(const char *name) {
    pl_node *n = &G->nodes[G->nnodes - 1];
    n->attrs = realloc(n->attrs, (size_t)(n->nattr + 1) * sizeof(pl_attr));
    pl_attr *a = &n->attrs[n->nattr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    return a;
}
static void attr_i(const char *name, int64_t v) {
    pl_attr *a = new_attr(name);
    a->type = PL_ATTR_INT;
    a->i = v;
}
static void attr_f(const char *name, float v) {
    pl_attr *a = new_attr(name);
    a->type = PL_ATTR_FLOAT;
    a->f = v;
}
static void attr_s(const char *name, const char *s) {
    pl_attr *a = new_attr(name);
    a->type = PL_ATTR_STRING;
    a->s = strdup(s);
    a->slen = strlen(s);
}
static void attr_ints(const char *name, int n, const int64_t *v) {
    pl_attr *a = new_attr(name);
    a->type = PL_ATTR_INTS;
    a->n = (size_t)n;
    a->ints = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
}

static void begin(int opset) {
    pl_graph_free(G);
    G = pl_graph_new();
    memset(params, 0, sizeof params);
    node_opset = opset;
}

/* ------------------------------------------------------------------ the check */

static double eval_L(tr_replica *r, const pl_tensor *x, int target, const float *rw,
                     const tr_run *run) {
    if (tr_replica_forward(r, x, run) != PL_OK) {
        fprintf(stderr, "forward failed: %s\n", pl_error_msg());
        exit(2);
    }
    const pl_tensor *y = tr_replica_value(r, target);
    const float *yp = y->data;
    double L = 0;
    for (int64_t i = 0; i < pl_numel(y); i++) L += (double)rw[i] * yp[i];
    return L;
}

/* Checks d L / d (x and every parameter) for the graph G with data input `in` fed
 * with x (float data perturbed in place; other types not differentiated). */
static void check(const char *name, int in, pl_tensor *x, int target, float eps) {
    G->outputs = realloc(G->outputs, sizeof(int));
    G->outputs[0] = target;
    G->noutputs = 1;
    for (int i = 0; i < G->nnodes; i++)
        for (int k = 0; k < tr_grad_count() && k < 256; k++)
            if (!strcmp(tr_grad_at(k)->op, G->nodes[i].op_type)) exercised[k] = true;
    const bool xgrad = x->dtype == PL_F32;
    tr_program *p = NULL;
    tr_replica *r = NULL;
    tr_run run = {.training = true, .seed = 42, .row0 = 0};
    if (tr_program_create(G, params, in, target, xgrad, &p) != PL_OK ||
        tr_replica_create(p, &r) != PL_OK) {
        fprintf(stderr, "FAIL %s: setup: %s\n", name, pl_error_msg());
        failures++;
        return;
    }
    if (tr_replica_forward(r, x, &run) != PL_OK) {
        fprintf(stderr, "FAIL %s: forward: %s\n", name, pl_error_msg());
        failures++;
        goto done;
    }
    const int64_t ny = pl_numel(tr_replica_value(r, target));
    float *rw = malloc((size_t)(ny ? ny : 1) * sizeof(float));
    for (int64_t i = 0; i < ny; i++) rw[i] = frand(-1, 1);
    pl_tensor *gt = NULL;
    if (tr_replica_begin_backward(r, &gt) != PL_OK) {
        fprintf(stderr, "FAIL %s: begin backward: %s\n", name, pl_error_msg());
        failures++;
        free(rw);
        goto done;
    }
    memcpy(gt->data, rw, (size_t)ny * sizeof(float));
    if (tr_replica_backward(r, &run) != PL_OK) {
        fprintf(stderr, "FAIL %s: backward: %s\n", name, pl_error_msg());
        failures++;
        free(rw);
        goto done;
    }
    double worst = 0;
    int nchecked = 0;
    for (int v = 0; v < G->nvalues; v++) {
        if (!(v == in && xgrad) && !params[v]) continue;
        float *data = v == in ? x->data : G->values[v].t.data;
        int64_t n = v == in ? pl_numel(x) : pl_numel(&G->values[v].t);
        const pl_tensor *gv = tr_replica_grad(r, v);
        float *ga = NULL;
        if (gv) {
            ga = malloc((size_t)(n ? n : 1) * sizeof(float));
            memcpy(ga, gv->data, (size_t)n * sizeof(float));
        }
        /* float32 rounding of the outputs a perturbation moves is ~1e-7 of their size,
         * which is far from 1e-3 of the largest gradients but not of the smallest:
         * relative errors are taken against at least 5% of the tensor's largest */
        double gmax = 0;
        for (int64_t i = 0; ga && i < n; i++) gmax = fmax(gmax, fabs(ga[i]));
        const double floor_ = fmax(1e-2, 0.05 * gmax);
        int64_t count = n <= 40 ? n : 40;
        for (int64_t k = 0; k < count; k++) {
            int64_t i = n <= 40 ? k : (int64_t)(urand() * (double)n);
            /* central differences at eps and 2 eps, Richardson-extrapolated (error
             * O(eps^4)), so that eps can be large enough for rounding not to matter */
            float keep = data[i];
            double dd[2];
            for (int h = 0; h < 2; h++) {
                float e = eps * (float)(h + 1);
                data[i] = keep + e;
                double lp = eval_L(r, x, target, rw, &run);
                data[i] = keep - e;
                double lm = eval_L(r, x, target, rw, &run);
                data[i] = keep;
                dd[h] = (lp - lm) / (2.0 * (double)e);
            }
            double num = (4.0 * dd[0] - dd[1]) / 3.0, ana = ga ? ga[i] : 0.0;
            double den = fmax(fmax(fabs(num), fabs(ana)), floor_), rel = fabs(num - ana) / den;
            if (rel > worst) worst = rel;
            if (rel > 1e-3) {
                if (nchecked < 1000)
                    fprintf(stderr, "  %s: d/d%s[%lld]: analytic %.6g numeric %.6g (rel %.2g)\n",
                            name, G->values[v].name, (long long)i, ana, num, rel);
            }
            nchecked++;
        }
        free(ga);
    }
    checks++;
    if (worst > 1e-3) {
        failures++;
        printf("FAIL %-44s worst rel %.2e over %d elements\n", name, worst, nchecked);
    } else {
        printf("ok   %-44s worst rel %.2e over %d elements\n", name, worst, nchecked);
    }
    free(rw);
done:
    tr_replica_destroy(r);
    tr_program_destroy(p);
}

/* A float input tensor with random values (|x| in [lo, hi), random signs if signs). */
static pl_tensor *xin(int nd, const int64_t *d, float lo, float hi, bool signs) {
    pl_tensor *t = calloc(1, sizeof *t);
    set_dims(t, PL_F32, nd, d);
    pl_tensor_alloc(t);
    float *p = t->data;
    for (int64_t i = 0; i < pl_numel(t); i++)
        p[i] = frand(lo, hi) * (signs && urand() < 0.5 ? -1.0f : 1.0f);
    return t;
}

/* Distinct values (spaced by 0.05, shuffled) so that max selections are stable. */
static pl_tensor *xdistinct(int nd, const int64_t *d) {
    pl_tensor *t = xin(nd, d, 0, 1, false);
    float *p = t->data;
    int64_t n = pl_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(i - n / 2) * 0.05f;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(urand() * (double)(i + 1));
        float s = p[i];
        p[i] = p[j];
        p[j] = s;
    }
    return t;
}

static void xfree(pl_tensor *t) {
    pl_tensor_free_data(t);
    free(t);
}

#define D(...)                                                                                     \
    (const int64_t[]) {                                                                            \
        __VA_ARGS__                                                                                \
    }
#define NDIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* ------------------------------------------------------------------ cases */

static void conv_case(const char *name, int nd, const int64_t *xd, const int64_t *wd, bool bias,
                      int64_t group, const int64_t *strides, const int64_t *pads,
                      const int64_t *dil, const char *auto_pad) {
    begin(17);
    int x = input("x", PL_F32, nd, xd);
    int w = constf("w", nd, wd, 0.1f, 1.0f, true, true);
    int ins[3] = {x, w, -1};
    if (bias) ins[2] = constf("b", 1, D(wd[0]), 0.1f, 1.0f, true, true);
    int y = node("Conv", bias ? 3 : 2, ins);
    if (group != 1) attr_i("group", group);
    if (strides) attr_ints("strides", nd - 2, strides);
    if (pads) attr_ints("pads", 2 * (nd - 2), pads);
    if (dil) attr_ints("dilations", nd - 2, dil);
    if (auto_pad) attr_s("auto_pad", auto_pad);
    pl_tensor *xt = xin(nd, xd, 0.1f, 1.0f, true);
    check(name, x, xt, y, 1e-2f);
    xfree(xt);
}

static void test_conv(void) {
    conv_case("Conv 3x3 pad 1", 4, D(2, 3, 7, 6), D(4, 3, 3, 3), true, 1, NULL, D(1, 1, 1, 1), NULL,
              NULL);
    conv_case("Conv groups 2, stride 2x1, dil 1x2, asym pads", 4, D(2, 4, 9, 8), D(6, 2, 3, 2),
              true, 2, D(2, 1), D(1, 0, 0, 1), D(1, 2), NULL);
    conv_case("Conv depthwise stride 2 pad 1", 4, D(1, 4, 6, 6), D(4, 1, 3, 3), true, 4, D(2, 2),
              D(1, 1, 1, 1), NULL, NULL);
    conv_case("Conv depthwise x2 multiplier", 4, D(2, 3, 5, 5), D(6, 1, 3, 3), false, 3, NULL, NULL,
              NULL, NULL);
    conv_case("Conv 1x1 direct", 4, D(2, 5, 4, 4), D(3, 5, 1, 1), true, 1, NULL, NULL, NULL, NULL);
    conv_case("Conv 1x1 stride 2", 4, D(1, 4, 5, 5), D(3, 4, 1, 1), false, 1, D(2, 2), NULL, NULL,
              NULL);
    conv_case("Conv 1-D stride 2 pads", 3, D(2, 3, 10), D(2, 3, 3), true, 1, D(2), D(1, 1), NULL,
              NULL);
    conv_case("Conv SAME_UPPER stride 2", 4, D(1, 2, 7, 7), D(3, 2, 3, 3), true, 1, D(2, 2), NULL,
              NULL, "SAME_UPPER");
    conv_case("Conv 3-D", 5, D(1, 2, 4, 5, 4), D(2, 2, 2, 3, 2), true, 1, NULL, D(0, 1, 0, 0, 1, 1),
              NULL, NULL);
    conv_case("Conv 5x5 chunked (3 images in 2 chunks)", 4, D(3, 8, 64, 64), D(2, 8, 3, 3), true, 1,
              NULL, D(1, 1, 1, 1), NULL, NULL);
}

static void gemm_case(const char *name, int64_t M, int64_t N, int64_t K, int ta, int tb,
                      float alpha, float beta, int cnd, const int64_t *cd) {
    begin(13);
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
    int a = input("a", PL_F32, 2, ad);
    int b = constf("b", 2, bd, 0.1f, 1.0f, true, true);
    int ins[3] = {a, b, -1};
    if (cnd >= 0) ins[2] = constf("c", cnd, cd, 0.1f, 1.0f, true, true);
    int y = node("Gemm", cnd >= 0 ? 3 : 2, ins);
    if (ta) attr_i("transA", 1);
    if (tb) attr_i("transB", 1);
    if (alpha != 1.0f) attr_f("alpha", alpha);
    if (beta != 1.0f) attr_f("beta", beta);
    pl_tensor *xt = xin(2, ad, 0.1f, 1.0f, true);
    check(name, a, xt, y, 1e-2f);
    xfree(xt);
}

static void test_gemm(void) {
    gemm_case("Gemm bias [N]", 5, 4, 3, 0, 0, 1, 1, 1, D(4));
    gemm_case("Gemm transB bias [1,N]", 6, 7, 5, 0, 1, 1, 1, 2, D(1, 7));
    gemm_case("Gemm transA alpha beta C [M,N]", 4, 3, 6, 1, 0, 0.5f, 2.0f, 2, D(4, 3));
    gemm_case("Gemm transA transB C [M,1]", 3, 5, 4, 1, 1, 1.5f, 1, 2, D(3, 1));
    gemm_case("Gemm no C", 33, 17, 20, 0, 1, 1, 1, -1, NULL);
    gemm_case("Gemm scalar C beta 0.5", 2, 3, 4, 0, 0, 1, 0.5f, 1, D(1));
}

static void matmul_case(const char *name, int na, const int64_t *ad, int nb, const int64_t *bd) {
    begin(13);
    int a = input("a", PL_F32, na, ad);
    int b = constf("b", nb, bd, 0.1f, 1.0f, true, true);
    int y = node("MatMul", 2, (int[]){a, b});
    pl_tensor *xt = xin(na, ad, 0.1f, 1.0f, true);
    check(name, a, xt, y, 1e-2f);
    xfree(xt);
}

static void test_matmul(void) {
    matmul_case("MatMul 2-D", 2, D(3, 4), 2, D(4, 5));
    matmul_case("MatMul batched A, shared B", 3, D(2, 3, 4), 2, D(4, 5));
    matmul_case("MatMul batched both", 3, D(2, 3, 4), 3, D(2, 4, 5));
    matmul_case("MatMul broadcast batch", 4, D(2, 1, 3, 4), 3, D(3, 4, 2));
    matmul_case("MatMul 1-D A", 1, D(4), 2, D(4, 5));
    matmul_case("MatMul 1-D B", 3, D(2, 3, 4), 1, D(4));
    matmul_case("MatMul B batch of 1", 3, D(3, 2, 4), 3, D(1, 4, 3));
}

static void unary_case(const char *op, int opset, float lo, float hi, bool signs, float eps,
                       const char *attr, const char *sval, float fval) {
    begin(opset);
    const int64_t *d = D(2, 3, 5);
    int x = input("x", PL_F32, 3, d);
    int y = node(op, 1, (int[]){x});
    if (attr && sval)
        attr_s(attr, sval);
    else if (attr)
        attr_f(attr, fval);
    pl_tensor *xt = xin(3, d, lo, hi, signs);
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", op, sval ? " " : "", sval ? sval : "");
    check(name, x, xt, y, eps);
    xfree(xt);
}

static void test_unary(void) {
    unary_case("Identity", 17, 0.1f, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Relu", 17, 0.05f, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("LeakyRelu", 17, 0.05f, 2, true, 1e-2f, "alpha", NULL, 0.2f);
    unary_case("Sigmoid", 17, 0, 3, true, 1e-2f, NULL, NULL, 0);
    unary_case("Tanh", 17, 0, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Gelu", 20, 0, 3, true, 1e-2f, "approximate", "none", 0);
    unary_case("Gelu", 20, 0, 3, true, 1e-2f, "approximate", "tanh", 0);
    unary_case("Erf", 17, 0, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Exp", 17, 0, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Log", 17, 0.5f, 3, false, 1e-2f, NULL, NULL, 0);
    unary_case("Sqrt", 17, 0.5f, 3, false, 1e-2f, NULL, NULL, 0);
    unary_case("Neg", 17, 0, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Abs", 17, 0.05f, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Reciprocal", 17, 0.5f, 2, true, 1e-2f, NULL, NULL, 0);
    unary_case("Softplus", 17, 0, 3, true, 1e-2f, NULL, NULL, 0);
    /* Clip with bounds as inputs (opset 13) and as attributes (opset 6) */
    begin(13);
    int x = input("x", PL_F32, 2, D(4, 6));
    float lo = -0.5f, hi = 0.6f;
    int vlo = constf("lo", 0, NULL, 0, 0, false, false),
        vhi = constf("hi", 0, NULL, 0, 0, false, false);
    *(float *)G->values[vlo].t.data = lo;
    *(float *)G->values[vhi].t.data = hi;
    int y = node("Clip", 3, (int[]){x, vlo, vhi});
    pl_tensor *xt = xin(2, D(4, 6), 0, 1, true);
    for (int i = 0; i < 24; i++) { /* away from the bounds */
        float *p = xt->data;
        if (fabsf(p[i] - lo) < 0.03f || fabsf(p[i] - hi) < 0.03f) p[i] += 0.07f;
    }
    check("Clip (inputs, opset 13)", x, xt, y, 1e-2f);
    begin(6);
    x = input("x", PL_F32, 2, D(4, 6));
    y = node("Clip", 1, (int[]){x});
    attr_f("min", lo);
    attr_f("max", hi);
    check("Clip (attributes, opset 6)", x, xt, y, 1e-2f);
    xfree(xt);
    /* Cast float -> float */
    begin(13);
    x = input("x", PL_F32, 2, D(3, 3));
    y = node("Cast", 1, (int[]){x});
    attr_i("to", PL_F32);
    xt = xin(2, D(3, 3), 0, 1, true);
    check("Cast float32 -> float32", x, xt, y, 1e-2f);
    xfree(xt);
}

static void binary_case(const char *op, int na, const int64_t *ad, int nb, const int64_t *bd,
                        bool swap) {
    begin(14);
    int a = input("a", PL_F32, na, ad);
    bool pw = !strcmp(op, "Pow");
    int b = constf("b", nb, bd, pw ? 0.5f : 0.5f, pw ? 2.5f : 1.5f, !pw, !pw);
    if (pl_numel(&G->values[b].t) <= 1) params[b] = !pw;
    int y = node(op, 2, swap ? (int[]){b, a} : (int[]){a, b});
    pl_tensor *xt = xin(na, ad, pw ? 0.5f : 0.2f, 1.5f, !pw);
    char name[128], sa[64], sb[64];
    pl_tensor ta = {.ndim = na}, tb = {.ndim = nb};
    memcpy(ta.dims, ad, (size_t)na * 8);
    if (nb) memcpy(tb.dims, bd, (size_t)nb * 8);
    snprintf(name, sizeof name, "%s %s %s %s", op, pl_shape_str(swap ? &tb : &ta, sa, sizeof sa),
             swap ? "(param)," : ",", pl_shape_str(swap ? &ta : &tb, sb, sizeof sb));
    check(name, a, xt, y, 1e-2f);
    xfree(xt);
}

static void test_binary(void) {
    const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    for (int k = 0; k < 4; k++) {
        binary_case(ops[k], 3, D(2, 3, 4), 3, D(2, 3, 4), false);
        binary_case(ops[k], 3, D(2, 3, 4), 2, D(3, 1), false);
        binary_case(ops[k], 2, D(3, 1), 3, D(2, 3, 4), true);
        binary_case(ops[k], 4, D(2, 3, 2, 2), 3, D(3, 1, 1), false);
        binary_case(ops[k], 2, D(4, 5), 1, D(5), false);
    }
    binary_case("Pow", 3, D(2, 3, 4), 1, D(1), false);
    binary_case("Pow", 2, D(3, 4), 2, D(3, 4), false);
}

static void pool_case(const char *name, const char *op, int nd, const int64_t *xd, const int64_t *k,
                      const int64_t *s, const int64_t *pads, int ceil, int cip,
                      const int64_t *dil) {
    begin(19);
    int x = input("x", PL_F32, nd, xd);
    int y = node(op, 1, (int[]){x});
    if (k) attr_ints("kernel_shape", nd - 2, k);
    if (s) attr_ints("strides", nd - 2, s);
    if (pads) attr_ints("pads", 2 * (nd - 2), pads);
    if (ceil) attr_i("ceil_mode", 1);
    if (cip) attr_i("count_include_pad", 1);
    if (dil) attr_ints("dilations", nd - 2, dil);
    pl_tensor *xt = xdistinct(nd, xd);
    check(name, x, xt, y, 1e-3f);
    xfree(xt);
}

static void test_pool(void) {
    pool_case("MaxPool 2x2 stride 2", "MaxPool", 4, D(2, 3, 6, 6), D(2, 2), D(2, 2), NULL, 0, 0,
              NULL);
    pool_case("MaxPool 2x2 stride 2 wide rows, odd sizes", "MaxPool", 4, D(1, 2, 5, 41), D(2, 2),
              D(2, 2), NULL, 0, 0, NULL);
    pool_case("MaxPool 3x3 stride 2 pad 1", "MaxPool", 4, D(1, 2, 7, 7), D(3, 3), D(2, 2),
              D(1, 1, 1, 1), 0, 0, NULL);
    pool_case("MaxPool ceil_mode", "MaxPool", 4, D(1, 2, 7, 7), D(2, 2), D(2, 2), NULL, 1, 0, NULL);
    pool_case("MaxPool dilation 2", "MaxPool", 4, D(1, 2, 7, 7), D(2, 2), D(1, 1), NULL, 0, 0,
              D(2, 2));
    pool_case("MaxPool 1-D", "MaxPool", 3, D(2, 2, 9), D(3), D(2), D(1, 0), 0, 0, NULL);
    pool_case("MaxPool 3-D", "MaxPool", 5, D(1, 1, 4, 4, 4), D(2, 2, 2), D(2, 2, 2), NULL, 0, 0,
              NULL);
    pool_case("AveragePool 2x2", "AveragePool", 4, D(2, 2, 6, 6), D(2, 2), D(2, 2), NULL, 0, 0,
              NULL);
    pool_case("AveragePool 3x3 pad 1 excl pad", "AveragePool", 4, D(1, 2, 5, 5), D(3, 3), D(2, 2),
              D(1, 1, 1, 1), 0, 0, NULL);
    pool_case("AveragePool 3x3 pad 1 incl pad", "AveragePool", 4, D(1, 2, 5, 5), D(3, 3), D(2, 2),
              D(1, 1, 1, 1), 0, 1, NULL);
    pool_case("AveragePool ceil_mode 1-D", "AveragePool", 3, D(1, 2, 8), D(3), D(2), NULL, 1, 0,
              NULL);
    pool_case("GlobalAveragePool", "GlobalAveragePool", 4, D(2, 3, 4, 5), NULL, NULL, NULL, 0, 0,
              NULL);
    pool_case("GlobalMaxPool", "GlobalMaxPool", 4, D(2, 3, 4, 5), NULL, NULL, NULL, 0, 0, NULL);
}

static void test_norm(void) {
    const int64_t *shapes[] = {D(4, 3, 5, 5), D(6, 4), D(3, 2, 7)};
    const int ranks[] = {4, 2, 3};
    for (int s = 0; s < 3; s++) {
        for (int opset = 9; opset <= 15; opset += 6) {
            begin(opset);
            int64_t C = shapes[s][1];
            int x = input("x", PL_F32, ranks[s], shapes[s]);
            int sc = constf("scale", 1, D(C), 0.5f, 1.5f, false, true);
            int b = constf("bias", 1, D(C), 0, 1, true, true);
            int mean = constf("mean", 1, D(C), 0, 1, false, false);
            int var = constf("var", 1, D(C), 0.5f, 1, false, false);
            int y = node("BatchNormalization", 5, (int[]){x, sc, b, mean, var});
            if (opset >= 14) attr_i("training_mode", 1);
            pl_tensor *xt = xin(ranks[s], shapes[s], 0, 2, true);
            char name[96], sh[64];
            snprintf(name, sizeof name, "BatchNormalization train %s opset %d",
                     pl_shape_str(xt, sh, sizeof sh), opset);
            check(name, x, xt, y, 4e-2f);
            xfree(xt);
        }
    }
    const int64_t axes[] = {-1, 1, 2};
    for (int k = 0; k < 3; k++) {
        begin(17);
        const int64_t *xd = D(2, 3, 4, 5);
        int64_t nd[4], nn = 0;
        int ax = (int)(axes[k] < 0 ? 4 + axes[k] : axes[k]);
        for (int d = ax; d < 4; d++) nd[nn++] = xd[d];
        int x = input("x", PL_F32, 4, xd);
        int sc = constf("scale", (int)nn, nd, 0.5f, 1.5f, false, true);
        int b = constf("bias", (int)nn, nd, 0, 1, true, true);
        int y = node("LayerNormalization", 3, (int[]){x, sc, b});
        attr_i("axis", axes[k]);
        pl_tensor *xt = xin(4, xd, 0, 2, true);
        char name[64];
        snprintf(name, sizeof name, "LayerNormalization axis %lld", (long long)axes[k]);
        check(name, x, xt, y, 4e-2f);
        xfree(xt);
    }
}

static void test_shape_ops(void) {
    pl_tensor *xt;
    int x, y, s;
    /* Flatten, Reshape, Squeeze, Unsqueeze, Transpose */
    begin(13);
    x = input("x", PL_F32, 4, D(2, 3, 2, 2));
    y = node("Flatten", 1, (int[]){x});
    attr_i("axis", 2);
    int w = constf("w", 2, D(4, 3), 0.1f, 1, true, true);
    y = node("MatMul", 2, (int[]){y, w});
    xt = xin(4, D(2, 3, 2, 2), 0, 1, true);
    check("Flatten axis 2 (+ MatMul)", x, xt, y, 1e-2f);
    begin(13);
    x = input("x", PL_F32, 4, D(2, 3, 2, 2));
    s = consti("shape", 3, D(2, -1, 3));
    y = node("Reshape", 2, (int[]){x, s});
    y = node("Mul", 2, (int[]){y, constf("m", 1, D(3), 0.5f, 1, true, true)});
    check("Reshape (+ Mul)", x, xt, y, 1e-2f);
    begin(13);
    x = input("x", PL_F32, 4, D(2, 3, 2, 2));
    y = node("Transpose", 1, (int[]){x});
    attr_ints("perm", 4, D(2, 0, 3, 1));
    y = node("Mul", 2, (int[]){y, constf("m", 1, D(3), 0.5f, 1, true, true)});
    check("Transpose perm 2,0,3,1", x, xt, y, 1e-2f);
    begin(13);
    x = input("x", PL_F32, 4, D(2, 3, 2, 2));
    y = node("Transpose", 1, (int[]){x});
    check("Transpose default", x, xt, y, 1e-2f);
    xfree(xt);
    begin(13);
    x = input("x", PL_F32, 3, D(2, 1, 3));
    y = node("Squeeze", 2, (int[]){x, consti("axes", 1, D(1))});
    y = node("Unsqueeze", 2, (int[]){y, consti("axes2", 1, D(0))});
    y = node("Mul", 2, (int[]){y, constf("m", 1, D(3), 0.5f, 1, true, true)});
    xt = xin(3, D(2, 1, 3), 0, 1, true);
    check("Squeeze + Unsqueeze (opset 13)", x, xt, y, 1e-2f);
    xfree(xt);
    /* Concat of the input and two parameters */
    for (int axis = 0; axis < 3; axis++) {
        begin(13);
        int64_t d1[3] = {2, 3, 4}, d2[3] = {2, 3, 4};
        d2[axis] = 5;
        x = input("x", PL_F32, 3, d1);
        int p1 = constf("p1", 3, d2, 0, 1, true, true), p2 = constf("p2", 3, d1, 0, 1, true, true);
        y = node("Concat", 3, (int[]){p1, x, p2});
        attr_i("axis", axis - 3);
        xt = xin(3, d1, 0, 1, true);
        char name[32];
        snprintf(name, sizeof name, "Concat axis %d", axis - 3);
        check(name, x, xt, y, 1e-2f);
        xfree(xt);
    }
    /* Split into unequal parts, recombined */
    begin(13);
    x = input("x", PL_F32, 2, D(3, 7));
    int outs[2];
    nodev("Split", 2, (int[]){x, consti("split", 2, D(3, 4))}, 2, outs);
    attr_i("axis", 1);
    int a = node("Mul", 2, (int[]){outs[0], constf("m", 1, D(3), 0.5f, 1, true, true)});
    y = node("Concat", 2, (int[]){outs[1], a});
    attr_i("axis", 1);
    xt = xin(2, D(3, 7), 0, 1, true);
    check("Split [3,4] axis 1", x, xt, y, 1e-2f);
    xfree(xt);
    /* Slice with steps, negative indices, and the opset 1 attribute form */
    begin(13);
    x = input("x", PL_F32, 3, D(4, 6, 5));
    y = node("Slice", 5,
             (int[]){x, consti("st", 2, D(-1, 1)), consti("en", 2, D(-100, 6)),
                     consti("ax", 2, D(2, 1)), consti("sp", 2, D(-2, 2))});
    xt = xin(3, D(4, 6, 5), 0, 1, true);
    check("Slice steps -2, 2", x, xt, y, 1e-2f);
    begin(1);
    x = input("x", PL_F32, 3, D(4, 6, 5));
    y = node("Slice", 1, (int[]){x});
    attr_ints("starts", 2, D(1, 0));
    attr_ints("ends", 2, D(3, -1));
    attr_ints("axes", 2, D(0, 2));
    check("Slice opset 1", x, xt, y, 1e-2f);
    xfree(xt);
    /* Gather: embedding rows (indices are the data input) and along axis 1 */
    begin(13);
    int idx = input("idx", PL_I64, 2, D(2, 3));
    int table = constf("table", 2, D(5, 4), 0, 1, true, true);
    y = node("Gather", 2, (int[]){table, idx});
    pl_tensor *it = calloc(1, sizeof *it);
    set_dims(it, PL_I64, 2, D(2, 3));
    pl_tensor_alloc(it);
    int64_t iv[6] = {1, 4, 1, 0, -1, 3};
    memcpy(it->data, iv, sizeof iv);
    check("Gather embedding (repeated, negative)", idx, it, y, 1e-2f);
    xfree(it);
    begin(13);
    x = input("x", PL_F32, 3, D(2, 5, 3));
    y = node("Gather", 2, (int[]){x, consti("i", 4, D(4, 0, 4, 2))});
    attr_i("axis", 1);
    xt = xin(3, D(2, 5, 3), 0, 1, true);
    check("Gather axis 1", x, xt, y, 1e-2f);
    xfree(xt);
    /* ReduceMean / ReduceSum */
    for (int k = 0; k < 4; k++) {
        bool sum = k >= 2;
        int opset = k == 0 ? 13 : (k == 1 ? 18 : (k == 2 ? 11 : 13));
        begin(opset);
        x = input("x", PL_F32, 3, D(2, 3, 4));
        bool axes_input = sum ? opset >= 13 : opset >= 18;
        if (axes_input)
            y = node(sum ? "ReduceSum" : "ReduceMean", 2, (int[]){x, consti("axes", 2, D(0, -1))});
        else {
            y = node(sum ? "ReduceSum" : "ReduceMean", 1, (int[]){x});
            attr_ints("axes", 1, D(1));
        }
        attr_i("keepdims", k % 2);
        xt = xin(3, D(2, 3, 4), 0, 1, true);
        char name[64];
        snprintf(name, sizeof name, "%s opset %d keepdims %d", sum ? "ReduceSum" : "ReduceMean",
                 opset, k % 2);
        check(name, x, xt, y, 1e-2f);
        xfree(xt);
    }
}

static void test_softmax(void) {
    const int opsets[] = {13, 13, 11};
    const int64_t axes[] = {-1, 1, 1};
    for (int k = 0; k < 3; k++)
        for (int lg = 0; lg < 2; lg++) {
            begin(opsets[k]);
            int x = input("x", PL_F32, 3, D(2, 4, 3));
            int y = node(lg ? "LogSoftmax" : "Softmax", 1, (int[]){x});
            attr_i("axis", axes[k]);
            pl_tensor *xt = xin(3, D(2, 4, 3), 0, 2, true);
            char name[64];
            snprintf(name, sizeof name, "%s axis %lld opset %d", lg ? "LogSoftmax" : "Softmax",
                     (long long)axes[k], opsets[k]);
            check(name, x, xt, y, 1e-2f);
            xfree(xt);
        }
}

static void test_dropout(void) {
    for (int opset = 7; opset <= 13; opset += 6) {
        begin(opset);
        int x = input("x", PL_F32, 2, D(8, 16));
        int y;
        if (opset >= 12) {
            int r = constf("ratio", 0, NULL, 0, 0, false, false);
            *(float *)G->values[r].t.data = 0.3f;
            y = node("Dropout", 2, (int[]){x, r});
        } else {
            y = node("Dropout", 1, (int[]){x});
            attr_f("ratio", 0.3f);
        }
        pl_tensor *xt = xin(2, D(8, 16), 0, 1, true);
        check(opset >= 12 ? "Dropout training (ratio input)" : "Dropout training (ratio attribute)",
              x, xt, y, 1e-2f);
        xfree(xt);
    }
}

/* A small network: every op of an MLP/CNN together. */
static void test_network(void) {
    begin(13);
    int x = input("x", PL_F32, 4, D(3, 2, 8, 8));
    int w1 = constf("w1", 4, D(4, 2, 3, 3), 0.1f, 0.5f, true, true),
        b1 = constf("b1", 1, D(4), 0, 0.1f, true, true);
    int y = node("Conv", 3, (int[]){x, w1, b1});
    attr_ints("pads", 4, D(1, 1, 1, 1));
    int sc = constf("s", 1, D(4), 0.5f, 1.5f, false, true),
        bb = constf("bb", 1, D(4), 0, 0.5f, true, true);
    int mm = constf("mm", 1, D(4), 0, 0, false, false),
        vv = constf("vv", 1, D(4), 1, 1, false, false);
    y = node("BatchNormalization", 5, (int[]){y, sc, bb, mm, vv});
    y = node("Tanh", 1, (int[]){y});
    y = node("AveragePool", 1, (int[]){y});
    attr_ints("kernel_shape", 2, D(2, 2));
    attr_ints("strides", 2, D(2, 2));
    int r = y;
    y = node("Conv", 2, (int[]){y, constf("w2", 4, D(4, 4, 3, 3), 0.1f, 0.5f, true, true)});
    attr_ints("pads", 4, D(1, 1, 1, 1));
    y = node("Add", 2, (int[]){y, r});
    y = node("Flatten", 1, (int[]){y});
    y = node("Gemm", 3,
             (int[]){y, constf("fw", 2, D(5, 64), 0.05f, 0.2f, true, true),
                     constf("fb", 1, D(5), 0, 0.1f, true, true)});
    attr_i("transB", 1);
    y = node("Sigmoid", 1, (int[]){y});
    pl_tensor *xt = xin(4, D(3, 2, 8, 8), 0, 1, true);
    check("network Conv-BN-Tanh-AvgPool-Conv-Add-Gemm-Sigmoid", x, xt, y, 4e-2f);
    xfree(xt);
}

/* ------------------------------------------------------------------ losses */

static void test_losses(void) {
    const pillar_loss kinds[] = {PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY, PILLAR_LOSS_NLL,
                                 PILLAR_LOSS_MSE};
    const char *names[] = {"loss softmax cross-entropy", "loss nll", "loss mse"};
    const int64_t shapes[2][3] = {{5, 4, 1}, {3, 4, 2}};
    for (int k = 0; k < 3; k++)
        for (int s = 0; s < 2; s++) {
            int nd = s == 0 ? 2 : 3;
            pl_tensor *out = xin(nd, shapes[s], 0, 2, true), labels = {0}, grad = {0};
            int64_t B = shapes[s][0], inner = s == 0 ? 1 : shapes[s][2];
            if (kinds[k] == PILLAR_LOSS_MSE) {
                set_dims(&labels, PL_F32, nd, shapes[s]);
                pl_tensor_alloc(&labels);
                for (int64_t i = 0; i < pl_numel(&labels); i++)
                    ((float *)labels.data)[i] = frand(-1, 1);
            } else {
                int64_t ld[2] = {B, inner};
                set_dims(&labels, PL_I64, s == 0 ? 1 : 2, ld);
                pl_tensor_alloc(&labels);
                for (int64_t i = 0; i < pl_numel(&labels); i++)
                    ((int64_t *)labels.data)[i] = (int64_t)(urand() * 4);
            }
            set_dims(&grad, PL_F32, nd, shapes[s]);
            pl_tensor_alloc(&grad);
            double L = 0, worst = 0;
            int64_t hits = 0;
            const double scale = 1.0 / (double)B;
            if (tr_loss_check(kinds[k], &labels, B, nd, shapes[s]) != PL_OK ||
                tr_loss(kinds[k], out, &labels, 0, scale, &grad, &L, &hits) != PL_OK) {
                printf("FAIL %s: %s\n", names[k], pl_error_msg());
                failures++;
                continue;
            }
            float *o = out->data;
            for (int64_t i = 0; i < pl_numel(out); i++) {
                const float keep = o[i], eps = 1e-2f;
                double lp = 0, lm = 0;
                int64_t h = 0;
                o[i] = keep + eps;
                tr_loss(kinds[k], out, &labels, 0, scale, NULL, &lp, &h);
                o[i] = keep - eps;
                tr_loss(kinds[k], out, &labels, 0, scale, NULL, &lm, &h);
                o[i] = keep;
                double num = (lp - lm) * scale / (2.0 * eps), ana = ((float *)grad.data)[i];
                double rel = fabs(num - ana) / fmax(fmax(fabs(num), fabs(ana)), 1e-2);
                if (rel > worst) worst = rel;
            }
            checks++;
            char name[96];
            snprintf(name, sizeof name, "%s %s", names[k], s == 0 ? "[N,C]" : "[N,C,d]");
            if (worst > 1e-3) failures++;
            printf("%s %-44s worst rel %.2e\n", worst > 1e-3 ? "FAIL" : "ok  ", name, worst);
            /* a label out of range is reported with its record */
            if (kinds[k] != PILLAR_LOSS_MSE) {
                ((int64_t *)labels.data)[pl_numel(&labels) - 1] = 7;
                pl_status st = tr_loss_check(kinds[k], &labels, B, nd, shapes[s]);
                checks++;
                if (st != PL_ERR_INPUT || !strstr(pl_error_msg(), "record")) {
                    printf("FAIL %s: bad label not reported (%s)\n", names[k], pl_error_msg());
                    failures++;
                }
            }
            xfree(out);
            pl_tensor_free_data(&labels);
            pl_tensor_free_data(&grad);
        }
}

/* ------------------------------------------------------------------ bf16 GEMM */

static float bf16r(float f) {
    return pl_bf16_to_f32(pl_f32_to_bf16(f));
}

/* The AVX512_BF16 GEMM (when the CPU has it) against a double reference over the
 * operands rounded to bfloat16: the products are then exact, only the float32 sums
 * differ. Shapes cover tile edges, odd K, K blocks, every transpose, alpha and beta. */
static void test_bf16_gemm(void) {
    if (!tr_bf16_native()) {
        printf("skip bf16 GEMM (no AVX512_BF16 here; the fallback rounds operands for the float32 "
               "SGEMM)\n");
        return;
    }
    const int64_t shapes[][3] = {{1, 1, 1},      {14, 32, 2}, {15, 33, 3}, {29, 65, 17},
                                 {64, 196, 800}, {5, 7, 600}, {100, 3, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            const bool ta = t & 1, tb = t & 2;
            float *A = malloc((size_t)(M * K) * 4), *B = malloc((size_t)(K * N) * 4),
                  *C = malloc((size_t)(M * N) * 4);
            double *R = malloc((size_t)(M * N) * 8);
            for (int64_t i = 0; i < M * K; i++) A[i] = frand(-1, 1);
            for (int64_t i = 0; i < K * N; i++) B[i] = frand(-1, 1);
            for (int64_t i = 0; i < M * N; i++) C[i] = frand(-1, 1);
            const float alpha = 0.75f, beta = t == 3 ? 0.0f : 0.5f;
            const int64_t lda = ta ? M : K, ldb = tb ? K : N;
            double scale = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double acc = 0, mag = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)bf16r(ta ? A[k * lda + i] : A[i * lda + k]) *
                                   bf16r(tb ? B[j * ldb + k] : B[k * ldb + j]);
                        acc += p;
                        mag += fabs(p);
                    }
                    R[i * N + j] = alpha * acc + (beta != 0.0f ? beta * C[i * N + j] : 0.0);
                    scale = fmax(scale, mag);
                }
            void *work = malloc(tr_bf16_avx512_work(M, N, K)), *pa = NULL;
            if (s % 2) { /* A packed beforehand, as for weights */
                pa = malloc(tr_bf16_avx512_packed_a_size(M, K));
                tr_bf16_avx512_pack_a(ta, M, K, A, lda, pa);
            }
            tr_bf16_gemm_avx512(ta, tb, M, N, K, alpha, A, lda, pa, B, ldb, beta, C, N, work);
            free(pa);
            double worst = 0;
            for (int64_t i = 0; i < M * N; i++)
                worst = fmax(worst, fabs(C[i] - R[i]) / fmax(scale, 1e-3));
            checks++;
            if (worst > 1e-6) {
                failures++;
                printf("FAIL bf16 GEMM %lldx%lldx%lld ta %d tb %d: error %.2e of the sum of "
                       "|products|\n",
                       (long long)M, (long long)N, (long long)K, ta, tb, worst);
            }
            free(A);
            free(B);
            free(C);
            free(R);
            free(work);
        }
    printf("ok   bf16 GEMM (AVX512_BF16) against the rounded-operand reference\n");
}

/* ------------------------------------------------------------------ end to end */

/* Logistic regression-like MLP on two Gaussian blobs through the public API. */
static void test_fit(void) {
    begin(13);
    int x = input("x", PL_F32, 2, D(-1, 2));
    G->values[x].t.dims[0] = -1;
    int y = node("Gemm", 3,
                 (int[]){x, constf("w1", 2, D(8, 2), 0.1f, 0.8f, true, true),
                         constf("b1", 1, D(8), 0, 0.1f, true, true)});
    attr_i("transB", 1);
    y = node("Relu", 1, (int[]){y});
    y = node("Gemm", 3,
             (int[]){y, constf("w2", 2, D(2, 8), 0.1f, 0.8f, true, true),
                     constf("b2", 1, D(2), 0, 0.1f, true, true)});
    attr_i("transB", 1);
    G->outputs = malloc(sizeof(int));
    G->outputs[0] = y;
    G->noutputs = 1;
    pl_model *m = calloc(1, sizeof *m);
    m->path = strdup("fit");
    m->nopsets = 1;
    m->opsets = calloc(1, sizeof(pl_opset));
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = 13;
    m->graph = G;
    G = NULL;
    pillar_train_options *o;
    pillar_train_options_create(&o);
    pillar_train_options_set_optimizer(o, PILLAR_OPTIMIZER_SGD, 0.1f, 0.9f, 0);
    pillar_train_options_set_threads(o, 1);
    pillar_trainer *t = NULL;
    if (pillar_trainer_create(m, o, &t) != PILLAR_OK) {
        printf("FAIL fit: %s\n", pillar_last_error());
        failures++;
        return;
    }
    float xs[64 * 2];
    int64_t ls[64];
    pillar_tensor *xt, *lt;
    pillar_tensor_wrap(PILLAR_FLOAT32, 2, D(64, 2), xs, &xt);
    pillar_tensor_wrap(PILLAR_INT64, 1, D(64), ls, &lt);
    float first = 0, last = 0;
    int64_t correct = 0;
    for (int step = 0; step < 60; step++) {
        for (int i = 0; i < 64; i++) {
            ls[i] = urand() < 0.5;
            xs[2 * i] = frand(-1, 1) + (ls[i] ? 1.5f : -1.5f);
            xs[2 * i + 1] = frand(-1, 1);
        }
        float loss;
        if (pillar_trainer_step(t, xt, lt, &loss, &correct) != PILLAR_OK) {
            printf("FAIL fit step: %s\n", pillar_last_error());
            failures++;
            break;
        }
        if (step == 0) first = loss;
        last = loss;
    }
    checks++;
    bool ok = last < 0.2f * first && correct >= 60;
    if (!ok) failures++;
    printf("%s tiny fit: loss %.4f -> %.4f, last batch %lld/64 correct\n", ok ? "ok  " : "FAIL",
           first, last, (long long)correct);
    pillar_tensor_destroy(xt);
    pillar_tensor_destroy(lt);
    pillar_trainer_destroy(t);
    pillar_train_options_destroy(o);
    pl_model_free(m);
}

int main(void) {
    test_conv();
    test_gemm();
    test_matmul();
    test_unary();
    test_binary();
    test_pool();
    test_norm();
    test_shape_ops();
    test_softmax();
    test_dropout();
    test_network();
    test_losses();
    test_bf16_gemm();
    test_fit();
    pl_graph_free(G);
    /* every op of grad.def must have been exercised above */
    for (int k = 0; k < tr_grad_count(); k++)
        if (!exercised[k]) {
            printf("FAIL no gradient check exercises %s\n", tr_grad_at(k)->op);
            failures++;
        }
    printf("%d checks, %d failures, %d ops with a backward\n", checks, failures, tr_grad_count());
    return failures ? 1 : 0;
}
