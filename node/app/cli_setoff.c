/*
 * `corridor setoff`: multilateral set-off (PROTOCOL.md 3.12). `propose` asks the running node to
 * propose taking one amount off every debt of a ring of banks (each owes the next); `list` reads
 * the books, node running or not, and shows every set-off this node took part in with its legs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "setoff.h"
#include "setoffs.h"
#include "validate.h"

typedef struct {
    const char *ring[SETOFF_RING_MAX];
    size_t n;
    char ring_text[SETOFF_RING_MAX * (CORRIDOR_NAME_LEN_MAX + 1) + 1];
    const char *currency;
    const char *amount;
    int64_t deadline_ms;
    int64_t wait_ms;
} setoff_args_t;

enum { OPT_RING = 1, OPT_CURRENCY, OPT_AMOUNT, OPT_DEADLINE, OPT_WAIT };

static int setoff_option(void *ctx, int key, const char *value)
{
    setoff_args_t *a = ctx;
    switch (key) {
    case OPT_RING: {
        if (strlen(value) >= sizeof a->ring_text) {
            complain("--ring: at most %d node codes", SETOFF_RING_MAX);
            return EXIT_USAGE;
        }
        snprintf(a->ring_text, sizeof a->ring_text, "%s", value);
        a->n = 0;
        for (char *save = NULL, *code = strtok_r(a->ring_text, ",", &save); code != NULL;
             code = strtok_r(NULL, ",", &save)) {
            if (node_code_check(code) != VALID_OK || a->n == SETOFF_RING_MAX) {
                complain("--ring %s: %d to %d node codes, comma-separated", value, SETOFF_RING_MIN,
                         SETOFF_RING_MAX);
                return EXIT_USAGE;
            }
            a->ring[a->n++] = code;
        }
        return EXIT_OK;
    }
    case OPT_CURRENCY:
        if (currency_find(value) == NULL) {
            complain("--currency %s: not an ISO 4217 code this program knows", value);
            return EXIT_USAGE;
        }
        a->currency = value;
        return EXIT_OK;
    case OPT_AMOUNT:
        a->amount = value;
        return EXIT_OK;
    case OPT_DEADLINE:
        return cli_seconds("--deadline", value, 86400, &a->deadline_ms);
    default:
        return cli_seconds("--wait", value, 86400, &a->wait_ms);
    }
}

static const struct option propose_options[] = {{"ring", required_argument, NULL, OPT_RING},
                                                {"currency", required_argument, NULL, OPT_CURRENCY},
                                                {"amount", required_argument, NULL, OPT_AMOUNT},
                                                {"deadline", required_argument, NULL, OPT_DEADLINE},
                                                {"wait", required_argument, NULL, OPT_WAIT},
                                                {NULL, 0, NULL, 0}};

static const cli_spec_t propose_spec = {
    .usage = "corridor setoff propose --home DIR --ring A,B,C[,...] --currency CCY\n"
             "                      [--amount DEC] [--deadline SECONDS] [--wait SECONDS] [--json]",
    .help = "Proposes a multilateral set-off: along the ring each bank owes the next (A owes B,\n"
            "B owes C, and the last owes A) in CCY, and the same amount comes off every one of\n"
            "those debts at once, all or nothing: nobody pays, every cap's headroom grows, each\n"
            "bank's net position over its peers is unchanged. This node must be on the ring (3\n"
            "to 8 banks) and have a card for each. Each bank checks its own books and signs its\n"
            "vote; this node alone decides: commit once every vote is in before the deadline\n"
            "(default 30 s), else abort. Without --amount, a first round asks each bank the most\n"
            "it can set off and the set-off uses the smallest answer.\n"
            "Exit 0 once proposed; with --wait: 0 committed, 1 refused or aborted, 4 timed out;\n"
            "1 at once when this node's own books refuse it, 2 bad input or a neighbour that\n"
            "does not take set-offs.\n"
            "Example: corridor setoff propose --home bank-a --ring BKRURUMM,BMJIIRTH,KZKOKZKX "
            "--currency RUB --amount 1000 --wait 10\n",
    .json = true,
    .options = propose_options};

static int setoff_propose(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    setoff_args_t a = {.deadline_ms = 30000};
    int rc = cli_parse(argc, argv, &propose_spec, setoff_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.n < SETOFF_RING_MIN || a.currency == NULL) {
        complain("--ring (at least %d banks) and --currency are required", SETOFF_RING_MIN);
        return EXIT_USAGE;
    }
    int64_t amount = 0;
    if (a.amount != NULL &&
        amount_parse(a.amount, currency_find(a.currency), false, &amount) != VALID_OK) {
        complain("--amount %s: not a positive amount in %s", a.amount, a.currency);
        return EXIT_USAGE;
    }
    if ((rc = cli_home(&home, args.home)) != EXIT_OK || (rc = cli_require_home(&home)) != EXIT_OK) {
        return rc;
    }
    json_t *ring = json_array();
    for (size_t i = 0; i < a.n; i++) {
        json_array_append_new(ring, json_string(a.ring[i]));
    }
    json_t *req =
        json_pack("{s:s, s:o, s:s, s:I, s:I, s:I}", "cmd", "setoff_propose", "ring", ring,
                  "currency", a.currency, "amount_minor", (json_int_t)amount, "deadline_ms",
                  (json_int_t)a.deadline_ms, "wait_ms", (json_int_t)a.wait_ms);
    json_t *result = NULL;
    if ((rc = cli_call_node_result(&home, req, (int)a.wait_ms + 30000, &result)) != EXIT_OK) {
        return rc;
    }
    const char *status = json_string_value(json_object_get(result, "status"));
    const char *reason = json_string_value(json_object_get(result, "reason"));
    bool pending = status == NULL || strcmp(status, "pending") == 0;
    bool committed = status != NULL && strcmp(status, "settled") == 0;
    const char *id = json_string_value(json_object_get(result, "setoff_id"));
    if (a.wait_ms > 0 && pending) {
        complain("timed out after %.1f s waiting for the set-off's decision",
                 (double)a.wait_ms / 1000);
        rc = EXIT_TIMEOUT;
    } else if (a.wait_ms > 0 && !committed) {
        complain("set-off %s aborted: %s", id != NULL ? id : "?", reason ? reason : "?");
        rc = EXIT_NEGATIVE;
    }
    if (args.json) {
        json_object_set_new(result, "state",
                            json_string(pending     ? "voting"
                                        : committed ? "committed"
                                                    : "aborted"));
        int printed = cli_print_document(result);
        return rc != EXIT_OK ? rc : printed;
    }
    printf("set-off %s %s\n", id != NULL ? id : "?",
           pending     ? "proposed"
           : committed ? "committed"
                       : "aborted");
    json_decref(result);
    return rc;
}

/* ---- setoff list ------------------------------------------------------------------------ */

