/* conv_igemm.c -- implicit-GEMM convolution: per group, C[Mg, pixels] = A[Mg, K] * B[K,
 * pixels] with K ordered (ky, kx, c). B is never formed: in the prepared input planes
 * (conv_fast.c) row k of B, for the output pixels of one output row, is a contiguous run
 * starting at koff[k] + (grid offset of the pixel). A B sliver (NR consecutive output
 * pixels) is packed from those runs (cf_bseg), so tiles go straight to y with the
 * epilogue applied while they are hot.
 *
 * Per task (a block of row slivers x a block of columns), for each column block of nc
 * and each K block of kc: pack the B block (kc x nc, NR-wide slivers) into the thread's
 * workspace, then run every A sliver (kc x MR, packed at planning) against every B
 * sliver. The A sliver stays in L1 while B slivers stream from L2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_plan.h"

/* Floats between packed slivers (one cache line), against L1 set aliasing. */
#define SLIVER_PAD 16

static int64_t round_down(int64_t v, int64_t m) { return v / m * m; }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Modelled cost of one task: its MACs (column slivers at their kernel width), packing
 * its B columns (~8 MACs a float) and reading its A rows once (~4 MACs a float). */
static double grid_task_cost(const pl_conv_fast *f, int ti, int tj, int tm, int tn, int64_t nu) {
    const int NR = f->k->nr;
    const int s0 = f->nsl * ti / tm, s1 = f->nsl * (ti + 1) / tm;
    const int64_t v0 = nu * tj / tn, v1 = nu * (tj + 1) / tn;
    if (s0 >= s1 || v0 >= v1) return 0;
    double rows = 0;
    for (int s = s0; s < s1; s++) rows += f->k->mr; /* a short sliver costs a full one */
    int64_t last = f->Np - (v1 - 1) * NR;
    if (last > NR) last = NR;
    const double cols = (double)(v1 - v0 - 1) * NR + (last <= NR / 2 ? NR / 2 : NR);
    return rows * cols * (double)f->K + 8.0 * cols * (double)f->K + 4.0 * rows * (double)f->K;
}

/* Threads over row slivers (tm) x column slivers (tn): the grid whose tasks, handed out
 * in order to the first free thread as the pool does, finish first by the cost model
 * above; among grids within 5% of the best, the one with most tasks (up to 4 per thread:
 * slack when a thread loses its core for a while), as long as a task's A stays within
 * half of L2. */
static void choose_grid(pl_conv_fast *f, int nt) {
    const int64_t nu = (f->Np + f->k->nr - 1) / f->k->nr;
    f->tm = f->tn = 1;
    if (f->g.G >= nt || nt <= 1 || nt > 64) return;
    const int64_t l2 = (int64_t)(pl_cpu()->l2 ? pl_cpu()->l2 : 1 << 20);
    const int maxt = 8 * nt < 64 ? 8 * nt : 64;
    enum { MAXC = 320 }; /* pairs tm x tn <= 64: 280 */
    double span_of[MAXC];
    int cand_m[MAXC], cand_n[MAXC], nc = 0;
    double best = -1;
    for (int tm = 1; tm <= f->nsl && tm <= maxt; tm++)
        for (int tn = 1; tn <= nu && tm * tn <= maxt; tn++) {
            if (tm * tn < nt && !(tm == f->nsl && tn == nu)) continue;
            double busy[64] = {0}, span = 0;
            for (int t = 0; t < tm * tn; t++) {
                int th = 0;
                for (int i = 1; i < nt; i++)
                    if (busy[i] < busy[th]) th = i;
                busy[th] += grid_task_cost(f, t / tn, t % tn, tm, tn, nu);
                if (busy[th] > span) span = busy[th];
            }
            if (nc < MAXC) {
                span_of[nc] = span;
                cand_m[nc] = tm;
                cand_n[nc] = tn;
                nc++;
            }
            if (best < 0 || span < best) best = span;
        }
    int pick = -1;
    for (int c = 0; c < nc; c++) {
        if (span_of[c] > 1.05 * best) continue;
        const int64_t a_bytes = (int64_t)((f->nsl + cand_m[c] - 1) / cand_m[c]) * f->k->mr * f->K * 4;
        const int tasks = cand_m[c] * cand_n[c], cap = 4 * nt;
        if (pick < 0) {
            pick = c;
            continue;
        }
        const int pt = cand_m[pick] * cand_n[pick];
        const int64_t pa = (int64_t)((f->nsl + cand_m[pick] - 1) / cand_m[pick]) * f->k->mr * f->K * 4;
        const bool fits = a_bytes <= l2 / 2 || cand_n[c] == 1, pfits = pa <= l2 / 2 || cand_n[pick] == 1;
        const int score = tasks <= cap ? tasks : cap - (tasks - cap), pscore = pt <= cap ? pt : cap - (pt - cap);
        if ((fits && !pfits) || (fits == pfits && (score > pscore || (score == pscore && span_of[c] < span_of[pick])))) pick = c;
    }
    if (pick >= 0) {
        f->tm = cand_m[pick];
        f->tn = cand_n[pick];
    }
}

