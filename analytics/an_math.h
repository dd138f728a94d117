/* Small numeric helpers shared by the analytics files. Internal to analytics/. */
#ifndef AN_MATH_H
#define AN_MATH_H

#include <math.h>

/* fmax/fmin without the NaN handling that keeps them out of line (inputs are never NaN). */
static inline double maxd(double a, double b) {
    return a > b ? a : b;
}

static inline double mind(double a, double b) {
    return a < b ? a : b;
}

/* Running median of the non-zero steps between consecutive readings: the sensor's effective
 * resolution. A sensor that reports coarse steps (with the odd tiny offset) gets a floor at its
 * real step; for a continuous noisy sensor the median step is about the noise, so half of it
 * stays below the spread. */
static inline float an_quantum_update(float q, double prev, double v) {
    double dv = fabs(v - prev);
    /* Differences at the level of floating-point noise say nothing about the sensor's step. */
    if (!(dv > 1e-9 * maxd(fabs(v), fabs(prev)))) {
        return q;
    }
    if (q == 0.0f) {
        return (float)dv;
    }
    return (float)(dv > (double)q ? (double)q * 1.2 : (double)q / 1.2);
}

#endif
