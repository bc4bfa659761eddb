/* bf16_avx512.c -- a small bfloat16 GEMM for training's BF16 path, on AVX512_BF16:
 * C = alpha op(A) op(B) + beta C with both operands rounded to bfloat16 (nearest even)
 * and float32 sums (vdpbf16ps: acc[j] += a[2k] b[2k][j] + a[2k+1] b[2k+1][j]).
 *
 * Packed layouts, K in pairs (an odd K gets a zero half):
 *   A: slivers of MR = 14 rows, [kp][16][2] bf16 (row i's pair is one 32-bit broadcast;
 *      the sliver stride is 16 so that packing is 16x16 transposes);
 *   B: panels of NR = 32 columns, [kp][32][2] (two zmm per pair row).
 * Packing converts 32 floats at a time (vcvtne2ps2bf16) and either interleaves two K
 * rows (operands stored with K as the row index) or transposes 16x16 blocks of pairs
 * (operands stored with K contiguous). A may be packed once and reused over many
 * products (weights over the images of a batch). The micro-kernel keeps an MR x 32
 * tile of C in 28 zmm; K is cut into blocks of KCP pairs so that an A sliver stays in
 * L1 while B panels stream from L2. Compiled with -mavx512bf16 (the file name);
 * bf16.c calls it only when the CPU has AVX512_BF16. */
#include <string.h>

#include "train/train.h"

#if defined(__AVX512F__) && defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>

#define MR 14
#define MRP 16 /* pairs per K step in an A sliver (MR used, padded) */
#define NR 32
#define KCP 192 /* pairs of K per block */

/* 16 floats of row r from column c (tail masked), as 32 bf16 with the next 16. */
static inline __m512i cvt32(const float *p, int64_t avail) {
    __mmask16 m0 = avail >= 16 ? 0xffff : (avail > 0 ? (__mmask16)((1u << avail) - 1) : 0);
    __mmask16 m1 = avail >= 32 ? 0xffff : (avail > 16 ? (__mmask16)((1u << (avail - 16)) - 1) : 0);
    __m512 lo = _mm512_maskz_loadu_ps(m0, p), hi = _mm512_maskz_loadu_ps(m1, p + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* In-register transpose of a 16x16 block of 32-bit elements. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
    }
    /* r[q] now holds column q */
}

/* Rows [0, rows) (rows <= 16) of a matrix whose rows hold K contiguously (row stride ld),
 * K range [0, K): dst[p*stride + i] = pair p of row i (32-bit), for p < kp; rows
 * rows..15 get zero. */
static void pack_rows_kcontig(const float *M, int64_t ld, int rows, int64_t K, int64_t kp,
                              uint32_t *dst, int64_t stride) {
    for (int64_t p0 = 0; p0 < kp; p0 += 16) {
        __m512i r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < rows ? cvt32(M + i * ld + 2 * p0, K - 2 * p0) : _mm512_setzero_si512();
        transpose16(r);
        const int64_t pn = kp - p0 < 16 ? kp - p0 : 16;
        for (int64_t p = 0; p < pn; p++)
            _mm512_storeu_si512((void *)(dst + (p0 + p) * stride), r[p]);
    }
}

/* For a matrix stored with K as the row index (row stride ld): columns [c0, c0+cols)
 * (cols <= 16), pairs of rows (2p, 2p+1) interleaved: dst[p*stride + j] = pair. */
static void pack_rows_kmajor(const float *M, int64_t ld, int64_t c0, int cols, int64_t K,
                             int64_t kp, uint32_t *dst, int64_t stride) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __mmask16 m = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
    for (int64_t p = 0; p < kp; p++) {
        __m512 lo = _mm512_maskz_loadu_ps(m, M + (2 * p) * ld + c0);
        __m512 hi = 2 * p + 1 < K ? _mm512_maskz_loadu_ps(m, M + (2 * p + 1) * ld + c0)
                                  : _mm512_setzero_ps();
        __m512i v = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512((void *)(dst + p * stride), v);
    }
}

size_t tr_bf16_avx512_packed_a_size(int64_t M, int64_t K) {
    const int64_t kp = (K + 1) / 2, ns = (M + MR - 1) / MR;
    return (size_t)(ns * kp * MRP) * sizeof(uint32_t) + 64;
}

void tr_bf16_avx512_pack_a(bool ta, int64_t M, int64_t K, const float *A, int64_t lda, void *buf) {
    uint32_t *dst = (uint32_t *)(((uintptr_t)buf + 63) & ~(uintptr_t)63);
    const int64_t kp = (K + 1) / 2;
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
        const int mr = (int)(M - i0 < MR ? M - i0 : MR);
        uint32_t *s = dst + (i0 / MR) * kp * MRP;
        if (ta)
            pack_rows_kmajor(A, lda, i0, mr, K, kp, s, MRP);
        else
            pack_rows_kcontig(A + i0 * lda, lda, mr, K, kp, s, MRP);
    }
}

/* C tile (mr x nr, row stride ldc) = alpha * sum + (first ? beta * C : C). */
static void ukernel(int64_t kp, const uint32_t *a, const uint32_t *b, float *c, int64_t ldc, int mr,
                    int nr, float alpha, float beta, bool first) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + p * NR));
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + p * NR + 16));
        const uint32_t *ap = a + p * MRP;
