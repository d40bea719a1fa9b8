/*
 * `corridor run`, `status`, `reconcile` and `key rotate`: the node itself, and what it is asked
 * over its control socket.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "cli_replace.h"
#include "keyannounce.h"
#include "commands.h"
#include "daemon.h"
#include "render.h"
#include "validate.h"

/* ---- corridor run -------------------------------------------------------------------- */

static const cli_spec_t run_spec = {
    .usage = "corridor run --home DIR",
    .help = "Runs the node in the foreground until SIGTERM or SIGINT; logs to stderr.\n"
            "Example: corridor run --home bank-a 2> bank-a.log &\n"};

int cmd_run(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    int rc = cli_parse(argc, argv, &run_spec, NULL, NULL, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    return daemon_run(home.dir);
}

/* ---- corridor status ------------------------------------------------------------------ */

static const cli_spec_t status_spec = {.usage = "corridor status --home DIR [--json]",
                                       .help = "The running node's state and each peer's channel.\n"
                                               "Example: corridor status --home bank-a --json\n",
                                       .json = true};

int cmd_status(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    json_t *reply = NULL;
    int rc = cli_parse(argc, argv, &status_spec, NULL, NULL, &args);
    if (rc != EXIT_OK || args.help || (rc = cli_home(&home, args.home)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s}", "cmd", "status");
    rc = cli_call_node(&home, req, 10000, &reply);
    json_decref(req);
    if (rc != EXIT_OK) {
        return rc;
    }
    json_object_del(reply, "ok");
    if (args.json) {
        return cli_print_document(reply);
    }
    render_status_text(reply);
    json_decref(reply);
    return EXIT_OK;
}

/* ---- corridor reconcile --------------------------------------------------------------- */

typedef struct {
    const char *peer;
    bool repair;
    int64_t timeout_ms;
} reconcile_args_t;

enum { OPT_PEER = 1, OPT_REPAIR, OPT_TIMEOUT };

static int reconcile_option(void *ctx, int key, const char *value)
{
    reconcile_args_t *a = ctx;
    switch (key) {
    case OPT_PEER:
        a->peer = value;
        return EXIT_OK;
    case OPT_REPAIR:
        a->repair = true;
        return EXIT_OK;
    default:
        assert(key == OPT_TIMEOUT);
        if (cli_seconds("--timeout", value, 300, &a->timeout_ms) != EXIT_OK) {
            return EXIT_USAGE;
        }
        if (a->timeout_ms < 1000) {
            complain("--timeout %s: expected seconds from 1 to 300", value);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
}

static const struct option reconcile_options[] = {{"peer", required_argument, NULL, OPT_PEER},
                                                  {"repair", no_argument, NULL, OPT_REPAIR},
                                                  {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                                  {NULL, 0, NULL, 0}};

static const cli_spec_t reconcile_spec = {
    .usage = "corridor reconcile --home DIR --peer CODE [--repair] [--json] [--timeout SECONDS]",
    .help = "Compares this node's books of the channel with the peer's signed statement and "
            "lists every break;\n--repair heals what signed evidence proves. Exit 0 no breaks, "
            "1 breaks remain.\nExample: corridor reconcile --home bank-a --peer BMJIIRTH --json\n",
    .json = true,
    .options = reconcile_options};

/* Asks the home's node to reconcile with one peer; prints the report; the exit code says
 * whether the books agree (0), not (1) or the peer did not answer in time (4). */
int cli_reconcile(const home_t *home, const char *peer, bool repair, int64_t timeout_ms, bool json,
                  json_t **report_out)
{
    json_t *req = json_pack("{s:s, s:s, s:b, s:I}", "cmd", "reconcile", "peer", peer, "repair",
                            repair, "timeout_ms", (json_int_t)timeout_ms);
    json_t *reply = NULL;
    int rc = cli_call_node(home, req, (int)timeout_ms + CLI_GRACE_MS, &reply);
    json_decref(req);
    if (rc != EXIT_OK) {
        return rc;
    }
    json_t *report = json_object_get(reply, "report");
    if (report_out != NULL) {
        *report_out = json_incref(report);
    } else if (json) {
        json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
    } else {
        render_reconcile_text(report);
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

int cmd_reconcile(int argc, char **argv)
{
    reconcile_args_t a = {.timeout_ms = 120000};
    cli_args_t args;
    home_t home;
    int rc = cli_parse(argc, argv, &reconcile_spec, reconcile_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.peer == NULL || node_code_check(a.peer) != VALID_OK) {
        complain("--peer CODE is required; usage: %s", reconcile_spec.usage);
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK) {
        return rc;
    }
    return cli_reconcile(&home, a.peer, a.repair, a.timeout_ms, args.json, NULL);
}

/* ---- corridor key rotate -------------------------------------------------------------- */

typedef struct {
    int64_t overlap_ms; /* -1: not given */
} key_rotate_args_t;

static int key_rotate_option(void *ctx, int key, const char *value)
{
    key_rotate_args_t *a = ctx;
    (void)key;
    if (strcmp(value, "0") == 0) { /* the old CURVE key goes at the switch */
        a->overlap_ms = 0;
        return EXIT_OK;
    }
    return cli_seconds("--overlap", value, KEY_SWITCH_OVERLAP_MAX_S, &a->overlap_ms);
}

static const struct option key_rotate_options[] = {{"overlap", required_argument, NULL, 1},
                                                   {NULL, 0, NULL, 0}};

static const cli_spec_t key_rotate_spec = {
    .usage = "corridor key rotate --home DIR [--overlap SECONDS] [--json]",
    .help = "Asks the running node to rotate its signing, box and CURVE keys. The new keys are\n"
            "announced on every channel in a sequenced message signed by the current key (with\n"
            "proof that the new one is held); later messages are signed by the new key. Once\n"
            "every peer acknowledged, the node serves its new CURVE key and says so on each\n"
            "channel (KeySwitch); peers reconnect to it, and admit the old CURVE key for\n"
            "--overlap more seconds (default 3600). The CURVE key stays if a peer has not shown\n"
            "it can switch. The keys before are kept in node.key.previous until then.\n"
            "A peer not heard from since the node started (down, or an older program) gets\n"
            "the announcement once it is. Refused (exit 1, nothing changed) while the last\n"
            "rotation is not yet announced to, or acknowledged by, every peer.\n"
            "Example: corridor key rotate --home bank-a --json\n",
    .json = true,
    .options = key_rotate_options};

static void print_rotation_text(json_t *reply)
{
    printf("signing key rotated: %s (was %s)\n",
           json_string_value(json_object_get(reply, "key_id")),
           json_string_value(json_object_get(reply, "previous_key_id")));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(reply, "announced"), i, a)
    {
        printf("  announced to %-11s at sequence %lld\n",
               json_string_value(json_object_get(a, "peer")),
               (long long)json_integer_value(json_object_get(a, "sequence")));
    }
}

static int cmd_key_rotate(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    json_t *reply = NULL;
    key_rotate_args_t a = {.overlap_ms = -1};
    int rc = cli_parse(argc, argv, &key_rotate_spec, key_rotate_option, &a, &args);
    if (rc != EXIT_OK || args.help || (rc = cli_home(&home, args.home)) != EXIT_OK ||
        (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s}", "cmd", "rotate");
    if (req != NULL && a.overlap_ms >= 0) {
        json_object_set_new(req, "overlap_s", json_integer(a.overlap_ms / 1000));
    }
    rc = cli_call_node(&home, req, 30000, &reply);
    json_decref(req);
    if (rc != EXIT_OK) {
        return rc;
    }
    json_object_del(reply, "ok");
    const char *warning = json_string_value(json_object_get(reply, "warning"));
    if (warning != NULL) {
        complain("warning: %s", warning);
    }
    if (args.json) {
        return cli_print_document(reply);
    }
    print_rotation_text(reply);
    json_decref(reply);
    return EXIT_OK;
}

int cmd_key(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "rotate") == 0) {
        cli_set_command("corridor key rotate");
        return cmd_key_rotate(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "replace") == 0) {
        cli_set_command("corridor key replace");
        return cmd_key_replace(argc - 1, argv + 1);
    }
    complain("expected a subcommand: %s, or corridor key replace --home DIR [--json]",
             key_rotate_spec.usage);
    return EXIT_USAGE;
}
