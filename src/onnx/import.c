/* import.c -- ONNX ModelProto -> pl_model. Everything a hostile or broken file can get
 * wrong is checked here, before any op sees it: duplicate or dangling value names,
 * cycles, malformed tensors and attributes. Nodes come out topologically sorted. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx_import.h"
#include "onnx/raw_split.h"

/* ---- a small string -> value id hash map, used only while building a graph ---- */
typedef struct name_map {
    char **keys;
    int *vals;
    size_t cap, n;
} name_map;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int map_get(const name_map *m, const char *k) {
    if (!m->cap) return -1;
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return -1;
        if (strcmp(m->keys[i], k) == 0) return m->vals[i];
    }
}

static bool map_put(name_map *m, char *k, int v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        char **nk = calloc(nc, sizeof *nk);
        int *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return false;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t j = hash_str(m->keys[i]) & (nc - 1);
            while (nk[j]) j = (j + 1) & (nc - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i]) i = (i + 1) & (m->cap - 1);
    m->keys[i] = k; /* borrowed from the graph's value */
    m->vals[i] = v;
    m->n++;
    return true;
}

static void map_free(name_map *m) {
    free(m->keys);
    free(m->vals);
}

typedef struct builder {
    pl_graph *g;
    name_map names;
    struct builder *parent;
    const char *dir;
    const pl_raw_split *raw; /* payloads left out of the unpacked main graph, or NULL */
    /* main-graph initializers whose payload is placed once the nodes are known (mapped
     * or read: place_payloads) */
    struct late_payload {
        int id;
        const pl_raw_ref *ref;
    } *late;
    size_t nlate;
} builder;

static pl_status nomem(void) { return pl_error(PL_ERR_NOMEM, "out of memory while loading the model"); }

static int add_value(builder *b, const char *name) {
    int id = pl_graph_add_value(b->g, name);
    if (id < 0) return -1;
    if (!map_put(&b->names, b->g->values[id].name, id)) return -1;
    return id;
}

/* A name used inside a subgraph that an enclosing graph defines. */
static bool defined_outside(const builder *b, const char *name) {
    for (const builder *p = b->parent; p; p = p->parent)
        if (map_get(&p->names, name) >= 0) return true;
    return false;
}

static pl_status import_graph(builder *b, const Onnx__GraphProto *gp);

/* ---- mapped embedding tables ----
 * An embedding table (BERT's word embeddings: 30522 x 768 floats, 94 MB) is read only
 * by Gather, which copies the few rows its indices pick. Reading the whole payload into
 * memory makes all of it resident; mapping the file instead makes resident only the
 * pages of the rows used. A mapped payload sits at its file offset, so it is not
 * aligned even to its element size: only consumers that copy bytes (Gather's data
 * input) may read it, hence the check on the whole graph before mapping. */

/* Payloads of at least this many bytes, read only by Gather, are mapped. */
#define MAP_MIN ((uint64_t)1 << 20)

static pl_status add_late(builder *b, int id, const pl_raw_ref *ref) {
    struct late_payload *l = realloc(b->late, (b->nlate + 1) * sizeof *l);
    if (!l) return nomem();
    b->late = l;
    b->late[b->nlate++] = (struct late_payload){id, ref};
    return PL_OK;
}

/* Whether g or a subgraph nested in it has a value of this name. */
static bool names_value(const pl_graph *g, const char *name) {
    if (pl_graph_find_value(g, name) >= 0) return true;
    for (int i = 0; i < g->nnodes; i++)
        for (int a = 0; a < g->nodes[i].nattr; a++)
            if (g->nodes[i].attrs[a].g && names_value(g->nodes[i].attrs[a].g, name)) return true;
    return false;
}

/* Value `id` of the main graph is read, and only as the data input of default-domain
 * Gather nodes; it is no graph output and no subgraph names it. */
