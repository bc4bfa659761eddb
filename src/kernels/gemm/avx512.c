/* avx512.c -- AVX-512 SGEMM micro-kernels (14x32: 28 zmm accumulators), packing and the
 * vectorised epilogue (exp/erf-based activations included).
 *
 * Kernel names follow <dtype>_gemm_ukernel_<rows>x<cols>__<isa>. One body, instantiated
 * for every row count 1..14 and for one or two vector columns, so edge tiles cost only
 * the rows they have; partial column tiles use AVX-512 masks (no scratch copies). */
#include "kernels/gemm/sgemm.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512DQ__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/gemm/gelu_q_table.h"

#define MR 14
#define NR 32

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __mmask16 mask_lo(int nr) {
    return nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
}
static ALWAYS_INLINE __mmask16 mask_hi(int nr) {
    return nr >= 32 ? (__mmask16)0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : 0;
}

/* In-register 16x16 transpose: afterwards r[k] holds what was column k. */
static ALWAYS_INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        int j = (i / 4) * 8 + (i % 4);
        t[2 * i] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0x88);
        t[2 * i + 1] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0xdd);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_f32x4(t[2 * i + 1], t[2 * i + 9], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[2 * i + 1], t[2 * i + 9], 0xdd);
    }
}

/* Transposing store of one vector column of accumulators: acc[i] lane j goes to
 * c[j*ldc + i] for i < R, j < n (times alpha, plus beta times the old value). */
static ALWAYS_INLINE void store_t(const int R, const __m512 *acc, float *c, int64_t ldc, int n,
                                  __m512 va, float beta) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = i < R ? _mm512_mul_ps(acc[i], va) : _mm512_setzero_ps();
    transpose16(r);
    const __mmask16 mi = (__mmask16)((1u << R) - 1u);
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
        if (j < n) {
            float *cj = c + j * ldc;
            __m512 v = r[j];
            if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mi, cj), vb, v);
            _mm512_mask_storeu_ps(cj, mi, v);
        }
    }
}

/* R rows (1..MR) x V vector columns (1 or 2). The accumulators are an array indexed
 * only by unrolled constants, so they live in registers. */
static ALWAYS_INLINE void ukernel_body(const int R, const int V, const int CT, const int PK,
                                       float *bpack, int64_t kc, const float *a, const float *b,
                                       int64_t ldb, float *c, int64_t ldc, int nr, float alpha,
                                       float beta) {
    const __mmask16 m0 = mask_lo(nr), m1 = mask_hi(nr);
    __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    if (!CT) {
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            if (V == 2) _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        }
    }
    if (PK) {
        /* B in place, 16 rows prefetched ahead; each row also goes to the packed sliver. */
        for (int64_t k = 0; k < kc; k++) {
            _mm_prefetch((const char *)(b + 16 * ldb), _MM_HINT_T0);
            if (V == 2) _mm_prefetch((const char *)(b + 16 * ldb + 16), _MM_HINT_T0);
            __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
            __m512 b1 = V == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
            _mm512_storeu_ps(bpack, b0);
            _mm512_storeu_ps(bpack + 16, b1);
#pragma GCC unroll 16
            for (int i = 0; i < R; i++) {
                __m512 ai = _mm512_set1_ps(a[i]);
                acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
                if (V == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
            }
            a += MR;
            b += ldb;
            bpack += NR;
        }
    } else if (ldb == NR) {
        /* Packed B: every sliver row is 32 valid-or-zero floats; no masks needed. */
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_loadu_ps(b);
            __m512 b1 = V == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 16
            for (int i = 0; i < R; i++) {
                __m512 ai = _mm512_set1_ps(a[i]);
                acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
                if (V == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
            }
            a += MR;
            b += NR;
        }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
            __m512 b1 = V == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
#pragma GCC unroll 16
            for (int i = 0; i < R; i++) {
                __m512 ai = _mm512_set1_ps(a[i]);
                acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
                if (V == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
            }
            a += MR;
            b += ldb;
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    if (CT) {
        store_t(R, acc0, c, ldc, nr < 16 ? nr : 16, va, beta);
        if (V == 2 && nr > 16) store_t(R, acc1, c + 16 * ldc, ldc, nr - 16, va, beta);
    } else if (beta == 0.0f) {
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            _mm512_mask_storeu_ps(c + i * ldc, m0, _mm512_mul_ps(acc0[i], va));
            if (V == 2) _mm512_mask_storeu_ps(c + i * ldc + 16, m1, _mm512_mul_ps(acc1[i], va));
        }
    } else {
        const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            __m512 c0 = _mm512_maskz_loadu_ps(m0, c + i * ldc);
            _mm512_mask_storeu_ps(c + i * ldc, m0,
                                  _mm512_fmadd_ps(acc0[i], va, _mm512_mul_ps(c0, vb)));
            if (V == 2) {
                __m512 c1 = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
                _mm512_mask_storeu_ps(c + i * ldc + 16, m1,
                                      _mm512_fmadd_ps(acc1[i], va, _mm512_mul_ps(c1, vb)));
            }
        }
    }
}

