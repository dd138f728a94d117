/* Configuration, the finishing of each section once its keys are parsed (config_internal.h):
 * computed defaults and cross-field checks of subscriptions, rules, windows, retention and the
 * root object. */
#include "config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Adds one subscription to a fresh map: the topic map is the one judge of filters and
 * templates. */
static int probe_sub(const char *filter, const char *sensor, const char *metric, char *why,
                     size_t whylen) {
    gw_topic_map *m = NULL;
    int rc = gw_topic_map_new(&m);
    if (rc != 0) {
        snprintf(why, whylen, "out of memory");
        return rc;
    }
    rc = gw_topic_map_add(m, filter, sensor, metric, why, whylen);
    gw_topic_map_free(m);
    return rc;
}

int config__finish_sub(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                       size_t errlen) {
    const gw_subscription *s = obj;
    /* Each field is tried alone ("{0}" and "" are valid for any filter) so that the error
     * names the key at fault. */
    const struct {
        const char *key, *sensor, *metric;
    } probes[] = {{"topic", "{0}", ""}, {"sensor", s->sensor, ""}, {"metric", "{0}", s->metric}};
    (void)index;
    (void)seen;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        char why[160] = "invalid";
        int rc = probe_sub(s->topic, probes[i].sensor, probes[i].metric, why, sizeof why);
        if (rc != 0) {
            char p[PATH_LEN];
            config__join(p, path, probes[i].key);
            config__fail(err, errlen, p, "%s", why);
            return rc == -ENOMEM ? rc : -EINVAL;
        }
    }
    return 0;
}

/* True when the key `name` of table t was given in the object that produced `seen`. */
static bool given(const opt_table *t, uint32_t seen, const char *name) {
    for (size_t k = 0; k < t->n; k++) {
        if (strcmp(t->opts[k].name, name) == 0) {
            return seen & (1u << k);
        }
    }
    return false;
}

int config__finish_rule(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                        size_t errlen) {
    an_rule *r = obj;
    an_threshold_cfg *t = &r->threshold;
    char p[PATH_LEN], num[64];
    if (!r->name[0]) {
        snprintf(r->name, sizeof r->name, "rules[%zu]", index);
    }
    if (r->trend.has_limit) {
        r->has_trend = true;
    }
    if (!t->has_above && !t->has_below && !r->has_rate && !r->has_stale && !r->has_trend &&
        !r->has_drift && !r->has_anomaly) {
        return config__fail(
            err, errlen, path,
            "needs above, below, rate_above, stale_after, trend, trend_limit, drift or "
            "anomaly");
    }
    /* Keys that tune a part are an error without the part: they would do nothing. */
    static const struct {
        const char *key, *needs;
        size_t has_off;
    } tuning[] = {
        {"trend_dir", "trend or trend_limit", offsetof(an_rule, has_trend)},
        {"trend_window", "trend or trend_limit", offsetof(an_rule, has_trend)},
        {"horizon", "trend_limit", offsetof(an_rule, trend.has_limit)},
        {"refractory", "anomaly", offsetof(an_rule, has_anomaly)},
    };
    for (size_t i = 0; i < sizeof(tuning) / sizeof(tuning[0]); i++) {
        if (given(&config__rule_table, seen, tuning[i].key) &&
            !*(const bool *)((const char *)r + tuning[i].has_off)) {
            config__join(p, path, tuning[i].key);
            return config__fail(err, errlen, p, "needs %s", tuning[i].needs);
        }
    }
    /* The detectors' own defaults, under what the rule gave. */
    if (r->has_trend) {
        an_trend_cfg given_cfg = r->trend;
        an_trend_cfg_default(&r->trend);
        r->trend.has_limit = given_cfg.has_limit;
        r->trend.limit = given_cfg.limit;
        r->trend.dir = given_cfg.dir;
        r->trend.window_ms = given_cfg.window_ms;
        r->trend.horizon_ms = given_cfg.horizon_ms;
        r->trend.severity = t->severity;
    }
    if (r->has_drift) {
        an_drift_cfg_default(&r->drift);
        r->drift.severity = t->severity;
    }
    if (r->has_anomaly) {
        double sensitivity = r->anomaly.sensitivity;
        int64_t refractory = r->anomaly.refractory_ms;
        if (!(sensitivity > 0 && sensitivity < 1)) {
            config__join(p, path, "anomaly");
            config__fmt_num(num, sizeof num, sensitivity);
            return config__fail(err, errlen, p, "must be between 0 and 1 (exclusive), not %s", num);
        }
        an_anomaly_cfg_default(&r->anomaly);
        r->anomaly.sensitivity = sensitivity;
        r->anomaly.refractory_ms = refractory;
        r->anomaly.severity = t->severity;
    }
    /* The durations belong to the threshold part: given without it they would do nothing. */
    static const char *const threshold_only[] = {"for", "clear_for"};
    for (size_t i = 0; i < sizeof(threshold_only) / sizeof(threshold_only[0]); i++) {
        if (given(&config__rule_table, seen, threshold_only[i]) && !t->has_above && !t->has_below) {
            config__join(p, path, threshold_only[i]);
            return config__fail(err, errlen, p, "needs above or below");
        }
    }
    /* One severity per rule, for every part. */
    r->rate.severity = t->severity;
    r->stale.severity = t->severity;
    if (given(&config__rule_table, seen, "clear_below")) {
        config__join(p, path, "clear_below");
        if (!t->has_above) {
            return config__fail(err, errlen, p, "needs above");
        }
        if (t->clear_below > t->above) {
            config__fmt_num(num, sizeof num, t->above);
            return config__fail(err, errlen, p, "must be <= above (%s)", num);
        }
    } else {
        t->clear_below = t->above;
    }
    if (given(&config__rule_table, seen, "clear_above")) {
        config__join(p, path, "clear_above");
        if (!t->has_below) {
            return config__fail(err, errlen, p, "needs below");
        }
        if (t->clear_above < t->below) {
            config__fmt_num(num, sizeof num, t->below);
            return config__fail(err, errlen, p, "must be >= below (%s)", num);
        }
    } else {
        t->clear_above = t->below;
    }
    return 0;
}

