/*
 * The ledger on SQLite; see ledger.h for the model.
 *
 * Statements are prepared once at open. Every write path is: check (reads), then write; a
 * business refusal (conflict, wrong state) is decided before anything is written, so the only
 * way a write can fail halfway is a storage error, and that rolls back the whole transaction
 * and stops the ledger. The hash-chain head is kept in memory and reloaded on rollback.
 */
#include "ledger.h"
#include "ledger_db.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "cycles.h"
#include "digest.h"
#include "validate.h"

#define LEDGER_FORMAT   "corridor-ledger"
#define ROW_HASH_DOMAIN "corridor.journal-row.v1"
#define BUSY_TIMEOUT_MS 5000

/* Every prepared statement, by name. */
#define STATEMENTS(X)                                                                              \
    X(begin, "BEGIN IMMEDIATE")                                                                    \
    X(commit, "COMMIT")                                                                            \
    X(rollback, "ROLLBACK")                                                                        \
    X(digest_update, "UPDATE channels SET digest = corridor_digest_update(digest, ?2, ?3),"        \
                     " entries = entries + ?4 WHERE peer = ?1")                                    \
    X(insert_journal,                                                                              \
      "INSERT INTO journal(seq, settlement_id, kind, peer, uetr, currency, amount_minor,"          \
      " reason, content_hash, evidence, created_ms, hash) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"      \
      "?10,?11,?12)")                                                                              \
    X(last_row, "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")                         \
    X(ensure_account, "INSERT OR IGNORE INTO accounts(kind, peer, currency) VALUES(?1,?2,?3)")     \
    X(move, "UPDATE accounts SET pending_net = pending_net + ?4, posted_net = posted_net + ?5"     \
            " WHERE kind = ?1 AND peer = ?2 AND currency = ?3")                                    \
    X(account, "SELECT posted_net, pending_net FROM accounts"                                      \
               " WHERE kind = ?1 AND peer = ?2 AND currency = ?3")                                 \
    X(position, "SELECT posted_net, pending_net"                                                   \
                " FROM accounts WHERE kind = 'peer' AND peer = ?1 AND currency = ?2")              \
    X(positions, "SELECT peer, currency, posted_net, pending_net"                                  \
                 " FROM accounts WHERE kind = 'peer'"                                              \
                 " ORDER BY peer, currency")                                                       \
    X(held_list, "SELECT peer, uetr FROM settlements WHERE status = 4 ORDER BY id")                \
    X(channel_get, "SELECT sent_seq, acked_seq, applied_seq, diverged FROM channels"               \
                   " WHERE peer = ?1")                                                             \
    X(channel_ensure, "INSERT OR IGNORE INTO channels(peer) VALUES(?1)")                           \
    X(channel_sent, "UPDATE channels SET sent_seq = ?2 WHERE peer = ?1")                           \
    X(channel_sent_next,                                                                           \
      "UPDATE channels SET sent_seq = ?2 WHERE peer = ?1 AND sent_seq = ?2 - 1")                   \
    X(channel_acked, "UPDATE channels SET acked_seq = ?2 WHERE peer = ?1")                         \
    X(channel_diverged, "UPDATE channels SET diverged = ?2 WHERE peer = ?1")                       \
    X(channel_rebase, "UPDATE channels SET sent_seq = ?2, acked_seq = ?3, applied_seq = ?4,"       \
                      " diverged = 0 WHERE peer = ?1")                                             \
    X(checkpoint_put, "INSERT INTO checkpoints(peer, body, own_signature, peer_signature,"         \
                      " own_rows, own_head, created_ms) VALUES(?1,?2,?3,?4,?5,?6,?7)")             \
    X(row_hash, "SELECT hash FROM journal WHERE seq = ?1")                                         \
    X(checkpoint_last, "SELECT body FROM checkpoints WHERE peer = ?1 ORDER BY id DESC LIMIT 1")    \
    X(operations, "SELECT seq, peer, evidence, created_ms FROM journal WHERE kind = 9"             \
                  " ORDER BY seq")                                                                 \
    X(outbox_put, "INSERT INTO outbox(peer, seq, type, signed) VALUES(?1,?2,?3,?4)")               \
    X(outbox_scan, "SELECT seq, type, signed FROM outbox WHERE peer = ?1 AND seq >= ?2"            \
                   " ORDER BY seq LIMIT ?3")

/* The columns of schema 8 that find and list read (3.8.5), and what a reader of an older ledger
 * (which it does not upgrade) selects instead: no expiry, nothing held. */
#define HOLD_COLUMNS        "expires_ms, hold, at_peer, cancel_id"
#define HOLD_COLUMNS_READ_7 "0, '', '', ''"

/* The columns of schema 9 (returns, 3.9): what a record returns, and for a payment the sum of
 * its accepted returns; what a reader of schema 8 or older selects instead: no returns. */
#define RETURN_COLUMNS                                                                             \
    "original_uetr, return_reason, original_hash, (SELECT coalesce(sum(r.amount_minor), 0)"        \
    " FROM settlements r WHERE r.peer = settlements.peer AND r.original_uetr = settlements.uetr"   \
    " AND r.original_uetr <> '' AND r.status = 1)"
#define RETURN_COLUMNS_READ_8 "'', '', NULL, 0"
/* find reads no sum (ledger_find asks ledger_returns_of, which survives edited books): a lookup
 * of the payment in a loop turn must not fail on what an insider wrote */
#define RETURN_COLUMNS_FIND "original_uetr, return_reason, original_hash, 0"

/* The sums of a payment's returns one way, accepted and pending (ledger_returns_of). */
#define RETURNED_SUM                                                                               \
    "SELECT coalesce(sum(CASE WHEN status = 1 THEN amount_minor END), 0),"                         \
    " coalesce(sum(CASE WHEN status = 0 THEN amount_minor END), 0)"                                \
    " FROM settlements WHERE peer = ?1 AND original_uetr = ?2"                                     \
    " AND original_uetr <> '' AND status IN (0, 1) AND direction = ?3"

/* How many payments are wholly returned by their accepted returns (shown `returned`). */
#define FULLY_RETURNED                                                                             \
    "SELECT count(*) FROM (SELECT peer, original_uetr, sum(amount_minor) AS total"                 \
    " FROM settlements WHERE original_uetr <> '' AND status = 1 GROUP BY peer, original_uetr) t"   \
    " JOIN settlements o ON o.peer = t.peer AND o.uetr = t.original_uetr"                          \
    " WHERE o.status = 1 AND o.amount_minor = t.total"

/* The columns of schema 10 (FX legs, 3.10), and what a reader of schema 9 or older selects. */
#define FX_COLUMNS        "fx_id, fx_leg"
#define FX_COLUMNS_READ_9 "'', 0"

/* Every trade, as its first leg with the second's key, amount and currency (ledger_fx_trades). */
#define FX_LIST                                                                                    \
    "SELECT a.peer, a.uetr, a.direction, a.amount_minor, a.currency, a.status, a.reason,"          \
    " a.fx_id, a.expires_ms, a.hold, a.at_peer, b.uetr, b.amount_minor, b.currency"                \
    " FROM settlements a JOIN settlements b ON b.peer = a.peer AND b.fx_id = a.fx_id"              \
    " AND b.fx_id <> '' AND b.fx_leg = 2 WHERE a.fx_id <> '' AND a.fx_leg = 1 ORDER BY a.id"
#define FX_LIST_READ_9 "SELECT '', '', 0, 0, '', 0, '', '', 0, '', '', '', 0, '' WHERE 0"

/* Reads of settlements, prepared first, with the columns of the schema (EXTRA: the hold columns
 * then the return columns then the FX columns; IS_RETURN: whether a row is a return; FX_LEG: its
 * leg of a trade; RETURNED: FULLY_RETURNED) or what a reader of an older one selects. Columns 7
 * to 15 are the details (read_details), 16 to 18 the hold, at_peer and cancel_id, 19 to 22 the
 * return columns (read_return), 23 and 24 the FX columns (read_fx). */
#define SETTLEMENT_READS(X, FIND_EXTRA, EXTRA, IS_RETURN, FX_LEG, RETURNED, RETURNED_SUM, FX_LIST) \
    X(find, "SELECT id, direction, amount_minor, currency, content_hash, status, reason,"          \
            " end_to_end_id, value_date, debtor_name, debtor_account, creditor_name,"              \
            " creditor_account, remittance, created_ms, " FIND_EXTRA " FROM settlements"           \
            " WHERE peer = ?1 AND uetr = ?2")                                                      \
    X(list, "SELECT peer, uetr, direction, amount_minor, currency, status, reason,"                \
            " end_to_end_id, value_date, debtor_name, debtor_account, creditor_name,"              \
            " creditor_account, remittance, created_ms, " EXTRA " FROM settlements ORDER BY id")   \
    X(list_returns, "SELECT peer, uetr, direction, amount_minor, currency, status, reason,"        \
                    " end_to_end_id, value_date, debtor_name, debtor_account, creditor_name,"      \
                    " creditor_account, remittance, created_ms, " EXTRA " FROM settlements"        \
                    " WHERE " IS_RETURN " ORDER BY id")                                            \
    X(counts, "SELECT status, (" IS_RETURN ") + 2 * " FX_LEG ", count(*) FROM settlements"         \
              " GROUP BY 1, 2")                                                                    \
    X(fully_returned, RETURNED)                                                                    \
    X(returned_sum, RETURNED_SUM)                                                                  \
    X(list_fx, FX_LIST)
#define READS_10                                                                                   \
    HOLD_COLUMNS ", " RETURN_COLUMNS_FIND ", " FX_COLUMNS,                                         \
        HOLD_COLUMNS ", " RETURN_COLUMNS ", " FX_COLUMNS, "original_uetr <> ''", "fx_leg",         \
        FULLY_RETURNED, RETURNED_SUM, FX_LIST
/* schema 9: no trades */
#define READS_9                                                                                    \
    HOLD_COLUMNS ", " RETURN_COLUMNS_FIND ", " FX_COLUMNS_READ_9,                                  \
        HOLD_COLUMNS ", " RETURN_COLUMNS ", " FX_COLUMNS_READ_9, "original_uetr <> ''", "0",       \
        FULLY_RETURNED, RETURNED_SUM, FX_LIST_READ_9
/* below schema 9: no returns (ledger_returns_of never runs returned_sum there) */
#define READS_8                                                                                    \
    HOLD_COLUMNS ", " RETURN_COLUMNS_READ_8 ", " FX_COLUMNS_READ_9,                                \
        HOLD_COLUMNS ", " RETURN_COLUMNS_READ_8 ", " FX_COLUMNS_READ_9, "0", "0", "SELECT 0",      \
        "SELECT 0, 0", FX_LIST_READ_9
#define READS_7                                                                                    \
    HOLD_COLUMNS_READ_7 ", " RETURN_COLUMNS_READ_8 ", " FX_COLUMNS_READ_9,                         \
        HOLD_COLUMNS_READ_7 ", " RETURN_COLUMNS_READ_8 ", " FX_COLUMNS_READ_9, "0", "0",           \
        "SELECT 0", "SELECT 0, 0", FX_LIST_READ_9
#define SETTLEMENT_READS_OF(X, READS) SETTLEMENT_READS_(X, READS)
#define SETTLEMENT_READS_(X, ...)     SETTLEMENT_READS(X, __VA_ARGS__)

/* The columns of a key row as key_read takes them: those of schema 6, then the switch (7). */
#define KEY_COLUMNS_6                                                                              \
    "peer, side, key_id, sign_public, box_public, curve_public, first_seq, last_seq,"              \
    " revoked_from, source, created_ms, evidence"
#define KEY_COLUMNS KEY_COLUMNS_6 ", switch_seq, switch_ms"

/* What a reader of a schema-6 ledger (which it does not upgrade) selects for KEY_COLUMNS: no
 * key has switched its CURVE key. */
#define KEY_COLUMNS_READ_6 KEY_COLUMNS_6 ", 0, 0"

/* Statements on the tables of schema 6, which a reader of an older ledger does not find:
 * prepared when the ledger is (or, opened for writing, has been upgraded to) schema 6 or later,
 * selecting `COLUMNS` (KEY_COLUMNS, or KEY_COLUMNS_READ_6 for a reader of schema 6). */
#define KEY_STATEMENTS(X, COLUMNS)                                                                 \
    X(keys_list, "SELECT " COLUMNS " FROM keys WHERE ?1 IS NULL OR peer = ?1"                      \
                 " ORDER BY peer, side, first_seq, created_ms,"                                    \
                 " CASE last_seq WHEN 0 THEN 9223372036854775807 ELSE last_seq END")

/* Statements on columns a reader may not find in an older ledger (a reader does not upgrade),
 * and the key history's writes: prepared only when the ledger is opened for writing, which
 * upgrades it first. */
#define WRITER_STATEMENTS(X)                                                                       \
    X(key_find, "SELECT " KEY_COLUMNS " FROM keys WHERE peer = ?1 AND side = ?2 AND key_id = ?3")  \
    X(key_latest, "SELECT key_id, first_seq, last_seq, revoked_from, switch_seq FROM keys"         \
                  " WHERE peer = ?1 AND side = ?2"                                                 \
                  " ORDER BY first_seq DESC, last_seq = 0 DESC LIMIT 1")                           \
    X(key_close, "UPDATE keys SET last_seq = ?4 WHERE peer = ?1 AND side = ?2 AND key_id = ?3")    \
    X(key_insert, "INSERT INTO keys(" KEY_COLUMNS ") VALUES(?1,?2,?3,?4,?5,?6,?7,0,0,?8,"          \
                  " MAX(?9, COALESCE((SELECT MAX(created_ms) + 1 FROM keys"                        \
                  "  WHERE peer = ?1 AND side = ?2), 0)), ?10, 0, 0)")                             \
    X(key_switch, "UPDATE keys SET switch_seq = ?4, switch_ms = ?5"                                \
                  " WHERE peer = ?1 AND side = ?2 AND key_id = ?3")                                \
    X(key_revoke,                                                                                  \
      "UPDATE keys SET revoked_from = ?3 WHERE peer = ?1 AND side = ?2"                            \
      " AND (last_seq = 0 OR last_seq >= ?3) AND (revoked_from = 0 OR revoked_from > ?3)"          \
      " AND (?4 IS NULL OR key_id <> ?4)")                                                         \
    X(channel_extra, "SELECT wire_version, applied_proof, features FROM channels WHERE peer = ?1") \
    X(channel_features, "UPDATE channels SET features = ?2 WHERE peer = ?1")                       \
    X(channel_applied, "UPDATE channels SET applied_seq = ?2, applied_proof = ?3 WHERE peer = ?1") \
    X(channel_version, "UPDATE channels SET wire_version = ?2 WHERE peer = ?1")                    \
    X(row_for_reply, "SELECT kind, peer, uetr, currency, amount_minor, reason, content_hash,"      \
                     " evidence, created_ms FROM journal WHERE seq = ?1")                          \
    X(set_row_reply, "UPDATE journal SET reply = ?2, hash = ?3 WHERE seq = ?1")                    \
    X(checkpoint_when, "SELECT messages, created_ms FROM checkpoints WHERE peer = ?1"              \
                       " ORDER BY id DESC LIMIT 1")                                                \
    X(checkpoint_messages, "UPDATE checkpoints SET messages = ?2 WHERE id = ?1")                   \
    X(running_get, "SELECT paid, received, count, digest, overflow FROM cycle_running"             \
                   " WHERE peer = ?1 AND currency = ?2")                                           \
    X(running_put, "INSERT OR REPLACE INTO cycle_running(peer, currency, paid, received, count,"   \
                   " digest, overflow) VALUES(?1,?2,?3,?4,?5,?6,?7)")                              \
    X(running_all, "SELECT currency, paid, received, count, digest, overflow FROM cycle_running"   \
                   " WHERE peer = ?1 ORDER BY currency")                                           \
    X(net_taken, "SELECT 1 FROM net_settlements WHERE peer = ?1 AND settlement_id = ?2")           \
    X(net_above_cut, "SELECT currency, amount_minor, direction FROM net_settlements"               \
                     " WHERE peer = ?1 AND status = 1 AND ((direction = 0 AND decided_seq > ?3)"   \
                     " OR (direction = 1 AND decided_seq > ?2))")                                  \
    X(insert_settlement,                                                                           \
      "INSERT INTO settlements(peer, uetr, direction, amount_minor, currency, content_hash,"       \
      " status, reason, end_to_end_id, value_date, debtor_name, debtor_account, creditor_name,"    \
      " creditor_account, remittance, created_ms, canon_hash, open_seq, our_seq, their_seq,"       \
      " expires_ms, hold, original_uetr, return_reason, original_hash, fx_id, fx_leg)"             \
      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,"    \
      "?23,?24,?25,?26,?27)")                                                                      \
    X(held_sum, "SELECT sum(a) FROM (SELECT amount_minor AS a FROM settlements"                    \
                " WHERE peer = ?1 AND currency = ?2 AND status = 4 AND fx_leg <> 2"                \
                " UNION ALL SELECT amount_minor FROM settlements WHERE peer = ?1"                  \
                " AND currency = ?2 AND status = 0 AND direction = 0 AND fx_leg = 2"               \
                " UNION ALL SELECT amount_minor FROM settlements WHERE peer = ?1"                  \
                " AND currency = ?2 AND direction = 0 AND fx_leg = 3 AND status = 0)")             \
    X(fx_find, "SELECT uetr FROM settlements WHERE peer = ?1 AND fx_id = ?2 AND fx_id <> ''"       \
               " AND fx_leg IN (1, 2) ORDER BY fx_leg LIMIT 3")                                    \
    X(setoff_pending_sum, "SELECT sum(amount_minor) FROM settlements WHERE peer = ?1"              \
                          " AND currency = ?2 AND direction = ?3 AND status = 0 AND fx_leg = 3")   \
    X(set_hold, "UPDATE settlements SET hold = ?2 WHERE id = ?1")                                  \
    X(set_at_peer, "UPDATE settlements SET at_peer = ?2, their_seq = max(their_seq, ?3)"           \
                   " WHERE id = ?1")                                                               \
    X(set_decided_reply, "UPDATE settlements SET reply = ?2 WHERE id = ?1")                        \
    X(set_cancel, "UPDATE settlements SET cancel_id = ?2, our_seq = max(our_seq, ?3),"             \
                  " their_seq = max(their_seq, ?4) WHERE id = ?1")                                 \
    X(opening_evidence, "SELECT evidence FROM journal WHERE settlement_id = ?1"                    \
                        " ORDER BY seq LIMIT 1")                                                   \
    X(set_status, "UPDATE settlements SET status = ?2, reason = ?3, canon_hash = ?4,"              \
                  " decided_seq = CASE WHEN ?2 = 3 THEN decided_seq ELSE ?5 END,"                  \
                  " returned_seq = CASE WHEN ?2 = 3 THEN ?5 ELSE returned_seq END,"                \
                  " our_seq = max(our_seq, ?6), their_seq = max(their_seq, ?7) WHERE id = ?1")     \
    X(set_reply, "UPDATE settlements SET reply = ?3, decided_seq = ?4, our_seq = max(our_seq, ?4)" \
                 " WHERE peer = ?1 AND uetr = ?2")                                                 \
    X(cut_channel, "SELECT digest, entries FROM channels WHERE peer = ?1")                         \
    X(cut_positions, "SELECT currency, posted_net FROM accounts WHERE kind = 'peer'"               \
                     " AND peer = ?1 ORDER BY currency")                                           \
    X(cut_touched, "SELECT id, direction, uetr, amount_minor, currency, status, reason,"           \
                   " canon_hash, open_seq, decided_seq, returned_seq, original_uetr,"              \
                   " return_reason, fx_id, fx_leg FROM settlements WHERE peer = ?1"                \
                   " AND our_seq > ?2 UNION ALL SELECT id, direction, uetr, amount_minor,"         \
                   " currency, status, reason, canon_hash, open_seq, decided_seq, returned_seq,"   \
                   " original_uetr, return_reason, fx_id, fx_leg FROM settlements"                 \
                   " WHERE peer = ?1 AND their_seq > ?3 AND our_seq <= ?2 LIMIT ?4")

#define DECLARE_STMT(name, sql) sqlite3_stmt *name;
#define STMT_SQL(name, sql)     sql,
#define STMT_SLOT(name, sql)    offsetof(statements_t, name),

typedef struct {
    SETTLEMENT_READS_OF(DECLARE_STMT, READS_10)
    STATEMENTS(DECLARE_STMT)
    KEY_STATEMENTS(DECLARE_STMT, KEY_COLUMNS)
    WRITER_STATEMENTS(DECLARE_STMT)
} statements_t;

/* In this order: a reader prepares the first two groups (the settlement reads as
 * settlement_read_sql_8 or _7 say below schema 9), and the third from schema 6 on (as
 * key_statement_sql_6 says on schema 6). */
static const char *const statement_sql[] = {SETTLEMENT_READS_OF(STMT_SQL, READS_10) STATEMENTS(
    STMT_SQL) KEY_STATEMENTS(STMT_SQL, KEY_COLUMNS) WRITER_STATEMENTS(STMT_SQL)};
static const size_t statement_offset[] = {SETTLEMENT_READS_OF(STMT_SLOT, READS_10) STATEMENTS(
    STMT_SLOT) KEY_STATEMENTS(STMT_SLOT, KEY_COLUMNS) WRITER_STATEMENTS(STMT_SLOT)};
static const char *const key_statement_sql_6[] = {KEY_STATEMENTS(STMT_SQL, KEY_COLUMNS_READ_6)};
static const char *const settlement_read_sql_9[] = {SETTLEMENT_READS_OF(STMT_SQL, READS_9)};
static const char *const settlement_read_sql_8[] = {SETTLEMENT_READS_OF(STMT_SQL, READS_8)};
static const char *const settlement_read_sql_7[] = {SETTLEMENT_READS_OF(STMT_SQL, READS_7)};
#define STMT_ONE(name, sql)    +1
#define STATEMENT_COUNT        (sizeof statement_sql / sizeof statement_sql[0])
#define SETTLEMENT_READ_COUNT  ((size_t)(0 SETTLEMENT_READS_OF(STMT_ONE, READS_10)))
#define READER_STATEMENT_COUNT (SETTLEMENT_READ_COUNT + (size_t)(0 STATEMENTS(STMT_ONE)))
#define KEY_STATEMENT_COUNT    ((size_t)(0 KEY_STATEMENTS(STMT_ONE, KEY_COLUMNS)))

struct ledger {
    sqlite3 *db;                            /* the connection */
    statements_t st;                        /* prepared statements */
    ledger_mode_t mode;                     /* read-write or read-only */
    int schema;                             /* the file's schema version, once migrated */
    bool in_txn;                            /* between ledger_begin and commit/rollback */
    bool stopped;                           /* a storage error happened: refuse writes */
    int64_t clock_ms;                       /* the caller's wall clock (ledger_set_clock) */
    int64_t last_seq;                       /* journal rows so far */
    uint8_t head[LEDGER_HASH_BYTES];        /* hash of the last journal row */
    uint8_t before_last[LEDGER_HASH_BYTES]; /* the head before it, while it may take a reply */
    int64_t replyable_seq;                  /* the last row appended, if it books or refuses a
                                               peer's settlement in this transaction; else 0 */
    char replyable_peer[CORRIDOR_NAME_LEN_MAX + 1]; /* and that row's settlement, by its key */
    char replyable_uetr[CORRIDOR_UETR_LEN + 1];
    char node[CORRIDOR_NAME_LEN_MAX + 1]; /* whose books these are (from meta) */
    char error[512];                      /* the last error, in words */
};

/* The settlements table. (peer, uetr) is unique, but no UNIQUE constraint says so: every
 * insert follows a lookup by (peer, uetr) in the same write transaction (the idempotency check,
 * check_repeat), and a second index on random UETRs would cost a third of the pages each
 * commit writes. The index settlements_channel serves those lookups (then reading the row)
 * and covers the reconciliation's range scans; `corridor audit` reports any (peer, uetr)
 * stored twice. */
#define SETTLEMENTS_TABLE(name)                                                                    \
    "CREATE TABLE " name "("                                                                       \
    "  id INTEGER PRIMARY KEY, peer TEXT NOT NULL, uetr TEXT NOT NULL,"                            \
    "  direction INTEGER NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,"         \
    "  content_hash BLOB NOT NULL, canon_hash BLOB NOT NULL,"                                      \
    "  status INTEGER NOT NULL, reason TEXT NOT NULL,"                                             \
    "  end_to_end_id TEXT NOT NULL, value_date TEXT NOT NULL,"                                     \
    "  debtor_name TEXT NOT NULL, debtor_account TEXT NOT NULL,"                                   \
    "  creditor_name TEXT NOT NULL, creditor_account TEXT NOT NULL,"                               \
    "  remittance TEXT NOT NULL, created_ms INTEGER NOT NULL,"                                     \
    "  reply BLOB);"
#define SETTLEMENTS_INDEX "CREATE INDEX settlements_channel ON settlements(peer, uetr, canon_hash);"

/* Schema 5: which sequenced message opened, decided and returned each settlement (NULL: not
 * yet; 0: before schema 5), and the highest of ours and of the peer's that touched it, indexed
 * so that the settlements above a cut are found without reading the channel (see
 * ledger_channel_at_cut). Sequences grow, so both indexes grow at their right edge. */
#define SETTLEMENTS_SEQUENCES                                                                      \
    "ALTER TABLE settlements ADD COLUMN open_seq INTEGER NOT NULL DEFAULT 0;"                      \
    "ALTER TABLE settlements ADD COLUMN decided_seq INTEGER;"                                      \
    "ALTER TABLE settlements ADD COLUMN returned_seq INTEGER;"                                     \
    "ALTER TABLE settlements ADD COLUMN our_seq INTEGER NOT NULL DEFAULT 0;"                       \
    "ALTER TABLE settlements ADD COLUMN their_seq INTEGER NOT NULL DEFAULT 0;"                     \
    "UPDATE settlements SET decided_seq = 0 WHERE status <> 0;"                                    \
    "UPDATE settlements SET returned_seq = 0 WHERE status = 3;"                                    \
    "CREATE INDEX settlements_ours ON settlements(peer, our_seq);"                                 \
    "CREATE INDEX settlements_theirs ON settlements(peer, their_seq);"

