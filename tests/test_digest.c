/*
 * Unit tests for node/message/digest.c: the channel digest arithmetic and the canonical entry
 * hash (proto/PROTOCOL.md 3.7.4, 3.7.5, 4.1, 4.2).
 *
 * Two nodes prove their books of a channel agree by comparing one 32-byte sum, and find where
 * they differ by comparing sums of UETR ranges. That only works if the sum really is addition
 * modulo 2^256 (carries and borrows across every byte, wrap-around, order independence, add and
 * subtract exact inverses: the ledger moves an entry from its old hash to its new one in place),
 * if the entry hash binds every field both sides agree on, and if the SQL functions the ledger
 * keeps the digest with compute exactly what the C functions do.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "digest.h"

#define UETR1 "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7c"
#define UETR2 "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7d"
#define PAYER "BKRURUMM"
#define PAYEE "BMJIIRTH"

/* ---- helpers -------------------------------------------------------------------------------- */

static void random_digest(uint8_t out[static DIGEST_BYTES])
{
    randombytes_buf(out, DIGEST_BYTES);
}

/* A reference implementation on four 64-bit limbs, little-endian, independent of the byte loop
 * under test. */
static void ref_add(uint8_t acc[static DIGEST_BYTES], const uint8_t x[static DIGEST_BYTES],
                    bool subtract)
{
    uint64_t a[4], b[4];
    for (int limb = 0; limb < 4; limb++) {
        a[limb] = b[limb] = 0;
        for (int i = 7; i >= 0; i--) {
            a[limb] = (a[limb] << 8) | acc[8 * limb + i];
            b[limb] = (b[limb] << 8) | x[8 * limb + i];
        }
    }
    unsigned __int128 carry = 0;
    for (int limb = 0; limb < 4; limb++) {
        if (!subtract) {
            unsigned __int128 sum = (unsigned __int128)a[limb] + b[limb] + carry;
            a[limb] = (uint64_t)sum;
            carry = sum >> 64;
        } else {
            unsigned __int128 need = (unsigned __int128)b[limb] + carry;
            carry = a[limb] < need;
            a[limb] = (uint64_t)((unsigned __int128)a[limb] + (carry << 64) - need);
        }
    }
    for (int limb = 0; limb < 4; limb++) {
        for (int i = 0; i < 8; i++) {
            acc[8 * limb + i] = (uint8_t)(a[limb] >> (8 * i));
        }
    }
}

static void assert_digest_equal(const uint8_t *got, const uint8_t *want)
{
    if (memcmp(got, want, DIGEST_BYTES) != 0) {
        char g[2 * DIGEST_BYTES + 1], w[2 * DIGEST_BYTES + 1];
        sodium_bin2hex(g, sizeof g, got, DIGEST_BYTES);
        sodium_bin2hex(w, sizeof w, want, DIGEST_BYTES);
        fail_msg("digest %s, expected %s", g, w);
    }
}

/* The entry hash of a base entry with one field replaced. */
typedef struct {
    const char *payer, *payee, *uetr;
    int64_t amount;
    const char *currency, *status, *reason;
} entry_t;

static const entry_t base_entry = {PAYER, PAYEE, UETR1, 125000, "RUB", "settled", ""};

static void entry_hash(const entry_t *e, uint8_t out[static DIGEST_BYTES])
{
    digest_entry(e->payer, e->payee, e->uetr, e->amount, e->currency, e->status, e->reason, out);
}

/* ---- arithmetic ----------------------------------------------------------------------------- */

static void test_add_then_sub_returns_to_start(void **state)
{
    (void)state;
    for (int round = 0; round < 1000; round++) {
        uint8_t start[DIGEST_BYTES], x[DIGEST_BYTES], acc[DIGEST_BYTES];
        random_digest(start);
        random_digest(x);
        memcpy(acc, start, DIGEST_BYTES);
        digest_add(acc, x);
        digest_sub(acc, x);
        assert_digest_equal(acc, start);
        digest_sub(acc, x); /* and the other way round */
        digest_add(acc, x);
        assert_digest_equal(acc, start);
    }
}

