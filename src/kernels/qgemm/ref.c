/* ref.c -- the plain-C level of the INT8 GEMM engine (tile and sparse-row kernels,
 * the scalar epilogue) and the unpacked reference the fast levels are tested against.
 * The epilogue's float steps are written with fmaf so that they are the same
 * operations as the SIMD levels' fused multiply-adds. */
#include <math.h>

#include "kernels/qgemm/qgemm.h"

#define REF_MR 4

static void tile_ref(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                     int32_t *acc) {
    const int mr = pw->mr;
    const int64_t G = pw->Kp / 4;
    const int8_t *w = (const int8_t *)pw->data + mt * G * mr * 4;
    const uint8_t *a = panel;
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < 32; j++) acc[r * 32 + j] = 0;
    for (int64_t g = 0; g < G; g++) {
        const uint8_t *ag = a + (g * Pp + p0) * 4;
        const int8_t *wg = w + g * mr * 4;
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < 32; j++) {
                int32_t s = 0;
                for (int t = 0; t < 4; t++) s += (int32_t)ag[j * 4 + t] * wg[r * 4 + t];
                acc[r * 32 + j] = (int32_t)((uint32_t)acc[r * 32 + j] + (uint32_t)s);
            }
    }
}

static void srow_ref(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp, int64_t p0, int nb,
                     int32_t *acc) {
    const uint8_t *a = panel;
    const int8_t *v = pw->vals;
    for (int j = 0; j < 32 * nb; j++) acc[j] = 0;
    for (int64_t q = pw->ptr[m]; q < pw->ptr[m + 1]; q++) {
        const uint8_t *ag = a + ((int64_t)pw->idx[q] * Pp + p0) * 4;
        const int8_t *wq = v + q * 4;
        for (int j = 0; j < 32 * nb; j++) {
            int32_t s = 0;
            for (int t = 0; t < 4; t++) s += (int32_t)ag[j * 4 + t] * wq[t];
            acc[j] = (int32_t)((uint32_t)acc[j] + (uint32_t)s);
        }
    }
}

/* The exact epilogue of one value (see qgemm.h); raw is the corrected int32 sum. */
static void epi_one(const pl_q8_epilogue *e, int64_t m, int32_t raw, float res, void *out,
                    int64_t at) {
    if (e->bias_i32) raw = (int32_t)((uint32_t)raw + (uint32_t)e->bias_i32[m]);
    if (e->out == PL_Q8_OUT_I32) {
        ((int32_t *)out)[at] = raw;
        return;
    }
    float y = fmaf((float)raw, e->scale[m], e->fbias ? e->fbias[m] : 0.0f);
    if (e->res) y = fmaf(res, e->rscale, y);
    float lo, hi;
    pl_q8_out_range(e, &lo, &hi);
    y = y > lo ? y : lo; /* NaN becomes lo */
    y = y < hi ? y : hi;
    if (e->out == PL_Q8_OUT_F32) {
        ((float *)out)[at] = y;
        return;
    }
    int32_t q = (int32_t)nearbyintf(y) + e->zp;
    if (e->out == PL_Q8_OUT_U8) ((uint8_t *)out)[at] = (uint8_t)q;
    else ((int8_t *)out)[at] = (int8_t)q;
}

static int32_t corrected(const pl_q8_w *pw, int64_t m, int32_t acc, const int32_t *asum,
                         int32_t za, int64_t p) {
    uint32_t v = (uint32_t)acc - (uint32_t)za * (uint32_t)pw->rowsum[m];
    if (pw->any_zw && pw->zw[m])
        v += (uint32_t)pw->zw[m] * ((uint32_t)za * (uint32_t)pw->K - (uint32_t)asum[p]);
    return (int32_t)v;
}

void pl_q8_epi_scalar(const pl_q8_w *pw, int64_t m, const int32_t *acc, const int32_t *asum,
                      int32_t za, int64_t p0, int64_t n, const pl_q8_epilogue *e, void *out,
                      int64_t ldm, int64_t ldp) {
    for (int64_t j = 0; j < n; j++) {
        const int64_t at = m * ldm + (p0 + j) * ldp;
        epi_one(e, m, corrected(pw, m, acc[j], asum, za, p0 + j), e->res ? e->res[at] : 0.0f, out, at);
    }
}

static const pl_q8_impl impl = {PL_Q8_REF, REF_MR, tile_ref, srow_ref, pl_q8_epi_scalar,
                                NULL,      NULL,   NULL,     NULL,     NULL};

const pl_q8_impl *pl_q8_impl_ref(void) { return &impl; }

void pl_q8_gemm_ref(const uint8_t *a, int64_t lda, int32_t za, const int8_t *w, int64_t ldw,
                    const int32_t *zw, int64_t M, int64_t K, int64_t P, const pl_q8_epilogue *e,
                    void *out, int64_t ldm, int64_t ldp) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t p = 0; p < P; p++) {
            int64_t s = 0;
            const int32_t z = zw ? zw[m] : 0;
            for (int64_t k = 0; k < K; k++)
                s += ((int64_t)a[k * lda + p] - za) * ((int64_t)w[m * ldw + k] - z);
            const int64_t at = m * ldm + p * ldp;
            epi_one(e, m, (int32_t)(uint32_t)(uint64_t)s, e->res ? e->res[at] : 0.0f, out, at);
        }
}

void pl_q8_add_u8_ref(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p) {
    for (int64_t i = 0; i < n; i++) {
        float v = fmaf((float)a[i], p->ra, fmaf((float)b[i], p->rb, p->fixed));
        v = v > p->lo ? v : p->lo;
        v = v < p->hi ? v : p->hi;
        y[i] = (uint8_t)(int32_t)nearbyintf(v);
    }
}

void pl_q8_dw_raw_ref(const pl_q8_conv_geom *g, const uint8_t *x, uint8_t pad, const int8_t *w,
                      int32_t *acc) {
    for (int64_t oh = 0; oh < g->out[0]; oh++)
        for (int64_t ow = 0; ow < g->out[1]; ow++) {
            int32_t s = 0;
            for (int64_t kh = 0; kh < g->k[0]; kh++)
                for (int64_t kw = 0; kw < g->k[1]; kw++) {
                    const int64_t ih = oh * g->stride[0] + kh * g->dil[0] - g->pad[0];
                    const int64_t iw = ow * g->stride[1] + kw * g->dil[1] - g->pad[1];
                    const bool in = ih >= 0 && ih < g->in[0] && iw >= 0 && iw < g->in[1];
                    s += (int32_t)(in ? x[ih * g->in[1] + iw] : pad) * w[kh * g->k[1] + kw];
                }
            acc[oh * g->out[1] + ow] = s;
        }
}

void pl_q8_lut_ref(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]) {
    for (int64_t i = 0; i < n; i++) y[i] = t[x[i]];
}
