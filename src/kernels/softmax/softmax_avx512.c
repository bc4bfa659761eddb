/* softmax_avx512.c -- AVX-512 row softmax (see softmax.h); compiled with -mavx512f. */
#include <immintrin.h>
#include <math.h>

#include "kernels/softmax/softmax.h"
#include "kernels/softmax/softmax_exp.h"

/* exp of 16 floats: the steps of pl_softmax_expf, with scalef for the 2^k scaling. */
static inline __m512 exp16(__m512 x) {
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(PL_EXP_LO), _CMP_LT_OQ);
    __mmask16 big = _mm512_cmp_ps_mask(x, _mm512_set1_ps(PL_EXP_HI), _CMP_GT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(PL_EXP_LO), x); /* (lo, NaN) -> NaN */
    x = _mm512_min_ps(_mm512_set1_ps(PL_EXP_HI), x);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(PL_EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(PL_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(PL_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(PL_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PL_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PL_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PL_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PL_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PL_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    __m512 y = _mm512_scalef_ps(p, k);
    y = _mm512_mask_mov_ps(y, big, _mm512_set1_ps(INFINITY));
    return _mm512_maskz_mov_ps((__mmask16)~tiny, y);
}

static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

void pl_softmax_rows_f32_avx512(const float *x, float *y, int64_t rows, int64_t n, bool log_mode) {
    if (n <= 0) return;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        __m512 m0 = ninf, m1 = ninf;
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
            m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
        }
        for (; i < n; i += 16)
            m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i));
        float mx = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
        const __m512 vmx = _mm512_set1_ps(mx);
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        i = 0;
        for (; i + 32 <= n; i += 32) {
            __m512 e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
            __m512 e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmx));
            s0 = _mm512_add_ps(s0, e0);
            s1 = _mm512_add_ps(s1, e1);
            if (!log_mode) {
                _mm512_storeu_ps(y + i, e0);
                _mm512_storeu_ps(y + i + 16, e1);
            }
        }
        for (; i < n; i += 16) {
            __mmask16 m = tail_mask(n - i);
            __m512 e = exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, m, x + i), vmx));
            s0 = _mm512_add_ps(s0, e); /* masked lanes are exp(-inf) = 0 */
            if (!log_mode) _mm512_mask_storeu_ps(y + i, m, e);
        }
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        if (log_mode) {
            const __m512 ls = _mm512_set1_ps(logf(sum)); /* (x - max) - log(sum) */
            for (i = 0; i < n; i += 16) {
                __mmask16 m = tail_mask(n - i);
                __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmx);
                _mm512_mask_storeu_ps(y + i, m, _mm512_sub_ps(d, ls));
            }
        } else {
            const __m512 inv = _mm512_set1_ps(1.0f / sum);
            for (i = 0; i < n; i += 16) {
                __mmask16 m = tail_mask(n - i);
                _mm512_mask_storeu_ps(y + i, m,
                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), inv));
            }
        }
    }
}
