/*
 * Tests of the offline audit (node/audit/audit.c): I1 balance, I2 mirror, I3 exactly once, I4
 * evidence, I5 the hash chain, and the caches the audit recomputes from the journal.
 *
 * Each test gets two real homes (config, key file, ledger) in a fresh scratch directory, built
 * with the library alone, no processes, and traffic between them made the way the node makes
 * it: the payer records its signed Settlement as pending; the payee books it under the cap it
 * grants the payer, or refuses it (AM02), and signs a StatusReport; the payer resolves its
 * pending entry on that report; one settled payment is returned with a signed Return. The
 * ledgers are then closed, altered through SQLite directly as an attacker or a broken disk
 * would, and the test asserts which kind of violation the audit reports and that it names the
 * journal row or the UETR concerned. A rotation of A's signing key (PROTOCOL.md 2.14) is made
 * the same way: the KeyAnnounce signed, both key histories recorded, the new key file saved.
 */
#include "support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "config.h"
#include "corridor.pb-c.h"
#include "cycle.h"
#include "cycles.h"
#include "digest.h"
#include "envelope.h"
#include "fx.h"
#include "identity.h"
#include "keyannounce.h"
#include "ledger.h"
#include "operation.h"
#include "replace.h"
#include "settlement.h"
#include "validate.h"

#define NODES_MAX 3
#define UETR_SIZE (CORRIDOR_UETR_LEN + 1)

/* Net debit caps each node grants the other, in minor units. */
#define CAP_RUB 50000
#define CAP_USD 10000

/* The standard traffic (see make_traffic), in minor units. */
#define AB_RETURNED_RUB 10000 /* A pays B: settled, then returned by B */
#define AB_SETTLED_RUB  30000 /* A pays B: settled (B.net(A) reaches 40000) */
#define AB_REFUSED_RUB  20000 /* A pays B: over B's cap, refused AM02 */
#define BA_SETTLED_USD  5000  /* B pays A: settled */
#define BA_REFUSED_USD  15000 /* B pays A: over A's cap, refused AM02 */
#define BA_SETTLED_RUB  7000  /* B pays A: settled */
#define RETURN_REASON   "AC04"

/* Journal rows the standard traffic leaves on each side. */
#define TRAFFIC_ROWS 10

/* Positions after the standard traffic, as A sees them (B sees the negation). */
#define A_NET_RUB (-AB_SETTLED_RUB + BA_SETTLED_RUB)
#define A_NET_USD BA_SETTLED_USD

/* One node: its home on disk and what the test keeps of it in memory. */
typedef struct {
    size_t index;                         /* in world_t.nodes */
    char name[CORRIDOR_NAME_LEN_MAX + 1]; /* node code */
    char *home;                           /* home directory */
    identity_t *identity;                 /* its keys (also saved in home/node.key) */
    config_t *config;                     /* its config as last saved */
    ledger_t *ledger;                     /* open read-write while making traffic, else NULL */
    uint64_t seq_to[NODES_MAX];           /* last sequence number signed to each node */
} node_t;

/* Two linked homes A and B with the standard traffic, and room for a third node. */
typedef struct {
    char *dir;                   /* scratch directory holding the homes */
    node_t nodes[NODES_MAX];     /* nodes created so far */
    size_t count;                /* entries used in nodes */
    node_t *a, *b;               /* the two linked homes */
    char *copy;                  /* a copy of a home made by the test, or NULL */
    char ab_returned[UETR_SIZE]; /* A -> B, settled, then returned by B */
    char ab_settled[UETR_SIZE];  /* A -> B, settled */
    char ab_refused[UETR_SIZE];  /* A -> B, refused by B (AM02) */
    char ba_usd[UETR_SIZE];      /* B -> A, settled, USD */
    char ba_refused[UETR_SIZE];  /* B -> A, refused by A (AM02), USD */
    char ba_rub[UETR_SIZE];      /* B -> A, settled, RUB */
    /* after rotate_a (PROTOCOL.md 2.14), else zero: */
    identity_t *a_old;          /* A's signing key before the rotation (a->identity: after) */
    uint64_t announced_at;      /* N: A's sequence to B of the KeyAnnounce */
    char ab_rotated[UETR_SIZE]; /* A -> B at N + 1, signed by A's new key, settled */
    char ba_rotated[UETR_SIZE]; /* B -> A for A's new key, settled (A's report at N + 2) */
} world_t;

/* Whether traffic states the sequence numbers of its messages to the ledger (decided_seq and the
 * others; cycles are cut by them). Off in the standard traffic: every entry at 0. */
static bool sequenced;

/* A settlement on its way from payer to payee. */
typedef struct {
    settlement_t s;           /* as the payer records it (direction out) */
    uint8_t *settlement_msg;  /* the payer's signed Settlement: evidence on both sides */
    size_t settlement_len;    /* bytes in settlement_msg */
    uint8_t *report_msg;      /* the payee's signed StatusReport, once delivered */
    size_t report_len;        /* bytes in report_msg */
    ledger_outcome_t outcome; /* the payee's result, once delivered */
    uint64_t settlement_seq;  /* the sequences of the two messages (0 unless `sequenced`) */
    uint64_t report_seq;
} flight_t;

/* ---- nodes and homes ----------------------------------------------------------------------- */

static void save_config(const node_t *n)
{
    char *path = test_path(n->home, CONFIG_FILE);
    assert_int_equal(config_save(n->config, path), 0);
    free(path);
}

static void node_open(node_t *n)
{
    assert_null(n->ledger);
    char *path = test_path(n->home, LEDGER_FILE);
    char err[512] = "";
    ledger_err_t rc =
        ledger_open(path, n->name, LEDGER_READ_WRITE, NULL, &n->ledger, err, sizeof err);
    if (rc != LEDGER_OK) {
        fail_msg("ledger_open %s: %s", path, err);
    }
    free(path);
}

static void node_close(node_t *n)
{
    ledger_close(&n->ledger);
}

/* Creates a home like `corridor init` does: config, key file, ledger (left open). */
static node_t *node_create(world_t *w, const char *name)
{
    assert_true(w->count < NODES_MAX);
    node_t *n = &w->nodes[w->count];
    memset(n, 0, sizeof *n);
    n->index = w->count++;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->home = test_path(w->dir, name);
    assert_int_equal(mkdir(n->home, 0700), 0);
    n->config = config_new();
    assert_non_null(n->config);
    snprintf(n->config->name, sizeof n->config->name, "%s", name);
    snprintf(n->config->listen, sizeof n->config->listen, "tcp://127.0.0.1:%u",
             7100 + (unsigned)n->index);
    char err[256];
    assert_int_equal(config_set_currencies(n->config, "RUB,USD", err, sizeof err), 0);
    save_config(n);
    n->identity = identity_generate();
    assert_non_null(n->identity);
    char *key = test_path(n->home, IDENTITY_KEY_FILE);
    assert_int_equal(identity_save(n->identity, key), ID_OK);
    free(key);
    node_open(n);
    return n;
}

static void node_destroy(node_t *n)
{
    ledger_close(&n->ledger);
    identity_destroy(&n->identity);
    config_destroy(&n->config);
    free(n->home);
    n->home = NULL;
}

/* Makes `self` trust `other` with the standard caps, like `corridor peer add`. */
static void trust(node_t *self, const node_t *other)
{
    config_t *c = self->config;
    assert_true(c->peers_count < CORRIDOR_PEERS_MAX);
    config_peer_t *p = &c->peers[c->peers_count++];
    memset(p, 0, sizeof *p);
    identity_card(other->identity, other->name, other->config->listen, &p->card);
    assert_int_equal(config_peer_set_limit(p, "RUB", CAP_RUB), 0);
    assert_int_equal(config_peer_set_limit(p, "USD", CAP_USD), 0);
    save_config(self);
}

static void link_nodes(node_t *a, node_t *b)
{
    trust(a, b);
    trust(b, a);
}

/* The cap `payee` grants `payer` in `currency`, from payee's config. */
static int64_t cap_of(const node_t *payee, const node_t *payer, const char *currency)
{
    const config_peer_t *p = config_find_peer_const(payee->config, payer->name);
    assert_non_null(p);
    return config_peer_limit(p, currency);
}

/* ---- messages and ledger writes -------------------------------------------------------- */

static void begin(ledger_t *l)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
}

