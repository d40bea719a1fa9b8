/*
 * Benchmarks of the parts below the node, driven by scripts/bench.sh. Each prints one JSON
 * object on stdout with its figures, so the script can put them side by side with the
 * machine's ceilings measured in the same run. Not a test: it asserts nothing about speed.
 *
 *   bench_core crypto                    Ed25519 sign/verify per second, one core
 *   bench_core sqlite DIR                raw SQLite synchronous=FULL rows/s at batch 100, and
 *                                        the disk's fdatasync latency (p50, p99) in DIR
 *   bench_core ledger DIR                bookings/s at group sizes 1, 100, 1000 and the raw
 *                                        rate of the same rows written without ledger logic
 *   bench_core audit DIR N               audit entries/s over N signed entries
 *   bench_core build HOME_A HOME_B N D   fills two linked homes' ledgers with N identical
 *                                        channel entries, then D entries only on A
 *   bench_core cycle DIR N               books N settled entries into one channel, then times
 *                                        a cycle close as channel_cycle_close makes it (figures
 *                                        at the cut, statement, signature, stored)
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "audit.h"
#include "corridor.pb-c.h"
#include "cycle.h"
#include "cycles.h"
#include "config.h"
#include "envelope.h"
#include "home.h"
#include "identity.h"
#include "ledger.h"
#include "ledger_db.h"
#include "settlement.h"
#include "validate.h"

/* Endpoints for the homes `build` makes (so nodes can run on them); NULL: unused. */
static const char *bench_listen[2];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_core: %s\n", what);
    exit(1);
}

static int bench_crypto(void)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t sig[crypto_sign_BYTES], msg[300];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    int n = 20000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        msg[0] = (uint8_t)i;
        crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    }
    double t1 = now_s();
    for (int i = 0; i < n; i++) {
        if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0) {
            die("verify failed");
        }
    }
    double t2 = now_s();
    printf(
        "{\"sign_per_s\": %.0f, \"verify_per_s\": %.0f, \"sign_us\": %.2f, \"verify_us\": %.2f}\n",
        n / (t1 - t0), n / (t2 - t1), (t1 - t0) * 1e6 / n, (t2 - t1) * 1e6 / n);
    return 0;
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, err);
        exit(1);
    }
}

/* The rows one booking writes (a settlement, a journal row, two account updates), written
 * with plain SQL in batches: the ceiling the ledger's logic is compared with. */
