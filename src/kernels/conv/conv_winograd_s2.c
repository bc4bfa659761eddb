/* conv_winograd_s2.c -- the transforms of stride-2 3x3 Winograd (polyphase), plain C
 * (the reference twin of conv_winograd_s2_avx512.c, and the kernels of levels without
 * their own).
 *
 * With xp the zero-padded input, y[oy][ox] = sum w[ky][kx] xp[2 oy + ky][2 ox + kx]. The
 * four phases P_ab[i][j] = xp[2i + a][2j + b] make it a sum of stride-1 correlations:
 * P_00 with the 2x2 kernel of taps {0,2}x{0,2}, P_01 with {0,2}x{1} (2x1), P_10 with
 * {1}x{0,2} (1x2) and P_11 with {1}x{1}. Each is done by F(4x4, 2x2) over the points
 * 0, 1, -1, 2 and infinity (a 1-tap direction is the 2-tap kernel [w, 0], whose value at
 * infinity is 0, so those products vanish): output tile 4x4, input patch 5x5 per phase,
 * which is the 10x10 patch of xp at (8 ty, 8 tx).
 *   B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
 *   G   = [1/2 0; -1/2 -1/2; -1/6 1/6; 1/6 1/3; 0 1]
 *   A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
 * (Toom-Cook: rows of B^T are the coefficients of prod over the other finite points of
 * (x - p), G's rows p^k / prod (p - p'), A^T's columns the powers of p.) */
#include "kernels/conv/conv_plan.h"

static const double G5[5][2] = {{0.5, 0}, {-0.5, -0.5}, {-1.0 / 6, 1.0 / 6}, {1.0 / 6, 1.0 / 3}, {0, 1}};

void cf_wino2_kernel(const float *w, double u[4][25]) {
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            /* the phase's kernel: taps a, a + 2 down and b, b + 2 across (0 outside 3x3) */
            double g[2][2];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++) {
                    const int ky = a + 2 * r, kx = b + 2 * c;
                    g[r][c] = ky < 3 && kx < 3 ? (double)w[ky * 3 + kx] : 0.0;
                }
            double t[5][2];
            for (int i = 0; i < 5; i++)
                for (int c = 0; c < 2; c++) t[i][c] = G5[i][0] * g[0][c] + G5[i][1] * g[1][c];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) u[a * 2 + b][i * 5 + j] = t[i][0] * G5[j][0] + t[i][1] * G5[j][1];
        }
}

static inline void bt5(const float *d, int s, float *t, int ts) {
    const float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s];
    t[0] = 2 * d0 - d1 - 2 * d2 + d3;
    t[ts] = -2 * d1 - d2 + d3;
    t[2 * ts] = 2 * d1 - 3 * d2 + d3;
    t[3 * ts] = d3 - d1;
    t[4 * ts] = 2 * d1 - d2 - 2 * d3 + d4;
}

static inline void at5(const float *m, int s, float *o, int os) {
    const float m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s];
    o[0] = m0 + m1 + m2 + m3;
    o[os] = m1 - m2 + 2 * m3;
    o[2 * os] = m1 + m2 + 4 * m3;
    o[3 * os] = m1 - m2 + 8 * m3 + m4;
}

static void wino2_in_c(int vl, const float *src, const int64_t *tap_off, float *dst,
                       const int64_t *dst_off) {
    for (int l = 0; l < vl; l++) {
        const float *p = src + l;
        int e = 0;
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                float d[25], t[25];
                for (int i = 0; i < 5; i++)
                    for (int j = 0; j < 5; j++) d[i * 5 + j] = p[tap_off[(2 * i + a) * 10 + 2 * j + b]];
                for (int j = 0; j < 5; j++) bt5(d + j, 5, t + j, 5);   /* columns */
                for (int i = 0; i < 5; i++) bt5(t + 5 * i, 1, d + 5 * i, 1); /* rows */
                for (int i = 0; i < 5 - a; i++)
                    for (int j = 0; j < 5 - b; j++) dst[dst_off[e++] + l] = d[i * 5 + j];
            }
    }
}

