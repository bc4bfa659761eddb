/* test_api.c -- the public API on models built here with protobuf-c: exact results,
 * re-planning on new shapes, external data, and the error of every misuse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "pillar.h"

static int failures;
#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            failures++;                                                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                     \
            printf(__VA_ARGS__);                                                            \
            printf("\n");                                                                   \
        }                                                                                   \
    } while (0)
#define CHECK_ERR(call, code, substr)                                                       \
    do {                                                                                    \
        pillar_status st_ = (call);                                                         \
        CHECK(st_ == (code), "%s returned %d, expected %d (%s)", #call, st_, code,          \
              pillar_last_error());                                                         \
        CHECK(strstr(pillar_last_error(), substr) != NULL, "message '%s' lacks '%s'",       \
              pillar_last_error(), substr);                                                 \
    } while (0)

/* ---- building small models with the generated protobuf structs ---- */

static Onnx__ValueInfoProto *value_info(const char *name, int64_t d0, const char *sym, int64_t d1) {
    Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    Onnx__TypeProto *t = calloc(1, sizeof *t);
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = 1;
    Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = 2;
    sh->dim = calloc(2, sizeof *sh->dim);
    for (int i = 0; i < 2; i++) {
        sh->dim[i] = calloc(1, sizeof **sh->dim);
        onnx__tensor_shape_proto__dimension__init(sh->dim[i]);
        if (i == 0 && sym) {
            sh->dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            sh->dim[i]->dim_param = (char *)sym;
        } else {
            sh->dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            sh->dim[i]->dim_value = i == 0 ? d0 : d1;
        }
    }
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

static void free_value_info(Onnx__ValueInfoProto *v) {
    Onnx__TensorShapeProto *sh = v->type->tensor_type->shape;
    for (size_t i = 0; i < sh->n_dim; i++) free(sh->dim[i]);
    free(sh->dim);
    free(sh);
    free(v->type->tensor_type);
    free(v->type);
    free(v);
}

typedef struct {
    const char *op;
    const char *in[2];
    const char *out;
} node_spec;

/* y = op(x, W) for each node; W is a 3-element float initializer (stored externally
 * when `external` names a file). Returns the serialized model (malloc'd). */
static uint8_t *make_model(const node_spec *nodes, int nn, const char *sym, const char *external,
                           size_t *len) {
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    Onnx__OperatorSetIdProto ops;
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = (char *)"";
    ops.has_version = 1;
    ops.version = 13;
    Onnx__OperatorSetIdProto *opsp = &ops;
    m.n_opset_import = 1;
    m.opset_import = &opsp;
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)"test";
    m.graph = &g;
    Onnx__NodeProto np[4], *npp[4];
    char *ins[4][2], *outs[4][1];
    for (int i = 0; i < nn; i++) {
        onnx__node_proto__init(&np[i]);
        np[i].op_type = (char *)nodes[i].op;
        ins[i][0] = (char *)nodes[i].in[0];
        ins[i][1] = (char *)nodes[i].in[1];
        outs[i][0] = (char *)nodes[i].out;
        np[i].n_input = 2;
        np[i].input = ins[i];
        np[i].n_output = 1;
        np[i].output = outs[i];
        npp[i] = &np[i];
    }
    g.n_node = (size_t)nn;
    g.node = npp;
    Onnx__ValueInfoProto *in = value_info("x", 2, sym, 3), *out = value_info("y", 2, sym, 3);
    g.n_input = 1;
    g.input = &in;
    g.n_output = 1;
    g.output = &out;
    Onnx__TensorProto w;
    onnx__tensor_proto__init(&w);
    w.name = (char *)"W";
    int64_t wd[1] = {3};
    w.n_dims = 1;
    w.dims = wd;
    w.has_data_type = 1;
    w.data_type = 1;
    float wv[3] = {1.5f, -2.0f, 0.25f};
    Onnx__StringStringEntryProto kv[3], *kvp[3] = {&kv[0], &kv[1], &kv[2]};
    if (external) {
        w.has_data_location = 1;
        w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        for (int i = 0; i < 3; i++) onnx__string_string_entry_proto__init(&kv[i]);
        kv[0].key = (char *)"location";
        kv[0].value = (char *)external;
        kv[1].key = (char *)"offset";
        kv[1].value = (char *)"4";
        kv[2].key = (char *)"length";
        kv[2].value = (char *)"12";
        w.n_external_data = 3;
        w.external_data = kvp;
    } else {
        w.n_float_data = 3;
        w.float_data = wv;
    }
    Onnx__TensorProto *wp = &w;
    g.n_initializer = 1;
    g.initializer = &wp;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    onnx__model_proto__pack(&m, buf);
    free_value_info(in);
    free_value_info(out);
    return buf;
}

