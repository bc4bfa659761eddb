/* ir.c -- construction, lookup, cloning and release of the graph IR, and the constant
 * data that a model shares with its sessions. */
#include "graph/ir.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct pl_shared_buf {
    atomic_int refs;
    void *data;
    void (*release)(void *ctx); /* set: data is not malloc'd; release(ctx) lets it go */
    void *ctx;
};

/* Serialises the first sharing clone of a graph, which turns its owned constants into
 * shared buffers (the refcounts themselves are atomic). */
static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;

static void shared_unref(pl_shared_buf *b) {
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        if (b->release)
            b->release(b->ctx);
        else
            free(b->data);
        free(b);
    }
}

pl_status pl_value_set_external(pl_value *v, void *data, void (*release)(void *ctx), void *ctx) {
    pl_shared_buf *b = malloc(sizeof *b);
    if (!b) {
        release(ctx);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    pl_value_drop_data(v);
    atomic_init(&b->refs, 1);
    b->data = data;
    b->release = release;
    b->ctx = ctx;
    v->shared = b;
    v->t.data = data;
    v->t.owns = false;
    v->t.cap = pl_nbytes(&v->t);
    return PL_OK;
}

void pl_value_drop_data(pl_value *v) {
    if (v->shared) {
        if (v->t.data == v->shared->data) {
            v->t.data = NULL;
            v->t.owns = false;
        }
        shared_unref(v->shared);
        v->shared = NULL;
    }
    pl_tensor_free_data(&v->t);
}

pl_status pl_value_make_writable(pl_value *v) {
    if (!v->shared) return PL_OK;
    if (v->t.data != v->shared->data) { /* replaced since: the share is stale */
        shared_unref(v->shared);
        v->shared = NULL;
        return PL_OK;
    }
    if (!v->shared->release && atomic_load_explicit(&v->shared->refs, memory_order_acquire) == 1) {
        /* the only holder: take the buffer back */
        v->t.owns = true;
        v->t.cap = pl_nbytes(&v->t);
        free(v->shared);
        v->shared = NULL;
        return PL_OK;
    }
    pl_tensor copy = v->t;
    copy.data = NULL;
    copy.owns = false;
    copy.cap = 0;
    PL_TRY(pl_tensor_copy(&copy, &v->t));
    shared_unref(v->shared);
    v->shared = NULL;
    v->t = copy;
    return PL_OK;
}

int pl_value_share_count(const pl_value *v) {
    return v->shared ? atomic_load_explicit(&v->shared->refs, memory_order_acquire) : 0;
}

/* Turns an owned constant into a shared one (caller holds share_lock). */
static bool share_value(pl_value *v) {
    if (v->shared || !v->t.data || !v->t.owns || v->t.dtype == PL_STRING) return true;
    pl_shared_buf *b = malloc(sizeof *b);
    if (!b) return false;
    atomic_init(&b->refs, 1);
    b->data = v->t.data;
    b->release = NULL;
    b->ctx = NULL;
    v->shared = b;
    v->t.owns = false;
    return true;
}

pl_graph *pl_graph_new(void) { return calloc(1, sizeof(pl_graph)); }

int pl_graph_find_value(const pl_graph *g, const char *name) {
    for (int i = 0; i < g->nvalues; i++)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int pl_graph_add_value(pl_graph *g, const char *name) {
    if (g->nvalues == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        pl_value *v = realloc(g->values, (size_t)cap * sizeof *v);
        if (!v) return -1;
        g->values = v;
        g->cap_values = cap;
    }
    pl_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof *v);
    v->name = strdup(name ? name : "");
    if (!v->name) return -1;
    v->t.ndim = -1;
    v->producer = -1;
    return g->nvalues++;
}

int pl_graph_add_node(pl_graph *g) {
    if (g->nnodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        pl_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) return -1;
        g->nodes = n;
        g->cap_nodes = cap;
    }
    memset(&g->nodes[g->nnodes], 0, sizeof(pl_node));
    return g->nnodes++;
}

