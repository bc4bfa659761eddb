/* bf16.c -- the matrix products of training (tr_gemm): float32 through the packed
 * SGEMM, or bfloat16 operands with float32 sums. The bfloat16 path uses the
 * AVX512_BF16 GEMM of bf16_avx512.c when the CPU has it; elsewhere it rounds copies
 * of the operands to bfloat16 and multiplies them with the float32 SGEMM, which gives
 * the same products (a bf16 x bf16 product is exact in float32), so both paths train
 * the same way. Master weights and everything outside the products stay float32. */
#include <string.h>

#include "core/cpu.h"
#include "train/train.h"

/* x rounded to the nearest bfloat16 (even on ties), kept as a float. */
static inline float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) { /* inf / nan: keep (quiet nan) */
        if (u & 0x007fffffu) u |= 0x00400000u;
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
    }
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* Rounded copy of a rows x cols block (row stride ld) into dst (row stride cols). */
static void round_block(const float *src, int64_t rows, int64_t cols, int64_t ld, float *dst) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = round_bf16(src[r * ld + c]);
}

bool tr_bf16_native(void) {
    static int native = -1; /* decided once; every thread computes the same answer */
    int v = __atomic_load_n(&native, __ATOMIC_RELAXED);
    if (v < 0) {
        const pl_cpu_info *ci = pl_cpu();
        v = ci->avx512_bf16 && ci->avx512f && ci->avx512bw && pl_cpu_isa() >= PL_ISA_AVX512 &&
            tr_bf16_avx512_work(1, 1, 1) > 0;
        __atomic_store_n(&native, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}

static pl_status gemm_error(tr_ctx *c, pl_status st) {
    return pl_op_error(&c->op, st, "matrix product: %s", pl_error_msg());
}

pl_status tr_gemm(tr_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, const pl_sgemm_epilogue *epi) {
    if (M == 0 || N == 0) return PL_OK;
    if (c->bf16 && K > 0) {
        if (tr_bf16_native()) {
            void *work = tr_scratch_slot(c, TR_SCRATCH_GEMM, tr_bf16_avx512_work(M, N, K));
            if (!work) return tr_nomem(c);
            tr_bf16_gemm_avx512(ta, tb, M, N, K, alpha, A, lda, NULL, B, ldb, beta, C, ldc, work);
            if (epi) pl_sgemm_apply_epilogue(C, ldc, M, N, epi);
            return PL_OK;
        }
        const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
        float *a = tr_scratch_slot(c, TR_SCRATCH_GEMM, (size_t)(ar * ac + br * bc) * sizeof(float));
        if (!a) return tr_nomem(c);
        float *b = a + ar * ac;
        round_block(A, ar, ac, lda, a);
        round_block(B, br, bc, ldb, b);
        A = a;
        B = b;
        lda = ac;
        ldb = bc;
    }
    pl_sgemm_args args = {.M = M,
                          .N = N,
                          .K = K,
                          .alpha = alpha,
                          .beta = beta,
                          .A = A,
                          .lda = lda,
                          .trans_a = ta,
                          .B = B,
                          .ldb = ldb,
                          .trans_b = tb,
                          .C = C,
                          .ldc = ldc,
                          .epilogue = epi};
    pl_status st = pl_sgemm_run(&args);
    return st == PL_OK ? PL_OK : gemm_error(c, st);
}

size_t tr_gemm_prepare_size(tr_ctx *c, int64_t M, int64_t K) {
    if (c->bf16) {
        if (tr_bf16_native()) return tr_bf16_avx512_packed_a_size(M, K);
        return (size_t)(M * K) * sizeof(float) + 64;
    }
    return pl_sgemm_packed_a_size(M, K) + 64;
}

pl_status tr_gemm_prepare(tr_ctx *c, bool ta, int64_t M, int64_t K, const float *A, int64_t lda,
                          void *buf, tr_gemm_a *out) {
    memset(out, 0, sizeof *out);
    out->ta = ta;
    out->M = M;
    out->K = K;
    out->A = A;
    out->lda = lda;
    out->packed = buf;
    if (M == 0 || K == 0) {
        out->kind = 3; /* nothing to pack: plain calls */
        return PL_OK;
    }
    if (c->bf16 && tr_bf16_native()) {
        tr_bf16_avx512_pack_a(ta, M, K, A, lda, buf);
        out->kind = 1;
    } else if (c->bf16) {
        round_block(A, ta ? K : M, ta ? M : K, lda, buf);
        out->kind = 2;
    } else {
        pl_status st = pl_sgemm_pack_a(ta, M, K, A, lda, buf, pl_sgemm_packed_a_size(M, K));
        if (st != PL_OK) return gemm_error(c, st);
        out->kind = 0;
    }
    return PL_OK;
}

pl_status tr_gemm_with(tr_ctx *c, const tr_gemm_a *a, int64_t N, bool tb, const float *B,
                       int64_t ldb, float alpha, float beta, float *C, int64_t ldc,
                       const pl_sgemm_epilogue *epi) {
    const int64_t M = a->M, K = a->K;
    if (M == 0 || N == 0) return PL_OK;
    if (a->kind == 3)
        return tr_gemm(c, a->ta, tb, M, N, K, alpha, a->A, a->lda, B, ldb, beta, C, ldc, epi);
    if (a->kind == 1) {
        void *work = tr_scratch_slot(c, TR_SCRATCH_GEMM, tr_bf16_avx512_work(0, N, K));
        if (!work) return tr_nomem(c);
        tr_bf16_gemm_avx512(a->ta, tb, M, N, K, alpha, NULL, 0, a->packed, B, ldb, beta, C, ldc,
                            work);
        if (epi) pl_sgemm_apply_epilogue(C, ldc, M, N, epi);
        return PL_OK;
    }
    pl_sgemm_args args = {.M = M,
                          .N = N,
                          .K = K,
                          .alpha = alpha,
                          .beta = beta,
                          .trans_b = tb,
                          .B = B,
                          .ldb = ldb,
                          .C = C,
                          .ldc = ldc,
                          .epilogue = epi};
    if (a->kind == 0) {
        args.packed_a = a->packed;
    } else { /* rounded copy: B rounded here */
        args.A = a->packed;
        args.trans_a = a->ta;
        args.lda = a->ta ? M : K;
        const int64_t br = tb ? N : K, bc = tb ? K : N;
        float *b = tr_scratch_slot(c, TR_SCRATCH_GEMM, (size_t)(br * bc) * sizeof(float));
        if (!b) return tr_nomem(c);
        round_block(B, br, bc, ldb, b);
        args.B = b;
        args.ldb = bc;
    }
    pl_status st = pl_sgemm_run(&args);
    return st == PL_OK ? PL_OK : gemm_error(c, st);
}
