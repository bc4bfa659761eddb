/* test_columns.c -- the column schedule (src/exec/columns.c): outputs under columns equal
 * those under layers (1e-5 relative to the output's largest value) for chains built in
 * the IR -- ResNet bottlenecks with a downsample conv, MobileNetV2 inverted residuals,
 * strides 1 and 2, padding, dilation, depthwise, batch > 1 -- with tile sizes that do
 * not divide the image (forced), at 1 and 2 threads, on every kernel level; then the
 * zoo ResNet-50 and MobileNetV2 (random weights, small images), dense and pruned to 90%
 * with the sparse kernel forced. Also the API: the option, the report, the schedule in
 * effect, bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/cpu.h"
#include "exec/columns.h"
#include "exec/session.h"
#include "kernels/conv/conv_fast.h"
#include "graph/ir.h"
#include "pillar.h"
#include "graph_build.h"

/* pl_columns_direct_count() of the last session run() made */
static int last_direct;

static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

/* ------------------------------------------------------------------ graph building */

static void in4(pl_model *m, const char *name, int64_t n, int64_t c, int64_t h, int64_t w) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    pl_value *val = &g->values[v];
    val->kind = PL_VALUE_INPUT;
    val->declared = true;
    int64_t d[4] = {n, c, h, w};
    pl_tensor_set_shape(&val->t, PL_F32, 4, d);
    g->inputs = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    g->inputs[g->ninputs++] = v;
}

static void cst(pl_model *m, const char *name, int ndim, const int64_t *dims, float scale) {
    pl_value *val = &m->graph->values[tb_val(m, name)];
    val->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&val->t, PL_F32, ndim, dims);
    pl_tensor_alloc(&val->t);
    float *p = val->t.data;
    for (int64_t i = 0; i < pl_numel(&val->t); i++) p[i] = scale * frand();
}

/* Conv x -> y with M outputs, kernel k, stride s, pad p, dilation d, group g, bias;
 * act: 0 none, 1 Relu, 2 Clip(0, 6) as separate nodes (fused by the passes). */
static void conv(pl_model *m, const char *x, const char *y, int64_t C, int64_t M, int64_t k, int64_t s,
                 int64_t p, int64_t d, int64_t g, int act) {
    char w[64], b[64], t[64];
    snprintf(w, sizeof w, "%s_w", y);
    snprintf(b, sizeof b, "%s_b", y);
    snprintf(t, sizeof t, "%s_pre", y);
    int64_t wd[4] = {M, C / g, k, k}, bd[1] = {M};
    cst(m, w, 4, wd, 1.0f / sqrtf((float)(C / g * k * k)));
    cst(m, b, 1, bd, 0.1f);
    char ins[200];
    snprintf(ins, sizeof ins, "%s,%s,%s", x, w, b);
    int i = tb_node(m, "Conv", ins, act ? t : y);
    int64_t ks[2] = {k, k}, st[2] = {s, s}, pd[4] = {p, p, p, p}, dl[2] = {d, d};
    tb_attr_ints(m, i, "kernel_shape", 2, ks);
    tb_attr_ints(m, i, "strides", 2, st);
    tb_attr_ints(m, i, "pads", 4, pd);
    tb_attr_ints(m, i, "dilations", 2, dl);
    tb_attr_i(m, i, "group", g);
    if (act == 1) tb_node(m, "Relu", t, y);
    if (act == 2) {
        char lo[64], hi[64], ci[200];
        snprintf(lo, sizeof lo, "%s_lo", y);
        snprintf(hi, sizeof hi, "%s_hi", y);
        pl_value *a = &m->graph->values[tb_val(m, lo)], *bb = &m->graph->values[tb_val(m, hi)];
        a->kind = bb->kind = PL_VALUE_CONST;
        pl_tensor_set_shape(&a->t, PL_F32, 0, NULL);
        pl_tensor_set_shape(&bb->t, PL_F32, 0, NULL);
        pl_tensor_alloc(&a->t);
        pl_tensor_alloc(&bb->t);
        *(float *)a->t.data = 0.0f;
        *(float *)bb->t.data = 6.0f;
        snprintf(ci, sizeof ci, "%s,%s,%s", t, lo, hi);
        tb_node(m, "Clip", ci, y);
    }
}

