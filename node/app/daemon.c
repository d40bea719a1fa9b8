/* `corridor run`: the node's event loop; see daemon.h. */
#include "daemon.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <pwd.h>
#include <sodium.h>
#include <zmq.h>

#include "corridor/exit.h"
#include "corridor/limits.h"
#include "channel.h"
#include "config.h"
#include "control.h"
#include "envelope.h"
#include "faults.h"
#include "fsutil.h"
#include "identity.h"
#include "ledger.h"
#include "log.h"
#include "opener.h"
#include "recon.h"
#include "responder.h"
#include "transport.h"
#include "validate.h"
#include "wire.h"

#define INBOUND_MIN_BYTES     (64u << 10) /* the frame buffer: its size at start, */
#define INBOUND_KEEP_BYTES    (4u << 20)  /* the most kept after a turn, */
#define CONTROL_PER_TURN      64          /* control requests read per loop turn */
#define POLL_MAX_MS           250         /* longest sleep, so signals and timers stay prompt */
#define WAIT_MAX_MS           (24 * 3600 * 1000)
#define RECON_TIMEOUT_MS      (5 * 60 * 1000)
#define CHECKPOINT_CHECK_MS   1000        /* how often to look whether a checkpoint is due */
#define CHECKPOINT_RETRY_MS   (30 * 1000) /* after an automatic try, the next no sooner */
#define CHECKPOINT_SESSION_MS (60 * 1000) /* an automatic session gives up after this */
#define LOCK_ATTEMPTS         50 /* x LOCK_PAUSE_MS: how long a probe's shared lock may last */
#define LOCK_PAUSE_MS         10

_Static_assert(CORRIDOR_WIRE_BYTES_MAX <= INBOUND_TURN_BYTES, "a turn must take the largest frame");

/* A Statement from a peer, or a StatementRequest (decoded), waiting for its place in the turn:
 * a Statement or a request that writes inside the transaction, a pure read after it. */
typedef struct {
    size_t peer_index;
    envelope_message_t msg;              /* a Statement */
    Corridor__StatementRequest *request; /* or a request */
} inbound_statement_t;

/* An answer to send once the transaction that produced it has committed. */
typedef struct {
    size_t peer_index;
    uint8_t *body;
    size_t len;
} outbound_statement_t;

/* The frames one turn read, copied out of ZeroMQ so that they can be opened in parallel. */
typedef struct {
    opener_frame_t frames[INBOUND_PER_TURN];
    size_t offsets[INBOUND_PER_TURN]; /* where each frame's bytes start in `bytes` */
    size_t count;
    uint8_t *bytes;
    size_t used, capacity;
} inbound_t;

/* A `reconcile` in progress with one peer. */
typedef struct {
    recon_t *recon;
    zmq_msg_t route; /* the client waiting for the report */
    int64_t deadline_ms;
    bool automatic; /* started for a checkpoint, not by a client: nobody waits for it */
} session_t;

/* One item of a `send --wait` request that is not final yet, found by (peer, UETR). */
#define WAITING_KEY_SIZE (CORRIDOR_NAME_LEN_MAX + CORRIDOR_UETR_LEN + 2)
typedef struct {
    char key[WAITING_KEY_SIZE]; /* "PEER/uetr" */
    json_t *result;             /* borrowed from the waiter's results */
} waiting_t;

/* A `send` request waiting for its reply. */
typedef struct waiter {
    struct waiter *next;
    zmq_msg_t route;     /* the client's ROUTER identity */
    json_t *results;     /* one object per item: uetr, peer, status, reason */
    size_t open;         /* items not final yet (waiting) */
    waiting_t *waiting;  /* those items, sorted by key: a final status finds its item in
                          * O(log n), not by walking every result of every waiter */
    int64_t deadline_ms; /* reply with what we have by then */
    bool committed;      /* the transaction holding its items committed */
    bool failed;         /* the transaction failed: reply with an error */
} waiter_t;

typedef struct {
    const char *home;
    config_t *config;
    identity_t *identity;
    ledger_t *ledger;
    envelope_peer_t *keys; /* per configured peer, in sodium_malloc'd memory */
    channel_t **channels;  /* per configured peer */
    void *zmq;
    transport_t *transport;
    void *control; /* ROUTER */
    int lock_fd;
    waiter_t *waiters;                                      /* send requests, newest first */
    faults_t *faults;                                       /* test-only fault injection, or NULL */
    opener_t *opener;                                       /* opens inbound frames on all cores */
    inbound_t *inbound;                                     /* this turn's inbound frames */
    ledger_t *reader;                                       /* read snapshots of the ledger */
    inbound_statement_t statements_in[STATEMENTS_PER_TURN]; /* this turn's writing ones */
    size_t statements_in_count;
    inbound_statement_t reads_in[STATEMENTS_PER_TURN]; /* this turn's pure-read requests */
    size_t reads_in_count;
    outbound_statement_t statements_out[STATEMENTS_PER_TURN]; /* answers after the commit */
    size_t statements_out_count;
    session_t *sessions;         /* per configured peer; recon NULL when idle */
    bool *reload;                /* per peer: reload the channel after the commit (re-based) */
    int64_t *checkpoint_next_ms; /* per peer: when to look again whether a checkpoint is due */
    int64_t started_wall_ms;     /* when the node started (the first checkpoint's interval) */
    responder_t *responder;      /* what peers' StatementRequests may make us do */
    int64_t turn_ms;             /* when this loop turn began */
} node_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- control replies and waiters ---------------------------------------------------------- */

static void reply_json(node_t *n, zmq_msg_t *route, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, route);
    zmq_msg_send(&copy, n->control, ZMQ_SNDMORE);
    zmq_send(n->control, "", 0, ZMQ_SNDMORE);
    if (text != NULL) {
        zmq_send(n->control, text, strlen(text), 0);
    } else {
        zmq_send(n->control, "{\"ok\":false,\"error\":\"out of memory\",\"exit\":5}", 45, 0);
    }
    free(text);
}

static void reply_error(node_t *n, zmq_msg_t *route, int exit_code, const char *error)
{
    json_t *doc = json_pack("{s:b, s:s, s:i}", "ok", 0, "error", error, "exit", exit_code);
    reply_json(n, route, doc);
    json_decref(doc);
}

static void waiter_reply(node_t *n, waiter_t *w, bool timeout)
{
    if (w->failed) {
        reply_error(n, &w->route, EXIT_INTERNAL, ledger_last_error(n->ledger));
        return;
    }
    json_t *doc = json_pack("{s:b, s:b, s:O}", "ok", 1, "timeout", timeout, "results", w->results);
    reply_json(n, &w->route, doc);
    json_decref(doc);
}

static void waiter_free(waiter_t *w)
{
    zmq_msg_close(&w->route);
    json_decref(w->results);
    free(w->waiting);
    free(w);
}

