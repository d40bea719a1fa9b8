/* Unit tests for node/keys/config.c: parsing, formatting, saving and loading corridor.conf. */
#include "support.h"
#include "config.h"
#include "identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ORIGIN "test.conf"

/* The first node block used by most texts: four lines. */
#define NODE_HEAD                                                                                  \
    "[node]\n"                                                                                     \
    "name = BKRURUMM\n"                                                                            \
    "listen = tcp://127.0.0.1:7001\n"                                                              \
    "currencies = RUB,IRR\n"

/* 33 known currency codes: one more than a node may accept. */
static const char *const codes[] = {
    "AED", "AFN", "AMD", "AZN", "BHD", "BRL", "BYN", "CHF", "CLP", "CNY", "EGP",
    "EUR", "GBP", "GEL", "HKD", "IDR", "INR", "IQD", "IRR", "ISK", "JOD", "JPY",
    "KGS", "KRW", "KWD", "KZT", "LYD", "MNT", "MYR", "OMR", "PKR", "QAR", "RUB",
};
_Static_assert(sizeof codes / sizeof codes[0] == CORRIDOR_CURRENCIES_MAX + 1, "33 codes");

/* Two peers' cards, made once for the group, and their keys as config text. */
static struct {
    peer_card_t card;
    char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    char box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
} peers[2];

/* Large enough for CORRIDOR_PEERS_MAX + 1 peer sections and a file one byte too large. */
#define TEXT_SIZE (CORRIDOR_CONFIG_BYTES_MAX + 64)

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) {
        return -1;
    }
    static const char *const names[] = {"BMJIIRTH", "BKCHCNBJ"};
    static const char *const endpoints[] = {"tcp://127.0.0.1:7002", "ipc:///tmp/corridor-b"};
    for (size_t i = 0; i < 2; i++) {
        identity_t *id = identity_generate();
        if (id == NULL) {
            return -1;
        }
        identity_card(id, names[i], endpoints[i], &peers[i].card);
        sodium_bin2hex(peers[i].sign_hex, sizeof peers[i].sign_hex, id->sign_public,
                       sizeof id->sign_public);
        sodium_bin2hex(peers[i].box_hex, sizeof peers[i].box_hex, id->box_public,
                       sizeof id->box_public);
        identity_destroy(&id);
    }
    return 0;
}

/* ---- helpers ---- */

/* Appends formatted text to a NUL-terminated buffer of TEXT_SIZE bytes. */
static void add(char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(char *text, const char *fmt, ...)
{
    size_t used = strlen(text);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + used, TEXT_SIZE - used, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < TEXT_SIZE - used);
}

/* Appends a [peer NAME] section with peer `which`'s keys (five lines), leaving out the key
 * `omit` (NULL: none). */
static void add_peer(char *text, const char *name, size_t which, const char *omit)
{
    add(text, "[peer %s]\n", name);
    const char *keys[] = {"endpoint", "sign", "box", "curve"};
    const char *values[] = {peers[which].card.endpoint, peers[which].sign_hex, peers[which].box_hex,
                            peers[which].card.curve_public};
    for (size_t i = 0; i < 4; i++) {
        if (omit == NULL || strcmp(omit, keys[i]) != 0) {
            add(text, "%s = %s\n", keys[i], values[i]);
        }
    }
}

static char *new_text(const char *start)
{
    char *text = calloc(1, TEXT_SIZE);
    assert_non_null(text);
    add(text, "%s", start);
    return text;
}

