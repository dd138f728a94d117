/* P² estimator of p50 and p95 with 7 markers; see quantile.h for the contract and the
 * measured accuracy. */
#include "quantile.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* Target quantile of each marker, times 40: 0, 0.25, 0.5, 0.725, 0.95, 0.975, 1. Marker 2 is
 * p50 and marker 4 is p95; the others are the midpoints Raatikainen's multi-quantile P² puts
 * between the targets and the extremes. Integers keep the hot path free of conversions. */
static const int64_t marker_p40[7] = {0, 10, 20, 29, 38, 39, 40};

/* Ranks (1-based) of the 9 exact samples the markers start from when P² takes over: the
 * nearest strictly increasing ranks to 1 + 8 * p = {1, 3, 5, 6.8, 8.6, 8.8, 9}. */
static const uint32_t init_rank[7] = {1, 3, 5, 6, 7, 8, 9};

void an_quant_init(an_quant *e) {
    if (e == NULL) {
        return;
    }
    memset(e, 0, sizeof(*e));
}

uint32_t an_quant_count(const an_quant *e) {
    return e == NULL ? 0 : e->m.n[5];
}

/* The exact phase keeps the samples sorted; the 10th sample turns them into markers. The
 * samples and the marker positions share storage, hence the copy. */
static void start_markers(an_quant *e) {
    double s[AN_QUANT_EXACT];
    memcpy(s, e->s, sizeof(s));
    for (int i = 0; i < 7; i++) {
        e->m.q[i] = s[init_rank[i] - 1];
    }
    for (int i = 1; i < 6; i++) {
        e->m.n[i - 1] = init_rank[i];
    }
    e->m.n[5] = AN_QUANT_EXACT;
}

/* Moves marker i (1..5) one position towards its desired position when it is at least one
 * position off and the neighbour on that side leaves room. n[i - 1] is the position of
 * marker i (n[5] = count); marker 0 sits at position 1. Always inlined with a constant i: the
 * unrolled loop is a third faster. */
static inline __attribute__((always_inline)) void adjust(double *q, uint32_t *n, int i,
                                                         int64_t c1) {
    int64_t ni = n[i - 1];
    int64_t np = i == 1 ? 1 : n[i - 2];
    int64_t nn = n[i];
    /* Desired position 1 + (count - 1) * p_i; with p_i = k_i / 40 the tests d >= 1 and
     * d <= -1 on d = desired - position are exact in integers: want40 = 40 * (d - 1). */
    int64_t want40 = c1 * marker_p40[i] - 40 * ni;
    double s;
    if (want40 >= 0 && nn - ni > 1) {
        s = 1.0;
    } else if (want40 <= -80 && np - ni < -1) {
        s = -1.0;
    } else {
        return;
    }
    double a = (double)(ni - np);
    double b = (double)(nn - ni);
    double qi = q[i];
    double up = q[i + 1] - qi;
    double down = qi - q[i - 1];
    /* The piecewise-parabolic formula of the paper with its three divisions folded into one:
     * q + s/(a+b) * ((a+s)*up/b + (b-s)*down/a). */
    double cand = qi + s * ((a + s) * a * up + (b - s) * b * down) / ((a + b) * a * b);
    if (!(q[i - 1] < cand && cand < q[i + 1])) {
        cand = s > 0 ? qi + up / b : qi - down / a;
    }
    q[i] = cand;
    n[i - 1] = (uint32_t)(ni + (s > 0 ? 1 : -1));
}

/* One P² step. */
static void p2_step(an_quant *e, double x) {
    double *q = e->m.q;
    uint32_t *n = e->m.n;

    if (x < q[0]) {
        q[0] = x;
    }
    if (x > q[6]) {
        q[6] = x;
    }
    /* Every marker above the sample moves one position up. Branch-free on purpose: the
     * comparisons are unpredictable. */
    n[0] += x < q[1];
    n[1] += x < q[2];
    n[2] += x < q[3];
    n[3] += x < q[4];
    n[4] += x < q[5];
    n[5] += 1;

    const int64_t c1 = (int64_t)n[5] - 1;
    adjust(q, n, 1, c1);
    adjust(q, n, 2, c1);
    adjust(q, n, 3, c1);
    adjust(q, n, 4, c1);
    adjust(q, n, 5, c1);
}

int an_quant_add(an_quant *e, double x) {
    if (e == NULL || !isfinite(x)) {
        return -EINVAL;
    }
    uint32_t c = e->m.n[5];
    if (c >= AN_QUANT_EXACT) {
        if (c == UINT32_MAX) {
            return -EOVERFLOW;
        }
        if (c == AN_QUANT_EXACT) {
            start_markers(e);
        }
        p2_step(e, x);
        return 0;
    }
    /* Insertion into the sorted samples; at most 8 moves. */
    uint32_t i = c;
    while (i > 0 && e->s[i - 1] > x) {
        e->s[i] = e->s[i - 1];
        i--;
    }
    e->s[i] = x;
    e->m.n[5] = c + 1;
    return 0;
}

double an_quantile_sorted(const double *sorted, size_t n, double p) {
    if (sorted == NULL || n == 0) {
        return NAN;
    }
    if (!(p > 0.0)) {
        return sorted[0];
    }
    if (p >= 1.0) {
        return sorted[n - 1];
    }
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)h;
    if (lo >= n - 1) {
        return sorted[n - 1];
    }
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

/* Reads the quantile p. In the P² phase the estimate is interpolated between the two markers
 * whose actual positions bracket the target position 1 + (count - 1) * p: once P² has run for
 * a while the markers sit within one position of their targets and this is their height;
 * shortly after the exact phase the upper markers still lag (they need room above them to
 * move) and the interpolation recovers most of that lag. */
static double quant_at(const an_quant *e, double p) {
    uint32_t c = e == NULL ? 0 : e->m.n[5];
    if (c == 0) {
        return NAN;
    }
    if (c <= AN_QUANT_EXACT) {
        return an_quantile_sorted(e->s, c, p);
    }
    const double *q = e->m.q;
    double target = 1.0 + (double)(c - 1) * p;
    double lo_pos = 1.0;
    for (int i = 0; i < 6; i++) {
        double hi_pos = (double)e->m.n[i];
        if (target < hi_pos) {
            return q[i] + (target - lo_pos) / (hi_pos - lo_pos) * (q[i + 1] - q[i]);
        }
        lo_pos = hi_pos;
    }
    return q[6];
}

double an_quant_min(const an_quant *e) {
    return quant_at(e, 0.0);
}

double an_quant_max(const an_quant *e) {
    return quant_at(e, 1.0);
}

double an_quant_p50(const an_quant *e) {
    return quant_at(e, 0.5);
}

double an_quant_p95(const an_quant *e) {
    return quant_at(e, 0.95);
}
