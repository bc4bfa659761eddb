/* test_quantize.c -- the INT8 quantizer: scale / zero-point arithmetic on known ranges,
 * per-channel and per-tensor weight scales, zeros that stay zeros, the QDQ structure it
 * writes for a small CNN (lenet), results close to float, the saved file reloading to
 * the same results, and the error of each misuse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pillar.h"
#include "quant/quant.h"

#define CHECK_ERR(call, code, substr)                                                       \
    do {                                                                                    \
        pillar_status st_ = (call);                                                         \
        CHECK(st_ == (code), "%s returned %d, expected %d (%s)", #call, st_, code,          \
              pillar_last_error());                                                         \
        CHECK(strstr(pillar_last_error(), substr) != NULL, "message '%s' lacks '%s'",       \
              pillar_last_error(), substr);                                                 \
    } while (0)

static bool near(float a, float b) { return fabsf(a - b) <= 1e-6f * fmaxf(1.0f, fabsf(b)); }

static void test_affine(void) {
    float s;
    uint8_t z;
    pl_quant_affine_u8(0.0f, 2.55f, &s, &z);
    CHECK(near(s, 0.01f) && z == 0, "[0, 2.55]: scale %g zp %d", s, z);
    pl_quant_affine_u8(-1.0f, 1.55f, &s, &z);
    CHECK(near(s, 0.01f) && z == 100, "[-1, 1.55]: scale %g zp %d", s, z);
    pl_quant_affine_u8(1.0f, 2.0f, &s, &z); /* widened to [0, 2] */
    CHECK(near(s, 2.0f / 255.0f) && z == 0, "[1, 2]: scale %g zp %d", s, z);
    pl_quant_affine_u8(-3.0f, -1.0f, &s, &z); /* widened to [-3, 0] */
    CHECK(near(s, 3.0f / 255.0f) && z == 255, "[-3, -1]: scale %g zp %d", s, z);
    pl_quant_affine_u8(-5.1f, 0.0f, &s, &z);
    CHECK(near(s, 0.02f) && z == 255, "[-5.1, 0]: scale %g zp %d", s, z);
    pl_quant_affine_u8(0.0f, 0.0f, &s, &z);
    CHECK(s == 1.0f && z == 0, "[0, 0]: scale %g zp %d", s, z);
    pl_quant_affine_u8(NAN, NAN, &s, &z);
    CHECK(s == 1.0f && z == 0, "NaN range: scale %g zp %d", s, z);
    /* 0 is exact: quantizing 0 gives the zero point */
    pl_quant_affine_u8(-0.37f, 4.2f, &s, &z);
    CHECK(nearbyintf(0.0f / s) + z == z && z == (uint8_t)nearbyintf(0.37f / s), "zp %d for [-0.37, 4.2]", z);
}

static void test_symmetric(void) {
    CHECK(near(pl_quant_symmetric_scale(12.7f), 0.1f), "absmax 12.7 -> %g", pl_quant_symmetric_scale(12.7f));
    CHECK(pl_quant_symmetric_scale(0.0f) == 1.0f, "absmax 0 -> %g", pl_quant_symmetric_scale(0.0f));
    CHECK(pl_quant_s8(0.0f, 0.1f) == 0 && pl_quant_s8(-0.0f, 0.1f) == 0, "0 and -0 must quantize to 0");
    CHECK(pl_quant_s8(2.5f, 1.0f) == 2 && pl_quant_s8(3.5f, 1.0f) == 4 && pl_quant_s8(-2.5f, 1.0f) == -2,
          "ties must round to even: %d %d %d", pl_quant_s8(2.5f, 1.0f), pl_quant_s8(3.5f, 1.0f), pl_quant_s8(-2.5f, 1.0f));
    CHECK(pl_quant_s8(200.0f, 1.0f) == 127 && pl_quant_s8(-200.0f, 1.0f) == -127, "saturation to [-127, 127]");
    CHECK(pl_quant_s8(NAN, 1.0f) == 0, "NaN -> %d", pl_quant_s8(NAN, 1.0f));
    CHECK(pl_quant_s8(12.7f, 0.1f) == 127 && pl_quant_s8(-12.7f, 0.1f) == -127, "absmax maps to +-127");
}

