/* fuse_qdq.c -- the QDQ fusion pass (see fuse_qdq.h). It runs on the graph as loaded:
 * its own use counts and producers, no shape probe; every rewrite checks only what
 * the constants' data and the ops' attributes prove, and the integer ops check the
 * rest at planning. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/fuse.h"
#include "graph/fuse_qdq.h"
#include "ops/op.h"

typedef struct qz {
    pl_graph *g;
    int *uses, *prod;
    bool *pinned, *dead;
    int changes;
} qz;

static const pl_tensor *cval(const qz *z, int v) {
    if (v < 0 || v >= z->g->nvalues) return NULL;
    const pl_value *val = &z->g->values[v];
    return val->kind == PL_VALUE_CONST && val->t.data ? &val->t : NULL;
}

static bool cscalar(const qz *z, int v) {
    const pl_tensor *t = cval(z, v);
    return t && pl_numel(t) == 1;
}

/* A constant's data, also when a Constant node makes it (exporters write Clip's bounds
 * that way); only for reading values here, never as an input of a fused node. */
static const pl_tensor *cval_any(const qz *z, int v) {
    const pl_tensor *t = cval(z, v);
    if (t || v < 0 || v >= z->g->nvalues || z->prod[v] < 0 || z->dead[z->prod[v]]) return t;
    const pl_node *n = &z->g->nodes[z->prod[v]];
    if (!fz_is_op(n, "Constant")) return NULL;
    const pl_attr *a = pl_attr_find(n, "value");
    return a && a->type == PL_ATTR_TENSOR && a->t && a->t->data ? a->t : NULL;
}

/* The live node producing v if it is `op`, else -1. */
static int prod_op(const qz *z, int v, const char *op) {
    if (v < 0) return -1;
    int p = z->prod[v];
    return p >= 0 && !z->dead[p] && fz_is_op(&z->g->nodes[p], op) ? p : -1;
}

/* The one live consumer of v (not pinned, one use), or -1. */
static int only_consumer(const qz *z, int v) {
    if (v < 0 || z->pinned[v] || z->uses[v] != 1) return -1;
    for (int i = 0; i < z->g->nnodes; i++) {
        if (z->dead[i]) continue;
        const pl_node *n = &z->g->nodes[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == v) return i;
    }
    return -1;
}

static void kill(qz *z, int i) {
    z->dead[i] = true;
    const pl_node *n = &z->g->nodes[i];
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0) z->uses[n->in[k]]--;
}

/* Kills DQ node d when nothing reads its output any more. */
static void kill_if_unused(qz *z, int d) {
    if (d >= 0 && !z->dead[d] && z->uses[z->g->nodes[d].out[0]] == 0 && !z->pinned[z->g->nodes[d].out[0]])
        kill(z, d);
}

/* A DQ / Q node's parameters: scalar constant scale and zero point (zp required, it
 * gives the 8-bit type). */
static bool q_scalar_params(const qz *z, const pl_node *n) {
    if (n->nin < 3 || !cscalar(z, n->in[1]) || !cscalar(z, n->in[2])) return false;
    const pl_tensor *zp = cval(z, n->in[2]), *s = cval(z, n->in[1]);
    return (zp->dtype == PL_U8 || zp->dtype == PL_I8) && s->dtype == PL_F32;
}

static bool same_params(const qz *z, const pl_node *a, const pl_node *b) {
    const pl_tensor *sa = cval(z, a->in[1]), *sb = cval(z, b->in[1]);
    const pl_tensor *za = cval(z, a->in[2]), *zb = cval(z, b->in[2]);
    return *(const float *)sa->data == *(const float *)sb->data && za->dtype == zb->dtype &&
           pl_get_i64(za, 0) == pl_get_i64(zb, 0);
}

/* ---- node editing ---- */

static pl_status set_inputs(qz *z, int i, const int *in, int nin) {
    pl_node *n = &z->g->nodes[i];
    int *a = malloc(sizeof(int) * (size_t)nin);
    if (!a) return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0) z->uses[n->in[k]]--;
    for (int k = 0; k < nin; k++) {
        a[k] = in[k];
        if (in[k] >= 0) z->uses[in[k]]++;
    }
    free(n->in);
    n->in = a;
    n->nin = nin;
    return PL_OK;
}

