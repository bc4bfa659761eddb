/* conv_plan.h -- internal: the plan of a fast convolution (conv_fast.c) and what the
 * algorithm files (conv_igemm.c, conv_winograd.c) share with it. */
#ifndef PL_KERNELS_CONV_PLAN_H
#define PL_KERNELS_CONV_PLAN_H

#include "kernels/conv/conv_fast.h"
#include "kernels/conv/conv_isa.h"
#include "kernels/gemm/sgemm.h"
#include "kernels/sparse/sparse.h"

#define CF_MAX_STRIDE 16

/* 2-D view of a 1-D or 2-D convolution (1-D: H = OH = KH = 1). */
typedef struct cf_geom {
    int64_t N, C, H, W, M, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G, Cg, Mg;
} cf_geom;

/* How a channel plane is prepared so that every tap of a run of output pixels reads a
 * contiguous row: the zero-padded input split by stride phase. Phase (ry, rx) holds
 * padded rows ry, ry + SH, ... and columns rx, rx + SW, ...; a tap (ky, kx) reads phase
 * ((ky DH) % SH, (kx DW) % SW) at row oy + (ky DH) / SH and column ox + (kx DW) / SW.
 * With `none` the raw plane is read (stride 1, no padding needed). */
typedef struct cf_prep {
    bool none;
    int npy, npx;                  /* phases used along y and x */
    int ry[CF_MAX_STRIDE], rx[CF_MAX_STRIDE];
    int iy[CF_MAX_STRIDE], ix[CF_MAX_STRIDE]; /* residue -> phase index, -1 unused */
    int64_t Hph, Wph;              /* size of a phase plane (or H, W when none) */
    int64_t plane;                 /* floats per phase plane */
} cf_prep;

struct pl_conv_fast {
    pl_conv_algo algo;
    const cf_kernels *k;
    cf_geom g;
    pl_conv_act act;
    pl_sgemm_epilogue epi; /* the activation part; pointers set per call */
    bool post_act;         /* activation the sgemm epilogue lacks: applied afterwards */
    bool clamp;            /* the activation is a clamp to [lo, hi] (none, ReLU, Clip) */
    float lo, hi;
    int nthreads;          /* threads one image is planned for */
    int img_threads;       /* > 1: batches run whole images per thread (that many scratch
                            * slots of one image's single-thread scratch each) */
    float *bias;           /* M values, or NULL */
    cf_prep prep;
    size_t prep_floats;    /* shared per-image prepared input */
    size_t ws_floats;      /* per-thread workspace */

    /* SGEMM: per group, a packed A (pl_sgemm_pack_a) */
    void **packed;

    /* IGEMM and WINOGRAD GEMMs */
    float *A;              /* packed weights (64-byte aligned) */
    int nsl;               /* row slivers per group */
    int64_t *sl_row;
    int *sl_rows;
    int nkb;               /* K blocks */
    int64_t *kb_start, *kb_len;
    int64_t K;
    int64_t *koff;         /* K: offset of row k in the group's prepared input */
    int64_t Np, ldg;       /* columns (output pixels) and the prepared grid's row pitch */
    bool transposed;       /* IGEMM computes C^T: pixels are rows (slivers sl_*), output
                            * channels NR-wide columns (ncs per group); small planes */
    int ncs;
    int force_t;           /* tests: -1 choose, 0 / 1 force the orientation */
    bool direct_b;         /* 1x1 on the raw input with few row slivers: the micro-kernel
                            * reads B in place (row k at k * H*W) instead of a packed copy */
    int64_t nc;            /* columns per block */
    int tm, tn;            /* thread grid per group */
    int64_t rows_task;     /* most output rows one task owns */
    bool t_shared;         /* IGEMM_T with threads: the pixel slivers are packed once per
                            * image (a parallel pass) into the shared region, then tasks
                            * of pixel x channel slivers multiply */
    size_t shared_floats;  /* shared per-image region between the prepared input and the
                            * thread workspaces (pl_conv_fast_run lays scratch out as
                            * [prepared][shared][thread 0 ws][thread 1 ws]...) */

    /* DEPTHWISE */
    int ntaps;
    int64_t *tap_off;
    float *wdw;
    bool dw_direct;        /* no preparation: cf_kernels.dw_direct with dwg */
    cf_dw_geom dwg;        /* zero_row, lo, hi set per run */
    int64_t *dw_ix0;
    uint32_t *dw_mask;

