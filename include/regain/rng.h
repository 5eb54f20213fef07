/* regain — counter-based random numbers keyed by what they are for.
 *
 * Every random draw in regain comes from a stream keyed by (seed, a, b), e.g.
 * (seed, epoch, sample) for augmentation or (seed, step, node) for dropout,
 * so results never depend on the number of threads or on the order in which
 * work is scheduled.
 *
 *     rg_rng r = rg_rng_keyed(seed, epoch, sample_index);
 *     float u = rg_rng_uniform(&r);     // [0, 1)
 */
#ifndef REGAIN_RNG_H
#define REGAIN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* xoshiro256** state */
} rg_rng;

/* A stream determined by (seed, a, b) alone. Different keys give independent
 * streams (the key is mixed by splitmix64 before seeding xoshiro256**). */
rg_rng rg_rng_keyed(uint64_t seed, uint64_t a, uint64_t b);

uint64_t rg_rng_u64(rg_rng *r);
/* Uniform in [0, 1) with 24 bits of precision. */
float rg_rng_uniform(rg_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t rg_rng_below(rg_rng *r, uint32_t n);
/* Standard normal (Box–Muller, double internally). */
float rg_rng_normal(rg_rng *r);
/* Fisher–Yates permutation of 0..n-1 into perm. */
void rg_rng_permutation(rg_rng *r, uint32_t *perm, uint32_t n);
/* Gamma(shape, 1), shape > 0, by Marsaglia and Tsang (2000): a normal and a
 * uniform per try (shape < 1 via Gamma(shape + 1) * U^(1/shape)). */
double rg_rng_gamma(rg_rng *r, double shape);
/* Beta(a, b), a, b > 0, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
double rg_rng_beta(rg_rng *r, double a, double b);

#endif
