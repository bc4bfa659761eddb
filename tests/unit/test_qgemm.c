/* test_qgemm.c -- the INT8 GEMM engine (src/kernels/qgemm) against its unpacked
 * reference on every kernel level this CPU has: dense and block-sparse weights
 * (no zero groups, some, all; weight pairs at, below and above the AVX2 vpmaddubsw
 * bound |w0| + |w1| <= 128 with activations at 255, and the split entry counts),
 * shapes at, below, above and between the tile sizes,
 * K not a multiple of 4, weight and activation zero points, every output type and
 * epilogue term, strided (transposed) outputs, 1..3 threads; and im2col convolutions
 * (padding, stride, dilation, 1x1 and KxK) against a direct convolution; A panels from
 * row-major matrices (row stride > K, s8 flipped); the table lookup (QLut). Results
 * must be bit-identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/qgemm/qgemm.h"

#include "check.h"

static size_t osize(pl_q8_out o) { return o == PL_Q8_OUT_U8 || o == PL_Q8_OUT_S8 ? 1 : 4; }

/* sparsity: 0 none, 1 half the groups zero, 2 all zero, 3 extreme values, 4 weight pairs
 * around the AVX2 vpmaddubsw bound (|w0| + |w1| = 127..129, all-large, lone large
 * weights, zero groups) with activations mostly 255 */
static void gemm_case(pl_q8_level level, int M, int K, int P, int sparsity, bool sparse_pack,
                      bool with_zw, pl_q8_out out, bool transposed, pl_threadpool *pool) {
    cases++;
    uint8_t *a = malloc((size_t)(K * P + 1));
    int8_t *w = malloc((size_t)(M * K + 1));
    int32_t *zw = malloc(sizeof(int32_t) * (size_t)(M + 1));
    for (int i = 0; i < K * P; i++)
        a[i] = sparsity == 3 || (sparsity == 4 && rnd() % 4) ? 255 : (uint8_t)rnd();
    static const int8_t large[] = {127, -128, -127, 64, -64, 65, -65, 63, 1, 0, 100, -28, 29, -29};
    for (int m = 0; m < M; m++) {
        zw[m] = with_zw ? (int32_t)(rnd() % 21) - 10 : 0;
        for (int k = 0; k < K; k++) {
            int8_t v = sparsity == 3 ? (k % 2 ? -128 : 127)
                       : sparsity == 4 ? large[rnd() % 14] : (int8_t)rnd();
            if (sparsity == 2 || (sparsity == 1 && rnd() % 2)) v = 0;
            w[m * K + k] = v;
        }
        if (sparsity == 1 || sparsity == 4) /* zero groups of 4 */
            for (int g = 0; g < (K + 3) / 4; g++)
                if (rnd() % 2)
                    for (int k = 4 * g; k < 4 * g + 4 && k < K; k++) w[m * K + k] = 0;
    }
    const int32_t za = sparsity == 3 || (sparsity == 4 && rnd() % 2) ? 0 : (int32_t)(rnd() % 256);
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)(M + 1));
    float *scale = malloc(sizeof(float) * (size_t)(M + 1)), *fb = malloc(sizeof(float) * (size_t)(M + 1));
    for (int m = 0; m < M; m++) {
        bias[m] = (int32_t)(rnd() % 20001) - 10000;
        scale[m] = (float)(rnd() % 1000 + 1) * 1e-5f;
        fb[m] = (float)((int)(rnd() % 2001) - 1000) * 0.01f;
    }
    float *res = malloc(sizeof(float) * (size_t)(M * P + 1));
    for (int i = 0; i < M * P; i++) res[i] = (float)((int)(rnd() % 2001) - 1000) * 0.1f;
    pl_q8_epilogue e = {.out = out, .bias_i32 = rnd() % 2 ? bias : NULL, .scale = scale,
                        .lo = -INFINITY, .hi = INFINITY, .zp = out == PL_Q8_OUT_U8 ? (int32_t)(rnd() % 256) : (int32_t)(rnd() % 256) - 128};
    if (out != PL_Q8_OUT_I32) {
        if (rnd() % 2) e.fbias = fb;
        if (rnd() % 2) {
            e.res = res;
            e.rscale = 0.37f;
        }
        /* clamps at integers and at halves (the fast levels round first and clamp in
         * integers: round(-2.5) = -2 and round(3.5) = 4 must agree with clamping first) */
        static const float los[] = {0, 0, -2.5f, 1.5f, -300.0f};
        static const float his[] = {6, 6.5f, 3.5f, 300.0f};
        if (rnd() % 2) e.lo = los[rnd() % 5];
        if (rnd() % 3 == 0) e.hi = his[rnd() % 4];
        /* scales or float biases too large for rounding before clamping in int32 */
        if (M > 0 && rnd() % 8 == 0) scale[rnd() % M] = rnd() % 2 ? 1e5f : 0.3f + (float)(rnd() % 100);
        if (M > 0 && rnd() % 8 == 0) {
            fb[rnd() % M] = rnd() % 2 ? 3e9f : -3e9f;
            e.fbias = fb;
        }
    }
    const int64_t ldm = transposed ? 1 : P, ldp = transposed ? M : 1;
    const size_t bytes = osize(out) * (size_t)(M * P + 1);
    void *y = malloc(bytes), *yr = malloc(bytes);
    memset(y, 0xAB, bytes);
    memset(yr, 0xAB, bytes);
    pl_q8_gemm_ref(a, P, za, w, K, with_zw ? zw : NULL, M, K, P, &e, yr, ldm, ldp);

    pl_q8_w pw;
    pl_status st = pl_q8_pack_w(&pw, w, M, K, K, with_zw ? zw : NULL, level, sparse_pack);
    CHECK(st == PL_OK, "pack: %s", pl_error_msg());
    if (st == PL_OK && sparse_pack) { /* entries: one per non-zero group, AVX2 splits two */
        int64_t groups = 0, splits = 0;
        for (int m = 0; m < M; m++)
            for (int g = 0; g < (K + 3) / 4; g++) {
                /* per pair: the sums of its positive and of its negative weights */
                int pos[2] = {0, 0}, neg[2] = {0, 0};
                bool nz = false;
                for (int k = 4 * g; k < 4 * g + 4 && k < K; k++) {
                    nz |= w[m * K + k] != 0;
                    *(w[m * K + k] > 0 ? &pos[k % 4 / 2] : &neg[k % 4 / 2]) += abs(w[m * K + k]);
                }
                groups += nz;
                splits += nz && (pos[0] > 128 || pos[1] > 128 || neg[0] > 128 || neg[1] > 128);
            }
        CHECK(pw.nnz_groups == groups && pw.nent == groups + (level == PL_Q8_AVX2 ? splits : 0),
              "%s sparse entries %lld of %lld groups (%lld to split)", pl_q8_level_name(level),
              (long long)pw.nent, (long long)groups, (long long)splits);
    }
    /* the A panel from a P x K row-major copy (pack_rows), rows padded to ldx, s8 (the
     * sign bit flipped) half the time */
    const int ldx = K + (int)(rnd() % 3);
    const uint8_t flip = rnd() % 2 ? 0x80 : 0;
    uint8_t *at = malloc((size_t)(ldx * P + 1));
    for (int k = 0; k < K; k++)
        for (int p = 0; p < P; p++) at[p * ldx + k] = a[k * P + p] ^ flip;
    void *panel = malloc(pl_q8_panel_bytes(level, (K + 3) / 4 * 4, P) + 64);
    int32_t *asum = malloc(sizeof(int32_t) * (size_t)pl_q8_pp(P));
    st = pl_q8_pack_rows(level, at, P, K, ldx, flip, panel, asum, pool);
    CHECK(st == PL_OK, "pack rows: %s", pl_error_msg());
    st = pl_q8_gemm(&pw, panel, asum, P, za, &e, y, ldm, ldp, pool);
    CHECK(st == PL_OK, "gemm: %s", pl_error_msg());
    int bad = -1;
    for (int i = 0; i < M * P && bad < 0; i++)
        if (memcmp((char *)y + i * osize(out), (char *)yr + i * osize(out), osize(out))) bad = i;
    CHECK(bad < 0, "%s M=%d K=%d P=%d sp=%d sparse=%d zw=%d out=%d tr=%d: element %d differs",
          pl_q8_level_name(level), M, K, P, sparsity, sparse_pack, with_zw, out, transposed, bad);
    pl_q8_w_free(&pw);
    free(a); free(w); free(zw); free(bias); free(scale); free(fb); free(res); free(y); free(yr);
    free(at); free(panel); free(asum);
}

