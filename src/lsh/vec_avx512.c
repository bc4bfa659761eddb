/* vec_avx512.c -- AVX-512 versions of the dense primitives in vec.h. Compiled with
 * -mavx512f/-mavx512vl/... (CMake gives files named *avx512* those flags); vec.c calls
 * pl_vec_avx512_ops only when cpuid reports AVX-512. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lsh/vec.h"

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>

static inline __mmask16 tail_mask(int64_t r) {
    return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);
}

static float a5_dot(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void a5_axpy(float a, const float *x, float *y, int64_t n) {
    __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i,
                         _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 r =
            _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* Four rows at a time share each load of h; the row four ahead is prefetched, since
 * gathered rows are usually not in cache. */
static void a5_gather_dots(const float *W, int64_t ldw, const float *bias, const uint32_t *ids,
                           int64_t n, const float *h, int64_t d, float *out) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const float *r0 = W + (int64_t)ids[k] * ldw, *r1 = W + (int64_t)ids[k + 1] * ldw;
        const float *r2 = W + (int64_t)ids[k + 2] * ldw, *r3 = W + (int64_t)ids[k + 3] * ldw;
        if (k + 8 <= n) {
            for (int p = 4; p < 8; p++) {
                const char *pr = (const char *)(W + (int64_t)ids[k + p] * ldw);
                for (int64_t off = 0; off < d * 4; off += 64) _mm_prefetch(pr + off, _MM_HINT_T0);
            }
        }
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i += 16) {
            __mmask16 m = tail_mask(d - i);
            __m512 hv = _mm512_maskz_loadu_ps(m, h + i);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r0 + i), hv, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r1 + i), hv, s1);
            s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r2 + i), hv, s2);
            s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r3 + i), hv, s3);
        }
        out[k] = _mm512_reduce_add_ps(s0);
        out[k + 1] = _mm512_reduce_add_ps(s1);
        out[k + 2] = _mm512_reduce_add_ps(s2);
        out[k + 3] = _mm512_reduce_add_ps(s3);
        if (bias) {
            out[k] += bias[ids[k]];
            out[k + 1] += bias[ids[k + 1]];
            out[k + 2] += bias[ids[k + 2]];
            out[k + 3] += bias[ids[k + 3]];
        }
    }
    for (; k < n; k++) {
        float s = a5_dot(W + (int64_t)ids[k] * ldw, h, d);
        out[k] = bias ? s + bias[ids[k]] : s;
    }
}

/* dh is accumulated in registers, 128 columns at a time, over all rows; the row
 * gradients G[id] += g h are a separate streaming pass. */
static void a5_scatter_rows(const float *W, int64_t ldw, float *G, int64_t ldg, const uint32_t *ids,
                            const float *g, int64_t n, const float *h, int64_t d, float *dh) {
    if (dh) {
        for (int64_t c0 = 0; c0 < d; c0 += 128) {
            int64_t blk = d - c0 < 128 ? d - c0 : 128;
            if (blk == 128) {
                __m512 a0 = _mm512_loadu_ps(dh + c0), a1 = _mm512_loadu_ps(dh + c0 + 16);
                __m512 a2 = _mm512_loadu_ps(dh + c0 + 32), a3 = _mm512_loadu_ps(dh + c0 + 48);
                __m512 a4 = _mm512_loadu_ps(dh + c0 + 64), a5 = _mm512_loadu_ps(dh + c0 + 80);
                __m512 a6 = _mm512_loadu_ps(dh + c0 + 96), a7 = _mm512_loadu_ps(dh + c0 + 112);
                for (int64_t k = 0; k < n; k++) {
                    if (g[k] == 0) continue;
                    const float *r = W + (int64_t)ids[k] * ldw + c0;
                    __m512 gv = _mm512_set1_ps(g[k]);
                    a0 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r), a0);
                    a1 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 16), a1);
                    a2 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 32), a2);
                    a3 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 48), a3);
                    a4 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 64), a4);
                    a5 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 80), a5);
                    a6 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 96), a6);
                    a7 = _mm512_fmadd_ps(gv, _mm512_loadu_ps(r + 112), a7);
                }
                _mm512_storeu_ps(dh + c0, a0);
                _mm512_storeu_ps(dh + c0 + 16, a1);
                _mm512_storeu_ps(dh + c0 + 32, a2);
                _mm512_storeu_ps(dh + c0 + 48, a3);
                _mm512_storeu_ps(dh + c0 + 64, a4);
                _mm512_storeu_ps(dh + c0 + 80, a5);
                _mm512_storeu_ps(dh + c0 + 96, a6);
                _mm512_storeu_ps(dh + c0 + 112, a7);
            } else {
                for (int64_t k = 0; k < n; k++)
                    if (g[k] != 0) a5_axpy(g[k], W + (int64_t)ids[k] * ldw + c0, dh + c0, blk);
            }
        }
    }
    if (G) {
        for (int64_t k = 0; k < n; k++)
            if (g[k] != 0) a5_axpy(g[k], h, G + (int64_t)ids[k] * ldg, d);
    }
}

