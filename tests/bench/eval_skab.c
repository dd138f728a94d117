/* Evaluation of the predictive-maintenance detectors (trend, drift, anomaly) on SKAB, the
 * Skoltech Anomaly Benchmark (real, labelled pump-testbed data), and a cost benchmark.
 *
 *   eval_skab [--data DIR] [-v]   replay every SKAB CSV as one sensor with 8 metrics through
 *                                 the three detectors with default configurations and report,
 *                                 per file and overall, detection delays after the labelled
 *                                 fault onsets and changepoints and false alarms outside the
 *                                 labelled anomaly spans (per hour of normal data)
 *   eval_skab --bench [N]         cost per reading of trend + drift + anomaly together, and
 *                                 the memory per series (sizeof of the three states)
 *
 * DIR defaults to $SKAB_DIR, else ../shared/data/skab (relative to the working directory, i.e.
 * run it from the repository root). The data is GPL-3.0 and never part of the repository:
 * when it is absent the tool says so and exits 0. Single-threaded; allocates freely (a tool,
 * not the hot path). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anomaly.h"
#include "drift.h"
#include "trend.h"

#define NMET      8
#define MAXCOL    16
#define MAX_FILES 64
#define EARLY_S   300

static const char *const subdirs[] = {"anomaly-free", "valve1", "valve2", "other"};

typedef struct row {
    int64_t ts_ms;
    double v[NMET];
    int anomaly;
    int changepoint;
} row;

typedef struct event {
    size_t row;
    int metric;
    an_kind kind;
} event;

typedef struct tally {
    int spans, spans_hit;
    double span_delay_sum;
    double span_delays[MAX_FILES * 2];
    int cps, cps_hit;
    double cp_delays[MAX_FILES * 8];
    int fa;
    int fa_early; /* of which in the first EARLY_S seconds of a file (detectors still learning) */
    int fa_metric[NMET];
    double normal_h;
} tally;

static char metric_names[NMET][48];
static int verbose;

static int64_t parse_ts(const char *s) {
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static int split(char *line, char **cols, int max) {
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, ";\r\n", &save); tok && n < max;
         tok = strtok_r(NULL, ";\r\n", &save)) {
        cols[n++] = tok;
    }
    return n;
}

/* Reads one SKAB CSV. Returns the number of rows (>= 0) or -1; *out is malloc'ed. */
static long load_csv(const char *path, row **out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    char line[1024];
    char *cols[MAXCOL];
    long cap = 2048;
    long n = 0;
    row *rows = malloc((size_t)cap * sizeof(*rows));
    if (!rows || !fgets(line, sizeof(line), f)) {
        goto fail;
    }
    int nh = split(line, cols, MAXCOL);
    if (nh < 1 + NMET) {
        goto fail;
    }
    for (int m = 0; m < NMET; m++) {
        snprintf(metric_names[m], sizeof(metric_names[m]), "%s", cols[1 + m]);
    }
    while (fgets(line, sizeof(line), f)) {
        int nc = split(line, cols, MAXCOL);
        if (nc < 1 + NMET) {
            continue;
        }
        if (n == cap) {
            cap *= 2;
            row *r = realloc(rows, (size_t)cap * sizeof(*rows));
            if (!r) {
                goto fail;
            }
            rows = r;
        }
        row *r = &rows[n];
        r->ts_ms = parse_ts(cols[0]);
        if (r->ts_ms < 0) {
            continue;
        }
        for (int m = 0; m < NMET; m++) {
            r->v[m] = strtod(cols[1 + m], NULL);
        }
        r->anomaly = nc > 1 + NMET ? atof(cols[1 + NMET]) > 0.5 : 0;
        r->changepoint = nc > 2 + NMET ? atof(cols[2 + NMET]) > 0.5 : 0;
        n++;
    }
    fclose(f);
    *out = rows;
    return n;
fail:
    free(rows);
    fclose(f);
    return -1;
}

/* Runs the three detectors with defaults over the rows, one state set per metric, and records
 * every raised drift / anomaly alert. Returns the number of events. */
static size_t replay(const row *rows, long n, event *ev, size_t cap) {
    an_trend_cfg tc;
    an_drift_cfg dc;
    an_anomaly_cfg ac;
    an_trend_cfg_default(&tc);
    an_drift_cfg_default(&dc);
    an_anomaly_cfg_default(&ac);
    an_trend_state ts[NMET];
    an_drift_state ds[NMET];
    an_anomaly_state as[NMET];
    for (int m = 0; m < NMET; m++) {
        an_trend_init(&ts[m]);
        an_drift_init(&ds[m]);
        an_anomaly_init(&as[m]);
    }
    size_t ne = 0;
    for (long i = 0; i < n; i++) {
        for (int m = 0; m < NMET; m++) {
            an_alert a;
            const row *r = &rows[i];
            an_trend_update(&tc, &ts[m], 0, r->ts_ms, r->v[m], &a, 1);
            if (an_drift_update(&dc, &ds[m], 0, r->ts_ms, r->v[m], &a, 1) == 1 &&
                a.state == AN_STATE_RAISED && ne < cap) {
                ev[ne++] = (event){(size_t)i, m, AN_KIND_DRIFT};
            }
            if (an_anomaly_update(&ac, &as[m], 0, r->ts_ms, r->v[m], &a, 1) == 1 &&
                a.state == AN_STATE_RAISED && ne < cap) {
                ev[ne++] = (event){(size_t)i, m, AN_KIND_ANOMALY};
            }
        }
    }
    return ne;
}