typedef struct {
    ledger_t *ledger;
    const char *self;
    json_t *list; /* NULL: text */
    size_t count;
} setoff_list_t;

/* One leg of ours with `peer` as JSON (null when we hold none). */
static json_t *leg_of(setoff_list_t *l, const char *peer, const char *id)
{
    settlement_t s;
    ledger_outcome_t out;
    if (ledger_find(l->ledger, peer, id, &s, &out) != LEDGER_OK || !settlement_is_setoff_leg(&s)) {
        return json_null();
    }
    return json_pack("{s:s, s:s, s:s, s:s}", "peer", peer, "direction",
                     s.direction == DIRECTION_OUT ? "owed" : "owing_us", "status",
                     status_name(out.status), "reason", out.reason);
}

static bool list_one(const ledger_setoff_t *rec, void *arg)
{
    setoff_list_t *l = arg;
    setoff_terms_t t;
    if (!setoff_terms_decode(rec->terms, rec->terms_len, &t) || rec->position < 0 ||
        (size_t)rec->position >= t.n) {
        complain("set-off %s: a damaged record, not shown", rec->setoff_id);
        return true;
    }
    int p = rec->position;
    const char *next = t.ring[(p + 1) % (int)t.n].code,
               *prev = t.ring[(p + (int)t.n - 1) % (int)t.n].code;
    json_t *ring = json_array();
    for (size_t i = 0; i < t.n; i++) {
        json_array_append_new(ring, json_string(t.ring[i].code));
    }
    json_t *legs = json_array();
    json_t *a = leg_of(l, next, t.setoff_id), *b = leg_of(l, prev, t.setoff_id);
    if (!json_is_null(a)) {
        json_array_append(legs, a);
    }
    if (!json_is_null(b)) {
        json_array_append(legs, b);
    }
    json_decref(a);
    json_decref(b);
    l->count++;
    if (l->list != NULL) {
        json_array_append_new(
            l->list,
            json_pack("{s:s, s:o, s:i, s:s, s:I, s:s, s:s, s:b, s:I, s:I, s:I, s:s?, s:o}", "id",
                      t.setoff_id, "ring", ring, "position", p, "currency", t.currency,
                      "amount_minor", (json_int_t)t.amount_minor, "state",
                      setoff_state_name(rec->state), "reason", rec->reason, "proposed_by_us",
                      p == 0, "created_ms", (json_int_t)rec->created_ms, "decided_ms",
                      (json_int_t)rec->decided_ms, "deadline_ms", (json_int_t)t.deadline_unix_ms,
                      "asked_by", rec->asked_by[0] != '\0' ? rec->asked_by : NULL, "legs", legs));
        return true;
    }
    printf("%s  %-9s %s %lld minor, %zu banks from %s%s%s%s\n", t.setoff_id,
           setoff_state_name(rec->state), t.currency, (long long)t.amount_minor, t.n,
           t.ring[0].code, p == 0 ? " (us)" : "", rec->reason[0] ? "  " : "", rec->reason);
    size_t i;
    json_t *leg;
    json_array_foreach(legs, i, leg)
    {
        printf("    leg with %-11s %-9s %s\n", json_string_value(json_object_get(leg, "peer")),
               strcmp(json_string_value(json_object_get(leg, "direction")), "owed") == 0
                   ? "(we owe)"
                   : "(owes us)",
               json_string_value(json_object_get(leg, "status")));
    }
    json_decref(ring);
    json_decref(legs);
    return true;
}