static void commit(ledger_t *l)
{
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

/* Signs a body from `author` for `to` under the next sequence number of that direction. */
static void sign_for(node_t *author, const uint8_t to_key_id[static IDENTITY_KEY_ID_BYTES],
                     size_t to_index, msg_type_t type, const uint8_t *body, size_t body_len,
                     uint8_t **out, size_t *out_len)
{
    assert_true(to_index < NODES_MAX);
    uint64_t seq = ++author->seq_to[to_index];
    assert_int_equal(
        envelope_sign(author->identity, to_key_id, type, seq, body, body_len, out, out_len),
        ENV_OK);
}

static void sign_to(node_t *author, const node_t *to, msg_type_t type, const uint8_t *body,
                    size_t body_len, uint8_t **out, size_t *out_len)
{
    sign_for(author, to->identity->key_id, to->index, type, body, body_len, out, out_len);
}

/* A fresh, valid settlement from `from` to `to`, as the payer records it (direction out). */
static void settlement_make(const node_t *from, const node_t *to, int64_t amount_minor,
                            const char *currency, settlement_t *s)
{
    static unsigned counter;
    counter++;
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", to->name);
    s->direction = DIRECTION_OUT;
    uetr_generate(s->uetr);
    snprintf(s->end_to_end_id, sizeof s->end_to_end_id, "E2E-%s-%u", from->name, counter);
    s->amount_minor = amount_minor;
    snprintf(s->currency, sizeof s->currency, "%s", currency);
    snprintf(s->value_date, sizeof s->value_date, "2025-03-14");
    snprintf(s->debtor_name, sizeof s->debtor_name, "Customer of %s", from->name);
    snprintf(s->debtor_account, sizeof s->debtor_account, "40702810900000000%03u", counter);
    snprintf(s->creditor_name, sizeof s->creditor_name, "Customer of %s", to->name);
    snprintf(s->creditor_account, sizeof s->creditor_account, "40702810100000000%03u", counter);
    snprintf(s->remittance, sizeof s->remittance, "Invoice %u", counter);
    s->created_unix_ms = INT64_C(1741910400000) + counter;
    assert_null(settlement_check(s));
}

/* Step 1 of the lifecycle: the payer validates, signs and records its settlement as pending. */
static void flight_send(node_t *from, const node_t *to, int64_t amount_minor, const char *currency,
                        flight_t *f)
{
    memset(f, 0, sizeof *f);
    settlement_t *s = &f->s;
    settlement_make(from, to, amount_minor, currency, s);

    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(settlement_encode(s, &body, &body_len), 0);
    sign_to(from, to, MSG_SETTLEMENT, body, body_len, &f->settlement_msg, &f->settlement_len);
    free(body);
    f->settlement_seq = sequenced ? from->seq_to[to->index] : 0;

    ledger_outcome_t o;
    begin(from->ledger);
    assert_int_equal(
        ledger_send(from->ledger, s, f->settlement_msg, f->settlement_len, f->settlement_seq, &o),
        LEDGER_OK);
    commit(from->ledger);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_false(o.repeated);
}

/* Step 2: the payee books or refuses it under `cap_minor` and signs a StatusReport. */
static void flight_deliver(const node_t *from, node_t *to, int64_t cap_minor, flight_t *f)
{
    settlement_t in = f->s;
    snprintf(in.peer, sizeof in.peer, "%s", from->name);
    in.direction = DIRECTION_IN;
    begin(to->ledger);
    assert_int_equal(ledger_receive(to->ledger, &in, cap_minor, NULL, f->settlement_msg,
                                    f->settlement_len, f->settlement_seq, &f->outcome),
                     LEDGER_OK);
    assert_true(f->outcome.status == STATUS_SETTLED || f->outcome.status == STATUS_REJECTED);

    bool settled = f->outcome.status == STATUS_SETTLED;
    Corridor__StatusReport report = CORRIDOR__STATUS_REPORT__INIT;
    report.uetr = f->s.uetr;
    report.status = settled ? "ACSC" : "RJCT";
    report.reason = f->outcome.reason;
    report.currency = f->s.currency;
    report.position_minor = f->outcome.position_minor;
    size_t len = corridor__status_report__get_packed_size(&report);
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    assert_int_equal(corridor__status_report__pack(&report, body), len);
    sign_to(to, from, MSG_STATUS_REPORT, body, len, &f->report_msg, &f->report_len);
    free(body);
    f->report_seq = sequenced ? to->seq_to[from->index] : 0;
    /* as the channel does, in the same transaction: our reply is kept, in the row (schema 4) */
    assert_int_equal(ledger_set_reply(to->ledger, from->name, f->s.uetr, f->report_msg,
                                      f->report_len, f->report_seq),
                     LEDGER_OK);
    commit(to->ledger);
}

/* Step 3: the payer posts or voids its pending entry on the payee's StatusReport. */
static void flight_resolve(node_t *from, const node_t *to, const flight_t *f)
{
    assert_non_null(f->report_msg);
    bool settled = f->outcome.status == STATUS_SETTLED;
    ledger_outcome_t o;
    begin(from->ledger);
    assert_int_equal(ledger_resolve(from->ledger, to->name, f->s.uetr, settled,
                                    settled ? NULL : f->outcome.reason, f->report_msg,
                                    f->report_len, f->report_seq, &o),
                     LEDGER_OK);
    commit(from->ledger);
    assert_int_equal(o.status, f->outcome.status);
    assert_string_equal(o.reason, f->outcome.reason);
}

static void flight_free(flight_t *f)
{
    free(f->settlement_msg);
    free(f->report_msg);
    memset(f, 0, sizeof *f);
}

/* The whole lifecycle; copies the UETR out and returns the final status. */
static status_t pay(node_t *from, node_t *to, int64_t amount_minor, const char *currency,
                    char uetr[static UETR_SIZE])
{
    flight_t f;
    flight_send(from, to, amount_minor, currency, &f);
    flight_deliver(from, to, cap_of(to, from, currency), &f);
    flight_resolve(from, to, &f);
    status_t status = f.outcome.status;
    if (status == STATUS_REJECTED) {
        assert_string_equal(f.outcome.reason, "AM02");
    }
    snprintf(uetr, UETR_SIZE, "%s", f.s.uetr);
    flight_free(&f);
    return status;
}

/* The payee returns a settled payment (pacs.004): its signed Return is the evidence of both
 * sides' ENTRY_RETURNED rows. */
static void give_back(node_t *payee, node_t *payer, const char *uetr, const char *reason)
{
    settlement_t s;
    ledger_outcome_t o;
    assert_int_equal(ledger_find(payee->ledger, payer->name, uetr, &s, &o), LEDGER_OK);
    assert_int_equal(s.direction, DIRECTION_IN);
    assert_int_equal(o.status, STATUS_SETTLED);

    char return_id[UETR_SIZE];
    uetr_generate(return_id);
    Corridor__Return ret = CORRIDOR__RETURN__INIT;
    ret.return_id = return_id;
    ret.original_uetr = (char *)uetr;
    ret.amount_minor = s.amount_minor;
    ret.currency = s.currency;
    ret.reason = (char *)reason;
    size_t len = corridor__return__get_packed_size(&ret);
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    assert_int_equal(corridor__return__pack(&ret, body), len);
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    sign_to(payee, payer, MSG_RETURN, body, len, &msg, &msg_len);
    free(body);
    uint64_t seq = sequenced ? payee->seq_to[payer->index] : 0;

    begin(payee->ledger);
    assert_int_equal(ledger_return(payee->ledger, payer->name, uetr, reason, msg, msg_len, seq, &o),
                     LEDGER_OK);
    commit(payee->ledger);
    assert_int_equal(o.status, STATUS_RETURNED);
    begin(payer->ledger);
    assert_int_equal(ledger_return(payer->ledger, payee->name, uetr, reason, msg, msg_len, seq, &o),
                     LEDGER_OK);
    commit(payer->ledger);
    assert_int_equal(o.status, STATUS_RETURNED);
    free(msg);
}

/* Six payments both ways, two refused by a cap, one returned: TRAFFIC_ROWS rows a side. */
static void make_traffic(world_t *w)
{
    node_t *a = w->a, *b = w->b;
    assert_int_equal(pay(a, b, AB_RETURNED_RUB, "RUB", w->ab_returned), STATUS_SETTLED);
    assert_int_equal(pay(a, b, AB_SETTLED_RUB, "RUB", w->ab_settled), STATUS_SETTLED);
    assert_int_equal(pay(a, b, AB_REFUSED_RUB, "RUB", w->ab_refused), STATUS_REJECTED);
    assert_int_equal(pay(b, a, BA_SETTLED_USD, "USD", w->ba_usd), STATUS_SETTLED);
    assert_int_equal(pay(b, a, BA_REFUSED_USD, "USD", w->ba_refused), STATUS_REJECTED);
    assert_int_equal(pay(b, a, BA_SETTLED_RUB, "RUB", w->ba_rub), STATUS_SETTLED);
    give_back(b, a, w->ab_returned, RETURN_REASON);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int world_setup(void **state)
{
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    sequenced = false;
    w->dir = test_tmpdir();
    w->a = node_create(w, "ALFARUMM");
    w->b = node_create(w, "BETAIRTH");
    link_nodes(w->a, w->b);
    make_traffic(w);
    node_close(w->a);
    node_close(w->b);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    world_t *w = *state;
    for (size_t i = 0; i < w->count; i++) {
        node_destroy(&w->nodes[i]);
    }
    identity_destroy(&w->a_old);
    test_rmtree(w->dir);
    free(w->copy);
    free(w->dir);
    free(w);
    return 0;
}

/* ---- SQLite, as an attacker uses it ------------------------------------------------------ */

static sqlite3 *db_open(const char *home)
{
    char *path = test_path(home, LEDGER_FILE);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    free(path);
    if (rc != SQLITE_OK) {
        fail_msg("sqlite3_open_v2: %s", db != NULL ? sqlite3_errmsg(db) : "out of memory");
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void db_close(sqlite3 *db)
{
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Runs one formatted statement; returns the rows it changed. */
static int db_exec(sqlite3 *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int db_exec(sqlite3 *db, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof sql);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s: %s", sql, err != NULL ? err : "?");
    }
    return sqlite3_changes(db);
}

/* The integer in the first column of the first row of a formatted query (which must exist). */
static int64_t db_int(sqlite3 *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t db_int(sqlite3 *db, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof sql);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        fail_msg("%s: no row", sql);
    }
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* The journal sequence of the row of `kind` for `uetr`. */
static int64_t row_of(sqlite3 *db, entry_kind_t kind, const char *uetr)
{
    assert_int_equal(
        db_int(db, "SELECT count(*) FROM journal WHERE kind = %d AND uetr = '%s'", kind, uetr), 1);
    return db_int(db, "SELECT seq FROM journal WHERE kind = %d AND uetr = '%s'", kind, uetr);
}

static int64_t journal_rows(const node_t *n)
{
    sqlite3 *db = db_open(n->home);
    int64_t rows = db_int(db, "SELECT count(*) FROM journal");
    db_close(db);
    return rows;
}

/* Sets a blob column of one row: UPDATE table SET column = blob WHERE key = id. */
static void db_set_blob(sqlite3 *db, const char *table, const char *column, const char *key,
                        int64_t id, const void *blob, size_t len)
{
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?1 WHERE %s = ?2", table, column, key);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_bind_blob(stmt, 1, len > 0 ? blob : "", (int)len, SQLITE_TRANSIENT),
                     SQLITE_OK);
    assert_int_equal(sqlite3_bind_int64(stmt, 2, id), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(stmt);
}

/* A copy of one row's evidence (malloc'd). */
static uint8_t *evidence_of(sqlite3 *db, int64_t seq, size_t *len)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT evidence FROM journal WHERE seq = ?1", -1, &stmt, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(stmt, 1, seq);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    const void *blob = sqlite3_column_blob(stmt, 0);
    *len = (size_t)sqlite3_column_bytes(stmt, 0);
    uint8_t *copy = malloc(*len + 1);
    assert_non_null(copy);
    if (*len > 0) {
        memcpy(copy, blob, *len);
    }
    sqlite3_finalize(stmt);
    return copy;
}

/* Recomputes journal.hash for every row in order, as an attacker with the source code can:
 * the chain then links whatever the rows now say. */
static void rechain(sqlite3 *db)
{
    assert_true(test_rechain(db, 1) > 0);
}

/* Adds an effect to a peer account's net balances and its opposite to the clearing account,
 * as the ledger's move does: an attacker keeping the cached balances consistent with the
 * journal. */
static void shift_accounts(sqlite3 *db, const char *peer, const char *currency, ledger_effect_t e)
{
    assert_int_equal(db_exec(db,
                             "UPDATE accounts SET pending_net = pending_net + %lld,"
                             " posted_net = posted_net + %lld"
                             " WHERE kind = 'peer' AND peer = '%s' AND currency = '%s'",
                             (long long)e.pending, (long long)e.posted, peer, currency),
                     1);
    assert_int_equal(db_exec(db,
                             "UPDATE accounts SET pending_net = pending_net - %lld,"
                             " posted_net = posted_net - %lld"
                             " WHERE kind = 'clearing' AND peer = '' AND currency = '%s'",
                             (long long)e.pending, (long long)e.posted, currency),
                     1);
}

/* Writes a settlement's content hash, as hex for SQL, after changing its amount. */
static void content_hash_hex(const node_t *n, const char *peer, const char *uetr,
                             int64_t amount_minor, char hex[static 2 * SETTLEMENT_HASH_BYTES + 1])
{
    char *path = test_path(n->home, LEDGER_FILE);
    ledger_t *l = NULL;
    char err[256];
    assert_int_equal(ledger_open(path, n->name, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    free(path);
    settlement_t s;
    assert_int_equal(ledger_find(l, peer, uetr, &s, NULL), LEDGER_OK);
    ledger_close(&l);
    s.amount_minor = amount_minor;
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&s, hash);
    sodium_bin2hex(hex, 2 * SETTLEMENT_HASH_BYTES + 1, hash, sizeof hash);
}

/* Changes a whole payment's amount consistently, as a careful attacker would: the settlement
 * and its content hash, every journal row of it, the chain, and the cached balances. */
static void rewrite_amount(const node_t *n, const char *peer, const char *uetr,
                           int64_t amount_minor)
{
    char hex[2 * SETTLEMENT_HASH_BYTES + 1];
    content_hash_hex(n, peer, uetr, amount_minor, hex);
    sqlite3 *db = db_open(n->home);
    int64_t old = db_int(
        db, "SELECT amount_minor FROM settlements WHERE peer = '%s' AND uetr = '%s'", peer, uetr);
    direction_t dir = (direction_t)db_int(
        db, "SELECT direction FROM settlements WHERE peer = '%s' AND uetr = '%s'", peer, uetr);
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    {
        sqlite3_stmt *stmt = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT currency FROM settlements"
                                            " WHERE peer = ?1 AND uetr = ?2",
                                            -1, &stmt, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, uetr, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        snprintf(currency, sizeof currency, "%s", (const char *)sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
    }
    assert_int_equal(db_exec(db,
                             "UPDATE settlements SET amount_minor = %lld, content_hash = X'%s'"
                             " WHERE peer = '%s' AND uetr = '%s'",
                             (long long)amount_minor, hex, peer, uetr),
                     1);
    /* The balance shift is the effect of every row at the new amount minus the old. */
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT kind FROM journal WHERE peer = ?1 AND uetr = ?2",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, uetr, -1, SQLITE_STATIC);
    ledger_effect_t d = {0, 0};
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        entry_kind_t kind = (entry_kind_t)sqlite3_column_int(stmt, 0);
        ledger_effect_t now = ledger_row_effect(kind, dir, amount_minor);
        ledger_effect_t was = ledger_row_effect(kind, dir, old);
        d.pending += now.pending - was.pending;
        d.posted += now.posted - was.posted;
    }
    sqlite3_finalize(stmt);
    assert_true(db_exec(db,
                        "UPDATE journal SET amount_minor = %lld, content_hash = X'%s'"
                        " WHERE peer = '%s' AND uetr = '%s'",
                        (long long)amount_minor, hex, peer, uetr) >= 1);
    rechain(db);
    shift_accounts(db, peer, currency, d);
    db_close(db);
}

/* ---- files --------------------------------------------------------------------------------- */

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char *src = test_path(from_dir, name);
    char *dst = test_path(to_dir, name);
    size_t len = 0;
    char *data = test_read_file(src, &len);
    assert_non_null(data);
    assert_true(len < 1024 * 1024); /* test_read_file's bound: the copy is whole */
    test_write_file(dst, data, len, 0600);
    free(data);
    free(src);
    free(dst);
}

/* Copies a closed home's config and ledger (not its key file) into dir/name; the world owns
 * the path (freed on teardown even when an assertion fails first). */
static const char *copy_home_without_key(world_t *w, const node_t *n, const char *name)
{
    assert_null(w->copy);
    char *copy = w->copy = test_path(w->dir, name);
    assert_int_equal(mkdir(copy, 0700), 0);
    copy_file(n->home, copy, CONFIG_FILE);
    copy_file(n->home, copy, LEDGER_FILE);
    char *wal = test_path(n->home, LEDGER_FILE "-wal");
    assert_int_equal(access(wal, F_OK), -1); /* closed: everything is in ledger.db */
    free(wal);
    return copy;
}

/* ---- running the audit and reading its report -------------------------------------------- */

static void dump(const audit_report_t *r)
{
    print_message("audit: %zu violations, %llu entries checked\n", r->violations_count,
                  (unsigned long long)r->entries_checked);
    for (size_t i = 0; i < r->violations_count; i++) {
        print_message("  [%s] %s: %s\n", r->violations[i].kind, r->violations[i].home,
                      r->violations[i].detail);
    }
}

static int audit_one(const node_t *x, audit_report_t *r)
{
    const char *homes[] = {x->home};
    audit_report_init(r);
    return audit_homes(homes, 1, NULL, 0, r);
}

static int audit_two(const char *x, const char *y, audit_report_t *r)
{
    const char *homes[] = {x, y};
    audit_report_init(r);
    return audit_homes(homes, 2, NULL, 0, r);
}

static size_t count_kind(const audit_report_t *r, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < r->violations_count; i++) {
        n += strcmp(r->violations[i].kind, kind) == 0;
    }
    return n;
}

/* Whether a violation of `kind` (in `home`, unless NULL) mentions `needle` (unless NULL). */
static bool has_violation(const audit_report_t *r, const char *kind, const char *home,
                          const char *needle)
{
    for (size_t i = 0; i < r->violations_count; i++) {
        const audit_violation_t *v = &r->violations[i];
        if (strcmp(v->kind, kind) == 0 && (home == NULL || strcmp(v->home, home) == 0) &&
            (needle == NULL || strstr(v->detail, needle) != NULL)) {
            return true;
        }
    }
    return false;
}

static void expect_violation(const audit_report_t *r, const char *kind, const char *home,
                             const char *needle)
{
    if (!has_violation(r, kind, home, needle)) {
        dump(r);
        fail_msg("no '%s' violation%s%s mentioning '%s'", kind, home ? " in " : "",
                 home ? home : "", needle ? needle : "(anything)");
    }
}

static void expect_none(const audit_report_t *r, const char *kind)
{
    if (count_kind(r, kind) != 0) {
        dump(r);
        fail_msg("unexpected '%s' violation", kind);
    }
}

/* At least one violation, and every one of them of `kind`. */
static void expect_only(const audit_report_t *r, const char *kind)
{
    if (r->violations_count == 0 || count_kind(r, kind) != r->violations_count) {
        dump(r);
        fail_msg("expected only '%s' violations", kind);
    }
}

static void expect_clean(const audit_report_t *r)
{
    if (r->violations_count != 0 || r->violations_dropped != 0) {
        dump(r);
        fail_msg("expected a clean audit");
    }
}

/* "row N " as the audit names a journal row (the space keeps row 1 from matching row 10). */
static const char *row_name(int64_t seq, char buf[static 32])
{
    snprintf(buf, 32, "row %lld ", (long long)seq);
    return buf;
}

/* net(peer, currency) of a closed home, read through the library. */
static int64_t net_of(const node_t *n, const char *peer, const char *currency)
{
    char *path = test_path(n->home, LEDGER_FILE);
    ledger_t *l = NULL;
    char err[256];
    assert_int_equal(ledger_open(path, n->name, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    free(path);
    int64_t net = 0, pending = 0;
    assert_int_equal(ledger_position(l, peer, currency, &net, &pending), LEDGER_OK);
    ledger_close(&l);
    return net;
}

/* ---- 1. clean ------------------------------------------------------------------------------ */

static void test_clean_homes(void **state)
{
    world_t *w = *state;
    int64_t rows_a = journal_rows(w->a), rows_b = journal_rows(w->b);
    assert_int_equal(rows_a, TRAFFIC_ROWS);
    assert_int_equal(rows_b, TRAFFIC_ROWS);
    /* The fixture is what the test thinks it is: mirrored positions. */
    assert_int_equal(net_of(w->a, w->b->name, "RUB"), A_NET_RUB);
    assert_int_equal(net_of(w->b, w->a->name, "RUB"), -A_NET_RUB);
    assert_int_equal(net_of(w->a, w->b->name, "USD"), A_NET_USD);
    assert_int_equal(net_of(w->b, w->a->name, "USD"), -A_NET_USD);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, (uint64_t)rows_a);
    audit_report_free(&r);

    assert_int_equal(audit_one(w->b, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, (uint64_t)rows_b);
    audit_report_free(&r);

    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, (uint64_t)(rows_a + rows_b));
    audit_report_free(&r);
}

/* The audit reads a home without changing it: a second audit sees the same and the ledger
 * still opens for writing afterwards. */
/* An insider at A holding A's keys swaps B's key in A's corridor.conf for one of his own,
 * re-signs every message of B's in A's journal with it and A's own for it, chain recomputed.
 * Audited with the keys A's home names, the books are clean: that is the attack. With B's card from
 * outside, the swapped key and every forged row show, and the key history says what each key
 * signed. */
static void test_swapped_peer_key_needs_outside_card(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *mallory = identity_generate();
    assert_non_null(mallory);
    config_peer_t *p = config_find_peer(a->config, b->name);
    assert_non_null(p);
    identity_card(mallory, b->name, b->config->listen, &p->card);
    save_config(a);

    sqlite3 *db = db_open(a->home);
    int64_t rows = journal_rows(a);
    size_t forged = 0;
    for (int64_t seq = 1; seq <= rows; seq++) {
        size_t len = 0;
        uint8_t *evidence = evidence_of(db, seq, &len);
        envelope_message_t msg;
        bool bs = evidence_verify(evidence, len, b->identity->sign_public, &msg) == ENV_OK;
        if (bs || evidence_verify(evidence, len, a->identity->sign_public, &msg) == ENV_OK) {
            /* B's messages signed with his key; A's own (he holds A's keys) for his key */
            uint8_t *fake = NULL;
            size_t fake_len = 0;
            assert_int_equal(envelope_sign_version(bs ? mallory : a->identity, msg.version,
                                                   bs ? msg.recipient_key_id : mallory->key_id,
                                                   msg.type, msg.sequence, msg.body, msg.body_len,
                                                   &fake, &fake_len),
                             ENV_OK);
            db_set_blob(db, "journal", "evidence", "seq", seq, fake, fake_len);
            free(fake);
            envelope_message_clear(&msg);
            forged++;
        }
        free(evidence);
    }
    rechain(db);
    db_close(db);
    identity_destroy(&mallory);
    assert_int_equal(forged, (size_t)rows);

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    if (r.violations_count != 0) {
        dump(&r);
    }
    assert_int_equal(r.violations_count, 0); /* keys from the home: the forgery passes */
    assert_int_equal(r.keys_count, 1);
    assert_false(r.keys[0].from_card);
    audit_report_free(&r);

    peer_card_t real;
    identity_card(b->identity, b->name, b->config->listen, &real);
    const char *homes[] = {a->home};
    audit_report_init(&r);
    assert_int_equal(audit_homes(homes, 1, &real, 1, &r), 0);
    expect_violation(&r, "key", a->home, b->name);
    assert_int_equal(count_kind(&r, "evidence"), forged);
    assert_int_equal(r.keys_count, 1);
    assert_true(r.keys[0].from_card);
    assert_int_equal(r.keys[0].rows, 0); /* B's real key signed nothing in A's books now */
    audit_report_free(&r);
}

/* B's card and an older card of B's (a key history): evidence verifies with the key that
 * signed it, and each key's use is reported with the sequence numbers it signed. */
static void test_peer_key_history_from_cards(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *old = identity_generate();
    assert_non_null(old);
    peer_card_t cards[2];
    identity_card(old, b->name, b->config->listen, &cards[0]);
    identity_card(b->identity, b->name, b->config->listen, &cards[1]);
    identity_destroy(&old);
    const char *homes[] = {a->home};
    audit_report_t r;
    audit_report_init(&r);
    assert_int_equal(audit_homes(homes, 1, cards, 2, &r), 0);
    if (r.violations_count != 0) {
        dump(&r);
    }
    assert_int_equal(r.violations_count, 0);
    assert_int_equal(r.keys_count, 2);
    assert_int_equal(r.keys[0].rows, 0);
    assert_true(r.keys[1].rows > 0);
    assert_int_equal(r.keys[1].first_seq, 1);
    assert_true(r.keys[1].last_seq >= r.keys[1].first_seq);
    audit_report_free(&r);
}

/* An operator row is in the chain: audit checks its record, and an edit shows as a broken
 * chain, or (chain recomputed) as a record that is not one. */
static void test_operator_rows_verified(void **state)
{
    world_t *w = *state;
    node_t *a = w->a;
    node_open(a);
    begin(a->ledger);
    assert_int_equal(ledger_record_operation(a->ledger, w->b->name,
                                             "{\"action\":\"repair\",\"args\":{\"peer\":"
                                             "\"BETAIRTH\"},\"at_ms\":1,\"uid\":0,\"user\":"
                                             "\"root\"}"),
                     LEDGER_OK);
    commit(a->ledger);
    node_close(a);
    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    if (r.violations_count != 0) {
        dump(&r);
    }
    assert_int_equal(r.violations_count, 0);
    audit_report_free(&r);

    sqlite3 *db = db_open(a->home);
    int64_t seq = db_int(db, "SELECT max(seq) FROM journal WHERE kind = %d", ENTRY_OPERATOR);
    const char *forged = "{\"uid\":0}";
    db_set_blob(db, "journal", "evidence", "seq", seq, forged, strlen(forged));
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "chain", a->home, NULL);
    audit_report_free(&r);
    rechain(db);
    db_close(db);
    assert_int_equal(audit_one(a, &r), 0);
    expect_none(&r, "chain");
    expect_violation(&r, "operator", a->home, "without uid");
    audit_report_free(&r);
}

static void test_clean_audit_is_read_only(void **state)
{
    world_t *w = *state;
    audit_report_t r;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(audit_two(w->b->home, w->a->home, &r), 0);
        expect_clean(&r);
        assert_int_equal(r.entries_checked, 2 * TRAFFIC_ROWS);
        audit_report_free(&r);
    }
    node_open(w->a);
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(w->a->ledger, head, &rows), LEDGER_OK);
    assert_int_equal(rows, TRAFFIC_ROWS);
    node_close(w->a);
}

/* ---- 2. tampering (I5, I4, caches) -------------------------------------------------------- */

static void test_tamper_amount(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    assert_int_equal(
        db_exec(db, "UPDATE journal SET amount_minor = amount_minor + 100 WHERE seq = %lld",
                (long long)seq),
        1);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "chain", w->a->home, row_name(seq, row));
    /* The chain continues from the stored hash: one edited row is one chain violation. */
    assert_int_equal(count_kind(&r, "chain"), 1);
    expect_violation(&r, "content", w->a->home, w->ba_usd);
    expect_violation(&r, "balance", w->a->home, w->b->name);
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    audit_report_free(&r);
}

static void test_tamper_delete_middle_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_OUT_PENDING, w->ab_refused);
    assert_true(seq > 1 && seq < TRAFFIC_ROWS);
    assert_int_equal(db_exec(db, "DELETE FROM journal WHERE seq = %lld", (long long)seq), 1);
    db_close(db);

    audit_report_t r;
    char row[32], follows[64];
    assert_int_equal(audit_one(w->a, &r), 0);
    snprintf(follows, sizeof follows, "row %lld follows row %lld", (long long)(seq + 1),
             (long long)(seq - 1));
    expect_violation(&r, "chain", w->a->home, follows);
    expect_violation(&r, "chain", w->a->home, row_name(seq + 1, row));
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS - 1);
    audit_report_free(&r);
}

static void test_tamper_delete_first_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db, "DELETE FROM journal WHERE seq = 1"), 1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "chain", w->a->home, "row 2 follows row 0");
    expect_violation(&r, "chain", w->a->home, "row 2 ");
    audit_report_free(&r);
}

static void test_tamper_swap_rows(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t x = row_of(db, ENTRY_OUT_VOIDED, w->ab_refused);
    int64_t y = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    assert_true(x != y);
    /* Renumbering swaps the rows' contents while the sequence numbers stay where they were. */
    db_exec(db, "UPDATE journal SET seq = -1 WHERE seq = %lld", (long long)x);
    db_exec(db, "UPDATE journal SET seq = %lld WHERE seq = %lld", (long long)x, (long long)y);
    db_exec(db, "UPDATE journal SET seq = %lld WHERE seq = -1", (long long)y);
    assert_int_equal(db_int(db, "SELECT kind FROM journal WHERE seq = %lld", (long long)x),
                     ENTRY_IN_BOOKED);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "chain", w->a->home, row_name(x, row));
    expect_violation(&r, "chain", w->a->home, row_name(y, row));
    expect_none(&r, "balance"); /* the same rows in another order move the same amounts */
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS);
    audit_report_free(&r);
}

static void test_tamper_evidence_byte(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_rub);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, seq, &len);
    assert_true(len > 64);
    ev[len - 1] ^= 0x01; /* inside the signature */
    db_set_blob(db, "journal", "evidence", "seq", seq, ev, len);
    free(ev);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "chain", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, w->ba_rub);
    assert_int_equal(count_kind(&r, "evidence"), 1);
    audit_report_free(&r);
}

/* A byte of this node's own evidence (its signed Settlement), with its key file present. */
static void test_tamper_own_evidence_byte(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_OUT_PENDING, w->ab_settled);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, seq, &len);
    assert_true(len > 64);
    ev[len - 10] ^= 0x80;
    db_set_blob(db, "journal", "evidence", "seq", seq, ev, len);
    free(ev);
    rechain(db);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_none(&r, "chain");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    audit_report_free(&r);
}

static void test_tamper_kind(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_REFUSED, w->ba_refused);
    assert_int_equal(db_exec(db, "UPDATE journal SET kind = %d WHERE seq = %lld", ENTRY_IN_BOOKED,
                             (long long)seq),
                     1);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "chain", w->a->home, row_name(seq, row));
    assert_int_equal(count_kind(&r, "chain"), 1);
    /* Booked, it would move money the caches never saw, and contradicts the status. */
    expect_violation(&r, "balance", w->a->home, NULL);
    expect_violation(&r, "cache", w->a->home, w->ba_refused);
    audit_report_free(&r);
}

/* ---- repairs: imports and re-bases are journal rows the audit re-verifies ----------------- */

/* The payee's StatusReport for a flight: version 2 names the hash of `named` (the flight's own
 * Settlement body when NULL), version 1 names nothing. */
static void sign_report(node_t *payee, const node_t *payer, const flight_t *f, uint32_t version,
                        const settlement_t *named, uint8_t **out, size_t *out_len)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(settlement_encode(named != NULL ? named : &f->s, &body, &body_len), 0);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, hash);
    free(body);
    Corridor__StatusReport report = CORRIDOR__STATUS_REPORT__INIT;
    report.uetr = (char *)f->s.uetr;
    report.status = "ACSC";
    report.reason = "";
    report.currency = (char *)f->s.currency;
    if (version >= 2) {
        report.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    }
    size_t len = corridor__status_report__get_packed_size(&report);
    uint8_t *packed = malloc(len + 1);
    assert_non_null(packed);
    assert_int_equal(corridor__status_report__pack(&report, packed), len);
    uint64_t seq = ++payee->seq_to[payer->index];
    assert_int_equal(envelope_sign_version(payee->identity, version, payer->identity->key_id,
                                           MSG_STATUS_REPORT, seq, packed, len, out, out_len),
                     ENV_OK);
    free(packed);
}

/* The journal row a node's open ledger wrote last. */
static int64_t last_row(const node_t *n)
{
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(n->ledger, head, &rows), LEDGER_OK);
    return (int64_t)rows;
}

/* B pays A; A never had it and imports it as a repair would, with A's own ACSC as evidence,
 * of `version`, naming `named`'s body (NULL: the Settlement itself). Returns the IMPORTED row. */
