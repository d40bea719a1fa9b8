/*
 * The bad-input catalogue: real `corridor` nodes on loopback fed with hostile messages, hostile
 * connections and hostile local state, each test showing three things:
 *   1. a clear error: a log line on the node, or an exit code and one line on stderr;
 *   2. the node still settles afterwards: `corridor send --wait 30` between two real nodes
 *      exits 0 (both ways);
 *   3. nothing is lost: every node's ledger holds exactly the settlements the test expects
 *      (each UETR once, with its status and ISO reason) and the audit of the homes is clean.
 *
 * A "hostile peer" is this program's own ZeroMQ PUSH client holding a real node's keys (read
 * from its home's node.key): its CURVE keys get it past ZAP, its signing and box keys seal
 * whatever the test wants with envelope_sign/envelope_wrap. Business messages carry a
 * per-direction sequence number, so a hostile client that writes as node X at a sequence X
 * never used makes the receiver's counter run ahead of X's own: when X comes back, the two
 * sides see exactly what a restore from an old backup looks like and mark the channel
 * DIVERGED (proto/PROTOCOL.md 2.9). So:
 *   - replays use the bytes the real node A queued itself (read from A's outbox while A is
 *     stopped): the receiver applies them in step with A;
 *   - messages that do not consume a sequence (far future, forged acknowledgements, forwarded
 *     or misaddressed messages) are sent with A's keys, A running or stopped;
 *   - bad content and bodies of the wrong type, which do consume sequences, come from a third
 *     trusted node C whose keys the client holds and whose own process never runs: the channel
 *     A-B, which the test checks for settling, is untouched by them;
 *   - test_hostile_sequence_desync does what a compromised A's key does to the channel A-B
 *     (a message at A's next sequence while A is down) and shows the divergence and the repair.
 *
 * Local input: malformed config lines, loose key permissions, homes and control sockets of
 * another user (setpriv as nobody), a tampered journal, a full disk (a 2 MiB tmpfs). Cases
 * that need what the machine lacks print "# skipped: ..." and are left out.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "channel.h"
#include "corridor.pb-c.h"
#include "digest.h"
#include "envelope.h"
#include "identity.h"
#include "nodes.h"
#include "statement.h"
#include "transport.h"
#include "validate.h"

#define CURRENCIES "RUB,USD,KZT"

#define UETR_SIZE       (CORRIDOR_UETR_LEN + 1)
#define KEY_CHARS       IDENTITY_CURVE_KEY_CHARS
#define SEND_TIMEOUT_MS 60000
#define QUIESCE_MS      120000
#define WAIT_MS         15000 /* bound for a node to react to one message */
#define SETPRIV         "/usr/bin/setpriv"
#define FAR_AHEAD       100000              /* "far in the future": applied + this */
#define SYNC_SEQ_BASE   (UINT64_C(1) << 40) /* probes: far beyond any real sequence */

/* ---- expected books ---------------------------------------------------------------------- */

/* One settlement a node's ledger must hold, with its final status. */
typedef struct {
    size_t node;   /* index in the cluster */
    char peer[16]; /* the other side of the channel */
    char uetr[UETR_SIZE];
    const char *status; /* "settled", "rejected"... */
    const char *reason; /* ISO reason, NULL when none */
} expect_t;

#define BOOK_MAX 16384
static struct {
    expect_t items[BOOK_MAX];
    size_t count;
} book;

static void book_add(size_t node, const char *peer, const char *uetr, const char *status,
                     const char *reason)
{
    assert_true(book.count < BOOK_MAX);
    expect_t *e = &book.items[book.count++];
    e->node = node;
    snprintf(e->peer, sizeof e->peer, "%.*s", (int)sizeof e->peer - 1, peer);
    snprintf(e->uetr, sizeof e->uetr, "%.*s", (int)sizeof e->uetr - 1, uetr);
    e->status = status;
    e->reason = reason;
}

/* A settlement from node `from` to node `to` that both must show settled. */
static void book_settled(cluster_t *c, size_t from, size_t to, const char *uetr)
{
    book_add(from, c->nodes[to].name, uetr, "settled", NULL);
    book_add(to, c->nodes[from].name, uetr, "settled", NULL);
}

/* Every node of the cluster holds exactly what the book says: each UETR once, with its peer,
 * status and reason, nothing else, and counts that agree. */
static void book_check(cluster_t *c)
{
    for (size_t i = 0; i < c->count; i++) {
        tnode_t *n = &c->nodes[i];
        json_t *l = node_ledger(c, n);
        json_t *index = ledger_index(l, NULL); /* fails on a UETR seen twice */
        size_t expected = 0;
        int64_t tally[3] = {0, 0, 0}; /* settled, rejected, pending */
        for (size_t k = 0; k < book.count; k++) {
            const expect_t *x = &book.items[k];
            if (x->node != i) {
                continue;
            }
            expected++;
            json_t *e = json_object_get(index, x->uetr);
            if (e == NULL) {
                fail_msg("%s has no settlement %s (expected %s)", n->name, x->uetr, x->status);
            }
            const char *peer = json_string_value(json_object_get(e, "peer"));
            const char *status = json_string_value(json_object_get(e, "status"));
            const char *reason = json_string_value(json_object_get(e, "reason"));
            if (peer == NULL || strcmp(peer, x->peer) != 0 || status == NULL ||
                strcmp(status, x->status) != 0 || (x->reason == NULL) != (reason == NULL) ||
                (reason != NULL && strcmp(reason, x->reason) != 0)) {
                fail_msg("%s: %s is %s/%s/%s, expected %s/%s/%s", n->name, x->uetr,
                         peer ? peer : "-", status ? status : "-", reason ? reason : "null",
                         x->peer, x->status, x->reason ? x->reason : "null");
            }
            tally[strcmp(x->status, "settled") == 0    ? 0
                  : strcmp(x->status, "rejected") == 0 ? 1
                                                       : 2]++;
        }
        if (json_object_size(index) != expected) {
            const char *uetr;
            json_t *e;
            json_object_foreach(index, uetr, e)
            {
                bool known = false;
                for (size_t k = 0; k < book.count && !known; k++) {
                    known = book.items[k].node == i && strcmp(book.items[k].uetr, uetr) == 0;
                }
                if (!known) {
                    printf("# %s holds an unexpected settlement %s (%s, %s)\n", n->name, uetr,
                           json_string_value(json_object_get(e, "status")),
                           json_string_value(json_object_get(e, "reason")));
                }
            }
            fail_msg("%s holds %zu settlements, expected %zu", n->name, json_object_size(index),
                     expected);
        }
        assert_int_equal(ledger_count(l, "settled"), tally[0]);
        assert_int_equal(ledger_count(l, "rejected"), tally[1]);
        assert_int_equal(ledger_count(l, "pending"), tally[2]);
        assert_int_equal(ledger_count(l, "returned"), 0);
        json_decref(index);
        json_decref(l);
    }
}

/* ---- the command line ------------------------------------------------------------------------ */

static size_t node_index(const cluster_t *c, const tnode_t *n)
{
    assert_true(n >= c->nodes && n < c->nodes + c->count);
    return (size_t)(n - c->nodes);
}

/* The node still settles: one `send --wait 30` from -> to exits 0 (booked on both sides). */
static void settles(cluster_t *c, tnode_t *from, tnode_t *to)
{
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    cmd_result_t r;
    int rc = node_send(c, from, to, "1.25", "RUB", uetr, "30", &r);
    if (rc != 0) {
        printf("# send --wait 30 %s -> %s exited %d: %s\n", from->name, to->name, rc, r.err);
    }
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    book_settled(c, node_index(c, from), node_index(c, to), uetr);
}

static void settles_both_ways(cluster_t *c, tnode_t *a, tnode_t *b)
{
    settles(c, a, b);
    settles(c, b, a);
}

static void audit_clean(cluster_t *c, tnode_t *const *nodes, size_t count)
{
    cluster_audit_clean(c, nodes, count, 1);
}

/* How most tests end: A and B still settle both ways, every node holds exactly what the book
 * says, both stop cleanly and their audit is clean. */
/* Stops both nodes; their books audit clean; the test passed. */
static void stop_pair_clean(cluster_t *c, tnode_t *a, tnode_t *b)
{
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    audit_clean(c, both, 2);
    c->passed = true;
}

static void ends_settling_and_clean(cluster_t *c, tnode_t *a, tnode_t *b)
{
    settles_both_ways(c, a, b);
    book_check(c);
    stop_pair_clean(c, a, b);
}

/* Whether one log line holds both strings (a UETR and what happened to it). */
static bool log_line_has(const tnode_t *n, const char *first, const char *second)
{
    char *text = nodes_read_file(n->log, NULL);
    bool found = false;
    for (char *line = text; line != NULL && *line != '\0' && !found;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        found = strstr(line, first) != NULL && strstr(line, second) != NULL;
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    return found;
}

/* stderr of a refusal: exactly one line, holding every needle. */
static void expect_one_line(const char *what, const cmd_result_t *r, const char *const *needles)
{
    size_t len = strlen(r->err);
    const char *nl = strchr(r->err, '\n');
    if (len == 0 || nl == NULL || nl != r->err + len - 1) {
        fail_msg("%s: stderr is not one line: '%s'", what, r->err);
    }
    for (size_t i = 0; needles != NULL && needles[i] != NULL; i++) {
        if (strstr(r->err, needles[i]) == NULL) {
            fail_msg("%s: stderr lacks '%s': %s", what, needles[i], r->err);
        }
    }
    printf("# %s: exit %d: %s", what, r->rc, r->err);
}

/* ---- hostile ZeroMQ clients -------------------------------------------------------------------
 */

/* A client connected to a node's inbound socket with another node's real keys. */
typedef struct {
    bool used;
    identity_t *transport;  /* whose CURVE keys the connection presents (ZAP names it) */
    identity_t *author;     /* whose keys sign and box the messages */
    envelope_peer_t target; /* the target node as `author` sees it */
    char server_key[KEY_CHARS + 1];
    char endpoint[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    void *sock;
    uint64_t probes;      /* sync probes sent */
    char author_name[16]; /* the author's node code */
    uint64_t incarnation; /* the stamp of its Hellos (hostile_hello_if_down): one process */
    uint64_t hellos;
} hostile_t;

static int64_t wall_ms(void);

#define HOSTILE_MAX 4
static hostile_t hostiles[HOSTILE_MAX];
static void *zmq_ctx;

static void *zctx(void)
{
    if (zmq_ctx == NULL) {
        zmq_ctx = zmq_ctx_new();
        assert_non_null(zmq_ctx);
    }
    return zmq_ctx;
}

static identity_t *load_keys(const tnode_t *n)
{
    char *path = test_path(n->home, IDENTITY_KEY_FILE);
    identity_t *id = NULL;
    id_err_t rc = identity_load(path, &id);
    if (rc != ID_OK) {
        fail_msg("cannot load %s: %s", path, id_strerror(rc));
    }
    free(path);
    return id;
}

static void node_card(const tnode_t *n, peer_card_t *card)
{
    assert_int_equal(card_parse(n->card, card), CARD_OK);
}

static void node_key_id(const tnode_t *n, uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
{
    peer_card_t card;
    node_card(n, &card);
    identity_key_id(card.sign_public, key_id);
}

static void hostile_connect(hostile_t *h)
{
    assert_null(h->sock);
    void *s = zmq_socket(zctx(), ZMQ_PUSH);
    assert_non_null(s);
    int linger = 2000, timeout = 5000;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, h->server_key, KEY_CHARS), 0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, h->transport->curve_public, KEY_CHARS),
                     0);
    assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, h->transport->curve_secret, KEY_CHARS),
                     0);
    assert_int_equal(zmq_connect(s, h->endpoint), 0);
    h->sock = s;
}

/* Closes the connection; what was sent is flushed first (linger). */
static void hostile_disconnect(hostile_t *h)
{
    if (h->sock != NULL) {
        zmq_close(h->sock);
        h->sock = NULL;
    }
}

/* A client connected to `target` presenting `transport_as`'s CURVE keys and sealing as
 * `author_as`. */
static hostile_t *hostile_open(const tnode_t *transport_as, const tnode_t *author_as,
                               const tnode_t *target)
{
    size_t free_slot = 0;
    while (free_slot < HOSTILE_MAX && hostiles[free_slot].used) {
        free_slot++;
    }
    assert_true(free_slot < HOSTILE_MAX);
    hostile_t *h = &hostiles[free_slot % HOSTILE_MAX];
    memset(h, 0, sizeof *h);
    h->used = true;
    h->transport = load_keys(transport_as);
    h->author = load_keys(author_as);
    snprintf(h->author_name, sizeof h->author_name, "%s", author_as->name);
    h->incarnation = (uint64_t)wall_ms() * 1000;
    peer_card_t card;
    node_card(target, &card);
    assert_int_equal(envelope_peer_init(&h->target, h->author, &card), ENV_OK);
    memcpy(h->server_key, card.curve_public, sizeof h->server_key);
    snprintf(h->endpoint, sizeof h->endpoint, "%s", card.endpoint);
    hostile_connect(h);
    return h;
}

static void hostile_close_all(void)
{
    for (size_t i = 0; i < HOSTILE_MAX; i++) {
        hostile_t *h = &hostiles[i];
        if (h->used) {
            hostile_disconnect(h);
            envelope_peer_wipe(&h->target);
            identity_destroy(&h->transport);
            identity_destroy(&h->author);
            h->used = false;
        }
    }
    if (zmq_ctx != NULL) {
        zmq_ctx_term(zmq_ctx);
        zmq_ctx = NULL;
    }
}

/* Signs a message as the client's author; recipient NULL: the target. *out is malloc'd. */
static uint8_t *hostile_sign(const hostile_t *h, const uint8_t *recipient, msg_type_t type,
                             uint64_t seq, const uint8_t *body, size_t len, size_t *out_len)
{
    uint8_t *signed_msg = NULL;
    assert_int_equal(envelope_sign(h->author, recipient != NULL ? recipient : h->target.key_id,
                                   type, seq, body, len, &signed_msg, out_len),
                     ENV_OK);
    return signed_msg;
}

/* As hostile_sign in format 1, for any sequence: envelope_sign refuses those above 2^62. */
static uint8_t *sign_any_sequence(const hostile_t *h, msg_type_t type, uint64_t seq,
                                  const uint8_t *body, size_t len, size_t *out_len)
{
    Corridor__Inner inner = CORRIDOR__INNER__INIT;
    inner.version = 1;
    inner.author_key_id =
        (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)h->author->key_id};
    inner.recipient_key_id =
        (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)h->target.key_id};
    inner.type = (Corridor__MessageType)type;
    inner.sequence = seq;
    inner.body = (ProtobufCBinaryData){len, (uint8_t *)body};
    size_t inner_len = corridor__inner__get_packed_size(&inner);
    uint8_t *packed = malloc(inner_len);
    assert_non_null(packed);
    corridor__inner__pack(&inner, packed);
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(envelope_domain_sign(false, ENVELOPE_DOMAIN, packed, inner_len,
                                          h->author->sign_secret, sig),
                     0);
    Corridor__SignedMessage sm = CORRIDOR__SIGNED_MESSAGE__INIT;
    sm.inner = (ProtobufCBinaryData){inner_len, packed};
    sm.signature = (ProtobufCBinaryData){sizeof sig, sig};
    *out_len = corridor__signed_message__get_packed_size(&sm);
    uint8_t *out = malloc(*out_len);
    assert_non_null(out);
    corridor__signed_message__pack(&sm, out);
    free(packed);
    return out;
}

