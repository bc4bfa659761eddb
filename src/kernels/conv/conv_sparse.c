/* conv_sparse.c -- convolution with pruned weights: per group, Y[Mg, pixels] = W[Mg, K] *
 * B[K, pixels] with W sparse (kernels/sparse/sparse.h) and B never formed: as in the
 * implicit GEMM, the input is prepared once per image (zero-padded, stride-phase-split
 * planes, or the raw input when no padding is needed), in which row k = (c, tap) of B
 * is a contiguous run of the prepared grid starting at koff[k]. The sparse kernel walks
 * each output channel's nonzeros over a tile of grid columns.
 *
 * Grid columns are output pixels when the grid's row pitch equals OW (1x1 kernels,
 * stride-2 1x1 after phase splitting): results then go straight to y with the whole
 * epilogue fused. Otherwise (KxK with padding) a grid row has KW-1 (or fewer) columns
 * past the output row; a tile is computed into the thread's scratch and its valid
 * columns copied to y (the waste is (ldg - OW) / ldg: 3% at 56x56, 22% at 7x7).
 *
 * Tasks: groups x output-channel ranges of equal nonzeros x column tiles sized so that
 * a tile of B (K rows) stays in L2.
 *
 * Layout choices that measured faster: 1x1 inputs on planes of a fractional number of
 * vectors are copied to aligned planes (sp_align_planes); 3x3 stride-1 layers on 14- to
 * 30-wide and 56- to 63-wide planes run the shifted-tap form of sparse.h (aligned loads,
 * channel chunks in L1), their rows padded to 16, 32 or 64 floats; other KxK layers on
 * padded grids run its channel-chunk form (sp_form_of). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_plan.h"

#define SP_ROWS 16 /* output channels per scratch pass (non-flat layouts) */
#define SP_ALIGN_MAX 1024 /* largest plane (floats) copied to aligned planes */

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Floats of one channel's prepared input that a tile of `tile` grid columns reads: the
 * union of its taps' runs (offsets sorted). 3x3 taps overlap to ~3 grid rows, not 9
 * runs: tiles sized by this are ~3x wider than by K x tile (14x14: one tile, not four;
 * measured 5-10% faster on ResNet-50's 3x3 layers). */
static int64_t tap_span(const int64_t *sorted, int64_t taps, int64_t tile) {
    int64_t span = tile;
    for (int64_t t = 0; t + 1 < taps; t++)
        span += sorted[t + 1] - sorted[t] < tile ? sorted[t + 1] - sorted[t] : tile;
    return span;
}

/* 1x1 layers on planes that are not a whole number of vectors (14x14 = 196 floats, 7x7 =
 * 49): every B row starts at a different misalignment, and the kernel's unaligned vector
 * loads then cost ~1.3x aligned ones (measured 20-25% on ResNet-50's 14x14 and 7x7 1x1
 * layers at 90% zeros). Such layers read a copy whose planes start on 64-byte
 * boundaries (the rows stay contiguous: columns are still output pixels), made by the
 * input preparation, when each input channel serves enough nonzeros (MobileNetV2's 96<-576
 * at 90%, ~10 a channel, measured 8% slower with it) and planes are small. */
static void sp_align_planes(const cf_geom *g, cf_prep *pp, int64_t nnz) {
    if (g->KH * g->KW != 1 || pl_cpu_isa() < PL_ISA_AVX512) return;
    /* stride 1 adds a copy: in whole ResNet-50 runs it paid only with 128+ nonzeros per
     * input channel (2048<-512 7x7: -8%); 1024<-256 14x14 gained nothing and the 1/4
     * reductions (256<-1024, 512<-2048) ran 18% slower; strided inputs are prepared
     * anyway (1x1 stride 2 into 14x14 and 7x7: -12%) */
    if (nnz < (pp->none ? 128 : 16) * g->C) return;
    if (pp->plane % 16 == 0 || pp->plane > SP_ALIGN_MAX || pp->npy * pp->npx != 1) return;
    if (pp->Wph != g->OW) return; /* not a flat grid */
    pp->none = false;             /* a plain copy (stride 1) or the strided gather */
    pp->plane = (pp->plane + 15) / 16 * 16;
}

static int64_t sp_l2(void) { return (int64_t)(pl_cpu()->l2 ? pl_cpu()->l2 : 1 << 20); }

/* Convolutions 3 taps wide whose taps in a row, over prepared planes of a pitch that is a
 * multiple of 16, sit 0, 1 or 2 columns past a vector boundary: stride 1 (kw) or stride 2
 * over phase planes (kw = 0, 1 in two phases at the same offset, kw = 2 one further). */
static bool sp_shift_geom(const cf_geom *g, const cf_prep *pp, pl_isa isa) {
    if (isa < PL_ISA_AVX512 || pp->none) return false;
    return g->KW == 3 && g->DW == 1 && (g->SW == 1 || g->SW == 2);
}

/* Rows padded to the next 16, 32 or 64 floats so that the shifted-tap form applies, where
 * that adds at most 15% grid columns (14x14 outputs: 15 -> 16 at stride 2; 28x28: 30 -> 32,
 * or 29 -> 32 at stride 2; 56x56: 58 -> 64), or on planes up to 31 wide when the prepared
 * input still fits half the L2 (as measured on 28x28 before). */
static void sp_widen_rows(const cf_geom *g, cf_prep *pp, pl_isa isa) {
    if (!sp_shift_geom(g, pp, isa) || pp->Wph >= 64 || pp->Wph % 16 == 0) return;
    const int64_t w = pp->Wph < 16 ? 16 : pp->Wph < 32 ? 32 : 64;
    const bool small = w * 100 <= pp->Wph * 115;
    const int64_t nph = pp->npy * pp->npx;
    const bool fits = w == 32 && (double)g->Cg * (double)nph * (double)pp->Hph * 32.0 * 4.0 <= (double)(sp_l2() / 2);
    if (!small && !fits) return;
    pp->Wph = w;
    pp->plane = pp->Hph * pp->Wph;
}

typedef enum { SP_PLAIN, SP_SHIFT, SP_CHUNK } sp_form;

/* The one test of which kernel form a layer runs (cf_sparse_create) and is priced at
 * (cf_sparse_cost), from its geometry and prepared planes (after sp_widen_rows):
 * - the shifted-tap form (sparse.h) for stride-1 and -2 convolutions 3 taps wide over
 *   planes whose row pitch and size are multiples of 16 floats, the pitch at least OW + 2
 *   (the kernel reads 2 columns past a row's outputs), in 256-column blocks (whole grid
 *   rows: Wph divides 256, so the 2 columns a block cannot finish are padding columns;
 *   column tiles are whole blocks) or one block of at most 254;
 * - the channel-chunk form for the other KxK layers with padded grids, where B rows
 *   streamed from L2 limited the plain kernel (ResNet-50 at 90%, inside the model, best of
 *   5 runs: 14x14 -> 7x7 stride 2 0.81 -> 0.69 ms, 7x7 3x3 0.65 -> 0.63 ms);
 *   the shifted-tap form measured there 0.53 -> 0.44 ms on 56x56, 0.78 -> 0.72 ms on the
 *   28x28 -> 14x14 stride 2, and the same on 56x56 -> 28x28 stride 2 (0.77 -> 0.78);
 * - else the plain kernel. */
static sp_form sp_form_of(const cf_geom *g, const cf_prep *pp, pl_isa isa) {
    const int64_t taps = g->KH * g->KW;
    const int64_t ldg = pp->none ? g->W : pp->Wph;
    if (isa < PL_ISA_AVX512 || taps == 1 || ldg == g->OW) return SP_PLAIN; /* flat grids */
    const int64_t ng = (g->OH - 1) * ldg + g->OW;
    if (sp_shift_geom(g, pp, isa) && pp->Wph % 16 == 0 && pp->plane % 16 == 0 && g->OW + 2 <= pp->Wph &&
        (ng + 2 <= 256 || 256 % pp->Wph == 0))
        return SP_SHIFT;
    return SP_CHUNK;
}

/* Packs every group's weights in the form chosen (sp_form_of), in channel chunks whose
 * runs a 256-column block reads fill ~24 KB of L1 (16-96 KB measured alike within the
 * noise; 48 KB for stride 2, below), and sizes the per-thread scratch (rows x one block). Falls back from the
 * shifted-tap form to the chunk form, and from that to the plain kernel, where an offset
 * does not suit it (PL_ERR_UNSUPPORTED): the layer still runs. */
static pl_status sp_pack_forms(pl_conv_fast *f, sp_form form, int64_t rows) {
    const cf_geom *g = &f->g;
    const int64_t taps = g->KH * g->KW;
    int64_t *so = malloc(sizeof(int64_t) * (size_t)taps);
    if (!so) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    memcpy(so, f->koff, sizeof(int64_t) * (size_t)taps); /* channel 0's taps */
    qsort(so, (size_t)taps, sizeof *so, cmp_i64);
    const int64_t nb = f->sp_tile < 256 ? f->sp_tile : 256;
    const int64_t span = tap_span(so, taps, nb);
    free(so);
    /* stride 2 in the shifted-tap form: a channel's 4 phase planes make its runs ~3.4x
     * those of stride 1, so 24 KB held ~5 channels and ~4.5 nonzeros per row and chunk,
     * too few to pay for the row's partial-sum load/store and shifts; 48 KB measured
     * 13-23% faster on ResNet-50's 56->28 and 28->14 layers at 90% (1 thread CPU and a
     * simulated 2-thread pool), 64-192 KB no better; stride 1 and the chunk form
     * (14->7) were no better or slower with more */
    const int64_t budget = form == SP_SHIFT && g->SH == 2 ? 49152 : 24576;
    int64_t cc = budget / (span * 4);
    if (cc < 1) cc = 1;
    for (; form != SP_PLAIN; form = form == SP_SHIFT ? SP_CHUNK : SP_PLAIN) {
        pl_status st = PL_OK;
        for (int64_t gi = 0; gi < g->G && st == PL_OK; gi++)
            st = form == SP_SHIFT ? pl_sparse_shift_pack(f->sw[gi], f->koff, cc * taps, &f->sw[gi]->shift)
                                  : pl_sparse_chunk_pack(f->sw[gi], f->koff, cc * taps, &f->sw[gi]->shift);
        if (st == PL_OK) {
            const int64_t bn = form == SP_SHIFT && nb > 254 ? 254 : nb;
            f->ws_floats = (size_t)(rows * pl_sparse_shift_cols(f->sw[0]->shift, bn));
            return PL_OK;
        }
        for (int64_t gi = 0; gi < g->G; gi++) {
            pl_sparse_shift_destroy(f->sw[gi]->shift);
            f->sw[gi]->shift = NULL;
        }
        if (st != PL_ERR_UNSUPPORTED) return st;
    }
    return PL_OK;
}

pl_status cf_sparse_create(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    cf_prep *pp = &f->prep;
    cf_prep_setup(g, pp, true);
    const int64_t wn = g->M * g->Cg * g->KH * g->KW;
    sp_align_planes(g, pp, wn - (int64_t)llround(pl_sparse_zero_fraction(w, wn) * (double)wn));
    sp_widen_rows(g, pp, pl_cpu_isa());
    const sp_form form = sp_form_of(g, pp, pl_cpu_isa());
    const int64_t nph = pp->npy * pp->npx;
    if (!pp->none) f->prep_floats = (size_t)(g->C * nph * pp->plane);
    f->ldg = pp->none ? g->W : pp->Wph;
    f->sp_flat = f->ldg == g->OW;
    f->sp_ng = (g->OH - 1) * f->ldg + g->OW;

    /* B row k = (c, tap): channel c's plane, at the tap's offset */
    const int64_t taps = g->KH * g->KW;
    f->K = taps * g->Cg;
    if (!(f->koff = malloc(sizeof(int64_t) * (size_t)f->K)))
        return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    const int64_t cstride = pp->none ? g->H * g->W : pp->plane;
    const int64_t phase_stride = g->Cg * cstride;
    for (int64_t ky = 0; ky < g->KH; ky++)
        for (int64_t kx = 0; kx < g->KW; kx++) {
            const int64_t t = ky * g->KW + kx, base = cf_tap_offset(g, pp, ky, kx, phase_stride);
            for (int64_t c = 0; c < g->Cg; c++) f->koff[c * taps + t] = base + c * cstride;
        }

    /* weights [M, Cg, KH, KW]: group gi's row m, column c*taps + t is contiguous */
    f->sw = calloc((size_t)g->G, sizeof *f->sw);
    if (!f->sw) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    for (int64_t gi = 0; gi < g->G; gi++) {
        PL_TRY(pl_sparse_pack(w + gi * g->Mg * f->K, g->Mg, f->K, f->K, 1, &f->sw[gi]));
        f->sw[gi]->wide = taps > 1;
        /* offsets precomputed when they fit in 31 bits (else the kernel reads koff) */
        const pl_status bs = pl_sparse_bind_koff(f->sw[gi], f->koff);
        if (bs == PL_ERR_NOMEM) return bs;
    }

    /* column tiles: what a tile reads of the prepared input (the union of its taps'
     * runs per channel) within half the L2 (narrower tiles for more tasks measured no
     * better than the output-channel split below) */
    const int64_t l2 = (int64_t)(pl_cpu()->l2 ? pl_cpu()->l2 : 1 << 20);
    int64_t *so = malloc(sizeof(int64_t) * (size_t)taps);
    if (!so) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    memcpy(so, f->koff, sizeof(int64_t) * (size_t)taps); /* channel 0's taps */
    qsort(so, (size_t)taps, sizeof *so, cmp_i64);
    int64_t tile = 4096;
    while (tile > 64 && (double)g->Cg * (double)tap_span(so, taps, tile) * 4.0 > (double)(l2 / 2)) tile -= 16;
    free(so);
    if (tile >= f->sp_ng) tile = f->sp_ng;
    f->sp_ntiles = (int)((f->sp_ng + tile - 1) / tile);
    f->sp_tile = (f->sp_ng + f->sp_ntiles - 1) / f->sp_ntiles;
    /* several tiles: whole vectors, or whole 256-column blocks for the shifted-tap form
     * (its blocks end on padding columns) */
    const int64_t tq = form == SP_SHIFT ? 256 : 16;
    if (f->sp_tile < f->sp_ng) f->sp_tile = (f->sp_tile + tq - 1) / tq * tq;
    f->sp_ntiles = (int)((f->sp_ng + f->sp_tile - 1) / f->sp_tile);

    /* a few tasks per thread, by splitting the output channels */
    int mparts = 1;
    const int64_t tasks = g->G * f->sp_ntiles;
    if (f->nthreads > 1 && tasks < 4 * f->nthreads) {
        mparts = (int)((4 * f->nthreads + tasks - 1) / tasks);
        const int64_t most = g->Mg / 8 > 1 ? g->Mg / 8 : 1;
        if (mparts > most) mparts = (int)most;
    }
    f->sp_mparts = mparts;
    f->sp_mstart = malloc(sizeof(int64_t) * (size_t)(g->G * (mparts + 1)));
    if (!f->sp_mstart) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    for (int64_t gi = 0; gi < g->G; gi++) {
        int64_t *ms = f->sp_mstart + gi * (mparts + 1);
        const pl_sparse_w *sw = f->sw[gi];
        /* equal shares of nonzeros plus a per-row overhead */
        const double total = (double)pl_sparse_nnz(sw) + 4.0 * (double)g->Mg;
        ms[0] = 0;
        int64_t m = 0;
        double acc = 0;
        for (int part = 1; part < mparts; part++) {
            const double target = total * part / mparts;
            while (m < g->Mg && acc + 0.5 * ((double)pl_sparse_nnz_rows(sw, m, m + 1) + 4.0) < target) {
                acc += (double)pl_sparse_nnz_rows(sw, m, m + 1) + 4.0;
                m++;
            }
            ms[part] = m;
        }
        ms[mparts] = g->Mg;
    }
    if (!f->sp_flat) f->ws_floats = (size_t)(SP_ROWS * f->sp_tile);
    if (form != SP_PLAIN) {
        /* the largest row range of a task: all its rows run at once */
        int64_t rows = 0;
        for (int64_t gi = 0; gi < g->G; gi++) {
            const int64_t *ms = f->sp_mstart + gi * (mparts + 1);
            for (int part = 0; part < mparts; part++)
                if (ms[part + 1] - ms[part] > rows) rows = ms[part + 1] - ms[part];
        }
        PL_TRY(sp_pack_forms(f, form, rows));
    }
    return PL_OK;
}

void cf_sparse_destroy(pl_conv_fast *f) {
    if (f->sw)
        for (int64_t gi = 0; gi < f->g.G; gi++) pl_sparse_destroy(f->sw[gi]);
    free(f->sw);
    free(f->sp_mstart);
}

typedef struct sp_job {
    const pl_conv_fast *f;
    const float *xin, *res;
    float *y;
    float *ws;
    size_t ws_stride;
} sp_job;

/* The activation pl_sparse_mm fuses (f->epi's), or none. */
static pl_sgemm_epilogue act_only(const pl_conv_fast *f, bool with_act) {
    pl_sgemm_epilogue e;
    memset(&e, 0, sizeof e);
    if (with_act) e = f->epi;
    e.row_bias = NULL;
    e.col_bias = NULL;
    e.residual = NULL;
    return e;
}

/* The valid output columns of grid row oy (pitch ldg, OW valid) inside grid columns
 * [c0, c0 + n): first grid column *a and count *len; false when none. */
static bool grid_row_span(int64_t oy, int64_t ldg, int64_t ow, int64_t c0, int64_t n, int64_t *a, int64_t *len) {
    int64_t lo = oy * ldg, hi = lo + ow;
    if (lo < c0) lo = c0;
    if (hi > c0 + n) hi = c0 + n;
    *a = lo;
    *len = hi - lo;
    return hi > lo;
}


static void sp_task(void *ctx, int task, int thread) {
    const sp_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const int64_t OHW = g->OH * g->OW;
    const int per_group = f->sp_mparts * f->sp_ntiles;
    const int64_t gi = task / per_group;
    /* tile-major: consecutive tasks share a tile of B (L2 reuse across mparts) */
    const int mp = task % f->sp_mparts, t = (task % per_group) / f->sp_mparts;
    const int64_t *ms = f->sp_mstart + gi * (f->sp_mparts + 1);
    const int64_t m0 = ms[mp], m1 = ms[mp + 1];
    const int64_t c0 = (int64_t)t * f->sp_tile;
    const int64_t n = f->sp_ng - c0 < f->sp_tile ? f->sp_ng - c0 : f->sp_tile;
    if (m0 >= m1 || n <= 0) return;

    const int64_t cstride = f->prep.none ? g->H * g->W : f->prep.plane;
    const int64_t nph = f->prep.npy * f->prep.npx;
    const float *xg = j->xin + gi * (f->prep.none ? g->Cg * cstride : nph * g->Cg * cstride) + c0;
    float *yg = j->y + gi * g->Mg * OHW;
    const float *bg = f->bias ? f->bias + gi * g->Mg : NULL;
    const float *rg = j->res ? j->res + gi * g->Mg * OHW : NULL;
    const pl_sparse_w *sw = f->sw[gi];

    if (f->sp_flat) {
        /* grid column = output pixel: the whole epilogue in the kernel */
        pl_sgemm_epilogue e = act_only(f, true);
        e.row_bias = bg ? bg + m0 : NULL;
        e.residual = rg ? rg + m0 * OHW + c0 : NULL;
        e.ld_residual = OHW;
        pl_sparse_mm_rel(sw, m0, m1, xg, f->koff, 0, n, yg + m0 * OHW + c0, OHW, &e);
        if (f->post_act)
            for (int64_t m = m0; m < m1; m++) pl_f32_conv_act_ref(&f->act, yg + m * OHW + c0, NULL, n);
        return;
    }
    /* scratch tile, then the valid columns of each grid row to y */
    float *tile = j->ws + (size_t)thread * j->ws_stride;
    if (sw->shift) {
        /* blocks of 256 grid columns, all rows of the task at once (a chunk's B rows are
         * reused across them), each block's valid columns copied to y and the whole
         * epilogue applied there. The shifted-tap form finishes 254 columns of a block:
         * the last 2 are padding columns (sp_form_of). */
        const int64_t mr = m1 - m0, bw = sw->shift->nsh == 1 ? 256 : 254;
        for (int64_t b0 = 0; b0 < n; b0 += 256) {
            const int64_t nb = n - b0 < bw ? n - b0 : bw, ldt = pl_sparse_shift_cols(sw->shift, nb);
            pl_sparse_shift_mm(sw->shift, m0, m1, xg + b0, nb, tile, ldt);
            const int64_t a0 = c0 + b0;
            for (int64_t oy = a0 / f->ldg; oy <= (a0 + nb - 1) / f->ldg; oy++) {
                int64_t a, len;
                if (!grid_row_span(oy, f->ldg, g->OW, a0, nb, &a, &len)) continue;
                const int64_t ox = a - oy * f->ldg;
                float *yd = yg + m0 * OHW + oy * g->OW + ox;
                for (int64_t i = 0; i < mr; i++)
                    memcpy(yd + i * OHW, tile + i * ldt + (a - a0), sizeof(float) * (size_t)len);
                cf_epilogue(f, yd, OHW, mr, len, bg ? bg + m0 : NULL, rg ? rg + m0 * OHW + oy * g->OW + ox : NULL,
                            OHW);
            }
        }
        return;
    }
    const bool fuse = !rg; /* the residual is in output layout: added after the copy */
    const int64_t oy0 = c0 / f->ldg, oy1 = (c0 + n - 1) / f->ldg;
    for (int64_t mc = m0; mc < m1; mc += SP_ROWS) {
        const int64_t mr = m1 - mc < SP_ROWS ? m1 - mc : SP_ROWS;
        pl_sgemm_epilogue e = act_only(f, fuse);
        e.row_bias = bg ? bg + mc : NULL;
        pl_sparse_mm_rel(sw, mc, mc + mr, xg, f->koff, 0, n, tile, n, &e);
        for (int64_t oy = oy0; oy <= oy1; oy++) {
            int64_t a, len;
            if (!grid_row_span(oy, f->ldg, g->OW, c0, n, &a, &len)) continue;
            const int64_t ox = a - oy * f->ldg;
            float *yd = yg + mc * OHW + oy * g->OW + ox;
            for (int64_t i = 0; i < mr; i++)
                memcpy(yd + i * OHW, tile + i * n + (a - c0), sizeof(float) * (size_t)len);
            if (!fuse) cf_epilogue(f, yd, OHW, mr, len, NULL, rg + mc * OHW + oy * g->OW + ox, OHW);
            else if (f->post_act)
                for (int64_t i = 0; i < mr; i++) pl_f32_conv_act_ref(&f->act, yd + i * OHW, NULL, len);
        }
    }
}

void cf_sparse_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                     pl_threadpool *pool) {
    const size_t ws_stride = ((f->ws_floats * sizeof(float) + 63) & ~(size_t)63) / sizeof(float);
    sp_job j = {f, xin, res, y, ws, ws_stride};
    const int ntasks = (int)(f->g.G * f->sp_mparts * f->sp_ntiles);
    if (ntasks == 1) sp_task(&j, 0, 0);
    else pl_threadpool_run(pool, sp_task, &j, ntasks);
}

