/*
 * The channel: the exactly-once protocol between this node and one peer.
 *
 *                    peer's Hello, consistent with our counters
 *         +--------+ ---------------------------------------> +------+
 *  start  |  DOWN  |                                          |  UP  |  transmit, retransmit,
 *  -----> | Hello  | <--------------------------------------- |      |  heartbeat Hellos
 *         | 1/s    |        nothing heard for LIVENESS         +------+
 *         +--------+                                             |
 *              |   peer's Hello shows a rollback (either side)   |
 *              +---------------------> +----------+ <------------+
 *                                      | DIVERGED |  persisted; nothing sent or applied;
 *                                      +----------+  left only by `reconcile --repair`
 *
 * Per direction, sequenced messages (Settlement, StatusReport, Return, KeyAnnounce) carry a
 * sequence number
 * from 1, assigned when the message is queued in the ledger's outbox in the transaction that
 * caused it. The receiver applies them strictly in order inside its group-commit transaction
 * (out-of-order arrivals wait in a bounded hold-back window), drops what it already applied,
 * and acknowledges cumulatively only after the commit. The sender keeps every message in the
 * outbox; an Ack (signed, so it cannot be forged or reflected) only moves `acked` forward and
 * never past what was sent. Unacknowledged messages are retransmitted with exponential
 * backoff, marked possible-duplicate. On every (re)connect each side sends a Hello with what
 * it has sent, applied and had acknowledged; the peer resumes from the gap, or, if the
 * numbers show that one side was restored from an old copy, both mark the channel DIVERGED
 * (proto/PROTOCOL.md 2.9): new settlements to it stay pending in the outbox, and
 * nothing it sends is applied, until an operator repairs the channel.
 */
#ifndef CORRIDOR_CHANNEL_H
#define CORRIDOR_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "cycle.h"
#include "fx.h"
#include "setoff.h"
#include "identity.h"
#include "ledger.h"
#include "settlement.h"

#define CHANNEL_LIVENESS_MS     6000  /* silence after which a peer is down */
#define CHANNEL_HELLO_MS        1000  /* Hello interval while down */
#define CHANNEL_HEARTBEAT_MS    2000  /* Hello interval while up */
#define CHANNEL_RTO_MIN_MS      1000  /* retransmission timeout: at least this (as RFC 6298) */
#define CHANNEL_RTO_INIT_MS     1000  /* before any round trip was measured */
#define CHANNEL_RTO_MAX_MS      30000 /* backoff cap */
#define CHANNEL_FEATURE_ECHO    1u    /* our Hellos echo the newest stamp taken from the peer */
#define CHANNEL_FEATURE_KEYS    2u    /* we apply KeyAnnounce (PROTOCOL.md 2.14) */
#define CHANNEL_FEATURE_CURVE   4u    /* we apply KeySwitch and switch our transport (2.16) */
#define CHANNEL_FEATURE_HOLDS   8u    /* we apply PDNG, CancelRequest and CancelAnswer (3.8) */
#define CHANNEL_FEATURE_RETURNS 16u   /* we decide two-phase Returns and answer them (3.9) */
#define CHANNEL_FEATURE_FX      32u   /* we decide FxProposals, both legs as one (3.10) */
#define CHANNEL_FEATURE_CYCLES  64u   /* we close cycles and take net settlements (3.11) */
#define CHANNEL_FEATURE_SETOFF  128u  /* we vote on and relay multilateral set-offs (3.12) */
#define CHANNEL_FEATURES                                                                           \
    (CHANNEL_FEATURE_ECHO | CHANNEL_FEATURE_KEYS | CHANNEL_FEATURE_CURVE | CHANNEL_FEATURE_HOLDS | \
     CHANNEL_FEATURE_RETURNS | CHANNEL_FEATURE_FX | CHANNEL_FEATURE_CYCLES |                       \
     CHANNEL_FEATURE_SETOFF) /* our Hello offers */
#define CHANNEL_KEYS_MAX 64  /* keys of a peer's key history: a KeyAnnounce past it is dropped */

typedef enum { CHANNEL_DOWN = 0, CHANNEL_UP = 1, CHANNEL_DIVERGED = 2 } channel_state_t;

const char *channel_state_name(channel_state_t state);

/* How the node screens an incoming payment that passed every other check (PROTOCOL.md 3.8.2). */
typedef enum {
    CHANNEL_SCREEN_PASS = 0,    /* book it */
    CHANNEL_SCREEN_LISTED = 1,  /* a party is on the screening list: refuse it RR04 */
    CHANNEL_SCREEN_PROGRAM = 2, /* hold it for the screening program */
} channel_screen_t;

