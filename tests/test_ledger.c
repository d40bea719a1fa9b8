/* Unit tests for node/ledger/ledger.c: books, caps, idempotency, chain, outbox, model, crash, I/O.
 */
#include "support.h"
#include "cycles.h"
#include "ledger.h"
#include "ledger_db.h"
#include "replace.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "fx.h"
#include "settlement.h"
#include "validate.h"

#define NODE       "BKRURUMM" /* this node */
#define PEER       "BMJIIRTH" /* the counterparty of most tests */
#define PEER_OTHER "BSEPIRTH" /* a second counterparty */
#define CREATED_MS INT64_C(1700000000000)
#define FAULT_VFS  "corridor-test-fault"

/* Evidence is opaque to the ledger: any non-empty signed blob will do. */
static const uint8_t evidence[] = "signed message bytes (opaque to the ledger)";
#define EVIDENCE_LEN (sizeof evidence - 1)

/* ---- fixture -------------------------------------------------------------------------------- */

/* Per-test state: a scratch directory and the ledger path inside it. */
typedef struct {
    char *dir;  /* the test's own temp dir, removed at teardown */
    char *path; /* dir/ledger.db */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir();
    f->path = test_path(f->dir, LEDGER_FILE);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    test_rmtree(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* Fills a valid settlement without cmocka assertions (usable in a forked child). */
static void build_settlement(settlement_t *s, direction_t dir, const char *peer,
                             const char *currency, int64_t amount_minor)
{
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    s->direction = dir;
    uetr_generate(s->uetr);
    s->amount_minor = amount_minor;
    snprintf(s->currency, sizeof s->currency, "%s", currency);
    snprintf(s->end_to_end_id, sizeof s->end_to_end_id, "E2E-%.8s", s->uetr);
    snprintf(s->value_date, sizeof s->value_date, "2024-03-01");
    snprintf(s->debtor_name, sizeof s->debtor_name, "OOO Romashka");
    snprintf(s->debtor_account, sizeof s->debtor_account, "40702810900000000001");
    snprintf(s->creditor_name, sizeof s->creditor_name, "Pars Trading Co");
    snprintf(s->creditor_account, sizeof s->creditor_account, "IR820540102680020817909002");
    snprintf(s->remittance, sizeof s->remittance, "invoice 17");
    s->created_unix_ms = CREATED_MS;
}

static settlement_t make_settlement(direction_t dir, const char *peer, const char *currency,
                                    int64_t amount_minor)
{
    settlement_t s;
    build_settlement(&s, dir, peer, currency, amount_minor);
    assert_int_equal(settlement_check(&s), REASON_NONE);
    return s;
}

static ledger_t *open_ledger_vfs(const char *path, const char *vfs)
{
    ledger_t *l = NULL;
    char err[256] = "";
    ledger_err_t rc = ledger_open(path, NODE, LEDGER_READ_WRITE, vfs, &l, err, sizeof err);
    if (rc != LEDGER_OK) {
        fail_msg("ledger_open %s: %s (%s)", path, ledger_strerror(rc), err);
    }
    assert_non_null(l);
    return l;
}

static ledger_t *open_ledger(const char *path)
{
    return open_ledger_vfs(path, NULL);
}

/* Each of these is one whole transaction; a business refusal commits nothing. */
static ledger_err_t send1(ledger_t *l, const settlement_t *s, ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_send(l, s, evidence, EVIDENCE_LEN, 0, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t receive1(ledger_t *l, const settlement_t *s, int64_t cap_minor,
                             const char *reject_reason, ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_receive(l, s, cap_minor, reject_reason, evidence, EVIDENCE_LEN, 0, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t resolve1(ledger_t *l, const settlement_t *s, bool settled, const char *reason,
                             ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc =
        ledger_resolve(l, s->peer, s->uetr, settled, reason, evidence, EVIDENCE_LEN, 0, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t return1(ledger_t *l, const settlement_t *s, const char *reason,
                            ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_return(l, s->peer, s->uetr, reason, evidence, EVIDENCE_LEN, 0, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static void assert_position(ledger_t *l, const char *peer, const char *currency, int64_t net,
                            int64_t pending)
{
    int64_t got_net = -1, got_pending = -1;
    assert_int_equal(ledger_position(l, peer, currency, &got_net, &got_pending), LEDGER_OK);
    if (got_net != net || got_pending != pending) {
        fail_msg("position %s %s: net %lld pending %lld, expected net %lld pending %lld", peer,
                 currency, (long long)got_net, (long long)got_pending, (long long)net,
                 (long long)pending);
    }
}

static ledger_counts_t counts_of(ledger_t *l)
{
    ledger_counts_t c;
    assert_int_equal(ledger_counts(l, &c), LEDGER_OK);
    return c;
}

static void assert_counts(ledger_t *l, uint64_t pending, uint64_t settled, uint64_t rejected,
                          uint64_t returned)
{
    ledger_counts_t c = counts_of(l);
    if (c.pending != pending || c.settled != settled || c.rejected != rejected ||
        c.returned != returned) {
        fail_msg("counts %llu/%llu/%llu/%llu, expected %llu/%llu/%llu/%llu",
                 (unsigned long long)c.pending, (unsigned long long)c.settled,
                 (unsigned long long)c.rejected, (unsigned long long)c.returned,
                 (unsigned long long)pending, (unsigned long long)settled,
                 (unsigned long long)rejected, (unsigned long long)returned);
    }
}

static uint64_t rows_of(ledger_t *l)
{
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(l, head, &rows), LEDGER_OK);
    return rows;
}

/* The head and row count, to compare before and after something that must change nothing. */
typedef struct {
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows;
    ledger_counts_t counts;
} snapshot_t;

static snapshot_t snapshot_of(ledger_t *l)
{
    snapshot_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ledger_head(l, s.head, &s.rows), LEDGER_OK);
    s.counts = counts_of(l);
    return s;
}

static void assert_same_snapshot(const snapshot_t *a, const snapshot_t *b)
{
    assert_int_equal(a->rows, b->rows);
    assert_memory_equal(a->head, b->head, LEDGER_HASH_BYTES);
    assert_memory_equal(&a->counts, &b->counts, sizeof a->counts);
}

/* One integer from a SQL query on the ledger's connection. */
static int64_t sql_int(ledger_t *l, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(l), sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* I1: per currency, the peer accounts and the clearing account cancel out, posted and pending
 * (SELECT currency, sum(posted_net), sum(pending_net) FROM accounts GROUP BY currency gives
 * 0, 0); and every balance is still an exact integer (SQLite turns an overflowing sum into a
 * REAL). The sums are taken here in 128 bits: at the edge of int64 a valid set of balances can
 * have a partial sum outside int64, where SQLite's sum() fails with "integer overflow". */
static void assert_balanced(ledger_t *l)
{
    assert_int_equal(sql_int(l, "SELECT count(*) FROM accounts WHERE"
                                " typeof(posted_net) != 'integer' OR"
                                " typeof(pending_net) != 'integer'"),
                     0);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(l),
                                        "SELECT currency, posted_net, pending_net FROM accounts"
                                        " ORDER BY currency",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    char ccy[8] = "", broken[8] = "";
    __int128 posted = 0, pending = 0;
    long long broken_posted = 0, broken_pending = 0;
    int step;
    do {
        step = sqlite3_step(stmt);
        const char *row_ccy = step == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : "";
        if (step != SQLITE_ROW || strcmp(row_ccy, ccy) != 0) { /* a currency is complete */
            if (ccy[0] != '\0' && (posted != 0 || pending != 0) && broken[0] == '\0') {
                snprintf(broken, sizeof broken, "%s", ccy);
                broken_posted = (long long)posted;
                broken_pending = (long long)pending;
            }
            snprintf(ccy, sizeof ccy, "%s", row_ccy);
            posted = pending = 0;
        }
        if (step == SQLITE_ROW) {
            posted += sqlite3_column_int64(stmt, 1);
            pending += sqlite3_column_int64(stmt, 2);
        }
    } while (step == SQLITE_ROW);
    sqlite3_finalize(stmt);
    assert_int_equal(step, SQLITE_DONE);
    if (broken[0] != '\0') {
        fail_msg("I1 broken in %s: posted %lld, pending %lld", broken, broken_posted,
                 broken_pending);
    }
}

/* Every account and its balances, as one line, to compare before and after. */
static void accounts_text(ledger_t *l, char *out, size_t out_size)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(l),
                                        "SELECT group_concat(kind || ' ' || peer || ' ' || currency"
                                        " || ' ' || posted_net || ' ' || pending_net, '; ')"
                                        " FROM (SELECT * FROM accounts"
                                        " ORDER BY kind, peer, currency)",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    const unsigned char *text = sqlite3_column_text(stmt, 0);
    int written = snprintf(out, out_size, "%s", text != NULL ? (const char *)text : "");
    sqlite3_finalize(stmt);
    assert_true(written >= 0 && (size_t)written < out_size);
}

/* Recomputes the hash chain from the stored journal rows with ledger_row_hash and checks every
 * stored hash, the sequence numbers, and that the last one is ledger_head. */
static void assert_chain_verifies(ledger_t *l)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(l),
                                        "SELECT seq, kind, peer, uetr, currency, amount_minor,"
                                        " reason, content_hash, evidence, created_ms, hash"
                                        " FROM journal ORDER BY seq",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    uint8_t prev[LEDGER_HASH_BYTES] = {0};
    int64_t expected_seq = 1;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(stmt, 0);
        bool shape_ok = seq == expected_seq &&
                        sqlite3_column_bytes(stmt, 7) == SETTLEMENT_HASH_BYTES &&
                        sqlite3_column_bytes(stmt, 10) == LEDGER_HASH_BYTES;
        uint8_t computed[LEDGER_HASH_BYTES];
        if (shape_ok) {
            ledger_row_t row = {
                .seq = seq,
                .kind = (entry_kind_t)sqlite3_column_int(stmt, 1),
                .peer = (const char *)sqlite3_column_text(stmt, 2),
                .uetr = (const char *)sqlite3_column_text(stmt, 3),
                .currency = (const char *)sqlite3_column_text(stmt, 4),
                .amount_minor = sqlite3_column_int64(stmt, 5),
                .reason = (const char *)sqlite3_column_text(stmt, 6),
                .content_hash = sqlite3_column_blob(stmt, 7),
                .evidence = sqlite3_column_blob(stmt, 8),
                .evidence_len = (size_t)sqlite3_column_bytes(stmt, 8),
                .created_unix_ms = sqlite3_column_int64(stmt, 9),
            };
            ledger_row_hash(prev, &row, computed);
            shape_ok = memcmp(computed, sqlite3_column_blob(stmt, 10), LEDGER_HASH_BYTES) == 0;
        }
        if (!shape_ok) {
            sqlite3_finalize(stmt);
            fail_msg("journal row %lld (expected seq %lld) does not chain", (long long)seq,
                     (long long)expected_seq);
        }
        memcpy(prev, computed, sizeof prev);
        expected_seq++;
    }
    sqlite3_finalize(stmt);
    assert_int_equal(step, SQLITE_DONE);
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(l, head, &rows), LEDGER_OK);
    assert_int_equal(rows, (uint64_t)(expected_seq - 1));
    assert_memory_equal(head, prev, LEDGER_HASH_BYTES);
}

/* A deterministic PRNG (xorshift64*) so a failing run can be replayed from its seed. */
typedef struct {
    uint64_t state;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * UINT64_C(2685821657736338717);
}

/* Uniform enough in [0, n) for test purposes. */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    assert_true(n > 0);
    return rng_next(r) % n;
}

static uint64_t test_seed(uint64_t fallback)
{
    const char *env = getenv("CORRIDOR_TEST_SEED");
    uint64_t seed = env != NULL && *env ? strtoull(env, NULL, 0) : fallback;
    return seed != 0 ? seed : fallback;
}

/* A UUIDv4 from the PRNG, so the property test is reproducible down to its UETRs. */
static void uetr_from_rng(rng_t *r, char out[static CORRIDOR_UETR_LEN + 1])
{
    uint8_t b[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t v = rng_next(r);
        memcpy(b + i, &v, 8);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, CORRIDOR_UETR_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    assert_int_equal(uetr_check(out), VALID_OK);
}

/* ---- 1. open, reopen, refuse what is not ours ----------------------------------------------- */

static void test_open_creates_file(void **state)
{
    fixture_t *f = *state;
    struct stat st;
    assert_int_not_equal(stat(f->path, &st), 0);
    ledger_t *l = open_ledger(f->path);
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    uint8_t head[LEDGER_HASH_BYTES], zero[LEDGER_HASH_BYTES] = {0};
    uint64_t rows = 99;
    assert_int_equal(ledger_head(l, head, &rows), LEDGER_OK);
    assert_int_equal(rows, 0);
    assert_memory_equal(head, zero, sizeof zero);
    assert_counts(l, 0, 0, 0, 0);
    assert_false(ledger_stopped(l));
    assert_false(ledger_in_transaction(l));
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    ledger_close(&l);
    assert_null(l);
    ledger_close(&l); /* safe twice */
}

static void test_reopen_keeps_data(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1234);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    ledger_close(&l);

    l = open_ledger(f->path);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, s.uetr, &got, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_int_equal(got.amount_minor, 1234);
    assert_position(l, PEER, "RUB", 0, -1234);
    ledger_close(&l);
}

static void test_find_returns_stored_content(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "IRR", 987654321);
    snprintf(s.remittance, sizeof s.remittance, "contract 42/2024, \xd0\xbe\xd0\xbf\xd0\xbb");
    s.created_unix_ms = CREATED_MS + 17;
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, INT64_C(1000000000), NULL, &o), LEDGER_OK);
    settlement_t got;
    memset(&got, 0x55, sizeof got);
    assert_int_equal(ledger_find(l, PEER, s.uetr, &got, NULL), LEDGER_OK);
    assert_string_equal(got.peer, s.peer);
    assert_string_equal(got.uetr, s.uetr);
    assert_int_equal(got.direction, DIRECTION_IN);
    assert_int_equal(got.amount_minor, s.amount_minor);
    assert_string_equal(got.currency, s.currency);
    assert_string_equal(got.end_to_end_id, s.end_to_end_id);
    assert_string_equal(got.value_date, s.value_date);
    assert_string_equal(got.debtor_name, s.debtor_name);
    assert_string_equal(got.debtor_account, s.debtor_account);
    assert_string_equal(got.creditor_name, s.creditor_name);
    assert_string_equal(got.creditor_account, s.creditor_account);
    assert_string_equal(got.remittance, s.remittance);
    assert_int_equal(got.created_unix_ms, s.created_unix_ms);
    uint8_t h1[SETTLEMENT_HASH_BYTES], h2[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&s, h1);
    settlement_content_hash(&got, h2);
    assert_memory_equal(h1, h2, sizeof h1);
    assert_int_equal(ledger_find(l, PEER_OTHER, s.uetr, NULL, NULL), LEDGER_E_NOT_FOUND);
    ledger_close(&l);
}

/* ---- the channel at a sequence cut ----------------------------------------------------------- */

static ledger_t *open_as(const char *dir, const char *file, const char *node)
{
    char *path = test_path(dir, file);
    ledger_t *l = NULL;
    char err[256] = "";
    assert_int_equal(ledger_open(path, node, LEDGER_READ_WRITE, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    free(path);
    return l;
}

static ledger_cut_t cut_of(ledger_t *l, const char *peer, uint64_t sent, uint64_t applied)
{
    ledger_cut_t cut;
    assert_int_equal(ledger_channel_at_cut(l, peer, sent, applied, &cut), LEDGER_OK);
    return cut;
}

/* Two sides of one channel at the same cut, each from its own side: same digest and count,
 * mirrored positions. */
static void assert_cuts_agree(ledger_t *payer, uint64_t payer_sent, uint64_t payer_applied,
                              ledger_t *payee, uint64_t expect_entries, int64_t expect_payer_net)
{
    ledger_cut_t a = cut_of(payer, PEER, payer_sent, payer_applied);
    ledger_cut_t b = cut_of(payee, NODE, payer_applied, payer_sent);
    assert_memory_equal(a.digest, b.digest, sizeof a.digest);
    assert_int_equal(a.entries, expect_entries);
    assert_int_equal(b.entries, expect_entries);
    assert_int_equal(a.n_positions, expect_payer_net != 0 ? 1 : 0);
    assert_int_equal(b.n_positions, a.n_positions);
    if (a.n_positions == 1) {
        assert_string_equal(a.positions[0].currency, "RUB");
        assert_int_equal(a.positions[0].net_minor, expect_payer_net);
        assert_int_equal(b.positions[0].net_minor, -expect_payer_net);
    }
    ledger_cut_release(&a);
    ledger_cut_release(&b);
}

/* A payer (NODE) and a payee (PEER) each past the cut in its own way: settlements in flight,
 * decisions the payer has not read yet, a return, a refusal. */
static void test_channel_at_cut_agrees_across_sides(void **state)
{
    fixture_t *f = *state;
    ledger_t *a = open_as(f->dir, "a.db", NODE);
    ledger_t *b = open_as(f->dir, "b.db", PEER);
    settlement_t x[3];
    settlement_t in[3];
    ledger_outcome_t o;
    for (int i = 0; i < 3; i++) {
        x[i] = make_settlement(DIRECTION_OUT, PEER, "RUB", 1000 * (i + 1));
        in[i] = x[i];
        in[i].direction = DIRECTION_IN;
        snprintf(in[i].peer, sizeof in[i].peer, "%s", NODE);
    }
    /* A sends 1, 2, 3. B books 1 (its reply: B's 1), refuses 2 (B's 2), has not seen 3. */
    assert_int_equal(ledger_begin(a), LEDGER_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ledger_send(a, &x[i], evidence, EVIDENCE_LEN, (uint64_t)i + 1, &o),
                         LEDGER_OK);
    }
    assert_int_equal(ledger_commit(a), LEDGER_OK);
    assert_int_equal(ledger_begin(b), LEDGER_OK);
    assert_int_equal(ledger_receive(b, &in[0], INT64_MAX / 4, NULL, evidence, EVIDENCE_LEN, 1, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_set_reply(b, NODE, in[0].uetr, evidence, EVIDENCE_LEN, 1), LEDGER_OK);
    assert_int_equal(ledger_receive(b, &in[1], 0, "AM02", evidence, EVIDENCE_LEN, 2, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_set_reply(b, NODE, in[1].uetr, evidence, EVIDENCE_LEN, 2), LEDGER_OK);
    assert_int_equal(ledger_commit(b), LEDGER_OK);

    /* A applied nothing of B's yet, B has not applied A's 3: at the cut (2, 0) both see two
     * pending entries, though B has decided both (its decisions are above the cut) */
    ledger_cut_t early = cut_of(a, PEER, 2, 0);
    ledger_cut_t at_b = cut_of(b, NODE, 0, 2);
    assert_memory_equal(early.digest, at_b.digest, sizeof early.digest);
    assert_int_equal(early.entries, 2);
    ledger_cut_release(&early);
    ledger_cut_release(&at_b);

    /* A reads B's 1 (settled) and 2 (refused); B returns 1 (its 3) and applies A's 3 */
    assert_int_equal(ledger_begin(a), LEDGER_OK);
    assert_int_equal(ledger_resolve(a, PEER, x[0].uetr, true, NULL, evidence, EVIDENCE_LEN, 1, &o),
                     LEDGER_OK);
    assert_int_equal(
        ledger_resolve(a, PEER, x[1].uetr, false, "AM02", evidence, EVIDENCE_LEN, 2, &o),
        LEDGER_OK);
    assert_int_equal(ledger_commit(a), LEDGER_OK);
    assert_int_equal(ledger_begin(b), LEDGER_OK);
    assert_int_equal(ledger_return(b, NODE, in[0].uetr, "AC04", evidence, EVIDENCE_LEN, 3, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_receive(b, &in[2], INT64_MAX / 4, NULL, evidence, EVIDENCE_LEN, 3, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_set_reply(b, NODE, in[2].uetr, evidence, EVIDENCE_LEN, 4), LEDGER_OK);
    assert_int_equal(ledger_commit(b), LEDGER_OK);

    /* every cut both have passed agrees, whatever either did after it */
    assert_cuts_agree(a, 2, 1, b, 2, -1000); /* 1 settled, 2 pending at A's cut */
    assert_cuts_agree(a, 3, 2, b, 3, -1000); /* 1 settled, 2 refused, 3 pending */
    /* A reads B's 3 (the return) and 4 (3 settled): now each side's current books agree */
    assert_int_equal(ledger_begin(a), LEDGER_OK);
    assert_int_equal(ledger_return(a, PEER, x[0].uetr, "AC04", evidence, EVIDENCE_LEN, 3, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_resolve(a, PEER, x[2].uetr, true, NULL, evidence, EVIDENCE_LEN, 4, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(a), LEDGER_OK);
    assert_cuts_agree(a, 3, 2, b, 3, -1000);
    assert_cuts_agree(a, 3, 3, b, 3, 0);     /* 1 returned */
    assert_cuts_agree(a, 3, 4, b, 3, -3000); /* 3 settled */
    /* the latest cut is the channel as it is: the digest the ledger keeps */
    ledger_cut_t now = cut_of(a, PEER, 3, 4);
    assert_int_equal(now.entries, 3);
    ledger_cut_release(&now);
    ledger_close(&a);
    ledger_close(&b);
}

/* A cut far behind the channel is refused rather than read: a peer proposing checkpoints at
 * cut (0, 0) cannot make every proposal a scan of the whole channel. */
static void test_channel_at_cut_bounded(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (uint64_t i = 1; i <= LEDGER_CUT_TOUCHED_MAX + 1; i++) {
        settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 100);
        assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, i, &o), LEDGER_OK);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    ledger_cut_t cut;
    assert_int_equal(ledger_channel_at_cut(l, PEER, 0, 0, &cut), LEDGER_E_STATE);
    assert_non_null(strstr(ledger_last_error(l), "behind"));
    assert_int_equal(ledger_channel_at_cut(l, PEER, 1, 0, &cut), LEDGER_OK); /* at the limit */
    assert_int_equal(cut.touched, LEDGER_CUT_TOUCHED_MAX);
    assert_int_equal(cut.entries, 1);
    ledger_cut_release(&cut);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

static void test_open_other_node_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_close(&l);
    char err[256] = "";
    ledger_t *other = NULL;
    assert_int_equal(
        ledger_open(f->path, "BKIRIRTH", LEDGER_READ_WRITE, NULL, &other, err, sizeof err),
        LEDGER_E_CORRUPT);
    assert_null(other);
    assert_non_null(strstr(err, NODE));
    /* Read-only with no name skips the check; with the wrong name it is refused too. */
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &other, err, sizeof err),
                     LEDGER_OK);
    ledger_close(&other);
    assert_int_equal(
        ledger_open(f->path, "BKIRIRTH", LEDGER_READ_ONLY, NULL, &other, err, sizeof err),
        LEDGER_E_CORRUPT);
    assert_null(other);
}

static void test_open_text_file_refused(void **state)
{
    fixture_t *f = *state;
    char text[4096];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = "The quick brown fox jumps over the lazy dog.\n"[i % 45];
    }
    test_write_file(f->path, text, sizeof text, 0600);
    ledger_t *l = NULL;
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NODE, LEDGER_READ_WRITE, NULL, &l, err, sizeof err),
                     LEDGER_E_CORRUPT);
    assert_null(l);
    assert_true(strlen(err) > 0);
    /* The file is left as it was. */
    size_t len = 0;
    char *after = test_read_file(f->path, &len);
    assert_non_null(after);
    assert_int_equal(len, sizeof text);
    assert_memory_equal(after, text, sizeof text);
    free(after);
    err[0] = '\0';
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_E_CORRUPT);
    assert_true(strlen(err) > 0);
}

/* Creates an SQLite file with the given SQL (not a ledger). */
/* Takes a fresh ledger back from schema 12 to 11 (to build an older one). */
#define UNDO_SCHEMA_12 "DROP INDEX IF EXISTS settlements_setoff_open; DROP TABLE setoffs;"

/* Takes a fresh ledger back from schema 12 to 10 (to build an older one). */
#define UNDO_SCHEMA_11                                                                             \
    UNDO_SCHEMA_12 " DROP TABLE cycles; DROP TABLE cycle_running; DROP TABLE net_settlements;"

/* Takes a fresh ledger back from schema 11 to 9 (to build an older one). */
#define UNDO_SCHEMA_10                                                                             \
    UNDO_SCHEMA_11                                                                                 \
    " DROP INDEX settlements_fx; DROP INDEX settlements_fx_reserved;"                              \
    " ALTER TABLE settlements DROP COLUMN fx_id; ALTER TABLE settlements DROP COLUMN fx_leg;"

/* Takes a fresh ledger back from schema 10 to 8 (to build an older one). */
#define UNDO_SCHEMA_9                                                                              \
    UNDO_SCHEMA_10                                                                                 \
    " DROP INDEX settlements_returns; ALTER TABLE settlements DROP COLUMN original_uetr;"          \
    " ALTER TABLE settlements DROP COLUMN return_reason;"                                          \
    " ALTER TABLE settlements DROP COLUMN original_hash;"

/* Takes a fresh ledger back from schema 9 to 7 (to build an older one). */
#define UNDO_SCHEMA_8                                                                              \
    UNDO_SCHEMA_9                                                                                  \
    " DROP INDEX settlements_held; ALTER TABLE settlements DROP COLUMN expires_ms;"                \
    " ALTER TABLE settlements DROP COLUMN hold; ALTER TABLE settlements DROP COLUMN at_peer;"      \
    " ALTER TABLE settlements DROP COLUMN cancel_id;"

static void make_sqlite_file(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_open_foreign_sqlite_refused(void **state)
{
    fixture_t *f = *state;
    make_sqlite_file(f->path, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
                              "INSERT INTO customers(name) VALUES('x');");
    ledger_t *l = NULL;
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NODE, LEDGER_READ_WRITE, NULL, &l, err, sizeof err),
                     LEDGER_E_CORRUPT);
    assert_null(l);
    assert_true(strlen(err) > 0);
}

static void test_open_foreign_sqlite_with_version_refused(void **state)
{
    fixture_t *f = *state;
    /* The right version number but none of our tables. */
    make_sqlite_file(f->path, "CREATE TABLE customers(id INTEGER PRIMARY KEY);"
                              "PRAGMA user_version = 1;");
    ledger_t *l = NULL;
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NODE, LEDGER_READ_WRITE, NULL, &l, err, sizeof err),
                     LEDGER_E_CORRUPT);
    assert_null(l);
    assert_true(strlen(err) > 0);
}

static void test_open_newer_version_refused(void **state)
{
    fixture_t *f = *state;
    make_sqlite_file(f->path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
                              "PRAGMA user_version = 99;");
    ledger_t *l = NULL;
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NODE, LEDGER_READ_WRITE, NULL, &l, err, sizeof err),
                     LEDGER_E_VERSION);
    assert_null(l);
    assert_non_null(strstr(err, "99"));
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_E_VERSION);
    assert_null(l);
}

/* A ledger of schema 1 (settlements with UNIQUE(peer, uetr), channels without the wire version
 * and proof of schema 3) is read as it is and upgraded when opened for writing, its rows and
 * ids kept. */
