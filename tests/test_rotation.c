/*
 * Signing-key rotation with real `corridor` processes on loopback (tests/nodes.c), driven
 * through the command line only: `key rotate`, `card --history --json`, `status --json`,
 * `ledger --json` and `audit --json`.
 *
 * test_rotation_waits_for_peer: a node whose peer has not been heard from since the node
 * started rotates anyway, keeping its CURVE key; the announcement waits (through a restart)
 * and goes out once the peer is up, and a second rotation is refused meanwhile (exit 1,
 * nothing changed). The next rotation changes the CURVE key too: the node switches its
 * transport (KeySwitch), payments flow both ways, also after both restart.
 *
 * test_rotation_under_load: settlements flow both ways, paced, while one node rotates; every
 * settlement is then on both sides exactly once, settled, the positions mirror, the node forgets
 * its previous key once the peer acknowledged the new one, and the homes audit clean. The nodes
 * restart from key files as a crash between the commit and the renames would leave them (one
 * node with its rotation committed, the other with a node.key.next that never committed).
 * Then the other node rotates under load, and the first one a second time, and the same checks
 * hold; the key histories of both homes (card --history --json) mirror each other.
 *
 * test_replacement: B's keys leak. With both nodes stopped and B holding settlements A has not
 * acknowledged, B's operator runs `key replace` and A's runs `peer add --replace` with B's new
 * card. A thief holding B's old home (the stolen keys) then starts in B's place and sends: A
 * refuses its connection (B's CURVE key is new too) and books nothing of it. The real B starts,
 * from key files as a crash between its replacement's commit and renames leaves them: its queued
 * settlements, signed again by the new key, settle, traffic flows both ways, and the homes
 * audit clean with both replacements on record.
 *
 * test_rotation_both_at_once: both nodes rotate at the same moment, three times; each time both
 * CURVE keys switch and payments flow both ways.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "nodes.h"

#define EACH_WAY        400   /* settlements each way in each phase */
#define RATE            "200" /* per second and sender: two seconds of traffic a phase */
#define SEND_TIMEOUT_MS 60000
#define QUIESCE_MS      60000
#define ROTATED_MS      20000 /* from the rotation to the peer's acknowledgement */
#define UP_MS           20000
#define KEY_FILE        "node.key"
#define KEY_FILE_NEXT   "node.key.next"
#define KEY_FILE_PREV   "node.key.previous"

/* ---- what the command line says ---------------------------------------------------------- */

static char *home_file(const tnode_t *n, const char *name)
{
    return test_path(n->home, name);
}

static bool home_has(const tnode_t *n, const char *name)
{
    char *path = home_file(n, name);
    bool there = access(path, F_OK) == 0;
    free(path);
    return there;
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *bytes = nodes_read_file(from, &len);
    assert_non_null(bytes);
    FILE *f = fopen(to, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(to, 0600), 0);
    free(bytes);
}

static json_t *parse(const char *what, const tnode_t *n, cmd_result_t *r)
{
    json_error_t jerr;
    json_t *doc = json_loads(r->out, 0, &jerr);
    if (doc == NULL) {
        printf("# %s of %s is not JSON: %s: %.500s\n", what, n->name, jerr.text, r->out);
    }
    assert_non_null(doc);
    return doc;
}

/* `key rotate --json` at n: the exit status, and (exit 0) the reply in *doc. */
static int rotate(cluster_t *c, tnode_t *n, json_t **doc, char **err)
{
    cmd_result_t r;
    int rc =
        cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "key", "rotate", "--home", n->home, "--json", NULL);
    *doc = rc == 0 ? parse("key rotate --json", n, &r) : NULL;
    if (err != NULL) {
        *err = strdup(r.err);
    }
    cmd_result_free(&r);
    return rc;
}

/* A successful rotation: its reply, checked. */
static json_t *rotate_ok(cluster_t *c, tnode_t *n, const char *peer)
{
    json_t *doc = NULL;
    char *err = NULL;
    int rc = rotate(c, n, &doc, &err);
    if (rc != 0) {
        printf("# key rotate at %s exited %d: %s\n", n->name, rc, err);
    }
    assert_int_equal(rc, 0);
    free(err);
    assert_true(json_is_true(json_object_get(doc, "rotated")));
    const char *id = json_string_value(json_object_get(doc, "key_id"));
    const char *previous = json_string_value(json_object_get(doc, "previous_key_id"));
    assert_true(id != NULL && previous != NULL && strlen(id) == 32 && strlen(previous) == 32);
    assert_string_not_equal(id, previous);
    json_t *announced = json_object_get(doc, "announced");
    assert_int_equal(json_array_size(announced), 1);
    json_t *a = json_array_get(announced, 0);
    assert_string_equal(json_string_value(json_object_get(a, "peer")), peer);
    assert_true(json_integer_value(json_object_get(a, "sequence")) >= 1);
    return doc;
}