/* Group gi's weights as an Mg x K matrix with K ordered (tap, c). */
static void reorder_weights(const cf_geom *g, const float *w, int64_t gi, float *dst) {
    const int64_t taps = g->KH * g->KW, K = taps * g->Cg;
    const float *wg = w + gi * g->Mg * g->Cg * taps;
    for (int64_t m = 0; m < g->Mg; m++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t c = 0; c < g->Cg; c++) dst[m * K + t * g->Cg + c] = wg[(m * g->Cg + c) * taps + t];
}

/* C^T mode: weights packed as B slivers (K block b, channel sliver v at
 * kb_start[b]*ncs*NR + v*kb_len[b]*NR), pixels as row slivers packed per run. */
static pl_status igemm_t_setup(pl_conv_fast *f, const float *w, int64_t kcmax) {
    const cf_geom *g = &f->g;
    const int MR = f->k->mr, NR = f->k->nr;
    PL_TRY(cf_slivers(f->Np, MR, &f->nsl, &f->sl_row, &f->sl_rows));
    f->ncs = (int)((g->Mg + NR - 1) / NR);
    const int64_t per_group = (int64_t)f->ncs * NR * f->K;
    if ((double)per_group * (double)g->G > 1e9)
        return pl_error(PL_ERR_UNSUPPORTED, "convolution weights too large to pack");
    float *tmp = malloc(sizeof(float) * (size_t)(g->Mg * f->K));
    if (!tmp || !(f->A = cf_alloc(sizeof(float) * (size_t)(per_group * g->G)))) {
        free(tmp);
        return pl_error(PL_ERR_NOMEM, "out of memory packing convolution weights");
    }
    for (int64_t gi = 0; gi < g->G; gi++) {
        reorder_weights(g, w, gi, tmp);
        float *dst = f->A + gi * per_group;
        for (int b = 0; b < f->nkb; b++) {
            const int64_t k0 = f->kb_start[b], kc = f->kb_len[b];
            for (int v = 0; v < f->ncs; v++) {
                float *d = dst + k0 * f->ncs * NR + (int64_t)v * kc * NR;
                for (int64_t kk = 0; kk < kc; kk++)
                    for (int j = 0; j < NR; j++) {
                        const int64_t m = (int64_t)v * NR + j;
                        d[kk * NR + j] = m < g->Mg ? tmp[m * f->K + k0 + kk] : 0.0f;
                    }
            }
        }
    }
    free(tmp);
    f->tm = 1;
    f->tn = 1;
    if (g->G == 1 && f->nthreads > 1) {
        /* Threads: every task would repack all pixel slivers for its channels (35% more
         * work on ResNet-50's 7x7 layers at 8 tasks), so they are packed once, in a
         * parallel pass, into the shared region; then tasks take a few channel slivers
         * each, and pixel-sliver parts as well when there are few channel slivers (about
         * four tasks per thread balance the load). */
        const int want = 4 * f->nthreads;
        f->t_shared = true;
        f->tn = f->ncs <= 2 * want ? f->ncs : want;
        f->tm = (want + f->tn - 1) / f->tn;
        if (f->tm > f->nsl) f->tm = f->nsl;
        f->shared_floats = (size_t)(f->K * MR + (int64_t)f->nkb * SLIVER_PAD) * (size_t)f->nsl;
        const int64_t cs_task = (f->ncs + f->tn - 1) / f->tn, sl_task = (f->nsl + f->tm - 1) / f->tm;
        f->ws_floats = (size_t)(cs_task * sl_task * MR * NR);
        return PL_OK;
    }
    /* threads over groups (or one thread): each task packs its group's pixels */
    /* A block (all pixel slivers, one K block), the C^T tiles, the segments */
    f->ws_floats = (size_t)((kcmax * MR + SLIVER_PAD) * f->nsl) + (size_t)(f->ncs * f->nsl * MR * NR) +
                   (size_t)f->nsl * MR * sizeof(cf_bseg) / sizeof(float) + (size_t)f->nsl + 2;
    return PL_OK;
}

