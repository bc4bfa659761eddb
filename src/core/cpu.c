/* cpu.c -- cpuid/xgetbv feature detection, the dispatch level, core count and cache
 * sizes from sysfs. Detection runs once under pthread_once; the forced level is an
 * atomic so tests can switch it while other threads read it. */
#define _GNU_SOURCE
#include "core/cpu.h"

#include <ctype.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define PL_X86 1
#else
#define PL_X86 0
#endif

static pl_cpu_info g_info;
static pl_isa g_env_isa; /* best, or lowered by PILLAR_ISA */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_int g_forced = -1;
static size_t g_detected_l3; /* what detect_caches found, for pl_cpu_force_l3(0) */

#if PL_X86
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

/* XCR0: which register states the OS saves on context switch. Only called when
 * cpuid says OSXSAVE is set, so the instruction exists. */
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect_isa(pl_cpu_info *ci) {
    unsigned r[4];
    cpuid(0, 0, r);
    unsigned max_leaf = r[0];
    memcpy(ci->vendor, &r[1], 4);
    memcpy(ci->vendor + 4, &r[3], 4);
    memcpy(ci->vendor + 8, &r[2], 4);
    ci->vendor[12] = 0;
    if (max_leaf < 1) return;
    cpuid(1, 0, r);
    bool osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
    bool fma = (r[2] >> 12) & 1, f16c = (r[2] >> 29) & 1;
    if (!osxsave || !avx) return;
    unsigned long long xcr0 = xgetbv0();
    bool ymm_os = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    bool zmm_os = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!ymm_os) return;
    ci->fma = fma;
    ci->f16c = f16c;
    if (max_leaf < 7) return;
    cpuid(7, 0, r);
    unsigned ebx = r[1], ecx = r[2];
    ci->avx2 = (ebx >> 5) & 1;
    if (zmm_os) {
        ci->avx512f = (ebx >> 16) & 1;
        ci->avx512dq = (ebx >> 17) & 1;
        ci->avx512bw = (ebx >> 30) & 1;
        ci->avx512vl = (ebx >> 31) & 1;
        ci->avx512_vnni = ci->avx512f && ((ecx >> 11) & 1);
        ci->avx512_vbmi = ci->avx512f && ((ecx >> 1) & 1);
    }
    unsigned max_sub = r[0];
    if (max_sub >= 1) {
        cpuid(7, 1, r);
        ci->avx_vnni = (r[0] >> 4) & 1;
        ci->avx512_bf16 = ci->avx512f && ((r[0] >> 5) & 1);
    }
}
#else
static void detect_isa(pl_cpu_info *ci) {
    (void)ci;
}
#endif

/* Reads a small sysfs file into buf; returns 0 on success. */
static int read_small(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = 0;
    return got > 0 ? 0 : -1;
}

/* "32K", "1024K", "32M", "65536" -> bytes; 0 if unparsable. */
static size_t parse_size(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return 0;
    while (*end == ' ') end++;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        v <<= 10;
        break;
    case 'M':
        v <<= 20;
        break;
    case 'G':
        v <<= 30;
        break;
    default:
        break;
    }
    return (size_t)v;
}

static void detect_caches(pl_cpu_info *ci) {
    ci->l1d = 32 << 10;
    ci->l2 = 512 << 10;
    ci->l3 = 8 << 20;
    for (int i = 0; i < 16; i++) {
        char path[128], buf[64], type[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (read_small(path, buf, sizeof buf)) break;
        int level = atoi(buf);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (read_small(path, type, sizeof type)) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (read_small(path, buf, sizeof buf)) continue;
        size_t sz = parse_size(buf);
        if (sz < 4096) continue; /* nonsense: keep the default */
        if (level == 1 && strncmp(type, "Instruction", 11) != 0)
            ci->l1d = sz;
        else if (level == 2)
            ci->l2 = sz;
        else if (level == 3)
            ci->l3 = sz;
    }
}

/* Physical cores among the CPUs this process may run on: distinct (package, core)
 * pairs from sysfs topology; falls back to the logical count. */
static void detect_cores(pl_cpu_info *ci) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    ci->logical_cpus = n > 0 ? (int)n : 1;
    ci->physical_cores = ci->logical_cpus;
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    bool have_set = sched_getaffinity(0, sizeof set, &set) == 0;
    enum { MAXC = 1024 };
    static long keys[MAXC]; /* only touched inside pthread_once */
    int nkeys = 0;
    for (int cpu = 0; cpu < MAXC && cpu < CPU_SETSIZE; cpu++) {
        if (have_set && !CPU_ISSET(cpu, &set)) continue;
        char path[128], buf[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        if (read_small(path, buf, sizeof buf)) continue;
        long core = atol(buf);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 cpu);
        long pkg = read_small(path, buf, sizeof buf) ? 0 : atol(buf);
        long key = pkg * 65536 + core;
        bool seen = false;
        for (int j = 0; j < nkeys; j++) seen |= keys[j] == key;
        if (!seen) keys[nkeys++] = key;
    }
    if (nkeys > 0)
        ci->physical_cores = nkeys;
    else if (have_set && CPU_COUNT(&set) > 0)
        ci->physical_cores = CPU_COUNT(&set);
#endif
    if (ci->physical_cores < 1) ci->physical_cores = 1;
}

static void init_once(void) {
    pl_cpu_info *ci = &g_info;
    memset(ci, 0, sizeof *ci);
    detect_isa(ci);
    ci->best = PL_ISA_REF;
    if (ci->avx2 && ci->fma && ci->f16c) ci->best = PL_ISA_AVX2;
    if (ci->best == PL_ISA_AVX2 && ci->avx512f && ci->avx512bw && ci->avx512vl && ci->avx512dq)
        ci->best = PL_ISA_AVX512;
    detect_caches(ci);
    g_detected_l3 = ci->l3;
    detect_cores(ci);
    g_env_isa = ci->best;
    const char *env = getenv("PILLAR_ISA");
    if (env && *env) {
        int want = pl_isa_parse(env);
        if (want >= 0 && want <= (int)ci->best) g_env_isa = (pl_isa)want;
    }
}

const pl_cpu_info *pl_cpu(void) {
    pthread_once(&g_once, init_once);
    return &g_info;
}

pl_isa pl_cpu_isa(void) {
    pthread_once(&g_once, init_once);
    int f = atomic_load_explicit(&g_forced, memory_order_relaxed);
    return f >= 0 ? (pl_isa)f : g_env_isa;
}

const char *pl_isa_name(pl_isa isa) {
    switch (isa) {
    case PL_ISA_REF:
        return "ref";
    case PL_ISA_AVX2:
        return "avx2";
    case PL_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

int pl_isa_parse(const char *s) {
    if (!s) return -1;
    if (!strcasecmp(s, "ref")) return PL_ISA_REF;
    if (!strcasecmp(s, "avx2")) return PL_ISA_AVX2;
    if (!strcasecmp(s, "avx512")) return PL_ISA_AVX512;
    return -1;
}

pl_isa pl_cpu_force_isa(int isa) {
    const pl_cpu_info *ci = pl_cpu();
    if (isa < 0) {
        atomic_store(&g_forced, -1);
    } else {
        if (isa > (int)ci->best) isa = (int)ci->best;
        atomic_store(&g_forced, isa);
    }
    return pl_cpu_isa();
}

size_t pl_cpu_force_l3(size_t bytes) {
    pl_cpu();
    g_info.l3 = bytes ? bytes : g_detected_l3;
    return g_info.l3;
}

int pl_cpu_default_threads(void) {
    return pl_cpu()->physical_cores;
}
