/* The simulator's pure parts: the signal generator and the option parser (see simulate.h). */
#include "simulate.h"

#include "clock.h"
#include "commands.h"
#include "queue.h" /* GW_EINVAL */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- signal generator ------------------------------------------------------------- */

static const gw_sim_metric_info metric_table[GW_SIM_NMETRICS] = {
    [GW_SIM_TEMPERATURE] = {"temperature", "degC", 21.0, 0.3, 0.5, 19.0, 23.0, 45.0, 2},
    [GW_SIM_HUMIDITY] = {"humidity", "%RH", 45.0, 1.0, 2.0, 38.0, 52.0, 95.0, 2},
    [GW_SIM_VIBRATION] = {"vibration", "mm/s", 2.0, 0.2, 0.2, 0.9, 3.1, 12.0, 3},
    [GW_SIM_PRESSURE] = {"pressure", "bar", 1.2, 0.02, 0.03, 1.08, 1.32, 3.0, 4},
};

/* Noise is clipped at this many sigmas, so that "normal" has hard bounds. */
#define NOISE_CLIP 4.0

/* Opening script (cycle 0), times in seconds from the start. */
#define SCRIPT_SPIKE_T     4.0
#define SCRIPT_DRIFT_T     8.0
#define SCRIPT_DIP_T       12.0
#define SCRIPT_VIB_SPIKE_T 20.0
#define SCRIPT_DROP_T      25.0
#define SCRIPT_DROP_LEN    30.0
#define SCRIPT_ROLES       3

/* Hash tags keep the independent random streams apart. */
enum { TAG_OFFSET = 1, TAG_NOISE, TAG_PLAN };

#define MAX_SPIKES 3

/* Fault episodes of one sensor in one cycle; times in seconds from the start. */
typedef struct plan {
    int has_drift;
    double drift_t0, drift_up, drift_peak, drift_hold, drift_down; /* slopes in units/s */
    int has_dip;
    double dip_t0, dip_fall, dip_hold, dip_rise, dip_level;
    int has_drop;
    double drop_t0, drop_len;
    int nspikes;
    double spike_t[MAX_SPIKES];
    gw_sim_metric spike_m[MAX_SPIKES];
} plan;

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash4(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ a);
    h = splitmix64(h ^ b);
    return splitmix64(h ^ c);
}

/* Uniform in [0, 1). */
static double unit_double(uint64_t x) {
    return (double)(x >> 11) * 0x1.0p-53;
}

typedef struct rng {
    uint64_t s;
} rng;

static double rng_uniform(rng *r, double lo, double hi) {
    r->s += 0x9e3779b97f4a7c15ULL;
    return lo + (hi - lo) * unit_double(splitmix64(r->s));
}

/* Standard normal from one 64-bit hash (Box-Muller on its two halves), clipped. */
static double gauss_clipped(uint64_t h) {
    double u1 = ((double)(h >> 32) + 1.0) * 0x1.0p-32; /* (0, 1] */
    double u2 = (double)(h & 0xffffffffULL) * 0x1.0p-32;
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    if (z > NOISE_CLIP) {
        z = NOISE_CLIP;
    } else if (z < -NOISE_CLIP) {
        z = -NOISE_CLIP;
    }
    return z;
}

static double sensor_base(const gw_sim_gen *g, int sensor, gw_sim_metric m) {
    const gw_sim_metric_info *mi = &metric_table[m];
    double u = unit_double(hash4(g->seed, TAG_OFFSET, (uint64_t)sensor, (uint64_t)m));
    return mi->baseline + (2.0 * u - 1.0) * mi->offset_max;
}

