/* conv_generic.c -- plain-C inner kernels of the fast convolutions (any x86-64, or
 * another CPU): the same blocking as the AVX levels with small tiles the compiler
 * keeps in registers. Also the level dispatch. */
#include <math.h>
#include <string.h>

#include "kernels/conv/conv_isa.h"

#define MR 4
#define NR 16

static inline void uk_body(const int R, int64_t kc, const float *a, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int nr, int accumulate,
                           const cf_tile_epi *e) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    if (nr == NR) {
        for (int64_t k = 0; k < kc; k++, a += MR, b += ldb)
            for (int i = 0; i < R; i++)
                for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];
    } else {
        for (int64_t k = 0; k < kc; k++, a += MR, b += ldb)
            for (int i = 0; i < R; i++)
                for (int j = 0; j < nr; j++) acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (accumulate)
            for (int j = 0; j < nr; j++) acc[i][j] += ci[j];
        if (e) {
            const float bi = e->bias ? e->bias[i] : 0.0f;
            const float *ri = e->res ? e->res + i * e->ldr : NULL;
            for (int j = 0; j < nr; j++) {
                float v = acc[i][j] + bi;
                if (ri) v += ri[j];
                v = v < e->lo ? e->lo : v;
                acc[i][j] = v > e->hi ? e->hi : v;
            }
        }
        for (int j = 0; j < nr; j++) ci[j] = acc[i][j];
    }
}

#define UK(R)                                                                               \
    static void uk_##R(int64_t kc, const float *a, const float *b, int64_t ldb, float *c,  \
                       int64_t ldc, int nr, int accumulate, const cf_tile_epi *e) {         \
        uk_body(R, kc, a, b, ldb, c, ldc, nr, accumulate, e);                               \
    }
UK(1)
UK(2)
UK(3)
UK(4)

static void pack_b_c(const float *src, const int64_t *koff, int64_t kc, int nsv,
                     const cf_bseg *seg, const int *first, float *dst, int ld,
                     int64_t sstride) {
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + koff[k];
        for (int v = 0; v < nsv; v++) {
            float *d = dst + v * sstride + k * ld;
            for (int j = 0; j < ld; j++) d[j] = 0.0f;
            for (int i = first[v]; i < first[v + 1]; i++)
                memcpy(d + seg[i].lane, s + seg[i].off, (size_t)seg[i].len * sizeof(float));
        }
    }
}