#define UK(R, V, W, CT, SFX)                                                                       \
    static void f32_gemm_ukernel_##R##x##W##SFX##__avx512(                                         \
        int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int nr,    \
        float alpha, float beta) {                                                                 \
        ukernel_body(R, V, CT, 0, NULL, kc, a, b, ldb, c, ldc, nr, alpha, beta);                   \
    }
#define UKR(R) UK(R, 1, 16, 0, ) UK(R, 2, 32, 0, ) UK(R, 1, 16, 1, t) UK(R, 2, 32, 1, t)
UKR(1)
UKR(2)
UKR(3)
UKR(4)
UKR(5)
UKR(6)
UKR(7)
UKR(8)
UKR(9)
UKR(10)
UKR(11)
UKR(12)
UKR(13)
UKR(14)
#define UKPACK(V, W, CT, SFX)                                                                      \
    static void f32_gemm_ukernel_14x##W##SFX##_packb__avx512(                                      \
        int64_t kc, const float *a, const float *b, int64_t ldb, float *bpack, float *c,           \
        int64_t ldc, int nr, float alpha, float beta) {                                            \
        ukernel_body(MR, V, CT, 1, bpack, kc, a, b, ldb, c, ldc, nr, alpha, beta);                 \
    }
UKPACK(1, 16, 0, )
UKPACK(2, 32, 0, )
UKPACK(1, 16, 1, t)
UKPACK(2, 32, 1, t)
#define UKP(R)                                                                                     \
    { f32_gemm_ukernel_##R##x16__avx512, f32_gemm_ukernel_##R##x32__avx512 }
#define UKPT(R)                                                                                    \
    { f32_gemm_ukernel_##R##x16t__avx512, f32_gemm_ukernel_##R##x32t__avx512 }

/* ---- packing ---- */

/* One untransposed sliver: rows [0, mr) of A (contiguous along K) -> dst[k*MR + i]. Rows
 * are read 64 bytes at a time and prefetched 4 lines ahead: fourteen short strided
 * streams are otherwise latency-bound. */
static void pack_a_sliver_n(const float *A, int64_t lda, int mr, int64_t kc, float *dst) {
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) {
            if (i < mr) {
                _mm_prefetch((const char *)(A + i * lda + k + 64), _MM_HINT_T0);
                r[i] = _mm512_loadu_ps(A + i * lda + k);
            } else {
                r[i] = _mm512_setzero_ps();
            }
        }
        transpose16(r);
        /* r[kk] holds column k+kk for rows 0..15; the sliver keeps rows 0..13. */
        for (int kk = 0; kk < 16; kk++)
            _mm512_mask_storeu_ps(dst + (k + kk) * MR, (__mmask16)0x3fff, r[kk]);
    }
    if (k < kc) {
        const __mmask16 km = mask_lo((int)(kc - k));
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_maskz_loadu_ps(km, A + i * lda + k) : _mm512_setzero_ps();
        transpose16(r);
        for (int kk = 0; k + kk < kc; kk++)
            _mm512_mask_storeu_ps(dst + (k + kk) * MR, (__mmask16)0x3fff, r[kk]);
    }
}

static void pack_a_avx512(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc,
                          float *dst) {
    if (trans) {
        /* op(A)(i, k) = A[k*lda + i]: each stored row k feeds every sliver; read it
         * sequentially. */
        int64_t nsl = (mc + MR - 1) / MR;
        for (int64_t k = 0; k < kc; k++) {
            const float *src = A + k * lda;
            _mm_prefetch((const char *)(src + 2 * lda), _MM_HINT_T0);
            for (int64_t s = 0; s < nsl; s++) {
                int64_t left = mc - s * MR;
                __mmask16 m = mask_lo((int)(left < MR ? left : MR));
                _mm512_mask_storeu_ps(dst + s * kc * MR + k * MR, (__mmask16)0x3fff,
                                      _mm512_maskz_loadu_ps(m, src + s * MR));
            }
        }
        return;
    }
    for (int64_t r = 0; r < mc; r += MR) {
        int mr = (int)(mc - r < MR ? mc - r : MR);
        /* Start fetching the next sliver's rows while this one is transposed. */
        if (r + MR < mc) {
            int64_t nxt = mc - r - MR < MR ? mc - r - MR : MR;
            for (int64_t i = 0; i < nxt; i++)
                for (int l = 0; l < 4 && 16 * l < kc; l++)
                    _mm_prefetch((const char *)(A + (r + MR + i) * lda + 16 * l), _MM_HINT_T0);
        }
        pack_a_sliver_n(A + r * lda, lda, mr, kc, dst + (r / MR) * kc * MR);
    }
}