static void plan_script(const gw_sim_gen *g, int sensor, plan *p) {
    for (int role = 0; role < SCRIPT_ROLES; role++) {
        if (role % g->nsensors != sensor) {
            continue;
        }
        switch (role) {
        case 0:
            p->spike_t[p->nspikes] = SCRIPT_SPIKE_T;
            p->spike_m[p->nspikes++] = GW_SIM_TEMPERATURE;
            p->has_drift = 1;
            p->drift_t0 = SCRIPT_DRIFT_T;
            p->drift_up = 0.25;
            p->drift_peak = 36.0;
            p->drift_hold = 5.0;
            p->drift_down = 0.5;
            break;
        case 1:
            p->has_dip = 1;
            p->dip_t0 = SCRIPT_DIP_T;
            p->dip_fall = 2.0;
            p->dip_hold = 6.0;
            p->dip_rise = 2.0;
            p->dip_level = 10.0;
            p->spike_t[p->nspikes] = SCRIPT_VIB_SPIKE_T;
            p->spike_m[p->nspikes++] = GW_SIM_VIBRATION;
            break;
        default:
            p->has_drop = 1;
            p->drop_t0 = SCRIPT_DROP_T;
            p->drop_len = SCRIPT_DROP_LEN;
            break;
        }
    }
}

/* One random episode (drift, dip, dropout or none) plus 0-2 spikes, all inside the cycle. */
static void plan_random(const gw_sim_gen *g, int sensor, uint64_t cycle, plan *p) {
    rng r = {hash4(g->seed, TAG_PLAN, (uint64_t)sensor, cycle)};
    double c0 = (double)cycle * GW_SIM_CYCLE_S;
    double kind = rng_uniform(&r, 0.0, 1.0);
    if (kind < 0.30) {
        double base = sensor_base(g, sensor, GW_SIM_TEMPERATURE);
        p->has_drift = 1;
        p->drift_up = rng_uniform(&r, 0.2, 0.3);
        p->drift_peak = rng_uniform(&r, 35.5, 38.0);
        p->drift_hold = rng_uniform(&r, 3.0, 10.0);
        p->drift_down = rng_uniform(&r, 0.4, 0.6);
        double delta = p->drift_peak - base;
        double len = delta / p->drift_up + p->drift_hold + delta / p->drift_down;
        p->drift_t0 = c0 + rng_uniform(&r, 5.0, GW_SIM_CYCLE_S - 5.0 - len);
    } else if (kind < 0.55) {
        p->has_dip = 1;
        p->dip_fall = rng_uniform(&r, 1.0, 3.0);
        p->dip_hold = rng_uniform(&r, 3.0, 8.0);
        p->dip_rise = rng_uniform(&r, 1.0, 3.0);
        p->dip_level = rng_uniform(&r, 8.0, 11.0);
        double len = p->dip_fall + p->dip_hold + p->dip_rise;
        p->dip_t0 = c0 + rng_uniform(&r, 5.0, GW_SIM_CYCLE_S - 5.0 - len);
    } else if (kind < 0.75) {
        p->has_drop = 1;
        p->drop_len = rng_uniform(&r, 20.0, 40.0);
        p->drop_t0 = c0 + rng_uniform(&r, 5.0, GW_SIM_CYCLE_S - 5.0 - p->drop_len);
    }
    double ns = rng_uniform(&r, 0.0, 1.0);
    int nspikes = ns < 0.4 ? 0 : ns < 0.8 ? 1 : 2;
    for (int i = 0; i < nspikes; i++) {
        p->spike_t[i] = c0 + rng_uniform(&r, 2.0, GW_SIM_CYCLE_S - 2.0);
        p->spike_m[i] = (gw_sim_metric)(int)rng_uniform(&r, 0.0, (double)GW_SIM_NMETRICS);
    }
    p->nspikes = nspikes;
}

static void plan_cycle(const gw_sim_gen *g, int sensor, uint64_t cycle, plan *p) {
    memset(p, 0, sizeof(*p));
    if (cycle == 0 && sensor < SCRIPT_ROLES) {
        plan_script(g, sensor, p);
    } else {
        plan_random(g, sensor, cycle, p);
    }
}

