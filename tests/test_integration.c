/*
 * Integration tests: real `corridor` processes on loopback, driven through the command line
 * exactly as an operator would (the README's contract), their ledgers read with `ledger --json`
 * and audited with `audit --json`.
 *
 * Each test builds its own nodes in a fresh scratch directory (tests/nodes.c), sends
 * settlements with `send` (one at a time, or `--batch` CSV files), disturbs the nodes (offline
 * peer, SIGKILL mid-stream, hostile transport clients, a home restored from an old copy) and
 * then checks the books: exact counts, each UETR once per channel side, positions that mirror
 * and equal the sums sent, and a clean audit of the homes together. The cmocka teardown kills
 * and reaps every process and prints the nodes' log tails when a test failed.
 */
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "identity.h"
#include "nodes.h"
#include "validate.h"

#define CURRENCIES     NODES_CURRENCIES
#define CURRENCY_COUNT NODES_CURRENCY_COUNT

#define QUIESCE_MS      120000 /* the bound for a stream to drain */
#define SEND_TIMEOUT_MS 60000
#define UETR_SIZE       (CORRIDOR_UETR_LEN + 1)
#define KEY_CHARS       IDENTITY_CURVE_KEY_CHARS /* a CURVE key in Z85 */

/* ---- settlement plans ---------------------------------------------------------------------- */

/* `send --batch FILE` from a node; asserts exit 0. */
static void send_batch(cluster_t *c, tnode_t *from, const char *path)
{
    cmd_result_t r;
    cluster_cmd(c, SEND_TIMEOUT_MS, &r, "send", "--home", from->home, "--batch", path, NULL);
    if (r.rc != 0) {
        printf("# send --batch at %s exited %d: %.1000s\n", from->name, r.rc, r.err);
    }
    assert_int_equal(r.rc, 0);
    cmd_result_free(&r);
}

/* The net position `self` should hold against `peer` in `currency` after the plan settled:
 * what the peer paid us minus what we paid the peer. */
static int64_t expected_net(const plan_t *p, size_t self, size_t peer, const char *currency)
{
    int64_t net = 0;
    for (size_t i = 0; i < p->count; i++) {
        const planned_t *s = &p->items[i];
        if (strcmp(s->currency, currency) != 0) {
            continue;
        }
        if (s->from == peer && s->to == self) {
            net += s->minor;
        } else if (s->from == self && s->to == peer) {
            net -= s->minor;
        }
    }
    return net;
}

/* Exact books on the first `count` nodes of the cluster: every planned settlement once per
 * side, settled, with its amount and currency; nothing else; positions equal the sums and
 * mirror; nothing pending or rejected. */
static void check_books(cluster_t *c, const plan_t *p, size_t count)
{
    json_t *ledgers[CLUSTER_NODES_MAX] = {NULL};
    for (size_t i = 0; i < count; i++) {
        tnode_t *n = &c->nodes[i];
        json_t *l = ledgers[i] = node_ledger(c, n);
        json_t *index = ledger_index(l, NULL); /* fails on a UETR seen twice */
        size_t expected = 0;
        for (size_t k = 0; k < p->count; k++) {
            const planned_t *s = &p->items[k];
            if (s->from != i && s->to != i) {
                continue;
            }
            expected++;
            size_t other = s->from == i ? s->to : s->from;
            json_t *e = json_object_get(index, s->uetr);
            if (e == NULL) {
                fail_msg("%s has no settlement %s (%s -> %s)", n->name, s->uetr,
                         c->nodes[s->from].name, c->nodes[s->to].name);
            }
            const char *status = json_string_value(json_object_get(e, "status"));
            if (status == NULL || strcmp(status, "settled") != 0) {
                fail_msg("%s: %s is %s, expected settled (reason %s)", n->name, s->uetr,
                         status ? status : "(none)",
                         json_string_value(json_object_get(e, "reason")));
            }
            assert_string_equal(json_string_value(json_object_get(e, "peer")),
                                c->nodes[other].name);
            assert_string_equal(json_string_value(json_object_get(e, "direction")),
                                s->from == i ? "out" : "in");
            assert_string_equal(json_string_value(json_object_get(e, "currency")), s->currency);
            assert_int_equal(json_integer_value(json_object_get(e, "amount_minor")), s->minor);
        }
        if (json_object_size(index) != expected) {
            fail_msg("%s holds %zu settlements, expected %zu", n->name, json_object_size(index),
                     expected);
        }
        assert_int_equal(ledger_count(l, "settled"), (int64_t)expected);
        assert_int_equal(ledger_count(l, "pending"), 0);
        assert_int_equal(ledger_count(l, "rejected"), 0);
        assert_int_equal(ledger_count(l, "returned"), 0);
        json_decref(index);
    }
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < count; j++) {
            if (i == j) {
                continue;
            }
            for (size_t k = 0; k < CURRENCY_COUNT; k++) {
                const char *ccy = nodes_currencies[k];
                int64_t net = ledger_net(ledgers[i], c->nodes[j].name, ccy);
                int64_t mirror = ledger_net(ledgers[j], c->nodes[i].name, ccy);
                int64_t want = expected_net(p, i, j, ccy);
                if (net != want || net != -mirror) {
                    fail_msg("%s.net(%s, %s) = %lld, expected %lld; %s.net(%s, %s) = %lld",
                             c->nodes[i].name, c->nodes[j].name, ccy, (long long)net,
                             (long long)want, c->nodes[j].name, c->nodes[i].name, ccy,
                             (long long)mirror);
                }
                assert_int_equal(ledger_pending(ledgers[i], c->nodes[j].name, ccy), 0);
            }
        }
    }
    for (size_t i = 0; i < count; i++) {
        json_decref(ledgers[i]);
    }
}

