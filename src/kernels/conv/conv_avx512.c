/* conv_avx512.c -- AVX-512 inner kernels of the fast convolutions: the 14x32 implicit-GEMM
 * micro-kernels (28 zmm accumulators), B sliver packing from prepared input rows, and
 * the direct plane kernels (depthwise convolution, max and average pooling) that keep
 * four output vectors in flight so the FMA/max latency is hidden. */
#include "kernels/conv/conv_isa.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#include "kernels/conv/wino_store_avx512.h"

#define MR 14
#define NR 32
#define AI inline __attribute__((always_inline))


static AI __mmask16 lo_mask(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* k steps before the end of the last K block at which a tile's residual lines are
 * prefetched (~1000 cycles of FMAs: enough to hide a miss to L3 or DRAM; 24-64
 * measured alike on ResNet-50's layer-1 1x1 convolutions at batch 16, where the
 * prefetch takes 25 -> 19 ms with the streamed output; fetching the output lines as
 * well measured no faster). */
#define UK_PF 40

static AI void uk_prefetch_res(const int R, const int V, const cf_tile_epi *e) {
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) {
        _mm_prefetch((const char *)(e->res + i * e->ldr), _MM_HINT_T0);
        if (V == 2) _mm_prefetch((const char *)(e->res + i * e->ldr + 16), _MM_HINT_T0);
    }
}

/* R rows x V vectors of 16 columns. */
static AI void uk_body(const int R, const int V, int64_t kc, const float *a, const float *b,
                       int64_t ldb, float *c, int64_t ldc, int nr, int accumulate,
                       const cf_tile_epi *e) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) {
        c0[i] = _mm512_setzero_ps();
        c1[i] = _mm512_setzero_ps();
    }
    const __mmask16 m0 = lo_mask(nr), m1 = lo_mask(nr - 16);
    if (ldb == NR || nr == NR) {
        /* With a residual, its lines for this tile are fetched UK_PF steps before the
         * end, so the epilogue does not wait on memory (a block's input is long out of
         * L1/L2 when its last convolution adds it). */
        const bool pf = e && e->res;
        int64_t kpf = pf ? (kc > UK_PF ? kc - UK_PF : 0) : kc;
        for (int pass = 0; pass < 2; pass++) {
#pragma GCC unroll 2
            for (int64_t k = 0; k < kpf; k++) {
                const __m512 b0 = _mm512_loadu_ps(b);
                const __m512 b1 = V == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 14
                for (int i = 0; i < R; i++) {
                    const __m512 ai = _mm512_set1_ps(a[i]);
                    c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
                    if (V == 2) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
                }
                a += MR;
                b += ldb;
            }
            if (pass == 1 || !pf) break;
            uk_prefetch_res(R, V, e);
            kpf = kc - kpf;
        }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
            const __m512 b1 = V == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
#pragma GCC unroll 14
            for (int i = 0; i < R; i++) {
                const __m512 ai = _mm512_set1_ps(a[i]);
                c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
                if (V == 2) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
            }
            a += MR;
            b += ldb;
        }
    }
    if (e) {
        const __m512 lo = _mm512_set1_ps(e->lo), hi = _mm512_set1_ps(e->hi);
        /* non-temporal only for whole 32-float rows on cache-line boundaries */
        const bool nt = V == 2 && e->stream && nr == NR && ((uintptr_t)c & 63) == 0 && (ldc & 15) == 0;
#pragma GCC unroll 14
        for (int i = 0; i < R; i++) {
            float *ci = c + i * ldc;
            if (accumulate) {
                c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
                if (V == 2) c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
            }
            if (e->bias) {
                const __m512 bi = _mm512_set1_ps(e->bias[i]);
                c0[i] = _mm512_add_ps(c0[i], bi);
                if (V == 2) c1[i] = _mm512_add_ps(c1[i], bi);
            }
            if (e->res) {
                const float *ri = e->res + i * e->ldr;
                c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ri));
                if (V == 2) c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ri + 16));
            }
            if (nt) {
                _mm512_stream_ps(ci, _mm512_min_ps(hi, _mm512_max_ps(lo, c0[i])));
                _mm512_stream_ps(ci + 16, _mm512_min_ps(hi, _mm512_max_ps(lo, c1[i])));
                continue;
            }
            _mm512_mask_storeu_ps(ci, m0, _mm512_min_ps(hi, _mm512_max_ps(lo, c0[i])));
            if (V == 2) _mm512_mask_storeu_ps(ci + 16, m1, _mm512_min_ps(hi, _mm512_max_ps(lo, c1[i])));
        }
        if (nt) _mm_sfence();
        return;
    }
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
            if (V == 2) c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, c0[i]);
        if (V == 2) _mm512_mask_storeu_ps(ci + 16, m1, c1[i]);
    }
}

#define UK(R, V)                                                                           \
    static void uk_##R##x##V(int64_t kc, const float *a, const float *b, int64_t ldb,      \
                             float *c, int64_t ldc, int nr, int accumulate,                \
                             const cf_tile_epi *e) {                                       \
        uk_body(R, V, kc, a, b, ldb, c, ldc, nr, accumulate, e);                           \
    }
#define UK2(R) UK(R, 1) UK(R, 2)
UK2(1) UK2(2) UK2(3) UK2(4) UK2(5) UK2(6) UK2(7) UK2(8) UK2(9) UK2(10) UK2(11) UK2(12)
UK2(13) UK2(14)
#define UKP(R) {uk_##R##x1, uk_##R##x2}

