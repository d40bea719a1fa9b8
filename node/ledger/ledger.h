/*
 * The ledger: a node's durable double-entry books of every channel, on SQLite.
 *
 * One file (ledger.db) in the home, WAL, synchronous=FULL. Four kinds of rows:
 *   accounts     one per (kind, peer, currency): the peer's account is this node's side of
 *                the channel; "clearing" is the internal account of this node's customers.
 *                Each caches its posted and pending balance, debits minus credits.
 *   settlements  one per (peer, UETR): the payment's immutable content and content hash,
 *                plus a status cache that `audit` recomputes from the journal.
 *   journal      append-only: every state change is a new row (pending, posted, voided,
 *                booked, refused, returned) carrying the signed message that caused it
 *                (evidence) and a BLAKE2b hash chained over every row before it.
 *   outbox       messages to send, queued in the same transaction as the entry that caused
 *                them, numbered per peer from 1 (transactional outbox).
 * Every journal row moves its amount from one account to the other (debit one, credit the
 * other; a refused settlement moves nothing), so debits equal credits per currency by
 * construction; `audit` replays the journal and checks it anyway.
 *
 * Sign convention: net(peer, ccy) = what the peer owes this node minus what this node owes
 * the peer, over posted entries. Sending m to a peer lowers net by m once posted; receiving m
 * raises it. pending(peer, ccy) is the change to net that pending entries would make.
 *
 * Writes happen inside a transaction (ledger_begin .. ledger_commit): a node applies a whole
 * batch with one fsync (group commit). Any storage error rolls the transaction back and puts
 * the ledger in a stopped state: every later write is refused (no retry-and-pretend).
 */
#ifndef CORRIDOR_LEDGER_H
#define CORRIDOR_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "settlement.h"

#define LEDGER_FILE           "ledger.db"
#define LEDGER_HASH_BYTES     32
#define LEDGER_SCHEMA_VERSION 12

typedef struct ledger ledger_t;

typedef enum {
    LEDGER_OK = 0,
    LEDGER_E_STORAGE,   /* SQLite failed (I/O, full disk, fsync): the ledger is now stopped */
    LEDGER_E_STOPPED,   /* an earlier storage error stopped the ledger; writes are refused */
    LEDGER_E_CORRUPT,   /* the file is not a Corridor ledger, or is damaged */
    LEDGER_E_VERSION,   /* the schema is newer than this program understands */
    LEDGER_E_CONFLICT,  /* the UETR exists on this channel with different content (DUPL) */
    LEDGER_E_NOT_FOUND, /* no such settlement on this channel */
    LEDGER_E_STATE,     /* the settlement is not in a state that allows this change */
    LEDGER_E_READONLY,  /* a write on a ledger opened read-only */
    LEDGER_E_OVERFLOW,  /* a position would leave the int64 range */
} ledger_err_t;

const char *ledger_strerror(ledger_err_t err);

/* The detailed message of the last error (SQLite's text, which file), for logs. */
const char *ledger_last_error(const ledger_t *ledger);

/* Statuses as `ledger --json` shows them (README). */
typedef enum {
    STATUS_PENDING = 0,
    STATUS_SETTLED = 1,
    STATUS_REJECTED = 2,
    STATUS_RETURNED = 3,
    STATUS_HELD = 4, /* at the payee: stopped to look (screening, review; PROTOCOL.md 3.8) */
} status_t;

#define STATUS_MAX STATUS_HELD

const char *status_name(status_t status);

/* The status both sides of a channel agree on for digests and statements: a payment held at
 * the payee is pending at the payer, so `held` counts as `pending` there. */
status_t status_canonical(status_t status);

/* Journal row kinds: what happened. */
typedef enum {
    ENTRY_OUT_PENDING = 1, /* we sent a settlement: pending */
    ENTRY_OUT_POSTED = 2,  /* the peer settled it (ACSC) */
    ENTRY_OUT_VOIDED = 3,  /* the peer rejected it (RJCT) */
    ENTRY_IN_BOOKED = 4,   /* we settled the peer's settlement */
    ENTRY_IN_REFUSED = 5,  /* we rejected the peer's settlement */
    ENTRY_RETURNED = 6,    /* a settled payment was returned (pacs.004) */
    ENTRY_IMPORTED = 7,    /* a repair recorded this settlement from signed evidence; the row
                              carries the payee's version-2 StatusReport that justified it and
                              moves nothing (the rows before it booked the amounts) */
    ENTRY_REBASED = 8,     /* a repair re-based the channel; the row belongs to no settlement,
                              its amount is the sequence the peer proved it applied and its
                              evidence that proof (our own signed message; empty if none) */
    ENTRY_OPERATOR = 9,    /* a person's action on the books or a channel, recorded when the
                              node accepted it: the row belongs to no settlement, moves nothing,
                              and its evidence is the record (JSON: uid, user, at_ms, action,
                              args), hashed into the chain like every row */
    ENTRY_CHECKPOINT = 10, /* a checkpoint co-signed with the peer, in the chain: evidence is
                              the encoded Checkpoint, then our and the peer's signatures (64
                              bytes each); amount is the channel's sequenced messages both ways
                              (sent + applied) when it was stored */
    /* Holds, expiry and cancellation (PROTOCOL.md 3.8.5). */
    ENTRY_HELD = 11,             /* we hold the peer's settlement: pending +m, reply our PDNG */
    ENTRY_RELEASED = 12,         /* a held one is settled: evidence our StatusReport ACSC */
    ENTRY_DECLINED = 13,         /* a held one is rejected: evidence our RJCT, or the peer's
                                    CancelRequest with our CancelAnswer CNCL as reply */
    ENTRY_HELD_AT_PEER = 14,     /* the payee holds our settlement: its StatusReport PDNG */
    ENTRY_CANCEL_REQUESTED = 15, /* we asked our settlement back: our CancelRequest */
    ENTRY_CANCEL_REFUSED = 16,   /* a cancellation was refused: the payee's CancelAnswer RJCR at
                                    the payer; the payer's CancelRequest, reply our RJCR, at the
                                    payee */
    /* Settlement cycles (PROTOCOL.md 3.11.4): rows of no settlement. */
    ENTRY_CYCLE = 17,       /* a cycle co-signed: our statement, our and the peer's signature */
    ENTRY_NET_CLAIMED = 18, /* a NetSettlement sent, or held here: moves nothing */
    ENTRY_NET_SETTLED = 19, /* a net settlement confirmed: posted by the row's signed amount */
    ENTRY_NET_REFUSED = 20, /* a net settlement refused: moves nothing */
    /* A leg of a multilateral set-off (PROTOCOL.md 3.12.6), amount -m (against the relay): at
     * the edge's debtor (direction out) as ENTRY_OUT_PENDING/POSTED/VOIDED move it, at the
     * creditor as ENTRY_IN_REFUSED/BOOKED/REFUSED (nothing pending there). */
    ENTRY_SETOFF_PENDING = 21, /* opened by the relay on the edge: evidence that relay */
    ENTRY_SETOFF_POSTED = 22,  /* the decision commit on the edge: evidence that decision */
    ENTRY_SETOFF_VOIDED = 23,  /* the decision abort on the edge, alike */
} entry_kind_t;

