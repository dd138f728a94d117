/* `iotgw simulate`: publishes synthetic sensor readings to an MQTT broker. The pure signal
 * generator and the option parser are declared in simulate.h; the publishing loop (paho
 * MQTTAsync, absolute-deadline pacing, bounded in-flight) is file-static below. */
#include "simulate.h"

#include "clock.h"
#include "commands.h"
#include "paho.h"
#include "queue.h" /* GW_EINVAL */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- publishing ------------------------------------------------------------------- */

#define SIM_INFLIGHT          256          /* QoS1 messages awaiting a PUBACK */
#define SIM_BUFFERED          1000         /* publishes queued inside paho, not yet written */
#define SIM_PROGRESS_NS       5000000000LL /* progress line period */
#define SIM_BEHIND_NS         1000000000LL /* further behind than this: skip, do not burst */
#define SIM_CONNECT_TIMEOUT_S 5
#define SIM_DRAIN_MS          5000 /* at the end, time for queued messages to reach the broker */

static volatile sig_atomic_t stop_signals;
static const gw_paho *paho; /* libpaho-mqtt3a: the simulator never uses TLS */

static void on_stop_signal(int sig) {
    (void)sig;
    stop_signals = stop_signals + 1;
}

typedef struct sim_ctx {
    const gw_sim_opts *o;
    MQTTAsync client;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on connect/disconnect completion and on each PUBACK */
    /* Under mu: */
    int connect_done;
    int connect_code;
    char connect_msg[160];
    int disconnect_done;
    long outstanding; /* QoS1 messages sent and not yet acknowledged */
    uint64_t nacked;  /* QoS1 messages whose delivery failed */
    uint64_t losses, connects;
    /* Main thread only: */
    uint64_t sent, dropped, waits;
} sim_ctx;

static const char *usage_text =
    "Usage: iotgw simulate [options]\n"
    "Publish synthetic sensor readings (with drifts, spikes, dips and dropouts) to an MQTT\n"
    "broker, for demos and load tests.\n"
    "\n"
    "  -H, --host HOST       broker host (default 127.0.0.1)\n"
    "  -p, --port PORT       broker port (default 1883)\n"
    "      --sensors N       number of sensors, named sim-001.. (default 5, at most 10000)\n"
    "      --rate R          readings per second per sensor and metric (default 2)\n"
    "      --metrics LIST    comma list of temperature,humidity,vibration,pressure\n"
    "                        (default temperature,humidity,vibration)\n"
    "      --prefix P        topic prefix (default sensors)\n"
    "      --format F        plain: one number per message on <prefix>/<sensor>/<metric>;\n"
    "                        json: one object per sensor and tick on <prefix>/<sensor>,\n"
    "                        {\"ts\":<epoch ms>,\"temperature\":21.3,...} (default plain)\n"
    "      --qos Q           0 or 1 (default 0)\n"
    "      --duration S      stop after S seconds (default: run until SIGINT/SIGTERM)\n"
    "      --count N         stop after N messages\n"
    "      --seed S          seed of the signals; the same seed gives the same values\n"
    "                        (default: from the clock, printed at start)\n"
    "      --faults on|off   spikes, temperature drifts, humidity dips and dropouts\n"
    "                        (default on; sensor 1 shows a fault within 5 s)\n"
    "  -q, --quiet           no start, progress and summary lines\n"
    "  -h, --help            this help\n"
    "\n"
    "Normal levels: temperature 21 degC, humidity 45 %RH, vibration 2 mm/s, pressure 1.2 bar.\n"
    "Exit status: 0 done or stopped by a signal, 1 broker unreachable or publish error,\n"
    "2 bad options.\n";