static void test_open_upgrades_schema_1(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1234);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    int64_t id = sql_int(l, "SELECT id FROM settlements");
    ledger_close(&l);
    make_sqlite_file(f->path,
                     "BEGIN; CREATE TABLE old AS SELECT id, peer, uetr, direction, amount_minor,"
                     " currency, content_hash, canon_hash, status, reason, end_to_end_id,"
                     " value_date, debtor_name, debtor_account, creditor_name, creditor_account,"
                     " remittance, created_ms, reply FROM settlements; DROP TABLE settlements;"
                     "CREATE TABLE settlements(id INTEGER PRIMARY KEY, peer TEXT NOT NULL,"
                     " uetr TEXT NOT NULL, direction INTEGER NOT NULL,"
                     " amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,"
                     " content_hash BLOB NOT NULL, canon_hash BLOB NOT NULL,"
                     " status INTEGER NOT NULL, reason TEXT NOT NULL,"
                     " end_to_end_id TEXT NOT NULL, value_date TEXT NOT NULL,"
                     " debtor_name TEXT NOT NULL, debtor_account TEXT NOT NULL,"
                     " creditor_name TEXT NOT NULL, creditor_account TEXT NOT NULL,"
                     " remittance TEXT NOT NULL, created_ms INTEGER NOT NULL, reply BLOB,"
                     " UNIQUE(peer, uetr));"
                     "INSERT INTO settlements SELECT * FROM old; DROP TABLE old;"
                     "CREATE INDEX settlements_channel ON settlements(peer, uetr, canon_hash);"
                     "ALTER TABLE channels DROP COLUMN wire_version;"
                     "ALTER TABLE channels DROP COLUMN applied_proof;"
                     "ALTER TABLE journal DROP COLUMN reply;"
                     "ALTER TABLE checkpoints DROP COLUMN messages;"
                     "DELETE FROM meta WHERE key = 'replies_from';"
                     "DROP TABLE keys;" UNDO_SCHEMA_11 "PRAGMA user_version = 1; COMMIT;");
    const char *autoindex =
        "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_settlements%'";

    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), 1); /* a reader changes nothing */
    assert_int_equal(sql_int(l, autoindex), 1);
    ledger_close(&l);

    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    assert_int_equal(sql_int(l, autoindex), 0);
    assert_int_equal(sql_int(l, "SELECT wire_version FROM channels"), 1); /* schema 3 */
    /* schema 4: rows from here on carry our replies; the one before does not */
    assert_int_equal(sql_int(l, "SELECT value FROM meta WHERE key = 'replies_from'"), 2);
    /* schema 5: the pending settlement is undecided and, like every older one, below any cut */
    assert_int_equal(sql_int(l, "SELECT count(*) FROM settlements WHERE open_seq = 0 AND"
                                " decided_seq IS NULL AND our_seq = 0"),
                     1);
    assert_int_equal(sql_int(l, "SELECT id FROM settlements"), id);
    /* schema 6: an empty key history (the cards' keys sign everything); 7: with the switch */
    assert_int_equal(sql_int(l, "SELECT count(*) FROM keys"), 0);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM pragma_table_info('keys')"
                                " WHERE name IN ('switch_seq', 'switch_ms')"),
                     2);
    assert_int_equal(
        sql_int(l, "SELECT count(*) FROM sqlite_master WHERE name = 'settlements_channel'"), 1);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK); /* the same UETR is still the same payment */
    assert_true(o.repeated);
    assert_counts(l, 1, 0, 0, 0);
    ledger_close(&l);
}

static void test_open_malformed_head_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 100);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    ledger_close(&l);
    make_sqlite_file(f->path, "UPDATE journal SET hash = x'00' WHERE seq = 1");
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NODE, LEDGER_READ_WRITE, NULL, &l, err, sizeof err),
                     LEDGER_E_CORRUPT);
    assert_null(l);
    assert_true(strlen(err) > 0);
}

static void test_open_readonly_missing_fails(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = NULL;
    char err[256] = "";
    ledger_err_t rc = ledger_open(f->path, NODE, LEDGER_READ_ONLY, NULL, &l, err, sizeof err);
    assert_int_not_equal(rc, LEDGER_OK);
    assert_null(l);
    assert_true(strlen(err) > 0);
    struct stat st;
    assert_int_not_equal(stat(f->path, &st), 0); /* nothing created */
}

static void test_readonly_refuses_writes(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 100);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    ledger_close(&l);

    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NODE, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(ledger_begin(l), LEDGER_E_READONLY);
    assert_false(ledger_in_transaction(l));
    settlement_t s2 = make_settlement(DIRECTION_OUT, PEER, "RUB", 100);
    assert_int_equal(ledger_send(l, &s2, evidence, EVIDENCE_LEN, 0, &o), LEDGER_E_READONLY);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 100);
    assert_int_equal(ledger_receive(l, &in, 1000, NULL, evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_READONLY);
    assert_int_equal(ledger_resolve(l, PEER, s.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_READONLY);
    assert_int_equal(ledger_return(l, PEER, s.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_READONLY);
    assert_int_equal(ledger_outbox_put(l, PEER, 1, 1, evidence, EVIDENCE_LEN), LEDGER_E_READONLY);
    assert_int_equal(ledger_channel_set_acked(l, PEER, 1), LEDGER_E_READONLY);
    assert_int_equal(ledger_channel_set_applied(l, PEER, 1, NULL, 0), LEDGER_E_READONLY);
    key_record_t k;
    memset(&k, 0, sizeof k);
    assert_int_equal(ledger_key_add(l, &k), LEDGER_E_READONLY);
    assert_int_equal(ledger_key_revoke(l, PEER, KEY_SIDE_THEIRS, 1, NULL), LEDGER_E_READONLY);
    /* Reads work, and nothing changed. */
    assert_position(l, PEER, "RUB", 0, -100);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

static void test_close_in_transaction_rolls_back(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 100);
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    assert_true(ledger_in_transaction(l));
    ledger_close(&l); /* no commit */
    l = open_ledger(f->path);
    assert_int_equal(ledger_find(l, PEER, s.uetr, NULL, NULL), LEDGER_E_NOT_FOUND);
    assert_int_equal(rows_of(l), 0);
    assert_counts(l, 0, 0, 0, 0);
    ledger_close(&l);
}

/* ---- 2. lifecycle --------------------------------------------------------------------------- */

static void test_send_is_pending(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1500);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_false(o.repeated);
    assert_string_equal(o.reason, "");
    assert_int_equal(o.position_minor, 0);
    assert_position(l, PEER, "RUB", 0, -1500);
    assert_counts(l, 1, 0, 0, 0);
    assert_int_equal(rows_of(l), 1);
    assert_balanced(l);
    ledger_close(&l);
}

static void test_resolve_settled_posts(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1500);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_false(o.repeated);
    assert_string_equal(o.reason, "");
    assert_int_equal(o.position_minor, -1500);
    assert_position(l, PEER, "RUB", -1500, 0);
    assert_counts(l, 0, 1, 0, 0);
    assert_int_equal(ledger_find(l, PEER, s.uetr, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(rows_of(l), 2);
    assert_balanced(l);
    ledger_close(&l);
}

static void test_resolve_rejected_voids(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1500);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &s, false, "AM02", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_int_equal(o.position_minor, 0);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_counts(l, 0, 0, 1, 0);
    memset(&o, 0, sizeof o);
    assert_int_equal(ledger_find(l, PEER, s.uetr, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_balanced(l);
    ledger_close(&l);
}

static void test_receive_books(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 10000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_false(o.repeated);
    assert_string_equal(o.reason, "");
    assert_int_equal(o.position_minor, 700);
    assert_position(l, PEER, "RUB", 700, 0);
    assert_counts(l, 0, 1, 0, 0);
    assert_balanced(l);
    ledger_close(&l);
}

/* ---- holds and expiry (PROTOCOL.md 3.8) ---------------------------------------------------- */

static ledger_err_t hold1(ledger_t *l, const settlement_t *s, int64_t cap_minor,
                          ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_receive_holding(l, s, cap_minor, NULL, LEDGER_HOLD_SCREENING, evidence,
                                             EVIDENCE_LEN, 3, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t decide1(ledger_t *l, const settlement_t *s, const char *reason,
                            ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc =
        ledger_decide_held(l, s->peer, s->uetr, reason, evidence, EVIDENCE_LEN, NULL, 9, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

typedef struct {
    ledger_held_t h[4];
    size_t n;
} held_seen_t;

static void see_held(const ledger_held_t *h, void *arg)
{
    held_seen_t *seen = arg;
    assert_true(seen->n < 4);
    seen->h[seen->n++] = *h;
}

/* A held payment is pending at both ends of the books: its amount counts against the cap (a
 * second one over it is refused AM02) but not in the posted position; released it is settled,
 * declined it is rejected with the reason; each decision is a row, and a second decision is
 * refused. The digest sees a held payment as pending. */
static void test_hold_release_and_decline(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    settlement_t b = make_settlement(DIRECTION_IN, PEER, "RUB", 400);
    settlement_t c = make_settlement(DIRECTION_IN, PEER, "RUB", 300);
    a.expires_unix_ms = CREATED_MS + 5000;
    ledger_outcome_t o;
    assert_int_equal(hold1(l, &a, 1000, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_HELD);
    assert_string_equal(o.hold, LEDGER_HOLD_SCREENING);
    assert_position(l, PEER, "RUB", 0, 700);
    assert_int_equal(hold1(l, &b, 1000, &o), LEDGER_OK); /* 700 held + 400 > 1000 */
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_int_equal(receive1(l, &b, 1000, NULL, &o), LEDGER_OK); /* a repeat: the same */
    assert_true(o.repeated);
    assert_int_equal(hold1(l, &c, 1000, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_HELD);
    assert_position(l, PEER, "RUB", 0, 1000);
    ledger_counts_t counts = counts_of(l);
    assert_int_equal(counts.held, 2);

    held_seen_t seen = {0};
    assert_int_equal(ledger_held(l, see_held, &seen), LEDGER_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.h[0].s.uetr, a.uetr);
    assert_int_equal(seen.h[0].s.expires_unix_ms, a.expires_unix_ms);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_hold_for_review(l, PEER, c.uetr), LEDGER_OK);
    assert_int_equal(ledger_hold_for_review(l, PEER, c.uetr), LEDGER_E_STATE); /* not twice */
    assert_int_equal(ledger_commit(l), LEDGER_OK);

    uint64_t rows = rows_of(l);
    assert_int_equal(decide1(l, &a, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_string_equal(o.hold, "");
    assert_position(l, PEER, "RUB", 700, 300);
    assert_int_equal(decide1(l, &c, "RR04", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "RR04");
    assert_position(l, PEER, "RUB", 700, 0);
    assert_int_equal(rows_of(l), rows + 2);
    assert_int_equal(decide1(l, &a, "AB05", &o), LEDGER_E_STATE); /* decided already */
    assert_int_equal(decide1(l, &b, NULL, &o), LEDGER_E_STATE);
    settlement_t unknown = make_settlement(DIRECTION_IN, PEER, "RUB", 1);
    assert_int_equal(decide1(l, &unknown, NULL, &o), LEDGER_E_NOT_FOUND);
    assert_int_equal(rows_of(l), rows + 2);
    seen.n = 0;
    assert_int_equal(ledger_held(l, see_held, &seen), LEDGER_OK);
    assert_int_equal(seen.n, 0);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, a.uetr, &got, &o), LEDGER_OK);
    assert_int_equal(got.expires_unix_ms, a.expires_unix_ms); /* kept: the body re-encodes */
    assert_balanced(l);
    ledger_close(&l);
}

/* At the payer, the payee's PDNG marks our pending payment held at the peer (once: a repeat
 * writes nothing); a PDNG for a payment that is final, or not ours, changes nothing. */
static void test_held_at_peer(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 500);
    s.expires_unix_ms = CREATED_MS + 1000;
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    uint8_t hash[SETTLEMENT_HASH_BYTES], other[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, len, hash);
    free(body);
    memset(other, 7, sizeof other);
    uint64_t rows = rows_of(l);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_note_held_at_peer(l, PEER, s.uetr, other, evidence, EVIDENCE_LEN, 4),
                     LEDGER_E_CONFLICT);
    assert_int_equal(ledger_note_held_at_peer(l, PEER, s.uetr, hash, evidence, EVIDENCE_LEN, 4),
                     LEDGER_OK);
    assert_int_equal(ledger_note_held_at_peer(l, PEER, s.uetr, hash, evidence, EVIDENCE_LEN, 5),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_int_equal(rows_of(l), rows + 1);
    bool held = false;
    assert_int_equal(ledger_at_peer(l, PEER, s.uetr, &held), LEDGER_OK);
    assert_true(held);
    assert_int_equal(ledger_find(l, PEER, s.uetr, &(settlement_t){0}, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_string_equal(o.at_peer, "held");
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_note_held_at_peer(l, PEER, s.uetr, NULL, evidence, EVIDENCE_LEN, 6),
                     LEDGER_E_STATE); /* after the final answer */
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 5);
    assert_int_equal(ledger_receive(l, &in, 100, NULL, evidence, EVIDENCE_LEN, 7, &o), LEDGER_OK);
    assert_int_equal(ledger_note_held_at_peer(l, PEER, in.uetr, NULL, evidence, EVIDENCE_LEN, 8),
                     LEDGER_E_STATE); /* not ours */
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_balanced(l);
    ledger_close(&l);
}

/* A ledger of schema 7 opens for reading as it is (nothing held, no expiry), and upgrades to 8
 * for writing with every row and hash kept. */
static void test_holds_upgrade_from_schema_7(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1234);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    uint8_t head[LEDGER_HASH_BYTES], head_after[LEDGER_HASH_BYTES];
    assert_int_equal(ledger_head(l, head, NULL), LEDGER_OK);
    ledger_close(&l);
    make_sqlite_file(f->path, "BEGIN; " UNDO_SCHEMA_8 " PRAGMA user_version = 7; COMMIT;");
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), 7);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, s.uetr, &got, &o), LEDGER_OK);
    assert_int_equal(got.expires_unix_ms, 0);
    assert_string_equal(o.hold, "");
    ledger_close(&l);
    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    assert_int_equal(ledger_head(l, head_after, NULL), LEDGER_OK);
    assert_memory_equal(head, head_after, sizeof head);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_true(o.repeated);
    ledger_close(&l);
}

/* A return of `amount` of the payment `of`, seen from the side whose direction is `dir`. */
static settlement_t make_return(const settlement_t *of, direction_t dir, int64_t amount)
{
    settlement_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.peer, sizeof r.peer, "%s", of->peer);
    r.direction = dir;
    uetr_generate(r.uetr);
    snprintf(r.currency, sizeof r.currency, "%s", of->currency);
    r.amount_minor = amount;
    snprintf(r.original_uetr, sizeof r.original_uetr, "%s", of->uetr);
    snprintf(r.return_reason, sizeof r.return_reason, "AC04");
    memset(r.original_hash, 0x5a, sizeof r.original_hash);
    assert_int_equal(return_check(&r), REASON_NONE);
    return r;
}

/* What ledger_return_check says of r, in a transaction of its own. */
static const char *return_why(ledger_t *l, const settlement_t *r)
{
    const char *why = "unset";
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_return_check(l, r, &why), LEDGER_OK);
    ledger_rollback(l);
    return why;
}

/* The returner's side of PROTOCOL.md 3.9: returns of an incoming settled payment, partial and
 * pending, stay within it; each is a record of its own, the payment's record keeps its status. */
static void test_returns_stay_within_the_payment(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &in, 1000000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    settlement_t r1 = make_return(&in, DIRECTION_OUT, 400);
    assert_null(return_why(l, &r1));
    assert_int_equal(send1(l, &r1, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_position(l, PEER, "RUB", 1000, -400);
    assert_int_equal(ledger_begin(l), LEDGER_OK); /* a return is never held: a PDNG is refused */
    assert_int_equal(ledger_note_held_at_peer(l, PEER, r1.uetr, NULL, evidence, EVIDENCE_LEN, 0),
                     LEDGER_E_STATE);
    ledger_rollback(l);
    int64_t accepted = -1, pending = -1;
    assert_int_equal(ledger_returns_of(l, PEER, in.uetr, DIRECTION_OUT, &accepted, &pending),
                     LEDGER_OK);
    assert_int_equal(accepted, 0);
    assert_int_equal(pending, 400);
    settlement_t over = make_return(&in, DIRECTION_OUT, 601); /* 400 pending + 601 > 1000 */
    assert_string_equal(return_why(l, &over), "AM09");
    settlement_t rest = make_return(&in, DIRECTION_OUT, 600);
    assert_null(return_why(l, &rest));
    assert_int_equal(resolve1(l, &r1, true, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", 600, 0);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, in.uetr, &got, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.returned_minor, 400);
    assert_int_equal(send1(l, &rest, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &rest, true, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", 0, 0);
    ledger_counts_t counts;
    assert_int_equal(ledger_counts(l, &counts), LEDGER_OK);
    assert_int_equal(counts.settled, 0);
    assert_int_equal(counts.returned, 1); /* wholly returned */
    assert_int_equal(counts.returns_accepted, 2);
    settlement_t more = make_return(&in, DIRECTION_OUT, 1);
    assert_string_equal(return_why(l, &more), "AM09");
    ledger_close(&l);
}

/* The payer's side: a return must name a settled payment of ours to that peer in its
 * currency; a refused one counts for nothing. */
static void test_return_names_a_settled_payment_of_ours(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 500);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 500);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_int_equal(receive1(l, &in, 1000000, NULL, &o), LEDGER_OK);
    settlement_t r = make_return(&out, DIRECTION_IN, 100);
    assert_string_equal(return_why(l, &r), "NOOR"); /* still pending */
    assert_int_equal(resolve1(l, &out, true, NULL, &o), LEDGER_OK);
    assert_null(return_why(l, &r));
    settlement_t wrong_way = make_return(&in, DIRECTION_IN, 100); /* the peer paid that one */
    assert_string_equal(return_why(l, &wrong_way), "NOOR");
    settlement_t other_ccy = make_return(&out, DIRECTION_IN, 100);
    snprintf(other_ccy.currency, sizeof other_ccy.currency, "IRR");
    assert_string_equal(return_why(l, &other_ccy), "NOOR");
    settlement_t unknown = make_return(&out, DIRECTION_IN, 100);
    uetr_generate(unknown.original_uetr);
    assert_string_equal(return_why(l, &unknown), "NOOR");
    settlement_t refused = make_return(&out, DIRECTION_IN, 400);
    assert_int_equal(receive1(l, &refused, INT64_MAX, "AM09", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_int_equal(receive1(l, &r, INT64_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_position(l, PEER, "RUB", 100, 0); /* -500 paid, +500 received, +100 returned */
    settlement_t rest = make_return(&out, DIRECTION_IN, 400);
    assert_null(return_why(l, &rest)); /* the refused 400 counts for nothing */
    settlement_t over = make_return(&out, DIRECTION_IN, 401);
    assert_string_equal(return_why(l, &over), "AM09");
    /* a return's id reused as a payment (or the other way) is other content */
    settlement_t as_payment = make_settlement(DIRECTION_IN, PEER, "RUB", 100);
    snprintf(as_payment.uetr, sizeof as_payment.uetr, "%s", r.uetr);
    assert_int_equal(receive1(l, &as_payment, 1000000, NULL, &o), LEDGER_E_CONFLICT);
    ledger_close(&l);
}

/* Books edited by hand (an insider's amount on an accepted return near INT64_MAX): the check
 * of a further return must not wrap around and let it through (PROTOCOL.md 3.9). */
static void test_return_check_edited_amount_does_not_wrap(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &in, 1000000, NULL, &o), LEDGER_OK);
    settlement_t r1 = make_return(&in, DIRECTION_OUT, 400);
    assert_int_equal(send1(l, &r1, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &r1, true, NULL, &o), LEDGER_OK);
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE settlements SET amount_minor = %lld WHERE uetr = '%s'",
             (long long)(INT64_MAX - 5), r1.uetr);
    assert_int_equal(sqlite3_exec(ledger_db(l), sql, NULL, NULL, NULL), SQLITE_OK);
    settlement_t more = make_return(&in, DIRECTION_OUT, 10);
    const char *why = return_why(l, &more);
    assert_non_null(why); /* before: the sum wrapped negative and the return passed */
    assert_string_equal(why, "AM09");
    /* two such returns: SQLite's sum() overflows; refused AM09, not a failed turn */
    settlement_t r2 = make_return(&in, DIRECTION_OUT, 10);
    assert_int_equal(send1(l, &r2, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &r2, true, NULL, &o), LEDGER_OK);
    snprintf(sql, sizeof sql, "UPDATE settlements SET amount_minor = %lld WHERE uetr = '%s'",
             (long long)(INT64_MAX - 5), r2.uetr);
    assert_int_equal(sqlite3_exec(ledger_db(l), sql, NULL, NULL, NULL), SQLITE_OK);
    assert_string_equal(return_why(l, &more), "AM09");
    ledger_close(&l);
}

/* A ledger of schema 8 reads as it is (no returns) and upgrades to 9 for writing with every row
 * and hash kept. */
static void test_returns_upgrade_from_schema_8(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 1234);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 1000000, NULL, &o), LEDGER_OK);
    uint8_t head[LEDGER_HASH_BYTES], head_after[LEDGER_HASH_BYTES];
    assert_int_equal(ledger_head(l, head, NULL), LEDGER_OK);
    ledger_close(&l);
    make_sqlite_file(f->path, "BEGIN; " UNDO_SCHEMA_9 " PRAGMA user_version = 8; COMMIT;");
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), 8);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, s.uetr, &got, &o), LEDGER_OK);
    assert_false(settlement_is_return(&got));
    assert_int_equal(o.returned_minor, 0);
    ledger_counts_t counts;
    assert_int_equal(ledger_counts(l, &counts), LEDGER_OK);
    assert_int_equal(counts.settled, 1);
    int64_t accepted = -1, pending = -1;
    assert_int_equal(ledger_returns_of(l, PEER, s.uetr, DIRECTION_OUT, &accepted, &pending),
                     LEDGER_OK);
    assert_int_equal(accepted + pending, 0);
    ledger_close(&l);
    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    assert_int_equal(ledger_head(l, head_after, NULL), LEDGER_OK);
    assert_memory_equal(head, head_after, sizeof head);
    settlement_t r = make_return(&s, DIRECTION_OUT, 34);
    assert_int_equal(send1(l, &r, &o), LEDGER_OK);
    assert_int_equal(ledger_find(l, PEER, r.uetr, &got, &o), LEDGER_OK);
    assert_true(settlement_is_return(&got));
    assert_string_equal(got.original_uetr, s.uetr);
    assert_memory_equal(got.original_hash, r.original_hash, sizeof r.original_hash);
    ledger_close(&l);
}

static void test_receive_over_cap_rejected(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s1 = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    settlement_t s2 = make_settlement(DIRECTION_IN, PEER, "RUB", 400);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s1, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(receive1(l, &s2, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_int_equal(o.position_minor, 700);
    assert_position(l, PEER, "RUB", 700, 0);
    assert_counts(l, 0, 1, 1, 0);
    assert_int_equal(rows_of(l), 2); /* the refusal is journaled too, with its evidence */
    assert_balanced(l);
    ledger_close(&l);
}

static void count_position(const ledger_position_t *p, void *arg)
{
    (void)p;
    (*(int *)arg)++;
}

static void test_receive_caller_reason_rejected(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    /* A currency this node does not know: the caller rejects it AM03. */
    settlement_t s;
    build_settlement(&s, DIRECTION_IN, PEER, "ZZZ", 500);
    assert_int_equal(settlement_check(&s), REASON_CURRENCY);
    assert_string_equal(reason_code(settlement_check(&s)), "AM03");
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, INT64_C(1000000), "AM03", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM03");
    assert_counts(l, 0, 0, 1, 0);
    int accounts = 0;
    assert_int_equal(ledger_positions(l, count_position, &accounts), LEDGER_OK);
    assert_int_equal(accounts, 0); /* a refusal opens no account */
    assert_int_equal(rows_of(l), 1);
    ledger_close(&l);
}

static void test_return_settled_incoming(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 10000, NULL, &o), LEDGER_OK);
    assert_int_equal(return1(l, &s, "AC04", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_RETURNED);
    assert_false(o.repeated);
    assert_string_equal(o.reason, "AC04");
    assert_int_equal(o.position_minor, 0);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_counts(l, 0, 0, 0, 1);
    /* Returning again is idempotent. */
    uint64_t rows = rows_of(l);
    assert_int_equal(return1(l, &s, "AC04", &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_RETURNED);
    assert_int_equal(rows_of(l), rows);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_balanced(l);
    ledger_close(&l);
}

static void test_return_settled_outgoing(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 900);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", -900, 0);
    assert_int_equal(return1(l, &s, "MD06", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_RETURNED);
    assert_string_equal(o.reason, "MD06");
    assert_int_equal(o.position_minor, 0);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_counts(l, 0, 0, 0, 1);
    assert_balanced(l);
    ledger_close(&l);
}

static void test_return_pending_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 900);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(return1(l, &s, "AC04", &o), LEDGER_E_STATE);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 0, -900);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

static void test_return_rejected_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 900);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 900);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &out, false, "AC01", &o), LEDGER_OK);
    assert_int_equal(receive1(l, &in, 0, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(return1(l, &out, "AC04", &o), LEDGER_E_STATE);
    assert_int_equal(return1(l, &in, "AC04", &o), LEDGER_E_STATE);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    ledger_close(&l);
}

static void test_return_unknown_not_found(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 900);
    ledger_outcome_t o;
    assert_int_equal(return1(l, &s, "AC04", &o), LEDGER_E_NOT_FOUND);
    assert_int_equal(rows_of(l), 0);
    ledger_close(&l);
}

static void test_resolve_unknown_not_found(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 900);
    ledger_outcome_t o;
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_E_NOT_FOUND);
    /* Known UETR, other channel: still not found. */
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(
        ledger_resolve(l, PEER_OTHER, s.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
        LEDGER_E_NOT_FOUND);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_int_equal(rows_of(l), 1);
    assert_position(l, PEER, "RUB", 0, -900);
    ledger_close(&l);
}

static void test_resolve_incoming_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 900);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 1000, NULL, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_E_STATE);
    assert_int_equal(resolve1(l, &s, false, "AM04", &o), LEDGER_E_STATE);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 900, 0);
    ledger_close(&l);
}

