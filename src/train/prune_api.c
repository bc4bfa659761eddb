/* prune_api.c -- the public one-shot pruning calls of pillar.h (`pillar prune`): finds
 * the constant float32 weights of Conv, Gemm and MatMul nodes, keeps the first and last
 * such layers (and any named ones) dense, prunes the rest with tr_prune_layers and
 * reports each layer's sparsity before and after. */
#include <stdlib.h>
#include <string.h>

#include "graph/ir.h"
#include "train/train.h"

struct pillar_prune_options {
    double sparsity;
    int block;
    int global;
    int keep_first_last;
    char **skip;
    size_t nskip;
};

typedef struct prune_row {
    char *name, *op;
    int ndim;
    int64_t dims[PL_MAX_DIMS];
    int64_t params, zeros_before, zeros_after;
    const char *note; /* "" pruned, else why it was kept */
} prune_row;

struct pillar_prune_report {
    size_t n;
    prune_row *rows;
};

pillar_status pillar_prune_options_create(pillar_prune_options **out) {
    pl_error_clear();
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_prune_options_create: out is NULL");
    pillar_prune_options *o = calloc(1, sizeof *o);
    if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
    o->block = 1;
    o->keep_first_last = 1;
    *out = o;
    return PL_OK;
}

void pillar_prune_options_destroy(pillar_prune_options *o) {
    if (!o) return;
    for (size_t i = 0; i < o->nskip; i++) free(o->skip[i]);
    free(o->skip);
    free(o);
}

pillar_status pillar_prune_options_set_sparsity(pillar_prune_options *o, double sparsity) {
    pl_error_clear();
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_prune_options_set_sparsity: options is NULL");
    if (!(sparsity >= 0.0 && sparsity <= 1.0))
        return pl_error(PL_ERR_ARGUMENT, "sparsity %g is not in [0, 1]", sparsity);
    o->sparsity = sparsity;
    return PL_OK;
}

pillar_status pillar_prune_options_set_block(pillar_prune_options *o, int block) {
    pl_error_clear();
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_prune_options_set_block: options is NULL");
    if (block < 1 || block > 1024)
        return pl_error(PL_ERR_ARGUMENT, "prune block %d is not in [1, 1024]", block);
    o->block = block;
    return PL_OK;
}

pillar_status pillar_prune_options_set_global(pillar_prune_options *o, int global) {
    pl_error_clear();
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_prune_options_set_global: options is NULL");
    o->global = global != 0;
    return PL_OK;
}

pillar_status pillar_prune_options_set_keep_first_last(pillar_prune_options *o, int keep) {
    pl_error_clear();
    if (!o)
        return pl_error(PL_ERR_ARGUMENT,
                        "pillar_prune_options_set_keep_first_last: options is NULL");
    o->keep_first_last = keep != 0;
    return PL_OK;
}

pillar_status pillar_prune_options_skip(pillar_prune_options *o, const char *node) {
    pl_error_clear();
    if (!o || !node)
        return pl_error(PL_ERR_ARGUMENT, "pillar_prune_options_skip: options or node is NULL");
    char **s = realloc(o->skip, (o->nskip + 1) * sizeof *s);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    o->skip = s;
    if (!(s[o->nskip] = strdup(node))) return pl_error(PL_ERR_NOMEM, "out of memory");
    o->nskip++;
    return PL_OK;
}

/* The prunable weight of node n (its constant float32 input 1) viewed along its
 * reduction axis; false if n has none. */
static bool prunable(const pl_graph *g, const pl_node *n, int *vid, tr_prune_layer *l) {
    bool conv = !strcmp(n->op_type, "Conv"), gemm = !strcmp(n->op_type, "Gemm");
    bool mm = !strcmp(n->op_type, "MatMul");
    if ((n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")) || !(conv || gemm || mm))
        return false;
    if (n->nin < 2 || n->in[1] < 0) return false;
    const pl_value *v = &g->values[n->in[1]];
    const pl_tensor *t = &v->t;
    if (v->kind != PL_VALUE_CONST || !t->data || t->dtype != PL_F32 || t->ndim < 1) return false;
    if (pl_numel(t) <= 0) return false;
    l->w = t->data;
    if (conv) {
        if (t->ndim < 3) return false;
        l->outer = t->dims[0];
        l->red = t->dims[1];
        l->inner = pl_dims_numel(t->ndim - 2, t->dims + 2);
    } else if (gemm) {
        if (t->ndim != 2) return false;
        bool tb = pl_attr_int(n, "transB", 0) != 0;
        l->outer = tb ? t->dims[0] : 1;
        l->red = tb ? t->dims[1] : t->dims[0];
        l->inner = tb ? 1 : t->dims[1];
    } else if (t->ndim == 1) {
        l->outer = 1;
        l->red = t->dims[0];
        l->inner = 1;
    } else {
        l->outer = pl_dims_numel(t->ndim - 2, t->dims);
        l->red = t->dims[t->ndim - 2];
        l->inner = t->dims[t->ndim - 1];
    }
    *vid = n->in[1];
    return true;
}

static int64_t count_zeros(const float *w, int64_t n) {
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return z;
}

void pillar_prune_report_destroy(pillar_prune_report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].name);
        free(r->rows[i].op);
    }
    free(r->rows);
    free(r);
}