    /* WINOGRAD (conv_winograd.c): F(4x4, 3x3) tiles; the prepared input is split in 4x4
     * phases (geometry wg) so that a patch element of consecutive tiles is contiguous */
    cf_geom wg;
    int64_t TH, TW, tb;    /* tiles down and across; tiles per block */
    int64_t nblocks, ldv;  /* tile blocks; row stride of transformed tiles (whole vectors) */
    int64_t wtap[36];      /* patch element (i, j) offset in the prepared planes */
    int mparts;            /* row-sliver parts per tile block (tasks = blocks x parts) */
    bool wino_shared;      /* input transformed in a first parallel pass (threads) */
    int chunk_sl;          /* row slivers per GEMM/output-transform pass */
    bool wino_xi;          /* few blocks (small planes) with threads: the GEMMs run as
                            * tasks over (block, xi) into products for the whole plane
                            * (shared region), then the output transform over rows */
    int wino_batch;        /* > 1: images run in groups of up to this many, their tiles as
                            * one tile set (cf_wino_batch): each transformed weight sliver
                            * serves the tiles of all of them (small planes at batch > 1) */
    int64_t img_prep;      /* floats of one image's prepared input (wino_batch) */

    /* SPARSE (conv_sparse.c): per group, the Mg x K weights (K ordered (c, tap)) as a
     * sparse matrix times the prepared planes (B row k at koff[k]); columns are
     * positions in the prepared grid (row pitch ldg), tiled, output channels split in
     * mparts ranges of equal nonzeros (sp_mstart, G x (mparts + 1)) */
    pl_sparse_w **sw;
    int64_t *sp_mstart;
    int sp_mparts, sp_ntiles;
    int64_t sp_ng, sp_tile; /* grid columns per plane; columns per tile */
    bool sp_flat;           /* grid == output layout (ldg == OW): results go straight to y */
};

/* Applies bias (row_bias[i], may be NULL), residual (res[i*ldr + j], may be NULL) and
 * the activation to an mr x nr block. */
void cf_epilogue(const pl_conv_fast *f, float *c, int64_t ldc, int64_t mr, int64_t nr,
                 const float *row_bias, const float *res, int64_t ldr);

/* Chooses the preparation for g (allow_none: the raw input when no padding is needed). */
void cf_prep_setup(const cf_geom *g, cf_prep *pp, bool allow_none);

/* Fills the prepared phase planes of one channel plane x (H x W) at dst, phase p at
 * dst + p * phase_stride; taps outside the input read `fill`. k (may be NULL) supplies
 * the vector de-interleaving. */
void cf_prep_plane(const cf_kernels *k, const cf_geom *g, const cf_prep *pp, const float *x,
                   float fill, float *dst, int64_t phase_stride);

/* Offset of tap (ky, kx) from an output pixel's position in the prepared planes (phase
 * planes phase_stride apart) with row pitch ldx. */
int64_t cf_tap_offset(const cf_geom *g, const cf_prep *pp, int64_t ky, int64_t kx,
                      int64_t phase_stride);

/* Splits n rows into ceil(n / mr) slivers of balanced size. */
pl_status cf_slivers(int64_t n, int mr, int *count, int64_t **start, int **rows);
/* Splits K into blocks of at most kmax, balanced. */
pl_status cf_kblocks(int64_t K, int64_t kmax, int *count, int64_t **start, int64_t **len);

/* Packs the M x K matrix W (row stride ldw) into f's A layout (slivers sl_*, K blocks
 * kb_*): K block b, sliver s at dst + kb_start[b]*nsl*MR + s*kb_len[b]*MR, kc x MR. */
void cf_pack_a(const pl_conv_fast *f, const float *W, int64_t ldw, float *dst);

/* IGEMM (conv_igemm.c). */
pl_status cf_igemm_create(pl_conv_fast *f, const float *w);
void cf_igemm_image(const pl_conv_fast *f, const float *xin, const float *res, float *y,
                    float *ws, pl_threadpool *pool);

/* WINOGRAD (conv_winograd.c). */
bool cf_wino_applies(const cf_geom *g);
pl_status cf_wino_create(pl_conv_fast *f, const float *w);
void cf_wino_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                   pl_threadpool *pool);
/* Batched: nimg (<= wino_batch) images prepared at xin (img_prep floats apart) into y
 * (and res) of consecutive images; ws as cf_wino_image's. */
void cf_wino_batch(const pl_conv_fast *f, const float *xin, int64_t nimg, const float *res,
                   float *y, float *ws, pl_threadpool *pool);
/* Images per group for batched Winograd of g (1: image by image). */
int cf_wino_batch_size(const cf_geom *g);

/* SPARSE (conv_sparse.c). */
pl_status cf_sparse_create(pl_conv_fast *f, const float *w);
void cf_sparse_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                     pl_threadpool *pool);
void cf_sparse_destroy(pl_conv_fast *f);
/* Estimated seconds of one image at one thread, sparse (the packed weights) or dense
 * (the MACs at the measured rate of the dense algorithm), for the automatic choice. */
double cf_sparse_cost(const cf_geom *g, int64_t nnz, pl_isa isa);
double cf_dense_cost(const cf_geom *g, pl_conv_algo algo, pl_isa isa);

/* Aligned allocations the plan owns (64 bytes). */
void *cf_alloc(size_t bytes);

#endif
