/* The loop turn without sockets: channels, statements and reconciliation sessions. */
#include "engine.h"
#include "setoffs.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "corridor/limits.h"
#include "cycles.h"
#include "log.h"
#include "recon.h"
#include "responder.h"
#include "wire.h"

#define CHECKPOINT_CHECK_MS   1000        /* how often to look whether a checkpoint is due */
#define CHECKPOINT_RETRY_MS   (30 * 1000) /* after an automatic try, the next no sooner */
#define CHECKPOINT_SESSION_MS (60 * 1000) /* an automatic session gives up after this */

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

/* A reconciliation in progress with one peer. */
typedef struct {
    recon_t *recon;
    int64_t deadline_ms;
    bool automatic; /* started for a checkpoint, not by the caller: nobody waits for it */
} session_t;

struct engine {
    engine_ctx_t ctx;
    size_t peers;
    channel_t **channels;         /* per configured peer */
    session_t *sessions;          /* per configured peer; recon NULL when idle */
    bool *reload;                 /* per peer: reload the channel after the commit (re-based) */
    int64_t *checkpoint_next_ms;  /* per peer: when to look again whether a checkpoint is due */
    int64_t started_wall_ms;      /* when the engine started (the first checkpoint's interval) */
    int64_t *cycle_next_ms;       /* per peer: when to look again whether a cycle close is due */
    bool *cycle_due;              /* per peer: close a cycle in the next transaction (3.11.5) */
    int64_t setoff_due_wall;      /* the earliest deadline of a set-off we proposed, undecided
                                     (wall ms; INT64_MAX none): aborted then (3.12.3) */
    uint64_t *cycle_proposed;     /* per peer: the number of our last automatic proposal */
    int64_t *cycle_proposed_ms;   /* per peer: when it was made */
    responder_t *responder;       /* what peers' StatementRequests may make us do */
    int64_t now_ms, wall_ms;      /* this turn's clocks */
    const identity_t *rotated_to; /* engine_rotate's keys, ours once the transaction commits */
    bool rotation_failed;         /* engine_rotate failed: the transaction rolls back */
    int64_t curve_overlap_ms;     /* how long peers admit our old CURVE key after our switch */
    inbound_statement_t statements_in[STATEMENTS_PER_TURN]; /* this turn's writing ones */
    size_t statements_in_count;
    inbound_statement_t reads_in[STATEMENTS_PER_TURN]; /* this turn's pure-read requests */
    size_t reads_in_count;
    outbound_statement_t statements_out[STATEMENTS_PER_TURN]; /* answers after the commit */
    size_t statements_out_count;
};

static const char *peer_name(const engine_t *e, size_t peer_index)
{
    assert(peer_index < e->peers);
    return e->ctx.config->peers[peer_index].card.name;
}

static void inbound_statement_clear(inbound_statement_t *in)
{
    envelope_message_clear(&in->msg);
    corridor__statement_request__free_unpacked(in->request, NULL);
    in->request = NULL;
}

/* Places an admitted request in this turn: a pure read after the commit, one that writes
 * inside the transaction. False when that part of the turn is full. */