/* Schema 6: the key history (ledger_key_add), one row per (peer, side, key id); side 0 is our
 * key towards the peer, 1 the peer's. last_seq 0: open; revoked_from 0: not revoked. Public
 * keys only. */
#define KEYS_TABLE                                                                                 \
    "CREATE TABLE keys(peer TEXT NOT NULL, side INTEGER NOT NULL CHECK(side IN (0,1)),"            \
    "  key_id BLOB NOT NULL, sign_public BLOB NOT NULL, box_public BLOB NOT NULL,"                 \
    "  curve_public TEXT NOT NULL, first_seq INTEGER NOT NULL,"                                    \
    "  last_seq INTEGER NOT NULL DEFAULT 0, revoked_from INTEGER NOT NULL DEFAULT 0,"              \
    "  source TEXT NOT NULL, created_ms INTEGER NOT NULL, evidence BLOB,"                          \
    "  PRIMARY KEY(peer, side, key_id)) WITHOUT ROWID;"

/* Schema 7: the CURVE key switch of each key (ledger_key_set_switch). switch_seq 0: the
 * transport has not switched to the key's CURVE key; else the KeySwitch after which it has.
 * switch_ms: ours, the overlap asked for at the rotation; theirs, the wall clock until which
 * the previous CURVE key is admitted. Both 0 in every row of an upgraded ledger. */
#define KEYS_SWITCH                                                                                \
    "ALTER TABLE keys ADD COLUMN switch_seq INTEGER NOT NULL DEFAULT 0;"                           \
    "ALTER TABLE keys ADD COLUMN switch_ms INTEGER NOT NULL DEFAULT 0;"

/* Schema 8: holds, expiry and cancellation (PROTOCOL.md 3.8.5). expires_ms: the Settlement's
 * expiry (0: none), which the payer re-encodes its body with; hold: why a held payment waits;
 * at_peer: "held" when the payee said it holds our payment; cancel_id: our open CancelRequest.
 * The partial index serves the cap's sum of held payments and the list of them. */
#define SETTLEMENTS_HOLDS                                                                          \
    "ALTER TABLE settlements ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"                    \
    "ALTER TABLE settlements ADD COLUMN hold TEXT NOT NULL DEFAULT '';"                            \
    "ALTER TABLE settlements ADD COLUMN at_peer TEXT NOT NULL DEFAULT '';"                         \
    "ALTER TABLE settlements ADD COLUMN cancel_id TEXT NOT NULL DEFAULT '';"                       \
    "CREATE INDEX settlements_held ON settlements(peer, currency) WHERE status = 4;"

/* Schema 9: returns (PROTOCOL.md 3.9) are records of their own, the other way; these say what
 * each returns: empty for a payment. The partial index finds the returns of a payment by status,
 * so that the refused ones a hostile peer piles up on one payment cost nothing to skip (every
 * query that needs it says `original_uetr <> ''`, as SQLite requires to use a partial index). */
#define SETTLEMENTS_RETURNS                                                                        \
    "ALTER TABLE settlements ADD COLUMN original_uetr TEXT NOT NULL DEFAULT '';"                   \
    "ALTER TABLE settlements ADD COLUMN return_reason TEXT NOT NULL DEFAULT '';"                   \
    "ALTER TABLE settlements ADD COLUMN original_hash BLOB;"                                       \
    "CREATE INDEX settlements_returns ON settlements(peer, original_uetr, status)"                 \
    " WHERE original_uetr <> '';"

/* Schema 10: FX trades (PROTOCOL.md 3.10). Each leg is a record of its own: fx_id the trade's id,
 * fx_leg which leg (FX_LEG_*; 0 for anything else), original_hash the FxProposal's body hash. The
 * first index finds a trade's legs; the second serves the cap's sum of the legs our pending
 * proposals would have the peer pay us (the headroom they reserve), tiny as it holds only those. */
#define SETTLEMENTS_FX                                                                             \
    "ALTER TABLE settlements ADD COLUMN fx_id TEXT NOT NULL DEFAULT '';"                           \
    "ALTER TABLE settlements ADD COLUMN fx_leg INTEGER NOT NULL DEFAULT 0;"                        \
    "CREATE INDEX settlements_fx ON settlements(peer, fx_id) WHERE fx_id <> '';"                   \
    "CREATE INDEX settlements_fx_reserved ON settlements(peer, currency)"                          \
    " WHERE status = 0 AND direction = 0 AND fx_leg = 2;"

/* Schema 11: settlement cycles (PROTOCOL.md 3.11.4). cycle_running holds, per channel and
 * currency, the figures of the entries made final since the last closed cut (moved with each
 * final status, like the channel digest), filled by an upgrade from every final entry: cycle 1
 * of an upgraded ledger starts at the channel's start. */
#define CYCLES_TABLES                                                                              \
    "CREATE TABLE cycles(peer TEXT NOT NULL, cycle INTEGER NOT NULL, state INTEGER NOT NULL,"      \
    "  proposer INTEGER NOT NULL, own_sent INTEGER NOT NULL, peer_sent INTEGER NOT NULL,"          \
    "  statement BLOB NOT NULL, own_signature BLOB NOT NULL, own_figures BLOB NOT NULL,"           \
    "  peer_statement BLOB, peer_signature BLOB, error TEXT NOT NULL DEFAULT '',"                  \
    "  created_ms INTEGER NOT NULL, closed_ms INTEGER NOT NULL DEFAULT 0,"                         \
    "  PRIMARY KEY(peer, cycle)) WITHOUT ROWID;"                                                   \
    "CREATE TABLE cycle_running(peer TEXT NOT NULL, currency TEXT NOT NULL,"                       \
    "  paid INTEGER NOT NULL, received INTEGER NOT NULL, count INTEGER NOT NULL,"                  \
    "  digest BLOB NOT NULL, overflow INTEGER NOT NULL DEFAULT 0,"                                 \
    "  PRIMARY KEY(peer, currency)) WITHOUT ROWID;"                                                \
    "CREATE TABLE net_settlements(peer TEXT NOT NULL, settlement_id TEXT NOT NULL,"                \
    "  cycle INTEGER NOT NULL, currency TEXT NOT NULL, amount_minor INTEGER NOT NULL,"             \
    "  direction INTEGER NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',"      \
    "  body_hash BLOB NOT NULL, evidence BLOB NOT NULL, reply BLOB, decided_seq INTEGER,"          \
    "  reference TEXT NOT NULL, created_ms INTEGER NOT NULL,"                                      \
    "  PRIMARY KEY(peer, settlement_id)) WITHOUT ROWID;"                                           \
    "CREATE INDEX net_settlements_cycle ON net_settlements(peer, cycle, currency);"                \
    "CREATE INDEX net_settlements_decided ON net_settlements(peer, decided_seq) WHERE status = 1;"

/* Schema 12: multilateral set-offs (PROTOCOL.md 3.12.6), one record per set-off this node
 * takes part in; its legs are records of `settlements` (fx_leg 3, fx_id the set-off's id). */
#define SETOFFS_TABLE                                                                              \
    "CREATE TABLE setoffs(setoff_id TEXT PRIMARY KEY, terms BLOB NOT NULL,"                        \
    "  terms_signature BLOB NOT NULL, position INTEGER NOT NULL, currency TEXT NOT NULL,"          \
    "  amount_minor INTEGER NOT NULL, state INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',"    \
    "  our_vote BLOB, votes BLOB, verdict BLOB, relay_seq INTEGER NOT NULL DEFAULT 0,"             \
    "  decision_seq INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"                      \
    "  decided_ms INTEGER NOT NULL DEFAULT 0, deadline_ms INTEGER NOT NULL,"                       \
    "  asked_by TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"                                          \
    "CREATE INDEX setoffs_due ON setoffs(deadline_ms) WHERE state = 0 AND position = 0;"           \
    "CREATE INDEX settlements_setoff_open ON settlements(peer, currency, direction)"               \
    " WHERE fx_leg = 3 AND status = 0;"                                                            \
    "ALTER TABLE channels ADD COLUMN features INTEGER NOT NULL DEFAULT 0;"

static const char *const schema =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE accounts("
    "  kind TEXT NOT NULL CHECK(kind IN ('peer','clearing')),"
    "  peer TEXT NOT NULL, currency TEXT NOT NULL,"
    "  posted_net INTEGER NOT NULL DEFAULT 0 CHECK(typeof(posted_net) = 'integer'),"
    "  pending_net INTEGER NOT NULL DEFAULT 0 CHECK(typeof(pending_net) = 'integer'),"
    "  PRIMARY KEY(kind, peer, currency)) WITHOUT ROWID;" SETTLEMENTS_TABLE(
        "settlements") "CREATE TABLE journal("
                       "  seq INTEGER PRIMARY KEY, settlement_id INTEGER NOT NULL, kind INTEGER "
                       "NOT NULL,"
                       "  peer TEXT NOT NULL, uetr TEXT NOT NULL, currency TEXT NOT NULL,"
                       "  amount_minor INTEGER NOT NULL, reason TEXT NOT NULL, content_hash BLOB "
                       "NOT NULL,"
                       "  evidence BLOB NOT NULL, created_ms INTEGER NOT NULL, hash BLOB NOT NULL,"
                       "  reply BLOB);"
                       "CREATE INDEX journal_settlement ON "
                       "journal(settlement_id);" SETTLEMENTS_INDEX
                       "CREATE TABLE outbox(peer TEXT NOT NULL, seq INTEGER NOT NULL, type INTEGER "
                       "NOT NULL,"
                       "  signed BLOB NOT NULL, PRIMARY KEY(peer, seq)) WITHOUT ROWID;"
                       "CREATE TABLE channels(peer TEXT PRIMARY KEY, sent_seq INTEGER NOT NULL "
                       "DEFAULT 0,"
                       "  acked_seq INTEGER NOT NULL DEFAULT 0, applied_seq INTEGER NOT NULL "
                       "DEFAULT 0,"
                       "  diverged INTEGER NOT NULL DEFAULT 0,"
                       "  digest BLOB NOT NULL DEFAULT (zeroblob(32)), entries INTEGER NOT NULL "
                       "DEFAULT 0, wire_version INTEGER NOT NULL DEFAULT 1, applied_proof BLOB)"
                       "  WITHOUT ROWID;"
                       "CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, peer TEXT NOT NULL, body "
                       "BLOB NOT NULL,"
                       "  own_signature BLOB NOT NULL, peer_signature BLOB NOT NULL, own_rows "
                       "INTEGER NOT NULL,"
                       "  own_head BLOB NOT NULL, created_ms INTEGER NOT NULL,"
                       "  messages INTEGER NOT NULL DEFAULT 0);" SETTLEMENTS_SEQUENCES KEYS_TABLE
                           KEYS_SWITCH SETTLEMENTS_HOLDS SETTLEMENTS_RETURNS SETTLEMENTS_FX
                               CYCLES_TABLES SETOFFS_TABLE;

const char *ledger_strerror(ledger_err_t err)
{
    switch (err) {
    case LEDGER_OK:
        return "ok";
    case LEDGER_E_STORAGE:
        return "storage error; the ledger has stopped";
    case LEDGER_E_STOPPED:
        return "the ledger stopped after a storage error and refuses writes";
    case LEDGER_E_CORRUPT:
        return "not a Corridor ledger, or damaged";
    case LEDGER_E_VERSION:
        return "ledger written by a newer version";
    case LEDGER_E_CONFLICT:
        return "UETR already used on this channel with different content";
    case LEDGER_E_NOT_FOUND:
        return "no such settlement on this channel";
    case LEDGER_E_STATE:
        return "settlement is not in a state that allows this";
    case LEDGER_E_READONLY:
        return "ledger is open read-only";
    case LEDGER_E_OVERFLOW:
        return "position would overflow";
    }
    return "unknown error";
}

const char *ledger_last_error(const ledger_t *l)
{
    return l != NULL ? l->error : "no ledger";
}

const char *status_name(status_t status)
{
    static const char *const names[] = {"pending", "settled", "rejected", "returned", "held"};
    _Static_assert(sizeof names / sizeof names[0] == STATUS_MAX + 1, "a name per status");
    assert(status >= STATUS_PENDING && status <= STATUS_MAX);
    return names[status];
}

status_t status_canonical(status_t status)
{
    return status == STATUS_HELD ? STATUS_PENDING : status;
}

const char *entry_kind_name(entry_kind_t kind)
{
    static const char *const names[] = {"?",
                                        "pending",
                                        "posted",
                                        "voided",
                                        "booked",
                                        "refused",
                                        "returned",
                                        "imported",
                                        "rebased",
                                        "operator",
                                        "checkpoint",
                                        "held",
                                        "released",
                                        "declined",
                                        "held_at_peer",
                                        "cancel_requested",
                                        "cancel_refused",
                                        "cycle",
                                        "net_claimed",
                                        "net_settled",
                                        "net_refused",
                                        "setoff_pending",
                                        "setoff_posted",
                                        "setoff_voided"};
    _Static_assert(sizeof names / sizeof names[0] == ENTRY_KIND_MAX + 1, "a name per kind");
    return kind >= ENTRY_OUT_PENDING && kind <= ENTRY_KIND_MAX ? names[kind] : "unknown";
}

static void set_error(ledger_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(ledger_t *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error, sizeof l->error, fmt, ap);
    va_end(ap);
}

static ledger_err_t load_head(ledger_t *l);

/* A storage failure: record it, roll back, stop. */
static ledger_err_t storage_failure(ledger_t *l, const char *what);

/* A channel or account row that must exist (created earlier in the transaction, or by an
 * earlier entry) is not there to update: stop, as on a storage error. */
static ledger_err_t row_missing(ledger_t *l, const char *what)
{
    ledger_err_t rc = storage_failure(l, what);
    set_error(l, "%s: its row is missing", what);
    return rc;
}

static ledger_err_t storage_failure(ledger_t *l, const char *what)
{
    set_error(l, "%s: %s", what, sqlite3_errmsg(l->db));
    if (l->in_txn) {
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        l->in_txn = false;
    }
    l->stopped = true;
    (void)load_head(l); /* the rolled-back rows are gone: so is their head */
    return LEDGER_E_STORAGE;
}

/* Steps a statement that returns no rows and resets it. */
static int step_done(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void finish(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

static void bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    int rc = sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
    assert(rc == SQLITE_OK);
}

const char *ledger_column_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);
    return text != NULL ? (const char *)text : "";
}

static void copy_column(char *dst, size_t dst_size, sqlite3_stmt *stmt, int col)
{
    snprintf(dst, dst_size, "%s", ledger_column_text(stmt, col));
}

/* ---- hash chain -------------------------------------------------------------------------- */

static void hash_u64(crypto_generichash_state *st, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++) {
        le[i] = (uint8_t)(v >> (8 * i));
    }
    crypto_generichash_update(st, le, sizeof le);
}

static void hash_bytes(crypto_generichash_state *st, const uint8_t *data, size_t len)
{
    hash_u64(st, len);
    crypto_generichash_update(st, data, len);
}

static void hash_text(crypto_generichash_state *st, const char *text)
{
    hash_bytes(st, (const uint8_t *)text, strlen(text));
}

void ledger_row_hash(const uint8_t prev[static LEDGER_HASH_BYTES], const ledger_row_t *row,
                     uint8_t out[static LEDGER_HASH_BYTES])
{
    assert(row != NULL && row->content_hash != NULL);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, LEDGER_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)ROW_HASH_DOMAIN, sizeof ROW_HASH_DOMAIN);
    crypto_generichash_update(&st, prev, LEDGER_HASH_BYTES);
    hash_u64(&st, (uint64_t)row->seq);
    hash_u64(&st, (uint64_t)row->kind);
    hash_text(&st, row->peer);
    hash_text(&st, row->uetr);
    hash_text(&st, row->currency);
    hash_u64(&st, (uint64_t)row->amount_minor);
    hash_text(&st, row->reason);
    crypto_generichash_update(&st, row->content_hash, SETTLEMENT_HASH_BYTES);
    hash_bytes(&st, row->evidence, row->evidence_len);
    hash_u64(&st, (uint64_t)row->created_unix_ms);
    if (row->reply_len > 0) {
        hash_bytes(&st, row->reply, row->reply_len);
    }
    crypto_generichash_final(&st, out, LEDGER_HASH_BYTES);
}

ledger_effect_t ledger_row_effect(entry_kind_t kind, direction_t original, int64_t amount_minor)
{
    ledger_effect_t e = {0, 0};
    int64_t m = amount_minor;
    switch (kind) {
    case ENTRY_OUT_PENDING: /* we will owe the peer m: credit its account, pending */
        e.pending = -m;
        break;
    case ENTRY_OUT_POSTED: /* the pending credit becomes posted */
        e.pending = m;
        e.posted = -m;
        break;
    case ENTRY_OUT_VOIDED: /* the pending credit is released */
        e.pending = m;
        break;
    case ENTRY_IN_BOOKED: /* the peer owes us m: debit its account */
        e.posted = m;
        break;
    case ENTRY_IN_REFUSED:
        break;
    case ENTRY_RETURNED: /* the reverse of the original posting */
        e.posted = original == DIRECTION_OUT ? m : -m;
        break;
    case ENTRY_HELD: /* the peer will owe us m once released: debit its account, pending */
        e.pending = m;
        break;
    case ENTRY_RELEASED: /* the pending debit becomes posted */
        e.pending = -m;
        e.posted = m;
        break;
    case ENTRY_DECLINED: /* the pending debit is released */
        e.pending = -m;
        break;
    case ENTRY_NET_SETTLED: /* a cycle's net paid outside: signed, the debtor's rises */
        e.posted = m;
        break;
    case ENTRY_SETOFF_PENDING: /* m < 0: the debt between us shrinks once posted; the
                                  creditor's claim moves only then (nothing pending: a peer's
                                  proposals cannot pile up our pending) */
        return ledger_row_effect(original == DIRECTION_OUT ? ENTRY_OUT_PENDING : ENTRY_IN_REFUSED,
                                 original, m);
    case ENTRY_SETOFF_POSTED:
        return ledger_row_effect(original == DIRECTION_OUT ? ENTRY_OUT_POSTED : ENTRY_IN_BOOKED,
                                 original, m);
    case ENTRY_SETOFF_VOIDED:
        return ledger_row_effect(original == DIRECTION_OUT ? ENTRY_OUT_VOIDED : ENTRY_IN_REFUSED,
                                 original, m);
    case ENTRY_IMPORTED: /* evidence only */
    case ENTRY_CYCLE:
    case ENTRY_NET_CLAIMED:
    case ENTRY_NET_REFUSED:
    case ENTRY_REBASED:
    case ENTRY_OPERATOR:
    case ENTRY_CHECKPOINT:
    case ENTRY_HELD_AT_PEER:
    case ENTRY_CANCEL_REQUESTED:
    case ENTRY_CANCEL_REFUSED:
        break;
    }
    return e;
}

/* ---- open, close, migrate --------------------------------------------------------------- */

