/* Storage faults: kinds, backoff, the hold, unstored alerts, status JSON. See store_fault.h. */
#include "store_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "decode.h"
#include "pipeline_internal.h"

const char *gw_sf_kind_name(gw_sf_kind k) {
    switch (k) {
    case GW_SF_OK:
        return "ok";
    case GW_SF_FULL:
        return "full";
    case GW_SF_LOCKED:
        return "locked";
    case GW_SF_READONLY:
        return "read-only";
    case GW_SF_UNAVAILABLE:
        return "unavailable";
    case GW_SF_IO:
        return "io";
    }
    return "io";
}

gw_sf_kind gw_sf_classify(int st_code, bool opening) {
    switch (st_code) {
    case ST_OK:
        return GW_SF_OK;
    case ST_EFULL:
        return GW_SF_FULL;
    case ST_EBUSY:
        return GW_SF_LOCKED;
    case ST_EREADONLY:
        return GW_SF_READONLY;
    default:
        return opening ? GW_SF_UNAVAILABLE : GW_SF_IO;
    }
}

int64_t gw_sf_next_delay(int64_t prev) {
    if (prev <= 0) {
        return GW_SF_RETRY_FIRST_MS;
    }
    return prev >= GW_SF_RETRY_MAX_MS / 2 ? GW_SF_RETRY_MAX_MS : prev * 2;
}

/* ---- the hold ---- */

void gw_sf_hold_init(gw_sf_hold *h, size_t max_rows) {
    memset(h, 0, sizeof(*h));
    h->max_rows = max_rows;
}

size_t gw_sf_hold_rows(const gw_sf_hold *h) {
    return h->n_readings + h->n_summaries + h->n_preds;
}

/* Makes room for `want` more elements of `size` bytes (doubling); returns how many fit. */
static size_t reserve(void **arr, size_t *cap, size_t n, size_t want, size_t size) {
    if (n + want <= *cap) {
        return want;
    }
    size_t ncap = *cap > 0 ? *cap : 256;
    while (ncap < n + want) {
        ncap *= 2;
    }
    void *na = realloc(*arr, ncap * size);
    if (na == NULL) {
        return *cap - n;
    }
    *arr = na;
    *cap = ncap;
    return want;
}

/* How many of `want` rows the bound lets in. */
static size_t room(const gw_sf_hold *h, size_t want) {
    size_t rows = gw_sf_hold_rows(h);
    size_t left = rows < h->max_rows ? h->max_rows - rows : 0;
    return want < left ? want : left;
}

size_t gw_sf_hold_add(gw_sf_hold *h, const gw_batch *b, bool readings) {
    size_t shed = 0;
    size_t k = readings ? room(h, b->n_readings) : 0;
    k = k > 0 ? reserve((void **)&h->readings, &h->cap_readings, h->n_readings, k,
                        sizeof(*h->readings))
              : 0;
    if (k > 0) {
        memcpy(h->readings + h->n_readings, b->readings, k * sizeof(*h->readings));
    }
    h->n_readings += k;
    if (readings) {
        h->readings_shed += b->n_readings - k;
        shed += b->n_readings - k;
    }

    k = room(h, b->n_summaries);
    k = k > 0 ? reserve((void **)&h->summaries, &h->cap_summaries, h->n_summaries, k,
                        sizeof(*h->summaries))
              : 0;
    if (k > 0) {
        memcpy(h->summaries + h->n_summaries, b->summaries, k * sizeof(*h->summaries));
    }
    h->n_summaries += k;
    h->summaries_shed += b->n_summaries - k;
    shed += b->n_summaries - k;

    k = room(h, b->n_preds);
    k = k > 0 ? reserve((void **)&h->preds, &h->cap_preds, h->n_preds, k, sizeof(*h->preds)) : 0;
    if (k > 0) {
        memcpy(h->preds + h->n_preds, b->preds, k * sizeof(*h->preds));
    }
    h->n_preds += k;
    h->preds_shed += b->n_preds - k;
    shed += b->n_preds - k;
    return shed;
}

static size_t take(size_t *pos, size_t n, size_t max) {
    size_t k = n - *pos < max ? n - *pos : max;
    *pos += k;
    return k;
}

bool gw_sf_hold_next(const gw_sf_hold *h, gw_sf_cursor *c, gw_batch *b) {
    size_t r0 = c->reading, s0 = c->summary, p0 = c->pred;
    b->n_readings = (uint32_t)take(&c->reading, h->n_readings, GW_BATCH_READINGS);
    b->n_summaries = (uint32_t)take(&c->summary, h->n_summaries, GW_BATCH_SUMMARIES);
    b->n_preds = (uint32_t)take(&c->pred, h->n_preds, GW_BATCH_PREDS);
    b->n_alerts = 0;
    b->tick = GW_TICK_NONE;
    b->tick_ms = 0;
    b->tick_rules = NULL;
    /* An array never used is NULL, and memcpy wants a pointer even for 0 bytes. */
    if (b->n_readings > 0) {
        memcpy(b->readings, h->readings + r0, b->n_readings * sizeof(*b->readings));
    }
    if (b->n_summaries > 0) {
        memcpy(b->summaries, h->summaries + s0, b->n_summaries * sizeof(*b->summaries));
    }
    if (b->n_preds > 0) {
        memcpy(b->preds, h->preds + p0, b->n_preds * sizeof(*b->preds));
    }
    return b->n_readings + b->n_summaries + b->n_preds > 0;
}