/* Direct convolution of one image (2-D) with zero points, int32 result. */
static void conv_direct(const uint8_t *x, int C, int H, int W, const int8_t *w, int M, int KH,
                        int KW, int s, int pad, int dil, int32_t za, int OH, int OW, int32_t *y) {
    for (int m = 0; m < M; m++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int32_t acc = 0;
                for (int c = 0; c < C; c++)
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++) {
                            int ih = oh * s - pad + kh * dil, iw = ow * s - pad + kw * dil;
                            int v = ih < 0 || ih >= H || iw < 0 || iw >= W ? za : x[(c * H + ih) * W + iw];
                            acc += (v - za) * w[((m * C + c) * KH + kh) * KW + kw];
                        }
                y[(m * OH + oh) * OW + ow] = acc;
            }
}

/* flip 0x80: the image holds s8 values (packed as u8 by flipping the sign bit). */
static void conv_case_f(pl_q8_level level, int C, int H, int W, int M, int KH, int KW, int s,
                        int pad, int dil, bool sparse, uint8_t flip, pl_threadpool *pool) {
    cases++;
    const int OH = (H + 2 * pad - dil * (KH - 1) - 1) / s + 1, OW = (W + 2 * pad - dil * (KW - 1) - 1) / s + 1;
    const int K = C * KH * KW, P = OH * OW;
    uint8_t *x = malloc((size_t)(C * H * W));
    int8_t *w = malloc((size_t)(M * K));
    for (int i = 0; i < C * H * W; i++) x[i] = (uint8_t)rnd();
    for (int i = 0; i < M * K; i++) w[i] = rnd() % 3 ? 0 : (int8_t)rnd();
    const int32_t za = (int32_t)(rnd() % 256);
    int32_t *yr = malloc(sizeof(int32_t) * (size_t)(M * P)), *y = malloc(sizeof(int32_t) * (size_t)(M * P));
    for (int i = 0; i < C * H * W; i++) x[i] ^= flip; /* the values the kernel sees */
    conv_direct(x, C, H, W, w, M, KH, KW, s, pad, dil, za, OH, OW, yr);
    for (int i = 0; i < C * H * W; i++) x[i] ^= flip; /* the image as stored */
    pl_q8_conv_geom g = {.ndim = 2, .C = C, .in = {H, W}, .out = {OH, OW}, .k = {KH, KW},
                         .stride = {s, s}, .pad = {pad, pad}, .dil = {dil, dil}};
    int8_t *wk = malloc((size_t)(M * K)); /* k = tap * C + c */
    for (int m = 0; m < M; m++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < KH * KW; t++) wk[m * K + t * C + c] = w[(m * C + c) * KH * KW + t];
    pl_q8_w pw;
    CHECK(pl_q8_pack_w(&pw, wk, M, K, K, NULL, level, sparse) == PL_OK, "pack");
    free(wk);
    void *panel = malloc(pl_q8_panel_bytes(level, (K + 3) / 4 * 4, P));
    CHECK(pl_q8_im2col(level, &g, x, flip, (uint8_t)za, panel, NULL, pool) == PL_OK, "im2col");
    pl_q8_epilogue e = {.out = PL_Q8_OUT_I32};
    CHECK(pl_q8_gemm(&pw, panel, NULL, P, za, &e, y, P, 1, pool) == PL_OK, "gemm");
    CHECK(!memcmp(y, yr, sizeof(int32_t) * (size_t)(M * P)),
          "conv %s C=%d %dx%d M=%d k=%dx%d s=%d pad=%d dil=%d sparse=%d flip=%d differs",
          pl_q8_level_name(level), C, H, W, M, KH, KW, s, pad, dil, sparse, flip);
    pl_q8_w_free(&pw);
    free(x); free(w); free(y); free(yr); free(panel);
}

