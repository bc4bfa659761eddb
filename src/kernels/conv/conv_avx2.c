/* conv_avx2.c -- AVX2/FMA inner kernels of the fast convolutions: 6x16 implicit-GEMM
 * micro-kernels (12 ymm accumulators), B sliver packing and the direct plane kernels
 * (depthwise convolution, max and average pooling), four vectors in flight. */
#include "kernels/conv/conv_isa.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define MR 6
#define NR 16
#define AI inline __attribute__((always_inline))

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The first n lanes (n clamped to 0..8). */
static AI __m256i lanes(int n) {
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n));
}

static AI void uk_body(const int R, const int V, int64_t kc, const float *a, const float *b,
                       int64_t ldb, float *c, int64_t ldc, int nr, int accumulate,
                       const cf_tile_epi *e) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
        c0[i] = _mm256_setzero_ps();
        c1[i] = _mm256_setzero_ps();
    }
    const __m256i m0 = lanes(nr), m1 = lanes(nr - 8);
    if (ldb == NR || nr == NR) {
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_loadu_ps(b);
            const __m256 b1 = V == 2 ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                const __m256 ai = _mm256_broadcast_ss(a + i);
                c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
                if (V == 2) c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
            }
            a += MR;
            b += ldb;
        }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_maskload_ps(b, m0);
            const __m256 b1 = V == 2 ? _mm256_maskload_ps(b + 8, m1) : b0;
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                const __m256 ai = _mm256_broadcast_ss(a + i);
                c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
                if (V == 2) c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
            }
            a += MR;
            b += ldb;
        }
    }
    const __m256 lo = _mm256_set1_ps(e ? e->lo : 0.0f), hi = _mm256_set1_ps(e ? e->hi : 0.0f);
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm256_add_ps(c0[i], nr == NR ? _mm256_loadu_ps(ci) : _mm256_maskload_ps(ci, m0));
            if (V == 2)
                c1[i] = _mm256_add_ps(c1[i], nr == NR ? _mm256_loadu_ps(ci + 8) : _mm256_maskload_ps(ci + 8, m1));
        }
        if (e) {
            if (e->bias) {
                const __m256 bi = _mm256_broadcast_ss(e->bias + i);
                c0[i] = _mm256_add_ps(c0[i], bi);
                c1[i] = _mm256_add_ps(c1[i], bi);
            }
            if (e->res) {
                const float *ri = e->res + i * e->ldr;
                c0[i] = _mm256_add_ps(c0[i], _mm256_maskload_ps(ri, m0));
                if (V == 2) c1[i] = _mm256_add_ps(c1[i], _mm256_maskload_ps(ri + 8, m1));
            }
            c0[i] = _mm256_min_ps(hi, _mm256_max_ps(lo, c0[i]));
            c1[i] = _mm256_min_ps(hi, _mm256_max_ps(lo, c1[i]));
        }
        if (nr == NR) {
            _mm256_storeu_ps(ci, c0[i]);
            _mm256_storeu_ps(ci + 8, c1[i]);
        } else {
            _mm256_maskstore_ps(ci, m0, c0[i]);
            if (V == 2) _mm256_maskstore_ps(ci + 8, m1, c1[i]);
        }
    }
}

#define UK(R, V)                                                                           \
    static void uk_##R##x##V(int64_t kc, const float *a, const float *b, int64_t ldb,      \
                             float *c, int64_t ldc, int nr, int accumulate,                \
                             const cf_tile_epi *e) {                                       \
        uk_body(R, V, kc, a, b, ldb, c, ldc, nr, accumulate, e);                           \
    }
#define UK2(R) UK(R, 1) UK(R, 2)
UK2(1) UK2(2) UK2(3) UK2(4) UK2(5) UK2(6)
#define UKP(R) {uk_##R##x1, uk_##R##x2}

static void pack_b_avx2(const float *src, const int64_t *koff, int64_t kc, int nsv,
                        const cf_bseg *seg, const int *first, float *dst, int ld,
                          int64_t sstride) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i mst = lanes(ld);
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + koff[k];
        if (k + 1 < kc) {
            const char *nx = (const char *)(src + koff[k + 1] + seg[0].off);
            _mm_prefetch(nx, _MM_HINT_T0);
            _mm_prefetch(nx + 64, _MM_HINT_T0);
        }
        float *d = dst + k * ld;
        for (int v = 0; v < nsv; v++, d += sstride) {
            __m256 w0 = _mm256_setzero_ps(), w1 = _mm256_setzero_ps();
            for (int i = first[v]; i < first[v + 1]; i++) {
                const cf_bseg *a = &seg[i];
                __m256 t;
                if (a->mask == 0xff) {
                    t = _mm256_loadu_ps(s + a->base);
                } else {
                    const __m256i m = _mm256_cmpeq_epi32(
                        _mm256_and_si256(_mm256_set1_epi32((int)a->mask), bit), bit);
                    t = _mm256_maskload_ps(s + a->base, m);
                    t = _mm256_blendv_ps(a->vec == 0 ? w0 : w1, t, _mm256_castsi256_ps(m));
                }
                if (a->vec == 0) w0 = t;
                else w1 = t;
            }
            if (ld == NR) {
                _mm256_storeu_ps(d, w0);
                _mm256_storeu_ps(d + 8, w1);
            } else {
                _mm256_maskstore_ps(d, mst, w0);
            }
        }
    }
}

