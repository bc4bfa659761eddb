/* conv_winograd.c -- 3x3, stride 1 convolutions by Winograd F(4x4, 3x3): each 4x4 output
 * tile is A^T [ (G g G^T) . (B^T d B) ] A over 6x6 input patches, so a tile costs 36
 * multiply-adds per input channel instead of 144. The 36 element-wise products summed
 * over channels are 36 GEMMs: U_xi [M x C] (weights transformed and packed at planning)
 * times V_xi [C x tiles] (input transformed per block of tiles, already in the B sliver
 * layout), giving M_xi [M x tiles], which the output transform turns into y with the
 * bias, residual and (clamp) activation.
 *
 * The input is prepared with its columns split in 4 phases (conv_fast.c), so patch
 * element (i, j) of consecutive tiles of a tile row is a contiguous run; tiles of a
 * block that span several tile rows are read as segments (cf_wseg). A task is a block of
 * tiles x a part of the output channels; it transforms its block's input for all
 * channels, then runs GEMMs and output transforms a few row slivers at a time so the
 * products stay in L2.
 *
 * Batched (cf_wino_batch, small planes at batch > 1): the tiles of a group of images
 * are one tile set; after a parallel input transform, a task per xi multiplies each
 * sliver of U_xi by all the group's tile blocks (the weights are read once per group,
 * not once per image), then the output transform runs over (block, channels) tasks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_plan.h"

#define WINO_V_CAP (640 * 1024)  /* bytes of transformed input per task */
#define WINO_M_CAP (256 * 1024)  /* bytes of GEMM products per pass */

bool cf_wino_applies(const cf_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->DH == 1 && g->DW == 1 &&
           g->G == 1;
}

