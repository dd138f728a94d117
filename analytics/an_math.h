/* Small numeric helpers shared by the analytics files. Internal to analytics/. */
#ifndef AN_MATH_H
#define AN_MATH_H

/* fmax/fmin without the NaN handling that keeps them out of line (inputs are never NaN). */
static inline double maxd(double a, double b) {
    return a > b ? a : b;
}

static inline double mind(double a, double b) {
    return a < b ? a : b;
}

#endif
