/*
 * Multilateral set-off with real nodes (PROTOCOL.md 3.12, issue 22). Banks on a ring, each owing
 * the next in RUB through real payments (`send --wait`):
 * - help, bad input (exit 2) and the proposer's own refusal (exit 1) write nothing;
 * - three banks: `setoff propose --wait` commits; every `setoff list --json` shows it committed
 *   with both legs settled; each bank's net over its peers is unchanged and each debt shrank by
 *   the amount (the wall time of the propose is printed, not asserted);
 * - an amount over one debt: exit 1, aborted AM04 at every bank, no leg settled, positions
 *   unchanged;
 * - a member stopped past the deadline: exit 1 with AB05 at the proposer; once the member is
 *   back the abort travels the ring and every leg that exists is rejected; the same with the
 *   proposer's successor stopped, and with the proposer killed and back after its deadline;
 * - a member killed (SIGKILL) before the proposal, after its vote with its relay lost, after the
 *   commit with its decision lost, and the proposer killed with its relay lost: once it is back
 *   the set-off commits at every bank;
 * - four banks: a set-off commits, and an asking round (no --amount) commits the smallest debt;
 * - two overlapping proposals whose debts allow only one: never both committed, positions
 *   consistent; a burst of six from three banks, also with set-off messages duplicated and
 *   reordered, never over-commits a debt.
 * Restarts in every order: a member restarted before it heard a neighbour still passes set-off
 * messages on. `corridor audit` of the homes is clean after each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nodes.h"
#include "support.h"
#include "validate.h"

#define NAME_D     "TJTJTJTD" /* the fourth bank of the ring of four */
#define RING_MAX   4
#define SETTLE_MS  30000 /* bound for a decision to travel the ring */
#define SETOFF_CCY "RUB"
#define WAIT_SECS  "10"

/* Banks on a ring: nodes[i] owes nodes[i + 1], the last owes nodes[0]. */
typedef struct {
    tnode_t *nodes[RING_MAX];
    size_t n;
    char text[RING_MAX * 16]; /* "A,B,C" for --ring */
} ring_t;

static tnode_t *next_of(const ring_t *r, size_t i)
{
    return r->nodes[(i + 1) % r->n];
}

static tnode_t *prev_of(const ring_t *r, size_t i)
{
    return r->nodes[(i + r->n - 1) % r->n];
}

/* n banks, each linked with its two neighbours (generous caps; four banks: A with C too), all
 * started (with CORRIDOR_FAULTS=faults, NULL none), channels up. */
static void ring_up_faults(cluster_t *c, size_t n, ring_t *r, const char *faults)
{
    static const char *const names[RING_MAX] = {NAME_A, NAME_B, NAME_C, NAME_D};
    assert_true(n >= 3 && n <= RING_MAX);
    memset(r, 0, sizeof *r);
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        r->nodes[i] = cluster_add(c, names[i], NODES_CURRENCIES);
        strcat(r->text, i == 0 ? "" : ",");
        strcat(r->text, names[i]);
    }
    for (size_t i = 0; i < n; i++) {
        cluster_link(c, r->nodes[i], next_of(r, i), NODES_GENEROUS_CAPS);
    }
    if (n == 4) { /* the proposer A needs a card for every member: A-C, as a testnet would */
        cluster_link(c, r->nodes[0], r->nodes[2], NODES_GENEROUS_CAPS);
    }
    for (size_t i = 0; i < n; i++) {
        node_start_faults(c, r->nodes[i], faults);
    }
    for (size_t i = 0; i < n; i++) {
        pair_wait_state(c, r->nodes[i], next_of(r, i), "up", 15000);
    }
}

static void ring_up(cluster_t *c, size_t n, ring_t *r)
{
    ring_up_faults(c, n, r, NULL);
}

/* Each bank pays the next amounts[i] RUB (so owes it), waiting for each to settle. */
static void ring_debts(cluster_t *c, const ring_t *r, const char *const *amounts)
{
    for (size_t i = 0; i < r->n; i++) {
        cmd_result_t res;
        int rc = node_send(c, r->nodes[i], next_of(r, i), amounts[i], SETOFF_CCY, NULL, "30", &res);
        if (rc != 0) {
            printf("# send %s -> %s exited %d: %s\n", r->nodes[i]->name, next_of(r, i)->name, rc,
                   res.err);
        }
        assert_int_equal(rc, 0);
        cmd_result_free(&res);
    }
    for (size_t i = 0; i < r->n; i++) {
        pair_wait_idle(c, r->nodes[i], next_of(r, i), 30000);
    }
}

/* Each bank's posted net in RUB towards its successor and its predecessor, and no pending. */
typedef struct {
    int64_t to_next[RING_MAX];
    int64_t to_prev[RING_MAX];
    int64_t sum[RING_MAX]; /* over every peer the ledger lists */
} positions_t;

/* The sum of the posted nets in RUB over every position of a `ledger --json`. */
static int64_t ledger_sum(json_t *l)
{
    int64_t sum = 0;
    json_t *pos;
    size_t i;
    json_array_foreach(json_object_get(l, "positions"), i, pos)
    {
        if (strcmp(json_string_value(json_object_get(pos, "currency")), SETOFF_CCY) == 0) {
            sum += json_integer_value(json_object_get(pos, "net_minor"));
        }
    }
    return sum;
}

static void positions(cluster_t *c, const ring_t *r, positions_t *p)
{
    for (size_t i = 0; i < r->n; i++) {
        json_t *l = node_ledger(c, r->nodes[i]);
        p->to_next[i] = ledger_net(l, next_of(r, i)->name, SETOFF_CCY);
        p->to_prev[i] = ledger_net(l, prev_of(r, i)->name, SETOFF_CCY);
        p->sum[i] = ledger_sum(l);
        assert_int_equal(ledger_pending(l, next_of(r, i)->name, SETOFF_CCY), 0);
        assert_int_equal(ledger_pending(l, prev_of(r, i)->name, SETOFF_CCY), 0);
        json_decref(l);
    }
}

/* After set-offs totalling `moved` minor units: each debt shrank by it (the debtor's net towards
 * its creditor rose, the creditor's towards its debtor fell), each bank's sum unchanged, and the
 * two ends of every edge mirror each other. */