static pl_attr *attr_slot(pl_node *n, const char *name) {
    for (int a = 0; a < n->nattr; a++)
        if (!strcmp(n->attrs[a].name, name)) {
            pl_attr_clear(&n->attrs[a]);
            memset(&n->attrs[a], 0, sizeof n->attrs[a]);
            if (!(n->attrs[a].name = strdup(name))) return NULL;
            return &n->attrs[a];
        }
    pl_attr *na = realloc(n->attrs, sizeof *na * (size_t)(n->nattr + 1));
    if (!na) return NULL;
    n->attrs = na;
    memset(&na[n->nattr], 0, sizeof *na);
    if (!(na[n->nattr].name = strdup(name))) return NULL;
    return &na[n->nattr++];
}

static pl_status attr_int(pl_node *n, const char *name, int64_t v) {
    pl_attr *a = attr_slot(n, name);
    if (!a) return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    a->type = PL_ATTR_INT;
    a->i = v;
    return PL_OK;
}

static pl_status attr_float(pl_node *n, const char *name, float v) {
    pl_attr *a = attr_slot(n, name);
    if (!a) return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    a->type = PL_ATTR_FLOAT;
    a->f = v;
    return PL_OK;
}

static pl_status attr_str(pl_node *n, const char *name, const char *s) {
    pl_attr *a = attr_slot(n, name);
    if (!a || !(a->s = strdup(s))) return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    a->type = PL_ATTR_STRING;
    a->slen = strlen(s);
    return PL_OK;
}

static void drop_attrs(pl_node *n) {
    for (int a = 0; a < n->nattr; a++) pl_attr_clear(&n->attrs[a]);
    free(n->attrs);
    n->attrs = NULL;
    n->nattr = 0;
}

static pl_status retype(pl_node *n, const char *domain, const char *op) {
    char *d = strdup(domain), *o = strdup(op);
    if (!d || !o) {
        free(d);
        free(o);
        return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    }
    free(n->domain);
    free(n->op_type);
    n->domain = d;
    n->op_type = o;
    n->op = pl_op_find(domain, op);
    if (!n->op) return pl_error(PL_ERR_UNSUPPORTED, "QDQ fusion: no op %s", op);
    return PL_OK;
}

/* A new constant (data copied); grows the per-value arrays. */
static pl_status new_const(qz *z, const char *base, pl_dtype dt, int ndim, const int64_t *dims,
                           const void *data, int *id) {
    pl_graph *g = z->g;
    char buf[256];
    int suffix = 0;
    snprintf(buf, sizeof buf, "%s", base);
    while (pl_graph_find_value(g, buf) >= 0) snprintf(buf, sizeof buf, "%s_%d", base, ++suffix);
    const int old = g->nvalues;
    int v = pl_graph_add_value(g, buf);
    if (v < 0) return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    int *u = realloc(z->uses, sizeof(int) * (size_t)g->nvalues), *p;
    if (u) z->uses = u;
    p = realloc(z->prod, sizeof(int) * (size_t)g->nvalues);
    if (p) z->prod = p;
    bool *pn = realloc(z->pinned, sizeof(bool) * (size_t)g->nvalues);
    if (pn) z->pinned = pn;
    if (!u || !p || !pn) return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    for (int k = old; k < g->nvalues; k++) {
        z->uses[k] = 0;
        z->prod[k] = -1;
        z->pinned[k] = false;
    }
    pl_value *val = &g->values[v];
    val->kind = PL_VALUE_CONST;
    val->producer = -1;
    pl_tensor_set_shape(&val->t, dt, ndim, dims);
    PL_TRY(pl_tensor_alloc(&val->t));
    memcpy(val->t.data, data, pl_nbytes(&val->t));
    *id = v;
    return PL_OK;
}

/* ---- the output chain: [Relu | Clip] [-> Q] ---- */

typedef struct chain {
    const char *act; /* NULL, "Relu", "Clip" */
    float lo, hi;
    int act_node, q_node; /* -1 if none */
    int final;            /* the value the fused node writes */
} chain;