void pl_attr_clear(pl_attr *a) {
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (size_t i = 0; i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    if (a->t) {
        pl_tensor_free_data(a->t);
        free(a->t);
    }
    if (a->g) pl_graph_free(a->g);
    memset(a, 0, sizeof *a);
}

static void node_clear(pl_node *n) {
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->nattr; i++) pl_attr_clear(&n->attrs[i]);
    free(n->attrs);
}

void pl_graph_free(pl_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nnodes; i++) node_clear(&g->nodes[i]);
    for (int i = 0; i < g->nvalues; i++) {
        pl_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < PL_MAX_DIMS; d++) free(v->dim_names[d]);
        pl_value_drop_data(v);
    }
    free(g->nodes);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    free(g);
}

void pl_model_free(pl_model *m) {
    if (!m) return;
    pl_graph_free(m->graph);
    for (int i = 0; i < m->nopsets; i++) free(m->opsets[i].domain);
    free(m->opsets);
    free(m->path);
    free(m->dir);
    free(m->producer);
    free(m);
}

int pl_model_opset(const pl_model *m, const char *domain) {
    if (!domain) domain = "";
    for (int i = 0; i < m->nopsets; i++) {
        const char *d = m->opsets[i].domain ? m->opsets[i].domain : "";
        bool dflt = !d[0] || strcmp(d, "ai.onnx") == 0;
        bool want_dflt = !domain[0] || strcmp(domain, "ai.onnx") == 0;
        if ((dflt && want_dflt) || strcmp(d, domain) == 0) return (int)m->opsets[i].version;
    }
    return 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void *dup_mem(const void *p, size_t n) {
    if (!p || !n) return NULL;
    void *q = malloc(n);
    if (q) memcpy(q, p, n);
    return q;
}

static pl_graph *clone_graph(pl_graph *s, pl_graph *parent, bool share);

static bool attr_copy(pl_attr *d, pl_attr *s, pl_graph *parent, bool share) {
    memset(d, 0, sizeof *d);
    d->name = strdup(s->name);
    d->type = s->type;
    d->f = s->f;
    d->i = s->i;
    d->slen = s->slen;
    d->n = s->n;
    if (s->s) {
        d->s = malloc(s->slen + 1);
        if (!d->s) return false;
        memcpy(d->s, s->s, s->slen + 1);
    }
    if (s->floats && !(d->floats = dup_mem(s->floats, s->n * sizeof(float)))) return false;
    if (s->ints && !(d->ints = dup_mem(s->ints, s->n * sizeof(int64_t)))) return false;
    if (s->strings) {
        d->strings = calloc(s->n ? s->n : 1, sizeof(char *));
        if (!d->strings) return false;
        for (size_t i = 0; i < s->n; i++)
            if (!(d->strings[i] = strdup(s->strings[i] ? s->strings[i] : ""))) return false;
    }
    if (s->t) {
        d->t = calloc(1, sizeof(pl_tensor));
        if (!d->t || pl_tensor_copy(d->t, s->t) != PL_OK) return false;
    }
    if (s->g && !(d->g = clone_graph(s->g, parent, share))) return false;
    return d->name != NULL;
}

/* `s` is only written when `share` (its owned constants become shared). */
static pl_graph *clone_graph(pl_graph *s, pl_graph *parent, bool share) {
    pl_graph *g = pl_graph_new();
    if (!g) return NULL;
    g->parent = parent;
    g->name = dup_or_null(s->name);
    g->values = calloc((size_t)(s->nvalues ? s->nvalues : 1), sizeof(pl_value));
    g->nodes = calloc((size_t)(s->nnodes ? s->nnodes : 1), sizeof(pl_node));
    g->inputs = dup_mem(s->inputs, (size_t)s->ninputs * sizeof(int));
    g->outputs = dup_mem(s->outputs, (size_t)s->noutputs * sizeof(int));
    g->ninputs = s->ninputs;
    g->noutputs = s->noutputs;
    if (!g->values || !g->nodes || (s->ninputs && !g->inputs) || (s->noutputs && !g->outputs))
        goto fail;
    g->cap_values = s->nvalues ? s->nvalues : 1;
    g->cap_nodes = s->nnodes ? s->nnodes : 1;
    for (int i = 0; i < s->nvalues; i++) {
        const pl_value *sv = &s->values[i];
        pl_value *dv = &g->values[i];
        g->nvalues = i + 1;
        *dv = *sv;
        dv->t.data = NULL;
        dv->t.owns = false;
        dv->t.cap = 0;
        dv->shared = NULL;
        memset(dv->dim_names, 0, sizeof dv->dim_names);
        dv->name = strdup(sv->name);
        if (!dv->name) goto fail;
        for (int d = 0; d < PL_MAX_DIMS; d++)
            if (sv->dim_names[d] && !(dv->dim_names[d] = strdup(sv->dim_names[d]))) goto fail;
        if (share && sv->t.data && !share_value(&s->values[i])) goto fail;
        if (share && sv->shared && sv->t.data == sv->shared->data) {
            atomic_fetch_add_explicit(&sv->shared->refs, 1, memory_order_relaxed);
            dv->shared = sv->shared;
            dv->t.data = sv->t.data;
            dv->t.cap = sv->t.cap;
        } else if (sv->t.data && pl_tensor_copy(&dv->t, &sv->t) != PL_OK) {
            goto fail;
        }
    }
    for (int i = 0; i < s->nnodes; i++) {
        pl_node *sn = &s->nodes[i];
        pl_node *dn = &g->nodes[i];
        g->nnodes = i + 1;
        *dn = *sn;
        dn->name = strdup(sn->name);
        dn->op_type = strdup(sn->op_type);
        dn->domain = strdup(sn->domain ? sn->domain : "");
        dn->in = dup_mem(sn->in, (size_t)sn->nin * sizeof(int));
        dn->out = dup_mem(sn->out, (size_t)sn->nout * sizeof(int));
        dn->attrs = sn->nattr ? calloc((size_t)sn->nattr, sizeof(pl_attr)) : NULL;
        dn->nattr = 0;
        if (!dn->name || !dn->op_type || !dn->domain || (sn->nin && !dn->in) ||
            (sn->nout && !dn->out) || (sn->nattr && !dn->attrs))
            goto fail;
        for (int a = 0; a < sn->nattr; a++) {
            dn->nattr = a + 1;
            if (!attr_copy(&dn->attrs[a], &sn->attrs[a], g, share)) goto fail;
        }
    }
    return g;
fail:
    pl_graph_free(g);
    return NULL;
}

pl_graph *pl_graph_clone(const pl_graph *s, pl_graph *parent) {
    return clone_graph((pl_graph *)s, parent, false); /* not written when not sharing */
}

pl_graph *pl_graph_clone_shared(pl_graph *s, pl_graph *parent) {
    pthread_mutex_lock(&share_lock);
    pl_graph *g = clone_graph(s, parent, true);
    pthread_mutex_unlock(&share_lock);
    return g;
}

const pl_attr *pl_attr_find(const pl_node *n, const char *name) {
    for (int i = 0; i < n->nattr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t pl_attr_int(const pl_node *n, const char *name, int64_t def) {
    const pl_attr *a = pl_attr_find(n, name);
    return a && a->type == PL_ATTR_INT ? a->i : def;
}

float pl_attr_float(const pl_node *n, const char *name, float def) {
    const pl_attr *a = pl_attr_find(n, name);
    if (a && a->type == PL_ATTR_FLOAT) return a->f;
    if (a && a->type == PL_ATTR_INT) return (float)a->i;
    return def;
}

const char *pl_attr_str(const pl_node *n, const char *name, const char *def) {
    const pl_attr *a = pl_attr_find(n, name);
    return a && a->type == PL_ATTR_STRING ? a->s : def;
}

const int64_t *pl_attr_ints(const pl_node *n, const char *name, size_t *count) {
    const pl_attr *a = pl_attr_find(n, name);
    if (a && a->type == PL_ATTR_INTS) {
        *count = a->n;
        static const int64_t none[1];
        return a->ints ? a->ints : none;
    }
    *count = 0;
    return NULL;
}

const float *pl_attr_floats(const pl_node *n, const char *name, size_t *count) {
    const pl_attr *a = pl_attr_find(n, name);
    if (a && a->type == PL_ATTR_FLOATS) {
        *count = a->n;
        static const float none[1];
        return a->floats ? a->floats : none;
    }
    *count = 0;
    return NULL;
}
