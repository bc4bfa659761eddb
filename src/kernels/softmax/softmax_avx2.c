/* softmax_avx2.c -- AVX2+FMA row softmax (see softmax.h); compiled with -mavx2 -mfma. */
#include <immintrin.h>
#include <math.h>

#include "kernels/softmax/softmax.h"
#include "kernels/softmax/softmax_exp.h"

/* exp of 8 floats: the steps of pl_softmax_expf, 2^k built in the exponent bits. */
static inline __m256 exp8(__m256 x) {
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(PL_EXP_LO), _CMP_LT_OQ);
    __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(PL_EXP_HI), _CMP_GT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(PL_EXP_LO), x); /* (lo, NaN) -> NaN */
    x = _mm256_min_ps(_mm256_set1_ps(PL_EXP_HI), x);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(PL_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(PL_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(PL_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(PL_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PL_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PL_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PL_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PL_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PL_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), big);
    return _mm256_andnot_ps(tiny, y);
}

/* Lanes [0, left) of an 8-lane mask. */
static inline __m256i tail8(int64_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left > 8 ? 8 : left)), idx);
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void pl_softmax_rows_f32_avx2(const float *x, float *y, int64_t rows, int64_t n, bool log_mode) {
    if (n <= 0) return;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        __m256 m0 = ninf, m1 = ninf;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
        }
        for (; i < n; i += 8) {
            __m256i m = tail8(n - i);
            __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
            m0 = _mm256_max_ps(m0, v);
        }
        float mx = hmax8(_mm256_max_ps(m0, m1));
        const __m256 vmx = _mm256_set1_ps(mx);
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        i = 0;
        for (; i + 16 <= n; i += 16) {
            __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
            __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmx));
            s0 = _mm256_add_ps(s0, e0);
            s1 = _mm256_add_ps(s1, e1);
            if (!log_mode) {
                _mm256_storeu_ps(y + i, e0);
                _mm256_storeu_ps(y + i + 8, e1);
            }
        }
        for (; i < n; i += 8) {
            __m256i m = tail8(n - i);
            __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
            __m256 e = exp8(_mm256_sub_ps(v, vmx));
            s0 = _mm256_add_ps(s0, e);
            if (!log_mode) _mm256_maskstore_ps(y + i, m, e);
        }
        float sum = hsum8(_mm256_add_ps(s0, s1));
        if (log_mode) {
            const __m256 ls = _mm256_set1_ps(logf(sum)); /* (x - max) - log(sum) */
            for (i = 0; i < n; i += 8) {
                __m256i m = tail8(n - i);
                __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + i, m), vmx);
                _mm256_maskstore_ps(y + i, m, _mm256_sub_ps(d, ls));
            }
        } else {
            const __m256 inv = _mm256_set1_ps(1.0f / sum);
            for (i = 0; i < n; i += 8) {
                __m256i m = tail8(n - i);
                _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(y + i, m), inv));
            }
        }
    }
}
