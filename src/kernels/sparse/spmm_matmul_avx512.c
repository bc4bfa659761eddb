/* spmm_matmul_avx512.c -- AVX-512 transposes (16 x 16 blocks in registers) and sparse
 * matrix-vector product (16 nonzeros at a time through a gather) for the sparse MatMul
 * path; the plain-C twins are in spmm_matmul.c. */
#include "kernels/sparse/spmm_matmul.h"

#if defined(__AVX512F__)
#include <immintrin.h>

/* One full 16 x 16 block: src rows of 16 floats (stride lds) -> dst rows (stride ldd). */
static inline void tr16(const float *src, int64_t lds, float *dst, int64_t ldd) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}

static void transpose_avx512(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                             int64_t ldd) {
    const int64_t rf = rows & ~(int64_t)15, cf = cols & ~(int64_t)15;
    for (int64_t r0 = 0; r0 < rf; r0 += 16)
        for (int64_t c0 = 0; c0 < cf; c0 += 16)
            tr16(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd);
    if (cf < cols) pl_spmm_transpose_ref(src + cf, rows, cols - cf, lds, dst + cf * ldd, ldd);
    if (rf < rows) pl_spmm_transpose_ref(src + rf * lds, rows - rf, cf, lds, dst + rf, ldd);
}

static void gemv_avx512(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *x, int64_t incx,
                        float *y) {
    if (incx != 1) {
        pl_spmm_gemv_ref(w, m0, m1, x, incx, y);
        return;
    }
    for (int64_t m = m0; m < m1; m++) {
        const int64_t p1 = w->row_ptr[m + 1];
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int64_t p = w->row_ptr[m];
        for (; p + 32 <= p1; p += 32) {
            const __m512i i0 = _mm512_loadu_si512(w->idx + p),
                          i1 = _mm512_loadu_si512(w->idx + p + 16);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w->val + p), _mm512_i32gather_ps(i0, x, 4), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w->val + p + 16), _mm512_i32gather_ps(i1, x, 4),
                                 a1);
        }
        for (; p < p1; p += 16) {
            const __mmask16 k =
                p1 - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (p1 - p)) - 1u);
            const __m512i i0 = _mm512_maskz_loadu_epi32(k, w->idx + p);
            const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, i0, x, 4);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, w->val + p), g, a0);
        }
        y[m - m0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

pl_spmm_transpose_fn pl_spmm_transpose_avx512(void) {
    return transpose_avx512;
}
pl_spmm_gemv_fn pl_spmm_gemv_avx512(void) {
    return gemv_avx512;
}

#else
pl_spmm_transpose_fn pl_spmm_transpose_avx512(void) {
    return 0;
}
pl_spmm_gemv_fn pl_spmm_gemv_avx512(void) {
    return 0;
}
#endif