/* U = G g G^T for one 3x3 kernel, in double. */
static void transform_kernel(const float *k, double u[36]) {
    static const double G[6][3] = {{0.25, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double t[6][3];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * k[j] + G[i][1] * k[3 + j] + G[i][2] * k[6 + j];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) u[i * 6 + j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

#define WINO_BATCH_TILES 64 /* tiles of a batched group (images x tiles per image) */

/* Measured at batch 16 (bench/conv_bench --batch 16, and in ResNet-50): 7x7 planes (4
 * tiles) run 2.3x faster batched than by IGEMM_T (the transformed weights are streamed
 * once per 16 images instead of the direct weights once per image); 14x14 planes (16
 * tiles) as fast as image by image (8% faster on a loaded machine); 28x28 (49 tiles)
 * gain nothing. Groups of 64 tiles beat 32 and 128. */
int cf_wino_batch_size(const cf_geom *g) {
    const int64_t T = ((g->OH + 3) / 4) * ((g->OW + 3) / 4);
    if (g->N <= 1 || T >= 32) return 1;
    int64_t n = (WINO_BATCH_TILES + T - 1) / T;
    if (n > g->N) n = g->N;
    return (int)n;
}

/* Batched Winograd: a group's images are prepared one after the other (img_prep floats
 * each), their transformed input follows them (blocks of up to NR tiles, block b at
 * b * 36*C*ldv), and the products of all blocks are in the shared region (block b, xi
 * at (b*36 + xi) * M*ldv). */
static pl_status wino_batch_layout(pl_conv_fast *f, int64_t T) {
    const cf_geom *g = &f->g;
    const int NR = f->k->nr, vl = f->k->vl;
    const int64_t Tb = T * f->wino_batch;
    f->img_prep = ((int64_t)f->prep_floats + 15) / 16 * 16; /* 64-byte aligned slots */
    f->nblocks = (Tb + NR - 1) / NR;
    f->tb = ((Tb + f->nblocks - 1) / f->nblocks + vl - 1) / vl * vl;
    if (f->tb > NR) f->tb = NR;
    f->nblocks = (Tb + f->tb - 1) / f->tb;
    f->ldv = (f->tb + vl - 1) / vl * vl;
    f->mparts = 1;
    f->chunk_sl = 1;
    f->wino_shared = true;
    f->wino_xi = false;
    f->prep_floats = (size_t)f->img_prep * (size_t)f->wino_batch +
                     (size_t)(36 * g->C * f->ldv) * (size_t)f->nblocks;
    f->shared_floats = (size_t)(36 * g->M * f->ldv) * (size_t)f->nblocks;
    f->ws_floats = 0;
    return PL_OK;
}

pl_status cf_wino_create(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr, vl = k->vl;
    f->TH = (g->OH + 3) / 4;
    f->TW = (g->OW + 3) / 4;
    /* split in 4 phases along x only: rows stay whole (tile row ty starts at row 4 ty) */
    cf_geom pg = *g;
    pg.KH = pg.KW = 6;
    pg.SH = 1;
    pg.SW = 4;
    pg.DH = pg.DW = 1;
    pg.OH = 4 * (f->TH - 1) + 1;
    pg.OW = f->TW;
    f->wg = pg;
    cf_prep_setup(&pg, &f->prep, false);
    const int64_t nph = f->prep.npy * f->prep.npx;
    /* prepared like IGEMM input: channel c at c * plane, phases C * plane apart */
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            f->wtap[i * 6 + j] = cf_tap_offset(&pg, &f->prep, i, j, g->C * f->prep.plane);
    f->prep_floats = (size_t)(g->C * nph * f->prep.plane);

    /* GEMM shape per xi: M x C times C x tiles */
    f->K = g->C;
    PL_TRY(cf_slivers(g->M, MR, &f->nsl, &f->sl_row, &f->sl_rows));
    const int64_t l1 = (int64_t)(pl_cpu()->l1d ? pl_cpu()->l1d : 32768);
    int64_t kcmax = l1 / 2 / (MR * 4) / 8 * 8;
    kcmax = kcmax < 64 ? 64 : kcmax > 512 ? 512 : kcmax;
    PL_TRY(cf_kblocks(f->K, kcmax, &f->nkb, &f->kb_start, &f->kb_len));
    const int64_t per_xi = (int64_t)f->nsl * MR * f->K;
    if ((double)per_xi * 36.0 > 1e9) return pl_error(PL_ERR_UNSUPPORTED, "convolution weights too large to pack");
    float *tmp = malloc(sizeof(float) * (size_t)(36 * g->M * g->C));
    if (!tmp || !(f->A = cf_alloc(sizeof(float) * (size_t)(36 * per_xi)))) {
        free(tmp);
        return pl_error(PL_ERR_NOMEM, "out of memory packing convolution weights");
    }
    for (int64_t m = 0; m < g->M; m++)
        for (int64_t c = 0; c < g->C; c++) {
            double u[36];
            transform_kernel(w + (m * g->C + c) * 9, u);
            for (int xi = 0; xi < 36; xi++) tmp[((int64_t)xi * g->M + m) * g->C + c] = (float)u[xi];
        }
    for (int xi = 0; xi < 36; xi++) cf_pack_a(f, tmp + (int64_t)xi * g->M * g->C, g->C, f->A + xi * per_xi);
    free(tmp);

    const int64_t T = f->TH * f->TW;
    if (f->wino_batch > 1) return wino_batch_layout(f, T);
    /* tiles per block: at most NR (NR/2 when the transformed input would not stay in
     * L2), balanced over the blocks */
    int64_t tbmax = NR;
    if ((NR / 2) % vl == 0 && 36 * g->C * NR * 4 > WINO_V_CAP) tbmax = NR / 2;
    f->nblocks = (T + tbmax - 1) / tbmax;
    f->tb = ((T + f->nblocks - 1) / f->nblocks + vl - 1) / vl * vl; /* whole vectors */
    if (f->tb > tbmax) f->tb = tbmax;
    f->nblocks = (T + f->tb - 1) / f->tb;
    /* With threads, the input is transformed first for all blocks into shared memory
     * (one parallel pass), then tasks of a block x a part of the output channels run the
     * GEMMs: a few tasks per thread, parts of at least 2 slivers. One thread transforms
     * each block right before its GEMMs instead (the block stays in L2). */
    f->mparts = 1;
    f->wino_shared = f->nthreads > 1;
    if (f->wino_shared && f->nthreads <= 64) {
        /* parts of at least 2 slivers: the split whose tasks (block x part; a block
         * costs by its kernel width), handed out in order to the first free thread,
         * finish first; among those within 3%, the one with most tasks up to 4 per
         * thread */
        double best = -1, pick_span = 0;
        int pick = 1;
        for (int m = 1; m == 1 || (2 * m <= f->nsl && f->nblocks * m <= 8 * f->nthreads); m++) {
            double busy[64] = {0}, span = 0;
            for (int64_t t = 0; t < f->nblocks * m; t++) {
                const int64_t bi = t / m, pi = t % m;
                const int64_t nt = T - bi * f->tb < f->tb ? T - bi * f->tb : f->tb;
                const double c = (double)(f->nsl * (pi + 1) / m - f->nsl * pi / m) * (nt > NR / 2 ? 2.0 : 1.0);
                int th = 0;
                for (int i = 1; i < f->nthreads; i++)
                    if (busy[i] < busy[th]) th = i;
                busy[th] += c;
                if (busy[th] > span) span = busy[th];
            }
            if (best < 0 || span < best) best = span;
            const bool more = f->nblocks * m <= 4 * f->nthreads && m > pick;
            if (m == 1 || span < pick_span * 0.97 || (more && span <= best * 1.03)) {
                pick = m;
                pick_span = span;
            }
        }
        f->mparts = pick;
    }
    if (f->nblocks * f->mparts > (1 << 30))
        return pl_error(PL_ERR_UNSUPPORTED, "convolution plane too large for Winograd");
    const int64_t sl_part = (f->nsl + f->mparts - 1) / f->mparts;
    int64_t cs = WINO_M_CAP / (36 * MR * ((f->tb + vl - 1) / vl * vl) * 4);
    f->chunk_sl = (int)(cs < 1 ? 1 : cs > sl_part ? sl_part : cs);
    /* V and the products are kept with a row stride of whole vectors */
    f->ldv = (f->tb + vl - 1) / vl * vl;
    const size_t vblock = (size_t)(36 * g->C * f->ldv);
    if (f->wino_shared) f->prep_floats += vblock * (size_t)f->nblocks;
    /* Fewer tile blocks than threads (14x14: one): parts of 2-3 row slivers balanced
     * badly (19 slivers in 8 parts ran 11 / 8), and one-sliver parts re-read the
     * block's input per sliver; tasks over (block, xi) instead read each U_xi and
     * V_xi once and keep V_xi in L1 across the slivers, into products kept for the whole
     * plane (36 x M x ldv per block, 590 KB at 14x14x256). */
    f->wino_xi = f->wino_shared && f->nblocks < f->nthreads;
    if (f->wino_xi) {
        f->shared_floats = (size_t)(36 * g->M * f->ldv) * (size_t)f->nblocks;
        f->ws_floats = 0;
        return PL_OK;
    }
    f->ws_floats = (f->wino_shared ? 0 : vblock) + (size_t)(36 * f->chunk_sl * MR * f->ldv);
    return PL_OK;
}

typedef struct wino_job {
    const pl_conv_fast *f;
    const float *xin, *res;
    float *y;
    float *ws;
    size_t ws_stride;
    float *vall;        /* shared transformed input (wino_shared), block b at b * 36*C*ldv */
    float *mall;        /* wino_xi: products, block b at b * 36*M*ldv, xi at xi * M*ldv */
    int64_t cchunk;     /* channels per input-transform task */
    int64_t ntiles;     /* tiles of the run (images x tiles per image) */
    float lo, hi;
} wino_job;

#define MAX_VEC 4 /* vectors per tile block (tb <= 4 vl) */

/* The segments of vector v of the block starting at tile t0 (nt tiles). */
static int block_segments(const pl_conv_fast *f, int64_t t0, int64_t nt, int v, cf_wseg *sg) {
    const cf_geom *g = &f->g;
    const int vl = f->k->vl;
    const int64_t T = f->TH * f->TW;
    int n = 0;
    for (int l = 0; l < vl; l++) {
        const int64_t t = t0 + (int64_t)v * vl + l;
        if (t >= t0 + nt) break;
        /* batched runs: tile t of the run is tile tt of image img */
        const int64_t img = t / T, tt = t % T;
        const int64_t ty = tt / f->TW, tx = tt % f->TW;
        if (n > 0 && tx > 0 && l > 0) {
            sg[n - 1].len++;
        } else {
            cf_wseg *s = &sg[n++];
            s->lane = l;
            s->len = 1;
            s->rows = (int)(g->OH - 4 * ty < 4 ? g->OH - 4 * ty : 4);
            s->in = img * f->img_prep + 4 * ty * f->prep.Wph + tx;
            s->out = img * g->M * g->OH * g->OW + 4 * ty * g->OW + 4 * tx;
        }
        const int64_t cols = g->OW - 4 * tx;
        sg[n - 1].last_cols = (int)(cols < 4 ? cols : 4);
    }
    return n;
}

static void wino_task(void *ctx, int task, int thread) {
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr, vl = k->vl;
    const int64_t T = f->TH * f->TW, tb = f->tb, ldv = f->ldv, C = g->C, OHW = g->OH * g->OW;
    const int64_t bi = task / f->mparts;
    const int pi = task % f->mparts;
    const int64_t t0 = bi * tb, nt = T - t0 < tb ? T - t0 : tb;
    const int s0 = f->nsl * pi / f->mparts, s1 = f->nsl * (pi + 1) / f->mparts;
    if (s0 >= s1 || nt <= 0) return;
    const int nvec = (int)((nt + vl - 1) / vl);
    cf_wseg segs[MAX_VEC][32];
    int nseg[MAX_VEC];
    for (int v = 0; v < nvec; v++) nseg[v] = block_segments(f, t0, nt, v, segs[v]);

    float *V, *Mb;
    if (f->wino_shared) {
        V = j->vall + bi * 36 * C * ldv;
        Mb = j->ws + (size_t)thread * j->ws_stride;
    } else {
        V = j->ws + (size_t)thread * j->ws_stride;
        Mb = V + 36 * C * ldv;
        for (int64_t c = 0; c < C; c++)
            for (int v = 0; v < nvec; v++)
                k->wino_in(j->xin + c * f->prep.plane, f->wtap, segs[v], nseg[v],
                           V + c * ldv + (int64_t)v * vl, C * ldv);
    }

    const int64_t per_xi = (int64_t)f->nsl * MR * f->K;
    for (int a = s0; a < s1; a += f->chunk_sl) {
        const int b = a + f->chunk_sl < s1 ? a + f->chunk_sl : s1;
        const int64_t ra = f->sl_row[a], rb = f->sl_row[b - 1] + f->sl_rows[b - 1];
        const int64_t ldm = (rb - ra) * ldv;
        for (int xi = 0; xi < 36; xi++) {
            const float *Ax = f->A + xi * per_xi;
            const float *Bx = V + (int64_t)xi * C * ldv;
            for (int s = a; s < b; s++) {
                float *cdst = Mb + xi * ldm + (f->sl_row[s] - ra) * ldv;
                for (int kb = 0; kb < f->nkb; kb++) {
                    const int64_t k0 = f->kb_start[kb], kc = f->kb_len[kb];
                    k->ukernel[f->sl_rows[s] - 1][nt > NR / 2](kc, Ax + k0 * f->nsl * MR + (int64_t)s * kc * MR,
                                                             Bx + k0 * ldv, ldv, cdst, ldv, (int)nt, kb > 0, NULL);
                }
            }
        }
        for (int64_t r = ra; r < rb; r++)
            for (int v = 0; v < nvec; v++)
                k->wino_out(Mb + (r - ra) * ldv + (int64_t)v * vl, ldm, segs[v], nseg[v],
                            f->bias ? f->bias[r] : 0.0f, j->res ? j->res + r * OHW : NULL,
                            j->y + r * OHW, g->OW, j->lo, j->hi);
    }
}

/* Shared mode, first pass: the input transform of a block for a chunk of channels. */
static void wino_in_task(void *ctx, int task, int thread) {
    (void)thread;
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const int vl = f->k->vl;
    const int64_t T = j->ntiles, C = f->g.C, ldv = f->ldv;
    const int64_t nch = (C + j->cchunk - 1) / j->cchunk;
    const int64_t bi = task / nch, c0 = task % nch * j->cchunk;
    const int64_t c1 = c0 + j->cchunk < C ? c0 + j->cchunk : C;
    const int64_t t0 = bi * f->tb, nt = T - t0 < f->tb ? T - t0 : f->tb;
    const int nvec = (int)((nt + vl - 1) / vl);
    cf_wseg segs[MAX_VEC][32];
    int nseg[MAX_VEC];
    for (int v = 0; v < nvec; v++) nseg[v] = block_segments(f, t0, nt, v, segs[v]);
    float *V = j->vall + bi * 36 * C * ldv;
    for (int64_t c = c0; c < c1; c++)
        for (int v = 0; v < nvec; v++)
            f->k->wino_in(j->xin + c * f->prep.plane, f->wtap, segs[v], nseg[v],
                          V + c * ldv + (int64_t)v * vl, C * ldv);
}

/* wino_xi mode, GEMM pass: all row slivers of block bi for one xi. */
static void wino_gemm_xi_task(void *ctx, int task, int thread) {
    (void)thread;
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr;
    const int64_t T = f->TH * f->TW, C = f->g.C, M = f->g.M, ldv = f->ldv;
    const int64_t bi = task / 36;
    const int xi = task % 36;
    const int64_t t0 = bi * f->tb, nt = T - t0 < f->tb ? T - t0 : f->tb;
    const int64_t per_xi = (int64_t)f->nsl * MR * f->K;
    const float *Ax = f->A + xi * per_xi;
    const float *Bx = j->vall + bi * 36 * C * ldv + (int64_t)xi * C * ldv;
    float *Mx = j->mall + (bi * 36 + xi) * M * ldv;
    for (int s = 0; s < f->nsl; s++)
        for (int kb = 0; kb < f->nkb; kb++) {
            const int64_t k0 = f->kb_start[kb], kc = f->kb_len[kb];
            k->ukernel[f->sl_rows[s] - 1][nt > NR / 2](kc, Ax + k0 * f->nsl * MR + (int64_t)s * kc * MR,
                                                     Bx + k0 * ldv, ldv, Mx + f->sl_row[s] * ldv, ldv,
                                                     (int)nt, kb > 0, NULL);
        }
}

#define WINO_OUT_ROWS 16 /* output channels per output-transform task */

/* wino_xi mode, output pass: WINO_OUT_ROWS output channels of block bi. */
static void wino_out_xi_task(void *ctx, int task, int thread) {
    (void)thread;
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const int vl = f->k->vl;
    const int64_t T = j->ntiles, M = g->M, ldv = f->ldv, OHW = g->OH * g->OW;
    const int64_t nrt = (M + WINO_OUT_ROWS - 1) / WINO_OUT_ROWS;
    const int64_t bi = task / nrt, r0 = task % nrt * WINO_OUT_ROWS;
    const int64_t r1 = r0 + WINO_OUT_ROWS < M ? r0 + WINO_OUT_ROWS : M;
    const int64_t t0 = bi * f->tb, nt = T - t0 < f->tb ? T - t0 : f->tb;
    const int nvec = (int)((nt + vl - 1) / vl);
    cf_wseg segs[MAX_VEC][32];
    int nseg[MAX_VEC];
    for (int v = 0; v < nvec; v++) nseg[v] = block_segments(f, t0, nt, v, segs[v]);
    const float *Mb = j->mall + bi * 36 * M * ldv;
    for (int64_t r = r0; r < r1; r++)
        for (int v = 0; v < nvec; v++)
            f->k->wino_out(Mb + r * ldv + (int64_t)v * vl, M * ldv, segs[v], nseg[v],
                           f->bias ? f->bias[r] : 0.0f, j->res ? j->res + r * OHW : NULL,
                           j->y + r * OHW, g->OW, j->lo, j->hi);
}

void cf_wino_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                   pl_threadpool *pool) {
    const cf_geom *g = &f->g;
    const size_t ws_stride = ((f->ws_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
    wino_job j = {f, xin, res, y, ws, ws_stride, NULL, NULL, 1, f->TH * f->TW, -INFINITY, INFINITY};
    const bool clamp = f->act.kind == PL_CONV_ACT_NONE || f->act.kind == PL_CONV_ACT_RELU ||
                       f->act.kind == PL_CONV_ACT_CLIP;
    if (f->act.kind == PL_CONV_ACT_RELU) j.lo = 0.0f;
    if (f->act.kind == PL_CONV_ACT_CLIP) {
        j.lo = f->act.alpha;
        j.hi = f->act.beta;
    }
    if (f->wino_shared) {
        /* the transformed input follows the prepared planes in the shared scratch */
        j.vall = (float *)xin + g->C * f->prep.npy * f->prep.npx * f->prep.plane;
        const int64_t want = 4 * (int64_t)pl_threadpool_size(pool);
        int64_t per_block = (want + f->nblocks - 1) / f->nblocks;
        if (per_block > g->C) per_block = g->C;
        j.cchunk = (g->C + per_block - 1) / per_block;
        const int64_t nin = f->nblocks * ((g->C + j.cchunk - 1) / j.cchunk);
        if (nin == 1) wino_in_task(&j, 0, 0);
        else pl_threadpool_run(pool, wino_in_task, &j, (int)nin);
    }
    if (f->wino_xi) {
        /* the shared region lies right before the thread workspaces (conv_plan.h) */
        j.mall = ws - ((f->shared_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
        pl_threadpool_run(pool, wino_gemm_xi_task, &j, (int)(36 * f->nblocks));
        const int64_t nout = f->nblocks * ((g->M + WINO_OUT_ROWS - 1) / WINO_OUT_ROWS);
        if (nout == 1) wino_out_xi_task(&j, 0, 0);
        else pl_threadpool_run(pool, wino_out_xi_task, &j, (int)nout);
    } else {
        const int ntasks = (int)(f->nblocks * f->mparts);
        if (ntasks == 1) wino_task(&j, 0, 0);
        else pl_threadpool_run(pool, wino_task, &j, ntasks);
    }
    if (!clamp) cf_epilogue(f, y, g->OH * g->OW, g->M, g->OH * g->OW, NULL, NULL, 0);
}

/* Batched mode, GEMM pass: one xi, every row sliver times every tile block, blocks
 * innermost so that a sliver's K block of U_xi (in L1) serves all the group's tiles
 * (V_xi of the group stays in L2). */
static void wino_gemm_batch_task(void *ctx, int task, int thread) {
    (void)thread;
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr;
    const int64_t C = f->g.C, M = f->g.M, ldv = f->ldv;
    const int xi = task;
    const int64_t nb = (j->ntiles + f->tb - 1) / f->tb;
    const int64_t per_xi = (int64_t)f->nsl * MR * f->K;
    const float *Ax = f->A + xi * per_xi;
    for (int s = 0; s < f->nsl; s++)
        for (int kb = 0; kb < f->nkb; kb++) {
            const int64_t k0 = f->kb_start[kb], kc = f->kb_len[kb];
            const float *As = Ax + k0 * f->nsl * MR + (int64_t)s * kc * MR;
            for (int64_t bi = 0; bi < nb; bi++) {
                const int64_t t0 = bi * f->tb, nt = j->ntiles - t0 < f->tb ? j->ntiles - t0 : f->tb;
                const float *Bx = j->vall + (bi * 36 + xi) * C * ldv;
                float *Mx = j->mall + (bi * 36 + xi) * M * ldv;
                k->ukernel[f->sl_rows[s] - 1][nt > NR / 2](kc, As, Bx + k0 * ldv, ldv,
                                                         Mx + f->sl_row[s] * ldv, ldv, (int)nt,
                                                         kb > 0, NULL);
            }
        }
}

void cf_wino_batch(const pl_conv_fast *f, const float *xin, int64_t nimg, const float *res,
                   float *y, float *ws, pl_threadpool *pool) {
    const cf_geom *g = &f->g;
    wino_job j = {f, xin, res, y, ws, 0, NULL, NULL, 1, nimg * f->TH * f->TW, -INFINITY, INFINITY};
    const bool clamp = f->act.kind == PL_CONV_ACT_NONE || f->act.kind == PL_CONV_ACT_RELU ||
                       f->act.kind == PL_CONV_ACT_CLIP;
    if (f->act.kind == PL_CONV_ACT_RELU) j.lo = 0.0f;
    if (f->act.kind == PL_CONV_ACT_CLIP) {
        j.lo = f->act.alpha;
        j.hi = f->act.beta;
    }
    const int64_t nb = (j.ntiles + f->tb - 1) / f->tb;
    j.vall = (float *)xin + f->img_prep * f->wino_batch;
    j.mall = ws - ((f->shared_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
    const int64_t want = 4 * (int64_t)pl_threadpool_size(pool);
    int64_t per_block = (want + nb - 1) / nb;
    if (per_block > g->C) per_block = g->C;
    j.cchunk = (g->C + per_block - 1) / per_block;
    pl_threadpool_run(pool, wino_in_task, &j, (int)(nb * ((g->C + j.cchunk - 1) / j.cchunk)));
    pl_threadpool_run(pool, wino_gemm_batch_task, &j, 36);
    pl_threadpool_run(pool, wino_out_xi_task, &j, (int)(nb * ((g->M + WINO_OUT_ROWS - 1) / WINO_OUT_ROWS)));
    if (!clamp) cf_epilogue(f, y, g->OH * g->OW, nimg * g->M, g->OH * g->OW, NULL, NULL, 0);
}