/* Boxes signed bytes to the target (random nonce). *out is malloc'd. */
static uint8_t *hostile_wrap(const hostile_t *h, const uint8_t *signed_msg, size_t len, bool dup,
                             size_t *out_len)
{
    uint8_t *wire = NULL;
    assert_int_equal(envelope_wrap(h->author, &h->target, signed_msg, len, dup, &wire, out_len),
                     ENV_OK);
    return wire;
}

static void hostile_send(const hostile_t *h, const uint8_t *wire, size_t len)
{
    int sent = zmq_send(h->sock, wire, len, 0);
    if (sent != (int)len) {
        fail_msg("hostile send of %zu bytes to %s failed: %s", len, h->endpoint,
                 zmq_strerror(zmq_errno()));
    }
}

/* Signs, wraps and sends. */
static void hostile_seal_send(const hostile_t *h, const uint8_t *recipient, msg_type_t type,
                              uint64_t seq, const uint8_t *body, size_t len)
{
    size_t signed_len = 0, wire_len = 0;
    uint8_t *signed_msg = hostile_sign(h, recipient, type, seq, body, len, &signed_len);
    uint8_t *wire = hostile_wrap(h, signed_msg, signed_len, false, &wire_len);
    hostile_send(h, wire, wire_len);
    free(wire);
    free(signed_msg);
}

/* ---- message bodies ----------------------------------------------------------------------- */

typedef struct {
    const char *uetr;
    int64_t amount_minor;
    const char *currency;
    const char *debtor;     /* NULL: a plain name */
    const char *remittance; /* NULL: a plain text */
} body_spec_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A Settlement body with exactly these fields, valid or not. */
static uint8_t *settlement_body(const body_spec_t *spec, size_t *len)
{
    Corridor__Party debtor = CORRIDOR__PARTY__INIT;
    Corridor__Party creditor = CORRIDOR__PARTY__INIT;
    Corridor__Settlement m = CORRIDOR__SETTLEMENT__INIT;
    debtor.name = (char *)(spec->debtor != NULL ? spec->debtor : "Hostile Debtor LLC");
    debtor.account = "40702810900000000001";
    creditor.name = "Creditor JSC";
    creditor.account = "IR062960000000100324200001";
    m.uetr = (char *)spec->uetr;
    m.end_to_end_id = "E2E-HOSTILE-1";
    m.amount_minor = spec->amount_minor;
    m.currency = (char *)spec->currency;
    m.value_date = "2025-01-15";
    m.debtor = &debtor;
    m.creditor = &creditor;
    m.remittance = (char *)(spec->remittance != NULL ? spec->remittance : "invoice 1");
    m.created_unix_ms = wall_ms();
    *len = corridor__settlement__get_packed_size(&m);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    assert_int_equal(corridor__settlement__pack(&m, out), *len);
    return out;
}

static uint8_t *status_report_body(const char *uetr, const char *status, const char *reason,
                                   int64_t position, size_t *len)
{
    Corridor__StatusReport m = CORRIDOR__STATUS_REPORT__INIT;
    m.uetr = (char *)uetr;
    m.status = (char *)status;
    m.reason = (char *)reason;
    m.currency = "RUB";
    m.position_minor = position;
    *len = corridor__status_report__get_packed_size(&m);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    assert_int_equal(corridor__status_report__pack(&m, out), *len);
    return out;
}

static uint8_t *ack_body(uint64_t sequence, uint64_t incarnation, uint64_t counter, size_t *len)
{
    Corridor__Ack m = CORRIDOR__ACK__INIT;
    m.sequence = sequence;
    m.incarnation = incarnation;
    m.counter = counter;
    *len = corridor__ack__get_packed_size(&m);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    assert_int_equal(corridor__ack__pack(&m, out), *len);
    return out;
}

/* Sends a valid Settlement as the client's author at `seq`. */
static void send_settlement(const hostile_t *h, uint64_t seq, const body_spec_t *spec)
{
    size_t len = 0;
    uint8_t *body = settlement_body(spec, &len);
    hostile_seal_send(h, NULL, MSG_SETTLEMENT, seq, body, len);
    free(body);
}

/* A fence: sends a Settlement so far ahead that the target drops it with a log line, and waits
 * for that line. Frames on one connection are handled in order, so everything the client sent
 * before has been handled (and logged) once this returns. */
/* A Hello as the author, consistent with the target's counters, when the target's channel with
 * it is not up: the target applies the author's messages only while up (PROTOCOL.md 2.3), and
 * the real author may be stopped. Send it before the messages: the first Hello of a new
 * incarnation drops what the target held. Nothing when the author is not the target's peer. */
static void hostile_hello_if_down(cluster_t *c, hostile_t *h, tnode_t *target)
{
    json_t *st = node_status(c, target);
    json_t *p = status_peer(st, h->author_name);
    const char *state = json_string_value(json_object_get(p, "state"));
    if (p != NULL && state != NULL && strcmp(state, "up") != 0) {
        uint32_t versions[] = {1, 2};
        Corridor__Hello hello = CORRIDOR__HELLO__INIT;
        hello.sent_sequence = (uint64_t)json_integer_value(json_object_get(p, "received_seq"));
        hello.applied_sequence = (uint64_t)json_integer_value(json_object_get(p, "acked_seq"));
        hello.acked_sequence = hello.sent_sequence;
        hello.incarnation = h->incarnation;
        hello.counter = ++h->hellos;
        hello.n_versions = 2;
        hello.versions = versions;
        uint8_t buf[128];
        assert_true(corridor__hello__get_packed_size(&hello) <= sizeof buf);
        size_t len = corridor__hello__pack(&hello, buf);
        hostile_seal_send(h, NULL, MSG_HELLO, 0, buf, len);
    }
    json_decref(st);
}

static void hostile_sync(cluster_t *c, hostile_t *h, tnode_t *target)
{
    hostile_hello_if_down(c, h, target);
    size_t before = node_log_count(target, "too far ahead");
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    body_spec_t spec = {uetr, 100, "RUB", NULL, NULL};
    send_settlement(h, SYNC_SEQ_BASE + ++h->probes, &spec);
    node_wait_log(target, "too far ahead", before + 1, WAIT_MS);
}

/* ---- other processes ------------------------------------------------------------------------ */

/* `corridor ARGS...` as the user nobody (setpriv), output captured. */
static int run_as_nobody(cluster_t *c, cmd_result_t *r, const char *const *args)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = SETPRIV;
    argv[n++] = "--reuid=nobody";
    argv[n++] = "--regid=nogroup";
    argv[n++] = "--clear-groups";
    argv[n++] = CORRIDOR_BIN;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return cluster_run(c, argv, 30000, r);
}

/* Why the nobody cases cannot run here, or NULL when they can. */
static const char *nobody_unavailable(cluster_t *c)
{
    if (access(SETPRIV, X_OK) != 0) {
        return "setpriv is not installed";
    }
    if (getpwnam("nobody") == NULL || getgrnam("nogroup") == NULL) {
        return "no user nobody or group nogroup";
    }
    if (geteuid() != 0) {
        return "not running as root";
    }
    cmd_result_t r;
    const char *args[] = {"status", "--help", NULL};
    int rc = run_as_nobody(c, &r, args);
    cmd_result_free(&r);
    return rc == 0 ? NULL : "nobody cannot run the corridor binary (directory permissions)";
}

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, chown_uid, chown_gid) == 0 ? 0 : -1;
}