static void store_t_avx2(const float *t, int ldt, int mr, int nr, float *y, int64_t ldy,
                         const float *bias, const float *res, float lo, float hi) {
    for (int j = 0; j < nr; j++) {
        const float b = bias ? bias[j] : 0.0f;
        float *yj = y + (int64_t)j * ldy;
        const float *rj = res ? res + (int64_t)j * ldy : NULL;
        for (int i = 0; i < mr; i++) {
            float v = t[i * ldt + j] + b;
            if (rj) v += rj[i];
            v = v < lo ? lo : v;
            yj[i] = v > hi ? hi : v;
        }
    }
}

/* ---- direct plane kernels (see conv_avx512.c) ---- */

#define LANES 8
#define BLK 4

typedef struct vec_item {
    const float *x;
    float *y;
    __m256i m;
    int full;
} vec_item;

static AI int items_at(int64_t first, int64_t count, int64_t nch, int64_t OW, int64_t ldx,
                       const float *x, float *y, vec_item *it) {
    int n = 0;
    for (int64_t q = first; q < first + count && n < BLK; q++, n++) {
        int64_t oy = q / nch, ox = (q % nch) * LANES;
        int len = (int)(OW - ox < LANES ? OW - ox : LANES);
        it[n].x = x + oy * ldx + ox;
        it[n].y = y + oy * OW + ox;
        it[n].m = lanes(len);
        it[n].full = len == LANES;
    }
    return n;
}

static AI __m256 ld(const vec_item *it, int64_t o) {
    return it->full ? _mm256_loadu_ps(it->x + o) : _mm256_maskload_ps(it->x + o, it->m);
}

static AI void st(const vec_item *it, __m256 v) {
    if (it->full) _mm256_storeu_ps(it->y, v);
    else _mm256_maskstore_ps(it->y, it->m, v);
}

static void dw_plane_avx2(const float *x, const int64_t *tap_off, const float *w, int ntaps,
                          float bias, int64_t OH, int64_t OW, int64_t ldx, float *y) {
    const int64_t nch = (OW + LANES - 1) / LANES, total = OH * nch;
    const __m256 vb = _mm256_set1_ps(bias);
    for (int64_t q = 0; q < total; q += BLK) {
        vec_item it[BLK] = {{0}};
        int n = items_at(q, total - q, nch, OW, ldx, x, y, it);
        __m256 a[BLK] = {vb, vb, vb, vb};
        for (int t = 0; t < ntaps; t++) {
            const __m256 wt = _mm256_set1_ps(w[t]);
            const int64_t o = tap_off[t];
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++)
                if (j < n) a[j] = _mm256_fmadd_ps(wt, ld(&it[j], o), a[j]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < BLK; j++)
            if (j < n) st(&it[j], a[j]);
    }
}

static void max_plane_avx2(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                           int64_t OW, int64_t ldx, float *y) {
    const int64_t nch = (OW + LANES - 1) / LANES, total = OH * nch;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t q = 0; q < total; q += BLK) {
        vec_item it[BLK] = {{0}};
        int n = items_at(q, total - q, nch, OW, ldx, x, y, it);
        __m256 a[BLK] = {ninf, ninf, ninf, ninf};
        for (int t = 0; t < ntaps; t++) {
            const int64_t o = tap_off[t];
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++)
                if (j < n) a[j] = _mm256_max_ps(ld(&it[j], o), a[j]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < BLK; j++)
            if (j < n) st(&it[j], a[j]);
    }
}

