/*
 * Unit tests for node/channel/channel.c, in one process: two channels over two real ledgers,
 * joined by a simulated link that seals and opens real envelopes, driven turn by turn the way
 * node/engine/engine.c drives them (open and receive, apply inside a ledger transaction,
 * commit, then channel_after_commit) on a simulated clock.
 *
 * The channel is what makes a payment happen exactly once between two banks: a settlement
 * must be booked at the payee once and only once, and its outcome reach the payer, whatever
 * the link does to the frames (duplicates them, drops them, reorders them, goes silent for a
 * while) and even when the payer restarts in between. The link here does each of these on
 * purpose, deterministically, so that a failure can be replayed.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "channel.h"
#include "corridor.pb-c.h"
#include "config.h"
#include "cycle.h"
#include "cycles.h"
#include "envelope.h"
#include "fx.h"
#include "identity.h"
#include "keyannounce.h"
#include "ledger.h"
#include "ledger_db.h"
#include "replace.h"
#include "settlement.h"
#include "validate.h"

#define NAME_A     "BKRURUMM"
#define NAME_B     "BMJIIRTH"
#define CAP        INT64_C(100000000)
#define TURN_MS    50
#define WALL_START INT64_C(1700000000000)
#define FRAMES_MAX 4096

enum { A = 0, B = 1 };

/* ---- the simulated link --------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len;
    msg_type_t type;
} frame_t;

/* What the link does to a frame: deliver it `copies` times (0: drop it). */
typedef int (*policy_fn)(void *arg, int from, msg_type_t type, unsigned nth);

typedef struct node node_t;
typedef struct net net_t;

/* A StatusReport as the node that received it opened it. */
typedef struct {
    char uetr[CORRIDOR_UETR_LEN + 1];
    char status[8];
    char reason[8];
    uint8_t settlement_hash[SETTLEMENT_HASH_BYTES];
    bool hashed;
} report_seen_t;

struct node {
    net_t *net;
    int who;
    char name[CORRIDOR_NAME_LEN_MAX + 1];
    identity_t *id;
    identity_t *id_previous; /* its keys before a rotation, or NULL */
    config_t *config;
    envelope_peer_t *keys; /* one: the other node, in sodium memory */
    ledger_t *ledger;
    char *dir;
    channel_t *ch;
    uint64_t incarnation;
    frame_t inbox[FRAMES_MAX]; /* frames on their way to this node */
    size_t inbox_count;
    unsigned sent_of_type[MSG_TYPE_MAX + 1]; /* frames this node handed to the link */
    unsigned opened_of_type[MSG_TYPE_MAX + 1];
    unsigned duplicates_dropped; /* ENV_E_DUPLICATE: already applied, not even verified */
    unsigned revoked_dropped;    /* ENV_E_REVOKED: under a key our operator replaced */
    unsigned finals;             /* on_final calls */
    ledger_outcome_t last_final;
    channel_screen_t screen;   /* what this node's screening says of every payment */
    unsigned held_calls;       /* on_held calls */
    report_seen_t reports[64]; /* the StatusReports this node opened, in order */
    size_t reports_count;
};

struct net {
    node_t node[2];
    int64_t now_ms;
    policy_fn policy;
    void *policy_arg;
    bool reverse_inbox;   /* deliver each turn's frames last first */
    bool cut;             /* the link drops everything */
    bool stash_a_control; /* A's Acks and Hellos wait in `stash`, in order */
    frame_t stash[64];
    size_t stash_count;
};

static node_t *other(node_t *n)
{
    return &n->net->node[1 - n->who];
}

static void frame_copy(frame_t *f, msg_type_t type, const uint8_t *wire, size_t len)
{
    f->data = malloc(len);
    assert_non_null(f->data);
    memcpy(f->data, wire, len);
    f->len = len;
    f->type = type;
}

static int link_send(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len)
{
    node_t *n = arg;
    assert_int_equal(peer_index, 0);
    assert_true(type >= MSG_TYPE_MIN && type <= MSG_TYPE_MAX);
    unsigned nth = n->sent_of_type[type]++;
    net_t *net = n->net;
    int copies = net->cut              ? 0
                 : net->policy != NULL ? net->policy(net->policy_arg, n->who, type, nth)
                                       : 1;
    node_t *to = other(n);
    if (net->stash_a_control && n->who == A && (type == MSG_ACK || type == MSG_HELLO)) {
        assert_true(net->stash_count < sizeof net->stash / sizeof net->stash[0]);
        frame_copy(&net->stash[net->stash_count++], type, wire, len);
        return 0;
    }
    for (int i = 0; i < copies; i++) {
        assert_true(to->inbox_count < FRAMES_MAX);
        frame_copy(&to->inbox[to->inbox_count++], type, wire, len);
    }
    return 0;
}

static void on_final(void *arg, const char *peer, const char *uetr, const ledger_outcome_t *o)
{
    node_t *n = arg;
    (void)peer;
    (void)uetr;
    n->finals++;
    n->last_final = *o;
}

static channel_screen_t node_screen(void *arg, const settlement_t *s)
{
    (void)s;
    return ((node_t *)arg)->screen;
}

static void node_on_held(void *arg, const char *peer, const char *uetr)
{
    (void)peer;
    (void)uetr;
    ((node_t *)arg)->held_calls++;
}

static void open_channel(node_t *n)
{
    channel_ctx_t ctx = {
        .self = n->id,
        .self_previous = n->id_previous,
        .config = n->config,
        .ledger = n->ledger,
        .send = link_send,
        .on_final = on_final,
        .on_statement = NULL,
        .screen = node_screen,
        .on_held = node_on_held,
        .arg = n,
        .node_name = n->name,
        .incarnation = n->incarnation,
    };
    n->ch = channel_new(&ctx, 0, &n->config->peers[0], n->keys, n->net->now_ms);
    assert_non_null(n->ch);
    n->keys->applied_through = channel_applied_seq(n->ch);
}

static net_t *net_new(void)
{
    net_t *net = calloc(1, sizeof *net);
    assert_non_null(net);
    net->now_ms = 1000;
    static const char *const names[2] = {NAME_A, NAME_B};
    for (int i = 0; i < 2; i++) {
        node_t *n = &net->node[i];
        n->net = net;
        n->who = i;
        snprintf(n->name, sizeof n->name, "%s", names[i]);
        n->id = test_fixed_identity((uint8_t)(i + 1));
        n->incarnation = 1000000 + (uint64_t)i;
    }
    for (int i = 0; i < 2; i++) {
        node_t *n = &net->node[i];
        n->config = config_new();
        assert_non_null(n->config);
        snprintf(n->config->name, sizeof n->config->name, "%s", n->name);
        char err[200];
        assert_int_equal(config_set_currencies(n->config, "RUB,IRR", err, sizeof err), CONFIG_OK);
        n->config->peers_count = 1;
        config_peer_t *p = &n->config->peers[0];
        identity_card(net->node[1 - i].id, net->node[1 - i].name, "tcp://127.0.0.1:7000", &p->card);
        assert_int_equal(config_peer_set_limit(p, "RUB", CAP), CONFIG_OK);
        assert_int_equal(config_peer_set_limit(p, "IRR", CAP), CONFIG_OK);
        n->keys = sodium_malloc(sizeof *n->keys);
        assert_non_null(n->keys);
        assert_int_equal(envelope_peer_init(n->keys, n->id, &p->card), ENV_OK);
        n->dir = test_tmpdir();
        char *path = test_path(n->dir, LEDGER_FILE);
        ledger_err_t rc =
            ledger_open(path, n->name, LEDGER_READ_WRITE, NULL, &n->ledger, err, sizeof err);
        free(path);
        if (rc != LEDGER_OK) {
            fail_msg("ledger_open: %s (%s)", ledger_strerror(rc), err);
        }
        ledger_set_clock(n->ledger, WALL_START);
        open_channel(n);
    }
    return net;
}

static void clear_inbox(node_t *n)
{
    for (size_t i = 0; i < n->inbox_count; i++) {
        free(n->inbox[i].data);
    }
    n->inbox_count = 0;
}

static void net_free(net_t *net)
{
    for (int i = 0; i < 2; i++) {
        node_t *n = &net->node[i];
        channel_destroy(&n->ch);
        ledger_close(&n->ledger);
        envelope_peer_wipe(n->keys);
        sodium_free(n->keys);
        config_destroy(&n->config);
        identity_destroy(&n->id);
        identity_destroy(&n->id_previous);
        clear_inbox(n);
        test_rmtree(n->dir);
        free(n->dir);
    }
    free(net);
}

static void note_report(node_t *n, const envelope_message_t *msg)
{
    if (msg->type != MSG_STATUS_REPORT ||
        n->reports_count == sizeof n->reports / sizeof n->reports[0]) {
        return;
    }
    Corridor__StatusReport *sr = corridor__status_report__unpack(NULL, msg->body_len, msg->body);
    assert_non_null(sr);
    report_seen_t *r = &n->reports[n->reports_count++];
    memset(r, 0, sizeof *r);
    snprintf(r->uetr, sizeof r->uetr, "%s", sr->uetr);
    snprintf(r->status, sizeof r->status, "%s", sr->status);
    snprintf(r->reason, sizeof r->reason, "%s", sr->reason);
    if (sr->settlement_hash.len == SETTLEMENT_HASH_BYTES) {
        memcpy(r->settlement_hash, sr->settlement_hash.data, SETTLEMENT_HASH_BYTES);
        r->hashed = true;
    }
    corridor__status_report__free_unpacked(sr, NULL);
}

/* One loop turn of one node, as engine.c runs it: the frames that arrived, in order (or
 * reversed), then a transaction when there is work (with `work` first), then after the
 * commit. */
typedef void (*work_fn)(node_t *n, void *arg);

static void node_turn(node_t *n, work_fn work, void *arg)
{
    int64_t now = n->net->now_ms;
    size_t count = n->inbox_count;
    frame_t frames[FRAMES_MAX];
    memcpy(frames, n->inbox, count * sizeof *frames);
    n->inbox_count = 0;
    for (size_t k = 0; k < count; k++) {
        frame_t *f = &frames[n->net->reverse_inbox ? count - 1 - k : k];
        envelope_message_t msg;
        env_err_t rc = envelope_open(f->data, f->len, n->id, n->keys, 1, &msg);
        if (rc == ENV_E_DUPLICATE && msg.peer_index == 0) {
            n->duplicates_dropped++;
            channel_note_duplicate(n->ch);
            free(f->data);
            continue;
        }
        if (rc == ENV_E_REVOKED) { /* the engine logs it and drops it */
            n->revoked_dropped++;
            free(f->data);
            continue;
        }
        if (rc != ENV_OK) {
            fail_msg("%s could not open a %s frame: %s", n->name, msg_type_name((int)f->type),
                     env_strerror(rc));
        }
        free(f->data);
        n->opened_of_type[msg.type]++;
        note_report(n, &msg);
        channel_receive(n->ch, &msg, now);
    }
    if (work != NULL || channel_has_work(n->ch, now)) {
        assert_int_equal(ledger_begin(n->ledger), LEDGER_OK);
        if (work != NULL) {
            work(n, arg);
        }
        assert_int_equal(channel_apply(n->ch, now), LEDGER_OK);
        assert_int_equal(ledger_commit(n->ledger), LEDGER_OK);
    }
    channel_after_commit(n->ch, now);
    n->keys->applied_through = channel_applied_seq(n->ch);
}

/* Both nodes take a turn, then the clock moves on. */
static void net_turn(net_t *net)
{
    node_turn(&net->node[A], NULL, NULL);
    node_turn(&net->node[B], NULL, NULL);
    net->now_ms += TURN_MS;
}

/* Runs turns until `done` or `max_ms` of simulated time; returns whether it got done. */
static bool run_until(net_t *net, bool (*done)(net_t *net, void *arg), void *arg, int64_t max_ms)
{
    int64_t end = net->now_ms + max_ms;
    while (net->now_ms < end) {
        if (done(net, arg)) {
            return true;
        }
        net_turn(net);
    }
    return done(net, arg);
}

static bool both_up(net_t *net, void *arg)
{
    (void)arg;
    return channel_stats(net->node[A].ch).state == CHANNEL_UP &&
           channel_stats(net->node[B].ch).state == CHANNEL_UP;
}

static void bring_up(net_t *net)
{
    if (!run_until(net, both_up, NULL, 10000)) {
        fail_msg("channels not up: A %s, B %s",
                 channel_state_name(channel_stats(net->node[A].ch).state),
                 channel_state_name(channel_stats(net->node[B].ch).state));
    }
}

/* ---- payments ------------------------------------------------------------------------------- */

static settlement_t make_payment(const node_t *payer, const char *currency, int64_t amount)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "%s", payer->config->peers[0].card.name);
    s.direction = DIRECTION_OUT;
    uetr_generate(s.uetr);
    s.amount_minor = amount;
    snprintf(s.currency, sizeof s.currency, "%s", currency);
    snprintf(s.value_date, sizeof s.value_date, "2024-03-01");
    snprintf(s.debtor_name, sizeof s.debtor_name, "OOO Romashka");
    snprintf(s.creditor_name, sizeof s.creditor_name, "Pars Trading Co");
    s.created_unix_ms = WALL_START;
    assert_int_equal(settlement_check(&s), REASON_NONE);
    return s;
}

typedef struct {
    const settlement_t *items;
    size_t count;
} batch_t;

static void send_work(node_t *n, void *arg)
{
    const batch_t *b = arg;
    for (size_t i = 0; i < b->count; i++) {
        ledger_outcome_t o;
        assert_int_equal(channel_send_settlement(n->ch, &b->items[i], &o), LEDGER_OK);
        assert_int_equal(o.status, STATUS_PENDING);
    }
}

/* The payer queues the payments in one transaction of its turn. */
static void pay(net_t *net, int payer, const settlement_t *items, size_t count)
{
    batch_t b = {items, count};
    node_turn(&net->node[payer], send_work, &b);
}

static status_t status_at(node_t *n, const char *uetr)
{
    settlement_t s;
    ledger_outcome_t o;
    ledger_err_t rc = ledger_find(n->ledger, n->config->peers[0].card.name, uetr, &s, &o);
    return rc == LEDGER_OK ? o.status : (status_t)-1;
}

typedef struct {
    int payer;
    const settlement_t *items;
    size_t count;
} final_wait_t;

/* Every payment final at the payer, and the payee's Ack for it received. */
static bool all_final(net_t *net, void *arg)
{
    const final_wait_t *w = arg;
    node_t *payer = &net->node[w->payer];
    for (size_t i = 0; i < w->count; i++) {
        if (status_at(payer, w->items[i].uetr) == STATUS_PENDING) {
            return false;
        }
    }
    channel_stats_t a = channel_stats(net->node[A].ch), b = channel_stats(net->node[B].ch);
    return a.acked_seq == a.sent_seq && b.acked_seq == b.sent_seq;
}

static void settle(net_t *net, int payer, const settlement_t *items, size_t count, int64_t max_ms)
{
    final_wait_t w = {payer, items, count};
    if (!run_until(net, all_final, &w, max_ms)) {
        channel_stats_t a = channel_stats(net->node[A].ch), b = channel_stats(net->node[B].ch);
        fail_msg("not final after %lld ms: A sent %llu acked %llu applied %llu, B sent %llu "
                 "acked %llu applied %llu",
                 (long long)max_ms, (unsigned long long)a.sent_seq, (unsigned long long)a.acked_seq,
                 (unsigned long long)a.applied_seq, (unsigned long long)b.sent_seq,
                 (unsigned long long)b.acked_seq, (unsigned long long)b.applied_seq);
    }
}

static int64_t net_of(node_t *n, const char *currency)
{
    int64_t net = 0, pending = 0;
    assert_int_equal(
        ledger_position(n->ledger, n->config->peers[0].card.name, currency, &net, &pending),
        LEDGER_OK);
    assert_int_equal(pending, 0); /* nothing left in flight */
    return net;
}

static ledger_counts_t counts_at(node_t *n)
{
    ledger_counts_t c;
    assert_int_equal(ledger_counts(n->ledger, &c), LEDGER_OK);
    return c;
}

static uint64_t rows_of(node_t *n)
{
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(n->ledger, head, &rows), LEDGER_OK);
    return rows;
}

/* Each payment settled once at both ends: statuses, the mirrored positions, the counts. */
static void assert_settled_once(net_t *net, int payer, const settlement_t *items, size_t count,
                                int64_t total)
{
    node_t *p = &net->node[payer], *q = &net->node[1 - payer];
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(status_at(p, items[i].uetr), STATUS_SETTLED);
        assert_int_equal(status_at(q, items[i].uetr), STATUS_SETTLED);
    }
    assert_int_equal(net_of(p, "RUB"), -total);
    assert_int_equal(net_of(q, "RUB"), total);
    assert_int_equal(counts_at(q).settled, count);
    assert_int_equal(counts_at(p).settled, count);
    /* one journal row per booking at the payee, pending and posted at the payer: no
     * settlement was recorded twice */
    assert_int_equal(rows_of(q), count);
    assert_int_equal(rows_of(p), 2 * count);
    /* the payee applied exactly the payer's messages, each once */
    assert_int_equal(channel_applied_seq(q->ch), channel_sent_seq(p->ch));
    assert_int_equal(channel_applied_seq(p->ch), channel_sent_seq(q->ch));
}

/* ---- link policies -------------------------------------------------------------------------- */

static int duplicate_everything(void *arg, int from, msg_type_t type, unsigned nth)
{
    (void)arg;
    (void)from;
    (void)type;
    (void)nth;
    return 2;
}

/* Drops the first `count` frames of `type` sent by `from`. */
typedef struct {
    int from;
    msg_type_t type;
    unsigned count;
} drop_first_t;

static int drop_first(void *arg, int from, msg_type_t type, unsigned nth)
{
    const drop_first_t *d = arg;
    return from == d->from && type == d->type && nth < d->count ? 0 : 1;
}

/* Drops several kinds at once. */
typedef struct {
    drop_first_t rules[4];
    size_t n;
} drops_t;

static int drop_rules(void *arg, int from, msg_type_t type, unsigned nth)
{
    const drops_t *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        const drop_first_t *r = &d->rules[i];
        if (from == r->from && type == r->type && nth < r->count) {
            return 0;
        }
    }
    return 1;
}

/* A seeded lossy link: drops, duplicates and triplicates, the same on every run. */
typedef struct {
    uint64_t state;
    unsigned drop_pct, dup_pct;
} lossy_t;

static unsigned next_random(lossy_t *l)
{
    l->state = l->state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(l->state >> 33);
}

static int lossy(void *arg, int from, msg_type_t type, unsigned nth)
{
    (void)from;
    (void)type;
    (void)nth;
    lossy_t *l = arg;
    unsigned r = next_random(l) % 100;
    if (r < l->drop_pct) {
        return 0;
    }
    if (r < l->drop_pct + l->dup_pct) {
        return 2 + (int)(next_random(l) % 2);
    }
    return 1;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(channel_state_name(CHANNEL_DOWN), "down");
    assert_string_equal(channel_state_name(CHANNEL_UP), "up");
    assert_string_equal(channel_state_name(CHANNEL_DIVERGED), "diverged");
}

static void test_hello_exchange_brings_both_up(void **state)
{
    (void)state;
    net_t *net = net_new();
    assert_int_equal(channel_stats(net->node[A].ch).state, CHANNEL_DOWN);
    assert_int_equal(channel_stats(net->node[B].ch).state, CHANNEL_DOWN);
    /* the first turn sends each side's Hello at once; the replies bring both up */
    bring_up(net);
    assert_true(net->now_ms <= 1000 + 4 * TURN_MS);
    assert_true(net->node[A].sent_of_type[MSG_HELLO] >= 1);
    assert_true(net->node[B].opened_of_type[MSG_HELLO] >= 1);
    /* both offered versions 1 and 2: they sign with the newest */
    assert_int_equal(channel_wire_version(net->node[A].ch), INNER_VERSION_MAX);
    assert_int_equal(channel_wire_version(net->node[B].ch), INNER_VERSION_MAX);
    assert_false(channel_is_diverged(net->node[A].ch));
    /* heartbeats keep it up through a long quiet spell */
    for (int i = 0; i < 400; i++) { /* 20 s */
        net_turn(net);
    }
    assert_true(both_up(net, NULL));
    net_free(net);
}