/* First event of `kind` with row in [from, to); -1 if none. */
static long first_event(const event *ev, size_t ne, an_kind kind, long from, long to) {
    for (size_t e = 0; e < ne; e++) {
        if (ev[e].kind == kind && (long)ev[e].row >= from && (long)ev[e].row < to) {
            return (long)e;
        }
    }
    return -1;
}

static void score_file(const row *rows, long n, const event *ev, size_t ne, an_kind kind, tally *t,
                       char *summary, size_t sumlen) {
    size_t off = 0;
    summary[0] = '\0';
    /* Fault onsets: each labelled anomaly span, detected by an alert inside the span. */
    for (long i = 0; i < n; i++) {
        if (!rows[i].anomaly || (i > 0 && rows[i - 1].anomaly)) {
            continue;
        }
        long end = i;
        while (end < n && rows[end].anomaly) {
            end++;
        }
        long e = first_event(ev, ne, kind, i, end);
        t->spans++;
        if (e >= 0) {
            double d = (double)(rows[ev[e].row].ts_ms - rows[i].ts_ms) / 1000.0;
            t->span_delays[t->spans_hit++] = d;
            t->span_delay_sum += d;
            off += (size_t)snprintf(summary + off, sumlen - off, " onset+%.0fs(%s)", d,
                                    metric_names[ev[e].metric]);
        } else {
            off += (size_t)snprintf(summary + off, sumlen - off, " onset:missed");
        }
    }
    /* Changepoints: detected by an alert before the next changepoint. */
    for (long i = 0; i < n; i++) {
        if (!rows[i].changepoint) {
            continue;
        }
        long next = i + 1;
        while (next < n && !rows[next].changepoint) {
            next++;
        }
        long e = first_event(ev, ne, kind, i, next);
        t->cps++;
        if (e >= 0) {
            t->cp_delays[t->cps_hit++] = (double)(rows[ev[e].row].ts_ms - rows[i].ts_ms) / 1000.0;
        }
    }
    /* False alarms: alerts raised on rows labelled normal. */
    int fa = 0;
    for (size_t e = 0; e < ne; e++) {
        if (ev[e].kind == kind && !rows[ev[e].row].anomaly) {
            fa++;
            t->fa_metric[ev[e].metric]++;
            t->fa_early += rows[ev[e].row].ts_ms - rows[0].ts_ms < EARLY_S * 1000;
        }
    }
    t->fa += fa;
    double normal_ms = 0.0;
    for (long i = 1; i < n; i++) {
        if (!rows[i].anomaly) {
            double dt = (double)(rows[i].ts_ms - rows[i - 1].ts_ms);
            normal_ms += dt > 0.0 && dt < 60000.0 ? dt : 0.0;
        }
    }
    t->normal_h += normal_ms / 3600000.0;
    snprintf(summary + off, sumlen - off, " fa=%d", fa);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n == 0) {
        return NAN;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int cmp_name(const void *a, const void *b) {
    const char *x = *(char *const *)a;
    const char *y = *(char *const *)b;
    long nx = strtol(x, NULL, 10);
    long ny = strtol(y, NULL, 10);
    return nx != ny ? (nx > ny) - (nx < ny) : strcmp(x, y);
}

static void report(const char *label, tally *t) {
    if (t->spans > 0) {
        printf("  %-8s fault onsets detected %d/%d, delay median %.0f s, mean %.0f s; changepoints "
               "%d/%d, median delay %.0f s\n",
               label, t->spans_hit, t->spans, median(t->span_delays, t->spans_hit),
               t->spans_hit ? t->span_delay_sum / t->spans_hit : NAN, t->cps_hit, t->cps,
               median(t->cp_delays, t->cps_hit));
    }
    printf("  %-8s false alarms %d in %.2f h of normal data = %.2f per hour (sensor of 8 metrics); "
           "%d of them in the first %d s of a file\n",
           label, t->fa, t->normal_h, t->normal_h > 0 ? t->fa / t->normal_h : 0.0, t->fa_early,
           EARLY_S);
    printf("           by metric:");
    for (int m = 0; m < NMET; m++) {
        printf(" %s=%d", metric_names[m], t->fa_metric[m]);
    }
    printf("\n");
}

static int eval(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        printf("SKAB data not found at %s (set SKAB_DIR or --data); skipping\n", dir);
        return 0;
    }
    static tally tot[2][2]; /* [normal-only set?][0 anomaly, 1 drift] */
    event *ev = malloc(100000 * sizeof(*ev));
    if (!ev) {
        return 1;
    }
    printf("SKAB from %s, defaults only; alerts on any of 8 metrics count for the sensor\n", dir);
    for (size_t s = 0; s < sizeof(subdirs) / sizeof(subdirs[0]); s++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, subdirs[s]);
        DIR *d = opendir(path);
        if (!d) {
            continue;
        }
        char *names[MAX_FILES];
        int nn = 0;
        struct dirent *de;
        while ((de = readdir(d)) && nn < MAX_FILES) {
            size_t l = strlen(de->d_name);
            if (l > 4 && strcmp(de->d_name + l - 4, ".csv") == 0) {
                names[nn++] = strdup(de->d_name);
            }
        }
        closedir(d);
        qsort(names, (size_t)nn, sizeof(names[0]), cmp_name);
        int free_set = s == 0;
        for (int i = 0; i < nn; i++) {
            char fp[1400];
            snprintf(fp, sizeof(fp), "%s/%s", path, names[i]);
            row *rows = NULL;
            long n = load_csv(fp, &rows);
            if (n < 0) {
                fprintf(stderr, "cannot read %s\n", fp);
                free(names[i]);
                continue;
            }
            size_t ne = replay(rows, n, ev, 100000);
            char sa[512];
            char sd[512];
            score_file(rows, n, ev, ne, AN_KIND_ANOMALY, &tot[free_set][0], sa, sizeof(sa));
            score_file(rows, n, ev, ne, AN_KIND_DRIFT, &tot[free_set][1], sd, sizeof(sd));
            printf("%s/%-7s %5ld rows | anomaly:%s | drift:%s\n", subdirs[s], names[i], n, sa, sd);
            if (verbose) {
                for (size_t e = 0; e < ne; e++) {
                    printf("    %s %s row %zu%s\n",
                           ev[e].kind == AN_KIND_DRIFT ? "drift  " : "anomaly",
                           metric_names[ev[e].metric], ev[e].row,
                           rows[ev[e].row].anomaly ? " (in span)" : "");
                }
            }
            free(rows);
            free(names[i]);
        }
    }
    printf("overall, files with faults (valve1, valve2, other):\n");
    report("anomaly", &tot[0][0]);
    report("drift", &tot[0][1]);
    printf("overall, anomaly-free/:\n");
    report("anomaly", &tot[1][0]);
    report("drift", &tot[1][1]);
    free(ev);
    return 0;
}

