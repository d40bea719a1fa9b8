/*
 * FX trades with real nodes (PROTOCOL.md 3.10, issue 20): A proposes with `corridor fx`, B
 * decides both legs at once by the band its config sets for A (`fx_band.RUB_IRR = 440..460`):
 * accepted inside (exit 0 with --wait), refused AG01 outside (exit 1); with no band for the pair
 * the trade is held for review (--wait times out, exit 4) until `corridor review accept --id
 * FX_ID` settles both legs. Bad input exits 2 and writes nothing (so does a trade with a peer not
 * yet known to offer FX). The proposer keeps an expired trade pending and reserved until the
 * acceptor's AB05; a trade over the cap the proposer grants exits 1. A crash (SIGKILL) of the
 * proposer before its proposal left, or of the acceptor after it booked the trade but before its
 * answer arrived, ends with the trade settled on both sides exactly once. Each side's `ledger
 * --json` lists the trade once with both legs, and the positions mirror in both currencies.
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

#define FX_CURRENCIES "RUB,IRR,USD"
#define FX_CAPS       "RUB=100000000,IRR=100000000000" /* in major units */

/* A and B dealing in RUB and IRR, each granting the other FX_CAPS; B's band for A's trades
 * written to its config when `band` is given (before the start: nodes read it then). */
static void fx_pair(cluster_t *c, const char *band, tnode_t **a, tnode_t **b)
{
    *a = cluster_add(c, NAME_A, FX_CURRENCIES);
    *b = cluster_add(c, NAME_B, FX_CURRENCIES);
    cluster_link(c, *a, *b, FX_CAPS);
    if (band != NULL) {
        char *path = test_path((*b)->home, "corridor.conf");
        size_t len = 0;
        char *text = test_read_file(path, &len);
        assert_non_null(text);
        /* B's one peer section is the last: the band goes into it */
        assert_non_null(strstr(text, "[peer " NAME_A "]"));
        char *more = malloc(len + 128);
        assert_non_null(more);
        int n = snprintf(more, len + 128, "%s%sfx_band.RUB_IRR = %s\n", text,
                         len > 0 && text[len - 1] != '\n' ? "\n" : "", band);
        test_write_file(path, more, (size_t)n, 0600);
        free(more);
        free(text);
        free(path);
    }
}

/* `corridor fx --json` at `from`, paying `pay` and receiving `receive` ("CCY=AMOUNT"); its exit
 * status, the trade's id in id (empty when none), its status in status (when given). */
static int fx(cluster_t *c, tnode_t *from, const char *peer, const char *pay, const char *receive,
              const char *wait, char id[static CORRIDOR_UETR_LEN + 1], char status[static 16])
{
    const char *args[16] = {"fx",    "--home", from->home,  "--peer", peer,
                            "--pay", pay,      "--receive", receive,  "--json"};
    size_t k = 10;
    if (wait != NULL) {
        args[k++] = "--wait";
        args[k++] = wait;
    }
    args[k] = NULL;
    cmd_result_t r;
    int rc = cluster_cmdv(c, NODE_CMD_TIMEOUT_MS + 30000, &r, args);
    id[0] = '\0';
    status[0] = '\0';
    json_t *doc = json_loads(r.out, 0, NULL);
    const char *got = json_string_value(json_object_get(doc, "fx_id"));
    if (got != NULL) {
        snprintf(id, CORRIDOR_UETR_LEN + 1, "%s", got);
    }
    got = json_string_value(json_object_get(doc, "status"));
    if (got != NULL) {
        snprintf(status, 16, "%s", got);
    }
    printf("# fx %s for %s: exit %d %s %.200s\n", pay, receive, rc, status, r.err);
    json_decref(doc);
    cmd_result_free(&r);
    return rc;
}

/* The element of ledger's `fx_trades` with that id, or NULL; how many there are in *count. */
static json_t *trade_entry(json_t *ledger, const char *id, size_t *count)
{
    json_t *found = NULL, *e;
    size_t k;
    *count = 0;
    json_array_foreach(json_object_get(ledger, "fx_trades"), k, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "fx_id")), id) == 0) {
            found = e;
            (*count)++;
        }
    }
    return found;
}