static void test_silence_takes_a_channel_down_and_hello_back_up(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    net->cut = true;
    for (int64_t t = 0; t <= CHANNEL_LIVENESS_MS + 2 * TURN_MS; t += TURN_MS) {
        net_turn(net);
    }
    assert_int_equal(channel_stats(net->node[A].ch).state, CHANNEL_DOWN);
    assert_int_equal(channel_stats(net->node[B].ch).state, CHANNEL_DOWN);
    net->cut = false;
    bring_up(net);
    net_free(net);
}

static void test_settlement_applied_once(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    settlement_t s = make_payment(&net->node[A], "RUB", 125000);
    pay(net, A, &s, 1);
    assert_int_equal(status_at(&net->node[A], s.uetr), STATUS_PENDING);
    settle(net, A, &s, 1, 5000);
    assert_settled_once(net, A, &s, 1, 125000);
    assert_int_equal(net->node[A].finals, 1);
    assert_int_equal(net->node[A].last_final.status, STATUS_SETTLED);
    assert_int_equal(net->node[B].opened_of_type[MSG_SETTLEMENT], 1);
    net_free(net);
}

static void test_duplicated_frames_applied_once(void **state)
{
    (void)state;
    net_t *net = net_new();
    net->policy = duplicate_everything;
    bring_up(net);
    settlement_t s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = make_payment(&net->node[A], "RUB", 1000 * (i + 1));
    }
    pay(net, A, s, 3);
    settle(net, A, s, 3, 5000);
    /* every Settlement reached B twice (the second copy as a duplicate of what it applied,
     * or held twice in one turn), and was applied once */
    node_t *b = &net->node[B];
    assert_true(b->opened_of_type[MSG_SETTLEMENT] + b->duplicates_dropped >= 6);
    assert_settled_once(net, A, s, 3, 6000);
    assert_int_equal(net->node[A].finals, 3);
    net_free(net);
}

static void test_dropped_settlement_retransmitted(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    drop_first_t d = {A, MSG_SETTLEMENT, 1};
    net->policy = drop_first;
    net->policy_arg = &d;
    settlement_t s = make_payment(&net->node[A], "RUB", 700);
    pay(net, A, &s, 1);
    for (int i = 0; i < 10; i++) { /* well under the retransmission timeout */
        net_turn(net);
    }
    assert_int_equal(status_at(&net->node[B], s.uetr), (status_t)-1); /* never arrived */
    settle(net, A, &s, 1, 5000);
    assert_true(channel_stats(net->node[A].ch).retransmits >= 1);
    assert_settled_once(net, A, &s, 1, 700);
    net_free(net);
}

static void test_lost_answer_and_ack_resend_applies_once(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    /* B applies the Settlement, but its Ack and its StatusReport are lost: A sends the
     * Settlement again, B must not book it twice, and its StatusReport comes again */
    drops_t d = {.rules = {{B, MSG_ACK, 3}, {B, MSG_STATUS_REPORT, 1}}, .n = 2};
    net->policy = drop_rules;
    net->policy_arg = &d;
    settlement_t s = make_payment(&net->node[A], "RUB", 4200);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    assert_true(channel_stats(net->node[A].ch).retransmits >= 1);
    node_t *b = &net->node[B];
    /* the copy came back to B after it had applied it */
    assert_true(b->opened_of_type[MSG_SETTLEMENT] + b->duplicates_dropped >= 2);
    assert_true(channel_stats(net->node[B].ch).retransmits >= 1); /* its StatusReport */
    assert_settled_once(net, A, &s, 1, 4200);
    assert_int_equal(net->node[A].finals, 1);
    net_free(net);
}

static void test_reordered_frames_applied_in_order(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    net->reverse_inbox = true; /* each turn's frames arrive last first */
    settlement_t s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = make_payment(&net->node[A], "RUB", 10 + i);
    }
    pay(net, A, s, 5);
    settle(net, A, s, 5, 10000);
    assert_settled_once(net, A, s, 5, 10 + 11 + 12 + 13 + 14);
    net_free(net);
}

static void test_payer_restart_before_answer(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    /* A queues a payment and "crashes" before anything is sent: its channel is rebuilt from the
     * ledger with a new incarnation, and the payment still goes out, once */
    node_t *a = &net->node[A];
    net->cut = true;
    settlement_t s = make_payment(a, "RUB", 999);
    pay(net, A, &s, 1);
    clear_inbox(&net->node[B]);
    channel_destroy(&a->ch);
    a->incarnation += 1000;
    net->cut = false;
    open_channel(a);
    assert_int_equal(channel_sent_seq(a->ch), 1); /* loaded from the ledger */
    settle(net, A, &s, 1, 10000);
    assert_settled_once(net, A, &s, 1, 999);
    net_free(net);
}

static void test_payee_restart_after_apply(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    /* B applies and commits, then restarts before its Ack leaves: the Settlement comes again
     * and B, knowing from its ledger what it applied, does not book it twice */
    drops_t d = {.rules = {{B, MSG_ACK, 100}, {B, MSG_STATUS_REPORT, 100}}, .n = 2};
    net->policy = drop_rules;
    net->policy_arg = &d;
    settlement_t s = make_payment(&net->node[A], "RUB", 31337);
    pay(net, A, &s, 1);
    node_t *b = &net->node[B];
    for (int i = 0; i < 5 && channel_applied_seq(b->ch) == 0; i++) {
        net_turn(net);
    }
    assert_int_equal(channel_applied_seq(b->ch), 1);
    channel_destroy(&b->ch);
    b->incarnation += 1000;
    open_channel(b);
    assert_int_equal(channel_applied_seq(b->ch), 1);
    net->policy = NULL;
    settle(net, A, &s, 1, 15000);
    assert_settled_once(net, A, &s, 1, 31337);
    net_free(net);
}

/* Payments both ways, n each (A's in RUB totalling total_a, B's in IRR totalling total_b),
 * each settled once at both ends: statuses, mirrored positions, one booking each, and the
 * peer applied exactly what the other sent. */
static void assert_both_ways_once(net_t *net, const settlement_t *from_a,
                                  const settlement_t *from_b, size_t n, int64_t total_a,
                                  int64_t total_b)
{
    node_t *a = &net->node[A], *b = &net->node[B];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status_at(a, from_a[i].uetr), STATUS_SETTLED);
        assert_int_equal(status_at(b, from_a[i].uetr), STATUS_SETTLED);
        assert_int_equal(status_at(a, from_b[i].uetr), STATUS_SETTLED);
        assert_int_equal(status_at(b, from_b[i].uetr), STATUS_SETTLED);
    }
    assert_int_equal(net_of(a, "RUB"), -total_a);
    assert_int_equal(net_of(b, "RUB"), total_a);
    assert_int_equal(net_of(a, "IRR"), total_b);
    assert_int_equal(net_of(b, "IRR"), -total_b);
    assert_int_equal(counts_at(a).settled, 2 * n);
    assert_int_equal(counts_at(b).settled, 2 * n);
    assert_int_equal(rows_of(a), 3 * n); /* its own: pending, posted; the peer's: booked */
    assert_int_equal(rows_of(b), 3 * n);
    assert_int_equal(channel_applied_seq(b->ch), channel_sent_seq(a->ch));
    assert_int_equal(channel_applied_seq(a->ch), channel_sent_seq(b->ch));
}

static void test_lossy_link_both_ways(void **state)
{
    (void)state;
    net_t *net = net_new();
    lossy_t l = {.state = 0x5eed, .drop_pct = 20, .dup_pct = 20};
    net->policy = lossy;
    net->policy_arg = &l;
    bring_up(net);
    enum { N = 12 };
    settlement_t from_a[N], from_b[N];
    int64_t total_a = 0, total_b = 0;
    for (int i = 0; i < N; i++) {
        from_a[i] = make_payment(&net->node[A], "RUB", 100 + i);
        from_b[i] = make_payment(&net->node[B], "IRR", 5000 + i);
        total_a += 100 + i;
        total_b += 5000 + i;
    }
    /* in several batches, interleaved with turns of the lossy link */
    for (int k = 0; k < 4; k++) {
        pay(net, A, &from_a[k * 3], 3);
        net_turn(net);
        pay(net, B, &from_b[k * 3], 3);
        net_turn(net);
    }
    settle(net, A, from_a, N, 120000);
    settle(net, B, from_b, N, 120000);
    assert_both_ways_once(net, from_a, from_b, N, total_a, total_b);
    node_t *a = &net->node[A], *b = &net->node[B];
    assert_int_equal(a->finals, N);
    assert_int_equal(b->finals, N);
    /* the link did lose and repeat frames */
    assert_true(channel_stats(a->ch).retransmits + channel_stats(b->ch).retransmits > 0);
    net_free(net);
}

static void test_refused_payment_answered_once(void **state)
{
    (void)state;
    net_t *net = net_new();
    net->policy = duplicate_everything;
    bring_up(net);
    /* over the cap B grants A: refused AM02, once, and nothing moves */
    settlement_t s = make_payment(&net->node[A], "RUB", CAP + 1);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 5000);
    assert_int_equal(status_at(&net->node[A], s.uetr), STATUS_REJECTED);
    assert_int_equal(status_at(&net->node[B], s.uetr), STATUS_REJECTED);
    assert_int_equal(net->node[A].finals, 1);
    assert_string_equal(net->node[A].last_final.reason, "AM02");
    assert_int_equal(net_of(&net->node[A], "RUB"), 0);
    assert_int_equal(net_of(&net->node[B], "RUB"), 0);
    assert_int_equal(counts_at(&net->node[B]).rejected, 1);
    net_free(net);
}

/* Stops node n (channel and ledger closed), as a process exit would. */
static void node_stop(node_t *n)
{
    channel_destroy(&n->ch);
    ledger_close(&n->ledger);
    clear_inbox(n);
}

/* Starts node n again from its ledger, with a new incarnation. */
static void node_start(node_t *n)
{
    char *path = test_path(n->dir, LEDGER_FILE);
    char err[200];
    ledger_err_t rc =
        ledger_open(path, n->name, LEDGER_READ_WRITE, NULL, &n->ledger, err, sizeof err);
    free(path);
    if (rc != LEDGER_OK) {
        fail_msg("ledger_open: %s (%s)", ledger_strerror(rc), err);
    }
    ledger_set_clock(n->ledger, WALL_START);
    n->incarnation += 1000;
    open_channel(n);
}

/* Copies the ledger file of a stopped node (its WAL is checkpointed at close). */
static void copy_ledger(const char *from_dir, const char *to_dir)
{
    char *from = test_path(from_dir, LEDGER_FILE), *to = test_path(to_dir, LEDGER_FILE);
    size_t len = 0;
    char *data = test_read_file(from, &len);
    assert_non_null(data);
    test_write_file(to, data, len, 0600);
    free(data);
    free(from);
    free(to);
}

static bool both_diverged(net_t *net, void *arg)
{
    (void)arg;
    return channel_is_diverged(net->node[A].ch) && channel_is_diverged(net->node[B].ch);
}

static bool settled_at_b(net_t *net, void *arg)
{
    return status_at(&net->node[B], ((const settlement_t *)arg)->uetr) == STATUS_SETTLED;
}

/* Two heartbeat Hellos of A, both saying it sent nothing, reach B only after A's payment,
 * which B applied: a network that reorders, not a rollback (each Hello echoes what it took from
 * B, and neither had taken a Hello B sent after the payment). Before Hellos echoed, B counted
 * the two contradictions in a row and diverged a healthy channel for good (simulator seeds
 * 1386 and 1203). */
static void test_overtaken_hellos_do_not_diverge(void **state)
{
    (void)state;
    net_t *net = net_new();
    node_t *a = &net->node[A], *b = &net->node[B];
    bring_up(net);
    net->stash_a_control = true;
    for (int i = 0; i < (CHANNEL_HEARTBEAT_MS * 2 + 100) / TURN_MS; i++) {
        net_turn(net); /* two heartbeats of A, held back; B stays up (under the liveness) */
    }
    assert_int_equal(net->stash_count, 2);
    settlement_t s = make_payment(a, "RUB", 700);
    pay(net, A, &s, 1);
    if (!run_until(net, settled_at_b, &s, 500)) {
        fail_msg("B did not apply the payment");
    }
    assert_int_equal(net->stash_count, 2); /* both written before the payment */
    assert_int_equal(channel_stats(b->ch).applied_seq, 1);
    net->stash_a_control = false;
    memcpy(b->inbox + b->inbox_count, net->stash, net->stash_count * sizeof net->stash[0]);
    b->inbox_count += net->stash_count;
    net->stash_count = 0;
    settle(net, A, &s, 1, 5000);
    assert_false(channel_is_diverged(a->ch));
    assert_false(channel_is_diverged(b->ch));
    assert_int_equal(status_at(a, s.uetr), STATUS_SETTLED);
    net_free(net);
}

/* ---- key rotation (PROTOCOL.md 2.14) ------------------------------------------------------ */

/* New signing and box keys for `n`; its CURVE key stays (it changes at the key switch). */
static identity_t *next_keys(const node_t *n, uint8_t seed_byte)
{
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    memset(seed, seed_byte, sizeof seed);
    memset(box, seed_byte ^ 0xff, sizeof box);
    identity_t *next = identity_from_secrets(seed, box, n->id->curve_secret);
    assert_non_null(next);
    return next;
}

static void rotate_work(node_t *n, void *arg)
{
    assert_int_equal(channel_rotate(n->ch, arg, 0), LEDGER_OK);
}

/* `n` announces `next` in a turn of its own (by `work`); once committed, the keys are its own. */
static void rotate_by(net_t *net, int who, identity_t *next, work_fn work)
{
    node_t *n = &net->node[who];
    assert_true(channel_rotation_ready(n->ch));
    node_turn(n, work, next);
    identity_destroy(&n->id_previous);
    n->id_previous = n->id;
    n->id = next;
    channel_set_self(n->ch, n->id, n->id_previous);
}

static void rotate(net_t *net, int who, identity_t *next)
{
    rotate_by(net, who, next, rotate_work);
}

typedef struct {
    key_record_t k[4];
    uint8_t *evidence[4];
    size_t count;
} keys_seen_t;

static void see_key(const key_record_t *k, void *arg)
{
    keys_seen_t *seen = arg;
    assert_true(seen->count < 4);
    seen->k[seen->count] = *k;
    seen->evidence[seen->count] = NULL;
    if (k->evidence_len > 0) {
        seen->evidence[seen->count] = malloc(k->evidence_len);
        assert_non_null(seen->evidence[seen->count]);
        memcpy(seen->evidence[seen->count], k->evidence, k->evidence_len);
    }
    seen->k[seen->count].evidence = seen->evidence[seen->count];
    seen->count++;
}

static void keys_seen_free(keys_seen_t *seen)
{
    for (size_t i = 0; i < seen->count; i++) {
        free(seen->evidence[i]);
    }
}

/* The key history of `n`'s channel: on `side`, `old` through `through`, then `next`. */
static void assert_history(node_t *n, key_side_t side, const identity_t *old,
                           const identity_t *next, uint64_t through)
{
    keys_seen_t seen = {0};
    assert_int_equal(ledger_keys(n->ledger, NULL, see_key, &seen), LEDGER_OK);
    size_t found = 0;
    for (size_t i = 0; i < seen.count; i++) {
        const key_record_t *k = &seen.k[i];
        if (k->side != side) {
            continue;
        }
        if (memcmp(k->key_id, old->key_id, IDENTITY_KEY_ID_BYTES) == 0) {
            assert_int_equal(k->first_seq, 1);
            assert_int_equal(k->last_seq, through);
            assert_string_equal(k->source, "card");
            found++;
        } else {
            assert_memory_equal(k->key_id, next->key_id, IDENTITY_KEY_ID_BYTES);
            assert_int_equal(k->first_seq, through + 1);
            assert_int_equal(k->last_seq, 0);
            assert_string_equal(k->source, "announced");
            /* the announcement itself: signed by the old key, naming the new one */
            envelope_message_t msg;
            assert_int_equal(evidence_verify(k->evidence, k->evidence_len, old->sign_public, &msg),
                             ENV_OK);
            assert_int_equal(msg.type, MSG_KEY_ANNOUNCE);
            assert_int_equal(msg.sequence, through);
            key_announce_t ka;
            assert_int_equal(key_announce_decode(msg.body, msg.body_len, old->key_id, &ka), 0);
            assert_memory_equal(ka.sign_public, next->sign_public, crypto_sign_PUBLICKEYBYTES);
            envelope_message_clear(&msg);
            found++;
        }
    }
    assert_int_equal(found, 2);
    keys_seen_free(&seen);
}

/* The author of the last message `n` applied from its peer. */
static void assert_last_applied_by(node_t *n, const identity_t *author)
{
    uint8_t *proof = NULL;
    size_t len = 0;
    assert_int_equal(ledger_channel_proof(n->ledger, n->config->peers[0].card.name, &proof, &len),
                     LEDGER_OK);
    envelope_message_t msg;
    assert_int_equal(evidence_verify(proof, len, author->sign_public, &msg), ENV_OK);
    envelope_message_clear(&msg);
    free(proof);
}

/* One node rotates its signing key while payments flow both ways (and are lost and repeated
 * on the way), then restarts; then the other does: every payment is booked once at both ends,
 * the key history on both sides says which key signed which numbers, and each key signs only
 * its own (the previous key's copies of older messages still open). */
static void test_rotation_under_load(void **state)
{
    (void)state;
    net_t *net = net_new();
    lossy_t l = {.state = 0x7e57, .drop_pct = 15, .dup_pct = 15};
    net->policy = lossy;
    net->policy_arg = &l;
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    enum { N = 12 };
    settlement_t from_a[2 * N], from_b[2 * N];
    int64_t total_a = 0, total_b = 0;
    for (int i = 0; i < 2 * N; i++) {
        from_a[i] = make_payment(a, "RUB", 100 + i);
        from_b[i] = make_payment(b, "IRR", 5000 + i);
        total_a += 100 + i;
        total_b += 5000 + i;
    }
    for (int round = 0; round < 2; round++) {
        int who = round == 0 ? A : B;
        node_t *r = &net->node[who], *peer = &net->node[1 - who];
        const settlement_t *pa = &from_a[round * N], *pb = &from_b[round * N];
        pay(net, A, pa, 3);
        pay(net, B, pb, 3);
        net_turn(net);
        identity_t *next = next_keys(r, (uint8_t)(0x40 + round));
        identity_t *old = r->id;
        rotate(net, who, next);
        uint64_t through = channel_sent_seq(r->ch);
        /* while the announcement is on its way, and after */
        for (int k = 1; k < 4; k++) {
            pay(net, A, &pa[k * 3], 3);
            net_turn(net);
            pay(net, B, &pb[k * 3], 3);
            net_turn(net);
        }
        settle(net, A, pa, N, 120000);
        settle(net, B, pb, N, 120000);
        assert_true(channel_rotation_acked(r->ch));
        assert_history(r, KEY_SIDE_OURS, old, next, through);
        assert_history(peer, KEY_SIDE_THEIRS, old, next, through);
        assert_memory_equal(peer->keys->key_id, next->key_id, IDENTITY_KEY_ID_BYTES);
        assert_int_equal(peer->keys->previous_through, through);
        assert_last_applied_by(peer, next); /* the payments after it: the new key */
        /* both seal with the rotated node's new box key now (its announcement acknowledged) */
        uint8_t shared[crypto_box_BEFORENMBYTES];
        assert_int_equal(crypto_box_beforenm(shared, peer->id->box_public, next->box_secret), 0);
        assert_memory_equal(r->keys->shared_key, shared, sizeof shared);
        assert_memory_equal(peer->keys->shared_key, shared, sizeof shared);
        /* a restart of the rotated node finds its keys in the history */
        channel_destroy(&r->ch);
        open_channel(r);
        assert_true(channel_rotation_acked(r->ch));
    }
    net->policy = NULL;
    bring_up(net);
    assert_both_ways_once(net, from_a, from_b, 2 * N, total_a, total_b);
    net_free(net);
}