/* Direct small-K mode (cf_kernels.direct_run): with a short K, packing B slivers and
 * storing every 14x32 tile cost as much as the multiplies, so the kernel reads the
 * prepared rows in place with the pixels in the vector lanes (4 channels x 4 vectors a
 * strip). Measured 1 thread, CPU time, alternating with PILLAR_CONV_DIRECT=0
 * (conv_bench --ab): the stems (K = 27 MobileNetV2, 147 ResNet-50) 0.256 vs 0.297 ms and
 * 2.24-2.32 vs 2.44 ms; MobileNetV2's 1x1 layers with K <= 32 7-23% faster (96<-16
 * 112x112 0.41 vs 0.45 ms); 1x1 layers with K = 96-160 ran 3-24% slower, so 1x1 stays
 * implicit GEMM above K = 32. Tasks are output rows (64-pixel strips of a plane whose
 * rows follow each other in the grid), at least 4 per thread. PILLAR_CONV_DIRECT=0 at
 * planning turns the mode off (A/B). */
#define DK_MAX_K 160
#define DK_MAX_K_1X1 32

/* The mode's work units: 64-pixel strips when the plane's rows follow each other in the
 * prepared grid (flat), else output rows. */
static bool dk_flat(const pl_conv_fast *f) { return f->ldg == f->g.OW; }
static int64_t dk_units(const pl_conv_fast *f) { return dk_flat(f) ? (f->Np + 63) / 64 : f->g.OH; }

static bool direct_k_applies(const pl_conv_fast *f) {
    const char *env = getenv("PILLAR_CONV_DIRECT");
    if (env && env[0] == '0') return false;
    const int64_t taps = f->g.KH * f->g.KW;
    /* 1x1 with an output beyond 2 MiB (MobileNetV2's 96<-16 112x112, 4.8 MB) ran 18% slower
     * in the model at 2 threads (layer_bench --ab): its 96 strided output streams */
    const bool big_1x1 = taps == 1 && (double)f->g.M * (double)f->Np * 4.0 > 2.0 * 1048576.0;
    return f->k->direct_run && f->g.G == 1 && f->force_t != 1 && !big_1x1 &&
           f->K <= (taps > 1 ? DK_MAX_K : DK_MAX_K_1X1) && dk_units(f) >= 4 * (int64_t)f->nthreads;
}

/* Weights as [K][ldk] (k = tap, channel as in koff), zero-padded; tasks over output rows
 * (or pixel ranges of a plane whose rows follow each other in the grid). */
static pl_status direct_k_setup(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    f->direct_k = true;
    f->ldk = g->M + CF_DIRECT_PAD;
    float *tmp = malloc(sizeof(float) * (size_t)(g->M * f->K));
    if (!tmp || !(f->A = cf_alloc(sizeof(float) * (size_t)(f->K * f->ldk)))) {
        free(tmp);
        return pl_error(PL_ERR_NOMEM, "out of memory packing convolution weights");
    }
    reorder_weights(g, w, 0, tmp);
    for (int64_t k = 0; k < f->K; k++)
        for (int64_t m = 0; m < f->ldk; m++) f->A[k * f->ldk + m] = m < g->M ? tmp[m * f->K + k] : 0.0f;
    free(tmp);
    /* about 4 tasks per thread; runs of whole 64-pixel strips when the plane is flat */
    const int64_t units = dk_units(f);
    int64_t tasks = f->nthreads > 1 ? 4 * (int64_t)f->nthreads : 1;
    if (tasks > units) tasks = units;
    f->tm = (int)(tasks < 1 ? 1 : tasks);
    f->tn = 1;
    return PL_OK;
}

