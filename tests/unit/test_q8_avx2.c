/* test_q8_avx2.c -- the AVX2 block-sparse INT8 rows and their weight classes (qsplit.h):
 * pl_q8_avx2_classify's order and markers on groups made to fall in each class (plain,
 * P0213, P0312, split), and pl_q8_gemm on AVX2 packings against the plain reference
 * (pl_q8_gemm_ref, bit-identical) with activations at 255 where the int16 pair sums are
 * tightest: rows of one class only (split: only violating pairs), mixed rows, rows with only violating pairs, empty rows,
 * all groups non-zero, K not a multiple of 4, column counts at, below and above the 32-
 * and 64-column passes, weight and activation zero points, every output type, residuals,
 * strided outputs, 1..3 threads; and packings for the other levels left alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/qgemm/qgemm.h"
#include "kernels/qgemm/qsplit.h"

#include "check.h"

/* a group that no pairing fits: pl_q8_pack_w's two entries */
enum { SPLIT = -3 };

static int iabs(int v) { return v < 0 ? -v : v; }

/* Whether a weight pair is exact under vpmaddubsw with u8 activations: the extreme sums
 * 255 * (its positive weights) and -255 * (its negative weights' magnitudes) fit int16. */
static bool fits(int a, int b) {
    const int hi = 255 * ((a > 0 ? a : 0) + (b > 0 ? b : 0)), lo = 255 * ((a < 0 ? a : 0) + (b < 0 ? b : 0));
    return hi <= 32767 && lo >= -32768;
}

/* The class qsplit.h gives a group (0: plain). */
static int class_of(const int8_t w[4]) {
    if (fits(w[0], w[1]) && fits(w[2], w[3])) return 0;
    if (fits(w[0], w[2]) && fits(w[1], w[3])) return PL_Q8_CLS_P0213;
    if (fits(w[0], w[3]) && fits(w[1], w[2])) return PL_Q8_CLS_P0312;
    return SPLIT;
}

static int8_t sgn(int8_t v) { return rnd() % 2 ? v : (int8_t)(v == -128 ? 127 : -v); }

/* A pair of one sign (s = +-1) whose magnitudes sum to t (t <= 254), at random. */
static void same_sign(int s, int t, int8_t *a, int8_t *b) {
    const int lo = t > 127 ? t - 127 : 0, hi = t < 127 ? t : 127;
    const int x = lo + (int)(rnd() % (unsigned)(hi - lo + 1));
    const int y = t - x; /* -128 only when s < 0 */
    *a = (int8_t)(s * (x == 128 && s > 0 ? 127 : x));
    *b = (int8_t)(s * (y == 128 && s > 0 ? 127 : y));
}

/* A group of kind `want` (0 plain, -1..-3 as qsplit.h, 1: a random group); at the bound
 * (pair sums 128 and 129) half the time. Kind 2: pairs at the sign-aware bound only --
 * one sign summing to 128 or 129, or opposite signs of the largest magnitudes (-128 with
 * 127, exact although |w0| + |w1| = 255). */
static void make_group(int want, int8_t q[4]) {
    for (;;) {
        switch (want) {
        case 2:
            for (int h = 0; h < 2; h++) {
                const int s = rnd() % 2 ? 1 : -1;
                if (rnd() % 3 == 0) {
                    q[2 * h] = (int8_t)(s > 0 ? 127 : -128), q[2 * h + 1] = (int8_t)(s > 0 ? -128 : 127);
                } else {
                    same_sign(s, 128 + (int)(rnd() % 2), &q[2 * h], &q[2 * h + 1]);
                }
            }
            break;
        case 0: { /* pairs at or below 128 */
            int s = rnd() % 2 ? 128 : (int)(rnd() % 129);
            int x = (int)(rnd() % (unsigned)(s + 1));
            int s2 = rnd() % 2 ? 128 : (int)(rnd() % 129), x2 = (int)(rnd() % (unsigned)(s2 + 1));
            q[0] = sgn((int8_t)(x > 127 ? 127 : x)), q[1] = sgn((int8_t)(s - x > 127 ? 127 : s - x));
            q[2] = sgn((int8_t)(x2 > 127 ? 127 : x2)), q[3] = sgn((int8_t)(s2 - x2 > 127 ? 127 : s2 - x2));
            break;
        }
        case PL_Q8_CLS_P0213: /* (0,1) too large, (0,2) and (1,3) fit */
            q[0] = sgn((int8_t)(65 + rnd() % 63)), q[1] = sgn((int8_t)(129 - iabs(q[0]) + rnd() % 20));
            q[2] = sgn((int8_t)(rnd() % (unsigned)(129 - iabs(q[0]))));
            q[3] = sgn((int8_t)(rnd() % (unsigned)(129 - iabs(q[1]))));
            break;
        case PL_Q8_CLS_P0312:
            q[0] = sgn((int8_t)(65 + rnd() % 63)), q[1] = sgn((int8_t)(129 - iabs(q[0]) + rnd() % 20));
            q[3] = sgn((int8_t)(rnd() % (unsigned)(129 - iabs(q[0]))));
            q[2] = sgn((int8_t)(rnd() % (unsigned)(129 - iabs(q[1]))));
            break;
        case SPLIT: /* -128 and large weights everywhere */
            for (int t = 0; t < 4; t++) q[t] = rnd() % 3 ? (int8_t)-128 : sgn((int8_t)(100 + rnd() % 28));
            break;
        default:
            for (int t = 0; t < 4; t++) q[t] = (int8_t)rnd();
            if (rnd() % 3 == 0) q[rnd() % 4] = 0;
        }
        if (want == 1 || want == 2 || class_of(q) == want) return;
    }
}

