/* cpu.h -- what this CPU can do: instruction-set extensions (cpuid + xgetbv, read once),
 * the kernel level to dispatch to, core count and cache sizes.
 *
 * The level is the best the CPU and OS support, unless the environment variable
 * PILLAR_ISA=ref|avx2|avx512 asks for a lower one (a level above what the machine has,
 * or an unknown value, is ignored). Everything here is thread-safe; the detection runs
 * once, on first use. */
#ifndef PL_CORE_CPU_H
#define PL_CORE_CPU_H

#include <stdbool.h>
#include <stddef.h>

/* Kernel levels, ordered: a higher level implies every lower one. */
typedef enum pl_isa {
    PL_ISA_REF = 0,   /* plain C, any x86-64 (or other) CPU */
    PL_ISA_AVX2 = 1,  /* AVX2 + FMA + F16C */
    PL_ISA_AVX512 = 2 /* AVX-512 F/BW/VL/DQ (+ AVX2 level) */
} pl_isa;

#define PL_ISA_COUNT 3

typedef struct pl_cpu_info {
    /* Extensions usable by user code (CPU bit and OS state saving both present). */
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq;
    bool avx512_vnni, avx512_bf16, avx_vnni, avx512_vbmi;
    pl_isa best;        /* the best level the machine supports */
    int logical_cpus;   /* online logical CPUs */
    int physical_cores; /* distinct cores among them (SMT siblings counted once) */
    size_t l1d, l2, l3; /* bytes; l1d and l2 per core, l3 as reported (shared) */
    char vendor[13];    /* "GenuineIntel", "AuthenticAMD", "" when unknown */
} pl_cpu_info;

/* The detected facts. Borrowed, static, never NULL. */
const pl_cpu_info *pl_cpu(void);

/* The level kernels should dispatch to now: the forced level (pl_cpu_force_isa) if
 * any, else PILLAR_ISA if set and supported, else the best. */
pl_isa pl_cpu_isa(void);

/* "ref", "avx2", "avx512"; "unknown" otherwise. Borrowed, static. */
const char *pl_isa_name(pl_isa isa);

/* Parses "ref" / "avx2" / "avx512" (case-insensitive); returns -1 if unknown. */
int pl_isa_parse(const char *s);

/* For tests and benchmarks: makes pl_cpu_isa() return `isa` (clamped to the best the
 * machine has) in every thread, until called again with -1 to go back to the default.
 * Returns the level now in force. */
pl_isa pl_cpu_force_isa(int isa);

/* For tests: makes pl_cpu()->l3 read `bytes` (0: the detected size again), so size rules
 * tied to L3 (streamed conv outputs, the columns planner) can be exercised with small
 * tensors on machines with a large L3. Not thread-safe: call it while no kernel is
 * planning. Returns the size now in force. */
size_t pl_cpu_force_l3(size_t bytes);

/* Default number of threads: the physical cores this process may run on (>= 1). */
int pl_cpu_default_threads(void);

#endif