static void on_connect_ok(void *context, MQTTAsync_successData *resp) {
    (void)resp;
    sim_ctx *c = context;
    pthread_mutex_lock(&c->mu);
    c->connect_done = 1;
    c->connect_code = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* MQTT 3.1.1 CONNACK return codes 1-5. */
static const char *const connack_reasons[] = {
    NULL,
    "connection refused: unacceptable protocol version",
    "connection refused: identifier rejected",
    "connection refused: server unavailable",
    "connection refused: bad user name or password",
    "connection refused: not authorized",
};

static void on_connect_fail(void *context, MQTTAsync_failureData *resp) {
    sim_ctx *c = context;
    pthread_mutex_lock(&c->mu);
    c->connect_done = 1;
    c->connect_code = resp ? resp->code : MQTTASYNC_FAILURE;
    if (c->connect_code == 0) {
        c->connect_code = MQTTASYNC_FAILURE;
    }
    const char *why = NULL;
    if (c->connect_code > 0 && c->connect_code <= 5) {
        why = connack_reasons[c->connect_code];
    } else if (resp != NULL && resp->message != NULL) {
        why = resp->message;
    }
    if (why == NULL) {
        why = paho->strerror(c->connect_code);
    }
    snprintf(c->connect_msg, sizeof(c->connect_msg), "%s", why ? why : "unknown error");
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Called by paho on every successful connect, including automatic reconnects. */
static void on_connected(void *context, char *cause) {
    (void)cause;
    sim_ctx *c = context;
    pthread_mutex_lock(&c->mu);
    c->connects++;
    pthread_mutex_unlock(&c->mu);
}

static void on_connection_lost(void *context, char *cause) {
    (void)cause;
    sim_ctx *c = context;
    pthread_mutex_lock(&c->mu);
    c->losses++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Nothing is subscribed; paho insists on the callback. */
static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg) {
    (void)context;
    (void)topic_len;
    paho->freeMessage(&msg);
    paho->free(topic);
    return 1;
}

static void publish_done(sim_ctx *c, int failed) {
    pthread_mutex_lock(&c->mu);
    if (c->outstanding > 0) {
        c->outstanding--;
    }
    c->nacked += failed ? 1 : 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* QoS1 outcome: PUBACK received, or failed (paho calls this for messages in flight when the
 * connection drops). */
static void on_publish_ok(void *context, MQTTAsync_successData *resp) {
    (void)resp;
    publish_done(context, 0);
}

static void on_publish_fail(void *context, MQTTAsync_failureData *resp) {
    (void)resp;
    publish_done(context, 1);
}

static void on_disconnect_ok(void *context, MQTTAsync_successData *resp) {
    (void)resp;
    sim_ctx *c = context;
    pthread_mutex_lock(&c->mu);
    c->disconnect_done = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect_fail(void *context, MQTTAsync_failureData *resp) {
    on_disconnect_ok(context, (MQTTAsync_successData *)(void *)resp);
}

/* Waits on c->cv for up to ms milliseconds; the caller holds c->mu. */
static void wait_ms(sim_ctx *c, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

static void sleep_until_ns(int64_t mono_ns) {
    struct timespec ts = {mono_ns / 1000000000, mono_ns % 1000000000};
    /* EINTR is fine: the caller re-checks the stop flag and the schedule. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Publishes still queued in paho or awaiting a PUBACK, or -1 when unknown. */
static long pending_count(MQTTAsync client) {
    MQTTAsync_token *tokens = NULL;
    if (paho->getPendingTokens(client, &tokens) != MQTTASYNC_SUCCESS) {
        return -1;
    }
    long n = 0;
    if (tokens != NULL) {
        while (tokens[n] != -1) {
            n++;
        }
        paho->free(tokens);
    }
    return n;
}

/* Returns 0 when published (or dropped while disconnected), 1 when a stop was requested,
 * -1 on an error that ends the run. Borrows topic and payload (paho copies them). */
static int publish(sim_ctx *c, const char *topic, const char *payload, int len) {
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = len;
    msg.qos = c->o->qos;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_publish_ok;
    ro.onFailure = on_publish_fail;
    ro.context = c;
    int qos1 = c->o->qos > 0;
    for (;;) {
        if (stop_signals) {
            return 1;
        }
        if (qos1) {
            pthread_mutex_lock(&c->mu);
            if (c->outstanding >= SIM_INFLIGHT) {
                /* Bounded in flight: wait for PUBACKs. Should a callback never come (a lost
                 * connection may drop them), take paho's own count after a quiet spell. */
                long before = c->outstanding;
                wait_ms(c, 100);
                if (c->outstanding == before) {
                    pthread_mutex_unlock(&c->mu);
                    long n = pending_count(c->client);
                    pthread_mutex_lock(&c->mu);
                    if (n >= 0 && n < c->outstanding) {
                        c->outstanding = n;
                    }
                }
                pthread_mutex_unlock(&c->mu);
                c->waits++;
                continue;
            }
            c->outstanding++;
            pthread_mutex_unlock(&c->mu);
        }
        int rc = paho->sendMessage(c->client, topic, &msg, qos1 ? &ro : NULL);
        if (rc == MQTTASYNC_SUCCESS) {
            c->sent++;
            return 0;
        }
        if (qos1) {
            pthread_mutex_lock(&c->mu);
            c->outstanding--;
            pthread_mutex_unlock(&c->mu);
        }
        if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES) {
            /* paho's queue is full: the socket is slower than our schedule. Wait for room. */
            pthread_mutex_lock(&c->mu);
            wait_ms(c, 1);
            pthread_mutex_unlock(&c->mu);
            c->waits++;
            continue;
        }
        if (rc == MQTTASYNC_DISCONNECTED) {
            c->dropped++;
            return 0;
        }
        const char *why = paho->strerror(rc);
        fprintf(stderr, "simulate: publish to %s failed: %s (%d)\n", topic, why ? why : "error",
                rc);
        return -1;
    }
}

/* Publishes sample k of every sensor. Returns 0, 1 to stop (count reached or signal), -1. */
static int publish_tick(sim_ctx *c, const gw_sim_gen *g, uint64_t k) {
    const gw_sim_opts *o = c->o;
    char topic[GW_SIM_PREFIX_MAX + 64];
    char payload[256];
    int64_t ts = gw_now_ms();
    for (int s = 0; s < o->sensors; s++) {
        gw_sim_reading r[GW_SIM_NMETRICS];
        int present = 1;
        for (int i = 0; i < o->nmetrics; i++) {
            gw_sim_sample(g, s, o->metrics[i], k, &r[i]);
            present = present && r[i].present;
        }
        if (!present) {
            continue; /* a dropout silences the whole sensor */
        }
        int nmsg = o->json ? 1 : o->nmetrics;
        for (int j = 0; j < nmsg; j++) {
            int n;
            if (o->json) {
                snprintf(topic, sizeof(topic), "%s/sim-%03d", o->prefix, s + 1);
                n = snprintf(payload, sizeof(payload), "{\"ts\":%" PRId64, ts);
                for (int i = 0; i < o->nmetrics; i++) {
                    const gw_sim_metric_info *mi = gw_sim_metric_info_get(o->metrics[i]);
                    n += snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"%s\":%.*f",
                                  mi->name, mi->decimals, r[i].value);
                }
                n += snprintf(payload + n, sizeof(payload) - (size_t)n, "}");
            } else {
                const gw_sim_metric_info *mi = gw_sim_metric_info_get(o->metrics[j]);
                snprintf(topic, sizeof(topic), "%s/sim-%03d/%s", o->prefix, s + 1, mi->name);
                n = snprintf(payload, sizeof(payload), "%.*f", mi->decimals, r[j].value);
            }
            int rc = publish(c, topic, payload, n);
            if (rc != 0) {
                return rc;
            }
            if (o->count >= 0 && c->sent >= (uint64_t)o->count) {
                return 1;
            }
        }
    }
    return 0;
}

/* Reports connection changes seen by the callbacks; main thread. */
static void report_connection(sim_ctx *c, uint64_t *losses_seen, uint64_t *connects_seen) {
    pthread_mutex_lock(&c->mu);
    uint64_t losses = c->losses;
    uint64_t connects = c->connects;
    pthread_mutex_unlock(&c->mu);
    if (losses != *losses_seen) {
        fprintf(stderr,
                "simulate: connection to %s:%d lost, reconnecting; readings are "
                "dropped meanwhile\n",
                c->o->host, c->o->port);
    }
    if (connects != *connects_seen && losses > 0) {
        fprintf(stderr, "simulate: reconnected to %s:%d\n", c->o->host, c->o->port);
    }
    if (connects != *connects_seen && c->o->qos > 0) {
        /* paho may forget the PUBACK callbacks of messages in flight when the connection
         * dropped; take its own count so that the in-flight window does not shrink. */
        long n = pending_count(c->client);
        pthread_mutex_lock(&c->mu);
        if (n >= 0 && n < c->outstanding) {
            c->outstanding = n;
        }
        pthread_mutex_unlock(&c->mu);
    }
    *losses_seen = losses;
    *connects_seen = connects;
}

/* The paced loop: tick k is due at start + k / rate (absolute deadlines, so that sleeping
 * late does not slow the average rate). Returns 0, or -1 after a fatal publish error. */
static int run_loop(sim_ctx *c, const gw_sim_gen *g, int64_t start) {
    const gw_sim_opts *o = c->o;
    int64_t end = o->duration_s > 0 ? start + (int64_t)(o->duration_s * 1e9) : INT64_MAX;
    int64_t base = start, last_report = start, next_report = start + SIM_PROGRESS_NS;
    uint64_t base_k = 0, k = 0, last_sent = 0, losses_seen = 0, connects_seen = 0;
    report_connection(c, &losses_seen, &connects_seen);
    while (!stop_signals) {
        int64_t due = base + (int64_t)((double)(k - base_k) * 1e9 / o->rate);
        if (due >= end) {
            break;
        }
        int64_t now = gw_mono_ns();
        report_connection(c, &losses_seen, &connects_seen);
        if (now >= next_report) {
            if (!o->quiet) {
                double secs = (double)(now - last_report) / 1e9;
                fprintf(stderr, "simulate: %" PRIu64 " messages sent (%.1f msg/s)\n", c->sent,
                        (double)(c->sent - last_sent) / secs);
            }
            last_report = now;
            last_sent = c->sent;
            next_report = now + SIM_PROGRESS_NS;
        }
        if (now < due) {
            sleep_until_ns(due < next_report ? due : next_report);
            continue;
        }
        if (now - due > SIM_BEHIND_NS) {
            /* Far behind (a stalled broker, a suspended process): restart the schedule
             * instead of bursting to catch up. */
            base = now;
            base_k = k;
        }
        int rc = publish_tick(c, g, k);
        k++;
        if (rc != 0) {
            return rc < 0 ? -1 : 0;
        }
    }
    return 0;
}

/* Lets queued messages reach the broker (and QoS1 acknowledgements come back) before the
 * disconnect; a second signal cuts it short. */
static void drain(sim_ctx *c) {
    int64_t deadline = gw_mono_ms() + SIM_DRAIN_MS;
    while (stop_signals < 2 && gw_mono_ms() < deadline && paho->isConnected(c->client)) {
        long n = pending_count(c->client);
        if (n <= 0) {
            break;
        }
        sleep_until_ns(gw_mono_ns() + 10000000);
    }
}

static void disconnect(sim_ctx *c) {
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    d.onSuccess = on_disconnect_ok;
    d.onFailure = on_disconnect_fail;
    d.context = c;
    if (paho->disconnect(c->client, &d) != MQTTASYNC_SUCCESS) {
        return;
    }
    int64_t deadline = gw_mono_ms() + 3000;
    pthread_mutex_lock(&c->mu);
    while (!c->disconnect_done && gw_mono_ms() < deadline) {
        wait_ms(c, 50);
    }
    pthread_mutex_unlock(&c->mu);
}

/* paho reports only "TCP/TLS connect failure"; one plain TCP attempt tells the user why
 * (unknown host, connection refused, no route). Writes nothing when TCP itself works. */
static void probe_tcp(const char *host, int port, char *why, size_t len) {
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(why, len, "%s", gai_strerror(rc));
        return;
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                socklen_t sl = sizeof(err);
                if (poll(&pfd, 1, 3000) <= 0) {
                    err = ETIMEDOUT;
                } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0) {
                    err = errno;
                }
            }
        }
        close(fd);
        if (err == 0) {
            break;
        }
    }
    freeaddrinfo(res);
    if (err != 0) {
        snprintf(why, len, "%s", strerror(err));
    }
}

