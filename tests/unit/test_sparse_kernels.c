/* test_sparse_kernels.c -- the sparse float32 kernels (kernels/sparse/sparse.h) against
 * their plain-C twin and a dense reference, and the SPARSE convolution algorithm
 * (kernels/conv/conv_fast.h) against pl_f32_conv_ref, on every kernel level this CPU has:
 * sizes at, below, above and between the vector and block widths (8- and 16-vector
 * blocks), n = 1, empty rows and matrices, fully dense rows, negative zeros, the koff
 * and ldb forms, row ranges, every epilogue; convolutions 1x1/3x3/5x5, strides 1/2/3
 * (strided 1x1 without padding: the subsampling path), padding, groups, bias, residual
 * and activations at several sparsities, serial and on 2- and 3-thread pools.
 *
 *   test_sparse_kernels [--quick] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/sparse/sparse.h"

#include "check.h"
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

static float *rand_buf(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

/* Zeroes a fraction `zf` of w (some as -0.0f); row `dense_row` (if >= 0) kept whole. */
static void prune(float *w, int64_t M, int64_t K, double zf, int64_t dense_row) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            if (m != dense_row && (double)(rnd() % 100000) / 100000.0 < zf)
                w[m * K + k] = rnd() % 4 ? 0.0f : -0.0f;
}

static const pl_sgemm_act acts[] = {PL_SGEMM_ACT_NONE,    PL_SGEMM_ACT_RELU,
                                    PL_SGEMM_ACT_CLIP,    PL_SGEMM_ACT_LEAKY_RELU,
                                    PL_SGEMM_ACT_SIGMOID, PL_SGEMM_ACT_HARDSWISH,
                                    PL_SGEMM_ACT_GELU_ERF, PL_SGEMM_ACT_GELU_TANH};
#define NACTS ((int)(sizeof acts / sizeof acts[0]))

/* One product case: W (M x K, zero fraction zf) times B (K rows of n, row pitch ldb or
 * through koff), rows [m0, m1), epilogue variant ev (bits: row bias, col bias, residual;
 * act index). */