static ledger_err_t read_meta(ledger_t *l, const char *key, char *out, size_t out_size)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(l->db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, NULL) !=
        SQLITE_OK) {
        set_error(l, "not a Corridor ledger: %s", sqlite3_errmsg(l->db));
        return LEDGER_E_CORRUPT;
    }
    bind_text(stmt, 1, key);
    ledger_err_t rc = LEDGER_E_CORRUPT;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        copy_column(out, out_size, stmt, 0);
        rc = LEDGER_OK;
    } else {
        set_error(l, "not a Corridor ledger (no %s in meta)", key);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Version 1 -> 2: the settlements table loses its UNIQUE(peer, uetr) constraint and with it an
 * index (see SETTLEMENTS_TABLE). SQLite cannot drop a constraint, so the table is rebuilt with
 * the same rows and ids (the journal refers to them by id). */
static const char *const migrate_1_to_2 = "BEGIN IMMEDIATE;" SETTLEMENTS_TABLE(
    "settlements_v2") "INSERT INTO settlements_v2 SELECT id, peer, uetr, direction, amount_minor, "
                      "currency,"
                      "  content_hash, canon_hash, status, reason, end_to_end_id, value_date, "
                      "debtor_name,"
                      "  debtor_account, creditor_name, creditor_account, remittance, created_ms, "
                      "reply"
                      "  FROM settlements ORDER BY id;"
                      "DROP TABLE settlements;"
                      "ALTER TABLE settlements_v2 RENAME TO settlements;" SETTLEMENTS_INDEX
                      "PRAGMA user_version = 2;"
                      "COMMIT;";

/* Version 2 -> 3: each channel keeps the Inner format it negotiated (a peer cannot talk it
 * down again) and the signed bytes of the last message applied from the peer (the proof of
 * what was applied, shown to the peer in a re-base). */
/* Version 3 -> 4: the row that books or refuses a peer's settlement carries our signed
 * StatusReport in its hash; rows from here on must (meta replies_from). */
static const char *const migrate_3_to_4 =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE journal ADD COLUMN reply BLOB;"
    "ALTER TABLE checkpoints ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;"
    "INSERT OR REPLACE INTO meta VALUES('replies_from',"
    "  (SELECT coalesce(max(seq), 0) + 1 FROM journal));"
    "PRAGMA user_version = 4;"
    "COMMIT;";

/* Version 4 -> 5: settlements name the sequenced messages that opened, decided and returned
 * them (SETTLEMENTS_SEQUENCES); older ones count as below every cut. */
static const char *const migrate_4_to_5 =
    "BEGIN IMMEDIATE;" SETTLEMENTS_SEQUENCES "PRAGMA user_version = 5;"
    "COMMIT;";

/* Version 5 -> 6: the key history (KEYS_TABLE), empty: a channel side with no key recorded is
 * signed throughout by the key of the configured card. */
static const char *const migrate_5_to_6 = "BEGIN IMMEDIATE;" KEYS_TABLE "PRAGMA user_version = 6;"
                                          "COMMIT;";

/* Version 6 -> 7: each key says whether the transport switched to its CURVE key (KEYS_SWITCH);
 * no recorded key has. */
static const char *const migrate_6_to_7 = "BEGIN IMMEDIATE;" KEYS_SWITCH "PRAGMA user_version = 7;"
                                          "COMMIT;";

/* Version 7 -> 8: holds, expiry and cancellation (SETTLEMENTS_HOLDS); nothing is held. */
static const char *const migrate_7_to_8 =
    "BEGIN IMMEDIATE;" SETTLEMENTS_HOLDS "PRAGMA user_version = 8;"
    "COMMIT;";

/* Version 8 -> 9: returns (SETTLEMENTS_RETURNS); every record is a payment. */
static const char *const migrate_8_to_9 =
    "BEGIN IMMEDIATE;" SETTLEMENTS_RETURNS "PRAGMA user_version = 9;"
    "COMMIT;";

/* Version 9 -> 10: FX trades (SETTLEMENTS_FX); no record is a leg. */
static const char *const migrate_9_to_10 =
    "BEGIN IMMEDIATE;" SETTLEMENTS_FX "PRAGMA user_version = 10;"
    "COMMIT;";

/* Version 10 -> 11: settlement cycles (CYCLES_TABLES); the running figures start from every
 * entry final so far (money the way it went: against the message for an acceptor's leg). */
static const char *const migrate_10_to_11 =
    "BEGIN IMMEDIATE;" CYCLES_TABLES
    "INSERT INTO cycle_running(peer, currency, paid, received, count, digest)"
    " SELECT peer, currency,"
    "  sum(CASE WHEN status = 1 AND (direction = 0) <> (fx_leg = 2) THEN amount_minor ELSE 0 END),"
    "  sum(CASE WHEN status = 1 AND (direction = 0) = (fx_leg = 2) THEN amount_minor ELSE 0 END),"
    "  count(*), corridor_sum256(canon_hash)"
    " FROM settlements WHERE status IN (1, 2, 3) GROUP BY peer, currency;"
    "PRAGMA user_version = 11;"
    "COMMIT;";

/* Version 11 -> 12: multilateral set-offs (SETOFFS_TABLE). */
static const char *const migrate_11_to_12 =
    "BEGIN IMMEDIATE;" SETOFFS_TABLE "PRAGMA user_version = 12;"
    "COMMIT;";

static const char *const migrate_2_to_3 =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE channels ADD COLUMN wire_version INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE channels ADD COLUMN applied_proof BLOB;"
    "PRAGMA user_version = 3;"
    "COMMIT;";

static ledger_err_t run_script(ledger_t *l, const char *sql, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(l->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        set_error(l, "cannot %s: %s", what, err != NULL ? err : "?");
        sqlite3_free(err);
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        return LEDGER_E_STORAGE;
    }
    return LEDGER_OK;
}

static ledger_err_t create_schema(ledger_t *l, const char *node)
{
    char *sql = sqlite3_mprintf("BEGIN IMMEDIATE; %s"
                                "INSERT INTO meta VALUES('format', '%s');"
                                "INSERT INTO meta VALUES('node', %Q);"
                                "INSERT INTO meta VALUES('replies_from', '1');"
                                "PRAGMA user_version = %d; COMMIT;",
                                schema, LEDGER_FORMAT, node, LEDGER_SCHEMA_VERSION);
    if (sql == NULL) {
        set_error(l, "out of memory");
        return LEDGER_E_STORAGE;
    }
    ledger_err_t rc = run_script(l, sql, "create ledger");
    sqlite3_free(sql);
    return rc;
}

static ledger_err_t check_identity(ledger_t *l, const char *node);

/* Brings the schema to LEDGER_SCHEMA_VERSION. Version 0 with no tables is a new file; each
 * later version adds a step here (migrations run in one transaction each). */
static ledger_err_t migrate(ledger_t *l, const char *node)
{
    sqlite3_stmt *stmt = NULL;
    int version = -1, tables = -1;
    if (sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        version = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    if (sqlite3_prepare_v2(l->db, "SELECT count(*) FROM sqlite_master", -1, &stmt, NULL) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        tables = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    if (version < 0 || tables < 0) {
        set_error(l, "not a Corridor ledger: %s", sqlite3_errmsg(l->db));
        return LEDGER_E_CORRUPT;
    }
    if (version > LEDGER_SCHEMA_VERSION) {
        set_error(l, "ledger schema %d is newer than this program's %d", version,
                  LEDGER_SCHEMA_VERSION);
        return LEDGER_E_VERSION;
    }
    l->schema = version;
    if (version == 0 && tables == 0) {
        if (l->mode == LEDGER_READ_ONLY) {
            set_error(l, "empty ledger file");
            return LEDGER_E_CORRUPT;
        }
        l->schema = LEDGER_SCHEMA_VERSION;
        return create_schema(l, node);
    }
    if (version == 0) {
        set_error(l, "not a Corridor ledger (foreign tables, no schema version)");
        return LEDGER_E_CORRUPT;
    }
    if (version == LEDGER_SCHEMA_VERSION || l->mode == LEDGER_READ_ONLY) {
        return LEDGER_OK; /* a reader reads older versions as they are */
    }
    ledger_err_t rc = check_identity(l, node); /* upgrade only our own ledgers */
    if (rc == LEDGER_OK && version == 1) {
        rc = run_script(l, migrate_1_to_2, "upgrade the ledger from schema 1 to 2");
    }
    if (rc == LEDGER_OK && version <= 2) {
        rc = run_script(l, migrate_2_to_3, "upgrade the ledger from schema 2 to 3");
    }
    if (rc == LEDGER_OK && version <= 3) {
        rc = run_script(l, migrate_3_to_4, "upgrade the ledger from schema 3 to 4");
    }
    if (rc == LEDGER_OK && version <= 4) {
        rc = run_script(l, migrate_4_to_5, "upgrade the ledger from schema 4 to 5");
    }
    if (rc == LEDGER_OK && version <= 5) {
        rc = run_script(l, migrate_5_to_6, "upgrade the ledger from schema 5 to 6");
    }
    if (rc == LEDGER_OK && version <= 6) {
        rc = run_script(l, migrate_6_to_7, "upgrade the ledger from schema 6 to 7");
    }
    if (rc == LEDGER_OK && version <= 7) {
        rc = run_script(l, migrate_7_to_8, "upgrade the ledger from schema 7 to 8");
    }
    if (rc == LEDGER_OK && version <= 8) {
        rc = run_script(l, migrate_8_to_9, "upgrade the ledger from schema 8 to 9");
    }
    if (rc == LEDGER_OK && version <= 9) {
        rc = run_script(l, migrate_9_to_10, "upgrade the ledger from schema 9 to 10");
    }
    if (rc == LEDGER_OK && version <= 10) {
        rc = run_script(l, migrate_10_to_11, "upgrade the ledger from schema 10 to 11");
    }
    if (rc == LEDGER_OK && version <= 11) {
        rc = run_script(l, migrate_11_to_12, "upgrade the ledger from schema 11 to 12");
    }
    if (rc == LEDGER_OK) {
        l->schema = LEDGER_SCHEMA_VERSION;
    }
    return rc;
}

static ledger_err_t check_identity(ledger_t *l, const char *node)
{
    char format[64], owner[64];
    ledger_err_t rc = read_meta(l, "format", format, sizeof format);
    if (rc == LEDGER_OK && strcmp(format, LEDGER_FORMAT) != 0) {
        set_error(l, "not a Corridor ledger (format '%s')", format);
        rc = LEDGER_E_CORRUPT;
    }
    if (rc == LEDGER_OK) {
        rc = read_meta(l, "node", owner, sizeof owner);
    }
    if (rc == LEDGER_OK && node != NULL && strcmp(owner, node) != 0) {
        set_error(l, "ledger belongs to node %s, not %s", owner, node);
        rc = LEDGER_E_CORRUPT;
    }
    if (rc == LEDGER_OK && node_code_check(owner) != VALID_OK) {
        set_error(l, "not a Corridor ledger (node '%.16s')", owner);
        rc = LEDGER_E_CORRUPT;
    }
    if (rc == LEDGER_OK) {
        memcpy(l->node, owner, strlen(owner) + 1); /* a node code: fits, checked above */
    }
    return rc;
}

static ledger_err_t load_head(ledger_t *l)
{
    l->replyable_seq = 0;
    sqlite3_stmt *stmt = l->st.last_row;
    int step = sqlite3_step(stmt);
    ledger_err_t rc = LEDGER_OK;
    if (step == SQLITE_ROW) {
        l->last_seq = sqlite3_column_int64(stmt, 0);
        if (sqlite3_column_bytes(stmt, 1) != LEDGER_HASH_BYTES) {
            set_error(l, "journal row %lld has a malformed hash", (long long)l->last_seq);
            rc = LEDGER_E_CORRUPT;
        } else {
            memcpy(l->head, sqlite3_column_blob(stmt, 1), LEDGER_HASH_BYTES);
        }
    } else if (step == SQLITE_DONE) {
        l->last_seq = 0;
        memset(l->head, 0, sizeof l->head);
    } else {
        set_error(l, "cannot read the journal: %s", sqlite3_errmsg(l->db));
        rc = LEDGER_E_CORRUPT;
    }
    finish(stmt);
    return rc;
}

static ledger_err_t prepare_all(ledger_t *l)
{
    size_t count = READER_STATEMENT_COUNT + (l->schema >= 6 ? KEY_STATEMENT_COUNT : 0);
    if (l->mode == LEDGER_READ_WRITE) {
        assert(l->schema == LEDGER_SCHEMA_VERSION); /* migrate upgraded it */
        count = STATEMENT_COUNT;
    }
    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)((char *)&l->st + statement_offset[i]);
        const char *sql = statement_sql[i];
        if (l->schema == 6 && i >= READER_STATEMENT_COUNT &&
            i < READER_STATEMENT_COUNT + KEY_STATEMENT_COUNT) {
            sql = key_statement_sql_6[i - READER_STATEMENT_COUNT]; /* a reader: no switch yet */
        }
        if (l->schema < 10 && i < SETTLEMENT_READ_COUNT) {
            sql = l->schema < 8   ? settlement_read_sql_7[i] /* a reader: nothing held, no expiry */
                  : l->schema < 9 ? settlement_read_sql_8[i] /* a reader: no returns */
                                  : settlement_read_sql_9[i]; /* a reader: no trades */
        }
        if (sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
            SQLITE_OK) {
            set_error(l, "not a Corridor ledger: %s", sqlite3_errmsg(l->db));
            return LEDGER_E_CORRUPT;
        }
    }
    return LEDGER_OK;
}

ledger_err_t ledger_open(const char *path, const char *node, ledger_mode_t mode, const char *vfs,
                         ledger_t **out, char *err, size_t err_size)
{
    assert(path != NULL && out != NULL);
    assert(mode == LEDGER_READ_ONLY || node != NULL);
    *out = NULL;
    ledger_t *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, err_size, "out of memory");
        return LEDGER_E_STORAGE;
    }
    l->mode = mode;
    int flags = mode == LEDGER_READ_ONLY ? SQLITE_OPEN_READONLY
                                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    ledger_err_t rc = LEDGER_E_STORAGE;
    if (sqlite3_open_v2(path, &l->db, flags | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
        set_error(l, "cannot open %s: %s", path, l->db ? sqlite3_errmsg(l->db) : "out of memory");
        goto cleanup;
    }
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
    if (mode == LEDGER_READ_WRITE &&
        sqlite3_exec(l->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-16384;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        set_error(l, "%s: not a Corridor ledger: %s", path, sqlite3_errmsg(l->db));
        rc = LEDGER_E_CORRUPT;
        goto cleanup;
    }
    if (digest_register_sql(l->db) != SQLITE_OK) {
        set_error(l, "cannot register SQL functions: %s", sqlite3_errmsg(l->db));
        rc = LEDGER_E_STORAGE;
        goto cleanup;
    }
    if ((rc = migrate(l, node)) != LEDGER_OK || (rc = check_identity(l, node)) != LEDGER_OK ||
        (rc = prepare_all(l)) != LEDGER_OK || (rc = load_head(l)) != LEDGER_OK) {
        goto cleanup;
    }
    *out = l;
    return LEDGER_OK;

cleanup:
    if (err != NULL && err_size > 0) {
        snprintf(err, err_size, "%s", l->error);
    }
    ledger_close(&l);
    return rc;
}

void ledger_close(ledger_t **self_p)
{
    assert(self_p != NULL);
    ledger_t *l = *self_p;
    if (l == NULL) {
        return;
    }
    if (l->in_txn) {
        ledger_rollback(l);
    }
    for (size_t i = 0; i < STATEMENT_COUNT; i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)((char *)&l->st + statement_offset[i]);
        sqlite3_finalize(*slot);
    }
    sqlite3_close(l->db);
    free(l);
    *self_p = NULL;
}

sqlite3 *ledger_db(ledger_t *l)
{
    assert(l != NULL);
    return l->db;
}

int ledger_schema_version(const ledger_t *l)
{
    assert(l != NULL);
    return l->schema;
}

ledger_err_t ledger_read_failed(ledger_t *l, const char *what)
{
    assert(l != NULL && what != NULL);
    set_error(l, "%s: %s", what, sqlite3_errmsg(l->db));
    return LEDGER_E_STORAGE;
}

/* ---- transactions ------------------------------------------------------------------------ */

static ledger_err_t writable(ledger_t *l)
{
    if (l->mode == LEDGER_READ_ONLY) {
        return LEDGER_E_READONLY;
    }
    if (l->stopped) {
        return LEDGER_E_STOPPED;
    }
    return LEDGER_OK;
}

void ledger_set_clock(ledger_t *l, int64_t wall_ms)
{
    assert(l != NULL && wall_ms >= 0);
    l->clock_ms = wall_ms;
}

ledger_err_t ledger_begin(ledger_t *l)
{
    assert(l != NULL && !l->in_txn);
    ledger_err_t rc = writable(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (step_done(l->st.begin) != SQLITE_OK) {
        return storage_failure(l, "begin");
    }
    l->in_txn = true;
    return LEDGER_OK;
}

ledger_err_t ledger_commit(ledger_t *l)
{
    assert(l != NULL && l->in_txn);
    if (step_done(l->st.commit) != SQLITE_OK) {
        ledger_err_t rc = storage_failure(l, "commit");
        (void)load_head(l);
        return rc;
    }
    l->in_txn = false;
    l->replyable_seq = 0;
    return LEDGER_OK;
}

void ledger_rollback(ledger_t *l)
{
    assert(l != NULL);
    if (l->in_txn) {
        (void)step_done(l->st.rollback);
        l->in_txn = false;
    }
    (void)load_head(l);
}

ledger_err_t ledger_snapshot_begin(ledger_t *l)
{
    assert(l != NULL && l->mode == LEDGER_READ_ONLY && !l->in_txn);
    if (sqlite3_exec(l->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        set_error(l, "begin a read: %s", sqlite3_errmsg(l->db));
        return LEDGER_E_STORAGE;
    }
    l->in_txn = true;
    ledger_err_t rc = load_head(l); /* the first read fixes the snapshot: the head is its own */
    if (rc != LEDGER_OK) {
        ledger_snapshot_end(l);
    }
    return rc;
}

void ledger_snapshot_end(ledger_t *l)
{
    assert(l != NULL && l->mode == LEDGER_READ_ONLY);
    if (l->in_txn) {
        if (sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            (void)sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL); /* never keep it pinned */
        }
        l->in_txn = false;
    }
}

bool ledger_in_transaction(const ledger_t *l)
{
    return l->in_txn;
}

bool ledger_stopped(const ledger_t *l)
{
    return l->stopped;
}

/* ---- reads --------------------------------------------------------------------------------- */

/* A settlement row as read by find. */
typedef struct {
    int64_t id;
    settlement_t s;
    uint8_t content_hash[SETTLEMENT_HASH_BYTES];
    status_t status;
    char reason[CORRIDOR_REASON_LEN_MAX + 1];
    char hold[16];    /* held: why it waits (LEDGER_HOLD_*) */
    char at_peer[16]; /* ours: "held" (the payee said), "cancelled" (its CNCL voided it) */
    char cancel_id[CORRIDOR_UETR_LEN + 1]; /* a CancelRequest's: open, or that cancelled it */
    int64_t returned_minor;                /* a payment: the sum of its accepted returns */
} stored_t;

/* Reads columns 7.. of find/list (the descriptive fields) into s. */
static void read_details(sqlite3_stmt *stmt, int first, settlement_t *s)
{
    copy_column(s->end_to_end_id, sizeof s->end_to_end_id, stmt, first);
    copy_column(s->value_date, sizeof s->value_date, stmt, first + 1);
    copy_column(s->debtor_name, sizeof s->debtor_name, stmt, first + 2);
    copy_column(s->debtor_account, sizeof s->debtor_account, stmt, first + 3);
    copy_column(s->creditor_name, sizeof s->creditor_name, stmt, first + 4);
    copy_column(s->creditor_account, sizeof s->creditor_account, stmt, first + 5);
    copy_column(s->remittance, sizeof s->remittance, stmt, first + 6);
    s->created_unix_ms = sqlite3_column_int64(stmt, first + 7);
    s->expires_unix_ms = sqlite3_column_int64(stmt, first + 8);
}

/* Reads the return columns from `first` into s; returns the payment's accepted returns. */
static int64_t read_return(sqlite3_stmt *stmt, int first, settlement_t *s)
{
    copy_column(s->original_uetr, sizeof s->original_uetr, stmt, first);
    copy_column(s->return_reason, sizeof s->return_reason, stmt, first + 1);
    if (sqlite3_column_bytes(stmt, first + 2) == (int)sizeof s->original_hash) {
        memcpy(s->original_hash, sqlite3_column_blob(stmt, first + 2), sizeof s->original_hash);
    }
    return sqlite3_column_int64(stmt, first + 3);
}

/* Reads the FX columns from `first` into s (nothing but FX_LEG_* is a leg). */
static void read_fx(sqlite3_stmt *stmt, int first, settlement_t *s)
{
    int leg = sqlite3_column_int(stmt, first + 1);
    s->fx_leg = fx_leg_of_column(leg);
    copy_column(s->fx_id, sizeof s->fx_id, stmt, first);
}

/* LEDGER_OK and *found = true/false, or a storage error. */
static ledger_err_t find_stored(ledger_t *l, const char *peer, const char *uetr, stored_t *out,
                                bool *found)
{
    sqlite3_stmt *stmt = l->st.find;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, uetr);
    int step = sqlite3_step(stmt);
    *found = step == SQLITE_ROW;
    if (*found) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(stmt, 0);
        snprintf(out->s.peer, sizeof out->s.peer, "%s", peer);
        snprintf(out->s.uetr, sizeof out->s.uetr, "%s", uetr);
        out->s.direction =
            sqlite3_column_int(stmt, 1) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT;
        out->s.amount_minor = sqlite3_column_int64(stmt, 2);
        copy_column(out->s.currency, sizeof out->s.currency, stmt, 3);
        if (sqlite3_column_bytes(stmt, 4) == SETTLEMENT_HASH_BYTES) {
            memcpy(out->content_hash, sqlite3_column_blob(stmt, 4), SETTLEMENT_HASH_BYTES);
        }
        int status = sqlite3_column_int(stmt, 5);
        out->status =
            status >= STATUS_PENDING && status <= STATUS_MAX ? (status_t)status : STATUS_PENDING;
        copy_column(out->reason, sizeof out->reason, stmt, 6);
        read_details(stmt, 7, &out->s);
        copy_column(out->hold, sizeof out->hold, stmt, 16);
        copy_column(out->at_peer, sizeof out->at_peer, stmt, 17);
        copy_column(out->cancel_id, sizeof out->cancel_id, stmt, 18);
        out->returned_minor = read_return(stmt, 19, &out->s);
        read_fx(stmt, 23, &out->s);
    }
    finish(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return l->in_txn ? storage_failure(l, "find settlement") : LEDGER_E_STORAGE;
    }
    return LEDGER_OK;
}

ledger_err_t ledger_position(ledger_t *l, const char *peer, const char *currency,
                             int64_t *net_minor, int64_t *pending_minor)
{
    assert(l != NULL && peer != NULL && currency != NULL && net_minor != NULL &&
           pending_minor != NULL);
    sqlite3_stmt *stmt = l->st.position;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, currency);
    int step = sqlite3_step(stmt);
    *net_minor = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    *pending_minor = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 1) : 0;
    finish(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        set_error(l, "read position: %s", sqlite3_errmsg(l->db));
        return LEDGER_E_STORAGE;
    }
    return LEDGER_OK;
}

/* Whether the payer's cancellation rejected the settlement: at the payee, it declined the
 * payment for the request it keeps the id of; at the payer, the payee's CNCL voided it
 * (at_peer "cancelled": an RJCT that came first while a request was open is no cancellation). */
static bool cancelled_by_payer(const settlement_t *s, status_t status, const char *cancel_id,
                               const char *at_peer)
{
    return status == STATUS_REJECTED &&
           (s->direction == DIRECTION_IN ? cancel_id[0] != '\0'
                                         : strcmp(at_peer, "cancelled") == 0);
}

static void fill_outcome(ledger_t *l, const stored_t *st, bool repeated, ledger_outcome_t *o)
{
    memset(o, 0, sizeof *o);
    o->status = st->status;
    snprintf(o->reason, sizeof o->reason, "%s", st->reason);
    o->repeated = repeated;
    memcpy(o->hold, st->hold, sizeof o->hold);
    memcpy(o->at_peer, st->at_peer, sizeof o->at_peer);
    memcpy(o->cancel_id, st->cancel_id, sizeof o->cancel_id);
    o->cancelled = cancelled_by_payer(&st->s, st->status, st->cancel_id, st->at_peer);
    o->returned_minor = st->returned_minor;
    int64_t pending = 0;
    if (ledger_position(l, st->s.peer, st->s.currency, &o->position_minor, &pending) != LEDGER_OK) {
        o->position_minor = 0;
    }
}

/* A settlement that must exist: LEDGER_E_NOT_FOUND, with a message, if it does not. */
static ledger_err_t find_required(ledger_t *l, const char *peer, const char *uetr, stored_t *st)
{
    bool found = false;
    ledger_err_t rc = find_stored(l, peer, uetr, st, &found);
    if (rc == LEDGER_OK && !found) {
        set_error(l, "no settlement %s with %s", uetr, peer);
        rc = LEDGER_E_NOT_FOUND;
    }
    return rc;
}

ledger_err_t ledger_find(ledger_t *l, const char *peer, const char *uetr, settlement_t *s,
                         ledger_outcome_t *outcome)
{
    assert(l != NULL && peer != NULL && uetr != NULL);
    stored_t st;
    bool found = false;
    ledger_err_t rc = find_stored(l, peer, uetr, &st, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (!found) {
        return LEDGER_E_NOT_FOUND;
    }
    if (outcome != NULL && !settlement_is_return(&st.s) && st.status == STATUS_SETTLED) {
        int64_t pending = 0; /* its returns go the other way */
        rc = ledger_returns_of(l, peer, uetr,
                               st.s.direction == DIRECTION_OUT ? DIRECTION_IN : DIRECTION_OUT,
                               &st.returned_minor, &pending);
        if (rc != LEDGER_OK) {
            return rc;
        }
    }
    if (s != NULL) {
        *s = st.s;
    }
    if (outcome != NULL) {
        fill_outcome(l, &st, true, outcome);
    }
    return LEDGER_OK;
}

ledger_err_t ledger_positions(ledger_t *l, void (*fn)(const ledger_position_t *p, void *arg),
                              void *arg)
{
    assert(l != NULL && fn != NULL);
    sqlite3_stmt *stmt = l->st.positions;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ledger_position_t p;
        copy_column(p.peer, sizeof p.peer, stmt, 0);
        copy_column(p.currency, sizeof p.currency, stmt, 1);
        p.net_minor = sqlite3_column_int64(stmt, 2);
        p.pending_minor = sqlite3_column_int64(stmt, 3);
        fn(&p, arg);
    }
    finish(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t ledger_counts(ledger_t *l, ledger_counts_t *counts)
{
    assert(l != NULL && counts != NULL);
    memset(counts, 0, sizeof *counts);
    sqlite3_stmt *stmt = l->st.counts;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        uint64_t n = (uint64_t)sqlite3_column_int64(stmt, 2);
        int kind = sqlite3_column_int(stmt, 1); /* 1 a return, 2 and 4 the legs of a trade */
        bool is_return = kind == 1;
        if (kind == 2 * FX_LEG_PROPOSER_PAYS) { /* a trade counts once, by its first leg */
            int status = sqlite3_column_int(stmt, 0);
            if (status >= STATUS_PENDING && status <= STATUS_MAX) {
                counts->fx[status] += n;
            }
            continue;
        }
        if (kind != 0 && !is_return) {
            continue;
        }
        switch (sqlite3_column_int(stmt, 0)) {
        case STATUS_PENDING:
            *(is_return ? &counts->returns_pending : &counts->pending) = n;
            break;
        case STATUS_SETTLED:
            *(is_return ? &counts->returns_accepted : &counts->settled) = n;
            break;
        case STATUS_REJECTED:
            *(is_return ? &counts->returns_rejected : &counts->rejected) = n;
            break;
        case STATUS_RETURNED:
            counts->returned = n;
            break;
        case STATUS_HELD:
            counts->held = n;
            break;
        default:
            break;
        }
    }
    finish(stmt);
    if (step != SQLITE_DONE) {
        return LEDGER_E_STORAGE;
    }
    stmt = l->st.fully_returned;
    step = sqlite3_step(stmt);
    uint64_t whole = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(stmt, 0) : 0;
    finish(stmt);
    if (step != SQLITE_ROW || whole > counts->settled) {
        return LEDGER_E_STORAGE;
    }
    counts->settled -= whole; /* shown `returned` (3.9) */
    counts->returned += whole;
    return LEDGER_OK;
}

/* Calls fn for each row of `stmt`, a list or list_returns. */
static ledger_err_t
list_rows(sqlite3_stmt *stmt,
          void (*fn)(const settlement_t *s, const ledger_outcome_t *o, void *arg), void *arg)
{
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        settlement_t s;
        ledger_outcome_t o;
        memset(&s, 0, sizeof s);
        memset(&o, 0, sizeof o);
        copy_column(s.peer, sizeof s.peer, stmt, 0);
        copy_column(s.uetr, sizeof s.uetr, stmt, 1);
        s.direction = sqlite3_column_int(stmt, 2) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT;
        s.amount_minor = sqlite3_column_int64(stmt, 3);
        copy_column(s.currency, sizeof s.currency, stmt, 4);
        int status = sqlite3_column_int(stmt, 5);
        o.status =
            status >= STATUS_PENDING && status <= STATUS_MAX ? (status_t)status : STATUS_PENDING;
        copy_column(o.reason, sizeof o.reason, stmt, 6);
        read_details(stmt, 7, &s);
        copy_column(o.hold, sizeof o.hold, stmt, 16);
        copy_column(o.at_peer, sizeof o.at_peer, stmt, 17);
        copy_column(o.cancel_id, sizeof o.cancel_id, stmt, 18);
        o.returned_minor = read_return(stmt, 19, &s);
        read_fx(stmt, 23, &s);
        o.cancelled = cancelled_by_payer(&s, o.status, o.cancel_id, o.at_peer);
        fn(&s, &o, arg);
    }
    finish(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t ledger_settlements(
    ledger_t *l, void (*fn)(const settlement_t *s, const ledger_outcome_t *o, void *arg), void *arg)
{
    assert(l != NULL && fn != NULL);
    return list_rows(l->st.list, fn, arg);
}

ledger_err_t ledger_returns(ledger_t *l,
                            void (*fn)(const settlement_t *s, const ledger_outcome_t *o, void *arg),
                            void *arg)
{
    assert(l != NULL && fn != NULL);
    return list_rows(l->st.list_returns, fn, arg);
}

ledger_err_t ledger_fx_trades(ledger_t *l,
                              void (*fn)(const settlement_t legs[2], const ledger_outcome_t *o,
                                         void *arg),
                              void *arg)
{
    assert(l != NULL && fn != NULL);
    sqlite3_stmt *stmt = l->st.list_fx;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        settlement_t legs[2];
        ledger_outcome_t o;
        memset(legs, 0, sizeof legs);
        memset(&o, 0, sizeof o);
        settlement_t *a = &legs[0], *b = &legs[1];
        copy_column(a->peer, sizeof a->peer, stmt, 0);
        copy_column(a->uetr, sizeof a->uetr, stmt, 1);
        a->direction = sqlite3_column_int(stmt, 2) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT;
        a->amount_minor = sqlite3_column_int64(stmt, 3);
        copy_column(a->currency, sizeof a->currency, stmt, 4);
        int status = sqlite3_column_int(stmt, 5);
        o.status =
            status >= STATUS_PENDING && status <= STATUS_MAX ? (status_t)status : STATUS_PENDING;
        copy_column(o.reason, sizeof o.reason, stmt, 6);
        copy_column(a->fx_id, sizeof a->fx_id, stmt, 7);
        a->expires_unix_ms = sqlite3_column_int64(stmt, 8);
        copy_column(o.hold, sizeof o.hold, stmt, 9);
        copy_column(o.at_peer, sizeof o.at_peer, stmt, 10);
        a->fx_leg = FX_LEG_PROPOSER_PAYS;
        *b = *a;
        b->fx_leg = FX_LEG_ACCEPTOR_PAYS;
        copy_column(b->uetr, sizeof b->uetr, stmt, 11);
        b->amount_minor = sqlite3_column_int64(stmt, 12);
        copy_column(b->currency, sizeof b->currency, stmt, 13);
        fn(legs, &o, arg);
    }
    finish(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t ledger_replies_from(ledger_t *l, int64_t *seq)
{
    char value[32] = "";
    *seq = 0;
    sqlite3_stmt *stmt = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        version = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    if (version < 4) {
        return LEDGER_OK; /* before schema 4: no row carries a reply */
    }
    ledger_err_t rc = read_meta(l, "replies_from", value, sizeof value);
    if (rc != LEDGER_OK) {
        return rc;
    }
    char *end = NULL;
    long long v = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || v < 1) {
        set_error(l, "meta replies_from is not a row number: '%s'", value);
        return LEDGER_E_CORRUPT;
    }
    /* meta is outside the chain: never later than the first row that carries a reply, nor
     * than the journal's end (an edited value must not switch the check off) */
    if (sqlite3_prepare_v2(l->db,
                           "SELECT (SELECT min(seq) FROM journal WHERE reply IS NOT NULL),"
                           " (SELECT coalesce(max(seq), 0) + 1 FROM journal)",
                           -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        if (sqlite3_column_type(stmt, 0) != SQLITE_NULL && sqlite3_column_int64(stmt, 0) < v) {
            v = sqlite3_column_int64(stmt, 0);
        }
        if (sqlite3_column_int64(stmt, 1) < v) {
            v = sqlite3_column_int64(stmt, 1);
        }
    }
    sqlite3_finalize(stmt);
    *seq = v;
    return LEDGER_OK;
}

ledger_err_t ledger_head(ledger_t *l, uint8_t head[static LEDGER_HASH_BYTES], uint64_t *rows)
{
    assert(l != NULL && head != NULL);
    memcpy(head, l->head, LEDGER_HASH_BYTES);
    if (rows != NULL) {
        *rows = (uint64_t)l->last_seq;
    }
    return LEDGER_OK;
}

/* ---- writes ------------------------------------------------------------------------------- */

/* Creates the channel row of a peer if it has none (its first message or entry). The hot
 * paths update the row first and come here only when the update found nothing. */
static ledger_err_t ensure_channel(ledger_t *l, const char *peer)
{
    sqlite3_stmt *ensure = l->st.channel_ensure;
    bind_text(ensure, 1, peer);
    return step_done(ensure) == SQLITE_OK ? LEDGER_OK : storage_failure(l, "create channel");
}

/* Creates a currency's peer and clearing accounts if missing (their first movement). */
static ledger_err_t ensure_accounts(ledger_t *l, const char *peer, const char *currency)
{
    sqlite3_stmt *stmt = l->st.ensure_account;
    static const char *const kinds[] = {"peer", "clearing"};
    for (int i = 0; i < 2; i++) {
        bind_text(stmt, 1, kinds[i]);
        bind_text(stmt, 2, i == 0 ? peer : "");
        bind_text(stmt, 3, currency);
        if (step_done(stmt) != SQLITE_OK) {
            return storage_failure(l, "create account");
        }
    }
    return LEDGER_OK;
}

/* What update_row may create when its UPDATE finds no row. */
typedef enum {
    ROW_MUST_EXIST, /* nothing: a missing row stops the ledger */
    ROW_CHANNEL,    /* the peer's channel row */
    ROW_ACCOUNTS,   /* the peer's and the clearing account of a currency */
} row_create_t;

/* Runs the bound UPDATE `stmt`, which must change one row. The hot paths update first and
 * create the row only when the update finds none (its first use), then run the update again
 * with the same bindings. */
static ledger_err_t update_row(ledger_t *l, sqlite3_stmt *stmt, const char *what,
                               row_create_t create, const char *peer, const char *currency)
{
    ledger_err_t rc = LEDGER_OK;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE && sqlite3_changes(l->db) == 0 && create != ROW_MUST_EXIST) {
        sqlite3_reset(stmt); /* keeps the bindings */
        rc = create == ROW_CHANNEL ? ensure_channel(l, peer) : ensure_accounts(l, peer, currency);
        step = rc == LEDGER_OK ? sqlite3_step(stmt) : SQLITE_DONE;
    }
    bool found = step == SQLITE_DONE && sqlite3_changes(l->db) == 1;
    finish(stmt);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (step != SQLITE_DONE) {
        return storage_failure(l, what);
    }
    return found ? LEDGER_OK : row_missing(l, what);
}

static const char *const account_kinds[] = {"peer", "clearing"};

/* The peer account and the clearing account of one currency take opposite sides: the peer
 * side moves by e, the clearing side by -e. */
static void bind_account(sqlite3_stmt *stmt, int side, const char *peer, const char *currency)
{
    bind_text(stmt, 1, account_kinds[side]);
    bind_text(stmt, 2, side == 0 ? peer : "");
    bind_text(stmt, 3, currency);
}

/* Checks, before anything is written, that applying e leaves every balance in int64. */
static ledger_err_t check_effect(ledger_t *l, const char *peer, const char *currency,
                                 ledger_effect_t e)
{
    sqlite3_stmt *stmt = l->st.account;
    for (int side = 0; side < 2; side++) {
        int64_t sign = side == 0 ? 1 : -1;
        bind_account(stmt, side, peer, currency);
        int step = sqlite3_step(stmt);
        int64_t posted = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
        int64_t pending = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 1) : 0;
        finish(stmt);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            return storage_failure(l, "read account");
        }
        int64_t ignored;
        if (__builtin_add_overflow(posted, sign * e.posted, &ignored) ||
            __builtin_add_overflow(pending, sign * e.pending, &ignored)) {
            set_error(l, "%s %s balance would leave the int64 range", peer, currency);
            return LEDGER_E_OVERFLOW;
        }
    }
    return LEDGER_OK;
}