/* A message that claims a number on the wrong side of the announcement is refused: the old
 * key (which may have leaked) cannot sign after it, the new one cannot sign before it; an
 * announcement without proof of possession changes nothing and is applied as nothing. */
static void test_rotation_keys_sign_only_their_numbers(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 700);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    identity_t *next = next_keys(a, 0x51);
    identity_t *old = a->id;
    rotate(net, A, next);
    uint64_t through = channel_sent_seq(a->ch);
    settlement_t t = make_payment(a, "RUB", 800);
    pay(net, A, &t, 1);
    settle(net, A, &t, 1, 10000);
    uint8_t body[8] = {0};
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    envelope_message_t msg;
    /* the old key after the announcement */
    assert_int_equal(envelope_seal_version(old, a->keys, 2, MSG_SETTLEMENT, through + 2, body,
                                           sizeof body, &wire, &wire_len),
                     ENV_OK);
    assert_int_equal(envelope_open(wire, wire_len, b->id, b->keys, 1, &msg), ENV_E_STALE_KEY);
    free(wire);
    /* the new key before it (above what was applied, so the signature is checked) */
    b->keys->applied_through = 0;
    assert_int_equal(envelope_seal_version(next, a->keys, 2, MSG_SETTLEMENT, through, body,
                                           sizeof body, &wire, &wire_len),
                     ENV_OK);
    assert_int_equal(envelope_open(wire, wire_len, b->id, b->keys, 1, &msg), ENV_E_STALE_KEY);
    free(wire);
    b->keys->applied_through = channel_applied_seq(b->ch);
    /* the old key's control messages stop once one came under the new key */
    net_turn(net);
    net_turn(net);
    assert_false(b->keys->previous_control);
    assert_int_equal(
        envelope_seal_version(old, a->keys, 2, MSG_HELLO, 0, NULL, 0, &wire, &wire_len), ENV_OK);
    assert_int_equal(envelope_open(wire, wire_len, b->id, b->keys, 1, &msg), ENV_E_STALE_KEY);
    free(wire);
    /* an announcement whose possession is signed by another key: consumed, nothing changes */
    identity_t *other_key = next_keys(a, 0x52);
    uint8_t *ka_body = NULL;
    size_t ka_len = 0;
    assert_int_equal(key_announce_encode(other_key, next->key_id, NULL, &ka_body, &ka_len), 0);
    key_announce_t decoded;
    assert_int_equal(key_announce_decode(ka_body, ka_len, old->key_id, &decoded), -1);
    ka_body[ka_len - 1] ^= 1; /* the last byte of the possession signature */
    assert_int_equal(key_announce_decode(ka_body, ka_len, next->key_id, &decoded), -1);
    node_turn(a, NULL, NULL);
    assert_int_equal(ledger_begin(a->ledger), LEDGER_OK);
    assert_int_equal(channel_send_body(a->ch, MSG_KEY_ANNOUNCE, ka_body, ka_len), LEDGER_OK);
    assert_int_equal(ledger_commit(a->ledger), LEDGER_OK);
    free(ka_body);
    bring_up(net);
    for (int i = 0; i < 40 && channel_applied_seq(b->ch) < channel_sent_seq(a->ch); i++) {
        net_turn(net);
    }
    assert_int_equal(channel_applied_seq(b->ch), channel_sent_seq(a->ch));
    assert_memory_equal(b->keys->key_id, next->key_id, IDENTITY_KEY_ID_BYTES);
    identity_destroy(&other_key);
    net_free(net);
}

static void body_work(node_t *n, void *arg)
{
    const batch_t *b = arg; /* one body: items is the body, count its length */
    assert_int_equal(
        channel_send_body(n->ch, MSG_KEY_ANNOUNCE, (const uint8_t *)b->items, b->count), LEDGER_OK);
}

/* A compromised peer announces one of its earlier keys again (its possession is genuine):
 * the announcement is consumed as nothing, and no transaction of ours fails over it (before,
 * the key history's conflict rolled back every turn for ever). */
static void test_reannounced_old_key_consumed(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    identity_t *k1 = next_keys(a, 0x61);
    identity_t *k0 = a->id;
    rotate(net, A, k1);
    bring_up(net);
    settlement_t s = make_payment(a, "RUB", 300);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(key_announce_encode(k0, k1->key_id, NULL, &body, &len), 0);
    batch_t announce = {(const settlement_t *)(const void *)body, len};
    node_turn(a, body_work, &announce); /* node_turn asserts every transaction commits */
    free(body);
    settlement_t t = make_payment(b, "IRR", 42);
    pay(net, B, &t, 1);
    settle(net, B, &t, 1, 10000);
    assert_int_equal(channel_applied_seq(b->ch), channel_sent_seq(a->ch));
    assert_memory_equal(b->keys->key_id, k1->key_id, IDENTITY_KEY_ID_BYTES);
    net_free(net);
}

/* Messages held before an announcement took effect, numbered after it but signed by the key
 * it retires, are not applied (nor acknowledged): a thief of that key cannot place them. */
static void test_old_key_message_after_announcement_dropped(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    identity_t *k1 = next_keys(a, 0x62);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(key_announce_encode(k1, a->id->key_id, NULL, &body, &len), 0);
    /* the announcement and, behind it, a payment the old key signs, in one transaction */
    settlement_t s = make_payment(a, "RUB", 999);
    assert_int_equal(ledger_begin(a->ledger), LEDGER_OK);
    assert_int_equal(channel_send_body(a->ch, MSG_KEY_ANNOUNCE, body, len), LEDGER_OK);
    ledger_outcome_t o;
    assert_int_equal(channel_send_settlement(a->ch, &s, &o), LEDGER_OK);
    assert_int_equal(ledger_commit(a->ledger), LEDGER_OK);
    channel_after_commit(a->ch, net->now_ms);
    free(body);
    node_turn(b, NULL, NULL);
    assert_memory_equal(b->keys->key_id, k1->key_id, IDENTITY_KEY_ID_BYTES);
    assert_int_equal(channel_applied_seq(b->ch), channel_sent_seq(a->ch) - 1);
    assert_int_equal((int)status_at(b, s.uetr), -1); /* never booked */
    identity_destroy(&k1);
    net_free(net);
}

/* Once the peer signs with its new key, the key before it signs no control message again,
 * not even after a reload of the channel (a restart, a failed transaction): a thief of the
 * old key cannot forge an Ack of everything we sent. */
static void test_old_key_control_refused_after_reload(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    identity_t *k1 = next_keys(a, 0x63);
    identity_t *k0 = a->id;
    rotate(net, A, k1);
    settlement_t s = make_payment(a, "RUB", 77);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    assert_false(b->keys->previous_control);
    channel_destroy(&b->ch);
    open_channel(b);
    assert_false(b->keys->previous_control);
    Corridor__Ack ack = CORRIDOR__ACK__INIT;
    ack.sequence = channel_sent_seq(b->ch);
    ack.incarnation = UINT64_MAX / 2;
    ack.counter = 1;
    uint8_t buf[64];
    size_t blen = corridor__ack__pack(&ack, buf);
    envelope_peer_t *thief = sodium_malloc(sizeof *thief); /* k0's keys towards B */
    assert_non_null(thief);
    assert_int_equal(envelope_peer_init(thief, k0, &a->config->peers[0].card), ENV_OK);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    assert_int_equal(envelope_seal_version(k0, thief, 2, MSG_ACK, 0, buf, blen, &wire, &wire_len),
                     ENV_OK);
    envelope_peer_wipe(thief);
    sodium_free(thief);
    envelope_message_t msg;
    assert_int_not_equal(envelope_open(wire, wire_len, b->id, b->keys, 1, &msg), ENV_OK);
    free(wire);
    net_free(net);
}

/* ---- key replacement after a leak (PROTOCOL.md 2.15) ------------------------------------- */

/* The books of stopped node `n`, opened as an operator's command opens them. */
static ledger_t *ledger_of_stopped(const node_t *n)
{
    char *path = test_path(n->dir, LEDGER_FILE);
    char err[200];
    ledger_t *l = NULL;
    ledger_err_t rc = ledger_open(path, n->name, LEDGER_READ_WRITE, NULL, &l, err, sizeof err);
    free(path);
    if (rc != LEDGER_OK) {
        fail_msg("ledger_open: %s (%s)", ledger_strerror(rc), err);
    }
    ledger_set_clock(l, WALL_START);
    return l;
}

/* `n` starts again as a process would, its envelope keys made afresh from its card of the
 * peer. */
static void node_restart_keys(node_t *n)
{
    envelope_peer_wipe(n->keys);
    assert_int_equal(envelope_peer_init(n->keys, n->id, &n->config->peers[0].card), ENV_OK);
    node_start(n);
}

/* `n`'s operator replaces its keys by `next` (`corridor key replace`, the node stopped): our
 * side of the key history after the last message queued; the node then starts with `next`.
 * Returns its keys before (the caller destroys them). */
static identity_t *replace_own_keys(node_t *n, identity_t *next, key_replaced_t *out)
{
    node_stop(n);
    ledger_t *l = ledger_of_stopped(n);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(replace_own_key(l, n->config->peers[0].card.name, n->id, next, out),
                     LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    ledger_close(&l);
    assert_null(out->refused);
    identity_t *old = n->id;
    n->id = next;
    node_restart_keys(n);
    return old;
}

/* `n`'s operator puts the peer's new card (keys `next`) in place of its key (`corridor peer
 * add --replace`, the node stopped), revoking from the first number not applied; the config
 * then names the new card, and the node starts again. */
static void replace_peer_card(node_t *n, const identity_t *next, key_replaced_t *out)
{
    node_stop(n);
    peer_card_t card;
    identity_card(next, n->config->peers[0].card.name, "tcp://127.0.0.1:7000", &card);
    ledger_t *l = ledger_of_stopped(n);
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    assert_int_equal(replace_peer_key(l, &n->config->peers[0].card, &card, 0, out), LEDGER_OK);
    assert_int_equal(ledger_commit(l), LEDGER_OK);
    ledger_close(&l);
    assert_null(out->refused);
    n->config->peers[0].card = card;
    node_restart_keys(n);
}

/* A's keys leak after B applied its payment; both operators replace them (A's own, A's card at
 * B). A thief holding A's old keys then sends B a payment at the number B expects next: B
 * refuses the frame as under a revoked key (ENV_E_REVOKED) and applies nothing; A's payment at
 * that number under its new key is applied. */
static void test_replaced_peer_key_refuses_old_key(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 700);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    uint64_t applied = channel_applied_seq(b->ch);
    assert_int_equal(applied, channel_sent_seq(a->ch));

    identity_t *next = next_keys(a, 0x71);
    key_replaced_t own, theirs;
    identity_t *old = replace_own_keys(a, next, &own);
    replace_peer_card(b, next, &theirs);
    assert_int_equal(own.first_seq, applied + 1);
    assert_int_equal(theirs.first_seq, applied + 1);
    assert_memory_equal(theirs.replaced_key_id, old->key_id, IDENTITY_KEY_ID_BYTES);
    assert_memory_equal(b->keys->key_id, next->key_id, IDENTITY_KEY_ID_BYTES);
    assert_true(b->keys->has_revoked);
    assert_memory_equal(b->keys->revoked_key_id, old->key_id, IDENTITY_KEY_ID_BYTES);

    /* the thief: A's old keys towards B, a payment to B at applied + 1 */
    settlement_t stolen = make_payment(a, "RUB", 5000);
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(settlement_encode(&stolen, &body, &body_len), 0);
    envelope_peer_t *thief = sodium_malloc(sizeof *thief);
    assert_non_null(thief);
    assert_int_equal(envelope_peer_init(thief, old, &a->config->peers[0].card), ENV_OK);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    assert_int_equal(envelope_seal_version(old, thief, 2, MSG_SETTLEMENT, applied + 1, body,
                                           body_len, &wire, &wire_len),
                     ENV_OK);
    envelope_peer_wipe(thief);
    sodium_free(thief);
    free(body);
    envelope_message_t msg;
    assert_int_equal(envelope_open(wire, wire_len, b->id, b->keys, 1, &msg), ENV_E_REVOKED);
    assert_null(msg.body);
    assert_null(msg.evidence);
    /* through B's loop: dropped, nothing applied or held */
    frame_copy(&b->inbox[b->inbox_count++], MSG_SETTLEMENT, wire, wire_len);
    free(wire);
    uint64_t rows = rows_of(b);
    node_turn(b, NULL, NULL);
    assert_int_equal(b->revoked_dropped, 1);
    assert_int_equal(channel_applied_seq(b->ch), applied);
    assert_int_equal(channel_stats(b->ch).held, 0);
    assert_int_equal(rows_of(b), rows);

    /* A, under its new keys, pays B at that same number: applied */
    bring_up(net);
    settlement_t t = make_payment(a, "RUB", 800);
    pay(net, A, &t, 1);
    assert_int_equal(channel_sent_seq(a->ch), applied + 1);
    settle(net, A, &t, 1, 10000);
    assert_int_equal(channel_applied_seq(b->ch), applied + 1);
    assert_int_equal(status_at(b, t.uetr), STATUS_SETTLED);
    assert_int_equal((int)status_at(b, stolen.uetr), -1);
    assert_last_applied_by(b, next);
    assert_int_equal(b->revoked_dropped, 1);
    identity_destroy(&old);
    net_free(net);
}

typedef struct {
    uint8_t *msg;
    size_t len;
} stored_t;

static bool keep_stored(uint64_t seq, int type, const uint8_t *signed_msg, size_t signed_len,
                        void *arg)
{
    (void)seq;
    (void)type;
    stored_t *st = arg;
    st->msg = malloc(signed_len);
    assert_non_null(st->msg);
    memcpy(st->msg, signed_msg, signed_len);
    st->len = signed_len;
    return false;
}

/* A queued a payment that never reached B when its keys were replaced (after it: the new key
 * signs from the next number): the stored message, signed by the old key, leaves signed again
 * by the new key, the same Inner otherwise; B, with A's new card, opens it, its author the new
 * key, and applies it. */
static void test_own_replacement_resigns_queued_message(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 300);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    net->cut = true;
    settlement_t q = make_payment(a, "RUB", 400);
    pay(net, A, &q, 1);
    uint64_t queued = channel_sent_seq(a->ch);
    assert_int_equal(queued, 2);
    assert_int_equal(channel_stats(a->ch).acked_seq, queued - 1);
    assert_int_equal(channel_applied_seq(b->ch), queued - 1);

    identity_t *next = next_keys(a, 0x72);
    key_replaced_t own, theirs;
    identity_t *old = replace_own_keys(a, next, &own);
    assert_int_equal(own.first_seq, queued + 1); /* after the last message queued */
    replace_peer_card(b, next, &theirs);
    assert_int_equal(theirs.first_seq, queued); /* the first B has not applied */
    stored_t stored = {0};
    assert_int_equal(ledger_outbox_scan(a->ledger, NAME_B, queued, 1, keep_stored, &stored),
                     LEDGER_OK);
    assert_non_null(stored.msg);
    envelope_message_t original;
    assert_int_equal(evidence_verify(stored.msg, stored.len, old->sign_public, &original), ENV_OK);
    free(stored.msg);

    net->cut = false;
    bool seen = false;
    for (int i = 0; i < 200 && !seen; i++) {
        node_turn(a, NULL, NULL);
        for (size_t k = 0; k < b->inbox_count && !seen; k++) {
            if (b->inbox[k].type != MSG_SETTLEMENT) {
                continue;
            }
            envelope_message_t msg, check;
            assert_int_equal(
                envelope_open(b->inbox[k].data, b->inbox[k].len, b->id, b->keys, 1, &msg), ENV_OK);
            assert_int_equal(msg.sequence, queued);
            assert_memory_equal(msg.author_key_id, next->key_id, IDENTITY_KEY_ID_BYTES);
            assert_int_equal(
                evidence_verify(msg.evidence, msg.evidence_len, next->sign_public, &check), ENV_OK);
            envelope_message_clear(&check);
            assert_int_not_equal(
                evidence_verify(msg.evidence, msg.evidence_len, old->sign_public, &check), ENV_OK);
            /* the same message otherwise */
            assert_int_equal(msg.type, original.type);
            assert_int_equal(msg.version, original.version);
            assert_memory_equal(msg.recipient_key_id, original.recipient_key_id,
                                IDENTITY_KEY_ID_BYTES);
            assert_int_equal(msg.body_len, original.body_len);
            assert_memory_equal(msg.body, original.body, msg.body_len);
            envelope_message_clear(&msg);
            seen = true;
        }
        node_turn(b, NULL, NULL);
        net->now_ms += TURN_MS;
    }
    assert_true(seen);
    envelope_message_clear(&original);
    settle(net, A, &q, 1, 10000);
    assert_int_equal(status_at(b, q.uetr), STATUS_SETTLED);
    assert_int_equal(status_at(a, q.uetr), STATUS_SETTLED);
    assert_last_applied_by(b, next);
    assert_int_equal(b->revoked_dropped, 0);
    identity_destroy(&old);
    net_free(net);
}

static void test_payee_restored_from_old_copy_diverges(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    /* a backup of B's books before any payment */
    node_stop(b);
    char *backup = test_tmpdir();
    copy_ledger(b->dir, backup);
    node_start(b);
    bring_up(net);
    settlement_t s = make_payment(a, "RUB", 500);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 5000);
    /* B is put back from the backup: it forgot the payment it settled and answered */
    node_stop(b);
    char *wal = test_path(b->dir, LEDGER_FILE "-wal");
    unlink(wal);
    free(wal);
    copy_ledger(backup, b->dir);
    node_start(b);
    assert_int_equal(status_at(b, s.uetr), (status_t)-1);
    /* the Hellos show it: both sides hold the channel, neither resends nor applies */
    if (!run_until(net, both_diverged, NULL, 10000)) {
        fail_msg("not diverged: A %s, B %s", channel_state_name(channel_stats(a->ch).state),
                 channel_state_name(channel_stats(b->ch).state));
    }
    settlement_t later = make_payment(a, "RUB", 600);
    pay(net, A, &later, 1);
    for (int i = 0; i < 100; i++) {
        net_turn(net);
    }
    assert_int_equal(status_at(a, later.uetr), STATUS_PENDING);
    assert_int_equal(status_at(b, later.uetr), (status_t)-1);
    assert_int_equal(status_at(b, s.uetr), (status_t)-1); /* not re-applied behind our back */
    assert_true(both_diverged(net, NULL));
    /* and it is recorded: a restart stays DIVERGED */
    node_stop(a);
    node_start(a);
    assert_int_equal(channel_stats(a->ch).state, CHANNEL_DIVERGED);
    test_rmtree(backup);
    free(backup);
    net_free(net);
}

/* ---- the CURVE key switch (PROTOCOL.md 2.16) ----------------------------------------------- */

static bool a_rotation_acked(net_t *net, void *arg)
{
    (void)arg;
    return channel_rotation_acked(net->node[A].ch);
}

static bool b_pins(net_t *net, void *arg)
{
    channel_transport_t t;
    channel_transport(net->node[B].ch, &t);
    return strcmp(t.pin, arg) == 0;
}

static void rotate_with_overlap(node_t *n, void *arg)
{
    assert_int_equal(channel_rotate(n->ch, arg, 5000), LEDGER_OK);
}

static void switch_work(node_t *n, void *arg)
{
    (void)arg;
    assert_int_equal(channel_curve_switch(n->ch), LEDGER_OK);
}

static void send_key_switch(node_t *n, void *arg)
{
    const key_switch_t *ks = arg;
    uint8_t body[KEY_SWITCH_BODY_MAX];
    size_t len = 0;
    assert_int_equal(key_switch_encode(ks, body, sizeof body, &len), 0);
    assert_int_equal(channel_send_body(n->ch, MSG_KEY_SWITCH, body, len), LEDGER_OK);
}

/* A rotates to keys with a new CURVE key: B admits both client keys and goes on pinning the
 * old server key until A's KeySwitch, then pins the new one and admits the old client key for
 * the overlap A asked; A connects with its new key once B acknowledged. A KeySwitch naming
 * another key, or a second one, is consumed as nothing. The key history keeps it all across a
 * restart of B. */
