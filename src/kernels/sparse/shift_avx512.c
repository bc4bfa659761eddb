/* shift_avx512.c -- AVX-512 kernel of the shifted-tap sparse form (sparse.h): per chunk of
 * input rows (whose B rows then stay in L1) and output row, V accumulators summed over the
 * row's shift-2, shift-1 and shift-0 nonzeros with aligned loads, shifted down one column
 * (valignd) between groups, added to the partial sums of the earlier chunks. */
#include "kernels/sparse/sparse.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m512 down1(__m512 lo, __m512 hi) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), 1));
}

/* One chunk of one row: V vectors, the last loaded under `last` (columns < n + 2). */
static ALWAYS_INLINE void shift_row(const int V, const int G0, const float *val, const int32_t *off,
                                    const int32_t *g, const float *B, float *y, __mmask16 last,
                                    bool first) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < V; i++) acc[i] = _mm512_setzero_ps();
    for (int grp = G0; grp < 3; grp++) {
        if (grp > G0) {
#pragma GCC unroll 16
            for (int i = 0; i < V - 1; i++) acc[i] = down1(acc[i], acc[i + 1]);
            acc[V - 1] = down1(acc[V - 1], _mm512_setzero_ps());
        }
        for (int32_t p = g[grp]; p < g[grp + 1]; p++) {
            const float *b = B + off[p];
            const __m512 v = _mm512_set1_ps(val[p]);
#pragma GCC unroll 16
            for (int i = 0; i < V - 1; i++) acc[i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(b + 16 * i), acc[i]);
            acc[V - 1] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(last, b + 16 * (V - 1)), acc[V - 1]);
        }
    }
    if (!first)
#pragma GCC unroll 16
        for (int i = 0; i < V; i++) acc[i] = _mm512_add_ps(acc[i], _mm512_loadu_ps(y + 16 * i));
#pragma GCC unroll 16
    for (int i = 0; i < V; i++) _mm512_storeu_ps(y + 16 * i, acc[i]);
}

/* G0 = 3 - s->nsh: the first shift group (2 for the chunk form: shift 0 only). */
static ALWAYS_INLINE void shift_all(const int V, const int G0, const pl_sparse_shift *s, int64_t m0,
                                    int64_t m1, const float *B, float *Y, int64_t ldy, __mmask16 last) {
    for (int64_t ch = 0; ch < s->nchunks; ch++)
        for (int64_t m = m0; m < m1; m++) {
            const int32_t *g = s->gs + (ch * s->M + m) * 4;
            if (ch > 0 && g[0] == g[3]) continue;
            shift_row(V, G0, s->val, s->off, g, B, Y + (m - m0) * ldy, last, ch == 0);
        }
}

#define SHIFT_FN(V)                                                                                \
    static void shift_v##V(const pl_sparse_shift *s, int64_t m0, int64_t m1, const float *B,       \
                           float *Y, int64_t ldy, __mmask16 last) {                                \
        if (s->nsh == 1) shift_all(V, 2, s, m0, m1, B, Y, ldy, last);                              \
        else shift_all(V, 0, s, m0, m1, B, Y, ldy, last);                                          \
    }
SHIFT_FN(1) SHIFT_FN(2) SHIFT_FN(3) SHIFT_FN(4) SHIFT_FN(5) SHIFT_FN(6) SHIFT_FN(7) SHIFT_FN(8)
SHIFT_FN(9) SHIFT_FN(10) SHIFT_FN(11) SHIFT_FN(12) SHIFT_FN(13) SHIFT_FN(14) SHIFT_FN(15) SHIFT_FN(16)

typedef void (*shift_v_fn)(const pl_sparse_shift *, int64_t, int64_t, const float *, float *,
                           int64_t, __mmask16);

static void shift_mm_avx512(const pl_sparse_shift *s, int64_t m0, int64_t m1, const float *B,
                            int64_t n, float *Y, int64_t ldy) {
    static const shift_v_fn fns[16] = {shift_v1,  shift_v2,  shift_v3,  shift_v4,
                                       shift_v5,  shift_v6,  shift_v7,  shift_v8,
                                       shift_v9,  shift_v10, shift_v11, shift_v12,
                                       shift_v13, shift_v14, shift_v15, shift_v16};
    const int64_t nr = n + s->nsh - 1; /* columns read */
    const int64_t V = (nr + 15) / 16;
    if (V < 1 || V > 16) return; /* n <= 254 (chunk form 256): the caller's contract */
    const int64_t r = nr - 16 * (V - 1); /* columns of the last vector read, 1..16 */
    const __mmask16 last = (__mmask16)(r >= 16 ? 0xffffu : (1u << r) - 1u);
    fns[V - 1](s, m0, m1, B, Y, ldy, last);
}

pl_sparse_shift_fn pl_sparse_shift_mm_avx512(void) { return shift_mm_avx512; }

#else
pl_sparse_shift_fn pl_sparse_shift_mm_avx512(void) { return NULL; }
#endif
