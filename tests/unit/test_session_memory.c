/* test_session_memory.c -- sessions share the model's constants (any destruction order,
 * several sessions, several threads), let go of the raw weights their kernels packed
 * once the plan is final, still re-plan when shapes may change, keep their results
 * when the model is pruned afterwards; and per-node profiling. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "exec/session.h" /* internal: share counts of constants */
#include "pillar.h"

static const int64_t CHW[3] = {3, 16, 16};

static pillar_model *zoo(const char *name) {
    pillar_model *m = NULL;
    pillar_status st = pillar_model_zoo(name, CHW, 10, 7, &m);
    CHECK(st == PILLAR_OK, "zoo %s: %s", name, pillar_last_error());
    return m;
}

/* threads = 1 so that every session computes bit-identical results */
static pillar_session *session(pillar_model *m, int64_t fixed_batch) {
    pillar_options *o = NULL;
    pillar_session *s = NULL;
    pillar_options_create(&o);
    pillar_options_set_threads(o, 1);
    if (fixed_batch > 0) pillar_options_set_dim(o, "batch", fixed_batch);
    pillar_status st = pillar_session_create(m, o, &s);
    CHECK(st == PILLAR_OK, "session: %s", pillar_last_error());
    pillar_options_destroy(o);
    return s;
}

static pillar_tensor *image(int64_t batch, unsigned seed) {
    int64_t dims[4] = {batch, CHW[0], CHW[1], CHW[2]};
    pillar_tensor *t = NULL;
    pillar_tensor_create(PILLAR_FLOAT32, 4, dims, NULL, &t);
    float *p = pillar_tensor_data(t);
    for (int64_t i = 0; i < pillar_tensor_numel(t); i++)
        p[i] = (float)((i * 7919 + seed * 104729) % 1000) / 500.0f - 1.0f;
    return t;
}

static pillar_tensor *run(pillar_session *s, const pillar_tensor *x) {
    const char *name = "input";
    pillar_tensor *y = NULL;
    pillar_status st = pillar_session_run(s, 1, &name, &x, 1, NULL, &y);
    CHECK(st == PILLAR_OK, "run: %s", pillar_last_error());
    return y;
}

static bool same(const pillar_tensor *a, const pillar_tensor *b) {
    if (!a || !b || pillar_tensor_numel(a) != pillar_tensor_numel(b)) return false;
    return !memcmp(pillar_tensor_data(a), pillar_tensor_data(b),
                   (size_t)pillar_tensor_numel(a) * sizeof(float));
}

/* id of the weight (input 1) of the first node of op `op` in g, -1 if none */
static int first_weight(const pl_graph *g, const char *op) {
    for (int i = 0; i < g->nnodes; i++)
        if (!strcmp(g->nodes[i].op_type, op) && g->nodes[i].nin > 1) return g->nodes[i].in[1];
    return -1;
}

