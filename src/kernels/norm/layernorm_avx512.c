/* layernorm_avx512.c -- AVX-512 layer norm rows (see norm.h); built with -mavx512f. */
#include <immintrin.h>
#include <math.h>

#include "kernels/norm/norm.h"

static inline __mmask16 lmask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

void pl_f32_layernorm_rows_avx512(int64_t rows, int64_t cols, const float *x, const float *scale,
                                  const float *bias, float eps, float *y, float *mean,
                                  float *inv_std) {
    for (int64_t r = 0; r < rows; r++, x += cols, y += cols) {
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 32 <= cols; j += 32) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + j + 16));
        }
        for (; j < cols; j += 16)
            s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(lmask(cols - j), x + j));
        float m = cols > 0 ? _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)cols : 0.0f;
        /* second pass around the first mean; its residual sum corrects both */
        __m512 vm = _mm512_set1_ps(m), e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps();
        s0 = s1 = _mm512_setzero_ps();
        for (j = 0; j + 32 <= cols; j += 32) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + j), vm);
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + j + 16), vm);
            e0 = _mm512_add_ps(e0, d0);
            e1 = _mm512_add_ps(e1, d1);
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
        }
        for (; j < cols; j += 16) {
            __mmask16 k = lmask(cols - j);
            __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + j), vm);
            e0 = _mm512_add_ps(e0, d);
            s0 = _mm512_fmadd_ps(d, d, s0);
        }
        float var = 0.0f;
        if (cols > 0) {
            float de = _mm512_reduce_add_ps(_mm512_add_ps(e0, e1)) / (float)cols;
            var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)cols - de * de;
            var = var > 0.0f ? var : 0.0f;
            m += de;
            vm = _mm512_set1_ps(m);
        }
        float inv = 1.0f / sqrtf(var + eps);
        const __m512 vi = _mm512_set1_ps(inv);
        for (j = 0; j < cols; j += 16) {
            __mmask16 k = lmask(cols - j);
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm), vi);
            __m512 v = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, scale + j));
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + j));
            _mm512_mask_storeu_ps(y + j, k, v);
        }
        if (mean) mean[r] = m;
        if (inv_std) inv_std[r] = inv;
    }
}
