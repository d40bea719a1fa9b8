/*
 * `corridor review`: the payments this node holds for a person (PROTOCOL.md 3.8.2), and a
 * person's decision on one. Listing reads the books (the node may be running or not);
 * deciding asks the running node, which records the operator action and the decision in one
 * transaction and answers the payer.
 */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "cycles.h"
#include "validate.h"

/* ---- review list ------------------------------------------------------------------------ */

typedef struct {
    json_t *list; /* --json: the held payments, else NULL (printed as they come) */
    size_t count;
} held_list_t;

static void list_held(const ledger_held_t *h, void *arg)
{
    held_list_t *l = arg;
    const settlement_t *s = &h->s;
    l->count++;
    /* a leg of an FX trade is decided with its trade, by the trade's id (PROTOCOL.md 3.10.4) */
    bool leg = settlement_is_fx_leg(s);
    const char *id = leg ? s->fx_id : s->uetr;
    bool we_pay = settlement_money_direction(s) == DIRECTION_OUT;
    if (l->list != NULL) {
        json_t *item = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id,
                                 "uetr", s->uetr, "peer", s->peer, "amount_minor",
                                 (json_int_t)s->amount_minor, "currency", s->currency, "hold",
                                 h->hold, "debtor", s->debtor_name, "creditor", s->creditor_name,
                                 "remittance", s->remittance, "value_date", s->value_date);
        if (item != NULL) {
            json_object_set_new(item, "kind", json_string(leg ? "fx_leg" : "payment"));
        }
        if (item != NULL && s->expires_unix_ms != 0) {
            json_object_set_new(item, "expires_unix_ms", json_integer(s->expires_unix_ms));
        }
        if (item != NULL && leg) {
            json_object_set_new(item, "fx_id", json_string(s->fx_id));
            json_object_set_new(item, "direction", json_string(we_pay ? "out" : "in"));
        }
        json_array_append_new(l->list, item);
        return;
    }
    char amount[32];
    const currency_t *c = currency_find(s->currency);
    amount_format(s->amount_minor, c != NULL ? c->exponent : 0, amount, sizeof amount);
    if (leg) {
        printf("%s  %s %-11s %18s %s  %-9s  FX leg %s\n", id, we_pay ? "to  " : "from", s->peer,
               amount, s->currency, h->hold, s->uetr);
        return;
    }
    printf("%s  from %-11s %18s %s  %-9s  %s -> %s\n", s->uetr, s->peer, amount, s->currency,
           h->hold, s->debtor_name, s->creditor_name);
}

/* A net settlement of a closed cycle the debtor says it paid (PROTOCOL.md 3.11.3): held until a
 * person here sees the funds arrive. Ours as debtor wait at the peer, not here. */
static void list_held_net(const ledger_net_t *n, void *arg)
{
    held_list_t *l = arg;
    if (n->status != STATUS_HELD || n->we_owe) {
        return;
    }
    l->count++;
    if (l->list != NULL) {
        json_array_append_new(
            l->list, json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s}", "id", n->id, "kind",
                               "net_settlement", "peer", n->peer, "cycle", (json_int_t)n->cycle,
                               "currency", n->currency, "amount_minor", (json_int_t)n->amount_minor,
                               "hold", "review", "reference", n->reference));
        return;
    }
    char amount[32];
    const currency_t *c = currency_find(n->currency);
    amount_format(n->amount_minor, c != NULL ? c->exponent : 0, amount, sizeof amount);
    printf("%s  from %-11s %18s %s  %-9s  net settlement of cycle %llu, reference %s\n", n->id,
           n->peer, amount, n->currency, "review", (unsigned long long)n->cycle, n->reference);
}

static const cli_spec_t review_list_spec = {
    .usage = "corridor review list --home DIR [--json]",
    .help = "Lists the incoming payments this node holds: `screening` waits for the screening\n"
            "program, `review` for a person (corridor review accept|reject). The payer sees each\n"
            "as pending, held at the peer. The two legs of an FX trade held for a person are\n"
            "listed under the trade's id, which decides both. A net settlement of a closed\n"
            "cycle (corridor cycle settle at the peer) waits here for a person who has seen the\n"
            "funds arrive; in JSON its kind is net_settlement.\n"
            "Example: corridor review list --home bank-b --json\n",
    .json = true};

