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
 *                             (same shape as the output) before the activation. The
 *                             passes always put it at index 3, padding the op's own
 *                             optional inputs with omitted (-1) slots (Conv/ConvTranspose
 *                             bias, Gemm C, MatMul bias).
 * So y = act(op(x) + residual). Alpha/beta defaults when absent: those of the ONNX op
 * (Clip -inf/+inf, LeakyRelu 0.01, HardSigmoid 0.2/0.5); the passes always write them.
 *
 * MatMul only (float32 in practice; every dtype honours them):
 *   pillar_alpha      FLOAT   scale of the product (a Div/Mul by a constant after it)
 *   pillar_bias       INT 1   input 2 holds N values (N = the output's last dim) added
 *                             along the last axis (a Linear layer's bias)
 * So MatMul computes y = act(pillar_alpha * A.B + bias + residual).
 * Gemm takes its bias through its own C input (beta set to 1).
 *
 * Passes, in order (src/graph/fuse_*.c; all need float32 and, from a shape probe with
 * the declared input shapes, proof that no fused Add broadcasts a shape up):
 *   1. constant folding (as planning does; Constant nodes become values)
 *   2. layer norm written out (ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div,
 *      Mul gamma, Add beta) -> LayerNormalization
 *   3. MatMul then Div/Mul by a scalar constant -> pillar_alpha
 *   4. MatMul/Gemm then Add of a constant bias along the last axis -> pillar_bias / C
 *   5. Add(op(x), r) with r shaped like the result -> pillar_residual
 *   6. an activation node, or GELU / tanh-GELU written out as element-wise math (found
 *      by evaluating the chain at sample points), after the op -> pillar_act
 *   7. the multi-head attention core (Reshape/Transpose of Q, K, V, the scores MatMul
 *      with its scale and mask, Softmax, MatMul, Transpose, Reshape) -> the internal op
 *      PillarAttention (fuse_attention.c, src/ops/attention.c; PILLAR_ATTENTION=0: off)
 * A value is only fused away when a single node reads it and it is not a graph output
 * (nor read by a subgraph). */

/* Level 0: nothing; 1: fusions that keep every op's semantics (the default). The
 * environment variable PILLAR_OPT=0 forces level 0 (for tests that compare). */
pl_status pl_graph_optimize(pl_graph *g, int level);

#endif
