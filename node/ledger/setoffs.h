/*
 * Multilateral set-offs in the books (proto/PROTOCOL.md 3.12.6): the record of each set-off this
 * node takes part in, which is how the proposer logs its decision before the decision leaves,
 * and how a member knows a set-off its decision overtook. The legs are records of `settlements`
 * (ledger_setoff_leg_open and _close in ledger.h). Statements are prepared per call: none of this
 * is on the path of a payment.
 */
#ifndef CORRIDOR_LEDGER_SETOFFS_H
#define CORRIDOR_LEDGER_SETOFFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"

typedef enum {
    SETOFF_VOTING = 0,    /* not decided (here: no decision seen) */
    SETOFF_COMMITTED = 1, /* the proposer's commit */
    SETOFF_ABORTED = 2,   /* the proposer's abort */
    SETOFF_ASKED = 3,     /* an asking round (3.12.5): no legs, no decision */
} setoff_state_t;

const char *setoff_state_name(setoff_state_t state);

typedef struct {
    char setoff_id[CORRIDOR_UETR_LEN + 1];
    uint8_t *terms; /* the terms bytes as the proposer signed them (malloc'd) */
    size_t terms_len;
    uint8_t terms_signature[64];
    int position; /* ours in the ring */
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t amount_minor;
    setoff_state_t state;
    char reason[CORRIDOR_REASON_LEN_MAX + 1]; /* an abort's, or our refusal's */
    uint8_t *our_vote;                        /* our ballot bytes || our signature (64), or NULL */
    size_t our_vote_len;
    uint8_t *votes; /* the last set-off body we hold: the relay or the decision (or NULL) */
    size_t votes_len;
    uint8_t *verdict; /* the verdict bytes || the proposer's signature (64), or NULL */
    size_t verdict_len;
    uint64_t relay_seq;    /* our relay to our successor; 0 none */
    uint64_t decision_seq; /* our decision to our successor; 0 none */
    int64_t created_ms, decided_ms;
    int64_t deadline_ms; /* the terms' deadline (the proposer aborts then, undecided) */
    char asked_by[CORRIDOR_UETR_LEN + 1]; /* the asking round that led to it (3.12.5), or "" */
} ledger_setoff_t;

/* The record of `setoff_id`: *found false when none (or before schema 12). */
ledger_err_t ledger_setoff_get(ledger_t *l, const char *setoff_id, ledger_setoff_t *out,
                               bool *found) __attribute__((warn_unused_result));

/* Writes the record (a new one, or the same id again), in the node's transaction. */
ledger_err_t ledger_setoff_put(ledger_t *l, const ledger_setoff_t *rec)
    __attribute__((warn_unused_result));

/* Calls fn for each record, oldest first, until it returns false. The record is freed after
 * the call. */
ledger_err_t ledger_setoff_each(ledger_t *l, bool (*fn)(const ledger_setoff_t *rec, void *arg),
                                void *arg) __attribute__((warn_unused_result));

/* The ids of up to `max` set-offs we proposed, still voting, whose deadline is at or before
 * `wall_ms` (*n of them), and the earliest deadline of those still voting after them
 * (*next, INT64_MAX none). An indexed lookup. */
ledger_err_t ledger_setoff_due(ledger_t *l, int64_t wall_ms, char (*ids)[CORRIDOR_UETR_LEN + 1],
                               size_t max, size_t *n, int64_t *next)
    __attribute__((warn_unused_result));

/* The number of our pending set-off legs with `peer`. */
ledger_err_t ledger_setoff_open_legs(ledger_t *l, const char *peer, int64_t *count)
    __attribute__((warn_unused_result));

/* Frees the buffers of a record read by get (the record itself is the caller's). */
void ledger_setoff_release(ledger_setoff_t *rec);

#endif