pillar_status pillar_model_prune(pillar_model *m, const pillar_prune_options *o,
                                 pillar_prune_report **report_out) {
    pl_error_clear();
    if (!m || !o) return pl_error(PL_ERR_ARGUMENT, "pillar_model_prune: model or options is NULL");
    pl_graph *g = m->graph;
    int nn = g ? g->nnodes : 0;
    tr_prune_layer *ls = calloc((size_t)(nn ? nn : 1), sizeof *ls);
    int *node = calloc((size_t)(nn ? nn : 1), sizeof *node);
    bool *claimed = calloc((size_t)(g && g->nvalues ? g->nvalues : 1), sizeof *claimed);
    pillar_prune_report *r = calloc(1, sizeof *r);
    pl_status st = PL_OK;
    if (!ls || !node || !claimed || !r ||
        !(r->rows = calloc((size_t)(nn ? nn : 1), sizeof *r->rows))) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the candidate layers in graph order; a weight shared by several nodes counts once */
    int nl = 0;
    for (int i = 0; i < nn; i++) {
        int vid;
        if (!prunable(g, &g->nodes[i], &vid, &ls[nl]) || claimed[vid]) continue;
        claimed[vid] = true;
        node[nl++] = i;
    }
    /* sessions made from m share its weights: give the model its own copy to edit */
    for (int j = 0; j < nl && st == PL_OK; j++) {
        pl_value *v = &g->values[g->nodes[node[j]].in[1]];
        st = pl_value_make_writable(v);
        ls[j].w = v->t.data;
    }
    if (st != PL_OK) goto done;
    for (size_t s = 0; s < o->nskip; s++) {
        int j = 0;
        while (j < nl && strcmp(g->nodes[node[j]].name, o->skip[s])) j++;
        if (j == nl) {
            st = pl_error(PL_ERR_ARGUMENT,
                          "--skip '%s': no Conv, Gemm or MatMul node of that name with a constant "
                          "float weight",
                          o->skip[s]);
            goto done;
        }
    }
    /* rows of the report; the layers to prune are moved to the front of ls */
    int np = 0;
    for (int j = 0; j < nl; j++) {
        const pl_node *n = &g->nodes[node[j]];
        const pl_tensor *t = &g->values[n->in[1]].t;
        prune_row *row = &r->rows[r->n++];
        if (!(row->name = strdup(n->name)) || !(row->op = strdup(n->op_type))) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            goto done;
        }
        row->ndim = t->ndim;
        memcpy(row->dims, t->dims, sizeof row->dims);
        row->params = pl_numel(t);
        row->zeros_before = count_zeros(t->data, row->params);
        row->note = "";
        for (size_t s = 0; s < o->nskip; s++)
            if (!strcmp(n->name, o->skip[s])) row->note = "skipped";
        if (!row->note[0] && o->keep_first_last && j == nl - 1) row->note = "last layer";
        if (!row->note[0] && o->keep_first_last && j == 0) row->note = "first layer";
        if (!row->note[0]) ls[np++] = ls[j];
    }
    st = tr_prune_layers(ls, np, o->block, o->sparsity, o->global != 0);
    for (size_t i = 0; i < r->n; i++) {
        const pl_tensor *t = &g->values[g->nodes[node[i]].in[1]].t;
        r->rows[i].zeros_after = count_zeros(t->data, r->rows[i].params);
    }
done:
    free(ls);
    free(node);
    free(claimed);
    if (st == PL_OK && report_out)
        *report_out = r;
    else
        pillar_prune_report_destroy(r);
    return st;
}

size_t pillar_prune_report_count(const pillar_prune_report *r) {
    return r ? r->n : 0;
}

pillar_status pillar_prune_report_layer(const pillar_prune_report *r, size_t i,
                                        const char **node_out, const char **op_out,
                                        size_t *ndim_out, const int64_t **dims_out,
                                        int64_t *params_out, double *before_out, double *after_out,
                                        const char **note_out) {
    pl_error_clear();
    if (!r || i >= r->n)
        return pl_error(PL_ERR_ARGUMENT,
                        "pillar_prune_report_layer: layer %zu is out of range (%zu layers)", i,
                        r ? r->n : 0);
    const prune_row *row = &r->rows[i];
    double p = row->params > 0 ? (double)row->params : 1.0;
    if (node_out) *node_out = row->name;
    if (op_out) *op_out = row->op;
    if (ndim_out) *ndim_out = (size_t)row->ndim;
    if (dims_out) *dims_out = row->dims;
    if (params_out) *params_out = row->params;
    if (before_out) *before_out = (double)row->zeros_before / p;
    if (after_out) *after_out = (double)row->zeros_after / p;
    if (note_out) *note_out = row->note;
    return PL_OK;
}
