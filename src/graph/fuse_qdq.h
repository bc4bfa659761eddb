/* fuse_qdq.h -- the QDQ fusion pass (fuse_qdq.c), run by pl_graph_optimize before the
 * float passes (whose constant folding would dequantize the int8 weights). Internal to
 * src/graph. */
#ifndef PL_GRAPH_FUSE_QDQ_H
#define PL_GRAPH_FUSE_QDQ_H

#include "graph/ir.h"

/* Rewrites QuantizeLinear / DequantizeLinear patterns (as ONNX Runtime's quantizer
 * writes them) into integer ops:
 *   DQ(x) , DQ(w const) [, DQ(b) or b const] -> Conv [-> Relu | Clip] -> Q
 *       => QLinearConv (int32 bias, activation as pillar_act)
 *   the same without the final Q (the result read as float)
 *       => QLinearConv with pillar_out_float
 *   DQ(x) , DQ(w const) -> MatMul / Gemm (no transA, alpha 1) [-> act] [-> Q]
 *       => QLinearMatMul (b as a [K, N] constant, pillar_bias, pillar_out_float)
 *   DQ(a) , DQ(b) -> Add [-> Relu] -> Q  => pillar QLinearAdd (u8/s8 in and out)
 *   DQ(x) -> MaxPool | Reshape | Flatten | Squeeze | Unsqueeze | Transpose | Identity
 *       -> Q with the same scale and zero point  => the op on the 8-bit values
 *   DQ(x 8-bit) -> Relu | Clip (constant bounds) -> Q  => pillar QLut (a 256-entry table
 *       of the three ops' exact values; Clip bounds may come from Constant nodes)
 * Every other Q / DQ stays and runs as itself (the float fallback). *changes gets the
 * number of rewrites. */
pl_status pl_graph_fuse_qdq(pl_graph *g, int *changes);

#endif
