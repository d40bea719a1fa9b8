/*
 * `corridor fx`: a payment-versus-payment FX trade with a peer (PROTOCOL.md 3.10). This node pays
 * one currency and receives another, both legs in one signed FxProposal that the peer books both
 * or neither: accepted inside the rate band its config sets for the pair, refused outside it,
 * held for a person's review when it sets none. Nobody expires a trade on its own clock: the
 * proposer shows `expired` and keeps both legs pending until the peer's signed answer.
 */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "validate.h"

#define FX_EXPIRES_IN_S_MAX (366 * 86400)

typedef struct {
    const char *peer;
    char pay[2][48]; /* currency, amount */
    char receive[2][48];
    int64_t expires_in_ms;
    int64_t wait_ms;
} fx_args_t;

enum { OPT_PEER = 1, OPT_PAY, OPT_RECEIVE, OPT_EXPIRES_IN, OPT_WAIT };

/* Splits "CCY=DEC" into its currency and amount (the node checks both). */
static int leg_option(const char *name, const char *value, char leg[2][48])
{
    const char *eq = strchr(value, '=');
    if (eq == NULL || eq == value || (size_t)(eq - value) >= sizeof leg[0] || eq[1] == '\0' ||
        strlen(eq + 1) >= sizeof leg[1]) {
        complain("--%s %s: not CURRENCY=AMOUNT (as RUB=1000000.00)", name, value);
        return EXIT_USAGE;
    }
    snprintf(leg[0], sizeof leg[0], "%.*s", (int)(eq - value), value);
    snprintf(leg[1], sizeof leg[1], "%s", eq + 1);
    return EXIT_OK;
}

static int fx_option(void *ctx, int key, const char *value)
{
    fx_args_t *a = ctx;
    switch (key) {
    case OPT_PEER:
        if (node_code_check(value) != VALID_OK) {
            complain("--peer %s: not a node code", value);
            return EXIT_USAGE;
        }
        a->peer = value;
        return EXIT_OK;
    case OPT_PAY:
        return leg_option("pay", value, a->pay);
    case OPT_RECEIVE:
        return leg_option("receive", value, a->receive);
    case OPT_EXPIRES_IN: {
        int rc = cli_seconds("--expires-in", value, FX_EXPIRES_IN_S_MAX, &a->expires_in_ms);
        if (rc == EXIT_OK && a->expires_in_ms == 0) {
            complain("--expires-in 0: a trade must have at least a second to arrive");
            return EXIT_USAGE;
        }
        return rc;
    }
    default:
        return cli_seconds("--wait", value, 86400, &a->wait_ms);
    }
}

static const struct option fx_options[] = {{"peer", required_argument, NULL, OPT_PEER},
                                           {"pay", required_argument, NULL, OPT_PAY},
                                           {"receive", required_argument, NULL, OPT_RECEIVE},
                                           {"expires-in", required_argument, NULL, OPT_EXPIRES_IN},
                                           {"wait", required_argument, NULL, OPT_WAIT},
                                           {NULL, 0, NULL, 0}};

static const cli_spec_t fx_spec = {
    .usage = "corridor fx --home DIR --peer CODE --pay CCY=AMOUNT --receive CCY=AMOUNT\n"
             "                  [--expires-in SECONDS] [--wait SECONDS] [--json]",
    .help =
        "Proposes an FX trade settled payment-versus-payment: this node pays one currency to\n"
        "the peer and receives another, both legs in one signed message, booked by both sides\n"
        "both or neither. Amounts are decimals in their currency. The peer accepts a trade\n"
        "whose rate lies inside its band for the pair (fx_band.RUB_IRR = 440..460 in its\n"
        "config), refuses it outside (AG01), and holds it for a person's `review` without one.\n"
        "The leg the peer pays reserves room in the cap this node grants it (exit 1 when it\n"
        "does not fit). --expires-in (default 86400): the peer refuses it AB05 from then on;\n"
        "this node never expires it on its own clock. Exits 0 once the trade is committed;\n"
        "with --wait: 0 accepted, 1 refused or expired, 4 timed out (held or not).\n"
        "Example: corridor fx --home bank-a --peer BMJIIRTH --pay RUB=1000000 "
        "--receive IRR=450000000 --wait 30\n",
    .json = true,
    .options = fx_options};

int cmd_fx(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    fx_args_t a = {.expires_in_ms = 86400 * 1000LL};
    int rc = cli_parse(argc, argv, &fx_spec, fx_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.peer == NULL || a.pay[0][0] == '\0' || a.receive[0][0] == '\0') {
        complain("--peer, --pay and --receive are required");
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:I, s:I}", "cmd", "fx", "peer",
                            a.peer, "pay", "currency", a.pay[0], "amount", a.pay[1], "receive",
                            "currency", a.receive[0], "amount", a.receive[1], "expires_in_ms",
                            (json_int_t)a.expires_in_ms, "wait_ms", (json_int_t)a.wait_ms);
    json_t *result = NULL;
    if ((rc = cli_call_node_result(&home, req, (int)a.wait_ms + 30000, &result)) != EXIT_OK) {
        return rc;
    }
    return cli_peer_answer(result, "fx_id", a.wait_ms, args.json, "trade", "peer");
}
