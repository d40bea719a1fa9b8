/* What the commands print; see render.h. */
#include "render.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_common.h"
#include "cycles.h"
#include "fx.h"
#include "validate.h"

static uint8_t currency_exponent(const char *code)
{
    const currency_t *c = currency_find(code);
    return c != NULL ? c->exponent : 0;
}

static void print_position_json(const ledger_position_t *p, void *arg)
{
    json_t *list = arg;
    json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:I}", "peer", p->peer, "currency",
                                          p->currency, "net_minor", (json_int_t)p->net_minor,
                                          "pending_minor", (json_int_t)p->pending_minor));
}

static void print_position_text(const ledger_position_t *p, void *arg)
{
    (void)arg;
    char net[32], pending[32];
    uint8_t exp = currency_exponent(p->currency);
    amount_format(p->net_minor, exp, net, sizeof net);
    amount_format(p->pending_minor, exp, pending, sizeof pending);
    printf("  %-11s %-4s %22s %22s\n", p->peer, p->currency, net, pending);
}

typedef struct {
    bool first;     /* no element printed yet */
    int64_t now_ms; /* the wall clock, for `expired` */
    bool returns;   /* listing the returns (3.9), not the payments */
} settlement_list_t;

/* The status `ledger` shows: a payment its accepted returns took back whole is `returned`. */
static const char *shown_status(const settlement_t *s, const ledger_outcome_t *o)
{
    return o->status == STATUS_SETTLED && !settlement_is_return(s) && o->returned_minor > 0 &&
                   o->returned_minor == s->amount_minor
               ? status_name(STATUS_RETURNED)
               : status_name(o->status);
}

/* One return as a JSON object: its own id, the payment it returns and why, and its status
 * (pending until the payer answers; settled once accepted, rejected with the payer's reason). */
static json_t *return_json(const settlement_t *s, const ledger_outcome_t *o)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o}", "return_id", s->uetr,
                     "original_uetr", s->original_uetr, "peer", s->peer, "direction",
                     direction_name(s->direction), "currency", s->currency, "amount_minor",
                     (json_int_t)s->amount_minor, "return_reason", s->return_reason, "status",
                     status_name(o->status), "reason",
                     o->reason[0] != '\0' ? json_string(o->reason) : json_null());
}

/* Streams one settlement as a JSON array element (the list may hold millions). Holds and expiry
 * (PROTOCOL.md 3.8) add fields only where they say something: `expires_unix_ms` and `expired`
 * on an undecided payment with an expiry, `at_peer` on our pending one the payee holds, `hold`
 * on one we hold. */
static void print_settlement_json(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    settlement_list_t *list = arg;
    bool *first = &list->first;
    if (settlement_is_return(s) != list->returns) {
        return;
    }
    json_t *item =
        list->returns
            ? return_json(s, o)
            : json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "uetr", s->uetr, "peer", s->peer,
                        "direction", direction_name(settlement_money_direction(s)), "currency",
                        s->currency, "amount_minor", (json_int_t)s->amount_minor, "status",
                        shown_status(s, o), "reason",
                        o->reason[0] != '\0' ? json_string(o->reason) : json_null());
    if (item == NULL) {
        return;
    }
    if (o->returned_minor > 0) {
        json_object_set_new(item, "returned_minor", json_integer((json_int_t)o->returned_minor));
    }
    if (settlement_is_setoff_leg(s)) { /* a leg of a set-off: `setoff list` shows the set-off */
        json_object_set_new(item, "setoff_id", json_string(s->fx_id));
    } else if (settlement_is_fx_leg(s)) { /* a leg of an FX trade: `fx_trades` shows the trade */
        json_object_set_new(item, "fx_id", json_string(s->fx_id));
    }
    bool undecided = o->status == STATUS_PENDING || o->status == STATUS_HELD;
    if (undecided && s->expires_unix_ms != 0) {
        json_object_set_new(item, "expires_unix_ms", json_integer((json_int_t)s->expires_unix_ms));
        json_object_set_new(item, "expired", json_boolean(list->now_ms >= s->expires_unix_ms));
    }
    if (o->status == STATUS_PENDING && o->at_peer[0] != '\0') {
        json_object_set_new(item, "at_peer", json_string(o->at_peer));
    }
    if (o->status == STATUS_HELD) {
        json_object_set_new(item, "hold", json_string(o->hold));
    }
    fputs(*first ? "\n    " : ",\n    ", stdout);
    *first = false;
    json_dumpf(item, stdout, JSON_COMPACT);
    json_decref(item);
}

