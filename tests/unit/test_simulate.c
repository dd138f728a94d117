/* Unit tests of the pure parts of `iotgw simulate`: the signal generator (determinism, noise,
 * fault schedule) and the option parser. No broker, no clocks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "simulate.h"

#define EINVAL_RC (-22)

static gw_sim_reading sample(const gw_sim_gen *g, int sensor, gw_sim_metric m, uint64_t k) {
    gw_sim_reading r;
    assert_int_equal(gw_sim_sample(g, sensor, m, k, &r), 0);
    return r;
}

static void test_metric_table(void **state) {
    (void)state;
    const char *names[] = {"temperature", "humidity", "vibration", "pressure"};
    for (int m = 0; m < GW_SIM_NMETRICS; m++) {
        const gw_sim_metric_info *mi = gw_sim_metric_info_get((gw_sim_metric)m);
        assert_non_null(mi);
        assert_string_equal(mi->name, names[m]);
        assert_int_equal(gw_sim_metric_from_name(names[m]), m);
        assert_true(mi->normal_lo < mi->baseline && mi->baseline < mi->normal_hi);
    }
    assert_null(gw_sim_metric_info_get(GW_SIM_NMETRICS));
    assert_null(gw_sim_metric_info_get((gw_sim_metric)-1));
    assert_int_equal(gw_sim_metric_from_name("Temperature"), -1);
    assert_int_equal(gw_sim_metric_from_name(""), -1);
}

static void test_init_and_range_checks(void **state) {
    (void)state;
    gw_sim_gen g = {0};
    assert_int_equal(gw_sim_gen_init(&g, 1, 0, 2.0, 1), EINVAL_RC);
    assert_int_equal(gw_sim_gen_init(&g, 1, GW_SIM_MAX_SENSORS + 1, 2.0, 1), EINVAL_RC);
    assert_int_equal(gw_sim_gen_init(&g, 1, 5, 0.0, 1), EINVAL_RC);
    assert_int_equal(gw_sim_gen_init(&g, 1, 5, -1.0, 1), EINVAL_RC);
    assert_int_equal(gw_sim_gen_init(&g, 1, 5, NAN, 1), EINVAL_RC);
    assert_int_equal(gw_sim_gen_init(&g, 1, 5, GW_SIM_MAX_RATE * 2, 1), EINVAL_RC);
    assert_int_equal(g.nsensors, 0); /* untouched on error */
    assert_int_equal(gw_sim_gen_init(&g, 1, 5, 2.0, 1), 0);
    gw_sim_reading r = {7, 7.0, GW_SIM_FAULT_SPIKE};
    assert_int_equal(gw_sim_sample(&g, 5, GW_SIM_TEMPERATURE, 0, &r), EINVAL_RC);
    assert_int_equal(gw_sim_sample(&g, -1, GW_SIM_TEMPERATURE, 0, &r), EINVAL_RC);
    assert_int_equal(gw_sim_sample(&g, 0, GW_SIM_NMETRICS, 0, &r), EINVAL_RC);
    assert_int_equal(r.present, 7); /* untouched on error */
}

static void test_determinism(void **state) {
    (void)state;
    gw_sim_gen a, b, c;
    assert_int_equal(gw_sim_gen_init(&a, 12345, 5, 2.0, 1), 0);
    assert_int_equal(gw_sim_gen_init(&b, 12345, 5, 2.0, 1), 0);
    assert_int_equal(gw_sim_gen_init(&c, 12346, 5, 2.0, 1), 0);
    int differ = 0;
    for (uint64_t k = 0; k < 3000; k += 7) {
        for (int s = 0; s < 5; s++) {
            for (int m = 0; m < GW_SIM_NMETRICS; m++) {
                gw_sim_reading ra = sample(&a, s, (gw_sim_metric)m, k);
                gw_sim_reading rb = sample(&b, s, (gw_sim_metric)m, k);
                gw_sim_reading rc = sample(&c, s, (gw_sim_metric)m, k);
                assert_int_equal(ra.present, rb.present);
                assert_int_equal(ra.fault, rb.fault);
                assert_memory_equal(&ra.value, &rb.value, sizeof(double));
                differ += ra.present && rc.present && ra.value != rc.value;
            }
        }
    }
    assert_true(differ > 1000);
    /* Pure: asking again, in another order, gives the same value. */
    gw_sim_reading r1 = sample(&a, 3, GW_SIM_HUMIDITY, 999);
    (void)sample(&a, 0, GW_SIM_TEMPERATURE, 5);
    gw_sim_reading r2 = sample(&a, 3, GW_SIM_HUMIDITY, 999);
    assert_int_equal(r1.present, r2.present);
    assert_int_equal(r1.fault, r2.fault);
    assert_memory_equal(&r1.value, &r2.value, sizeof(double));
}

