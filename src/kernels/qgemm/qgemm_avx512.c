/* qgemm_avx512.c -- the AVX-512 VNNI level of the INT8 GEMM engine: vpdpbusd (u8 x s8,
 * four products summed into each int32 lane, exact) on 12 x 32 tiles (24 accumulators,
 * the weights broadcast four at a time), sparse rows of up to 128 columns, and the
 * vectorised epilogue (bit-identical to ref.c: same float operations). */
#include <immintrin.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"

#define MR 12

/* c += dot4(a u8, b s8) in place: GCC's register allocation of the intrinsic's
 * non-destructive form adds a move (and spills) per product in the 24-accumulator tile. */
#define DPBUSD(c, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b))

static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static void tile_vnni(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                      int32_t *acc) {
    const int64_t G = pw->Kp / 4;
    const int8_t *w = (const int8_t *)pw->data + mt * G * MR * 4;
    const uint8_t *a = (const uint8_t *)panel + p0 * 4;
    /* named accumulators (not an array) so that they stay in registers */
#define DECL(r) __m512i c##r##0 = _mm512_setzero_si512(), c##r##1 = _mm512_setzero_si512()
    DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5);
    DECL(6); DECL(7); DECL(8); DECL(9); DECL(10); DECL(11);
#undef DECL
    for (int64_t g = 0; g < G; g++) {
        const __m512i a0 = _mm512_loadu_si512(a + g * Pp * 4);
        const __m512i a1 = _mm512_loadu_si512(a + g * Pp * 4 + 64);
        const int8_t *wg = w + g * MR * 4;
#define ROW(r)                                                                                     \
    do {                                                                                           \
        const __m512i b = bcast4(wg + 4 * (r));                                                    \
        DPBUSD(c##r##0, a0, b);                                                                    \
        DPBUSD(c##r##1, a1, b);                                                                    \
    } while (0)
        ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5);
        ROW(6); ROW(7); ROW(8); ROW(9); ROW(10); ROW(11);
#undef ROW
    }
#define PUT(r)                                                                                     \
    do {                                                                                           \
        _mm512_store_si512(acc + (r) * 32, c##r##0);                                               \
        _mm512_store_si512(acc + (r) * 32 + 16, c##r##1);                                          \
    } while (0)
    PUT(0); PUT(1); PUT(2); PUT(3); PUT(4); PUT(5);
    PUT(6); PUT(7); PUT(8); PUT(9); PUT(10); PUT(11);
#undef PUT
}

/* One sparse row over NB chunks of 32 columns: per non-zero group, one broadcast and
 * 2 * NB vpdpbusd. */
static inline __attribute__((always_inline)) void srow_n(const pl_q8_w *pw, int64_t m,
                                                         const uint8_t *a, int64_t Pp, int NB,
                                                         int32_t *acc) {
    __m512i c[8];
    for (int i = 0; i < 2 * NB; i++) c[i] = _mm512_setzero_si512();
    const int32_t *idx = pw->idx;
    const int8_t *v = pw->vals;
    for (int64_t q = pw->ptr[m]; q < pw->ptr[m + 1]; q++) {
        const uint8_t *ag = a + (int64_t)idx[q] * Pp * 4;
        const __m512i b = bcast4(v + q * 4);
        for (int i = 0; i < 2 * NB; i++)
            c[i] = _mm512_dpbusd_epi32(c[i], _mm512_loadu_si512(ag + 64 * i), b);
    }
    for (int i = 0; i < 2 * NB; i++) _mm512_store_si512(acc + 16 * i, c[i]);
}

static void srow_vnni(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp, int64_t p0, int nb,
                      int32_t *acc) {
    const uint8_t *a = (const uint8_t *)panel + p0 * 4;
    switch (nb) {
    case 1: srow_n(pw, m, a, Pp, 1, acc); break;
    case 2: srow_n(pw, m, a, Pp, 2, acc); break;
    case 3: srow_n(pw, m, a, Pp, 3, acc); break;
    default: srow_n(pw, m, a, Pp, 4, acc); break;
    }
}

static void epi_vnni(const pl_q8_w *pw, int64_t m, const int32_t *acc, const int32_t *asum,
                     int32_t za, int64_t p0, int64_t n, const pl_q8_epilogue *e, void *out,
                     int64_t ldm, int64_t ldp) {
    if (ldp != 1) {
        pl_q8_epi_scalar(pw, m, acc, asum, za, p0, n, e, out, ldm, ldp);
        return;
    }
    const int32_t zw = pw->any_zw ? pw->zw[m] : 0;
    uint32_t off = 0u - (uint32_t)za * (uint32_t)pw->rowsum[m];
    if (zw) off += (uint32_t)zw * (uint32_t)za * (uint32_t)pw->K;
    if (e->bias_i32) off += (uint32_t)e->bias_i32[m];
    const __m512i voff = _mm512_set1_epi32((int32_t)off), vzw = _mm512_set1_epi32(zw);
    const int64_t at0 = m * ldm + p0;
    float lo = e->lo, hi = e->hi;
    if (e->out == PL_Q8_OUT_U8 || e->out == PL_Q8_OUT_S8) {
        const float qlo = (e->out == PL_Q8_OUT_U8 ? 0.0f : -128.0f) - (float)e->zp;
        const float qhi = (e->out == PL_Q8_OUT_U8 ? 255.0f : 127.0f) - (float)e->zp;
        lo = lo > qlo ? lo : qlo;
        hi = hi < qhi ? hi : qhi;
    }
    const __m512 vs = _mm512_set1_ps(e->out == PL_Q8_OUT_I32 ? 0.0f : e->scale[m]);
    const __m512 vb = _mm512_set1_ps(e->fbias ? e->fbias[m] : 0.0f);
    const __m512 vr = _mm512_set1_ps(e->rscale), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512i vzp = _mm512_set1_epi32(e->zp);
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + j), voff);
        if (zw) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(vzw, _mm512_loadu_si512(asum + p0 + j)));
        if (e->out == PL_Q8_OUT_I32) {
            _mm512_mask_storeu_epi32((int32_t *)out + at0 + j, k, v);
            continue;
        }
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), vs, vb);
        if (e->res) y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, e->res + at0 + j), vr, y);
        y = _mm512_min_ps(_mm512_max_ps(y, vlo), vhi);
        if (e->out == PL_Q8_OUT_F32) {
            _mm512_mask_storeu_ps((float *)out + at0 + j, k, y);
            continue;
        }
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(y), vzp);
        if (e->out == PL_Q8_OUT_U8) _mm512_mask_cvtusepi32_storeu_epi8((uint8_t *)out + at0 + j, k, q);
        else _mm512_mask_cvtsepi32_storeu_epi8((int8_t *)out + at0 + j, k, q);
    }
}

