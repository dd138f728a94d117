/* `iotgw simulate`: synthetic sensors for demos and load tests.
 *
 * The signal generator is pure: a reading is a function of (seed, sensor, metric, sample
 * index) only, with no hidden state, so any thread may call it, tests need no broker, and the
 * same seed always yields the same stream whatever the rate of publishing or the set of
 * metrics chosen.
 *
 * Signals: every (sensor, metric) has a baseline (plus a small per-sensor offset) with
 * clipped Gaussian noise. With faults on, sensors also show single-reading spikes, slow
 * temperature drifts that ramp past 35 °C and recover, humidity dips below 15 % and dropouts
 * (the whole sensor falls silent for 20-40 s). The first 180 s follow a fixed script so that
 * a demo shows every alert kind within a minute:
 *   role 0 (sensor 1):  temperature spike at 4 s, drift from 8 s (+0.25 °C/s to 36 °C,
 *                       hold 5 s, -0.5 °C/s back to the baseline: above 30 from ~44 s, below
 *                       28 again at ~89 s);
 *   role 1 (sensor 2):  humidity dip from 12 s (below 15 % from ~14 s for 6 s), vibration
 *                       spike at 20 s;
 *   role 2 (sensor 3):  dropout from 25 s to 55 s.
 * Role r goes to sensor r % nsensors, so with fewer sensors one sensor plays several roles.
 * Other sensors, and every sensor after 180 s, get random episodes per 180 s cycle. */
#ifndef GW_SIMULATE_H
#define GW_SIMULATE_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_sim_metric {
    GW_SIM_TEMPERATURE = 0,
    GW_SIM_HUMIDITY,
    GW_SIM_VIBRATION,
    GW_SIM_PRESSURE,
    GW_SIM_NMETRICS
} gw_sim_metric;

typedef struct gw_sim_metric_info {
    const char *name;  /* "temperature", ... also the topic level and the JSON key */
    const char *unit;  /* for --help */
    double baseline;   /* normal level */
    double sigma;      /* standard deviation of the noise */
    double offset_max; /* per-sensor offset of the baseline, uniform in +-offset_max */
    double normal_lo;  /* every value with faults off lies in [normal_lo, normal_hi] */
    double normal_hi;
    double spike; /* level of a spike reading */
    int decimals; /* digits after the point when published */
} gw_sim_metric_info;

/* Static table entry for m, or NULL when m is out of range. Any thread. */
const gw_sim_metric_info *gw_sim_metric_info_get(gw_sim_metric m);

/* Metric for a name, or -1 when unknown. Borrows name. Any thread. */
int gw_sim_metric_from_name(const char *name);

typedef enum gw_sim_fault {
    GW_SIM_FAULT_NONE = 0,
    GW_SIM_FAULT_SPIKE,   /* this single reading is far out */
    GW_SIM_FAULT_DRIFT,   /* temperature in a ramp episode */
    GW_SIM_FAULT_DIP,     /* humidity in a dip episode */
    GW_SIM_FAULT_DROPOUT, /* the sensor is silent: no reading */
} gw_sim_fault;

/* Generator parameters; a plain value, copy it freely. */
typedef struct gw_sim_gen {
    uint64_t seed;
    int nsensors; /* sensors are numbered 0 .. nsensors-1 (published as sim-001 ..) */
    double rate;  /* samples per second per (sensor, metric): sample k is at k / rate s */
    int faults;   /* 0: only baseline and noise */
} gw_sim_gen;

#define GW_SIM_MAX_SENSORS 10000
#define GW_SIM_MAX_RATE    100000.0
#define GW_SIM_CYCLE_S     180.0 /* length of one fault cycle, the opening script is cycle 0 */

/* Fills *g. Returns 0, or GW_EINVAL (-22) when nsensors is outside 1..GW_SIM_MAX_SENSORS or
 * rate outside (0, GW_SIM_MAX_RATE]; *g is then untouched. */
int gw_sim_gen_init(gw_sim_gen *g, uint64_t seed, int nsensors, double rate, int faults);

typedef struct gw_sim_reading {
    int present;        /* 0 during a dropout: publish nothing for this sensor */
    double value;       /* valid when present */
    gw_sim_fault fault; /* what shapes this reading (DROPOUT when not present) */
} gw_sim_reading;

/* The reading of `sensor`'s metric m at sample k. Borrows g. Returns 0, or GW_EINVAL when
 * sensor or m is out of range (out untouched). Any thread. */
int gw_sim_sample(const gw_sim_gen *g, int sensor, gw_sim_metric m, uint64_t k,
                  gw_sim_reading *out);

/* ---- command-line options ---------------------------------------------------------- */

#define GW_SIM_HOST_MAX   255
#define GW_SIM_PREFIX_MAX 128

typedef struct gw_sim_opts {
    char host[GW_SIM_HOST_MAX + 1];
    int port;
    int sensors;
    double rate; /* ticks per second: messages per second per sensor-metric (plain) */
    int nmetrics;
    gw_sim_metric metrics[GW_SIM_NMETRICS]; /* in the order given, no duplicates */
    char prefix[GW_SIM_PREFIX_MAX + 1];
    int json;
    int qos;
    double duration_s; /* < 0: until a signal */
    int64_t count;     /* < 0: no limit */
    uint64_t seed;
    int seed_set;
    int faults;
    int quiet;
    int help;
} gw_sim_opts;

/* Sets the documented defaults. */
void gw_sim_opts_defaults(gw_sim_opts *o);

/* Parses argv (argv[0] is the command name) with getopt_long into *o, starting from the
 * defaults. Borrows argv (permutes it, as getopt does) and writes *o only on success.
 * Returns 0 (o->help set when --help was given), or GW_EINVAL with a one-line message in
 * err (errlen bytes, NUL-terminated). Uses getopt's global state: main thread only. */
int gw_sim_parse_args(int argc, char **argv, gw_sim_opts *o, char *err, size_t errlen);

#endif