pl_status cf_igemm_create(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr;
    /* prepared planes (or the raw input) */
    cf_prep *pp = &f->prep;
    cf_prep_setup(g, pp, true);
    const int64_t nph = pp->npy * pp->npx;
    if (!pp->none) f->prep_floats = (size_t)(g->C * nph * pp->plane);
    f->ldg = pp->none ? g->W : pp->Wph;
    f->Np = g->OH * g->OW;

    const int64_t taps = g->KH * g->KW;
    f->K = taps * g->Cg;
    if (!(f->koff = malloc(sizeof(int64_t) * (size_t)f->K)))
        return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    const int64_t cstride = pp->none ? g->H * g->W : pp->plane;
    const int64_t phase_stride = g->Cg * cstride;
    for (int64_t ky = 0; ky < g->KH; ky++)
        for (int64_t kx = 0; kx < g->KW; kx++) {
            int64_t t = ky * g->KW + kx, base = cf_tap_offset(g, pp, ky, kx, phase_stride);
            for (int64_t c = 0; c < g->Cg; c++) f->koff[t * g->Cg + c] = base + c * cstride;
        }

    if (direct_k_applies(f)) return direct_k_setup(f, w);

    const int64_t l1 = (int64_t)(pl_cpu()->l1d ? pl_cpu()->l1d : 32768);
    const int64_t l2 = (int64_t)(pl_cpu()->l2 ? pl_cpu()->l2 : 1 << 20);
    const int64_t kcmax = clamp64(round_down(l1 / 2 / (MR * 4), 8), 64, 512);
    PL_TRY(cf_kblocks(f->K, kcmax, &f->nkb, &f->kb_start, &f->kb_len));

    /* Small planes fill NR-wide pixel tiles badly (49 pixels use 49 of 64 lanes): then
     * compute C^T, with the pixels as MR-row slivers and the channels as columns. */
    const int64_t pix_cols = f->Np / NR * NR + (f->Np % NR == 0 ? 0 : f->Np % NR <= NR / 2 ? NR / 2 : NR);
    const int64_t ch_cols = (g->Mg + NR - 1) / NR * NR;
    const double eff_n = (double)f->Np / (double)pix_cols, eff_t = (double)g->Mg / (double)ch_cols;
    /* Partly filled pixel tiles (14x14: 196 of 208 lanes) with long K and many channels
     * also run transposed: measured 4-8% faster on ResNet-50's 14x14 layers (K 512-2304,
     * 256+ channels), while short-K layers (MobileNetV2's) stay faster untransposed.
     * One thread per image only: split over threads the two were even or reversed. */
    const bool long_k = f->nthreads == 1 && f->K >= 512 && g->Mg >= 256 && eff_n < 1.0 && eff_t >= eff_n;
    f->transposed = f->force_t >= 0 ? f->force_t : eff_t > 1.1 * eff_n || long_k;
    if (f->Np > 65536) f->transposed = false; /* its workspace grows with the plane */
    if (f->transposed) return igemm_t_setup(f, w, kcmax);

    PL_TRY(cf_slivers(g->Mg, MR, &f->nsl, &f->sl_row, &f->sl_rows));

    /* A: per group, the Mg x K matrix with K ordered (tap, c), packed */
    const int64_t per_group = (int64_t)f->nsl * MR * f->K;
    if ((double)per_group * (double)g->G > 1e9)
        return pl_error(PL_ERR_UNSUPPORTED, "convolution weights too large to pack");
    float *tmp = malloc(sizeof(float) * (size_t)(g->Mg * f->K));
    if (!tmp || !(f->A = cf_alloc(sizeof(float) * (size_t)(per_group * g->G)))) {
        free(tmp);
        return pl_error(PL_ERR_NOMEM, "out of memory packing convolution weights");
    }
    for (int64_t gi = 0; gi < g->G; gi++) {
        reorder_weights(g, w, gi, tmp);
        cf_pack_a(f, tmp, f->K, f->A + gi * per_group);
    }
    free(tmp);

    choose_grid(f, f->nthreads);
    /* Packing B pays off only when several A slivers reuse it. */
    f->direct_b = pp->none && f->ldg == g->OW && taps == 1 && (f->nsl + f->tm - 1) / f->tm <= 2;
    const int64_t nu = (f->Np + NR - 1) / NR;
    const int64_t cols_task = (nu + f->tn - 1) / f->tn * NR;
    f->rows_task = (int64_t)((f->nsl + f->tm - 1) / f->tm) * MR;
    int64_t nc = clamp64(round_down(l2 / 2 / (kcmax * 4), NR), NR, 2048);
    if (nc > cols_task) nc = cols_task;
    f->nc = nc;
    /* B block, then the segments of its slivers (at most NR each) and their index */
    const int64_t nsv_max = (nc + NR - 1) / NR;
    f->ws_floats = (size_t)(kcmax * nc + nsv_max * SLIVER_PAD) +
                   (size_t)nsv_max * NR * sizeof(cf_bseg) / sizeof(float) + (size_t)nsv_max + 2;
    return PL_OK;
}