static bool effect_moves(ledger_effect_t e)
{
    return e.pending != 0 || e.posted != 0;
}

/* Applies a row's effect: e on the peer account, -e on the clearing account (both created
 * by the first movement in their currency). */
static ledger_err_t move_amount(ledger_t *l, const char *peer, const char *currency,
                                ledger_effect_t e)
{
    sqlite3_stmt *stmt = l->st.move;
    ledger_err_t rc = LEDGER_OK;
    for (int side = 0; rc == LEDGER_OK && side < 2; side++) {
        int64_t sign = side == 0 ? 1 : -1;
        bind_account(stmt, side, peer, currency);
        sqlite3_bind_int64(stmt, 4, sign * e.pending);
        sqlite3_bind_int64(stmt, 5, sign * e.posted);
        rc = update_row(l, stmt, "update account", ROW_ACCOUNTS, peer, currency);
    }
    return rc;
}

/* Appends one journal row for settlement `st` and applies its effect. */
static ledger_err_t append_row(ledger_t *l, const stored_t *st, entry_kind_t kind,
                               const char *reason, const uint8_t *evidence, size_t evidence_len)
{
    ledger_row_t row = {
        .seq = l->last_seq + 1,
        .kind = kind,
        .peer = st->s.peer,
        .uetr = st->s.uetr,
        .currency = st->s.currency,
        .amount_minor = settlement_row_amount(&st->s), /* an acceptor's leg: negative */
        .reason = reason != NULL ? reason : "",
        .content_hash = st->content_hash,
        .evidence = evidence,
        .evidence_len = evidence_len,
        .created_unix_ms = l->clock_ms,
    };
    uint8_t hash[LEDGER_HASH_BYTES];
    ledger_row_hash(l->head, &row, hash);
    sqlite3_stmt *stmt = l->st.insert_journal;
    sqlite3_bind_int64(stmt, 1, row.seq);
    sqlite3_bind_int64(stmt, 2, st->id);
    sqlite3_bind_int(stmt, 3, (int)kind);
    bind_text(stmt, 4, row.peer);
    bind_text(stmt, 5, row.uetr);
    bind_text(stmt, 6, row.currency);
    sqlite3_bind_int64(stmt, 7, row.amount_minor);
    bind_text(stmt, 8, row.reason);
    sqlite3_bind_blob(stmt, 9, st->content_hash, SETTLEMENT_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 10, evidence != NULL ? (const void *)evidence : "", (int)evidence_len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 11, row.created_unix_ms);
    sqlite3_bind_blob(stmt, 12, hash, sizeof hash, SQLITE_STATIC);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "append journal row");
    }
    ledger_effect_t effect = ledger_row_effect(kind, st->s.direction, row.amount_minor);
    if (effect_moves(effect)) {
        ledger_err_t rc = move_amount(l, st->s.peer, st->s.currency, effect);
        if (rc != LEDGER_OK) {
            return rc;
        }
    }
    bool replyable = kind == ENTRY_IN_BOOKED || kind == ENTRY_IN_REFUSED || kind == ENTRY_HELD ||
                     kind == ENTRY_DECLINED || kind == ENTRY_CANCEL_REFUSED;
    l->replyable_seq = replyable ? row.seq : 0;
    if (replyable) {
        memcpy(l->replyable_peer, st->s.peer, sizeof l->replyable_peer);
        memcpy(l->replyable_uetr, st->s.uetr, sizeof l->replyable_uetr);
    }
    memcpy(l->before_last, l->head, sizeof l->head);
    l->last_seq = row.seq;
    memcpy(l->head, hash, sizeof hash);
    return LEDGER_OK;
}

/* Makes our reply part of the last row (see ledger_set_reply): its hash is computed again
 * over the row and the reply, from the head before it. */
static ledger_err_t attach_reply(ledger_t *l, const uint8_t *reply, size_t reply_len)
{
    sqlite3_stmt *read = l->st.row_for_reply;
    sqlite3_bind_int64(read, 1, l->replyable_seq);
    if (sqlite3_step(read) != SQLITE_ROW ||
        sqlite3_column_bytes(read, 6) != SETTLEMENT_HASH_BYTES) {
        finish(read);
        return row_missing(l, "journal row for a reply");
    }
    ledger_row_t row = {
        .seq = l->replyable_seq,
        .kind = (entry_kind_t)sqlite3_column_int(read, 0),
        .peer = (const char *)sqlite3_column_text(read, 1),
        .uetr = (const char *)sqlite3_column_text(read, 2),
        .currency = (const char *)sqlite3_column_text(read, 3),
        .amount_minor = sqlite3_column_int64(read, 4),
        .reason = (const char *)sqlite3_column_text(read, 5),
        .content_hash = sqlite3_column_blob(read, 6),
        .evidence = sqlite3_column_blob(read, 7),
        .evidence_len = (size_t)sqlite3_column_bytes(read, 7),
        .created_unix_ms = sqlite3_column_int64(read, 8),
        .reply = reply,
        .reply_len = reply_len,
    };
    uint8_t hash[LEDGER_HASH_BYTES];
    ledger_row_hash(l->before_last, &row, hash);
    finish(read);
    sqlite3_stmt *write = l->st.set_row_reply;
    sqlite3_bind_int64(write, 1, l->replyable_seq);
    sqlite3_bind_blob(write, 2, reply, (int)reply_len, SQLITE_STATIC);
    sqlite3_bind_blob(write, 3, hash, sizeof hash, SQLITE_STATIC);
    if (step_done(write) != SQLITE_OK) {
        return storage_failure(l, "attach reply");
    }
    memcpy(l->head, hash, sizeof hash);
    l->replyable_seq = 0;
    return LEDGER_OK;
}

/* The canonical entry hash of a payment, of a return when original_uetr is not empty, or of an
 * FX leg when fx_leg is one, in a status as the JSON names it (see digest.h). `direction` is the
 * way the message that opened it went; the leg an acceptor pays goes the other way. */
static void entry_hash(const ledger_t *l, const char *peer, direction_t direction, const char *uetr,
                       const char *original_uetr, const char *return_reason, const char *fx_id,
                       fx_leg_t fx_leg, int64_t amount, const char *currency, const char *status,
                       const char *reason, uint8_t out[static DIGEST_BYTES])
{
    bool we_pay = (direction == DIRECTION_OUT) != fx_leg_against(fx_leg);
    const char *payer = we_pay ? l->node : peer, *payee = we_pay ? peer : l->node;
    if (fx_leg == FX_LEG_SETOFF) {
        digest_setoff_leg_entry(payer, payee, uetr, amount, currency, status, reason, out);
    } else if (fx_leg != FX_LEG_NONE) {
        digest_fx_leg_entry(payer, payee, uetr, fx_id, amount, currency, status, reason, out);
    } else if (original_uetr[0] != '\0') {
        digest_return_entry(payer, payee, uetr, original_uetr, amount, currency, status, reason,
                            return_reason, out);
    } else {
        digest_entry(payer, payee, uetr, amount, currency, status, reason, out);
    }
}

/* The canonical entry hash of a settlement or return in a given status. */
static void canon_hash(const ledger_t *l, const settlement_t *s, status_t status,
                       const char *reason, uint8_t out[static DIGEST_BYTES])
{
    entry_hash(l, s->peer, s->direction, s->uetr, s->original_uetr, s->return_reason, s->fx_id,
               s->fx_leg, s->amount_minor, s->currency, status_name(status_canonical(status)),
               reason != NULL ? reason : "", out);
}

/* Moves the channel digest from one entry hash to another (old NULL: a new entry). */
static ledger_err_t update_digest(ledger_t *l, const char *peer, const uint8_t *old_hash,
                                  const uint8_t *new_hash)
{
    sqlite3_stmt *stmt = l->st.digest_update;
    bind_text(stmt, 1, peer);
    if (old_hash != NULL) {
        sqlite3_bind_blob(stmt, 2, old_hash, DIGEST_BYTES, SQLITE_STATIC);
    }
    sqlite3_bind_blob(stmt, 3, new_hash, DIGEST_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, old_hash == NULL ? 1 : 0);
    /* a new entry may be the first with this peer; a changed one has its channel already */
    return update_row(l, stmt, "update channel digest",
                      old_hash == NULL ? ROW_CHANNEL : ROW_MUST_EXIST, peer, NULL);
}

/* Whether an entry in `status` belongs to a cycle (PROTOCOL.md 3.11.1): it is final. */
static bool status_final(status_t status)
{
    return status == STATUS_SETTLED || status == STATUS_REJECTED || status == STATUS_RETURNED;
}

/* What one final entry adds to its currency's figures: count 1, its hash, and its amount as
 * paid or received when settled. Wide, so that sums are checked once. */
typedef struct {
    __int128 paid, received, count;
    uint8_t digest[DIGEST_BYTES];
} running_t;

static void running_add(running_t *r, direction_t money, status_t status, int64_t amount,
                        const uint8_t hash[static DIGEST_BYTES], int sign)
{
    if (!status_final(status)) {
        return;
    }
    r->count += sign;
    (sign > 0 ? digest_add : digest_sub)(r->digest, hash);
    if (status == STATUS_SETTLED) {
        *(money == DIRECTION_OUT ? &r->paid : &r->received) += sign * (__int128)amount;
    }
}

/* Moves the channel's running cycle figures from one status of a settlement to another (old
 * NULL hash: a new entry), in the transaction that changes it: nothing is read when neither is
 * final. A sum that leaves int64 marks the currency (`overflow`): its cycle cannot be stated,
 * and the booking itself goes on. */
static ledger_err_t running_move(ledger_t *l, const settlement_t *s, status_t old_status,
                                 const uint8_t *old_hash, status_t new_status,
                                 const uint8_t new_hash[static DIGEST_BYTES])
{
    bool was = old_hash != NULL && status_final(old_status), is = status_final(new_status);
    if (!was && !is) {
        return LEDGER_OK;
    }
    running_t r = {0};
    bool overflow = false;
    sqlite3_stmt *get = l->st.running_get;
    bind_text(get, 1, s->peer);
    bind_text(get, 2, s->currency);
    int step = sqlite3_step(get);
    if (step == SQLITE_ROW && sqlite3_column_bytes(get, 3) == DIGEST_BYTES) {
        r.paid = sqlite3_column_int64(get, 0);
        r.received = sqlite3_column_int64(get, 1);
        r.count = sqlite3_column_int64(get, 2);
        memcpy(r.digest, sqlite3_column_blob(get, 3), DIGEST_BYTES);
        overflow = sqlite3_column_int(get, 4) != 0;
    }
    finish(get);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return storage_failure(l, "read the running cycle");
    }
    direction_t money = settlement_money_direction(s);
    if (was) {
        running_add(&r, money, old_status, s->amount_minor, old_hash, -1);
    }
    running_add(&r, money, new_status, s->amount_minor, new_hash, 1);
    overflow = overflow || r.paid > INT64_MAX || r.received > INT64_MAX || r.paid < INT64_MIN ||
               r.received < INT64_MIN || r.count < INT64_MIN || r.count > INT64_MAX;
    sqlite3_stmt *put = l->st.running_put;
    bind_text(put, 1, s->peer);
    bind_text(put, 2, s->currency);
    sqlite3_bind_int64(put, 3, overflow ? 0 : (int64_t)r.paid);
    sqlite3_bind_int64(put, 4, overflow ? 0 : (int64_t)r.received);
    sqlite3_bind_int64(put, 5, overflow ? 0 : (int64_t)r.count);
    sqlite3_bind_blob(put, 6, r.digest, DIGEST_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(put, 7, overflow ? 1 : 0);
    return step_done(put) == SQLITE_OK ? LEDGER_OK : storage_failure(l, "move the running cycle");
}

/* Whether a settlement final now was made final within the latest cycle's cut (closing, closed
 * or disputed: its figures are taken): a later change of its status (a repair's) is then
 * nobody's cycle figure. Read only for a
 * change of a final status, which is rare. */
static ledger_err_t final_in_closed_cycle(ledger_t *l, const stored_t *st, bool *closed)
{
    *closed = false;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT s.decided_seq, c.own_sent, c.peer_sent FROM settlements s,"
                           " (SELECT own_sent, peer_sent FROM cycles WHERE peer = ?1"
                           " ORDER BY cycle DESC LIMIT 1) c WHERE s.id = ?2",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return storage_failure(l, "read the last closed cycle");
    }
    bind_text(stmt, 1, st->s.peer);
    sqlite3_bind_int64(stmt, 2, st->id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        /* decided by the payee: our message for an incoming one, the peer's for ours (a set-off
         * leg: by its relay's sender) */
        int64_t bound = sqlite3_column_int64(
            stmt, settlement_decided_by_us(st->s.fx_leg, st->s.direction) ? 1 : 2);
        *closed =
            sqlite3_column_type(stmt, 0) == SQLITE_NULL || sqlite3_column_int64(stmt, 0) <= bound;
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE
               ? LEDGER_OK
               : storage_failure(l, "read the last closed cycle");
}

/* The message of `sequence` decided (or returned) the settlement: ours when it is incoming,
 * the peer's when it is ours (a set-off leg: settlement_decided_by_us). */
static ledger_err_t set_status(ledger_t *l, stored_t *st, status_t status, const char *reason,
                               uint64_t sequence)
{
    uint8_t old_hash[DIGEST_BYTES], new_hash[DIGEST_BYTES];
    canon_hash(l, &st->s, st->status, st->reason, old_hash);
    canon_hash(l, &st->s, status, reason, new_hash);
    bool closed = false; /* final in a closed cycle: the cycle keeps it as it was (3.11.1) */
    ledger_err_t rc = status_final(st->status) ? final_in_closed_cycle(l, st, &closed) : LEDGER_OK;
    if (rc == LEDGER_OK && !closed) { /* before the update: it reads the old decided_seq */
        rc = running_move(l, &st->s, st->status, old_hash, status, new_hash);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.set_status;
    sqlite3_bind_int64(stmt, 1, st->id);
    sqlite3_bind_int(stmt, 2, (int)status);
    bind_text(stmt, 3, reason != NULL ? reason : "");
    sqlite3_bind_blob(stmt, 4, new_hash, DIGEST_BYTES, SQLITE_STATIC);
    bool by_us = settlement_decided_by_us(st->s.fx_leg, st->s.direction);
    sqlite3_bind_int64(stmt, 5, (int64_t)sequence);
    sqlite3_bind_int64(stmt, 6, by_us ? (int64_t)sequence : 0);
    sqlite3_bind_int64(stmt, 7, by_us ? 0 : (int64_t)sequence);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "update settlement status");
    }
    if ((rc = update_digest(l, st->s.peer, old_hash, new_hash)) != LEDGER_OK) {
        return rc;
    }
    st->status = status;
    snprintf(st->reason, sizeof st->reason, "%s", reason != NULL ? reason : "");
    return LEDGER_OK;
}

/* Inserts a new settlement row with its first status, opened by the payer's message of
 * `sequence`; fills st. */
static ledger_err_t insert_settlement(ledger_t *l, const settlement_t *s,
                                      const uint8_t *content_hash, status_t status,
                                      const char *reason, const char *hold, uint64_t sequence,
                                      stored_t *st)
{
    uint8_t entry_hash[DIGEST_BYTES];
    canon_hash(l, s, status, reason, entry_hash);
    sqlite3_stmt *stmt = l->st.insert_settlement;
    bind_text(stmt, 1, s->peer);
    bind_text(stmt, 2, s->uetr);
    sqlite3_bind_int(stmt, 3, (int)s->direction);
    sqlite3_bind_int64(stmt, 4, s->amount_minor);
    bind_text(stmt, 5, s->currency);
    sqlite3_bind_blob(stmt, 6, content_hash, SETTLEMENT_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, (int)status);
    bind_text(stmt, 8, reason != NULL ? reason : "");
    bind_text(stmt, 9, s->end_to_end_id);
    bind_text(stmt, 10, s->value_date);
    bind_text(stmt, 11, s->debtor_name);
    bind_text(stmt, 12, s->debtor_account);
    bind_text(stmt, 13, s->creditor_name);
    bind_text(stmt, 14, s->creditor_account);
    bind_text(stmt, 15, s->remittance);
    sqlite3_bind_int64(stmt, 16, s->created_unix_ms);
    sqlite3_bind_blob(stmt, 17, entry_hash, DIGEST_BYTES, SQLITE_STATIC);
    bool ours = s->direction == DIRECTION_OUT;
    sqlite3_bind_int64(stmt, 18, (int64_t)sequence);
    sqlite3_bind_int64(stmt, 19, ours ? (int64_t)sequence : 0);
    sqlite3_bind_int64(stmt, 20, ours ? 0 : (int64_t)sequence);
    sqlite3_bind_int64(stmt, 21, s->expires_unix_ms);
    bind_text(stmt, 22, hold != NULL ? hold : "");
    bind_text(stmt, 23, s->original_uetr);
    bind_text(stmt, 24, s->return_reason);
    if (settlement_is_return(s) || settlement_is_fx_leg(s)) {
        sqlite3_bind_blob(stmt, 25, s->original_hash, sizeof s->original_hash, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(stmt, 25);
    }
    bind_text(stmt, 26, s->fx_id);
    sqlite3_bind_int(stmt, 27, (int)s->fx_leg);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "insert settlement");
    }
    ledger_err_t rc = update_digest(l, s->peer, NULL, entry_hash);
    if (rc == LEDGER_OK) {
        rc = running_move(l, s, STATUS_PENDING, NULL, status, entry_hash);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    memset(st, 0, sizeof *st);
    st->id = sqlite3_last_insert_rowid(l->db);
    st->s = *s;
    memcpy(st->content_hash, content_hash, SETTLEMENT_HASH_BYTES);
    st->status = status;
    snprintf(st->reason, sizeof st->reason, "%s", reason != NULL ? reason : "");
    snprintf(st->hold, sizeof st->hold, "%s", hold != NULL ? hold : "");
    /* Accounts open with their first movement (move_amount): a refused settlement moves
     * nothing and opens none (its currency may be one this node does not keep at all). */
    return LEDGER_OK;
}

static ledger_err_t fx_find_stored(ledger_t *l, const char *peer, const char *fx_id,
                                   stored_t legs[2], bool *found);

/* Whether `id` names a net settlement (3.11.3) of the channel: ids are unique there, so that a
 * person's `review --id` names one thing. */
static ledger_err_t net_taken(ledger_t *l, const char *peer, const char *id, bool *taken)
{
    *taken = false;
    sqlite3_stmt *stmt = l->st.net_taken;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, id);
    int step = sqlite3_step(stmt);
    finish(stmt);
    *taken = step == SQLITE_ROW;
    return step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_OK
                                                     : storage_failure(l, "read net settlements");
}

/* The idempotency check shared by send and receive: LEDGER_OK with *done set when the UETR is
 * already recorded with the same content (outcome filled), CONFLICT for other content, or when
 * it is the id of a trade on the channel (ids are unique there: an answer names either). */
static ledger_err_t check_repeat(ledger_t *l, const settlement_t *s, const uint8_t *hash,
                                 bool *done, ledger_outcome_t *outcome)
{
    stored_t st;
    bool found = false;
    *done = false;
    ledger_err_t rc = find_stored(l, s->peer, s->uetr, &st, &found);
    if (rc == LEDGER_OK && !found) {
        stored_t legs[2];
        bool trade = false;
        rc = fx_find_stored(l, s->peer, s->uetr, legs, &trade);
        if (rc == LEDGER_E_CORRUPT || (rc == LEDGER_OK && trade)) {
            set_error(l, "UETR %s is the id of a trade with %s", s->uetr, s->peer);
            return LEDGER_E_CONFLICT;
        }
        bool net = false;
        if (rc == LEDGER_OK && (rc = net_taken(l, s->peer, s->uetr, &net)) == LEDGER_OK && net) {
            set_error(l, "UETR %s is the id of a net settlement with %s", s->uetr, s->peer);
            return LEDGER_E_CONFLICT;
        }
    }
    if (rc != LEDGER_OK || !found) {
        return rc;
    }
    if (sodium_memcmp(st.content_hash, hash, SETTLEMENT_HASH_BYTES) != 0) {
        set_error(l, "UETR %s already used with %s with different content", s->uetr, s->peer);
        return LEDGER_E_CONFLICT;
    }
    fill_outcome(l, &st, true, outcome);
    *done = true;
    return LEDGER_OK;
}

static ledger_err_t begin_write(ledger_t *l)
{
    assert(l != NULL);
    ledger_err_t rc = writable(l);
    if (rc == LEDGER_OK) {
        assert(l->in_txn && "ledger writes happen between ledger_begin and ledger_commit");
    }
    return rc;
}

/* The start of a write on a recorded settlement: the transaction open, the settlement found
 * (LEDGER_E_NOT_FOUND, with a message, if not). */
static ledger_err_t begin_on(ledger_t *l, const char *peer, const char *uetr, stored_t *st)
{
    ledger_err_t rc = begin_write(l);
    return rc == LEDGER_OK ? find_required(l, peer, uetr, st) : rc;
}

ledger_err_t ledger_send(ledger_t *l, const settlement_t *s, const uint8_t *evidence,
                         size_t evidence_len, uint64_t sequence, ledger_outcome_t *outcome)
{
    assert(s != NULL && outcome != NULL && s->direction == DIRECTION_OUT);
    assert(settlement_check(s) == REASON_NONE);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(s, hash);
    bool done = false;
    if ((rc = check_repeat(l, s, hash, &done, outcome)) != LEDGER_OK || done) {
        return rc;
    }
    if ((rc = check_effect(l, s->peer, s->currency,
                           ledger_row_effect(ENTRY_OUT_PENDING, DIRECTION_OUT,
                                             settlement_row_amount(s)))) != LEDGER_OK) {
        return rc;
    }
    stored_t st;
    if ((rc = insert_settlement(l, s, hash, STATUS_PENDING, NULL, NULL, sequence, &st)) !=
            LEDGER_OK ||
        (rc = append_row(l, &st, ENTRY_OUT_PENDING, NULL, evidence, evidence_len)) != LEDGER_OK) {
        return rc;
    }
    fill_outcome(l, &st, false, outcome);
    return LEDGER_OK;
}

