/* test_attention.c -- the attention fusion pass (src/graph/fuse_attention.c) and the
 * PillarAttention op (src/ops/attention.c): multi-head attention cores built in the IR
 * as PyTorch exports them (Reshape, Transpose, MatMul, Div, Add mask, Softmax, MatMul,
 * Transpose, Reshape), run with the passes (one fused step) and without (PILLAR_OPT=0,
 * the plain ops on the reference kernels), outputs compared, on every kernel level this
 * CPU has. Shapes at, below, above and not multiples of the GEMM tiles (sequence 1..130,
 * head widths 1..64), batches of 2, with and without scale and mask, one and two
 * threads; cases that must not fuse (a per-batch mask, an intermediate read twice or
 * a graph output, a wrong transpose); and the op's shape errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/status.h"
#include "graph/ir.h"
#include "pillar.h"
#include "graph_build.h"

#include "check.h"

static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

#include "pass_check.h"

static void tb_input(pl_model *m, const char *name, int ndim, const int64_t *dims) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    pl_value *val = &g->values[v];
    val->kind = PL_VALUE_INPUT;
    val->declared = true;
    pl_tensor_set_shape(&val->t, PL_F32, ndim, dims);
    g->inputs = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    g->inputs[g->ninputs++] = v;
}

static void tb_const_i64(pl_model *m, const char *name, int n, const int64_t *vals) {
    pl_value *val = &m->graph->values[tb_val(m, name)];
    val->kind = PL_VALUE_CONST;
    int64_t d = n;
    pl_tensor_set_shape(&val->t, PL_I64, 1, &d);
    pl_tensor_alloc(&val->t);
    memcpy(val->t.data, vals, sizeof(int64_t) * (size_t)n);
}

static void tb_scalar(pl_model *m, const char *name, float v) {
    pl_value *val = &m->graph->values[tb_val(m, name)];
    val->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&val->t, PL_F32, 0, NULL);
    pl_tensor_alloc(&val->t);
    ((float *)val->t.data)[0] = v;
}

/* How the test graph deviates from the exported pattern. */
enum {
    V_PLAIN = 0,
    V_NO_SCALE = 1,      /* no Div */
    V_NO_MASK = 2,       /* no mask Add */
    V_BATCH_MASK = 4,    /* mask [B, 1, 1, S]: not a bias, must not fuse when B > 1 */
    V_PROBS_OUT = 8,     /* the softmax output is also a graph output: must not fuse */
    V_SCORES_TWICE = 16, /* the scores feed a second node: must not fuse */
    V_WRONG_PERM = 32,   /* K transposed like Q and V (needs S == D): must not fuse */
    V_MUL_SCALE = 64,    /* Mul by 1/sqrt(d) instead of Div */
};

/* Builds the attention core for q, k, v [B, S, H*D] (graph inputs) and checks the
 * fused and unfused runs on every ISA at 1 and 2 threads; `fused` says whether the
 * pass must fire (then the session has one step, plus one per extra output node). */
