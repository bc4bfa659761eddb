/* test_prune.c -- one-shot magnitude pruning (tr_prune_layers, pillar_model_prune):
 * exact counts at layer and global scope against a brute-force sort, blocks along the
 * reduction axis (Conv channels, MatMul K rows, Gemm transB) zeroed whole, partial
 * blocks, ties, sparsity 0 and 1, first/last/skip handling and the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_SEED 0x2545f4914f6cdd1dull
#include "check.h"
#include "graph/ir.h"
#include "pillar.h"
#include "train/train.h"

static float frand(void) {
    (void)rnd();
    return (float)((rng_state >> 11) % 2000001) / 1000000.0f - 1.0f;
}

static int64_t zeros(const float *w, int64_t n) {
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return z;
}

typedef struct ref_block {
    double score;
    int64_t order, size;
    int layer;
    int64_t b;
} ref_block;

static int by_score(const void *a, const void *b) {
    const ref_block *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Brute force: every block scored (as float, like the library), sorted, the prefix
 * pruned while within half a block of the target; returns the number of elements. */
static int64_t ref_prune(tr_prune_layer *ls, int n, int block, double s) {
    int64_t nb = 0, total = 0;
    for (int j = 0; j < n; j++) {
        nb += ls[j].outer * ((ls[j].red + block - 1) / block) * ls[j].inner;
        total += ls[j].outer * ls[j].red * ls[j].inner;
    }
    ref_block *bs = malloc((size_t)(nb ? nb : 1) * sizeof *bs);
    int64_t q = 0;
    for (int j = 0; j < n; j++) {
        const tr_prune_layer *l = &ls[j];
        int64_t nrb = (l->red + block - 1) / block;
        for (int64_t o = 0; o < l->outer; o++)
            for (int64_t rb = 0; rb < nrb; rb++)
                for (int64_t i = 0; i < l->inner; i++) {
                    int64_t r0 = rb * block, r1 = r0 + block < l->red ? r0 + block : l->red;
                    double sum = 0;
                    for (int64_t r = r0; r < r1; r++)
                        sum += fabs((double)l->w[(o * l->red + r) * l->inner + i]);
                    bs[q] = (ref_block){(float)(sum / (double)(r1 - r0)), q, r1 - r0, j,
                                        (o * nrb + rb) * l->inner + i};
                    q++;
                }
    }
    qsort(bs, (size_t)nb, sizeof *bs, by_score);
    double target = s * (double)total;
    int64_t pruned = 0;
    for (int64_t k = 0; k < nb; k++) {
        if ((double)pruned + 0.5 * (double)bs[k].size > target) break;
        const tr_prune_layer *l = &ls[bs[k].layer];
        int64_t nrb = (l->red + block - 1) / block, b = bs[k].b;
        int64_t i = b % l->inner, rb = (b / l->inner) % nrb, o = b / (l->inner * nrb);
        for (int64_t r = rb * block; r < rb * block + bs[k].size; r++)
            l->w[(o * l->red + r) * l->inner + i] = 0;
        pruned += bs[k].size;
    }
    free(bs);
    return pruned;
}

/* Layer shapes (outer, red, inner) around the block sizes. */
static const int64_t shapes[][3] = {{1, 7, 5}, {3, 16, 1}, {4, 17, 9}, {1, 64, 3},
                                    {8, 5, 4}, {2, 33, 2}, {1, 1, 1},  {5, 4, 1}};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

static void test_against_sort(void) {
    const int blocks[] = {1, 2, 4, 16};
    const double sps[] = {0.0, 0.1, 0.5, 0.75, 0.9, 0.95, 1.0};
    for (int bi = 0; bi < 4; bi++)
        for (int si = 0; si < 7; si++)
            for (int global = 0; global < 2; global++) {
                tr_prune_layer a[NSHAPES], b[NSHAPES];
                for (int j = 0; j < NSHAPES; j++) {
                    int64_t n = shapes[j][0] * shapes[j][1] * shapes[j][2];
                    a[j] = (tr_prune_layer){malloc((size_t)n * sizeof(float)), shapes[j][0],
                                            shapes[j][1], shapes[j][2]};
                    b[j] = a[j];
                    b[j].w = malloc((size_t)n * sizeof(float));
                    for (int64_t i = 0; i < n; i++) {
                        float v = frand();
                        if (j == 5) v = 0.25f * (float)((i % 3) - 1); /* ties and zeros */
                        a[j].w[i] = b[j].w[i] = (j == 3 ? 10.0f : 1.0f) * v;
                    }
                }
                pl_status st = tr_prune_layers(a, NSHAPES, blocks[bi], sps[si], global != 0);
                CHECK(st == PL_OK, "tr_prune_layers failed: %s", pillar_last_error());
                if (global)
                    ref_prune(b, NSHAPES, blocks[bi], sps[si]);
                else
                    for (int j = 0; j < NSHAPES; j++) ref_prune(&b[j], 1, blocks[bi], sps[si]);
                for (int j = 0; j < NSHAPES; j++) {
                    int64_t n = shapes[j][0] * shapes[j][1] * shapes[j][2];
                    CHECK(!memcmp(a[j].w, b[j].w, (size_t)n * sizeof(float)),
                          "block %d sparsity %g %s: layer %d differs from the sorted reference",
                          blocks[bi], sps[si], global ? "global" : "layer", j);
                    if (!global && blocks[bi] == 1 && j != 5) {
                        int64_t want = (int64_t)floor(sps[si] * (double)n + 0.5);
                        int64_t got = zeros(a[j].w, n);
                        CHECK(got == want, "layer %d: %lld zeros, want %lld", j, (long long)got,
                              (long long)want);
                    }
                    free(a[j].w);
                    free(b[j].w);
                }
            }
}

