/*
 * The books as an auditor reads them: every stored row as it is, with no interpretation, so
 * that `audit` can recompute and compare without knowing the schema. All the SQL behind an
 * audit lives here; the checks live in node/audit/audit.c.
 *
 * Each reader is a cursor: open, next until it returns 0 (done) or -1 (the ledger could not
 * be read: ledger_last_error says why), close. What a row points to is valid until the next
 * call on its cursor. A cursor only reads: it works on a ledger opened read-only, of any
 * schema an audit accepts.
 */
#ifndef CORRIDOR_BOOKS_H
#define CORRIDOR_BOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "settlement.h"

typedef struct books_cursor books_cursor_t;
void books_close(books_cursor_t **self_p);

/* ---- the journal ---- */

/* One journal row as stored, with the direction of the settlement it belongs to. */
typedef struct {
    int64_t seq;
    int kind;
    const char *peer, *uetr, *currency, *reason;
    int64_t amount_minor;
    const uint8_t *content_hash; /* as stored: content_hash_len may differ from 32 */
    size_t content_hash_len;
    const uint8_t *evidence;
    size_t evidence_len;
    int64_t created_unix_ms;
    const uint8_t *hash; /* the chain hash as stored */
    size_t hash_len;
    bool has_settlement; /* its settlement row exists */
    direction_t original;
    int64_t settlement_id; /* 0 for a row of no settlement */
    const uint8_t *reply;  /* our StatusReport (schema 4 on), or NULL */
    size_t reply_len;
    /* its settlement's return columns (schema 9, PROTOCOL.md 3.9): "" for a payment (and for
     * every record of an older ledger) */
    const char *original_uetr, *return_reason;
    /* its settlement's FX columns (schema 10, PROTOCOL.md 3.10): "" and 0 but for a leg */
    const char *fx_id;
    int fx_leg;
} books_row_t;

/* Journal rows in order of seq; with stride > 1 only those whose seq % stride == first.
 * `with_reply`: the ledger has the reply column (from schema 4). */
ledger_err_t books_journal(ledger_t *l, bool with_reply, unsigned stride, unsigned first,
                           books_cursor_t **out) __attribute__((warn_unused_result));
int books_journal_next(books_cursor_t *c, books_row_t *row);

/* The evidence of the row that opened settlement `settlement_id` (its Settlement, signed),
 * read through the journal cursor `c`'s connection; false when there is none. */
bool books_opening_evidence(books_cursor_t *c, int64_t settlement_id, const uint8_t **evidence,
                            size_t *len);

/* ---- checkpoints ---- */

typedef struct {
    const char *peer;
    const uint8_t *body; /* the encoded Checkpoint */
    size_t body_len;
    const uint8_t *own_signature, *peer_signature;
    size_t own_signature_len, peer_signature_len;
    bool in_table;    /* from the checkpoints table (else from a journal row of kind 10) */
    int64_t own_rows; /* in_table: our journal rows it names as stored */
    const uint8_t *own_head;
    size_t own_head_len;
} books_checkpoint_t;

/* Every checkpoint: the table's, then (`with_journal`) those the journal carries. With `peer`
 * not NULL, only the table's with that peer. */
ledger_err_t books_checkpoints(ledger_t *l, const char *peer, bool with_journal,
                               books_cursor_t **out) __attribute__((warn_unused_result));
int books_checkpoints_next(books_cursor_t *c, books_checkpoint_t *cp);

/* ---- settlements and accounts ---- */

/* Every settlement with its stored content hash; a return (schema 9) with its original UETR
 * and return reason, an FX leg (schema 10) with its fx_id and fx_leg, which its content hash
 * covers. */
ledger_err_t books_settlements(ledger_t *l, books_cursor_t **out)
    __attribute__((warn_unused_result));
int books_settlements_next(books_cursor_t *c, settlement_t *s, const uint8_t **content_hash,
                           size_t *content_hash_len);