static void check_case(int64_t B, int64_t S, int64_t H, int64_t D, int var, bool fused) {
    char what[128];
    snprintf(what, sizeof what, "B%lld S%lld H%lld D%lld var %d", (long long)B, (long long)S,
             (long long)H, (long long)D, var);
    pl_model *m = tb_new("test_attention", 13);
    const int64_t W = H * D, d3[] = {B, S, W}, split[] = {B, S, H, D}, merge[] = {B, S, W};
    int64_t dm[4] = {(var & V_BATCH_MASK) ? B : 1, 1, 1, S};
    tb_input(m, "q", 3, d3);
    tb_input(m, "k", 3, d3);
    tb_input(m, "v", 3, d3);
    if (!(var & V_NO_MASK)) tb_input(m, "mask", 4, dm);
    tb_const_i64(m, "split", 4, split);
    tb_const_i64(m, "merge", 3, merge);
    tb_scalar(m, "scale", (var & V_MUL_SCALE) ? 1.0f / sqrtf((float)D) : sqrtf((float)D));
    static const int64_t ph[] = {0, 2, 1, 3}, pk[] = {0, 2, 3, 1};
    tb_node(m, "Reshape", "q,split", "q4");
    tb_attr_ints(m, tb_node(m, "Transpose", "q4", "qh"), "perm", 4, ph);
    tb_node(m, "Reshape", "k,split", "k4");
    tb_attr_ints(m, tb_node(m, "Transpose", "k4", "kt"), "perm", 4, (var & V_WRONG_PERM) ? ph : pk);
    tb_node(m, "Reshape", "v,split", "v4");
    tb_attr_ints(m, tb_node(m, "Transpose", "v4", "vh"), "perm", 4, ph);
    tb_node(m, "MatMul", "qh,kt", "s0");
    const char *s = "s0";
    if (!(var & V_NO_SCALE)) {
        tb_node(m, (var & V_MUL_SCALE) ? "Mul" : "Div", "s0,scale", "s1");
        s = "s1";
    }
    if (!(var & V_NO_MASK)) {
        char ins[32];
        snprintf(ins, sizeof ins, "%s,mask", s);
        tb_node(m, "Add", ins, "s2");
        s = "s2";
    }
    int sm = tb_node(m, "Softmax", s, "p");
    tb_attr_i(m, sm, "axis", -1);
    tb_node(m, "MatMul", "p,vh", "o4");
    tb_attr_ints(m, tb_node(m, "Transpose", "o4", "ot"), "perm", 4, ph);
    tb_node(m, "Reshape", "ot,merge", "y");
    tb_output(m, "y");
    int extra = 0;
    if (var & V_PROBS_OUT) tb_output(m, "p");
    if (var & V_SCORES_TWICE) {
        tb_node(m, "Relu", s, "r");
        tb_output(m, "r");
        extra = 1;
    }
    feed f = {0};
    feed_add(&f, "q", PL_F32, 3, d3, 2.0);
    feed_add(&f, "k", PL_F32, 3, d3, 2.0);
    feed_add(&f, "v", PL_F32, 3, d3, 1.0);
    if (!(var & V_NO_MASK)) {
        feed_add(&f, "mask", PL_F32, 4, dm, 1.0);
        /* masked positions, as BERT's (1 - m) * -10000 */
        float *md = pillar_tensor_data(f.t[f.n - 1]);
        for (int64_t i = 0; i < pillar_tensor_numel(f.t[f.n - 1]); i += 3) md[i] = -10000.0f;
    }
    for (int isa = 0; isa <= (int)pl_cpu()->best; isa++)
        for (int threads = 1; threads <= 2; threads++) {
            int steps = run_both(what, m, &f, isa, threads, NULL, 2e-5);
            if (fused)
                CHECK(steps == 1 + extra, "%s: %d steps with the passes, expected %d (fused)", what,
                      steps, 1 + extra);
            else
                CHECK(steps > 1 + extra, "%s: %d steps: fused although it must not be", what,
                      steps);
        }
    feed_free(&f);
    pl_model_free(m);
}

/* The op's own checks, on a node made by hand. */
static void check_errors(void) {
    pl_model *m = tb_new("test_attention", 13);
    const int64_t d3[] = {1, 4, 6}, d2[] = {4, 6}, dm[] = {1, 5};
    tb_input(m, "q", 3, d3);
    tb_input(m, "k", 2, d2);
    tb_input(m, "v", 3, d3);
    tb_input(m, "mask", 2, dm);
    int n = tb_node(m, "PillarAttention", "q,q,v,mask", "y");
    tb_attr_i(m, n, "num_heads", 4);
    tb_output(m, "y");
    pillar_session *s = NULL;
    pillar_status st = pillar_session_create(m, NULL, &s);
    CHECK(st != PILLAR_OK && strstr(pillar_last_error(), "num_heads 4 does not divide the width 6"),
          "heads not dividing the width: %s", pillar_last_error());
    pillar_session_destroy(s);
    s = NULL;
    m->graph->nodes[n].attrs[0].i = 3;
    st = pillar_session_create(m, NULL, &s);
    CHECK(st != PILLAR_OK && strstr(pillar_last_error(), "the mask must hold 4 values"),
          "mask of the wrong length: %s", pillar_last_error());
    pillar_session_destroy(s);
    s = NULL;
    m->graph->nodes[n].in[1] = tb_val(m, "k");
    st = pillar_session_create(m, NULL, &s);
    CHECK(st != PILLAR_OK && strstr(pillar_last_error(), "K does not have the shape of Q"),
          "K of another shape: %s", pillar_last_error());
    pillar_session_destroy(s);
    pl_model_free(m);
}

int main(void) {
    /* sequence lengths and head widths around the AVX-512 tiles (14 rows, 32 columns) */
    static const int64_t shapes[][4] = {{1, 1, 1, 1},   {1, 5, 2, 3},   {1, 14, 3, 32},
                                        {2, 15, 2, 33}, {1, 29, 4, 16}, {2, 33, 1, 7},
                                        {1, 64, 2, 64}, {1, 130, 3, 17}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_case(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], V_PLAIN, true);
    check_case(1, 128, 12, 64, V_PLAIN, true);
    check_case(2, 9, 2, 5, V_NO_SCALE, true);
    check_case(1, 17, 3, 8, V_NO_MASK, true);
    check_case(1, 17, 3, 8, V_NO_MASK | V_NO_SCALE, true);
    check_case(1, 20, 2, 16, V_MUL_SCALE, true);
    check_case(1, 10, 2, 4, V_BATCH_MASK, true); /* B = 1: the mask is S values */
    check_case(2, 10, 2, 4, V_BATCH_MASK, false);
    check_case(1, 10, 2, 4, V_PROBS_OUT, false);
    check_case(1, 10, 2, 4, V_SCORES_TWICE, false);
    check_case(1, 8, 2, 8, V_WRONG_PERM, false);
    check_errors();
    printf("test_attention: %d checks, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
