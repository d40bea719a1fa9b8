/*
 * Holds and expiry with real nodes (PROTOCOL.md 3.8): B screens A's payments with a list and a
 * program of its home; each verdict (accept, reject, hold, a hang, garbage) reaches A as the
 * payment's answer, a person decides what is held for review, a payment waiting for the
 * program when B stops is screened again at its start, and an expiry declines what is still
 * held. Both homes audit clean at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "nodes.h"
#include "support.h"
#include "validate.h"

/* The screening program: its verdict by the payment's amount in minor units. */
static const char screen_script[] =
    "#!/bin/sh\n"
    "input=$(cat)\n"
    "amount=$(printf '%s' \"$input\" | sed -n 's/.*\"amount_minor\":\\([0-9]*\\).*/\\1/p')\n"
    "case \"$amount\" in\n"
    "101) echo accept ;;\n"
    "202) echo reject AC04 ;;\n"
    "404) sleep 100 ;;\n"
    "505) echo maybe ;;\n"
    "606) sleep \"$(cat slow 2>/dev/null || echo 0)\"; echo accept ;;\n"
    "*) echo hold ;;\n"
    "esac\n";

static void write_home_file(const tnode_t *n, const char *name, const char *text, mode_t mode)
{
    char *path = test_path(n->home, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    free(path);
}

/* Puts `lines` right after the [node] header of the home's corridor.conf. */
static void configure_node(const tnode_t *n, const char *lines)
{
    char *path = test_path(n->home, "corridor.conf");
    size_t len = 0;
    char *conf = nodes_read_file(path, &len);
    assert_non_null(conf);
    char *at = strstr(conf, "[node]\n");
    assert_non_null(at);
    at += strlen("[node]\n");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(conf, 1, (size_t)(at - conf), f);
    fputs(lines, f);
    fputs(at, f);
    assert_int_equal(fclose(f), 0);
    free(conf);
    free(path);
}

/* Sends from A to B; returns the exit status and the UETR printed (in uetr). */
static int send_payment(cluster_t *c, tnode_t *a, tnode_t *b, const char *amount,
                        const char *extra_name, const char *extra_value, const char *wait,
                        char uetr[static CORRIDOR_UETR_LEN + 1])
{
    const char *args[16] = {"send",     "--home", a->home,      "--to", b->name,
                            "--amount", amount,   "--currency", "RUB"};
    size_t n = 9;
    if (extra_name != NULL) {
        args[n++] = extra_name;
        args[n++] = extra_value;
    }
    if (wait != NULL) {
        args[n++] = "--wait";
        args[n++] = wait;
    }
    args[n] = NULL;
    cmd_result_t r;
    int rc = cluster_cmdv(c, NODE_SEND_MS, &r, args);
    snprintf(uetr, CORRIDOR_UETR_LEN + 1, "%.36s", r.out);
    cmd_result_free(&r);
    return rc;
}

/* Waits until B lists the payment as held for review. */
static void wait_for_review(cluster_t *c, tnode_t *b, const char *uetr)
{
    for (int i = 0; i < 300; i++) {
        cmd_result_t r;
        assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "list", "--home",
                                     b->home, "--json", NULL),
                         0);
        json_t *doc = json_loads(r.out, 0, NULL);
        cmd_result_free(&r);
        assert_non_null(doc);
        size_t k;
        json_t *h;
        bool found = false;
        json_array_foreach(json_object_get(doc, "held"), k, h)
        {
            found |= strcmp(json_string_value(json_object_get(h, "id")), uetr) == 0 &&
                     strcmp(json_string_value(json_object_get(h, "hold")), "review") == 0 &&
                     strcmp(json_string_value(json_object_get(h, "kind")), "payment") == 0;
        }
        json_decref(doc);
        if (found) {
            return;
        }
        sleep_ms(100);
    }
    fail_msg("%s never held for review at B", uetr);
}

static const char *status_at(cluster_t *c, tnode_t *n, const char *peer, const char *uetr,
                             json_t **ledger_out)
{
    json_t *ledger = node_ledger(c, n);
    json_t *e = ledger_json_find(ledger, peer, uetr, NULL);
    assert_non_null(e);
    *ledger_out = ledger;
    return json_string_value(json_object_get(e, "status"));
}