static void test_noise_statistics(void **state) {
    (void)state;
    gw_sim_gen g;
    assert_int_equal(gw_sim_gen_init(&g, 42, 4, 10.0, 0), 0);
    const int n = 20000;
    for (int m = 0; m < GW_SIM_NMETRICS; m++) {
        const gw_sim_metric_info *mi = gw_sim_metric_info_get((gw_sim_metric)m);
        double offsets[4];
        for (int s = 0; s < 4; s++) {
            double sum = 0, sum2 = 0;
            for (int k = 0; k < n; k++) {
                gw_sim_reading r = sample(&g, s, (gw_sim_metric)m, (uint64_t)k);
                assert_true(r.present);
                sum += r.value;
                sum2 += r.value * r.value;
            }
            double mean = sum / n;
            double sd = sqrt(sum2 / n - mean * mean);
            /* The mean is the per-sensor baseline: within the offset range, and the standard
             * error at 20000 samples is below sigma/100. */
            assert_true(fabs(mean - mi->baseline) <= mi->offset_max + 0.02 * mi->sigma);
            assert_true(sd > 0.93 * mi->sigma && sd < 1.05 * mi->sigma);
            offsets[s] = mean - mi->baseline;
        }
        /* Sensors differ a little from one another. */
        assert_true(offsets[0] != offsets[1] || offsets[1] != offsets[2]);
    }
}

static void test_faults_off_stays_normal(void **state) {
    (void)state;
    const uint64_t seeds[] = {1, 7, 0xdeadbeefULL};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        gw_sim_gen g;
        assert_int_equal(gw_sim_gen_init(&g, seeds[i], 5, 2.0, 0), 0);
        for (uint64_t k = 0; k < 2 * 3600; k++) { /* one hour */
            for (int s = 0; s < 5; s++) {
                for (int m = 0; m < GW_SIM_NMETRICS; m++) {
                    const gw_sim_metric_info *mi = gw_sim_metric_info_get((gw_sim_metric)m);
                    gw_sim_reading r = sample(&g, s, (gw_sim_metric)m, k);
                    assert_true(r.present);
                    assert_int_equal(r.fault, GW_SIM_FAULT_NONE);
                    assert_true(r.value >= mi->normal_lo && r.value <= mi->normal_hi);
                }
            }
        }
    }
}

