/*
 * The audit of multilateral set-offs (PROTOCOL.md 3.6.2, 3.12) with three real nodes: A owes B,
 * B owes C, C owes A; a set-off of 2.00 RUB commits and then one of 1.50 RUB is refused by B (AM04:
 * B owes C only 1.00 by then) and aborts. Once every leg is decided the audit of the three homes is
 * clean. Then, the nodes stopped, each home is tampered with as an insider with the source code
 * would (the chain recomputed) and audited alone: B's own decision (to C) signed again with a vote
 * left out (then put back: clean again), a setoff_posted row given the abort's decision as
 * evidence, a committed leg rewritten as voided (its canonical hash recomputed), and an aborted
 * set-off's record marked committed, each reported as a `setoff` violation.
 *
 * Reconciliation (PROTOCOL.md 4.4, 4.8, 4.9): statements carry set-off legs as such (setoff_id,
 * their own entry hash); a leg rewritten at B (its hash and the channel digest kept consistent)
 * is a setoff_mismatch with A, a leg C lost is setoff_missing with B from either side, and a
 * repair imports neither.
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
#include "corridor.pb-c.h"
#include "digest.h"
#include "envelope.h"
#include "identity.h"
#include "home.h"
#include "ledger.h"
#include "nodes.h"
#include "setoff.h"
#include "support.h"
#include "validate.h"

#define SETOFF_WAIT_MS 60000

/* `setoff propose` at n of `ring` (n first) for `amount` RUB, waiting for the decision: its exit
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

/* Nodes A, B and C, each linked to the other two, started; then A owes B 5.00 RUB, B owes C 3.00
 * and C owes A 4.00; *ring is "A,B,C". */