/* 64 outputs at a time stay in four registers while x walks down the rows. */
static void a5_vecmat(const float *x, int64_t m, const float *A, int64_t lda, int64_t n, float *y) {
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
        __mmask16 k0 = tail_mask(n - j0), k1 = n - j0 > 16 ? tail_mask(n - j0 - 16) : 0;
        __mmask16 k2 = n - j0 > 32 ? tail_mask(n - j0 - 32) : 0,
                  k3 = n - j0 > 48 ? tail_mask(n - j0 - 48) : 0;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
               a3 = _mm512_setzero_ps();
        const float *col = A + j0;
        for (int64_t i = 0; i < m; i++) {
            if (x[i] == 0) continue;
            __m512 xv = _mm512_set1_ps(x[i]);
            const float *r = col + i * lda;
            a0 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(k0, r), a0);
            a1 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(k1, r + 16), a1);
            a2 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(k2, r + 32), a2);
            a3 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(k3, r + 48), a3);
        }
        _mm512_mask_storeu_ps(y + j0, k0, a0);
        _mm512_mask_storeu_ps(y + j0 + 16, k1, a1);
        _mm512_mask_storeu_ps(y + j0 + 32, k2, a2);
        _mm512_mask_storeu_ps(y + j0 + 48, k3, a3);
    }
}

static void a5_adam(float *w, float *m, float *v, float *g, int64_t n, const pl_adam_step *s,
                    bool zero_g) {
    const __m512 b1 = _mm512_set1_ps(s->beta1), b2 = _mm512_set1_ps(s->beta2);
    const __m512 c1 = _mm512_set1_ps(1 - s->beta1), c2 = _mm512_set1_ps(1 - s->beta2);
    const __m512 lr = _mm512_set1_ps(s->lr_t), eps = _mm512_set1_ps(s->eps);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 gi = _mm512_maskz_loadu_ps(k, g + i);
        __m512 mi = _mm512_fmadd_ps(b1, _mm512_maskz_loadu_ps(k, m + i), _mm512_mul_ps(c1, gi));
        __m512 vi = _mm512_fmadd_ps(b2, _mm512_maskz_loadu_ps(k, v + i),
                                    _mm512_mul_ps(c2, _mm512_mul_ps(gi, gi)));
        __m512 step = _mm512_div_ps(_mm512_mul_ps(lr, mi), _mm512_add_ps(_mm512_sqrt_ps(vi), eps));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(w + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, w + i), step));
        if (zero_g) _mm512_mask_storeu_ps(g + i, k, zero);
    }
}

/* ---------------------------------------------------------------- sgemm */

/* Packed GEMM in the usual five loops: B is packed in KC x NC blocks of NR-wide
 * panels, A in MC x KC blocks of MR-tall panels, and a 12 x 32 register tile does the
 * arithmetic (24 accumulators, A broadcast from memory). */
enum { MR = 12, NR = 32, KC = 256, MC = 132, NC = 1536 };

typedef struct gemm_buf {
    float *a, *b;
} gemm_buf;

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_free(void *p) {
    gemm_buf *g = p;
    if (!g) return;
    free(g->a);
    free(g->b);
    free(g);
}

static void buf_key_init(void) {
    pthread_key_create(&buf_key, buf_free);
}

/* Per-thread packing buffers, allocated once per thread (freed at thread exit). */
static gemm_buf *get_buf(void) {
    pthread_once(&buf_once, buf_key_init);
    gemm_buf *g = pthread_getspecific(buf_key);
    if (g) return g;
    g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->a = aligned_alloc(64, sizeof(float) * MC * KC);
    g->b = aligned_alloc(64, sizeof(float) * KC * NC);
    if (!g->a || !g->b || pthread_setspecific(buf_key, g) != 0) {
        buf_free(g);
        return NULL;
    }
    return g;
}

