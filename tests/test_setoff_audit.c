/*
 * The audit of multilateral set-offs (PROTOCOL.md 3.6.2, 3.12) with three real nodes: A owes B,
 * B owes C, C owes A; a set-off of 2.00 RUB commits and then one of 1.50 RUB is refused by B (AM04:
 * B owes C only 1.00 by then) and aborts. Once every leg is decided the audit of the three homes is
 * clean. Then, the nodes stopped, each home is tampered with as an insider with the source code
 * would (the chain recomputed) and audited alone: a setoff_posted row given the abort's decision as
 * evidence, a committed leg rewritten as voided (its canonical hash recomputed), and an aborted
 * set-off's record marked committed, each reported as a `setoff` violation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "digest.h"
#include "home.h"
#include "ledger.h"
#include "nodes.h"
#include "support.h"
#include "validate.h"

#define SETOFF_WAIT_MS 60000

/* `setoff propose` at n of the ring n,n2,n3 for `amount` RUB, waiting for the decision: its exit
 * status; *id the set-off id (from --json). */
static int propose(cluster_t *c, tnode_t *n, const char *ring, const char *amount,
                   char id[static CORRIDOR_UETR_LEN + 1])
{
    cmd_result_t r;
    int rc =
        cluster_cmd(c, SETOFF_WAIT_MS, &r, "setoff", "propose", "--home", n->home, "--ring", ring,
                    "--currency", "RUB", "--amount", amount, "--wait", "30", "--json", NULL);
    json_t *doc = json_loads(r.out, 0, NULL);
    if (doc == NULL) {
        fail_msg("setoff propose (exit %d) printed no JSON: %s %s", rc, r.out, r.err);
    }
    const char *got = json_string_value(json_object_get(doc, "setoff_id"));
    assert_non_null(got);
    assert_int_equal(uetr_check(got), VALID_OK);
    snprintf(id, CORRIDOR_UETR_LEN + 1, "%s", got);
    json_decref(doc);
    cmd_result_free(&r);
    return rc;
}

/* Waits until `setoff list --json` at n shows `legs` legs, none pending; fails after timeout_ms. */
static void wait_legs_decided(cluster_t *c, tnode_t *n, size_t legs, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        cmd_result_t r;
        assert_int_equal(
            cluster_cmd(c, 30000, &r, "setoff", "list", "--home", n->home, "--json", NULL), 0);
        json_t *doc = json_loads(r.out, 0, NULL);
        assert_non_null(doc);
        cmd_result_free(&r);
        size_t seen = 0, pending = 0, i, j;
        json_t *s, *leg;
        json_array_foreach(json_object_get(doc, "setoffs"), i, s)
        {
            json_array_foreach(json_object_get(s, "legs"), j, leg)
            {
                seen++;
                pending +=
                    strcmp(json_string_value(json_object_get(leg, "status")), "pending") == 0;
            }
        }
        json_decref(doc);
        if (seen == legs && pending == 0) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("%s: %zu set-off legs, %zu pending after %d ms (want %zu decided)", n->name,
                     seen, pending, timeout_ms, legs);
        }
        sleep_ms(200);
    }
}

static sqlite3 *db_open(const tnode_t *n)
{
    char *path = test_path(n->home, LEDGER_FILE);
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

/* The integer of a query with the text `id` bound to ?1 (the row must exist). */
static int64_t db_int(sqlite3 *db, const char *sql, const char *id)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        fail_msg("%s: no row", sql);
    }
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* Runs a statement with `a` bound to ?1 and `b` (may be NULL) to ?2 (blobs when a_len/b_len
 * are not 0, else text); returns the rows it changed. */
static int db_run(sqlite3 *db, const char *sql, const void *a, size_t a_len, const void *b,
                  size_t b_len)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    if (a_len > 0) {
        sqlite3_bind_blob(stmt, 1, a, (int)a_len, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_text(stmt, 1, a, -1, SQLITE_TRANSIENT);
    }
    if (b != NULL && b_len > 0) {
        sqlite3_bind_blob(stmt, 2, b, (int)b_len, SQLITE_TRANSIENT);
    } else if (b != NULL) {
        sqlite3_bind_text(stmt, 2, b, -1, SQLITE_TRANSIENT);
    }
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    return sqlite3_changes(db);
}

/* The evidence of the one journal row of `kind` of set-off `id` with `peer` (malloc'd). */
static uint8_t *leg_evidence(sqlite3 *db, int kind, const char *id, const char *peer, size_t *len)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT evidence FROM journal WHERE kind = ?1"
                                        " AND uetr = ?2 AND peer = ?3",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(stmt, 1, kind);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, peer, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    *len = (size_t)sqlite3_column_bytes(stmt, 0);
    assert_true(*len > 0);
    uint8_t *copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, sqlite3_column_blob(stmt, 0), *len);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE); /* one such row */
    sqlite3_finalize(stmt);
    return copy;
}

static void dump(const audit_report_t *r)
{
    print_message("audit: %zu violations, %llu entries checked\n", r->violations_count,
                  (unsigned long long)r->entries_checked);
    for (size_t i = 0; i < r->violations_count; i++) {
        print_message("  [%s] %s: %s\n", r->violations[i].kind, r->violations[i].home,
                      r->violations[i].detail);
    }
}

/* The in-process audit of the given homes. */
static void audit(tnode_t *const *nodes, size_t count, audit_report_t *r)
{
    const char *homes[3];
    assert_true(count <= 3);
    for (size_t i = 0; i < count; i++) {
        homes[i] = nodes[i]->home;
    }
    audit_report_init(r);
    assert_int_equal(audit_homes(homes, count, NULL, 0, r), 0);
}

