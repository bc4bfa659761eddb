/* fuse_norm.c -- recognises layer normalisation written out as element-wise math (what
 * PyTorch exports for nn.LayerNorm below opset 17):
 *
 *   m = ReduceMean(x, axes=[-1])       d = Sub(x, m)
 *   v = ReduceMean(Pow(d, 2) or Mul(d, d), axes=[-1])
 *   n = Div(d, Sqrt(Add(v, eps)))      y = Add(Mul(n, gamma), beta)   (Mul/Add optional)
 *
 * and replaces it with one LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)
 * node, which the fast kernel runs in one pass over each row. */
#include <stdlib.h>
#include <string.h>

#include "graph/fuse.h"

/* The node reading v, when v has exactly one reader of type `op` (and no other). */
static int sole(const fz_ctx *z, int v, const char *op, int *slot) {
    int i = fz_only_consumer(z, v, slot);
    return i >= 0 && fz_is_op(&z->g->nodes[i], op) && z->g->nodes[i].nout == 1 ? i : -1;
}

/* A ReduceMean over only the last axis of its input, keeping dims. */
static bool mean_last_axis(const fz_ctx *z, const pl_node *n) {
    if (!fz_is_op(n, "ReduceMean") || n->nout != 1 || n->nin < 1) return false;
    if (pl_attr_int(n, "keepdims", 1) != 1) return false;
    int r = fz_rank(z, n->in[0]);
    if (r < 1) return false;
    int64_t axis;
    if (n->opset >= 18 && n->nin >= 2 && n->in[1] >= 0) {
        const pl_tensor *t = fz_is_const(z, n->in[1]) ? &z->g->values[n->in[1]].t : NULL;
        if (!t || pl_numel(t) != 1 || !pl_dtype_is_int(t->dtype)) return false;
        axis = pl_get_i64(t, 0);
    } else {
        size_t na;
        const int64_t *axes = pl_attr_ints(n, "axes", &na);
        if (!axes || na != 1) return false;
        axis = axes[0];
    }
    return axis == -1 || axis == r - 1;
}

/* The other input of a two-input node (the one that is not v), or -2. */
static int other_in(const pl_node *n, int v) {
    if (n->nin != 2) return -2;
    if (n->in[0] == v && n->in[1] != v) return n->in[1];
    if (n->in[1] == v && n->in[0] != v) return n->in[0];
    return -2;
}

