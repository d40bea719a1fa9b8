/* Tests of node/screen: the screening list (loading, its limits, case-insensitive whole-field
 * matching, a large list) and the screening program runner (every kind of answer, failures
 * that must hold, timeouts and process groups, the queue, duplicates, the JSON input). The
 * programs are the shell scripts in tests/screen/; they find this test's scratch directory in
 * $SCREEN_TEST_DIR. Waits are for a positive sign (a verdict, a process gone), bounded at 10 s. */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "screen_list.h"
#include "screen_run.h"

#define PROGRAMS     CORRIDOR_TEST_DATA "/screen/"
#define WAIT_MS_MAX  10000
#define RESULTS_MAX  16
#define TEST_UETR    "6f1c3c1e-9d2b-4c4e-8a51-3f0e2d6c7b10"
#define TEST_ACCOUNT "IR820540102680020817909002"

static char *scratch; /* this run's directory, $SCREEN_TEST_DIR */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) {
        return -1;
    }
    scratch = test_tmpdir();
    return setenv("SCREEN_TEST_DIR", scratch, 1);
}

static int group_teardown(void **state)
{
    (void)state;
    test_rmtree(scratch);
    free(scratch);
    return 0;
}

/* ---- Lists ----------------------------------------------------------------------------- */

static char *write_list(const char *name, const char *text)
{
    char *path = test_path(scratch, name);
    test_write_file(path, text, strlen(text), 0600);
    return path;
}

static screen_list_t *load_text(const char *text, char *err, size_t err_len)
{
    char *path = write_list("list.txt", text);
    screen_list_t *l = screen_list_load(path, err, err_len);
    free(path);
    return l;
}

static settlement_t settlement_of(const char *debtor, const char *debtor_account,
                                  const char *creditor, const char *creditor_account)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "BANKB");
    s.direction = DIRECTION_IN;
    snprintf(s.uetr, sizeof s.uetr, "%s", TEST_UETR);
    snprintf(s.end_to_end_id, sizeof s.end_to_end_id, "E2E-1");
    s.amount_minor = 123456;
    snprintf(s.currency, sizeof s.currency, "RUB");
    snprintf(s.value_date, sizeof s.value_date, "2026-12-01");
    snprintf(s.debtor_name, sizeof s.debtor_name, "%s", debtor);
    snprintf(s.debtor_account, sizeof s.debtor_account, "%s", debtor_account);
    snprintf(s.creditor_name, sizeof s.creditor_name, "%s", creditor);
    snprintf(s.creditor_account, sizeof s.creditor_account, "%s", creditor_account);
    snprintf(s.remittance, sizeof s.remittance, "invoice 7");
    s.created_unix_ms = 1764547200000;
    return s;
}

static void test_list_comments_blanks_trimming(void **state)
{
    (void)state;
    char err[256];
    screen_list_t *l = load_text("\xEF\xBB\xBF# a sanctions list\n"
                                 "\n"
                                 "   \t \n"
                                 "  Pars   Trading \t\n"
                                 "\xD0\x9E\xD0\x9E\xD0\x9E \xD0\xA0\xD0\xBE\xD0\xBC\xD0\xB0\xD1"
                                 "\x88\xD0\xBA\xD0\xB0\r\n" /* ООО Ромашка, CRLF */
                                 "    # an indented comment\n"
                                 "PARS TRADING\n" /* the same entry, folded */
                                 "Entry With Hash # inside\n"
                                 "last line without newline",
                                 err, sizeof err);
    assert_non_null(l);
    assert_int_equal(screen_list_count(l), 4);
    const char *field = NULL;
    settlement_t s = settlement_of("pars trading", "", "", "");
    assert_true(screen_list_match(l, &s, &field));
    assert_string_equal(field, "debtor_name");
    s = settlement_of("", "", "entry with hash # inside", "");
    assert_true(screen_list_match(l, &s, &field));
    assert_string_equal(field, "creditor_name");
    s = settlement_of("Last Line Without Newline", "", "", "");
    assert_true(screen_list_match(l, &s, NULL));
    s = settlement_of("# a sanctions list", "", "a sanctions list", "");
    assert_false(screen_list_match(l, &s, NULL));
    screen_list_destroy(&l);
    assert_null(l);
    screen_list_destroy(&l); /* safe twice */

    l = load_text("", err, sizeof err);
    assert_non_null(l);
    assert_int_equal(screen_list_count(l), 0);
    s = settlement_of("Pars Trading", "", "", "");
    assert_false(screen_list_match(l, &s, NULL));
    screen_list_destroy(&l);
}

