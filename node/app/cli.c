/*
 * The `corridor` command line; see cli.h.
 *
 * One function per subcommand, each parsing its own options with getopt_long. Messages to
 * the user go to stderr as one line starting with "corridor <command>:"; results go to
 * stdout (human text, or one JSON document with --json).
 */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "fsutil.h"
#include "home.h"
#include "identity.h"
#include "ledger.h"
#include "validate.h"

#define DEFAULT_CURRENCIES "RUB,IRR"

static const char *command_name = "corridor";

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", command_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Reports a getopt error (unknown option, missing argument) as one line. */
static int usage_error(char **argv, const char *usage)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    complain("bad option or missing value near '%s'; usage: %s", arg, usage);
    return EXIT_USAGE;
}

/* Positional arguments left after options are a usage error unless expected. */
static int no_positional(int argc, char **argv, const char *usage)
{
    if (optind < argc) {
        complain("unexpected argument '%s'; usage: %s", argv[optind], usage);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int resolve_home(home_t *home, const char *option)
{
    if (home_resolve(home, option) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Checks that a home exists and can be read, saying which it is not. */
static int require_home(const home_t *home)
{
    if (access(home->config_path, R_OK) == 0) {
        return EXIT_OK;
    }
    if (errno == EACCES) {
        complain("%s: permission denied (the home belongs to another user? run corridor as "
                 "its owner)",
                 home->dir);
    } else {
        complain("no Corridor home at %s (no %s); create one with `corridor init`", home->dir,
                 CONFIG_FILE);
    }
    return EXIT_USAGE;
}

/* Loads the config of an existing home. */
static int load_config(const home_t *home, config_t **config)
{
    int rc = require_home(home);
    if (rc != EXIT_OK) {
        return rc;
    }
    char err[512];
    if (config_load(home->config_path, config, err, sizeof err) != 0) {
        complain("%s", err);
        return EXIT_USAGE; /* a malformed config is bad input */
    }
    return EXIT_OK;
}

/* Loads the node's keys, explaining how to fix a key file with loose permissions. */
static int load_identity(const home_t *home, identity_t **identity)
{
    id_err_t rc = identity_load(home->key_path, identity);
    if (rc == ID_OK) {
        return EXIT_OK;
    }
    struct stat st;
    unsigned mode = stat(home->key_path, &st) == 0 ? (unsigned)(st.st_mode & 0777) : 0;
    switch (rc) {
    case ID_E_PERMISSIONS:
        complain("%s is accessible by group or others (mode %03o); secret keys must be private: "
                 "chmod 600 %s",
                 home->key_path, mode, home->key_path);
        return EXIT_USAGE;
    case ID_E_OWNER:
        complain("%s belongs to another user; run corridor as its owner", home->key_path);
        return EXIT_USAGE;
    case ID_E_IO:
        complain("%s: %s: %s", home->key_path, id_strerror(rc), strerror(errno));
        return EXIT_INTERNAL;
    default:
        complain("%s: %s", home->key_path, id_strerror(rc));
        return EXIT_INTERNAL;
    }
}

/* This node's card, as its config says where it listens. */
static void node_card(const identity_t *identity, const config_t *config, peer_card_t *card)
{
    identity_card(identity, config->name, config->listen, card);
    snprintf(card->stream, sizeof card->stream, "%s", config->listen_stream);
}

static void print_card(const peer_card_t *card)
{
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    size_t n = card_encode(card, line, sizeof line);
    assert(n > 0);
    printf("%s\n", line);
}

/* ---- corridor init ------------------------------------------------------------------- */

#define INIT_USAGE                                                                                 \
    "corridor init --home DIR --name CODE --listen ENDPOINT [--listen-stream ENDPOINT]\n"          \
    "              [--currencies " DEFAULT_CURRENCIES "]"

static int cmd_init(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"name", required_argument, NULL, 'n'},
                                            {"listen", required_argument, NULL, 'l'},
                                            {"listen-stream", required_argument, NULL, 's'},
                                            {"currencies", required_argument, NULL, 'c'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *home_opt = NULL, *name = NULL, *listen = NULL, *listen_stream = NULL;
    const char *currencies = DEFAULT_CURRENCIES;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            home_opt = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 's':
            listen_stream = optarg;
            break;
        case 'c':
            currencies = optarg;
            break;
        case '?' + 256:
            printf("usage: %s\n"
                   "Creates a node's home: keys (mode 0600), config; prints its peer card.\n"
                   "Peers send the sequenced stream to --listen-stream (small frames; by default\n"
                   "the next port after --listen, or the ipc path with -stream appended) and\n"
                   "statements to --listen.\n"
                   "Example: corridor init --home bank-a --name BKRURUMM "
                   "--listen tcp://127.0.0.1:7001 > bank-a.card\n",
                   INIT_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, INIT_USAGE);
        }
    }
    int rc = no_positional(argc, argv, INIT_USAGE);
    if (rc != EXIT_OK) {
        return rc;
    }
    if (name == NULL || listen == NULL) {
        complain("--name and --listen are required; usage: %s", INIT_USAGE);
        return EXIT_USAGE;
    }
    valid_err_t verr = node_code_check(name);
    if (verr != VALID_OK) {
        complain("--name %s: %s (a node code is 4-11 of A-Z, 0-9, starting with a letter)", name,
                 valid_strerror(verr));
        return EXIT_USAGE;
    }
    if (!endpoint_valid(listen)) {
        complain("--listen %s: not tcp://HOST:PORT or ipc://PATH", listen);
        return EXIT_USAGE;
    }
    char stream_default[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    if (listen_stream == NULL) {
        if (!endpoint_stream_default(listen, stream_default, sizeof stream_default)) {
            complain("--listen %s: no next port or path for the stream; give --listen-stream",
                     listen);
            return EXIT_USAGE;
        }
        listen_stream = stream_default;
    }
    if (!endpoint_valid(listen_stream) || strcmp(listen_stream, listen) == 0) {
        complain("--listen-stream %s: not tcp://HOST:PORT or ipc://PATH other than --listen",
                 listen_stream);
        return EXIT_USAGE;
    }
    home_t home;
    config_t *config = config_new();
    identity_t *identity = NULL;
    char err[256];
    bool created = false;
    if (config == NULL) {
        complain("out of memory");
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    if ((rc = resolve_home(&home, home_opt)) != EXIT_OK) {
        goto cleanup;
    }
    if (config_set_currencies(config, currencies, err, sizeof err) != 0) {
        complain("--%s", err);
        rc = EXIT_USAGE;
        goto cleanup;
    }
    strcpy(config->name, name);
    strcpy(config->listen, listen);
    strcpy(config->listen_stream, listen_stream);
    if (home_create(&home) != 0) {
        if (errno == EEXIST) {
            complain("%s already exists and is not empty; refusing to overwrite a home", home.dir);
            rc = EXIT_USAGE;
        } else {
            complain("cannot create %s: %s", home.dir, strerror(errno));
            rc = EXIT_INTERNAL;
        }
        goto cleanup;
    }
    created = true;
    identity = identity_generate();
    if (identity == NULL) {
        complain("cannot generate keys (out of locked memory?)");
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    if (identity_save(identity, home.key_path) != ID_OK) {
        complain("cannot write %s: %s", home.key_path, strerror(errno));
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    char ledger_path[CORRIDOR_PATH_LEN_MAX];
    ledger_t *ledger = NULL;
    if (fs_join(ledger_path, sizeof ledger_path, home.dir, LEDGER_FILE) != 0 ||
        ledger_open(ledger_path, config->name, LEDGER_READ_WRITE, NULL, &ledger, err, sizeof err) !=
            LEDGER_OK) {
        complain("cannot create the ledger in %s: %s", home.dir, err);
        unlink(home.key_path);
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    ledger_close(&ledger);
    /* The config is written last: a home with a config is a complete home. */
    if (config_save(config, home.config_path) != 0) {
        complain("cannot write %s: %s", home.config_path, strerror(errno));
        unlink(home.key_path);
        unlink(ledger_path);
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    peer_card_t card;
    node_card(identity, config, &card);
    print_card(&card);
    rc = EXIT_OK;

cleanup:
    if (rc != EXIT_OK && created) {
        rmdir(home.dir); /* only succeeds if nothing was left in it */
    }
    identity_destroy(&identity);
    config_destroy(&config);
    return rc;
}

/* The options of a command that takes only --home, --json and --help: -1 to go on, else the
 * exit code (after --help, or a usage error). */
static int home_json_options(int argc, char **argv, const char *usage, const char *help,
                             const char **home_opt, bool *json)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            *home_opt = optarg;
            break;
        case 'j':
            *json = true;
            break;
        case '?' + 256:
            printf("usage: %s\n%s", usage, help);
            return EXIT_OK;
        default:
            return usage_error(argv, usage);
        }
    }
    int rc = no_positional(argc, argv, usage);
    return rc == EXIT_OK ? -1 : rc;
}

/* ---- corridor card ------------------------------------------------------------------- */

#define CARD_USAGE "corridor card --home DIR [--json]"

/* Prints a document as indented JSON on stdout, taking it over. */
static int print_document(json_t *doc)
{
    if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        json_decref(doc);
        complain("cannot write JSON");
        return EXIT_INTERNAL;
    }
    putchar('\n');
    json_decref(doc);
    return EXIT_OK;
}

static int print_card_json(const peer_card_t *card)
{
    char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    char box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    sodium_bin2hex(sign_hex, sizeof sign_hex, card->sign_public, sizeof card->sign_public);
    sodium_bin2hex(box_hex, sizeof box_hex, card->box_public, sizeof card->box_public);
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", card->name, "endpoint", card->endpoint,
                  "stream_endpoint", card_stream_endpoint(card), "sign_public", sign_hex,
                  "box_public", box_hex, "curve_public", card->curve_public);
    return print_document(doc);
}

static int cmd_card(int argc, char **argv)
{
    const char *home_opt = NULL;
    bool json = false;
    int rc = home_json_options(argc, argv, CARD_USAGE,
                               "Prints this node's peer card (give it to peers).\nExample: "
                               "corridor card --home bank-a > bank-a.card\n",
                               &home_opt, &json);
    if (rc >= 0) {
        return rc;
    }
    home_t home;
    config_t *config = NULL;
    identity_t *identity = NULL;
    if ((rc = resolve_home(&home, home_opt)) != EXIT_OK ||
        (rc = load_config(&home, &config)) != EXIT_OK ||
        (rc = load_identity(&home, &identity)) != EXIT_OK) {
        goto cleanup;
    }
    peer_card_t card;
    node_card(identity, config, &card);
    if (json) {
        rc = print_card_json(&card);
    } else {
        print_card(&card);
    }

cleanup:
    identity_destroy(&identity);
    config_destroy(&config);
    return rc;
}

/* ---- corridor peer add --------------------------------------------------------------- */

#define PEER_ADD_USAGE "corridor peer add --home DIR \"CARD\" [--limit CCY=AMOUNT]..."

/* Applies one --limit CCY=AMOUNT (a decimal in currency units) to a peer. */
static int apply_limit(const config_t *config, config_peer_t *peer, const char *arg,
                       unsigned *given)
{
    const char *eq = strchr(arg, '=');
    char code[8];
    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof code) {
        complain("--limit %s: expected CCY=AMOUNT, e.g. RUB=1000000", arg);
        return EXIT_USAGE;
    }
    memcpy(code, arg, (size_t)(eq - arg));
    code[eq - arg] = '\0';
    const currency_t *c = currency_find(code);
    if (c == NULL) {
        complain("--limit %s: unknown currency %s", arg, code);
        return EXIT_USAGE;
    }
    if (!config_accepts(config, c->code)) {
        complain("--limit %s: this node does not accept %s (its currencies are set at init)", arg,
                 c->code);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < config->currencies_count; i++) {
        if (strcmp(config->currencies[i], c->code) == 0) {
            if (*given & (1u << i)) {
                complain("--limit %s: %s is given twice", arg, c->code);
                return EXIT_USAGE;
            }
            *given |= 1u << i;
        }
    }
    int64_t minor = 0;
    valid_err_t verr = amount_parse(eq + 1, c, true, &minor);
    if (verr != VALID_OK) {
        complain("--limit %s: %s", arg, valid_strerror(verr));
        return EXIT_USAGE;
    }
    config_err_t set = config_peer_set_limit(peer, c->code, minor);
    assert(set == CONFIG_OK); /* a peer's table holds every currency */
    return EXIT_OK;
}

static int cmd_peer_add(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"limit", required_argument, NULL, 'L'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *home_opt = NULL;
    const char *limits[CORRIDOR_CURRENCIES_MAX];
    size_t limits_count = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            home_opt = optarg;
            break;
        case 'L':
            if (limits_count == CORRIDOR_CURRENCIES_MAX) {
                complain("more than %d --limit options", CORRIDOR_CURRENCIES_MAX);
                return EXIT_USAGE;
            }
            limits[limits_count++] = optarg;
            break;
        case '?' + 256:
            printf("usage: %s\nTrusts a peer from its card (one argument); --limit is the net "
                   "debit cap granted to it, in currency units (none: 0, no credit).\n",
                   PEER_ADD_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, PEER_ADD_USAGE);
        }
    }
    if (argc - optind != 1) {
        complain("expected exactly one card argument (quote it); usage: %s", PEER_ADD_USAGE);
        return EXIT_USAGE;
    }
    peer_card_t card;
    card_err_t cerr = card_parse(argv[optind], &card);
    if (cerr != CARD_OK) {
        complain("%s", card_strerror(cerr));
        return EXIT_USAGE;
    }
    home_t home;
    config_t *config = NULL;
    identity_t *identity = NULL;
    int rc = resolve_home(&home, home_opt);
    if (rc != EXIT_OK || (rc = load_config(&home, &config)) != EXIT_OK ||
        (rc = load_identity(&home, &identity)) != EXIT_OK) {
        goto cleanup;
    }
    rc = EXIT_USAGE;
    if (strcmp(card.name, config->name) == 0 ||
        sodium_memcmp(card.sign_public, identity->sign_public, sizeof card.sign_public) == 0) {
        complain("that is this node's own card; a node cannot be its own peer");
        goto cleanup;
    }
    for (size_t i = 0; i < config->peers_count; i++) {
        const peer_card_t *known = &config->peers[i].card;
        if (strcmp(known->name, card.name) == 0 ||
            sodium_memcmp(known->sign_public, card.sign_public, sizeof card.sign_public) == 0) {
            complain("peer %s is already trusted (as %s)", card.name, known->name);
            goto cleanup;
        }
    }
    if (config->peers_count == CORRIDOR_PEERS_MAX) {
        complain("this node already has the maximum of %d peers", CORRIDOR_PEERS_MAX);
        goto cleanup;
    }
    config_peer_t *peer = &config->peers[config->peers_count++];
    memset(peer, 0, sizeof *peer);
    peer->card = card;
    unsigned given = 0;
    for (size_t i = 0; i < limits_count; i++) {
        if ((rc = apply_limit(config, peer, limits[i], &given)) != EXIT_OK) {
            goto cleanup;
        }
    }
    if (config_save(config, home.config_path) != 0) {
        complain("cannot write %s: %s", home.config_path, strerror(errno));
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    printf("trusted peer %s at %s\n", card.name, card.endpoint);
    rc = EXIT_OK;

cleanup:
    identity_destroy(&identity);
    config_destroy(&config);
    return rc;
}

/* ---- corridor ledger ------------------------------------------------------------------ */

#define LEDGER_USAGE "corridor ledger --home DIR [--json]"

/* Opens the home's ledger read-only (the node may be running). */
static int open_ledger_ro(const home_t *home, const config_t *config, ledger_t **ledger);

/* The home named by --home (or the default), its config and its ledger read-only: what a
 * command reading the books needs. On failure the caller still closes both. */
static int open_books_ro(const char *home_opt, config_t **config, ledger_t **ledger)
{
    home_t home;
    int rc;
    if ((rc = resolve_home(&home, home_opt)) != EXIT_OK ||
        (rc = load_config(&home, config)) != EXIT_OK) {
        return rc;
    }
    return open_ledger_ro(&home, *config, ledger);
}

static int open_ledger_ro(const home_t *home, const config_t *config, ledger_t **ledger)
{
    char path[CORRIDOR_PATH_LEN_MAX], err[512];
    if (fs_join(path, sizeof path, home->dir, LEDGER_FILE) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    if (ledger_open(path, config->name, LEDGER_READ_ONLY, NULL, ledger, err, sizeof err) !=
        LEDGER_OK) {
        complain("%s: %s", path, err);
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

static uint8_t currency_exponent(const char *code)
{
    const currency_t *c = currency_find(code);
    return c != NULL ? c->exponent : 0;
}

static void print_position_json(const ledger_position_t *p, void *arg)
{
    json_t *list = arg;
    json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:I}", "peer", p->peer, "currency",
                                          p->currency, "net_minor", (json_int_t)p->net_minor,
                                          "pending_minor", (json_int_t)p->pending_minor));
}

static void print_position_text(const ledger_position_t *p, void *arg)
{
    (void)arg;
    char net[32], pending[32];
    uint8_t exp = currency_exponent(p->currency);
    amount_format(p->net_minor, exp, net, sizeof net);
    amount_format(p->pending_minor, exp, pending, sizeof pending);
    printf("  %-11s %-4s %22s %22s\n", p->peer, p->currency, net, pending);
}

/* Streams one settlement as a JSON array element (the list may hold millions). */
static void print_settlement_json(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    bool *first = arg;
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "uetr", s->uetr, "peer", s->peer,
                  "direction", direction_name(s->direction), "currency", s->currency,
                  "amount_minor", (json_int_t)s->amount_minor, "status", status_name(o->status),
                  "reason", o->reason[0] != '\0' ? json_string(o->reason) : json_null());
    if (item == NULL) {
        return;
    }
    fputs(*first ? "\n    " : ",\n    ", stdout);
    *first = false;
    json_dumpf(item, stdout, JSON_COMPACT);
    json_decref(item);
}

