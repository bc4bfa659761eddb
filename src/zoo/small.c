/* small.c -- the zoo's small architectures for training from scratch: "mlp", "lenet"
 * (a LeNet-style CNN; "lenet_bn" with BatchNorm after each convolution) and "resnet8"
 * (a ResNet of three stages with one basic block each, BatchNorm throughout), built
 * directly in the graph IR with seeded random weights.
 *
 * Every model has one input "input" [batch, C, H, W] ("mlp": [batch, C*H*W]) with the
 * symbolic dimension "batch", and one output "logits" [batch, classes]. Weights follow
 * PyTorch's layouts (Conv OIHW, Gemm with transB = 1) so that a model written by pillar
 * can be loaded into the same PyTorch module, and the graph uses only opset-13 ops that
 * ONNX Runtime runs. Initialisation: He-uniform for layers followed by ReLU, a
 * 1/sqrt(fan_in) uniform for the classifier, zero biases, BatchNorm scale 1, shift 0,
 * running mean 0 and variance 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zoo/zoo.h"

#define ZOO_OPSET 13

typedef struct zb {
    pl_graph *g;
    uint64_t rng;
    bool oom;
    int counter[8];
} zb;

/* splitmix64: a small, well-mixed generator; the same seed gives the same weights on
 * every platform. */
static uint64_t zb_next(zb *b) {
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) with 24 random bits */
static float zb_sym(zb *b) { return (float)((int64_t)(zb_next(b) >> 40) - (1 << 23)) / (float)(1 << 23); }

static int zb_value(zb *b, const char *name) {
    if (b->oom) return -1;
    if (pl_graph_find_value(b->g, name) >= 0) {
        /* names are generated; a clash is a bug here, reported as out of memory would
         * mislead, so mark it failed */
        b->oom = true;
        return -1;
    }
    int id = pl_graph_add_value(b->g, name);
    if (id < 0) b->oom = true;
    return id;
}

/* A float initializer of the given shape; fill: 0 = zeros, 1 = ones, 2 = uniform
 * [-bound, bound). */
static int zb_const(zb *b, const char *name, int ndim, const int64_t *dims, int fill, float bound) {
    int id = zb_value(b, name);
    if (id < 0) return -1;
    pl_value *v = &b->g->values[id];
    v->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&v->t, PL_F32, ndim, dims);
    if (pl_tensor_alloc(&v->t) != PL_OK) {
        b->oom = true;
        return -1;
    }
    float *p = v->t.data;
    int64_t n = pl_numel(&v->t);
    for (int64_t i = 0; i < n; i++) p[i] = fill == 0 ? 0.0f : fill == 1 ? 1.0f : bound * zb_sym(b);
    return id;
}

static bool zb_attr_int(pl_attr *a, const char *name, int64_t v) {
    a->name = strdup(name);
    a->type = PL_ATTR_INT;
    a->i = v;
    return a->name != NULL;
}

static bool zb_attr_float(pl_attr *a, const char *name, float v) {
    a->name = strdup(name);
    a->type = PL_ATTR_FLOAT;
    a->f = v;
    return a->name != NULL;
}

static bool zb_attr_ints(pl_attr *a, const char *name, int n, const int64_t *v) {
    a->name = strdup(name);
    a->type = PL_ATTR_INTS;
    a->n = (size_t)n;
    a->ints = malloc((size_t)n * sizeof(int64_t));
    if (!a->name || !a->ints) return false;
    memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
    return true;
}

/* Appends a node of `op` reading `in` (nin value ids) and writing a new value named
 * after the node; returns the output's id. Attributes are filled by the caller through
 * the returned node's attrs (nattr slots reserved). */
static int zb_node(zb *b, const char *op, const char *name, int nin, const int *in, int nattr,
                   pl_node **node_out) {
    if (b->oom) return -1;
    for (int k = 0; k < nin; k++)
        if (in[k] < 0) return -1;
    int out = zb_value(b, name);
    if (out < 0) return -1;
    int ni = pl_graph_add_node(b->g);
    if (ni < 0) {
        b->oom = true;
        return -1;
    }
    pl_node *n = &b->g->nodes[ni];
    n->name = strdup(name);
    n->op_type = strdup(op);
    n->domain = strdup("");
    n->opset = ZOO_OPSET;
    n->nin = nin;
    n->nout = 1;
    n->in = malloc((size_t)(nin ? nin : 1) * sizeof(int));
    n->out = malloc(sizeof(int));
    n->attrs = nattr ? calloc((size_t)nattr, sizeof(pl_attr)) : NULL;
    n->nattr = nattr;
    if (!n->name || !n->op_type || !n->domain || !n->in || !n->out || (nattr && !n->attrs)) {
        b->oom = true;
        return -1;
    }
    memcpy(n->in, in, (size_t)nin * sizeof(int));
    n->out[0] = out;
    b->g->values[out].producer = ni;
    if (node_out) *node_out = n;
    return out;
}