static void test_list_bad_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "\xFF",             /* not a UTF-8 byte */
        "\xC0\xAF",         /* an overlong '/' */
        "\xED\xA0\x80",     /* a surrogate */
        "\xD0",             /* cut short */
        "\xF4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "Pars Trading\n# comment\nName %s here\n", bad[i]);
        char err[256] = "";
        screen_list_t *l = load_text(text, err, sizeof err);
        assert_null(l);
        assert_non_null(strstr(err, "line 3"));
        assert_non_null(strstr(err, "UTF-8"));
    }
    char err[256] = "";
    assert_null(load_text("a\nb\x01"
                          "c\n",
                          err, sizeof err));
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "control"));
    /* a bad byte in a comment is still a bad file */
    assert_null(load_text("# \xFF\n", err, sizeof err));
    assert_non_null(strstr(err, "line 1"));
}

static void test_list_line_limit(void **state)
{
    (void)state;
    char line[SCREEN_LIST_LINE_BYTES_MAX + 2];
    memset(line, 'a', SCREEN_LIST_LINE_BYTES_MAX);
    line[SCREEN_LIST_LINE_BYTES_MAX] = '\0';
    char text[2 * sizeof line + 16];
    snprintf(text, sizeof text, "x\n%s\r\n", line); /* 300 bytes and CRLF: fits */
    char err[256] = "";
    screen_list_t *l = load_text(text, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(screen_list_count(l), 2);
    screen_list_destroy(&l);

    line[SCREEN_LIST_LINE_BYTES_MAX] = 'a';
    line[SCREEN_LIST_LINE_BYTES_MAX + 1] = '\0';
    snprintf(text, sizeof text, "x\n%s\n", line); /* 301 bytes */
    assert_null(load_text(text, err, sizeof err));
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "longer than 300 bytes"));

    /* a megabyte without a newline: refused at its 302nd byte, not read into memory */
    size_t big_len = 1 << 20;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'b', big_len);
    big[big_len] = '\0';
    assert_null(load_text(big, err, sizeof err));
    assert_non_null(strstr(err, "line 1"));
    free(big);

    char *missing = test_path(scratch, "no-such-list.txt");
    assert_null(screen_list_load(missing, err, sizeof err));
    assert_non_null(strstr(err, "no-such-list.txt"));
    free(missing);
}

/* Writes a list of `entries` distinct lines ("Company 000042 Trading LLC") and returns its
 * path. */