static double raw_rate(const char *path, int batch, int total)
{
    sqlite3 *db = NULL;
    remove(path);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        die("open raw db");
    }
    exec_or_die(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                    "CREATE TABLE s(id INTEGER PRIMARY KEY, peer TEXT, uetr TEXT, d INT, a INT,"
                    " c TEXT, h BLOB, k BLOB, st INT, r TEXT, e2e TEXT, vd TEXT, dn TEXT,"
                    " da TEXT, cn TEXT, ca TEXT, rm TEXT, t INT, reply BLOB, UNIQUE(peer, uetr));"
                    "CREATE TABLE j(seq INTEGER PRIMARY KEY, sid INT, kind INT, peer TEXT,"
                    " uetr TEXT, c TEXT, a INT, r TEXT, h BLOB, ev BLOB, t INT, hash BLOB);"
                    "CREATE TABLE acc(kind TEXT, peer TEXT, c TEXT, posted INT, pending INT,"
                    " PRIMARY KEY(kind, peer, c)) WITHOUT ROWID;"
                    "INSERT INTO acc VALUES('peer','P','RUB',0,0),('clearing','','RUB',0,0);");
    sqlite3_stmt *ins_s, *ins_j, *upd;
    sqlite3_prepare_v2(db,
                       "INSERT INTO s(peer,uetr,d,a,c,h,k,st,r,e2e,vd,dn,da,cn,ca,rm,t)"
                       " VALUES('P',?1,1,100,'RUB',?2,?2,1,'','','2026-11-27','','','','','',0)",
                       -1, &ins_s, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO j(sid,kind,peer,uetr,c,a,r,h,ev,t,hash)"
                       " VALUES(?1,4,'P',?2,'RUB',100,'',?3,?4,0,?3)",
                       -1, &ins_j, NULL);
    sqlite3_prepare_v2(db, "UPDATE acc SET posted = posted + ?1 WHERE kind = ?2", -1, &upd, NULL);
    uint8_t hash[32] = {1}, evidence[330] = {2};
    char uetr[CORRIDOR_UETR_LEN + 1];
    double t0 = now_s();
    for (int done = 0; done < total;) {
        exec_or_die(db, "BEGIN IMMEDIATE");
        for (int i = 0; i < batch && done < total; i++, done++) {
            uetr_generate(uetr);
            sqlite3_bind_text(ins_s, 1, uetr, -1, SQLITE_STATIC);
            sqlite3_bind_blob(ins_s, 2, hash, 32, SQLITE_STATIC);
            sqlite3_step(ins_s);
            sqlite3_reset(ins_s);
            sqlite3_bind_int64(ins_j, 1, sqlite3_last_insert_rowid(db));
            sqlite3_bind_text(ins_j, 2, uetr, -1, SQLITE_STATIC);
            sqlite3_bind_blob(ins_j, 3, hash, 32, SQLITE_STATIC);
            sqlite3_bind_blob(ins_j, 4, evidence, sizeof evidence, SQLITE_STATIC);
            sqlite3_step(ins_j);
            sqlite3_reset(ins_j);
            for (int side = 0; side < 2; side++) {
                sqlite3_bind_int(upd, 1, side == 0 ? 100 : -100);
                sqlite3_bind_text(upd, 2, side == 0 ? "peer" : "clearing", -1, SQLITE_STATIC);
                sqlite3_step(upd);
                sqlite3_reset(upd);
            }
        }
        exec_or_die(db, "COMMIT");
    }
    double rate = total / (now_s() - t0);
    sqlite3_finalize(ins_s);
    sqlite3_finalize(ins_j);
    sqlite3_finalize(upd);
    sqlite3_close(db);
    return rate;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The latency of one durable commit's sync: a 4 KiB append and fdatasync, FSYNC_ROUNDS
 * times. A settlement is final after three commits in series (the sender's, the receiver's,
 * the sender's again), so three of these bound its latency from below. */
#define FSYNC_ROUNDS 300
static void fsync_latency(const char *dir, double *p50_us, double *p99_us)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        die("open fsync.bin");
    }
    static double us[FSYNC_ROUNDS];
    char page[4096];
    memset(page, 0x5a, sizeof page);
    for (int i = 0; i < FSYNC_ROUNDS; i++) {
        double t0 = now_s();
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page || fdatasync(fd) != 0) {
            die("write/fdatasync");
        }
        us[i] = (now_s() - t0) * 1e6;
    }
    close(fd);
    unlink(path);
    qsort(us, FSYNC_ROUNDS, sizeof us[0], compare_doubles);
    *p50_us = us[FSYNC_ROUNDS / 2];
    *p99_us = us[FSYNC_ROUNDS * 99 / 100];
}

static int bench_sqlite(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/raw.db", dir);
    double rate = raw_rate(path, 100, 20000), p50 = 0, p99 = 0;
    fsync_latency(dir, &p50, &p99);
    printf("{\"sqlite_full_rows_per_s_batch100\": %.0f, \"fsync_us\": {\"p50\": %.0f, \"p99\": "
           "%.0f}}\n",
           rate, p50, p99);
    return 0;
}

static void make_settlement(settlement_t *s, const char *peer, direction_t dir, int64_t amount)
{
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    s->direction = dir;
    uetr_generate(s->uetr);
    s->amount_minor = amount;
    strcpy(s->currency, "RUB");
    strcpy(s->value_date, "2026-11-27");
    strcpy(s->debtor_name, "Importer LLC");
    strcpy(s->creditor_name, "Exporter PJSC");
    s->created_unix_ms = 1790000000000;
}