/* CPU time of this process: on a shared machine, time spent descheduled does not count. */
static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int bench(long n) {
    an_trend_cfg tc;
    an_drift_cfg dc;
    an_anomaly_cfg ac;
    an_trend_cfg_default(&tc);
    tc.has_limit = true;
    tc.limit = 1e9;
    an_drift_cfg_default(&dc);
    an_anomaly_cfg_default(&ac);
    enum { NS = 64 };
    static an_trend_state ts[NS];
    static an_drift_state ds[NS];
    static an_anomaly_state as[NS];
    static double noise[4096];
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 4096; i++) {
        double acc = 0.0;
        for (int j = 0; j < 12; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            acc += (double)(x >> 11) / 9007199254740992.0;
        }
        noise[i] = acc - 6.0;
    }
    /* Best of 5 passes: the minimum is the cost without interference from other load. */
    double best = INFINITY;
    long alerts = 0;
    for (int pass = 0; pass < 5; pass++) {
        for (int s = 0; s < NS; s++) {
            an_trend_init(&ts[s]);
            an_drift_init(&ds[s]);
            an_anomaly_init(&as[s]);
        }
        int64_t t0 = 1700000000000LL;
        double start = now_ns();
        for (long i = 0; i < n; i++) {
            int s = (int)(i % NS);
            int64_t t = t0 + (i / NS) * 1000;
            double v = 20.0 + 1e-5 * (double)(i / NS) + noise[i & 4095];
            an_alert a;
            alerts += an_trend_update(&tc, &ts[s], 0, t, v, &a, 1);
            alerts += an_drift_update(&dc, &ds[s], 0, t, v, &a, 1);
            alerts += an_anomaly_update(&ac, &as[s], 0, t, v, &a, 1);
        }
        double el = (now_ns() - start) / (double)n;
        best = el < best ? el : best;
    }
    printf("bench: %ld readings over %d series, best of 5 passes: %.1f ns per reading "
           "(trend with a limit + drift + anomaly), %ld alert transitions\n",
           n, NS, best, alerts);
    printf("memory per series: trend %zu + drift %zu + anomaly %zu = %zu bytes\n",
           sizeof(an_trend_state), sizeof(an_drift_state), sizeof(an_anomaly_state),
           sizeof(an_trend_state) + sizeof(an_drift_state) + sizeof(an_anomaly_state));
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = getenv("SKAB_DIR");
    if (!dir || !*dir) {
        dir = "../shared/data/skab";
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bench") == 0) {
            long n = i + 1 < argc ? strtol(argv[i + 1], NULL, 10) : 20000000L;
            return bench(n > 0 ? n : 20000000L);
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else {
            fprintf(stderr, "usage: %s [--data DIR] [-v] | --bench [N]\n", argv[0]);
            return 2;
        }
    }
    return eval(dir);
}
