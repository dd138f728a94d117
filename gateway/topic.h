/* Topic map: configured subscriptions with MQTT wildcards and positional templates.
 * `sensors/+/+` with sensor "{1}" and metric "{2}" maps `sensors/pump1/temp` to
 * (pump1, temp). {N} is the N-th wildcard level of the filter: the `+` levels in order,
 * then each level a trailing `#` covers (with `a/+/b/#`, {1} is topic level 2, {2} level 4,
 * {3} level 5); {0} is the whole topic. `#` may only be the last level.
 * A template may mix text and placeholders ("{1}-{2}"). An empty metric template means the
 * payload names the metrics (JSON object fields, SenML names).
 *
 * Built once from the config, then read-only: gw_topic_map_match is thread-safe. */
#ifndef GW_TOPIC_H
#define GW_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define GW_NAME_MAX       128 /* longest sensor or metric name in bytes, without the NUL */
#define GW_TOPIC_MAX_SUBS 64

typedef struct gw_topic_map gw_topic_map;

/* Allocates an empty map. Returns 0, or -ENOMEM. */
int gw_topic_map_new(gw_topic_map **out);
void gw_topic_map_free(gw_topic_map *m);

/* Adds a subscription. Borrows the strings (copies them). On a bad filter or template returns
 * -EINVAL and writes a one-line reason into err (e.g. "'#' must be the last level",
 * "placeholder {3} but the filter has 2 levels"). */
int gw_topic_map_add(gw_topic_map *m, const char *filter, const char *sensor_tpl,
                     const char *metric_tpl, char *err, size_t errlen);

/* Number of subscriptions and the filter of the i-th (for subscribing). */
size_t gw_topic_map_count(const gw_topic_map *m);
const char *gw_topic_map_filter(const gw_topic_map *m, size_t i);

/* Matches a received topic (not NUL-terminated) against the subscriptions in order; the first
 * match wins. A `$share/group/` prefix on a filter is ignored for matching. Writes the sensor
 * and metric names (NUL-terminated, buffers of GW_NAME_MAX + 1 bytes; metric "" when the
 * template is empty). Returns 0, -ENOENT when no subscription matches, -ENAMETOOLONG when an
 * expanded name is longer than GW_NAME_MAX, -EINVAL when an expanded sensor name is empty. */
int gw_topic_map_match(const gw_topic_map *m, const char *topic, size_t topic_len, char *sensor,
                       char *metric);

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. NUL bytes
 * are valid UTF-8; callers that need C strings check for them. Thread-safe. */
bool gw_utf8_valid(const unsigned char *s, size_t n);

#endif
