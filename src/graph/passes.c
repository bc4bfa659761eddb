/* passes.c -- the pass pipeline (see passes.h). The order matters: layer norms are
 * recognised before their Add nodes could be taken for biases or residuals; a MatMul
 * takes its scale before its bias (y = alpha * AB + b); the residual is added before
 * the activation (y = act(op + r)), so the residual pass runs before the activation
 * pass. */
#include "graph/passes.h"

#include "graph/fuse.h"
#include "graph/fuse_qdq.h"

pl_status pl_graph_optimize(pl_graph *g, int level) {
    if (!g || level <= 0) return PL_OK;
    PL_TRY(pl_graph_fuse_qdq(g, NULL)); /* first: folding would dequantize int8 weights */
    fz_ctx z;
    pl_status st = fz_analyze(&z, g);
    if (st == PL_OK) st = fz_pass_layernorm(&z);
    if (st == PL_OK) st = fz_pass_scale(&z);
    if (st == PL_OK) st = fz_pass_bias(&z);
    if (st == PL_OK) st = fz_pass_residual(&z);
    if (st == PL_OK) st = fz_pass_activation(&z);
    if (st == PL_OK) st = fz_pass_attention(&z);
    fz_finish(&z);
    return st;
}