static void test_share_and_release(void) {
    pillar_model *m = zoo("resnet8");
    if (!m) return;
    int wid = first_weight(m->graph, "Conv");
    CHECK(wid >= 0, "resnet8 has a Conv with a weight");
    if (wid < 0) return;
    const char *wname = m->graph->values[wid].name;
    CHECK(pl_value_share_count(&m->graph->values[wid]) == 0, "nothing shared before a session");

    /* symbolic batch: planned at the first run, may re-plan, keeps its raw weights */
    pillar_session *dyn = session(m, 0);
    CHECK(pl_value_share_count(&m->graph->values[wid]) == 2,
          "model + session share the weight, count %d",
          pl_value_share_count(&m->graph->values[wid]));
    int sid = pl_graph_find_value(dyn->g, wname);
    CHECK(sid >= 0 && dyn->g->values[sid].t.data == m->graph->values[wid].t.data,
          "the session reads the model's copy");
    /* fixed batch: final plan, packed raw weights are let go */
    pillar_session *fix = session(m, 1);
    CHECK(pillar_session_released_bytes(fix) > 0, "a final plan releases packed weights");
    CHECK(pillar_session_released_bytes(dyn) == 0,
          "a session that may re-plan keeps them, released %zu",
          pillar_session_released_bytes(dyn));
    CHECK(pl_value_share_count(&m->graph->values[wid]) == 2,
          "the fixed session dropped its share, count %d",
          pl_value_share_count(&m->graph->values[wid]));
    int fid = pl_graph_find_value(fix->g, wname);
    CHECK(fid >= 0 && !fix->g->values[fid].t.data && fix->g->values[fid].t.ndim == 4,
          "released weight keeps its shape, loses its data");
    size_t convs = 0;
    for (size_t i = 0; i < pillar_session_node_count(fix); i++) {
        const char *op = NULL;
        pillar_session_node(fix, i, NULL, &op, NULL, NULL, NULL, NULL, NULL);
        if (op && !strcmp(op, "Conv")) {
            convs++;
            CHECK(pillar_session_node_kernel(fix, i)[0], "conv node %zu names its kernel", i);
        }
    }
    CHECK(convs > 0, "resnet8 plans Conv nodes");

    pillar_tensor *x1 = image(1, 1), *x2 = image(2, 2);
    pillar_tensor *yd = run(dyn, x1), *yf = run(fix, x1);
    CHECK(same(yd, yf), "released and kept weights give the same result");
    pillar_model_destroy(m); /* sessions outlive the model */
    CHECK(sid >= 0 && pl_value_share_count(&dyn->g->values[sid]) == 1,
          "the session is the last holder");
    pillar_tensor *yd2 = run(dyn, x1), *yf2 = run(fix, x1);
    CHECK(same(yd, yd2) && same(yf, yf2), "same results after the model is destroyed");
    /* the dynamic session re-plans for batch 2 (row 0 of x2 differs from x1: compare the
     * batch-2 result with two batch-1 runs after planning back) */
    pillar_tensor *y2 = run(dyn, x2);
    CHECK(y2 && pillar_tensor_dims(y2)[0] == 2, "re-planned for batch 2");
    int64_t d1[4] = {1, CHW[0], CHW[1], CHW[2]};
    size_t img = (size_t)(CHW[0] * CHW[1] * CHW[2]);
    for (int b = 0; b < 2 && y2; b++) {
        pillar_tensor *xb = NULL;
        pillar_tensor_create(PILLAR_FLOAT32, 4, d1,
                             (float *)pillar_tensor_data(x2) + (size_t)b * img, &xb);
        pillar_tensor *yb = run(dyn, xb);
        const float *p = pillar_tensor_data(y2), *q = yb ? pillar_tensor_data(yb) : NULL;
        for (int k = 0; q && k < 10; k++)
            CHECK(fabsf(p[b * 10 + k] - q[k]) <= 1e-4f * (1 + fabsf(q[k])),
                  "batch row %d class %d: %g vs %g", b, k, p[b * 10 + k], q[k]);
        pillar_tensor_destroy(yb);
        pillar_tensor_destroy(xb);
    }
    /* the final session refuses another shape instead of re-planning */
    const char *name = "input";
    const pillar_tensor *in = x2;
    pillar_tensor *bad = NULL;
    pillar_status st = pillar_session_run(fix, 1, &name, &in, 1, NULL, &bad);
    CHECK(st == PILLAR_ERR_INPUT && strstr(pillar_last_error(), "expects"),
          "fixed session, batch 2: %d %s", st, pillar_last_error());
    pillar_tensor *yf3 = run(fix, x1);
    CHECK(same(yf, yf3), "still runs after the refused shape");
    pillar_tensor *all[] = {x1, x2, yd, yf, yd2, yf2, y2, yf3};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pillar_tensor_destroy(all[i]);
    pillar_session_destroy(fix);
    pillar_session_destroy(dyn);
}

/* Sessions destroyed before the model, the model between two sessions, and a new
 * session from a model whose earlier sessions are gone. */
