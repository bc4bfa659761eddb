/* test_zoo.c -- the model zoo: each architecture builds, has torchvision's node and
 * parameter counts (those of bench/models/export.py's exports), saves as ONNX that
 * loads again (and that onnx.checker accepts when /usr/bin/python3 has onnx), runs at
 * batch 2 with the right output shape, and is the same model for the same seed. Also
 * the argument errors of pillar_model_zoo / pillar_model_save, and pillar_cpu_isa. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/ir.h"
#include "pillar.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        pillar_status st_ = (call);                                                                \
        CHECK(st_ == PILLAR_OK, "%s: %s", #call, pillar_last_error());                             \
    } while (0)
#define CHECK_ERR(call, code, substr)                                                              \
    do {                                                                                           \
        pillar_status st_ = (call);                                                                \
        CHECK(st_ == (code), "%s returned %d, expected %d (%s)", #call, st_, code,                 \
              pillar_last_error());                                                                \
        CHECK(strstr(pillar_last_error(), substr) != NULL, "message '%s' lacks '%s'",              \
              pillar_last_error(), substr);                                                        \
    } while (0)

static char tmpdir[256];
static int have_checker = -1;

/* Weight elements (initializers) and nodes of a model's graph. */
static void counts(const pillar_model *m, int64_t *params, int *nodes) {
    const pl_graph *g = m->graph;
    *params = 0;
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i].kind == PL_VALUE_CONST) *params += pl_numel(&g->values[i].t);
    *nodes = g->nnodes;
}

/* Runs m at batch 2 on a fixed input; returns the logits (owned) or NULL. */
static pillar_tensor *run_batch2(const pillar_model *m, const char *what) {
    const char *name = NULL;
    size_t nd = 0;
    const int64_t *md = NULL;
    pillar_dtype dt;
    if (pillar_model_input(m, 0, &name, &dt, &nd, &md) != PILLAR_OK || nd < 2 || nd > 8) {
        CHECK(0, "%s: no usable input", what);
        return NULL;
    }
    int64_t dims[8];
    dims[0] = 2;
    for (size_t d = 1; d < nd; d++) dims[d] = md[d];
    pillar_options *o = NULL;
    pillar_session *s = NULL;
    pillar_tensor *x = NULL, *y = NULL;
    CHECK_OK(pillar_options_create(&o));
    CHECK_OK(pillar_options_set_dim(o, "batch", 2));
    CHECK_OK(pillar_options_set_threads(o, 2));
    pillar_status st = pillar_session_create(m, o, &s);
    CHECK(st == PILLAR_OK, "%s: session: %s", what, pillar_last_error());
    if (st == PILLAR_OK && pillar_tensor_create(PILLAR_FLOAT32, nd, dims, NULL, &x) == PILLAR_OK) {
        float *p = pillar_tensor_data(x);
        for (int64_t i = 0; i < pillar_tensor_numel(x); i++)
            p[i] = (float)((i * 7919) % 1000) / 1000.0f;
        st = pillar_session_run(s, 1, &name, (const pillar_tensor *const *)&x, 1, NULL, &y);
        CHECK(st == PILLAR_OK, "%s: run: %s", what, pillar_last_error());
        if (st != PILLAR_OK) y = NULL;
    }
    pillar_tensor_destroy(x);
    pillar_session_destroy(s);
    pillar_options_destroy(o);
    return y;
}

static bool same_tensor(const pillar_tensor *a, const pillar_tensor *b) {
    return a && b && pillar_tensor_numel(a) == pillar_tensor_numel(b) &&
           memcmp(pillar_tensor_data(a), pillar_tensor_data(b),
                  (size_t)pillar_tensor_numel(a) * sizeof(float)) == 0;
}

static void onnx_check(const char *path) {
    if (have_checker < 0)
        have_checker = system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
    if (!have_checker) return;
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "/usr/bin/python3 -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
        "full_check=True)' '%s'",
        path);
    CHECK(system(cmd) == 0, "onnx.checker rejects %s", path);
}

