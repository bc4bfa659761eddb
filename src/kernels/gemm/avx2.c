/* avx2.c -- AVX2/FMA SGEMM micro-kernels (6x16: 12 ymm accumulators), packing and the
 * vectorised epilogue. Partial column tiles use vmaskmov loads/stores. */
#include "kernels/gemm/sgemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define MR 6
#define NR 16

#define ALWAYS_INLINE inline __attribute__((always_inline))

static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lane mask with the first n (clamped to 0..8) lanes set. */
static ALWAYS_INLINE __m256i lanes(int n) {
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - n));
}

/* 8x8 transpose of r[0..7] in place: r[k] becomes column k. */
static ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x31);
    }
}

/* Transposing store: acc[i] lane j goes to c[j*ldc + i] for i < R, j < n. */
static ALWAYS_INLINE void store_t(const int R, const __m256 *acc, float *c, int64_t ldc, int n,
                                  __m256 va, float beta) {
    __m256 r[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) r[i] = i < R ? _mm256_mul_ps(acc[i], va) : _mm256_setzero_ps();
    transpose8(r);
    const __m256i mi = lanes(R);
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        if (j < n) {
            float *cj = c + j * ldc;
            __m256 v = r[j];
            if (beta != 0.0f) v = _mm256_fmadd_ps(_mm256_maskload_ps(cj, mi), vb, v);
            _mm256_maskstore_ps(cj, mi, v);
        }
    }
}

static ALWAYS_INLINE void ukernel_body(const int R, const int V, const int CT, const int PK,
                                       float *bpack, int64_t kc, const float *a, const float *b,
                                       int64_t ldb, float *c, int64_t ldc, int nr, float alpha,
                                       float beta) {
    __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }
    if (PK) {
        /* B in place (masked when partial), 16 rows prefetched ahead; each row is also
         * written, zero-padded, to the packed sliver for the tiles below. */
        const __m256i l0 = lanes(nr), l1 = lanes(nr - 8);
        for (int64_t k = 0; k < kc; k++) {
            _mm_prefetch((const char *)(b + 16 * ldb), _MM_HINT_T0);
            __m256 b0 = nr >= 8 ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, l0);
            __m256 b1 = V == 2 ? (nr == NR ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, l1))
                               : _mm256_setzero_ps();
            _mm256_storeu_ps(bpack, b0);
            _mm256_storeu_ps(bpack + 8, b1);
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                __m256 ai = _mm256_broadcast_ss(a + i);
                acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
                if (V == 2) acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
            }
            a += MR;
            b += ldb;
            bpack += NR;
        }
    } else if (ldb == NR || nr == NR) {
        /* Packed B (zero-padded) or a full-width direct sliver: plain loads. */
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_loadu_ps(b);
            __m256 b1 = V == 2 ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                __m256 ai = _mm256_broadcast_ss(a + i);
                acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
                if (V == 2) acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
            }
            a += MR;
            b += ldb;
        }
    } else {
        const __m256i l0 = lanes(nr), l1 = lanes(nr - 8);
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_maskload_ps(b, l0);
            __m256 b1 = V == 2 ? _mm256_maskload_ps(b + 8, l1) : b0;
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                __m256 ai = _mm256_broadcast_ss(a + i);
                acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
                if (V == 2) acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
            }
            a += MR;
            b += ldb;
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (CT) {
        store_t(R, acc0, c, ldc, nr < 8 ? nr : 8, va, beta);
        if (V == 2 && nr > 8) store_t(R, acc1, c + 8 * ldc, ldc, nr - 8, va, beta);
    } else if (nr == NR) {
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) {
            float *ci = c + i * ldc;
            __m256 r0 = _mm256_mul_ps(acc0[i], va), r1 = _mm256_mul_ps(acc1[i], va);
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(_mm256_loadu_ps(ci), vb, r0);
                r1 = _mm256_fmadd_ps(_mm256_loadu_ps(ci + 8), vb, r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        }
    } else {
        const __m256i l0 = lanes(nr), l1 = lanes(nr - 8);
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) {
            float *ci = c + i * ldc;
            __m256 r0 = _mm256_mul_ps(acc0[i], va);
            if (beta != 0.0f) r0 = _mm256_fmadd_ps(_mm256_maskload_ps(ci, l0), vb, r0);
            _mm256_maskstore_ps(ci, l0, r0);
            if (V == 2) {
                __m256 r1 = _mm256_mul_ps(acc1[i], va);
                if (beta != 0.0f) r1 = _mm256_fmadd_ps(_mm256_maskload_ps(ci + 8, l1), vb, r1);
                _mm256_maskstore_ps(ci + 8, l1, r1);
            }
        }
    }
}