static bool place_request(engine_t *e, size_t peer_index, Corridor__StatementRequest *req)
{
    bool reads = recon_request_reads_only(req);
    inbound_statement_t *list = reads ? e->reads_in : e->statements_in;
    size_t *count = reads ? &e->reads_in_count : &e->statements_in_count;
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
    engine_t *e = arg;
    if (msg->type == MSG_STATEMENT) {
        if (e->sessions[peer_index].recon == NULL ||
            e->statements_in_count == STATEMENTS_PER_TURN) {
            envelope_message_clear(msg); /* nothing asked it, or the session asks again */
            return;
        }
        inbound_statement_t *in = &e->statements_in[e->statements_in_count++];
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
    if (!responder_admit(e->responder, peer_index, e->now_ms) ||
        !place_request(e, peer_index, req)) {
        responder_defer(e->responder, peer_index, req);
    }
}

/* channel_ctx_t.send: passed on to the caller's sockets. */
static int send_frame(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                      size_t len)
{
    engine_t *e = arg;
    return e->ctx.send(e->ctx.arg, peer_index, type, wire, len);
}

/* channel_ctx_t.channel_of: the channel with a peer by its code. */
static channel_t *channel_of(void *arg, const char *code)
{
    engine_t *e = arg;
    for (size_t i = 0; i < e->peers; i++) {
        if (strcmp(peer_name(e, i), code) == 0) {
            return e->channels[i];
        }
    }
    return NULL;
}

/* channel_ctx_t.screen and on_held: passed on to the caller. */
static channel_screen_t screen(void *arg, const settlement_t *s)
{
    engine_t *e = arg;
    return e->ctx.screen != NULL ? e->ctx.screen(e->ctx.arg, s) : CHANNEL_SCREEN_PASS;
}

static void on_held(void *arg, const char *peer, const char *uetr)
{
    engine_t *e = arg;
    if (e->ctx.on_held != NULL) {
        e->ctx.on_held(e->ctx.arg, peer, uetr);
    }
}

/* Whether a held payment's expiry is due on a channel (or not known yet). */
static bool expiry_due(const engine_t *e, size_t i)
{
    int64_t next = channel_next_expiry_ms(e->channels[i]);
    return e->wall_ms != 0 && (next == 0 || e->wall_ms >= next);
}

/* channel_ctx_t.on_final: passed on to the caller. */
static void on_final(void *arg, const char *peer, const char *uetr, const ledger_outcome_t *o)
{
    engine_t *e = arg;
    if (e->ctx.on_final != NULL) {
        e->ctx.on_final(e->ctx.arg, peer, uetr, o);
    }
}

engine_t *engine_new(const engine_ctx_t *ctx, int64_t now_ms, int64_t wall_ms)
{
    assert(ctx != NULL && ctx->self != NULL && ctx->config != NULL && ctx->ledger != NULL &&
           ctx->reader != NULL && ctx->send != NULL &&
           (ctx->keys != NULL || ctx->config->peers_count == 0));
    engine_t *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->ctx = *ctx;
    e->peers = ctx->config->peers_count;
    e->now_ms = now_ms;
    e->wall_ms = wall_ms;
    e->started_wall_ms = wall_ms;
    e->curve_overlap_ms = ENGINE_CURVE_OVERLAP_MS;
    e->channels = calloc(e->peers + 1, sizeof *e->channels);
    e->sessions = calloc(e->peers + 1, sizeof *e->sessions);
    e->reload = calloc(e->peers + 1, sizeof *e->reload);
    e->checkpoint_next_ms = calloc(e->peers + 1, sizeof *e->checkpoint_next_ms);
    e->cycle_next_ms = calloc(e->peers + 1, sizeof *e->cycle_next_ms);
    e->cycle_due = calloc(e->peers + 1, sizeof *e->cycle_due);
    e->cycle_proposed = calloc(e->peers + 1, sizeof *e->cycle_proposed);
    e->cycle_proposed_ms = calloc(e->peers + 1, sizeof *e->cycle_proposed_ms);
    e->responder = responder_new(e->peers);
    if (e->channels == NULL || e->sessions == NULL || e->reload == NULL ||
        e->checkpoint_next_ms == NULL || e->cycle_next_ms == NULL || e->cycle_due == NULL ||
        e->cycle_proposed == NULL || e->cycle_proposed_ms == NULL || e->responder == NULL) {
        engine_free(&e);
        return NULL;
    }
    e->setoff_due_wall = INT64_MAX;
    channel_ctx_t channel_ctx = {
        .self = ctx->self,
        .self_previous = ctx->self_previous,
        .config = ctx->config,
        .ledger = ctx->ledger,
        .send = send_frame,
        .on_final = on_final,
        .on_statement = on_statement,
        .screen = screen,
        .on_held = on_held,
        .channel_of = channel_of,
        .arg = e,
        .node_name = ctx->config->name,
        .incarnation = ctx->incarnation,
    };
    for (size_t i = 0; i < e->peers; i++) {
        e->channels[i] =
            channel_new(&channel_ctx, i, &ctx->config->peers[i], &ctx->keys[i], now_ms);
        if (e->channels[i] == NULL) {
            engine_free(&e);
            return NULL;
        }
        channel_set_wall(e->channels[i], wall_ms);
    }
    return e;
}

void engine_free(engine_t **self_p)
{
    assert(self_p != NULL);
    engine_t *e = *self_p;
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; e->sessions != NULL && i < e->peers; i++) {
        recon_destroy(&e->sessions[i].recon);
    }
    for (size_t i = 0; i < e->statements_in_count; i++) {
        inbound_statement_clear(&e->statements_in[i]);
    }
    for (size_t i = 0; i < e->reads_in_count; i++) {
        inbound_statement_clear(&e->reads_in[i]);
    }
    for (size_t i = 0; i < e->statements_out_count; i++) {
        free(e->statements_out[i].body);
    }
    for (size_t i = 0; e->channels != NULL && i < e->peers; i++) {
        channel_destroy(&e->channels[i]);
    }
    responder_free(&e->responder);
    free(e->channels);
    free(e->sessions);
    free(e->reload);
    free(e->checkpoint_next_ms);
    free(e->cycle_next_ms);
    free(e->cycle_due);
    free(e->cycle_proposed);
    free(e->cycle_proposed_ms);
    free(e);
    *self_p = NULL;
}