/* Replies to and removes every committed waiter that is done or past its deadline. */
static void flush_waiters(node_t *n, int64_t now)
{
    waiter_t **link = &n->waiters;
    while (*link != NULL) {
        waiter_t *w = *link;
        bool due = w->failed || (w->committed && (w->open == 0 || now >= w->deadline_ms));
        if (!due) {
            link = &w->next;
            continue;
        }
        waiter_reply(n, w, !w->failed && w->open > 0);
        *link = w->next;
        waiter_free(w);
    }
}

static bool is_final(status_t status)
{
    return status != STATUS_PENDING;
}

static void fill_result(json_t *result, const ledger_outcome_t *o)
{
    json_object_set_new(result, "status", json_string(status_name(o->status)));
    json_object_set_new(result, "reason", o->reason[0] ? json_string(o->reason) : json_null());
}

static void waiting_key(char out[static WAITING_KEY_SIZE], const char *peer, const char *uetr)
{
    snprintf(out, WAITING_KEY_SIZE, "%s/%s", peer, uetr);
}

static int waiting_cmp(const void *a, const void *b)
{
    return strcmp(((const waiting_t *)a)->key, ((const waiting_t *)b)->key);
}

/* channel_ctx_t.on_final: one of our settlements became final. */
static void on_final(void *arg, const char *peer, const char *uetr, const ledger_outcome_t *o)
{
    node_t *n = arg;
    waiting_t probe;
    waiting_key(probe.key, peer, uetr);
    for (waiter_t *w = n->waiters; w != NULL; w = w->next) {
        if (w->open == 0) {
            continue;
        }
        waiting_t *hit = bsearch(&probe, w->waiting, w->open, sizeof *w->waiting, waiting_cmp);
        if (hit == NULL) {
            continue;
        }
        /* the same UETR may stand more than once in one request: answer each */
        size_t first = (size_t)(hit - w->waiting), last = first + 1;
        while (first > 0 && waiting_cmp(&w->waiting[first - 1], &probe) == 0) {
            first--;
        }
        while (last < w->open && waiting_cmp(&w->waiting[last], &probe) == 0) {
            last++;
        }
        for (size_t i = first; i < last; i++) {
            fill_result(w->waiting[i].result, o);
            json_object_del(w->waiting[i].result, "waiting");
        }
        memmove(&w->waiting[first], &w->waiting[last], (w->open - last) * sizeof *w->waiting);
        w->open -= last - first;
    }
}

static const char *json_str(json_t *obj, const char *key, const char *fallback)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v != NULL ? v : fallback;
}

/* ---- statements and reconciliation ---------------------------------------------------------- */

static void inbound_statement_clear(inbound_statement_t *in)
{
    envelope_message_clear(&in->msg);
    corridor__statement_request__free_unpacked(in->request, NULL);
    in->request = NULL;
}

/* Places an admitted request in this turn: a pure read after the commit, one that writes
 * inside the transaction. False when that part of the turn is full. */
static bool place_request(node_t *n, size_t peer_index, Corridor__StatementRequest *req)
{
    bool reads = recon_request_reads_only(req);
    inbound_statement_t *list = reads ? n->reads_in : n->statements_in;
    size_t *count = reads ? &n->reads_in_count : &n->statements_in_count;
    if (*count == STATEMENTS_PER_TURN) {
        return false;
    }
    list[(*count)++] = (inbound_statement_t){.peer_index = peer_index, .request = req};
    return true;
}

/* channel_ctx_t.on_statement: a Statement answering our session is kept for the transaction; a
 * request goes to the responder's admission (over the peer's allowance it waits, the newest
 * only: an honest reconcile asks one at a time and is only slowed, a flood is cut to the rate). */
static void on_statement(void *arg, size_t peer_index, envelope_message_t *msg)
{
    node_t *n = arg;
    if (msg->type == MSG_STATEMENT) {
        if (n->sessions[peer_index].recon == NULL ||
            n->statements_in_count == STATEMENTS_PER_TURN) {
            envelope_message_clear(msg); /* nothing asked it, or the session asks again */
            return;
        }
        inbound_statement_t *in = &n->statements_in[n->statements_in_count++];
        *in = (inbound_statement_t){.peer_index = peer_index, .msg = *msg};
        memset(msg, 0, sizeof *msg);
        return;
    }
    Corridor__StatementRequest *req = (Corridor__StatementRequest *)wire_unpack(
        &corridor__statement_request__descriptor, msg->body_len, msg->body);
    envelope_message_clear(msg);
    if (req == NULL) {
        return;
    }
    if (!responder_admit(n->responder, peer_index, n->turn_ms) ||
        !place_request(n, peer_index, req)) {
        responder_defer(n->responder, peer_index, req);
    }
}

/* Hands deferred requests whose peer's allowance came back to this turn. */
static void release_deferred(node_t *n, int64_t now)
{
    for (size_t i = 0; i < n->config->peers_count; i++) {
        Corridor__StatementRequest *req = responder_release(n->responder, i, now);
        if (req != NULL && !place_request(n, i, req)) {
            responder_defer(n->responder, i, req);
        }
    }
}

static recon_ctx_t recon_ctx_of(node_t *n, size_t peer_index)
{
    return (recon_ctx_t){.self = n->identity,
                         .peer = &n->config->peers[peer_index],
                         .ledger = n->ledger,
                         .channel = n->channels[peer_index],
                         .checkpoint_every = config_checkpoint_every(n->config),
                         .checkpoint_interval_s = config_checkpoint_interval_s(n->config),
                         .wall_now_ms = wall_ms()};
}

/* Automatic checkpoints: with each peer whose channel is up, a checkpoint session (recon.c)
 * is started once checkpoint_every sequenced messages or checkpoint_interval_s have passed
 * since the last checkpoint. It proposes one at this node's sequence cut, so it needs no quiet
 * moment: payments keep flowing while both sides sign. An operator's `reconcile` takes the
 * place of one running. */
static void start_due_checkpoints(node_t *n, int64_t now)
{
    int64_t wall = wall_ms();
    uint32_t every = config_checkpoint_every(n->config);
    int64_t interval_ms = (int64_t)config_checkpoint_interval_s(n->config) * 1000;
    for (size_t i = 0; i < n->config->peers_count && !ledger_stopped(n->ledger); i++) {
        session_t *s = &n->sessions[i];
        channel_stats_t st = channel_stats(n->channels[i]);
        if (now < n->checkpoint_next_ms[i] || s->recon != NULL || st.state != CHANNEL_UP) {
            continue;
        }
        n->checkpoint_next_ms[i] = now + CHECKPOINT_CHECK_MS;
        uint64_t messages = st.sent_seq + st.applied_seq;
        uint64_t last_messages = 0;
        int64_t last_at = 0;
        if (ledger_checkpoint_when(n->ledger, n->config->peers[i].card.name, &last_messages,
                                   &last_at) != LEDGER_OK) {
            continue;
        }
        int64_t since = last_at != 0 && last_at <= wall ? last_at : n->started_wall_ms;
        bool counted = last_messages <= messages;
        if (counted && messages - last_messages < every &&
            (messages == last_messages || wall - since < interval_ms)) {
            continue;
        }
        recon_ctx_t ctx = recon_ctx_of(n, i);
        if ((s->recon = recon_new_checkpoint(&ctx, now)) == NULL) {
            continue;
        }
        s->automatic = true;
        s->deadline_ms = now + CHECKPOINT_SESSION_MS;
        zmq_msg_init(&s->route);
        n->checkpoint_next_ms[i] = now + CHECKPOINT_RETRY_MS;
        recon_tick(s->recon, now);
    }
}

