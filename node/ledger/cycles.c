/* Settlement cycles and net settlements in the books (proto/PROTOCOL.md 3.11.4). None of this is
 * on the path of a payment: statements are prepared per call. */
#include "cycles.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_db.h"

/* One figure as own_figures keeps it: currency (4 bytes, NUL padded), paid, received, count
 * (8 bytes each, little-endian), digest. */
#define FIGURE_BYTES (4 + 3 * 8 + DIGEST_BYTES)

const char *cycle_state_name(cycle_state_t state)
{
    switch (state) {
    case CYCLE_CLOSING:
        return "closing";
    case CYCLE_CLOSED:
        return "closed";
    case CYCLE_DISPUTED:
        return "disputed";
    }
    return "unknown";
}

void ledger_cycle_views(const ledger_cycle_figures_t *f, cycle_view_t views[CYCLE_CURRENCIES_MAX],
                        uint8_t digest[static DIGEST_BYTES], uint64_t *entries)
{
    memset(digest, 0, DIGEST_BYTES);
    *entries = 0;
    for (size_t i = 0; i < f->n; i++) {
        snprintf(views[i].currency, sizeof views[i].currency, "%s", f->f[i].currency);
        views[i].paid = f->f[i].paid;
        views[i].received = f->f[i].received;
        views[i].count = f->f[i].count;
        digest_add(digest, f->f[i].digest);
        *entries += f->f[i].count;
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static int prepare(ledger_t *l, const char *sql, sqlite3_stmt **stmt)
{
    return sqlite3_prepare_v2(ledger_db(l), sql, -1, stmt, NULL);
}

/* Runs a write statement that must succeed. */
static ledger_err_t finish_write(ledger_t *l, sqlite3_stmt *stmt, const char *what)
{
    int step = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : ledger_read_failed(l, what);
}

ledger_err_t ledger_cycle_running(ledger_t *l, const char *peer,
                                  void (*fn)(const ledger_cycle_figure_t *f, void *arg), void *arg)
{
    if (ledger_schema_version(l) < 11) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT currency, paid, received, count, digest FROM cycle_running"
                " WHERE peer = ?1 AND count <> 0 ORDER BY currency",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read the running cycle");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ledger_cycle_figure_t f = {0};
        snprintf(f.currency, sizeof f.currency, "%s", ledger_column_text(stmt, 0));
        f.paid = sqlite3_column_int64(stmt, 1);
        f.received = sqlite3_column_int64(stmt, 2);
        f.count = (uint64_t)sqlite3_column_int64(stmt, 3);
        if (sqlite3_column_bytes(stmt, 4) == DIGEST_BYTES) {
            memcpy(f.digest, sqlite3_column_blob(stmt, 4), DIGEST_BYTES);
        }
        fn(&f, arg);
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : ledger_read_failed(l, "read the running cycle");
}

void ledger_cycle_release(ledger_cycle_t *c)
{
    free(c->statement);
    free(c->peer_statement);
    memset(c, 0, sizeof *c);
}

#define CYCLE_COLUMNS                                                                              \
    "peer, cycle, state, proposer, own_sent, peer_sent, statement, own_signature,"                 \
    " peer_statement, peer_signature, error, created_ms, closed_ms"

static bool read_cycle(sqlite3_stmt *stmt, ledger_cycle_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->peer, sizeof c->peer, "%s", ledger_column_text(stmt, 0));
    c->cycle = (uint64_t)sqlite3_column_int64(stmt, 1);
    int state = sqlite3_column_int(stmt, 2);
    c->state = state == CYCLE_CLOSED     ? CYCLE_CLOSED
               : state == CYCLE_DISPUTED ? CYCLE_DISPUTED
                                         : CYCLE_CLOSING;
    c->ours = sqlite3_column_int(stmt, 3) != 0;
    c->own_sent = (uint64_t)sqlite3_column_int64(stmt, 4);
    c->peer_sent = (uint64_t)sqlite3_column_int64(stmt, 5);
    c->statement = ledger_copy_blob(stmt, 6, &c->statement_len);
    if (sqlite3_column_bytes(stmt, 7) == crypto_sign_BYTES) {
        memcpy(c->own_signature, sqlite3_column_blob(stmt, 7), crypto_sign_BYTES);
    }
    c->peer_statement = ledger_copy_blob(stmt, 8, &c->peer_statement_len);
    c->has_peer_signature = sqlite3_column_bytes(stmt, 9) == crypto_sign_BYTES;
    if (c->has_peer_signature) {
        memcpy(c->peer_signature, sqlite3_column_blob(stmt, 9), crypto_sign_BYTES);
    }
    snprintf(c->error, sizeof c->error, "%s", ledger_column_text(stmt, 10));
    c->created_ms = sqlite3_column_int64(stmt, 11);
    c->closed_ms = sqlite3_column_int64(stmt, 12);
    return c->statement != NULL &&
           (sqlite3_column_bytes(stmt, 8) == 0 || c->peer_statement != NULL);
}

/* Reads one cycle by `sql` with peer ?1 (and cycle ?2 when not 0). */
static ledger_err_t cycle_one(ledger_t *l, const char *sql, const char *peer, uint64_t cycle,
                              ledger_cycle_t *out, bool *found)
{
    memset(out, 0, sizeof *out);
    *found = false;
    if (ledger_schema_version(l) < 11) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l, sql, &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read cycles");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    if (cycle != 0) {
        sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
    }
    int step = sqlite3_step(stmt);
    ledger_err_t rc = LEDGER_OK;
    if (step == SQLITE_ROW) {
        *found = true;
        if (!read_cycle(stmt, out)) {
            ledger_cycle_release(out);
            *found = false;
            rc = ledger_fail(l, LEDGER_E_STORAGE, "out of memory reading a cycle");
        }
    } else if (step != SQLITE_DONE) {
        rc = ledger_read_failed(l, "read cycles");
    }
    sqlite3_finalize(stmt);
    return rc;
}