channel_t *engine_channel(engine_t *e, size_t peer_index)
{
    assert(e != NULL && peer_index < e->peers);
    return e->channels[peer_index];
}

uint64_t engine_requests_refused(const engine_t *e, size_t peer_index)
{
    assert(e != NULL && peer_index < e->peers);
    return responder_refused(e->responder, peer_index);
}

void engine_begin(engine_t *e, int64_t now_ms, int64_t wall_ms)
{
    assert(e != NULL && e->statements_in_count == 0 && e->reads_in_count == 0 &&
           e->statements_out_count == 0);
    e->now_ms = now_ms;
    e->wall_ms = wall_ms;
    ledger_set_clock(e->ctx.ledger, wall_ms);
    for (size_t i = 0; i < e->peers; i++) {
        channel_set_wall(e->channels[i], wall_ms);
    }
    /* before this turn's frames can fill the statement slots */
    for (size_t i = 0; i < e->peers; i++) {
        Corridor__StatementRequest *req = responder_release(e->responder, i, now_ms);
        if (req != NULL && !place_request(e, i, req)) {
            responder_defer(e->responder, i, req);
        }
    }
}

void engine_deliver(engine_t *e, opener_frame_t *f)
{
    assert(e != NULL && f != NULL && f->peer_index < e->peers);
    const char *peer = peer_name(e, f->peer_index);
    if (f->rc == ENV_E_DUPLICATE && f->msg.peer_index == f->peer_index) {
        channel_note_duplicate(e->channels[f->peer_index]);
        return;
    }
    if (f->rc != ENV_OK) {
        log_event(e->ctx.config->name, peer, NULL, "dropped a frame of %zu bytes: %s", f->len,
                  env_strerror(f->rc));
        return;
    }
    if (f->msg.peer_index != f->peer_index) {
        log_event(e->ctx.config->name, peer, NULL,
                  "dropped a message sealed by %s on %s's connection",
                  peer_name(e, f->msg.peer_index), peer);
        envelope_message_clear(&f->msg);
        return;
    }
    channel_receive(e->channels[f->peer_index], &f->msg, e->now_ms);
}

static bool curve_switch_due(const engine_t *e);

bool engine_has_work(const engine_t *e)
{
    assert(e != NULL);
    if (e->statements_in_count > 0 || curve_switch_due(e) || e->wall_ms >= e->setoff_due_wall) {
        return true;
    }
    for (size_t i = 0; i < e->peers; i++) {
        if (e->cycle_due[i]) {
            return true;
        }
        if (channel_has_work(e->channels[i], e->now_ms) || expiry_due(e, i)) {
            return true;
        }
    }
    return false;
}

static recon_ctx_t recon_ctx_of(const engine_t *e, size_t peer_index)
{
    /* a channel whose announcement waits for the peer signs with the keys before */
    const identity_t *own = channel_own(e->channels[peer_index]);
    return (recon_ctx_t){.self = own,
                         .self_previous = own == e->ctx.self ? e->ctx.self_previous : e->ctx.self,
                         .peer = &e->ctx.config->peers[peer_index],
                         .keys = &e->ctx.keys[peer_index],
                         .ledger = e->ctx.ledger,
                         .channel = e->channels[peer_index],
                         .checkpoint_every = config_checkpoint_every(e->ctx.config),
                         .checkpoint_interval_s = config_checkpoint_interval_s(e->ctx.config),
                         .wall_now_ms = e->wall_ms};
}

