/* test_trainer.c -- the training API end to end: an MLP learns a synthetic separable
 * problem (> 95%); seeded runs at a fixed thread count give bit-identical losses;
 * checkpoint/restore resumes exactly; the saved model, loaded again with
 * pillar_model_load and run by a session, gives the predictions and loss that
 * pillar_trainer_evaluate gives (also for a CNN with BatchNorm, exported in inference
 * form); pruning holds its masks and leaves the first/last or named layers dense when
 * asked; optimizers, BF16 and bad inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pillar.h"
#include "graph/ir.h"

static int failures = 0;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)
#define OK(call) CHECK((call) == PILLAR_OK, "%s: %s", #call, pillar_last_error())

static uint64_t rs = 7;
static double ur(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * (1.0 / 9007199254740992.0);
}
static double gauss(void) {
    double u = ur() + 1e-12, v = ur();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* ------------------------------------------------------------------ models */

static pl_graph *G;

static int val(const char *n) {
    return pl_graph_add_value(G, n);
}

static int weight(const char *name, int nd, const int64_t *d, double scale, double fill) {
    int v = val(name);
    G->values[v].kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&G->values[v].t, PL_F32, nd, d);
    pl_tensor_alloc(&G->values[v].t);
    float *p = G->values[v].t.data;
    for (int64_t i = 0; i < pl_numel(&G->values[v].t); i++)
        p[i] = scale ? (float)((2 * ur() - 1) * scale) : (float)fill;
    return v;
}

static int node(const char *op, int nin, const int *in) {
    int i = pl_graph_add_node(G);
    pl_node *n = &G->nodes[i];
    char b[64];
    snprintf(b, sizeof b, "%s_%d", op, i);
    n->name = strdup(b);
    n->op_type = strdup(op);
    n->domain = strdup("");
    n->nin = nin;
    n->nout = 1;
    n->in = malloc((size_t)nin * sizeof(int));
    memcpy(n->in, in, (size_t)nin * sizeof(int));
    n->out = malloc(sizeof(int));
    snprintf(b, sizeof b, "%s_%d_y", op, i);
    int v = val(b);
    G->values[v].producer = i;
    G->nodes[i].out[0] = v;
    return v;
}