static void test_resolve_twice_is_repeated(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    settlement_t b = make_settlement(DIRECTION_OUT, PEER, "RUB", 200);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &a, &o), LEDGER_OK);
    assert_int_equal(send1(l, &b, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &a, true, NULL, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &b, false, "AM04", &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(resolve1(l, &a, true, NULL, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.position_minor, -300);
    assert_int_equal(resolve1(l, &b, false, "AM04", &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM04");
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", -300, 0);
    ledger_close(&l);
}

static void test_resolve_opposite_conflicts(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    settlement_t b = make_settlement(DIRECTION_OUT, PEER, "RUB", 200);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &a, &o), LEDGER_OK);
    assert_int_equal(send1(l, &b, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &a, true, NULL, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &b, false, "AM04", &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(resolve1(l, &a, false, "AM04", &o), LEDGER_E_CONFLICT);
    assert_int_equal(resolve1(l, &b, true, NULL, &o), LEDGER_E_CONFLICT);
    assert_int_equal(resolve1(l, &b, false, "AC01", &o), LEDGER_E_CONFLICT); /* other reason */
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", -300, 0);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

static void test_resolve_after_return(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    assert_int_equal(return1(l, &s, "MD06", &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    /* A late duplicate of the ACSC report: the original answer, nothing changes. */
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_RETURNED);
    /* A rejection of a payment that was settled and returned is a conflict. */
    assert_int_equal(resolve1(l, &s, false, "AM04", &o), LEDGER_E_CONFLICT);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 0, 0);
    ledger_close(&l);
}

static void test_refusal_keeps_transaction_usable(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    settlement_t b = make_settlement(DIRECTION_OUT, PEER, "RUB", 200);
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_send(l, &a, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    assert_int_equal(ledger_return(l, PEER, a.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_STATE);
    assert_int_equal(ledger_resolve(l, PEER, b.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_NOT_FOUND);
    settlement_t a2 = a;
    a2.amount_minor++;
    assert_int_equal(ledger_send(l, &a2, evidence, EVIDENCE_LEN, 0, &o), LEDGER_E_CONFLICT);
    assert_true(ledger_in_transaction(l));
    assert_int_equal(ledger_send(l, &b, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_false(ledger_stopped(l));
    assert_counts(l, 2, 0, 0, 0);
    assert_position(l, PEER, "RUB", 0, -500);
    assert_chain_verifies(l);
    ledger_close(&l);
}

static void test_positions_per_peer_and_currency(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t a = make_settlement(DIRECTION_OUT, PEER, "RUB", 100);
    settlement_t b = make_settlement(DIRECTION_IN, PEER, "IRR", 20);
    settlement_t c = make_settlement(DIRECTION_IN, PEER_OTHER, "RUB", 3);
    assert_int_equal(send1(l, &a, &o), LEDGER_OK);
    assert_int_equal(receive1(l, &b, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(receive1(l, &c, 1000, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", 0, -100);
    assert_position(l, PEER, "IRR", 20, 0);
    assert_position(l, PEER_OTHER, "RUB", 3, 0);
    assert_position(l, PEER_OTHER, "IRR", 0, 0); /* no account: zeros */
    int accounts = 0;
    assert_int_equal(ledger_positions(l, count_position, &accounts), LEDGER_OK);
    assert_int_equal(accounts, 3);
    assert_balanced(l);
    ledger_close(&l);
}

/* ---- 3. the net debit cap ------------------------------------------------------------------- */

static void test_cap_exact_accepted_then_one_more_rejected(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    settlement_t b = make_settlement(DIRECTION_IN, PEER, "RUB", 1);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &a, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.position_minor, 1000);
    assert_int_equal(receive1(l, &b, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_position(l, PEER, "RUB", 1000, 0);
    ledger_close(&l);
}

static void test_cap_one_over_rejected_on_empty_channel(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", 1001);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &a, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_position(l, PEER, "RUB", 0, 0);
    ledger_close(&l);
}

static void test_cap_zero_rejects_any(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", 1);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &a, 0, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_position(l, PEER, "RUB", 0, 0);
    assert_counts(l, 0, 0, 1, 0);
    ledger_close(&l);
}

static void test_cap_counts_what_we_owe(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 500);
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &out, true, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", -500, 0);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 1500);
    assert_int_equal(receive1(l, &in, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.position_minor, 1000);
    assert_position(l, PEER, "RUB", 1000, 0);
    settlement_t more = make_settlement(DIRECTION_IN, PEER, "RUB", 1);
    assert_int_equal(receive1(l, &more, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    ledger_close(&l);
}

static void test_cap_ignores_pending_outgoing(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 500);
    assert_int_equal(send1(l, &out, &o), LEDGER_OK); /* pending: not yet owed */
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 1001);
    assert_int_equal(receive1(l, &in, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    settlement_t in2 = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    assert_int_equal(receive1(l, &in2, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_position(l, PEER, "RUB", 1000, -500);
    ledger_close(&l);
}

static void test_cap_is_per_peer_and_currency(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    assert_int_equal(receive1(l, &a, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    settlement_t b = make_settlement(DIRECTION_IN, PEER, "IRR", 1000);
    assert_int_equal(receive1(l, &b, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    settlement_t c = make_settlement(DIRECTION_IN, PEER_OTHER, "RUB", 1000);
    assert_int_equal(receive1(l, &c, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    ledger_close(&l);
}

static void test_cap_freed_by_return(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    assert_int_equal(receive1(l, &a, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(return1(l, &a, "AC04", &o), LEDGER_OK);
    settlement_t b = make_settlement(DIRECTION_IN, PEER, "RUB", 1000);
    assert_int_equal(receive1(l, &b, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_position(l, PEER, "RUB", 1000, 0);
    ledger_close(&l);
}

static void test_cap_largest_amount(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t a = make_settlement(DIRECTION_IN, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(receive1(l, &a, CORRIDOR_AMOUNT_MINOR_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    settlement_t b = make_settlement(DIRECTION_IN, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(receive1(l, &b, CORRIDOR_AMOUNT_MINOR_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_position(l, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX, 0);
    ledger_close(&l);
}

/* With a cap of INT64_MAX, net climbs to 92 * 10^17; the 93rd would overflow int64 and must be
 * refused (AM02), not wrap. */
static void test_cap_net_overflow_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < 92; i++) {
        settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
        assert_int_equal(ledger_receive(l, &s, INT64_MAX, NULL, evidence, EVIDENCE_LEN, 0, &o),
                         LEDGER_OK);
        assert_int_equal(o.status, STATUS_SETTLED);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(receive1(l, &s, INT64_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_position(l, PEER, "RUB", 92 * CORRIDOR_AMOUNT_MINOR_MAX, 0);
    assert_balanced(l);
    ledger_close(&l);
}

/* ---- 4. idempotency (I3) -------------------------------------------------------------------- */

static void test_send_twice_is_repeated(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_false(o.repeated);
    snapshot_t before = snapshot_of(l);
    settlement_t again = s;
    again.created_unix_ms += 5000; /* a re-send later: times are not content */
    memset(&o, 0, sizeof o);
    assert_int_equal(send1(l, &again, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_PENDING);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_int_equal(after.rows, 1);
    assert_position(l, PEER, "RUB", 0, -250);
    ledger_close(&l);
}

static void test_send_twice_after_settle_returns_settled(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.position_minor, -250);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    ledger_close(&l);
}

static void test_send_conflict_changes_nothing(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    settlement_t other = s;
    other.amount_minor = 251;
    assert_int_equal(send1(l, &other, &o), LEDGER_E_CONFLICT);
    other = s;
    snprintf(other.currency, sizeof other.currency, "IRR");
    assert_int_equal(send1(l, &other, &o), LEDGER_E_CONFLICT);
    other = s;
    snprintf(other.remittance, sizeof other.remittance, "invoice 18");
    assert_int_equal(send1(l, &other, &o), LEDGER_E_CONFLICT);
    other = s;
    snprintf(other.creditor_account, sizeof other.creditor_account, "IR000000000000000000000001");
    assert_int_equal(send1(l, &other, &o), LEDGER_E_CONFLICT);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 0, -250);
    assert_position(l, PEER, "IRR", 0, 0);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, s.uetr, &got, NULL), LEDGER_OK);
    assert_int_equal(got.amount_minor, 250);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

static void test_receive_twice_is_repeated(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    snapshot_t before = snapshot_of(l);
    /* Even with a cap that would now refuse it, the original answer stands. */
    assert_int_equal(receive1(l, &s, 0, NULL, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.position_minor, 250);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 250, 0);
    ledger_close(&l);
}

static void test_receive_rejected_twice_keeps_reason(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 2000);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    snapshot_t before = snapshot_of(l);
    /* A duplicate after the cap was raised: still the original rejection. */
    memset(&o, 0, sizeof o);
    assert_int_equal(receive1(l, &s, 1000000, NULL, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 0, 0);
    ledger_close(&l);
}

static void test_receive_conflict_changes_nothing(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 1000, NULL, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    settlement_t other = s;
    other.amount_minor = 249;
    assert_int_equal(receive1(l, &other, 1000, NULL, &o), LEDGER_E_CONFLICT);
    assert_int_equal(receive1(l, &other, 1000, "AM03", &o), LEDGER_E_CONFLICT);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 250, 0);
    ledger_close(&l);
}

static void test_same_uetr_both_directions_conflicts(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    settlement_t in = s;
    in.direction = DIRECTION_IN;
    assert_int_equal(receive1(l, &in, 1000, NULL, &o), LEDGER_E_CONFLICT);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 0, -250);
    ledger_close(&l);
}

static void test_same_uetr_other_peer_is_fine(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 250);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    settlement_t other = s;
    snprintf(other.peer, sizeof other.peer, "%s", PEER_OTHER);
    assert_int_equal(send1(l, &other, &o), LEDGER_OK);
    assert_false(o.repeated);
    settlement_t in = s;
    snprintf(in.peer, sizeof in.peer, "%s", "BKAZKZKA");
    in.direction = DIRECTION_IN;
    assert_int_equal(receive1(l, &in, 1000, NULL, &o), LEDGER_OK);
    assert_false(o.repeated);
    assert_counts(l, 2, 1, 0, 0);
    assert_position(l, PEER, "RUB", 0, -250);
    assert_position(l, PEER_OTHER, "RUB", 0, -250);
    assert_position(l, "BKAZKZKA", "RUB", 250, 0);
    /* Resolving on one channel leaves the other alone. */
    assert_int_equal(resolve1(l, &s, true, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", -250, 0);
    assert_position(l, PEER_OTHER, "RUB", 0, -250);
    assert_balanced(l);
    ledger_close(&l);
}

/* ---- 5. hash chain (I5) --------------------------------------------------------------------- */

static void test_head_changes_with_every_row(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    uint8_t heads[6][LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(l, heads[0], &rows), LEDGER_OK);
    assert_int_equal(rows, 0);
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 10);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 10);
    settlement_t refused = make_settlement(DIRECTION_IN, PEER, "RUB", 10);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_int_equal(ledger_head(l, heads[1], &rows), LEDGER_OK);
    assert_int_equal(rows, 1);
    assert_int_equal(resolve1(l, &out, true, NULL, &o), LEDGER_OK);
    assert_int_equal(ledger_head(l, heads[2], &rows), LEDGER_OK);
    assert_int_equal(rows, 2);
    assert_int_equal(receive1(l, &in, 100, NULL, &o), LEDGER_OK);
    assert_int_equal(ledger_head(l, heads[3], &rows), LEDGER_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(receive1(l, &refused, 0, NULL, &o), LEDGER_OK);
    assert_int_equal(ledger_head(l, heads[4], &rows), LEDGER_OK);
    assert_int_equal(rows, 4);
    assert_int_equal(return1(l, &in, "AC04", &o), LEDGER_OK);
    assert_int_equal(ledger_head(l, heads[5], &rows), LEDGER_OK);
    assert_int_equal(rows, 5);
    for (int i = 0; i < 6; i++) {
        for (int j = i + 1; j < 6; j++) {
            assert_memory_not_equal(heads[i], heads[j], LEDGER_HASH_BYTES);
        }
    }
    assert_int_equal(sql_int(l, "SELECT count(*) FROM journal"), 5);
    assert_chain_verifies(l);
    ledger_close(&l);
}

static void test_head_survives_reopen(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    for (int i = 0; i < 5; i++) {
        settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 10 + i);
        assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    }
    snapshot_t before = snapshot_of(l);
    ledger_close(&l);
    l = open_ledger(f->path);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    /* And the next row chains onto it. */
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 99);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(rows_of(l), 6);
    assert_chain_verifies(l);
    ledger_close(&l);
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_chain_verifies(l);
    ledger_close(&l);
}

static void test_row_hash_deterministic_and_sensitive(void **state)
{
    (void)state;
    uint8_t prev[LEDGER_HASH_BYTES];
    uint8_t content[SETTLEMENT_HASH_BYTES];
    uint8_t ev[] = {1, 2, 3, 4, 5};
    memset(prev, 0xab, sizeof prev);
    memset(content, 0xcd, sizeof content);
    const ledger_row_t base = {
        .seq = 7,
        .kind = ENTRY_OUT_POSTED,
        .peer = PEER,
        .uetr = "123e4567-e89b-42d3-a456-426614174000",
        .currency = "RUB",
        .amount_minor = 1500,
        .reason = "",
        .content_hash = content,
        .evidence = ev,
        .evidence_len = sizeof ev,
        .created_unix_ms = CREATED_MS,
    };
    uint8_t h1[LEDGER_HASH_BYTES], h2[LEDGER_HASH_BYTES];
    ledger_row_hash(prev, &base, h1);
    ledger_row_hash(prev, &base, h2);
    assert_memory_equal(h1, h2, sizeof h1);

    /* Every field, and the previous head, is covered. */
    uint8_t other_prev[LEDGER_HASH_BYTES];
    memcpy(other_prev, prev, sizeof prev);
    other_prev[31] ^= 1;
    ledger_row_hash(other_prev, &base, h2);
    assert_memory_not_equal(h1, h2, sizeof h1);

    uint8_t other_content[SETTLEMENT_HASH_BYTES];
    memcpy(other_content, content, sizeof content);
    other_content[0] ^= 1;
    uint8_t other_ev[] = {1, 2, 3, 4, 6};
    ledger_row_t variants[11];
    for (size_t i = 0; i < 11; i++) {
        variants[i] = base;
    }
    variants[0].seq = 8;
    variants[1].kind = ENTRY_OUT_VOIDED;
    variants[2].peer = PEER_OTHER;
    variants[3].uetr = "123e4567-e89b-42d3-a456-426614174001";
    variants[4].currency = "IRR";
    variants[5].amount_minor = 1501;
    variants[6].reason = "AM04";
    variants[7].content_hash = other_content;
    variants[8].evidence = other_ev;
    variants[9].evidence_len = sizeof ev - 1;
    variants[10].created_unix_ms = CREATED_MS + 1;
    for (size_t i = 0; i < 11; i++) {
        ledger_row_hash(prev, &variants[i], h2);
        if (memcmp(h1, h2, sizeof h1) == 0) {
            fail_msg("row hash ignores variant %zu", i);
        }
    }
    /* Field boundaries are unambiguous: moving a byte from one text to the next changes it. */
    ledger_row_t shifted = base;
    shifted.peer = "BMJIIRT";
    shifted.uetr = "H123e4567-e89b-42d3-a456-426614174000";
    ledger_row_hash(prev, &shifted, h2);
    assert_memory_not_equal(h1, h2, sizeof h1);
}

static void test_journal_rows_carry_evidence(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 10);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    static const uint8_t report[] = {0x00, 0xff, 0x10, 0x00, 0x42}; /* binary, with NULs */
    assert_int_equal(ledger_resolve(l, PEER, s.uetr, true, NULL, report, sizeof report, 0, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(l),
                                        "SELECT kind, evidence FROM journal ORDER BY seq", -1,
                                        &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), ENTRY_OUT_PENDING);
    assert_int_equal(sqlite3_column_bytes(stmt, 1), EVIDENCE_LEN);
    assert_memory_equal(sqlite3_column_blob(stmt, 1), evidence, EVIDENCE_LEN);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), ENTRY_OUT_POSTED);
    assert_int_equal(sqlite3_column_bytes(stmt, 1), sizeof report);
    assert_memory_equal(sqlite3_column_blob(stmt, 1), report, sizeof report);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* ---- 6. outbox and channel counters --------------------------------------------------------- */

typedef struct {
    uint64_t seq[16];
    int type[16];
    uint8_t msg[16][64];
    size_t len[16];
    size_t n;
    size_t stop_after; /* return false after this many (0: never) */
} scan_t;

static bool collect(uint64_t seq, int type, const uint8_t *signed_msg, size_t signed_len, void *arg)
{
    scan_t *sc = arg;
    assert_true(sc->n < 16 && signed_len <= 64);
    sc->seq[sc->n] = seq;
    sc->type[sc->n] = type;
    memcpy(sc->msg[sc->n], signed_msg, signed_len);
    sc->len[sc->n] = signed_len;
    sc->n++;
    return sc->stop_after == 0 || sc->n < sc->stop_after;
}

/* The bytes queued under seq i: distinct per i, with a NUL inside. */
static size_t outbox_msg(uint64_t i, uint8_t out[64])
{
    size_t len = 10 + (size_t)i * 3;
    for (size_t k = 0; k < len; k++) {
        out[k] = (uint8_t)(i * 31 + k * 7);
    }
    out[1] = 0;
    return len;
}

static void put_outbox(ledger_t *l, const char *peer, uint64_t from, uint64_t to)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (uint64_t i = from; i <= to; i++) {
        uint8_t msg[64];
        size_t len = outbox_msg(i, msg);
        assert_int_equal(ledger_outbox_put(l, peer, i, (int)(100 + i), msg, len), LEDGER_OK);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

static void test_outbox_next_seq_starts_at_one(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    uint64_t seq = 0;
    assert_int_equal(ledger_outbox_next_seq(l, PEER, &seq), LEDGER_OK);
    assert_int_equal(seq, 1);
    ledger_channel_t ch;
    memset(&ch, 0xff, sizeof ch);
    assert_int_equal(ledger_channel_get(l, PEER, &ch), LEDGER_OK);
    assert_int_equal(ch.sent_seq, 0);
    assert_int_equal(ch.acked_seq, 0);
    assert_int_equal(ch.applied_seq, 0);
    ledger_close(&l);
}

static void test_outbox_put_wrong_seq_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    uint8_t msg[64];
    size_t len = outbox_msg(1, msg);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_outbox_put(l, PEER, 2, 1, msg, len), LEDGER_E_STATE);
    assert_int_equal(ledger_outbox_put(l, PEER, 1, 1, msg, len), LEDGER_OK);
    assert_int_equal(ledger_outbox_put(l, PEER, 1, 1, msg, len), LEDGER_E_STATE); /* reuse */
    assert_int_equal(ledger_outbox_put(l, PEER, 3, 1, msg, len), LEDGER_E_STATE); /* gap */
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    uint64_t seq = 0;
    assert_int_equal(ledger_outbox_next_seq(l, PEER, &seq), LEDGER_OK);
    assert_int_equal(seq, 2);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

static void test_outbox_scan_from(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    put_outbox(l, PEER, 1, 5);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER, 3, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 3);
    for (size_t k = 0; k < 3; k++) {
        uint64_t i = 3 + k;
        uint8_t want[64];
        size_t len = outbox_msg(i, want);
        assert_int_equal(sc.seq[k], i);
        assert_int_equal(sc.type[k], 100 + (int)i);
        assert_int_equal(sc.len[k], len);
        assert_memory_equal(sc.msg[k], want, len);
    }
    /* Past the end: nothing. */
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER, 6, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 0);
    ledger_close(&l);
}

static void test_outbox_scan_limit(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    put_outbox(l, PEER, 1, 5);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER, 1, 2, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 2);
    assert_int_equal(sc.seq[0], 1);
    assert_int_equal(sc.seq[1], 2);
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER, 4, 1, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 1);
    assert_int_equal(sc.seq[0], 4);
    ledger_close(&l);
}

static void test_outbox_scan_stops_when_told(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    put_outbox(l, PEER, 1, 5);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    sc.stop_after = 2;
    assert_int_equal(ledger_outbox_scan(l, PEER, 1, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 2);
    /* The statement was reset: a second scan starts afresh. */
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER, 1, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 5);
    ledger_close(&l);
}

static void test_outbox_per_peer(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    put_outbox(l, PEER, 1, 5);
    put_outbox(l, PEER_OTHER, 1, 2);
    uint64_t seq = 0;
    assert_int_equal(ledger_outbox_next_seq(l, PEER, &seq), LEDGER_OK);
    assert_int_equal(seq, 6);
    assert_int_equal(ledger_outbox_next_seq(l, PEER_OTHER, &seq), LEDGER_OK);
    assert_int_equal(seq, 3);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER_OTHER, 1, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 2);
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, "BKAZKZKA", 1, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 0);
    ledger_close(&l);
}

static void test_channel_counters_persist(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    put_outbox(l, PEER, 1, 5);
    ledger_channel_t ch;
    assert_int_equal(ledger_channel_get(l, PEER, &ch), LEDGER_OK);
    assert_int_equal(ch.sent_seq, 5);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_channel_set_acked(l, PEER, 3), LEDGER_OK);
    assert_int_equal(ledger_channel_set_applied(l, PEER, 7, NULL, 0), LEDGER_OK);
    assert_int_equal(ledger_channel_set_applied(l, PEER_OTHER, 2, NULL, 0), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    ledger_close(&l);

    l = open_ledger(f->path);
    assert_int_equal(ledger_channel_get(l, PEER, &ch), LEDGER_OK);
    assert_int_equal(ch.sent_seq, 5);
    assert_int_equal(ch.acked_seq, 3);
    assert_int_equal(ch.applied_seq, 7);
    assert_int_equal(ledger_channel_get(l, PEER_OTHER, &ch), LEDGER_OK);
    assert_int_equal(ch.sent_seq, 0);
    assert_int_equal(ch.acked_seq, 0);
    assert_int_equal(ch.applied_seq, 2);
    uint64_t seq = 0;
    assert_int_equal(ledger_outbox_next_seq(l, PEER_OTHER, &seq), LEDGER_OK);
    assert_int_equal(seq, 1);
    ledger_close(&l);
}

static void test_outbox_rollback_forgets_put(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    put_outbox(l, PEER, 1, 2);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    uint8_t msg[64];
    size_t len = outbox_msg(3, msg);
    assert_int_equal(ledger_outbox_put(l, PEER, 3, 1, msg, len), LEDGER_OK);
    assert_int_equal(ledger_channel_set_acked(l, PEER, 2), LEDGER_OK);
    ledger_rollback(l);
    assert_false(ledger_in_transaction(l));
    ledger_channel_t ch;
    assert_int_equal(ledger_channel_get(l, PEER, &ch), LEDGER_OK);
    assert_int_equal(ch.sent_seq, 2);
    assert_int_equal(ch.acked_seq, 0);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    assert_int_equal(ledger_outbox_scan(l, PEER, 1, 100, collect, &sc), LEDGER_OK);
    assert_int_equal(sc.n, 2);
    ledger_close(&l);
}

/* ---- 7. group commit ------------------------------------------------------------------------ */

static void test_group_commit_1000(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    int64_t total = 0;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < 1000; i++) {
        settlement_t s = make_settlement(DIRECTION_OUT, i % 2 ? PEER : PEER_OTHER, "RUB", 1 + i);
        total += 1 + i;
        assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_counts(l, 1000, 0, 0, 0);
    assert_int_equal(rows_of(l), 1000);
    int64_t net = 0, pa = 0, pb = 0;
    assert_int_equal(ledger_position(l, PEER, "RUB", &net, &pa), LEDGER_OK);
    assert_int_equal(ledger_position(l, PEER_OTHER, "RUB", &net, &pb), LEDGER_OK);
    assert_int_equal(pa + pb, -total);
    snapshot_t before = snapshot_of(l);
    ledger_close(&l);
    l = open_ledger(f->path);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_chain_verifies(l);
    assert_balanced(l);
    ledger_close(&l);
}

static void test_rollback_leaves_nothing(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t kept = make_settlement(DIRECTION_OUT, PEER, "RUB", 77);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 70);
    assert_int_equal(send1(l, &kept, &o), LEDGER_OK);
    assert_int_equal(receive1(l, &in, 1000, NULL, &o), LEDGER_OK);
    snapshot_t before = snapshot_of(l);

    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < 50; i++) {
        settlement_t s = make_settlement(DIRECTION_OUT, PEER, "IRR", 1 + i);
        assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    }
    assert_int_equal(ledger_resolve(l, PEER, kept.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_return(l, PEER, in.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_OK);
    assert_int_equal(rows_of(l), before.rows + 52);
    ledger_rollback(l);

    assert_false(ledger_in_transaction(l));
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    assert_position(l, PEER, "RUB", 70, -77);
    assert_position(l, PEER, "IRR", 0, 0);
    assert_int_equal(ledger_find(l, PEER, kept.uetr, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM journal"), 2);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM accounts WHERE currency = 'IRR'"), 0);
    ledger_close(&l);
}

static void test_rollback_then_write_chains(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t a = make_settlement(DIRECTION_OUT, PEER, "RUB", 1);
    assert_int_equal(send1(l, &a, &o), LEDGER_OK);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < 10; i++) {
        settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 2);
        assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    }
    ledger_rollback(l);
    /* The next row must chain on the committed head, not on the rolled-back one. */
    settlement_t b = make_settlement(DIRECTION_OUT, PEER, "RUB", 3);
    assert_int_equal(send1(l, &b, &o), LEDGER_OK);
    snapshot_t live = snapshot_of(l);
    assert_int_equal(live.rows, 2);
    assert_chain_verifies(l);
    ledger_close(&l);
    l = open_ledger(f->path);
    snapshot_t reopened = snapshot_of(l);
    assert_same_snapshot(&live, &reopened);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* ---- 8. model-based property test ----------------------------------------------------------- */

#define PROP_PEERS       2
#define PROP_CCYS        2
#define PROP_OPS         5000
#define PROP_SEED        UINT64_C(0x5eed20240c0ffee1)
#define PROP_AMOUNT_MAX  200000
#define PROP_CAP_MAX     400000
#define PROP_BATCH_MAX   20
#define PROP_ROLLBACK_PC 5

static const char *const prop_peers[PROP_PEERS] = {PEER, PEER_OTHER};
static const char *const prop_ccys[PROP_CCYS] = {"RUB", "IRR"};

/* One settlement as the model sees it. */
typedef struct {
    settlement_t s;                           /* the full content, to re-send it */
    int peer, ccy;                            /* indices into prop_peers/prop_ccys */
    status_t status;                          /* what the ledger must say */
    char reason[CORRIDOR_REASON_LEN_MAX + 1]; /* "" unless rejected/returned */
} model_item_t;

/* A status change to undo when the transaction is rolled back. */
typedef struct {
    size_t item;
    status_t status;
    char reason[CORRIDOR_REASON_LEN_MAX + 1];
} model_undo_t;

typedef struct {
    int64_t net[PROP_PEERS][PROP_CCYS];
    int64_t pending[PROP_PEERS][PROP_CCYS];
    bool account[PROP_PEERS][PROP_CCYS]; /* opened by a non-refused settlement */
    uint64_t rows;                       /* journal rows */
    size_t n;                            /* settlements */
} model_books_t;

typedef struct {
    ledger_t *l;
    rng_t rng;
    uint64_t seed;
    int op;           /* operation number, for failure messages */
    const char *what; /* the operation's name */
    model_item_t *items;
    size_t items_cap;
    size_t *picks; /* scratch for choosing among items */
    model_books_t books;
    model_books_t at_begin; /* the books when the transaction began */
    model_undo_t *undo;
    size_t undo_n, undo_cap;
    uint64_t stats[16];
} model_t;

#define PROP_EQ(m, actual, expected)                                                               \
    prop_eq((m), (long long)(actual), (long long)(expected), #actual, __LINE__)

static void prop_eq(const model_t *m, long long actual, long long expected, const char *what,
                    int line)
{
    if (actual != expected) {
        fail_msg("model test (seed %llu, set CORRIDOR_TEST_SEED to replay), op %d (%s), line "
                 "%d: %s is %lld, the model says %lld",
                 (unsigned long long)m->seed, m->op, m->what, line, what, actual, expected);
    }
}

static void prop_str(const model_t *m, const char *actual, const char *expected, int line)
{
    if (strcmp(actual, expected) != 0) {
        fail_msg("model test (seed %llu), op %d (%s), line %d: '%s', the model says '%s'",
                 (unsigned long long)m->seed, m->op, m->what, line, actual, expected);
    }
}

static void model_set_status(model_t *m, size_t i, status_t status, const char *reason)
{
    assert_true(m->undo_n < m->undo_cap);
    model_undo_t *u = &m->undo[m->undo_n++];
    u->item = i;
    u->status = m->items[i].status;
    snprintf(u->reason, sizeof u->reason, "%s", m->items[i].reason);
    m->items[i].status = status;
    snprintf(m->items[i].reason, sizeof m->items[i].reason, "%s", reason != NULL ? reason : "");
}

static void model_begin(model_t *m)
{
    assert_int_equal(ledger_begin(m->l), LEDGER_OK);
    m->at_begin = m->books;
    m->undo_n = 0;
}

static void model_rollback(model_t *m)
{
    ledger_rollback(m->l);
    while (m->undo_n > 0) {
        const model_undo_t *u = &m->undo[--m->undo_n];
        m->items[u->item].status = u->status;
        snprintf(m->items[u->item].reason, sizeof m->items[u->item].reason, "%s", u->reason);
    }
    m->books = m->at_begin;
}

static void model_check_outcome(const model_t *m, const model_item_t *it, const ledger_outcome_t *o,
                                bool repeated)
{
    PROP_EQ(m, o->status, it->status);
    prop_str(m, o->reason, it->reason, __LINE__);
    PROP_EQ(m, o->repeated, repeated);
    PROP_EQ(m, o->position_minor, m->books.net[it->peer][it->ccy]);
}

static model_item_t *model_new_item(model_t *m, direction_t dir, int64_t amount)
{
    assert_true(m->books.n < m->items_cap);
    model_item_t *it = &m->items[m->books.n];
    memset(it, 0, sizeof *it);
    it->peer = (int)rng_below(&m->rng, PROP_PEERS);
    it->ccy = (int)rng_below(&m->rng, PROP_CCYS);
    build_settlement(&it->s, dir, prop_peers[it->peer], prop_ccys[it->ccy], amount);
    uetr_from_rng(&m->rng, it->s.uetr);
    snprintf(it->s.remittance, sizeof it->s.remittance, "model %d", m->op);
    assert_int_equal(settlement_check(&it->s), REASON_NONE);
    return it;
}

/* Picks an item matching `want` (NULL: any); SIZE_MAX if none. */
static size_t model_pick(model_t *m, bool (*want)(const model_item_t *it))
{
    size_t n = 0;
    for (size_t i = 0; i < m->books.n; i++) {
        if (want == NULL || want(&m->items[i])) {
            m->picks[n++] = i;
        }
    }
    return n == 0 ? SIZE_MAX : m->picks[rng_below(&m->rng, n)];
}

static bool is_out(const model_item_t *it)
{
    return it->s.direction == DIRECTION_OUT;
}

static bool is_out_pending(const model_item_t *it)
{
    return is_out(it) && it->status == STATUS_PENDING;
}

static bool is_in(const model_item_t *it)
{
    return it->s.direction == DIRECTION_IN;
}

static void op_send_new(model_t *m)
{
    m->what = "send new";
    model_item_t *it =
        model_new_item(m, DIRECTION_OUT, 1 + (int64_t)rng_below(&m->rng, PROP_AMOUNT_MAX));
    ledger_outcome_t o;
    PROP_EQ(m, ledger_send(m->l, &it->s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    it->status = STATUS_PENDING;
    m->books.pending[it->peer][it->ccy] -= it->s.amount_minor;
    m->books.account[it->peer][it->ccy] = true;
    m->books.rows++;
    m->books.n++;
    model_check_outcome(m, it, &o, false);
}

static void op_receive_new(model_t *m)
{
    m->what = "receive new";
    int64_t cap = (int64_t)rng_below(&m->rng, PROP_CAP_MAX);
    model_item_t *it = model_new_item(m, DIRECTION_IN, 1);
    int64_t net = m->books.net[it->peer][it->ccy];
    int64_t headroom = cap - net;
    int64_t amount;
    switch (rng_below(&m->rng, 4)) {
    case 0:
        amount = headroom; /* exactly at the cap */
        break;
    case 1:
        amount = headroom + 1; /* one minor unit over */
        break;
    case 2:
        amount = headroom - 1;
        break;
    default:
        amount = 1 + (int64_t)rng_below(&m->rng, PROP_AMOUNT_MAX);
        break;
    }
    if (amount < 1) {
        amount = 1 + (int64_t)rng_below(&m->rng, 1000);
    }
    it->s.amount_minor = amount;
    ledger_outcome_t o;
    PROP_EQ(m, ledger_receive(m->l, &it->s, cap, NULL, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    bool accepted = net + amount <= cap;
    m->stats[accepted ? 0 : 1]++;
    m->stats[2] += amount == headroom;
    m->stats[3] += amount == headroom + 1;
    it->status = accepted ? STATUS_SETTLED : STATUS_REJECTED;
    snprintf(it->reason, sizeof it->reason, "%s", accepted ? "" : "AM02");
    if (accepted) {
        m->books.net[it->peer][it->ccy] += amount;
        m->books.account[it->peer][it->ccy] = true;
    }
    m->books.rows++;
    m->books.n++;
    model_check_outcome(m, it, &o, false);
}

static void op_receive_refused_by_caller(model_t *m)
{
    m->what = "receive refused by caller";
    static const char *const reasons[] = {"AM03", "FF01", "AC01"};
    const char *reason = reasons[rng_below(&m->rng, 3)];
    model_item_t *it = model_new_item(m, DIRECTION_IN, 1 + (int64_t)rng_below(&m->rng, 1000));
    ledger_outcome_t o;
    PROP_EQ(m, ledger_receive(m->l, &it->s, PROP_CAP_MAX, reason, evidence, EVIDENCE_LEN, 0, &o),
            LEDGER_OK);
    it->status = STATUS_REJECTED;
    snprintf(it->reason, sizeof it->reason, "%s", reason);
    m->books.rows++;
    m->books.n++;
    model_check_outcome(m, it, &o, false);
}

/* Resolves an outgoing settlement, usually a pending one, sometimes any (repeats, conflicts). */
static void op_resolve(model_t *m)
{
    m->what = "resolve";
    bool pending_only = rng_below(&m->rng, 100) < 80;
    size_t i = model_pick(m, pending_only ? is_out_pending : is_out);
    if (i == SIZE_MAX) {
        return;
    }
    model_item_t *it = &m->items[i];
    bool settled = rng_below(&m->rng, 100) < 60;
    static const char *const reasons[] = {"AM04", "AC01", "AM02"};
    const char *reason = settled ? NULL : reasons[rng_below(&m->rng, 3)];
    ledger_outcome_t o;
    ledger_err_t rc = ledger_resolve(m->l, it->s.peer, it->s.uetr, settled, reason, evidence,
                                     EVIDENCE_LEN, 0, &o);
    int64_t amount = it->s.amount_minor;
    switch (it->status) {
    case STATUS_PENDING:
        PROP_EQ(m, rc, LEDGER_OK);
        m->books.pending[it->peer][it->ccy] += amount;
        if (settled) {
            m->books.net[it->peer][it->ccy] -= amount;
        }
        model_set_status(m, i, settled ? STATUS_SETTLED : STATUS_REJECTED, reason);
        m->books.rows++;
        model_check_outcome(m, it, &o, false);
        m->stats[4]++;
        return;
    case STATUS_SETTLED:
    case STATUS_RETURNED:
        PROP_EQ(m, rc, settled ? LEDGER_OK : LEDGER_E_CONFLICT);
        break;
    case STATUS_REJECTED:
        PROP_EQ(m, rc, !settled && strcmp(reason, it->reason) == 0 ? LEDGER_OK : LEDGER_E_CONFLICT);
        break;
    case STATUS_HELD: /* the model holds nothing */
        fail_msg("held in the model");
        break;
    }
    if (rc == LEDGER_OK) {
        model_check_outcome(m, it, &o, true);
        m->stats[5]++;
    } else {
        m->stats[6]++;
    }
}

static void op_return(model_t *m)
{
    m->what = "return";
    size_t i = model_pick(m, NULL);
    if (i == SIZE_MAX) {
        return;
    }
    model_item_t *it = &m->items[i];
    ledger_outcome_t o;
    ledger_err_t rc =
        ledger_return(m->l, it->s.peer, it->s.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o);
    switch (it->status) {
    case STATUS_SETTLED:
        PROP_EQ(m, rc, LEDGER_OK);
        m->books.net[it->peer][it->ccy] +=
            it->s.direction == DIRECTION_OUT ? it->s.amount_minor : -it->s.amount_minor;
        model_set_status(m, i, STATUS_RETURNED, "AC04");
        m->books.rows++;
        model_check_outcome(m, it, &o, false);
        m->stats[7]++;
        break;
    case STATUS_RETURNED:
        PROP_EQ(m, rc, LEDGER_OK);
        model_check_outcome(m, it, &o, true);
        break;
    default:
        PROP_EQ(m, rc, LEDGER_E_STATE);
        m->stats[8]++;
        break;
    }
}

static void op_duplicate(model_t *m)
{
    m->what = "duplicate";
    size_t i = model_pick(m, NULL);
    if (i == SIZE_MAX) {
        return;
    }
    model_item_t *it = &m->items[i];
    settlement_t again = it->s;
    again.created_unix_ms += (int64_t)rng_below(&m->rng, 100000); /* not content */
    ledger_outcome_t o;
    ledger_err_t rc;
    if (again.direction == DIRECTION_OUT) {
        rc = ledger_send(m->l, &again, evidence, EVIDENCE_LEN, 0, &o);
    } else {
        rc = ledger_receive(m->l, &again, (int64_t)rng_below(&m->rng, PROP_CAP_MAX), NULL, evidence,
                            EVIDENCE_LEN, 0, &o);
    }
    PROP_EQ(m, rc, LEDGER_OK);
    model_check_outcome(m, it, &o, true);
    m->stats[9]++;
}

static void op_conflict(model_t *m)
{
    m->what = "conflict";
    size_t i = model_pick(m, NULL);
    if (i == SIZE_MAX) {
        return;
    }
    settlement_t other = m->items[i].s;
    switch (rng_below(&m->rng, 4)) {
    case 0:
        other.amount_minor += 1;
        break;
    case 1:
        other.amount_minor = other.amount_minor > 1 ? other.amount_minor - 1 : 2;
        break;
    case 2:
        snprintf(other.currency, sizeof other.currency, "%s",
                 strcmp(other.currency, "RUB") == 0 ? "IRR" : "RUB");
        break;
    default:
        other.direction = other.direction == DIRECTION_OUT ? DIRECTION_IN : DIRECTION_OUT;
        break;
    }
    ledger_outcome_t o;
    ledger_err_t rc;
    if (other.direction == DIRECTION_OUT) {
        rc = ledger_send(m->l, &other, evidence, EVIDENCE_LEN, 0, &o);
    } else {
        rc = ledger_receive(m->l, &other, PROP_CAP_MAX, NULL, evidence, EVIDENCE_LEN, 0, &o);
    }
    PROP_EQ(m, rc, LEDGER_E_CONFLICT);
    m->stats[10]++;
}

static void op_resolve_incoming(model_t *m)
{
    m->what = "resolve incoming";
    size_t i = model_pick(m, is_in);
    if (i == SIZE_MAX) {
        return;
    }
    const model_item_t *it = &m->items[i];
    ledger_outcome_t o;
    PROP_EQ(m,
            ledger_resolve(m->l, it->s.peer, it->s.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
            LEDGER_E_STATE);
}

static void op_unknown(model_t *m)
{
    m->what = "unknown uetr";
    char uetr[CORRIDOR_UETR_LEN + 1];
    uetr_from_rng(&m->rng, uetr);
    const char *peer = prop_peers[rng_below(&m->rng, PROP_PEERS)];
    ledger_outcome_t o;
    PROP_EQ(m, ledger_resolve(m->l, peer, uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
            LEDGER_E_NOT_FOUND);
    PROP_EQ(m, ledger_return(m->l, peer, uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
            LEDGER_E_NOT_FOUND);
}

static void model_count_account(const ledger_position_t *p, void *arg)
{
    model_t *m = arg;
    int pi = -1, ci = -1;
    for (int i = 0; i < PROP_PEERS; i++) {
        pi = strcmp(p->peer, prop_peers[i]) == 0 ? i : pi;
    }
    for (int i = 0; i < PROP_CCYS; i++) {
        ci = strcmp(p->currency, prop_ccys[i]) == 0 ? i : ci;
    }
    m->what = "ledger_positions";
    PROP_EQ(m, pi >= 0 && ci >= 0, 1);
    PROP_EQ(m, m->books.account[pi][ci], true);
    PROP_EQ(m, p->net_minor, m->books.net[pi][ci]);
    PROP_EQ(m, p->pending_minor, m->books.pending[pi][ci]);
    m->stats[11]++;
}

/* Compares everything the ledger reports with the model. */
static void model_compare(model_t *m)
{
    ledger_counts_t want = {0};
    for (size_t i = 0; i < m->books.n; i++) {
        switch (m->items[i].status) {
        case STATUS_PENDING:
            want.pending++;
            break;
        case STATUS_SETTLED:
            want.settled++;
            break;
        case STATUS_REJECTED:
            want.rejected++;
            break;
        case STATUS_RETURNED:
            want.returned++;
            break;
        case STATUS_HELD:
            want.held++;
            break;
        }
    }
    m->what = "compare";
    ledger_counts_t c = counts_of(m->l);
    PROP_EQ(m, c.pending, want.pending);
    PROP_EQ(m, c.settled, want.settled);
    PROP_EQ(m, c.rejected, want.rejected);
    PROP_EQ(m, c.returned, want.returned);
    PROP_EQ(m, c.held, want.held);
    PROP_EQ(m, rows_of(m->l), m->books.rows);
    int accounts = 0;
    for (int p = 0; p < PROP_PEERS; p++) {
        for (int k = 0; k < PROP_CCYS; k++) {
            int64_t net = 0, pending = 0;
            PROP_EQ(m, ledger_position(m->l, prop_peers[p], prop_ccys[k], &net, &pending),
                    LEDGER_OK);
            PROP_EQ(m, net, m->books.net[p][k]);
            PROP_EQ(m, pending, m->books.pending[p][k]);
            accounts += m->books.account[p][k];
        }
    }
    uint64_t seen_before = m->stats[11];
    PROP_EQ(m, ledger_positions(m->l, model_count_account, m), LEDGER_OK);
    PROP_EQ(m, m->stats[11] - seen_before, accounts);
    assert_balanced(m->l);
}

typedef struct {
    model_t *m;
    size_t next;
} model_walk_t;

static void model_compare_settlement(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    model_walk_t *w = arg;
    model_t *m = w->m;
    m->what = "ledger_settlements";
    PROP_EQ(m, w->next < m->books.n, 1);
    const model_item_t *it = &m->items[w->next++];
    prop_str(m, s->uetr, it->s.uetr, __LINE__);
    prop_str(m, s->peer, it->s.peer, __LINE__);
    prop_str(m, s->currency, it->s.currency, __LINE__);
    prop_str(m, s->remittance, it->s.remittance, __LINE__);
    PROP_EQ(m, s->direction, it->s.direction);
    PROP_EQ(m, s->amount_minor, it->s.amount_minor);
    PROP_EQ(m, o->status, it->status);
    prop_str(m, o->reason, it->reason, __LINE__);
}

static void test_model_random_operations(void **state)
{
    fixture_t *f = *state;
    model_t *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->seed = test_seed(PROP_SEED);
    m->rng.state = m->seed;
    m->items_cap = PROP_OPS + 1;
    m->items = calloc(m->items_cap, sizeof *m->items);
    m->picks = calloc(m->items_cap, sizeof *m->picks);
    m->undo_cap = PROP_BATCH_MAX * 2 + 2;
    m->undo = calloc(m->undo_cap, sizeof *m->undo);
    assert_non_null(m->items);
    assert_non_null(m->picks);
    assert_non_null(m->undo);
    print_message("model test seed %llu (CORRIDOR_TEST_SEED replays it)\n",
                  (unsigned long long)m->seed);
    m->l = open_ledger(f->path);

    int transactions = 0, rollbacks = 0;
    while (m->op < PROP_OPS) {
        int batch = 1 + (int)rng_below(&m->rng, PROP_BATCH_MAX);
        model_begin(m);
        for (int k = 0; k < batch && m->op < PROP_OPS; k++, m->op++) {
            uint64_t dice = rng_below(&m->rng, 100);
            if (dice < 22) {
                op_send_new(m);
            } else if (dice < 44) {
                op_receive_new(m);
            } else if (dice < 47) {
                op_receive_refused_by_caller(m);
            } else if (dice < 70) {
                op_resolve(m);
            } else if (dice < 78) {
                op_return(m);
            } else if (dice < 86) {
                op_duplicate(m);
            } else if (dice < 94) {
                op_conflict(m);
            } else if (dice < 97) {
                op_resolve_incoming(m);
            } else {
                op_unknown(m);
            }
            PROP_EQ(m, rows_of(m->l), m->books.rows);
            PROP_EQ(m, ledger_in_transaction(m->l), true);
        }
        if (rng_below(&m->rng, 100) < PROP_ROLLBACK_PC) {
            model_rollback(m);
            rollbacks++;
        } else {
            m->what = "commit";
            PROP_EQ(m, ledger_commit(m->l), LEDGER_OK);
        }
        transactions++;
        model_compare(m);
    }
    PROP_EQ(m, ledger_stopped(m->l), false);

    /* Every settlement, in the order recorded, with its status; then the chain and a reopen. */
    model_walk_t walk = {m, 0};
    assert_int_equal(ledger_settlements(m->l, model_compare_settlement, &walk), LEDGER_OK);
    PROP_EQ(m, walk.next, m->books.n);
    assert_chain_verifies(m->l);
    snapshot_t before = snapshot_of(m->l);
    ledger_close(&m->l);
    m->l = open_ledger(f->path);
    snapshot_t after = snapshot_of(m->l);
    assert_same_snapshot(&before, &after);
    model_compare(m);

    /* The run must have exercised what it claims to. */
    print_message("model: %d ops in %d transactions (%d rolled back), %zu settlements; "
                  "receives %llu booked / %llu refused (%llu at the cap, %llu one over); "
                  "%llu resolved, %llu repeats, %llu conflicts; %llu returns, %llu refused\n",
                  m->op, transactions, rollbacks, m->books.n, (unsigned long long)m->stats[0],
                  (unsigned long long)m->stats[1], (unsigned long long)m->stats[2],
                  (unsigned long long)m->stats[3], (unsigned long long)m->stats[4],
                  (unsigned long long)(m->stats[5] + m->stats[9]),
                  (unsigned long long)(m->stats[6] + m->stats[10]), (unsigned long long)m->stats[7],
                  (unsigned long long)m->stats[8]);
    assert_true(rollbacks > 0);
    for (int s = 0; s <= 10; s++) {
        if (m->stats[s] == 0) {
            fail_msg("model test never exercised case %d (seed %llu)", s,
                     (unsigned long long)m->seed);
        }
    }
    ledger_close(&m->l);
    free(m->items);
    free(m->picks);
    free(m->undo);
    free(m);
}

/* ---- 9. crash safety ------------------------------------------------------------------------ */

#define CRASH_ROUNDS      50
#define CRASH_BATCH       10
#define CRASH_BATCHES_MAX 100000

/* The child: appends batches of CRASH_BATCH sends, one transaction each, until killed. No
 * cmocka here: any failure is an exit code the parent reports. */
static void crash_child(const char *path, int round)
{
    ledger_t *l = NULL;
    char err[256];
    if (ledger_open(path, NODE, LEDGER_READ_WRITE, NULL, &l, err, sizeof err) != LEDGER_OK) {
        _exit(10);
    }
    for (int b = 0; b < CRASH_BATCHES_MAX; b++) {
        if (ledger_begin(l) != LEDGER_OK) {
            _exit(11);
        }
        for (int i = 0; i < CRASH_BATCH; i++) {
            settlement_t s;
            build_settlement(&s, DIRECTION_OUT, i % 2 ? PEER : PEER_OTHER, "RUB", 1 + b % 1000);
            snprintf(s.remittance, sizeof s.remittance, "batch %d.%d", round, b);
            ledger_outcome_t o;
            if (ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o) != LEDGER_OK) {
                _exit(12);
            }
        }
        if (ledger_commit(l) != LEDGER_OK) {
            _exit(13);
        }
    }
    ledger_close(&l);
    _exit(0);
}

static void test_crash_leaves_whole_batches(void **state)
{
    fixture_t *f = *state;
    rng_t rng = {test_seed(UINT64_C(0x9e3779b97f4a7c15))};
    uint8_t prev_head[LEDGER_HASH_BYTES] = {0};
    uint64_t prev_rows = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            crash_child(f->path, round);
        }
        struct timespec delay = {0, (long)(5000 + rng_below(&rng, 55001)) * 1000L};
        nanosleep(&delay, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            fail_msg("round %d: child ended otherwise (status %d)", round, status);
        }

        ledger_t *l = open_ledger(f->path);
        /* Every batch is whole. */
        assert_int_equal(sql_int(l, "SELECT count(*) FROM (SELECT remittance FROM settlements"
                                    " GROUP BY remittance HAVING count(*) != 10)"),
                         0);
        int64_t total = sql_int(l, "SELECT count(*) FROM settlements");
        assert_int_equal(total % CRASH_BATCH, 0);
        assert_counts(l, (uint64_t)total, 0, 0, 0);
        assert_int_equal(sql_int(l, "SELECT count(*) FROM journal"), total);
        int64_t sum = sql_int(l, "SELECT coalesce(sum(amount_minor), 0) FROM settlements");
        int64_t net = 0, pa = 0, pb = 0;
        assert_int_equal(ledger_position(l, PEER, "RUB", &net, &pa), LEDGER_OK);
        assert_int_equal(ledger_position(l, PEER_OTHER, "RUB", &net, &pb), LEDGER_OK);
        assert_int_equal(pa + pb, -sum);
        assert_balanced(l);
        assert_chain_verifies(l);
        /* Nothing committed earlier was lost: the old head is still a prefix of the chain. */
        uint64_t rows = rows_of(l);
        assert_true(rows >= prev_rows);
        if (prev_rows > 0) {
            sqlite3_stmt *stmt = NULL;
            assert_int_equal(sqlite3_prepare_v2(ledger_db(l),
                                                "SELECT hash FROM journal WHERE seq = ?1", -1,
                                                &stmt, NULL),
                             SQLITE_OK);
            sqlite3_bind_int64(stmt, 1, (int64_t)prev_rows);
            assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
            bool same = sqlite3_column_bytes(stmt, 0) == LEDGER_HASH_BYTES &&
                        memcmp(sqlite3_column_blob(stmt, 0), prev_head, LEDGER_HASH_BYTES) == 0;
            sqlite3_finalize(stmt);
            assert_true(same);
        }
        prev_rows = rows;
        assert_int_equal(ledger_head(l, prev_head, NULL), LEDGER_OK);
        ledger_close(&l);
    }
    print_message("crash test: %llu settlements in whole batches after %d kills\n",
                  (unsigned long long)prev_rows, CRASH_ROUNDS);
    assert_true(prev_rows > 0); /* some batches did commit: the test tested something */
}

/* ---- 10. full disk, failed fsync ------------------------------------------------------------ */

/* A VFS that forwards to the default one, failing writes (SQLITE_FULL) and syncs
 * (SQLITE_IOERR_FSYNC) while the flags say so. */
typedef struct {
    sqlite3_file base;  /* pMethods points to fault_methods */
    sqlite3_file *real; /* the default VFS's file, stored right after this struct */
} fault_file_t;

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *real;
    sqlite3_io_methods methods;
    volatile bool fail_write;
    volatile bool fail_sync;
    int writes_failed, syncs_failed;
} fault;

static sqlite3_file *fault_real(sqlite3_file *file)
{
    return ((fault_file_t *)file)->real;
}

static int fault_close(sqlite3_file *file)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xClose(r);
}

static int fault_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xRead(r, buf, n, off);
}

static int fault_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off)
{
    if (fault.fail_write) {
        fault.writes_failed++;
        return SQLITE_FULL;
    }
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xWrite(r, buf, n, off);
}

static int fault_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xTruncate(r, size);
}

static int fault_sync(sqlite3_file *file, int flags)
{
    if (fault.fail_sync) {
        fault.syncs_failed++;
        return SQLITE_IOERR_FSYNC;
    }
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xSync(r, flags);
}

static int fault_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xFileSize(r, size);
}

static int fault_lock(sqlite3_file *file, int level)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xLock(r, level);
}

static int fault_unlock(sqlite3_file *file, int level)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xUnlock(r, level);
}

static int fault_check_reserved_lock(sqlite3_file *file, int *out)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xCheckReservedLock(r, out);
}

static int fault_file_control(sqlite3_file *file, int op, void *arg)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xFileControl(r, op, arg);
}

static int fault_sector_size(sqlite3_file *file)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xSectorSize(r);
}

static int fault_device_characteristics(sqlite3_file *file)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xDeviceCharacteristics(r);
}

static int fault_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xShmMap(r, region, size, extend, out);
}

static int fault_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xShmLock(r, offset, n, flags);
}

static void fault_shm_barrier(sqlite3_file *file)
{
    sqlite3_file *r = fault_real(file);
    r->pMethods->xShmBarrier(r);
}

static int fault_shm_unmap(sqlite3_file *file, int delete_flag)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xShmUnmap(r, delete_flag);
}

static int fault_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xFetch(r, off, n, out);
}

static int fault_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    sqlite3_file *r = fault_real(file);
    return r->pMethods->xUnfetch(r, off, p);
}

static int fault_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                      int *out_flags)
{
    (void)vfs;
    fault_file_t *f = (fault_file_t *)file;
    f->real = (sqlite3_file *)(f + 1);
    int rc = fault.real->xOpen(fault.real, name, f->real, flags, out_flags);
    if (f->real->pMethods == NULL) {
        f->base.pMethods = NULL; /* nothing to close */
        return rc;
    }
    int version = f->real->pMethods->iVersion;
    assert_true(version >= 2); /* WAL needs the shared-memory methods */
    fault.methods.iVersion = version < 3 ? version : 3;
    f->base.pMethods = &fault.methods;
    return rc;
}

static void fault_install(void)
{
    if (fault.real != NULL) {
        return;
    }
    fault.real = sqlite3_vfs_find(NULL);
    assert_non_null(fault.real);
    _Static_assert(sizeof(fault_file_t) % 8 == 0, "the real file after it stays aligned");
    fault.vfs = *fault.real;
    fault.vfs.pNext = NULL;
    fault.vfs.zName = FAULT_VFS;
    fault.vfs.szOsFile = (int)sizeof(fault_file_t) + fault.real->szOsFile;
    fault.vfs.xOpen = fault_open;
    fault.methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = fault_close,
        .xRead = fault_read,
        .xWrite = fault_write,
        .xTruncate = fault_truncate,
        .xSync = fault_sync,
        .xFileSize = fault_file_size,
        .xLock = fault_lock,
        .xUnlock = fault_unlock,
        .xCheckReservedLock = fault_check_reserved_lock,
        .xFileControl = fault_file_control,
        .xSectorSize = fault_sector_size,
        .xDeviceCharacteristics = fault_device_characteristics,
        .xShmMap = fault_shm_map,
        .xShmLock = fault_shm_lock,
        .xShmBarrier = fault_shm_barrier,
        .xShmUnmap = fault_shm_unmap,
        .xFetch = fault_fetch,
        .xUnfetch = fault_unfetch,
    };
    assert_int_equal(sqlite3_vfs_register(&fault.vfs, 0), SQLITE_OK);
}

static void fault_reset(void)
{
    fault.fail_write = false;
    fault.fail_sync = false;
    fault.writes_failed = 0;
    fault.syncs_failed = 0;
}

#define FAULT_GOOD    30
#define FAULT_BATCH   20
#define FAULT_ARM_MID 5 /* sends that succeed before the fault in the mid-transaction case */

/* Commits FAULT_GOOD sends in three batches through the fault VFS; returns their UETRs. */
static ledger_t *fault_prepare(const char *path, char uetrs[FAULT_GOOD][CORRIDOR_UETR_LEN + 1])
{
    fault_install();
    fault_reset();
    ledger_t *l = open_ledger_vfs(path, FAULT_VFS);
    ledger_outcome_t o;
    for (int b = 0; b < 3; b++) {
        assert_int_equal(ledger_begin(l), LEDGER_OK);
        for (int i = 0; i < FAULT_GOOD / 3; i++) {
            settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 10);
            assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
            snprintf(uetrs[b * (FAULT_GOOD / 3) + i], CORRIDOR_UETR_LEN + 1, "%s", s.uetr);
        }
        assert_int_equal(ledger_commit(l), LEDGER_OK);
    }
    assert_int_equal(fault.writes_failed + fault.syncs_failed, 0);
    return l;
}

/* Runs one batch of FAULT_BATCH sends and commits, turning the faults on just before send
 * number arm_at; returns the first error and where it happened (-1 begin, 0.. a send,
 * FAULT_BATCH the commit). */
static ledger_err_t fault_batch(ledger_t *l, char uetrs[FAULT_BATCH][CORRIDOR_UETR_LEN + 1],
                                size_t evidence_len, int arm_at, bool fail_write, bool fail_sync,
                                int *failed_at)
{
    uint8_t *big = calloc(1, evidence_len);
    assert_non_null(big);
    ledger_err_t rc = ledger_begin(l);
    *failed_at = -1;
    for (int i = 0; i < FAULT_BATCH && rc == LEDGER_OK; i++) {
        *failed_at = i;
        if (i == arm_at) {
            fault.fail_write = fail_write;
            fault.fail_sync = fail_sync;
        }
        settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1000);
        snprintf(uetrs[i], CORRIDOR_UETR_LEN + 1, "%s", s.uetr);
        ledger_outcome_t o;
        big[i % evidence_len] = (uint8_t)i;
        rc = ledger_send(l, &s, big, evidence_len, 0, &o);
    }
    if (rc == LEDGER_OK) {
        *failed_at = FAULT_BATCH;
        rc = ledger_commit(l);
    }
    free(big);
    return rc;
}

/* After a storage failure: reopen with the default VFS and check that exactly the good
 * batches are there and the chain verifies. */
static void fault_check_after(const char *path, const snapshot_t *good,
                              char good_uetrs[FAULT_GOOD][CORRIDOR_UETR_LEN + 1],
                              char bad_uetrs[FAULT_BATCH][CORRIDOR_UETR_LEN + 1])
{
    ledger_t *l = open_ledger(path);
    snapshot_t now = snapshot_of(l);
    assert_same_snapshot(good, &now);
    for (int i = 0; i < FAULT_GOOD; i++) {
        assert_int_equal(ledger_find(l, PEER, good_uetrs[i], NULL, NULL), LEDGER_OK);
    }
    for (int i = 0; i < FAULT_BATCH; i++) {
        if (bad_uetrs[i][0] != '\0') {
            assert_int_equal(ledger_find(l, PEER, bad_uetrs[i], NULL, NULL), LEDGER_E_NOT_FOUND);
        }
    }
    assert_position(l, PEER, "RUB", 0, -10 * FAULT_GOOD);
    assert_chain_verifies(l);
    assert_balanced(l);
    ledger_close(&l);
}

/* The common shape: good batches, then a batch that meets the faults, then checks. With
 * mid_transaction, the page cache is tiny and the evidence large, so SQLite spills dirty pages
 * to the WAL before the commit, and the fault is armed after a few sends of the batch: the
 * failure hits a send, after earlier sends of the same batch advanced the chain. */
static void run_fault_test(const char *path, bool fail_write, bool fail_sync, bool mid_transaction)
{
    char good_uetrs[FAULT_GOOD][CORRIDOR_UETR_LEN + 1];
    char bad_uetrs[FAULT_BATCH][CORRIDOR_UETR_LEN + 1];
    memset(bad_uetrs, 0, sizeof bad_uetrs);
    ledger_t *l = fault_prepare(path, good_uetrs);
    if (mid_transaction) {
        /* A tiny page cache makes SQLite spill dirty pages mid-transaction. */
        assert_int_equal(sqlite3_exec(ledger_db(l), "PRAGMA cache_size = 2", NULL, NULL, NULL),
                         SQLITE_OK);
    }
    snapshot_t good = snapshot_of(l);

    int failed_at = -2;
    ledger_err_t rc =
        fault_batch(l, bad_uetrs, mid_transaction ? 64 * 1024 : EVIDENCE_LEN,
                    mid_transaction ? FAULT_ARM_MID : 0, fail_write, fail_sync, &failed_at);
    assert_int_equal(rc, LEDGER_E_STORAGE);
    if (mid_transaction) {
        assert_true(failed_at >= FAULT_ARM_MID && failed_at < FAULT_BATCH); /* not the commit */
    }
    assert_true(fault.writes_failed + fault.syncs_failed > 0);
    assert_true(ledger_stopped(l));
    assert_false(ledger_in_transaction(l));
    assert_true(strlen(ledger_last_error(l)) > 0);
    /* The failed batch is gone from what the stopped ledger still reports (checked last). */
    snapshot_t after = snapshot_of(l);
    assert_position(l, PEER, "RUB", 0, -10 * FAULT_GOOD);
    assert_memory_equal(&after.counts, &good.counts, sizeof good.counts);

    /* Stopped: writes are refused even once the disk is fine again. */
    fault_reset();
    assert_int_equal(ledger_begin(l), LEDGER_E_STOPPED);
    assert_false(ledger_in_transaction(l));
    assert_int_equal(ledger_outbox_put(l, PEER, 1, 1, evidence, EVIDENCE_LEN), LEDGER_E_STOPPED);
    ledger_close(&l);

    /* On disk: exactly the good batches, and the chain verifies. */
    fault_check_after(path, &good, good_uetrs, bad_uetrs);

    /* In memory too, the stopped ledger reports the committed head and FAULT_GOOD rows, as after
     * a reopen: the rollback took the rows the failed batch appended before the error (in the
     * mid-transaction case, FAULT_ARM_MID and more) and their head with it. */
    assert_same_snapshot(&good, &after);
}

static void test_full_disk_stops_ledger(void **state)
{
    fixture_t *f = *state;
    run_fault_test(f->path, true, true, false);
}

static void test_fsync_failure_stops_ledger(void **state)
{
    fixture_t *f = *state;
    run_fault_test(f->path, false, true, false);
}

static void test_write_failure_mid_transaction_stops_ledger(void **state)
{
    fixture_t *f = *state;
    run_fault_test(f->path, true, false, true);
}

static void test_fault_vfs_passes_through(void **state)
{
    fixture_t *f = *state;
    char good_uetrs[FAULT_GOOD][CORRIDOR_UETR_LEN + 1];
    ledger_t *l = fault_prepare(f->path, good_uetrs);
    assert_false(ledger_stopped(l));
    snapshot_t good = snapshot_of(l);
    ledger_close(&l);
    char none[FAULT_BATCH][CORRIDOR_UETR_LEN + 1];
    memset(none, 0, sizeof none);
    fault_check_after(f->path, &good, good_uetrs, none);
}

/* ---- amounts at the edge of int64 ------------------------------------------------------------ */

/* 92 amounts of CORRIDOR_AMOUNT_MINOR_MAX (10^17) fit in int64, 93 do not; what is left of the
 * range after 92 is EDGE_HEADROOM (about 2.3 * 10^16). */
#define EDGE_FIT      92
#define EDGE_HEADROOM (INT64_MAX - EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX)
_Static_assert(INT64_MAX / CORRIDOR_AMOUNT_MINOR_MAX == EDGE_FIT, "92 largest amounts fit");

/* Balances are nets, not gross totals: booking and returning the largest amount again and
 * again moves 10^17 minor units each way per round, 10^19 over 100 rounds (more than INT64_MAX,
 * about 9.22 * 10^18: the lifetime gross volume that overflowed the former gross counters into
 * REALs), but each round takes the balances up and back to 0. Nothing is refused, and one minor
 * unit more shows as exactly one, in exact integers (I1 needs them). */
static void test_gross_volume_keeps_nets_exact(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    const int rounds = 100; /* 100 * 10^17 > INT64_MAX */
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < rounds; i++) {
        settlement_t s = make_settlement(DIRECTION_IN, PEER, "IRR", CORRIDOR_AMOUNT_MINOR_MAX);
        assert_int_equal(
            ledger_receive(l, &s, CORRIDOR_AMOUNT_MINOR_MAX, NULL, evidence, EVIDENCE_LEN, 0, &o),
            LEDGER_OK);
        assert_int_equal(o.status, STATUS_SETTLED); /* net is 0 before each round */
        assert_int_equal(o.position_minor, CORRIDOR_AMOUNT_MINOR_MAX);
        assert_int_equal(ledger_return(l, PEER, s.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                         LEDGER_OK);
        assert_int_equal(o.status, STATUS_RETURNED);
        assert_int_equal(o.position_minor, 0);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_false(ledger_stopped(l));
    settlement_t one = make_settlement(DIRECTION_IN, PEER, "IRR", 1);
    assert_int_equal(receive1(l, &one, CORRIDOR_AMOUNT_MINOR_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.position_minor, 1);
    assert_position(l, PEER, "IRR", 1, 0);
    assert_int_equal(sql_int(l, "SELECT posted_net FROM accounts"
                                " WHERE kind = 'clearing' AND currency = 'IRR'"),
                     -1);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM accounts WHERE"
                                " typeof(posted_net) != 'integer' OR"
                                " typeof(pending_net) != 'integer'"),
                     0);
    assert_counts(l, 0, 1, 0, (uint64_t)rounds);
    assert_int_equal(rows_of(l), 2 * rounds + 1);
    assert_balanced(l);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* In one transaction, n outgoing settlements of the largest amount to `peer`, each settled by
 * the peer right after it was sent when `settle` (so the pending balance never holds more than
 * one); the first one in *first if not NULL. */
static void send_largest(ledger_t *l, const char *peer, const char *currency, int n, bool settle,
                         settlement_t *first)
{
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < n; i++) {
        settlement_t s = make_settlement(DIRECTION_OUT, peer, currency, CORRIDOR_AMOUNT_MINOR_MAX);
        assert_int_equal(ledger_send(l, &s, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
        assert_int_equal(o.status, STATUS_PENDING);
        if (settle) {
            assert_int_equal(
                ledger_resolve(l, peer, s.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
                LEDGER_OK);
            assert_int_equal(o.status, STATUS_SETTLED);
        }
        if (i == 0 && first != NULL) {
            *first = s;
        }
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

/* After a refusal: still in the transaction, not stopped, the reason logged, and nothing
 * changed (head, rows, counts, every account balance). */
static void assert_refused_unchanged(ledger_t *l, const snapshot_t *before,
                                     const char *accounts_before)
{
    assert_true(ledger_in_transaction(l));
    assert_false(ledger_stopped(l));
    assert_true(strlen(ledger_last_error(l)) > 0);
    snapshot_t now = snapshot_of(l);
    assert_same_snapshot(before, &now);
    char accounts[1024];
    accounts_text(l, accounts, sizeof accounts);
    assert_string_equal(accounts, accounts_before);
}

/* Outgoing pending settlements of the largest amount to one peer: 92 fit (the peer's
 * pending_net is -9.2 * 10^18, the clearing account's +9.2 * 10^18); a 93rd would take both past
 * int64. ledger_send refuses it with LEDGER_E_OVERFLOW before writing anything, and the
 * transaction goes on. The clearing account bounds the currency as a whole, so another peer is
 * refused as well, while exactly the headroom left fits, and another currency is apart. */
static void test_send_pending_overflow_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    send_largest(l, PEER, "RUB", EDGE_FIT, false, NULL);
    assert_position(l, PEER, "RUB", 0, -EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX);
    snapshot_t before = snapshot_of(l);
    char accounts_before[1024];
    accounts_text(l, accounts_before, sizeof accounts_before);

    assert_int_equal(ledger_begin(l), LEDGER_OK);
    settlement_t over = make_settlement(DIRECTION_OUT, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(ledger_send(l, &over, evidence, EVIDENCE_LEN, 0, &o), LEDGER_E_OVERFLOW);
    assert_refused_unchanged(l, &before, accounts_before);
    settlement_t other = make_settlement(DIRECTION_OUT, PEER_OTHER, "RUB", EDGE_HEADROOM + 1);
    assert_int_equal(ledger_send(l, &other, evidence, EVIDENCE_LEN, 0, &o), LEDGER_E_OVERFLOW);
    assert_refused_unchanged(l, &before, accounts_before);
    assert_int_equal(ledger_find(l, PEER, over.uetr, NULL, NULL), LEDGER_E_NOT_FOUND);
    assert_int_equal(ledger_find(l, PEER_OTHER, other.uetr, NULL, NULL), LEDGER_E_NOT_FOUND);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM accounts WHERE peer = '" PEER_OTHER "'"), 0);

    settlement_t last = make_settlement(DIRECTION_OUT, PEER, "RUB", EDGE_HEADROOM);
    assert_int_equal(ledger_send(l, &last, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    settlement_t irr = make_settlement(DIRECTION_OUT, PEER, "IRR", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(ledger_send(l, &irr, evidence, EVIDENCE_LEN, 0, &o), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_false(ledger_stopped(l));
    assert_position(l, PEER, "RUB", 0, -INT64_MAX);
    assert_position(l, PEER, "IRR", 0, -CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(sql_int(l, "SELECT pending_net FROM accounts"
                                " WHERE kind = 'clearing' AND currency = 'RUB'"),
                     INT64_MAX);
    assert_balanced(l);

    /* Full: one minor unit more is refused; once a void made room, the same one goes through
     * (the refusal recorded nothing, so it is neither a repeat nor a conflict). */
    settlement_t unit = make_settlement(DIRECTION_OUT, PEER_OTHER, "RUB", 1);
    snapshot_t full = snapshot_of(l);
    assert_int_equal(send1(l, &unit, &o), LEDGER_E_OVERFLOW);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&full, &after);
    assert_int_equal(resolve1(l, &last, false, "AM04", &o), LEDGER_OK);
    assert_int_equal(send1(l, &unit, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_false(o.repeated);
    assert_position(l, PEER, "RUB", 0, -EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX);
    assert_position(l, PEER_OTHER, "RUB", 0, -1);
    assert_counts(l, EDGE_FIT + 2, 0, 1, 0);
    assert_balanced(l);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* 92 outgoing payments of the largest amount, settled: the peer's posted_net is -9.2 * 10^18.
 * A 93rd can be sent (its pending balance is apart) but not posted: the StatusReport settling it
 * is refused with LEDGER_E_OVERFLOW, nothing written, the settlement still pending. Once a
 * return made room, the same resolution goes through in the same transaction. */
static void test_resolve_overflow_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t first;
    send_largest(l, PEER, "RUB", EDGE_FIT, true, &first);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", -EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX,
                    -CORRIDOR_AMOUNT_MINOR_MAX);
    snapshot_t before = snapshot_of(l);
    char accounts_before[1024];
    accounts_text(l, accounts_before, sizeof accounts_before);

    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_resolve(l, PEER, s.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_OVERFLOW);
    assert_refused_unchanged(l, &before, accounts_before);
    memset(&o, 0, sizeof o);
    assert_int_equal(ledger_find(l, PEER, s.uetr, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);

    assert_int_equal(ledger_return(l, PEER, first.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_resolve(l, PEER, s.uetr, true, NULL, evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_false(o.repeated);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_false(ledger_stopped(l));
    assert_position(l, PEER, "RUB", -EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX, 0);
    assert_counts(l, 0, EDGE_FIT, 0, 1);
    assert_balanced(l);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* A return reverses a posting, so it can overflow too: the peer paid us the largest amount
 * (posted_net +10^17), then we paid it 93 times as much (-9.2 * 10^18). Returning its payment
 * would take posted_net below INT64_MIN: LEDGER_E_OVERFLOW, nothing written, still settled;
 * after one of ours is returned, it goes through in the same transaction. */
static void test_return_overflow_refused(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_int_equal(receive1(l, &in, CORRIDOR_AMOUNT_MINOR_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    settlement_t first;
    send_largest(l, PEER, "RUB", EDGE_FIT + 1, true, &first);
    assert_position(l, PEER, "RUB", -EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX, 0);
    snapshot_t before = snapshot_of(l);
    char accounts_before[1024];
    accounts_text(l, accounts_before, sizeof accounts_before);

    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_return(l, PEER, in.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_E_OVERFLOW);
    assert_refused_unchanged(l, &before, accounts_before);
    memset(&o, 0, sizeof o);
    assert_int_equal(ledger_find(l, PEER, in.uetr, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);

    assert_int_equal(ledger_return(l, PEER, first.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_return(l, PEER, in.uetr, "AC04", evidence, EVIDENCE_LEN, 0, &o),
                     LEDGER_OK);
    assert_int_equal(o.status, STATUS_RETURNED);
    assert_false(o.repeated);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_false(ledger_stopped(l));
    assert_position(l, PEER, "RUB", -EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX, 0);
    assert_counts(l, 0, EDGE_FIT, 0, 2);
    assert_balanced(l);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* The clearing account takes the opposite of all the currency's peer accounts, so it can
 * overflow where no peer account would: PEER owes us 9.2 * 10^18 (cap INT64_MAX), and a payment
 * from PEER_OTHER well within its own cap would take the clearing account below INT64_MIN.
 * ledger_receive refuses it as over a cap (AM02): a refused row is recorded, no balance moves,
 * no account is opened. Exactly the headroom left is booked, down to INT64_MIN itself. */
static void test_receive_overflow_refused_am02(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < EDGE_FIT; i++) {
        settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
        assert_int_equal(ledger_receive(l, &s, INT64_MAX, NULL, evidence, EVIDENCE_LEN, 0, &o),
                         LEDGER_OK);
        assert_int_equal(o.status, STATUS_SETTLED);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    snapshot_t before = snapshot_of(l);
    char accounts_before[1024];
    accounts_text(l, accounts_before, sizeof accounts_before);

    /* INT64_MIN is -(EDGE_HEADROOM + 1) - 92 * 10^17: one more than the headroom fits. */
    settlement_t over = make_settlement(DIRECTION_IN, PEER_OTHER, "RUB", EDGE_HEADROOM + 2);
    assert_int_equal(receive1(l, &over, CORRIDOR_AMOUNT_MINOR_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_int_equal(o.position_minor, 0);
    assert_false(ledger_stopped(l));
    char accounts[1024];
    accounts_text(l, accounts, sizeof accounts);
    assert_string_equal(accounts, accounts_before);
    assert_int_equal(rows_of(l), before.rows + 1);
    assert_counts(l, 0, EDGE_FIT, 1, 0);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM accounts WHERE peer = '" PEER_OTHER "'"), 0);

    settlement_t fits = make_settlement(DIRECTION_IN, PEER_OTHER, "RUB", EDGE_HEADROOM + 1);
    assert_int_equal(receive1(l, &fits, CORRIDOR_AMOUNT_MINOR_MAX, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_position(l, PEER_OTHER, "RUB", EDGE_HEADROOM + 1, 0);
    assert_position(l, PEER, "RUB", EDGE_FIT * CORRIDOR_AMOUNT_MINOR_MAX, 0);
    assert_int_equal(sql_int(l, "SELECT posted_net FROM accounts"
                                " WHERE kind = 'clearing' AND currency = 'RUB'"),
                     INT64_MIN);
    assert_balanced(l);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* ---- key history (schema 6) ----------------------------------------------------------------- */

/* The signed announcement of a key: opaque to the ledger, as all evidence. */
static uint8_t announcement[] = "signed KeyAnnouncement bytes (opaque to the ledger)";
#define ANNOUNCEMENT_LEN (sizeof announcement - 1)

/* A key of `peer`/`side` from `first_seq` whose public keys are derived from `seed`; an
 * "announced" key carries the announcement as evidence. */
static key_record_t make_key(const char *peer, key_side_t side, uint8_t seed, uint64_t first_seq,
                             const char *source)
{
    key_record_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.peer, sizeof k.peer, "%s", peer);
    k.side = side;
    memset(k.sign_public, seed, sizeof k.sign_public);
    identity_key_id(k.sign_public, k.key_id);
    memset(k.box_public, seed ^ 0x5a, sizeof k.box_public);
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (size_t i = 0; i < IDENTITY_CURVE_KEY_CHARS; i++) {
        k.curve_public[i] = z85[(seed + i) % (sizeof z85 - 1)];
    }
    k.first_seq = first_seq;
    snprintf(k.source, sizeof k.source, "%s", source);
    if (strcmp(source, "announced") == 0) {
        k.evidence = announcement;
        k.evidence_len = ANNOUNCEMENT_LEN;
    }
    return k;
}

#define KEYS_SEEN_MAX 8

/* What ledger_keys showed: copies of the records, their evidence kept alongside. */
typedef struct {
    size_t n;
    key_record_t keys[KEYS_SEEN_MAX];
    uint8_t evidence[KEYS_SEEN_MAX][ANNOUNCEMENT_LEN];
} keys_seen_t;

static void collect_key(const key_record_t *k, void *arg)
{
    keys_seen_t *seen = arg;
    assert_true(seen->n < KEYS_SEEN_MAX);
    assert_true(k->evidence_len <= ANNOUNCEMENT_LEN);
    key_record_t *copy = &seen->keys[seen->n];
    *copy = *k;
    if (k->evidence_len > 0) {
        memcpy(seen->evidence[seen->n], k->evidence, k->evidence_len);
        copy->evidence = seen->evidence[seen->n];
    }
    seen->n++;
}

static keys_seen_t keys_of(ledger_t *l, const char *peer)
{
    keys_seen_t seen;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(ledger_keys(l, peer, collect_key, &seen), LEDGER_OK);
    return seen;
}

/* One ledger_key_add in a transaction of its own; a refusal commits nothing. */
static ledger_err_t key_add1(ledger_t *l, const key_record_t *k)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_key_add(l, k);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t key_revoke1(ledger_t *l, const char *peer, key_side_t side, uint64_t from_seq,
                                const uint8_t *keep)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_key_revoke(l, peer, side, from_seq, keep);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

/* The stored key equals the one given in what the caller gives, and has the given range. */
static void assert_key(const key_record_t *got, const key_record_t *want, uint64_t last_seq,
                       uint64_t revoked_from)
{
    assert_string_equal(got->peer, want->peer);
    assert_int_equal(got->side, want->side);
    assert_memory_equal(got->key_id, want->key_id, sizeof got->key_id);
    assert_memory_equal(got->sign_public, want->sign_public, sizeof got->sign_public);
    assert_memory_equal(got->box_public, want->box_public, sizeof got->box_public);
    assert_string_equal(got->curve_public, want->curve_public);
    assert_int_equal(got->first_seq, want->first_seq);
    assert_int_equal(got->last_seq, last_seq);
    assert_int_equal(got->revoked_from, revoked_from);
    assert_string_equal(got->source, want->source);
    assert_int_equal(got->evidence_len, want->evidence_len);
    if (want->evidence_len > 0) {
        assert_memory_equal(got->evidence, want->evidence, want->evidence_len);
    } else {
        assert_null(got->evidence);
    }
}

static void test_keys_add_and_read_back(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    keys_seen_t seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 0); /* a new ledger: the cards' keys sign everything */
    ledger_set_clock(l, CREATED_MS);
    key_record_t theirs = make_key(PEER, KEY_SIDE_THEIRS, 1, 1, "announced");
    key_record_t ours = make_key(PEER, KEY_SIDE_OURS, 2, 1, "card");
    key_record_t other = make_key(PEER_OTHER, KEY_SIDE_THEIRS, 3, 7, "replaced");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &other), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &theirs), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &ours), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    ledger_close(&l);

    /* ordered by peer, side, first_seq; read back by a writer and by a reader alike */
    for (int reader = 0; reader < 2; reader++) {
        char err[256] = "";
        if (reader) {
            assert_int_equal(
                ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err), LEDGER_OK);
        } else {
            l = open_ledger(f->path);
        }
        seen = keys_of(l, NULL);
        assert_int_equal(seen.n, 3);
        assert_key(&seen.keys[0], &ours, 0, 0);
        assert_key(&seen.keys[1], &theirs, 0, 0);
        assert_key(&seen.keys[2], &other, 0, 0);
        for (size_t i = 0; i < seen.n; i++) {
            assert_int_equal(seen.keys[i].created_ms, CREATED_MS); /* the ledger's clock */
        }
        seen = keys_of(l, PEER_OTHER);
        assert_int_equal(seen.n, 1);
        assert_key(&seen.keys[0], &other, 0, 0);
        seen = keys_of(l, "BNOBODY1");
        assert_int_equal(seen.n, 0);
        ledger_close(&l);
    }
}

static void test_keys_add_closes_open_key(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    key_record_t a = make_key(PEER, KEY_SIDE_OURS, 1, 1, "card");
    key_record_t b = make_key(PEER, KEY_SIDE_OURS, 2, 10, "announced");
    key_record_t c = make_key(PEER, KEY_SIDE_OURS, 3, 25, "announced");
    key_record_t theirs = make_key(PEER, KEY_SIDE_THEIRS, 4, 1, "card");
    assert_int_equal(key_add1(l, &a), LEDGER_OK);
    assert_int_equal(key_add1(l, &theirs), LEDGER_OK);
    assert_int_equal(key_add1(l, &b), LEDGER_OK);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 3);
    assert_key(&seen.keys[0], &a, 9, 0);
    assert_key(&seen.keys[1], &b, 0, 0);
    assert_key(&seen.keys[2], &theirs, 0, 0); /* the other side keeps its key */

    /* a key from at or below the open one's first sequence is refused, nothing changes */
    key_record_t early = make_key(PEER, KEY_SIDE_OURS, 5, 10, "announced");
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early.first_seq = 5;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    /* not a record: no first sequence, a range or revocation given, a foreign key id, a
     * CURVE key too short, evidence where none belongs or none where it does */
    early.first_seq = 0;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early.first_seq = CORRIDOR_SEQUENCE_MAX + 1;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early.first_seq = 30;
    early.last_seq = 40;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early.last_seq = 0;
    early.revoked_from = 35;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early.revoked_from = 0;
    early.key_id[0] ^= 1;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early.key_id[0] ^= 1;
    early.curve_public[IDENTITY_CURVE_KEY_CHARS - 1] = '\0';
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early = make_key(PEER, KEY_SIDE_OURS, 5, 30, "card");
    early.evidence = announcement;
    early.evidence_len = ANNOUNCEMENT_LEN;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early = make_key(PEER, KEY_SIDE_OURS, 5, 30, "announced");
    early.evidence = NULL;
    early.evidence_len = 0;
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    snprintf(early.source, sizeof early.source, "guessed");
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    early = make_key("bad peer", KEY_SIDE_OURS, 5, 30, "card");
    assert_int_equal(key_add1(l, &early), LEDGER_E_STATE);
    assert_false(ledger_stopped(l));
    seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 3);

    /* the next one closes b where it begins; a rolled-back one closes nothing */
    assert_int_equal(key_add1(l, &c), LEDGER_OK);
    key_record_t d = make_key(PEER, KEY_SIDE_OURS, 6, 40, "announced");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &d), LEDGER_OK);
    ledger_rollback(l);
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 4);
    assert_key(&seen.keys[0], &a, 9, 0);
    assert_key(&seen.keys[1], &b, 24, 0);
    assert_key(&seen.keys[2], &c, 0, 0);
    assert_key(&seen.keys[3], &theirs, 0, 0);
    ledger_close(&l);
}

static void test_keys_add_repeat_is_noop(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_set_clock(l, CREATED_MS);
    key_record_t a = make_key(PEER, KEY_SIDE_THEIRS, 1, 1, "announced");
    key_record_t b = make_key(PEER, KEY_SIDE_THEIRS, 2, 10, "announced");
    assert_int_equal(key_add1(l, &a), LEDGER_OK);
    ledger_set_clock(l, CREATED_MS + 1000); /* a repeat later is still the same key */
    assert_int_equal(key_add1(l, &a), LEDGER_OK);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 1);
    assert_key(&seen.keys[0], &a, 0, 0);
    assert_int_equal(seen.keys[0].created_ms, CREATED_MS);

    /* also once the next key closed it: the range is the ledger's, not the caller's */
    assert_int_equal(key_add1(l, &b), LEDGER_OK);
    assert_int_equal(key_add1(l, &a), LEDGER_OK);
    assert_int_equal(key_add1(l, &b), LEDGER_OK);
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 2);
    assert_key(&seen.keys[0], &a, 9, 0);
    assert_key(&seen.keys[1], &b, 0, 0);
    assert_int_equal(seen.keys[1].created_ms, CREATED_MS + 1000);
    ledger_close(&l);
}

static void test_keys_add_conflict(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    key_record_t a = make_key(PEER, KEY_SIDE_THEIRS, 1, 1, "announced");
    key_record_t b = make_key(PEER, KEY_SIDE_THEIRS, 2, 10, "announced");
    assert_int_equal(key_add1(l, &a), LEDGER_OK);
    assert_int_equal(key_add1(l, &b), LEDGER_OK);

    key_record_t other = a; /* the same key id, saying something else */
    other.first_seq = 2;
    assert_int_equal(key_add1(l, &other), LEDGER_E_CONFLICT);
    other = a;
    other.box_public[0] ^= 1;
    assert_int_equal(key_add1(l, &other), LEDGER_E_CONFLICT);
    other = a;
    other.curve_public[0] = other.curve_public[0] == 'x' ? 'y' : 'x';
    assert_int_equal(key_add1(l, &other), LEDGER_E_CONFLICT);
    other = make_key(PEER, KEY_SIDE_THEIRS, 1, 1, "replaced");
    assert_int_equal(key_add1(l, &other), LEDGER_E_CONFLICT);
    uint8_t forged[ANNOUNCEMENT_LEN];
    memcpy(forged, announcement, sizeof forged);
    forged[0] ^= 1;
    other = a;
    other.evidence = forged;
    assert_int_equal(key_add1(l, &other), LEDGER_E_CONFLICT);
    /* going back to the old key later is the same key id again: a conflict */
    other = make_key(PEER, KEY_SIDE_THEIRS, 1, 20, "announced");
    assert_int_equal(key_add1(l, &other), LEDGER_E_CONFLICT);
    assert_non_null(strstr(ledger_last_error(l), "other content"));
    assert_false(ledger_stopped(l));

    /* the same key on the other side, or of another channel, is another record */
    other = make_key(PEER, KEY_SIDE_OURS, 1, 1, "announced");
    assert_int_equal(key_add1(l, &other), LEDGER_OK);
    other.side = KEY_SIDE_THEIRS;
    snprintf(other.peer, sizeof other.peer, "%s", PEER_OTHER);
    assert_int_equal(key_add1(l, &other), LEDGER_OK);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 3);
    assert_key(&seen.keys[1], &a, 9, 0);
    assert_key(&seen.keys[2], &b, 0, 0);
    ledger_close(&l);
}

static void test_keys_revoke(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    key_record_t a = make_key(PEER, KEY_SIDE_THEIRS, 1, 1, "card");
    key_record_t b = make_key(PEER, KEY_SIDE_THEIRS, 2, 10, "announced");
    key_record_t c = make_key(PEER, KEY_SIDE_THEIRS, 3, 25, "replaced");
    key_record_t ours = make_key(PEER, KEY_SIDE_OURS, 4, 1, "card");
    key_record_t other = make_key(PEER_OTHER, KEY_SIDE_THEIRS, 2, 10, "announced");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &a), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &b), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &c), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &ours), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &other), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);

    /* b (10..24) reaches 20, a (1..9) does not, c is kept (the operator's replacement) */
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_THEIRS, 20, c.key_id), LEDGER_OK);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 4);
    assert_key(&seen.keys[0], &ours, 0, 0);
    assert_key(&seen.keys[1], &a, 9, 0);
    assert_key(&seen.keys[2], &b, 24, 20);
    assert_key(&seen.keys[3], &c, 0, 0);

    /* a later revocation keeps the lower one; an earlier one lowers it */
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_THEIRS, 30, NULL), LEDGER_OK);
    seen = keys_of(l, PEER);
    assert_key(&seen.keys[2], &b, 24, 20);
    assert_key(&seen.keys[3], &c, 0, 30);
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_THEIRS, 15, NULL), LEDGER_OK);
    seen = keys_of(l, PEER);
    assert_key(&seen.keys[1], &a, 9, 0);
    assert_key(&seen.keys[2], &b, 24, 15);
    assert_key(&seen.keys[3], &c, 0, 15);
    /* from the start: every key, those of the other side and channel untouched */
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_THEIRS, 1, b.key_id), LEDGER_OK);
    seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 5);
    assert_key(&seen.keys[0], &ours, 0, 0);
    assert_key(&seen.keys[1], &a, 9, 1);
    assert_key(&seen.keys[2], &b, 24, 15);
    assert_key(&seen.keys[3], &c, 0, 1);
    assert_key(&seen.keys[4], &other, 0, 0);

    /* no key to revoke is no error; no sequence number is */
    assert_int_equal(key_revoke1(l, "BNOBODY1", KEY_SIDE_OURS, 5, NULL), LEDGER_OK);
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_OURS, 0, NULL), LEDGER_E_STATE);
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_OURS, CORRIDOR_SEQUENCE_MAX + 1, NULL),
                     LEDGER_E_STATE);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

