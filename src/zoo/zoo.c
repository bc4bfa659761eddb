/* zoo.c -- the graph-building kit of the model zoo (see zoo.h) and the dispatch from an
 * architecture name to its builder. */
#include "zoo/zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records the first failure; later ones are consequences of it. */
static void fail(pl_zoo *z, pl_status st) {
    if (z->st == PL_OK) z->st = st;
}

static void nomem(pl_zoo *z) {
    if (z->st == PL_OK)
        z->st = pl_error(PL_ERR_NOMEM, "zoo: out of memory while building the model");
}

pl_status pl_zoo_begin(pl_zoo *z, const char *arch, uint64_t seed) {
    memset(z, 0, sizeof *z);
    z->rng = seed;
    pl_model *m = calloc(1, sizeof *m);
    if (!m) return pl_error(PL_ERR_NOMEM, "zoo: out of memory");
    z->m = m;
    size_t n = strlen(arch) + 5;
    m->path = malloc(n);
    if (m->path) snprintf(m->path, n, "zoo:%s", arch);
    m->dir = strdup(".");
    m->producer = strdup("pillar");
    m->ir_version = 8;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->graph = z->g = pl_graph_new();
    if (!m->path || !m->dir || !m->producer || !m->opsets || !z->g ||
        !(z->g->name = strdup(arch))) {
        pl_zoo_abort(z);
        return pl_error(PL_ERR_NOMEM, "zoo: out of memory");
    }
    m->opsets[0].version = PL_ZOO_OPSET;
    if (!(m->opsets[0].domain = strdup(""))) {
        pl_zoo_abort(z);
        return pl_error(PL_ERR_NOMEM, "zoo: out of memory");
    }
    m->nopsets = 1;
    return PL_OK;
}

void pl_zoo_abort(pl_zoo *z) {
    pl_model_free(z->m);
    z->m = NULL;
    z->g = NULL;
}

/* A new value with a name no other value has (the kit's names are made from module
 * paths, so a clash is a bug in a builder). */
static int new_value(pl_zoo *z, const char *name) {
    if (z->st != PL_OK) return -1;
    if (pl_graph_find_value(z->g, name) >= 0) {
        fail(z, pl_error(PL_ERR_INTERNAL, "zoo: value name '%s' used twice", name));
        return -1;
    }
    int id = pl_graph_add_value(z->g, name);
    if (id < 0) nomem(z);
    return id;
}

static bool push_id(pl_zoo *z, int **list, int *n, int id) {
    int *l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
    if (!l) {
        nomem(z);
        return false;
    }
    l[(*n)++] = id;
    *list = l;
    return true;
}

int pl_zoo_input(pl_zoo *z, const char *name, int ndim, const int64_t *dims) {
    if (ndim < 0 || ndim + 1 > PL_MAX_DIMS) {
        fail(z, pl_error(PL_ERR_INTERNAL, "zoo: input '%s' with %d dims", name, ndim));
        return -1;
    }
    int id = new_value(z, name);
    if (id < 0) return -1;
    pl_value *v = &z->g->values[id];
    v->kind = PL_VALUE_INPUT;
    v->declared = true;
    v->t.dtype = PL_F32;
    v->t.ndim = ndim + 1;
    v->t.dims[0] = -1;
    for (int d = 0; d < ndim; d++) v->t.dims[d + 1] = dims[d];
    if (!(v->dim_names[0] = strdup("batch"))) {
        nomem(z);
        return -1;
    }
    return push_id(z, &z->g->inputs, &z->g->ninputs, id) ? id : -1;
}

float *pl_zoo_const(pl_zoo *z, const char *name, int ndim, const int64_t *dims, int *id_out) {
    *id_out = -1;
    if (pl_dims_numel(ndim, dims) < 0) {
        fail(z, pl_error(PL_ERR_ARGUMENT, "zoo: weight '%s' has an overflowing shape", name));
        return NULL;
    }
    int id = new_value(z, name);
    if (id < 0) return NULL;
    pl_value *v = &z->g->values[id];
    v->kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&v->t, PL_F32, ndim, dims);
    pl_status st = pl_tensor_alloc(&v->t);
    if (st != PL_OK) {
        fail(z, st);
        return NULL;
    }
    *id_out = id;
    return v->t.data;
}