static void attr(const char *name, int n, const int64_t *v) {
    pl_node *nn = &G->nodes[G->nnodes - 1];
    nn->attrs = realloc(nn->attrs, (size_t)(nn->nattr + 1) * sizeof(pl_attr));
    pl_attr *a = &nn->attrs[nn->nattr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    if (n < 0) {
        a->type = PL_ATTR_INT;
        a->i = v[0];
    } else {
        a->type = PL_ATTR_INTS;
        a->n = (size_t)n;
        a->ints = malloc((size_t)n * 8);
        memcpy(a->ints, v, (size_t)n * 8);
    }
}

#define D(...)                                                                                     \
    (const int64_t[]) {                                                                            \
        __VA_ARGS__                                                                                \
    }

static int begin_model(int nd, const int64_t *d) {
    G = pl_graph_new();
    int x = val("input");
    G->values[x].kind = PL_VALUE_INPUT;
    pl_tensor_set_shape(&G->values[x].t, PL_F32, nd, d);
    G->values[x].dim_names[0] = strdup("batch");
    G->inputs = malloc(sizeof(int));
    G->inputs[0] = x;
    G->ninputs = 1;
    return x;
}

static pl_model *finish_model(int y, const char *name) {
    free(G->values[y].name);
    G->values[y].name = strdup("logits");
    G->outputs = malloc(sizeof(int));
    G->outputs[0] = y;
    G->noutputs = 1;
    pl_model *m = calloc(1, sizeof *m);
    m->path = strdup(name);
    m->ir_version = 8;
    m->nopsets = 1;
    m->opsets = calloc(1, sizeof(pl_opset));
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = 15;
    m->graph = G;
    G = NULL;
    return m;
}

/* in -> Gemm(hidden) -> Relu -> [Dropout] -> Gemm(classes) */
static pl_model *mlp(int64_t in, int64_t hidden, int64_t classes, bool dropout) {
    int x = begin_model(2, D(-1, in));
    int y = node("Gemm", 3,
                 (int[]){x, weight("fc1.weight", 2, D(hidden, in), sqrt(3.0 / (double)in), 0),
                         weight("fc1.bias", 1, D(hidden), 0, 0)});
    attr("transB", -1, D(1));
    y = node("Relu", 1, &y);
    if (dropout) {
        int r = weight("ratio", 0, NULL, 0, 0.2);
        y = node("Dropout", 2, (int[]){y, r});
    }
    y = node("Gemm", 3,
             (int[]){y, weight("fc2.weight", 2, D(classes, hidden), sqrt(3.0 / (double)hidden), 0),
                     weight("fc2.bias", 1, D(classes), 0, 0)});
    attr("transB", -1, D(1));
    return finish_model(y, "mlp");
}

/* Conv -> BatchNorm -> Relu -> MaxPool -> Conv -> BatchNorm -> Relu -> GAP -> Flatten -> Gemm */
static pl_model *cnn(int64_t classes) {
    int x = begin_model(4, D(-1, 1, 8, 8));
    int y =
        node("Conv", 3,
             (int[]){x, weight("c1.w", 4, D(8, 1, 3, 3), 0.5, 0), weight("c1.b", 1, D(8), 0, 0)});
    attr("pads", 4, D(1, 1, 1, 1));
    y = node("BatchNormalization", 5,
             (int[]){y, weight("bn1.scale", 1, D(8), 0, 1), weight("bn1.bias", 1, D(8), 0, 0),
                     weight("bn1.mean", 1, D(8), 0, 0), weight("bn1.var", 1, D(8), 0, 1)});
    attr("training_mode", -1, D(1));
    y = node("Relu", 1, &y);
    y = node("MaxPool", 1, &y);
    attr("kernel_shape", 2, D(2, 2));
    attr("strides", 2, D(2, 2));
    y = node("Conv", 2, (int[]){y, weight("c2.w", 4, D(16, 8, 3, 3), 0.2, 0)});
    attr("pads", 4, D(1, 1, 1, 1));
    y = node("BatchNormalization", 5,
             (int[]){y, weight("bn2.scale", 1, D(16), 0, 1), weight("bn2.bias", 1, D(16), 0, 0),
                     weight("bn2.mean", 1, D(16), 0, 0), weight("bn2.var", 1, D(16), 0, 1)});
    y = node("Relu", 1, &y);
    y = node("GlobalAveragePool", 1, &y);
    y = node("Flatten", 1, &y);
    y = node(
        "Gemm", 3,
        (int[]){y, weight("fc.w", 2, D(classes, 16), 0.4, 0), weight("fc.b", 1, D(classes), 0, 0)});
    attr("transB", -1, D(1));
    return finish_model(y, "cnn");
}

/* ------------------------------------------------------------------ data */

/* Points around `classes` random centres in `dim` dimensions. */
typedef struct dataset {
    int64_t n, dim;
    float *x;
    int64_t *y;
} dataset;

static float centres[8][64];

static void make_centres(int classes, int64_t dim) {
    for (int c = 0; c < classes; c++)
        for (int64_t d = 0; d < dim; d++) centres[c][d] = (float)(2.0 * gauss());
}

static dataset make_data(int64_t n, int64_t dim, int classes, double noise) {
    dataset s = {n, dim, malloc((size_t)(n * dim) * sizeof(float)),
                 malloc((size_t)n * sizeof(int64_t))};
    for (int64_t i = 0; i < n; i++) {
        s.y[i] = (int64_t)(ur() * classes);
        for (int64_t d = 0; d < dim; d++)
            s.x[i * dim + d] = centres[s.y[i]][d] + (float)(noise * gauss());
    }
    return s;
}

/* 8x8 images: class = position of a bright 3x3 square (4 quadrants) plus noise. */
static dataset make_images(int64_t n) {
    dataset s = {n, 64, malloc((size_t)(n * 64) * sizeof(float)),
                 malloc((size_t)n * sizeof(int64_t))};
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(ur() * 4);
        s.y[i] = c;
        int r0 = (c / 2) * 4 + (int)(ur() * 2), c0 = (c % 2) * 4 + (int)(ur() * 2);
        for (int p = 0; p < 64; p++) s.x[i * 64 + p] = (float)(0.3 * gauss());
        for (int r = 0; r < 3; r++)
            for (int q = 0; q < 3; q++) s.x[i * 64 + (r0 + r) * 8 + c0 + q] += 1.0f;
    }
    return s;
}

static void free_data(dataset *s) {
    free(s->x);
    free(s->y);
}

static void batch_tensors(const dataset *s, int64_t off, int64_t b, int img, pillar_tensor **x,
                          pillar_tensor **y) {
    if (img)
        pillar_tensor_wrap(PILLAR_FLOAT32, 4, D(b, 1, 8, 8), s->x + off * s->dim, x);
    else
        pillar_tensor_wrap(PILLAR_FLOAT32, 2, D(b, s->dim), s->x + off * s->dim, x);
    pillar_tensor_wrap(PILLAR_INT64, 1, D(b), s->y + off, y);
}

/* Trains `steps` batches cycling through the data; losses[] gets each step's loss. */
static void train(pillar_trainer *t, const dataset *s, int64_t b, int first, int steps, int img,
                  float *losses) {
    for (int k = 0; k < steps; k++) {
        int64_t off = ((first + k) * b) % (s->n - b + 1);
        pillar_tensor *x, *y;
        batch_tensors(s, off, b, img, &x, &y);
        float loss = 0;
        OK(pillar_trainer_step(t, x, y, &loss, NULL));
        if (losses) losses[k] = loss;
        pillar_tensor_destroy(x);
        pillar_tensor_destroy(y);
    }
}

