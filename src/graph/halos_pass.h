/* halos_pass.h -- the `--lsh-output K,L[,k]` rewrite (pillar_options_set_lsh_output):
 * a model's wide last layer becomes a HALOS top-k lookup (src/ops/halos_op.c).
 *
 * The layer: the first graph output made by a Gemm or MatMul (default domain) with a
 * constant float32 weight of at least PL_HALOS_MIN_OUTPUTS outputs, optionally
 * followed by a Softmax/LogSoftmax over the last axis or a Sigmoid (which do not change
 * the ranking; they are dropped). Gemm: transA = 0, any alpha/beta/transB, bias C of
 * n_out values or one. MatMul: weight [dim, n_out], A of any rank >= 1. Fused
 * epilogues (passes.h): a scale or bias is kept, a monotone activation (Relu, LeakyRelu
 * with alpha >= 0, Clip, Sigmoid, HardSigmoid, Tanh) dropped like a Softmax, a residual
 * is refused. The output value is replaced, at the same position among the graph's
 * outputs, by two:
 *   "<output>_topk_scores"  float32 [..., k]  the layer's logits (before any dropped
 *                                              Softmax/Sigmoid/activation), best first
 *   "<output>_topk_labels"  int64   [..., k]  their output indices (-1: fewer than k
 *                                              candidates were found)
 * The rest of the graph is unchanged. Errors (PL_ERR_UNSUPPORTED) name the output and
 * the node that makes it. */
#ifndef PL_GRAPH_HALOS_PASS_H
#define PL_GRAPH_HALOS_PASS_H

#include "graph/ir.h"

#define PL_HALOS_MIN_OUTPUTS 10000

pl_status pl_graph_lsh_output(pl_graph *g, int K, int L, int k);

#endif