static void expect_moved(cluster_t *c, const ring_t *r, const positions_t *before, int64_t moved)
{
    positions_t now;
    positions(c, r, &now);
    for (size_t i = 0; i < r->n; i++) {
        printf("# %s: towards %s %lld -> %lld, towards %s %lld -> %lld\n", r->nodes[i]->name,
               next_of(r, i)->name, (long long)before->to_next[i], (long long)now.to_next[i],
               prev_of(r, i)->name, (long long)before->to_prev[i], (long long)now.to_prev[i]);
        assert_int_equal(now.to_next[i], before->to_next[i] + moved);
        assert_int_equal(now.to_prev[i], before->to_prev[i] - moved);
        assert_int_equal(now.to_next[i] + now.to_prev[i], before->to_next[i] + before->to_prev[i]);
        assert_int_equal(now.sum[i], before->sum[i]);
        assert_int_equal(now.to_next[i], -now.to_prev[(i + 1) % r->n]);
    }
}

/* ---- setoff propose / list ---------------------------------------------------------------- */

typedef struct {
    int rc;
    char id[CORRIDOR_UETR_LEN + 1]; /* "" when none was printed */
    char state[16];
    char reason[16];
    int64_t elapsed_ms;
} proposed_t;

static void parse_proposed(const cmd_result_t *res, proposed_t *p)
{
    p->rc = res->rc;
    p->id[0] = p->state[0] = p->reason[0] = '\0';
    json_t *doc = json_loads(res->out, 0, NULL);
    const char *v = json_string_value(json_object_get(doc, "setoff_id"));
    if (v != NULL) {
        snprintf(p->id, sizeof p->id, "%s", v);
    }
    if ((v = json_string_value(json_object_get(doc, "state"))) != NULL) {
        snprintf(p->state, sizeof p->state, "%s", v);
    }
    if ((v = json_string_value(json_object_get(doc, "reason"))) != NULL) {
        snprintf(p->reason, sizeof p->reason, "%s", v);
    }
    json_decref(doc);
    if (p->id[0] == '\0' && p->rc == 1 && strstr(res->err, "refuse it: AM04") != NULL) {
        snprintf(p->reason, sizeof p->reason, "AM04"); /* refused by the proposer's own books */
    }
    printf("# setoff propose: exit %d, id %s, state %s, reason %s; %.300s\n", p->rc,
           p->id[0] ? p->id : "-", p->state[0] ? p->state : "-", p->reason[0] ? p->reason : "-",
           res->err);
}

/* The argv of `setoff propose --json` at `from` (amount, deadline and wait may be NULL). */
static void propose_args(const char *args[20], tnode_t *from, const ring_t *r, const char *amount,
                         const char *deadline, const char *wait)
{
    size_t k = 0;
    args[k++] = "setoff";
    args[k++] = "propose";
    args[k++] = "--home";
    args[k++] = from->home;
    args[k++] = "--ring";
    args[k++] = r->text;
    args[k++] = "--currency";
    args[k++] = SETOFF_CCY;
    args[k++] = "--json";
    if (amount != NULL) {
        args[k++] = "--amount";
        args[k++] = amount;
    }
    if (deadline != NULL) {
        args[k++] = "--deadline";
        args[k++] = deadline;
    }
    if (wait != NULL) {
        args[k++] = "--wait";
        args[k++] = wait;
    }
    args[k] = NULL;
}

static void propose(cluster_t *c, tnode_t *from, const ring_t *r, const char *amount,
                    const char *deadline, const char *wait, proposed_t *p)
{
    const char *args[20];
    propose_args(args, from, r, amount, deadline, wait);
    cmd_result_t res;
    int64_t t0 = mono_ms();
    cluster_cmdv(c, NODE_CMD_TIMEOUT_MS, &res, args);
    p->elapsed_ms = mono_ms() - t0;
    parse_proposed(&res, p);
    cmd_result_free(&res);
}

/* `setoff list --json` of n, parsed (asserts exit 0; works with the node stopped too). */
static json_t *setoff_list(cluster_t *c, tnode_t *n)
{
    cmd_result_t res;
    int rc = cluster_cmd(c, 30000, &res, "setoff", "list", "--home", n->home, "--json", NULL);
    if (rc != 0) {
        printf("# setoff list at %s exited %d: %s\n", n->name, rc, res.err);
    }
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(res.out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "node")), n->name);
    cmd_result_free(&res);
    return doc;
}

/* The set-off `id` in a list document, or NULL; fails if it is there twice. */
static json_t *setoff_in(json_t *doc, const char *id)
{
    json_t *found = NULL, *item;
    size_t i, times = 0;
    json_array_foreach(json_object_get(doc, "setoffs"), i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "id")), id) == 0) {
            found = item;
            times++;
        }
    }
    assert_true(times <= 1);
    return found;
}

static const char *text_of(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return v != NULL ? v : "";
}

/* The leg with `peer` of a list entry, or NULL. */
static json_t *leg_with(json_t *entry, const char *peer)
{
    json_t *leg;
    size_t i;
    json_array_foreach(json_object_get(entry, "legs"), i, leg)
    {
        if (strcmp(text_of(leg, "peer"), peer) == 0) {
            return leg;
        }
    }
    return NULL;
}

/* Whether n's entry of `id` is in `state` and every leg it holds has `leg_status`, with
 * exactly `legs` legs (-1: any number). Describes what it saw in why. */
static bool setoff_is(json_t *doc, const char *id, const char *state, const char *leg_status,
                      int legs, char why[256])
{
    json_t *e = setoff_in(doc, id);
    if (e == NULL) {
        snprintf(why, 256, "not listed");
        return false;
    }
    json_t *all = json_object_get(e, "legs");
    snprintf(why, 256, "state %s reason %s, %zu legs", text_of(e, "state"), text_of(e, "reason"),
             json_array_size(all));
    if (strcmp(text_of(e, "state"), state) != 0 ||
        (legs >= 0 && json_array_size(all) != (size_t)legs)) {
        return false;
    }
    json_t *leg;
    size_t i;
    json_array_foreach(all, i, leg)
    {
        if (strcmp(text_of(leg, "status"), leg_status) != 0) {
            snprintf(why, 256, "state %s, leg with %s %s", text_of(e, "state"),
                     text_of(leg, "peer"), text_of(leg, "status"));
            return false;
        }
    }
    return true;
}