/* Inside the transaction: answers requests that write, feeds statements to sessions. */
static ledger_err_t handle_statements(engine_t *e)
{
    ledger_err_t rc = LEDGER_OK;
    for (size_t i = 0; i < e->statements_in_count; i++) {
        inbound_statement_t *in = &e->statements_in[i];
        if (rc == LEDGER_OK && in->request != NULL &&
            !responder_may_work(e->responder, in->peer_index, e->now_ms)) {
            responder_defer(e->responder, in->peer_index, in->request); /* an earlier one's debt */
            in->request = NULL;
        } else if (rc == LEDGER_OK && in->request != NULL) {
            recon_ctx_t ctx = recon_ctx_of(e, in->peer_index);
            uint8_t *body = NULL;
            size_t len = 0;
            bool rebased = false;
            rc = responder_answer(e->responder, in->peer_index, &ctx, in->request, e->now_ms, &body,
                                  &len, &rebased);
            if (body != NULL) {
                e->statements_out[e->statements_out_count++] =
                    (outbound_statement_t){in->peer_index, body, len};
            }
            e->reload[in->peer_index] |= rebased;
        } else if (rc == LEDGER_OK && e->sessions[in->peer_index].recon != NULL) {
            Corridor__Statement *st = (Corridor__Statement *)wire_unpack(
                &corridor__statement__descriptor, in->msg.body_len, in->msg.body);
            if (st != NULL) {
                recon_t *r = e->sessions[in->peer_index].recon;
                rc = recon_on_statement(r, st, e->now_ms);
                e->reload[in->peer_index] |= recon_rebased(r);
            }
            corridor__statement__free_unpacked(st, NULL);
        }
        inbound_statement_clear(in);
    }
    e->statements_in_count = 0;
    return rc;
}

/* Our CURVE key changed with our last rotation, and every peer acknowledged it: our KeySwitch
 * goes on each channel (PROTOCOL.md 2.16). Not while a peer with a lower node code has
 * switched to a CURVE key we have not applied its KeySwitch for: two nodes switching at once
 * would each pin the other's old key, and no KeySwitch could reach either. Nor while a channel
 * is DIVERGED: it sends nothing sequenced, and its repair needs the peer to reach us. */
static bool curve_switch_due(const engine_t *e)
{
    bool pending = false;
    for (size_t i = 0; i < e->peers; i++) {
        const channel_t *ch = e->channels[i];
        if (!channel_rotation_acked(ch) || channel_is_diverged(ch) ||
            (channel_peer_curve_pending(ch) && strcmp(peer_name(e, i), e->ctx.config->name) < 0)) {
            return false;
        }
        pending |= channel_curve_pending(ch);
    }
    return pending;
}

bool engine_curve_pending(const engine_t *e)
{
    assert(e != NULL);
    for (size_t i = 0; i < e->peers; i++) {
        if (channel_curve_pending(e->channels[i])) {
            return true;
        }
    }
    return false;
}

const identity_t *engine_curve_server(const engine_t *e)
{
    assert(e != NULL);
    return engine_curve_pending(e) && e->ctx.self_previous != NULL ? e->ctx.self_previous
                                                                   : e->ctx.self;
}

void engine_set_curve_overlap(engine_t *e, int64_t overlap_ms)
{
    assert(e != NULL && overlap_ms >= 0);
    e->curve_overlap_ms = overlap_ms;
}

ledger_err_t engine_rotate(engine_t *e, const identity_t *next, size_t *not_ready)
{
    assert(e != NULL && next != NULL && ledger_in_transaction(e->ctx.ledger));
    for (size_t i = 0; i < e->peers; i++) {
        /* the last rotation's CURVE switch first: its KeySwitch would never go out */
        if (!channel_rotation_acked(e->channels[i]) || channel_curve_pending(e->channels[i]) ||
            channel_previous_keys_needed(e->channels[i])) {
            if (not_ready != NULL) {
                *not_ready = i;
            }
            return LEDGER_E_STATE;
        }
    }
    ledger_err_t rc = LEDGER_OK;
    for (size_t i = 0; rc == LEDGER_OK && i < e->peers; i++) {
        if (channel_rotation_ready(e->channels[i])) {
            rc = channel_rotate(e->channels[i], next, e->curve_overlap_ms);
        } else {
            rc = channel_rotate_later(e->channels[i], next);
        }
    }
    e->rotated_to = rc == LEDGER_OK ? next : NULL;
    if (rc != LEDGER_OK) {
        e->rotation_failed = true; /* the transaction must not commit half of it */
    }
    return rc;
}

bool engine_cycle_at_due(int64_t wall_ms, int32_t at_min, int64_t since_ms)
{
    const int64_t day_ms = 24LL * 60 * 60 * 1000;
    if (at_min < 0 || wall_ms <= 0) {
        return false;
    }
    int64_t at = wall_ms - wall_ms % day_ms + (int64_t)at_min * 60 * 1000; /* today's */
    if (wall_ms < at) {
        at -= day_ms; /* not passed yet today: the one that passed last is yesterday's */
    }
    return since_ms < at;
}

