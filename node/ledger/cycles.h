/*
 * Settlement cycles in the books (proto/PROTOCOL.md 3.11): the cycles of each channel with
 * their signed statements, the running figures a close starts from, and the net settlements
 * that pay a closed cycle outside the channel and renew the cap's headroom.
 *
 * The running figures move inside ledger.c with every final status (so a close never reads the
 * cycle's entries); ledger_cycle_at_cut, also there, takes them back to a cut by undoing what was
 * touched above it, as ledger_channel_at_cut does for the channel.
 */
#ifndef CORRIDOR_CYCLES_H
#define CORRIDOR_CYCLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cycle.h"
#include "ledger.h"

/* One currency's figures from our view. */
typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t paid;
    int64_t received;
    uint64_t count;
    uint8_t digest[DIGEST_BYTES];
} ledger_cycle_figure_t;

typedef struct {
    size_t n;
    ledger_cycle_figure_t f[CYCLE_CURRENCIES_MAX]; /* ascending, none with count 0 */
    uint64_t touched;                              /* settlements undone above the cut */
} ledger_cycle_figures_t;

/* The figures of the entries made final since the last closed cut and within the cut (our sent,
 * our applied), from the running figures and the settlements touched above the cut (ledger.c).
 * LEDGER_E_STATE when more than LEDGER_CUT_TOUCHED_MAX were touched or more currencies than a
 * statement holds; LEDGER_E_OVERFLOW when a sum leaves int64. Needs the write connection. */
ledger_err_t ledger_cycle_at_cut(ledger_t *l, const char *peer, uint64_t sent_seq,
                                 uint64_t applied_seq, ledger_cycle_figures_t *out)
    __attribute__((warn_unused_result));

/* Sets the running figures of `peer` to what was made final above the cut (our sent, our
 * applied): every settlement touched above it, its status now less its status at the cut
 * (PROTOCOL.md 4.9, cycles). For after a repair imported closed cycles: the next close starts at
 * the last closed cut. Opens the write transaction; LEDGER_E_STATE when more than
 * LEDGER_CUT_TOUCHED_MAX settlements were touched or more currencies than a statement holds. */
ledger_err_t ledger_cycle_running_rebuild(ledger_t *l, const char *peer, uint64_t sent_seq,
                                          uint64_t applied_seq) __attribute__((warn_unused_result));

/* The statement's views, digest and entry count from figures. */
void ledger_cycle_views(const ledger_cycle_figures_t *f, cycle_view_t views[CYCLE_CURRENCIES_MAX],
                        uint8_t digest[static DIGEST_BYTES], uint64_t *entries);

/* The running figures of a channel as they are (the open cycle), through fn. */
ledger_err_t ledger_cycle_running(ledger_t *l, const char *peer,
                                  void (*fn)(const ledger_cycle_figure_t *f, void *arg), void *arg);

typedef enum {
    CYCLE_CLOSING = 1,  /* proposed by us, not answered yet */
    CYCLE_CLOSED = 2,   /* both signatures over the same statement */
    CYCLE_DISPUTED = 3, /* the peer signed other figures at the same cut */
} cycle_state_t;

const char *cycle_state_name(cycle_state_t state);

typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    uint64_t cycle;
    cycle_state_t state;
    bool ours; /* we proposed it */
    uint64_t own_sent, peer_sent;
    uint8_t *statement; /* ours, as signed */
    size_t statement_len;
    uint8_t own_signature[crypto_sign_BYTES];
    uint8_t *peer_statement; /* disputed only */
    size_t peer_statement_len;
    uint8_t peer_signature[crypto_sign_BYTES];
    bool has_peer_signature;
    char error[CYCLE_ERROR_MAX + 1];
    int64_t created_ms, closed_ms;
} ledger_cycle_t;

void ledger_cycle_release(ledger_cycle_t *c);

/* The highest-numbered cycle with `peer` (*found false when none). */
ledger_err_t ledger_cycle_latest(ledger_t *l, const char *peer, ledger_cycle_t *out, bool *found)
    __attribute__((warn_unused_result));
ledger_err_t ledger_cycle_get(ledger_t *l, const char *peer, uint64_t cycle, ledger_cycle_t *out,
                              bool *found) __attribute__((warn_unused_result));

/* The cycles of `peer` numbered from `from`, ascending, at most `limit` of them, through fn;
 * *more says whether one above the last given exists. */
ledger_err_t ledger_cycles_from(ledger_t *l, const char *peer, uint64_t from, size_t limit,
                                void (*fn)(const ledger_cycle_t *c, void *arg), void *arg,
                                bool *more) __attribute__((warn_unused_result));

/* Records cycle `cycle` as closing at the cut (own_sent, peer_sent), with our statement, our
 * signature and the figures it states (replacing a closing row of that number). */
ledger_err_t ledger_cycle_propose(ledger_t *l, const char *peer, uint64_t cycle, bool ours,
                                  uint64_t own_sent, uint64_t peer_sent, const uint8_t *statement,
                                  size_t statement_len,
                                  const uint8_t own_signature[static crypto_sign_BYTES],
                                  const ledger_cycle_figures_t *figures)
    __attribute__((warn_unused_result));