ledger_err_t ledger_cycle_latest(ledger_t *l, const char *peer, ledger_cycle_t *out, bool *found)
{
    return cycle_one(l,
                     "SELECT " CYCLE_COLUMNS " FROM cycles WHERE peer = ?1"
                     " ORDER BY cycle DESC LIMIT 1",
                     peer, 0, out, found);
}

ledger_err_t ledger_cycle_get(ledger_t *l, const char *peer, uint64_t cycle, ledger_cycle_t *out,
                              bool *found)
{
    assert(cycle != 0);
    return cycle_one(l, "SELECT " CYCLE_COLUMNS " FROM cycles WHERE peer = ?1 AND cycle = ?2", peer,
                     cycle, out, found);
}

ledger_err_t ledger_cycles(ledger_t *l, const char *peer,
                           void (*fn)(const ledger_cycle_t *c, void *arg), void *arg)
{
    if (ledger_schema_version(l) < 11) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT " CYCLE_COLUMNS " FROM cycles WHERE ?1 IS NULL OR peer = ?1"
                " ORDER BY peer, cycle",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read cycles");
    }
    if (peer != NULL) {
        sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    }
    int step;
    ledger_err_t rc = LEDGER_OK;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ledger_cycle_t c;
        bool ok = read_cycle(stmt, &c);
        if (ok) {
            fn(&c, arg);
        }
        ledger_cycle_release(&c);
        if (!ok) {
            rc = ledger_fail(l, LEDGER_E_STORAGE, "out of memory reading a cycle");
            break;
        }
    }
    sqlite3_finalize(stmt);
    return rc == LEDGER_OK && step != SQLITE_DONE ? ledger_read_failed(l, "read cycles") : rc;
}

ledger_err_t ledger_cycles_from(ledger_t *l, const char *peer, uint64_t from, size_t limit,
                                void (*fn)(const ledger_cycle_t *c, void *arg), void *arg,
                                bool *more)
{
    *more = false;
    if (ledger_schema_version(l) < 11 || limit == 0) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT " CYCLE_COLUMNS " FROM cycles WHERE peer = ?1 AND cycle >= ?2"
                " ORDER BY cycle LIMIT ?3",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read cycles");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, from > INT64_MAX ? INT64_MAX : (int64_t)from);
    sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
    int step;
    size_t n = 0;
    ledger_err_t rc = LEDGER_OK;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n++ == limit) {
            *more = true;
            step = SQLITE_DONE;
            break;
        }
        ledger_cycle_t c;
        bool ok = read_cycle(stmt, &c);
        if (ok) {
            fn(&c, arg);
        }
        ledger_cycle_release(&c);
        if (!ok) {
            rc = ledger_fail(l, LEDGER_E_STORAGE, "out of memory reading a cycle");
            break;
        }
    }
    sqlite3_finalize(stmt);
    return rc == LEDGER_OK && step != SQLITE_DONE ? ledger_read_failed(l, "read cycles") : rc;
}

