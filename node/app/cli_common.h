/*
 * What every `corridor` command shares: one option parser (the common options --home, --json
 * and --help are parsed here once, a command lists only its own), one way to complain, and
 * the steps most commands start with (find the home, load its config and keys, open its books,
 * call its running node).
 *
 * Messages to the user go to stderr as one line starting with "corridor <command>:"; results
 * go to stdout (human text, or one JSON document with --json). Every function returning int
 * returns an exit code (include/corridor/exit.h).
 */
#ifndef CORRIDOR_CLI_COMMON_H
#define CORRIDOR_CLI_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "control.h"
#include "corridor/exit.h"
#include "home.h"
#include "identity.h"
#include "ledger.h"

#define CLI_OPTIONS_MAX 24    /* a command's own options */
#define CLI_HOMES_MAX   64    /* --home given several times (audit) */
#define CLI_GRACE_MS    15000 /* how long past its own timeout a node may take to answer */

/* A command as its options parser sees it. */
typedef struct {
    const char *usage; /* the synopsis, shown with usage errors and --help */
    const char *help;  /* what it does, ending with an "Example:" line */
    bool json;         /* whether it takes --json */
    int homes_max;     /* how many times --home may be given (0: once) */
    int args_min;      /* positional arguments it takes */
    int args_max;
    const struct option *options; /* its own options (val: a key of its choice), or NULL */
} cli_spec_t;

/* The common options, and what is left on the command line. */
typedef struct {
    const char *home;                 /* --home (the first), or NULL */
    const char *homes[CLI_HOMES_MAX]; /* every --home given */
    size_t homes_count;
    bool json;
    bool help; /* --help was given and printed: the command only returns EXIT_OK */
    int argc;  /* the positional arguments */
    char **argv;
} cli_args_t;

/* Called with each of the command's own options (`key` is its option's val). Returns
 * EXIT_OK to go on, else an exit code (after a complaint). */
typedef int (*cli_option_fn)(void *ctx, int key, const char *value);

/* Parses argv[1..] by `spec`. EXIT_OK with *args filled (args->help: --help was printed),
 * else a usage error (complained). */
int cli_parse(int argc, char **argv, const cli_spec_t *spec, cli_option_fn on_option, void *ctx,
              cli_args_t *args);

/* The name in complaints ("corridor send"); set by the dispatcher. */
void cli_set_command(const char *name);
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a number of seconds in (0, max] (after `option` in a complaint). */
int cli_seconds(const char *option, const char *text, double max, int64_t *ms);

/* The home from --home, $CORRIDOR_HOME or the default. */
int cli_home(home_t *home, const char *option);
/* An existing home, readable: says which it is not. */
int cli_require_home(const home_t *home);
int cli_load_config(const home_t *home, config_t **config);
int cli_load_identity(const home_t *home, identity_t **identity);
/* The home named by --home (or the default), its config and its keys. On failure the caller
 * still destroys both. */
int cli_open_home(const char *home_opt, home_t *home, config_t **config, identity_t **identity);
/* The home named by --home, its config and its ledger read-only (the node may be running).
 * On failure the caller still closes both. */
int cli_open_books(const char *home_opt, config_t **config, ledger_t **ledger);

/* Applies one cap CCY=AMOUNT (a decimal in currency units) that `config`'s node grants `peer`
 * (`option` names it in complaints); *given marks the currencies already capped. */
int cli_apply_cap(const config_t *config, config_peer_t *peer, const char *option, const char *arg,
                  unsigned *given);

/* This node's card, as its config says where it listens. */
void cli_node_card(const identity_t *identity, const config_t *config, peer_card_t *card);
void cli_print_card(const peer_card_t *card);
/* Prints a document as indented JSON on stdout, taking it over. */
int cli_print_document(json_t *doc);

/* An exit code for a control call's outcome (reply NULL: a connection), complaining about
 * what went wrong; a reply the node refused is freed. */
int cli_node_answer(control_err_t rc, const char *err, json_t **reply);
/* Audits homes (at least one) with the cards given and prints the findings, or (doc_out not
 * NULL) hands over the JSON document instead: 0 clean, 1 violations (cli_books.c). */
int cli_audit_homes(const char *const *homes, size_t homes_count, const peer_card_t *cards,
                    size_t cards_count, bool json, json_t **doc_out);

/* Asks the home's node to reconcile with one peer and prints the report (or, report_out not
 * NULL, hands it over instead): 0 the books agree, 1 not, 4 the peer did not answer in time
 * (cli_node.c). */
int cli_reconcile(const home_t *home, const char *peer, bool repair, int64_t timeout_ms, bool json,
                  json_t **report_out);

/* Calls the home's running node (connect, request, disconnect). */
int cli_call_node(const home_t *home, const json_t *request, int timeout_ms, json_t **reply);
/* Calls it with `request` (taken; NULL: out of memory) and hands over the first of the reply's
 * results, for a command about one item (cancel, review). */
int cli_call_node_result(const home_t *home, json_t *request, int timeout_ms, json_t **result);

/* The end of a command that asks a peer to decide something (return, fx), from the node's
 * `result` (taken): with a wait, exit 4 while the answer is still to come and 1 when refused
 * ("WHAT refused by WHO (REASON)" on stderr); prints the result (`json`) or one line, the id
 * (`id_key`), `pending`, `accepted` or the status, ` at RATE` when it has one, and the reason. */
int cli_peer_answer(json_t *result, const char *id_key, int64_t wait_ms, bool json,
                    const char *what, const char *who);

#endif