static bool answers_settlement(const stored_t *st, const uint8_t *answers);

/* What counts against the cap we grant the peer in `currency` besides its net debt: its payments
 * to us we hold, and the legs our pending FX proposals would have it pay us (the headroom they
 * reserve, 3.10.3). *over true when the sum does not fit. */
static ledger_err_t held_sum(ledger_t *l, const char *peer, const char *currency, int64_t *sum,
                             bool *over)
{
    sqlite3_stmt *stmt = l->st.held_sum;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, currency);
    int step = sqlite3_step(stmt);
    *sum = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    /* SQLite's sum() fails on an integer overflow: more than any cap can admit */
    *over = step == SQLITE_ERROR && sqlite3_errcode(l->db) == SQLITE_ERROR;
    finish(stmt);
    if (step != SQLITE_ROW && !*over) {
        return storage_failure(l, "sum held payments");
    }
    return LEDGER_OK;
}

/* Whether `amount` more of the peer's debt to us, with what it owes and what counts besides
 * (held_sum), would exceed the cap we grant it in `currency` (or leave int64). */
static ledger_err_t over_cap(ledger_t *l, const char *peer, const char *currency, int64_t amount,
                             int64_t cap_minor, bool *over)
{
    int64_t net = 0, pending = 0, held = 0, after = 0;
    bool too_many = false;
    if (ledger_position(l, peer, currency, &net, &pending) != LEDGER_OK) {
        return storage_failure(l, "read position");
    }
    ledger_err_t rc = held_sum(l, peer, currency, &held, &too_many);
    if (rc != LEDGER_OK) {
        return rc;
    }
    *over = too_many || __builtin_add_overflow(net, held, &after) ||
            __builtin_add_overflow(after, amount, &after) || after > cap_minor;
    return LEDGER_OK;
}

ledger_err_t ledger_cap_exceeded(ledger_t *l, const char *peer, const char *currency,
                                 int64_t amount_minor, int64_t cap_minor, bool *over)
{
    assert(l != NULL && peer != NULL && currency != NULL && over != NULL);
    assert(l->mode == LEDGER_READ_WRITE); /* held_sum reads columns of the newest schema */
    return over_cap(l, peer, currency, amount_minor, cap_minor, over);
}

ledger_err_t ledger_receive(ledger_t *l, const settlement_t *s, int64_t cap_minor,
                            const char *reject_reason, const uint8_t *evidence, size_t evidence_len,
                            uint64_t sequence, ledger_outcome_t *outcome)
{
    return ledger_receive_holding(l, s, cap_minor, reject_reason, NULL, evidence, evidence_len,
                                  sequence, outcome);
}

ledger_err_t ledger_receive_holding(ledger_t *l, const settlement_t *s, int64_t cap_minor,
                                    const char *reject_reason, const char *hold,
                                    const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                                    ledger_outcome_t *outcome)
{
    assert(s != NULL && outcome != NULL && s->direction == DIRECTION_IN && cap_minor >= 0);
    assert(reject_reason != NULL || settlement_check(s) == REASON_NONE);
    assert(uetr_check(s->uetr) == VALID_OK && node_code_check(s->peer) == VALID_OK);
    assert(hold == NULL || strcmp(hold, LEDGER_HOLD_SCREENING) == 0 ||
           strcmp(hold, LEDGER_HOLD_REVIEW) == 0);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(s, hash);
    bool done = false;
    if ((rc = check_repeat(l, s, hash, &done, outcome)) != LEDGER_OK || done) {
        return rc;
    }
    const char *reason = reject_reason;
    bool over = false;
    if (reason == NULL &&
        (rc = over_cap(l, s->peer, s->currency, s->amount_minor, cap_minor, &over)) != LEDGER_OK) {
        return rc;
    }
    if (over) {
        reason = reason_code(REASON_OVER_CAP);
    }
    entry_kind_t kind = hold != NULL ? ENTRY_HELD : ENTRY_IN_BOOKED;
    if (reason == NULL) {
        rc = check_effect(l, s->peer, s->currency,
                          ledger_row_effect(kind, DIRECTION_IN, settlement_row_amount(s)));
        if (rc == LEDGER_E_OVERFLOW) {
            reason =
                reason_code(REASON_OVER_CAP); /* our books cannot hold it: refuse, as over a cap */
        } else if (rc != LEDGER_OK) {
            return rc;
        }
    }
    stored_t st;
    status_t status = reason != NULL ? STATUS_REJECTED
                      : hold != NULL ? STATUS_HELD
                                     : STATUS_SETTLED;
    if (reason != NULL) {
        kind = ENTRY_IN_REFUSED;
    }
    if ((rc = insert_settlement(l, s, hash, status, reason, reason == NULL ? hold : NULL, sequence,
                                &st)) != LEDGER_OK ||
        (rc = append_row(l, &st, kind, reason, evidence, evidence_len)) != LEDGER_OK) {
        return rc;
    }
    fill_outcome(l, &st, false, outcome);
    return LEDGER_OK;
}

ledger_err_t ledger_attach_reply(ledger_t *l, const char *peer, const char *uetr,
                                 const uint8_t *signed_msg, size_t signed_len)
{
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (l->replyable_seq != 0 && l->replyable_seq == l->last_seq && signed_len > 0 &&
        strcmp(l->replyable_peer, peer) == 0 && strcmp(l->replyable_uetr, uetr) == 0) {
        return attach_reply(l, signed_msg, signed_len);
    }
    set_error(l, "the last row is not one for %s with %s that takes a reply", uetr, peer);
    return LEDGER_E_STATE;
}

/* Sets the settlement's cancellation id ("" closes it); the message of `sequence` is ours or the
 * peer's as `ours` says. */
static ledger_err_t set_cancel(ledger_t *l, stored_t *st, const char *id, bool ours,
                               uint64_t sequence)
{
    sqlite3_stmt *stmt = l->st.set_cancel;
    sqlite3_bind_int64(stmt, 1, st->id);
    bind_text(stmt, 2, id);
    sqlite3_bind_int64(stmt, 3, ours ? (int64_t)sequence : 0);
    sqlite3_bind_int64(stmt, 4, ours ? 0 : (int64_t)sequence);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "set cancellation");
    }
    snprintf(st->cancel_id, sizeof st->cancel_id, "%s", id);
    return LEDGER_OK;
}

ledger_err_t ledger_decide_held(ledger_t *l, const char *peer, const char *uetr, const char *reason,
                                const uint8_t *evidence, size_t evidence_len,
                                const char *cancellation_id, uint64_t sequence,
                                ledger_outcome_t *outcome)
{
    assert(peer != NULL && uetr != NULL && evidence != NULL && outcome != NULL);
    bool by_peer = cancellation_id != NULL;
    assert(!by_peer || reason != NULL); /* a peer's message only cancels */
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.status != STATUS_HELD) {
        set_error(l, "settlement %s from %s is %s, not held", uetr, peer, status_name(st.status));
        return LEDGER_E_STATE;
    }
    entry_kind_t kind = reason == NULL ? ENTRY_RELEASED : ENTRY_DECLINED;
    if ((rc = check_effect(l, peer, st.s.currency,
                           ledger_row_effect(kind, DIRECTION_IN, settlement_row_amount(&st.s)))) !=
        LEDGER_OK) {
        return rc;
    }
    /* the payee decides: by our StatusReport, or by the peer's CancelRequest (its number) */
    if ((rc = set_status(l, &st, reason == NULL ? STATUS_SETTLED : STATUS_REJECTED, reason,
                         sequence)) != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.set_hold;
    sqlite3_bind_int64(stmt, 1, st.id);
    bind_text(stmt, 2, "");
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "clear hold");
    }
    st.hold[0] = '\0';
    if (by_peer && (rc = set_cancel(l, &st, cancellation_id, true, sequence)) != LEDGER_OK) {
        return rc;
    }
    if (!by_peer) { /* our answer stays with the settlement: a repair can hand it back */
        stmt = l->st.set_decided_reply;
        sqlite3_bind_int64(stmt, 1, st.id);
        sqlite3_bind_blob(stmt, 2, evidence, (int)evidence_len, SQLITE_STATIC);
        if (step_done(stmt) != SQLITE_OK) {
            return storage_failure(l, "store reply");
        }
    }
    if ((rc = append_row(l, &st, kind, reason, evidence, evidence_len)) != LEDGER_OK) {
        return rc;
    }
    fill_outcome(l, &st, false, outcome);
    return LEDGER_OK;
}

ledger_err_t ledger_decide_held_fits(ledger_t *l, const settlement_t *s, bool release)
{
    return check_effect(l, s->peer, s->currency,
                        ledger_row_effect(release ? ENTRY_RELEASED : ENTRY_DECLINED, DIRECTION_IN,
                                          settlement_row_amount(s)));
}

ledger_err_t ledger_hold_for_review(ledger_t *l, const char *peer, const char *uetr)
{
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.status != STATUS_HELD || strcmp(st.hold, LEDGER_HOLD_SCREENING) != 0) {
        set_error(l, "settlement %s from %s does not wait for screening", uetr, peer);
        return LEDGER_E_STATE;
    }
    sqlite3_stmt *stmt = l->st.set_hold;
    sqlite3_bind_int64(stmt, 1, st.id);
    bind_text(stmt, 2, LEDGER_HOLD_REVIEW);
    return step_done(stmt) == SQLITE_OK ? LEDGER_OK : storage_failure(l, "set hold");
}

ledger_err_t ledger_held(ledger_t *l, void (*fn)(const ledger_held_t *h, void *arg), void *arg)
{
    assert(l != NULL && fn != NULL);
    /* the keys first, then each record: fn may write (a transaction of the caller's) */
    sqlite3_stmt *stmt = l->st.held_list;
    size_t count = 0, room = 0;
    struct key {
        char peer[CORRIDOR_NAME_LEN_MAX + 1];
        char uetr[CORRIDOR_UETR_LEN + 1];
    } *keys = NULL;
    int step;
    ledger_err_t rc = LEDGER_OK;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (count == room) {
            size_t more = room == 0 ? 16 : room * 2;
            struct key *grown = realloc(keys, more * sizeof *keys);
            if (grown == NULL) {
                set_error(l, "out of memory listing held payments");
                rc = LEDGER_E_STORAGE;
                break;
            }
            keys = grown;
            room = more;
        }
        copy_column(keys[count].peer, sizeof keys[count].peer, stmt, 0);
        copy_column(keys[count].uetr, sizeof keys[count].uetr, stmt, 1);
        count++;
    }
    finish(stmt);
    if (rc == LEDGER_OK && step != SQLITE_DONE) {
        set_error(l, "list held payments: %s", sqlite3_errmsg(l->db));
        rc = LEDGER_E_STORAGE;
    }
    for (size_t i = 0; rc == LEDGER_OK && i < count; i++) {
        stored_t st;
        bool found = false;
        if ((rc = find_stored(l, keys[i].peer, keys[i].uetr, &st, &found)) == LEDGER_OK && found &&
            st.status == STATUS_HELD) {
            ledger_held_t h = {.s = st.s};
            memcpy(h.hold, st.hold, sizeof h.hold);
            fn(&h, arg);
        }
    }
    free(keys);
    return rc;
}

/* Notes that the payee holds our pending st (checked): a `held_at_peer` row, once. */
static ledger_err_t note_held_stored(ledger_t *l, stored_t *st, const uint8_t *evidence,
                                     size_t evidence_len, uint64_t sequence)
{
    if (strcmp(st->at_peer, "held") == 0) {
        return LEDGER_OK; /* said before */
    }
    sqlite3_stmt *stmt = l->st.set_at_peer;
    sqlite3_bind_int64(stmt, 1, st->id);
    bind_text(stmt, 2, "held");
    sqlite3_bind_int64(stmt, 3, (int64_t)sequence);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "set at_peer");
    }
    snprintf(st->at_peer, sizeof st->at_peer, "held");
    return append_row(l, st, ENTRY_HELD_AT_PEER, NULL, evidence, evidence_len);
}

ledger_err_t ledger_note_held_at_peer(ledger_t *l, const char *peer, const char *uetr,
                                      const uint8_t *answers, const uint8_t *evidence,
                                      size_t evidence_len, uint64_t sequence)
{
    assert(peer != NULL && uetr != NULL && evidence != NULL);
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.s.direction != DIRECTION_OUT || st.status != STATUS_PENDING ||
        settlement_is_return(&st.s) || settlement_is_fx_leg(&st.s)) {
        /* a return is never held (3.9.5); a leg is its trade's to answer (3.10.3) */
        set_error(l, "%s with %s is not our pending payment (%s)", uetr, peer,
                  settlement_is_return(&st.s)   ? "a return"
                  : settlement_is_fx_leg(&st.s) ? "a leg of a trade"
                                                : status_name(st.status));
        return LEDGER_E_STATE;
    }
    if (answers != NULL && !answers_settlement(&st, answers)) {
        set_error(l, "the report names another Settlement than ours for %s", uetr);
        return LEDGER_E_CONFLICT;
    }
    return note_held_stored(l, &st, evidence, evidence_len, sequence);
}

ledger_err_t ledger_cancel_request(ledger_t *l, const char *peer, const char *uetr,
                                   const char *cancellation_id, const char *reason,
                                   const uint8_t *evidence, size_t evidence_len, uint64_t sequence)
{
    assert(cancellation_id != NULL && reason != NULL && evidence != NULL);
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.s.direction != DIRECTION_OUT || st.status != STATUS_PENDING || st.cancel_id[0] != '\0') {
        set_error(l, "settlement %s with %s is not our pending one without a cancellation", uetr,
                  peer);
        return LEDGER_E_STATE;
    }
    if ((rc = set_cancel(l, &st, cancellation_id, true, sequence)) != LEDGER_OK) {
        return rc;
    }
    return append_row(l, &st, ENTRY_CANCEL_REQUESTED, reason, evidence, evidence_len);
}

ledger_err_t ledger_cancel_answered(ledger_t *l, const char *peer, const char *uetr,
                                    const char *cancellation_id, bool cancelled, const char *reason,
                                    const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                                    ledger_outcome_t *outcome)
{
    assert(cancellation_id != NULL && reason != NULL && evidence != NULL && outcome != NULL);
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.s.direction != DIRECTION_OUT || strcmp(st.cancel_id, cancellation_id) != 0 ||
        (cancelled && st.status != STATUS_PENDING) ||
        (st.status != STATUS_PENDING && st.status != STATUS_SETTLED &&
         st.status != STATUS_REJECTED && st.status != STATUS_RETURNED)) {
        set_error(l, "no open cancellation %s of our settlement %s with %s%s", cancellation_id,
                  uetr, peer, cancelled && st.status != STATUS_PENDING ? " that is pending" : "");
        return LEDGER_E_STATE;
    }
    if (cancelled) { /* the id stays, and at_peer says what rejected the payment */
        sqlite3_stmt *stmt = l->st.set_at_peer;
        sqlite3_bind_int64(stmt, 1, st.id);
        bind_text(stmt, 2, "cancelled");
        sqlite3_bind_int64(stmt, 3, (int64_t)sequence);
        if (step_done(stmt) != SQLITE_OK) {
            return storage_failure(l, "set at_peer");
        }
        snprintf(st.at_peer, sizeof st.at_peer, "cancelled");
        if ((rc = check_effect(l, peer, st.s.currency,
                               ledger_row_effect(ENTRY_OUT_VOIDED, DIRECTION_OUT,
                                                 settlement_row_amount(&st.s)))) != LEDGER_OK ||
            (rc = set_status(l, &st, STATUS_REJECTED, reason, sequence)) != LEDGER_OK ||
            (rc = append_row(l, &st, ENTRY_OUT_VOIDED, reason, evidence, evidence_len)) !=
                LEDGER_OK) {
            return rc;
        }
    } else if ((rc = set_cancel(l, &st, "", false, sequence)) != LEDGER_OK ||
               (rc = append_row(l, &st, ENTRY_CANCEL_REFUSED, reason, evidence, evidence_len)) !=
                   LEDGER_OK) {
        return rc;
    }
    fill_outcome(l, &st, false, outcome);
    return LEDGER_OK;
}

ledger_err_t ledger_cancel_refused_here(ledger_t *l, const char *peer, const char *uetr,
                                        const char *reason, const uint8_t *evidence,
                                        size_t evidence_len)
{
    assert(reason != NULL && evidence != NULL);
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.s.direction != DIRECTION_IN || st.status == STATUS_PENDING || st.status == STATUS_HELD) {
        set_error(l, "settlement %s from %s is not decided here", uetr, peer);
        return LEDGER_E_STATE;
    }
    return append_row(l, &st, ENTRY_CANCEL_REFUSED, reason, evidence, evidence_len);
}

ledger_err_t ledger_returns_of(ledger_t *l, const char *peer, const char *original_uetr,
                               direction_t direction, int64_t *accepted, int64_t *pending)
{
    assert(l != NULL && peer != NULL && original_uetr != NULL && accepted != NULL &&
           pending != NULL);
    *accepted = *pending = 0;
    if (l->schema < 9) {
        return LEDGER_OK; /* a reader of an older ledger: no returns */
    }
    sqlite3_stmt *stmt = l->st.returned_sum;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, original_uetr);
    sqlite3_bind_int(stmt, 3, (int)direction);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *accepted = sqlite3_column_int64(stmt, 0);
        *pending = sqlite3_column_int64(stmt, 1);
    }
    /* sum() fails on an integer overflow, which only edited books reach: more than any payment,
     * so that a return is refused rather than the turn failed for ever */
    bool over = step == SQLITE_ERROR && sqlite3_errcode(l->db) == SQLITE_ERROR;
    finish(stmt);
    if (over) {
        *accepted = INT64_MAX;
        *pending = 0;
        return LEDGER_OK;
    }
    if (step != SQLITE_ROW) {
        set_error(l, "cannot sum the returns of %s with %s: %s", original_uetr, peer,
                  sqlite3_errmsg(l->db));
        return LEDGER_E_STORAGE;
    }
    return LEDGER_OK;
}

ledger_err_t ledger_return_check(ledger_t *l, const settlement_t *r, const char **why)
{
    assert(l != NULL && r != NULL && why != NULL && settlement_is_return(r));
    *why = "NOOR";
    direction_t original_direction = r->direction == DIRECTION_OUT ? DIRECTION_IN : DIRECTION_OUT;
    stored_t original;
    bool found = false;
    ledger_err_t rc = find_stored(l, r->peer, r->original_uetr, &original, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (!found || settlement_is_return(&original.s) || settlement_is_fx_leg(&original.s) ||
        original.s.direction != original_direction || original.status != STATUS_SETTLED ||
        strcmp(original.s.currency, r->currency) != 0) {
        set_error(l, "%s is no settled %s payment in %s with %s", r->original_uetr,
                  original_direction == DIRECTION_IN ? "incoming" : "outgoing", r->currency,
                  r->peer);
        return LEDGER_OK;
    }
    int64_t accepted = 0, pending = 0;
    if ((rc = ledger_returns_of(l, r->peer, r->original_uetr, r->direction, &accepted, &pending)) !=
        LEDGER_OK) {
        return rc;
    }
    /* the sums come from the books, which an insider may have edited: a total that does not
     * fit is over any payment */
    int64_t total = 0;
    if (r->amount_minor <= 0 || __builtin_add_overflow(accepted, pending, &total) ||
        __builtin_add_overflow(total, r->amount_minor, &total) || total > original.s.amount_minor) {
        *why = "AM09";
        set_error(l,
                  "returning %lld would take the returns of %s (%lld accepted, %lld pending)"
                  " over its %lld",
                  (long long)r->amount_minor, r->original_uetr, (long long)accepted,
                  (long long)pending, (long long)original.s.amount_minor);
        return LEDGER_OK;
    }
    *why = NULL;
    return LEDGER_OK;
}

ledger_err_t ledger_opening_evidence(ledger_t *l, const char *peer, const char *uetr,
                                     uint8_t **evidence, size_t *evidence_len)
{
    assert(evidence != NULL && evidence_len != NULL);
    *evidence = NULL;
    *evidence_len = 0;
    stored_t st;
    ledger_err_t rc = find_required(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.opening_evidence;
    sqlite3_bind_int64(stmt, 1, st.id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *evidence = ledger_copy_blob(stmt, 0, evidence_len);
    }
    finish(stmt);
    if (*evidence == NULL) {
        set_error(l, "no opening evidence for %s with %s", uetr, peer);
        return step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_E_NOT_FOUND : LEDGER_E_STORAGE;
    }
    return LEDGER_OK;
}

ledger_err_t ledger_at_peer(ledger_t *l, const char *peer, const char *uetr, bool *held)
{
    stored_t st;
    bool found = false;
    *held = false;
    ledger_err_t rc = find_stored(l, peer, uetr, &st, &found);
    if (rc == LEDGER_OK && !found) {
        rc = LEDGER_E_NOT_FOUND;
    }
    *held = found && strcmp(st.at_peer, "held") == 0;
    return rc;
}

/* Whether `answers` is the body hash of the Settlement we signed: its body is settlement_encode
 * of the row we keep (how the channel made it). */
static bool answers_settlement(const stored_t *st, const uint8_t *answers)
{
    if (settlement_is_fx_leg(&st->s)) { /* its FxProposal's body hash, kept with the leg */
        return sodium_memcmp(st->s.original_hash, answers, sizeof st->s.original_hash) == 0;
    }
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (settlement_encode(&st->s, &body, &body_len) != 0) {
        return false;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, hash);
    free(body);
    return sodium_memcmp(hash, answers, sizeof hash) == 0;
}

/* Whether our st may take the payee's answer (`settled`, or rejected with `reason`): pending,
 * or *repeated when it holds that answer already; LEDGER_E_CONFLICT for another. */
static ledger_err_t resolve_check(ledger_t *l, const stored_t *st, bool settled, const char *reason,
                                  bool *repeated)
{
    status_t want = settled ? STATUS_SETTLED : STATUS_REJECTED;
    *repeated = false;
    if (st->status == STATUS_PENDING) {
        return check_effect(l, st->s.peer, st->s.currency,
                            ledger_row_effect(settled ? ENTRY_OUT_POSTED : ENTRY_OUT_VOIDED,
                                              DIRECTION_OUT, settlement_row_amount(&st->s)));
    }
    bool same = st->status == want && (settled || strcmp(st->reason, reason) == 0);
    if (!same && !(settled && st->status == STATUS_RETURNED)) {
        set_error(l, "settlement %s is already %s", st->s.uetr, status_name(st->status));
        return LEDGER_E_CONFLICT;
    }
    *repeated = true;
    return LEDGER_OK;
}

/* Posts or voids our pending st (checked by resolve_check). */
static ledger_err_t resolve_stored(ledger_t *l, stored_t *st, bool settled, const char *reason,
                                   const uint8_t *evidence, size_t evidence_len, uint64_t sequence)
{
    const char *why = settled ? "" : reason;
    entry_kind_t kind = settled ? ENTRY_OUT_POSTED : ENTRY_OUT_VOIDED;
    ledger_err_t rc = append_row(l, st, kind, why, evidence, evidence_len);
    return rc == LEDGER_OK
               ? set_status(l, st, settled ? STATUS_SETTLED : STATUS_REJECTED, why, sequence)
               : rc;
}

ledger_err_t ledger_resolve(ledger_t *l, const char *peer, const char *uetr, bool settled,
                            const char *reason, const uint8_t *evidence, size_t evidence_len,
                            uint64_t sequence, ledger_outcome_t *outcome)
{
    return ledger_resolve_answering(l, peer, uetr, NULL, settled, reason, evidence, evidence_len,
                                    sequence, outcome);
}

ledger_err_t ledger_resolve_answering(ledger_t *l, const char *peer, const char *uetr,
                                      const uint8_t *answers, bool settled, const char *reason,
                                      const uint8_t *evidence, size_t evidence_len,
                                      uint64_t sequence, ledger_outcome_t *outcome)
{
    assert(peer != NULL && uetr != NULL && outcome != NULL);
    assert(settled || reason != NULL);
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.s.direction != DIRECTION_OUT) {
        set_error(l, "settlement %s from %s is incoming; only the payer resolves", uetr, peer);
        return LEDGER_E_STATE;
    }
    if (settlement_is_fx_leg(&st.s)) { /* both legs or neither: ledger_fx_resolve */
        set_error(l, "%s is a leg of trade %s: only an answer to the trade decides it", uetr,
                  st.s.fx_id);
        return LEDGER_E_STATE;
    }
    if (answers != NULL && !answers_settlement(&st, answers)) {
        set_error(l, "it answers other contents than our Settlement %s", uetr);
        return LEDGER_E_CONFLICT;
    }
    bool repeated = false;
    if ((rc = resolve_check(l, &st, settled, reason, &repeated)) != LEDGER_OK) {
        return rc;
    }
    if (!repeated && (rc = resolve_stored(l, &st, settled, reason, evidence, evidence_len,
                                          sequence)) != LEDGER_OK) {
        return rc;
    }
    fill_outcome(l, &st, repeated, outcome);
    return LEDGER_OK;
}

ledger_err_t ledger_return(ledger_t *l, const char *peer, const char *uetr, const char *reason,
                           const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                           ledger_outcome_t *outcome)
{
    assert(peer != NULL && uetr != NULL && reason != NULL && outcome != NULL);
    stored_t st;
    ledger_err_t rc = begin_on(l, peer, uetr, &st);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (st.status == STATUS_RETURNED) {
        fill_outcome(l, &st, true, outcome);
        return LEDGER_OK;
    }
    if (st.status != STATUS_SETTLED) {
        set_error(l, "settlement %s is %s; only a settled payment can be returned", uetr,
                  status_name(st.status));
        return LEDGER_E_STATE;
    }
    if ((rc = check_effect(l, peer, st.s.currency,
                           ledger_row_effect(ENTRY_RETURNED, st.s.direction, st.s.amount_minor))) !=
            LEDGER_OK ||
        (rc = append_row(l, &st, ENTRY_RETURNED, reason, evidence, evidence_len)) != LEDGER_OK ||
        (rc = set_status(l, &st, STATUS_RETURNED, reason, sequence)) != LEDGER_OK) {
        return rc;
    }
    fill_outcome(l, &st, false, outcome);
    return LEDGER_OK;
}

/* ---- outbox and channel counters --------------------------------------------------------- */

/* ---- FX trades (PROTOCOL.md 3.10) ------------------------------------------------------ */

/* The legs of trade `fx_id` with `peer`, by leg: LEDGER_OK and *found, or an error (CORRUPT when
 * the channel holds it other than as one leg of each kind). */
static ledger_err_t fx_find_stored(ledger_t *l, const char *peer, const char *fx_id,
                                   stored_t legs[2], bool *found)
{
    sqlite3_stmt *stmt = l->st.fx_find;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, fx_id);
    char uetrs[3][CORRIDOR_UETR_LEN + 1];
    size_t n = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n < 3) {
            copy_column(uetrs[n], sizeof uetrs[n], stmt, 0);
        }
        n++;
    }
    finish(stmt);
    if (step != SQLITE_DONE) {
        return l->in_txn ? storage_failure(l, "find a trade's legs") : LEDGER_E_STORAGE;
    }
    *found = n > 0;
    if (n == 0) {
        return LEDGER_OK;
    }
    bool ok = n == 2;
    for (size_t i = 0; ok && i < 2; i++) {
        bool there = false;
        ledger_err_t rc = find_stored(l, peer, uetrs[i], &legs[i], &there);
        if (rc != LEDGER_OK) {
            return rc;
        }
        ok = there && legs[i].s.fx_leg == (i == 0 ? FX_LEG_PROPOSER_PAYS : FX_LEG_ACCEPTOR_PAYS);
    }
    if (!ok || legs[0].s.direction != legs[1].s.direction) {
        set_error(l, "trade %s with %s is not held as its two legs", fx_id, peer);
        return LEDGER_E_CORRUPT;
    }
    return LEDGER_OK;
}