void cf_pack_a(const pl_conv_fast *f, const float *W, int64_t ldw, float *dst) {
    const int MR = f->k->mr;
    for (int b = 0; b < f->nkb; b++) {
        const int64_t k0 = f->kb_start[b], kc = f->kb_len[b];
        for (int s = 0; s < f->nsl; s++) {
            float *d = dst + k0 * f->nsl * MR + (int64_t)s * kc * MR;
            const float *wr = W + f->sl_row[s] * ldw + k0;
            for (int64_t kk = 0; kk < kc; kk++)
                for (int i = 0; i < MR; i++) d[kk * MR + i] = i < f->sl_rows[s] ? wr[i * ldw + kk] : 0.0f;
        }
    }
}

typedef struct ig_job {
    const pl_conv_fast *f;
    const float *xin, *res;
    float *y;
    float *ws;
    size_t ws_stride;
    float *pk; /* IGEMM_T shared mode: the packed pixel slivers of all K blocks */
} ig_job;

/* The runs of sliver columns [p0, p0 + nr) (output pixels) in the prepared grid, split
 * at output rows and at vectors of vl lanes. */
static int sliver_segments(const pl_conv_fast *f, int64_t p0, int nr, cf_bseg *seg) {
    const int64_t OW = f->g.OW;
    const int vl = f->k->vl;
    int n = 0, l = 0;
    int64_t oy = p0 / OW, ox = p0 % OW;
    const bool flat = f->ldg == OW; /* rows follow each other: one run */
    while (l < nr) {
        int len = flat ? nr - l : (int)(OW - ox);
        if (len > nr - l) len = nr - l;
        if (len > vl - l % vl) len = vl - l % vl;
        seg[n].lane = l;
        seg[n].len = len;
        seg[n].off = oy * f->ldg + ox;
        seg[n].vec = l / vl;
        seg[n].mask = ((len >= 32 ? 0u : 1u << len) - 1u) << (l % vl);
        seg[n].base = seg[n].off - l % vl;
        n++;
        l += len;
        ox += len;
        while (ox >= OW) {
            ox -= OW;
            oy++;
        }
    }
    return n;
}

/* Whether the tiles of this plan are stored with non-temporal (streaming) stores: when
 * the whole output (all images) is larger than L3, the next layer cannot find it in
 * cache anyway, and bypassing the caches saves reading every output line before it is
 * overwritten. With the residual prefetch (conv_avx512.c), ResNet-50 layer 1 at batch 16,
 * 256<-64 56x56 with residual: 25-27 -> 19-25 ms CPU time on a loaded machine. */
static bool ig_stream_out(const pl_conv_fast *f) {
    const double l3 = (double)(pl_cpu()->l3 ? pl_cpu()->l3 : (size_t)32 << 20);
    return f->clamp && (double)f->g.N * (double)f->g.M * (double)(f->g.OH * f->g.OW) * 4.0 > l3;
}