static bool config_is_zero(const config_t *c)
{
    const unsigned char *p = (const unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Whether err names line `line`, as "line N:" or as "ORIGIN:N:". */
static bool names_line(const char *err, int line)
{
    char a[32];
    char b[64];
    snprintf(a, sizeof a, "line %d:", line);
    snprintf(b, sizeof b, "%s:%d:", ORIGIN, line);
    return strstr(err, a) != NULL || strstr(err, b) != NULL;
}

/* Parses text expecting failure; the message must name the origin, `line` (if > 0) and contain
 * `want` (if not NULL); the config must come back zeroed. `owned` (may be NULL) is freed before
 * anything is asserted, so that a failing check leaks nothing. */
static void check_parse_error(const char *text, int line, const char *want, char *owned)
{
    config_t *c = config_new();
    assert_non_null(c);
    char err[512] = "";
    config_err_t rc = config_parse(text, ORIGIN, c, err, sizeof err);
    bool ok = rc == CONFIG_E_INVALID && strstr(err, ORIGIN) != NULL &&
              (line <= 0 || names_line(err, line)) && (want == NULL || strstr(err, want) != NULL);
    bool zeroed = config_is_zero(c);
    config_destroy(&c);
    free(owned);
    if (!ok) {
        print_error("config_parse: rc %d, err \"%s\"; want CONFIG_E_INVALID, line %d, \"%s\"\n", rc,
                    err, line, want != NULL ? want : "");
    }
    assert_int_equal(rc, CONFIG_E_INVALID);
    assert_true(ok);
    assert_true(zeroed);
}

static void assert_parse_error(const char *text, int line, const char *want)
{
    check_parse_error(text, line, want, NULL);
}

/* The same for a text from new_text, which it frees. */
static void assert_parse_error_free(char *text, int line, const char *want)
{
    check_parse_error(text, line, want, text);
}

/* Parses text expecting success; the caller destroys the result. */
static config_t *parse_ok(const char *text)
{
    config_t *c = config_new();
    assert_non_null(c);
    char err[512] = "";
    config_err_t rc = config_parse(text, ORIGIN, c, err, sizeof err);
    if (rc != 0) {
        print_error("config_parse: %s\n", err);
    }
    assert_int_equal(rc, 0);
    return c;
}

/* A config with two peers and limits, built through the API. */
static config_t *sample_config(void)
{
    config_t *c = config_new();
    assert_non_null(c);
    snprintf(c->name, sizeof c->name, "BKRURUMM");
    snprintf(c->listen, sizeof c->listen, "tcp://127.0.0.1:7001");
    snprintf(c->listen_stream, sizeof c->listen_stream, "tcp://127.0.0.1:7011");
    char err[256];
    assert_int_equal(config_set_currencies(c, "RUB,IRR,USD", err, sizeof err), 0);
    c->peers_count = 2;
    for (size_t i = 0; i < 2; i++) {
        c->peers[i].card = peers[i].card;
    }
    snprintf(c->peers[0].card.stream, sizeof c->peers[0].card.stream, "tcp://127.0.0.1:7012");
    assert_int_equal(config_peer_set_limit(&c->peers[0], "RUB", INT64_C(100000000)), 0);
    assert_int_equal(config_peer_set_limit(&c->peers[0], "IRR", 0), 0);
    assert_int_equal(config_peer_set_limit(&c->peers[1], "USD", CORRIDOR_AMOUNT_MINOR_MAX), 0);
    c->cycle_every = 2500;
    c->cycle_at_min_plus1 = 18 * 60 + 1; /* 18:00 */
    c->peers[0].cycle_every = CONFIG_CYCLE_EVERY_MAX;
    c->peers[1].cycle_at_min_plus1 = 0 * 60 + 1; /* 00:00 */
    return c;
}

static void assert_configs_equal(const config_t *a, const config_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->listen, b->listen);
    assert_string_equal(a->listen_stream, b->listen_stream);
    assert_int_equal(a->currencies_count, b->currencies_count);
    for (size_t i = 0; i < a->currencies_count; i++) {
        assert_string_equal(a->currencies[i], b->currencies[i]);
    }
    assert_int_equal(a->cycle_every, b->cycle_every);
    assert_int_equal(a->cycle_at_min_plus1, b->cycle_at_min_plus1);
    assert_int_equal(a->peers_count, b->peers_count);
    for (size_t i = 0; i < a->peers_count; i++) {
        const config_peer_t *p = &a->peers[i];
        const config_peer_t *q = &b->peers[i];
        assert_int_equal(p->cycle_every, q->cycle_every);
        assert_int_equal(p->cycle_at_min_plus1, q->cycle_at_min_plus1);
        assert_string_equal(p->card.name, q->card.name);
        assert_string_equal(p->card.endpoint, q->card.endpoint);
        assert_string_equal(p->card.stream, q->card.stream);
        assert_memory_equal(p->card.sign_public, q->card.sign_public, sizeof p->card.sign_public);
        assert_memory_equal(p->card.box_public, q->card.box_public, sizeof p->card.box_public);
        assert_string_equal(p->card.curve_public, q->card.curve_public);
        assert_int_equal(p->limits_count, q->limits_count);
        for (size_t j = 0; j < p->limits_count; j++) {
            assert_string_equal(p->limits[j].currency, q->limits[j].currency);
            assert_true(p->limits[j].minor == q->limits[j].minor);
        }
    }
}

/* ---- format, parse, save, load ---- */

static void test_format_parse_round_trip(void **state)
{
    (void)state;
    config_t *orig = sample_config();
    char *text = calloc(1, TEXT_SIZE);
    assert_non_null(text);
    size_t len = config_format(orig, text, TEXT_SIZE);
    assert_true(len > 0);
    assert_int_equal(len, strlen(text));
    config_t *parsed = parse_ok(text);
    assert_configs_equal(parsed, orig);
    assert_true(config_peer_limit(&parsed->peers[0], "RUB") == INT64_C(100000000));
    assert_true(config_peer_limit(&parsed->peers[1], "USD") == CORRIDOR_AMOUNT_MINOR_MAX);
    assert_non_null(strstr(text, "cycle_every = 2500\ncycle_at = 18:00\n"));
    assert_int_equal(config_cycle_every(parsed, "BMJIIRTH"), CONFIG_CYCLE_EVERY_MAX);
    assert_int_equal(config_cycle_at_min(parsed, "BMJIIRTH"), 18 * 60);
    assert_int_equal(config_cycle_every(parsed, "BKCHCNBJ"), 2500);
    assert_int_equal(config_cycle_at_min(parsed, "BKCHCNBJ"), 0);
    config_destroy(&parsed);
    config_destroy(&orig);
    free(text);
}

static void test_format_is_stable(void **state)
{
    (void)state;
    config_t *orig = sample_config();
    char *a = calloc(1, TEXT_SIZE);
    char *b = calloc(1, TEXT_SIZE);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(config_format(orig, a, TEXT_SIZE) > 0);
    config_t *parsed = parse_ok(a);
    assert_true(config_format(parsed, b, TEXT_SIZE) > 0);
    assert_string_equal(a, b);
    config_destroy(&parsed);
    config_destroy(&orig);
    free(a);
    free(b);
}

static void test_format_small_buffer(void **state)
{
    (void)state;
    config_t *c = sample_config();
    char *text = calloc(1, TEXT_SIZE);
    assert_non_null(text);
    size_t len = config_format(c, text, TEXT_SIZE);
    assert_true(len > 0);
    assert_int_equal(config_format(c, text, len), 0);
    assert_int_equal(config_format(c, text, len + 1), len);
    config_destroy(&c);
    free(text);
}

static void test_save_load_round_trip(void **state)
{
    char *path = test_path(*state, CONFIG_FILE);
    config_t *orig = sample_config();
    assert_int_equal(config_save(orig, path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, CONFIG_FILE_MODE);
    config_t *loaded = NULL;
    char err[512] = "";
    assert_int_equal(config_load(path, &loaded, err, sizeof err), 0);
    assert_non_null(loaded);
    assert_configs_equal(loaded, orig);
    config_destroy(&loaded);
    config_destroy(&orig);
    free(path);
}

static void test_save_replaces_and_sets_mode(void **state)
{
    char *path = test_path(*state, CONFIG_FILE);
    test_write_file(path, "# old\n", 6, 0644);
    config_t *c = sample_config();
    assert_int_equal(config_save(c, path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "# old"));
    assert_non_null(strstr(text, "[peer BMJIIRTH]"));
    free(text);
    config_destroy(&c);
    free(path);
}

static void test_save_missing_dir_fails(void **state)
{
    char *dir = test_path(*state, "absent");
    char *path = test_path(dir, CONFIG_FILE);
    config_t *c = sample_config();
    errno = 0;
    assert_int_equal(config_save(c, path), CONFIG_E_IO);
    assert_int_equal(errno, ENOENT);
    config_destroy(&c);
    free(path);
    free(dir);
}

static void test_load_missing_file(void **state)
{
    char *path = test_path(*state, CONFIG_FILE);
    static config_t sentinel;
    config_t *c = &sentinel; /* not NULL, to see it cleared */
    char err[512] = "";
    assert_int_equal(config_load(path, &c, err, sizeof err), CONFIG_E_IO);
    assert_null(c);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    free(path);
}

static void test_load_directory(void **state)
{
    config_t *c = NULL;
    char err[512] = "";
    assert_int_equal(config_load(*state, &c, err, sizeof err), CONFIG_E_IO);
    assert_null(c);
    assert_non_null(strstr(err, *state));
}

/* Writes a valid config padded with comment lines to exactly `total` bytes. */
static void write_padded_config(const char *path, size_t total)
{
    char *text = new_text(NODE_HEAD);
    size_t len = strlen(text);
    assert_true(total < TEXT_SIZE);
    while (len < total) {
        size_t line = total - len < 100 ? total - len : 100; /* including its newline */
        if (line == 1) {
            text[len++] = '\n';
            continue;
        }
        text[len] = '#';
        memset(text + len + 1, '-', line - 2);
        text[len + line - 1] = '\n';
        len += line;
    }
    text[len] = '\0';
    test_write_file(path, text, len, 0600);
    free(text);
}

static void test_load_64k_ok(void **state)
{
    char *path = test_path(*state, CONFIG_FILE);
    write_padded_config(path, CORRIDOR_CONFIG_BYTES_MAX);
    config_t *c = NULL;
    char err[512] = "";
    assert_int_equal(config_load(path, &c, err, sizeof err), 0);
    assert_non_null(c);
    assert_string_equal(c->name, "BKRURUMM");
    config_destroy(&c);
    free(path);
}

static void test_load_over_64k_refused(void **state)
{
    char *path = test_path(*state, CONFIG_FILE);
    write_padded_config(path, CORRIDOR_CONFIG_BYTES_MAX + 1);
    config_t *c = NULL;
    char err[512] = "";
    assert_int_equal(config_load(path, &c, err, sizeof err), CONFIG_E_INVALID);
    assert_null(c);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "larger than"));
    free(path);
}