int pl_zoo_scalar(pl_zoo *z, const char *name, float val) {
    int id;
    float *p = pl_zoo_const(z, name, 0, NULL, &id);
    if (p) *p = val;
    return id;
}

int pl_zoo_node(pl_zoo *z, const char *op, const char *name, int nin, const int *in,
                int *node_out) {
    if (node_out) *node_out = -1;
    if (z->st != PL_OK) return -1;
    for (int k = 0; k < nin; k++)
        if (in[k] < 0 || in[k] >= z->g->nvalues) {
            fail(z, pl_error(PL_ERR_INTERNAL, "zoo: node '%s' input %d is not a value", name, k));
            return -1;
        }
    size_t n = strlen(name) + 10;
    char *oname = malloc(n);
    if (!oname) {
        nomem(z);
        return -1;
    }
    snprintf(oname, n, "%s_output_0", name);
    int out = new_value(z, oname);
    free(oname);
    if (out < 0) return -1;
    int ni = pl_graph_add_node(z->g);
    if (ni < 0) {
        nomem(z);
        return -1;
    }
    pl_node *nd = &z->g->nodes[ni];
    nd->op_type = strdup(op);
    nd->domain = strdup("");
    nd->name = strdup(name);
    nd->in = malloc((size_t)(nin ? nin : 1) * sizeof(int));
    nd->out = malloc(sizeof(int));
    if (!nd->op_type || !nd->domain || !nd->name || !nd->in || !nd->out) {
        nomem(z);
        return -1;
    }
    if (nin) memcpy(nd->in, in, (size_t)nin * sizeof(int));
    nd->nin = nin;
    nd->out[0] = out;
    nd->nout = 1;
    z->g->values[out].producer = ni;
    if (node_out) *node_out = ni;
    return out;
}

static pl_attr *new_attr(pl_zoo *z, int node, const char *name, pl_attr_type type) {
    if (z->st != PL_OK) return NULL;
    if (node < 0 || node >= z->g->nnodes) {
        fail(z, pl_error(PL_ERR_INTERNAL, "zoo: attribute '%s' on no node", name));
        return NULL;
    }
    pl_node *n = &z->g->nodes[node];
    pl_attr *a = realloc(n->attrs, (size_t)(n->nattr + 1) * sizeof *a);
    if (!a) {
        nomem(z);
        return NULL;
    }
    n->attrs = a;
    a = &a[n->nattr];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name))) {
        nomem(z);
        return NULL;
    }
    a->type = type;
    n->nattr++;
    return a;
}

void pl_zoo_attr_int(pl_zoo *z, int node, const char *name, int64_t v) {
    pl_attr *a = new_attr(z, node, name, PL_ATTR_INT);
    if (a) a->i = v;
}

void pl_zoo_attr_float(pl_zoo *z, int node, const char *name, float v) {
    pl_attr *a = new_attr(z, node, name, PL_ATTR_FLOAT);
    if (a) a->f = v;
}

void pl_zoo_attr_ints(pl_zoo *z, int node, const char *name, int n, const int64_t *v) {
    pl_attr *a = new_attr(z, node, name, PL_ATTR_INTS);
    if (!a) return;
    if (!(a->ints = malloc((size_t)(n ? n : 1) * sizeof(int64_t)))) {
        nomem(z);
        return;
    }
    if (n) memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
    a->n = (size_t)n;
}

/* ---------------------------------------------------------------- random weights */