ledger_err_t ledger_cycle_propose(ledger_t *l, const char *peer, uint64_t cycle, bool ours,
                                  uint64_t own_sent, uint64_t peer_sent, const uint8_t *statement,
                                  size_t statement_len,
                                  const uint8_t own_signature[static crypto_sign_BYTES],
                                  const ledger_cycle_figures_t *figures)
{
    ledger_err_t rc = ledger_write_begin(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    size_t len = figures->n * FIGURE_BYTES;
    uint8_t *packed = calloc(len > 0 ? len : 1, 1);
    if (packed == NULL) {
        return ledger_fail(l, LEDGER_E_STORAGE, "out of memory");
    }
    for (size_t i = 0; i < figures->n; i++) {
        uint8_t *p = packed + i * FIGURE_BYTES;
        memcpy(p, figures->f[i].currency, strlen(figures->f[i].currency));
        put_u64(p + 4, (uint64_t)figures->f[i].paid);
        put_u64(p + 12, (uint64_t)figures->f[i].received);
        put_u64(p + 20, figures->f[i].count);
        memcpy(p + 28, figures->f[i].digest, DIGEST_BYTES);
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "INSERT OR REPLACE INTO cycles(peer, cycle, state, proposer, own_sent, peer_sent,"
                " statement, own_signature, own_figures, created_ms) VALUES(?1,?2,1,?3,?4,?5,?6,"
                "?7,?8,?9)",
                &stmt) != SQLITE_OK) {
        free(packed);
        return ledger_read_failed(l, "store a cycle");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
    sqlite3_bind_int(stmt, 3, ours ? 1 : 0);
    sqlite3_bind_int64(stmt, 4, (int64_t)own_sent);
    sqlite3_bind_int64(stmt, 5, (int64_t)peer_sent);
    sqlite3_bind_blob(stmt, 6, statement, (int)statement_len, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 7, own_signature, crypto_sign_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 8, packed, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, ledger_clock(l));
    rc = finish_write(l, stmt, "store a cycle");
    free(packed);
    return rc;
}

/* The running figures lose a closed cycle's (own_figures of the row). */
static ledger_err_t running_subtract(ledger_t *l, const char *peer, const uint8_t *packed,
                                     size_t len)
{
    if (len % FIGURE_BYTES != 0) {
        return ledger_fail(l, LEDGER_E_CORRUPT, "damaged figures of a cycle with %s", peer);
    }
    ledger_err_t rc = LEDGER_OK;
    for (size_t i = 0; rc == LEDGER_OK && i < len / FIGURE_BYTES; i++) {
        const uint8_t *p = packed + i * FIGURE_BYTES;
        char currency[CORRIDOR_CURRENCY_LEN + 1] = {0};
        memcpy(currency, p, CORRIDOR_CURRENCY_LEN);
        sqlite3_stmt *get = NULL, *put = NULL;
        if (prepare(l,
                    "SELECT paid, received, count, digest FROM cycle_running"
                    " WHERE peer = ?1 AND currency = ?2",
                    &get) != SQLITE_OK ||
            prepare(l,
                    "UPDATE cycle_running SET paid = ?3, received = ?4, count = ?5, digest = ?6"
                    " WHERE peer = ?1 AND currency = ?2",
                    &put) != SQLITE_OK) {
            sqlite3_finalize(get);
            return ledger_read_failed(l, "move the running cycle");
        }
        sqlite3_bind_text(get, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(get, 2, currency, -1, SQLITE_STATIC);
        int step = sqlite3_step(get);
        if (step != SQLITE_ROW || sqlite3_column_bytes(get, 3) != DIGEST_BYTES) {
            rc = step == SQLITE_ROW || step == SQLITE_DONE
                     ? ledger_fail(l, LEDGER_E_CORRUPT, "no running cycle in %s with %s", currency,
                                   peer)
                     : ledger_read_failed(l, "read the running cycle");
        } else {
            uint8_t digest[DIGEST_BYTES];
            memcpy(digest, sqlite3_column_blob(get, 3), DIGEST_BYTES);
            digest_sub(digest, p + 28);
            int64_t paid, received, count;
            if (__builtin_sub_overflow(sqlite3_column_int64(get, 0), (int64_t)get_u64(p + 4),
                                       &paid) ||
                __builtin_sub_overflow(sqlite3_column_int64(get, 1), (int64_t)get_u64(p + 12),
                                       &received) ||
                __builtin_sub_overflow(sqlite3_column_int64(get, 2), (int64_t)get_u64(p + 20),
                                       &count)) {
                sqlite3_finalize(get);
                sqlite3_finalize(put);
                return ledger_fail(l, LEDGER_E_CORRUPT, "damaged running cycle in %s with %s",
                                   currency, peer);
            }
            sqlite3_bind_text(put, 1, peer, -1, SQLITE_STATIC);
            sqlite3_bind_text(put, 2, currency, -1, SQLITE_STATIC);
            sqlite3_bind_int64(put, 3, paid);
            sqlite3_bind_int64(put, 4, received);
            sqlite3_bind_int64(put, 5, count);
            sqlite3_bind_blob(put, 6, digest, DIGEST_BYTES, SQLITE_TRANSIENT);
            sqlite3_finalize(get);
            get = NULL;
            rc = finish_write(l, put, "move the running cycle");
            put = NULL;
        }
        sqlite3_finalize(get);
        sqlite3_finalize(put);
    }
    return rc;
}

ledger_err_t ledger_cycle_finish(ledger_t *l, const char *peer, uint64_t cycle,
                                 const uint8_t *peer_statement, size_t peer_statement_len,
                                 const uint8_t peer_signature[static crypto_sign_BYTES],
                                 const char *error)
{
    ledger_err_t rc = ledger_write_begin(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT own_figures, statement, own_signature, state FROM cycles"
                " WHERE peer = ?1 AND cycle = ?2",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read a cycle");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
    size_t figures_len = 0, statement_len = 0;
    uint8_t *figures = NULL, *evidence = NULL;
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW || sqlite3_column_int(stmt, 3) != CYCLE_CLOSING ||
        sqlite3_column_bytes(stmt, 2) != crypto_sign_BYTES) {
        rc = step == SQLITE_ROW || step == SQLITE_DONE
                 ? ledger_fail(l, LEDGER_E_STATE, "cycle %llu with %s is not closing",
                               (unsigned long long)cycle, peer)
                 : ledger_read_failed(l, "read a cycle");
    } else {
        figures = ledger_copy_blob(stmt, 0, &figures_len);
        statement_len = (size_t)sqlite3_column_bytes(stmt, 1);
        evidence = malloc(statement_len + 2 * crypto_sign_BYTES);
        if (evidence == NULL || (figures == NULL && sqlite3_column_bytes(stmt, 0) > 0)) {
            rc = ledger_fail(l, LEDGER_E_STORAGE, "out of memory");
        } else {
            memcpy(evidence, sqlite3_column_blob(stmt, 1), statement_len);
            memcpy(evidence + statement_len, sqlite3_column_blob(stmt, 2), crypto_sign_BYTES);
            memcpy(evidence + statement_len + crypto_sign_BYTES, peer_signature, crypto_sign_BYTES);
        }
    }
    sqlite3_finalize(stmt);
    if (rc == LEDGER_OK) {
        rc = running_subtract(l, peer, figures, figures_len);
    }
    if (rc == LEDGER_OK) {
        if (prepare(l,
                    "UPDATE cycles SET state = ?3, peer_statement = ?4, peer_signature = ?5,"
                    " error = ?6, closed_ms = ?7 WHERE peer = ?1 AND cycle = ?2",
                    &stmt) != SQLITE_OK) {
            rc = ledger_read_failed(l, "store a cycle");
        } else {
            sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
            sqlite3_bind_int(stmt, 3, peer_statement == NULL ? CYCLE_CLOSED : CYCLE_DISPUTED);
            if (peer_statement != NULL) {
                sqlite3_bind_blob(stmt, 4, peer_statement, (int)peer_statement_len, SQLITE_STATIC);
            }
            sqlite3_bind_blob(stmt, 5, peer_signature, crypto_sign_BYTES, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 6, error != NULL ? error : "", -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 7, ledger_clock(l));
            rc = finish_write(l, stmt, "store a cycle");
        }
    }
    if (rc == LEDGER_OK && peer_statement == NULL) {
        char number[24];
        snprintf(number, sizeof number, "%llu", (unsigned long long)cycle);
        rc = ledger_append_free_row(l, peer, ENTRY_CYCLE, number, "", 0, NULL, evidence,
                                    statement_len + 2 * crypto_sign_BYTES);
    }
    free(figures);
    free(evidence);
    return rc;
}

ledger_err_t ledger_cycle_import(ledger_t *l, const char *peer, uint64_t cycle, bool ours,
                                 uint64_t own_sent, uint64_t peer_sent, const uint8_t *statement,
                                 size_t statement_len,
                                 const uint8_t own_signature[static crypto_sign_BYTES],
                                 const uint8_t peer_signature[static crypto_sign_BYTES])
{
    ledger_err_t rc = ledger_write_begin(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    uint8_t *evidence = malloc(statement_len + 2 * crypto_sign_BYTES);
    if (evidence == NULL) {
        return ledger_fail(l, LEDGER_E_STORAGE, "out of memory");
    }
    memcpy(evidence, statement, statement_len);
    memcpy(evidence + statement_len, own_signature, crypto_sign_BYTES);
    memcpy(evidence + statement_len + crypto_sign_BYTES, peer_signature, crypto_sign_BYTES);
    sqlite3_stmt *stmt = NULL;
    int64_t now = ledger_clock(l);
    /* own_figures empty: only a closing row's are read (ledger_cycle_finish) */
    if (prepare(l,
                "INSERT INTO cycles(peer, cycle, state, proposer, own_sent, peer_sent, statement,"
                " own_signature, own_figures, peer_signature, error, created_ms, closed_ms)"
                " VALUES(?1,?2,2,?3,?4,?5,?6,?7,x'',?8,'imported by a repair',?9,?9)",
                &stmt) != SQLITE_OK) {
        free(evidence);
        return ledger_read_failed(l, "store a cycle");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
    sqlite3_bind_int(stmt, 3, ours ? 1 : 0);
    sqlite3_bind_int64(stmt, 4, (int64_t)own_sent);
    sqlite3_bind_int64(stmt, 5, (int64_t)peer_sent);
    sqlite3_bind_blob(stmt, 6, statement, (int)statement_len, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 7, own_signature, crypto_sign_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 8, peer_signature, crypto_sign_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, now);
    rc = finish_write(l, stmt, "store a cycle");
    if (rc == LEDGER_OK) {
        char number[24];
        snprintf(number, sizeof number, "%llu", (unsigned long long)cycle);
        rc = ledger_append_free_row(l, peer, ENTRY_CYCLE, number, "", 0, NULL, evidence,
                                    statement_len + 2 * crypto_sign_BYTES);
    }
    free(evidence);
    return rc;
}

ledger_err_t ledger_cycle_forget(ledger_t *l, const char *peer, uint64_t cycle)
{
    ledger_err_t rc = ledger_write_begin(l);
    sqlite3_stmt *stmt = NULL;
    if (rc == LEDGER_OK &&
        prepare(l, "DELETE FROM cycles WHERE peer = ?1 AND cycle = ?2 AND state = 1", &stmt) !=
            SQLITE_OK) {
        rc = ledger_read_failed(l, "forget a cycle");
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
    return finish_write(l, stmt, "forget a cycle");
}

typedef struct {
    key_side_t side;
    const uint8_t *statement;
    size_t len;
    const uint8_t *signature;
    bool ok;
} key_try_t;

static void try_key(const key_record_t *k, void *arg)
{
    key_try_t *t = arg;
    if (k->side == t->side && !t->ok) {
        t->ok = cycle_verify(t->statement, t->len, t->signature, k->sign_public);
    }
}

bool ledger_cycle_signed_by(ledger_t *l, const char *peer, key_side_t side,
                            const uint8_t *statement, size_t len, const uint8_t *signature)
{
    key_try_t t = {side, statement, len, signature, false};
    return ledger_keys(l, peer, try_key, &t) == LEDGER_OK && t.ok;
}

/* ---- net settlements ------------------------------------------------------------------- */

#define NET_COLUMNS                                                                                \
    "peer, settlement_id, cycle, currency, amount_minor, direction, status, reason, body_hash,"    \
    " reference, created_ms"

static void read_net(sqlite3_stmt *stmt, ledger_net_t *n)
{
    memset(n, 0, sizeof *n);
    snprintf(n->peer, sizeof n->peer, "%s", ledger_column_text(stmt, 0));
    snprintf(n->id, sizeof n->id, "%s", ledger_column_text(stmt, 1));
    n->cycle = (uint64_t)sqlite3_column_int64(stmt, 2);
    snprintf(n->currency, sizeof n->currency, "%s", ledger_column_text(stmt, 3));
    n->amount_minor = sqlite3_column_int64(stmt, 4);
    n->we_owe = sqlite3_column_int(stmt, 5) == 0;
    int status = sqlite3_column_int(stmt, 6);
    n->status =
        status >= STATUS_PENDING && status <= STATUS_MAX ? (status_t)status : STATUS_PENDING;
    snprintf(n->reason, sizeof n->reason, "%s", ledger_column_text(stmt, 7));
    if (sqlite3_column_bytes(stmt, 8) == SETTLEMENT_HASH_BYTES) {
        memcpy(n->body_hash, sqlite3_column_blob(stmt, 8), SETTLEMENT_HASH_BYTES);
    }
    snprintf(n->reference, sizeof n->reference, "%s", ledger_column_text(stmt, 9));
    n->created_ms = sqlite3_column_int64(stmt, 10);
}

ledger_err_t ledger_net_find(ledger_t *l, const char *peer, const char *id, ledger_net_t *out,
                             bool *found)
{
    memset(out, 0, sizeof *out);
    *found = false;
    if (ledger_schema_version(l) < 11) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT " NET_COLUMNS " FROM net_settlements WHERE peer = ?1"
                " AND settlement_id = ?2",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read net settlements");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        read_net(stmt, out);
        *found = true;
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE
               ? LEDGER_OK
               : ledger_read_failed(l, "read net settlements");
}

/* Whether a net settlement of (cycle, currency) stands in one of `statuses` (SQL list). */
static ledger_err_t net_in(ledger_t *l, const char *sql, const char *peer, uint64_t cycle,
                           const char *currency, bool *open)
{
    *open = false;
    if (ledger_schema_version(l) < 11) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l, sql, &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read net settlements");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (int64_t)cycle);
    sqlite3_bind_text(stmt, 3, currency, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    *open = step == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE
               ? LEDGER_OK
               : ledger_read_failed(l, "read net settlements");
}

ledger_err_t ledger_net_open(ledger_t *l, const char *peer, uint64_t cycle, const char *currency,
                             bool *open)
{
    return net_in(l,
                  "SELECT 1 FROM net_settlements WHERE peer = ?1 AND cycle = ?2 AND currency = ?3"
                  " AND status IN (0, 1, 4) LIMIT 1",
                  peer, cycle, currency, open);
}

ledger_err_t ledger_net_settled(ledger_t *l, const char *peer, uint64_t cycle, const char *currency,
                                bool *settled)
{
    return net_in(l,
                  "SELECT 1 FROM net_settlements WHERE peer = ?1 AND cycle = ?2 AND currency = ?3"
                  " AND status = 1 LIMIT 1",
                  peer, cycle, currency, settled);
}

ledger_err_t ledger_net_record(ledger_t *l, const ledger_net_t *n, const uint8_t *evidence,
                               size_t evidence_len)
{
    ledger_err_t rc = ledger_write_begin(l);
    sqlite3_stmt *stmt = NULL;
    if (rc == LEDGER_OK &&
        prepare(l,
                "INSERT INTO net_settlements(peer, settlement_id, cycle, currency, amount_minor,"
                " direction, status, reason, body_hash, evidence, reference, created_ms)"
                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                &stmt) != SQLITE_OK) {
        rc = ledger_read_failed(l, "record a net settlement");
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_bind_text(stmt, 1, n->peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, n->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (int64_t)n->cycle);
    sqlite3_bind_text(stmt, 4, n->currency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, n->amount_minor);
    sqlite3_bind_int(stmt, 6, n->we_owe ? 0 : 1);
    sqlite3_bind_int(stmt, 7, (int)n->status);
    sqlite3_bind_text(stmt, 8, n->reason, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 9, n->body_hash, SETTLEMENT_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 10, evidence, (int)evidence_len, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 11, n->reference, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 12, n->created_ms);
    rc = finish_write(l, stmt, "record a net settlement");
    return rc == LEDGER_OK
               ? ledger_append_free_row(l, n->peer, ENTRY_NET_CLAIMED, n->id, n->currency,
                                        n->amount_minor, NULL, evidence, evidence_len)
               : rc;
}

ledger_err_t ledger_net_decide(ledger_t *l, const char *peer, const char *id, bool settled,
                               const char *reason, uint64_t decided_seq, const uint8_t *evidence,
                               size_t evidence_len, const uint8_t *reply, size_t reply_len)
{
    ledger_net_t n;
    bool found = false;
    ledger_err_t rc = ledger_write_begin(l);
    if (rc == LEDGER_OK) {
        rc = ledger_net_find(l, peer, id, &n, &found);
    }
    if (rc == LEDGER_OK && (!found || (n.status != STATUS_PENDING && n.status != STATUS_HELD))) {
        rc = ledger_fail(l, found ? LEDGER_E_STATE : LEDGER_E_NOT_FOUND,
                         "net settlement %s with %s is %s", id, peer,
                         found ? "decided" : "not recorded");
    }
    int64_t m = n.we_owe ? n.amount_minor : -n.amount_minor;
    if (rc == LEDGER_OK) {
        rc = settled ? ledger_append_free_row(l, peer, ENTRY_NET_SETTLED, id, n.currency, m, NULL,
                                              evidence, evidence_len)
                     : ledger_append_free_row(l, peer, ENTRY_NET_REFUSED, id, n.currency, 0, reason,
                                              evidence, evidence_len);
    }
    sqlite3_stmt *stmt = NULL;
    if (rc == LEDGER_OK &&
        prepare(l,
                "UPDATE net_settlements SET status = ?3, reason = ?4, decided_seq = ?5,"
                " reply = coalesce(?6, reply) WHERE peer = ?1 AND settlement_id = ?2",
                &stmt) != SQLITE_OK) {
        rc = ledger_read_failed(l, "decide a net settlement");
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, settled ? STATUS_SETTLED : STATUS_REJECTED);
    sqlite3_bind_text(stmt, 4, settled || reason == NULL ? "" : reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, (int64_t)decided_seq);
    if (reply != NULL) {
        sqlite3_bind_blob(stmt, 6, reply, (int)reply_len, SQLITE_STATIC);
    }
    return finish_write(l, stmt, "decide a net settlement");
}

ledger_err_t ledger_net_messages(ledger_t *l, const char *peer, const char *id, uint8_t **evidence,
                                 size_t *evidence_len, uint8_t **reply, size_t *reply_len)
{
    *evidence = *reply = NULL;
    *evidence_len = *reply_len = 0;
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT evidence, reply FROM net_settlements WHERE peer = ?1"
                " AND settlement_id = ?2",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read a net settlement");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    ledger_err_t rc = LEDGER_OK;
    if (step == SQLITE_ROW) {
        *evidence = ledger_copy_blob(stmt, 0, evidence_len);
        *reply = ledger_copy_blob(stmt, 1, reply_len);
    } else {
        rc = step == SQLITE_DONE
                 ? ledger_fail(l, LEDGER_E_NOT_FOUND, "no net settlement %s with %s", id, peer)
                 : ledger_read_failed(l, "read a net settlement");
    }
    sqlite3_finalize(stmt);
    return rc;
}

ledger_err_t ledger_nets(ledger_t *l, const char *peer,
                         void (*fn)(const ledger_net_t *n, void *arg), void *arg)
{
    if (ledger_schema_version(l) < 11) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (prepare(l,
                "SELECT " NET_COLUMNS " FROM net_settlements WHERE ?1 IS NULL OR peer = ?1"
                " ORDER BY peer, cycle, currency, created_ms",
                &stmt) != SQLITE_OK) {
        return ledger_read_failed(l, "read net settlements");
    }
    if (peer != NULL) {
        sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    }
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ledger_net_t n;
        read_net(stmt, &n);
        fn(&n, arg);
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : ledger_read_failed(l, "read net settlements");
}