static void store_t_c(const float *t, int ldt, int mr, int nr, float *y, int64_t ldy,
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

static void dw_plane_c(const float *x, const int64_t *tap_off, const float *w, int ntaps,
                       float bias, int64_t OH, int64_t OW, int64_t ldx, float *y) {
    for (int64_t oy = 0; oy < OH; oy++) {
        float *yr = y + oy * OW;
        const float *xr = x + oy * ldx;
        for (int64_t ox = 0; ox < OW; ox++) yr[ox] = bias;
        for (int t = 0; t < ntaps; t++) {
            const float *s = xr + tap_off[t];
            const float wt = w[t];
            for (int64_t ox = 0; ox < OW; ox++) yr[ox] += wt * s[ox];
        }
    }
}

static void max_plane_c(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                        int64_t OW, int64_t ldx, float *y) {
    for (int64_t oy = 0; oy < OH; oy++) {
        float *yr = y + oy * OW;
        const float *xr = x + oy * ldx;
        for (int64_t ox = 0; ox < OW; ox++) yr[ox] = -INFINITY;
        for (int t = 0; t < ntaps; t++) {
            const float *s = xr + tap_off[t];
            for (int64_t ox = 0; ox < OW; ox++) yr[ox] = s[ox] > yr[ox] ? s[ox] : yr[ox];
        }
    }
}

static void avg_plane_c(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                        int64_t OW, int64_t ldx, const float *scale_y, const float *scale_x,
                        float *y) {
    for (int64_t oy = 0; oy < OH; oy++) {
        float *yr = y + oy * OW;
        const float *xr = x + oy * ldx;
        for (int64_t ox = 0; ox < OW; ox++) yr[ox] = 0.0f;
        for (int t = 0; t < ntaps; t++) {
            const float *s = xr + tap_off[t];
            for (int64_t ox = 0; ox < OW; ox++) yr[ox] += s[ox];
        }
        const float sy = scale_y[oy];
        for (int64_t ox = 0; ox < OW; ox++) yr[ox] *= sy * scale_x[ox];
    }
}

static void dw_direct_c(const cf_dw_geom *g, const float *x, const float *w, float bias,
                        float *y) {
    const int64_t PL = g->PL, DW = g->DW;
    for (int64_t oy = 0; oy < g->OH; oy++) {
        float *yr = y + oy * g->OW;
        for (int64_t ox = 0; ox < g->OW; ox++) yr[ox] = bias;
        for (int64_t ky = 0; ky < g->KH; ky++) {
            const int64_t iy = oy * g->SH - g->PT + ky * g->DH;
            if (iy < 0 || iy >= g->H) continue;
            const float *xr = x + iy * g->W;
            for (int64_t kx = 0; kx < g->KW; kx++) {
                const float wt = w[ky * g->KW + kx];
                for (int64_t ox = 0; ox < g->OW; ox++) {
                    const int64_t ix = ox * g->SW - PL + kx * DW;
                    if (ix >= 0 && ix < g->W) yr[ox] += wt * xr[ix];
                }
            }
        }
        for (int64_t ox = 0; ox < g->OW; ox++) {
            float v = yr[ox];
            v = v < g->lo ? g->lo : v;
            yr[ox] = v > g->hi ? g->hi : v;
        }
    }
}

/* ---- Winograd F(4x4, 3x3) transforms ----
 * B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *        0 4 0 -5 0 1],  A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */

static inline void bt6(const float *d, int64_t s, float *t, int64_t ts) {
    const float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    t[0] = 4 * d0 - 5 * d2 + d4;
    t[ts] = -4 * d1 - 4 * d2 + d3 + d4;
    t[2 * ts] = 4 * d1 - 4 * d2 - d3 + d4;
    t[3 * ts] = -2 * d1 - d2 + 2 * d3 + d4;
    t[4 * ts] = 2 * d1 - d2 - 2 * d3 + d4;
    t[5 * ts] = 4 * d1 - 5 * d3 + d5;
}

static inline void at6(const float *m, int64_t s, float *o, int64_t os) {
    const float m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s], m5 = m[5 * s];
    o[0] = m0 + m1 + m2 + m3 + m4;
    o[os] = m1 - m2 + 2 * (m3 - m4);
    o[2 * os] = m1 + m2 + 4 * (m3 + m4);
    o[3 * os] = m1 - m2 + 8 * (m3 - m4) + m5;
}

void cf_wino_in_c(int vl, const float *src, const int64_t *tap_off, const cf_wseg *seg, int nseg,
                  float *dst, int64_t ld) {
    for (int l = 0; l < vl; l++)
        for (int xi = 0; xi < 36; xi++) dst[xi * ld + l] = 0.0f;
    for (int sg = 0; sg < nseg; sg++)
        for (int l = seg[sg].lane; l < seg[sg].lane + seg[sg].len; l++) {
            const float *p = src + seg[sg].in + (l - seg[sg].lane);
            float d[36], t[36];
            for (int e = 0; e < 36; e++) d[e] = p[tap_off[e]];
            for (int j = 0; j < 6; j++) bt6(d + j, 6, t + j, 6);   /* columns: t = B^T d */
            for (int i = 0; i < 6; i++) bt6(t + 6 * i, 1, d + 6 * i, 1); /* rows: (B^T d) B */
            for (int xi = 0; xi < 36; xi++) dst[xi * ld + l] = d[xi];
        }
}

/* Stores lane l's 4x4 output tile o of segment s: y = clamp(o + bias + res, lo, hi),
 * only the rows and columns the segment has (shared by the plain-C output transforms). */
void cf_wino_store_tile(const float o[16], const cf_wseg *s, int l, float bias, const float *res, float *y,
                        int64_t OW, float lo, float hi) {
    const int64_t base = s->out + 4 * (int64_t)(l - s->lane);
    const int cols = l == s->lane + s->len - 1 ? s->last_cols : 4;
    for (int a = 0; a < s->rows; a++)
        for (int b = 0; b < cols; b++) {
            const int64_t q = base + a * OW + b;
            float r = o[4 * a + b] + bias;
            if (res) r += res[q];
            r = r < lo ? lo : r;
            y[q] = r > hi ? hi : r;
        }
}

