/*
 * An example of a test a Corridor user writes for their own system: bring a local network of
 * three nodes up with `corridor testnet`, send settlements through it, and assert on the
 * audit. It uses only the command line and its JSON (no Corridor internals), so it reads the
 * same in any language; ctest runs it to keep it true.
 *
 * Build it against cmocka and jansson; point CORRIDOR at the program (default: corridor on
 * the PATH).
 */
#define _GNU_SOURCE /* popen, mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

static char net_dir[256];

/* Runs `corridor ARGS` through the shell; returns its exit code, stdout parsed as JSON. */
static int corridor(json_t **out, const char *fmt, ...)
{
    const char *program = getenv("CORRIDOR") != NULL ? getenv("CORRIDOR") : "corridor";
    char args[1024], command[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(command, sizeof command, "'%s' %s", program, args);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    json_error_t err;
    json_t *doc = json_loadf(p, JSON_DISABLE_EOF_CHECK, &err);
    int status = pclose(p);
    if (out != NULL) {
        *out = doc;
    } else {
        json_decref(doc);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int network_up(void **state)
{
    (void)state;
    snprintf(net_dir, sizeof net_dir, "%s/corridor-example-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(net_dir) == NULL) {
        return -1;
    }
    json_t *net = NULL;
    int rc = corridor(&net,
                      "testnet up --dir %s/net --nodes BKRURUMM,BMJIIRTH,KZKZKZKA "
                      "--currencies RUB,IRR --cap RUB=5000 --cap IRR=100000000 --json",
                      net_dir);
    bool three = json_array_size(json_object_get(net, "nodes")) == 3;
    json_decref(net);
    return rc == 0 && three ? 0 : -1;
}

static int network_down(void **state)
{
    (void)state;
    int rc = corridor(NULL, "testnet down --dir %s/net > /dev/null", net_dir);
    char command[400];
    snprintf(command, sizeof command, "rm -rf '%s'", net_dir);
    return rc == 0 && system(command) == 0 ? 0 : -1;
}

/* Payments in a circle, one over the cap: the over-cap one is refused, the books agree. */
static void test_payments_in_a_circle_audit_clean(void **state)
{
    (void)state;
    assert_int_equal(corridor(NULL,
                              "send --home %s/net/BKRURUMM --to BMJIIRTH --amount 1200 "
                              "--currency RUB --wait 20 > /dev/null",
                              net_dir),
                     0);
    assert_int_equal(corridor(NULL,
                              "send --home %s/net/BMJIIRTH --to KZKZKZKA --amount 750000 "
                              "--currency IRR --wait 20 > /dev/null",
                              net_dir),
                     0);
    /* 6,000 RUB is over the 5,000 BMJIIRTH grants KZKZKZKA: rejected, exit 1 */
    assert_int_equal(corridor(NULL,
                              "send --home %s/net/KZKZKZKA --to BMJIIRTH --amount 6000 "
                              "--currency RUB --wait 20 > /dev/null 2>&1",
                              net_dir),
                     1);

    json_t *audit = NULL;
    assert_int_equal(corridor(&audit, "testnet audit --dir %s/net --json", net_dir), 0);
    assert_true(json_is_true(json_object_get(audit, "ok")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(audit, "audit"), "violations_total")),
        0);
    json_t *reconciliations = json_object_get(audit, "reconciliations");
    assert_int_equal(json_array_size(reconciliations), 3); /* a mesh of three */
    size_t i;
    json_t *r;
    json_array_foreach(reconciliations, i, r)
    {
        assert_int_equal(json_integer_value(json_object_get(r, "exit")), 0);
    }
    json_decref(audit);

    json_t *ledger = NULL;
    assert_int_equal(corridor(&ledger, "ledger --home %s/net/BMJIIRTH --json", net_dir), 0);
    json_t *counts = json_object_get(ledger, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "settled")), 2);
    assert_int_equal(json_integer_value(json_object_get(counts, "rejected")), 1);
    json_decref(ledger);
}

/* A second `up` on a running network is refused; `status` sees every node. */
static void test_network_up_once(void **state)
{
    (void)state;
    assert_int_equal(
        corridor(NULL, "testnet up --dir %s/net --nodes BKRURUMM,BMJIIRTH 2>/dev/null", net_dir),
        2);
    json_t *status = NULL;
    assert_int_equal(corridor(&status, "testnet status --dir %s/net --json", net_dir), 0);
    assert_true(json_is_true(json_object_get(status, "up")));
    json_decref(status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payments_in_a_circle_audit_clean),
        cmocka_unit_test(test_network_up_once),
    };
    return cmocka_run_group_tests(tests, network_up, network_down);
}