ledger_err_t ledger_fx_find(ledger_t *l, const char *peer, const char *fx_id, settlement_t legs[2],
                            ledger_outcome_t *outcome)
{
    assert(l != NULL && peer != NULL && fx_id != NULL && l->mode == LEDGER_READ_WRITE);
    stored_t st[2];
    bool found = false;
    ledger_err_t rc = fx_find_stored(l, peer, fx_id, st, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (!found) {
        set_error(l, "no trade %s with %s", fx_id, peer);
        return LEDGER_E_NOT_FOUND;
    }
    if (legs != NULL) {
        legs[0] = st[0].s;
        legs[1] = st[1].s;
    }
    if (outcome != NULL) {
        fill_outcome(l, &st[0], true, outcome);
    }
    return LEDGER_OK;
}

/* Whether the channel holds anything keyed by `uetr`, or a trade of that id. */
static ledger_err_t id_taken(ledger_t *l, const char *peer, const char *uetr, bool *taken)
{
    stored_t st, legs[2];
    bool found = false;
    ledger_err_t rc = find_stored(l, peer, uetr, &st, &found);
    if (rc == LEDGER_OK && !found) {
        rc = fx_find_stored(l, peer, uetr, legs, &found);
        found = found || rc == LEDGER_E_CORRUPT;
        rc = rc == LEDGER_E_CORRUPT ? LEDGER_OK : rc;
    }
    if (rc == LEDGER_OK && !found) {
        rc = net_taken(l, peer, uetr, &found);
    }
    *taken = found;
    return rc;
}

ledger_err_t ledger_net_known(ledger_t *l, const char *peer, const char *id, bool *known)
{
    return net_taken(l, peer, id, known);
}

ledger_err_t ledger_id_taken(ledger_t *l, const char *peer, const char *id, bool *taken)
{
    return id_taken(l, peer, id, taken);
}

/* The checks both sides make before recording a new trade: its three ids are free. */
static ledger_err_t fx_ids_free(ledger_t *l, const settlement_t legs[2])
{
    const char *ids[3] = {legs[0].fx_id, legs[0].uetr, legs[1].uetr};
    for (int i = 0; i < 3; i++) {
        bool taken = false;
        ledger_err_t rc = id_taken(l, legs[0].peer, ids[i], &taken);
        if (rc != LEDGER_OK) {
            return rc;
        }
        if (taken) {
            set_error(l, "%s is already used with %s", ids[i], legs[0].peer);
            return LEDGER_E_CONFLICT;
        }
    }
    return LEDGER_OK;
}

static void assert_trade(const settlement_t legs[2], direction_t direction)
{
    assert(legs[0].fx_leg == FX_LEG_PROPOSER_PAYS && legs[1].fx_leg == FX_LEG_ACCEPTOR_PAYS);
    assert(legs[0].direction == direction && legs[1].direction == direction);
    assert(strcmp(legs[0].fx_id, legs[1].fx_id) == 0 && strcmp(legs[0].peer, legs[1].peer) == 0);
    (void)legs;
    (void)direction;
}

ledger_err_t ledger_fx_propose(ledger_t *l, const settlement_t legs[2], int64_t cap_minor,
                               const uint8_t *evidence, size_t evidence_len, uint64_t sequence,
                               const char **why, ledger_outcome_t *outcome)
{
    assert(why != NULL && outcome != NULL && cap_minor >= 0);
    assert_trade(legs, DIRECTION_OUT);
    *why = NULL;
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK || (rc = fx_ids_free(l, legs)) != LEDGER_OK) {
        return rc;
    }
    const settlement_t *theirs = &legs[1];
    bool over = false;
    if ((rc = over_cap(l, theirs->peer, theirs->currency, theirs->amount_minor, cap_minor,
                       &over)) != LEDGER_OK) {
        return rc;
    }
    if (over) {
        set_error(l, "the peer's leg of %lld %s would take its debt to us over the cap we grant it",
                  (long long)theirs->amount_minor, theirs->currency);
        *why = reason_code(REASON_OVER_CAP);
        return LEDGER_OK;
    }
    for (int i = 0; i < 2; i++) {
        rc = check_effect(
            l, legs[i].peer, legs[i].currency,
            ledger_row_effect(ENTRY_OUT_PENDING, DIRECTION_OUT, settlement_row_amount(&legs[i])));
        if (rc != LEDGER_OK) {
            return rc;
        }
    }
    stored_t st[2];
    for (int i = 0; i < 2; i++) {
        uint8_t hash[SETTLEMENT_HASH_BYTES];
        settlement_content_hash(&legs[i], hash);
        if ((rc = insert_settlement(l, &legs[i], hash, STATUS_PENDING, NULL, NULL, sequence,
                                    &st[i])) != LEDGER_OK ||
            (rc = append_row(l, &st[i], ENTRY_OUT_PENDING, NULL, evidence, evidence_len)) !=
                LEDGER_OK) {
            return rc;
        }
    }
    fill_outcome(l, &st[0], false, outcome);
    return LEDGER_OK;
}

/* ---- Multilateral set-off legs (PROTOCOL.md 3.12.6) ---- */

ledger_err_t ledger_setoff_leg_open(ledger_t *l, const ledger_setoff_leg_t *leg, uint64_t sequence,
                                    const uint8_t *evidence, size_t evidence_len)
{
    assert(leg != NULL && leg->amount_minor > 0 && evidence != NULL);
    ledger_err_t rc = begin_write(l);
    bool taken = false;
    if (rc != LEDGER_OK || (rc = id_taken(l, leg->peer, leg->setoff_id, &taken)) != LEDGER_OK) {
        return rc;
    }
    if (taken) {
        set_error(l, "%s is already used with %s", leg->setoff_id, leg->peer);
        return LEDGER_E_CONFLICT;
    }
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "%s", leg->peer);
    s.direction = leg->direction;
    snprintf(s.uetr, sizeof s.uetr, "%s", leg->setoff_id);
    snprintf(s.fx_id, sizeof s.fx_id, "%s", leg->setoff_id);
    s.fx_leg = FX_LEG_SETOFF;
    s.amount_minor = leg->amount_minor;
    snprintf(s.currency, sizeof s.currency, "%s", leg->currency);
    s.created_unix_ms = leg->created_unix_ms;
    memcpy(s.original_hash, leg->terms_hash, sizeof s.original_hash);
    rc = check_effect(
        l, s.peer, s.currency,
        ledger_row_effect(ENTRY_SETOFF_PENDING, s.direction, settlement_row_amount(&s)));
    if (rc != LEDGER_OK) {
        return rc;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&s, hash);
    stored_t st;
    if ((rc = insert_settlement(l, &s, hash, STATUS_PENDING, NULL, NULL, sequence, &st)) !=
        LEDGER_OK) {
        return rc;
    }
    return append_row(l, &st, ENTRY_SETOFF_PENDING, NULL, evidence, evidence_len);
}

ledger_err_t ledger_setoff_leg_close(ledger_t *l, const char *peer, const char *setoff_id,
                                     bool commit, const char *reason, uint64_t sequence,
                                     const uint8_t *evidence, size_t evidence_len, bool *closed)
{
    assert(peer != NULL && setoff_id != NULL && evidence != NULL && closed != NULL);
    *closed = false;
    ledger_err_t rc = begin_write(l);
    stored_t st;
    bool found = false;
    if (rc != LEDGER_OK || (rc = find_stored(l, peer, setoff_id, &st, &found)) != LEDGER_OK ||
        !found) {
        return rc;
    }
    if (!settlement_is_setoff_leg(&st.s) || st.status != STATUS_PENDING) {
        set_error(l, "%s with %s is not a pending set-off leg", setoff_id, peer);
        return LEDGER_E_STATE;
    }
    entry_kind_t kind = commit ? ENTRY_SETOFF_POSTED : ENTRY_SETOFF_VOIDED;
    if ((rc = check_effect(
             l, peer, st.s.currency,
             ledger_row_effect(kind, st.s.direction, settlement_row_amount(&st.s)))) != LEDGER_OK ||
        (rc = set_status(l, &st, commit ? STATUS_SETTLED : STATUS_REJECTED, commit ? NULL : reason,
                         sequence)) != LEDGER_OK ||
        (rc = append_row(l, &st, kind, commit ? NULL : reason, evidence, evidence_len)) !=
            LEDGER_OK) {
        return rc;
    }
    *closed = true;
    return LEDGER_OK;
}

ledger_err_t ledger_setoff_pending(ledger_t *l, const char *peer, const char *currency,
                                   direction_t direction, int64_t *sum)
{
    assert(peer != NULL && currency != NULL && sum != NULL);
    *sum = 0;
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.setoff_pending_sum;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, currency);
    sqlite3_bind_int(stmt, 3, (int)direction);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *sum = sqlite3_column_int64(stmt, 0);
    }
    finish(stmt);
    return step == SQLITE_ROW ? LEDGER_OK : storage_failure(l, "sum pending set-off legs");
}

ledger_err_t ledger_fx_resolve(ledger_t *l, const char *peer, const char *fx_id,
                               const uint8_t answers[static SETTLEMENT_HASH_BYTES], status_t answer,
                               const char *reason, const uint8_t *evidence, size_t evidence_len,
                               uint64_t sequence, ledger_outcome_t *outcome)
{
    assert(peer != NULL && fx_id != NULL && outcome != NULL);
    assert(answer == STATUS_SETTLED || answer == STATUS_HELD ||
           (answer == STATUS_REJECTED && reason != NULL));
    ledger_err_t rc = begin_write(l);
    stored_t st[2];
    bool found = false;
    if (rc != LEDGER_OK || (rc = fx_find_stored(l, peer, fx_id, st, &found)) != LEDGER_OK) {
        return rc;
    }
    if (!found || st[0].s.direction != DIRECTION_OUT) {
        set_error(l, "no trade %s of ours with %s", fx_id, peer);
        return LEDGER_E_NOT_FOUND;
    }
    /* everything is checked on both legs before either is written: both or neither */
    for (int i = 0; i < 2; i++) {
        if (!answers_settlement(&st[i], answers)) {
            set_error(l, "the answer names another FxProposal than ours for %s", fx_id);
            return LEDGER_E_CONFLICT;
        }
    }
    if (st[0].status != st[1].status || strcmp(st[0].reason, st[1].reason) != 0) {
        set_error(l, "the legs of trade %s differ in status (edited books)", fx_id);
        return LEDGER_E_CORRUPT;
    }
    if (answer == STATUS_HELD) {
        if (st[0].status != STATUS_PENDING) {
            set_error(l, "trade %s is already %s", fx_id, status_name(st[0].status));
            return LEDGER_E_STATE;
        }
        for (int i = 0; rc == LEDGER_OK && i < 2; i++) {
            rc = note_held_stored(l, &st[i], evidence, evidence_len, sequence);
        }
        if (rc == LEDGER_OK) {
            fill_outcome(l, &st[0], false, outcome);
        }
        return rc;
    }
    bool settled = answer == STATUS_SETTLED, repeated = false;
    for (int i = 0; i < 2; i++) {
        if ((rc = resolve_check(l, &st[i], settled, reason, &repeated)) != LEDGER_OK) {
            return rc;
        }
    }
    for (int i = 0; !repeated && i < 2; i++) {
        if ((rc = resolve_stored(l, &st[i], settled, reason, evidence, evidence_len, sequence)) !=
            LEDGER_OK) {
            return rc;
        }
    }
    fill_outcome(l, &st[0], repeated, outcome);
    return LEDGER_OK;
}

ledger_err_t ledger_fx_receive(ledger_t *l, const settlement_t legs[2], int64_t cap_minor,
                               const char *reject_reason, const char *hold, const uint8_t *evidence,
                               size_t evidence_len, uint64_t sequence, ledger_outcome_t *outcome)
{
    assert(outcome != NULL && cap_minor >= 0);
    assert_trade(legs, DIRECTION_IN);
    assert(reject_reason != NULL || (settlement_check(&legs[0]) == REASON_NONE &&
                                     settlement_check(&legs[1]) == REASON_NONE));
    assert(hold == NULL || strcmp(hold, LEDGER_HOLD_REVIEW) == 0);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    uint8_t hash[2][SETTLEMENT_HASH_BYTES];
    stored_t st[2];
    bool found[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        settlement_content_hash(&legs[i], hash[i]);
        if ((rc = find_stored(l, legs[i].peer, legs[i].uetr, &st[i], &found[i])) != LEDGER_OK) {
            return rc;
        }
    }
    if (found[0] || found[1]) { /* a repeat holds both legs with this content, else DUPL */
        /* the binding is no content: a copy naming another body must not get our answer
         * naming that body (as for a Return, 3.9.3 step 4) */
        if (!found[0] || !found[1] ||
            sodium_memcmp(st[0].content_hash, hash[0], SETTLEMENT_HASH_BYTES) != 0 ||
            sodium_memcmp(st[1].content_hash, hash[1], SETTLEMENT_HASH_BYTES) != 0 ||
            sodium_memcmp(st[0].s.original_hash, legs[0].original_hash, SETTLEMENT_HASH_BYTES) !=
                0 ||
            sodium_memcmp(st[1].s.original_hash, legs[1].original_hash, SETTLEMENT_HASH_BYTES) !=
                0) {
            set_error(l, "a leg of trade %s reuses a UETR with other content", legs[0].fx_id);
            return LEDGER_E_CONFLICT;
        }
        fill_outcome(l, &st[0], true, outcome);
        return LEDGER_OK;
    }
    if ((rc = fx_ids_free(l, legs)) != LEDGER_OK) {
        return rc;
    }
    const char *reason = reject_reason;
    bool over = false;
    if (reason == NULL && (rc = over_cap(l, legs[0].peer, legs[0].currency, legs[0].amount_minor,
                                         cap_minor, &over)) != LEDGER_OK) {
        return rc;
    }
    if (over) {
        reason = reason_code(REASON_OVER_CAP);
    }
    entry_kind_t kind = hold != NULL ? ENTRY_HELD : ENTRY_IN_BOOKED;
    for (int i = 0; reason == NULL && i < 2; i++) {
        rc = check_effect(l, legs[i].peer, legs[i].currency,
                          ledger_row_effect(kind, DIRECTION_IN, settlement_row_amount(&legs[i])));
        if (rc == LEDGER_E_OVERFLOW) {
            reason = reason_code(REASON_OVER_CAP); /* our books cannot hold it */
        } else if (rc != LEDGER_OK) {
            return rc;
        }
    }
    status_t status = reason != NULL ? STATUS_REJECTED
                      : hold != NULL ? STATUS_HELD
                                     : STATUS_SETTLED;
    if (reason != NULL) {
        kind = ENTRY_IN_REFUSED;
    }
    for (int i = 0; i < 2; i++) {
        if ((rc = insert_settlement(l, &legs[i], hash[i], status, reason,
                                    reason == NULL ? hold : NULL, sequence, &st[i])) != LEDGER_OK ||
            (rc = append_row(l, &st[i], kind, reason, evidence, evidence_len)) != LEDGER_OK) {
            return rc;
        }
    }
    fill_outcome(l, &st[0], false, outcome);
    return LEDGER_OK;
}

ledger_err_t ledger_channel_get(ledger_t *l, const char *peer, ledger_channel_t *ch)
{
    assert(l != NULL && peer != NULL && ch != NULL);
    memset(ch, 0, sizeof *ch);
    sqlite3_stmt *stmt = l->st.channel_get;
    bind_text(stmt, 1, peer);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        ch->sent_seq = (uint64_t)sqlite3_column_int64(stmt, 0);
        ch->acked_seq = (uint64_t)sqlite3_column_int64(stmt, 1);
        ch->applied_seq = (uint64_t)sqlite3_column_int64(stmt, 2);
        ch->diverged = sqlite3_column_int(stmt, 3) != 0;
    }
    finish(stmt);
    if (ch->sent_seq > CORRIDOR_SEQUENCE_MAX || ch->acked_seq > ch->sent_seq ||
        ch->applied_seq > CORRIDOR_SEQUENCE_MAX) {
        set_error(l, "channel %s: counters sent %llu, acked %llu, applied %llu are out of range",
                  peer, (unsigned long long)ch->sent_seq, (unsigned long long)ch->acked_seq,
                  (unsigned long long)ch->applied_seq);
        memset(ch, 0, sizeof *ch);
        return LEDGER_E_CORRUPT;
    }
    ch->wire_version = 1;
    if (step == SQLITE_ROW && l->st.channel_extra != NULL) {
        stmt = l->st.channel_extra;
        bind_text(stmt, 1, peer);
        step = sqlite3_step(stmt);
        if (step == SQLITE_ROW) {
            ch->wire_version = (uint32_t)sqlite3_column_int(stmt, 0);
            ch->peer_features = (uint64_t)sqlite3_column_int64(stmt, 2);
        }
        finish(stmt);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return l->in_txn ? storage_failure(l, "read channel") : LEDGER_E_STORAGE;
    }
    return LEDGER_OK;
}

uint8_t *ledger_copy_blob(struct sqlite3_stmt *stmt, int col, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(stmt, col);
    if (*len == 0) {
        return NULL;
    }
    uint8_t *copy = malloc(*len);
    if (copy != NULL) {
        memcpy(copy, sqlite3_column_blob(stmt, col), *len);
    } else {
        *len = 0;
    }
    return copy;
}

ledger_err_t ledger_channel_proof(ledger_t *l, const char *peer, uint8_t **proof, size_t *len)
{
    assert(l != NULL && peer != NULL && proof != NULL && len != NULL);
    *proof = NULL;
    *len = 0;
    if (l->st.channel_extra == NULL) {
        return LEDGER_E_READONLY;
    }
    sqlite3_stmt *stmt = l->st.channel_extra;
    bind_text(stmt, 1, peer);
    int step = sqlite3_step(stmt);
    ledger_err_t rc = step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
    if (step == SQLITE_ROW && (*proof = ledger_copy_blob(stmt, 1, len)) == NULL &&
        sqlite3_column_bytes(stmt, 1) > 0) {
        rc = LEDGER_E_STORAGE;
    }
    finish(stmt);
    return rc;
}

/* Sets one channel counter (statement `stmt`), creating the channel row if needed. */
static ledger_err_t channel_set(ledger_t *l, sqlite3_stmt *stmt, const char *peer, uint64_t value)
{
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)value);
    return update_row(l, stmt, "update channel", ROW_CHANNEL, peer, NULL);
}

ledger_err_t ledger_channel_set_acked(ledger_t *l, const char *peer, uint64_t acked_seq)
{
    return channel_set(l, l->st.channel_acked, peer, acked_seq);
}

ledger_err_t ledger_channel_set_applied(ledger_t *l, const char *peer, uint64_t applied_seq,
                                        const uint8_t *proof, size_t proof_len)
{
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.channel_applied;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)applied_seq);
    if (proof_len > 0) {
        sqlite3_bind_blob(stmt, 3, proof, (int)proof_len, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(stmt, 3);
    }
    return update_row(l, stmt, "update channel", ROW_CHANNEL, peer, NULL);
}

ledger_err_t ledger_channel_set_version(ledger_t *l, const char *peer, uint32_t version)
{
    return channel_set(l, l->st.channel_version, peer, version);
}

ledger_err_t ledger_channel_set_features(ledger_t *l, const char *peer, uint64_t features)
{
    return channel_set(l, l->st.channel_features, peer, features & INT64_MAX);
}

ledger_err_t ledger_channel_set_diverged(ledger_t *l, const char *peer, bool diverged)
{
    return channel_set(l, l->st.channel_diverged, peer, diverged ? 1 : 0);
}

ledger_err_t ledger_outbox_next_seq(ledger_t *l, const char *peer, uint64_t *seq)
{
    ledger_channel_t ch;
    ledger_err_t rc = ledger_channel_get(l, peer, &ch);
    *seq = ch.sent_seq + 1;
    return rc;
}

ledger_err_t ledger_outbox_put(ledger_t *l, const char *peer, uint64_t seq, int type,
                               const uint8_t *signed_msg, size_t signed_len)
{
    assert(peer != NULL && signed_msg != NULL && seq >= 1);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    /* the usual case in one statement: the channel row exists and seq is the next */
    sqlite3_stmt *next_stmt = l->st.channel_sent_next;
    bind_text(next_stmt, 1, peer);
    sqlite3_bind_int64(next_stmt, 2, (int64_t)seq);
    if (step_done(next_stmt) != SQLITE_OK) {
        return storage_failure(l, "update channel");
    }
    if (sqlite3_changes(l->db) != 1) {
        uint64_t next = 0;
        if ((rc = ledger_outbox_next_seq(l, peer, &next)) != LEDGER_OK) {
            return rc;
        }
        if (seq != next) {
            set_error(l, "outbox to %s: sequence %llu is not the next (%llu)", peer,
                      (unsigned long long)seq, (unsigned long long)next);
            return LEDGER_E_STATE;
        }
        if ((rc = channel_set(l, l->st.channel_sent, peer, seq)) != LEDGER_OK) {
            return rc; /* the first message to this peer: its channel row is new */
        }
    }
    sqlite3_stmt *stmt = l->st.outbox_put;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)seq);
    sqlite3_bind_int(stmt, 3, type);
    sqlite3_bind_blob(stmt, 4, signed_msg, (int)signed_len, SQLITE_STATIC);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "queue message");
    }
    return LEDGER_OK;
}

ledger_err_t ledger_outbox_scan(ledger_t *l, const char *peer, uint64_t from_seq, size_t limit,
                                bool (*fn)(uint64_t seq, int type, const uint8_t *signed_msg,
                                           size_t signed_len, void *arg),
                                void *arg)
{
    assert(l != NULL && peer != NULL && fn != NULL);
    sqlite3_stmt *stmt = l->st.outbox_scan;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)from_seq);
    sqlite3_bind_int64(stmt, 3, (int64_t)limit);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (!fn((uint64_t)sqlite3_column_int64(stmt, 0), sqlite3_column_int(stmt, 1),
                sqlite3_column_blob(stmt, 2), (size_t)sqlite3_column_bytes(stmt, 2), arg)) {
            step = SQLITE_DONE;
            break;
        }
    }
    finish(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

/* ---- reconciliation support ------------------------------------------------------------- */

const char *ledger_node(const ledger_t *l)
{
    return l->node;
}

ledger_err_t ledger_set_reply(ledger_t *l, const char *peer, const char *uetr,
                              const uint8_t *signed_msg, size_t signed_len, uint64_t sequence)
{
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.set_reply;
    bind_text(stmt, 1, peer);
    bind_text(stmt, 2, uetr);
    sqlite3_bind_blob(stmt, 3, signed_msg, (int)signed_len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, (int64_t)sequence);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "store reply");
    }
    /* no lookup on the settlement path: the row just appended names its settlement's key */
    if (l->replyable_seq != 0 && l->replyable_seq == l->last_seq && signed_len > 0 &&
        strcmp(l->replyable_peer, peer) == 0 && strcmp(l->replyable_uetr, uetr) == 0) {
        return attach_reply(l, signed_msg, signed_len);
    }
    return LEDGER_OK;
}