/* Offset above the base of a drift at time t, or a negative value outside the episode. */
static double drift_offset(const plan *p, double base, double t) {
    double delta = p->drift_peak - base;
    double up_len = delta / p->drift_up;
    double dt = t - p->drift_t0;
    if (dt < 0.0) {
        return -1.0;
    }
    if (dt < up_len) {
        return p->drift_up * dt;
    }
    dt -= up_len;
    if (dt < p->drift_hold) {
        return delta;
    }
    dt -= p->drift_hold;
    double down_len = delta / p->drift_down;
    if (dt < down_len) {
        return delta - p->drift_down * dt;
    }
    return -1.0;
}

/* Fraction (0..1) of the way down to the dip level at time t, or negative outside. */
static double dip_fraction(const plan *p, double t) {
    double dt = t - p->dip_t0;
    if (dt < 0.0) {
        return -1.0;
    }
    if (dt < p->dip_fall) {
        return dt / p->dip_fall;
    }
    dt -= p->dip_fall;
    if (dt < p->dip_hold) {
        return 1.0;
    }
    dt -= p->dip_hold;
    if (dt < p->dip_rise) {
        return 1.0 - dt / p->dip_rise;
    }
    return -1.0;
}

const gw_sim_metric_info *gw_sim_metric_info_get(gw_sim_metric m) {
    if ((int)m < 0 || m >= GW_SIM_NMETRICS) {
        return NULL;
    }
    return &metric_table[m];
}

int gw_sim_metric_from_name(const char *name) {
    for (int m = 0; m < GW_SIM_NMETRICS; m++) {
        if (strcmp(name, metric_table[m].name) == 0) {
            return m;
        }
    }
    return -1;
}

int gw_sim_gen_init(gw_sim_gen *g, uint64_t seed, int nsensors, double rate, int faults) {
    if (nsensors < 1 || nsensors > GW_SIM_MAX_SENSORS || !(rate > 0.0) || rate > GW_SIM_MAX_RATE) {
        return GW_EINVAL;
    }
    g->seed = seed;
    g->nsensors = nsensors;
    g->rate = rate;
    g->faults = faults ? 1 : 0;
    return 0;
}

int gw_sim_sample(const gw_sim_gen *g, int sensor, gw_sim_metric m, uint64_t k,
                  gw_sim_reading *out) {
    if (sensor < 0 || sensor >= g->nsensors || (int)m < 0 || m >= GW_SIM_NMETRICS) {
        return GW_EINVAL;
    }
    const gw_sim_metric_info *mi = &metric_table[m];
    double base = sensor_base(g, sensor, m);
    double z = gauss_clipped(hash4(g->seed ^ ((uint64_t)m << 56), TAG_NOISE, (uint64_t)sensor, k));
    gw_sim_reading r = {1, base + z * mi->sigma, GW_SIM_FAULT_NONE};
    if (g->faults) {
        double t = (double)k / g->rate;
        plan p;
        plan_cycle(g, sensor, (uint64_t)(t / GW_SIM_CYCLE_S), &p);
        int spiked = 0;
        for (int i = 0; i < p.nspikes; i++) {
            if (p.spike_m[i] == m && k == (uint64_t)ceil(p.spike_t[i] * g->rate)) {
                spiked = 1;
            }
        }
        double off, frac;
        if (p.has_drop && t >= p.drop_t0 && t < p.drop_t0 + p.drop_len) {
            r.present = 0;
            r.value = 0.0;
            r.fault = GW_SIM_FAULT_DROPOUT;
        } else if (spiked) {
            r.value = mi->spike + z * mi->sigma;
            r.fault = GW_SIM_FAULT_SPIKE;
        } else if (m == GW_SIM_TEMPERATURE && p.has_drift &&
                   (off = drift_offset(&p, base, t)) >= 0.0) {
            r.value = base + off + z * mi->sigma;
            r.fault = GW_SIM_FAULT_DRIFT;
        } else if (m == GW_SIM_HUMIDITY && p.has_dip && (frac = dip_fraction(&p, t)) >= 0.0) {
            /* Less noise in a dip, so the held part stays below 15 % (10 + 4 * 0.5 at most). */
            r.value = base + (p.dip_level - base) * frac + z * 0.5;
            r.fault = GW_SIM_FAULT_DIP;
        }
    }
    *out = r;
    return 0;
}

