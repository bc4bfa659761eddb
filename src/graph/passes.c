/* passes.c -- the pass pipeline (see passes.h). */
#include "graph/passes.h"

pl_status pl_graph_optimize(pl_graph *g, int level) {
    (void)g;
    (void)level;
    return PL_OK;
}
