/*
 * `corridor send`: one settlement from the options, or a batch from a file (batch.c), checked
 * here in full before anything is submitted, then sent to the node in chunks over one control
 * connection (paced with --rate), and the node's answers tallied.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "cli_common.h"
#include "commands.h"
#include "validate.h"

#define SEND_CHUNK_ITEMS 1000 /* settlements per request in a batch */

/* Validates one settlement locally (nothing is written on error) and builds its request item.
 * `where` prefixes messages (a batch line number). */
static int build_item(const config_t *config, const batch_row_t *a, const char *where,
                      json_t **item)
{
    *item = NULL;
    if (a->to == NULL || a->amount == NULL || a->currency == NULL) {
        complain("%s--to, --amount and --currency are required", where);
        return EXIT_USAGE;
    }
    if (config_find_peer_const(config, a->to) == NULL) {
        complain("%s%s is not a peer of this node (see corridor peer add)", where, a->to);
        return EXIT_USAGE;
    }
    const currency_t *c = currency_find(a->currency);
    if (c == NULL || !config_accepts(config, c->code)) {
        complain("%s%s: %s", where, a->currency,
                 c == NULL ? "unknown currency" : "this node does not deal in it");
        return EXIT_USAGE;
    }
    int64_t minor = 0;
    valid_err_t verr = amount_parse(a->amount, c, false, &minor);
    if (verr != VALID_OK) {
        complain("%s--amount %s: %s", where, a->amount, valid_strerror(verr));
        return EXIT_USAGE;
    }
    char uetr[CORRIDOR_UETR_LEN + 1];
    if (a->uetr != NULL && (verr = uetr_check(a->uetr)) != VALID_OK) {
        complain("%s--uetr %s: %s", where, a->uetr, valid_strerror(verr));
        return EXIT_USAGE;
    }
    if (a->uetr == NULL) {
        uetr_generate(uetr); /* chosen here so that a retry is idempotent */
    }
    const char *texts[] = {a->debtor, a->creditor, a->remittance};
    const size_t limits[] = {CORRIDOR_PARTY_NAME_LEN_MAX, CORRIDOR_PARTY_NAME_LEN_MAX,
                             CORRIDOR_REMITTANCE_LEN_MAX};
    for (size_t i = 0; i < 3; i++) {
        if (texts[i] != NULL && (verr = text_check(texts[i], limits[i])) != VALID_OK) {
            complain("%s%s: %s", where,
                     i == 0   ? "--debtor"
                     : i == 1 ? "--creditor"
                              : "--remittance",
                     valid_strerror(verr));
            return EXIT_USAGE;
        }
    }
    *item =
        json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "to", a->to, "amount_minor",
                  (json_int_t)minor, "currency", c->code, "uetr", a->uetr != NULL ? a->uetr : uetr,
                  "debtor", a->debtor ? a->debtor : "", "creditor", a->creditor ? a->creditor : "",
                  "remittance", a->remittance ? a->remittance : "");
    return *item != NULL ? EXIT_OK : EXIT_INTERNAL;
}

/* Tallies the node's results; prints one line per settlement (uetr status [reason]). */
typedef struct {
    size_t pending, settled, rejected, failed;
    int worst_exit;
} tally_t;