/* Blocks run along the reduction axis: a Conv weight [M, C, kh, kw] loses whole runs of
 * `block` channels at one (m, tap). */
static void test_conv_blocks(void) {
    enum { M = 6, C = 36, T = 9 };
    float *w = malloc(sizeof(float) * M * C * T);
    for (int i = 0; i < M * C * T; i++)
        w[i] = frand() + (frand() > 0 ? 0.5f : -0.5f); /* no zeros */
    tr_prune_layer l = {w, M, C, T};
    CHECK(tr_prune_layers(&l, 1, 4, 0.8, false) == PL_OK, "conv prune failed");
    int64_t z = zeros(w, M * C * T);
    /* 36 channels: 9 blocks of 4 per (m, tap); 0.8 of 1944 = 1555.2 -> 389 blocks */
    CHECK(z == 4 * 389, "conv block-4 zeros %lld, want %d", (long long)z, 4 * 389);
    int bad = 0;
    for (int m = 0; m < M; m++)
        for (int t = 0; t < T; t++)
            for (int c0 = 0; c0 < C; c0 += 4) {
                int nz = 0;
                for (int c = c0; c < c0 + 4; c++) nz += w[(m * C + c) * T + t] == 0.0f;
                bad += nz != 0 && nz != 4;
            }
    CHECK(bad == 0, "%d channel blocks partly zero", bad);
    /* a partial block at the end of the reduction axis: 6 = 4 + 2 */
    float v[2 * 6] = {1, 2, 3, 4, 9, 9, 5, 6, 7, 8, 0.5f, 0.25f};
    tr_prune_layer lv = {v, 2, 6, 1};
    CHECK(tr_prune_layers(&lv, 1, 4, 2.0 / 12, false) == PL_OK, "partial-block prune failed");
    CHECK(v[10] == 0 && v[11] == 0 && zeros(v, 12) == 2, "the weak partial block is pruned alone");
    free(w);
}

/* Global scope prunes the layer of small weights first. */
static void test_global(void) {
    float a[100], b[100];
    for (int i = 0; i < 100; i++) {
        a[i] = 0.01f * (float)(i + 1);
        b[i] = 10.0f + (float)i;
    }
    tr_prune_layer ls[2] = {{a, 1, 100, 1}, {b, 1, 100, 1}};
    CHECK(tr_prune_layers(ls, 2, 1, 0.6, true) == PL_OK, "global prune failed");
    CHECK(zeros(a, 100) == 100 && zeros(b, 100) == 20 && b[19] == 0 && b[20] != 0,
          "global: %lld and %lld zeros, want 100 and 20", (long long)zeros(a, 100),
          (long long)zeros(b, 100));
    CHECK(tr_prune_layers(ls, 2, 0, 0.5, false) == PL_ERR_ARGUMENT &&
              strstr(pillar_last_error(), "block 0"),
          "block 0: %s", pillar_last_error());
    CHECK(tr_prune_layers(ls, 2, 1, 1.5, false) == PL_ERR_ARGUMENT &&
              strstr(pillar_last_error(), "1.5"),
          "sparsity 1.5: %s", pillar_last_error());
    CHECK(tr_prune_layers(ls, 2, 1, NAN, false) == PL_ERR_ARGUMENT, "NaN sparsity accepted");
}