static int64_t import_at_a(world_t *w, uint32_t version, const settlement_t *named,
                           char uetr[static UETR_SIZE])
{
    node_t *a = w->a, *b = w->b;
    flight_t f;
    flight_send(b, a, 1000, "RUB", &f);
    uint8_t *report = NULL;
    size_t report_len = 0;
    sign_report(a, b, &f, version, named, &report, &report_len);
    settlement_t in = f.s;
    snprintf(in.peer, sizeof in.peer, "%s", b->name);
    in.direction = DIRECTION_IN;
    begin(a->ledger);
    assert_int_equal(ledger_import(a->ledger, &in, STATUS_SETTLED, "", f.settlement_msg,
                                   f.settlement_len, 0, report, report_len, 0),
                     LEDGER_OK);
    commit(a->ledger);
    snprintf(uetr, UETR_SIZE, "%s", f.s.uetr);
    free(report);
    flight_free(&f);
    return last_row(a);
}

static void test_import_rows_verified(void **state)
{
    world_t *w = *state;
    node_open(w->a);
    node_open(w->b);
    char good[UETR_SIZE], v1[UETR_SIZE], other[UETR_SIZE];
    int64_t good_row = import_at_a(w, 2, NULL, good);
    int64_t v1_row = import_at_a(w, 1, NULL, v1);
    settlement_t cheaper;
    memset(&cheaper, 0, sizeof cheaper);
    uetr_generate(cheaper.uetr);
    snprintf(cheaper.currency, sizeof cheaper.currency, "RUB");
    cheaper.amount_minor = 1;
    int64_t other_row = import_at_a(w, 2, &cheaper, other);
    node_close(w->a);
    node_close(w->b);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "evidence", w->a->home, "version-1 StatusReport");
    expect_violation(&r, "evidence", w->a->home, row_name(v1_row, row));
    expect_violation(&r, "evidence", w->a->home, "answers other contents");
    expect_violation(&r, "evidence", w->a->home, row_name(other_row, row));
    /* the booking row before it carries the same report as our reply (schema 4): flagged too */
    expect_violation(&r, "evidence", w->a->home, row_name(other_row - 1, row));
    assert_false(has_violation(&r, "evidence", NULL, row_name(good_row, row)));
    assert_int_equal(count_kind(&r, "evidence"), 3);
    assert_int_equal(r.violations_count, 3);
    audit_report_free(&r);
}

/* A (the payer) posts its payment on B's version-2 ACSC: the report must name the body of the
 * Settlement A signed. One names a cheaper copy; one names the Settlement itself. */
static int64_t post_at_a(world_t *w, const settlement_t *named)
{
    node_t *a = w->a, *b = w->b;
    flight_t f;
    flight_send(a, b, 1000, "RUB", &f);
    uint8_t *report = NULL;
    size_t report_len = 0;
    settlement_t copy = f.s;
    if (named != NULL) {
        copy.amount_minor = named->amount_minor;
    }
    sign_report(b, a, &f, 2, named != NULL ? &copy : NULL, &report, &report_len);
    ledger_outcome_t o;
    begin(a->ledger);
    assert_int_equal(
        ledger_resolve(a->ledger, b->name, f.s.uetr, true, NULL, report, report_len, 0, &o),
        LEDGER_OK);
    commit(a->ledger);
    free(report);
    flight_free(&f);
    return last_row(a);
}

static void test_posted_report_names_our_settlement(void **state)
{
    world_t *w = *state;
    node_open(w->a);
    settlement_t cheaper;
    memset(&cheaper, 0, sizeof cheaper);
    cheaper.amount_minor = 1;
    int64_t bad_row = post_at_a(w, &cheaper);
    int64_t good_row = post_at_a(w, NULL);
    node_close(w->a);
    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "evidence", w->a->home, row_name(bad_row, row));
    expect_violation(&r, "evidence", w->a->home, "answers other contents");
    assert_false(has_violation(&r, "evidence", NULL, row_name(good_row, row)));
    assert_int_equal(r.violations_count, 1);
    audit_report_free(&r);
}

/* A re-base row stating that the peer proved `proven` with `proof`. */
static void rebase_row(node_t *n, const node_t *peer, uint64_t sent, uint64_t proven,
                       const uint8_t *proof, size_t proof_len)
{
    ledger_rebase_t rb = {.sent_seq = sent,
                          .acked_seq = proven,
                          .applied_seq = 0,
                          .proven_seq = proven,
                          .proof = proof,
                          .proof_len = proof_len};
    assert_int_equal(ledger_channel_rebase(n->ledger, peer->name, &rb), LEDGER_OK);
}

static void test_rebase_rows_verified(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    sign_to(a, b, MSG_SETTLEMENT, (const uint8_t *)"x", 1, &proof, &proof_len);
    uint64_t k = a->seq_to[b->index];
    begin(a->ledger);
    rebase_row(a, b, k, k, proof, proof_len);
    rebase_row(a, b, k + 1, 0, NULL, 0);
    commit(a->ledger);
    node_close(a);
    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);

    /* a re-base row that states more than its proof shows, or anything without one */
    node_open(a);
    begin(a->ledger);
    rebase_row(a, b, k + 1, k + 1, proof, proof_len);
    rebase_row(a, b, k + 1, 3, NULL, 0);
    commit(a->ledger);
    node_close(a);
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "evidence", a->home, "another sequence than its proof");
    expect_violation(&r, "evidence", a->home, "re-base to 3 without a proof");
    assert_int_equal(r.violations_count, 2);
    audit_report_free(&r);
    free(proof);
}

static void test_tamper_unknown_kind(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_OUT_POSTED, w->ab_settled);
    db_exec(db, "UPDATE journal SET kind = 99 WHERE seq = %lld", (long long)seq);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "chain", w->a->home, row_name(seq, row));
    expect_violation(&r, "chain", w->a->home, "unknown entry kind 99");
    audit_report_free(&r);
}

static void test_tamper_settlement_status(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db,
                             "UPDATE settlements SET status = %d, reason = ''"
                             " WHERE uetr = '%s'",
                             STATUS_SETTLED, w->ba_refused),
                     1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cache"); /* the status is a cache: outside the chain */
    expect_violation(&r, "cache", w->a->home, w->ba_refused);
    audit_report_free(&r);
}

static void test_tamper_settlement_reason(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(
        db_exec(db, "UPDATE settlements SET reason = 'AM04' WHERE uetr = '%s'", w->ab_refused), 1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cache");
    expect_violation(&r, "cache", w->a->home, w->ab_refused);
    audit_report_free(&r);
}

/* Inserts a copy of the settlements row of `from` under UETR `as` (no journal rows). */
static void copy_settlement_row(sqlite3 *db, const char *from, const char *as)
{
    assert_int_equal(db_exec(db,
                             "INSERT INTO settlements(peer, uetr, direction, amount_minor,"
                             " currency, content_hash, status, reason, end_to_end_id, value_date,"
                             " debtor_name, debtor_account, creditor_name, creditor_account,"
                             " remittance, created_ms, canon_hash)"
                             " SELECT peer, '%s', direction, amount_minor, currency, content_hash,"
                             " status, reason, end_to_end_id, value_date, debtor_name,"
                             " debtor_account, creditor_name, creditor_account, remittance,"
                             " created_ms, canon_hash FROM settlements WHERE uetr = '%s'",
                             as, from),
                     1);
}

static void test_tamper_orphan_settlement(void **state)
{
    world_t *w = *state;
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    sqlite3 *db = db_open(w->a->home);
    copy_settlement_row(db, w->ab_settled, uetr);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cache");
    expect_violation(&r, "cache", w->a->home, uetr);
    audit_report_free(&r);
}

/* A second settlements row for a UETR (no constraint forbids it; the ledger never writes one). */
static void test_tamper_second_settlement_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    copy_settlement_row(db, w->ab_settled, w->ab_settled);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    assert_int_equal(count_kind(&r, "duplicate"), 1);
    expect_violation(&r, "duplicate", w->a->home, w->ab_settled);
    expect_violation(&r, "duplicate", w->a->home, "2 times");
    audit_report_free(&r);
}

static void test_tamper_account_balance(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db,
                             "UPDATE accounts SET posted_net = posted_net + 100"
                             " WHERE kind = 'peer' AND peer = '%s' AND currency = 'RUB'",
                             w->b->name),
                     1);
    db_close(db);

    audit_report_t r;
    char account[64];
    snprintf(account, sizeof account, "account %s RUB", w->b->name);
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "balance");
    expect_violation(&r, "balance", w->a->home, account);
    expect_violation(&r, "balance", w->a->home, "(I1)"); /* the clearing side no longer matches */
    audit_report_free(&r);
}

/* Both sides of an account moved together keep I1 but not the replay of the journal. */
static void test_tamper_account_both_sides(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    shift_accounts(db, w->b->name, "USD", (ledger_effect_t){.pending = 0, .posted = 250});
    db_close(db);

    audit_report_t r;
    char account[64];
    snprintf(account, sizeof account, "account %s USD", w->b->name);
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "balance");
    expect_violation(&r, "balance", w->a->home, account);
    assert_false(has_violation(&r, "balance", NULL, "(I1)"));
    audit_report_free(&r);
}

static void test_tamper_missing_account(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db,
                             "DELETE FROM accounts WHERE kind = 'peer' AND peer = '%s'"
                             " AND currency = 'USD'",
                             w->b->name),
                     1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "balance");
    expect_violation(&r, "balance", w->a->home, "missing");
    audit_report_free(&r);
}

static void test_tamper_remittance(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db,
                             "UPDATE settlements SET remittance = 'Invoice 999 (paid twice)'"
                             " WHERE uetr = '%s'",
                             w->ab_settled),
                     1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "content");
    expect_violation(&r, "content", w->a->home, w->ab_settled);
    audit_report_free(&r);
}

static void test_tamper_settlement_amount(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->b->home);
    assert_int_equal(
        db_exec(db, "UPDATE settlements SET amount_minor = 1 WHERE uetr = '%s'", w->ab_settled), 1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->b, &r), 0);
    expect_only(&r, "content");
    expect_violation(&r, "content", w->b->home, w->ab_settled);
    audit_report_free(&r);
}

/* An attacker edits an amount, recomputes the whole chain and fixes the cached balances:
 * only the signed evidence still says what happened. */
static void test_attacker_rechains_and_fixes_cache(void **state)
{
    world_t *w = *state;
    const int64_t forged = BA_SETTLED_USD + 4000;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    assert_int_equal(db_exec(db, "UPDATE journal SET amount_minor = %lld WHERE seq = %lld",
                             (long long)forged, (long long)seq),
                     1);
    rechain(db);
    ledger_effect_t now = ledger_row_effect(ENTRY_IN_BOOKED, DIRECTION_IN, forged);
    ledger_effect_t was = ledger_row_effect(ENTRY_IN_BOOKED, DIRECTION_IN, BA_SETTLED_USD);
    shift_accounts(
        db, w->b->name, "USD",
        (ledger_effect_t){.pending = now.pending - was.pending, .posted = now.posted - was.posted});
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_none(&r, "chain");
    expect_none(&r, "balance");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, "amount");
    audit_report_free(&r);
}

/* An insider holding no key appends a `released` row to a payment that was simply booked,
 * its evidence the booking's own signed reply (an ACSC that verifies), re-chains the journal
 * and moves the balances: every row checks on its own, but a release cannot follow a booking
 * (PROTOCOL.md 3.6.2, node/audit/order.c). */
static void test_attacker_appends_release_to_a_booking(void **state)
{
    world_t *w = *state;
    node_t *b = w->b;
    int64_t before = net_of(b, w->a->name, "RUB");
    sqlite3 *db = db_open(b->home);
    int64_t booked = row_of(db, ENTRY_IN_BOOKED, w->ab_settled);
    int64_t last = db_int(db, "SELECT max(seq) FROM journal");
    assert_int_equal(
        db_exec(db,
                "INSERT INTO journal(seq, settlement_id, kind, peer, uetr, currency, amount_minor,"
                " reason, content_hash, evidence, created_ms, hash, reply)"
                " SELECT %lld, settlement_id, %d, peer, uetr, currency, amount_minor, '',"
                " content_hash, reply, created_ms + 1, hash, NULL FROM journal WHERE seq = %lld",
                (long long)(last + 1), ENTRY_RELEASED, (long long)booked),
        1);
    rechain(db);
    shift_accounts(db, w->a->name, "RUB",
                   ledger_row_effect(ENTRY_RELEASED, DIRECTION_IN, AB_SETTLED_RUB));
    db_close(db);
    assert_int_equal(net_of(b, w->a->name, "RUB"), before + AB_SETTLED_RUB);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_none(&r, "chain");
    expect_none(&r, "evidence"); /* the copied reply verifies */
    expect_violation(&r, "order", b->home, row_name(last + 1, row));
    audit_report_free(&r);
}

/* The same, thoroughly: the settlement row, its content hash and every journal row changed
 * together. Nothing but the evidence (and the peer's books) can tell. */
static void test_attacker_rewrites_whole_payment(void **state)
{
    world_t *w = *state;
    rewrite_amount(w->a, w->b->name, w->ba_usd, BA_SETTLED_USD + 4000);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    audit_report_free(&r);

    /* With the peer's home given too, I2 disagrees as well. */
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "mirror", NULL, "USD");
    audit_report_free(&r);
}

/* Replaces one row's evidence with `ev` and recomputes the chain, so only I4 can object. */
static void replace_evidence(const node_t *n, int64_t seq, const uint8_t *ev, size_t len)
{
    sqlite3 *db = db_open(n->home);
    db_set_blob(db, "journal", "evidence", "seq", seq, ev, len);
    rechain(db);
    db_close(db);
}

/* The Settlement body of a payment, rebuilt from a node's books (the same fields encode to
 * the same bytes the payer signed). */
static void settlement_body(const node_t *n, const char *peer, const char *uetr, uint8_t **body,
                            size_t *len)
{
    char *path = test_path(n->home, LEDGER_FILE);
    ledger_t *l = NULL;
    char err[256];
    assert_int_equal(ledger_open(path, n->name, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    free(path);
    settlement_t s;
    assert_int_equal(ledger_find(l, peer, uetr, &s, NULL), LEDGER_OK);
    ledger_close(&l);
    assert_int_equal(settlement_encode(&s, body, len), 0);
}

static void test_evidence_signed_by_third_node(void **state)
{
    world_t *w = *state;
    node_t *c = node_create(w, "GAMMCNBJ");
    node_close(c);
    uint8_t *body = NULL, *ev = NULL;
    size_t body_len = 0, ev_len = 0;
    settlement_body(w->a, w->b->name, w->ba_usd, &body, &body_len);
    /* A valid message, for A, saying the same thing: but C signed it, not B. */
    sign_to(c, w->a, MSG_SETTLEMENT, body, body_len, &ev, &ev_len);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    db_close(db);
    replace_evidence(w->a, seq, ev, ev_len);
    free(body);
    free(ev);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, w->ba_usd);
    audit_report_free(&r);
}

static void test_evidence_for_another_recipient(void **state)
{
    world_t *w = *state;
    node_t *c = node_create(w, "GAMMCNBJ");
    node_close(c);
    uint8_t *body = NULL, *ev = NULL;
    size_t body_len = 0, ev_len = 0;
    settlement_body(w->a, w->b->name, w->ba_usd, &body, &body_len);
    /* Signed by B, but addressed to C: not evidence of anything between B and A. */
    sign_to(w->b, c, MSG_SETTLEMENT, body, body_len, &ev, &ev_len);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    db_close(db);
    replace_evidence(w->a, seq, ev, ev_len);
    free(body);
    free(ev);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, "recipient");
    audit_report_free(&r);
}

/* The peer's genuine signed message, but for another payment. */
static void test_evidence_from_another_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    int64_t other = row_of(db, ENTRY_IN_BOOKED, w->ba_rub);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, other, &len);
    db_close(db);
    replace_evidence(w->a, seq, ev, len);
    free(ev);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, "another UETR");
    audit_report_free(&r);
}

/* The peer's genuine signed message, but of the wrong type for the row (a Return where a
 * Settlement belongs). */
static void test_evidence_of_wrong_type(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    /* B's signed Return (for ab_returned) stands in for B's Settlement. */
    int64_t other = row_of(db, ENTRY_RETURNED, w->ab_returned);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, other, &len);
    db_close(db);
    replace_evidence(w->a, seq, ev, len);
    free(ev);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    audit_report_free(&r);
}

/* A voided entry whose StatusReport is replaced by one B signed for the same UETR saying
 * ACSC: the report's status contradicts the row. */
static void test_evidence_status_contradicts_row(void **state)
{
    world_t *w = *state;
    Corridor__StatusReport report = CORRIDOR__STATUS_REPORT__INIT;
    report.uetr = w->ab_refused;
    report.status = "ACSC";
    report.reason = "";
    report.currency = "RUB";
    size_t len = corridor__status_report__get_packed_size(&report);
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    corridor__status_report__pack(&report, body);
    uint8_t *ev = NULL;
    size_t ev_len = 0;
    sign_to(w->b, w->a, MSG_STATUS_REPORT, body, len, &ev, &ev_len);
    free(body);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_OUT_VOIDED, w->ab_refused);
    db_close(db);
    replace_evidence(w->a, seq, ev, ev_len);
    free(ev);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    expect_violation(&r, "evidence", w->a->home, "status");
    audit_report_free(&r);
}

/* Hostile evidence bytes: empty and garbage. Reported, never a crash. */
static void test_evidence_empty_and_garbage(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t empty = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    int64_t garbage = row_of(db, ENTRY_IN_BOOKED, w->ba_rub);
    db_set_blob(db, "journal", "evidence", "seq", empty, NULL, 0);
    uint8_t junk[300];
    memset(junk, 0xff, sizeof junk);
    db_set_blob(db, "journal", "evidence", "seq", garbage, junk, sizeof junk);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "evidence", w->a->home, row_name(empty, row));
    expect_violation(&r, "evidence", w->a->home, row_name(garbage, row));
    expect_violation(&r, "chain", w->a->home, row_name(empty, row));
    expect_violation(&r, "chain", w->a->home, row_name(garbage, row));
    audit_report_free(&r);
}

/* A stored hash of the wrong length. */
static void test_tamper_hash_length(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->b->home);
    int64_t seq = row_of(db, ENTRY_IN_REFUSED, w->ab_refused);
    uint8_t short_hash[5] = {1, 2, 3, 4, 5};
    db_set_blob(db, "journal", "hash", "seq", seq, short_hash, sizeof short_hash);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->b, &r), 0);
    expect_only(&r, "chain");
    expect_violation(&r, "chain", w->b->home, row_name(seq, row));
    audit_report_free(&r);
}

/* Deleting the newest row leaves the chain intact (nothing follows it): the caches catch it. */
static void test_tamper_delete_last_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(row_of(db, ENTRY_RETURNED, w->ab_returned), TRAFFIC_ROWS);
    assert_int_equal(db_exec(db, "DELETE FROM journal WHERE seq = %d", TRAFFIC_ROWS), 1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "cache", w->a->home, w->ab_returned);
    expect_violation(&r, "balance", w->a->home, w->b->name);
    audit_report_free(&r);
}

/* The same with the caches put back as they were before the return: one home alone cannot
 * tell a truncated journal from a shorter one, but its peer's books can (I2). */
static void test_tamper_truncate_caught_by_mirror(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db, "DELETE FROM journal WHERE seq = %d", TRAFFIC_ROWS), 1);
    db_exec(db, "UPDATE settlements SET status = %d, reason = '' WHERE uetr = '%s'", STATUS_SETTLED,
            w->ab_returned);
    ledger_effect_t e = ledger_row_effect(ENTRY_RETURNED, DIRECTION_OUT, AB_RETURNED_RUB);
    shift_accounts(db, w->b->name, "RUB",
                   (ledger_effect_t){.pending = -e.pending, .posted = -e.posted});
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_violation(&r, "mirror", NULL, "RUB");
    audit_report_free(&r);
}

/* ---- 3. mirror (I2) ----------------------------------------------------------------------- */

static void test_mirror_disagreement(void **state)
{
    world_t *w = *state;
    audit_report_t r;
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_none(&r, "mirror");
    audit_report_free(&r);

    sqlite3 *db = db_open(w->b->home);
    assert_int_equal(db_exec(db,
                             "UPDATE accounts SET posted_net = posted_net + 1000"
                             " WHERE kind = 'peer' AND peer = '%s' AND currency = 'RUB'",
                             w->a->name),
                     1);
    db_close(db);
    assert_true(net_of(w->a, w->b->name, "RUB") != -net_of(w->b, w->a->name, "RUB"));

    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_violation(&r, "mirror", NULL, "RUB");
    expect_violation(&r, "mirror", NULL, w->a->name);
    expect_violation(&r, "mirror", NULL, w->b->name);
    expect_violation(&r, "balance", w->b->home, w->a->name);
    assert_false(has_violation(&r, "mirror", NULL, "USD")); /* USD still agrees */
    assert_false(has_violation(&r, "balance", w->a->home, NULL));
    audit_report_free(&r);

    /* I2 is between homes: A or B alone has no mirror to hold up. */
    assert_int_equal(audit_one(w->b, &r), 0);
    expect_none(&r, "mirror");
    expect_violation(&r, "balance", w->b->home, NULL);
    audit_report_free(&r);
}