/* A ResNet bottleneck with a downsample branch (stride s), then an identity block. */
static pl_model *bottleneck(int64_t N, int64_t C, int64_t H, int64_t W, int64_t s) {
    pl_model *m = tb_new("test:bottleneck", 13);
    in4(m, "x", N, C, H, W);
    conv(m, "x", "stem", C, 16, 3, 1, 1, 1, 1, 1);
    conv(m, "stem", "a1", 16, 8, 1, 1, 0, 1, 1, 1);
    conv(m, "a1", "a2", 8, 8, 3, s, 1, 1, 1, 1);
    conv(m, "a2", "a3", 8, 32, 1, 1, 0, 1, 1, 0);
    conv(m, "stem", "ds", 16, 32, 1, s, 0, 1, 1, 0);
    tb_node(m, "Add", "a3,ds", "sum1");
    tb_node(m, "Relu", "sum1", "b1");
    conv(m, "b1", "c1", 32, 8, 1, 1, 0, 1, 1, 1);
    conv(m, "c1", "c2", 8, 8, 3, 1, 1, 1, 1, 1);
    conv(m, "c2", "c3", 8, 32, 1, 1, 0, 1, 1, 0);
    tb_node(m, "Add", "c3,b1", "sum2");
    tb_node(m, "Relu", "sum2", "y");
    tb_output(m, "y");
    return m;
}

/* MobileNetV2 inverted residuals: expand, depthwise (stride s), project (+ input). */
static pl_model *inverted(int64_t N, int64_t C, int64_t H, int64_t W, int64_t s) {
    pl_model *m = tb_new("test:inverted", 13);
    in4(m, "x", N, C, H, W);
    conv(m, "x", "e1", C, 6 * C, 1, 1, 0, 1, 1, 2);
    conv(m, "e1", "d1", 6 * C, 6 * C, 3, 1, 1, 1, 6 * C, 2);
    conv(m, "d1", "p1", 6 * C, C, 1, 1, 0, 1, 1, 0);
    tb_node(m, "Add", "p1,x", "r1");
    conv(m, "r1", "e2", C, 4 * C, 1, 1, 0, 1, 1, 2);
    conv(m, "e2", "d2", 4 * C, 4 * C, 3, s, 1, 1, 4 * C, 2);
    conv(m, "d2", "y", 4 * C, 12, 1, 1, 0, 1, 1, 0);
    tb_output(m, "y");
    return m;
}

/* Dilated and large kernels with padding, strides 1 and 2. */
static pl_model *dilated(int64_t N, int64_t C, int64_t H, int64_t W) {
    pl_model *m = tb_new("test:dilated", 13);
    in4(m, "x", N, C, H, W);
    conv(m, "x", "a", C, 12, 3, 1, 2, 2, 1, 1);
    conv(m, "a", "b", 12, 12, 5, 2, 2, 1, 1, 1);
    conv(m, "b", "c", 12, 8, 3, 1, 3, 3, 1, 2);
    conv(m, "c", "y", 8, 16, 7, 2, 3, 1, 1, 0);
    tb_output(m, "y");
    return m;
}

/* ------------------------------------------------------------------ running */

/* Runs m on x under schedule `sched` with `threads` threads; returns the output
 * (owned) and the schedule in effect. */
static pillar_tensor *run(const pillar_model *m, const pillar_tensor *x, pillar_schedule sched, int threads,
                          pillar_schedule *eff, const int64_t *shape) {
    pillar_options *o = NULL;
    pillar_options_create(&o);
    pillar_options_set_threads(o, threads);
    pillar_options_set_schedule(o, sched);
    if (shape) pillar_options_set_shape(o, "input", 4, shape);
    pillar_session *s = NULL;
    pillar_status st = pillar_session_create(m, o, &s);
    pillar_options_destroy(o);
    CHECK(st == PILLAR_OK, "session: %s", pillar_last_error());
    if (st) return NULL;
    const char *name = NULL;
    pillar_session_input(s, 0, &name, NULL, NULL, NULL);
    pillar_tensor *y = NULL;
    st = pillar_session_run(s, 1, &name, &x, 1, NULL, &y);
    CHECK(st == PILLAR_OK, "run: %s", pillar_last_error());
    if (eff) *eff = pillar_session_schedule(s);
    last_direct = pl_columns_direct_count((const pl_session *)s);
    pillar_session_destroy(s);
    return y;
}

/* max |a - b| / max |b| */
static double rel_diff(const pillar_tensor *a, const pillar_tensor *b) {
    if (!a || !b || pillar_tensor_numel(a) != pillar_tensor_numel(b)) return INFINITY;
    const float *p = pillar_tensor_data(a), *q = pillar_tensor_data(b);
    double d = 0, mx = 1e-30;
    for (int64_t i = 0; i < pillar_tensor_numel(a); i++) {
        double e = fabs((double)p[i] - (double)q[i]);
        if (!(e <= d)) d = e; /* NaN counts */
        if (fabs(q[i]) > mx) mx = fabs(q[i]);
    }
    return d / mx;
}