static int64_t announced_seq(json_t *reply)
{
    return json_integer_value(
        json_object_get(json_array_get(json_object_get(reply, "announced"), 0), "sequence"));
}

static json_t *card_json(cluster_t *c, tnode_t *n, bool history)
{
    cmd_result_t r;
    int rc = cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "card", "--home", n->home, "--json",
                         history ? "--history" : NULL, NULL);
    if (rc != 0) {
        printf("# card at %s exited %d: %s\n", n->name, rc, r.err);
    }
    assert_int_equal(rc, 0);
    json_t *doc = parse("card --json", n, &r);
    cmd_result_free(&r);
    return doc;
}

/* The node's current signing key id, as `status --json` says it (a copy). */
static char *status_key_id(cluster_t *c, tnode_t *n)
{
    json_t *st = node_status(c, n);
    const char *id = json_string_value(json_object_get(st, "key_id"));
    assert_non_null(id);
    char *copy = strdup(id);
    json_decref(st);
    return copy;
}

/* Waits until no channel of n waits for the acknowledgement of our last new key, and its
 * previous key file is gone. */
static void wait_rotation_acked(cluster_t *c, tnode_t *n)
{
    int64_t deadline = mono_ms() + ROTATED_MS;
    for (;;) {
        json_t *st = node_status(c, n);
        bool pending = json_is_true(json_object_get(st, "rotation_pending"));
        assert_true(json_is_boolean(json_object_get(st, "rotation_pending")));
        json_decref(st);
        if (!pending && !home_has(n, KEY_FILE_PREV)) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("%s: the rotation is not acknowledged after %d ms (pending %d, %s %s)",
                     n->name, ROTATED_MS, pending, KEY_FILE_PREV,
                     home_has(n, KEY_FILE_PREV) ? "still there" : "gone");
        }
        sleep_ms(50);
    }
}

/* Waits until n's peer has applied at least `count` of n's messages: the traffic is flowing. */
static void wait_traffic(cluster_t *c, tnode_t *n, tnode_t *peer, int64_t count)
{
    int64_t deadline = mono_ms() + SEND_TIMEOUT_MS;
    while (node_peer_field(c, peer, n->name, "received_seq") < count) {
        if (mono_ms() >= deadline) {
            fail_msg("%s applied fewer than %lld of %s's messages", peer->name, (long long)count,
                     n->name);
        }
        sleep_ms(20);
    }
}

/* ---- the books ------------------------------------------------------------------------------ */

static int64_t expected_net(const plan_t *p, size_t self, size_t peer, const char *currency)
{
    int64_t net = 0;
    for (size_t i = 0; i < p->count; i++) {
        const planned_t *s = &p->items[i];
        if (strcmp(s->currency, currency) == 0 && s->from == peer && s->to == self) {
            net += s->minor;
        } else if (strcmp(s->currency, currency) == 0 && s->from == self && s->to == peer) {
            net -= s->minor;
        }
    }
    return net;
}

/* Both nodes' books hold every planned settlement exactly once, settled, with its amount and
 * currency, nothing else; positions equal the sums and mirror each other. */