static uint64_t next_u64(pl_zoo *z) { /* splitmix64 */
    uint64_t x = (z->rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

float pl_zoo_uniform(pl_zoo *z, float lo, float hi) {
    float u = (float)(next_u64(z) >> 40) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
}

void pl_zoo_fill_he(pl_zoo *z, float *w, int64_t n, double std) {
    float a = (float)(std * sqrt(3.0)), scale = 2.0f * a / 16777216.0f;
    for (int64_t i = 0; i < n; i++) w[i] = (float)(next_u64(z) >> 40) * scale - a;
}

/* ---------------------------------------------------------------- layers */

/* "layer1.0.conv1" + "Conv" -> "/layer1/0/conv1/Conv". */
static void node_name(char *buf, size_t n, const char *scope, const char *op) {
    size_t k = (size_t)snprintf(buf, n, "/%s/%s", scope, op);
    for (size_t i = 1; i < k && i < n && buf[i]; i++)
        if (buf[i] == '.') buf[i] = '/';
}

int pl_zoo_conv(pl_zoo *z, const char *param, int x, int64_t cin, int64_t cout, int k, int stride,
                int64_t groups, double gain) {
    if (z->st != PL_OK) return -1;
    if (groups < 1 || cin % groups || cout % groups || k < 1 || stride < 1) {
        fail(z, pl_error(PL_ERR_INTERNAL, "zoo: conv '%s': bad geometry", param));
        return -1;
    }
    char name[256], nm[300];
    int wid, bid;
    int64_t wd[4] = {cout, cin / groups, k, k};
    snprintf(name, sizeof name, "%s.weight", param);
    float *w = pl_zoo_const(z, name, 4, wd, &wid);
    snprintf(name, sizeof name, "%s.bias", param);
    float *b = pl_zoo_const(z, name, 1, &cout, &bid);
    if (!w || !b) return -1;
    int64_t fan_in = cin / groups * k * k;
    pl_zoo_fill_he(z, w, cout * fan_in, gain / sqrt((double)fan_in));
    for (int64_t i = 0; i < cout; i++) b[i] = pl_zoo_uniform(z, -0.05f, 0.05f);
    node_name(nm, sizeof nm, param, "Conv");
    int node, in[3] = {x, wid, bid};
    int y = pl_zoo_node(z, "Conv", nm, 3, in, &node);
    int64_t pad = k / 2, pads[4] = {pad, pad, pad, pad}, ks[2] = {k, k}, st[2] = {stride, stride},
            dil[2] = {1, 1};
    pl_zoo_attr_ints(z, node, "dilations", 2, dil);
    pl_zoo_attr_int(z, node, "group", groups);
    pl_zoo_attr_ints(z, node, "kernel_shape", 2, ks);
    pl_zoo_attr_ints(z, node, "pads", 4, pads);
    pl_zoo_attr_ints(z, node, "strides", 2, st);
    return y;
}

int pl_zoo_unary(pl_zoo *z, const char *op, const char *scope, int x) {
    char nm[300];
    node_name(nm, sizeof nm, scope, op);
    return pl_zoo_node(z, op, nm, 1, &x, NULL);
}

int pl_zoo_clip(pl_zoo *z, const char *scope, int x, float lo, float hi) {
    if (z->st != PL_OK) return -1;
    char lname[64], hname[64], nm[300];
    snprintf(lname, sizeof lname, "clip_min_%g", lo);
    snprintf(hname, sizeof hname, "clip_max_%g", hi);
    int l = pl_graph_find_value(z->g, lname), h = pl_graph_find_value(z->g, hname);
    if (l < 0) l = pl_zoo_scalar(z, lname, lo);
    if (h < 0) h = pl_zoo_scalar(z, hname, hi);
    node_name(nm, sizeof nm, scope, "Clip");
    int in[3] = {x, l, h};
    return pl_zoo_node(z, "Clip", nm, 3, in, NULL);
}

int pl_zoo_add(pl_zoo *z, const char *scope, int a, int b) {
    char nm[300];
    node_name(nm, sizeof nm, scope, "Add");
    int in[2] = {a, b};
    return pl_zoo_node(z, "Add", nm, 2, in, NULL);
}

int pl_zoo_maxpool(pl_zoo *z, const char *scope, int x, int k, int stride, int pad) {
    char nm[300];
    node_name(nm, sizeof nm, scope, "MaxPool");
    int node, y = pl_zoo_node(z, "MaxPool", nm, 1, &x, &node);
    int64_t pads[4] = {pad, pad, pad, pad}, ks[2] = {k, k}, st[2] = {stride, stride};
    pl_zoo_attr_int(z, node, "ceil_mode", 0);
    pl_zoo_attr_ints(z, node, "kernel_shape", 2, ks);
    pl_zoo_attr_ints(z, node, "pads", 4, pads);
    pl_zoo_attr_ints(z, node, "strides", 2, st);
    return y;
}

int pl_zoo_linear(pl_zoo *z, const char *param, int x, int64_t nin, int64_t nout, double gain) {
    if (z->st != PL_OK) return -1;
    char name[256], nm[300];
    int wid, bid;
    int64_t wd[2] = {nout, nin};
    snprintf(name, sizeof name, "%s.weight", param);
    float *w = pl_zoo_const(z, name, 2, wd, &wid);
    snprintf(name, sizeof name, "%s.bias", param);
    float *b = pl_zoo_const(z, name, 1, &nout, &bid);
    if (!w || !b) return -1;
    pl_zoo_fill_he(z, w, nout * nin, gain / sqrt((double)(nin ? nin : 1)));
    node_name(nm, sizeof nm, param, "Gemm");
    int node, in[3] = {x, wid, bid};
    int y = pl_zoo_node(z, "Gemm", nm, 3, in, &node);
    pl_zoo_attr_float(z, node, "alpha", 1.0f);
    pl_zoo_attr_float(z, node, "beta", 1.0f);
    pl_zoo_attr_int(z, node, "transB", 1);
    return y;
}

pl_status pl_zoo_finish(pl_zoo *z, int out, const char *name, int64_t classes, pl_model **model) {
    if (z->st == PL_OK && (out < 0 || out >= z->g->nvalues))
        fail(z, pl_error(PL_ERR_INTERNAL, "zoo: no output value"));
    if (z->st == PL_OK && pl_graph_find_value(z->g, name) >= 0)
        fail(z, pl_error(PL_ERR_INTERNAL, "zoo: output name '%s' is taken", name));
    if (z->st == PL_OK) {
        pl_value *v = &z->g->values[out];
        char *nm = strdup(name), *sym = strdup("batch");
        if (!nm || !sym) {
            free(nm);
            free(sym);
            nomem(z);
        } else {
            free(v->name);
            v->name = nm;
            v->dim_names[0] = sym;
            v->declared = true;
            v->is_output = true;
            v->t.dtype = PL_F32;
            v->t.ndim = 2;
            v->t.dims[0] = -1;
            v->t.dims[1] = classes;
            push_id(z, &z->g->outputs, &z->g->noutputs, out);
        }
    }
    if (z->st != PL_OK) {
        pl_status st = z->st;
        pl_zoo_abort(z);
        return st;
    }
    *model = z->m;
    z->m = NULL;
    z->g = NULL;
    return PL_OK;
}

/* ---------------------------------------------------------------- dispatch */

pl_status pl_zoo_build(const char *name, const int64_t *chw, int64_t classes, uint64_t seed,
                       pl_model **out) {
    if (!name) return pl_error(PL_ERR_ARGUMENT, "pillar_model_zoo: name is NULL");
    if (classes < 0 || classes > ((int64_t)1 << 24))
        return pl_error(PL_ERR_ARGUMENT,
                        "pillar_model_zoo: classes = %lld, expected 0 (default) to %d",
                        (long long)classes, 1 << 24);
    if (chw) /* channels bound the first layer's weights, H and W only the activations */
        for (int i = 0; i < 3; i++) {
            int64_t hi = i == 0 ? 4096 : 65536;
            if (chw[i] < 1 || chw[i] > hi)
                return pl_error(PL_ERR_ARGUMENT,
                                "pillar_model_zoo: %s: input %c = %lld, expected 1 to %lld", name,
                                "CHW"[i], (long long)chw[i], (long long)hi);
        }
    if (strcmp(name, "resnet50") == 0) return pl_zoo_resnet50(chw, classes, seed, out);
    if (strcmp(name, "mobilenet_v2") == 0) return pl_zoo_mobilenet_v2(chw, classes, seed, out);
    pl_status st = pl_zoo_small(name, chw, classes, seed, out);
    bool small = !strcmp(name, "mlp") || !strcmp(name, "lenet") || !strcmp(name, "resnet8");
    if (st == PL_ERR_ARGUMENT && !small && strstr(pl_error_msg(), "unknown architecture"))
        return pl_error(PL_ERR_ARGUMENT,
                        "pillar_model_zoo: unknown architecture '%s' (known: resnet50, "
                        "mobilenet_v2, mlp, lenet, resnet8)",
                        name);
    return st;
}
