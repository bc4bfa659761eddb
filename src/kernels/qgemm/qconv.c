/* qconv.c -- the implicit-GEMM INT8 KxK convolution (VNNI): the image is padded, split
 * into its stride phases and interleaved by 4 channels once per run (about 1/taps of an
 * im2col panel's bytes), then the dense weight tiles read each group's 4 bytes straight
 * from it (pl_q8_iconv in qgemm.h). The im2col panel of a 3x3 layer is 9x the image and
 * at 56x56 x 64 channels (1.8 MB) does not stay in L2 between being written and read. */
#include <stdlib.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"

/* Phase-plane geometry: s * s planes of Hq x Wq per channel quad. */
static void iconv_dims(const pl_q8_conv_geom *g, int64_t *Hq, int64_t *Wq) {
    *Hq = g->out[0] + ((g->k[0] - 1) * g->dil[0]) / g->stride[0];
    *Wq = g->out[1] + ((g->k[1] - 1) * g->dil[1]) / g->stride[1];
}

bool pl_q8_iconv_ok(pl_q8_level level, const pl_q8_conv_geom *g, const pl_q8_w *pw, uint8_t flip) {
    if (level != PL_Q8_VNNI || g->ndim != 2 || g->C % 4 != 0 || g->C == 0 || flip) return false;
    if (pw->sparse || pw->any_zw || pw->level != PL_Q8_VNNI) return false;
    if (g->stride[0] != g->stride[1] || g->stride[0] < 1 || g->stride[0] > 2) return false;
    if (g->k[0] * g->k[1] > PL_Q8_ICONV_MAXTAPS || g->k[0] * g->k[1] < 2) return false;
    if (g->out[1] < 5 || g->out[0] < 1) return false;
    for (int d = 0; d < 2; d++)
        if (g->dil[d] < 1 || g->pad[d] < 0) return false;
    return true;
}

size_t pl_q8_iconv_bytes(const pl_q8_conv_geom *g) {
    int64_t Hq, Wq;
    iconv_dims(g, &Hq, &Wq);
    return (size_t)(g->stride[0] * g->stride[1] * g->C * Hq * Wq) + 192;
}

typedef struct iconv_job {
    const pl_q8_conv_geom *g;
    const uint8_t *x;
    uint8_t pad;
    uint8_t *img; /* the built image (past the front margin) */
    int64_t Hq, Wq;
    const pl_q8_w *pw;
    const pl_q8_iconv *ic;
    int64_t P;
    int32_t za;
    const pl_q8_epilogue *e;
    void *out;
    int64_t ldm;
    int64_t col_chunks, rows_per_unit;
    int64_t planes;
    int nbuild;
} iconv_job;

/* Plane `task` = phase * C/4 + quad: row rq, column c of it is the padded image's
 * (rq * s + ph, c * s + pw) of the quad's 4 channels, interleaved; outside, the pad. */
static void build_plane(const iconv_job *j, int64_t task) {
    const pl_q8_conv_geom *g = j->g;
    const int64_t s = g->stride[0], H = g->in[0], W = g->in[1], cq = g->C / 4;
    const int64_t phase = task / cq, q = task % cq, ph = phase / s, pw = phase % s;
    const int64_t Hq = j->Hq, Wq = j->Wq;
    /* columns c with 0 <= c * s + pw - pad1 < W */
    const int64_t a = g->pad[1] - pw;
    int64_t lo = a <= 0 ? 0 : (a + s - 1) / s, hi = W + a <= 0 ? 0 : (W + a + s - 1) / s;
    if (hi > Wq) hi = Wq;
    if (lo > hi) lo = hi;
    uint8_t *plane = j->img + (size_t)(task * Hq * Wq * 4);
    for (int64_t rq = 0; rq < Hq; rq++) {
        uint8_t *d = plane + rq * Wq * 4;
        const int64_t ih = rq * s + ph - g->pad[0];
        if (ih < 0 || ih >= H || hi == lo) {
            memset(d, j->pad, (size_t)(Wq * 4));
            continue;
        }
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++) r[t] = j->x + ((q * 4 + t) * H + ih) * W + lo * s - a;
        memset(d, j->pad, (size_t)(lo * 4));
        if (s == 1)
            pl_q8_interleave4_avx512(r, hi - lo, d + lo * 4);
        else
            pl_q8_interleave4_s2_avx512(r, hi - lo, d + lo * 4);
        memset(d + hi * 4, j->pad, (size_t)((Wq - hi) * 4));
    }
}

/* A few tasks per thread, each a range of planes (one task per plane costs more in
 * dispatch than a 7x7 plane takes to build). */
static void build_task(void *ctx, int task, int thread) {
    (void)thread;
    const iconv_job *j = ctx;
    const int64_t p0 = j->planes * task / j->nbuild, p1 = j->planes * (task + 1) / j->nbuild;
    for (int64_t p = p0; p < p1; p++) build_plane(j, p);
}

/* One task: a 32-column chunk with a range of row tiles (as pl_q8_gemm's dense tasks);
 * a narrow last chunk runs a 16-column tile and / or up to 2 single columns (a 4-column
 * tail as a 16-column tile measured 3% faster on 256 channels at 14x14 than as 4 gemv
 * columns with their per-row epilogue calls; a 1-column tail is 15% faster as gemv). */