static void chown_tree(const char *path, uid_t uid, gid_t gid)
{
    chown_uid = uid;
    chown_gid = gid;
    assert_int_equal(nftw(path, chown_entry, 16, FTW_PHYS), 0);
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static char *mounted_dir; /* the tmpfs of the disk-full test, unmounted by the teardown */

static int setup(void **state)
{
    book.count = 0;
    *state = cluster_new();
    return 0;
}

static int teardown(void **state)
{
    hostile_close_all();
    cluster_t *c = *state;
    if (mounted_dir != NULL) {
        for (size_t i = 0; c != NULL && i < c->count; i++) {
            node_kill9(&c->nodes[i]); /* nothing may hold the mount */
        }
        if (umount2(mounted_dir, 0) != 0 && umount2(mounted_dir, MNT_DETACH) != 0) {
            printf("# cannot unmount %s: %s\n", mounted_dir, strerror(errno));
        }
        free(mounted_dir);
        mounted_dir = NULL;
    }
    cluster_destroy(&c);
    *state = NULL;
    return 0;
}

/* A, B linked and C trusted by B (and B by C); A-C too when `mesh`. C never runs unless a
 * test starts it. */
static void three_nodes(cluster_t *c, bool mesh, tnode_t **a, tnode_t **b, tnode_t **cc)
{
    cluster_pair(c, NODES_GENEROUS_CAPS, a, b);
    *cc = cluster_add(c, NAME_C, CURRENCIES);
    cluster_link(c, *b, *cc, NODES_GENEROUS_CAPS);
    if (mesh) {
        cluster_link(c, *a, *cc, NODES_GENEROUS_CAPS);
    }
}

/* ==== messages ================================================================================ */

/* The newest message A queued for `peer` (its SignedMessage bytes), read from A's stopped
 * ledger: what an eavesdropper inside the transport would have captured. It must be of `type`. */
static uint8_t *capture_outbox(const tnode_t *a, const char *peer, msg_type_t type, uint64_t *seq,
                               size_t *len)
{
    char *path = test_path(a->home, "ledger.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT seq, type, signed FROM outbox WHERE peer = ?1 "
                                        "ORDER BY seq DESC LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *seq = (uint64_t)sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_column_int(st, 1), type);
    *len = (size_t)sqlite3_column_bytes(st, 2);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    memcpy(out, sqlite3_column_blob(st, 2), *len);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return out;
}

/* (1) the same captured message twice on one connection, (2) again after a reconnect, (3) again
 * after the receiver restarted: applied once. */
static void test_replay_captured_settlement(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles(c, a, b);

    /* A queues a settlement while B is down, then stops: its signed bytes are in A's outbox */
    assert_int_equal(node_stop(c, b), 0);
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    cmd_result_t r;
    assert_int_equal(node_send(c, a, b, "7.00", "USD", uetr, NULL, &r), 0);
    cmd_result_free(&r);
    book_settled(c, 0, 1, uetr);
    assert_int_equal(node_stop(c, a), 0);
    uint64_t seq = 0;
    size_t signed_len = 0;
    uint8_t *captured = capture_outbox(a, NAME_B, MSG_SETTLEMENT, &seq, &signed_len);

    node_start(c, b);
    assert_int_equal(node_peer_field(c, b, NAME_A, "received_seq"), (int64_t)seq - 1);
    hostile_t *h = hostile_open(a, a, b);
    hostile_hello_if_down(c, h, b); /* the target applies only while up */
    size_t wire_len = 0;
    uint8_t *wire = hostile_wrap(h, captured, signed_len, false, &wire_len);

    /* (1) twice on the same connection */
    hostile_send(h, wire, wire_len);
    hostile_send(h, wire, wire_len);
    hostile_sync(c, h, b);
    node_wait_peer_field(c, b, NAME_A, "received_seq", (int64_t)seq, WAIT_MS);
    assert_true(log_line_has(b, uetr, "incoming 700 USD settled"));
    json_t *lb = node_ledger(c, b);
    size_t times = 0;
    assert_non_null(ledger_json_find(lb, NAME_A, uetr, &times));
    assert_int_equal(times, 1);
    json_decref(lb);
    int64_t rows = node_journal_rows(c, b);
    size_t incoming = node_log_count(b, "incoming");

    /* (2) after a reconnect: the same bytes, and the same signed message in a fresh box marked
     * possible-duplicate */
    hostile_disconnect(h);
    hostile_connect(h);
    hostile_send(h, wire, wire_len);
    size_t rewrapped_len = 0;
    uint8_t *rewrapped = hostile_wrap(h, captured, signed_len, true, &rewrapped_len);
    hostile_send(h, rewrapped, rewrapped_len);
    hostile_sync(c, h, b);
    assert_int_equal(node_journal_rows(c, b), rows);
    assert_int_equal(node_peer_field(c, b, NAME_A, "received_seq"), (int64_t)seq);

    /* (3) after B restarted */
    assert_int_equal(node_stop(c, b), 0);
    node_start(c, b);
    hostile_disconnect(h);
    hostile_connect(h);
    hostile_send(h, wire, wire_len);
    hostile_send(h, rewrapped, rewrapped_len);
    hostile_sync(c, h, b);
    assert_int_equal(node_journal_rows(c, b), rows);
    assert_int_equal(node_peer_field(c, b, NAME_A, "received_seq"), (int64_t)seq);
    assert_int_equal(node_log_count(b, "incoming"), incoming); /* nothing applied again */
    assert_true(node_alive(b));
    hostile_close_all();
    free(wire);
    free(rewrapped);
    free(captured);

    /* A comes back, takes B's StatusReport for its own settlement and keeps settling */
    node_start(c, a);
    tnode_t *both[] = {a, b};
    cluster_quiesce(c, both, 2, QUIESCE_MS);
    settles_both_ways(c, a, b);
    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_clean(c, both, 2);
    c->passed = true;
}

/* (4) a message signed by A re-wrapped by another trusted node, or signed for another node */
static void test_forwarded_and_misaddressed(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, true, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    settles(c, a, b);
    int64_t rows = node_journal_rows(c, b);
    int64_t applied_a = node_peer_field(c, b, NAME_A, "received_seq");
    int64_t applied_c = node_peer_field(c, b, NAME_C, "received_seq");
    uint8_t id_b[IDENTITY_KEY_ID_BYTES], id_c[IDENTITY_KEY_ID_BYTES];
    node_key_id(b, id_b);
    node_key_id(cc, id_c);

    /* a Settlement A signed for C, and one A signed for B, both boxed by C (holding C's keys,
     * on C's connection) and sent to B */
    hostile_t *as_a = hostile_open(a, a, b);
    hostile_t *as_c = hostile_open(cc, cc, b);
    char u_for_c[UETR_SIZE], u_for_b[UETR_SIZE], u_misaddressed[UETR_SIZE];
    uetr_generate(u_for_c);
    uetr_generate(u_for_b);
    uetr_generate(u_misaddressed);
    size_t before = node_log_count(b, "(forwarded)");
    body_spec_t spec = {u_for_c, 500, "RUB", NULL, NULL};
    size_t body_len = 0, signed_len = 0, wire_len = 0;
    uint8_t *body = settlement_body(&spec, &body_len);
    uint8_t *signed_msg = hostile_sign(as_a, id_c, MSG_SETTLEMENT, 1, body, body_len, &signed_len);
    uint8_t *wire = hostile_wrap(as_c, signed_msg, signed_len, false, &wire_len);
    hostile_send(as_c, wire, wire_len);
    free(body);
    free(signed_msg);
    free(wire);
    spec.uetr = u_for_b;
    body = settlement_body(&spec, &body_len);
    signed_msg = hostile_sign(as_a, id_b, MSG_SETTLEMENT, (uint64_t)applied_a + 1, body, body_len,
                              &signed_len);
    wire = hostile_wrap(as_c, signed_msg, signed_len, false, &wire_len);
    hostile_send(as_c, wire, wire_len);
    free(body);
    free(signed_msg);
    free(wire);
    node_wait_log(b, "(forwarded)", before + 2, WAIT_MS);
    assert_true(log_line_has(b, "peer=" NAME_C, "(forwarded)"));

    /* a Settlement A signed for C, boxed by A to B: signed for another recipient */
    before = node_log_count(b, "signed for another recipient");
    spec.uetr = u_misaddressed;
    body = settlement_body(&spec, &body_len);
    hostile_seal_send(as_a, id_c, MSG_SETTLEMENT, (uint64_t)applied_a + 1, body, body_len);
    free(body);
    node_wait_log(b, "signed for another recipient", before + 1, WAIT_MS);

    /* a message C sealed, sent on A's connection (A's CURVE keys): not A's to send */
    hostile_t *mixed = hostile_open(a, cc, b);
    char u_mixed[UETR_SIZE];
    uetr_generate(u_mixed);
    spec.uetr = u_mixed;
    before = node_log_count(b, "sealed by " NAME_C " on " NAME_A "'s connection");
    send_settlement(mixed, (uint64_t)applied_c + 1, &spec);
    node_wait_log(b, "sealed by " NAME_C " on " NAME_A "'s connection", before + 1, WAIT_MS);
    hostile_sync(c, as_a, b);
    hostile_sync(c, as_c, b);
    hostile_close_all();

    /* nothing was applied or consumed */
    assert_true(node_alive(b));
    assert_int_equal(node_journal_rows(c, b), rows);
    assert_int_equal(node_peer_field(c, b, NAME_A, "received_seq"), applied_a);
    assert_int_equal(node_peer_field(c, b, NAME_C, "received_seq"), applied_c);
    settles_both_ways(c, a, b);
    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *all[] = {a, b, cc};
    audit_clean(c, all, 3);
    c->passed = true;
}

/* (5) bodies of one type signed as another, from trusted C at its next sequences */
static void test_body_of_another_type(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, false, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    settles(c, a, b);
    hostile_t *h = hostile_open(cc, cc, b);
    hostile_hello_if_down(c, h, b); /* the target applies only while up */
    uint64_t next = (uint64_t)node_peer_field(c, b, NAME_C, "received_seq") + 1;
    int64_t rows = node_journal_rows(c, b);

    /* a rejecting StatusReport as a Settlement: its reason (a string) lands on the amount
     * (an integer): not a Settlement at all */
    char u_report[UETR_SIZE];
    uetr_generate(u_report);
    size_t len = 0;
    uint8_t *body = status_report_body(u_report, "RJCT", "AM04", 500, &len);
    size_t malformed_settlements = node_log_count(b, "dropped malformed Settlement");
    hostile_seal_send(h, NULL, MSG_SETTLEMENT, next++, body, len);
    free(body);
    /* an Ack as a Settlement */
    body = ack_body(12345, 1, 1, &len);
    hostile_seal_send(h, NULL, MSG_SETTLEMENT, next++, body, len);
    free(body);
    /* a Settlement as a StatusReport */
    char u_settlement[UETR_SIZE];
    uetr_generate(u_settlement);
    body_spec_t spec = {u_settlement, 900, "RUB", NULL, NULL};
    body = settlement_body(&spec, &len);
    size_t malformed_reports = node_log_count(b, "dropped malformed StatusReport");
    hostile_seal_send(h, NULL, MSG_STATUS_REPORT, next++, body, len);
    free(body);
    /* an accepting StatusReport as a Settlement: every field it has fits a Settlement (uetr,
     * end-to-end id "ACSC", currency), the amount is absent: a zero amount, rejected AM01 */
    char u_zero[UETR_SIZE];
    uetr_generate(u_zero);
    body = status_report_body(u_zero, "ACSC", "", 0, &len);
    hostile_seal_send(h, NULL, MSG_SETTLEMENT, next++, body, len);
    free(body);
    book_add(1, NAME_C, u_zero, "rejected", "AM01");
    /* and a valid Settlement after them: C's stream goes on */
    char u_valid[UETR_SIZE];
    uetr_generate(u_valid);
    spec.uetr = u_valid;
    spec.amount_minor = 250;
    send_settlement(h, next, &spec);
    book_add(1, NAME_C, u_valid, "settled", NULL);
    hostile_sync(c, h, b);

    node_wait_log(b, "dropped malformed Settlement", malformed_settlements + 2, WAIT_MS);
    node_wait_log(b, "dropped malformed StatusReport", malformed_reports + 1, WAIT_MS);
    node_wait_peer_field(c, b, NAME_C, "received_seq", (int64_t)next, WAIT_MS); /* all consumed */
    assert_true(log_line_has(b, u_zero, "rejected AM01"));
    assert_true(log_line_has(b, u_valid, "settled"));
    assert_true(node_journal_rows(c, b) > rows);
    hostile_close_all();
    /* B answers C (which is down) with two StatusReports, waiting in B's outbox */
    assert_int_equal(node_peer_field(c, b, NAME_C, "outbox"), 2);
    assert_true(node_alive(b));
    ends_settling_and_clean(c, a, b);
}

/* (6) sequence numbers far ahead (and zero) from A's keys while A runs */
static void test_far_future_sequences(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles(c, a, b);
    uint64_t applied = (uint64_t)node_peer_field(c, b, NAME_A, "received_seq");
    int64_t rows = node_journal_rows(c, b);
    hostile_t *h = hostile_open(a, a, b);
    const uint64_t seqs[] = {applied + FAR_AHEAD, applied + CHANNEL_HOLD_MAX + 1,
                             CORRIDOR_SEQUENCE_MAX};
    char uetrs[4][UETR_SIZE];
    /* sequence 0 belongs to Acks and Hellos: a Settlement with it is dropped */
    uetr_generate(uetrs[3]);
    body_spec_t spec = {uetrs[3], 300, "RUB", NULL, NULL};
    send_settlement(h, 0, &spec);
    size_t before = node_log_count(b, "too far ahead");
    for (size_t i = 0; i < 3; i++) {
        uetr_generate(uetrs[i]);
        spec.uetr = uetrs[i];
        send_settlement(h, seqs[i], &spec);
    }
    node_wait_log(b, "too far ahead", before + 3, WAIT_MS);
    char line[96];
    snprintf(line, sizeof line, "dropped message %llu: too far ahead of %llu",
             (unsigned long long)(applied + FAR_AHEAD), (unsigned long long)applied);
    assert_int_equal(node_log_count(b, line), 1);
    snprintf(line, sizeof line, "dropped message %llu: too far ahead",
             (unsigned long long)CORRIDOR_SEQUENCE_MAX);
    assert_int_equal(node_log_count(b, line), 1);
    /* above 2^62 a sequence is malformed: dropped before it reaches the channel */
    before = node_log_count(b, "malformed");
    size_t body_len = 0, signed_len = 0, wire_len = 0;
    uint8_t *body = settlement_body(&spec, &body_len);
    uint8_t *signed_msg =
        sign_any_sequence(h, MSG_SETTLEMENT, UINT64_MAX, body, body_len, &signed_len);
    uint8_t *wire = hostile_wrap(h, signed_msg, signed_len, false, &wire_len);
    hostile_send(h, wire, wire_len);
    node_wait_log(b, "malformed", before + 1, WAIT_MS);
    free(wire);
    free(signed_msg);
    free(body);
    hostile_close_all();
    assert_int_equal(node_journal_rows(c, b), rows);
    assert_int_equal(node_peer_field(c, b, NAME_A, "received_seq"), (int64_t)applied);
    assert_int_equal(node_peer_field(c, b, NAME_A, "held"), 0);
    /* A's own next sequence still applies */
    ends_settling_and_clean(c, a, b);
}

static uint64_t wall_us(void)
{
    return (uint64_t)wall_ms() * 1000;
}

/* (7) forged acknowledgements never make B drop what A has not acknowledged */
static void test_forged_acknowledgements(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, false, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    settles_both_ways(c, a, b);
    node_wait_peer_field(c, b, NAME_A, "outbox", 0, WAIT_MS);
    assert_int_equal(node_stop(c, a), 0);

    /* B queues three settlements to A, which is down */
    for (int i = 0; i < 3; i++) {
        char uetr[UETR_SIZE];
        uetr_generate(uetr);
        cmd_result_t r;
        assert_int_equal(node_send(c, b, a, "3.00", "KZT", uetr, NULL, &r), 0);
        cmd_result_free(&r);
        book_settled(c, 1, 0, uetr);
    }
    int64_t sent = node_peer_field(c, b, NAME_A, "sent_seq");
    int64_t acked = node_peer_field(c, b, NAME_A, "acked_seq");
    assert_int_equal(node_peer_field(c, b, NAME_A, "outbox"), 3);
    assert_int_equal(sent - acked, 3);

    /* Acks signed with A's key beyond what B sent */
    hostile_t *h = hostile_open(a, a, b);
    size_t before = node_log_count(b, "ignored an acknowledgement");
    uint64_t incarnation = wall_us();
    const uint64_t forged[] = {(uint64_t)sent + 1000, CORRIDOR_SEQUENCE_MAX};
    for (size_t i = 0; i < 2; i++) {
        size_t len = 0;
        uint8_t *body = ack_body(forged[i], incarnation, i + 1, &len);
        hostile_seal_send(h, NULL, MSG_ACK, 0, body, len);
        free(body);
    }
    node_wait_log(b, "ignored an acknowledgement", before + 2, WAIT_MS);
    size_t malformed = node_log_count(b, "dropped malformed Ack");
    size_t len = 0;
    uint8_t *body = ack_body(UINT64_MAX, incarnation, 3, &len);
    hostile_seal_send(h, NULL, MSG_ACK, 0, body, len);
    free(body);
    node_wait_log(b, "dropped malformed Ack", malformed + 1, WAIT_MS);
    char line[128];
    snprintf(line, sizeof line, "ignored an acknowledgement of %llu: only %llu were sent",
             (unsigned long long)forged[0], (unsigned long long)sent);
    assert_true(log_line_has(b, "peer=" NAME_A, line));

    /* an Ack of exactly B's sent_seq towards A, sealed by C: it speaks for C's channel only */
    hostile_t *hc = hostile_open(cc, cc, b);
    body = ack_body((uint64_t)sent, wall_us(), 1, &len);
    hostile_seal_send(hc, NULL, MSG_ACK, 0, body, len);
    free(body);
    node_wait_log(b, "ignored an acknowledgement", before + 3, WAIT_MS);
    snprintf(line, sizeof line, "ignored an acknowledgement of %llu: only 0 were sent",
             (unsigned long long)sent);
    assert_true(log_line_has(b, "peer=" NAME_C, line));
    /* and the same Ack sealed by C but sent on A's connection */
    hostile_t *mixed = hostile_open(a, cc, b);
    before = node_log_count(b, "sealed by " NAME_C " on " NAME_A "'s connection");
    body = ack_body((uint64_t)sent, wall_us(), 2, &len);
    hostile_seal_send(mixed, NULL, MSG_ACK, 0, body, len);
    free(body);
    node_wait_log(b, "sealed by " NAME_C " on " NAME_A "'s connection", before + 1, WAIT_MS);
    hostile_sync(c, h, b);
    hostile_close_all();

    /* nothing B holds for A was given up (every forged Ack was handled: each one's log line
     * was waited for above, and the fence of hostile_sync came after them on A's connection) */
    assert_true(node_alive(b));
    assert_int_equal(node_peer_field(c, b, NAME_A, "outbox"), 3);
    assert_int_equal(node_peer_field(c, b, NAME_A, "acked_seq"), acked);
    assert_int_equal(node_peer_field(c, b, NAME_A, "sent_seq"), sent);
    assert_int_equal(node_peer_field(c, b, NAME_C, "acked_seq"), 0);

    /* A comes back: everything is delivered */
    node_start(c, a);
    tnode_t *both[] = {a, b};
    cluster_quiesce(c, both, 2, QUIESCE_MS);
    node_wait_peer_field(c, b, NAME_A, "outbox", 0, WAIT_MS);
    settles_both_ways(c, a, b);
    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_clean(c, both, 2);
    c->passed = true;
}

/* ==== content ================================================================================ */

typedef struct {
    const char *what;
    body_spec_t spec;
    const char *reason; /* the ISO reason B must record; NULL: dropped, no entry possible */
} content_case_t;

/* Sends each case as a signed Settlement from C at C's next sequences, then checks that B
 * recorded each as rejected with its reason, logged and answered with a StatusReport (or,
 * reason NULL, dropped it with a log line). Returns how many expected rejections B did not
 * record (each printed): those must have been dropped whole, with a log line and no entry. */
static size_t send_content_cases(cluster_t *c, tnode_t *b, tnode_t *cc, const content_case_t *cases,
                                 size_t count)
{
    hostile_t *h = hostile_open(cc, cc, b);
    hostile_hello_if_down(c, h, b); /* the target applies only while up */
    uint64_t first = (uint64_t)node_peer_field(c, b, NAME_C, "received_seq") + 1;
    int64_t outbox = node_peer_field(c, b, NAME_C, "outbox");
    size_t drops = node_log_count(b, "dropped malformed Settlement");
    for (size_t i = 0; i < count; i++) {
        send_settlement(h, first + i, &cases[i].spec);
    }
    hostile_sync(c, h, b);
    hostile_close_all();
    node_wait_peer_field(c, b, NAME_C, "received_seq", (int64_t)(first + count - 1), WAIT_MS);
    size_t dropped = 0, reports = 0, missing = 0;
    json_t *lb = node_ledger(c, b);
    for (size_t i = 0; i < count; i++) {
        const content_case_t *k = &cases[i];
        char expect[32];
        snprintf(expect, sizeof expect, "rejected %s", k->reason != NULL ? k->reason : "");
        if (k->reason != NULL && log_line_has(b, k->spec.uetr, expect)) {
            book_add(1, NAME_C, k->spec.uetr, "rejected", k->reason);
            reports++;
            printf("# %s: rejected %s\n", k->what, k->reason);
            continue;
        }
        if (k->reason != NULL) {
            printf("# %s: B did not record it as rejected %s\n", k->what, k->reason);
            missing++;
        }
        dropped++;
        if (uetr_check(k->spec.uetr) == VALID_OK) {
            assert_null(ledger_json_find(lb, NAME_C, k->spec.uetr, NULL));
        }
    }
    json_decref(lb);
    assert_int_equal(node_log_count(b, "dropped malformed Settlement"), drops + dropped);
    /* one StatusReport queued for each recorded rejection (C is down: they wait) */
    assert_int_equal(node_peer_field(c, b, NAME_C, "outbox"), outbox + (int64_t)reports);
    return missing;
}

static void test_bad_content(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, false, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    settles(c, a, b);
    enum { CASES = 12 };
    static char uetrs[CASES][UETR_SIZE];
    for (size_t i = 0; i < CASES; i++) {
        uetr_generate(uetrs[i]);
    }
    content_case_t cases[CASES] = {
        {"zero amount", {uetrs[0], 0, "RUB", NULL, NULL}, "AM01"},
        {"negative amount", {uetrs[1], -100, "RUB", NULL, NULL}, "AM12"},
        {"amount above the maximum",
         {uetrs[2], CORRIDOR_AMOUNT_MINOR_MAX + 1, "RUB", NULL, NULL},
         "AM12"},
        {"INT64_MAX", {uetrs[3], INT64_MAX, "RUB", NULL, NULL}, "AM12"},
        {"INT64_MIN", {uetrs[4], INT64_MIN, "RUB", NULL, NULL}, "AM12"},
        {"a currency B does not accept (EUR)", {uetrs[5], 100, "EUR", NULL, NULL}, "AM03"},
        {"an unknown currency (XXX)", {uetrs[6], 100, "XXX", NULL, NULL}, "AM03"},
        {"a lower-case currency", {uetrs[7], 100, "rub", NULL, NULL}, "AM03"},
        {"a control character in the debtor name",
         {uetrs[8], 100, "RUB", "Debtor\x01Name", NULL},
         "FF01"},
        {"invalid UTF-8 in the remittance",
         {uetrs[9], 100, "RUB", NULL, "bad \xc3\x28 utf8"},
         "FF01"},
        {"a UUIDv1 UETR", {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", 100, "RUB", NULL, NULL}, NULL},
        {"an upper-case UETR",
         {"3F2504E0-4F89-41D3-9A0C-0305E82C3301", 100, "RUB", NULL, NULL},
         NULL},
    };
    assert_int_equal(send_content_cases(c, b, cc, cases, CASES), 0);
    assert_true(node_alive(b));
    /* positions untouched: nothing of C's settled */
    json_t *lb = node_ledger(c, b);
    assert_int_equal(ledger_net(lb, NAME_C, "RUB"), 0);
    assert_int_equal(ledger_pending(lb, NAME_C, "RUB"), 0);
    json_decref(lb);
    ends_settling_and_clean(c, a, b);
}

/* Over-long text fields, with a valid UETR: rejected FF01, answered with a StatusReport. */
static void test_overlong_text_rejected(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, false, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    settles(c, a, b);
    static char name[301], remittance[142], uetrs[2][UETR_SIZE];
    memset(name, 'N', sizeof name - 1);
    memset(remittance, 'R', sizeof remittance - 1);
    uetr_generate(uetrs[0]);
    uetr_generate(uetrs[1]);
    content_case_t cases[] = {
        {"a 300-byte debtor name", {uetrs[0], 100, "RUB", name, NULL}, "FF01"},
        {"a 141-byte remittance", {uetrs[1], 100, "RUB", NULL, remittance}, "FF01"},
    };
    size_t missing = send_content_cases(c, b, cc, cases, sizeof cases / sizeof cases[0]);
    assert_true(node_alive(b));
    settles_both_ways(c, a, b);
    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    audit_clean(c, both, 2);
    /* a Settlement with an over-long field is still keyed by its UETR: rejected FF01 and
     * answered, so the sender's pending entry is resolved */
    assert_int_equal(missing, 0);
    c->passed = true;
}

/* A message under A's key at A's next sequence while A is down (a stolen key, or a message of
 * an A restored from an old backup afterwards): B applies it; when the real A returns, its
 * counters are behind B's, and both sides mark the channel DIVERGED (the Rollback rule). An
 * operator's `reconcile --repair` re-bases the channel and it settles again. */
static void test_hostile_sequence_desync(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    assert_int_equal(node_stop(c, a), 0);
    uint64_t applied = (uint64_t)node_peer_field(c, b, NAME_A, "received_seq");
    hostile_t *h = hostile_open(a, a, b);
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    body_spec_t spec = {uetr, 0, "RUB", NULL, NULL};
    send_settlement(h, applied + 1, &spec);
    hostile_sync(c, h, b);
    hostile_close_all();
    node_wait_peer_field(c, b, NAME_A, "received_seq", (int64_t)applied + 1, WAIT_MS);
    assert_true(log_line_has(b, uetr, "rejected AM01"));

    node_start(c, a);
    pair_wait_state(c, a, b, "diverged", WAIT_MS);
    assert_true(node_log_contains(a, "ROLLBACK DETECTED"));
    assert_true(node_log_contains(b, "ROLLBACK DETECTED"));

    /* the operator repairs from A */
    cmd_result_t r;
    int rc = cluster_cmd(c, SEND_TIMEOUT_MS, &r, "reconcile", "--home", a->home, "--peer", NAME_B,
                         "--repair", "--json", NULL);
    printf("# reconcile --repair exited %d: %.700s%s\n", rc, r.out, r.err);
    cmd_result_free(&r);
    pair_wait_state(c, a, b, "up", WAIT_MS);
    settles_both_ways(c, a, b);
    /* B keeps A's signed zero-amount Settlement as rejected; A learns of it from the repair or
     * not at all, but never settles it */
    json_t *la = node_ledger(c, a);
    json_t *found = ledger_json_find(la, NAME_B, uetr, NULL);
    if (found != NULL) {
        assert_string_equal(json_string_value(json_object_get(found, "status")), "rejected");
        book_add(0, NAME_B, uetr, "rejected", "AM01");
    }
    json_decref(la);
    book_add(1, NAME_A, uetr, "rejected", "AM01");
    book_check(c);
    rc = cluster_cmd(c, SEND_TIMEOUT_MS, &r, "reconcile", "--home", a->home, "--peer", NAME_B,
                     "--json", NULL);
    int reconcile_rc = rc;
    printf("# reconcile after the repair exited %d: %.700s%s\n", rc, r.out, r.err);
    cmd_result_free(&r);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    audit_clean(c, both, 2);
    /* the repair imports even a Settlement rejected for its content (the payee's signed
     * rejection shows what was decided): no break remains (I6) */
    assert_int_equal(reconcile_rc, 0);
    c->passed = true;
}

/* ==== a counterparty with valid keys: repairs and re-bases ==================================== */

/* The evidence a node's journal keeps for (uetr, kind): its signed message bytes. */
static uint8_t *journal_evidence(const tnode_t *n, const char *uetr, entry_kind_t kind, size_t *len)
{
    char *path = test_path(n->home, "ledger.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT evidence FROM journal WHERE uetr = ?1 AND kind = ?2", -1,
                           &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, uetr, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)kind);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *len = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    memcpy(out, sqlite3_column_blob(st, 0), *len);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return out;
}

/* Sends a StatementRequest carrying `repair` as the client's author (unsequenced, as a
 * reconciling node does). */
static void send_repair_request(const hostile_t *h, Corridor__Repair *repair)
{
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
    char id[32];
    snprintf(id, sizeof id, "hostile-%u", (unsigned)randombytes_uniform(1000000));
    req.request_id = id;
    req.repair = repair;
    size_t len = corridor__statement_request__get_packed_size(&req);
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    assert_int_equal(corridor__statement_request__pack(&req, body), len);
    hostile_seal_send(h, NULL, MSG_STATEMENT_REQUEST, 0, body, len);
    free(body);
}

static void copy_home(cluster_t *c, const tnode_t *n, const char *name, char **out)
{
    *out = test_path(c->dir, name);
    const char *cp[] = {"/bin/cp", "-a", n->home, *out, NULL};
    assert_int_equal(nodes_run_program(cp, 60000), 0);
}

/* B offers A a repair import of the payment `uetr` from B: the Settlement `settlement`
 * (signed by B) with the StatusReport `report` (signed by A), and A must refuse it with a log
 * line holding `why`. */
static void forged_import(cluster_t *c, tnode_t *a, tnode_t *b, const char *uetr, int64_t amount,
                          const uint8_t *settlement, size_t settlement_len, const uint8_t *report,
                          size_t report_len, const char *status, const char *why)
{
    hostile_t *h = hostile_open(b, b, a);
    Corridor__StatementEntry entry = CORRIDOR__STATEMENT_ENTRY__INIT;
    entry.uetr = (char *)uetr;
    entry.payer = NAME_B;
    entry.payee = NAME_A;
    entry.amount_minor = amount;
    entry.currency = "RUB";
    entry.status = (char *)status;
    entry.reason = (char *)(strcmp(status, "rejected") == 0 ? "DUPL" : "");
    entry.settlement_evidence = (ProtobufCBinaryData){settlement_len, (uint8_t *)settlement};
    entry.status_evidence = (ProtobufCBinaryData){report_len, (uint8_t *)report};
    Corridor__StatementEntry *entries[] = {&entry};
    Corridor__Repair repair = CORRIDOR__REPAIR__INIT;
    repair.n_imports = 1;
    repair.imports = entries;
    size_t refusals = node_log_count(a, "repair import refused");
    send_repair_request(h, &repair);
    node_wait_log(a, "repair import refused", refusals + 1, WAIT_MS);
    hostile_close_all();
    if (!log_line_has(a, uetr, why)) {
        fail_msg("%s refused the import of %s, but not because '%s'", a->name, uetr, why);
    }
    json_t *la = node_ledger(c, a);
    assert_null(ledger_json_find(la, NAME_B, uetr, NULL));
    json_decref(la);
}

/* Once the channel a-b diverged on both sides, the operator repairs it from a; it comes up. */
static void repair_diverged(cluster_t *c, tnode_t *a, tnode_t *b)
{
    pair_wait_state(c, a, b, "diverged", WAIT_MS);
    cmd_result_t r;
    int rc = cluster_cmd(c, SEND_TIMEOUT_MS, &r, "reconcile", "--home", a->home, "--peer", b->name,
                         "--repair", "--json", NULL);
    printf("# reconcile --repair exited %d: %.300s%s\n", rc, r.out, r.err);
    cmd_result_free(&r);
    pair_wait_state(c, a, b, "up", WAIT_MS);
}

/* B pays A 1,000,000.00 RUB (X); A is then restored from a copy older than X. B, holding its
 * real keys, offers A "repairs":
 *   - a Settlement X' it signed again for 1.00, with A's genuine ACSC of X. Before wire
 *     version 2 the ACSC named only the UETR and A booked X' (1.00 where the payment was a
 *     million); now it names the hash of the Settlement body it answers;
 *   - X itself as rejected, with A's genuine RJCT DUPL of a changed copy of X (which B sent
 *     while A was up), and that copy with the same DUPL: a DUPL answers a copy, never the
 *     payment;
 *   - X with an ACSC of wire version 1, as A signed before version 2: it names no contents.
 * A refuses all four, and the honest repair then books X as it was. */
static void test_forged_repair_import(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    assert_int_equal(node_stop(c, a), 0);
    char *backup = NULL;
    copy_home(c, a, "A.old", &backup);
    node_start(c, a);
    char x[UETR_SIZE];
    uetr_generate(x);
    cmd_result_t r;
    assert_int_equal(node_send(c, b, a, "1000000.00", "RUB", x, "30", &r), 0);
    cmd_result_free(&r);
    assert_int_equal(node_stop(c, b), 0);

    /* a changed copy of X at B's next sequence: A answers RJCT DUPL (queued for B, down) */
    uint64_t next = (uint64_t)node_peer_field(c, a, NAME_B, "received_seq") + 1;
    hostile_t *h = hostile_open(b, b, a);
    body_spec_t copy_spec = {x, 500, "RUB", NULL, NULL};
    size_t copy_body_len = 0, copy_len = 0;
    uint8_t *copy_body = settlement_body(&copy_spec, &copy_body_len);
    uint8_t *copy =
        hostile_sign(h, NULL, MSG_SETTLEMENT, next, copy_body, copy_body_len, &copy_len);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    wire = hostile_wrap(h, copy, copy_len, false, &wire_len);
    hostile_send(h, wire, wire_len);
    free(wire);
    hostile_close_all();
    node_wait_log(a, "rejected DUPL", 1, WAIT_MS);
    assert_int_equal(node_stop(c, a), 0);
    uint64_t dupl_seq = 0;
    size_t dupl_len = 0;
    uint8_t *dupl = capture_outbox(a, NAME_B, MSG_STATUS_REPORT, &dupl_seq, &dupl_len);
    test_rmtree(a->home);
    assert_int_equal(rename(backup, a->home), 0);
    free(backup);

    /* what B holds: its Settlement X and A's ACSC of X */
    size_t acsc_len = 0, x_len = 0;
    uint8_t *acsc = journal_evidence(b, x, ENTRY_OUT_POSTED, &acsc_len);
    uint8_t *x_signed = journal_evidence(b, x, ENTRY_OUT_PENDING, &x_len);
    node_start(c, a);
    h = hostile_open(b, b, a);
    body_spec_t spec = {x, 100, "RUB", NULL, NULL}; /* 1.00 RUB */
    size_t body_len = 0, forged_len = 0;
    uint8_t *body = settlement_body(&spec, &body_len);
    uint8_t *forged = hostile_sign(h, NULL, MSG_SETTLEMENT, 3, body, body_len, &forged_len);
    hostile_close_all();
    forged_import(c, a, b, x, 100, forged, forged_len, acsc, acsc_len, "settled",
                  "answers other contents");
    forged_import(c, a, b, x, 100000000, x_signed, x_len, dupl, dupl_len, "rejected",
                  "answers other contents");
    forged_import(c, a, b, x, 500, copy, copy_len, dupl, dupl_len, "rejected",
                  "a DUPL rejection answers a copy");
    /* X with an ACSC of wire version 1 (as A signed before version 2): it names no contents */
    uint8_t b_id[IDENTITY_KEY_ID_BYTES];
    node_key_id(b, b_id);
    hostile_t *as_a = hostile_open(b, a, a); /* only to sign as A */
    size_t v1_body_len = 0, v1_len = 0;
    uint8_t *v1_body = status_report_body(x, "ACSC", "", 0, &v1_body_len);
    uint8_t *v1 = hostile_sign(as_a, b_id, MSG_STATUS_REPORT, 1, v1_body, v1_body_len, &v1_len);
    hostile_close_all();
    forged_import(c, a, b, x, 100000000, x_signed, x_len, v1, v1_len, "settled",
                  "a version-1 StatusReport names no Settlement contents");
    free(v1);
    free(v1_body);
    free(body);
    free(forged);
    free(acsc);
    free(x_signed);
    free(dupl);
    free(copy);
    free(copy_body);

    /* the honest repair: B comes back, A (restored) imports X from B's evidence as it was */
    node_start(c, b);
    repair_diverged(c, a, b);
    json_t *la = node_ledger(c, a);
    json_t *booked = ledger_json_find(la, NAME_B, x, NULL);
    assert_non_null(booked);
    assert_int_equal(json_integer_value(json_object_get(booked, "amount_minor")), 100000000);
    assert_string_equal(json_string_value(json_object_get(booked, "status")), "settled");
    json_decref(la);
    book_settled(c, 1, 0, x);
    ends_settling_and_clean(c, a, b);
}

/* A Hello claiming that B applied more of A's stream than A sent makes A's channel diverge;
 * a re-base request then claimed B applied 2^64-1. Before, A took the claim as it was: its
 * next message got sequence 0 and every `send` to B aborted the node, after every restart too.
 * Now a counter above 2^62 is malformed, and a plausible claim without A's own signed message
 * of that sequence proves nothing: A's numbers stay its own, and what it held is sent again. */
static void test_rebase_claims_need_proof(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    assert_int_equal(node_stop(c, b), 0);
    int64_t sent = node_peer_field(c, a, NAME_B, "sent_seq");
    int64_t received = node_peer_field(c, a, NAME_B, "received_seq");

    hostile_t *h = hostile_open(b, b, a);
    Corridor__Hello hello = CORRIDOR__HELLO__INIT;
    uint32_t versions[] = {1, 2};
    hello.sent_sequence = (uint64_t)received;
    hello.applied_sequence = (uint64_t)sent + 5;
    hello.acked_sequence = (uint64_t)received;
    hello.incarnation = wall_us();
    hello.n_versions = 2;
    hello.versions = versions;
    /* the first contradiction may be a Hello overtaken by later messages: the second counts */
    for (uint64_t counter = 1; counter <= 2; counter++) {
        hello.counter = counter;
        uint8_t buf[128];
        size_t len = corridor__hello__pack(&hello, buf);
        hostile_seal_send(h, NULL, MSG_HELLO, 0, buf, len);
        if (counter == 1) {
            node_wait_log(a, "a Hello contradicts our counters", 1, WAIT_MS);
            assert_true(node_peer_state_is(c, a, NAME_B, "up") ||
                        node_peer_state_is(c, a, NAME_B, "down"));
        }
    }
    int64_t deadline = mono_ms() + WAIT_MS;
    while (!node_peer_state_is(c, a, NAME_B, "diverged")) {
        if (mono_ms() >= deadline) {
            fail_msg("the forged Hello did not make the channel diverge");
        }
        sleep_ms(50);
    }

    Corridor__Repair repair = CORRIDOR__REPAIR__INIT;
    repair.rebase = true;
    repair.sender_applied = UINT64_MAX;
    size_t refused = node_log_count(a, "a counter above 2^62");
    send_repair_request(h, &repair);
    node_wait_log(a, "a counter above 2^62", refused + 1, WAIT_MS);

    repair.sender_applied = (uint64_t)sent + 1000; /* plausible, but A never signed it */
    size_t rebased = node_log_count(a, "channel re-based");
    send_repair_request(h, &repair);
    node_wait_log(a, "channel re-based", rebased + 1, WAIT_MS);
    hostile_close_all();
    assert_int_equal(node_peer_field(c, a, NAME_B, "sent_seq"), sent);

    /* A still takes settlements for B, numbered after its own last one, and delivers them */
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    cmd_result_t r;
    assert_int_equal(node_send(c, a, b, "2.50", "RUB", uetr, NULL, &r), 0);
    cmd_result_free(&r);
    assert_true(node_alive(a));
    assert_int_equal(node_peer_field(c, a, NAME_B, "sent_seq"), sent + 1);
    node_start(c, b);
    pair_wait_state(c, a, b, "up", WAIT_MS);
    assert_int_equal(node_send(c, a, b, "2.50", "RUB", uetr, "30", &r), 0); /* its final status */
    cmd_result_free(&r);
    book_settled(c, 0, 1, uetr);
    ends_settling_and_clean(c, a, b);
}

/* Before the repair re-based on proofs, a side whose ledger was upgraded from schema 2 (no
 * stored proof of what it applied) could never re-base a restored peer. Now a side shows what
 * it can prove and resumes the peer's stream right after it: what it applied beyond comes
 * again and is applied once (by UETR). */
static void test_rebase_without_stored_proof(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    assert_int_equal(node_stop(c, b), 0);
    char *backup = NULL;
    copy_home(c, b, "B.old", &backup);
    node_start(c, b);
    settles_both_ways(c, a, b);
    settles_both_ways(c, a, b);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    char *path = test_path(a->home, "ledger.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE channels SET applied_proof = NULL", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    free(path);
    test_rmtree(b->home);
    assert_int_equal(rename(backup, b->home), 0);
    free(backup);

    node_start(c, a);
    node_start(c, b);
    repair_diverged(c, a, b);
    ends_settling_and_clean(c, a, b);
}

/* A payee with valid keys answers A's settlement with a version-2 ACSC naming other contents:
 * A leaves its payment pending (the report proves nothing about what A sent) and posts it on
 * the payee's report that names A's Settlement. Also: a peer asking for re-bases on a healthy
 * channel, again and again, changes nothing and writes nothing. */
static void test_status_report_must_name_our_settlement(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, true, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    settles_both_ways(c, a, b);
    char uetr[UETR_SIZE];
    uetr_generate(uetr);
    cmd_result_t r;
    assert_int_equal(node_send(c, a, cc, "5.00", "RUB", uetr, NULL, &r), 0);
    cmd_result_free(&r);

    /* A's Settlement as C would have received it */
    uint64_t seq = 0;
    size_t signed_len = 0;
    uint8_t *signed_msg = capture_outbox(a, NAME_C, MSG_SETTLEMENT, &seq, &signed_len);
    Corridor__SignedMessage *sm = corridor__signed_message__unpack(NULL, signed_len, signed_msg);
    assert_non_null(sm);
    Corridor__Inner *inner = corridor__inner__unpack(NULL, sm->inner.len, sm->inner.data);
    assert_non_null(inner);
    uint8_t right[SETTLEMENT_HASH_BYTES], wrong[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(inner->body.data, inner->body.len, right);
    memset(wrong, 0xaa, sizeof wrong);
    corridor__inner__free_unpacked(inner, NULL);
    corridor__signed_message__free_unpacked(sm, NULL);
    free(signed_msg);

    hostile_t *h = hostile_open(cc, cc, a);
    hostile_hello_if_down(c, h, a); /* C itself is not running */
    const uint8_t *hashes[] = {wrong, right};
    for (uint64_t i = 0; i < 2; i++) {
        Corridor__StatusReport m = CORRIDOR__STATUS_REPORT__INIT;
        m.uetr = uetr;
        m.status = "ACSC";
        m.reason = "";
        m.currency = "RUB";
        m.settlement_hash = (ProtobufCBinaryData){SETTLEMENT_HASH_BYTES, (uint8_t *)hashes[i]};
        uint8_t body[256];
        size_t len = corridor__status_report__pack(&m, body);
        size_t out_len = 0, wire_len = 0;
        uint8_t *out = NULL;
        assert_int_equal(envelope_sign_version(h->author, 2, h->target.key_id, MSG_STATUS_REPORT,
                                               i + 1, body, len, &out, &out_len),
                         ENV_OK);
        uint8_t *wire = hostile_wrap(h, out, out_len, false, &wire_len);
        hostile_send(h, wire, wire_len);
        free(wire);
        free(out);
        if (i == 0) {
            node_wait_log(a, "answers other contents than our Settlement", 1, WAIT_MS);
            json_t *la = node_ledger(c, a);
            json_t *e = ledger_json_find(la, NAME_C, uetr, NULL);
            assert_string_equal(json_string_value(json_object_get(e, "status")), "pending");
            json_decref(la);
        }
    }
    assert_int_equal(node_send(c, a, cc, "5.00", "RUB", uetr, "30", &r), 0); /* settled */
    cmd_result_free(&r);
    book_add(0, NAME_C, uetr, "settled", NULL);

    /* re-bases asked of a healthy channel, with no proof: nothing changes, nothing is written */
    int64_t rows = node_journal_rows(c, a);
    hostile_t *hb = hostile_open(b, b, a);
    Corridor__Repair repair = CORRIDOR__REPAIR__INIT;
    repair.rebase = true;
    for (int i = 0; i < 50; i++) {
        send_repair_request(hb, &repair);
    }
    hostile_sync(c, hb, a);
    hostile_close_all();
    assert_int_equal(node_journal_rows(c, a), rows);
    assert_false(node_log_contains(a, "channel re-based"));
    assert_int_equal(node_peer_field(c, a, NAME_B, "acked_seq"),
                     node_peer_field(c, a, NAME_B, "sent_seq"));
    settles_both_ways(c, a, b);
    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *one[] = {a};
    audit_clean(c, one, 1);
    c->passed = true;
}

/* ==== resources: what a peer with valid keys can make a node hold ============================ */

/* A process's peak resident memory (VmHWM), in KiB. */
static int64_t peak_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    char *text = nodes_read_file(path, NULL);
    assert_non_null(text);
    const char *line = strstr(text, "VmHWM:");
    assert_non_null(line);
    int64_t kib = strtoll(line + 6, NULL, 10);
    free(text);
    return kib;
}

#define FLOOD_HELD    (CHANNEL_HOLD_MAX - 1) /* a gap at the next sequence, the window behind it */
#define RSS_LIMIT_KIB (256 * 1024)
/* A node's peak RSS means nothing under AddressSanitizer (shadow memory, the quarantine of
 * freed blocks: 420 MiB where the normal build peaks at 79): memory bounds are asserted in
 * normal builds, and the sanitizer build checks the same floods for memory errors. */
#ifdef CORRIDOR_TEST_SANITIZED
#define RSS_MEANINGFUL false
#else
#define RSS_MEANINGFUL true
#endif

/* A and B running and settling, C's process down (a client holds its keys): the start of
 * every flood from C. Returns B's peak RSS so far, in KiB. */
static int64_t flood_from_c(cluster_t *c, tnode_t **a, tnode_t **b, tnode_t **cc)
{
    three_nodes(c, false, a, b, cc);
    node_start(c, *a);
    node_start(c, *b);
    settles_both_ways(c, *a, *b);
    return peak_rss_kib((*b)->pid);
}

/* A body of the largest size a peer may send (malloc'd), no two alike by its first byte. */
static uint8_t *largest_body(size_t *len)
{
    *len = CORRIDOR_BODY_BYTES_MAX;
    uint8_t *body = malloc(*len);
    assert_non_null(body);
    memset(body, 'x', *len);
    return body;
}

/* C (trusted by B, its keys held by the client) opens a gap at its next sequence and fills the
 * hold-back window behind it with the largest messages: 4,095 of 256 KiB. Before the window was
 * bounded in bytes, B held every one (2,092 MiB measured); now it holds at most
 * CHANNEL_HOLD_BYTES_MAX, drops the rest (C would send them again), stays under 256 MiB and
 * keeps settling with A. */
static void test_hold_window_bounded_in_bytes(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    int64_t before_kib = flood_from_c(c, &a, &b, &cc);
    hostile_t *h = hostile_open(cc, cc, b);
    size_t body_len = 0;
    uint8_t *body = largest_body(&body_len);
    int64_t started = mono_ms();
    for (uint64_t seq = 2; seq < 2 + FLOOD_HELD; seq++) {
        body[0] = (uint8_t)seq; /* no two alike */
        hostile_seal_send(h, NULL, MSG_SETTLEMENT, seq, body, body_len);
    }
    hostile_sync(c, h, b); /* B has handled every one */
    int64_t flood_ms = mono_ms() - started;
    hostile_close_all();
    free(body);
    int64_t peak_kib = peak_rss_kib(b->pid);
    int64_t held = node_peer_field(c, b, NAME_C, "held_bytes");
    int64_t full = node_peer_field(c, b, NAME_C, "hold_full");
    printf("# %d held messages of %zu bytes in %lld ms: B's peak RSS %lld KiB (before %lld), "
           "held %lld bytes, %lld dropped as over the byte budget\n",
           FLOOD_HELD, body_len, (long long)flood_ms, (long long)peak_kib, (long long)before_kib,
           (long long)held, (long long)full);
    assert_true(held <= (int64_t)CHANNEL_HOLD_BYTES_MAX);
    assert_true(full > 0);
    assert_true(!RSS_MEANINGFUL || peak_kib < RSS_LIMIT_KIB);
    assert_true(node_log_contains(b, "bytes already held after a gap"));
    ends_settling_and_clean(c, a, b);
}

#define REJECTED_FLOOD 120         /* settlements B must reject, each storing... */
#define REJECTED_TEXT  (60 * 1024) /* ...a remittance of 60 KiB, twice (body and evidence) */

/* A peer's rejected settlements store what moves no money. The client with C's keys sends B
 * 120 settlements whose over-long remittance (60 KiB) B must reject FF01 and keep as evidence:
 * before, B stored each at once (4,095 of 256 KiB could add 2 GiB a round). Now B applies a
 * peer's rejected messages at CHANNEL_IDLE_PER_S KiB a second after a burst, the rest
 * wait in the hold-back window, unacknowledged (backpressure: nothing is dropped), and B keeps
 * settling with A. */
static void test_rejected_flood_slowed(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    (void)flood_from_c(c, &a, &b, &cc);
    char *text = malloc(REJECTED_TEXT + 1);
    assert_non_null(text);
    memset(text, 'x', REJECTED_TEXT);
    text[REJECTED_TEXT] = '\0';
    hostile_t *h = hostile_open(cc, cc, b);
    hostile_hello_if_down(c, h, b); /* the target applies only while up */
    int64_t started = mono_ms();
    size_t message_bytes = 0;
    static char uetrs[REJECTED_FLOOD][UETR_SIZE];
    for (uint64_t seq = 1; seq <= REJECTED_FLOOD; seq++) {
        char *uetr = uetrs[seq - 1];
        uetr_generate(uetr);
        body_spec_t spec = {uetr, 100, "RUB", NULL, text};
        uint8_t *body = settlement_body(&spec, &message_bytes);
        hostile_seal_send(h, NULL, MSG_SETTLEMENT, seq, body, message_bytes);
        free(body);
    }
    hostile_sync(c, h, b);
    hostile_close_all();
    free(text);
    int64_t deadline = mono_ms() + WAIT_MS; /* the positive signal: B held some back */
    while (node_peer_field(c, b, NAME_C, "backpressure") == 0 && mono_ms() < deadline) {
        sleep_ms(50);
    }
    assert_true(node_peer_field(c, b, NAME_C, "backpressure") > 0);
    assert_true(node_log_contains(b, "applying the peer's messages slowed"));
    settles_both_ways(c, a, b); /* the other peer is not slowed */
    int64_t applied = node_peer_field(c, b, NAME_C, "received_seq");
    int64_t elapsed_ms = mono_ms() - started;
    /* each stored twice (body and evidence): the allowance bounds how many got in */
    int64_t allowance =
        (CHANNEL_IDLE_BURST + CHANNEL_IDLE_PER_S * (elapsed_ms / 1000 + 1)) * CHANNEL_IDLE_UNIT;
    int64_t bound = allowance / (int64_t)(2 * message_bytes) + 1;
    printf("# %d rejected settlements of %zu bytes: %lld applied in %lld ms (bound %lld), the "
           "rest held back; B's peak RSS %lld KiB\n",
           REJECTED_FLOOD, message_bytes, (long long)applied, (long long)elapsed_ms,
           (long long)bound, (long long)peak_rss_kib(b->pid));
    assert_true(applied > 0);
    assert_true(applied <= bound);
    assert_true(applied < REJECTED_FLOOD);
    assert_true(!RSS_MEANINGFUL || peak_rss_kib(b->pid) < RSS_LIMIT_KIB);
    /* B applies the rest at its pace while it runs; stopped, it keeps what it applied (the
     * client is gone: nobody sends the rest again) */
    assert_int_equal(node_stop(c, b), 0);
    json_t *lb = node_ledger(c, b);
    for (size_t i = 0; i < REJECTED_FLOOD; i++) {
        if (ledger_json_find(lb, NAME_C, uetrs[i], NULL) != NULL) {
            book_add(1, NAME_C, uetrs[i], "rejected", "FF01");
        }
    }
    json_decref(lb);
    node_start(c, b);
    ends_settling_and_clean(c, a, b);
}

/* Rows of a node's table `table` (read while it runs: WAL readers do not block it). */
static int64_t table_rows(const tnode_t *n, const char *table)
{
    char *path = test_path(n->home, "ledger.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t count = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return count;
}

#define CHECKPOINT_FLOOD 10000

/* B proposes the checkpoint A just co-signed again and again (its own genuine signature over
 * A's current state): before, A stored every one and audit looped over them all for every
 * journal row. Now the requests a peer may make are rate-limited, a checkpoint that does not
 * advance past the last one is refused, and audit walks checkpoints in step with the rows. */
static void test_checkpoint_proposals_do_not_pile_up(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, SEND_TIMEOUT_MS, &r, "reconcile", "--home", b->home, "--peer",
                                 NAME_A, "--json", NULL),
                     0);
    cmd_result_free(&r);
    assert_int_equal(table_rows(a, "checkpoints"), 1);

    /* B's proposal as B keeps it: the body and B's signature */
    char *path = test_path(b->home, "ledger.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT body, own_signature FROM checkpoints", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    size_t body_len = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *body = malloc(body_len);
    uint8_t signature[crypto_sign_BYTES];
    assert_non_null(body);
    memcpy(body, sqlite3_column_blob(st, 0), body_len);
    assert_int_equal(sqlite3_column_bytes(st, 1), crypto_sign_BYTES);
    memcpy(signature, sqlite3_column_blob(st, 1), sizeof signature);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);

    hostile_t *h = hostile_open(b, b, a);
    size_t refused = node_log_count(a, "does not advance past the last one");
    for (int i = 0; i < CHECKPOINT_FLOOD; i++) {
        Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
        char id[32];
        snprintf(id, sizeof id, "again-%d", i);
        req.request_id = id;
        req.checkpoint = (ProtobufCBinaryData){body_len, body};
        req.checkpoint_signature = (ProtobufCBinaryData){sizeof signature, signature};
        uint8_t packed[4096];
        assert_true(corridor__statement_request__get_packed_size(&req) <= sizeof packed);
        size_t len = corridor__statement_request__pack(&req, packed);
        hostile_seal_send(h, NULL, MSG_STATEMENT_REQUEST, 0, packed, len);
        if (i % 50 == 49) {
            hostile_sync(c, h, a); /* under the 64 statements a turn takes: each one is handled */
        }
    }
    hostile_close_all();
    free(body);
    size_t refusals = node_log_count(a, "does not advance past the last one") - refused;
    int64_t limited = node_peer_field(c, a, NAME_B, "statement_requests_refused");
    int64_t stored = table_rows(a, "checkpoints");
    assert_int_equal(node_stop(c, a), 0);
    int64_t started = mono_ms();
    tnode_t *one[] = {a};
    audit_clean(c, one, 1);
    printf("# %d proposals of the same checkpoint: %zu refused as not advancing, %lld over the "
           "rate of requests, %lld stored; audit of A %lld ms\n",
           CHECKPOINT_FLOOD, refusals, (long long)limited, (long long)stored,
           (long long)(mono_ms() - started));
    /* each one was refused one way or both (a request over the rate waits, the newest only) */
    assert_true((int64_t)refusals + limited >= CHECKPOINT_FLOOD);
    assert_true(refusals >= 16);
    assert_int_equal(stored, 1);
    node_start(c, a);
    ends_settling_and_clean(c, a, b);
}

/* A `send --batch` file in the scratch directory: `count` settlements of 1.00 RUB to `to`
 * (UETRs left to the client). Returns its path (malloc'd). */
static char *batch_of_ones(cluster_t *c, const char *name, const tnode_t *to, int count)
{
    char *path = test_path(c->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "to,amount,currency\n");
    for (int i = 0; i < count; i++) {
        fprintf(f, "%s,1.00,RUB\n", to->name);
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

#define LOADED_ENTRIES   20000 /* settlements A -> B before the flood (CORRIDOR_FLOOD_ENTRIES) */
#define REQUEST_FLOOD_MS 20000
#define REQUESTS_PER_S   64

/* The flooding peer, in a child process: StatementRequests as A to B, REQUESTS_PER_S a second
 * for REQUEST_FLOOD_MS, each asking for the whole channel and 255 one-digit prefixes, all
 * differing (the first costs a read of every entry for its 16 sub-ranges, each other one a
 * fingerprint and a sub-range scan of a sixteenth of the channel). */
static void flood_requests(const tnode_t *a, const tnode_t *b)
{
    hostile_t *h = hostile_open(a, a, b);
    Corridor__RangeFingerprint ranges[STATEMENT_RANGES_MAX];
    Corridor__RangeFingerprint *ptrs[STATEMENT_RANGES_MAX];
    char prefixes[16][2];
    uint8_t zero[DIGEST_BYTES] = {0};
    for (int d = 0; d < 16; d++) {
        prefixes[d][0] = "0123456789abcdef"[d];
        prefixes[d][1] = '\0';
    }
    for (size_t i = 0; i < STATEMENT_RANGES_MAX; i++) {
        corridor__range_fingerprint__init(&ranges[i]);
        ranges[i].prefix = i == 0 ? "" : prefixes[i % 16]; /* "": the whole channel's sub-ranges */
        ranges[i].count = 1;
        ranges[i].sum = (ProtobufCBinaryData){sizeof zero, zero};
        ptrs[i] = &ranges[i];
    }
    int64_t start = mono_ms();
    for (int i = 0; mono_ms() - start < REQUEST_FLOOD_MS; i++) {
        Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
        char id[32];
        snprintf(id, sizeof id, "flood-%d", i);
        req.request_id = id;
        req.n_ranges = STATEMENT_RANGES_MAX;
        req.ranges = ptrs;
        size_t len = corridor__statement_request__get_packed_size(&req);
        uint8_t *body = malloc(len);
        assert_non_null(body);
        corridor__statement_request__pack(&req, body);
        hostile_seal_send(h, NULL, MSG_STATEMENT_REQUEST, 0, body, len);
        free(body);
        sleep_ms(1000 / REQUESTS_PER_S);
    }
}

static int by_value(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* The slowest of n samples (with so few samples, that is the p99) and the median. */
static void summarize(int64_t *ms, size_t n, int64_t *median, int64_t *slowest)
{
    qsort(ms, n, sizeof *ms, by_value);
    *median = ms[n / 2];
    *slowest = ms[n - 1];
}

#define SAMPLES_MAX 64

/* Settlements C -> B with --wait, and `status` of B, timed, for about `ms`. */
static size_t measure(cluster_t *c, tnode_t *b, tnode_t *cc, int64_t ms, int64_t *settle_ms,
                      int64_t *status_ms)
{
    size_t n = 0;
    int64_t start = mono_ms();
    while (n < SAMPLES_MAX && (n < 5 || mono_ms() - start < ms)) {
        int64_t t0 = mono_ms();
        json_t *st = node_status(c, b);
        status_ms[n] = mono_ms() - t0;
        json_decref(st);
        char uetr[UETR_SIZE];
        uetr_generate(uetr);
        cmd_result_t r;
        t0 = mono_ms();
        int rc = node_send(c, cc, b, "1.00", "RUB", uetr, "30", &r);
        settle_ms[n] = mono_ms() - t0;
        if (rc != 0) {
            fail_msg("send C -> B during the flood exited %d: %s", rc, r.err);
        }
        cmd_result_free(&r);
        n++;
    }
    return n;
}

/* A, whose keys the flooding client holds, asks B for statements of a channel of 20,000
 * entries (CORRIDOR_FLOOD_ENTRIES sets another count, for the 200,000 the closing note
 * measures), 64 requests a second for 20 s, each of 256 differing one-digit prefixes. B
 * answers them from a read snapshot after its commits, at most RESPONDER_REQUESTS_PER_S of a
 * peer's requests and RESPONDER_WORK_PER_S units of entries read a second (the rest wait, the
 * newest only), and an answer stops after STATEMENT_WORK_ENTRIES entries read. `status`
 * answers within a second every time, and settlements with C keep flowing. */
static void test_statement_requests_bounded(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    three_nodes(c, false, &a, &b, &cc);
    node_start(c, a);
    node_start(c, b);
    node_start(c, cc);
    const char *wanted = getenv("CORRIDOR_FLOOD_ENTRIES");
    int loaded = wanted != NULL ? atoi(wanted) : LOADED_ENTRIES;
    assert_true(loaded > 0);
    char *batch = batch_of_ones(c, "load.csv", b, loaded);
    cmd_result_t r;
    int rc = cluster_cmd(c, 3600 * 1000, &r, "send", "--home", a->home, "--batch", batch, "--wait",
                         "3000", NULL);
    if (rc != 0) {
        printf("# batch exited %d: %.300s\n", rc, r.err);
    }
    assert_int_equal(rc, 0);
    cmd_result_free(&r);
    free(batch);
    node_wait_peer_field(c, b, NAME_A, "received_seq", loaded, WAIT_MS);
    int64_t before_kib = peak_rss_kib(b->pid);

    int64_t quiet_settle[SAMPLES_MAX], quiet_status[SAMPLES_MAX];
    size_t quiet = measure(c, b, cc, 2000, quiet_settle, quiet_status);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        flood_requests(a, b);
        hostile_close_all();
        _exit(0);
    }
    int64_t flood_settle[SAMPLES_MAX], flood_status[SAMPLES_MAX];
    size_t flooded = measure(c, b, cc, REQUEST_FLOOD_MS - 1000, flood_settle, flood_status);
    int wstatus = 0;
    assert_int_equal(waitpid(child, &wstatus, 0), child);
    assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    int64_t refused = node_peer_field(c, b, NAME_A, "statement_requests_refused");
    int64_t peak_kib = peak_rss_kib(b->pid);
    int64_t qs_med, qs_max, qt_med, qt_max, fs_med, fs_max, ft_med, ft_max;
    summarize(quiet_settle, quiet, &qs_med, &qs_max);
    summarize(quiet_status, quiet, &qt_med, &qt_max);
    summarize(flood_settle, flooded, &fs_med, &fs_max);
    summarize(flood_status, flooded, &ft_med, &ft_max);
    printf("# %d entries; C -> B settle median/max: quiet %lld/%lld ms (%zu), flooded %lld/%lld "
           "ms (%zu); status median/max: quiet %lld/%lld ms, flooded %lld/%lld ms; %lld requests "
           "waited for the rate; B's peak RSS %lld KiB (%lld before the flood)\n",
           loaded, (long long)qs_med, (long long)qs_max, quiet, (long long)fs_med,
           (long long)fs_max, flooded, (long long)qt_med, (long long)qt_max, (long long)ft_med,
           (long long)ft_max, (long long)refused, (long long)peak_kib, (long long)before_kib);
    assert_true(ft_max < 1000);
    assert_true(!RSS_MEANINGFUL || peak_kib < RSS_LIMIT_KIB);
    assert_true(refused > 0);
    /* nothing lost: every settlement is on both sides (counted; the load is too big to book) */
    settles_both_ways(c, a, b);
    json_t *lb = node_ledger(c, b);
    json_t *la = node_ledger(c, a);
    json_t *lc = node_ledger(c, cc);
    assert_int_equal(ledger_count(lb, "settled"), loaded + 2 + (int64_t)(quiet + flooded));
    assert_int_equal(ledger_count(la, "settled"), loaded + 2);
    assert_int_equal(ledger_count(lc, "settled"), (int64_t)(quiet + flooded));
    json_decref(la);
    json_decref(lb);
    json_decref(lc);
    for (size_t i = 0; i < c->count; i++) {
        assert_int_equal(node_stop(c, &c->nodes[i]), 0);
    }
    tnode_t *all[] = {a, b, cc};
    audit_clean(c, all, 3);
    c->passed = true;
}

#define FRAME_FLOOD  8000  /* copies of one frame of the largest size: 2 GiB on the wire */
#define STREAM_FLOOD 40000 /* copies of one frame of the stream's largest size: 640 MiB */

/* Sends `copies` of one sealed Settlement with a body of body_len bytes; returns its wire size. */
static size_t flood_frames(const hostile_t *h, size_t body_len, int copies)
{
    uint8_t *body = malloc(body_len);
    assert_non_null(body);
    memset(body, 'x', body_len);
    size_t signed_len = 0, wire_len = 0;
    uint8_t *signed_msg = hostile_sign(h, NULL, MSG_SETTLEMENT, 1, body, body_len, &signed_len);
    uint8_t *wire = hostile_wrap(h, signed_msg, signed_len, false, &wire_len);
    for (int i = 0; i < copies; i++) {
        hostile_send(h, wire, wire_len);
    }
    free(wire);
    free(signed_msg);
    free(body);
    return wire_len;
}

/* Points a client at another endpoint of its target (a new connection). */
static void hostile_retarget(hostile_t *h, const char *endpoint)
{
    hostile_disconnect(h);
    snprintf(h->endpoint, sizeof h->endpoint, "%s", endpoint);
    hostile_connect(h);
}

/* The client with C's keys floods B: 8,000 copies of a frame of the largest size on B's
 * endpoint, then 40,000 of the largest stream frame on its stream endpoint, as fast as libzmq
 * takes them. libzmq queues at most TRANSPORT_CONNECTION_BYTES for one connection on either
 * (TRANSPORT_LISTEN_QUEUED frames of the wire limit; TRANSPORT_STREAM_QUEUED stream frames);
 * before, it queued 20,000 frames of any size (5 GiB). B's memory stays under 256 MiB and it
 * keeps settling with A. A frame over the stream limit closes the connection it came on. */
static void test_frame_flood_memory(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b, *cc;
    int64_t before_kib = flood_from_c(c, &a, &b, &cc);
    hostile_t *h = hostile_open(cc, cc, b);
    int64_t started = mono_ms();
    size_t wire_len = flood_frames(h, CORRIDOR_BODY_BYTES_MAX, FRAME_FLOOD);
    hostile_sync(c, h, b); /* B has read every copy */
    int64_t elapsed_ms = mono_ms() - started;

    hostile_retarget(h, b->stream);
    started = mono_ms();
    size_t stream_len = flood_frames(h, CORRIDOR_STREAM_WIRE_BYTES_MAX - 1024, STREAM_FLOOD);
    assert_true(stream_len <= CORRIDOR_STREAM_WIRE_BYTES_MAX);
    hostile_sync(c, h, b);
    int64_t stream_ms = mono_ms() - started;
    /* one frame over the stream's limit there: B's libzmq closes that connection */
    void *monitor = nodes_monitor(zctx(), h->sock, ZMQ_EVENT_DISCONNECTED);
    (void)flood_frames(h, CORRIDOR_STREAM_WIRE_BYTES_MAX, 1);
    nodes_wait_event(monitor, ZMQ_EVENT_DISCONNECTED, WAIT_MS);
    zmq_close(monitor);
    hostile_close_all();
    int64_t peak_kib = peak_rss_kib(b->pid);
    printf("# %d copies of a %zu-byte frame in %lld ms (%.0f MiB/s), then %d of a %zu-byte "
           "stream frame in %lld ms (%.0f MiB/s): B's peak RSS %lld KiB (%lld before), %lld "
           "dropped\n",
           FRAME_FLOOD, wire_len, (long long)elapsed_ms,
           (double)FRAME_FLOOD * (double)wire_len / 1048576.0 /
               ((double)(elapsed_ms > 0 ? elapsed_ms : 1) / 1000.0),
           STREAM_FLOOD, stream_len, (long long)stream_ms,
           (double)STREAM_FLOOD * (double)stream_len / 1048576.0 /
               ((double)(stream_ms > 0 ? stream_ms : 1) / 1000.0),
           (long long)peak_kib, (long long)before_kib,
           (long long)node_peer_field(c, b, NAME_C, "dropped"));
    assert_true(node_peer_field(c, b, NAME_C, "received_seq") == 1);
    assert_true(!RSS_MEANINGFUL || peak_kib < RSS_LIMIT_KIB);
    ends_settling_and_clean(c, a, b);
}

#define UNREAD_LOAD    3000 /* entries: a one-digit range differs in ~190, answered in sub-ranges */
#define RSS_GROWTH_KIB (16 * 1024)

/* A peer that asks and never reads: a client with A's keys floods B with StatementRequests
 * (each answer about 192 KiB) while a sink holding A's transport keys takes B's connections to
 * A's endpoint and reads nothing. Before, the answers waited in the outbound queue of the
 * stream (20,000 frames: up to 3.75 GiB); now they travel on the statements lane, whose queue
 * holds TRANSPORT_STATEMENTS_QUEUED frames, and the rest are dropped (the requester asks
 * again). B's memory stays flat. */
static void test_unread_answers_bounded(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    char *batch = batch_of_ones(c, "load.csv", b, UNREAD_LOAD);
    cmd_result_t r;
    assert_int_equal(cluster_cmd(c, SEND_TIMEOUT_MS, &r, "send", "--home", a->home, "--batch",
                                 batch, "--wait", "60", NULL),
                     0);
    cmd_result_free(&r);
    free(batch);
    assert_int_equal(node_stop(c, a), 0);

    identity_t *keys = load_keys(a);
    void *sink = zmq_socket(zctx(), ZMQ_PULL);
    assert_non_null(sink);
    int on = 1, linger = 0, one = 1, small = 4096;
    assert_int_equal(zmq_setsockopt(sink, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(sink, ZMQ_RCVHWM, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(sink, ZMQ_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(zmq_setsockopt(sink, ZMQ_CURVE_SERVER, &on, sizeof on), 0);
    assert_int_equal(zmq_setsockopt(sink, ZMQ_CURVE_SECRETKEY, keys->curve_secret, KEY_CHARS), 0);
    assert_int_equal(zmq_bind(sink, a->endpoint), 0);
    identity_destroy(&keys);
    int64_t before_kib = peak_rss_kib(b->pid);
    int64_t started = mono_ms();
    flood_requests(a, b); /* 64 a second for REQUEST_FLOOD_MS, in this process */
    hostile_sync(c, hostile_open(a, a, b), b);
    int64_t elapsed_ms = mono_ms() - started;
    int64_t dropped = node_transport_counter(c, b, "statements_dropped");
    int64_t peak_kib = peak_rss_kib(b->pid);
    zmq_close(sink);
    hostile_close_all();
    printf("# %lld ms of requests from a peer that reads nothing: B's peak RSS %lld KiB (%lld "
           "before), %lld answers dropped as its statements lane was full\n",
           (long long)elapsed_ms, (long long)peak_kib, (long long)before_kib, (long long)dropped);
    assert_true(dropped > 0);
    assert_true(!RSS_MEANINGFUL || peak_kib - before_kib < RSS_GROWTH_KIB);
    node_start(c, a); /* the real A: nothing lost */
    settles_both_ways(c, a, b);
    json_t *lb = node_ledger(c, b);
    assert_int_equal(ledger_count(lb, "settled"), UNREAD_LOAD + 2);
    json_decref(lb);
    stop_pair_clean(c, a, b);
}

#define HANDSHAKE_FLOOD 400
#define HANDSHAKE_BATCH 50

/* A client with A's transport keys opens 400 connections to B as fast as it can (each would
 * get its own receive queue). B admits A's key at most TRANSPORT_HANDSHAKES_PER_S times a second
 * after a burst, refuses the rest, and keeps settling with the real A. */
static void test_handshakes_per_key_bounded(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    int64_t admitted = node_transport_counter(c, b, "admitted");
    int64_t started = mono_ms();
    identity_t *keys = load_keys(a);
    peer_card_t card;
    node_card(b, &card);
    for (int i = 0; i < HANDSHAKE_FLOOD; i += HANDSHAKE_BATCH) {
        void *batch[HANDSHAKE_BATCH];
        for (size_t k = 0; k < HANDSHAKE_BATCH; k++) {
            void *sock = zmq_socket(zctx(), ZMQ_PUSH);
            assert_non_null(sock);
            int linger = 0;
            assert_int_equal(zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger), 0);
            assert_int_equal(
                zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, card.curve_public, KEY_CHARS), 0);
            assert_int_equal(
                zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys->curve_public, KEY_CHARS), 0);
            assert_int_equal(
                zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys->curve_secret, KEY_CHARS), 0);
            assert_int_equal(zmq_connect(sock, b->endpoint), 0);
            batch[k] = sock;
        }
        sleep_ms(150); /* let the handshakes reach ZAP */
        for (size_t k = 0; k < HANDSHAKE_BATCH; k++) {
            zmq_close(batch[k]);
        }
    }
    identity_destroy(&keys);
    hostile_close_all(); /* ends the client's ZeroMQ context */
    int64_t elapsed_ms = mono_ms() - started;
    int64_t deadline = mono_ms() + WAIT_MS; /* B answers every handshake it was sent */
    while (node_transport_counter(c, b, "admitted") - admitted +
                   node_transport_counter(c, b, "throttled") <
               HANDSHAKE_FLOOD &&
           mono_ms() < deadline) {
        sleep_ms(50);
    }
    int64_t taken = node_transport_counter(c, b, "admitted") - admitted;
    int64_t throttled = node_transport_counter(c, b, "throttled");
    int64_t bound = TRANSPORT_HANDSHAKES_BURST +
                    TRANSPORT_HANDSHAKES_PER_S * ((mono_ms() - started) / 1000 + 1);
    printf("# %d connections with A's key in %lld ms: %lld admitted (bound %lld), %lld refused; "
           "B's peak RSS %lld KiB\n",
           HANDSHAKE_FLOOD, (long long)elapsed_ms, (long long)taken, (long long)bound,
           (long long)throttled, (long long)peak_rss_kib(b->pid));
    assert_true(throttled > 0);
    assert_true(taken <= bound);
    ends_settling_and_clean(c, a, b);
}

#define REWIND_HELLOS 100
#define QUEUED_FOR_A  300

/* Frames a sink socket has received, read without waiting. */
static int64_t drain_sink(void *sink)
{
    int64_t n = 0;
    char buf[64];
    while (zmq_recv(sink, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
        n++;
    }
    return n;
}

/* B has QUEUED_FOR_A settlements for A; A's process is down and a sink holding A's transport
 * keys takes what B sends to A's endpoints. A client with A's keys sends B Hellos consistent with
 * B's counters, each asking for everything again (reply_wanted), one every 20 ms. B sends its
 * window again at most CHANNEL_REWINDS_PER_S times a second after a burst of
 * CHANNEL_REWINDS_BURST; before, it did so for every Hello. */
static void test_full_retransmissions_bounded(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles_both_ways(c, a, b);
    assert_int_equal(node_stop(c, a), 0);
    char *batch = batch_of_ones(c, "to-a.csv", a, QUEUED_FOR_A);
    cmd_result_t r;
    assert_int_equal(
        cluster_cmd(c, SEND_TIMEOUT_MS, &r, "send", "--home", b->home, "--batch", batch, NULL), 0);
    cmd_result_free(&r);
    free(batch);
    int64_t acked = node_peer_field(c, b, NAME_A, "acked_seq");
    int64_t received = node_peer_field(c, b, NAME_A, "received_seq");
    int64_t in_flight = node_peer_field(c, b, NAME_A, "sent_seq") - acked;

    identity_t *keys = load_keys(a);
    void *sink = zmq_socket(zctx(), ZMQ_PULL);
    assert_non_null(sink);
    int on = 1, linger = 0;
    assert_int_equal(zmq_setsockopt(sink, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(sink, ZMQ_CURVE_SERVER, &on, sizeof on), 0);
    assert_int_equal(zmq_setsockopt(sink, ZMQ_CURVE_SECRETKEY, keys->curve_secret, KEY_CHARS), 0);
    assert_int_equal(zmq_bind(sink, a->endpoint), 0);
    assert_int_equal(zmq_bind(sink, a->stream), 0);
    identity_destroy(&keys);

    hostile_t *h = hostile_open(a, a, b);
    uint32_t versions[] = {1, 2};
    uint64_t incarnation = wall_us();
    int64_t frames = 0;
    for (uint64_t i = 1; i <= REWIND_HELLOS; i++) {
        Corridor__Hello hello = CORRIDOR__HELLO__INIT;
        hello.sent_sequence = (uint64_t)received;
        hello.applied_sequence = (uint64_t)acked;
        hello.acked_sequence = (uint64_t)received;
        hello.reply_wanted = true;
        hello.incarnation = incarnation;
        hello.counter = i;
        hello.n_versions = 2;
        hello.versions = versions;
        uint8_t buf[128];
        size_t len = corridor__hello__pack(&hello, buf);
        hostile_seal_send(h, NULL, MSG_HELLO, 0, buf, len);
        if (i == 1) { /* B is up and sending to the sink: the window arrives once */
            int64_t deadline = mono_ms() + WAIT_MS;
            while (frames < in_flight && mono_ms() < deadline) {
                frames += drain_sink(sink);
                sleep_ms(20);
            }
            assert_true(frames >= in_flight);
        }
        sleep_ms(20);
        frames += drain_sink(sink);
    }
    hostile_sync(c, h, b);
    frames += drain_sink(sink);
    zmq_close(sink); /* before the client's context ends: it waits for every socket */
    hostile_close_all();
    int64_t refused = node_peer_field(c, b, NAME_A, "rewinds_refused");
    int64_t resent = node_peer_field(c, b, NAME_A, "retransmits");
    printf("# %d Hellos asking for everything again, %lld messages in flight: the sink got %lld "
           "frames, B counts %lld sent again, %lld requests refused\n",
           REWIND_HELLOS, (long long)in_flight, (long long)frames, (long long)resent,
           (long long)refused);
    assert_true(refused > 0);
    /* the burst and about one a second over the 2 s of Hellos */
    assert_true(resent <= (int64_t)(CHANNEL_REWINDS_BURST + 4) * in_flight);
    /* A comes back: everything queued for it settles once */
    node_start(c, a);
    node_wait_peer_field(c, b, NAME_A, "outbox", 0, 60000);
    settles_both_ways(c, a, b);
    json_t *la = node_ledger(c, a);
    json_t *lb = node_ledger(c, b);
    assert_int_equal(ledger_count(la, "settled"), QUEUED_FOR_A + 4);
    assert_int_equal(ledger_count(lb, "settled"), QUEUED_FOR_A + 4);
    json_decref(la);
    json_decref(lb);
    stop_pair_clean(c, a, b);
}

/* ==== transport ============================================================================== */

#define FLOOD_CLIENTS 200
#define FLOOD_BATCH   50

static void test_connection_flood(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles(c, a, b);
    peer_card_t card;
    node_card(b, &card);
    int64_t refused = node_transport_counter(c, b, "refused");
    void *batch[FLOOD_BATCH];
    int64_t t0 = mono_ms(), slowest_ms = 0;
    for (size_t done = 0; done < FLOOD_CLIENTS; done += FLOOD_BATCH) {
        for (size_t i = 0; i < FLOOD_BATCH; i++) {
            char pub[KEY_CHARS + 1], sec[KEY_CHARS + 1];
            assert_int_equal(zmq_curve_keypair(pub, sec), 0);
            void *s = zmq_socket(zctx(), ZMQ_PUSH);
            assert_non_null(s);
            int linger = 0;
            assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
            assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, card.curve_public, KEY_CHARS),
                             0);
            assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, KEY_CHARS), 0);
            assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, KEY_CHARS), 0);
            assert_int_equal(zmq_connect(s, b->endpoint), 0);
            (void)zmq_send(s, "hello", 5, ZMQ_DONTWAIT); /* never connected: EAGAIN */
            batch[i] = s;
        }
        sleep_ms(150);         /* let the handshakes reach ZAP */
        int64_t t = mono_ms(); /* B answers while the clients are there */
        json_t *during = node_status(c, b);
        json_decref(during);
        slowest_ms = mono_ms() - t > slowest_ms ? mono_ms() - t : slowest_ms;
        for (size_t i = 0; i < FLOOD_BATCH; i++) {
            zmq_close(batch[i]);
        }
    }
    printf("# %d clients with unknown keys in %lld ms\n", FLOOD_CLIENTS,
           (long long)(mono_ms() - t0));
    /* B answers at once */
    int64_t t1 = mono_ms();
    json_t *st = node_status(c, b);
    json_decref(st);
    int64_t answered_ms = mono_ms() - t1;
    printf("# status answered in %lld ms during the flood (slowest), %lld ms after it\n",
           (long long)slowest_ms, (long long)answered_ms);
    assert_true(slowest_ms < 3000);
    assert_true(answered_ms < 3000);
    int64_t deadline = mono_ms() + WAIT_MS;
    while (node_transport_counter(c, b, "refused") - refused < FLOOD_CLIENTS / 2 &&
           mono_ms() < deadline) {
        sleep_ms(100);
    }
    int64_t counted = node_transport_counter(c, b, "refused") - refused;
    printf("# transport.refused counted %lld\n", (long long)counted);
    assert_true(counted >= FLOOD_CLIENTS / 2);
    assert_true(node_alive(b));
    hostile_close_all();
    ends_settling_and_clean(c, a, b);
}

/* ==== local input ============================================================================ */

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        n += *p == '\n';
    }
    return n;
}

