/* test_transformer_kernels.c -- the fast softmax and layer-norm row kernels against
 * their double-precision references, on every kernel level this CPU has (forced with
 * pl_cpu_force_isa): row lengths at, below, above and between the vector widths,
 * in-place calls, masked (-inf) entries, large offsets, constant rows, and the scalar
 * exp polynomial against expf including its special values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/norm/norm.h"
#include "kernels/softmax/softmax.h"

static int failures, checks;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            if (failures < 40) {                                                                   \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
                printf(__VA_ARGS__);                                                               \
                printf("\n");                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x853c49e6748fea9bull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 20) % 2000001) / 1000000.0f - 1.0f;
}

static const int sizes[] = {1,  2,  3,  7,  8,  9,   15,  16,  17,  31,  32,
                            33, 47, 63, 64, 65, 127, 128, 129, 768, 1000};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* ------------------------------------------------------------------ exp */

static void test_exp(void) {
    float x[64], y[64];
    int n = 0;
    for (float v = -100.0f; v <= 100.0f && n < 60; v += 3.37f) x[n++] = v;
    x[n++] = -INFINITY;
    x[n++] = INFINITY;
    x[n++] = NAN;
    x[n++] = -0.0f;
    pl_exp_f32(x, y, n);
    for (int i = 0; i < n; i++) {
        double want = exp((double)x[i]);
        if (isnan(x[i]))
            CHECK(isnan(y[i]), "exp(nan) = %g", y[i]);
        else if (x[i] < -87.34f)
            CHECK(y[i] == 0.0f, "exp(%g) = %g, expected 0", x[i], y[i]);
        else if (x[i] > 88.38f)
            CHECK(isinf(y[i]) && y[i] > 0, "exp(%g) = %g, expected inf", x[i], y[i]);
        else
            CHECK(fabs(y[i] - want) <= 3e-7 * want, "exp(%g) = %.9g, expected %.9g", x[i], y[i],
                  want);
    }
}

/* ------------------------------------------------------------------ softmax */

/* One row set: fills x by `kind`, runs the fast kernel (in place or not) and the
 * reference, compares. */
static void softmax_case(int rows, int n, int kind, bool log_mode, bool in_place) {
    size_t len = (size_t)rows * (size_t)n;
    float *x = malloc(len * sizeof(float)), *y = malloc(len * sizeof(float)),
          *r = malloc(len * sizeof(float));
    for (size_t i = 0; i < len; i++) {
        switch (kind) {
        case 0:
            x[i] = frand() * 8;
            break; /* ordinary */
        case 1:
            x[i] = frand() * 40;
            break; /* wide: tiny exps */
        case 2:
            x[i] = 1e4f + frand();
            break; /* large offset */
        case 3:
            x[i] = 0.25f;
            break; /* all equal */
        default:
            x[i] = (i % 3 == 1) ? -INFINITY : frand();
            break; /* masked */
        }
    }
    if (kind == 4)
        for (int rr = 0; rr < rows; rr++) x[(size_t)rr * n] = frand(); /* one unmasked */
    (log_mode ? pl_ref_log_softmax_f32 : pl_ref_softmax_f32)(x, r, rows, n, 1);
    if (in_place) {
        memcpy(y, x, len * sizeof(float));
        pl_softmax_rows_f32(y, y, rows, n, log_mode);
    } else {
        pl_softmax_rows_f32(x, y, rows, n, log_mode);
    }
    /* error relative to the value (softmax: plus a tiny absolute floor; log-softmax:
     * relative to 1 + |value|); masked entries must match exactly (0 or -inf) */
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < len; i++) {
        double d;
        if (isinf(r[i]) || r[i] == 0)
            d = y[i] == r[i] ? 0 : INFINITY;
        else
            d = fabs((double)y[i] - r[i]) / (log_mode ? 1 + fabs(r[i]) : fabs(r[i]) + 1e-4);
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    CHECK(worst <= 5e-6, "%s softmax%s rows %d n %d kind %d: [%zu] %.9g vs %.9g (%s)",
          log_mode ? "log" : "", in_place ? " in place" : "", rows, n, kind, at, y[at], r[at],
          pl_isa_name(pl_cpu_isa()));
    free(x);
    free(y);
    free(r);
}