static double accuracy(pillar_trainer *t, const dataset *s, int img, float *loss) {
    pillar_tensor *x, *y;
    batch_tensors(s, 0, s->n, img, &x, &y);
    int64_t correct = -1;
    OK(pillar_trainer_evaluate(t, x, y, loss, &correct));
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(y);
    return (double)correct / (double)s->n;
}

static pillar_train_options *options(pillar_optimizer opt, float lr, float mom, int threads,
                                     uint64_t seed) {
    pillar_train_options *o = NULL;
    OK(pillar_train_options_create(&o));
    OK(pillar_train_options_set_optimizer(o, opt, lr, mom, 0));
    OK(pillar_train_options_set_threads(o, threads));
    OK(pillar_train_options_set_seed(o, seed));
    OK(pillar_train_options_set_batch(o, 32));
    return o;
}

/* Logits of the saved model through a session: accuracy and mean cross-entropy. */
static void session_check(const char *path, const dataset *s, int img, double *acc, double *loss) {
    pillar_model *m = NULL;
    pillar_session *sess = NULL;
    *acc = -1;
    *loss = -1;
    if (pillar_model_load(path, &m) != PILLAR_OK ||
        pillar_session_create(m, NULL, &sess) != PILLAR_OK) {
        CHECK(0, "reload %s: %s", path, pillar_last_error());
        pillar_model_destroy(m);
        return;
    }
    pillar_tensor *x, *y, *out = NULL;
    batch_tensors(s, 0, s->n, img, &x, &y);
    const char *name = "input";
    OK(pillar_session_run(sess, 1, &name, (const pillar_tensor *const *)&x, 1, NULL, &out));
    if (out) {
        const float *z = pillar_tensor_data(out);
        int64_t C = pillar_tensor_dims(out)[1], hits = 0;
        double l = 0;
        for (int64_t i = 0; i < s->n; i++) {
            int64_t best = 0;
            double mx = z[i * C], sum = 0;
            for (int64_t j = 1; j < C; j++)
                if (z[i * C + j] > z[i * C + best]) best = j;
            mx = z[i * C + best];
            for (int64_t j = 0; j < C; j++) sum += exp(z[i * C + j] - mx);
            l += mx + log(sum) - z[i * C + s->y[i]];
            hits += best == s->y[i];
        }
        *acc = (double)hits / (double)s->n;
        *loss = l / (double)s->n;
    }
    pillar_tensor_destroy(out);
    pillar_tensor_destroy(x);
    pillar_tensor_destroy(y);
    pillar_session_destroy(sess);
    pillar_model_destroy(m);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char tmpdir[256];

/* ------------------------------------------------------------------ tests */

static void test_mlp_fit_and_save(void) {
    make_centres(4, 16);
    dataset tr = make_data(4096, 16, 4, 1.5), te = make_data(1024, 16, 4, 1.5);
    pl_model *m = mlp(16, 32, 4, false);
    pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.05f, 0.9f, 2, 1);
    pillar_trainer *t = NULL;
    OK(pillar_trainer_create(m, o, &t));
    if (!t) return;
    double t0 = now();
    for (int e = 0; e < 3; e++) train(t, &tr, 32, 0, 128, 0, NULL);
    float loss;
    double acc = accuracy(t, &te, 0, &loss), secs = now() - t0;
    printf("mlp: test accuracy %.4f, loss %.4f after 384 steps (%.2f s)\n", acc, loss, secs);
    CHECK(acc > 0.95, "MLP accuracy %.4f <= 0.95", acc);
    char path[512];
    snprintf(path, sizeof path, "%s/mlp.onnx", tmpdir);
    OK(pillar_trainer_save(t, path));
    double sacc, sloss;
    session_check(path, &te, 0, &sacc, &sloss);
    printf("mlp: saved model in a session: accuracy %.4f, loss %.6f (trainer %.6f)\n", sacc, sloss,
           loss);
    CHECK(sacc == acc, "session accuracy %.4f != evaluate %.4f", sacc, acc);
    CHECK(fabs(sloss - loss) < 1e-4 * fmax(1.0, loss), "session loss %.6f != evaluate %.6f", sloss,
          loss);
    pillar_trainer_destroy(t);
    pillar_train_options_destroy(o);
    pl_model_free(m);
    free_data(&tr);
    free_data(&te);
}