static int ledger_json(ledger_t *ledger, const char *node)
{
    uint8_t head[LEDGER_HASH_BYTES];
    char head_hex[2 * LEDGER_HASH_BYTES + 1];
    uint64_t rows = 0;
    ledger_counts_t counts;
    json_t *positions = json_array();
    if (positions == NULL || ledger_head(ledger, head, &rows) != LEDGER_OK ||
        ledger_positions(ledger, print_position_json, positions) != LEDGER_OK ||
        ledger_counts(ledger, &counts) != LEDGER_OK) {
        json_decref(positions);
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    sodium_bin2hex(head_hex, sizeof head_hex, head, sizeof head);
    json_t *top =
        json_pack("{s:s, s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I}}", "node", node, "head", head_hex,
                  "journal_rows", (json_int_t)rows, "positions", positions, "counts", "pending",
                  (json_int_t)counts.pending, "settled", (json_int_t)counts.settled, "rejected",
                  (json_int_t)counts.rejected, "returned", (json_int_t)counts.returned);
    char *text = top != NULL ? json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(top);
    if (text == NULL) {
        complain("out of memory");
        return EXIT_INTERNAL;
    }
    /* the object without its closing brace, then the settlements streamed */
    char *close = strrchr(text, '}');
    assert(close != NULL);
    while (close > text && (close[-1] == '\n' || close[-1] == ' ')) {
        close--;
    }
    *close = '\0';
    fputs(text, stdout);
    free(text);
    fputs(",\n  \"settlements\": [", stdout);
    bool first = true;
    ledger_err_t rc = ledger_settlements(ledger, print_settlement_json, &first);
    fputs(first ? "]\n}\n" : "\n  ]\n}\n", stdout);
    if (rc != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

static int ledger_text(ledger_t *ledger, const char *node)
{
    uint8_t head[LEDGER_HASH_BYTES];
    char head_hex[2 * LEDGER_HASH_BYTES + 1];
    uint64_t rows = 0;
    ledger_counts_t counts;
    if (ledger_head(ledger, head, &rows) != LEDGER_OK ||
        ledger_counts(ledger, &counts) != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    sodium_bin2hex(head_hex, sizeof head_hex, head, sizeof head);
    printf("node %s: %llu journal rows, head %.16s...\n", node, (unsigned long long)rows, head_hex);
    printf("settlements: %llu pending, %llu settled, %llu rejected, %llu returned\n",
           (unsigned long long)counts.pending, (unsigned long long)counts.settled,
           (unsigned long long)counts.rejected, (unsigned long long)counts.returned);
    printf("positions (net: what the peer owes us; pending: change once settled)\n"
           "  %-11s %-4s %22s %22s\n",
           "peer", "ccy", "net", "pending");
    if (ledger_positions(ledger, print_position_text, NULL) != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

static int cmd_ledger(int argc, char **argv)
{
    const char *home_opt = NULL;
    bool json = false;
    int rc = home_json_options(
        argc, argv, LEDGER_USAGE,
        "Positions, counts and (with --json) every settlement; works with the node running or "
        "stopped.\nExample: corridor ledger --home bank-a --json\n",
        &home_opt, &json);
    if (rc >= 0) {
        return rc;
    }
    config_t *config = NULL;
    ledger_t *ledger = NULL;
    if ((rc = open_books_ro(home_opt, &config, &ledger)) != EXIT_OK) {
        goto cleanup;
    }
    rc = json ? ledger_json(ledger, config->name) : ledger_text(ledger, config->name);

cleanup:
    ledger_close(&ledger);
    config_destroy(&config);
    return rc;
}

/* ---- corridor operations -------------------------------------------------------------- */

#define OPERATIONS_USAGE "corridor operations --home DIR [--json]"

typedef struct {
    json_t *list; /* --json: the records, else NULL (printed as they come) */
    size_t count;
} operations_out_t;

static void print_operation(const ledger_operation_t *op, void *arg)
{
    operations_out_t *out = arg;
    out->count++;
    json_t *record = json_loads(op->record, 0, NULL);
    if (out->list != NULL) {
        json_array_append_new(out->list,
                              json_pack("{s:I, s:s, s:I, s:o}", "row", (json_int_t)op->seq, "peer",
                                        op->peer, "recorded_ms", (json_int_t)op->created_ms,
                                        "record", record != NULL ? record : json_null()));
        return;
    }
    char when[32];
    time_t secs = (time_t)(op->created_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(when, sizeof when, "(time %lld ms)", (long long)op->created_ms);
    }
    char *args = json_dumps(json_object_get(record, "args"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("row %lld  %s  uid %lld (%s)  %s  %s\n", (long long)op->seq, when,
           (long long)json_integer_value(json_object_get(record, "uid")),
           json_string_value(json_object_get(record, "user")) != NULL
               ? json_string_value(json_object_get(record, "user"))
               : "?",
           json_string_value(json_object_get(record, "action")) != NULL
               ? json_string_value(json_object_get(record, "action"))
               : "?",
           args != NULL ? args : "{}");
    free(args);
    json_decref(record);
}

static int cmd_operations(int argc, char **argv)
{
    const char *home_opt = NULL;
    bool json = false;
    int rc = home_json_options(
        argc, argv, OPERATIONS_USAGE,
        "Every action a person took on the books or a channel (today: repairs), with the local "
        "user,\nthe time and the arguments, as the journal records them; works with the node "
        "running or stopped.\nExample: corridor operations --home bank-a --json\n",
        &home_opt, &json);
    if (rc >= 0) {
        return rc;
    }
    config_t *config = NULL;
    ledger_t *ledger = NULL;
    operations_out_t out = {json ? json_array() : NULL, 0};
    if ((rc = open_books_ro(home_opt, &config, &ledger)) != EXIT_OK) {
        goto cleanup;
    }
    if (ledger_operations(ledger, print_operation, &out) != LEDGER_OK) {
        complain("%s: %s", LEDGER_FILE, ledger_last_error(ledger));
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    if (json) {
        rc = print_document(json_pack("{s:O}", "operations", out.list));
    } else if (out.count == 0) {
        printf("no operator actions recorded\n");
    }

cleanup:
    json_decref(out.list);
    ledger_close(&ledger);
    config_destroy(&config);
    return rc;
}

/* ---- corridor audit ------------------------------------------------------------------- */

#define AUDIT_USAGE     "corridor audit --home DIR [--home DIR2 ...] [--peer-card FILE ...] [--json]"
#define AUDIT_HOMES_MAX 64
#define AUDIT_CARDS_MAX 64

/* Reads one peer card from a file (as `corridor card` prints it). */
static int read_card_file(const char *path, peer_card_t *card)
{
    char text[CORRIDOR_CARD_LEN_MAX + 2];
    ssize_t n = fs_read_bounded(path, text, sizeof text - 1);
    if (n < 0) {
        complain("%s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    card_err_t err = card_parse(text, card);
    if (err != CARD_OK) {
        complain("%s: %s", path, card_strerror(err));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static json_t *keys_json(const audit_report_t *r)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < r->keys_count; i++) {
        const audit_key_t *k = &r->keys[i];
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "home", k->home, "peer", k->peer,
                            "key_id", k->key_id, "source", k->from_card ? "card" : "home", "rows",
                            (json_int_t)k->rows, "first_sequence", (json_int_t)k->first_seq,
                            "last_sequence", (json_int_t)k->last_seq));
    }
    return list;
}

/* On stderr: which keys the audit could only take from the audited home itself, and which
 * homes' own signatures it could not check at all. */
static void warn_home_keys(const audit_report_t *r)
{
    for (size_t i = 0; i < r->own_unchecked_count; i++) {
        fprintf(stderr,
                "corridor audit: %s: this node's own signatures were not checked: no card of it "
                "given and its key file is not readable\n",
                r->own_unchecked[i]);
    }
    for (size_t i = 0; i < r->keys_count; i++) {
        const audit_key_t *k = &r->keys[i];
        if (!k->from_card) {
            fprintf(stderr,
                    "corridor audit: %s: the key of %s comes from the audited home's own config "
                    "(whoever can edit the home can swap it); give its card with --peer-card\n",
                    k->home, k->peer);
        }
    }
}

static int print_audit(const audit_report_t *r, size_t homes, bool json)
{
    bool ok = r->violations_count == 0 && r->violations_dropped == 0;
    if (json) {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < r->violations_count; i++) {
            const audit_violation_t *v = &r->violations[i];
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "home", v->home, "kind",
                                                  v->kind, "detail", v->detail));
        }
        json_t *doc = json_pack("{s:b, s:I, s:I, s:o, s:o}", "ok", ok, "entries_checked",
                                (json_int_t)r->entries_checked, "violations_total",
                                (json_int_t)(r->violations_count + r->violations_dropped),
                                "violations", list, "keys", keys_json(r));
        int rc = print_document(doc);
        if (rc != EXIT_OK) {
            return rc;
        }
    } else {
        for (size_t i = 0; i < r->violations_count; i++) {
            const audit_violation_t *v = &r->violations[i];
            printf("VIOLATION %-10s %s: %s\n", v->kind, v->home, v->detail);
        }
        printf("audit of %zu home%s: %llu entries checked, %s\n", homes, homes == 1 ? "" : "s",
               (unsigned long long)r->entries_checked, ok ? "clean" : "VIOLATIONS FOUND");
        if (r->violations_dropped > 0) {
            printf("(%zu more violations not listed)\n", r->violations_dropped);
        }
    }
    return ok ? EXIT_OK : EXIT_NEGATIVE;
}

static int cmd_audit(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"peer-card", required_argument, NULL, 'c'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *homes[AUDIT_HOMES_MAX];
    size_t homes_count = 0;
    static peer_card_t cards[AUDIT_CARDS_MAX];
    size_t cards_count = 0;
    bool json = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            if (homes_count == AUDIT_HOMES_MAX) {
                complain("at most %d homes", AUDIT_HOMES_MAX);
                return EXIT_USAGE;
            }
            homes[homes_count++] = optarg;
            break;
        case 'c':
            if (cards_count == AUDIT_CARDS_MAX) {
                complain("at most %d cards", AUDIT_CARDS_MAX);
                return EXIT_USAGE;
            }
            if (read_card_file(optarg, &cards[cards_count]) != EXIT_OK) {
                return EXIT_USAGE;
            }
            cards_count++;
            break;
        case 'j':
            json = true;
            break;
        case '?' + 256:
            printf("usage: %s\nChecks I1, I3, I4, I5 and cached balances on each home and I2 "
                   "between every pair; read-only.\nPeers' keys come from the cards given (a file "
                   "as `corridor card` prints it; several per peer\nfor a key history), else "
                   "from the audited home's own config, which stderr then says.\nExit 0 clean, "
                   "1 violations.\nExample: corridor audit --home bank-a --peer-card "
                   "bank-b.card --json\n",
                   AUDIT_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, AUDIT_USAGE);
        }
    }
    int rc = no_positional(argc, argv, AUDIT_USAGE);
    if (rc != EXIT_OK) {
        return rc;
    }
    if (homes_count == 0) {
        home_t home;
        if ((rc = resolve_home(&home, NULL)) != EXIT_OK) {
            return rc;
        }
        static char default_home[CORRIDOR_PATH_LEN_MAX];
        snprintf(default_home, sizeof default_home, "%s", home.dir);
        homes[homes_count++] = default_home;
    }
    for (size_t i = 0; i < homes_count; i++) {
        home_t home;
        if ((rc = resolve_home(&home, homes[i])) != EXIT_OK) {
            return rc;
        }
        if ((rc = require_home(&home)) != EXIT_OK) {
            return rc;
        }
    }
    audit_report_t report;
    audit_report_init(&report);
    (void)audit_homes(homes, homes_count, cards, cards_count, &report);
    warn_home_keys(&report);
    rc = print_audit(&report, homes_count, json);
    audit_report_free(&report);
    return rc;
}

/* ---- corridor run -------------------------------------------------------------------- */

#define RUN_USAGE "corridor run --home DIR"

static int cmd_run(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *home_opt = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            home_opt = optarg;
            break;
        case '?' + 256:
            printf("usage: %s\nRuns the node in the foreground until SIGTERM or SIGINT; logs to "
                   "stderr.\n",
                   RUN_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, RUN_USAGE);
        }
    }
    home_t home;
    int rc = no_positional(argc, argv, RUN_USAGE);
    if (rc != EXIT_OK || (rc = resolve_home(&home, home_opt)) != EXIT_OK) {
        return rc;
    }
    if ((rc = require_home(&home)) != EXIT_OK) {
        return rc;
    }
    return daemon_run(home.dir);
}

/* ---- talking to a running node ------------------------------------------------------------ */

/* An exit code for a control call's outcome (reply NULL: for a connection); complains about
 * what went wrong. */
static int node_answer(control_err_t rc, const char *err, json_t **reply)
{
    if (rc != CONTROL_OK) {
        complain("%s", err[0] != '\0' ? err : control_strerror(rc));
    }
    switch (rc) {
    case CONTROL_OK:
        break;
    case CONTROL_E_NOT_RUNNING:
    case CONTROL_E_INTERNAL:
        return EXIT_UNREACHABLE;
    case CONTROL_E_TIMEOUT:
        return EXIT_TIMEOUT;
    case CONTROL_E_REFUSED:
        return EXIT_USAGE;
    }
    if (reply == NULL) { /* a connection, no request yet */
        return EXIT_OK;
    }
    if (!json_is_true(json_object_get(*reply, "ok"))) {
        const char *error = json_string_value(json_object_get(*reply, "error"));
        json_t *code = json_object_get(*reply, "exit");
        complain("the node refused: %s", error != NULL ? error : "no reason given");
        int exit_code = json_is_integer(code) ? (int)json_integer_value(code) : EXIT_INTERNAL;
        json_decref(*reply);
        *reply = NULL;
        return exit_code >= EXIT_NEGATIVE && exit_code <= EXIT_INTERNAL ? exit_code : EXIT_INTERNAL;
    }
    return EXIT_OK;
}

/* Calls the node; maps transport failures to exit codes and the node's own errors too. */
static int call_node(const home_t *home, const json_t *request, int timeout_ms, json_t **reply)
{
    char err[512] = "";
    return node_answer(control_call(home->dir, request, timeout_ms, reply, err, sizeof err), err,
                       reply);
}

/* ---- corridor status ------------------------------------------------------------------ */

#define STATUS_USAGE "corridor status --home DIR [--json]"

static int cmd_status(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *home_opt = NULL;
    bool json = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            home_opt = optarg;
            break;
        case 'j':
            json = true;
            break;
        case '?' + 256:
            printf("usage: %s\nThe running node's state and each peer's channel.\n", STATUS_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, STATUS_USAGE);
        }
    }
    home_t home;
    json_t *reply = NULL;
    int rc = no_positional(argc, argv, STATUS_USAGE);
    if (rc != EXIT_OK || (rc = resolve_home(&home, home_opt)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s}", "cmd", "status");
    rc = call_node(&home, req, 10000, &reply);
    json_decref(req);
    if (rc != EXIT_OK) {
        return rc;
    }
    json_object_del(reply, "ok");
    if (json) {
        json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
    } else {
        printf("node %s listening on %s%s\n", json_string_value(json_object_get(reply, "node")),
               json_string_value(json_object_get(reply, "listen")),
               json_is_true(json_object_get(reply, "ledger_stopped")) ? " (LEDGER STOPPED)" : "");
        printf("  %-11s %-9s %10s %10s %12s\n", "peer", "state", "outbox", "sent_seq",
               "received_seq");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(reply, "peers"), i, p)
        {
            printf("  %-11s %-9s %10lld %10lld %12lld\n",
                   json_string_value(json_object_get(p, "name")),
                   json_string_value(json_object_get(p, "state")),
                   (long long)json_integer_value(json_object_get(p, "outbox")),
                   (long long)json_integer_value(json_object_get(p, "sent_seq")),
                   (long long)json_integer_value(json_object_get(p, "received_seq")));
        }
    }
    json_decref(reply);
    return EXIT_OK;
}

