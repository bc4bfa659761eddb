/* halos_pass.c -- the --lsh-output rewrite (see halos_pass.h): finds the model's wide
 * last layer and turns it into a PillarHalosTopK node with two outputs. Runs on a
 * session's private graph after the fusion passes, so a MatMul's bias and scale are
 * already attributes of the node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/fuse.h"
#include "graph/halos_pass.h"

/* A node after the layer that only maps logits monotonically (dropped by the rewrite):
 * Sigmoid, or Softmax/LogSoftmax over the last axis of a rank-r input. */
static bool ranking_tail(const fz_ctx *z, const pl_node *n) {
    if (fz_is_op(n, "Sigmoid")) return true;
    if (!fz_is_op(n, "Softmax") && !fz_is_op(n, "LogSoftmax")) return false;
    int r = fz_rank(z, n->in[0]);
    int64_t axis = pl_attr_int(n, "axis", n->opset >= 13 || n->opset == 0 ? -1 : 1);
    if (axis < 0) axis += r;
    /* before opset 13 the axis flattens the trailing dims: the same for axis = r - 1 */
    return r >= 1 && axis == r - 1;
}

/* A fused activation that keeps the order of the logits (ties aside). */
static bool monotone_act(const pl_node *n) {
    const char *act = pl_attr_str(n, "pillar_act", NULL);
    if (!act) return true;
    if (!strcmp(act, "LeakyRelu")) return pl_attr_float(n, "pillar_act_alpha", 0.01f) >= 0;
    return !strcmp(act, "Relu") || !strcmp(act, "Clip") || !strcmp(act, "Sigmoid") || !strcmp(act, "HardSigmoid") ||
           !strcmp(act, "Tanh");
}

typedef struct layer {
    int node, tail;    /* the Gemm/MatMul, and the dropped Softmax/Sigmoid (-1: none) */
    int a, w, bias;    /* value ids (bias -1: none) */
    bool trans_b;
    float alpha, beta;
    int64_t n_out;
} layer;

/* Checks that graph output `out` comes from a suitable layer; on failure writes why
 * into why[] and returns false. */
static bool find_layer(const fz_ctx *z, int out, layer *l, char *why, size_t nwhy) {
    const pl_graph *g = z->g;
    const char *oname = g->values[out].name;
    int p = fz_producer(z, out);
    memset(l, 0, sizeof *l);
    l->tail = -1;
    if (p < 0) {
        snprintf(why, nwhy, "output '%s' is not computed by a node", oname);
        return false;
    }
    if (z->uses[out] > 0) {
        snprintf(why, nwhy, "output '%s' is also read by other nodes", oname);
        return false;
    }
    const pl_node *n = &g->nodes[p];
    if (ranking_tail(z, n) && n->nout == 1) {
        int q = fz_producer(z, n->in[0]);
        if (q >= 0 && fz_single_use(z, n->in[0]) && (fz_is_op(&g->nodes[q], "Gemm") || fz_is_op(&g->nodes[q], "MatMul"))) {
            l->tail = p;
            p = q;
            n = &g->nodes[p];
        }
    }
    if (!fz_is_op(n, "Gemm") && !fz_is_op(n, "MatMul")) {
        snprintf(why, nwhy, "output '%s' is made by node '%s' (%s), not by a Gemm or MatMul", oname, n->name,
                 n->op_type);
        return false;
    }
    l->node = p;
    l->a = n->in[0];
    l->w = n->nin > 1 ? n->in[1] : -1;
    l->bias = -1;
    l->alpha = 1;
    l->beta = 1;
    const pl_value *w = l->w >= 0 ? &g->values[l->w] : NULL;
    if (!w || !fz_is_const(z, l->w) || w->t.dtype != PL_F32 || w->t.ndim != 2) {
        snprintf(why, nwhy, "last layer '%s' (%s): the weight is not a constant float32 matrix", n->name, n->op_type);
        return false;
    }
    if (pl_attr_int(n, "pillar_residual", 0)) {
        snprintf(why, nwhy, "last layer '%s' (%s) adds a residual input", n->name, n->op_type);
        return false;
    }
    if (!monotone_act(n)) {
        snprintf(why, nwhy, "last layer '%s' (%s) ends in a %s activation, which changes the ranking", n->name,
                 n->op_type, pl_attr_str(n, "pillar_act", "?"));
        return false;
    }
    if (fz_is_op(n, "Gemm")) {
        if (pl_attr_int(n, "transA", 0)) {
            snprintf(why, nwhy, "last layer '%s' (Gemm) has transA = 1", n->name);
            return false;
        }
        l->trans_b = pl_attr_int(n, "transB", 0) != 0;
        l->alpha = pl_attr_float(n, "alpha", 1.0f);
        l->beta = pl_attr_float(n, "beta", 1.0f);
        if (n->nin > 2 && n->in[2] >= 0) l->bias = n->in[2];
    } else {
        l->alpha = pl_attr_float(n, "pillar_alpha", 1.0f);
        if (pl_attr_int(n, "pillar_bias", 0) && n->nin > 2 && n->in[2] >= 0) l->bias = n->in[2];
        int r = fz_rank(z, l->a);
        if (r == 0) {
            snprintf(why, nwhy, "last layer '%s' (MatMul) has a scalar input", n->name);
            return false;
        }
    }
    l->n_out = l->trans_b ? w->t.dims[0] : w->t.dims[1];
    if (l->bias >= 0) {
        const pl_value *b = &g->values[l->bias];
        int64_t nb = b->t.ndim >= 0 ? pl_numel(&b->t) : -1;
        if (!fz_is_const(z, l->bias) || b->t.dtype != PL_F32 || (nb != l->n_out && nb != 1)) {
            snprintf(why, nwhy, "last layer '%s' (%s): the bias is not a constant float32 of %lld values or one",
                     n->name, n->op_type, (long long)l->n_out);
            return false;
        }
    }
    if (l->n_out < PL_HALOS_MIN_OUTPUTS) {
        snprintf(why, nwhy, "last layer '%s' (%s) has %lld outputs; an LSH index pays off from %d", n->name,
                 n->op_type, (long long)l->n_out, PL_HALOS_MIN_OUTPUTS);
        return false;
    }
    return true;
}

