/*
 * `corridor cycle`: settlement cycles with a peer (PROTOCOL.md 3.11). `close` asks the running
 * node to propose the next cycle at its present cut; `settle` is run by the net debtor once it
 * has paid a closed cycle's net outside the channel (a pacs.009, held at the creditor until a
 * person confirms the funds arrived); `list` reads the books, node running or not, and verifies
 * both signatures of every cycle again.
 */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "cycles.h"
#include "validate.h"

typedef struct {
    const char *peer;
    int64_t wait_ms;
    uint64_t cycle;
    const char *reference;
    const char *method;
    const char *clearing_system;
    const char *currencies[CYCLE_CURRENCIES_MAX];
    size_t n_currencies;
} cycle_args_t;

enum { OPT_PEER = 1, OPT_WAIT, OPT_CYCLE, OPT_REFERENCE, OPT_CURRENCY, OPT_METHOD, OPT_CLEARING };

static int cycle_option(void *ctx, int key, const char *value)
{
    cycle_args_t *a = ctx;
    switch (key) {
    case OPT_PEER:
        if (node_code_check(value) != VALID_OK) {
            complain("--peer %s: not a node code", value);
            return EXIT_USAGE;
        }
        a->peer = value;
        return EXIT_OK;
    case OPT_CYCLE: {
        char *end = NULL;
        unsigned long long v = strtoull(value, &end, 10);
        if (value[0] < '1' || value[0] > '9' || *end != '\0' || v > CORRIDOR_SEQUENCE_MAX) {
            complain("--cycle %s: not a cycle number (1, 2, ...)", value);
            return EXIT_USAGE;
        }
        a->cycle = v;
        return EXIT_OK;
    }
    case OPT_REFERENCE:
        if (!cycle_reference_valid(value)) {
            complain("--reference: 1 to %d printable ASCII characters", CYCLE_REFERENCE_MAX);
            return EXIT_USAGE;
        }
        a->reference = value;
        return EXIT_OK;
    case OPT_CURRENCY:
        if (currency_find(value) == NULL || a->n_currencies == CYCLE_CURRENCIES_MAX) {
            complain("--currency %s: not an ISO 4217 code this program knows", value);
            return EXIT_USAGE;
        }
        a->currencies[a->n_currencies++] = value;
        return EXIT_OK;
    case OPT_METHOD:
        if (strcmp(value, "INDA") != 0 && strcmp(value, "INGA") != 0 &&
            strcmp(value, "CLRG") != 0) {
            complain("--method %s: INDA, INGA or CLRG", value);
            return EXIT_USAGE;
        }
        a->method = value;
        return EXIT_OK;
    case OPT_CLEARING:
        if (!cycle_reference_valid(value)) {
            complain("--clearing-system: 1 to %d printable ASCII characters", CYCLE_REFERENCE_MAX);
            return EXIT_USAGE;
        }
        a->clearing_system = value;
        return EXIT_OK;
    default:
        return cli_seconds("--wait", value, 86400, &a->wait_ms);
    }
}

static const struct option close_options[] = {{"peer", required_argument, NULL, OPT_PEER},
                                              {"wait", required_argument, NULL, OPT_WAIT},
                                              {NULL, 0, NULL, 0}};

static const cli_spec_t close_spec = {
    .usage = "corridor cycle close --home DIR --peer CODE [--wait SECONDS] [--json]",
    .help = "Closes the current settlement cycle with a peer: the running node proposes a cut at\n"
            "its sent and applied sequence numbers now, with its signed statement of the cycle\n"
            "(per currency gross both ways, net and count, and the digest of its entries); the\n"
            "peer countersigns the same bytes, or disputes them with its own. Payments keep\n"
            "flowing; those made final after the cut fall in the next cycle. If both sides\n"
            "propose at once, the proposal of the node whose code sorts first stands.\n"
            "Exits 0 once proposed; with --wait: 0 closed, 1 disputed or refused, 4 timed out.\n"
            "Example: corridor cycle close --home bank-a --peer BMJIIRTH --wait 30\n",
    .json = true,
    .options = close_options};

static const struct option settle_options[] = {
    {"peer", required_argument, NULL, OPT_PEER},
    {"cycle", required_argument, NULL, OPT_CYCLE},
    {"reference", required_argument, NULL, OPT_REFERENCE},
    {"currency", required_argument, NULL, OPT_CURRENCY},
    {"method", required_argument, NULL, OPT_METHOD},
    {"clearing-system", required_argument, NULL, OPT_CLEARING},
    {"wait", required_argument, NULL, OPT_WAIT},
    {NULL, 0, NULL, 0}};

