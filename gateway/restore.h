/* Alert states across a restart. At start (gw_pipeline_start, before the threads run) the
 * alerts an earlier run left raised are read from the database (v_active_alerts) and:
 * - restored: when a rule of that name is still configured, still applies to the series and
 *   still checks that kind, the worker that owns the series starts that rule part in the
 *   raised state (the an_*_restore setters), so a reading that is still abnormal raises
 *   nothing new and a normal one clears it with an ordinary transition; the writer knows it
 *   as active (the retained state topic of its kind);
 * - cleared at start: otherwise (the rule is gone, or no longer covers the series or that
 *   kind), the writer stores and publishes a 'cleared' transition saying why, through the
 *   outbox like any other.
 * Rules are identified by name (the alerts table stores the name): give rules names, since a
 * rule without one is called "rules[<index>]" and a reordered config would change it.
 * A reload (SIGHUP) treats the open alerts of changed or removed rules the same way, from
 * what the workers hold in memory (worker.c, open_alerts.h); its clears say "on reload".
 * docs/history.md ("Active alerts across a restart") is the user's version. */
#ifndef GW_RESTORE_H
#define GW_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline_internal.h"
#include "rule.h"

/* At most this many active alerts are taken over; beyond, they are counted, logged, and stay
 * in v_active_alerts as they are. */
#define GW_RESTORE_MAX 65536

/* gw_alert_ev.why: who made a transition. */
enum {
    GW_WHY_RULE = 0,      /* a rule's state machine (or restored into one) */
    GW_WHY_RULE_GONE,     /* cleared at start: no rule of that name */
    GW_WHY_NO_MATCH,      /* cleared at start: the rule no longer applies to the series */
    GW_WHY_PART_OFF,      /* cleared at start: the rule no longer checks that kind */
    GW_WHY_RELOAD = 0x80, /* flag with the three above: cleared on a reload, not at start */
};

typedef struct gw_restore_item {
    an_alert a;          /* the raised transition as stored; a.rule: index in the start rule set,
                            -1 when cleared at start */
    int64_t id;          /* its row */
    const an_rule *rule; /* restored: the rule in the start rule set; else `gone` */
    uint32_t series;
    uint8_t why;   /* GW_WHY_RULE: restored; otherwise cleared at start, and why */
    char *payload; /* restored: the alert's JSON (the retained state), NULL without memory */
    an_rule *gone; /* cleared at start: a rule that carries the stored name, for the row */
} gw_restore_item;

typedef struct gw_restore {
    gw_restore_item *items;
    size_t n, cap;
    size_t n_cleared;  /* items cleared at start */
    uint64_t too_many; /* active alerts beyond GW_RESTORE_MAX, or without memory */
    uint64_t unusable; /* rows that name no series or an unknown kind, or past max_series */
} gw_restore;

/* The rule an active alert of rule `name`, series s and kind `kind` belongs to in rs: the first
 * one with that name that applies to the series and checks that kind (a trend part only with
 * a limit): GW_WHY_RULE and its index in *index. Otherwise GW_WHY_RULE_GONE, GW_WHY_NO_MATCH or
 * GW_WHY_PART_OFF, and *index is not written. Borrows everything; any thread. */
uint8_t gw__restore_find_rule(const gw_ruleset *rs, const char *name, const gw_series *s,
                              an_kind kind, int *index);

/* Main thread, in gw_pipeline_start before any thread starts (the series registry is then
 * the caller's): reads the active alerts when the database is open, decides for each, and
 * sets p->restore (left NULL when there is nothing). Logs what it did. Returns 0, or a
 * negative ST_E* / -ENOMEM when the database could not be read (logged; nothing restored). */
int gw__restore_load(gw_pipeline *p);

/* Frees what gw__restore_load made. NULL is fine. */
void gw__restore_free(gw_restore *r);

/* Worker thread, at its start: puts a restored item into the state of its rule part (`state`
 * is that part's state, fresh from its init: an_threshold_state for high and low, an_rate_state,
 * ...). Borrows everything. Returns 0, or -EINVAL when the row's figures cannot be used. */
int gw__restore_part(const gw_restore_item *it, void *state);

/* Writer thread, at its start (after the outbox of earlier runs is handed over): records the
 * restored alerts as active (retained state topics) and stores the transitions cleared at
 * start. */
struct writer;
void gw__restore_writer_start(struct writer *w);

/* The message of a transition cleared at start ("high alert on temp of boiler cleared at
 * start: rule hot is no longer in the configuration"), or with GW_WHY_RELOAD on a reload
 * ("... cleared on reload: ..."). Returns buf. */
char *gw__restore_message(const gw_alert_ev *ev, const char *sensor, const char *metric, char *buf,
                          size_t len);

#endif