static void avg_plane_avx2(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                           int64_t OW, int64_t ldx, const float *scale_y, const float *scale_x,
                           float *y) {
    const int64_t nch = (OW + LANES - 1) / LANES, total = OH * nch;
    for (int64_t q = 0; q < total; q += BLK) {
        vec_item it[BLK] = {{0}};
        int n = items_at(q, total - q, nch, OW, ldx, x, y, it);
        __m256 a[BLK] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
        for (int t = 0; t < ntaps; t++) {
            const int64_t o = tap_off[t];
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++)
                if (j < n) a[j] = _mm256_add_ps(a[j], ld(&it[j], o));
        }
        for (int j = 0; j < n; j++) {
            int64_t qq = q + j, oy = qq / nch, ox = (qq % nch) * LANES;
            __m256 sx = it[j].full ? _mm256_loadu_ps(scale_x + ox)
                                   : _mm256_maskload_ps(scale_x + ox, it[j].m);
            st(&it[j], _mm256_mul_ps(a[j], _mm256_mul_ps(_mm256_set1_ps(scale_y[oy]), sx)));
        }
    }
}

/* Direct depthwise convolution (strides 1 and 2), four output vectors in flight; see
 * conv_avx512.c. Stride 2 loads 16 floats and keeps the even ones. */
static AI __m256i bits_to_lanes(uint32_t m) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bit), bit);
}

static AI void dw_direct_body(const int S, const cf_dw_geom *g, const float *x, const float *w,
                              float bias, float *y) {
    const int64_t KH = g->KH, KW = g->KW, OW = g->OW, nch = g->nch, total = g->OH * nch;
    const __m256 vb = _mm256_set1_ps(bias), lo = _mm256_set1_ps(g->lo), hi = _mm256_set1_ps(g->hi);
    int64_t oy = 0, ch = 0;
    for (int64_t q = 0; q < total; q += BLK) {
        const int n = total - q < BLK ? (int)(total - q) : BLK;
        int64_t iy0[BLK] = {0}, cj[BLK] = {0};
        float *yj[BLK] = {0};
        int len[BLK];
        for (int j = 0; j < BLK; j++) {
            if (j < n) {
                iy0[j] = oy * g->SH - g->PT;
                cj[j] = ch;
                yj[j] = y + oy * OW + ch * LANES;
                len[j] = (int)(OW - ch * LANES < LANES ? OW - ch * LANES : LANES);
                if (++ch == nch) {
                    ch = 0;
                    oy++;
                }
            } else {
                iy0[j] = iy0[0];
                cj[j] = cj[0];
                yj[j] = yj[0];
                len[j] = 0;
            }
        }
        __m256 a[BLK] = {vb, vb, vb, vb};
        for (int64_t ky = 0; ky < KH; ky++) {
            const float *r[BLK];
#pragma GCC unroll 4
            for (int j = 0; j < BLK; j++) {
                int64_t iy = iy0[j] + ky * g->DH;
                r[j] = iy >= 0 && iy < g->H ? x + iy * g->W : g->zero_row;
            }
            const float *wk = w + ky * KW;
            for (int64_t kx = 0; kx < KW; kx++) {
                const __m256 wv = _mm256_set1_ps(wk[kx]);
#pragma GCC unroll 4
                for (int j = 0; j < BLK; j++) {
                    const int64_t t = cj[j] * KW + kx;
                    const float *p = r[j] + g->ix0[t];
                    const uint32_t m = g->mask[t];
                    __m256 v;
                    if (S == 1) {
                        v = m == 0xff ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, bits_to_lanes(m));
                    } else {
                        __m256 v0, v1;
                        if (m == 0xffff) {
                            v0 = _mm256_loadu_ps(p);
                            v1 = _mm256_loadu_ps(p + 8);
                        } else {
                            v0 = _mm256_maskload_ps(p, bits_to_lanes(m & 0xff));
                            v1 = _mm256_maskload_ps(p + 8, bits_to_lanes(m >> 8));
                        }
                        /* [v0_0 v0_2 v1_0 v1_2 | v0_4 v0_6 v1_4 v1_6] -> evens in order */
                        v = _mm256_shuffle_ps(v0, v1, 0x88);
                        v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8));
                    }
                    a[j] = _mm256_fmadd_ps(wv, v, a[j]);
                }
            }
        }
        for (int j = 0; j < n; j++) {
            __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, a[j]));
            if (len[j] == LANES) _mm256_storeu_ps(yj[j], v);
            else _mm256_maskstore_ps(yj[j], lanes(len[j]), v);
        }
    }
}

/* 3x3, dilation 1, stride S: four output rows per pass (see conv_avx512.c). */
#define DW3_R 4
static AI __m256 dw3_load(const int S, const float *p, uint32_t m) {
    if (S == 1) return m == 0xff ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, bits_to_lanes(m));
    __m256 v0, v1;
    if (m == 0xffff) {
        v0 = _mm256_loadu_ps(p);
        v1 = _mm256_loadu_ps(p + 8);
    } else {
        v0 = _mm256_maskload_ps(p, bits_to_lanes(m & 0xff));
        v1 = _mm256_maskload_ps(p + 8, bits_to_lanes(m >> 8));
    }
    __m256 v = _mm256_shuffle_ps(v0, v1, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8));
}

