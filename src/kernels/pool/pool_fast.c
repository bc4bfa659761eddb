/* pool_fast.c -- fast max/average pooling: each plane is prepared like a convolution's
 * input (padded with -inf or 0, split by stride phase; kernels/conv/conv_plan.h) so that
 * every window tap of a run of outputs is a contiguous row, then the ISA plane kernel
 * takes max or sum over the taps. Average divisors are per-row x per-column factors (the
 * window is a product of ranges), so count_include_pad costs nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_plan.h"
#include "kernels/pool/pool_fast.h"

#define PF_MAX_SIZE ((int64_t)1 << 24)

static bool geom_of(const pl_pool_params *p, cf_geom *g) {
    memset(g, 0, sizeof *g);
    if (!p || (p->ndim != 1 && p->ndim != 2) || p->planes < 0) return false;
    const int d = p->ndim - 1;
    g->N = 1;
    g->C = g->M = g->G = p->planes;
    g->Cg = g->Mg = 1;
    g->H = p->ndim == 2 ? p->in_size[0] : 1;
    g->OH = p->ndim == 2 ? p->out_size[0] : 1;
    g->KH = p->ndim == 2 ? p->kernel[0] : 1;
    g->SH = p->ndim == 2 ? p->stride[0] : 1;
    g->PT = p->ndim == 2 ? p->pad_begin[0] : 0;
    g->DH = p->ndim == 2 ? p->dilation[0] : 1;
    g->W = p->in_size[d];
    g->OW = p->out_size[d];
    g->KW = p->kernel[d];
    g->SW = p->stride[d];
    g->PL = p->pad_begin[d];
    g->DW = p->dilation[d];
    const int64_t v[] = {g->H, g->W, g->OH, g->OW, g->KH, g->KW, g->DH, g->DW, g->SH, g->SW};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] < 1 || v[i] > PF_MAX_SIZE) return false;
    if (g->PT < 0 || g->PL < 0 || g->PT > PF_MAX_SIZE || g->PL > PF_MAX_SIZE) return false;
    if (g->SH > CF_MAX_STRIDE || g->SW > CF_MAX_STRIDE) return false;
    if ((g->KH - 1) * g->DH > PF_MAX_SIZE || (g->KW - 1) * g->DW > PF_MAX_SIZE) return false;
    if (g->KH * g->KW > 4096) return false;
    if ((double)(g->OH + (g->KH - 1) * g->DH) * (double)(g->OW + (g->KW - 1) * g->DW) > 1e9)
        return false;
    return true;
}

bool pl_pool_fast_supported(const pl_pool_params *p) {
    cf_geom g;
    return geom_of(p, &g);
}

/* Taps of a window along one axis that count for the average: inside [lo, hi). */
static float axis_scale(int64_t o, int64_t s, int64_t pad, int64_t k, int64_t d, int64_t lo,
                        int64_t hi) {
    int64_t n = 0;
    for (int64_t t = 0; t < k; t++) {
        int64_t c = o * s - pad + t * d;
        n += c >= lo && c < hi;
    }
    return (float)n;
}

typedef struct pool_job {
    const cf_geom *g;
    const cf_prep *pp;
    const cf_kernels *k;
    pl_pool_fast_kind kind;
    const int64_t *tap_off;
    int ntaps;
    const float *sy, *sx;
    const float *x;
    float *y;
    float *ws;
    size_t ws_stride;
    int64_t per_task, planes;
    bool direct; /* 3x3 stride-2 max with the kernel level's max3s2: no prepared copy */
} pool_job;

static void pool_task(void *ctx, int task, int thread) {
    const pool_job *j = ctx;
    const cf_geom *g = j->g;
    float *ws = j->ws ? j->ws + (size_t)thread * j->ws_stride : NULL;
    int64_t q0 = task * j->per_task, q1 = q0 + j->per_task;
    if (q1 > j->planes) q1 = j->planes;
    const float fill = j->kind == PL_POOL_FAST_MAX ? -INFINITY : 0.0f;
    if (j->direct) {
        for (int64_t q = q0; q < q1; q++)
            j->k->max3s2(j->x + q * g->H * g->W, g->H, g->W, g->PT, g->PL, g->OH, g->OW,
                         j->y + q * g->OH * g->OW);
        return;
    }
    for (int64_t q = q0; q < q1; q++) {
        const float *src = j->x + q * g->H * g->W;
        if (!j->pp->none) {
            cf_prep_plane(j->k, g, j->pp, src, fill, ws, j->pp->plane);
            src = ws;
        }
        float *yp = j->y + q * g->OH * g->OW;
        if (j->kind == PL_POOL_FAST_MAX)
            j->k->max_plane(src, j->tap_off, j->ntaps, g->OH, g->OW, j->pp->Wph, yp);
        else
            j->k->avg_plane(src, j->tap_off, j->ntaps, g->OH, g->OW, j->pp->Wph, j->sy, j->sx, yp);
    }
}