static void mm_case(int64_t M, int64_t K, int64_t n, double zf, bool use_koff, bool transposed_w,
                    int ev, int act) {
    const int64_t ldb = n + (int64_t)(rnd() % 5), ldy = n + (int64_t)(rnd() % 3);
    float *W = rand_buf(M * K);
    prune(W, M, K, zf, M > 2 && zf < 1.0 ? M / 2 : -1);
    /* koff: rows of B in scrambled order and spacing */
    int64_t *koff = malloc(sizeof(int64_t) * (size_t)(K > 0 ? K : 1));
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(K > 0 ? K : 1));
    for (int64_t k = 0; k < K; k++) perm[k] = k;
    for (int64_t k = K - 1; k > 0; k--) {
        int64_t r = (int64_t)(rnd() % (uint32_t)(k + 1)), t = perm[k];
        perm[k] = perm[r];
        perm[r] = t;
    }
    const int64_t brows = K + 1;
    for (int64_t k = 0; k < K; k++) koff[k] = perm[k] * ldb + (int64_t)(rnd() % 2);
    float *B = rand_buf(brows * ldb + 8);
    float *rowb = rand_buf(M), *colb = rand_buf(n), *res = rand_buf(M * ldy);
    pl_sgemm_epilogue e = {0};
    if (ev & 1) e.row_bias = rowb;
    if (ev & 2) e.col_bias = colb;
    if (ev & 4) e.residual = res, e.ld_residual = ldy;
    e.act = acts[act];
    e.act_alpha = 0.1f;
    e.act_min = -0.3f;
    e.act_max = 0.4f;
    /* pack from W or from its transpose (ldm/ldk swapped) */
    float *Wt = malloc(sizeof(float) * (size_t)(M * K > 0 ? M * K : 1));
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) Wt[k * M + m] = W[m * K + k];
    pl_sparse_w *sw = NULL;
    pl_status st = transposed_w ? pl_sparse_pack(Wt, M, K, 1, M, &sw) : pl_sparse_pack(W, M, K, K, 1, &sw);
    CHECK(st == PL_OK, "pack %lldx%lld: %s", (long long)M, (long long)K, pl_error_msg());
    if (st) goto done;
    int64_t nz = 0;
    for (int64_t i = 0; i < M * K; i++) nz += W[i] != 0.0f;
    CHECK(pl_sparse_nnz(sw) == nz, "nnz %lld, expected %lld", (long long)pl_sparse_nnz(sw), (long long)nz);
    /* half the koff runs with the offsets precomputed */
    if (use_koff && rnd() % 2) CHECK(pl_sparse_bind_koff(sw, koff) == PL_OK, "bind: %s", pl_error_msg());
    /* half the runs in the chunked order (pl_sparse_set_chunks), chunks of 1 .. K + 2 columns */
    if (rnd() % 2)
        CHECK(pl_sparse_set_chunks(sw, 1 + (int64_t)(rnd() % (uint32_t)(K + 2))) == PL_OK, "chunks: %s", pl_error_msg());
    /* half the runs with the AVX-512 kernel's 16-vector column blocks (KxK convolutions) */
    sw->wide = rnd() % 2;
    const int64_t m0 = M > 3 ? (int64_t)(rnd() % 2) : 0, m1 = M > 3 ? M - (int64_t)(rnd() % 2) : M;
    float *Y = malloc(sizeof(float) * (size_t)(M * ldy + 1)), *Yr = malloc(sizeof(float) * (size_t)(M * ldy + 1));
    for (int64_t i = 0; i < M * ldy + 1; i++) Y[i] = Yr[i] = 1234.5f;
    /* the twin (and half the time the fast kernel) take Y and the epilogue from row m0 */
    pl_sgemm_epilogue er = e;
    if (er.row_bias) er.row_bias += m0;
    if (er.residual) er.residual += m0 * ldy;
    const bool no_epi = ev == 0 && act == 0 && rnd() % 2;
    if (rnd() % 2) pl_sparse_mm(sw, m0, m1, B, use_koff ? koff : NULL, ldb, n, Y, ldy, no_epi ? NULL : &e);
    else pl_sparse_mm_rel(sw, m0, m1, B, use_koff ? koff : NULL, ldb, n, Y + m0 * ldy, ldy, no_epi ? NULL : &er);
    pl_sparse_mm_ref(sw, m0, m1, B, use_koff ? koff : NULL, ldb, n, Yr + m0 * ldy, ldy, &er);
    /* dense reference in double, then the same epilogue */
    float *D = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    double worst = 0, worst_ref = 0;
    int bad_sentinel = 0;
    for (int64_t m = 0; m < M; m++) {
        const bool in = m >= m0 && m < m1;
        for (int64_t j = 0; j < ldy; j++)
            if ((!in || j >= n) && (Y[m * ldy + j] != 1234.5f || Yr[m * ldy + j] != 1234.5f)) bad_sentinel++;
        if (!in) continue;
        double scale = 1.0;
        for (int64_t j = 0; j < n; j++) {
            double s = 0, a = 0;
            for (int64_t k = 0; k < K; k++) {
                const float b = B[(use_koff ? koff[k] : k * ldb) + j];
                s += (double)W[m * K + k] * b;
                a += fabs((double)W[m * K + k] * b);
            }
            D[j] = (float)s;
            if (a > scale) scale = a;
        }
        pl_sgemm_epilogue e1 = e;
        e1.row_bias = e.row_bias ? e.row_bias + m : NULL;
        e1.residual = e.residual ? e.residual + m * ldy : NULL;
        pl_sgemm_apply_epilogue(D, n, 1, n, &e1);
        for (int64_t j = 0; j < n; j++) {
            const double d = fabs((double)Y[m * ldy + j] - D[j]) / scale;
            const double dr = fabs((double)Y[m * ldy + j] - Yr[m * ldy + j]) / scale;
            if (!(d <= worst)) worst = d;
            if (!(dr <= worst_ref)) worst_ref = dr;
        }
    }
    CHECK(worst <= 1e-4 && worst_ref <= 1e-5 && !bad_sentinel,
          "mm M %lld K %lld n %lld zf %.2f koff %d wt %d wide %d ev %d act %d isa %s: vs dense %g, "
          "vs ref %g, %d writes outside",
          (long long)M, (long long)K, (long long)n, zf, use_koff, transposed_w, (int)sw->wide, ev, act,
          pl_isa_name(pl_sparse_isa(sw)), worst, worst_ref, bad_sentinel);
    free(D);
    free(Y);
    free(Yr);
