/* check.h -- what the unit tests share: CHECK, which counts checks and failures and
 * prints the first 30 failures with their file and line, and a seeded xorshift
 * generator (define CHECK_SEED before including for another sequence). Each test's
 * main() ends with check_report("name"). */
#ifndef PL_TEST_CHECK_H
#define PL_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int failures, cases;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        cases++;                                                                                   \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            if (failures < 30) {                                                                   \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
                printf(__VA_ARGS__);                                                               \
                printf("\n");                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#ifndef CHECK_SEED
#define CHECK_SEED 0x9e3779b97f4a7c15ull
#endif
static uint64_t rng_state = CHECK_SEED;
static inline uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

#endif