static void test_load_reports_parse_error(void **state)
{
    char *path = test_path(*state, CONFIG_FILE);
    static const char text[] = "[node]\nname = BKRURUMM\nbogus = 1\n";
    test_write_file(path, text, sizeof text - 1, 0600);
    config_t *c = NULL;
    char err[512] = "";
    assert_int_equal(config_load(path, &c, err, sizeof err), CONFIG_E_INVALID);
    assert_null(c);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, "bogus"));
    free(path);
}

/* ---- parse: accepted texts ---- */

static void test_parse_minimal(void **state)
{
    (void)state;
    config_t *c = parse_ok(NODE_HEAD);
    assert_string_equal(c->name, "BKRURUMM");
    assert_string_equal(c->listen, "tcp://127.0.0.1:7001");
    assert_int_equal(c->currencies_count, 2);
    assert_string_equal(c->currencies[0], "RUB");
    assert_string_equal(c->currencies[1], "IRR");
    assert_int_equal(c->peers_count, 0);
    config_destroy(&c);
}

static void test_parse_comments_and_blank_lines(void **state)
{
    (void)state;
    config_t *c = parse_ok("# a comment\n; another\n\n[node]\n\nname = BKRURUMM\n"
                           "listen = ipc:///tmp/x\n# mid\ncurrencies = USD\n");
    assert_string_equal(c->listen, "ipc:///tmp/x");
    assert_true(config_accepts(c, "USD"));
    config_destroy(&c);
}

static void test_parse_limits(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "limit_minor.RUB = 0\nlimit_minor.IRR = %lld\n",
        (long long)CORRIDOR_AMOUNT_MINOR_MAX);
    config_t *c = parse_ok(text);
    assert_int_equal(c->peers_count, 1);
    const config_peer_t *p = config_find_peer_const(c, "BMJIIRTH");
    assert_non_null(p);
    assert_int_equal(p->limits_count, 2);
    assert_true(config_peer_limit(p, "RUB") == 0);
    assert_true(config_peer_limit(p, "IRR") == CORRIDOR_AMOUNT_MINOR_MAX);
    assert_true(config_peer_limit(p, "USD") == 0);
    config_destroy(&c);
    free(text);
}

static void test_parse_line_of_199_bytes_ok(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    char line[CORRIDOR_CONFIG_LINE_LEN_MAX + 1];
    line[0] = '#';
    memset(line + 1, 'x', CORRIDOR_CONFIG_LINE_LEN_MAX - 1);
    line[CORRIDOR_CONFIG_LINE_LEN_MAX] = '\0';
    add(text, "%s\n", line);
    config_t *c = parse_ok(text);
    assert_string_equal(c->name, "BKRURUMM");
    config_destroy(&c);
    free(text);
}