/* Whether an automatic checkpoint session got its checkpoint signed. Nobody waits for it, so
 * why it did not must not go unsaid: a peer whose books differ at the cut refuses, and that
 * needs a person. (A checkpoint the other side signed a moment ago is no news.) */
static bool checkpoint_signed(node_t *n, size_t peer_index, json_t *report)
{
    json_t *cp = json_object_get(report, "checkpoint");
    if (json_is_true(json_object_get(cp, "signed"))) {
        return true;
    }
    const char *why = json_string_value(json_object_get(cp, "refused"));
    if (why == NULL && json_string_value(json_object_get(cp, "skipped")) == NULL) {
        why = json_string_value(json_object_get(report, "error"));
    }
    if (why != NULL && strstr(why, "sooner") == NULL && strstr(why, "advance") == NULL) {
        log_event(n->config->name, n->config->peers[peer_index].card.name, NULL,
                  "automatic checkpoint not signed: %s%s", why,
                  strstr(why, "differs") != NULL ? "; run corridor reconcile" : "");
    }
    return false;
}

/* Inside the transaction: answers requests that write, feeds statements to sessions. */
static ledger_err_t handle_statements(node_t *n, int64_t now)
{
    ledger_err_t rc = LEDGER_OK;
    for (size_t i = 0; i < n->statements_in_count; i++) {
        inbound_statement_t *in = &n->statements_in[i];
        if (rc == LEDGER_OK && in->request != NULL &&
            !responder_may_work(n->responder, in->peer_index, now)) {
            responder_defer(n->responder, in->peer_index, in->request); /* an earlier one's debt */
            in->request = NULL;
        } else if (rc == LEDGER_OK && in->request != NULL) {
            recon_ctx_t ctx = recon_ctx_of(n, in->peer_index);
            uint8_t *body = NULL;
            size_t len = 0;
            bool rebased = false;
            rc = responder_answer(n->responder, in->peer_index, &ctx, in->request, now, &body, &len,
                                  &rebased);
            if (body != NULL) {
                n->statements_out[n->statements_out_count++] =
                    (outbound_statement_t){in->peer_index, body, len};
            }
            n->reload[in->peer_index] |= rebased;
        } else if (rc == LEDGER_OK && n->sessions[in->peer_index].recon != NULL) {
            Corridor__Statement *st = (Corridor__Statement *)wire_unpack(
                &corridor__statement__descriptor, in->msg.body_len, in->msg.body);
            if (st != NULL) {
                recon_t *r = n->sessions[in->peer_index].recon;
                rc = recon_on_statement(r, st, now);
                n->reload[in->peer_index] |= recon_rebased(r);
            }
            corridor__statement__free_unpacked(st, NULL);
        }
        inbound_statement_clear(in);
    }
    n->statements_in_count = 0;
    return rc;
}

/* After the commit: answers the pure-read requests from one read snapshot of what committed,
 * outside the write transaction. A read that fails is logged; the requester asks again. */
static void answer_reads(node_t *n, int64_t now)
{
    if (n->reads_in_count == 0) {
        return;
    }
    /* a stopped node answers nothing: its books are not to be trusted */
    ledger_err_t rc =
        ledger_stopped(n->ledger) ? LEDGER_E_STOPPED : ledger_snapshot_begin(n->reader);
    for (size_t i = 0; i < n->reads_in_count; i++) {
        inbound_statement_t *in = &n->reads_in[i];
        uint8_t *body = NULL;
        size_t len = 0;
        bool rebased = false;
        if (rc == LEDGER_OK && !responder_may_work(n->responder, in->peer_index, now)) {
            responder_defer(n->responder, in->peer_index, in->request); /* an earlier one's debt */
            in->request = NULL;
        } else if (rc == LEDGER_OK) {
            recon_ctx_t ctx = recon_ctx_of(n, in->peer_index);
            ctx.ledger = n->reader;
            rc = responder_answer(n->responder, in->peer_index, &ctx, in->request, now, &body, &len,
                                  &rebased);
            assert(!rebased); /* a pure read changes nothing */
        }
        if (body != NULL) {
            channel_send_unsequenced(n->channels[in->peer_index], MSG_STATEMENT, body, len);
            free(body);
        }
        inbound_statement_clear(in);
    }
    if (rc != LEDGER_OK && rc != LEDGER_E_STOPPED) {
        log_event(n->config->name, NULL, NULL, "statement requests unanswered: %s: %s",
                  ledger_strerror(rc), ledger_last_error(n->reader));
    }
    ledger_snapshot_end(n->reader);
    n->reads_in_count = 0;
}

/* After the commit: sends answers, reloads re-based channels, replies to finished sessions. */
static void after_statements(node_t *n, bool committed, int64_t now)
{
    for (size_t i = 0; i < n->statements_out_count; i++) {
        outbound_statement_t *out = &n->statements_out[i];
        if (committed) {
            channel_send_unsequenced(n->channels[out->peer_index], MSG_STATEMENT, out->body,
                                     out->len);
        }
        free(out->body);
    }
    n->statements_out_count = 0;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (n->reload[i]) {
            channel_reload(n->channels[i]);
            n->reload[i] = false;
        }
        session_t *s = &n->sessions[i];
        if (s->recon == NULL) {
            continue;
        }
        recon_tick(s->recon, now);
        bool timed_out = now >= s->deadline_ms;
        if (recon_done(s->recon) || timed_out || !committed) {
            json_t *report = recon_report(s->recon);
            json_t *doc = json_pack("{s:b, s:o}", "ok", 1, "report", report);
            if (timed_out && !recon_done(s->recon)) {
                json_object_set_new(report, "error",
                                    json_string("timed out: the peer did not answer"));
            }
            if (!s->automatic) {
                reply_json(n, &s->route, doc);
            } else if (checkpoint_signed(n, i, report)) {
                n->checkpoint_next_ms[i] = now + CHECKPOINT_CHECK_MS; /* spacing decides */
            }
            json_decref(doc);
            recon_destroy(&s->recon);
            s->automatic = false;
            zmq_msg_close(&s->route);
        }
    }
}

/* Records a person's action in the journal (inside the turn's transaction): who (uid and
 * name), when, what, with which arguments. False when it could not be recorded (the action
 * must then not happen). */