/* ---- corridor send ------------------------------------------------------------------- */

#define SEND_USAGE                                                                                 \
    "corridor send --home DIR --to CODE --amount DEC --currency CCY [--uetr UUID] [--debtor S] "   \
    "[--creditor S] [--remittance S] [--wait SECONDS] | --batch FILE [--wait SECONDS] [--rate N]"
#define SEND_CHUNK_ITEMS 1000  /* settlements per request in a batch */
#define SEND_GRACE_MS    15000 /* how long past --wait the node may take to answer */
#define BATCH_LINE_MAX   1024

/* One settlement to submit, as given on the command line or a batch line. */
typedef struct {
    const char *to, *amount, *currency, *uetr, *debtor, *creditor, *remittance;
} send_args_t;

/* Validates one settlement locally (nothing is written on error) and builds its request item.
 * `where` prefixes messages (a batch line number). */
static int build_item(const config_t *config, const send_args_t *a, const char *where,
                      json_t **item)
{
    *item = NULL;
    if (a->to == NULL || a->amount == NULL || a->currency == NULL) {
        complain("%s--to, --amount and --currency are required", where);
        return EXIT_USAGE;
    }
    if (config_find_peer_const(config, a->to) == NULL) {
        complain("%s%s is not a peer of this node (see corridor peer add)", where, a->to);
        return EXIT_USAGE;
    }
    const currency_t *c = currency_find(a->currency);
    if (c == NULL || !config_accepts(config, c->code)) {
        complain("%s%s: %s", where, a->currency,
                 c == NULL ? "unknown currency" : "this node does not deal in it");
        return EXIT_USAGE;
    }
    int64_t minor = 0;
    valid_err_t verr = amount_parse(a->amount, c, false, &minor);
    if (verr != VALID_OK) {
        complain("%s--amount %s: %s", where, a->amount, valid_strerror(verr));
        return EXIT_USAGE;
    }
    char uetr[CORRIDOR_UETR_LEN + 1];
    if (a->uetr != NULL && (verr = uetr_check(a->uetr)) != VALID_OK) {
        complain("%s--uetr %s: %s", where, a->uetr, valid_strerror(verr));
        return EXIT_USAGE;
    }
    if (a->uetr == NULL) {
        uetr_generate(uetr); /* chosen here so that a retry is idempotent */
    }
    const char *texts[] = {a->debtor, a->creditor, a->remittance};
    const size_t limits[] = {CORRIDOR_PARTY_NAME_LEN_MAX, CORRIDOR_PARTY_NAME_LEN_MAX,
                             CORRIDOR_REMITTANCE_LEN_MAX};
    for (size_t i = 0; i < 3; i++) {
        if (texts[i] != NULL && (verr = text_check(texts[i], limits[i])) != VALID_OK) {
            complain("%s%s: %s", where,
                     i == 0   ? "--debtor"
                     : i == 1 ? "--creditor"
                              : "--remittance",
                     valid_strerror(verr));
            return EXIT_USAGE;
        }
    }
    *item =
        json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "to", a->to, "amount_minor",
                  (json_int_t)minor, "currency", c->code, "uetr", a->uetr != NULL ? a->uetr : uetr,
                  "debtor", a->debtor ? a->debtor : "", "creditor", a->creditor ? a->creditor : "",
                  "remittance", a->remittance ? a->remittance : "");
    return *item != NULL ? EXIT_OK : EXIT_INTERNAL;
}