static void test_add_and_sub_match_reference_arithmetic(void **state)
{
    (void)state;
    for (int round = 0; round < 2000; round++) {
        uint8_t a[DIGEST_BYTES], x[DIGEST_BYTES], got[DIGEST_BYTES], want[DIGEST_BYTES];
        random_digest(a);
        random_digest(x);
        if (round % 4 == 1) { /* long carry and borrow chains */
            memset(a, 0xff, DIGEST_BYTES);
        } else if (round % 4 == 2) {
            memset(a, 0x00, DIGEST_BYTES);
        }
        memcpy(got, a, DIGEST_BYTES);
        memcpy(want, a, DIGEST_BYTES);
        digest_add(got, x);
        ref_add(want, x, false);
        assert_digest_equal(got, want);
        memcpy(got, a, DIGEST_BYTES);
        memcpy(want, a, DIGEST_BYTES);
        digest_sub(got, x);
        ref_add(want, x, true);
        assert_digest_equal(got, want);
    }
}

static void test_add_carries_across_bytes(void **state)
{
    (void)state;
    uint8_t acc[DIGEST_BYTES] = {0xff};
    uint8_t one[DIGEST_BYTES] = {1};
    digest_add(acc, one);
    uint8_t want[DIGEST_BYTES] = {0x00, 0x01};
    assert_digest_equal(acc, want);

    /* a carry that ripples through 31 bytes into the last */
    uint8_t ripple[DIGEST_BYTES];
    memset(ripple, 0xff, DIGEST_BYTES);
    ripple[DIGEST_BYTES - 1] = 0x00;
    digest_add(ripple, one);
    uint8_t top[DIGEST_BYTES] = {0};
    top[DIGEST_BYTES - 1] = 0x01;
    assert_digest_equal(ripple, top);

    /* 0xff + 0xff = 0x1fe: the carry is 1, not lost and not doubled */
    uint8_t a[DIGEST_BYTES] = {0xff, 0xff};
    uint8_t b[DIGEST_BYTES] = {0xff, 0xff};
    digest_add(a, b);
    uint8_t sum[DIGEST_BYTES] = {0xfe, 0xff, 0x01};
    assert_digest_equal(a, sum);
}

static void test_sub_borrows_across_bytes(void **state)
{
    (void)state;
    uint8_t acc[DIGEST_BYTES] = {0x00, 0x01};
    uint8_t one[DIGEST_BYTES] = {1};
    digest_sub(acc, one);
    uint8_t want[DIGEST_BYTES] = {0xff, 0x00};
    assert_digest_equal(acc, want);

    /* 2^248 - 1: the borrow ripples through 31 bytes */
    uint8_t top[DIGEST_BYTES] = {0};
    top[DIGEST_BYTES - 1] = 0x01;
    digest_sub(top, one);
    uint8_t ripple[DIGEST_BYTES];
    memset(ripple, 0xff, DIGEST_BYTES);
    ripple[DIGEST_BYTES - 1] = 0x00;
    assert_digest_equal(top, ripple);

    /* x - x = 0 for a value with every byte set */
    uint8_t x[DIGEST_BYTES];
    memset(x, 0xff, DIGEST_BYTES);
    uint8_t y[DIGEST_BYTES];
    memcpy(y, x, DIGEST_BYTES);
    digest_sub(y, x);
    uint8_t zero[DIGEST_BYTES] = {0};
    assert_digest_equal(y, zero);
}

static void test_wraps_at_2_pow_256(void **state)
{
    (void)state;
    uint8_t max[DIGEST_BYTES];
    memset(max, 0xff, DIGEST_BYTES);
    uint8_t one[DIGEST_BYTES] = {1};
    uint8_t zero[DIGEST_BYTES] = {0};

    uint8_t acc[DIGEST_BYTES];
    memcpy(acc, max, DIGEST_BYTES);
    digest_add(acc, one); /* (2^256 - 1) + 1 = 0 */
    assert_digest_equal(acc, zero);

    digest_sub(acc, one); /* 0 - 1 = 2^256 - 1 */
    assert_digest_equal(acc, max);

    /* (2^256 - 1) + (2^256 - 1) = 2^256 - 2 */
    digest_add(acc, max);
    uint8_t want[DIGEST_BYTES];
    memset(want, 0xff, DIGEST_BYTES);
    want[0] = 0xfe;
    assert_digest_equal(acc, want);
}