/* Fails unless a violation of `kind` mentions both needles (the second may be NULL). */
static void expect_violation(const audit_report_t *r, const char *kind, const char *needle,
                             const char *also)
{
    for (size_t i = 0; i < r->violations_count; i++) {
        const audit_violation_t *v = &r->violations[i];
        if (strcmp(v->kind, kind) == 0 && strstr(v->detail, needle) != NULL &&
            (also == NULL || strstr(v->detail, also) != NULL)) {
            return;
        }
    }
    dump(r);
    fail_msg("no '%s' violation mentioning '%s'%s%s", kind, needle, also ? " and " : "",
             also ? also : "");
}

static void test_setoff_audit(void **state)
{
    cluster_t *c = *state;
    tnode_t *a = cluster_add(c, NAME_A, NODES_CURRENCIES);
    tnode_t *b = cluster_add(c, NAME_B, NODES_CURRENCIES);
    tnode_t *cc = cluster_add(c, NAME_C, NODES_CURRENCIES);
    cluster_link(c, a, b, NODES_GENEROUS_CAPS);
    cluster_link(c, b, cc, NODES_GENEROUS_CAPS);
    cluster_link(c, cc, a, NODES_GENEROUS_CAPS);
    tnode_t *const nodes[] = {a, b, cc};
    for (size_t i = 0; i < 3; i++) {
        node_start(c, nodes[i]);
    }
    cmd_result_t r;
    assert_int_equal(node_send(c, a, b, "5.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, b, cc, "3.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, cc, a, "4.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);

    char ring[3 * 9 + 1], committed[CORRIDOR_UETR_LEN + 1], aborted[CORRIDOR_UETR_LEN + 1];
    snprintf(ring, sizeof ring, "%s,%s,%s", NAME_A, NAME_B, NAME_C);
    assert_int_equal(propose(c, a, ring, "2.00", committed), 0);
    assert_int_equal(propose(c, a, ring, "1.50", aborted), 1); /* B owes C 1.00 now: AM04 */
    /* the decisions travel back round the ring: every leg decided at every node */
    wait_legs_decided(c, a, 3, SETOFF_WAIT_MS);
    wait_legs_decided(c, b, 3, SETOFF_WAIT_MS);
    wait_legs_decided(c, cc, 2, SETOFF_WAIT_MS);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(node_stop(c, nodes[i]), 0);
    }

    /* the fixture holds what the test thinks: two legs posted at each node, B's leg with A of
     * the aborted set-off voided, A's leg with B of it voided */
    for (size_t i = 0; i < 3; i++) {
        sqlite3 *db = db_open(nodes[i]);
        assert_int_equal(
            db_int(db, "SELECT count(*) FROM journal WHERE kind = 22 AND uetr = ?1", committed), 2);
        assert_int_equal(
            db_int(db, "SELECT count(*) FROM journal WHERE kind = 23 AND uetr = ?1", aborted),
            i == 2 ? 0 : 1);
        db_close(db);
    }
    audit_report_t rep;
    audit(nodes, 3, &rep);
    if (rep.violations_count != 0) {
        dump(&rep);
        fail_msg("expected a clean audit of a committed and an aborted set-off");
    }
    assert_true(rep.entries_checked >= 3 * 3 + 3 * 4);
    audit_report_free(&rep);

    /* B: its setoff_posted row with A given the abort's decision (a real one, B's own) */
    sqlite3 *db = db_open(b);
    size_t len = 0;
    uint8_t *abort_decision = leg_evidence(db, 23, aborted, NAME_A, &len);
    assert_int_equal(db_run(db,
                            "UPDATE journal SET evidence = ?1 WHERE kind = 22 AND uetr = ?2"
                            " AND peer = '" NAME_A "'",
                            abort_decision, len, committed, 0),
                     1);
    free(abort_decision);
    assert_true(test_rechain(db, 1) > 0);
    db_close(db);
    audit(&b, 1, &rep);
    expect_violation(&rep, "setoff", "setoff_posted", committed);
    audit_report_free(&rep);

    /* C: its committed leg with A (C owes A) rewritten as voided, with the canonical hash its
     * fields give: money moved against the proposer's commit */
    db = db_open(cc);
    uint8_t canon[DIGEST_BYTES];
    digest_setoff_leg_entry(NAME_A, NAME_C, committed, 200, "RUB", "rejected", "AM04", canon);
    assert_int_equal(db_run(db,
                            "UPDATE settlements SET status = 2, reason = 'AM04', canon_hash = ?1"
                            " WHERE uetr = ?2 AND peer = '" NAME_A "'",
                            canon, sizeof canon, committed, 0),
                     1);
    db_close(db);
    audit(&cc, 1, &rep);
    expect_violation(&rep, "setoff", "voided under a committed set-off", committed);
    audit_report_free(&rep);

    /* A: the aborted set-off's record marked committed */
    db = db_open(a);
    assert_int_equal(db_run(db, "UPDATE setoffs SET state = 1, reason = '' WHERE setoff_id = ?1",
                            aborted, 0, NULL, 0),
                     1);
    db_close(db);
    audit(&a, 1, &rep);
    expect_violation(&rep, "setoff", "differs from its verdict", aborted);
    expect_violation(&rep, "setoff", "voided under a committed set-off", aborted);
    audit_report_free(&rep);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_setoff_audit, cluster_setup, cluster_teardown),
    };
    return cmocka_run_group_tests_name("setoff_audit", tests, NULL, NULL);
}