static pillar_tensor *rand_input(int64_t n, int64_t c, int64_t h, int64_t w) {
    int64_t d[4] = {n, c, h, w};
    pillar_tensor *t = NULL;
    pillar_tensor_create(PILLAR_FLOAT32, 4, d, NULL, &t);
    float *p = pillar_tensor_data(t);
    for (int64_t i = 0; i < n * c * h * w; i++) p[i] = frand();
    return t;
}

/* Layers vs columns on model m for each forced tile size and thread count; `direct`:
 * some layer must take the direct 1x1 path wherever the tile is a band (forced rows). */
static void compare(const char *what, pl_model *pm, pillar_tensor *x, const int *rows, int nrows, bool direct) {
    const pillar_model *m = (const pillar_model *)pm;
    pillar_tensor *ref = run(m, x, PILLAR_SCHEDULE_LAYERS, 1, NULL, NULL);
    /* kept halos (1) and recomputed halos (0) with each forced tile size; the
     * planner's own choices (rows 0) as they come */
    for (int r = 0; r < nrows; r++)
        for (int keep = rows[r] ? 0 : -1; keep <= (rows[r] ? 1 : -1); keep++)
            for (int threads = 1; threads <= 2; threads++) {
                pl_columns_force_rows(rows[r]);
                pl_columns_force_keep(keep);
                pillar_schedule eff = PILLAR_SCHEDULE_AUTO;
                pillar_tensor *y = run(m, x, PILLAR_SCHEDULE_COLUMNS, threads, &eff, NULL);
                double d = rel_diff(y, ref);
                CHECK(eff == PILLAR_SCHEDULE_COLUMNS, "%s: rows %d keep %d threads %d: no chain ran as columns", what,
                      rows[r], keep, threads);
                CHECK(!direct || !rows[r] || last_direct > 0, "%s: rows %d keep %d threads %d: no direct 1x1 layer",
                      what, rows[r], keep, threads);
                CHECK(d <= 1e-5, "%s (%s): rows %d keep %d threads %d: columns differ from layers by %g", what,
                      pl_isa_name(pl_cpu_isa()), rows[r], keep, threads, d);
                pillar_tensor_destroy(y);
            }
    pl_columns_force_rows(-1);
    pl_columns_force_keep(-1);
    pillar_tensor_destroy(ref);
}

static void ir_chains(void) {
    static const int rows[] = {1, 2, 3, 5, 0};
    const int nr = (int)(sizeof rows / sizeof rows[0]);
    const char *sp = getenv("PILLAR_SPARSE");
    const bool direct = sp && !strcmp(sp, "1"); /* the 1x1 layers run sparse */
    for (int s = 1; s <= 2; s++) {
        pl_model *m = bottleneck(2, 5, 23, 19, s);
        pillar_tensor *x = rand_input(2, 5, 23, 19);
        compare(s == 1 ? "bottleneck s1" : "bottleneck s2", m, x, rows, nr, direct);
        pillar_tensor_destroy(x);
        pillar_model_destroy((pillar_model *)m);
        m = inverted(1, 8, 17, 13, s);
        x = rand_input(1, 8, 17, 13);
        compare(s == 1 ? "inverted s1" : "inverted s2", m, x, rows, nr, direct);
        pillar_tensor_destroy(x);
        pillar_model_destroy((pillar_model *)m);
    }
    pl_model *m = dilated(3, 4, 29, 11);
    pillar_tensor *x = rand_input(3, 4, 29, 11);
    compare("dilated", m, x, rows, nr, false);
    pillar_tensor_destroy(x);
    pillar_model_destroy((pillar_model *)m);
}

/* Whole images at batch 1 on 2 threads (forced rows >= the image): the chain runs each
 * layer of the image on both threads, and says so in the report. */
