/* conv_winograd_s2_avx512.c -- the stride-2 Winograd transforms (conv_winograd_s2.c has
 * the matrices and the plain-C twin) with 16 tiles per vector. */
#include "kernels/conv/conv_plan.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__)
#include <immintrin.h>
#include <string.h>

#include "kernels/conv/wino_store_avx512.h"

#define AI inline __attribute__((always_inline))

/* t = B^T d over 5 vectors */
static AI void bt5v(const __m512 d[5], __m512 t[5]) {
    const __m512 c2 = _mm512_set1_ps(2.0f), c3 = _mm512_set1_ps(3.0f);
    const __m512 d31 = _mm512_sub_ps(d[3], d[1]);
    t[0] = _mm512_fmadd_ps(c2, _mm512_sub_ps(d[0], d[2]), d31);
    t[1] = _mm512_fnmadd_ps(c2, d[1], _mm512_sub_ps(d[3], d[2]));
    t[2] = _mm512_fnmadd_ps(c3, d[2], _mm512_fmadd_ps(c2, d[1], d[3]));
    t[3] = d31;
    t[4] = _mm512_fnmadd_ps(c2, d31, _mm512_sub_ps(d[4], d[2]));
}

/* o = A^T m over 5 vectors */
static AI void at5v(const __m512 m[5], __m512 o[4]) {
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), m[3]);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), m[3], d12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), m[3], s12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), m[3], d12), m[4]);
}

/* One phase (a, b): the 5x5 patch elements (2i + a, 2j + b) of the 10x10 patch, B^T d B,
 * the values with a product stored (a 1-tap direction has none at infinity). */
static AI void phase_in(const float *p, const int64_t *tap, const int a, const int b, float *dst,
                        const int64_t *off) {
    __m512 t[25];
#pragma GCC unroll 5
    for (int j = 0; j < 5; j++) {
        __m512 d[5], c[5];
#pragma GCC unroll 5
        for (int i = 0; i < 5; i++) d[i] = _mm512_loadu_ps(p + tap[(2 * i + a) * 10 + 2 * j + b]);
        bt5v(d, c);
#pragma GCC unroll 5
        for (int i = 0; i < 5; i++) t[i * 5 + j] = c[i];
    }
#pragma GCC unroll 5
    for (int i = 0; i < 5 - a; i++) {
        __m512 r[5];
        bt5v(t + i * 5, r);
#pragma GCC unroll 5
        for (int j = 0; j < 5 - b; j++) _mm512_storeu_ps(dst + off[i * (5 - b) + j], r[j]);
    }
}

static void wino2_in(const float *src, const int64_t *tap_off, float *dst, const int64_t *dst_off) {
    phase_in(src, tap_off, 0, 0, dst, dst_off);
    phase_in(src, tap_off, 0, 1, dst, dst_off + 25);
    phase_in(src, tap_off, 1, 0, dst, dst_off + 45);
    phase_in(src, tap_off, 1, 1, dst, dst_off + 65);
}

static void wino2_out(const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                      const float *res, float *y, int64_t OW, float lo, float hi) {
    __m512 t[20]; /* 4 x 5 after the column pass */
    for (int j = 0; j < 5; j++) {
        __m512 v[5], o[4];
        for (int i = 0; i < 5; i++) v[i] = _mm512_loadu_ps(m + (i * 5 + j) * ld);
        at5v(v, o);
        for (int a = 0; a < 4; a++) t[a * 5 + j] = o[a];
    }
    const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int a = 0; a < 4; a++) {
        __m512 o[4];
        at5v(t + a * 5, o);
        for (int b = 0; b < 4; b++) o[b] = _mm512_add_ps(o[b], vb);
        wino_store_row_avx512(o, a, seg, nseg, res, y, OW, vlo, vhi);
    }
}

/* ev/od: the even and odd floats of the 32 in a, b */
static AI void deint2(__m512 a, __m512 b, __m512 *ev, __m512 *od) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *ev = _mm512_permutex2var_ps(a, ie, b);
    *od = _mm512_permutex2var_ps(a, io, b);
}

#define PATCH_MAXW 64 /* tiles per row split in registers at once (4 vectors a phase) */

/* Each padded row is read straight from x (masked loads give the zeros around it), split
 * 8 ways by column phase with three rounds of even/odd de-interleaving (24 permutes per
 * 128 floats) into a small buffer, whose phase rows (shifted by one tile for columns 8,
 * 9) are the 10 patch columns of the row. */