/* A ledger of schema 5 (no keys table) is read as it is, with no key, and gains an empty key
 * history when opened for writing. */
static void test_keys_upgrade_from_schema_5(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1234);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    uint8_t head[LEDGER_HASH_BYTES], head_after[LEDGER_HASH_BYTES];
    assert_int_equal(ledger_head(l, head, NULL), LEDGER_OK);
    ledger_close(&l);
    make_sqlite_file(f->path,
                     "BEGIN; " UNDO_SCHEMA_8 " DROP TABLE keys; PRAGMA user_version = 5; COMMIT;");
    const char *keys_table = "SELECT count(*) FROM sqlite_master WHERE name = 'keys'";

    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), 5);
    assert_int_equal(sql_int(l, keys_table), 0);
    keys_seen_t seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 0);
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 0);
    assert_int_equal(ledger_key_add(l, &(key_record_t){.first_seq = 1}), LEDGER_E_READONLY);
    ledger_close(&l);

    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    assert_int_equal(sql_int(l, keys_table), 1);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM keys"), 0);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM pragma_table_info('keys')"
                                " WHERE name IN ('switch_seq', 'switch_ms')"),
                     2); /* and schema 7's switch */
    seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 0);
    assert_int_equal(ledger_head(l, head_after, NULL), LEDGER_OK); /* no row changed */
    assert_memory_equal(head, head_after, sizeof head);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_true(o.repeated);
    key_record_t k = make_key(PEER, KEY_SIDE_THEIRS, 1, 5, "announced");
    assert_int_equal(key_add1(l, &k), LEDGER_OK);
    ledger_close(&l);

    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 1);
    assert_key(&seen.keys[0], &k, 0, 0);
    ledger_close(&l);
}