/* Splits one CSV line in place (no quoting: fields must not contain commas). */
static size_t split_csv(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (comma == NULL) {
            break;
        }
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* Reads a batch file: a header naming the columns (to, amount, currency required; uetr,
 * debtor, creditor, remittance optional), then one settlement per line. */
static int read_batch(const config_t *config, const char *path, json_t *items)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        complain("--batch %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    static const char *const names[] = {"to",     "amount",   "currency",  "uetr",
                                        "debtor", "creditor", "remittance"};
    enum { COLUMNS = 7 };
    int column_of[COLUMNS];
    char line[BATCH_LINE_MAX + 2];
    int rc = EXIT_OK;
    size_t lineno = 0;
    for (size_t i = 0; i < COLUMNS; i++) {
        column_of[i] = -1;
    }
    while (rc == EXIT_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > BATCH_LINE_MAX) {
            complain("--batch %s:%zu: line longer than %d bytes", path, lineno, BATCH_LINE_MAX);
            rc = EXIT_USAGE;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        char *fields[COLUMNS + 1];
        size_t n = split_csv(line, fields, COLUMNS + 1);
        if (lineno == 1) { /* the header */
            for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < COLUMNS; j++) {
                    if (strcmp(fields[i], names[j]) == 0) {
                        column_of[j] = (int)i;
                    }
                }
            }
            if (column_of[0] < 0 || column_of[1] < 0 || column_of[2] < 0) {
                complain("--batch %s: the header must name at least to,amount,currency", path);
                rc = EXIT_USAGE;
            }
            continue;
        }
        const char *v[COLUMNS];
        for (size_t j = 0; j < COLUMNS; j++) {
            v[j] = column_of[j] >= 0 && (size_t)column_of[j] < n && fields[column_of[j]][0]
                       ? fields[column_of[j]]
                       : NULL;
        }
        send_args_t a = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
        char where[64];
        snprintf(where, sizeof where, "--batch line %zu: ", lineno);
        json_t *item = NULL;
        if ((rc = build_item(config, &a, where, &item)) == EXIT_OK) {
            json_array_append_new(items, item);
        }
    }
    if (rc == EXIT_OK && ferror(f)) {
        complain("--batch %s: read error", path);
        rc = EXIT_USAGE;
    }
    fclose(f);
    if (rc == EXIT_OK && json_array_size(items) == 0) {
        complain("--batch %s: no settlements", path);
        rc = EXIT_USAGE;
    }
    return rc;
}