/* `run` and `card` of the home refuse it with one line naming the file and the line
 * ("corridor.conf:N:" or "corridor.conf: line N"). */
static void expect_config_refused(cluster_t *c, tnode_t *n, int line, const char *extra)
{
    char colon[32], words[32];
    snprintf(colon, sizeof colon, "corridor.conf:%d", line);
    snprintf(words, sizeof words, "corridor.conf: line %d", line);
    const char *needles[] = {"corridor.conf", extra, NULL};
    const char *commands[] = {"run", "card"};
    for (size_t i = 0; i < 2; i++) {
        cmd_result_t r;
        int rc = cluster_cmd(c, 15000, &r, commands[i], "--home", n->home, NULL);
        assert_true(rc > 0);
        assert_int_equal(strlen(r.out), 0);
        char what[64];
        snprintf(what, sizeof what, "%s with a malformed config", commands[i]);
        expect_one_line(what, &r, needles);
        if (strstr(r.err, colon) == NULL && strstr(r.err, words) == NULL) {
            fail_msg("%s: stderr does not name line %d: %s", what, line, r.err);
        }
        cmd_result_free(&r);
    }
}

static void test_local_config_and_keys(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_started_pair(c, &a, &b);
    settles(c, a, b);
    assert_int_equal(node_stop(c, b), 0);
    char *conf = test_path(b->home, "corridor.conf");
    size_t conf_len = 0;
    char *original = nodes_read_file(conf, &conf_len);
    assert_non_null(original);
    int next_line = (int)count_lines(original) + 1;

    /* a garbage line */
    size_t size = conf_len + 512;
    char *broken = malloc(size);
    assert_non_null(broken);
    snprintf(broken, size, "%sthis line is not a setting\n", original);
    test_write_file(conf, broken, strlen(broken), 0600);
    expect_config_refused(c, b, next_line, NULL);
    /* a line over 198 bytes */
    char long_value[240];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    snprintf(broken, size, "%sremark = %s\n", original, long_value);
    test_write_file(conf, broken, strlen(broken), 0600);
    expect_config_refused(c, b, next_line, "198");
    test_write_file(conf, original, conf_len, 0600);
    free(broken);

    /* a key file readable by others */
    char *key = test_path(b->home, IDENTITY_KEY_FILE);
    assert_int_equal(chmod(key, 0644), 0);
    cmd_result_t r;
    const char *chmod_needles[] = {"chmod 600", NULL};
    assert_int_equal(cluster_cmd(c, 15000, &r, "run", "--home", b->home, NULL), 2);
    expect_one_line("run with a 0644 key file", &r, chmod_needles);
    cmd_result_free(&r);
    assert_int_equal(chmod(key, 0600), 0);

    /* homes and control sockets of another user */
    char *run_denied = NULL, *status_denied = NULL; /* checked last */
    const char *why = nobody_unavailable(c);
    if (why != NULL) {
        printf("# skipped: the cases of another user: %s\n", why);
    } else {
        struct passwd *pw = getpwnam("nobody");
        struct group *gr = getgrnam("nogroup");
        uid_t nobody_uid = pw->pw_uid;
        gid_t nogroup_gid = gr->gr_gid;
        /* the home belongs to nobody; root runs it: the key file is not root's */
        chown_tree(b->home, nobody_uid, nogroup_gid);
        const char *owner_needles[] = {"node.key", "another user", NULL};
        int rc = cluster_cmd(c, 15000, &r, "run", "--home", b->home, NULL);
        assert_true(rc > 0);
        expect_one_line("run as root of nobody's home", &r, owner_needles);
        cmd_result_free(&r);
        chown_tree(b->home, 0, 0);

        /* nobody runs root's 0700 home (the scratch directory lets it pass) */
        struct stat st;
        assert_int_equal(stat(c->dir, &st), 0);
        assert_int_equal(chmod(c->dir, 0711), 0);
        const char *run_args[] = {"run", "--home", b->home, NULL};
        rc = run_as_nobody(c, &r, run_args);
        assert_true(rc > 0);
        const char *home_needles[] = {b->home, NULL};
        expect_one_line("run as nobody of root's 0700 home", &r, home_needles);
        run_denied = strdup(r.err);
        cmd_result_free(&r);

        /* the control socket of a running node, reached by nobody */
        node_start(c, b);
        const char *status_args[] = {"status", "--home", b->home, "--json", NULL};
        rc = run_as_nobody(c, &r, status_args);
        assert_true(rc == 3 || rc == 5);
        assert_int_equal(strlen(r.out), 0);
        expect_one_line("status as nobody of root's running node", &r, home_needles);
        status_denied = strdup(r.err);
        cmd_result_free(&r);
        assert_int_equal(chmod(c->dir, st.st_mode & 07777), 0);
        assert_true(node_alive(b));
        json_t *status = node_status(c, b);
        json_decref(status);
        assert_int_equal(node_stop(c, b), 0);
    }
    node_start(c, b);
    settles_both_ways(c, a, b);

    /* the journal tampered while the node is stopped */
    assert_int_equal(node_stop(c, a), 0);
    char *db_path = test_path(a->home, "ledger.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    const char *bump = "UPDATE journal SET amount_minor = amount_minor + 1 WHERE seq = "
                       "(SELECT MIN(seq) FROM journal WHERE amount_minor <> 0)";
    assert_int_equal(sqlite3_exec(db, bump, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    int rc = cluster_cmd(c, 60000, &r, "audit", "--home", a->home, "--json", NULL);
    assert_int_equal(rc, 1);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    assert_false(json_is_true(json_object_get(doc, "ok")));
    bool chain = false;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "violations"), i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        chain = chain || (kind != NULL && strcmp(kind, "chain") == 0);
    }
    printf("# audit of the tampered journal: %.600s\n", r.out);
    assert_true(chain);
    json_decref(doc);
    cmd_result_free(&r);
    /* put the amount back: the chain verifies again */
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    const char *restore = "UPDATE journal SET amount_minor = amount_minor - 1 WHERE seq = "
                          "(SELECT MIN(seq) FROM journal WHERE amount_minor <> 0)";
    assert_int_equal(sqlite3_exec(db, restore, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    node_start(c, a);
    settles_both_ways(c, a, b);

    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    tnode_t *both[] = {a, b};
    audit_clean(c, both, 2);
    free(db_path);
    free(key);
    free(conf);
    free(original);
    /* `corridor run` as a user who may not read the home names the permission problem */
    bool run_clear = run_denied == NULL || strstr(run_denied, "ermission") != NULL;
    /* so does `corridor status` for a control socket the user may not reach */
    bool status_clear = status_denied == NULL || strstr(status_denied, "ermission") != NULL;
    if (!run_clear || !status_clear) {
        fail_msg("another user's refusals do not name the permission problem:%s%s%s%s",
                 run_clear ? "" : "\n#   run: ", run_clear ? "" : run_denied,
                 status_clear ? "" : "\n#   status: ", status_clear ? "" : status_denied);
    }
    free(run_denied);
    free(status_denied);
    c->passed = true;
}

/* Local access and who did what: `run` refuses a home that group or others may enter and a
 * control directory that is not private; a local user other than the node's own (and root)
 * is refused by the control socket's ZAP handler even when the files would let it connect;
 * a repair is a journal row naming the local user, listed by `corridor operations`. */
static void test_local_access_and_operations(void **state)
{
    cluster_t *c = *state;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    cmd_result_t r;
    const char *home_needles[] = {"chmod 700", NULL};
    assert_int_equal(chmod(b->home, 0755), 0);
    assert_int_equal(cluster_cmd(c, 15000, &r, "run", "--home", b->home, NULL), 2);
    expect_one_line("run of a 0755 home", &r, home_needles);
    cmd_result_free(&r);
    assert_int_equal(chmod(b->home, 0700), 0);
    char *control = test_path(b->home, "control");
    assert_int_equal(mkdir(control, 0755), 0);
    assert_int_equal(chmod(control, 0755), 0);
    const char *dir_needles[] = {"control", "chmod 700", NULL};
    assert_int_equal(cluster_cmd(c, 15000, &r, "run", "--home", b->home, NULL), 2);
    expect_one_line("run with a 0755 control directory", &r, dir_needles);
    cmd_result_free(&r);
    assert_int_equal(chmod(control, 0700), 0);

    node_start(c, a);
    node_start(c, b);
    settles_both_ways(c, a, b);
    const char *why = nobody_unavailable(c);
    if (why != NULL) {
        printf("# skipped: another user at the control socket: %s\n", why);
    } else {
        /* open every door on the way, as a careless operator might: the ZAP handler still
         * refuses nobody */
        struct stat st;
        assert_int_equal(stat(c->dir, &st), 0);
        char *socket_path = test_path(control, "socket");
        assert_int_equal(chmod(c->dir, 0711), 0);
        assert_int_equal(chmod(b->home, 0711), 0);
        assert_int_equal(chmod(control, 0711), 0);
        assert_int_equal(chmod(socket_path, 0777), 0);
        char *lock_path = test_path(b->home, "node.lock");
        assert_int_equal(chmod(lock_path, 0644), 0); /* so that the client tries to connect */
        const char *status_args[] = {"status", "--home", b->home, "--json", NULL};
        int rc = run_as_nobody(c, &r, status_args);
        printf("# status as nobody through open files exited %d: %.200s\n", rc, r.err);
        assert_int_equal(rc, 2);
        assert_int_equal(strlen(r.out), 0);
        const char *refused_needles[] = {"refused this user", NULL};
        expect_one_line("status as nobody through open files", &r, refused_needles);
        cmd_result_free(&r);
        assert_int_equal(chmod(lock_path, 0600), 0);
        free(lock_path);
        assert_int_equal(chmod(socket_path, 0700), 0);
        assert_int_equal(chmod(control, 0700), 0);
        assert_int_equal(chmod(b->home, 0700), 0);
        assert_int_equal(chmod(c->dir, st.st_mode & 07777), 0);
        free(socket_path);
        assert_true(node_transport_counter(c, b, "control_refused") >= 1);
        assert_true(node_log_contains(b, "refused a control connection from uid"));
    }

    assert_int_equal(cluster_cmd(c, SEND_TIMEOUT_MS, &r, "reconcile", "--home", b->home, "--peer",
                                 NAME_A, "--repair", "--json", NULL),
                     0);
    cmd_result_free(&r);
    assert_int_equal(cluster_cmd(c, 15000, &r, "operations", "--home", b->home, "--json", NULL), 0);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    json_t *ops = json_object_get(doc, "operations");
    assert_int_equal(json_array_size(ops), 1);
    json_t *record = json_object_get(json_array_get(ops, 0), "record");
    printf("# operations: %.300s\n", r.out);
    assert_int_equal(json_integer_value(json_object_get(record, "uid")), (json_int_t)geteuid());
    assert_string_equal(json_string_value(json_object_get(record, "action")), "repair");
    assert_string_equal(json_string_value(json_object_get(json_object_get(record, "args"), "peer")),
                        NAME_A);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ops, 0), "peer")), NAME_A);
    json_decref(doc);
    cmd_result_free(&r);
    free(control);
    ends_settling_and_clean(c, a, b);
}