/* A settlement in flight: the nets may differ, and I2 is not checked until it resolves. */
static void test_mirror_skipped_while_pending(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    flight_t f;
    audit_report_t r;

    /* Sent by A, not yet received by B. */
    node_open(a);
    flight_send(a, b, 1000, "RUB", &f);
    node_close(a);
    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, 2 * TRAFFIC_ROWS + 1);
    audit_report_free(&r);

    /* Booked by B; A has not seen the StatusReport: the nets disagree by the amount. */
    node_open(b);
    flight_deliver(a, b, cap_of(b, a, "RUB"), &f);
    node_close(b);
    assert_int_equal(f.outcome.status, STATUS_SETTLED);
    assert_int_equal(net_of(a, b->name, "RUB"), A_NET_RUB);
    assert_int_equal(net_of(b, a->name, "RUB"), -A_NET_RUB + 1000);
    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_none(&r, "mirror");
    expect_clean(&r);
    audit_report_free(&r);

    /* Resolved: I2 is checked again and holds. */
    node_open(a);
    flight_resolve(a, b, &f);
    node_close(a);
    flight_free(&f);
    assert_int_equal(net_of(a, b->name, "RUB"), -net_of(b, a->name, "RUB"));
    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, 2 * TRAFFIC_ROWS + 3);
    audit_report_free(&r);

    /* And with nothing pending, a disagreement is reported (the check is live again). */
    sqlite3 *db = db_open(b->home);
    db_exec(db,
            "UPDATE accounts SET posted_net = posted_net - 1"
            " WHERE kind = 'peer' AND peer = '%s' AND currency = 'RUB'",
            a->name);
    db_close(db);
    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_violation(&r, "mirror", NULL, "RUB");
    audit_report_free(&r);
}

/* An insider flips B's payment booked at A to refused, consistently: kind, reason, status
 * cache, balances, chain recomputed. Before schema 4 only the peer's books could tell; now
 * our own signed ACSC in the row contradicts it, and a row stripped of it lacks our answer. */
static void test_flip_booked_to_refused(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, w->ba_rub);
    db_exec(db, "UPDATE journal SET kind = %d, reason = 'AM02' WHERE seq = %lld", ENTRY_IN_REFUSED,
            (long long)seq);
    db_exec(db, "UPDATE settlements SET status = %d, reason = 'AM02' WHERE uetr = '%s'",
            STATUS_REJECTED, w->ba_rub);
    ledger_effect_t booked = ledger_row_effect(ENTRY_IN_BOOKED, DIRECTION_IN, BA_SETTLED_RUB);
    shift_accounts(db, w->b->name, "RUB", (ledger_effect_t){-booked.pending, -booked.posted});
    rechain(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_none(&r, "chain");
    expect_none(&r, "balance");
    expect_violation(&r, "evidence", w->a->home, "contradicts our own signed reply");
    audit_report_free(&r);

    db_exec(db, "UPDATE journal SET reply = NULL WHERE seq = %lld", (long long)seq);
    rechain(db);
    db_close(db);
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_none(&r, "chain");
    expect_violation(&r, "evidence", w->a->home, "without our signed answer");
    audit_report_free(&r);
}

/* ---- 4. duplicate UETR (I3) --------------------------------------------------------------- */

/* Appends a copy of journal row `seq` as the newest row (then rechain). */
static void append_copy_of_row(sqlite3 *db, int64_t seq)
{
    assert_int_equal(db_exec(db,
                             "INSERT INTO journal(seq, settlement_id, kind, peer, uetr, currency,"
                             " amount_minor, reason, content_hash, evidence, created_ms, hash,"
                             " reply) SELECT (SELECT max(seq) + 1 FROM journal), settlement_id,"
                             " kind, peer, uetr, currency, amount_minor, reason, content_hash,"
                             " evidence, created_ms + 1, hash, reply FROM journal WHERE seq = %lld",
                             (long long)seq),
                     1);
}

static void test_duplicate_uetr_refused_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    append_copy_of_row(db, row_of(db, ENTRY_IN_REFUSED, w->ba_refused));
    rechain(db);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "duplicate");
    assert_int_equal(count_kind(&r, "duplicate"), 1);
    expect_violation(&r, "duplicate", w->a->home, w->ba_refused);
    expect_violation(&r, "duplicate", w->a->home, "2 times");
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 1);
    audit_report_free(&r);
}

/* A booked row booked twice, with the cached balances raised to match: only I3 can tell. */
static void test_duplicate_uetr_booked_row(void **state)
{
    world_t *w = *state;
    sqlite3 *db = db_open(w->a->home);
    append_copy_of_row(db, row_of(db, ENTRY_IN_BOOKED, w->ba_rub));
    rechain(db);
    shift_accounts(db, w->b->name, "RUB",
                   ledger_row_effect(ENTRY_IN_BOOKED, DIRECTION_IN, BA_SETTLED_RUB));
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "duplicate");
    expect_violation(&r, "duplicate", w->a->home, w->ba_rub);
    audit_report_free(&r);
}

/* ---- 5. unreadable -------------------------------------------------------------------------- */

static void test_unreadable_garbage_ledger(void **state)
{
    world_t *w = *state;
    char garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++) {
        garbage[i] = (char)('a' + i % 26);
    }
    char *path = test_path(w->a->home, LEDGER_FILE);
    test_write_file(path, garbage, sizeof garbage, 0600);
    free(path);

    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), -1);
    expect_only(&r, "unreadable");
    expect_violation(&r, "unreadable", w->a->home, LEDGER_FILE);
    assert_int_equal(r.entries_checked, 0);
    audit_report_free(&r);

    /* The other home is still audited in full; no mirror with an unreadable one. */
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), -1);
    expect_only(&r, "unreadable");
    assert_false(has_violation(&r, "unreadable", w->b->home, NULL));
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS);
    audit_report_free(&r);
}

static void test_unreadable_truncated_ledger(void **state)
{
    world_t *w = *state;
    char *path = test_path(w->a->home, LEDGER_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 4096);
    assert_int_equal(truncate(path, 2048), 0); /* half of the first page */
    free(path);

    audit_report_t r;
    int rc = audit_one(w->a, &r);
    expect_violation(&r, "unreadable", w->a->home, NULL);
    assert_true(rc == -1 || rc == 0);
    audit_report_free(&r);
}

static void test_unreadable_missing_home(void **state)
{
    world_t *w = *state;
    char *nowhere = test_path(w->dir, "NOWHERE");
    audit_report_t r;
    assert_int_equal(audit_two(nowhere, w->b->home, &r), -1);
    expect_violation(&r, "unreadable", nowhere, NULL);
    assert_false(has_violation(&r, "unreadable", w->b->home, NULL));
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS);
    audit_report_free(&r);
    free(nowhere);
}

static void test_unreadable_missing_ledger(void **state)
{
    world_t *w = *state;
    char *path = test_path(w->a->home, LEDGER_FILE);
    assert_int_equal(unlink(path), 0);
    free(path);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), -1);
    expect_only(&r, "unreadable");
    audit_report_free(&r);
}

/* B's ledger in A's home: another node's books are not A's. */
static void test_unreadable_foreign_ledger(void **state)
{
    world_t *w = *state;
    copy_file(w->b->home, w->a->home, LEDGER_FILE);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), -1);
    expect_only(&r, "unreadable");
    expect_violation(&r, "unreadable", w->a->home, w->b->name);
    audit_report_free(&r);
}

/* ---- 6. a copy without the key file ------------------------------------------------------ */

static void test_copy_without_key(void **state)
{
    world_t *w = *state;
    const char *copy = copy_home_without_key(w, w->a, "COPYOFA");
    char *key = test_path(copy, IDENTITY_KEY_FILE);
    assert_int_equal(access(key, F_OK), -1);
    free(key);

    audit_report_t r;
    const char *homes[] = {copy};
    audit_report_init(&r);
    assert_int_equal(audit_homes(homes, 1, NULL, 0, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS);
    assert_int_equal(r.own_unchecked_count, 1); /* and the report says so */
    audit_report_free(&r);

    /* with the auditor's card of A, A's own signatures are checked after all */
    peer_card_t card_of_a;
    identity_card(w->a->identity, w->a->name, w->a->config->listen, &card_of_a);
    audit_report_init(&r);
    assert_int_equal(audit_homes(homes, 1, &card_of_a, 1, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.own_unchecked_count, 0);
    audit_report_free(&r);

    /* The copy still pairs with B for I2. */
    assert_int_equal(audit_two(copy, w->b->home, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, 2 * TRAFFIC_ROWS);
    audit_report_free(&r);

    /* Own signatures cannot be checked there, but the chain still covers their bytes, and
     * the peer's signatures are still checked with the key from the config. */
    sqlite3 *db = db_open(copy);
    int64_t own = row_of(db, ENTRY_OUT_PENDING, w->ab_settled);
    int64_t peer = row_of(db, ENTRY_IN_BOOKED, w->ba_usd);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, own, &len);
    ev[len - 1] ^= 0x01;
    db_set_blob(db, "journal", "evidence", "seq", own, ev, len);
    free(ev);
    ev = evidence_of(db, peer, &len);
    ev[len - 1] ^= 0x01;
    db_set_blob(db, "journal", "evidence", "seq", peer, ev, len);
    free(ev);
    db_close(db);
    char row[32];
    audit_report_init(&r);
    assert_int_equal(audit_homes(homes, 1, NULL, 0, &r), 0);
    expect_violation(&r, "chain", copy, row_name(own, row));
    expect_violation(&r, "evidence", copy, row_name(peer, row));
    audit_report_free(&r);
}

/* A key file that group can read is not loaded (as by the node): the audit goes on without
 * checking own signatures rather than failing. */
static void test_unsafe_key_file_mode(void **state)
{
    world_t *w = *state;
    char *key = test_path(w->a->home, IDENTITY_KEY_FILE);
    assert_int_equal(chmod(key, 0640), 0);
    free(key);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS);
    audit_report_free(&r);
}

/* The evidence of a return must say the entry's amount and currency, not only its UETR and
 * reason (audit.h: evidence "says what the entry says (UETR, amount, currency, status)").
 * Scenario: a copy of A's home without node.key (so A's own signed Settlement cannot be
 * checked); the returned A -> B payment's amount is rewritten consistently (settlement row,
 * content hash, every journal row, chain, balances). B's signed Return, the evidence of the
 * ENTRY_RETURNED row, still says the original amount: an "evidence" violation on that row (a
 * return nets to zero, so I2 with B would agree and cannot catch it). */
static void test_return_evidence_amount_checked(void **state)
{
    world_t *w = *state;
    const char *copy = copy_home_without_key(w, w->a, "COPYOFA");
    node_t shadow = *w->a; /* the copy, seen as node A */
    shadow.home = w->copy;
    shadow.ledger = NULL;
    rewrite_amount(&shadow, w->b->name, w->ab_returned, AB_RETURNED_RUB * 9);
    sqlite3 *db = db_open(copy);
    int64_t seq = row_of(db, ENTRY_RETURNED, w->ab_returned);
    db_close(db);

    audit_report_t r;
    char row[32];
    const char *homes[] = {copy};
    audit_report_init(&r);
    assert_int_equal(audit_homes(homes, 1, NULL, 0, &r), 0);
    expect_violation(&r, "evidence", copy, row_name(seq, row));
    audit_report_free(&r);
}

/* A refused row's amount and currency come from the very body the peer signed (ledger_receive
 * asserts a valid UETR, so a settlement that did not decode cannot be recorded), so the audit
 * compares them as for a booked row. Scenario: in A's home, key file present, the refused
 * B -> A USD payment's amount is rewritten consistently (settlement row, content hash, journal
 * row, chain; a refused row moves no balance). B's signed Settlement still says the original
 * amount: an "evidence" violation on the refused row (else `ledger` and `reconcile` would show
 * a refused amount B never sent). */
static void test_refused_evidence_amount_checked(void **state)
{
    world_t *w = *state;
    rewrite_amount(w->a, w->b->name, w->ba_refused, BA_REFUSED_USD * 5);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_IN_REFUSED, w->ba_refused);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "evidence", w->a->home, row_name(seq, row));
    audit_report_free(&r);
}

/* ---- 7. signing-key rotation (PROTOCOL.md 2.14, 3.5.7, 3.6.2) ------------------------------ */

/* Records one key of a channel side's history from an identity's public keys (ledger_key_add,
 * inside the caller's transaction), as the channel's record_key does. */
static void add_key(ledger_t *l, const char *peer, key_side_t side, const identity_t *keys,
                    uint64_t first_seq, const char *source, const uint8_t *evidence,
                    size_t evidence_len)
{
    key_record_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.peer, sizeof k.peer, "%s", peer);
    k.side = side;
    memcpy(k.key_id, keys->key_id, sizeof k.key_id);
    memcpy(k.sign_public, keys->sign_public, sizeof k.sign_public);
    memcpy(k.box_public, keys->box_public, sizeof k.box_public);
    snprintf(k.curve_public, sizeof k.curve_public, "%s", keys->curve_public);
    k.first_seq = first_seq;
    snprintf(k.source, sizeof k.source, "%s", source);
    k.evidence = (uint8_t *)evidence;
    k.evidence_len = evidence_len;
    assert_int_equal(ledger_key_add(l, &k), LEDGER_OK);
}

/* A rotates its keys on the channel with B exactly as 2.14 says: new signing and box keys (the
 * CURVE key stays), the KeyAnnounce at A's next sequence N to B, signed by the old key; both
 * key histories record the old key from 1 (card) and the new one from N + 1 (announced, the
 * KeyAnnounce as evidence), A's as ours under B's name, B's as theirs under A's name; A's key
 * file now holds the new keys. Then A pays B at N + 1 under the new key (booked by B, posted
 * by A), and B pays A addressed to A's new key (A's report at N + 2): both homes hold evidence
 * of both keys. */
static void rotate_a(world_t *w)
{
    node_t *a = w->a, *b = w->b;
    assert_null(w->a_old);
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(box, sizeof box);
    identity_t *next = identity_from_secrets(seed, box, a->identity->curve_secret);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(box, sizeof box);
    assert_non_null(next);
    assert_memory_not_equal(next->key_id, a->identity->key_id, IDENTITY_KEY_ID_BYTES);
    assert_memory_not_equal(next->box_public, a->identity->box_public, sizeof next->box_public);
    assert_string_equal(next->curve_public, a->identity->curve_public);

    uint8_t *body = NULL, *announce = NULL;
    size_t body_len = 0, announce_len = 0;
    assert_int_equal(key_announce_encode(next, a->identity->key_id, NULL, &body, &body_len), 0);
    key_announce_t decoded; /* what B's channel checks before it applies it */
    assert_int_equal(key_announce_decode(body, body_len, a->identity->key_id, &decoded), 0);
    assert_memory_equal(decoded.sign_public, next->sign_public, sizeof decoded.sign_public);
    uint64_t n = ++a->seq_to[b->index];
    assert_int_equal(envelope_sign_version(a->identity, INNER_VERSION_MAX, b->identity->key_id,
                                           MSG_KEY_ANNOUNCE, n, body, body_len, &announce,
                                           &announce_len),
                     ENV_OK);
    free(body);

    node_open(a);
    node_open(b);
    begin(a->ledger);
    add_key(a->ledger, b->name, KEY_SIDE_OURS, a->identity, 1, "card", NULL, 0);
    add_key(a->ledger, b->name, KEY_SIDE_OURS, next, n + 1, "announced", announce, announce_len);
    commit(a->ledger);
    begin(b->ledger);
    add_key(b->ledger, a->name, KEY_SIDE_THEIRS, a->identity, 1, "card", NULL, 0);
    add_key(b->ledger, a->name, KEY_SIDE_THEIRS, next, n + 1, "announced", announce, announce_len);
    commit(b->ledger);
    free(announce);

    char *key = test_path(a->home, IDENTITY_KEY_FILE);
    assert_int_equal(identity_save(next, key), ID_OK);
    identity_t *saved = NULL;
    assert_int_equal(identity_load(key, &saved), ID_OK);
    assert_memory_equal(saved->key_id, next->key_id, IDENTITY_KEY_ID_BYTES);
    identity_destroy(&saved);
    free(key);
    w->a_old = a->identity;
    a->identity = next;
    w->announced_at = n;

    assert_int_equal(pay(a, b, 1000, "RUB", w->ab_rotated), STATUS_SETTLED);
    assert_int_equal(a->seq_to[b->index], n + 1);
    assert_int_equal(pay(b, a, 700, "RUB", w->ba_rotated), STATUS_SETTLED);
    assert_int_equal(a->seq_to[b->index], n + 2);
    node_close(a);
    node_close(b);
}

/* Journal rows on each side after rotate_a: its two payments add the payer's pending and
 * posted rows and the payee's booking row. */
#define ROTATED_ROWS (TRAFFIC_ROWS + 3)

static const char *key_hex(const uint8_t key_id[static IDENTITY_KEY_ID_BYTES],
                           char hex[static 2 * IDENTITY_KEY_ID_BYTES + 1])
{
    sodium_bin2hex(hex, 2 * IDENTITY_KEY_ID_BYTES + 1, key_id, IDENTITY_KEY_ID_BYTES);
    return hex;
}

/* The report's entry for the key `key_id` trusted for `peer` in `home`, or NULL. */
static const audit_key_t *report_key(const audit_report_t *r, const char *home, const char *peer,
                                     const uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
{
    char hex[2 * IDENTITY_KEY_ID_BYTES + 1];
    key_hex(key_id, hex);
    for (size_t i = 0; i < r->keys_count; i++) {
        const audit_key_t *k = &r->keys[i];
        if (strcmp(k->home, home) == 0 && strcmp(k->peer, peer) == 0 &&
            strcmp(k->key_id, hex) == 0) {
            return k;
        }
    }
    return NULL;
}

static size_t report_keys_of(const audit_report_t *r, const char *home, const char *peer)
{
    size_t n = 0;
    for (size_t i = 0; i < r->keys_count; i++) {
        n += strcmp(r->keys[i].home, home) == 0 && strcmp(r->keys[i].peer, peer) == 0;
    }
    return n;
}

/* Audits homes with the auditor's cards (corridor audit --peer-card). */
static int audit_cards(const char *const *homes, size_t homes_count, const peer_card_t *cards,
                       size_t cards_count, audit_report_t *r)
{
    audit_report_init(r);
    return audit_homes(homes, homes_count, cards, cards_count, r);
}

/* The stale-key text (ENV_E_STALE_KEY) the audit gives for evidence outside its key's range. */
static const char *stale_text(void)
{
    return env_strerror(ENV_E_STALE_KEY);
}

static void test_rotated_key_audits_clean(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    const uint64_t n = w->announced_at;
    assert_int_equal(journal_rows(a), ROTATED_ROWS);
    assert_int_equal(journal_rows(b), ROTATED_ROWS);
    assert_int_equal(net_of(a, b->name, "RUB"), A_NET_RUB - 1000 + 700);
    assert_int_equal(net_of(b, a->name, "RUB"), -(A_NET_RUB - 1000 + 700));

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, ROTATED_ROWS);
    audit_report_free(&r);
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);

    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, 2 * ROTATED_ROWS);
    /* B's home trusts both of A's keys, each for the numbers it signed there: the old one A's
     * three Settlements and three StatusReports (1 to 6), the new one the Settlement at N + 1
     * and the StatusReport at N + 2. Nothing is trusted from a card of the auditor's. */
    assert_int_equal(report_keys_of(&r, b->home, a->name), 2);
    const audit_key_t *old = report_key(&r, b->home, a->name, w->a_old->key_id);
    const audit_key_t *now = report_key(&r, b->home, a->name, a->identity->key_id);
    assert_non_null(old);
    assert_non_null(now);
    assert_false(old->from_card);
    assert_false(now->from_card);
    assert_int_equal(old->rows, 6);
    assert_int_equal(old->first_seq, 1);
    assert_int_equal(old->last_seq, n - 1);
    assert_int_equal(now->rows, 2);
    assert_int_equal(now->first_seq, n + 1);
    assert_int_equal(now->last_seq, n + 2);
    /* A's home: B did not rotate, one key. */
    assert_int_equal(report_keys_of(&r, a->home, b->name), 1);
    assert_non_null(report_key(&r, a->home, b->name, b->identity->key_id));
    audit_report_free(&r);
}

