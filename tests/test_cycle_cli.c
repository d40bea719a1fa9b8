/*
 * `corridor cycle` with real nodes (PROTOCOL.md 3.11, issue 21): A and B pay each other both
 * ways; `cycle close --wait` at A closes cycle 1 and both `cycle list --json` show it closed,
 * the figures mirrored and both signatures verified; an empty cycle 2 closes too (settled
 * at once: it has no net). The net
 * creditor's `cycle settle` exits 2 and sends nothing; the debtor's sends the pacs.009, which
 * B holds (`review list` shows it, kind net_settlement) until `review accept --id`; then the
 * debtor shows the cycle settled, both positions have moved back by the net, and settling the
 * same cycle again exits 2. Every `cycle` subcommand's --help exits 0 with an example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nodes.h"
#include "support.h"
#include "validate.h"

/* `cycle list --json` of n, parsed (asserts exit 0). */
static json_t *cycle_list(cluster_t *c, tnode_t *n)
{
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", "list", "--home", n->home, "--json", NULL),
                     0);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    cmd_result_free(&r);
    return doc;
}

/* Cycle `number` with `peer` in a `cycle list --json` document (asserts it is there once). */
static json_t *cycle_entry(json_t *doc, const char *peer, json_int_t number)
{
    json_t *found = NULL, *item;
    size_t i, times = 0;
    json_array_foreach(json_object_get(doc, "cycles"), i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "peer")), peer) == 0 &&
            json_integer_value(json_object_get(item, "cycle")) == number) {
            found = item;
            times++;
        }
    }
    assert_int_equal(times, 1);
    return found;
}

/* The currency's figures of a cycle entry (asserts they are there). */
static json_t *cycle_currency(json_t *cycle, const char *currency)
{
    json_t *item;
    size_t i;
    json_array_foreach(json_object_get(cycle, "currencies"), i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "currency")), currency) == 0) {
            return item;
        }
    }
    fail_msg("no %s in the cycle", currency);
    return NULL;
}