static void test_screening_and_review(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    write_home_file(b, "screen.sh", screen_script, 0700);
    write_home_file(b, "sanctions.txt", "# test list\nBlocked Trading LLC\n", 0600);
    configure_node(b, "screen_list = sanctions.txt\nscreen_program = screen.sh\n"
                      "screen_timeout_ms = 1500\n");
    node_start(c, a);
    node_start(c, b);
    char ok[40], refused[40], held[40], hung[40], garbage[40], listed[40];
    assert_int_equal(send_payment(c, a, b, "1.01", NULL, NULL, "30", ok), 0);
    assert_int_equal(send_payment(c, a, b, "2.02", NULL, NULL, "30", refused), 1);
    assert_int_equal(send_payment(c, a, b, "3.03", NULL, NULL, NULL, held), 0);
    assert_int_equal(send_payment(c, a, b, "4.04", NULL, NULL, NULL, hung), 0);
    assert_int_equal(send_payment(c, a, b, "5.05", NULL, NULL, NULL, garbage), 0);
    assert_int_equal(
        send_payment(c, a, b, "7.07", "--creditor", "BLOCKED trading llc", "30", listed), 1);
    wait_for_review(c, b, held);
    wait_for_review(c, b, hung);    /* timed out: held for a person */
    wait_for_review(c, b, garbage); /* no verdict: held for a person */

    json_t *ledger = NULL;
    assert_string_equal(status_at(c, a, NAME_B, held, &ledger), "pending");
    json_t *e = ledger_json_find(ledger, NAME_B, held, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "at_peer")), "held");
    json_decref(ledger);
    assert_string_equal(status_at(c, b, NAME_A, held, &ledger), "held");
    json_decref(ledger);
    assert_string_equal(status_at(c, a, NAME_B, refused, &ledger), "rejected");
    e = ledger_json_find(ledger, NAME_B, refused, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "AC04");
    e = ledger_json_find(ledger, NAME_B, listed, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "RR04");
    json_decref(ledger);

    cmd_result_t r;
    pair_wait_idle(c, a, b, 30000); /* held at B, pending at A: the books agree */
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "reconcile", "--home", a->home,
                                 "--peer", NAME_B, NULL),
                     0);
    cmd_result_free(&r);
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "accept", "--home", b->home,
                                 "--id", held, NULL),
                     0);
    cmd_result_free(&r);
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "reject", "--home", b->home,
                                 "--id", hung, "--reason", "FF01", NULL),
                     0);
    cmd_result_free(&r);
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "reject", "--home", b->home,
                                 "--id", garbage, NULL),
                     0);
    cmd_result_free(&r);
    /* decided already: refused, nothing changes */
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "accept", "--home", b->home,
                                 "--id", held, NULL),
                     2);
    cmd_result_free(&r);
    pair_wait_idle(c, a, b, 30000);
    assert_string_equal(status_at(c, a, NAME_B, held, &ledger), "settled");
    json_decref(ledger);
    assert_string_equal(status_at(c, a, NAME_B, hung, &ledger), "rejected");
    e = ledger_json_find(ledger, NAME_B, garbage, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "RR04");
    assert_string_equal(json_string_value(json_object_get(e, "status")), "rejected");
    json_decref(ledger);
    assert_true(node_log_contains(b, "operator review"));

    /* B stops while the program has not answered: screened again at its start */
    write_home_file(b, "slow", "100\n", 0600);
    char restarted[40];
    assert_int_equal(send_payment(c, a, b, "6.06", NULL, NULL, NULL, restarted), 0);
    node_wait_log(b, "incoming 606 RUB held", 1, 30000);
    assert_int_equal(node_stop(c, b), 0);
    write_home_file(b, "slow", "0\n", 0600);
    node_start(c, b);
    pair_wait_idle(c, a, b, 30000);
    for (int i = 0; i < 300 && strcmp(status_at(c, a, NAME_B, restarted, &ledger), "settled");
         i++) {
        json_decref(ledger);
        sleep_ms(100);
    }
    json_decref(ledger);
    assert_string_equal(status_at(c, a, NAME_B, restarted, &ledger), "settled");
    json_decref(ledger);
    assert_true(node_log_contains(b, "screening again 1 payments held"));

    /* expiry: held for review, then declined AB05 once its time passed */
    char expiring[40];
    assert_int_equal(send_payment(c, a, b, "8.08", "--expires-in", "2", "30", expiring), 1);
    assert_string_equal(status_at(c, a, NAME_B, expiring, &ledger), "rejected");
    e = ledger_json_find(ledger, NAME_B, expiring, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "AB05");
    json_decref(ledger);

    pair_wait_idle(c, a, b, 30000);
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "reconcile", "--home", a->home,
                                 "--peer", NAME_B, NULL),
                     0); /* both books agree, digests included */
    cmd_result_free(&r);
    tnode_t *nodes[] = {a, b};
    cluster_audit_clean(c, nodes, 2, 10);
    c->passed = true;
}