static void ig_task(void *ctx, int task, int thread) {
    const ig_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr;
    const int64_t OHW = g->OH * g->OW;
    const int per_group = f->tm * f->tn;
    const int64_t gi = task / per_group;
    const int ti = (task % per_group) / f->tn, tj = task % f->tn;
    const int s0 = f->nsl * ti / f->tm, s1 = f->nsl * (ti + 1) / f->tm;
    const int64_t nu = (f->Np + NR - 1) / NR;
    const int64_t n0 = nu * tj / f->tn * NR;
    int64_t n1 = nu * (tj + 1) / f->tn * NR;
    if (n1 > f->Np) n1 = f->Np;
    if (s0 >= s1 || n0 >= n1) return;

    const int64_t cstride = f->prep.none ? g->H * g->W : f->prep.plane;
    const int64_t nph = f->prep.npy * f->prep.npx;
    const float *xg = j->xin + gi * (f->prep.none ? g->Cg * cstride : nph * g->Cg * cstride);
    float *yg = j->y + gi * g->Mg * OHW;
    const float *bg = f->bias ? f->bias + gi * g->Mg : NULL;
    const float *rg = j->res ? j->res + gi * g->Mg * OHW : NULL;
    const float *Ag = f->A + gi * (int64_t)f->nsl * MR * f->K;

    float *bbuf = j->ws + (size_t)thread * j->ws_stride;
    const int nsv_max = (int)((f->nc + NR - 1) / NR);
    cf_bseg *seg = (cf_bseg *)(bbuf + f->kb_len[0] * f->nc + nsv_max * SLIVER_PAD);
    int *first = (int *)(seg + (size_t)nsv_max * NR);

    const bool stream = ig_stream_out(f);
    for (int64_t jc = n0; jc < n1; jc += f->nc) {
        const int64_t ncur = n1 - jc < f->nc ? n1 - jc : f->nc;
        const int nsv = (int)((ncur + NR - 1) / NR);
        for (int b = 0; b < f->nkb; b++) {
            const int64_t k0 = f->kb_start[b], kc = f->kb_len[b];
            const bool last = b == f->nkb - 1;
            if (!f->direct_b) {
                first[0] = 0;
                for (int v = 0; v < nsv; v++) {
                    int nr = (int)(ncur - (int64_t)v * NR < NR ? ncur - (int64_t)v * NR : NR);
                    first[v + 1] = first[v] + sliver_segments(f, jc + (int64_t)v * NR, nr, seg + first[v]);
                }
                k->pack_b(xg, f->koff + k0, kc, nsv, seg, first, bbuf, NR, kc * NR + SLIVER_PAD);
            }
            for (int s = s0; s < s1; s++) {
                const int64_t row = f->sl_row[s];
                const int mr = f->sl_rows[s];
                const float *asl = Ag + k0 * f->nsl * MR + (int64_t)s * kc * MR;
                for (int v = 0; v < nsv; v++) {
                    const int64_t col = jc + (int64_t)v * NR;
                    int nr = (int)(ncur - (int64_t)v * NR < NR ? ncur - (int64_t)v * NR : NR);
                    float *c = yg + row * OHW + col;
                    cf_tile_epi te;
                    if (last) {
                        te.bias = bg ? bg + row : NULL;
                        te.res = rg ? rg + row * OHW + col : NULL;
                        te.ldr = OHW;
                        te.lo = f->clamp ? f->lo : -INFINITY;
                        te.hi = f->clamp ? f->hi : INFINITY;
                        te.stream = stream;
                    }
                    const float *bsl = f->direct_b ? xg + k0 * cstride + col : bbuf + v * (kc * NR + SLIVER_PAD);
                    k->ukernel[mr - 1][nr > NR / 2](kc, asl, bsl, f->direct_b ? cstride : NR, c, OHW,
                                                   nr, b > 0, last ? &te : NULL);
                    if (last && !f->clamp) cf_epilogue(f, c, OHW, mr, nr, NULL, NULL, 0);
                }
            }
        }
    }
}

/* C^T mode: multiplies pixel slivers [s0, s1) by channel slivers [v0, v1) of group gi
 * over every K block: the pixel slivers of K block b are at P(b) + s * (kc * MR +
 * SLIVER_PAD), packed here into abuf (P == NULL) or already packed in the shared region
 * pk (ig_pack_t_task). The C^T tiles stay in `tiles` until the last K block; then they
 * are stored transposed into y with the epilogue. */