/* Same seed and threads: every step's loss identical to the bit; checkpoint, restore. */
static void test_reproducible(void) {
    make_centres(3, 8);
    dataset tr = make_data(2048, 8, 3, 2.0);
    for (int threads = 1; threads <= 2; threads++) {
        float a[60], b[60], c[30];
        pillar_trainer *t1 = NULL, *t2 = NULL;
        pl_model *m = mlp(8, 24, 3, true);
        pillar_train_options *o = options(PILLAR_OPTIMIZER_ADAM, 1e-2f, 0, threads, 99);
        OK(pillar_trainer_create(m, o, &t1));
        OK(pillar_trainer_create(m, o, &t2));
        if (!t1 || !t2) return;
        train(t1, &tr, 37, 0, 60, 0, a);
        train(t2, &tr, 37, 0, 30, 0, b);
        char path[512];
        snprintf(path, sizeof path, "%s/ckpt.bin", tmpdir);
        OK(pillar_trainer_checkpoint(t2, path));
        train(t2, &tr, 37, 30, 30, 0, b + 30);
        CHECK(!memcmp(a, b, sizeof a), "threads %d: two seeded runs differ", threads);
        /* restore into a fresh trainer: the same 30 next losses (the data cycle restarts,
         * so compare with a run that replays batches 30..59 from a restored state) */
        pillar_trainer *t3 = NULL;
        OK(pillar_trainer_create(m, o, &t3));
        OK(pillar_trainer_restore(t3, path));
        OK(pillar_trainer_restore(t2, path));
        float d[30];
        for (int k = 0; k < 30; k++) { /* batches 30..59 */
            int64_t off = ((k + 30) * 37) % (tr.n - 37 + 1);
            pillar_tensor *x, *y;
            batch_tensors(&tr, off, 37, 0, &x, &y);
            OK(pillar_trainer_step(t3, x, y, &c[k], NULL));
            OK(pillar_trainer_step(t2, x, y, &d[k], NULL));
            pillar_tensor_destroy(x);
            pillar_tensor_destroy(y);
        }
        CHECK(!memcmp(c, b + 30, sizeof c), "threads %d: restored run differs from the original",
              threads);
        CHECK(!memcmp(c, d, sizeof c), "threads %d: restore into the same trainer differs",
              threads);
        printf("reproducible at %d thread(s): 60 identical losses, restore resumes exactly (last "
               "%.6f)\n",
               threads, a[59]);
        pillar_trainer_destroy(t1);
        pillar_trainer_destroy(t2);
        pillar_trainer_destroy(t3);
        pillar_train_options_destroy(o);
        pl_model_free(m);
    }
    free_data(&tr);
}

static void test_cnn_batchnorm(void) {
    dataset tr = make_images(2048), te = make_images(512);
    pl_model *m = cnn(4);
    pillar_train_options *o = options(PILLAR_OPTIMIZER_ADAMW, 5e-3f, 0, 2, 3);
    OK(pillar_train_options_set_optimizer(o, PILLAR_OPTIMIZER_ADAMW, 5e-3f, 0, 1e-2f));
    pillar_trainer *t = NULL;
    OK(pillar_trainer_create(m, o, &t));
    if (!t) return;
    train(t, &tr, 32, 0, 200, 1, NULL);
    float loss;
    double acc = accuracy(t, &te, 1, &loss);
    char path[512];
    snprintf(path, sizeof path, "%s/cnn.onnx", tmpdir);
    OK(pillar_trainer_save(t, path));
    double sacc, sloss;
    session_check(path, &te, 1, &sacc, &sloss);
    printf("cnn + batchnorm: accuracy %.4f loss %.5f; saved model in a session: %.4f, %.5f\n", acc,
           loss, sacc, sloss);
    CHECK(acc > 0.9, "CNN accuracy %.4f", acc);
    CHECK(sacc == acc && fabs(sloss - loss) < 1e-3 * fmax(1.0, loss),
          "session results differ from evaluate");
    /* the saved BatchNorm is the inference form: no training_mode left on */
    pillar_model *mm = NULL;
    OK(pillar_model_load(path, &mm));
    if (mm) {
        for (int i = 0; i < mm->graph->nnodes; i++)
            if (!strcmp(mm->graph->nodes[i].op_type, "BatchNormalization"))
                CHECK(pl_attr_int(&mm->graph->nodes[i], "training_mode", 0) == 0 &&
                          mm->graph->nodes[i].nout == 1,
                      "saved BatchNormalization is not in inference form");
        pillar_model_destroy(mm);
    }
    pillar_trainer_destroy(t);
    pillar_train_options_destroy(o);
    pl_model_free(m);
    free_data(&tr);
    free_data(&te);
}