static void test_softmax(void) {
    for (int s = 0; s < NSIZES; s++)
        for (int kind = 0; kind < 5; kind++)
            for (int lg = 0; lg < 2; lg++) {
                softmax_case(1 + s % 3, sizes[s], kind, lg, false);
                softmax_case(2, sizes[s], kind, lg, true);
            }
    /* n = 0 and rows = 0 are no-ops */
    float z = 1.0f;
    pl_softmax_rows_f32(&z, &z, 1, 0, false);
    pl_softmax_rows_f32(&z, &z, 0, 5, false);
    CHECK(z == 1.0f, "empty softmax wrote");
}

/* ------------------------------------------------------------------ layer norm */

static void layernorm_case(int rows, int cols, int kind, bool with_bias, float eps, bool in_place) {
    size_t len = (size_t)rows * (size_t)cols;
    float *x = malloc(len * sizeof(float)), *y = malloc(len * sizeof(float)),
          *r = malloc(len * sizeof(float));
    float *sc = malloc((size_t)cols * sizeof(float)), *bi = malloc((size_t)cols * sizeof(float));
    float m[8], inv[8], rm[8], rinv[8];
    for (size_t i = 0; i < len; i++)
        x[i] = kind == 1 ? 1000.0f + frand() : kind == 2 ? 3.5f : frand() * 4;
    for (int j = 0; j < cols; j++) {
        sc[j] = 0.5f + frand();
        bi[j] = frand();
    }
    pl_f32_layernorm_ref(rows, cols, x, sc, with_bias ? bi : NULL, eps, r, rm, rinv);
    if (in_place) {
        memcpy(y, x, len * sizeof(float));
        pl_f32_layernorm_rows(rows, cols, y, sc, with_bias ? bi : NULL, eps, y, m, inv);
    } else {
        pl_f32_layernorm_rows(rows, cols, x, sc, with_bias ? bi : NULL, eps, y, m, inv);
    }
    /* around 1000 a float mean is off by up to 2 ulp(1000) = 1.3e-4: the normalised
     * value moves by that over the row's standard deviation */
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < len; i++) {
        double tol = 2e-5 * (1 + fabs(r[i]));
        if (kind == 1) tol += 1.3e-4 * rinv[i / (size_t)cols] * fabs(sc[i % (size_t)cols]);
        double d = fabs((double)y[i] - r[i]) / tol;
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    CHECK(worst <= 1, "layernorm rows %d cols %d kind %d bias %d eps %g%s: [%zu] %.9g vs %.9g (%s)",
          rows, cols, kind, with_bias, eps, in_place ? " in place" : "", at, y[at], r[at],
          pl_isa_name(pl_cpu_isa()));
    for (int k = 0; k < rows; k++) {
        CHECK(fabs(m[k] - rm[k]) <= 1e-5 * (1 + fabs(rm[k])), "layernorm mean %g vs %g", m[k],
              rm[k]);
        CHECK(fabs(inv[k] - rinv[k]) <= (kind == 1 ? 1e-3 : 1e-4) * fabs(rinv[k]),
              "layernorm inv_std %g vs %g (cols %d kind %d)", inv[k], rinv[k], cols, kind);
    }
    free(x);
    free(y);
    free(r);
    free(sc);
    free(bi);
}

static void test_layernorm(void) {
    for (int s = 0; s < NSIZES; s++)
        for (int kind = 0; kind < 3; kind++) {
            layernorm_case(1 + s % 3, sizes[s], kind, true, 1e-5f, false);
            layernorm_case(2, sizes[s], kind, false, 1e-12f, true);
        }
    float z = 1.0f;
    pl_f32_layernorm_rows(0, 4, &z, &z, NULL, 1e-5f, &z, NULL, NULL);
    CHECK(z == 1.0f, "empty layernorm wrote");
}

int main(void) {
    test_exp();
    for (int isa = 0; isa <= (int)pl_cpu()->best; isa++) {
        pl_cpu_force_isa(isa);
        test_softmax();
        test_layernorm();
    }
    pl_cpu_force_isa(-1);
    printf("test_transformer_kernels: %d checks, %d failures (levels up to %s)\n", checks, failures,
           pl_isa_name(pl_cpu()->best));
    return failures ? 1 : 0;
}