static AI void dw3_body(const int S, const cf_dw_geom *g, const float *x, const float *w,
                        float bias, float *y) {
    enum { NU = (DW3_R - 1) * 2 + 3 };
    const int nu = (DW3_R - 1) * S + 3;
    const int64_t nch = g->nch, OH = g->OH, OW = g->OW;
    const __m256 vb = _mm256_set1_ps(bias), lo = _mm256_set1_ps(g->lo), hi = _mm256_set1_ps(g->hi);
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
            __m256 a[DW3_R];
#pragma GCC unroll 4
            for (int r = 0; r < DW3_R; r++) a[r] = vb;
#pragma GCC unroll 9
            for (int u = 0; u < nu; u++) {
                __m256 v[3];
#pragma GCC unroll 3
                for (int kx = 0; kx < 3; kx++) v[kx] = dw3_load(S, rows[u] + ix[kx], mk[kx]);
#pragma GCC unroll 4
                for (int r = 0; r < DW3_R; r++) {
                    const int ky = u - r * S;
                    if (ky < 0 || ky > 2) continue;
                    a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + ky * 3 + 0), v[0], a[r]);
                    a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + ky * 3 + 1), v[1], a[r]);
                    a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + ky * 3 + 2), v[2], a[r]);
                }
            }
            const int len = (int)(OW - ch * LANES < LANES ? OW - ch * LANES : LANES);
            for (int r = 0; r < nr; r++) {
                float *yp = y + (oy0 + r) * OW + ch * LANES;
                __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, a[r]));
                if (len == LANES) _mm256_storeu_ps(yp, v);
                else _mm256_maskstore_ps(yp, lanes(len), v);
            }
        }
    }
}

static void dw_direct_avx2(const cf_dw_geom *g, const float *x, const float *w, float bias,
                           float *y) {
    const bool k3 = g->KH == 3 && g->KW == 3 && g->DH == 1 && g->DW == 1 && g->SH == g->SW;
    if (k3 && g->SW == 1) dw3_body(1, g, x, w, bias, y);
    else if (k3 && g->SW == 2) dw3_body(2, g, x, w, bias, y);
    else if (g->SW == 1) dw_direct_body(1, g, x, w, bias, y);
    else dw_direct_body(2, g, x, w, bias, y);
}

static void wino_in_avx2(const float *src, const int64_t *tap_off, const cf_wseg *seg, int nseg,
                         float *dst, int64_t ld) {
    cf_wino_in_c(LANES, src, tap_off, seg, nseg, dst, ld);
}

static void wino_out_avx2(const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                          const float *res, float *y, int64_t OW, float lo, float hi) {
    cf_wino_out_c(LANES, m, ld, seg, nseg, bias, res, y, OW, lo, hi);
}

/* Stride-2 de-interleaving of a row (stride 4 element by element). */
static void deint_avx2(const float *src, int64_t n, int s, float *const *dst) {
    int64_t j = 0;
    if (s == 2) {
        for (; j + 8 <= n; j += 8) {
            const __m256 a = _mm256_loadu_ps(src + 2 * j), b = _mm256_loadu_ps(src + 2 * j + 8);
            const __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xdd);
            _mm256_storeu_ps(dst[0] + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8)));
            _mm256_storeu_ps(dst[1] + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xd8)));
        }
    }
    for (int r = 0; r < s; r++)
        for (int64_t jj = j; jj < n; jj++) dst[r][jj] = src[jj * s + r];
}

static const cf_kernels kernels = {
    .isa = PL_ISA_AVX2,
    .mr = MR,
    .nr = NR,
    .ukernel = {UKP(1), UKP(2), UKP(3), UKP(4), UKP(5), UKP(6)},
    .pack_b = pack_b_avx2,
    .store_t = store_t_avx2,
    .vl = LANES,
    .dw_plane = dw_plane_avx2,
    .dw_direct = dw_direct_avx2,
    .deint = deint_avx2,
    .wino_in = wino_in_avx2,
    .wino_out = wino_out_avx2,
    .max_plane = max_plane_avx2,
    .avg_plane = avg_plane_avx2,
};

const cf_kernels *cf_kernels_avx2(void) { return &kernels; }

#else
const cf_kernels *cf_kernels_avx2(void) { return 0; }
#endif