/* Tallies the node's results; prints one line per settlement (uetr status [reason]). */
typedef struct {
    size_t pending, settled, rejected, failed;
    int worst_exit;
} tally_t;

static void tally_results(json_t *results, bool print, tally_t *t)
{
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        const char *uetr = json_string_value(json_object_get(r, "uetr"));
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *reason = json_string_value(json_object_get(r, "reason"));
        const char *error = json_string_value(json_object_get(r, "error"));
        if (error != NULL) {
            t->failed++;
            complain("%s: %s", uetr != NULL ? uetr : "settlement", error);
            json_t *code = json_object_get(r, "exit");
            int c = json_is_integer(code) ? (int)json_integer_value(code) : EXIT_INTERNAL;
            t->worst_exit = c > t->worst_exit ? c : t->worst_exit;
            continue;
        }
        if (status == NULL) {
            continue;
        }
        if (strcmp(status, "settled") == 0 || strcmp(status, "returned") == 0) {
            t->settled++;
        } else if (strcmp(status, "rejected") == 0) {
            t->rejected++;
            complain("%s rejected: %s", uetr, reason != NULL ? reason : "no reason given");
        } else {
            t->pending++;
        }
        if (print) {
            printf("%s %s%s%s\n", uetr, status, reason ? " " : "", reason ? reason : "");
        }
    }
}

