/* fast.c -- dispatch of the fast float32 softmax (softmax.h) and its plain-C level,
 * which uses the same exp polynomial as the AVX kernels so every level rounds alike. */
#include <math.h>

#include "core/cpu.h"
#include "kernels/softmax/softmax.h"
#include "kernels/softmax/softmax_exp.h"

void pl_softmax_rows_f32_c(const float *x, float *y, int64_t rows, int64_t n, bool log_mode) {
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        if (n <= 0) continue;
        float mx = x[0];
        for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
        float sum = 0.0f;
        if (log_mode) {
            for (int64_t i = 0; i < n; i++) sum += pl_softmax_expf(x[i] - mx);
            float ls = logf(sum); /* (x - max) - log(sum): exact first step */
            for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mx) - ls;
        } else {
            for (int64_t i = 0; i < n; i++) {
                float e = pl_softmax_expf(x[i] - mx);
                y[i] = e;
                sum += e;
            }
            float inv = 1.0f / sum;
            for (int64_t i = 0; i < n; i++) y[i] *= inv;
        }
    }
}

void pl_softmax_rows_f32(const float *x, float *y, int64_t rows, int64_t n, bool log_mode) {
    pl_isa isa = pl_cpu_isa();
#if defined(__x86_64__)
    if (isa >= PL_ISA_AVX512) {
        pl_softmax_rows_f32_avx512(x, y, rows, n, log_mode);
        return;
    }
    if (isa >= PL_ISA_AVX2) {
        pl_softmax_rows_f32_avx2(x, y, rows, n, log_mode);
        return;
    }
#endif
    (void)isa;
    pl_softmax_rows_f32_c(x, y, rows, n, log_mode);
}

void pl_exp_f32(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = pl_softmax_expf(x[i]);
}