static void test_prune(void) {
    make_centres(4, 16);
    dataset tr = make_data(4096, 16, 4, 1.0), te = make_data(1024, 16, 4, 1.0);
    pl_model *m = mlp(16, 64, 4, false);
    for (int block = 0; block < 2; block++) {
        pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.05f, 0.9f, 2, 5);
        if (block) OK(pillar_train_options_set_prune_block(o, 4, 4));
        pillar_trainer *t = NULL;
        OK(pillar_trainer_create(m, o, &t));
        if (!t) return;
        train(t, &tr, 32, 0, 100, 0, NULL);
        CHECK(pillar_trainer_sparsity(t) < 0.01, "dense model sparsity %.3f",
              pillar_trainer_sparsity(t));
        OK(pillar_trainer_prune(t, 0.5f));
        double s1 = pillar_trainer_sparsity(t);
        train(t, &tr, 32, 0, 100, 0, NULL);
        double s2 = pillar_trainer_sparsity(t);
        OK(pillar_trainer_prune(t, 0.75f));
        train(t, &tr, 32, 0, 100, 0, NULL);
        double s3 = pillar_trainer_sparsity(t);
        float loss;
        double acc = accuracy(t, &te, 0, &loss);
        printf("prune %s: sparsity %.3f, %.3f after training, %.3f at 75%%; accuracy %.4f\n",
               block ? "4x4 blocks" : "1x1", s1, s2, s3, acc);
        CHECK(fabs(s1 - 0.5) < 0.02 && s2 >= s1 - 1e-9 && fabs(s3 - 0.75) < 0.02,
              "sparsities %.3f %.3f %.3f", s1, s2, s3);
        CHECK(acc > 0.9, "pruned accuracy %.4f", acc);
        char path[512];
        snprintf(path, sizeof path, "%s/pruned.onnx", tmpdir);
        OK(pillar_trainer_save(t, path));
        pillar_model *mm = NULL;
        OK(pillar_model_load(path, &mm));
        if (mm) { /* the zeros are in the file */
            const pl_graph *g = mm->graph;
            int id = pl_graph_find_value(g, "fc1.weight");
            int64_t z = 0, n = id >= 0 ? pl_numel(&g->values[id].t) : 0;
            for (int64_t i = 0; i < n; i++) z += ((const float *)g->values[id].t.data)[i] == 0.0f;
            CHECK(n > 0 && fabs((double)z / (double)n - 0.75) < 0.03,
                  "saved fc1.weight sparsity %lld/%lld", (long long)z, (long long)n);
            if (block && n > 0) { /* whole 4x4 blocks */
                const float *w = g->values[id].t.data;
                int64_t bad = 0;
                for (int64_t r = 0; r < 64; r += 4)
                    for (int64_t c = 0; c < 16; c += 4) {
                        int zz = 0;
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++) zz += w[(r + i) * 16 + c + j] == 0.0f;
                        bad += zz != 0 && zz != 16;
                    }
                CHECK(bad == 0, "%lld blocks partially pruned", (long long)bad);
            }
            pillar_model_destroy(mm);
        }
        pillar_trainer_destroy(t);
        pillar_train_options_destroy(o);
    }
    pl_model_free(m);
    free_data(&tr);
    free_data(&te);
}

/* in -> Gemm fc1 -> Relu -> MatMul fc2 -> Relu -> Gemm fc3 -> Relu -> Gemm fc4: four
 * prunable layers, the second a MatMul with its weight as input 1. */
static pl_model *deep_mlp(void) {
    int x = begin_model(2, D(-1, 16));
    int y = node("Gemm", 3, (int[]){x, weight("fc1.weight", 2, D(32, 16), 0.4, 0), weight("fc1.bias", 1, D(32), 0, 0)});
    attr("transB", -1, D(1));
    y = node("Relu", 1, &y);
    y = node("MatMul", 2, (int[]){y, weight("fc2.weight", 2, D(32, 24), 0.3, 0)});
    y = node("Relu", 1, &y);
    y = node("Gemm", 3, (int[]){y, weight("fc3.weight", 2, D(20, 24), 0.3, 0), weight("fc3.bias", 1, D(20), 0, 0)});
    attr("transB", -1, D(1));
    y = node("Relu", 1, &y);
    y = node("Gemm", 3, (int[]){y, weight("fc4.weight", 2, D(4, 20), 0.3, 0), weight("fc4.bias", 1, D(4), 0, 0)});
    attr("transB", -1, D(1));
    return finish_model(y, "deep_mlp");
}

/* Fraction of zeros of weight `name` in the model saved at `path`; -1 if missing. */
static double saved_sparsity(const char *path, const char *name) {
    pillar_model *mm = NULL;
    OK(pillar_model_load(path, &mm));
    if (!mm) return -1;
    int id = pl_graph_find_value(mm->graph, name);
    double r = -1;
    if (id >= 0 && mm->graph->values[id].t.data) {
        const pl_tensor *w = &mm->graph->values[id].t;
        int64_t z = 0, n = pl_numel(w);
        for (int64_t i = 0; i < n; i++) z += ((const float *)w->data)[i] == 0.0f;
        r = (double)z / (double)n;
    }
    pillar_model_destroy(mm);
    return r;
}

/* Which layers pruning touches: all by default; with keep_first_last the first (fc1) and
 * last (fc4) stay exactly dense while the others reach the target, through training
 * steps too; names in the skip list (a node or a weight) stay dense; a name that is not
 * a prunable layer fails trainer creation with a message naming it. */