/* A key row edited outside the program (sizes, types, values no writer stores) is
 * LEDGER_E_CORRUPT, said in words, and stops nothing. */
static void test_keys_damaged_row_corrupt(void **state)
{
    fixture_t *f = *state;
    static const char *const damages[] = {
        "UPDATE keys SET sign_public = x'00' WHERE side = 1",
        "UPDATE keys SET box_public = zeroblob(33) WHERE side = 1",
        "UPDATE keys SET key_id = zeroblob(16) WHERE side = 1",
        "UPDATE keys SET key_id = x'0102' WHERE side = 1",
        "UPDATE keys SET curve_public = substr(curve_public, 2) WHERE side = 1",
        "UPDATE keys SET curve_public = curve_public || 'x' WHERE side = 1",
        "UPDATE keys SET source = 'stolen' WHERE side = 1",
        "UPDATE keys SET source = 'card' WHERE side = 1", /* a card key has no evidence */
        "UPDATE keys SET evidence = NULL WHERE side = 1",
        "UPDATE keys SET first_seq = 'one' WHERE side = 1",
        "UPDATE keys SET first_seq = 0 WHERE side = 1",
        "UPDATE keys SET last_seq = 3 WHERE side = 1", /* below first_seq */
        "UPDATE keys SET revoked_from = -1 WHERE side = 1",
        "UPDATE keys SET peer = 'not a peer' WHERE side = 1",
        /* the switch (schema 7) */
        "UPDATE keys SET switch_seq = 4 WHERE side = 1",                   /* below first_seq */
        "UPDATE keys SET switch_seq = 4611686018427387905 WHERE side = 1", /* above 2^62 */
        "UPDATE keys SET switch_seq = -1 WHERE side = 1",
        "UPDATE keys SET switch_seq = 'seven' WHERE side = 1",
        "UPDATE keys SET last_seq = 9, switch_seq = 10 WHERE side = 1", /* after its range */
        "UPDATE keys SET switch_ms = -1 WHERE side = 1",
        "UPDATE keys SET switch_ms = 1.5 WHERE side = 1",
    };
    key_record_t ours = make_key(PEER, KEY_SIDE_OURS, 1, 1, "card");
    key_record_t theirs = make_key(PEER, KEY_SIDE_THEIRS, 2, 5, "announced");
    for (size_t i = 0; i < sizeof damages / sizeof damages[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "damaged-%zu.db", i);
        char *path = test_path(f->dir, name);
        ledger_t *l = open_as(f->dir, name, NODE);
        assert_int_equal(key_add1(l, &ours), LEDGER_OK);
        assert_int_equal(key_add1(l, &theirs), LEDGER_OK);
        ledger_close(&l);
        make_sqlite_file(path, damages[i]);

        l = open_as(f->dir, name, NODE);
        keys_seen_t seen;
        memset(&seen, 0, sizeof seen);
        if (ledger_keys(l, NULL, collect_key, &seen) != LEDGER_E_CORRUPT) {
            fail_msg("%s: not found damaged", damages[i]);
        }
        assert_non_null(strstr(ledger_last_error(l), "damaged key row"));
        assert_true(seen.n <= 1); /* at most our key, which is whole */
        seen.n = 0;
        bool moved = strstr(damages[i], "SET peer") != NULL; /* no longer the peer's row */
        assert_int_equal(ledger_keys(l, PEER, collect_key, &seen),
                         moved ? LEDGER_OK : LEDGER_E_CORRUPT);
        assert_false(ledger_stopped(l));
        ledger_close(&l);

        char err[256] = "";
        assert_int_equal(ledger_open(path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                         LEDGER_OK);
        memset(&seen, 0, sizeof seen);
        assert_int_equal(ledger_keys(l, NULL, collect_key, &seen), LEDGER_E_CORRUPT);
        ledger_close(&l);
        free(path);
    }

    /* a writer that meets the damaged row adding the same key refuses, and goes on */
    ledger_t *l = open_as(f->dir, "damaged-0.db", NODE);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &theirs), LEDGER_E_CORRUPT);
    ledger_rollback(l);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