static void test_parse_64_peers_ok(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    for (int i = 0; i < CORRIDOR_PEERS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "PEER%03d", i);
        add_peer(text, name, (size_t)i % 2, NULL);
    }
    config_t *c = parse_ok(text);
    assert_int_equal(c->peers_count, CORRIDOR_PEERS_MAX);
    assert_non_null(config_find_peer(c, "PEER063"));
    config_destroy(&c);
    free(text);
}

/* ---- parse: refused texts, with the line at fault ---- */

static void test_parse_unknown_node_key(void **state)
{
    (void)state;
    assert_parse_error("[node]\nname = BKRURUMM\ncolor = blue\n", 3, "color");
}

static void test_parse_unknown_section(void **state)
{
    (void)state;
    assert_parse_error(NODE_HEAD "[bogus]\nkey = 1\n", 6, "bogus");
}

static void test_parse_unknown_section_two_keys(void **state)
{
    (void)state;
    /* The error is the section, at its first key, however many keys follow. */
    assert_parse_error(NODE_HEAD "[bogus]\nkey = 1\nother = 2\n", 6, "bogus");
}

static void test_parse_key_outside_section(void **state)
{
    (void)state;
    assert_parse_error("name = BKRURUMM\n" NODE_HEAD, 1, "outside");
}

static void test_parse_not_key_value(void **state)
{
    (void)state;
    assert_parse_error("[node]\nname BKRURUMM\n", 2, NULL);
}

/* checkpoint_every and checkpoint_interval_s: defaults, bounds, once each, kept by a save. */
static void test_parse_checkpoint_spacing(void **state)
{
    (void)state;
    config_t *c = parse_ok(NODE_HEAD);
    assert_int_equal(config_checkpoint_every(c), CONFIG_CHECKPOINT_EVERY_DEFAULT);
    assert_int_equal(config_checkpoint_interval_s(c), CONFIG_CHECKPOINT_INTERVAL_DEFAULT);
    config_destroy(&c);
    c = parse_ok(NODE_HEAD "checkpoint_every = 250\ncheckpoint_interval_s = 30\n");
    assert_int_equal(config_checkpoint_every(c), 250);
    assert_int_equal(config_checkpoint_interval_s(c), 30);
    char text[4096];
    assert_true(config_format(c, text, sizeof text) > 0);
    config_t *again = parse_ok(text);
    assert_int_equal(again->checkpoint_every, 250);
    assert_int_equal(again->checkpoint_interval_s, 30);
    config_destroy(&again);
    config_destroy(&c);
    assert_parse_error(NODE_HEAD "checkpoint_every = 0\n", 5, "whole number");
    assert_parse_error(NODE_HEAD "checkpoint_every = -5\n", 5, "whole number");
    assert_parse_error(NODE_HEAD "checkpoint_every = 12x\n", 5, "whole number");
    assert_parse_error(NODE_HEAD "checkpoint_interval_s = 99999999999\n", 5, "whole number");
    assert_parse_error(NODE_HEAD "checkpoint_every = 5\ncheckpoint_every = 6\n", 6, "twice");
}

/* cycle_every and cycle_at in [node]: off when absent, both bounds, kept by a save. */
static void test_parse_cycle(void **state)
{
    (void)state;
    config_t *c = parse_ok(NODE_HEAD);
    assert_int_equal(config_cycle_every(c, NULL), 0);
    assert_int_equal(config_cycle_at_min(c, NULL), -1);
    config_destroy(&c);
    const struct {
        const char *text;
        uint32_t every;
        int32_t at_min;
        const char *formatted;
    } cases[] = {
        {"cycle_every = 1\ncycle_at = 00:00\n", 1, 0, "cycle_every = 1\ncycle_at = 00:00\n"},
        {"cycle_at = 23:59\ncycle_every = 1000000000\n", CONFIG_CYCLE_EVERY_MAX, 23 * 60 + 59,
         "cycle_every = 1000000000\ncycle_at = 23:59\n"},
        {"cycle_at = 07:05\n", 0, 7 * 60 + 5, "cycle_at = 07:05\n"},
        {"cycle_every = 0042\n", 42, -1, "cycle_every = 42\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char node[512];
        snprintf(node, sizeof node, NODE_HEAD "%s", cases[i].text);
        c = parse_ok(node);
        assert_int_equal(config_cycle_every(c, NULL), cases[i].every);
        assert_int_equal(config_cycle_at_min(c, NULL), cases[i].at_min);
        char text[4096];
        assert_true(config_format(c, text, sizeof text) > 0);
        assert_non_null(strstr(text, cases[i].formatted));
        config_t *again = parse_ok(text);
        assert_int_equal(config_cycle_every(again, NULL), cases[i].every);
        assert_int_equal(config_cycle_at_min(again, NULL), cases[i].at_min);
        config_destroy(&again);
        config_destroy(&c);
    }
}

/* Bad cycle values are refused naming the key and its line, in [node] and in [peer X]. */
static void test_parse_cycle_refused(void **state)
{
    (void)state;
    static const char *const every_bad[] = {"0",   "1000000001", "-5", "+5",
                                            "12x", "1e3",        "",   "99999999999999999999999"};
    static const char *const at_bad[] = {"24:00", "7:30",  "12:60", "12:30x", "12:3", "1230",
                                         "12.30", " 2:30", "-1:30", "12:-1",  "",     "noon"};
    for (size_t i = 0; i < sizeof every_bad / sizeof every_bad[0]; i++) {
        char node[512];
        snprintf(node, sizeof node, NODE_HEAD "cycle_every = %s\n", every_bad[i]);
        assert_parse_error(node, 5, "cycle_every: not a whole number from 1 to 1000000000");
        char *text = new_text(NODE_HEAD);
        add_peer(text, "BMJIIRTH", 0, NULL); /* lines 5-9 */
        add(text, "cycle_every = %s\n", every_bad[i]);
        assert_parse_error_free(text, 10, "cycle_every: not a whole number");
    }
    for (size_t i = 0; i < sizeof at_bad / sizeof at_bad[0]; i++) {
        char node[512];
        snprintf(node, sizeof node, NODE_HEAD "cycle_at = %s\n", at_bad[i]);
        assert_parse_error(node, 5, "cycle_at: not a time of day HH:MM");
        char *text = new_text(NODE_HEAD);
        add_peer(text, "BMJIIRTH", 0, NULL);
        add(text, "cycle_at = %s\n", at_bad[i]);
        assert_parse_error_free(text, 10, "cycle_at: not a time of day HH:MM");
    }
    assert_parse_error(NODE_HEAD "cycle_every = 5\ncycle_every = 5\n", 6,
                       "cycle_every: given twice");
    assert_parse_error(NODE_HEAD "cycle_at = 01:00\ncycle_at = 02:00\n", 6,
                       "cycle_at: given twice");
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "cycle_every = 7\ncycle_every = 8\n");
    assert_parse_error_free(text, 11, "cycle_every: given twice");
    text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "cycle_at = 00:00\ncycle_at = 00:00\n"); /* 00:00 is set, not off */
    assert_parse_error_free(text, 11, "cycle_at: given twice");
    /* [node]'s and a peer's are not the same key given twice */
    text = new_text(NODE_HEAD "cycle_every = 5\ncycle_at = 12:00\n");
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "cycle_every = 6\ncycle_at = 13:00\n");
    config_t *c = parse_ok(text);
    free(text);
    assert_int_equal(config_cycle_every(c, "BMJIIRTH"), 6);
    config_destroy(&c);
}

