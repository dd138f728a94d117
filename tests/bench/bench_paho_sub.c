/* bench_paho_sub: the cheapest subscriber paho MQTTAsync allows, as a reference for the
 * end-to-end benchmark (deploy/bench). It subscribes, counts the messages in the
 * messageArrived callback (freeing them at once) and exits after COUNT messages or when no
 * message arrived for IDLE seconds. Same client library and connect options as the gateway
 * (clean session, no persistence), nothing else.
 *
 *   bench_paho_sub HOST PORT TOPIC QOS COUNT [IDLE_S]
 *
 * Prints "ready" on stdout once the SUBACK arrived, then at the end one line:
 *   "paho-sub: <n> msgs, first <t0> last <t1> (CLOCK_MONOTONIC s), <rate> msgs/s, cpu <c> s"
 * with the rate from the first to the last message and the CPU time (user + system) of the
 * process. Exit status 0 when COUNT messages arrived, 1 otherwise (timeout or error), 2 on
 * usage errors. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

typedef struct sub_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int subscribed; /* 0 waiting, 1 SUBACK, -1 failed */
    bool lost;
    uint64_t count;
    double first;
    double last;
    uint64_t target;
} sub_state;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Paho's receive thread: count and free, nothing else. The mutex is uncontended (the main
 * thread sleeps on the condition variable) and keeps first/last consistent with count. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
    (void)topic_len;
    sub_state *s = ctx;
    double now = mono_s();
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    pthread_mutex_lock(&s->mu);
    if (++s->count == 1) {
        s->first = now;
    }
    s->last = now;
    if (s->count == s->target) {
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static void on_lost(void *ctx, char *cause) {
    sub_state *s = ctx;
    fprintf(stderr, "bench_paho_sub: connection lost: %s\n", cause ? cause : "no reason");
    pthread_mutex_lock(&s->mu);
    s->lost = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void set_subscribed(sub_state *s, int v) {
    pthread_mutex_lock(&s->mu);
    s->subscribed = v;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *r) {
    (void)r;
    set_subscribed(ctx, 2);
}

static void on_fail(void *ctx, MQTTAsync_failureData *r) {
    fprintf(stderr, "bench_paho_sub: failed: %s\n",
            r != NULL && r->message != NULL ? r->message : "no reason given");
    set_subscribed(ctx, -1);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r) {
    (void)r;
    set_subscribed(ctx, 1);
}

/* Waits until s->subscribed leaves `from`, at most `secs`. Returns the new value. */
static int wait_state(sub_state *s, int from, int secs) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += secs;
    pthread_mutex_lock(&s->mu);
    while (s->subscribed == from && pthread_cond_timedwait(&s->cv, &s->mu, &dl) != ETIMEDOUT) {
    }
    int v = s->subscribed;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: bench_paho_sub HOST PORT TOPIC QOS COUNT [IDLE_S]\n");
        return 2;
    }
    char uri[300];
    snprintf(uri, sizeof(uri), "tcp://%s:%s", argv[1], argv[2]);
    const char *topic = argv[3];
    int qos = atoi(argv[4]);
    char *end;
    unsigned long long target = strtoull(argv[5], &end, 10);
    long idle_s = argc == 7 ? strtol(argv[6], NULL, 10) : 30;
    if (*end != '\0' || target == 0 || qos < 0 || qos > 1 || idle_s < 1) {
        fprintf(stderr, "bench_paho_sub: bad arguments\n");
        return 2;
    }
    sub_state s = {.target = target};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    int status = 1;
    char client_id[64];
    snprintf(client_id, sizeof(client_id), "bench-paho-sub-%ld", (long)getpid());
    MQTTAsync client;
    int rc = MQTTAsync_create(&client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "bench_paho_sub: create: %s\n", MQTTAsync_strerror(rc));
        goto out;
    }
    rc = MQTTAsync_setCallbacks(client, &s, on_lost, on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "bench_paho_sub: callbacks: %s\n", MQTTAsync_strerror(rc));
        goto out_client;
    }
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = 30;
    co.cleansession = 1;
    co.onSuccess = on_connect_ok;
    co.onFailure = on_fail;
    co.context = &s;
    rc = MQTTAsync_connect(client, &co);
    if (rc != MQTTASYNC_SUCCESS || wait_state(&s, 0, 10) != 2) {
        fprintf(stderr, "bench_paho_sub: cannot connect to %s\n", uri);
        goto out_client;
    }
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_sub_ok;
    ro.onFailure = on_fail;
    ro.context = &s;
    rc = MQTTAsync_subscribe(client, topic, qos, &ro);
    if (rc != MQTTASYNC_SUCCESS || wait_state(&s, 2, 10) != 1) {
        fprintf(stderr, "bench_paho_sub: cannot subscribe to %s\n", topic);
        goto out_disconnect;
    }
    printf("ready\n");
    fflush(stdout);

    /* Wait for COUNT messages; give up after IDLE_S seconds without progress. */
    uint64_t seen = 0;
    double last_progress = mono_s();
    pthread_mutex_lock(&s.mu);
    while (!s.lost) {
        uint64_t n = s.count;
        if (n >= target) {
            break;
        }
        double now = mono_s();
        if (n != seen) {
            seen = n;
            last_progress = now;
        } else if (now - last_progress > (double)idle_s) {
            break;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 100 * 1000 * 1000;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s.cv, &s.mu, &dl);
    }
    uint64_t n = s.count;
    double span = s.last - s.first, first = s.first, last = s.last;
    pthread_mutex_unlock(&s.mu);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("paho-sub: %llu msgs, first %.6f last %.6f (CLOCK_MONOTONIC s), %.0f msgs/s, "
           "cpu %.2f s\n",
           (unsigned long long)n, first, last, span > 0 ? (double)(n - 1) / span : 0.0, cpu);
    fflush(stdout);
    status = n >= target ? 0 : 1;
out_disconnect:
    MQTTAsync_disconnect(client, NULL);
out_client:
    MQTTAsync_destroy(&client);
out:
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return status;
}