static void pack_b_avx512(bool trans, const float *B, int64_t ldb, int64_t nc, int64_t kc,
                          float *dst) {
    if (trans) {
        /* op(B)(k, j) = B[j*ldb + k]: transpose 16x16 blocks, two per sliver row step. */
        for (int64_t c = 0; c < nc; c += NR) {
            int nr = (int)(nc - c < NR ? nc - c : NR);
            float *d = dst + (c / NR) * kc * NR;
            for (int h = 0; h < 2; h++) {
                int cols = nr - 16 * h;
                if (cols > 16) cols = 16;
                for (int64_t k = 0; k < kc; k += 16) {
                    int kn = kc - k < 16 ? (int)(kc - k) : 16;
                    const __mmask16 km = mask_lo(kn);
                    __m512 r[16];
                    for (int j = 0; j < 16; j++) {
                        if (j < cols) {
                            const float *src = B + (c + 16 * h + j) * ldb + k;
                            _mm_prefetch((const char *)(src + 64), _MM_HINT_T0);
                            r[j] = _mm512_maskz_loadu_ps(km, src);
                        } else {
                            r[j] = _mm512_setzero_ps();
                        }
                    }
                    transpose16(r);
                    for (int kk = 0; kk < kn; kk++)
                        _mm512_storeu_ps(d + (k + kk) * NR + 16 * h, r[kk]);
                }
            }
        }
        return;
    }
    /* Untransposed: walk the block row by row (sequential reads), scattering 32-float
     * pieces to the slivers; the row two ahead is prefetched. */
    int64_t full = nc / NR;
    int rem = (int)(nc - full * NR);
    const __mmask16 m0 = mask_lo(rem), m1 = mask_hi(rem);
    for (int64_t k = 0; k < kc; k++) {
        const float *src = B + k * ldb;
        if (k + 2 < kc)
            for (int64_t l = 0; l < nc; l += 16)
                _mm_prefetch((const char *)(src + 2 * ldb + l), _MM_HINT_T0);
        float *d = dst + k * NR;
        for (int64_t t = 0; t < full; t++) {
            _mm512_storeu_ps(d + t * kc * NR, _mm512_loadu_ps(src + t * NR));
            _mm512_storeu_ps(d + t * kc * NR + 16, _mm512_loadu_ps(src + t * NR + 16));
        }
        if (rem) {
            _mm512_storeu_ps(d + full * kc * NR, _mm512_maskz_loadu_ps(m0, src + full * NR));
            _mm512_storeu_ps(d + full * kc * NR + 16,
                             _mm512_maskz_loadu_ps(m1, src + full * NR + 16));
        }
    }
}

/* ---- vector math for the epilogue ---- */

/* exp(x), about 1 ulp: x = n ln2 + r, |r| <= ln2/2, degree-7 polynomial for e^r, then
 * scalef by 2^n. NaN propagates (it is kept as the second operand of max/min). */
static ALWAYS_INLINE __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-103.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(88.7f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static ALWAYS_INLINE __m512 sigmoid512(__m512 x) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* GELU(x) = x Phi(x) with h = Phi(-|x|) from the piecewise polynomial of
 * gelu_q_table.h: x >= 0 gives x (1 - h), x < 0 gives x h (no cancellation in the
 * negative tail); |x| >= 8 takes h = 0. The 32 coefficients of each degree are two
 * registers, picked per lane by one two-table permute: about 20 vector operations,
 * against about 40 with a division and an exp for erfc (the epilogue was ~5% of BERT's
 * FFN GEMM). NaN stays NaN. */
static ALWAYS_INLINE __m512 gelu_erf512(__m512 x) {
    const __m512 a = _mm512_abs_ps(x);
    const __m512 u = _mm512_mul_ps(a, _mm512_set1_ps(4.0f));
    const __m512 fi = _mm512_roundscale_ps(_mm512_min_ps(u, _mm512_set1_ps(31.0f)),
                                           _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512i idx = _mm512_cvttps_epi32(fi);
    const __m512 t = _mm512_sub_ps(_mm512_sub_ps(u, fi), _mm512_set1_ps(0.5f));
#define GQ(d) _mm512_permutex2var_ps(_mm512_load_ps(gelu_q[d]), idx, _mm512_load_ps(gelu_q[d] + 16))
    __m512 h = GQ(7);
    h = _mm512_fmadd_ps(h, t, GQ(6));
    h = _mm512_fmadd_ps(h, t, GQ(5));
    h = _mm512_fmadd_ps(h, t, GQ(4));
    h = _mm512_fmadd_ps(h, t, GQ(3));
    h = _mm512_fmadd_ps(h, t, GQ(2));
    h = _mm512_fmadd_ps(h, t, GQ(1));
    h = _mm512_fmadd_ps(h, t, GQ(0));
#undef GQ
    h = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(8.0f), _CMP_NGE_UQ), h);
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 f = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), h), h);
    return _mm512_mul_ps(x, f);
}