static bool gather_only(const pl_graph *g, int id) {
    if (g->values[id].is_output) return false;
    bool used = false;
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] != id) continue;
            bool dflt = !n->domain[0] || !strcmp(n->domain, "ai.onnx");
            if (k != 0 || !dflt || strcmp(n->op_type, "Gather") != 0) return false;
            used = true;
        }
        for (int a = 0; a < n->nattr; a++)
            if (n->attrs[a].g && names_value(n->attrs[a].g, g->values[id].name)) return false;
    }
    return used;
}

typedef struct mapping {
    void *base;
    size_t len;
} mapping;

static void unmap(void *ctx) {
    mapping *m = ctx;
    munmap(m->base, m->len);
    free(m);
}

/* Maps a payload read-only (the pages that hold it; MADV_RANDOM: a row's page fault
 * reads no more of the file ahead) as v's data. PL_ERR_UNSUPPORTED when it cannot be
 * mapped: then the caller reads it. */
static pl_status map_payload(const pl_raw_split *raw, const pl_raw_ref *ref, pl_value *v) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) return PL_ERR_UNSUPPORTED;
    uint64_t start = ref->offset - ref->offset % (uint64_t)pg;
    size_t len = (size_t)(ref->offset + ref->len - start);
    void *base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, raw->fd, (off_t)start);
    if (base == MAP_FAILED) return PL_ERR_UNSUPPORTED;
    (void)madvise(base, len, MADV_RANDOM);
    mapping *m = malloc(sizeof *m);
    if (!m) {
        munmap(base, len);
        return nomem();
    }
    m->base = base;
    m->len = len;
    return pl_value_set_external(v, (char *)base + (ref->offset - start), unmap, m);
}

/* The late payloads: mapped when only Gather reads them (and PILLAR_MMAP is not 0),
 * else read like the others. */
static pl_status place_payloads(builder *b) {
    const char *env = getenv("PILLAR_MMAP");
    bool may_map = !(env && env[0] == '0');
    for (size_t i = 0; i < b->nlate; i++) {
        const struct late_payload *l = &b->late[i];
        pl_value *v = &b->g->values[l->id];
        if (may_map && gather_only(b->g, l->id)) {
            pl_status st = map_payload(b->raw, l->ref, v);
            if (st == PL_OK) continue;
            if (st != PL_ERR_UNSUPPORTED) return st;
        }
        PL_TRY(pl_raw_split_read(b->raw, l->ref, v->t.data));
    }
    return PL_OK;
}

static pl_status set_value_type(pl_value *v, const Onnx__TypeProto *tp) {
    if (!tp) return PL_OK;
    for (int d = 0; d < PL_MAX_DIMS; d++) { /* a value declared twice: the last wins */
        free(v->dim_names[d]);
        v->dim_names[d] = NULL;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        v->t.dtype = PL_UNDEF; /* sequence, map, optional...: rejected at session creation */
        v->declared = true;
        v->t.ndim = -2;
        return PL_OK;
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    v->t.dtype = tt->has_elem_type ? (pl_dtype)tt->elem_type : PL_UNDEF;
    v->declared = true;
    if (!tt->shape) {
        v->t.ndim = -1;
        return PL_OK;
    }
    if (tt->shape->n_dim > PL_MAX_DIMS)
        return pl_error(PL_ERR_UNSUPPORTED, "value '%s' has %zu dimensions, at most %d supported", v->name, tt->shape->n_dim, PL_MAX_DIMS);
    v->t.ndim = (int)tt->shape->n_dim;
    int64_t known = 1; /* product of the known dims, to catch overflow */
    for (size_t d = 0; d < tt->shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        v->t.dims[d] = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dim->dim_value < 0)
                return pl_error(PL_ERR_MODEL, "value '%s': dimension %zu is negative (%lld)", v->name, d, (long long)dim->dim_value);
            v->t.dims[d] = dim->dim_value;
            if (dim->dim_value > 0 && known <= INT64_MAX / dim->dim_value) known *= dim->dim_value;
            else if (dim->dim_value > 0 && known > INT64_MAX / dim->dim_value)
                return pl_error(PL_ERR_MODEL, "value '%s': the declared shape overflows (dimension %zu = %lld)", v->name, d, (long long)dim->dim_value);
        } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param && dim->dim_param[0]) {
            if (!(v->dim_names[d] = strdup(dim->dim_param))) return nomem();
        }
    }
    return PL_OK;
}

