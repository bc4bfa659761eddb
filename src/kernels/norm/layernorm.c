/* layernorm.c -- dispatch of the fast float32 layer norm (norm.h) and its plain-C
 * level: the same two-pass float arithmetic as the vector kernels. */
#include <math.h>

#include "core/cpu.h"
#include "kernels/norm/norm.h"

void pl_f32_layernorm_rows_c(int64_t rows, int64_t cols, const float *x, const float *scale,
                             const float *bias, float eps, float *y, float *mean, float *inv_std) {
    for (int64_t r = 0; r < rows; r++, x += cols, y += cols) {
        float s[8] = {0};
        for (int64_t j = 0; j < cols; j++) s[j & 7] += x[j];
        float m = cols > 0 ? ((s[0] + s[1]) + (s[2] + s[3]) + ((s[4] + s[5]) + (s[6] + s[7]))) /
                                 (float)cols
                           : 0.0f;
        /* second pass around the first mean; its residual sum corrects both */
        float q[8] = {0}, e[8] = {0};
        for (int64_t j = 0; j < cols; j++) {
            float d = x[j] - m;
            e[j & 7] += d;
            q[j & 7] += d * d;
        }
        float var = 0.0f;
        if (cols > 0) {
            float de =
                ((e[0] + e[1]) + (e[2] + e[3]) + ((e[4] + e[5]) + (e[6] + e[7]))) / (float)cols;
            var = ((q[0] + q[1]) + (q[2] + q[3]) + ((q[4] + q[5]) + (q[6] + q[7]))) / (float)cols -
                  de * de;
            var = var > 0.0f ? var : 0.0f;
            m += de;
        }
        float inv = 1.0f / sqrtf(var + eps);
        for (int64_t j = 0; j < cols; j++) {
            float v = (x[j] - m) * inv * scale[j];
            y[j] = bias ? v + bias[j] : v;
        }
        if (mean) mean[r] = m;
        if (inv_std) inv_std[r] = inv;
    }
}

void pl_f32_layernorm_rows(int64_t rows, int64_t cols, const float *x, const float *scale,
                           const float *bias, float eps, float *y, float *mean, float *inv_std) {
    pl_isa isa = pl_cpu_isa();
#if defined(__x86_64__)
    if (isa >= PL_ISA_AVX512) {
        pl_f32_layernorm_rows_avx512(rows, cols, x, scale, bias, eps, y, mean, inv_std);
        return;
    }
    if (isa >= PL_ISA_AVX2) {
        pl_f32_layernorm_rows_avx2(rows, cols, x, scale, bias, eps, y, mean, inv_std);
        return;
    }
#endif
    (void)isa;
    pl_f32_layernorm_rows_c(rows, cols, x, scale, bias, eps, y, mean, inv_std);
}
