/*
 * Two-phase returns with real nodes (pacs.004, PROTOCOL.md 3.9): B, the payee of settled
 * payments, gives all or part of them back with `corridor return`; A, the payer, accepts each
 * within what is left of the payment. `ledger --json` shows the returns as records of their
 * own, the payment's returned_minor and, once wholly returned, status `returned`; a refusal
 * (over the total, a payment that is B's own or unknown) exits 2 and writes nothing; a return
 * made while A is stopped is accepted after A's start, once. Each return is an operator row.
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

/* `corridor send` from -> to of RUB `amount`, waiting; the UETR in uetr. */
static void pay(cluster_t *c, tnode_t *from, tnode_t *to, const char *amount,
                char uetr[static CORRIDOR_UETR_LEN + 1])
{
    cmd_result_t r;
    assert_int_equal(node_send(c, from, to, amount, "RUB", NULL, "30", &r), 0);
    snprintf(uetr, CORRIDOR_UETR_LEN + 1, "%.36s", r.out);
    cmd_result_free(&r);
    assert_int_equal(uetr_check(uetr), VALID_OK);
}

/* `corridor return --json` at n; its exit status, the return's id in id (when given). */
static int give_back(cluster_t *c, tnode_t *n, const char *uetr, const char *amount,
                     const char *reason, const char *wait, char id[static CORRIDOR_UETR_LEN + 1])
{
    const char *args[16] = {"return", "--home",   n->home, "--uetr",
                            uetr,     "--reason", reason,  "--json"};
    size_t k = 8;
    if (amount != NULL) {
        args[k++] = "--amount";
        args[k++] = amount;
    }
    if (wait != NULL) {
        args[k++] = "--wait";
        args[k++] = wait;
    }
    args[k] = NULL;
    cmd_result_t r;
    int rc = cluster_cmdv(c, NODE_CMD_TIMEOUT_MS + 30000, &r, args);
    id[0] = '\0';
    json_t *doc = json_loads(r.out, 0, NULL);
    json_t *first = json_is_array(json_object_get(doc, "results"))
                        ? json_array_get(json_object_get(doc, "results"), 0)
                        : doc;
    const char *got = json_string_value(json_object_get(first, "return_id"));
    if (got != NULL) {
        snprintf(id, CORRIDOR_UETR_LEN + 1, "%s", got);
    }
    if (rc != 0 && rc != 4) {
        printf("# return %s: exit %d: %.300s\n", uetr, rc, r.err);
    }
    json_decref(doc);
    cmd_result_free(&r);
    return rc;
}

/* The element of ledger's `returns` with that id, or NULL; how many there are in *count. */
static json_t *return_entry(json_t *ledger, const char *id, size_t *count)
{
    json_t *found = NULL, *e;
    size_t k;
    *count = 0;
    json_array_foreach(json_object_get(ledger, "returns"), k, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "return_id")), id) == 0) {
            found = e;
            (*count)++;
        }
    }
    return found;
}

static void expect_return(json_t *ledger, const char *id, const char *original, const char *peer,
                          const char *direction, int64_t amount, const char *reason,
                          const char *status)
{
    size_t count = 0;
    json_t *e = return_entry(ledger, id, &count);
    if (e == NULL) {
        fail_msg("return %s not in the ledger", id);
    }
    assert_int_equal(count, 1);
    assert_string_equal(json_string_value(json_object_get(e, "original_uetr")), original);
    assert_string_equal(json_string_value(json_object_get(e, "peer")), peer);
    assert_string_equal(json_string_value(json_object_get(e, "direction")), direction);
    assert_int_equal(json_integer_value(json_object_get(e, "amount_minor")), amount);
    assert_string_equal(json_string_value(json_object_get(e, "currency")), "RUB");
    assert_string_equal(json_string_value(json_object_get(e, "return_reason")), reason);
    assert_string_equal(json_string_value(json_object_get(e, "status")), status);
    assert_true(json_is_null(json_object_get(e, "reason")));
}

static int64_t return_count(json_t *ledger, const char *which)
{
    return json_integer_value(json_object_get(json_object_get(ledger, "return_counts"), which));
}