static void tally_results(json_t *results, bool print, tally_t *t)
{
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        const char *uetr = json_string_value(json_object_get(r, "uetr"));
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *reason = json_string_value(json_object_get(r, "reason"));
        const char *error = json_string_value(json_object_get(r, "error"));
        if (error != NULL) {
            t->failed++;
            complain("%s: %s", uetr != NULL ? uetr : "settlement", error);
            json_t *code = json_object_get(r, "exit");
            int c = json_is_integer(code) ? (int)json_integer_value(code) : EXIT_INTERNAL;
            t->worst_exit = c > t->worst_exit ? c : t->worst_exit;
            continue;
        }
        if (status == NULL) {
            continue;
        }
        if (strcmp(status, "settled") == 0 || strcmp(status, "returned") == 0) {
            t->settled++;
        } else if (strcmp(status, "rejected") == 0) {
            t->rejected++;
            complain("%s rejected: %s", uetr, reason != NULL ? reason : "no reason given");
        } else {
            t->pending++;
        }
        if (print) {
            printf("%s %s%s%s\n", uetr, status, reason ? " " : "", reason ? reason : "");
        }
    }
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends items in chunks over one connection; with wait_ms > 0 the node answers each chunk once
 * final. With rate > 0 (settlements per second) a chunk of rate/RATE_CHUNKS_PER_S leaves every
 * 1/RATE_CHUNKS_PER_S s: an open-loop load, close to a steady stream of arrivals. */
#define RATE_CHUNKS_PER_S 200
static int submit(const home_t *home, json_t *items, int64_t wait_ms, bool print, tally_t *t,
                  long rate, int64_t expires_in_ms)
{
    size_t total = json_array_size(items);
    int64_t deadline = wait_ms > 0 ? (int64_t)time(NULL) * 1000 + wait_ms : 0;
    size_t chunk_items = rate <= 0                      ? SEND_CHUNK_ITEMS
                         : rate / RATE_CHUNKS_PER_S > 0 ? (size_t)(rate / RATE_CHUNKS_PER_S)
                                                        : 1;
    int64_t started = monotonic_ms();
    char err[512] = "";
    control_client_t *client = NULL;
    int rc = cli_node_answer(control_connect(home->dir, &client, err, sizeof err), err, NULL);
    if (rc != EXIT_OK) {
        return rc;
    }
    for (size_t start = 0; start < total; start += chunk_items) {
        if (rate > 0) {
            int64_t due = started + (int64_t)start * 1000 / rate;
            int64_t now = monotonic_ms();
            if (due > now) {
                struct timespec pause = {(time_t)((due - now) / 1000),
                                         (long)((due - now) % 1000) * 1000000};
                nanosleep(&pause, NULL);
            }
        }
        json_t *chunk = json_array();
        for (size_t i = start; i < total && i < start + chunk_items; i++) {
            json_array_append(chunk, json_array_get(items, i));
        }
        int64_t left = wait_ms > 0 ? deadline - (int64_t)time(NULL) * 1000 : 0;
        if (wait_ms > 0 && left < 1) {
            left = 1;
        }
        json_t *req = json_pack("{s:s, s:I, s:I, s:o}", "cmd", "send", "wait_ms", (json_int_t)left,
                                "expires_in_ms", (json_int_t)expires_in_ms, "items", chunk);
        json_t *reply = NULL;
        control_err_t sent =
            control_request(client, req, (int)(left + CLI_GRACE_MS), &reply, err, sizeof err);
        json_decref(req);
        if ((rc = cli_node_answer(sent, err, &reply)) != EXIT_OK) {
            break;
        }
        tally_results(json_object_get(reply, "results"), print, t);
        json_decref(reply);
    }
    control_disconnect(&client);
    return rc;
}

/* ---- reading a batch ------------------------------------------------------------------ */

typedef struct {
    const config_t *config;
    const char *path;
    json_t *items;
} batch_ctx_t;

static int batch_row(void *arg, size_t line, const batch_row_t *row)
{
    batch_ctx_t *b = arg;
    char where[CORRIDOR_PATH_LEN_MAX + 32];
    snprintf(where, sizeof where, "--batch %s: line %zu: ", b->path, line); /* as batch.c says */
    json_t *item = NULL;
    int rc = build_item(b->config, row, where, &item);
    if (rc == EXIT_OK) {
        json_array_append_new(b->items, item);
    }
    return rc;
}