static void test_destroy_orders(void) {
    pillar_model *m = zoo("lenet_bn");
    if (!m) return;
    pillar_tensor *x = image(1, 3);
    pillar_session *a = session(m, 1), *b = session(m, 0);
    pillar_tensor *ya = run(a, x);
    pillar_session_destroy(a);
    pillar_tensor *yb = run(b, x);
    CHECK(same(ya, yb), "lenet_bn: same result from both sessions");
    pillar_session *c = session(m, 1);
    pillar_model_destroy(m);
    pillar_tensor *yc = run(c, x);
    CHECK(same(ya, yc), "lenet_bn: a session made after another was destroyed");
    pillar_session_destroy(b);
    pillar_tensor *yc2 = run(c, x);
    CHECK(same(ya, yc2), "lenet_bn: the last session alone");
    pillar_session_destroy(c);
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(ya);
    pillar_tensor_destroy(yb);
    pillar_tensor_destroy(yc);
    pillar_tensor_destroy(yc2);
}

typedef struct worker {
    pillar_model *m;
    pillar_tensor *x, *y;
    int64_t batch;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int r = 0; r < 4; r++) {
        pillar_session *s = session(w->m, w->batch);
        pillar_tensor_destroy(w->y);
        w->y = s ? run(s, w->x) : NULL;
        pillar_session_destroy(s);
    }
    return NULL;
}

/* Sessions made and destroyed from one model on several threads at once (the first
 * sharing clone converts the model's constants under a lock; counts are atomic). */
static void test_threads(void) {
    pillar_model *m = zoo("resnet8");
    if (!m) return;
    pillar_tensor *x = image(1, 4);
    pillar_session *ref = session(m, 1);
    pillar_tensor *y = run(ref, x);
    worker w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){m, x, NULL, i == 2 ? 0 : 1};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK(same(y, w[i].y), "thread %d: same result", i);
        pillar_tensor_destroy(w[i].y);
    }
    int wid = first_weight(m->graph, "Conv");
    CHECK(wid >= 0 && pl_value_share_count(&m->graph->values[wid]) == 1,
          "every thread's share is back: %d",
          wid >= 0 ? pl_value_share_count(&m->graph->values[wid]) : -1);
    pillar_model_destroy(m);
    pillar_session_destroy(ref);
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(y);
}

/* Pruning a model in place must not change what its existing sessions compute. */
static void test_prune_after_session(void) {
    pillar_model *m = zoo("lenet");
    if (!m) return;
    pillar_tensor *x = image(1, 5);
    pillar_session *dyn = session(m, 0), *fix = session(m, 1);
    pillar_tensor *y0 = run(dyn, x), *y1 = run(fix, x);
    pillar_prune_options *po = NULL;
    pillar_prune_options_create(&po);
    pillar_prune_options_set_sparsity(po, 0.9);
    pillar_prune_options_set_keep_first_last(po, 0);
    CHECK(pillar_model_prune(m, po, NULL) == PILLAR_OK, "prune: %s", pillar_last_error());
    pillar_prune_options_destroy(po);
    pillar_tensor *y0b = run(dyn, x), *y1b = run(fix, x);
    CHECK(same(y0, y0b) && same(y1, y1b), "existing sessions keep the weights they were made with");
    pillar_session *after = session(m, 1);
    pillar_tensor *y2 = run(after, x);
    CHECK(!same(y1, y2), "a session of the pruned model computes something else");
    int wid = first_weight(m->graph, "Conv");
    CHECK(wid >= 0 && pl_value_share_count(&m->graph->values[wid]) == 1,
          "the pruned weight is the model's own again (the new final session let go of it)");
    pillar_tensor *ts[] = {x, y0, y1, y0b, y1b, y2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) pillar_tensor_destroy(ts[i]);
    pillar_session_destroy(after);
    pillar_session_destroy(fix);
    pillar_session_destroy(dyn);
    pillar_model_destroy(m);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void test_profiling(void) {
    pillar_model *m = zoo("resnet8");
    if (!m) return;
    pillar_session *s = session(m, 1);
    pillar_model_destroy(m);
    pillar_tensor *x = image(1, 6);
    size_t n = pillar_session_node_count(s);
    CHECK(n > 5, "resnet8 has nodes: %zu", n);
    double ms = -1;
    int64_t calls = -1;
    pillar_tensor_destroy(run(s, x));
    CHECK(pillar_session_node_time(s, 0, &ms, &calls) == PILLAR_OK && ms == 0 && calls == 0,
          "not profiled by default: %g ms, %lld calls", ms, (long long)calls);
    CHECK(pillar_session_set_profiling(s, 1) == PILLAR_OK, "profiling on");
    double t0 = now_ms();
    for (int r = 0; r < 3; r++) pillar_tensor_destroy(run(s, x));
    double wall = now_ms() - t0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(pillar_session_node_time(s, i, &ms, &calls) == PILLAR_OK, "node_time %zu", i);
        CHECK(calls == 3 && ms >= 0, "node %zu: %lld calls, %g ms", i, (long long)calls, ms);
        sum += ms;
    }
    CHECK(sum > 0 && sum <= wall, "node times %g ms within the runs' %g ms", sum, wall);
    CHECK(pillar_session_set_profiling(s, 0) == PILLAR_OK, "profiling off");
    pillar_tensor_destroy(run(s, x));
    pillar_session_node_time(s, 0, NULL, &calls);
    CHECK(calls == 3, "off: no more counts (%lld)", (long long)calls);
    pillar_session_set_profiling(s, 1);
    pillar_session_node_time(s, 0, &ms, &calls);
    CHECK(calls == 0 && ms == 0, "on again: counts restart");
    CHECK(pillar_session_node_time(s, n, &ms, &calls) == PILLAR_ERR_ARGUMENT &&
              strstr(pillar_last_error(), "no node"),
          "out of range: %s", pillar_last_error());
    CHECK(pillar_session_node_time(NULL, 0, &ms, &calls) == PILLAR_ERR_ARGUMENT, "NULL session");
    CHECK(pillar_session_set_profiling(NULL, 1) == PILLAR_ERR_ARGUMENT, "NULL session");
    pillar_session_destroy(s);
    pillar_tensor_destroy(x);
}