static bool record_operation(node_t *n, long long uid, const char *action, const char *peer,
                             json_t *args)
{
    char name[64] = "";
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL) {
        snprintf(name, sizeof name, "%s", pw.pw_name);
    }
    json_t *record = json_pack("{s:I, s:s, s:I, s:s, s:o}", "uid", (json_int_t)uid, "user", name,
                               "at_ms", (json_int_t)wall_ms(), "action", action, "args", args);
    char *text = record != NULL ? json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(record);
    ledger_err_t rc = text != NULL && ledger_in_transaction(n->ledger)
                          ? ledger_record_operation(n->ledger, peer, text)
                          : LEDGER_E_STORAGE;
    if (rc == LEDGER_OK) {
        log_event(n->config->name, peer[0] ? peer : NULL, NULL, "operator %s (uid %lld %s): %s",
                  action, uid, name, text);
    }
    free(text);
    return rc == LEDGER_OK;
}

static void handle_reconcile(node_t *n, zmq_msg_t *route, json_t *req, long long uid, int64_t now)
{
    const char *peer = json_str(req, "peer", "");
    size_t index = SIZE_MAX;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (strcmp(n->config->peers[i].card.name, peer) == 0) {
            index = i;
        }
    }
    if (index == SIZE_MAX) {
        reply_error(n, route, EXIT_USAGE, "not a peer of this node");
        return;
    }
    session_t *s = &n->sessions[index];
    if (s->recon != NULL && s->automatic) { /* the operator's takes its place */
        recon_destroy(&s->recon);
        zmq_msg_close(&s->route);
        s->automatic = false;
    }
    if (s->recon != NULL) {
        reply_error(n, route, EXIT_USAGE, "a reconciliation with that peer is already running");
        return;
    }
    bool repair = json_is_true(json_object_get(req, "repair"));
    recon_ctx_t ctx = recon_ctx_of(n, index);
    s->recon = recon_new(&ctx, repair, now);
    if (s->recon == NULL) {
        reply_error(n, route, EXIT_INTERNAL, "cannot start: out of memory or ledger unreadable");
        return;
    }
    if (repair && !record_operation(n, uid, "repair", peer, json_pack("{s:s}", "peer", peer))) {
        recon_destroy(&s->recon); /* no repair that is not on record */
        reply_error(n, route, EXIT_INTERNAL, "cannot record the repair in the journal");
        return;
    }
    json_t *timeout = json_object_get(req, "timeout_ms");
    json_int_t ms = json_is_integer(timeout) ? json_integer_value(timeout) : RECON_TIMEOUT_MS;
    s->deadline_ms = now + (ms < 1000 ? 1000 : ms > RECON_TIMEOUT_MS ? RECON_TIMEOUT_MS : ms);
    zmq_msg_init(&s->route);
    zmq_msg_copy(&s->route, route);
    recon_tick(s->recon, now);
}

/* ---- control requests ----------------------------------------------------------------------- */

static channel_t *channel_of(node_t *n, const char *peer)
{
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (strcmp(n->config->peers[i].card.name, peer) == 0) {
            return n->channels[i];
        }
    }
    return NULL;
}

static void today(char out[static VALUE_DATE_LEN + 1])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, VALUE_DATE_LEN + 1, "%Y-%m-%d", &tm);
}

/* Builds a settlement from one request item; returns NULL or what is wrong. */
static const char *item_settlement(node_t *n, json_t *item, settlement_t *s)
{
    memset(s, 0, sizeof *s);
    const char *to = json_str(item, "to", "");
    const char *currency = json_str(item, "currency", "");
    json_t *amount = json_object_get(item, "amount_minor");
    if (!json_is_integer(amount)) {
        return "amount_minor must be an integer";
    }
    if (node_code_check(to) != VALID_OK || config_find_peer(n->config, to) == NULL) {
        return "unknown peer (not in this node's config)";
    }
    if (!config_accepts(n->config, currency)) {
        return "this node does not deal in that currency";
    }
    const char *uetr = json_str(item, "uetr", NULL);
    if (uetr != NULL) {
        if (uetr_check(uetr) != VALID_OK) {
            return "invalid UETR (a lower-case UUIDv4)";
        }
        snprintf(s->uetr, sizeof s->uetr, "%s", uetr);
    } else {
        uetr_generate(s->uetr);
    }
    const char *texts[][2] = {{"debtor", ""}, {"creditor", ""}, {"remittance", ""}};
    char *fields[] = {s->debtor_name, s->creditor_name, s->remittance};
    size_t sizes[] = {sizeof s->debtor_name, sizeof s->creditor_name, sizeof s->remittance};
    for (size_t i = 0; i < 3; i++) {
        const char *v = json_str(item, texts[i][0], texts[i][1]);
        if (strlen(v) >= sizes[i]) {
            return "a text field is too long";
        }
        snprintf(fields[i], sizes[i], "%s", v);
    }
    snprintf(s->peer, sizeof s->peer, "%s", to);
    snprintf(s->currency, sizeof s->currency, "%s", currency);
    s->direction = DIRECTION_OUT;
    s->amount_minor = json_integer_value(amount);
    s->created_unix_ms = wall_ms();
    today(s->value_date);
    reason_t bad = settlement_check(s);
    return bad == REASON_NONE ? NULL : reason_text(bad);
}

/* Applies one send request inside the transaction; registers a waiter for the reply. */
static void handle_send(node_t *n, zmq_msg_t *route, json_t *req, int64_t now)
{
    json_t *items = json_object_get(req, "items");
    json_t *wait = json_object_get(req, "wait_ms");
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > CONTROL_ITEMS_MAX) {
        reply_error(n, route, EXIT_USAGE, "items must be an array of 1 to 10000 settlements");
        return;
    }
    waiter_t *w = calloc(1, sizeof *w);
    if (w == NULL || (w->results = json_array()) == NULL) {
        free(w);
        reply_error(n, route, EXIT_INTERNAL, "out of memory");
        return;
    }
    zmq_msg_init(&w->route);
    zmq_msg_copy(&w->route, route);
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    if (wait_ms > 0 && (w->waiting = calloc(json_array_size(items), sizeof *w->waiting)) == NULL) {
        waiter_free(w);
        reply_error(n, route, EXIT_INTERNAL, "out of memory");
        return;
    }
    w->deadline_ms = now + (wait_ms < 0 ? 0 : wait_ms > WAIT_MAX_MS ? WAIT_MAX_MS : wait_ms);
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        settlement_t s;
        json_t *result = json_object();
        json_array_append_new(w->results, result);
        const char *problem = json_is_object(item) ? item_settlement(n, item, &s) : "not an object";
        if (problem != NULL) {
            json_object_set_new(result, "error", json_string(problem));
            json_object_set_new(result, "exit", json_integer(EXIT_USAGE));
            continue;
        }
        json_object_set_new(result, "uetr", json_string(s.uetr));
        json_object_set_new(result, "peer", json_string(s.peer));
        ledger_outcome_t out;
        ledger_err_t rc = channel_send_settlement(channel_of(n, s.peer), &s, &out);
        if (rc == LEDGER_E_CONFLICT) {
            json_object_set_new(result, "status", json_string("rejected"));
            json_object_set_new(result, "reason", json_string(reason_code(REASON_DUPLICATE)));
            continue;
        }
        if (rc != LEDGER_OK) {
            json_object_set_new(result, "error", json_string(ledger_last_error(n->ledger)));
            json_object_set_new(result, "exit",
                                json_integer(rc == LEDGER_E_OVERFLOW ? EXIT_USAGE : EXIT_INTERNAL));
            w->failed = rc == LEDGER_E_STORAGE || rc == LEDGER_E_STOPPED;
            continue;
        }
        fill_result(result, &out);
        json_object_set_new(result, "repeated", json_boolean(out.repeated));
        if (!out.repeated) {
            log_event(n->config->name, s.peer, s.uetr, "outgoing %lld %s pending",
                      (long long)s.amount_minor, s.currency);
        }
        if (wait_ms > 0 && !is_final(out.status)) {
            json_object_set_new(result, "waiting", json_true());
            waiting_key(w->waiting[w->open].key, s.peer, s.uetr);
            w->waiting[w->open++].result = result;
        }
    }
    if (w->open > 1) {
        qsort(w->waiting, w->open, sizeof *w->waiting, waiting_cmp);
    }
    w->next = n->waiters;
    n->waiters = w;
}

