/* grad_kernels_avx512.c -- grad_kernels.inc built with AVX-512 code generation (this
 * file's name gives it -mavx512f ...), with the 2x2 max pool in intrinsics: 16 outputs
 * at a time, even/odd columns split by permutes, winners chosen by compare masks. */
#include "train/grad_kernels.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>

#define K(name) name##_avx512
#define TR_KERN_OWN_MAXPOOL
#define TR_KERN_OWN_SUMS
#include "train/grad_kernels.inc"
#undef K

/* The BatchNorm reductions: one vector of float partial sums per block of 256 values,
 * blocks added in double. */
static void shifted_sums_simd(const float *x, int64_t n, float shift, double *s1, double *s2) {
    const __m512 sh = _mm512_set1_ps(shift);
    double a = 0, b = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        const int64_t i1 = i0 + 256 < n ? i0 + 256 : n;
        __m512 p = _mm512_setzero_ps(), q = _mm512_setzero_ps();
        for (int64_t i = i0; i < i1; i += 16) {
            const __mmask16 m = i1 - i >= 16 ? 0xffff : (__mmask16)((1u << (i1 - i)) - 1);
            const __m512 v = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), sh);
            p = _mm512_add_ps(p, v);
            q = _mm512_fmadd_ps(v, v, q);
        }
        a += _mm512_reduce_add_ps(p);
        b += _mm512_reduce_add_ps(q);
    }
    *s1 = a;
    *s2 = b;
}

static void grad_sums_simd(const float *x, const float *g, int64_t n, float mean, double *sg,
                           double *sgx) {
    const __m512 mv = _mm512_set1_ps(mean);
    double a = 0, b = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        const int64_t i1 = i0 + 256 < n ? i0 + 256 : n;
        __m512 p = _mm512_setzero_ps(), q = _mm512_setzero_ps();
        for (int64_t i = i0; i < i1; i += 16) {
            const __mmask16 m = i1 - i >= 16 ? 0xffff : (__mmask16)((1u << (i1 - i)) - 1);
            const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
            const __m512 xv = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mv);
            p = _mm512_add_ps(p, gv);
            q = _mm512_fmadd_ps(gv, xv, q);
        }
        a += _mm512_reduce_add_ps(p);
        b += _mm512_reduce_add_ps(q);
    }
    *sg = a;
    *sgx = b;
}

static inline __mmask16 lanes(int64_t from, int64_t to) { /* lanes [from, to) of 0..15 */
    if (from < 0) from = 0;
    if (to > 16) to = 16;
    if (to <= from) return 0;
    return (__mmask16)(((1u << (to - from)) - 1) << from);
}

/* im2col / col2im with masked 16-wide rows: output rows of a few dozen floats (the
 * common case in small CNNs) take one or two masked moves instead of a scalar tail. */
static void im2col_simd(const tr_conv_geo *g, const float *x, float *col, int64_t ld) {
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t sw = g->s[2], nch = (OW + 15) / 16;
    if (nch > 16) { /* very wide rows: the plain loops */
        im2col_avx512(g, x, col, ld);
        return;
    }
    const __m512i step =
        _mm512_mullo_epi32(_mm512_set1_epi32((int)sw),
                           _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
    __mmask16 mo[16], mi[16];
    for (int64_t ch = 0; ch < nch; ch++) mo[ch] = lanes(0, OW - 16 * ch);
    int64_t row = 0;
    for (int64_t ci = 0; ci < g->C; ci++)
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, row++) {
                    float *dst = col + row * ld;
                    const int64_t woff = kw * g->d[2] - g->p[2];
                    for (int64_t ch = 0; ch < nch; ch++)
                        mi[ch] = lanes(g->wlo[kw] - 16 * ch, g->whi[kw] - 16 * ch);
                    for (int64_t od = 0; od < OD; od++) {
                        const int64_t id = od * g->s[0] - g->p[0] + kd * g->d[0];
                        const bool din = id >= 0 && id < ID;
                        const float *xplane = x + (ci * ID + id) * IH * IW + woff;
                        float *drow = dst + od * OH * OW;
                        int64_t ih = kh * g->d[1] - g->p[1];
                        for (int64_t oh = 0; oh < OH; oh++, ih += g->s[1], drow += OW) {
                            if (!din || ih < 0 || ih >= IH) {
                                for (int64_t ch = 0; ch < nch; ch++)
                                    _mm512_mask_storeu_ps(drow + 16 * ch, mo[ch],
                                                          _mm512_setzero_ps());
                                continue;
                            }
                            const float *xrow = xplane + ih * IW;
                            for (int64_t ch = 0; ch < nch; ch++) {
                                __m512 v =
                                    sw == 1
                                        ? _mm512_maskz_loadu_ps(mi[ch], xrow + 16 * ch)
                                        : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mi[ch],
                                                                   step, xrow + 16 * ch * sw, 4);
                                _mm512_mask_storeu_ps(drow + 16 * ch, mo[ch], v);
                            }
                        }
                    }
                }
}