static void test_weights(void) {
    /* Conv weight [3, 2, 1, 1], per output channel (axis 0) */
    float w[6] = {1.0f, -3.0f, 0.0f, 0.0f, 0.5f, 0.1f};
    pl_tensor t = {0}, q = {0}, s = {0};
    int64_t d[4] = {3, 2, 1, 1};
    pl_tensor_set_shape(&t, PL_F32, 4, d);
    t.data = w;
    CHECK(pl_quant_weight(&t, 0, &q, &s) == PL_OK, "per channel: %s", pillar_last_error());
    const float *sc = s.data;
    const int8_t *qd = q.data;
    CHECK(s.ndim == 1 && s.dims[0] == 3, "scales shape");
    CHECK(near(sc[0], 3.0f / 127) && sc[1] == 1.0f && near(sc[2], 0.5f / 127), "scales %g %g %g", sc[0], sc[1], sc[2]);
    int8_t want[6] = {42, -127, 0, 0, 127, 25};
    for (int i = 0; i < 6; i++) CHECK(qd[i] == want[i], "q[%d] = %d, expected %d", i, qd[i], want[i]);
    pl_tensor_free_data(&q);
    pl_tensor_free_data(&s);
    /* MatMul weight [K=2, N=3], per column (axis 1) */
    float m[6] = {1.0f, 0.0f, -0.2f, -2.0f, 0.0f, 0.1f};
    int64_t dm[2] = {2, 3};
    pl_tensor_set_shape(&t, PL_F32, 2, dm);
    t.data = m;
    CHECK(pl_quant_weight(&t, 1, &q, &s) == PL_OK, "axis 1: %s", pillar_last_error());
    sc = s.data;
    qd = q.data;
    CHECK(near(sc[0], 2.0f / 127) && sc[1] == 1.0f && near(sc[2], 0.2f / 127), "column scales %g %g %g", sc[0], sc[1], sc[2]);
    int8_t wantm[6] = {64, 0, -127, -127, 0, 64}; /* 63.5 -> 64 (even) */
    for (int i = 0; i < 6; i++) CHECK(qd[i] == wantm[i], "column q[%d] = %d, expected %d", i, qd[i], wantm[i]);
    pl_tensor_free_data(&q);
    pl_tensor_free_data(&s);
    /* per tensor */
    CHECK(pl_quant_weight(&t, -1, &q, &s) == PL_OK, "per tensor: %s", pillar_last_error());
    CHECK(s.ndim == 0 && near(*(float *)s.data, 2.0f / 127), "per-tensor scale %g", *(float *)s.data);
    qd = q.data;
    CHECK(qd[0] == 64 && qd[3] == -127 && qd[2] == -13 && qd[5] == 6, "per-tensor q %d %d %d %d", qd[0], qd[3], qd[2], qd[5]);
    pl_tensor_free_data(&q);
    pl_tensor_free_data(&s);
    /* pruned zeros stay zeros, the rest within half a step, on an awkward shape */
    enum { C = 7, K = 37 };
    float *big = malloc(C * K * sizeof *big);
    unsigned r = 12345;
    for (int i = 0; i < C * K; i++) {
        r = r * 1103515245u + 12345u;
        big[i] = (r >> 16) % 10 == 0 ? ((float)((r >> 8) % 2001) - 1000.0f) / 300.0f : 0.0f;
    }
    for (int i = 0; i < K; i++) big[3 * K + i] = 0.0f; /* one channel pruned away */
    big[5 * K] = 0.0f;
    int64_t db[2] = {C, K};
    pl_tensor_set_shape(&t, PL_F32, 2, db);
    t.data = big;
    CHECK(pl_quant_weight(&t, 0, &q, &s) == PL_OK, "sparse: %s", pillar_last_error());
    qd = q.data;
    sc = s.data;
    int bad_zero = 0, bad_err = 0;
    for (int i = 0; i < C * K; i++) {
        if (big[i] == 0.0f && qd[i] != 0) bad_zero++;
        if (fabsf((float)qd[i] * sc[i / K] - big[i]) > 0.5001f * sc[i / K]) bad_err++;
    }
    CHECK(bad_zero == 0, "%d zero weights quantized to non-zero", bad_zero);
    CHECK(bad_err == 0, "%d weights off by more than half a step", bad_err);
    CHECK(sc[3] == 1.0f, "all-zero channel scale %g, expected 1", sc[3]);
    pl_tensor_free_data(&q);
    pl_tensor_free_data(&s);
    free(big);
}