/* A peer's cycle keys win over [node]'s, each on its own; NULL or an unknown peer: [node]'s. */
static void test_cycle_peer_override(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD "cycle_every = 500\ncycle_at = 18:00\n");
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "cycle_every = 20\ncycle_at = 06:30\n");
    add_peer(text, "BKCHCNBJ", 1, NULL);
    add(text, "cycle_at = 00:00\n");
    config_t *c = parse_ok(text);
    char *formatted = calloc(1, TEXT_SIZE);
    assert_non_null(formatted);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(config_cycle_every(c, NULL), 500);
        assert_int_equal(config_cycle_at_min(c, NULL), 18 * 60);
        assert_int_equal(config_cycle_every(c, "BMJIIRTH"), 20);
        assert_int_equal(config_cycle_at_min(c, "BMJIIRTH"), 6 * 60 + 30);
        assert_int_equal(config_cycle_every(c, "BKCHCNBJ"), 500); /* not set: [node]'s */
        assert_int_equal(config_cycle_at_min(c, "BKCHCNBJ"), 0);
        assert_int_equal(config_cycle_every(c, "BKCHCNBX"), 500);
        assert_int_equal(config_cycle_at_min(c, "BKCHCNBX"), 18 * 60);
        assert_int_equal(config_cycle_every(c, "BKRURUMM"), 500); /* this node: not a peer */
        /* the second round reads the text config_format wrote */
        assert_true(config_format(c, formatted, TEXT_SIZE) > 0);
        config_t *again = parse_ok(formatted);
        assert_configs_equal(again, c);
        config_destroy(&c);
        c = again;
    }
    config_destroy(&c);
    /* a peer's alone, with [node] off */
    free(text);
    text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "cycle_every = 3\n");
    c = parse_ok(text);
    assert_int_equal(config_cycle_every(c, "BMJIIRTH"), 3);
    assert_int_equal(config_cycle_at_min(c, "BMJIIRTH"), -1);
    assert_int_equal(config_cycle_every(c, NULL), 0);
    assert_int_equal(config_cycle_every(c, "BKCHCNBJ"), 0);
    config_destroy(&c);
    free(text);
    free(formatted);
}

static void test_parse_bad_name(void **state)
{
    (void)state;
    assert_parse_error("[node]\nname = bkrurumm\n", 2, "name");
    assert_parse_error("[node]\nname = BKR\n", 2, "name");
    assert_parse_error("[node]\nname = BKRURUMMXXXX\n", 2, "name");
}

static void test_parse_bad_listen(void **state)
{
    (void)state;
    assert_parse_error("[node]\nname = BKRURUMM\nlisten = udp://x:1\n", 3, "listen");
    assert_parse_error("[node]\nname = BKRURUMM\nlisten = tcp://host:0\n", 3, "listen");
    assert_parse_error("[node]\nname = BKRURUMM\nlisten_stream = udp://x:1\n", 3, "listen_stream");
    assert_parse_error("[node]\nname = BKRURUMM\nlisten = tcp://h:1\nlisten_stream = tcp://h:2\n"
                       "listen_stream = tcp://h:3\n",
                       5, "given twice");
    assert_parse_error("[node]\nname = BKRURUMM\nlisten = tcp://h:1\nlisten_stream = tcp://h:1\n"
                       "currencies = RUB\n",
                       0, "must differ");
}

static void test_parse_unknown_currency(void **state)
{
    (void)state;
    assert_parse_error(
        "[node]\nname = BKRURUMM\nlisten = tcp://127.0.0.1:7001\ncurrencies = RUB,XXX\n", 4, "XXX");
}

static void test_parse_duplicate_currency(void **state)
{
    (void)state;
    assert_parse_error(
        "[node]\nname = BKRURUMM\nlisten = tcp://127.0.0.1:7001\ncurrencies = RUB,IRR,RUB\n", 4,
        "RUB");
}