/* Weights M x K: row kinds (r % 8): 0 plain only, 1 P0213 only, 2 P0312 only, 3 split
 * only, 4 empty, 5 every group non-zero and mixed, 6 a random mix with zero groups, 7
 * pairs at the sign-aware bound (make_group's kind 2). */
static void make_weights(int8_t *w, int M, int K, int density) {
    memset(w, 0, (size_t)M * (size_t)K);
    const int G = (K + 3) / 4;
    static const int kinds[4] = {0, PL_Q8_CLS_P0213, PL_Q8_CLS_P0312, SPLIT};
    for (int m = 0; m < M; m++) {
        const int kind = (m + density) % 8;
        if (kind == 4) continue;
        for (int g = 0; g < G; g++) {
            if (kind != 5 && (int)(rnd() % 100) >= density) continue;
            int8_t q[4];
            make_group(kind < 4 ? kinds[kind] : kind == 5 ? kinds[rnd() % 4] : kind == 7 ? 2 : 1, q);
            for (int t = 0; t < 4 && 4 * g + t < K; t++) w[m * K + 4 * g + t] = q[t];
        }
    }
}

/* The packed rows against the weights: every non-zero group once, the one- and
 * two-entry plain forms before the permuted ones, each with its class's weights and
 * marker; the entry count is pl_q8_pack_w's (split groups two). counts[]: groups seen
 * by class (plain, P0213, P0312, split). */
static void check_classes(const pl_q8_w *pw, const int8_t *w, int M, int K, int counts[4]) {
    const int G = (K + 3) / 4;
    int64_t ent = 0, groups = 0;
    bool ok = true;
    for (int m = 0; m < M && ok; m++) {
        int8_t *seen = calloc((size_t)G + 1, 1);
        int last_rank = 0;
        const int64_t q1 = pw->ptr[m + 1];
        for (int64_t q = pw->ptr[m]; q < q1 && ok;) {
            const int32_t g = pw->idx[q];
            const int32_t next = q + 1 < q1 ? pw->idx[q + 1] : -100;
            const int cls = next < 0 && next != -100 ? next : next == g ? SPLIT : 0;
            const int rank = cls == PL_Q8_CLS_P0213 || cls == PL_Q8_CLS_P0312;
            const int8_t *v = (const int8_t *)pw->vals + 4 * q;
            int8_t q4[4] = {0, 0, 0, 0};
            for (int t = 0; t < 4 && g >= 0 && g < G && 4 * g + t < K; t++) q4[t] = w[m * K + 4 * g + t];
            int8_t want[8] = {0};
            if (cls == 0) memcpy(want, q4, 4);
            if (cls == PL_Q8_CLS_P0213) {
                const int8_t p[8] = {q4[0], q4[2], q4[1], q4[3], 0, 0, 0, 0};
                memcpy(want, p, 8);
            }
            if (cls == PL_Q8_CLS_P0312) {
                const int8_t p[8] = {q4[0], q4[3], q4[1], q4[2], 0, 0, 0, 0};
                memcpy(want, p, 8);
            }
            if (cls == SPLIT) {
                const int8_t p[8] = {q4[0], 0, q4[2], 0, 0, q4[1], 0, q4[3]};
                memcpy(want, p, 8);
            }
            ok = g >= 0 && g < G && !seen[g] && rank >= last_rank && class_of(q4) == cls &&
                 memcmp(v, want, cls ? 8 : 4) == 0;
            CHECK(ok, "row %d entry %lld (group %d, class %d) packed wrong", m, (long long)q, g, cls);
            if (g >= 0 && g < G) seen[g] = 1;
            last_rank = rank;
            counts[-cls]++;
            groups++;
            q += cls ? 2 : 1;
            ent += cls ? 2 : 1;
        }
        for (int g = 0; g < G && ok; g++) {
            bool nz = false;
            for (int k = 4 * g; k < 4 * g + 4 && k < K; k++) nz |= w[m * K + k] != 0;
            ok = nz == (seen[g] != 0);
            CHECK(ok, "row %d group %d: non-zero %d, packed %d", m, g, nz, seen[g]);
        }
        free(seen);
    }
    CHECK(ent == pw->nent && groups == pw->nnz_groups, "entries %lld of %lld, groups %lld of %lld",
          (long long)ent, (long long)pw->nent, (long long)groups, (long long)pw->nnz_groups);
}

