/*
 * Statements: one node's view of a channel, as reconciliation needs it (camt.053 in spirit).
 *
 * Ranges of the channel are named by UETR prefixes ("" is the whole channel, "3f" the entries
 * whose UETR starts with 3f). A range's fingerprint (count, sum of canonical entry hashes, see
 * digest.h) is one aggregate over the ledger's (peer, uetr) index; the whole channel's comes
 * from the digest the ledger keeps up to date, so identical channels are recognised in O(1).
 *
 * statement_answer() is the responder's side of the Negentropy-style exchange: for each range
 * the requester sent, an equal fingerprint needs nothing; a small range that differs is
 * answered with every entry in it (a leaf); a large one with its 16 sub-range fingerprints.
 * The answer is bounded in size; ranges left unanswered are asked again.
 */
#ifndef CORRIDOR_STATEMENT_H
#define CORRIDOR_STATEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor.pb-c.h"
#include "digest.h"
#include "ledger.h"

/* A range fingerprint. */
typedef struct {
    char prefix[STATEMENT_PREFIX_MAX + 1];
    uint64_t count;
    uint8_t sum[DIGEST_BYTES];
} range_fp_t;

/* One entry as both sides describe it (see StatementEntry in the proto). */
typedef struct {
    char uetr[CORRIDOR_UETR_LEN + 1];
    char payer[CORRIDOR_NAME_LEN_MAX + 1];
    char payee[CORRIDOR_NAME_LEN_MAX + 1];
    int64_t amount_minor;
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    char status[12];
    char reason[CORRIDOR_REASON_LEN_MAX + 1];
    /* A return (PROTOCOL.md 3.9): `uetr` is its return id, `payer` the returner, and these
     * name the payment it returns ("-" when the return was malformed and refused) and its
     * return reason ("" then). Both "" for a payment. */
    char original_uetr[CORRIDOR_UETR_LEN + 1];
    char return_reason[CORRIDOR_REASON_LEN_MAX + 1];
    /* A leg of an FX trade (PROTOCOL.md 3.10): `uetr` is the leg's, `payer` the node that pays
     * the leg (the money's way, not the FxProposal's), and this the trade's id. "" otherwise. */
    char fx_id[CORRIDOR_UETR_LEN + 1];
    /* A leg of a multilateral set-off (PROTOCOL.md 3.12.6): the set-off id, equal to `uetr`;
     * `payer` the edge's creditor, `payee` its debtor; `fx_id` is then "". "" otherwise. */
    char setoff_id[CORRIDOR_UETR_LEN + 1];
} statement_entry_t;

/* Whether an entry is a return rather than a payment. */
static inline bool statement_entry_is_return(const statement_entry_t *e)
{
    return e->original_uetr[0] != '\0';
}

/* Whether an entry is a leg of a multilateral set-off. */
static inline bool statement_entry_is_setoff_leg(const statement_entry_t *e)
{
    return e->setoff_id[0] != '\0';
}

/* Whether an entry is a leg of an FX trade. */
static inline bool statement_entry_is_fx_leg(const statement_entry_t *e)
{
    return e->fx_id[0] != '\0';
}

/* The canonical hash of an entry (PROTOCOL.md 4.1), as the ledger's canon_hash computes it for
 * its own: digest_setoff_leg_entry for a set-off leg, digest_fx_leg_entry for an FX leg,
 * digest_return_entry for a return, else
 * digest_entry. A range's fingerprint is the
 * sum of these. */
void statement_entry_hash(const statement_entry_t *e, uint8_t out[static DIGEST_BYTES]);

/* Whether a prefix is valid: up to STATEMENT_PREFIX_MAX lower-case hex digits. */
bool statement_prefix_valid(const char *prefix);

/* The fingerprint of one range of the channel with `peer`. */
ledger_err_t statement_fingerprint(ledger_t *l, const char *peer, const char *prefix,
                                   range_fp_t *out) __attribute__((warn_unused_result));

/* The fingerprints of the 16 sub-ranges of `prefix` (prefix + one hex digit). */
ledger_err_t statement_children(ledger_t *l, const char *peer, const char *prefix,
                                range_fp_t out[static 16]) __attribute__((warn_unused_result));

/* Calls fn for every entry of the range, in UETR order; fn returns false to stop. */
ledger_err_t statement_entries(ledger_t *l, const char *peer, const char *prefix,
                               bool (*fn)(const statement_entry_t *e, void *arg), void *arg)
    __attribute__((warn_unused_result));

/* The signed messages behind an entry: the payer's Settlement and the payee's StatusReport
 * (either may be absent: *len 0). Buffers are malloc'd; the caller frees them. */
ledger_err_t statement_evidence(ledger_t *l, const char *peer, const char *uetr,
                                uint8_t **settlement, size_t *settlement_len, uint8_t **status,
                                size_t *status_len) __attribute__((warn_unused_result));

/* This node's net positions towards `peer`, for a Statement (caller frees with
 * statement_free_positions). */
ledger_err_t statement_positions(ledger_t *l, const char *peer, Corridor__Position ***out,
                                 size_t *count) __attribute__((warn_unused_result));
void statement_free_positions(Corridor__Position **positions, size_t count);

/* The responder: answers a request from `peer` into *st (fields owned by st; release with
 * statement_release). Fills positions, digest, count, journal head, counters. *work receives
 * the entries read to answer it (the sub-ranges of a large range cost the whole range), for
 * the caller's per-peer budget. */
ledger_err_t statement_answer(ledger_t *l, const char *peer, const Corridor__StatementRequest *req,
                              Corridor__Statement *st, uint64_t *work)
    __attribute__((warn_unused_result));
void statement_release(Corridor__Statement *st);

/* Converts between the C and protobuf forms of an entry (the proto one borrows strings). */
void statement_entry_to_proto(const statement_entry_t *e, Corridor__StatementEntry *p);
bool statement_entry_from_proto(const Corridor__StatementEntry *p, statement_entry_t *e);

#endif