/* Inside the transaction: the automatic close found due after the last commit (3.11.5). The
 * node's own act, so no operator row; a close that cannot be made now is logged and looked
 * at again CHECKPOINT_CHECK_MS later. */
static ledger_err_t close_due_cycle(engine_t *e, size_t peer_index)
{
    e->cycle_due[peer_index] = false;
    channel_t *ch = e->channels[peer_index];
    if (channel_stats(ch).state != CHANNEL_UP) {
        return LEDGER_OK;
    }
    uint64_t cycle = 0;
    const char *why = NULL;
    ledger_err_t rc = channel_cycle_close(ch, &cycle, &why);
    if (rc == LEDGER_OK) {
        if (why != NULL) {
            log_event(e->ctx.config->name, peer_name(e, peer_index), NULL,
                      "automatic cycle close not made: %s", why);
            e->cycle_next_ms[peer_index] = e->now_ms + CHECKPOINT_RETRY_MS;
        } else {
            e->cycle_proposed[peer_index] = cycle;
            e->cycle_proposed_ms[peer_index] = e->now_ms;
            log_event(e->ctx.config->name, peer_name(e, peer_index), NULL,
                      "cycle %" PRIu64 " closed automatically (cycle_every %" PRIu32
                      ", cycle_at %" PRId32 ")",
                      cycle, config_cycle_every(e->ctx.config, peer_name(e, peer_index)),
                      config_cycle_at_min(e->ctx.config, peer_name(e, peer_index)));
        }
    }
    return rc;
}

ledger_err_t engine_transaction(engine_t *e, void (*work)(void *arg), void *arg)
{
    assert(e != NULL && !ledger_stopped(e->ctx.ledger));
    ledger_err_t rc = ledger_begin(e->ctx.ledger);
    for (size_t i = 0; i < e->peers; i++) { /* nothing of a session leaves before the commit */
        if (e->sessions[i].recon != NULL) {
            recon_hold_sends(e->sessions[i].recon, true);
        }
    }
    e->rotated_to = NULL;
    e->rotation_failed = false;
    if (rc == LEDGER_OK && work != NULL) {
        work(arg);
    }
    if (rc == LEDGER_OK && e->rotation_failed) {
        rc = LEDGER_E_STORAGE;
    }
    for (size_t i = 0; rc == LEDGER_OK && i < e->peers; i++) {
        rc = e->cycle_due[i] ? close_due_cycle(e, i) : LEDGER_OK;
    }
    if (rc == LEDGER_OK && e->peers > 0 && e->wall_ms >= e->setoff_due_wall) {
        size_t aborted = 0;
        rc = channel_setoff_expire(e->channels[0], e->wall_ms, &aborted, &e->setoff_due_wall);
    }
    for (size_t i = 0; rc == LEDGER_OK && i < e->peers; i++) {
        rc = channel_apply(e->channels[i], e->now_ms);
    }
    for (size_t i = 0; rc == LEDGER_OK && i < e->peers; i++) {
        rc = expiry_due(e, i) ? channel_expire_held(e->channels[i]) : LEDGER_OK;
    }
    if (rc == LEDGER_OK && curve_switch_due(e)) { /* every peer admits our new CURVE key */
        for (size_t i = 0; rc == LEDGER_OK && i < e->peers; i++) {
            if (channel_curve_pending(e->channels[i])) {
                rc = channel_curve_switch(e->channels[i]);
            }
        }
    }
    if (rc == LEDGER_OK) {
        rc = handle_statements(e);
    }
    if (rc == LEDGER_OK && ledger_in_transaction(e->ctx.ledger)) {
        rc = ledger_commit(e->ctx.ledger);
    }
    if (rc == LEDGER_OK && e->rotated_to != NULL) { /* the announcements are on record */
        e->ctx.self_previous = e->ctx.self;
        e->ctx.self = e->rotated_to;
        e->rotated_to = NULL;
        for (size_t i = 0; i < e->peers; i++) {
            channel_set_self(e->channels[i], e->ctx.self, e->ctx.self_previous);
            if (e->sessions[i].recon != NULL) {
                recon_ctx_t now = recon_ctx_of(e, i);
                recon_set_self(e->sessions[i].recon, now.self, now.self_previous);
            }
        }
    }
    if (rc != LEDGER_OK) {
        log_event(e->ctx.config->name, NULL, NULL, "LEDGER STOPPED: %s: %s", ledger_strerror(rc),
                  ledger_last_error(e->ctx.ledger));
        e->rotated_to = NULL;
        ledger_rollback(e->ctx.ledger);
        for (size_t i = 0; i < e->peers; i++) {
            channel_reload(e->channels[i]);
        }
        responder_forget_answers(e->responder);
        for (size_t i = 0; i < e->statements_in_count; i++) {
            inbound_statement_clear(&e->statements_in[i]); /* the peers ask again */
        }
        e->statements_in_count = 0;
    }
    return rc;
}