/* Sends items in chunks; with wait_ms > 0 the node answers each chunk once final. */
static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends items in chunks over one connection; with wait_ms > 0 the node answers each chunk once
 * final. With rate > 0 (settlements per second) a chunk of rate/RATE_CHUNKS_PER_S leaves every
 * 1/RATE_CHUNKS_PER_S s: an open-loop load, close to a steady stream of arrivals. */
#define RATE_CHUNKS_PER_S 200
static int submit(const home_t *home, json_t *items, int64_t wait_ms, bool print, tally_t *t,
                  long rate)
{
    size_t total = json_array_size(items);
    int64_t deadline = wait_ms > 0 ? (int64_t)time(NULL) * 1000 + wait_ms : 0;
    size_t chunk_items = rate <= 0                      ? SEND_CHUNK_ITEMS
                         : rate / RATE_CHUNKS_PER_S > 0 ? (size_t)(rate / RATE_CHUNKS_PER_S)
                                                        : 1;
    int64_t started = monotonic_ms();
    char err[512] = "";
    control_client_t *client = NULL;
    int rc = node_answer(control_connect(home->dir, &client, err, sizeof err), err, NULL);
    if (rc != EXIT_OK) {
        return rc;
    }
    for (size_t start = 0; start < total; start += chunk_items) {
        if (rate > 0) {
            int64_t due = started + (int64_t)start * 1000 / rate;
            int64_t now = monotonic_ms();
            if (due > now) {
                struct timespec pause = {(time_t)((due - now) / 1000),
                                         (long)((due - now) % 1000) * 1000000};
                nanosleep(&pause, NULL);
            }
        }
        json_t *chunk = json_array();
        for (size_t i = start; i < total && i < start + chunk_items; i++) {
            json_array_append(chunk, json_array_get(items, i));
        }
        int64_t left = wait_ms > 0 ? deadline - (int64_t)time(NULL) * 1000 : 0;
        if (wait_ms > 0 && left < 1) {
            left = 1;
        }
        json_t *req = json_pack("{s:s, s:I, s:o}", "cmd", "send", "wait_ms", (json_int_t)left,
                                "items", chunk);
        json_t *reply = NULL;
        control_err_t sent =
            control_request(client, req, (int)(left + SEND_GRACE_MS), &reply, err, sizeof err);
        json_decref(req);
        if ((rc = node_answer(sent, err, &reply)) != EXIT_OK) {
            break;
        }
        tally_results(json_object_get(reply, "results"), print, t);
        json_decref(reply);
    }
    control_disconnect(&client);
    return rc;
}

