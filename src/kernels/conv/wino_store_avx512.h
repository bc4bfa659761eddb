/* wino_store_avx512.h -- the last step of both AVX-512 Winograd output transforms
 * (F(4x4,3x3) in conv_avx512.c, the stride-2 F(4x4,2x2) in conv_winograd_s2_avx512.c):
 * row a of 16 tiles' 4x4 outputs (o[b] = column b of that row for tiles 0..15, bias
 * already added) is interleaved so that each tile's 4 outputs are adjacent, then the
 * residual is added, the result clamped and stored, segment by segment (a segment is a
 * run of tiles of one output tile row; its last tile may have fewer than 4 columns).
 * Include only from files compiled with AVX-512 flags. */
#ifndef PILLAR_WINO_STORE_AVX512_H
#define PILLAR_WINO_STORE_AVX512_H

#include "kernels/conv/conv_plan.h"
#include <immintrin.h>

static inline __attribute__((always_inline)) void
wino_store_row_avx512(const __m512 o[4], int a, const cf_wseg *seg, int nseg, const float *res, float *y,
                      int64_t OW, __m512 vlo, __m512 vhi) {
    /* interleave: row a of tile l is floats 4l..4l+3 of q[0..3] */
    const __m512 a01l = _mm512_unpacklo_ps(o[0], o[1]), a23l = _mm512_unpacklo_ps(o[2], o[3]);
    const __m512 a01h = _mm512_unpackhi_ps(o[0], o[1]), a23h = _mm512_unpackhi_ps(o[2], o[3]);
    const __m512 r0 = _mm512_shuffle_ps(a01l, a23l, 0x44), r1 = _mm512_shuffle_ps(a01l, a23l, 0xee);
    const __m512 r2 = _mm512_shuffle_ps(a01h, a23h, 0x44), r3 = _mm512_shuffle_ps(a01h, a23h, 0xee);
    const __m512 s0 = _mm512_shuffle_f32x4(r0, r1, 0x44), s1 = _mm512_shuffle_f32x4(r2, r3, 0x44);
    const __m512 s2 = _mm512_shuffle_f32x4(r0, r1, 0xee), s3 = _mm512_shuffle_f32x4(r2, r3, 0xee);
    __m512 q[4];
    q[0] = _mm512_shuffle_f32x4(s0, s1, 0x88);
    q[1] = _mm512_shuffle_f32x4(s0, s1, 0xdd);
    q[2] = _mm512_shuffle_f32x4(s2, s3, 0x88);
    q[3] = _mm512_shuffle_f32x4(s2, s3, 0xdd);
    for (int s = 0; s < nseg; s++) {
        if (a >= seg[s].rows) continue;
        const int f0 = 4 * seg[s].lane, f1 = 4 * (seg[s].lane + seg[s].len) - (4 - seg[s].last_cols);
        float *yr = y + seg[s].out + a * OW - f0;
        const float *rr = res ? res + seg[s].out + a * OW - f0 : NULL;
        for (int qi = f0 / 16; qi * 16 < f1; qi++) {
            const int lo_f = f0 > qi * 16 ? f0 - qi * 16 : 0;
            const int hi_f = f1 < qi * 16 + 16 ? f1 - qi * 16 : 16;
            const __mmask16 mm = (__mmask16)(((1u << hi_f) - 1u) & ~((1u << lo_f) - 1u));
            __m512 v = q[qi];
            if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mm, rr + qi * 16));
            v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
            _mm512_mask_storeu_ps(yr + qi * 16, mm, v);
        }
    }
}

#endif
