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
 * not once per image), then the output transform runs over (block, channels) tasks.
 *
 * Stride 2 (conv_winograd_s2.c): the four input phases make the layer four stride-1
 * convolutions with 2x2, 2x1, 1x2 and 1x1 kernels, all by F(4x4, 2x2) over the same 25
 * positions; position xi is one GEMM over the K = wkq[xi] C rows of the phases that
 * have a product there (81 C multiply-adds a tile and channel pair against direct's
 * 144). The 10x10 patches are gathered from the raw planes by the input-transform pass
 * (no phase-split copy), and images run as batched groups (of 1 at batch 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_plan.h"

#define WINO_V_CAP (640 * 1024)  /* bytes of transformed input per task */
#define WINO_M_CAP (256 * 1024)  /* bytes of GEMM products per pass */

bool cf_wino_applies(const cf_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->SH == g->SW && (g->SH == 1 || g->SH == 2) &&
           g->DH == 1 && g->DW == 1 && g->G == 1;
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
/* Stride 2 (conv_bench --batch 16, ResNet-50's three layers): groups of 196 tiles (4
 * images at 28x28 outputs, 13 at 14x14, 16 at 7x7) ran 5-15% faster than 64-128 and as
 * fast as 256; every stride-2 plane runs batched at batch > 1 (one image's 49 tiles
 * waste a quarter of the last vector, and the 9x larger transformed weights are read
 * once per group). */
#define WINO2_BATCH_TILES 196

int cf_wino_batch_size(const cf_geom *g) {
    const int64_t T = ((g->OH + 3) / 4) * ((g->OW + 3) / 4);
    const int64_t bt = g->SH == 2 ? WINO2_BATCH_TILES : WINO_BATCH_TILES;
    if (g->N <= 1 || (T >= 32 && g->SH == 1)) return 1;
    int64_t n = (bt + T - 1) / T;
    if (n > g->N) n = g->N;
    return (int)n;
}

/* Strides of the transformed blocks (slots of C rows) and of the products (positions
 * of M rows): one cache line more than the rows, so that the stores of a transform to
 * its 36 or 81 slots do not all fall in one L1 set (C ldv floats is a multiple of 4 KiB
 * whenever C is a multiple of 32). Measured (conv_bench, CPU time, alternating runs):
 * ResNet-50's stride-1 3x3 layers at batch 1 7% faster in total (56x56 and 14x14 7-10%,
 * 28x28 even). */
static void wino_strides(pl_conv_fast *f) {
    f->wss = f->g.C * f->ldv + 16;
    f->wms = f->g.M * f->ldv + 16;
    if (f->wpos == 25)
        for (int e = 0; e < 100; e++) f->wtap[e] = e * f->ldv; /* the gathered patches */
}

/* Stride 2: whether phase p = 2a + b has a product at position xi = 5i + j of the 5x5
 * (a phase with one tap down, a = 1, has none in row i = 4, the point at infinity; one
 * tap across, b = 1, none in column j = 4). */
static bool wino2_has(int p, int xi) {
    return (p / 2 == 0 || xi / 5 < 4) && (p % 2 == 0 || xi % 5 < 4);
}

/* Stride 2: the slot of phase p at position xi (the phases before p with a product). */
static int wino2_slot(int p, int xi) {
    int slot = 0;
    for (int q = 0; q < p; q++) slot += wino2_has(q, xi);
    return slot;
}

/* Stride 2: the offsets of the input transform's 81 values in a transformed block, in
 * the transform's order (phase by phase, the positions with a product). */
static void wino2_offsets(pl_conv_fast *f) {
    if (f->wpos != 25) return;
    int e = 0;
    for (int p = 0; p < 4; p++)
        for (int xi = 0; xi < 25; xi++)
            if (wino2_has(p, xi)) f->wvo[e++] = (f->wvrow[xi] + wino2_slot(p, xi)) * f->wss;
}

/* Batched Winograd: a group's images are prepared one after the other (img_prep floats
 * each), their transformed input follows them (blocks of up to NR tiles, block b at
 * b * wslots*wss), and the products of all blocks are in the shared region (block b,
 * position xi at (b*wpos + xi) * wms). Stride 2 at batch 1 runs the same way (one
 * image as a group, read in place). */
static pl_status wino_batch_layout(pl_conv_fast *f, int64_t T) {
    const int NR = f->k->nr, vl = f->k->vl;
    const int64_t Tb = T * f->wino_batch;
    f->img_prep = ((int64_t)f->prep_floats + 15) / 16 * 16; /* 64-byte aligned slots */
    f->nblocks = (Tb + NR - 1) / NR;
    f->tb = ((Tb + f->nblocks - 1) / f->nblocks + vl - 1) / vl * vl;
    if (f->tb > NR) f->tb = NR;
    f->nblocks = (Tb + f->tb - 1) / f->tb;
    f->ldv = (f->tb + vl - 1) / vl * vl;
    wino_strides(f);
    f->mparts = 1;
    f->chunk_sl = 1;
    f->wino_shared = true;
    f->wino_xi = false;
    f->prep_floats = (size_t)f->img_prep * (size_t)f->wino_batch +
                     (size_t)(f->wslots * f->wss) * (size_t)f->nblocks;
    f->shared_floats = (size_t)(f->wpos * f->wms) * (size_t)f->nblocks;
    wino2_offsets(f);
    f->ws_floats = f->wpatch ? (size_t)(100 * f->ldv) : 0;
    return PL_OK;
}

pl_status cf_wino_create(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr, vl = k->vl;
    f->TH = (g->OH + 3) / 4;
    f->TW = (g->OW + 3) / 4;
    /* split in 4 phases along x only (stride 2: 8): rows stay whole (tile row ty starts at
     * row 4 ty, stride 2: 8 ty); the patch is 6x6 (stride 2: 10x10) */
    const bool s2 = g->SH == 2;
    const int pt = s2 ? 10 : 6;
    f->wrow = s2 ? 8 : 4;
    cf_geom pg = *g;
    pg.KH = pg.KW = pt;
    pg.SH = 1;
    pg.SW = f->wrow;
    pg.DH = pg.DW = 1;
    pg.OH = f->wrow * (f->TH - 1) + 1;
    pg.OW = f->TW;
    if (s2) {
        /* the patches are gathered per channel and tile block by the in-transform pass
         * (wtap is set with ldv); the preparation is a plain copy of the raw planes
         * (batched groups) or nothing (the image is read in place) */
        cf_geom cg = *g;
        cg.KH = cg.KW = cg.SH = cg.SW = cg.DH = cg.DW = 1;
        cg.PT = cg.PL = 0;
        cg.OH = g->H;
        cg.OW = g->W;
        f->wg = cg;
        cf_prep_setup(&cg, &f->prep, true);
        f->prep_floats = f->wino_batch > 1 ? (size_t)(g->C * g->H * g->W) : 0;
    } else {
        f->wg = pg;
        cf_prep_setup(&pg, &f->prep, false);
        const int64_t nph = f->prep.npy * f->prep.npx;
        /* prepared like IGEMM input: channel c at c * plane, phases C * plane apart */
        for (int i = 0; i < pt; i++)
            for (int j = 0; j < pt; j++)
                f->wtap[i * pt + j] = cf_tap_offset(&pg, &f->prep, i, j, g->C * f->prep.plane);
        f->prep_floats = (size_t)(g->C * nph * f->prep.plane);
    }

    /* GEMM shape per xi: M x C times C x tiles */
    f->K = g->C;
    PL_TRY(cf_slivers(g->M, MR, &f->nsl, &f->sl_row, &f->sl_rows));
    const int64_t l1 = (int64_t)(pl_cpu()->l1d ? pl_cpu()->l1d : 32768);
    int64_t kcmax = l1 / 2 / (MR * 4) / 8 * 8;
    kcmax = kcmax < 64 ? 64 : kcmax > 512 ? 512 : kcmax;
    PL_TRY(cf_kblocks(f->K, kcmax, &f->nkb, &f->kb_start, &f->kb_len));
    const int64_t per_xi = (int64_t)f->nsl * MR * f->K;
    /* positions: K of each (in C units), its rows in a transformed block, its weights */
    f->wpos = s2 ? 25 : 36;
    int64_t q = 0;
    for (int xi = 0; xi < f->wpos; xi++) {
        f->wkq[xi] = s2 ? wino2_slot(4, xi) : 1;
        f->wvrow[xi] = q;
        f->wapos[xi] = q * per_xi;
        q += f->wkq[xi];
    }
    f->wslots = q;
    if ((double)per_xi * (double)q > 1e9) return pl_error(PL_ERR_UNSUPPORTED, "convolution weights too large to pack");
    float *tmp = malloc(sizeof(float) * (size_t)(q * g->M * g->C));
    if (!tmp || !(f->A = cf_alloc(sizeof(float) * (size_t)(q * per_xi)))) {
        free(tmp);
        return pl_error(PL_ERR_NOMEM, "out of memory packing convolution weights");
    }
    /* tmp: the M x C matrix of (position xi, slot) at (wvrow[xi] + slot) * M*C */
    for (int64_t m = 0; m < g->M; m++)
        for (int64_t c = 0; c < g->C; c++) {
            if (s2) {
                double u[4][25];
                cf_wino2_kernel(w + (m * g->C + c) * 9, u);
                for (int xi = 0; xi < 25; xi++)
                    for (int p = 0; p < 4; p++)
                        if (wino2_has(p, xi))
                            tmp[((f->wvrow[xi] + wino2_slot(p, xi)) * g->M + m) * g->C + c] = (float)u[p][xi];
                continue;
            }
            double u[36];
            transform_kernel(w + (m * g->C + c) * 9, u);
            for (int xi = 0; xi < 36; xi++) tmp[((int64_t)xi * g->M + m) * g->C + c] = (float)u[xi];
        }
    for (int64_t r = 0; r < q; r++) cf_pack_a(f, tmp + r * g->M * g->C, g->C, f->A + r * per_xi);
    free(tmp);
    f->win2 = NULL;
    f->wout = k->wino_out;
    if (s2) {
        cf_wino2_select(k, &f->win2, &f->wout, &f->wpatch, &f->wprows);
        cf_wino2_pk_setup(&f->wpk, g->W, g->PL, f->TW);
    }

    const int64_t T = f->TH * f->TW;
    if (f->wino_batch > 1) return wino_batch_layout(f, T);
    if (s2) {
        f->wino_plane = true;
        return wino_batch_layout(f, T);
    }
    /* tiles per block: at most NR (NR/2 when the transformed input would not stay in
     * L2), balanced over the blocks */
    int64_t tbmax = NR;
    if ((NR / 2) % vl == 0 && f->wslots * g->C * NR * 4 > WINO_V_CAP) tbmax = NR / 2;
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
    int64_t cs = WINO_M_CAP / (f->wpos * MR * ((f->tb + vl - 1) / vl * vl) * 4);
    f->chunk_sl = (int)(cs < 1 ? 1 : cs > sl_part ? sl_part : cs);
    /* V and the products are kept with a row stride of whole vectors */
    f->ldv = (f->tb + vl - 1) / vl * vl;
    wino_strides(f);
    const size_t vblock = (size_t)(f->wslots * f->wss);
    if (f->wino_shared) f->prep_floats += vblock * (size_t)f->nblocks;
    /* Fewer tile blocks than threads (14x14: one): parts of 2-3 row slivers balanced
     * badly (19 slivers in 8 parts ran 11 / 8), and one-sliver parts re-read the
     * block's input per sliver; tasks over (block, xi) instead read each U_xi and
     * V_xi once and keep V_xi in L1 across the slivers, into products kept for the whole
     * plane (36 x M x ldv per block, 590 KB at 14x14x256). */
    f->wino_xi = f->wino_shared && f->nblocks < f->nthreads;
    if (f->wino_xi) {
        f->shared_floats = (size_t)(f->wpos * f->wms) * (size_t)f->nblocks;
        f->ws_floats = 0;
        return PL_OK;
    }
    f->ws_floats = (f->wino_shared ? 0 : vblock) + (size_t)(f->wpos * f->chunk_sl * MR * f->ldv);
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
            s->in = img * f->img_prep + 4 * ty * f->prep.Wph + tx; /* stride 1 */
            s->out = img * g->M * g->OH * g->OW + 4 * ty * g->OW + 4 * tx;
        }
        const int64_t cols = g->OW - 4 * tx;
        sg[n - 1].last_cols = (int)(cols < 4 ? cols : 4);
    }
    return n;
}