static void wino2_patch(const float *x, int64_t H, int64_t W, int64_t PT, int64_t PL, int64_t ty,
                        int64_t txa, int64_t txz, float *dst, int64_t toff, int64_t ldp) {
    float ph[8][PATCH_MAXW + 16];
    for (int64_t t0 = txa; t0 < txz; t0 += PATCH_MAXW) {
        const int64_t t1 = txz - t0 < PATCH_MAXW ? txz : t0 + PATCH_MAXW;
        for (int r = 0; r < 10; r++) {
            const int64_t iy = 8 * ty + r - PT;
            float *drow = dst + 10 * r * ldp + toff;
            if (iy < 0 || iy >= H) {
                for (int c = 0; c < 10; c++)
                    for (int64_t t = t0; t < t1; t += 16) {
                        const int64_t n = t1 - t < 16 ? t1 - t : 16;
                        _mm512_mask_storeu_ps(drow + c * ldp + t, (__mmask16)((1u << n) - 1u), _mm512_setzero_ps());
                    }
                continue;
            }
            const float *xr = x + iy * W;
            /* ph[p][j] = xp[row][8 (t0 + j) + p] for j in [0, t1 - t0 + 1) */
            for (int64_t q = 0; q < t1 - t0 + 1; q += 16) {
                __m512 v[8], e[8], f[8], o[8];
                for (int k = 0; k < 8; k++) {
                    const int64_t c0 = 8 * (t0 + q) + 16 * k - PL;
                    const int64_t lo = c0 < 0 ? -c0 : 0, hi = W - c0 < 16 ? W - c0 : 16;
                    if (hi <= lo) {
                        v[k] = _mm512_setzero_ps();
                        continue;
                    }
                    v[k] = _mm512_maskz_loadu_ps((__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)), xr + c0);
                }
                for (int k = 0; k < 4; k++) deint2(v[2 * k], v[2 * k + 1], &e[k], &e[4 + k]);
                /* e[0..3]: residue 0 mod 2, e[4..7]: 1 mod 2 */
                for (int h = 0; h < 2; h++)
                    for (int k = 0; k < 2; k++)
                        deint2(e[4 * h + 2 * k], e[4 * h + 2 * k + 1], &f[4 * h + k], &f[4 * h + 2 + k]);
                /* f[4h + 0..1]: residue h mod 4, f[4h + 2..3]: h + 2 mod 4 */
                for (int h = 0; h < 4; h++) {
                    const int res4 = h / 2 + 2 * (h % 2); /* f[2h], f[2h+1]: residue res4 mod 4 */
                    deint2(f[2 * h], f[2 * h + 1], &o[res4], &o[res4 + 4]);
                }
                for (int p = 0; p < 8; p++) _mm512_storeu_ps(ph[p] + q, o[p]);
            }
            for (int c = 0; c < 10; c++) {
                const float *sp = ph[c % 8] + c / 8 - t0;
                for (int64_t t = t0; t < t1; t += 16) {
                    const int64_t n = t1 - t < 16 ? t1 - t : 16;
                    const __mmask16 m = (__mmask16)((1u << n) - 1u);
                    _mm512_mask_storeu_ps(drow + c * ldp + t, m, _mm512_maskz_loadu_ps(m, sp + t));
                }
            }
        }
    }
}

/* Tile rows packed n to a vector: the 8 input vectors of a patch row are the padded rows
 * of the n tile rows side by side (8 (TW + 1) floats each, loaded with masks), so one
 * 8-way split serves n tile rows; a permute then packs their tiles (dropping the extra
 * column, or shifted by one for patch columns 8, 9). */
static void wino2_prows(const float *const *x, const int64_t *ty, int n, int64_t H, int64_t W,
                        int64_t PT, int64_t PL, int64_t TW, int64_t lo, int64_t hi, float *dst,
                        int64_t doff, int64_t ldp, const cf_wino2_pk *pk) {
    (void)PL;
    (void)TW;
    const __m512i pidx = _mm512_loadu_si512(pk->ix), pidx1 = _mm512_loadu_si512(pk->ix1);
    const int64_t l0 = lo < 0 ? 0 : lo, l1 = hi > 16 ? 16 : hi;
    const __mmask16 sm = (__mmask16)(((1u << l1) - 1u) & ~((1u << l0) - 1u));
    for (int r = 0; r < 10; r++) {
        __m512 v[8], e[8], f[8], o[8];
        for (int kv = 0; kv < 8; kv++) v[kv] = _mm512_setzero_ps();
        for (int k = 0; k < n; k++) {
            const int64_t iy = 8 * ty[k] + r - PT;
            if (iy < 0 || iy >= H) continue;
            const float *xr = x[k] + iy * W;
            for (int kv = 0; kv < 8; kv++)
                if (pk->lm[kv][k]) v[kv] = _mm512_mask_loadu_ps(v[kv], (__mmask16)pk->lm[kv][k], xr + pk->lof[kv][k]);
        }
        for (int k = 0; k < 4; k++) deint2(v[2 * k], v[2 * k + 1], &e[k], &e[4 + k]);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 2; k++)
                deint2(e[4 * h + 2 * k], e[4 * h + 2 * k + 1], &f[4 * h + k], &f[4 * h + 2 + k]);
        for (int h = 0; h < 4; h++) {
            const int res4 = h / 2 + 2 * (h % 2);
            deint2(f[2 * h], f[2 * h + 1], &o[res4], &o[res4 + 4]);
        }
        float *d = dst + 10 * r * ldp + doff;
        for (int c = 0; c < 8; c++) _mm512_mask_storeu_ps(d + c * ldp, sm, _mm512_permutexvar_ps(pidx, o[c]));
        _mm512_mask_storeu_ps(d + 8 * ldp, sm, _mm512_permutexvar_ps(pidx1, o[0]));
        _mm512_mask_storeu_ps(d + 9 * ldp, sm, _mm512_permutexvar_ps(pidx1, o[1]));
    }
}

cf_wino2_patch_fn cf_wino2_patch_avx512(void) { return wino2_patch; }
cf_wino2_prows_fn cf_wino2_prows_avx512(void) { return wino2_prows; }
cf_wino2_in_fn cf_wino2_in_avx512(void) { return wino2_in; }
cf_wino_out cf_wino2_out_avx512(void) { return wino2_out; }

#else
cf_wino2_patch_fn cf_wino2_patch_avx512(void) { return 0; }
cf_wino2_prows_fn cf_wino2_prows_avx512(void) { return 0; }
cf_wino2_in_fn cf_wino2_in_avx512(void) { return 0; }
cf_wino_out cf_wino2_out_avx512(void) { return 0; }
#endif
