/* The books as an auditor reads them: the SQL behind `audit`. */
#include "books.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_db.h"

struct books_cursor {
    ledger_t *ledger;
    sqlite3_stmt *stmt;
    sqlite3_stmt *aux; /* a second statement: opening evidence, or a lookup */
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
};

void books_close(books_cursor_t **self_p)
{
    assert(self_p != NULL);
    books_cursor_t *c = *self_p;
    if (c == NULL) {
        return;
    }
    sqlite3_finalize(c->stmt);
    sqlite3_finalize(c->aux);
    free(c);
    *self_p = NULL;
}

/* Opens a cursor on `sql` (and `aux_sql`, if any) with `peer` bound to ?1 when given. */
static ledger_err_t open_cursor(ledger_t *l, const char *sql, const char *aux_sql, const char *peer,
                                books_cursor_t **out)
{
    assert(l != NULL && sql != NULL && out != NULL);
    *out = NULL;
    books_cursor_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return LEDGER_E_STORAGE; /* out of memory: nothing read */
    }
    c->ledger = l;
    if (peer != NULL) {
        snprintf(c->peer, sizeof c->peer, "%s", peer);
    }
    if (sqlite3_prepare_v2(ledger_db(l), sql, -1, &c->stmt, NULL) != SQLITE_OK ||
        (aux_sql != NULL &&
         sqlite3_prepare_v2(ledger_db(l), aux_sql, -1, &c->aux, NULL) != SQLITE_OK)) {
        ledger_err_t rc = ledger_read_failed(l, "cannot read the books");
        books_close(&c);
        return rc;
    }
    if (peer != NULL) {
        sqlite3_bind_text(c->stmt, 1, c->peer, -1, SQLITE_STATIC);
        if (c->aux != NULL) {
            sqlite3_bind_text(c->aux, 1, c->peer, -1, SQLITE_STATIC);
        }
    }
    *out = c;
    return LEDGER_OK;
}

/* One step: 1 a row, 0 done, -1 error (recorded). */
static int step(books_cursor_t *c)
{
    int rc = sqlite3_step(c->stmt);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    (void)ledger_read_failed(c->ledger, "cannot read the books");
    return -1;
}

/* ---- the journal ------------------------------------------------------------------------ */

#define JOURNAL_SELECT(reply, returns, fx)                                                         \
    "SELECT j.seq, j.kind, j.peer, j.uetr, j.currency, j.amount_minor, j.reason,"                  \
    " j.content_hash, j.evidence, j.created_ms, j.hash, s.direction, j.settlement_id, " reply      \
    ", " returns ", " fx " FROM journal j LEFT JOIN settlements s ON s.id = j.settlement_id"
#define RETURNS_9     "s.original_uetr, s.return_reason"
#define RETURNS_8     "'', ''" /* before schema 9: no returns */
#define FX_10         "s.fx_id, s.fx_leg"
#define FX_9          "'', 0" /* before schema 10: no FX legs */
#define JOURNAL_ORDER " WHERE ?1 <= 1 OR j.seq % ?1 = ?2 ORDER BY j.seq"

/* The row that opened a settlement: its evidence is the payer's signed Settlement. */
#define OPENING_EVIDENCE_SQL                                                                       \
    "SELECT evidence FROM journal WHERE settlement_id = ?1 AND kind IN (1, 4, 5, 11)"              \
    " ORDER BY seq LIMIT 1"

ledger_err_t books_journal(ledger_t *l, bool with_reply, unsigned stride, unsigned first,
                           books_cursor_t **out)
{
    int version = ledger_schema_version(l);
    const char *sql = !with_reply     ? JOURNAL_SELECT("NULL", RETURNS_8, FX_9) JOURNAL_ORDER
                      : version >= 10 ? JOURNAL_SELECT("j.reply", RETURNS_9, FX_10) JOURNAL_ORDER
                      : version >= 9  ? JOURNAL_SELECT("j.reply", RETURNS_9, FX_9) JOURNAL_ORDER
                                      : JOURNAL_SELECT("j.reply", RETURNS_8, FX_9) JOURNAL_ORDER;
    ledger_err_t rc = open_cursor(l, sql, OPENING_EVIDENCE_SQL, NULL, out);
    if (rc == LEDGER_OK) {
        sqlite3_bind_int64((*out)->stmt, 1, stride);
        sqlite3_bind_int64((*out)->stmt, 2, first);
    }
    return rc;
}