static const cli_spec_t settle_spec = {
    .usage = "corridor cycle settle --home DIR --peer CODE --cycle N --reference TEXT\n"
             "                  [--currency CCY]... [--method INDA|INGA|CLRG]\n"
             "                  [--clearing-system TEXT] [--wait SECONDS] [--json]",
    .help = "Tells the peer that this node, the net debtor of a closed cycle, has paid its net\n"
            "outside the channel: one signed pacs.009 per currency (default: every currency this\n"
            "node owes in the cycle and has not settled). --reference names the outside\n"
            "transfer (1 to 35 characters); --method INDA (default) or INGA for an account one\n"
            "holds with the other, CLRG with --clearing-system naming the RTGS. The peer holds\n"
            "it until a person there confirms the funds arrived (`review accept --id ID`); then\n"
            "both books record it and the cap's headroom is renewed. Exit 2, nothing sent: the\n"
            "cycle is not closed, or this node is not the net debtor of a currency. With --wait:\n"
            "0 confirmed, 1 refused, 4 timed out.\n"
            "Example: corridor cycle settle --home bank-a --peer BMJIIRTH --cycle 1 "
            "--reference CBR-2026-0001 --wait 600\n",
    .json = true,
    .options = settle_options};

static int cycle_close(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    cycle_args_t a = {0};
    int rc = cli_parse(argc, argv, &close_spec, cycle_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.peer == NULL) {
        complain("--peer is required");
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *req = json_pack("{s:s, s:s, s:I}", "cmd", "cycle_close", "peer", a.peer, "wait_ms",
                            (json_int_t)a.wait_ms);
    json_t *result = NULL;
    if ((rc = cli_call_node_result(&home, req, (int)a.wait_ms + 30000, &result)) != EXIT_OK) {
        return rc;
    }
    const char *status = json_string_value(json_object_get(result, "status"));
    bool pending = status == NULL || strcmp(status, "pending") == 0;
    bool closed = status != NULL && strcmp(status, "settled") == 0;
    json_int_t cycle = json_integer_value(json_object_get(result, "cycle"));
    if (a.wait_ms > 0 && pending) {
        complain("timed out after %.1f s waiting for the peer's countersignature",
                 (double)a.wait_ms / 1000);
        rc = EXIT_TIMEOUT;
    } else if (a.wait_ms > 0 && !closed) {
        complain("cycle %lld not closed: the peer disputed or refused it (see cycle list)",
                 (long long)cycle);
        rc = EXIT_NEGATIVE;
    }
    if (args.json) {
        json_object_set_new(result, "state",
                            json_string(pending  ? "closing"
                                        : closed ? "closed"
                                                 : "not closed"));
        int printed = cli_print_document(result);
        return rc != EXIT_OK ? rc : printed;
    }
    printf("cycle %lld with %s %s\n", (long long)cycle, a.peer,
           pending  ? "proposed"
           : closed ? "closed"
                    : "not closed");
    json_decref(result);
    return rc;
}

static int cycle_settle(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    cycle_args_t a = {.method = "INDA", .clearing_system = ""};
    int rc = cli_parse(argc, argv, &settle_spec, cycle_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.peer == NULL || a.cycle == 0 || a.reference == NULL) {
        complain("--peer, --cycle and --reference are required");
        return EXIT_USAGE;
    }
    if ((strcmp(a.method, "CLRG") == 0) != (a.clearing_system[0] != '\0')) {
        complain("--clearing-system goes with --method CLRG, and only with it");
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *currencies = json_array();
    for (size_t i = 0; i < a.n_currencies; i++) {
        json_array_append_new(currencies, json_string(a.currencies[i]));
    }
    json_t *req = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:I}", "cmd", "cycle_settle",
                            "peer", a.peer, "cycle", (json_int_t)a.cycle, "reference", a.reference,
                            "method", a.method, "clearing_system", a.clearing_system, "currencies",
                            currencies, "wait_ms", (json_int_t)a.wait_ms);
    json_t *reply = NULL;
    if ((rc = cli_call_node(&home, req, (int)a.wait_ms + 30000, &reply)) != EXIT_OK) {
        json_decref(req);
        return rc;
    }
    json_decref(req);
    json_t *results = json_object_get(reply, "results");
    size_t i;
    json_t *item;
    json_array_foreach(results, i, item)
    {
        const char *status = json_string_value(json_object_get(item, "status"));
        const char *error = json_string_value(json_object_get(item, "error"));
        int code = EXIT_OK;
        if (error != NULL) {
            complain("%s", error);
            code = EXIT_INTERNAL;
        } else if (a.wait_ms > 0 && status != NULL && strcmp(status, "pending") == 0) {
            code = EXIT_TIMEOUT;
        } else if (a.wait_ms > 0 && status != NULL && strcmp(status, "settled") != 0) {
            code = EXIT_NEGATIVE;
        }
        rc = code > rc ? code : rc;
        if (!args.json) {
            const char *reason = json_string_value(json_object_get(item, "reason"));
            printf("%s %s %lld minor: %s%s%s\n",
                   json_string_value(json_object_get(item, "settlement_id")),
                   json_string_value(json_object_get(item, "currency")),
                   (long long)json_integer_value(json_object_get(item, "amount_minor")),
                   status == NULL                   ? "error"
                   : strcmp(status, "settled") == 0 ? "confirmed"
                   : strcmp(status, "pending") == 0 ? "sent, held by the peer for a person"
                                                    : status,
                   reason ? " " : "", reason ? reason : "");
        }
    }
    if (rc == EXIT_TIMEOUT) {
        complain("timed out after %.1f s waiting for the peer to confirm",
                 (double)a.wait_ms / 1000);
    }
    if (args.json) {
        int printed = cli_print_document(json_incref(reply));
        rc = rc != EXIT_OK ? rc : printed;
    }
    json_decref(reply);
    return rc;
}