/* The auditor's --peer-card of A holds either A's old key or A's new one: either end anchors the
 * chain, in B's home (A's key as the peer's) and in A's (as its own), and the config's older card
 * of A in B's home is no "key" violation, as the history holds it. */
static void test_rotation_with_auditor_card_of_either_key(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    const identity_t *keys[] = {w->a_old, a->identity};
    const char *homes[] = {a->home, b->home};
    for (size_t i = 0; i < 2; i++) {
        peer_card_t card;
        identity_card(keys[i], a->name, a->config->listen, &card);
        audit_report_t r;
        assert_int_equal(audit_cards(homes, 2, &card, 1, &r), 0);
        expect_clean(&r);
        assert_int_equal(r.entries_checked, 2 * ROTATED_ROWS);
        assert_int_equal(r.own_unchecked_count, 0);
        const audit_key_t *carded = report_key(&r, b->home, a->name, keys[i]->key_id);
        const audit_key_t *other = report_key(&r, b->home, a->name, keys[1 - i]->key_id);
        assert_non_null(carded);
        assert_non_null(other);
        assert_true(carded->from_card);
        assert_false(other->from_card);
        assert_true(carded->rows > 0 && other->rows > 0);
        audit_report_free(&r);

        /* the same card, each home alone */
        for (size_t h = 0; h < 2; h++) {
            assert_int_equal(audit_cards(&homes[h], 1, &card, 1, &r), 0);
            expect_clean(&r);
            audit_report_free(&r);
        }
    }

    /* Both cards at once are a key history of A's too. */
    peer_card_t both[2];
    identity_card(w->a_old, a->name, a->config->listen, &both[0]);
    identity_card(a->identity, a->name, a->config->listen, &both[1]);
    audit_report_t r;
    assert_int_equal(audit_cards(&homes[1], 1, both, 2, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
}

/* The journal row in `n`'s home of `kind` for `uetr`. */
static int64_t row_in(const node_t *n, entry_kind_t kind, const char *uetr)
{
    sqlite3 *db = db_open(n->home);
    int64_t seq = row_of(db, kind, uetr);
    db_close(db);
    return seq;
}

/* (a) An insider at B deletes the announcement of A's new key from B's history. The old key's
 * range still ends at N (a "keys" violation: the newest key is closed), and with the old key
 * reopened as well the history is consistent again, but then every row A's new key signed, and
 * B's own Settlement addressed to it, no longer verify. */
static void test_rotation_announced_row_deleted(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    int64_t booked = row_in(b, ENTRY_IN_BOOKED, w->ab_rotated);
    int64_t posted = row_in(b, ENTRY_OUT_POSTED, w->ba_rotated);
    int64_t pending = row_in(b, ENTRY_OUT_PENDING, w->ba_rotated);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_exec(db,
                             "DELETE FROM keys WHERE peer = '%s' AND side = %d"
                             " AND source = 'announced'",
                             a->name, KEY_SIDE_THEIRS),
                     1);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, a->name);
    expect_violation(&r, "keys", b->home, "closed");
    expect_violation(&r, "evidence", b->home, row_name(booked, row));
    expect_violation(&r, "evidence", b->home, w->ab_rotated);
    expect_violation(&r, "evidence", b->home, row_name(posted, row));
    audit_report_free(&r);

    assert_int_equal(db_exec(db,
                             "UPDATE keys SET last_seq = 0 WHERE peer = '%s' AND side = %d"
                             " AND source = 'card'",
                             a->name, KEY_SIDE_THEIRS),
                     1);
    db_close(db);
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", b->home, row_name(booked, row));
    expect_violation(&r, "evidence", b->home, row_name(posted, row));
    expect_violation(&r, "evidence", b->home, row_name(pending, row));
    expect_violation(&r, "evidence", b->home, "another recipient");
    assert_int_equal(count_kind(&r, "evidence"), 3);
    audit_report_free(&r);
}

/* (b) An insider at B replaces A's new signing key in B's history by one of his own (key id
 * and public key consistent, the genuine announcement kept), then only the new box key: either
 * way the announcement names other keys. */
static void test_rotation_new_key_swapped(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    identity_t *mallory = identity_generate();
    assert_non_null(mallory);
    char pub[2 * crypto_sign_PUBLICKEYBYTES + 1], id[2 * IDENTITY_KEY_ID_BYTES + 1];
    sodium_bin2hex(pub, sizeof pub, mallory->sign_public, sizeof mallory->sign_public);
    key_hex(mallory->key_id, id);
    identity_destroy(&mallory);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_exec(db,
                             "UPDATE keys SET sign_public = X'%s', key_id = X'%s'"
                             " WHERE peer = '%s' AND side = %d AND source = 'announced'",
                             pub, id, a->name, KEY_SIDE_THEIRS),
                     1);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, a->name);
    expect_violation(&r, "keys", b->home, "names other keys");
    assert_int_equal(count_kind(&r, "keys"), 1);
    /* the chain is not trusted, so neither is the swapped key: A's new key's rows fail too */
    expect_violation(&r, "evidence", b->home,
                     row_name(row_in(b, ENTRY_IN_BOOKED, w->ab_rotated), row));
    audit_report_free(&r);

    /* The signing key put back, only the box key swapped (B would seal to the insider's). */
    sodium_bin2hex(pub, sizeof pub, a->identity->sign_public, sizeof a->identity->sign_public);
    key_hex(a->identity->key_id, id);
    uint8_t box_public[crypto_box_PUBLICKEYBYTES], box_secret[crypto_box_SECRETKEYBYTES];
    crypto_box_keypair(box_public, box_secret);
    sodium_memzero(box_secret, sizeof box_secret);
    char box[2 * crypto_box_PUBLICKEYBYTES + 1];
    sodium_bin2hex(box, sizeof box, box_public, sizeof box_public);
    db = db_open(b->home);
    assert_int_equal(db_exec(db,
                             "UPDATE keys SET sign_public = X'%s', key_id = X'%s',"
                             " box_public = X'%s' WHERE peer = '%s' AND side = %d"
                             " AND source = 'announced'",
                             pub, id, box, a->name, KEY_SIDE_THEIRS),
                     1);
    db_close(db);
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, a->name);
    expect_violation(&r, "keys", b->home, "names other keys");
    assert_int_equal(count_kind(&r, "keys"), 1);
    audit_report_free(&r);
}

/* (c) The old key's range raised past N in B's history: the ranges overlap. */
static void test_rotation_ranges_overlap(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_int(db,
                            "SELECT last_seq FROM keys WHERE peer = '%s' AND side = %d"
                            " AND source = 'card'",
                            a->name, KEY_SIDE_THEIRS),
                     (int64_t)w->announced_at);
    assert_int_equal(db_exec(db,
                             "UPDATE keys SET last_seq = last_seq + 1 WHERE peer = '%s'"
                             " AND side = %d AND source = 'card'",
                             a->name, KEY_SIDE_THEIRS),
                     1);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, a->name);
    expect_violation(&r, "keys", b->home, "do not meet");
    assert_int_equal(count_kind(&r, "keys"), 1);
    audit_report_free(&r);
}

/* (d) Someone holding A's old key after the rotation (stolen, or A itself) pays B at N + 3
 * with it, and both books record the payment as if it had been accepted (written through the
 * library, so the chain links it): the old key signs only up to N, so the Settlement is stale
 * in B's home (the peer's key) and in A's (its own key). */
static void test_rotation_old_key_signs_after_announcement(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    flight_t f;
    memset(&f, 0, sizeof f);
    settlement_make(a, b, 500, "RUB", &f.s);
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(settlement_encode(&f.s, &body, &body_len), 0);
    uint64_t seq = ++a->seq_to[b->index];
    assert_int_equal(seq, w->announced_at + 3);
    assert_int_equal(envelope_sign(w->a_old, b->identity->key_id, MSG_SETTLEMENT, seq, body,
                                   body_len, &f.settlement_msg, &f.settlement_len),
                     ENV_OK);
    free(body);
    node_open(a);
    node_open(b);
    ledger_outcome_t o;
    begin(a->ledger);
    assert_int_equal(ledger_send(a->ledger, &f.s, f.settlement_msg, f.settlement_len, 0, &o),
                     LEDGER_OK);
    commit(a->ledger);
    int64_t pending = last_row(a);
    flight_deliver(a, b, cap_of(b, a, "RUB"), &f);
    assert_int_equal(f.outcome.status, STATUS_SETTLED);
    int64_t booked = last_row(b);
    flight_resolve(a, b, &f);
    node_close(a);
    node_close(b);
    char uetr[UETR_SIZE];
    snprintf(uetr, sizeof uetr, "%s", f.s.uetr);
    flight_free(&f);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "evidence");
    assert_int_equal(count_kind(&r, "evidence"), 1);
    expect_violation(&r, "evidence", b->home, row_name(booked, row));
    expect_violation(&r, "evidence", b->home, uetr);
    expect_violation(&r, "evidence", b->home, stale_text());
    audit_report_free(&r);

    assert_int_equal(audit_one(a, &r), 0);
    expect_only(&r, "evidence");
    assert_int_equal(count_kind(&r, "evidence"), 1);
    expect_violation(&r, "evidence", a->home, row_name(pending, row));
    expect_violation(&r, "evidence", a->home, stale_text());
    audit_report_free(&r);
}

/* The converse: a holder of A's new key cannot claim the old key's numbers. B's booking of the
 * post-rotation payment gets, as its evidence, the same Settlement signed by the new key at N
 * (the KeyAnnounce's number) instead of N + 1; chain recomputed. */
static void test_rotation_new_key_signs_before_its_range(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    uint8_t *body = NULL, *ev = NULL;
    size_t body_len = 0, ev_len = 0;
    settlement_body(b, a->name, w->ab_rotated, &body, &body_len);
    assert_int_equal(envelope_sign(a->identity, b->identity->key_id, MSG_SETTLEMENT,
                                   w->announced_at, body, body_len, &ev, &ev_len),
                     ENV_OK);
    free(body);
    int64_t seq = row_in(b, ENTRY_IN_BOOKED, w->ab_rotated);
    replace_evidence(b, seq, ev, ev_len);
    free(ev);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "evidence");
    assert_int_equal(count_kind(&r, "evidence"), 1);
    expect_violation(&r, "evidence", b->home, row_name(seq, row));
    expect_violation(&r, "evidence", b->home, stale_text());
    audit_report_free(&r);
}

/* (e) B revokes A's new key (ledger_key_revoke, as an operator would): from a number after
 * everything it signed, nothing changes; from N + 1, the payment it signed there and the
 * StatusReport at N + 2 are outside its range. */
static void test_rotation_new_key_revoked(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    const uint64_t n = w->announced_at;
    node_open(b);
    begin(b->ledger);
    assert_int_equal(ledger_key_revoke(b->ledger, a->name, KEY_SIDE_THEIRS, n + 3, NULL),
                     LEDGER_OK);
    commit(b->ledger);
    node_close(b);
    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);

    node_open(b);
    begin(b->ledger);
    assert_int_equal(
        ledger_key_revoke(b->ledger, a->name, KEY_SIDE_THEIRS, n + 1, w->a_old->key_id), LEDGER_OK);
    commit(b->ledger);
    node_close(b);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_int(db,
                            "SELECT revoked_from FROM keys WHERE peer = '%s' AND side = %d"
                            " AND source = 'announced'",
                            a->name, KEY_SIDE_THEIRS),
                     (int64_t)(n + 1));
    db_close(db);
    int64_t booked = row_in(b, ENTRY_IN_BOOKED, w->ab_rotated);
    int64_t posted = row_in(b, ENTRY_OUT_POSTED, w->ba_rotated);
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "evidence");
    assert_int_equal(count_kind(&r, "evidence"), 2);
    expect_violation(&r, "evidence", b->home, row_name(booked, row));
    expect_violation(&r, "evidence", b->home, row_name(posted, row));
    expect_violation(&r, "evidence", b->home, stale_text());
    audit_report_free(&r);
}

/* (f) In A's own home, a byte of the signature on its announcement (its own key history, side
 * ours) flipped: the chain of its keys breaks ("keys", naming the channel's peer B). */
static void test_rotation_own_history_evidence_flipped(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    sqlite3 *db = db_open(a->home);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT evidence FROM keys WHERE peer = ?1 AND side = ?2"
                                        " AND source = 'announced'",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, b->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, KEY_SIDE_OURS);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    size_t len = (size_t)sqlite3_column_bytes(stmt, 0);
    assert_true(len > crypto_sign_BYTES);
    uint8_t *ev = malloc(len);
    assert_non_null(ev);
    memcpy(ev, sqlite3_column_blob(stmt, 0), len);
    sqlite3_finalize(stmt);
    ev[len - 1] ^= 0x01; /* inside the old key's signature */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE keys SET evidence = ?1 WHERE peer = ?2"
                                        " AND side = ?3 AND source = 'announced'",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, ev, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, b->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, KEY_SIDE_OURS);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(stmt);
    free(ev);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "keys", a->home, b->name);
    expect_violation(&r, "keys", a->home, "does not sign");
    assert_int_equal(count_kind(&r, "keys"), 1);
    audit_report_free(&r);
    /* B's home is untouched */
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
}

/* B revokes A's OLD key from sequence 1 (the whole of its range; ledger_key_revoke accepts
 * from_seq 1), keeping the new one: every row at B that A's old key signed is reported as
 * signed outside its key's range (2.14). It found verify_keys reading "revoked from 1" as the
 * key's last number 0, which trust_verify took for "no end": a clean audit. */
static void test_rotation_old_key_revoked_from_one(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    rotate_a(w);
    node_open(b);
    begin(b->ledger);
    assert_int_equal(ledger_key_revoke(b->ledger, a->name, KEY_SIDE_THEIRS, 1, a->identity->key_id),
                     LEDGER_OK);
    commit(b->ledger);
    node_close(b);
    int64_t booked = row_in(b, ENTRY_IN_BOOKED, w->ab_settled);
    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "evidence", b->home, row_name(booked, row));
    expect_violation(&r, "evidence", b->home, stale_text());
    /* A's three Settlements and three StatusReports of before the rotation */
    assert_int_equal(count_kind(&r, "evidence"), 6);
    audit_report_free(&r);
}

/* ---- 8. key replacement after a leak (PROTOCOL.md 2.15) -------------------------------------- */

/* New signing and box keys for `n`, its CURVE key kept, as `corridor key replace` makes them. */
static identity_t *replacement_keys(const node_t *n)
{
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(box, sizeof box);
    identity_t *next = identity_from_secrets(seed, box, n->identity->curve_secret);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(box, sizeof box);
    assert_non_null(next);
    assert_memory_not_equal(next->key_id, n->identity->key_id, IDENTITY_KEY_ID_BYTES);
    return next;
}

/* The operator record `peer add --replace` writes with the replacement (cli_replace.c), in
 * the caller's transaction: on `peer`'s channel, `key_id` took the place of `replaced`. */
static void record_peer_replacement(ledger_t *l, const char *peer,
                                    const uint8_t key_id[static IDENTITY_KEY_ID_BYTES],
                                    const uint8_t replaced[static IDENTITY_KEY_ID_BYTES],
                                    uint64_t first_seq, uint64_t revoked_from)
{
    char new_hex[2 * IDENTITY_KEY_ID_BYTES + 1], old_hex[2 * IDENTITY_KEY_ID_BYTES + 1];
    json_t *args =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "side", "theirs", "key_id", key_hex(key_id, new_hex),
                  "replaced_key_id", key_hex(replaced, old_hex), "first_seq", (json_int_t)first_seq,
                  "revoked_from", (json_int_t)revoked_from);
    assert_non_null(args);
    assert_int_equal(operation_record(l, (long long)getuid(), "replace", peer, args), LEDGER_OK);
}

/* B's operator puts A's new card (keys `next`) in place of A's key, as `peer add --replace
 * CARD [--from revoke_from]` does on B's stopped node: B's channel applied A's messages through
 * A's last one; replace_peer_key and the operator record naming `named` as the new key (NULL:
 * no record) in one transaction; B's config then holds A's new card. */
static key_replaced_t replace_a_at_b(world_t *w, const identity_t *next, uint64_t revoke_from,
                                     const uint8_t *named)
{
    node_t *a = w->a, *b = w->b;
    config_peer_t *p = config_find_peer(b->config, a->name);
    assert_non_null(p);
    peer_card_t card;
    identity_card(next, a->name, a->config->listen, &card);
    uint64_t applied = a->seq_to[b->index];
    node_open(b);
    begin(b->ledger);
    assert_int_equal(ledger_channel_set_applied(b->ledger, a->name, applied, NULL, 0), LEDGER_OK);
    key_replaced_t out;
    assert_int_equal(replace_peer_key(b->ledger, &p->card, &card, revoke_from, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_int_equal(out.first_seq, applied + 1);
    if (named != NULL) {
        record_peer_replacement(b->ledger, a->name, named, out.replaced_key_id, out.first_seq,
                                revoke_from == 0 ? out.first_seq : revoke_from);
    }
    commit(b->ledger);
    node_close(b);
    p->card = card;
    save_config(b);
    return out;
}

/* From now on A signs with `next` (its old keys kept in w->a_old). */
static void a_uses(world_t *w, identity_t *next)
{
    assert_null(w->a_old);
    w->a_old = w->a->identity;
    w->a->identity = next;
}

/* A's key replaced in B's books after A's six messages (applied 6, the new key from 7) with the
 * operator's record: B audits clean, A's evidence of before the replacement verifying under the
 * old key and a payment after it under the new one, each key used for its own numbers. */
/* Three replacements of A's key at B before B applies anything more leave two keys closed
 * empty at the same number: the history gives them in the order they were recorded, whatever
 * their key ids, and the audit follows the recorded replacements (both orders of ids). */
static void replace_thrice(void **state, bool descending)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *k[3];
    k[0] = replacement_keys(a);
    for (;;) {
        k[1] = replacement_keys(a);
        if ((memcmp(k[1]->key_id, k[0]->key_id, IDENTITY_KEY_ID_BYTES) < 0) == descending) {
            break;
        }
        identity_destroy(&k[1]);
    }
    k[2] = replacement_keys(a);
    for (int i = 0; i < 3; i++) {
        (void)replace_a_at_b(w, k[i], 0, k[i]->key_id);
    }
    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    for (int i = 0; i < 3; i++) {
        identity_destroy(&k[i]);
    }
    expect_clean(&r);
    audit_report_free(&r);
}

static void test_replaced_thrice_ids_ascending(void **state)
{
    replace_thrice(state, false);
}

static void test_replaced_thrice_ids_descending(void **state)
{
    replace_thrice(state, true);
}

static void test_replaced_peer_key_audits_clean(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    assert_int_equal(a->seq_to[b->index], 6);
    identity_t *next = replacement_keys(a);
    key_replaced_t out = replace_a_at_b(w, next, 0, next->key_id);
    assert_int_equal(out.first_seq, 7);
    assert_memory_equal(out.replaced_key_id, a->identity->key_id, IDENTITY_KEY_ID_BYTES);

    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 1); /* and the operator's row */
    const audit_key_t *old = report_key(&r, b->home, a->name, a->identity->key_id);
    assert_non_null(old);
    assert_int_equal(old->rows, 6);
    assert_int_equal(old->first_seq, 1);
    assert_int_equal(old->last_seq, 6);
    audit_report_free(&r);

    /* A pays B at 7 under its new key; B's report is addressed to it */
    a_uses(w, next);
    char uetr[UETR_SIZE];
    node_open(a);
    node_open(b);
    assert_int_equal(pay(a, b, 1000, "RUB", uetr), STATUS_SETTLED);
    assert_int_equal(a->seq_to[b->index], 7);
    node_close(a);
    node_close(b);
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 2);
    assert_int_equal(report_keys_of(&r, b->home, a->name), 2);
    old = report_key(&r, b->home, a->name, w->a_old->key_id);
    const audit_key_t *now = report_key(&r, b->home, a->name, next->key_id);
    assert_non_null(old);
    assert_non_null(now);
    assert_int_equal(old->rows, 6);
    assert_int_equal(old->last_seq, 6);
    assert_int_equal(now->rows, 1);
    assert_int_equal(now->first_seq, 7);
    assert_int_equal(now->last_seq, 7);
    assert_false(now->from_card);
    audit_report_free(&r);
}