/* Connects and waits for the outcome. Returns 0 when connected, 1 when stopped by a signal
 * meanwhile, -1 on failure (message printed). */
static int connect_broker(sim_ctx *c) {
    const gw_sim_opts *o = c->o;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = 30;
    co.cleansession = 1;
    co.maxInflight = SIM_INFLIGHT;
    co.connectTimeout = SIM_CONNECT_TIMEOUT_S;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 10;
    co.onSuccess = on_connect_ok;
    co.onFailure = on_connect_fail;
    co.context = c;
    int rc = paho->connect(c->client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        const char *why = paho->strerror(rc);
        fprintf(stderr, "simulate: cannot connect to %s:%d: %s\n", o->host, o->port,
                why ? why : "error");
        return -1;
    }
    int64_t deadline = gw_mono_ms() + (SIM_CONNECT_TIMEOUT_S + 3) * 1000;
    pthread_mutex_lock(&c->mu);
    while (!c->connect_done && !stop_signals && gw_mono_ms() < deadline) {
        wait_ms(c, 100);
    }
    int done = c->connect_done, code = c->connect_code;
    pthread_mutex_unlock(&c->mu);
    if (!done) {
        if (stop_signals) {
            return 1;
        }
        fprintf(stderr, "simulate: cannot connect to %s:%d: timed out\n", o->host, o->port);
        return -1;
    }
    if (code != 0) {
        if (code < 0) {
            probe_tcp(o->host, o->port, c->connect_msg, sizeof(c->connect_msg));
        }
        fprintf(stderr, "simulate: cannot connect to %s:%d: %s\n", o->host, o->port,
                c->connect_msg);
        return -1;
    }
    return 0;
}