done:
    pl_sparse_destroy(sw);
    free(W);
    free(Wt);
    free(koff);
    free(perm);
    free(B);
    free(rowb);
    free(colb);
    free(res);
}

static void test_mm(bool quick) {
    const int64_t Ms[] = {1, 2, 3, 7, 16, 33};
    const int64_t Ks[] = {1, 5, 16, 64, 150};
    const int64_t ns[] = {1, 7, 8, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 300};
    const double zfs[] = {0.0, 0.5, 0.9, 0.97, 1.0};
    for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++)
            for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
                if (quick && (a + b + c) % 3) continue;
                const double zf = zfs[rnd() % 5];
                mm_case(Ms[a], Ks[b], ns[c], zf, rnd() % 2, rnd() % 2, (int)(rnd() % 8),
                        (int)(rnd() % 2 ? 0 : rnd() % NACTS));
            }
    /* every epilogue on awkward sizes */
    for (int ev = 0; ev < 8; ev++)
        for (int act = 0; act < NACTS; act++) mm_case(5, 37, 45, 0.8, ev & 1, false, ev, act);
    /* empty matrices and columns */
    mm_case(0, 10, 16, 0.5, false, false, 7, 1);
    mm_case(4, 0, 16, 0.5, false, false, 7, 1);
    mm_case(4, 10, 0, 0.5, true, false, 7, 1);
    /* zero fraction */
    float z[6] = {0.0f, -0.0f, 1.0f, 2.0f, 0.0f, 3.0f};
    CHECK(fabs(pl_sparse_zero_fraction(z, 6) - 0.5) < 1e-12, "zero fraction %g", pl_sparse_zero_fraction(z, 6));
    CHECK(pl_sparse_zero_fraction(NULL, 0) == 0.0, "zero fraction of nothing");
    /* bad arguments: a status and a message, no crash */
    pl_sparse_w *sw = NULL;
    CHECK(pl_sparse_pack(z, -1, 2, 2, 1, &sw) == PL_ERR_ARGUMENT && sw == NULL, "negative M accepted");
    CHECK(strstr(pl_error_msg(), "pl_sparse_pack") != NULL, "message '%s'", pl_error_msg());
    CHECK(pl_sparse_pack(NULL, 2, 2, 2, 1, &sw) == PL_ERR_ARGUMENT, "NULL matrix accepted");
    pl_sparse_destroy(NULL);
    /* offsets beyond 31 bits are refused, and runs still go through koff */
    float w1[2] = {2.0f, 3.0f}, b1[4] = {1, 2, 3, 4}, y1[2];
    int64_t big[2] = {0, (int64_t)1 << 40}, small[2] = {0, 2};
    CHECK(pl_sparse_pack(w1, 1, 2, 2, 1, &sw) == PL_OK, "pack 1x2");
    CHECK(pl_sparse_bind_koff(sw, big) == PL_ERR_UNSUPPORTED, "31-bit offsets not checked");
    pl_sparse_mm(sw, 0, 1, b1, small, 0, 2, y1, 2, NULL);
    CHECK(y1[0] == 2 * 1 + 3 * 3 && y1[1] == 2 * 2 + 3 * 4, "1x2 product %g %g", y1[0], y1[1]);
    pl_sparse_destroy(sw);
}