static void conv_case(pl_q8_level level, int C, int H, int W, int M, int KH, int KW, int s, int pad,
                      int dil, bool sparse, pl_threadpool *pool) {
    conv_case_f(level, C, H, W, M, KH, KW, s, pad, dil, sparse, 0, pool);
}

/* The implicit-GEMM convolution (pl_q8_iconv_run, VNNI) against the reference GEMM on
 * an im2col matrix built here: every output type and epilogue term, zero points 0 / 128 /
 * 255 and random, per-channel scales (some too large for the fast form), weights at the
 * extremes with activations at 255 (the vpmaddubsw pair bound is violated: VNNI has no
 * such bound), whole zero groups, 1..3 threads, epilogue made by the caller or not.
 * Where pl_q8_iconv_ok refuses the geometry, checks that it does. */
static void iconv_case(pl_q8_level level, int C, int H, int W, int M, int KH, int KW, int s, int pad,
                       int dil, int zmode, pl_q8_out out, bool prepared, pl_threadpool *pool) {
    cases++;
    const int OH = (H + 2 * pad - dil * (KH - 1) - 1) / s + 1, OW = (W + 2 * pad - dil * (KW - 1) - 1) / s + 1;
    const int K = C * KH * KW, P = OH * OW, T = KH * KW;
    pl_q8_conv_geom g = {.ndim = 2, .C = C, .in = {H, W}, .out = {OH, OW}, .k = {KH, KW},
                         .stride = {s, s}, .pad = {pad, pad}, .dil = {dil, dil}};
    const bool extreme = rnd() % 3 == 0;
    uint8_t *x = malloc((size_t)(C * H * W + 1));
    for (int i = 0; i < C * H * W; i++) x[i] = extreme ? 255 : (uint8_t)rnd();
    int8_t *wk = malloc((size_t)(M * K + 1)); /* k = tap * C + c */
    for (int i = 0; i < M * K; i++) wk[i] = extreme ? (i % 2 ? -128 : 127) : (int8_t)rnd();
    for (int i = 0; i + 4 <= M * K; i += 4)
        if (rnd() % 4 == 0) memset(wk + i, 0, 4);
    const int32_t za = zmode == 0 ? 0 : zmode == 1 ? 128 : zmode == 2 ? 255 : (int32_t)(rnd() % 256);
    /* the im2col matrix a[k][p], taps outside the image at the zero point */
    uint8_t *a = malloc((size_t)(K * P + 1));
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    const int ih = oh * s + t / KW * dil - pad, iw = ow * s + t % KW * dil - pad;
                    a[(t * C + c) * P + oh * OW + ow] =
                        ih < 0 || ih >= H || iw < 0 || iw >= W ? (uint8_t)za : x[(c * H + ih) * W + iw];
                }
    float *scale = malloc(sizeof(float) * (size_t)M), *fb = malloc(sizeof(float) * (size_t)M);
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)M);
    for (int m = 0; m < M; m++) {
        scale[m] = (float)(rnd() % 1000 + 1) * 1e-5f;
        fb[m] = (float)((int)(rnd() % 2001) - 1000) * 0.01f;
        bias[m] = (int32_t)(rnd() % 20001) - 10000;
    }
    if (rnd() % 4 == 0) scale[rnd() % M] = 0.3f + (float)(rnd() % 100);
    float *res = malloc(sizeof(float) * (size_t)(M * P));
    for (int i = 0; i < M * P; i++) res[i] = (float)((int)(rnd() % 2001) - 1000) * 0.1f;
    pl_q8_epilogue e = {.out = out, .scale = scale, .bias_i32 = rnd() % 2 ? bias : NULL,
                        .lo = -INFINITY, .hi = INFINITY,
                        .zp = out == PL_Q8_OUT_U8 ? (int32_t)(rnd() % 256) : (int32_t)(rnd() % 256) - 128};
    if (out != PL_Q8_OUT_I32) {
        if (rnd() % 2) e.fbias = fb;
        if (rnd() % 4 == 0) {
            e.res = res;
            e.rscale = 0.37f;
        }
        if (rnd() % 2) e.lo = rnd() % 2 ? 0.0f : -2.5f;
        if (rnd() % 3 == 0) e.hi = 6.5f;
    }
    const size_t os = osize(out);
    char *yr = malloc(os * (size_t)(M * P)), *y = malloc(os * (size_t)(M * P));
    memset(y, 0xa5, os * (size_t)(M * P));
    pl_q8_gemm_ref(a, P, za, wk, K, NULL, M, K, P, &e, yr, P, 1);
    pl_q8_w pw;
    CHECK(pl_q8_pack_w(&pw, wk, M, K, K, NULL, level, false) == PL_OK, "pack");
    const bool ok = pl_q8_iconv_ok(level, &g, &pw, 0);
    const bool want = level == PL_Q8_VNNI && C % 4 == 0 && OW >= 5 && T >= 2;
    CHECK(ok == want, "iconv_ok %d for %s C=%d OW=%d taps=%d", ok, pl_q8_level_name(level), C, OW, T);
    if (ok) {
        CHECK(!pl_q8_iconv_ok(level, &g, &pw, 0x80), "iconv_ok takes a flipped input");
        void *scratch = malloc(pl_q8_iconv_bytes(&g));
        int32_t *off = malloc((sizeof(int32_t) + 1) * (size_t)pl_q8_epi_rows(M));
        pl_q8_epilogue ex = e;
        if (prepared) pl_q8_epi_prepare(&pw, za, &e, off, (uint8_t *)(off + pl_q8_epi_rows(M)), &ex);
        CHECK(pl_q8_iconv_run(&pw, &g, x, (uint8_t)za, za, &ex, y, P, scratch, pool) == PL_OK,
              "iconv_run: %s", pl_error_msg());
        CHECK(!memcmp(y, yr, os * (size_t)(M * P)),
              "iconv C=%d %dx%d M=%d k=%dx%d s=%d pad=%d dil=%d za=%d out=%d prepared=%d differs",
              C, H, W, M, KH, KW, s, pad, dil, za, (int)out, prepared);
        free(scratch);
        free(off);
    }
    pl_q8_w_free(&pw);
    free(x); free(wk); free(a); free(scale); free(fb); free(bias); free(res); free(yr); free(y);
}

