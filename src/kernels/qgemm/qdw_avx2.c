/* qdw_avx2.c -- the depthwise INT8 kernel (qdw_rows.inc) compiled for AVX2. */
#include <immintrin.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"

#define QDW_FN pl_q8_dw_raw_avx2
#define QDW_COPY_S2(src, n, dst) pl_q8_copy_s2_avx2((src), (n), (dst), 0)
/* 16 sums of nine u8 x int32 products, two vectors of 8 */
static inline void qdw_mac9(const uint8_t *const t[9], const int32_t wv[9], int64_t i, int32_t *af) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (int k = 0; k < 9; k++) {
        const __m128i x = _mm_loadu_si128((const __m128i *)(t[k] + i));
        const __m256i w = _mm256_set1_epi32(wv[k]);
        a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(x), w));
        a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(x, 8)), w));
    }
    _mm256_storeu_si256((__m256i *)(af + i), a0);
    _mm256_storeu_si256((__m256i *)(af + i + 8), a1);
}
#define QDW_MAC9 qdw_mac9
#include "kernels/qgemm/qdw_rows.inc"