static int cmd_send(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"to", required_argument, NULL, 't'},
                                            {"amount", required_argument, NULL, 'a'},
                                            {"currency", required_argument, NULL, 'c'},
                                            {"uetr", required_argument, NULL, 'u'},
                                            {"debtor", required_argument, NULL, 'd'},
                                            {"creditor", required_argument, NULL, 'r'},
                                            {"remittance", required_argument, NULL, 'm'},
                                            {"wait", required_argument, NULL, 'w'},
                                            {"batch", required_argument, NULL, 'b'},
                                            {"rate", required_argument, NULL, 'R'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *home_opt = NULL, *batch = NULL, *wait_text = NULL;
    send_args_t a = {0};
    long rate = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            home_opt = optarg;
            break;
        case 't':
            a.to = optarg;
            break;
        case 'a':
            a.amount = optarg;
            break;
        case 'c':
            a.currency = optarg;
            break;
        case 'u':
            a.uetr = optarg;
            break;
        case 'd':
            a.debtor = optarg;
            break;
        case 'r':
            a.creditor = optarg;
            break;
        case 'm':
            a.remittance = optarg;
            break;
        case 'w':
            wait_text = optarg;
            break;
        case 'b':
            batch = optarg;
            break;
        case 'R': {
            char *end = NULL;
            rate = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || rate < 1 || rate > 1000000) {
                complain("--rate %s: expected settlements per second, 1 to 1000000", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case '?' + 256:
            printf("usage: %s\nCommits a settlement as pending and prints its UETR. --wait: waits "
                   "for the final status (0 settled, 1 rejected, 4 timed out).\n--batch FILE: "
                   "CSV with a header naming to,amount,currency[,uetr,debtor,creditor,"
                   "remittance]; no quoting.\n",
                   SEND_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, SEND_USAGE);
        }
    }
    int rc = no_positional(argc, argv, SEND_USAGE);
    if (rc != EXIT_OK) {
        return rc;
    }
    int64_t wait_ms = 0;
    if (wait_text != NULL) {
        char *end = NULL;
        double seconds = strtod(wait_text, &end);
        if (end == wait_text || *end != '\0' || !(seconds > 0) || seconds > 86400) {
            complain("--wait %s: expected seconds, more than 0 and at most 86400", wait_text);
            return EXIT_USAGE;
        }
        wait_ms = (int64_t)(seconds * 1000);
    }
    if (rate > 0 && batch == NULL) {
        complain("--rate paces a --batch");
        return EXIT_USAGE;
    }
    if (batch != NULL && (a.to || a.amount || a.currency || a.uetr)) {
        complain("--batch takes the settlements from the file; leave out --to, --amount...");
        return EXIT_USAGE;
    }
    home_t home;
    config_t *config = NULL;
    json_t *items = json_array();
    if ((rc = resolve_home(&home, home_opt)) != EXIT_OK ||
        (rc = load_config(&home, &config)) != EXIT_OK) {
        goto cleanup;
    }
    if (batch != NULL) {
        rc = read_batch(config, batch, items);
    } else {
        json_t *item = NULL;
        if ((rc = build_item(config, &a, "", &item)) == EXIT_OK) {
            json_array_append_new(items, item);
        }
    }
    if (rc != EXIT_OK) {
        goto cleanup;
    }
    tally_t t = {0};
    /* A batch goes out at full speed first; waiting re-sends it (sends are idempotent). */
    rc = submit(&home, items, batch != NULL ? 0 : wait_ms, batch == NULL || wait_ms == 0, &t, rate);
    if (rc == EXIT_OK && batch != NULL && wait_ms > 0) {
        memset(&t, 0, sizeof t);
        rc = submit(&home, items, wait_ms, true, &t, 0);
    }
    if (rc != EXIT_OK) {
        goto cleanup;
    }
    if (batch != NULL) {
        fprintf(stderr, "%zu settlements: %zu pending, %zu settled, %zu rejected, %zu failed\n",
                json_array_size(items), t.pending, t.settled, t.rejected, t.failed);
    }
    if (t.failed > 0) {
        rc = t.worst_exit;
    } else if (t.rejected > 0) {
        rc = EXIT_NEGATIVE;
    } else if (wait_ms > 0 && t.pending > 0) {
        complain("timed out after %.1f s waiting for the final status", (double)wait_ms / 1000);
        rc = EXIT_TIMEOUT;
    } else {
        rc = EXIT_OK;
    }

cleanup:
    json_decref(items);
    config_destroy(&config);
    return rc;
}

/* ---- corridor reconcile --------------------------------------------------------------- */

#define RECONCILE_USAGE                                                                            \
    "corridor reconcile --home DIR --peer CODE [--repair] [--json] [--timeout SECONDS]"

static void print_side(const char *label, json_t *side)
{
    if (!json_is_object(side)) {
        printf("      %-6s (none)\n", label);
        return;
    }
    const char *ccy = json_string_value(json_object_get(side, "currency"));
    char amount[32];
    const currency_t *c = ccy != NULL ? currency_find(ccy) : NULL;
    amount_format(json_integer_value(json_object_get(side, "amount_minor")),
                  c != NULL ? c->exponent : 0, amount, sizeof amount);
    const char *reason = json_string_value(json_object_get(side, "reason"));
    printf("      %-6s %s -> %s  %s %s  %s%s%s\n", label,
           json_string_value(json_object_get(side, "payer")),
           json_string_value(json_object_get(side, "payee")), amount, ccy ? ccy : "?",
           json_string_value(json_object_get(side, "status")), reason ? " " : "",
           reason ? reason : "");
}