/* ------------------------------------------------------------------ SPARSE convolution */

static const pl_conv_act conv_acts[] = {
    {PL_CONV_ACT_NONE, 0, 0},  {PL_CONV_ACT_RELU, 0, 0},          {PL_CONV_ACT_CLIP, 0, 6},
    {PL_CONV_ACT_SIGMOID, 0, 0}, {PL_CONV_ACT_HARD_SIGMOID, 0.2f, 0.5f}, {PL_CONV_ACT_TANH, 0, 0},
};
#define NCACTS ((int)(sizeof conv_acts / sizeof conv_acts[0]))

typedef struct scase {
    int ndim;
    int64_t N, C, M, G, H, W, K, S, P;
} scase;

/* One convolution with weights pruned to zero fraction zf, run as SPARSE (and as AUTO,
 * which may choose it) against pl_f32_conv_ref. */
/* The shifted-tap form (pl_sparse_shift_*): rows K = (channel, 3 taps), tap t of channel c
 * at B offset c*plane + t*... (row pitch 16) + t % 3; the fast kernel against its plain-C
 * twin and both against the plain product pl_sparse_mm_ref: n = 1 .. 254 (1 to 16
 * vectors, masked last vector), one and several chunks, empty and dense rows, row ranges. */
/* chunk: the channel-chunk form (pl_sparse_chunk_pack) instead, over unaligned rows of
 * pitch 9 and a B that ends exactly where the last nonzero's run does (n = 1 .. 256). */
static void shift_case(int64_t M, int64_t C, int64_t KH, int64_t n, int64_t chunk_c, double zf, bool chunk) {
    const int64_t taps = KH * 3, K = C * taps, pitch = chunk ? 9 : 16;
    const int64_t plane = chunk ? n + 2 + (KH - 1) * pitch : ((n + 2 + (KH - 1) * pitch) + 15) / 16 * 16;
    float *W = rand_buf(M * K), *B = rand_buf(C * plane);
    prune(W, M, K, zf, M > 2 && zf < 1.0 ? M / 2 : -1);
    int64_t *koff = malloc(sizeof(int64_t) * (size_t)K);
    for (int64_t c = 0; c < C; c++)
        for (int64_t t = 0; t < taps; t++) koff[c * taps + t] = c * plane + (t / 3) * pitch + t % 3;
    pl_sparse_w *w = NULL;
    pl_sparse_shift *sh = NULL;
    CHECK(pl_sparse_pack(W, M, K, K, 1, &w) == PL_OK, "shift: pack: %s", pl_error_msg());
    if (chunk)
        CHECK(pl_sparse_chunk_pack(w, koff, chunk_c * taps, &sh) == PL_OK, "shift: chunk pack: %s", pl_error_msg());
    else
        CHECK(pl_sparse_shift_pack(w, koff, chunk_c * taps, &sh) == PL_OK, "shift: shift pack: %s", pl_error_msg());
    if (w && sh) {
        const int64_t ldt = (chunk ? pl_sparse_shift_cols(sh, n) : 16 * pl_sparse_shift_vecs(n)) + 16 * (int64_t)(rnd() % 2);
        const int64_t m0 = M > 3 ? 1 : 0, m1 = M;
        float *y = malloc(sizeof(float) * (size_t)(M * ldt + 1)), *yr = malloc(sizeof(float) * (size_t)(M * ldt + 1));
        float *ref = malloc(sizeof(float) * (size_t)(M * n + 1));
        for (int64_t i = 0; i < M * ldt; i++) y[i] = yr[i] = NAN;
        pl_sparse_shift_mm(sh, m0, m1, B, n, y, ldt);
        pl_sparse_shift_mm_ref(sh, m0, m1, B, n, yr, ldt);
        pl_sparse_mm_ref(w, m0, m1, B, koff, 0, n, ref, n, NULL);
        double worst = 0, worst_ref = 0;
        for (int64_t m = m0; m < m1; m++)
            for (int64_t j = 0; j < n; j++) {
                double scale = 1.0;
                for (int64_t k = 0; k < K; k++) scale += fabs(W[m * K + k] * B[koff[k] + j]);
                const double a = y[(m - m0) * ldt + j], b = yr[(m - m0) * ldt + j], r = ref[(m - m0) * n + j];
                const double d = fabs(a - b) / scale, dr = fabs(a - r) / scale;
                if (!(d <= worst)) worst = d;
                if (!(dr <= worst_ref)) worst_ref = dr;
            }
        CHECK(worst <= 1e-5 && worst_ref <= 1e-5,
              "%s M%lld C%lld KH%lld n%lld chunk %lld zf %.2f isa %s: vs twin %g, vs plain %g",
              chunk ? "chunk" : "shift", (long long)M, (long long)C, (long long)KH, (long long)n, (long long)chunk_c, zf,
              pl_isa_name(pl_cpu_isa()), worst, worst_ref);
        free(y), free(yr), free(ref);
    }
    pl_sparse_shift_destroy(sh);
    pl_sparse_destroy(w);
    free(W), free(B), free(koff);
}

