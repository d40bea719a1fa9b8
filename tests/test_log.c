/*
 * Tests of node/base/log.c: a log line holds text a peer chose (a UETR before it is validated, a
 * status, a currency), so every byte outside printable ASCII is escaped and no peer can end
 * the line or forge the next one.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void test_escape_plain_text_unchanged(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(log_escape("incoming 125 RUB settled", out, sizeof out), 24);
    assert_string_equal(out, "incoming 125 RUB settled");
}

static void test_escape_controls_backslash_and_high_bytes(void **state)
{
    (void)state;
    char out[128];
    log_escape("RJ\nCT 2026-01-01T00:00:00Z FAKE\r\t\\\x7f\xd0\xb0", out, sizeof out);
    assert_string_equal(out, "RJ\\x0aCT 2026-01-01T00:00:00Z FAKE\\x0d\\x09\\x5c\\x7f\\xd0\\xb0");
    assert_null(strchr(out, '\n'));
}

static void test_escape_cuts_whole_escapes(void **state)
{
    (void)state;
    char out[6];
    assert_int_equal(log_escape("ab\ncd", out, sizeof out), 2); /* "ab\x0a" needs 7 bytes */
    assert_string_equal(out, "ab");
    assert_int_equal(log_escape("x", out, 0), 0);
}

/* What log_event writes for one event with these fields (the caller frees it). */
static char *logged_line(const char *uetr, const char *status, size_t *len)
{
    char *dir = test_tmpdir();
    char *path = test_path(dir, "log.txt");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_non_null(freopen(path, "w", stderr));
    log_event("BKRURUMM", "BMJIIRTH", uetr, "dropped StatusReport with status '%.8s'", status);
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    char *text = test_read_file(path, len);
    assert_non_null(text);
    test_rmtree(dir);
    free(path);
    free(dir);
    return text;
}

/* The whole line as log_event writes it: one line, whatever the peer's fields hold. */
static void test_event_stays_on_one_line(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = logged_line("x\n2026-12-02T00:00:00.000Z BKRURUMM forged", "AC\nSC", &len);
    assert_true(len > 0 && text[len - 1] == '\n');
    assert_null(memchr(text, '\n', len - 1)); /* exactly one line */
    assert_non_null(strstr(text, "uetr=x\\x0a2026-12-02T00:00:00.000Z BKRURUMM forged"));
    assert_non_null(strstr(text, "status 'AC\\x0aSC'"));
    free(text);
}

static int64_t simulated_now_ms(void)
{
    return 1795000000123; /* 2026-11-18T11:06:40.123Z */
}

/* A program on a simulated clock gets its own time in its log lines, and the wall clock back. */
static void test_event_stamped_by_the_clock_set(void **state)
{
    (void)state;
    log_set_clock(simulated_now_ms);
    size_t len = 0;
    char *text = logged_line("u", "ACSC", &len);
    assert_true(strncmp(text, "2026-11-18T11:06:40.123Z BKRURUMM peer=BMJIIRTH uetr=u ", 55) == 0);
    free(text);
    log_set_clock(NULL);
    text = logged_line("u", "ACSC", &len);
    assert_true(strncmp(text, "2026-11-18T11:06:40.123Z", 24) != 0);
    assert_true(strncmp(text, "20", 2) == 0 && text[23] == 'Z');
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_plain_text_unchanged),
        cmocka_unit_test(test_escape_controls_backslash_and_high_bytes),
        cmocka_unit_test(test_escape_cuts_whole_escapes),
        cmocka_unit_test(test_event_stays_on_one_line),
        cmocka_unit_test(test_event_stamped_by_the_clock_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