/* pillar_session_create_from: the session takes the model (freed also on failure). */
static void test_create_from(void) {
    pillar_model *m = zoo("resnet8");
    if (!m) return;
    pillar_tensor *x = image(1, 8);
    pillar_session *ref = session(m, 1);
    pillar_tensor *y = run(ref, x);
    size_t released = pillar_session_released_bytes(ref);
    pillar_options *o = NULL;
    pillar_options_create(&o);
    pillar_options_set_threads(o, 1);
    pillar_options_set_dim(o, "batch", 1);
    pillar_session *s = NULL;
    CHECK(pillar_session_create_from(&m, o, &s) == PILLAR_OK, "create_from: %s",
          pillar_last_error());
    CHECK(m == NULL, "the model handle is cleared");
    CHECK(pillar_session_released_bytes(s) == released, "same weights released (%zu vs %zu)",
          pillar_session_released_bytes(s), released);
    pillar_tensor *y2 = s ? run(s, x) : NULL;
    CHECK(same(y, y2), "same result as a session of the kept model");
    pillar_session_destroy(s);
    /* failure: the model is still freed (ASan checks), the message names the problem */
    m = zoo("resnet8");
    pillar_options_set_shape(o, "nope", 1, (int64_t[]){1});
    s = NULL;
    CHECK(pillar_session_create_from(&m, o, &s) == PILLAR_ERR_ARGUMENT && m == NULL && s == NULL &&
              strstr(pillar_last_error(), "'nope'"),
          "failure frees the model: %s", pillar_last_error());
    CHECK(pillar_session_create_from(NULL, o, &s) == PILLAR_ERR_ARGUMENT, "NULL model");
    m = zoo("lenet");
    CHECK(pillar_session_create_from(&m, o, NULL) == PILLAR_ERR_ARGUMENT && m == NULL,
          "NULL out frees the model");
    pillar_options_destroy(o);
    pillar_session_destroy(ref);
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(y);
    pillar_tensor_destroy(y2);
}

int main(void) {
    test_share_and_release();
    test_destroy_orders();
    test_threads();
    test_prune_after_session();
    test_profiling();
    test_create_from();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("test_session_memory: all passed\n");
    return 0;
}
