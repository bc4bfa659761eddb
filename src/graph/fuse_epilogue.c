/* fuse_epilogue.c -- passes that move element-wise work into the epilogue of the
 * producing Conv / ConvTranspose / Gemm / MatMul (see the convention in passes.h):
 * a constant scale of a MatMul, a bias Add, a residual Add and an activation (single
 * ops, and GELU / tanh-GELU written out as element-wise math, as PyTorch exports them).
 *
 * Every rewrite requires the intermediate value to have one reader and not be a graph
 * output, float32 type, and (from the shape probe) the fused result to have exactly the
 * shape the unfused graph had, so broadcasting never changes a shape. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/fuse.h"

/* No fused epilogue yet (MatMul may already carry a scale). */
static bool plain_producer(const pl_node *n) {
    return !pl_attr_find(n, "pillar_act") && !pl_attr_find(n, "pillar_residual") &&
           !pl_attr_find(n, "pillar_bias");
}

/* Producer of v when it may take an epilogue: v has one reader and is not an output. */
static int fusable_producer(const fz_ctx *z, int v) {
    if (!fz_single_use(z, v) || !fz_known_f32(z, v)) return -1;
    int p = fz_producer(z, v);
    if (p < 0 || !fz_is_epilogue_op(&z->g->nodes[p]) || z->g->nodes[p].out[0] != v) return -1;
    return p;
}

/* Node p now writes `v` (the output of the node it absorbed, which dies). */
static void absorb(fz_ctx *z, int p, int dead_node, int v) {
    fz_kill(z, dead_node);
    fz_set_output(z, p, 0, v);
    z->changes++;
}

/* ------------------------------------------------------------------ scale */

/* MatMul -> Div by / Mul with a scalar constant (attention's 1/sqrt(d)): the scale
 * becomes pillar_alpha. */
