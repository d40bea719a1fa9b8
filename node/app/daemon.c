/* `corridor run`: the node's event loop; see daemon.h. */
#include "daemon.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "corridor/exit.h"
#include "corridor/limits.h"
#include "channel.h"
#include "config.h"
#include "control.h"
#include "cycles.h"
#include "engine.h"
#include "envelope.h"
#include "faults.h"
#include "keyannounce.h"
#include "fsutil.h"
#include "identity.h"
#include "ledger.h"
#include "log.h"
#include "opener.h"
#include "operation.h"
#include "screening.h"
#include "transport.h"
#include "validate.h"
#include "wire.h"

#define INBOUND_MIN_BYTES          (64u << 10) /* the frame buffer: its size at start, */
#define INBOUND_KEEP_BYTES         (4u << 20)  /* the most kept after a turn, */
#define CONTROL_PER_TURN           64          /* control requests read per loop turn */
#define POLL_MAX_MS                250 /* longest sleep, so signals and timers stay prompt */
#define WAIT_MAX_MS                (24 * 3600 * 1000)
#define SEND_EXPIRES_IN_MS_DEFAULT (INT64_C(86400) * 1000) /* a send that names none (3.8.1) */
#define SEND_EXPIRES_IN_MS_MAX     (INT64_C(366) * 86400 * 1000)

_Static_assert(CORRIDOR_WIRE_BYTES_MAX <= INBOUND_TURN_BYTES, "a turn must take the largest frame");

/* The frames one turn read, copied out of ZeroMQ so that they can be opened in parallel. */
typedef struct {
    opener_frame_t frames[INBOUND_PER_TURN];
    size_t offsets[INBOUND_PER_TURN]; /* where each frame's bytes start in `bytes` */
    size_t count;
    uint8_t *bytes;
    size_t used, capacity;
} inbound_t;

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

/* This turn's `key rotate`: announced inside the transaction, answered after its commit. */
typedef struct {
    bool pending;      /* engine_rotate announced `next` in this turn's transaction */
    zmq_msg_t route;   /* the client waiting for the reply */
    identity_t *next;  /* the keys announced (in node.key.next until the renames) */
    json_t *announced; /* [{peer, sequence}]: where each channel's announcement stands */
    bool new_curve;    /* the CURVE key changes too (the KeySwitch follows the Acks) */
    json_int_t overlap_s;
} rotation_t;

/* What the transport was last told about one peer's CURVE keys (PROTOCOL.md 2.16). */
typedef struct {
    char admit_current[IDENTITY_CURVE_KEY_CHARS + 1];
    char admit_previous[IDENTITY_CURVE_KEY_CHARS + 1]; /* "": none */
    int64_t previous_until_wall_ms;
    char pin[IDENTITY_CURVE_KEY_CHARS + 1];
    char client[IDENTITY_CURVE_KEY_CHARS + 1]; /* our CURVE public key it connects with */
} steered_t;

typedef struct {
    const char *home;
    config_t *config;
    identity_t *identity;  /* our keys: the engine's self (node.key) */
    identity_t *previous;  /* our keys before the last rotation: the engine's self_previous */
    bool previous_on_disk; /* node.key.previous is there: removed once every peer has
                            * acknowledged the new key (the memory copy stays until exit or
                            * the next rotation) */
    identity_t *abandoned; /* the keys of a rotation whose transaction failed: channels may
                            * point at them until they reload, so they live until exit */
    rotation_t rotation;   /* this turn's `key rotate` */
    ledger_t *ledger;
    envelope_peer_t *keys; /* per configured peer, in sodium_malloc'd memory */
    engine_t *engine;      /* channels, statements, sessions: the turn without sockets */
    void *zmq;
    transport_t *transport;
    void *control; /* ROUTER */
    int lock_fd;
    waiter_t *waiters;          /* send requests, newest first */
    faults_t *faults;           /* test-only fault injection, or NULL */
    opener_t *opener;           /* opens inbound frames on all cores */
    inbound_t *inbound;         /* this turn's inbound frames */
    ledger_t *reader;           /* read snapshots of the ledger */
    zmq_msg_t *routes;          /* per peer: the client waiting for its reconcile report */
    bool *routed;               /* per peer: routes[i] holds one */
    int64_t turn_ms;            /* when this loop turn began */
    int64_t oversize_logged_ms; /* when a frame too large for the stream was last logged */
    steered_t *steered;         /* per peer: what the transport was last told (steer) */
    uint8_t serving[IDENTITY_KEY_ID_BYTES]; /* whose CURVE key the inbound socket serves */
    bool rebind_failed;                     /* the last rebind failed: tried again at */
    int64_t rebind_retry_ms;                /* this time (monotonic), after */
    int64_t rebind_backoff_ms;              /* this pause, doubling up to a limit */
    screening_t *screening;                 /* the screening list and program (3.8.2) */
} node_t;

#define REBIND_BACKOFF_MIN_MS 1000 /* a failed rebind of the inbound socket: next try after */
#define REBIND_BACKOFF_MAX_MS 30000

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
    if (o->cancelled) {
        json_object_set_new(result, "cancelled", json_true());
    }
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

/* Records a person's action in the journal (inside the turn's transaction): who (uid and
 * name), when, what, with which arguments (the reference to `args` is taken). False when it
 * could not be recorded (the action must then not happen). */
static bool record_operation(node_t *n, long long uid, const char *action, const char *peer,
                             json_t *args)
{
    char *text = args != NULL ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    bool recorded = operation_record(n->ledger, uid, action, peer, args) == LEDGER_OK;
    if (recorded) {
        log_event(n->config->name, peer[0] ? peer : NULL, NULL, "operator %s (uid %lld): %s",
                  action, uid, text != NULL ? text : "");
    }
    free(text);
    return recorded;
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
    json_t *timeout = json_object_get(req, "timeout_ms");
    json_int_t ms = json_is_integer(timeout) ? json_integer_value(timeout) : ENGINE_SESSION_MS_MAX;
    bool repair = json_is_true(json_object_get(req, "repair"));
    ms = ms < 1000 ? 1000 : ms > ENGINE_SESSION_MS_MAX ? ENGINE_SESSION_MS_MAX : ms;
    int started = engine_session_start(n->engine, index, repair, now + ms);
    if (started == -1) {
        reply_error(n, route, EXIT_USAGE, "a reconciliation with that peer is already running");
        return;
    }
    if (started != 0) {
        reply_error(n, route, EXIT_INTERNAL, "cannot start: out of memory or ledger unreadable");
        return;
    }
    if (repair && !record_operation(n, uid, "repair", peer, json_pack("{s:s}", "peer", peer))) {
        engine_session_cancel(n->engine, index); /* no repair that is not on record */
        reply_error(n, route, EXIT_INTERNAL, "cannot record the repair in the journal");
        return;
    }
    if (n->routed[index]) { /* an automatic session's place, taken: nobody waited for it */
        zmq_msg_close(&n->routes[index]);
    }
    zmq_msg_init(&n->routes[index]);
    zmq_msg_copy(&n->routes[index], route);
    n->routed[index] = true;
    engine_session_go(n->engine, index);
}

/* engine_ctx_t.on_report: an operator's reconcile ended; its client gets the report. */
static void on_report(void *arg, size_t peer_index, json_t *doc)
{
    node_t *n = arg;
    if (n->routed[peer_index]) {
        reply_json(n, &n->routes[peer_index], doc);
        zmq_msg_close(&n->routes[peer_index]);
        n->routed[peer_index] = false;
    }
}

/* ---- signing-key rotation (`corridor key rotate`) ------------------------------------------ */

#define KEY_ID_HEX_SIZE (2 * IDENTITY_KEY_ID_BYTES + 1)

static void key_id_hex(const uint8_t key_id[static IDENTITY_KEY_ID_BYTES],
                       char out[static KEY_ID_HEX_SIZE])
{
    sodium_bin2hex(out, KEY_ID_HEX_SIZE, key_id, IDENTITY_KEY_ID_BYTES);
}

/* Removes node.key.next (a rotation that did not happen), durably. */
static void drop_next_file(node_t *n)
{
    if ((unlink(IDENTITY_KEY_FILE_NEXT) != 0 && errno != ENOENT) || fs_sync_dir(".") != 0) {
        log_event(n->config->name, NULL, NULL, "cannot remove %s: %s", IDENTITY_KEY_FILE_NEXT,
                  strerror(errno));
    }
}

/* After the commit of a rotation to the keys in node.key.next: `current` (the keys before)
 * goes to node.key.previous, written whole first so that node.key is never missing, then
 * node.key.next replaces node.key and the directory is synced. Also what start-up does with
 * a rotation that stopped between its commit and these renames. false (err says why) when a
 * step failed: the next start finishes them. */
static bool promote_key_files(const identity_t *current, char *err, size_t err_size)
{
    id_err_t rc = identity_save(current, IDENTITY_KEY_FILE_PREV);
    if (rc != ID_OK) {
        snprintf(err, err_size, "cannot write %s: %s: %s", IDENTITY_KEY_FILE_PREV, id_strerror(rc),
                 strerror(errno));
        return false;
    }
    if (rename(IDENTITY_KEY_FILE_NEXT, IDENTITY_KEY_FILE) != 0 || fs_sync_dir(".") != 0) {
        snprintf(err, err_size, "cannot move %s to %s: %s", IDENTITY_KEY_FILE_NEXT,
                 IDENTITY_KEY_FILE, strerror(errno));
        return false;
    }
    return true;
}

static void reply_not_ready(node_t *n, zmq_msg_t *route, size_t peer_index)
{
    char error[256];
    snprintf(error, sizeof error,
             "our last rotation is not yet announced to peer %s (not up since this node started, "
             "or an older program) or not yet acknowledged by it; nothing changed",
             n->config->peers[peer_index].card.name);
    reply_error(n, route, EXIT_NEGATIVE, error);
}

