/*
 * The loop turn, without sockets or clocks: a node's channels, its reconciliation sessions
 * and the statements in flight, driven one turn at a time by whoever owns the sockets and the
 * clocks (`corridor run` today, a deterministic simulator tomorrow). proto/PROTOCOL.md 2.8.
 *
 * A turn, in this order:
 *   engine_begin        the turn's clocks; requests deferred earlier whose peer's allowance
 *                       came back take their place in this turn
 *   engine_deliver      each frame the caller read and opened, in arrival order
 *   engine_transaction  when engine_has_work or the caller has work of its own: one
 *                       transaction holding the caller's work (control requests), every
 *                       channel's held messages, the statement requests that write and the
 *                       statements our sessions asked for; commit, or roll back and reload
 *   engine_after        only after the commit: statement answers, re-based channels reloaded,
 *                       finished sessions reported, Acks, Hellos and transmissions; pure reads
 *                       answered from a read snapshot; automatic checkpoints started
 * So nothing is acknowledged to a peer before it is committed.
 */
#ifndef CORRIDOR_ENGINE_H
#define CORRIDOR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "channel.h"
#include "config.h"
#include "envelope.h"
#include "identity.h"
#include "ledger.h"
#include "opener.h"

typedef struct {
    const identity_t *self;
    const identity_t *self_previous; /* our keys before the last rotation, or NULL */
    const config_t *config;
    ledger_t *ledger;      /* the books: written only inside engine_transaction */
    ledger_t *reader;      /* a read-only connection to them, for pure reads */
    envelope_peer_t *keys; /* per configured peer; applied_through kept up to date */
    /* Sends one sealed frame to peer `peer_index`; 0 sent, -1 not now. */
    int (*send)(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len);
    /* One of our settlements reached its final status (for `send --wait`). */
    void (*on_final)(void *arg, const char *peer, const char *uetr,
                     const ledger_outcome_t *outcome);
    /* A session the caller started (engine_session_start) ended: {"ok": true, "report": ...}
     * (borrowed). */
    void (*on_report)(void *arg, size_t peer_index, json_t *doc);
    /* Screens an incoming payment (NULL: every one passes; PROTOCOL.md 3.8.2). */
    channel_screen_t (*screen)(void *arg, const settlement_t *s);
    /* A payment was held for the screening program, in the transaction now open. */
    void (*on_held)(void *arg, const char *peer, const char *uetr);
    void *arg;            /* passed to send, on_final, on_report, screen and on_held */
    uint64_t incarnation; /* this process's start, Unix microseconds: stamps Acks and Hellos */
} engine_ctx_t;

typedef struct engine engine_t;

#define ENGINE_SESSION_MS_MAX (5 * 60 * 1000) /* an operator's reconcile ends by then */

/* Opens a channel to every configured peer. NULL when out of memory or a channel cannot be
 * loaded (ledger_last_error says why). */
engine_t *engine_new(const engine_ctx_t *ctx, int64_t now_ms, int64_t wall_ms);
void engine_free(engine_t **self_p);

channel_t *engine_channel(engine_t *e, size_t peer_index);

/* A peer's StatementRequests refused or delayed for its allowance, for status. */
uint64_t engine_requests_refused(const engine_t *e, size_t peer_index);

/* The start of a turn: `now_ms` (monotonic) and `wall_ms` (the wall clock, for what is
 * stamped or spaced in wall time). */
void engine_begin(engine_t *e, int64_t now_ms, int64_t wall_ms);

/* One frame the caller opened (opener_run), in arrival order: to its channel, or dropped with
 * a log line. Takes the frame's message. */
void engine_deliver(engine_t *e, opener_frame_t *f);

/* Whether the engine has work for a transaction this turn. */
bool engine_has_work(const engine_t *e);

/* The turn's transaction: `work(arg)` first (may be NULL), then the channels and statements.
 * On a storage error everything is rolled back, the channels reloaded from the ledger, and
 * the ledger stops; the error is returned. */
ledger_err_t engine_transaction(engine_t *e, void (*work)(void *arg), void *arg)
    __attribute__((warn_unused_result));

/* After the transaction (or without one): `committed` false when it failed or the ledger is
 * stopped, so that nothing it produced leaves. */
void engine_after(engine_t *e, bool committed);

/* The earliest of `next` and every deadline the engine has (monotonic ms). */
int64_t engine_next_deadline(const engine_t *e, int64_t next);

/* Inside engine_transaction's work: announces `next` (our new keys; the caller keeps them,
 * and the current ones, alive) on every channel whose peer takes announcements
 * (channel_rotate), and on the others once it does (channel_rotate_later). Once the
 * transaction commits, `next` is the engine's key and the current one its previous.
 * LEDGER_E_STATE with nothing done, and *not_ready (if not NULL) the first such peer's index,
 * while the last rotation is not done on some channel: not acknowledged
 * (channel_rotation_acked), its KeySwitch not queued (channel_curve_pending), or the peer may
 * still send what needs our keys before it (channel_previous_keys_needed). Another error fails
 * the transaction. */
ledger_err_t engine_rotate(engine_t *e, const identity_t *next, size_t *not_ready)
    __attribute__((warn_unused_result));

/* The CURVE transport key switch (PROTOCOL.md 2.16): once every peer acknowledged a rotation
 * that changed our CURVE key, the engine's transaction queues our KeySwitch on each channel.
 * engine_curve_pending: it is not queued yet (then our inbound socket keeps serving the old
 * key); engine_curve_server: whose CURVE key the inbound socket serves now (the keys before
 * the rotation until the switch, if the engine still has them); engine_set_curve_overlap:
 * how long peers admit our old client key after the switch, for the rotations that follow
 * (ENGINE_CURVE_OVERLAP_MS until set). */
#define ENGINE_CURVE_OVERLAP_MS (3600 * 1000)
bool engine_curve_pending(const engine_t *e);
const identity_t *engine_curve_server(const engine_t *e);
void engine_set_curve_overlap(engine_t *e, int64_t overlap_ms);

/* Starts an operator's reconciliation with a peer (its report goes to on_report), in place
 * of an automatic checkpoint session. 0 started; -1 one is already running; -2 it cannot start
 * (out of memory, ledger unreadable). */
int engine_session_start(engine_t *e, size_t peer_index, bool repair, int64_t deadline_ms);

/* Ends a session just started without a report (its start could not be put on record). */
void engine_session_cancel(engine_t *e, size_t peer_index);

/* Sends the first request of a session just started. */
void engine_session_go(engine_t *e, size_t peer_index);

/* Whether a daily automatic cycle close at `at_min` minutes after 00:00 UTC (-1: off) is due at
 * wall clock `wall_ms`: the day's cycle_at passed last (today's once it has passed, else
 * yesterday's) lies after `since_ms` (the last cycle's creation). PROTOCOL.md 3.11.5. */
bool engine_cycle_at_due(int64_t wall_ms, int32_t at_min, int64_t since_ms);

#endif