int books_journal_next(books_cursor_t *c, books_row_t *row)
{
    assert(c != NULL && row != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *row = (books_row_t){
        .seq = sqlite3_column_int64(s, 0),
        .kind = sqlite3_column_int(s, 1),
        .peer = ledger_column_text(s, 2),
        .uetr = ledger_column_text(s, 3),
        .currency = ledger_column_text(s, 4),
        .amount_minor = sqlite3_column_int64(s, 5),
        .reason = ledger_column_text(s, 6),
        .content_hash = sqlite3_column_blob(s, 7),
        .content_hash_len = (size_t)sqlite3_column_bytes(s, 7),
        .evidence = sqlite3_column_blob(s, 8),
        .evidence_len = (size_t)sqlite3_column_bytes(s, 8),
        .created_unix_ms = sqlite3_column_int64(s, 9),
        .hash = sqlite3_column_blob(s, 10),
        .hash_len = (size_t)sqlite3_column_bytes(s, 10),
        .has_settlement = sqlite3_column_type(s, 11) != SQLITE_NULL,
        .original = sqlite3_column_int(s, 11) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT,
        .settlement_id = sqlite3_column_int64(s, 12),
        .reply = sqlite3_column_blob(s, 13),
        .reply_len = (size_t)sqlite3_column_bytes(s, 13),
        .original_uetr = ledger_column_text(s, 14),
        .return_reason = ledger_column_text(s, 15),
        .fx_id = ledger_column_text(s, 16),
        .fx_leg = sqlite3_column_int(s, 17),
    };
    return 1;
}

bool books_opening_evidence(books_cursor_t *c, int64_t settlement_id, const uint8_t **evidence,
                            size_t *len)
{
    assert(c != NULL && c->aux != NULL && evidence != NULL && len != NULL);
    sqlite3_reset(c->aux);
    sqlite3_bind_int64(c->aux, 1, settlement_id);
    if (sqlite3_step(c->aux) != SQLITE_ROW) {
        return false;
    }
    *evidence = sqlite3_column_blob(c->aux, 0);
    *len = (size_t)sqlite3_column_bytes(c->aux, 0);
    return *evidence != NULL;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

ledger_err_t books_checkpoints(ledger_t *l, const char *peer, bool with_journal,
                               books_cursor_t **out)
{
    assert(peer == NULL || !with_journal);
    /* a checkpoint in the chain (schema 4, kind 10) keeps its body, then our and the peer's
     * signatures, in its evidence */
    const char *sql =
        peer != NULL ? "SELECT peer, body, own_signature, peer_signature, own_rows, own_head, 1"
                       " FROM checkpoints WHERE peer = ?1 ORDER BY id"
        : with_journal
            ? "SELECT peer, body, own_signature, peer_signature, own_rows, own_head, 1"
              " FROM checkpoints UNION ALL SELECT peer, substr(evidence, 1, length(evidence) - "
              "128), substr(evidence, length(evidence) - 127, 64),"
              " substr(evidence, length(evidence) - 63, 64), NULL, NULL, 0"
              " FROM journal WHERE kind = 10 AND length(evidence) > 128"
            : "SELECT peer, body, own_signature, peer_signature, own_rows, own_head, 1"
              " FROM checkpoints ORDER BY id";
    return open_cursor(l, sql, NULL, peer, out);
}

int books_checkpoints_next(books_cursor_t *c, books_checkpoint_t *cp)
{
    assert(c != NULL && cp != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *cp = (books_checkpoint_t){
        .peer = ledger_column_text(s, 0),
        .body = sqlite3_column_blob(s, 1),
        .body_len = (size_t)sqlite3_column_bytes(s, 1),
        .own_signature = sqlite3_column_blob(s, 2),
        .own_signature_len = (size_t)sqlite3_column_bytes(s, 2),
        .peer_signature = sqlite3_column_blob(s, 3),
        .peer_signature_len = (size_t)sqlite3_column_bytes(s, 3),
        .in_table = sqlite3_column_int(s, 6) == 1 && sqlite3_column_type(s, 4) != SQLITE_NULL,
        .own_rows = sqlite3_column_int64(s, 4),
        .own_head = sqlite3_column_blob(s, 5),
        .own_head_len = (size_t)sqlite3_column_bytes(s, 5),
    };
    return 1;
}

/* ---- settlements and accounts --------------------------------------------------------------- */

ledger_err_t books_settlements(ledger_t *l, books_cursor_t **out)
{
#define SETTLEMENTS_SELECT(returns, fx)                                                            \
    "SELECT peer, uetr, direction, amount_minor, currency, content_hash, end_to_end_id,"           \
    " debtor_name, debtor_account, creditor_name, creditor_account, remittance, " returns ", " fx  \
    " FROM settlements ORDER BY id"
    int version = ledger_schema_version(l);
    return open_cursor(l,
                       version >= 10
                           ? SETTLEMENTS_SELECT("original_uetr, return_reason", "fx_id, fx_leg")
                       : version >= 9 ? SETTLEMENTS_SELECT("original_uetr, return_reason", "'', 0")
                                      : SETTLEMENTS_SELECT("'', ''", "'', 0"),
                       NULL, NULL, out);
#undef SETTLEMENTS_SELECT
}

int books_settlements_next(books_cursor_t *c, settlement_t *s, const uint8_t **content_hash,
                           size_t *content_hash_len)
{
    assert(c != NULL && s != NULL && content_hash != NULL && content_hash_len != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *st = c->stmt;
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", ledger_column_text(st, 0));
    snprintf(s->uetr, sizeof s->uetr, "%s", ledger_column_text(st, 1));
    s->direction = sqlite3_column_int(st, 2) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT;
    s->amount_minor = sqlite3_column_int64(st, 3);
    snprintf(s->currency, sizeof s->currency, "%s", ledger_column_text(st, 4));
    snprintf(s->end_to_end_id, sizeof s->end_to_end_id, "%s", ledger_column_text(st, 6));
    snprintf(s->debtor_name, sizeof s->debtor_name, "%s", ledger_column_text(st, 7));
    snprintf(s->debtor_account, sizeof s->debtor_account, "%s", ledger_column_text(st, 8));
    snprintf(s->creditor_name, sizeof s->creditor_name, "%s", ledger_column_text(st, 9));
    snprintf(s->creditor_account, sizeof s->creditor_account, "%s", ledger_column_text(st, 10));
    snprintf(s->remittance, sizeof s->remittance, "%s", ledger_column_text(st, 11));
    snprintf(s->original_uetr, sizeof s->original_uetr, "%s", ledger_column_text(st, 12));
    snprintf(s->return_reason, sizeof s->return_reason, "%s", ledger_column_text(st, 13));
    snprintf(s->fx_id, sizeof s->fx_id, "%s", ledger_column_text(st, 14));
    int leg = sqlite3_column_int(st, 15);
    s->fx_leg = fx_leg_of_column(leg);
    *content_hash = sqlite3_column_blob(st, 5);
    *content_hash_len = (size_t)sqlite3_column_bytes(st, 5);
    return 1;
}

ledger_err_t books_accounts(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(l,
                       "SELECT kind, peer, currency, posted_net, pending_net FROM accounts"
                       " ORDER BY currency",
                       NULL, NULL, out);
}

int books_accounts_next(books_cursor_t *c, books_account_t *a)
{
    assert(c != NULL && a != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    *a = (books_account_t){
        .is_peer = strcmp(ledger_column_text(c->stmt, 0), "peer") == 0,
        .peer = ledger_column_text(c->stmt, 1),
        .currency = ledger_column_text(c->stmt, 2),
        .posted_net = sqlite3_column_int64(c->stmt, 3),
        .pending_net = sqlite3_column_int64(c->stmt, 4),
    };
    return 1;
}

ledger_err_t books_decided(ledger_t *l, const char *peer, books_cursor_t **out)
{
    assert(peer != NULL);
    return open_cursor(l,
                       "SELECT uetr, direction, status FROM settlements WHERE peer = ?1"
                       " AND status IN (1, 2) ORDER BY id",
                       NULL, peer, out);
}

int books_decided_next(books_cursor_t *c, const char **uetr, direction_t *direction,
                       status_t *status)
{
    assert(c != NULL && uetr != NULL && direction != NULL && status != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    *uetr = ledger_column_text(c->stmt, 0);
    *direction = sqlite3_column_int(c->stmt, 1) == DIRECTION_OUT ? DIRECTION_OUT : DIRECTION_IN;
    *status = sqlite3_column_int(c->stmt, 2) == STATUS_SETTLED ? STATUS_SETTLED : STATUS_REJECTED;
    return 1;
}

ledger_err_t books_finder(ledger_t *l, const char *peer, books_cursor_t **out)
{
    assert(peer != NULL);
    return open_cursor(l, "SELECT direction, status FROM settlements WHERE peer = ?1 AND uetr = ?2",
                       NULL, peer, out);
}

int books_find(books_cursor_t *c, const char *uetr, direction_t *direction, int *status)
{
    assert(c != NULL && uetr != NULL && direction != NULL && status != NULL);
    sqlite3_reset(c->stmt);
    sqlite3_bind_text(c->stmt, 2, uetr, -1, SQLITE_TRANSIENT);
    int rc = step(c);
    if (rc == 1) {
        *direction = sqlite3_column_int(c->stmt, 0) == DIRECTION_OUT ? DIRECTION_OUT : DIRECTION_IN;
        *status = sqlite3_column_int(c->stmt, 1);
    }
    return rc;
}

/* The evidence of the row that opened the record `alias` (as OPENING_EVIDENCE_SQL). */
#define OPENING_OF(alias)                                                                          \
    "SELECT evidence FROM journal WHERE settlement_id = " alias ".id AND kind IN (1, 4, 5, 11)"    \
    " ORDER BY seq LIMIT 1"

ledger_err_t books_returns(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(
        l,
        ledger_schema_version(l) >= 9
            ? "SELECT r.peer, r.uetr, r.original_uetr, r.direction, r.currency, r.amount_minor,"
              " r.status, o.id IS NOT NULL, o.original_uetr <> '', o.direction, o.currency,"
              " o.amount_minor, o.status, (" OPENING_OF("r") "), (" OPENING_OF(
                  "o") ")"
                       " FROM settlements r LEFT JOIN settlements o"
                       " ON o.peer = r.peer AND o.uetr = r.original_uetr"
                       " WHERE r.original_uetr <> '' AND r.status <> 2"
                       " ORDER BY r.peer, r.original_uetr, r.id"
            : "SELECT '', '', '', 0, '', 0, 0, 0, 0, 0, '', 0, 0, NULL, NULL WHERE 0",
        NULL, NULL, out);
}

int books_returns_next(books_cursor_t *c, books_return_t *r)
{
    assert(c != NULL && r != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *r = (books_return_t){
        .peer = ledger_column_text(s, 0),
        .uetr = ledger_column_text(s, 1),
        .original_uetr = ledger_column_text(s, 2),
        .direction = sqlite3_column_int(s, 3) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT,
        .currency = ledger_column_text(s, 4),
        .amount_minor = sqlite3_column_int64(s, 5),
        .status = sqlite3_column_int(s, 6),
        .found = sqlite3_column_int(s, 7) != 0,
        .original_is_return = sqlite3_column_int(s, 8) != 0,
        .original_direction =
            sqlite3_column_int(s, 9) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT,
        .original_currency = ledger_column_text(s, 10),
        .original_amount_minor = sqlite3_column_int64(s, 11),
        .original_status = sqlite3_column_int(s, 12),
        .evidence = sqlite3_column_blob(s, 13),
        .evidence_len = (size_t)sqlite3_column_bytes(s, 13),
        .original_evidence = sqlite3_column_blob(s, 14),
        .original_evidence_len = (size_t)sqlite3_column_bytes(s, 14),
    };
    return 1;
}

ledger_err_t books_fx_legs(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(
        l,
        ledger_schema_version(l) >= 10
            ? "SELECT s.peer, s.fx_id, s.fx_leg, s.uetr, s.direction, s.amount_minor, s.currency,"
              " s.status, s.reason, s.original_hash, s.canon_hash, (" OPENING_OF(
                  "s") ")"
                       " FROM settlements s WHERE s.fx_id <> '' OR s.fx_leg <> 0"
                       " ORDER BY s.peer, s.fx_id, s.fx_leg, s.id"
            : "SELECT '', '', 0, '', 0, 0, '', 0, '', NULL, NULL, NULL WHERE 0",
        NULL, NULL, out);
}

int books_fx_legs_next(books_cursor_t *c, books_fx_leg_t *leg)
{
    assert(c != NULL && leg != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *leg = (books_fx_leg_t){
        .peer = ledger_column_text(s, 0),
        .fx_id = ledger_column_text(s, 1),
        .fx_leg = sqlite3_column_int(s, 2),
        .uetr = ledger_column_text(s, 3),
        .direction = sqlite3_column_int(s, 4) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT,
        .amount_minor = sqlite3_column_int64(s, 5),
        .currency = ledger_column_text(s, 6),
        .status = sqlite3_column_int(s, 7),
        .reason = ledger_column_text(s, 8),
        .original_hash = sqlite3_column_blob(s, 9),
        .original_hash_len = (size_t)sqlite3_column_bytes(s, 9),
        .canon_hash = sqlite3_column_blob(s, 10),
        .canon_hash_len = (size_t)sqlite3_column_bytes(s, 10),
        .evidence = sqlite3_column_blob(s, 11),
        .evidence_len = (size_t)sqlite3_column_bytes(s, 11),
    };
    return 1;
}

/* ---- set-off legs (schema 12) ------------------------------------------------------------- */

ledger_err_t books_setoff_rows(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(
        l,
        ledger_schema_version(l) >= 12
            ? "SELECT j.seq, j.kind, j.peer, j.uetr, j.currency, j.amount_minor, j.reason,"
              " j.evidence, j.settlement_id, s.direction, s.fx_leg, s.fx_id, s.amount_minor,"
              " s.original_hash FROM journal j JOIN settlements s ON s.id = j.settlement_id"
              " WHERE s.fx_leg = 3 OR j.kind IN (21, 22, 23) ORDER BY j.seq"
            : "SELECT 0, 0, '', '', '', 0, '', NULL, 0, 0, 0, '', 0, NULL WHERE 0",
        NULL, NULL, out);
}

int books_setoff_rows_next(books_cursor_t *c, books_setoff_row_t *row)
{
    assert(c != NULL && row != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *row = (books_setoff_row_t){
        .seq = sqlite3_column_int64(s, 0),
        .kind = sqlite3_column_int(s, 1),
        .peer = ledger_column_text(s, 2),
        .uetr = ledger_column_text(s, 3),
        .currency = ledger_column_text(s, 4),
        .amount_minor = sqlite3_column_int64(s, 5),
        .reason = ledger_column_text(s, 6),
        .evidence = sqlite3_column_blob(s, 7),
        .evidence_len = (size_t)sqlite3_column_bytes(s, 7),
        .settlement_id = sqlite3_column_int64(s, 8),
        .direction = sqlite3_column_int(s, 9) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT,
        .fx_leg = sqlite3_column_int(s, 10),
        .fx_id = ledger_column_text(s, 11),
        .record_amount_minor = sqlite3_column_int64(s, 12),
        .original_hash = sqlite3_column_blob(s, 13),
        .original_hash_len = (size_t)sqlite3_column_bytes(s, 13),
    };
    return 1;
}

/* ---- settlement cycles (schema 11) ---------------------------------------------------------- */

#define NOTHING_BEFORE_11(sql, none) (ledger_schema_version(l) >= 11 ? (sql) : (none))

ledger_err_t books_cycles(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(
        l,
        NOTHING_BEFORE_11("SELECT peer, cycle, state, own_sent, peer_sent, statement,"
                          " own_signature, peer_signature FROM cycles"
                          " ORDER BY peer, cycle",
                          "SELECT '', 0, 0, 0, 0, NULL, NULL, NULL WHERE 0"),
        NULL, NULL, out);
}

int books_cycles_next(books_cursor_t *c, books_cycle_t *cy)
{
    assert(c != NULL && cy != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *cy = (books_cycle_t){
        .peer = ledger_column_text(s, 0),
        .cycle = sqlite3_column_int64(s, 1),
        .state = sqlite3_column_int(s, 2),
        .own_sent = sqlite3_column_int64(s, 3),
        .peer_sent = sqlite3_column_int64(s, 4),
        .statement = sqlite3_column_blob(s, 5),
        .statement_len = (size_t)sqlite3_column_bytes(s, 5),
        .own_signature = sqlite3_column_blob(s, 6),
        .own_signature_len = (size_t)sqlite3_column_bytes(s, 6),
        .peer_signature = sqlite3_column_blob(s, 7),
        .peer_signature_len = (size_t)sqlite3_column_bytes(s, 7),
    };
    return 1;
}

ledger_err_t books_cycle_rows(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(l,
                       "SELECT seq, kind, peer, uetr, currency, amount_minor, evidence,"
                       " settlement_id FROM journal WHERE kind BETWEEN 17 AND 20 ORDER BY seq",
                       NULL, NULL, out);
}

int books_cycle_rows_next(books_cursor_t *c, books_cycle_row_t *row)
{
    assert(c != NULL && row != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *row = (books_cycle_row_t){
        .seq = sqlite3_column_int64(s, 0),
        .kind = sqlite3_column_int(s, 1),
        .peer = ledger_column_text(s, 2),
        .uetr = ledger_column_text(s, 3),
        .currency = ledger_column_text(s, 4),
        .amount_minor = sqlite3_column_int64(s, 5),
        .evidence = sqlite3_column_blob(s, 6),
        .evidence_len = (size_t)sqlite3_column_bytes(s, 6),
        .settlement_id = sqlite3_column_int64(s, 7),
    };
    return 1;
}

ledger_err_t books_nets(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(
        l,
        NOTHING_BEFORE_11("SELECT peer, settlement_id, cycle, currency, amount_minor,"
                          " direction, status, body_hash FROM net_settlements"
                          " ORDER BY peer, cycle, currency, settlement_id",
                          "SELECT '', '', 0, '', 0, 0, 0, NULL WHERE 0"),
        NULL, NULL, out);
}

int books_nets_next(books_cursor_t *c, books_net_t *n)
{
    assert(c != NULL && n != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *n = (books_net_t){
        .peer = ledger_column_text(s, 0),
        .id = ledger_column_text(s, 1),
        .cycle = sqlite3_column_int64(s, 2),
        .currency = ledger_column_text(s, 3),
        .amount_minor = sqlite3_column_int64(s, 4),
        .we_owe = sqlite3_column_int(s, 5) == DIRECTION_OUT,
        .status = sqlite3_column_int(s, 6),
        .body_hash = sqlite3_column_blob(s, 7),
        .body_hash_len = (size_t)sqlite3_column_bytes(s, 7),
    };
    return 1;
}

ledger_err_t books_finals(ledger_t *l, books_cursor_t **out)
{
    return open_cursor(
        l,
        NOTHING_BEFORE_11("SELECT peer, uetr, currency, reason, direction, amount_minor, status,"
                          " fx_leg, canon_hash, decided_seq, returned_seq FROM settlements"
                          " WHERE status IN (1, 2, 3) ORDER BY peer, id",
                          "SELECT '', '', '', '', 0, 0, 0, 0, NULL, NULL, NULL WHERE 0"),
        NULL, NULL, out);
}

int books_finals_next(books_cursor_t *c, books_final_t *e)
{
    assert(c != NULL && e != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *e = (books_final_t){
        .peer = ledger_column_text(s, 0),
        .uetr = ledger_column_text(s, 1),
        .currency = ledger_column_text(s, 2),
        .reason = ledger_column_text(s, 3),
        .direction = sqlite3_column_int(s, 4) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT,
        .amount_minor = sqlite3_column_int64(s, 5),
        .status = sqlite3_column_int(s, 6),
        .fx_leg = sqlite3_column_int(s, 7),
        .canon_hash = sqlite3_column_blob(s, 8),
        .canon_hash_len = (size_t)sqlite3_column_bytes(s, 8),
        .decided = sqlite3_column_type(s, 9) != SQLITE_NULL,
        .decided_seq = sqlite3_column_int64(s, 9),
        .returned = sqlite3_column_type(s, 10) != SQLITE_NULL,
        .returned_seq = sqlite3_column_int64(s, 10),
    };
    return 1;
}

ledger_err_t books_pending_count(ledger_t *l, const char *peer, int64_t *count)
{
    assert(peer != NULL && count != NULL);
    books_cursor_t *c = NULL;
    ledger_err_t rc =
        open_cursor(l, "SELECT count(*) FROM settlements WHERE peer = ?1 AND status IN (0, 4)",
                    NULL, peer, &c); /* held (4) is pending at the payer: I2 waits for both */
    if (rc == LEDGER_OK) {
        rc = step(c) == 1 ? LEDGER_OK : LEDGER_E_STORAGE;
        *count = rc == LEDGER_OK ? sqlite3_column_int64(c->stmt, 0) : -1;
    }
    books_close(&c);
    return rc;
}

/* ---- findings ----------------------------------------------------------------------------- */

/* Status as the last journal row of a settlement implies it. */
#define STATUS_OF_KIND                                                                             \
    "CASE j.kind WHEN 1 THEN 0 WHEN 2 THEN 1 WHEN 3 THEN 2 WHEN 4 THEN 1 WHEN 5 THEN 2"            \
    " WHEN 6 THEN 3 WHEN 11 THEN 4 WHEN 12 THEN 1 WHEN 13 THEN 2 WHEN 21 THEN 0 WHEN 22 THEN 1"    \
    " WHEN 23 THEN 2 ELSE -1 END"

/* Each query's columns: peer, uetr, count, seq, status, reason, journal_status,
 * journal_reason (NULL where the finding has none). */
static const char *const findings_sql[] = {
    [BOOKS_DUPLICATE_OPENINGS] = "SELECT peer, uetr, count(*), NULL, NULL, NULL, NULL, NULL"
                                 " FROM journal WHERE kind IN (1, 4, 5, 11, 21)"
                                 " GROUP BY peer, uetr HAVING count(*) > 1",
    /* no constraint keeps (peer, uetr) unique in settlements (see the ledger's schema) */
    [BOOKS_DUPLICATE_SETTLEMENTS] = "SELECT peer, uetr, count(*), NULL, NULL, NULL, NULL, NULL"
                                    " FROM settlements GROUP BY peer, uetr HAVING count(*) > 1",
    [BOOKS_STATUS_CACHE] =
        "SELECT s.peer, s.uetr, NULL, NULL, s.status, s.reason, " STATUS_OF_KIND ", j.reason"
        " FROM settlements s JOIN journal j ON j.seq ="
        " (SELECT max(seq) FROM journal WHERE settlement_id = s.id"
        "  AND (kind <= 6 OR kind BETWEEN 11 AND 13 OR kind BETWEEN 21 AND 23))"
        " WHERE s.status != " STATUS_OF_KIND " OR s.reason != j.reason",
    [BOOKS_ORPHANS] = "SELECT s.peer, s.uetr, NULL, NULL, NULL, NULL, NULL, NULL"
                      " FROM settlements s WHERE NOT EXISTS"
                      " (SELECT 1 FROM journal WHERE settlement_id = s.id)",
    [BOOKS_CONTENT] = "SELECT j.peer, j.uetr, NULL, j.seq, NULL, NULL, NULL, NULL"
                      " FROM journal j JOIN settlements s"
                      " ON s.id = j.settlement_id WHERE j.content_hash != s.content_hash"
                      " OR j.amount_minor != s.amount_minor OR j.currency != s.currency"
                      " OR j.uetr != s.uetr OR j.peer != s.peer",
};

/* BOOKS_CONTENT from schema 10: the rows of the leg an acceptor pays (fx_leg 2) state its amount
 * negated (settlement_row_amount, PROTOCOL.md 3.10). */
#define CONTENT_10_SQL                                                                             \
    "SELECT j.peer, j.uetr, NULL, j.seq, NULL, NULL, NULL, NULL"                                   \
    " FROM journal j JOIN settlements s"                                                           \
    " ON s.id = j.settlement_id WHERE j.content_hash != s.content_hash"                            \
    " OR j.amount_minor != CASE WHEN s.fx_leg IN (2, 3) THEN -s.amount_minor ELSE s.amount_minor " \
    "END"                                                                                          \
    " OR j.currency != s.currency OR j.uetr != s.uetr OR j.peer != s.peer"

ledger_err_t books_findings(ledger_t *l, books_check_t check, books_cursor_t **out)
{
    assert((size_t)check < sizeof findings_sql / sizeof findings_sql[0]);
    const char *sql = check == BOOKS_CONTENT && ledger_schema_version(l) >= 10
                          ? CONTENT_10_SQL
                          : findings_sql[check];
    return open_cursor(l, sql, NULL, NULL, out);
}

int books_findings_next(books_cursor_t *c, books_finding_t *f)
{
    assert(c != NULL && f != NULL);
    int rc = step(c);
    if (rc != 1) {
        return rc;
    }
    sqlite3_stmt *s = c->stmt;
    *f = (books_finding_t){
        .peer = ledger_column_text(s, 0),
        .uetr = ledger_column_text(s, 1),
        .count = sqlite3_column_int64(s, 2),
        .seq = sqlite3_column_int64(s, 3),
        .status = sqlite3_column_int(s, 4),
        .reason = ledger_column_text(s, 5),
        .journal_status = sqlite3_column_int(s, 6),
        .journal_reason = ledger_column_text(s, 7),
    };
    return 1;
}