static void test_curve_switch(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    char old_curve[IDENTITY_CURVE_KEY_CHARS + 1], new_curve[IDENTITY_CURVE_KEY_CHARS + 1];
    char new_secret[IDENTITY_CURVE_KEY_CHARS + 1];
    snprintf(old_curve, sizeof old_curve, "%s", a->id->curve_public);
    assert_int_equal(zmq_curve_keypair(new_curve, new_secret), 0);
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    memset(seed, 0x81, sizeof seed);
    memset(box, 0x7e, sizeof box);
    identity_t *next = identity_from_secrets(seed, box, new_secret);
    assert_non_null(next);
    channel_set_wall(b->ch, WALL_START);

    rotate_by(net, A, next, rotate_with_overlap);
    assert_true(channel_curve_pending(a->ch));
    channel_transport_t t;
    channel_transport(a->ch, &t);
    assert_ptr_equal(t.client, a->id_previous); /* B does not admit the new key yet */
    assert_true(run_until(net, a_rotation_acked, NULL, 20000));
    channel_transport(a->ch, &t);
    assert_ptr_equal(t.client, a->id);
    channel_transport(b->ch, &t);
    assert_string_equal(t.admit_current, new_curve);
    assert_string_equal(t.admit_previous, old_curve);
    assert_int_equal(t.previous_until_wall_ms, 0);
    assert_string_equal(t.pin, old_curve);

    /* a KeySwitch naming another CURVE key: nothing changes */
    key_switch_t wrong = {.overlap_s = 60};
    snprintf(wrong.curve_public, sizeof wrong.curve_public, "%s", old_curve);
    node_turn(a, send_key_switch, &wrong);
    node_turn(a, switch_work, NULL);
    assert_false(channel_curve_pending(a->ch));
    assert_true(run_until(net, b_pins, new_curve, 20000));
    channel_transport(b->ch, &t);
    assert_string_equal(t.admit_previous, old_curve);
    assert_int_equal(t.previous_until_wall_ms, WALL_START + 5000);

    /* a second one (even well formed): consumed as nothing */
    key_switch_t again = {.overlap_s = 600};
    snprintf(again.curve_public, sizeof again.curve_public, "%s", new_curve);
    node_turn(a, send_key_switch, &again);
    settlement_t s = make_payment(a, "RUB", 77);
    settle(net, A, &s, 1, 20000);
    channel_transport(b->ch, &t);
    assert_int_equal(t.previous_until_wall_ms, WALL_START + 5000);

    /* B restarts: the key history says what to pin and admit */
    node_stop(b);
    node_restart_keys(b);
    channel_transport(b->ch, &t);
    assert_string_equal(t.pin, new_curve);
    assert_string_equal(t.admit_current, new_curve);
    assert_string_equal(t.admit_previous, old_curve);
    assert_int_equal(t.previous_until_wall_ms, WALL_START + 5000);
    sodium_memzero(new_secret, sizeof new_secret);
    net_free(net);
}

/* A peer announcing a CURVE key it cannot prove it holds (another node's: here B's own, or
 * one proved to someone else) has it consumed as nothing: B goes on admitting and pinning the
 * key it had. */
static void send_announce(node_t *n, void *arg)
{
    const uint8_t *const *body = arg;
    size_t len = (size_t)(uintptr_t)body[1];
    assert_int_equal(channel_send_body(n->ch, MSG_KEY_ANNOUNCE, body[0], len), LEDGER_OK);
}

static void test_curve_key_needs_proof(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    char old_curve[IDENTITY_CURVE_KEY_CHARS + 1];
    snprintf(old_curve, sizeof old_curve, "%s", a->id->curve_public);
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    memset(seed, 0x91, sizeof seed);
    memset(box, 0x6e, sizeof box);
    identity_t *squat = identity_from_secrets(seed, box, b->id->curve_secret); /* B's CURVE key */
    assert_non_null(squat);
    uint8_t *body = NULL;
    size_t len = 0;
    /* no proof */
    assert_int_equal(key_announce_encode(squat, a->id->key_id, NULL, &body, &len), 0);
    const void *args[2] = {body, (const void *)(uintptr_t)len};
    node_turn(a, send_announce, (void *)args);
    free(body);
    /* a proof, but to A itself rather than to B */
    assert_int_equal(key_announce_encode(squat, a->id->key_id, a->id->box_public, &body, &len), 0);
    args[0] = body;
    args[1] = (const void *)(uintptr_t)len;
    node_turn(a, send_announce, (void *)args);
    free(body);
    settlement_t s = make_payment(a, "RUB", 5);
    settle(net, A, &s, 1, 20000); /* both announcements were applied before it, as nothing */
    channel_transport_t t;
    channel_transport(b->ch, &t);
    assert_string_equal(t.admit_current, old_curve);
    assert_null(t.admit_previous);
    assert_string_equal(t.pin, old_curve);
    identity_destroy(&squat);
    net_free(net);
}

/* Keys with a new CURVE keypair; its public key in `curve`. */
static identity_t *next_keys_new_curve(uint8_t seed_byte,
                                       char curve[static IDENTITY_CURVE_KEY_CHARS + 1])
{
    char secret[IDENTITY_CURVE_KEY_CHARS + 1];
    assert_int_equal(zmq_curve_keypair(curve, secret), 0);
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    memset(seed, seed_byte, sizeof seed);
    memset(box, seed_byte ^ 0xff, sizeof box);
    identity_t *next = identity_from_secrets(seed, box, secret);
    sodium_memzero(secret, sizeof secret);
    assert_non_null(next);
    return next;
}

/* The CURVE transport as the link sees it after A's switch: B's frames reach A only once B
 * pins A's new server key, and A's KeySwitch frames are lost until `lost_until_ms`. */
typedef struct {
    net_t *net;
    const char *served; /* A's server key */
    int64_t lost_until_ms;
} switched_link_t;

static int switched_link(void *arg, int from, msg_type_t type, unsigned nth)
{
    (void)nth;
    const switched_link_t *l = arg;
    if (from == B) {
        channel_transport_t t;
        channel_transport(l->net->node[B].ch, &t);
        return strcmp(t.pin, l->served) == 0;
    }
    return type == MSG_KEY_SWITCH && l->net->now_ms < l->lost_until_ms ? 0 : 1;
}

static bool a_down(net_t *net, void *arg)
{
    (void)arg;
    return channel_stats(net->node[A].ch).state == CHANNEL_DOWN;
}

/* A's KeySwitch is lost for longer than A waits before it calls B down (B, pinning A's old
 * key, cannot reach A). A DOWN channel sends nothing sequenced, but for a KeySwitch the peer
 * has not acknowledged: A sends it again on its retransmission timer, and B, once it applied
 * it, reaches A with the new key. */
static void test_missed_key_switch_sent_again_while_down(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    char new_curve[IDENTITY_CURVE_KEY_CHARS + 1];
    identity_t *next = next_keys_new_curve(0x83, new_curve);
    rotate_by(net, A, next, rotate_with_overlap);
    assert_true(run_until(net, a_rotation_acked, NULL, 20000));

    switched_link_t link = {net, new_curve, net->now_ms + 2 * CHANNEL_LIVENESS_MS};
    net->policy = switched_link;
    net->policy_arg = &link;
    node_turn(a, switch_work, NULL);
    assert_true(run_until(net, a_down, NULL, 2 * CHANNEL_LIVENESS_MS));
    assert_false(b_pins(net, new_curve));
    assert_true(run_until(net, b_pins, new_curve, 4 * CHANNEL_RTO_MAX_MS));
    assert_true(run_until(net, both_up, NULL, 10000));
    settlement_t s = make_payment(b, "RUB", 31);
    pay(net, B, &s, 1);
    settle(net, B, &s, 1, 20000);
    assert_int_equal(status_at(b, s.uetr), STATUS_SETTLED); /* A's answer reached B */
    net_free(net);
}

/* Holds A's KeyAnnounce frames back while `*hold`. */
static int hold_announce(void *arg, int from, msg_type_t type, unsigned nth)
{
    (void)nth;
    const bool *hold = arg;
    return *hold && from == A && type == MSG_KEY_ANNOUNCE ? 0 : 1;
}

static bool b_rotation_acked(net_t *net, void *arg)
{
    (void)arg;
    return channel_rotation_acked(net->node[B].ch);
}

static bool b_may_forget(net_t *net, void *arg)
{
    (void)arg;
    return !channel_previous_keys_needed(net->node[B].ch);
}

/* A announces a new CURVE key, proved to B's box key of then, and B rotates before it applies
 * the announcement. B must keep that box key, and so not rotate again, until it applied what
 * A sent before A took B's announcement: then A's proof opens with B's previous key and B
 * admits A's new CURVE key. */
static void test_rotation_waits_for_peer_proof_to_old_key(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    bool hold = true;
    net->policy = hold_announce;
    net->policy_arg = &hold;
    char new_curve[IDENTITY_CURVE_KEY_CHARS + 1];
    identity_t *next = next_keys_new_curve(0x85, new_curve);
    rotate_by(net, A, next, rotate_with_overlap);
    assert_false(channel_previous_keys_needed(b->ch)); /* B never rotated */

    rotate(net, B, next_keys(b, 0x86));
    assert_true(channel_previous_keys_needed(b->ch));
    assert_true(run_until(net, b_rotation_acked, NULL, 20000));
    net_turn(net);
    net_turn(net); /* A's Hellos after it applied B's announcement */
    assert_true(channel_previous_keys_needed(b->ch)); /* A's announcement is not applied */
    channel_transport_t t;
    channel_transport(b->ch, &t);
    assert_string_not_equal(t.admit_current, new_curve);

    hold = false;
    assert_true(run_until(net, b_may_forget, NULL, 20000));
    channel_transport(b->ch, &t);
    assert_string_equal(t.admit_current, new_curve); /* proved to B's previous box key */
    rotate(net, B, next_keys(b, 0x87));
    assert_true(run_until(net, b_rotation_acked, NULL, 20000));
    assert_true(run_until(net, a_rotation_acked, NULL, 20000));
    settlement_t s = make_payment(a, "RUB", 41);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 20000);
    net_free(net);
}

/* B applied A's announcement of a new CURVE key, then was put back from a copy taken after
 * it: both channels are DIVERGED. A's KeySwitch (here taken from A's outbox and delivered by
 * hand: a DIVERGED channel sends nothing sequenced) is not applied by B, but B pins A's new
 * server key, so that the repair's requests reach A; a KeySwitch naming another key does not
 * move the pin. */
static void test_key_switch_pinned_while_diverged(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    char old_curve[IDENTITY_CURVE_KEY_CHARS + 1], new_curve[IDENTITY_CURVE_KEY_CHARS + 1];
    snprintf(old_curve, sizeof old_curve, "%s", a->id->curve_public);
    identity_t *next = next_keys_new_curve(0x89, new_curve);
    rotate_by(net, A, next, rotate_with_overlap);
    assert_true(run_until(net, a_rotation_acked, NULL, 20000));
    node_stop(b);
    char *backup = test_tmpdir();
    copy_ledger(b->dir, backup);
    node_start(b);
    bring_up(net);
    settlement_t s = make_payment(a, "RUB", 700);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    node_stop(b);
    char *wal = test_path(b->dir, LEDGER_FILE "-wal");
    unlink(wal);
    free(wal);
    copy_ledger(backup, b->dir);
    node_start(b);
    assert_true(run_until(net, both_diverged, NULL, 10000));
    channel_transport_t t;
    channel_transport(b->ch, &t);
    assert_string_equal(t.pin, old_curve);

    key_switch_t wrong = {.overlap_s = 60};
    snprintf(wrong.curve_public, sizeof wrong.curve_public, "%s", old_curve);
    node_turn(a, send_key_switch, &wrong);
    node_turn(a, switch_work, NULL);
    uint64_t sent = channel_sent_seq(a->ch);
    for (uint64_t seq = sent - 1; seq <= sent; seq++) {
        stored_t st = {0};
        assert_int_equal(ledger_outbox_scan(a->ledger, NAME_B, seq, 1, keep_stored, &st),
                         LEDGER_OK);
        assert_non_null(st.msg);
        uint8_t *wire = NULL;
        size_t len = 0;
        assert_int_equal(
            envelope_wrap_as(a->id->key_id, a->keys, st.msg, st.len, false, &wire, &len), ENV_OK);
        frame_copy(&b->inbox[b->inbox_count++], MSG_KEY_SWITCH, wire, len);
        free(wire);
        free(st.msg);
        node_turn(b, NULL, NULL);
        channel_transport(b->ch, &t);
        assert_string_equal(t.pin, seq == sent ? new_curve : old_curve);
    }
    assert_int_equal(channel_stats(b->ch).state, CHANNEL_DIVERGED);
    test_rmtree(backup);
    free(backup);
    net_free(net);
}

/* ---- holds and expiry (PROTOCOL.md 3.8) ---------------------------------------------------- */

typedef struct {
    const char *uetr;
    const char *reason;
    ledger_err_t want;
} decide_t;

static void decide_work(node_t *n, void *arg)
{
    decide_t *d = arg;
    ledger_outcome_t o;
    assert_int_equal(channel_decide_held(n->ch, d->uetr, d->reason, &o), d->want);
}

static void expire_work(node_t *n, void *arg)
{
    (void)arg;
    assert_int_equal(channel_expire_held(n->ch), LEDGER_OK);
}

static bool a_sees_held(net_t *net, void *arg)
{
    bool held = false;
    return ledger_at_peer(net->node[A].ledger, NAME_B, arg, &held) == LEDGER_OK && held;
}

/* B holds A's payments for its screening program: each is booked held at B (counted against
 * the cap A is granted, not in the position), answered PDNG, which A notes while its payment
 * stays pending; B's decisions (release, decline, expiry) reach A as the final answer. A payment
 * that arrives after its expiry, or names a listed party, is refused at once. */
static void test_held_payments_decided_later(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    channel_set_wall(b->ch, WALL_START);
    b->screen = CHANNEL_SCREEN_PROGRAM;
    settlement_t s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = make_payment(a, "RUB", 100 + i);
    }
    s[2].expires_unix_ms = WALL_START + 10000;
    pay(net, A, s, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(run_until(net, a_sees_held, s[i].uetr, 10000));
        assert_int_equal(status_at(b, s[i].uetr), STATUS_HELD);
        assert_int_equal(status_at(a, s[i].uetr), STATUS_PENDING);
    }
    assert_int_equal(b->held_calls, 3);
    int64_t b_net = -1, pending = -1;
    assert_int_equal(ledger_position(b->ledger, NAME_A, "RUB", &b_net, &pending), LEDGER_OK);
    assert_int_equal(b_net, 0);
    assert_int_equal(pending, 303); /* held: pending at both ends */

    decide_t release = {s[0].uetr, NULL, LEDGER_OK}, decline = {s[1].uetr, "RR04", LEDGER_OK};
    node_turn(b, decide_work, &release);
    node_turn(b, decide_work, &decline);
    decide_t again = {s[0].uetr, "RR04", LEDGER_E_STATE};
    node_turn(b, decide_work, &again);
    node_turn(b, expire_work, NULL); /* not due yet */
    settle(net, A, s, 2, 10000);
    assert_int_equal(status_at(a, s[0].uetr), STATUS_SETTLED);
    assert_int_equal(status_at(b, s[0].uetr), STATUS_SETTLED);
    assert_int_equal(status_at(a, s[1].uetr), STATUS_REJECTED);
    assert_int_equal(status_at(b, s[2].uetr), STATUS_HELD);

    channel_set_wall(b->ch, WALL_START + 10000);
    node_turn(b, expire_work, NULL);
    settle(net, A, &s[2], 1, 10000);
    assert_int_equal(status_at(a, s[2].uetr), STATUS_REJECTED);
    settlement_t got;
    ledger_outcome_t o;
    assert_int_equal(ledger_find(a->ledger, NAME_B, s[2].uetr, &got, &o), LEDGER_OK);
    assert_string_equal(o.reason, "AB05");
    assert_int_equal(net_of(a, "RUB"), -100);
    assert_int_equal(net_of(b, "RUB"), 100);

    /* too late on arrival, and a listed party */
    settlement_t late = make_payment(a, "RUB", 7);
    late.expires_unix_ms = WALL_START + 10000;
    pay(net, A, &late, 1);
    settle(net, A, &late, 1, 10000);
    assert_int_equal(ledger_find(a->ledger, NAME_B, late.uetr, &got, &o), LEDGER_OK);
    assert_string_equal(o.reason, "AB05");
    b->screen = CHANNEL_SCREEN_LISTED;
    settlement_t listed = make_payment(a, "RUB", 8);
    pay(net, A, &listed, 1);
    settle(net, A, &listed, 1, 10000);
    assert_int_equal(ledger_find(a->ledger, NAME_B, listed.uetr, &got, &o), LEDGER_OK);
    assert_string_equal(o.reason, "RR04");
    assert_int_equal(b->held_calls, 3);
    net_free(net);
}

typedef struct {
    const char *uetr;
    const char *reason;
    ledger_err_t want;
    char id[CORRIDOR_UETR_LEN + 1];
} cancel_t;

static void cancel_work(node_t *n, void *arg)
{
    cancel_t *c = arg;
    ledger_outcome_t o;
    assert_int_equal(channel_cancel(n->ch, c->uetr, c->reason, c->id, &o), c->want);
}

static void send_cancel_answer(node_t *n, void *arg)
{
    const char *uetr = arg;
    char id[CORRIDOR_UETR_LEN + 1];
    uetr_generate(id);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    memset(hash, 1, sizeof hash);
    Corridor__CancelAnswer ans = CORRIDOR__CANCEL_ANSWER__INIT;
    ans.cancellation_id = id;
    ans.uetr = (char *)uetr;
    ans.confirmation = "CNCL";
    ans.reason = "DUPL";
    ans.status = "RJCT";
    ans.status_reason = "DUPL";
    ans.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t buf[256];
    size_t len = corridor__cancel_answer__pack(&ans, buf);
    assert_int_equal(channel_send_body(n->ch, MSG_CANCEL_ANSWER, buf, len), LEDGER_OK);
}

/* A asks back a payment B holds: cancelled (rejected with A's reason at both ends, B's hold
 * released); one B decided before the request arrived: refused, the payment stays settled; a
 * second request while one is open answers as the first. A CancelAnswer nobody asked for, from
 * a peer holding valid keys, changes nothing. */