static void test_prune_skip(void) {
    make_centres(4, 16);
    dataset tr = make_data(512, 16, 4, 1.0);
    pl_model *m = deep_mlp();
    const char *names[4] = {"fc1.weight", "fc2.weight", "fc3.weight", "fc4.weight"};
    const char *mm_node = m->graph->nodes[2].name; /* the MatMul */
    struct {
        int keep;
        const char *skip;
        int dense[4];
    } cases[] = {
        {0, NULL, {0, 0, 0, 0}},
        {1, NULL, {1, 0, 0, 1}},
        {1, " fc3.weight ", {1, 0, 1, 1}},
        {0, mm_node, {0, 1, 0, 0}},
        {1, "", {1, 0, 0, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.05f, 0.9f, 2, 3);
        OK(pillar_train_options_set_prune_skip(o, cases[c].keep, cases[c].skip));
        pillar_trainer *t = NULL;
        OK(pillar_trainer_create(m, o, &t));
        if (!t) {
            pillar_train_options_destroy(o);
            continue;
        }
        OK(pillar_trainer_prune(t, 0.8f));
        CHECK(fabs(pillar_trainer_sparsity(t) - 0.8) < 0.01, "case %zu: sparsity %.4f over the pruned layers", c,
              pillar_trainer_sparsity(t));
        train(t, &tr, 32, 0, 5, 0, NULL);
        char path[512];
        snprintf(path, sizeof path, "%s/skip%zu.onnx", tmpdir, c);
        OK(pillar_trainer_save(t, path));
        for (int k = 0; k < 4; k++) {
            double sp = saved_sparsity(path, names[k]);
            if (cases[c].dense[k])
                CHECK(sp == 0.0, "case %zu: %s should stay dense, sparsity %.4f", c, names[k], sp);
            else
                CHECK(fabs(sp - 0.8) < 0.01, "case %zu: %s sparsity %.4f, want 0.8", c, names[k], sp);
        }
        pillar_trainer_destroy(t);
        pillar_train_options_destroy(o);
    }
    /* names that are not prunable layers */
    const char *bad[] = {"fc9", "fc1.bias", m->graph->nodes[1].name /* a Relu */, "fc2.weight,nope"};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.05f, 0.9f, 1, 3);
        OK(pillar_train_options_set_prune_skip(o, 1, bad[b]));
        pillar_trainer *t = NULL;
        pillar_status st = pillar_trainer_create(m, o, &t);
        const char *want = b == 3 ? "'nope'" : bad[b];
        CHECK(st == PILLAR_ERR_ARGUMENT && !t && strstr(pillar_last_error(), want) &&
                  strstr(pillar_last_error(), "prune skip"),
              "skip '%s': status %d, message '%s'", bad[b], st, pillar_last_error());
        pillar_trainer_destroy(t);
        pillar_train_options_destroy(o);
    }
    CHECK(pillar_train_options_set_prune_skip(NULL, 1, NULL) == PILLAR_ERR_ARGUMENT, "NULL options accepted");
    pl_model_free(m);
    free_data(&tr);
}

static void test_bf16_and_losses(void) {
    make_centres(4, 16);
    dataset tr = make_data(4096, 16, 4, 1.5), te = make_data(1024, 16, 4, 1.5);
    pl_model *m = mlp(16, 32, 4, false);
    pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.05f, 0.9f, 2, 1);
    OK(pillar_train_options_set_precision(o, PILLAR_PRECISION_BF16));
    pillar_trainer *t = NULL;
    OK(pillar_trainer_create(m, o, &t));
    if (t) {
        train(t, &tr, 32, 0, 384, 0, NULL);
        float loss;
        double acc = accuracy(t, &te, 0, &loss);
        printf("mlp bf16 (%s): accuracy %.4f\n", pillar_cpu_isa(), acc);
        CHECK(acc > 0.95, "BF16 accuracy %.4f", acc);
        pillar_trainer_destroy(t);
    }
    /* MSE on one-hot targets */
    OK(pillar_train_options_set_precision(o, PILLAR_PRECISION_FP32));
    OK(pillar_train_options_set_loss(o, PILLAR_LOSS_MSE, "logits"));
    t = NULL;
    OK(pillar_trainer_create(m, o, &t));
    if (t) {
        float *oh = calloc((size_t)tr.n * 4, sizeof(float));
        for (int64_t i = 0; i < tr.n; i++) oh[i * 4 + tr.y[i]] = 1.0f;
        int64_t hits = 0, seen = 0;
        for (int k = 0; k < 300; k++) {
            int64_t off = (k * 32) % (tr.n - 32);
            pillar_tensor *x, *y;
            pillar_tensor_wrap(PILLAR_FLOAT32, 2, D(32, 16), tr.x + off * 16, &x);
            pillar_tensor_wrap(PILLAR_FLOAT32, 2, D(32, 4), oh + off * 4, &y);
            int64_t c = 0;
            OK(pillar_trainer_step(t, x, y, NULL, &c));
            if (k >= 250) hits += c, seen += 32;
            pillar_tensor_destroy(x);
            pillar_tensor_destroy(y);
        }
        printf("mlp mse: last 50 batches %.4f correct\n", (double)hits / (double)seen);
        CHECK((double)hits / (double)seen > 0.9, "MSE training accuracy %.4f",
              (double)hits / (double)seen);
        free(oh);
        pillar_trainer_destroy(t);
    }
    pillar_train_options_destroy(o);
    pl_model_free(m);
    free_data(&tr);
    free_data(&te);
}