pl_status pl_pool_fast_run(pl_pool_fast_kind kind, const pl_pool_params *p,
                           int count_include_pad, const float *x, float *y,
                           pl_threadpool *pool) {
    cf_geom g;
    if (!geom_of(p, &g)) return pl_error(PL_ERR_UNSUPPORTED, "pooling geometry has no fast path");
    if (g.C == 0) return PL_OK;
    cf_prep pp;
    cf_prep_setup(&g, &pp, true);
    const cf_kernels *k = cf_kernels_for(pl_cpu_isa());
    /* 3x3 stride-2 max (ResNet's stem pool) reads the planes in place: 64 planes of
     * 112x112, CPU time 0.29-0.38 -> 0.12-0.13 ms at batch 1, 7.8 -> 3.2-3.8 ms at 16 */
    const bool direct = kind == PL_POOL_FAST_MAX && k->max3s2 && p->ndim == 2 && g.KH == 3 &&
                        g.KW == 3 && g.SH == 2 && g.SW == 2 && g.DH == 1 && g.DW == 1 &&
                        g.PT < 3 && g.PL < 3;
    if (direct) pp.none = true;
    const int ntaps = (int)(g.KH * g.KW);
    const int nt = pl_threadpool_size(pool);
    const size_t ws_floats = pp.none ? 0 : (size_t)(pp.npy * pp.npx * pp.plane);
    const size_t ws_stride = (ws_floats + 15) & ~(size_t)15;
    int64_t *tap_off = malloc(sizeof(int64_t) * (size_t)ntaps);
    float *sy = malloc(sizeof(float) * (size_t)(g.OH + g.OW)), *sx = sy ? sy + g.OH : NULL;
    float *ws = ws_stride ? cf_alloc(sizeof(float) * ws_stride * (size_t)nt) : NULL;
    if (!tap_off || !sy || (ws_stride && !ws)) {
        free(tap_off);
        free(sy);
        free(ws);
        return pl_error(PL_ERR_NOMEM, "out of memory for pooling");
    }
    for (int64_t ky = 0; ky < g.KH; ky++)
        for (int64_t kx = 0; kx < g.KW; kx++)
            tap_off[ky * g.KW + kx] = cf_tap_offset(&g, &pp, ky, kx, pp.plane);
    if (kind == PL_POOL_FAST_AVG) {
        const int64_t PB = p->ndim == 2 ? p->pad_end[0] : 0, PR = p->pad_end[p->ndim - 1];
        const int64_t ylo = count_include_pad ? -g.PT : 0, yhi = count_include_pad ? g.H + PB : g.H;
        const int64_t xlo = count_include_pad ? -g.PL : 0, xhi = count_include_pad ? g.W + PR : g.W;
        for (int64_t oy = 0; oy < g.OH; oy++) {
            float n = axis_scale(oy, g.SH, g.PT, g.KH, g.DH, ylo, yhi);
            sy[oy] = n > 0 ? 1.0f / n : 0.0f;
        }
        for (int64_t ox = 0; ox < g.OW; ox++) {
            float n = axis_scale(ox, g.SW, g.PL, g.KW, g.DW, xlo, xhi);
            sx[ox] = n > 0 ? 1.0f / n : 0.0f;
        }
    }
    int64_t ntasks = (int64_t)nt * 8;
    if (ntasks > g.C) ntasks = g.C;
    pool_job j = {&g, &pp, k, kind, tap_off, ntaps, sy, sx, x, y,
                  ws, ws_stride, (g.C + ntasks - 1) / ntasks, g.C, direct};
    ntasks = (g.C + j.per_task - 1) / j.per_task;
    if (ntasks == 1) pool_task(&j, 0, 0);
    else pl_threadpool_run(pool, pool_task, &j, (int)ntasks);
    free(tap_off);
    free(sy);
    free(ws);
    return PL_OK;
}

typedef struct global_job {
    pl_pool_fast_kind kind;
    const float *x;
    float *y;
    int64_t n, per_task, planes;
} global_job;

/* Eight independent accumulators so the loop vectorises and pipelines. */
static float plane_reduce(pl_pool_fast_kind kind, const float *x, int64_t n) {
    if (kind == PL_POOL_FAST_MAX) {
        float m[8];
        for (int l = 0; l < 8; l++) m[l] = -INFINITY;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
        for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
        float r = m[0];
        for (int l = 1; l < 8; l++) r = m[l] > r ? m[l] : r;
        return r;
    }
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += x[i + l];
    double r = 0;
    for (; i < n; i++) r += x[i];
    for (int l = 0; l < 8; l++) r += s[l];
    return n > 0 ? (float)(r / (double)n) : 0.0f;
}

static void global_task(void *ctx, int task, int thread) {
    (void)thread;
    const global_job *j = ctx;
    int64_t q0 = task * j->per_task, q1 = q0 + j->per_task;
    if (q1 > j->planes) q1 = j->planes;
    for (int64_t q = q0; q < q1; q++) j->y[q] = plane_reduce(j->kind, j->x + q * j->n, j->n);
}

pl_status pl_pool_fast_global(pl_pool_fast_kind kind, const float *x, int64_t planes,
                              int64_t plane_size, float *y, pl_threadpool *pool) {
    if (planes <= 0) return PL_OK;
    /* tasks of at least ~16K elements: the reduction is memory-bound and short */
    int64_t ntasks = (int64_t)pl_threadpool_size(pool) * 4;
    int64_t by_size = planes * plane_size / 16384;
    if (ntasks > by_size) ntasks = by_size;
    if (ntasks > planes) ntasks = planes;
    if (ntasks < 1) ntasks = 1;
    global_job j = {kind, x, y, plane_size, (planes + ntasks - 1) / ntasks, planes};
    ntasks = (planes + j.per_task - 1) / j.per_task;
    if (ntasks == 1) global_task(&j, 0, 0);
    else pl_threadpool_run(pool, global_task, &j, (int)ntasks);
    return PL_OK;
}