static pl_status import_attr(builder *b, const pl_node *n, const Onnx__AttributeProto *ap, pl_attr *a) {
    if (!ap->name || !ap->name[0]) return pl_error(PL_ERR_MODEL, "node '%s' (%s): attribute without a name", n->name, n->op_type);
    if (!(a->name = strdup(ap->name))) return nomem();
    if (ap->ref_attr_name && ap->ref_attr_name[0])
        return pl_error(PL_ERR_UNSUPPORTED, "node '%s' (%s): attribute '%s' refers to a function attribute", n->name, n->op_type, ap->name);
    int type = ap->has_type ? (int)ap->type : 0;
    if (!type) { /* IR < 0.0.2 models leave type unset: infer it from the filled field */
        if (ap->has_f) type = PL_ATTR_FLOAT;
        else if (ap->has_i) type = PL_ATTR_INT;
        else if (ap->has_s) type = PL_ATTR_STRING;
        else if (ap->t) type = PL_ATTR_TENSOR;
        else if (ap->g) type = PL_ATTR_GRAPH;
        else if (ap->n_floats) type = PL_ATTR_FLOATS;
        else if (ap->n_ints) type = PL_ATTR_INTS;
        else if (ap->n_strings) type = PL_ATTR_STRINGS;
    }
    a->type = (pl_attr_type)type;
    switch (type) {
    case PL_ATTR_FLOAT: a->f = ap->f; break;
    case PL_ATTR_INT: a->i = ap->i; break;
    case PL_ATTR_STRING:
        if (!(a->s = malloc(ap->s.len + 1))) return nomem();
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        a->slen = ap->s.len;
        break;
    case PL_ATTR_FLOATS:
        a->n = ap->n_floats;
        if (a->n) {
            if (!(a->floats = malloc(a->n * sizeof(float)))) return nomem();
            memcpy(a->floats, ap->floats, a->n * sizeof(float));
        }
        break;
    case PL_ATTR_INTS:
        a->n = ap->n_ints;
        if (a->n) {
            if (!(a->ints = malloc(a->n * sizeof(int64_t)))) return nomem();
            memcpy(a->ints, ap->ints, a->n * sizeof(int64_t));
        }
        break;
    case PL_ATTR_STRINGS:
        a->n = ap->n_strings;
        if (!(a->strings = calloc(a->n ? a->n : 1, sizeof(char *)))) return nomem();
        for (size_t i = 0; i < a->n; i++) {
            if (!(a->strings[i] = malloc(ap->strings[i].len + 1))) return nomem();
            if (ap->strings[i].len) memcpy(a->strings[i], ap->strings[i].data, ap->strings[i].len);
            a->strings[i][ap->strings[i].len] = 0;
        }
        break;
    case PL_ATTR_TENSOR:
        if (!ap->t) return pl_error(PL_ERR_MODEL, "node '%s' (%s): tensor attribute '%s' has no tensor", n->name, n->op_type, ap->name);
        if (!(a->t = calloc(1, sizeof(pl_tensor)))) return nomem();
        {
            pl_status st = pl_onnx_tensor_from_proto(ap->t, b->dir, a->t);
            if (st != PL_OK) {
                pl_error_prefix("node '%s' (%s): attribute '%s'", n->name, n->op_type, ap->name);
                return st;
            }
        }
        break;
    case PL_ATTR_GRAPH: {
        if (!ap->g) return pl_error(PL_ERR_MODEL, "node '%s' (%s): graph attribute '%s' has no graph", n->name, n->op_type, ap->name);
        builder sub = {.g = pl_graph_new(), .parent = b, .dir = b->dir};
        if (!sub.g) return nomem();
        sub.g->parent = b->g;
        a->g = sub.g;
        pl_status st = import_graph(&sub, ap->g);
        map_free(&sub.names);
        if (st != PL_OK) {
            pl_error_prefix("node '%s' (%s): subgraph '%s'", n->name, n->op_type, ap->name);
            return st;
        }
        break;
    }
    case PL_ATTR_TENSORS: case PL_ATTR_GRAPHS:
    default:
        /* kept as UNDEFINED: ops that need them report it */
        a->type = PL_ATTR_UNDEFINED;
        break;
    }
    return PL_OK;
}