static void test_shift(void) {
    const int64_t ns[] = {1, 13, 14, 15, 16, 30, 31, 46, 100, 222, 238, 240, 254};
    const double zfs[] = {0.0, 0.9, 1.0};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (int z = 0; z < 3; z++) {
            shift_case(7, 5, 3, ns[a], 2, zfs[z], false);
            shift_case(1, 3, 1, ns[a], 8, zfs[z], false);
            shift_case(7, 5, 3, ns[a], 2, zfs[z], true);
            shift_case(1, 3, 1, ns[a], 8, zfs[z], true);
        }
    const int64_t nc[] = {17, 48, 49, 55, 61, 63, 64, 65, 255, 256};
    for (size_t a = 0; a < sizeof nc / sizeof nc[0]; a++) shift_case(9, 6, 3, nc[a], 1, 0.8, true);
    shift_case(20, 40, 3, 222, 24, 0.9, false); /* several chunks, the last partial */
    shift_case(20, 40, 3, 61, 7, 0.9, true);
    shift_case(4, 0, 3, 14, 1, 0.5, false);     /* no input channels: zeros */
    shift_case(4, 0, 3, 14, 1, 0.5, true);
    pl_sparse_shift *sh = NULL;
    CHECK(pl_sparse_shift_pack(NULL, NULL, 3, &sh) == PL_ERR_ARGUMENT && !sh, "shift: NULL arguments accepted");
    CHECK(pl_sparse_chunk_pack(NULL, NULL, 3, &sh) == PL_ERR_ARGUMENT && !sh, "chunk: NULL arguments accepted");
    /* a B offset 3 past a vector boundary has no shift group */
    const float w3[2] = {1.0f, 2.0f};
    const int64_t k3[2] = {16, 35};
    pl_sparse_w *w = NULL;
    CHECK(pl_sparse_pack(w3, 1, 2, 2, 1, &w) == PL_OK, "shift: pack: %s", pl_error_msg());
    if (w) {
        CHECK(pl_sparse_shift_pack(w, k3, 2, &sh) == PL_ERR_UNSUPPORTED && !sh &&
                  strstr(pl_error_msg(), "35 is 3 past a vector boundary"),
              "shift: offset 35 accepted or unclear message: %s", pl_error_msg());
        CHECK(pl_sparse_chunk_pack(w, k3, 2, &sh) == PL_OK && sh, "chunk: pack: %s", pl_error_msg());
        pl_sparse_shift_destroy(sh);
    }
    pl_sparse_destroy(w);
}