static void follow(const qz *z, int y, bool allow_clip, chain *c) {
    c->act = NULL;
    c->lo = -INFINITY;
    c->hi = INFINITY;
    c->act_node = c->q_node = -1;
    c->final = y;
    int n = only_consumer(z, y);
    if (n >= 0) {
        const pl_node *a = &z->g->nodes[n];
        if (fz_is_op(a, "Relu") && a->nout == 1) {
            c->act = "Relu";
            c->lo = 0;
            c->act_node = n;
        } else if (allow_clip && fz_is_op(a, "Clip") && a->nout == 1 && a->in[0] == y) {
            float lo = -INFINITY, hi = INFINITY;
            bool ok = true;
            if (a->opset < 11) {
                lo = pl_attr_float(a, "min", -INFINITY);
                hi = pl_attr_float(a, "max", INFINITY);
            } else {
                const pl_tensor *b1 = a->nin > 1 ? cval_any(z, a->in[1]) : NULL;
                const pl_tensor *b2 = a->nin > 2 ? cval_any(z, a->in[2]) : NULL;
                if (a->nin > 1 && a->in[1] >= 0) {
                    ok = ok && b1 && pl_numel(b1) == 1;
                    if (ok) lo = (float)pl_get_f64(b1, 0);
                }
                if (a->nin > 2 && a->in[2] >= 0) {
                    ok = ok && b2 && pl_numel(b2) == 1;
                    if (ok) hi = (float)pl_get_f64(b2, 0);
                }
            }
            if (ok) {
                c->act = "Clip";
                c->lo = lo;
                c->hi = hi;
                c->act_node = n;
            }
        }
        if (c->act_node >= 0) c->final = z->g->nodes[c->act_node].out[0];
    }
    n = only_consumer(z, c->final);
    if (n >= 0) {
        const pl_node *q = &z->g->nodes[n];
        if (fz_is_op(q, "QuantizeLinear") && q->in[0] == c->final && q_scalar_params(z, q) &&
            pl_attr_int(q, "saturate", 1) == 1) {
            c->q_node = n;
            c->final = q->out[0];
        }
    }
}

static pl_status put_act(pl_node *n, const chain *c) {
    if (!c->act) return PL_OK;
    PL_TRY(attr_str(n, "pillar_act", c->act));
    PL_TRY(attr_float(n, "pillar_act_alpha", c->lo));
    return attr_float(n, "pillar_act_beta", c->hi);
}

/* ---- Conv / MatMul / Gemm ---- */

/* Float bias values (M) from a DQ node or a float constant; false if neither. */
static bool bias_floats(const qz *z, int v, int64_t M, double *out, int *dq) {
    *dq = prod_op(z, v, "DequantizeLinear");
    if (*dq >= 0) {
        const pl_node *d = &z->g->nodes[*dq];
        const pl_tensor *q = cval(z, d->in[0]), *s = d->nin > 1 ? cval(z, d->in[1]) : NULL;
        const pl_tensor *zp = d->nin > 2 ? cval(z, d->in[2]) : NULL;
        if (!q || !s || pl_numel(q) != M || (pl_numel(s) != 1 && pl_numel(s) != M)) return false;
        if (d->nin > 2 && d->in[2] >= 0 && (!zp || (pl_numel(zp) != 1 && pl_numel(zp) != M))) return false;
        for (int64_t m = 0; m < M; m++) {
            double zz = zp ? pl_get_f64(zp, pl_numel(zp) == 1 ? 0 : m) : 0;
            out[m] = (pl_get_f64(q, m) - zz) * (double)(float)pl_get_f64(s, pl_numel(s) == 1 ? 0 : m);
        }
        return true;
    }
    const pl_tensor *t = cval(z, v);
    if (!t || t->dtype != PL_F32 || pl_numel(t) != M) return false;
    for (int64_t m = 0; m < M; m++) out[m] = ((const float *)t->data)[m];
    return true;
}

