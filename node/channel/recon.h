/*
 * Reconciliation: `corridor reconcile --peer P [--repair]`, run by a node against one peer.
 *
 * The initiator compares its channel with the peer's in rounds of StatementRequest and
 * Statement (statement.h): it starts from the whole channel's fingerprint, which the ledger
 * keeps in O(1), so identical channels agree in one exchange; where fingerprints differ it
 * descends into the 16 sub-ranges that differ, until a range is small enough to compare entry
 * by entry. Cost grows with the differences, not with the ledger. Every break is classified:
 *   missing_at_peer, missing_local, amount_mismatch, currency_mismatch, status_mismatch.
 *
 * With --repair, the signed evidence both sides keep heals what it can prove: a pending entry
 * the peer shows settled or rejected (its signed StatusReport) is resolved; an entry one side
 * lacks is imported by that side from the other's signed messages (or, if still pending at
 * the payer, applied as if it had just arrived). After a rollback (channel DIVERGED) the same
 * exchange re-bases both sides' sequence numbers above everything either side ever used, and
 * reopens the channel. Amount and currency mismatches need a person and stay listed.
 *
 * Checkpoints: both sides sign the channel's state at a sequence cut (the proposer's sent and
 * applied sequences) with each side's journal head, and keep both signatures as a journal row:
 * `audit` then catches even a ledger rewritten with its hash chain recomputed, because the
 * peer's signature is over the old head. A cut is a point in both message streams, not in
 * time, so each side computes the same digest, count and positions from its own books however
 * far past the cut it has gone (ledger_channel_at_cut): checkpoints complete under load. A
 * peer that has not applied up to the cut yet says so, and is asked again shortly. A
 * checkpoint session (recon_new_checkpoint, the node's automatic ones) asks only the peer's
 * journal head and proposes; `reconcile` proposes after a comparison that found no break.
 */
#ifndef CORRIDOR_RECON_H
#define CORRIDOR_RECON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "channel.h"
#include "config.h"
#include "corridor.pb-c.h"
#include "identity.h"
#include "ledger.h"

#define RECON_RETRY_MS 5000 /* a request without an answer is sent again */

/* What reconciliation needs of the node. */
typedef struct {
    const identity_t *self;
    const identity_t *self_previous; /* our keys before the last rotation, or NULL */
    const config_peer_t *peer;       /* its name and public keys (its card) */
    const envelope_peer_t *keys;     /* its keys now and before its rotation, or NULL: the card's */
    ledger_t *ledger;
    channel_t *channel;
    /* Checkpoint spacing (this node's checkpoint_every and checkpoint_interval_s): one is
     * signed only after that many sequenced messages on the channel, both ways, or that long,
     * since the last. 0: no spacing (tools and harnesses). */
    uint32_t checkpoint_every;
    uint32_t checkpoint_interval_s;
    int64_t wall_now_ms; /* the caller's wall clock, for checkpoint_interval_s */
} recon_ctx_t;

typedef struct recon recon_t;

/* A session against ctx->peer. NULL when out of memory. */
recon_t *recon_new(const recon_ctx_t *ctx, bool repair, int64_t now_ms);

/* A checkpoint session: no comparison, a checkpoint at this node's cut. */
recon_t *recon_new_checkpoint(const recon_ctx_t *ctx, int64_t now_ms);
void recon_destroy(recon_t **self_p);

/* The node's keys after a rotation committed (a session outlives turns and must not sign with,
 * or point at, keys its owner may free). */
void recon_set_self(recon_t *r, const identity_t *self, const identity_t *self_previous);

/* Sends the next request, or sends the last one again if it went unanswered (or, to a peer
 * behind the cut, the proposal again). recon_deadline: when it next needs a tick (0: none). */
void recon_tick(recon_t *r, int64_t now_ms);

/* While held, the session prepares its requests but sends none: the engine holds sends for
 * the length of its transaction (a request may carry a signature over rows not yet
 * committed) and releases them after the commit, then ticks the session, which sends. */
void recon_hold_sends(recon_t *r, bool held);

/* Inside the node's transaction: takes the peer's Statement. Repairs and checkpoints write. */
ledger_err_t recon_on_statement(recon_t *r, const Corridor__Statement *st, int64_t now_ms)
    __attribute__((warn_unused_result));

bool recon_done(const recon_t *r);
int64_t recon_deadline(const recon_t *r);

/* Whether the session re-based the channel (the node reloads the channel after the commit). */
bool recon_rebased(const recon_t *r);

/* The report as `reconcile --json` prints it (new reference). */
json_t *recon_report(const recon_t *r);

/* Whether a request only reads (no repair, no checkpoint): it may be answered from a read
 * snapshot (ctx->ledger opened read-only), outside the write transaction. */
bool recon_request_reads_only(const Corridor__StatementRequest *req);

/* The responder: answers a StatementRequest from ctx->peer, applying any repair or
 * countersigning any checkpoint it carries (then inside the write transaction). *rebased tells
 * whether the channel counters changed, *work how many entries the answer read. The Statement
 * is encoded into *body (malloc'd). */
ledger_err_t recon_answer(const recon_ctx_t *ctx, const Corridor__StatementRequest *req,
                          uint8_t **body, size_t *body_len, bool *rebased, uint64_t *work)
    __attribute__((warn_unused_result));

#endif