/* One FX trade (PROTOCOL.md 3.10) as a JSON array element: what we pay and receive, the rate
 * its proposer stated (units of the proposer's receive currency per unit of the one it pays),
 * and the status both legs share. */
static void print_trade_json(const settlement_t legs[2], const ledger_outcome_t *o, void *arg)
{
    settlement_list_t *list = arg;
    bool ours = legs[0].direction == DIRECTION_OUT; /* we proposed it: we pay the first leg */
    const settlement_t *pay = &legs[ours ? 0 : 1], *receive = &legs[ours ? 1 : 0];
    char rate[FX_RATE_LEN_MAX + 1] = "";
    (void)fx_rate_text(&legs[0], &legs[1], rate, sizeof rate);
    char unit[16];
    snprintf(unit, sizeof unit, "%s/%s", legs[1].currency, legs[0].currency);
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:I}, s:{s:s, s:s, s:I}, s:s, s:s, s:s, s:o}",
                  "fx_id", legs[0].fx_id, "peer", legs[0].peer, "proposed_by", ours ? "us" : "peer",
                  "pay", "uetr", pay->uetr, "currency", pay->currency, "amount_minor",
                  (json_int_t)pay->amount_minor, "receive", "uetr", receive->uetr, "currency",
                  receive->currency, "amount_minor", (json_int_t)receive->amount_minor, "rate",
                  rate, "rate_unit", unit, "status", status_name(o->status), "reason",
                  o->reason[0] != '\0' ? json_string(o->reason) : json_null());
    if (item == NULL) {
        return;
    }
    bool undecided = o->status == STATUS_PENDING || o->status == STATUS_HELD;
    if (undecided && legs[0].expires_unix_ms != 0) {
        json_object_set_new(item, "expires_unix_ms",
                            json_integer((json_int_t)legs[0].expires_unix_ms));
        json_object_set_new(item, "expired", json_boolean(list->now_ms >= legs[0].expires_unix_ms));
    }
    if (o->status == STATUS_PENDING && o->at_peer[0] != '\0') {
        json_object_set_new(item, "at_peer", json_string(o->at_peer));
    }
    if (o->status == STATUS_HELD) {
        json_object_set_new(item, "hold", json_string(o->hold));
    }
    fputs(list->first ? "\n    " : ",\n    ", stdout);
    list->first = false;
    json_dumpf(item, stdout, JSON_COMPACT);
    json_decref(item);
}

/* One peer's cycles as `ledger --json` shows them (PROTOCOL.md 3.11.6). */
typedef struct {
    json_t *running;  /* the open cycle's figures */
    json_t *owed;     /* unsettled nets of closed cycles */
    uint64_t last;    /* the highest cycle number */
    bool closing;     /* it is closing */
    const char *self; /* this node's code */
    ledger_t *ledger;
} cycles_view_t;

static void view_running(const ledger_cycle_figure_t *f, void *arg)
{
    cycles_view_t *v = arg;
    json_array_append_new(v->running, json_pack("{s:s, s:I, s:I, s:I, s:I}", "currency",
                                                f->currency, "paid_minor", (json_int_t)f->paid,
                                                "received_minor", (json_int_t)f->received,
                                                "net_minor", (json_int_t)(f->received - f->paid),
                                                "count", (json_int_t)f->count));
}

static void view_cycle(const ledger_cycle_t *c, void *arg)
{
    cycles_view_t *v = arg;
    v->last = c->cycle;
    v->closing = c->state == CYCLE_CLOSING;
    cycle_statement_t st;
    if (c->state != CYCLE_CLOSED || !cycle_statement_decode(c->statement, c->statement_len, &st)) {
        return;
    }
    bool first = cycle_self_first(v->self, c->peer);
    for (size_t i = 0; i < st.n_currencies; i++) {
        int64_t paid, received, net;
        bool settled = false;
        cycle_currency_view(&st.currencies[i], first, &paid, &received, &net);
        if (net == 0 || (ledger_net_settled(v->ledger, c->peer, c->cycle, st.currencies[i].currency,
                                            &settled) == LEDGER_OK &&
                         settled)) {
            continue;
        }
        json_array_append_new(v->owed, json_pack("{s:I, s:s, s:I}", "cycle", (json_int_t)c->cycle,
                                                 "currency", st.currencies[i].currency, "net_minor",
                                                 (json_int_t)net));
    }
}