/* Conv with a k x k kernel, `stride`, padding k/2, OIHW weights, optional bias.
 * `relu_after` picks the He bound (the layer feeds a ReLU). */
static int zb_conv(zb *b, const char *name, int x, int64_t cin, int64_t cout, int64_t k,
                   int64_t stride, bool bias) {
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int64_t wd[4] = {cout, cin, k, k};
    float fan_in = (float)(cin * k * k);
    int w = zb_const(b, wn, 4, wd, 2, sqrtf(6.0f / fan_in));
    int in[3] = {x, w, -1};
    if (bias) in[2] = zb_const(b, bn, 1, &cout, 0, 0);
    pl_node *n = NULL;
    int y = zb_node(b, "Conv", name, bias ? 3 : 2, in, 4, &n);
    if (y < 0) return -1;
    int64_t ks[2] = {k, k}, st[2] = {stride, stride}, pd[4] = {k / 2, k / 2, k / 2, k / 2},
            dl[2] = {1, 1};
    if (!zb_attr_ints(&n->attrs[0], "kernel_shape", 2, ks) ||
        !zb_attr_ints(&n->attrs[1], "strides", 2, st) || !zb_attr_ints(&n->attrs[2], "pads", 4, pd) ||
        !zb_attr_ints(&n->attrs[3], "dilations", 2, dl))
        b->oom = true;
    return y;
}

static int zb_batchnorm(zb *b, const char *name, int x, int64_t c) {
    char nm[4][160];
    static const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    static const int fill[4] = {1, 0, 0, 1};
    int in[5] = {x, -1, -1, -1, -1};
    for (int i = 0; i < 4; i++) {
        snprintf(nm[i], sizeof nm[i], "%s.%s", name, suffix[i]);
        in[i + 1] = zb_const(b, nm[i], 1, &c, fill[i], 0);
    }
    pl_node *n = NULL;
    int y = zb_node(b, "BatchNormalization", name, 5, in, 2, &n);
    if (y < 0) return -1;
    if (!zb_attr_float(&n->attrs[0], "epsilon", 1e-5f) || !zb_attr_float(&n->attrs[1], "momentum", 0.9f))
        b->oom = true;
    return y;
}

static int zb_unary(zb *b, const char *op, const char *name, int x) {
    return zb_node(b, op, name, 1, &x, 0, NULL);
}

static int zb_add(zb *b, const char *name, int x, int y) {
    int in[2] = {x, y};
    return zb_node(b, "Add", name, 2, in, 0, NULL);
}

static int zb_maxpool2(zb *b, const char *name, int x) {
    pl_node *n = NULL;
    int y = zb_node(b, "MaxPool", name, 1, &x, 2, &n);
    if (y < 0) return -1;
    int64_t two[2] = {2, 2};
    if (!zb_attr_ints(&n->attrs[0], "kernel_shape", 2, two) || !zb_attr_ints(&n->attrs[1], "strides", 2, two))
        b->oom = true;
    return y;
}

static int zb_flatten(zb *b, const char *name, int x) {
    pl_node *n = NULL;
    int y = zb_node(b, "Flatten", name, 1, &x, 1, &n);
    if (y >= 0 && !zb_attr_int(&n->attrs[0], "axis", 1)) b->oom = true;
    return y;
}

/* Fully connected layer as Gemm(x, W[out, in]^T) + b, PyTorch's Linear layout. */
static int zb_linear(zb *b, const char *name, int x, int64_t nin, int64_t nout, bool relu_after) {
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int64_t wd[2] = {nout, nin};
    float bound = relu_after ? sqrtf(6.0f / (float)nin) : 1.0f / sqrtf((float)nin);
    int in[3] = {x, zb_const(b, wn, 2, wd, 2, bound), zb_const(b, bn, 1, &nout, 0, 0)};
    pl_node *n = NULL;
    int y = zb_node(b, "Gemm", name, 3, in, 1, &n);
    if (y >= 0 && !zb_attr_int(&n->attrs[0], "transB", 1)) b->oom = true;
    return y;
}

static int zb_conv_bn_relu(zb *b, const char *name, int x, int64_t cin, int64_t cout, int64_t k,
                           int64_t stride, bool bn, bool relu) {
    char nm[96];
    snprintf(nm, sizeof nm, "%s.conv", name);
    int y = zb_conv(b, nm, x, cin, cout, k, stride, !bn);
    if (bn) {
        snprintf(nm, sizeof nm, "%s.bn", name);
        y = zb_batchnorm(b, nm, y, cout);
    }
    if (relu) {
        snprintf(nm, sizeof nm, "%s.relu", name);
        y = zb_unary(b, "Relu", nm, y);
    }
    return y;
}

