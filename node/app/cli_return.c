/*
 * `corridor return`: the payee of a settled payment gives all or part of it back (pacs.004,
 * PROTOCOL.md 3.9). The return is pending until the original payer's signed pacs.002 on it:
 * accepted, both sides move their positions back by the amount; refused, nothing moves. Several
 * partial returns may follow one payment; together they never exceed it. With --wait, the
 * command waits for the payer's answer: 0 accepted, 1 refused, 4 timed out.
 */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "validate.h"

typedef struct {
    const char *uetr;
    const char *reason;
    const char *amount;
    const char *peer;
    int64_t wait_ms;
} return_args_t;

enum { OPT_UETR = 1, OPT_REASON, OPT_AMOUNT, OPT_WAIT, OPT_PEER };

static int return_option(void *ctx, int key, const char *value)
{
    return_args_t *a = ctx;
    switch (key) {
    case OPT_WAIT:
        return cli_seconds("--wait", value, 86400, &a->wait_ms);
    case OPT_PEER:
        if (node_code_check(value) != VALID_OK) {
            complain("--peer %s: not a node code", value);
            return EXIT_USAGE;
        }
        a->peer = value;
        return EXIT_OK;
    case OPT_UETR:
        if (uetr_check(value) != VALID_OK) {
            complain("--uetr %s: not a UETR (a lower-case UUIDv4)", value);
            return EXIT_USAGE;
        }
        a->uetr = value;
        return EXIT_OK;
    case OPT_REASON:
        if (reason_code_check(value) != VALID_OK) {
            complain("--reason %s: not an ISO return reason code (four of A-Z 0-9, as AC04)",
                     value);
            return EXIT_USAGE;
        }
        a->reason = value;
        return EXIT_OK;
    default:
        a->amount = value; /* parsed by the node, which knows the payment's currency */
        return EXIT_OK;
    }
}

static const struct option return_options[] = {{"uetr", required_argument, NULL, OPT_UETR},
                                               {"reason", required_argument, NULL, OPT_REASON},
                                               {"amount", required_argument, NULL, OPT_AMOUNT},
                                               {"wait", required_argument, NULL, OPT_WAIT},
                                               {"peer", required_argument, NULL, OPT_PEER},
                                               {NULL, 0, NULL, 0}};

static const cli_spec_t return_spec = {
    .usage = "corridor return --home DIR --uetr UETR --reason CODE [--amount DEC] [--peer CODE] "
             "[--wait SECONDS] [--json]",
    .help =
        "Returns all or part of a settled payment this node received (pacs.004), as an\n"
        "operator action on record. CODE is an ISO return reason (AC04 closed account, AC06\n"
        "blocked, MD06 refund at the customer's request, RR04 regulatory, CUST, FOCR, ...).\n"
        "--amount is a decimal in the payment's currency; without it, all that is left.\n"
        "The return has its own id and stays pending until the payer accepts or refuses it;\n"
        "pending and accepted returns of a payment never exceed it (exit 2 otherwise).\n"
        "Exits 0 once the return is committed; with --wait: 0 accepted, 1 refused, 4 timed out.\n"
        "Example: corridor return --home bank-b --uetr 3f2a...-... --amount 250.00 --reason AC04 "
        "--wait 30\n",
    .json = true,
    .options = return_options};

int cmd_return(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    return_args_t a = {0};
    int rc = cli_parse(argc, argv, &return_spec, return_option, &a, &args);
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
    json_t *req = json_pack("{s:s, s:s, s:s, s:I}", "cmd", "return", "uetr", a.uetr, "reason",
                            a.reason, "wait_ms", (json_int_t)a.wait_ms);
    if (req != NULL && a.peer != NULL) {
        json_object_set_new(req, "peer", json_string(a.peer));
    }
    if (req != NULL && a.amount != NULL) {
        json_object_set_new(req, "amount", json_string(a.amount));
    }
    json_t *result = NULL;
    if ((rc = cli_call_node_result(&home, req, (int)a.wait_ms + 30000, &result)) != EXIT_OK) {
        return rc;
    }
    return cli_peer_answer(result, "return_id", a.wait_ms, args.json, "return", "payer");
}