#define ENTRY_KIND_MAX ENTRY_SETOFF_VOIDED

const char *entry_kind_name(entry_kind_t kind);

/* What an operation resulted in (also for an idempotent repeat). */
typedef struct {
    status_t status;                          /* the settlement's status now */
    char reason[CORRIDOR_REASON_LEN_MAX + 1]; /* ISO reason when rejected/returned, else "" */
    bool repeated;                            /* the same content was already recorded */
    int64_t position_minor;                   /* net(peer, currency) after the operation */
    char hold[16];                            /* held: why it waits (LEDGER_HOLD_*), else "" */
    char at_peer[16]; /* ours: "held" once the payee said, "cancelled" once its CNCL voided it */
    char cancel_id[CORRIDOR_UETR_LEN + 1]; /* a CancelRequest's id: open while pending, kept
                                              once it cancelled the payment, else "" */
    bool cancelled;                        /* rejected by the payer's cancellation (3.8.4) */
    int64_t returned_minor; /* a settled payment: the sum of its accepted returns (3.9) */
} ledger_outcome_t;

typedef enum { LEDGER_READ_WRITE, LEDGER_READ_ONLY } ledger_mode_t;

/* Opens (and with READ_WRITE creates or migrates) a ledger file. `node` is this node's code,
 * recorded at creation and checked on every open (a foreign ledger is refused; NULL skips the
 * check when reading). `vfs` names an SQLite VFS (tests inject failures) or is NULL for the
 * default. On failure, err receives one line saying what is wrong. */
ledger_err_t ledger_open(const char *path, const char *node, ledger_mode_t mode, const char *vfs,
                         ledger_t **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));
void ledger_close(ledger_t **self_p);

/* Group commit: everything between begin and commit is one transaction, one fsync. */
ledger_err_t ledger_begin(ledger_t *l) __attribute__((warn_unused_result));

/* The wall-clock time (ms since the epoch) stamped on the rows and checkpoints written from
 * now on. The ledger reads no clock of its own: the caller's clock, so that a simulation can
 * drive it. 0 until set. */
void ledger_set_clock(ledger_t *l, int64_t wall_ms);
ledger_err_t ledger_commit(ledger_t *l) __attribute__((warn_unused_result));
void ledger_rollback(ledger_t *l);
bool ledger_in_transaction(const ledger_t *l);
bool ledger_stopped(const ledger_t *l);

/* A read snapshot, on a ledger opened read-only next to the writer's: every read between begin
 * and end sees one committed state. In WAL mode it neither waits for the writer nor holds it
 * up, so a peer's pure-read requests are answered outside the write transaction. */
ledger_err_t ledger_snapshot_begin(ledger_t *l) __attribute__((warn_unused_result));
void ledger_snapshot_end(ledger_t *l);

/* Every write that a sequenced message causes names that message's `sequence` on the channel
 * (ours or the peer's, as the evidence shows; 0 in tools that have none): the ledger keeps, per
 * settlement, which message opened, decided and returned it, so that both sides can compute
 * the channel as it stood at an agreed cut (ledger_channel_at_cut). */

/* Records an outgoing settlement as pending (s->direction must be OUT), with our own signed
 * message as evidence. Same UETR and content again: the original outcome, repeated = true.
 * Same UETR, other content: LEDGER_E_CONFLICT and nothing changes. */
