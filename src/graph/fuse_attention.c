/* fuse_attention.c -- the multi-head attention core, as PyTorch exports it, becomes one
 * PillarAttention node (src/ops/attention.c):
 *
 *   q, k, v [B, S, H*D] --Reshape [B, S, H, D]--> Transpose
 *       q: perm (0, 2, 1, 3)   k: perm (0, 2, 3, 1)   v: perm (0, 2,1, 3)
 *   MatMul(q', k') with pillar_alpha (the scale) and pillar_bias (a mask of S values),
 *   both optional, no other epilogue -> Softmax(axis -1) -> MatMul(., v')
 *   -> Transpose perm (0, 2, 1, 3) -> Reshape [B, S, H*D]
 *
 * Runs after the epilogue passes, which have already folded the scale and the mask Add
 * into the scores MatMul. Every value inside the chain must have one reader and not be
 * a graph output; q, k and v must have the same probed shape, and the final Reshape
 * must give it back. The fused node takes the place of the final Reshape (all its
 * inputs are computed before that point). PILLAR_ATTENTION=0 turns the pass off. */
#include <stdlib.h>
#include <string.h>

#include "graph/fuse.h"

/* The live node of type `op` producing v, with v as its only output read once; -1 if
 * not so. */
static int chain_node(const fz_ctx *z, int v, const char *op) {
    if (v < 0 || !fz_single_use(z, v)) return -1;
    int p = fz_producer(z, v);
    if (p < 0 || !fz_is_op(&z->g->nodes[p], op) || z->g->nodes[p].nout != 1) return -1;
    return p;
}

static bool perm_is(const pl_node *n, const int64_t *want) {
    size_t cnt = 0;
    const int64_t *p = pl_attr_ints(n, "perm", &cnt);
    if (!p || cnt != 4) return false;
    for (int i = 0; i < 4; i++)
        if (p[i] != want[i]) return false;
    return true;
}

/* Transpose(Reshape(x)) with the given perm, where the Reshape splits x [B, S, W] into
 * [B, S, H, D]: returns x (or -1) and the two nodes. */
static int head_split(const fz_ctx *z, int v, const int64_t *perm, int64_t H, int nodes[2]) {
    int t = chain_node(z, v, "Transpose");
    if (t < 0 || z->g->nodes[t].nin != 1 || !perm_is(&z->g->nodes[t], perm)) return -1;
    int rv = z->g->nodes[t].in[0];
    int r = chain_node(z, rv, "Reshape");
    if (r < 0) return -1;
    int x = z->g->nodes[r].in[0];
    if (x < 0 || !fz_known_f32(z, x) || fz_rank(z, x) != 3 || fz_rank(z, rv) != 4) return -1;
    int64_t W = fz_dim(z, x, 2);
    if (fz_dim(z, rv, 0) != fz_dim(z, x, 0) || fz_dim(z, rv, 1) != fz_dim(z, x, 1) ||
        fz_dim(z, rv, 0) < 0 || fz_dim(z, rv, 1) < 0 || W <= 0 || fz_dim(z, rv, 2) != H ||
        fz_dim(z, rv, 3) * H != W)
        return -1;
    nodes[0] = r;
    nodes[1] = t;
    return x;
}

static const int64_t PERM_HEADS[4] = {0, 2, 1, 3}, PERM_KT[4] = {0, 2, 3, 1};

pl_status fz_pass_attention(fz_ctx *z) {
    pl_graph *g = z->g;
    const char *env = getenv("PILLAR_ATTENTION"); /* =0: keep the plain ops (A/B runs) */
    if (env && !strcmp(env, "0")) return PL_OK;
    for (int i = 0; i < g->nnodes; i++) {
        if (z->dead[i]) continue;
        const pl_node *rn = &g->nodes[i];
        if (!fz_is_op(rn, "Reshape") || rn->nout != 1 || rn->nin < 1) continue;
        int y = rn->out[0];
        int t3 = chain_node(z, rn->in[0], "Transpose");
        if (t3 < 0 || g->nodes[t3].nin != 1 || !perm_is(&g->nodes[t3], PERM_HEADS)) continue;
        int m2 = chain_node(z, g->nodes[t3].in[0], "MatMul");
        if (m2 < 0 || g->nodes[m2].nin != 2 || g->nodes[m2].nattr != 0) continue;
        int sm = chain_node(z, g->nodes[m2].in[0], "Softmax");
        if (sm < 0 || g->nodes[sm].nin != 1) continue;
        int64_t axis = pl_attr_int(&g->nodes[sm], "axis", 0);
        if (!pl_attr_find(&g->nodes[sm], "axis") || (axis != -1 && axis != 3)) continue;
        int m1 = chain_node(z, g->nodes[sm].in[0], "MatMul");
        if (m1 < 0) continue;
        const pl_node *mm = &g->nodes[m1];
        bool has_bias = pl_attr_int(mm, "pillar_bias", 0) != 0;
        if (pl_attr_find(mm, "pillar_act") || pl_attr_find(mm, "pillar_residual") ||
            mm->nin != (has_bias ? 3 : 2) ||
            mm->nattr != (pl_attr_find(mm, "pillar_alpha") ? 1 : 0) + (has_bias ? 1 : 0))
            continue;
        /* H from the probed shape of the scores input q' [B, H, S, D]. */
        int qh = mm->in[0];
        if (fz_rank(z, qh) != 4) continue;
        int64_t H = fz_dim(z, qh, 1);
        if (H <= 0) continue;
        int nq[2], nk[2], nv[2];
        int q = head_split(z, qh, PERM_HEADS, H, nq);
        int k = head_split(z, mm->in[1], PERM_KT, H, nk);
        int v = head_split(z, g->nodes[m2].in[1], PERM_HEADS, H, nv);
        if (q < 0 || k < 0 || v < 0 || !fz_same_shape(z, q, k) || !fz_same_shape(z, q, v) ||
            !fz_same_shape(z, q, y))
            continue;
        int mask = has_bias ? mm->in[2] : -1;
        if (mask >= 0) {
            int r = fz_rank(z, mask);
            bool ok = r >= 1 && fz_known_f32(z, mask) && fz_dim(z, mask, r - 1) == fz_dim(z, q, 1);
            for (int d = 0; ok && d + 1 < r; d++) ok = fz_dim(z, mask, d) == 1;
            if (!ok) continue;
        }
        float scale = pl_attr_float(mm, "pillar_alpha", 1.0f);
        int dead[] = {nq[0], nq[1], nk[0], nk[1], nv[0], nv[1], m1, sm, m2, t3};
        for (size_t d = 0; d < sizeof dead / sizeof dead[0]; d++) fz_kill(z, dead[d]);
        PL_TRY(fz_retype(z, i, "PillarAttention"));
        PL_TRY(fz_set_input(z, i, 0, q));
        PL_TRY(fz_set_input(z, i, 1, k));
        PL_TRY(fz_set_input(z, i, 2, v));
        if (mask >= 0) PL_TRY(fz_set_input(z, i, 3, mask));
        PL_TRY(fz_set_attr_int(z, i, "num_heads", H));
        PL_TRY(fz_set_attr_float(z, i, "scale", scale));
        z->changes++;
    }
    return PL_OK;
}