static int64_t fx_count(json_t *ledger, const char *which)
{
    return json_integer_value(json_object_get(json_object_get(ledger, "fx_counts"), which));
}

/* The trade is listed once on each side (la the proposer's books, with peer_a in them; lb the
 * acceptor's, with peer_b), with the same legs and `status` (and
 * `reason`, NULL: none); each leg is one settlement entry carrying the fx_id. */
static void expect_trade(json_t *la, json_t *lb, const char *peer_a, const char *peer_b,
                         const char *id, const char *pay_ccy, int64_t pay_minor,
                         const char *recv_ccy, int64_t recv_minor, const char *rate,
                         const char *status, const char *reason)
{
    json_t *ta = NULL, *tb = NULL;
    for (int i = 0; i < 2; i++) {
        json_t *l = i == 0 ? la : lb;
        size_t count = 0;
        json_t *t = trade_entry(l, id, &count);
        if (t == NULL) {
            fail_msg("trade %s not in %s's ledger", id, i == 0 ? "A" : "B");
        }
        assert_int_equal(count, 1);
        assert_string_equal(json_string_value(json_object_get(t, "proposed_by")),
                            i == 0 ? "us" : "peer");
        assert_string_equal(json_string_value(json_object_get(t, "peer")),
                            i == 0 ? peer_a : peer_b);
        assert_string_equal(json_string_value(json_object_get(t, "status")), status);
        assert_string_equal(json_string_value(json_object_get(t, "rate")), rate);
        json_t *r = json_object_get(t, "reason");
        if (reason == NULL) {
            assert_true(json_is_null(r));
        } else {
            assert_string_equal(json_string_value(r), reason);
        }
        if (i == 0) {
            ta = t;
        } else {
            tb = t;
        }
    }
    /* A pays what B receives: at B "pay" is still the proposer's leg, seen from B */
    json_t *a_pay = json_object_get(ta, "pay"), *a_recv = json_object_get(ta, "receive");
    assert_string_equal(json_string_value(json_object_get(a_pay, "currency")), pay_ccy);
    assert_int_equal(json_integer_value(json_object_get(a_pay, "amount_minor")), pay_minor);
    assert_string_equal(json_string_value(json_object_get(a_recv, "currency")), recv_ccy);
    assert_int_equal(json_integer_value(json_object_get(a_recv, "amount_minor")), recv_minor);
    json_t *b_pay = json_object_get(tb, "pay"), *b_recv = json_object_get(tb, "receive");
    assert_string_equal(json_string_value(json_object_get(b_pay, "uetr")),
                        json_string_value(json_object_get(a_recv, "uetr")));
    assert_string_equal(json_string_value(json_object_get(b_recv, "uetr")),
                        json_string_value(json_object_get(a_pay, "uetr")));
    assert_int_equal(json_integer_value(json_object_get(b_recv, "amount_minor")), pay_minor);
    assert_int_equal(json_integer_value(json_object_get(b_pay, "amount_minor")), recv_minor);
    /* each leg once among the settlements, with the trade's id */
    const char *legs[2] = {json_string_value(json_object_get(a_pay, "uetr")),
                           json_string_value(json_object_get(a_recv, "uetr"))};
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < 2; i++) {
            size_t times = 0;
            json_t *e =
                ledger_json_find(side == 0 ? la : lb, side == 0 ? peer_a : peer_b, legs[i], &times);
            if (e == NULL) {
                fail_msg("leg %s of %s not among the settlements", legs[i], id);
            }
            assert_int_equal(times, 1);
            assert_string_equal(json_string_value(json_object_get(e, "fx_id")), id);
            assert_string_equal(json_string_value(json_object_get(e, "status")), status);
            /* the money's direction: the proposer pays leg 0 and is paid leg 1 */
            assert_string_equal(json_string_value(json_object_get(e, "direction")),
                                (side == 0) == (i == 0) ? "out" : "in");
        }
    }
}