static void pack_b_avx512(const float *src, const int64_t *koff, int64_t kc, int nsv,
                          const cf_bseg *seg, const int *first, float *dst, int ld,
                          int64_t sstride) {
    const __mmask16 mst = lo_mask(ld);
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + koff[k];
        if (k + 1 < kc) {
            const char *nx = (const char *)(src + koff[k + 1] + seg[0].off);
            _mm_prefetch(nx, _MM_HINT_T0);
            _mm_prefetch(nx + 64, _MM_HINT_T0);
            _mm_prefetch(nx + 128, _MM_HINT_T0);
            _mm_prefetch(nx + 192, _MM_HINT_T0);
        }
        float *d = dst + k * ld;
        for (int v = 0; v < nsv; v++, d += sstride) {
            const cf_bseg *a = seg + first[v];
            const int n = first[v + 1] - first[v];
            if (ld == NR && n == 2 && a[0].mask == 0xffff && a[1].mask == 0xffff) { /* 2 x 16 */
                _mm512_storeu_ps(d, _mm512_loadu_ps(s + a[0].base));
                _mm512_storeu_ps(d + 16, _mm512_loadu_ps(s + a[1].base));
                continue;
            }
            /* two named registers, not an array indexed at run time (that would go
             * through memory) */
            __m512 w0 = _mm512_setzero_ps(), w1 = _mm512_setzero_ps();
            for (int i = 0; i < n; i++) {
                if (a[i].vec == 0) w0 = _mm512_mask_loadu_ps(w0, (__mmask16)a[i].mask, s + a[i].base);
                else w1 = _mm512_mask_loadu_ps(w1, (__mmask16)a[i].mask, s + a[i].base);
            }
            if (ld == NR) {
                _mm512_storeu_ps(d, w0);
                _mm512_storeu_ps(d + 16, w1);
            } else {
                _mm512_mask_storeu_ps(d, mst, w0);
            }
        }
    }
}

/* In-register transpose of 16 rows of 16: r[k] becomes column k. */
static AI void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    /* r[4q + c] holds, per 128-bit block b, element c of rows 4b'.. of quad q; now
     * gather the blocks */
    for (int i = 0; i < 8; i++) {
        const int j = (i / 4) * 8 + (i % 4);
        t[2 * i] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0x88);
        t[2 * i + 1] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_f32x4(t[2 * i + 1], t[2 * i + 9], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[2 * i + 1], t[2 * i + 9], 0xdd);
    }
}

static void store_t_avx512(const float *t, int ldt, int mr, int nr, float *y, int64_t ldy,
                           const float *bias, const float *res, float lo, float hi) {
    const __mmask16 mi = lo_mask(mr);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int j0 = 0; j0 < nr; j0 += 16) {
        __m512 r[16];
        const __mmask16 mj = lo_mask(nr - j0);
        for (int i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_maskz_loadu_ps(mj, t + i * ldt + j0) : _mm512_setzero_ps();
        transpose16(r);
        for (int j = 0; j < 16 && j0 + j < nr; j++) {
            __m512 v = r[j];
            float *yj = y + (int64_t)(j0 + j) * ldy;
            if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[j0 + j]));
            if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mi, res + (int64_t)(j0 + j) * ldy));
            _mm512_mask_storeu_ps(yj, mi, _mm512_min_ps(vhi, _mm512_max_ps(vlo, v)));
        }
    }
}

/* ---- direct plane kernels ----
 * The plane's output vectors (row oy, columns 16j..16j+15) are numbered and handled
 * four at a time, so short rows (7, 14 columns) still keep four chains in flight. */

#define LANES 16
#define BLK 4

typedef struct vec_item {
    const float *x; /* input at the item's first column (tap offsets are added) */
    float *y;
    __mmask16 m;
} vec_item;

static AI int items_at(int64_t first, int64_t count, int64_t nch, int64_t OW, int64_t ldx,
                       const float *x, float *y, vec_item *it) {
    int n = 0;
    for (int64_t q = first; q < first + count && n < BLK; q++, n++) {
        int64_t oy = q / nch, ox = (q % nch) * LANES;
        it[n].x = x + oy * ldx + ox;
        it[n].y = y + oy * OW + ox;
        it[n].m = lo_mask((int)(OW - ox < LANES ? OW - ox : LANES));
    }
    return n;
}

static void dw_plane_avx512(const float *x, const int64_t *tap_off, const float *w, int ntaps,
                            float bias, int64_t OH, int64_t OW, int64_t ldx, float *y) {
    const int64_t nch = (OW + LANES - 1) / LANES, total = OH * nch;
    const __m512 vb = _mm512_set1_ps(bias);
    for (int64_t q = 0; q < total; q += BLK) {
        vec_item it[BLK] = {{0}};
        int n = items_at(q, total - q, nch, OW, ldx, x, y, it);
        if (n == BLK) {
            __m512 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
            for (int t = 0; t < ntaps; t++) {
                const __m512 wt = _mm512_set1_ps(w[t]);
                const int64_t o = tap_off[t];
                a0 = _mm512_fmadd_ps(wt, _mm512_maskz_loadu_ps(it[0].m, it[0].x + o), a0);
                a1 = _mm512_fmadd_ps(wt, _mm512_maskz_loadu_ps(it[1].m, it[1].x + o), a1);
                a2 = _mm512_fmadd_ps(wt, _mm512_maskz_loadu_ps(it[2].m, it[2].x + o), a2);
                a3 = _mm512_fmadd_ps(wt, _mm512_maskz_loadu_ps(it[3].m, it[3].x + o), a3);
            }
            _mm512_mask_storeu_ps(it[0].y, it[0].m, a0);
            _mm512_mask_storeu_ps(it[1].y, it[1].m, a1);
            _mm512_mask_storeu_ps(it[2].y, it[2].m, a2);
            _mm512_mask_storeu_ps(it[3].y, it[3].m, a3);
        } else {
            for (int j = 0; j < n; j++) {
                __m512 acc = vb;
                for (int t = 0; t < ntaps; t++)
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(w[t]),
                                          _mm512_maskz_loadu_ps(it[j].m, it[j].x + tap_off[t]), acc);
                _mm512_mask_storeu_ps(it[j].y, it[j].m, acc);
            }
        }
    }
}