/* ------------------------------------------------------------------ cost model */

/* Seconds per image at one thread. Fitted to bench/conv_bench --sparsity runs on Zen 4
 * (ResNet-50 and MobileNetV2 layers, 0-95% zeros): the sparse kernel does one vector
 * load per FMA (the dense GEMM reuses each load ~14 times), so a nonzero times a vector
 * of columns costs ~2.4 cycles where the dense GEMM spends ~1.15 per FMA vector (87% of
 * peak; Winograd's 2.25x fewer multiplies make it ~1.6 times the peak rate); tap loads
 * of KxK kernels are mostly unaligned (~3 cycles; ~2.2 measured on 7x7 outputs (grids
 * of at most 4 vectors), where the chooser otherwise missed 1.3-1.4x at 70% zeros; ~2.3
 * on 14x14 outputs). Per
 * output vector the store and epilogue (~4 cycles), per row block the loop set-up (~10),
 * plus the input preparation and, for padded grids, the copy to y. Break-even: ~50%
 * zeros for 1x1, ~80-85% for 3x3 against Winograd. */
static double vec_len(pl_isa isa) { return isa >= PL_ISA_AVX512 ? 16 : isa >= PL_ISA_AVX2 ? 8 : 1; }

double cf_sparse_cost(const cf_geom *g, int64_t nnz, pl_isa isa) {
    const int64_t taps = g->KH * g->KW;
    const bool flat = taps == 1 && g->PT == 0 && g->PL == 0;
    cf_prep pp;
    cf_prep_setup(g, &pp, true);
    sp_widen_rows(g, &pp, isa);
    const bool shift = sp_form_of(g, &pp, isa) == SP_SHIFT;
    /* the shifted-tap form's grid: rows padded to 16, 32 or 64 */
    const int64_t ldg = flat ? g->OW : shift ? pp.Wph : g->OW + (g->KW - 1) * g->DW / g->SW;
    const int64_t ng = (g->OH - 1) * ldg + g->OW;
    const bool small = g->OH <= 8 && g->OW <= 8; /* 7x7 outputs: at most 4 vectors */
    /* 14x14 outputs (grids of ~14 vectors, the whole plane one tile in L1/L2): measured
     * 1.9-2.7 cycles a nonzero-vector (3x3, 70-90% zeros) where the model's 3.0 made
     * the chooser keep Winograd at 0.75x of sparse (ResNet-50's 256-channel 3x3 at 80%) */
    const bool mid = !small && g->OH <= 16 && g->OW <= 16;
    const double vl = vec_len(isa);
    const double vecs = ceil((double)ng / vl), blocks = ceil((double)ng / (8 * vl));
    /* AVX2 (8 lanes): two 256-bit loads a cycle, ~1.6 cycles per vector; the
     * reference loop is scalar */
    const double per_nz = isa == PL_ISA_REF    ? 1.5
                          : isa == PL_ISA_AVX2 ? (flat ? 1.6 : 1.7)
                          : flat               ? 2.4
                          : small              ? 2.2
                          : mid                ? 2.3
                                               : 3.0;
    /* the shifted-tap form (sp_form_of): measured 1.3x the plain kernel on ResNet-50's
     * 14x14 and 28x28 3x3 layers (1.0-1.2x on 56x56 and stride 2). The channel-chunk form
     * is priced as the plain kernel (it measured 1.0-1.2x of it): conservative. */
    double cyc = (double)nnz * vecs * (shift ? per_nz * 0.77 : per_nz);
    /* per nonzero and column block, flat layouts: the value and offset loads, the loop;
     * on 7x7 outputs (4 vectors a nonzero) ~3 cycles more a nonzero than the vectors
     * alone (measured: 512<-2048 7x7 1x1 at 70% zeros ran 0.92x dense without it) */
    if (flat && isa != PL_ISA_REF) cyc += (double)nnz * blocks * 3.0;
    cyc += (double)g->M * (vecs * 4.0 + blocks * 10.0);
    if (!flat) cyc += (double)g->M * vecs * 1.0;
    if (!(flat && g->SH == 1 && g->SW == 1)) cyc += (double)g->C * (double)(g->H * g->W) * 0.5;
    return cyc / 3.6e9;
}