/* Input transform of channel plane src for one vector of tiles into dst (the channel's
 * row of the vector in a transformed block). Stride 1 only: stride 2 always gathers
 * patches first (wino_in_task's wpatch branch). */
static inline void transform_in(const pl_conv_fast *f, const float *src, const cf_wseg *sg, int n,
                                float *dst) {
    f->k->wino_in(src, f->wtap, sg, n, dst, f->wss);
}

/* Products of position xi for row sliver s: its packed weights times the position's rows
 * of the transformed block V (K = wkq[xi] C, in K blocks that do not cross phases) into c
 * (row stride ldc), nt tiles. */
static inline void pos_gemm(const pl_conv_fast *f, int xi, int s, const float *V, float *c,
                            int64_t ldc, int64_t nt) {
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr;
    const int64_t C = f->g.C, ldv = f->ldv;
    const float *Ax = f->A + f->wapos[xi];
    for (int q = 0; q < f->wkq[xi]; q++)
        for (int kb = 0; kb < f->nkb; kb++) {
            const int64_t k0 = q * C + f->kb_start[kb], kc = f->kb_len[kb];
            const float *Bq = V + (f->wvrow[xi] + q) * f->wss + f->kb_start[kb] * ldv;
            k->ukernel[f->sl_rows[s] - 1][nt > NR / 2](kc, Ax + k0 * f->nsl * MR + (int64_t)s * kc * MR,
                                                     Bq, ldv, c, ldc, (int)nt,
                                                     q > 0 || kb > 0, NULL);
        }
}