/* The same replacement with no operator action on record: the key history is not believed
 * ("keys", naming the missing record), nor when a record names another key; the record of the
 * replacement makes it clean. */
static void test_replaced_peer_key_without_record(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *next = replacement_keys(a);
    key_replaced_t out = replace_a_at_b(w, next, 0, NULL);
    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, a->name);
    expect_violation(&r, "keys", b->home, "no operator action on record");
    assert_int_equal(count_kind(&r, "keys"), 1);
    audit_report_free(&r);

    /* records that name another new key, or another replaced one */
    identity_t *other = replacement_keys(a);
    node_open(b);
    begin(b->ledger);
    record_peer_replacement(b->ledger, a->name, other->key_id, out.replaced_key_id, 7, 7);
    record_peer_replacement(b->ledger, a->name, next->key_id, other->key_id, 7, 7);
    commit(b->ledger);
    node_close(b);
    identity_destroy(&other);
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, "no operator action on record");
    expect_none(&r, "chain");
    expect_none(&r, "operator");
    audit_report_free(&r);

    node_open(b);
    begin(b->ledger);
    record_peer_replacement(b->ledger, a->name, next->key_id, out.replaced_key_id, 7, 7);
    commit(b->ledger);
    node_close(b);
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
    identity_destroy(&next);
}

/* B revokes A's old key from 4 (--from 4) although it applied A's messages through 6: A's
 * StatusReports at 4, 5 and 6 (B's payments' outcomes) are reported signed by a key not valid
 * for them; A's Settlements at 1 to 3 verify. */
static void test_replaced_peer_key_revoked_from_earlier(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *next = replacement_keys(a);
    (void)replace_a_at_b(w, next, 4, next->key_id);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_int(db,
                            "SELECT revoked_from FROM keys WHERE peer = '%s' AND side = %d"
                            " AND source = 'card'",
                            a->name, KEY_SIDE_THEIRS),
                     4);
    db_close(db);
    int64_t revoked[] = {row_in(b, ENTRY_OUT_POSTED, w->ba_usd),
                         row_in(b, ENTRY_OUT_VOIDED, w->ba_refused),
                         row_in(b, ENTRY_OUT_POSTED, w->ba_rub)};
    int64_t fine[] = {row_in(b, ENTRY_IN_BOOKED, w->ab_returned),
                      row_in(b, ENTRY_IN_BOOKED, w->ab_settled),
                      row_in(b, ENTRY_IN_REFUSED, w->ab_refused)};
    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "evidence");
    assert_int_equal(count_kind(&r, "evidence"), 3);
    for (size_t i = 0; i < 3; i++) {
        expect_violation(&r, "evidence", b->home, row_name(revoked[i], row));
        assert_false(has_violation(&r, "evidence", b->home, row_name(fine[i], row)));
    }
    expect_violation(&r, "evidence", b->home, stale_text());
    const audit_key_t *old = report_key(&r, b->home, a->name, a->identity->key_id);
    assert_non_null(old);
    assert_int_equal(old->rows, 3);
    assert_int_equal(old->last_seq, 3);
    audit_report_free(&r);
    identity_destroy(&next);
}

/* An insider undoes a revocation the journal records (revoked_from set back to 0 on the old
 * key) or moves the replacement's first number: the key history no longer agrees with the
 * operator's row, and the audit says so instead of trusting the stolen key again. */
static void test_replaced_peer_key_history_edited(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *next = replacement_keys(a);
    (void)replace_a_at_b(w, next, 4, next->key_id);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_exec(db,
                             "UPDATE keys SET revoked_from = 0 WHERE peer = '%s' AND side = %d"
                             " AND source = 'card'",
                             a->name, KEY_SIDE_THEIRS),
                     1);
    db_close(db);
    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, "not revoked where its operator action says");
    audit_report_free(&r);
    db = db_open(b->home); /* the revocation back; the split moved one number later */
    assert_int_equal(db_exec(db,
                             "UPDATE keys SET revoked_from = 4, last_seq = last_seq + 1"
                             " WHERE peer = '%s' AND side = %d AND source = 'card'",
                             a->name, KEY_SIDE_THEIRS),
                     1);
    assert_int_equal(db_exec(db,
                             "UPDATE keys SET first_seq = first_seq + 1 WHERE peer = '%s'"
                             " AND side = %d AND source = 'replaced'",
                             a->name, KEY_SIDE_THEIRS),
                     1);
    db_close(db);
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "keys", b->home, "begins elsewhere than its operator action says");
    audit_report_free(&r);
    identity_destroy(&next);
}

/* A replaces its own keys (`key replace`) after its six messages to B: the key history of its
 * side (the old key 1 to 6, the new one from 7) with the operator's record. With the old key
 * still in A's key file nothing anchors the new one; with the new key file A audits clean, its
 * evidence of before under the old key and a payment after under the new one. */
static void test_replaced_own_key_audits_clean(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    identity_t *next = replacement_keys(a);
    uint64_t sent = a->seq_to[b->index];
    node_open(a);
    begin(a->ledger);
    for (uint64_t seq = 1; seq <= sent; seq++) { /* A's channel queued its six messages */
        static const uint8_t queued[] = "a message A queued";
        assert_int_equal(
            ledger_outbox_put(a->ledger, b->name, seq, MSG_SETTLEMENT, queued, sizeof queued - 1),
            LEDGER_OK);
    }
    key_replaced_t out;
    assert_int_equal(replace_own_key(a->ledger, b->name, a->identity, next, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_int_equal(out.first_seq, sent + 1);
    assert_memory_equal(out.replaced_key_id, a->identity->key_id, IDENTITY_KEY_ID_BYTES);
    char new_hex[2 * IDENTITY_KEY_ID_BYTES + 1], old_hex[2 * IDENTITY_KEY_ID_BYTES + 1],
        replaced_hex[2 * IDENTITY_KEY_ID_BYTES + 1];
    json_t *args = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:I}]}", "side", "ours", "key_id",
                             key_hex(next->key_id, new_hex), "replaced_key_id",
                             key_hex(a->identity->key_id, old_hex), "channels", "peer", b->name,
                             "replaced_key_id", key_hex(out.replaced_key_id, replaced_hex),
                             "first_seq", (json_int_t)out.first_seq);
    assert_non_null(args);
    assert_int_equal(operation_record(a->ledger, (long long)getuid(), "replace", "", args),
                     LEDGER_OK);
    commit(a->ledger);
    node_close(a);

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "keys", a->home, b->name);
    expect_violation(&r, "keys", a->home, "none of its keys is trusted");
    audit_report_free(&r);

    char *key = test_path(a->home, IDENTITY_KEY_FILE);
    assert_int_equal(identity_save(next, key), ID_OK);
    free(key);
    assert_int_equal(audit_one(a, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 1);
    assert_int_equal(r.own_unchecked_count, 0);
    audit_report_free(&r);

    /* A pays B at 7 under the new key, B's report addressed to it */
    a_uses(w, next);
    char uetr[UETR_SIZE];
    node_open(a);
    node_open(b);
    assert_int_equal(pay(a, b, 1000, "RUB", uetr), STATUS_SETTLED);
    assert_int_equal(a->seq_to[b->index], sent + 1);
    node_close(a);
    node_close(b);
    assert_int_equal(audit_one(a, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 3);
    audit_report_free(&r);
}

/* ---- two-phase returns (pacs.004, PROTOCOL.md 3.9) ------------------------------------------ */

/* A return on its way: as the returner records it (direction out), its signed Return, and the
 * payer's version-2 StatusReport once decided. */
typedef struct {
    settlement_t r;
    uint8_t *body; /* the Return body, as signed */
    size_t body_len;
    uint8_t *return_msg;
    size_t return_len;
    uint8_t *report_msg;
    size_t report_len;
    ledger_outcome_t outcome; /* the payer's */
} return_flight_t;

static void return_flight_free(return_flight_t *f)
{
    free(f->body);
    free(f->return_msg);
    free(f->report_msg);
    memset(f, 0, sizeof *f);
}

/* The return the payee `returner` would make of `amount` of payment `uetr` from `payer`, as
 * channel_prepare_return does: naming the body hash (3.7.2) of the Settlement it holds. */
static void return_make(const node_t *returner, const node_t *payer, const char *uetr,
                        int64_t amount, return_flight_t *f)
{
    memset(f, 0, sizeof *f);
    settlement_t original;
    assert_int_equal(ledger_find(returner->ledger, payer->name, uetr, &original, NULL), LEDGER_OK);
    settlement_t *r = &f->r;
    snprintf(r->peer, sizeof r->peer, "%s", payer->name);
    r->direction = DIRECTION_OUT;
    uetr_generate(r->uetr);
    snprintf(r->currency, sizeof r->currency, "%s", original.currency);
    snprintf(r->original_uetr, sizeof r->original_uetr, "%s", uetr);
    snprintf(r->return_reason, sizeof r->return_reason, "%s", RETURN_REASON);
    r->amount_minor = amount;
    uint8_t *evidence = NULL, *body = NULL;
    size_t evidence_len = 0, body_len = 0;
    int type = 0;
    uint32_t version = 0;
    assert_int_equal(
        ledger_opening_evidence(returner->ledger, payer->name, uetr, &evidence, &evidence_len),
        LEDGER_OK);
    assert_int_equal(evidence_body(evidence, evidence_len, &type, &version, &body, &body_len),
                     ENV_OK);
    settlement_body_hash(body, body_len, r->original_hash);
    free(body);
    free(evidence);
}

/* The returner signs its Return (the body of f->r as it stands) and, when `record`, records it
 * pending as channel_send_settlement does. */
static void return_send(node_t *returner, const node_t *payer, bool record, return_flight_t *f)
{
    assert_int_equal(settlement_encode(&f->r, &f->body, &f->body_len), 0);
    sign_to(returner, payer, MSG_RETURN, f->body, f->body_len, &f->return_msg, &f->return_len);
    if (record) {
        ledger_outcome_t o;
        begin(returner->ledger);
        assert_int_equal(ledger_send(returner->ledger, &f->r, f->return_msg, f->return_len, 0, &o),
                         LEDGER_OK);
        commit(returner->ledger);
        assert_int_equal(o.status, STATUS_PENDING);
    }
}

/* The payer books the Return as `stored` says (f->r seen from its side when NULL), or refuses
 * it with `reject`, and answers with its version-2 StatusReport naming the Return's body. */
static void return_decide(const node_t *returner, node_t *payer, const settlement_t *stored,
                          const char *reject, return_flight_t *f)
{
    settlement_t in = stored != NULL ? *stored : f->r;
    snprintf(in.peer, sizeof in.peer, "%s", returner->name);
    in.direction = DIRECTION_IN;
    begin(payer->ledger);
    assert_int_equal(ledger_receive(payer->ledger, &in, INT64_MAX, reject, f->return_msg,
                                    f->return_len, 0, &f->outcome),
                     LEDGER_OK);
    bool settled = f->outcome.status == STATUS_SETTLED;
    assert_true(settled == (reject == NULL));
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(f->body, f->body_len, hash);
    Corridor__StatusReport report = CORRIDOR__STATUS_REPORT__INIT;
    report.uetr = f->r.uetr;
    report.status = settled ? "ACSC" : "RJCT";
    report.reason = f->outcome.reason;
    report.currency = f->r.currency;
    report.position_minor = f->outcome.position_minor;
    report.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    size_t len = corridor__status_report__get_packed_size(&report);
    uint8_t *packed = malloc(len + 1);
    assert_non_null(packed);
    assert_int_equal(corridor__status_report__pack(&report, packed), len);
    uint64_t seq = ++payer->seq_to[returner->index];
    assert_int_equal(envelope_sign_version(payer->identity, 2, returner->identity->key_id,
                                           MSG_STATUS_REPORT, seq, packed, len, &f->report_msg,
                                           &f->report_len),
                     ENV_OK);
    free(packed);
    assert_int_equal(
        ledger_set_reply(payer->ledger, returner->name, f->r.uetr, f->report_msg, f->report_len, 0),
        LEDGER_OK);
    commit(payer->ledger);
}

/* The returner posts or voids its pending return on the payer's StatusReport. */
static void return_resolve(node_t *returner, const node_t *payer, const return_flight_t *f)
{
    bool settled = f->outcome.status == STATUS_SETTLED;
    ledger_outcome_t o;
    begin(returner->ledger);
    assert_int_equal(ledger_resolve(returner->ledger, payer->name, f->r.uetr, settled,
                                    settled ? NULL : f->outcome.reason, f->report_msg,
                                    f->report_len, 0, &o),
                     LEDGER_OK);
    commit(returner->ledger);
    assert_int_equal(o.status, f->outcome.status);
}

/* The whole two-phase return of `amount` of `uetr` by `returner`: accepted, or refused with
 * `reject`. Copies the return id out. */
static void give_back_part(node_t *returner, node_t *payer, const char *uetr, int64_t amount,
                           const char *reject, char return_id[static UETR_SIZE])
{
    return_flight_t f;
    return_make(returner, payer, uetr, amount, &f);
    return_send(returner, payer, true, &f);
    return_decide(returner, payer, NULL, reject, &f);
    return_resolve(returner, payer, &f);
    snprintf(return_id, UETR_SIZE, "%s", f.r.uetr);
    return_flight_free(&f);
}

/* A pays B 10000 RUB; B gives 4000 of it back (A accepts) and then tries 7000 more (A refuses
 * AM09). Both homes audit clean, alone and as a pair (I2 holds: positions include returns). */
static void test_partial_return_audits_clean(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE], back[UETR_SIZE], refused[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    give_back_part(b, a, paid, 4000, NULL, back);
    give_back_part(b, a, paid, 7000, "AM09", refused);
    node_close(a);
    node_close(b);
    assert_int_equal(net_of(a, b->name, "RUB"), A_NET_RUB - 10000 + 4000);
    assert_int_equal(net_of(b, a->name, "RUB"), -(A_NET_RUB - 10000 + 4000));

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 4);
    audit_report_free(&r);
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, TRAFFIC_ROWS + 5);
    audit_report_free(&r);
    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
}

/* B returns 6000 and 6000 of a 10000 payment, and "returns" 1000 of a payment B made itself;
 * A (hostile, or broken) accepts all of it. Every row is signed and says what it should: only
 * the totals show it, at both homes. */
static void test_returns_over_the_original(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE], first[UETR_SIZE], second[UETR_SIZE], backwards[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    give_back_part(b, a, paid, 6000, NULL, first);
    give_back_part(b, a, paid, 6000, NULL, second);
    give_back_part(b, a, w->ba_rub, 1000, NULL, backwards);
    node_close(a);
    node_close(b);

    audit_report_t r;
    const node_t *homes[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(audit_one(homes[i], &r), 0);
        expect_only(&r, "returns");
        expect_violation(&r, "returns", homes[i]->home, paid);
        expect_violation(&r, "returns", homes[i]->home, "total 12000, over its 10000");
        expect_violation(&r, "returns", homes[i]->home, backwards);
        expect_violation(&r, "returns", homes[i]->home, "same way as its original");
        assert_int_equal(r.violations_count, 2);
        audit_report_free(&r);
    }
}

/* A accepts returns of B's that no honest payer would: of a payment it has no record of, in
 * another currency than the payment, of a return, of a payment B refused, and one whose Return
 * names another body than the Settlement A signed. Each is signed and booked as it says; the
 * returns check names what is wrong with each. */
static void test_returns_of_no_settled_payment(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE], usd[UETR_SIZE], back[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    assert_int_equal(pay(a, b, 1000, "USD", usd), STATUS_SETTLED);
    give_back_part(b, a, paid, 4000, NULL, back);
    struct {
        const char *original, *currency, *problem;
    } cases[] = {
        {NULL, "RUB", "not on record"},
        {usd, "RUB", "another currency"},
        {back, "RUB", "is a return, not a payment"},
        {w->ab_refused, "RUB", "not settled"},
        {paid, "RUB", "names another body"},
    };
    char ids[5][UETR_SIZE];
    for (size_t i = 0; i < 5; i++) {
        return_flight_t f;
        return_make(b, a, paid, 100, &f);
        if (cases[i].original != NULL) {
            snprintf(f.r.original_uetr, sizeof f.r.original_uetr, "%s", cases[i].original);
        } else {
            uetr_generate(f.r.original_uetr);
        }
        snprintf(f.r.currency, sizeof f.r.currency, "%s", cases[i].currency);
        if (i == 4) {
            f.r.original_hash[0] ^= 1; /* a body B never received */
        }
        return_send(b, a, false, &f);
        return_decide(b, a, NULL, NULL, &f);
        snprintf(ids[i], sizeof ids[i], "%s", f.r.uetr);
        return_flight_free(&f);
    }
    node_close(a);
    node_close(b);

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_only(&r, "returns");
    for (size_t i = 0; i < 5; i++) {
        bool found = false;
        for (size_t v = 0; v < r.violations_count; v++) {
            found |= strstr(r.violations[v].detail, ids[i]) != NULL &&
                     strstr(r.violations[v].detail, cases[i].problem) != NULL;
        }
        if (!found) {
            dump(&r);
            fail_msg("no 'returns' violation for %s: %s", ids[i], cases[i].problem);
        }
    }
    assert_int_equal(r.violations_count, 5);
    audit_report_free(&r);
}

/* An insider at A lowers an accepted return from 4000 to 3000 throughout (record, content hash,
 * rows, chain, balances): B's signed Return still says 4000. */
static void test_return_amount_edited(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE], back[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    give_back_part(b, a, paid, 4000, NULL, back);
    node_close(a);
    node_close(b);
    rewrite_amount(a, b->name, back, 3000);
    sqlite3 *db = db_open(a->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, back);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", a->home, row_name(seq, row));
    expect_violation(&r, "evidence", a->home, "amount or currency");
    assert_int_equal(r.violations_count, 1);
    audit_report_free(&r);
}

/* An insider at B with B's keys puts a Settlement (same id, amount and currency, signed by B)
 * in place of the Return that opened B's return: a return opens with a Return, and A's ACSC
 * named the Return's body. */
static void test_return_opened_by_a_settlement(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE], back[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    give_back_part(b, a, paid, 4000, NULL, back);
    node_close(a);
    node_close(b);
    settlement_t s;
    settlement_make(b, a, 4000, "RUB", &s);
    snprintf(s.uetr, sizeof s.uetr, "%s", back);
    uint8_t *body = NULL, *msg = NULL;
    size_t body_len = 0, msg_len = 0;
    assert_int_equal(settlement_encode(&s, &body, &body_len), 0);
    sign_to(b, a, MSG_SETTLEMENT, body, body_len, &msg, &msg_len);
    free(body);
    sqlite3 *db = db_open(b->home);
    int64_t seq = row_of(db, ENTRY_OUT_PENDING, back);
    int64_t posted = row_of(db, ENTRY_OUT_POSTED, back);
    db_set_blob(db, "journal", "evidence", "seq", seq, msg, msg_len);
    rechain(db);
    db_close(db);
    free(msg);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", b->home, row_name(seq, row));
    expect_violation(&r, "evidence", b->home, "wrong type");
    expect_violation(&r, "evidence", b->home, row_name(posted, row));
    expect_violation(&r, "evidence", b->home, "answers other contents");
    audit_report_free(&r);
}

/* A holds a return of B's as a screening hold would a payment: a return is never held. */
static void test_return_held_is_out_of_order(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    return_flight_t f;
    return_make(b, a, paid, 4000, &f);
    return_send(b, a, false, &f);
    settlement_t in = f.r;
    snprintf(in.peer, sizeof in.peer, "%s", b->name);
    in.direction = DIRECTION_IN;
    ledger_outcome_t o;
    begin(a->ledger);
    assert_int_equal(ledger_receive_holding(a->ledger, &in, INT64_MAX, NULL, LEDGER_HOLD_SCREENING,
                                            f.return_msg, f.return_len, 0, &o),
                     LEDGER_OK);
    commit(a->ledger);
    assert_int_equal(o.status, STATUS_HELD);
    int64_t seq = last_row(a);
    return_flight_free(&f);
    node_close(a);
    node_close(b);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "order", a->home, row_name(seq, row));
    expect_violation(&r, "order", a->home, "a return is never held");
    audit_report_free(&r);
}

/* B sends a Return naming no valid payment; A refuses it FF01 and stores it as apply_return
 * does, original UETR "-": that audits clean. A well-formed Return stored with "-" does not. */