/* Matches the pattern rooted at the ReduceMean node r1; rewrites it on success. */
static pl_status match_at(fz_ctx *z, int r1) {
    pl_graph *g = z->g;
    const pl_node *R1 = &g->nodes[r1];
    if (R1->nin < 1 || R1->nout < 1) return PL_OK; /* malformed: the op's infer() reports it */
    int x = R1->in[0], m = R1->out[0];
    if (!fz_known_f32(z, x) || !mean_last_axis(z, R1)) return PL_OK;
    int r = fz_rank(z, x);
    int64_t C = fz_dim(z, x, r - 1);
    if (C <= 0) return PL_OK;
    int slot;
    int sub = sole(z, m, "Sub", &slot);
    if (sub < 0 || slot != 1 || g->nodes[sub].in[0] != x) return PL_OK;
    int d = g->nodes[sub].out[0];
    /* d feeds the square (Pow(d, 2) or Mul(d, d)) and the Div, nothing else */
    if (z->pinned[d]) return PL_OK;
    int sq = -1, div = -1, nread = 0;
    for (int i = sub + 1; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        const pl_node *n = &g->nodes[i];
        int reads = 0;
        for (int k = 0; k < n->nin; k++) reads += n->in[k] == d;
        if (!reads) continue;
        nread += reads;
        double e;
        if (fz_is_op(n, "Pow") && n->nin == 2 && n->in[0] == d && fz_const_scalar(z, n->in[1], &e) &&
            e == 2.0)
            sq = i;
        else if (fz_is_op(n, "Mul") && n->nin == 2 && n->in[0] == d && n->in[1] == d)
            sq = i;
        else if (fz_is_op(n, "Div") && n->nin == 2 && n->in[0] == d && n->in[1] != d)
            div = i;
        else
            return PL_OK;
    }
    if (sq < 0 || div < 0 || nread != z->uses[d]) return PL_OK;
    int r2 = sole(z, g->nodes[sq].out[0], "ReduceMean", NULL);
    if (r2 < 0 || !mean_last_axis(z, &g->nodes[r2])) return PL_OK;
    int add = sole(z, g->nodes[r2].out[0], "Add", NULL);
    if (add < 0) return PL_OK;
    double eps;
    int ce = other_in(&g->nodes[add], g->nodes[r2].out[0]);
    if (ce < 0 || !fz_const_scalar(z, ce, &eps) || !(eps >= 0)) return PL_OK;
    int sqrt_n = sole(z, g->nodes[add].out[0], "Sqrt", NULL);
    if (sqrt_n < 0 || g->nodes[div].in[1] != g->nodes[sqrt_n].out[0] ||
        !fz_single_use(z, g->nodes[sqrt_n].out[0]))
        return PL_OK;
    int last = div, y = g->nodes[div].out[0];
    int gamma = -1, beta = -1, mul = -1, badd = -1;
    /* optional Mul by gamma, then optional Add of beta */
    int cand = fz_single_use(z, y) ? fz_only_consumer(z, y, NULL) : -1;
    if (cand >= 0 && fz_is_op(&g->nodes[cand], "Mul") && g->nodes[cand].nout == 1) {
        int gv = other_in(&g->nodes[cand], y);
        if (gv >= 0 && fz_is_const(z, gv) && g->values[gv].t.dtype == PL_F32 &&
            pl_numel(&g->values[gv].t) == C) {
            mul = cand;
            gamma = gv;
            last = mul;
            y = g->nodes[mul].out[0];
            cand = fz_single_use(z, y) ? fz_only_consumer(z, y, NULL) : -1;
            if (cand >= 0 && fz_is_op(&g->nodes[cand], "Add") && g->nodes[cand].nout == 1) {
                int bv = other_in(&g->nodes[cand], y);
                if (bv >= 0 && fz_is_const(z, bv) && g->values[bv].t.dtype == PL_F32 &&
                    pl_numel(&g->values[bv].t) == C) {
                    badd = cand;
                    beta = bv;
                    last = badd;
                    y = g->nodes[badd].out[0];
                }
            }
        }
    }
    /* the normalised result must keep x's shape (gamma/beta only along the last axis) */
    if (!fz_same_shape(z, x, y)) return PL_OK;
    float *buf = malloc((size_t)C * sizeof(float));
    if (!buf) return pl_error(PL_ERR_NOMEM, "out of memory in graph passes");
    int sc, bi = -1;
    pl_status st = PL_OK;
    if (gamma >= 0)
        fz_const_floats(z, gamma, buf, C);
    else
        for (int64_t j = 0; j < C; j++) buf[j] = 1.0f;
    if (gamma >= 0 && g->values[gamma].t.ndim == 1)
        sc = gamma;
    else
        st = fz_add_const_f32(z, "pillar_ln_scale", 1, &C, buf, &sc);
    if (st == PL_OK && beta >= 0) {
        if (g->values[beta].t.ndim == 1)
            bi = beta;
        else if (fz_const_floats(z, beta, buf, C))
            st = fz_add_const_f32(z, "pillar_ln_bias", 1, &C, buf, &bi);
    }
    free(buf);
    PL_TRY(st);
    /* the last node of the pattern becomes the LayerNormalization */
    int nodes[] = {r1, sub, sq, r2, add, sqrt_n, div, mul, badd};
    for (size_t k = 0; k < sizeof nodes / sizeof nodes[0]; k++)
        if (nodes[k] >= 0 && nodes[k] != last) fz_kill(z, nodes[k]);
    PL_TRY(fz_retype(z, last, "LayerNormalization"));
    PL_TRY(fz_set_input(z, last, 0, x));
    PL_TRY(fz_set_input(z, last, 1, sc));
    if (bi >= 0) PL_TRY(fz_set_input(z, last, 2, bi));
    PL_TRY(fz_set_attr_int(z, last, "axis", -1));
    PL_TRY(fz_set_attr_float(z, last, "epsilon", (float)eps));
    z->changes++;
    return PL_OK;
}

pl_status fz_pass_layernorm(fz_ctx *z) {
    for (int i = 0; i < z->g->nnodes; i++) {
        if (z->dead[i] || !fz_is_op(&z->g->nodes[i], "ReduceMean")) continue;
        PL_TRY(match_at(z, i));
    }
    return PL_OK;
}
