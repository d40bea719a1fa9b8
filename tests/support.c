/* Helpers shared by the cmocka test programs; see support.h. */
#include "support.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "identity.h"
#include "ledger.h"

char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/corridor-test.XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char *copy = strdup(dir);
    assert_non_null(copy);
    return copy;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void test_rmtree(const char *path)
{
    if (path != NULL) {
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

int test_dir_setup(void **state)
{
    *state = test_tmpdir();
    return 0;
}

int test_dir_teardown(void **state)
{
    test_rmtree(*state);
    free(*state);
    *state = NULL;
    return 0;
}

int test_sodium_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

void test_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, (mode_t)mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, (mode_t)mode), 0);
    assert_int_equal(close(fd), 0);
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1024 * 1024;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL) {
        *len = n;
    }
    return buf;
}

char *test_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int64_t test_rechain(sqlite3 *db, int64_t from_seq)
{
    uint8_t prev[LEDGER_HASH_BYTES] = {0};
    sqlite3_stmt *st = NULL;
    if (from_seq > 1) {
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT hash FROM journal WHERE seq = ?1", -1, &st, NULL),
            SQLITE_OK);
        sqlite3_bind_int64(st, 1, from_seq - 1);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_bytes(st, 0), LEDGER_HASH_BYTES);
        memcpy(prev, sqlite3_column_blob(st, 0), LEDGER_HASH_BYTES);
        sqlite3_finalize(st);
    }
    /* a ledger before schema 4 has no reply column */
    bool replies = sqlite3_prepare_v2(db, "SELECT reply FROM journal", -1, &st, NULL) == SQLITE_OK;
    sqlite3_finalize(st);
    sqlite3_stmt *rows = NULL, *set = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        replies ? "SELECT seq, kind, peer, uetr, currency,"
                                                  " amount_minor, reason, content_hash, evidence,"
                                                  " created_ms, reply FROM journal WHERE seq >= ?1"
                                                  " ORDER BY seq"
                                                : "SELECT seq, kind, peer, uetr, currency,"
                                                  " amount_minor, reason, content_hash, evidence,"
                                                  " created_ms, NULL FROM journal WHERE seq >= ?1"
                                                  " ORDER BY seq",
                                        -1, &rows, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE journal SET hash = ?2 WHERE seq = ?1", -1, &set, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(rows, 1, from_seq);
    int64_t rewritten = 0;
    int64_t count = 0;
    /* read first, then write: the statement reading the rows must not see its own updates */
    typedef struct {
        int64_t seq;
        uint8_t hash[LEDGER_HASH_BYTES];
    } rehashed_t;
    rehashed_t *out = NULL;
    while (sqlite3_step(rows) == SQLITE_ROW) {
        assert_int_equal(sqlite3_column_bytes(rows, 7), SETTLEMENT_HASH_BYTES);
        ledger_row_t row = {
            .seq = sqlite3_column_int64(rows, 0),
            .kind = (entry_kind_t)sqlite3_column_int(rows, 1),
            .peer = (const char *)sqlite3_column_text(rows, 2),
            .uetr = (const char *)sqlite3_column_text(rows, 3),
            .currency = (const char *)sqlite3_column_text(rows, 4),
            .amount_minor = sqlite3_column_int64(rows, 5),
            .reason = (const char *)sqlite3_column_text(rows, 6),
            .content_hash = sqlite3_column_blob(rows, 7),
            .evidence = sqlite3_column_blob(rows, 8),
            .evidence_len = (size_t)sqlite3_column_bytes(rows, 8),
            .created_unix_ms = sqlite3_column_int64(rows, 9),
            .reply = sqlite3_column_blob(rows, 10),
            .reply_len = (size_t)sqlite3_column_bytes(rows, 10),
        };
        rehashed_t *grown = realloc(out, (size_t)(count + 1) * sizeof *out);
        assert_non_null(grown);
        out = grown;
        out[count].seq = row.seq;
        ledger_row_hash(prev, &row, out[count].hash);
        memcpy(prev, out[count].hash, LEDGER_HASH_BYTES);
        count++;
    }
    sqlite3_finalize(rows);
    for (int64_t i = 0; i < count; i++) {
        sqlite3_bind_int64(set, 1, out[i].seq);
        sqlite3_bind_blob(set, 2, out[i].hash, LEDGER_HASH_BYTES, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(set), SQLITE_DONE);
        sqlite3_reset(set);
        rewritten++;
    }
    sqlite3_finalize(set);
    free(out);
    return rewritten;
}

identity_t *test_fixed_identity(uint8_t tag)
{
    uint8_t seed[32], box[32], curve_raw[32];
    char curve[41];
    memset(seed, tag, sizeof seed);
    memset(box, (uint8_t)(tag + 0x40), sizeof box);
    memset(curve_raw, (uint8_t)(tag + 0x80), sizeof curve_raw);
    assert_non_null(zmq_z85_encode(curve, curve_raw, sizeof curve_raw));
    identity_t *id = identity_from_secrets(seed, box, curve);
    assert_non_null(id);
    return id;
}

int test_port_lock(int port)
{
    const char *base = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/corridor-test-ports", base != NULL && base[0] ? base : "/tmp");
    (void)mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%d", dir, port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -2;
    }
    return fd;
}