static void wino2_out_c(const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                        const float *res, float *y, int64_t OW, float lo, float hi) {
    for (int sg = 0; sg < nseg; sg++)
        for (int l = seg[sg].lane; l < seg[sg].lane + seg[sg].len; l++) {
            float v[25], t[20], o[16];
            for (int xi = 0; xi < 25; xi++) v[xi] = m[xi * ld + l];
            for (int j = 0; j < 5; j++) at5(v + j, 5, t + j, 5); /* columns: 4 x 5 */
            for (int a = 0; a < 4; a++) at5(t + 5 * a, 1, o + 4 * a, 1);
            cf_wino_store_tile(o, &seg[sg], l, bias, res, y, OW, lo, hi);
        }
}

static void wino2_in_c8(const float *src, const int64_t *tap_off, float *dst, const int64_t *dst_off) {
    wino2_in_c(8, src, tap_off, dst, dst_off);
}

static void wino2_in_c16(const float *src, const int64_t *tap_off, float *dst, const int64_t *dst_off) {
    wino2_in_c(16, src, tap_off, dst, dst_off);
}

static void wino2_patch_c(const float *x, int64_t H, int64_t W, int64_t PT, int64_t PL, int64_t ty,
                          int64_t txa, int64_t txz, float *dst, int64_t toff, int64_t ldp) {
    for (int r = 0; r < 10; r++) {
        const int64_t iy = 8 * ty + r - PT;
        for (int c = 0; c < 10; c++) {
            float *d = dst + (10 * r + c) * ldp + toff;
            for (int64_t tx = txa; tx < txz; tx++) {
                const int64_t ix = 8 * tx + c - PL;
                d[tx] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[iy * W + ix] : 0.0f;
            }
        }
    }
}

static void wino2_prows_c(const float *const *x, const int64_t *ty, int n, int64_t H, int64_t W,
                          int64_t PT, int64_t PL, int64_t TW, int64_t lo, int64_t hi, float *dst,
                          int64_t doff, int64_t ldp, const cf_wino2_pk *pk) {
    (void)pk;
    for (int k = 0; k < n; k++) {
        int64_t a = lo - k * TW, b = hi - k * TW;
        a = a < 0 ? 0 : a;
        b = b > TW ? TW : b;
        if (a < b) wino2_patch_c(x[k], H, W, PT, PL, ty[k], a, b, dst, doff + k * TW, ldp);
    }
}

void cf_wino2_pk_setup(cf_wino2_pk *pk, int64_t W, int64_t PL, int64_t TW) {
    const int64_t Wph = TW + 1, rw = 8 * Wph;
    const int nmax = Wph <= 16 ? (int)(16 / Wph) : 1;
    for (int kv = 0; kv < 8; kv++)
        for (int k = 0; k < 16; k++) {
            unsigned m = 0;
            for (int l = 0; l < 16 && k < nmax; l++) {
                const int64_t s = 16 * kv + l, u = s - rw * k, col = u - PL;
                if (u >= 0 && u < rw && col >= 0 && col < W) m |= 1u << l;
            }
            pk->lm[kv][k] = (uint16_t)m;
            pk->lof[kv][k] = 16 * kv - rw * k - PL;
        }
    for (int L = 0; L < 16; L++) {
        const int32_t v = (int32_t)((L / TW) * Wph + L % TW);
        pk->ix[L] = v < 16 ? v : 15;
        pk->ix1[L] = v + 1 < 16 ? v + 1 : 15;
    }
}

void cf_wino2_select(const cf_kernels *k, cf_wino2_in_fn *in, cf_wino_out *out,
                     cf_wino2_patch_fn *patch, cf_wino2_prows_fn *prows) {
    *in = k->vl == 8 ? wino2_in_c8 : wino2_in_c16;
    *out = wino2_out_c;
    *patch = wino2_patch_c;
    *prows = wino2_prows_c;
    if (k->isa >= PL_ISA_AVX512 && k->vl == 16 && cf_wino2_in_avx512() && cf_wino2_out_avx512() &&
        cf_wino2_patch_avx512() && cf_wino2_prows_avx512()) {
        *in = cf_wino2_in_avx512();
        *out = cf_wino2_out_avx512();
        *patch = cf_wino2_patch_avx512();
        *prows = cf_wino2_prows_avx512();
    }
}