static pl_status fuse_linear(qz *z, int i) {
    pl_graph *g = z->g;
    pl_node *n = &g->nodes[i];
    const bool conv = fz_is_op(n, "Conv"), gemm = fz_is_op(n, "Gemm"), mm = fz_is_op(n, "MatMul");
    if ((!conv && !gemm && !mm) || n->nin < 2 || n->nout != 1) return PL_OK;
    const int dx = prod_op(z, n->in[0], "DequantizeLinear");
    const int dw = prod_op(z, n->in[1], "DequantizeLinear");
    if (dx < 0 || dw < 0 || n->in[0] == n->in[1]) return PL_OK;
    const pl_node *X = &g->nodes[dx], *W = &g->nodes[dw];
    if (!q_scalar_params(z, X) || cval(z, X->in[0])) return PL_OK;
    const pl_tensor *wq = cval(z, W->in[0]), *ws = W->nin > 1 ? cval(z, W->in[1]) : NULL;
    const pl_tensor *wz = W->nin > 2 && W->in[2] >= 0 ? cval(z, W->in[2]) : NULL;
    if (!wq || !ws || ws->dtype != PL_F32 || (wq->dtype != PL_I8 && wq->dtype != PL_U8)) return PL_OK;
    if (W->nin > 2 && W->in[2] >= 0 && !wz) return PL_OK;
    if (pl_attr_int(W, "block_size", 0) != 0) return PL_OK;
    bool trans_b = false;
    int64_t M, K = 0;
    int want_axis;
    if (conv) {
        if (wq->ndim < 3) return PL_OK;
        M = wq->dims[0];
        want_axis = 0;
    } else {
        if (wq->ndim != 2) return PL_OK;
        if (gemm) {
            if (pl_attr_int(n, "transA", 0) || pl_attr_float(n, "alpha", 1) != 1.0f) return PL_OK;
            if (n->nin > 2 && n->in[2] >= 0 && pl_attr_float(n, "beta", 1) != 1.0f) return PL_OK;
            trans_b = pl_attr_int(n, "transB", 0) != 0;
        }
        M = trans_b ? wq->dims[0] : wq->dims[1];
        K = trans_b ? wq->dims[1] : wq->dims[0];
        want_axis = trans_b ? 0 : 1;
    }
    const int64_t nws = pl_numel(ws);
    if (nws != 1) {
        int64_t ax = pl_attr_int(W, "axis", 1);
        if (ax < 0) ax += wq->ndim;
        if (ws->ndim != 1 || nws != M || ax != want_axis) return PL_OK;
    }
    if (wz && (pl_numel(wz) != nws || wz->dtype != wq->dtype)) return PL_OK;
    /* bias */
    const int bv = (conv || gemm) && n->nin > 2 ? n->in[2] : -1;
    double *bf = NULL;
    int db = -1;
    int32_t *bi = NULL;
    const float xs = *(const float *)cval(z, X->in[1])->data;
    if (bv >= 0) {
        bf = malloc(sizeof(double) * (size_t)(M + 1));
        bi = malloc(sizeof(int32_t) * (size_t)(M + 1));
        if (!bf || !bi) {
            free(bf);
            free(bi);
            return pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
        }
        if (!bias_floats(z, bv, M, bf, &db)) {
            free(bf);
            free(bi);
            return PL_OK;
        }
        /* int32 bias in units of x_scale * w_scale (what the quantizer stored) */
        for (int64_t m = 0; m < M; m++) {
            double s = (double)xs * (double)((const float *)ws->data)[nws == 1 ? 0 : m];
            double q = s > 0 ? nearbyint(bf[m] / s) : 0;
            bi[m] = (int32_t)(q > 2147483647.0 ? 2147483647.0 : q < -2147483648.0 ? -2147483648.0 : q);
        }
        free(bf);
    }
    chain ch;
    follow(z, n->out[0], true, &ch);
    pl_status st = PL_OK;
    /* the weight operand: Conv and MatMul take it as is; Gemm with transB is turned into
     * a [K, N] constant */
    int wv = W->in[0], wzv = wz ? W->in[2] : -1, biv = -1;
    if (trans_b) {
        void *tdata = malloc((size_t)(K * M + 1));
        if (!tdata) st = pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
        for (int64_t k = 0; !st && k < K; k++)
            for (int64_t m = 0; m < M; m++)
                ((uint8_t *)tdata)[k * M + m] = ((const uint8_t *)wq->data)[m * K + k];
        const int64_t dims[2] = {K, M};
        if (!st) st = new_const(z, "pillar_qdq_wt", wq->dtype, 2, dims, tdata, &wv);
        free(tdata);
    }
    if (!st && !wz) {
        /* the ops want a weight zero point: 0 of the weight's type */
        const uint8_t zero[1] = {0};
        const int64_t one[1] = {1};
        st = new_const(z, "pillar_qdq_wz", g->values[W->in[0]].t.dtype, 0, one, zero, &wzv);
    }
    if (!st && bi) {
        const int64_t dims[1] = {M};
        st = new_const(z, "pillar_qdq_bias", PL_I32, 1, dims, bi, &biv);
    }
    free(bi);
    if (st) return st;
    n = &g->nodes[i]; /* values may have moved; nodes did not */
    X = &g->nodes[dx];
    W = &g->nodes[dw];
    const pl_node *Q = ch.q_node >= 0 ? &g->nodes[ch.q_node] : NULL;
    int in[9] = {X->in[0], X->in[1], X->in[2], wv, W->in[1], wzv, Q ? Q->in[1] : -1, Q ? Q->in[2] : -1, biv};
    const int nin = biv >= 0 ? 9 : Q ? 8 : 6;
    PL_TRY(set_inputs(z, i, in, nin));
    if (!conv) drop_attrs(n);
    PL_TRY(retype(n, "", conv ? "QLinearConv" : "QLinearMatMul"));
    if (!Q) PL_TRY(attr_int(n, "pillar_out_float", 1));
    if (!conv && biv >= 0) PL_TRY(attr_int(n, "pillar_bias", 1));
    PL_TRY(put_act(n, &ch));
    n->out[0] = ch.final;
    z->prod[ch.final] = i;
    g->values[ch.final].producer = i;
    if (ch.act_node >= 0) kill(z, ch.act_node);
    if (ch.q_node >= 0) kill(z, ch.q_node);
    kill_if_unused(z, dx);
    kill_if_unused(z, dw);
    kill_if_unused(z, db);
    z->changes++;
    return PL_OK;
}