/* ---- options --------------------------------------------------------------------- */

enum {
    OPT_SENSORS = 256,
    OPT_RATE,
    OPT_METRICS,
    OPT_PREFIX,
    OPT_FORMAT,
    OPT_QOS,
    OPT_DURATION,
    OPT_COUNT,
    OPT_SEED,
    OPT_FAULTS,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"sensors", required_argument, NULL, OPT_SENSORS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"qos", required_argument, NULL, OPT_QOS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"count", required_argument, NULL, OPT_COUNT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"faults", required_argument, NULL, OPT_FAULTS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void gw_sim_opts_defaults(gw_sim_opts *o) {
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 1883;
    o->sensors = 5;
    o->rate = 2.0;
    o->nmetrics = 3;
    o->metrics[0] = GW_SIM_TEMPERATURE;
    o->metrics[1] = GW_SIM_HUMIDITY;
    o->metrics[2] = GW_SIM_VIBRATION;
    snprintf(o->prefix, sizeof(o->prefix), "sensors");
    o->duration_s = -1.0;
    o->count = -1;
    o->faults = 1;
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || !(v > lo) || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_metrics(const char *list, gw_sim_opts *o, char *err, size_t errlen) {
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf)) {
        snprintf(err, errlen, "--metrics: list too long");
        return GW_EINVAL;
    }
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int m = gw_sim_metric_from_name(tok);
        if (m < 0) {
            snprintf(err, errlen,
                     "--metrics: unknown metric '%s' (known: temperature, humidity, "
                     "vibration, pressure)",
                     tok);
            return GW_EINVAL;
        }
        for (int i = 0; i < n; i++) {
            if ((int)o->metrics[i] == m) {
                snprintf(err, errlen, "--metrics: '%s' given twice", tok);
                return GW_EINVAL;
            }
        }
        o->metrics[n++] = (gw_sim_metric)m;
    }
    if (n == 0) {
        snprintf(err, errlen, "--metrics: empty list");
        return GW_EINVAL;
    }
    o->nmetrics = n;
    return 0;
}

static int check_prefix(const char *s, char *err, size_t errlen) {
    size_t len = strlen(s);
    if (len == 0 || len > GW_SIM_PREFIX_MAX) {
        snprintf(err, errlen, "--prefix: must be 1 to %d characters", GW_SIM_PREFIX_MAX);
        return GW_EINVAL;
    }
    if (strpbrk(s, "+#") != NULL || s[len - 1] == '/') {
        snprintf(err, errlen, "--prefix: '%s' must not contain + or # nor end with /", s);
        return GW_EINVAL;
    }
    return 0;
}