static void max_plane_avx512(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                             int64_t OW, int64_t ldx, float *y) {
    const int64_t nch = (OW + LANES - 1) / LANES, total = OH * nch;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t q = 0; q < total; q += BLK) {
        vec_item it[BLK] = {{0}};
        int n = items_at(q, total - q, nch, OW, ldx, x, y, it);
        __m512 a[BLK] = {ninf, ninf, ninf, ninf};
        for (int t = 0; t < ntaps; t++) {
            const int64_t o = tap_off[t];
            /* max(v, a): a NaN input is skipped, as v > a is false */
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++)
                if (j < n) a[j] = _mm512_max_ps(_mm512_maskz_loadu_ps(it[j].m, it[j].x + o), a[j]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < BLK; j++)
            if (j < n) _mm512_mask_storeu_ps(it[j].y, it[j].m, a[j]);
    }
}

/* Lanes l of a vector starting at input column c with 0 <= c + l < W. */
static AI __mmask16 col_mask(int64_t c, int64_t W) {
    const int64_t lo = c < 0 ? -c : 0, hi = W - c;
    if (lo >= 16 || hi <= lo) return 0;
    return (__mmask16)(lo_mask((int)(hi > 16 ? 16 : hi)) & ~lo_mask((int)lo));
}

/* 3x3 stride-2 max pooling (ResNet's stem pool) straight from the input: for 16 outputs
 * of a row, the 33 input columns their windows cover are maxed over the (up to) three
 * input rows, then the three column taps 2 ox, 2 ox + 1, 2 ox + 2 are picked by permutes.
 * Columns and rows outside the plane are skipped (masked loads of -inf), so no padded,
 * phase-split copy of the plane is written and read back. */
static void max3s2_plane_avx512(const float *x, int64_t H, int64_t W, int64_t PT, int64_t PL,
                                int64_t OH, int64_t OW, float *y) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i e2 = _mm512_setr_epi32(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0);
    for (int64_t oy = 0; oy < OH; oy++) {
        uintptr_t r[3];
        int nr = 0;
        for (int t = 0; t < 3; t++) {
            const int64_t iy = oy * 2 - PT + t;
            if (iy >= 0 && iy < H) r[nr++] = (uintptr_t)(x + iy * W);
        }
        float *yr = y + oy * OW;
        for (int64_t ox0 = 0; ox0 < OW; ox0 += 16) {
            const int64_t c = 2 * ox0 - PL; /* first column of lane 0's window */
            const __mmask16 m0 = col_mask(c, W), m1 = col_mask(c + 16, W),
                            m2 = (__mmask16)(col_mask(c + 32, W) & 1u);
            __m512 a = ninf, b = ninf, e = ninf;
            for (int i = 0; i < nr; i++) {
                /* masked lanes are not read, so columns before the row are safe */
                const float *p = (const float *)(r[i] + (uintptr_t)(c * (int64_t)sizeof(float)));
                a = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m0, p), a);
                b = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m1, p + 16), b);
                e = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m2, p + 32), e);
            }
            const __m512 t0 = _mm512_permutex2var_ps(a, ev, b), t1 = _mm512_permutex2var_ps(a, od, b);
            __m512 t2 = _mm512_permutex2var_ps(a, e2, b);
            t2 = _mm512_mask_permutexvar_ps(t2, (__mmask16)0x8000, _mm512_setzero_si512(), e);
            _mm512_mask_storeu_ps(yr + ox0, lo_mask((int)(OW - ox0 < 16 ? OW - ox0 : 16)),
                                  _mm512_max_ps(t2, _mm512_max_ps(t1, t0)));
        }
    }
}

static void avg_plane_avx512(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                             int64_t OW, int64_t ldx, const float *scale_y,
                             const float *scale_x, float *y) {
    const int64_t nch = (OW + LANES - 1) / LANES, total = OH * nch;
    for (int64_t q = 0; q < total; q += BLK) {
        vec_item it[BLK] = {{0}};
        int n = items_at(q, total - q, nch, OW, ldx, x, y, it);
        __m512 a[BLK] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (int t = 0; t < ntaps; t++) {
            const int64_t o = tap_off[t];
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++)
                if (j < n) a[j] = _mm512_add_ps(a[j], _mm512_maskz_loadu_ps(it[j].m, it[j].x + o));
        }
        for (int j = 0; j < n; j++) {
            int64_t qq = q + j, oy = qq / nch, ox = (qq % nch) * LANES;
            __m512 s = _mm512_mul_ps(_mm512_set1_ps(scale_y[oy]),
                                     _mm512_maskz_loadu_ps(it[j].m, scale_x + ox));
            _mm512_mask_storeu_ps(it[j].y, it[j].m, _mm512_mul_ps(a[j], s));
        }
    }
}

/* Direct depthwise convolution (strides 1 and 2): output vectors (oy, chunk) are taken
 * four at a time in row-major order, so narrow planes (7 or 14 columns) still keep four
 * FMA chains in flight. Stride 2 loads 32 floats and keeps the even ones. */