static void conv_case(const scase *c, double zf, int ai, bool with_res, bool with_bias,
                      pl_threadpool *pool) {
    pl_conv_params p;
    memset(&p, 0, sizeof p);
    p.ndim = c->ndim;
    p.batch = c->N;
    p.in_channels = c->C;
    p.out_channels = c->M;
    p.group = c->G;
    int64_t in_sp = 1, out_sp = 1, k_sp = 1;
    for (int i = 0; i < c->ndim; i++) {
        p.in_size[i] = i == c->ndim - 1 ? c->W : c->H;
        p.kernel[i] = c->K;
        p.stride[i] = c->S;
        p.pad_begin[i] = c->P;
        p.dilation[i] = 1;
        p.out_size[i] = (p.in_size[i] + 2 * c->P - c->K) / c->S + 1;
        in_sp *= p.in_size[i];
        out_sp *= p.out_size[i];
        k_sp *= c->K;
    }
    const int64_t nx = c->N * c->C * in_sp, ny = c->N * c->M * out_sp;
    const int64_t kk = c->C / c->G * k_sp, nw = c->M * kk;
    float *x = rand_buf(nx), *w = rand_buf(nw), *bias = with_bias ? rand_buf(c->M) : NULL;
    prune(w, c->M, kk, zf, c->M > 2 && zf < 1.0 ? 1 : -1);
    float *res = with_res ? rand_buf(ny) : NULL;
    float *ref = malloc(sizeof(float) * (size_t)ny), *y = malloc(sizeof(float) * (size_t)ny);
    float *wabs = malloc(sizeof(float) * (size_t)nw), *xabs = malloc(sizeof(float) * (size_t)nx);
    float *scale = malloc(sizeof(float) * (size_t)ny);
    for (int64_t i = 0; i < nw; i++) wabs[i] = fabsf(w[i]);
    for (int64_t i = 0; i < nx; i++) xabs[i] = fabsf(x[i]);
    pl_f32_conv_ref(&p, xabs, wabs, NULL, scale); /* sum |w x| per output: the error scale */
    pl_f32_conv_ref(&p, x, w, bias, ref);
    pl_f32_conv_act_ref(&conv_acts[ai], ref, res, ny);
    char desc[160];
    snprintf(desc, sizeof desc, "%dD N%lld C%lld M%lld G%lld %lldx%lld k%lld s%lld p%lld zf %.2f act %d res %d bias %d",
             c->ndim, (long long)c->N, (long long)c->C, (long long)c->M, (long long)c->G,
             (long long)c->H, (long long)c->W, (long long)c->K, (long long)c->S, (long long)c->P, zf,
             ai, with_res, with_bias);
    const pl_conv_algo algos[] = {PL_CONV_ALGO_SPARSE, PL_CONV_ALGO_AUTO};
    for (int a = 0; a < 2; a++) {
        pl_conv_fast *f = NULL;
        pl_status st = pl_conv_fast_create(&p, w, bias, &conv_acts[ai], algos[a], pl_threadpool_size(pool), &f);
        CHECK(st == PL_OK, "%s: create %s: %s", desc, pl_conv_algo_name(algos[a]), pl_error_msg());
        if (st) continue;
        if (a == 0) CHECK(pl_conv_fast_algo(f) == PL_CONV_ALGO_SPARSE, "%s: algo %s", desc, pl_conv_algo_name(pl_conv_fast_algo(f)));
        for (int64_t i = 0; i < ny; i++) y[i] = NAN;
        const size_t ss = pl_conv_fast_scratch_size(f);
        void *scratch = ss ? aligned_alloc(64, (ss + 63) & ~(size_t)63) : NULL;
        st = pl_conv_fast_run(f, x, res, y, scratch, ss, pool);
        CHECK(st == PL_OK, "%s: run: %s", desc, pl_error_msg());
        double worst = 0;
        int64_t at = 0;
        for (int64_t i = 0; i < ny; i++) {
            const double d = fabs((double)y[i] - ref[i]) / (1.0 + scale[i] + (res ? fabs(res[i]) : 0));
            if (!(d <= worst)) worst = d, at = i;
        }
        CHECK(worst <= 1e-4, "%s isa %s algo %s threads %d: worst %g at %lld (%g vs %g)", desc,
              pl_isa_name(pl_cpu_isa()), pl_conv_algo_name(pl_conv_fast_algo(f)), pl_threadpool_size(pool),
              worst, (long long)at, y[at], ref[at]);
        free(scratch);
        pl_conv_fast_destroy(f);
    }
    free(x), free(w), free(bias), free(res), free(ref), free(y), free(wabs), free(xabs), free(scale);
}