static void check_books(cluster_t *c, const plan_t *p)
{
    json_t *ledgers[2];
    for (size_t i = 0; i < 2; i++) {
        tnode_t *n = &c->nodes[i];
        ledgers[i] = node_ledger(c, n);
        json_t *index = ledger_index(ledgers[i], NULL); /* fails on a UETR seen twice */
        for (size_t k = 0; k < p->count; k++) {
            const planned_t *s = &p->items[k];
            json_t *e = json_object_get(index, s->uetr);
            if (e == NULL) {
                fail_msg("%s has no settlement %s", n->name, s->uetr);
            }
            const char *status = json_string_value(json_object_get(e, "status"));
            if (status == NULL || strcmp(status, "settled") != 0) {
                fail_msg("%s: %s is %s, expected settled", n->name, s->uetr,
                         status != NULL ? status : "(none)");
            }
            assert_string_equal(json_string_value(json_object_get(e, "direction")),
                                s->from == i ? "out" : "in");
            assert_string_equal(json_string_value(json_object_get(e, "currency")), s->currency);
            assert_int_equal(json_integer_value(json_object_get(e, "amount_minor")), s->minor);
        }
        assert_int_equal(json_object_size(index), p->count);
        assert_int_equal(ledger_count(ledgers[i], "settled"), (int64_t)p->count);
        assert_int_equal(ledger_count(ledgers[i], "pending"), 0);
        assert_int_equal(ledger_count(ledgers[i], "rejected"), 0);
        assert_int_equal(ledger_count(ledgers[i], "returned"), 0);
        json_decref(index);
    }
    for (size_t k = 0; k < NODES_CURRENCY_COUNT; k++) {
        const char *ccy = nodes_currencies[k];
        int64_t net = ledger_net(ledgers[0], c->nodes[1].name, ccy);
        int64_t mirror = ledger_net(ledgers[1], c->nodes[0].name, ccy);
        assert_int_equal(net, expected_net(p, 0, 1, ccy));
        assert_int_equal(net, -mirror);
        assert_int_equal(ledger_pending(ledgers[0], c->nodes[1].name, ccy), 0);
        assert_int_equal(ledger_pending(ledgers[1], c->nodes[0].name, ccy), 0);
    }
    json_decref(ledgers[0]);
    json_decref(ledgers[1]);
}

/* Settlements [start, p->count) sent by both nodes at once, paced, `during` run while they
 * flow; then everything settled and checked. */
static void traffic(cluster_t *c, plan_t *p, size_t start, void (*during)(cluster_t *, void *),
                    void *arg)
{
    tnode_t *a = &c->nodes[0], *b = &c->nodes[1];
    char *batch_a = plan_write_batch(c, p, 0, start, p->count);
    char *batch_b = plan_write_batch(c, p, 1, start, p->count);
    int64_t before_a = node_peer_field(c, b, a->name, "received_seq");
    int64_t before_b = node_peer_field(c, a, b->name, "received_seq");
    pid_t pa =
        cluster_spawn(c, "send", "--home", a->home, "--batch", batch_a, "--rate", RATE, NULL);
    pid_t pb =
        cluster_spawn(c, "send", "--home", b->home, "--batch", batch_b, "--rate", RATE, NULL);
    /* a quarter of the way through, both ways */
    wait_traffic(c, a, b, before_a + EACH_WAY / 4);
    wait_traffic(c, b, a, before_b + EACH_WAY / 4);
    during(c, arg);
    assert_int_equal(cluster_wait_spawned(c, pa, SEND_TIMEOUT_MS, NULL), 0);
    assert_int_equal(cluster_wait_spawned(c, pb, SEND_TIMEOUT_MS, NULL), 0);
    tnode_t *both[] = {a, b};
    cluster_quiesce(c, both, 2, QUIESCE_MS);
    pair_wait_idle(c, a, b, QUIESCE_MS);
    check_books(c, p);
    free(batch_a);
    free(batch_b);
}

/* ---- key histories ------------------------------------------------------------------------ */

/* The records of `side` in a card --history --json document, in order (borrowed). */
static size_t history_side(json_t *history, const char *side, json_t **out, size_t max)
{
    size_t count = 0, i;
    json_t *k;
    json_array_foreach(json_object_get(history, "keys"), i, k)
    {
        if (strcmp(json_string_value(json_object_get(k, "side")), side) == 0) {
            assert_true(count < max);
            out[count++] = k;
        }
    }
    return count;
}

/* One side's keys: consecutive ranges from 1, the last open, none revoked; their ids in `ids`
 * (NULL-terminated), the announcements at `announced` (the sequence each one took). */
static void expect_chain(json_t **keys, size_t count, const char *const *ids,
                         const int64_t *announced)
{
    size_t want = 0;
    while (ids[want] != NULL) {
        want++;
    }
    assert_int_equal(count, want);
    for (size_t i = 0; i < count; i++) {
        json_t *k = keys[i];
        assert_string_equal(json_string_value(json_object_get(k, "key_id")), ids[i]);
        assert_string_equal(json_string_value(json_object_get(k, "source")),
                            i == 0 ? "card" : "announced");
        assert_true(json_is_null(json_object_get(k, "revoked_from")));
        assert_true(json_integer_value(json_object_get(k, "created_ms")) > 0);
        assert_int_equal(strlen(json_string_value(json_object_get(k, "sign"))), 64);
        int64_t first = json_integer_value(json_object_get(k, "first_seq"));
        assert_int_equal(first, i == 0 ? 1 : announced[i - 1] + 1);
        json_t *last = json_object_get(k, "last_seq");
        if (i + 1 < count) { /* the old key signs through its announcement of the next one */
            assert_int_equal(json_integer_value(last), announced[i]);
        } else {
            assert_true(json_is_null(last));
        }
    }
}