/* ---- cycle list ------------------------------------------------------------------------- */

typedef struct {
    ledger_t *ledger;
    const config_t *config;
    const uint8_t *own_key; /* the node's signing key now */
    const char *peer;       /* only this peer's, or NULL */
    json_t *list;
    size_t count;
} cycle_list_t;

/* Whether `signature` over `statement` is by a key of that side: the card's or one on record. */
static bool signed_by(cycle_list_t *l, const char *peer, key_side_t side, const uint8_t *statement,
                      size_t len, const uint8_t *signature)
{
    const config_peer_t *p = config_find_peer_const(l->config, peer);
    const uint8_t *now = side == KEY_SIDE_OURS ? l->own_key
                         : p != NULL           ? p->card.sign_public
                                               : NULL;
    if (now != NULL && cycle_verify(statement, len, signature, now)) {
        return true;
    }
    return ledger_cycle_signed_by(l->ledger, peer, side, statement, len, signature);
}

typedef struct {
    json_t *by_currency; /* currency -> net settlement object */
    bool unsettled;      /* a net settlement of this cycle is missing or not settled */
    uint64_t cycle;
    const char *peer;
} nets_of_t;

static void collect_net(const ledger_net_t *n, void *arg)
{
    nets_of_t *o = arg;
    if (n->cycle != o->cycle) {
        return;
    }
    json_t *prior = json_object_get(o->by_currency, n->currency);
    const char *prior_status = json_string_value(json_object_get(prior, "status"));
    if (prior_status != NULL && strcmp(prior_status, "settled") == 0) {
        return; /* the settled one is what the cycle shows */
    }
    json_object_set_new(o->by_currency, n->currency,
                        json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", n->id, "status",
                                  status_name(n->status), "direction", n->we_owe ? "out" : "in",
                                  "amount_minor", (json_int_t)n->amount_minor, "reference",
                                  n->reference));
}