ledger_err_t ledger_import(ledger_t *l, const settlement_t *s, status_t status, const char *reason,
                           const uint8_t *settlement_evidence, size_t settlement_len,
                           uint64_t settlement_sequence, const uint8_t *status_evidence,
                           size_t status_len, uint64_t status_sequence)
{
    assert(s != NULL && settlement_evidence != NULL && status_evidence != NULL);
    assert(status == STATUS_SETTLED || status == STATUS_REJECTED);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(s, hash);
    bool done = false;
    ledger_outcome_t ignored;
    if ((rc = check_repeat(l, s, hash, &done, &ignored)) != LEDGER_OK) {
        return rc;
    }
    if (done) {
        set_error(l, "settlement %s with %s is already recorded", s->uetr, s->peer);
        return LEDGER_E_STATE;
    }
    const char *why = status == STATUS_REJECTED ? reason : "";
    stored_t st;
    if (s->direction == DIRECTION_OUT) {
        entry_kind_t final = status == STATUS_SETTLED ? ENTRY_OUT_POSTED : ENTRY_OUT_VOIDED;
        ledger_effect_t e =
            ledger_row_effect(ENTRY_OUT_PENDING, DIRECTION_OUT, settlement_row_amount(s));
        ledger_effect_t f = ledger_row_effect(final, DIRECTION_OUT, settlement_row_amount(s));
        ledger_effect_t both = {e.pending + f.pending, e.posted + f.posted};
        if ((rc = check_effect(l, s->peer, s->currency, both)) != LEDGER_OK ||
            (rc = insert_settlement(l, s, hash, STATUS_PENDING, NULL, NULL, settlement_sequence,
                                    &st)) != LEDGER_OK ||
            (rc = append_row(l, &st, ENTRY_OUT_PENDING, NULL, settlement_evidence,
                             settlement_len)) != LEDGER_OK ||
            (rc = append_row(l, &st, final, why, status_evidence, status_len)) != LEDGER_OK ||
            (rc = set_status(l, &st, status, why, status_sequence)) != LEDGER_OK ||
            (rc = append_row(l, &st, ENTRY_IMPORTED, why, status_evidence, status_len)) !=
                LEDGER_OK) {
            return rc;
        }
        return LEDGER_OK;
    }
    entry_kind_t kind = status == STATUS_SETTLED ? ENTRY_IN_BOOKED : ENTRY_IN_REFUSED;
    if ((rc = check_effect(l, s->peer, s->currency,
                           ledger_row_effect(kind, DIRECTION_IN, settlement_row_amount(s)))) !=
            LEDGER_OK ||
        (rc = insert_settlement(l, s, hash, status, why, NULL, settlement_sequence, &st)) !=
            LEDGER_OK ||
        (rc = append_row(l, &st, kind, why, settlement_evidence, settlement_len)) != LEDGER_OK ||
        (rc = ledger_set_reply(l, s->peer, s->uetr, status_evidence, status_len,
                               status_sequence)) != LEDGER_OK) {
        return rc; /* our reply, which the peer kept, is part of the booking row as usual */
    }
    return append_row(l, &st, ENTRY_IMPORTED, why, status_evidence, status_len);
}

ledger_err_t ledger_fx_import(ledger_t *l, const settlement_t legs[2], status_t status,
                              const char *reason, const uint8_t *proposal_evidence,
                              size_t proposal_len, uint64_t proposal_sequence,
                              const uint8_t *status_evidence, size_t status_len,
                              uint64_t status_sequence)
{
    assert(legs != NULL && proposal_evidence != NULL && status_evidence != NULL);
    assert(status == STATUS_SETTLED || status == STATUS_REJECTED);
    direction_t dir = legs[0].direction;
    assert_trade(legs, dir);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK || (rc = fx_ids_free(l, legs)) != LEDGER_OK) {
        return rc;
    }
    const char *why = status == STATUS_REJECTED ? reason : "";
    entry_kind_t open = dir == DIRECTION_OUT       ? ENTRY_OUT_PENDING
                        : status == STATUS_SETTLED ? ENTRY_IN_BOOKED
                                                   : ENTRY_IN_REFUSED;
    entry_kind_t final = status == STATUS_SETTLED ? ENTRY_OUT_POSTED : ENTRY_OUT_VOIDED;
    for (int i = 0; i < 2; i++) {
        int64_t amount = settlement_row_amount(&legs[i]);
        ledger_effect_t e = ledger_row_effect(open, dir, amount);
        if (dir == DIRECTION_OUT) {
            ledger_effect_t f = ledger_row_effect(final, dir, amount);
            e.pending += f.pending;
            e.posted += f.posted;
        }
        if ((rc = check_effect(l, legs[i].peer, legs[i].currency, e)) != LEDGER_OK) {
            return rc;
        }
    }
    /* rows leg by leg within each kind, as the trade's own path writes them */
    stored_t st[2];
    for (int i = 0; i < 2; i++) {
        uint8_t hash[SETTLEMENT_HASH_BYTES];
        settlement_content_hash(&legs[i], hash);
        if ((rc = insert_settlement(l, &legs[i], hash,
                                    dir == DIRECTION_OUT ? STATUS_PENDING : status,
                                    dir == DIRECTION_OUT ? NULL : why, NULL, proposal_sequence,
                                    &st[i])) != LEDGER_OK ||
            (rc = append_row(l, &st[i], open, dir == DIRECTION_OUT ? NULL : why, proposal_evidence,
                             proposal_len)) != LEDGER_OK) {
            return rc;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (dir == DIRECTION_OUT) {
            rc = append_row(l, &st[i], final, why, status_evidence, status_len);
            rc = rc == LEDGER_OK ? set_status(l, &st[i], status, why, status_sequence) : rc;
        } else {
            /* our answer, which the peer kept: both records' reply, the last row's too */
            rc = ledger_set_reply(l, legs[i].peer, legs[i].uetr, status_evidence, status_len,
                                  status_sequence);
        }
        if (rc != LEDGER_OK) {
            return rc;
        }
    }
    for (int i = 0; i < 2; i++) {
        if ((rc = append_row(l, &st[i], ENTRY_IMPORTED, why, status_evidence, status_len)) !=
            LEDGER_OK) {
            return rc;
        }
    }
    return LEDGER_OK;
}

ledger_err_t ledger_channel_rebase(ledger_t *l, const char *peer, const ledger_rebase_t *rb)
{
    assert(rb->acked_seq <= rb->sent_seq && rb->sent_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(rb->applied_seq <= CORRIDOR_SEQUENCE_MAX && rb->proven_seq <= rb->sent_seq);
    assert(rb->proof != NULL || rb->proof_len == 0);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *ensure = l->st.channel_ensure;
    bind_text(ensure, 1, peer);
    if (step_done(ensure) != SQLITE_OK) {
        return storage_failure(l, "create channel");
    }
    sqlite3_stmt *stmt = l->st.channel_rebase;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)rb->sent_seq);
    sqlite3_bind_int64(stmt, 3, (int64_t)rb->acked_seq);
    sqlite3_bind_int64(stmt, 4, (int64_t)rb->applied_seq);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "re-base channel");
    }
    stored_t record; /* a row of the channel, of no settlement */
    memset(&record, 0, sizeof record);
    snprintf(record.s.peer, sizeof record.s.peer, "%s", peer);
    record.s.amount_minor = (int64_t)rb->proven_seq;
    return append_row(l, &record, ENTRY_REBASED, NULL, rb->proof, rb->proof_len);
}

ledger_err_t ledger_write_begin(ledger_t *l)
{
    return begin_write(l);
}

int64_t ledger_clock(const ledger_t *l)
{
    return l->clock_ms;
}

ledger_err_t ledger_fail(ledger_t *l, ledger_err_t rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error, sizeof l->error, fmt, ap);
    va_end(ap);
    return rc;
}

ledger_err_t ledger_append_free_row(ledger_t *l, const char *peer, entry_kind_t kind,
                                    const char *uetr, const char *currency, int64_t amount_minor,
                                    const char *reason, const uint8_t *evidence,
                                    size_t evidence_len)
{
    assert(l != NULL && peer != NULL && uetr != NULL && currency != NULL);
    ledger_err_t rc = begin_write(l);
    stored_t row; /* a row of the channel, of no settlement */
    memset(&row, 0, sizeof row);
    snprintf(row.s.peer, sizeof row.s.peer, "%s", peer);
    snprintf(row.s.uetr, sizeof row.s.uetr, "%s", uetr);
    snprintf(row.s.currency, sizeof row.s.currency, "%s", currency);
    row.s.amount_minor = amount_minor;
    ledger_effect_t e = ledger_row_effect(kind, DIRECTION_OUT, amount_minor);
    if (rc == LEDGER_OK && effect_moves(e)) {
        rc = check_effect(l, peer, currency, e);
    }
    return rc == LEDGER_OK ? append_row(l, &row, kind, reason, evidence, evidence_len) : rc;
}

ledger_err_t ledger_record_operation(ledger_t *l, const char *peer, const char *record)
{
    assert(l != NULL && peer != NULL && record != NULL);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    stored_t row; /* a row of no settlement */
    memset(&row, 0, sizeof row);
    snprintf(row.s.peer, sizeof row.s.peer, "%s", peer);
    return append_row(l, &row, ENTRY_OPERATOR, NULL, (const uint8_t *)record, strlen(record));
}

ledger_err_t ledger_operations(ledger_t *l, void (*fn)(const ledger_operation_t *op, void *arg),
                               void *arg)
{
    assert(l != NULL && fn != NULL);
    sqlite3_stmt *stmt = l->st.operations;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        /* the record as text: a blob may hold any bytes, and a person reads it */
        char *record = sqlite3_mprintf("%.*s", sqlite3_column_bytes(stmt, 2),
                                       (const char *)sqlite3_column_blob(stmt, 2));
        if (record == NULL) {
            step = SQLITE_NOMEM;
            break;
        }
        const unsigned char *peer = sqlite3_column_text(stmt, 1);
        ledger_operation_t op = {sqlite3_column_int64(stmt, 0),
                                 peer != NULL ? (const char *)peer : "", record,
                                 sqlite3_column_int64(stmt, 3)};
        fn(&op, arg);
        sqlite3_free(record);
    }
    finish(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t ledger_checkpoint_last(ledger_t *l, const char *peer, uint8_t **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    sqlite3_stmt *stmt = l->st.checkpoint_last;
    bind_text(stmt, 1, peer);
    int step = sqlite3_step(stmt);
    ledger_err_t rc = step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
    if (step == SQLITE_ROW && (*body = ledger_copy_blob(stmt, 0, len)) == NULL &&
        sqlite3_column_bytes(stmt, 0) > 0) {
        rc = LEDGER_E_STORAGE;
    }
    finish(stmt);
    return rc;
}

ledger_err_t ledger_checkpoint_store(ledger_t *l, const char *peer, const uint8_t *body,
                                     size_t body_len, const uint8_t *own_signature,
                                     const uint8_t *peer_signature, uint64_t own_rows,
                                     const uint8_t own_head[static LEDGER_HASH_BYTES])
{
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.checkpoint_put;
    bind_text(stmt, 1, peer);
    sqlite3_bind_blob(stmt, 2, body, (int)body_len, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 3, own_signature, crypto_sign_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 4, peer_signature, crypto_sign_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, (int64_t)own_rows);
    sqlite3_bind_blob(stmt, 6, own_head, LEDGER_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, l->clock_ms);
    if (step_done(stmt) != SQLITE_OK) {
        return storage_failure(l, "store checkpoint");
    }
    int64_t checkpoint_id = sqlite3_last_insert_rowid(l->db);
    ledger_channel_t ch;
    if ((rc = ledger_channel_get(l, peer, &ch)) != LEDGER_OK) {
        return rc;
    }
    size_t len = body_len + 2 * crypto_sign_BYTES;
    uint8_t *evidence = malloc(len);
    if (evidence == NULL) {
        return storage_failure(l, "store checkpoint: out of memory");
    }
    memcpy(evidence, body, body_len);
    memcpy(evidence + body_len, own_signature, crypto_sign_BYTES);
    memcpy(evidence + body_len + crypto_sign_BYTES, peer_signature, crypto_sign_BYTES);
    stored_t row; /* a row of the channel, of no settlement */
    memset(&row, 0, sizeof row);
    snprintf(row.s.peer, sizeof row.s.peer, "%s", peer);
    row.s.amount_minor = (int64_t)(ch.sent_seq + ch.applied_seq);
    rc = append_row(l, &row, ENTRY_CHECKPOINT, NULL, evidence, len);
    free(evidence);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *messages = l->st.checkpoint_messages;
    sqlite3_bind_int64(messages, 1, checkpoint_id);
    sqlite3_bind_int64(messages, 2, row.s.amount_minor);
    return step_done(messages) == SQLITE_OK ? LEDGER_OK
                                            : storage_failure(l, "store checkpoint messages");
}

ledger_err_t ledger_checkpoint_when(ledger_t *l, const char *peer, uint64_t *messages,
                                    int64_t *at_ms)
{
    *messages = 0;
    *at_ms = 0;
    sqlite3_stmt *stmt = l->st.checkpoint_when;
    bind_text(stmt, 1, peer);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        int64_t m = sqlite3_column_int64(stmt, 0);
        *messages = m > 0 ? (uint64_t)m : 0;
        *at_ms = sqlite3_column_int64(stmt, 1);
    }
    finish(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t ledger_row_hash_at(ledger_t *l, uint64_t seq, uint8_t hash[static LEDGER_HASH_BYTES])
{
    sqlite3_stmt *stmt = l->st.row_hash;
    sqlite3_bind_int64(stmt, 1, (int64_t)seq);
    int step = sqlite3_step(stmt);
    bool ok = step == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == LEDGER_HASH_BYTES;
    if (ok) {
        memcpy(hash, sqlite3_column_blob(stmt, 0), LEDGER_HASH_BYTES);
    }
    finish(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return LEDGER_E_STORAGE;
    }
    return ok ? LEDGER_OK : LEDGER_E_NOT_FOUND;
}

/* ---- the channel at a sequence cut --------------------------------------------------------- */

/* A settlement's status at a cut (see ledger_cut_t); false when no message below the cut opened
 * it. The payer's messages open, the payee's decide and return; the relay's sender both opens
 * and decides a set-off leg (`leg`). */
static bool status_at_cut(fx_leg_t leg, direction_t direction, status_t now, uint64_t open_seq,
                          bool decided, uint64_t decided_seq, bool returned, uint64_t returned_seq,
                          uint64_t sent_seq, uint64_t applied_seq, status_t *at)
{
    uint64_t payer_bound = direction == DIRECTION_OUT ? sent_seq : applied_seq;
    uint64_t payee_bound = settlement_decided_by_us(leg, direction) ? sent_seq : applied_seq;
    if (open_seq > payer_bound) {
        return false;
    }
    if (returned && returned_seq <= payee_bound) {
        *at = STATUS_RETURNED;
    } else if (decided && decided_seq <= payee_bound) {
        *at = now == STATUS_RETURNED ? STATUS_SETTLED : now; /* returned only later */
    } else {
        *at = STATUS_PENDING;
    }
    return true;
}

/* What a settlement in `status` adds to our net position towards the peer (posted only). */
static int64_t posted_of(direction_t direction, status_t status, int64_t amount_minor)
{
    if (status != STATUS_SETTLED) {
        return 0;
    }
    return direction == DIRECTION_OUT ? -amount_minor : amount_minor;
}

static ledger_cut_position_t *cut_position(ledger_cut_t *cut, const char *currency)
{
    for (size_t i = 0; i < cut->n_positions; i++) {
        if (strcmp(cut->positions[i].currency, currency) == 0) {
            return &cut->positions[i];
        }
    }
    return NULL;
}

/* The channel's digest, count and positions as they are now. */
static ledger_err_t cut_start(ledger_t *l, const char *peer, ledger_cut_t *cut)
{
    sqlite3_stmt *stmt = l->st.cut_channel;
    bind_text(stmt, 1, peer);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == DIGEST_BYTES) {
        memcpy(cut->digest, sqlite3_column_blob(stmt, 0), DIGEST_BYTES);
        int64_t entries = sqlite3_column_int64(stmt, 1);
        cut->entries = entries > 0 ? (uint64_t)entries : 0;
    }
    finish(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return storage_failure(l, "read the channel digest");
    }
    stmt = l->st.cut_positions;
    bind_text(stmt, 1, peer);
    size_t capacity = 0;
    bool out_of_memory = false;
    while (!out_of_memory && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (cut->n_positions == capacity) {
            capacity = capacity == 0 ? 8 : 2 * capacity;
            void *grown = realloc(cut->positions, capacity * sizeof *cut->positions);
            out_of_memory = grown == NULL;
            if (out_of_memory) {
                continue;
            }
            cut->positions = grown;
        }
        ledger_cut_position_t *p = &cut->positions[cut->n_positions++];
        const char *currency = (const char *)sqlite3_column_text(stmt, 0);
        snprintf(p->currency, sizeof p->currency, "%s", currency != NULL ? currency : "");
        p->net_minor = sqlite3_column_int64(stmt, 1);
    }
    finish(stmt);
    if (out_of_memory) {
        set_error(l, "out of memory");
        return LEDGER_E_STORAGE;
    }
    return step == SQLITE_DONE ? LEDGER_OK : storage_failure(l, "read positions");
}

/* Takes one settlement touched above the cut back to how it stood at the cut; its position
 * moves are summed in `nets` (one per cut->positions, wide: the partial sums of a few large
 * amounts are no real state and may pass int64). */
static ledger_err_t cut_undo(ledger_t *l, const char *peer, sqlite3_stmt *row, uint64_t sent_seq,
                             uint64_t applied_seq, ledger_cut_t *cut, __int128 *nets)
{
    direction_t direction =
        sqlite3_column_int(row, 1) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT;
    const char *uetr = (const char *)sqlite3_column_text(row, 2);
    int64_t amount = sqlite3_column_int64(row, 3);
    const char *currency = (const char *)sqlite3_column_text(row, 4);
    int status = sqlite3_column_int(row, 5);
    status_t now = (status_t)status;
    const char *reason = (const char *)sqlite3_column_text(row, 6);
    int64_t open_seq = sqlite3_column_int64(row, 8), decided_seq = sqlite3_column_int64(row, 9),
            returned_seq = sqlite3_column_int64(row, 10);
    int leg_column = sqlite3_column_int(row, 14);
    fx_leg_t leg = fx_leg_of_column(leg_column);
    if (uetr == NULL || currency == NULL || reason == NULL || status < STATUS_PENDING ||
        status > STATUS_MAX || sqlite3_column_bytes(row, 7) != DIGEST_BYTES || open_seq < 0 ||
        decided_seq < 0 || returned_seq < 0 || cut->entries == 0) {
        set_error(l, "damaged settlement row with %s", peer);
        return LEDGER_E_CORRUPT;
    }
    status_t at = STATUS_PENDING;
    bool exists = status_at_cut(leg, direction, now, (uint64_t)open_seq,
                                sqlite3_column_type(row, 9) != SQLITE_NULL, (uint64_t)decided_seq,
                                sqlite3_column_type(row, 10) != SQLITE_NULL, (uint64_t)returned_seq,
                                sent_seq, applied_seq, &at);
    digest_sub(cut->digest, sqlite3_column_blob(row, 7));
    cut->entries--;
    if (exists) {
        uint8_t hash[DIGEST_BYTES];
        const char *original = (const char *)sqlite3_column_text(row, 11);
        const char *return_reason = (const char *)sqlite3_column_text(row, 12);
        const char *fx_id = (const char *)sqlite3_column_text(row, 13);
        entry_hash(l, peer, direction, uetr, original != NULL ? original : "",
                   return_reason != NULL ? return_reason : "", fx_id != NULL ? fx_id : "", leg,
                   amount, currency, status_name(at), at == now ? reason : "", hash);
        digest_add(cut->digest, hash);
        cut->entries++;
    }
    /* positions move the money's way: against the message for an acceptor's leg */
    direction_t money = fx_leg_against(leg)
                            ? (direction == DIRECTION_OUT ? DIRECTION_IN : DIRECTION_OUT)
                            : direction;
    __int128 delta =
        (__int128)(exists ? posted_of(money, at, amount) : 0) - posted_of(money, now, amount);
    if (delta == 0) {
        return LEDGER_OK;
    }
    ledger_cut_position_t *p = cut_position(cut, currency);
    if (p == NULL) {
        set_error(l, "settlement %s moved a position the accounts do not hold", uetr);
        return LEDGER_E_CORRUPT;
    }
    nets[p - cut->positions] += delta;
    return LEDGER_OK;
}

/* Takes back the net settlements (3.11.3) the creditor's answer decided above the cut: they
 * moved posted_net, and no settlement row says so. */
static ledger_err_t net_undo(ledger_t *l, const char *peer, uint64_t sent_seq, uint64_t applied_seq,
                             ledger_cut_t *cut, __int128 *nets)
{
    sqlite3_stmt *stmt = l->st.net_above_cut;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)sent_seq);
    sqlite3_bind_int64(stmt, 3, (int64_t)applied_seq);
    ledger_err_t rc = LEDGER_OK;
    int step;
    while (rc == LEDGER_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ledger_cut_position_t *p = cut_position(cut, ledger_column_text(stmt, 0));
        int64_t m = sqlite3_column_int64(stmt, 1);
        if (p == NULL) {
            set_error(l, "a net settlement moved a position the accounts do not hold");
            rc = LEDGER_E_CORRUPT;
            break;
        }
        /* the debtor's (direction 0) rose by m, the creditor's fell */
        nets[p - cut->positions] -= sqlite3_column_int(stmt, 2) == 0 ? m : -(__int128)m;
    }
    finish(stmt);
    return rc == LEDGER_OK && step != SQLITE_DONE ? storage_failure(l, "read net settlements") : rc;
}

ledger_err_t ledger_channel_at_cut(ledger_t *l, const char *peer, uint64_t sent_seq,
                                   uint64_t applied_seq, ledger_cut_t *out)
{
    assert(l != NULL && peer != NULL && out != NULL && l->mode == LEDGER_READ_WRITE);
    memset(out, 0, sizeof *out);
    if (sent_seq > CORRIDOR_SEQUENCE_MAX || applied_seq > CORRIDOR_SEQUENCE_MAX) {
        set_error(l, "a cut above 2^62");
        return LEDGER_E_STATE;
    }
    ledger_err_t rc = cut_start(l, peer, out);
    __int128 *nets = calloc(out->n_positions + 1, sizeof *nets);
    if (rc == LEDGER_OK && nets == NULL) {
        set_error(l, "out of memory");
        rc = LEDGER_E_STORAGE;
    }
    for (size_t i = 0; rc == LEDGER_OK && i < out->n_positions; i++) {
        nets[i] = out->positions[i].net_minor;
    }
    sqlite3_stmt *stmt = l->st.cut_touched;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)sent_seq);
    sqlite3_bind_int64(stmt, 3, (int64_t)applied_seq);
    sqlite3_bind_int64(stmt, 4, LEDGER_CUT_TOUCHED_MAX + 1); /* streamed: no more are read */
    int step = SQLITE_DONE;
    while (rc == LEDGER_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (++out->touched > LEDGER_CUT_TOUCHED_MAX) {
            set_error(l, "the cut lies more than %d settlements behind the channel",
                      LEDGER_CUT_TOUCHED_MAX);
            rc = LEDGER_E_STATE;
            break;
        }
        rc = cut_undo(l, peer, stmt, sent_seq, applied_seq, out, nets);
    }
    finish(stmt);
    if (rc == LEDGER_OK && step != SQLITE_DONE) {
        rc = storage_failure(l, "read the settlements above a cut");
    }
    if (rc == LEDGER_OK) {
        rc = net_undo(l, peer, sent_seq, applied_seq, out, nets);
    }
    size_t kept = 0; /* a currency netted to zero states nothing */
    for (size_t i = 0; rc == LEDGER_OK && i < out->n_positions; i++) {
        if (nets[i] < INT64_MIN || nets[i] > INT64_MAX) {
            set_error(l, "a position at the cut leaves the int64 range");
            rc = LEDGER_E_OVERFLOW;
        } else if (nets[i] != 0) {
            out->positions[kept] = out->positions[i];
            out->positions[kept++].net_minor = (int64_t)nets[i];
        }
    }
    free(nets);
    out->n_positions = kept;
    if (rc != LEDGER_OK) {
        ledger_cut_release(out);
    }
    return rc;
}

void ledger_cut_release(ledger_cut_t *cut)
{
    free(cut->positions);
    memset(cut, 0, sizeof *cut);
}

/* The running figures of one currency, wide (a new one when absent). */
typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    running_t r;
    bool overflow;
} running_currency_t;

static running_currency_t *running_find(running_currency_t *all, size_t *n, const char *currency)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(all[i].currency, currency) == 0) {
            return &all[i];
        }
    }
    if (*n == CYCLE_CURRENCIES_MAX + 1) {
        return NULL;
    }
    running_currency_t *c = &all[(*n)++];
    memset(c, 0, sizeof *c);
    snprintf(c->currency, sizeof c->currency, "%s", currency);
    return c;
}

/* Takes one settlement touched above the cut out of the running figures as its status then was
 * (PROTOCOL.md 3.11.1: an entry made final above the cut belongs to a later cycle). */
static ledger_err_t cycle_undo(ledger_t *l, const char *peer, sqlite3_stmt *row, uint64_t sent_seq,
                               uint64_t applied_seq, running_currency_t *all, size_t *n)
{
    direction_t direction =
        sqlite3_column_int(row, 1) == DIRECTION_IN ? DIRECTION_IN : DIRECTION_OUT;
    const char *uetr = ledger_column_text(row, 2);
    int64_t amount = sqlite3_column_int64(row, 3);
    const char *currency = ledger_column_text(row, 4);
    int status = sqlite3_column_int(row, 5);
    int64_t open_seq = sqlite3_column_int64(row, 8), decided_seq = sqlite3_column_int64(row, 9),
            returned_seq = sqlite3_column_int64(row, 10);
    int leg_column = sqlite3_column_int(row, 14);
    fx_leg_t leg = fx_leg_of_column(leg_column);
    if (status < STATUS_PENDING || status > STATUS_MAX ||
        sqlite3_column_bytes(row, 7) != DIGEST_BYTES || open_seq < 0 || decided_seq < 0 ||
        returned_seq < 0) {
        set_error(l, "damaged settlement row with %s", peer);
        return LEDGER_E_CORRUPT;
    }
    status_t now = (status_t)status, at = STATUS_PENDING;
    if (!status_final(now)) {
        return LEDGER_OK; /* in no cycle now, nor at the cut */
    }
    /* a cycle holds what its finality message places in it (3.11.1), wherever the opening lies:
     * a repair may import an entry whose opening (capped, 4.9) lies above a cut its decision is
     * within */
    bool exists = status_at_cut(leg, direction, now, 0, sqlite3_column_type(row, 9) != SQLITE_NULL,
                                (uint64_t)decided_seq, sqlite3_column_type(row, 10) != SQLITE_NULL,
                                (uint64_t)returned_seq, sent_seq, applied_seq, &at);
    if (exists && at == now) {
        return LEDGER_OK; /* final within the cut: this cycle's */
    }
    running_currency_t *c = running_find(all, n, currency);
    if (c == NULL) {
        set_error(l, "more than %d currencies in a cycle", CYCLE_CURRENCIES_MAX);
        return LEDGER_E_STATE;
    }
    direction_t money = fx_leg_against(leg)
                            ? (direction == DIRECTION_OUT ? DIRECTION_IN : DIRECTION_OUT)
                            : direction;
    running_add(&c->r, money, now, amount, sqlite3_column_blob(row, 7), -1);
    if (exists && status_final(at)) { /* final at the cut in another status: a repair's change */
        uint8_t hash[DIGEST_BYTES];
        entry_hash(l, peer, direction, uetr, ledger_column_text(row, 11),
                   ledger_column_text(row, 12), ledger_column_text(row, 13), leg, amount, currency,
                   status_name(at), "", hash);
        running_add(&c->r, money, at, amount, hash, 1);
    }
    return LEDGER_OK;
}