static void test_sum_is_order_independent(void **state)
{
    (void)state;
    enum { N = 12 };
    uint8_t items[N][DIGEST_BYTES];
    for (int i = 0; i < N; i++) {
        random_digest(items[i]);
    }
    uint8_t forward[DIGEST_BYTES] = {0}, backward[DIGEST_BYTES] = {0}, shuffled[DIGEST_BYTES] = {0};
    for (int i = 0; i < N; i++) {
        digest_add(forward, items[i]);
        digest_add(backward, items[N - 1 - i]);
        digest_add(shuffled, items[(i * 5) % N]); /* 5 is prime to 12: a permutation */
    }
    assert_digest_equal(forward, backward);
    assert_digest_equal(forward, shuffled);

    /* removing one entry from the middle equals never having added it */
    uint8_t without[DIGEST_BYTES] = {0};
    for (int i = 0; i < N; i++) {
        if (i != 7) {
            digest_add(without, items[i]);
        }
    }
    digest_sub(forward, items[7]);
    assert_digest_equal(forward, without);
}

static void test_status_change_moves_digest_like_recomputing(void **state)
{
    (void)state;
    /* what the ledger does on a status change: digest - old + new, versus summing afresh */
    uint8_t e1[DIGEST_BYTES], e2_pending[DIGEST_BYTES], e2_settled[DIGEST_BYTES];
    digest_entry(PAYER, PAYEE, UETR1, 100, "RUB", "settled", "", e1);
    digest_entry(PAYER, PAYEE, UETR2, 200, "RUB", "pending", "", e2_pending);
    digest_entry(PAYER, PAYEE, UETR2, 200, "RUB", "settled", "", e2_settled);
    uint8_t kept[DIGEST_BYTES] = {0};
    digest_add(kept, e1);
    digest_add(kept, e2_pending);
    digest_sub(kept, e2_pending);
    digest_add(kept, e2_settled);
    uint8_t fresh[DIGEST_BYTES] = {0};
    digest_add(fresh, e2_settled);
    digest_add(fresh, e1);
    assert_digest_equal(kept, fresh);
}

static void test_add_to_itself_doubles(void **state)
{
    (void)state;
    uint8_t a[DIGEST_BYTES], twice[DIGEST_BYTES];
    random_digest(a);
    memcpy(twice, a, DIGEST_BYTES);
    digest_add(twice, a);
    digest_add(a, a); /* acc and x the same buffer */
    assert_digest_equal(a, twice);
}

/* ---- the canonical entry hash --------------------------------------------------------------- */

static void test_entry_is_deterministic(void **state)
{
    (void)state;
    uint8_t a[DIGEST_BYTES], b[DIGEST_BYTES];
    entry_hash(&base_entry, a);
    entry_hash(&base_entry, b);
    assert_digest_equal(a, b);
    uint8_t zero[DIGEST_BYTES] = {0};
    assert_memory_not_equal(a, zero, DIGEST_BYTES);
}

static void test_entry_matches_specified_construction(void **state)
{
    (void)state;
    /* PROTOCOL.md 4.1, built by hand: tag with its NUL, lp8 fields, u64le amount */
    uint8_t input[256];
    size_t n = 0;
    static const char tag[] = "corridor.channel-entry.v1";
    memcpy(input + n, tag, sizeof tag);
    n += sizeof tag;
    assert_int_equal(sizeof tag, 26);
    const char *before[] = {UETR1, PAYER, PAYEE};
    for (int i = 0; i < 3; i++) {
        input[n++] = (uint8_t)strlen(before[i]);
        memcpy(input + n, before[i], strlen(before[i]));
        n += strlen(before[i]);
    }
    int64_t amount = -2; /* two's complement: fe ff ff ff ff ff ff ff */
    static const uint8_t amount_le[8] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(input + n, amount_le, 8);
    n += 8;
    const char *after[] = {"IRR", "rejected", "AM02"};
    for (int i = 0; i < 3; i++) {
        input[n++] = (uint8_t)strlen(after[i]);
        memcpy(input + n, after[i], strlen(after[i]));
        n += strlen(after[i]);
    }
    uint8_t want[DIGEST_BYTES], got[DIGEST_BYTES];
    crypto_generichash(want, DIGEST_BYTES, input, n, NULL, 0);
    digest_entry(PAYER, PAYEE, UETR1, amount, "IRR", "rejected", "AM02", got);
    assert_digest_equal(got, want);
}