static void test_parse_peer_missing_curve_then_section(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, "curve"); /* lines 5-8 */
    add_peer(text, "BKCHCNBJ", 1, NULL);    /* lines 9-13, first key on line 10 */
    assert_parse_error_free(text, 10, "BMJIIRTH");
}

static void test_parse_peer_missing_each_key_at_end(void **state)
{
    (void)state;
    const char *keys[] = {"endpoint", "sign", "box", "curve"};
    for (size_t i = 0; i < 4; i++) {
        char *text = new_text(NODE_HEAD);
        add_peer(text, "BMJIIRTH", 0, keys[i]);
        assert_parse_error_free(text, 0, "BMJIIRTH");
    }
}

static void test_parse_peer_missing_key_at_end_names_a_line(void **state)
{
    (void)state;
    /* An incomplete last peer is reported with a real line number, not "line 0". */
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, "curve");
    config_t *c = config_new();
    assert_non_null(c);
    char err[512] = "";
    config_err_t rc = config_parse(text, ORIGIN, c, err, sizeof err);
    config_destroy(&c);
    free(text);
    if (strstr(err, "line 0") != NULL) {
        print_error("err: %s\n", err);
    }
    assert_int_equal(rc, CONFIG_E_INVALID);
    assert_non_null(strstr(err, "BMJIIRTH"));
    assert_null(strstr(err, "line 0"));
}

static void test_parse_peer_duplicated_key(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL); /* lines 5-9 */
    add(text, "box = %s\n", peers[0].box_hex);
    assert_parse_error_free(text, 10, "box");
}

static void test_parse_peer_name_key_refused(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "name = BMJIIRTH\n");
    assert_parse_error_free(text, 10, "name");
}

static void test_parse_peer_bad_field_value(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD "[peer BMJIIRTH]\nendpoint = tcp://127.0.0.1:7002\n");
    add(text, "sign = %064d\n", 0); /* hex, but not a valid Ed25519 point */
    assert_parse_error_free(text, 7, "sign");
}

static void test_parse_peer_bad_section_name(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "bmjiirth", 0, NULL);
    assert_parse_error_free(text, 6, "bmjiirth");
}

static void test_parse_peer_twice(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL); /* lines 5-9 */
    add_peer(text, "BKCHCNBJ", 1, NULL); /* lines 10-14 */
    add_peer(text, "BMJIIRTH", 1, NULL); /* lines 15-19 */
    assert_parse_error_free(text, 16, "BMJIIRTH");
}

/* The section checks below are also run with a section of one key, as the last line, so that
 * they are seen on their own, apart from the message of a later line. */

static void test_parse_peer_bad_section_name_one_key(void **state)
{
    (void)state;
    assert_parse_error(NODE_HEAD "[peer bmjiirth]\nendpoint = tcp://127.0.0.1:7002\n", 6,
                       "bmjiirth");
}

static void test_parse_peer_twice_one_key(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL); /* lines 5-9 */
    add_peer(text, "BKCHCNBJ", 1, NULL); /* lines 10-14 */
    add(text, "[peer BMJIIRTH]\nendpoint = tcp://127.0.0.1:7002\n");
    assert_parse_error_free(text, 16, "BMJIIRTH");
}

static void test_parse_peer_named_as_node_one_key(void **state)
{
    (void)state;
    assert_parse_error(NODE_HEAD "[peer BKRURUMM]\nendpoint = tcp://127.0.0.1:7002\n", 6,
                       "BKRURUMM");
}

static void test_parse_too_many_peers_one_key(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    for (int i = 0; i < CORRIDOR_PEERS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "PEER%03d", i);
        add_peer(text, name, (size_t)i % 2, NULL);
    }
    add(text, "[peer PEER064]\nendpoint = tcp://127.0.0.1:7002\n");
    assert_parse_error_free(text, 5 + CORRIDOR_PEERS_MAX * 5 + 1, "more than");
}

static void test_parse_peer_named_as_node(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BKRURUMM", 0, NULL);
    assert_parse_error_free(text, 6, "BKRURUMM");
}

static void test_parse_peer_named_as_node_before_node(void **state)
{
    (void)state;
    /* The same refusal must not depend on the order of the sections. */
    char *text = new_text("");
    add_peer(text, "BKRURUMM", 0, NULL);
    add(text, "%s", NODE_HEAD);
    assert_parse_error_free(text, 0, "BKRURUMM");
}

static void test_parse_too_many_peers(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    for (int i = 0; i <= CORRIDOR_PEERS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "PEER%03d", i);
        add_peer(text, name, (size_t)i % 2, NULL);
    }
    /* The 65th peer's section starts on line 5 + 64 * 5; its first key is one below. */
    assert_parse_error_free(text, 5 + CORRIDOR_PEERS_MAX * 5 + 1, "more than");
}

static void assert_limit_refused(const char *value)
{
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL); /* lines 5-9 */
    add(text, "limit_minor.RUB = %s\n", value);
    assert_parse_error_free(text, 10, "limit_minor.RUB");
}

static void test_parse_limit_negative(void **state)
{
    (void)state;
    assert_limit_refused("-1");
}

static void test_parse_limit_not_numeric(void **state)
{
    (void)state;
    assert_limit_refused("abc");
    assert_limit_refused("12abc");
    assert_limit_refused("1.5");
    assert_limit_refused("1e3");
    assert_limit_refused("0x10");
    assert_limit_refused("");
}

static void test_parse_limit_above_max(void **state)
{
    (void)state;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)CORRIDOR_AMOUNT_MINOR_MAX + 1);
    assert_limit_refused(v);
    assert_limit_refused("9223372036854775807");
    assert_limit_refused("99999999999999999999999");
}