static int cancel(cluster_t *c, tnode_t *n, const char *uetr, const char *reason, const char *wait)
{
    cmd_result_t r;
    const char *args[] = {"cancel", "--home",   n->home, "--uetr",
                          uetr,     "--reason", reason,  wait != NULL ? "--wait" : NULL,
                          wait,     NULL};
    int rc = cluster_cmdv(c, NODE_CMD_TIMEOUT_MS, &r, args);
    cmd_result_free(&r);
    return rc;
}

/* A asks back a payment B holds for review (cancelled), one B decided (refused locally: final),
 * and races a cancellation against B's review decision: whichever B applies first wins, and
 * both books say the same. Bad requests are refused with exit 2 and change nothing. */
static void test_cancel_and_race(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    write_home_file(b, "screen.sh", screen_script, 0700);
    configure_node(b, "screen_program = screen.sh\n");
    node_start(c, a);
    node_start(c, b);
    char held[40], settled[40], raced[40];
    assert_int_equal(send_payment(c, a, b, "3.03", NULL, NULL, NULL, held), 0);
    assert_int_equal(send_payment(c, a, b, "1.01", NULL, NULL, "30", settled), 0);
    wait_for_review(c, b, held);
    assert_int_equal(cancel(c, a, held, "DUPL", "30"), 0);
    assert_int_equal(cancel(c, a, held, "DUPL", "30"), 0); /* asked again: as it stands */
    assert_int_equal(cancel(c, a, settled, "CUST", "30"), 1);
    json_t *ledger = NULL;
    assert_string_equal(status_at(c, b, NAME_A, held, &ledger), "rejected");
    json_decref(ledger);
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "accept", "--home", b->home,
                                 "--id", held, NULL),
                     2); /* cancelled: nothing to decide */
    cmd_result_free(&r);

    /* bad input: exit 2, nothing written */
    char *head = node_ledger_head(c, a);
    char unknown[40];
    uetr_generate(unknown);
    assert_int_equal(cancel(c, a, unknown, "DUPL", NULL), 2);
    assert_int_equal(cancel(c, a, held, "AC04", NULL), 2);
    char incoming[40];
    assert_int_equal(send_payment(c, b, a, "9.09", NULL, NULL, "30", incoming), 0);
    char *head_before = node_ledger_head(c, a);
    assert_int_equal(cancel(c, a, incoming, "DUPL", NULL), 2);
    char *head_after = node_ledger_head(c, a);
    assert_string_equal(head_before, head_after);
    free(head);
    free(head_before);
    free(head_after);

    /* the race: a cancellation and a review decision at once */
    assert_int_equal(send_payment(c, a, b, "3.13", NULL, NULL, NULL, raced), 0);
    wait_for_review(c, b, raced);
    pid_t review = cluster_spawn(c, "review", "accept", "--home", b->home, "--id", raced, NULL);
    int cancel_rc = cancel(c, a, raced, "TECH", "30");
    cmd_result_t rr;
    int review_rc = cluster_wait_spawned(c, review, NODE_CMD_TIMEOUT_MS, &rr);
    cmd_result_free(&rr);
    pair_wait_idle(c, a, b, 30000);
    const char *at_a = status_at(c, a, NAME_B, raced, &ledger);
    json_t *ledger_b = NULL;
    const char *at_b = status_at(c, b, NAME_A, raced, &ledger_b);
    assert_string_equal(at_a, at_b);
    if (strcmp(at_a, "settled") == 0) { /* the review came first */
        assert_int_equal(review_rc, 0);
        assert_int_equal(cancel_rc, 1);
    } else { /* the cancellation came first */
        assert_string_equal(at_a, "rejected");
        assert_int_equal(cancel_rc, 0);
        assert_int_equal(review_rc, 2);
    }
    printf("# race: %s (review exit %d, cancel exit %d)\n", at_a, review_rc, cancel_rc);
    json_decref(ledger);
    json_decref(ledger_b);
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "reconcile", "--home", a->home,
                                 "--peer", NAME_B, NULL),
                     0);
    cmd_result_free(&r);
    tnode_t *nodes[] = {a, b};
    cluster_audit_clean(c, nodes, 2, 5);
    c->passed = true;
}