/* Whether an automatic checkpoint session got its checkpoint signed. Nobody waits for it, so
 * why it did not must not go unsaid: a peer whose books differ at the cut refuses, and that
 * needs a person. (A checkpoint the other side signed a moment ago is no news.) */
static bool checkpoint_signed(const engine_t *e, size_t peer_index, json_t *report)
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
        log_event(e->ctx.config->name, peer_name(e, peer_index), NULL,
                  "automatic checkpoint not signed: %s%s", why,
                  strstr(why, "differs") != NULL ? "; run corridor reconcile" : "");
    }
    return false;
}

/* After the commit: sends answers, reloads re-based channels, reports finished sessions. */
static void after_statements(engine_t *e, bool committed)
{
    int64_t now = e->now_ms;
    for (size_t i = 0; i < e->statements_out_count; i++) {
        outbound_statement_t *out = &e->statements_out[i];
        if (committed) {
            channel_send_unsequenced(e->channels[out->peer_index], MSG_STATEMENT, out->body,
                                     out->len);
        }
        free(out->body);
    }
    e->statements_out_count = 0;
    for (size_t i = 0; i < e->peers; i++) {
        if (e->reload[i]) {
            channel_reload(e->channels[i]);
            e->reload[i] = false;
        }
        session_t *s = &e->sessions[i];
        if (s->recon == NULL) {
            continue;
        }
        if (committed) { /* what a failed transaction prepared never leaves */
            recon_hold_sends(s->recon, false);
            recon_tick(s->recon, now);
        }
        bool timed_out = now >= s->deadline_ms;
        if (recon_done(s->recon) || timed_out || !committed) {
            json_t *report = recon_report(s->recon);
            json_t *doc = json_pack("{s:b, s:o}", "ok", 1, "report", report);
            if (timed_out && !recon_done(s->recon)) {
                json_object_set_new(report, "error",
                                    json_string("timed out: the peer did not answer"));
            }
            if (!s->automatic) {
                if (e->ctx.on_report != NULL) {
                    e->ctx.on_report(e->ctx.arg, i, doc);
                }
            } else if (checkpoint_signed(e, i, report)) {
                e->checkpoint_next_ms[i] = now + CHECKPOINT_CHECK_MS; /* spacing decides */
            }
            json_decref(doc);
            recon_destroy(&s->recon);
            s->automatic = false;
        }
    }
}

/* After the commit: answers the pure-read requests from one read snapshot of what committed,
 * outside the write transaction. A read that fails is logged; the requester asks again. */
static void answer_reads(engine_t *e)
{
    if (e->reads_in_count == 0) {
        return;
    }
    /* a stopped node answers nothing: its books are not to be trusted */
    ledger_err_t rc =
        ledger_stopped(e->ctx.ledger) ? LEDGER_E_STOPPED : ledger_snapshot_begin(e->ctx.reader);
    for (size_t i = 0; i < e->reads_in_count; i++) {
        inbound_statement_t *in = &e->reads_in[i];
        uint8_t *body = NULL;
        size_t len = 0;
        bool rebased = false;
        if (rc == LEDGER_OK && !responder_may_work(e->responder, in->peer_index, e->now_ms)) {
            responder_defer(e->responder, in->peer_index, in->request); /* an earlier one's debt */
            in->request = NULL;
        } else if (rc == LEDGER_OK) {
            recon_ctx_t ctx = recon_ctx_of(e, in->peer_index);
            ctx.ledger = e->ctx.reader;
            rc = responder_answer(e->responder, in->peer_index, &ctx, in->request, e->now_ms, &body,
                                  &len, &rebased);
            assert(!rebased); /* a pure read changes nothing */
        }
        if (body != NULL) {
            channel_send_unsequenced(e->channels[in->peer_index], MSG_STATEMENT, body, len);
            free(body);
        }
        inbound_statement_clear(in);
    }
    if (rc != LEDGER_OK && rc != LEDGER_E_STOPPED) {
        log_event(e->ctx.config->name, NULL, NULL, "statement requests unanswered: %s: %s",
                  ledger_strerror(rc), ledger_last_error(e->ctx.reader));
    }
    ledger_snapshot_end(e->ctx.reader);
    e->reads_in_count = 0;
}