static AI void dw_direct_body(const int S, const cf_dw_geom *g, const float *x, const float *w,
                              float bias, float *y) {
    const int64_t KH = g->KH, KW = g->KW, OW = g->OW, nch = g->nch, total = g->OH * nch;
    const __m512 vb = _mm512_set1_ps(bias), lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int64_t oy = 0, ch = 0; /* position of item q */
    for (int64_t q = 0; q < total; q += BLK) {
        const int n = total - q < BLK ? (int)(total - q) : BLK;
        int64_t iy0[BLK] = {0}, cj[BLK] = {0};
        float *yj[BLK] = {0};
        __mmask16 sm[BLK];
        for (int j = 0; j < BLK; j++) {
            if (j < n) {
                iy0[j] = oy * g->SH - g->PT;
                cj[j] = ch;
                yj[j] = y + oy * OW + ch * LANES;
                sm[j] = lo_mask((int)(OW - ch * LANES));
                if (++ch == nch) {
                    ch = 0;
                    oy++;
                }
            } else {
                iy0[j] = iy0[0];
                cj[j] = cj[0];
                yj[j] = yj[0];
                sm[j] = 0;
            }
        }
        __m512 a[BLK] = {vb, vb, vb, vb};
        for (int64_t ky = 0; ky < KH; ky++) {
            const float *r[BLK];
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++) {
                int64_t iy = iy0[j] + ky * g->DH;
                r[j] = iy >= 0 && iy < g->H ? x + iy * g->W : g->zero_row;
            }
            const float *wk = w + ky * KW;
            for (int64_t kx = 0; kx < KW; kx++) {
                const __m512 wv = _mm512_set1_ps(wk[kx]);
#pragma GCC unroll 4
                for (int j = 0; j < BLK; j++) {
                    const int64_t t = cj[j] * KW + kx;
                    const float *p = r[j] + g->ix0[t];
                    const uint32_t m = g->mask[t];
                    __m512 v;
                    if (S == 1) {
                        v = _mm512_maskz_loadu_ps((__mmask16)m, p);
                    } else {
                        __m512 v0 = _mm512_maskz_loadu_ps((__mmask16)m, p);
                        __m512 v1 = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16);
                        v = _mm512_permutex2var_ps(v0, even, v1);
                    }
                    a[j] = _mm512_fmadd_ps(wv, v, a[j]);
                }
            }
        }
#pragma GCC unroll 4
        for (int j = 0; j < BLK; j++)
            _mm512_mask_storeu_ps(yj[j], sm[j], _mm512_min_ps(hi, _mm512_max_ps(lo, a[j])));
    }
}

/* Adds the three kx taps (input vectors t0, t1, t2) of input row u to the first R
 * accumulators whose kernel row ky = u - step r falls in 0..2 (the 3x3 depthwise
 * kernels below; R and step are constants after inlining). */
static AI void add_taps3(__m512 *a, const int R, const __m512 *wv, int u, int step,
                         __m512 t0, __m512 t1, __m512 t2) {
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        const int ky = u - step * r;
        if (ky < 0 || ky > 2) continue;
        a[r] = _mm512_fmadd_ps(wv[ky * 3 + 0], t0, a[r]);
        a[r] = _mm512_fmadd_ps(wv[ky * 3 + 1], t1, a[r]);
        a[r] = _mm512_fmadd_ps(wv[ky * 3 + 2], t2, a[r]);
    }
}

/* 3x3, dilation 1, stride S in both axes: four output rows per pass, so each input row
 * vector is loaded once and feeds up to three rows' FMAs (18 loads for 36 FMAs at stride
 * 1); the nine weights stay in registers. */
#define DW3_R 4
static AI void dw3_body(const int S, const cf_dw_geom *g, const float *x, const float *w,
                        float bias, float *y) {
    enum { NU = (DW3_R - 1) * 2 + 3 }; /* enough input rows for S <= 2 */
    const int nu = (DW3_R - 1) * S + 3;
    const int64_t nch = g->nch, OH = g->OH, OW = g->OW;
    const __m512 vb = _mm512_set1_ps(bias), lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    for (int64_t oy0 = 0; oy0 < OH; oy0 += DW3_R) {
        const int nr = OH - oy0 < DW3_R ? (int)(OH - oy0) : DW3_R;
        const float *rows[NU];
        for (int u = 0; u < nu; u++) {
            int64_t iy = oy0 * S - g->PT + u;
            rows[u] = iy >= 0 && iy < g->H ? x + iy * g->W : g->zero_row;
        }
        for (int64_t ch = 0; ch < nch; ch++) {
            const int64_t *ix = g->ix0 + ch * 3;
            const uint32_t *mk = g->mask + ch * 3;
            __m512 a[DW3_R];
#pragma GCC unroll 4
            for (int r = 0; r < DW3_R; r++) a[r] = vb;
#pragma GCC unroll 9
            for (int u = 0; u < nu; u++) {
                __m512 v[3];
#pragma GCC unroll 3
                for (int kx = 0; kx < 3; kx++) {
                    const float *p = rows[u] + ix[kx];
                    if (S == 1) {
                        v[kx] = _mm512_maskz_loadu_ps((__mmask16)mk[kx], p);
                    } else {
                        __m512 v0 = _mm512_maskz_loadu_ps((__mmask16)mk[kx], p);
                        __m512 v1 = _mm512_maskz_loadu_ps((__mmask16)(mk[kx] >> 16), p + 16);
                        v[kx] = _mm512_permutex2var_ps(v0, even, v1);
                    }
                }
                add_taps3(a, DW3_R, wv, u, S, v[0], v[1], v[2]);
            }
            const __mmask16 sm = lo_mask((int)(OW - ch * LANES));
            for (int r = 0; r < nr; r++)
                _mm512_mask_storeu_ps(y + (oy0 + r) * OW + ch * LANES, sm,
                                      _mm512_min_ps(hi, _mm512_max_ps(lo, a[r])));
        }
    }
}

/* 3x3, stride 2, left pad 1 (MobileNet's downsampling layers): input columns 32j ..
 * 32j+31 of a row, two loads at the row's own alignment, give all three taps of output
 * columns 16j .. 16j+15: kx = 1 reads the even columns, kx = 2 the odd ones, and kx = 0
 * the odd ones moved up one lane with the previous chunk's last odd column (32j - 1;
 * zero, the padding, for j = 0) in lane 0. A third of dw3_body's loads, which were all
 * split across cache lines by the -1 offset. Columns at or beyond W load as zero. */