static void audit_all(cluster_t *c, size_t count, int64_t entries_min)
{
    tnode_t *nodes[CLUSTER_NODES_MAX];
    for (size_t i = 0; i < count; i++) {
        nodes[i] = &c->nodes[i];
    }
    cluster_audit_clean(c, nodes, count, entries_min);
}

static void quiesce_all(cluster_t *c, size_t count)
{
    tnode_t *nodes[CLUSTER_NODES_MAX];
    for (size_t i = 0; i < count; i++) {
        nodes[i] = &c->nodes[i];
    }
    cluster_quiesce(c, nodes, count, QUIESCE_MS);
}

/* Asserts that the ledger holds the UETR with that peer once, with that status and reason. */
static void expect_entry(json_t *ledger, const char *peer, const char *uetr, const char *status,
                         const char *reason)
{
    json_t *e = ledger_expect_entry(ledger, peer, uetr, status);
    const char *got = json_string_value(json_object_get(e, "reason"));
    if (reason == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, reason);
    }
}

static int setup(void **state)
{
    *state = cluster_new();
    return 0;
}

static void hostile_close(void);

static int teardown(void **state)
{
    hostile_close();
    cluster_t *c = *state;
    cluster_destroy(&c);
    *state = NULL;
    return 0;
}

/* ---- 1. two nodes, a thousand each way ---------------------------------------------------------
 */

#define STREAM_EACH_WAY 1000

static void test_two_nodes_both_directions(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    plan_t *p = plan_new(1);
    plan_add(p, 0, 1, STREAM_EACH_WAY);
    plan_add(p, 1, 0, STREAM_EACH_WAY);
    char *batch_a = plan_write_batch(c, p, 0, 0, p->count);
    char *batch_b = plan_write_batch(c, p, 1, 0, p->count);
    int64_t t0 = mono_ms();
    /* both directions at once */
    pid_t pa = cluster_spawn(c, "send", "--home", a->home, "--batch", batch_a, NULL);
    pid_t pb = cluster_spawn(c, "send", "--home", b->home, "--batch", batch_b, NULL);
    assert_int_equal(cluster_wait_spawned(c, pa, SEND_TIMEOUT_MS, NULL), 0);
    assert_int_equal(cluster_wait_spawned(c, pb, SEND_TIMEOUT_MS, NULL), 0);
    quiesce_all(c, 2);
    printf("# %d settlements each way settled in %lld ms\n", STREAM_EACH_WAY,
           (long long)(mono_ms() - t0));
    check_books(c, p, 2);

    /* the whole batch again (I3): every item returns its original result, nothing changes */
    char *head_a = node_ledger_head(c, a), *head_b = node_ledger_head(c, b);
    cmd_result_t r;
    cluster_cmd(c, SEND_TIMEOUT_MS, &r, "send", "--home", a->home, "--batch", batch_a, "--wait",
                "30", NULL);
    if (r.rc != 0) {
        printf("# repeated batch exited %d: %.1000s\n", r.rc, r.err);
    }
    assert_int_equal(r.rc, 0);
    cmd_result_free(&r);
    /* whatever the repeat queued (nothing, if it is right) has been applied and answered */
    pair_wait_idle(c, a, b, QUIESCE_MS);
    char *head_a2 = node_ledger_head(c, a), *head_b2 = node_ledger_head(c, b);
    assert_string_equal(head_a2, head_a);
    assert_string_equal(head_b2, head_b);
    free(head_a);
    free(head_b);
    free(head_a2);
    free(head_b2);
    check_books(c, p, 2);

    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, 2 * STREAM_EACH_WAY);
    free(batch_a);
    free(batch_b);
    c->passed = true;
}

/* ---- 2. three nodes, full mesh --------------------------------------------------------------- */

#define MESH_EACH_DIRECTION 50