/* The positions of A with B and of B with A mirror in both currencies and are these (A's). */
static void expect_positions(json_t *la, json_t *lb, int64_t a_rub, int64_t a_irr)
{
    assert_int_equal(ledger_net(la, NAME_B, "RUB"), a_rub);
    assert_int_equal(ledger_net(la, NAME_B, "IRR"), a_irr);
    assert_int_equal(ledger_net(lb, NAME_A, "RUB"), -a_rub);
    assert_int_equal(ledger_net(lb, NAME_A, "IRR"), -a_irr);
    assert_int_equal(ledger_pending(la, NAME_B, "RUB"), 0);
    assert_int_equal(ledger_pending(la, NAME_B, "IRR"), 0);
    assert_int_equal(ledger_pending(lb, NAME_A, "RUB"), 0);
    assert_int_equal(ledger_pending(lb, NAME_A, "IRR"), 0);
}

/* B's band accepts 450 (exit 0) and refuses 470 (exit 1, AG01); bad input exits 2 and writes
 * nothing; a trade B proposes to A, which sets no band, is held (exit 4) until A's operator
 * accepts it by its id. */
static void test_fx_band_review_and_bad_input(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    fx_pair(c, "440..460", &a, &b);
    node_start(c, a);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", 15000);
    char id[40], refused[40], held[40], none[40], status[16];
    assert_int_equal(fx(c, a, NAME_B, "RUB=10000", "IRR=4500000", "30", id, status), 0);
    assert_int_equal(uetr_check(id), VALID_OK);
    assert_string_equal(status, "settled");
    assert_int_equal(fx(c, a, NAME_B, "RUB=10000", "IRR=4700000", "30", refused, status), 1);
    assert_int_equal(uetr_check(refused), VALID_OK);
    assert_string_equal(status, "rejected");

    /* refused locally: exit 2, nothing written */
    char *head = node_ledger_head(c, a);
    assert_int_equal(fx(c, a, NAME_B, "RUB=10", "RUB=20", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB=10", "KZT=20", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "KZT=10", "IRR=20", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB=10.001", "IRR=4500", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB=0", "IRR=4500", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB=10", "IRR=0", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB=-10", "IRR=4500", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB=ten", "IRR=4500", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_B, "RUB", "IRR=4500", NULL, none, status), 2);
    assert_int_equal(fx(c, a, NAME_C, "RUB=10", "IRR=4500", NULL, none, status), 2); /* no peer */
    char *head_after = node_ledger_head(c, a);
    assert_string_equal(head, head_after);
    free(head);
    free(head_after);

    /* B proposes to A: A has no band for the pair, so it holds the trade for review */
    assert_int_equal(fx(c, b, NAME_A, "IRR=4400000", "RUB=10000", "2", held, status), 4);
    assert_int_equal(uetr_check(held), VALID_OK);
    assert_string_equal(status, "pending");
    pair_wait_idle(c, a, b, 30000);
    json_t *la = node_ledger(c, a), *lb = node_ledger(c, b);
    size_t count = 0;
    json_t *t = trade_entry(la, held, &count);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "status")), "held");
    assert_string_equal(json_string_value(json_object_get(t, "hold")), "review");
    t = trade_entry(lb, held, &count);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(t, "at_peer")), "held");
    assert_int_equal(fx_count(la, "held"), 1);
    assert_int_equal(fx_count(lb, "pending"), 1);
    json_decref(la);
    json_decref(lb);
    cmd_result_t r;
    assert_int_equal(
        cluster_cmd(c, 30000, &r, "review", "accept", "--home", a->home, "--id", held, NULL), 0);
    cmd_result_free(&r);
    /* a second decision is refused */
    assert_int_not_equal(
        cluster_cmd(c, 30000, &r, "review", "reject", "--home", a->home, "--id", held, NULL), 0);
    cmd_result_free(&r);
    pair_wait_idle(c, a, b, 30000);

    la = node_ledger(c, a);
    lb = node_ledger(c, b);
    expect_trade(la, lb, NAME_B, NAME_A, id, "RUB", 1000000, "IRR", 450000000, "450", "settled",
                 NULL);
    expect_trade(la, lb, NAME_B, NAME_A, refused, "RUB", 1000000, "IRR", 470000000, "470",
                 "rejected", "AG01");
    expect_trade(lb, la, NAME_A, NAME_B, held, "IRR", 440000000, "RUB", 1000000, "0.002273",
                 "settled", NULL);
    for (int i = 0; i < 2; i++) {
        json_t *l = i == 0 ? la : lb;
        assert_int_equal(json_array_size(json_object_get(l, "fx_trades")), 3);
        assert_int_equal(fx_count(l, "settled"), 2);
        assert_int_equal(fx_count(l, "rejected"), 1);
        assert_int_equal(fx_count(l, "pending"), 0);
        assert_int_equal(fx_count(l, "held"), 0);
    }
    /* A paid 10 000 RUB for 4 500 000 IRR, and 10 000 RUB more for B's 4 400 000 IRR */
    expect_positions(la, lb, -2000000, 450000000 + 440000000);
    json_decref(la);
    json_decref(lb);
    c->passed = true;
}

