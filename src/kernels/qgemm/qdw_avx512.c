/* qdw_avx512.c -- the depthwise INT8 kernel (qdw_rows.inc) compiled for AVX-512. */
#include <immintrin.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"

#define QDW_FN pl_q8_dw_raw_avx512
#define QDW_COPY_S2(src, n, dst) pl_q8_copy_s2_avx512((src), (n), (dst), 0)
/* 16 sums of nine u8 x int32 products (explicit: the compiler picks 128-bit vectors for
 * a loop of 16) */
static inline void qdw_mac9(const uint8_t *const t[9], const int32_t wv[9], int64_t i, int32_t *af) {
    __m512i a = _mm512_setzero_si512();
    for (int k = 0; k < 9; k++)
        a = _mm512_add_epi32(a, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(t[k] + i))),
                                                   _mm512_set1_epi32(wv[k])));
    _mm512_storeu_si512(af + i, a);
}
#define QDW_MAC9 qdw_mac9
#include "kernels/qgemm/qdw_rows.inc"