static void iconv_cases(pl_q8_level level, pl_threadpool *const pools[3]) {
    static const pl_q8_out outs[] = {PL_Q8_OUT_U8, PL_Q8_OUT_S8, PL_Q8_OUT_F32, PL_Q8_OUT_I32};
    int n = 0;
    /* planes 1x1 .. 9x9, 3x3 with padding 1 (stride 1 and 2) and without */
    for (int hw = 1; hw <= 9; hw++)
        for (int s = 1; s <= 2; s++) {
            iconv_case(level, 8, hw, hw, 13, 3, 3, s, 1, 1, n % 4, outs[n % 4], n % 2, pools[n % 3]);
            n++;
            if (hw >= 3) iconv_case(level, 4, hw, hw + 2, 24, 3, 3, s, 0, 1, n % 4, outs[n % 4], n % 2, pools[n % 3]);
            n++;
        }
    /* channel counts not a multiple of 4 (refused), 4 / 16 / 20 / 64 / 68 channels; row
     * tiles of 4, 8, 12 rows and 1 row; 56x56 and 28x28 (one and two row runs per 16
     * columns), 14x14 (P = 196: a gemv tail), 7x7 (three runs) */
    iconv_case(level, 3, 10, 10, 12, 3, 3, 1, 1, 1, 3, PL_Q8_OUT_U8, true, pools[1]);
    iconv_case(level, 6, 12, 9, 5, 3, 3, 2, 1, 1, 3, PL_Q8_OUT_U8, true, NULL);
    iconv_case(level, 64, 56, 56, 64, 3, 3, 1, 1, 1, 3, PL_Q8_OUT_U8, true, pools[1]);
    iconv_case(level, 16, 56, 56, 20, 3, 3, 2, 1, 1, 0, PL_Q8_OUT_U8, false, pools[2]);
    iconv_case(level, 20, 28, 28, 28, 3, 3, 1, 1, 1, 1, PL_Q8_OUT_S8, true, NULL);
    iconv_case(level, 68, 14, 14, 16, 3, 3, 1, 1, 1, 2, PL_Q8_OUT_U8, true, pools[1]);
    iconv_case(level, 64, 14, 14, 12, 3, 3, 2, 1, 1, 3, PL_Q8_OUT_F32, true, pools[2]);
    iconv_case(level, 128, 7, 7, 25, 3, 3, 1, 1, 1, 3, PL_Q8_OUT_U8, true, pools[1]);
    iconv_case(level, 4, 7, 7, 1, 3, 3, 1, 1, 1, 3, PL_Q8_OUT_U8, false, NULL);
    /* other kernels, dilation, wide rows, pads larger than the kernel's reach */
    iconv_case(level, 8, 17, 23, 9, 5, 5, 1, 2, 1, 3, PL_Q8_OUT_U8, true, pools[2]);
    iconv_case(level, 12, 19, 21, 14, 5, 5, 2, 2, 1, 3, PL_Q8_OUT_S8, true, pools[1]);
    iconv_case(level, 8, 16, 16, 10, 3, 3, 1, 2, 2, 3, PL_Q8_OUT_U8, true, NULL);
    iconv_case(level, 8, 15, 17, 11, 3, 3, 2, 2, 2, 1, PL_Q8_OUT_U8, false, pools[2]);
    iconv_case(level, 4, 9, 70, 7, 1, 3, 1, 0, 1, 3, PL_Q8_OUT_U8, true, pools[1]);
    iconv_case(level, 4, 9, 40, 7, 2, 2, 2, 0, 1, 3, PL_Q8_OUT_I32, true, pools[1]);
    iconv_case(level, 8, 6, 6, 12, 3, 3, 1, 3, 1, 3, PL_Q8_OUT_U8, true, NULL);
    iconv_case(level, 8, 5, 133, 12, 3, 3, 1, 1, 1, 3, PL_Q8_OUT_U8, true, pools[2]);
}