/* Kahn's algorithm over value dependencies; a leftover node lies on a cycle. */
static pl_status topo_sort(pl_graph *g) {
    int n = g->nnodes;
    if (n == 0) return PL_OK;
    int *indeg = calloc((size_t)n, sizeof(int)), *order = malloc((size_t)n * sizeof(int));
    int *cons_start = calloc((size_t)g->nvalues + 1, sizeof(int));
    if (!indeg || !order || !cons_start) {
        free(indeg); free(order); free(cons_start);
        return nomem();
    }
    /* consumers of each value, as a CSR list */
    int total = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && g->values[v].producer >= 0) {
                cons_start[v + 1]++;
                indeg[i]++;
                total++;
            }
        }
    for (int v = 0; v < g->nvalues; v++) cons_start[v + 1] += cons_start[v];
    int *cons = malloc((size_t)(total ? total : 1) * sizeof(int)), *fill = calloc((size_t)g->nvalues, sizeof(int));
    if (!cons || !fill) {
        free(indeg); free(order); free(cons_start); free(cons); free(fill);
        return nomem();
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && g->values[v].producer >= 0) cons[cons_start[v] + fill[v]++] = i;
        }
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        int i = order[head++];
        for (int k = 0; k < g->nodes[i].nout; k++) {
            int v = g->nodes[i].out[k];
            if (v < 0) continue;
            for (int c = cons_start[v]; c < cons_start[v + 1]; c++)
                if (--indeg[cons[c]] == 0) order[tail++] = cons[c];
        }
    }
    pl_status st = PL_OK;
    if (tail < n) {
        int bad = 0;
        while (bad < n && !indeg[bad]) bad++;
        st = pl_error(PL_ERR_MODEL, "the graph has a cycle through node '%s' (%s)", g->nodes[bad].name, g->nodes[bad].op_type);
    } else {
        pl_node *sorted = malloc((size_t)n * sizeof(pl_node));
        if (!sorted) {
            st = nomem();
        } else {
            for (int i = 0; i < n; i++) sorted[i] = g->nodes[order[i]];
            free(g->nodes);
            g->nodes = sorted;
            g->cap_nodes = n;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < g->nodes[i].nout; k++)
                    if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
        }
    }
    free(indeg); free(order); free(cons_start); free(cons); free(fill);
    return st;
}