/* ---- the CURVE key switch (schema 7) --------------------------------------------------------- */

/* One ledger_key_set_switch in a transaction of its own; a refusal commits nothing. */
static ledger_err_t key_switch1(ledger_t *l, const char *peer, key_side_t side,
                                const uint8_t *key_id, uint64_t switch_seq, int64_t switch_ms)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_key_set_switch(l, peer, side, key_id, switch_seq, switch_ms);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static void assert_switch(const key_record_t *k, uint64_t switch_seq, int64_t switch_ms)
{
    assert_int_equal(k->switch_seq, switch_seq);
    assert_int_equal(k->switch_ms, switch_ms);
}

/* A text column of the first row (malloc'd). */
static char *sql_text(ledger_t *l, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(l), sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    char *text = strdup(ledger_column_text(stmt, 0));
    assert_non_null(text);
    sqlite3_finalize(stmt);
    return text;
}

/* The keys table as declared: every column's name, type, NOT NULL and default. */
#define KEYS_LAYOUT                                                                                \
    "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' ||"                      \
    " ifnull(dflt_value, '-'), ', ') FROM pragma_table_info('keys')"
#define KEYS_SWITCH_COLUMNS                                                                        \
    "SELECT count(*) FROM pragma_table_info('keys') WHERE name IN ('switch_seq', 'switch_ms')"

/* Ours: the overlap asked for at the rotation first (switch_seq 0, may change), then the
 * KeySwitch's sequence; theirs: the KeySwitch applied and the deadline of the old CURVE key.
 * Read back by a writer and a reader, kept when the key is closed. */
static void test_keys_switch_set_and_read_back(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    key_record_t a = make_key(PEER, KEY_SIDE_OURS, 1, 1, "card");
    key_record_t b = make_key(PEER, KEY_SIDE_OURS, 2, 10, "announced");
    key_record_t ta = make_key(PEER, KEY_SIDE_THEIRS, 3, 1, "card");
    key_record_t tb = make_key(PEER, KEY_SIDE_THEIRS, 4, 8, "announced");
    key_record_t other = make_key(PEER_OTHER, KEY_SIDE_OURS, 2, 1, "card");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &a), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &b), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &ta), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &tb), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &other), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    keys_seen_t seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 5);
    for (size_t i = 0; i < seen.n; i++) {
        assert_switch(&seen.keys[i], 0, 0); /* recorded before any switch */
    }

    /* ours: the overlap before the switch, changed while switch_seq is 0 */
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_OURS, b.key_id, 0, 30000), LEDGER_OK);
    seen = keys_of(l, PEER);
    assert_key(&seen.keys[1], &b, 0, 0);
    assert_switch(&seen.keys[1], 0, 30000);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_OURS, b.key_id, 0, 45000), LEDGER_OK);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_OURS, b.key_id, 12, 45000), LEDGER_OK);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_OURS, b.key_id, 12, 45000), LEDGER_OK);
    /* theirs: at the peer's KeySwitch, its old CURVE key admitted until a wall-clock time;
     * a switch at the key's first sequence is one */
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_THEIRS, tb.key_id, 8, CREATED_MS + 60000),
                     LEDGER_OK);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_THEIRS, tb.key_id, 8, CREATED_MS + 60000),
                     LEDGER_OK);
    /* a rolled-back switch is none */
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_set_switch(l, PEER_OTHER, KEY_SIDE_OURS, other.key_id, 3, 1),
                     LEDGER_OK);
    ledger_rollback(l);

    ledger_close(&l);
    for (int reader = 0; reader < 2; reader++) {
        char err[256] = "";
        assert_int_equal(ledger_open(f->path, reader ? NULL : NODE,
                                     reader ? LEDGER_READ_ONLY : LEDGER_READ_WRITE, NULL, &l, err,
                                     sizeof err),
                         LEDGER_OK);
        seen = keys_of(l, NULL);
        assert_int_equal(seen.n, 5);
        assert_key(&seen.keys[0], &a, 9, 0);
        assert_switch(&seen.keys[0], 0, 0);
        assert_key(&seen.keys[1], &b, 0, 0);
        assert_switch(&seen.keys[1], 12, 45000);
        assert_key(&seen.keys[2], &ta, 7, 0);
        assert_switch(&seen.keys[2], 0, 0);
        assert_key(&seen.keys[3], &tb, 0, 0);
        assert_switch(&seen.keys[3], 8, CREATED_MS + 60000);
        assert_key(&seen.keys[4], &other, 0, 0);
        assert_switch(&seen.keys[4], 0, 0);
        if (reader) {
            assert_int_equal(ledger_key_set_switch(l, PEER, KEY_SIDE_OURS, b.key_id, 12, 45000),
                             LEDGER_E_READONLY);
        }
        ledger_close(&l);
    }
    l = open_ledger(f->path);

    /* a key recorded with a switch is not a record; nothing is written */
    key_record_t c = make_key(PEER, KEY_SIDE_OURS, 5, 13, "announced");
    c.switch_seq = 13;
    assert_int_equal(key_add1(l, &c), LEDGER_E_STATE);
    assert_non_null(strstr(ledger_last_error(l), "switch"));
    c.switch_seq = 0;
    c.switch_ms = 1000;
    assert_int_equal(key_add1(l, &c), LEDGER_E_STATE);
    /* nor a key that would close the open one before its switch: its range keeps it */
    c = make_key(PEER, KEY_SIDE_OURS, 5, 12, "announced");
    assert_int_equal(key_add1(l, &c), LEDGER_E_STATE); /* 12 would close b at 11 */
    assert_non_null(strstr(ledger_last_error(l), "switched its CURVE key at 12"));
    c.first_seq = 11;
    assert_int_equal(key_add1(l, &c), LEDGER_E_STATE);
    assert_false(ledger_stopped(l));
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 4);
    assert_key(&seen.keys[1], &b, 0, 0);
    assert_switch(&seen.keys[1], 12, 45000);

    /* the next keys close them at their switch or after: each keeps its switch */
    c = make_key(PEER, KEY_SIDE_OURS, 5, 13, "announced");
    key_record_t tc = make_key(PEER, KEY_SIDE_THEIRS, 6, 9, "announced");
    assert_int_equal(key_add1(l, &c), LEDGER_OK);
    assert_int_equal(key_add1(l, &tc), LEDGER_OK);
    ledger_close(&l);
    for (int reader = 0; reader < 2; reader++) {
        char err[256] = "";
        assert_int_equal(ledger_open(f->path, reader ? NULL : NODE,
                                     reader ? LEDGER_READ_ONLY : LEDGER_READ_WRITE, NULL, &l, err,
                                     sizeof err),
                         LEDGER_OK);
        seen = keys_of(l, PEER);
        assert_int_equal(seen.n, 6);
        assert_key(&seen.keys[1], &b, 12, 0);
        assert_switch(&seen.keys[1], 12, 45000);
        assert_key(&seen.keys[2], &c, 0, 0);
        assert_switch(&seen.keys[2], 0, 0);
        assert_key(&seen.keys[4], &tb, 8, 0);
        assert_switch(&seen.keys[4], 8, CREATED_MS + 60000);
        assert_key(&seen.keys[5], &tc, 0, 0);
        assert_switch(&seen.keys[5], 0, 0);
        ledger_close(&l);
    }
}

/* Every refusal is LEDGER_E_STATE, says why, changes no row and stops nothing; the transaction
 * goes on. */
static void test_keys_switch_refusals(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    key_record_t a = make_key(PEER, KEY_SIDE_OURS, 1, 1, "card");
    key_record_t b = make_key(PEER, KEY_SIDE_OURS, 2, 10, "announced");
    key_record_t t = make_key(PEER, KEY_SIDE_THEIRS, 3, 5, "announced");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &a), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &b), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &t), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_OURS, b.key_id, 12, 1000), LEDGER_OK);

    key_record_t unknown = make_key(PEER, KEY_SIDE_OURS, 9, 1, "card");
    static const struct {
        const char *peer;
        key_side_t side;
        char key; /* 'a', 'b', 't' or 'u' (unknown) */
        uint64_t seq;
        int64_t ms;
        const char *why;
    } refused[] = {
        {PEER, KEY_SIDE_OURS, 'u', 12, 0, "no such key"},
        {PEER, KEY_SIDE_THEIRS, 'b', 12, 0, "no such key"}, /* b is ours */
        {PEER_OTHER, KEY_SIDE_OURS, 'b', 12, 0, "no such key"},
        {"bad peer", KEY_SIDE_OURS, 'b', 12, 0, "no such key"},
        {PEER, KEY_SIDE_OURS, 'a', 5, 0, "not open"},
        {PEER, KEY_SIDE_OURS, 'a', 0, 100, "not open"},
        {PEER, KEY_SIDE_THEIRS, 't', 4, 0, "first_seq"}, /* below t's first sequence */
        {PEER, KEY_SIDE_THEIRS, 't', 1, 0, "first_seq"},
        {PEER, KEY_SIDE_THEIRS, 't', CORRIDOR_SEQUENCE_MAX + 1, 0, "2^62"},
        {PEER, KEY_SIDE_THEIRS, 't', UINT64_MAX, 0, "2^62"},
        {PEER, KEY_SIDE_THEIRS, 't', 6, -1, "negative"},
        {PEER, KEY_SIDE_THEIRS, 't', 0, INT64_MIN, "negative"},
        {PEER, KEY_SIDE_OURS, 'b', 13, 1000, "switched already"}, /* a switch happens once */
        {PEER, KEY_SIDE_OURS, 'b', 11, 1000, "switched already"},
        {PEER, KEY_SIDE_OURS, 'b', 0, 1000, "switched already"},
        {PEER, KEY_SIDE_OURS, 'b', 12, 2000, "switched already"},
        {PEER, KEY_SIDE_OURS, 'b', 12, 0, "switched already"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const uint8_t *id = refused[i].key == 'a'   ? a.key_id
                            : refused[i].key == 'b' ? b.key_id
                            : refused[i].key == 't' ? t.key_id
                                                    : unknown.key_id;
        if (key_switch1(l, refused[i].peer, refused[i].side, id, refused[i].seq, refused[i].ms) !=
            LEDGER_E_STATE) {
            fail_msg("refusal %zu was accepted", i);
        }
        if (strstr(ledger_last_error(l), refused[i].why) == NULL) {
            fail_msg("refusal %zu: '%s' does not say '%s'", i, ledger_last_error(l),
                     refused[i].why);
        }
    }
    assert_false(ledger_stopped(l));
    keys_seen_t seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 3);
    assert_key(&seen.keys[0], &a, 9, 0);
    assert_switch(&seen.keys[0], 0, 0);
    assert_key(&seen.keys[1], &b, 0, 0);
    assert_switch(&seen.keys[1], 12, 1000);
    assert_key(&seen.keys[2], &t, 0, 0);
    assert_switch(&seen.keys[2], 0, 0);

    /* in one transaction: a refusal between two writes leaves both */
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_set_switch(l, PEER, KEY_SIDE_THEIRS, t.key_id, 0, 7),
                     LEDGER_OK); /* allowed (ours would be the overlap), changed below */
    assert_int_equal(ledger_key_set_switch(l, PEER, KEY_SIDE_OURS, b.key_id, 13, 1000),
                     LEDGER_E_STATE);
    assert_int_equal(
        ledger_key_set_switch(l, PEER, KEY_SIDE_THEIRS, t.key_id, CORRIDOR_SEQUENCE_MAX, INT64_MAX),
        LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    seen = keys_of(l, PEER);
    assert_switch(&seen.keys[1], 12, 1000);
    assert_switch(&seen.keys[2], CORRIDOR_SEQUENCE_MAX, INT64_MAX);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

/* An open key that switched, revoked from its first sequence and replaced there, is closed
 * empty: the empty range bounds no switch, and the row reads back with it. */
static void test_keys_switch_closed_empty(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    key_record_t a = make_key(PEER, KEY_SIDE_THEIRS, 1, 1, "card");
    key_record_t b = make_key(PEER, KEY_SIDE_THEIRS, 2, 5, "announced");
    key_record_t c = make_key(PEER, KEY_SIDE_THEIRS, 3, 5, "replaced");
    assert_int_equal(key_add1(l, &a), LEDGER_OK);
    assert_int_equal(key_add1(l, &b), LEDGER_OK);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_THEIRS, b.key_id, 6, CREATED_MS), LEDGER_OK);
    assert_int_equal(key_add1(l, &c), LEDGER_E_STATE); /* not revoked there: refused */
    assert_int_equal(key_revoke1(l, PEER, KEY_SIDE_THEIRS, 5, NULL), LEDGER_OK);
    assert_int_equal(key_add1(l, &c), LEDGER_OK);
    ledger_close(&l);
    for (int reader = 0; reader < 2; reader++) {
        char err[256] = "";
        assert_int_equal(ledger_open(f->path, reader ? NULL : NODE,
                                     reader ? LEDGER_READ_ONLY : LEDGER_READ_WRITE, NULL, &l, err,
                                     sizeof err),
                         LEDGER_OK);
        keys_seen_t seen = keys_of(l, PEER);
        assert_int_equal(seen.n, 3);
        assert_key(&seen.keys[0], &a, 4, 0);
        assert_key(&seen.keys[1], &b, 4, 5);
        assert_switch(&seen.keys[1], 6, CREATED_MS);
        assert_key(&seen.keys[2], &c, 0, 0);
        assert_switch(&seen.keys[2], 0, 0);
        if (!reader) { /* closed now: it switches no more */
            assert_int_equal(key_switch1(l, PEER, KEY_SIDE_THEIRS, b.key_id, 6, CREATED_MS),
                             LEDGER_E_STATE);
        }
        ledger_close(&l);
    }
}

/* A ledger of schema 6 (keys without the switch) is read as it is, every key with no switch,
 * and gains the two columns, 0 in every row, when opened for writing: the same table as a new
 * ledger's, no journal row changed. */
static void test_keys_upgrade_from_schema_6(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_OUT, PEER, "RUB", 1234);
    ledger_outcome_t o;
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    key_record_t a = make_key(PEER, KEY_SIDE_OURS, 1, 1, "card");
    key_record_t b = make_key(PEER, KEY_SIDE_OURS, 2, 10, "announced");
    key_record_t t = make_key(PEER, KEY_SIDE_THEIRS, 3, 5, "announced");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &a), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &b), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &t), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    uint8_t head[LEDGER_HASH_BYTES], head_after[LEDGER_HASH_BYTES];
    assert_int_equal(ledger_head(l, head, NULL), LEDGER_OK);
    char *fresh = sql_text(l, KEYS_LAYOUT);
    assert_int_equal(sql_int(l, KEYS_SWITCH_COLUMNS), 2);
    ledger_close(&l);
    make_sqlite_file(f->path, "BEGIN; " UNDO_SCHEMA_8 " ALTER TABLE keys DROP COLUMN switch_seq;"
                              " ALTER TABLE keys DROP COLUMN switch_ms;"
                              " PRAGMA user_version = 6; COMMIT;");

    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), 6); /* a reader changes nothing */
    assert_int_equal(sql_int(l, KEYS_SWITCH_COLUMNS), 0);
    for (int whose = 0; whose < 2; whose++) {
        keys_seen_t seen = keys_of(l, whose ? PEER : NULL);
        assert_int_equal(seen.n, 3);
        assert_key(&seen.keys[0], &a, 9, 0);
        assert_key(&seen.keys[1], &b, 0, 0);
        assert_key(&seen.keys[2], &t, 0, 0);
        for (size_t i = 0; i < seen.n; i++) {
            assert_switch(&seen.keys[i], 0, 0);
        }
    }
    assert_int_equal(ledger_key_set_switch(l, PEER, KEY_SIDE_OURS, b.key_id, 12, 0),
                     LEDGER_E_READONLY);
    assert_int_equal(ledger_find(l, PEER, s.uetr, &(settlement_t){0}, &o), LEDGER_OK);
    ledger_close(&l);

    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    char *upgraded = sql_text(l, KEYS_LAYOUT);
    assert_string_equal(upgraded, fresh);
    free(upgraded);
    free(fresh);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM keys WHERE switch_seq = 0 AND"
                                " switch_ms = 0"),
                     3);
    assert_int_equal(ledger_head(l, head_after, NULL), LEDGER_OK); /* no row changed */
    assert_memory_equal(head, head_after, sizeof head);
    keys_seen_t seen = keys_of(l, NULL);
    assert_int_equal(seen.n, 3);
    assert_key(&seen.keys[1], &b, 0, 0);
    assert_switch(&seen.keys[1], 0, 0);
    assert_int_equal(send1(l, &s, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_OURS, b.key_id, 12, 5000), LEDGER_OK);
    assert_int_equal(key_switch1(l, PEER, KEY_SIDE_THEIRS, t.key_id, 7, CREATED_MS), LEDGER_OK);
    ledger_close(&l);

    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 3);
    assert_switch(&seen.keys[0], 0, 0);
    assert_switch(&seen.keys[1], 12, 5000);
    assert_switch(&seen.keys[2], 7, CREATED_MS);
    ledger_close(&l);
}

/* ---- key replacement (PROTOCOL.md 2.15) ------------------------------------------------------ */

/* The card of the fixed keys `tag` (test_fixed_identity) under `name`. */
static peer_card_t card_of(const char *name, uint8_t tag)
{
    identity_t *id = test_fixed_identity(tag);
    peer_card_t card;
    identity_card(id, name, "tcp://127.0.0.1:7000", &card);
    identity_destroy(&id);
    return card;
}

/* The record of a card's keys on `side` of its channel, as a replacement writes it; an
 * "announced" one carries the announcement as evidence. */
static key_record_t key_of_card(const peer_card_t *card, key_side_t side, uint64_t first_seq,
                                const char *source)
{
    key_record_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.peer, sizeof k.peer, "%s", card->name);
    k.side = side;
    memcpy(k.sign_public, card->sign_public, sizeof k.sign_public);
    identity_key_id(k.sign_public, k.key_id);
    memcpy(k.box_public, card->box_public, sizeof k.box_public);
    snprintf(k.curve_public, sizeof k.curve_public, "%s", card->curve_public);
    k.first_seq = first_seq;
    snprintf(k.source, sizeof k.source, "%s", source);
    if (strcmp(source, "announced") == 0) {
        k.evidence = announcement;
        k.evidence_len = ANNOUNCEMENT_LEN;
    }
    return k;
}

