/* Counter-based RNG: splitmix64 mixes the key, xoshiro256** generates. */
#include "regain/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

rg_rng rg_rng_keyed(uint64_t seed, uint64_t a, uint64_t b)
{
    /* Chain the key components through splitmix so (1,2) != (2,1). */
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0xD1B54A32D192ED03ull);
    h = splitmix64(&x);
    x = h ^ (b * 0x8CB92BA72F3D8DD7ull);
    rg_rng r;
    for (int i = 0; i < 4; i++) r.s[i] = splitmix64(&x);
    return r;
}

uint64_t rg_rng_u64(rg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rg_rng_uniform(rg_rng *r) { return (float)(rg_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint32_t rg_rng_below(rg_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection. */
    uint64_t m = (uint64_t)(uint32_t)(rg_rng_u64(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)(uint32_t)(rg_rng_u64(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float rg_rng_normal(rg_rng *r)
{
    double u1 = ((double)(rg_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(rg_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rg_rng_permutation(rg_rng *r, uint32_t *perm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rg_rng_below(r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* Uniform in (0, 1], 53 bits: never 0, so its logarithm is finite. */
static double uniform_open0(rg_rng *r) { return ((double)(rg_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0); }

static double normal_d(rg_rng *r)
{
    double u1 = uniform_open0(r);
    double u2 = (double)(rg_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double rg_rng_gamma(rg_rng *r, double shape)
{
    if (!(shape > 0.0)) return 0.0;
    if (shape < 1.0) {
        /* Gamma(a) = Gamma(a + 1) * U^(1/a) */
        double g = rg_rng_gamma(r, shape + 1.0);
        return g * pow(uniform_open0(r), 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal_d(r), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = uniform_open0(r);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

double rg_rng_beta(rg_rng *r, double a, double b)
{
    double x = rg_rng_gamma(r, a), y = rg_rng_gamma(r, b);
    /* Both can underflow to 0 for tiny shapes: the limit is a coin with
     * P(1) = a / (a + b). */
    if (!(x + y > 0.0)) return uniform_open0(r) <= a / (a + b) ? 1.0 : 0.0;
    return x / (x + y);
}