/* Two records that describe the same key alike (ours at one side, theirs at the other). */
static void expect_same_key(json_t *x, json_t *y)
{
    const char *fields[] = {"key_id", "sign", "first_seq", "last_seq", "source"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        assert_true(json_equal(json_object_get(x, fields[i]), json_object_get(y, fields[i])));
    }
}

/* A payment each way, each settled within 20 s: the channel carries both directions. */
static void pay_both_ways(cluster_t *c, tnode_t *a, tnode_t *b)
{
    cmd_result_t r;
    assert_int_equal(node_send(c, a, b, "10.00", "RUB", NULL, "20", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, b, a, "11.00", "RUB", NULL, "20", &r), 0);
    cmd_result_free(&r);
}

/* ---- 1. a peer not heard from gets the announcement once it is up ------------------------- */

static void test_rotation_waits_for_peer(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);

    /* a home with no history: its card --history lists its current key alone */
    json_t *card = card_json(c, a, false);
    json_t *history = card_json(c, a, true);
    assert_string_equal(json_string_value(json_object_get(history, "node")), NAME_A);
    json_t *keys = json_object_get(history, "keys");
    assert_int_equal(json_array_size(keys), 1);
    json_t *only = json_array_get(keys, 0);
    assert_true(json_is_null(json_object_get(only, "peer")));
    assert_string_equal(json_string_value(json_object_get(only, "side")), "ours");
    assert_string_equal(json_string_value(json_object_get(only, "key_id")),
                        json_string_value(json_object_get(history, "key_id")));
    assert_string_equal(json_string_value(json_object_get(only, "sign")),
                        json_string_value(json_object_get(card, "sign_public")));
    assert_true(json_is_null(json_object_get(only, "last_seq")));

    /* not running: exit 3 */
    json_t *doc = NULL;
    assert_int_equal(rotate(c, a, &doc, NULL), 3);

    /* running, its peer never up: the rotation is taken, its announcement waits for the peer
     * (sequence null), and the keys before stay in node.key.previous */
    node_start(c, a);
    assert_int_equal(rotate(c, a, &doc, NULL), 0);
    json_t *waiting = json_array_get(json_object_get(doc, "announced"), 0);
    assert_string_equal(json_string_value(json_object_get(waiting, "peer")), NAME_B);
    /* a peer not heard from has not shown it can switch transports: the CURVE key stays */
    assert_true(json_is_false(json_object_get(doc, "curve_switch")));
    assert_true(json_is_null(json_object_get(waiting, "sequence")));
    json_decref(doc);
    assert_true(home_has(a, KEY_FILE_PREV));
    json_t *st = node_status(c, a);
    assert_true(json_is_true(json_object_get(st, "rotation_pending")));
    json_decref(st);
    /* a second rotation before the first reached the peer: refused, naming it */
    char *err = NULL;
    assert_int_equal(rotate(c, a, &doc, &err), 1);
    assert_null(doc);
    assert_non_null(strstr(err, "not yet announced to peer " NAME_B));
    assert_non_null(strstr(err, "nothing changed"));
    free(err);
    /* a restart in between: the channel still signs with the keys the peer knows */
    assert_int_equal(node_stop(c, a), 0);
    node_start(c, a);

    /* once the peer is up, the announcement goes out and is acknowledged */
    node_start(c, b);
    pair_wait_state(c, a, b, "up", UP_MS);
    wait_rotation_acked(c, a);
    json_t *rotated = card_json(c, a, false);
    assert_string_not_equal(json_string_value(json_object_get(rotated, "sign_public")),
                            json_string_value(json_object_get(card, "sign_public")));
    assert_string_not_equal(json_string_value(json_object_get(rotated, "box_public")),
                            json_string_value(json_object_get(card, "box_public")));
    assert_string_equal(json_string_value(json_object_get(rotated, "curve_public")),
                        json_string_value(json_object_get(card, "curve_public")));
    /* and the next rotation goes out at once, with a new CURVE key: once B acknowledged it,
     * A serves it (KeySwitch), B reconnects pinned to it, and payments flow both ways */
    doc = rotate_ok(c, a, NAME_B);
    assert_true(json_is_true(json_object_get(doc, "curve_switch")));
    wait_rotation_acked(c, a);
    node_wait_log(b, "peer's inbound socket serves its new CURVE key", 1, ROTATED_MS);
    node_wait_log(a, "inbound socket serves CURVE key", 1, ROTATED_MS);
    json_t *switched = card_json(c, a, false);
    assert_string_not_equal(json_string_value(json_object_get(switched, "curve_public")),
                            json_string_value(json_object_get(card, "curve_public")));
    json_decref(switched);
    pay_both_ways(c, a, b);
    /* both restart: each finds from its key history which CURVE keys to serve and pin */
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    assert_false(home_has(a, KEY_FILE_PREV));
    node_start(c, a);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", UP_MS);
    pay_both_ways(c, a, b);
    json_decref(rotated);
    json_decref(doc);
    json_decref(history);
    json_decref(card);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    c->passed = true;
}