static void col2im_simd(const tr_conv_geo *g, const float *col, int64_t ld, float *dx) {
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t nch = (OW + 15) / 16;
    if (g->s[2] != 1 || nch > 16) {
        col2im_avx512(g, col, ld, dx);
        return;
    }
    __mmask16 mi[16];
    int64_t row = 0;
    for (int64_t ci = 0; ci < g->C; ci++)
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, row++) {
                    const float *src = col + row * ld;
                    const int64_t woff = kw * g->d[2] - g->p[2];
                    for (int64_t ch = 0; ch < nch; ch++)
                        mi[ch] = lanes(g->wlo[kw] - 16 * ch, g->whi[kw] - 16 * ch);
                    for (int64_t od = 0; od < OD; od++) {
                        const int64_t id = od * g->s[0] - g->p[0] + kd * g->d[0];
                        if (id < 0 || id >= ID) continue;
                        float *xplane = dx + (ci * ID + id) * IH * IW + woff;
                        const float *srow = src + od * OH * OW;
                        int64_t ih = kh * g->d[1] - g->p[1];
                        for (int64_t oh = 0; oh < OH; oh++, ih += g->s[1], srow += OW) {
                            if (ih < 0 || ih >= IH) continue;
                            float *xrow = xplane + ih * IW;
                            for (int64_t ch = 0; ch < nch; ch++) {
                                const __mmask16 m = mi[ch];
                                __m512 a = _mm512_maskz_loadu_ps(m, xrow + 16 * ch),
                                       b = _mm512_maskz_loadu_ps(m, srow + 16 * ch);
                                _mm512_mask_storeu_ps(xrow + 16 * ch, m, _mm512_add_ps(a, b));
                            }
                        }
                    }
                }
}

static void maxpool2x2_simd(const float *x, float *y, int32_t *arg, int64_t planes, int64_t IH,
                            int64_t IW, int64_t OH, int64_t OW) {
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i two = _mm512_set1_epi32(2), iw = _mm512_set1_epi32((int)IW),
                  one = _mm512_set1_epi32(1);
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * IH * IW;
        float *yp = y + pl * OH * OW;
        int32_t *ap = arg ? arg + pl * OH * OW : NULL;
        for (int64_t oh = 0; oh < OH; oh++) {
            const float *r0 = xp + 2 * oh * IW, *r1 = r0 + IW;
            for (int64_t ow = 0; ow < OW; ow += 16) {
                const int64_t n = OW - ow < 16 ? OW - ow : 16;
                const __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
                const int64_t in = 2 * n;
                const __mmask16 l0 = in >= 16 ? 0xffff : (__mmask16)((1u << in) - 1);
                const __mmask16 l1 =
                    in >= 32 ? 0xffff : (in > 16 ? (__mmask16)((1u << (in - 16)) - 1) : 0);
                const __m512 a0 = _mm512_maskz_loadu_ps(l0, r0 + 2 * ow),
                             a1 = _mm512_maskz_loadu_ps(l1, r0 + 2 * ow + 16);
                const __m512 b0 = _mm512_maskz_loadu_ps(l0, r1 + 2 * ow),
                             b1 = _mm512_maskz_loadu_ps(l1, r1 + 2 * ow + 16);
                const __m512 a = _mm512_permutex2var_ps(a0, even, a1),
                             b = _mm512_permutex2var_ps(a0, odd, a1);
                const __m512 c = _mm512_permutex2var_ps(b0, even, b1),
                             d = _mm512_permutex2var_ps(b0, odd, b1);
                const __mmask16 s1 = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ),
                                s2 = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
                const __m512 m1 = _mm512_mask_blend_ps(s1, a, b),
                             m2 = _mm512_mask_blend_ps(s2, c, d);
                const __mmask16 s3 = _mm512_cmp_ps_mask(m2, m1, _CMP_GT_OQ);
                _mm512_mask_storeu_ps(yp + oh * OW + ow, m, _mm512_mask_blend_ps(s3, m1, m2));
                if (ap) {
                    /* index of a: 2*oh*IW + 2*(ow + lane) */
                    __m512i base = _mm512_add_epi32(
                        _mm512_set1_epi32((int)(2 * oh * IW + 2 * ow)),
                        _mm512_mullo_epi32(two, _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                                                 5, 4, 3, 2, 1, 0)));
                    __m512i i1 = _mm512_mask_add_epi32(base, s1, base, one);
                    __m512i i2 = _mm512_add_epi32(_mm512_mask_add_epi32(base, s2, base, one), iw);
                    _mm512_mask_storeu_epi32(ap + oh * OW + ow, m,
                                             _mm512_mask_blend_epi32(s3, i1, i2));
                }
            }
        }
    }
}

static const tr_kernels avx512 = {im2col_simd,     col2im_simd, relu_fwd_avx512,   relu_bwd_avx512,
                                  maxpool2x2_simd, add_avx512,  shifted_sums_simd, grad_sums_simd,
                                  axpb_avx512,     bn_dx_avx512};

const tr_kernels *tr_kernels_avx512(void) {
    return &avx512;
}

#else

const tr_kernels *tr_kernels_avx512(void) {
    return NULL;
}

#endif