static const node_spec add_node[] = {{"Add", {"x", "W"}, "y"}};

static pillar_status run1(pillar_session *s, int64_t rows, const float *x, pillar_tensor **y) {
    int64_t dims[2] = {rows, 3};
    pillar_tensor *t;
    pillar_status st = pillar_tensor_wrap(PILLAR_FLOAT32, 2, dims, (void *)x, &t);
    if (st) return st;
    const char *name = "x";
    st = pillar_session_run(s, 1, &name, (const pillar_tensor *const *)&t, 1, NULL, y);
    pillar_tensor_destroy(t);
    return st;
}

static void test_add_and_replan(void) {
    size_t len;
    uint8_t *buf = make_model(add_node, 1, "N", NULL, &len);
    pillar_model *m = NULL;
    CHECK(pillar_model_load_memory(buf, len, "add.onnx", &m) == PILLAR_OK, "%s", pillar_last_error());
    free(buf);
    if (!m) return;
    CHECK(pillar_model_input_count(m) == 1 && pillar_model_output_count(m) == 1, "io counts");
    const char *name;
    size_t nd;
    const int64_t *dims;
    pillar_dtype dt;
    CHECK(pillar_model_input(m, 0, &name, &dt, &nd, &dims) == PILLAR_OK, "input info");
    CHECK(!strcmp(name, "x") && dt == PILLAR_FLOAT32 && nd == 2 && dims[0] == -1 && dims[1] == 3, "input x: N x 3");
    CHECK(pillar_model_input_dim_name(m, 0, 0) && !strcmp(pillar_model_input_dim_name(m, 0, 0), "N"), "symbol N");
    CHECK_ERR(pillar_model_input(m, 5, &name, NULL, NULL, NULL), PILLAR_ERR_ARGUMENT, "5");

    pillar_session *s = NULL;
    CHECK(pillar_session_create(m, NULL, &s) == PILLAR_OK, "%s", pillar_last_error());
    float x2[6] = {1, 2, 3, 4, 5, 6}, x3[9] = {0, 0, 0, 1, 1, 1, -1, -1, -1};
    pillar_tensor *y = NULL;
    CHECK(run1(s, 2, x2, &y) == PILLAR_OK, "%s", pillar_last_error());
    if (y) {
        const float *v = pillar_tensor_data(y);
        const float want[6] = {2.5f, 0, 3.25f, 5.5f, 3, 6.25f};
        CHECK(pillar_tensor_ndim(y) == 2 && pillar_tensor_dims(y)[0] == 2, "y shape");
        for (int i = 0; i < 6; i++) CHECK(v[i] == want[i], "y[%d] = %g, want %g", i, v[i], want[i]);
        pillar_tensor_destroy(y);
        y = NULL;
    }
    /* a new batch size re-plans */
    CHECK(run1(s, 3, x3, &y) == PILLAR_OK, "%s", pillar_last_error());
    if (y) {
        const float *v = pillar_tensor_data(y);
        CHECK(pillar_tensor_dims(y)[0] == 3 && v[0] == 1.5f && v[4] == -1.0f && v[8] == -0.75f, "y after re-plan");
        pillar_tensor_destroy(y);
    }
    /* misuse */
    int64_t bad[2] = {2, 4};
    float z[8] = {0};
    pillar_tensor *t;
    pillar_tensor_wrap(PILLAR_FLOAT32, 2, bad, z, &t);
    const char *nm = "x", *wrong = "nope";
    CHECK_ERR(pillar_session_run(s, 1, &nm, (const pillar_tensor *const *)&t, 1, NULL, &y), PILLAR_ERR_INPUT, "input 'x' has shape 2x4");
    CHECK_ERR(pillar_session_run(s, 1, &wrong, (const pillar_tensor *const *)&t, 1, NULL, &y), PILLAR_ERR_INPUT, "'nope' is not an input");
    CHECK_ERR(pillar_session_run(s, 0, NULL, NULL, 1, NULL, &y), PILLAR_ERR_INPUT, "input 'x' is not given");
    pillar_tensor_destroy(t);
    int64_t d3[2] = {2, 3};
    int32_t zi[6] = {0};
    pillar_tensor_wrap(PILLAR_INT32, 2, d3, zi, &t);
    CHECK_ERR(pillar_session_run(s, 1, &nm, (const pillar_tensor *const *)&t, 1, NULL, &y), PILLAR_ERR_INPUT, "must be float32, got int32");
    pillar_tensor_destroy(t);
    pillar_session_destroy(s);

    /* a fixed shape from the options, checked against the declaration */
    pillar_options *o;
    pillar_options_create(&o);
    int64_t fix[2] = {4, 3}, clash[2] = {4, 5};
    CHECK(pillar_options_set_shape(o, "x", 2, fix) == PILLAR_OK, "set_shape");
    CHECK(pillar_session_create(m, o, &s) == PILLAR_OK, "%s", pillar_last_error());
    CHECK(pillar_session_node_count(s) == 1, "one planned node, got %zu", pillar_session_node_count(s));
    CHECK(pillar_session_arena_bytes(s) >= 48, "arena holds y (%zu bytes)", pillar_session_arena_bytes(s));
    pillar_session_destroy(s);
    pillar_options_set_shape(o, "x", 2, clash);
    CHECK_ERR(pillar_session_create(m, o, &s), PILLAR_ERR_INPUT, "does not fit its declared shape");
    pillar_options_destroy(o);
    pillar_options_create(&o);
    pillar_options_set_shape(o, "q", 2, fix);
    CHECK_ERR(pillar_session_create(m, o, &s), PILLAR_ERR_ARGUMENT, "'q', which is not an input");
    pillar_options_destroy(o);
    pillar_model_destroy(m);
}