static void test_three_nodes_mesh(void **state)
{
    cluster_t *c = *state;
    tnode_t *n[3];
    n[0] = cluster_add(c, NAME_A, CURRENCIES);
    n[1] = cluster_add(c, NAME_B, CURRENCIES);
    n[2] = cluster_add(c, NAME_C, CURRENCIES);
    cluster_link(c, n[0], n[1], NODES_GENEROUS_CAPS);
    cluster_link(c, n[0], n[2], NODES_GENEROUS_CAPS);
    cluster_link(c, n[1], n[2], NODES_GENEROUS_CAPS);
    for (size_t i = 0; i < 3; i++) {
        node_start(c, n[i]);
    }
    plan_t *p = plan_new(2);
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 3; j++) {
            if (i != j) {
                plan_add(p, i, j, MESH_EACH_DIRECTION);
            }
        }
    }
    pid_t pids[3];
    for (size_t i = 0; i < 3; i++) {
        char *batch = plan_write_batch(c, p, i, 0, p->count);
        pids[i] = cluster_spawn(c, "send", "--home", n[i]->home, "--batch", batch, NULL);
        free(batch);
    }
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cluster_wait_spawned(c, pids[i], SEND_TIMEOUT_MS, NULL), 0);
    }
    quiesce_all(c, 3);
    check_books(c, p, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(node_stop(c, n[i]), 0);
    }
    audit_all(c, 3, 6 * MESH_EACH_DIRECTION);
    c->passed = true;
}

/* ---- 3. a peer offline while settlements are sent to it ----------------------------------- */

#define OFFLINE_COUNT 100

static void test_peer_offline_then_started(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    plan_t *p = plan_new(3);
    plan_add(p, 0, 1, OFFLINE_COUNT);
    char *batch = plan_write_batch(c, p, 0, 0, p->count);
    send_batch(c, a, batch); /* exit 0: committed, pending */
    sleep_ms(1500);          /* A tries to reach B for a while */
    json_t *l = node_ledger(c, a);
    assert_int_equal(ledger_count(l, "pending"), OFFLINE_COUNT);
    assert_int_equal(ledger_count(l, "settled"), 0);
    json_decref(l);
    json_t *st = node_status(c, a);
    json_t *peer = status_peer(st, NAME_B);
    assert_non_null(peer);
    assert_string_equal(json_string_value(json_object_get(peer, "state")), "down");
    assert_int_equal(json_integer_value(json_object_get(peer, "outbox")), OFFLINE_COUNT);
    json_decref(st);
    node_start(c, b);
    quiesce_all(c, 2);
    check_books(c, p, 2);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, OFFLINE_COUNT);
    free(batch);
    c->passed = true;
}

/* ---- 4. SIGKILL in the middle of a stream --------------------------------------------------- */

/* Polls a node's ledger until it holds at least `count` settlements (bounded). */
static void wait_for_settlements(cluster_t *c, tnode_t *n, size_t count, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        json_t *l = node_ledger(c, n);
        size_t have = json_array_size(json_object_get(l, "settlements"));
        json_decref(l);
        if (have >= count) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("%s holds %zu settlements after %d ms, expected %zu", n->name, have,
                     timeout_ms, count);
        }
        sleep_ms(20);
    }
}

#define KILL_STREAM 2000

static void test_receiver_killed_mid_stream(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    plan_t *p = plan_new(4);
    plan_add(p, 0, 1, KILL_STREAM);
    char *batch = plan_write_batch(c, p, 0, 0, p->count);
    pid_t sender = cluster_spawn(c, "send", "--home", a->home, "--batch", batch, NULL);
    /* kill B as soon as it has applied part of the stream (about half a second in) */
    wait_for_settlements(c, b, 1, 10000);
    node_kill9(b);
    assert_int_equal(cluster_wait_spawned(c, sender, SEND_TIMEOUT_MS, NULL), 0);
    json_t *l = node_ledger(c, b);
    printf("# B killed with %lld of %d applied\n", (long long)ledger_count(l, "settled"),
           KILL_STREAM);
    json_decref(l);
    node_start(c, b);
    quiesce_all(c, 2);
    check_books(c, p, 2);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, KILL_STREAM);
    free(batch);
    c->passed = true;
}

/* The receiver killed again and again while batches keep coming: each round commits a batch at
 * B, starts one at A and kills B 10 to 45 ms later, before, while or after it applies A's batch
 * and while its own settlements and reports are in flight. */
#define CRASH_ROUNDS     8
#define CRASH_ROUND_SIZE 100

static void test_receiver_killed_repeatedly(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", 15000);
    plan_t *p = plan_new(6);
    for (size_t round = 0; round < CRASH_ROUNDS; round++) {
        size_t start = p->count;
        plan_add(p, 0, 1, CRASH_ROUND_SIZE / 2);
        plan_add(p, 1, 0, CRASH_ROUND_SIZE / 2);
        char *batch_a = plan_write_batch(c, p, 0, start, p->count);
        char *batch_b = plan_write_batch(c, p, 1, start, p->count);
        send_batch(c, b, batch_b);
        pid_t sender = cluster_spawn(c, "send", "--home", a->home, "--batch", batch_a, NULL);
        sleep_ms(10 + (int)(round * 7 % 40)); /* 10 .. 45 ms after A's send started */
        node_kill9(b);
        assert_int_equal(cluster_wait_spawned(c, sender, SEND_TIMEOUT_MS, NULL), 0);
        free(batch_a);
        free(batch_b);
        node_start(c, b);
        pair_wait_state(c, a, b, "up", 15000);
    }
    quiesce_all(c, 2);
    check_books(c, p, 2);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, CRASH_ROUNDS * CRASH_ROUND_SIZE);
    c->passed = true;
}