static void shrink(void **arr, size_t *cap, size_t keep) {
    if (*cap > keep) {
        free(*arr);
        *arr = NULL;
        *cap = 0;
    }
}

void gw_sf_hold_clear(gw_sf_hold *h, size_t keep_rows) {
    h->n_readings = h->n_summaries = h->n_preds = 0;
    /* Arrays grow by doubling: twice the rows to keep still counts as keeping them. */
    shrink((void **)&h->readings, &h->cap_readings, 2 * keep_rows);
    shrink((void **)&h->summaries, &h->cap_summaries, 2 * keep_rows);
    shrink((void **)&h->preds, &h->cap_preds, 2 * keep_rows);
}

void gw_sf_hold_free(gw_sf_hold *h) {
    free(h->readings);
    free(h->summaries);
    free(h->preds);
    gw_sf_hold_init(h, h->max_rows);
}

/* ---- unstored alerts ---- */

/* Makes room for one more alert; false without memory. */
static bool alerts_grow(gw_sf_alerts *a) {
    if (a->n < a->cap) {
        return true;
    }
    size_t cap = a->cap > 0 ? a->cap * 2 : 16;
    gw_alert_ev *evs = realloc(a->evs, cap * sizeof(*evs));
    if (evs == NULL) {
        return false;
    }
    a->evs = evs;
    gw_sf_alert *items = realloc(a->items, cap * sizeof(*items));
    if (items == NULL) {
        return false;
    }
    a->items = items;
    a->cap = cap;
    return true;
}

int64_t gw_sf_alerts_add(gw_sf_alerts *a, const gw_alert_ev *ev, bool *kept) {
    /* Negative ids never collide with outbox ids, which start at 1. */
    int64_t id = a->next_tmp_id > INT64_MIN + 1 ? a->next_tmp_id - 1 : -1;
    a->next_tmp_id = id;
    *kept = a->n < GW_SF_MAX_ALERTS && alerts_grow(a);
    if (!*kept) {
        a->shed++;
        return id;
    }
    a->evs[a->n] = *ev;
    a->items[a->n] = (gw_sf_alert){.tmp_id = id, .acked = false, .db_id = 0};
    a->n++;
    return id;
}

int64_t gw_sf_alerts_acked(gw_sf_alerts *a, int64_t tmp_id) {
    for (size_t i = 0; i < a->n; i++) {
        if (a->items[i].tmp_id == tmp_id) {
            a->items[i].acked = true;
            return 0;
        }
    }
    for (size_t i = 0; i < a->n_late; i++) {
        if (a->late[i].tmp_id == tmp_id) {
            int64_t db_id = a->late[i].db_id;
            a->late[i].tmp_id = 0;
            return db_id;
        }
    }
    return 0;
}

void gw_sf_alerts_written(gw_sf_alerts *a, int64_t tmp_id, int64_t db_id) {
    const size_t n = sizeof(a->late) / sizeof(a->late[0]);
    a->late[a->late_next].tmp_id = tmp_id;
    a->late[a->late_next].db_id = db_id;
    a->late_next = (a->late_next + 1) % n;
    if (a->n_late < n) {
        a->n_late++;
    }
}

void gw_sf_alerts_clear(gw_sf_alerts *a) {
    a->n = 0;
}

void gw_sf_alerts_free(gw_sf_alerts *a) {
    free(a->evs);
    free(a->items);
    a->evs = NULL;
    a->items = NULL;
    a->n = a->cap = 0;
}

/* ---- status ---- */

int gw_sf_status_json(const gw_sf_status *st, char *buf, size_t len) {
    int n;
    if (st->kind == GW_SF_OK) {
        n = snprintf(buf, len, "{\"state\":\"ok\"}");
        return n >= 0 && (size_t)n < len ? n : -1;
    }
    n = snprintf(buf, len,
                 "{\"state\":\"fault\",\"fault\":\"%s\",\"error\":", gw_sf_kind_name(st->kind));
    if (n < 0 || (size_t)n >= len) {
        return -1;
    }
    n = gw_json_str(buf, len, (size_t)n, st->error);
    if (n < 0) {
        return -1;
    }
    char since[32];
    int k =
        snprintf(buf + n, len - (size_t)n,
                 ",\"since\":\"%s\",\"readings_held\":%llu,\"readings_shed\":%llu,"
                 "\"alerts_unstored\":%llu}",
                 gw_format_rfc3339(st->since_ms, since, sizeof(since)),
                 (unsigned long long)st->readings_held, (unsigned long long)st->readings_shed_now,
                 (unsigned long long)st->alerts_unstored);
    if (k < 0 || (size_t)k >= len - (size_t)n) {
        return -1;
    }
    return n + k;
}