/* In-register transpose of a 16 x 16 block: r[i][j] -> r[j][i]. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    /* u[4g + c], 128-bit lane l, holds rows 4g..4g+3 of column 4l + c */
    for (int c = 0; c < 4; c++) {
        __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 w = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(v, v2, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v, v2, 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(w, w2, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(w, w2, 0xdd);
    }
}

/* Packing the transposed side: rows are read contiguously 16 floats at a time and
 * turned into k-major order with an in-register 16 x 16 transpose. */
static void pack_a(bool ta, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t M,
                   int64_t k0, int64_t kc, float *ap) {
    (void)M;
    const __mmask16 m12 = 0x0fff;
    for (int64_t p = 0; p < mc; p += MR) {
        float *dst = ap + p * kc;
        int64_t rows = mc - p < MR ? mc - p : MR;
        if (!ta) {
            const float *src = A + (i0 + p) * lda + k0;
            for (int64_t kk = 0; kk < kc; kk += 16) {
                int64_t nk = kc - kk < 16 ? kc - kk : 16;
                __mmask16 km = tail_mask(nk);
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * lda + kk)
                                    : _mm512_setzero_ps();
                transpose16(r);
                for (int64_t j = 0; j < nk; j++)
                    _mm512_mask_storeu_ps(dst + (kk + j) * MR, m12, r[j]);
            }
        } else {
            __mmask16 mr = tail_mask(rows);
            for (int64_t k = 0; k < kc; k++) {
                const float *src = A + (k0 + k) * lda + i0 + p;
                _mm512_mask_storeu_ps(dst + k * MR, m12, _mm512_maskz_loadu_ps(mr, src));
            }
        }
    }
}

static void pack_b(bool tb, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                   int64_t nc, float *bp) {
    for (int64_t q = 0; q < nc; q += NR) {
        float *dst = bp + q * kc;
        int64_t cols = nc - q < NR ? nc - q : NR;
        if (!tb) {
            __mmask16 m0 = tail_mask(cols), m1 = cols > 16 ? tail_mask(cols - 16) : 0;
            for (int64_t k = 0; k < kc; k++) {
                const float *src = B + (k0 + k) * ldb + j0 + q;
                _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else {
            const float *src = B + (j0 + q) * ldb + k0;
            for (int half = 0; half < 2; half++) {
                int64_t c0 = half * 16;
                for (int64_t kk = 0; kk < kc; kk += 16) {
                    int64_t nk = kc - kk < 16 ? kc - kk : 16;
                    __mmask16 km = tail_mask(nk);
                    __m512 r[16];
                    for (int c = 0; c < 16; c++)
                        r[c] = c0 + c < cols ? _mm512_maskz_loadu_ps(km, src + (c0 + c) * ldb + kk)
                                             : _mm512_setzero_ps();
                    transpose16(r);
                    for (int64_t j = 0; j < nk; j++)
                        _mm512_store_ps(dst + (kk + j) * NR + c0, r[j]);
                }
            }
        }
    }
}

static inline void store_tile(float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                              float beta, __m512 acc[MR][2]) {
    const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    __mmask16 m0 = tail_mask(nr), m1 = nr > 16 ? tail_mask(nr - 16) : 0;
    for (int64_t r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = _mm512_mul_ps(al, acc[r][0]), v1 = _mm512_mul_ps(al, acc[r][1]);
        if (beta != 0) {
            v0 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

static void ukernel(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t mr,
                    int64_t nr, float alpha, float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
        a += MR;
        b += NR;
    }
    store_tile(c, ldc, mr, nr, alpha, beta, acc);
}

static void a5_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    gemm_buf *buf = K > 0 ? get_buf() : NULL;
    if (K <= 0 || !buf) {
        /* nothing to multiply (or no memory for the buffers: fall back to scaling and a
         * plain loop, never a crash) */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                float s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (ta ? A[k * lda + i] : A[i * lda + k]) *
                         (tb ? B[j * ldb + k] : B[k * ldb + j]);
                C[i * ldc + j] = alpha * s + (beta != 0 ? beta * C[i * ldc + j] : 0);
            }
        return;
    }
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = N - jc < NC ? N - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            float bt = pc == 0 ? beta : 1.0f;
            pack_b(tb, B, ldb, pc, kc, jc, nc, buf->b);
            for (int64_t ic = 0; ic < M; ic += MC) {
                int64_t mc = M - ic < MC ? M - ic : MC;
                pack_a(ta, A, lda, ic, mc, M, pc, kc, buf->a);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        ukernel(kc, buf->a + ir * kc, buf->b + jr * kc,
                                C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, bt);
                    }
                }
            }
        }
    }
}

bool pl_vec_avx512_ops(pl_vec_ops *ops) {
    ops->isa = "avx512";
    ops->dot = a5_dot;
    ops->axpy = a5_axpy;
    ops->gather_dots = a5_gather_dots;
    ops->scatter_rows = a5_scatter_rows;
    ops->vecmat = a5_vecmat;
    ops->adam = a5_adam;
    ops->sgemm = a5_sgemm;
    return true;
}

#else

bool pl_vec_avx512_ops(pl_vec_ops *ops) {
    (void)ops;
    return false;
}

#endif