/* Which initializers train: MatMul weights and the bias added after them do; an input
 * normalisation (x - mean) * scale and the scalar constants of a decomposed Gelu do not. */
static void test_param_choice(void) {
    make_centres(3, 8);
    dataset tr = make_data(512, 8, 3, 1.0);
    int x = begin_model(2, D(-1, 8));
    int y = node("Sub", 2, (int[]){x, weight("norm.mean", 1, D(8), 0, 0.1)});
    y = node("Mul", 2, (int[]){y, weight("norm.scale", 1, D(8), 0, 0.9)});
    y = node("MatMul", 2, (int[]){y, weight("fc1.weight", 2, D(8, 16), 0.5, 0)});
    y = node("Add", 2, (int[]){y, weight("fc1.bias", 1, D(16), 0, 0)});
    int h = node("Mul", 2, (int[]){y, weight("half", 0, NULL, 0, 0.5)}); /* Gelu as exported */
    int e = node("Div", 2, (int[]){y, weight("sqrt2", 0, NULL, 0, 1.4142135f)});
    e = node("Erf", 1, &e);
    e = node("Add", 2, (int[]){e, weight("one", 0, NULL, 0, 1.0)});
    y = node("Mul", 2, (int[]){h, e});
    y = node("MatMul", 2, (int[]){y, weight("fc2.weight", 2, D(16, 3), 0.5, 0)});
    pl_model *m = finish_model(y, "params");
    pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.1f, 0.9f, 1, 0);
    pillar_trainer *t = NULL;
    OK(pillar_trainer_create(m, o, &t));
    if (t) {
        train(t, &tr, 32, 0, 20, 0, NULL);
        char path[512];
        snprintf(path, sizeof path, "%s/params.onnx", tmpdir);
        OK(pillar_trainer_save(t, path));
        pillar_model *mm = NULL;
        OK(pillar_model_load(path, &mm));
        const char *names[] = {"norm.mean", "norm.scale", "fc1.weight", "fc1.bias",
                               "half",      "sqrt2",      "one",        "fc2.weight"};
        const bool trained[] = {false, false, true, true, false, false, false, true};
        for (int k = 0; mm && k < 8; k++) {
            int a = pl_graph_find_value(m->graph, names[k]),
                b = pl_graph_find_value(mm->graph, names[k]);
            bool changed = a < 0 || b < 0 ||
                           memcmp(m->graph->values[a].t.data, mm->graph->values[b].t.data,
                                  pl_nbytes(&m->graph->values[a].t));
            CHECK(changed == trained[k], "'%s' %s", names[k],
                  trained[k] ? "did not train" : "changed but should stay fixed");
        }
        printf("parameters: MatMul weights and bias train; normalisation and Gelu constants stay "
               "fixed\n");
        pillar_model_destroy(mm);
        pillar_trainer_destroy(t);
    }
    pillar_train_options_destroy(o);
    pl_model_free(m);
    free_data(&tr);
}

/* An embedding model fed int64 token ids: Gather -> ReduceMean -> Gemm. The class of a
 * sequence is the class of its most frequent token group. */
static void test_embedding(void) {
    G = pl_graph_new();
    int x = val("input");
    G->values[x].kind = PL_VALUE_INPUT;
    pl_tensor_set_shape(&G->values[x].t, PL_I64, 2, D(-1, 6));
    G->inputs = malloc(sizeof(int));
    G->inputs[0] = x;
    G->ninputs = 1;
    int y = node("Gather", 2, (int[]){weight("embed", 2, D(40, 8), 0.5, 0), x});
    y = node("ReduceMean", 1, &y);
    attr("axes", 1, D(1));
    attr("keepdims", -1, D(0));
    y = node("Gemm", 3,
             (int[]){y, weight("fc.weight", 2, D(4, 8), 0.5, 0), weight("fc.bias", 1, D(4), 0, 0)});
    attr("transB", -1, D(1));
    pl_model *m = finish_model(y, "embed");
    m->opsets[0].version = 13;
    pillar_train_options *o = options(PILLAR_OPTIMIZER_ADAM, 0.05f, 0, 2, 1);
    pillar_trainer *t = NULL;
    OK(pillar_trainer_create(m, o, &t));
    if (t) {
        int64_t ids[256 * 6], lab[256];
        for (int i = 0; i < 256; i++) {
            lab[i] = (int64_t)(ur() * 4);
            for (int j = 0; j < 6; j++)
                ids[i * 6 + j] = j < 4 ? lab[i] * 10 + (int64_t)(ur() * 10) : (int64_t)(ur() * 40);
        }
        pillar_tensor *xt, *yt;
        pillar_tensor_wrap(PILLAR_INT64, 2, D(256, 6), ids, &xt);
        pillar_tensor_wrap(PILLAR_INT64, 1, D(256), lab, &yt);
        for (int k = 0; k < 60; k++) OK(pillar_trainer_step(t, xt, yt, NULL, NULL));
        float loss;
        int64_t correct = 0;
        OK(pillar_trainer_evaluate(t, xt, yt, &loss, &correct));
        printf("embedding (int64 ids, Gather): accuracy %.4f\n", (double)correct / 256.0);
        CHECK(correct > 0.95 * 256, "embedding model accuracy %lld/256", (long long)correct);
        ids[5] = 40; /* an out-of-range id is an input error, not a crash */
        CHECK(pillar_trainer_step(t, xt, yt, NULL, NULL) == PILLAR_ERR_INPUT, "bad id: %s",
              pillar_last_error());
        pillar_tensor_destroy(xt);
        pillar_tensor_destroy(yt);
        pillar_trainer_destroy(t);
    }
    pillar_train_options_destroy(o);
    pl_model_free(m);
}