static void test_cancellation(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    b->screen = CHANNEL_SCREEN_PROGRAM;
    settlement_t s[2] = {make_payment(a, "RUB", 300), make_payment(a, "RUB", 400)};
    pay(net, A, s, 2);
    assert_true(run_until(net, a_sees_held, s[0].uetr, 10000));
    assert_true(run_until(net, a_sees_held, s[1].uetr, 10000));

    cancel_t first = {s[0].uetr, "DUPL", LEDGER_OK, ""};
    node_turn(a, cancel_work, &first);
    cancel_t again = {s[0].uetr, "FRAD", LEDGER_E_STATE, ""};
    node_turn(a, cancel_work, &again);
    assert_string_equal(again.id, first.id);
    /* B decides the second before A's request for it arrives */
    decide_t release = {s[1].uetr, NULL, LEDGER_OK};
    node_turn(b, decide_work, &release);
    cancel_t late = {s[1].uetr, "CUST", LEDGER_OK, ""};
    node_turn(a, cancel_work, &late);
    settle(net, A, s, 2, 10000);
    settlement_t got;
    ledger_outcome_t o;
    assert_int_equal(ledger_find(a->ledger, NAME_B, s[0].uetr, &got, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "DUPL");
    assert_true(o.cancelled);
    assert_int_equal(ledger_find(b->ledger, NAME_A, s[0].uetr, &got, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, "DUPL");
    assert_true(o.cancelled);
    assert_int_equal(status_at(a, s[1].uetr), STATUS_SETTLED);
    assert_int_equal(ledger_find(a->ledger, NAME_B, s[1].uetr, &got, &o), LEDGER_OK);
    assert_false(o.cancelled);
    assert_string_equal(o.cancel_id, ""); /* the refusal closed the request */
    assert_int_equal(net_of(a, "RUB"), -400);
    assert_int_equal(net_of(b, "RUB"), 400); /* nothing held any more */

    /* an answer to a request B never made, and one for a final payment of A's */
    unsigned before = (unsigned)channel_stats(b->ch).unentitled;
    node_turn(a, send_cancel_answer, s[1].uetr);
    settlement_t probe = make_payment(a, "RUB", 1); /* in order after it: B applied it first */
    b->screen = CHANNEL_SCREEN_PASS;
    pay(net, A, &probe, 1);
    settle(net, A, &probe, 1, 10000);
    assert_int_equal(channel_stats(b->ch).unentitled, before + 1);
    net_free(net);
}

/* An expiry is not masked: a payment held after a reload (which forgets the earliest expiry)
 * does not hide an earlier one; a release that comes after the expiry declines AB05; and a
 * rejection that reaches the payer while its cancellation is open is no cancellation. */
static void test_expiry_not_masked(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    channel_set_wall(b->ch, WALL_START);
    b->screen = CHANNEL_SCREEN_PROGRAM;
    settlement_t s[3] = {make_payment(a, "RUB", 11), make_payment(a, "RUB", 12),
                         make_payment(a, "RUB", 13)};
    s[0].expires_unix_ms = WALL_START + 10000;
    s[1].expires_unix_ms = WALL_START + 1000000000;
    s[2].expires_unix_ms = WALL_START + 10000;
    pay(net, A, &s[0], 1);
    assert_true(run_until(net, a_sees_held, s[0].uetr, 10000));
    pay(net, A, &s[2], 1);
    assert_true(run_until(net, a_sees_held, s[2].uetr, 10000));
    channel_reload(b->ch); /* forgets the earliest expiry */
    pay(net, A, &s[1], 1); /* held with a far one */
    assert_true(run_until(net, a_sees_held, s[1].uetr, 10000));
    cancel_t asked = {s[2].uetr, "UPAY", LEDGER_OK, ""};
    node_turn(a, cancel_work, &asked);
    channel_set_wall(b->ch, WALL_START + 20000);
    node_turn(b, expire_work, NULL); /* both expired ones, whatever was held since */
    decide_t late = {s[1].uetr, NULL, LEDGER_OK};
    channel_set_wall(b->ch, WALL_START + 1000000000);
    node_turn(b, decide_work, &late); /* a release after the expiry */
    settle(net, A, s, 3, 20000);
    settlement_t got;
    ledger_outcome_t o;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ledger_find(a->ledger, NAME_B, s[i].uetr, &got, &o), LEDGER_OK);
        assert_int_equal(o.status, STATUS_REJECTED);
        assert_string_equal(o.reason, "AB05");
        assert_false(o.cancelled); /* s[2]: the expiry came first, then its RJCR */
    }
    assert_string_equal(o.cancel_id, ""); /* the refusal closed the request */
    net_free(net);
}

/* While our announcement waits for the peer's Ack, what we queued after it waits too: the
 * channel has nothing to send before the retransmission timer, and says so (no busy turns). */
static void test_announcement_unacked_waits_for_timer(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A];
    drop_first_t drop = {A, MSG_KEY_ANNOUNCE, 1000};
    net->policy = drop_first;
    net->policy_arg = &drop;
    rotate(net, A, next_keys(a, 0x8b));
    settlement_t s = make_payment(a, "RUB", 21); /* queued after the announcement */
    pay(net, A, &s, 1);
    net_turn(net);
    assert_true(channel_sent_seq(a->ch) > channel_stats(a->ch).acked_seq + 1);
    assert_true(channel_next_deadline(a->ch) > net->now_ms);
    net->policy = NULL;
    settle(net, A, &s, 1, 60000);
    net_free(net);
}

/* ---- returns (pacs.004, PROTOCOL.md 3.9) ---------------------------------------------------- */

typedef struct {
    const char *uetr;  /* the original */
    int64_t amount;    /* 0: all that is left */
    ledger_err_t want; /* from channel_prepare_return */
    bool send;         /* then book it pending and queue it */
    settlement_t r;
} return_work_t;

static void return_work(node_t *n, void *arg)
{
    return_work_t *w = arg;
    assert_int_equal(channel_prepare_return(n->ch, w->uetr, w->amount, "AC04", &w->r), w->want);
    if (w->want == LEDGER_OK && w->send) {
        ledger_outcome_t o;
        assert_int_equal(channel_send_settlement(n->ch, &w->r, &o), LEDGER_OK);
        assert_int_equal(o.status, STATUS_PENDING);
    }
}

/* The payee prepares (and with `send`, sends) a return at its turn; what channel_prepare_return
 * gave back in w->r. A refusal writes nothing. */
static void return_at(node_t *n, return_work_t *w)
{
    uint64_t rows = rows_of(n);
    node_turn(n, return_work, w);
    if (w->want != LEDGER_OK || !w->send) {
        assert_int_equal(rows_of(n), rows);
    }
}

static void body_hash_of(const settlement_t *s, uint8_t hash[static SETTLEMENT_HASH_BYTES])
{
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(s, &body, &len), 0);
    settlement_body_hash(body, len, hash);
    free(body);
}

static ledger_outcome_t outcome_at(node_t *n, const char *uetr)
{
    settlement_t s;
    ledger_outcome_t o;
    assert_int_equal(ledger_find(n->ledger, n->config->peers[0].card.name, uetr, &s, &o),
                     LEDGER_OK);
    return o;
}

/* The answers n received for `uetr`, the last in *last. */
static size_t reports_for(const node_t *n, const char *uetr, report_seen_t *last)
{
    size_t count = 0;
    for (size_t i = 0; i < n->reports_count; i++) {
        if (strcmp(n->reports[i].uetr, uetr) == 0) {
            count++;
            if (last != NULL) {
                *last = n->reports[i];
            }
        }
    }
    return count;
}

/* A pays B 1000 RUB; B gives 300 of it back: booked pending at B, accepted by A (ACSC naming
 * the Return's body), both positions move back by 300, the payment stays settled with
 * returned_minor 300 at both ends, the return is a record of its own. */
static void test_return_accepted(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 1000);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    uint64_t rows_a = rows_of(a), rows_b = rows_of(b);

    return_work_t w = {.uetr = s.uetr, .amount = 300, .want = LEDGER_OK, .send = true};
    return_at(b, &w);
    assert_true(settlement_is_return(&w.r));
    assert_string_equal(w.r.original_uetr, s.uetr);
    assert_string_equal(w.r.return_reason, "AC04");
    assert_string_equal(w.r.currency, "RUB");
    assert_int_equal(uetr_check(w.r.uetr), VALID_OK);
    uint8_t bound[SETTLEMENT_HASH_BYTES];
    body_hash_of(&s, bound); /* the body A signed */
    assert_memory_equal(w.r.original_hash, bound, sizeof bound);
    assert_int_equal(status_at(b, w.r.uetr), STATUS_PENDING);
    settle(net, B, &w.r, 1, 10000);

    assert_int_equal(status_at(a, w.r.uetr), STATUS_SETTLED);
    assert_int_equal(status_at(b, w.r.uetr), STATUS_SETTLED);
    report_seen_t rep;
    assert_int_equal(reports_for(b, w.r.uetr, &rep), 1);
    assert_string_equal(rep.status, "ACSC");
    assert_string_equal(rep.reason, "");
    uint8_t answered[SETTLEMENT_HASH_BYTES];
    body_hash_of(&w.r, answered); /* the Return body */
    assert_true(rep.hashed);
    assert_memory_equal(rep.settlement_hash, answered, sizeof answered);

    assert_int_equal(net_of(a, "RUB"), -700);
    assert_int_equal(net_of(b, "RUB"), 700);
    for (int i = 0; i < 2; i++) {
        ledger_outcome_t o = outcome_at(&net->node[i], s.uetr);
        assert_int_equal(o.status, STATUS_SETTLED);
        assert_int_equal(o.returned_minor, 300);
        settlement_t got;
        assert_int_equal(ledger_find(net->node[i].ledger, net->node[i].config->peers[0].card.name,
                                     w.r.uetr, &got, &o),
                         LEDGER_OK);
        assert_true(settlement_is_return(&got));
        assert_string_equal(got.original_uetr, s.uetr);
        assert_int_equal(got.amount_minor, 300);
        assert_int_equal(got.direction, i == A ? DIRECTION_IN : DIRECTION_OUT);
        ledger_counts_t c = counts_at(&net->node[i]);
        assert_int_equal(c.settled, 1);
        assert_int_equal(c.returned, 0);
        assert_int_equal(c.returns_accepted, 1);
        assert_int_equal(c.returns_pending, 0);
        assert_int_equal(c.returns_rejected, 0);
    }
    assert_int_equal(rows_of(a), rows_a + 1); /* booked */
    assert_int_equal(rows_of(b), rows_b + 2); /* pending, posted */
    net_free(net);
}

/* Partial returns up to the payment: one pending counts against what is left, the second takes
 * the rest (amount 0), a third is refused by channel_prepare_return with nothing written; so are
 * a return of a payment that is B's own and one of a payment B never had. */
static void test_returns_up_to_the_full_amount(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 1000);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    settlement_t own = make_payment(b, "RUB", 50);
    pay(net, B, &own, 1);
    settle(net, B, &own, 1, 10000);

    return_work_t first = {.uetr = s.uetr, .amount = 600, .want = LEDGER_OK, .send = true};
    return_at(b, &first);
    return_work_t over = {
        .uetr = s.uetr, .amount = 401, .want = LEDGER_E_STATE, .send = false}; /* 600 pending */
    return_at(b, &over);
    return_work_t rest = {.uetr = s.uetr, .amount = 0, .want = LEDGER_OK, .send = true};
    return_at(b, &rest);
    assert_int_equal(rest.r.amount_minor, 400);
    settlement_t both[2] = {first.r, rest.r};
    settle(net, B, both, 2, 10000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(status_at(a, both[i].uetr), STATUS_SETTLED);
        assert_int_equal(status_at(b, both[i].uetr), STATUS_SETTLED);
    }
    uint64_t rows_b = rows_of(b);
    return_work_t third = {.uetr = s.uetr, .amount = 1, .want = LEDGER_E_STATE, .send = false};
    return_at(b, &third);
    return_work_t nothing_left = {
        .uetr = s.uetr, .amount = 0, .want = LEDGER_E_STATE, .send = false};
    return_at(b, &nothing_left);
    return_work_t ours = {.uetr = own.uetr, .amount = 10, .want = LEDGER_E_STATE, .send = false};
    return_at(b, &ours);
    char unknown[CORRIDOR_UETR_LEN + 1];
    uetr_generate(unknown);
    return_work_t none = {.uetr = unknown, .amount = 10, .want = LEDGER_E_NOT_FOUND, .send = false};
    return_at(b, &none);
    assert_int_equal(rows_of(b), rows_b);

    assert_int_equal(net_of(a, "RUB"), 50);
    assert_int_equal(net_of(b, "RUB"), -50);
    for (int i = 0; i < 2; i++) {
        ledger_outcome_t o = outcome_at(&net->node[i], s.uetr);
        assert_int_equal(o.status, STATUS_SETTLED); /* the record never changes */
        assert_int_equal(o.returned_minor, 1000);
        ledger_counts_t c = counts_at(&net->node[i]);
        assert_int_equal(c.returned, 1); /* wholly returned */
        assert_int_equal(c.settled, 1);  /* B's own payment */
        assert_int_equal(c.returns_accepted, 2);
    }
    net_free(net);
}

typedef struct {
    const char *return_id;
    const char *original_uetr;
    int64_t amount;
    const char *currency;
    const char *reason;
    const uint8_t *hash;
    size_t hash_len;
} raw_return_t;

static void raw_return_work(node_t *n, void *arg)
{
    const raw_return_t *r = arg;
    Corridor__Return msg = CORRIDOR__RETURN__INIT;
    msg.return_id = (char *)r->return_id;
    msg.original_uetr = (char *)r->original_uetr;
    msg.amount_minor = r->amount;
    msg.currency = (char *)r->currency;
    msg.reason = (char *)r->reason;
    msg.settlement_hash = (ProtobufCBinaryData){r->hash_len, (uint8_t *)r->hash};
    uint8_t buf[512];
    assert_true(corridor__return__get_packed_size(&msg) <= sizeof buf);
    size_t len = corridor__return__pack(&msg, buf);
    assert_int_equal(channel_send_body(n->ch, MSG_RETURN, buf, len), LEDGER_OK);
}

typedef struct {
    const node_t *n;
    const char *uetr;
    size_t count;
} reports_wait_t;

static bool reports_reached(net_t *net, void *arg)
{
    (void)net;
    const reports_wait_t *w = arg;
    return reports_for(w->n, w->uetr, NULL) >= w->count;
}

/* B sends r as it is (a hostile or buggy payee); A's answer, once B has it. */
static report_seen_t send_raw_return(net_t *net, const raw_return_t *r)
{
    node_t *b = &net->node[B];
    reports_wait_t w = {b, r->return_id, reports_for(b, r->return_id, NULL) + 1};
    node_turn(b, raw_return_work, (void *)r);
    if (!run_until(net, reports_reached, &w, 10000)) {
        fail_msg("no answer to the Return %s", r->return_id);
    }
    report_seen_t rep;
    reports_for(b, r->return_id, &rep);
    return rep;
}

/* A refused return: answered RJCT `reason` naming the body sent, kept at A as a rejected return
 * (one row), nothing moved. */
static void assert_refused(net_t *net, const raw_return_t *r, const char *reason)
{
    node_t *a = &net->node[A];
    uint64_t rows = rows_of(a);
    int64_t position = net_of(a, "RUB");
    report_seen_t rep = send_raw_return(net, r);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, reason);
    assert_int_equal(rows_of(a), rows + 1);
    assert_int_equal(net_of(a, "RUB"), position);
    settlement_t got;
    ledger_outcome_t o;
    assert_int_equal(ledger_find(a->ledger, NAME_B, r->return_id, &got, &o), LEDGER_OK);
    assert_true(settlement_is_return(&got));
    assert_int_equal(got.direction, DIRECTION_IN);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(o.reason, reason);
}

/* Returns A must refuse, each answered and booked as refused with nothing moved: of a payment A
 * never made, of B's payment to A instead of A's, naming another body than the one A signed,
 * in another currency, over what is left (AM09), malformed (FF01); an id that is a payment's
 * UETR is DUPL and writes nothing; a Return sent again is answered as before and booked once. */
/* The cap A grants B bounds returns as it bounds B's payments (3.9.3): B, which paid A up to
 * that cap, cannot come to owe A more by returning A's payment: refused AM02, nothing moves. */
static void test_return_within_the_cap(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 1000);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    settlement_t t = make_payment(b, "RUB", CAP + 1000); /* A's net with B: exactly the cap */
    pay(net, B, &t, 1);
    settle(net, B, &t, 1, 10000);
    assert_int_equal(status_at(a, t.uetr), STATUS_SETTLED);
    return_work_t w = {.uetr = s.uetr, .amount = 300, .want = LEDGER_OK, .send = true};
    return_at(b, &w);
    settle(net, B, &w.r, 1, 10000);
    assert_int_equal(status_at(a, w.r.uetr), STATUS_REJECTED);
    assert_int_equal(status_at(b, w.r.uetr), STATUS_REJECTED);
    assert_string_equal(outcome_at(a, w.r.uetr).reason, "AM02");
    assert_int_equal(outcome_at(a, s.uetr).returned_minor, 0);
    assert_int_equal(outcome_at(b, s.uetr).returned_minor, 0);
    net_free(net);
}

static void test_hostile_returns(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    settlement_t s = make_payment(a, "RUB", 1000);
    pay(net, A, &s, 1);
    settle(net, A, &s, 1, 10000);
    settlement_t t = make_payment(b, "RUB", 500); /* B's payment to A */
    pay(net, B, &t, 1);
    settle(net, B, &t, 1, 10000);
    uint8_t bound[SETTLEMENT_HASH_BYTES], t_bound[SETTLEMENT_HASH_BYTES],
        wrong[SETTLEMENT_HASH_BYTES];
    body_hash_of(&s, bound);
    body_hash_of(&t, t_bound);
    memcpy(wrong, bound, sizeof wrong);
    wrong[0] ^= 1;
    char id[10][CORRIDOR_UETR_LEN + 1], unknown[CORRIDOR_UETR_LEN + 1];
    for (int i = 0; i < 10; i++) {
        uetr_generate(id[i]);
    }
    uetr_generate(unknown);
    uint64_t unentitled = channel_stats(a->ch).unentitled;

    raw_return_t never = {id[0], unknown, 100, "RUB", "AC04", bound, sizeof bound};
    assert_refused(net, &never, "NOOR");
    raw_return_t theirs = {id[1], t.uetr, 100, "RUB", "AC04", t_bound, sizeof t_bound};
    assert_refused(net, &theirs, "NOOR");
    raw_return_t unbound = {id[2], s.uetr, 100, "RUB", "AC04", wrong, sizeof wrong};
    assert_refused(net, &unbound, "NOOR");
    raw_return_t other_currency = {id[3], s.uetr, 100, "IRR", "AC04", bound, sizeof bound};
    assert_refused(net, &other_currency, "NOOR");
    raw_return_t too_much = {id[4], s.uetr, 1001, "RUB", "AC04", bound, sizeof bound};
    assert_refused(net, &too_much, "AM09");
    raw_return_t short_hash = {id[5], s.uetr, 100, "RUB", "AC04", bound, 5};
    assert_refused(net, &short_hash, "FF01");
    raw_return_t bad_original = {id[6], "not-a-uetr", 100, "RUB", "AC04", bound, sizeof bound};
    assert_refused(net, &bad_original, "FF01");
    raw_return_t bad_reason = {id[7], s.uetr, 100, "RUB", "ac04", bound, sizeof bound};
    assert_refused(net, &bad_reason, "FF01");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 5);

    /* a genuine partial return, then the same Return again under a new sequence */
    return_work_t w = {.uetr = s.uetr, .amount = 400, .want = LEDGER_OK, .send = true};
    return_at(b, &w);
    settle(net, B, &w.r, 1, 10000);
    assert_int_equal(status_at(a, w.r.uetr), STATUS_SETTLED);
    uint64_t rows_a = rows_of(a);
    raw_return_t again = {w.r.uetr, s.uetr, 400, "RUB", "AC04", bound, sizeof bound};
    report_seen_t rep = send_raw_return(net, &again);
    assert_string_equal(rep.status, "ACSC");
    assert_int_equal(reports_for(b, w.r.uetr, NULL), 2);
    assert_int_equal(rows_of(a), rows_a);
    assert_int_equal(outcome_at(a, s.uetr).returned_minor, 400);
    /* the same Return naming another body: DUPL, not our ACSC naming that body */
    raw_return_t again_unbound = {w.r.uetr, s.uetr, 400, "RUB", "AC04", wrong, sizeof wrong};
    rep = send_raw_return(net, &again_unbound);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "DUPL");
    assert_int_equal(rows_of(a), rows_a);

    /* 600 left: 601 is over it */
    raw_return_t over_rest = {id[8], s.uetr, 601, "RUB", "AC04", bound, sizeof bound};
    assert_refused(net, &over_rest, "AM09");

    /* the payment's UETR as a return id: other content */
    raw_return_t reused = {s.uetr, s.uetr, 100, "RUB", "AC04", bound, sizeof bound};
    rows_a = rows_of(a);
    rep = send_raw_return(net, &reused);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "DUPL");
    assert_int_equal(rows_of(a), rows_a);
    ledger_outcome_t o = outcome_at(a, s.uetr);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(o.returned_minor, 400);

    assert_int_equal(net_of(a, "RUB"), -1000 + 500 + 400);
    assert_int_equal(net_of(b, "RUB"), 1000 - 500 - 400);
    ledger_counts_t c = counts_at(a);
    assert_int_equal(c.returns_accepted, 1);
    assert_int_equal(c.returns_rejected, 9);
    assert_int_equal(c.returns_pending, 0);
    net_free(net);
}

