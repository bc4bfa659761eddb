/* layernorm_avx2.c -- AVX2+FMA layer norm rows (see norm.h); built with -mavx2 -mfma. */
#include <immintrin.h>
#include <math.h>

#include "kernels/norm/norm.h"

static inline __m256i lmask8(int64_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left > 8 ? 8 : left)), idx);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void pl_f32_layernorm_rows_avx2(int64_t rows, int64_t cols, const float *x, const float *scale,
                                const float *bias, float eps, float *y, float *mean,
                                float *inv_std) {
    for (int64_t r = 0; r < rows; r++, x += cols, y += cols) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 16 <= cols; j += 16) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + j + 8));
        }
        for (; j < cols; j += 8)
            s0 = _mm256_add_ps(s0, _mm256_maskload_ps(x + j, lmask8(cols - j)));
        float m = cols > 0 ? hsum8(_mm256_add_ps(s0, s1)) / (float)cols : 0.0f;
        /* second pass around the first mean; its residual sum corrects both */
        __m256 vm = _mm256_set1_ps(m), e0 = _mm256_setzero_ps(), e1 = _mm256_setzero_ps();
        s0 = s1 = _mm256_setzero_ps();
        for (j = 0; j + 16 <= cols; j += 16) {
            __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + j), vm);
            __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vm);
            e0 = _mm256_add_ps(e0, d0);
            e1 = _mm256_add_ps(e1, d1);
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
        }
        for (; j < cols; j += 8) {
            __m256i k = lmask8(cols - j);
            __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), vm),
                                     _mm256_castsi256_ps(k));
            e0 = _mm256_add_ps(e0, d);
            s0 = _mm256_fmadd_ps(d, d, s0);
        }
        float var = 0.0f;
        if (cols > 0) {
            float de = hsum8(_mm256_add_ps(e0, e1)) / (float)cols;
            var = hsum8(_mm256_add_ps(s0, s1)) / (float)cols - de * de;
            var = var > 0.0f ? var : 0.0f;
            m += de;
            vm = _mm256_set1_ps(m);
        }
        float inv = 1.0f / sqrtf(var + eps);
        const __m256 vi = _mm256_set1_ps(inv);
        for (j = 0; j < cols; j += 8) {
            __m256i k = lmask8(cols - j);
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), vm), vi);
            __m256 v = _mm256_mul_ps(d, _mm256_maskload_ps(scale + j, k));
            if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + j, k));
            _mm256_maskstore_ps(y + j, k, v);
        }
        if (mean) mean[r] = m;
        if (inv_std) inv_std[r] = inv;
    }
}