/* Inside the transaction: new signing and box keys (the CURVE secret stays), kept in
 * node.key.next, announced on every channel; the reply waits for the commit
 * (finish_rotation). Refused, with nothing changed, unless every peer is ready for it. */
static void handle_rotate(node_t *n, zmq_msg_t *route, json_t *req, long long uid)
{
    json_t *overlap = json_object_get(req, "overlap_s");
    json_int_t overlap_s =
        json_is_integer(overlap) ? json_integer_value(overlap) : ENGINE_CURVE_OVERLAP_MS / 1000;
    if (overlap_s < 0 || overlap_s > KEY_SWITCH_OVERLAP_MAX_S) {
        reply_error(n, route, EXIT_USAGE, "overlap_s is not 0 to 30 days in seconds");
        return;
    }
    if (n->rotation.pending) {
        reply_error(n, route, EXIT_NEGATIVE,
                    "another rotation is being committed; nothing changed (try again)");
        return;
    }
    if (n->abandoned != NULL) {
        reply_error(n, route, EXIT_INTERNAL,
                    "an earlier rotation failed with the ledger; restart the node");
        return;
    }
    /* engine_rotate checks the same, but by then the operation would be on record */
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (!channel_rotation_acked(engine_channel(n->engine, i))) {
            reply_not_ready(n, route, i);
            return;
        }
        if (channel_previous_keys_needed(engine_channel(n->engine, i))) {
            char error[256];
            snprintf(error, sizeof error,
                     "peer %s may still send what it made for our keys before the current ones "
                     "(not heard since it applied our last announcement, or we have not applied "
                     "all it had sent by then); nothing changed",
                     n->config->peers[i].card.name);
            reply_error(n, route, EXIT_NEGATIVE, error);
            return;
        }
    }
    if (engine_curve_pending(n->engine)) {
        reply_error(n, route, EXIT_NEGATIVE,
                    "our last rotation's CURVE key switch is not done (a peer with a lower node "
                    "code is switching its own first); nothing changed");
        return;
    }
    /* new signing and box keys, and a new CURVE key if every peer switches transports
     * (PROTOCOL.md 2.16): a server has one CURVE key, which every peer must pin */
    bool new_curve = true;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        new_curve &= channel_peer_offers(engine_channel(n->engine, i), CHANNEL_FEATURE_CURVE);
    }
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1], curve_secret[IDENTITY_CURVE_KEY_CHARS + 1];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(box, sizeof box);
    if (new_curve && zmq_curve_keypair(curve_public, curve_secret) != 0) {
        new_curve = false; /* libzmq without CURVE cannot have got this far */
    }
    identity_t *next =
        identity_from_secrets(seed, box, new_curve ? curve_secret : n->identity->curve_secret);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(box, sizeof box);
    sodium_memzero(curve_secret, sizeof curve_secret);
    if (next == NULL) {
        reply_error(n, route, EXIT_INTERNAL, "cannot make new keys (out of secure memory)");
        return;
    }
    id_err_t saved = identity_save(next, IDENTITY_KEY_FILE_NEXT);
    if (saved != ID_OK) {
        char error[256];
        snprintf(error, sizeof error, "cannot write %s: %s: %s; nothing changed",
                 IDENTITY_KEY_FILE_NEXT, id_strerror(saved), strerror(errno));
        identity_destroy(&next);
        drop_next_file(n);
        reply_error(n, route, EXIT_INTERNAL, error);
        return;
    }
    char next_hex[KEY_ID_HEX_SIZE], current_hex[KEY_ID_HEX_SIZE];
    key_id_hex(next->key_id, next_hex);
    key_id_hex(n->identity->key_id, current_hex);
    if (!record_operation(n, uid, "rotate", "",
                          json_pack("{s:s, s:s, s:b, s:I}", "key_id", next_hex, "previous_key_id",
                                    current_hex, "curve_switch", new_curve, "overlap_s",
                                    overlap_s))) {
        identity_destroy(&next);
        drop_next_file(n);
        reply_error(n, route, EXIT_INTERNAL,
                    "cannot record the rotation in the journal; nothing changed");
        return;
    }
    size_t not_ready = 0;
    engine_set_curve_overlap(n->engine, (int64_t)overlap_s * 1000);
    ledger_err_t rc = engine_rotate(n->engine, next, &not_ready);
    if (rc == LEDGER_E_STATE) { /* nothing done */
        identity_destroy(&next);
        drop_next_file(n);
        reply_not_ready(n, route, not_ready);
        return;
    }
    if (rc != LEDGER_OK) { /* the transaction fails; channels may hold `next` until reloaded */
        n->abandoned = next;
        drop_next_file(n);
        reply_error(n, route, EXIT_INTERNAL, ledger_last_error(n->ledger));
        return;
    }
    /* each announcement's number: its channel's last, before anything else this turn sends */
    /* a peer not yet heard from since the start gets the announcement once it is: null */
    json_t *announced = json_array();
    for (size_t i = 0; announced != NULL && i < n->config->peers_count; i++) {
        const channel_t *ch = engine_channel(n->engine, i);
        json_t *seq =
            channel_own(ch) == next ? json_integer((json_int_t)channel_sent_seq(ch)) : json_null();
        json_array_append_new(announced, json_pack("{s:s, s:o}", "peer",
                                                   n->config->peers[i].card.name, "sequence", seq));
    }
    n->rotation.pending = true;
    zmq_msg_init(&n->rotation.route);
    zmq_msg_copy(&n->rotation.route, route);
    n->rotation.next = next;
    n->rotation.announced = announced;
    n->rotation.new_curve = new_curve;
    n->rotation.overlap_s = overlap_s;
}

/* After this turn's transaction: a rotation it held is ours once committed (the engine
 * switched to the new keys), and the key files follow; the client gets its answer. */
static void finish_rotation(node_t *n, bool committed)
{
    rotation_t *r = &n->rotation;
    if (!r->pending) {
        return;
    }
    if (!committed) {
        n->abandoned = r->next; /* the channels reloaded, but keep them to be sure */
        drop_next_file(n);
        reply_error(n, &r->route, EXIT_INTERNAL, ledger_last_error(n->ledger));
    } else {
        char err[512] = "";
        bool moved = promote_key_files(n->identity, err, sizeof err);
        identity_destroy(&n->previous); /* two rotations back: nothing points at it now */
        n->previous = n->identity;
        n->identity = r->next;
        n->previous_on_disk = access(IDENTITY_KEY_FILE_PREV, F_OK) == 0;
        char next_hex[KEY_ID_HEX_SIZE], previous_hex[KEY_ID_HEX_SIZE];
        key_id_hex(n->identity->key_id, next_hex);
        key_id_hex(n->previous->key_id, previous_hex);
        log_event(n->config->name, NULL, NULL,
                  "signing key rotated: %s (was %s), announced to %zu peer%s%s%s", next_hex,
                  previous_hex, json_array_size(r->announced),
                  json_array_size(r->announced) == 1 ? "" : "s", moved ? "" : "; but ",
                  moved ? "" : err);
        json_t *doc =
            json_pack("{s:b, s:b, s:s, s:s, s:O, s:b, s:I}", "ok", 1, "rotated", 1, "key_id",
                      next_hex, "previous_key_id", previous_hex, "announced", r->announced,
                      "curve_switch", r->new_curve, "overlap_s", r->new_curve ? r->overlap_s : 0);
        if (!moved && doc != NULL) {
            char warning[640];
            snprintf(warning, sizeof warning,
                     "%s; the node runs with the new key, and its next start finishes the "
                     "key files",
                     err);
            json_object_set_new(doc, "warning", json_string(warning));
        }
        if (doc != NULL) {
            reply_json(n, &r->route, doc);
        } else {
            reply_error(n, &r->route, EXIT_INTERNAL, "out of memory (the rotation committed)");
        }
        json_decref(doc);
    }
    zmq_msg_close(&r->route);
    json_decref(r->announced);
    memset(r, 0, sizeof *r);
}

/* Once every channel has acknowledged our last announcement, nothing is signed with the keys
 * before it any more, and once we applied what each peer made for them before it took the
 * announcement (channel_previous_keys_needed), nothing needs them: their file goes (the memory copy
 * stays until exit or the next rotation). */
static void forget_previous_file(node_t *n)
{
    if (!n->previous_on_disk) {
        return;
    }
    for (size_t i = 0; i < n->config->peers_count; i++) {
        const channel_t *ch = engine_channel(n->engine, i);
        if (!channel_rotation_acked(ch) || channel_previous_keys_needed(ch)) {
            return;
        }
    }
    if (engine_curve_pending(n->engine)) { /* its CURVE key serves until our KeySwitch */
        return;
    }
    n->previous_on_disk = false; /* said once, whatever happens */
    if ((unlink(IDENTITY_KEY_FILE_PREV) != 0 && errno != ENOENT) || fs_sync_dir(".") != 0) {
        log_event(n->config->name, NULL, NULL, "cannot remove %s: %s", IDENTITY_KEY_FILE_PREV,
                  strerror(errno));
        return;
    }
    log_event(n->config->name, NULL, NULL,
              "previous signing key removed: every peer acknowledged the new one");
}

/* ---- control requests ----------------------------------------------------------------------- */