static void dw3s2_body(const cf_dw_geom *g, const float *x, const float *w, float bias,
                       float *y) {
    enum { NU = (DW3_R - 1) * 2 + 3 };
    const int64_t nch = g->nch, OH = g->OH, OW = g->OW, W = g->W;
    const __m512 vb = _mm512_set1_ps(bias), lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    for (int64_t oy0 = 0; oy0 < OH; oy0 += DW3_R) {
        const int nr = OH - oy0 < DW3_R ? (int)(OH - oy0) : DW3_R;
        const float *rows[NU];
        for (int u = 0; u < NU; u++) {
            int64_t iy = oy0 * 2 - g->PT + u;
            rows[u] = iy >= 0 && iy < g->H ? x + iy * W : g->zero_row;
        }
        __m512 prev[NU];
        /* the next pass's rows (8 further down), while this pass computes: the planes of
         * the 112x112 layer come from L3 */
        const bool pf = oy0 * 2 - g->PT >= 0 && oy0 * 2 - g->PT + NU + 8 <= g->H;
#pragma GCC unroll 9
        for (int u = 0; u < NU; u++) prev[u] = _mm512_setzero_ps();
        for (int64_t ch = 0; ch < nch; ch++) {
            const int64_t c0 = ch * 32;
            const int rem = W - c0 < 64 ? (int)(W - c0) : 64;
            const __mmask16 ma = lo_mask(rem), mb = lo_mask(rem - 16);
            __m512 a[DW3_R];
#pragma GCC unroll 4
            for (int r = 0; r < DW3_R; r++) a[r] = vb;
#pragma GCC unroll 9
            for (int u = 0; u < NU; u++) {
                const __m512 va = _mm512_maskz_loadu_ps(ma, rows[u] + c0);
                const __m512 vbb = _mm512_maskz_loadu_ps(mb, rows[u] + c0 + 16);
                if (pf && u > 0) {
                    _mm_prefetch((const char *)(rows[u] + c0 + 8 * W), _MM_HINT_T0);
                    _mm_prefetch((const char *)(rows[u] + c0 + 8 * W + 16), _MM_HINT_T0);
                }
                const __m512 ev = _mm512_permutex2var_ps(va, even, vbb);
                const __m512 od = _mm512_permutex2var_ps(va, odd, vbb);
                const __m512 v0 = _mm512_castsi512_ps(_mm512_alignr_epi32(
                    _mm512_castps_si512(od), _mm512_castps_si512(prev[u]), 15));
                prev[u] = od;
                add_taps3(a, DW3_R, wv, u, 2, v0, ev, od);
            }
            const __mmask16 sm = lo_mask((int)(OW - ch * LANES));
            for (int r = 0; r < nr; r++)
                _mm512_mask_storeu_ps(y + (oy0 + r) * OW + ch * LANES, sm,
                                      _mm512_min_ps(hi, _mm512_max_ps(lo, a[r])));
        }
    }
}

/* 3x3, stride 1, left pad 1: one load per input row and vector (columns 16j .. 16j+15,
 * kx = 1) instead of three at -1/0/+1 column offsets (two of them split across cache
 * lines); kx = 0 and kx = 2 are that vector shifted by one lane with the previous
 * vector's last column (zero, the padding, for j = 0) or the next vector's first (a
 * second load, zero beyond W). R output rows per pass: 4, or 8 on planes of one vector
 * per row (14x14: the chains of 9 dependent FMAs per output vector otherwise leave the
 * FMA units idle; wider planes have no registers for 8). */
static AI void dw3s1_body(const int R, const cf_dw_geom *g, const float *x, const float *w,
                          float bias, float *y) {
    enum { NU = 2 * DW3_R + 2 };
    const int nu = R + 2;
    const int64_t nch = g->nch, OH = g->OH, OW = g->OW, W = g->W;
    const __m512 vb = _mm512_set1_ps(bias), lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    for (int64_t oy0 = 0; oy0 < OH; oy0 += R) {
        const int nr = OH - oy0 < R ? (int)(OH - oy0) : R;
        const float *rows[NU];
        for (int u = 0; u < nu; u++) {
            int64_t iy = oy0 - g->PT + u;
            rows[u] = iy >= 0 && iy < g->H ? x + iy * W : g->zero_row;
        }
        __m512 prev[NU], cur[NU];
        const __mmask16 m0 = lo_mask(W < LANES ? (int)W : LANES);
#pragma GCC unroll 10
        for (int u = 0; u < nu; u++) {
            prev[u] = _mm512_setzero_ps();
            cur[u] = _mm512_maskz_loadu_ps(m0, rows[u]);
        }
        for (int64_t ch = 0; ch < nch; ch++) {
            const int64_t c1 = (ch + 1) * LANES;
            const __mmask16 mn = lo_mask(W - c1 < LANES ? (int)(W - c1) : LANES);
            __m512 a[2 * DW3_R];
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) a[r] = vb;
#pragma GCC unroll 10
            for (int u = 0; u < nu; u++) {
                const __m512 nx = _mm512_maskz_loadu_ps(mn, rows[u] + c1);
                const __m512i ci = _mm512_castps_si512(cur[u]);
                const __m512 v0 = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(ci, _mm512_castps_si512(prev[u]), 15));
                const __m512 v2 = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(_mm512_castps_si512(nx), ci, 1));
                const __m512 v1 = cur[u];
                prev[u] = cur[u];
                cur[u] = nx;
                add_taps3(a, R, wv, u, 1, v0, v1, v2);
            }
            const __mmask16 sm = lo_mask((int)(OW - ch * LANES));
            for (int r = 0; r < nr; r++)
                _mm512_mask_storeu_ps(y + (oy0 + r) * OW + ch * LANES, sm,
                                      _mm512_min_ps(hi, _mm512_max_ps(lo, a[r])));
        }
    }
}