static int parse_one(int c, const char *arg, gw_sim_opts *o, char *err, size_t errlen) {
    long long v;
    switch (c) {
    case 'H':
        if (arg[0] == '\0' || strlen(arg) > GW_SIM_HOST_MAX || strpbrk(arg, " \t/") != NULL) {
            snprintf(err, errlen, "--host: invalid host '%s'", arg);
            return GW_EINVAL;
        }
        snprintf(o->host, sizeof(o->host), "%s", arg);
        return 0;
    case 'p':
        if (parse_long(arg, 1, 65535, &v) != 0) {
            snprintf(err, errlen, "--port: expected 1..65535, got '%s'", arg);
            return GW_EINVAL;
        }
        o->port = (int)v;
        return 0;
    case OPT_SENSORS:
        if (parse_long(arg, 1, GW_SIM_MAX_SENSORS, &v) != 0) {
            snprintf(err, errlen, "--sensors: expected 1..%d, got '%s'", GW_SIM_MAX_SENSORS, arg);
            return GW_EINVAL;
        }
        o->sensors = (int)v;
        return 0;
    case OPT_RATE:
        if (parse_double(arg, 0.0, GW_SIM_MAX_RATE, &o->rate) != 0) {
            snprintf(err, errlen, "--rate: expected a number in (0, %.0f], got '%s'",
                     GW_SIM_MAX_RATE, arg);
            return GW_EINVAL;
        }
        return 0;
    case OPT_METRICS:
        return parse_metrics(arg, o, err, errlen);
    case OPT_PREFIX:
        if (check_prefix(arg, err, errlen) != 0) {
            return GW_EINVAL;
        }
        snprintf(o->prefix, sizeof(o->prefix), "%s", arg);
        return 0;
    case OPT_FORMAT:
        if (strcmp(arg, "plain") != 0 && strcmp(arg, "json") != 0) {
            snprintf(err, errlen, "--format: expected plain or json, got '%s'", arg);
            return GW_EINVAL;
        }
        o->json = strcmp(arg, "json") == 0;
        return 0;
    case OPT_QOS:
        if (parse_long(arg, 0, 1, &v) != 0) {
            snprintf(err, errlen, "--qos: expected 0 or 1, got '%s'", arg);
            return GW_EINVAL;
        }
        o->qos = (int)v;
        return 0;
    case OPT_DURATION:
        if (parse_double(arg, 0.0, 1e9, &o->duration_s) != 0) {
            snprintf(err, errlen, "--duration: expected seconds > 0, got '%s'", arg);
            return GW_EINVAL;
        }
        return 0;
    case OPT_COUNT:
        if (parse_long(arg, 1, INT64_MAX, &v) != 0) {
            snprintf(err, errlen, "--count: expected a number >= 1, got '%s'", arg);
            return GW_EINVAL;
        }
        o->count = v;
        return 0;
    case OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(arg, &end, 0);
        if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-') {
            snprintf(err, errlen, "--seed: expected an unsigned 64-bit number, got '%s'", arg);
            return GW_EINVAL;
        }
        o->seed = s;
        o->seed_set = 1;
        return 0;
    }
    case OPT_FAULTS:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0) {
            snprintf(err, errlen, "--faults: expected on or off, got '%s'", arg);
            return GW_EINVAL;
        }
        o->faults = strcmp(arg, "on") == 0;
        return 0;
    case 'q':
        o->quiet = 1;
        return 0;
    case 'h':
        o->help = 1;
        return 0;
    default:
        snprintf(err, errlen, "internal error: option %d", c);
        return GW_EINVAL;
    }
}

int gw_sim_parse_args(int argc, char **argv, gw_sim_opts *o, char *err, size_t errlen) {
    gw_sim_opts tmp;
    gw_sim_opts_defaults(&tmp);
    if (errlen > 0) {
        err[0] = '\0';
    }
    optind = 0; /* GNU: full reinitialisation, so that the parser can run more than once */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":H:p:qh", long_opts, NULL)) != -1) {
        /* A long option is named by its argv element, a short one by its letter (the
         * element may hold several letters). */
        int is_long = optind > 0 && strncmp(argv[optind - 1], "--", 2) == 0;
        if (c == '?') {
            const char *eq = is_long ? strchr(argv[optind - 1], '=') : NULL;
            if (eq != NULL) {
                snprintf(err, errlen, "option '%.*s' takes no value or is unknown",
                         (int)(eq - argv[optind - 1]), argv[optind - 1]);
            } else if (is_long || optopt <= 0 || optopt > 255) {
                snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
            } else {
                snprintf(err, errlen, "unknown option '-%c'", optopt);
            }
            return GW_EINVAL;
        }
        if (c == ':') {
            if (is_long || optopt <= 0 || optopt > 255) {
                snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
            } else {
                snprintf(err, errlen, "option '-%c' needs a value", optopt);
            }
            return GW_EINVAL;
        }
        if (parse_one(c, optarg, &tmp, err, errlen) != 0) {
            return GW_EINVAL;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return GW_EINVAL;
    }
    *o = tmp;
    return 0;
}
