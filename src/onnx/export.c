/* export.c -- graph IR -> ONNX ModelProto file (protobuf-c). Used by the trainer,
 * pruner, quantizer and model zoo to write models that pillar and ONNX Runtime run.
 * The protobuf structs only borrow the IR's memory; what this file allocates is kept
 * in an arena list and freed once the bytes are written. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx_export.h"
#include "onnx.pb-c.h"

typedef struct allocs {
    void **p;
    size_t n, cap;
    bool failed;
} allocs;

static void *take(allocs *a, size_t size) {
    if (a->failed) return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        void **p = realloc(a->p, cap * sizeof *p);
        if (!p) {
            a->failed = true;
            return NULL;
        }
        a->p = p;
        a->cap = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (!m) {
        a->failed = true;
        return NULL;
    }
    a->p[a->n++] = m;
    return m;
}

static void free_allocs(allocs *a) {
    for (size_t i = 0; i < a->n; i++) free(a->p[i]);
    free(a->p);
}

static Onnx__TensorProto *tensor_proto(allocs *a, const pl_tensor *t, const char *name) {
    Onnx__TensorProto *tp = take(a, sizeof *tp);
    if (!tp) return NULL;
    onnx__tensor_proto__init(tp);
    tp->name = (char *)name;
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->n_dims = (size_t)(t->ndim > 0 ? t->ndim : 0);
    tp->dims = (int64_t *)t->dims;
    int64_t n = pl_numel(t);
    if (t->dtype == PL_STRING) {
        tp->n_string_data = (size_t)n;
        tp->string_data = take(a, (size_t)(n ? n : 1) * sizeof(ProtobufCBinaryData));
        if (!tp->string_data) return NULL;
        for (int64_t i = 0; i < n; i++) {
            const char *s = ((char *const *)t->data)[i];
            tp->string_data[i].data = (uint8_t *)(s ? s : "");
            tp->string_data[i].len = s ? strlen(s) : 0;
        }
    } else {
        tp->has_raw_data = 1;
        tp->raw_data.data = t->data;
        tp->raw_data.len = pl_nbytes(t);
    }
    return tp;
}

static Onnx__GraphProto *graph_proto(allocs *a, const pl_graph *g);

static Onnx__AttributeProto *attr_proto(allocs *a, const pl_attr *at) {
    Onnx__AttributeProto *ap = take(a, sizeof *ap);
    if (!ap) return NULL;
    onnx__attribute_proto__init(ap);
    ap->name = at->name;
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)at->type;
    switch (at->type) {
    case PL_ATTR_FLOAT: ap->has_f = 1; ap->f = at->f; break;
    case PL_ATTR_INT: ap->has_i = 1; ap->i = at->i; break;
    case PL_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)at->s;
        ap->s.len = at->slen;
        break;
    case PL_ATTR_FLOATS: ap->n_floats = at->n; ap->floats = at->floats; break;
    case PL_ATTR_INTS: ap->n_ints = at->n; ap->ints = at->ints; break;
    case PL_ATTR_STRINGS:
        ap->n_strings = at->n;
        ap->strings = take(a, (at->n ? at->n : 1) * sizeof(ProtobufCBinaryData));
        if (!ap->strings) return NULL;
        for (size_t i = 0; i < at->n; i++) {
            ap->strings[i].data = (uint8_t *)at->strings[i];
            ap->strings[i].len = strlen(at->strings[i]);
        }
        break;
    case PL_ATTR_TENSOR:
        if (!(ap->t = tensor_proto(a, at->t, NULL))) return NULL;
        break;
    case PL_ATTR_GRAPH:
        if (!(ap->g = graph_proto(a, at->g))) return NULL;
        break;
    default:
        return NULL;
    }
    return ap;
}

static Onnx__ValueInfoProto *value_info(allocs *a, const pl_value *v) {
    Onnx__ValueInfoProto *vi = take(a, sizeof *vi);
    Onnx__TypeProto *tp = take(a, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = take(a, sizeof *tt);
    if (!vi || !tp || !tt) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = v->name;
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)v->t.dtype;
    if (v->t.ndim >= 0) {
        Onnx__TensorShapeProto *sh = take(a, sizeof *sh);
        if (!sh) return NULL;
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)v->t.ndim;
        sh->dim = take(a, (size_t)(v->t.ndim ? v->t.ndim : 1) * sizeof *sh->dim);
        if (!sh->dim) return NULL;
        for (int d = 0; d < v->t.ndim; d++) {
            Onnx__TensorShapeProto__Dimension *dim = take(a, sizeof *dim);
            if (!dim) return NULL;
            onnx__tensor_shape_proto__dimension__init(dim);
            if (v->dim_names[d]) {
                dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                dim->dim_param = v->dim_names[d];
            } else if (v->t.dims[d] >= 0) {
                dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                dim->dim_value = v->t.dims[d];
            }
            sh->dim[d] = dim;
        }
        tt->shape = sh;
    }
    return vi;
}

static Onnx__GraphProto *graph_proto(allocs *a, const pl_graph *g) {
    Onnx__GraphProto *gp = take(a, sizeof *gp);
    if (!gp) return NULL;
    onnx__graph_proto__init(gp);
    gp->name = g->name ? g->name : (char *)"pillar";
    size_t ninit = 0;
    for (int v = 0; v < g->nvalues; v++)
        if (g->values[v].kind == PL_VALUE_CONST && g->values[v].producer < 0 && g->values[v].t.data) ninit++;
    gp->initializer = take(a, (ninit ? ninit : 1) * sizeof *gp->initializer);
    gp->input = take(a, (size_t)(g->ninputs ? g->ninputs : 1) * sizeof *gp->input);
    gp->output = take(a, (size_t)(g->noutputs ? g->noutputs : 1) * sizeof *gp->output);
    gp->node = take(a, (size_t)(g->nnodes ? g->nnodes : 1) * sizeof *gp->node);
    if (!gp->initializer || !gp->input || !gp->output || !gp->node) return NULL;
    for (int v = 0; v < g->nvalues; v++) {
        const pl_value *val = &g->values[v];
        if (val->kind == PL_VALUE_CONST && val->producer < 0 && val->t.data)
            if (!(gp->initializer[gp->n_initializer++] = tensor_proto(a, &val->t, val->name))) return NULL;
    }
    for (int i = 0; i < g->ninputs; i++)
        if (!(gp->input[gp->n_input++] = value_info(a, &g->values[g->inputs[i]]))) return NULL;
    for (int i = 0; i < g->noutputs; i++)
        if (!(gp->output[gp->n_output++] = value_info(a, &g->values[g->outputs[i]]))) return NULL;
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        Onnx__NodeProto *np = take(a, sizeof *np);
        if (!np) return NULL;
        onnx__node_proto__init(np);
        np->name = n->name;
        np->op_type = n->op_type;
        np->domain = n->domain && n->domain[0] ? n->domain : NULL;
        np->n_input = (size_t)n->nin;
        np->input = take(a, (size_t)(n->nin ? n->nin : 1) * sizeof(char *));
        np->n_output = (size_t)n->nout;
        np->output = take(a, (size_t)(n->nout ? n->nout : 1) * sizeof(char *));
        np->attribute = take(a, (size_t)(n->nattr ? n->nattr : 1) * sizeof *np->attribute);
        if (!np->input || !np->output || !np->attribute) return NULL;
        for (int k = 0; k < n->nin; k++) np->input[k] = n->in[k] >= 0 ? g->values[n->in[k]].name : (char *)"";
        for (int k = 0; k < n->nout; k++) np->output[k] = n->out[k] >= 0 ? g->values[n->out[k]].name : (char *)"";
        for (int k = 0; k < n->nattr; k++) {
            if (n->attrs[k].type == PL_ATTR_UNDEFINED) continue;
            if (!(np->attribute[np->n_attribute++] = attr_proto(a, &n->attrs[k]))) return NULL;
        }
        gp->node[gp->n_node++] = np;
    }
    return gp;
}

/* Writes len bytes to an open file; closes it. */
static pl_status write_all(FILE *f, const char *path, const uint8_t *buf, size_t len) {
    pl_status st = PL_OK;
    if (fwrite(buf, 1, len, f) != len) st = pl_error(PL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && st == PL_OK) st = pl_error(PL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return st;
}

/* Writes the file beside its target and renames it into place, so the target is
 * replaced whole or not at all, and a model loaded from it that maps its weights
 * (Gather tables, see import.c) keeps reading the old file's pages. A target that
 * exists and is not a regular file (/dev/stdout, a pipe) is written directly. The
 * temporary file is created with mode 0666 less the umask, like fopen's. */
static pl_status write_replacing(const char *path, const uint8_t *buf, size_t len) {
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        FILE *f = fopen(path, "wb");
        if (!f) return pl_error(PL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        return write_all(f, path, buf, len);
    }
    static atomic_uint counter;
    const size_t n = strlen(path) + 48;
    char *tmp = malloc(n);
    if (!tmp) return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    pl_status st = PL_OK;
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        st = pl_error(PL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
    } else {
        st = write_all(f, path, buf, len);
        if (st == PL_OK && rename(tmp, path) != 0)
            st = pl_error(PL_ERR_IO, "%s: cannot replace: %s", path, strerror(errno));
    }
    if (st != PL_OK && fd >= 0) unlink(tmp);
    free(tmp);
    return st;
}

pl_status pl_onnx_save_graph(const pl_graph *g, const pl_opset *opsets, int nopsets, const char *producer,
                             const char *path) {
    allocs a = {0};
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    mp.producer_name = (char *)(producer ? producer : "pillar");
    mp.producer_version = (char *)pillar_version();
    mp.n_opset_import = (size_t)nopsets;
    mp.opset_import = take(&a, (size_t)(nopsets ? nopsets : 1) * sizeof *mp.opset_import);
    for (int i = 0; mp.opset_import && i < nopsets; i++) {
        Onnx__OperatorSetIdProto *o = take(&a, sizeof *o);
        if (!o) break;
        onnx__operator_set_id_proto__init(o);
        o->domain = opsets[i].domain ? opsets[i].domain : (char *)"";
        o->has_version = 1;
        o->version = opsets[i].version;
        mp.opset_import[i] = o;
    }
    mp.graph = graph_proto(&a, g);
    if (a.failed || !mp.graph) {
        free_allocs(&a);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory while serialising the model", path);
    }
    size_t len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        free_allocs(&a);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, len);
    }
    onnx__model_proto__pack(&mp, buf);
    free_allocs(&a);
    pl_status st = write_replacing(path, buf, len);
    free(buf);
    return st;
}

pl_status pl_onnx_save(const pl_model *m, const char *path) {
    return pl_onnx_save_graph(m->graph, m->opsets, m->nopsets, m->producer && m->producer[0] ? m->producer : "pillar", path);
}