/* One architecture at a small size: save, reload, run, determinism. */
static void check_arch(const char *arch, const int64_t *chw, int64_t classes) {
    int before = failures;
    pillar_model *m = NULL, *again = NULL, *other = NULL, *loaded = NULL;
    pillar_status st = pillar_model_zoo(arch, chw, classes, 7, &m);
    bool small = strcmp(arch, "resnet50") && strcmp(arch, "mobilenet_v2");
    if (small && st == PILLAR_ERR_ARGUMENT && strstr(pillar_last_error(), "unknown architecture")) {
        printf("skip %s: %s\n", arch, pillar_last_error());
        return;
    }
    CHECK(st == PILLAR_OK, "zoo %s: %s", arch, pillar_last_error());
    if (st != PILLAR_OK) return;
    /* the interface the header promises */
    const char *name = NULL;
    size_t nd = 0;
    const int64_t *dims = NULL;
    pillar_dtype dt = PILLAR_UNDEFINED;
    CHECK(pillar_model_input_count(m) == 1 && pillar_model_output_count(m) == 1, "%s: io counts",
          arch);
    CHECK_OK(pillar_model_input(m, 0, &name, &dt, &nd, &dims));
    CHECK(name && strcmp(name, "input") == 0 && dt == PILLAR_FLOAT32 && nd >= 2 && dims[0] == -1,
          "%s: input is '%s' rank %zu", arch, name ? name : "", nd);
    const char *sym = pillar_model_input_dim_name(m, 0, 0);
    CHECK(sym && strcmp(sym, "batch") == 0, "%s: batch symbol '%s'", arch, sym ? sym : "(null)");
    CHECK_OK(pillar_model_output(m, 0, &name, &dt, &nd, &dims));
    CHECK(name && strcmp(name, "logits") == 0 && nd == 2 && dims[1] == classes, "%s: output '%s'",
          arch, name ? name : "");

    char path[512];
    snprintf(path, sizeof path, "%s/%s.onnx", tmpdir, arch);
    CHECK_OK(pillar_model_save(m, path));
    CHECK_OK(pillar_model_load(path, &loaded));
    onnx_check(path);
    unlink(path);

    pillar_tensor *y = run_batch2(m, arch);
    if (y) {
        CHECK(pillar_tensor_ndim(y) == 2 && pillar_tensor_dims(y)[0] == 2 &&
                  pillar_tensor_dims(y)[1] == classes,
              "%s: output shape", arch);
        const float *p = pillar_tensor_data(y);
        bool finite = true, varied = false;
        for (int64_t i = 0; i < pillar_tensor_numel(y); i++) {
            finite &= isfinite(p[i]) != 0;
            varied |= p[i] != p[0];
        }
        CHECK(finite && varied, "%s: logits not finite or all equal", arch);
    }
    if (loaded) {
        pillar_tensor *y2 = run_batch2(loaded, arch);
        CHECK(same_tensor(y, y2), "%s: the saved and reloaded model gives other logits", arch);
        pillar_tensor_destroy(y2);
    }
    CHECK_OK(pillar_model_zoo(arch, chw, classes, 7, &again));
    CHECK_OK(pillar_model_zoo(arch, chw, classes, 8, &other));
    if (again && other) {
        pillar_tensor *ya = run_batch2(again, arch), *yo = run_batch2(other, arch);
        CHECK(same_tensor(y, ya), "%s: same seed, other logits", arch);
        CHECK(yo && !same_tensor(y, yo), "%s: another seed gives the same logits", arch);
        pillar_tensor_destroy(ya);
        pillar_tensor_destroy(yo);
    }
    pillar_tensor_destroy(y);
    pillar_model_destroy(m);
    pillar_model_destroy(again);
    pillar_model_destroy(other);
    pillar_model_destroy(loaded);
    if (failures == before) printf("ok %s\n", arch);
}

/* The full-size ImageNet models against the exports of torchvision's models (pillar
 * inspect of bench/models/export.py's files: ResNet-50 122 nodes and 25,530,472
 * parameters, MobileNetV2 100 nodes (plus 70 Constant nodes for Clip bounds, here two
 * shared initializers) and 3,487,816 parameters + 2). */