static void test_parse_limit_unknown_currency(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    add_peer(text, "BMJIIRTH", 0, NULL);
    add(text, "limit_minor.XXX = 1\n");
    assert_parse_error_free(text, 10, "unknown currency");
}

static void test_parse_long_line(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    char line[CORRIDOR_CONFIG_LINE_LEN_MAX + 2];
    line[0] = '#';
    memset(line + 1, 'x', CORRIDOR_CONFIG_LINE_LEN_MAX);
    line[CORRIDOR_CONFIG_LINE_LEN_MAX + 1] = '\0'; /* 200 bytes */
    add(text, "%s\n", line);
    assert_parse_error_free(text, 5, "longer than");
}

static void test_parse_long_last_line_without_newline(void **state)
{
    (void)state;
    char *text = new_text(NODE_HEAD);
    char line[301];
    memset(line, ';', 300);
    line[300] = '\0';
    add(text, "%s", line);
    assert_parse_error_free(text, 5, "longer than");
}

static void test_parse_line_after_199_bytes_numbered(void **state)
{
    (void)state;
    /* A line at the limit must not shift the numbers of the lines after it. */
    char *text = new_text("[node]\n");
    char line[CORRIDOR_CONFIG_LINE_LEN_MAX + 1];
    line[0] = '#';
    memset(line + 1, 'x', CORRIDOR_CONFIG_LINE_LEN_MAX - 1);
    line[CORRIDOR_CONFIG_LINE_LEN_MAX] = '\0';
    add(text, "%s\n", line);                   /* line 2 */
    add(text, "name = BKRURUMM\ncolor = x\n"); /* lines 3, 4 */
    assert_parse_error_free(text, 4, "color");
}

static void test_parse_first_error_reported(void **state)
{
    (void)state;
    /* Two faults: the message is about the first one. */
    assert_parse_error("[node]\nname = bkr\nlisten = udp://x:1\n", 2, "name");
}

static void test_parse_missing_node_fields(void **state)
{
    (void)state;
    assert_parse_error("[node]\nname = BKRURUMM\nlisten = tcp://127.0.0.1:7001\n", 0, "[node]");
    assert_parse_error("[node]\nname = BKRURUMM\ncurrencies = RUB\n", 0, "listen");
    assert_parse_error("[node]\nlisten = tcp://127.0.0.1:7001\ncurrencies = RUB\n", 0, "name");
    assert_parse_error("", 0, "[node]");
    assert_parse_error("# nothing\n", 0, "[node]");
}

/* ---- the API ---- */

static void test_new_is_zeroed_and_destroy(void **state)
{
    (void)state;
    config_t *c = config_new();
    assert_non_null(c);
    assert_true(config_is_zero(c));
    /* every optional key of a zeroed config is unset: the cycle closes are off */
    assert_int_equal(config_cycle_every(c, NULL), 0);
    assert_int_equal(config_cycle_at_min(c, NULL), -1);
    config_destroy(&c);
    assert_null(c);
    config_destroy(&c); /* safe on NULL */
    assert_null(c);
}

static void test_find_peer(void **state)
{
    (void)state;
    config_t *c = sample_config();
    assert_ptr_equal(config_find_peer(c, "BMJIIRTH"), &c->peers[0]);
    assert_ptr_equal(config_find_peer_const(c, "BKCHCNBJ"), &c->peers[1]);
    assert_null(config_find_peer(c, "BKRURUMM"));
    assert_null(config_find_peer(c, "bmjiirth"));
    assert_null(config_find_peer_const(c, ""));
    config_destroy(&c);
}

static void test_peer_limit_absent_is_zero(void **state)
{
    (void)state;
    config_peer_t peer;
    memset(&peer, 0, sizeof peer);
    assert_true(config_peer_limit(&peer, "RUB") == 0);
    assert_int_equal(config_peer_set_limit(&peer, "RUB", 500), 0);
    assert_true(config_peer_limit(&peer, "RUB") == 500);
    assert_true(config_peer_limit(&peer, "IRR") == 0);
}

static void test_peer_set_limit_replaces(void **state)
{
    (void)state;
    config_peer_t peer;
    memset(&peer, 0, sizeof peer);
    assert_int_equal(config_peer_set_limit(&peer, "RUB", 500), 0);
    assert_int_equal(config_peer_set_limit(&peer, "IRR", 7), 0);
    assert_int_equal(config_peer_set_limit(&peer, "RUB", 900), 0);
    assert_int_equal(peer.limits_count, 2);
    assert_true(config_peer_limit(&peer, "RUB") == 900);
    assert_true(config_peer_limit(&peer, "IRR") == 7);
    assert_int_equal(config_peer_set_limit(&peer, "RUB", 0), 0);
    assert_true(config_peer_limit(&peer, "RUB") == 0);
    assert_int_equal(peer.limits_count, 2);
}

static void test_peer_set_limit_table_full(void **state)
{
    (void)state;
    config_peer_t peer;
    memset(&peer, 0, sizeof peer);
    for (size_t i = 0; i < CORRIDOR_CURRENCIES_MAX; i++) {
        assert_int_equal(config_peer_set_limit(&peer, codes[i], (int64_t)i), 0);
    }
    assert_int_equal(config_peer_set_limit(&peer, codes[CORRIDOR_CURRENCIES_MAX], 1),
                     CONFIG_E_FULL);
    assert_int_equal(peer.limits_count, CORRIDOR_CURRENCIES_MAX);
    /* Replacing one already there still works. */
    assert_int_equal(config_peer_set_limit(&peer, codes[0], 42), 0);
    assert_true(config_peer_limit(&peer, codes[0]) == 42);
}

