/* qpool.c -- 2-D max pooling of 8-bit planes (MaxPool between a DequantizeLinear and a
 * QuantizeLinear of the same parameters runs on the 8-bit values: exact). Separable:
 * a row pass (max over the kernel width, strided) into a scratch plane, then a column
 * pass over kernel-height rows; the inner loops are contiguous so compilers vectorize
 * them. Padding taps are ignored (MaxPool pads with -inf). */
#include <string.h>

#include "kernels/qgemm/qgemm.h"

void pl_q8_maxpool2d(const uint8_t *x, int64_t H, int64_t W, uint8_t *y, int64_t OH, int64_t OW,
                     const int64_t k[2], const int64_t s[2], const int64_t pad[2], uint8_t flip,
                     uint8_t *tmp) {
    /* row pass: tmp[h][ow] = max over kw of x[h][ow * sw - pw + j] (valid j); the
     * windows wholly inside the row [a, b) go to the AVX-512 / AVX2 row kernel */
    int64_t a = 0, b = 0;
    const bool v512 = pl_cpu_isa() >= PL_ISA_AVX512 && pl_cpu()->avx512bw;
    if ((s[1] == 1 || s[1] == 2) && (v512 || pl_cpu_isa() >= PL_ISA_AVX2)) {
        a = (pad[1] + s[1] - 1) / s[1];
        b = W - k[1] + pad[1] < 0 ? 0 : (W - k[1] + pad[1]) / s[1] + 1;
        if (b > OW) b = OW;
        if (a > b) a = b = 0;
    }
    for (int64_t h = 0; h < H; h++) {
        const uint8_t *xr = x + h * W;
        uint8_t *tr = tmp + h * OW;
        if (b > a && v512)
            pl_q8_maxrow_avx512(xr + a * s[1] - pad[1], b - a, k[1], s[1], flip, tr + a);
        else if (b > a)
            pl_q8_maxrow_avx2(xr + a * s[1] - pad[1], b - a, k[1], s[1], flip, tr + a);
        for (int64_t ow = 0; ow < OW; ow++) {
            if (ow == a && b > a) ow = b;
            if (ow >= OW) break;
            int64_t w0 = ow * s[1] - pad[1], w1 = w0 + k[1];
            if (w0 < 0) w0 = 0;
            if (w1 > W) w1 = W;
            uint8_t m = 0;
            for (int64_t w = w0; w < w1; w++) {
                uint8_t v = xr[w] ^ flip;
                m = v > m ? v : m;
            }
            tr[ow] = m;
        }
    }
    /* column pass */
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = oh * s[0] - pad[0], h1 = h0 + k[0];
        if (h0 < 0) h0 = 0;
        if (h1 > H) h1 = H;
        uint8_t *yr = y + oh * OW;
        if (h0 >= h1) {
            memset(yr, flip, (size_t)OW); /* an all-padding window: the type's minimum */
            continue;
        }
        memcpy(yr, tmp + h0 * OW, (size_t)OW);
        for (int64_t h = h0 + 1; h < h1; h++) {
            const uint8_t *tr = tmp + h * OW;
            for (int64_t ow = 0; ow < OW; ow++) yr[ow] = tr[ow] > yr[ow] ? tr[ow] : yr[ow];
        }
        for (int64_t ow = 0; ow < OW; ow++) yr[ow] ^= flip;
    }
}
