/* passes.h -- graph rewrites applied to a session's private copy of the graph before
 * planning. They never change results beyond float rounding; fused nodes carry
 * internal attributes (below) that only sessions see, never written to files. */
#ifndef PL_PASSES_H
#define PL_PASSES_H

#include "graph/ir.h"

/* Fused epilogue convention, honoured by Conv, ConvTranspose, Gemm and MatMul in every
 * implementation (reference and fast):
 *   pillar_act        STRING  one of Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid,
 *                             HardSwish, Tanh, Gelu, GeluTanh (absent: none)
 *   pillar_act_alpha  FLOAT   Clip min / LeakyRelu alpha / HardSigmoid alpha
 *   pillar_act_beta   FLOAT   Clip max / HardSigmoid beta
 *   pillar_residual   INT 1   the node has one extra input, last, added to the result
 *                             (same shape as the output) before the activation
 * So y = act(op(x) + residual). */

/* Level 0: nothing; 1: fusions that keep every op's semantics (the default). The
 * environment variable PILLAR_OPT=0 forces level 0 (for tests that compare). */
pl_status pl_graph_optimize(pl_graph *g, int level);

#endif