typedef struct {
    bool is_peer; /* a peer's account (else a currency's clearing account) */
    const char *peer, *currency;
    int64_t posted_net, pending_net;
} books_account_t;

/* Every account, ordered by currency. */
ledger_err_t books_accounts(ledger_t *l, books_cursor_t **out) __attribute__((warn_unused_result));
int books_accounts_next(books_cursor_t *c, books_account_t *a);

/* Our settlements with `peer` decided settled or rejected, in the order they were made. */
ledger_err_t books_decided(ledger_t *l, const char *peer, books_cursor_t **out)
    __attribute__((warn_unused_result));
int books_decided_next(books_cursor_t *c, const char **uetr, direction_t *direction,
                       status_t *status);

/* Finds settlement (peer, uetr): 1 found (*direction, *status set), 0 none, -1 error. The
 * cursor is opened once by books_finder and used for many lookups. */
ledger_err_t books_finder(ledger_t *l, const char *peer, books_cursor_t **out)
    __attribute__((warn_unused_result));
int books_find(books_cursor_t *c, const char *uetr, direction_t *direction, int *status);

/* A return record (schema 9, PROTOCOL.md 3.9) that is not refused, with the record its
 * original_uetr names on the same channel (found false when there is none). */
typedef struct {
    const char *peer, *uetr, *original_uetr, *currency;
    direction_t direction;
    int64_t amount_minor;
    int status;
    bool found;              /* the original exists */
    bool original_is_return; /* it is a return itself */
    direction_t original_direction;
    const char *original_currency;
    int64_t original_amount_minor;
    int original_status;
    const uint8_t *evidence; /* the return's opening evidence (its Return, signed), or NULL */
    size_t evidence_len;
    const uint8_t *original_evidence; /* the original's opening evidence (its Settlement) */
    size_t original_evidence_len;
} books_return_t;

/* Every return record with a status other than rejected, ordered by peer and original UETR
 * (then id): the returns of one payment come together. None before schema 9. */
ledger_err_t books_returns(ledger_t *l, books_cursor_t **out) __attribute__((warn_unused_result));
int books_returns_next(books_cursor_t *c, books_return_t *r);

/* A record that is a leg of an FX trade (schema 10, PROTOCOL.md 3.10): fx_id or fx_leg set. */
typedef struct {
    const char *peer, *fx_id, *uetr, *currency, *reason;
    int fx_leg;            /* as stored: FX_LEG_* or anything an editor wrote */
    direction_t direction; /* the way its FxProposal went */
    int64_t amount_minor;  /* as stored: positive for either leg */
    int status;
    const uint8_t *original_hash; /* the FxProposal's body hash, as stored */
    size_t original_hash_len;
    const uint8_t *canon_hash; /* its canonical entry hash, as stored */
    size_t canon_hash_len;
    const uint8_t *evidence; /* its opening evidence (the signed FxProposal), or NULL */
    size_t evidence_len;
} books_fx_leg_t;

/* Every FX leg, ordered by peer, fx_id and leg (then id): the legs of one trade come together.
 * None before schema 10. */
ledger_err_t books_fx_legs(ledger_t *l, books_cursor_t **out) __attribute__((warn_unused_result));
int books_fx_legs_next(books_cursor_t *c, books_fx_leg_t *leg);

/* A journal row of a set-off leg (schema 12, PROTOCOL.md 3.12.6): a row of a record with fx_leg
 * 3, or a row of kind 21 to 23 of any record, with its record's fields, in seq order. */
typedef struct {
    int64_t seq, amount_minor;
    int kind;
    const char *peer, *uetr, *currency, *reason;
    const uint8_t *evidence;
    size_t evidence_len;
    int64_t settlement_id;
    direction_t direction; /* the record's: out at the edge's debtor */
    int fx_leg;            /* the record's, as stored */
    const char *fx_id;     /* the record's: the set-off id */
    int64_t record_amount_minor;
    const uint8_t *original_hash; /* the record's: H13 of the terms, as stored */
    size_t original_hash_len;
} books_setoff_row_t;

