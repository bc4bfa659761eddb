/* rng.h -- small deterministic random numbers: splitmix64 as a stream and as a
 * counter-based hash (the same (seed, a, b) always gives the same value, which lets
 * hash functions define their random entries without storing them). */
#ifndef PL_LSH_RNG_H
#define PL_LSH_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t pl_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t pl_rng_next(uint64_t *s) {
    return pl_mix64(*s += 0x9e3779b97f4a7c15ull);
}

/* Uniform in [0, n) (n > 0), without modulo bias worth caring about for n < 2^32. */
static inline uint64_t pl_rng_below(uint64_t *s, uint64_t n) {
    return (uint64_t)(((unsigned __int128)pl_rng_next(s) * n) >> 64);
}

/* Uniform float in [0, 1). */
static inline float pl_rng_float(uint64_t *s) {
    return (float)(pl_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}

/* Hash of (seed, a, b). */
static inline uint64_t pl_hash3(uint64_t seed, uint64_t a, uint64_t b) {
    return pl_mix64(pl_mix64(seed ^ pl_mix64(a + 0x9e3779b97f4a7c15ull)) + b);
}

/* A standard normal value determined by a 64-bit hash (Box-Muller). */
static inline float pl_gauss_from(uint64_t r) {
    double u1 = ((double)(r >> 40) + 0.5) * (1.0 / 16777216.0);
    double u2 = (double)(r & 0xffffff) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* 32-bit mixing for folding table keys. */
static inline uint32_t pl_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

#endif
