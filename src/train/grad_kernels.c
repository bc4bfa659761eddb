/* grad_kernels.c -- the plain build of grad_kernels.inc and the dispatch. */
#include "train/grad_kernels.h"

#include <string.h>

#include "core/cpu.h"

#define K(name) name##_generic
#include "train/grad_kernels.inc"
#undef K

static const tr_kernels generic = {
    im2col_generic, col2im_generic,       relu_fwd_generic,  relu_bwd_generic, maxpool2x2_generic,
    add_generic,    shifted_sums_generic, grad_sums_generic, axpb_generic,     bn_dx_generic};

const tr_kernels *tr_kern(void) {
    static const tr_kernels *chosen;
    const tr_kernels *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!k) {
        k = pl_cpu_isa() >= PL_ISA_AVX512 && tr_kernels_avx512() ? tr_kernels_avx512() : &generic;
        __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    }
    return k;
}
