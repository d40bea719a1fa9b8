/*
 * `corridor init`, `card` (and its key history) and `peer add`: a node's home and whom it
 * trusts.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_replace.h"
#include "commands.h"
#include "fsutil.h"
#include "home_init.h"
#include "render.h"
#include "validate.h"

/* ---- corridor init ------------------------------------------------------------------- */

typedef struct {
    const char *name, *listen, *listen_stream, *currencies;
} init_args_t;

enum {
    OPT_NAME = 1,
    OPT_LISTEN,
    OPT_LISTEN_STREAM,
    OPT_CURRENCIES,
    OPT_LIMIT,
    OPT_HISTORY,
    OPT_REPLACE,
    OPT_FROM
};

static int init_option(void *ctx, int key, const char *value)
{
    init_args_t *a = ctx;
    switch (key) {
    case OPT_NAME:
        a->name = value;
        break;
    case OPT_LISTEN:
        a->listen = value;
        break;
    case OPT_LISTEN_STREAM:
        a->listen_stream = value;
        break;
    default:
        assert(key == OPT_CURRENCIES);
        a->currencies = value;
        break;
    }
    return EXIT_OK;
}

static const struct option init_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"listen-stream", required_argument, NULL, OPT_LISTEN_STREAM},
    {"currencies", required_argument, NULL, OPT_CURRENCIES},
    {NULL, 0, NULL, 0}};

static const cli_spec_t init_spec = {
    .usage = "corridor init --home DIR --name CODE --listen ENDPOINT [--listen-stream ENDPOINT]\n"
             "              [--currencies " DEFAULT_CURRENCIES "]",
    .help = "Creates a node's home: keys (mode 0600), config; prints its peer card.\n"
            "Peers send the sequenced stream to --listen-stream (small frames; by default\n"
            "the next port after --listen, or the ipc path with -stream appended) and\n"
            "statements to --listen.\n"
            "Example: corridor init --home bank-a --name BKRURUMM "
            "--listen tcp://127.0.0.1:7001 > bank-a.card\n",
    .options = init_options};