static void test_sender_killed_mid_batch(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    plan_t *p = plan_new(5);
    plan_add(p, 0, 1, KILL_STREAM);
    char *batch = plan_write_batch(c, p, 0, 0, p->count);
    pid_t sender = cluster_spawn(c, "send", "--home", a->home, "--batch", batch, NULL);
    /* kill A as soon as its first chunk is committed, while the batch is still coming in */
    wait_for_settlements(c, a, 1, 10000);
    node_kill9(a);
    int rc = cluster_wait_spawned(c, sender, SEND_TIMEOUT_MS, NULL);
    printf("# send --batch exited %d when A was killed\n", rc);
    /* 0: everything was committed first; 3/4/5: the node went away mid-request */
    assert_true(rc == 0 || rc == 3 || rc == 4 || rc == 5);
    node_start(c, a);
    quiesce_all(c, 2);
    json_t *la = node_ledger(c, a);
    json_t *lb = node_ledger(c, b);
    json_t *ia = ledger_index(la, NAME_B);
    json_t *ib = ledger_index(lb, NAME_A);
    printf("# A committed %zu of %d, B holds %zu\n", json_object_size(ia), KILL_STREAM,
           json_object_size(ib));
    if (rc == 0) {
        assert_int_equal(json_object_size(ia), KILL_STREAM);
    }
    /* Every UETR A has is one of the batch, on B once, with the same final status... */
    const char *uetr;
    json_t *ea;
    json_object_foreach(ia, uetr, ea)
    {
        bool planned = false;
        for (size_t i = 0; i < p->count && !planned; i++) {
            planned = strcmp(p->items[i].uetr, uetr) == 0;
        }
        assert_true(planned);
        json_t *eb = json_object_get(ib, uetr);
        if (eb == NULL) {
            fail_msg("A has %s, B does not", uetr);
        }
        assert_string_equal(json_string_value(json_object_get(ea, "status")), "settled");
        assert_string_equal(json_string_value(json_object_get(eb, "status")), "settled");
        assert_int_equal(json_integer_value(json_object_get(ea, "amount_minor")),
                         json_integer_value(json_object_get(eb, "amount_minor")));
    }
    /* ...and B has nothing A does not. */
    json_t *eb;
    json_object_foreach(ib, uetr, eb)
    {
        if (json_object_get(ia, uetr) == NULL) {
            fail_msg("B has %s, A does not", uetr);
        }
    }
    assert_int_equal(ledger_count(la, "settled"), ledger_count(lb, "settled"));
    assert_int_equal(ledger_count(la, "settled"), (int64_t)json_object_size(ia));
    assert_int_equal(ledger_count(la, "rejected") + ledger_count(lb, "rejected"), 0);
    for (size_t k = 0; k < CURRENCY_COUNT; k++) {
        assert_int_equal(ledger_net(la, NAME_B, nodes_currencies[k]),
                         -ledger_net(lb, NAME_A, nodes_currencies[k]));
    }
    json_decref(ia);
    json_decref(ib);
    json_decref(la);
    json_decref(lb);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, 0);
    free(batch);
    c->passed = true;
}

/* ---- 5. caps and duplicate UETRs ---------------------------------------------------------------
 */