/* ---------------------------------------------------------------- architectures */

/* Flattened input -> 256 -> 128 -> classes, ReLU between. */
static int build_mlp(zb *b, int x, const int64_t *chw, int64_t classes) {
    int64_t n = chw[0] * chw[1] * chw[2];
    int y = zb_linear(b, "fc1", x, n, 256, true);
    y = zb_unary(b, "Relu", "relu1", y);
    y = zb_linear(b, "fc2", y, 256, 128, true);
    y = zb_unary(b, "Relu", "relu2", y);
    return zb_linear(b, "fc3", y, 128, classes, false);
}

/* conv5x5(32)-relu-maxpool, conv5x5(64)-relu-maxpool (padding keeps H, W until the
 * pools), fc 256-relu, fc 128-relu, fc classes. */
static int build_lenet(zb *b, int x, const int64_t *chw, int64_t classes, bool bn) {
    int y = zb_conv_bn_relu(b, "conv1", x, chw[0], 32, 5, 1, bn, true);
    y = zb_maxpool2(b, "pool1", y);
    y = zb_conv_bn_relu(b, "conv2", y, 32, 64, 5, 1, bn, true);
    y = zb_maxpool2(b, "pool2", y);
    y = zb_flatten(b, "flatten", y);
    int64_t feat = 64 * (chw[1] / 4) * (chw[2] / 4);
    y = zb_linear(b, "fc1", y, feat, 256, true);
    y = zb_unary(b, "Relu", "relu3", y);
    y = zb_linear(b, "fc2", y, 256, 128, true);
    y = zb_unary(b, "Relu", "relu4", y);
    return zb_linear(b, "fc3", y, 128, classes, false);
}

/* A basic residual block: conv3x3-bn-relu-conv3x3-bn, plus the input (through a
 * strided 1x1 conv-bn when the shape changes), then relu. */
static int resnet_block(zb *b, const char *name, int x, int64_t cin, int64_t cout, int64_t stride) {
    char nm[64];
    snprintf(nm, sizeof nm, "%s.a", name);
    int y = zb_conv_bn_relu(b, nm, x, cin, cout, 3, stride, true, true);
    snprintf(nm, sizeof nm, "%s.b", name);
    y = zb_conv_bn_relu(b, nm, y, cout, cout, 3, 1, true, false);
    int sc = x;
    if (stride != 1 || cin != cout) {
        snprintf(nm, sizeof nm, "%s.down", name);
        sc = zb_conv_bn_relu(b, nm, x, cin, cout, 1, stride, true, false);
    }
    snprintf(nm, sizeof nm, "%s.add", name);
    y = zb_add(b, nm, y, sc);
    snprintf(nm, sizeof nm, "%s.relu", name);
    return zb_unary(b, "Relu", nm, y);
}

/* stem conv3x3(16)-bn-relu; stages of 16, 32 (stride 2), 64 (stride 2) channels;
 * global average pool; fc classes. */
static int build_resnet8(zb *b, int x, const int64_t *chw, int64_t classes) {
    int y = zb_conv_bn_relu(b, "stem", x, chw[0], 16, 3, 1, true, true);
    y = resnet_block(b, "layer1", y, 16, 16, 1);
    y = resnet_block(b, "layer2", y, 16, 32, 2);
    y = resnet_block(b, "layer3", y, 32, 64, 2);
    y = zb_unary(b, "GlobalAveragePool", "gap", y);
    y = zb_flatten(b, "flatten", y);
    return zb_linear(b, "fc", y, 64, classes, false);
}

/* ---------------------------------------------------------------- entry */

static pl_status set_io(pl_value *v, int ndim, const int64_t *dims) {
    pl_tensor_set_shape(&v->t, PL_F32, ndim, dims);
    v->t.dims[0] = -1;
    v->declared = true;
    v->dim_names[0] = strdup("batch");
    return v->dim_names[0] ? PL_OK : pl_error(PL_ERR_NOMEM, "model zoo: out of memory");
}