/* The SIMD packing helpers against their plain definitions, at every length around
 * their block sizes (16, 32, 64) and at exact row ends (reads past n would show under
 * ASan: the rows are allocated to their exact lengths). */
static void pack_helpers_case(pl_q8_level level) {
    for (int64_t n = 0; n <= 200; n++) {
        cases++;
        uint8_t *r[4], *src = malloc((size_t)(2 * n + 1)), *d = malloc((size_t)(4 * n + 1));
        uint8_t *c = malloc((size_t)n + 1);
        const int64_t n32 = n > 0 ? 2 * n - 1 : 1; /* exactly what the gather may read */
        uint32_t *s32 = malloc(sizeof(uint32_t) * (size_t)n32), *d32 = malloc(sizeof(uint32_t) * (size_t)(n + 1));
        for (int64_t i = 0; i < n32; i++) s32[i] = (uint32_t)rnd() * 2654435761u;
        for (int t = 0; t < 4; t++) {
            r[t] = malloc((size_t)(2 * n + 1));
            for (int64_t i = 0; i < 2 * n + 1; i++) r[t][i] = (uint8_t)rnd();
        }
        for (int64_t i = 0; i < 2 * n + 1; i++) src[i] = (uint8_t)rnd();
        bool ok = true;
        const uint8_t *const rc[4] = {r[0], r[1], r[2], r[3]};
        if (level == PL_Q8_VNNI) {
            pl_q8_interleave4_avx512(rc, n, d);
            for (int64_t i = 0; i < 4 * n; i++) ok &= d[i] == r[i % 4][i / 4];
            pl_q8_interleave4_s2_avx512(rc, n, d);
            for (int64_t i = 0; i < 4 * n; i++) ok &= d[i] == r[i % 4][2 * (i / 4)];
            pl_q8_copy_s2_avx512(src, n, c, 0x80);
            for (int64_t i = 0; i < n; i++) ok &= c[i] == (src[2 * i] ^ 0x80);
        } else if (level == PL_Q8_AVX2) {
            pl_q8_interleave4_avx2(rc, n, d);
            for (int64_t i = 0; i < 4 * n; i++) ok &= d[i] == r[i % 4][i / 4];
            if (n > 0) { /* reads src[0 .. 2n - 2] only */
                pl_q8_gather_dw_s2_avx2(s32, n, d32);
                for (int64_t i = 0; i < n; i++) ok &= d32[i] == s32[2 * i];
            }
            pl_q8_copy_s2_avx2(src, n, c, 0x80);
            for (int64_t i = 0; i < n; i++) ok &= c[i] == (src[2 * i] ^ 0x80);
        }
        CHECK(ok, "packing helpers %s n=%lld differ", pl_q8_level_name(level), (long long)n);
        for (int t = 0; t < 4; t++) free(r[t]);
        free(src);
        free(d);
        free(c);
        free(s32);
        free(d32);
    }
}

/* QLinearAdd's kernel on every level against the plain formula (lengths around the
 * vector widths, clamps in and out of range). */
static void add_case(int64_t n, pl_threadpool *pool) {
    cases++;
    uint8_t *a = malloc((size_t)n + 1), *b = malloc((size_t)n + 1), *y = malloc((size_t)n + 1);
    for (int64_t i = 0; i < n; i++) {
        a[i] = (uint8_t)rnd();
        b[i] = (uint8_t)rnd();
    }
    const float ra = (float)(rnd() % 1000 + 1) / 700.0f, rb = (float)(rnd() % 1000 + 1) / 900.0f;
    const int za = (int)(rnd() % 256), zb = (int)(rnd() % 256), zy = (int)(rnd() % 256);
    const float fixed = (float)zy - (ra * (float)za + rb * (float)zb);
    /* clamps at halves too: the vector level rounds first and clamps in integers */
    static const float los[] = {0.0f, 10.5f, 11.5f};
    const pl_q8_add_params p = {ra, rb, fixed, rnd() % 2 ? (float)zy : los[rnd() % 3],
                                rnd() % 3 ? 255.0f : rnd() % 2 ? 200.5f : 201.5f};
    pl_q8_add_u8(a, b, y, n, &p, pool);
    int bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++) {
        float v = fmaf((float)a[i], ra, fmaf((float)b[i], rb, fixed));
        v = fminf(fmaxf(v, p.lo), p.hi);
        if (y[i] != (uint8_t)(int32_t)nearbyintf(v)) bad = (int)i;
    }
    CHECK(bad < 0, "add %s n=%lld: element %d differs", pl_q8_level_name(pl_q8_level_now()), (long long)n, bad);
    free(a);
    free(b);
    free(y);
}