#define UK(R, V, W, CT, SFX)                                                                       \
    static void f32_gemm_ukernel_##R##x##W##SFX##__avx2(                                           \
        int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int nr,    \
        float alpha, float beta) {                                                                 \
        ukernel_body(R, V, CT, 0, NULL, kc, a, b, ldb, c, ldc, nr, alpha, beta);                   \
    }
#define UKR(R) UK(R, 1, 8, 0, ) UK(R, 2, 16, 0, ) UK(R, 1, 8, 1, t) UK(R, 2, 16, 1, t)
UKR(1)
UKR(2)
UKR(3)
UKR(4)
UKR(5)
UKR(6)
#define UKPACK(V, W, CT, SFX)                                                                      \
    static void f32_gemm_ukernel_6x##W##SFX##_packb__avx2(                                         \
        int64_t kc, const float *a, const float *b, int64_t ldb, float *bpack, float *c,           \
        int64_t ldc, int nr, float alpha, float beta) {                                            \
        ukernel_body(MR, V, CT, 1, bpack, kc, a, b, ldb, c, ldc, nr, alpha, beta);                 \
    }
UKPACK(1, 8, 0, )
UKPACK(2, 16, 0, )
UKPACK(1, 8, 1, t)
UKPACK(2, 16, 1, t)
#define UKP(R)                                                                                     \
    { f32_gemm_ukernel_##R##x8__avx2, f32_gemm_ukernel_##R##x16__avx2 }
#define UKPT(R)                                                                                    \
    { f32_gemm_ukernel_##R##x8t__avx2, f32_gemm_ukernel_##R##x16t__avx2 }

/* ---- packing ---- */

static void pack_a_avx2(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc,
                        float *dst) {
    for (int64_t r = 0; r < mc; r += MR) {
        float *d = dst + (r / MR) * kc * MR;
        if (trans || mc - r < MR) {
            int64_t mr = mc - r < MR ? mc - r : MR;
            pl_sgemm_pack_a_generic(MR, trans, trans ? A + r : A + r * lda, lda, mr, kc, d);
            continue;
        }
        const float *a = A + r * lda;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++) {
                if (i < MR) {
                    _mm_prefetch((const char *)(a + i * lda + k + 32), _MM_HINT_T0);
                    v[i] = _mm256_loadu_ps(a + i * lda + k);
                } else {
                    v[i] = _mm256_setzero_ps();
                }
            }
            transpose8(v);
            /* Column kk holds rows 0..7; the sliver keeps 6. */
            for (int kk = 0; kk < 8; kk++) _mm256_maskstore_ps(d + (k + kk) * MR, lanes(MR), v[kk]);
        }
        for (; k < kc; k++)
            for (int i = 0; i < MR; i++) d[k * MR + i] = a[i * lda + k];
    }
}

static void pack_b_avx2(bool trans, const float *B, int64_t ldb, int64_t nc, int64_t kc,
                        float *dst) {
    if (trans) {
        pl_sgemm_pack_b_generic(NR, trans, B, ldb, nc, kc, dst);
        return;
    }
    int64_t full = nc / NR;
    int rem = (int)(nc - full * NR);
    const __m256i l0 = lanes(rem), l1 = lanes(rem - 8);
    for (int64_t k = 0; k < kc; k++) {
        const float *src = B + k * ldb;
        if (k + 2 < kc)
            for (int64_t l = 0; l < nc; l += 16)
                _mm_prefetch((const char *)(src + 2 * ldb + l), _MM_HINT_T0);
        float *d = dst + k * NR;
        for (int64_t t = 0; t < full; t++) {
            _mm256_storeu_ps(d + t * kc * NR, _mm256_loadu_ps(src + t * NR));
            _mm256_storeu_ps(d + t * kc * NR + 8, _mm256_loadu_ps(src + t * NR + 8));
        }
        if (rem) {
            _mm256_storeu_ps(d + full * kc * NR, _mm256_maskload_ps(src + full * NR, l0));
            _mm256_storeu_ps(d + full * kc * NR + 8, _mm256_maskload_ps(src + full * NR + 8, l1));
        }
    }
}

/* ---- vector math for the epilogue (same method as avx512.c) ---- */