static double ledger_rate(const char *path, int group, int total)
{
    remove(path);
    ledger_t *l = NULL;
    char err[512];
    if (ledger_open(path, "BKRURUMM", LEDGER_READ_WRITE, NULL, &l, err, sizeof err) != LEDGER_OK) {
        die(err);
    }
    uint8_t evidence[330];
    randombytes_buf(evidence, sizeof evidence);
    double t0 = now_s();
    for (int done = 0; done < total;) {
        if (ledger_begin(l) != LEDGER_OK) {
            die("begin");
        }
        for (int i = 0; i < group && done < total; i++, done++) {
            settlement_t s;
            ledger_outcome_t out;
            make_settlement(&s, "BMJIIRTH", DIRECTION_IN, 100);
            if (ledger_receive(l, &s, INT64_C(1) << 60, NULL, evidence, sizeof evidence, 0, &out) !=
                LEDGER_OK) {
                die("receive");
            }
        }
        if (ledger_commit(l) != LEDGER_OK) {
            die("commit");
        }
    }
    double rate = total / (now_s() - t0);
    ledger_close(&l);
    return rate;
}

static int bench_ledger(const char *dir)
{
    char path[4096], raw[4096];
    snprintf(path, sizeof path, "%s/bench-ledger.db", dir);
    snprintf(raw, sizeof raw, "%s/bench-raw.db", dir);
    double g1 = ledger_rate(path, 1, 300);
    double g100 = ledger_rate(path, 100, 20000);
    double g1000 = ledger_rate(path, 1000, 40000);
    double raw1 = raw_rate(raw, 1, 300);
    double raw100 = raw_rate(raw, 100, 20000);
    double raw1000 = raw_rate(raw, 1000, 40000);
    printf("{\"bookings_per_s\": {\"1\": %.0f, \"100\": %.0f, \"1000\": %.0f},"
           " \"raw_per_s\": {\"1\": %.0f, \"100\": %.0f, \"1000\": %.0f},"
           " \"ratio_at_100\": %.3f}\n",
           g1, g100, g1000, raw1, raw100, raw1000, g100 / raw100);
    return 0;
}

/* A home for benchmarks: init-like, without the command line (keys, config, ledger). */
static identity_t *make_home(const char *dir, const char *name, const char *listen,
                             config_t *config)
{
    mkdir(dir, 0700);
    identity_t *id = identity_generate();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, IDENTITY_KEY_FILE);
    if (id == NULL || identity_save(id, path) != ID_OK) {
        die("keys");
    }
    memset(config, 0, sizeof *config);
    snprintf(config->name, sizeof config->name, "%s", name);
    snprintf(config->listen, sizeof config->listen, "%s", listen);
    if (!endpoint_stream_default(listen, config->listen_stream, sizeof config->listen_stream)) {
        die("no stream endpoint next to the listen endpoint");
    }
    char err[128];
    if (config_set_currencies(config, "RUB", err, sizeof err) != 0) {
        die(err);
    }
    return id;
}

static void link_homes(const char *dir, config_t *config, const identity_t *other_id,
                       const char *other_name, const char *other_endpoint)
{

    config_peer_t *p = &config->peers[config->peers_count++];
    identity_card(other_id, other_name, other_endpoint, &p->card);
    if (!endpoint_stream_default(other_endpoint, p->card.stream, sizeof p->card.stream)) {
        die("no stream endpoint next to the peer's endpoint");
    }
    if (config_peer_set_limit(p, "RUB", CORRIDOR_AMOUNT_MINOR_MAX) != 0) {
        die("limit");
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, CONFIG_FILE);
    if (config_save(config, path) != 0) {
        die("config");
    }
}

static ledger_t *open_ledger(const char *dir, const char *name)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, LEDGER_FILE);
    ledger_t *l = NULL;
    if (ledger_open(path, name, LEDGER_READ_WRITE, NULL, &l, err, sizeof err) != LEDGER_OK) {
        die(err);
    }
    return l;
}

/* One settled A->B settlement on both ledgers, with real signed evidence on both sides, in the
 * newest wire version (a version-1 StatusReport names no Settlement contents, so a repair could
 * not import it: reconcile's differences would never heal). */