/* ---- FX trades (PROTOCOL.md 3.10) ----------------------------------------------------------- */

/* A trade A proposes to B: A pays `rub` RUB minor and receives `irr` IRR minor. */
static fx_trade_t make_trade(int64_t rub, int64_t irr, int64_t expires_ms)
{
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    uetr_generate(t.fx_id);
    uetr_generate(t.legs[FX_PAY].uetr);
    uetr_generate(t.legs[FX_RECEIVE].uetr);
    snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "RUB");
    snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "IRR");
    t.legs[FX_PAY].amount_minor = rub;
    t.legs[FX_RECEIVE].amount_minor = irr;
    t.created_unix_ms = WALL_START;
    t.expires_unix_ms = expires_ms;
    return t;
}

typedef struct {
    fx_trade_t *t;
    const char *want_why; /* NULL: proposed */
} propose_t;

static void propose_work(node_t *n, void *arg)
{
    propose_t *p = arg;
    const char *why = "unset";
    ledger_outcome_t o;
    memset(&o, 0, sizeof o);
    assert_int_equal(channel_propose_fx(n->ch, p->t, &why, &o), LEDGER_OK);
    if (p->want_why == NULL) {
        assert_null(why);
        assert_int_equal(o.status, STATUS_PENDING);
    } else {
        assert_non_null(why);
        assert_string_equal(why, p->want_why);
    }
}

/* The trade's status at n (both legs agree), or -1 when n has no such trade. */
static status_t trade_at(node_t *n, const char *fx_id)
{
    settlement_t legs[2];
    ledger_outcome_t o;
    ledger_err_t rc = ledger_fx_find(n->ledger, n->config->peers[0].card.name, fx_id, legs, &o);
    if (rc != LEDGER_OK) {
        return (status_t)-1;
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(status_at(n, legs[i].uetr), o.status);
        assert_int_equal(legs[i].fx_leg, i == 0 ? FX_LEG_PROPOSER_PAYS : FX_LEG_ACCEPTOR_PAYS);
    }
    return o.status;
}

static const char *trade_reason(node_t *n, const fx_trade_t *t)
{
    static char reason[2][16];
    for (int i = 0; i < 2; i++) {
        snprintf(reason[i], sizeof reason[i], "%s", outcome_at(n, t->legs[i].uetr).reason);
    }
    assert_string_equal(reason[0], reason[1]);
    return reason[0];
}

/* A's trade final at A (not pending) and every message acknowledged. */
static bool trade_final(net_t *net, void *arg)
{
    const fx_trade_t *t = arg;
    if (trade_at(&net->node[A], t->fx_id) == STATUS_PENDING) {
        return false;
    }
    channel_stats_t a = channel_stats(net->node[A].ch), b = channel_stats(net->node[B].ch);
    return a.acked_seq == a.sent_seq && b.acked_seq == b.sent_seq;
}

static void propose_and_settle(net_t *net, fx_trade_t *t)
{
    propose_t p = {t, NULL};
    node_turn(&net->node[A], propose_work, &p);
    assert_int_equal(trade_at(&net->node[A], t->fx_id), STATUS_PENDING);
    if (!run_until(net, trade_final, t, 10000)) {
        fail_msg("trade %s not final at A", t->fx_id);
    }
}

static void set_band(node_t *n, const char *base, const char *quote, const char *text)
{
    config_peer_t *p = &n->config->peers[0];
    config_fx_band_t *b = &p->fx_bands[p->fx_bands_count++];
    memset(b, 0, sizeof *b);
    snprintf(b->base, sizeof b->base, "%s", base);
    snprintf(b->quote, sizeof b->quote, "%s", quote);
    assert_null(config_fx_band_parse(text, b));
}

/* The cap n grants its peer in IRR (the channel's CAP is too small for trades at 450). */
#define IRR_CAP INT64_C(1000000000)
static void lift_irr_cap(node_t *n)
{
    assert_int_equal(config_peer_set_limit(&n->config->peers[0], "IRR", IRR_CAP), CONFIG_OK);
}

static int64_t pending_of(node_t *n, const char *currency)
{
    int64_t net = 0, pending = 0;
    assert_int_equal(
        ledger_position(n->ledger, n->config->peers[0].card.name, currency, &net, &pending),
        LEDGER_OK);
    return pending;
}

/* B's answer for the trade: one, `status` with `reason`, naming the body A signed. */
static void assert_trade_answer(net_t *net, const fx_trade_t *t, size_t count, const char *status,
                                const char *reason)
{
    report_seen_t rep;
    assert_int_equal(reports_for(&net->node[A], t->fx_id, &rep), count);
    assert_string_equal(rep.status, status);
    assert_string_equal(rep.reason, reason);
    assert_true(rep.hashed);
    assert_memory_equal(rep.settlement_hash, t->legs[0].original_hash, SETTLEMENT_HASH_BYTES);
}

/* B's band holds A's rate: both legs settled at both ends, positions mirror in both currencies;
 * a rate outside it (either way round) is refused AG01 at both ends with nothing moved. */
static void test_fx_band_accepts_and_refuses(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    set_band(b, "RUB", "IRR", "440..460");
    assert_int_equal(config_peer_set_limit(&a->config->peers[0], "IRR", CORRIDOR_AMOUNT_MINOR_MAX),
                     CONFIG_OK);
    fx_trade_t t = make_trade(1000000, 450000000, 0);
    propose_and_settle(net, &t);
    assert_int_equal(trade_at(a, t.fx_id), STATUS_SETTLED);
    assert_int_equal(trade_at(b, t.fx_id), STATUS_SETTLED);
    assert_trade_answer(net, &t, 1, "ACSC", "");
    assert_int_equal(net_of(a, "RUB"), -1000000);
    assert_int_equal(net_of(a, "IRR"), 450000000);
    assert_int_equal(net_of(b, "RUB"), 1000000);
    assert_int_equal(net_of(b, "IRR"), -450000000);
    assert_int_equal(a->finals, 1);
    assert_int_equal(a->last_final.status, STATUS_SETTLED);
    assert_int_equal(rows_of(a), 4); /* pending x2, posted x2 */
    assert_int_equal(rows_of(b), 2); /* booked x2 */
    assert_int_equal(counts_at(a).fx[STATUS_SETTLED], 1);
    assert_int_equal(counts_at(b).fx[STATUS_SETTLED], 1);

    /* the edge of the band is inside it, a millionth beyond is not */
    fx_trade_t edge = make_trade(1000000, 460000000, 0);
    propose_and_settle(net, &edge);
    assert_int_equal(trade_at(b, edge.fx_id), STATUS_SETTLED);
    fx_trade_t beyond = make_trade(1000000, 460000001, 0);
    assert_string_equal(beyond.rate, "");
    propose_and_settle(net, &beyond);
    assert_string_equal(beyond.rate, "460.000001");
    assert_int_equal(trade_at(a, beyond.fx_id), STATUS_REJECTED);
    assert_int_equal(trade_at(b, beyond.fx_id), STATUS_REJECTED);
    assert_string_equal(trade_reason(a, &beyond), "AG01");
    assert_string_equal(trade_reason(b, &beyond), "AG01");
    assert_trade_answer(net, &beyond, 1, "RJCT", "AG01");
    /* A paying IRR for RUB: the same band applies, the other way round */
    assert_int_equal(config_peer_set_limit(&b->config->peers[0], "IRR", CORRIDOR_AMOUNT_MINOR_MAX),
                     CONFIG_OK);
    fx_trade_t low = make_trade(0, 0, 0);
    snprintf(low.legs[FX_PAY].currency, sizeof low.legs[FX_PAY].currency, "IRR");
    snprintf(low.legs[FX_RECEIVE].currency, sizeof low.legs[FX_RECEIVE].currency, "RUB");
    low.legs[FX_PAY].amount_minor = 439999999;
    low.legs[FX_RECEIVE].amount_minor = 1000000;
    propose_and_settle(net, &low);
    assert_string_equal(trade_reason(b, &low), "AG01");
    fx_trade_t inside = make_trade(0, 0, 0);
    snprintf(inside.legs[FX_PAY].currency, sizeof inside.legs[FX_PAY].currency, "IRR");
    snprintf(inside.legs[FX_RECEIVE].currency, sizeof inside.legs[FX_RECEIVE].currency, "RUB");
    inside.legs[FX_PAY].amount_minor = 440000000;
    inside.legs[FX_RECEIVE].amount_minor = 1000000;
    propose_and_settle(net, &inside);
    assert_int_equal(trade_at(b, inside.fx_id), STATUS_SETTLED);
    assert_int_equal(trade_at(a, inside.fx_id), STATUS_SETTLED);

    int64_t rub = 1000000, irr = 450000000 + 460000000 - 440000000;
    assert_int_equal(net_of(a, "RUB"), -rub);
    assert_int_equal(net_of(a, "IRR"), irr);
    assert_int_equal(net_of(b, "RUB"), rub);
    assert_int_equal(net_of(b, "IRR"), -irr);
    assert_int_equal(counts_at(a).fx[STATUS_SETTLED], 3);
    assert_int_equal(counts_at(a).fx[STATUS_REJECTED], 2);
    assert_int_equal(counts_at(b).fx[STATUS_REJECTED], 2);
    assert_int_equal(channel_stats(b->ch).unentitled, 0); /* out of band is not hostile */
    net_free(net);
}

static bool a_sees_trade_held(net_t *net, void *arg)
{
    const fx_trade_t *t = arg;
    for (int i = 0; i < 2; i++) {
        bool held = false;
        if (ledger_at_peer(net->node[A].ledger, NAME_B, t->legs[i].uetr, &held) != LEDGER_OK ||
            !held) {
            return false;
        }
    }
    return true;
}

/* With no band for the pair B holds both legs for review (PDNG, which A notes on both while they
 * stay pending and reserved); B's decision by the trade's id releases both, at both ends. A held
 * trade past its expiry is declined AB05, both legs; one that arrives expired is refused. */
static void test_fx_held_released_and_expired(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    channel_set_wall(b->ch, WALL_START);
    lift_irr_cap(a);
    fx_trade_t t = make_trade(1000000, 450000000, WALL_START + 60000);
    fx_trade_t x = make_trade(2000, 900000, WALL_START + 10000);
    propose_t p = {&t, NULL}, q = {&x, NULL};
    node_turn(a, propose_work, &p);
    node_turn(a, propose_work, &q);
    assert_true(run_until(net, a_sees_trade_held, &t, 10000));
    assert_true(run_until(net, a_sees_trade_held, &x, 10000));
    assert_int_equal(trade_at(b, t.fx_id), STATUS_HELD);
    assert_int_equal(trade_at(a, t.fx_id), STATUS_PENDING);
    assert_trade_answer(net, &t, 1, "PDNG", "");
    assert_int_equal(pending_of(b, "RUB"), 1002000);
    assert_int_equal(pending_of(b, "IRR"), -450900000);
    assert_int_equal(pending_of(a, "IRR"), 450900000);
    /* A's reservation: B's payment of IRR that fits the cap alone is refused AM02 */
    settlement_t fits = make_payment(b, "IRR", IRR_CAP - 450000000 - 1);
    pay(net, B, &fits, 1);
    settle(net, B, &fits, 1, 10000);
    assert_int_equal(status_at(b, fits.uetr), STATUS_REJECTED);
    assert_string_equal(outcome_at(a, fits.uetr).reason, "AM02");

    decide_t release = {t.fx_id, NULL, LEDGER_OK};
    node_turn(b, decide_work, &release);
    assert_int_equal(trade_at(b, t.fx_id), STATUS_SETTLED);
    decide_t again = {t.legs[1].uetr, "RR04", LEDGER_E_STATE}; /* by a leg: decided already */
    node_turn(b, decide_work, &again);
    if (!run_until(net, trade_final, &t, 10000)) {
        fail_msg("released trade not final at A");
    }
    assert_int_equal(trade_at(a, t.fx_id), STATUS_SETTLED);
    assert_trade_answer(net, &t, 2, "ACSC", "");
    assert_int_equal(trade_at(b, x.fx_id), STATUS_HELD);

    channel_set_wall(b->ch, WALL_START + 10000);
    node_turn(b, expire_work, NULL);
    if (!run_until(net, trade_final, &x, 10000)) {
        fail_msg("expired trade not final at A");
    }
    assert_int_equal(trade_at(a, x.fx_id), STATUS_REJECTED);
    assert_int_equal(trade_at(b, x.fx_id), STATUS_REJECTED);
    assert_string_equal(trade_reason(a, &x), "AB05");
    assert_string_equal(trade_reason(b, &x), "AB05");
    assert_trade_answer(net, &x, 2, "RJCT", "AB05");

    /* arrives after its expiry: refused at once */
    fx_trade_t late = make_trade(3000, 1350000, WALL_START + 10000);
    propose_and_settle(net, &late);
    assert_string_equal(trade_reason(a, &late), "AB05");
    assert_trade_answer(net, &late, 1, "RJCT", "AB05");

    assert_int_equal(net_of(a, "RUB"), -1000000);
    assert_int_equal(net_of(a, "IRR"), 450000000);
    assert_int_equal(net_of(b, "RUB"), 1000000);
    assert_int_equal(net_of(b, "IRR"), -450000000);
    /* released: the reservation became the position; the payment that waits fits again */
    settlement_t now_fits = make_payment(b, "IRR", IRR_CAP - 450000000 - 1);
    pay(net, B, &now_fits, 1);
    settle(net, B, &now_fits, 1, 10000);
    assert_int_equal(status_at(a, now_fits.uetr), STATUS_SETTLED);
    assert_int_equal(counts_at(a).fx[STATUS_SETTLED], 1);
    assert_int_equal(counts_at(a).fx[STATUS_REJECTED], 2);
    assert_int_equal(counts_at(b).fx[STATUS_HELD], 0);
    net_free(net);
}

/* Caps on each side: A refuses to propose a trade whose IRR leg would take B's debt over the cap
 * A grants it (nothing written); B refuses AM02 a trade whose RUB leg, the one B receives, would
 * take A's debt over the cap B grants A; both legs at both ends. */
static void test_fx_caps_each_side(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    set_band(b, "RUB", "IRR", "440..460");
    fx_trade_t over = make_trade(1000, CAP + 1, 0);
    over.legs[FX_PAY].amount_minor = (CAP + 1) / 450; /* in band, not that it is asked */
    propose_t p = {&over, "AM02"};
    uint64_t rows = rows_of(a), sent = channel_sent_seq(a->ch);
    node_turn(a, propose_work, &p);
    assert_int_equal(rows_of(a), rows);
    assert_int_equal(channel_sent_seq(a->ch), sent);
    assert_int_equal(trade_at(a, over.fx_id), (status_t)-1);

    /* B's cap on A in RUB: CAP; A's cap on B in IRR lifted so A proposes */
    assert_int_equal(config_peer_set_limit(&a->config->peers[0], "IRR", CORRIDOR_AMOUNT_MINOR_MAX),
                     CONFIG_OK);
    fx_trade_t big = make_trade(CAP + 1, (CAP + 1) * 450, 0);
    propose_and_settle(net, &big);
    assert_int_equal(trade_at(a, big.fx_id), STATUS_REJECTED);
    assert_int_equal(trade_at(b, big.fx_id), STATUS_REJECTED);
    assert_string_equal(trade_reason(b, &big), "AM02");
    assert_trade_answer(net, &big, 1, "RJCT", "AM02");
    fx_trade_t fits = make_trade(CAP, CAP * 450, 0);
    propose_and_settle(net, &fits);
    assert_int_equal(trade_at(b, fits.fx_id), STATUS_SETTLED);
    assert_int_equal(net_of(b, "RUB"), CAP);
    assert_int_equal(net_of(a, "IRR"), CAP * 450);
    /* the cap is full: one more minor unit is refused */
    fx_trade_t one = make_trade(1, 450, 0);
    propose_and_settle(net, &one);
    assert_string_equal(trade_reason(a, &one), "AM02");
    net_free(net);
}

typedef struct {
    const char *fx_id;
    const Corridor__FxLeg *pay, *receive;
    const char *rate;
} raw_fx_t;

static void raw_fx_work(node_t *n, void *arg)
{
    const raw_fx_t *r = arg;
    Corridor__FxProposal msg = CORRIDOR__FX_PROPOSAL__INIT;
    msg.fx_id = (char *)r->fx_id;
    msg.pay = (Corridor__FxLeg *)r->pay;
    msg.receive = (Corridor__FxLeg *)r->receive;
    msg.rate = (char *)r->rate;
    msg.created_unix_ms = WALL_START;
    uint8_t buf[512];
    assert_true(corridor__fx_proposal__get_packed_size(&msg) <= sizeof buf);
    size_t len = corridor__fx_proposal__pack(&msg, buf);
    assert_int_equal(channel_send_body(n->ch, MSG_FX_PROPOSAL, buf, len), LEDGER_OK);
}

/* B sends the FxProposal r as it is; A's answer, once B has it. */
static report_seen_t send_raw_fx(net_t *net, const raw_fx_t *r)
{
    node_t *b = &net->node[B];
    reports_wait_t w = {b, r->fx_id, reports_for(b, r->fx_id, NULL) + 1};
    node_turn(b, raw_fx_work, (void *)r);
    if (!run_until(net, reports_reached, &w, 10000)) {
        fail_msg("no answer to the FxProposal %s", r->fx_id);
    }
    report_seen_t rep;
    reports_for(b, r->fx_id, &rep);
    return rep;
}

typedef struct {
    const char *uetr;
    const char *status;
    const uint8_t *hash;
} raw_report_t;

static void raw_report_work(node_t *n, void *arg)
{
    const raw_report_t *r = arg;
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = (char *)r->uetr;
    sr.status = (char *)r->status;
    sr.reason = strcmp(r->status, "RJCT") == 0 ? "AG01" : "";
    sr.currency = "RUB";
    sr.settlement_hash = (ProtobufCBinaryData){SETTLEMENT_HASH_BYTES, (uint8_t *)r->hash};
    uint8_t buf[512];
    assert_true(corridor__status_report__get_packed_size(&sr) <= sizeof buf);
    size_t len = corridor__status_report__pack(&sr, buf);
    assert_int_equal(channel_send_body(n->ch, MSG_STATUS_REPORT, buf, len), LEDGER_OK);
}

/* B sends a StatusReport as it is; true once A has applied it. */
static void send_raw_report(net_t *net, const raw_report_t *r)
{
    node_t *b = &net->node[B];
    node_turn(b, raw_report_work, (void *)r);
    uint64_t want = channel_sent_seq(b->ch);
    for (int i = 0; i < 200 && channel_stats(net->node[A].ch).applied_seq < want; i++) {
        net_turn(net);
    }
    assert_true(channel_stats(net->node[A].ch).applied_seq >= want);
}

/* A peer's hostile trades, each refused, answered RJCT FF01 naming the trade and counted: a leg
 * missing, one UETR for both legs (neither recorded), a rate its legs do not imply (recorded
 * refused); an answer for a trade A never proposed and one for a trade B proposed change nothing
 * and are counted; an answer naming another body than A's FxProposal is counted and ignored. */