/* The table lookup (QLut) on every level, lengths around the vector widths, against
 * the plain lookup; every byte value occurs when n >= 256. */
static void lut_case(int64_t n, pl_threadpool *pool) {
    cases++;
    uint8_t t[256], *x = malloc((size_t)n + 1), *y = malloc((size_t)n + 2);
    for (int i = 0; i < 256; i++) t[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < n; i++) x[i] = (uint8_t)(i < 256 ? 255 - i : rnd());
    y[n] = 0xA5;
    pl_q8_lut(x, y, n, t, pool);
    int bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (y[i] != t[x[i]]) bad = (int)i;
    CHECK(bad < 0, "lut %s n=%lld: element %d differs", pl_q8_level_name(pl_q8_level_now()), (long long)n, bad);
    CHECK(y[n] == 0xA5, "lut n=%lld: wrote past the end", (long long)n);
    free(x);
    free(y);
}

/* The depthwise kernels: each level's raw sums against the plain definition (ref.c),
 * and pl_q8_dwconv's int32 output against the direct convolution of every channel. */
static void dw_case(pl_q8_level level, int C, int H, int W, int KH, int KW, int s, int pad, int dil,
                    pl_threadpool *pool) {
    cases++;
    const int OH = (H + 2 * pad - dil * (KH - 1) - 1) / s + 1,
              OW = (W + 2 * pad - dil * (KW - 1) - 1) / s + 1;
    const int P = OH * OW, T = KH * KW;
    uint8_t *x = malloc((size_t)(C * H * W));
    int8_t *w = malloc((size_t)(C * T));
    for (int i = 0; i < C * H * W; i++) x[i] = (uint8_t)rnd();
    for (int i = 0; i < C * T; i++) w[i] = (int8_t)rnd();
    const int32_t za = (int32_t)(rnd() % 256);
    pl_q8_conv_geom g = {.ndim = 2,
                         .C = 1,
                         .in = {H, W},
                         .out = {OH, OW},
                         .k = {KH, KW},
                         .stride = {s, s},
                         .pad = {pad, pad},
                         .dil = {dil, dil}};
    int32_t *r = malloc(sizeof(int32_t) * (size_t)P), *f = malloc(sizeof(int32_t) * (size_t)P);
    void *scratch = malloc(pl_q8_dw_scratch_bytes(&g));
    pl_q8_dw_raw_ref(&g, x, (uint8_t)za, w, r);
    if (level != PL_Q8_REF) {
        if (level == PL_Q8_VNNI)
            pl_q8_dw_raw_avx512(&g, x, (uint8_t)za, w, f, scratch);
        else
            pl_q8_dw_raw_avx2(&g, x, (uint8_t)za, w, f, scratch);
        CHECK(!memcmp(r, f, sizeof(int32_t) * (size_t)P),
              "dw raw %s %dx%d k%dx%d s%d p%d d%d differs", pl_q8_level_name(level), H, W, KH, KW,
              s, pad, dil);
    }
    pl_q8_w *pw = calloc((size_t)C, sizeof *pw);
    for (int c = 0; c < C; c++)
        CHECK(pl_q8_pack_w(&pw[c], w + c * T, 1, T, T, NULL, level, false) == PL_OK, "pack");
    int32_t *y = malloc(sizeof(int32_t) * (size_t)(C * P)),
            *yr = malloc(sizeof(int32_t) * (size_t)P);
    pl_q8_epilogue e = {.out = PL_Q8_OUT_I32};
    CHECK(pl_q8_dwconv(pw, C, &g, x, za, &e, y, pool) == PL_OK, "dwconv: %s", pl_error_msg());
    for (int c = 0; c < C; c++) {
        conv_direct(x + c * H * W, 1, H, W, w + c * T, 1, KH, KW, s, pad, dil, za, OH, OW, yr);
        CHECK(!memcmp(y + c * P, yr, sizeof(int32_t) * (size_t)P),
              "dwconv %s C=%d %dx%d k%dx%d s%d: channel %d differs", pl_q8_level_name(level), C, H,
              W, KH, KW, s, c);
    }
    for (int c = 0; c < C; c++) pl_q8_w_free(&pw[c]);
    free(pw);
    free(x);
    free(w);
    free(r);
    free(f);
    free(scratch);
    free(y);
    free(yr);
}

/* 2-D max pooling of one plane against the plain definition (windows clipped to the
 * plane, s8 data through flip), widths around the 64-byte vector. */