static void test_graph_errors(void) {
    size_t len;
    pillar_model *m = NULL;
    /* dangling edge */
    static const node_spec dangling[] = {{"Add", {"x", "ghost"}, "y"}};
    uint8_t *buf = make_model(dangling, 1, NULL, NULL, &len);
    CHECK_ERR(pillar_model_load_memory(buf, len, "d.onnx", &m), PILLAR_ERR_MODEL, "input 'ghost' is not produced");
    free(buf);
    /* cycle: a = b + W, b = a + W, y = a + x */
    static const node_spec cyc[] = {{"Add", {"b", "W"}, "a"}, {"Add", {"a", "W"}, "b"}, {"Add", {"a", "x"}, "y"}};
    buf = make_model(cyc, 3, NULL, NULL, &len);
    CHECK_ERR(pillar_model_load_memory(buf, len, "c.onnx", &m), PILLAR_ERR_MODEL, "cycle");
    free(buf);
    /* two producers */
    static const node_spec twice[] = {{"Add", {"x", "W"}, "y"}, {"Mul", {"x", "W"}, "y"}};
    buf = make_model(twice, 2, NULL, NULL, &len);
    CHECK_ERR(pillar_model_load_memory(buf, len, "t.onnx", &m), PILLAR_ERR_MODEL, "produced by two nodes");
    free(buf);
    /* unknown op: named with its node at session creation */
    static const node_spec unk[] = {{"FrobnicateX", {"x", "W"}, "y"}};
    buf = make_model(unk, 1, NULL, NULL, &len);
    CHECK(pillar_model_load_memory(buf, len, "u.onnx", &m) == PILLAR_OK, "%s", pillar_last_error());
    free(buf);
    pillar_session *s = NULL;
    CHECK_ERR(pillar_session_create(m, NULL, &s), PILLAR_ERR_UNSUPPORTED, "op 'FrobnicateX' is not supported");
    pillar_model_destroy(m);
    /* truncated file: every prefix is rejected cleanly */
    buf = make_model(add_node, 1, NULL, NULL, &len);
    int rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        m = NULL;
        if (pillar_model_load_memory(buf, cut, "cut.onnx", &m) != PILLAR_OK) rejected++;
        else {
            if (pillar_session_create(m, NULL, &s) == PILLAR_OK) pillar_session_destroy(s);
            pillar_model_destroy(m);
        }
    }
    CHECK(rejected > (int)len / 2, "most truncations rejected (%d of %zu)", rejected, len);
    free(buf);
    CHECK_ERR(pillar_model_load("/nonexistent/model.onnx", &m), PILLAR_ERR_IO, "/nonexistent/model.onnx");
    CHECK_ERR(pillar_model_load_memory("\x08\xff\xff\xff", 4, "junk.onnx", &m), PILLAR_ERR_MODEL, "junk.onnx");
}