/* Stores the BLK row-pair vectors of the two-rows-per-vector kernels below: vector r
 * holds output row oy0 + 2r in lanes 0..7 and the next row in lanes 8..15 (clamped). */
static AI void pair_store(const __m512 *a, int64_t oy0, int64_t OH, int64_t OW, __mmask8 om,
                          __m512 lo, __m512 hi, float *y) {
#pragma GCC unroll 4
    for (int r = 0; r < BLK; r++) {
        const int64_t oy = oy0 + 2 * r;
        const __m512 c = _mm512_min_ps(hi, _mm512_max_ps(lo, a[r]));
        if (oy < OH) _mm256_mask_storeu_ps(y + oy * OW, om, _mm512_castps512_ps256(c));
        if (oy + 1 < OH)
            _mm256_mask_storeu_ps(
                y + (oy + 1) * OW, om,
                _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(c), 1)));
    }
}

/* 3x3, stride 1, left pad 1 on planes at most 7 wide (MobileNetV2's 7x7 layers): two
 * output rows per vector (lanes 0.. row oy, lanes 8.. row oy + 1), so 7x7 takes 4 vectors
 * instead of 7 (plus dw3s1_body's rounding to 8 rows). Lanes W..7 and W+8..15 of the
 * input row pairs load as zero, so the one-lane shifts for kx = 0 and 2 read padding. */
static void dw3s1_pair_body(const cf_dw_geom *g, const float *x, const float *w, float bias,
                            float *y) {
    enum { NU = 2 * (BLK - 1) + 3 };
    const int64_t OH = g->OH, OW = g->OW, W = g->W;
    const __m512 vb = _mm512_set1_ps(bias), lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    const __m512i zero = _mm512_setzero_si512();
    const __mmask8 hm = (__mmask8)((1u << W) - 1u), om = (__mmask8)((1u << OW) - 1u);
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    for (int64_t oy0 = 0; oy0 < OH; oy0 += 2 * BLK) {
        __m512 a[BLK];
#pragma GCC unroll 4
        for (int r = 0; r < BLK; r++) a[r] = vb;
#pragma GCC unroll 9
        for (int u = 0; u < NU; u++) {
            const int64_t iy = oy0 - g->PT + u;
            const float *r0 = iy >= 0 && iy < g->H ? x + iy * W : g->zero_row;
            const float *r1 = iy + 1 >= 0 && iy + 1 < g->H ? x + (iy + 1) * W : g->zero_row;
            const __m512i v = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_castps_si256(_mm256_maskz_loadu_ps(hm, r0))),
                _mm256_castps_si256(_mm256_maskz_loadu_ps(hm, r1)), 1);
            const __m512 v0 = _mm512_castsi512_ps(_mm512_alignr_epi32(v, zero, 15));
            const __m512 v1 = _mm512_castsi512_ps(v);
            const __m512 v2 = _mm512_castsi512_ps(_mm512_alignr_epi32(zero, v, 1));
            add_taps3(a, BLK, wv, u, 2, v0, v1, v2);
        }
        pair_store(a, oy0, OH, OW, om, lo, hi, y);
    }
}

/* 3x3, stride 2, left pad 1 on planes at most 16 wide (8 output columns or fewer: the
 * 14x14 -> 7x7 layer): two output rows per vector. The input rows 2oy - PT + ky and two
 * further down load as two vectors whose even (kx = 1) and odd (kx = 2) columns one
 * permute each gathers into the two halves; kx = 0 is the odd half moved up one lane
 * (lanes 0 and 8 are the left padding). One pass of 8 output rows per plane instead of
 * dw3s2_body's two passes of 16-lane rows that leave 9 lanes idle. */
static void dw3s2_pair_body(const cf_dw_geom *g, const float *x, const float *w, float bias,
                            float *y) {
    enum { NU = 4 * (BLK - 1) + 3 };
    const int64_t OH = g->OH, OW = g->OW, W = g->W;
    const __m512 vb = _mm512_set1_ps(bias), lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i zero = _mm512_setzero_si512();
    const __mmask16 hm = lo_mask((int)W);
    const __mmask8 om = (__mmask8)((1u << OW) - 1u);
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    for (int64_t oy0 = 0; oy0 < OH; oy0 += 2 * BLK) {
        __m512 a[BLK];
#pragma GCC unroll 4
        for (int r = 0; r < BLK; r++) a[r] = vb;
#pragma GCC unroll 15
        for (int u = 0; u < NU; u++) {
            if ((u & 3) == 3) continue; /* no (pair, ky) reads it */
            const int64_t iy = oy0 * 2 - g->PT + u;
            const float *r0 = iy >= 0 && iy < g->H ? x + iy * W : g->zero_row;
            const float *r1 = iy + 2 >= 0 && iy + 2 < g->H ? x + (iy + 2) * W : g->zero_row;
            const __m512 va = _mm512_maskz_loadu_ps(hm, r0), vbb = _mm512_maskz_loadu_ps(hm, r1);
            const __m512 ev = _mm512_permutex2var_ps(va, even, vbb);
            const __m512 od = _mm512_permutex2var_ps(va, odd, vbb);
            const __m512 v0 = _mm512_maskz_mov_ps(
                (__mmask16)0xfefe,
                _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(od), zero, 15)));
            add_taps3(a, BLK, wv, u, 4, v0, ev, od);
        }
        pair_store(a, oy0, OH, OW, om, lo, hi, y);
    }
}