static const pl_q8_impl impl = {PL_Q8_VNNI, MR, tile_vnni, srow_vnni, epi_vnni};

const pl_q8_impl *pl_q8_impl_vnni(void) { return &impl; }

void pl_q8_add_u8_avx512(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p) {
    const __m512 ra = _mm512_set1_ps(p->ra), rb = _mm512_set1_ps(p->rb), fx = _mm512_set1_ps(p->fixed);
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 af = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, a + i)));
        const __m512 bf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, b + i)));
        __m512 v = _mm512_fmadd_ps(af, ra, _mm512_fmadd_ps(bf, rb, fx));
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm512_mask_cvtusepi32_storeu_epi8(y + i, k, _mm512_cvtps_epi32(v));
    }
}

void pl_q8_interleave4_avx512(const uint8_t *const r[4], int64_t n, uint8_t *d) {
    int64_t p = 0;
    for (; p + 64 <= n; p += 64) {
        /* the same unpacks per 128-bit lane, then a 4x4 transpose of the lanes */
        const __m512i x0 = _mm512_loadu_si512(r[0] + p), x1 = _mm512_loadu_si512(r[1] + p);
        const __m512i x2 = _mm512_loadu_si512(r[2] + p), x3 = _mm512_loadu_si512(r[3] + p);
        const __m512i l01 = _mm512_unpacklo_epi8(x0, x1), h01 = _mm512_unpackhi_epi8(x0, x1);
        const __m512i l23 = _mm512_unpacklo_epi8(x2, x3), h23 = _mm512_unpackhi_epi8(x2, x3);
        const __m512i q0 = _mm512_unpacklo_epi16(l01, l23), q1 = _mm512_unpackhi_epi16(l01, l23);
        const __m512i q2 = _mm512_unpacklo_epi16(h01, h23), q3 = _mm512_unpackhi_epi16(h01, h23);
        const __m512i t0 = _mm512_shuffle_i64x2(q0, q1, 0x44), t1 = _mm512_shuffle_i64x2(q2, q3, 0x44);
        const __m512i t2 = _mm512_shuffle_i64x2(q0, q1, 0xEE), t3 = _mm512_shuffle_i64x2(q2, q3, 0xEE);
        _mm512_storeu_si512(d + 4 * p, _mm512_shuffle_i64x2(t0, t1, 0x88));
        _mm512_storeu_si512(d + 4 * p + 64, _mm512_shuffle_i64x2(t0, t1, 0xDD));
        _mm512_storeu_si512(d + 4 * p + 128, _mm512_shuffle_i64x2(t2, t3, 0x88));
        _mm512_storeu_si512(d + 4 * p + 192, _mm512_shuffle_i64x2(t2, t3, 0xDD));
    }
    for (; p + 16 <= n; p += 16) {
        const __m128i x0 = _mm_loadu_si128((const __m128i *)(r[0] + p));
        const __m128i x1 = _mm_loadu_si128((const __m128i *)(r[1] + p));
        const __m128i x2 = _mm_loadu_si128((const __m128i *)(r[2] + p));
        const __m128i x3 = _mm_loadu_si128((const __m128i *)(r[3] + p));
        const __m128i l01 = _mm_unpacklo_epi8(x0, x1), h01 = _mm_unpackhi_epi8(x0, x1);
        const __m128i l23 = _mm_unpacklo_epi8(x2, x3), h23 = _mm_unpackhi_epi8(x2, x3);
        _mm_storeu_si128((__m128i *)(d + 4 * p), _mm_unpacklo_epi16(l01, l23));
        _mm_storeu_si128((__m128i *)(d + 4 * p + 16), _mm_unpackhi_epi16(l01, l23));
        _mm_storeu_si128((__m128i *)(d + 4 * p + 32), _mm_unpacklo_epi16(h01, h23));
        _mm_storeu_si128((__m128i *)(d + 4 * p + 48), _mm_unpackhi_epi16(h01, h23));
    }
    for (; p < n; p++)
        for (int t = 0; t < 4; t++) d[4 * p + t] = r[t][p];
}
