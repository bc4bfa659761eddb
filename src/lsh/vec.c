/* vec.c -- portable versions of the dense primitives in vec.h and the run-time choice
 * between them and the AVX-512 versions. */
#include <math.h>
#include <pthread.h>

#include "core/cpu.h"
#include "kernels/gemm/gemm.h"
#include "lsh/vec.h"

static float ref_dot(const float *a, const float *b, int64_t n) {
    /* four partial sums: keeps the rounding close to the SIMD version */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void ref_axpy(float a, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void ref_gather_dots(const float *W, int64_t ldw, const float *bias, const uint32_t *ids,
                            int64_t n, const float *h, int64_t d, float *out) {
    for (int64_t k = 0; k < n; k++) {
        float s = ref_dot(W + (int64_t)ids[k] * ldw, h, d);
        out[k] = bias ? s + bias[ids[k]] : s;
    }
}

static void ref_scatter_rows(const float *W, int64_t ldw, float *G, int64_t ldg,
                             const uint32_t *ids, const float *g, int64_t n, const float *h,
                             int64_t d, float *dh) {
    for (int64_t k = 0; k < n; k++) {
        if (g[k] == 0) continue;
        if (dh) ref_axpy(g[k], W + (int64_t)ids[k] * ldw, dh, d);
        if (G) ref_axpy(g[k], h, G + (int64_t)ids[k] * ldg, d);
    }
}

static void ref_vecmat(const float *x, int64_t m, const float *A, int64_t lda, int64_t n,
                       float *y) {
    for (int64_t j = 0; j < n; j++) y[j] = 0;
    for (int64_t i = 0; i < m; i++)
        if (x[i] != 0) ref_axpy(x[i], A + i * lda, y, n);
}

static void ref_adam(float *w, float *m, float *v, float *g, int64_t n, const pl_adam_step *s,
                     bool zero_g) {
    const float b1 = s->beta1, b2 = s->beta2, c1 = 1 - s->beta1, c2 = 1 - s->beta2;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= s->lr_t * mi / (sqrtf(vi) + s->eps);
        if (zero_g) g[i] = 0;
    }
}

static const pl_vec_ops ref_ops = {
    .isa = "ref",
    .dot = ref_dot,
    .axpy = ref_axpy,
    .gather_dots = ref_gather_dots,
    .scatter_rows = ref_scatter_rows,
    .vecmat = ref_vecmat,
    .adam = ref_adam,
    .sgemm = pl_ref_sgemm,
};

static pl_vec_ops avx512_ops;
static bool have_avx512;
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void init_ops(void) {
    avx512_ops = ref_ops;
    have_avx512 = pl_vec_avx512_ops(&avx512_ops);
}

/* Chosen at every call from pl_cpu_isa() (PILLAR_ISA=ref|avx2|avx512, or a test's
 * pl_cpu_force_isa): an atomic load; these kernels have no AVX2 level. */
const pl_vec_ops *pl_vec(void) {
    pthread_once(&best_once, init_ops);
    return have_avx512 && pl_cpu_isa() >= PL_ISA_AVX512 ? &avx512_ops : &ref_ops;
}

const pl_vec_ops *pl_vec_ref(void) {
    return &ref_ops;
}