/* cycle_undo for every settlement touched above the cut, counted in *touched: LEDGER_E_STATE
 * beyond `limit` (LEDGER_CUT_TOUCHED_MAX for a close; a repair's rebuild reads what it must). */
static ledger_err_t cycle_undo_touched(ledger_t *l, const char *peer, uint64_t sent_seq,
                                       uint64_t applied_seq, running_currency_t *all, size_t *n,
                                       uint64_t *touched, uint64_t limit)
{
    ledger_err_t rc = LEDGER_OK;
    sqlite3_stmt *stmt = l->st.cut_touched;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int64(stmt, 2, (int64_t)sent_seq);
    sqlite3_bind_int64(stmt, 3, (int64_t)applied_seq);
    sqlite3_bind_int64(stmt, 4, limit >= INT64_MAX ? INT64_MAX : (int64_t)limit + 1);
    int step = SQLITE_DONE;
    while (rc == LEDGER_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (++*touched > limit) {
            set_error(l, "the cut lies more than %d settlements behind the channel",
                      LEDGER_CUT_TOUCHED_MAX);
            rc = LEDGER_E_STATE;
            break;
        }
        rc = cycle_undo(l, peer, stmt, sent_seq, applied_seq, all, n);
    }
    finish(stmt);
    return rc == LEDGER_OK && step != SQLITE_DONE
               ? storage_failure(l, "read the settlements above a cut")
               : rc;
}

ledger_err_t ledger_cycle_at_cut(ledger_t *l, const char *peer, uint64_t sent_seq,
                                 uint64_t applied_seq, ledger_cycle_figures_t *out)
{
    assert(l != NULL && peer != NULL && out != NULL && l->mode == LEDGER_READ_WRITE);
    memset(out, 0, sizeof *out);
    if (sent_seq > CORRIDOR_SEQUENCE_MAX || applied_seq > CORRIDOR_SEQUENCE_MAX) {
        set_error(l, "a cut above 2^62");
        return LEDGER_E_STATE;
    }
    running_currency_t *all = calloc(CYCLE_CURRENCIES_MAX + 1, sizeof *all);
    if (all == NULL) {
        set_error(l, "out of memory");
        return LEDGER_E_STORAGE;
    }
    size_t n = 0;
    ledger_err_t rc = LEDGER_OK;
    sqlite3_stmt *stmt = l->st.running_all;
    bind_text(stmt, 1, peer);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        running_currency_t *c = running_find(all, &n, ledger_column_text(stmt, 0));
        if (c == NULL || sqlite3_column_bytes(stmt, 4) != DIGEST_BYTES) {
            rc = c == NULL ? LEDGER_E_STATE : LEDGER_E_CORRUPT;
            set_error(l,
                      c == NULL ? "more than %d currencies in a cycle"
                                : "damaged running cycle row (%d)",
                      CYCLE_CURRENCIES_MAX);
            break;
        }
        c->r.paid = sqlite3_column_int64(stmt, 1);
        c->r.received = sqlite3_column_int64(stmt, 2);
        c->r.count = sqlite3_column_int64(stmt, 3);
        memcpy(c->r.digest, sqlite3_column_blob(stmt, 4), DIGEST_BYTES);
        c->overflow = sqlite3_column_int(stmt, 5) != 0;
    }
    finish(stmt);
    if (rc == LEDGER_OK && step != SQLITE_DONE) {
        rc = storage_failure(l, "read the running cycle");
    }
    if (rc == LEDGER_OK) {
        rc = cycle_undo_touched(l, peer, sent_seq, applied_seq, all, &n, &out->touched,
                                LEDGER_CUT_TOUCHED_MAX);
    }
    for (size_t i = 0; rc == LEDGER_OK && i < n; i++) {
        running_currency_t *c = &all[i];
        bool empty = c->r.count == 0 && c->r.paid == 0 && c->r.received == 0 &&
                     sodium_is_zero(c->r.digest, DIGEST_BYTES);
        if (empty) {
            continue;
        }
        if (c->r.count <= 0) { /* money or a digest with no entry: not what finals leave */
            set_error(l, "the running cycle in %s with %s is damaged", c->currency, peer);
            rc = LEDGER_E_STATE; /* no close until a person looks; the channel goes on */
        } else if (c->overflow || c->r.paid < 0 || c->r.paid > INT64_MAX || c->r.received < 0 ||
                   c->r.received > INT64_MAX || c->r.count < 0 || c->r.count > INT64_MAX) {
            set_error(l, "the cycle's figures in %s leave the int64 range", c->currency);
            rc = LEDGER_E_OVERFLOW;
        } else if (out->n == CYCLE_CURRENCIES_MAX) {
            set_error(l, "more than %d currencies in a cycle", CYCLE_CURRENCIES_MAX);
            rc = LEDGER_E_STATE;
        } else {
            ledger_cycle_figure_t *f = &out->f[out->n++];
            snprintf(f->currency, sizeof f->currency, "%s", c->currency);
            f->paid = (int64_t)c->r.paid;
            f->received = (int64_t)c->r.received;
            f->count = (uint64_t)c->r.count;
            memcpy(f->digest, c->r.digest, DIGEST_BYTES);
        }
    }
    free(all);
    /* in the statement's order: a currency only the undo met comes last */
    for (size_t i = 1; rc == LEDGER_OK && i < out->n; i++) {
        for (size_t j = i; j > 0 && strcmp(out->f[j - 1].currency, out->f[j].currency) > 0; j--) {
            ledger_cycle_figure_t t = out->f[j];
            out->f[j] = out->f[j - 1];
            out->f[j - 1] = t;
        }
    }
    return rc;
}

ledger_err_t ledger_cycle_running_rebuild(ledger_t *l, const char *peer, uint64_t sent_seq,
                                          uint64_t applied_seq)
{
    assert(l != NULL && peer != NULL && l->mode == LEDGER_READ_WRITE);
    if (sent_seq > CORRIDOR_SEQUENCE_MAX || applied_seq > CORRIDOR_SEQUENCE_MAX) {
        set_error(l, "a cut above 2^62");
        return LEDGER_E_STATE;
    }
    ledger_err_t rc = ledger_write_begin(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    running_currency_t *all = calloc(CYCLE_CURRENCIES_MAX + 1, sizeof *all);
    if (all == NULL) {
        set_error(l, "out of memory");
        return LEDGER_E_STORAGE;
    }
    /* from zero, cycle_undo leaves minus (now - at the cut) of every settlement touched above
     * the cut: the figures made final since, negated */
    size_t n = 0;
    uint64_t touched = 0;
    rc = cycle_undo_touched(l, peer, sent_seq, applied_seq, all, &n, &touched, UINT64_MAX);
    if (rc == LEDGER_OK) {
        sqlite3_stmt *del = NULL;
        if (sqlite3_prepare_v2(l->db, "DELETE FROM cycle_running WHERE peer = ?1", -1, &del,
                               NULL) != SQLITE_OK) {
            rc = storage_failure(l, "reset the running cycle");
        } else {
            bind_text(del, 1, peer);
            int done = sqlite3_step(del);
            sqlite3_finalize(del);
            rc = done == SQLITE_DONE ? LEDGER_OK : storage_failure(l, "reset the running cycle");
        }
    }
    for (size_t i = 0; rc == LEDGER_OK && i < n; i++) {
        running_t r = {
            .paid = -all[i].r.paid, .received = -all[i].r.received, .count = -all[i].r.count};
        digest_sub(r.digest, all[i].r.digest);
        bool overflow = r.paid > INT64_MAX || r.received > INT64_MAX || r.paid < INT64_MIN ||
                        r.received < INT64_MIN || r.count < INT64_MIN || r.count > INT64_MAX;
        sqlite3_stmt *put = l->st.running_put;
        bind_text(put, 1, peer);
        bind_text(put, 2, all[i].currency);
        sqlite3_bind_int64(put, 3, overflow ? 0 : (int64_t)r.paid);
        sqlite3_bind_int64(put, 4, overflow ? 0 : (int64_t)r.received);
        sqlite3_bind_int64(put, 5, overflow ? 0 : (int64_t)r.count);
        sqlite3_bind_blob(put, 6, r.digest, DIGEST_BYTES, SQLITE_STATIC);
        sqlite3_bind_int(put, 7, overflow ? 1 : 0);
        if (step_done(put) != SQLITE_OK) {
            rc = storage_failure(l, "move the running cycle");
        }
    }
    free(all);
    return rc;
}

/* ---- key history (schema 6; the CURVE key switch, schema 7) ---------------------------------- */

/* A read failed: a writer inside its transaction stops, as on any storage error; a reader (or
 * a writer between transactions) only reports it. */
static ledger_err_t read_failure(ledger_t *l, const char *what)
{
    if (l->in_txn && l->mode == LEDGER_READ_WRITE) {
        return storage_failure(l, what);
    }
    return ledger_read_failed(l, what);
}

static ledger_err_t out_of_memory(ledger_t *l, const char *what)
{
    ledger_err_t rc = read_failure(l, what);
    set_error(l, "%s: out of memory", what);
    return rc;
}

static bool key_source_known(const char *source)
{
    return strcmp(source, "card") == 0 || strcmp(source, "announced") == 0 ||
           strcmp(source, "replaced") == 0;
}

/* What is wrong with a key record that ledger_key_add could not store (NULL: nothing); the
 * same rules bound what is read back. */
static const char *key_wrong(const key_record_t *k)
{
    if (memchr(k->peer, '\0', sizeof k->peer) == NULL || node_code_check(k->peer) != VALID_OK) {
        return "the peer is not a node code";
    }
    if (k->side != KEY_SIDE_OURS && k->side != KEY_SIDE_THEIRS) {
        return "the side is neither ours nor theirs";
    }
    if (strnlen(k->curve_public, sizeof k->curve_public) != IDENTITY_CURVE_KEY_CHARS) {
        return "the CURVE key is not 40 characters";
    }
    if (k->first_seq < 1 || k->first_seq > CORRIDOR_SEQUENCE_MAX) {
        return "first_seq is not 1 to 2^62";
    }
    /* a key revoked from its first sequence or before signs nothing: last_seq = first_seq - 1 */
    bool empty = k->first_seq >= 2 && k->last_seq == k->first_seq - 1 && k->revoked_from >= 1 &&
                 k->revoked_from <= k->first_seq;
    if (k->last_seq != 0 && !empty &&
        (k->last_seq < k->first_seq || k->last_seq > CORRIDOR_SEQUENCE_MAX)) {
        return "last_seq is neither 0 nor first_seq to 2^62 (nor first_seq - 1, revoked there)";
    }
    if (k->revoked_from > CORRIDOR_SEQUENCE_MAX) {
        return "revoked_from is above 2^62";
    }
    if (k->switch_seq != 0 &&
        (k->switch_seq < k->first_seq || k->switch_seq > CORRIDOR_SEQUENCE_MAX ||
         (k->last_seq != 0 && !empty && k->switch_seq > k->last_seq))) {
        return "switch_seq is neither 0 nor in the key's range (first_seq to last_seq, or 2^62)";
    }
    if (k->switch_ms < 0) {
        return "switch_ms is negative";
    }
    if (memchr(k->source, '\0', sizeof k->source) == NULL || !key_source_known(k->source)) {
        return "the source is not card, announced or replaced";
    }
    bool announced = strcmp(k->source, "announced") == 0;
    if (announced != (k->evidence_len > 0) || (k->evidence_len > 0 && k->evidence == NULL)) {
        return "an announced key has evidence, and only an announced key";
    }
    if (k->evidence_len > CORRIDOR_WIRE_BYTES_MAX) {
        return "the evidence is larger than a message";
    }
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(k->sign_public, key_id);
    if (memcmp(key_id, k->key_id, sizeof key_id) != 0) {
        return "key_id is not the key id of sign_public";
    }
    return NULL;
}

/* An integer column that must be an integer (an edited file may hold anything). */
static bool column_integer(sqlite3_stmt *stmt, int col, int64_t *v)
{
    *v = sqlite3_column_int64(stmt, col);
    return sqlite3_column_type(stmt, col) == SQLITE_INTEGER;
}

/* Copies blob column `col` into `out` if it is exactly `size` bytes. */
static bool column_exact(sqlite3_stmt *stmt, int col, void *out, size_t size)
{
    const void *blob = sqlite3_column_blob(stmt, col);
    if (blob == NULL || (size_t)sqlite3_column_bytes(stmt, col) != size) {
        return false;
    }
    memcpy(out, blob, size);
    return true;
}

/* Reads a row of KEY_COLUMNS into *k, its evidence a malloc'd copy (the caller frees it, also
 * on error). A row that ledger_key_add cannot have written is LEDGER_E_CORRUPT. */
static ledger_err_t key_read(ledger_t *l, sqlite3_stmt *stmt, key_record_t *k)
{
    memset(k, 0, sizeof *k);
    const char *peer = ledger_column_text(stmt, 0);
    const char *curve = ledger_column_text(stmt, 5);
    size_t curve_len = (size_t)sqlite3_column_bytes(stmt, 5);
    const char *source = ledger_column_text(stmt, 9);
    int64_t side = -1, first = 0, last = 0, revoked = 0, switch_seq = 0, switch_ms = 0;
    bool ok = strlen(peer) < sizeof k->peer && curve_len == strlen(curve) &&
              curve_len < sizeof k->curve_public && strlen(source) < sizeof k->source &&
              column_integer(stmt, 1, &side) &&
              (side == KEY_SIDE_OURS || side == KEY_SIDE_THEIRS) &&
              column_integer(stmt, 6, &first) && first >= 0 && column_integer(stmt, 7, &last) &&
              last >= 0 && column_integer(stmt, 8, &revoked) && revoked >= 0 &&
              column_integer(stmt, 12, &switch_seq) && switch_seq >= 0 &&
              column_integer(stmt, 13, &switch_ms) &&
              column_exact(stmt, 2, k->key_id, sizeof k->key_id) &&
              column_exact(stmt, 3, k->sign_public, sizeof k->sign_public) &&
              column_exact(stmt, 4, k->box_public, sizeof k->box_public) &&
              (size_t)sqlite3_column_bytes(stmt, 11) <= CORRIDOR_WIRE_BYTES_MAX;
    if (!ok) {
        set_error(l, "damaged key row of %.*s (a field of the wrong type or size)",
                  CORRIDOR_NAME_LEN_MAX, peer);
        return LEDGER_E_CORRUPT;
    }
    memcpy(k->peer, peer, strlen(peer) + 1);
    k->side = side == KEY_SIDE_OURS ? KEY_SIDE_OURS : KEY_SIDE_THEIRS;
    memcpy(k->curve_public, curve, curve_len + 1);
    k->first_seq = (uint64_t)first;
    k->last_seq = (uint64_t)last;
    k->revoked_from = (uint64_t)revoked;
    k->switch_seq = (uint64_t)switch_seq;
    k->switch_ms = switch_ms; /* key_wrong refuses a negative one */
    memcpy(k->source, source, strlen(source) + 1);
    k->created_ms = sqlite3_column_int64(stmt, 10);
    k->evidence = ledger_copy_blob(stmt, 11, &k->evidence_len);
    if (k->evidence == NULL && sqlite3_column_bytes(stmt, 11) > 0) {
        return out_of_memory(l, "read a key's evidence");
    }
    const char *wrong = key_wrong(k);
    if (wrong != NULL) {
        set_error(l, "damaged key row of %s: %s", k->peer, wrong);
        return LEDGER_E_CORRUPT;
    }
    return LEDGER_OK;
}

/* The key the caller gives equals the stored one in what the caller gives (ledger_key_add): not
 * its range, revocation or switch, which the ledger sets later. */
static bool key_same(const key_record_t *a, const key_record_t *b)
{
    return memcmp(a->sign_public, b->sign_public, sizeof a->sign_public) == 0 &&
           memcmp(a->box_public, b->box_public, sizeof a->box_public) == 0 &&
           strcmp(a->curve_public, b->curve_public) == 0 && a->first_seq == b->first_seq &&
           strcmp(a->source, b->source) == 0 && a->evidence_len == b->evidence_len &&
           (a->evidence_len == 0 || memcmp(a->evidence, b->evidence, a->evidence_len) == 0);
}

static const char *key_side_name(key_side_t side)
{
    return side == KEY_SIDE_OURS ? "our" : "the peer's";
}

ledger_err_t ledger_key_add(ledger_t *l, const key_record_t *k)
{
    assert(l != NULL && k != NULL);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    const char *wrong = key_wrong(k);
    if (wrong == NULL && (k->last_seq != 0 || k->revoked_from != 0)) {
        wrong = "a key is recorded open and not revoked (last_seq and revoked_from 0)";
    }
    if (wrong == NULL && (k->switch_seq != 0 || k->switch_ms != 0)) {
        wrong = "a key is recorded before its switch (switch_seq and switch_ms 0)";
    }
    if (wrong != NULL) {
        set_error(l, "key of %.*s: %s", CORRIDOR_NAME_LEN_MAX, k->peer, wrong);
        return LEDGER_E_STATE;
    }
    /* the same key again: nothing if it says the same, else a conflict */
    sqlite3_stmt *stmt = l->st.key_find;
    bind_text(stmt, 1, k->peer);
    sqlite3_bind_int(stmt, 2, (int)k->side);
    sqlite3_bind_blob(stmt, 3, k->key_id, sizeof k->key_id, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    key_record_t stored;
    memset(&stored, 0, sizeof stored);
    if (step == SQLITE_ROW) {
        rc = key_read(l, stmt, &stored);
    }
    finish(stmt);
    bool same = rc == LEDGER_OK && step == SQLITE_ROW && key_same(k, &stored);
    free(stored.evidence);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return storage_failure(l, "find the key");
    }
    if (step == SQLITE_ROW) {
        if (!same) {
            set_error(l, "%s key of %s from %llu is recorded with other content",
                      key_side_name(k->side), k->peer, (unsigned long long)k->first_seq);
            return LEDGER_E_CONFLICT;
        }
        return LEDGER_OK;
    }
    /* the side's newest key: the new one begins after it, and closes it */
    stmt = l->st.key_latest;
    bind_text(stmt, 1, k->peer);
    sqlite3_bind_int(stmt, 2, (int)k->side);
    step = sqlite3_step(stmt);
    uint8_t latest_id[IDENTITY_KEY_ID_BYTES];
    int64_t latest_first = 0, latest_last = 0, latest_revoked = 0, latest_switch = 0;
    bool latest_ok = step == SQLITE_ROW && column_exact(stmt, 0, latest_id, sizeof latest_id) &&
                     column_integer(stmt, 1, &latest_first) && latest_first >= 1 &&
                     column_integer(stmt, 2, &latest_last) && latest_last == 0 &&
                     column_integer(stmt, 3, &latest_revoked) && latest_revoked >= 0 &&
                     column_integer(stmt, 4, &latest_switch) && latest_switch >= 0;
    /* an operator's replacement from the open key's first sequence: that key, revoked there
     * already (ledger_key_revoke), is closed with an empty range */
    bool replaces_unused = latest_ok && strcmp(k->source, "replaced") == 0 && latest_first >= 2 &&
                           k->first_seq == (uint64_t)latest_first && latest_revoked > 0 &&
                           latest_revoked <= latest_first;
    finish(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return storage_failure(l, "find the open key");
    }
    if (step == SQLITE_DONE) {
        latest_first = 0; /* the side's first key */
    } else if (!latest_ok) {
        set_error(l, "%s newest key of %s is damaged or closed", key_side_name(k->side), k->peer);
        return LEDGER_E_CORRUPT;
    } else if (k->first_seq <= (uint64_t)latest_first && !replaces_unused) {
        set_error(l, "%s key of %s from %llu: the open key signs from %llu", key_side_name(k->side),
                  k->peer, (unsigned long long)k->first_seq, (unsigned long long)latest_first);
        return LEDGER_E_STATE;
    } else if (!replaces_unused && k->first_seq <= (uint64_t)latest_switch) {
        /* the open key's range keeps its switch: closed below it, the row would read damaged */
        set_error(l, "%s key of %s from %llu: the open key switched its CURVE key at %llu",
                  key_side_name(k->side), k->peer, (unsigned long long)k->first_seq,
                  (unsigned long long)latest_switch);
        return LEDGER_E_STATE;
    }
    if (latest_first > 0) {
        stmt = l->st.key_close;
        bind_text(stmt, 1, k->peer);
        sqlite3_bind_int(stmt, 2, (int)k->side);
        sqlite3_bind_blob(stmt, 3, latest_id, sizeof latest_id, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, (int64_t)(k->first_seq - 1));
        if ((rc = update_row(l, stmt, "close the key", ROW_MUST_EXIST, k->peer, NULL)) !=
            LEDGER_OK) {
            return rc;
        }
    }
    stmt = l->st.key_insert;
    bind_text(stmt, 1, k->peer);
    sqlite3_bind_int(stmt, 2, (int)k->side);
    sqlite3_bind_blob(stmt, 3, k->key_id, sizeof k->key_id, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 4, k->sign_public, sizeof k->sign_public, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 5, k->box_public, sizeof k->box_public, SQLITE_STATIC);
    bind_text(stmt, 6, k->curve_public);
    sqlite3_bind_int64(stmt, 7, (int64_t)k->first_seq);
    bind_text(stmt, 8, k->source);
    sqlite3_bind_int64(stmt, 9, l->clock_ms);
    if (k->evidence_len > 0) {
        sqlite3_bind_blob(stmt, 10, k->evidence, (int)k->evidence_len, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(stmt, 10);
    }
    return step_done(stmt) == SQLITE_OK ? LEDGER_OK : storage_failure(l, "record the key");
}

ledger_err_t ledger_key_revoke(ledger_t *l, const char *peer, key_side_t side, uint64_t from_seq,
                               const uint8_t *keep)
{
    assert(l != NULL && peer != NULL);
    assert(side == KEY_SIDE_OURS || side == KEY_SIDE_THEIRS);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (from_seq < 1 || from_seq > CORRIDOR_SEQUENCE_MAX) {
        set_error(l, "revoke %s keys of %s from %llu: not a sequence number", key_side_name(side),
                  peer, (unsigned long long)from_seq);
        return LEDGER_E_STATE;
    }
    sqlite3_stmt *stmt = l->st.key_revoke;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int(stmt, 2, (int)side);
    sqlite3_bind_int64(stmt, 3, (int64_t)from_seq);
    if (keep != NULL) {
        sqlite3_bind_blob(stmt, 4, keep, IDENTITY_KEY_ID_BYTES, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(stmt, 4);
    }
    return step_done(stmt) == SQLITE_OK ? LEDGER_OK : storage_failure(l, "revoke keys");
}

ledger_err_t ledger_key_set_switch(ledger_t *l, const char *peer, key_side_t side,
                                   const uint8_t key_id[static IDENTITY_KEY_ID_BYTES],
                                   uint64_t switch_seq, int64_t switch_ms)
{
    assert(l != NULL && peer != NULL && key_id != NULL);
    assert(side == KEY_SIDE_OURS || side == KEY_SIDE_THEIRS);
    ledger_err_t rc = begin_write(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = l->st.key_find;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int(stmt, 2, (int)side);
    sqlite3_bind_blob(stmt, 3, key_id, IDENTITY_KEY_ID_BYTES, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    key_record_t k;
    memset(&k, 0, sizeof k);
    if (step == SQLITE_ROW) {
        rc = key_read(l, stmt, &k);
    }
    finish(stmt);
    free(k.evidence);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return storage_failure(l, "find the key");
    }
    const char *wrong = NULL;
    if (step == SQLITE_DONE) {
        wrong = "no such key";
    } else if (k.last_seq != 0) {
        wrong = "the key is not open (a closed key does not switch)";
    } else if (switch_seq != 0 &&
               (switch_seq < k.first_seq || switch_seq > CORRIDOR_SEQUENCE_MAX)) {
        wrong = "switch_seq is neither 0 nor from the key's first_seq to 2^62";
    } else if (switch_ms < 0) {
        wrong = "switch_ms is negative";
    } else if (k.switch_seq != 0 && (switch_seq != k.switch_seq || switch_ms != k.switch_ms)) {
        wrong = "the key switched already, at another sequence or with another switch_ms";
    }
    if (wrong != NULL) {
        set_error(l, "switch of %s key of %.*s to sequence %llu, %lld ms: %s", key_side_name(side),
                  CORRIDOR_NAME_LEN_MAX, peer, (unsigned long long)switch_seq, (long long)switch_ms,
                  wrong);
        return LEDGER_E_STATE;
    }
    if (k.switch_seq == switch_seq && k.switch_ms == switch_ms) {
        return LEDGER_OK; /* the same again */
    }
    stmt = l->st.key_switch;
    bind_text(stmt, 1, peer);
    sqlite3_bind_int(stmt, 2, (int)side);
    sqlite3_bind_blob(stmt, 3, key_id, IDENTITY_KEY_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, (int64_t)switch_seq);
    sqlite3_bind_int64(stmt, 5, switch_ms);
    return update_row(l, stmt, "record the key's switch", ROW_MUST_EXIST, peer, NULL);
}

ledger_err_t ledger_keys(ledger_t *l, const char *peer,
                         void (*each)(const key_record_t *k, void *arg), void *arg)
{
    assert(l != NULL && each != NULL);
    sqlite3_stmt *stmt = l->st.keys_list;
    if (stmt == NULL) {
        return LEDGER_OK; /* a reader of a ledger before schema 6: no key recorded */
    }
    if (peer != NULL) {
        bind_text(stmt, 1, peer);
    } else {
        sqlite3_bind_null(stmt, 1);
    }
    ledger_err_t rc = LEDGER_OK;
    int step = SQLITE_DONE;
    while (rc == LEDGER_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        key_record_t k;
        rc = key_read(l, stmt, &k);
        if (rc == LEDGER_OK) {
            each(&k, arg);
        }
        free(k.evidence);
    }
    finish(stmt);
    if (rc == LEDGER_OK && step != SQLITE_DONE) {
        rc = read_failure(l, "read the keys");
    }
    return rc;
}