/* Properties of the opening script that the demo relies on, at several rates. */
static void check_script(int nsensors, double rate, uint64_t seed) {
    gw_sim_gen g;
    assert_int_equal(gw_sim_gen_init(&g, seed, nsensors, rate, 1), 0);
    int s_drift = 0, s_dip = 1 % nsensors, s_drop = 2 % nsensors;
    uint64_t kmax = (uint64_t)(150 * rate);

    /* Sensor 1: a fault within 5 s: a single temperature spike reading. */
    int spikes = 0;
    double first_fault_t = -1;
    for (uint64_t k = 0; k < (uint64_t)(30 * rate); k++) {
        gw_sim_reading r = sample(&g, s_drift, GW_SIM_TEMPERATURE, k);
        if (r.fault != GW_SIM_FAULT_NONE && first_fault_t < 0) {
            first_fault_t = (double)k / rate;
        }
        if (r.fault == GW_SIM_FAULT_SPIKE) {
            spikes++;
            assert_true(r.value > 40.0);
        }
    }
    assert_int_equal(spikes, 1);
    assert_true(first_fault_t >= 0 && first_fault_t <= 5.0);

    /* Drift: above 30 within a minute, past 35, then below 28 again (raise, then clear). */
    double t_raise = -1, t_clear = -1, peak = 0;
    for (uint64_t k = (uint64_t)(6 * rate); k < kmax; k++) {
        gw_sim_reading r = sample(&g, s_drift, GW_SIM_TEMPERATURE, k);
        if (!r.present) {
            continue; /* with one sensor, the dropout role overlaps the drift */
        }
        double t = (double)k / rate;
        if (r.value > 30.0 && t_raise < 0) {
            t_raise = t;
        }
        if (r.value > peak) {
            peak = r.value;
        }
        if (t_raise >= 0 && peak > 35.0 && r.value < 28.0 && t_clear < 0) {
            t_clear = t;
        }
        if (r.value > 30.0) {
            assert_int_equal(r.fault, GW_SIM_FAULT_DRIFT);
        }
    }
    assert_true(t_raise > 0 && t_raise <= 60.0);
    assert_true(peak > 35.0 && peak < 40.0);
    assert_true(t_clear > t_raise && t_clear <= 120.0);

    /* Humidity dip below 15 for at least 3 s in a row, starting before 30 s. */
    int run = 0, best = 0;
    double dip_start = -1;
    for (uint64_t k = 0; k < (uint64_t)(60 * rate); k++) {
        gw_sim_reading r = sample(&g, s_dip, GW_SIM_HUMIDITY, k);
        if (r.present && r.value < 15.0) {
            if (run == 0 && dip_start < 0) {
                dip_start = (double)k / rate;
            }
            run++;
            best = run > best ? run : best;
        } else if (r.present) {
            run = 0;
        }
    }
    assert_true(dip_start >= 0 && dip_start < 30.0);
    assert_true((double)best / rate >= 3.0);

    /* A vibration spike before 30 s. */
    int vib = 0;
    for (uint64_t k = 0; k < (uint64_t)(30 * rate); k++) {
        gw_sim_reading r = sample(&g, s_dip, GW_SIM_VIBRATION, k);
        vib += r.fault == GW_SIM_FAULT_SPIKE && r.value > 10.0;
    }
    assert_int_equal(vib, 1);

    /* A dropout of 20-40 s starting before 30 s, for every metric of that sensor. */
    double silent_from = -1, silent_to = -1;
    for (uint64_t k = 0; k < (uint64_t)(90 * rate); k++) {
        gw_sim_reading r = sample(&g, s_drop, GW_SIM_PRESSURE, k);
        gw_sim_reading h = sample(&g, s_drop, GW_SIM_HUMIDITY, k);
        assert_int_equal(r.present, h.present);
        double t = (double)k / rate;
        if (!r.present) {
            assert_int_equal(r.fault, GW_SIM_FAULT_DROPOUT);
            if (silent_from < 0) {
                silent_from = t;
            }
            silent_to = t;
        }
    }
    assert_true(silent_from >= 0 && silent_from < 30.0);
    assert_true(silent_to - silent_from >= 20.0 - 2.0 / rate && silent_to - silent_from <= 40.0);
}

static void test_opening_script(void **state) {
    (void)state;
    check_script(5, 2.0, 1);
    check_script(5, 1.0, 99);
    check_script(5, 10.0, 12345);
    check_script(3, 50.0, 5);
    check_script(2, 2.0, 8);
    check_script(1, 2.0, 3);
}