pl_status fz_pass_scale(fz_ctx *z) {
    pl_graph *g = z->g;
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        const pl_node *n = &g->nodes[i];
        bool div = fz_is_op(n, "Div");
        if ((!div && !fz_is_op(n, "Mul")) || n->nin != 2 || n->nout != 1) continue;
        for (int s = 0; s < 2; s++) {
            if (div && s == 1) break;
            int x = n->in[s], c = n->in[1 - s];
            double k;
            if (!fz_const_scalar(z, c, &k) || z->g->values[c].t.dtype != PL_F32) continue;
            if (div && k == 0) continue;
            int p = fusable_producer(z, x);
            if (p < 0 || !fz_is_op(&g->nodes[p], "MatMul") || g->nodes[p].nin != 2 ||
                !plain_producer(&g->nodes[p]) || !fz_same_shape(z, x, n->out[0]))
                continue;
            float alpha = pl_attr_float(&g->nodes[p], "pillar_alpha", 1.0f);
            alpha = div ? (float)(alpha / k) : (float)(alpha * k);
            PL_TRY(fz_set_attr_float(z, p, "pillar_alpha", alpha));
            absorb(z, p, i, n->out[0]);
            break;
        }
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ bias */

/* MatMul(X, W) + b, b holding N values along the last axis (a Linear layer's bias, or an
 * attention mask [1, 1, 1, N] computed at run time) -> MatMul with pillar_bias (input 2);
 * Gemm(A, B) + constant b without C -> Gemm(A, B, b) with beta = 1. */
pl_status fz_pass_bias(fz_ctx *z) {
    pl_graph *g = z->g;
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        if (!fz_is_op(&g->nodes[i], "Add") || g->nodes[i].nin != 2 || g->nodes[i].nout != 1) continue;
        for (int s = 0; s < 2; s++) {
            const pl_node *n = &g->nodes[i];
            int x = n->in[s], b = n->in[1 - s], y = n->out[0];
            if (b == x || !fz_known_f32(z, b)) continue;
            int p = fusable_producer(z, x);
            if (p < 0 || !plain_producer(&g->nodes[p]) || !fz_same_shape(z, x, y)) continue;
            int rb = fz_rank(z, b);
            if (fz_is_op(&g->nodes[p], "MatMul") && g->nodes[p].nin == 2) {
                int r = fz_rank(z, x);
                int64_t N = r > 0 ? fz_dim(z, x, r - 1) : -1;
                bool lastonly = N >= 0 && rb >= 1 && fz_dim(z, b, rb - 1) == N;
                for (int d = 0; lastonly && d + 1 < rb; d++) lastonly = fz_dim(z, b, d) == 1;
                if (!lastonly) continue;
                PL_TRY(fz_set_input(z, p, 2, b));
                PL_TRY(fz_set_attr_int(z, p, "pillar_bias", 1));
            } else if (fz_is_op(&g->nodes[p], "Gemm") && fz_is_const(z, b) && rb <= 2 &&
                       (g->nodes[p].nin == 2 || (g->nodes[p].nin == 3 && g->nodes[p].in[2] < 0))) {
                PL_TRY(fz_set_input(z, p, 2, b));
                PL_TRY(fz_set_attr_float(z, p, "beta", 1.0f));
            } else {
                continue;
            }
            int bp = fz_producer(z, b);
            absorb(z, p, i, y);
            if (bp > p) fz_move(z, p, i); /* b is computed after the MatMul */
            break;
        }
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ residual */

/* Add(P(x), r) with r of the same shape -> P with pillar_residual and r as input 3.
 * When r is computed after P, P moves down to the Add's place (its inputs are all
 * earlier, and the Add was its only reader). */
pl_status fz_pass_residual(fz_ctx *z) {
    pl_graph *g = z->g;
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        const pl_node *n = &g->nodes[i];
        if (!fz_is_op(n, "Add") || n->nin != 2 || n->nout != 1 || n->in[0] == n->in[1]) continue;
        int best = -1, side = -1;
        for (int s = 0; s < 2; s++) {
            int x = n->in[s], r = n->in[1 - s];
            int p = fusable_producer(z, x);
            if (p < 0 || pl_attr_find(&g->nodes[p], "pillar_act") ||
                pl_attr_find(&g->nodes[p], "pillar_residual") || g->nodes[p].nin > 3)
                continue;
            if (!fz_known_f32(z, r) || !fz_same_shape(z, x, r) || !fz_same_shape(z, x, n->out[0]))
                continue;
            if (p > best) {
                best = p;
                side = s;
            }
        }
        if (best < 0) continue;
        int r = n->in[1 - side], y = n->out[0];
        int rp = fz_producer(z, r);
        PL_TRY(fz_set_input(z, best, 3, r));
        PL_TRY(fz_set_attr_int(z, best, "pillar_residual", 1));
        absorb(z, best, i, y);
        if (rp > best) fz_move(z, best, i);
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ activation */

/* The activation named by a single node, with its parameters; false if not fusable. */
static bool single_act(const fz_ctx *z, const pl_node *n, const char **act, float *alpha,
                       float *beta) {
    *alpha = 0;
    *beta = 0;
    if (n->nout != 1 || n->nin < 1) return false;
    if (fz_is_op(n, "Relu"))
        *act = "Relu";
    else if (fz_is_op(n, "Sigmoid"))
        *act = "Sigmoid";
    else if (fz_is_op(n, "HardSwish"))
        *act = "HardSwish";
    else if (fz_is_op(n, "Tanh"))
        *act = "Tanh";
    else if (fz_is_op(n, "LeakyRelu")) {
        *act = "LeakyRelu";
        *alpha = pl_attr_float(n, "alpha", 0.01f);
    } else if (fz_is_op(n, "HardSigmoid")) {
        *act = "HardSigmoid";
        *alpha = pl_attr_float(n, "alpha", 0.2f);
        *beta = pl_attr_float(n, "beta", 0.5f);
    } else if (fz_is_op(n, "Gelu")) {
        const char *ap = pl_attr_str(n, "approximate", "none");
        if (!strcmp(ap, "none"))
            *act = "Gelu";
        else if (!strcmp(ap, "tanh"))
            *act = "GeluTanh";
        else
            return false;
    } else if (fz_is_op(n, "Clip")) {
        *act = "Clip";
        *alpha = -INFINITY;
        *beta = INFINITY;
        if (n->opset < 11) {
            *alpha = pl_attr_float(n, "min", -FLT_MAX);
            *beta = pl_attr_float(n, "max", FLT_MAX);
        } else {
            double v;
            if (n->nin > 1 && n->in[1] >= 0) {
                if (!fz_const_scalar(z, n->in[1], &v)) return false;
                *alpha = (float)v;
            }
            if (n->nin > 2 && n->in[2] >= 0) {
                if (!fz_const_scalar(z, n->in[2], &v)) return false;
                *beta = (float)v;
            }
            if (n->nin > 3) return false;
        }
        /* min > max (everything becomes max) or NaN bounds: leave to the Clip op */
        if (!(*alpha <= *beta)) return false;
    } else {
        return false;
    }
    return n->nin == 1 || fz_is_op(n, "Clip");
}

/* ---- GELU written as element-wise math ---- */

#define RG_MAX 16

static bool region_op(const pl_node *n) {
    static const char *ops[] = {"Add",  "Sub", "Mul", "Div",     "Pow",        "Sqrt", "Erf",
                                "Tanh", "Neg", "Exp", "Sigmoid", "Reciprocal", NULL};
    if (n->nout != 1 || n->out[0] < 0 || (n->domain && n->domain[0])) return false;
    for (int k = 0; ops[k]; k++)
        if (!strcmp(n->op_type, ops[k])) return true;
    return false;
}

typedef struct region {
    int n;
    int node[RG_MAX];
    int nv;
    int val[RG_MAX + 1]; /* val[0] = x, then each node's output */
} region;

static int rg_find(const region *r, int v, int upto) {
    for (int k = 0; k <= upto && k < r->nv; k++)
        if (r->val[k] == v) return k;
    return -1;
}

/* Evaluates the first `k` nodes of the region at x = s; returns the value of `exit`. */
static double rg_eval(const fz_ctx *z, const region *r, int k, int exit, double s) {
    double v[RG_MAX + 1];
    v[0] = s;
    for (int j = 0; j < k; j++) {
        const pl_node *n = &z->g->nodes[r->node[j]];
        double a[2] = {0, 0};
        for (int q = 0; q < n->nin && q < 2; q++) {
            int at = rg_find(r, n->in[q], j);
            if (at >= 0)
                a[q] = v[at];
            else
                fz_const_scalar(z, n->in[q], &a[q]);
        }
        const char *t = n->op_type;
        double y;
        if (!strcmp(t, "Add"))
            y = a[0] + a[1];
        else if (!strcmp(t, "Sub"))
            y = a[0] - a[1];
        else if (!strcmp(t, "Mul"))
            y = a[0] * a[1];
        else if (!strcmp(t, "Div"))
            y = a[0] / a[1];
        else if (!strcmp(t, "Pow"))
            y = pow(a[0], a[1]);
        else if (!strcmp(t, "Sqrt"))
            y = sqrt(a[0]);
        else if (!strcmp(t, "Erf"))
            y = erf(a[0]);
        else if (!strcmp(t, "Tanh"))
            y = tanh(a[0]);
        else if (!strcmp(t, "Neg"))
            y = -a[0];
        else if (!strcmp(t, "Exp"))
            y = exp(a[0]);
        else if (!strcmp(t, "Sigmoid"))
            y = 1.0 / (1.0 + exp(-a[0]));
        else
            y = 1.0 / a[0]; /* Reciprocal */
        v[j + 1] = y;
    }
    int at = rg_find(r, exit, k);
    return at >= 0 ? v[at] : NAN;
}

static double gelu_erf(double x) {
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}
static double gelu_tanh(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* Which GELU the region's first k nodes compute (exit value `e`), or NULL. Sampled
 * over [-9, 9]: the two forms differ by up to 1e-3, far above float rounding, while
 * an export's float32 constants (1.4142135, 0.7978846) stay within 1e-6. */
static const char *rg_identify(const fz_ctx *z, const region *r, int k, int e) {
    static const double pts[] = {-9,   -6,    -4,    -3.3, -2.5, -2,  -1.5, -1.1, -0.7,
                                 -0.4, -0.15, -0.01, 0,    0.03, 0.2, 0.5,  0.9,  1.3,
                                 1.7,  2.2,   2.8,   3.5,  5,    7,   9};
    const char *names[2] = {"Gelu", "GeluTanh"};
    double (*fns[2])(double) = {gelu_erf, gelu_tanh};
    for (int f = 0; f < 2; f++) {
        bool ok = true;
        for (size_t i = 0; ok && i < sizeof pts / sizeof pts[0]; i++) {
            double want = fns[f](pts[i]), got = rg_eval(z, r, k, e, pts[i]);
            ok = isfinite(got) && fabs(got - want) <= 1e-6 * (1.0 + fabs(want));
        }
        if (ok) return names[f];
    }
    return NULL;
}

/* Grows the element-wise region reading x (every input a region value or a scalar
 * constant) in graph order after node p, then tries each prefix that is closed (x and
 * all values but one exit read only inside it) for a GELU. */
static pl_status try_gelu(fz_ctx *z, int p) {
    pl_graph *g = z->g;
    int x = g->nodes[p].out[0];
    if (z->pinned[x] || z->uses[x] < 1) return PL_OK;
    region r = {.n = 0, .nv = 1};
    r.val[0] = x;
    for (int i = p + 1; i < g->nnodes && r.n < RG_MAX; i++) {
        if (z->dead[i] || !region_op(&g->nodes[i])) continue;
        const pl_node *n = &g->nodes[i];
        bool reads = false, ok = n->nin >= 1 && n->nin <= 2;
        for (int q = 0; q < n->nin && ok; q++) {
            double c;
            if (rg_find(&r, n->in[q], r.nv - 1) >= 0)
                reads = true;
            else if (!fz_const_scalar(z, n->in[q], &c) || g->values[n->in[q]].t.dtype != PL_F32)
                ok = false;
        }
        if (!ok || !reads || n->out[0] >= z->nvalues) continue;
        r.node[r.n++] = i;
        r.val[r.nv++] = n->out[0];
    }
    for (int k = 1; k <= r.n; k++) {
        /* uses of each region value inside the first k nodes */
        int inside[RG_MAX + 1] = {0};
        for (int j = 0; j < k; j++) {
            const pl_node *n = &g->nodes[r.node[j]];
            for (int q = 0; q < n->nin; q++) {
                int at = rg_find(&r, n->in[q], j);
                if (at >= 0) inside[at]++;
            }
        }
        if (inside[0] != z->uses[x]) continue;
        int exit = -1, nexit = 0;
        for (int j = 1; j <= k; j++) {
            int v = r.val[j];
            if (z->pinned[v] || inside[j] != z->uses[v]) {
                exit = v;
                nexit++;
            }
        }
        if (nexit != 1 || !fz_same_shape(z, x, exit)) continue;
        const char *act = rg_identify(z, &r, k, exit);
        if (!act) continue;
        PL_TRY(fz_set_attr_str(z, p, "pillar_act", act));
        for (int j = 0; j < k; j++) fz_kill(z, r.node[j]);
        fz_set_output(z, p, 0, exit);
        z->changes++;
        return PL_OK;
    }
    return PL_OK;
}

pl_status fz_pass_activation(fz_ctx *z) {
    pl_graph *g = z->g;
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        const pl_node *n = &g->nodes[i];
        const char *act;
        float alpha, beta;
        if (!single_act(z, n, &act, &alpha, &beta)) continue;
        int p = fusable_producer(z, n->in[0]);
        if (p < 0 || pl_attr_find(&g->nodes[p], "pillar_act")) continue;
        if (!fz_same_shape(z, n->in[0], n->out[0])) continue;
        int y = n->out[0];
        PL_TRY(fz_set_attr_str(z, p, "pillar_act", act));
        bool two = !strcmp(act, "Clip") || !strcmp(act, "HardSigmoid");
        if (two || !strcmp(act, "LeakyRelu"))
            PL_TRY(fz_set_attr_float(z, p, "pillar_act_alpha", alpha));
        if (two) PL_TRY(fz_set_attr_float(z, p, "pillar_act_beta", beta));
        absorb(z, p, i, y);
    }
    for (int p = 0; p < g->nnodes; p++) {
        if (z->dead[p] || !fz_is_epilogue_op(&g->nodes[p]) ||
            pl_attr_find(&g->nodes[p], "pillar_act"))
            continue;
        if (g->nodes[p].nout < 1 || g->nodes[p].out[0] < 0 || !fz_known_f32(z, g->nodes[p].out[0]))
            continue;
        PL_TRY(try_gelu(z, p));
    }
    return PL_OK;
}
