/* softmax_exp.h -- the scalar exp polynomial shared by the softmax kernels (the vector
 * versions in softmax_avx2.c / softmax_avx512.c evaluate the same steps): Cody-Waite
 * reduction x = k ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r (the
 * Cephes expf coefficients), scaled by 2^k. Inputs below -87.3 give exactly 0 (they
 * would be denormal), above 88.37 give +inf (k stays <= 127), NaN stays NaN. */
#ifndef PL_KERNELS_SOFTMAX_EXP_H
#define PL_KERNELS_SOFTMAX_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define PL_EXP_LO (-87.33654f)
#define PL_EXP_HI (88.3762626647949f)
#define PL_EXP_LOG2E 1.44269504088896341f
#define PL_EXP_LN2_HI 0.693359375f
#define PL_EXP_LN2_LO (-2.12194440e-4f)
#define PL_EXP_P0 1.9875691500e-4f
#define PL_EXP_P1 1.3981999507e-3f
#define PL_EXP_P2 8.3334519073e-3f
#define PL_EXP_P3 4.1665795894e-2f
#define PL_EXP_P4 1.6666665459e-1f
#define PL_EXP_P5 5.0000001201e-1f

static inline float pl_softmax_expf(float x) {
    if (!(x >= PL_EXP_LO)) return x != x ? x : 0.0f; /* NaN stays, tiny -> 0 */
    if (x > PL_EXP_HI) return INFINITY;
    float k = nearbyintf(x * PL_EXP_LOG2E);
    float r = x - k * PL_EXP_LN2_HI;
    r = r - k * PL_EXP_LN2_LO;
    float p = PL_EXP_P0;
    p = p * r + PL_EXP_P1;
    p = p * r + PL_EXP_P2;
    p = p * r + PL_EXP_P3;
    p = p * r + PL_EXP_P4;
    p = p * r + PL_EXP_P5;
    p = p * r * r + r + 1.0f;
    return ldexpf(p, (int)k);
}

#endif