static ALWAYS_INLINE __m256 exp256(__m256 x) {
    /* Clamp so that 2^n stays a normal float built from the exponent bits. */
    x = _mm256_max_ps(_mm256_set1_ps(-87.3f), x);
    x = _mm256_min_ps(_mm256_set1_ps(88.3f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static ALWAYS_INLINE __m256 sigmoid256(__m256 x) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static ALWAYS_INLINE __m256 erfc_pos256(__m256 z) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    return _mm256_mul_ps(t, exp256(_mm256_fnmadd_ps(z, z, p)));
}

static ALWAYS_INLINE __m256 act256(__m256 x, const pl_sgemm_epilogue *e) {
    const __m256 zero = _mm256_setzero_ps();
    switch (e->act) {
    case PL_SGEMM_ACT_NONE:
        return x;
    case PL_SGEMM_ACT_RELU:
        return _mm256_max_ps(zero, x);
    case PL_SGEMM_ACT_CLIP:
        return _mm256_min_ps(_mm256_set1_ps(e->act_max),
                             _mm256_max_ps(_mm256_set1_ps(e->act_min), x));
    case PL_SGEMM_ACT_LEAKY_RELU: {
        __m256 neg = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
        return _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(e->act_alpha)), neg);
    }
    case PL_SGEMM_ACT_SIGMOID:
        return sigmoid256(x);
    case PL_SGEMM_ACT_HARDSWISH: {
        __m256 t = _mm256_add_ps(x, _mm256_set1_ps(3.0f));
        t = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(zero, t));
        return _mm256_mul_ps(_mm256_mul_ps(x, t), _mm256_set1_ps(1.0f / 6.0f));
    }
    case PL_SGEMM_ACT_GELU_ERF: {
        __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
        __m256 z = _mm256_mul_ps(ax, _mm256_set1_ps(0.70710678118654752f));
        __m256 h = _mm256_mul_ps(erfc_pos256(z), _mm256_set1_ps(0.5f));
        __m256 neg = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
        __m256 f = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), h), h, neg);
        return _mm256_mul_ps(x, f);
    }
    case PL_SGEMM_ACT_GELU_TANH: {
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 u = _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x);
        u = _mm256_mul_ps(u, _mm256_set1_ps(2.0f * 0.79788456080286536f));
        return _mm256_mul_ps(x, sigmoid256(u));
    }
    default:
        return x;
    }
}

static void epilogue_avx2(float *c, int64_t ldc, int64_t mr, int64_t nr, const float *row_bias,
                          const float *col_bias, const float *res, int64_t ldr,
                          const pl_sgemm_epilogue *epi) {
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ri = res ? res + i * ldr : NULL;
        __m256 rb = _mm256_set1_ps(row_bias ? row_bias[i] : 0.0f);
        for (int64_t j = 0; j < nr; j += 8) {
            int n = (int)(nr - j < 8 ? nr - j : 8);
            if (n == 8) {
                __m256 v = _mm256_add_ps(_mm256_loadu_ps(ci + j), rb);
                if (col_bias) v = _mm256_add_ps(v, _mm256_loadu_ps(col_bias + j));
                if (ri) v = _mm256_add_ps(v, _mm256_loadu_ps(ri + j));
                _mm256_storeu_ps(ci + j, act256(v, epi));
            } else {
                __m256i l = lanes(n);
                __m256 v = _mm256_add_ps(_mm256_maskload_ps(ci + j, l), rb);
                if (col_bias) v = _mm256_add_ps(v, _mm256_maskload_ps(col_bias + j, l));
                if (ri) v = _mm256_add_ps(v, _mm256_maskload_ps(ri + j, l));
                _mm256_maskstore_ps(ci + j, l, act256(v, epi));
            }
        }
    }
}

static const pl_sgemm_impl impl = {
    .isa = PL_ISA_AVX2,
    .mr = MR,
    .nr = NR,
    .ukernel = {UKP(1), UKP(2), UKP(3), UKP(4), UKP(5), UKP(6)},
    .ukernel_t = {UKPT(1), UKPT(2), UKPT(3), UKPT(4), UKPT(5), UKPT(6)},
    .ukernel_pack = {{f32_gemm_ukernel_6x8_packb__avx2, f32_gemm_ukernel_6x8t_packb__avx2},
                     {f32_gemm_ukernel_6x16_packb__avx2, f32_gemm_ukernel_6x16t_packb__avx2}},
    .pack_a = pack_a_avx2,
    .pack_b = pack_b_avx2,
    .epilogue = epilogue_avx2,
};

const pl_sgemm_impl *pl_sgemm_impl_avx2(void) {
    return &impl;
}

#else
const pl_sgemm_impl *pl_sgemm_impl_avx2(void) {
    return NULL;
}
#endif