/* `cycles`: per peer the open cycle (number and running figures) and what closed, unsettled
 * cycles leave owed (net from our view: negative, we owe). */
static json_t *cycles_json(ledger_t *ledger, const config_t *config)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < config->peers_count; i++) {
        const char *peer = config->peers[i].card.name;
        cycles_view_t v = {json_array(), json_array(), 0, false, config->name, ledger};
        if (ledger_cycle_running(ledger, peer, view_running, &v) != LEDGER_OK ||
            ledger_cycles(ledger, peer, view_cycle, &v) != LEDGER_OK) {
            json_decref(v.running);
            json_decref(v.owed);
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, json_pack("{s:s, s:I, s:b, s:o, s:o}", "peer", peer,
                                              "open_cycle", (json_int_t)(v.last + 1), "closing",
                                              v.closing, "running", v.running, "owed", v.owed));
    }
    return list;
}

int render_ledger_json(ledger_t *ledger, const config_t *config)
{
    const char *node = config->name;
    uint8_t head[LEDGER_HASH_BYTES];
    char head_hex[2 * LEDGER_HASH_BYTES + 1];
    uint64_t rows = 0;
    ledger_counts_t counts;
    json_t *positions = json_array();
    if (positions == NULL || ledger_head(ledger, head, &rows) != LEDGER_OK ||
        ledger_positions(ledger, print_position_json, positions) != LEDGER_OK ||
        ledger_counts(ledger, &counts) != LEDGER_OK) {
        json_decref(positions);
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    sodium_bin2hex(head_hex, sizeof head_hex, head, sizeof head);
    json_t *cycles = cycles_json(ledger, config);
    if (cycles == NULL) {
        json_decref(positions);
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    json_t *top = json_pack(
        "{s:s, s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I}, s:o}",
        "node", node, "head", head_hex, "journal_rows", (json_int_t)rows, "positions", positions,
        "counts", "pending", (json_int_t)counts.pending, "settled", (json_int_t)counts.settled,
        "rejected", (json_int_t)counts.rejected, "returned", (json_int_t)counts.returned, "held",
        (json_int_t)counts.held, "return_counts", "pending", (json_int_t)counts.returns_pending,
        "settled", (json_int_t)counts.returns_accepted, "rejected",
        (json_int_t)counts.returns_rejected, "fx_counts", "pending",
        (json_int_t)counts.fx[STATUS_PENDING], "settled", (json_int_t)counts.fx[STATUS_SETTLED],
        "rejected", (json_int_t)counts.fx[STATUS_REJECTED], "held",
        (json_int_t)counts.fx[STATUS_HELD], "cycles", cycles);
    char *text = top != NULL ? json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(top);
    if (text == NULL) {
        complain("out of memory");
        return EXIT_INTERNAL;
    }
    /* the object without its closing brace, then the settlements streamed */
    char *close = strrchr(text, '}');
    assert(close != NULL);
    while (close > text && (close[-1] == '\n' || close[-1] == ' ')) {
        close--;
    }
    *close = '\0';
    fputs(text, stdout);
    free(text);
    fputs(",\n  \"settlements\": [", stdout);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    settlement_list_t list = {true, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, false};
    ledger_err_t rc = ledger_settlements(ledger, print_settlement_json, &list);
    fputs(list.first ? "],\n  \"returns\": [" : "\n  ],\n  \"returns\": [", stdout);
    list.first = true;
    list.returns = true;
    if (rc == LEDGER_OK) {
        rc = ledger_returns(ledger, print_settlement_json, &list);
    }
    fputs(list.first ? "],\n  \"fx_trades\": [" : "\n  ],\n  \"fx_trades\": [", stdout);
    list.first = true;
    if (rc == LEDGER_OK) {
        rc = ledger_fx_trades(ledger, print_trade_json, &list);
    }
    fputs(list.first ? "]\n}\n" : "\n  ]\n}\n", stdout);
    if (rc != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

/* Per peer with cycles or a running figure: the open cycle and what closed cycles leave owed. */
static int print_cycles_text(ledger_t *ledger, const config_t *config)
{
    json_t *cycles = cycles_json(ledger, config);
    if (cycles == NULL) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    size_t i, j;
    json_t *peer, *item;
    json_array_foreach(cycles, i, peer)
    {
        json_t *running = json_object_get(peer, "running"), *owed = json_object_get(peer, "owed");
        json_int_t open = json_integer_value(json_object_get(peer, "open_cycle"));
        if (open == 1 && json_array_size(running) == 0) {
            continue; /* no cycle yet, nothing final since the start */
        }
        printf("cycle %lld with %s %s", (long long)open,
               json_string_value(json_object_get(peer, "peer")),
               json_is_true(json_object_get(peer, "closing")) ? "(the one before is closing)"
                                                              : "open");
        json_array_foreach(running, j, item)
        {
            const char *ccy = json_string_value(json_object_get(item, "currency"));
            char net[32];
            amount_format(json_integer_value(json_object_get(item, "net_minor")),
                          currency_exponent(ccy), net, sizeof net);
            printf("%s %s %s", j == 0 ? ":" : ",", ccy, net);
        }
        printf("\n");
        json_array_foreach(owed, j, item)
        {
            const char *ccy = json_string_value(json_object_get(item, "currency"));
            char net[32];
            amount_format(json_integer_value(json_object_get(item, "net_minor")),
                          currency_exponent(ccy), net, sizeof net);
            printf("  cycle %lld closed, not settled: %s %s (negative: we owe)\n",
                   (long long)json_integer_value(json_object_get(item, "cycle")), ccy, net);
        }
    }
    json_decref(cycles);
    return EXIT_OK;
}

int render_ledger_text(ledger_t *ledger, const config_t *config)
{
    const char *node = config->name;
    uint8_t head[LEDGER_HASH_BYTES];
    char head_hex[2 * LEDGER_HASH_BYTES + 1];
    uint64_t rows = 0;
    ledger_counts_t counts;
    if (ledger_head(ledger, head, &rows) != LEDGER_OK ||
        ledger_counts(ledger, &counts) != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    sodium_bin2hex(head_hex, sizeof head_hex, head, sizeof head);
    printf("node %s: %llu journal rows, head %.16s...\n", node, (unsigned long long)rows, head_hex);
    printf("settlements: %llu pending, %llu settled, %llu rejected, %llu returned, %llu held\n",
           (unsigned long long)counts.pending, (unsigned long long)counts.settled,
           (unsigned long long)counts.rejected, (unsigned long long)counts.returned,
           (unsigned long long)counts.held);
    if (counts.returns_pending + counts.returns_accepted + counts.returns_rejected > 0) {
        printf("returns: %llu pending, %llu accepted, %llu refused\n",
               (unsigned long long)counts.returns_pending,
               (unsigned long long)counts.returns_accepted,
               (unsigned long long)counts.returns_rejected);
    }
    uint64_t trades = counts.fx[STATUS_PENDING] + counts.fx[STATUS_SETTLED] +
                      counts.fx[STATUS_REJECTED] + counts.fx[STATUS_HELD];
    if (trades > 0) {
        printf("fx trades: %llu pending, %llu settled, %llu refused, %llu held\n",
               (unsigned long long)counts.fx[STATUS_PENDING],
               (unsigned long long)counts.fx[STATUS_SETTLED],
               (unsigned long long)counts.fx[STATUS_REJECTED],
               (unsigned long long)counts.fx[STATUS_HELD]);
    }
    printf("positions (net: what the peer owes us; pending: change once settled)\n"
           "  %-11s %-4s %22s %22s\n",
           "peer", "ccy", "net", "pending");
    if (ledger_positions(ledger, print_position_text, NULL) != LEDGER_OK) {
        complain("cannot read the ledger: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    return print_cycles_text(ledger, config);
}

void render_operation(const ledger_operation_t *op, void *arg)
{
    operations_out_t *out = arg;
    out->count++;
    json_t *record = json_loads(op->record, 0, NULL);
    if (out->list != NULL) {
        json_array_append_new(out->list,
                              json_pack("{s:I, s:s, s:I, s:o}", "row", (json_int_t)op->seq, "peer",
                                        op->peer, "recorded_ms", (json_int_t)op->created_ms,
                                        "record", record != NULL ? record : json_null()));
        return;
    }
    char when[32];
    time_t secs = (time_t)(op->created_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(when, sizeof when, "(time %lld ms)", (long long)op->created_ms);
    }
    char *args = json_dumps(json_object_get(record, "args"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("row %lld  %s  uid %lld (%s)  %s  %s\n", (long long)op->seq, when,
           (long long)json_integer_value(json_object_get(record, "uid")),
           json_string_value(json_object_get(record, "user")) != NULL
               ? json_string_value(json_object_get(record, "user"))
               : "?",
           json_string_value(json_object_get(record, "action")) != NULL
               ? json_string_value(json_object_get(record, "action"))
               : "?",
           args != NULL ? args : "{}");
    free(args);
    json_decref(record);
}

static json_t *keys_json(const audit_report_t *r)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < r->keys_count; i++) {
        const audit_key_t *k = &r->keys[i];
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "home", k->home, "peer", k->peer,
                            "key_id", k->key_id, "source", k->from_card ? "card" : "home", "rows",
                            (json_int_t)k->rows, "first_sequence", (json_int_t)k->first_seq,
                            "last_sequence", (json_int_t)k->last_seq));
    }
    return list;
}

/* On stderr: which keys the audit could only take from the audited home itself, and which
 * homes' own signatures it could not check at all. */
static void warn_home_keys(const audit_report_t *r)
{
    for (size_t i = 0; i < r->own_unchecked_count; i++) {
        fprintf(stderr,
                "corridor audit: %s: this node's own signatures were not checked: no card of it "
                "given and its key file is not readable\n",
                r->own_unchecked[i]);
    }
    for (size_t i = 0; i < r->keys_count; i++) {
        const audit_key_t *k = &r->keys[i];
        if (!k->from_card) {
            fprintf(stderr,
                    "corridor audit: %s: the key of %s comes from the audited home's own config "
                    "(whoever can edit the home can swap it); give its card with --peer-card\n",
                    k->home, k->peer);
        }
    }
}

json_t *render_audit_json(const audit_report_t *r)
{
    bool ok = r->violations_count == 0 && r->violations_dropped == 0;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < r->violations_count; i++) {
        const audit_violation_t *v = &r->violations[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "home", v->home, "kind", v->kind,
                                              "detail", v->detail));
    }
    return json_pack("{s:b, s:I, s:I, s:o, s:o}", "ok", ok, "entries_checked",
                     (json_int_t)r->entries_checked, "violations_total",
                     (json_int_t)(r->violations_count + r->violations_dropped), "violations", list,
                     "keys", keys_json(r));
}

int render_audit(const audit_report_t *r, size_t homes, bool json)
{
    warn_home_keys(r);
    bool ok = r->violations_count == 0 && r->violations_dropped == 0;
    if (json) {
        int rc = cli_print_document(render_audit_json(r));
        if (rc != EXIT_OK) {
            return rc;
        }
    } else {
        for (size_t i = 0; i < r->violations_count; i++) {
            const audit_violation_t *v = &r->violations[i];
            printf("VIOLATION %-10s %s: %s\n", v->kind, v->home, v->detail);
        }
        printf("audit of %zu home%s: %llu entries checked, %s\n", homes, homes == 1 ? "" : "s",
               (unsigned long long)r->entries_checked, ok ? "clean" : "VIOLATIONS FOUND");
        if (r->violations_dropped > 0) {
            printf("(%zu more violations not listed)\n", r->violations_dropped);
        }
    }
    return ok ? EXIT_OK : EXIT_NEGATIVE;
}

/* ---- key history -------------------------------------------------------------------------- */

#define HEX_OF(bytes) (2 * (bytes) + 1)

typedef struct {
    json_t *keys; /* the records as JSON, in ledger order */
    bool ours;    /* the ledger records a key of ours */
} key_history_t;

static void collect_key(const key_record_t *k, void *arg)
{
    key_history_t *h = arg;
    char id_hex[HEX_OF(IDENTITY_KEY_ID_BYTES)], sign_hex[HEX_OF(crypto_sign_PUBLICKEYBYTES)];
    sodium_bin2hex(id_hex, sizeof id_hex, k->key_id, sizeof k->key_id);
    sodium_bin2hex(sign_hex, sizeof sign_hex, k->sign_public, sizeof k->sign_public);
    h->ours = h->ours || k->side == KEY_SIDE_OURS;
    json_array_append_new(
        h->keys,
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:s, s:I}", "peer", k->peer, "side",
                  k->side == KEY_SIDE_OURS ? "ours" : "theirs", "key_id", id_hex, "sign", sign_hex,
                  "first_seq", (json_int_t)k->first_seq, "last_seq",
                  k->last_seq != 0 ? json_integer((json_int_t)k->last_seq) : json_null(),
                  "revoked_from",
                  k->revoked_from != 0 ? json_integer((json_int_t)k->revoked_from) : json_null(),
                  "source", k->source, "created_ms", (json_int_t)k->created_ms));
}

static void print_key_text(json_t *k)
{
    char range[64], revoked[32] = "-", created[32] = "-";
    json_t *last = json_object_get(k, "last_seq"), *from = json_object_get(k, "revoked_from");
    json_t *at = json_object_get(k, "created_ms");
    if (json_is_integer(last)) {
        snprintf(range, sizeof range, "%lld..%lld",
                 (long long)json_integer_value(json_object_get(k, "first_seq")),
                 (long long)json_integer_value(last));
    } else {
        snprintf(range, sizeof range, "%lld..open",
                 (long long)json_integer_value(json_object_get(k, "first_seq")));
    }
    if (json_is_integer(from)) {
        snprintf(revoked, sizeof revoked, "from %lld", (long long)json_integer_value(from));
    }
    time_t secs = json_is_integer(at) ? (time_t)(json_integer_value(at) / 1000) : 0;
    struct tm tm;
    if (json_is_integer(at) && gmtime_r(&secs, &tm) != NULL) {
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    const char *peer = json_string_value(json_object_get(k, "peer"));
    printf("  %-11s %-6s %-32s %-23s %-9s %-12s %s\n", peer != NULL ? peer : "(all peers)",
           json_string_value(json_object_get(k, "side")),
           json_string_value(json_object_get(k, "key_id")), range,
           json_string_value(json_object_get(k, "source")), revoked, created);
}

int render_key_history(ledger_t *ledger, const char *node, const identity_t *self, bool json)
{
    key_history_t h = {json_array(), false};
    if (h.keys == NULL) {
        complain("out of memory");
        return EXIT_INTERNAL;
    }
    if (ledger_keys(ledger, NULL, collect_key, &h) != LEDGER_OK) {
        json_decref(h.keys);
        complain("cannot read the key history: %s", ledger_last_error(ledger));
        return EXIT_INTERNAL;
    }
    char id_hex[HEX_OF(IDENTITY_KEY_ID_BYTES)], sign_hex[HEX_OF(crypto_sign_PUBLICKEYBYTES)];
    sodium_bin2hex(id_hex, sizeof id_hex, self->key_id, sizeof self->key_id);
    sodium_bin2hex(sign_hex, sizeof sign_hex, self->sign_public, sizeof self->sign_public);
    if (!h.ours) { /* no rotation yet: the key file's key signs every channel from the start */
        json_array_insert_new(h.keys, 0,
                              json_pack("{s:n, s:s, s:s, s:s, s:i, s:n, s:n, s:s, s:n}", "peer",
                                        "side", "ours", "key_id", id_hex, "sign", sign_hex,
                                        "first_seq", 1, "last_seq", "revoked_from", "source",
                                        "card", "created_ms"));
    }
    if (json) {
        return cli_print_document(
            json_pack("{s:s, s:s, s:o}", "node", node, "key_id", id_hex, "keys", h.keys));
    }
    printf("node %s: signing key %s\n", node, id_hex);
    printf("  %-11s %-6s %-32s %-23s %-9s %-12s %s\n", "peer", "side", "key_id", "sequences",
           "source", "revoked", "created");
    size_t i;
    json_t *k;
    json_array_foreach(h.keys, i, k)
    {
        print_key_text(k);
    }
    json_decref(h.keys);
    return EXIT_OK;
}

void render_status_text(json_t *reply)
{
    printf("node %s listening on %s%s\n", json_string_value(json_object_get(reply, "node")),
           json_string_value(json_object_get(reply, "listen")),
           json_is_true(json_object_get(reply, "ledger_stopped")) ? " (LEDGER STOPPED)" : "");
    const char *key_id = json_string_value(json_object_get(reply, "key_id"));
    if (key_id != NULL) {
        printf("signing key %s%s\n", key_id,
               json_is_true(json_object_get(reply, "rotation_pending"))
                   ? " (a peer has not yet acknowledged it)"
                   : "");
    }
    printf("  %-11s %-9s %10s %10s %12s\n", "peer", "state", "outbox", "sent_seq", "received_seq");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(reply, "peers"), i, p)
    {
        printf("  %-11s %-9s %10lld %10lld %12lld\n", json_string_value(json_object_get(p, "name")),
               json_string_value(json_object_get(p, "state")),
               (long long)json_integer_value(json_object_get(p, "outbox")),
               (long long)json_integer_value(json_object_get(p, "sent_seq")),
               (long long)json_integer_value(json_object_get(p, "received_seq")));
    }
}

static void print_side(const char *label, json_t *side)
{
    if (!json_is_object(side)) {
        printf("      %-6s (none)\n", label);
        return;
    }
    const char *ccy = json_string_value(json_object_get(side, "currency"));
    char amount[32];
    const currency_t *c = ccy != NULL ? currency_find(ccy) : NULL;
    amount_format(json_integer_value(json_object_get(side, "amount_minor")),
                  c != NULL ? c->exponent : 0, amount, sizeof amount);
    const char *reason = json_string_value(json_object_get(side, "reason"));
    printf("      %-6s %s -> %s  %s %s  %s%s%s\n", label,
           json_string_value(json_object_get(side, "payer")),
           json_string_value(json_object_get(side, "payee")), amount, ccy ? ccy : "?",
           json_string_value(json_object_get(side, "status")), reason ? " " : "",
           reason ? reason : "");
}

void render_reconcile_text(json_t *report)
{
    json_t *breaks = json_object_get(report, "breaks");
    size_t i;
    json_t *b;
    json_array_foreach(breaks, i, b)
    {
        const char *action = json_string_value(json_object_get(b, "action"));
        const char *id = json_string_value(json_object_get(b, "id")); /* a return's, a trade's */
        const char *kind = json_string_value(json_object_get(b, "kind"));
        bool leg = kind != NULL && strncmp(kind, "fx_", 3) == 0;
        if (kind != NULL && strcmp(kind, "cycle_mismatch") == 0) { /* id: the cycle's number */
            printf("  %-16s cycle %s%s\n", kind, id != NULL ? id : "?",
                   json_is_true(json_object_get(b, "healed")) ? "  [healed]" : "");
            for (int side = 0; side < 2; side++) {
                json_t *s = json_object_get(b, side == 0 ? "local" : "peer");
                const char *hash = json_string_value(json_object_get(s, "statement_hash"));
                printf("      %-6s %s%s%.16s\n", side == 0 ? "here" : "peer",
                       json_is_object(s) ? json_string_value(json_object_get(s, "state"))
                                         : "(none)",
                       hash != NULL ? " " : "", hash != NULL ? hash : "");
            }
            if (action != NULL) {
                printf("      repair: %s\n", action);
            }
            continue;
        }
        printf("  %-16s %s%s%s%s\n", kind, json_string_value(json_object_get(b, "uetr")),
               id == NULL ? ""
               : leg      ? " trade "
                          : " return ",
               id != NULL ? id : "",
               json_is_true(json_object_get(b, "healed")) ? "  [healed]" : "");
        print_side("here", json_object_get(b, "local"));
        print_side("peer", json_object_get(b, "peer"));
        if (action != NULL) {
            printf("      repair: %s\n", action);
        }
    }
    json_int_t remaining = json_integer_value(json_object_get(report, "breaks_remaining"));
    json_t *checkpoint = json_object_get(report, "checkpoint");
    printf("%s: %lld matched, %zu breaks found, %lld remaining, positions %s%s\n",
           json_string_value(json_object_get(report, "peer")),
           (long long)json_integer_value(json_object_get(report, "matched")),
           json_array_size(breaks), (long long)remaining,
           json_is_true(json_object_get(report, "positions_agree")) ? "agree" : "DISAGREE",
           json_is_true(json_object_get(checkpoint, "signed")) ? "; checkpoint co-signed" : "");
    const char *error = json_string_value(json_object_get(report, "error"));
    if (error != NULL) {
        printf("note: %s\n", error);
    }
}