static void test_external_data(void) {
    char dir[] = "/tmp/pillar_ext_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], data[256];
    snprintf(data, sizeof data, "%s/weights.bin", dir);
    FILE *f = fopen(data, "wb");
    float w[4] = {99, 1.5f, -2.0f, 0.25f}; /* offset 4: skip the first float */
    fwrite(w, sizeof w, 1, f);
    fclose(f);
    size_t len;
    uint8_t *buf = make_model(add_node, 1, NULL, "weights.bin", &len);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    f = fopen(path, "wb");
    fwrite(buf, len, 1, f);
    fclose(f);
    free(buf);
    pillar_model *m = NULL;
    pillar_session *s = NULL;
    CHECK(pillar_model_load(path, &m) == PILLAR_OK, "%s", pillar_last_error());
    if (m && pillar_session_create(m, NULL, &s) == PILLAR_OK) {
        float x[6] = {0};
        pillar_tensor *y = NULL;
        CHECK(run1(s, 2, x, &y) == PILLAR_OK, "%s", pillar_last_error());
        if (y) {
            const float *v = pillar_tensor_data(y);
            CHECK(v[0] == 1.5f && v[1] == -2.0f && v[5] == 0.25f, "external weights read at the offset");
        }
        pillar_tensor_destroy(y);
    }
    pillar_session_destroy(s);
    pillar_model_destroy(m);
    /* a location that climbs out of the model's folder is refused */
    buf = make_model(add_node, 1, NULL, "../etc/passwd", &len);
    f = fopen(path, "wb");
    fwrite(buf, len, 1, f);
    fclose(f);
    free(buf);
    CHECK_ERR(pillar_model_load(path, &m), PILLAR_ERR_MODEL, "must be a relative path");
    /* a data file that is too short */
    f = fopen(data, "wb");
    fwrite(w, 8, 1, f);
    fclose(f);
    buf = make_model(add_node, 1, NULL, "weights.bin", &len);
    f = fopen(path, "wb");
    fwrite(buf, len, 1, f);
    fclose(f);
    free(buf);
    CHECK_ERR(pillar_model_load(path, &m), PILLAR_ERR_MODEL, "is shorter than");
    unlink(data);
    unlink(path);
    rmdir(dir);
}

static void test_tensors(void) {
    pillar_tensor_destroy(NULL);
    pillar_model_destroy(NULL);
    pillar_session_destroy(NULL);
    pillar_options_destroy(NULL);
    pillar_tensor *t = NULL;
    int64_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_ERR(pillar_tensor_create(PILLAR_FLOAT32, 9, dims, NULL, &t), PILLAR_ERR_ARGUMENT, "at most 8");
    int64_t huge[3] = {1LL << 40, 1LL << 40, 1LL << 40};
    CHECK_ERR(pillar_tensor_create(PILLAR_FLOAT32, 3, huge, NULL, &t), PILLAR_ERR_ARGUMENT, "overflowing");
    int64_t neg[1] = {-3};
    CHECK_ERR(pillar_tensor_create(PILLAR_FLOAT32, 1, neg, NULL, &t), PILLAR_ERR_ARGUMENT, "negative");
    CHECK_ERR(pillar_tensor_create(PILLAR_FLOAT32, 1, dims, NULL, NULL), PILLAR_ERR_ARGUMENT, "NULL");
    int64_t d2[2] = {2, 2};
    const double v[4] = {1, 2, 3, 4};
    CHECK(pillar_tensor_create(PILLAR_FLOAT64, 2, d2, v, &t) == PILLAR_OK, "create");
    CHECK(pillar_tensor_numel(t) == 4 && ((double *)pillar_tensor_data(t))[3] == 4, "copied data");
    pillar_tensor_destroy(t);
    int64_t empty[2] = {0, 5};
    CHECK(pillar_tensor_create(PILLAR_INT64, 2, empty, NULL, &t) == PILLAR_OK && pillar_tensor_numel(t) == 0, "empty tensor");
    pillar_tensor_destroy(t);
    CHECK(!strcmp(pillar_dtype_name(PILLAR_BFLOAT16), "bfloat16") && pillar_dtype_size(PILLAR_FLOAT16) == 2, "dtype names");
    CHECK(!strcmp(pillar_version(), "0.1.0"), "version");
    pillar_options *o;
    pillar_options_create(&o);
    CHECK_ERR(pillar_options_set_threads(o, -1), PILLAR_ERR_ARGUMENT, "threads");
    CHECK_ERR(pillar_options_set_dim(o, "N", -2), PILLAR_ERR_ARGUMENT, "negative");
    pillar_options_destroy(o);
}

int main(void) {
    test_tensors();
    test_add_and_replan();
    test_graph_errors();
    test_external_data();
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