/* Over two hours, every fault kind shows up in the random cycles, with the right shapes. */
static void test_random_faults(void **state) {
    (void)state;
    const uint64_t seeds[] = {1, 2, 77};
    const double rate = 1.0;
    for (size_t si = 0; si < sizeof(seeds) / sizeof(seeds[0]); si++) {
        gw_sim_gen g;
        assert_int_equal(gw_sim_gen_init(&g, seeds[si], 5, rate, 1), 0);
        int spikes = 0, drifts = 0, dips = 0, drops = 0;
        uint64_t k0 = (uint64_t)(GW_SIM_CYCLE_S * rate); /* after the script */
        uint64_t k1 = k0 + (uint64_t)(2 * 3600 * rate);
        for (int s = 0; s < 5; s++) {
            int in_drift = 0, in_dip = 0, in_drop = 0;
            double drift_peak = 0, dip_min = 100, drop_start = 0;
            for (uint64_t k = k0; k < k1; k++) {
                gw_sim_reading t = sample(&g, s, GW_SIM_TEMPERATURE, k);
                gw_sim_reading h = sample(&g, s, GW_SIM_HUMIDITY, k);
                gw_sim_reading v = sample(&g, s, GW_SIM_VIBRATION, k);
                gw_sim_reading p = sample(&g, s, GW_SIM_PRESSURE, k);
                double now = (double)k / rate;
                /* Dropouts: whole sensor, 20-40 s. */
                if (!t.present) {
                    assert_false(h.present || v.present || p.present);
                    if (!in_drop) {
                        in_drop = 1;
                        drop_start = now;
                    }
                    continue;
                }
                if (in_drop) {
                    double len = now - drop_start;
                    assert_true(len >= 20.0 - 1.0 / rate && len <= 40.0 + 1.0 / rate);
                    drops++;
                    in_drop = 0;
                }
                gw_sim_reading all[4] = {t, h, v, p};
                for (int m = 0; m < 4; m++) {
                    const gw_sim_metric_info *mi = gw_sim_metric_info_get((gw_sim_metric)m);
                    if (all[m].fault == GW_SIM_FAULT_SPIKE) {
                        spikes++;
                        assert_true(fabs(all[m].value - mi->spike) <= 4 * mi->sigma + 1e-9);
                    } else if (all[m].fault == GW_SIM_FAULT_NONE) {
                        assert_true(all[m].value >= mi->normal_lo && all[m].value <= mi->normal_hi);
                    }
                }
                /* Drifts: temperature only, peak past 35, end back at normal levels. */
                if (t.fault == GW_SIM_FAULT_DRIFT) {
                    in_drift = 1;
                    drift_peak = t.value > drift_peak ? t.value : drift_peak;
                } else if (in_drift && t.fault == GW_SIM_FAULT_NONE) {
                    assert_true(drift_peak > 35.0);
                    assert_true(t.value < 28.0);
                    drifts++;
                    in_drift = 0;
                    drift_peak = 0;
                }
                /* Dips: humidity only, below 15. */
                if (h.fault == GW_SIM_FAULT_DIP) {
                    in_dip = 1;
                    dip_min = h.value < dip_min ? h.value : dip_min;
                } else if (in_dip && h.fault == GW_SIM_FAULT_NONE) {
                    assert_true(dip_min < 15.0);
                    dips++;
                    in_dip = 0;
                    dip_min = 100;
                }
                assert_true(v.fault == GW_SIM_FAULT_NONE || v.fault == GW_SIM_FAULT_SPIKE);
                assert_true(p.fault == GW_SIM_FAULT_NONE || p.fault == GW_SIM_FAULT_SPIKE);
            }
        }
        /* 200 sensor-cycles with 30 % drift, 25 % dip, 20 % dropout, 0.8 spikes each. */
        assert_true(spikes >= 50);
        assert_true(drifts >= 20);
        assert_true(dips >= 15);
        assert_true(drops >= 10);
    }
}

/* ---- options ---------------------------------------------------------------------- */

static int parse(gw_sim_opts *o, char *err, size_t errlen, int argc, ...) {
    char *argv[32];
    char store[32][64];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        snprintf(store[i], sizeof(store[i]), "%s", va_arg(ap, const char *));
        argv[i] = store[i];
    }
    va_end(ap);
    argv[argc] = NULL;
    return gw_sim_parse_args(argc, argv, o, err, errlen);
}

static void test_parse_defaults(void **state) {
    (void)state;
    gw_sim_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), 1, "simulate"), 0);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.port, 1883);
    assert_int_equal(o.sensors, 5);
    assert_true(o.rate == 2.0);
    assert_int_equal(o.nmetrics, 3);
    assert_int_equal(o.metrics[0], GW_SIM_TEMPERATURE);
    assert_int_equal(o.metrics[1], GW_SIM_HUMIDITY);
    assert_int_equal(o.metrics[2], GW_SIM_VIBRATION);
    assert_string_equal(o.prefix, "sensors");
    assert_int_equal(o.json, 0);
    assert_int_equal(o.qos, 0);
    assert_true(o.duration_s < 0);
    assert_true(o.count < 0);
    assert_int_equal(o.seed_set, 0);
    assert_int_equal(o.faults, 1);
    assert_int_equal(o.quiet, 0);
    assert_int_equal(o.help, 0);
}