static void print_reconcile_text(json_t *report)
{
    json_t *breaks = json_object_get(report, "breaks");
    size_t i;
    json_t *b;
    json_array_foreach(breaks, i, b)
    {
        const char *action = json_string_value(json_object_get(b, "action"));
        printf("  %-16s %s%s\n", json_string_value(json_object_get(b, "kind")),
               json_string_value(json_object_get(b, "uetr")),
               json_is_true(json_object_get(b, "healed")) ? "  [healed]" : "");
        print_side("here", json_object_get(b, "local"));
        print_side("peer", json_object_get(b, "peer"));
        if (action != NULL) {
            printf("      repair: %s\n", action);
        }
    }
    json_int_t remaining = json_integer_value(json_object_get(report, "breaks_remaining"));
    json_t *checkpoint = json_object_get(report, "checkpoint");
    printf("%s: %lld matched, %zu breaks found, %lld remaining, positions %s%s\n",
           json_string_value(json_object_get(report, "peer")),
           (long long)json_integer_value(json_object_get(report, "matched")),
           json_array_size(breaks), (long long)remaining,
           json_is_true(json_object_get(report, "positions_agree")) ? "agree" : "DISAGREE",
           json_is_true(json_object_get(checkpoint, "signed")) ? "; checkpoint co-signed" : "");
    const char *error = json_string_value(json_object_get(report, "error"));
    if (error != NULL) {
        printf("note: %s\n", error);
    }
}

static int cmd_reconcile(int argc, char **argv)
{
    static const struct option options[] = {{"home", required_argument, NULL, 'h'},
                                            {"peer", required_argument, NULL, 'p'},
                                            {"repair", no_argument, NULL, 'r'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"timeout", required_argument, NULL, 't'},
                                            {"help", no_argument, NULL, '?' + 256},
                                            {NULL, 0, NULL, 0}};
    const char *home_opt = NULL, *peer = NULL;
    bool repair = false, json = false;
    double timeout_s = 120;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            home_opt = optarg;
            break;
        case 'p':
            peer = optarg;
            break;
        case 'r':
            repair = true;
            break;
        case 'j':
            json = true;
            break;
        case 't': {
            char *end = NULL;
            timeout_s = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(timeout_s >= 1 && timeout_s <= 300)) {
                complain("--timeout %s: expected seconds from 1 to 300", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case '?' + 256:
            printf("usage: %s\nCompares this node's books of the channel with the peer's signed "
                   "statement and lists every break;\n--repair heals what signed evidence "
                   "proves. Exit 0 no breaks, 1 breaks remain.\n",
                   RECONCILE_USAGE);
            return EXIT_OK;
        default:
            return usage_error(argv, RECONCILE_USAGE);
        }
    }
    int rc = no_positional(argc, argv, RECONCILE_USAGE);
    if (rc != EXIT_OK) {
        return rc;
    }
    if (peer == NULL || node_code_check(peer) != VALID_OK) {
        complain("--peer CODE is required; usage: %s", RECONCILE_USAGE);
        return EXIT_USAGE;
    }
    home_t home;
    if ((rc = resolve_home(&home, home_opt)) != EXIT_OK) {
        return rc;
    }
    int timeout_ms = (int)(timeout_s * 1000);
    json_t *req = json_pack("{s:s, s:s, s:b, s:i}", "cmd", "reconcile", "peer", peer, "repair",
                            repair, "timeout_ms", timeout_ms);
    json_t *reply = NULL;
    rc = call_node(&home, req, timeout_ms + SEND_GRACE_MS, &reply);
    json_decref(req);
    if (rc != EXIT_OK) {
        return rc;
    }
    json_t *report = json_object_get(reply, "report");
    if (json) {
        json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
    } else {
        print_reconcile_text(report);
    }
    const char *error = json_string_value(json_object_get(report, "error"));
    bool timed_out = error != NULL && strncmp(error, "timed out", 9) == 0;
    json_int_t remaining = json_integer_value(json_object_get(report, "breaks_remaining"));
    bool agree = json_is_true(json_object_get(report, "positions_agree"));
    /* Positions are compared before any repair; after one that healed everything, what
     * remains to say is the breaks (in-flight settlements may still move positions). */
    bool healed = json_integer_value(json_object_get(report, "healed")) > 0;
    rc = timed_out ? EXIT_TIMEOUT : remaining == 0 && (agree || healed) ? EXIT_OK : EXIT_NEGATIVE;
    json_decref(reply);
    return rc;
}

static int cmd_peer(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "add") == 0) {
        command_name = "corridor peer add";
        return cmd_peer_add(argc - 1, argv + 1);
    }
    complain("expected a subcommand: %s", PEER_ADD_USAGE);
    return EXIT_USAGE;
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *full_name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"init", "corridor init", cmd_init, "create a node's home, keys and config; print its card"},
    {"card", "corridor card", cmd_card, "print this node's peer card"},
    {"peer", "corridor peer", cmd_peer, "peer add CARD [--limit CCY=AMOUNT]: trust a peer"},
    {"run", "corridor run", cmd_run, "run the node in the foreground until SIGTERM"},
    {"send", "corridor send", cmd_send, "submit a settlement (or --batch FILE); --wait for it"},
    {"status", "corridor status", cmd_status, "the running node's channels (--json)"},
    {"ledger", "corridor ledger", cmd_ledger, "positions, counts and settlements (--json)"},
    {"reconcile", "corridor reconcile", cmd_reconcile,
     "compare books with a peer's signed statement; --repair heals"},
    {"audit", "corridor audit", cmd_audit, "offline checks of one or more homes' books"},
    {"operations", "corridor operations", cmd_operations,
     "every action a person took on the books, with who and when (--json)"},
};

static void print_help(void)
{
    printf("usage: corridor COMMAND [--home DIR] [options]\n\n"
           "Corridor: bilateral, signed and encrypted settlement messaging between banks.\n"
           "Every command takes --home DIR (default $%s, else %s) and --help.\n\n"
           "commands:\n",
           HOME_ENV, HOME_DEFAULT);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        printf("  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    printf("\nexit codes: 0 ok, 1 negative answer, 2 usage or bad input, 3 node not running,\n"
           "            4 timed out, 5 internal or storage error\n");
}

int cli_main(int argc, char **argv)
{
    assert(argc >= 1 && argv != NULL);
    opterr = 0; /* getopt's own messages would make a second line */
    if (argc < 2) {
        complain("no command given; see corridor --help");
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help();
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("corridor %s\n", CORRIDOR_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            command_name = commands[i].full_name;
            optind = 1;
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    complain("unknown command '%s'; see corridor --help", argv[1]);
    return EXIT_USAGE;
}
