/* conv_fast.c -- fast float32 convolutions: planning (algorithm choice, weight packing,
 * scratch sizing), input preparation, the 1x1 SGEMM and depthwise drivers, and the run
 * entry point. The implicit GEMM is in conv_igemm.c, Winograd in conv_winograd.c, the
 * sparse-weight algorithm in conv_sparse.c. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_plan.h"

/* Limits of the fast path (beyond them the reference kernel runs). */
#define CF_MAX_SIZE ((int64_t)1 << 24)  /* any spatial size, pad or dilated kernel extent */
#define CF_MAX_TAPS 4096                /* KH * KW */
#define CF_MAX_FLOATS ((int64_t)1 << 32) /* prepared input or packed weights */

static const char *algo_names[PL_CONV_ALGO_COUNT] = {"auto",      "sgemm",    "igemm", "igemm_t",
                                                     "depthwise", "winograd", "sparse"};

const char *pl_conv_algo_name(pl_conv_algo a) {
    return a >= 0 && a < PL_CONV_ALGO_COUNT ? algo_names[a] : "unknown";
}

void *cf_alloc(size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* ------------------------------------------------------------------ geometry */

static bool geom_of(const pl_conv_params *p, cf_geom *g) {
    memset(g, 0, sizeof *g);
    if (!p || (p->ndim != 1 && p->ndim != 2)) return false;
    const int d = p->ndim - 1; /* the W axis */
    g->N = p->batch;
    g->C = p->in_channels;
    g->M = p->out_channels;
    g->G = p->group;
    if (g->N < 1 || g->C < 1 || g->M < 1 || g->G < 1 || g->C % g->G || g->M % g->G) return false;
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
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
        if (v[i] < 1 || v[i] > CF_MAX_SIZE) return false;
    if (g->PT < 0 || g->PL < 0 || g->PT > CF_MAX_SIZE || g->PL > CF_MAX_SIZE) return false;
    if (g->SH > CF_MAX_STRIDE || g->SW > CF_MAX_STRIDE) return false;
    if ((g->KH - 1) * g->DH > CF_MAX_SIZE || (g->KW - 1) * g->DW > CF_MAX_SIZE) return false;
    if (g->KH * g->KW > CF_MAX_TAPS) return false;
    /* every window must start inside the padded input */
    if ((g->OH - 1) * g->SH > g->H + g->PT + CF_MAX_SIZE) return false;
    if (g->C > CF_MAX_SIZE || g->M > CF_MAX_SIZE) return false;
    if ((double)g->Cg * (double)g->KH * (double)g->KW > (double)CF_MAX_SIZE) return false;
    return true;
}

/* ------------------------------------------------------------------ input preparation */

void cf_prep_setup(const cf_geom *g, cf_prep *pp, bool allow_none) {
    memset(pp, 0, sizeof *pp);
    const bool fits = g->SH == 1 && g->SW == 1 && g->PT == 0 && g->PL == 0 &&
                      g->OH + (g->KH - 1) * g->DH <= g->H && g->OW + (g->KW - 1) * g->DW <= g->W;
    for (int r = 0; r < CF_MAX_STRIDE; r++) pp->iy[r] = pp->ix[r] = -1;
    if (allow_none && fits) {
        pp->none = true;
        pp->npy = pp->npx = 1;
        pp->iy[0] = pp->ix[0] = 0;
        pp->Hph = g->H;
        pp->Wph = g->W;
        pp->plane = g->H * g->W;
        return;
    }
    for (int64_t ky = 0; ky < g->KH; ky++) {
        int r = (int)((ky * g->DH) % g->SH);
        if (pp->iy[r] < 0) {
            pp->iy[r] = pp->npy;
            pp->ry[pp->npy++] = r;
        }
    }
    for (int64_t kx = 0; kx < g->KW; kx++) {
        int r = (int)((kx * g->DW) % g->SW);
        if (pp->ix[r] < 0) {
            pp->ix[r] = pp->npx;
            pp->rx[pp->npx++] = r;
        }
    }
    pp->Hph = g->OH + (g->KH - 1) * g->DH / g->SH;
    pp->Wph = g->OW + (g->KW - 1) * g->DW / g->SW;
    pp->plane = pp->Hph * pp->Wph;
}

int64_t cf_tap_offset(const cf_geom *g, const cf_prep *pp, int64_t ky, int64_t kx,
                      int64_t phase_stride) {
    const int64_t dy = ky * g->DH, dx = kx * g->DW;
    if (pp->none) return dy * g->W + dx;
    const int p = pp->iy[dy % g->SH] * pp->npx + pp->ix[dx % g->SW];
    return p * phase_stride + dy / g->SH * pp->Wph + dx / g->SW;
}

static int64_t ceil_div_nonneg(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

static void fill_f(float *d, int64_t n, float v) {
    if (v == 0.0f && !signbit(v)) {
        memset(d, 0, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) d[i] = v;
}

/* Short fills are inline loops: most rows here are a few floats long. */
static inline void fill_short(float *d, int64_t n, float v) {
    if (n > 32) {
        fill_f(d, n, v);
        return;
    }
    for (int64_t i = 0; i < n; i++) d[i] = v;
}

#define STAGE_GROUPS 512 /* de-interleaved columns per staging pass */

void cf_prep_plane(const cf_kernels *k, const cf_geom *g, const cf_prep *pp, const float *x,
                   float fill, float *dst, int64_t phase_stride) {
    const int64_t Hph = pp->Hph, Wph = pp->Wph, SW = g->SW;
    /* per x phase, the columns j whose source column j*SW + rx - PL lies in [0, W) */
    int64_t j0[CF_MAX_STRIDE], j1[CF_MAX_STRIDE];
    for (int px = 0; px < pp->npx; px++) {
        const int64_t rx = pp->rx[px];
        int64_t a = ceil_div_nonneg(g->PL - rx, SW), last = g->W - 1 + g->PL - rx;
        int64_t b = last < 0 ? 0 : last / SW + 1;
        if (b > Wph) b = Wph;
        if (a > Wph) a = Wph;
        if (b < a) b = a;
        j0[px] = a;
        j1[px] = b;
    }
    /* strided rows with several x phases: a padded copy of the row in a staging buffer,
     * split by the vector de-interleaver in one pass. With one x phase (1x1 stride 2)
     * the plain gather below is cheaper */
    const bool deint = k && k->deint && (SW == 2 || SW == 4) && pp->npx > 1;
    float stage[STAGE_GROUPS * 4], discard[STAGE_GROUPS];
    for (int py = 0; py < pp->npy; py++) {
        const int64_t ry = pp->ry[py];
        for (int64_t i = 0; i < Hph; i++) {
            float *row[CF_MAX_STRIDE];
            for (int px = 0; px < pp->npx; px++)
                row[px] = dst + (int64_t)(py * pp->npx + px) * phase_stride + i * Wph;
            const int64_t iy = i * g->SH + ry - g->PT;
            if (iy < 0 || iy >= g->H) {
                for (int px = 0; px < pp->npx; px++) fill_short(row[px], Wph, fill);
                continue;
            }
            const float *xr = x + iy * g->W;
            if (deint) {
                float *d[4];
                for (int64_t c0 = 0; c0 < Wph; c0 += STAGE_GROUPS) {
                    const int64_t n = Wph - c0 < STAGE_GROUPS ? Wph - c0 : STAGE_GROUPS;
                    /* stage[u] = padded column c0*SW + u */
                    const int64_t u0 = c0 * SW - g->PL, un = n * SW;
                    int64_t a = u0 < 0 ? -u0 : 0, b = g->W - u0 < un ? g->W - u0 : un;
                    if (b < a) b = a;
                    fill_short(stage, a, fill);
                    memcpy(stage + a, xr + u0 + a, (size_t)(b - a) * sizeof(float));
                    fill_short(stage + b, un - b, fill);
                    for (int r = 0; r < SW; r++) d[r] = pp->ix[r] < 0 ? discard : row[pp->ix[r]] + c0;
                    k->deint(stage, n, (int)SW, d);
                }
                continue;
            }
            for (int px = 0; px < pp->npx; px++) {
                float *rw = row[px];
                const float *src = xr + pp->rx[px] - g->PL;
                fill_short(rw, j0[px], fill);
                if (SW == 1) memcpy(rw + j0[px], src + j0[px], (size_t)(j1[px] - j0[px]) * sizeof(float));
                else if (SW == 2) /* a constant stride the compiler vectorises */
                    for (int64_t j = j0[px]; j < j1[px]; j++) rw[j] = src[2 * j];
                else
                    for (int64_t j = j0[px]; j < j1[px]; j++) rw[j] = src[j * SW];
                fill_short(rw + j1[px], Wph - j1[px], fill);
            }
        }
    }
}

/* ------------------------------------------------------------------ shared helpers */

void cf_epilogue(const pl_conv_fast *f, float *c, int64_t ldc, int64_t mr, int64_t nr,
                 const float *row_bias, const float *res, int64_t ldr) {
    if (mr <= 0 || nr <= 0) return;
    if (row_bias || res || f->epi.act != PL_SGEMM_ACT_NONE) {
        pl_sgemm_epilogue e = f->epi;
        e.row_bias = row_bias;
        e.residual = res;
        e.ld_residual = ldr;
        pl_sgemm_apply_epilogue(c, ldc, mr, nr, &e);
    }
    if (f->post_act)
        for (int64_t i = 0; i < mr; i++) pl_f32_conv_act_ref(&f->act, c + i * ldc, NULL, nr);
}

pl_status cf_slivers(int64_t n, int mr, int *count, int64_t **start, int **rows) {
    int ns = (int)((n + mr - 1) / mr);
    *count = ns;
    *start = malloc(sizeof(int64_t) * (size_t)(ns > 0 ? ns : 1));
    *rows = malloc(sizeof(int) * (size_t)(ns > 0 ? ns : 1));
    if (!*start || !*rows) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    int64_t r = 0;
    for (int s = 0; s < ns; s++) {
        int len = (int)(n / ns + (s < n % ns));
        (*start)[s] = r;
        (*rows)[s] = len;
        r += len;
    }
    return PL_OK;
}

pl_status cf_kblocks(int64_t K, int64_t kmax, int *count, int64_t **start, int64_t **len) {
    int nb = (int)((K + kmax - 1) / kmax);
    if (nb < 1) nb = 1;
    *count = nb;
    *start = malloc(sizeof(int64_t) * (size_t)nb);
    *len = malloc(sizeof(int64_t) * (size_t)nb);
    if (!*start || !*len) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    int64_t k = 0;
    for (int b = 0; b < nb; b++) {
        int64_t l = K / nb + (b < K % nb);
        (*start)[b] = k;
        (*len)[b] = l;
        k += l;
    }
    return PL_OK;
}

static void act_to_sgemm(const pl_conv_act *a, pl_sgemm_epilogue *e, bool *post) {
    memset(e, 0, sizeof *e);
    *post = false;
    switch (a->kind) {
    case PL_CONV_ACT_NONE: e->act = PL_SGEMM_ACT_NONE; break;
    case PL_CONV_ACT_RELU: e->act = PL_SGEMM_ACT_RELU; break;
    case PL_CONV_ACT_CLIP:
        e->act = PL_SGEMM_ACT_CLIP;
        e->act_min = a->alpha;
        e->act_max = a->beta;
        break;
    case PL_CONV_ACT_LEAKY_RELU:
        e->act = PL_SGEMM_ACT_LEAKY_RELU;
        e->act_alpha = a->alpha;
        break;
    case PL_CONV_ACT_SIGMOID: e->act = PL_SGEMM_ACT_SIGMOID; break;
    case PL_CONV_ACT_HARD_SWISH: e->act = PL_SGEMM_ACT_HARDSWISH; break;
    case PL_CONV_ACT_GELU: e->act = PL_SGEMM_ACT_GELU_ERF; break;
    case PL_CONV_ACT_GELU_TANH: e->act = PL_SGEMM_ACT_GELU_TANH; break;
    default:
        e->act = PL_SGEMM_ACT_NONE;
        *post = true;
        break;
    }
}

/* ------------------------------------------------------------------ planning */

static bool algo_applies(const cf_geom *g, pl_conv_algo a) {
    switch (a) {
    case PL_CONV_ALGO_SGEMM: return g->KH == 1 && g->KW == 1;
    case PL_CONV_ALGO_IGEMM:
    case PL_CONV_ALGO_IGEMM_T: return true;
    case PL_CONV_ALGO_DEPTHWISE: return g->Cg == 1;
    case PL_CONV_ALGO_WINOGRAD: return cf_wino_applies(g);
    case PL_CONV_ALGO_SPARSE: return true;
    default: return false;
    }
}

/* Measured on Zen 4 (bench/conv_bench --algo ...): Winograd halves the time of 3x3 stride-1 layers
 * once there are enough tiles (16+) and channels to amortise the transforms; at 7x7
 * outputs (4 tiles) streaming the 4x larger transformed weights costs more than it saves
 * at batch 1, but small planes at batch > 1 run batched (cf_wino_batch: the tiles of
 * several images share each transformed weight): 512 channels at 7x7 ran 1.85x faster
 * than IGEMM_T at batch 4 (16 tiles), 2.3x at batch 8-16, even at batch 2. */
static pl_conv_algo choose_dense(const cf_geom *g) {
    if (g->Cg == 1 && g->G > 1) return PL_CONV_ALGO_DEPTHWISE;
    const int64_t tiles = ((g->OH + 3) / 4) * ((g->OW + 3) / 4);
    if (cf_wino_applies(g) && g->SH == 1 && g->C >= 16 && g->M >= 16 &&
        tiles * cf_wino_batch_size(g) >= 16)
        return PL_CONV_ALGO_WINOGRAD;
    /* Stride 2 (polyphase, 1.78x fewer multiplies than direct but 9x the weights): only
     * batched groups of 64+ tiles, AVX-512. Measured 1 thread, batch 16: 10-17% faster than
     * IGEMM_T on ResNet-50's three; batch 2-4: 7-12% at 28x28 outputs, even at 14x14 (64
     * tiles), slower at 16 tiles; batch 1: +7% at 28x28, 1.2x / 4.7x slower at 14x14 / 7x7
     * (weight streaming), so not at batch 1. The transformed weights (81 M x C floats)
     * are capped at 32 MiB: 512 <- 512 (85 MB) ran 17% faster at batch 16 but took peak
     * RSS from 433 to 518 MB, next to ORT's 525. */
    if (cf_wino_applies(g) && g->SH == 2 && g->N > 1 && pl_cpu_isa() >= PL_ISA_AVX512 &&
        g->C >= 16 && g->M >= 16 && tiles * cf_wino_batch_size(g) >= 64 &&
        81.0 * 4.0 * (double)g->C * (double)g->M <= 32.0 * 1048576.0)
        return PL_CONV_ALGO_WINOGRAD;
    /* 1x1 too: the implicit GEMM's in-register epilogue and orientation choice beat a
     * plain packed SGEMM on most of ResNet-50's and MobileNetV2's layers */
    return PL_CONV_ALGO_IGEMM;
}

/* Pruned weights: SPARSE when its modelled time (nonzeros x pixels at the sparse
 * kernel's measured rate, plus its overheads) beats the dense algorithm's (MACs at its
 * measured rate) by a margin, so that a layer never runs slower than its dense form.
 * Depthwise stays dense (a few taps per channel). */
static pl_conv_algo choose_algo(const cf_geom *g, const float *w) {
    const pl_conv_algo dense = choose_dense(g);
    if (dense == PL_CONV_ALGO_DEPTHWISE || !w) return dense;
    const int64_t n = g->M * g->Cg * g->KH * g->KW;
    const int64_t nnz = n - (int64_t)llround(pl_sparse_zero_fraction(w, n) * (double)n);
    if (nnz * 4 > n * 3) return dense; /* under 25% zeros: never worth it */
    const pl_isa isa = pl_cpu_isa();
    return cf_sparse_cost(g, nnz, isa) < 0.9 * cf_dense_cost(g, dense, isa) ? PL_CONV_ALGO_SPARSE
                                                                                : dense;
}

bool pl_conv_fast_supported(const pl_conv_params *p, pl_conv_algo algo) {
    cf_geom g;
    if (!geom_of(p, &g)) return false;
    if (algo == PL_CONV_ALGO_AUTO || algo == PL_CONV_ALGO_AUTO_DENSE) return true;
    return algo_applies(&g, algo);
}

static pl_status sgemm_create(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    cf_prep_setup(g, &f->prep, true);
    if (!f->prep.none) f->prep_floats = (size_t)(g->C * f->prep.plane);
    f->packed = calloc((size_t)g->G, sizeof(void *));
    if (!f->packed) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    size_t sz = pl_sgemm_packed_a_size(g->Mg, g->Cg);
    if (!sz) return pl_error(PL_ERR_UNSUPPORTED, "convolution weights too large to pack");
    for (int64_t gi = 0; gi < g->G; gi++) {
        if (!(f->packed[gi] = malloc(sz)))
            return pl_error(PL_ERR_NOMEM, "out of memory packing convolution weights");
        PL_TRY(pl_sgemm_pack_a_hint(false, g->Mg, g->Cg, w + gi * g->Mg * g->Cg, g->Cg,
                                    g->OH * g->OW, f->packed[gi], sz));
    }
    return PL_OK;
}

/* Column offsets and in-bounds masks of the direct depthwise kernel (cf_dw_geom). */
static pl_status dw_direct_setup(pl_conv_fast *f) {
    const cf_geom *g = &f->g;
    const int vl = f->k->vl;
    const int64_t nch = (g->OW + vl - 1) / vl;
    f->dw_ix0 = malloc(sizeof(int64_t) * (size_t)(nch * g->KW));
    f->dw_mask = malloc(sizeof(uint32_t) * (size_t)(nch * g->KW));
    if (!f->dw_ix0 || !f->dw_mask) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t outs = g->OW - ch * vl < vl ? g->OW - ch * vl : vl;
        for (int64_t kx = 0; kx < g->KW; kx++) {
            const int64_t ix0 = ch * vl * g->SW - g->PL + kx * g->DW;
            uint32_t m = 0;
            for (int l = 0; l < vl * (int)g->SW; l++) {
                const int64_t ix = ix0 + l;
                if (ix >= 0 && ix < g->W && l / g->SW < outs && l % g->SW == 0) m |= 1u << l;
            }
            f->dw_ix0[ch * g->KW + kx] = ix0;
            f->dw_mask[ch * g->KW + kx] = m;
        }
    }
    cf_dw_geom *d = &f->dwg;
    d->H = g->H;
    d->W = g->W;
    d->OH = g->OH;
    d->OW = g->OW;
    d->KH = g->KH;
    d->KW = g->KW;
    d->SH = g->SH;
    d->SW = g->SW;
    d->PT = g->PT;
    d->PL = g->PL;
    d->DH = g->DH;
    d->DW = g->DW;
    d->nch = nch;
    d->ix0 = f->dw_ix0;
    d->mask = f->dw_mask;
    f->ws_floats = (size_t)g->W + 64; /* the zero row */
    return PL_OK;
}

static pl_status depthwise_create(pl_conv_fast *f, const float *w) {
    const cf_geom *g = &f->g;
    f->ntaps = (int)(g->KH * g->KW);
    f->wdw = malloc(sizeof(float) * (size_t)(g->M * f->ntaps));
    if (!f->wdw) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    memcpy(f->wdw, w, sizeof(float) * (size_t)(g->M * f->ntaps));
    f->dw_direct = g->SW <= 2 && f->k->dw_direct;
    if (f->dw_direct) return dw_direct_setup(f);
    cf_prep_setup(g, &f->prep, true);
    f->tap_off = malloc(sizeof(int64_t) * (size_t)f->ntaps);
    if (!f->tap_off) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    for (int64_t ky = 0; ky < g->KH; ky++)
        for (int64_t kx = 0; kx < g->KW; kx++)
            f->tap_off[ky * g->KW + kx] = cf_tap_offset(g, &f->prep, ky, kx, f->prep.plane);
    if (!f->prep.none)
        f->ws_floats = (size_t)(f->prep.npy * f->prep.npx * f->prep.plane);
    return PL_OK;
}

pl_status pl_conv_fast_create(const pl_conv_params *p, const float *w, const float *bias,
                              const pl_conv_act *act, pl_conv_algo algo, int nthreads,
                              pl_conv_fast **out) {
    *out = NULL;
    cf_geom g;
    if (!geom_of(p, &g))
        return pl_error(PL_ERR_UNSUPPORTED, "convolution geometry has no fast path");
    const bool auto_algo = algo == PL_CONV_ALGO_AUTO || algo == PL_CONV_ALGO_AUTO_DENSE;
    if (algo == PL_CONV_ALGO_AUTO_DENSE) algo = choose_dense(&g);
    else if (auto_algo) algo = choose_algo(&g, w);
    if (algo <= PL_CONV_ALGO_AUTO || algo >= PL_CONV_ALGO_COUNT || !algo_applies(&g, algo))
        return pl_error(PL_ERR_UNSUPPORTED, "convolution algorithm '%s' does not apply",
                        pl_conv_algo_name(algo));
    pl_conv_fast *f = calloc(1, sizeof *f);
    if (!f) return pl_error(PL_ERR_NOMEM, "out of memory planning a convolution");
    f->algo = algo;
    f->k = cf_kernels_for(pl_cpu_isa());
    f->g = g;
    if (act) f->act = *act;
    act_to_sgemm(&f->act, &f->epi, &f->post_act);
    f->clamp = f->act.kind == PL_CONV_ACT_NONE || f->act.kind == PL_CONV_ACT_RELU ||
               f->act.kind == PL_CONV_ACT_CLIP;
    f->lo = f->act.kind == PL_CONV_ACT_RELU ? 0.0f : f->act.kind == PL_CONV_ACT_CLIP ? f->act.alpha : -INFINITY;
    f->hi = f->act.kind == PL_CONV_ACT_CLIP ? f->act.beta : INFINITY;
    f->nthreads = nthreads < 1 ? 1 : nthreads;
    f->img_threads = 1;
    f->wino_batch = algo == PL_CONV_ALGO_WINOGRAD ? cf_wino_batch_size(&g) : 1;
    /* A batch that splits evenly (or finely enough) over the threads runs whole images
     * per thread, each planned for one thread: no per-layer barriers, no split tiles and
     * no repeated packing (ResNet-50 at batch 16 scaled 1.6x on 2 threads image by
     * image). Depthwise already splits over (image, channel) planes. */
    if (f->nthreads > 1 && g.N > 1 && algo != PL_CONV_ALGO_DEPTHWISE && f->wino_batch == 1 &&
        (g.N % f->nthreads == 0 || g.N >= 4 * f->nthreads)) {
        f->img_threads = f->nthreads;
        f->nthreads = 1;
    }
    f->force_t = algo == PL_CONV_ALGO_IGEMM_T ? 1 : algo == PL_CONV_ALGO_IGEMM && !auto_algo ? 0 : -1;
    pl_status st = PL_OK;
    if (bias) {
        if (!(f->bias = malloc(sizeof(float) * (size_t)g.M))) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else memcpy(f->bias, bias, sizeof(float) * (size_t)g.M);
    }
    if (!st) {
        switch (algo) {
        case PL_CONV_ALGO_SGEMM: st = sgemm_create(f, w); break;
        case PL_CONV_ALGO_IGEMM:
        case PL_CONV_ALGO_IGEMM_T: st = cf_igemm_create(f, w); break;
        case PL_CONV_ALGO_DEPTHWISE: st = depthwise_create(f, w); break;
        case PL_CONV_ALGO_WINOGRAD: st = cf_wino_create(f, w); break;
        case PL_CONV_ALGO_SPARSE: st = cf_sparse_create(f, w); break;
        default: st = pl_error(PL_ERR_UNSUPPORTED, "convolution algorithm not available"); break;
        }
    }
    if (!st && (f->prep_floats > (size_t)CF_MAX_FLOATS || f->ws_floats > (size_t)CF_MAX_FLOATS))
        st = pl_error(PL_ERR_UNSUPPORTED, "convolution needs too much scratch memory");
    if (st) {
        pl_conv_fast_destroy(f);
        /* an automatic choice that cannot be planned (sizes) falls back to IGEMM */
        if (st == PL_ERR_UNSUPPORTED && auto_algo && algo != PL_CONV_ALGO_IGEMM &&
            algo != PL_CONV_ALGO_IGEMM_T)
            return pl_conv_fast_create(p, w, bias, act, PL_CONV_ALGO_IGEMM, nthreads, out);
        return st;
    }
    *out = f;
    return PL_OK;
}

bool pl_conv_fast_act_epilogue(const pl_conv_fast *f, pl_sgemm_epilogue *e) {
    if (!f || f->post_act) return false;
    *e = f->epi;
    e->col_bias = e->residual = NULL;
    e->row_bias = f->bias;
    return true;
}

pl_conv_algo pl_conv_fast_algo(const pl_conv_fast *f) {
    if (!f) return PL_CONV_ALGO_AUTO;
    if (f->algo == PL_CONV_ALGO_IGEMM || f->algo == PL_CONV_ALGO_IGEMM_T)
        return f->transposed ? PL_CONV_ALGO_IGEMM_T : PL_CONV_ALGO_IGEMM;
    return f->algo;
}

static size_t round64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Scratch of one image: [prepared input][shared region][workspace per thread]. */
static size_t image_scratch(const pl_conv_fast *f) {
    return round64(f->prep_floats * sizeof(float)) + round64(f->shared_floats * sizeof(float)) +
           (size_t)f->nthreads * round64(f->ws_floats * sizeof(float));
}

size_t pl_conv_fast_scratch_size(const pl_conv_fast *f) {
    if (!f) return 0;
    return (size_t)f->img_threads * image_scratch(f);
}

void pl_conv_fast_destroy(pl_conv_fast *f) {
    if (!f) return;
    if (f->packed)
        for (int64_t gi = 0; gi < f->g.G; gi++) free(f->packed[gi]);
    free(f->packed);
    free(f->bias);
    free(f->A);
    free(f->sl_row);
    free(f->sl_rows);
    free(f->kb_start);
    free(f->kb_len);
    free(f->koff);
    free(f->tap_off);
    free(f->wdw);
    free(f->dw_ix0);
    free(f->dw_mask);
    cf_sparse_destroy(f);
    free(f);
}

/* ------------------------------------------------------------------ running */

/* Prepares all C channel planes of one image into buf: channel ch = (group gi,
 * channel c) at buf + (gi * nphases * Cg + c) * plane, phase p a further p * Cg * plane
 * on, so that within a phase the group's channels are `plane` apart. */
typedef struct prep_job {
    const pl_conv_fast *f;
    const float *x;
    float *buf;
    int64_t per_task;
} prep_job;

static void prep_task(void *ctx, int task, int thread) {
    (void)thread;
    const prep_job *j = ctx;
    const cf_geom *g = j->f->algo == PL_CONV_ALGO_WINOGRAD ? &j->f->wg : &j->f->g;
    const cf_prep *pp = &j->f->prep;
    const int64_t nph = pp->npy * pp->npx;
    int64_t c0 = task * j->per_task, c1 = c0 + j->per_task;
    if (c1 > g->C) c1 = g->C;
    for (int64_t ch = c0; ch < c1; ch++) {
        const int64_t gi = ch / g->Cg, c = ch % g->Cg;
        cf_prep_plane(j->f->k, g, pp, j->x + ch * g->H * g->W, 0.0f,
                      j->buf + (gi * nph * g->Cg + c) * pp->plane, g->Cg * pp->plane);
    }
}

static void prep_image(const pl_conv_fast *f, const float *x, float *buf, pl_threadpool *pool) {
    const int64_t C = f->g.C;
    int64_t ntasks = (int64_t)pl_threadpool_size(pool) * 4;
    if (ntasks > C) ntasks = C;
    if (ntasks < 1) ntasks = 1;
    prep_job j = {f, x, buf, (C + ntasks - 1) / ntasks};
    ntasks = (C + j.per_task - 1) / j.per_task;
    if (ntasks == 1) prep_task(&j, 0, 0);
    else pl_threadpool_run(pool, prep_task, &j, (int)ntasks);
}

static pl_status sgemm_image(const pl_conv_fast *f, const float *xin, const float *res,
                             float *y, pl_threadpool *pool) {
    const cf_geom *g = &f->g;
    const int64_t OHW = g->OH * g->OW;
    const int64_t plane = f->prep.none ? g->H * g->W : f->prep.plane; /* == OHW */
    for (int64_t gi = 0; gi < g->G; gi++) {
        pl_sgemm_epilogue e = f->epi;
        e.row_bias = f->bias ? f->bias + gi * g->Mg : NULL;
        e.residual = res ? res + gi * g->Mg * OHW : NULL;
        e.ld_residual = OHW;
        pl_sgemm_args a;
        memset(&a, 0, sizeof a);
        a.M = g->Mg;
        a.N = OHW;
        a.K = g->Cg;
        a.alpha = 1.0f;
        a.beta = 0.0f;
        a.packed_a = f->packed[gi];
        a.B = xin + gi * g->Cg * plane;
        a.ldb = plane;
        a.C = y + gi * g->Mg * OHW;
        a.ldc = OHW;
        a.epilogue = &e;
        a.pool = pool;
        PL_TRY(pl_sgemm_run(&a));
        if (f->post_act)
            pl_f32_conv_act_ref(&f->act, y + gi * g->Mg * OHW, NULL, g->Mg * OHW);
    }
    return PL_OK;
}

typedef struct dw_job {
    const pl_conv_fast *f;
    const float *x, *res;
    float *y;
    float *ws;
    size_t ws_stride;
    int64_t per_task, total;
} dw_job;

/* Depthwise: each task takes a range of (image, group) planes; a group's input plane is
 * prepared once (in the thread's workspace) and serves its Mg output channels. */
static void dw_task(void *ctx, int task, int thread) {
    const dw_job *j = ctx;
    const pl_conv_fast *f = j->f;
    const cf_geom *g = &f->g;
    const int64_t HW = g->H * g->W, OHW = g->OH * g->OW;
    float *ws = j->ws + (size_t)thread * j->ws_stride;
    int64_t q0 = task * j->per_task, q1 = q0 + j->per_task;
    if (q1 > j->total) q1 = j->total;
    if (f->dw_direct) {
        /* the activation is a clamp in the kernel unless a residual comes first */
        cf_dw_geom d = f->dwg;
        memset(ws, 0, sizeof(float) * (size_t)g->W);
        d.zero_row = ws;
        d.lo = -INFINITY;
        d.hi = INFINITY;
        const bool clamp = !j->res && (f->act.kind == PL_CONV_ACT_NONE ||
                                       f->act.kind == PL_CONV_ACT_RELU ||
                                       f->act.kind == PL_CONV_ACT_CLIP);
        if (clamp && f->act.kind == PL_CONV_ACT_RELU) d.lo = 0.0f;
        if (clamp && f->act.kind == PL_CONV_ACT_CLIP) {
            d.lo = f->act.alpha;
            d.hi = f->act.beta;
        }
        for (int64_t q = q0; q < q1; q++) {
            const int64_t b = q / g->G, gi = q % g->G;
            const float *xc = j->x + (b * g->C + gi) * HW;
            for (int64_t m = gi * g->Mg; m < (gi + 1) * g->Mg; m++) {
                float *yp = j->y + (b * g->M + m) * OHW;
                f->k->dw_direct(&d, xc, f->wdw + m * f->ntaps, f->bias ? f->bias[m] : 0.0f, yp);
                if (!clamp)
                    cf_epilogue(f, yp, g->OW, g->OH, g->OW, NULL,
                                j->res ? j->res + (b * g->M + m) * OHW : NULL, g->OW);
            }
        }
        return;
    }
    for (int64_t q = q0; q < q1; q++) {
        const int64_t b = q / g->G, gi = q % g->G;
        const float *xc = j->x + (b * g->C + gi) * HW;
        const float *src = xc;
        if (!f->prep.none) {
            cf_prep_plane(f->k, g, &f->prep, xc, 0.0f, ws, f->prep.plane);
            src = ws;
        }
        for (int64_t m = gi * g->Mg; m < (gi + 1) * g->Mg; m++) {
            float *yp = j->y + (b * g->M + m) * OHW;
            f->k->dw_plane(src, f->tap_off, f->wdw + m * f->ntaps, f->ntaps,
                           f->bias ? f->bias[m] : 0.0f, g->OH, g->OW, f->prep.Wph, yp);
            cf_epilogue(f, yp, g->OW, g->OH, g->OW, NULL,
                        j->res ? j->res + (b * g->M + m) * OHW : NULL, g->OW);
        }
    }
}

static void depthwise_run(const pl_conv_fast *f, const float *x, const float *res, float *y,
                          float *ws, size_t ws_stride, pl_threadpool *pool) {
    const int64_t total = f->g.N * f->g.G;
    int64_t ntasks = (int64_t)pl_threadpool_size(pool) * 8;
    if (ntasks > total) ntasks = total;
    dw_job j = {f, x, res, y, ws, ws_stride, (total + ntasks - 1) / ntasks, total};
    ntasks = (total + j.per_task - 1) / j.per_task;
    if (ntasks == 1) dw_task(&j, 0, 0);
    else pl_threadpool_run(pool, dw_task, &j, (int)ntasks);
}

/* One image b (all algorithms but DEPTHWISE) with the scratch of one image at `scratch`. */
static pl_status run_image(const pl_conv_fast *f, const float *x, const float *res, float *y,
                           int64_t b, void *scratch, pl_threadpool *pool) {
    const cf_geom *g = &f->g;
    float *prep = scratch;
    /* no scratch at all (a layer whose plan needs none) is NULL: no offset from it */
    float *ws = scratch ? (float *)((char *)scratch + round64(f->prep_floats * sizeof(float)) +
                                    round64(f->shared_floats * sizeof(float)))
                        : NULL;
    const int64_t in_img = g->C * g->H * g->W, out_img = g->M * g->OH * g->OW;
    const float *xin = x + b * in_img;
    if (!f->prep.none) {
        prep_image(f, xin, prep, pool);
        xin = prep;
    }
    const float *rb = res ? res + b * out_img : NULL;
    float *yb = y + b * out_img;
    switch (f->algo) {
    case PL_CONV_ALGO_SGEMM: return sgemm_image(f, xin, rb, yb, pool);
    case PL_CONV_ALGO_WINOGRAD: cf_wino_image(f, xin, rb, yb, ws, pool); break;
    case PL_CONV_ALGO_SPARSE: cf_sparse_image(f, xin, rb, yb, ws, pool); break;
    default: cf_igemm_image(f, xin, rb, yb, ws, pool); break;
    }
    return PL_OK;
}

typedef struct img_job {
    const pl_conv_fast *f;
    const float *x, *res;
    float *y;
    char *scratch;
    size_t slot;
    _Atomic int err;
} img_job;

static void img_task(void *ctx, int task, int thread) {
    img_job *j = ctx;
    pl_status st = run_image(j->f, j->x, j->res, j->y, task, j->scratch + (size_t)thread * j->slot, NULL);
    if (st) atomic_store(&j->err, (int)st);
}

pl_status pl_conv_fast_run(const pl_conv_fast *f, const float *x, const float *res, float *y,
                           void *scratch, size_t scratch_size, pl_threadpool *pool) {
    if (!f || !x || !y) return pl_error(PL_ERR_ARGUMENT, "pl_conv_fast_run: NULL argument");
    /* scratch is per thread */
    if (pl_threadpool_size(pool) > (f->img_threads > 1 ? f->img_threads : f->nthreads)) pool = NULL;
    const size_t need = pl_conv_fast_scratch_size(f);
    void *own = NULL;
    if (need && (!scratch || scratch_size < need || ((uintptr_t)scratch & 63))) {
        if (!(own = cf_alloc(need)))
            return pl_error(PL_ERR_NOMEM, "out of memory: %zu bytes of convolution scratch", need);
        scratch = own;
    }
    const cf_geom *g = &f->g;
    pl_status st = PL_OK;
    if (f->algo == PL_CONV_ALGO_DEPTHWISE) {
        float *ws = (float *)((char *)scratch + round64(f->prep_floats * sizeof(float)) +
                              round64(f->shared_floats * sizeof(float)));
        const size_t ws_stride = round64(f->ws_floats * sizeof(float)) / sizeof(float);
        depthwise_run(f, x, res, y, ws, ws_stride, pool);
    } else if (f->algo < PL_CONV_ALGO_SGEMM || f->algo >= PL_CONV_ALGO_COUNT) {
        st = pl_error(PL_ERR_INTERNAL, "convolution plan has no algorithm");
    } else if (f->img_threads > 1 && pl_threadpool_size(pool) > 1) {
        img_job j = {f, x, res, y, scratch, image_scratch(f), 0};
        pl_threadpool_run(pool, img_task, &j, (int)g->N);
        st = (pl_status)atomic_load(&j.err);
    } else if (f->wino_batch > 1) {
        /* batched Winograd: groups of images, each prepared into its slot, then run as
         * one tile set */
        const int64_t in_img = g->C * g->H * g->W, out_img = g->M * g->OH * g->OW;
        for (int64_t b0 = 0; b0 < g->N; b0 += f->wino_batch) {
            const int64_t n = g->N - b0 < f->wino_batch ? g->N - b0 : f->wino_batch;
            float *prep = scratch;
            for (int64_t i = 0; i < n; i++)
                prep_image(f, x + (b0 + i) * in_img, prep + i * f->img_prep, pool);
            float *ws = (float *)((char *)scratch + round64(f->prep_floats * sizeof(float)) +
                                  round64(f->shared_floats * sizeof(float)));
            cf_wino_batch(f, prep, n, res ? res + b0 * out_img : NULL, y + b0 * out_img, ws, pool);
        }
    } else {
        for (int64_t b = 0; b < g->N && !st; b++) st = run_image(f, x, res, y, b, scratch, pool);
    }
    free(own);
    return st;
}