/* ---- 2. rotations while settlements flow both ways ----------------------------------------- */

typedef struct {
    tnode_t *first, *second; /* rotated in this order (second may be NULL) */
    json_t *replies[2];
} rotations_t;

static void rotate_during(cluster_t *c, void *arg)
{
    rotations_t *r = arg;
    r->replies[0] = rotate_ok(c, r->first, r->first == &c->nodes[0] ? NAME_B : NAME_A);
    if (r->second != NULL) {
        r->replies[1] = rotate_ok(c, r->second, r->second == &c->nodes[0] ? NAME_B : NAME_A);
    }
}

static void test_rotation_under_load(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", UP_MS);
    char *a0 = status_key_id(c, a), *b0 = status_key_id(c, b);
    char *old_key = test_path(c->dir, "a-before.key");
    char *a_key = home_file(a, KEY_FILE), *a_next = home_file(a, KEY_FILE_NEXT);
    char *b_next = home_file(b, KEY_FILE_NEXT);
    copy_file(a_key, old_key);
    int64_t t0 = mono_ms();

    /* phase 1: A rotates while settlements flow */
    plan_t *p = plan_new(11);
    plan_add(p, 0, 1, EACH_WAY);
    plan_add(p, 1, 0, EACH_WAY);
    rotations_t one = {a, NULL, {NULL, NULL}};
    traffic(c, p, 0, rotate_during, &one);
    const char *a1 = json_string_value(json_object_get(one.replies[0], "key_id"));
    assert_string_equal(json_string_value(json_object_get(one.replies[0], "previous_key_id")), a0);
    int64_t a1_at = announced_seq(one.replies[0]);
    /* the announcement went out mid-stream: A sent more after it (signed by the new key) */
    assert_true(node_peer_field(c, b, NAME_A, "received_seq") > a1_at);
    char *now = status_key_id(c, a);
    assert_string_equal(now, a1);
    free(now);
    wait_rotation_acked(c, a);
    /* the transport switched to A's new CURVE key while the settlements flowed */
    node_wait_log(a, "inbound socket serves CURVE key", 1, ROTATED_MS);
    node_wait_log(b, "peer's inbound socket serves its new CURVE key", 1, ROTATED_MS);
    node_wait_log(a, "previous signing key removed: every peer acknowledged", 1, ROTATED_MS);
    char line[160];
    snprintf(line, sizeof line, "peer's new signing key %s signs from sequence %lld", a1,
             (long long)a1_at + 1);
    assert_true(node_log_contains(b, line));
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    cluster_audit_clean(c, both, 2, 2 * EACH_WAY);
    printf("# phase 1: %d each way, A rotated at its sequence %lld, settled and audited in %lld "
           "ms\n",
           EACH_WAY, (long long)a1_at, (long long)(mono_ms() - t0));

    /* start-up with what a crash between the commit and the renames leaves: A's new key still
     * in node.key.next (the ledger has it), the one before in node.key; B with a
     * node.key.next that never committed (a key of someone else's) */
    assert_int_equal(rename(a_key, a_next), 0);
    copy_file(old_key, a_key);
    copy_file(old_key, b_next);
    node_start(c, a);
    node_start(c, b);
    assert_true(node_log_contains(a, "finished an interrupted key rotation"));
    assert_true(node_log_contains(b, "its rotation never committed"));
    assert_false(home_has(a, KEY_FILE_NEXT));
    assert_false(home_has(b, KEY_FILE_NEXT));
    now = status_key_id(c, a);
    assert_string_equal(now, a1);
    free(now);
    now = status_key_id(c, b);
    assert_string_equal(now, b0);
    free(now);
    pair_wait_state(c, a, b, "up", UP_MS);
    wait_rotation_acked(c, a); /* its node.key.previous again, until acknowledged */

    /* phase 2: B rotates, then A a second time, while settlements flow */
    t0 = mono_ms();
    size_t start = p->count;
    plan_add(p, 0, 1, EACH_WAY);
    plan_add(p, 1, 0, EACH_WAY);
    rotations_t two = {b, a, {NULL, NULL}};
    traffic(c, p, start, rotate_during, &two);
    const char *b1 = json_string_value(json_object_get(two.replies[0], "key_id"));
    const char *a2 = json_string_value(json_object_get(two.replies[1], "key_id"));
    assert_string_equal(json_string_value(json_object_get(two.replies[0], "previous_key_id")), b0);
    assert_string_equal(json_string_value(json_object_get(two.replies[1], "previous_key_id")), a1);
    int64_t b1_at = announced_seq(two.replies[0]), a2_at = announced_seq(two.replies[1]);
    assert_true(a2_at > a1_at);
    assert_true(node_peer_field(c, a, NAME_B, "received_seq") > b1_at);
    wait_rotation_acked(c, a);
    wait_rotation_acked(c, b);
    /* B's switch, and A's second (the log is of every run of the home) */
    node_wait_log(a, "peer's inbound socket serves its new CURVE key", 1, ROTATED_MS);
    node_wait_log(b, "peer's inbound socket serves its new CURVE key", 2, ROTATED_MS);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    cluster_audit_clean(c, both, 2, 4 * EACH_WAY);
    printf("# phase 2: %d each way, B rotated at %lld and A again at %lld, settled and audited "
           "in %lld ms\n",
           EACH_WAY, (long long)b1_at, (long long)a2_at, (long long)(mono_ms() - t0));

    /* the key histories: each side's chain, and the two homes mirror each other */
    json_t *ha = card_json(c, a, true), *hb = card_json(c, b, true);
    assert_string_equal(json_string_value(json_object_get(ha, "key_id")), a2);
    assert_string_equal(json_string_value(json_object_get(hb, "key_id")), b1);
    json_t *a_ours[4], *a_theirs[4], *b_ours[4], *b_theirs[4];
    size_t na = history_side(ha, "ours", a_ours, 4), nat = history_side(ha, "theirs", a_theirs, 4);
    size_t nb = history_side(hb, "ours", b_ours, 4), nbt = history_side(hb, "theirs", b_theirs, 4);
    const char *a_ids[] = {a0, a1, a2, NULL}, *b_ids[] = {b0, b1, NULL};
    const int64_t a_at[] = {a1_at, a2_at}, b_at[] = {b1_at};
    expect_chain(a_ours, na, a_ids, a_at);
    expect_chain(b_theirs, nbt, a_ids, a_at);
    expect_chain(b_ours, nb, b_ids, b_at);
    expect_chain(a_theirs, nat, b_ids, b_at);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(json_string_value(json_object_get(a_ours[i], "peer")), NAME_B);
        assert_string_equal(json_string_value(json_object_get(b_theirs[i], "peer")), NAME_A);
        expect_same_key(a_ours[i], b_theirs[i]);
    }
    for (size_t i = 0; i < nb; i++) {
        expect_same_key(b_ours[i], a_theirs[i]);
    }
    json_decref(ha);
    json_decref(hb);
    for (size_t i = 0; i < 2; i++) {
        json_decref(one.replies[i]);
        json_decref(two.replies[i]);
    }
    free(a0);
    free(b0);
    free(old_key);
    free(a_key);
    free(a_next);
    free(b_next);
    c->passed = true;
}

