/*
 * `corridor cancel`: the payer asks a pending payment back (camt.056, PROTOCOL.md 3.8.4). The
 * request goes after everything queued on the channel; the payee cancels the payment only if it
 * still holds it (screening or review), else refuses. With --wait, the command waits for the
 * payment's final status: 0 cancelled, 1 refused (it was decided), 4 timed out.
 */
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "cli_common.h"
#include "commands.h"
#include "validate.h"

typedef struct {
    const char *uetr;
    const char *reason;
    const char *peer;
    int64_t wait_ms;
} cancel_args_t;

enum { OPT_UETR = 1, OPT_REASON, OPT_WAIT, OPT_PEER };

static int cancel_option(void *ctx, int key, const char *value)
{
    cancel_args_t *a = ctx;
    if (key == OPT_WAIT) {
        return cli_seconds("--wait", value, 86400, &a->wait_ms);
    }
    if (key == OPT_PEER) {
        if (node_code_check(value) != VALID_OK) {
            complain("--peer %s: not a node code", value);
            return EXIT_USAGE;
        }
        a->peer = value;
        return EXIT_OK;
    }
    if (key == OPT_UETR && uetr_check(value) != VALID_OK) {
        complain("--uetr %s: not a UETR (a lower-case UUIDv4)", value);
        return EXIT_USAGE;
    }
    if (key == OPT_REASON && !channel_cancel_reason_valid(value)) {
        complain("--reason %s: not one of CUST, DUPL, FRAD, TECH, UPAY, AM09, AC03", value);
        return EXIT_USAGE;
    }
    *(key == OPT_UETR ? &a->uetr : &a->reason) = value;
    return EXIT_OK;
}

static const struct option cancel_options[] = {{"uetr", required_argument, NULL, OPT_UETR},
                                               {"reason", required_argument, NULL, OPT_REASON},
                                               {"wait", required_argument, NULL, OPT_WAIT},
                                               {"peer", required_argument, NULL, OPT_PEER},
                                               {NULL, 0, NULL, 0}};

static const cli_spec_t cancel_spec = {
    .usage = "corridor cancel --home DIR --uetr UETR --reason CODE [--peer CODE] [--wait SECONDS] "
             "[--json]",
    .help =
        "Asks a pending payment of this node back (camt.056), as an operator action on record.\n"
        "CODE (ISO ExternalCancellationReason1Code): CUST, DUPL, FRAD, TECH, UPAY, AM09, AC03.\n"
        "The request follows everything already queued to the payee: a payment the payee\n"
        "still holds (screening, review) is cancelled, rejected with CODE on both sides; one\n"
        "it decided is not (camt.029 RJCR). Exits 0 once the request is committed; with\n"
        "--wait: 0 cancelled, 1 refused (decided: settled or rejected), 4 timed out.\n"
        "Exit 1 at once for a payment already final here. Expiry (send --expires-in), not\n"
        "cancellation, is the remedy for a payment stuck before it reaches the payee.\n"
        "Example: corridor cancel --home bank-a --uetr 3f2a...-... --reason DUPL --wait 30\n",
    .json = true,
    .options = cancel_options};

int cmd_cancel(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    cancel_args_t a = {0};
    int rc = cli_parse(argc, argv, &cancel_spec, cancel_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.uetr == NULL || a.reason == NULL) {
        complain("--uetr and --reason are required");
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s, s:s, s:s, s:I}", "cmd", "cancel", "uetr", a.uetr, "reason",
                            a.reason, "wait_ms", (json_int_t)a.wait_ms);
    if (req != NULL && a.peer != NULL) {
        json_object_set_new(req, "peer", json_string(a.peer));
    }
    json_t *result = NULL;
    if ((rc = cli_call_node_result(&home, req, (int)a.wait_ms + 30000, &result)) != EXIT_OK) {
        return rc;
    }
    const char *status = json_string_value(json_object_get(result, "status"));
    const char *reason = json_string_value(json_object_get(result, "reason"));
    bool cancelled = json_is_true(json_object_get(result, "cancelled"));
    bool pending = status == NULL || strcmp(status, "pending") == 0;
    bool asked = json_is_string(json_object_get(result, "cancellation_id"));
    if (!asked && !pending && !cancelled) {
        complain("%s is %s%s%s already: nothing sent", a.uetr, status, reason ? " " : "",
                 reason ? reason : "");
        rc = EXIT_NEGATIVE;
    } else if (a.wait_ms > 0 && pending) {
        complain("timed out after %.1f s waiting for the payee's answer", (double)a.wait_ms / 1000);
        rc = EXIT_TIMEOUT;
    } else if (a.wait_ms > 0 && !cancelled) {
        complain("not cancelled: the payee had decided it (%s%s%s)", status, reason ? " " : "",
                 reason ? reason : "");
        rc = EXIT_NEGATIVE;
    }
    if (args.json) {
        int printed = cli_print_document(result);
        return rc != EXIT_OK ? rc : printed;
    }
    printf("%s %s%s%s%s\n", a.uetr, cancelled ? "cancelled" : status, reason ? " " : "",
           reason ? reason : "", pending && asked ? " (cancellation asked)" : "");
    json_decref(result);
    return rc;
}
