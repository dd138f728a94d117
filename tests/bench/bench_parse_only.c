/* bench_parse_only: the floor of what decoding a capture costs, for the replay benchmark
 * (deploy/bench). Reads a `mosquitto_sub -v` capture (topic, one space, payload per line) and
 * does only what any decoder must: split the line, map the topic to (sensor, metric) with
 * gw_topic_map_match, parse the payload with cJSON_ParseWithLengthOpts, walk its numeric
 * fields and free the tree. No pipeline, no threads, no storage.
 *
 *   bench_parse_only FILE [PASSES]
 *
 * Prints one line: "parse-only: <messages> msgs, <numbers> numbers, <s> s, <rate> msgs/s"
 * (the best of PASSES passes, default 3; each pass rereads the file from the page cache as
 * `iotgw replay` does). Exit status 0, 1 on I/O errors, 2 on usage errors. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "topic.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Counts the finite numbers of a tree the way the decoder finds metrics: every number, nested
 * objects included. The sum keeps the compiler from dropping the walk. */
static uint64_t walk(const cJSON *item, double *sum) {
    if (cJSON_IsNumber(item)) {
        *sum += item->valuedouble;
        return 1;
    }
    uint64_t n = 0;
    if (cJSON_IsObject(item)) {
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            n += walk(c, sum);
        }
    }
    return n;
}

typedef struct pass_result {
    uint64_t messages;
    uint64_t numbers;
    uint64_t unmatched;
    uint64_t malformed;
    double sum;
    double secs;
} pass_result;

static int one_pass(const char *path, const gw_topic_map *map, pass_result *r) {
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "bench_parse_only: %s: %s\n", path, strerror(errno));
        return -1;
    }
    memset(r, 0, sizeof(*r));
    char sensor[GW_NAME_MAX + 1], metric[GW_NAME_MAX + 1];
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    double t0 = now_s();
    while ((len = getline(&line, &cap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            len--;
        }
        char *sp = len > 0 ? memchr(line, ' ', (size_t)len) : NULL;
        if (sp == NULL) {
            continue;
        }
        r->messages++;
        size_t tlen = (size_t)(sp - line);
        if (gw_topic_map_match(map, line, tlen, sensor, metric) != 0) {
            r->unmatched++;
            continue;
        }
        const char *payload = sp + 1;
        size_t plen = (size_t)len - tlen - 1;
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(payload, plen, &end, 0);
        if (root == NULL) {
            r->malformed++;
            continue;
        }
        r->numbers += walk(root, &r->sum);
        cJSON_Delete(root);
    }
    r->secs = now_s() - t0;
    int rc = ferror(in) ? -1 : 0;
    if (rc != 0) {
        fprintf(stderr, "bench_parse_only: %s: read error\n", path);
    }
    free(line);
    fclose(in);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_parse_only FILE [PASSES]\n");
        return 2;
    }
    long passes = 3;
    if (argc == 3) {
        char *end;
        passes = strtol(argv[2], &end, 10);
        if (*end != '\0' || passes < 1 || passes > 100) {
            fprintf(stderr, "bench_parse_only: PASSES: expected 1..100, got '%s'\n", argv[2]);
            return 2;
        }
    }
    /* The subscriptions of the benchmark configs: JSON objects on sensors/<id>, plain
     * numbers on sensors/<id>/<metric>. */
    gw_topic_map *map = NULL;
    char err[256];
    if (gw_topic_map_new(&map) != 0) {
        fprintf(stderr, "bench_parse_only: out of memory\n");
        return 1;
    }
    if (gw_topic_map_add(map, "sensors/+/+", "{1}", "{2}", err, sizeof(err)) != 0 ||
        gw_topic_map_add(map, "sensors/+", "{1}", "", err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_parse_only: topic map: %s\n", err);
        gw_topic_map_free(map);
        return 1;
    }
    int status = 0;
    pass_result best = {0};
    for (long i = 0; i < passes; i++) {
        pass_result r;
        if (one_pass(argv[1], map, &r) != 0) {
            status = 1;
            break;
        }
        if (i == 0 || r.secs < best.secs) {
            best = r;
        }
    }
    if (status == 0) {
        printf("parse-only: %llu msgs, %llu numbers, %llu unmatched, %llu malformed, %.3f s, "
               "%.0f msgs/s (checksum %g)\n",
               (unsigned long long)best.messages, (unsigned long long)best.numbers,
               (unsigned long long)best.unmatched, (unsigned long long)best.malformed, best.secs,
               best.secs > 0 ? (double)best.messages / best.secs : 0.0, best.sum);
    }
    gw_topic_map_free(map);
    return status;
}