static int cmd_review_list(int argc, char **argv)
{
    cli_args_t args;
    int rc = cli_parse(argc, argv, &review_list_spec, NULL, NULL, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    config_t *config = NULL;
    ledger_t *ledger = NULL;
    held_list_t l = {args.json ? json_array() : NULL, 0};
    if ((rc = cli_open_books(args.home, &config, &ledger)) == EXIT_OK &&
        (ledger_held(ledger, list_held, &l) != LEDGER_OK ||
         ledger_nets(ledger, NULL, list_held_net, &l) != LEDGER_OK)) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        rc = EXIT_INTERNAL;
    }
    if (rc == EXIT_OK && args.json) {
        rc = cli_print_document(json_pack("{s:s, s:o}", "node", config->name, "held", l.list));
        l.list = NULL;
    } else if (rc == EXIT_OK && l.count == 0) {
        printf("no payment held\n");
    }
    json_decref(l.list);
    ledger_close(&ledger);
    config_destroy(&config);
    return rc;
}

/* ---- review accept | reject --------------------------------------------------------------- */

typedef struct {
    const char *id;
    const char *reason;
    const char *peer;
} review_args_t;

enum { OPT_ID = 1, OPT_REASON, OPT_PEER };

static int review_option(void *ctx, int key, const char *value)
{
    review_args_t *a = ctx;
    if (key == OPT_PEER) {
        if (node_code_check(value) != VALID_OK) {
            complain("--peer %s: not a node code", value);
            return EXIT_USAGE;
        }
        a->peer = value;
    } else if (key == OPT_ID) {
        if (uetr_check(value) != VALID_OK) {
            complain("--id %s: not a UETR (a lower-case UUIDv4)", value);
            return EXIT_USAGE;
        }
        a->id = value;
    } else {
        if (reason_code_check(value) != VALID_OK) {
            complain("--reason %s: not an ISO reason code (4 of A-Z, 0-9)", value);
            return EXIT_USAGE;
        }
        a->reason = value;
    }
    return EXIT_OK;
}

static const struct option review_options[] = {{"id", required_argument, NULL, OPT_ID},
                                               {"reason", required_argument, NULL, OPT_REASON},
                                               {"peer", required_argument, NULL, OPT_PEER},
                                               {NULL, 0, NULL, 0}};

static const cli_spec_t review_decide_spec = {
    .usage = "corridor review accept|reject --home DIR --id UETR [--peer CODE] [--reason CODE] "
             "[--json]",
    .help = "Decides a payment this node holds (see corridor review list), as an operator action\n"
            "on record: accept settles it, reject refuses it with --reason (an ISO code, default\n"
            "RR04). The payer gets the signed answer. --id may also name an FX trade held for\n"
            "review, or a held net settlement of a cycle: accept only once the funds arrived (its\n"
            "headroom is renewed), reject (default RR04) if they did not. Exit 2 when the payment "
            "is not held (decided\n"
            "already, by the screening program, an expiry or the payer's cancellation). --peer\n"
            "names the payer when several peers sent a payment with that UETR (exit 2 otherwise).\n"
            "Example: corridor review accept --home bank-b --id 3f2a...-...\n",
    .json = true,
    .options = review_options};

static int cmd_review_decide(int argc, char **argv, bool accept)
{
    cli_args_t args;
    home_t home;
    review_args_t a = {0};
    int rc = cli_parse(argc, argv, &review_decide_spec, review_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.id == NULL) {
        complain("--id is required (the UETR of a held payment: corridor review list)");
        return EXIT_USAGE;
    }
    if (accept && a.reason != NULL) {
        complain("--reason goes with reject only");
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s, s:s, s:s}", "cmd", "review", "decision",
                            accept ? "accept" : "reject", "id", a.id);
    if (req != NULL && a.reason != NULL) {
        json_object_set_new(req, "reason", json_string(a.reason));
    }
    if (req != NULL && a.peer != NULL) {
        json_object_set_new(req, "peer", json_string(a.peer));
    }
    json_t *result = NULL;
    if ((rc = cli_call_node_result(&home, req, 30000, &result)) != EXIT_OK) {
        return rc;
    }
    if (args.json) {
        return cli_print_document(result);
    }
    const char *reason = json_string_value(json_object_get(result, "reason"));
    printf("%s %s%s%s\n", a.id, json_string_value(json_object_get(result, "status")),
           reason != NULL ? " " : "", reason != NULL ? reason : "");
    json_decref(result);
    return EXIT_OK;
}

int cmd_review(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        cli_set_command("corridor review list");
        return cmd_review_list(argc - 1, argv + 1);
    }
    if (argc >= 2 && (strcmp(argv[1], "accept") == 0 || strcmp(argv[1], "reject") == 0)) {
        bool accept = strcmp(argv[1], "accept") == 0;
        cli_set_command(accept ? "corridor review accept" : "corridor review reject");
        return cmd_review_decide(argc - 1, argv + 1, accept);
    }
    complain("expected a subcommand: %s, or %s", review_list_spec.usage, review_decide_spec.usage);
    return EXIT_USAGE;
}