/* Waits until n lists `id` in `state` with every leg `leg_status` (`legs` of them, -1 any). */
static void wait_one(cluster_t *c, tnode_t *n, const char *id, const char *state,
                     const char *leg_status, int legs, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        json_t *doc = setoff_list(c, n);
        char why[256];
        bool done = setoff_is(doc, id, state, leg_status, legs, why);
        json_decref(doc);
        if (done) {
            return;
        }
        if (mono_ms() > end) {
            fail_msg("set-off %s at %s: %s, not %s with legs %s after %d ms", id, n->name, why,
                     state, leg_status, timeout_ms);
        }
        sleep_ms(100);
    }
}

/* Waits until every bank of the ring lists `id` in `state` with every leg `leg_status`
 * (`legs` legs each, -1 any); fails after timeout_ms. */
static void ring_wait_setoff(cluster_t *c, const ring_t *r, const char *id, const char *state,
                             const char *leg_status, int legs, int timeout_ms)
{
    for (size_t i = 0; i < r->n; i++) {
        wait_one(c, r->nodes[i], id, state, leg_status, legs, timeout_ms);
    }
}

/* Every bank's entry of a committed `id`: amount, position on the ring turned to `proposer`,
 * both legs settled, the owed one with the successor; and the legs are settled entries of the
 * ledger with both neighbours. */
static void expect_committed(cluster_t *c, const ring_t *r, const char *id, int64_t amount,
                             size_t proposer)
{
    for (size_t i = 0; i < r->n; i++) {
        json_t *doc = setoff_list(c, r->nodes[i]);
        json_t *e = setoff_in(doc, id);
        assert_non_null(e);
        assert_string_equal(text_of(e, "state"), "committed");
        assert_string_equal(text_of(e, "currency"), SETOFF_CCY);
        assert_int_equal(json_integer_value(json_object_get(e, "amount_minor")), amount);
        size_t pos = (i + r->n - proposer) % r->n;
        assert_int_equal(json_integer_value(json_object_get(e, "position")), pos);
        assert_true(json_is_boolean(json_object_get(e, "proposed_by_us")));
        assert_int_equal(json_is_true(json_object_get(e, "proposed_by_us")), pos == 0);
        assert_int_equal(json_array_size(json_object_get(e, "ring")), r->n);
        assert_string_equal(json_string_value(json_array_get(json_object_get(e, "ring"), 0)),
                            r->nodes[proposer]->name);
        json_t *owed = leg_with(e, next_of(r, i)->name), *owing = leg_with(e, prev_of(r, i)->name);
        assert_non_null(owed);
        assert_non_null(owing);
        assert_string_equal(text_of(owed, "direction"), "owed");
        assert_string_equal(text_of(owing, "direction"), "owing_us");
        assert_string_equal(text_of(owed, "status"), "settled");
        assert_string_equal(text_of(owing, "status"), "settled");
        json_decref(doc);
        json_t *l = node_ledger(c, r->nodes[i]);
        for (int side = 0; side < 2; side++) {
            const char *peer = side == 0 ? next_of(r, i)->name : prev_of(r, i)->name;
            size_t times = 0;
            json_t *s = ledger_json_find(l, peer, id, &times);
            if (s == NULL) {
                fail_msg("leg %s with %s not among %s's settlements", id, peer, r->nodes[i]->name);
            }
            assert_int_equal(times, 1);
            assert_string_equal(text_of(s, "status"), "settled");
            assert_int_equal(json_integer_value(json_object_get(s, "amount_minor")), amount);
            /* TODO(setoff ledger --json): PROTOCOL.md 3.12.7 says the legs carry `setoff_id`;
             * `ledger --json` labels them `fx_id` today (render.c, settlement_is_fx_leg is true
             * for set-off legs). Check text_of(s, "setoff_id") == id once that is settled. */
        }
        json_decref(l);
    }
}

static const char *const debts3[3] = {"500.00", "300.00", "400.00"}; /* A->B, B->C, C->A */

/* 0. Help, bad input and refusals by the proposer's own books: `setoff propose` exits 2 for bad
 * input (and a ring this node cannot propose), 1 when its own books refuse (no debt yet), and
 * writes nothing either way; `setoff list` shows no set-off. */