/* A model with Conv, MatMul and Gemm (transB) weights through the public API. */
static void test_model_api(void) {
    pl_model *m = calloc(1, sizeof *m);
    m->graph = pl_graph_new();
    pl_graph *g = m->graph;
    const char *ops[4] = {"Conv", "MatMul", "Gemm", "MatMul"};
    const int64_t dims[4][4] = {{8, 16, 3, 3}, {32, 24}, {10, 24}, {24, 4}};
    const int nd[4] = {4, 2, 2, 2};
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d", i);
        int v = pl_graph_add_value(g, name);
        g->values[v].kind = PL_VALUE_CONST;
        pl_tensor_set_shape(&g->values[v].t, PL_F32, nd[i], dims[i]);
        pl_tensor_alloc(&g->values[v].t);
        float *w = g->values[v].t.data;
        for (int64_t k = 0; k < pl_numel(&g->values[v].t); k++) w[k] = frand() + 2.0f;
        snprintf(name, sizeof name, "x%d", i);
        int x = pl_graph_add_value(g, name);
        int n = pl_graph_add_node(g);
        pl_node *nd_ = &g->nodes[n];
        snprintf(name, sizeof name, "node%d", i);
        nd_->name = strdup(name);
        nd_->op_type = strdup(ops[i]);
        nd_->domain = strdup("");
        nd_->nin = 2;
        nd_->in = malloc(2 * sizeof(int));
        nd_->in[0] = x;
        nd_->in[1] = v;
        if (i == 2) {
            nd_->nattr = 1;
            nd_->attrs = calloc(1, sizeof(pl_attr));
            nd_->attrs[0].name = strdup("transB");
            nd_->attrs[0].type = PL_ATTR_INT;
            nd_->attrs[0].i = 1;
        }
    }
    pillar_prune_options *o = NULL;
    CHECK(pillar_prune_options_create(&o) == PILLAR_OK, "options");
    pillar_prune_options_set_sparsity(o, 0.5);
    pillar_prune_options_set_block(o, 4);
    CHECK(pillar_prune_options_skip(o, "nosuch") == PILLAR_OK, "skip");
    pillar_prune_report *r = NULL;
    CHECK(pillar_model_prune(m, o, &r) == PILLAR_ERR_ARGUMENT &&
              strstr(pillar_last_error(), "'nosuch'") && !r,
          "unknown skip: %s", pillar_last_error());
    CHECK(zeros(g->values[g->nodes[1].in[1]].t.data, 32 * 24) == 0, "nothing pruned on error");
    pillar_prune_options_destroy(o);
    pillar_prune_options_create(&o);
    pillar_prune_options_set_sparsity(o, 0.5);
    pillar_prune_options_set_block(o, 4);
    pillar_prune_options_skip(o, "node2");
    CHECK(pillar_model_prune(m, o, &r) == PILLAR_OK && pillar_prune_report_count(r) == 4,
          "prune: %s", pillar_last_error());
    const char *want_note[4] = {"first layer", "", "skipped", "last layer"};
    for (size_t i = 0; i < 4; i++) {
        const char *name, *op, *note;
        double before, after;
        int64_t params;
        pillar_prune_report_layer(r, i, &name, &op, NULL, NULL, &params, &before, &after, &note);
        CHECK(!strcmp(note, want_note[i]) && before == 0.0 && after == (i == 1 ? 0.5 : 0.0),
              "layer %zu (%s): note '%s' after %g", i, name, note, after);
    }
    /* MatMul [32, 24]: blocks of 4 along K=32 at each column */
    const float *w1 = g->values[g->nodes[1].in[1]].t.data;
    int bad = 0;
    for (int n = 0; n < 24; n++)
        for (int k0 = 0; k0 < 32; k0 += 4) {
            int z = 0;
            for (int k = k0; k < k0 + 4; k++) z += w1[k * 24 + n] == 0.0f;
            bad += z != 0 && z != 4;
        }
    CHECK(bad == 0, "MatMul: %d K-blocks partly zero", bad);
    CHECK(pillar_prune_report_layer(r, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) ==
              PILLAR_ERR_ARGUMENT,
          "out-of-range layer");
    pillar_prune_report_destroy(r);
    /* --all, global: the Gemm transB [10, 24] prunes along its K = 24 columns */
    pillar_prune_options_set_keep_first_last(o, 0);
    pillar_prune_options_set_global(o, 1);
    pillar_prune_options_destroy(o);
    pillar_prune_options_create(&o);
    pillar_prune_options_set_sparsity(o, 0.5);
    pillar_prune_options_set_block(o, 4);
    pillar_prune_options_set_keep_first_last(o, 0);
    CHECK(pillar_model_prune(m, o, NULL) == PILLAR_OK, "prune --all: %s", pillar_last_error());
    const float *w2 = g->values[g->nodes[2].in[1]].t.data;
    bad = 0;
    for (int n = 0; n < 10; n++)
        for (int k0 = 0; k0 < 24; k0 += 4) {
            int z = 0;
            for (int k = k0; k < k0 + 4; k++) z += w2[n * 24 + k] == 0.0f;
            bad += z != 0 && z != 4;
        }
    CHECK(bad == 0 && zeros(w2, 240) == 120, "Gemm transB: %d partial blocks, %lld zeros", bad,
          (long long)zeros(w2, 240));
    CHECK(pillar_model_prune(NULL, o, NULL) == PILLAR_ERR_ARGUMENT, "NULL model");
    CHECK(pillar_prune_options_set_sparsity(o, -0.1) == PILLAR_ERR_ARGUMENT, "negative sparsity");
    CHECK(pillar_prune_options_set_block(o, 0) == PILLAR_ERR_ARGUMENT, "block 0");
    pillar_prune_options_destroy(o);
    pillar_prune_options_destroy(NULL);
    pillar_prune_report_destroy(NULL);
    pl_model_free(m);
}

int main(void) {
    test_against_sort();
    test_conv_blocks();
    test_global();
    test_model_api();
    printf("test_prune: %d checks, %d failed\n", cases, failures);
    return failures != 0;
}