static void tile_task(void *ctx, int task, int thread) {
    (void)thread;
    const iconv_job *j = ctx;
    const pl_q8_w *pw = j->pw;
    const int64_t cc = task % j->col_chunks, ru = task / j->col_chunks;
    const int64_t nt = (pw->M + pw->mr - 1) / pw->mr;
    const int64_t t0 = ru * j->rows_per_unit;
    const int64_t t1 = t0 + j->rows_per_unit < nt ? t0 + j->rows_per_unit : nt;
    const int64_t p0 = cc * 32, n = j->P - p0 < 32 ? j->P - p0 : 32;
    const int64_t gmax = 2;
    /* gemv columns [p1, p0 + n) */
    const int64_t p1 = n <= gmax ? p0 : n > 16 && n <= 16 + gmax ? p0 + 16 : p0 + n;
    const pl_q8_impl *im = pl_q8_impl_vnni();
    _Alignas(64) int32_t acc[32]; /* epi reads 16 sums from acc + r, r < 12 */
    for (int64_t mt = t0; mt < t1; mt++) {
        if (p1 > p0) pl_q8_iconv_tile_vnni(pw, mt, j->ic, p0, p1 - p0, j->za, j->e, j->out, j->ldm);
        const int64_t m0 = mt * pw->mr, mrows = pw->M - m0 < pw->mr ? pw->M - m0 : pw->mr;
        for (int64_t p = p1; p < p0 + n; p++) {
            pl_q8_iconv_gemv_vnni(pw, mt, j->ic, p, acc);
            for (int64_t r = 0; r < mrows; r++)
                im->epi(pw, m0 + r, acc + r, NULL, j->za, p, 1, j->e, j->out, j->ldm, 1);
        }
    }
}

pl_status pl_q8_iconv_run(const pl_q8_w *pw, const pl_q8_conv_geom *g, const uint8_t *x, uint8_t pad,
                          int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm, void *scratch,
                          pl_threadpool *pool) {
    if (!pl_q8_iconv_ok(PL_Q8_VNNI, g, pw, 0) || !(pl_cpu()->avx512_vnni && pl_cpu()->avx512bw))
        return pl_error(PL_ERR_UNSUPPORTED, "int8 implicit conv: geometry or weights not supported");
    const int64_t taps = g->k[0] * g->k[1], s = g->stride[0], cq = g->C / 4;
    if (pw->K != taps * g->C || pw->M <= 0)
        return pl_error(PL_ERR_ARGUMENT, "int8 implicit conv: weights are %lldx%lld, not Mx%lld",
                        (long long)pw->M, (long long)pw->K, (long long)(taps * g->C));
    iconv_job j = {.g = g, .x = x, .pad = pad, .img = (uint8_t *)scratch + 64, .pw = pw, .za = za,
                   .e = e, .out = out, .ldm = ldm};
    iconv_dims(g, &j.Hq, &j.Wq);
    j.P = g->out[0] * g->out[1];
    j.planes = s * s * cq;
    j.nbuild = 4 * pl_threadpool_size(pool);
    if (j.nbuild > j.planes) j.nbuild = (int)j.planes;
    pl_threadpool_run(pool, build_task, &j, j.nbuild);
    pl_q8_iconv ic = {.x = j.img, .cq = cq, .cstride = j.Hq * j.Wq * 4, .Wq = j.Wq, .OW = g->out[1],
                      .ntaps = (int)taps};
    for (int64_t t = 0; t < taps; t++) {
        const int64_t oy = t / g->k[1] * g->dil[0], ox = t % g->k[1] * g->dil[1];
        const int64_t phase = (oy % s) * s + ox % s;
        ic.tapoff[t] = phase * cq * ic.cstride + ((oy / s) * j.Wq + ox / s) * 4;
    }
    j.ic = &ic;
    /* the per-call part of the epilogue, unless the caller made it (pl_q8_gemm's rule) */
    pl_q8_epilogue ex;
    int32_t *off = NULL;
    if (!e->row_off) {
        const int64_t Mp = pl_q8_epi_rows(pw->M);
        off = malloc((sizeof(int32_t) + 1) * (size_t)Mp);
        if (!off) return pl_error(PL_ERR_NOMEM, "int8 implicit conv: out of memory");
        pl_q8_epi_prepare(pw, za, e, off, (uint8_t *)(off + Mp), &ex);
        j.e = &ex;
    }
    /* about 16 tasks per thread, as pl_q8_gemm: split the row tiles when there are too
     * few column chunks */
    const int nth = pl_threadpool_size(pool);
    const int64_t nt = (pw->M + pw->mr - 1) / pw->mr;
    j.col_chunks = (j.P + 31) / 32;
    int64_t splits = nth > 1 ? (16 * nth + j.col_chunks - 1) / j.col_chunks : 1;
    if (splits > nt) splits = nt;
    if (splits < 1) splits = 1;
    j.rows_per_unit = (nt + splits - 1) / splits;
    const int64_t units = (nt + j.rows_per_unit - 1) / j.rows_per_unit;
    pl_threadpool_run(pool, tile_task, &j, (int)(units * j.col_chunks));
    free(off);
    return PL_OK;
}