static void test_cap_and_duplicates(void **state)
{
    cluster_t *c = *state;
    tnode_t *a = cluster_add(c, NAME_A, CURRENCIES);
    tnode_t *b = cluster_add(c, NAME_B, CURRENCIES);
    node_trust(c, a, b, "RUB=1000");
    node_trust(c, b, a, "RUB=1000"); /* the cap B grants A */
    node_start(c, a);
    node_start(c, b);

    /* one kopeck over the cap: rejected by B with AM02 */
    char over[UETR_SIZE];
    uetr_generate(over);
    cmd_result_t r;
    int rc = node_send(c, a, b, "1000.01", "RUB", over, "30", &r);
    if (rc != 1) {
        printf("# over-cap send exited %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 1);
    assert_non_null(strstr(r.err, "AM02"));
    cmd_result_free(&r);
    quiesce_all(c, 2);
    json_t *la = node_ledger(c, a);
    json_t *lb = node_ledger(c, b);
    expect_entry(la, NAME_B, over, "rejected", "AM02");
    expect_entry(lb, NAME_A, over, "rejected", "AM02");
    assert_int_equal(ledger_pending(la, NAME_B, "RUB"), 0); /* the cap is released */
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), 0);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 0);
    json_decref(la);
    json_decref(lb);

    /* exactly at the cap: settles */
    char at[UETR_SIZE];
    uetr_generate(at);
    rc = node_send(c, a, b, "1000.00", "RUB", at, "30", &r);
    if (rc != 0) {
        printf("# at-cap send exited %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    quiesce_all(c, 2);
    char *head_a = node_ledger_head(c, a), *head_b = node_ledger_head(c, b);

    /* the same UETR and content again: the original result, nothing new */
    rc = node_send(c, a, b, "1000.00", "RUB", at, "30", &r);
    if (rc != 0) {
        printf("# repeated send exited %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    pair_wait_idle(c, a, b, QUIESCE_MS); /* anything wrongly sent was applied and answered */
    la = node_ledger(c, a);
    lb = node_ledger(c, b);
    expect_entry(la, NAME_B, at, "settled", NULL);
    expect_entry(lb, NAME_A, at, "settled", NULL);
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), -100000);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 100000);
    assert_int_equal(ledger_count(la, "settled"), 1);
    assert_int_equal(ledger_count(lb, "settled"), 1);
    assert_string_equal(json_string_value(json_object_get(la, "head")), head_a);
    assert_string_equal(json_string_value(json_object_get(lb, "head")), head_b);
    json_decref(la);
    json_decref(lb);

    /* the same UETR with another amount: DUPL, nothing changes on either side */
    rc = node_send(c, a, b, "999.00", "RUB", at, "30", &r);
    if (rc != 1) {
        printf("# conflicting send exited %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 1);
    assert_non_null(strstr(r.err, "DUPL"));
    cmd_result_free(&r);
    pair_wait_idle(c, a, b, QUIESCE_MS); /* anything wrongly sent was applied and answered */
    la = node_ledger(c, a);
    lb = node_ledger(c, b);
    assert_string_equal(json_string_value(json_object_get(la, "head")), head_a);
    assert_string_equal(json_string_value(json_object_get(lb, "head")), head_b);
    expect_entry(la, NAME_B, at, "settled", NULL);
    expect_entry(lb, NAME_A, at, "settled", NULL);
    assert_int_equal(ledger_count(la, "settled"), 1);
    assert_int_equal(ledger_count(la, "rejected"), 1);
    assert_int_equal(ledger_count(lb, "settled"), 1);
    assert_int_equal(ledger_count(lb, "rejected"), 1);
    assert_int_equal(ledger_count(la, "pending"), 0);
    json_decref(la);
    json_decref(lb);
    free(head_a);
    free(head_b);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, 2);
    c->passed = true;
}

/* ---- 6. transport refusals ------------------------------------------------------------------- */

/* The test's own ZeroMQ clients, closed by hostile_close (also from the teardown, so that a
 * failed test leaves no client reconnecting to a port a later test may reuse). */
#define HOSTILE_MAX 4
static struct {
    void *ctx;
    void *sockets[HOSTILE_MAX];
    size_t count;
} hostile;

static void hostile_close(void)
{
    for (size_t i = 0; i < hostile.count; i++) {
        zmq_close(hostile.sockets[i]);
    }
    hostile.count = 0;
    if (hostile.ctx != NULL) {
        zmq_ctx_term(hostile.ctx);
        hostile.ctx = NULL;
    }
}

/* Connects a PUSH socket to `endpoint`; with server_key, as a CURVE client with `public_key`
 * and `secret_key`. */
static void *hostile_push(const char *endpoint, const char *server_key, const char *public_key,
                          const char *secret_key)
{
    if (hostile.ctx == NULL) {
        hostile.ctx = zmq_ctx_new();
        assert_non_null(hostile.ctx);
    }
    assert_true(hostile.count < HOSTILE_MAX);
    void *ctx = hostile.ctx;
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    assert_non_null(s);
    hostile.sockets[hostile.count++] = s;
    int linger = 0, timeout = 2000;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout), 0);
    if (server_key != NULL) {
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, KEY_CHARS), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_key, KEY_CHARS), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret_key, KEY_CHARS), 0);
    }
    assert_int_equal(zmq_connect(s, endpoint), 0);
    return s;
}

/* A monitor of one of the clients for `events`, closed by hostile_close like the clients. */
static void *hostile_monitor(void *s, int events)
{
    assert_true(hostile.count < HOSTILE_MAX);
    void *monitor = nodes_monitor(hostile.ctx, s, events);
    hostile.sockets[hostile.count++] = monitor;
    return monitor;
}

#define HANDSHAKE_FAILED                                                                           \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                  \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_DISCONNECTED)

/* The node's CURVE public key, from `card --json`. */
static void node_curve_public(cluster_t *c, tnode_t *n,
                              char out[static IDENTITY_CURVE_KEY_CHARS + 1])
{
    cmd_result_t r;
    assert_int_equal(
        cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "card", "--home", n->home, "--json", NULL), 0);
    json_t *card = json_loads(r.out, 0, NULL);
    assert_non_null(card);
    const char *key = json_string_value(json_object_get(card, "curve_public"));
    assert_non_null(key);
    assert_int_equal(strlen(key), IDENTITY_CURVE_KEY_CHARS);
    memcpy(out, key, IDENTITY_CURVE_KEY_CHARS + 1);
    json_decref(card);
    cmd_result_free(&r);
}