void cf_wino_out_c(int vl, const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                   const float *res, float *y, int64_t OW, float lo, float hi) {
    (void)vl;
    for (int sg = 0; sg < nseg; sg++)
        for (int l = seg[sg].lane; l < seg[sg].lane + seg[sg].len; l++) {
            float v[36], t[24], o[16];
            for (int xi = 0; xi < 36; xi++) v[xi] = m[xi * ld + l];
            for (int j = 0; j < 6; j++) at6(v + j, 6, t + j, 6);   /* columns: 4 x 6 */
            for (int a = 0; a < 4; a++) at6(t + 6 * a, 1, o + 4 * a, 1);
            cf_wino_store_tile(o, &seg[sg], l, bias, res, y, OW, lo, hi);
        }
}

static void wino_in_c16(const float *src, const int64_t *tap_off, const cf_wseg *seg, int nseg,
                        float *dst, int64_t ld) {
    cf_wino_in_c(NR, src, tap_off, seg, nseg, dst, ld);
}

static void wino_out_c16(const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                         const float *res, float *y, int64_t OW, float lo, float hi) {
    cf_wino_out_c(NR, m, ld, seg, nseg, bias, res, y, OW, lo, hi);
}

/* Direct small-K convolution (conv_isa.h, cf_direct_run): the plain-C twin of the AVX-512
 * kernel, over blocks of NR pixels so the sums stay in registers. */
static void direct_run_c(const float *x, const int64_t *koff, int64_t K, const float *w,
                         int64_t ldw, int64_t M, const float *bias, const float *res,
                         int64_t ldy, int64_t n, float lo, float hi, float *y) {
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        const int nj = n - j0 < NR ? (int)(n - j0) : NR;
        for (int64_t m = 0; m < M; m++) {
            float acc[NR] = {0};
            for (int64_t k = 0; k < K; k++) {
                const float wk = w[k * ldw + m], *xk = x + koff[k] + j0;
                for (int j = 0; j < nj; j++) acc[j] += wk * xk[j];
            }
            float *yr = y + m * ldy + j0;
            const float *rr = res ? res + m * ldy + j0 : NULL;
            for (int j = 0; j < nj; j++) {
                float v = acc[j] + (bias ? bias[m] : 0.0f);
                if (rr) v += rr[j];
                v = v < lo ? lo : v; /* NaN passes, as in the micro-kernels */
                yr[j] = v > hi ? hi : v;
            }
        }
    }
}

static void deint_c(const float *src, int64_t n, int s, float *const *dst) {
    for (int r = 0; r < s; r++) {
        float *d = dst[r];
        for (int64_t j = 0; j < n; j++) d[j] = src[j * s + r];
    }
}

static const cf_kernels generic = {
    .isa = PL_ISA_REF,
    .mr = MR,
    .nr = NR,
    .ukernel = {{uk_1, uk_1}, {uk_2, uk_2}, {uk_3, uk_3}, {uk_4, uk_4}},
    .pack_b = pack_b_c,
    .store_t = store_t_c,
    .vl = NR,
    .dw_plane = dw_plane_c,
    .dw_direct = dw_direct_c,
    .deint = deint_c,
    .wino_in = wino_in_c16,
    .wino_out = wino_out_c16,
    .max_plane = max_plane_c,
    .avg_plane = avg_plane_c,
    .direct_run = direct_run_c,
};

const cf_kernels *cf_kernels_generic(void) { return &generic; }

const cf_kernels *cf_kernels_for(pl_isa isa) {
    const cf_kernels *k = NULL;
    if (isa >= PL_ISA_AVX512 && pl_cpu()->best >= PL_ISA_AVX512) k = cf_kernels_avx512();
    if (!k && isa >= PL_ISA_AVX2 && pl_cpu()->best >= PL_ISA_AVX2) k = cf_kernels_avx2();
    return k ? k : &generic;
}