static char *write_big_list(const char *name, size_t entries)
{
    char *path = test_path(scratch, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# generated\n");
    for (size_t i = 0; i < entries; i++) {
        fprintf(f, "Company %06zu Trading LLC\n", i);
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_list_entries_limit(void **state)
{
    (void)state;
    char *path = write_big_list("too-many.txt", SCREEN_LIST_ENTRIES_MAX + 1);
    char err[256] = "";
    int64_t t0 = mono_ms();
    assert_null(screen_list_load(path, err, sizeof err));
    print_message("(information) 1,000,000 entries read before the limit: %lld ms\n",
                  (long long)(mono_ms() - t0));
    assert_non_null(strstr(err, "more than 1000000 entries"));
    assert_non_null(strstr(err, "line 1000002")); /* the comment is line 1 */
    unlink(path);
    free(path);
}

static void test_match_case_insensitive(void **state)
{
    (void)state;
    char err[256];
    screen_list_t *l = load_text("Pars Trading\n"
                                 "ООО Ромашка\n"
                                 "شرکت پارس\n"
                                 "ΟΔΥΣΣΕΥΣ\n" TEST_ACCOUNT "\n",
                                 err, sizeof err);
    assert_non_null(l);
    assert_int_equal(screen_list_count(l), 5);
    const char *field = NULL;
    settlement_t s;

    s = settlement_of("PARS TRADING", "", "", "");
    assert_true(screen_list_match(l, &s, &field));
    assert_string_equal(field, "debtor_name");
    s = settlement_of("", "", "ооо ромашка", "");
    assert_true(screen_list_match(l, &s, &field));
    assert_string_equal(field, "creditor_name");
    s = settlement_of("  ООО\t\tРОМАШКА ", "", "", ""); /* upper case, inner and outer spaces */
    assert_true(screen_list_match(l, &s, NULL));
    s = settlement_of("ООО\xC2\xA0Ромашка", "", "", ""); /* a no-break space */
    assert_true(screen_list_match(l, &s, NULL));
    s = settlement_of("", "", "οδυσσευς", ""); /* final sigma folds with sigma */
    assert_true(screen_list_match(l, &s, NULL));
    s = settlement_of("", "", "οδυσσευσ", "");
    assert_true(screen_list_match(l, &s, NULL));
    s = settlement_of("شرکت پارس", "", "", ""); /* Persian, exactly */
    assert_true(screen_list_match(l, &s, NULL));
    s = settlement_of("شرکت پارسا", "", "", "");
    assert_false(screen_list_match(l, &s, NULL));
    s = settlement_of("", "ir820540102680020817909002", "", "");
    assert_true(screen_list_match(l, &s, &field));
    assert_string_equal(field, "debtor_account");
    s = settlement_of("Someone", "", "Else", TEST_ACCOUNT);
    assert_true(screen_list_match(l, &s, &field));
    assert_string_equal(field, "creditor_account");

    /* whole fields only */
    s = settlement_of("Pars", "IR8205401026800208179090", "Pars Trading LLC", "X" TEST_ACCOUNT);
    assert_false(screen_list_match(l, &s, NULL));
    s = settlement_of("ООО Ромашка Плюс", "", "Ромашка", "");
    assert_false(screen_list_match(l, &s, NULL));
    /* empty fields never match, nor blank ones, nor text that is not UTF-8 */
    s = settlement_of("", "", "", "");
    assert_false(screen_list_match(l, &s, NULL));
    s = settlement_of("   ", "\t", " ", "");
    assert_false(screen_list_match(l, &s, NULL));
    s = settlement_of("Pars Trading\xFF", "", "", "");
    assert_false(screen_list_match(l, &s, NULL));
    /* the remittance and the other fields are not screened */
    s = settlement_of("a", "b", "c", "d");
    snprintf(s.remittance, sizeof s.remittance, "Pars Trading");
    assert_false(screen_list_match(l, &s, NULL));
    screen_list_destroy(&l);
}

static void test_match_large_list(void **state)
{
    (void)state;
    size_t entries = 200000;
    char *path = write_big_list("big.txt", entries);
    char err[256] = "";
    int64_t t0 = mono_ms();
    screen_list_t *l = screen_list_load(path, err, sizeof err);
    int64_t load_ms = mono_ms() - t0;
    assert_non_null(l);
    assert_int_equal(screen_list_count(l), entries);
    settlement_t hit = settlement_of("", "", "COMPANY 123456 TRADING LLC", "");
    settlement_t miss = settlement_of("Company 123456 Trading", "", "Company 200000 Trading LLC",
                                      "Company 123456 Trading LLC.");
    int rounds = 100000;
    int found = 0;
    t0 = mono_ms();
    for (int i = 0; i < rounds; i++) {
        found += screen_list_match(l, &hit, NULL);
        found += screen_list_match(l, &miss, NULL);
    }
    int64_t match_ms = mono_ms() - t0;
    assert_int_equal(found, rounds);
    settlement_t first = settlement_of("company 000000 trading llc", "", "", "");
    settlement_t last = settlement_of("", "", "company 199999 trading llc", "");
    assert_true(screen_list_match(l, &first, NULL));
    assert_true(screen_list_match(l, &last, NULL));
    print_message("(information) %zu-line list loaded in %lld ms; %d matches (4 fields each) "
                  "in %lld ms\n",
                  entries, (long long)load_ms, 2 * rounds, (long long)match_ms);
    screen_list_destroy(&l);
    unlink(path);
    free(path);
}

/* ---- Runs ------------------------------------------------------------------------------ */

typedef struct {
    size_t count; /* reports received */
    struct {
        char peer[CORRIDOR_NAME_LEN_MAX + 1];
        char uetr[CORRIDOR_UETR_LEN + 1];
        screen_verdict_t verdict;
    } got[RESULTS_MAX];  /* the reports, in order */
    size_t running_peak; /* the most screen_running said while waiting */
} results_t;

static void on_done(void *arg, const char *peer, const char *uetr, const screen_verdict_t *v)
{
    results_t *res = arg;
    assert_true(res->count < RESULTS_MAX);
    snprintf(res->got[res->count].peer, sizeof res->got[res->count].peer, "%s", peer);
    snprintf(res->got[res->count].uetr, sizeof res->got[res->count].uetr, "%s", uetr);
    res->got[res->count].verdict = *v;
    res->count++;
}

/* One turn of a caller's loop: poll what the runner asks for (bounded), then collect. */
static void turn(screen_runner_t *r, results_t *res)
{
    struct pollfd fds[3 * SCREEN_RUNNING_MAX];
    size_t n = screen_poll_fds(r, fds, sizeof fds / sizeof fds[0]);
    int64_t now = mono_ms();
    int64_t next = screen_next_deadline(r);
    int64_t wait = next == INT64_MAX ? 100 : next - now;
    wait = wait < 0 ? 0 : wait > 100 ? 100 : wait;
    poll(fds, (nfds_t)n, (int)wait);
    screen_collect(r, mono_ms(), on_done, res);
    if (screen_running(r) > res->running_peak) {
        res->running_peak = screen_running(r);
    }
}

/* Turns until `count` reports came and no process is left, or 10 s passed. */
static void wait_reports(screen_runner_t *r, results_t *res, size_t count)
{
    int64_t give_up = mono_ms() + WAIT_MS_MAX;
    while ((res->count < count || screen_running(r) > 0) && mono_ms() < give_up) {
        turn(r, res);
    }
    assert_int_equal(res->count, count);
    assert_int_equal(screen_running(r), 0);
    assert_int_equal(screen_queued(r), 0);
}

/* Runs `program` once on the standard input and returns its verdict. */
static screen_verdict_t run_program(const char *program, int64_t timeout_ms)
{
    screen_runner_t *r = screen_runner_new(program, timeout_ms, 2);
    assert_non_null(r);
    settlement_t s = settlement_of("Debtor", "ACC1", "Pars Trading", "ACC2");
    char *input = screen_settlement_json(&s);
    assert_non_null(input);
    results_t res = {0};
    assert_int_equal(screen_start(r, s.peer, s.uetr, input, mono_ms()), 0);
    free(input);
    wait_reports(r, &res, 1);
    assert_string_equal(res.got[0].peer, "BANKB");
    assert_string_equal(res.got[0].uetr, TEST_UETR);
    screen_runner_destroy(&r);
    assert_null(r);
    screen_runner_destroy(&r);
    return res.got[0].verdict;
}

static void assert_hold(const screen_verdict_t *v, const char *why_part)
{
    print_message("(information) hold: %s\n", v->why);
    assert_int_equal(v->kind, SCREEN_HOLD);
    assert_string_equal(v->reason, "");
    assert_non_null(strstr(v->why, why_part));
}

static void test_run_answers(void **state)
{
    (void)state;
    screen_verdict_t v = run_program(PROGRAMS "accept.sh", 5000);
    assert_int_equal(v.kind, SCREEN_ACCEPT);
    assert_string_equal(v.why, "answered accept");

    v = run_program(PROGRAMS "reject.sh", 5000);
    assert_int_equal(v.kind, SCREEN_REJECT);
    assert_string_equal(v.reason, "RR04");

    v = run_program(PROGRAMS "hold.sh", 5000);
    assert_hold(&v, "answered hold");
}

static void test_run_failures_hold(void **state)
{
    (void)state;
    screen_verdict_t v = run_program(PROGRAMS "garbage.sh", 5000);
    assert_hold(&v, "garbage answer \"accept please\"");
    v = run_program(PROGRAMS "empty.sh", 5000);
    assert_hold(&v, "empty answer");
    v = run_program(PROGRAMS "overlong.sh", 5000);
    assert_hold(&v, "longer than 256 bytes");
    v = run_program(PROGRAMS "accept_exit3.sh", 5000);
    assert_hold(&v, "exit status 3");
    v = run_program(PROGRAMS "crash.sh", 5000);
    assert_hold(&v, "killed by signal 11");
    v = run_program(PROGRAMS "no-such-program.sh", 5000);
    assert_hold(&v, "cannot start");
    assert_non_null(strstr(v.why, "No such file"));

    /* a program that cannot start takes no slot, and its report is due at once */
    screen_runner_t *r = screen_runner_new(PROGRAMS "no-such-program.sh", 5000, 1);
    assert_non_null(r);
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, "{}\n", 1000), 0);
    assert_int_equal(screen_start(r, "BANKC", TEST_UETR, "{}\n", 1001), 0);
    assert_int_equal(screen_running(r), 0);
    assert_int_equal(screen_queued(r), 0);
    assert_true(screen_next_deadline(r) <= 1001);
    results_t res = {0};
    screen_collect(r, 1002, on_done, &res);
    assert_int_equal(res.count, 2);
    assert_string_equal(res.got[0].peer, "BANKB");
    assert_string_equal(res.got[1].peer, "BANKC");
    assert_int_equal(screen_next_deadline(r), INT64_MAX);
    screen_runner_destroy(&r);
}

/* Whether a process of group pgid is alive (zombies, which init has yet to reap, are not). */
static bool group_alive(pid_t pgid)
{
    DIR *proc = opendir("/proc");
    assert_non_null(proc);
    bool alive = false;
    struct dirent *d;
    while (!alive && (d = readdir(proc)) != NULL) {
        if (d->d_name[0] < '0' || d->d_name[0] > '9') {
            continue;
        }
        char path[300], stat[512];
        snprintf(path, sizeof path, "/proc/%s/stat", d->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            continue; /* gone meanwhile */
        }
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = '\0';
        const char *close_paren = strrchr(stat, ')');
        char st = 0;
        int ppid = 0, pgrp = 0;
        if (close_paren != NULL && sscanf(close_paren + 1, " %c %d %d", &st, &ppid, &pgrp) == 3) {
            alive = pgrp == pgid && st != 'Z' && st != 'X';
        }
    }
    closedir(proc);
    return alive;
}

static bool process_alive(pid_t pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close_paren = strrchr(stat, ')');
    char st = 0;
    return close_paren != NULL && sscanf(close_paren + 1, " %c", &st) == 1 && st != 'Z' &&
           st != 'X';
}

/* Waits (10 s at most) for the group and the process to be gone; true when they are. */
static bool wait_gone(pid_t pgid, pid_t pid)
{
    int64_t give_up = mono_ms() + WAIT_MS_MAX;
    while (group_alive(pgid) || process_alive(pid)) {
        if (mono_ms() > give_up) {
            return false;
        }
        poll(NULL, 0, 10);
    }
    return true;
}

/* The pid a test program wrote to $SCREEN_TEST_DIR/name, or 0 while there is none. */
static pid_t read_pid(const char *name)
{
    char *path = test_path(scratch, name);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    free(path);
    if (text == NULL) {
        return 0;
    }
    pid_t pid = (pid_t)atoi(text);
    free(text);
    return pid;
}

static void remove_pid(const char *name)
{
    char *path = test_path(scratch, name);
    unlink(path);
    free(path);
}

static void test_run_timeout_kills_group(void **state)
{
    (void)state;
    remove_pid("hang.pid");
    int64_t t0 = mono_ms();
    screen_verdict_t v = run_program(PROGRAMS "hang.sh", 300);
    int64_t took = mono_ms() - t0;
    assert_hold(&v, "timed out after 300 ms");
    assert_true(took >= 300);
    pid_t pgid = read_pid("hang.pid");
    assert_true(pgid > 0);
    assert_true(wait_gone(pgid, pgid)); /* the shell and its sleep */
}

static void test_run_exit_kills_leftovers(void **state)
{
    (void)state;
    remove_pid("child.pid");
    screen_verdict_t v = run_program(PROGRAMS "fork_exit.sh", 10000);
    /* the child holds stdout open for 100 s: the verdict came at the program's exit */
    assert_int_equal(v.kind, SCREEN_ACCEPT);
    pid_t child = read_pid("child.pid");
    assert_true(child > 0);
    assert_true(wait_gone(child, child));
}

static void test_run_queue(void **state)
{
    (void)state;
    assert_int_equal(setenv("SCREEN_TEST_DELAY", "0.2", 1), 0);
    screen_runner_t *r = screen_runner_new(PROGRAMS "amount.sh", 5000, 2);
    assert_non_null(r);
    results_t res = {0};
    for (int i = 0; i < 6; i++) {
        settlement_t s = settlement_of("Debtor", "ACC1", "Pars Trading", "ACC2");
        s.amount_minor = 100000 + 41 + i;
        snprintf(s.uetr, sizeof s.uetr, "6f1c3c1e-9d2b-4c4e-8a51-3f0e2d6c7b1%d", i);
        char *input = screen_settlement_json(&s);
        assert_non_null(input);
        assert_int_equal(screen_start(r, s.peer, s.uetr, input, mono_ms()), 0);
        free(input);
    }
    assert_int_equal(screen_running(r), 2);
    assert_int_equal(screen_queued(r), 4);
    res.running_peak = 2;
    wait_reports(r, &res, 6);
    assert_int_equal(res.running_peak, 2);
    bool seen[6] = {false};
    for (size_t k = 0; k < res.count; k++) {
        const char *uetr = res.got[k].uetr;
        int i = uetr[strlen(uetr) - 1] - '0';
        assert_true(i >= 0 && i < 6 && !seen[i]);
        seen[i] = true;
        char code[5];
        snprintf(code, sizeof code, "A%03u", (unsigned)(41 + i) % 1000u);
        assert_int_equal(res.got[k].verdict.kind, SCREEN_REJECT);
        assert_string_equal(res.got[k].verdict.reason, code);
    }
    screen_runner_destroy(&r);
    assert_int_equal(unsetenv("SCREEN_TEST_DELAY"), 0);
}

static void test_run_duplicate_is_noop(void **state)
{
    (void)state;
    screen_runner_t *r = screen_runner_new(PROGRAMS "reject.sh", 5000, 4);
    assert_non_null(r);
    results_t res = {0};
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, "{}\n", mono_ms()), 0);
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, "{}\n", mono_ms()), 0);
    assert_int_equal(screen_running(r), 1);
    /* the same UETR from another peer is another payment */
    assert_int_equal(screen_start(r, "BANKC", TEST_UETR, "{}\n", mono_ms()), 0);
    assert_int_equal(screen_running(r), 2);
    assert_int_equal(screen_queued(r), 0);
    wait_reports(r, &res, 2);
    assert_string_not_equal(res.got[0].peer, res.got[1].peer);
    /* nothing is left that could report again */
    assert_int_equal(screen_next_deadline(r), INT64_MAX);
    screen_collect(r, mono_ms(), on_done, &res);
    assert_int_equal(res.count, 2);
    /* once reported, the payment can be screened again */
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, "{}\n", mono_ms()), 0);
    wait_reports(r, &res, 3);
    assert_string_equal(res.got[2].peer, "BANKB");
    assert_string_equal(res.got[2].verdict.reason, "RR04");
    screen_runner_destroy(&r);
}