static void check_counts(void) {
    static const struct {
        const char *name;
        int nodes;
        int64_t params;
    } want[] = {{"resnet50", 122, 25530472}, {"mobilenet_v2", 100, 3487816 + 2}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        pillar_model *m = NULL;
        CHECK_OK(pillar_model_zoo(want[i].name, NULL, 0, 0, &m));
        if (!m) continue;
        int64_t params;
        int nodes;
        counts(m, &params, &nodes);
        CHECK(nodes == want[i].nodes && params == want[i].params, "%s: %d nodes, %lld params",
              want[i].name, nodes, (long long)params);
        const int64_t *dims;
        size_t nd;
        CHECK_OK(pillar_model_input(m, 0, NULL, NULL, &nd, &dims));
        CHECK(nd == 4 && dims[1] == 3 && dims[2] == 224 && dims[3] == 224, "%s: default input",
              want[i].name);
        CHECK_OK(pillar_model_output(m, 0, NULL, NULL, &nd, &dims));
        CHECK(nd == 2 && dims[1] == 1000, "%s: default classes", want[i].name);
        pillar_model_destroy(m);
    }
}

static void check_errors(void) {
    pillar_model *m = NULL;
    int64_t bad[3] = {3, 0, 32}, huge[3] = {3, 32, 1 << 20}, wide[3] = {5000, 8, 8};
    CHECK_ERR(pillar_model_zoo("nope", NULL, 0, 0, &m), PILLAR_ERR_ARGUMENT,
              "unknown architecture 'nope'");
    CHECK_ERR(pillar_model_zoo(NULL, NULL, 0, 0, &m), PILLAR_ERR_ARGUMENT, "name");
    CHECK_ERR(pillar_model_zoo("resnet50", NULL, 0, 0, NULL), PILLAR_ERR_ARGUMENT, "out");
    CHECK_ERR(pillar_model_zoo("resnet50", bad, 0, 0, &m), PILLAR_ERR_ARGUMENT, "input H = 0");
    CHECK_ERR(pillar_model_zoo("mobilenet_v2", huge, 0, 0, &m), PILLAR_ERR_ARGUMENT, "input W");
    CHECK_ERR(pillar_model_zoo("resnet50", wide, 0, 0, &m), PILLAR_ERR_ARGUMENT, "input C = 5000");
    CHECK_ERR(pillar_model_zoo("resnet50", NULL, -3, 0, &m), PILLAR_ERR_ARGUMENT, "classes");
    CHECK(m == NULL, "a failed call set *out");
    CHECK_ERR(pillar_model_save(NULL, "x.onnx"), PILLAR_ERR_ARGUMENT, "model");
    int64_t chw[3] = {1, 8, 8};
    CHECK_OK(pillar_model_zoo("mobilenet_v2", chw, 3, 0, &m));
    if (m) {
        CHECK_ERR(pillar_model_save(m, NULL), PILLAR_ERR_ARGUMENT, "path");
        CHECK_ERR(pillar_model_save(m, "/nonexistent-dir/x/m.onnx"), PILLAR_ERR_IO,
                  "nonexistent-dir");
    }
    pillar_model_destroy(m);
    const char *isa = pillar_cpu_isa();
    CHECK(isa && (!strcmp(isa, "ref") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512")),
          "isa '%s'", isa ? isa : "(null)");
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/pillar-zoo.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    check_counts();
    check_errors();
    int64_t img[3] = {3, 32, 32};
    check_arch("resnet50", img, 10);
    check_arch("mobilenet_v2", img, 10);
    int64_t gray[3] = {1, 28, 28};
    check_arch("mlp", gray, 10);
    check_arch("lenet", gray, 10);
    check_arch("resnet8", NULL, 10);
    rmdir(tmpdir);
    if (failures) {
        printf("%d checks FAILED\n", failures);
        return 1;
    }
    printf("all zoo checks passed\n");
    return 0;
}