static void test_parse_all_options(void **state) {
    (void)state;
    gw_sim_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), 24, "simulate", "-H", "broker.local", "-p",
                           "18830", "--sensors", "12", "--rate=0.5", "--metrics",
                           "pressure,temperature", "--prefix", "plant/a", "--format", "json",
                           "--qos", "1", "--duration", "2.5", "--count", "100", "--seed", "0x10",
                           "--faults=off", "-q"),
                     0);
    assert_string_equal(o.host, "broker.local");
    assert_int_equal(o.port, 18830);
    assert_int_equal(o.sensors, 12);
    assert_true(o.rate == 0.5);
    assert_int_equal(o.nmetrics, 2);
    assert_int_equal(o.metrics[0], GW_SIM_PRESSURE);
    assert_int_equal(o.metrics[1], GW_SIM_TEMPERATURE);
    assert_string_equal(o.prefix, "plant/a");
    assert_int_equal(o.json, 1);
    assert_int_equal(o.qos, 1);
    assert_true(o.duration_s == 2.5);
    assert_true(o.count == 100);
    assert_true(o.seed == 16);
    assert_int_equal(o.seed_set, 1);
    assert_int_equal(o.faults, 0);
    assert_int_equal(o.quiet, 1);
    /* Long forms, and the parser can run again (getopt state reset). */
    assert_int_equal(
        parse(&o, err, sizeof(err), 6, "simulate", "--host", "h", "--port=1", "--quiet", "--help"),
        0);
    assert_string_equal(o.host, "h");
    assert_int_equal(o.port, 1);
    assert_int_equal(o.help, 1);
}

static void expect_error(const char *needle, int argc, const char *a1, const char *a2,
                         const char *a3) {
    gw_sim_opts o;
    gw_sim_opts_defaults(&o);
    o.port = 4242; /* sentinel: must stay untouched on error */
    char err[256] = "";
    int rc = argc == 2   ? parse(&o, err, sizeof(err), 2, "simulate", a1)
             : argc == 3 ? parse(&o, err, sizeof(err), 3, "simulate", a1, a2)
                         : parse(&o, err, sizeof(err), 4, "simulate", a1, a2, a3);
    if (rc != EINVAL_RC || strstr(err, needle) == NULL) {
        fail_msg("args %s %s: rc %d, message '%s', expected '%s'", a1, a2 ? a2 : "", rc, err,
                 needle);
    }
    assert_int_equal(o.port, 4242);
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_error("--bogus", 2, "--bogus", NULL, NULL);
    expect_error("-x", 2, "-x", NULL, NULL);
    expect_error("--rate", 2, "--rate", NULL, NULL); /* missing value */
    expect_error("-p", 2, "-p", NULL, NULL);
    expect_error("--quiet", 2, "--quiet=1", NULL, NULL);
    expect_error("--port", 3, "--port", "0", NULL);
    expect_error("--port", 3, "--port", "65536", NULL);
    expect_error("--port", 3, "-p", "18x", NULL);
    expect_error("--sensors", 3, "--sensors", "0", NULL);
    expect_error("--sensors", 3, "--sensors", "10001", NULL);
    expect_error("--rate", 3, "--rate", "0", NULL);
    expect_error("--rate", 3, "--rate", "abc", NULL);
    expect_error("--rate", 3, "--rate", "inf", NULL);
    expect_error("--rate", 3, "--rate", "1e9", NULL);
    expect_error("unknown metric 'wind'", 3, "--metrics", "temperature,wind", NULL);
    expect_error("twice", 3, "--metrics", "humidity,humidity", NULL);
    expect_error("empty", 3, "--metrics", ",", NULL);
    expect_error("--prefix", 3, "--prefix", "a/#", NULL);
    expect_error("--prefix", 3, "--prefix", "a/", NULL);
    expect_error("--prefix", 3, "--prefix", "", NULL);
    expect_error("--format", 3, "--format", "xml", NULL);
    expect_error("--qos", 3, "--qos", "2", NULL);
    expect_error("--duration", 3, "--duration", "0", NULL);
    expect_error("--duration", 3, "--duration", "-5", NULL);
    expect_error("--count", 3, "--count", "0", NULL);
    expect_error("--seed", 3, "--seed", "-1", NULL);
    expect_error("--seed", 3, "--seed", "12ab", NULL);
    expect_error("--faults", 3, "--faults", "yes", NULL);
    expect_error("--host", 3, "--host", "", NULL);
    expect_error("unexpected argument 'extra'", 4, "--qos", "1", "extra");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_table),
        cmocka_unit_test(test_init_and_range_checks),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_noise_statistics),
        cmocka_unit_test(test_faults_off_stays_normal),
        cmocka_unit_test(test_opening_script),
        cmocka_unit_test(test_random_faults),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_all_options),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