static void maxpool_case(int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                         uint8_t flip) {
    cases++;
    const int OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1;
    uint8_t *x = malloc((size_t)(H * W)), *y = malloc((size_t)(OH * OW)),
            *tmp = malloc((size_t)(H * OW));
    for (int i = 0; i < H * W; i++) x[i] = (uint8_t)rnd();
    const int64_t k[2] = {kh, kw}, st[2] = {sh, sw}, pad[2] = {ph, pw};
    pl_q8_maxpool2d(x, H, W, y, OH, OW, k, st, pad, flip, tmp);
    int bad = -1;
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            int m = -1000;
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++) {
                    int h = oh * sh - ph + i, w = ow * sw - pw + j;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    int v = flip ? (int8_t)x[h * W + w] : x[h * W + w];
                    m = v > m ? v : m;
                }
            if (m == -1000) m = flip ? -128 : 0;
            int got = flip ? (int8_t)y[oh * OW + ow] : y[oh * OW + ow];
            if (got != m && bad < 0) bad = oh * OW + ow;
        }
    CHECK(bad < 0, "maxpool %s %dx%d k%dx%d s%dx%d p%dx%d flip=%d: output %d differs",
          pl_q8_level_name(pl_q8_level_now()), H, W, kh, kw, sh, sw, ph, pw, flip, bad);
    free(x);
    free(y);
    free(tmp);
}