/* The same record for our own keys `id` towards `peer`. */
static key_record_t key_of_identity(const identity_t *id, const char *peer, uint64_t first_seq,
                                    const char *source)
{
    peer_card_t card;
    identity_card(id, peer, "tcp://127.0.0.1:7000", &card);
    return key_of_card(&card, KEY_SIDE_OURS, first_seq, source);
}

/* The channel with `peer` has applied the peer's messages through `applied`. */
static void set_applied(ledger_t *l, const char *peer, uint64_t applied)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_channel_set_applied(l, peer, applied, NULL, 0), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

/* replace_peer_key in a transaction of its own, committed whatever it returns (a refusal
 * must have written nothing). */
static ledger_err_t replace_peer1(ledger_t *l, const peer_card_t *trusted, const peer_card_t *card,
                                  uint64_t revoke_from, key_replaced_t *out)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = replace_peer_key(l, trusted, card, revoke_from, out);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t replace_own1(ledger_t *l, const char *peer, const identity_t *current,
                                 const identity_t *next, key_replaced_t *out)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = replace_own_key(l, peer, current, next, out);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

/* Both rows as `want` says, read back by a writer and by a reader of the file. */
static void assert_keys_reopened(ledger_t **l, const char *path, const char *peer,
                                 const key_record_t *want, const uint64_t *last_seq,
                                 const uint64_t *revoked_from, size_t n)
{
    ledger_close(l);
    for (int reader = 0; reader < 2; reader++) {
        char err[256] = "";
        assert_int_equal(ledger_open(path, reader ? NULL : NODE,
                                     reader ? LEDGER_READ_ONLY : LEDGER_READ_WRITE, NULL, l, err,
                                     sizeof err),
                         LEDGER_OK);
        keys_seen_t seen = keys_of(*l, peer);
        assert_int_equal(seen.n, n);
        for (size_t i = 0; i < n; i++) {
            assert_key(&seen.keys[i], &want[i], last_seq[i], revoked_from[i]);
        }
        ledger_close(l);
    }
    *l = open_ledger(path);
}

/* A channel that applied the peer's messages 1 to 5 and holds no key history: the trusted
 * card's key is recorded as signing 1 to 5 and revoked from 6 (or from --from), the new key
 * from 6; the file reads back so, for a writer and a reader. */