/* Waits until the trade has `status` in n's ledger. */
static void wait_trade(cluster_t *c, tnode_t *n, const char *id, const char *status, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        json_t *l = node_ledger(c, n);
        size_t count = 0;
        json_t *t = trade_entry(l, id, &count);
        bool done =
            t != NULL && strcmp(json_string_value(json_object_get(t, "status")), status) == 0;
        json_decref(l);
        if (done) {
            return;
        }
        if (mono_ms() > end) {
            fail_msg("trade %s not %s at %s after %d ms", id, status, n->name, timeout_ms);
        }
        sleep_ms(100);
    }
}

/* The proposer killed after its proposal was committed but before it left (the link drops
 * every FxProposal of that run), and the acceptor killed after it booked the trade but before
 * its answer arrived (its StatusReports dropped): after a restart each trade is settled on both
 * sides, once. */
static void test_fx_crash_between_proposal_and_answer(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    fx_pair(c, "440..460", &a, &b);
    node_start_faults(c, a, "drop=1,drop_type=FxProposal");
    node_start(c, b);
    pair_wait_state(c, a, b, "up", 15000);
    char first[40], second[40], status[16];
    assert_int_equal(fx(c, a, NAME_B, "RUB=10000", "IRR=4500000", NULL, first, status), 0);
    assert_int_equal(uetr_check(first), VALID_OK);
    assert_string_equal(status, "pending");
    node_wait_log(a, "outgoing FX trade", 1, 15000);
    node_kill9(a);
    json_t *lb = node_ledger(c, b);
    size_t count = 0;
    assert_null(trade_entry(lb, first, &count)); /* it never left */
    json_decref(lb);
    json_t *la = node_ledger(c, a);
    assert_int_equal(fx_count(la, "pending"), 1);
    assert_int_equal(ledger_pending(la, NAME_B, "RUB"), -1000000);
    json_decref(la);
    node_start(c, a);
    wait_trade(c, a, first, "settled", 30000);
    wait_trade(c, b, first, "settled", 30000);

    /* the acceptor books it, its answer is lost, it is killed */
    assert_int_equal(node_stop(c, b), 0);
    node_start_faults(c, b, "drop=1,drop_type=StatusReport");
    pair_wait_state(c, a, b, "up", 15000);
    assert_int_equal(fx(c, a, NAME_B, "RUB=20000", "IRR=9000000", "1", second, status), 4);
    assert_int_equal(uetr_check(second), VALID_OK);
    wait_trade(c, b, second, "settled", 30000);
    la = node_ledger(c, a);
    size_t n = 0;
    json_t *t = trade_entry(la, second, &n);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "status")), "pending");
    json_decref(la);
    node_kill9(b);
    node_start(c, b);
    wait_trade(c, a, second, "settled", 30000);
    pair_wait_idle(c, a, b, 30000);

    la = node_ledger(c, a);
    lb = node_ledger(c, b);
    expect_trade(la, lb, NAME_B, NAME_A, first, "RUB", 1000000, "IRR", 450000000, "450", "settled",
                 NULL);
    expect_trade(la, lb, NAME_B, NAME_A, second, "RUB", 2000000, "IRR", 900000000, "450", "settled",
                 NULL);
    for (int i = 0; i < 2; i++) {
        json_t *l = i == 0 ? la : lb;
        assert_int_equal(json_array_size(json_object_get(l, "fx_trades")), 2);
        assert_int_equal(fx_count(l, "settled"), 2);
    }
    expect_positions(la, lb, -3000000, 1350000000);
    /* the acceptor booked each trade once: two rows, one per leg */
    assert_int_equal(node_log_count(b, "incoming FX trade"), 2);
    json_decref(la);
    json_decref(lb);
    c->passed = true;
}