/* None before schema 12. */
ledger_err_t books_setoff_rows(ledger_t *l, books_cursor_t **out)
    __attribute__((warn_unused_result));
int books_setoff_rows_next(books_cursor_t *c, books_setoff_row_t *row);

/* ---- settlement cycles (schema 11, PROTOCOL.md 3.11): none before ---- */

/* A row of table `cycles`, as stored. */
typedef struct {
    const char *peer;
    int64_t cycle, own_sent, peer_sent;
    int state; /* as stored: 1 closing, 2 closed, 3 disputed, or anything an editor wrote */
    const uint8_t *statement, *own_signature, *peer_signature;
    size_t statement_len, own_signature_len, peer_signature_len;
} books_cycle_t;

/* Every cycle, by peer and number. */
ledger_err_t books_cycles(ledger_t *l, books_cursor_t **out) __attribute__((warn_unused_result));
int books_cycles_next(books_cursor_t *c, books_cycle_t *cy);

/* A journal row of kind 17 to 20 (cycle, net_claimed, net_settled, net_refused), in seq order. */
typedef struct {
    int64_t seq, settlement_id, amount_minor;
    int kind;
    const char *peer, *uetr, *currency;
    const uint8_t *evidence;
    size_t evidence_len;
} books_cycle_row_t;

ledger_err_t books_cycle_rows(ledger_t *l, books_cursor_t **out)
    __attribute__((warn_unused_result));
int books_cycle_rows_next(books_cursor_t *c, books_cycle_row_t *row);

/* A row of table `net_settlements`, by peer, cycle, currency. */
typedef struct {
    const char *peer, *id, *currency;
    int64_t cycle, amount_minor;
    bool we_owe; /* direction 0 */
    int status;
    const uint8_t *body_hash;
    size_t body_hash_len;
} books_net_t;

ledger_err_t books_nets(ledger_t *l, books_cursor_t **out) __attribute__((warn_unused_result));
int books_nets_next(books_cursor_t *c, books_net_t *n);

/* An entry in a final status (settled, rejected, returned) with its sequences, by peer. */
typedef struct {
    const char *peer, *uetr, *currency, *reason;
    direction_t direction;
    int64_t amount_minor;
    int status;
    int fx_leg;
    const uint8_t *canon_hash;
    size_t canon_hash_len;
    bool decided, returned; /* decided_seq, returned_seq not NULL */
    int64_t decided_seq, returned_seq;
} books_final_t;

ledger_err_t books_finals(ledger_t *l, books_cursor_t **out) __attribute__((warn_unused_result));
int books_finals_next(books_cursor_t *c, books_final_t *e);

/* Settlements with `peer` still pending. */
ledger_err_t books_pending_count(ledger_t *l, const char *peer, int64_t *count)
    __attribute__((warn_unused_result));

/* ---- findings: rows that break a rule of the books by their very existence ---- */

typedef enum {
    BOOKS_DUPLICATE_OPENINGS,    /* one UETR opened by more than one row (peer, uetr, count) */
    BOOKS_DUPLICATE_SETTLEMENTS, /* one UETR in more than one settlement row (peer, uetr,
                                    count) */
    BOOKS_STATUS_CACHE,          /* a settlement's status differs from what its last row says
                                    (peer, uetr, status, reason, journal_status, journal_reason) */
    BOOKS_ORPHANS,               /* a settlement without journal rows (peer, uetr) */
    BOOKS_CONTENT,               /* a row whose fields differ from its settlement's (seq, uetr) */
} books_check_t;

typedef struct {
    const char *peer, *uetr, *reason, *journal_reason;
    int64_t count, seq;
    int status, journal_status;
} books_finding_t;

ledger_err_t books_findings(ledger_t *l, books_check_t check, books_cursor_t **out)
    __attribute__((warn_unused_result));
int books_findings_next(books_cursor_t *c, books_finding_t *f);

#endif