static size_t osize(pl_q8_out o) { return o == PL_Q8_OUT_U8 || o == PL_Q8_OUT_S8 ? 1 : 4; }

/* One AVX2 sparse product against the reference. */
static void gemm_case(int M, int K, int P, int density, bool with_zw, pl_q8_out out, bool transposed,
                      pl_threadpool *pool, int counts[4]) {
    int8_t *w = malloc((size_t)(M * K + 1));
    make_weights(w, M, K, density);
    uint8_t *a = malloc((size_t)(K * P + 1));
    for (int i = 0; i < K * P; i++) a[i] = rnd() % 4 ? 255 : (uint8_t)rnd();
    int32_t *zw = malloc(sizeof(int32_t) * (size_t)(M + 1));
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)(M + 1));
    float *scale = malloc(sizeof(float) * (size_t)(M + 1)), *fb = malloc(sizeof(float) * (size_t)(M + 1));
    for (int m = 0; m < M; m++) {
        zw[m] = with_zw ? (int32_t)(rnd() % 7) - 3 : 0;
        bias[m] = (int32_t)(rnd() % 20001) - 10000;
        scale[m] = (float)(rnd() % 1000 + 1) * 2e-6f; /* per channel */
        fb[m] = (float)((int)(rnd() % 201) - 100) * 0.01f;
    }
    if (M > 0 && rnd() % 4 == 0) scale[rnd() % M] = 3.0f; /* a row past the fast epilogue */
    float *res = malloc(sizeof(float) * (size_t)(M * P + 1));
    for (int i = 0; i < M * P; i++) res[i] = (float)((int)(rnd() % 201) - 100) * 0.1f;
    const int32_t za = rnd() % 2 ? 0 : (int32_t)(rnd() % 256);
    pl_q8_epilogue e = {.out = out, .bias_i32 = rnd() % 2 ? bias : NULL, .scale = scale,
                        .fbias = rnd() % 2 ? fb : NULL, .lo = rnd() % 2 ? 0.0f : -INFINITY,
                        .hi = rnd() % 3 ? INFINITY : 6.5f,
                        .zp = out == PL_Q8_OUT_U8 ? (int32_t)(rnd() % 256) : (int32_t)(rnd() % 256) - 128};
    if (out != PL_Q8_OUT_I32 && rnd() % 4 == 0) {
        e.res = res;
        e.rscale = 0.37f;
    }
    const int64_t ldm = transposed ? 1 : P, ldp = transposed ? M : 1;
    const size_t bytes = osize(out) * (size_t)(M * P + 1);
    void *y = malloc(bytes), *yr = malloc(bytes);
    memset(y, 0xAB, bytes);
    memset(yr, 0xAB, bytes);
    pl_q8_gemm_ref(a, P, za, w, K, with_zw ? zw : NULL, M, K, P, &e, yr, ldm, ldp);
    pl_q8_w pw;
    pl_status st = pl_q8_pack_w(&pw, w, M, K, K, with_zw ? zw : NULL, PL_Q8_AVX2, true);
    CHECK(st == PL_OK, "pack: %s", pl_error_msg());
    if (st == PL_OK) {
        check_classes(&pw, w, M, K, counts);
        uint8_t *at = malloc((size_t)(K * P + 1));
        for (int k = 0; k < K; k++)
            for (int p = 0; p < P; p++) at[p * K + k] = a[k * P + p];
        void *panel = malloc(pl_q8_panel_bytes(PL_Q8_AVX2, (K + 3) / 4 * 4, P) + 64);
        int32_t *asum = malloc(sizeof(int32_t) * (size_t)pl_q8_pp(P));
        st = pl_q8_pack_rows(PL_Q8_AVX2, at, P, K, K, 0, panel, asum, pool);
        CHECK(st == PL_OK, "pack rows: %s", pl_error_msg());
        st = pl_q8_gemm(&pw, panel, asum, P, za, &e, y, ldm, ldp, pool);
        CHECK(st == PL_OK, "gemm: %s", pl_error_msg());
        int bad = -1;
        for (int i = 0; i < M * P && bad < 0; i++)
            if (memcmp((char *)y + i * osize(out), (char *)yr + i * osize(out), osize(out))) bad = i;
        CHECK(bad < 0, "avx2 sparse M=%d K=%d P=%d density=%d zw=%d out=%d tr=%d threads=%d: element %d differs",
              M, K, P, density, with_zw, out, transposed, pl_threadpool_size(pool), bad);
        free(at);
        free(panel);
        free(asum);
        pl_q8_w_free(&pw);
    }
    free(w); free(a); free(zw); free(bias); free(scale); free(fb); free(res); free(y); free(yr);
}