static void par_chain(void) {
    pl_model *pm = inverted(1, 8, 17, 13, 2);
    const pillar_model *m = (const pillar_model *)pm;
    pillar_tensor *x = rand_input(1, 8, 17, 13);
    pillar_tensor *ref = run(m, x, PILLAR_SCHEDULE_LAYERS, 1, NULL, NULL);
    pl_columns_force_rows(64);
    for (int threads = 1; threads <= 2; threads++) {
        pillar_options *o = NULL;
        pillar_options_create(&o);
        pillar_options_set_threads(o, threads);
        pillar_options_set_schedule(o, PILLAR_SCHEDULE_COLUMNS);
        pillar_session *s = NULL;
        CHECK(pillar_session_create(m, o, &s) == PILLAR_OK, "par session: %s", pillar_last_error());
        pillar_options_destroy(o);
        if (!s) continue;
        const char *r = pillar_session_schedule_report(s);
        CHECK((strstr(r, "each layer on all threads") != NULL) == (threads == 2), "par, %d threads: %s", threads, r);
        const char *name = NULL;
        pillar_session_input(s, 0, &name, NULL, NULL, NULL);
        pillar_tensor *y = NULL;
        const pillar_tensor *xs = x;
        CHECK(pillar_session_run(s, 1, &name, &xs, 1, NULL, &y) == PILLAR_OK, "par run: %s", pillar_last_error());
        double d = rel_diff(y, ref);
        CHECK(d <= 1e-5, "par (%s), %d threads: columns differ from layers by %g", pl_isa_name(pl_cpu_isa()), threads, d);
        pillar_tensor_destroy(y);
        pillar_session_destroy(s);
    }
    pl_columns_force_rows(-1);
    pillar_tensor_destroy(ref);
    pillar_tensor_destroy(x);
    pillar_model_destroy((pillar_model *)pm);
}

/* ------------------------------------------------------------------ zoo models */

static void zoo(const char *arch, int64_t hw, bool pruned) {
    int64_t chw[3] = {3, hw, hw};
    pillar_model *m = NULL;
    CHECK(pillar_model_zoo(arch, chw, 10, 7, &m) == PILLAR_OK, "zoo %s: %s", arch, pillar_last_error());
    if (!m) return;
    if (pruned) {
        pillar_prune_options *po = NULL;
        pillar_prune_options_create(&po);
        pillar_prune_options_set_sparsity(po, 0.9);
        CHECK(pillar_model_prune(m, po, NULL) == PILLAR_OK, "prune: %s", pillar_last_error());
        pillar_prune_options_destroy(po);
        setenv("PILLAR_SPARSE", "1", 1);
    }
    pillar_tensor *x = rand_input(2, 3, hw, hw);
    int64_t shape[4] = {2, 3, hw, hw};
    pillar_tensor *ref = run(m, x, PILLAR_SCHEDULE_LAYERS, 2, NULL, shape);
    pillar_schedule eff = PILLAR_SCHEDULE_AUTO;
    pillar_tensor *y = run(m, x, PILLAR_SCHEDULE_COLUMNS, 2, &eff, shape);
    CHECK(eff == PILLAR_SCHEDULE_COLUMNS, "%s: no chain ran as columns", arch);
    double d = rel_diff(y, ref);
    CHECK(d <= 1e-5, "%s%s (%s): columns differ from layers by %g", arch, pruned ? " 90%" : "",
          pl_isa_name(pl_cpu_isa()), d);
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(y);
    pillar_tensor_destroy(ref);
    pillar_model_destroy(m);
    unsetenv("PILLAR_SPARSE");
}

/* ------------------------------------------------------------------ API */

static void api(void) {
    pillar_options *o = NULL;
    pillar_options_create(&o);
    CHECK(pillar_options_set_schedule(o, (pillar_schedule)7) == PILLAR_ERR_ARGUMENT, "bad schedule accepted");
    CHECK(strstr(pillar_last_error(), "schedule 7"), "message: %s", pillar_last_error());
    CHECK(pillar_options_set_schedule(NULL, PILLAR_SCHEDULE_LAYERS) == PILLAR_ERR_ARGUMENT, "NULL options");
    CHECK(pillar_session_schedule(NULL) == PILLAR_SCHEDULE_LAYERS, "NULL session");
    CHECK(!strcmp(pillar_session_schedule_report(NULL), ""), "NULL session report");
    pl_model *pm = bottleneck(1, 5, 20, 20, 2);
    const pillar_model *m = (const pillar_model *)pm;
    for (int sch = 0; sch < 3; sch++) {
        pillar_options_set_schedule(o, (pillar_schedule)sch);
        pillar_session *s = NULL;
        CHECK(pillar_session_create(m, o, &s) == PILLAR_OK, "%s", pillar_last_error());
        const char *r = pillar_session_schedule_report(s);
        static const char *names[] = {"auto", "layers", "columns"};
        char want[64];
        snprintf(want, sizeof want, "(requested %s)", names[sch]);
        CHECK(!strncmp(r, "schedule: ", 10) && strstr(r, want), "report: %s", r);
        CHECK(strstr(r, "chain 0: ") && strstr(r, "total bytes per inference: layers "), "report: %s", r);
        if (sch == PILLAR_SCHEDULE_LAYERS)
            CHECK(pillar_session_schedule(s) == PILLAR_SCHEDULE_LAYERS && strstr(r, "not used: layers requested"),
                  "layers: %s", r);
        if (sch == PILLAR_SCHEDULE_COLUMNS)
            CHECK(pillar_session_schedule(s) == PILLAR_SCHEDULE_COLUMNS && !strncmp(r, "schedule: columns", 17),
                  "columns: %s", r);
        pillar_session_destroy(s);
    }
    pillar_options_destroy(o);
    pillar_model_destroy((pillar_model *)pm);
}