static void handle_status(node_t *n, zmq_msg_t *route)
{
    json_t *peers = json_array();
    for (size_t i = 0; i < n->config->peers_count; i++) {
        channel_stats_t st = channel_stats(n->channels[i]);
        json_array_append_new(
            peers, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
                             n->config->peers[i].card.name, "state", channel_state_name(st.state),
                             "outbox", (json_int_t)(st.sent_seq - st.acked_seq), "sent_seq",
                             (json_int_t)st.sent_seq, "received_seq", (json_int_t)st.applied_seq,
                             "acked_seq", (json_int_t)st.acked_seq, "held", (json_int_t)st.held,
                             "retransmits", (json_int_t)st.retransmits));
        json_t *peer = json_array_get(peers, i);
        const struct {
            const char *name;
            uint64_t value;
        } counters[] = {
            {"position_mismatches", st.position_mismatches},
            {"dropped", st.dropped},
            {"rewinds_refused", st.rewinds_refused},
            {"held_bytes", st.held_bytes},
            {"hold_full", st.hold_full},
            {"backpressure", st.backpressure},
            {"statement_requests_refused", responder_refused(n->responder, i)},
            {"wire_version", channel_wire_version(n->channels[i])},
        };
        for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
            json_object_set_new(peer, counters[k].name,
                                json_integer((json_int_t)counters[k].value));
        }
        /* how much history is not anchored yet by a checkpoint with this peer */
        uint64_t last_messages = 0;
        int64_t last_at = 0;
        if (ledger_checkpoint_when(n->ledger, n->config->peers[i].card.name, &last_messages,
                                   &last_at) == LEDGER_OK) {
            uint64_t messages = st.sent_seq + st.applied_seq;
            json_object_set_new(
                peer, "checkpoint",
                json_pack("{s:I, s:o}", "messages_since",
                          (json_int_t)(messages > last_messages ? messages - last_messages : 0),
                          "last_ms", last_at != 0 ? json_integer(last_at) : json_null()));
        }
    }
    transport_stats_t ts = transport_stats(n->transport);
    json_t *doc = json_pack(
        "{s:b, s:s, s:s, s:s?, s:b, s:o, s:{s:I, s:I, s:I, s:I}}", "ok", 1, "node", n->config->name,
        "listen", n->config->listen, "listen_stream",
        n->config->listen_stream[0] != '\0' ? n->config->listen_stream : NULL, "ledger_stopped",
        ledger_stopped(n->ledger), "peers", peers, "transport", "admitted",
        (json_int_t)ts.zap_admitted, "refused", (json_int_t)ts.zap_refused, "dropped_frames",
        (json_int_t)ts.dropped_frames, "statements_dropped", (json_int_t)ts.statements_dropped);
    json_object_set_new(json_object_get(doc, "transport"), "throttled",
                        json_integer((json_int_t)ts.zap_throttled));
    json_object_set_new(json_object_get(doc, "transport"), "control_refused",
                        json_integer((json_int_t)ts.control_refused));
    if (n->faults != NULL) {
        faults_stats_t fs = faults_stats(n->faults);
        json_object_set_new(doc, "faults",
                            json_pack("{s:I, s:I, s:I, s:I}", "dropped", (json_int_t)fs.dropped,
                                      "duplicated", (json_int_t)fs.duplicated, "reordered",
                                      (json_int_t)fs.reordered, "delayed", (json_int_t)fs.delayed));
    }
    reply_json(n, route, doc);
    json_decref(doc);
}

/* Reads up to CONTROL_PER_TURN requests. Sends go into the open transaction. */
/* The local user who sent a control request, as the ZAP handler named it ("uid:N"), or -1. */
static long long request_uid(zmq_msg_t *msg)
{
    const char *user_id = zmq_msg_gets(msg, "User-Id");
    char *end = NULL;
    long long uid =
        user_id != NULL && strncmp(user_id, "uid:", 4) == 0 ? strtoll(user_id + 4, &end, 10) : -1;
    bool named = end != NULL && end != user_id + 4 && *end == '\0' && uid >= 0;
    /* and the kernel's credentials libzmq reports agree (a client cannot set those) */
    return named && transport_ipc_uid(zmq_msg_gets(msg, "Peer-Address")) == uid ? uid : -1;
}

static void read_control(node_t *n, int64_t now)
{
    for (int count = 0; count < CONTROL_PER_TURN; count++) {
        zmq_msg_t route, empty, body;
        zmq_msg_init(&route);
        zmq_msg_init(&empty);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&route, n->control, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&route);
            zmq_msg_close(&empty);
            zmq_msg_close(&body);
            return;
        }
        bool framed = zmq_msg_more(&route) && zmq_msg_recv(&empty, n->control, 0) >= 0 &&
                      zmq_msg_more(&empty) && zmq_msg_recv(&body, n->control, 0) >= 0 &&
                      !zmq_msg_more(&body);
        while (zmq_msg_more(&body)) { /* more frames than a request has: drain them */
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            framed = false;
            if (zmq_msg_recv(&body, n->control, 0) < 0) {
                break;
            }
        }
        json_t *req = NULL;
        if (framed && zmq_msg_size(&body) <= CONTROL_REQUEST_MAX) {
            req = json_loadb(zmq_msg_data(&body), zmq_msg_size(&body), 0, NULL);
        }
        const char *cmd = json_str(req, "cmd", "");
        long long uid = framed ? request_uid(&body) : -1;
        if (!framed) {
            /* not a REQ client: nothing sensible to answer */
        } else if (uid < 0) { /* it did not pass the ZAP handler: failing closed */
            reply_error(n, &route, EXIT_USAGE, "refused: the request names no local user");
        } else if (req == NULL) {
            reply_error(n, &route, EXIT_USAGE, "request is not JSON");
        } else if (strcmp(cmd, "status") == 0) {
            handle_status(n, &route);
        } else if (strcmp(cmd, "reconcile") == 0) {
            handle_reconcile(n, &route, req, uid, now);
        } else if (strcmp(cmd, "send") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_send(n, &route, req, now);
            }
        } else {
            reply_error(n, &route, EXIT_USAGE, "unknown command");
        }
        json_decref(req);
        zmq_msg_close(&route);
        zmq_msg_close(&empty);
        zmq_msg_close(&body);
    }
}