static void ig_t_block(const ig_job *j, int64_t gi, int s0, int s1, int v0, int v1, float *abuf,
                       const float *pk, float *tiles, cf_bseg *seg, int *first) {
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const cf_kernels *k = f->k;
    const int MR = k->mr, NR = k->nr;
    const int64_t OHW = g->OH * g->OW;
    const int64_t cstride = f->prep.none ? g->H * g->W : f->prep.plane;
    const int64_t nph = f->prep.npy * f->prep.npx;
    const float *xg = j->xin + gi * (f->prep.none ? g->Cg * cstride : nph * g->Cg * cstride);
    float *yg = j->y + gi * g->Mg * OHW;
    const float *bg = f->bias ? f->bias + gi * g->Mg : NULL;
    const float *rg = j->res ? j->res + gi * g->Mg * OHW : NULL;
    const float *Bg = f->A + gi * (int64_t)f->ncs * NR * f->K;
    const int ns = s1 - s0;
    const int64_t tile = (int64_t)MR * NR;

    if (!pk) {
        first[0] = 0;
        for (int s = 0; s < f->nsl; s++)
            first[s + 1] = first[s] + sliver_segments(f, f->sl_row[s], f->sl_rows[s], seg + first[s]);
    }
    for (int b = 0; b < f->nkb; b++) {
        const int64_t k0 = f->kb_start[b], kc = f->kb_len[b];
        const float *ab;
        if (pk) {
            ab = pk + k0 * MR * f->nsl + (int64_t)b * SLIVER_PAD * f->nsl;
        } else {
            k->pack_b(xg, f->koff + k0, kc, f->nsl, seg, first, abuf, MR, kc * MR + SLIVER_PAD);
            ab = abuf;
        }
        for (int v = v0; v < v1; v++) {
            const float *bsl = Bg + k0 * f->ncs * NR + (int64_t)v * kc * NR;
            const int nr = (int)(g->Mg - (int64_t)v * NR < NR ? g->Mg - (int64_t)v * NR : NR);
            for (int s = s0; s < s1; s++)
                k->ukernel[f->sl_rows[s] - 1][nr > NR / 2](kc, ab + (int64_t)s * (kc * MR + SLIVER_PAD), bsl, NR,
                                                         tiles + ((int64_t)(v - v0) * ns + s - s0) * tile,
                                                         NR, nr, b > 0, NULL);
        }
    }
    for (int v = v0; v < v1; v++) {
        const int64_t m0 = (int64_t)v * NR;
        const int nr = (int)(g->Mg - m0 < NR ? g->Mg - m0 : NR);
        for (int s = s0; s < s1; s++) {
            const int64_t p0 = f->sl_row[s];
            float *yd = yg + m0 * OHW + p0;
            k->store_t(tiles + ((int64_t)(v - v0) * ns + s - s0) * tile, NR, f->sl_rows[s], nr, yd, OHW,
                       bg ? bg + m0 : NULL, rg ? rg + m0 * OHW + p0 : NULL,
                       f->clamp ? f->lo : -INFINITY, f->clamp ? f->hi : INFINITY);
            if (!f->clamp)
                for (int jj = 0; jj < nr; jj++) cf_epilogue(f, yd + jj * OHW, OHW, 1, f->sl_rows[s], NULL, NULL, 0);
        }
    }
}

/* One task per group (or one thread): packs its own pixel slivers. */
static void ig_task_t(void *ctx, int task, int thread) {
    const ig_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const int MR = f->k->mr;
    float *abuf = j->ws + (size_t)thread * j->ws_stride;
    float *tiles = abuf + (f->kb_len[0] * MR + SLIVER_PAD) * f->nsl;
    cf_bseg *seg = (cf_bseg *)(tiles + (int64_t)f->ncs * f->nsl * MR * f->k->nr);
    int *first = (int *)(seg + (size_t)f->nsl * MR);
    ig_t_block(j, task, 0, f->nsl, 0, f->ncs, abuf, NULL, tiles, seg, first);
}