static void test_run_input_json(void **state)
{
    (void)state;
    settlement_t s = settlement_of("ООО Ромашка", "ACC1", "Pars Trading", "ACC2");
    s.amount_minor = 987654321;
    char *input = screen_settlement_json(&s);
    assert_non_null(input);
    assert_int_equal(input[strlen(input) - 1], '\n');
    assert_ptr_equal(strchr(input, '\n'), input + strlen(input) - 1); /* one line */
    json_error_t jerr;
    json_t *o = json_loads(input, 0, &jerr);
    assert_non_null(o);
    const char *keys[] = {"uetr",       "peer",           "amount_minor", "currency",
                          "value_date", "end_to_end_id",  "debtor",       "creditor",
                          "remittance", "created_unix_ms"};
    const char *key;
    json_t *value;
    size_t k = 0;
    json_object_foreach(o, key, value)
    {
        assert_true(k < sizeof keys / sizeof keys[0]);
        assert_string_equal(key, keys[k]);
        k++;
    }
    assert_int_equal(k, sizeof keys / sizeof keys[0]);
    assert_int_equal(json_integer_value(json_object_get(o, "amount_minor")), 987654321);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "debtor"), "name")),
                        "ООО Ромашка");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "creditor"), "account")), "ACC2");
    assert_int_equal(json_integer_value(json_object_get(o, "created_unix_ms")), 1764547200000);
    json_decref(o);
    free(input);

    /* the program reads it: its answer carries the amount */
    screen_runner_t *r = screen_runner_new(PROGRAMS "amount.sh", 5000, 1);
    assert_non_null(r);
    results_t res = {0};
    input = screen_settlement_json(&s);
    assert_int_equal(screen_start(r, s.peer, s.uetr, input, mono_ms()), 0);
    free(input);
    wait_reports(r, &res, 1);
    assert_int_equal(res.got[0].verdict.kind, SCREEN_REJECT);
    assert_string_equal(res.got[0].verdict.reason, "A321");

    /* inputs over the limit are refused */
    char *big = malloc(SCREEN_INPUT_BYTES_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', SCREEN_INPUT_BYTES_MAX + 1);
    big[SCREEN_INPUT_BYTES_MAX + 1] = '\0';
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, big, mono_ms()), -1);
    big[SCREEN_INPUT_BYTES_MAX] = '\0'; /* the largest input is taken */
    screen_runner_destroy(&r);
    r = screen_runner_new(PROGRAMS "hold.sh", 5000, 1);
    assert_non_null(r);
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, big, mono_ms()), 0);
    free(big);
    wait_reports(r, &res, 2);
    assert_hold(&res.got[1].verdict, "answered hold");
    screen_runner_destroy(&r);
}