/* ---- Add on 8-bit values ---- */

static pl_status fuse_add(qz *z, int i) {
    pl_graph *g = z->g;
    pl_node *n = &g->nodes[i];
    if (!fz_is_op(n, "Add") || n->nin != 2 || n->nout != 1) return PL_OK;
    const int da = prod_op(z, n->in[0], "DequantizeLinear"), db = prod_op(z, n->in[1], "DequantizeLinear");
    if (da < 0 || db < 0) return PL_OK;
    if (!q_scalar_params(z, &g->nodes[da]) || !q_scalar_params(z, &g->nodes[db])) return PL_OK;
    chain ch;
    follow(z, n->out[0], false, &ch);
    if (ch.q_node < 0) return PL_OK;
    const pl_node *A = &g->nodes[da], *B = &g->nodes[db], *Q = &g->nodes[ch.q_node];
    const int in[8] = {A->in[0], A->in[1], A->in[2], B->in[0], B->in[1], B->in[2], Q->in[1], Q->in[2]};
    PL_TRY(set_inputs(z, i, in, 8));
    drop_attrs(n);
    PL_TRY(retype(n, "pillar", "QLinearAdd"));
    PL_TRY(put_act(n, &ch));
    n->out[0] = ch.final;
    z->prod[ch.final] = i;
    g->values[ch.final].producer = i;
    if (ch.act_node >= 0) kill(z, ch.act_node);
    kill(z, ch.q_node);
    kill_if_unused(z, da);
    kill_if_unused(z, db);
    z->changes++;
    return PL_OK;
}

/* ---- ops exact on 8-bit values ---- */