static json_int_t field(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char *text(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    assert_non_null(v);
    return v;
}

/* Both signatures of the cycle verified true by `cycle list`. */
static void expect_signed(json_t *cycle)
{
    json_t *sig = json_object_get(cycle, "signatures");
    assert_true(json_is_true(json_object_get(sig, "own")));
    assert_true(json_is_true(json_object_get(sig, "peer")));
}

static void test_cycle_help(void **state)
{
    cluster_t *c = *state;
    const char *subs[] = {"close", "settle", "list"};
    for (size_t i = 0; i < 3; i++) {
        cmd_result_t r;
        assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", subs[i], "--help", NULL), 0);
        char example[64];
        snprintf(example, sizeof example, "Example: corridor cycle %s ", subs[i]);
        assert_non_null(strstr(r.out, example));
        cmd_result_free(&r);
    }
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", NULL), 2);
    cmd_result_free(&r);
    c->passed = true;
}

static void test_cycle_close_settle_review(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    cmd_result_t r;
    /* A pays 100.00 + 25.50, B pays 30.00: A owes B 95.50 RUB net (9550 minor) */
    assert_int_equal(node_send(c, a, b, "100.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, a, b, "25.50", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_send(c, b, a, "30.00", "RUB", NULL, "30", &r), 0);
    cmd_result_free(&r);
    json_t *la = node_ledger(c, a), *lb = node_ledger(c, b);
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), -9550);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 9550);
    json_decref(la);
    json_decref(lb);

    /* the creditor has nothing closed to settle yet, the debtor neither */
    assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", "settle", "--home", a->home, "--peer",
                                 NAME_B, "--cycle", "1", "--reference", "EARLY", NULL),
                     2);
    cmd_result_free(&r);

    assert_int_equal(cluster_cmd(c, 60000, &r, "cycle", "close", "--home", a->home, "--peer",
                                 NAME_B, "--wait", "20", "--json", NULL),
                     0);
    json_t *closed = json_loads(r.out, 0, NULL);
    assert_non_null(closed);
    assert_int_equal(field(closed, "cycle"), 1);
    assert_string_equal(text(closed, "state"), "closed");
    json_decref(closed);
    cmd_result_free(&r);

    /* both ends: cycle 1 closed, the same figures seen from each side, both signatures good */
    json_t *ca = cycle_list(c, a), *cb = cycle_list(c, b);
    json_t *a1 = cycle_entry(ca, NAME_B, 1), *b1 = cycle_entry(cb, NAME_A, 1);
    assert_string_equal(text(a1, "state"), "closed");
    assert_string_equal(text(b1, "state"), "closed");
    assert_string_equal(text(a1, "proposed_by"), "us");
    assert_string_equal(text(b1, "proposed_by"), "peer");
    assert_int_equal(field(a1, "own_sent"), field(b1, "peer_sent"));
    assert_int_equal(field(a1, "peer_sent"), field(b1, "own_sent"));
    assert_int_equal(field(a1, "entry_count"), 3);
    assert_int_equal(field(b1, "entry_count"), 3);
    expect_signed(a1);
    expect_signed(b1);
    json_t *ar = cycle_currency(a1, "RUB"), *br = cycle_currency(b1, "RUB");
    assert_int_equal(field(ar, "paid_minor"), 12550);
    assert_int_equal(field(ar, "received_minor"), 3000);
    assert_int_equal(field(ar, "net_minor"), -9550);
    assert_int_equal(field(br, "paid_minor"), field(ar, "received_minor"));
    assert_int_equal(field(br, "received_minor"), field(ar, "paid_minor"));
    assert_int_equal(field(br, "net_minor"), 9550);
    assert_int_equal(field(ar, "count"), 3);
    assert_int_equal(field(br, "count"), 3);
    assert_true(json_is_null(json_object_get(ar, "net_settlement")));
    json_decref(ca);
    json_decref(cb);

    /* ledger --json: the open cycle is 2, and cycle 1 leaves 95.50 owed */
    la = node_ledger(c, a);
    json_t *pa = json_array_get(json_object_get(la, "cycles"), 0);
    assert_string_equal(text(pa, "peer"), NAME_B);
    assert_int_equal(field(pa, "open_cycle"), 2);
    assert_true(json_is_false(json_object_get(pa, "closing")));
    json_t *owed = json_object_get(pa, "owed");
    assert_int_equal(json_array_size(owed), 1);
    assert_int_equal(field(json_array_get(owed, 0), "cycle"), 1);
    assert_int_equal(field(json_array_get(owed, 0), "net_minor"), -9550);
    json_decref(la);

    /* a second close at once: the empty cycle 2, closed as well */
    assert_int_equal(cluster_cmd(c, 60000, &r, "cycle", "close", "--home", b->home, "--peer",
                                 NAME_A, "--wait", "20", NULL),
                     0);
    assert_non_null(strstr(r.out, "cycle 2 with " NAME_A " closed"));
    cmd_result_free(&r);
    ca = cycle_list(c, a);
    json_t *a2 = cycle_entry(ca, NAME_B, 2);
    /* closed with no net to pay: settled at once (PROTOCOL.md 3.11.3) */
    assert_string_equal(text(a2, "state"), "settled");
    assert_int_equal(json_array_size(json_object_get(a2, "currencies")), 0);
    expect_signed(a2);
    json_decref(ca);

    /* the creditor cannot settle: exit 2, nothing sent */
    assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", "settle", "--home", b->home, "--peer",
                                 NAME_A, "--cycle", "1", "--reference", "CBR-0001", NULL),
                     2);
    cmd_result_free(&r);
    assert_int_equal(cluster_cmd(c, 30000, &r, "review", "list", "--home", a->home, "--json", NULL),
                     0);
    json_t *ra = json_loads(r.out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(ra, "held")), 0);
    json_decref(ra);
    cmd_result_free(&r);

    /* the debtor settles: sent, held at B for a person */
    assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", "settle", "--home", a->home, "--peer",
                                 NAME_B, "--cycle", "1", "--reference", "CBR-0001", "--json", NULL),
                     0);
    json_t *sent = json_loads(r.out, 0, NULL);
    assert_non_null(sent);
    json_t *res = json_array_get(json_object_get(sent, "results"), 0);
    assert_non_null(res);
    char id[CORRIDOR_UETR_LEN + 1];
    snprintf(id, sizeof id, "%s", text(res, "settlement_id"));
    assert_int_equal(uetr_check(id), VALID_OK);
    assert_int_equal(field(res, "amount_minor"), 9550);
    assert_string_equal(text(res, "currency"), "RUB");
    json_decref(sent);
    cmd_result_free(&r);

    /* B lists it for review once it has arrived */
    json_t *held = NULL;
    for (int tries = 0; tries < 100 && held == NULL; tries++) {
        assert_int_equal(
            cluster_cmd(c, 30000, &r, "review", "list", "--home", b->home, "--json", NULL), 0);
        json_t *doc = json_loads(r.out, 0, NULL);
        cmd_result_free(&r);
        json_t *item = json_array_get(json_object_get(doc, "held"), 0);
        if (item != NULL) {
            held = json_incref(item);
            assert_int_equal(json_array_size(json_object_get(doc, "held")), 1);
        }
        json_decref(doc);
        if (held == NULL) {
            usleep(100000);
        }
    }
    assert_non_null(held);
    assert_string_equal(text(held, "id"), id);
    assert_string_equal(text(held, "kind"), "net_settlement");
    assert_string_equal(text(held, "peer"), NAME_A);
    assert_int_equal(field(held, "cycle"), 1);
    assert_string_equal(text(held, "currency"), "RUB");
    assert_int_equal(field(held, "amount_minor"), 9550);
    json_decref(held);
    assert_int_equal(cluster_cmd(c, 30000, &r, "review", "list", "--home", b->home, NULL), 0);
    assert_non_null(strstr(r.out, "net settlement of cycle 1"));
    cmd_result_free(&r);
    /* nothing moved on the debtor's word alone */
    lb = node_ledger(c, b);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 9550);
    json_decref(lb);

    assert_int_equal(cluster_cmd(c, 30000, &r, "review", "accept", "--home", b->home, "--id", id,
                                 "--json", NULL),
                     0);
    json_t *decided = json_loads(r.out, 0, NULL);
    assert_string_equal(text(decided, "status"), "settled");
    json_decref(decided);
    cmd_result_free(&r);

    /* the debtor books it on B's ACSC: the cycle is settled at both ends */
    json_t *a1s = NULL;
    for (int tries = 0; tries < 100; tries++) {
        ca = cycle_list(c, a);
        if (strcmp(text(cycle_entry(ca, NAME_B, 1), "state"), "settled") == 0) {
            break;
        }
        json_decref(ca);
        ca = NULL;
        usleep(100000);
    }
    assert_non_null(ca);
    a1s = cycle_entry(ca, NAME_B, 1);
    json_t *ns = json_object_get(cycle_currency(a1s, "RUB"), "net_settlement");
    assert_string_equal(text(ns, "id"), id);
    assert_string_equal(text(ns, "status"), "settled");
    assert_string_equal(text(ns, "direction"), "out");
    assert_int_equal(field(ns, "amount_minor"), 9550);
    assert_string_equal(text(ns, "reference"), "CBR-0001");
    json_decref(ca);
    cb = cycle_list(c, b);
    b1 = cycle_entry(cb, NAME_A, 1);
    assert_string_equal(text(b1, "state"), "settled");
    assert_string_equal(
        text(json_object_get(cycle_currency(b1, "RUB"), "net_settlement"), "direction"), "in");
    json_decref(cb);

    /* positions moved back by the net, and nothing is owed any more */
    la = node_ledger(c, a);
    lb = node_ledger(c, b);
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), 0);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 0);
    assert_int_equal(
        json_array_size(json_object_get(json_array_get(json_object_get(la, "cycles"), 0), "owed")),
        0);
    json_decref(la);
    json_decref(lb);

    /* settled already: exit 2, nothing sent; and B holds nothing more */
    assert_int_equal(cluster_cmd(c, 30000, &r, "cycle", "settle", "--home", a->home, "--peer",
                                 NAME_B, "--cycle", "1", "--reference", "CBR-0002", NULL),
                     2);
    cmd_result_free(&r);
    assert_int_equal(cluster_cmd(c, 30000, &r, "review", "list", "--home", b->home, NULL), 0);
    assert_null(strstr(r.out, id));
    cmd_result_free(&r);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cycle_help, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_cycle_close_settle_review, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("cycle_cli", tests, NULL, NULL);
}