static void test_entry_changes_with_every_field(void **state)
{
    (void)state;
    entry_t variants[] = {
        base_entry, base_entry, base_entry, base_entry, base_entry,
        base_entry, base_entry, base_entry, base_entry, base_entry,
    };
    variants[0].payer = "BSEPIRTH";
    variants[1].payee = "BSEPIRTH";
    variants[2].uetr = UETR2;
    variants[3].amount = base_entry.amount + 1;
    variants[4].amount = -base_entry.amount;
    variants[5].currency = "IRR";
    variants[6].status = "pending";
    variants[7].reason = "AM02";
    variants[8].payer = PAYEE; /* payer and payee swapped: the other direction */
    variants[8].payee = PAYER;
    variants[9].amount = base_entry.amount + (INT64_C(1) << 40); /* a high byte of the amount */
    size_t n = sizeof variants / sizeof variants[0];
    uint8_t hashes[sizeof variants / sizeof variants[0] + 1][DIGEST_BYTES];
    entry_hash(&base_entry, hashes[n]);
    for (size_t i = 0; i < n; i++) {
        entry_hash(&variants[i], hashes[i]);
    }
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i + 1; j <= n; j++) {
            if (memcmp(hashes[i], hashes[j], DIGEST_BYTES) == 0) {
                fail_msg("variants %zu and %zu hash the same", i, j);
            }
        }
    }
}

static void test_entry_every_status_distinct(void **state)
{
    (void)state;
    static const char *const statuses[] = {"pending", "settled", "rejected", "returned"};
    uint8_t h[4][DIGEST_BYTES];
    for (int i = 0; i < 4; i++) {
        digest_entry(PAYER, PAYEE, UETR1, 5, "RUB", statuses[i], "", h[i]);
    }
    for (int i = 0; i < 4; i++) {
        for (int j = i + 1; j < 4; j++) {
            assert_memory_not_equal(h[i], h[j], DIGEST_BYTES);
        }
    }
}

static void test_entry_fields_do_not_run_together(void **state)
{
    (void)state;
    /* length prefixes: moving a character across a field boundary changes the hash */
    uint8_t a[DIGEST_BYTES], b[DIGEST_BYTES];
    digest_entry("BKRURUMMX", "BMJIIRTH", UETR1, 1, "RUB", "settled", "", a);
    digest_entry("BKRURUMM", "XBMJIIRTH", UETR1, 1, "RUB", "settled", "", b);
    assert_memory_not_equal(a, b, DIGEST_BYTES);

    digest_entry(PAYER, PAYEE, UETR1, 1, "RUB", "rejected", "", a);
    digest_entry(PAYER, PAYEE, UETR1, 1, "RU", "Brejected", "", b);
    assert_memory_not_equal(a, b, DIGEST_BYTES);

    /* the reason is a field of its own, not text appended to the status */
    digest_entry(PAYER, PAYEE, UETR1, 1, "RUB", "settledAM02", "", a);
    digest_entry(PAYER, PAYEE, UETR1, 1, "RUB", "settled", "AM02", b);
    assert_memory_not_equal(a, b, DIGEST_BYTES);
}

static void test_entry_reads_at_most_255_bytes_of_a_field(void **state)
{
    (void)state;
    /* L(s) takes min(len, 255) bytes (PROTOCOL.md 4.1): what lies beyond is not hashed */
    char long_a[300], long_b[300];
    memset(long_a, 'A', sizeof long_a - 1);
    long_a[sizeof long_a - 1] = '\0';
    memcpy(long_b, long_a, sizeof long_b);
    long_b[280] = 'B';
    uint8_t a[DIGEST_BYTES], b[DIGEST_BYTES];
    digest_entry(long_a, PAYEE, UETR1, 1, "RUB", "settled", "", a);
    digest_entry(long_b, PAYEE, UETR1, 1, "RUB", "settled", "", b);
    assert_digest_equal(a, b);
    long_b[254] = 'B'; /* within the first 255: counts */
    digest_entry(long_b, PAYEE, UETR1, 1, "RUB", "settled", "", b);
    assert_memory_not_equal(a, b, DIGEST_BYTES);
}

/* ---- the SQL functions ---------------------------------------------------------------------- */