/* A 2-D MaxPool the pillar QMaxPool covers (its attributes carry over). */
static bool simple_pool(const pl_node *n) {
    size_t nk, nd = 0;
    const int64_t *k = pl_attr_ints(n, "kernel_shape", &nk);
    const int64_t *d = pl_attr_ints(n, "dilations", &nd);
    const char *ap = pl_attr_str(n, "auto_pad", "NOTSET");
    if (!k || nk != 2 || pl_attr_int(n, "ceil_mode", 0) != 0 || strcmp(ap, "NOTSET")) return false;
    for (size_t i = 0; i < nd; i++)
        if (d[i] != 1) return false;
    return true;
}

static pl_status fuse_passthrough(qz *z, int i) {
    static const char *const ops[] = {"MaxPool", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"};
    pl_graph *g = z->g;
    pl_node *n = &g->nodes[i];
    bool ok = false;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) ok |= fz_is_op(n, ops[k]);
    if (!ok || n->nin < 1 || (n->nout != 1 && !(n->nout == 2 && n->out[1] < 0))) return PL_OK;
    if (fz_is_op(n, "MaxPool") && pl_attr_int(n, "storage_order", 0) != 0) return PL_OK;
    const int d = prod_op(z, n->in[0], "DequantizeLinear");
    if (d < 0 || !q_scalar_params(z, &g->nodes[d])) return PL_OK;
    const int qn = only_consumer(z, n->out[0]);
    if (qn < 0) return PL_OK;
    const pl_node *Q = &g->nodes[qn];
    if (!fz_is_op(Q, "QuantizeLinear") || !q_scalar_params(z, Q) || !same_params(z, &g->nodes[d], Q)) return PL_OK;
    int in[16];
    if (n->nin > 16) return PL_OK;
    for (int k = 0; k < n->nin; k++) in[k] = n->in[k];
    in[0] = g->nodes[d].in[0];
    PL_TRY(set_inputs(z, i, in, n->nin));
    if (fz_is_op(n, "MaxPool") && simple_pool(n)) PL_TRY(retype(n, "pillar", "QMaxPool"));
    n->out[0] = Q->out[0];
    z->prod[n->out[0]] = i;
    g->values[n->out[0]].producer = i;
    kill(z, qn);
    kill_if_unused(z, d);
    z->changes++;
    return PL_OK;
}

/* ---- DQ -> Relu | Clip -> Q on 8-bit values: one table lookup ---- */

/* The value the unfused chain gives for 8-bit input bits b: the same float steps as the
 * DequantizeLinear, Relu / Clip and QuantizeLinear ops (ops/quant.c, ops/activation.c)
 * and ONNX Runtime's: (x - zx) * sx, clamp, x / sy rounded half to even, saturated. */
static uint8_t lut_entry(int b, bool xs8, float sx, int32_t zx, float lo, float hi, bool ys8,
                         float sy, int32_t zy) {
    const int32_t x = xs8 ? (int32_t)(int8_t)(uint8_t)b : b;
    float v = (float)(x - zx) * sx;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    float q = v / sy;
    const float qlo = (float)((ys8 ? -128 : 0) - zy), qhi = (float)((ys8 ? 127 : 255) - zy);
    q = q != q ? 0.0f : q;
    q = q < qlo ? qlo : q;
    q = q > qhi ? qhi : q;
    return (uint8_t)((int32_t)nearbyintf(q) + zy);
}

