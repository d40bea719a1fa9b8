/* Screening of incoming payments in the node; see screening.h. */
#include "screening.h"

#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "screen_list.h"
#include "screen_run.h"

#define SCREENING_RUNNING_MAX 4    /* programs at once */
#define SCREENING_PENDING_MAX 4096 /* held this turn, or verdicts waiting, before a turn */

/* One payment, by its key, with a verdict once there is one. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char uetr[CORRIDOR_UETR_LEN + 1];
    screen_verdict_t verdict;
} screened_t;

struct screening {
    char node[CORRIDOR_NAME_LEN_MAX + 1];   /* for log lines */
    screen_list_t *list;                    /* NULL: no list */
    screen_runner_t *runner;                /* NULL: no program */
    screened_t held[SCREENING_PENDING_MAX]; /* held in the open transaction */
    size_t held_count;
    screened_t verdicts[SCREENING_PENDING_MAX]; /* verdicts for the next transaction */
    size_t verdict_count;
    bool overflowed; /* more than fit: screened again at the next start */
};

int screening_open(const config_t *config, screening_t **out, char *err, size_t err_size)
{
    *out = NULL;
    screening_t *sc = calloc(1, sizeof *sc);
    if (sc == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    snprintf(sc->node, sizeof sc->node, "%s", config->name);
    if (config->screen_list[0] != '\0') {
        char why[256] = "";
        sc->list = screen_list_load(config->screen_list, why, sizeof why);
        if (sc->list == NULL) {
            snprintf(err, err_size, "screen_list %s: %s", config->screen_list, why);
            screening_close(&sc);
            return -1;
        }
        log_event(config->name, NULL, NULL, "screening list %s: %zu entries", config->screen_list,
                  screen_list_count(sc->list));
    }
    if (config->screen_program[0] != '\0') {
        sc->runner = screen_runner_new(config->screen_program, config_screen_timeout_ms(config),
                                       SCREENING_RUNNING_MAX);
        if (sc->runner == NULL) {
            snprintf(err, err_size, "out of memory");
            screening_close(&sc);
            return -1;
        }
        log_event(config->name, NULL, NULL,
                  "screening program %s: incoming payments are held for it (%u ms to answer)",
                  config->screen_program, config_screen_timeout_ms(config));
    }
    *out = sc;
    return 0;
}

void screening_close(screening_t **self_p)
{
    screening_t *sc = *self_p;
    if (sc == NULL) {
        return;
    }
    screen_runner_destroy(&sc->runner);
    screen_list_destroy(&sc->list);
    free(sc);
    *self_p = NULL;
}

channel_screen_t screening_check(void *arg, const settlement_t *s)
{
    screening_t *sc = arg;
    const char *field = NULL;
    if (sc->list != NULL && screen_list_match(sc->list, s, &field)) {
        log_event(sc->node, s->peer, s->uetr, "screening list: the %s is listed",
                  field != NULL ? field : "party");
        return CHANNEL_SCREEN_LISTED;
    }
    return sc->runner != NULL ? CHANNEL_SCREEN_PROGRAM : CHANNEL_SCREEN_PASS;
}

void screening_on_held(void *arg, const char *peer, const char *uetr)
{
    screening_t *sc = arg;
    if (sc->held_count == SCREENING_PENDING_MAX) {
        sc->overflowed = true; /* it stays held for the program: screened at the next start */
        return;
    }
    screened_t *h = &sc->held[sc->held_count++];
    snprintf(h->peer, sizeof h->peer, "%s", peer);
    snprintf(h->uetr, sizeof h->uetr, "%s", uetr);
}

/* The program's verdict: kept for the next transaction. */
static void take_verdict(void *arg, const char *peer, const char *uetr, const screen_verdict_t *v)
{
    screening_t *sc = arg;
    log_event(sc->node, peer, uetr, "screening program: %s", v->why);
    if (sc->verdict_count == SCREENING_PENDING_MAX) {
        sc->overflowed = true;
        return;
    }
    screened_t *s = &sc->verdicts[sc->verdict_count++];
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    snprintf(s->uetr, sizeof s->uetr, "%s", uetr);
    s->verdict = *v;
}

/* Starts the program for one held payment (its settlement read back from the books). */
static void start(screening_t *sc, ledger_t *ledger, const char *peer, const char *uetr,
                  int64_t now_ms)
{
    settlement_t s;
    ledger_outcome_t o;
    char *input = NULL;
    if (ledger_find(ledger, peer, uetr, &s, &o) != LEDGER_OK || o.status != STATUS_HELD ||
        strcmp(o.hold, LEDGER_HOLD_SCREENING) != 0) {
        return;
    }
    input = screen_settlement_json(&s);
    if (input == NULL || screen_start(sc->runner, peer, uetr, input, now_ms) != 0) {
        /* it cannot run: held for a person, as a failure of the program is */
        screen_verdict_t v = {.kind = SCREEN_HOLD};
        snprintf(v.why, sizeof v.why, "the program could not be started");
        take_verdict(sc, peer, uetr, &v);
    }
    free(input);
}

void screening_after_commit(screening_t *sc, bool committed, ledger_t *ledger, int64_t now_ms)
{
    for (size_t i = 0; committed && sc->runner != NULL && i < sc->held_count; i++) {
        start(sc, ledger, sc->held[i].peer, sc->held[i].uetr, now_ms);
    }
    sc->held_count = 0;
    if (sc->overflowed) { /* said once per turn that overflowed */
        log_event(sc->node, NULL, NULL,
                  "more than %d payments held or screened in one turn: the rest wait for the "
                  "screening program until the node starts again",
                  SCREENING_PENDING_MAX);
        sc->overflowed = false;
    }
}

typedef struct {
    screening_t *sc;
    ledger_t *ledger;
    int64_t now_ms;
    size_t count;
} resume_t;

static void resume_one(const ledger_held_t *h, void *arg)
{
    resume_t *r = arg;
    if (strcmp(h->hold, LEDGER_HOLD_SCREENING) == 0) {
        screening_on_held(r->sc, h->s.peer, h->s.uetr);
        r->count++;
    }
}

void screening_resume(screening_t *sc, ledger_t *ledger, int64_t now_ms)
{
    if (sc->runner == NULL) {
        return;
    }
    resume_t r = {sc, ledger, now_ms, 0};
    if (ledger_held(ledger, resume_one, &r) != LEDGER_OK) {
        log_event(sc->node, NULL, NULL, "cannot list the held payments to screen: %s",
                  ledger_last_error(ledger));
    }
    if (r.count > 0) {
        log_event(sc->node, NULL, NULL, "screening again %zu payments held when the node stopped",
                  r.count);
    }
    screening_after_commit(sc, true, ledger, now_ms);
}

size_t screening_poll_items(const screening_t *sc, zmq_pollitem_t *items, size_t max)
{
    if (sc->runner == NULL) {
        return 0;
    }
    struct pollfd fds[SCREENING_POLL_MAX];
    size_t n =
        screen_poll_fds(sc->runner, fds, max < SCREENING_POLL_MAX ? max : SCREENING_POLL_MAX);
    for (size_t i = 0; i < n; i++) {
        items[i] = (zmq_pollitem_t){.socket = NULL, .fd = fds[i].fd, .events = fds[i].events};
    }
    return n;
}

int64_t screening_next_deadline(const screening_t *sc)
{
    return sc->runner != NULL ? screen_next_deadline(sc->runner) : INT64_MAX;
}

void screening_collect(screening_t *sc, int64_t now_ms)
{
    if (sc->runner != NULL) {
        screen_collect(sc->runner, now_ms, take_verdict, sc);
    }
}

bool screening_has_verdicts(const screening_t *sc)
{
    return sc->verdict_count > 0;
}

ledger_err_t screening_apply(screening_t *sc, engine_t *engine, const config_t *config,
                             ledger_t *ledger)
{
    ledger_err_t rc = LEDGER_OK;
    size_t kept = 0; /* verdicts for a channel not UP wait there (channel_decide_held) */
    for (size_t i = 0; rc == LEDGER_OK && i < sc->verdict_count; i++) {
        const screened_t *s = &sc->verdicts[i];
        size_t index = 0;
        while (index < config->peers_count && strcmp(config->peers[index].card.name, s->peer)) {
            index++;
        }
        assert(index < config->peers_count); /* we held it from a configured peer */
        if (s->verdict.kind != SCREEN_HOLD &&
            !channel_decides_held(engine_channel(engine, index))) {
            sc->verdicts[kept++] = *s;
            continue;
        }
        settlement_t st;
        ledger_outcome_t o;
        if (ledger_find(ledger, s->peer, s->uetr, &st, &o) != LEDGER_OK ||
            o.status != STATUS_HELD || strcmp(o.hold, LEDGER_HOLD_SCREENING) != 0) {
            log_event(config->name, s->peer, s->uetr,
                      "screening verdict dropped: the payment no longer waits for it");
            continue;
        }
        switch (s->verdict.kind) {
        case SCREEN_ACCEPT:
        case SCREEN_REJECT:
            rc = channel_decide_held(engine_channel(engine, index), s->uetr,
                                     s->verdict.kind == SCREEN_ACCEPT ? NULL : s->verdict.reason,
                                     &o);
            break;
        case SCREEN_HOLD:
            rc = ledger_hold_for_review(ledger, s->peer, s->uetr);
            if (rc == LEDGER_OK) {
                log_event(config->name, s->peer, s->uetr,
                          "held for review (corridor review accept|reject)");
            }
            break;
        }
        if (rc == LEDGER_E_OVERFLOW) { /* the books cannot take it: left for a person */
            log_event(config->name, s->peer, s->uetr,
                      "screening verdict not applied: a balance would overflow");
        }
        rc = rc == LEDGER_E_STATE || rc == LEDGER_E_OVERFLOW ? LEDGER_OK : rc;
    }
    if (rc == LEDGER_OK) {
        sc->verdict_count = kept;
    }
    return rc;
}