static sqlite3 *open_memory_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(digest_register_sql(db), SQLITE_OK);
    return db;
}

/* Runs a one-row SELECT with up to three blob parameters (NULL pointer: SQL NULL) and returns
 * its first column, which must be a 32-byte blob. */
static void sql_digest(sqlite3 *db, const char *sql, const uint8_t *p1, size_t l1,
                       const uint8_t *p2, size_t l2, const uint8_t *p3, size_t l3,
                       uint8_t out[static DIGEST_BYTES])
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    }
    const uint8_t *params[3] = {p1, p2, p3};
    size_t lens[3] = {l1, l2, l3};
    for (int i = 0; i < 3 && i < sqlite3_bind_parameter_count(stmt); i++) {
        if (params[i] == NULL) {
            sqlite3_bind_null(stmt, i + 1);
        } else {
            sqlite3_bind_blob(stmt, i + 1, params[i], (int)lens[i], SQLITE_TRANSIENT);
        }
    }
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(stmt, 0), SQLITE_BLOB);
    assert_int_equal(sqlite3_column_bytes(stmt, 0), DIGEST_BYTES);
    memcpy(out, sqlite3_column_blob(stmt, 0), DIGEST_BYTES);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
}

static void test_sql_update_matches_c(void **state)
{
    (void)state;
    sqlite3 *db = open_memory_db();
    const char *sql = "SELECT corridor_digest_update(?1, ?2, ?3)";
    for (int round = 0; round < 200; round++) {
        uint8_t d[DIGEST_BYTES], sub[DIGEST_BYTES], add[DIGEST_BYTES];
        random_digest(d);
        random_digest(sub);
        random_digest(add);
        uint8_t want[DIGEST_BYTES], got[DIGEST_BYTES];
        memcpy(want, d, DIGEST_BYTES);
        digest_sub(want, sub);
        digest_add(want, add);
        sql_digest(db, sql, d, DIGEST_BYTES, sub, DIGEST_BYTES, add, DIGEST_BYTES, got);
        assert_digest_equal(got, want);
    }
    sqlite3_close(db);
}

static void test_sql_update_null_arguments(void **state)
{
    (void)state;
    sqlite3 *db = open_memory_db();
    const char *sql = "SELECT corridor_digest_update(?1, ?2, ?3)";
    uint8_t d[DIGEST_BYTES], x[DIGEST_BYTES], want[DIGEST_BYTES], got[DIGEST_BYTES];
    random_digest(d);
    random_digest(x);

    /* a new record: no sub */
    memcpy(want, d, DIGEST_BYTES);
    digest_add(want, x);
    sql_digest(db, sql, d, DIGEST_BYTES, NULL, 0, x, DIGEST_BYTES, got);
    assert_digest_equal(got, want);

    /* a removal: no add */
    memcpy(want, d, DIGEST_BYTES);
    digest_sub(want, x);
    sql_digest(db, sql, d, DIGEST_BYTES, x, DIGEST_BYTES, NULL, 0, got);
    assert_digest_equal(got, want);

    /* a channel without a digest yet starts from zero */
    uint8_t zero[DIGEST_BYTES] = {0};
    sql_digest(db, sql, NULL, 0, NULL, 0, x, DIGEST_BYTES, got);
    assert_digest_equal(got, x);
    sql_digest(db, sql, NULL, 0, NULL, 0, NULL, 0, got);
    assert_digest_equal(got, zero);
    sqlite3_close(db);
}

static void test_sql_update_ignores_blobs_of_wrong_size(void **state)
{
    (void)state;
    /* documents the behaviour: anything but 32 bytes counts as absent (zero), not an error */
    sqlite3 *db = open_memory_db();
    const char *sql = "SELECT corridor_digest_update(?1, ?2, ?3)";
    uint8_t d[DIGEST_BYTES], x[DIGEST_BYTES + 1], got[DIGEST_BYTES];
    random_digest(d);
    randombytes_buf(x, sizeof x);
    sql_digest(db, sql, d, DIGEST_BYTES, x, DIGEST_BYTES - 1, x, DIGEST_BYTES + 1, got);
    assert_digest_equal(got, d);
    sqlite3_close(db);
}