/* Shared mode, first pass: pixel sliver s of K block b into the shared region. */
static void ig_pack_t_task(void *ctx, int task, int thread) {
    (void)thread;
    const ig_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const int MR = f->k->mr;
    const int b = task / f->nsl, s = task % f->nsl;
    const int64_t k0 = f->kb_start[b], kc = f->kb_len[b];
    cf_bseg seg[2 * CF_MR_MAX + 2];
    int first[2];
    first[0] = 0;
    first[1] = sliver_segments(f, f->sl_row[s], f->sl_rows[s], seg);
    float *dst = j->pk + k0 * MR * f->nsl + (int64_t)b * SLIVER_PAD * f->nsl + (int64_t)s * (kc * MR + SLIVER_PAD);
    f->k->pack_b(j->xin, f->koff + k0, kc, 1, seg, first, dst, MR, kc * MR + SLIVER_PAD);
}

/* Shared mode, second pass: a part of the pixel slivers x a part of the channel slivers. */
static void ig_mul_t_task(void *ctx, int task, int thread) {
    const ig_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const int ti = task / f->tn, tj = task % f->tn;
    const int s0 = f->nsl * ti / f->tm, s1 = f->nsl * (ti + 1) / f->tm;
    const int v0 = f->ncs * tj / f->tn, v1 = f->ncs * (tj + 1) / f->tn;
    if (s0 >= s1 || v0 >= v1) return;
    ig_t_block(j, 0, s0, s1, v0, v1, NULL, j->pk, j->ws + (size_t)thread * j->ws_stride, NULL, NULL);
}

/* Direct small-K mode: task t's share of the output rows (or 64-pixel strips). */
static void dk_task(void *ctx, int task, int thread) {
    (void)thread;
    const ig_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const int64_t OHW = g->OH * g->OW;
    const bool flat = dk_flat(f);
    const int64_t units = dk_units(f);
    const int64_t u0 = units * task / f->tm, u1 = units * (task + 1) / f->tm;
    const float lo = f->clamp ? f->lo : -INFINITY, hi = f->clamp ? f->hi : INFINITY;
    for (int64_t u = u0; u < u1;) {
        /* a flat plane: the task's pixels in one call; else one output row per call */
        int64_t p0, n, src;
        if (flat) {
            p0 = u * 64;
            n = (u1 * 64 < f->Np ? u1 * 64 : f->Np) - p0;
            src = p0;
            u = u1;
        } else {
            p0 = u * g->OW;
            n = g->OW;
            src = u * f->ldg;
            u++;
        }
        f->k->direct_run(j->xin + src, f->koff, f->K, f->A, f->ldk, g->M, f->bias,
                         j->res ? j->res + p0 : NULL, OHW, n, lo, hi, j->y + p0);
        if (!f->clamp) cf_epilogue(f, j->y + p0, OHW, g->M, n, NULL, NULL, 0);
    }
}

void cf_igemm_image(const pl_conv_fast *f, const float *xin, const float *res, float *y,
                    float *ws, pl_threadpool *pool) {
    if (f->direct_k) {
        ig_job j = {f, xin, res, y, ws, 0, NULL};
        if (f->tm == 1) dk_task(&j, 0, 0);
        else pl_threadpool_run(pool, dk_task, &j, f->tm);
        return;
    }
    const size_t ws_stride = ((f->ws_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
    ig_job j = {f, xin, res, y, ws, ws_stride, NULL};
    if (f->t_shared) {
        /* the shared region lies right before the thread workspaces (conv_plan.h) */
        j.pk = ws - ((f->shared_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
        const int npk = f->nkb * f->nsl;
        if (npk == 1) ig_pack_t_task(&j, 0, 0);
        else pl_threadpool_run(pool, ig_pack_t_task, &j, npk);
        const int nmul = f->tm * f->tn;
        if (nmul == 1) ig_mul_t_task(&j, 0, 0);
        else pl_threadpool_run(pool, ig_mul_t_task, &j, nmul);
        return;
    }
    const int ntasks = (int)(f->g.G * f->tm * f->tn);
    pl_task_fn fn = f->transposed ? ig_task_t : ig_task;
    if (ntasks == 1) fn(&j, 0, 0);
    else pl_threadpool_run(pool, fn, &j, ntasks);
}