static void dw_direct_avx512(const cf_dw_geom *g, const float *x, const float *w, float bias,
                             float *y) {
    const bool k3 = g->KH == 3 && g->KW == 3 && g->DH == 1 && g->DW == 1 && g->SH == g->SW;
    if (k3 && g->SW == 2 && g->PL == 1 && g->W <= 16 && g->OW <= 8)
        dw3s2_pair_body(g, x, w, bias, y);
    else if (k3 && g->SW == 2 && g->PL == 1) dw3s2_body(g, x, w, bias, y);
    else if (k3 && g->SW == 1 && g->PL == 1 && g->W <= 7 && g->OW <= 7)
        dw3s1_pair_body(g, x, w, bias, y);
    else if (k3 && g->SW == 1 && g->PL == 1 && g->nch == 1) dw3s1_body(8, g, x, w, bias, y);
    else if (k3 && g->SW == 1 && g->PL == 1) dw3s1_body(4, g, x, w, bias, y);
    else if (k3 && g->SW == 1) dw3_body(1, g, x, w, bias, y);
    else if (k3 && g->SW == 2) dw3_body(2, g, x, w, bias, y);
    else if (g->SW == 1) dw_direct_body(1, g, x, w, bias, y);
    else dw_direct_body(2, g, x, w, bias, y);
}

/* ---- Winograd F(4x4, 3x3) transforms, 16 tiles per vector (see conv_generic.c for
 * the matrices) ---- */

static AI void bt6v(const __m512 d[6], __m512 t[6]) {
    const __m512 c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(-5.0f), c2 = _mm512_set1_ps(2.0f);
    t[0] = _mm512_fmadd_ps(c4, d[0], _mm512_fmadd_ps(c5, d[2], d[4]));
    t[1] = _mm512_fnmadd_ps(c4, _mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4]));
    t[2] = _mm512_fmadd_ps(c4, _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3]));
    t[3] = _mm512_fmadd_ps(c2, _mm512_sub_ps(d[3], d[1]), _mm512_sub_ps(d[4], d[2]));
    t[4] = _mm512_fmadd_ps(c2, _mm512_sub_ps(d[1], d[3]), _mm512_sub_ps(d[4], d[2]));
    t[5] = _mm512_fmadd_ps(c4, d[1], _mm512_fmadd_ps(c5, d[3], d[5]));
}

static AI void at6v(const __m512 m[6], __m512 o[4]) {
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

static void wino_in_avx512(const float *src, const int64_t *tap_off, const cf_wseg *seg, int nseg,
                           float *dst, int64_t ld) {
    __mmask16 mk[LANES];
    const float *base[LANES];
    for (int s = 0; s < nseg; s++) {
        mk[s] = (__mmask16)(((1u << seg[s].len) - 1u) << seg[s].lane);
        base[s] = src + seg[s].in - seg[s].lane;
    }
    __m512 t[36];
    for (int j = 0; j < 6; j++) {
        __m512 d[6], c[6];
        for (int i = 0; i < 6; i++) {
            const int64_t o = tap_off[i * 6 + j];
            if (nseg == 1 && mk[0] == 0xffff) {
                d[i] = _mm512_loadu_ps(base[0] + o);
            } else {
                d[i] = _mm512_setzero_ps();
                for (int s = 0; s < nseg; s++) d[i] = _mm512_mask_loadu_ps(d[i], mk[s], base[s] + o);
            }
        }
        bt6v(d, c);
        for (int i = 0; i < 6; i++) t[i * 6 + j] = c[i];
    }
    for (int i = 0; i < 6; i++) {
        __m512 r[6];
        bt6v(t + i * 6, r);
        for (int j = 0; j < 6; j++) _mm512_storeu_ps(dst + (i * 6 + j) * ld, r[j]);
    }
}

static void wino_out_avx512(const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                            const float *res, float *y, int64_t OW, float lo, float hi) {
    __m512 t[24]; /* 4 x 6 after the column pass */
    for (int j = 0; j < 6; j++) {
        __m512 v[6], o[4];
        for (int i = 0; i < 6; i++) v[i] = _mm512_loadu_ps(m + (i * 6 + j) * ld);
        at6v(v, o);
        for (int a = 0; a < 4; a++) t[a * 6 + j] = o[a];
    }
    const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int a = 0; a < 4; a++) {
        __m512 o[4];
        at6v(t + a * 6, o);
        for (int b = 0; b < 4; b++) o[b] = _mm512_add_ps(o[b], vb);
        wino_store_row_avx512(o, a, seg, nseg, res, y, OW, vlo, vhi);
    }
}

/* Stride-2 and stride-4 de-interleaving of a row (input preparation); the last partial
 * block is done with masks. */
static void deint_avx512(const float *src, int64_t n, int s, float *const *dst) {
    if (s == 2) {
        const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
        for (int64_t j = 0; j < n; j += 16) {
            const int c = n - j < 16 ? (int)(n - j) : 16; /* outputs per phase */
            const __mmask16 m0 = lo_mask(2 * c), m1 = lo_mask(2 * c - 16), mo = lo_mask(c);
            const __m512 a = _mm512_maskz_loadu_ps(m0, src + 2 * j);
            const __m512 b = _mm512_maskz_loadu_ps(m1, src + 2 * j + 16);
            _mm512_mask_storeu_ps(dst[0] + j, mo, _mm512_permutex2var_ps(a, ev, b));
            _mm512_mask_storeu_ps(dst[1] + j, mo, _mm512_permutex2var_ps(a, od, b));
        }
        return;
    }
    if (s == 4) {
        const __m512i base = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
        for (int64_t j = 0; j < n; j += 16) {
            const int c = n - j < 16 ? (int)(n - j) : 16;
            const int f = 4 * c; /* floats to read */
            const __m512 a = _mm512_maskz_loadu_ps(lo_mask(f), src + 4 * j);
            const __m512 b = _mm512_maskz_loadu_ps(lo_mask(f - 16), src + 4 * j + 16);
            const __m512 cc = _mm512_maskz_loadu_ps(lo_mask(f - 32), src + 4 * j + 32);
            const __m512 d = _mm512_maskz_loadu_ps(lo_mask(f - 48), src + 4 * j + 48);
            const __mmask16 mo = lo_mask(c);
            for (int r = 0; r < 4; r++) {
                const __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32(r));
                const __m512 t1 = _mm512_permutex2var_ps(a, idx, b), t2 = _mm512_permutex2var_ps(cc, idx, d);
                _mm512_mask_storeu_ps(dst[r] + j, mo, _mm512_shuffle_f32x4(t1, t2, 0x44));
            }
        }
        return;
    }
    for (int r = 0; r < s; r++)
        for (int64_t jj = 0; jj < n; jj++) dst[r][jj] = src[jj * s + r];
}