ledger_err_t ledger_send(ledger_t *l, const settlement_t *s, const uint8_t *evidence,
                         size_t evidence_len, uint64_t sequence, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* Applies an incoming settlement (s->direction IN) with the peer's signed message as evidence.
 * If reject_reason is not NULL the settlement is recorded rejected with it (the caller found
 * it invalid, e.g. AM03). Otherwise it is booked if net(peer) + amount <= cap_minor (the net
 * debit cap this node grants the peer), else rejected AM02. Idempotent as ledger_send. */
ledger_err_t ledger_receive(ledger_t *l, const settlement_t *s, int64_t cap_minor,
                            const char *reject_reason, const uint8_t *evidence, size_t evidence_len,
                            uint64_t sequence, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* Resolves our pending settlement on the peer's StatusReport: posted if settled, else voided
 * with `reason`. Repeating the same resolution is idempotent; a different one is a conflict. */
ledger_err_t ledger_resolve(ledger_t *l, const char *peer, const char *uetr, bool settled,
                            const char *reason, const uint8_t *evidence, size_t evidence_len,
                            uint64_t sequence, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* As ledger_resolve, for a StatusReport that names `answers`, the body hash of the Settlement it
 * answers (wire version 2; settlement_body_hash): LEDGER_E_CONFLICT unless it is the body of
 * the Settlement we signed. NULL: the report names none (version 1). */
ledger_err_t ledger_resolve_answering(ledger_t *l, const char *peer, const char *uetr,
                                      const uint8_t *answers, bool settled, const char *reason,
                                      const uint8_t *evidence, size_t evidence_len,
                                      uint64_t sequence, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* The one-way full return of before schema 9 (a `returned` row, status returned): nothing but
 * tests writes it now, to make the rows older ledgers hold (PROTOCOL.md 3.3.6). */
ledger_err_t ledger_return(ledger_t *l, const char *peer, const char *uetr, const char *reason,
                           const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                           ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* ---- holds, expiry and cancellation (PROTOCOL.md 3.8) ---------------------------------------- */

/* Why a held payment waits (settlements.hold). */
#define LEDGER_HOLD_SCREENING "screening" /* for the screening program's verdict */
#define LEDGER_HOLD_REVIEW    "review"    /* for a person */

/* As ledger_receive, but a settlement that passes every check is held (status held, row
 * `held`) waiting as `hold` says (LEDGER_HOLD_*), or booked when `hold` is NULL. The cap
 * counts the payments of the peer we hold in that currency, whichever way this one goes. */
ledger_err_t ledger_receive_holding(ledger_t *l, const settlement_t *s, int64_t cap_minor,
                                    const char *reject_reason, const char *hold,
                                    const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                                    ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Attaches our signed message to the row just appended for (peer, uetr) (a held payment's
 * PDNG, a CancelAnswer), in its hash, as ledger_set_reply does for a booking; nothing else. */
ledger_err_t ledger_attach_reply(ledger_t *l, const char *peer, const char *uetr,
                                 const uint8_t *signed_msg, size_t signed_len)
    __attribute__((warn_unused_result));

/* Decides a held payment of the peer's: released (settled) when `reason` is NULL, else declined
 * with `reason`. `sequence` is our answer's number, the message that makes it final: our
 * StatusReport, which is then `evidence` too (and kept as the settlement's reply), or, with a
 * `cancellation_id`, our CancelAnswer to the peer's CancelRequest of that id, which is
 * `evidence` (our answer follows as the row's reply: ledger_attach_reply). LEDGER_E_STATE when the
 * payment is not held (decided meanwhile), NOT_FOUND when unknown. */
ledger_err_t ledger_decide_held(ledger_t *l, const char *peer, const char *uetr, const char *reason,
                                const uint8_t *evidence, size_t evidence_len,
                                const char *cancellation_id, uint64_t sequence,
                                ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Whether the books can take that decision (LEDGER_E_OVERFLOW when a balance would leave
 * int64): asked before the answer that carries it is queued. */
ledger_err_t ledger_decide_held_fits(ledger_t *l, const settlement_t *s, bool release)
    __attribute__((warn_unused_result));

/* Moves a held payment from waiting for the program to waiting for a person. LEDGER_E_STATE
 * when it is not held waiting for the program. */
ledger_err_t ledger_hold_for_review(ledger_t *l, const char *peer, const char *uetr)
    __attribute__((warn_unused_result));

/* A held payment as ledger_held lists it. */
typedef struct {
    settlement_t s; /* the payment (incoming) */
    char hold[16];  /* LEDGER_HOLD_* */
} ledger_held_t;

/* Calls fn for every payment held now, oldest first. */
ledger_err_t ledger_held(ledger_t *l, void (*fn)(const ledger_held_t *h, void *arg), void *arg)
    __attribute__((warn_unused_result));

/* The payee holds our pending settlement (its StatusReport PDNG naming `answers`, the body hash
 * of our Settlement, or NULL for none): a `held_at_peer` row, and at_peer `held`. LEDGER_E_STATE
 * when it is not pending (a PDNG after the final answer), CONFLICT when `answers` names another
 * body, NOT_FOUND when unknown; nothing changes then. Repeated: nothing written. */
ledger_err_t ledger_note_held_at_peer(ledger_t *l, const char *peer, const char *uetr,
                                      const uint8_t *answers, const uint8_t *evidence,
                                      size_t evidence_len, uint64_t sequence)
    __attribute__((warn_unused_result));

/* ---- returns (PROTOCOL.md 3.9) ---- */

/* The sums of the returns of the payment `original_uetr` on the channel with `peer` that go in
 * `direction` (out: ours, in: the peer's), accepted and pending. */
ledger_err_t ledger_returns_of(ledger_t *l, const char *peer, const char *original_uetr,
                               direction_t direction, int64_t *accepted, int64_t *pending)
    __attribute__((warn_unused_result));

/* Whether the return r (settlement_is_return) may be taken, in the open transaction: its original
 * is a settled payment of the channel the other way, in r's currency, and r with the accepted
 * and pending returns of it stays within it. *why: NULL when it may, else the reason it may not
 * ("NOOR" no such payment, "AM09" over its amount), with ledger_last_error saying more. Whether
 * r's binding names the original's body is the caller's to check. */
ledger_err_t ledger_return_check(ledger_t *l, const settlement_t *r, const char **why)
    __attribute__((warn_unused_result));

/* The evidence of the row that opened a settlement (the payer's Settlement), malloc'd. */
ledger_err_t ledger_opening_evidence(ledger_t *l, const char *peer, const char *uetr,
                                     uint8_t **evidence, size_t *evidence_len)
    __attribute__((warn_unused_result));

/* ---- Multilateral set-off legs (PROTOCOL.md 3.12.6) ---- */

/* One edge's leg as this node records it: `direction` the way the relay went on the edge (out:
 * we are the edge's debtor), the money the other way. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char setoff_id[CORRIDOR_UETR_LEN + 1];
    direction_t direction;
    int64_t amount_minor; /* > 0 */
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    uint8_t terms_hash[32]; /* H13 */
    int64_t created_unix_ms;
} ledger_setoff_leg_t;

/* Opens a leg pending (a setoff_pending row, evidence the relay SignedMessage on the edge),
 * opened by the relay of `sequence` (ours when direction is out). LEDGER_E_CONFLICT when the id
 * is used on the channel; E_OVERFLOW when a balance would leave int64. */
ledger_err_t ledger_setoff_leg_open(ledger_t *l, const ledger_setoff_leg_t *leg, uint64_t sequence,
                                    const uint8_t *evidence, size_t evidence_len)
    __attribute__((warn_unused_result));

/* Closes the pending leg of `setoff_id` with `peer`: posted (commit) or voided with `reason`, by
 * the decision of `sequence` (ours when we are the edge's creditor), evidence that decision's
 * SignedMessage. *closed false (LEDGER_OK) when the channel holds no such record; E_STATE when
 * it holds it other than as a pending leg. */
ledger_err_t ledger_setoff_leg_close(ledger_t *l, const char *peer, const char *setoff_id,
                                     bool commit, const char *reason, uint64_t sequence,
                                     const uint8_t *evidence, size_t evidence_len, bool *closed)
    __attribute__((warn_unused_result));

/* The sum of our pending set-off legs with `peer` in `currency` whose relay went `direction`.
 * A writer's read. */
ledger_err_t ledger_setoff_pending(ledger_t *l, const char *peer, const char *currency,
                                   direction_t direction, int64_t *sum)
    __attribute__((warn_unused_result));

/* ---- FX trades (PROTOCOL.md 3.10) ---- */

/* The legs of the trade `fx_id` on the channel with `peer` (legs[0] the leg its proposer pays,
 * legs[1] the other; either may be NULL) and its outcome (both legs share their status).
 * LEDGER_E_NOT_FOUND when the channel holds no such trade, CORRUPT when it holds it other than
 * as two legs (edited books). A writer's call. */
ledger_err_t ledger_fx_find(ledger_t *l, const char *peer, const char *fx_id, settlement_t legs[2],
                            ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* Whether `amount_minor` more of the peer's debt to us would take it over `cap_minor`, the cap we
 * grant it in `currency`: its net debt, the payments of its we hold and the legs our pending
 * trades would have it pay us count (3.8.2, 3.10.3). A writer's read. */
ledger_err_t ledger_cap_exceeded(ledger_t *l, const char *peer, const char *currency,
                                 int64_t amount_minor, int64_t cap_minor, bool *over)
    __attribute__((warn_unused_result));

/* Records a trade we propose (legs as fx_trade_prepare made them) pending, with our signed
 * FxProposal of `sequence` as the evidence of both rows: the leg we pay as an outgoing payment,
 * the peer's leg reserving its amount in the cap we grant it in that currency (`cap_minor`).
 * *why: NULL when recorded, "AM02" when the peer's leg would take it over that cap (nothing
 * written). LEDGER_E_CONFLICT when an id is used on the channel; E_OVERFLOW when a balance
 * would leave int64. */
ledger_err_t ledger_fx_propose(ledger_t *l, const settlement_t legs[2], int64_t cap_minor,
                               const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                               const char **why, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* The acceptor's answer to our trade `fx_id`, naming `answers` (the body hash of our FxProposal):
 * `answer` STATUS_SETTLED posts both legs, STATUS_REJECTED voids both with `reason`,
 * STATUS_HELD notes that the acceptor holds them (held_at_peer rows); both legs or neither, every
 * check made on both before either is written. The same final answer again: outcome->repeated.
 * LEDGER_E_NOT_FOUND: no trade of ours of that id; CONFLICT: another body, or another final
 * answer than the one held; STATE: a PDNG after the final answer; CORRUPT: legs that differ
 * (edited books). Nothing is written then. Legs never resolve through ledger_resolve_answering
 * or ledger_note_held_at_peer (LEDGER_E_STATE). */
ledger_err_t ledger_fx_resolve(ledger_t *l, const char *peer, const char *fx_id,
                               const uint8_t answers[static SETTLEMENT_HASH_BYTES], status_t answer,
                               const char *reason, const uint8_t *evidence, size_t evidence_len,
                               uint64_t sequence, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* Applies the legs of the peer's FxProposal (fx_decode) as one: both booked, both held (`hold`,
 * LEDGER_HOLD_REVIEW) or both refused (`reject_reason`, or AM02 when the leg the peer pays us
 * takes its debt over `cap_minor`, the cap we grant it in that currency, counting what we hold
 * and reserve), as ledger_receive_holding does for a payment; the rows carry the FxProposal.
 * Both legs recorded with this content: the stored outcome, repeated. A leg's UETR or the
 * trade's id used on the channel otherwise: LEDGER_E_CONFLICT, nothing recorded. */
ledger_err_t ledger_fx_receive(ledger_t *l, const settlement_t legs[2], int64_t cap_minor,
                               const char *reject_reason, const char *hold, const uint8_t *evidence,
                               size_t evidence_len, uint64_t sequence, ledger_outcome_t *outcome)
    __attribute__((warn_unused_result));

/* ---- cancellation (PROTOCOL.md 3.8.4) ---- */

/* The payer asks its pending settlement back: a `cancel_requested` row (evidence our
 * CancelRequest of `sequence`, reason its reason) and the request's id kept open.
 * LEDGER_E_STATE when the settlement is not our pending one or a request is open already. */
ledger_err_t ledger_cancel_request(ledger_t *l, const char *peer, const char *uetr,
                                   const char *cancellation_id, const char *reason,
                                   const uint8_t *evidence, size_t evidence_len, uint64_t sequence)
    __attribute__((warn_unused_result));

/* The payee's CancelAnswer to our open request `cancellation_id`: `cancelled` voids our pending
 * settlement with `reason` (the request's), else a `cancel_refused` row with `reason`; either
 * way the request is closed. LEDGER_E_STATE (nothing changes) when we have no such open
 * request, or the settlement is final and the answer says cancelled. */
ledger_err_t ledger_cancel_answered(ledger_t *l, const char *peer, const char *uetr,
                                    const char *cancellation_id, bool cancelled, const char *reason,
                                    const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                                    ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* At the payee, the payer's CancelRequest for a settlement decided already: a `cancel_refused`
 * row (evidence the request, reason ours), to take our CancelAnswer as its reply
 * (ledger_attach_reply). LEDGER_E_STATE when it is not a decided incoming settlement. */
ledger_err_t ledger_cancel_refused_here(ledger_t *l, const char *peer, const char *uetr,
                                        const char *reason, const uint8_t *evidence,
                                        size_t evidence_len) __attribute__((warn_unused_result));

/* Whether the payee said it holds our settlement (at_peer `held`). */
ledger_err_t ledger_at_peer(ledger_t *l, const char *peer, const char *uetr, bool *held)
    __attribute__((warn_unused_result));

/* Looks up a settlement and its status. LEDGER_E_NOT_FOUND if absent. */
ledger_err_t ledger_find(ledger_t *l, const char *peer, const char *uetr, settlement_t *s,
                         ledger_outcome_t *outcome) __attribute__((warn_unused_result));

/* net and pending of one channel in one currency (0 when nothing was booked). */
ledger_err_t ledger_position(ledger_t *l, const char *peer, const char *currency,
                             int64_t *net_minor, int64_t *pending_minor)
    __attribute__((warn_unused_result));

typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t net_minor;
    int64_t pending_minor;
} ledger_position_t;

/* Calls fn for every (peer, currency) that has an account, ordered by peer and currency. */
ledger_err_t ledger_positions(ledger_t *l, void (*fn)(const ledger_position_t *p, void *arg),
                              void *arg) __attribute__((warn_unused_result));

/* Payments by the status `ledger` shows (a payment wholly returned by accepted returns counts as
 * returned), returns (3.9) and FX trades (3.10) by theirs. */
typedef struct {
    uint64_t pending, settled, rejected, returned, held;
    uint64_t returns_pending, returns_accepted, returns_rejected;
    uint64_t fx[STATUS_MAX + 1]; /* FX trades (3.10) by status */
} ledger_counts_t;

ledger_err_t ledger_counts(ledger_t *l, ledger_counts_t *counts)
    __attribute__((warn_unused_result));

/* Calls fn for every settlement, in the order they were first recorded. */
ledger_err_t ledger_settlements(ledger_t *l,
                                void (*fn)(const settlement_t *s, const ledger_outcome_t *o,
                                           void *arg),
                                void *arg) __attribute__((warn_unused_result));

/* Calls fn for every return (3.9) only, in the order they were first recorded. */
ledger_err_t ledger_returns(ledger_t *l,
                            void (*fn)(const settlement_t *s, const ledger_outcome_t *o, void *arg),
                            void *arg) __attribute__((warn_unused_result));

/* Calls fn for every FX trade (3.10), in the order they were first recorded: legs[0] the leg its
 * proposer pays, legs[1] the other (uetr, amount, currency, fx_id, direction, expiry), and the
 * trade's status (its first leg's, with hold and at_peer). */
ledger_err_t ledger_fx_trades(ledger_t *l,
                              void (*fn)(const settlement_t legs[2], const ledger_outcome_t *o,
                                         void *arg),
                              void *arg) __attribute__((warn_unused_result));

/* The first journal row that must carry our reply if it books or refuses a peer's settlement
 * (rows before it were written before schema 4); 0 when the ledger predates schema 4. */
ledger_err_t ledger_replies_from(ledger_t *l, int64_t *seq) __attribute__((warn_unused_result));

/* The hash-chain head (all zero for an empty journal) and the number of journal rows. */
ledger_err_t ledger_head(ledger_t *l, uint8_t head[static LEDGER_HASH_BYTES], uint64_t *rows)
    __attribute__((warn_unused_result));

/* ---- outbox: messages queued in the transaction that caused them ------------------------ */

/* The sequence number the next message to `peer` will carry (1 for the first). */
ledger_err_t ledger_outbox_next_seq(ledger_t *l, const char *peer, uint64_t *seq)
    __attribute__((warn_unused_result));

/* Queues a signed message to `peer` under sequence `seq`, which must be the next one. */
ledger_err_t ledger_outbox_put(ledger_t *l, const char *peer, uint64_t seq, int type,
                               const uint8_t *signed_msg, size_t signed_len)
    __attribute__((warn_unused_result));

/* Calls fn for the queued messages to `peer` with sequence >= from_seq, in order, at most
 * `limit` of them. fn returns false to stop early. */
ledger_err_t ledger_outbox_scan(ledger_t *l, const char *peer, uint64_t from_seq, size_t limit,
                                bool (*fn)(uint64_t seq, int type, const uint8_t *signed_msg,
                                           size_t signed_len, void *arg),
                                void *arg) __attribute__((warn_unused_result));

/* Channel counters kept with the books: what we queued, what the peer acknowledged, what we
 * applied of the peer's messages. */
typedef struct {
    uint64_t sent_seq;      /* highest sequence queued to the peer */
    uint64_t acked_seq;     /* highest of ours the peer acknowledged */
    uint64_t applied_seq;   /* highest of the peer's we committed */
    bool diverged;          /* a Hello showed a rollback: held until an operator repairs it */
    uint32_t wire_version;  /* the Inner format negotiated with the peer (1 until it offers 2) */
    uint64_t peer_features; /* the features of the peer's latest Hello (schema 12; 0 unknown) */
} ledger_channel_t;

ledger_err_t ledger_channel_get(ledger_t *l, const char *peer, ledger_channel_t *ch)
    __attribute__((warn_unused_result));
ledger_err_t ledger_channel_set_acked(ledger_t *l, const char *peer, uint64_t acked_seq)
    __attribute__((warn_unused_result));
/* Sets applied_seq and keeps `proof`, the peer's signed message of that sequence (NULL, 0:
 * none): what a re-base shows the peer to prove how far we applied. */
ledger_err_t ledger_channel_set_applied(ledger_t *l, const char *peer, uint64_t applied_seq,
                                        const uint8_t *proof, size_t proof_len)
    __attribute__((warn_unused_result));
/* A malloc'd copy of the proof kept with applied_seq (*proof NULL when there is none). */
ledger_err_t ledger_channel_proof(ledger_t *l, const char *peer, uint8_t **proof, size_t *len)
    __attribute__((warn_unused_result));
/* Records the features of the peer's latest Hello (what a restarted node goes by until the
 * peer's next Hello, for set-offs: PROTOCOL.md 3.12.2). */
ledger_err_t ledger_channel_set_features(ledger_t *l, const char *peer, uint64_t features)
    __attribute__((warn_unused_result));
ledger_err_t ledger_channel_set_version(ledger_t *l, const char *peer, uint32_t version)
    __attribute__((warn_unused_result));
ledger_err_t ledger_channel_set_diverged(ledger_t *l, const char *peer, bool diverged)
    __attribute__((warn_unused_result));

/* How one journal row changes the peer account's balances, debits minus credits (the
 * clearing account of the currency takes the opposite). `original` is the direction of the
 * settlement the row belongs to. Balances are nets, not gross totals, so they stay as small
 * as the positions themselves; every write checks them against int64 first. */
typedef struct {
    int64_t pending; /* change to pending_net */
    int64_t posted;  /* change to posted_net */
} ledger_effect_t;

ledger_effect_t ledger_row_effect(entry_kind_t kind, direction_t original, int64_t amount_minor);

/* ---- reconciliation support ----------------------------------------------------------- */

/* This node's code, as recorded in the ledger. */
const char *ledger_node(const ledger_t *l);

/* Keeps our own signed reply (the StatusReport we queued) with an incoming settlement, so that
 * a repair can hand it back to a peer that lost it. When the row that booked or refused the
 * settlement is the last one appended in this transaction, the reply also becomes part of that
 * row and its hash (schema 4): a status flipped later contradicts our own signature. */
ledger_err_t ledger_set_reply(ledger_t *l, const char *peer, const char *uetr,
                              const uint8_t *signed_msg, size_t signed_len, uint64_t sequence)
    __attribute__((warn_unused_result));

/* Records a settlement this ledger lacks, exactly as signed evidence shows it was decided
 * (a repair after a rollback): an outgoing one as pending then posted/voided (the peer's
 * StatusReport as evidence of the outcome); an incoming one as booked/refused by our own
 * StatusReport (kept as its reply). Either way an ENTRY_IMPORTED row then carries that
 * StatusReport, so `audit` re-verifies what justified the import. No cap check: the decision
 * was made back then. The caller verifies the evidence first (a version-2 StatusReport naming
 * the Settlement's body hash). LEDGER_E_STATE if the UETR is already recorded. */
ledger_err_t ledger_import(ledger_t *l, const settlement_t *s, status_t status, const char *reason,
                           const uint8_t *settlement_evidence, size_t settlement_len,
                           uint64_t settlement_sequence, const uint8_t *status_evidence,
                           size_t status_len, uint64_t status_sequence)
    __attribute__((warn_unused_result));

/* ledger_import for a trade (PROTOCOL.md 3.10, 4.9): both legs of the FxProposal (fx_decode,
 * legs[0] the leg its proposer pays) recorded together as the acceptor's StatusReport decided
 * them, never one: at the proposer pending then posted/voided (the report as their evidence),
 * at the acceptor booked/refused on the FxProposal with our report as both records' reply;
 * then an ENTRY_IMPORTED row per leg carrying the report. No cap check. The caller verifies
 * the evidence (a version-2 report whose binding is the FxProposal's body hash).
 * LEDGER_E_CONFLICT if the trade's id or a leg's UETR is used on the channel. */
ledger_err_t ledger_fx_import(ledger_t *l, const settlement_t legs[2], status_t status,
                              const char *reason, const uint8_t *proposal_evidence,
                              size_t proposal_len, uint64_t proposal_sequence,
                              const uint8_t *status_evidence, size_t status_len,
                              uint64_t status_sequence) __attribute__((warn_unused_result));

/* A re-base after a repair (see recon.c): the counters to set, and what justified them. */
typedef struct {
    uint64_t sent_seq;    /* our stream continues after this */
    uint64_t acked_seq;   /* what the peer has; everything above is sent again */
    uint64_t applied_seq; /* of the peer's stream: what we can prove we applied */
    uint64_t proven_seq;  /* the sequence `proof` shows the peer applied (0: no proof) */
    const uint8_t *proof; /* our own signed message the peer showed, or NULL */
    size_t proof_len;
} ledger_rebase_t;

/* Sets the channel's counters as `rb` says, clears DIVERGED, and appends an ENTRY_REBASED
 * journal row carrying the proof (its amount is proven_seq). */
ledger_err_t ledger_channel_rebase(ledger_t *l, const char *peer, const ledger_rebase_t *rb)
    __attribute__((warn_unused_result));

/* Appends an ENTRY_OPERATOR row for a person's action concerning channel `peer` ("" for none);
 * `record` is the JSON the row carries (see entry_kind_t). */
ledger_err_t ledger_record_operation(ledger_t *l, const char *peer, const char *record)
    __attribute__((warn_unused_result));

/* One recorded operator action, as ledger_operations reads it back. */
typedef struct {
    int64_t seq;        /* journal row */
    const char *peer;   /* "" when it concerns no channel */
    const char *record; /* the JSON the row carries */
    int64_t created_ms; /* when the node recorded it */
} ledger_operation_t;

/* Calls fn for every recorded operator action, oldest first. */
ledger_err_t ledger_operations(ledger_t *l, void (*fn)(const ledger_operation_t *op, void *arg),
                               void *arg) __attribute__((warn_unused_result));

/* Stores a co-signed checkpoint (the encoded Checkpoint, both signatures, and this node's
 * journal row count and head it names), and appends it to the journal (ENTRY_CHECKPOINT). */
ledger_err_t ledger_checkpoint_store(ledger_t *l, const char *peer, const uint8_t *body,
                                     size_t body_len, const uint8_t *own_signature,
                                     const uint8_t *peer_signature, uint64_t own_rows,
                                     const uint8_t own_head[static LEDGER_HASH_BYTES])
    __attribute__((warn_unused_result));

/* When the last checkpoint with `peer` was stored (*at_ms, 0: never) and the channel's
 * sequenced messages both ways then (*messages). */
ledger_err_t ledger_checkpoint_when(ledger_t *l, const char *peer, uint64_t *messages,
                                    int64_t *at_ms) __attribute__((warn_unused_result));

/* ---- key history (schema 6; the CURVE key switch, schema 7) ---------------------------------- */

/* Key history (schema 6): which signing key signs which of a channel's sequenced messages,
 * ours (towards `peer`) and the peer's (towards us). The keys of one side of a channel cover
 * consecutive ranges of its sequence numbers, each closed where the next one begins; a side
 * with no key recorded (every side of a ledger upgraded from schema 5) is signed throughout by
 * the key of the configured card, and the callers take it so. From schema 7 each key also
 * says whether, and after which message, the transport switched to its CURVE key (the
 * KeySwitch, ledger_key_set_switch). Everything here is public. */
typedef enum { KEY_SIDE_OURS = 0, KEY_SIDE_THEIRS = 1 } key_side_t;

typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    key_side_t side;
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];           /* identity_key_id of sign_public */
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES]; /* Ed25519 */
    uint8_t box_public[crypto_box_PUBLICKEYBYTES];   /* X25519 */
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1]; /* Z85, 40 chars + NUL */
    uint64_t first_seq;    /* the first of that side's sequence numbers it signs (1: from the
                              start) */
    uint64_t last_seq;     /* the last it signs; 0: open (the side's current key) */
    uint64_t revoked_from; /* 0: not revoked; else messages from this sequence on are refused */
    char source[16];       /* "card" (the configured card), "announced" (a sequenced
                              announcement), "replaced" (an operator's peer add --replace) */
    int64_t created_ms;    /* wall clock when recorded (the ledger's, ledger_set_clock) */
    uint8_t *evidence;     /* the SignedMessage that announced it (malloc'd, owned by the record
                              when read back; NULL for "card"/"replaced") */
    size_t evidence_len;
    uint64_t switch_seq; /* schema 7. 0: the transport has not switched to this key's CURVE key;
                            else the sequence number, in this side's stream, of the KeySwitch
                            after which it has (ours: the KeySwitch we queued; theirs: the
                            peer's KeySwitch we applied). first_seq to 2^62, and at most last_seq
                            once the key is closed (unless closed empty). Set on the open key
                            only (ledger_key_set_switch), kept when it is closed later. */
    int64_t switch_ms;   /* schema 7. Ours: the overlap the operator asked for at the rotation,
                            in ms (may be set while switch_seq is still 0); theirs: the wall
                            clock (ms) until which the previous key's CURVE client key stays
                            admitted (set with switch_seq). 0: none; never negative */
} key_record_t;

/* Inside a transaction: records a key of `k->peer`/`k->side` from k->first_seq (>= 1). The key
 * before it on that side of that channel, if open, is closed at first_seq - 1 (its last_seq);
 * LEDGER_E_STATE if that is below the open key's switch_seq (the switch belongs to its range),
 * unless the open key is closed empty (below).
 * The same (peer, side, key_id) twice: LEDGER_E_CONFLICT unless every field is equal (then a
 * no-op, LEDGER_OK). A first_seq at or below the open key's first_seq: LEDGER_E_STATE, except
 * a "replaced" key from the open key's first_seq (2 or more) when ledger_key_revoke revoked
 * that key there or before: it is closed at first_seq - 1, a key that signs nothing.
 * A key is recorded open and not revoked, stamped with the ledger's clock (or 1 ms after the
 * side's newest stamp, if that is not earlier: keys of a side are stamped in the order they
 * were recorded, which orders keys closed empty at the same number): k->last_seq,
 * k->revoked_from, k->switch_seq and k->switch_ms must be 0 and k->created_ms is not read. The
 * fields a repeat compares are those the caller gives (the keys, first_seq, source, evidence),
 * not what the ledger changed since (last_seq, revoked_from, the switch) nor when it was
 * recorded. LEDGER_E_STATE also for a record
 * that cannot be one: peer not a node code, key_id not identity_key_id(sign_public),
 * curve_public not 40 characters, first_seq above CORRIDOR_SEQUENCE_MAX, evidence missing for
 * "announced", present for another source, or above CORRIDOR_WIRE_BYTES_MAX. Another key
 * with the same key_id on the same side (going back to an old key) is a conflict. */
ledger_err_t ledger_key_add(ledger_t *l, const key_record_t *k) __attribute__((warn_unused_result));

/* Inside a transaction: every key of (peer, side) whose range reaches `from_seq` or beyond is
 * revoked from from_seq (revoked_from = from_seq, or kept if already lower), except key_id
 * `keep` (may be NULL). from_seq is 1 to CORRIDOR_SEQUENCE_MAX (else LEDGER_E_STATE); no key
 * to revoke is no error. */
ledger_err_t ledger_key_revoke(ledger_t *l, const char *peer, key_side_t side, uint64_t from_seq,
                               const uint8_t *keep) __attribute__((warn_unused_result));

/* Inside a transaction: the CURVE key switch of the open key `key_id` of (peer, side): sets its
 * switch_seq and switch_ms (see key_record_t). Ours: switch_seq 0 and the overlap asked for at
 * the rotation, then the KeySwitch's sequence with the same overlap; theirs: the KeySwitch's
 * sequence and the wall clock until which the previous CURVE key is admitted. A switch happens
 * once: the same values again are a no-op (LEDGER_OK). LEDGER_E_STATE, nothing changed and
 * ledger_last_error saying why, when there is no such key, it is not open (last_seq 0),
 * switch_seq is neither 0 nor first_seq to CORRIDOR_SEQUENCE_MAX, switch_ms is negative, or
 * the key's switch_seq is set already and other values are given (another sequence, 0, or
 * another switch_ms). */
ledger_err_t ledger_key_set_switch(ledger_t *l, const char *peer, key_side_t side,
                                   const uint8_t key_id[static IDENTITY_KEY_ID_BYTES],
                                   uint64_t switch_seq, int64_t switch_ms)
    __attribute__((warn_unused_result));

/* Calls each() for every key recorded for `peer` (NULL: every peer), ordered by peer, side,
 * first_seq, then as recorded (created_ms). The record (and its evidence) is valid only during
 * the call. A reader of a ledger older than schema 6 finds no key (LEDGER_OK); of schema 6, no
 * switch (switch_seq and switch_ms 0). A row that ledger_key_add and ledger_key_set_switch
 * cannot have written (an edited file) is LEDGER_E_CORRUPT, each() having seen the rows before
 * it. */
ledger_err_t ledger_keys(ledger_t *l, const char *peer,
                         void (*each)(const key_record_t *k, void *arg), void *arg)
    __attribute__((warn_unused_result));

/* ---- the channel at a sequence cut --------------------------------------------------------- */

/* One currency's net position towards the peer at a cut (posted; pending counts nothing). */
typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t net_minor;
} ledger_cut_position_t;

/* The channel as it stood at a cut: every settlement our messages up to `sent_seq` and the
 * peer's up to `applied_seq` opened, each in the status those messages gave it (a decision or
 * return above the cut leaves it pending or settled). Both sides compute the same digest,
 * count and mirrored positions for the same cut, however far either has gone past it: the
 * payer's Settlement opens an entry, the payee's StatusReport decides it, a Return returns it.
 * Settlements recorded before schema 5 count as below every cut. */
typedef struct {
    uint8_t digest[32]; /* the channel digest (digest.h) of those entries */
    uint64_t entries;
    ledger_cut_position_t *positions; /* currencies whose net is not zero, ascending */
    size_t n_positions;
    uint64_t touched; /* settlements read: those touched above the cut */
} ledger_cut_t;

/* Computes the channel with `peer` at the cut (our sent_seq, our applied_seq). The work is the
 * settlements touched above the cut, not the channel's size: LEDGER_E_STATE when more than
 * LEDGER_CUT_TOUCHED_MAX were. Release with ledger_cut_release. */
ledger_err_t ledger_channel_at_cut(ledger_t *l, const char *peer, uint64_t sent_seq,
                                   uint64_t applied_seq, ledger_cut_t *out)
    __attribute__((warn_unused_result));
void ledger_cut_release(ledger_cut_t *cut);

/* The encoded Checkpoint last stored with `peer` (malloc'd; NULL when there is none). */
ledger_err_t ledger_checkpoint_last(ledger_t *l, const char *peer, uint8_t **body, size_t *len)
    __attribute__((warn_unused_result));

/* The stored hash of journal row `seq`; LEDGER_E_NOT_FOUND if there is no such row. */
ledger_err_t ledger_row_hash_at(ledger_t *l, uint64_t seq, uint8_t hash[static LEDGER_HASH_BYTES])
    __attribute__((warn_unused_result));

/* The hash of one journal row given the previous head: the one definition `audit` shares. */
typedef struct {
    int64_t seq; /* row number, from 1 */
    entry_kind_t kind;
    const char *peer;
    const char *uetr;
    const char *currency;
    int64_t amount_minor;
    const char *reason;          /* "" if none */
    const uint8_t *content_hash; /* the settlement's content hash */
    const uint8_t *evidence;     /* signed message bytes */
    size_t evidence_len;
    int64_t created_unix_ms;
    const uint8_t *reply; /* booked/refused rows from schema 4 on: our signed StatusReport */
    size_t reply_len;     /* 0: none (hashed only when present, so older rows keep theirs) */
} ledger_row_t;

void ledger_row_hash(const uint8_t prev[static LEDGER_HASH_BYTES], const ledger_row_t *row,
                     uint8_t out[static LEDGER_HASH_BYTES]);

#endif