/* Automatic checkpoints: with each peer whose channel is up, a checkpoint session (recon.c)
 * is started once checkpoint_every sequenced messages or checkpoint_interval_s have passed
 * since the last checkpoint. It proposes one at this node's sequence cut, so it needs no quiet
 * moment: payments keep flowing while both sides sign. An operator's `reconcile` takes the
 * place of one running. */
static void start_due_checkpoints(engine_t *e)
{
    int64_t now = e->now_ms, wall = e->wall_ms;
    uint32_t every = config_checkpoint_every(e->ctx.config);
    int64_t interval_ms = (int64_t)config_checkpoint_interval_s(e->ctx.config) * 1000;
    for (size_t i = 0; i < e->peers && !ledger_stopped(e->ctx.ledger); i++) {
        session_t *s = &e->sessions[i];
        channel_stats_t st = channel_stats(e->channels[i]);
        if (now < e->checkpoint_next_ms[i] || s->recon != NULL || st.state != CHANNEL_UP) {
            continue;
        }
        e->checkpoint_next_ms[i] = now + CHECKPOINT_CHECK_MS;
        uint64_t messages = st.sent_seq + st.applied_seq;
        uint64_t last_messages = 0;
        int64_t last_at = 0;
        if (ledger_checkpoint_when(e->ctx.ledger, peer_name(e, i), &last_messages, &last_at) !=
            LEDGER_OK) {
            continue;
        }
        int64_t since = last_at != 0 && last_at <= wall ? last_at : e->started_wall_ms;
        bool counted = last_messages <= messages;
        if (counted && messages - last_messages < every &&
            (messages == last_messages || wall - since < interval_ms)) {
            continue;
        }
        recon_ctx_t ctx = recon_ctx_of(e, i);
        if ((s->recon = recon_new_checkpoint(&ctx, now)) == NULL) {
            continue;
        }
        s->automatic = true;
        s->deadline_ms = now + CHECKPOINT_SESSION_MS;
        e->checkpoint_next_ms[i] = now + CHECKPOINT_RETRY_MS;
        recon_tick(s->recon, now);
    }
}

static void add_count(const ledger_cycle_figure_t *f, void *arg)
{
    *(uint64_t *)arg += f->count;
}

/* Automatic cycle closes (PROTOCOL.md 3.11.5): every CHECKPOINT_CHECK_MS, with each peer whose
 * channel is up, that offers cycles and has none closing, a close is due once the running count
 * reaches cycle_every, or once the day's cycle_at (the one passed last) lies after the last
 * cycle's creation (with no cycle yet: after this engine started) and the count is not zero.
 * It is made in the next transaction (close_due_cycle); one that could not be made, or that the
 * peer refused, is tried again CHECKPOINT_RETRY_MS later, not at every check. */
static void find_due_cycles(engine_t *e)
{
    for (size_t i = 0; i < e->peers && !ledger_stopped(e->ctx.ledger); i++) {
        if (e->cycle_due[i] || e->now_ms < e->cycle_next_ms[i]) {
            continue;
        }
        e->cycle_next_ms[i] = e->now_ms + CHECKPOINT_CHECK_MS;
        const char *peer = peer_name(e, i);
        uint32_t every = config_cycle_every(e->ctx.config, peer);
        int32_t at_min = config_cycle_at_min(e->ctx.config, peer);
        if ((every == 0 && at_min < 0) || channel_stats(e->channels[i]).state != CHANNEL_UP ||
            !channel_peer_offers(e->channels[i], CHANNEL_FEATURE_CYCLES)) {
            continue;
        }
        ledger_cycle_t last;
        memset(&last, 0, sizeof last);
        bool found = false;
        if (ledger_cycle_latest(e->ctx.ledger, peer, &last, &found) != LEDGER_OK) {
            ledger_cycle_release(&last);
            continue;
        }
        /* our last automatic proposal refused (its number free again): not again at once */
        bool refused = e->cycle_proposed[i] != 0 && (!found || last.cycle < e->cycle_proposed[i]) &&
                       e->now_ms - e->cycle_proposed_ms[i] < CHECKPOINT_RETRY_MS;
        bool closing = refused || (found && last.state == CYCLE_CLOSING);
        int64_t since = found ? last.created_ms : e->started_wall_ms;
        ledger_cycle_release(&last);
        uint64_t count = 0;
        if (closing || ledger_cycle_running(e->ctx.ledger, peer, add_count, &count) != LEDGER_OK ||
            count == 0) {
            continue;
        }
        e->cycle_due[i] =
            (every > 0 && count >= every) || engine_cycle_at_due(e->wall_ms, at_min, since);
    }
}