static void settle_pair(ledger_t *la, ledger_t *lb, const identity_t *a, const identity_t *b,
                        bool on_b)
{
    settlement_t s;
    make_settlement(&s, "BMJIIRTH", DIRECTION_OUT, 100 + (int64_t)(randombytes_uniform(1000)));
    uint8_t *body = NULL, *signed_s = NULL, *signed_r = NULL;
    size_t body_len = 0, signed_s_len = 0, signed_r_len = 0;
    if (settlement_encode(&s, &body, &body_len) != 0 ||
        envelope_sign_version(a, INNER_VERSION_MAX, b->key_id, MSG_SETTLEMENT, 1, body, body_len,
                              &signed_s, &signed_s_len) != ENV_OK) {
        die("sign settlement");
    }
    ledger_outcome_t out;
    if (ledger_send(la, &s, signed_s, signed_s_len, 0, &out) != LEDGER_OK) {
        die("send");
    }
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = s.uetr;
    sr.status = "ACSC";
    sr.currency = s.currency;
    uint8_t body_hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, body_hash);
    sr.settlement_hash = (ProtobufCBinaryData){sizeof body_hash, body_hash};
    uint8_t sr_body[320];
    size_t sr_len = corridor__status_report__pack(&sr, sr_body);
    if (envelope_sign_version(b, INNER_VERSION_MAX, a->key_id, MSG_STATUS_REPORT, 1, sr_body,
                              sr_len, &signed_r, &signed_r_len) != ENV_OK ||
        ledger_resolve_answering(la, "BMJIIRTH", s.uetr, body_hash, true, NULL, signed_r,
                                 signed_r_len, 0, &out) != LEDGER_OK) {
        die("resolve");
    }
    if (on_b) {
        s.direction = DIRECTION_IN;
        strcpy(s.peer, "BKRURUMM");
        if (ledger_receive(lb, &s, CORRIDOR_AMOUNT_MINOR_MAX, NULL, signed_s, signed_s_len, 0,
                           &out) != LEDGER_OK ||
            out.status != STATUS_SETTLED) {
            die("receive");
        }
    }
    free(body);
    free(signed_s);
    free(signed_r);
}

static int bench_build(const char *home_a, const char *home_b, long n, long differences)
{
    config_t *ca = config_new(), *cb = config_new();
    const char *listen_a = bench_listen[0] ? bench_listen[0] : "tcp://127.0.0.1:1";
    const char *listen_b = bench_listen[1] ? bench_listen[1] : "tcp://127.0.0.1:2";
    identity_t *a = make_home(home_a, "BKRURUMM", listen_a, ca);
    identity_t *b = make_home(home_b, "BMJIIRTH", listen_b, cb);
    link_homes(home_a, ca, b, "BMJIIRTH", listen_b);
    link_homes(home_b, cb, a, "BKRURUMM", listen_a);
    ledger_t *la = open_ledger(home_a, "BKRURUMM");
    ledger_t *lb = open_ledger(home_b, "BMJIIRTH");
    double t0 = now_s();
    for (long done = 0; done < n + differences;) {
        if (ledger_begin(la) != LEDGER_OK || ledger_begin(lb) != LEDGER_OK) {
            die("begin");
        }
        for (long i = 0; i < 10000 && done < n + differences; i++, done++) {
            settle_pair(la, lb, a, b, done < n);
        }
        if (ledger_commit(la) != LEDGER_OK || ledger_commit(lb) != LEDGER_OK) {
            die("commit");
        }
        if (isatty(2)) {
            fprintf(stderr, "\rbuilding: %ld of %ld entries", done, n + differences);
        }
    }
    if (isatty(2)) {
        fputc('\n', stderr);
    }
    printf("{\"entries\": %ld, \"differences\": %ld, \"build_s\": %.1f}\n", n, differences,
           now_s() - t0);
    ledger_close(&la);
    ledger_close(&lb);
    identity_destroy(&a);
    identity_destroy(&b);
    config_destroy(&ca);
    config_destroy(&cb);
    return 0;
}