#define ROW(i)                                                                                     \
    do {                                                                                           \
        const __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[i]);                               \
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);                                           \
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);                                           \
    } while (0)
        ROW(0);
        ROW(1);
        ROW(2);
        ROW(3);
        ROW(4);
        ROW(5);
        ROW(6);
        ROW(7);
        ROW(8);
        ROW(9);
        ROW(10);
        ROW(11);
        ROW(12);
        ROW(13);
#undef ROW
    }
    const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? 0xffff : (nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    /* unrolled with constant indices so that acc stays in registers */
#define STORE(i)                                                                                   \
    do {                                                                                           \
        if ((i) < mr) {                                                                            \
            float *ci = c + (i)*ldc;                                                               \
            __m512 r0 = acc[i][0], r1 = acc[i][1];                                                 \
            if (first) {                                                                           \
                r0 = _mm512_mul_ps(r0, va);                                                        \
                r1 = _mm512_mul_ps(r1, va);                                                        \
                if (beta != 0.0f) {                                                                \
                    r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);                   \
                    r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);              \
                }                                                                                  \
            } else {                                                                               \
                r0 = _mm512_fmadd_ps(r0, va, _mm512_maskz_loadu_ps(m0, ci));                       \
                r1 = _mm512_fmadd_ps(r1, va, _mm512_maskz_loadu_ps(m1, ci + 16));                  \
            }                                                                                      \
            _mm512_mask_storeu_ps(ci, m0, r0);                                                     \
            _mm512_mask_storeu_ps(ci + 16, m1, r1);                                                \
        }                                                                                          \
    } while (0)
    STORE(0);
    STORE(1);
    STORE(2);
    STORE(3);
    STORE(4);
    STORE(5);
    STORE(6);
    STORE(7);
    STORE(8);
    STORE(9);
    STORE(10);
    STORE(11);
    STORE(12);
    STORE(13);
#undef STORE
}

size_t tr_bf16_avx512_work(int64_t M, int64_t N, int64_t K) {
    const int64_t kp = (K + 1) / 2;
    const int64_t kb = kp < KCP ? kp : KCP;
    const int64_t np = (N + NR - 1) / NR;
    /* all of A (unless packed by the caller) + all B panels of one K block */
    return tr_bf16_avx512_packed_a_size(M, K) + (size_t)(np * NR * kb) * sizeof(uint32_t) + 128;
}

bool tr_bf16_gemm_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const void *packed_a, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc, void *work) {
    const int64_t kp = (K + 1) / 2;
    const int64_t np = (N + NR - 1) / NR;
    uint8_t *w = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    const uint32_t *apack;
    if (packed_a) {
        apack = (const uint32_t *)(((uintptr_t)packed_a + 63) & ~(uintptr_t)63);
    } else {
        tr_bf16_avx512_pack_a(ta, M, K, A, lda, w);
        apack = (const uint32_t *)w;
        w += (tr_bf16_avx512_packed_a_size(M, K) + 63) & ~(size_t)63;
    }
    uint32_t *bpack = (uint32_t *)w;
    for (int64_t p0 = 0; p0 < kp; p0 += KCP) {
        const int64_t pb = kp - p0 < KCP ? kp - p0 : KCP;
        const int64_t k0 = 2 * p0, kc = K - k0 < 2 * pb ? K - k0 : 2 * pb;
        const float *Bk = tb ? B + k0 : B + k0 * ldb;
        for (int64_t j = 0; j < np; j++) {
            const int nr = (int)(N - j * NR < NR ? N - j * NR : NR);
            uint32_t *d = bpack + j * NR * pb;
            for (int h = 0; h < 2; h++) {
                const int cols = nr - 16 * h;
                if (cols <= 0) {
                    for (int64_t p = 0; p < pb; p++)
                        _mm512_storeu_si512((void *)(d + p * NR + 16 * h), _mm512_setzero_si512());
                } else if (tb) {
                    pack_rows_kcontig(Bk + (j * NR + 16 * h) * ldb, ldb, cols > 16 ? 16 : cols, kc,
                                      pb, d + 16 * h, NR);
                } else {
                    pack_rows_kmajor(Bk, ldb, j * NR + 16 * h, cols > 16 ? 16 : cols, kc, pb,
                                     d + 16 * h, NR);
                }
            }
        }
        for (int64_t i0 = 0; i0 < M; i0 += MR) {
            const int mr = (int)(M - i0 < MR ? M - i0 : MR);
            const uint32_t *as = apack + (i0 / MR) * kp * MRP + p0 * MRP;
            for (int64_t j = 0; j < np; j++) {
                const int nr = (int)(N - j * NR < NR ? N - j * NR : NR);
                ukernel(pb, as, bpack + j * NR * pb, C + i0 * ldc + j * NR, ldc, mr, nr, alpha,
                        beta, p0 == 0);
            }
        }
    }
    return true;
}

#else

/* Built without AVX512_BF16: sizes 0 tell bf16.c to use its fallback. */
size_t tr_bf16_avx512_work(int64_t M, int64_t N, int64_t K) {
    (void)M, (void)N, (void)K;
    return 0;
}

size_t tr_bf16_avx512_packed_a_size(int64_t M, int64_t K) {
    (void)M, (void)K;
    return 0;
}

void tr_bf16_avx512_pack_a(bool ta, int64_t M, int64_t K, const float *A, int64_t lda, void *buf) {
    (void)ta, (void)M, (void)K, (void)A, (void)lda, (void)buf;
}

bool tr_bf16_gemm_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const void *packed_a, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc, void *work) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)packed_a,
        (void)B;
    (void)ldb, (void)beta, (void)C, (void)ldc, (void)work;
    return false;
}

#endif