/* A config for a new node from init's options (complains and returns NULL when one is bad). */
static int init_config(const init_args_t *a, config_t **out)
{
    *out = NULL;
    if (a->name == NULL || a->listen == NULL) {
        complain("--name and --listen are required; usage: %s", init_spec.usage);
        return EXIT_USAGE;
    }
    valid_err_t verr = node_code_check(a->name);
    if (verr != VALID_OK) {
        complain("--name %s: %s (a node code is 4-11 of A-Z, 0-9, starting with a letter)", a->name,
                 valid_strerror(verr));
        return EXIT_USAGE;
    }
    if (!endpoint_valid(a->listen)) {
        complain("--listen %s: not tcp://HOST:PORT or ipc://PATH", a->listen);
        return EXIT_USAGE;
    }
    char stream[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    if (a->listen_stream != NULL) {
        snprintf(stream, sizeof stream, "%s", a->listen_stream);
    } else if (!endpoint_stream_default(a->listen, stream, sizeof stream)) {
        complain("--listen %s: no next port or path for the stream; give --listen-stream",
                 a->listen);
        return EXIT_USAGE;
    }
    if (!endpoint_valid(stream) || strcmp(stream, a->listen) == 0) {
        complain("--listen-stream %s: not tcp://HOST:PORT or ipc://PATH other than --listen",
                 stream);
        return EXIT_USAGE;
    }
    config_t *config = config_new();
    char err[256];
    if (config == NULL) {
        complain("out of memory");
        return EXIT_INTERNAL;
    }
    if (config_set_currencies(config, a->currencies, err, sizeof err) != 0) {
        complain("--%s", err);
        config_destroy(&config);
        return EXIT_USAGE;
    }
    snprintf(config->name, sizeof config->name, "%s", a->name);
    snprintf(config->listen, sizeof config->listen, "%s", a->listen);
    snprintf(config->listen_stream, sizeof config->listen_stream, "%s", stream);
    *out = config;
    return EXIT_OK;
}

int cmd_init(int argc, char **argv)
{
    init_args_t a = {.currencies = DEFAULT_CURRENCIES};
    cli_args_t args;
    int rc = cli_parse(argc, argv, &init_spec, init_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    home_t home;
    config_t *config = NULL;
    identity_t *identity = NULL;
    if ((rc = init_config(&a, &config)) != EXIT_OK ||
        (rc = cli_home(&home, args.home)) != EXIT_OK) {
        goto cleanup;
    }
    char err[512];
    home_init_err_t made = home_init(&home, config, &identity, err, sizeof err);
    if (made != HOME_INIT_OK) {
        complain("%s: %s", home_init_strerror(made), err);
        rc = made == HOME_INIT_E_EXISTS ? EXIT_USAGE : EXIT_INTERNAL;
        goto cleanup;
    }
    peer_card_t card;
    cli_node_card(identity, config, &card);
    cli_print_card(&card);

cleanup:
    identity_destroy(&identity);
    config_destroy(&config);
    return rc;
}

/* ---- corridor card ------------------------------------------------------------------- */

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
    return cli_print_document(doc);
}

static int card_option(void *ctx, int key, const char *value)
{
    (void)value;
    assert(key == OPT_HISTORY);
    *(bool *)ctx = true;
    return EXIT_OK;
}

static const struct option card_options[] = {{"history", no_argument, NULL, OPT_HISTORY},
                                             {NULL, 0, NULL, 0}};

static const cli_spec_t card_spec = {
    .usage = "corridor card --home DIR [--history] [--json]",
    .help = "Prints this node's peer card (give it to peers).\n"
            "--history: the signing keys the ledger records instead (node running or not): ours\n"
            "on each channel and each peer's, with the sequence numbers each signs.\n"
            "Example: corridor card --home bank-a > bank-a.card\n",
    .json = true,
    .options = card_options};

/* `card --history`: the key history of the home's ledger, read-only. */
static int print_history(const home_t *home, const config_t *config, const identity_t *identity,
                         bool json)
{
    char path[CORRIDOR_PATH_LEN_MAX], err[512];
    ledger_t *ledger = NULL;
    if (fs_join(path, sizeof path, home->dir, LEDGER_FILE) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    if (ledger_open(path, config->name, LEDGER_READ_ONLY, NULL, &ledger, err, sizeof err) !=
        LEDGER_OK) {
        complain("%s: %s", path, err);
        return EXIT_INTERNAL;
    }
    int rc = render_key_history(ledger, config->name, identity, json);
    ledger_close(&ledger);
    return rc;
}

int cmd_card(int argc, char **argv)
{
    cli_args_t args;
    bool history = false;
    int rc = cli_parse(argc, argv, &card_spec, card_option, &history, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    home_t home;
    config_t *config = NULL;
    identity_t *identity = NULL;
    if ((rc = cli_open_home(args.home, &home, &config, &identity)) != EXIT_OK) {
        goto cleanup;
    }
    if (history) {
        rc = print_history(&home, config, identity, args.json);
        goto cleanup;
    }
    peer_card_t card;
    cli_node_card(identity, config, &card);
    if (args.json) {
        rc = print_card_json(&card);
    } else {
        cli_print_card(&card);
    }

cleanup:
    identity_destroy(&identity);
    config_destroy(&config);
    return rc;
}

/* ---- corridor peer add --------------------------------------------------------------- */

typedef struct {
    const char *limits[CORRIDOR_CURRENCIES_MAX];
    size_t limits_count;
    const char *replace; /* --replace CARD */
    uint64_t from;       /* --from SEQ (0: not given) */
} peer_add_args_t;

static int peer_add_option(void *ctx, int key, const char *value)
{
    peer_add_args_t *a = ctx;
    if (key == OPT_REPLACE) {
        a->replace = value;
        return EXIT_OK;
    }
    if (key == OPT_FROM) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (value[0] < '1' || value[0] > '9' || *end != '\0' || errno != 0 ||
            v > CORRIDOR_SEQUENCE_MAX) {
            complain("--from %s: expected a sequence number from 1", value);
            return EXIT_USAGE;
        }
        a->from = v;
        return EXIT_OK;
    }
    assert(key == OPT_LIMIT);
    if (a->limits_count == CORRIDOR_CURRENCIES_MAX) {
        complain("more than %d --limit options", CORRIDOR_CURRENCIES_MAX);
        return EXIT_USAGE;
    }
    a->limits[a->limits_count++] = value;
    return EXIT_OK;
}

static const struct option peer_add_options[] = {{"limit", required_argument, NULL, OPT_LIMIT},
                                                 {"replace", required_argument, NULL, OPT_REPLACE},
                                                 {"from", required_argument, NULL, OPT_FROM},
                                                 {NULL, 0, NULL, 0}};

static const cli_spec_t peer_add_spec = {
    .usage = "corridor peer add --home DIR \"CARD\" [--limit CCY=AMOUNT]...\n"
             "       corridor peer add --home DIR --replace \"CARD\" [--from SEQ] [--json]",
    .help = "Trusts a peer from its card (one argument); --limit is the net debit cap granted\n"
            "to it, in currency units (none: 0, no credit).\n"
            "--replace: the new card of a trusted peer whose key leaked (its operator ran\n"
            "`corridor key replace`), with this node stopped. The new key signs the peer's\n"
            "messages from the first this node has not applied; every key before it is revoked\n"
            "from there, or from --from SEQ (then audit reports what a revoked key signed\n"
            "since). An operator action on record.\n"
            "Example: corridor peer add --home bank-a \"$(cat bank-b.card)\" --limit RUB=1000000\n"
            "Example: corridor peer add --home bank-a --replace \"$(cat bank-b.new.card)\"\n",
    .json = true,
    .args_min = 0,
    .args_max = 1,
    .options = peer_add_options};

static int cmd_peer_add(int argc, char **argv)
{
    peer_add_args_t a = {0};
    cli_args_t args;
    int rc = cli_parse(argc, argv, &peer_add_spec, peer_add_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if ((a.replace != NULL) == (args.argc == 1) || (a.replace != NULL && a.limits_count > 0) ||
        (a.replace == NULL && (a.from != 0 || args.json))) {
        complain("expected a card, or --replace CARD (with --from, --json; without --limit): %s",
                 peer_add_spec.usage);
        return EXIT_USAGE;
    }
    peer_card_t card;
    card_err_t cerr = card_parse(a.replace != NULL ? a.replace : args.argv[0], &card);
    if (cerr != CARD_OK) {
        complain("%s", card_strerror(cerr));
        return EXIT_USAGE;
    }
    home_t home;
    config_t *config = NULL;
    identity_t *identity = NULL;
    if ((rc = cli_open_home(args.home, &home, &config, &identity)) != EXIT_OK) {
        goto cleanup;
    }
    if (a.replace != NULL) {
        rc = peer_replace(&home, config, &card, a.from, args.json);
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
    for (size_t i = 0; i < a.limits_count; i++) {
        if ((rc = cli_apply_cap(config, peer, "--limit", a.limits[i], &given)) != EXIT_OK) {
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

int cmd_peer(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "add") == 0) {
        cli_set_command("corridor peer add");
        return cmd_peer_add(argc - 1, argv + 1);
    }
    complain("expected a subcommand: %s", peer_add_spec.usage);
    return EXIT_USAGE;
}