static void assert_currencies_refused(const char *list)
{
    config_t *c = config_new();
    assert_non_null(c);
    char err[256] = "";
    if (config_set_currencies(c, list, err, sizeof err) != CONFIG_E_INVALID) {
        print_error("config_set_currencies(\"%s\") accepted\n", list);
        fail();
    }
    assert_true(strlen(err) > 0);
    config_destroy(&c);
}

static void test_set_currencies_refused(void **state)
{
    (void)state;
    assert_currencies_refused("");
    assert_currencies_refused("RUB,");
    assert_currencies_refused(",RUB");
    assert_currencies_refused("RUB,,IRR");
    assert_currencies_refused("RUB,RUB");
    assert_currencies_refused("rub");
    assert_currencies_refused("RUBX");
    assert_currencies_refused("RU");
    assert_currencies_refused("RUB, IRR");
    assert_currencies_refused("XXX");
    assert_currencies_refused("RUBRUBRUBRUB");
}

static void test_set_currencies_accepts(void **state)
{
    (void)state;
    config_t *c = config_new();
    assert_non_null(c);
    char err[256] = "";
    assert_int_equal(config_set_currencies(c, "RUB,IRR,USD", err, sizeof err), 0);
    assert_int_equal(c->currencies_count, 3);
    assert_string_equal(c->currencies[0], "RUB");
    assert_string_equal(c->currencies[1], "IRR");
    assert_string_equal(c->currencies[2], "USD");
    /* A second call replaces the list. */
    assert_int_equal(config_set_currencies(c, "CNY", err, sizeof err), 0);
    assert_int_equal(c->currencies_count, 1);
    assert_string_equal(c->currencies[0], "CNY");
    config_destroy(&c);
}

static void test_set_currencies_count_limit(void **state)
{
    (void)state;
    char list[4 * (CORRIDOR_CURRENCIES_MAX + 1) + 1] = "";
    for (size_t i = 0; i < CORRIDOR_CURRENCIES_MAX; i++) {
        strcat(list, i > 0 ? "," : "");
        strcat(list, codes[i]);
    }
    config_t *c = config_new();
    assert_non_null(c);
    char err[256] = "";
    assert_int_equal(config_set_currencies(c, list, err, sizeof err), 0);
    assert_int_equal(c->currencies_count, CORRIDOR_CURRENCIES_MAX);
    strcat(list, ",");
    strcat(list, codes[CORRIDOR_CURRENCIES_MAX]);
    assert_int_equal(config_set_currencies(c, list, err, sizeof err), CONFIG_E_INVALID);
    config_destroy(&c);
}

static void test_accepts(void **state)
{
    (void)state;
    config_t *c = sample_config();
    assert_true(config_accepts(c, "RUB"));
    assert_true(config_accepts(c, "IRR"));
    assert_true(config_accepts(c, "USD"));
    assert_false(config_accepts(c, "EUR"));
    assert_false(config_accepts(c, "rub"));
    assert_false(config_accepts(c, ""));
    config_destroy(&c);
}

int main(void)
{
#define T(f)  cmocka_unit_test(f)
#define TD(f) cmocka_unit_test_setup_teardown(f, test_dir_setup, test_dir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_format_parse_round_trip),
        T(test_format_is_stable),
        T(test_format_small_buffer),
        TD(test_save_load_round_trip),
        TD(test_save_replaces_and_sets_mode),
        TD(test_save_missing_dir_fails),
        TD(test_load_missing_file),
        TD(test_load_directory),
        TD(test_load_64k_ok),
        TD(test_load_over_64k_refused),
        TD(test_load_reports_parse_error),
        T(test_parse_minimal),
        T(test_parse_comments_and_blank_lines),
        T(test_parse_limits),
        T(test_parse_line_of_199_bytes_ok),
        T(test_parse_64_peers_ok),
        T(test_parse_unknown_node_key),
        T(test_parse_unknown_section),
        T(test_parse_unknown_section_two_keys),
        T(test_parse_key_outside_section),
        T(test_parse_not_key_value),
        T(test_parse_checkpoint_spacing),
        T(test_parse_cycle),
        T(test_parse_cycle_refused),
        T(test_cycle_peer_override),
        T(test_parse_bad_name),
        T(test_parse_bad_listen),
        T(test_parse_unknown_currency),
        T(test_parse_duplicate_currency),
        T(test_parse_peer_missing_curve_then_section),
        T(test_parse_peer_missing_each_key_at_end),
        T(test_parse_peer_missing_key_at_end_names_a_line),
        T(test_parse_peer_duplicated_key),
        T(test_parse_peer_name_key_refused),
        T(test_parse_peer_bad_field_value),
        T(test_parse_peer_bad_section_name),
        T(test_parse_peer_twice),
        T(test_parse_peer_bad_section_name_one_key),
        T(test_parse_peer_twice_one_key),
        T(test_parse_peer_named_as_node_one_key),
        T(test_parse_too_many_peers_one_key),
        T(test_parse_peer_named_as_node),
        T(test_parse_peer_named_as_node_before_node),
        T(test_parse_too_many_peers),
        T(test_parse_limit_negative),
        T(test_parse_limit_not_numeric),
        T(test_parse_limit_above_max),
        T(test_parse_limit_unknown_currency),
        T(test_parse_long_line),
        T(test_parse_long_last_line_without_newline),
        T(test_parse_line_after_199_bytes_numbered),
        T(test_parse_first_error_reported),
        T(test_parse_missing_node_fields),
        T(test_new_is_zeroed_and_destroy),
        T(test_find_peer),
        T(test_peer_limit_absent_is_zero),
        T(test_peer_set_limit_replaces),
        T(test_peer_set_limit_table_full),
        T(test_set_currencies_refused),
        T(test_set_currencies_accepts),
        T(test_set_currencies_count_limit),
        T(test_accepts),
    };
#undef T
#undef TD
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