/* ---- inbound ------------------------------------------------------------------------------ */

typedef struct {
    node_t *n;
    bool over_budget; /* a frame was dropped (turn budget or memory): logged once per turn */
} drain_ctx_t;

/* transport_drain's callback: keeps a copy of the frame for opening. */
static void keep_frame(size_t peer_index, const uint8_t *data, size_t len, void *arg)
{
    drain_ctx_t *d = arg;
    inbound_t *in = d->n->inbound;
    assert(in->count < INBOUND_PER_TURN && in->bytes != NULL);
    if (len > INBOUND_TURN_BYTES - in->used) {
        d->over_budget = true; /* the peer sends it again: nothing was acknowledged */
        return;
    }
    if (len > in->capacity - in->used) {
        size_t want = in->capacity;
        while (want - in->used < len) {
            want *= 2;
        }
        uint8_t *bigger = realloc(in->bytes, want);
        if (bigger == NULL) {
            d->over_budget = true;
            return;
        }
        in->bytes = bigger;
        in->capacity = want;
    }
    memcpy(in->bytes + in->used, data, len);
    in->frames[in->count] = (opener_frame_t){.peer_index = peer_index, .len = len};
    in->offsets[in->count++] = in->used;
    in->used += len;
}

/* Hands one opened frame to its channel, or says why it was dropped. */
static void deliver(node_t *n, opener_frame_t *f, int64_t now)
{
    const char *peer = n->config->peers[f->peer_index].card.name;
    if (f->rc == ENV_E_DUPLICATE && f->msg.peer_index == f->peer_index) {
        channel_note_duplicate(n->channels[f->peer_index]);
        return;
    }
    if (f->rc != ENV_OK) {
        log_event(n->config->name, peer, NULL, "dropped a frame of %zu bytes: %s", f->len,
                  env_strerror(f->rc));
        return;
    }
    if (f->msg.peer_index != f->peer_index) {
        log_event(n->config->name, peer, NULL, "dropped a message sealed by %s on %s's connection",
                  n->config->peers[f->msg.peer_index].card.name, peer);
        envelope_message_clear(&f->msg);
        return;
    }
    channel_receive(n->channels[f->peer_index], &f->msg, now);
}

/* Reads up to INBOUND_PER_TURN frames, opens them on all cores, and delivers them in the
 * order they arrived. */
static void receive_frames(node_t *n, int64_t now)
{
    inbound_t *in = n->inbound;
    drain_ctx_t d = {n, false};
    in->count = 0;
    in->used = 0;
    transport_drain(n->transport, INBOUND_PER_TURN, keep_frame, &d);
    if (d.over_budget) {
        log_event(n->config->name, NULL, NULL,
                  "dropped inbound frames over this turn's %u MiB or the memory at hand (the "
                  "peers send them again)",
                  INBOUND_TURN_BYTES >> 20);
    }
    for (size_t i = 0; i < in->count; i++) {
        in->frames[i].data = in->bytes + in->offsets[i];
    }
    opener_run(n->opener, in->frames, in->count, n->identity, n->keys, n->config->peers_count);
    for (size_t i = 0; i < in->count; i++) {
        deliver(n, &in->frames[i], now);
    }
    if (in->capacity > INBOUND_KEEP_BYTES && in->used <= INBOUND_KEEP_BYTES) {
        /* a burst of large frames is over: give the memory back */
        uint8_t *smaller = realloc(in->bytes, INBOUND_MIN_BYTES);
        if (smaller != NULL) {
            in->bytes = smaller;
            in->capacity = INBOUND_MIN_BYTES;
        }
    }
}

/* ---- one turn --------------------------------------------------------------------------- */

static bool channels_have_work(node_t *n)
{
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (channel_has_work(n->channels[i], n->turn_ms)) {
            return true;
        }
    }
    return false;
}

static bool control_pending(node_t *n)
{
    int events = 0;
    size_t size = sizeof events;
    return zmq_getsockopt(n->control, ZMQ_EVENTS, &events, &size) == 0 &&
           (events & ZMQ_POLLIN) != 0;
}

static int send_to_socket(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                          size_t len);

static void turn(node_t *n)
{
    int64_t now = now_ms();
    n->turn_ms = now;
    ledger_set_clock(n->ledger, wall_ms());
    transport_handle_zap(n->transport, now);
    release_deferred(n, now); /* before this turn's frames can fill the statement slots */
    receive_frames(n, now);
    bool stopped = ledger_stopped(n->ledger);
    bool committed = true;
    if (!stopped && (channels_have_work(n) || control_pending(n) || n->statements_in_count > 0)) {
        ledger_err_t rc = ledger_begin(n->ledger);
        if (rc == LEDGER_OK) {
            read_control(n, now);
            for (size_t i = 0; rc == LEDGER_OK && i < n->config->peers_count; i++) {
                rc = channel_apply(n->channels[i], now);
            }
        }
        if (rc == LEDGER_OK) {
            rc = handle_statements(n, now);
        }
        if (rc == LEDGER_OK && ledger_in_transaction(n->ledger)) {
            rc = ledger_commit(n->ledger);
        }
        if (rc != LEDGER_OK) {
            log_event(n->config->name, NULL, NULL, "LEDGER STOPPED: %s: %s", ledger_strerror(rc),
                      ledger_last_error(n->ledger));
            ledger_rollback(n->ledger);
            for (size_t i = 0; i < n->config->peers_count; i++) {
                channel_reload(n->channels[i]);
            }
            responder_forget_answers(n->responder);
            committed = false;
        }
        for (waiter_t *w = n->waiters; w != NULL; w = w->next) {
            w->committed = true;
            w->failed = w->failed || rc != LEDGER_OK;
        }
    } else if (stopped) {
        read_control(n, now); /* status answers; sends are refused while stopped */
    }
    after_statements(n, committed && !stopped, now);
    for (size_t i = 0; i < n->config->peers_count; i++) {
        channel_after_commit(n->channels[i], now);
        n->keys[i].applied_through = channel_applied_seq(n->channels[i]);
    }
    answer_reads(n, now); /* after the turn's acknowledgements and messages have left */
    if (n->faults != NULL) {
        faults_flush(n->faults, now, send_to_socket, n);
    }
    flush_waiters(n, now);
    start_due_checkpoints(n, now);
    fflush(stderr); /* log lines leave once per turn, whole */
}

