/* Unit tests for analytics/quantile: exactness while the samples are kept, P² accuracy bounds
 * after. `test_quantile --table` prints the accuracy table documented in quantile.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantile.h"

/* ---- deterministic samples ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1), never 0 (log-safe). */
static double rng_unit(rng *r) {
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

static double rng_normal(rng *r) {
    double u = rng_unit(r);
    double v = rng_unit(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

typedef enum dist { D_NORMAL, D_UNIFORM, D_EXP, D_BIMODAL, D_COUNT } dist;
static const char *dist_name[D_COUNT] = {"normal", "uniform", "exp", "bimodal"};

static double draw(rng *r, dist d) {
    switch (d) {
    case D_NORMAL:
        return 20.0 + 5.0 * rng_normal(r);
    case D_UNIFORM:
        return 100.0 * rng_unit(r);
    case D_EXP:
        return -log(rng_unit(r));
    case D_BIMODAL:
    default:
        if (rng_unit(r) < 0.7) {
            return 10.0 + rng_normal(r);
        }
        return 30.0 + 2.0 * rng_normal(r);
    }
}

#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fractional rank of v in the sorted sample, inverse of the type-7 interpolation, divided by
 * n - 1: the quantile level at which v sits. */
static double level_of(const double *s, size_t n, double v) {
    if (n < 2 || v <= s[0]) {
        return 0.0;
    }
    if (v >= s[n - 1]) {
        return 1.0;
    }
    size_t lo = 0;
    size_t hi = n - 1; /* s[lo] < v <= s[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] < v) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    double r = (double)lo + (v - s[lo]) / (s[hi] - s[lo]);
    return r / (double)(n - 1);
}

typedef struct err_stats {
    double rank_mean[2], rank_max[2], rel_mean[2], rel_max[2];
} err_stats;

/* Runs `trials` estimators on fresh samples of size n and collects the errors of p50 and p95
 * against the exact quantiles. */
static void measure(dist d, size_t n, int trials, uint64_t seed, err_stats *out) {
    double *x = malloc(n * sizeof(*x));
    assert_non_null(x);
    rng r = {seed};
    memset(out, 0, sizeof(*out));
    const double ps[2] = {0.5, 0.95};
    for (int t = 0; t < trials; t++) {
        an_quant e;
        an_quant_init(&e);
        for (size_t i = 0; i < n; i++) {
            x[i] = draw(&r, d);
            assert_int_equal(an_quant_add(&e, x[i]), 0);
        }
        qsort(x, n, sizeof(*x), cmp_double);
        double est[2] = {an_quant_p50(&e), an_quant_p95(&e)};
        for (int k = 0; k < 2; k++) {
            double exact = an_quantile_sorted(x, n, ps[k]);
            double rank = fabs(level_of(x, n, est[k]) - ps[k]);
            double rel = fabs(est[k] - exact) / fabs(exact);
            out->rank_mean[k] += rank / trials;
            out->rel_mean[k] += rel / trials;
            out->rank_max[k] = fmax(out->rank_max[k], rank);
            out->rel_max[k] = fmax(out->rel_max[k], rel);
        }
        assert_true(an_quant_min(&e) == x[0]);
        assert_true(an_quant_max(&e) == x[n - 1]);
    }
    free(x);
}

static const size_t table_n[4] = {10, 100, 1000, 100000};
static const int table_trials[4] = {2000, 2000, 200, 20};

static void print_table(void) {
    printf(" *   dist     n       p50 rank err     p50 rel err      "
           "p95 rank err     p95 rel err\n");
    for (int d = 0; d < D_COUNT; d++) {
        for (int k = 0; k < 4; k++) {
            err_stats s;
            measure((dist)d, table_n[k], table_trials[k], 1000 + (uint64_t)(d * 10 + k), &s);
            printf(" *   %-8s %-7zu %.4f [%.4f]  %.4f [%.4f]  %.4f [%.4f]  %.4f [%.4f]\n",
                   dist_name[d], table_n[k], s.rank_mean[0], s.rank_max[0], s.rel_mean[0],
                   s.rel_max[0], s.rank_mean[1], s.rank_max[1], s.rel_mean[1], s.rel_max[1]);
        }
    }
}

/* ---- exact phase ---- */

static void test_empty(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    assert_int_equal(an_quant_count(&e), 0);
    assert_true(isnan(an_quant_p50(&e)));
    assert_true(isnan(an_quant_p95(&e)));
    assert_true(isnan(an_quant_min(&e)));
    assert_true(isnan(an_quant_max(&e)));
    /* Zero-filled memory is an empty estimator too. */
    an_quant z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(an_quant_add(&z, 3.0), 0);
    assert_true(an_quant_p50(&z) == 3.0);
}

static void test_one_and_two(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    assert_int_equal(an_quant_add(&e, -2.5), 0);
    assert_int_equal(an_quant_count(&e), 1);
    assert_true(an_quant_p50(&e) == -2.5);
    assert_true(an_quant_p95(&e) == -2.5);
    assert_true(an_quant_min(&e) == -2.5);
    assert_true(an_quant_max(&e) == -2.5);
    assert_int_equal(an_quant_add(&e, 7.5), 0);
    /* rank (n-1)p: p50 -> 0.5 (midpoint 2.5), p95 -> 0.95: -2.5 + 0.95 * 10 = 7.0. */
    assert_true(an_quant_p50(&e) == 2.5);
    assert_near(an_quant_p95(&e), 7.0, 1e-12);
    assert_true(an_quant_min(&e) == -2.5);
    assert_true(an_quant_max(&e) == 7.5);
}

static void test_five_hand(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    const double v[5] = {50, 10, 40, 20, 30};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(an_quant_add(&e, v[i]), 0);
    }
    /* Sorted 10 20 30 40 50. p50: rank 2 -> 30. p95: rank 3.8 -> 40 + 0.8 * 10 = 48. */
    assert_true(an_quant_p50(&e) == 30.0);
    assert_near(an_quant_p95(&e), 48.0, 1e-12);
    assert_true(an_quant_min(&e) == 10.0);
    assert_true(an_quant_max(&e) == 50.0);

    /* Four samples: 1 2 3 4 -> p50 rank 1.5 = 2.5; p95 rank 2.85 = 3.85. */
    an_quant_init(&e);
    const double w[4] = {4, 1, 3, 2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(an_quant_add(&e, w[i]), 0);
    }
    assert_true(an_quant_p50(&e) == 2.5);
    assert_near(an_quant_p95(&e), 3.85, 1e-12);

    /* Three with a duplicate: 5 5 9 -> p50 5; p95 rank 1.9 = 5 + 0.9 * 4 = 8.6. */
    an_quant_init(&e);
    assert_int_equal(an_quant_add(&e, 5), 0);
    assert_int_equal(an_quant_add(&e, 9), 0);
    assert_int_equal(an_quant_add(&e, 5), 0);
    assert_true(an_quant_p50(&e) == 5.0);
    assert_near(an_quant_p95(&e), 8.6, 1e-12);
}

static void test_nine_hand(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    const double v[9] = {9, 1, 8, 2, 7, 3, 6, 4, 5};
    for (int i = 0; i < 9; i++) {
        assert_int_equal(an_quant_add(&e, v[i]), 0);
    }
    assert_int_equal(an_quant_count(&e), 9);
    assert_true(an_quant_p50(&e) == 5.0);
    assert_near(an_quant_p95(&e), 8.6, 1e-12);
    assert_true(an_quant_min(&e) == 1.0);
    assert_true(an_quant_max(&e) == 9.0);
}

/* Every prefix of length <= AN_QUANT_EXACT of random data matches the exact quantiles. */
static void test_exact_prefixes(void **state) {
    (void)state;
    rng r = {42};
    for (int trial = 0; trial < 500; trial++) {
        an_quant e;
        an_quant_init(&e);
        double x[AN_QUANT_EXACT];
        for (size_t n = 1; n <= AN_QUANT_EXACT; n++) {
            /* Coarse values so that duplicates happen. */
            x[n - 1] = floor(draw(&r, (dist)(trial % D_COUNT)) * 2.0) / 2.0;
            assert_int_equal(an_quant_add(&e, x[n - 1]), 0);
            double s[AN_QUANT_EXACT];
            memcpy(s, x, n * sizeof(double));
            qsort(s, n, sizeof(double), cmp_double);
            assert_true(an_quant_p50(&e) == an_quantile_sorted(s, n, 0.5));
            assert_true(an_quant_p95(&e) == an_quantile_sorted(s, n, 0.95));
            assert_true(an_quant_min(&e) == s[0]);
            assert_true(an_quant_max(&e) == s[n - 1]);
        }
    }
}

static void test_sorted_helper(void **state) {
    (void)state;
    const double s[4] = {1, 2, 4, 8};
    assert_true(an_quantile_sorted(s, 4, 0.0) == 1.0);
    assert_true(an_quantile_sorted(s, 4, -1.0) == 1.0);
    assert_true(an_quantile_sorted(s, 4, 1.0) == 8.0);
    assert_true(an_quantile_sorted(s, 4, 2.0) == 8.0);
    /* rank 1.5 -> 3. */
    assert_true(an_quantile_sorted(s, 4, 0.5) == 3.0);
    assert_true(isnan(an_quantile_sorted(s, 0, 0.5)));
    assert_true(isnan(an_quantile_sorted(NULL, 3, 0.5)));
}

static void test_invalid(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    assert_int_equal(an_quant_add(&e, NAN), -EINVAL);
    assert_int_equal(an_quant_add(&e, INFINITY), -EINVAL);
    assert_int_equal(an_quant_add(&e, -INFINITY), -EINVAL);
    assert_int_equal(an_quant_add(NULL, 1.0), -EINVAL);
    assert_int_equal(an_quant_count(&e), 0);
    assert_int_equal(an_quant_count(NULL), 0);
    assert_true(isnan(an_quant_p50(NULL)));
    /* White box: a saturated count refuses more samples and keeps its state. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(an_quant_add(&e, i), 0);
    }
    an_quant copy = e;
    e.m.n[5] = UINT32_MAX;
    copy.m.n[5] = UINT32_MAX;
    assert_int_equal(an_quant_add(&e, 5.0), -EOVERFLOW);
    assert_memory_equal(&e, &copy, sizeof(e));
}

/* ---- P² phase ---- */

/* The first P² step, by hand: 1..9 start the markers at ranks {1,3,5,6,7,8,9} (heights the
 * same); 10 becomes the max and moves marker 5 (desired 9.775, at 8, room above) to position 9
 * with the parabola 8 + (2*1*2 + 1*2*1) / (3*1*2) = 9. p50 interpolates markers 2 and 3 at
 * positions 5 and 6 for target 5.5; p95 interpolates markers 5 and 6 at 9 and 10 for 9.55. */
static void test_first_p2_step_hand(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    for (int i = 1; i <= 10; i++) {
        assert_int_equal(an_quant_add(&e, i), 0);
    }
    assert_int_equal(an_quant_count(&e), 10);
    const double q[7] = {1, 3, 5, 6, 7, 9, 10};
    const uint32_t n[6] = {3, 5, 6, 7, 9, 10};
    for (int i = 0; i < 7; i++) {
        assert_true(e.m.q[i] == q[i]);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e.m.n[i], n[i]);
    }
    assert_near(an_quant_p50(&e), 5.5, 1e-12);
    assert_near(an_quant_p95(&e), 9.55, 1e-12);
    assert_true(an_quant_min(&e) == 1.0);
    assert_true(an_quant_max(&e) == 10.0);
}

static void test_constant_stream(void **state) {
    (void)state;
    an_quant e;
    an_quant_init(&e);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(an_quant_add(&e, 7.25), 0);
    }
    assert_true(an_quant_p50(&e) == 7.25);
    assert_true(an_quant_p95(&e) == 7.25);
    assert_true(an_quant_min(&e) == 7.25);
    assert_true(an_quant_max(&e) == 7.25);
    assert_int_equal(an_quant_count(&e), 10000);
}

/* The markers stay ordered and inside [min, max], positions stay strictly increasing. */
static void test_invariants(void **state) {
    (void)state;
    rng r = {7};
    for (int d = 0; d < D_COUNT; d++) {
        an_quant e;
        an_quant_init(&e);
        for (int i = 0; i < 20000; i++) {
            double x = draw(&r, (dist)d);
            if (i % 97 == 0) {
                x = 1e6; /* outliers */
            }
            assert_int_equal(an_quant_add(&e, x), 0);
            if (an_quant_count(&e) > AN_QUANT_EXACT) {
                for (int k = 0; k < 6; k++) {
                    assert_true(e.m.q[k] <= e.m.q[k + 1]);
                }
                uint32_t prev = 1;
                for (int k = 0; k < 6; k++) {
                    assert_true(e.m.n[k] > prev);
                    prev = e.m.n[k];
                }
                assert_int_equal(e.m.n[5], (uint32_t)i + 1);
            }
        }
    }
}

/* Sorted and reverse-sorted input (the worst case for the markers' movements). */
static void test_monotone_input(void **state) {
    (void)state;
    for (int dir = 0; dir < 2; dir++) {
        an_quant e;
        an_quant_init(&e);
        const int n = 10000;
        for (int i = 0; i < n; i++) {
            assert_int_equal(an_quant_add(&e, dir == 0 ? i : n - 1 - i), 0);
        }
        /* Exact: p50 = 4999.5, p95 = 9498.05. */
        assert_true(fabs(an_quant_p50(&e) - 4999.5) / n < 0.01);
        assert_true(fabs(an_quant_p95(&e) - 9498.05) / n < 0.01);
        assert_true(an_quant_min(&e) == 0.0);
        assert_true(an_quant_max(&e) == n - 1);
    }
}

/* Bounds on the mean rank error with margin over the table in quantile.h. */
static void test_accuracy_bounds(void **state) {
    (void)state;
    static const double bound_rank_mean[4] = {0.05, 0.08, 0.03, 0.005};
    for (int d = 0; d < D_COUNT; d++) {
        for (int k = 0; k < 3; k++) {
            err_stats s;
            int trials = k == 2 ? 50 : 300;
            measure((dist)d, table_n[k], trials, 77 + (uint64_t)(d * 10 + k), &s);
            assert_true(s.rank_mean[0] < bound_rank_mean[k]);
            assert_true(s.rank_mean[1] < bound_rank_mean[k]);
        }
    }
    err_stats s;
    measure(D_NORMAL, 100000, 2, 99, &s);
    assert_true(s.rank_mean[0] < bound_rank_mean[3]);
    assert_true(s.rank_mean[1] < bound_rank_mean[3]);
    assert_true(s.rel_mean[0] < 0.001);
    assert_true(s.rel_mean[1] < 0.001);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--table") == 0) {
        print_table();
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_one_and_two),
        cmocka_unit_test(test_five_hand),       cmocka_unit_test(test_nine_hand),
        cmocka_unit_test(test_exact_prefixes),  cmocka_unit_test(test_sorted_helper),
        cmocka_unit_test(test_invalid),         cmocka_unit_test(test_first_p2_step_hand),
        cmocka_unit_test(test_constant_stream), cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_monotone_input),  cmocka_unit_test(test_accuracy_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