pl_status pl_zoo_small(const char *name, const int64_t *chw, int64_t classes, uint64_t seed,
                       pl_model **out) {
    if (!name || !out) return pl_error(PL_ERR_ARGUMENT, "pl_zoo_small: NULL argument");
    enum { MLP, LENET, LENET_BN, RESNET8 } arch;
    if (strcmp(name, "mlp") == 0) arch = MLP;
    else if (strcmp(name, "lenet") == 0) arch = LENET;
    else if (strcmp(name, "lenet_bn") == 0) arch = LENET_BN;
    else if (strcmp(name, "resnet8") == 0) arch = RESNET8;
    else
        return pl_error(PL_ERR_ARGUMENT,
                        "model zoo: unknown architecture '%s' (small ones: mlp, lenet, lenet_bn, resnet8)", name);
    int64_t shape[3] = {1, 28, 28};
    if (chw) memcpy(shape, chw, sizeof shape);
    if (classes == 0) classes = 10;
    if (classes < 1 || classes > (1 << 24))
        return pl_error(PL_ERR_ARGUMENT, "model zoo: %s: %lld classes, expected 1 to %d", name, (long long)classes, 1 << 24);
    for (int i = 0; i < 3; i++)
        if (shape[i] < 1 || shape[i] > 4096)
            return pl_error(PL_ERR_ARGUMENT, "model zoo: %s: input %lldx%lldx%lld: each of C, H, W must be 1 to 4096", name,
                            (long long)shape[0], (long long)shape[1], (long long)shape[2]);
    if (shape[0] > 64)
        return pl_error(PL_ERR_ARGUMENT, "model zoo: %s: %lld input channels, at most 64", name, (long long)shape[0]);
    if (arch == LENET || arch == LENET_BN) {
        if (shape[1] < 4 || shape[2] < 4)
            return pl_error(PL_ERR_ARGUMENT, "model zoo: %s: input %lldx%lld is smaller than 4x4 (two 2x2 poolings)", name,
                            (long long)shape[1], (long long)shape[2]);
        if (shape[1] * shape[2] > 512 * 512)
            return pl_error(PL_ERR_ARGUMENT, "model zoo: %s: input %lldx%lld is too large for the fully connected layers (at most 512x512)",
                            name, (long long)shape[1], (long long)shape[2]);
    }
    if (arch == MLP && shape[0] * shape[1] * shape[2] > (1 << 20))
        return pl_error(PL_ERR_ARGUMENT, "model zoo: mlp: input of %lld values is too large (at most 1048576)",
                        (long long)(shape[0] * shape[1] * shape[2]));

    pl_model *m = calloc(1, sizeof *m);
    zb b = {.rng = seed};
    if (!m || !(b.g = pl_graph_new())) {
        free(m);
        return pl_error(PL_ERR_NOMEM, "model zoo: out of memory");
    }
    m->graph = b.g;
    char path[64];
    snprintf(path, sizeof path, "zoo:%s", name);
    m->path = strdup(path);
    m->dir = strdup(".");
    m->producer = strdup("pillar");
    m->ir_version = 8;
    m->opsets = calloc(1, sizeof(pl_opset));
    b.g->name = strdup(name);
    b.g->inputs = malloc(sizeof(int));
    b.g->outputs = malloc(sizeof(int));
    pl_status st = PL_OK;
    if (!m->path || !m->dir || !m->producer || !m->opsets || !b.g->name || !b.g->inputs || !b.g->outputs ||
        !(m->opsets[0].domain = strdup(""))) {
        st = pl_error(PL_ERR_NOMEM, "model zoo: out of memory");
        goto done;
    }
    m->opsets[0].version = ZOO_OPSET;
    m->nopsets = 1;

    int x = zb_value(&b, "input");
    if (x < 0) {
        st = pl_error(PL_ERR_NOMEM, "model zoo: out of memory");
        goto done;
    }
    b.g->values[x].kind = PL_VALUE_INPUT;
    if (arch == MLP) {
        int64_t d[2] = {-1, shape[0] * shape[1] * shape[2]};
        st = set_io(&b.g->values[x], 2, d);
    } else {
        int64_t d[4] = {-1, shape[0], shape[1], shape[2]};
        st = set_io(&b.g->values[x], 4, d);
    }
    if (st != PL_OK) goto done;
    b.g->inputs[b.g->ninputs++] = x;

    int y = -1;
    switch (arch) {
    case MLP: y = build_mlp(&b, x, shape, classes); break;
    case LENET: y = build_lenet(&b, x, shape, classes, false); break;
    case LENET_BN: y = build_lenet(&b, x, shape, classes, true); break;
    case RESNET8: y = build_resnet8(&b, x, shape, classes); break;
    }
    if (y < 0 || b.oom) {
        st = pl_error(PL_ERR_NOMEM, "model zoo: out of memory while building '%s'", name);
        goto done;
    }
    /* the last node's output becomes "logits" */
    free(b.g->values[y].name);
    if (!(b.g->values[y].name = strdup("logits"))) {
        st = pl_error(PL_ERR_NOMEM, "model zoo: out of memory");
        goto done;
    }
    b.g->values[y].is_output = true;
    int64_t od[2] = {-1, classes};
    if ((st = set_io(&b.g->values[y], 2, od)) != PL_OK) goto done;
    b.g->outputs[b.g->noutputs++] = y;
done:
    if (st != PL_OK) {
        pl_model_free(m);
        return st;
    }
    *out = m;
    return PL_OK;
}
