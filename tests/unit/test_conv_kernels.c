/* test_conv_kernels.c -- the fast convolutions (kernels/conv/conv_fast.h) and pooling
 * (kernels/pool/pool_fast.h) against their reference kernels, on every kernel level this
 * CPU has and every algorithm that applies: kernels 1/3/5/7, strides 1/2/3, pads
 * 0/1/2 and asymmetric, dilation 1/2, groups 1/2/depthwise (and channel multipliers),
 * channel counts and sizes around the tiles, batch 1/3, 1-D, every fused activation,
 * with and without a residual, serial and on a 2-thread pool.
 *
 *   test_conv_kernels [--quick] [--seed N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/conv/conv_plan.h" /* direct_k: which plans took the direct small-K mode */
#include "kernels/pool/pool.h"
#include "kernels/pool/pool_fast.h"

static int failures, cases, direct_plans;
#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            failures++;                                                                     \
            if (failures < 30) {                                                            \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                 \
                printf(__VA_ARGS__);                                                        \
                printf("\n");                                                               \
            }                                                                               \
        }                                                                                   \
    } while (0)

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }
static int64_t rpick(const int64_t *v, int n) { return v[rnd() % (unsigned)n]; }

static float *rand_buf(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static const pl_conv_act acts[] = {
    {PL_CONV_ACT_NONE, 0, 0},        {PL_CONV_ACT_RELU, 0, 0},
    {PL_CONV_ACT_CLIP, 0, 6},        {PL_CONV_ACT_CLIP, -0.5f, 0.25f},
    {PL_CONV_ACT_LEAKY_RELU, 0.1f, 0}, {PL_CONV_ACT_SIGMOID, 0, 0},
    {PL_CONV_ACT_HARD_SIGMOID, 0.2f, 0.5f}, {PL_CONV_ACT_HARD_SWISH, 0, 0},
    {PL_CONV_ACT_TANH, 0, 0},        {PL_CONV_ACT_GELU, 0, 0},
    {PL_CONV_ACT_GELU_TANH, 0, 0},
};
#define NACTS ((int)(sizeof acts / sizeof acts[0]))

typedef struct ccase {
    int ndim;
    int64_t N, C, M, G, H, W, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW;
} ccase;

/* Fills p from c; false when the output would be empty. */
static bool params_of(const ccase *c, pl_conv_params *p) {
    memset(p, 0, sizeof *p);
    p->ndim = c->ndim;
    p->batch = c->N;
    p->in_channels = c->C;
    p->out_channels = c->M;
    p->group = c->G;
    int64_t in[2] = {c->H, c->W}, k[2] = {c->KH, c->KW}, s[2] = {c->SH, c->SW},
            pb[2] = {c->PT, c->PL}, pe[2] = {c->PB, c->PR}, d[2] = {c->DH, c->DW};
    int off = c->ndim == 1 ? 1 : 0;
    for (int i = 0; i < c->ndim; i++) {
        int j = i + off;
        p->in_size[i] = in[j];
        p->kernel[i] = k[j];
        p->stride[i] = s[j];
        p->pad_begin[i] = pb[j];
        p->dilation[i] = d[j];
        int64_t span = in[j] + pb[j] + pe[j] - ((k[j] - 1) * d[j] + 1);
        if (span < 0) return false;
        p->out_size[i] = span / s[j] + 1;
    }
    return true;
}

static const char *isa_names[] = {"ref", "avx2", "avx512"};

static void describe(const ccase *c, char *buf, size_t n) {
    snprintf(buf, n, "%dD N%lld C%lld M%lld G%lld %lldx%lld k%lldx%lld s%lldx%lld p%lld,%lld,%lld,%lld d%lldx%lld",
             c->ndim, (long long)c->N, (long long)c->C, (long long)c->M, (long long)c->G,
             (long long)c->H, (long long)c->W, (long long)c->KH, (long long)c->KW,
             (long long)c->SH, (long long)c->SW, (long long)c->PT, (long long)c->PL,
             (long long)c->PB, (long long)c->PR, (long long)c->DH, (long long)c->DW);
}

/* Runs one case with every applicable algorithm on the current level, with activation
 * `ai` and optionally a residual, serially and on pool. */
static void run_conv_case(const ccase *c, int ai, bool with_res, bool with_bias,
                          pl_threadpool *const *pools, int npools) {
    pl_conv_params p;
    if (!params_of(c, &p)) return;
    int64_t in_sp = 1, out_sp = 1, k_sp = 1;
    for (int i = 0; i < p.ndim; i++) {
        in_sp *= p.in_size[i];
        out_sp *= p.out_size[i];
        k_sp *= p.kernel[i];
    }
    const int64_t nx = c->N * c->C * in_sp, ny = c->N * c->M * out_sp;
    const int64_t nw = c->M * (c->C / c->G) * k_sp;
    float *x = rand_buf(nx), *w = rand_buf(nw), *bias = with_bias ? rand_buf(c->M) : NULL;
    float *res = with_res ? rand_buf(ny) : NULL;
    float *ref = malloc(sizeof(float) * (size_t)ny);
    float *y = aligned_alloc(64, (sizeof(float) * (size_t)ny + 63) & ~(size_t)63);
    pl_f32_conv_ref(&p, x, w, bias, ref);
    pl_f32_conv_act_ref(&acts[ai], ref, res, ny);
    double amax = 0;
    for (int64_t i = 0; i < ny; i++) amax = fmax(amax, fabs(ref[i]));
    const double tol = 2e-6 * (double)((c->C / c->G) * k_sp + 8) * (amax + 1);
    char desc[256];
    describe(c, desc, sizeof desc);
    for (int a = PL_CONV_ALGO_AUTO; a < PL_CONV_ALGO_COUNT; a++) {
        if (!pl_conv_fast_supported(&p, (pl_conv_algo)a)) continue;
        for (int pi = 0; pi < npools; pi++) {
            pl_threadpool *tp = pools[pi];
            pl_conv_fast *f = NULL;
            pl_status st = pl_conv_fast_create(&p, w, bias, &acts[ai], (pl_conv_algo)a,
                                               pl_threadpool_size(tp), &f);
            cases++;
            CHECK(st == PL_OK, "%s: create %s failed: %s", desc, pl_conv_algo_name(a),
                  pl_error_msg());
            if (st) continue;
            if (f->direct_k) direct_plans++;
            for (int64_t i = 0; i < ny; i++) y[i] = NAN;
            size_t ss = pl_conv_fast_scratch_size(f);
            void *scratch = ss ? aligned_alloc(64, (ss + 63) & ~(size_t)63) : NULL;
            st = pl_conv_fast_run(f, x, res, y, scratch, ss, tp);
            CHECK(st == PL_OK, "%s: run failed: %s", desc, pl_error_msg());
            double worst = 0;
            int64_t wi = 0;
            for (int64_t i = 0; i < ny; i++) {
                double e = fabs((double)y[i] - (double)ref[i]);
                if (!(e <= worst)) {
                    worst = e;
                    wi = i;
                    if (e != e) break;
                }
            }
            CHECK(worst <= tol, "%s act %d res %d bias %d isa %s algo %s(%s) threads %d: worst %g at %lld (%g vs %g), tol %g",
                  desc, ai, with_res, with_bias, isa_names[pl_cpu_isa()], pl_conv_algo_name(a),
                  pl_conv_algo_name(pl_conv_fast_algo(f)), pl_threadpool_size(tp), worst,
                  (long long)wi, y[wi], ref[wi], tol);
            free(scratch);
            pl_conv_fast_destroy(f);
        }
    }
    free(x);
    free(w);
    free(bias);
    free(res);
    free(ref);
    free(y);
}

static ccase random_case(void) {
    static const int64_t ch[] = {1, 2, 3, 5, 8, 13, 14, 15, 16, 17, 29, 32, 33};
    static const int64_t sz[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17};
    static const int64_t ks[] = {1, 1, 3, 3, 3, 5, 7, 2};
    ccase c;
    memset(&c, 0, sizeof c);
    c.ndim = rnd() % 5 == 0 ? 1 : 2;
    c.N = rnd() % 4 == 0 ? 3 : 1;
    int kind = (int)(rnd() % 4);
    if (kind == 0) { /* depthwise (multiplier 1 or 2) */
        c.C = c.G = rpick(ch, 13);
        c.M = c.C * (rnd() % 3 == 0 ? 2 : 1);
    } else if (kind == 1) { /* grouped */
        c.G = 2 + rnd() % 2;
        c.C = c.G * (1 + rnd() % 5);
        c.M = c.G * (1 + rnd() % 9);
    } else {
        c.G = 1;
        c.C = rpick(ch, 13);
        c.M = rpick(ch, 13) + (rnd() % 3 == 0 ? 14 * (rnd() % 3) : 0);
    }
    c.H = c.ndim == 1 ? 1 : rpick(sz, 11);
    c.W = rpick(sz, 11);
    c.KH = c.ndim == 1 ? 1 : rpick(ks, 8);
    c.KW = rnd() % 3 == 0 ? rpick(ks, 8) : c.KH;
    if (c.ndim == 1) c.KW = rpick(ks, 8);
    c.SH = c.ndim == 1 ? 1 : 1 + rnd() % 3;
    c.SW = rnd() % 2 ? c.SH : 1 + rnd() % 3;
    c.DH = c.ndim == 1 ? 1 : (rnd() % 5 == 0 ? 2 : 1);
    c.DW = rnd() % 5 == 0 ? 2 : 1;
    c.PT = c.ndim == 1 ? 0 : rnd() % 3;
    c.PB = c.ndim == 1 ? 0 : (rnd() % 3 == 0 ? rnd() % 3 : c.PT);
    c.PL = rnd() % 3;
    c.PR = rnd() % 3 == 0 ? rnd() % 3 : c.PL;
    return c;
}

/* Model-like layers (ResNet, MobileNetV2) at reduced sizes, plus tile edges. */
static const ccase fixed_cases[] = {
    /* ndim N C M G H W KH KW SH SW PT PL PB PR DH DW */
    {2, 1, 64, 64, 1, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 64, 1, 30, 30, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1},
    {2, 1, 64, 256, 1, 9, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 256, 64, 1, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 64, 128, 1, 14, 14, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1},
    {2, 1, 32, 32, 1, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 96, 96, 96, 17, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 144, 144, 144, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 32, 16, 1, 12, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 160, 320, 1, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 16, 16, 1, 6, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
    {2, 1, 8, 12, 4, 11, 9, 3, 5, 1, 2, 1, 2, 0, 1, 1, 1},
    {2, 3, 5, 7, 1, 17, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 33, 65, 1, 5, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 2, 6, 10, 2, 1, 33, 1, 5, 1, 2, 0, 2, 0, 2, 1, 1},
    {2, 1, 4, 4, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 4, 4, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 2, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 20, 40, 1, 9, 9, 3, 3, 3, 3, 0, 0, 2, 2, 1, 1},
    {2, 1, 64, 64, 1, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 128, 128, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 48, 80, 1, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 70, 30, 1, 10, 9, 3, 3, 1, 1, 0, 1, 2, 0, 1, 1},
    /* small planes (C^T): several K blocks, channel slivers that do not divide */
    {2, 1, 64, 96, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 300, 70, 1, 5, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 40, 160, 1, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    {2, 1, 24, 200, 1, 13, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    /* batches split by image over the threads (or not: 5 on 2 or 3 threads) */
    {2, 4, 16, 24, 1, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 5, 20, 33, 1, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 6, 30, 17, 1, 5, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
    /* batched Winograd (small planes at batch > 1): tiles of several images in one
     * block, a partial last group (20 = 16 + 4), blocks that end mid-image, 1x1 planes */
    {2, 3, 17, 33, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 20, 16, 30, 1, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 5, 40, 20, 1, 9, 11, 3, 3, 1, 1, 1, 0, 1, 2, 1, 1},
    {2, 3, 16, 16, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 64, 29, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    /* depthwise 3x3 stride 2, left pad 1 (the paired-column AVX-512 kernel): widths below,
     * at and above the 32 input columns of a vector (64: the last lane of a full vector
     * reads the next chunk's column), odd widths, right pads 0/1/2, top pads 0/1/2, a
     * channel multiplier of 2, one row */
    {2, 1, 5, 5, 5, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 4, 4, 4, 9, 65, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1},
    {2, 2, 3, 6, 3, 12, 31, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1},
    {2, 1, 2, 2, 2, 20, 112, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 5, 33, 3, 3, 2, 2, 1, 1, 1, 2, 1, 1},
    {2, 1, 17, 17, 17, 1, 30, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    /* ... and on planes at most 16 wide (two rows per vector): 16 columns (8 outputs, the
     * last odd column inside the row), 15, 9, 2; odd row counts; top pads 0/2 */
    {2, 1, 3, 3, 3, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 4, 4, 4, 11, 15, 3, 3, 2, 2, 0, 1, 1, 1, 1, 1},
    {2, 2, 3, 6, 3, 21, 9, 3, 3, 2, 2, 2, 1, 0, 0, 1, 1},
    {2, 1, 5, 5, 5, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    /* depthwise 3x3 stride 1, left pad 1 (shifted-vector kernel): widths 1, 7, 16, 17,
     * 32, 33 (the next vector's first column), right pads 0/1/2, top pads 0/1/2 */
    {2, 1, 3, 3, 3, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 6, 6, 6, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 9, 16, 3, 3, 1, 1, 0, 1, 2, 1, 1, 1},
    {2, 1, 3, 3, 3, 6, 17, 3, 3, 1, 1, 2, 1, 0, 0, 1, 1},
    {2, 2, 4, 8, 4, 5, 32, 3, 3, 1, 1, 1, 1, 1, 2, 1, 1},
    {2, 1, 5, 5, 5, 11, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    /* ... and on planes at most 7 wide (two rows per vector): odd row counts, pads 0/2 */
    {2, 1, 4, 4, 4, 9, 6, 3, 3, 1, 1, 0, 1, 2, 0, 1, 1},
    {2, 2, 3, 6, 3, 3, 7, 3, 3, 1, 1, 2, 1, 0, 1, 1, 1},
    {2, 1, 9, 9, 9, 10, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    /* depthwise on larger planes (MobileNetV2's 28x28 and up, over 8+ tasks per thread):
     * stride 1 and 2, odd sizes, pads 0/2, a 5x5 kernel, dilation 2, a channel
     * multiplier, batch 2, 16 columns (8-row passes), 9 rows x 100 columns */
    {2, 1, 6, 6, 6, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 5, 5, 5, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 31, 29, 3, 3, 1, 1, 0, 1, 2, 1, 1, 1},
    {2, 1, 4, 8, 4, 57, 30, 3, 3, 2, 2, 2, 1, 0, 1, 1, 1},
    {2, 1, 3, 3, 3, 40, 25, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1},
    {2, 1, 3, 3, 3, 33, 33, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
    {2, 2, 4, 4, 4, 30, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 60, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 100, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 3, 3, 3, 9, 100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    /* stride-2 3x3 Winograd (polyphase, conv_winograd_s2.c): 28x28 outputs (7 tiles a
     * row, 2 rows packed a vector), 14x14 and 7x7 at batch 3 (batched groups whose
     * blocks end mid-row and mid-image), odd sizes with pad 0, asymmetric and left pad
     * 2, planes 1-2 tiles wide, 17 tiles a row (row by row) and 67 (several chunks),
     * channels not multiples of 16 */
    {2, 1, 24, 40, 1, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 3, 17, 33, 1, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 3, 16, 16, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 2, 20, 18, 1, 15, 13, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1},
    {2, 3, 48, 50, 1, 11, 20, 3, 3, 2, 2, 1, 2, 0, 1, 1, 1},
    {2, 2, 31, 29, 1, 2, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {2, 1, 5, 7, 1, 9, 130, 3, 3, 2, 2, 1, 0, 1, 1, 1, 1},
    {2, 1, 3, 5, 1, 5, 530, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1},
    {2, 2, 64, 64, 1, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
};
#define NFIXED ((int)(sizeof fixed_cases / sizeof fixed_cases[0]))

/* Fixed cases run serially and on pools of 2, 3 and 5 threads (task splits that do not
 * divide); random ones serially, on 2 threads and on 3 or 5. */
static void test_convs(int nrandom, pl_threadpool *const pools[4]) {
    for (int i = 0; i < NFIXED; i++)
        run_conv_case(&fixed_cases[i], i % NACTS, i % 3 == 1, i % 4 != 3, pools, 4);
    for (int i = 0; i < nrandom; i++) {
        ccase c = random_case();
        pl_threadpool *const sel[3] = {pools[0], pools[1], pools[2 + i % 2]};
        run_conv_case(&c, (int)(rnd() % NACTS), rnd() % 3 == 0, rnd() % 4 != 0, sel, 3);
    }
}

/* The direct small-K mode (conv_igemm.c: KxK with K = C KH KW <= 160, 1x1 with K <= 32,
 * 4+ tasks per thread): strips of 1-4 vectors around 16-pixel widths (16, 20, 64, 65, 112 = 64 + 48,
 * 113, 150 = 64 + 48 + 38), channel blocks of 6 that do not divide (1, 5, 7, 13, 32),
 * K at the limit (160) and above it (161: implicit GEMM), strides 1 (raw rows, no copy)
 * and 2, batch 2, every activation, residuals. On levels with the kernel each case
 * must take the mode on every pool it has the rows for. */
static void test_direct(pl_threadpool *const pools[4]) {
    static const ccase dc[] = {
        /* ndim N C M G H W KH KW SH SW PT PL PB PR DH DW */
        {2, 1, 3, 32, 1, 40, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {2, 1, 3, 7, 1, 24, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 1, 1, 5, 1, 22, 66, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1},
        {2, 1, 2, 13, 1, 22, 65, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 2, 3, 6, 1, 44, 224, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {2, 1, 3, 1, 1, 21, 113, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1},
        {2, 1, 2, 9, 1, 20, 150, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 1, 3, 20, 1, 50, 50, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1},
        {2, 1, 10, 12, 1, 23, 30, 4, 4, 1, 1, 0, 1, 2, 1, 1, 1},
        {2, 1, 3, 11, 1, 30, 40, 3, 3, 1, 2, 1, 0, 1, 2, 2, 1},
        /* 1x1 with K <= 32: flat planes (64-pixel strips, a partial last one), stride 2 */
        {2, 1, 16, 96, 1, 40, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
        {2, 1, 32, 7, 1, 30, 31, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
        {2, 2, 24, 13, 1, 50, 50, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1},
    };
    const bool has = cf_kernels_for(pl_cpu_isa())->direct_run != NULL;
    for (int i = 0; i < (int)(sizeof dc / sizeof dc[0]); i++) {
        const int before = direct_plans;
        run_conv_case(&dc[i], i % NACTS, i % 2 == 0, i % 3 != 2, pools, 4);
        CHECK(!has || direct_plans > before, "direct case %d: no plan took the direct mode", i);
    }
    /* one above the limits (K = 161; 1x1 with K = 33): never direct */
    const ccase over[] = {{2, 1, 7, 9, 1, 24, 24, 23, 1, 1, 1, 11, 0, 11, 0, 1, 1},
                          {2, 1, 33, 8, 1, 40, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}};
    for (int i = 0; i < 2; i++) {
        const int before = direct_plans;
        run_conv_case(&over[i], 1 + i, true, true, pools, 4);
        CHECK(direct_plans == before, "case over %d took the direct mode", i);
    }
}

/* Outputs larger than L3 (all images together) are stored with non-temporal stores
 * (64-byte aligned, whole 32-float tile rows; the rest with plain stores): whole and
 * partial tiles, residual and clamps, one image per thread and whole-image splits. */
static void test_streamed(pl_threadpool *const pools[4]) {
    /* planned as if L3 held 8 MiB: at the detected size (260 MiB on some servers) the
     * cases would need hundreds of images */
    const size_t l3 = pl_cpu_force_l3((size_t)8 << 20);
    /* ndim N C M G H W KH KW SH SW PT PL PB PR DH DW */
    ccase a = {2, 0, 3, 20, 1, 64, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    ccase b = {2, 0, 5, 20, 1, 63, 63, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    a.N = (int64_t)(l3 / (20 * 64 * 64 * 4)) + 2;
    b.N = (int64_t)(l3 / (20 * 63 * 63 * 4)) + 2;
    run_conv_case(&a, 1, true, true, pools, 3);
    run_conv_case(&b, 3, true, false, pools, 2);
    run_conv_case(&a, 2, false, true, pools, 2);
    pl_cpu_force_l3(0);
}

/* ------------------------------------------------------------------ pooling */

static void run_pool_case(const ccase *c, int kind, int cip, bool ceil_mode,
                          pl_threadpool *pool) {
    pl_pool_params p;
    memset(&p, 0, sizeof p);
    p.ndim = c->ndim;
    p.planes = c->N * c->C;
    int64_t in[2] = {c->H, c->W}, k[2] = {c->KH, c->KW}, s[2] = {c->SH, c->SW},
            pb[2] = {c->PT, c->PL}, pe[2] = {c->PB, c->PR}, d[2] = {c->DH, c->DW};
    int off = c->ndim == 1 ? 1 : 0;
    int64_t in_sp = 1, out_sp = 1;
    for (int i = 0; i < c->ndim; i++) {
        int j = i + off;
        p.in_size[i] = in[j];
        p.kernel[i] = k[j];
        p.stride[i] = s[j];
        p.pad_begin[i] = pb[j];
        p.pad_end[i] = pe[j];
        p.dilation[i] = d[j];
        int64_t span = in[j] + pb[j] + pe[j] - ((k[j] - 1) * d[j] + 1);
        if (span < 0) return;
        int64_t o = span / s[j] + 1;
        if (ceil_mode && span % s[j]) {
            o++;
            if ((o - 1) * s[j] >= in[j] + pb[j]) o--;
        }
        p.out_size[i] = o;
        in_sp *= in[j];
        out_sp *= o;
    }
    const int64_t nx = p.planes * in_sp, ny = p.planes * out_sp;
    float *x = rand_buf(nx), *ref = malloc(sizeof(float) * (size_t)ny),
          *y = malloc(sizeof(float) * (size_t)ny);
    const bool global = kind >= 2;
    if (global) { /* one window over the whole plane */
        for (int i = 0; i < p.ndim; i++) {
            p.kernel[i] = p.in_size[i];
            p.out_size[i] = p.stride[i] = p.dilation[i] = 1;
            p.pad_begin[i] = p.pad_end[i] = 0;
        }
        free(ref);
        free(y);
        ref = malloc(sizeof(float) * (size_t)p.planes);
        y = malloc(sizeof(float) * (size_t)p.planes);
    }
    const int64_t nout = global ? p.planes : ny;
    if (kind == 0 || kind == 2) pl_f32_maxpool_ref(&p, x, ref, NULL, 0);
    else pl_f32_avgpool_ref(&p, x, ref, cip);
    char desc[256];
    describe(c, desc, sizeof desc);
    for (int threaded = 0; threaded < 2; threaded++) {
        pl_threadpool *tp = threaded ? pool : NULL;
        for (int64_t i = 0; i < nout; i++) y[i] = NAN;
        pl_status st;
        cases++;
        if (kind == 2 || kind == 3) {
            st = pl_pool_fast_global(kind == 2 ? PL_POOL_FAST_MAX : PL_POOL_FAST_AVG, x,
                                     p.planes, in_sp, y, tp);
        } else {
            if (!pl_pool_fast_supported(&p)) return;
            st = pl_pool_fast_run(kind == 0 ? PL_POOL_FAST_MAX : PL_POOL_FAST_AVG, &p, cip, x, y,
                                  tp);
        }
        CHECK(st == PL_OK, "pool %s kind %d: %s", desc, kind, pl_error_msg());
        double worst = 0;
        for (int64_t i = 0; i < nout; i++) {
            double e = fabs((double)y[i] - (double)ref[i]);
            if (isinf(ref[i]) && y[i] == ref[i]) e = 0;
            if (!(e <= worst)) worst = e;
        }
        CHECK(worst <= 1e-5, "pool %s kind %d cip %d ceil %d isa %s threads %d: worst %g", desc,
              kind, cip, ceil_mode, isa_names[pl_cpu_isa()], pl_threadpool_size(tp), worst);
    }
    free(x);
    free(ref);
    free(y);
}

static void test_pools(int nrandom, pl_threadpool *pool) {
    static const ccase fixed[] = {
        {2, 1, 64, 64, 1, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {2, 2, 3, 3, 1, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1},
        {2, 1, 5, 5, 1, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 1, 4, 4, 1, 1, 17, 1, 4, 1, 3, 0, 1, 0, 2, 1, 1},
        {2, 1, 2, 2, 1, 8, 8, 3, 2, 1, 2, 0, 1, 1, 0, 2, 1},
        /* 3x3 stride 2 max read in place (AVX-512): widths below, at and above the 16
         * outputs (33 input columns) of a vector, odd and even sizes, pads 0..2 */
        {2, 2, 3, 3, 1, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {2, 1, 2, 2, 1, 5, 2, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1},
        {2, 1, 3, 3, 1, 9, 31, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1},
        {2, 1, 3, 3, 1, 8, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {2, 1, 2, 2, 1, 7, 33, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1},
        {2, 1, 2, 2, 1, 6, 34, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1},
        {2, 1, 2, 2, 1, 11, 65, 3, 3, 2, 2, 0, 2, 1, 0, 1, 1},
        {2, 1, 3, 3, 1, 13, 113, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    };
    for (int i = 0; i < (int)(sizeof fixed / sizeof fixed[0]); i++)
        for (int kind = 0; kind < 4; kind++)
            run_pool_case(&fixed[i], kind, i % 2, i % 3 == 2, pool);
    for (int i = 0; i < nrandom; i++) {
        ccase c = random_case();
        if (c.PT >= c.KH) c.PT = c.KH - 1; /* pads smaller than the kernel, as ONNX asks */
        if (c.PB >= c.KH) c.PB = c.KH - 1;
        if (c.PL >= c.KW) c.PL = c.KW - 1;
        if (c.PR >= c.KW) c.PR = c.KW - 1;
        run_pool_case(&c, (int)(rnd() % 4), (int)(rnd() % 2), rnd() % 3 == 0, pool);
    }
}

int main(int argc, char **argv) {
    int nrandom = 150;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) nrandom = 30;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng_state = strtoull(argv[++i], NULL, 0) | 1;
    }
    pl_threadpool *pool = pl_threadpool_create(2);
    pl_threadpool *pool3 = pl_threadpool_create(3), *pool5 = pl_threadpool_create(5);
    pl_threadpool *const pools[4] = {NULL, pool, pool3, pool5};
    for (int isa = PL_ISA_REF; isa <= (int)pl_cpu()->best; isa++) {
        pl_cpu_force_isa(isa);
        int before = failures;
        test_convs(nrandom, pools);
        test_streamed(pools);
        test_direct(pools);
        test_pools(nrandom, pool);
        printf("%s: %s\n", isa_names[isa], failures == before ? "ok" : "FAILED");
    }
    pl_cpu_force_isa(-1);
    pl_threadpool_destroy(pool);
    pl_threadpool_destroy(pool3);
    pl_threadpool_destroy(pool5);
    printf("%d checks, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