/* A peer not heard from since the start is not known to offer FX trades: exit 2. The proposer
 * never expires a trade on its own clock: with the acceptor stopped past the
 * trade's expiry, A shows it `expired: true`, still pending and reserving B's leg in the cap A
 * grants B (a second trade that would fit without it is refused, exit 1); once B is back it
 * refuses the trade AB05 and A voids both legs, releasing the reservation. */
static void test_fx_expiry_at_the_acceptor(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    a = cluster_add(c, NAME_A, FX_CURRENCIES);
    b = cluster_add(c, NAME_B, FX_CURRENCIES);
    node_trust(c, a, b, "RUB=100000000,IRR=6000000"); /* A grants B 6 000 000.00 IRR */
    node_trust(c, b, a, FX_CAPS);
    node_start(c, a);
    char id[40], over[40], status[16];
    /* B not heard from since A started: A cannot know it offers FX trades, exit 2 */
    char *head = node_ledger_head(c, a);
    assert_int_equal(fx(c, a, NAME_B, "RUB=10000", "IRR=4500000", NULL, over, status), 2);
    char *head_after = node_ledger_head(c, a);
    assert_string_equal(head, head_after);
    free(head);
    free(head_after);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", 15000);
    assert_int_equal(node_stop(c, b), 0);
    const char *args[] = {"fx",    "--home",    a->home,     "--peer",      NAME_B,
                          "--pay", "RUB=10000", "--receive", "IRR=4500000", "--expires-in",
                          "1",     "--json",    NULL};
    cmd_result_t r;
    int rc = cluster_cmdv(c, NODE_CMD_TIMEOUT_MS, &r, args);
    if (rc != 0) {
        printf("# fx: exit %d: %s\n", rc, r.err);
    }
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(r.out, 0, NULL);
    cmd_result_free(&r);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "fx_id")));
    json_decref(doc);
    assert_int_equal(uetr_check(id), VALID_OK);
    /* past its expiry: shown expired, still pending, still reserving */
    int64_t end = mono_ms() + 15000;
    for (;;) {
        json_t *la = node_ledger(c, a);
        size_t count = 0;
        json_t *t = trade_entry(la, id, &count);
        assert_non_null(t);
        assert_string_equal(json_string_value(json_object_get(t, "status")), "pending");
        bool expired = json_is_true(json_object_get(t, "expired"));
        if (expired) {
            assert_int_equal(ledger_pending(la, NAME_B, "RUB"), -1000000);
            assert_int_equal(ledger_pending(la, NAME_B, "IRR"), 450000000);
            json_decref(la);
            break;
        }
        json_decref(la);
        if (mono_ms() > end) {
            fail_msg("trade %s never shown expired", id);
        }
        sleep_ms(100);
    }
    /* 4 500 000 reserved of 6 000 000: 2 000 000 more does not fit, 1 500 000 would */
    assert_int_equal(fx(c, a, NAME_B, "RUB=5000", "IRR=2000000", NULL, over, status), 1);
    node_start(c, b);
    wait_trade(c, a, id, "rejected", 30000);
    pair_wait_idle(c, a, b, 30000);
    json_t *la = node_ledger(c, a), *lb = node_ledger(c, b);
    expect_trade(la, lb, NAME_B, NAME_A, id, "RUB", 1000000, "IRR", 450000000, "450", "rejected",
                 "AB05");
    size_t count = 0;
    assert_null(json_object_get(trade_entry(la, id, &count), "expired")); /* decided */
    expect_positions(la, lb, 0, 0);
    json_decref(la);
    json_decref(lb);
    /* the reservation is gone: the trade that did not fit now does */
    assert_int_equal(fx(c, a, NAME_B, "RUB=5000", "IRR=2000000", NULL, over, status), 0);
    assert_int_equal(uetr_check(over), VALID_OK);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fx_band_review_and_bad_input, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_fx_crash_between_proposal_and_answer, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_fx_expiry_at_the_acceptor, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("fx_trades", tests, NULL, NULL);
}