static void test_replace_peer_key_without_history(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    set_applied(l, PEER, 5);
    set_applied(l, PEER_OTHER, 5);
    peer_card_t trusted = card_of(PEER, 1), card = card_of(PEER, 2);
    key_replaced_t out;
    assert_int_equal(replace_peer1(l, &trusted, &card, 0, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_int_equal(out.first_seq, 6);
    key_record_t want[2] = {key_of_card(&trusted, KEY_SIDE_THEIRS, 1, "card"),
                            key_of_card(&card, KEY_SIDE_THEIRS, 6, "replaced")};
    assert_memory_equal(out.replaced_key_id, want[0].key_id, IDENTITY_KEY_ID_BYTES);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 2);
    assert_key(&seen.keys[0], &want[0], 5, 6);
    assert_key(&seen.keys[1], &want[1], 0, 0);

    /* revoked from an earlier number (--from 3): the old key's range stays 1 to 5 */
    peer_card_t trusted_other = card_of(PEER_OTHER, 1), card_other = card_of(PEER_OTHER, 2);
    assert_int_equal(replace_peer1(l, &trusted_other, &card_other, 3, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_int_equal(out.first_seq, 6);
    key_record_t want_other[2] = {key_of_card(&trusted_other, KEY_SIDE_THEIRS, 1, "card"),
                                  key_of_card(&card_other, KEY_SIDE_THEIRS, 6, "replaced")};
    seen = keys_of(l, PEER_OTHER);
    assert_int_equal(seen.n, 2);
    assert_key(&seen.keys[0], &want_other[0], 5, 3);
    assert_key(&seen.keys[1], &want_other[1], 0, 0);
    /* our own side of either channel is untouched */
    for (size_t i = 0; i < seen.n; i++) {
        assert_int_equal(seen.keys[i].side, KEY_SIDE_THEIRS);
    }

    assert_keys_reopened(&l, f->path, PEER, want, (uint64_t[]){5, 0}, (uint64_t[]){6, 0}, 2);
    assert_keys_reopened(&l, f->path, PEER_OTHER, want_other, (uint64_t[]){5, 0},
                         (uint64_t[]){3, 0}, 2);
    ledger_close(&l);
}

/* The peer announced K2 from 6 and nothing of K2's was applied (applied 5) when its operator
 * replaces it: K2 signs nothing, closed with the empty range 6..5 and revoked from 6, before
 * the new key from 6, and reads back in that order, also from a reader. A second replacement
 * at the same number closes the first one the same way (the order of the two empty keys,
 * which ledger_keys does not define, is not asserted here). */
static void test_replace_peer_key_unused_key_empty(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    peer_card_t trusted = card_of(PEER, 1), k2 = card_of(PEER, 2), card = card_of(PEER, 3);
    key_record_t want[4] = {key_of_card(&trusted, KEY_SIDE_THEIRS, 1, "card"),
                            key_of_card(&k2, KEY_SIDE_THEIRS, 6, "announced"),
                            key_of_card(&card, KEY_SIDE_THEIRS, 6, "replaced")};
    assert_int_equal(ledger_begin(l), LEDGER_OK); /* as the channel records an announcement */
    assert_int_equal(ledger_key_add(l, &want[0]), LEDGER_OK);
    assert_int_equal(ledger_key_add(l, &want[1]), LEDGER_OK);
    assert_int_equal(ledger_channel_set_applied(l, PEER, 5, NULL, 0), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);

    key_replaced_t out;
    assert_int_equal(replace_peer1(l, &trusted, &card, 0, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_int_equal(out.first_seq, 6);
    assert_memory_equal(out.replaced_key_id, want[1].key_id, IDENTITY_KEY_ID_BYTES);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 3);
    assert_key(&seen.keys[0], &want[0], 5, 0); /* signed 1 to 5, not revoked from 6 */
    assert_key(&seen.keys[1], &want[1], 5, 6); /* 6..5: signs nothing */
    assert_key(&seen.keys[2], &want[2], 0, 0);
    assert_keys_reopened(&l, f->path, PEER, want, (uint64_t[]){5, 5, 0}, (uint64_t[]){0, 6, 0}, 3);

    /* replaced again before anything was applied: the first replacement signs nothing */
    peer_card_t again = card_of(PEER, 4);
    want[3] = key_of_card(&again, KEY_SIDE_THEIRS, 6, "replaced");
    assert_int_equal(replace_peer1(l, &trusted, &again, 0, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_memory_equal(out.replaced_key_id, want[2].key_id, IDENTITY_KEY_ID_BYTES);
    seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 4);
    assert_key(&seen.keys[0], &want[0], 5, 0);
    assert_key(&seen.keys[3], &want[3], 0, 0);
    for (size_t i = 1; i < 3; i++) { /* both empty and revoked, in either order */
        assert_int_equal(seen.keys[i].first_seq, 6);
        assert_int_equal(seen.keys[i].last_seq, 5);
        assert_int_equal(seen.keys[i].revoked_from, 6);
    }
    ledger_close(&l);
}

/* What replace_peer_key refuses (LEDGER_E_STATE, saying why), writing nothing: a revocation
 * from past the first number not applied, a card whose key the history holds already (or the
 * trusted card itself), a second replacement from 1 with nothing applied since. */
static void test_replace_peer_key_refusals(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    set_applied(l, PEER, 5);
    peer_card_t trusted = card_of(PEER, 1), card = card_of(PEER, 2), k2 = card_of(PEER, 3);
    key_replaced_t out;
    assert_int_equal(replace_peer1(l, &trusted, &card, 7, &out), LEDGER_E_STATE);
    assert_non_null(out.refused);
    assert_non_null(strstr(out.refused, "revocation"));
    assert_int_equal(keys_of(l, PEER).n, 0);
    assert_int_equal(replace_peer1(l, &trusted, &trusted, 0, &out), LEDGER_E_STATE);
    assert_non_null(out.refused);
    assert_int_equal(keys_of(l, PEER).n, 0);

    /* a key of the peer's history: the announced one, and the card's */
    key_record_t history[2] = {key_of_card(&trusted, KEY_SIDE_THEIRS, 1, "card"),
                               key_of_card(&k2, KEY_SIDE_THEIRS, 4, "announced")};
    assert_int_equal(key_add1(l, &history[0]), LEDGER_OK);
    assert_int_equal(key_add1(l, &history[1]), LEDGER_OK);
    const peer_card_t *known[] = {&k2, &trusted};
    for (size_t i = 0; i < 2; i++) {
        out.refused = NULL;
        assert_int_equal(replace_peer1(l, &trusted, known[i], 0, &out), LEDGER_E_STATE);
        assert_non_null(out.refused);
        assert_non_null(strstr(out.refused, "already"));
        keys_seen_t seen = keys_of(l, PEER);
        assert_int_equal(seen.n, 2);
        assert_key(&seen.keys[0], &history[0], 3, 0);
        assert_key(&seen.keys[1], &history[1], 0, 0);
    }
    /* the refusals changed nothing the real one then does */
    assert_int_equal(replace_peer1(l, &trusted, &card, 0, &out), LEDGER_OK);
    assert_int_equal(keys_of(l, PEER).n, 3);

    /* nothing applied: the first replacement signs from 1; a second one there is refused */
    peer_card_t other_trusted = card_of(PEER_OTHER, 1), first = card_of(PEER_OTHER, 2),
                second = card_of(PEER_OTHER, 3);
    assert_int_equal(replace_peer1(l, &other_trusted, &first, 0, &out), LEDGER_OK);
    assert_null(out.refused);
    assert_int_equal(out.first_seq, 1);
    key_record_t first_key = key_of_card(&first, KEY_SIDE_THEIRS, 1, "replaced");
    keys_seen_t seen = keys_of(l, PEER_OTHER);
    assert_int_equal(seen.n, 1);
    assert_key(&seen.keys[0], &first_key, 0, 0);
    assert_int_equal(replace_peer1(l, &other_trusted, &second, 0, &out), LEDGER_E_STATE);
    assert_non_null(out.refused);
    assert_non_null(strstr(out.refused, "replaced already"));
    seen = keys_of(l, PEER_OTHER);
    assert_int_equal(seen.n, 1);
    assert_key(&seen.keys[0], &first_key, 0, 0);
    assert_false(ledger_stopped(l));
    ledger_close(&l);
}

/* Our own keys replaced after message 7 queued: the old key signs 1 to 7 (revoked from 8),
 * the new one from 8. An empty range on a row that is not revoked there is no row
 * ledger_key_add writes: an edited file, LEDGER_E_CORRUPT. */
static void test_replace_own_key_and_damaged_empty_range(void **state)
{
    fixture_t *f = *state;
    identity_t *current = test_fixed_identity(1), *next = test_fixed_identity(2);
    /* each edit, and whether it leaves a row ledger_key_add could have written */
    static const struct {
        const char *sql;
        bool corrupt;
    } damages[] = {
        /* the open key closed before its first number, not revoked */
        {"UPDATE keys SET last_seq = first_seq - 1 WHERE side = 0 AND source = 'replaced'", true},
        /* the empty key, its revocation taken away or moved past its first number */
        {"UPDATE keys SET revoked_from = 0 WHERE side = 1 AND source = 'announced'", true},
        {"UPDATE keys SET revoked_from = first_seq + 1 WHERE side = 1 AND source = 'announced'",
         true},
        /* revoked before its first number: still a key that signs nothing */
        {"UPDATE keys SET revoked_from = 2 WHERE side = 1 AND source = 'announced'", false},
        /* the open key, closed empty and revoked there: a row a replacement writes */
        {"UPDATE keys SET last_seq = 7, revoked_from = 8 WHERE side = 0 AND source = 'replaced'",
         false},
    };
    for (size_t d = 0; d <= sizeof damages / sizeof damages[0]; d++) {
        char name[32];
        snprintf(name, sizeof name, "own-%zu.db", d);
        char *path = test_path(f->dir, name);
        ledger_t *l = open_as(f->dir, name, NODE);
        put_outbox(l, PEER, 1, 7);
        key_replaced_t out;
        assert_int_equal(replace_own1(l, PEER, current, next, &out), LEDGER_OK);
        assert_null(out.refused);
        assert_int_equal(out.first_seq, 8);
        assert_memory_equal(out.replaced_key_id, current->key_id, IDENTITY_KEY_ID_BYTES);
        key_record_t ours[2] = {key_of_identity(current, PEER, 1, "card"),
                                key_of_identity(next, PEER, 8, "replaced")};
        keys_seen_t seen = keys_of(l, PEER);
        assert_int_equal(seen.n, 2);
        assert_key(&seen.keys[0], &ours[0], 7, 8);
        assert_key(&seen.keys[1], &ours[1], 0, 0);
        /* the peer's side: an announced key that signed nothing, replaced (6..5) */
        peer_card_t trusted = card_of(PEER, 3), k2 = card_of(PEER, 4), card = card_of(PEER, 5);
        key_record_t theirs[2] = {key_of_card(&trusted, KEY_SIDE_THEIRS, 1, "card"),
                                  key_of_card(&k2, KEY_SIDE_THEIRS, 6, "announced")};
        assert_int_equal(key_add1(l, &theirs[0]), LEDGER_OK);
        assert_int_equal(key_add1(l, &theirs[1]), LEDGER_OK);
        set_applied(l, PEER, 5);
        assert_int_equal(replace_peer1(l, &trusted, &card, 0, &out), LEDGER_OK);
        assert_int_equal(keys_of(l, PEER).n, 5);
        ledger_close(&l);
        if (d == sizeof damages / sizeof damages[0]) { /* undamaged: it reads back */
            char err[256] = "";
            assert_int_equal(ledger_open(path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                             LEDGER_OK);
            seen = keys_of(l, PEER);
            assert_int_equal(seen.n, 5);
            assert_key(&seen.keys[0], &ours[0], 7, 8);
            assert_key(&seen.keys[1], &ours[1], 0, 0);
            assert_key(&seen.keys[3], &theirs[1], 5, 6);
            ledger_close(&l);
            free(path);
            continue;
        }
        make_sqlite_file(path, damages[d].sql);
        l = open_as(f->dir, name, NODE);
        memset(&seen, 0, sizeof seen);
        ledger_err_t want_rc = damages[d].corrupt ? LEDGER_E_CORRUPT : LEDGER_OK;
        if (ledger_keys(l, PEER, collect_key, &seen) != want_rc) {
            fail_msg("%s: %s", damages[d].sql,
                     damages[d].corrupt ? "not found damaged" : "refused");
        }
        if (damages[d].corrupt) {
            assert_non_null(strstr(ledger_last_error(l), "damaged key row"));
        } else {
            assert_int_equal(seen.n, 5);
        }
        assert_false(ledger_stopped(l));
        ledger_close(&l);
        char err[256] = "";
        assert_int_equal(ledger_open(path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                         LEDGER_OK);
        memset(&seen, 0, sizeof seen);
        assert_int_equal(ledger_keys(l, NULL, collect_key, &seen), want_rc);
        ledger_close(&l);
        free(path);
    }

    /* replaced from 1 with nothing queued, then again: refused, nothing written */
    ledger_t *l = open_as(f->dir, "own-twice.db", NODE);
    identity_t *third = test_fixed_identity(3);
    key_replaced_t out;
    assert_int_equal(replace_own1(l, PEER, current, next, &out), LEDGER_OK);
    assert_int_equal(out.first_seq, 1);
    assert_int_equal(replace_own1(l, PEER, next, third, &out), LEDGER_E_STATE);
    assert_non_null(out.refused);
    keys_seen_t seen = keys_of(l, PEER);
    assert_int_equal(seen.n, 1);
    key_record_t only = key_of_identity(next, PEER, 1, "replaced");
    assert_key(&seen.keys[0], &only, 0, 0);
    ledger_close(&l);
    identity_destroy(&third);
    identity_destroy(&current);
    identity_destroy(&next);
}

/* ---- main ----------------------------------------------------------------------------------- */

/* ---- FX trades (PROTOCOL.md 3.10) ---------------------------------------------------------- */

/* The legs of a trade: we pay `pay` RUB and receive `receive` IRR when `dir` is out (we
 * propose), the peer pays RUB and receives IRR when it is in (we accept); body hash set. */
static void make_fx(direction_t dir, int64_t pay, int64_t receive, settlement_t legs[2])
{
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    uetr_generate(t.fx_id);
    uetr_generate(t.legs[FX_PAY].uetr);
    uetr_generate(t.legs[FX_RECEIVE].uetr);
    snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "RUB");
    snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "IRR");
    t.legs[FX_PAY].amount_minor = pay;
    t.legs[FX_RECEIVE].amount_minor = receive;
    t.created_unix_ms = CREATED_MS;
    t.expires_unix_ms = CREATED_MS + 60000;
    fx_trade_prepare(&t, PEER);
    assert_int_equal(fx_check(&t), REASON_NONE);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(fx_encode(&t, &body, &len), 0);
    free(body);
    for (int i = 0; i < 2; i++) {
        t.legs[i].direction = dir;
        legs[i] = t.legs[i];
    }
}

static ledger_err_t fx_propose1(ledger_t *l, const settlement_t legs[2], int64_t cap,
                                const char **why, ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_fx_propose(l, legs, cap, evidence, EVIDENCE_LEN, 5, why, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

static ledger_err_t fx_receive1(ledger_t *l, const settlement_t legs[2], int64_t cap,
                                const char *reject, const char *hold, ledger_outcome_t *o)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    ledger_err_t rc = ledger_fx_receive(l, legs, cap, reject, hold, evidence, EVIDENCE_LEN, 6, o);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    return rc;
}

/* The acceptor's answer applied to both legs at the proposer, as apply_fx_answer does. */
static void fx_answer1(ledger_t *l, const settlement_t legs[2], bool settled, const char *reason)
{
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    /* a leg never resolves alone */
    assert_int_equal(ledger_resolve_answering(l, PEER, legs[0].uetr, legs[0].original_hash, settled,
                                              reason, evidence, EVIDENCE_LEN, 7, &o),
                     LEDGER_E_STATE);
    assert_int_equal(ledger_fx_resolve(l, PEER, legs[0].fx_id, legs[0].original_hash,
                                       settled ? STATUS_SETTLED : STATUS_REJECTED, reason, evidence,
                                       EVIDENCE_LEN, 7, &o),
                     LEDGER_OK);
    assert_int_equal(o.status, settled ? STATUS_SETTLED : STATUS_REJECTED);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

/* Both legs of `fx_id` found, sharing `status`. */
static void assert_fx_status(ledger_t *l, const settlement_t legs[2], status_t status)
{
    settlement_t got[2];
    ledger_outcome_t o;
    assert_int_equal(ledger_fx_find(l, PEER, legs[0].fx_id, got, &o), LEDGER_OK);
    assert_int_equal(o.status, status);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(got[i].uetr, legs[i].uetr);
        assert_string_equal(got[i].fx_id, legs[i].fx_id);
        assert_int_equal(got[i].fx_leg, legs[i].fx_leg);
        assert_int_equal(got[i].amount_minor, legs[i].amount_minor);
        assert_string_equal(got[i].currency, legs[i].currency);
        assert_int_equal(got[i].direction, legs[i].direction);
        assert_memory_equal(got[i].original_hash, legs[i].original_hash, SETTLEMENT_HASH_BYTES);
        ledger_outcome_t leg;
        settlement_t s;
        assert_int_equal(ledger_find(l, PEER, legs[i].uetr, &s, &leg), LEDGER_OK);
        assert_int_equal(leg.status, status);
    }
}

/* The proposer reserves the leg the peer will pay it in the cap it grants the peer: a payment of
 * the peer's that fits the cap alone is refused AM02 while the trade is pending and fits once the
 * trade is refused; a trade over the cap is refused with nothing written. */
static void test_fx_propose_reserves(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t legs[2];
    make_fx(DIRECTION_OUT, 1000000, 700, legs);
    const char *why = "unset";
    ledger_outcome_t o;
    assert_int_equal(fx_propose1(l, legs, 1000, &why, &o), LEDGER_OK);
    assert_null(why);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_fx_status(l, legs, STATUS_PENDING);
    assert_int_equal(rows_of(l), 2);
    ledger_counts_t c = counts_of(l);
    assert_int_equal(c.fx[STATUS_PENDING], 1);
    /* the proposer makes fresh ids: one used already is a conflict, nothing written */
    assert_int_equal(fx_propose1(l, legs, 1000, &why, &o), LEDGER_E_CONFLICT);
    assert_int_equal(rows_of(l), 2);

    settlement_t in = make_settlement(DIRECTION_IN, PEER, "IRR", 400);
    bool over = false;
    assert_int_equal(ledger_cap_exceeded(l, PEER, "IRR", 300, 1000, &over), LEDGER_OK);
    assert_false(over);
    assert_int_equal(ledger_cap_exceeded(l, PEER, "IRR", 301, 1000, &over), LEDGER_OK);
    assert_true(over);
    assert_int_equal(ledger_cap_exceeded(l, PEER, "RUB", 1000, 1000, &over), LEDGER_OK);
    assert_false(over); /* the leg we pay reserves nothing of the peer's cap */
    assert_int_equal(receive1(l, &in, 1000, NULL, &o), LEDGER_OK); /* 700 + 400 > 1000 */
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    /* a second trade reserving over what is left is refused, nothing written */
    settlement_t more[2];
    make_fx(DIRECTION_OUT, 1000, 301, more);
    snapshot_t before = snapshot_of(l);
    assert_int_equal(fx_propose1(l, more, 1000, &why, &o), LEDGER_OK);
    assert_non_null(why);
    assert_string_equal(why, "AM02");
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    settlement_t got[2];
    assert_int_equal(ledger_fx_find(l, PEER, more[0].fx_id, got, &o), LEDGER_E_NOT_FOUND);

    /* refused by the peer: the reservation is released */
    fx_answer1(l, legs, false, "AG01");
    assert_fx_status(l, legs, STATUS_REJECTED);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_position(l, PEER, "IRR", 0, 0);
    settlement_t in2 = make_settlement(DIRECTION_IN, PEER, "IRR", 400);
    assert_int_equal(receive1(l, &in2, 1000, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    c = counts_of(l);
    assert_int_equal(c.fx[STATUS_PENDING], 0);
    assert_int_equal(c.fx[STATUS_REJECTED], 1);
    assert_balanced(l);
    ledger_close(&l);
}

/* Accepted, both legs post at the proposer: it pays RUB and is owed IRR. */
static void test_fx_propose_settles(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t legs[2];
    make_fx(DIRECTION_OUT, 1000000, 450000000, legs);
    const char *why = "unset";
    ledger_outcome_t o;
    assert_int_equal(fx_propose1(l, legs, 450000000, &why, &o), LEDGER_OK);
    assert_null(why);
    assert_position(l, PEER, "RUB", 0, -1000000);
    fx_answer1(l, legs, true, NULL);
    assert_fx_status(l, legs, STATUS_SETTLED);
    assert_position(l, PEER, "RUB", -1000000, 0);
    assert_position(l, PEER, "IRR", 450000000, 0);
    assert_int_equal(rows_of(l), 4);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM journal WHERE kind = 1"), 2);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM journal WHERE kind = 2"), 2);
    /* the journal row of the leg the peer pays carries its amount negated */
    assert_int_equal(sql_int(l, "SELECT sum(amount_minor) FROM journal WHERE kind = 2"),
                     1000000 - 450000000);
    /* the IRR the peer owes us now fills the cap we grant it */
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "IRR", 1);
    assert_int_equal(receive1(l, &in, 450000000, NULL, &o), LEDGER_OK);
    assert_string_equal(o.reason, "AM02");
    ledger_counts_t c = counts_of(l);
    assert_int_equal(c.fx[STATUS_SETTLED], 1);
    assert_balanced(l);
    ledger_close(&l);
}

typedef struct {
    size_t n;
    settlement_t legs[4][2];
    ledger_outcome_t o[4];
} fx_seen_t;

static void see_fx(const settlement_t legs[2], const ledger_outcome_t *o, void *arg)
{
    fx_seen_t *seen = arg;
    assert_true(seen->n < 4);
    seen->legs[seen->n][0] = legs[0];
    seen->legs[seen->n][1] = legs[1];
    seen->o[seen->n++] = *o;
}

/* The acceptor books both legs or neither: accepted, positions move in both currencies; a
 * repeat is repeated; a leg's UETR or the trade's id used again with other content is a
 * CONFLICT with nothing written; over the cap both are refused AM02; held both wait. */
static void test_fx_receive_both_or_neither(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t legs[2];
    make_fx(DIRECTION_IN, 1000000, 450000000, legs);
    ledger_outcome_t o;
    assert_int_equal(fx_receive1(l, legs, 1000000, NULL, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_false(o.repeated);
    assert_fx_status(l, legs, STATUS_SETTLED);
    /* the peer paid us RUB, we paid it IRR */
    assert_position(l, PEER, "RUB", 1000000, 0);
    assert_position(l, PEER, "IRR", -450000000, 0);
    assert_int_equal(rows_of(l), 2);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM journal WHERE kind = 4"), 2);

    /* a repeat: the stored outcome, nothing written */
    snapshot_t before = snapshot_of(l);
    assert_int_equal(fx_receive1(l, legs, 1000000, NULL, NULL, &o), LEDGER_OK);
    assert_true(o.repeated);
    assert_int_equal(o.status, STATUS_SETTLED);
    snapshot_t after = snapshot_of(l);
    assert_same_snapshot(&before, &after);

    /* reuse of a leg's uetr, of the trade's id, other amounts: CONFLICT, nothing written */
    for (int which = 0; which < 4; which++) {
        settlement_t other[2];
        make_fx(DIRECTION_IN, 2000, 900000, other);
        if (which < 2) {
            snprintf(other[which].uetr, sizeof other[which].uetr, "%s", legs[which].uetr);
        } else if (which == 2) {
            for (int i = 0; i < 2; i++) {
                snprintf(other[i].fx_id, sizeof other[i].fx_id, "%s", legs[0].fx_id);
            }
        } else {
            other[0] = legs[0];
            other[1] = legs[1];
            other[1].amount_minor++;
        }
        assert_int_equal(fx_receive1(l, other, 1000000, NULL, NULL, &o), LEDGER_E_CONFLICT);
        after = snapshot_of(l);
        assert_same_snapshot(&before, &after);
    }
    /* a payment may not take a leg's uetr either, nor the trade's id (an answer names it) */
    settlement_t p = make_settlement(DIRECTION_IN, PEER, "RUB", 5);
    snprintf(p.uetr, sizeof p.uetr, "%s", legs[1].uetr);
    assert_int_equal(receive1(l, &p, 1000000, NULL, &o), LEDGER_E_CONFLICT);
    after = snapshot_of(l);
    assert_same_snapshot(&before, &after);
    snprintf(p.uetr, sizeof p.uetr, "%s", legs[0].fx_id);
    assert_int_equal(receive1(l, &p, 1000000, NULL, &o), LEDGER_E_CONFLICT);
    settlement_t q = make_settlement(DIRECTION_OUT, PEER, "RUB", 5);
    snprintf(q.uetr, sizeof q.uetr, "%s", legs[0].fx_id);
    assert_int_equal(send1(l, &q, &o), LEDGER_E_CONFLICT);
    after = snapshot_of(l);
    assert_same_snapshot(&before, &after);

    /* the peer's RUB leg over what is left of the cap: both refused AM02, no money moves */
    settlement_t big[2];
    make_fx(DIRECTION_IN, 1, 450, big);
    assert_int_equal(fx_receive1(l, big, 1000000, NULL, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "AM02");
    assert_fx_status(l, big, STATUS_REJECTED);
    assert_position(l, PEER, "RUB", 1000000, 0);
    assert_position(l, PEER, "IRR", -450000000, 0);
    /* the caller's reason: both refused with it */
    settlement_t band[2];
    make_fx(DIRECTION_IN, 100, 100, band);
    assert_int_equal(fx_receive1(l, band, 10000000, "AG01", NULL, &o), LEDGER_OK);
    assert_string_equal(o.reason, "AG01");
    assert_fx_status(l, band, STATUS_REJECTED);
    /* held for review: both held, pending in both currencies */
    settlement_t held[2];
    make_fx(DIRECTION_IN, 300, 400, held);
    assert_int_equal(fx_receive1(l, held, 10000000, NULL, LEDGER_HOLD_REVIEW, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_HELD);
    assert_string_equal(o.hold, LEDGER_HOLD_REVIEW);
    assert_fx_status(l, held, STATUS_HELD);
    assert_position(l, PEER, "RUB", 1000000, 300);
    assert_position(l, PEER, "IRR", -450000000, -400);
    /* released: both post */
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            ledger_decide_held(l, PEER, held[i].uetr, NULL, evidence, EVIDENCE_LEN, NULL, 9, &o),
            LEDGER_OK);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_fx_status(l, held, STATUS_SETTLED);
    assert_position(l, PEER, "RUB", 1000300, 0);
    assert_position(l, PEER, "IRR", -450000400, 0);

    fx_seen_t seen = {0};
    assert_int_equal(ledger_fx_trades(l, see_fx, &seen), LEDGER_OK);
    assert_int_equal(seen.n, 4);
    size_t settled = 0;
    for (size_t i = 0; i < seen.n; i++) {
        assert_string_equal(seen.legs[i][0].fx_id, seen.legs[i][1].fx_id);
        assert_int_equal(seen.legs[i][0].fx_leg, FX_LEG_PROPOSER_PAYS);
        assert_int_equal(seen.legs[i][1].fx_leg, FX_LEG_ACCEPTOR_PAYS);
        settled += seen.o[i].status == STATUS_SETTLED;
    }
    assert_int_equal(settled, 2);
    ledger_counts_t c = counts_of(l);
    assert_int_equal(c.fx[STATUS_SETTLED], 2);
    assert_int_equal(c.fx[STATUS_REJECTED], 2);
    assert_balanced(l);
    ledger_close(&l);
}

/* A ledger of schema 9 (no fx_id, fx_leg) keeps its rows and head through the upgrade to 10,
 * and takes trades after it. */
static void test_fx_upgrade_from_schema_9(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    settlement_t s = make_settlement(DIRECTION_IN, PEER, "RUB", 1234);
    settlement_t t = make_settlement(DIRECTION_OUT, PEER, "IRR", 99);
    ledger_outcome_t o;
    assert_int_equal(receive1(l, &s, 1000000, NULL, &o), LEDGER_OK);
    assert_int_equal(send1(l, &t, &o), LEDGER_OK);
    uint8_t head[LEDGER_HASH_BYTES], head_after[LEDGER_HASH_BYTES];
    assert_int_equal(ledger_head(l, head, NULL), LEDGER_OK);
    ledger_close(&l);
    make_sqlite_file(f->path, "BEGIN; " UNDO_SCHEMA_10 " PRAGMA user_version = 9; COMMIT;");
    char err[256] = "";
    assert_int_equal(ledger_open(f->path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err),
                     LEDGER_OK);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), 9);
    settlement_t got;
    assert_int_equal(ledger_find(l, PEER, s.uetr, &got, &o), LEDGER_OK);
    assert_false(settlement_is_fx_leg(&got));
    assert_int_equal(o.status, STATUS_SETTLED);
    ledger_counts_t counts;
    assert_int_equal(ledger_counts(l, &counts), LEDGER_OK);
    assert_int_equal(counts.settled, 1);
    assert_int_equal(counts.pending, 1);
    assert_int_equal(counts.fx[STATUS_SETTLED] + counts.fx[STATUS_PENDING], 0);
    fx_seen_t seen = {0};
    assert_int_equal(ledger_fx_trades(l, see_fx, &seen), LEDGER_OK);
    assert_int_equal(seen.n, 0);
    ledger_close(&l);

    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    assert_int_equal(sql_int(l, "SELECT count(*) FROM settlements WHERE fx_id = '' AND"
                                " fx_leg = 0"),
                     2);
    assert_int_equal(ledger_head(l, head_after, NULL), LEDGER_OK);
    assert_memory_equal(head, head_after, sizeof head);
    assert_int_equal(ledger_find(l, PEER, t.uetr, &got, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
    assert_int_equal(got.amount_minor, 99);
    assert_position(l, PEER, "RUB", 1234, 0);
    assert_position(l, PEER, "IRR", 0, -99);
    settlement_t legs[2];
    make_fx(DIRECTION_IN, 1000, 2000, legs);
    assert_int_equal(fx_receive1(l, legs, 1000000, NULL, NULL, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_fx_status(l, legs, STATUS_SETTLED);
    assert_position(l, PEER, "RUB", 2234, 0);
    assert_balanced(l);
    ledger_close(&l);
}

/* ---- settlement cycles (PROTOCOL.md 3.11) -----------------------------------------------------
 */

typedef struct {
    size_t n;
    ledger_cycle_figure_t f[CYCLE_CURRENCIES_MAX];
} running_seen_t;

static void see_running(const ledger_cycle_figure_t *fig, void *arg)
{
    running_seen_t *seen = arg;
    assert_true(seen->n < CYCLE_CURRENCIES_MAX);
    seen->f[seen->n++] = *fig;
}

/* The running figure of `currency` (zeros when there is none). */
static ledger_cycle_figure_t running_of(ledger_t *l, const char *currency)
{
    running_seen_t seen = {0};
    assert_int_equal(ledger_cycle_running(l, PEER, see_running, &seen), LEDGER_OK);
    ledger_cycle_figure_t none = {0};
    for (size_t i = 0; i < seen.n; i++) {
        if (strcmp(seen.f[i].currency, currency) == 0) {
            return seen.f[i];
        }
    }
    return none;
}

static void assert_running(ledger_t *l, const char *currency, int64_t paid, int64_t received,
                           uint64_t count)
{
    ledger_cycle_figure_t r = running_of(l, currency);
    if (r.paid != paid || r.received != received || r.count != count) {
        fail_msg("running %s: paid %lld received %lld count %llu, expected %lld %lld %llu",
                 currency, (long long)r.paid, (long long)r.received, (unsigned long long)r.count,
                 (long long)paid, (long long)received, (unsigned long long)count);
    }
}

static ledger_cycle_figures_t at_cut(ledger_t *l, uint64_t sent, uint64_t applied)
{
    ledger_cycle_figures_t out;
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_at_cut(l, PEER, sent, applied, &out), LEDGER_OK);
    ledger_rollback(l);
    return out;
}

/* The figure of `currency` in figs (count 0 when absent). */
static ledger_cycle_figure_t figure_in(const ledger_cycle_figures_t *figs, const char *currency)
{
    ledger_cycle_figure_t none = {0};
    for (size_t i = 0; i < figs->n; i++) {
        if (strcmp(figs->f[i].currency, currency) == 0) {
            return figs->f[i];
        }
    }
    return none;
}

/* The running figures move with final statuses only, each money its way. */
static void test_cycle_running_moves_with_final_statuses(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    assert_running(l, "RUB", 0, 0, 0);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    assert_int_equal(receive1(l, &in, 100000, NULL, &o), LEDGER_OK);
    assert_running(l, "RUB", 0, 700, 1);
    settlement_t refused = make_settlement(DIRECTION_IN, PEER, "RUB", 50);
    assert_int_equal(receive1(l, &refused, 100000, "AC04", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_running(l, "RUB", 0, 700, 2); /* counted, no money */
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_running(l, "RUB", 0, 700, 2); /* pending: in no cycle */
    assert_int_equal(resolve1(l, &out, true, NULL, &o), LEDGER_OK);
    assert_running(l, "RUB", 300, 700, 3);
    settlement_t held = make_settlement(DIRECTION_IN, PEER, "RUB", 40);
    assert_int_equal(hold1(l, &held, 100000, &o), LEDGER_OK);
    assert_running(l, "RUB", 300, 700, 3); /* held: in no cycle */
    /* a return: money out of the cycle, the entry still counted (returned) */
    assert_int_equal(return1(l, &in, "AC04", &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_RETURNED);
    assert_running(l, "RUB", 300, 0, 3);
    /* an FX trade we propose: leg 1 (we pay RUB), leg 2 (the peer pays IRR, money reversed) */
    settlement_t legs[2];
    make_fx(DIRECTION_OUT, 1000, 5000, legs);
    const char *why = NULL;
    assert_int_equal(fx_propose1(l, legs, 1000000, &why, &o), LEDGER_OK);
    assert_running(l, "RUB", 300, 0, 3);
    assert_running(l, "IRR", 0, 0, 0);
    fx_answer1(l, legs, true, NULL);
    assert_running(l, "RUB", 1300, 0, 4);
    assert_running(l, "IRR", 0, 5000, 1);
    /* the digest is the sum of the final entries' hashes: the at-cut view agrees */
    ledger_cycle_figures_t now = at_cut(l, 1000, 1000);
    assert_int_equal(now.n, 2);
    assert_string_equal(now.f[0].currency, "IRR");
    assert_string_equal(now.f[1].currency, "RUB");
    ledger_cycle_figure_t rub = running_of(l, "RUB");
    assert_memory_equal(now.f[1].digest, rub.digest, DIGEST_BYTES);
    assert_int_equal(now.f[1].paid, 1300);
    assert_int_equal(now.f[1].count, 4);
    ledger_close(&l);
}

/* At the present cut the figures are the running ones; below a decided_seq the entry is left out
 * (and a returned entry counts as settled at a cut before its return). */
static void test_cycle_at_cut_leaves_out_above(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    /* ours: opened by our message 1, decided by the peer's 3 */
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_send(l, &out, evidence, EVIDENCE_LEN, 1, &o), LEDGER_OK);
    assert_int_equal(ledger_resolve(l, PEER, out.uetr, true, NULL, evidence, EVIDENCE_LEN, 3, &o),
                     LEDGER_OK);
    /* theirs: opened by the peer's 4, decided by our 2 (the receive's own sequence is the
     * payer's; our StatusReport is the reply's) */
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    assert_int_equal(ledger_receive(l, &in, 100000, NULL, evidence, EVIDENCE_LEN, 4, &o),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    ledger_cycle_figures_t all = at_cut(l, 100, 100);
    ledger_cycle_figure_t rub = running_of(l, "RUB");
    assert_int_equal(all.n, 1);
    assert_int_equal(all.f[0].paid, rub.paid);
    assert_int_equal(all.f[0].received, rub.received);
    assert_int_equal(all.f[0].count, rub.count);
    assert_memory_equal(all.f[0].digest, rub.digest, DIGEST_BYTES);
    assert_int_equal(all.touched, 0);
    /* below the peer's 4: theirs is not in yet */
    ledger_cycle_figures_t c = at_cut(l, 100, 3);
    ledger_cycle_figure_t fc = figure_in(&c, "RUB");
    assert_int_equal(fc.paid, 300);
    assert_int_equal(fc.received, 0);
    assert_int_equal(fc.count, 1);
    /* below the peer's 3: ours is not final yet either */
    c = at_cut(l, 100, 2);
    assert_int_equal(c.n, 0);
    /* a cut before our message 1 and the peer's 3: nothing */
    c = at_cut(l, 0, 0);
    assert_int_equal(c.n, 0);
    ledger_close(&l);
}

static void collect_cycle(const ledger_cycle_t *c, void *arg)
{
    uint64_t *seen = arg;
    *seen = *seen * 10 + c->cycle;
}

static void cycle_propose1(ledger_t *l, uint64_t cycle, const ledger_cycle_figures_t *figs,
                           const char *statement)
{
    uint8_t sig[crypto_sign_BYTES];
    memset(sig, 0x11, sizeof sig);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_propose(l, PEER, cycle, true, 10, 20, (const uint8_t *)statement,
                                          strlen(statement), sig, figs),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

static int64_t kind_rows(ledger_t *l, int kind)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM journal WHERE kind = %d", kind);
    return sql_int(l, sql);
}

/* Propose, finish closed (a cycle row, the running figures lose the statement's), finish
 * disputed (no row, the running figures lose ours), forget (the number is free again). */
static void test_cycle_propose_finish_forget(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    assert_int_equal(receive1(l, &in, 100000, NULL, &o), LEDGER_OK);
    ledger_cycle_t c;
    bool found = true;
    assert_int_equal(ledger_cycle_latest(l, PEER, &c, &found), LEDGER_OK);
    assert_false(found);

    ledger_cycle_figures_t figs = at_cut(l, 10, 20);
    cycle_propose1(l, 1, &figs, "statement one");
    /* a payment after the cut stays in the running figures */
    settlement_t later = make_settlement(DIRECTION_IN, PEER, "RUB", 5);
    assert_int_equal(receive1(l, &later, 100000, NULL, &o), LEDGER_OK);
    assert_int_equal(ledger_cycle_get(l, PEER, 1, &c, &found), LEDGER_OK);
    assert_true(found);
    assert_int_equal(c.state, CYCLE_CLOSING);
    assert_true(c.ours);
    assert_int_equal(c.own_sent, 10);
    assert_int_equal(c.peer_sent, 20);
    assert_int_equal(c.statement_len, strlen("statement one"));
    assert_memory_equal(c.statement, "statement one", c.statement_len);
    ledger_cycle_release(&c);
    assert_running(l, "RUB", 0, 705, 2);
    int64_t rows = kind_rows(l, ENTRY_CYCLE);
    uint8_t peer_sig[crypto_sign_BYTES];
    memset(peer_sig, 0x22, sizeof peer_sig);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_finish(l, PEER, 1, NULL, 0, peer_sig, NULL), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_int_equal(kind_rows(l, ENTRY_CYCLE), rows + 1);
    assert_running(l, "RUB", 0, 5, 1);
    assert_int_equal(ledger_cycle_latest(l, PEER, &c, &found), LEDGER_OK);
    assert_true(found);
    assert_int_equal(c.cycle, 1);
    assert_int_equal(c.state, CYCLE_CLOSED);
    assert_true(c.has_peer_signature);
    assert_memory_equal(c.peer_signature, peer_sig, sizeof peer_sig);
    ledger_cycle_release(&c);
    /* finishing it again: not closing */
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_finish(l, PEER, 1, NULL, 0, peer_sig, NULL), LEDGER_E_STATE);
    ledger_rollback(l);
    assert_chain_verifies(l);

    /* cycle 2: refused by the peer, forgotten; proposed again and disputed */
    figs = at_cut(l, 11, 21);
    assert_int_equal(figs.n, 1);
    assert_int_equal(figs.f[0].received, 5);
    cycle_propose1(l, 2, &figs, "statement two");
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_forget(l, PEER, 2), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_get(l, PEER, 2, &c, &found), LEDGER_OK);
    assert_false(found);
    assert_running(l, "RUB", 0, 5, 1);
    cycle_propose1(l, 2, &figs, "statement two");
    rows = kind_rows(l, ENTRY_CYCLE);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_cycle_finish(l, PEER, 2, (const uint8_t *)"theirs", 6, peer_sig,
                                         "the figures differ"),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    assert_int_equal(kind_rows(l, ENTRY_CYCLE), rows);
    assert_running(l, "RUB", 0, 0, 0);
    assert_int_equal(ledger_cycle_get(l, PEER, 2, &c, &found), LEDGER_OK);
    assert_true(found);
    assert_int_equal(c.state, CYCLE_DISPUTED);
    assert_int_equal(c.peer_statement_len, 6);
    assert_memory_equal(c.peer_statement, "theirs", 6);
    assert_string_equal(c.error, "the figures differ");
    ledger_cycle_release(&c);
    uint64_t seen = 0;
    assert_int_equal(ledger_cycles(l, PEER, collect_cycle, &seen), LEDGER_OK);
    assert_int_equal(seen, 12);
    seen = 0;
    assert_int_equal(ledger_cycles(l, PEER_OTHER, collect_cycle, &seen), LEDGER_OK);
    assert_int_equal(seen, 0);
    ledger_close(&l);
}

static ledger_net_t make_net(bool we_owe, int64_t amount)
{
    ledger_net_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.peer, sizeof n.peer, "%s", PEER);
    uetr_generate(n.id);
    n.cycle = 1;
    snprintf(n.currency, sizeof n.currency, "RUB");
    n.amount_minor = amount;
    n.we_owe = we_owe;
    n.status = we_owe ? STATUS_PENDING : STATUS_HELD;
    memset(n.body_hash, 0x33, sizeof n.body_hash);
    snprintf(n.reference, sizeof n.reference, "RTGS-1");
    n.created_ms = CREATED_MS;
    return n;
}

static void net_record1(ledger_t *l, const ledger_net_t *n)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_net_record(l, n, evidence, EVIDENCE_LEN), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

static void net_decide1(ledger_t *l, const ledger_net_t *n, bool settled, uint64_t seq)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(ledger_net_decide(l, PEER, n->id, settled, settled ? NULL : "AG01", seq,
                                       evidence, EVIDENCE_LEN, NULL, 0),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

static bool net_open_of(ledger_t *l, uint64_t cycle)
{
    bool open = false;
    assert_int_equal(ledger_net_open(l, PEER, cycle, "RUB", &open), LEDGER_OK);
    return open;
}

/* A net settlement moves nothing until decided; settled it moves posted_net by +m at the debtor
 * and -m at the creditor, books balanced; rejected, nothing moves and the cycle is open again. */
static void test_net_settlement_record_and_decide(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 700); /* we owe 700 */
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &out, true, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", -700, 0);
    assert_false(net_open_of(l, 1));
    /* debtor: pending, then rejected */
    ledger_net_t n = make_net(true, 700);
    int64_t claimed = kind_rows(l, ENTRY_NET_CLAIMED);
    net_record1(l, &n);
    assert_int_equal(kind_rows(l, ENTRY_NET_CLAIMED), claimed + 1);
    assert_position(l, PEER, "RUB", -700, 0);
    assert_true(net_open_of(l, 1));
    assert_false(net_open_of(l, 2));
    net_decide1(l, &n, false, 9);
    assert_int_equal(kind_rows(l, ENTRY_NET_REFUSED), 1);
    assert_position(l, PEER, "RUB", -700, 0);
    assert_false(net_open_of(l, 1));
    ledger_net_t got;
    bool found = false;
    assert_int_equal(ledger_net_find(l, PEER, n.id, &got, &found), LEDGER_OK);
    assert_true(found);
    assert_int_equal(got.status, STATUS_REJECTED);
    assert_string_equal(got.reason, "AG01");
    /* again: settled by the peer's message 12 */
    ledger_net_t n2 = make_net(true, 700);
    net_record1(l, &n2);
    net_decide1(l, &n2, true, 12);
    assert_int_equal(kind_rows(l, ENTRY_NET_SETTLED), 1);
    assert_int_equal(sql_int(l, "SELECT amount_minor FROM journal WHERE kind = 19"), 700);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_balanced(l);
    assert_true(net_open_of(l, 1));
    assert_int_equal(ledger_net_find(l, PEER, n2.id, &got, &found), LEDGER_OK);
    assert_int_equal(got.status, STATUS_SETTLED);
    assert_true(got.we_owe);
    /* the channel at a cut below the peer's 12 leaves the net settlement out */
    ledger_cut_t below = cut_of(l, PEER, 0, 11);
    ledger_cut_t at = cut_of(l, PEER, 0, 12);
    assert_int_equal(below.n_positions, 1);
    assert_int_equal(below.positions[0].net_minor, -700);
    assert_int_equal(at.n_positions, 0);
    ledger_cut_release(&below);
    ledger_cut_release(&at);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* The creditor holds a net settlement and books -m when a person accepts it. */
static void test_net_settlement_creditor(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 400); /* the peer owes 400 */
    assert_int_equal(receive1(l, &in, 100000, NULL, &o), LEDGER_OK);
    assert_position(l, PEER, "RUB", 400, 0);
    ledger_net_t n = make_net(false, 400);
    net_record1(l, &n);
    assert_position(l, PEER, "RUB", 400, 0);
    ledger_net_t got;
    bool found = false;
    assert_int_equal(ledger_net_find(l, PEER, n.id, &got, &found), LEDGER_OK);
    assert_true(found);
    assert_int_equal(got.status, STATUS_HELD);
    assert_false(got.we_owe);
    net_decide1(l, &n, true, 3);
    assert_int_equal(sql_int(l, "SELECT amount_minor FROM journal WHERE kind = 19"), -400);
    assert_position(l, PEER, "RUB", 0, 0);
    assert_balanced(l);
    assert_chain_verifies(l);
    ledger_close(&l);
}

/* Schema 10 -> 11 starts the running figures from every final entry. */
static void test_cycles_upgrade_from_schema_10(void **state)
{
    fixture_t *f = *state;
    ledger_t *l = open_ledger(f->path);
    ledger_outcome_t o;
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "RUB", 700);
    settlement_t refused = make_settlement(DIRECTION_IN, PEER, "RUB", 50);
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "RUB", 300);
    settlement_t pending = make_settlement(DIRECTION_OUT, PEER, "RUB", 9);
    assert_int_equal(receive1(l, &in, 100000, NULL, &o), LEDGER_OK);
    assert_int_equal(receive1(l, &refused, 100000, "AC04", &o), LEDGER_OK);
    assert_int_equal(send1(l, &out, &o), LEDGER_OK);
    assert_int_equal(resolve1(l, &out, true, NULL, &o), LEDGER_OK);
    assert_int_equal(send1(l, &pending, &o), LEDGER_OK);
    settlement_t legs[2];
    make_fx(DIRECTION_OUT, 1000, 5000, legs);
    const char *why = NULL;
    assert_int_equal(fx_propose1(l, legs, 1000000, &why, &o), LEDGER_OK);
    fx_answer1(l, legs, true, NULL);
    ledger_cycle_figure_t rub = running_of(l, "RUB"), irr = running_of(l, "IRR");
    assert_int_equal(rub.count, 4);
    ledger_close(&l);
    make_sqlite_file(f->path, "BEGIN; " UNDO_SCHEMA_11 " PRAGMA user_version = 10; COMMIT;");
    l = open_ledger(f->path);
    assert_int_equal(sql_int(l, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    ledger_cycle_figure_t rub2 = running_of(l, "RUB"), irr2 = running_of(l, "IRR");
    assert_int_equal(rub2.paid, 1300);
    assert_int_equal(rub2.received, 700);
    assert_int_equal(rub2.count, 4);
    assert_memory_equal(rub2.digest, rub.digest, DIGEST_BYTES);
    assert_int_equal(irr2.paid, 0);
    assert_int_equal(irr2.received, 5000);
    assert_int_equal(irr2.count, 1);
    assert_memory_equal(irr2.digest, irr.digest, DIGEST_BYTES);
    ledger_close(&l);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        /* 1. open */
        T(test_open_creates_file),
        T(test_reopen_keeps_data),
        T(test_find_returns_stored_content),
        T(test_open_other_node_refused),
        T(test_open_text_file_refused),
        T(test_open_foreign_sqlite_refused),
        T(test_open_foreign_sqlite_with_version_refused),
        T(test_open_newer_version_refused),
        T(test_open_upgrades_schema_1),
        T(test_channel_at_cut_agrees_across_sides),
        T(test_channel_at_cut_bounded),
        T(test_open_malformed_head_refused),
        T(test_open_readonly_missing_fails),
        T(test_readonly_refuses_writes),
        T(test_close_in_transaction_rolls_back),
        /* key history */
        T(test_keys_add_and_read_back),
        T(test_keys_add_closes_open_key),
        T(test_keys_add_repeat_is_noop),
        T(test_keys_add_conflict),
        T(test_keys_revoke),
        T(test_keys_upgrade_from_schema_5),
        T(test_keys_damaged_row_corrupt),
        /* the CURVE key switch */
        T(test_keys_switch_set_and_read_back),
        T(test_keys_switch_refusals),
        T(test_keys_switch_closed_empty),
        T(test_keys_upgrade_from_schema_6),
        /* key replacement */
        T(test_replace_peer_key_without_history),
        T(test_replace_peer_key_unused_key_empty),
        T(test_replace_peer_key_refusals),
        T(test_replace_own_key_and_damaged_empty_range),
        /* 2. lifecycle */
        T(test_send_is_pending),
        T(test_resolve_settled_posts),
        T(test_resolve_rejected_voids),
        T(test_receive_books),
        T(test_receive_over_cap_rejected),
        T(test_hold_release_and_decline),
        T(test_held_at_peer),
        T(test_holds_upgrade_from_schema_7),
        T(test_returns_stay_within_the_payment),
        T(test_return_names_a_settled_payment_of_ours),
        T(test_return_check_edited_amount_does_not_wrap),
        T(test_returns_upgrade_from_schema_8),
        T(test_fx_propose_reserves),
        T(test_fx_propose_settles),
        T(test_fx_receive_both_or_neither),
        T(test_fx_upgrade_from_schema_9),
        T(test_cycle_running_moves_with_final_statuses),
        T(test_cycle_at_cut_leaves_out_above),
        T(test_cycle_propose_finish_forget),
        T(test_net_settlement_record_and_decide),
        T(test_net_settlement_creditor),
        T(test_cycles_upgrade_from_schema_10),
        T(test_receive_caller_reason_rejected),
        T(test_return_settled_incoming),
        T(test_return_settled_outgoing),
        T(test_return_pending_refused),
        T(test_return_rejected_refused),
        T(test_return_unknown_not_found),
        T(test_resolve_unknown_not_found),
        T(test_resolve_incoming_refused),
        T(test_resolve_twice_is_repeated),
        T(test_resolve_opposite_conflicts),
        T(test_resolve_after_return),
        T(test_refusal_keeps_transaction_usable),
        T(test_positions_per_peer_and_currency),
        /* 3. cap */
        T(test_cap_exact_accepted_then_one_more_rejected),
        T(test_cap_one_over_rejected_on_empty_channel),
        T(test_cap_zero_rejects_any),
        T(test_cap_counts_what_we_owe),
        T(test_cap_ignores_pending_outgoing),
        T(test_cap_is_per_peer_and_currency),
        T(test_cap_freed_by_return),
        T(test_cap_largest_amount),
        T(test_cap_net_overflow_refused),
        /* 4. idempotency */
        T(test_send_twice_is_repeated),
        T(test_send_twice_after_settle_returns_settled),
        T(test_send_conflict_changes_nothing),
        T(test_receive_twice_is_repeated),
        T(test_receive_rejected_twice_keeps_reason),
        T(test_receive_conflict_changes_nothing),
        T(test_same_uetr_both_directions_conflicts),
        T(test_same_uetr_other_peer_is_fine),
        /* 5. hash chain */
        T(test_head_changes_with_every_row),
        T(test_head_survives_reopen),
        T(test_row_hash_deterministic_and_sensitive),
        T(test_journal_rows_carry_evidence),
        /* 6. outbox */
        T(test_outbox_next_seq_starts_at_one),
        T(test_outbox_put_wrong_seq_refused),
        T(test_outbox_scan_from),
        T(test_outbox_scan_limit),
        T(test_outbox_scan_stops_when_told),
        T(test_outbox_per_peer),
        T(test_channel_counters_persist),
        T(test_outbox_rollback_forgets_put),
        /* 7. group commit */
        T(test_group_commit_1000),
        T(test_rollback_leaves_nothing),
        T(test_rollback_then_write_chains),
        /* 8. model */
        T(test_model_random_operations),
        /* 9. crash */
        T(test_crash_leaves_whole_batches),
        /* 10. storage failures */
        T(test_fault_vfs_passes_through),
        T(test_full_disk_stops_ledger),
        T(test_fsync_failure_stops_ledger),
        T(test_write_failure_mid_transaction_stops_ledger),
        /* int64 edge */
        T(test_gross_volume_keeps_nets_exact),
        T(test_send_pending_overflow_refused),
        T(test_resolve_overflow_refused),
        T(test_return_overflow_refused),
        T(test_receive_overflow_refused_am02),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