static void list_cycle(const ledger_cycle_t *c, void *arg)
{
    cycle_list_t *l = arg;
    if (l->peer != NULL && strcmp(l->peer, c->peer) != 0) {
        return;
    }
    cycle_statement_t st;
    bool decoded = cycle_statement_decode(c->statement, c->statement_len, &st);
    bool first = cycle_self_first(l->config->name, c->peer);
    bool own_ok =
        signed_by(l, c->peer, KEY_SIDE_OURS, c->statement, c->statement_len, c->own_signature);
    const uint8_t *peer_signed = c->peer_statement != NULL ? c->peer_statement : c->statement;
    size_t peer_len = c->peer_statement != NULL ? c->peer_statement_len : c->statement_len;
    bool peer_ok = c->has_peer_signature &&
                   signed_by(l, c->peer, KEY_SIDE_THEIRS, peer_signed, peer_len, c->peer_signature);
    nets_of_t nets = {json_object(), false, c->cycle, c->peer};
    if (ledger_nets(l->ledger, c->peer, collect_net, &nets) != LEDGER_OK) {
        json_object_clear(nets.by_currency); /* shown as not settled */
    }
    json_t *currencies = json_array();
    bool settled = c->state == CYCLE_CLOSED;
    for (size_t i = 0; decoded && i < st.n_currencies; i++) {
        int64_t paid, received, net;
        cycle_currency_view(&st.currencies[i], first, &paid, &received, &net);
        json_t *ns = json_object_get(nets.by_currency, st.currencies[i].currency);
        const char *ns_status = json_string_value(json_object_get(ns, "status"));
        if (net != 0 && (ns_status == NULL || strcmp(ns_status, "settled") != 0)) {
            settled = false;
        }
        json_array_append_new(currencies,
                              json_pack("{s:s, s:I, s:I, s:I, s:I, s:O?}", "currency",
                                        st.currencies[i].currency, "paid_minor", (json_int_t)paid,
                                        "received_minor", (json_int_t)received, "net_minor",
                                        (json_int_t)net, "count",
                                        (json_int_t)st.currencies[i].count, "net_settlement", ns));
    }
    json_decref(nets.by_currency);
    const char *state = settled ? "settled" : cycle_state_name(c->state);
    l->count++;
    if (l->list != NULL) {
        json_array_append_new(
            l->list,
            json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:o, s:{s:b, s:b}, s:s?, s:I, s:I}",
                      "peer", c->peer, "cycle", (json_int_t)c->cycle, "state", state, "proposed_by",
                      c->ours ? "us" : "peer", "own_sent", (json_int_t)c->own_sent, "peer_sent",
                      (json_int_t)c->peer_sent, "entry_count",
                      (json_int_t)(decoded ? st.entry_count : 0), "currencies", currencies,
                      "signatures", "own", own_ok, "peer", peer_ok, "error",
                      c->error[0] != '\0' ? c->error : NULL, "created_ms",
                      (json_int_t)c->created_ms, "closed_ms", (json_int_t)c->closed_ms));
        return;
    }
    printf("%-11s cycle %-4llu %-8s cut %llu/%llu  signatures: ours %s, peer's %s%s%s\n", c->peer,
           (unsigned long long)c->cycle, state, (unsigned long long)c->own_sent,
           (unsigned long long)c->peer_sent, own_ok ? "ok" : "BAD",
           c->has_peer_signature ? (peer_ok ? "ok" : "BAD") : "none", c->error[0] ? "  " : "",
           c->error);
    size_t i;
    json_t *item;
    json_array_foreach(currencies, i, item)
    {
        json_t *ns = json_object_get(item, "net_settlement");
        ns = json_is_object(ns) ? ns : NULL;
        printf("    %s paid %lld received %lld net %lld (%lld entries)%s%s\n",
               json_string_value(json_object_get(item, "currency")),
               (long long)json_integer_value(json_object_get(item, "paid_minor")),
               (long long)json_integer_value(json_object_get(item, "received_minor")),
               (long long)json_integer_value(json_object_get(item, "net_minor")),
               (long long)json_integer_value(json_object_get(item, "count")),
               ns != NULL ? "  net settlement " : "",
               ns != NULL ? json_string_value(json_object_get(ns, "status")) : "");
    }
    json_decref(currencies);
}

static const struct option list_options[] = {{"peer", required_argument, NULL, OPT_PEER},
                                             {NULL, 0, NULL, 0}};

static const cli_spec_t list_spec = {
    .usage = "corridor cycle list --home DIR [--peer CODE] [--json]",
    .help = "Every settlement cycle with each peer (or one): its state (closing, closed,\n"
            "settled, disputed), who proposed it, its cut, per currency what this node paid and\n"
            "received and its net (negative: this node owes), the net settlement, and both\n"
            "signatures verified again. Works with the node running or stopped.\n"
            "Example: corridor cycle list --home bank-a --peer BMJIIRTH --json\n",
    .json = true,
    .options = list_options};

static int cycle_list(int argc, char **argv)
{
    cli_args_t args;
    cycle_args_t a = {0};
    int rc = cli_parse(argc, argv, &list_spec, cycle_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    home_t home;
    config_t *config = NULL;
    identity_t *identity = NULL;
    ledger_t *ledger = NULL;
    if ((rc = cli_open_home(args.home, &home, &config, &identity)) != EXIT_OK) {
        goto cleanup;
    }
    config_destroy(&config);
    if ((rc = cli_open_books(args.home, &config, &ledger)) != EXIT_OK) {
        goto cleanup;
    }
    cycle_list_t l = {
        ledger, config, identity->sign_public, a.peer, args.json ? json_array() : NULL, 0};
    if (ledger_cycles(ledger, NULL, list_cycle, &l) != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        json_decref(l.list);
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    if (args.json) {
        rc = cli_print_document(json_pack("{s:s, s:o}", "node", config->name, "cycles", l.list));
    } else if (l.count == 0) {
        printf("no cycle closed yet\n");
    }

cleanup:
    ledger_close(&ledger);
    config_destroy(&config);
    identity_destroy(&identity);
    return rc;
}

int cmd_cycle(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "close") == 0) {
        cli_set_command("corridor cycle close");
        return cycle_close(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "settle") == 0) {
        cli_set_command("corridor cycle settle");
        return cycle_settle(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        cli_set_command("corridor cycle list");
        return cycle_list(argc - 1, argv + 1);
    }
    complain("expected a subcommand: %s,\n%s, or %s", close_spec.usage, settle_spec.usage,
             list_spec.usage);
    return EXIT_USAGE;
}
