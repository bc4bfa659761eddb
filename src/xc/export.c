/* export.c -- the trained XC network as ONNX, written with the protobuf-c structs
 * generated from the system's onnx.proto (and read back, for benchmarks):
 *
 *   features [batch, F] -> Gemm(W1 [F, H], b1) -> Relu -> Gemm(W2 [C, H]^T, b2)
 *   -> scores [batch, C]
 *
 * Opset 13, IR version 7: plain ops that pillar and ONNX Runtime both run. The sparse
 * input becomes a dense row (zeros for absent features). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "xc/xc.h"

/* ---------------------------------------------------------------- writing */

typedef struct file_buffer {
    ProtobufCBuffer base;
    FILE *f;
    bool err;
} file_buffer;

/* protobuf-c streams the packed model through this, so it is never held in memory
 * twice. */
static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_buffer *fb = (file_buffer *)b;
    if (!fb->err && fwrite(data, 1, len, fb->f) != len) fb->err = true;
}

typedef struct vi_parts {
    Onnx__ValueInfoProto v;
    Onnx__TypeProto t;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto sh;
    Onnx__TensorShapeProto__Dimension d[2], *dp[2];
} vi_parts;

static void value_info(vi_parts *p, const char *name, int64_t cols) {
    onnx__value_info_proto__init(&p->v);
    onnx__type_proto__init(&p->t);
    onnx__type_proto__tensor__init(&p->tt);
    onnx__tensor_shape_proto__init(&p->sh);
    for (int i = 0; i < 2; i++) {
        onnx__tensor_shape_proto__dimension__init(&p->d[i]);
        p->dp[i] = &p->d[i];
    }
    p->d[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    p->d[0].dim_param = (char *)"batch";
    p->d[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    p->d[1].dim_value = cols;
    p->sh.n_dim = 2;
    p->sh.dim = p->dp;
    p->tt.has_elem_type = 1;
    p->tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    p->tt.shape = &p->sh;
    p->t.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    p->t.tensor_type = &p->tt;
    p->v.name = (char *)name;
    p->v.type = &p->t;
}

static void tensor(Onnx__TensorProto *t, const char *name, int64_t *dims, size_t ndims,
                   const float *data, size_t n) {
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->n_dims = ndims;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->has_raw_data = 1;
    t->raw_data.len = n * sizeof(float); /* x86-64 is little-endian, as ONNX wants */
    t->raw_data.data = (uint8_t *)data;
}

static void int_attr(Onnx__AttributeProto *a, const char *name, int64_t v) {
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
}

pl_status pl_xc_export_onnx(const pl_xc_model *m, const char *path) {
    int64_t F = m->n_features, H = m->hidden, C = m->n_labels;
    double bytes = 4.0 * (double)((F + C + 1) * H + C);
    if (bytes > 2.0e9)
        return pl_error(PL_ERR_UNSUPPORTED,
                        "%s: %.1f GB of weights is over protobuf's 2 GB limit for one file", path,
                        bytes / 1e9);
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1;
    model.ir_version = 7;
    model.producer_name = (char *)"pillar train-xc";
    Onnx__OperatorSetIdProto ops, *opsp = &ops;
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = (char *)"";
    ops.has_version = 1;
    ops.version = 13;
    model.n_opset_import = 1;
    model.opset_import = &opsp;

    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)"xc";
    model.graph = &g;

    vi_parts in, out;
    value_info(&in, "features", F);
    value_info(&out, "scores", C);
    Onnx__ValueInfoProto *inp = &in.v, *outp = &out.v;
    g.n_input = 1;
    g.input = &inp;
    g.n_output = 1;
    g.output = &outp;

    int64_t d_w1[2] = {F, H}, d_b1[1] = {H}, d_w2[2] = {C, H}, d_b2[1] = {C};
    Onnx__TensorProto init[4], *initp[4];
    tensor(&init[0], "W1", d_w1, 2, m->W1, (size_t)(F * H));
    tensor(&init[1], "b1", d_b1, 1, m->b1, (size_t)H);
    tensor(&init[2], "W2", d_w2, 2, m->W2, (size_t)(C * H));
    tensor(&init[3], "b2", d_b2, 1, m->b2, (size_t)C);
    for (int i = 0; i < 4; i++) initp[i] = &init[i];
    g.n_initializer = 4;
    g.initializer = initp;

    Onnx__NodeProto nodes[3], *nodep[3];
    char *in0[3] = {(char *)"features", (char *)"W1", (char *)"b1"},
         *out0[1] = {(char *)"hidden_pre"};
    char *in1[1] = {(char *)"hidden_pre"}, *out1[1] = {(char *)"hidden"};
    char *in2[3] = {(char *)"hidden", (char *)"W2", (char *)"b2"}, *out2[1] = {(char *)"scores"};
    char **ins[3] = {in0, in1, in2}, **outs[3] = {out0, out1, out2};
    size_t nins[3] = {3, 1, 3};
    const char *types[3] = {"Gemm", "Relu", "Gemm"},
               *names[3] = {"hidden_gemm", "hidden_relu", "output_gemm"};
    Onnx__AttributeProto trans_b, *trans_bp = &trans_b;
    int_attr(&trans_b, "transB", 1);
    for (int i = 0; i < 3; i++) {
        onnx__node_proto__init(&nodes[i]);
        nodes[i].name = (char *)names[i];
        nodes[i].op_type = (char *)types[i];
        nodes[i].n_input = nins[i];
        nodes[i].input = ins[i];
        nodes[i].n_output = 1;
        nodes[i].output = outs[i];
        nodep[i] = &nodes[i];
    }
    nodes[2].n_attribute = 1;
    nodes[2].attribute = &trans_bp;
    g.n_node = 3;
    g.node = nodep;

    FILE *f = fopen(path, "wb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    file_buffer fb = {{file_append}, f, false};
    onnx__model_proto__pack_to_buffer(&model, &fb.base);
    bool err = fb.err || ferror(f);
    if (fclose(f) != 0) err = true;
    if (err) {
        remove(path);
        return pl_error(PL_ERR_IO, "%s: write error", path);
    }
    return PL_OK;
}

/* ---------------------------------------------------------------- reading */

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

/* Copies a float initializer of the expected shape into dst. */
static pl_status take(const char *path, const Onnx__GraphProto *g, const char *name, size_t ndims,
                      const int64_t *dims, float *dst) {
    const Onnx__TensorProto *t = find_init(g, name);
    if (!t)
        return pl_error(PL_ERR_MODEL, "%s: no initializer '%s' (not a train-xc model?)", path,
                        name);
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || t->n_dims != ndims)
        return pl_error(PL_ERR_MODEL, "%s: initializer '%s' is not a %zu-d float tensor", path,
                        name, ndims);
    size_t n = 1;
    for (size_t i = 0; i < ndims; i++) {
        if (t->dims[i] != dims[i])
            return pl_error(PL_ERR_MODEL, "%s: initializer '%s' has dim %zu = %lld, expected %lld",
                            path, name, i, (long long)t->dims[i], (long long)dims[i]);
        n *= (size_t)dims[i];
    }
    if (t->has_raw_data && t->raw_data.len == n * sizeof(float))
        memcpy(dst, t->raw_data.data, n * sizeof(float));
    else if (t->n_float_data == n)
        memcpy(dst, t->float_data, n * sizeof(float));
    else
        return pl_error(PL_ERR_MODEL, "%s: initializer '%s' does not hold %zu floats", path, name,
                        n);
    return PL_OK;
}

pl_status pl_xc_import_onnx(const char *path, pl_xc_model **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    uint8_t *buf = sz > 0 ? malloc((size_t)sz) : NULL;
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(buf);
        return pl_error(sz > 0 && !buf ? PL_ERR_NOMEM : PL_ERR_IO, "%s: cannot read", path);
    }
    fclose(f);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, (size_t)sz, buf);
    free(buf);
    if (!mp || !mp->graph) {
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        return pl_error(PL_ERR_MODEL, "%s: not a readable ONNX model", path);
    }
    const Onnx__GraphProto *g = mp->graph;
    const Onnx__TensorProto *w1 = find_init(g, "W1"), *w2 = find_init(g, "W2");
    pl_status s = PL_OK;
    pl_xc_model *m = NULL;
    if (!w1 || !w2 || w1->n_dims != 2 || w2->n_dims != 2 || w1->dims[1] != w2->dims[1]) {
        s = pl_error(PL_ERR_MODEL, "%s: not a train-xc model (no W1 [F, H] and W2 [C, H])", path);
    } else {
        int64_t F = w1->dims[0], H = w1->dims[1], C = w2->dims[0];
        s = pl_xc_model_create(F, H, C, 0, &m);
        int64_t dW1[2] = {F, H}, db1[1] = {H}, dW2[2] = {C, H}, db2[1] = {C};
        if (s == PL_OK) s = take(path, g, "W1", 2, dW1, m->W1);
        if (s == PL_OK) s = take(path, g, "b1", 1, db1, m->b1);
        if (s == PL_OK) s = take(path, g, "W2", 2, dW2, m->W2);
        if (s == PL_OK) s = take(path, g, "b2", 1, db2, m->b2);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    if (s != PL_OK) {
        pl_xc_model_destroy(m);
        return s;
    }
    *out = m;
    return PL_OK;
}