static pl_status import_graph(builder *b, const Onnx__GraphProto *gp) {
    pl_graph *g = b->g;
    if (gp->name && !(g->name = strdup(gp->name))) return nomem();
    if (gp->n_sparse_initializer)
        return pl_error(PL_ERR_UNSUPPORTED, "sparse initializers are not supported (initializer '%s')", gp->sparse_initializer[0]->values && gp->sparse_initializer[0]->values->name ? gp->sparse_initializer[0]->values->name : "?");

    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !tp->name[0]) return pl_error(PL_ERR_MODEL, "initializer %zu has no name", i);
        if (map_get(&b->names, tp->name) >= 0) return pl_error(PL_ERR_MODEL, "initializer '%s' is defined twice", tp->name);
        int id = add_value(b, tp->name);
        if (id < 0) return nomem();
        pl_value *v = &g->values[id];
        v->kind = PL_VALUE_CONST;
        const pl_raw_ref *ref = b->parent ? NULL : pl_raw_split_find(b->raw, i);
        if (!ref) {
            PL_TRY(pl_onnx_tensor_from_proto(tp, b->dir, &v->t));
            continue;
        }
        /* raw_data left out by raw_split.c: checked and allocated here, then read */
        Onnx__TensorProto copy = *tp;
        copy.has_raw_data = 1;
        copy.raw_data.len = (size_t)ref->len;
        copy.raw_data.data = NULL;
        PL_TRY(pl_onnx_tensor_from_proto(&copy, b->dir, &v->t));
        bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        if (external || v->t.dtype == PL_STRING || !v->t.data || pl_nbytes(&v->t) != ref->len)
            continue;
        if (!b->raw->mem && ref->len >= MAP_MIN) {
            PL_TRY(add_late(b, id, ref));
            continue;
        }
        PL_TRY(pl_raw_split_read(b->raw, ref, v->t.data));
    }
    g->inputs = malloc((gp->n_input ? gp->n_input : 1) * sizeof(int));
    if (!g->inputs) return nomem();
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !vi->name[0]) return pl_error(PL_ERR_MODEL, "graph input %zu has no name", i);
        int id = map_get(&b->names, vi->name);
        if (id >= 0 && g->values[id].kind == PL_VALUE_CONST) continue; /* default value */
        if (id >= 0) return pl_error(PL_ERR_MODEL, "graph input '%s' is listed twice", vi->name);
        if ((id = add_value(b, vi->name)) < 0) return nomem();
        g->values[id].kind = PL_VALUE_INPUT;
        PL_TRY(set_value_type(&g->values[id], vi->type));
        if (!vi->type && !b->parent) return pl_error(PL_ERR_MODEL, "graph input '%s' has no type", vi->name);
        g->inputs[g->ninputs++] = id;
    }

    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        int ni = pl_graph_add_node(g);
        if (ni < 0) return nomem();
        pl_node *n = &g->nodes[ni];
        if (!np->op_type || !np->op_type[0]) return pl_error(PL_ERR_MODEL, "node %zu ('%s') has no op_type", i, np->name ? np->name : "");
        n->op_type = strdup(np->op_type);
        n->domain = strdup(np->domain ? np->domain : "");
        if (np->name && np->name[0]) {
            n->name = strdup(np->name);
        } else {
            char tmp[160];
            snprintf(tmp, sizeof tmp, "%s_%zu", np->op_type, i);
            n->name = strdup(tmp);
        }
        n->in = malloc((np->n_input ? np->n_input : 1) * sizeof(int));
        n->out = malloc((np->n_output ? np->n_output : 1) * sizeof(int));
        n->attrs = np->n_attribute ? calloc(np->n_attribute, sizeof(pl_attr)) : NULL;
        if (!n->op_type || !n->domain || !n->name || !n->in || !n->out || (np->n_attribute && !n->attrs)) return nomem();
        for (size_t a = 0; a < np->n_attribute; a++) {
            n = &g->nodes[ni];
            n->nattr = (int)a + 1;
            PL_TRY(import_attr(b, n, np->attribute[a], &n->attrs[a]));
            for (size_t q = 0; q < a; q++)
                if (strcmp(n->attrs[q].name, n->attrs[a].name) == 0)
                    return pl_error(PL_ERR_MODEL, "node '%s' (%s): attribute '%s' given twice", n->name, n->op_type, n->attrs[a].name);
        }
        n = &g->nodes[ni]; /* (subgraph import does not move this graph's nodes, but be safe) */
        for (size_t k = 0; k < np->n_input; k++) {
            const char *nm = np->input[k];
            n->nin = (int)k + 1;
            if (!nm || !nm[0]) {
                n->in[k] = -1;
                continue;
            }
            int id = map_get(&b->names, nm);
            if (id < 0) {
                if ((id = add_value(b, nm)) < 0) return nomem();
                if (defined_outside(b, nm)) g->values[id].kind = PL_VALUE_OUTER;
            }
            n->in[k] = id;
        }
        for (size_t k = 0; k < np->n_output; k++) {
            const char *nm = np->output[k];
            n->nout = (int)k + 1;
            if (!nm || !nm[0]) {
                n->out[k] = -1;
                continue;
            }
            int id = map_get(&b->names, nm);
            if (id < 0 && (id = add_value(b, nm)) < 0) return nomem();
            pl_value *v = &g->values[id];
            if (v->producer >= 0)
                return pl_error(PL_ERR_MODEL, "value '%s' is produced by two nodes, '%s' and '%s'", nm, g->nodes[v->producer].name, n->name);
            if (v->kind == PL_VALUE_CONST || v->kind == PL_VALUE_INPUT)
                return pl_error(PL_ERR_MODEL, "node '%s' (%s) writes '%s', which is already a graph %s", n->name, n->op_type, nm, v->kind == PL_VALUE_CONST ? "initializer" : "input");
            if (v->kind == PL_VALUE_OUTER) v->kind = PL_VALUE_INTERMEDIATE; /* shadows */
            v->producer = ni;
            n->out[k] = id;
        }
    }
    /* every consumed value must come from somewhere */
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            int id = n->in[k];
            if (id < 0) continue;
            const pl_value *v = &g->values[id];
            if (v->kind == PL_VALUE_INTERMEDIATE && v->producer < 0)
                return pl_error(PL_ERR_MODEL, "node '%s' (%s): input '%s' is not produced by any node, initializer or graph input", n->name, n->op_type, v->name);
        }
    }
    g->outputs = malloc((gp->n_output ? gp->n_output : 1) * sizeof(int));
    if (!g->outputs) return nomem();
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !vi->name[0]) return pl_error(PL_ERR_MODEL, "graph output %zu has no name", i);
        int id = map_get(&b->names, vi->name);
        if (id < 0 && b->parent && defined_outside(b, vi->name)) {
            if ((id = add_value(b, vi->name)) < 0) return nomem();
            g->values[id].kind = PL_VALUE_OUTER;
        }
        if (id < 0) return pl_error(PL_ERR_MODEL, "graph output '%s' is not produced by any node, initializer or input", vi->name);
        pl_value *v = &g->values[id];
        v->is_output = true;
        if (vi->type && v->kind == PL_VALUE_INTERMEDIATE) PL_TRY(set_value_type(v, vi->type));
        g->outputs[g->noutputs++] = id;
    }
    if (!b->parent && gp->n_output == 0) return pl_error(PL_ERR_MODEL, "the graph has no outputs");
    if (b->nlate) PL_TRY(place_payloads(b));
    return topo_sort(g);
}