int main(void) {
    pl_threadpool *pools[3] = {NULL, pl_threadpool_create(2), pl_threadpool_create(3)};
    static const int Ms[] = {1, 5, 6, 7, 11, 12, 13, 25};
    static const int Ks[] = {1, 3, 4, 5, 8, 63, 64, 67};
    /* P tails: 1..8 columns (gemv), 9..16 (16-column tile), 17..24 (16 + gemv), more */
    static const int Ps[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 129, 20, 24, 25, 49, 41};
    for (int isa = 0; isa < PL_ISA_COUNT; isa++) {
        if (pl_cpu_force_isa(isa) != (pl_isa)isa) continue;
        pl_q8_level level = pl_q8_level_now();
        if (isa == PL_ISA_AVX512 && level != PL_Q8_VNNI) continue;
        printf("level %s\n", pl_q8_level_name(level));
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++)
                for (int k = 0; k < 16; k++) {
                    int sp = (int)(rnd() % 5);
                    gemm_case(level, Ms[i], Ks[j], Ps[k], sp, rnd() % 2, rnd() % 4 == 0,
                              (pl_q8_out)(rnd() % 4), rnd() % 5 == 0, pools[rnd() % 3]);
                }
        /* K >= 1024: gemv for up to 8 tail columns (P = 196 = 6 * 32 + 4, 49 = 48 + 1) */
        gemm_case(level, 25, 1030, 196, 0, false, false, PL_Q8_OUT_U8, false, pools[1]);
        gemm_case(level, 13, 1024, 49, 1, true, false, PL_Q8_OUT_S8, false, pools[2]);
        gemm_case(level, 12, 1100, 40, 0, true, true, PL_Q8_OUT_F32, false, NULL);
        gemm_case(level, 7, 1028, 56, 0, false, false, PL_Q8_OUT_I32, true, pools[1]);
        /* every sparse packing edge: all zero, none zero */
        for (int sp = 0; sp < 5; sp++)
            gemm_case(level, 13, 67, 129, sp, true, false, PL_Q8_OUT_U8, false, pools[1]);
        /* the AVX2 pair bound on every output type, long sparse rows, dense and sparse */
        for (int i = 0; i < 16; i++)
            gemm_case(level, 1 + i * 3, 4 + i * 37, 1 + i * 21, 3 + i % 2, i % 4 != 3, false,
                      (pl_q8_out)(i % 4), i % 5 == 4, pools[i % 3]);
        gemm_case(level, 0, 8, 8, 0, false, false, PL_Q8_OUT_F32, false, NULL);
        gemm_case(level, 4, 0, 8, 0, false, false, PL_Q8_OUT_I32, false, NULL);
        gemm_case(level, 4, 0, 8, 0, true, false, PL_Q8_OUT_U8, false, NULL);
        conv_case(level, 3, 9, 11, 5, 3, 3, 1, 1, 1, false, pools[1]);
        conv_case(level, 3, 9, 11, 5, 3, 3, 1, 1, 1, true, pools[1]);
        conv_case(level, 8, 7, 7, 13, 1, 1, 1, 0, 1, false, pools[2]);
        conv_case(level, 5, 12, 10, 7, 3, 3, 2, 1, 1, true, NULL);
        conv_case(level, 4, 13, 13, 6, 7, 7, 2, 3, 1, false, pools[1]);
        conv_case(level, 6, 10, 10, 12, 3, 3, 1, 2, 2, false, pools[1]);
        conv_case(level, 16, 8, 8, 24, 1, 1, 2, 0, 1, true, pools[1]);
        conv_case(level, 2, 3, 3, 3, 5, 5, 1, 2, 1, false, NULL);
        /* channels a multiple of 4: the direct 2-D panel path */
        conv_case(level, 8, 9, 11, 5, 3, 3, 1, 1, 1, false, pools[1]);
        conv_case(level, 8, 9, 37, 13, 3, 3, 1, 1, 1, true, pools[2]);
        conv_case(level, 12, 10, 10, 7, 3, 3, 2, 1, 1, false, pools[1]);
        conv_case(level, 8, 10, 10, 12, 3, 3, 1, 2, 2, true, NULL);
        conv_case(level, 4, 5, 40, 3, 1, 5, 1, 0, 1, false, NULL);
        conv_case(level, 16, 17, 19, 25, 1, 1, 1, 0, 1, false, pools[1]);
        /* rows long enough for the vector packing paths (64-column blocks and tails):
         * the first conv of an image net (3 channels, 7x7 stride 2), stride-2 3x3 and
         * 1x1, stride-1 rows of 150, s8 images */
        conv_case(level, 3, 20, 151, 5, 7, 7, 2, 3, 1, false, pools[1]);
        conv_case_f(level, 3, 9, 140, 4, 7, 7, 2, 3, 1, true, 0x80, pools[2]);
        conv_case(level, 8, 9, 200, 13, 3, 3, 2, 1, 1, false, pools[1]);
        conv_case(level, 4, 5, 257, 6, 3, 3, 2, 1, 1, true, NULL);
        conv_case(level, 8, 6, 141, 7, 1, 1, 2, 0, 1, false, pools[2]);
        conv_case(level, 8, 6, 150, 13, 3, 3, 1, 1, 1, false, pools[1]);
        conv_case_f(level, 8, 5, 130, 5, 3, 3, 1, 1, 1, false, 0x80, NULL);
        /* the padded-image packing: stride 2 with dilation and padding, wide rows */
        conv_case(level, 8, 11, 23, 5, 3, 3, 2, 2, 2, false, pools[1]);
        conv_case(level, 4, 9, 140, 6, 5, 5, 2, 2, 1, true, pools[2]);
        conv_case(level, 12, 7, 66, 9, 2, 2, 2, 0, 1, false, NULL);
        pack_helpers_case(level);
        iconv_cases(level, pools);
        /* depthwise: 1x1 up to 112-wide planes, 3x3 / 5x5 / 7x7, stride 1 and 2, dilation */
        static const int dws[] = {1, 2, 3, 7, 14, 17, 28, 56, 112};
        for (int i = 0; i < 9; i++) {
            dw_case(level, 5, dws[i], dws[i], 3, 3, 1, 1, 1, pools[i % 3]);
            dw_case(level, 3, dws[i], dws[i] + 3, 3, 3, 2, 1, 1, pools[(i + 1) % 3]);
        }
        dw_case(level, 4, 9, 13, 5, 5, 1, 2, 1, pools[1]);
        dw_case(level, 2, 11, 10, 3, 3, 1, 2, 2, NULL);
        dw_case(level, 3, 7, 7, 7, 7, 1, 3, 1, pools[2]);
        dw_case(level, 2, 8, 9, 3, 3, 1, 0, 1, NULL);
        dw_case(level, 2, 6, 6, 1, 1, 1, 0, 1, NULL);
        dw_case(level, 3, 17, 19, 5, 5, 2, 3, 2, pools[1]);
        dw_case(level, 2, 16, 16, 3, 3, 2, 0, 1, NULL);
        dw_case(level, 2, 15, 9, 3, 3, 2, 2, 2, pools[2]);
        /* widths whose row-pass tails (stride 1 and 2) end at every offset near 32 */
        static const int pw_[] = {1, 7, 33, 34, 35, 36, 63, 64, 65, 66, 67, 68, 69, 70, 100, 112, 129, 200};
        for (int i = 0; i < 18; i++) {
            maxpool_case(5, pw_[i], 3, 3, 2, 2, 1, 1, 0);
            maxpool_case(4, pw_[i], 3, 3, 1, 1, 1, 1, 0x80);
            maxpool_case(6, pw_[i], 2, 2, 2, 2, 0, 0, (uint8_t)(i % 2 ? 0x80 : 0));
            maxpool_case(3, pw_[i], 1, 5, 1, 2, 0, 2, 0);
            maxpool_case(3, pw_[i], 2, 4, 1, 3, 1, 1, 0);
        }
        static const int64_t ns[] = {0, 1, 7, 8, 9, 15, 16, 17, 33, 100, 40000, 64, 130, 191, 4096};
        for (int i = 0; i < 15; i++) add_case(ns[i], pools[i % 3]);
        for (int i = 0; i < 20; i++) add_case(1000 + i, pools[i % 3]);
        static const int64_t lns[] = {0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 257, 1000, 70000, 100001};
        for (int i = 0; i < 18; i++) lut_case(lns[i], pools[i % 3]);
    }
    pl_cpu_force_isa(-1);
    /* errors */
    pl_q8_w pw;
    CHECK(pl_q8_pack_w(&pw, NULL, 3, 4, 2, NULL, PL_Q8_REF, false) != PL_OK &&
              strstr(pl_error_msg(), "bad weight sizes"),
          "bad sizes not reported: %s", pl_error_msg());
    int8_t w1[4] = {1, 2, 3, 4};
    int32_t zw1 = 3;
    CHECK(pl_q8_pack_w(&pw, w1, 1, 4, 4, &zw1, PL_Q8_REF, false) == PL_OK, "pack zw");
    pl_q8_epilogue e = {.out = PL_Q8_OUT_I32};
    int32_t y;
    CHECK(pl_q8_gemm(&pw, w1, NULL, 1, 0, &e, &y, 1, 1, NULL) != PL_OK &&
              strstr(pl_error_msg(), "column sums"),
          "missing asum not reported");
    pl_q8_w_free(&pw);
    for (int i = 1; i < 3; i++) pl_threadpool_destroy(pools[i]);
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