/* Expiry is "no earlier than": a payment to a payee that is down stays pending at the payer,
 * shown expired once its time passed, until the payee's signed answer (AB05 on arrival). */
static void test_expiry_waits_for_the_payee(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    node_start(c, a);
    char late[40];
    assert_int_equal(send_payment(c, a, b, "1.50", "--expires-in", "1", NULL, late), 0);
    json_t *ledger = NULL;
    json_t *e = NULL;
    for (int i = 0; i < 100; i++) {
        ledger = node_ledger(c, a);
        e = ledger_json_find(ledger, NAME_B, late, NULL);
        assert_non_null(e);
        if (json_is_true(json_object_get(e, "expired"))) {
            break;
        }
        json_decref(ledger);
        ledger = NULL;
        sleep_ms(100);
    }
    assert_non_null(ledger);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "pending");
    json_decref(ledger);
    node_start(c, b);
    pair_wait_idle(c, a, b, 30000);
    for (int i = 0; i < 300 && strcmp(status_at(c, a, NAME_B, late, &ledger), "rejected"); i++) {
        json_decref(ledger);
        sleep_ms(100);
    }
    e = ledger_json_find(ledger, NAME_B, late, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "rejected");
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "AB05");
    assert_null(json_object_get(e, "expired")); /* decided: no longer said */
    json_decref(ledger);
    c->passed = true;
}

/* B decided a payment it held, then was put back from a copy taken while it still held it: the
 * channel diverges, and the repair books at B its own signed answer that A shows (3.8.3), so
 * the payment is not decided a second time; the books agree and audit clean afterwards. */
static void test_restored_payee_books_its_answer(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    write_home_file(b, "screen.sh", screen_script, 0700);
    configure_node(b, "screen_program = screen.sh\n");
    node_start(c, a);
    node_start(c, b);
    char x[40];
    assert_int_equal(send_payment(c, a, b, "3.03", NULL, NULL, NULL, x), 0);
    wait_for_review(c, b, x);
    pair_wait_idle(c, a, b, 30000);
    assert_int_equal(node_stop(c, b), 0);
    char *backup = test_path(c->dir, "B.old");
    const char *cp[] = {"/bin/cp", "-a", b->home, backup, NULL};
    assert_int_equal(nodes_run_program(cp, 60000), 0);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", 30000); /* decisions wait for it (channel_decide_held) */
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "review", "accept", "--home", b->home,
                                 "--id", x, NULL),
                     0);
    cmd_result_free(&r);
    pair_wait_idle(c, a, b, 30000);
    json_t *ledger = NULL;
    assert_string_equal(status_at(c, a, NAME_B, x, &ledger), "settled");
    json_decref(ledger);

    assert_int_equal(node_stop(c, b), 0); /* put back from the copy: held again there */
    test_rmtree(b->home);
    assert_int_equal(rename(backup, b->home), 0);
    free(backup);
    node_start(c, b);
    pair_wait_state(c, a, b, "diverged", 15000);
    assert_int_equal(cluster_cmd(c, 120000, &r, "reconcile", "--home", a->home, "--peer", NAME_B,
                                 "--repair", NULL),
                     0);
    cmd_result_free(&r);
    pair_wait_state(c, a, b, "up", 30000);
    pair_wait_idle(c, a, b, 30000);
    assert_string_equal(status_at(c, b, NAME_A, x, &ledger), "settled");
    json_decref(ledger);
    assert_int_equal(cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "reconcile", "--home", a->home,
                                 "--peer", NAME_B, NULL),
                     0);
    cmd_result_free(&r);
    tnode_t *nodes[] = {a, b};
    cluster_audit_clean(c, nodes, 2, 2);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_screening_and_review, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_race, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_expiry_waits_for_the_payee, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_restored_payee_books_its_answer, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("holds", tests, NULL, NULL);
}