static int bench_audit(const char *dir, long n)
{
    char home_a[4096], home_b[4096];
    snprintf(home_a, sizeof home_a, "%s/audit-A", dir);
    snprintf(home_b, sizeof home_b, "%s/audit-B", dir);
    bench_build(home_a, home_b, n, 0);
    const char *homes[] = {home_a};
    audit_report_t report;
    audit_report_init(&report);
    double t0 = now_s();
    audit_homes(homes, 1, NULL, 0, &report);
    double elapsed = now_s() - t0;
    printf("{\"audit_entries\": %" PRIu64 ", \"audit_s\": %.2f, \"audit_entries_per_s\": %.0f,"
           " \"violations\": %zu}\n",
           report.entries_checked, elapsed, (double)report.entries_checked / elapsed,
           report.violations_count);
    audit_report_free(&report);
    return 0;
}

/* ZeroMQ CURVE messages per second over loopback (PUSH to PULL, 400-byte frames). */
/* One close of cycle `number` at the cut (own_sent, peer_sent), timed in ms: what
 * channel_cycle_close does in its transaction (statement_at, sign, ledger_cycle_propose). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double close_cpu_ms; /* the CPU time of the last close_once */

static double close_once(ledger_t *l, const uint8_t *secret, uint64_t number, uint64_t own_sent,
                         uint64_t peer_sent, uint64_t *entries)
{
    double t0 = now_s(), c0 = cpu_s();
    if (ledger_begin(l) != LEDGER_OK) {
        die("begin");
    }
    ledger_cycle_figures_t figs;
    if (ledger_cycle_at_cut(l, "BMJIIRTH", own_sent, peer_sent, &figs) != LEDGER_OK) {
        die(ledger_last_error(l));
    }
    cycle_view_t views[CYCLE_CURRENCIES_MAX];
    uint8_t digest[DIGEST_BYTES], signature[crypto_sign_BYTES];
    ledger_cycle_views(&figs, views, digest, entries);
    cycle_statement_t st;
    uint8_t *statement = NULL;
    size_t len = 0;
    if (!cycle_statement_from_view(&st, "BKRURUMM", "BMJIIRTH", number, own_sent, peer_sent, views,
                                   figs.n, digest, *entries) ||
        cycle_statement_encode(&st, &statement, &len) != 0 ||
        cycle_sign(statement, len, secret, signature) != 0) {
        die("statement");
    }
    if (ledger_cycle_propose(l, "BMJIIRTH", number, true, own_sent, peer_sent, statement, len,
                             signature, &figs) != LEDGER_OK ||
        ledger_commit(l) != LEDGER_OK) {
        die(ledger_last_error(l));
    }
    free(statement);
    close_cpu_ms = (cpu_s() - c0) * 1000;
    return (now_s() - t0) * 1000;
}

/* N settled entries in one channel (received, each at the next peer sequence), booked in
 * transactions of 10000; then a close at the present cut, and one at a cut 1000 entries behind
 * (the peer's proposal at a cut we have gone past: the settlements above it are undone). */
static int bench_cycle(const char *dir, long n)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/cycle.db", dir);
    remove(path);
    ledger_t *l = NULL;
    if (ledger_open(path, "BKRURUMM", LEDGER_READ_WRITE, NULL, &l, err, sizeof err) != LEDGER_OK) {
        die(err);
    }
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    exec_or_die(ledger_db(l), "PRAGMA synchronous=OFF"); /* the bulk path: booking is not timed */
    uint8_t evidence[330];
    randombytes_buf(evidence, sizeof evidence);
    double t0 = now_s();
    for (long done = 0; done < n;) {
        if (ledger_begin(l) != LEDGER_OK) {
            die("begin");
        }
        for (long i = 0; i < 10000 && done < n; i++, done++) {
            settlement_t s;
            ledger_outcome_t out;
            make_settlement(&s, "BMJIIRTH", DIRECTION_IN, 100 + (int64_t)(done % 1000));
            if (ledger_receive(l, &s, INT64_C(1) << 60, NULL, evidence, sizeof evidence,
                               (uint64_t)done + 1, &out) != LEDGER_OK ||
                out.status != STATUS_SETTLED) {
                die("receive");
            }
        }
        if (ledger_commit(l) != LEDGER_OK) {
            die("commit");
        }
        if (isatty(2)) {
            fprintf(stderr, "\rbooking: %ld of %ld settlements", done, n);
        }
    }
    if (isatty(2)) {
        fputc('\n', stderr);
    }
    double book_s = now_s() - t0;
    exec_or_die(ledger_db(l), "PRAGMA synchronous=FULL"); /* the close as a node makes it */
    uint64_t entries = 0, entries_behind = 0;
    long behind = n > 1000 ? 1000 : n / 2;
    double behind_ms = close_once(l, sk, 1, 0, (uint64_t)(n - behind), &entries_behind);
    double behind_cpu_ms = close_cpu_ms;
    if (ledger_begin(l) != LEDGER_OK || ledger_cycle_forget(l, "BMJIIRTH", 1) != LEDGER_OK ||
        ledger_commit(l) != LEDGER_OK) { /* as a refused one would be */
        die("forget");
    }
    double close_ms = close_once(l, sk, 1, 0, (uint64_t)n, &entries);
    double cpu_ms = close_cpu_ms;
    if (entries != (uint64_t)n || entries_behind != (uint64_t)(n - behind)) {
        die("the close does not count every settlement");
    }
    printf("{\"settlements\": %ld, \"book_s\": %.1f, \"close_ms\": %.3f, \"close_cpu_ms\": %.3f,"
           " \"entries\": %" PRIu64 ", \"close_behind_ms\": %.3f, \"close_behind_cpu_ms\": %.3f,"
           " \"behind\": %ld}\n",
           n, book_s, close_ms, cpu_ms, entries, behind_ms, behind_cpu_ms, behind);
    ledger_close(&l);
    remove(path);
    return 0;
}