static void test_fx_hostile(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    set_band(a, "RUB", "IRR", "440..460");
    set_band(b, "RUB", "IRR", "440..460");
    lift_irr_cap(a);
    char id[8][CORRIDOR_UETR_LEN + 1], u[8][CORRIDOR_UETR_LEN + 1];
    for (int i = 0; i < 8; i++) {
        uetr_generate(id[i]);
        uetr_generate(u[i]);
    }
    Corridor__FxLeg pay = CORRIDOR__FX_LEG__INIT, receive = CORRIDOR__FX_LEG__INIT;
    pay.uetr = u[0];
    pay.amount_minor = 1000000;
    pay.currency = "RUB";
    receive.uetr = u[1];
    receive.amount_minor = 450000000;
    receive.currency = "IRR";
    uint64_t unentitled = channel_stats(a->ch).unentitled, rows = rows_of(a);

    raw_fx_t missing = {id[0], &pay, NULL, "450"};
    report_seen_t rep = send_raw_fx(net, &missing);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "FF01");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 1);
    assert_int_equal(trade_at(a, id[0]), (status_t)-1);
    raw_fx_t missing_pay = {id[1], NULL, &receive, "450"};
    rep = send_raw_fx(net, &missing_pay);
    assert_string_equal(rep.reason, "FF01");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 2);
    assert_int_equal(status_at(a, u[1]), (status_t)-1);

    Corridor__FxLeg twin = receive;
    twin.uetr = u[0];
    raw_fx_t same_uetr = {id[2], &pay, &twin, "450"};
    rep = send_raw_fx(net, &same_uetr);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "FF01");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 3);
    assert_int_equal(status_at(a, u[0]), (status_t)-1);
    assert_int_equal(rows_of(a), rows); /* none of them recorded */

    raw_fx_t bad_rate = {id[3], &pay, &receive, "451"};
    rep = send_raw_fx(net, &bad_rate);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "FF01");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 4);
    assert_int_equal(trade_at(a, id[3]), STATUS_REJECTED);
    assert_int_equal(net_of(a, "RUB"), 0);
    assert_int_equal(net_of(a, "IRR"), 0);

    /* the genuine trade with those legs, under another id: legs already used, DUPL */
    raw_fx_t reuse = {id[4], &pay, &receive, "450"};
    rep = send_raw_fx(net, &reuse);
    assert_string_equal(rep.reason, "DUPL");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 5);
    assert_int_equal(trade_at(a, id[4]), (status_t)-1);
    /* fresh legs: accepted (the hostile peer may still trade honestly) */
    Corridor__FxLeg pay2 = pay, receive2 = receive;
    pay2.uetr = u[5];
    receive2.uetr = u[6];
    raw_fx_t honest = {id[5], &pay2, &receive2, "450"};
    rep = send_raw_fx(net, &honest);
    assert_string_equal(rep.status, "ACSC");
    assert_int_equal(trade_at(a, id[5]), STATUS_SETTLED);
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 5);

    /* a payment under the trade's id: that id is taken on the channel, DUPL, nothing booked */
    settlement_t under_id = make_payment(b, "RUB", 500);
    snprintf(under_id.uetr, sizeof under_id.uetr, "%s", id[5]);
    rows = rows_of(a);
    batch_t one = {&under_id, 1};
    node_turn(b, send_work, &one);
    settle(net, B, &under_id, 1, 10000);
    assert_int_equal(status_at(b, under_id.uetr), STATUS_REJECTED);
    assert_string_equal(outcome_at(b, under_id.uetr).reason, "DUPL");
    assert_int_equal(rows_of(a), rows);
    assert_int_equal(trade_at(a, id[5]), STATUS_SETTLED);

    /* answers A must not apply: for the trade B proposed, for a trade nobody proposed */
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    memset(hash, 7, sizeof hash);
    rows = rows_of(a);
    raw_report_t theirs = {id[5], "RJCT", hash};
    send_raw_report(net, &theirs);
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 6);
    assert_int_equal(trade_at(a, id[5]), STATUS_SETTLED);
    raw_report_t never = {id[6], "ACSC", hash};
    send_raw_report(net, &never);
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 7);
    assert_int_equal(rows_of(a), rows);

    /* A's own trade: an answer naming another body is counted and changes nothing; the true
     * answer then settles it */
    fx_trade_t t = make_trade(1000000, 450000000, 0);
    propose_t p = {&t, NULL};
    drop_first_t d = {A, MSG_FX_PROPOSAL, 1000};
    net->policy = drop_first; /* A's proposal is held back for now */
    net->policy_arg = &d;
    node_turn(a, propose_work, &p);
    raw_report_t forged = {t.fx_id, "RJCT", hash};
    send_raw_report(net, &forged);
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 8);
    assert_int_equal(trade_at(a, t.fx_id), STATUS_PENDING);
    assert_int_equal(trade_at(b, t.fx_id), (status_t)-1);
    net->policy = NULL;
    if (!run_until(net, trade_final, &t, 20000)) {
        fail_msg("A's trade not final once B's answer is let through");
    }
    assert_int_equal(trade_at(a, t.fx_id), STATUS_SETTLED);
    assert_int_equal(net_of(a, "RUB"), 1000000 - 1000000);
    assert_int_equal(net_of(a, "IRR"), -450000000 + 450000000);
    /* B's raw trades are in no books of B's: B has A's trade alone */
    assert_int_equal(net_of(b, "RUB"), 1000000);
    assert_int_equal(net_of(b, "IRR"), -450000000);
    net_free(net);
}

/* Found by review: a peer answering the UETR of a leg instead of the trade. ACSC on the leg A
 * pays and RJCT on the leg A receives would have posted one leg alone (A paid, received nothing),
 * and a CancelAnswer naming a leg reached settlement_encode's assert. Each is refused, counted,
 * and changes nothing; the trade's own answer then settles both legs. */
static void test_fx_leg_answers_refused(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    set_band(b, "RUB", "IRR", "440..460");
    lift_irr_cap(a);
    fx_trade_t t = make_trade(1000000, 450000000, 0);
    propose_t p = {&t, NULL};
    drop_first_t d = {A, MSG_FX_PROPOSAL, 1000};
    net->policy = drop_first; /* B does not have the trade yet */
    net->policy_arg = &d;
    node_turn(a, propose_work, &p);
    uint64_t unentitled = channel_stats(a->ch).unentitled, rows = rows_of(a);
    raw_report_t pay_leg = {t.legs[FX_PAY].uetr, "ACSC", t.legs[FX_PAY].original_hash};
    send_raw_report(net, &pay_leg);
    raw_report_t receive_leg = {t.legs[FX_RECEIVE].uetr, "RJCT", t.legs[FX_RECEIVE].original_hash};
    send_raw_report(net, &receive_leg);
    uint64_t want = channel_sent_seq(b->ch) + 1;
    node_turn(b, send_cancel_answer, t.legs[FX_PAY].uetr);
    for (int i = 0; i < 200 && channel_stats(a->ch).applied_seq < want; i++) {
        net_turn(net);
    }
    assert_true(channel_stats(a->ch).applied_seq >= want);
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 3);
    assert_int_equal(rows_of(a), rows);
    assert_int_equal(trade_at(a, t.fx_id), STATUS_PENDING);
    assert_int_equal(pending_of(a, "RUB"), -1000000); /* both legs pending, neither posted */
    assert_int_equal(pending_of(a, "IRR"), 450000000);
    net->policy = NULL;
    if (!run_until(net, trade_final, &t, 20000)) {
        fail_msg("A's trade not final once its proposal is let through");
    }
    assert_int_equal(trade_at(a, t.fx_id), STATUS_SETTLED);
    assert_int_equal(net_of(a, "RUB"), -1000000);
    assert_int_equal(net_of(a, "IRR"), 450000000);
    net_free(net);
}

/* ---- settlement cycles (PROTOCOL.md 3.11) ------------------------------------------------------
 */

static int64_t sql_count(node_t *n, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(ledger_db(n->ledger), sql, -1, &stmt, NULL), SQLITE_OK);
    int step = sqlite3_step(stmt);
    int64_t v = step == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return v;
}

typedef struct {
    msg_type_t type;
    uint8_t *body;
    size_t len;
} raw_body_t;

typedef struct {
    uint64_t cycle;
    const char *why;
} close_t;

static void close_work(node_t *n, void *arg)
{
    close_t *c = arg;
    assert_int_equal(channel_cycle_close(n->ch, &c->cycle, &c->why), LEDGER_OK);
}

/* A turn of `n` in which it acts before the frames waiting for it are read (they stay, for its
 * next turn): as if its operator was faster than the link. */
static void turn_before_inbox(node_t *n, work_fn work, void *arg)
{
    size_t count = n->inbox_count;
    frame_t *waiting = calloc(count + 1, sizeof *waiting);
    assert_non_null(waiting);
    memcpy(waiting, n->inbox, count * sizeof *waiting);
    n->inbox_count = 0;
    node_turn(n, work, arg);
    assert_true(n->inbox_count + count <= FRAMES_MAX);
    memmove(&n->inbox[count], n->inbox, n->inbox_count * sizeof *n->inbox);
    memcpy(n->inbox, waiting, count * sizeof *waiting);
    n->inbox_count += count;
    free(waiting);
}

static uint64_t close_at(net_t *net, int who)
{
    close_t c = {0};
    node_turn(&net->node[who], close_work, &c);
    if (c.why != NULL) {
        fail_msg("%s cannot close: %s", net->node[who].name, c.why);
    }
    return c.cycle;
}

/* Cycle `number` at n (found false: none). */
static bool cycle_of(node_t *n, uint64_t number, ledger_cycle_t *out)
{
    bool found = false;
    assert_int_equal(
        ledger_cycle_get(n->ledger, n->config->peers[0].card.name, number, out, &found), LEDGER_OK);
    return found;
}

static cycle_state_t cycle_state_at(node_t *n, uint64_t number)
{
    ledger_cycle_t c;
    if (!cycle_of(n, number, &c)) {
        return (cycle_state_t)0;
    }
    cycle_state_t s = c.state;
    ledger_cycle_release(&c);
    return s;
}

typedef struct {
    uint64_t cycle;
    cycle_state_t state;
} cycle_wait_t;

static bool cycle_done(net_t *net, void *arg)
{
    const cycle_wait_t *w = arg;
    channel_stats_t a = channel_stats(net->node[A].ch), b = channel_stats(net->node[B].ch);
    return cycle_state_at(&net->node[A], w->cycle) == w->state &&
           cycle_state_at(&net->node[B], w->cycle) == w->state && a.acked_seq == a.sent_seq &&
           b.acked_seq == b.sent_seq;
}

static void wait_cycle(net_t *net, uint64_t cycle, cycle_state_t state)
{
    cycle_wait_t w = {cycle, state};
    if (!run_until(net, cycle_done, &w, 20000)) {
        fail_msg("cycle %llu not %s: A %s, B %s", (unsigned long long)cycle,
                 cycle_state_name(state), cycle_state_name(cycle_state_at(&net->node[A], cycle)),
                 cycle_state_name(cycle_state_at(&net->node[B], cycle)));
    }
}

static void count_running(const ledger_cycle_figure_t *f, void *arg)
{
    uint64_t *count = arg;
    *count += f->count;
}

static uint64_t running_count(node_t *n)
{
    uint64_t count = 0;
    assert_int_equal(
        ledger_cycle_running(n->ledger, n->config->peers[0].card.name, count_running, &count),
        LEDGER_OK);
    return count;
}

/* Cycle `number` closed at both: the same statement bytes, each side's signature over them
 * verifying with its key; the decoded statement returned. */
static cycle_statement_t assert_cycle_closed(net_t *net, uint64_t number)
{
    ledger_cycle_t a, b;
    assert_true(cycle_of(&net->node[A], number, &a));
    assert_true(cycle_of(&net->node[B], number, &b));
    assert_int_equal(a.state, CYCLE_CLOSED);
    assert_int_equal(b.state, CYCLE_CLOSED);
    assert_true(a.ours != b.ours);
    assert_int_equal(a.statement_len, b.statement_len);
    assert_memory_equal(a.statement, b.statement, a.statement_len);
    assert_true(a.has_peer_signature && b.has_peer_signature);
    const uint8_t *a_key = net->node[A].id->sign_public, *b_key = net->node[B].id->sign_public;
    assert_true(cycle_verify(a.statement, a.statement_len, a.own_signature, a_key));
    assert_true(cycle_verify(a.statement, a.statement_len, a.peer_signature, b_key));
    assert_true(cycle_verify(b.statement, b.statement_len, b.own_signature, b_key));
    assert_true(cycle_verify(b.statement, b.statement_len, b.peer_signature, a_key));
    assert_false(cycle_verify(a.statement, a.statement_len, a.own_signature, b_key));
    assert_int_equal(a.own_sent, b.peer_sent);
    assert_int_equal(a.peer_sent, b.own_sent);
    cycle_statement_t st;
    assert_true(cycle_statement_decode(a.statement, a.statement_len, &st));
    assert_int_equal(st.cycle, number);
    ledger_cycle_release(&a);
    ledger_cycle_release(&b);
    return st;
}

static const cycle_currency_t *currency_in(const cycle_statement_t *st, const char *currency)
{
    for (size_t i = 0; i < st->n_currencies; i++) {
        if (strcmp(st->currencies[i].currency, currency) == 0) {
            return &st->currencies[i];
        }
    }
    return NULL;
}

/* Pays `amount` of `currency` from `payer` and waits until it is final at both. */
static settlement_t pay_one(net_t *net, int payer, const char *currency, int64_t amount)
{
    settlement_t s = make_payment(&net->node[payer], currency, amount);
    pay(net, payer, &s, 1);
    settle(net, payer, &s, 1, 10000);
    return s;
}

/* One side closes after payments both ways: closed at both with one statement and two
 * signatures; the running figures start again; cycle 2 holds only what came after. */
static void cycle_closed_by(int closer)
{
    net_t *net = net_new();
    bring_up(net);
    pay_one(net, A, "RUB", 1000);
    pay_one(net, B, "RUB", 300);
    pay_one(net, A, "IRR", 77);
    assert_int_equal(running_count(&net->node[A]), 3);
    assert_int_equal(running_count(&net->node[B]), 3);
    assert_int_equal(close_at(net, closer), 1);
    assert_int_equal(cycle_state_at(&net->node[closer], 1), CYCLE_CLOSING);
    /* a second close while one is closing: refused, nothing written */
    close_t again = {0};
    uint64_t rows = rows_of(&net->node[closer]);
    node_turn(&net->node[closer], close_work, &again);
    assert_non_null(again.why);
    assert_int_equal(rows_of(&net->node[closer]), rows);
    wait_cycle(net, 1, CYCLE_CLOSED);
    cycle_statement_t st = assert_cycle_closed(net, 1);
    assert_int_equal(st.entry_count, 3);
    assert_string_equal(st.first, NAME_A);
    const cycle_currency_t *rub = currency_in(&st, "RUB"), *irr = currency_in(&st, "IRR");
    assert_non_null(rub);
    assert_non_null(irr);
    assert_int_equal(rub->first_to_second, 1000);
    assert_int_equal(rub->second_to_first, 300);
    assert_int_equal(rub->net_first, -700);
    assert_int_equal(rub->count, 2);
    assert_int_equal(irr->first_to_second, 77);
    assert_int_equal(running_count(&net->node[A]), 0);
    assert_int_equal(running_count(&net->node[B]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sql_count(&net->node[i], "SELECT count(*) FROM journal WHERE kind = 17"),
                         1);
    }
    /* more payments, cycle 2 */
    pay_one(net, B, "RUB", 50);
    assert_int_equal(running_count(&net->node[A]), 1);
    assert_int_equal(close_at(net, closer), 2);
    wait_cycle(net, 2, CYCLE_CLOSED);
    cycle_statement_t st2 = assert_cycle_closed(net, 2);
    assert_int_equal(st2.entry_count, 1);
    assert_true(st2.first_sent >= st.first_sent && st2.second_sent >= st.second_sent);
    rub = currency_in(&st2, "RUB");
    assert_non_null(rub);
    assert_int_equal(rub->second_to_first, 50);
    assert_int_equal(rub->net_first, 50);
    assert_int_equal(running_count(&net->node[B]), 0);
    net_free(net);
}

static void test_cycle_closed_by_a(void **state)
{
    (void)state;
    cycle_closed_by(A);
}

static void test_cycle_closed_by_b(void **state)
{
    (void)state;
    cycle_closed_by(B);
}

/* Both propose cycle 1 before either proposal arrives: one cycle 1, A's (A sorts first). */
static void test_cycle_concurrent_close(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    pay_one(net, A, "RUB", 1000);
    pay_one(net, B, "RUB", 300);
    close_t ca = {0}, cb = {0};
    turn_before_inbox(&net->node[A], close_work, &ca);
    turn_before_inbox(&net->node[B], close_work, &cb);
    assert_int_equal(ca.cycle, 1);
    assert_int_equal(cb.cycle, 1);
    ledger_cycle_t proposed;
    assert_true(cycle_of(&net->node[A], 1, &proposed));
    wait_cycle(net, 1, CYCLE_CLOSED);
    cycle_statement_t st = assert_cycle_closed(net, 1);
    assert_int_equal(st.entry_count, 2);
    ledger_cycle_t a;
    assert_true(cycle_of(&net->node[A], 1, &a));
    assert_true(a.ours);
    assert_int_equal(a.statement_len, proposed.statement_len);
    assert_memory_equal(a.statement, proposed.statement, a.statement_len);
    ledger_cycle_release(&a);
    ledger_cycle_release(&proposed);
    for (int i = 0; i < 20; i++) {
        net_turn(net);
    }
    assert_int_equal(cycle_state_at(&net->node[A], 2), 0);
    assert_int_equal(cycle_state_at(&net->node[B], 2), 0);
    assert_int_equal(cycle_state_at(&net->node[A], 1), CYCLE_CLOSED);
    assert_int_equal(running_count(&net->node[A]), 0);
    assert_int_equal(running_count(&net->node[B]), 0);
    net_free(net);
}

/* Payments in flight at the close: those decided by messages beyond the cut fall in cycle 2 at
 * both sides, whose statements agree. */
static void test_cycle_payments_in_flight(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    pay_one(net, A, "RUB", 1000);
    /* A pays p: B books it and answers; B pays q; neither answer nor q has reached A */
    settlement_t p = make_payment(&net->node[A], "RUB", 5);
    settlement_t q = make_payment(&net->node[B], "RUB", 7);
    pay(net, A, &p, 1);
    node_turn(&net->node[B], NULL, NULL);
    assert_int_equal(status_at(&net->node[B], p.uetr), STATUS_SETTLED);
    pay(net, B, &q, 1);
    close_t c = {0};
    turn_before_inbox(&net->node[A], close_work, &c);
    assert_int_equal(c.cycle, 1);
    assert_int_equal(status_at(&net->node[A], p.uetr), STATUS_PENDING);
    wait_cycle(net, 1, CYCLE_CLOSED);
    cycle_statement_t st = assert_cycle_closed(net, 1);
    assert_int_equal(st.entry_count, 1);
    assert_int_equal(currency_in(&st, "RUB")->first_to_second, 1000);
    settlement_t both[1] = {q};
    settle(net, B, both, 1, 10000);
    assert_int_equal(status_at(&net->node[A], p.uetr), STATUS_SETTLED);
    assert_int_equal(running_count(&net->node[A]), 2);
    assert_int_equal(running_count(&net->node[B]), 2);
    assert_int_equal(close_at(net, B), 2);
    wait_cycle(net, 2, CYCLE_CLOSED);
    cycle_statement_t st2 = assert_cycle_closed(net, 2);
    assert_int_equal(st2.entry_count, 2);
    assert_int_equal(currency_in(&st2, "RUB")->first_to_second, 5);
    assert_int_equal(currency_in(&st2, "RUB")->second_to_first, 7);
    net_free(net);
}

/* An insider edits B's running figures: the cycle ends disputed at both, both statements kept. */
static void test_cycle_disputed(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    pay_one(net, A, "RUB", 1000);
    assert_int_equal(sqlite3_exec(ledger_db(net->node[B].ledger),
                                  "UPDATE cycle_running SET received = received + 1", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    assert_int_equal(close_at(net, A), 1);
    wait_cycle(net, 1, CYCLE_DISPUTED);
    ledger_cycle_t a, b;
    assert_true(cycle_of(&net->node[A], 1, &a));
    assert_true(cycle_of(&net->node[B], 1, &b));
    assert_non_null(a.peer_statement);
    assert_non_null(b.peer_statement);
    assert_int_equal(a.peer_statement_len, b.statement_len);
    assert_memory_equal(a.peer_statement, b.statement, b.statement_len);
    assert_int_equal(b.peer_statement_len, a.statement_len);
    assert_memory_equal(b.peer_statement, a.statement, a.statement_len);
    assert_true(a.statement_len != b.statement_len ||
                memcmp(a.statement, b.statement, a.statement_len) != 0);
    assert_true(cycle_verify(a.peer_statement, a.peer_statement_len, a.peer_signature,
                             net->node[B].id->sign_public));
    assert_true(cycle_verify(b.peer_statement, b.peer_statement_len, b.peer_signature,
                             net->node[A].id->sign_public));
    assert_true(strlen(a.error) > 0);
    ledger_cycle_release(&a);
    ledger_cycle_release(&b);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sql_count(&net->node[i], "SELECT count(*) FROM journal WHERE kind = 17"),
                         0);
    }
    /* a disputed cycle is never settled */
    net_free(net);
}