/* What the channel needs from the node around it. */
typedef struct {
    const identity_t *self;          /* this node's keys */
    const identity_t *self_previous; /* its keys before its last rotation, or NULL */
    const config_t *config;          /* currencies accepted, caps granted */
    ledger_t *ledger;                /* the books (writes only inside the node's transaction) */
    /* Sends one sealed frame to peer `peer_index`; 0 sent, -1 not now. */
    int (*send)(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len);
    /* Told when one of our settlements reaches its final status (for `send --wait`). */
    void (*on_final)(void *arg, const char *peer, const char *uetr,
                     const ledger_outcome_t *outcome);
    /* Told of a StatementRequest or Statement from the peer; takes msg's buffers. */
    void (*on_statement)(void *arg, size_t peer_index, envelope_message_t *msg);
    /* Screens an incoming payment (NULL: every one passes). */
    channel_screen_t (*screen)(void *arg, const settlement_t *s);
    /* Told, inside the transaction, of a payment held for the screening program: the node
     * starts it once the transaction commits (a verdict for a payment not held is dropped). */
    void (*on_held)(void *arg, const char *peer, const char *uetr);
    /* The channel with peer `code` (NULL: none): a set-off goes on from one channel to
     * another in the same transaction (PROTOCOL.md 3.12). */
    struct channel *(*channel_of)(void *arg, const char *code);
    void *arg;             /* passed to send, on_final, on_statement, screen and on_held */
    const char *node_name; /* for log lines */
    uint64_t incarnation;  /* this process's start, Unix microseconds: stamps Acks/Hellos */
} channel_ctx_t;

typedef struct channel channel_t;

/* A channel for configured peer `peer_index` (keys in `keys`, which must outlive it). Loads
 * its counters from the ledger. NULL when out of memory or the ledger cannot be read (or holds
 * counters out of range: ledger_last_error says which). */
channel_t *channel_new(const channel_ctx_t *ctx, size_t peer_index, const config_peer_t *peer,
                       envelope_peer_t *keys, int64_t now_ms);
void channel_destroy(channel_t **self_p);

/* Takes one opened message from this peer (ownership of msg's buffers passes to the channel).
 * Acks and Hellos act at once; business messages are held until channel_apply. */
void channel_receive(channel_t *ch, envelope_message_t *msg, int64_t now_ms);

/* Inside the node's transaction: applies every held message that is next in order while the
 * peer's allowance lasts (see CHANNEL_APPLIED_UNIT), and persists counters that changed.
 * LEDGER_E_STORAGE stops the batch. */
ledger_err_t channel_apply(channel_t *ch, int64_t now_ms) __attribute__((warn_unused_result));

/* Inside the node's transaction: records our settlement as pending and queues it. */
ledger_err_t channel_send_settlement(channel_t *ch, const settlement_t *s,
                                     ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Inside the node's transaction: signs `body` as the next sequenced message of `type` (a
 * Settlement, StatusReport, Return or KeyAnnounce) and queues it, booking nothing. The honest paths
 * book what they send (channel_send_settlement, the answers channel_apply queues); the simulator's
 * compromised node sends through this whatever a peer holding valid keys could sign. */
ledger_err_t channel_send_body(channel_t *ch, msg_type_t type, const uint8_t *body, size_t len)
    __attribute__((warn_unused_result));

/* Inside the node's transaction: announces `next` (our new keys; the caller keeps them, and
 * our current ones, alive) at our next sequence number, signed by our current key, and
 * records both in the key history; our later sequenced messages are signed by `next`, our
 * control messages too once the peer acknowledged the announcement (PROTOCOL.md 2.14).
 * LEDGER_E_STATE (nothing done) when the peer has not shown in a Hello that it applies
 * announcements, or our last announcement is not yet acknowledged. */
ledger_err_t channel_rotate(channel_t *ch, const identity_t *next, int64_t overlap_ms)
    __attribute__((warn_unused_result));

/* The node's keys after its transaction with channel_rotate committed (the channel reads its
 * own from the key history, among these two, whenever it reloads). */
void channel_set_self(channel_t *ch, const identity_t *self, const identity_t *self_previous);

/* Whether our last rotation is done on this channel: announced and acknowledged, and its
 * KeySwitch too if it made one (true when there is none). */