static const struct option list_options[] = {{NULL, 0, NULL, 0}};

static const cli_spec_t list_spec = {
    .usage = "corridor setoff list --home DIR [--json]",
    .help = "Every multilateral set-off this node took part in: its ring, currency and amount,\n"
            "its state (voting, committed, aborted, asked), the reason of an abort or of our\n"
            "refusal, and our legs with our two neighbours and their status. Works with the node\n"
            "running or stopped.\n"
            "Example: corridor setoff list --home bank-a --json\n",
    .json = true,
    .options = list_options};

static int setoff_list(int argc, char **argv)
{
    cli_args_t args;
    setoff_args_t a = {0};
    int rc = cli_parse(argc, argv, &list_spec, setoff_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    config_t *config = NULL;
    ledger_t *ledger = NULL;
    if ((rc = cli_open_books(args.home, &config, &ledger)) != EXIT_OK) {
        goto cleanup;
    }
    setoff_list_t l = {ledger, config->name, args.json ? json_array() : NULL, 0};
    if (ledger_setoff_each(ledger, list_one, &l) != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        json_decref(l.list);
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    if (args.json) {
        rc = cli_print_document(json_pack("{s:s, s:o}", "node", config->name, "setoffs", l.list));
    } else if (l.count == 0) {
        printf("no set-off yet\n");
    }
cleanup:
    ledger_close(&ledger);
    config_destroy(&config);
    return rc;
}

int cmd_setoff(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "propose") == 0) {
        cli_set_command("corridor setoff propose");
        return setoff_propose(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        cli_set_command("corridor setoff list");
        return setoff_list(argc - 1, argv + 1);
    }
    complain("expected a subcommand: %s,\nor %s", propose_spec.usage, list_spec.usage);
    return EXIT_USAGE;
}