/* ---- end to end on lenet ---- */

static int count_op(const pl_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += !strcmp(g->nodes[i].op_type, op);
    return n;
}

static pillar_tensor *random_input(unsigned seed) {
    int64_t d[4] = {1, 1, 28, 28};
    pillar_tensor *t = NULL;
    pillar_tensor_create(PILLAR_FLOAT32, 4, d, NULL, &t);
    float *x = pillar_tensor_data(t);
    for (int i = 0; i < 28 * 28; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f;
    }
    return t;
}

static pillar_tensor *run1(const pillar_model *m, const pillar_tensor *x) {
    pillar_session *s = NULL;
    pillar_tensor *y = NULL;
    const char *names[1] = {"input"};
    if (pillar_session_create(m, NULL, &s) != PILLAR_OK) {
        printf("session: %s\n", pillar_last_error());
        return NULL;
    }
    if (pillar_session_run(s, 1, names, &x, 1, NULL, &y) != PILLAR_OK) printf("run: %s\n", pillar_last_error());
    pillar_session_destroy(s);
    return y;
}

static void test_lenet(void) {
    pillar_model *m = NULL, *q = NULL;
    CHECK(pillar_model_zoo("lenet", NULL, 0, 7, &m) == PILLAR_OK, "zoo: %s", pillar_last_error());
    if (!m) return;
    /* prune: zero every other weight of conv2 */
    pl_graph *g0 = m->graph;
    int wconv2 = -1;
    for (int i = 0; i < g0->nnodes; i++)
        if (!strcmp(g0->nodes[i].op_type, "Conv") && strstr(g0->nodes[i].name, "conv2")) wconv2 = g0->nodes[i].in[1];
    CHECK(wconv2 >= 0, "lenet has no conv2");
    if (wconv2 < 0) return;
    float *w2 = g0->values[wconv2].t.data;
    int64_t nw2 = pl_numel(&g0->values[wconv2].t);
    for (int64_t i = 0; i < nw2; i += 2) w2[i] = 0.0f;

    enum { NS = 8 };
    pillar_tensor *samples[NS];
    for (int i = 0; i < NS; i++) samples[i] = random_input(100u + (unsigned)i);
    pillar_quantize_options *o = NULL;
    CHECK(pillar_quantize_options_create(&o) == PILLAR_OK, "options");
    CHECK(pillar_model_quantize(m, o, NS, (const pillar_tensor *const *)samples, &q) == PILLAR_OK, "quantize: %s",
          pillar_last_error());
    if (!q) return;
    const pl_graph *g = q->graph;
    /* 2 Conv + 3 Gemm: 5 weight DQs, 5 bias DQs; activations: input, conv1 out (relu
     * folded), pool1, conv2 out, flatten, fc1 out, fc2 out = 7 Q/DQ pairs (the logits
     * stay float) */
    int nconv = count_op(g, "Conv"), ngemm = count_op(g, "Gemm") + count_op(g, "MatMul");
    CHECK(nconv == 2 && ngemm == 3, "ops: %d Conv, %d Gemm/MatMul", nconv, ngemm);
    CHECK(count_op(g, "Relu") == 0, "the Relus after conv1, conv2, fc1, fc2 should be folded, %d left", count_op(g, "Relu"));
    int nq = count_op(g, "QuantizeLinear"), ndq = count_op(g, "DequantizeLinear");
    CHECK(nq == 7 && ndq == nq + 5 + 5, "%d Q, %d DQ", nq, ndq);
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        bool conv = !strcmp(n->op_type, "Conv");
        if (!conv && strcmp(n->op_type, "Gemm") && strcmp(n->op_type, "MatMul")) continue;
        for (int k = 0; k < n->nin && k < 3; k++) {
            if (n->in[k] < 0) continue;
            int p = g->values[n->in[k]].producer;
            CHECK(p >= 0 && p < i && !strcmp(g->nodes[p].op_type, "DequantizeLinear"),
                  "%s input %d is not produced by an earlier DequantizeLinear", n->name, k);
            if (p < 0) continue;
            const pl_node *dq = &g->nodes[p];
            const pl_value *qv = &g->values[dq->in[0]];
            if (k == 0) {
                int pq = qv->producer;
                CHECK(pq >= 0 && !strcmp(g->nodes[pq].op_type, "QuantizeLinear"), "%s: input not from Q", n->name);
                CHECK(g->values[dq->in[2]].t.dtype == PL_U8, "%s: activation zero point is not uint8", n->name);
            } else if (k == 1) {
                CHECK(qv->kind == PL_VALUE_CONST && qv->t.dtype == PL_I8, "%s: weight is not an int8 constant", n->name);
                const pl_value *sc = &g->values[dq->in[1]];
                int64_t cout = conv ? qv->t.dims[0] : pl_attr_int(n, "transB", 0) ? qv->t.dims[0] : qv->t.dims[1];
                CHECK(sc->t.ndim == 1 && sc->t.dims[0] == cout, "%s: %lld weight scales, expected %lld", n->name,
                      (long long)pl_numel(&sc->t), (long long)cout);
                CHECK(pl_attr_int(dq, "axis", -5) == (conv || pl_attr_int(n, "transB", 0) ? 0 : 1), "%s: weight DQ axis %lld",
                      n->name, (long long)pl_attr_int(dq, "axis", -5));
                const int8_t *z = g->values[dq->in[2]].t.data;
                bool zero = g->values[dq->in[2]].t.dtype == PL_I8;
                for (int64_t c = 0; zero && c < cout; c++) zero = z[c] == 0;
                CHECK(zero, "%s: weight zero points are not int8 zeros", n->name);
                if (strstr(n->name, "conv2")) {
                    const int8_t *wq = qv->t.data;
                    int nz = 0;
                    for (int64_t e = 0; e < nw2; e += 2) nz += wq[e] != 0;
                    CHECK(nz == 0, "conv2: %d pruned weights are not zero after quantization", nz);
                }
            } else {
                CHECK(qv->t.dtype == PL_I32, "%s: bias is %s, expected int32", n->name, pl_dtype_name(qv->t.dtype));
            }
        }
        /* the output goes straight to a Q (unless it is the graph's output) */
        int y = n->out[0];
        if (!g->values[y].is_output) {
            bool toq = false;
            for (int j = 0; j < g->nnodes; j++)
                if (!strcmp(g->nodes[j].op_type, "QuantizeLinear") && g->nodes[j].in[0] == y) toq = true;
            CHECK(toq, "%s: output does not feed a QuantizeLinear", n->name);
        }
    }
    /* pool1 = MaxPool(conv1's output) shares its scale and zero point */
    {
        int a = pl_graph_find_value(g, "conv1.relu_scale"), b = pl_graph_find_value(g, "pool1_scale");
        int za = pl_graph_find_value(g, "conv1.relu_zero_point"), zb = pl_graph_find_value(g, "pool1_zero_point");
        CHECK(a >= 0 && b >= 0 && za >= 0 && zb >= 0, "no scales for conv1.relu / pool1");
        if (a >= 0 && b >= 0 && za >= 0 && zb >= 0)
            CHECK(*(float *)g->values[a].t.data == *(float *)g->values[b].t.data &&
                      *(uint8_t *)g->values[za].t.data == *(uint8_t *)g->values[zb].t.data,
                  "pool1 does not share conv1's quantization");
    }
    /* results close to float: logits within a few percent of their spread, same top-1 */
    int agree = 0;
    double maxerr = 0, spread = 0;
    char path[] = "/tmp/pillar-test-quantize-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    CHECK(pillar_model_save(q, path) == PILLAR_OK, "save: %s", pillar_last_error());
    pillar_model *r = NULL;
    CHECK(pillar_model_load(path, &r) == PILLAR_OK, "reload: %s", pillar_last_error());
    unlink(path);
    for (unsigned k = 0; k < 16; k++) {
        pillar_tensor *x = random_input(1000u + k);
        pillar_tensor *yf = run1(m, x), *yq = run1(q, x), *yr = r ? run1(r, x) : NULL;
        CHECK(yf && yq && yr, "runs failed");
        if (yf && yq && yr) {
            const float *a = pillar_tensor_data(yf), *b = pillar_tensor_data(yq), *c = pillar_tensor_data(yr);
            int64_t n = pillar_tensor_numel(yf);
            int ia = 0, ib = 0;
            float lo = a[0], hi = a[0];
            for (int64_t e = 0; e < n; e++) {
                if (a[e] > a[ia]) ia = (int)e;
                if (b[e] > b[ib]) ib = (int)e;
                lo = fminf(lo, a[e]);
                hi = fmaxf(hi, a[e]);
                maxerr = fmax(maxerr, fabs((double)a[e] - b[e]));
                CHECK(b[e] == c[e], "reloaded model differs at %lld: %g vs %g", (long long)e, b[e], c[e]);
            }
            spread = fmax(spread, hi - lo);
            agree += ia == ib;
        }
        pillar_tensor_destroy(x);
        pillar_tensor_destroy(yf);
        pillar_tensor_destroy(yq);
        pillar_tensor_destroy(yr);
    }
    CHECK(maxerr < 0.1 * spread, "int8 logits off by %g (spread %g)", maxerr, spread);
    CHECK(agree >= 14, "top-1 agrees on %d of 16", agree);
    printf("lenet int8 vs float: max |diff| %.4g (logit spread %.4g), top-1 agreement %d/16\n", maxerr, spread, agree);
    pillar_model_destroy(r);
    pillar_model_destroy(q);
    q = NULL;

    /* per tensor, percentile, exclusion */
    CHECK(pillar_quantize_options_set_per_tensor(o, 1) == PILLAR_OK, "per tensor");
    CHECK(pillar_quantize_options_set_method(o, PILLAR_CALIBRATE_PERCENTILE, 99.9) == PILLAR_OK, "percentile");
    const char *fc3 = NULL;
    for (int i = 0; i < g0->nnodes; i++)
        if (strstr(g0->nodes[i].name, "fc3") && !strcmp(g0->nodes[i].op_type, "Gemm")) fc3 = g0->nodes[i].name;
    CHECK(fc3 && pillar_quantize_options_exclude(o, fc3) == PILLAR_OK, "exclude fc3");
    CHECK(pillar_model_quantize(m, o, NS, (const pillar_tensor *const *)samples, &q) == PILLAR_OK, "quantize 2: %s",
          pillar_last_error());
    if (q) {
        g = q->graph;
        int per_tensor = 0, nw = 0;
        for (int i = 0; i < g->nnodes; i++) {
            const pl_node *n = &g->nodes[i];
            if (!strcmp(n->op_type, "DequantizeLinear") && g->values[n->in[0]].t.dtype == PL_I8) {
                nw++;
                per_tensor += g->values[n->in[1]].t.ndim == 0 && !pl_attr_find(n, "axis");
            }
            if (fc3 && !strcmp(n->name, fc3))
                CHECK(g->values[n->in[1]].kind == PL_VALUE_CONST && g->values[n->in[1]].t.dtype == PL_F32,
                      "excluded fc3 lost its float weight");
        }
        CHECK(nw == 4 && per_tensor == 4, "%d int8 weights, %d per tensor (expected 4, 4)", nw, per_tensor);
        pillar_model_destroy(q);
        q = NULL;
    }

    /* misuse */
    CHECK_ERR(pillar_model_quantize(m, NULL, 0, (const pillar_tensor *const *)samples, &q), PILLAR_ERR_ARGUMENT,
              "no calibration samples");
    CHECK_ERR(pillar_quantize_options_exclude(o, "nope") == PILLAR_OK
                  ? pillar_model_quantize(m, o, NS, (const pillar_tensor *const *)samples, &q)
                  : PILLAR_ERR_INTERNAL,
              PILLAR_ERR_ARGUMENT, "'nope'");
    CHECK_ERR(pillar_quantize_options_set_method(o, PILLAR_CALIBRATE_PERCENTILE, 30.0), PILLAR_ERR_ARGUMENT, "percentile 30");
    int64_t di[4] = {1, 1, 28, 28};
    pillar_tensor *bad = NULL;
    pillar_tensor_create(PILLAR_INT64, 4, di, NULL, &bad);
    CHECK(pillar_model_quantize(m, NULL, 1, (const pillar_tensor *const *)&bad, &q) != PILLAR_OK &&
              strstr(pillar_last_error(), "calibration sample 1"),
          "int64 sample: '%s'", pillar_last_error());
    CHECK(q == NULL, "out set on failure");
    pillar_tensor_destroy(bad);
    pillar_quantize_options_destroy(o);
    for (int i = 0; i < NS; i++) pillar_tensor_destroy(samples[i]);
    pillar_model_destroy(m);
}

int main(void) {
    test_affine();
    test_symmetric();
    test_weights();
    test_lenet();
    printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "ok", cases, failures);
    return failures ? 1 : 0;
}