static long poll_timeout(node_t *n)
{
    int64_t now = now_ms();
    int64_t next = now + POLL_MAX_MS;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        int64_t d = channel_next_deadline(n->channels[i]);
        next = d < next ? d : next;
    }
    for (waiter_t *w = n->waiters; w != NULL; w = w->next) {
        next = w->deadline_ms < next ? w->deadline_ms : next;
    }
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (n->sessions[i].recon != NULL) {
            int64_t d = recon_deadline(n->sessions[i].recon);
            next = d != 0 && d < next ? d : next;
            next = n->sessions[i].deadline_ms < next ? n->sessions[i].deadline_ms : next;
        }
    }
    for (size_t i = 0; !ledger_stopped(n->ledger) && i < n->config->peers_count; i++) {
        int64_t d = channel_apply_after_ms(n->channels[i]);
        next = d < next ? d : next;
    }
    int64_t deferred = responder_next_ms(n->responder);
    next = deferred < next ? deferred : next;
    int64_t held = faults_next_deadline(n->faults);
    next = held < next ? held : next;
    return next <= now ? 0 : (long)(next - now);
}

/* ---- start and stop ----------------------------------------------------------------------- */

/* Statements travel apart from the sequenced stream, on a lane whose queue is short: a peer
 * that asks and does not read cannot make us hold answers without bound. */
static int send_to_socket(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                          size_t len)
{
    node_t *n = arg;
    bool statement = type == MSG_STATEMENT || type == MSG_STATEMENT_REQUEST;
    int rc = transport_send(n->transport, peer_index,
                            statement ? TRANSPORT_STATEMENTS : TRANSPORT_STREAM, wire, len);
    if (rc != 0 && errno == EMSGSIZE) {
        log_event(n->config->name, n->config->peers[peer_index].card.name, NULL,
                  "cannot send a %zu-byte message on the stream (the most is %d bytes)", len,
                  CORRIDOR_STREAM_WIRE_BYTES_MAX);
    }
    return rc;
}

/* channel_ctx_t.send: through the fault injector when it is on. */
static int send_frame(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                      size_t len)
{
    node_t *n = arg;
    if (n->faults != NULL) {
        return faults_send(n->faults, peer_index, type, wire, len, now_ms(), send_to_socket, n);
    }
    return send_to_socket(n, peer_index, type, wire, len);
}