/* Direct small-K convolution (cf_direct_run): strips of V <= 4 vectors of 16 pixels x 4
 * output channels in 16 accumulators; per input row k, V loads and 4 weight broadcasts
 * feed 4V FMAs. Short K made the implicit GEMM's B packing and tile stores cost as much
 * as its multiplies (MobileNetV2's stem, K = 27, ran at 64% of peak; 74% here). Blocks
 * of 6 channels (24 accumulators) measured slower: 32 channels left a third of the last
 * block empty. Full strips load without masks (masked loads made GCC spill). */
#define DK_M 4
static AI void dk_strip(const int V, const bool tail, const float *x, const int64_t *koff, int64_t K,
                        const float *w, int64_t ldw, int64_t M, const float *bias,
                        const float *res, int64_t ldy, int64_t j0, int64_t n, float flo,
                        float fhi, float *y) {
    __mmask16 mk[4];
    for (int v = 0; v < 4; v++) mk[v] = lo_mask((int)(n - j0 - 16 * v));
    for (int64_t m0 = 0; m0 < M; m0 += DK_M) {
        __m512 acc[DK_M][4];
#pragma GCC unroll 8
        for (int i = 0; i < DK_M; i++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) acc[i][v] = _mm512_setzero_ps();
        const float *wk = w + m0;
        for (int64_t k = 0; k < K; k++, wk += ldw) {
            const float *xk = x + koff[k] + j0;
            __m512 xv[4];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                xv[v] = tail ? _mm512_maskz_loadu_ps(mk[v], xk + 16 * v) : _mm512_loadu_ps(xk + 16 * v);
#pragma GCC unroll 8
            for (int i = 0; i < DK_M; i++) {
                const __m512 wv = _mm512_set1_ps(wk[i]);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) acc[i][v] = _mm512_fmadd_ps(wv, xv[v], acc[i][v]);
            }
        }
        const int mb = M - m0 < DK_M ? (int)(M - m0) : DK_M;
        const __m512 lo = _mm512_set1_ps(flo), hi = _mm512_set1_ps(fhi); /* not live in the K loop */
        /* constant indices only (a runtime row bound made GCC keep acc in memory) */
#pragma GCC unroll 8
        for (int i = 0; i < DK_M; i++) {
            if (i >= mb) break;
            float *yr = y + (m0 + i) * ldy + j0;
            const float *rr = res ? res + (m0 + i) * ldy + j0 : NULL;
            const __m512 b = _mm512_set1_ps(bias ? bias[m0 + i] : 0.0f);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) {
                __m512 t = _mm512_add_ps(acc[i][v], b);
                if (rr) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mk[v], rr + 16 * v));
                _mm512_mask_storeu_ps(yr + 16 * v, mk[v], _mm512_min_ps(hi, _mm512_max_ps(lo, t)));
            }
        }
    }
}

static void direct_run_avx512(const float *x, const int64_t *koff, int64_t K, const float *w,
                              int64_t ldw, int64_t M, const float *bias, const float *res,
                              int64_t ldy, int64_t n, float lo, float hi, float *y) {
    /* strips of at most 4 vectors, as even as possible (112 = 64 + 48, not 64 + 64) */
    const int64_t nvec = (n + 15) / 16;
    int64_t j0 = 0;
    for (int64_t v0 = 0; v0 < nvec;) {
        const int64_t left = nvec - v0;
        const int V = left <= 4 ? (int)left : left <= 8 ? (int)((left + 1) / 2) : 4;
        const bool tail = j0 + 16 * V > n; /* masked loads only in a partial strip */
#define DK_CASE(v) tail ? dk_strip(v, true, x, koff, K, w, ldw, M, bias, res, ldy, j0, n, lo, hi, y) \
                        : dk_strip(v, false, x, koff, K, w, ldw, M, bias, res, ldy, j0, n, lo, hi, y)
        switch (V) {
        case 1: DK_CASE(1); break;
        case 2: DK_CASE(2); break;
        case 3: DK_CASE(3); break;
        default: DK_CASE(4); break;
        }
#undef DK_CASE
        v0 += V;
        j0 += 16 * V;
    }
}

static const cf_kernels kernels = {
    .isa = PL_ISA_AVX512,
    .mr = MR,
    .nr = NR,
    .ukernel = {UKP(1), UKP(2), UKP(3), UKP(4), UKP(5), UKP(6), UKP(7), UKP(8), UKP(9),
                UKP(10), UKP(11), UKP(12), UKP(13), UKP(14)},
    .pack_b = pack_b_avx512,
    .store_t = store_t_avx512,
    .vl = LANES,
    .dw_plane = dw_plane_avx512,
    .dw_direct = dw_direct_avx512,
    .deint = deint_avx512,
    .wino_in = wino_in_avx512,
    .wino_out = wino_out_avx512,
    .max_plane = max_plane_avx512,
    .avg_plane = avg_plane_avx512,
    .max3s2 = max3s2_plane_avx512,
    .direct_run = direct_run_avx512,
};

const cf_kernels *cf_kernels_avx512(void) { return &kernels; }

#else
const cf_kernels *cf_kernels_avx512(void) { return 0; }
#endif