static ALWAYS_INLINE __m512 act512(__m512 x, const pl_sgemm_epilogue *e) {
    const __m512 zero = _mm512_setzero_ps();
    switch (e->act) {
    case PL_SGEMM_ACT_NONE:
        return x;
    case PL_SGEMM_ACT_RELU:
        return _mm512_max_ps(zero, x);
    case PL_SGEMM_ACT_CLIP:
        return _mm512_min_ps(_mm512_set1_ps(e->act_max),
                             _mm512_max_ps(_mm512_set1_ps(e->act_min), x));
    case PL_SGEMM_ACT_LEAKY_RELU: {
        __mmask16 neg = _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ);
        return _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(e->act_alpha));
    }
    case PL_SGEMM_ACT_SIGMOID:
        return sigmoid512(x);
    case PL_SGEMM_ACT_HARDSWISH: {
        __m512 t = _mm512_add_ps(x, _mm512_set1_ps(3.0f));
        t = _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(zero, t));
        return _mm512_mul_ps(_mm512_mul_ps(x, t), _mm512_set1_ps(1.0f / 6.0f));
    }
    case PL_SGEMM_ACT_GELU_ERF:
        return gelu_erf512(x);
    case PL_SGEMM_ACT_GELU_TANH: {
        /* 0.5 (1 + tanh(u)) == sigmoid(2u). */
        __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
        __m512 u = _mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x);
        u = _mm512_mul_ps(u, _mm512_set1_ps(2.0f * 0.79788456080286536f));
        return _mm512_mul_ps(x, sigmoid512(u));
    }
    default:
        return x;
    }
}

static void epilogue_avx512(float *c, int64_t ldc, int64_t mr, int64_t nr, const float *row_bias,
                            const float *col_bias, const float *res, int64_t ldr,
                            const pl_sgemm_epilogue *epi) {
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ri = res ? res + i * ldr : NULL;
        __m512 rb = _mm512_set1_ps(row_bias ? row_bias[i] : 0.0f);
        for (int64_t j = 0; j < nr; j += 16) {
            __mmask16 m = mask_lo((int)(nr - j < 16 ? nr - j : 16));
            __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, ci + j), rb);
            if (col_bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, col_bias + j));
            if (ri) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ri + j));
            _mm512_mask_storeu_ps(ci + j, m, act512(v, epi));
        }
    }
}

static const pl_sgemm_impl impl = {
    .isa = PL_ISA_AVX512,
    .mr = MR,
    .nr = NR,
    .ukernel = {UKP(1), UKP(2), UKP(3), UKP(4), UKP(5), UKP(6), UKP(7), UKP(8), UKP(9), UKP(10),
                UKP(11), UKP(12), UKP(13), UKP(14)},
    .ukernel_t = {UKPT(1), UKPT(2), UKPT(3), UKPT(4), UKPT(5), UKPT(6), UKPT(7), UKPT(8), UKPT(9),
                  UKPT(10), UKPT(11), UKPT(12), UKPT(13), UKPT(14)},
    .ukernel_pack = {{f32_gemm_ukernel_14x16_packb__avx512, f32_gemm_ukernel_14x16t_packb__avx512},
                     {f32_gemm_ukernel_14x32_packb__avx512, f32_gemm_ukernel_14x32t_packb__avx512}},
    .pack_a = pack_a_avx512,
    .pack_b = pack_b_avx512,
    .epilogue = epilogue_avx512,
};

const pl_sgemm_impl *pl_sgemm_impl_avx512(void) {
    return &impl;
}

#else
const pl_sgemm_impl *pl_sgemm_impl_avx512(void) {
    return NULL;
}
#endif