/* The other levels' packings, and classifying twice, change nothing. */
static void check_left_alone(void) {
    const int M = 9, K = 37;
    int8_t *w = malloc((size_t)(M * K));
    make_weights(w, M, K, 60);
    for (int l = PL_Q8_REF; l <= PL_Q8_VNNI; l++)
        for (int sparse = 0; sparse < 2; sparse++) {
            pl_q8_w pw;
            if (pl_q8_pack_w(&pw, w, M, K, K, NULL, (pl_q8_level)l, sparse != 0) != PL_OK) continue;
            if (!sparse) {
                pl_q8_avx2_classify(&pw); /* dense: nothing to do, must not crash */
                CHECK(pw.idx == NULL, "dense packing got entries");
                pl_q8_w_free(&pw);
                continue;
            }
            int32_t *idx = malloc(sizeof(int32_t) * (size_t)(pw.nent + 1));
            int8_t *vals = malloc((size_t)(pw.nent * 4 + 4));
            memcpy(idx, pw.idx, sizeof(int32_t) * (size_t)pw.nent);
            memcpy(vals, pw.vals, (size_t)pw.nent * 4);
            pl_q8_avx2_classify(&pw);
            CHECK(!memcmp(idx, pw.idx, sizeof(int32_t) * (size_t)pw.nent) &&
                      !memcmp(vals, pw.vals, (size_t)pw.nent * 4),
                  "%s sparse packing changed by a second classification", pl_q8_level_name((pl_q8_level)l));
            bool neg = false;
            for (int64_t q = 0; q < pw.nent; q++) neg |= pw.idx[q] < 0;
            CHECK(neg == (l == PL_Q8_AVX2), "%s: markers %d", pl_q8_level_name((pl_q8_level)l), neg);
            free(idx);
            free(vals);
            pl_q8_w_free(&pw);
        }
    free(w);
}

int main(void) {
    if (pl_cpu()->best < PL_ISA_AVX2) {
        printf("test_q8_avx2: no AVX2 on this CPU, skipped\n");
        return 0;
    }
    check_left_alone();
    int counts[4] = {0, 0, 0, 0};
    static const int Ks[] = {1, 3, 4, 5, 8, 13, 64, 67, 148, 576};
    static const int Ps[] = {1, 7, 8, 17, 31, 32, 33, 49, 63, 64, 65, 96, 127, 196, 257};
    static const int dens[] = {0, 10, 35, 100};
    static const pl_q8_out outs[] = {PL_Q8_OUT_U8, PL_Q8_OUT_S8, PL_Q8_OUT_I32, PL_Q8_OUT_F32};
    for (int threads = 1; threads <= 3; threads++) {
        pl_threadpool *pool = pl_threadpool_create(threads);
        for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
            for (size_t pi = 0; pi < sizeof Ps / sizeof *Ps; pi++) {
                if ((ki + pi + (size_t)threads) % 3 && threads > 1) continue; /* a third of the shapes on 2-3 threads */
                const int M = 1 + (int)(rnd() % 23);
                const int d = dens[(ki + pi) % 4];
                const pl_q8_out o = outs[rnd() % 4];
                gemm_case(M, Ks[ki], Ps[pi], d, rnd() % 4 == 0, o, rnd() % 6 == 0, pool, counts);
            }
        /* a ResNet-50 sized row set: 64-column passes with narrow tails */
        gemm_case(64, 576, 196, 10, false, PL_Q8_OUT_U8, false, pool, counts);
        gemm_case(40, 256, 49, 12, false, PL_Q8_OUT_U8, false, pool, counts);
        pl_threadpool_destroy(pool);
    }
    CHECK(counts[0] > 0 && counts[1] > 0 && counts[2] > 0 && counts[3] > 0,
          "classes seen: plain %d, P0213 %d, P0312 %d, split %d", counts[0], counts[1], counts[2], counts[3]);
    printf("groups by class: plain %d, P0213 %d, P0312 %d, split %d\n", counts[0], counts[1], counts[2],
           counts[3]);
    printf("test_q8_avx2: %d checks, %d failures\n", cases, failures);
    return failures != 0;
}