/* Reads and checks the whole batch into items (nothing is sent when a line is refused). */
static int read_batch(const config_t *config, const char *path, json_t *items)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        complain("--batch %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    batch_ctx_t ctx = {config, path, items};
    char err[256];
    batch_err_t rc = batch_read(f, batch_format_of(path), batch_row, &ctx, err, sizeof err);
    fclose(f);
    switch (rc) {
    case BATCH_OK:
        break;
    case BATCH_E_STOPPED:
        return EXIT_USAGE; /* build_item said why */
    case BATCH_E_MALFORMED:
        complain("--batch %s: %s", path, err);
        return EXIT_USAGE;
    case BATCH_E_READ:
        complain("--batch %s: %s", path, batch_strerror(rc));
        return EXIT_USAGE;
    }
    if (json_array_size(items) == 0) {
        complain("--batch %s: no settlements", path);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* ---- corridor send ------------------------------------------------------------------- */

typedef struct {
    batch_row_t one; /* the settlement of the options */
    const char *batch;
    int64_t wait_ms;
    long rate;
    int64_t expires_in_ms; /* the payee refuses it AB05 from then on (PROTOCOL.md 3.8.1) */
} send_args_t;

#define SEND_EXPIRES_IN_S_DEFAULT 86400
#define SEND_EXPIRES_IN_S_MAX     (366 * 86400)

enum {
    OPT_TO = 1,
    OPT_AMOUNT,
    OPT_CURRENCY,
    OPT_UETR,
    OPT_DEBTOR,
    OPT_CREDITOR,
    OPT_REMITTANCE,
    OPT_WAIT,
    OPT_BATCH,
    OPT_RATE,
    OPT_EXPIRES_IN
};

static int send_option(void *ctx, int key, const char *value)
{
    send_args_t *a = ctx;
    const char **field[] = {[OPT_TO] = &a->one.to,
                            [OPT_AMOUNT] = &a->one.amount,
                            [OPT_CURRENCY] = &a->one.currency,
                            [OPT_UETR] = &a->one.uetr,
                            [OPT_DEBTOR] = &a->one.debtor,
                            [OPT_CREDITOR] = &a->one.creditor,
                            [OPT_REMITTANCE] = &a->one.remittance,
                            [OPT_BATCH] = &a->batch};
    if (key == OPT_WAIT) {
        return cli_seconds("--wait", value, 86400, &a->wait_ms);
    }
    if (key == OPT_EXPIRES_IN) {
        int rc = cli_seconds("--expires-in", value, SEND_EXPIRES_IN_S_MAX, &a->expires_in_ms);
        if (rc == EXIT_OK && a->expires_in_ms == 0) {
            complain("--expires-in 0: a payment must have at least a second to arrive");
            return EXIT_USAGE;
        }
        return rc;
    }
    if (key == OPT_RATE) {
        char *end = NULL;
        a->rate = strtol(value, &end, 10);
        if (end == value || *end != '\0' || a->rate < 1 || a->rate > 1000000) {
            complain("--rate %s: expected settlements per second, 1 to 1000000", value);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    assert(key >= OPT_TO && key <= OPT_BATCH && field[key] != NULL);
    *field[key] = value;
    return EXIT_OK;
}

static const struct option send_options[] = {
    {"to", required_argument, NULL, OPT_TO},
    {"amount", required_argument, NULL, OPT_AMOUNT},
    {"currency", required_argument, NULL, OPT_CURRENCY},
    {"uetr", required_argument, NULL, OPT_UETR},
    {"debtor", required_argument, NULL, OPT_DEBTOR},
    {"creditor", required_argument, NULL, OPT_CREDITOR},
    {"remittance", required_argument, NULL, OPT_REMITTANCE},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"rate", required_argument, NULL, OPT_RATE},
    {"expires-in", required_argument, NULL, OPT_EXPIRES_IN},
    {NULL, 0, NULL, 0}};

static const cli_spec_t send_spec = {
    .usage =
        "corridor send --home DIR --to CODE --amount DEC --currency CCY [--uetr UUID] "
        "[--debtor S]\n"
        "              [--creditor S] [--remittance S] [--expires-in SECONDS] [--wait SECONDS]\n"
        "       corridor send --home DIR --batch FILE [--expires-in SECONDS] [--wait SECONDS] "
        "[--rate N]",
    .help = "Commits a settlement as pending and prints its UETR. --wait: waits for the final "
            "status\n(0 settled, 1 rejected, 4 timed out). --expires-in (default 86400): the payee "
            "refuses it\n(AB05) if it arrives, or is still held, that many seconds from now or "
            "later; expiry is\n\"no earlier than\": the payer's entry stays pending until the "
            "payee's signed answer.\n"
            "--batch FILE: CSV (RFC 4180: quote a field that holds commas or quotes, a quote "
            "written twice)\nwith a header naming to,amount,currency[,uetr,debtor,creditor,"
            "remittance], or JSON Lines\n(FILE ending .jsonl: one object per line with those "
            "keys). The whole file is checked first;\na bad line is refused with its number and "
            "nothing is sent. --rate paces a batch (settlements a second).\n"
            "Example: corridor send --home bank-a --to BMJIIRTH --amount 125.50 --currency RUB "
            "--wait 10\n"
            "Example: corridor send --home bank-a --batch payments.csv --wait 60\n",
    .options = send_options};

/* The exit code of a whole send from its tally. */
static int send_outcome(const tally_t *t, int64_t wait_ms)
{
    if (t->failed > 0) {
        return t->worst_exit;
    }
    if (t->rejected > 0) {
        return EXIT_NEGATIVE;
    }
    if (wait_ms > 0 && t->pending > 0) {
        complain("timed out after %.1f s waiting for the final status", (double)wait_ms / 1000);
        return EXIT_TIMEOUT;
    }
    return EXIT_OK;
}

int cmd_send(int argc, char **argv)
{
    send_args_t a = {.expires_in_ms = (int64_t)SEND_EXPIRES_IN_S_DEFAULT * 1000};
    cli_args_t args;
    int rc = cli_parse(argc, argv, &send_spec, send_option, &a, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if (a.rate > 0 && a.batch == NULL) {
        complain("--rate paces a --batch");
        return EXIT_USAGE;
    }
    if (a.batch != NULL && (a.one.to || a.one.amount || a.one.currency || a.one.uetr)) {
        complain("--batch takes the settlements from the file; leave out --to, --amount...");
        return EXIT_USAGE;
    }
    home_t home;
    config_t *config = NULL;
    json_t *items = json_array();
    if ((rc = cli_home(&home, args.home)) != EXIT_OK ||
        (rc = cli_load_config(&home, &config)) != EXIT_OK) {
        goto cleanup;
    }
    if (a.batch != NULL) {
        rc = read_batch(config, a.batch, items);
    } else {
        json_t *item = NULL;
        if ((rc = build_item(config, &a.one, "", &item)) == EXIT_OK) {
            json_array_append_new(items, item);
        }
    }
    if (rc != EXIT_OK) {
        goto cleanup;
    }
    tally_t t = {0};
    /* A batch goes out at full speed first; waiting re-sends it (sends are idempotent). */
    bool batch = a.batch != NULL;
    rc = submit(&home, items, batch ? 0 : a.wait_ms, !batch || a.wait_ms == 0, &t, a.rate,
                a.expires_in_ms);
    if (rc == EXIT_OK && batch && a.wait_ms > 0) {
        memset(&t, 0, sizeof t);
        rc = submit(&home, items, a.wait_ms, true, &t, 0, a.expires_in_ms);
    }
    if (rc != EXIT_OK) {
        goto cleanup;
    }
    if (batch) {
        fprintf(stderr, "%zu settlements: %zu pending, %zu settled, %zu rejected, %zu failed\n",
                json_array_size(items), t.pending, t.settled, t.rejected, t.failed);
    }
    rc = send_outcome(&t, a.wait_ms);

cleanup:
    json_decref(items);
    config_destroy(&config);
    return rc;
}