static void test_conv(bool quick, pl_threadpool *const pools[3]) {
    static const scase cs[] = {
        /* ndim N C M G H W K S P */
        {2, 1, 16, 32, 1, 8, 8, 1, 1, 0},     {2, 1, 64, 48, 1, 14, 14, 1, 1, 0},
        {2, 2, 7, 5, 1, 9, 11, 1, 1, 0},      {2, 1, 32, 64, 1, 15, 15, 1, 2, 0},
        {2, 1, 16, 17, 1, 7, 7, 1, 1, 1},     {2, 1, 24, 40, 1, 13, 13, 3, 1, 1},
        {2, 1, 8, 16, 1, 29, 31, 3, 1, 1},    {2, 1, 32, 32, 1, 7, 7, 3, 1, 1},
        {2, 2, 16, 24, 1, 12, 12, 3, 2, 1},   {2, 1, 9, 7, 1, 15, 15, 3, 2, 0},
        {2, 1, 12, 20, 1, 11, 11, 5, 1, 2},   {2, 1, 8, 8, 1, 16, 16, 5, 2, 2},
        {2, 1, 32, 32, 4, 10, 10, 3, 1, 1},   {2, 1, 24, 12, 2, 9, 9, 1, 1, 0},
        {2, 1, 16, 32, 2, 12, 12, 3, 2, 1},   {2, 1, 16, 16, 16, 10, 10, 3, 1, 1},
        {2, 1, 3, 16, 1, 33, 33, 7, 2, 3},    {1, 1, 16, 24, 1, 1, 100, 3, 1, 1},
        {2, 1, 64, 128, 1, 28, 28, 1, 1, 0},  {2, 1, 64, 64, 1, 28, 28, 3, 1, 1},
        /* several column tiles of a 3x3 grid (tiles sized by the taps' union in L2) */
        {2, 1, 256, 16, 1, 40, 40, 3, 1, 1},
        /* strided 1x1 without padding (the input subsampled by conv_sparse.c): odd and
         * even sizes, batch, groups, stride 3, unequal strides' planes, 1-D */
        {2, 2, 24, 12, 2, 9, 9, 1, 2, 0},     {2, 1, 16, 24, 1, 13, 10, 1, 3, 0},
        {2, 1, 40, 33, 1, 28, 28, 1, 2, 0},   {1, 1, 16, 24, 1, 1, 33, 1, 2, 0},
        {2, 1, 17, 16, 1, 2, 2, 1, 2, 0},
        /* 1x1 on planes of a fractional number of vectors with 16+ nonzeros per input
         * channel: the input is copied to 64-byte aligned planes (7x7, 14x14, stride 2
         * to 7x7, batch, groups, 1-D) */
        {2, 1, 20, 200, 1, 7, 7, 1, 1, 0},    {2, 2, 12, 176, 1, 14, 14, 1, 1, 0},
        {2, 1, 16, 180, 1, 14, 14, 1, 2, 0},  {1, 1, 8, 200, 1, 1, 50, 1, 1, 0},
        {2, 1, 32, 256, 2, 5, 5, 1, 1, 0},
        /* 3x3 stride 1 on 14- and 30-wide planes (pitch 16 / 32): the shifted-tap form
         * (1 to 16 vectors, several channel chunks, batch, groups, 1-D) */
        {2, 1, 24, 40, 1, 14, 14, 3, 1, 1},   {2, 2, 16, 24, 1, 5, 14, 3, 1, 1},
        {2, 1, 12, 20, 1, 1, 14, 3, 1, 1},    {2, 1, 8, 16, 1, 15, 14, 3, 1, 1},
        {2, 1, 8, 16, 1, 16, 14, 3, 1, 1},    {2, 1, 64, 24, 1, 14, 14, 3, 1, 1},
        {2, 1, 32, 32, 4, 10, 14, 3, 1, 1},   {2, 1, 8, 8, 1, 6, 30, 3, 1, 1},
        {1, 1, 16, 24, 1, 1, 14, 3, 1, 1},
        /* rows padded to 32 (28-, 27- and 20-wide planes): 256-column blocks */
        {2, 1, 16, 24, 1, 28, 28, 3, 1, 1},   {2, 1, 8, 8, 1, 9, 27, 3, 1, 1},
        {2, 2, 12, 20, 2, 17, 20, 3, 1, 1},
        /* the channel-chunk form (other padded KxK grids): 7x7 and strided with several
         * chunks, 56-wide planes in several 256-column blocks, 5x5 */
        {2, 1, 160, 24, 1, 7, 7, 3, 1, 1},   {2, 1, 96, 16, 1, 29, 29, 3, 2, 1},
        /* stride 2 on 16- and 32-wide phase planes: the shifted-tap form (one block; two
         * column tiles of 256-column blocks, below) */
        {2, 1, 96, 16, 1, 28, 28, 3, 2, 1},  {2, 2, 8, 12, 2, 27, 28, 3, 2, 1},
        {2, 1, 40, 12, 1, 56, 56, 3, 2, 1},  {2, 2, 40, 8, 2, 9, 13, 5, 1, 2},
        /* stride 2 with many input channels (several 48 KB chunks of 4 phase planes) on
         * 28-, 15-, 14- and 7-wide planes */
        {2, 1, 160, 24, 1, 28, 28, 3, 2, 1}, {2, 1, 120, 16, 1, 15, 15, 3, 2, 1},
        {2, 1, 200, 16, 1, 14, 14, 3, 2, 1}, {2, 1, 64, 16, 1, 7, 7, 3, 2, 1},
        /* rows padded to 64 (56- to 62-wide outputs: 58- to 64-wide planes): one column
         * tile, and several tiles of whole 256-column blocks */
        {2, 1, 16, 12, 1, 56, 56, 3, 1, 1},  {2, 1, 64, 8, 1, 60, 60, 3, 1, 1},
        {2, 1, 8, 8, 1, 5, 62, 3, 1, 1},
    };
    const double zfs[] = {0.0, 0.5, 0.8, 0.9, 0.95, 1.0};
    const int nc = (int)(sizeof cs / sizeof cs[0]);
    for (int i = 0; i < nc; i++)
        for (int z = 0; z < 6; z++) {
            if (quick && (i + z) % 3) continue;
            const int ai = (int)(rnd() % NCACTS);
            conv_case(&cs[i], zfs[z], ai, rnd() % 2, rnd() % 4 != 0, pools[(i + z) % 3]);
        }
}

int main(int argc, char **argv) {
    const bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    const char *isa_names[] = {"ref", "avx2", "avx512"};
    pl_threadpool *pool = pl_threadpool_create(2), *pool3 = pl_threadpool_create(3);
    pl_threadpool *const pools[3] = {NULL, pool, pool3}; /* 1, 2 and 3 threads */
    for (int isa = 0; isa <= (int)pl_cpu()->best; isa++) {
        pl_cpu_force_isa(isa);
        const int before = failures;
        test_mm(quick);
        test_conv(quick, pools);
        test_shift();
        printf("%s: %s\n", isa_names[isa], failures == before ? "ok" : "FAILED");
    }
    pl_cpu_force_isa(-1);
    pl_threadpool_destroy(pool);
    pl_threadpool_destroy(pool3);
    printf("%d checks, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
