/* graph_build.h -- building small graphs directly in the IR for the unit tests of graph
 * passes (test_fusion.c, test_qdq_fusion.c). Inputs and constants differ per test and
 * stay in the test files; this holds what they share: a model with one default-domain
 * opset, values by name, nodes from comma-separated value names, attributes, outputs. */
#ifndef PL_TEST_GRAPH_BUILD_H
#define PL_TEST_GRAPH_BUILD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ir.h"

static inline pl_model *tb_new(const char *path, int opset) {
    pl_model *m = calloc(1, sizeof *m);
    m->path = strdup(path);
    m->nopsets = 1;
    m->opsets = calloc(1, sizeof(pl_opset));
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = opset;
    m->graph = pl_graph_new();
    return m;
}

/* The value called `name`, made on first use. */
static inline int tb_val(pl_model *m, const char *name) {
    int v = pl_graph_find_value(m->graph, name);
    return v >= 0 ? v : pl_graph_add_value(m->graph, name);
}

/* A node; inputs/outputs are comma-separated names ("" for an omitted input). */
static inline int tb_node(pl_model *m, const char *op, const char *ins, const char *outs) {
    pl_graph *g = m->graph;
    int i = pl_graph_add_node(g);
    pl_node *n = &g->nodes[i];
    char nm[64];
    snprintf(nm, sizeof nm, "%s_%d", op, i);
    n->name = strdup(nm);
    n->op_type = strdup(op);
    n->domain = strdup("");
    n->in = calloc(16, sizeof(int));
    n->out = calloc(16, sizeof(int));
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass ? outs : ins;
        int *cnt = pass ? &n->nout : &n->nin, *arr = pass ? n->out : n->in;
        while (s && *s) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", (int)len, s);
            arr[(*cnt)++] = len ? tb_val(m, buf) : -1;
            n = &g->nodes[i]; /* tb_val may have grown the value array, not the nodes */
            s = e ? e + 1 : NULL;
        }
    }
    for (int k = 0; k < n->nout; k++) g->values[n->out[k]].producer = i;
    return i;
}

static inline pl_attr *tb_attr(pl_model *m, int i, const char *name, pl_attr_type t) {
    pl_node *n = &m->graph->nodes[i];
    n->attrs = realloc(n->attrs, (size_t)(n->nattr + 1) * sizeof(pl_attr));
    pl_attr *a = &n->attrs[n->nattr++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->type = t;
    return a;
}
static inline void tb_attr_i(pl_model *m, int i, const char *name, int64_t v) {
    tb_attr(m, i, name, PL_ATTR_INT)->i = v;
}
static inline void tb_attr_f(pl_model *m, int i, const char *name, float v) {
    tb_attr(m, i, name, PL_ATTR_FLOAT)->f = v;
}
static inline void tb_attr_s(pl_model *m, int i, const char *name, const char *s) {
    pl_attr *a = tb_attr(m, i, name, PL_ATTR_STRING);
    a->s = strdup(s);
    a->slen = strlen(s);
}
static inline void tb_attr_ints(pl_model *m, int i, const char *name, int n, const int64_t *v) {
    pl_attr *a = tb_attr(m, i, name, PL_ATTR_INTS);
    a->n = (size_t)n;
    a->ints = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

/* Marks value `name` as a graph output. */
static inline void tb_output(pl_model *m, const char *name) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    g->values[v].is_output = true;
    g->outputs = realloc(g->outputs, (size_t)(g->noutputs + 1) * sizeof(int));
    g->outputs[g->noutputs++] = v;
}

#endif
