/* Deterministic random numbers for the unit tests (splitmix64): tests never depend on the
 * platform's rand(). Header-only; each test executable gets its own state. */
#ifndef TEST_RNG_H
#define TEST_RNG_H

#include <math.h>
#include <stdint.h>

static uint64_t rng_state;

static inline void rng_seed(uint64_t s) {
    rng_state = s;
}

/* Uniform in (0, 1). */
static inline double urand(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static inline double gauss(void) {
    double u = urand();
    double v = urand();
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

#endif