static void test_errors(void) {
    pl_model *m = mlp(4, 8, 3, false);
    pillar_train_options *o = options(PILLAR_OPTIMIZER_SGD, 0.1f, 0, 1, 0);
    pillar_trainer *t = NULL;
    CHECK(pillar_trainer_create(NULL, o, &t) == PILLAR_ERR_ARGUMENT, "NULL model accepted");
    CHECK(pillar_train_options_set_batch(o, 0) == PILLAR_ERR_ARGUMENT, "batch 0 accepted");
    CHECK(pillar_train_options_set_optimizer(o, PILLAR_OPTIMIZER_SGD, -1, 0, 0) ==
              PILLAR_ERR_ARGUMENT,
          "lr -1 accepted");
    OK(pillar_train_options_set_loss(o, PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY, "nope"));
    CHECK(pillar_trainer_create(m, o, &t) == PILLAR_ERR_ARGUMENT &&
              strstr(pillar_last_error(), "nope"),
          "unknown loss output: %s", pillar_last_error());
    OK(pillar_train_options_set_loss(o, PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY, NULL));
    OK(pillar_trainer_create(m, o, &t));
    if (!t) return;
    float x[8 * 4] = {0};
    int64_t y[8] = {0, 1, 2, 0, 1, 2, 0, 5};
    pillar_tensor *tx, *ty, *tbad;
    pillar_tensor_wrap(PILLAR_FLOAT32, 2, D(8, 4), x, &tx);
    pillar_tensor_wrap(PILLAR_INT64, 1, D(8), y, &ty);
    pillar_status st = pillar_trainer_step(t, tx, ty, NULL, NULL);
    CHECK(st == PILLAR_ERR_INPUT && strstr(pillar_last_error(), "record 7"), "bad label: %d %s", st,
          pillar_last_error());
    y[7] = 1;
    pillar_tensor_wrap(PILLAR_FLOAT32, 2, D(4, 8), x, &tbad);
    st = pillar_trainer_step(t, tbad, ty, NULL, NULL);
    CHECK(st == PILLAR_ERR_INPUT, "wrong input shape: %d %s", st, pillar_last_error());
    pillar_tensor_destroy(tbad);
    pillar_tensor_wrap(PILLAR_INT64, 1, D(7), y, &tbad);
    st = pillar_trainer_step(t, tx, tbad, NULL, NULL);
    CHECK(st == PILLAR_ERR_INPUT, "label count: %d %s", st, pillar_last_error());
    pillar_tensor_destroy(tbad);
    OK(pillar_trainer_step(t, tx, ty, NULL, NULL));
    CHECK(pillar_trainer_restore(t, "/nonexistent/ckpt") == PILLAR_ERR_IO,
          "restore of a missing file");
    CHECK(pillar_trainer_prune(t, 1.5f) == PILLAR_ERR_ARGUMENT, "sparsity 1.5 accepted");
    CHECK(pillar_trainer_set_lr(t, NAN) == PILLAR_ERR_ARGUMENT, "lr NaN accepted");
    pillar_trainer_destroy(t);
    pillar_trainer_destroy(NULL);
    pillar_train_options_destroy(NULL);
    pillar_tensor_destroy(tx);
    pillar_tensor_destroy(ty);
    pillar_train_options_destroy(o);
    pl_model_free(m);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pillar_test_trainer_%d", (int)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
    if (system(cmd) != 0) return 2;
    double t0 = now();
    test_mlp_fit_and_save();
    test_reproducible();
    test_cnn_batchnorm();
    test_prune();
    test_prune_skip();
    test_bf16_and_losses();
    test_param_choice();
    test_embedding();
    test_errors();
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    printf("%s (%.1f s)\n", failures ? "FAILED" : "all passed", now() - t0);
    return failures ? 1 : 0;
}
