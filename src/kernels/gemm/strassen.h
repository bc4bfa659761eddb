/* strassen.h -- one level of Strassen-Winograd over the packed SGEMM, for a constant
 * weight B (K x N, both even) and activations A with any row count M:
 *
 *   C = act( alpha * A B + row_bias + col_bias + residual )      (pl_sgemm_epilogue)
 *
 * Doing less work: the 2 x 2 block product takes 7 half-size GEMMs instead of 8 (12.5%
 * fewer multiply-adds). The four weight-side sums (T1..T4 of the Winograd form) are
 * formed and packed once, so the packed weight holds 7 quarter blocks (1.75x the plain
 * packed size); the activation-side sums are formed per run (cheap: M/2 x K/2 each),
 * and the output-side ones mostly ride on the GEMM's beta and residual epilogue.
 * An odd last row of A is multiplied separately against the packed quarters.
 *
 * Rounding differs from the plain GEMM (sums of operands are rounded first); the error
 * stays within a small multiple of the plain GEMM's. */
#ifndef PL_KERNELS_STRASSEN_H
#define PL_KERNELS_STRASSEN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/gemm/sgemm.h"

/* Bytes of the packed form of a K x N weight (row stride ldb when packing), m_hint the
 * expected row count of A (as for pl_sgemm_pack_b_hint; <= 0: unknown). 0 when K or N
 * is odd or not positive, or the size overflows. */
size_t pl_strassen_packed_size(int64_t K, int64_t N, int64_t m_hint);

/* Packs B (K x N, row-major, stride ldb >= N) into buf (8-byte aligned, at least the
 * size above). */
pl_status pl_strassen_pack(int64_t K, int64_t N, const float *B, int64_t ldb, int64_t m_hint,
                           void *buf, size_t buf_size);

/* Scratch bytes a run with M rows needs (pass a buffer of at least this to the run). */
size_t pl_strassen_scratch_size(int64_t M, int64_t K, int64_t N);

/* C (M x N, stride ldc) from A (M x K, stride lda) and the packed B, threaded over
 * pool (may be NULL). epi may be NULL; its residual must not overlap C. scratch: at
 * least pl_strassen_scratch_size bytes, any alignment. */
pl_status pl_strassen_run(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                          const void *packed, float *C, int64_t ldc, const pl_sgemm_epilogue *epi,
                          pl_threadpool *pool, void *scratch, size_t scratch_size);

#endif