int gw_cmd_simulate(int argc, char **argv) {
    gw_sim_opts o;
    char err[256];
    if (gw_sim_parse_args(argc, argv, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "simulate: %s\nTry 'iotgw simulate --help'.\n", err);
        return 2;
    }
    if (o.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!o.seed_set) {
        /* Short enough to retype from the start line. */
        o.seed = ((uint64_t)gw_mono_ns() ^ ((uint64_t)getpid() << 20)) % 1000000000ULL;
    }
    gw_sim_gen g;
    if (gw_sim_gen_init(&g, o.seed, o.sensors, o.rate, o.faults) != 0) {
        fprintf(stderr, "simulate: bad sensors or rate\n");
        return 2;
    }

    char perr[256];
    paho = gw_paho_load(false, perr, sizeof(perr));
    if (paho == NULL) {
        fprintf(stderr, "simulate: %s\n", perr);
        return 1;
    }

    int status = 1;
    sim_ctx c;
    memset(&c, 0, sizeof(c));
    c.o = &o;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        fprintf(stderr, "simulate: out of memory\n");
        goto fail_condattr;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&c.cv, &ca) != 0) {
        fprintf(stderr, "simulate: out of memory\n");
        goto fail_cond;
    }
    if (pthread_mutex_init(&c.mu, NULL) != 0) {
        fprintf(stderr, "simulate: out of memory\n");
        goto fail_mutex;
    }

    /* Signals go to this thread only: paho's threads, started by the connect below, inherit
     * the blocked mask. A signal arriving meanwhile stays pending until the unblock. */
    stop_signals = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigset_t stopset, oldmask;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGINT);
    sigaddset(&stopset, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopset, &oldmask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    char uri[GW_SIM_HOST_MAX + 32], client_id[64];
    int v6 = strchr(o.host, ':') != NULL && o.host[0] != '[';
    snprintf(uri, sizeof(uri), v6 ? "tcp://[%s]:%d" : "tcp://%s:%d", o.host, o.port);
    snprintf(client_id, sizeof(client_id), "iotgw-sim-%d-%" PRIx64, (int)getpid(),
             (uint64_t)gw_mono_ns() & 0xffffff);
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer;
    cro.sendWhileDisconnected = 0; /* offline readings are dropped and counted, not queued */
    cro.maxBufferedMessages = SIM_BUFFERED;
    cro.MQTTVersion = MQTTVERSION_3_1_1;
    int rc =
        paho->createWithOptions(&c.client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &cro);
    if (rc != MQTTASYNC_SUCCESS) {
        const char *why = paho->strerror(rc);
        fprintf(stderr, "simulate: cannot connect to %s:%d: %s\n", o.host, o.port,
                why ? why : "cannot create the client");
        goto fail_create;
    }
    if (paho->setCallbacks(c.client, &c, on_connection_lost, on_message, NULL) !=
            MQTTASYNC_SUCCESS ||
        paho->setConnected(c.client, &c, on_connected) != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "simulate: cannot set the MQTT callbacks\n");
        goto fail_callbacks;
    }
    rc = connect_broker(&c);
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    if (rc != 0) {
        status = rc > 0 ? 0 : 1;
        goto fail_connect;
    }

    if (!o.quiet) {
        double per_s = o.rate * o.sensors * (o.json ? 1 : o.nmetrics);
        fprintf(stderr,
                "simulate: publishing to %s:%d under %s/, %d sensors x %d metrics at %g/s "
                "(%g msg/s, %s, qos %d, faults %s, seed %" PRIu64 ")\n",
                o.host, o.port, o.prefix, o.sensors, o.nmetrics, o.rate, per_s,
                o.json ? "json" : "plain", o.qos, o.faults ? "on" : "off", o.seed);
    }
    int64_t start = gw_mono_ns();
    status = run_loop(&c, &g, start) == 0 ? 0 : 1;
    drain(&c);
    double secs = (double)(gw_mono_ns() - start) / 1e9;
    long unacked = o.qos > 0 ? pending_count(c.client) : 0;
    disconnect(&c);
    pthread_mutex_lock(&c.mu);
    uint64_t nacked = c.nacked;
    pthread_mutex_unlock(&c.mu);
    if (!o.quiet) {
        char extra[160] = "";
        int n = 0;
        if (c.dropped > 0) {
            n += snprintf(extra + n, sizeof(extra) - (size_t)n,
                          ", %" PRIu64 " dropped while disconnected", c.dropped);
        }
        if (o.qos > 0 && (unacked > 0 || nacked > 0)) {
            n += snprintf(extra + n, sizeof(extra) - (size_t)n, ", %" PRIu64 " not acknowledged",
                          nacked + (uint64_t)(unacked > 0 ? unacked : 0));
        }
        if (c.waits > 0) {
            snprintf(extra + n, sizeof(extra) - (size_t)n,
                     ", waited %" PRIu64 " times for the broker", c.waits);
        }
        fprintf(stderr, "simulate: done, %" PRIu64 " messages sent in %.1f s (%.1f msg/s)%s\n",
                c.sent, secs, secs > 0 ? (double)c.sent / secs : 0.0, extra);
    }

fail_connect:
fail_callbacks:
    paho->destroy(&c.client);
fail_create:
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    pthread_mutex_destroy(&c.mu);
fail_mutex:
    pthread_cond_destroy(&c.cv);
fail_cond:
    pthread_condattr_destroy(&ca);
fail_condattr:
    return status;
}