bool channel_rotation_acked(const channel_t *ch);
/* Whether the peer may still send what needs our keys before the current ones: a KeyAnnounce
 * it signed before it applied our last one proves its CURVE key to our box key of then
 * (PROTOCOL.md 2.16). False once we applied all the peer had sent when a Hello of its showed
 * it had applied our announcement; until then we neither rotate again nor forget those keys. */
bool channel_previous_keys_needed(const channel_t *ch);

/* Inside the node's transaction: the node rotates to `next` while the peer has not shown it
 * takes announcements (no Hello with CHANNEL_FEATURE_KEYS since the start): the channel goes
 * on with its keys, and announces `next` in the first transaction after such a Hello. */
ledger_err_t channel_rotate_later(channel_t *ch, const identity_t *next)
    __attribute__((warn_unused_result));

/* The keys this channel signs its sequenced messages with. */
const identity_t *channel_own(const channel_t *ch);

/* Whether the peer's Hellos since the start offered all of `features` (CHANNEL_FEATURE_*). */
bool channel_peer_offers(const channel_t *ch, unsigned features);

/* The same, but before the peer's first Hello since this process started, what it offered
 * before (kept in the books): a message forwarded for others (a set-off's relay or decision,
 * PROTOCOL.md 3.12.2) must not wait for a Hello. */
bool channel_peer_offered(const channel_t *ch, unsigned features);

/* ---- the CURVE transport key switch (PROTOCOL.md 2.16) ------------------------------------ */

/* The wall clock of the turn (ms since the epoch): when an overlap ends is kept in it. */
void channel_set_wall(channel_t *ch, int64_t wall_ms);

/* Whether our last rotation changed our CURVE key and our KeySwitch is not queued yet. */
bool channel_curve_pending(const channel_t *ch);

/* Whether the peer announced a new CURVE key and we have not applied its KeySwitch yet. */
bool channel_peer_curve_pending(const channel_t *ch);

/* Inside the node's transaction, when every channel acknowledged our announcement
 * (engine.c): queues our KeySwitch (the inbound socket serves the new CURVE key from the
 * commit on) and records it in the key history. */
ledger_err_t channel_curve_switch(channel_t *ch) __attribute__((warn_unused_result));

/* What the transport should do for this channel now. The strings and keys are the channel's:
 * valid until its next call. */
typedef struct {
    const char *admit_current;      /* the peer's CURVE client key, admitted always */
    const char *admit_previous;     /* its old one, admitted too (NULL: not) */
    int64_t previous_until_wall_ms; /* until then (wall ms; 0: no limit) */
    const char *pin;                /* the peer's server key our outbound sockets pin */
    const identity_t *client;       /* whose CURVE keys our outbound sockets connect with */
} channel_transport_t;

void channel_transport(const channel_t *ch, channel_transport_t *out);

/* Whether channel_rotate may announce new keys now: the peer's Hello offered
 * CHANNEL_FEATURE_KEYS and our last announcement is acknowledged. */
bool channel_rotation_ready(const channel_t *ch);

/* After the commit: acknowledges what was applied, transmits and retransmits from the
 * outbox, sends Hellos, notices silence. Never writes the ledger. */
void channel_after_commit(channel_t *ch, int64_t now_ms);

/* The time by which channel_after_commit wants to run again. */
int64_t channel_next_deadline(const channel_t *ch);

/* When messages waiting for the peer's allowance may be applied (INT64_MAX: none waits). */
int64_t channel_apply_after_ms(const channel_t *ch);

/* Whether the channel has held messages that channel_apply may apply at now_ms, or counters
 * to persist. */
bool channel_has_work(const channel_t *ch, int64_t now_ms);

/* A copy of an applied message arrived (the envelope dropped it before checking its
 * signature): acknowledge again, so the peer stops re-sending it. */
void channel_note_duplicate(channel_t *ch);

/* The highest of the peer's sequence numbers committed here. */
uint64_t channel_applied_seq(const channel_t *ch);

/* Sends a signed, unsequenced message (statements) to the peer, now. */
void channel_send_unsequenced(channel_t *ch, msg_type_t type, const uint8_t *body, size_t len);

/* Inside the transaction: applies one verified business message as if it had arrived next
 * (a repair hands over a Settlement the peer still has pending). */
ledger_err_t channel_apply_message(channel_t *ch, const envelope_message_t *msg)
    __attribute__((warn_unused_result));

bool channel_is_diverged(const channel_t *ch);