static void wino_task(void *ctx, int task, int thread) {
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const int vl = f->k->vl;
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
        V = j->vall + bi * f->wslots * f->wss;
        Mb = j->ws + (size_t)thread * j->ws_stride;
    } else {
        V = j->ws + (size_t)thread * j->ws_stride;
        Mb = V + f->wslots * f->wss;
        for (int64_t c = 0; c < C; c++)
            for (int v = 0; v < nvec; v++)
                transform_in(f, j->xin + c * f->prep.plane, segs[v], nseg[v], V + c * ldv + (int64_t)v * vl);
    }

    for (int a = s0; a < s1; a += f->chunk_sl) {
        const int b = a + f->chunk_sl < s1 ? a + f->chunk_sl : s1;
        const int64_t ra = f->sl_row[a], rb = f->sl_row[b - 1] + f->sl_rows[b - 1];
        const int64_t ldm = (rb - ra) * ldv;
        for (int xi = 0; xi < f->wpos; xi++)
            for (int s = a; s < b; s++) pos_gemm(f, xi, s, V, Mb + xi * ldm + (f->sl_row[s] - ra) * ldv, ldv, nt);
        for (int64_t r = ra; r < rb; r++)
            for (int v = 0; v < nvec; v++)
                f->wout(Mb + (r - ra) * ldv + (int64_t)v * vl, ldm, segs[v], nseg[v],
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
    float *V = j->vall + bi * f->wslots * f->wss;
    if (f->wpatch) {
        /* stride 2: gather the block's patches per channel (lanes past the block's
         * tiles stay 0), then transform whole vectors */
        const cf_geom *g = &f->g;
        const int64_t TI = f->TH * f->TW, TW = f->TW;
        float *pb = j->ws + (size_t)thread * j->ws_stride;
        memset(pb, 0, sizeof(float) * (size_t)(100 * ldv));
        /* the block's tile rows (image, row, first tile), packed nmax to a vector */
        const int nmax = TW + 1 <= 16 ? (int)(16 / (TW + 1)) : 1;
        int64_t rimg[MAX_VEC * 16 + 2], rty[MAX_VEC * 16 + 2], rrs[MAX_VEC * 16 + 2];
        int nr = 0;
        for (int64_t t = t0; t < t0 + nt; nr++) {
            rimg[nr] = t / TI;
            rty[nr] = t % TI / TW;
            rrs[nr] = rimg[nr] * TI + rty[nr] * TW;
            t = rrs[nr] + TW;
        }
        for (int64_t c = c0; c < c1; c++) {
            for (int r0 = 0; r0 < nr; r0 += nmax) {
                const int n = nr - r0 < nmax ? nr - r0 : nmax;
                if (nmax == 1) {
                    const int64_t rs = rrs[r0];
                    f->wpatch(j->xin + rimg[r0] * f->img_prep + c * g->H * g->W, g->H, g->W, g->PT,
                              g->PL, rty[r0], t0 > rs ? t0 - rs : 0,
                              t0 + nt - rs < TW ? t0 + nt - rs : TW, pb, rs - t0, ldv);
                    continue;
                }
                const float *xs[16];
                for (int q = 0; q < n; q++) xs[q] = j->xin + rimg[r0 + q] * f->img_prep + c * g->H * g->W;
                f->wprows(xs, rty + r0, n, g->H, g->W, g->PT, g->PL, TW, t0 - rrs[r0],
                          t0 + nt - rrs[r0] < n * TW ? t0 + nt - rrs[r0] : n * TW, pb, rrs[r0] - t0, ldv,
                          &f->wpk);
            }
            for (int v = 0; v < nvec; v++) {
                f->win2(pb + (int64_t)v * vl, f->wtap, V + c * ldv + (int64_t)v * vl, f->wvo);
            }
        }
        return;
    }
    cf_wseg segs[MAX_VEC][32];
    int nseg[MAX_VEC];
    for (int v = 0; v < nvec; v++) nseg[v] = block_segments(f, t0, nt, v, segs[v]);
    for (int64_t c = c0; c < c1; c++)
        for (int v = 0; v < nvec; v++)
            transform_in(f, j->xin + c * f->prep.plane, segs[v], nseg[v], V + c * ldv + (int64_t)v * vl);
}

/* wino_xi mode, GEMM pass: all row slivers of block bi for one xi. */
static void wino_gemm_xi_task(void *ctx, int task, int thread) {
    (void)thread;
    const wino_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const int64_t T = f->TH * f->TW, ldv = f->ldv;
    const int64_t bi = task / f->wpos;
    const int xi = task % f->wpos;
    const int64_t t0 = bi * f->tb, nt = T - t0 < f->tb ? T - t0 : f->tb;
    const float *V = j->vall + bi * f->wslots * f->wss;
    float *Mx = j->mall + (bi * f->wpos + xi) * f->wms;
    for (int s = 0; s < f->nsl; s++) pos_gemm(f, xi, s, V, Mx + f->sl_row[s] * ldv, ldv, nt);
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
    const float *Mb = j->mall + bi * f->wpos * f->wms;
    for (int64_t r = r0; r < r1; r++)
        for (int v = 0; v < nvec; v++)
            f->wout(Mb + r * ldv + (int64_t)v * vl, f->wms, segs[v], nseg[v],
                           f->bias ? f->bias[r] : 0.0f, j->res ? j->res + r * OHW : NULL,
                           j->y + r * OHW, g->OW, j->lo, j->hi);
}

void cf_wino_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                   pl_threadpool *pool) {
    if (f->wino_plane) {
        cf_wino_batch(f, xin, 1, res, y, ws, pool);
        return;
    }
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
        pl_threadpool_run(pool, wino_gemm_xi_task, &j, (int)(f->wpos * f->nblocks));
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
    const int64_t C = f->g.C, ldv = f->ldv;
    const int xi = task;
    const int64_t nb = (j->ntiles + f->tb - 1) / f->tb;
    const float *Ax = f->A + f->wapos[xi];
    for (int s = 0; s < f->nsl; s++)
        for (int q = 0; q < f->wkq[xi]; q++)
            for (int kb = 0; kb < f->nkb; kb++) {
                const int64_t k0 = q * C + f->kb_start[kb], kc = f->kb_len[kb];
                const float *As = Ax + k0 * f->nsl * MR + (int64_t)s * kc * MR;
                for (int64_t bi = 0; bi < nb; bi++) {
                    const int64_t t0 = bi * f->tb, nt = j->ntiles - t0 < f->tb ? j->ntiles - t0 : f->tb;
                    const float *Bx = j->vall + (bi * f->wslots + f->wvrow[xi] + q) * f->wss;
                    float *Mx = j->mall + (bi * f->wpos + xi) * f->wms;
                    k->ukernel[f->sl_rows[s] - 1][nt > NR / 2](kc, As, Bx + f->kb_start[kb] * ldv, ldv,
                                                             Mx + f->sl_row[s] * ldv, ldv, (int)nt,
                                                             q > 0 || kb > 0, NULL);
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
    /* scratch: [prepared images, transformed input][products][thread workspaces] */
    j.mall = ws - ((f->shared_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
    j.vall = j.mall - ((f->prep_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float) +
             f->img_prep * f->wino_batch;
    j.ws_stride = ((f->ws_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
    const int64_t want = 4 * (int64_t)pl_threadpool_size(pool);
    int64_t per_block = (want + nb - 1) / nb;
    if (per_block > g->C) per_block = g->C;
    j.cchunk = (g->C + per_block - 1) / per_block;
    pl_threadpool_run(pool, wino_in_task, &j, (int)(nb * ((g->C + j.cchunk - 1) / j.cchunk)));
    pl_threadpool_run(pool, wino_gemm_batch_task, &j, f->wpos);
    pl_threadpool_run(pool, wino_out_xi_task, &j, (int)(nb * ((g->M + WINO_OUT_ROWS - 1) / WINO_OUT_ROWS)));
    if (!clamp) cf_epilogue(f, y, g->OH * g->OW, nimg * g->M, g->OH * g->OW, NULL, NULL, 0);
}