/* Weights at least this big are read straight into their tensors (raw_split.h). */
#define RAW_SPLIT_MIN 4096

/* Loads from `bytes`; with raw (non-NULL), `bytes` is raw->bytes, the model without its
 * big payloads, which raw supplies. */
static pl_status load_model(const uint8_t *bytes, size_t len, const pl_raw_split *raw,
                            const char *path, const char *dir, pl_model **out) {
    if (len == 0) return pl_error(PL_ERR_MODEL, "%s: empty file, not an ONNX model", path);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
    if (!mp) return pl_error(PL_ERR_MODEL, "%s: not a valid ONNX model (the protobuf data is corrupt or truncated)", path);
    pl_status st = PL_OK;
    pl_model *m = calloc(1, sizeof *m);
    if (!m) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return nomem();
    }
    m->path = strdup(path);
    m->dir = strdup(dir ? dir : ".");
    m->producer = strdup(mp->producer_name ? mp->producer_name : "");
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->opsets = calloc(mp->n_opset_import + 1, sizeof(pl_opset));
    if (!m->path || !m->dir || !m->producer || !m->opsets) {
        st = nomem();
        goto done;
    }
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        m->opsets[i].domain = strdup(mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "");
        m->opsets[i].version = mp->opset_import[i]->has_version ? mp->opset_import[i]->version : 1;
        m->nopsets = (int)i + 1;
        if (!m->opsets[i].domain) {
            st = nomem();
            goto done;
        }
    }
    if (!mp->graph) {
        st = pl_error(PL_ERR_MODEL, "%s: the file has no graph (is it an ONNX model?)", path);
        goto done;
    }
    /* Model-local functions (mp->functions) are not expanded: a node calling one is
     * reported as an unknown op. */
    builder b = {.g = pl_graph_new(), .dir = m->dir, .raw = raw};
    if (!b.g) {
        st = nomem();
        goto done;
    }
    m->graph = b.g;
    st = import_graph(&b, mp->graph);
    map_free(&b.names);
    free(b.late);
    if (st == PL_OK && pl_model_opset(m, "") == 0 && m->graph->nnodes > 0) {
        /* no default-domain opset_import: ONNX treats that as opset 1 */
        pl_opset *o = realloc(m->opsets, (size_t)(m->nopsets + 1) * sizeof *o);
        if (!o) st = nomem();
        else {
            m->opsets = o;
            o[m->nopsets].domain = strdup("");
            o[m->nopsets].version = 1;
            if (!o[m->nopsets].domain) st = nomem();
            else m->nopsets++;
        }
    }
    if (st != PL_OK) pl_error_prefix("%s", path);