static void test_run_destroy_kills(void **state)
{
    (void)state;
    remove_pid("hang.pid");
    screen_runner_t *r = screen_runner_new(PROGRAMS "hang.sh", 60000, 1);
    assert_non_null(r);
    results_t res = {0};
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, "{}\n", mono_ms()), 0);
    assert_int_equal(screen_start(r, "BANKC", TEST_UETR, "{}\n", mono_ms()), 0);
    assert_int_equal(screen_queued(r), 1);
    pid_t pgid = 0;
    int64_t give_up = mono_ms() + WAIT_MS_MAX;
    while ((pgid = read_pid("hang.pid")) == 0 && mono_ms() < give_up) {
        turn(r, &res);
    }
    assert_true(pgid > 0);
    assert_true(group_alive(pgid));
    screen_runner_destroy(&r);
    assert_null(r);
    assert_int_equal(res.count, 0); /* dropped, not reported */
    assert_true(wait_gone(pgid, pgid));
}

static void test_run_queue_limit(void **state)
{
    (void)state;
    remove_pid("hang.pid");
    screen_runner_t *r = screen_runner_new(PROGRAMS "hang.sh", 60000, 1);
    assert_non_null(r);
    char uetr[CORRIDOR_UETR_LEN + 1];
    for (size_t i = 0; i <= SCREEN_QUEUED_MAX; i++) {
        snprintf(uetr, sizeof uetr, "%08x-0000-4000-8000-000000000000", (unsigned)i);
        assert_int_equal(screen_start(r, "BANKB", uetr, "{}\n", 0), 0);
    }
    assert_int_equal(screen_running(r), 1);
    assert_int_equal(screen_queued(r), SCREEN_QUEUED_MAX);
    assert_int_equal(screen_start(r, "BANKB", TEST_UETR, "{}\n", 0), -1);
    /* a duplicate of a queued run is still a no-op, not a refusal */
    snprintf(uetr, sizeof uetr, "%08x-0000-4000-8000-000000000000", 777);
    assert_int_equal(screen_start(r, "BANKB", uetr, "{}\n", 0), 0);
    pid_t pgid = 0;
    int64_t give_up = mono_ms() + WAIT_MS_MAX;
    while ((pgid = read_pid("hang.pid")) == 0 && mono_ms() < give_up) {
        poll(NULL, 0, 10);
    }
    screen_runner_destroy(&r);
    assert_true(pgid > 0);
    assert_true(wait_gone(pgid, pgid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_comments_blanks_trimming),
        cmocka_unit_test(test_list_bad_utf8),
        cmocka_unit_test(test_list_line_limit),
        cmocka_unit_test(test_list_entries_limit),
        cmocka_unit_test(test_match_case_insensitive),
        cmocka_unit_test(test_match_large_list),
        cmocka_unit_test(test_run_answers),
        cmocka_unit_test(test_run_failures_hold),
        cmocka_unit_test(test_run_timeout_kills_group),
        cmocka_unit_test(test_run_exit_kills_leftovers),
        cmocka_unit_test(test_run_queue),
        cmocka_unit_test(test_run_duplicate_is_noop),
        cmocka_unit_test(test_run_input_json),
        cmocka_unit_test(test_run_destroy_kills),
        cmocka_unit_test(test_run_queue_limit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