/* Ends a closing cycle: closed (peer_statement NULL: the peer signed ours) with a `cycle` row, or
 * disputed (the peer's statement and error kept). Either way the running figures lose ours. */
ledger_err_t ledger_cycle_finish(ledger_t *l, const char *peer, uint64_t cycle,
                                 const uint8_t *peer_statement, size_t peer_statement_len,
                                 const uint8_t peer_signature[static crypto_sign_BYTES],
                                 const char *error) __attribute__((warn_unused_result));

/* Records cycle `cycle`, closed elsewhere and proven by both signatures over `statement`, that
 * this node lacks (a repair after a restore, PROTOCOL.md 4.9): a closed row with a `cycle`
 * journal row. The running figures do not move: ledger_cycle_running_rebuild follows. */
ledger_err_t ledger_cycle_import(ledger_t *l, const char *peer, uint64_t cycle, bool ours,
                                 uint64_t own_sent, uint64_t peer_sent, const uint8_t *statement,
                                 size_t statement_len,
                                 const uint8_t own_signature[static crypto_sign_BYTES],
                                 const uint8_t peer_signature[static crypto_sign_BYTES])
    __attribute__((warn_unused_result));

/* Deletes a closing cycle the peer refused: its number is free again. */
ledger_err_t ledger_cycle_forget(ledger_t *l, const char *peer, uint64_t cycle)
    __attribute__((warn_unused_result));

/* Whether `signature` (H8) over `statement` is by a key of `side` that the key history records
 * for `peer` (a cycle signed before rotations). */
bool ledger_cycle_signed_by(ledger_t *l, const char *peer, key_side_t side,
                            const uint8_t *statement, size_t len, const uint8_t *signature);

/* Every cycle (of `peer`, or all when NULL), by peer and number. */
ledger_err_t ledger_cycles(ledger_t *l, const char *peer,
                           void (*fn)(const ledger_cycle_t *c, void *arg), void *arg)
    __attribute__((warn_unused_result));

/* A net settlement (pacs.009) of a cycle. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char id[CORRIDOR_UETR_LEN + 1];
    uint64_t cycle;
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t amount_minor;
    bool we_owe; /* we are the debtor: we sent it */
    status_t status;
    char reason[CORRIDOR_REASON_LEN_MAX + 1];
    uint8_t body_hash[SETTLEMENT_HASH_BYTES];
    char reference[CYCLE_REFERENCE_MAX + 1];
    int64_t created_ms;
} ledger_net_t;

ledger_err_t ledger_net_find(ledger_t *l, const char *peer, const char *id, ledger_net_t *out,
                             bool *found) __attribute__((warn_unused_result));

/* Whether a net settlement of (cycle, currency) is pending, held or settled with `peer`. */
ledger_err_t ledger_net_open(ledger_t *l, const char *peer, uint64_t cycle, const char *currency,
                             bool *open) __attribute__((warn_unused_result));

/* Whether `id` names anything on the channel: a payment, return, FX trade or leg, or a net
 * settlement (ids are unique per channel). Needs the write connection. */
ledger_err_t ledger_id_taken(ledger_t *l, const char *peer, const char *id, bool *taken)
    __attribute__((warn_unused_result));

/* Whether `id` names a net settlement of the channel: one probe of a statement prepared at open,
 * for the path of every StatusReport (ledger_net_find prepares its own). Write connection. */
ledger_err_t ledger_net_known(ledger_t *l, const char *peer, const char *id, bool *known)
    __attribute__((warn_unused_result));

/* Whether a net settlement of (cycle, currency) with `peer` is settled. */
ledger_err_t ledger_net_settled(ledger_t *l, const char *peer, uint64_t cycle, const char *currency,
                                bool *settled) __attribute__((warn_unused_result));

/* Records a net settlement as n says (pending when we owe, held when we are owed) with a
 * `net_claimed` row whose evidence is the NetSettlement; ledger_net_decide decides it. */
ledger_err_t ledger_net_record(ledger_t *l, const ledger_net_t *n, const uint8_t *evidence,
                               size_t evidence_len) __attribute__((warn_unused_result));

/* Decides a pending or held net settlement: settled (a `net_settled` row moving posted by +m
 * when we owe, -m when owed) or rejected with `reason` (`net_refused`). The message of
 * `decided_seq` decided it (the creditor's StatusReport); evidence as PROTOCOL.md 3.11.4. */
ledger_err_t ledger_net_decide(ledger_t *l, const char *peer, const char *id, bool settled,
                               const char *reason, uint64_t decided_seq, const uint8_t *evidence,
                               size_t evidence_len, const uint8_t *reply, size_t reply_len)
    __attribute__((warn_unused_result));

/* The stored NetSettlement and our reply of a net settlement (malloc'd; reply NULL if none). */
ledger_err_t ledger_net_messages(ledger_t *l, const char *peer, const char *id, uint8_t **evidence,
                                 size_t *evidence_len, uint8_t **reply, size_t *reply_len)
    __attribute__((warn_unused_result));

/* Every net settlement (of `peer`, or all), by peer, cycle, currency. */
ledger_err_t ledger_nets(ledger_t *l, const char *peer,
                         void (*fn)(const ledger_net_t *n, void *arg), void *arg)
    __attribute__((warn_unused_result));

#endif