/* Output pixels one kernel call of a SPARSE plan covers: its column tile of the
 * prepared grid, in output columns (the grid rows may be padded). 0 for other plans.
 * The column planner (src/exec/columns.c) costs the layer's calls with it. */
int64_t pl_conv_fast_sparse_call_px(const pl_conv_fast *f) {
    if (!f || f->algo != PL_CONV_ALGO_SPARSE || !f->sw || f->ldg <= 0 || f->sp_tile <= 0) return 0;
    const int64_t px = f->sp_tile * f->g.OW / f->ldg;
    return px > 0 ? px : 1;
}

double cf_dense_cost(const cf_geom *g, pl_conv_algo algo, pl_isa isa) {
    const double fma_vecs = (double)g->M * (double)g->Cg * (double)(g->KH * g->KW) *
                            (double)(g->OH * g->OW) / vec_len(isa);
    double cyc_per;
    /* AVX2 (measured per 8-lane FMA vector): the GEMMs ~0.8 cycles, Winograd ~1.6 */
    switch (algo) {
    case PL_CONV_ALGO_WINOGRAD:
        cyc_per = isa == PL_ISA_AVX2 ? 1.6 : isa == PL_ISA_REF ? 0.25 : 1.0 / 1.6;
        /* stride-2 Winograd (polyphase, 1.78x fewer multiplies) measured only ~1.15x
         * faster than IGEMM_T at batch 16 */
        if (g->SH == 2 && isa == PL_ISA_AVX512) cyc_per = 1.0;
        break;
    case PL_CONV_ALGO_DEPTHWISE: cyc_per = 5.0; break;
    default: cyc_per = isa == PL_ISA_REF ? 0.5 : isa == PL_ISA_AVX2 ? 0.8 : 1.15; break;
    }
    return fma_vecs * cyc_per / 3.6e9;
}