static int take_lock(node_t *n)
{
    n->lock_fd = open(CONTROL_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (n->lock_fd < 0) {
        fprintf(stderr, "corridor run: cannot open %s/%s: %s\n", n->home, CONTROL_LOCK_FILE,
                strerror(errno));
        return EXIT_INTERNAL;
    }
    /* A client checking whether a node runs here holds a shared lock for an instant
     * (control_node_running): wait that out; a running node holds its lock for good. */
    for (int attempt = 0; flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0; attempt++) {
        if (errno != EWOULDBLOCK || attempt == LOCK_ATTEMPTS) {
            fprintf(stderr, "corridor run: another node is already running in %s\n", n->home);
            return EXIT_USAGE;
        }
        struct timespec pause = {0, LOCK_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return EXIT_OK;
}

static int open_faults(node_t *n)
{
    const char *spec = getenv(FAULTS_ENV);
    if (spec == NULL) {
        return EXIT_OK;
    }
    char err[600];
    if (faults_parse(spec, &n->faults, err, sizeof err) != 0) {
        fprintf(stderr, "corridor run: %s\n", err);
        return EXIT_USAGE;
    }
    faults_describe(n->faults, err, sizeof err);
    log_event(n->config->name, NULL, NULL, "%s", err);
    return EXIT_OK;
}

static int open_books(node_t *n)
{
    char err[512];
    if (config_load(CONFIG_FILE, &n->config, err, sizeof err) != 0) {
        fprintf(stderr, "corridor run: %s/%s\n", n->home, err);
        return EXIT_USAGE; /* a malformed config is bad input */
    }
    id_err_t id_rc = identity_load(IDENTITY_KEY_FILE, &n->identity);
    if (id_rc != ID_OK) {
        fprintf(stderr, "corridor run: %s/%s: %s%s\n", n->home, IDENTITY_KEY_FILE,
                id_strerror(id_rc),
                id_rc == ID_E_PERMISSIONS ? " (fix with: chmod 600 node.key)" : "");
        return id_rc == ID_E_PERMISSIONS ? EXIT_USAGE : EXIT_INTERNAL;
    }
    if (ledger_open(LEDGER_FILE, n->config->name, LEDGER_READ_WRITE, NULL, &n->ledger, err,
                    sizeof err) != LEDGER_OK ||
        ledger_open(LEDGER_FILE, n->config->name, LEDGER_READ_ONLY, NULL, &n->reader, err,
                    sizeof err) != LEDGER_OK) {
        fprintf(stderr, "corridor run: %s/%s: %s\n", n->home, LEDGER_FILE, err);
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

static int open_network(node_t *n)
{
    size_t count = n->config->peers_count;
    n->keys = sodium_malloc((count + 1) * sizeof *n->keys);
    n->channels = calloc(count + 1, sizeof *n->channels);
    n->sessions = calloc(count + 1, sizeof *n->sessions);
    n->reload = calloc(count + 1, sizeof *n->reload);
    n->checkpoint_next_ms = calloc(count + 1, sizeof *n->checkpoint_next_ms);
    n->started_wall_ms = wall_ms();
    n->responder = responder_new(count);
    transport_peer_t *peers = calloc(count + 1, sizeof *peers);
    int rc = EXIT_INTERNAL;
    if (n->keys == NULL || n->channels == NULL || peers == NULL || n->sessions == NULL ||
        n->reload == NULL || n->responder == NULL || n->checkpoint_next_ms == NULL) {
        fprintf(stderr, "corridor run: out of (locked) memory\n");
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        const peer_card_t *card = &n->config->peers[i].card;
        if (envelope_peer_init(&n->keys[i], n->identity, card) != ENV_OK) {
            fprintf(stderr, "corridor run: peer %s has a weak encryption key\n", card->name);
            goto cleanup;
        }
        peers[i] = (transport_peer_t){card->name, card->endpoint, card_stream_endpoint(card),
                                      card->curve_public};
    }
    char err[512];
    n->zmq = zmq_ctx_new();
    n->transport = n->zmq != NULL
                       ? transport_new(n->zmq, n->identity, n->config->listen,
                                       n->config->listen_stream, peers, count, err, sizeof err)
                       : NULL;
    if (n->transport == NULL) {
        fprintf(stderr, "corridor run: %s\n", n->zmq != NULL ? err : "cannot start ZeroMQ");
        goto cleanup;
    }
    mode_t mode = 0;
    if (fs_make_private_dir(CONTROL_DIR, &mode) != 0) {
        fprintf(stderr, "corridor run: %s/%s: %s%s\n", n->home, CONTROL_DIR, strerror(errno),
                errno == EACCES ? " (group or others may enter it; fix with: chmod 700 "
                                  "control)"
                                : "");
        rc = errno == EACCES || errno == EPERM || errno == ENOTDIR ? EXIT_USAGE : EXIT_INTERNAL;
        goto cleanup;
    }
    int linger = 0;
    n->control = zmq_socket(n->zmq, ZMQ_ROUTER);
    if (n->control == NULL || zmq_setsockopt(n->control, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(n->control, ZMQ_ZAP_DOMAIN, TRANSPORT_CONTROL_DOMAIN,
                       strlen(TRANSPORT_CONTROL_DOMAIN)) != 0 ||
        zmq_bind(n->control, "ipc://" CONTROL_SOCKET) != 0) { /* relative: we run in the home */
        fprintf(stderr, "corridor run: cannot open the control socket: %s\n",
                zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    channel_ctx_t ctx = {
        .self = n->identity,
        .config = n->config,
        .ledger = n->ledger,
        .send = send_frame,
        .on_final = on_final,
        .on_statement = on_statement,
        .arg = n,
        .node_name = n->config->name,
        .incarnation = (uint64_t)wall_ms() * 1000,
    };
    int64_t now = now_ms();
    for (size_t i = 0; i < count; i++) {
        n->channels[i] = channel_new(&ctx, i, &n->config->peers[i], &n->keys[i], now);
        if (n->channels[i] == NULL) {
            fprintf(stderr, "corridor run: cannot open the channel to %s: %s\n",
                    n->config->peers[i].card.name, ledger_last_error(n->ledger));
            goto cleanup;
        }
    }
    rc = EXIT_OK;

cleanup:
    free(peers);
    return rc;
}

/* The inbound frame buffer and the threads that open frames. */
static int open_inbound(node_t *n)
{
    n->inbound = calloc(1, sizeof *n->inbound);
    if (n->inbound != NULL) {
        n->inbound->bytes = malloc(INBOUND_MIN_BYTES);
        n->inbound->capacity = INBOUND_MIN_BYTES;
    }
    n->opener = opener_new(opener_default_workers());
    if (n->inbound == NULL || n->inbound->bytes == NULL || n->opener == NULL) {
        fprintf(stderr, "corridor run: out of memory\n");
        return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

static void close_node(node_t *n)
{
    while (n->waiters != NULL) {
        waiter_t *w = n->waiters;
        n->waiters = w->next;
        waiter_free(w);
    }
    for (size_t i = 0; n->sessions != NULL && i < n->config->peers_count; i++) {
        if (n->sessions[i].recon != NULL) {
            recon_destroy(&n->sessions[i].recon);
            zmq_msg_close(&n->sessions[i].route);
        }
    }
    free(n->sessions);
    free(n->reload);
    free(n->checkpoint_next_ms);
    responder_free(&n->responder);
    for (size_t i = 0; i < n->statements_in_count; i++) {
        inbound_statement_clear(&n->statements_in[i]);
    }
    for (size_t i = 0; i < n->reads_in_count; i++) {
        inbound_statement_clear(&n->reads_in[i]);
    }
    for (size_t i = 0; i < n->statements_out_count; i++) {
        free(n->statements_out[i].body);
    }
    for (size_t i = 0; n->channels != NULL && i < n->config->peers_count; i++) {
        channel_destroy(&n->channels[i]);
    }
    free(n->channels);
    if (n->control != NULL) {
        zmq_close(n->control);
    }
    transport_destroy(&n->transport);
    if (n->zmq != NULL) {
        zmq_ctx_term(n->zmq);
    }
    if (n->keys != NULL) {
        for (size_t i = 0; n->config != NULL && i < n->config->peers_count; i++) {
            envelope_peer_wipe(&n->keys[i]);
        }
        sodium_free(n->keys);
    }
    faults_destroy(&n->faults);
    opener_free(&n->opener);
    if (n->inbound != NULL) {
        free(n->inbound->bytes);
        free(n->inbound);
    }
    ledger_close(&n->reader);
    ledger_close(&n->ledger);
    identity_destroy(&n->identity);
    config_destroy(&n->config);
    if (n->lock_fd >= 0) {
        close(n->lock_fd);
    }
}

int daemon_run(const char *home)
{
    assert(home != NULL);
    node_t n = {.home = home, .lock_fd = -1};
    /* Buffered log: at thousands of settlements a second, one write per turn, not per line
     * (set before the first line; flushed at the end of every turn and at exit). */
    static char log_buffer[1 << 16];
    setvbuf(stderr, log_buffer, _IOFBF, sizeof log_buffer);
    if (chdir(home) != 0) {
        int saved = errno;
        fprintf(stderr, "corridor run: cannot enter %s: %s\n", home, strerror(saved));
        return saved == ENOENT ? EXIT_USAGE : EXIT_INTERNAL;
    }
    mode_t mode = 0;
    if (fs_dir_private(".", &mode) != 0 && errno == EACCES) {
        fprintf(stderr,
                "corridor run: %s is open to group or others (mode %04o); fix with: chmod 700 "
                "%s\n",
                home, (unsigned)mode, home);
        return EXIT_USAGE;
    }
    int rc;
    if ((rc = take_lock(&n)) != EXIT_OK || (rc = open_books(&n)) != EXIT_OK ||
        (rc = open_faults(&n)) != EXIT_OK || (rc = open_inbound(&n)) != EXIT_OK ||
        (rc = open_network(&n)) != EXIT_OK) {
        close_node(&n);
        fflush(stderr);
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_event(n.config->name, NULL, NULL, "running: listening on %s%s%s, %zu peers, pid %d",
              n.config->listen, n.config->listen_stream[0] != '\0' ? ", stream on " : "",
              n.config->listen_stream, n.config->peers_count, (int)getpid());
    if (n.config->listen_stream[0] == '\0') {
        log_event(n.config->name, NULL, NULL,
                  "no listen_stream in the config: peers' streams share the short queue of %s "
                  "(slower); add one and give peers the new card",
                  n.config->listen);
    }

    zmq_pollitem_t items[3] = {
        {transport_inbound_socket(n.transport), 0, ZMQ_POLLIN, 0},
        {transport_zap_socket(n.transport), 0, ZMQ_POLLIN, 0},
        {n.control, 0, ZMQ_POLLIN, 0},
    };
    while (!stop_requested) {
        int ready = zmq_poll(items, 3, poll_timeout(&n));
        if (ready < 0 && zmq_errno() != EINTR) {
            log_event(n.config->name, NULL, NULL, "poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (!stop_requested) {
            turn(&n);
        }
    }
    log_event(n.config->name, NULL, NULL, "stopping: %s",
              stop_requested ? "signal received" : "error");
    rc = stop_requested ? EXIT_OK : EXIT_INTERNAL;
    close_node(&n);
    fflush(stderr);
    setvbuf(stderr, NULL, _IONBF, 0);
    return rc;
}
