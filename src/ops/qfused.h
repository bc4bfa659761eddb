/* qfused.h -- the INT8 engine (src/kernels/qgemm) behind QLinearConv, ConvInteger,
 * QLinearMatMul and MatMulInteger, including the nodes the QDQ fusion pass makes
 * (graph/fuse_qdq.c): those are the same ops with pillar attributes:
 *   pillar_out_float INT 1  no y_scale / y_zero_point: the output is float32, real units
 *   pillar_act / pillar_act_alpha / pillar_act_beta  Relu or Clip on the real output
 *   pillar_bias INT 1       (QLinearMatMul) input 8 holds N int32 biases in units of
 *                           a_scale * b_scale
 * prepare() packs constant weights and picks dense or block-sparse kernels; without a
 * state (non-constant weights or parameters) the ops run their reference code.
 * qfused.c also holds the pass's "pillar"-domain ops (qfused.def): QLinearAdd (8-bit
 * add with ONNX Runtime's arithmetic), QMaxPool (2-D MaxPool on 8-bit values) and QLut
 * (a 256-entry table on 8-bit values: DQ -> Relu | Clip -> Q). */
#ifndef PL_OPS_QFUSED_H
#define PL_OPS_QFUSED_H

#include "kernels/conv/conv.h"
#include "kernels/qgemm/qgemm.h"
#include "ops/op.h"

/* Input indices of an integer conv / matmul node (-1: none). */
typedef struct pl_q_io {
    int x, xs, xz, w, ws, wz, ys, yz, b;
} pl_q_io;

/* Fills c->state (or leaves it NULL when the fast path does not apply). */
pl_status pl_qconv_prepare(pl_op_ctx *c, const pl_conv_params *p, const pl_q_io *io, pl_q8_out out);
/* Runs the prepared node; *done false when there is no state (run the reference). */
pl_status pl_qconv_run(pl_op_ctx *c, const pl_conv_params *p, bool *done);
pl_status pl_qmm_prepare(pl_op_ctx *c, const pl_q_io *io, pl_q8_out out);
pl_status pl_qmm_run(pl_op_ctx *c, bool *done);
void pl_q_release(void *state);

/* The activation clamp of pillar_act (Relu/Clip) in real units (lo, hi), or an error
 * for another activation. */
pl_status pl_q_act_range(const pl_op_ctx *c, float *lo, float *hi);

#endif