done:
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != PL_OK) {
        pl_model_free(m);
        return st;
    }
    *out = m;
    return PL_OK;
}

pl_status pl_onnx_load(const uint8_t *bytes, size_t len, const char *path, const char *dir,
                       pl_model **out) {
    pl_raw_split raw;
    if (!pl_raw_split_make(bytes, len, RAW_SPLIT_MIN, &raw)) return load_model(bytes, len, NULL, path, dir, out);
    raw.mem = bytes;
    raw.fd = -1;
    pl_status st = load_model(raw.bytes, raw.len, &raw, path, dir, out);
    pl_raw_split_free(&raw);
    return st;
}

/* A model file: its bytes are mapped (not read), the structure scanned and the big
 * payloads read from the file into their tensors, so the weights are held once. Falls
 * back to reading the whole file when it cannot be mapped or split. */
static pl_status load_file(const char *path, const char *dir, pl_model **out) {
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uint64_t)sb.st_size <= ((uint64_t)1 << 31)) {
        size_t len = (size_t)sb.st_size;
        void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            pl_raw_split raw;
            bool split = pl_raw_split_make(map, len, RAW_SPLIT_MIN, &raw);
            munmap(map, len);
            if (split) {
                raw.mem = NULL;
                raw.fd = fd;
                pl_status st = load_model(raw.bytes, raw.len, &raw, path, dir, out);
                pl_raw_split_free(&raw);
                close(fd);
                return st;
            }
        }
    }
    if (fd >= 0) close(fd);
    uint8_t *buf = NULL;
    size_t len = 0;
    pl_status st = pl_read_file(path, &buf, &len);
    if (st != PL_OK) return st;
    st = load_model(buf, len, NULL, path, dir, out);
    free(buf);
    return st;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 2);
    if (!d) return NULL;
    if (n == 0) {
        strcpy(d, "/");
    } else {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

pillar_status pillar_model_load(const char *path, pillar_model **out) {
    pl_error_clear();
    if (!path || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_model_load: NULL argument");
    char *dir = dir_of(path);
    if (!dir) return nomem();
    pl_status st = load_file(path, dir, out);
    free(dir);
    return st;
}

pillar_status pillar_model_load_memory(const void *bytes, size_t size, const char *name,
                                       pillar_model **out) {
    pl_error_clear();
    if (!bytes || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_model_load_memory: NULL argument");
    return pl_onnx_load(bytes, size, name ? name : "<memory>", ".", out);
}

void pillar_model_destroy(pillar_model *m) { pl_model_free(m); }