static void test_setoff_bad_input(void **state)
{
    cluster_t *c = *state;
    cmd_result_t res;
    const char *subs[] = {"propose", "list"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cluster_cmd(c, 30000, &res, "setoff", subs[i], "--help", NULL), 0);
        char example[64];
        snprintf(example, sizeof example, "Example: corridor setoff %s ", subs[i]);
        assert_non_null(strstr(res.out, example));
        cmd_result_free(&res);
    }
    assert_int_equal(cluster_cmd(c, 30000, &res, "setoff", NULL), 2);
    cmd_result_free(&res);

    ring_t r;
    ring_up(c, 3, &r);
    tnode_t *a = r.nodes[0];
    json_t *doc = setoff_list(c, a);
    assert_int_equal(json_array_size(json_object_get(doc, "setoffs")), 0);
    json_decref(doc);
    assert_int_equal(cluster_cmd(c, 30000, &res, "setoff", "list", "--home", a->home, NULL), 0);
    assert_non_null(strstr(res.out, "no set-off yet"));
    cmd_result_free(&res);

    char *head = node_ledger_head(c, a);
    static const char *const bad[][3] = {
        /* ring, currency, amount */
        {NAME_A "," NAME_B, "RUB", "10"},            /* two banks */
        {NAME_A "," NAME_B "," NAME_C, "XYZ", "10"}, /* no such currency */
        {NAME_A "," NAME_B "," NAME_C, "RUB", "0"},  /* not positive */
        {NAME_A "," NAME_B "," NAME_C, "RUB", "-5"},
        {NAME_A "," NAME_B "," NAME_C, "RUB", "1.001"}, /* three decimals */
        {NAME_A "," NAME_B "," NAME_C, "RUB", "ten"},
        {NAME_A "," NAME_B ","
                "bad",
         "RUB", "10"},                               /* not a node code */
        {NAME_B "," NAME_C "," NAME_D, "RUB", "10"}, /* we are not on it */
        {NAME_A "," NAME_B "," NAME_A, "RUB", "10"}, /* twice */
        {NAME_A "," NAME_D "," NAME_B, "RUB", "10"}, /* D is no peer of ours */
        {NAME_A "," NAME_B "," NAME_C "," NAME_D "," NAME_A, "RUB", "10"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cluster_cmd(c, 30000, &res, "setoff", "propose", "--home", a->home, "--ring",
                             bad[i][0], "--currency", bad[i][1], "--amount", bad[i][2], NULL);
        printf("# --ring %s --currency %s --amount %s: exit %d: %.200s", bad[i][0], bad[i][1],
               bad[i][2], rc, res.err);
        assert_int_equal(rc, 2);
        cmd_result_free(&res);
    }
    assert_int_equal(cluster_cmd(c, 30000, &res, "setoff", "propose", "--home", a->home, "--ring",
                                 r.text, "--amount", "10", NULL),
                     2); /* no currency */
    cmd_result_free(&res);
    /* good input, but nobody owes anybody yet: A's own books refuse, exit 1 at once */
    proposed_t p;
    propose(c, a, &r, "10", NULL, WAIT_SECS, &p);
    assert_int_equal(p.rc, 1);
    assert_string_equal(p.reason, "AM04");
    assert_string_equal(p.id, "");
    propose(c, a, &r, NULL, NULL, WAIT_SECS, &p); /* an asking round: nothing to ask for */
    assert_int_equal(p.rc, 1);
    char *head_after = node_ledger_head(c, a);
    assert_string_equal(head, head_after);
    free(head_after);
    /* A restarted with B down: B has not offered set-offs since A's start, exit 2 */
    assert_int_equal(node_stop(c, r.nodes[1]), 0);
    assert_int_equal(node_stop(c, a), 0);
    node_start(c, a);
    pair_wait_state(c, r.nodes[2], a, "up", 15000);
    assert_int_equal(cluster_cmd(c, 30000, &res, "setoff", "propose", "--home", a->home, "--ring",
                                 r.text, "--currency", "RUB", "--amount", "10", NULL),
                     2);
    assert_non_null(strstr(res.err, "has not offered set-offs"));
    cmd_result_free(&res);
    head_after = node_ledger_head(c, a);
    assert_string_equal(head, head_after);
    free(head);
    free(head_after);
    doc = setoff_list(c, a);
    assert_int_equal(json_array_size(json_object_get(doc, "setoffs")), 0);
    json_decref(doc);
    c->passed = true;
}

/* 1. Three banks commit 200.00 with --wait. */
static void test_setoff_three_commit(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    assert_int_equal(before.to_next[0], -50000); /* A owes B 500.00 */
    assert_int_equal(before.to_prev[0], 40000);  /* C owes A 400.00 */

    proposed_t p;
    propose(c, r.nodes[0], &r, "200", NULL, WAIT_SECS, &p);
    printf("# timing: a 3-node `setoff propose --wait` took %lld ms (wall, not asserted)\n",
           (long long)p.elapsed_ms);
    assert_int_equal(p.rc, 0);
    assert_int_equal(uetr_check(p.id), VALID_OK);
    assert_string_equal(p.state, "committed");

    /* the proposer has decided; the decision reaches the others backward round the ring */
    ring_wait_setoff(c, &r, p.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p.id, 20000, 0);
    expect_moved(c, &r, &before, 20000);
    for (size_t i = 0; i < r.n; i++) {
        assert_true(node_log_contains(r.nodes[i], p.id));
    }
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* 2. 350.00 is more than B owes C (300.00): B refuses AM04, all abort, nothing moves. */
static void test_setoff_refused_am04(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);

    proposed_t p;
    propose(c, r.nodes[0], &r, "350", NULL, WAIT_SECS, &p);
    assert_int_equal(p.rc, 1);
    assert_int_equal(uetr_check(p.id), VALID_OK);
    assert_string_equal(p.state, "aborted");
    assert_string_equal(p.reason, "AM04");

    /* every member learns the abort; no leg of it is anything but rejected */
    ring_wait_setoff(c, &r, p.id, "aborted", "rejected", -1, SETTLE_MS);
    for (size_t i = 0; i < r.n; i++) {
        json_t *doc = setoff_list(c, r.nodes[i]);
        json_t *e = setoff_in(doc, p.id);
        assert_string_equal(text_of(e, "reason"), "AM04");
        assert_int_equal(json_integer_value(json_object_get(e, "amount_minor")), 35000);
        json_decref(doc);
    }
    /* A opened its leg with B before B refused: that one exists, rejected */
    json_t *doc = setoff_list(c, r.nodes[0]);
    json_t *leg = leg_with(setoff_in(doc, p.id), NAME_B);
    assert_non_null(leg);
    assert_string_equal(text_of(leg, "status"), "rejected");
    json_decref(doc);
    expect_moved(c, &r, &before, 0);
    /* and the debts are whole: 300.00 can still be set off */
    propose(c, r.nodes[0], &r, "300", NULL, WAIT_SECS, &p);
    assert_int_equal(p.rc, 0);
    ring_wait_setoff(c, &r, p.id, "committed", "settled", 2, SETTLE_MS);
    expect_moved(c, &r, &before, 30000);
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* The tests below restart nodes in a chosen order, each to reach one path; the plain restarts
 * are test_setoff_restart_race and test_setoff_restart_forwards_before_hello. */

/* Waits until n lists `id` (any state). */
static void wait_listed(cluster_t *c, tnode_t *n, const char *id, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        json_t *doc = setoff_list(c, n);
        bool done = setoff_in(doc, id) != NULL;
        json_decref(doc);
        if (done) {
            return;
        }
        if (mono_ms() > end) {
            fail_msg("set-off %s not listed at %s after %d ms", id, n->name, timeout_ms);
        }
        sleep_ms(100);
    }
}