static void test_returns_full_and_partial(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    char whole[40], part[40], own[40];
    pay(c, a, b, "10.00", whole);
    pay(c, a, b, "20.00", part);
    pay(c, b, a, "5.00", own); /* B's own payment: not B's to return */

    char r1[40], r2[40], r3[40], none[40];
    assert_int_equal(give_back(c, b, whole, NULL, "AC04", "30", r1), 0); /* all of it */
    assert_int_equal(give_back(c, b, part, "5.00", "MD06", "30", r2), 0);
    assert_int_equal(give_back(c, b, part, "7.50", "AC04", "30", r3), 0);
    assert_int_equal(uetr_check(r1), VALID_OK);
    assert_int_equal(uetr_check(r3), VALID_OK);
    assert_string_not_equal(r2, r3);

    /* refused locally: exit 2, nothing written */
    char *head = node_ledger_head(c, b);
    char unknown[40];
    uetr_generate(unknown);
    assert_int_equal(give_back(c, b, part, "7.51", "AC04", NULL, none), 2); /* 7.50 left */
    assert_int_equal(give_back(c, b, whole, "0.01", "AC04", NULL, none), 2);
    assert_int_equal(give_back(c, b, own, NULL, "AC04", NULL, none), 2);
    assert_int_equal(give_back(c, b, unknown, NULL, "AC04", NULL, none), 2);
    assert_int_equal(give_back(c, a, own, "6.00", "AC04", NULL, none), 2); /* over at A */
    char *head_after = node_ledger_head(c, b);
    assert_string_equal(head, head_after);
    free(head);
    free(head_after);
    pair_wait_idle(c, a, b, 30000);

    json_t *la = node_ledger(c, a), *lb = node_ledger(c, b);
    for (int i = 0; i < 2; i++) {
        json_t *l = i == 0 ? la : lb;
        const char *peer = i == 0 ? NAME_B : NAME_A, *dir = i == 0 ? "in" : "out";
        json_t *e = ledger_expect_entry(l, peer, whole, "returned");
        assert_int_equal(json_integer_value(json_object_get(e, "returned_minor")), 1000);
        e = ledger_expect_entry(l, peer, part, "settled");
        assert_int_equal(json_integer_value(json_object_get(e, "returned_minor")), 1250);
        e = ledger_expect_entry(l, peer, own, "settled");
        assert_null(json_object_get(e, "returned_minor"));
        expect_return(l, r1, whole, peer, dir, 1000, "AC04", "settled");
        expect_return(l, r2, part, peer, dir, 500, "MD06", "settled");
        expect_return(l, r3, part, peer, dir, 750, "AC04", "settled");
        assert_int_equal(json_array_size(json_object_get(l, "returns")), 3);
        assert_int_equal(return_count(l, "settled"), 3);
        assert_int_equal(return_count(l, "pending"), 0);
        assert_int_equal(return_count(l, "rejected"), 0);
        assert_int_equal(ledger_count(l, "returned"), 1);
        assert_null(ledger_json_find(l, peer, r1, NULL)); /* not among the payments */
    }
    /* A paid 30.00 and was paid 5.00; 22.50 came back */
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), -3000 + 500 + 2250);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 3000 - 500 - 2250);
    assert_int_equal(ledger_pending(la, NAME_B, "RUB"), 0);
    json_decref(la);
    json_decref(lb);

    /* each return an operator row at B */
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, 15000, &r, "operations", "--home", b->home, "--json", NULL), 0);
    json_t *doc = json_loads(r.out, 0, NULL);
    cmd_result_free(&r);
    assert_non_null(doc);
    size_t k, returns = 0;
    json_t *op;
    json_array_foreach(json_object_get(doc, "operations"), k, op)
    {
        json_t *record = json_object_get(op, "record");
        if (strcmp(json_string_value(json_object_get(record, "action")), "return") != 0) {
            continue;
        }
        returns++;
        json_t *args = json_object_get(record, "args");
        assert_string_equal(json_string_value(json_object_get(op, "peer")), NAME_A);
        if (strcmp(json_string_value(json_object_get(args, "return_id")), r2) == 0) {
            assert_string_equal(json_string_value(json_object_get(args, "uetr")), part);
            assert_string_equal(json_string_value(json_object_get(args, "reason")), "MD06");
            assert_int_equal(json_integer_value(json_object_get(args, "amount_minor")), 500);
        }
    }
    assert_int_equal(returns, 3);
    json_decref(doc);
    assert_int_equal(cluster_cmd(c, 15000, &r, "operations", "--home", b->home, NULL), 0);
    assert_non_null(strstr(r.out, "return"));
    cmd_result_free(&r);

    tnode_t *const nodes[] = {a, b};
    cluster_audit_clean(c, nodes, 2, 8);
    c->passed = true;
}

/* A return B makes while A is stopped waits (--wait times out, exit 4) and is accepted once A
 * is back, exactly once at both ends. */
static void test_return_while_payer_stopped(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    char x[40], id[40];
    pay(c, a, b, "10.00", x);
    pair_wait_idle(c, a, b, 30000);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(give_back(c, b, x, "4.00", "AC04", "1", id), 4);
    assert_int_equal(uetr_check(id), VALID_OK);
    json_t *lb = node_ledger(c, b);
    expect_return(lb, id, x, NAME_A, "out", 400, "AC04", "pending");
    assert_int_equal(return_count(lb, "pending"), 1);
    assert_int_equal(ledger_pending(lb, NAME_A, "RUB"), -400);
    json_decref(lb);

    node_start(c, a);
    pair_wait_idle(c, a, b, 30000);
    node_wait_log(a, "incoming return 400 RUB settled", 1, 30000);
    json_t *la = node_ledger(c, a);
    lb = node_ledger(c, b);
    expect_return(la, id, x, NAME_B, "in", 400, "AC04", "settled");
    expect_return(lb, id, x, NAME_A, "out", 400, "AC04", "settled");
    for (int i = 0; i < 2; i++) {
        json_t *l = i == 0 ? la : lb;
        json_t *e = ledger_expect_entry(l, i == 0 ? NAME_B : NAME_A, x, "settled");
        assert_int_equal(json_integer_value(json_object_get(e, "returned_minor")), 400);
        assert_int_equal(json_array_size(json_object_get(l, "returns")), 1);
        assert_int_equal(return_count(l, "settled"), 1);
    }
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), -600);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), 600);
    json_decref(la);
    json_decref(lb);
    assert_int_equal(node_log_count(a, "incoming return"), 1);
    tnode_t *const nodes[] = {a, b};
    cluster_audit_clean(c, nodes, 2, 4);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_returns_full_and_partial, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_return_while_payer_stopped, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("returns", tests, NULL, NULL);
}