static void send_frames(void *s, size_t count, size_t size)
{
    uint8_t *buf = malloc(size + 1);
    assert_non_null(buf);
    for (size_t i = 0; i < count; i++) {
        randombytes_buf(buf, size);
        assert_int_equal(zmq_send(s, buf, size, 0), (int)size);
    }
    free(buf);
}

static void test_transport_refusals(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    /* the channel is up first, so its own connection is already admitted */
    cmd_result_t r;
    assert_int_equal(node_send(c, a, b, "1.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    char server_key[IDENTITY_CURVE_KEY_CHARS + 1];
    node_curve_public(c, b, server_key);
    int64_t rows_before = node_journal_rows(c, b);
    int64_t refused_before = node_transport_counter(c, b, "refused");
    int64_t dropped_before = node_transport_counter(c, b, "dropped_frames");
    size_t log_dropped_before = node_log_count(b, "dropped");

    /* CURVE with a key B does not know */
    char pub[IDENTITY_CURVE_KEY_CHARS + 1], sec[IDENTITY_CURVE_KEY_CHARS + 1];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    void *stranger = hostile_push(b->endpoint, server_key, pub, sec);
    send_frames(stranger, 10, 300);
    /* no CURVE at all */
    void *plain = hostile_push(b->endpoint, NULL, NULL, NULL);
    void *plain_monitor = hostile_monitor(plain, HANDSHAKE_FAILED);
    send_frames(plain, 10, 300);
    int64_t deadline = mono_ms() + 10000;
    while (node_transport_counter(c, b, "refused") == refused_before && mono_ms() < deadline) {
        sleep_ms(200);
    }
    assert_true(node_transport_counter(c, b, "refused") > refused_before);
    /* the plain client's handshake failed too: B turned it away (it retries, and fails again,
     * so an event before the monitor started is not missed) */
    nodes_wait_event(plain_monitor, HANDSHAKE_FAILED, 10000);
    assert_true(node_alive(b));
    /* nothing was delivered: no frame reached the node, nothing was written */
    assert_int_equal(node_transport_counter(c, b, "dropped_frames"), dropped_before);
    assert_int_equal(node_log_count(b, "dropped"), log_dropped_before);
    assert_int_equal(node_journal_rows(c, b), rows_before);
    hostile_close();

    /* the node keeps settling */
    int rc = node_send(c, a, b, "2.00", "RUB", NULL, "30", &r);
    if (rc != 0) {
        printf("# send after refusals exited %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    rc = node_send(c, b, a, "3.00", "USD", NULL, "30", &r);
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, 3);
    c->passed = true;
}

/* ---- 7. garbage from a trusted peer's transport key ------------------------------------------ */

#define OVERSIZED_BYTES (2u * 1024 * 1024)

static void test_garbage_from_trusted_key(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    cmd_result_t r;
    assert_int_equal(node_send(c, a, b, "1.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    char server_key[IDENTITY_CURVE_KEY_CHARS + 1];
    node_curve_public(c, b, server_key);
    char *key_path = test_path(a->home, IDENTITY_KEY_FILE);
    identity_t *id = NULL;
    assert_int_equal(identity_load(key_path, &id), ID_OK);
    free(key_path);
    pid_t b_pid = b->pid;
    int64_t rows_before = node_journal_rows(c, b);
    int64_t dropped_before = node_transport_counter(c, b, "dropped_frames");
    size_t frame_lines_before = node_log_count(b, "dropped a frame");
    size_t dropped_lines_before = node_log_count(b, "dropped");

    void *s = hostile_push(b->endpoint, server_key, id->curve_public, id->curve_secret);
    void *monitor = hostile_monitor(s, ZMQ_EVENT_DISCONNECTED);
    identity_destroy(&id);
    send_frames(s, 1, 300);                     /* garbage */
    assert_int_equal(zmq_send(s, "", 0, 0), 0); /* empty */
    int64_t deadline = mono_ms() + 10000;
    while (node_alive(b) && node_log_count(b, "dropped") < dropped_lines_before + 2 &&
           mono_ms() < deadline) {
        sleep_ms(100);
    }
    assert_true(node_alive(b));
    /* garbage and empty frames: one log line each */
    assert_true(node_log_count(b, "dropped a frame") >= frame_lines_before + 2);
    /* a multi-part message: counted as dropped... */
    size_t lines_before_multipart = node_log_count(b, "dropped");
    assert_int_equal(zmq_send(s, "part one", 8, ZMQ_SNDMORE), 8);
    assert_int_equal(zmq_send(s, "part two", 8, 0), 8);
    deadline = mono_ms() + 10000;
    while (node_transport_counter(c, b, "dropped_frames") == dropped_before &&
           mono_ms() < deadline) {
        sleep_ms(100);
    }
    assert_true(node_transport_counter(c, b, "dropped_frames") > dropped_before);
    /* a fence: a garbage frame after it on the same connection. Log lines leave once per turn
     * and in order, so once the fence's line is there, a line for the multi-part message is. */
    size_t fence_lines = node_log_count(b, "dropped a frame");
    send_frames(s, 1, 300);
    node_wait_log(b, "dropped a frame", fence_lines + 1, 10000);
    /* ...and logged? (checked at the end, so that the rest of the test still runs) */
    bool multipart_logged = node_log_count(b, "dropped") > lines_before_multipart + 1;
    /* over the size limit: ZeroMQ closes that connection; the client reconnects */
    send_frames(s, 1, OVERSIZED_BYTES);
    nodes_wait_event(monitor, ZMQ_EVENT_DISCONNECTED, 10000);
    assert_true(node_alive(b));
    assert_int_equal(b->pid, b_pid);
    /* frames on the re-established connection are still read and dropped */
    size_t lines_mid = node_log_count(b, "dropped a frame");
    deadline = mono_ms() + 10000;
    while (node_alive(b) && node_log_count(b, "dropped a frame") == lines_mid &&
           mono_ms() < deadline) {
        send_frames(s, 1, 300);
        sleep_ms(500);
    }
    assert_true(node_alive(b));
    assert_true(node_log_count(b, "dropped a frame") > lines_mid);
    hostile_close();
    assert_true(node_alive(b));
    assert_int_equal(node_journal_rows(c, b), rows_before);
    json_t *st = node_status(c, b); /* still answers */
    json_decref(st);

    /* A -> B still settles, and B -> A */
    int rc = node_send(c, a, b, "2.00", "RUB", NULL, "30", &r);
    if (rc != 0) {
        printf("# send after garbage exited %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, b, a, "3.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_all(c, 2, 3);
    /* a multi-part message is dropped with a log line naming the peer, like any other frame */
    if (!multipart_logged) {
        fail_msg("B dropped a multi-part message from %s without a log line", NAME_A);
    }
    c->passed = true;
}

/* ---- 8. rollback: B restored from an old copy ----------------------------------------------- */

#define ROLLBACK_ROUND 20

static void test_rollback_detected(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    plan_t *p = plan_new(8);
    plan_add(p, 0, 1, ROLLBACK_ROUND);
    char *batch = plan_write_batch(c, p, 0, 0, ROLLBACK_ROUND);
    send_batch(c, a, batch);
    free(batch);
    quiesce_all(c, 2);
    check_books(c, p, 2);
    assert_int_equal(node_stop(c, b), 0);
    char *backup = test_path(c->dir, "B.old");
    const char *cp[] = {"/bin/cp", "-a", b->home, backup, NULL};
    assert_int_equal(nodes_run_program(cp, 60000), 0);

    node_start(c, b);
    plan_add(p, 0, 1, ROLLBACK_ROUND);
    batch = plan_write_batch(c, p, 0, ROLLBACK_ROUND, 2 * ROLLBACK_ROUND);
    send_batch(c, a, batch);
    free(batch);
    quiesce_all(c, 2);
    check_books(c, p, 2);
    assert_int_equal(node_stop(c, b), 0);

    /* restore B's old copy in place of its home */
    test_rmtree(b->home);
    assert_int_equal(rename(backup, b->home), 0);
    free(backup);
    node_start(c, b);
    int64_t deadline = mono_ms() + 10000;
    const char *state_b = "";
    for (;;) {
        json_t *st = node_status(c, a);
        json_t *peer = status_peer(st, NAME_B);
        assert_non_null(peer);
        bool diverged = strcmp(json_string_value(json_object_get(peer, "state")), "diverged") == 0;
        json_decref(st);
        if (diverged) {
            state_b = "diverged";
            break;
        }
        if (mono_ms() >= deadline) {
            break;
        }
        sleep_ms(200);
    }
    assert_string_equal(state_b, "diverged");
    assert_true(node_log_contains(a, "ROLLBACK"));

    /* new settlements are accepted but held */
    cmd_result_t r;
    char held[3][UETR_SIZE];
    for (size_t i = 0; i < 3; i++) {
        uetr_generate(held[i]);
        int rc = node_send(c, a, b, "5.00", "RUB", held[i], NULL, &r);
        if (rc != 0) {
            printf("# send while diverged exited %d: %s\n", rc, r.err);
        }
        assert_int_equal(rc, 0);
        cmd_result_free(&r);
    }
    /* and the restored B's own new settlement to A is held too: its sequence numbers from 21
     * on were already applied by A, so nothing it sends may be applied before a repair */
    char back[UETR_SIZE];
    uetr_generate(back);
    assert_int_equal(node_send(c, b, a, "7.00", "USD", back, NULL, &r), 0);
    cmd_result_free(&r);
    /* B took A's Hellos and diverged as well: from then on neither side transmits or applies
     * a sequenced message (B, restarted, went from down to diverged and never sent `back`) */
    pair_wait_state(c, a, b, "diverged", 15000);
    json_t *la = node_ledger(c, a);
    for (size_t i = 0; i < 3; i++) {
        expect_entry(la, NAME_B, held[i], "pending", NULL);
    }
    assert_int_equal(ledger_count(la, "pending"), 3);
    assert_int_equal(ledger_count(la, "settled"), 2 * ROLLBACK_ROUND);
    assert_null(ledger_json_find(la, NAME_B, back, NULL));
    json_decref(la);
    json_t *st = node_status(c, a);
    json_t *peer = status_peer(st, NAME_B);
    assert_string_equal(json_string_value(json_object_get(peer, "state")), "diverged");
    json_decref(st);
    /* B sees it from its side too (channel.h: both mark the channel DIVERGED) */
    st = node_status(c, b);
    peer = status_peer(st, NAME_A);
    assert_non_null(peer);
    assert_string_equal(json_string_value(json_object_get(peer, "state")), "diverged");
    json_decref(st);

    /* B applied nothing twice and nothing it was not sent before the copy */
    json_t *lb = node_ledger(c, b);
    json_t *ib = ledger_index(lb, NAME_A);
    expect_entry(lb, NAME_A, back, "pending", NULL);
    assert_true(json_object_size(ib) <= ROLLBACK_ROUND + 1);
    assert_true(ledger_count(lb, "settled") <= ROLLBACK_ROUND);
    assert_int_equal(ledger_count(lb, "pending"), 1);
    for (size_t i = 0; i < 3; i++) {
        assert_null(json_object_get(ib, held[i]));
    }
    json_object_del(ib, back);
    const char *uetr;
    json_t *e;
    json_object_foreach(ib, uetr, e)
    {
        bool first_round = false;
        for (size_t i = 0; i < ROLLBACK_ROUND && !first_round; i++) {
            first_round = strcmp(p->items[i].uetr, uetr) == 0;
        }
        if (!first_round) {
            fail_msg("restored B holds %s, which was sent after its copy was taken", uetr);
        }
    }
    json_decref(ib);
    json_decref(lb);
    assert_true(node_alive(a));
    assert_true(node_alive(b));

    /* the divergence is recorded: a restart of A does not forget it, nor the held settlements */
    int64_t admitted_b = node_transport_counter(c, b, "admitted");
    assert_int_equal(node_stop(c, a), 0);
    node_start(c, a);
    st = node_status(c, a);
    peer = status_peer(st, NAME_B);
    assert_string_equal(json_string_value(json_object_get(peer, "state")), "diverged");
    json_decref(st);
    /* the restarted A and B are connected again (each admitted the other's new connection), so
     * what A queued at its start has reached B; both still see the channel diverged */
    deadline = mono_ms() + 15000;
    while (node_transport_counter(c, b, "admitted") <= admitted_b ||
           node_transport_counter(c, a, "admitted") == 0) {
        if (mono_ms() >= deadline) {
            fail_msg("A and B did not connect again within 15 s of A's restart");
        }
        sleep_ms(50);
    }
    pair_wait_state(c, a, b, "diverged", 15000);
    la = node_ledger(c, a);
    assert_int_equal(ledger_count(la, "pending"), 3);
    assert_int_equal(ledger_count(la, "settled"), 2 * ROLLBACK_ROUND);
    json_decref(la);
    lb = node_ledger(c, b);
    assert_true(ledger_count(lb, "settled") <= ROLLBACK_ROUND);
    json_decref(lb);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    c->passed = true;
}

/* ---- 9. the node's lifecycle from the command line ------------------------------------------ */

static void test_lifecycle(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);

    /* nothing runs: exit 3 with a clear message */
    cmd_result_t r;
    int rc = node_send(c, a, b, "1.00", "RUB", NULL, NULL, &r);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(r.err, "not running"));
    cmd_result_free(&r);
    rc = cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "status", "--home", a->home, "--json", NULL);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(r.err, "not running"));
    assert_true(strchr(r.err, '\n') == strrchr(r.err, '\n')); /* one line */
    cmd_result_free(&r);

    /* one node per home: a second `run` is refused and the first keeps running */
    node_start(c, a);
    pid_t second = node_start_raw(c, a);
    tnode_t twin = *a;
    twin.pid = second;
    int64_t deadline = mono_ms() + 10000;
    while (node_alive(&twin) && mono_ms() < deadline) {
        sleep_ms(50);
    }
    if (node_alive(&twin)) {
        node_kill9(&twin);
        fail_msg("a second `corridor run` on the same home did not exit within 10 s");
    }
    assert_true(twin.last_exit != 0);
    assert_true(node_log_contains(a, "already running"));
    assert_true(node_alive(a));
    json_t *st = node_status(c, a);
    assert_string_equal(json_string_value(json_object_get(st, "node")), NAME_A);
    json_decref(st);

    /* SIGTERM: exit 0 within 20 s, and then it is not running */
    int64_t t0 = mono_ms();
    assert_int_equal(node_stop(c, a), 0);
    assert_true(mono_ms() - t0 < NODE_STOP_MS);
    rc = cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "status", "--home", a->home, NULL);
    assert_int_equal(rc, 3);
    cmd_result_free(&r);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) { /* CORRIDOR_TEST_FILTER=test_rollback* runs only the matching tests */
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_from_trusted_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_offline_then_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_nodes_mesh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_both_directions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_killed_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_killed_repeatedly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_killed_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_detected, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration", tests, NULL, NULL);
}
