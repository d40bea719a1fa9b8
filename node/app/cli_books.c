/*
 * `corridor ledger`, `operations` and `audit`: reading the books, with the node running or
 * stopped (the ledger is opened read-only).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "cli_common.h"
#include "commands.h"
#include "fsutil.h"
#include "render.h"

/* ---- corridor ledger ------------------------------------------------------------------ */

static const cli_spec_t ledger_spec = {
    .usage = "corridor ledger --home DIR [--json]",
    .help = "Positions, counts and (with --json) every settlement; works with the node running "
            "or stopped.\nExample: corridor ledger --home bank-a --json\n",
    .json = true};

int cmd_ledger(int argc, char **argv)
{
    cli_args_t args;
    int rc = cli_parse(argc, argv, &ledger_spec, NULL, NULL, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    config_t *config = NULL;
    ledger_t *ledger = NULL;
    if ((rc = cli_open_books(args.home, &config, &ledger)) == EXIT_OK) {
        rc = args.json ? render_ledger_json(ledger, config) : render_ledger_text(ledger, config);
    }
    ledger_close(&ledger);
    config_destroy(&config);
    return rc;
}

/* ---- corridor operations -------------------------------------------------------------- */

static const cli_spec_t operations_spec = {
    .usage = "corridor operations --home DIR [--json]",
    .help = "Every action a person took on the books or a channel (repairs, key rotations and "
            "replacements,\nreviews, cancellations, returns), with the local user, the time and "
            "the arguments, as\nthe journal records them; works with the node running or "
            "stopped.\n"
            "Example: corridor operations --home bank-a --json\n",
    .json = true};

int cmd_operations(int argc, char **argv)
{
    cli_args_t args;
    int rc = cli_parse(argc, argv, &operations_spec, NULL, NULL, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    config_t *config = NULL;
    ledger_t *ledger = NULL;
    operations_out_t out = {args.json ? json_array() : NULL, 0};
    if ((rc = cli_open_books(args.home, &config, &ledger)) != EXIT_OK) {
        goto cleanup;
    }
    if (ledger_operations(ledger, render_operation, &out) != LEDGER_OK) {
        complain("%s: %s", LEDGER_FILE, ledger_last_error(ledger));
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    if (args.json) {
        rc = cli_print_document(json_pack("{s:O}", "operations", out.list));
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

typedef struct {
    peer_card_t cards[AUDIT_CARDS_MAX];
    size_t cards_count;
} audit_cards_t;

enum { OPT_PEER_CARD = 1 };

static int audit_option(void *ctx, int key, const char *value)
{
    audit_cards_t *a = ctx;
    assert(key == OPT_PEER_CARD);
    if (a->cards_count == AUDIT_CARDS_MAX) {
        complain("at most %d cards", AUDIT_CARDS_MAX);
        return EXIT_USAGE;
    }
    int rc = read_card_file(value, &a->cards[a->cards_count]);
    a->cards_count += rc == EXIT_OK;
    return rc;
}

static const struct option audit_options[] = {{"peer-card", required_argument, NULL, OPT_PEER_CARD},
                                              {NULL, 0, NULL, 0}};

static const cli_spec_t audit_spec = {
    .usage = "corridor audit --home DIR [--home DIR2 ...] [--peer-card FILE ...] [--json]",
    .help = "Checks I1, I3, I4, I5 and cached balances on each home and I2 between every pair; "
            "read-only.\nPeers' keys come from the cards given (a file as `corridor card` "
            "prints it; several per peer\nfor a key history), else from the audited home's own "
            "config, which stderr then says.\nExit 0 clean, 1 violations.\nExample: corridor "
            "audit --home bank-a --home bank-b --peer-card bank-b.card --json\n",
    .json = true,
    .homes_max = CLI_HOMES_MAX,
    .options = audit_options};

int cli_audit_homes(const char *const *homes, size_t homes_count, const peer_card_t *cards,
                    size_t cards_count, bool json, json_t **doc_out)
{
    for (size_t i = 0; i < homes_count; i++) {
        home_t home;
        int rc;
        if ((rc = cli_home(&home, homes[i])) != EXIT_OK ||
            (rc = cli_require_home(&home)) != EXIT_OK) {
            return rc;
        }
    }
    audit_report_t report;
    audit_report_init(&report);
    (void)audit_homes(homes, homes_count, cards, cards_count, &report);
    bool ok = report.violations_count == 0 && report.violations_dropped == 0;
    int rc = ok ? EXIT_OK : EXIT_NEGATIVE;
    if (doc_out != NULL) {
        *doc_out = render_audit_json(&report);
    } else {
        rc = render_audit(&report, homes_count, json);
    }
    audit_report_free(&report);
    return rc;
}

int cmd_audit(int argc, char **argv)
{
    static audit_cards_t cards; /* 64 cards: not on the stack */
    memset(&cards, 0, sizeof cards);
    cli_args_t args;
    int rc = cli_parse(argc, argv, &audit_spec, audit_option, &cards, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    home_t home;
    if (args.homes_count == 0) { /* $CORRIDOR_HOME or the default */
        if ((rc = cli_home(&home, NULL)) != EXIT_OK) {
            return rc;
        }
        args.homes[args.homes_count++] = home.dir;
    }
    return cli_audit_homes(args.homes, args.homes_count, cards.cards, cards.cards_count, args.json,
                           NULL);
}