#define DISK_FULL_ROUNDS     40
#define DISK_FULL_BATCH      100
#define DISK_FULL_FREE_BYTES (48 * 1024)

/* Fills the file system of `dir` with one file until about `leave` bytes remain. */
static void fill_disk(const char *dir, const char *path, uint64_t leave)
{
    struct statvfs vfs;
    assert_int_equal(statvfs(dir, &vfs), 0);
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    uint64_t want = avail > leave ? avail - leave : 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static char chunk[16384];
    memset(chunk, 0xA5, sizeof chunk);
    uint64_t written = 0;
    while (written < want) {
        size_t n = want - written < sizeof chunk ? (size_t)(want - written) : sizeof chunk;
        ssize_t w = write(fd, chunk, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break; /* full already */
        }
        written += (uint64_t)w;
    }
    assert_int_equal(close(fd), 0);
    assert_int_equal(statvfs(dir, &vfs), 0);
    printf("# filler of %llu bytes, %llu bytes left\n", (unsigned long long)written,
           (unsigned long long)vfs.f_bavail * vfs.f_frsize);
}

static void test_disk_full(void **state)
{
    cluster_t *c = *state;
    char *dir = test_path(c->dir, NAME_B); /* B's home is the tmpfs itself */
    assert_int_equal(mkdir(dir, 0700), 0);
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0700") != 0) {
        printf("# skipped: cannot mount tmpfs: %s\n", strerror(errno));
        free(dir);
        c->passed = true;
        skip();
    }
    mounted_dir = dir;
    tnode_t *a, *b;
    cluster_pair(c, NODES_GENEROUS_CAPS, &a, &b);
    assert_string_equal(b->home, dir);
    node_start(c, a);
    node_start(c, b);
    settles_both_ways(c, a, b);
    char *filler = test_path(dir, "filler");
    fill_disk(dir, filler, DISK_FULL_FREE_BYTES);

    /* A pays B until B's ledger cannot grow */
    bool stopped = false;
    for (int round = 0; round < DISK_FULL_ROUNDS && !stopped; round++) {
        char file[32];
        snprintf(file, sizeof file, "full-%d.csv", round);
        char *path = test_path(c->dir, file);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "to,amount,currency,uetr,remittance\n");
        for (int i = 0; i < DISK_FULL_BATCH; i++) {
            char uetr[UETR_SIZE];
            uetr_generate(uetr);
            fprintf(f, "%s,2.50,RUB,%s,disk full round %d item %d padding padding padding\n",
                    NAME_B, uetr, round, i);
            book_settled(c, 0, 1, uetr);
        }
        assert_int_equal(fclose(f), 0);
        cmd_result_t r;
        int rc =
            cluster_cmd(c, SEND_TIMEOUT_MS, &r, "send", "--home", a->home, "--batch", path, NULL);
        if (rc != 0) {
            printf("# send --batch at A exited %d: %s\n", rc, r.err);
        }
        assert_int_equal(rc, 0);
        cmd_result_free(&r);
        free(path);
        int64_t deadline = mono_ms() + 5000;
        while (!stopped && mono_ms() < deadline) {
            assert_true(node_alive(b));
            json_t *st = node_status(c, b);
            stopped = json_is_true(json_object_get(st, "ledger_stopped"));
            json_t *pa = status_peer(st, NAME_A);
            bool caught_up = pa != NULL && json_integer_value(json_object_get(pa, "held")) == 0 &&
                             node_peer_field(c, a, NAME_B, "outbox") == 0;
            json_decref(st);
            if (caught_up) {
                break;
            }
            sleep_ms(100);
        }
        if (!stopped) {
            json_t *st = node_status(c, b);
            stopped = json_is_true(json_object_get(st, "ledger_stopped"));
            json_decref(st);
        }
        printf("# round %d: B's ledger %s\n", round, stopped ? "STOPPED" : "still writing");
    }
    if (!stopped) {
        fail_msg("B's ledger never stopped on a full disk after %d settlements",
                 DISK_FULL_ROUNDS * DISK_FULL_BATCH);
    }
    node_wait_log(b, "LEDGER STOPPED", 1, WAIT_MS);
    /* B refuses new work with a clear error, and does not crash */
    cmd_result_t r;
    int rc = node_send(c, b, a, "1.00", "RUB", NULL, NULL, &r);
    assert_int_equal(rc, 5);
    const char *needles[] = {"refused", NULL};
    expect_one_line("send at B with its ledger stopped", &r, needles);
    cmd_result_free(&r);
    /* A keeps retransmitting meanwhile: B takes a retransmission (it holds the message, or
     * drops it as one it holds already) and survives it */
    int64_t taken =
        node_peer_field(c, b, NAME_A, "dropped") + node_peer_field(c, b, NAME_A, "held");
    int64_t deadline = mono_ms() + 2 * CHANNEL_RTO_MAX_MS;
    while (node_peer_field(c, b, NAME_A, "dropped") + node_peer_field(c, b, NAME_A, "held") <=
           taken) {
        if (mono_ms() >= deadline) {
            fail_msg("B took no message from A again within %d ms", 2 * CHANNEL_RTO_MAX_MS);
        }
        sleep_ms(100);
    }
    assert_true(node_alive(b));
    json_t *st = node_status(c, b);
    assert_true(json_is_true(json_object_get(st, "ledger_stopped")));
    json_decref(st);

    /* room again: B restarts and settles everything exactly once */
    assert_int_equal(node_stop(c, b), 0);
    assert_int_equal(unlink(filler), 0);
    node_start(c, b);
    tnode_t *both[] = {a, b};
    cluster_quiesce(c, both, 2, QUIESCE_MS);
    settles_both_ways(c, a, b);
    book_check(c);
    assert_int_equal(node_stop(c, a), 0);
    assert_int_equal(node_stop(c, b), 0);
    audit_clean(c, both, 2);
    free(filler);
    c->passed = true;
}

int main(void)
{
    if (!nodes_test_init()) { /* CORRIDOR_TEST_FILTER=test_disk* runs only the matching tests */
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_captured_settlement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forwarded_and_misaddressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_of_another_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_far_future_sequences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_acknowledgements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_text_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_sequence_desync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_repair_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebase_claims_need_proof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebase_without_stored_proof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_report_must_name_our_settlement, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hold_window_bounded_in_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_flood_slowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_proposals_do_not_pile_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_requests_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_flood_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_answers_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshakes_per_key_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_retransmissions_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_access_and_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_config_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
