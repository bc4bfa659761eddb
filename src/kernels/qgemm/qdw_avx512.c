/* qdw_avx512.c -- the depthwise INT8 kernel (qdw_rows.inc) compiled for AVX-512. */
#include <string.h>

#include "kernels/qgemm/qgemm.h"

#define QDW_FN pl_q8_dw_raw_avx512
#include "kernels/qgemm/qdw_rows.inc"