static pl_status fuse_lut(qz *z, int i) {
    pl_graph *g = z->g;
    pl_node *n = &g->nodes[i];
    if (!fz_is_op(n, "DequantizeLinear") || n->nout != 1 || !q_scalar_params(z, n) || cval(z, n->in[0]) ||
        pl_attr_int(n, "output_dtype", 0) != 0)
        return PL_OK;
    chain ch;
    follow(z, n->out[0], true, &ch);
    if (ch.act_node < 0 || ch.q_node < 0 || !(ch.lo <= ch.hi)) return PL_OK;
    const pl_node *Q = &g->nodes[ch.q_node];
    if (pl_attr_int(Q, "output_dtype", 0) != 0) return PL_OK;
    const pl_tensor *xz = cval(z, n->in[2]), *yz = cval(z, Q->in[2]);
    const float sx = *(const float *)cval(z, n->in[1])->data, sy = *(const float *)cval(z, Q->in[1])->data;
    const bool xs8 = xz->dtype == PL_I8, ys8 = yz->dtype == PL_I8;
    uint8_t t[256];
    for (int b = 0; b < 256; b++)
        t[b] = lut_entry(b, xs8, sx, (int32_t)pl_get_i64(xz, 0), ch.lo, ch.hi, ys8, sy,
                         (int32_t)pl_get_i64(yz, 0));
    int tv;
    const int64_t dims[1] = {256};
    char base[200];
    snprintf(base, sizeof base, "%s_lut", n->name ? n->name : "qdq");
    PL_TRY(new_const(z, base, yz->dtype, 1, dims, t, &tv));
    n = &g->nodes[i]; /* (new_const may grow the value table, not the nodes) */
    const int in[2] = {n->in[0], tv};
    PL_TRY(set_inputs(z, i, in, 2));
    drop_attrs(n);
    PL_TRY(retype(n, "pillar", "QLut"));
    n->out[0] = ch.final;
    z->prod[ch.final] = i;
    g->values[ch.final].producer = i;
    kill(z, ch.act_node);
    kill(z, ch.q_node);
    z->changes++;
    return PL_OK;
}

/* ---- driver ---- */

static void node_free(pl_node *n) {
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->in);
    free(n->out);
    drop_attrs(n);
    memset(n, 0, sizeof *n);
}

pl_status pl_graph_fuse_qdq(pl_graph *g, int *changes) {
    if (changes) *changes = 0;
    if (!g) return PL_OK;
    bool any = false;
    for (int i = 0; i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        if (fz_is_op(n, "DequantizeLinear")) any = true;
        for (int a = 0; a < n->nattr; a++)
            if (n->attrs[a].type == PL_ATTR_GRAPH || n->attrs[a].type == PL_ATTR_GRAPHS) return PL_OK;
    }
    if (!any) return PL_OK;
    qz z = {.g = g};
    const size_t nv = (size_t)g->nvalues + 1;
    z.uses = calloc(nv, sizeof(int));
    z.prod = malloc(nv * sizeof(int));
    z.pinned = calloc(nv, sizeof(bool));
    z.dead = calloc((size_t)g->nnodes + 1, sizeof(bool));
    pl_status st = PL_OK;
    if (!z.uses || !z.prod || !z.pinned || !z.dead) st = pl_error(PL_ERR_NOMEM, "out of memory in QDQ fusion");
    for (int v = 0; !st && v < g->nvalues; v++) {
        z.prod[v] = -1;
        z.pinned[v] = g->values[v].is_output;
    }
    for (int k = 0; !st && k < g->noutputs; k++)
        if (g->outputs[k] >= 0) z.pinned[g->outputs[k]] = true;
    for (int i = 0; !st && i < g->nnodes; i++) {
        const pl_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) z.uses[n->in[k]]++;
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0) z.prod[n->out[k]] = i;
    }
    for (int i = 0; !st && i < g->nnodes; i++)
        if (!z.dead[i]) st = fuse_linear(&z, i);
    for (int i = 0; !st && i < g->nnodes; i++)
        if (!z.dead[i]) st = fuse_add(&z, i);
    for (int i = 0; !st && i < g->nnodes; i++)
        if (!z.dead[i]) st = fuse_passthrough(&z, i);
    for (int i = 0; !st && i < g->nnodes; i++)
        if (!z.dead[i]) st = fuse_lut(&z, i);
    if (!st && z.changes) {
        int w = 0;
        for (int i = 0; i < g->nnodes; i++) {
            if (z.dead[i]) {
                node_free(&g->nodes[i]);
                continue;
            }
            if (w != i) g->nodes[w] = g->nodes[i];
            w++;
        }
        g->nnodes = w;
        for (int v = 0; v < g->nvalues; v++) g->values[v].producer = -1;
        for (int i = 0; i < g->nnodes; i++)
            for (int k = 0; k < g->nodes[i].nout; k++)
                if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
    }
    if (changes) *changes = z.changes;
    free(z.uses);
    free(z.prod);
    free(z.pinned);
    free(z.dead);
    return st;
}