/* A new value named base + suffix (with _1, _2 ... if the name is taken). */
static int new_value(pl_graph *g, const char *base, const char *suffix) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    for (int i = 1; pl_graph_find_value(g, name) >= 0 && i < 1000; i++)
        snprintf(name, sizeof name, "%s%s_%d", base, suffix, i);
    return pl_graph_add_value(g, name);
}

static pl_status nomem(void) { return pl_error(PL_ERR_NOMEM, "out of memory in the --lsh-output rewrite"); }

/* The rewrite itself: node l->node becomes PillarHalosTopK(A, W, bias) writing scores
 * and labels, which replace graph output oi. */
static pl_status rewrite(fz_ctx *z, const layer *l, int oi, int K, int L, int k) {
    pl_graph *g = z->g;
    int out = g->outputs[oi];
    char base[400];
    snprintf(base, sizeof base, "%s", g->values[out].name);
    int sv = new_value(g, base, "_topk_scores");
    int lv = sv >= 0 ? new_value(g, base, "_topk_labels") : -1;
    int *outs = realloc(g->outputs, sizeof(int) * (size_t)(g->noutputs + 1));
    if (sv < 0 || lv < 0 || !outs) {
        if (outs) g->outputs = outs;
        return nomem();
    }
    g->outputs = outs;
    pl_node *n = &g->nodes[l->node];
    int *nout = realloc(n->out, 2 * sizeof(int));
    if (!nout) return nomem();
    n->out = nout;
    n->nout = 2;
    PL_TRY(fz_retype(z, l->node, "PillarHalosTopK"));
    PL_TRY(fz_set_input(z, l->node, 2, l->bias));
    n = &g->nodes[l->node];
    n->nin = l->bias >= 0 ? 3 : 2;
    PL_TRY(fz_set_attr_int(z, l->node, "trans_b", l->trans_b));
    PL_TRY(fz_set_attr_float(z, l->node, "alpha", l->alpha));
    PL_TRY(fz_set_attr_float(z, l->node, "beta", l->beta));
    PL_TRY(fz_set_attr_int(z, l->node, "K", K));
    PL_TRY(fz_set_attr_int(z, l->node, "L", L));
    PL_TRY(fz_set_attr_int(z, l->node, "k", k));
    fz_set_output(z, l->node, 0, sv);
    fz_set_output(z, l->node, 1, lv);
    if (l->tail >= 0) fz_kill(z, l->tail);
    g->values[out].is_output = false;
    g->values[sv].is_output = g->values[lv].is_output = true;
    memmove(&g->outputs[oi + 2], &g->outputs[oi + 1], sizeof(int) * (size_t)(g->noutputs - oi - 1));
    g->outputs[oi] = sv;
    g->outputs[oi + 1] = lv;
    g->noutputs++;
    z->changes++;
    return PL_OK;
}

pl_status pl_graph_lsh_output(pl_graph *g, int K, int L, int k) {
    if (!g) return pl_error(PL_ERR_ARGUMENT, "--lsh-output: no graph");
    fz_ctx z;
    pl_status st = fz_analyze(&z, g);
    char why[512] = "the model has no outputs";
    int found = -1;
    layer l;
    for (int i = 0; st == PL_OK && i < g->noutputs && found < 0; i++) {
        char w[512];
        if (find_layer(&z, g->outputs[i], &l, w, sizeof w))
            found = i;
        else if (i == 0)
            snprintf(why, sizeof why, "%s", w);
    }
    if (st == PL_OK && found < 0)
        st = pl_error(PL_ERR_UNSUPPORTED,
                      "--lsh-output needs a last layer that is a Gemm or MatMul with a constant weight of at "
                      "least %d outputs: %s",
                      PL_HALOS_MIN_OUTPUTS, why);
    if (st == PL_OK) st = rewrite(&z, &l, found, K, L, k);
    fz_finish(&z);
    return st;
}