/* 3. C stopped: the deadline passes at A (AB05); C back, the abort goes round. The same with B
 * stopped, and with the proposer killed (its relay lost) and back only after its deadline. */
static void test_setoff_deadline_member_down(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    tnode_t *a = r.nodes[0], *b = r.nodes[1], *cc = r.nodes[2];
    assert_int_equal(node_stop(c, cc), 0);

    proposed_t p;
    propose(c, a, &r, "100", "2", WAIT_SECS, &p);
    assert_int_equal(p.rc, 1);
    assert_int_equal(uetr_check(p.id), VALID_OK);
    assert_string_equal(p.state, "aborted");
    assert_string_equal(p.reason, "AB05");
    json_t *doc = setoff_list(c, a);
    json_t *e = setoff_in(doc, p.id);
    assert_non_null(e);
    assert_string_equal(text_of(e, "state"), "aborted");
    assert_string_equal(text_of(e, "reason"), "AB05");
    /* the decision follows the relay: A's own message closed its leg with B */
    json_t *leg = leg_with(e, NAME_B);
    assert_non_null(leg);
    assert_string_equal(text_of(leg, "status"), "rejected");
    json_decref(doc);
    /* B voted yes, then took A's abort: both its legs closed at once, both messages queued to C */
    wait_one(c, b, p.id, "aborted", "rejected", 2, SETTLE_MS);

    /* C back while A is down (the race above): C takes B's relay, then A's decision */
    assert_int_equal(node_stop(c, a), 0);
    node_start(c, cc);
    pair_wait_state(c, b, cc, "up", 15000);
    wait_listed(c, cc, p.id, SETTLE_MS);
    node_start(c, a);
    ring_wait_setoff(c, &r, p.id, "aborted", "rejected", -1, SETTLE_MS);
    for (size_t i = 0; i < r.n; i++) {
        doc = setoff_list(c, r.nodes[i]);
        e = setoff_in(doc, p.id);
        printf("# %s: aborted %s, %zu legs\n", r.nodes[i]->name, text_of(e, "reason"),
               json_array_size(json_object_get(e, "legs")));
        assert_string_equal(text_of(e, "reason"), "AB05");
        json_decref(doc);
    }
    /* the legs B and A opened are there, rejected */
    doc = setoff_list(c, b);
    assert_int_equal(json_array_size(json_object_get(setoff_in(doc, p.id), "legs")), 2);
    json_decref(doc);
    pair_wait_state(c, a, b, "up", 15000);
    pair_wait_state(c, cc, a, "up", 15000);

    /* B, A's successor, stopped: the relay and then the abort wait at A for B */
    assert_int_equal(node_stop(c, b), 0);
    proposed_t q;
    propose(c, a, &r, "100", "2", WAIT_SECS, &q);
    assert_int_equal(q.rc, 1);
    assert_string_equal(q.reason, "AB05");
    doc = setoff_list(c, cc);
    assert_null(setoff_in(doc, q.id)); /* nothing reaches C but through B */
    json_decref(doc);
    /* B back while C is down: B takes A's relay (refused AB05, its deadline passed), then A's
     * decision, and queues both for C */
    assert_int_equal(node_stop(c, cc), 0);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", 15000);
    wait_listed(c, b, q.id, SETTLE_MS);
    node_start(c, cc);
    ring_wait_setoff(c, &r, q.id, "aborted", "rejected", -1, SETTLE_MS);
    doc = setoff_list(c, a);
    leg = leg_with(setoff_in(doc, q.id), NAME_B);
    assert_non_null(leg);
    assert_string_equal(text_of(leg, "status"), "rejected");
    json_decref(doc);
    pair_wait_state(c, b, cc, "up", 15000);
    pair_wait_state(c, cc, a, "up", 15000);

    /* the proposer itself killed with its relay lost, back after its deadline: it aborts AB05 on
     * its own clock, B refuses the late relay, every member ends aborted */
    assert_int_equal(node_stop(c, a), 0);
    node_start_faults(c, a, "drop=1,drop_type=SetoffRelay");
    pair_wait_state(c, a, b, "up", 15000);
    pair_wait_state(c, cc, a, "up", 15000);
    proposed_t late;
    propose(c, a, &r, "100", "2", NULL, &late);
    assert_int_equal(late.rc, 0);
    wait_one(c, a, late.id, "voting", "pending", 1, SETTLE_MS);
    assert_true(node_faults_counter(c, a, "dropped") >= 1);
    node_kill9(a);
    doc = setoff_list(c, b);
    assert_null(setoff_in(doc, late.id)); /* B never heard of it */
    json_decref(doc);
    sleep_ms(2500); /* past the deadline, with A down */
    node_start(c, a);
    ring_wait_setoff(c, &r, late.id, "aborted", "rejected", -1, SETTLE_MS);
    doc = setoff_list(c, a);
    assert_string_equal(text_of(setoff_in(doc, late.id), "reason"), "AB05");
    json_decref(doc);

    for (size_t i = 0; i < r.n; i++) {
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    expect_moved(c, &r, &before, 0);
    /* nothing of the aborted ones still reserves room: all of B's 300.00 can be set off */
    propose(c, a, &r, "300", NULL, WAIT_SECS, &p);
    assert_int_equal(p.rc, 0);
    ring_wait_setoff(c, &r, p.id, "committed", "settled", 2, SETTLE_MS);
    expect_moved(c, &r, &before, 30000);
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* B (killed before A proposed) brought back before A, so that B has heard C when A's relay
 * reaches it (the race above). */
static void restart_b_before_a(cluster_t *c, const ring_t *r)
{
    tnode_t *a = r->nodes[0], *b = r->nodes[1], *cc = r->nodes[2];
    assert_int_equal(node_stop(c, a), 0);
    node_start(c, b);
    pair_wait_state(c, b, cc, "up", 15000);
    node_start(c, a);
}

/* 4. B killed (SIGKILL) before the proposal; after its vote with its relay
 * lost; after the commit reached it with its decision to A lost; then the proposer A killed with
 * its relay lost: each set-off commits at every bank once the node is back within the deadline. */
static void test_setoff_member_crash(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    tnode_t *a = r.nodes[0], *b = r.nodes[1];

    node_kill9(b);
    proposed_t p1;
    propose(c, a, &r, "50", "20", NULL, &p1);
    assert_int_equal(p1.rc, 0);
    assert_int_equal(uetr_check(p1.id), VALID_OK);
    assert_string_equal(p1.state, "voting");
    restart_b_before_a(c, &r);
    ring_wait_setoff(c, &r, p1.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p1.id, 5000, 0);

    /* (B killed right after a proposal: see test_setoff_restart_race) */
    pair_wait_state(c, a, b, "up", 15000);

    /* B voted and recorded its legs, its relay to C lost (dropped by the link), then killed */
    assert_int_equal(node_stop(c, b), 0);
    node_start_faults(c, b, "drop=1,drop_type=SetoffRelay");
    pair_wait_state(c, a, b, "up", 15000);
    pair_wait_state(c, b, r.nodes[2], "up", 15000);
    proposed_t p3;
    propose(c, a, &r, "50", "20", NULL, &p3);
    assert_int_equal(p3.rc, 0);
    wait_one(c, b, p3.id, "voting", "pending", 2, SETTLE_MS);
    assert_true(node_faults_counter(c, b, "dropped") >= 1);
    node_kill9(b);
    json_t *doc = setoff_list(c, r.nodes[2]);
    assert_null(setoff_in(doc, p3.id)); /* C never heard of it */
    json_decref(doc);
    /* B back while A is down (the race above): B's relay goes out again and waits at C for A;
     * A, started after, meets B before its decision can come back round to B */
    assert_int_equal(node_stop(c, a), 0);
    node_start(c, b);
    pair_wait_state(c, b, r.nodes[2], "up", 15000);
    wait_one(c, r.nodes[2], p3.id, "voting", "pending", 2, SETTLE_MS); /* C voted too */
    node_start(c, a);
    ring_wait_setoff(c, &r, p3.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p3.id, 5000, 0);

    /* B got A's commit and closed its legs, its decision to C lost, then killed: A has decided
     * and closed its leg with B by its own message; its leg with C waits for the decision to
     * come round (A is owed less only then: meanwhile it owes B less, never the other way) */
    assert_int_equal(node_stop(c, b), 0);
    node_start_faults(c, b, "drop=1,drop_type=SetoffDecision");
    pair_wait_state(c, a, b, "up", 15000);
    pair_wait_state(c, b, r.nodes[2], "up", 15000);
    proposed_t p4;
    propose(c, a, &r, "50", "20", NULL, &p4);
    assert_int_equal(p4.rc, 0);
    wait_one(c, b, p4.id, "committed", "settled", 2, SETTLE_MS);
    doc = setoff_list(c, a);
    json_t *e = setoff_in(doc, p4.id);
    assert_non_null(e);
    assert_string_equal(text_of(e, "state"), "committed");
    assert_string_equal(text_of(leg_with(e, NAME_B), "status"), "settled");
    assert_string_equal(text_of(leg_with(e, NAME_C), "status"), "pending");
    json_decref(doc);
    assert_true(node_faults_counter(c, b, "dropped") >= 1);
    node_kill9(b);
    node_start(c, b); /* its decision goes out again, on to C and round to A */
    ring_wait_setoff(c, &r, p4.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p4.id, 5000, 0);

    /* the proposer killed after proposing, its relay lost: back within the deadline, it commits */
    assert_int_equal(node_stop(c, a), 0);
    node_start_faults(c, a, "drop=1,drop_type=SetoffRelay");
    pair_wait_state(c, a, b, "up", 15000);
    pair_wait_state(c, r.nodes[2], a, "up", 15000);
    proposed_t p5;
    propose(c, a, &r, "50", "20", NULL, &p5);
    assert_int_equal(p5.rc, 0);
    wait_one(c, a, p5.id, "voting", "pending", 1, SETTLE_MS);
    assert_true(node_faults_counter(c, a, "dropped") >= 1);
    node_kill9(a);
    node_start(c, a); /* the proposer forwards nothing: no race */
    ring_wait_setoff(c, &r, p5.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p5.id, 5000, 0);

    for (size_t i = 0; i < r.n; i++) {
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    expect_moved(c, &r, &before, 20000);
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* 3b/4b: the plain restarts, the restarted member back while both neighbours run. Round 1: C
 * stopped, A proposes with a 2 s deadline (AB05), C started again; every bank ends aborted with
 * every leg rejected. Round 2: B killed right after A proposes, started again at once; every
 * bank ends committed. (Under the first design, with the decision going backward, a restarted
 * member dropped messages for a neighbour not heard since its start and could then abort on an
 * assertion at every start: found by this test.) */
static void test_setoff_restart_race(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    tnode_t *a = r.nodes[0], *b = r.nodes[1], *cc = r.nodes[2];
    for (int round = 0; round < 3; round++) {
        assert_int_equal(node_stop(c, cc), 0);
        proposed_t p;
        propose(c, a, &r, "10", "2", WAIT_SECS, &p);
        assert_int_equal(p.rc, 1);
        assert_string_equal(p.reason, "AB05");
        node_start(c, cc);
        ring_wait_setoff(c, &r, p.id, "aborted", "rejected", -1, SETTLE_MS);
        pair_wait_state(c, b, cc, "up", 15000);
        pair_wait_state(c, cc, a, "up", 15000);
    }
    for (int round = 0; round < 3; round++) {
        proposed_t p;
        propose(c, a, &r, "10", "20", NULL, &p);
        node_kill9(b);
        assert_int_equal(p.rc, 0);
        node_start(c, b);
        ring_wait_setoff(c, &r, p.id, "committed", "settled", 2, SETTLE_MS);
        pair_wait_state(c, a, b, "up", 15000);
        pair_wait_state(c, b, cc, "up", 15000);
    }
    for (size_t i = 0; i < r.n; i++) {
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    expect_moved(c, &r, &before, 3000);
    c->passed = true;
}

/* 3c: a member restarted before it has heard its successor still passes the relay on (what the
 * successor offered is kept in the books): B and C stopped, A proposes (20 s), B started alone
 * takes A's relay and sends it on for C; C started; every bank ends committed. */
static void test_setoff_restart_forwards_before_hello(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    tnode_t *b = r.nodes[1], *cc = r.nodes[2];
    assert_int_equal(node_stop(c, b), 0);
    assert_int_equal(node_stop(c, cc), 0);
    proposed_t p;
    propose(c, r.nodes[0], &r, "100", "20", NULL, &p);
    assert_int_equal(p.rc, 0);
    node_start(c, b);
    wait_one(c, b, p.id, "voting", "pending", 2, SETTLE_MS);
    assert_false(node_log_contains(b, "cannot go on"));
    node_start(c, cc);
    ring_wait_setoff(c, &r, p.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p.id, 10000, 0);
    for (size_t i = 0; i < r.n; i++) {
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    expect_moved(c, &r, &before, 10000);
    c->passed = true;
}

/* 5. Four banks: 100.00 commits; then an asking round commits the smallest debt left. */
static void test_setoff_ring_of_four_and_asking(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 4, &r);
    static const char *const debts4[4] = {"500.00", "300.00", "400.00", "250.00"};
    ring_debts(c, &r, debts4);
    positions_t before;
    positions(c, &r, &before);

    proposed_t p;
    propose(c, r.nodes[0], &r, "100", NULL, WAIT_SECS, &p);
    printf("# timing: a 4-node `setoff propose --wait` took %lld ms (wall, not asserted)\n",
           (long long)p.elapsed_ms);
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.state, "committed");
    ring_wait_setoff(c, &r, p.id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, p.id, 10000, 0);
    expect_moved(c, &r, &before, 10000);

    /* left: 400, 200, 300, 150: the asking round finds 150.00 */
    proposed_t ask;
    propose(c, r.nodes[0], &r, NULL, NULL, WAIT_SECS, &ask);
    assert_int_equal(ask.rc, 0);
    assert_int_equal(uetr_check(ask.id), VALID_OK);
    json_t *doc = setoff_list(c, r.nodes[0]);
    json_t *asking = setoff_in(doc, ask.id);
    assert_non_null(asking);
    assert_string_equal(text_of(asking, "state"), "asked");
    assert_int_equal(json_integer_value(json_object_get(asking, "amount_minor")), 0);
    json_t *item, *followed = NULL;
    size_t i;
    json_array_foreach(json_object_get(doc, "setoffs"), i, item)
    {
        if (strcmp(text_of(item, "asked_by"), ask.id) == 0) {
            assert_null(followed);
            followed = item;
        }
    }
    if (followed == NULL) {
        fail_msg("no set-off at A names the asking round %s in asked_by", ask.id);
    }
    char id[CORRIDOR_UETR_LEN + 1];
    snprintf(id, sizeof id, "%s", text_of(followed, "id"));
    assert_string_not_equal(id, ask.id);
    assert_string_equal(text_of(followed, "state"), "committed");
    assert_int_equal(json_integer_value(json_object_get(followed, "amount_minor")), 15000);
    json_decref(doc);
    ring_wait_setoff(c, &r, id, "committed", "settled", 2, SETTLE_MS);
    expect_committed(c, &r, id, 15000, 0);
    expect_moved(c, &r, &before, 25000);
    /* D owes A nothing more: another asking round finds nothing to set off */
    propose(c, r.nodes[0], &r, NULL, NULL, WAIT_SECS, &ask);
    assert_int_equal(ask.rc, 1);
    expect_moved(c, &r, &before, 25000);
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* 6. A and C propose 200.00 at once over the same ring; B owes C only 300.00, so at most one
 * of them can commit. */
static void test_setoff_overlapping(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);

    const char *args_a[20], *args_c[20];
    propose_args(args_a, r.nodes[0], &r, "200", NULL, WAIT_SECS);
    propose_args(args_c, r.nodes[2], &r, "200", NULL, WAIT_SECS);
    /* cluster_spawn takes varargs: spell both out */
    pid_t pa = cluster_spawn(c, args_a[0], args_a[1], args_a[2], args_a[3], args_a[4], args_a[5],
                             args_a[6], args_a[7], args_a[8], args_a[9], args_a[10], args_a[11],
                             args_a[12], NULL);
    pid_t pc = cluster_spawn(c, args_c[0], args_c[1], args_c[2], args_c[3], args_c[4], args_c[5],
                             args_c[6], args_c[7], args_c[8], args_c[9], args_c[10], args_c[11],
                             args_c[12], NULL);
    cmd_result_t ra, rc_;
    cluster_wait_spawned(c, pa, NODE_CMD_TIMEOUT_MS, &ra);
    cluster_wait_spawned(c, pc, NODE_CMD_TIMEOUT_MS, &rc_);
    proposed_t p[2];
    parse_proposed(&ra, &p[0]);
    parse_proposed(&rc_, &p[1]);
    cmd_result_free(&ra);
    cmd_result_free(&rc_);

    int committed = 0;
    for (int k = 0; k < 2; k++) {
        assert_true(p[k].rc == 0 || p[k].rc == 1);
        if (p[k].rc == 0) {
            committed++;
            assert_string_equal(p[k].state, "committed");
        } else {
            /* aborted, or refused at once by the proposer's own books (no id, nothing recorded) */
            assert_string_equal(p[k].reason, "AM04");
            if (p[k].id[0] != '\0') {
                assert_string_equal(p[k].state, "aborted");
            }
        }
    }
    assert_true(committed <= 1);
    printf("# overlapping: %d committed\n", committed);
    for (int k = 0; k < 2; k++) {
        if (p[k].id[0] == '\0') {
            continue;
        }
        size_t proposer = k == 0 ? 0 : 2;
        if (p[k].rc == 0) {
            ring_wait_setoff(c, &r, p[k].id, "committed", "settled", 2, SETTLE_MS);
            expect_committed(c, &r, p[k].id, 20000, proposer);
        } else {
            ring_wait_setoff(c, &r, p[k].id, "aborted", "rejected", -1, SETTLE_MS);
        }
    }
    for (size_t i = 0; i < r.n; i++) {
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    expect_moved(c, &r, &before, 20000 * committed);
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* Starts `setoff propose --json --wait` at `from` in the background (propose_args' argv). */
static pid_t spawn_propose(cluster_t *c, tnode_t *from, const ring_t *r, const char *amount)
{
    const char *args[20];
    propose_args(args, from, r, amount, NULL, WAIT_SECS);
    /* amount and wait given: 13 arguments */
    assert_non_null(args[12]);
    assert_null(args[13]);
    return cluster_spawn(c, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7],
                         args[8], args[9], args[10], args[11], args[12], NULL);
}

/* 7. A burst: A, B and C each propose 100.00 twice at once over the one ring. B owes C 300.00,
 * so at most three commit; every bank agrees on each outcome, and the debts shrank by 100.00
 * per commit. */
static void test_setoff_burst(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up(c, 3, &r);
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    enum { BURST = 6 };
    pid_t pids[BURST];
    for (size_t k = 0; k < BURST; k++) {
        pids[k] = spawn_propose(c, r.nodes[k % 3], &r, "100");
    }
    proposed_t p[BURST];
    int committed = 0;
    for (size_t k = 0; k < BURST; k++) {
        cmd_result_t res;
        cluster_wait_spawned(c, pids[k], NODE_CMD_TIMEOUT_MS, &res);
        parse_proposed(&res, &p[k]);
        cmd_result_free(&res);
        assert_true(p[k].rc == 0 || p[k].rc == 1);
        if (p[k].rc == 0) {
            committed++;
            assert_string_equal(p[k].state, "committed");
        } else {
            assert_string_equal(p[k].reason, "AM04");
        }
    }
    printf("# burst: %d of %d committed\n", committed, BURST);
    assert_true(committed <= 3); /* none is possible too: reservations crossing */
    for (size_t k = 0; k < BURST; k++) {
        if (p[k].id[0] == '\0') {
            continue;
        }
        if (p[k].rc == 0) {
            ring_wait_setoff(c, &r, p[k].id, "committed", "settled", 2, SETTLE_MS);
            expect_committed(c, &r, p[k].id, 10000, k % 3);
        } else {
            ring_wait_setoff(c, &r, p[k].id, "aborted", "rejected", -1, SETTLE_MS);
        }
    }
    for (size_t i = 0; i < r.n; i++) {
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    expect_moved(c, &r, &before, 10000 * committed);
    /* nothing left voting anywhere */
    for (size_t i = 0; i < r.n; i++) {
        json_t *doc = setoff_list(c, r.nodes[i]), *item;
        size_t j;
        json_array_foreach(json_object_get(doc, "setoffs"), j, item)
        {
            assert_string_not_equal(text_of(item, "state"), "voting");
        }
        json_decref(doc);
    }
    cluster_audit_clean(c, r.nodes, r.n, 3);
    c->passed = true;
}

/* 8. The same burst with every node's set-off messages and acknowledgements duplicated,
 * reordered and delayed by its link (CORRIDOR_FAULTS): the same outcome, each leg once. */
static void test_setoff_burst_duplicated_reordered(void **state)
{
    cluster_t *c = *state;
    ring_t r;
    ring_up_faults(
        c, 3, &r,
        "dup=0.5,reorder=0.5,delay_ms=200,seed=7,drop_type=SetoffRelay+SetoffDecision+Ack");
    ring_debts(c, &r, debts3);
    positions_t before;
    positions(c, &r, &before);
    enum { BURST = 6 };
    pid_t pids[BURST];
    for (size_t k = 0; k < BURST; k++) {
        pids[k] = spawn_propose(c, r.nodes[k % 3], &r, "100");
    }
    proposed_t p[BURST];
    int committed = 0;
    for (size_t k = 0; k < BURST; k++) {
        cmd_result_t res;
        cluster_wait_spawned(c, pids[k], NODE_CMD_TIMEOUT_MS, &res);
        parse_proposed(&res, &p[k]);
        cmd_result_free(&res);
        assert_true(p[k].rc == 0 || p[k].rc == 1);
        committed += p[k].rc == 0;
        assert_true(p[k].rc == 0 || strcmp(p[k].reason, "AM04") == 0);
    }
    printf("# burst with faults: %d of %d committed\n", committed, BURST);
    assert_true(committed <= 3);
    for (size_t k = 0; k < BURST; k++) {
        if (p[k].id[0] == '\0') {
            continue;
        }
        if (p[k].rc == 0) {
            ring_wait_setoff(c, &r, p[k].id, "committed", "settled", 2, SETTLE_MS);
            expect_committed(c, &r, p[k].id, 10000, k % 3);
        } else {
            ring_wait_setoff(c, &r, p[k].id, "aborted", "rejected", -1, SETTLE_MS);
        }
    }
    int64_t dups = 0;
    for (size_t i = 0; i < r.n; i++) {
        dups += node_faults_counter(c, r.nodes[i], "duplicated");
        pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
    }
    printf("# %lld messages duplicated\n", (long long)dups);
    assert_true(dups > 0);
    expect_moved(c, &r, &before, 10000 * committed);
    /* what is left still commits, all of it */
    int64_t left = 30000 - 10000 * committed;
    if (left > 0) {
        char amount[32];
        format_amount(left, amount);
        proposed_t q;
        propose(c, r.nodes[1], &r, amount, NULL, WAIT_SECS, &q);
        assert_int_equal(q.rc, 0);
        ring_wait_setoff(c, &r, q.id, "committed", "settled", 2, SETTLE_MS);
        expect_committed(c, &r, q.id, left, 1);
        for (size_t i = 0; i < r.n; i++) {
            pair_wait_idle(c, r.nodes[i], next_of(&r, i), 30000);
        }
        expect_moved(c, &r, &before, 30000);
    }
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_setoff_bad_input, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_three_commit, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_refused_am04, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_deadline_member_down, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_member_crash, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_restart_race, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_restart_forwards_before_hello, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_ring_of_four_and_asking, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_overlapping, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_burst, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_setoff_burst_duplicated_reordered, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("setoff_cli", tests, NULL, NULL);
}