typedef struct {
    net_settlement_t n;
    const char *why;
} settle_t;

static void settle_work(node_t *n, void *arg)
{
    settle_t *s = arg;
    assert_int_equal(channel_cycle_settle(n->ch, &s->n, &s->why), LEDGER_OK);
}

static settle_t net_request(uint64_t cycle, const char *currency)
{
    settle_t s;
    memset(&s, 0, sizeof s);
    uetr_generate(s.n.settlement_id);
    s.n.cycle = cycle;
    snprintf(s.n.currency, sizeof s.n.currency, "%s", currency);
    snprintf(s.n.reference, sizeof s.n.reference, "RTGS-20240301-1");
    snprintf(s.n.method, sizeof s.n.method, "INDA");
    s.n.created_unix_ms = WALL_START;
    return s;
}

static status_t net_status_at(node_t *n, const char *id)
{
    ledger_net_t rec;
    bool found = false;
    assert_int_equal(ledger_net_find(n->ledger, n->config->peers[0].card.name, id, &rec, &found),
                     LEDGER_OK);
    return found ? rec.status : (status_t)-1;
}

typedef struct {
    const char *id;
    status_t at_a, at_b;
} net_wait_t;

static bool net_reached(net_t *net, void *arg)
{
    const net_wait_t *w = arg;
    channel_stats_t a = channel_stats(net->node[A].ch), b = channel_stats(net->node[B].ch);
    return net_status_at(&net->node[A], w->id) == w->at_a &&
           net_status_at(&net->node[B], w->id) == w->at_b && a.acked_seq == a.sent_seq &&
           b.acked_seq == b.sent_seq;
}

static void wait_net(net_t *net, const char *id, status_t at_a, status_t at_b)
{
    net_wait_t w = {id, at_a, at_b};
    if (!run_until(net, net_reached, &w, 20000)) {
        fail_msg("net settlement %s: A %d B %d, expected %d %d", id,
                 (int)net_status_at(&net->node[A], id), (int)net_status_at(&net->node[B], id),
                 (int)at_a, (int)at_b);
    }
}

typedef struct {
    const char *id;
    const char *reason;
    status_t status;
    ledger_err_t rc;
} net_decide_t;

static void net_decide_work(node_t *n, void *arg)
{
    net_decide_t *d = arg;
    d->rc = channel_net_decide(n->ch, d->id, d->reason, &d->status);
}

/* A owes B 700 RUB from cycle 1: refusals write nothing; a net settlement B refuses moves
 * nothing and may be sent again; one B confirms renews the headroom at both. */
static void test_cycle_net_settlement(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    pay_one(net, A, "RUB", 1000);
    pay_one(net, B, "RUB", 300);
    /* not closed yet */
    settle_t early = net_request(1, "RUB");
    uint64_t rows = rows_of(a);
    node_turn(a, settle_work, &early);
    assert_non_null(early.why);
    assert_int_equal(rows_of(a), rows);
    assert_int_equal(close_at(net, A), 1);
    wait_cycle(net, 1, CYCLE_CLOSED);
    assert_int_equal(net_of(a, "RUB"), -700);
    assert_int_equal(net_of(b, "RUB"), 700);
    /* B is not the debtor; IRR is not in the cycle; cycle 2 does not exist */
    settle_t wrong = net_request(1, "RUB");
    rows = rows_of(b);
    node_turn(b, settle_work, &wrong);
    assert_non_null(wrong.why);
    assert_int_equal(rows_of(b), rows);
    settle_t irr = net_request(1, "IRR"), two = net_request(2, "RUB");
    rows = rows_of(a);
    uint64_t sent = channel_stats(a->ch).sent_seq;
    node_turn(a, settle_work, &irr);
    node_turn(a, settle_work, &two);
    assert_non_null(irr.why);
    assert_non_null(two.why);
    assert_int_equal(rows_of(a), rows);
    assert_int_equal(channel_stats(a->ch).sent_seq, sent);
    /* sent: B holds it, nothing moves */
    settle_t s1 = net_request(1, "RUB");
    node_turn(a, settle_work, &s1);
    assert_null(s1.why);
    assert_int_equal(s1.n.amount_minor, 700);
    settle_t dup = net_request(1, "RUB");
    rows = rows_of(a);
    node_turn(a, settle_work, &dup);
    assert_non_null(dup.why); /* one pending */
    assert_int_equal(rows_of(a), rows);
    wait_net(net, s1.n.settlement_id, STATUS_PENDING, STATUS_HELD);
    assert_int_equal(net_of(a, "RUB"), -700);
    assert_int_equal(net_of(b, "RUB"), 700);
    /* B refuses it: nothing moves, A may send again */
    net_decide_t d = {s1.n.settlement_id, "AG01", 0, LEDGER_OK};
    node_turn(b, net_decide_work, &d);
    assert_int_equal(d.rc, LEDGER_OK);
    assert_int_equal(d.status, STATUS_REJECTED);
    wait_net(net, s1.n.settlement_id, STATUS_REJECTED, STATUS_REJECTED);
    assert_int_equal(net_of(a, "RUB"), -700);
    assert_int_equal(net_of(b, "RUB"), 700);
    /* deciding it again: not held */
    node_turn(b, net_decide_work, &d);
    assert_int_equal(d.rc, LEDGER_E_STATE);
    settle_t s2 = net_request(1, "RUB");
    node_turn(a, settle_work, &s2);
    assert_null(s2.why);
    wait_net(net, s2.n.settlement_id, STATUS_PENDING, STATUS_HELD);
    net_decide_t ok = {s2.n.settlement_id, NULL, 0, LEDGER_OK};
    node_turn(b, net_decide_work, &ok);
    assert_int_equal(ok.rc, LEDGER_OK);
    assert_int_equal(ok.status, STATUS_SETTLED);
    wait_net(net, s2.n.settlement_id, STATUS_SETTLED, STATUS_SETTLED);
    assert_int_equal(net_of(a, "RUB"), 0);
    assert_int_equal(net_of(b, "RUB"), 0);
    assert_int_equal(sql_count(a, "SELECT amount_minor FROM journal WHERE kind = 19"), 700);
    assert_int_equal(sql_count(b, "SELECT amount_minor FROM journal WHERE kind = 19"), -700);
    /* settled: no other */
    settle_t s3 = net_request(1, "RUB");
    node_turn(a, settle_work, &s3);
    assert_non_null(s3.why);
    net_free(net);
}

/* ---- a hostile peer: messages signed with B's keys, built by hand ---- */

typedef struct {
    uint64_t cycle;
    int64_t own_delta;     /* added to B's bound on its own stream */
    const identity_t *key; /* signs the statement */
} raw_proposal_t;

static void raw_proposal_work(node_t *n, void *arg)
{
    const raw_proposal_t *r = arg;
    channel_stats_t s = channel_stats(n->ch);
    cycle_statement_t st;
    uint8_t digest[DIGEST_BYTES] = {0};
    assert_true(cycle_statement_from_view(&st, n->name, other(n)->name, r->cycle,
                                          (uint64_t)((int64_t)s.sent_seq + r->own_delta),
                                          s.applied_seq, NULL, 0, digest, 0));
    uint8_t *statement = NULL, *body = NULL;
    size_t len = 0, body_len = 0;
    assert_int_equal(cycle_statement_encode(&st, &statement, &len), 0);
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(cycle_sign(statement, len, r->key->sign_secret, sig), 0);
    assert_int_equal(cycle_proposal_encode(statement, len, sig, &body, &body_len), 0);
    assert_int_equal(channel_send_body(n->ch, MSG_CYCLE_PROPOSAL, body, body_len), LEDGER_OK);
    free(statement);
    free(body);
}

static void raw_body_work(node_t *n, void *arg)
{
    const raw_body_t *r = arg;
    assert_int_equal(channel_send_body(n->ch, r->type, r->body, r->len), LEDGER_OK);
}

static bool acked_both(net_t *net, void *arg)
{
    (void)arg;
    channel_stats_t a = channel_stats(net->node[A].ch), b = channel_stats(net->node[B].ch);
    return a.acked_seq == a.sent_seq && b.acked_seq == b.sent_seq && a.applied_seq == b.sent_seq &&
           b.applied_seq == a.sent_seq;
}

static void quiesce(net_t *net)
{
    assert_true(run_until(net, acked_both, NULL, 20000));
}

static void test_cycle_hostile_proposals(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    pay_one(net, A, "RUB", 10);
    const raw_proposal_t bad[] = {
        {1, 1, b->id},  /* the cut is not the message's sequence - 1 */
        {1, -1, b->id}, /* nor below it */
        {2, 0, b->id},  /* not the next cycle */
        {1, 0, a->id},  /* signed by another key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t unentitled = channel_stats(a->ch).unentitled;
        uint64_t rows = rows_of(a);
        node_turn(b, raw_proposal_work, (void *)&bad[i]);
        quiesce(net);
        if (channel_stats(a->ch).unentitled != unentitled + 1) {
            fail_msg("proposal %zu not counted unentitled", i);
        }
        assert_int_equal(cycle_state_at(a, 1), 0);
        assert_int_equal(cycle_state_at(a, 2), 0);
        assert_int_equal(rows_of(a), rows);
        /* B's own books have no cycle: the refusal answers nothing of its */
        assert_int_equal(cycle_state_at(b, 1), 0);
    }
    /* an answer to a cycle A never proposed */
    cycle_answer_t ans = {.cycle = 1, .has_signature = true};
    memset(ans.signature, 7, sizeof ans.signature);
    raw_body_t rb = {MSG_CYCLE_ANSWER, NULL, 0};
    assert_int_equal(cycle_answer_encode(&ans, &rb.body, &rb.len), 0);
    uint64_t unentitled = channel_stats(a->ch).unentitled;
    node_turn(b, raw_body_work, &rb);
    quiesce(net);
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 1);
    assert_int_equal(cycle_state_at(a, 1), 0);
    free(rb.body);
    /* the channel still closes a cycle */
    assert_int_equal(close_at(net, A), 1);
    wait_cycle(net, 1, CYCLE_CLOSED);
    assert_cycle_closed(net, 1);
    net_free(net);
}

static void raw_net_work(node_t *n, void *arg)
{
    const net_settlement_t *ns = arg;
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(net_settlement_encode(ns, &body, &len), 0);
    assert_int_equal(channel_send_body(n->ch, MSG_NET_SETTLEMENT, body, len), LEDGER_OK);
    free(body);
}

/* B owes A 500 RUB from cycle 1; B (and A) send NetSettlements the creditor must refuse. */
/* Found by review: B, A's debtor, names its NetSettlement with the UETR of its own payment A
 * holds for a person, so that `review accept --id` of the payment would confirm the net instead.
 * A refuses it DUPL and records it nowhere: an id names one thing on a channel. */
static void test_cycle_net_id_of_a_held_payment(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    pay_one(net, B, "RUB", 1000);
    assert_int_equal(close_at(net, A), 1);
    wait_cycle(net, 1, CYCLE_CLOSED);
    a->screen = CHANNEL_SCREEN_PROGRAM;
    settlement_t held = make_payment(b, "RUB", 5);
    batch_t one = {&held, 1};
    node_turn(b, send_work, &one);
    quiesce(net);
    assert_int_equal(status_at(a, held.uetr), STATUS_HELD);
    settle_t s = net_request(1, "RUB");
    snprintf(s.n.settlement_id, sizeof s.n.settlement_id, "%s", held.uetr);
    node_turn(b, settle_work, &s);
    assert_null(s.why);
    wait_net(net, held.uetr, (status_t)-1, STATUS_REJECTED);
    int64_t net_a = 0, pending = 0;
    assert_int_equal(ledger_position(a->ledger, NAME_B, "RUB", &net_a, &pending), LEDGER_OK);
    assert_int_equal(net_a, 1000); /* nothing renewed */
    assert_int_equal(status_at(a, held.uetr), STATUS_HELD);
    net_free(net);
}

static void test_cycle_hostile_net_settlements(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    node_t *a = &net->node[A], *b = &net->node[B];
    pay_one(net, B, "RUB", 500);
    assert_int_equal(close_at(net, A), 1);
    wait_cycle(net, 1, CYCLE_CLOSED);
    ledger_cycle_t c;
    assert_true(cycle_of(a, 1, &c));
    uint8_t hash[CYCLE_HASH_BYTES];
    cycle_statement_hash(c.statement, c.statement_len, hash);
    ledger_cycle_release(&c);
    settle_t base = net_request(1, "RUB");
    memcpy(base.n.statement_hash, hash, sizeof hash);
    base.n.amount_minor = 500;
    report_seen_t rep;
    /* a wrong amount: AM09 */
    net_settlement_t wrong = base.n;
    uetr_generate(wrong.settlement_id);
    wrong.amount_minor = 499;
    node_turn(b, raw_net_work, &wrong);
    quiesce(net);
    assert_int_equal(reports_for(b, wrong.settlement_id, &rep), 1);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "AM09");
    assert_int_equal(net_status_at(a, wrong.settlement_id), STATUS_REJECTED);
    /* from the creditor (not the net debtor): AG01 at B */
    net_settlement_t not_debtor = base.n;
    uetr_generate(not_debtor.settlement_id);
    node_turn(a, raw_net_work, &not_debtor);
    quiesce(net);
    assert_int_equal(reports_for(a, not_debtor.settlement_id, &rep), 1);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "AG01");
    /* a genuine one, held; the same id with another body: DUPL, the held one untouched */
    settle_t s = net_request(1, "RUB");
    node_turn(b, settle_work, &s);
    assert_null(s.why);
    wait_net(net, s.n.settlement_id, STATUS_HELD, STATUS_PENDING);
    net_settlement_t other_body = s.n;
    snprintf(other_body.reference, sizeof other_body.reference, "ANOTHER-REF");
    uint64_t unentitled = channel_stats(a->ch).unentitled;
    node_turn(b, raw_net_work, &other_body);
    quiesce(net);
    assert_true(reports_for(b, s.n.settlement_id, &rep) >= 2);
    assert_string_equal(rep.status, "RJCT");
    assert_string_equal(rep.reason, "DUPL");
    assert_int_equal(channel_stats(a->ch).unentitled, unentitled + 1);
    assert_int_equal(net_status_at(a, s.n.settlement_id), STATUS_HELD);
    /* B, still pending, sees nothing booked */
    assert_int_equal(net_status_at(b, s.n.settlement_id), STATUS_PENDING);
    assert_int_equal(net_of(b, "RUB"), -500);
    /* A claims ACSC of B's net settlement, naming another body: B books nothing */
    uint8_t other_hash[SETTLEMENT_HASH_BYTES];
    memset(other_hash, 0x42, sizeof other_hash);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = s.n.settlement_id;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = "RUB";
    sr.position_minor = 0;
    sr.settlement_hash = (ProtobufCBinaryData){sizeof other_hash, other_hash};
    uint8_t buf[256];
    raw_body_t rb = {MSG_STATUS_REPORT, buf, corridor__status_report__pack(&sr, buf)};
    unentitled = channel_stats(b->ch).unentitled;
    node_turn(a, raw_body_work, &rb);
    quiesce(net);
    assert_int_equal(channel_stats(b->ch).unentitled, unentitled + 1);
    assert_int_equal(net_status_at(b, s.n.settlement_id), STATUS_PENDING);
    assert_int_equal(net_of(b, "RUB"), -500);
    assert_int_equal(sql_count(b, "SELECT count(*) FROM journal WHERE kind = 19"), 0);
    /* the person at A confirms: both settle */
    net_decide_t ok = {s.n.settlement_id, NULL, 0, LEDGER_OK};
    node_turn(a, net_decide_work, &ok);
    assert_int_equal(ok.rc, LEDGER_OK);
    wait_net(net, s.n.settlement_id, STATUS_SETTLED, STATUS_SETTLED);
    assert_int_equal(net_of(a, "RUB"), 0);
    assert_int_equal(net_of(b, "RUB"), 0);
    net_free(net);
}

/* A restarts between its proposal and B's answer: the answer still closes the cycle. */
static void test_cycle_close_survives_restart(void **state)
{
    (void)state;
    net_t *net = net_new();
    bring_up(net);
    pay_one(net, A, "RUB", 1000);
    assert_int_equal(close_at(net, A), 1);
    node_stop(&net->node[A]);
    node_turn(&net->node[B], NULL, NULL);
    assert_int_equal(cycle_state_at(&net->node[B], 1), CYCLE_CLOSED);
    node_start(&net->node[A]);
    assert_int_equal(cycle_state_at(&net->node[A], 1), CYCLE_CLOSING);
    wait_cycle(net, 1, CYCLE_CLOSED);
    assert_cycle_closed(net, 1);
    net_free(net);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_hello_exchange_brings_both_up),
        cmocka_unit_test(test_silence_takes_a_channel_down_and_hello_back_up),
        cmocka_unit_test(test_settlement_applied_once),
        cmocka_unit_test(test_duplicated_frames_applied_once),
        cmocka_unit_test(test_dropped_settlement_retransmitted),
        cmocka_unit_test(test_lost_answer_and_ack_resend_applies_once),
        cmocka_unit_test(test_reordered_frames_applied_in_order),
        cmocka_unit_test(test_payer_restart_before_answer),
        cmocka_unit_test(test_payee_restart_after_apply),
        cmocka_unit_test(test_lossy_link_both_ways),
        cmocka_unit_test(test_refused_payment_answered_once),
        cmocka_unit_test(test_overtaken_hellos_do_not_diverge),
        cmocka_unit_test(test_payee_restored_from_old_copy_diverges),
        cmocka_unit_test(test_rotation_under_load),
        cmocka_unit_test(test_rotation_keys_sign_only_their_numbers),
        cmocka_unit_test(test_reannounced_old_key_consumed),
        cmocka_unit_test(test_old_key_message_after_announcement_dropped),
        cmocka_unit_test(test_old_key_control_refused_after_reload),
        cmocka_unit_test(test_replaced_peer_key_refuses_old_key),
        cmocka_unit_test(test_own_replacement_resigns_queued_message),
        cmocka_unit_test(test_curve_switch),
        cmocka_unit_test(test_curve_key_needs_proof),
        cmocka_unit_test(test_missed_key_switch_sent_again_while_down),
        cmocka_unit_test(test_rotation_waits_for_peer_proof_to_old_key),
        cmocka_unit_test(test_key_switch_pinned_while_diverged),
        cmocka_unit_test(test_held_payments_decided_later),
        cmocka_unit_test(test_cancellation),
        cmocka_unit_test(test_expiry_not_masked),
        cmocka_unit_test(test_announcement_unacked_waits_for_timer),
        cmocka_unit_test(test_return_accepted),
        cmocka_unit_test(test_returns_up_to_the_full_amount),
        cmocka_unit_test(test_hostile_returns),
        cmocka_unit_test(test_return_within_the_cap),
        cmocka_unit_test(test_fx_band_accepts_and_refuses),
        cmocka_unit_test(test_fx_held_released_and_expired),
        cmocka_unit_test(test_fx_caps_each_side),
        cmocka_unit_test(test_fx_hostile),
        cmocka_unit_test(test_fx_leg_answers_refused),
        cmocka_unit_test(test_cycle_closed_by_a),
        cmocka_unit_test(test_cycle_closed_by_b),
        cmocka_unit_test(test_cycle_concurrent_close),
        cmocka_unit_test(test_cycle_payments_in_flight),
        cmocka_unit_test(test_cycle_disputed),
        cmocka_unit_test(test_cycle_net_settlement),
        cmocka_unit_test(test_cycle_hostile_proposals),
        cmocka_unit_test(test_cycle_hostile_net_settlements),
        cmocka_unit_test(test_cycle_net_id_of_a_held_payment),
        cmocka_unit_test(test_cycle_close_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