/* The planner costs a sparse layer's calls at the layer plan's own column tile
 * (pl_conv_fast_sparse_call_px): a 1x1 of C channels reads C floats per pixel, so a
 * tile within half an L2 is at most l2 / 8 / C pixels (at least 64); a small plane is
 * one call; dense plans report 0. */
static void call_px(void) {
    const int64_t cases_hw[][3] = {{512, 128, 128}, {64, 8, 8}, {256, 56, 56}, {3, 17, 19}};
    const double l2 = (double)(pl_cpu()->l2 ? pl_cpu()->l2 : 1u << 20);
    for (int k = 0; k < 4; k++) {
        const int64_t C = cases_hw[k][0], H = cases_hw[k][1], W = cases_hw[k][2], M = 32;
        pl_conv_params p = {.ndim = 2, .batch = 1, .in_channels = C, .out_channels = M, .group = 1,
                            .in_size = {H, W}, .out_size = {H, W}, .kernel = {1, 1}, .stride = {1, 1},
                            .pad_begin = {0, 0}, .dilation = {1, 1}};
        float *w = calloc((size_t)(M * C), sizeof *w);
        if (!w) { CHECK(0, "out of memory"); return; }
        for (int64_t i = 0; i < M * C; i += 10) w[i] = frand(); /* 90% zeros */
        pl_conv_act act = {0};
        for (int sparse = 0; sparse < 2; sparse++) {
            pl_conv_fast *f = NULL;
            const pl_status st = pl_conv_fast_create(&p, w, NULL, &act, sparse ? PL_CONV_ALGO_SPARSE : PL_CONV_ALGO_AUTO_DENSE, 1, &f);
            CHECK(st == PL_OK, "create %lldx%lldx%lld sparse %d: status %d", (long long)C, (long long)H, (long long)W, sparse, (int)st);
            if (st != PL_OK) continue;
            const int64_t px = pl_conv_fast_sparse_call_px(f);
            if (!sparse) {
                CHECK(px == 0, "dense plan %lld: call_px %lld, want 0", (long long)C, (long long)px);
            } else {
                const double cap = l2 / 2 / 4 / (double)C;
                const int64_t want_max = cap >= (double)(H * W) ? H * W : (int64_t)(cap < 64 ? 64 : cap);
                CHECK(px > 0 && px <= H * W && px <= want_max, "C %lld %lldx%lld: call_px %lld, want 1..%lld",
                      (long long)C, (long long)H, (long long)W, (long long)px, (long long)want_max);
                if (cap >= (double)(H * W))
                    CHECK(px == H * W, "C %lld %lldx%lld: one call of the plane, got %lld", (long long)C,
                          (long long)H, (long long)W, (long long)px);
            }
            pl_conv_fast_destroy(f);
        }
        free(w);
    }
    CHECK(pl_conv_fast_sparse_call_px(NULL) == 0, "NULL plan");
}

int main(void) {
    api();
    const pl_isa best = pl_cpu()->best;
    for (int isa = 0; isa <= (int)best; isa++) {
        pl_cpu_force_isa(isa);
        call_px();
        ir_chains();
        /* the sparse kernel everywhere: pruned 1x1 layers take the direct path (no
         * copies, channel strides) */
        setenv("PILLAR_SPARSE", "1", 1);
        ir_chains();
        unsetenv("PILLAR_SPARSE");
        par_chain();
        zoo("resnet50", 64, false);
        zoo("mobilenet_v2", 64, false);
        zoo("resnet50", 64, true);
        zoo("mobilenet_v2", 64, true);
    }
    pl_cpu_force_isa(-1);
    printf("test_columns: %d checks, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