int config__finish_window(void *obj, size_t index, uint32_t seen, const char *path, char *err,
                          size_t errlen) {
    gw_window_size *w = obj;
    char p[PATH_LEN];
    (void)index;
    (void)seen;
    if (w->hop_ms != 0) {
        config__join(p, path, "hop");
        if (w->hop_ms > w->size_ms || w->size_ms % w->hop_ms != 0) {
            return config__fail(err, errlen, p, "must divide size (%lld ms)",
                                (long long)w->size_ms);
        }
        if (w->size_ms / w->hop_ms > 64) {
            return config__fail(err, errlen, p, "size/hop must be <= 64");
        }
    }
    return 0;
}

int config__finish_retain_window(void *obj, size_t index, uint32_t seen, const char *path,
                                 char *err, size_t errlen) {
    gw_retain_window *w = obj;
    char p[PATH_LEN];
    (void)index;
    (void)seen;
    if (w->into_ms != 0) {
        config__join(p, path, "into");
        if (w->into_ms <= w->window_ms || w->into_ms % w->window_ms != 0) {
            return config__fail(err, errlen, p, "must be a larger multiple of window (%lld ms)",
                                (long long)w->window_ms);
        }
        if (w->keep_ms == 0) {
            return config__fail(err, errlen, p,
                                "needs keep > 0 (summaries kept forever are not rolled up)");
        }
    }
    return 0;
}

/* How long summaries of window_ms are kept; *where names the key that says so. */
static int64_t retain_keep(const gw_config *c, int64_t window_ms, char *where, size_t n) {
    for (size_t i = 0; i < c->retention.n_summaries; i++) {
        if (c->retention.summaries[i].window_ms == window_ms) {
            snprintf(where, n, "retention.summaries[%zu].keep", i);
            return c->retention.summaries[i].keep_ms;
        }
    }
    snprintf(where, n, "retention.other_summaries");
    return c->retention.other_summaries_ms;
}

/* Cross-checks: summaries made by downsampling or a roll-up must not be due before what they
 * were made from. */
static int finish_retention(const gw_config *c, char *err, size_t errlen) {
    char p[PATH_LEN], where[PATH_LEN], a[32], b[32];
    for (size_t i = 0; i < c->retention.n_summaries; i++) {
        const gw_retain_window *w = &c->retention.summaries[i];
        for (size_t k = 0; k < i; k++) {
            if (c->retention.summaries[k].window_ms == w->window_ms) {
                snprintf(p, sizeof p, "retention.summaries[%zu].window", i);
                return config__fail(err, errlen, p, "listed twice (also retention.summaries[%zu])",
                                    k);
            }
        }
    }
    for (size_t i = 0; i < c->retention.n_summaries; i++) {
        const gw_retain_window *w = &c->retention.summaries[i];
        if (w->into_ms == 0) {
            continue;
        }
        int64_t keep = retain_keep(c, w->into_ms, where, sizeof where);
        if (keep != 0 && keep < w->keep_ms) {
            snprintf(p, sizeof p, "retention.summaries[%zu].into", i);
            config__fmt_duration(a, sizeof a, keep);
            config__fmt_duration(b, sizeof b, w->keep_ms);
            return config__fail(err, errlen, p,
                                "the roll-ups would be kept %s (%s), less than these (%s)", a,
                                where, b);
        }
    }
    int64_t ds = c->retention.downsample_ms, raw = c->retention.raw_ms;
    if (ds != 0 && raw != 0) {
        int64_t keep = retain_keep(c, ds, where, sizeof where);
        if (keep != 0 && keep < raw) {
            config__fmt_duration(a, sizeof a, keep);
            config__fmt_duration(b, sizeof b, raw);
            return config__fail(
                err, errlen, "retention.downsample",
                "its summaries would be kept %s (%s), less than the raw readings (%s)", a, where,
                b);
        }
    }
    return 0;
}

int config__finish_root(gw_config *c, char *err, size_t errlen) {
    int rc = finish_retention(c, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (c->mqtt.tls.ca_file[0] || c->mqtt.tls.cert_file[0] || c->mqtt.tls.key_file[0]) {
        c->mqtt.tls.enabled = true;
    }
    if (!c->mqtt.client_id[0]) {
        int n = snprintf(c->mqtt.client_id, sizeof c->mqtt.client_id, "iotgw-%s", c->gateway_id);
        if (n < 0 || (size_t)n >= sizeof c->mqtt.client_id) {
            return config__fail(
                err, errlen, "mqtt.client_id",
                "the default \"iotgw-<gateway_id>\" is longer than %zu bytes; set it",
                sizeof c->mqtt.client_id - 1);
        }
    }
    return 0;
}