/* ---- holds and expiry (PROTOCOL.md 3.8) ------------------------------------------------------ */

/* Whether payments of the peer's we hold may be decided now: the channel is UP, DOWN after it
 * was UP in this process, or DIVERGED because the peer was put back from a copy (our books are
 * whole). Not while DOWN after a start (no Hello yet), nor DIVERGED by a restore of ours: we may
 * hold what we decided since.
 * Inside the node's transaction, channel_decide_held decides the peer's payment we hold, released
 * (settled) when `reason` is NULL, else declined with `reason`; queues our StatusReport.
 * LEDGER_E_STATE when it is not held (decided meanwhile) or the channel is not UP (put back from a
 * copy, we may hold what we decided since: a peer's Hello shows it first), LEDGER_E_NOT_FOUND when
 * the channel has no such payment. Expiries wait for UP as well (channel_expire_held). */
bool channel_decides_held(const channel_t *ch);
ledger_err_t channel_decide_held(channel_t *ch, const char *uetr, const char *reason,
                                 ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Inside the open transaction, writing nothing: the return (PROTOCOL.md 3.9) of `amount_minor`
 * (0: all that is left) of the settled payment `original_uetr` the peer paid us, for `reason`,
 * under a new id, in r, for channel_send_settlement to book pending and queue like a Settlement.
 * LEDGER_E_STATE when the payment is not an incoming settled one or the returns would pass its
 * amount (ledger_last_error says which); NOT_FOUND when the channel has no such payment. Whether
 * the peer offers CHANNEL_FEATURE_RETURNS is the caller's to check. */
ledger_err_t channel_prepare_return(channel_t *ch, const char *original_uetr, int64_t amount_minor,
                                    const char *reason, settlement_t *r);

/* Inside the node's transaction: proposes the trade `t` to the peer (PROTOCOL.md 3.10.3); the
 * caller has set its fx_id, the legs' UETRs, amounts and currencies, and its times. Fills in
 * the rest (fx_trade_prepare), books both legs pending and queues the FxProposal. *why: NULL
 * when proposed; else the reason it was not, nothing written: FF01 and the like of fx_check,
 * AM02 when the peer's leg would take its debt to us over the cap we grant it. Whether the peer
 * offers CHANNEL_FEATURE_FX is the caller's to check. channel_prepare_fx makes the same checks
 * and writes nothing (asked before the operator row is recorded). */
ledger_err_t channel_prepare_fx(channel_t *ch, fx_trade_t *t, const char **why)
    __attribute__((warn_unused_result));
ledger_err_t channel_propose_fx(channel_t *ch, fx_trade_t *t, const char **why,
                                ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Inside the node's transaction: asks our pending settlement `uetr` back with `reason` (one of
 * the cancellation codes, 3.8.4): queues a CancelRequest after everything queued and records
 * it; its id in `cancellation_id`. LEDGER_E_STATE when the settlement is not our pending one
 * (outcome: its status), or a request of ours is open already (its id given back). */
ledger_err_t channel_cancel(channel_t *ch, const char *uetr, const char *reason,
                            char cancellation_id[static CORRIDOR_UETR_LEN + 1],
                            ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Whether `code` is a cancellation reason this node sends (ExternalCancellationReason1Code:
 * CUST, DUPL, FRAD, TECH, UPAY, AM09, AC03). */
bool channel_cancel_reason_valid(const char *code);

/* Inside the node's transaction: declines AB05 every payment we hold whose expiry is at or
 * before the turn's wall clock (channel_set_wall). Cheap when none is due. */
ledger_err_t channel_expire_held(channel_t *ch) __attribute__((warn_unused_result));

/* The wall clock (ms) at which a held payment of the peer's expires next: 0 when not known yet
 * (channel_expire_held looks), INT64_MAX when none will. */
int64_t channel_next_expiry_ms(const channel_t *ch);

/* Asserts what holds between calls whatever a peer sends (checked on entry and exit of the
 * functions above, in every build): acked <= sent, the next transmission between acked and
 * sent + 1, counters at most 2^62, no version downgrade, the held messages within the window
 * and the byte budget, nothing held while DIVERGED. Builds with CORRIDOR_DEEP_CHECKS (Debug,
 * so the sanitizer build) also walk the window: every held message in its slot. */
void channel_check_invariants(const channel_t *ch);
uint64_t channel_sent_seq(const channel_t *ch);

/* The Inner format this channel signs with (the highest both sides' Hellos list). */
uint32_t channel_wire_version(const channel_t *ch);

/* After a failed transaction: forget what was applied in memory but not committed. */
void channel_reload(channel_t *ch);

typedef struct {
    channel_state_t state;
    uint64_t sent_seq;            /* highest queued to the peer */
    uint64_t acked_seq;           /* highest the peer acknowledged */
    uint64_t applied_seq;         /* highest of the peer's applied here */
    uint64_t held;                /* out-of-order messages waiting */
    uint64_t held_bytes;          /* their bytes, at most CHANNEL_HOLD_BYTES_MAX */
    uint64_t hold_full;           /* messages dropped because the hold-back bytes were spent */
    uint64_t retransmits;         /* messages sent again */
    uint64_t rewinds_refused;     /* Hellos whose request to send everything again was refused */
    uint64_t dropped;             /* received messages dropped (duplicates, far future, diverged) */
    uint64_t backpressure;        /* times the peer's messages waited for its allowance */
    uint64_t position_mismatches; /* StatusReports whose position did not mirror ours */
    uint64_t unentitled;          /* messages the peer had no right to send (a PDNG after the
                                     final status, an answer to a request we never made) */
} channel_stats_t;

channel_stats_t channel_stats(const channel_t *ch);
const char *channel_peer_name(const channel_t *ch);

/* Settlement cycles (PROTOCOL.md 3.11), inside the caller's transaction. Whether the peer
 * offers CHANNEL_FEATURE_CYCLES is the caller's to check.
 *
 * channel_cycle_close proposes the next cycle at our present cut: *cycle its number. *why says
 * why not (a cycle closing, a cut behind, a figure that cannot be stated), nothing written. */
ledger_err_t channel_cycle_close(channel_t *ch, uint64_t *cycle, const char **why)
    __attribute__((warn_unused_result));

/* Sends the net settlement `n` of a closed cycle: the caller sets id, cycle, currency, reference,
 * method, clearing system and time; this fills amount (the cycle's net) and statement hash. *why
 * says why not (no such closed cycle, not the net debtor, one pending or settled, a field),
 * nothing written. */
ledger_err_t channel_cycle_settle(channel_t *ch, net_settlement_t *n, const char **why)
    __attribute__((warn_unused_result));

/* The checks of channel_cycle_settle alone (fills amount and statement hash), writing nothing. */
ledger_err_t channel_cycle_settle_check(channel_t *ch, net_settlement_t *n, const char **why)
    __attribute__((warn_unused_result));

/* A person confirms (reason NULL) or refuses a net settlement the peer sent, which we hold: booked
 * and answered ACSC, or answered RJCT. LEDGER_E_NOT_FOUND: no such id; LEDGER_E_STATE: not held
 * (or the channel does not decide now); *status the net settlement's status. */
ledger_err_t channel_net_decide(channel_t *ch, const char *id, const char *reason, status_t *status)
    __attribute__((warn_unused_result));

/* ---- Multilateral set-off (PROTOCOL.md 3.12, setoffs.c) ---- */

/* The peer name set-off notifications carry to on_final (key "setoff-ID"). */
#define CHANNEL_SETOFF_WAITER "*setoff"

/* Inside the node's transaction: proposes set-off `t` (ring[0] this node, ring[1] the peer of
 * `next`, ring[n-1] that of `prev`, keys filled, id fresh): votes on our books, records it, opens
 * our leg with `next` and queues the relay. *why: NULL when sent, else our own refusal's code
 * (AM03 currency, AB05 deadline, NARR a neighbour lacks the feature or is DIVERGED, DUPL id
 * used, AM04 no such debt), nothing written. That both peers offer CHANNEL_FEATURE_SETOFF is
 * checked here too. */
ledger_err_t channel_setoff_propose(channel_t *next, channel_t *prev, const setoff_terms_t *t,
                                    const char **why) __attribute__((warn_unused_result));

/* The signing key the peer signs with now (its card's, or the one it announced since). */
const uint8_t *channel_peer_sign_public(const channel_t *ch);

/* Inside the node's transaction: aborts (AB05) the set-offs we proposed whose deadline has
 * passed at `wall_ms` undecided (at most 16 a call); *aborted how many, *next_due the earliest
 * deadline still to come (INT64_MAX none). `any` is any channel (for the node). */
ledger_err_t channel_setoff_expire(channel_t *any, int64_t wall_ms, size_t *aborted,
                                   int64_t *next_due) __attribute__((warn_unused_result));

#endif