static void test_sql_sum_aggregates_like_c(void **state)
{
    (void)state;
    sqlite3 *db = open_memory_db();
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (grp INTEGER, h BLOB)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *ins = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2)", -1, &ins, NULL),
                     SQLITE_OK);
    uint8_t all[DIGEST_BYTES] = {0}, group[3][DIGEST_BYTES] = {{0}};
    for (int i = 0; i < 50; i++) {
        uint8_t h[DIGEST_BYTES];
        if (i % 10 == 0) {
            memset(h, 0xff, DIGEST_BYTES); /* force wrap-around in the aggregate */
        } else {
            random_digest(h);
        }
        digest_add(all, h);
        digest_add(group[i % 3], h);
        sqlite3_bind_int(ins, 1, i % 3);
        sqlite3_bind_blob(ins, 2, h, DIGEST_BYTES, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);

    uint8_t got[DIGEST_BYTES];
    sql_digest(db, "SELECT corridor_sum256(h) FROM t", NULL, 0, NULL, 0, NULL, 0, got);
    assert_digest_equal(got, all);

    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT grp, corridor_sum256(h), count(*) FROM t"
                                        " GROUP BY grp ORDER BY grp",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    int groups = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        int g = sqlite3_column_int(stmt, 0);
        assert_in_range(g, 0, 2);
        assert_int_equal(sqlite3_column_bytes(stmt, 1), DIGEST_BYTES);
        assert_digest_equal(sqlite3_column_blob(stmt, 1), group[g]);
        groups++;
    }
    sqlite3_finalize(stmt);
    assert_int_equal(groups, 3);
    sqlite3_close(db);
}

static void test_sql_sum_of_no_rows_is_zero(void **state)
{
    (void)state;
    sqlite3 *db = open_memory_db();
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (h BLOB)", NULL, NULL, NULL), SQLITE_OK);
    uint8_t got[DIGEST_BYTES], zero[DIGEST_BYTES] = {0};
    memset(got, 0xaa, DIGEST_BYTES);
    sql_digest(db, "SELECT corridor_sum256(h) FROM t", NULL, 0, NULL, 0, NULL, 0, got);
    assert_digest_equal(got, zero);

    /* rows whose hash is NULL or of another size add nothing */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES (NULL), (x'00ff')", NULL, NULL, NULL),
                     SQLITE_OK);
    sql_digest(db, "SELECT corridor_sum256(h) FROM t", NULL, 0, NULL, 0, NULL, 0, got);
    assert_digest_equal(got, zero);
    sqlite3_close(db);
}

static void test_sql_functions_absent_until_registered(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_not_equal(sqlite3_prepare_v2(db, "SELECT corridor_sum256(x'00')", -1, &stmt, NULL),
                         SQLITE_OK);
    assert_null(stmt);
    assert_int_equal(digest_register_sql(db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT corridor_sum256(x'00')", -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_finalize(stmt);
    /* registering twice on one connection is harmless (the ledger may reopen) */
    assert_int_equal(digest_register_sql(db), SQLITE_OK);
    sqlite3_close(db);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_then_sub_returns_to_start),
        cmocka_unit_test(test_add_and_sub_match_reference_arithmetic),
        cmocka_unit_test(test_add_carries_across_bytes),
        cmocka_unit_test(test_sub_borrows_across_bytes),
        cmocka_unit_test(test_wraps_at_2_pow_256),
        cmocka_unit_test(test_sum_is_order_independent),
        cmocka_unit_test(test_status_change_moves_digest_like_recomputing),
        cmocka_unit_test(test_add_to_itself_doubles),
        cmocka_unit_test(test_entry_is_deterministic),
        cmocka_unit_test(test_entry_matches_specified_construction),
        cmocka_unit_test(test_entry_changes_with_every_field),
        cmocka_unit_test(test_entry_every_status_distinct),
        cmocka_unit_test(test_entry_fields_do_not_run_together),
        cmocka_unit_test(test_entry_reads_at_most_255_bytes_of_a_field),
        cmocka_unit_test(test_sql_update_matches_c),
        cmocka_unit_test(test_sql_update_null_arguments),
        cmocka_unit_test(test_sql_update_ignores_blobs_of_wrong_size),
        cmocka_unit_test(test_sql_sum_aggregates_like_c),
        cmocka_unit_test(test_sql_sum_of_no_rows_is_zero),
        cmocka_unit_test(test_sql_functions_absent_until_registered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