static int bench_curve(void)
{
    char server_pub[41], server_sec[41], client_pub[41], client_sec[41];
    zmq_curve_keypair(server_pub, server_sec);
    zmq_curve_keypair(client_pub, client_sec);
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int one = 1, hwm = 100000;
    zmq_setsockopt(pull, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(pull, ZMQ_CURVE_SECRETKEY, server_sec, 40);
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0) {
        die("bind");
    }
    char endpoint[128];
    size_t size = sizeof endpoint;
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &size);
    zmq_setsockopt(push, ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt(push, ZMQ_CURVE_PUBLICKEY, client_pub, 40);
    zmq_setsockopt(push, ZMQ_CURVE_SECRETKEY, client_sec, 40);
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_connect(push, endpoint);
    char frame[400] = {0};
    int n = 200000;
    double t0 = 0;
    for (int i = 0; i < n; i++) {
        zmq_send(push, frame, sizeof frame, 0);
        if (i == 0) {
            char buf[400];
            zmq_recv(pull, buf, sizeof buf, 0); /* first one: the handshake is done */
            t0 = now_s();
        }
    }
    char buf[400];
    for (int i = 1; i < n; i++) {
        zmq_recv(pull, buf, sizeof buf, 0);
    }
    double rate = (n - 1) / (now_s() - t0);
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    printf("{\"curve_msgs_per_s\": %.0f}\n", rate);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "curve") == 0) {
        return bench_curve();
    }
    if (sodium_init() < 0) {
        die("libsodium");
    }
    if (argc >= 2 && strcmp(argv[1], "crypto") == 0) {
        return bench_crypto();
    }
    if (argc >= 3 && strcmp(argv[1], "sqlite") == 0) {
        return bench_sqlite(argv[2]);
    }
    if (argc >= 3 && strcmp(argv[1], "ledger") == 0) {
        return bench_ledger(argv[2]);
    }
    if (argc >= 4 && strcmp(argv[1], "audit") == 0) {
        return bench_audit(argv[2], atol(argv[3]));
    }
    if (argc >= 4 && strcmp(argv[1], "cycle") == 0) {
        return bench_cycle(argv[2], atol(argv[3]));
    }
    if (argc >= 8 && strcmp(argv[1], "build") == 0) {
        bench_listen[0] = argv[6];
        bench_listen[1] = argv[7];
    }
    if (argc >= 6 && strcmp(argv[1], "build") == 0) {
        return bench_build(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
    }
    fprintf(stderr,
            "usage: bench_core crypto | sqlite DIR | ledger DIR | audit DIR N |"
            " build HOME_A HOME_B N DIFFERENCES [LISTEN_A LISTEN_B] | cycle DIR N | curve\n");
    return 2;
}