static channel_t *channel_of(node_t *n, const char *peer)
{
    for (size_t i = 0; i < n->config->peers_count; i++) {
        if (strcmp(n->config->peers[i].card.name, peer) == 0) {
            return engine_channel(n->engine, i);
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

/* Builds a settlement from one request item, to expire `expires_in_ms` after its creation (0:
 * never); returns NULL or what is wrong. */
static const char *item_settlement(node_t *n, json_t *item, int64_t expires_in_ms, settlement_t *s)
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
    s->created_unix_ms = operation_wall_ms();
    s->expires_unix_ms = expires_in_ms > 0 ? s->created_unix_ms + expires_in_ms : 0;
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
    json_t *expires = json_object_get(req, "expires_in_ms");
    json_int_t expires_in_ms =
        json_is_integer(expires) ? json_integer_value(expires) : SEND_EXPIRES_IN_MS_DEFAULT;
    if (expires_in_ms < 0 || expires_in_ms > SEND_EXPIRES_IN_MS_MAX) {
        waiter_free(w);
        reply_error(n, route, EXIT_USAGE, "expires_in_ms is not 0 to 366 days in ms");
        return;
    }
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
        const char *problem =
            json_is_object(item) ? item_settlement(n, item, expires_in_ms, &s) : "not an object";
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

/* The peer index of the payment `id` in `direction` (on `peer` when not NULL), or SIZE_MAX with
 * what is wrong in `error`: none, or several peers hold the id (a UETR is unique per channel
 * only: a hostile peer may reuse another's), so the person must name the peer. */
static size_t find_payment(node_t *n, const char *peer, const char *id, direction_t direction,
                           settlement_t *s, ledger_outcome_t *out, char *error, size_t error_size)
{
    size_t index = SIZE_MAX, found = 0;
    bool other_direction = false;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        const char *name = n->config->peers[i].card.name;
        settlement_t here;
        ledger_outcome_t here_out;
        if ((peer != NULL && strcmp(peer, name) != 0) ||
            ledger_find(n->ledger, name, id, &here, &here_out) != LEDGER_OK) {
            continue;
        }
        if (settlement_is_return(&here) || settlement_is_fx_leg(&here)) {
            continue; /* a return is found by its payment (3.9), a leg by its trade (3.10) */
        }
        if (here.direction != direction) {
            other_direction = true;
            continue;
        }
        found++;
        index = i;
        *s = here;
        *out = here_out;
    }
    if (found == 1) {
        return index;
    }
    if (found > 1) {
        snprintf(error, error_size, "%s: several peers have a payment with this id; give --peer",
                 id);
    } else if (peer != NULL && config_find_peer(n->config, peer) == NULL) {
        snprintf(error, error_size, "%s: not a peer of this node", peer);
    } else {
        snprintf(error, error_size, "%s: %s", id,
                 other_direction             ? direction == DIRECTION_IN
                                                   ? "our own payment: only its payee decides it"
                                                   : "an incoming payment: only its payer asks it back"
                 : direction == DIRECTION_IN ? "no incoming payment with this id"
                                             : "no payment of ours with this id");
    }
    return SIZE_MAX;
}

/* The peer whose trade the peer proposed is `id` (3.10; its fx_id or a leg's UETR), and its
 * outcome; SIZE_MAX when no peer's, or several (then find_payment says so). */
static size_t find_trade(node_t *n, const char *peer, const char *id, ledger_outcome_t *out)
{
    size_t index = SIZE_MAX, found = 0;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        const char *name = n->config->peers[i].card.name;
        settlement_t legs[2], leg;
        ledger_outcome_t here;
        const char *fx_id = id;
        if (ledger_find(n->ledger, name, id, &leg, NULL) == LEDGER_OK &&
            settlement_is_fx_leg(&leg)) {
            fx_id = leg.fx_id;
        }
        if ((peer == NULL || strcmp(peer, name) == 0) &&
            ledger_fx_find(n->ledger, name, fx_id, legs, &here) == LEDGER_OK &&
            legs[0].direction == DIRECTION_IN) {
            found++;
            index = i;
            *out = here;
        }
    }
    return found == 1 ? index : SIZE_MAX;
}

static size_t find_net(node_t *n, const char *peer, const char *id, ledger_net_t *net);
static void answer_one(node_t *n, zmq_msg_t *route, ledger_err_t rc, json_t *result,
                       const ledger_outcome_t *out, const char *peer, const char *waited,
                       json_int_t wait_ms, int64_t now);

/* A person confirms or refuses a net settlement we hold (3.11.3). */
static void handle_review_net(node_t *n, zmq_msg_t *route, size_t index, const char *id,
                              const char *reason, long long uid, int64_t now)
{
    const char *peer = n->config->peers[index].card.name;
    channel_t *ch = engine_channel(n->engine, index);
    char error[300];
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    status_t status = STATUS_HELD;
    if (!channel_decides_held(ch)) { /* find_net found it held: nothing else can refuse */
        snprintf(error, sizeof error,
                 "the channel with %s is %s: decisions wait until it is up; nothing changed", peer,
                 channel_state_name(channel_stats(ch).state));
        reply_error(n, route, EXIT_NEGATIVE, error);
        return;
    }
    json_t *args =
        json_pack("{s:s, s:s, s:o}", "id", id, "decision", reason == NULL ? "accept" : "reject",
                  "reason", reason != NULL ? json_string(reason) : json_null());
    bool recorded = args != NULL && record_operation(n, uid, "review", peer, args);
    ledger_err_t rc = recorded ? channel_net_decide(ch, id, reason, &status) : LEDGER_E_STORAGE;
    if (rc == LEDGER_E_STATE || rc == LEDGER_E_NOT_FOUND) {
        snprintf(error, sizeof error,
                 status != STATUS_HELD
                     ? "%s: not held (decided already)"
                     : "%s: the channel does not decide now (wait until it is up)",
                 id);
        reply_error(n, route, status != STATUS_HELD ? EXIT_USAGE : EXIT_NEGATIVE, error);
        return;
    }
    out.status = status;
    snprintf(out.reason, sizeof out.reason, "%s", reason != NULL ? reason : "");
    json_t *result = rc != LEDGER_OK ? NULL : json_pack("{s:s, s:s}", "id", id, "peer", peer);
    answer_one(n, route, rc, result, &out, peer, id, 0, now);
}

/* Inside the transaction: a person decides a payment we hold (PROTOCOL.md 3.8.2). The operator
 * row and the decision commit together; the reply, a waiter's, follows the commit. */
static void handle_review(node_t *n, zmq_msg_t *route, json_t *req, long long uid, int64_t now)
{
    const char *id = json_str(req, "id", "");
    const char *decision = json_str(req, "decision", "");
    const char *reason = json_str(req, "reason", NULL);
    bool accept = strcmp(decision, "accept") == 0;
    if ((!accept && strcmp(decision, "reject") != 0) || uetr_check(id) != VALID_OK ||
        (reason != NULL && (accept || reason_code_check(reason) != VALID_OK))) {
        reply_error(n, route, EXIT_USAGE,
                    "review: decision accept or reject, id a UETR, reason an ISO code");
        return;
    }
    reason = accept ? NULL : reason != NULL ? reason : reason_code(REASON_REGULATORY);
    settlement_t s;
    ledger_outcome_t now_out;
    char error[200];
    ledger_net_t net;
    size_t index = find_net(n, json_str(req, "peer", NULL), id, &net);
    if (index != SIZE_MAX) { /* a net settlement: a person saw the funds arrive, or did not */
        handle_review_net(n, route, index, id, reason, uid, now);
        return;
    }
    index = find_trade(n, json_str(req, "peer", NULL), id, &now_out);
    if (index == SIZE_MAX) {
        index = find_payment(n, json_str(req, "peer", NULL), id, DIRECTION_IN, &s, &now_out, error,
                             sizeof error);
    }
    if (index == SIZE_MAX || now_out.status != STATUS_HELD) {
        if (index != SIZE_MAX) {
            snprintf(error, sizeof error, "%s: not held (decided already)", id);
        }
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    const char *peer = n->config->peers[index].card.name;
    channel_t *ch = engine_channel(n->engine, index);
    if (!channel_decides_held(ch)) { /* a restore of ours would show first */
        snprintf(error, sizeof error,
                 "the channel with %s is %s: decisions wait until it is up; nothing changed", peer,
                 channel_state_name(channel_stats(ch).state));
        reply_error(n, route, EXIT_NEGATIVE, error);
        return;
    }
    json_t *args = json_pack("{s:s, s:s, s:o}", "id", id, "decision", decision, "reason",
                             reason != NULL ? json_string(reason) : json_null());
    bool recorded = args != NULL && record_operation(n, uid, "review", peer, args);
    ledger_outcome_t out;
    ledger_err_t rc = recorded
                          ? channel_decide_held(engine_channel(n->engine, index), id, reason, &out)
                          : LEDGER_E_STORAGE;
    waiter_t *w = rc == LEDGER_OK ? calloc(1, sizeof *w) : NULL;
    if (w == NULL || (w->results = json_array()) == NULL) {
        free(w);
        reply_error(n, route, EXIT_INTERNAL,
                    rc != LEDGER_OK ? ledger_last_error(n->ledger) : "out of memory");
        return;
    }
    zmq_msg_init(&w->route);
    zmq_msg_copy(&w->route, route);
    w->deadline_ms = now;
    json_t *result = json_pack("{s:s, s:s}", "id", id, "peer", peer);
    fill_result(result, &out);
    json_array_append_new(w->results, result);
    w->next = n->waiters;
    n->waiters = w;
}

/* The answer to a request about one payment (return, cancel): `result` (taken; NULL when rc
 * failed or out of memory) with the outcome `out`, after the commit, or with wait_ms once the
 * payment `waited` with `peer` is final or the wait ends. A failure is answered at once. */
static void answer_one(node_t *n, zmq_msg_t *route, ledger_err_t rc, json_t *result,
                       const ledger_outcome_t *out, const char *peer, const char *waited,
                       json_int_t wait_ms, int64_t now)
{
    waiter_t *w = rc == LEDGER_OK && result != NULL ? calloc(1, sizeof *w) : NULL;
    if (w == NULL || (w->results = json_array()) == NULL ||
        (wait_ms > 0 && (w->waiting = calloc(1, sizeof *w->waiting)) == NULL)) {
        if (w != NULL) {
            json_decref(w->results);
        }
        free(w);
        json_decref(result);
        reply_error(n, route, EXIT_INTERNAL,
                    rc != LEDGER_OK ? ledger_last_error(n->ledger) : "out of memory");
        return;
    }
    zmq_msg_init(&w->route);
    zmq_msg_copy(&w->route, route);
    w->deadline_ms = now + (wait_ms < 0 ? 0 : wait_ms > WAIT_MAX_MS ? WAIT_MAX_MS : wait_ms);
    fill_result(result, out);
    json_array_append_new(w->results, result);
    if (wait_ms > 0 && !is_final(out->status)) {
        json_object_set_new(result, "waiting", json_true());
        waiting_key(w->waiting[0].key, peer, waited);
        w->waiting[w->open++].result = result;
    }
    w->next = n->waiters;
    n->waiters = w;
}

/* Inside the transaction: the payee of a settled payment returns all or part of it (PROTOCOL.md
 * 3.9), an operator action on record; the reply follows the commit, or with wait_ms the
 * return's final status (accepted: settled, refused: rejected). */
static void handle_return(node_t *n, zmq_msg_t *route, json_t *req, long long uid, int64_t now)
{
    const char *uetr = json_str(req, "uetr", "");
    const char *reason = json_str(req, "reason", "");
    const char *amount_text = json_str(req, "amount", NULL);
    json_t *wait = json_object_get(req, "wait_ms");
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    if (uetr_check(uetr) != VALID_OK || reason_code_check(reason) != VALID_OK) {
        reply_error(n, route, EXIT_USAGE, "return: uetr a UETR, reason an ISO return reason code");
        return;
    }
    settlement_t s;
    ledger_outcome_t out;
    char error[300];
    size_t index = find_payment(n, json_str(req, "peer", NULL), uetr, DIRECTION_IN, &s, &out, error,
                                sizeof error);
    if (index == SIZE_MAX) {
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    int64_t amount = 0; /* all that is left */
    const currency_t *currency = currency_find(s.currency);
    valid_err_t bad = VALID_OK;
    if (amount_text != NULL && currency != NULL &&
        (bad = amount_parse(amount_text, currency, false, &amount)) != VALID_OK) {
        snprintf(error, sizeof error, "--amount %s: %s", amount_text, valid_strerror(bad));
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    const char *peer = n->config->peers[index].card.name;
    channel_t *ch = engine_channel(n->engine, index);
    if (!channel_peer_offers(ch, CHANNEL_FEATURE_RETURNS)) {
        snprintf(error, sizeof error,
                 "%s has not offered two-phase returns (an older program, or not heard from "
                 "since this node started); nothing sent",
                 peer);
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    settlement_t r;
    ledger_err_t rc = channel_prepare_return(ch, uetr, amount, reason, &r);
    if (rc == LEDGER_E_STATE || rc == LEDGER_E_NOT_FOUND) {
        snprintf(error, sizeof error, "%s: %s; nothing sent", uetr, ledger_last_error(n->ledger));
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    json_t *args = rc != LEDGER_OK
                       ? NULL
                       : json_pack("{s:s, s:s, s:s, s:I}", "uetr", uetr, "return_id", r.uetr,
                                   "reason", reason, "amount_minor", (json_int_t)r.amount_minor);
    bool recorded =
        rc == LEDGER_OK && args != NULL && record_operation(n, uid, "return", peer, args);
    if (rc == LEDGER_OK && !recorded) {
        rc = LEDGER_E_STORAGE;
    }
    if (rc == LEDGER_OK && (rc = channel_send_settlement(ch, &r, &out)) == LEDGER_OK) {
        log_event(n->config->name, peer, r.uetr, "outgoing return %lld %s of %s (%s) pending",
                  (long long)r.amount_minor, r.currency, uetr, reason);
    }
    const char *id = r.uetr;
    json_t *result = rc != LEDGER_OK
                         ? NULL
                         : json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "return_id", id, "uetr",
                                     uetr, "peer", peer, "amount_minor", (json_int_t)r.amount_minor,
                                     "currency", s.currency, "return_reason", reason);
    answer_one(n, route, rc, result, &out, peer, id, wait_ms, now);
}

/* Parses one leg of an `fx` request ("pay" or "receive": {currency, amount}) into leg. NULL, or
 * what is wrong, in `error`. */
static const char *fx_leg_of(const node_t *n, json_t *req, const char *key, settlement_t *leg,
                             char *error, size_t error_size)
{
    json_t *o = json_object_get(req, key);
    const char *code = json_str(o, "currency", ""), *amount = json_str(o, "amount", "");
    const currency_t *c = currency_find(code);
    valid_err_t bad = VALID_OK;
    if (c == NULL) {
        snprintf(error, error_size, "--%s %s: not a currency", key, code);
    } else if (!config_accepts(n->config, c->code)) {
        snprintf(error, error_size, "--%s: %s is not a currency this node accepts", key, c->code);
    } else if ((bad = amount_parse(amount, c, false, &leg->amount_minor)) != VALID_OK) {
        snprintf(error, error_size, "--%s %s=%s: %s", key, c->code, amount, valid_strerror(bad));
    } else {
        snprintf(leg->currency, sizeof leg->currency, "%s", c->code);
        uetr_generate(leg->uetr);
        return NULL;
    }
    return error;
}

/* Inside the transaction: a trade with the peer, both legs as one (PROTOCOL.md 3.10), an operator
 * action on record; the reply follows the commit, or with wait_ms the trade's final status. */
static void handle_fx(node_t *n, zmq_msg_t *route, json_t *req, long long uid, int64_t now)
{
    const char *peer = json_str(req, "peer", "");
    json_t *wait = json_object_get(req, "wait_ms"),
           *expires = json_object_get(req, "expires_in_ms");
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    json_int_t expires_in_ms =
        json_is_integer(expires) ? json_integer_value(expires) : SEND_EXPIRES_IN_MS_DEFAULT;
    char error[300];
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    const config_peer_t *p = config_find_peer_const(n->config, peer);
    if (p == NULL) {
        snprintf(error, sizeof error, "--peer %s: not a peer of this node", peer);
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    if (expires_in_ms < 0 || expires_in_ms > SEND_EXPIRES_IN_MS_MAX) {
        reply_error(n, route, EXIT_USAGE, "expires_in_ms is not 0 to 366 days in ms");
        return;
    }
    if (fx_leg_of(n, req, "pay", &t.legs[FX_PAY], error, sizeof error) != NULL ||
        fx_leg_of(n, req, "receive", &t.legs[FX_RECEIVE], error, sizeof error) != NULL) {
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    if (strcmp(t.legs[FX_PAY].currency, t.legs[FX_RECEIVE].currency) == 0) {
        reply_error(n, route, EXIT_USAGE, "--pay and --receive name the same currency");
        return;
    }
    size_t index = (size_t)(p - n->config->peers);
    channel_t *ch = engine_channel(n->engine, index);
    if (!channel_peer_offers(ch, CHANNEL_FEATURE_FX)) {
        snprintf(error, sizeof error,
                 "%s has not offered FX trades (an older program, or not heard from since this "
                 "node started); nothing sent",
                 peer);
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    uetr_generate(t.fx_id);
    t.created_unix_ms = operation_wall_ms();
    t.expires_unix_ms = expires_in_ms > 0 ? t.created_unix_ms + expires_in_ms : 0;
    const char *why = NULL;
    ledger_err_t rc = channel_prepare_fx(ch, &t, &why);
    if (rc == LEDGER_OK && why != NULL) {
        snprintf(error, sizeof error, "%s: %s; nothing sent", why,
                 strcmp(why, "AM02") == 0
                     ? "the peer's leg would take its debt to us over the cap we grant it"
                     : "the trade is malformed");
        reply_error(n, route, strcmp(why, "AM02") == 0 ? EXIT_NEGATIVE : EXIT_USAGE, error);
        return;
    }
    const settlement_t *pay = &t.legs[FX_PAY], *receive = &t.legs[FX_RECEIVE];
    json_t *args = rc != LEDGER_OK ? NULL
                                   : json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "fx_id", t.fx_id,
                                               "pay_currency", pay->currency, "pay_minor",
                                               (json_int_t)pay->amount_minor, "receive_currency",
                                               receive->currency, "receive_minor",
                                               (json_int_t)receive->amount_minor, "rate", t.rate);
    bool recorded = rc == LEDGER_OK && args != NULL && record_operation(n, uid, "fx", peer, args);
    if (rc == LEDGER_OK && !recorded) {
        rc = LEDGER_E_STORAGE;
    }
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    if (rc == LEDGER_OK) {
        rc = channel_propose_fx(ch, &t, &why, &out);
        rc = rc == LEDGER_OK && why != NULL ? LEDGER_E_STATE : rc; /* checked just above */
    }
    json_t *result =
        rc != LEDGER_OK
            ? NULL
            : json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s}", "fx_id", t.fx_id, "peer", peer,
                        "pay_currency", pay->currency, "pay_minor", (json_int_t)pay->amount_minor,
                        "receive_currency", receive->currency, "receive_minor",
                        (json_int_t)receive->amount_minor, "rate", t.rate);
    answer_one(n, route, rc, result, &out, peer, t.fx_id, wait_ms, now);
}

/* ---- settlement cycles (PROTOCOL.md 3.11) ----------------------------------------------- */

/* The channel of `peer` for a cycle command, or NULL after replying why not (exit 2). */
static channel_t *cycle_channel(node_t *n, zmq_msg_t *route, const char *peer)
{
    char error[200];
    const config_peer_t *p = config_find_peer_const(n->config, peer);
    if (p == NULL) {
        snprintf(error, sizeof error, "--peer %s: not a peer of this node", peer);
        reply_error(n, route, EXIT_USAGE, error);
        return NULL;
    }
    channel_t *ch = engine_channel(n->engine, (size_t)(p - n->config->peers));
    if (!channel_peer_offers(ch, CHANNEL_FEATURE_CYCLES)) {
        snprintf(error, sizeof error,
                 "%s has not offered settlement cycles (an older program, or not heard from "
                 "since this node started); nothing sent",
                 peer);
        reply_error(n, route, EXIT_USAGE, error);
        return NULL;
    }
    return ch;
}

/* Inside the transaction: propose the next cycle with a peer at our present cut, an operator
 * action on record; the reply follows the commit, or with wait_ms the cycle's end (closed:
 * settled; disputed or refused: rejected). */
static void handle_cycle_close(node_t *n, zmq_msg_t *route, json_t *req, long long uid, int64_t now)
{
    const char *peer = json_str(req, "peer", "");
    json_t *wait = json_object_get(req, "wait_ms");
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    channel_t *ch = cycle_channel(n, route, peer);
    if (ch == NULL) {
        return;
    }
    uint64_t cycle = 0;
    const char *why = NULL;
    ledger_err_t rc = channel_cycle_close(ch, &cycle, &why);
    if (rc == LEDGER_OK && why != NULL) {
        char error[300];
        snprintf(error, sizeof error, "%s; nothing sent", why);
        reply_error(n, route, EXIT_NEGATIVE, error);
        return;
    }
    /* the operator row follows the proposal in the transaction, before the cycle's own row */
    json_t *args = json_pack("{s:I}", "cycle", (json_int_t)cycle);
    if (rc == LEDGER_OK && (args == NULL || !record_operation(n, uid, "cycle_close", peer, args))) {
        rc = LEDGER_E_STORAGE;
    }
    char key[32];
    snprintf(key, sizeof key, "cycle-%llu", (unsigned long long)cycle);
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    json_t *result = rc != LEDGER_OK ? NULL
                                     : json_pack("{s:s, s:I, s:s}", "cycle_id", key, "cycle",
                                                 (json_int_t)cycle, "peer", peer);
    answer_one(n, route, rc, result, &out, peer, key, wait_ms, now);
}

/* Inside the transaction: propose a multilateral set-off (PROTOCOL.md 3.12), an operator action
 * on record. The ring is turned so this node is first; each member's key is the one its channel
 * holds (a neighbour) or its card's. The reply follows the commit, or with wait_ms the decision
 * (committed: settled; aborted: rejected). */
static void handle_setoff_propose(node_t *n, zmq_msg_t *route, json_t *req, long long uid,
                                  int64_t now)
{
    json_t *ring = json_object_get(req, "ring"), *wait = json_object_get(req, "wait_ms"),
           *amount = json_object_get(req, "amount_minor"),
           *deadline = json_object_get(req, "deadline_ms");
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    json_int_t deadline_ms = json_is_integer(deadline) ? json_integer_value(deadline) : 30000;
    const char *currency = json_str(req, "currency", "");
    size_t count = json_is_array(ring) ? json_array_size(ring) : 0;
    setoff_terms_t t;
    memset(&t, 0, sizeof t);
    char error[300];
    if (count < SETOFF_RING_MIN || count > SETOFF_RING_MAX || currency_find(currency) == NULL ||
        !json_is_integer(amount) || json_integer_value(amount) < 0 ||
        json_integer_value(amount) > CORRIDOR_AMOUNT_MINOR_MAX || deadline_ms < 1000 ||
        deadline_ms > 86400000) {
        reply_error(n, route, EXIT_USAGE,
                    "setoff_propose: a ring of 3 to 8 codes, a currency, an amount, a deadline");
        return;
    }
    int self = -1;
    for (size_t i = 0; i < count; i++) {
        const char *code = json_string_value(json_array_get(ring, i));
        if (code == NULL || node_code_check(code) != VALID_OK) {
            reply_error(n, route, EXIT_USAGE, "setoff_propose: the ring holds a bad node code");
            return;
        }
        self = strcmp(code, n->config->name) == 0 ? (int)i : self;
    }
    if (self < 0) {
        snprintf(error, sizeof error, "--ring: %s is not on the ring", n->config->name);
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    t.n = count;
    channel_t *next = NULL, *prev = NULL;
    for (size_t k = 0; k < count; k++) { /* ring[k] is the given ring's (self + k) */
        const char *code = json_string_value(json_array_get(ring, ((size_t)self + k) % count));
        setoff_member_t *m = &t.ring[k];
        snprintf(m->code, sizeof m->code, "%s", code);
        const uint8_t *key = NULL;
        if (k == 0) {
            key = n->identity->sign_public;
        } else {
            const config_peer_t *p = config_find_peer_const(n->config, code);
            channel_t *ch =
                p != NULL ? engine_channel(n->engine, (size_t)(p - n->config->peers)) : NULL;
            if (ch != NULL) { /* the key it signs with now (announced since its card, or not) */
                key = channel_peer_sign_public(ch);
            }
            if (ch != NULL && (k == 1 || k == count - 1)) {
                *(k == 1 ? &next : &prev) = ch;
            }
        }
        for (size_t j = 0; j < k; j++) {
            key = strcmp(t.ring[j].code, code) == 0 ? NULL : key;
        }
        if (key == NULL) {
            snprintf(error, sizeof error,
                     "--ring: %s appears twice, or this node has no card for it (a neighbour "
                     "must be a peer); nothing sent",
                     code);
            reply_error(n, route, EXIT_USAGE, error);
            return;
        }
        memcpy(m->signing_key, key, sizeof m->signing_key);
        identity_key_id(key, m->key_id);
    }
    if (!channel_peer_offers(next, CHANNEL_FEATURE_SETOFF) ||
        !channel_peer_offers(prev, CHANNEL_FEATURE_SETOFF)) {
        snprintf(error, sizeof error,
                 "%s or %s has not offered set-offs (an older program, or not heard from since "
                 "this node started); nothing sent",
                 t.ring[1].code, t.ring[count - 1].code);
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    uetr_generate(t.setoff_id);
    snprintf(t.currency, sizeof t.currency, "%s", currency);
    t.amount_minor = json_integer_value(amount);
    t.created_unix_ms = operation_wall_ms();
    t.deadline_unix_ms = t.created_unix_ms + deadline_ms;
    const char *why = NULL;
    ledger_err_t rc = channel_setoff_propose(next, prev, &t, &why);
    if (rc == LEDGER_OK && why != NULL) {
        snprintf(error, sizeof error, "this node's books refuse it: %s; nothing sent", why);
        reply_error(n, route, EXIT_NEGATIVE, error);
        return;
    }
    json_t *members = json_array();
    for (size_t k = 0; k < count; k++) {
        json_array_append_new(members, json_string(t.ring[k].code));
    }
    json_t *args = json_pack("{s:s, s:o, s:s, s:I}", "setoff_id", t.setoff_id, "ring", members,
                             "currency", t.currency, "amount_minor", (json_int_t)t.amount_minor);
    if (rc == LEDGER_OK && (args == NULL || !record_operation(n, uid, "setoff", "", args))) {
        rc = LEDGER_E_STORAGE;
    }
    char key[8 + CORRIDOR_UETR_LEN + 1];
    snprintf(key, sizeof key, "setoff-%s", t.setoff_id);
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    json_t *result = rc != LEDGER_OK
                         ? NULL
                         : json_pack("{s:s, s:s, s:I}", "setoff_id", t.setoff_id, "currency",
                                     t.currency, "amount_minor", (json_int_t)t.amount_minor);
    answer_one(n, route, rc, result, &out, CHANNEL_SETOFF_WAITER, key, wait_ms, now);
}

/* The currencies this node owes in closed cycle `cycle` with `peer` and has not settled. */
static size_t owed_currencies(node_t *n, const char *peer, uint64_t cycle,
                              char currencies[CYCLE_CURRENCIES_MAX][CORRIDOR_CURRENCY_LEN + 1])
{
    ledger_cycle_t c;
    bool found = false;
    size_t count = 0;
    cycle_statement_t st;
    if (ledger_cycle_get(n->ledger, peer, cycle, &c, &found) != LEDGER_OK || !found) {
        return 0;
    }
    bool first = cycle_self_first(n->config->name, peer);
    if (c.state == CYCLE_CLOSED && cycle_statement_decode(c.statement, c.statement_len, &st)) {
        for (size_t i = 0; i < st.n_currencies; i++) {
            int64_t paid, received, net;
            bool open = false;
            cycle_currency_view(&st.currencies[i], first, &paid, &received, &net);
            if (net < 0 &&
                ledger_net_open(n->ledger, peer, cycle, st.currencies[i].currency, &open) ==
                    LEDGER_OK &&
                !open) {
                snprintf(currencies[count++], CORRIDOR_CURRENCY_LEN + 1, "%s",
                         st.currencies[i].currency);
            }
        }
    }
    ledger_cycle_release(&c);
    return count;
}

/* Inside the transaction: the net debtor of a closed cycle says it paid outside the channel
 * (PROTOCOL.md 3.11.3), one pacs.009 per currency, an operator action on record. Every currency
 * is checked before any is sent; with wait_ms the reply waits for the creditor's answers. */
static void handle_cycle_settle(node_t *n, zmq_msg_t *route, json_t *req, long long uid,
                                int64_t now)
{
    const char *peer = json_str(req, "peer", "");
    json_t *wait = json_object_get(req, "wait_ms"), *cycle_v = json_object_get(req, "cycle"),
           *asked = json_object_get(req, "currencies");
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    net_settlement_t base;
    memset(&base, 0, sizeof base);
    base.cycle = json_is_integer(cycle_v) && json_integer_value(cycle_v) > 0
                     ? (uint64_t)json_integer_value(cycle_v)
                     : 0;
    const char *reference = json_str(req, "reference", ""),
               *method = json_str(req, "method", "INDA"),
               *clearing = json_str(req, "clearing_system", "");
    /* a text that does not fit is refused, never cut: a shortened reference would pass the checks
     */
    if (strlen(reference) >= sizeof base.reference || strlen(method) >= sizeof base.method ||
        strlen(clearing) >= sizeof base.clearing_system) {
        reply_error(n, route, EXIT_USAGE,
                    "cycle_settle: reference and clearing system at most 35 bytes, method 4");
        return;
    }
    snprintf(base.reference, sizeof base.reference, "%s", reference);
    snprintf(base.method, sizeof base.method, "%s", method);
    snprintf(base.clearing_system, sizeof base.clearing_system, "%s", clearing);
    base.created_unix_ms = operation_wall_ms();
    channel_t *ch = cycle_channel(n, route, peer);
    if (ch == NULL) {
        return;
    }
    char currencies[CYCLE_CURRENCIES_MAX][CORRIDOR_CURRENCY_LEN + 1];
    size_t count = 0, i;
    json_t *item;
    if (json_array_size(asked) > CYCLE_CURRENCIES_MAX || base.cycle == 0 ||
        base.cycle > CORRIDOR_SEQUENCE_MAX) {
        reply_error(n, route, EXIT_USAGE, "cycle_settle: a cycle number and at most 64 currencies");
        return;
    }
    json_array_foreach(asked, i, item)
    {
        const char *ccy = json_is_string(item) ? json_string_value(item) : "";
        if (currency_find(ccy) == NULL) { /* "RUBX" must not become RUB */
            reply_error(n, route, EXIT_USAGE, "cycle_settle: currencies are ISO 4217 codes");
            return;
        }
        snprintf(currencies[count++], CORRIDOR_CURRENCY_LEN + 1, "%s", ccy);
    }
    if (count == 0 && (count = owed_currencies(n, peer, base.cycle, currencies)) == 0) {
        reply_error(n, route, EXIT_USAGE,
                    "this node owes nothing unsettled in that cycle (is it closed?); nothing sent");
        return;
    }
    char error[300];
    ledger_err_t rc = LEDGER_OK;
    for (i = 0; i < count && rc == LEDGER_OK; i++) { /* all checked before any is sent */
        net_settlement_t probe = base;
        const char *why = NULL;
        snprintf(probe.currency, sizeof probe.currency, "%s", currencies[i]);
        uetr_generate(probe.settlement_id);
        rc = channel_cycle_settle_check(ch, &probe, &why);
        if (rc == LEDGER_OK && why != NULL) {
            snprintf(error, sizeof error, "%s: %s; nothing sent", currencies[i], why);
            reply_error(n, route, EXIT_USAGE, error);
            return;
        }
    }
    json_t *args = json_pack("{s:I, s:s, s:s, s:O}", "cycle", (json_int_t)base.cycle, "reference",
                             base.reference, "method", base.method, "currencies",
                             asked != NULL ? asked : json_array());
    if (rc == LEDGER_OK &&
        (args == NULL || !record_operation(n, uid, "cycle_settle", peer, args))) {
        rc = LEDGER_E_STORAGE;
    }
    waiter_t *w = rc == LEDGER_OK ? calloc(1, sizeof *w) : NULL;
    if (w == NULL || (w->results = json_array()) == NULL ||
        (wait_ms > 0 && (w->waiting = calloc(count, sizeof *w->waiting)) == NULL)) {
        waiter_free(w);
        reply_error(n, route, EXIT_INTERNAL,
                    rc != LEDGER_OK ? ledger_last_error(n->ledger) : "out of memory");
        return;
    }
    zmq_msg_init(&w->route);
    zmq_msg_copy(&w->route, route);
    w->deadline_ms = now + (wait_ms < 0 ? 0 : wait_ms > WAIT_MAX_MS ? WAIT_MAX_MS : wait_ms);
    for (i = 0; i < count; i++) {
        net_settlement_t s = base;
        const char *why = NULL;
        snprintf(s.currency, sizeof s.currency, "%s", currencies[i]);
        uetr_generate(s.settlement_id);
        json_t *result = json_object();
        json_array_append_new(w->results, result);
        rc = channel_cycle_settle(ch, &s, &why);
        if (rc != LEDGER_OK || why != NULL) {
            json_object_set_new(result, "error",
                                json_string(why != NULL ? why : ledger_last_error(n->ledger)));
            json_object_set_new(result, "exit", json_integer(EXIT_INTERNAL));
            w->failed = rc == LEDGER_E_STORAGE || rc == LEDGER_E_STOPPED;
            continue;
        }
        json_object_set_new(result, "settlement_id", json_string(s.settlement_id));
        json_object_set_new(result, "peer", json_string(peer));
        json_object_set_new(result, "cycle", json_integer((json_int_t)s.cycle));
        json_object_set_new(result, "currency", json_string(s.currency));
        json_object_set_new(result, "amount_minor", json_integer(s.amount_minor));
        json_object_set_new(result, "status", json_string("pending"));
        json_object_set_new(result, "reason", json_null());
        if (wait_ms > 0) {
            json_object_set_new(result, "waiting", json_true());
            waiting_key(w->waiting[w->open].key, peer, s.settlement_id);
            w->waiting[w->open++].result = result;
        }
    }
    if (w->open > 1) {
        qsort(w->waiting, w->open, sizeof *w->waiting, waiting_cmp);
    }
    w->next = n->waiters;
    n->waiters = w;
}

/* The peer whose net settlement we hold, undecided, is `id` (one only), or SIZE_MAX. Ids are
 * unique per channel (a NetSettlement naming a payment's UETR is refused), so a held payment and
 * a held net settlement of one peer never share one. */
static size_t find_net(node_t *n, const char *peer, const char *id, ledger_net_t *net)
{
    size_t index = SIZE_MAX, found = 0;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        const char *name = n->config->peers[i].card.name;
        bool here = false;
        if ((peer == NULL || strcmp(peer, name) == 0) &&
            ledger_net_find(n->ledger, name, id, net, &here) == LEDGER_OK && here && !net->we_owe &&
            net->status == STATUS_HELD) {
            found++;
            index = i;
        }
    }
    return found == 1 ? index : SIZE_MAX;
}

/* Inside the transaction: the payer asks a pending payment back (PROTOCOL.md 3.8.4), an operator
 * action on record; the reply follows the commit, or with wait_ms the payment's final status. */
static void handle_cancel(node_t *n, zmq_msg_t *route, json_t *req, long long uid, int64_t now)
{
    const char *uetr = json_str(req, "uetr", "");
    const char *reason = json_str(req, "reason", "");
    json_t *wait = json_object_get(req, "wait_ms");
    json_int_t wait_ms = json_is_integer(wait) ? json_integer_value(wait) : 0;
    if (uetr_check(uetr) != VALID_OK || !channel_cancel_reason_valid(reason)) {
        reply_error(n, route, EXIT_USAGE,
                    "cancel: uetr a UETR, reason one of CUST, DUPL, FRAD, TECH, UPAY, AM09, AC03");
        return;
    }
    settlement_t s;
    ledger_outcome_t out;
    char error[200];
    size_t index = find_payment(n, json_str(req, "peer", NULL), uetr, DIRECTION_OUT, &s, &out,
                                error, sizeof error);
    if (index == SIZE_MAX) {
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    const char *peer = n->config->peers[index].card.name;
    channel_t *ch = engine_channel(n->engine, index);
    if (out.status == STATUS_PENDING && out.cancel_id[0] == '\0' &&
        !channel_peer_offers(ch, CHANNEL_FEATURE_HOLDS)) {
        snprintf(error, sizeof error,
                 "%s has not offered cancellations (an older program, or not heard from since "
                 "this node started); nothing sent",
                 peer);
        reply_error(n, route, EXIT_USAGE, error);
        return;
    }
    char id[CORRIDOR_UETR_LEN + 1] = "";
    ledger_err_t rc = LEDGER_E_STATE;
    if (out.status == STATUS_PENDING && out.cancel_id[0] == '\0') {
        json_t *args = json_pack("{s:s, s:s}", "uetr", uetr, "reason", reason);
        bool recorded = args != NULL && record_operation(n, uid, "cancel", peer, args);
        rc = recorded ? channel_cancel(ch, uetr, reason, id, &out) : LEDGER_E_STORAGE;
    } else {
        snprintf(id, sizeof id, "%s", out.cancel_id); /* asked already, or final: as it stands */
        rc = LEDGER_OK;
    }
    json_t *result = rc != LEDGER_OK
                         ? NULL
                         : json_pack("{s:s, s:s, s:o}", "uetr", uetr, "peer", peer,
                                     "cancellation_id", id[0] ? json_string(id) : json_null());
    answer_one(n, route, rc, result, &out, peer, uetr, wait_ms, now);
}

static void handle_status(node_t *n, zmq_msg_t *route)
{
    json_t *peers = json_array();
    bool rotation_pending = false; /* a channel has not acknowledged our last new key */
    for (size_t i = 0; i < n->config->peers_count; i++) {
        channel_stats_t st = channel_stats(engine_channel(n->engine, i));
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
            {"unentitled", st.unentitled},
            {"dropped", st.dropped},
            {"rewinds_refused", st.rewinds_refused},
            {"held_bytes", st.held_bytes},
            {"hold_full", st.hold_full},
            {"backpressure", st.backpressure},
            {"statement_requests_refused", engine_requests_refused(n->engine, i)},
            {"wire_version", channel_wire_version(engine_channel(n->engine, i))},
        };
        for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
            json_object_set_new(peer, counters[k].name,
                                json_integer((json_int_t)counters[k].value));
        }
        bool acked = channel_rotation_acked(engine_channel(n->engine, i));
        rotation_pending = rotation_pending || !acked;
        json_object_set_new(peer, "rotation_acked", json_boolean(acked));
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
    json_t *transport = json_object_get(doc, "transport");
    json_object_set_new(transport, "zap_previous", json_integer((json_int_t)ts.zap_previous));
    json_object_set_new(transport, "reconnects", json_integer((json_int_t)ts.reconnects));
    json_object_set_new(transport, "rebinds", json_integer((json_int_t)ts.rebinds));
    char key_hex[KEY_ID_HEX_SIZE];
    key_id_hex(n->identity->key_id, key_hex);
    json_object_set_new(doc, "key_id", json_string(key_hex));
    json_object_set_new(doc, "rotation_pending", json_boolean(rotation_pending));
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
        } else if (strcmp(cmd, "cancel") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_cancel(n, &route, req, uid, now);
            }
        } else if (strcmp(cmd, "fx") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_fx(n, &route, req, uid, now);
            }
        } else if (strcmp(cmd, "return") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_return(n, &route, req, uid, now);
            }
        } else if (strcmp(cmd, "cycle_close") == 0 || strcmp(cmd, "cycle_settle") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else if (strcmp(cmd, "cycle_close") == 0) {
                handle_cycle_close(n, &route, req, uid, now);
            } else {
                handle_cycle_settle(n, &route, req, uid, now);
            }
        } else if (strcmp(cmd, "setoff_propose") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_setoff_propose(n, &route, req, uid, now);
            }
        } else if (strcmp(cmd, "review") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_review(n, &route, req, uid, now);
            }
        } else if (strcmp(cmd, "rotate") == 0) {
            if (ledger_stopped(n->ledger)) {
                reply_error(n, &route, EXIT_INTERNAL, ledger_last_error(n->ledger));
            } else {
                handle_rotate(n, &route, req, uid);
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

/* Reads up to INBOUND_PER_TURN frames, opens them on all cores, and delivers them in the
 * order they arrived. */
static void receive_frames(node_t *n)
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
        engine_deliver(n->engine, &in->frames[i]);
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

static bool control_pending(node_t *n)
{
    int events = 0;
    size_t size = sizeof events;
    return zmq_getsockopt(n->control, ZMQ_EVENTS, &events, &size) == 0 &&
           (events & ZMQ_POLLIN) != 0;
}

static int send_to_socket(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                          size_t len);

/* engine_transaction's work: the control requests of this turn (sends go into it). */
static void take_control(void *arg)
{
    node_t *n = arg;
    if (screening_has_verdicts(n->screening) &&
        screening_apply(n->screening, n->engine, n->config, n->ledger) != LEDGER_OK) {
        return; /* the ledger stopped: the transaction rolls back */
    }
    read_control(n, n->turn_ms);
}

/* engine_ctx_t.screen and on_held: the node's screening (screening.c). */
static channel_screen_t screen_payment(void *arg, const settlement_t *s)
{
    node_t *n = arg;
    return screening_check(n->screening, s);
}

static void payment_held(void *arg, const char *peer, const char *uetr)
{
    node_t *n = arg;
    screening_on_held(n->screening, peer, uetr);
}

/* ---- the CURVE transport keys (PROTOCOL.md 2.16) --------------------------------------------- */

/* Tells the transport what the channels and the engine want of it now: which of each peer's
 * CURVE keys to admit (the old one until its overlap ends, on the ZAP's monotonic clock), whom
 * our outbound sockets connect as and which server key they pin, and which key our inbound
 * socket serves. Only what changed is redone: each change is a reconnect. */
static void steer_transport(node_t *n)
{
    int64_t now = now_ms(), wall = operation_wall_ms();
    char err[256];
    for (size_t i = 0; i < n->config->peers_count; i++) {
        const char *peer = n->config->peers[i].card.name;
        steered_t *was = &n->steered[i];
        channel_transport_t want;
        channel_transport(engine_channel(n->engine, i), &want);
        const char *previous = want.admit_previous != NULL ? want.admit_previous : "";
        if (strcmp(was->admit_current, want.admit_current) != 0 ||
            strcmp(was->admit_previous, previous) != 0 ||
            was->previous_until_wall_ms != want.previous_until_wall_ms) {
            int64_t until =
                want.previous_until_wall_ms == 0 ? 0 : now + (want.previous_until_wall_ms - wall);
            transport_err_t rc = transport_peer_admit(n->transport, i, want.admit_current,
                                                      want.admit_previous, until > 0 ? until : 1);
            if (rc != TRANSPORT_OK) { /* said once: tried again when the wish changes */
                log_event(n->config->name, peer, NULL,
                          "cannot admit its CURVE keys (%.8s..., %.8s...): %s", want.admit_current,
                          previous, transport_strerror(rc));
            }
            snprintf(was->admit_current, sizeof was->admit_current, "%s", want.admit_current);
            snprintf(was->admit_previous, sizeof was->admit_previous, "%s", previous);
            was->previous_until_wall_ms = want.previous_until_wall_ms;
        }
        if (strcmp(was->pin, want.pin) != 0 ||
            strcmp(was->client, want.client->curve_public) != 0) {
            transport_err_t rc =
                transport_peer_reconnect(n->transport, i, want.client, want.pin, err, sizeof err);
            if (rc != TRANSPORT_OK) { /* said once: tried again when the wish changes */
                log_event(n->config->name, peer, NULL, "cannot reconnect: %s: %s",
                          transport_strerror(rc), err);
            } else {
                log_event(n->config->name, peer, NULL,
                          "reconnected: as CURVE key %.8s..., to its key %.8s...",
                          want.client->curve_public, want.pin);
            }
            snprintf(was->pin, sizeof was->pin, "%s", want.pin);
            snprintf(was->client, sizeof was->client, "%s", want.client->curve_public);
        }
    }
    const identity_t *server = engine_curve_server(n->engine);
    bool change = sodium_memcmp(n->serving, server->key_id, sizeof n->serving) != 0;
    if ((change && !n->rebind_failed) || (n->rebind_failed && now >= n->rebind_retry_ms)) {
        /* frames still queued on the old socket are lost: their senders send them again */
        transport_err_t rc = transport_rebind(n->transport, server, err, sizeof err);
        n->rebind_failed = rc != TRANSPORT_OK;
        if (rc != TRANSPORT_OK) { /* a rebind may wait seconds: tried again after a pause */
            n->rebind_backoff_ms = n->rebind_backoff_ms == 0 ? REBIND_BACKOFF_MIN_MS
                                   : n->rebind_backoff_ms * 2 > REBIND_BACKOFF_MAX_MS
                                       ? REBIND_BACKOFF_MAX_MS
                                       : n->rebind_backoff_ms * 2;
            n->rebind_retry_ms = now + n->rebind_backoff_ms;
            log_event(n->config->name, NULL, NULL,
                      "cannot serve CURVE key %.8s...: %s: %s (tried again in %lld s)",
                      server->curve_public, transport_strerror(rc), err,
                      (long long)n->rebind_backoff_ms / 1000);
        } else {
            n->rebind_backoff_ms = 0;
            memcpy(n->serving, server->key_id, sizeof n->serving);
            log_event(n->config->name, NULL, NULL, "inbound socket serves CURVE key %.8s...%s",
                      server->curve_public,
                      server == n->identity ? "" : " (of our keys before the last rotation)");
        }
    }
}

static void turn(node_t *n)
{
    int64_t now = now_ms();
    n->turn_ms = now;
    engine_begin(n->engine, now, operation_wall_ms());
    transport_handle_zap(n->transport, now);
    receive_frames(n);
    screening_collect(n->screening, now);
    bool stopped = ledger_stopped(n->ledger);
    bool committed = true;
    if (!stopped && (engine_has_work(n->engine) || control_pending(n) ||
                     screening_has_verdicts(n->screening))) {
        ledger_err_t rc = engine_transaction(n->engine, take_control, n);
        committed = rc == LEDGER_OK;
        screening_after_commit(n->screening, committed, n->ledger, now);
        finish_rotation(n, committed);
        for (waiter_t *w = n->waiters; w != NULL; w = w->next) {
            w->committed = true;
            w->failed = w->failed || rc != LEDGER_OK;
        }
    } else if (stopped) {
        read_control(n, now); /* status answers; sends are refused while stopped */
    }
    engine_after(n->engine, committed && !stopped);
    steer_transport(n);
    if (n->faults != NULL) {
        faults_flush(n->faults, now, send_to_socket, n);
    }
    flush_waiters(n, now);
    forget_previous_file(n);
    fflush(stderr); /* log lines leave once per turn, whole */
}

static long poll_timeout(node_t *n)
{
    int64_t now = now_ms();
    int64_t next = engine_next_deadline(n->engine, now + POLL_MAX_MS);
    for (waiter_t *w = n->waiters; w != NULL; w = w->next) {
        next = w->deadline_ms < next ? w->deadline_ms : next;
    }
    int64_t held = faults_next_deadline(n->faults);
    next = held < next ? held : next;
    int64_t screened = screening_next_deadline(n->screening);
    next = screened < next ? screened : next;
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
    if (rc != 0 && errno == EMSGSIZE &&
        (n->oversize_logged_ms == 0 || n->turn_ms >= n->oversize_logged_ms + 60000)) {
        n->oversize_logged_ms = n->turn_ms; /* retried every few ms: said once a minute */
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
    n->lock_fd = control_lock_home(CONTROL_LOCK_FILE);
    if (n->lock_fd < 0 && errno == EWOULDBLOCK) {
        fprintf(stderr, "corridor run: another node is already running in %s\n", n->home);
        return EXIT_USAGE;
    }
    if (n->lock_fd < 0) {
        fprintf(stderr, "corridor run: cannot lock %s/%s: %s\n", n->home, CONTROL_LOCK_FILE,
                strerror(errno));
        return EXIT_INTERNAL;
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

static int load_key_file(node_t *n, const char *file, identity_t **out)
{
    id_err_t id_rc = identity_load(file, out);
    if (id_rc != ID_OK) {
        fprintf(stderr, "corridor run: %s/%s: %s%s%s%s\n", n->home, file, id_strerror(id_rc),
                id_rc == ID_E_PERMISSIONS ? " (fix with: chmod 600 " : "",
                id_rc == ID_E_PERMISSIONS ? file : "", id_rc == ID_E_PERMISSIONS ? ")" : "");
        return id_rc == ID_E_PERMISSIONS ? EXIT_USAGE : EXIT_INTERNAL;
    }
    return EXIT_OK;
}

typedef struct {
    const uint8_t *key_id;
    bool found;
    bool replaced; /* it is an operator's replacement (`key replace`), not a rotation */
} open_key_probe_t;

/* ledger_keys' callback: whether `key_id` is our open (current) key on some channel. */
static void find_open_ours(const key_record_t *k, void *arg)
{
    open_key_probe_t *probe = arg;
    if (k->side == KEY_SIDE_OURS && k->last_seq == 0 &&
        sodium_memcmp(k->key_id, probe->key_id, IDENTITY_KEY_ID_BYTES) == 0) {
        probe->found = true;
        probe->replaced |= strcmp(k->source, "replaced") == 0;
    }
}

/* A node.key.next at start: a `key rotate` or `key replace` stopped between its commit and
 * its renames (the ledger records that key as our open one: the renames are finished), or
 * before its commit (the file is removed). */
static int settle_key_files(node_t *n)
{
    if (access(IDENTITY_KEY_FILE_NEXT, F_OK) != 0) {
        return EXIT_OK;
    }
    identity_t *next = NULL, *current = NULL;
    int rc = load_key_file(n, IDENTITY_KEY_FILE_NEXT, &next);
    if (rc == EXIT_OK) {
        rc = load_key_file(n, IDENTITY_KEY_FILE, &current);
    }
    if (rc != EXIT_OK) {
        identity_destroy(&next);
        return rc;
    }
    char hex[KEY_ID_HEX_SIZE], err[512];
    key_id_hex(next->key_id, hex);
    bool same_key = sodium_memcmp(current->key_id, next->key_id, IDENTITY_KEY_ID_BYTES) == 0;
    open_key_probe_t probe = {next->key_id, false, false};
    if (ledger_keys(n->ledger, NULL, find_open_ours, &probe) != LEDGER_OK) {
        fprintf(stderr, "corridor run: %s/%s: cannot read the key history: %s\n", n->home,
                LEDGER_FILE, ledger_last_error(n->ledger));
        rc = EXIT_INTERNAL;
    } else if (!probe.found || same_key) {
        if ((unlink(IDENTITY_KEY_FILE_NEXT) != 0 && errno != ENOENT) || fs_sync_dir(".") != 0) {
            fprintf(stderr, "corridor run: %s/%s: cannot remove it: %s\n", n->home,
                    IDENTITY_KEY_FILE_NEXT, strerror(errno));
            rc = EXIT_INTERNAL;
        } else {
            log_event(n->config->name, NULL, NULL, "removed %s (key %s): %s",
                      IDENTITY_KEY_FILE_NEXT, hex,
                      same_key ? "a copy of node.key" : "its rotation never committed");
        }
    } else if (probe.replaced) { /* the old keys are stolen: none of them is kept */
        if (identity_files_replace(".") != ID_OK) {
            fprintf(stderr, "corridor run: %s: cannot move %s to %s: %s\n", n->home,
                    IDENTITY_KEY_FILE_NEXT, IDENTITY_KEY_FILE, strerror(errno));
            rc = EXIT_INTERNAL;
        } else {
            log_event(n->config->name, NULL, NULL,
                      "finished an interrupted key replacement: %s (key %s, the ledger's) is "
                      "now %s; the keys before it are deleted",
                      IDENTITY_KEY_FILE_NEXT, hex, IDENTITY_KEY_FILE);
        }
    } else if (!promote_key_files(current, err, sizeof err)) {
        fprintf(stderr, "corridor run: %s: %s\n", n->home, err);
        rc = EXIT_INTERNAL;
    } else {
        log_event(n->config->name, NULL, NULL,
                  "finished an interrupted key rotation: %s (key %s, the ledger's) is now %s, "
                  "the key before it %s",
                  IDENTITY_KEY_FILE_NEXT, hex, IDENTITY_KEY_FILE, IDENTITY_KEY_FILE_PREV);
    }
    identity_destroy(&next);
    identity_destroy(&current);
    return rc;
}

static int open_books(node_t *n)
{
    char err[512];
    if (config_load(CONFIG_FILE, &n->config, err, sizeof err) != 0) {
        fprintf(stderr, "corridor run: %s/%s\n", n->home, err);
        return EXIT_USAGE; /* a malformed config is bad input */
    }
    if (ledger_open(LEDGER_FILE, n->config->name, LEDGER_READ_WRITE, NULL, &n->ledger, err,
                    sizeof err) != LEDGER_OK ||
        ledger_open(LEDGER_FILE, n->config->name, LEDGER_READ_ONLY, NULL, &n->reader, err,
                    sizeof err) != LEDGER_OK) {
        fprintf(stderr, "corridor run: %s/%s: %s\n", n->home, LEDGER_FILE, err);
        return EXIT_INTERNAL;
    }
    if (screening_open(n->config, &n->screening, err, sizeof err) != 0) {
        fprintf(stderr, "corridor run: %s: %s\n", n->home, err);
        return EXIT_USAGE; /* a list that cannot be read is bad input */
    }
    int rc = settle_key_files(n);
    if (rc != EXIT_OK || (rc = load_key_file(n, IDENTITY_KEY_FILE, &n->identity)) != EXIT_OK) {
        return rc;
    }
    if (access(IDENTITY_KEY_FILE_PREV, F_OK) == 0) { /* a rotation not acknowledged everywhere */
        if ((rc = load_key_file(n, IDENTITY_KEY_FILE_PREV, &n->previous)) != EXIT_OK) {
            return rc;
        }
        n->previous_on_disk = true;
        if (sodium_memcmp(n->previous->key_id, n->identity->key_id, IDENTITY_KEY_ID_BYTES) == 0) {
            identity_destroy(&n->previous); /* a copy of node.key: nothing before it */
        }
    }
    return EXIT_OK;
}

static int open_network(node_t *n)
{
    size_t count = n->config->peers_count;
    n->keys = sodium_malloc((count + 1) * sizeof *n->keys);
    n->routes = calloc(count + 1, sizeof *n->routes);
    n->routed = calloc(count + 1, sizeof *n->routed);
    n->steered = calloc(count + 1, sizeof *n->steered);
    transport_peer_t *peers = calloc(count + 1, sizeof *peers);
    int rc = EXIT_INTERNAL;
    if (n->keys == NULL || n->routes == NULL || n->routed == NULL || n->steered == NULL ||
        peers == NULL) {
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
        steered_t *st = &n->steered[i]; /* what transport_new does; steer_transport goes on */
        snprintf(st->admit_current, sizeof st->admit_current, "%s", card->curve_public);
        snprintf(st->pin, sizeof st->pin, "%s", card->curve_public);
        snprintf(st->client, sizeof st->client, "%s", n->identity->curve_public);
    }
    memcpy(n->serving, n->identity->key_id, sizeof n->serving);
    char err[512];
    n->zmq = zmq_ctx_new();
    if (n->zmq == NULL) {
        fprintf(stderr, "corridor run: cannot start ZeroMQ\n");
        goto cleanup;
    }
    if (transport_new(n->zmq, n->identity, n->config->listen, n->config->listen_stream, peers,
                      count, &n->transport, err, sizeof err) != TRANSPORT_OK) {
        fprintf(stderr, "corridor run: %s\n", err);
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
    engine_ctx_t ctx = {
        .self = n->identity,
        .self_previous = n->previous,
        .config = n->config,
        .ledger = n->ledger,
        .reader = n->reader,
        .keys = n->keys,
        .send = send_frame,
        .on_final = on_final,
        .on_report = on_report,
        .screen = screen_payment,
        .on_held = payment_held,
        .arg = n,
        .incarnation = (uint64_t)operation_wall_ms() * 1000,
    };
    if ((n->engine = engine_new(&ctx, now_ms(), operation_wall_ms())) == NULL) {
        fprintf(stderr, "corridor run: cannot open the channels: %s\n",
                ledger_last_error(n->ledger));
        goto cleanup;
    }
    steer_transport(n); /* the key history's CURVE keys: mid-rotation, not the cards' */
    screening_resume(n->screening, n->ledger, now_ms());
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
    engine_free(&n->engine);
    screening_close(&n->screening);
    free(n->steered);
    n->steered = NULL;
    for (size_t i = 0; n->routed != NULL && i < n->config->peers_count; i++) {
        if (n->routed[i]) {
            zmq_msg_close(&n->routes[i]);
        }
    }
    free(n->routes);
    free(n->routed);
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
    if (n->rotation.pending) { /* cannot be: a turn answers its rotation */
        zmq_msg_close(&n->rotation.route);
        json_decref(n->rotation.announced);
        identity_destroy(&n->rotation.next);
    }
    identity_destroy(&n->identity);
    identity_destroy(&n->previous);
    identity_destroy(&n->abandoned);
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

    zmq_pollitem_t items[3 + SCREENING_POLL_MAX] = {
        {transport_inbound_socket(n.transport), 0, ZMQ_POLLIN, 0},
        {transport_zap_socket(n.transport), 0, ZMQ_POLLIN, 0},
        {n.control, 0, ZMQ_POLLIN, 0},
    };
    while (!stop_requested) {
        items[0].socket = transport_inbound_socket(n.transport); /* another after a rebind */
        /* the screening programs' pipes: their verdicts wake the loop */
        size_t count = 3 + screening_poll_items(n.screening, items + 3, SCREENING_POLL_MAX);
        int ready = zmq_poll(items, (int)count, poll_timeout(&n));
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