/* ---- 3. a stolen key, replaced by both operators --------------------------------------------- */

static void no_traffic(cluster_t *c, void *arg)
{
    (void)c;
    (void)arg;
}

static json_t *command_json(cluster_t *c, tnode_t *n, const char *const *argv)
{
    cmd_result_t r;
    int rc = cluster_cmdv(c, NODE_CMD_TIMEOUT_MS, &r, argv);
    if (rc != 0) {
        printf("# %s %s at %s exited %d: %s\n", argv[0], argv[1], n->name, rc, r.err);
    }
    assert_int_equal(rc, 0);
    json_t *doc = parse(argv[0], n, &r);
    cmd_result_free(&r);
    return doc;
}

static void test_replacement(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", UP_MS);
    plan_t *p = plan_new(23);
    plan_add(p, 0, 1, 50);
    plan_add(p, 1, 0, 50);
    traffic(c, p, 0, no_traffic, NULL);

    /* B queues settlements A never acknowledges, then both stop; the thief copies B's home */
    assert_int_equal(node_stop(c, a), 0);
    size_t queued_from = p->count;
    plan_add(p, 1, 0, 5);
    char *batch = plan_write_batch(c, p, 1, queued_from, p->count);
    cmd_result_t r;
    assert_int_equal(
        cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "send", "--home", b->home, "--batch", batch, NULL),
        0);
    cmd_result_free(&r);
    int64_t b_sent = node_peer_field(c, b, NAME_A, "sent_seq");
    int64_t a_applied = node_peer_field(c, b, NAME_A, "acked_seq");
    assert_true(b_sent > a_applied);
    assert_int_equal(node_stop(c, b), 0);
    assert_true(c->count < CLUSTER_NODES_MAX);
    tnode_t *thief = &c->nodes[c->count++];
    *thief = *b;
    thief->home = test_path(c->dir, "thief");
    thief->log = test_path(c->dir, "thief.log");
    thief->pid = 0;
    const char *copy[] = {"/bin/cp", "-a", b->home, thief->home, NULL};
    assert_int_equal(nodes_run_program(copy, NODE_CMD_TIMEOUT_MS), 0);

    /* B's operator replaces its keys; A's operator puts B's new card in place of the old */
    const char *replace_b[] = {"key", "replace", "--home", b->home, "--json", NULL};
    json_t *rb = command_json(c, b, replace_b);
    const char *card = json_string_value(json_object_get(rb, "card"));
    const char *b_new = json_string_value(json_object_get(rb, "key_id"));
    const char *b_old = json_string_value(json_object_get(rb, "replaced_key_id"));
    assert_true(card != NULL && b_new != NULL && b_old != NULL);
    assert_string_not_equal(b_new, b_old);
    json_t *ch = json_array_get(json_object_get(rb, "channels"), 0);
    assert_int_equal(json_integer_value(json_object_get(ch, "first_seq")), b_sent + 1);
    assert_false(home_has(b, KEY_FILE_NEXT));
    assert_false(home_has(b, KEY_FILE_PREV));
    const char *replace_a[] = {"peer", "add", "--home", a->home, "--replace", card, "--json", NULL};
    json_t *ra = command_json(c, a, replace_a);
    int64_t from = json_integer_value(json_object_get(ra, "first_seq"));
    assert_true(from >= a_applied + 1 && from <= b_sent);
    assert_int_equal(json_integer_value(json_object_get(ra, "revoked_from")), from);
    assert_string_equal(json_string_value(json_object_get(ra, "key_id")), b_new);
    assert_string_equal(json_string_value(json_object_get(ra, "replaced_key_id")), b_old);
    /* a second time is refused: the key is the trusted one already */
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "peer", "add", "--home", a->home,
                                 "--replace", card, NULL),
                     2);
    cmd_result_free(&r);

    /* the thief starts in B's place with the stolen keys and pays itself */
    node_start(c, a);
    node_start(c, thief);
    const char *stolen = "7d2c1e4a-95f3-4b8e-a6d1-0c9e8b7a6f50";
    assert_int_equal(node_send(c, thief, a, "999.00", "RUB", stolen, NULL, &r), 0);
    cmd_result_free(&r);
    /* its CURVE key is B's old one, which A no longer admits: refused before any frame */
    int64_t deadline = mono_ms() + UP_MS;
    while (node_transport_counter(c, a, "refused") == 0) {
        if (mono_ms() >= deadline) {
            fail_msg("A did not refuse the thief's connection within %d ms", UP_MS);
        }
        sleep_ms(50);
    }
    assert_int_equal(node_stop(c, thief), 0);
    json_t *la = node_ledger(c, a);
    assert_null(ledger_json_find(la, NAME_B, stolen, NULL));
    json_decref(la);

    /* the real B, started as a crash between the commit and the renames leaves it (the new
     * key still in node.key.next, the stolen one in node.key and node.key.previous); its
     * queued settlements, signed again, settle; then traffic both ways */
    char *b_key = home_file(b, KEY_FILE), *b_next = home_file(b, KEY_FILE_NEXT);
    char *b_prev = home_file(b, KEY_FILE_PREV), *stolen_key = home_file(thief, KEY_FILE);
    assert_int_equal(rename(b_key, b_next), 0);
    copy_file(stolen_key, b_key);
    copy_file(stolen_key, b_prev);
    node_start(c, b);
    assert_true(node_log_contains(b, "finished an interrupted key replacement"));
    assert_false(home_has(b, KEY_FILE_NEXT));
    assert_false(home_has(b, KEY_FILE_PREV));
    char *now = status_key_id(c, b);
    assert_string_equal(now, b_new);
    free(now);
    pair_wait_state(c, a, b, "up", UP_MS);
    size_t start = p->count;
    plan_add(p, 0, 1, 100);
    plan_add(p, 1, 0, 100);
    traffic(c, p, start, no_traffic, NULL);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    cluster_audit_clean(c, both, 2, 2 * (int64_t)p->count);

    /* the key histories and the operators' actions on record */
    json_t *ha = card_json(c, a, true), *hb = card_json(c, b, true);
    json_t *theirs[4], *ours[4];
    assert_int_equal(history_side(ha, "theirs", theirs, 4), 2);
    assert_int_equal(history_side(hb, "ours", ours, 4), 2);
    assert_string_equal(json_string_value(json_object_get(theirs[0], "key_id")), b_old);
    assert_int_equal(json_integer_value(json_object_get(theirs[0], "revoked_from")), from);
    assert_int_equal(json_integer_value(json_object_get(theirs[0], "last_seq")), from - 1);
    assert_string_equal(json_string_value(json_object_get(theirs[1], "source")), "replaced");
    assert_int_equal(json_integer_value(json_object_get(theirs[1], "first_seq")), from);
    assert_string_equal(json_string_value(json_object_get(ours[0], "key_id")), b_old);
    assert_int_equal(json_integer_value(json_object_get(ours[0], "last_seq")), b_sent);
    assert_string_equal(json_string_value(json_object_get(ours[1], "key_id")), b_new);
    assert_string_equal(json_string_value(json_object_get(ours[1], "source")), "replaced");
    for (size_t i = 0; i < 2; i++) {
        const char *ops[] = {"operations", "--home", both[i]->home, "--json", NULL};
        json_t *doc = command_json(c, both[i], ops);
        json_t *op = json_array_get(json_object_get(doc, "operations"), 0);
        assert_non_null(op);
        json_t *record = json_object_get(op, "record");
        assert_string_equal(json_string_value(json_object_get(record, "action")), "replace");
        json_decref(doc);
    }
    json_decref(ha);
    json_decref(hb);
    json_decref(ra);
    json_decref(rb);
    free(batch);
    free(b_key);
    free(b_next);
    free(b_prev);
    free(stolen_key);
    c->passed = true;
}