static void test_refused_malformed_return(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char paid[UETR_SIZE];
    assert_int_equal(pay(a, b, 10000, "RUB", paid), STATUS_SETTLED);
    return_flight_t bad, good;
    return_make(b, a, paid, 1000, &bad);
    snprintf(bad.r.original_uetr, sizeof bad.r.original_uetr, "no-such-payment");
    return_send(b, a, false, &bad);
    settlement_t stored = bad.r;
    snprintf(stored.original_uetr, sizeof stored.original_uetr, "-");
    return_decide(b, a, &stored, "FF01", &bad);
    return_make(b, a, paid, 1000, &good);
    return_send(b, a, false, &good);
    stored = good.r;
    snprintf(stored.original_uetr, sizeof stored.original_uetr, "-");
    return_decide(b, a, &stored, "FF01", &good);
    int64_t seq = last_row(a);
    char bad_id[UETR_SIZE];
    snprintf(bad_id, sizeof bad_id, "%s", bad.r.uetr);
    return_flight_free(&bad);
    return_flight_free(&good);
    node_close(a);
    node_close(b);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", a->home, row_name(seq, row));
    expect_violation(&r, "evidence", a->home, "returns another payment");
    assert_false(has_violation(&r, "evidence", NULL, bad_id));
    assert_int_equal(r.violations_count, 1);
    audit_report_free(&r);
}

/* ---- FX trades (PROTOCOL.md 3.10) ----------------------------------------------------------- */

/* A trade on its way: as the proposer records it (direction out), its FxProposal body and the
 * signed message, and the acceptor's version-2 StatusReport naming the trade once answered. */
typedef struct {
    fx_trade_t t;
    uint8_t *body; /* the FxProposal body, as signed */
    size_t body_len;
    uint8_t *proposal_msg;
    size_t proposal_len;
    uint8_t *report_msg;
    size_t report_len;
    ledger_outcome_t outcome; /* the acceptor's */
} fx_flight_t;

static void fx_flight_free(fx_flight_t *f)
{
    free(f->body);
    free(f->proposal_msg);
    free(f->report_msg);
    memset(f, 0, sizeof *f);
}

/* The acceptor's StatusReport on trade f (uetr: the trade's id), naming the FxProposal's body;
 * replaces any report kept before. */
static void fx_sign_report(node_t *acceptor, const node_t *proposer, fx_flight_t *f,
                           const char *status, const char *reason)
{
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(f->body, f->body_len, hash);
    Corridor__StatusReport report = CORRIDOR__STATUS_REPORT__INIT;
    report.uetr = f->t.fx_id;
    report.status = (char *)status;
    report.reason = (char *)(reason != NULL ? reason : "");
    report.currency = f->t.legs[FX_PAY].currency;
    report.position_minor = f->outcome.position_minor;
    report.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    size_t len = corridor__status_report__get_packed_size(&report);
    uint8_t *packed = malloc(len + 1);
    assert_non_null(packed);
    assert_int_equal(corridor__status_report__pack(&report, packed), len);
    free(f->report_msg);
    uint64_t seq = ++acceptor->seq_to[proposer->index];
    assert_int_equal(envelope_sign_version(acceptor->identity, 2, proposer->identity->key_id,
                                           MSG_STATUS_REPORT, seq, packed, len, &f->report_msg,
                                           &f->report_len),
                     ENV_OK);
    free(packed);
}

/* The proposer pays `pay` of `pay_ccy` for `receive` of `receive_ccy`: signs its FxProposal
 * and records both legs pending, as channel_propose_fx does. */
static void fx_send(node_t *proposer, const node_t *acceptor, int64_t pay, const char *pay_ccy,
                    int64_t receive, const char *receive_ccy, fx_flight_t *f)
{
    memset(f, 0, sizeof *f);
    fx_trade_t *t = &f->t;
    uetr_generate(t->fx_id);
    uetr_generate(t->legs[FX_PAY].uetr);
    uetr_generate(t->legs[FX_RECEIVE].uetr);
    t->legs[FX_PAY].amount_minor = pay;
    snprintf(t->legs[FX_PAY].currency, sizeof t->legs[FX_PAY].currency, "%s", pay_ccy);
    t->legs[FX_RECEIVE].amount_minor = receive;
    snprintf(t->legs[FX_RECEIVE].currency, sizeof t->legs[FX_RECEIVE].currency, "%s", receive_ccy);
    t->created_unix_ms = INT64_C(1741910400000);
    fx_trade_prepare(t, acceptor->name);
    assert_null(fx_check(t));
    assert_int_equal(fx_encode(t, &f->body, &f->body_len), 0);
    uint64_t seq = ++proposer->seq_to[acceptor->index];
    assert_int_equal(envelope_sign_version(proposer->identity, 2, acceptor->identity->key_id,
                                           MSG_FX_PROPOSAL, seq, f->body, f->body_len,
                                           &f->proposal_msg, &f->proposal_len),
                     ENV_OK);
    const char *why = NULL;
    ledger_outcome_t o;
    begin(proposer->ledger);
    assert_int_equal(ledger_fx_propose(proposer->ledger, t->legs,
                                       cap_of(proposer, acceptor, receive_ccy), f->proposal_msg,
                                       f->proposal_len, 0, &why, &o),
                     LEDGER_OK);
    commit(proposer->ledger);
    assert_null(why);
    assert_int_equal(o.status, STATUS_PENDING);
}

/* The acceptor books both legs, holds both (`hold`) or refuses both with `reject`, and answers
 * as answer_trade does: the reply of the second leg's row (and of both records). */
static void fx_decide(const node_t *proposer, node_t *acceptor, const char *reject, bool hold,
                      fx_flight_t *f)
{
    fx_trade_t in;
    assert_null(fx_decode(f->body, f->body_len, proposer->name, DIRECTION_IN, &in));
    begin(acceptor->ledger);
    assert_int_equal(ledger_fx_receive(acceptor->ledger, in.legs,
                                       cap_of(acceptor, proposer, in.legs[FX_PAY].currency), reject,
                                       hold ? LEDGER_HOLD_REVIEW : NULL, f->proposal_msg,
                                       f->proposal_len, 0, &f->outcome),
                     LEDGER_OK);
    status_t want = reject != NULL ? STATUS_REJECTED : hold ? STATUS_HELD : STATUS_SETTLED;
    assert_int_equal(f->outcome.status, want);
    fx_sign_report(acceptor, proposer, f,
                   want == STATUS_SETTLED ? "ACSC"
                   : want == STATUS_HELD  ? "PDNG"
                                          : "RJCT",
                   reject);
    if (hold) {
        assert_int_equal(ledger_attach_reply(acceptor->ledger, proposer->name,
                                             in.legs[FX_RECEIVE].uetr, f->report_msg,
                                             f->report_len),
                         LEDGER_OK);
    }
    for (int i = 0; !hold && i < 2; i++) {
        assert_int_equal(ledger_set_reply(acceptor->ledger, proposer->name, in.legs[i].uetr,
                                          f->report_msg, f->report_len, 0),
                         LEDGER_OK);
    }
    commit(acceptor->ledger);
}

/* The acceptor releases (reason NULL) or declines both held legs on one StatusReport, as
 * decide_held_trade does. */
static void fx_decide_held(const node_t *proposer, node_t *acceptor, const char *reason,
                           fx_flight_t *f)
{
    fx_sign_report(acceptor, proposer, f, reason == NULL ? "ACSC" : "RJCT", reason);
    begin(acceptor->ledger);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ledger_decide_held(acceptor->ledger, proposer->name, f->t.legs[i].uetr,
                                            reason, f->report_msg, f->report_len, NULL, 0,
                                            &f->outcome),
                         LEDGER_OK);
    }
    commit(acceptor->ledger);
    assert_int_equal(f->outcome.status, reason == NULL ? STATUS_SETTLED : STATUS_REJECTED);
}

/* The proposer takes the acceptor's last report on both legs, as apply_fx_answer does: PDNG
 * noted, ACSC posted, RJCT voided. */
static void fx_resolve(node_t *proposer, const node_t *acceptor, const fx_flight_t *f)
{
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(f->body, f->body_len, hash);
    bool held = f->outcome.status == STATUS_HELD;
    bool settled = f->outcome.status == STATUS_SETTLED;
    ledger_outcome_t o;
    begin(proposer->ledger);
    status_t answer = held ? STATUS_HELD : settled ? STATUS_SETTLED : STATUS_REJECTED;
    assert_int_equal(ledger_fx_resolve(proposer->ledger, acceptor->name, f->t.fx_id, hash, answer,
                                       held || settled ? NULL : f->outcome.reason, f->report_msg,
                                       f->report_len, 0, &o),
                     LEDGER_OK);
    if (!held) {
        assert_int_equal(o.status, f->outcome.status);
    }
    commit(proposer->ledger);
}

/* A whole trade: accepted, refused with `reject`, or held then released (or, with `decline`,
 * declined for that reason). Copies its id and legs' UETRs out (legs may be NULL). */
static void trade_as(node_t *proposer, node_t *acceptor, int64_t pay, const char *pay_ccy,
                     int64_t receive, const char *receive_ccy, const char *reject, bool hold,
                     const char *decline, char fx_id[static UETR_SIZE], char legs[2][UETR_SIZE])
{
    fx_flight_t f;
    fx_send(proposer, acceptor, pay, pay_ccy, receive, receive_ccy, &f);
    fx_decide(proposer, acceptor, reject, hold, &f);
    fx_resolve(proposer, acceptor, &f);
    if (hold) {
        fx_decide_held(proposer, acceptor, decline, &f);
        fx_resolve(proposer, acceptor, &f);
    }
    snprintf(fx_id, UETR_SIZE, "%s", f.t.fx_id);
    for (int i = 0; legs != NULL && i < 2; i++) {
        snprintf(legs[i], UETR_SIZE, "%s", f.t.legs[i].uetr);
    }
    fx_flight_free(&f);
}

static void trade(node_t *proposer, node_t *acceptor, int64_t pay, const char *pay_ccy,
                  int64_t receive, const char *receive_ccy, const char *reject, bool hold,
                  char fx_id[static UETR_SIZE], char legs[2][UETR_SIZE])
{
    trade_as(proposer, acceptor, pay, pay_ccy, receive, receive_ccy, reject, hold, NULL, fx_id,
             legs);
}

/* B accepts A's trade (A pays 1000 RUB for 500 USD), refuses another AG01, and A
 * holds B's trade (B pays 300 USD for 600 RUB) for review, then releases it; another held one
 * it declines AB05. Both homes audit clean, alone and as a pair; positions moved in both
 * currencies, and mirror. */
static void test_fx_trades_audit_clean(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char accepted[UETR_SIZE], refused[UETR_SIZE], held[UETR_SIZE];
    trade(a, b, 1000, "RUB", 500, "USD", NULL, false, accepted, NULL);
    trade(a, b, 2000, "RUB", 10, "USD", "AG01", false, refused, NULL);
    trade(b, a, 300, "USD", 600, "RUB", NULL, true, held, NULL);
    trade_as(b, a, 100, "USD", 200, "RUB", NULL, true, "AB05", held, NULL);
    node_close(a);
    node_close(b);

    audit_report_t r;
    assert_int_equal(audit_one(a, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
    assert_int_equal(audit_one(b, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
    assert_int_equal(audit_two(a->home, b->home, &r), 0);
    expect_clean(&r);
    /* A: 4 rows of each trade it proposed, 4 of each it held; B: 2, 2, 6 and 6 */
    assert_int_equal(r.entries_checked, 2 * TRAFFIC_ROWS + 16 + 16);
    audit_report_free(&r);
    assert_int_equal(net_of(a, b->name, "RUB"), A_NET_RUB - 1000 - 600);
    assert_int_equal(net_of(a, b->name, "USD"), A_NET_USD + 500 + 300);
    assert_int_equal(net_of(b, a->name, "RUB"), -(A_NET_RUB - 1000 - 600));
    assert_int_equal(net_of(b, a->name, "USD"), -(A_NET_USD + 500 + 300));
}

/* An insider at B lowers the leg B received from 1000 to 900 throughout (record, content hash,
 * rows, chain, balances): A's signed FxProposal still says 1000, and the leg's canonical entry
 * hash was not redone. */
static void test_fx_leg_amount_edited(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char fx_id[UETR_SIZE], legs[2][UETR_SIZE];
    trade(a, b, 1000, "RUB", 500, "USD", NULL, false, fx_id, legs);
    node_close(a);
    node_close(b);
    rewrite_amount(b, a->name, legs[FX_PAY], 900);
    sqlite3 *db = db_open(b->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, legs[FX_PAY]);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(b, &r), 0);
    expect_violation(&r, "evidence", b->home, row_name(seq, row));
    expect_violation(&r, "evidence", b->home, "amount or currency");
    expect_violation(&r, "fx", b->home, "canonical entry hash");
    assert_int_equal(count_kind(&r, "evidence") + count_kind(&r, "fx"), r.violations_count);
    audit_report_free(&r);
}

/* An insider at B deletes the second leg of a trade it accepted (its record and its row, the
 * last of the journal; the balances made to agree): B holds a one-legged trade. */
static void test_fx_leg_deleted(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char fx_id[UETR_SIZE], legs[2][UETR_SIZE];
    trade(a, b, 1000, "RUB", 500, "USD", NULL, false, fx_id, legs);
    node_close(a);
    node_close(b);
    sqlite3 *db = db_open(b->home);
    int64_t seq = row_of(db, ENTRY_IN_BOOKED, legs[FX_RECEIVE]);
    assert_int_equal(db_int(db, "SELECT max(seq) FROM journal"), seq);
    assert_int_equal(
        db_int(db, "SELECT amount_minor FROM journal WHERE seq = %lld", (long long)seq), -500);
    assert_int_equal(db_exec(db, "DELETE FROM journal WHERE seq = %lld", (long long)seq), 1);
    assert_int_equal(db_exec(db, "DELETE FROM settlements WHERE uetr = '%s'", legs[FX_RECEIVE]), 1);
    ledger_effect_t e = ledger_row_effect(ENTRY_IN_BOOKED, DIRECTION_IN, -500);
    shift_accounts(db, a->name, "USD", (ledger_effect_t){-e.pending, -e.posted});
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "fx");
    expect_violation(&r, "fx", b->home, fx_id);
    expect_violation(&r, "fx", b->home, "first leg only");
    assert_int_equal(r.violations_count, 1);
    audit_report_free(&r);
}

/* An insider at A moves the second leg of an accepted trade to another trade id: its content
 * hash, its canonical entry hash, its FxProposal and the StatusReport naming the trade all
 * disagree, and each id holds one leg. */
static void test_fx_leg_id_changed(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char fx_id[UETR_SIZE], legs[2][UETR_SIZE], other[UETR_SIZE];
    trade(a, b, 1000, "RUB", 500, "USD", NULL, false, fx_id, legs);
    node_close(a);
    node_close(b);
    uetr_generate(other);
    sqlite3 *db = db_open(a->home);
    int64_t pending = row_of(db, ENTRY_OUT_PENDING, legs[FX_RECEIVE]);
    int64_t posted = row_of(db, ENTRY_OUT_POSTED, legs[FX_RECEIVE]);
    assert_int_equal(db_exec(db, "UPDATE settlements SET fx_id = '%s' WHERE uetr = '%s'", other,
                             legs[FX_RECEIVE]),
                     1);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "content", a->home, legs[FX_RECEIVE]);
    expect_violation(&r, "evidence", a->home, row_name(pending, row));
    expect_violation(&r, "evidence", a->home, "another FX trade");
    expect_violation(&r, "evidence", a->home, row_name(posted, row));
    expect_violation(&r, "fx", a->home, "first leg only");
    expect_violation(&r, "fx", a->home, "second leg only");
    expect_violation(&r, "fx", a->home, other);
    assert_false(has_violation(&r, "evidence", NULL, legs[FX_PAY]));
    audit_report_free(&r);
}

/* An insider at B gives the first leg of a trade it refused AG01 another reason, AM02,
 * throughout (record, row, chain, the leg's canonical entry hash redone): the row holds no
 * reply (the second leg's does) and the FxProposal names no reason, but the legs of one trade
 * no longer share their reason. */
static void test_fx_legs_reasons_differ(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char fx_id[UETR_SIZE], legs[2][UETR_SIZE];
    trade(a, b, 2000, "RUB", 10, "USD", "AG01", false, fx_id, legs);
    node_close(a);
    node_close(b);
    uint8_t canon[DIGEST_BYTES];
    digest_fx_leg_entry(a->name, b->name, legs[FX_PAY], fx_id, 2000, "RUB", "rejected", "AM02",
                        canon);
    char hex[2 * DIGEST_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, canon, sizeof canon);
    sqlite3 *db = db_open(b->home);
    assert_int_equal(db_exec(db,
                             "UPDATE settlements SET reason = 'AM02', canon_hash = X'%s'"
                             " WHERE uetr = '%s'",
                             hex, legs[FX_PAY]),
                     1);
    assert_int_equal(
        db_exec(db, "UPDATE journal SET reason = 'AM02' WHERE uetr = '%s'", legs[FX_PAY]), 1);
    rechain(db);
    db_close(db);

    audit_report_t r;
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "fx");
    expect_violation(&r, "fx", b->home, "status or reason");
    assert_int_equal(r.violations_count, 1);
    audit_report_free(&r);
}

/* An insider at A turns the posted row of a leg into a `returned` row (rechained): a leg is
 * never returned alone. */
static void test_fx_leg_returned_is_out_of_order(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char fx_id[UETR_SIZE], legs[2][UETR_SIZE];
    trade(a, b, 1000, "RUB", 500, "USD", NULL, false, fx_id, legs);
    node_close(a);
    node_close(b);
    sqlite3 *db = db_open(a->home);
    int64_t seq = row_of(db, ENTRY_OUT_POSTED, legs[FX_PAY]);
    assert_int_equal(db_exec(db, "UPDATE journal SET kind = %d WHERE seq = %lld", ENTRY_RETURNED,
                             (long long)seq),
                     1);
    rechain(db);
    db_close(db);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(a, &r), 0);
    expect_violation(&r, "order", a->home, row_name(seq, row));
    expect_violation(&r, "order", a->home, "never asked back or returned");
    audit_report_free(&r);
}

/* An insider at A puts a version-1 ACSC of B's for the trade (signed by B, naming no
 * FxProposal) in place of the report that posted a leg: A's node never posts a leg on one. */
static void test_fx_leg_posted_on_version_1_report(void **state)
{
    world_t *w = *state;
    node_t *a = w->a, *b = w->b;
    node_open(a);
    node_open(b);
    char fx_id[UETR_SIZE], legs[2][UETR_SIZE];
    trade(a, b, 1000, "RUB", 500, "USD", NULL, false, fx_id, legs);
    node_close(a);
    node_close(b);
    Corridor__StatusReport report = CORRIDOR__STATUS_REPORT__INIT;
    report.uetr = fx_id;
    report.status = "ACSC";
    report.reason = "";
    report.currency = "RUB";
    size_t len = corridor__status_report__get_packed_size(&report);
    uint8_t *packed = malloc(len + 1);
    assert_non_null(packed);
    assert_int_equal(corridor__status_report__pack(&report, packed), len);
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    sign_to(b, a, MSG_STATUS_REPORT, packed, len, &msg, &msg_len);
    free(packed);
    sqlite3 *db = db_open(a->home);
    int64_t seq = row_of(db, ENTRY_OUT_POSTED, legs[FX_PAY]);
    db_set_blob(db, "journal", "evidence", "seq", seq, msg, msg_len);
    rechain(db);
    db_close(db);
    free(msg);

    audit_report_t r;
    char row[32];
    assert_int_equal(audit_one(a, &r), 0);
    expect_only(&r, "evidence");
    expect_violation(&r, "evidence", a->home, row_name(seq, row));
    expect_violation(&r, "evidence", a->home, "version-1");
    assert_int_equal(r.violations_count, 1);
    audit_report_free(&r);
}

/* A ledger of schema 8 (no return columns; kind-6 `returned` rows and status 3) is read as it
 * is: both homes, taken back to schema 8 after the standard traffic, audit clean. */
static void test_schema_8_ledgers_audit(void **state)
{
    world_t *w = *state;
    const node_t *homes[] = {w->a, w->b};
    for (size_t i = 0; i < 2; i++) {
        sqlite3 *db = db_open(homes[i]->home);
        db_exec(db, "BEGIN; DROP INDEX settlements_setoff_open;"
                    " DROP INDEX settlements_fx; DROP INDEX settlements_fx_reserved;"
                    " ALTER TABLE settlements DROP COLUMN fx_id;"
                    " ALTER TABLE settlements DROP COLUMN fx_leg;"
                    " DROP INDEX settlements_returns;"
                    " ALTER TABLE settlements DROP COLUMN original_uetr;"
                    " ALTER TABLE settlements DROP COLUMN return_reason;"
                    " ALTER TABLE settlements DROP COLUMN original_hash;"
                    " PRAGMA user_version = 8; COMMIT;");
        assert_int_equal(db_int(db, "PRAGMA user_version"), 8);
        assert_int_equal(db_int(db, "SELECT count(*) FROM settlements WHERE status = 3"), 1);
        db_close(db);
    }
    audit_report_t r;
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_clean(&r);
    assert_int_equal(r.entries_checked, 2 * TRAFFIC_ROWS);
    audit_report_free(&r);
}