static void ring_of_debts(cluster_t *c, tnode_t **a, tnode_t **b, tnode_t **cc,
                          char ring[static 3 * 9 + 1])
{
    *a = cluster_add(c, NAME_A, NODES_CURRENCIES);
    *b = cluster_add(c, NAME_B, NODES_CURRENCIES);
    *cc = cluster_add(c, NAME_C, NODES_CURRENCIES);
    cluster_link(c, *a, *b, NODES_GENEROUS_CAPS);
    cluster_link(c, *b, *cc, NODES_GENEROUS_CAPS);
    cluster_link(c, *cc, *a, NODES_GENEROUS_CAPS);
    node_start(c, *a);
    node_start(c, *b);
    node_start(c, *cc);
    cmd_result_t r;
    assert_int_equal(node_send(c, *a, *b, "5.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, *b, *cc, "3.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, *cc, *a, "4.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    snprintf(ring, 3 * 9 + 1, "%s,%s,%s", NAME_A, NAME_B, NAME_C);
}

/* `decision` (a SetoffDecision SignedMessage n signed) signed again with n's key with its last
 * vote left out: *out malloc'd. */
static void forge_without_last_vote(const tnode_t *n, const uint8_t *decision, size_t len,
                                    uint8_t **out, size_t *out_len)
{
    Corridor__SignedMessage *sm = (Corridor__SignedMessage *)protobuf_c_message_unpack(
        &corridor__signed_message__descriptor, NULL, len, decision);
    assert_non_null(sm);
    Corridor__Inner *inner = (Corridor__Inner *)protobuf_c_message_unpack(
        &corridor__inner__descriptor, NULL, sm->inner.len, sm->inner.data);
    assert_non_null(inner);
    assert_int_equal(inner->type, MSG_SETOFF_DECISION);
    assert_int_equal(inner->recipient_key_id.len, IDENTITY_KEY_ID_BYTES);
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    assert_true(setoff_message_decode(inner->body.data, inner->body.len, true, &m));
    assert_true(m.verdict.commit);
    assert_int_equal(m.n_votes, 3);
    m.n_votes--;
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(setoff_message_encode(&m, true, &body, &body_len), 0);
    char *key = test_path(n->home, IDENTITY_KEY_FILE);
    identity_t *self = NULL;
    assert_int_equal(identity_load(key, &self), ID_OK);
    free(key);
    assert_int_equal(envelope_sign_version(self, inner->version, inner->recipient_key_id.data,
                                           MSG_SETOFF_DECISION, inner->sequence, body, body_len,
                                           out, out_len),
                     ENV_OK);
    identity_destroy(&self);
    free(body);
    setoff_message_release(&m);
    corridor__inner__free_unpacked(inner, NULL);
    corridor__signed_message__free_unpacked(sm, NULL);
}

static void test_setoff_audit(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    char ring[3 * 9 + 1], committed[CORRIDOR_UETR_LEN + 1], aborted[CORRIDOR_UETR_LEN + 1];
    ring_of_debts(c, &a, &b, &cc, ring);
    tnode_t *const nodes[] = {a, b, cc};
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

    /* B, an insider holding B's key: its own decision to C (the evidence of its setoff_posted
     * row with C: B is that edge's debtor) signed again with the last vote left out, the chain
     * recomputed; then put back */
    sqlite3 *db = db_open(b);
    size_t len = 0;
    uint8_t *decision = leg_evidence(db, 22, committed, NAME_C, &len);
    uint8_t *forged = NULL;
    size_t forged_len = 0;
    forge_without_last_vote(b, decision, len, &forged, &forged_len);
    assert_int_equal(db_run(db,
                            "UPDATE journal SET evidence = ?1 WHERE kind = 22 AND uetr = ?2"
                            " AND peer = '" NAME_C "'",
                            forged, forged_len, committed, 0),
                     1);
    assert_true(test_rechain(db, 1) > 0);
    db_close(db);
    audit(&b, 1, &rep);
    expect_violation(&rep, "setoff", "without every member's valid yes vote", committed);
    audit_report_free(&rep);
    db = db_open(b);
    assert_int_equal(db_run(db,
                            "UPDATE journal SET evidence = ?1 WHERE kind = 22 AND uetr = ?2"
                            " AND peer = '" NAME_C "'",
                            decision, len, committed, 0),
                     1);
    assert_true(test_rechain(db, 1) > 0);
    db_close(db);
    free(decision);
    free(forged);
    audit(&b, 1, &rep);
    if (rep.violations_count != 0) {
        dump(&rep);
        fail_msg("B's decision put back: expected a clean audit again");
    }
    audit_report_free(&rep);

    /* B: its setoff_posted row with A given the abort's decision (a real one, B's own) */
    db = db_open(b);
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

/* ---- reconciliation of set-off legs (PROTOCOL.md 4.8) ---------------------------------------- */

/* `reconcile --json` at self with peer (with --repair when asked): its exit status; *report. */
static int reconcile(cluster_t *c, tnode_t *self, const tnode_t *peer, bool repair, json_t **report)
{
    const char *args[] = {"reconcile",
                          "--home",
                          self->home,
                          "--peer",
                          peer->name,
                          repair ? "--repair" : "--json",
                          repair ? "--json" : NULL,
                          NULL};
    cmd_result_t r;
    int rc = cluster_cmdv(c, 150000, &r, args);
    *report = json_loads(r.out, 0, NULL);
    if (*report == NULL) {
        fail_msg("reconcile at %s exited %d, stdout not JSON: %.500s %.500s", self->name, rc, r.out,
                 r.err);
    }
    cmd_result_free(&r);
    return rc;
}

/* The only break of the report: for `uetr`, of `kind`, naming the set-off as its id, not healed
 * and with an action said. */
static json_t *expect_only_break(json_t *report, const char *uetr, const char *kind)
{
    json_t *breaks = json_object_get(report, "breaks");
    if (json_array_size(breaks) != 1) {
        char *text = json_dumps(report, JSON_INDENT(2));
        print_message("%s\n", text != NULL ? text : "?");
        free(text);
        fail_msg("expected one break, %s for %s", kind, uetr);
    }
    json_t *br = json_array_get(breaks, 0);
    assert_string_equal(json_string_value(json_object_get(br, "uetr")), uetr);
    assert_string_equal(json_string_value(json_object_get(br, "kind")), kind);
    assert_string_equal(json_string_value(json_object_get(br, "id")), uetr);
    assert_false(json_is_true(json_object_get(br, "healed")));
    assert_true(json_is_string(json_object_get(br, "action")));
    return br;
}

/* Moves a stopped node's channel digest from one entry hash to another (either may be NULL), as
 * the ledger keeps it: the sum of its entries' canonical hashes. */
static void move_digest(sqlite3 *db, const char *peer, const uint8_t *removed, const uint8_t *added)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT digest FROM channels WHERE peer = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, 0), DIGEST_BYTES);
    uint8_t digest[DIGEST_BYTES];
    memcpy(digest, sqlite3_column_blob(st, 0), DIGEST_BYTES);
    sqlite3_finalize(st);
    if (removed != NULL) {
        digest_sub(digest, removed);
    }
    if (added != NULL) {
        digest_add(digest, added);
    }
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE channels SET digest = ?2, entries = entries + ?3"
                                        " WHERE peer = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, digest, DIGEST_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, (added != NULL) - (removed != NULL));
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* The canonical hash a stopped node keeps for its settled leg of set-off `id` with `peer`,
 * checked against the definition (the edge's creditor pays); *amount its amount. */
static void leg_hash(sqlite3 *db, const tnode_t *n, const char *peer, const char *id,
                     int64_t *amount, uint8_t hash[static DIGEST_BYTES])
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT amount_minor, direction, canon_hash, fx_leg, status"
                                        " FROM settlements WHERE peer = ?1 AND uetr = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *amount = sqlite3_column_int64(st, 0);
    bool debtor = sqlite3_column_int(st, 1) == DIRECTION_OUT;
    assert_int_equal(sqlite3_column_bytes(st, 2), DIGEST_BYTES);
    assert_int_equal(sqlite3_column_int(st, 3), FX_LEG_SETOFF);
    assert_int_equal(sqlite3_column_int(st, 4), STATUS_SETTLED);
    digest_setoff_leg_entry(debtor ? peer : n->name, debtor ? n->name : peer, id, *amount, "RUB",
                            "settled", "", hash);
    assert_memory_equal(hash, sqlite3_column_blob(st, 2), DIGEST_BYTES);
    sqlite3_finalize(st);
}

/* A stopped node's settled leg of set-off `id` with `peer` rewritten to another amount, its
 * canonical hash and the channel's digest kept consistent. */
static void rewrite_leg(tnode_t *n, const char *peer, const char *id, int64_t delta)
{
    sqlite3 *db = db_open(n);
    int64_t amount = 0;
    uint8_t old_hash[DIGEST_BYTES], new_hash[DIGEST_BYTES];
    leg_hash(db, n, peer, id, &amount, old_hash);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT direction FROM settlements"
                                        " WHERE peer = ?1 AND uetr = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    bool we_owe = sqlite3_column_int(st, 0) == DIRECTION_OUT;
    sqlite3_finalize(st);
    digest_setoff_leg_entry(we_owe ? peer : n->name, we_owe ? n->name : peer, id, amount + delta,
                            "RUB", "settled", "", new_hash);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE settlements SET amount_minor = ?3, canon_hash = ?4"
                                        " WHERE peer = ?1 AND uetr = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, amount + delta);
    sqlite3_bind_blob(st, 4, new_hash, DIGEST_BYTES, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    move_digest(db, peer, old_hash, new_hash);
    db_close(db);
}

/* A stopped node's settled leg of set-off `id` with `peer` removed, as if never recorded (its
 * record and its hash in the channel's digest). */
static void forget_leg(tnode_t *n, const char *peer, const char *id)
{
    sqlite3 *db = db_open(n);
    int64_t amount = 0;
    uint8_t hash[DIGEST_BYTES];
    leg_hash(db, n, peer, id, &amount, hash);
    move_digest(db, peer, hash, NULL);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM settlements WHERE peer = '%s' AND uetr = ?1", peer);
    assert_int_equal(db_run(db, sql, id, 0, NULL, 0), 1);
    db_close(db);
}

/* Statements of a channel carry its set-off legs as such (setoff_id, their own entry hash): a
 * leg rewritten at B is a setoff_mismatch with A, a leg lost at C is setoff_missing with B
 * from either side, and a repair imports neither (a leg is closed by its decision only). */
static void test_setoff_reconcile(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    char ring[3 * 9 + 1], id[CORRIDOR_UETR_LEN + 1];
    ring_of_debts(c, &a, &b, &cc, ring);
    assert_int_equal(propose(c, a, ring, "2.00", id), 0);
    wait_legs_decided(c, a, 2, SETOFF_WAIT_MS);
    wait_legs_decided(c, b, 2, SETOFF_WAIT_MS);
    wait_legs_decided(c, cc, 2, SETOFF_WAIT_MS);
    json_t *rep = NULL;
    assert_int_equal(reconcile(c, a, b, false, &rep), 0);
    assert_int_equal(json_array_size(json_object_get(rep, "breaks")), 0);
    json_decref(rep);
    tnode_t *const nodes[] = {a, b, cc};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(node_stop(c, nodes[i]), 0);
    }
    rewrite_leg(b, NAME_A, id, 100); /* B says 3.00 was taken off A's debt */
    forget_leg(cc, NAME_B, id);      /* C never recorded its leg with B */
    for (size_t i = 0; i < 3; i++) {
        node_start(c, nodes[i]);
    }
    pair_wait_state(c, a, b, "up", 15000);
    pair_wait_state(c, b, cc, "up", 15000);

    assert_int_equal(reconcile(c, a, b, true, &rep), 1);
    json_t *br = expect_only_break(rep, id, "setoff_mismatch");
    json_t *local = json_object_get(br, "local"), *peer = json_object_get(br, "peer");
    assert_int_equal(json_integer_value(json_object_get(local, "amount_minor")), 200);
    assert_int_equal(json_integer_value(json_object_get(peer, "amount_minor")), 300);
    assert_string_equal(json_string_value(json_object_get(local, "setoff_id")), id);
    assert_string_equal(json_string_value(json_object_get(peer, "setoff_id")), id);
    json_decref(rep);

    assert_int_equal(reconcile(c, b, cc, true, &rep), 1);
    expect_only_break(rep, id, "setoff_missing");
    json_decref(rep);
    assert_int_equal(reconcile(c, cc, b, true, &rep), 1);
    expect_only_break(rep, id, "setoff_missing");
    json_decref(rep);
    json_t *lc = node_ledger(c, cc);
    assert_null(ledger_json_find(lc, NAME_B, id, NULL)); /* not imported */
    json_decref(lc);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(node_stop(c, nodes[i]), 0);
    }
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_setoff_audit, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_reconcile, cluster_setup, cluster_teardown),
    };
    return cmocka_run_group_tests_name("setoff_audit", tests, NULL, NULL);
}