/* ---- 4. both ends rotate at once --------------------------------------------------------------
 */

/* A and B rotate at the same moment, both with new CURVE keys: the node with the higher code
 * waits to switch until it applied the other's KeySwitch (each pinning the other's old key
 * would leave no way for either KeySwitch), and payments flow both ways after. */
static void test_rotation_both_at_once(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", UP_MS);
    for (int round = 0; round < 3; round++) {
        pid_t pa = cluster_spawn(c, "key", "rotate", "--home", a->home, NULL);
        pid_t pb = cluster_spawn(c, "key", "rotate", "--home", b->home, NULL);
        assert_int_equal(cluster_wait_spawned(c, pa, NODE_CMD_TIMEOUT_MS, NULL), 0);
        assert_int_equal(cluster_wait_spawned(c, pb, NODE_CMD_TIMEOUT_MS, NULL), 0);
        wait_rotation_acked(c, a);
        wait_rotation_acked(c, b);
        size_t switches = (size_t)round + 1;
        node_wait_log(a, "peer's inbound socket serves its new CURVE key", switches, ROTATED_MS);
        node_wait_log(b, "peer's inbound socket serves its new CURVE key", switches, ROTATED_MS);
        pay_both_ways(c, a, b);
    }
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    cluster_audit_clean(c, both, 2, 6);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_waits_for_peer, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_rotation_under_load, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_replacement, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_rotation_both_at_once, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("rotation", tests, NULL, NULL);
}