/* ---- bounds ------------------------------------------------------------------------------- */

static void test_report_free_twice(void **state)
{
    (void)state;
    audit_report_t r;
    audit_report_init(&r);
    assert_int_equal(r.violations_count, 0);
    assert_null(r.violations);
    audit_report_free(&r);
    audit_report_free(&r);
    assert_null(r.violations);
}

/* ---- settlement cycles (PROTOCOL.md 3.11) ------------------------------------------------- */

/* One side's statement of cycle `number` at its present cut (our bound, the peer's), signed. */
static void cycle_state(node_t *self, const node_t *peer, uint64_t number,
                        ledger_cycle_figures_t *figs, uint64_t *own_sent, uint64_t *peer_sent,
                        uint8_t **statement, size_t *len, uint8_t signature[static 64])
{
    *own_sent = self->seq_to[peer->index];
    *peer_sent = peer->seq_to[self->index];
    assert_int_equal(ledger_cycle_at_cut(self->ledger, peer->name, *own_sent, *peer_sent, figs),
                     LEDGER_OK);
    cycle_view_t views[CYCLE_CURRENCIES_MAX];
    uint8_t digest[DIGEST_BYTES];
    uint64_t entries = 0;
    ledger_cycle_views(figs, views, digest, &entries);
    cycle_statement_t st;
    assert_true(cycle_statement_from_view(&st, self->name, peer->name, number, *own_sent,
                                          *peer_sent, views, figs->n, digest, entries));
    assert_int_equal(cycle_statement_encode(&st, statement, len), 0);
    assert_int_equal(cycle_sign(*statement, *len, self->identity->sign_secret, signature), 0);
}

/* Closes cycle `number` between A and B as channel_cycle_close and the countersignature do: A
 * proposes at its cut, B computes the same statement, signs and stores it closed, and A stores
 * B's signature. Both ledgers open. */
static void close_cycle(world_t *w, uint64_t number)
{
    node_t *a = w->a, *b = w->b;
    ledger_cycle_figures_t fa, fb;
    uint64_t a_sent, a_applied, b_sent, b_applied;
    uint8_t *sa = NULL, *sb = NULL;
    size_t la = 0, lb = 0;
    uint8_t sig_a[64], sig_b[64];
    begin(a->ledger);
    cycle_state(a, b, number, &fa, &a_sent, &a_applied, &sa, &la, sig_a);
    assert_int_equal(ledger_cycle_propose(a->ledger, b->name, number, true, a_sent, a_applied, sa,
                                          la, sig_a, &fa),
                     LEDGER_OK);
    commit(a->ledger);
    begin(b->ledger);
    cycle_state(b, a, number, &fb, &b_sent, &b_applied, &sb, &lb, sig_b);
    assert_int_equal(lb, la);
    assert_memory_equal(sa, sb, la); /* both sides state the same bytes */
    assert_int_equal(ledger_cycle_propose(b->ledger, a->name, number, false, b_sent, b_applied, sb,
                                          lb, sig_b, &fb),
                     LEDGER_OK);
    assert_int_equal(ledger_cycle_finish(b->ledger, a->name, number, NULL, 0, sig_a, NULL),
                     LEDGER_OK);
    commit(b->ledger);
    begin(a->ledger);
    assert_int_equal(ledger_cycle_finish(a->ledger, b->name, number, NULL, 0, sig_b, NULL),
                     LEDGER_OK);
    commit(a->ledger);
    free(sa);
    free(sb);
}

/* The debtor pays a cycle's net outside and the creditor confirms it: the NetSettlement
 * (net_claimed at both), the creditor's ACSC (net_settled at both, +m at the debtor, -m at the
 * creditor), as channel_cycle_settle, channel_net_decide and cycles_apply_net_answer do. */
static void settle_net(node_t *debtor, node_t *creditor, uint64_t cycle, const char *currency,
                       int64_t amount, char id[static UETR_SIZE])
{
    net_settlement_t n = {.cycle = cycle, .amount_minor = amount, .created_unix_ms = 1};
    uetr_generate(n.settlement_id);
    snprintf(id, UETR_SIZE, "%s", n.settlement_id);
    snprintf(n.currency, sizeof n.currency, "%s", currency);
    snprintf(n.reference, sizeof n.reference, "RTGS-%llu", (unsigned long long)cycle);
    snprintf(n.method, sizeof n.method, "INDA");
    assert_null(net_settlement_check(&n));
    uint8_t *body = NULL, *claim = NULL, *report = NULL;
    size_t body_len = 0, claim_len = 0, report_len = 0;
    assert_int_equal(net_settlement_encode(&n, &body, &body_len), 0);
    sign_to(debtor, creditor, MSG_NET_SETTLEMENT, body, body_len, &claim, &claim_len);
    ledger_net_t rec = {
        .cycle = cycle, .amount_minor = amount, .we_owe = true, .status = STATUS_PENDING};
    snprintf(rec.peer, sizeof rec.peer, "%s", creditor->name);
    snprintf(rec.id, sizeof rec.id, "%s", id);
    snprintf(rec.currency, sizeof rec.currency, "%s", currency);
    snprintf(rec.reference, sizeof rec.reference, "%s", n.reference);
    settlement_body_hash(body, body_len, rec.body_hash);
    begin(debtor->ledger);
    assert_int_equal(ledger_net_record(debtor->ledger, &rec, claim, claim_len), LEDGER_OK);
    commit(debtor->ledger);
    rec.we_owe = false;
    rec.status = STATUS_HELD;
    snprintf(rec.peer, sizeof rec.peer, "%s", debtor->name);
    begin(creditor->ledger);
    assert_int_equal(ledger_net_record(creditor->ledger, &rec, claim, claim_len), LEDGER_OK);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = id;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = (char *)currency;
    sr.settlement_hash = (ProtobufCBinaryData){SETTLEMENT_HASH_BYTES, rec.body_hash};
    size_t len = corridor__status_report__get_packed_size(&sr);
    uint8_t *sr_body = malloc(len + 1);
    assert_non_null(sr_body);
    assert_int_equal(corridor__status_report__pack(&sr, sr_body), len);
    uint64_t seq = creditor->seq_to[debtor->index] + 1;
    sign_to(creditor, debtor, MSG_STATUS_REPORT, sr_body, len, &report, &report_len);
    free(sr_body);
    assert_int_equal(ledger_net_decide(creditor->ledger, debtor->name, id, true, NULL, seq, report,
                                       report_len, report, report_len),
                     LEDGER_OK);
    commit(creditor->ledger);
    begin(debtor->ledger);
    assert_int_equal(ledger_net_decide(debtor->ledger, creditor->name, id, true, NULL, seq, report,
                                       report_len, NULL, 0),
                     LEDGER_OK);
    commit(debtor->ledger);
    free(body);
    free(claim);
    free(report);
}

/* The standard world with cycle 1 closed over all its traffic and A's net in RUB (it owes
 * -A_NET_RUB) paid: returns the net settlement's id in `id`. */
static void cycle_world(world_t *w, char id[static UETR_SIZE])
{
    node_open(w->a);
    node_open(w->b);
    close_cycle(w, 1);
    settle_net(w->a, w->b, 1, "RUB", -A_NET_RUB, id);
    node_close(w->a);
    node_close(w->b);
}

static int64_t cycle_row(const node_t *n, uint64_t number)
{
    sqlite3 *db = db_open(n->home);
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)number);
    int64_t seq = row_of(db, ENTRY_CYCLE, text);
    db_close(db);
    return seq;
}

static void test_cycles_audit_clean(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    /* the net settlement renewed the headroom: A's RUB debt is paid */
    assert_int_equal(net_of(w->a, w->b->name, "RUB"), 0);
    assert_int_equal(net_of(w->b, w->a->name, "RUB"), 0);
    audit_report_t r;
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
}

/* A byte of the statement in the cycle row, rechained: the signatures no longer verify. */
static void test_cycle_statement_byte(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    int64_t seq = cycle_row(w->a, 1);
    sqlite3 *db = db_open(w->a->home);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, seq, &len);
    db_close(db);
    ev[len - 2 * 64 - 1] ^= 0x01; /* the digest's last byte */
    replace_evidence(w->a, seq, ev, len);
    free(ev);
    audit_report_t r;
    char name[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "cycle", w->a->home, row_name(seq, name));
    expect_violation(&r, "cycle", w->a->home, "cycle 1 with");
    audit_report_free(&r);
    /* the same byte in the table's statement: it no longer matches the row, nor the figures */
    node_t *b = w->b;
    db = db_open(b->home);
    assert_int_equal(db_exec(db,
                             "UPDATE cycles SET statement = substr(statement, 1, length(statement)"
                             " - 1) || X'FF' WHERE cycle = 1"),
                     1);
    db_close(db);
    assert_int_equal(audit_one(b, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", b->home, "differs from the cycle on record");
    audit_report_free(&r);
}

/* The peer's signature in the cycle row. */
static void test_cycle_signature(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    int64_t seq = cycle_row(w->b, 1);
    sqlite3 *db = db_open(w->b->home);
    size_t len = 0;
    uint8_t *ev = evidence_of(db, seq, &len);
    db_close(db);
    ev[len - 1] ^= 0x01;
    replace_evidence(w->b, seq, ev, len);
    free(ev);
    audit_report_t r;
    char name[32];
    assert_int_equal(audit_one(w->b, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", w->b->home, row_name(seq, name));
    expect_violation(&r, "cycle", w->b->home, "peer's signature");
    expect_violation(&r, "cycle", w->b->home, "no valid cycle row");
    audit_report_free(&r);
}

/* The running figures are a cache for the next close: the audit recomputes from the entries. */
static void test_cycle_running_not_audited(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(
        db_exec(db,
                "INSERT OR REPLACE INTO cycle_running(peer, currency, paid, received, count,"
                " digest) VALUES('%s', 'RUB', 1, 2, 3, zeroblob(32))",
                w->b->name),
        1);
    db_close(db);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
}

/* An entry of the closed cycle rewritten consistently (record, rows, chain, balances): the
 * cycle's figures no longer match what both sides signed. */
static void test_cycle_entry_amount(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    rewrite_amount(w->a, w->b->name, w->ba_usd, BA_SETTLED_USD + 1);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_violation(&r, "cycle", w->a->home, "differs from the figures the entries give");
    audit_report_free(&r);
}

/* The cycle row deleted (chain rebuilt): a closed cycle without its co-signed row. */
static void test_cycle_row_deleted(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    int64_t seq = cycle_row(w->a, 1);
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db, "DELETE FROM journal WHERE seq = %lld", (long long)seq), 1);
    assert_true(db_exec(db, "UPDATE journal SET seq = seq - 1 WHERE seq > %lld", (long long)seq) >=
                1);
    rechain(db);
    db_close(db);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", w->a->home, "no valid cycle row");
    audit_report_free(&r);
}

/* The net_settled row's amount, with the chain and the balances made to agree. */
static void test_net_settled_amount(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_NET_SETTLED, id);
    assert_int_equal(db_exec(db,
                             "UPDATE journal SET amount_minor = amount_minor + 100"
                             " WHERE seq = %lld",
                             (long long)seq),
                     1);
    rechain(db);
    shift_accounts(db, w->b->name, "RUB", (ledger_effect_t){0, 100});
    db_close(db);
    audit_report_t r;
    char name[32];
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", w->a->home, row_name(seq, name));
    expect_violation(&r, "cycle", w->a->home, "without a net_settled row");
    audit_report_free(&r);
    /* without the balances made to agree, the replay of kind 19 tells as well */
    db = db_open(w->b->home);
    seq = row_of(db, ENTRY_NET_SETTLED, id);
    assert_int_equal(
        db_exec(db, "UPDATE journal SET amount_minor = 0 WHERE seq = %lld", (long long)seq), 1);
    rechain(db);
    db_close(db);
    assert_int_equal(audit_one(w->b, &r), 0);
    expect_violation(&r, "balance", w->b->home, NULL);
    expect_violation(&r, "cycle", w->b->home, row_name(seq, name));
    audit_report_free(&r);
}

/* Found by review: a second net_settled row, its evidence reused and the chain and balances made
 * to agree, would renew the headroom twice; one claim and one outcome per net settlement. */
static void test_net_settled_twice(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    sqlite3 *db = db_open(w->a->home);
    int64_t seq = row_of(db, ENTRY_NET_SETTLED, id);
    int64_t m = db_int(db, "SELECT amount_minor FROM journal WHERE seq = %lld", (long long)seq);
    assert_true(m > 0);
    assert_int_equal(
        db_exec(db,
                "INSERT INTO journal(seq, settlement_id, kind, peer, uetr, currency,"
                " amount_minor, reason, content_hash, evidence, created_ms, hash)"
                " SELECT (SELECT max(seq) + 1 FROM journal), settlement_id, kind, peer,"
                " uetr, currency, amount_minor, reason, content_hash, evidence,"
                " created_ms, hash FROM journal WHERE seq = %lld",
                (long long)seq),
        1);
    rechain(db);
    shift_accounts(db, w->b->name, "RUB", (ledger_effect_t){0, m});
    db_close(db);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", w->a->home, "2 net_settled");
    audit_report_free(&r);
}

/* Cycle 2 over traffic with real sequence numbers (decided above cycle 1's cut): its figures are
 * recomputed from decided_seq and the two cuts; an entry moved across the cut is caught. */
static void test_second_cycle_by_sequences(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE], ab[UETR_SIZE], ba[UETR_SIZE];
    cycle_world(w, id);
    node_open(w->a);
    node_open(w->b);
    sequenced = true;
    assert_int_equal(pay(w->a, w->b, 1000, "RUB", ab), STATUS_SETTLED);
    assert_int_equal(pay(w->b, w->a, 2000, "USD", ba), STATUS_SETTLED);
    close_cycle(w, 2);
    node_close(w->a);
    node_close(w->b);
    audit_report_t r;
    assert_int_equal(audit_two(w->a->home, w->b->home, &r), 0);
    expect_clean(&r);
    audit_report_free(&r);
    /* A's outgoing payment decided by B's report: placed by B's bound; moved below cycle 1's */
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db, "UPDATE settlements SET decided_seq = 1 WHERE uetr = '%s'", ab),
                     1);
    db_close(db);
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", w->a->home, "cycle 1 with");
    expect_violation(&r, "cycle", w->a->home, "cycle 2 with");
    audit_report_free(&r);
}

/* A disputed cycle, and a cycle left closing behind a later one, are reported; the latest
 * closing cycle (in flight) is not. */
static void test_cycle_disputed_and_one_sided(void **state)
{
    world_t *w = *state;
    char id[UETR_SIZE];
    cycle_world(w, id);
    sqlite3 *db = db_open(w->a->home);
    assert_int_equal(db_exec(db, "INSERT INTO cycles(peer, cycle, state, proposer, own_sent,"
                                 " peer_sent, statement, own_signature, own_figures, created_ms)"
                                 " SELECT peer, 2, 1, 1, own_sent, peer_sent, statement,"
                                 " own_signature, X'', 0 FROM cycles WHERE cycle = 1"),
                     1);
    db_close(db);
    audit_report_t r;
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_clean(&r); /* cycle 2 is closing: in flight */
    audit_report_free(&r);
    db = db_open(w->a->home);
    assert_int_equal(db_exec(db, "INSERT INTO cycles(peer, cycle, state, proposer, own_sent,"
                                 " peer_sent, statement, own_signature, own_figures, created_ms)"
                                 " SELECT peer, 3, 3, 1, own_sent, peer_sent, statement,"
                                 " own_signature, X'', 0 FROM cycles WHERE cycle = 1"),
                     1);
    db_close(db);
    assert_int_equal(audit_one(w->a, &r), 0);
    expect_only(&r, "cycle");
    expect_violation(&r, "cycle", w->a->home, "cycle 2 with");
    expect_violation(&r, "cycle", w->a->home, "one-sided");
    expect_violation(&r, "cycle", w->a->home, "disputed");
    audit_report_free(&r);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)
    const struct CMUnitTest tests[] = {
        T(test_clean_homes),
        T(test_clean_audit_is_read_only),
        T(test_swapped_peer_key_needs_outside_card),
        T(test_peer_key_history_from_cards),
        T(test_operator_rows_verified),
        T(test_flip_booked_to_refused),
        T(test_tamper_amount),
        T(test_tamper_delete_middle_row),
        T(test_tamper_delete_first_row),
        T(test_tamper_swap_rows),
        T(test_tamper_evidence_byte),
        T(test_tamper_own_evidence_byte),
        T(test_tamper_kind),
        T(test_tamper_unknown_kind),
        T(test_import_rows_verified),
        T(test_rebase_rows_verified),
        T(test_posted_report_names_our_settlement),
        T(test_tamper_settlement_status),
        T(test_tamper_settlement_reason),
        T(test_tamper_orphan_settlement),
        T(test_tamper_second_settlement_row),
        T(test_tamper_account_balance),
        T(test_tamper_account_both_sides),
        T(test_tamper_missing_account),
        T(test_tamper_remittance),
        T(test_tamper_settlement_amount),
        T(test_attacker_rechains_and_fixes_cache),
        T(test_attacker_appends_release_to_a_booking),
        T(test_attacker_rewrites_whole_payment),
        T(test_evidence_signed_by_third_node),
        T(test_evidence_for_another_recipient),
        T(test_evidence_from_another_row),
        T(test_evidence_of_wrong_type),
        T(test_evidence_status_contradicts_row),
        T(test_evidence_empty_and_garbage),
        T(test_tamper_hash_length),
        T(test_tamper_delete_last_row),
        T(test_tamper_truncate_caught_by_mirror),
        T(test_mirror_disagreement),
        T(test_mirror_skipped_while_pending),
        T(test_duplicate_uetr_refused_row),
        T(test_duplicate_uetr_booked_row),
        T(test_unreadable_garbage_ledger),
        T(test_unreadable_truncated_ledger),
        T(test_unreadable_missing_home),
        T(test_unreadable_missing_ledger),
        T(test_unreadable_foreign_ledger),
        T(test_copy_without_key),
        T(test_unsafe_key_file_mode),
        T(test_return_evidence_amount_checked),
        T(test_refused_evidence_amount_checked),
        T(test_rotated_key_audits_clean),
        T(test_rotation_with_auditor_card_of_either_key),
        T(test_rotation_announced_row_deleted),
        T(test_rotation_new_key_swapped),
        T(test_rotation_ranges_overlap),
        T(test_rotation_old_key_signs_after_announcement),
        T(test_rotation_new_key_signs_before_its_range),
        T(test_rotation_new_key_revoked),
        T(test_rotation_own_history_evidence_flipped),
        T(test_rotation_old_key_revoked_from_one),
        T(test_replaced_peer_key_audits_clean),
        T(test_replaced_thrice_ids_ascending),
        T(test_replaced_thrice_ids_descending),
        T(test_replaced_peer_key_history_edited),
        T(test_replaced_peer_key_without_record),
        T(test_replaced_peer_key_revoked_from_earlier),
        T(test_replaced_own_key_audits_clean),
        T(test_partial_return_audits_clean),
        T(test_returns_over_the_original),
        T(test_returns_of_no_settled_payment),
        T(test_return_amount_edited),
        T(test_return_opened_by_a_settlement),
        T(test_return_held_is_out_of_order),
        T(test_refused_malformed_return),
        T(test_fx_trades_audit_clean),
        T(test_fx_leg_amount_edited),
        T(test_fx_leg_deleted),
        T(test_fx_leg_id_changed),
        T(test_fx_legs_reasons_differ),
        T(test_fx_leg_returned_is_out_of_order),
        T(test_fx_leg_posted_on_version_1_report),
        T(test_schema_8_ledgers_audit),
        T(test_cycles_audit_clean),
        T(test_cycle_statement_byte),
        T(test_cycle_signature),
        T(test_cycle_running_not_audited),
        T(test_cycle_entry_amount),
        T(test_cycle_row_deleted),
        T(test_net_settled_amount),
        T(test_net_settled_twice),
        T(test_cycle_disputed_and_one_sided),
        T(test_second_cycle_by_sequences),
        cmocka_unit_test(test_report_free_twice),
    };
#undef T
    return cmocka_run_group_tests(tests, test_sodium_setup, NULL);
}