/* The earliest deadline of the set-offs we proposed that are undecided (3.12.3): an indexed
 * lookup of one row. */
static void find_setoff_deadline(engine_t *e)
{
    size_t n = 0;
    int64_t due = INT64_MAX;
    if (!ledger_stopped(e->ctx.ledger) &&
        ledger_setoff_due(e->ctx.ledger, INT64_MIN, NULL, 0, &n, &due) == LEDGER_OK) {
        e->setoff_due_wall = due;
    }
}

void engine_after(engine_t *e, bool committed)
{
    assert(e != NULL);
    for (size_t i = 0; i < e->statements_in_count; i++) {
        inbound_statement_clear(&e->statements_in[i]); /* no transaction took them: the ledger
                                                          stopped; the peers ask again */
    }
    e->statements_in_count = 0;
    after_statements(e, committed);
    for (size_t i = 0; i < e->peers; i++) {
        channel_after_commit(e->channels[i], e->now_ms);
        e->ctx.keys[i].applied_through = channel_applied_seq(e->channels[i]);
    }
    answer_reads(e); /* after the turn's acknowledgements and messages have left */
    start_due_checkpoints(e);
    find_due_cycles(e);
    find_setoff_deadline(e);
}

int64_t engine_next_deadline(const engine_t *e, int64_t next)
{
    assert(e != NULL);
    if (e->setoff_due_wall != INT64_MAX) {
        int64_t in = e->setoff_due_wall - e->wall_ms;
        int64_t at = in <= 0 ? e->now_ms : e->now_ms + in;
        next = at < next ? at : next;
    }
    for (size_t i = 0; i < e->peers; i++) {
        if (e->cycle_due[i]) {
            next = e->now_ms < next ? e->now_ms : next;
        }
        int64_t d = channel_next_deadline(e->channels[i]);
        next = d < next ? d : next;
        if (e->sessions[i].recon != NULL) {
            d = recon_deadline(e->sessions[i].recon);
            next = d != 0 && d < next ? d : next;
            next = e->sessions[i].deadline_ms < next ? e->sessions[i].deadline_ms : next;
        }
        if (!ledger_stopped(e->ctx.ledger)) {
            d = channel_apply_after_ms(e->channels[i]);
            next = d < next ? d : next;
            int64_t expiry = channel_next_expiry_ms(e->channels[i]);
            if (expiry != INT64_MAX && e->wall_ms != 0) { /* wall to monotonic */
                int64_t wait = 0; /* a peer's expiry may be anything: no overflow */
                if (expiry <= e->wall_ms) {
                    next = e->now_ms < next ? e->now_ms : next;
                } else if (!__builtin_sub_overflow(expiry, e->wall_ms, &wait) &&
                           !__builtin_add_overflow(e->now_ms, wait, &d)) {
                    next = d < next ? d : next;
                }
            }
        }
    }
    int64_t deferred = responder_next_ms(e->responder);
    return deferred < next ? deferred : next;
}

int engine_session_start(engine_t *e, size_t peer_index, bool repair, int64_t deadline_ms)
{
    assert(e != NULL && peer_index < e->peers);
    session_t *s = &e->sessions[peer_index];
    if (s->recon != NULL && s->automatic) { /* the operator's takes its place */
        recon_destroy(&s->recon);
        s->automatic = false;
    }
    if (s->recon != NULL) {
        return -1;
    }
    recon_ctx_t ctx = recon_ctx_of(e, peer_index);
    if ((s->recon = recon_new(&ctx, repair, e->now_ms)) == NULL) {
        return -2;
    }
    recon_hold_sends(s->recon, ledger_in_transaction(e->ctx.ledger)); /* started by the work */
    int64_t latest = e->now_ms + ENGINE_SESSION_MS_MAX;
    s->deadline_ms = deadline_ms > latest ? latest : deadline_ms;
    return 0;
}

void engine_session_cancel(engine_t *e, size_t peer_index)
{
    assert(e != NULL && peer_index < e->peers && !e->sessions[peer_index].automatic);
    recon_destroy(&e->sessions[peer_index].recon);
}

void engine_session_go(engine_t *e, size_t peer_index)
{
    assert(e != NULL && peer_index < e->peers && e->sessions[peer_index].recon != NULL);
    recon_tick(e->sessions[peer_index].recon, e->now_ms);
}
