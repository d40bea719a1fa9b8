/* The exactly-once channel to one peer; see channel.h for the protocol and its states. */
#include "channel.h"
#include "channel_private.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "fx.h"
#include "keyannounce.h"
#include "log.h"
#include "ratelimit.h"
#include "validate.h"
#include "wire.h"

#define FAST_RETRANSMIT_MS  200 /* at most this often */
#define TRANSMIT_SCAN_BATCH 512 /* outbox rows read per scan */
#define BLOCKED_RETRY_MS    20  /* after the socket refused a frame */

const char *channel_state_name(channel_state_t state)
{
    switch (state) {
    case CHANNEL_DOWN:
        return "down";
    case CHANNEL_UP:
        return "up";
    case CHANNEL_DIVERGED:
        return "diverged";
    }
    return "unknown";
}

/* Takes the counters from the ledger; false (nothing changed) when they cannot be read or
 * are out of range: a channel never restarts its numbers from 0 on its own. */
/* What a held message costs: its body and its evidence (which holds the body again). */
static uint64_t held_size(const envelope_message_t *msg)
{
    return (uint64_t)msg->body_len + msg->evidence_len + sizeof *msg;
}

/* The largest a held message can be (its body, and its evidence holding the body again). */
#define HELD_MESSAGE_MAX (2 * (uint64_t)CORRIDOR_WIRE_BYTES_MAX + sizeof(envelope_message_t))

void channel_check_invariants(const channel_t *ch)
{
    assert(ch != NULL);
    assert(ch->state == CHANNEL_DOWN || ch->state == CHANNEL_UP || ch->state == CHANNEL_DIVERGED);
    assert(ch->acked_seq <= ch->sent_seq && ch->sent_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(ch->applied_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(ch->acked_persisted <= ch->acked_seq && ch->applied_persisted <= ch->applied_seq);
    /* never re-send what the peer committed, never past what we queued */
    assert(ch->transmit_next > ch->acked_seq && ch->transmit_next <= ch->sent_seq + 1);
    assert(ch->wire_version_persisted <= ch->wire_version); /* never downgraded */
    assert(ch->wire_version >= INNER_VERSION_MIN && ch->wire_version <= INNER_VERSION_MAX);
    assert(ch->rto_ms >= CHANNEL_RTO_MIN_MS && ch->rto_ms <= CHANNEL_RTO_MAX_MS);
    assert(ch->stats.held <= CHANNEL_HOLD_MAX &&
           (ch->stats.held == 0) == (ch->stats.held_bytes == 0));
    /* the byte budget, but for the one message next in order, which is always taken */
    assert(ch->stats.held_bytes <= CHANNEL_HOLD_BYTES_MAX + HELD_MESSAGE_MAX);
    assert(ch->state != CHANNEL_DIVERGED || ch->stats.held == 0); /* nothing waits to apply */
#ifdef CORRIDOR_DEEP_CHECKS
    /* every held message in its slot, inside the window: O(window), in checking builds */
    uint64_t held = 0, bytes = 0;
    for (size_t i = 0; i < CHANNEL_HOLD_MAX; i++) {
        const envelope_message_t *m = ch->hold[i];
        if (m != NULL) {
            assert(m->sequence % CHANNEL_HOLD_MAX == i);
            assert(m->sequence > ch->applied_seq &&
                   m->sequence <= ch->applied_seq + CHANNEL_HOLD_MAX);
            held++;
            bytes += held_size(m);
        }
    }
    assert(held == ch->stats.held && bytes == ch->stats.held_bytes);
#endif
}

/* The only move a peer can never cause is out of DIVERGED into UP: that takes a repair
 * (channel_reload, which goes to DOWN). */
static void set_state(channel_t *ch, channel_state_t to)
{
    assert(!(ch->state == CHANNEL_DIVERGED && to == CHANNEL_UP));
    ch->state = to;
    ch->been_up |= to == CHANNEL_UP;
}

static bool load_counters(channel_t *ch)
{
    ledger_channel_t saved;
    if (ledger_channel_get(ch->ctx.ledger, ch->peer->card.name, &saved) != LEDGER_OK) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL, "cannot read the channel: %s",
                  ledger_last_error(ch->ctx.ledger));
        return false;
    }
    ch->sent_seq = saved.sent_seq;
    ch->acked_seq = ch->acked_persisted = saved.acked_seq;
    ch->applied_seq = ch->applied_persisted = saved.applied_seq;
    ch->diverged_persisted = saved.diverged;
    ch->wire_version = ch->wire_version_persisted =
        saved.wire_version >= INNER_VERSION_MIN && saved.wire_version <= INNER_VERSION_MAX
            ? saved.wire_version
            : INNER_VERSION_MIN;
    ch->peer_features_persisted = saved.peer_features;
    if (saved.diverged) {
        set_state(ch, CHANNEL_DIVERGED);
    } else if (ch->state == CHANNEL_DIVERGED) {
        set_state(ch, CHANNEL_DOWN); /* repaired */
    }
    ch->transmit_next = ch->acked_seq + 1;
    return true;
}

/* The last two keys of each side of the channel in the key history. */
typedef struct {
    key_record_t last[2][2]; /* [side][0: the one before, 1: the open one] */
    size_t count[2];
    envelope_peer_t *keys;      /* collects our closed keys' ids */
    const uint8_t *card_key_id; /* the configured card's key, */
    bool card_seen;             /* among the peer's keys of the history */
} key_tail_t;

static void keep_tail(const key_record_t *k, void *arg)
{
    key_tail_t *t = arg;
    if (k->side == KEY_SIDE_OURS && k->last_seq != 0) {
        envelope_peer_add_our_key(t->keys, k->key_id);
    }
    t->card_seen |= k->side == KEY_SIDE_THEIRS &&
                    sodium_memcmp(k->key_id, t->card_key_id, IDENTITY_KEY_ID_BYTES) == 0;
    key_record_t *slots = t->last[k->side == KEY_SIDE_THEIRS];
    slots[0] = slots[1];
    slots[1] = *k;
    slots[1].evidence = NULL; /* valid only during the call, and not needed here */
    slots[1].evidence_len = 0;
    t->count[k->side == KEY_SIDE_THEIRS]++;
}

/* Which of the identities this process holds has key id `key_id`; NULL if none. */
static const identity_t *held_identity(const channel_t *ch, const uint8_t *key_id)
{
    const identity_t *held[] = {ch->ctx.self, ch->ctx.self_previous};
    for (size_t i = 0; i < 2; i++) {
        if (held[i] != NULL && sodium_memcmp(held[i]->key_id, key_id, IDENTITY_KEY_ID_BYTES) == 0) {
            return held[i];
        }
    }
    return NULL;
}

/* The box keys of this channel (PROTOCOL.md 2.14): we seal with what the peer can open (our
 * previous box key until it acknowledged our announcement), and open with any pair of the
 * peer's and ours. false on a weak key (nothing changed). */
static bool refresh_box(channel_t *ch)
{
    bool previous = ch->own_previous != NULL && ch->acked_seq < ch->own_rotated_at;
    const identity_t *seal = previous ? ch->own_previous : ch->own;
    const identity_t *other = previous ? ch->own : ch->own_previous;
    if (envelope_peer_set_box(ch->keys, ch->peer_box,
                              ch->has_peer_box_previous ? ch->peer_box_previous : NULL, seal,
                              other) != ENV_OK) {
        return false;
    }
    return true;
}

/* The peer's key before its announcement signs nothing more: it has our Ack of the
 * announcement (its control messages come under the new key, and its frames are sealed with
 * its new box key), so neither is taken any more (a thief of the old key gets nowhere). */
static void close_peer_previous(channel_t *ch)
{
    envelope_peer_close_previous(ch->keys);
    if (ch->has_peer_box_previous) {
        ch->has_peer_box_previous = false;
        (void)refresh_box(ch); /* fewer keys than before: never weak */
    }
}

/* Whether the key that signed the held message `msg` may sign its number (PROTOCOL.md 2.14):
 * it was checked when it arrived, but a KeyAnnounce applied since may have ended that key's
 * range. */
static bool signer_in_range(const channel_t *ch, const envelope_message_t *msg)
{
    const envelope_peer_t *k = ch->keys;
    if (envelope_peer_is_current(k, msg->author_key_id)) {
        return msg->sequence > k->previous_through;
    }
    return k->previous_through != 0 && msg->sequence <= k->previous_through &&
           sodium_memcmp(k->previous_key_id, msg->author_key_id, IDENTITY_KEY_ID_BYTES) == 0;
}

/* Both sides' keys on this channel from the key history (PROTOCOL.md 2.14); with no history,
 * the peer's card and our current keys. false when the history cannot be read or names, as
 * our open key, one this process does not hold. */
static bool load_keys(channel_t *ch)
{
    key_tail_t tail;
    memset(&tail, 0, sizeof tail);
    uint8_t card_key_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(ch->peer->card.sign_public, card_key_id);
    tail.keys = ch->keys;
    tail.card_key_id = card_key_id;
    ch->keys->our_key_ids_count = 0;
    if (ledger_keys(ch->ctx.ledger, ch->peer->card.name, keep_tail, &tail) != LEDGER_OK) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL, "cannot read the key history: %s",
                  ledger_last_error(ch->ctx.ledger));
        return false;
    }
    const key_record_t *theirs = tail.last[KEY_SIDE_THEIRS];
    size_t n = tail.count[KEY_SIDE_THEIRS];
    if (n > 0 && !tail.card_seen) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "corridor.conf names a key for this peer that its key history does not hold: "
                  "the history's keys are used (replacing a peer's key by its card is not "
                  "supported yet)");
    }
    /* a key our operator put in place of the peer's (peer add --replace): nothing before it
     * signs any more, and the one it replaced is named in the log if it still tries */
    bool replaced = n >= 1 && strcmp(theirs[1].source, "replaced") == 0;
    envelope_peer_set_key(ch->keys, n == 0               ? ch->peer->card.sign_public
                                    : n == 1 || replaced ? theirs[1].sign_public
                                                         : theirs[0].sign_public);
    if (replaced && n >= 2) {
        memcpy(ch->keys->revoked_key_id, theirs[0].key_id, IDENTITY_KEY_ID_BYTES);
        ch->keys->has_revoked = true;
    }
    snprintf(ch->peer_curve, sizeof ch->peer_curve, "%s",
             n == 0 ? ch->peer->card.curve_public : theirs[1].curve_public);
    ch->peer_curve_previous[0] = '\0';
    if (n >= 2 && !replaced && strcmp(theirs[0].curve_public, theirs[1].curve_public) != 0) {
        snprintf(ch->peer_curve_previous, sizeof ch->peer_curve_previous, "%s",
                 theirs[0].curve_public);
    }
    ch->peer_switch_seq = n >= 1 ? theirs[1].switch_seq : 0;
    ch->peer_switch_until_ms = n >= 1 ? theirs[1].switch_ms : 0;
    ch->peer_switch_heard = false;
    memcpy(ch->peer_box, n == 0 ? ch->peer->card.box_public : theirs[1].box_public,
           sizeof ch->peer_box);
    ch->has_peer_box_previous = n >= 2 && !replaced;
    if (n >= 2 && !replaced && theirs[1].first_seq <= theirs[0].first_seq) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "the key history's ranges of the peer's keys overlap (the ledger was edited?)");
        return false;
    }
    if (n >= 2 && !replaced) {
        envelope_peer_rotate(ch->keys, theirs[1].sign_public, theirs[1].first_seq - 1);
        memcpy(ch->peer_box_previous, theirs[0].box_public, sizeof ch->peer_box_previous);
        if (ch->applied_seq > ch->keys->previous_through) {
            /* we applied a message the new key signed: the peer had our Ack of its
             * announcement, and its control messages and frames use its new keys */
            envelope_peer_close_previous(ch->keys);
            ch->has_peer_box_previous = false;
        }
    }
    const key_record_t *ours = tail.last[KEY_SIDE_OURS];
    n = tail.count[KEY_SIDE_OURS];
    ch->own = ch->ctx.self;
    ch->own_previous = NULL;
    ch->own_rotated_at = 0;
    ch->own_replaced_from = 0;
    ch->peer_sent_at_ack_known = false; /* the next Hello tells */
    if (n >= 1 && (ch->own = held_identity(ch, ours[1].key_id)) == NULL) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "the key history names a key of ours this process does not hold");
        ch->own = ch->ctx.self;
        return false;
    }
    ch->own_curve_previous[0] = '\0';
    ch->own_switch_seq = n >= 1 ? ours[1].switch_seq : 0;
    ch->own_overlap_ms = n >= 1 ? ours[1].switch_ms : 0;
    if (n >= 2 && strcmp(ours[1].source, "replaced") != 0 &&
        strcmp(ours[0].curve_public, ours[1].curve_public) != 0) {
        snprintf(ch->own_curve_previous, sizeof ch->own_curve_previous, "%s", ours[0].curve_public);
    }
    if (n >= 1 && strcmp(ours[1].source, "replaced") == 0) {
        ch->own_replaced_from = ours[1].first_seq;
    } else if (n >= 2) {
        ch->own_rotated_at = ours[1].first_seq - 1;
        ch->own_previous = held_identity(ch, ours[0].key_id);
        memcpy(ch->own_previous_key_id, ours[0].key_id, IDENTITY_KEY_ID_BYTES);
    }
    /* the node's keys are newer than this channel's: its announcement waits for the peer,
     * which addresses the keys it knows (the node opens frames as its newest keys) */
    ch->rotate_to = ch->own != ch->ctx.self ? ch->ctx.self : NULL;
    if (ch->rotate_to != NULL) {
        envelope_peer_add_our_key(ch->keys, ch->own->key_id);
    }
    if (!refresh_box(ch)) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "a box key of the peer's in the key history is weak");
        return false;
    }
    return true;
}

channel_t *channel_new(const channel_ctx_t *ctx, size_t peer_index, const config_peer_t *peer,
                       envelope_peer_t *keys, int64_t now_ms)
{
    assert(ctx != NULL && peer != NULL && keys != NULL && ctx->send != NULL);
    channel_t *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        return NULL;
    }
    ch->ctx = *ctx;
    ch->index = peer_index;
    ch->peer = peer;
    ch->keys = keys;
    ch->state = CHANNEL_DOWN;
    ch->rto_ms = CHANNEL_RTO_INIT_MS;
    ch->last_rx_ms = now_ms;
    ch->hello_due = true; /* announce ourselves at once */
    ratelimit_init(&ch->rewinds, CHANNEL_REWINDS_PER_S, CHANNEL_REWINDS_BURST);
    costlimit_init(&ch->applied_bytes, CHANNEL_APPLIED_UNIT, CHANNEL_APPLIED_PER_S,
                   CHANNEL_APPLIED_BURST);
    costlimit_init(&ch->idle_bytes, CHANNEL_IDLE_UNIT, CHANNEL_IDLE_PER_S, CHANNEL_IDLE_BURST);
    if (!load_counters(ch) || !load_keys(ch)) {
        free(ch);
        return NULL;
    }
    if (ch->state == CHANNEL_DIVERGED) {
        log_event(ctx->node_name, ch->peer->card.name, NULL,
                  "channel is DIVERGED (recorded): held until `corridor reconcile --repair`");
    }
    channel_check_invariants(ch);
    return ch;
}

static void free_message(envelope_message_t *msg)
{
    if (msg != NULL) {
        envelope_message_clear(msg);
        free(msg);
    }
}

static void clear_hold(channel_t *ch)
{
    for (size_t i = 0; i < CHANNEL_HOLD_MAX; i++) {
        if (ch->hold[i] != NULL) {
            envelope_message_clear(ch->hold[i]);
            free(ch->hold[i]);
            ch->hold[i] = NULL;
        }
    }
    ch->stats.held = 0;
    ch->stats.held_bytes = 0;
}

void channel_destroy(channel_t **self_p)
{
    assert(self_p != NULL);
    if (*self_p != NULL) {
        clear_hold(*self_p);
        free(*self_p);
        *self_p = NULL;
    }
}

void channel_note_duplicate(channel_t *ch)
{
    ch->stats.dropped++;
    ch->ack_due = ch->state != CHANNEL_DIVERGED;
}

uint64_t channel_applied_seq(const channel_t *ch)
{
    return ch->applied_persisted;
}

void channel_reload(channel_t *ch)
{
    channel_check_invariants(ch);
    clear_hold(ch);
    ch->probe_counter = 0;   /* a re-base may lower what the probe remembers */
    (void)load_counters(ch); /* unreadable: the ledger has stopped, and refuses every write */
    (void)load_keys(ch);
    ch->next_expiry_ms = 0; /* a held payment's expiry may have been rolled back: look again */
    channel_check_invariants(ch);
}

const char *channel_peer_name(const channel_t *ch)
{
    return ch->peer->card.name;
}

channel_stats_t channel_stats(const channel_t *ch)
{
    channel_stats_t s = ch->stats;
    s.rewinds_refused = ch->rewinds.refused;
    s.state = ch->state;
    s.sent_seq = ch->sent_seq;
    s.acked_seq = ch->acked_seq;
    s.applied_seq = ch->applied_seq;
    return s;
}

/* ---- sending sealed frames ----------------------------------------------------------------- */

/* The peer acknowledged what our keys before the current one signed: since our last
 * announcement, or since our operator's replacement (the messages signed again are then all
 * acknowledged, so a rotation after it never has to sign them a third way). */
static bool own_keys_acked(const channel_t *ch)
{
    return ch->acked_seq >= ch->own_rotated_at && ch->acked_seq + 1 >= ch->own_replaced_from;
}

bool channel_rotation_acked(const channel_t *ch)
{
    /* and its KeySwitch, if any: a rotation forgets it (own_switch_seq), and a peer that missed
     * it pins our old server key for ever (PROTOCOL.md 2.16) */
    return ch->rotate_to == NULL && own_keys_acked(ch) &&
           (ch->own_switch_seq == 0 || ch->acked_seq >= ch->own_switch_seq);
}

bool channel_previous_keys_needed(const channel_t *ch)
{
    return ch->own_rotated_at != 0 &&
           (!ch->peer_sent_at_ack_known || ch->applied_seq < ch->peer_sent_at_ack);
}

/* Our KeySwitch is not acknowledged yet: the peer pins our old server key, which we no longer
 * serve, so it cannot answer before it applies it; it is sent again even while DOWN. */
static bool switch_unacked(const channel_t *ch)
{
    return ch->own_switch_seq != 0 && ch->acked_seq < ch->own_switch_seq;
}

const identity_t *channel_own(const channel_t *ch)
{
    return ch->own;
}

bool channel_peer_offers(const channel_t *ch, unsigned features)
{
    return (ch->peer_features & features) == features;
}

bool channel_peer_offered(const channel_t *ch, unsigned features)
{
    uint64_t known = ch->been_up ? ch->peer_features : ch->peer_features_persisted;
    return (known & features) == features;
}

/* Who signs our control messages: the key before our last announcement until the peer
 * acknowledged it (it cannot check the new one before), then the new one. */
static const identity_t *control_signer(const channel_t *ch)
{
    return ch->own_previous != NULL && ch->acked_seq < ch->own_rotated_at ? ch->own_previous
                                                                          : ch->own;
}

/* The key id of whoever signed our sequenced message `seq`: it goes on the Envelope, and a
 * re-send needs no secret key, so this holds after the previous key file is gone too. */
static const uint8_t *author_of(const channel_t *ch, uint64_t seq)
{
    return seq <= ch->own_rotated_at ? ch->own_previous_key_id : ch->own->key_id;
}

/* Seals and sends an unsequenced message (Ack, Hello); they are cheap to lose. */
static void send_control(channel_t *ch, msg_type_t type, const uint8_t *body, size_t len)
{
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    if (envelope_seal_version(control_signer(ch), ch->keys, ch->wire_version, type, 0, body, len,
                              &wire, &wire_len) == ENV_OK) {
        (void)ch->ctx.send(ch->ctx.arg, ch->index, type, wire, wire_len);
    }
    free(wire);
}

static void send_ack(channel_t *ch)
{
    Corridor__Ack ack = CORRIDOR__ACK__INIT;
    ack.sequence = ch->applied_seq;
    ack.incarnation = ch->ctx.incarnation;
    ack.counter = ++ch->control_counter;
    uint8_t buf[48];
    assert(corridor__ack__get_packed_size(&ack) <= sizeof buf);
    size_t len = corridor__ack__pack(&ack, buf);
    send_control(ch, MSG_ACK, buf, len);
}

static void send_hello(channel_t *ch, int64_t now_ms)
{
    Corridor__Hello hello = CORRIDOR__HELLO__INIT;
    hello.sent_sequence = ch->sent_seq;
    hello.applied_sequence = ch->applied_seq;
    hello.acked_sequence = ch->acked_seq;
    hello.reply_wanted = ch->state == CHANNEL_DOWN;
    hello.incarnation = ch->ctx.incarnation;
    hello.counter = ++ch->control_counter;
    uint32_t versions[INNER_VERSION_MAX - INNER_VERSION_MIN + 1];
    for (uint32_t v = INNER_VERSION_MIN; v <= INNER_VERSION_MAX; v++) {
        versions[v - INNER_VERSION_MIN] = v;
    }
    hello.n_versions = sizeof versions / sizeof versions[0];
    hello.versions = versions;
    hello.features = CHANNEL_FEATURES;
    hello.echo_incarnation = ch->peer_incarnation;
    hello.echo_counter = ch->peer_counter;
    if (ch->probe_counter == 0) { /* a peer's Hello that echoes this one was written after it */
        ch->probe_counter = hello.counter;
        ch->probe_applied = ch->applied_seq;
    }
    uint8_t buf[128];
    assert(corridor__hello__get_packed_size(&hello) <= sizeof buf);
    size_t len = corridor__hello__pack(&hello, buf);
    send_control(ch, MSG_HELLO, buf, len);
    ch->last_hello_ms = now_ms;
    ch->hello_due = false;
}

/* ---- receiving --------------------------------------------------------------------------- */

static void enter_diverged(channel_t *ch, const char *why, bool peer_restored)
{
    if (ch->state != CHANNEL_DIVERGED) {
        ch->peer_restored = peer_restored;
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "ROLLBACK DETECTED: %s; channel DIVERGED, new settlements held until "
                  "`corridor reconcile --peer %s --repair`",
                  why, ch->peer->card.name);
    }
    set_state(ch, CHANNEL_DIVERGED);
    clear_hold(ch);
}

/* RFC 6298: the timeout follows the measured round trip (which includes the peer's group
 * commit), so a busy peer is not flooded with copies and a lost message is sent again soon. */
static void update_rto(channel_t *ch, int64_t sample_ms)
{
    if (ch->srtt_ms == 0) {
        ch->srtt_ms = sample_ms > 0 ? sample_ms : 1;
        ch->rttvar_ms = sample_ms / 2;
    } else {
        int64_t err = sample_ms > ch->srtt_ms ? sample_ms - ch->srtt_ms : ch->srtt_ms - sample_ms;
        ch->rttvar_ms = (3 * ch->rttvar_ms + err) / 4;
        ch->srtt_ms = (7 * ch->srtt_ms + sample_ms) / 8;
    }
    int64_t rto = ch->srtt_ms + 4 * ch->rttvar_ms;
    ch->rto_ms = rto < CHANNEL_RTO_MIN_MS   ? CHANNEL_RTO_MIN_MS
                 : rto > CHANNEL_RTO_MAX_MS ? CHANNEL_RTO_MAX_MS
                                            : rto;
}

/* The peer has committed our messages up to n (from a signed Ack or Hello). Returns false
 * when n says nothing new. Never moves backwards, never past what we sent. */
static bool advance_acked(channel_t *ch, uint64_t n, int64_t now_ms)
{
    if (n > ch->sent_seq) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "ignored an acknowledgement of %llu: only %llu were sent", (unsigned long long)n,
                  (unsigned long long)ch->sent_seq);
        return true; /* not a repeat either */
    }
    if (n <= ch->acked_seq) {
        return false;
    }
    bool took_our_keys = ch->acked_seq < ch->own_rotated_at && n >= ch->own_rotated_at;
    ch->acked_seq = n;
    if (ch->rtt_probe_seq != 0 && n >= ch->rtt_probe_seq) {
        update_rto(ch, now_ms - ch->rtt_probe_sent_ms);
        ch->rtt_probe_seq = 0;
    }
    ch->rto_deadline_ms = ch->transmit_next - 1 > n ? now_ms + ch->rto_ms : 0;
    if (ch->transmit_next <= n) {
        ch->transmit_next = n + 1;
    }
    if (took_our_keys) {
        (void)refresh_box(ch); /* the peer took our new box key: seal with it (weak: never) */
    }
    return true;
}

static void on_ack(channel_t *ch, uint64_t n, int64_t now_ms)
{
    /* The same Ack again while messages are in flight: the peer is missing acked + 1 (it
     * acknowledges again on a gap). Re-send that one message, not the whole window. */
    if (!advance_acked(ch, n, now_ms) && ch->transmit_next - 1 > n &&
        now_ms - ch->last_fast_retransmit_ms >= FAST_RETRANSMIT_MS) {
        ch->last_fast_retransmit_ms = now_ms;
        ch->resend_first = true;
    }
}

/* The highest Inner version a Hello offers that we speak too (1 when it lists none). */
static uint32_t offered_version(const Corridor__Hello *h)
{
    uint32_t best = INNER_VERSION_MIN;
    for (size_t i = 0; i < h->n_versions && i < HELLO_VERSIONS_MAX; i++) {
        if (h->versions[i] > best && h->versions[i] <= INNER_VERSION_MAX) {
            best = h->versions[i];
        }
    }
    return best;
}

/* Takes the version a Hello offers; false when it offers less than the channel already uses
 * (a downgrade, refused: the Hello is ignored). */
static bool negotiate(channel_t *ch, const Corridor__Hello *h)
{
    uint32_t offered = offered_version(h);
    if (offered < ch->wire_version) {
        if (offered != ch->refused_offer) { /* the peer repeats its Hello every second */
            log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                      "refused Hellos offering wire version %u: the channel already speaks %u "
                      "(no downgrade); the channel stays down",
                      offered, ch->wire_version);
            ch->refused_offer = offered;
        }
        return false;
    }
    ch->refused_offer = 0;
    if (offered > ch->wire_version) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL, "channel speaks wire version %u",
                  offered);
        ch->wire_version = offered;
    }
    ch->peer_features = h->features;
    return true;
}

/* Whether the peer says it sent fewer messages than we applied. An Ack or Hello stamped after
 * another is written after it, so the other checks compare with our current counters; but our
 * applied moves with sequenced messages, which carry no stamp, and a Hello they overtook
 * understates the peer's sent. A peer that echoes (CHANNEL_FEATURE_ECHO) took our probe Hello
 * before writing this one, and we had applied probe_applied of its messages before the probe
 * left: a sent below that is a rollback, whatever the network reordered. An older peer is
 * judged by our counters now, the two Hellos in a row absorbing one overtaken Hello. */
static bool sent_below_applied(channel_t *ch, const Corridor__Hello *h)
{
    if ((h->features & CHANNEL_FEATURE_ECHO) == 0) {
        return h->sent_sequence < ch->applied_seq;
    }
    bool echoes_probe = ch->probe_counter != 0 && h->echo_incarnation == ch->ctx.incarnation &&
                        h->echo_counter >= ch->probe_counter &&
                        h->echo_counter <= ch->control_counter;
    if (!echoes_probe) {
        return false; /* written before it took our probe: it proves nothing yet */
    }
    if (h->sent_sequence < ch->probe_applied) {
        return true; /* keep the probe: the next Hello is judged by it too */
    }
    ch->probe_counter = 0; /* consistent: the next Hello we send probes our counters then */
    return false;
}

static void on_hello(channel_t *ch, const Corridor__Hello *h, int64_t now_ms)
{
    char why[200];
    if (!negotiate(ch, h)) {
        return;
    }
    /* A peer put back from an old copy contradicts our counters in every Hello; a Hello
     * written before the messages that overtook it (a reconnect, or a network that reorders)
     * contradicts them too, and only its echo tells the two apart (sent_below_applied). The
     * first contradiction only asks for the next Hello (heartbeats come every
     * CHANNEL_HEARTBEAT_MS), and the second in a row diverges the channel. */
    bool behind = h->applied_sequence < ch->acked_seq || sent_below_applied(ch, h);
    bool ahead = h->applied_sequence > ch->sent_seq || h->acked_sequence > ch->applied_seq;
    if ((behind || ahead) && !ch->hello_contradicted && ch->state != CHANNEL_DIVERGED) {
        ch->hello_contradicted = true;
        ch->hello_due = true;
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "a Hello contradicts our counters (it says applied %llu, sent %llu; we sent "
                  "%llu, applied %llu): waiting for the next one",
                  (unsigned long long)h->applied_sequence, (unsigned long long)h->sent_sequence,
                  (unsigned long long)ch->sent_seq, (unsigned long long)ch->applied_seq);
        return;
    }
    ch->hello_contradicted = false;
    if (behind) {
        snprintf(why, sizeof why,
                 "peer applied %llu of ours but had acknowledged %llu, and sent %llu of which "
                 "we applied %llu (peer restored from an old copy)",
                 (unsigned long long)h->applied_sequence, (unsigned long long)ch->acked_seq,
                 (unsigned long long)h->sent_sequence, (unsigned long long)ch->applied_seq);
        enter_diverged(ch, why, true);
        return;
    }
    if (ahead) {
        snprintf(why, sizeof why,
                 "peer applied %llu of ours but we sent only %llu, and says we acknowledged "
                 "%llu of its but we applied %llu (this node restored from an old copy)",
                 (unsigned long long)h->applied_sequence, (unsigned long long)ch->sent_seq,
                 (unsigned long long)h->acked_sequence, (unsigned long long)ch->applied_seq);
        enter_diverged(ch, why, false);
        return;
    }
    if (ch->state == CHANNEL_DIVERGED) {
        return; /* only a repair leaves DIVERGED */
    }
    (void)advance_acked(ch, h->applied_sequence, now_ms); /* what it applied, it committed */
    if (!ch->peer_sent_at_ack_known && ch->own_rotated_at != 0 &&
        h->applied_sequence >= ch->own_rotated_at) {
        ch->peer_sent_at_ack = h->sent_sequence; /* written after it took our announcement */
        ch->peer_sent_at_ack_known = true;
    }
    bool was_down = ch->state == CHANNEL_DOWN;
    set_state(ch, CHANNEL_UP);
    if (was_down || h->reply_wanted) {
        /* resume from the gap: whatever was in flight may be lost. A peer that asks for it in
         * every Hello gets the window again at most CHANNEL_REWINDS_PER_S times a second (our
         * own reconnect, after silence, always rewinds) */
        if (was_down || ratelimit_take(&ch->rewinds, now_ms)) {
            ch->transmit_next = ch->acked_seq + 1;
            ch->rto_deadline_ms = 0;
        }
        ch->hello_due = true;
    }
    if (was_down) {
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "peer up: it applied %llu of our %llu, sent %llu (we applied %llu)",
                  (unsigned long long)h->applied_sequence, (unsigned long long)ch->sent_seq,
                  (unsigned long long)h->sent_sequence, (unsigned long long)ch->applied_seq);
    }
}

/* A KeySwitch reaching a DIVERGED channel is not applied (nothing is before a repair), but
 * the peer, by its current key, says its inbound socket serves the CURVE key it announced:
 * we pin that key (in memory) so that the repair's requests reach it. After the repair the
 * stream applies the KeySwitch, which the peer sends until we acknowledge it. */
static void pin_switch_while_diverged(channel_t *ch, const envelope_message_t *msg)
{
    key_switch_t ks;
    if (ch->peer_switch_seq != 0 || ch->peer_switch_heard || ch->peer_curve_previous[0] == '\0' ||
        !envelope_peer_is_current(ch->keys, msg->author_key_id) ||
        key_switch_decode(msg->body, msg->body_len, &ks) != 0 ||
        strcmp(ks.curve_public, ch->peer_curve) != 0) {
        return;
    }
    ch->peer_switch_heard = true;
    log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
              "peer's KeySwitch (sequence %llu) reached the diverged channel: its new CURVE "
              "key is pinned now, the switch applied after a repair",
              (unsigned long long)msg->sequence);
}

/* Holds a business message until it is next in order. Takes ownership of *msg. */
static void hold_message(channel_t *ch, envelope_message_t *msg)
{
    uint64_t seq = msg->sequence;
    if (ch->state == CHANNEL_DIVERGED || seq == 0 || seq <= ch->applied_seq) {
        ch->stats.dropped++;
        ch->ack_due = ch->state != CHANNEL_DIVERGED && seq != 0; /* re-acknowledge duplicates */
        envelope_message_clear(msg);
        return;
    }
    if (seq > ch->applied_seq + CHANNEL_HOLD_MAX) {
        ch->stats.dropped++;
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "dropped message %llu: too far ahead of %llu", (unsigned long long)seq,
                  (unsigned long long)ch->applied_seq);
        envelope_message_clear(msg);
        return;
    }
    size_t slot = (size_t)(seq % CHANNEL_HOLD_MAX);
    if (ch->hold[slot] != NULL) { /* the same sequence again (a retransmission) */
        ch->stats.dropped++;
        envelope_message_clear(msg);
        return;
    }
    /* A peer can open a gap and fill the window behind it with the largest messages: the
     * bytes are bounded too. The next message in order is always taken (it is applied in
     * this turn and frees what waits behind it); what is dropped comes again. */
    if (seq != ch->applied_seq + 1 &&
        ch->stats.held_bytes + held_size(msg) > CHANNEL_HOLD_BYTES_MAX) {
        if (ch->stats.hold_full++ % 1024 == 0) {
            log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                      "dropped message %llu: %llu bytes already held after a gap at %llu "
                      "(%llu such drops)",
                      (unsigned long long)seq, (unsigned long long)ch->stats.held_bytes,
                      (unsigned long long)ch->applied_seq + 1,
                      (unsigned long long)ch->stats.hold_full);
        }
        ch->stats.dropped++;
        envelope_message_clear(msg);
        return;
    }
    envelope_message_t *copy = malloc(sizeof *copy);
    if (copy == NULL) {
        envelope_message_clear(msg); /* the peer will send it again */
        return;
    }
    *copy = *msg;
    memset(msg, 0, sizeof *msg);
    assert(seq > ch->applied_seq && seq <= ch->applied_seq + CHANNEL_HOLD_MAX);
    ch->hold[slot] = copy;
    ch->stats.held++;
    ch->stats.held_bytes += held_size(copy);
    if (seq > ch->applied_seq + 1) {
        ch->ack_due = true; /* a gap: our Ack tells the peer where it is */
    }
}

/* Whether a control message stamped (incarnation, counter) is newer than every one before
 * it; a delayed or duplicated older one is ignored. */
static bool fresh_control(channel_t *ch, uint64_t incarnation, uint64_t counter)
{
    if (incarnation < ch->peer_incarnation ||
        (incarnation == ch->peer_incarnation && counter <= ch->peer_counter)) {
        return false;
    }
    if (incarnation != ch->peer_incarnation) {
        /* the peer restarted (or we did, and this is its first word to us): what we hold of
         * its stream may be of a history it lost in a restore from a backup, and would fill
         * numbers it now uses again. Nothing held was acknowledged, and a reconnect resends
         * everything above what we applied, so nothing is lost. */
        clear_hold(ch);
    }
    ch->peer_incarnation = incarnation;
    ch->peer_counter = counter;
    return true;
}

void channel_receive(channel_t *ch, envelope_message_t *msg, int64_t now_ms)
{
    assert(msg != NULL);
    channel_check_invariants(ch);
    ch->last_rx_ms = now_ms;
    if (!msg_type_sequenced((int)msg->type) && ch->keys->previous_control &&
        envelope_peer_is_current(ch->keys, msg->author_key_id)) {
        close_peer_previous(ch); /* the peer signs with its new key now */
    }
    switch (msg->type) {
    case MSG_ACK: {
        Corridor__Ack *ack =
            (Corridor__Ack *)wire_unpack(&corridor__ack__descriptor, msg->body_len, msg->body);
        if (ack != NULL && ack->sequence > CORRIDOR_SEQUENCE_MAX) {
            log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                      "dropped malformed Ack: sequence above 2^62");
        } else if (ack != NULL && ch->state != CHANNEL_DIVERGED &&
                   fresh_control(ch, ack->incarnation, ack->counter)) {
            on_ack(ch, ack->sequence, now_ms);
        }
        corridor__ack__free_unpacked(ack, NULL);
        break;
    }
    case MSG_HELLO: {
        Corridor__Hello *hello =
            (Corridor__Hello *)wire_unpack(&corridor__hello__descriptor, msg->body_len, msg->body);
        if (hello != NULL && (hello->sent_sequence > CORRIDOR_SEQUENCE_MAX ||
                              hello->applied_sequence > CORRIDOR_SEQUENCE_MAX ||
                              hello->acked_sequence > CORRIDOR_SEQUENCE_MAX)) {
            log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                      "dropped malformed Hello: a counter above 2^62");
        } else if (hello != NULL && fresh_control(ch, hello->incarnation, hello->counter)) {
            on_hello(ch, hello, now_ms);
        }
        corridor__hello__free_unpacked(hello, NULL);
        break;
    }
    case MSG_SETTLEMENT:
    case MSG_STATUS_REPORT:
    case MSG_RETURN:
    case MSG_KEY_ANNOUNCE:
    case MSG_KEY_SWITCH:
    case MSG_CANCEL_REQUEST:
    case MSG_CANCEL_ANSWER:
    case MSG_FX_PROPOSAL:
    case MSG_CYCLE_PROPOSAL:
    case MSG_CYCLE_ANSWER:
    case MSG_NET_SETTLEMENT:
    case MSG_SETOFF_RELAY:
    case MSG_SETOFF_DECISION:
        if (msg->type == MSG_KEY_SWITCH && ch->state == CHANNEL_DIVERGED) {
            pin_switch_while_diverged(ch, msg);
        }
        hold_message(ch, msg);
        break;
    case MSG_STATEMENT_REQUEST:
    case MSG_STATEMENT:
        if (ch->ctx.on_statement != NULL) {
            ch->ctx.on_statement(ch->ctx.arg, ch->index, msg); /* takes msg's buffers */
        }
        break;
    default:
        break;
    }
    envelope_message_clear(msg); /* what was not taken */
    channel_check_invariants(ch);
}

/* ---- applying, inside the transaction -------------------------------------------------- */

/* Signs a business message in Inner format `version` with the next sequence number and queues
 * it in the outbox. On success *signed_out (if not NULL) receives the signed bytes, which the
 * caller frees. */
static ledger_err_t queue_message(channel_t *ch, uint32_t version, msg_type_t type,
                                  const uint8_t *body, size_t len, uint8_t **signed_out,
                                  size_t *signed_len)
{
    assert(version >= INNER_VERSION_MIN && version <= INNER_VERSION_MAX);
    uint8_t *signed_msg = NULL;
    size_t n = 0;
    uint64_t seq = ch->sent_seq + 1;
    if (envelope_sign_version(ch->own, version, ch->keys->key_id, type, seq, body, len, &signed_msg,
                              &n) != ENV_OK) {
        return LEDGER_E_STORAGE; /* out of memory: treat as a failed batch */
    }
    ledger_err_t rc =
        ledger_outbox_put(ch->ctx.ledger, ch->peer->card.name, seq, (int)type, signed_msg, n);
    if (rc == LEDGER_OK) {
        ch->sent_seq = seq;
    }
    if (rc == LEDGER_OK && signed_out != NULL) {
        *signed_out = signed_msg;
        *signed_len = n;
    } else {
        free(signed_msg);
    }
    return rc;
}

/* Queues our pacs.002 `status` (ACSC, RJCT or PDNG) for the Settlement whose Inner was of
 * `answered_version` with body `body` (version 2 names its hash). It is signed in the channel's
 * format, or the Settlement's if that is newer: a payer that signed with version 2 speaks it,
 * even when its Hello has not reached us yet, and a version-1 answer would not name the body it
 * answers. With `signed_out`, the signed message is handed back (malloc'd). */
static ledger_err_t queue_status_report(channel_t *ch, uint32_t answered_version,
                                        const uint8_t *body, size_t body_len, const char *uetr,
                                        const char *status, const char *reason,
                                        const char *currency, int64_t position, reply_keep_t keep,
                                        uint8_t **signed_out, size_t *signed_out_len)
{
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = (char *)uetr;
    sr.status = (char *)status;
    sr.reason = (char *)(strcmp(status, "RJCT") == 0 ? reason : "");
    sr.currency = (char *)currency;
    sr.position_minor = position;
    uint32_t version = answered_version > ch->wire_version && answered_version <= INNER_VERSION_MAX
                           ? answered_version
                           : ch->wire_version;
    uint8_t body_hash[SETTLEMENT_HASH_BYTES];
    if (version >= 2) {
        settlement_body_hash(body, body_len, body_hash);
        sr.settlement_hash = (ProtobufCBinaryData){sizeof body_hash, body_hash};
    }
    uint8_t buf[320];
    assert(corridor__status_report__get_packed_size(&sr) <= sizeof buf);
    size_t len = corridor__status_report__pack(&sr, buf);
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    ledger_err_t rc =
        queue_message(ch, version, MSG_STATUS_REPORT, buf, len, &signed_msg, &signed_len);
    if (rc == LEDGER_OK && keep == REPLY_SETTLEMENT) {
        /* our signed answer stays with the settlement: a repair can hand it back */
        rc = ledger_set_reply(ch->ctx.ledger, ch->peer->card.name, uetr, signed_msg, signed_len,
                              ch->sent_seq);
    } else if (rc == LEDGER_OK && keep == REPLY_ROW) {
        rc = ledger_attach_reply(ch->ctx.ledger, ch->peer->card.name, uetr, signed_msg, signed_len);
    }
    if (rc == LEDGER_OK && signed_out != NULL) {
        *signed_out = signed_msg;
        *signed_out_len = signed_len;
    } else {
        free(signed_msg);
    }
    return rc;
}

ledger_err_t channel_queue(channel_t *ch, uint32_t version, msg_type_t type, const uint8_t *body,
                           size_t len, uint8_t **signed_out, size_t *signed_len)
{
    return queue_message(ch, version, type, body, len, signed_out, signed_len);
}

ledger_err_t channel_queue_report(channel_t *ch, uint32_t answered_version, const uint8_t *body,
                                  size_t body_len, const char *id, const char *status,
                                  const char *reason, const char *currency, int64_t position,
                                  uint8_t **signed_out, size_t *signed_out_len)
{
    return queue_status_report(ch, answered_version, body, body_len, id, status, reason, currency,
                               position, REPLY_NONE, signed_out, signed_out_len);
}

/* Queues our answer to the Settlement `msg` in its status now; a held one's PDNG goes with the
 * held row (nothing is decided). */
static ledger_err_t answer_settlement(channel_t *ch, const envelope_message_t *msg,
                                      const char *uetr, const ledger_outcome_t *out,
                                      const char *currency, reply_keep_t keep)
{
    bool held = out->status == STATUS_HELD;
    const char *status = out->status == STATUS_SETTLED ? "ACSC" : held ? "PDNG" : "RJCT";
    return queue_status_report(ch, msg->version, msg->body, msg->body_len, uetr, status,
                               out->reason, currency, out->position_minor,
                               held && keep != REPLY_NONE ? REPLY_ROW : keep, NULL, NULL);
}

/* Books a payment or return of the peer's that passed our own checks (`reason` NULL) or failed
 * one, as the ledger decides, and answers it with our pacs.002: DUPL for an id the channel
 * holds with other content. The Settlement's hold, when the screening program takes it. */
static ledger_err_t receive_and_answer(channel_t *ch, const envelope_message_t *msg,
                                       const settlement_t *s, reason_t reason, const char *hold,
                                       int64_t cap, bool *moved, ledger_outcome_t *out)
{
    const char *peer = ch->peer->card.name;
    ledger_err_t rc = ledger_receive_holding(ch->ctx.ledger, s, cap, reason_code(reason), hold,
                                             msg->evidence, msg->evidence_len, msg->sequence, out);
    if (rc == LEDGER_E_CONFLICT) {
        log_event(ch->ctx.node_name, peer, s->uetr, "rejected DUPL: id reused with other content");
        memset(out, 0, sizeof *out);
        out->repeated = true;
        return queue_status_report(ch, msg->version, msg->body, msg->body_len, s->uetr, "RJCT",
                                   reason_code(REASON_DUPLICATE), s->currency, 0, REPLY_NONE, NULL,
                                   NULL);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    *moved = out->status == STATUS_SETTLED && !out->repeated;
    if (!out->repeated) {
        log_event(ch->ctx.node_name, peer, s->uetr, "incoming %s%lld %s %s%s%s",
                  settlement_is_return(s) ? "return " : "", (long long)s->amount_minor, s->currency,
                  status_name(out->status), out->reason[0] ? " " : "", out->reason);
    }
    return answer_settlement(ch, msg, s->uetr, out, s->currency,
                             out->repeated ? REPLY_NONE : REPLY_SETTLEMENT);
}

/* The apply_* functions set *moved when the message moved money (booked, resolved, returned):
 * every other one (rejected, repeated, malformed, ignored) pays from the peer's tighter
 * allowance. */
static ledger_err_t apply_settlement(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    settlement_t s;
    reason_t reason = settlement_decode(msg->body, msg->body_len, peer, DIRECTION_IN, &s);
    if (uetr_check(s.uetr) != VALID_OK) {
        /* without a valid UETR there is nothing to key an entry or a report on */
        log_event(ch->ctx.node_name, peer, NULL,
                  "dropped malformed Settlement (sequence %llu): no valid UETR",
                  (unsigned long long)msg->sequence);
        return LEDGER_OK;
    }
    if (reason == REASON_NONE) {
        reason = settlement_check(&s);
    }
    if (reason == REASON_NONE && !config_accepts(ch->ctx.config, s.currency)) {
        reason = REASON_CURRENCY; /* a currency this node does not deal in */
    }
    if (reason == REASON_NONE && s.expires_unix_ms != 0 && ch->wall_ms >= s.expires_unix_ms) {
        reason = REASON_EXPIRED; /* 3.8.1: it arrived too late */
    }
    channel_screen_t screen = CHANNEL_SCREEN_PASS;
    if (reason == REASON_NONE && ch->ctx.screen != NULL) {
        screen = ch->ctx.screen(ch->ctx.arg, &s);
        reason = screen == CHANNEL_SCREEN_LISTED ? REASON_REGULATORY : reason;
    }
    const char *hold =
        reason == REASON_NONE && screen == CHANNEL_SCREEN_PROGRAM ? LEDGER_HOLD_SCREENING : NULL;
    int64_t cap = config_peer_limit(ch->peer, s.currency);
    ledger_outcome_t out;
    ledger_err_t rc = receive_and_answer(ch, msg, &s, reason, hold, cap, moved, &out);
    if (rc == LEDGER_OK && out.status == STATUS_HELD && !out.repeated) {
        if (s.expires_unix_ms != 0 && ch->next_expiry_ms != 0 &&
            s.expires_unix_ms < ch->next_expiry_ms) {
            /* 0 stays: not known yet, channel_expire_held looks at every held payment */
            ch->next_expiry_ms = s.expires_unix_ms;
        }
        if (ch->ctx.on_held != NULL) {
            ch->ctx.on_held(ch->ctx.arg, peer, s.uetr);
        }
    }
    return rc;
}

/* The continuous check: the peer's StatusReport carries its resulting position; ours must be
 * its mirror. Settlements still in flight either way make the two differ for a while, so it
 * is compared only when the channel is quiet in that currency: nothing of ours pending, and
 * everything we sent the peer acknowledged. */
static void check_reported_position(channel_t *ch, const Corridor__StatusReport *sr)
{
    int64_t net = 0, pending = 0;
    if (sr->currency == NULL || ch->acked_seq != ch->sent_seq ||
        ledger_position(ch->ctx.ledger, ch->peer->card.name, sr->currency, &net, &pending) !=
            LEDGER_OK ||
        pending != 0) {
        return;
    }
    if (!position_mirrors(net, sr->position_minor)) {
        ch->stats.position_mismatches++;
        log_event(ch->ctx.node_name, ch->peer->card.name, sr->uetr,
                  "POSITION MISMATCH in %.3s: ours %lld, the peer reports %lld", sr->currency,
                  (long long)net, (long long)sr->position_minor);
    }
}

/* The payee holds our payment (a StatusReport PDNG, 3.8.2): noted, the payment stays pending. A
 * PDNG for what is not our pending payment, or naming another body, changes nothing. */
static ledger_err_t apply_pending_report(channel_t *ch, const envelope_message_t *msg,
                                         const Corridor__StatusReport *sr)
{
    const char *peer = ch->peer->card.name;
    if (msg->version >= 2 && sr->settlement_hash.len != SETTLEMENT_HASH_BYTES) {
        log_event(ch->ctx.node_name, peer, sr->uetr,
                  "dropped StatusReport PDNG of wire version 2 that names no Settlement");
        return LEDGER_OK;
    }
    ledger_err_t rc = ledger_note_held_at_peer(ch->ctx.ledger, peer, sr->uetr,
                                               msg->version >= 2 ? sr->settlement_hash.data : NULL,
                                               msg->evidence, msg->evidence_len, msg->sequence);
    if (rc == LEDGER_E_NOT_FOUND || rc == LEDGER_E_CONFLICT || rc == LEDGER_E_STATE) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, sr->uetr, "StatusReport PDNG refused: %s",
                  ledger_last_error(ch->ctx.ledger));
        return LEDGER_OK;
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, sr->uetr, "outgoing held by the peer");
    }
    return rc;
}

static ledger_err_t apply_fx_answer(channel_t *ch, const envelope_message_t *msg,
                                    const Corridor__StatusReport *sr, const settlement_t legs[2],
                                    const ledger_outcome_t *trade, bool *moved);

static ledger_err_t apply_status_report(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    Corridor__StatusReport *sr = (Corridor__StatusReport *)wire_unpack(
        &corridor__status_report__descriptor, msg->body_len, msg->body);
    ledger_err_t rc = LEDGER_OK;
    if (sr == NULL || uetr_check(sr->uetr) != VALID_OK) {
        log_event(ch->ctx.node_name, peer, NULL, "dropped malformed StatusReport");
        goto done;
    }
    if (cycles_apply_net_answer(ch, msg, sr, moved, &rc)) {
        goto done; /* the answer to a net settlement of ours (3.11.3) */
    }
    settlement_t legs[2];
    ledger_outcome_t trade;
    rc = ledger_fx_find(ch->ctx.ledger, peer, sr->uetr, legs, &trade);
    if (rc == LEDGER_OK) {
        rc = apply_fx_answer(ch, msg, sr, legs, &trade, moved);
        goto done;
    }
    if (rc != LEDGER_E_NOT_FOUND && rc != LEDGER_E_CORRUPT) {
        goto done; /* the disk failed: the turn is tried again */
    }
    rc = LEDGER_OK;
    if (strcmp(sr->status, "PDNG") == 0) {
        rc = apply_pending_report(ch, msg, sr);
        goto done;
    }
    bool settled = strcmp(sr->status, "ACSC") == 0;
    if ((!settled && strcmp(sr->status, "RJCT") != 0) ||
        (!settled && reason_code_check(sr->reason) != VALID_OK)) {
        log_event(ch->ctx.node_name, peer, sr->uetr, "dropped StatusReport with status '%.8s'",
                  sr->status);
        goto done;
    }
    if (msg->version >= 2 && sr->settlement_hash.len != SETTLEMENT_HASH_BYTES) {
        log_event(ch->ctx.node_name, peer, sr->uetr,
                  "dropped StatusReport of wire version 2 that names no Settlement");
        goto done;
    }
    ledger_outcome_t out;
    rc = ledger_resolve_answering(ch->ctx.ledger, peer, sr->uetr,
                                  msg->version >= 2 ? sr->settlement_hash.data : NULL, settled,
                                  settled ? NULL : sr->reason, msg->evidence, msg->evidence_len,
                                  msg->sequence, &out);
    if (rc == LEDGER_E_NOT_FOUND || rc == LEDGER_E_CONFLICT || rc == LEDGER_E_STATE) {
        if (rc != LEDGER_E_CONFLICT) {
            /* an answer to nothing we sent (no payment, no trade), to a payment of the peer's, or
             * to a leg alone (a leg is answered only with its trade, 3.10.3) */
            ch->stats.unentitled++;
        }
        log_event(ch->ctx.node_name, peer, sr->uetr, "StatusReport %s ignored: %s", sr->status,
                  ledger_last_error(ch->ctx.ledger));
        rc = LEDGER_OK;
        goto done;
    }
    if (rc == LEDGER_OK && !out.repeated) {
        *moved = true;
        log_event(ch->ctx.node_name, peer, sr->uetr, "outgoing %s%s%s", status_name(out.status),
                  out.reason[0] ? " " : "", out.reason);
        if (settled) {
            check_reported_position(ch, sr);
        }
        if (ch->ctx.on_final != NULL) {
            ch->ctx.on_final(ch->ctx.arg, peer, sr->uetr, &out);
        }
    }
done:
    corridor__status_report__free_unpacked(sr, NULL);
    return rc;
}

static ledger_err_t opening_settlement(channel_t *ch, const char *uetr, uint32_t *version,
                                       uint8_t **body, size_t *body_len);

/* The body hash (3.7.2) of the Settlement that opened `uetr` on this channel, as its payer
 * signed it (our journal's evidence). */
static ledger_err_t original_body_hash(channel_t *ch, const char *uetr,
                                       uint8_t hash[static SETTLEMENT_HASH_BYTES])
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    uint32_t version = 0;
    ledger_err_t rc = opening_settlement(ch, uetr, &version, &body, &body_len);
    if (rc == LEDGER_OK) {
        settlement_body_hash(body, body_len, hash);
    }
    free(body);
    return rc;
}

/* A Return (pacs.004, PROTOCOL.md 3.9.2): the payee gives back (part of) a payment of ours. We
 * accept it only for a settled payment we made to this peer, named by the body we signed, and
 * within what is left of it; either way it is booked and answered like a Settlement. */
static ledger_err_t apply_return(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    settlement_t r;
    reason_t reason = return_decode(msg->body, msg->body_len, peer, DIRECTION_IN, &r);
    if (uetr_check(r.uetr) != VALID_OK) {
        log_event(ch->ctx.node_name, peer, NULL,
                  "dropped malformed Return (sequence %llu): no valid return id",
                  (unsigned long long)msg->sequence);
        return LEDGER_OK;
    }
    if (reason == REASON_NONE) {
        reason = return_check(&r);
    }
    if (reason != REASON_NONE) {
        /* refused FF01 and the like, but kept as a return, so that a repeat of it is no payment;
         * what is malformed is not stored (3.9.2) */
        if (uetr_check(r.original_uetr) != VALID_OK) {
            snprintf(r.original_uetr, sizeof r.original_uetr, "-");
        }
        if (reason_code_check(r.return_reason) != VALID_OK) {
            r.return_reason[0] = '\0';
        }
    }
    ledger_err_t rc = LEDGER_OK;
    ledger_outcome_t out;
    if (reason == REASON_NONE) {
        /* a repeat answers as it did: the checks below would count the return itself; but the
         * binding is no content (3.7.9), and a copy naming another body must not get our answer
         * naming that body (a repair could then import it from the peer): DUPL */
        settlement_t held;
        bool found = ledger_find(ch->ctx.ledger, peer, r.uetr, &held, NULL) == LEDGER_OK;
        if (found && settlement_is_return(&held) &&
            sodium_memcmp(held.original_hash, r.original_hash, sizeof held.original_hash) != 0) {
            ch->stats.unentitled++;
            log_event(ch->ctx.node_name, peer, r.uetr,
                      "rejected DUPL: a Return of this id naming another body");
            return queue_status_report(ch, msg->version, msg->body, msg->body_len, r.uetr, "RJCT",
                                       reason_code(REASON_DUPLICATE), r.currency, 0, REPLY_NONE,
                                       NULL, NULL);
        }
        const char *why = NULL, *unbound = NULL;
        uint8_t ours[SETTLEMENT_HASH_BYTES];
        if (!found && (rc = ledger_return_check(ch->ctx.ledger, &r, &why)) != LEDGER_OK) {
            return rc;
        }
        if (!found && why == NULL) {
            rc = original_body_hash(ch, r.original_uetr, ours);
            if (rc != LEDGER_OK && ledger_stopped(ch->ctx.ledger)) {
                return rc; /* the disk failed: the turn is tried again */
            }
            if (rc != LEDGER_OK || sodium_memcmp(ours, r.original_hash, sizeof ours) != 0) {
                why = "NOOR";
                unbound = rc != LEDGER_OK ? "no Settlement opens it in our journal"
                                          : "it names another body than the one we signed";
            }
        }
        if (why != NULL) {
            ch->stats.unentitled++;
            log_event(ch->ctx.node_name, peer, r.uetr, "Return of %s refused %s: %s",
                      r.original_uetr, why,
                      unbound != NULL ? unbound : ledger_last_error(ch->ctx.ledger));
            reason = strcmp(why, "AM09") == 0 ? REASON_RETURN_EXCEEDS : REASON_NO_ORIGINAL;
        }
    }
    /* the cap as for a payment: what the returner owes us grows by the return, and a returner
     * that paid us up to the cap could otherwise owe us more by returning our payments */
    return receive_and_answer(ch, msg, &r, reason, NULL, config_peer_limit(ch->peer, r.currency),
                              moved, &out);
}

/* Records one key of the channel's history (see ledger_key_add). */
static ledger_err_t record_key(channel_t *ch, key_side_t side, const uint8_t *sign_public,
                               const uint8_t *box_public, const char *curve_public,
                               uint64_t first_seq, const char *source,
                               const envelope_message_t *evidence)
{
    key_record_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.peer, sizeof k.peer, "%s", ch->peer->card.name);
    k.side = side;
    identity_key_id(sign_public, k.key_id);
    memcpy(k.sign_public, sign_public, sizeof k.sign_public);
    memcpy(k.box_public, box_public, sizeof k.box_public);
    snprintf(k.curve_public, sizeof k.curve_public, "%s", curve_public);
    k.first_seq = first_seq;
    snprintf(k.source, sizeof k.source, "%s", source);
    /* created_ms 0: the ledger stamps it with its clock */
    if (evidence != NULL) {
        k.evidence = evidence->evidence;
        k.evidence_len = evidence->evidence_len;
    }
    return ledger_key_add(ch->ctx.ledger, &k);
}

/* How many keys of each side the channel's history holds, and whether it holds `find`. */
typedef struct {
    size_t counts[2];
    const uint8_t *find; /* a key id, or NULL */
    bool found;
} history_scan_t;

static void scan_key(const key_record_t *k, void *arg)
{
    history_scan_t *h = arg;
    if (strcmp(k->source, "replaced") == 0) { /* CHANNEL_KEYS_MAX counts from an operator's
                                                 replacement: a thief's announcements before it
                                                 do not use up the peer's */
        h->counts[k->side == KEY_SIDE_THEIRS] = 0;
    }
    h->counts[k->side == KEY_SIDE_THEIRS]++;
    h->found |= h->find != NULL && sodium_memcmp(k->key_id, h->find, IDENTITY_KEY_ID_BYTES) == 0;
}

static ledger_err_t history_scan(channel_t *ch, const uint8_t *find, history_scan_t *h)
{
    memset(h, 0, sizeof *h);
    h->find = find;
    return ledger_keys(ch->ctx.ledger, ch->peer->card.name, scan_key, h);
}

/* The peer's KeyAnnounce (PROTOCOL.md 2.14): its current key names the next one, which signs
 * the peer's sequenced messages after this one. */
static ledger_err_t apply_key_announce(channel_t *ch, const envelope_message_t *msg)
{
    const char *peer = ch->peer->card.name;
    key_announce_t next;
    uint8_t shared[crypto_box_BEFORENMBYTES]; /* a weak box key is refused too */
    bool valid = envelope_peer_is_current(ch->keys, msg->author_key_id) &&
                 key_announce_decode(msg->body, msg->body_len, msg->author_key_id, &next) == 0 &&
                 crypto_box_beforenm(shared, next.box_public, ch->own->box_secret) == 0;
    sodium_memzero(shared, sizeof shared);
    /* a new CURVE key must come with proof of its secret, to our box key of now or before
     * (another peer's CURVE key would make us admit that peer under this one's name) */
    valid = valid &&
            (strcmp(next.curve_public, ch->peer_curve) == 0 ||
             key_announce_curve_proved(&next, msg->author_key_id, ch->own->box_secret) ||
             (ch->own_previous != NULL &&
              key_announce_curve_proved(&next, msg->author_key_id, ch->own_previous->box_secret)));
    if (!valid) {
        log_event(ch->ctx.node_name, peer, NULL,
                  "dropped KeyAnnounce (sequence %llu): malformed, weak, or no proof of possession",
                  (unsigned long long)msg->sequence);
        return LEDGER_OK;
    }
    history_scan_t h;
    ledger_err_t rc = history_scan(ch, next.key_id, &h);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (h.found || h.counts[KEY_SIDE_THEIRS] >= CHANNEL_KEYS_MAX) {
        log_event(ch->ctx.node_name, peer, NULL, "dropped KeyAnnounce (sequence %llu): %s",
                  (unsigned long long)msg->sequence,
                  h.found ? "a key the peer had before" : "the peer has announced too many keys");
        return LEDGER_OK;
    }
    if (h.counts[KEY_SIDE_THEIRS] == 0) { /* the card's key signed until now */
        rc = record_key(ch, KEY_SIDE_THEIRS, ch->keys->sign_public, ch->peer->card.box_public,
                        ch->peer->card.curve_public, 1, "card", NULL);
    }
    if (rc == LEDGER_OK) {
        rc = record_key(ch, KEY_SIDE_THEIRS, next.sign_public, next.box_public, next.curve_public,
                        msg->sequence + 1, "announced", msg);
    }
    if (rc == LEDGER_E_CONFLICT || rc == LEDGER_E_STATE) { /* the peer's doing: nothing more */
        log_event(ch->ctx.node_name, peer, NULL, "dropped KeyAnnounce (sequence %llu): %s",
                  (unsigned long long)msg->sequence, ledger_last_error(ch->ctx.ledger));
        return LEDGER_OK;
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    envelope_peer_rotate(ch->keys, next.sign_public, msg->sequence);
    if (strcmp(next.curve_public, ch->peer_curve) != 0) { /* admitted too from now on */
        memcpy(ch->peer_curve_previous, ch->peer_curve, sizeof ch->peer_curve_previous);
        memcpy(ch->peer_curve, next.curve_public, sizeof ch->peer_curve);
    } else {
        ch->peer_curve_previous[0] = '\0';
    }
    ch->peer_switch_seq = 0;
    ch->peer_switch_until_ms = 0;
    ch->peer_switch_heard = false;
    memcpy(ch->peer_box_previous, ch->peer_box, sizeof ch->peer_box_previous);
    memcpy(ch->peer_box, next.box_public, sizeof ch->peer_box);
    ch->has_peer_box_previous = true;
    if (!refresh_box(ch)) {
        return LEDGER_E_STORAGE; /* checked above: cannot happen; the batch is rolled back */
    }
    char hex[2 * IDENTITY_KEY_ID_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, next.key_id, sizeof next.key_id);
    log_event(ch->ctx.node_name, peer, NULL, "peer's new signing key %s signs from sequence %llu",
              hex, (unsigned long long)msg->sequence + 1);
    return LEDGER_OK;
}

/* The peer's KeySwitch (PROTOCOL.md 2.16): its inbound socket serves the CURVE key it
 * announced last; our outbound sockets pin it from now on, and its old client key is admitted
 * for the overlap it asks (at most KEY_SWITCH_OVERLAP_MAX_S). */
static ledger_err_t apply_key_switch(channel_t *ch, const envelope_message_t *msg)
{
    const char *peer = ch->peer->card.name;
    key_switch_t ks;
    const char *why = NULL;
    if (!envelope_peer_is_current(ch->keys, msg->author_key_id)) {
        why = "not signed by the peer's current key";
    } else if (key_switch_decode(msg->body, msg->body_len, &ks) != 0) {
        why = "malformed";
    } else if (ch->peer_curve_previous[0] == '\0' || strcmp(ks.curve_public, ch->peer_curve) != 0) {
        why = "it names no CURVE key the peer announced in place of another";
    } else if (ch->peer_switch_seq != 0) {
        why = "the peer switched to that key already";
    }
    if (why != NULL) {
        log_event(ch->ctx.node_name, peer, NULL, "dropped KeySwitch (sequence %llu): %s",
                  (unsigned long long)msg->sequence, why);
        return LEDGER_OK;
    }
    int64_t until = ch->wall_ms + (int64_t)ks.overlap_s * 1000;
    ledger_err_t rc = ledger_key_set_switch(ch->ctx.ledger, peer, KEY_SIDE_THEIRS, ch->keys->key_id,
                                            msg->sequence, until);
    if (rc == LEDGER_E_STATE) { /* the history does not take it: the peer's doing */
        log_event(ch->ctx.node_name, peer, NULL, "dropped KeySwitch (sequence %llu): %s",
                  (unsigned long long)msg->sequence, ledger_last_error(ch->ctx.ledger));
        return LEDGER_OK;
    }
    if (rc == LEDGER_OK) {
        ch->peer_switch_seq = msg->sequence;
        ch->peer_switch_until_ms = until;
        log_event(ch->ctx.node_name, peer, NULL,
                  "peer's inbound socket serves its new CURVE key from sequence %llu; its old "
                  "one is admitted for %u s more",
                  (unsigned long long)msg->sequence, ks.overlap_s);
    }
    return rc;
}

void channel_set_wall(channel_t *ch, int64_t wall_ms)
{
    ch->wall_ms = wall_ms;
}

bool channel_curve_pending(const channel_t *ch)
{
    return ch->own_curve_previous[0] != '\0' && ch->own_switch_seq == 0;
}

bool channel_peer_curve_pending(const channel_t *ch)
{
    return ch->peer_curve_previous[0] != '\0' && ch->peer_switch_seq == 0;
}

ledger_err_t channel_curve_switch(channel_t *ch)
{
    channel_check_invariants(ch);
    assert(channel_curve_pending(ch) && channel_rotation_acked(ch));
    int64_t overlap_ms = ch->own_overlap_ms;
    key_switch_t ks = {.overlap_s = overlap_ms / 1000 > KEY_SWITCH_OVERLAP_MAX_S
                                        ? KEY_SWITCH_OVERLAP_MAX_S
                                        : (uint32_t)(overlap_ms / 1000)};
    snprintf(ks.curve_public, sizeof ks.curve_public, "%s", ch->own->curve_public);
    uint8_t body[KEY_SWITCH_BODY_MAX];
    size_t body_len = 0;
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    ledger_err_t rc = key_switch_encode(&ks, body, sizeof body, &body_len) == 0
                          ? queue_message(ch, ch->wire_version, MSG_KEY_SWITCH, body, body_len,
                                          &signed_msg, &signed_len)
                          : LEDGER_E_STORAGE;
    free(signed_msg);
    if (rc == LEDGER_OK) {
        rc = ledger_key_set_switch(ch->ctx.ledger, ch->peer->card.name, KEY_SIDE_OURS,
                                   ch->own->key_id, ch->sent_seq, overlap_ms);
    }
    if (rc == LEDGER_OK) { /* a failed transaction reloads it (channel_reload) */
        ch->own_switch_seq = ch->sent_seq;
    }
    channel_check_invariants(ch);
    return rc;
}

void channel_transport(const channel_t *ch, channel_transport_t *out)
{
    bool previous = ch->peer_curve_previous[0] != '\0';
    bool switched = ch->peer_switch_seq != 0;
    out->admit_current = ch->peer_curve;
    /* after its switch, the old key only until the overlap ends (0 s: not at all) */
    out->admit_previous =
        previous && (!switched || ch->peer_switch_until_ms > 0) ? ch->peer_curve_previous : NULL;
    out->previous_until_wall_ms = switched ? ch->peer_switch_until_ms : 0;
    out->pin =
        previous && !switched && !ch->peer_switch_heard ? ch->peer_curve_previous : ch->peer_curve;
    /* the peer admits our new client key once it applied our announcement */
    out->client =
        ch->own_previous != NULL && ch->acked_seq < ch->own_rotated_at ? ch->own_previous : ch->own;
}

void channel_set_self(channel_t *ch, const identity_t *self, const identity_t *self_previous)
{
    assert(self != NULL);
    ch->ctx.self = self;
    ch->ctx.self_previous = self_previous;
    /* the node may free keys it no longer holds: two rotations back (a channel waiting for
     * its announcement still kept them as the ones before its own) */
    if (ch->own_previous != self && ch->own_previous != self_previous) {
        ch->own_previous = NULL;
    }
    assert(ch->own == self || ch->own == self_previous);
}

bool channel_rotation_ready(const channel_t *ch)
{
    return (ch->peer_features & CHANNEL_FEATURE_KEYS) != 0 && own_keys_acked(ch);
}

ledger_err_t channel_rotate_later(channel_t *ch, const identity_t *next)
{
    assert(next != NULL && next != ch->own);
    /* the key history names the key the channel keeps, so that after a restart (when the
     * node's key is `next`) it still signs with it until the announcement */
    history_scan_t h;
    ledger_err_t rc = history_scan(ch, NULL, &h);
    if (rc == LEDGER_OK && h.counts[KEY_SIDE_OURS] == 0) {
        rc = record_key(ch, KEY_SIDE_OURS, ch->own->sign_public, ch->own->box_public,
                        ch->own->curve_public, 1, "card", NULL);
    }
    if (rc == LEDGER_OK) {
        ch->rotate_to = next; /* a failed transaction reloads it from the key history */
        envelope_peer_add_our_key(ch->keys, ch->own->key_id); /* the peer addresses it */
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "our new keys are announced to this peer once it is heard from");
    }
    return rc;
}

ledger_err_t channel_rotate(channel_t *ch, const identity_t *next, int64_t overlap_ms)
{
    channel_check_invariants(ch);
    assert(next != NULL && next != ch->own);
    if (!channel_rotation_ready(ch)) {
        return LEDGER_E_STATE;
    }
    const identity_t *current = ch->own;
    ch->rotate_to = NULL;
    uint8_t *body = NULL, *signed_msg = NULL;
    size_t body_len = 0, signed_len = 0;
    bool new_curve = strcmp(next->curve_public, current->curve_public) != 0;
    if (key_announce_encode(next, current->key_id, new_curve ? ch->peer_box : NULL, &body,
                            &body_len) != 0) {
        return LEDGER_E_STORAGE; /* out of memory: treat as a failed batch */
    }
    history_scan_t h;
    ledger_err_t rc = history_scan(ch, NULL, &h);
    if (rc == LEDGER_OK && h.counts[KEY_SIDE_OURS] == 0) {
        rc = record_key(ch, KEY_SIDE_OURS, current->sign_public, current->box_public,
                        current->curve_public, 1, "card", NULL);
    }
    if (rc == LEDGER_OK) {
        rc = queue_message(ch, ch->wire_version, MSG_KEY_ANNOUNCE, body, body_len, &signed_msg,
                           &signed_len);
    }
    if (rc == LEDGER_OK) {
        envelope_message_t evidence = {.evidence = signed_msg, .evidence_len = signed_len};
        rc = record_key(ch, KEY_SIDE_OURS, next->sign_public, next->box_public, next->curve_public,
                        ch->sent_seq + 1, "announced", &evidence);
    }
    if (rc == LEDGER_OK && new_curve) { /* the KeySwitch's overlap, asked for now */
        rc = ledger_key_set_switch(ch->ctx.ledger, ch->peer->card.name, KEY_SIDE_OURS, next->key_id,
                                   0, overlap_ms);
    }
    free(body);
    free(signed_msg);
    if (rc == LEDGER_OK) { /* a failed transaction reloads all of this (channel_reload) */
        ch->own_previous = current;
        ch->own = next;
        ch->own_rotated_at = ch->sent_seq;
        ch->peer_sent_at_ack_known = false;
        memcpy(ch->own_previous_key_id, current->key_id, IDENTITY_KEY_ID_BYTES);
        snprintf(ch->own_curve_previous, sizeof ch->own_curve_previous, "%s",
                 new_curve ? current->curve_public : "");
        ch->own_switch_seq = 0;
        ch->own_overlap_ms = overlap_ms;
        envelope_peer_add_our_key(ch->keys, current->key_id);
        if (!refresh_box(ch)) {
            rc = LEDGER_E_STORAGE; /* a weak key of our own: never; the batch rolls back */
        }
    }
    channel_check_invariants(ch);
    return rc;
}

static ledger_err_t apply_cancel_request(channel_t *ch, const envelope_message_t *msg, bool *moved);
static ledger_err_t apply_cancel_answer(channel_t *ch, const envelope_message_t *msg, bool *moved);
static ledger_err_t apply_fx_proposal(channel_t *ch, const envelope_message_t *msg, bool *moved);

static ledger_err_t apply_one(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    *moved = false;
    switch (msg->type) {
    case MSG_SETTLEMENT:
        return apply_settlement(ch, msg, moved);
    case MSG_STATUS_REPORT:
        return apply_status_report(ch, msg, moved);
    case MSG_RETURN:
        return apply_return(ch, msg, moved);
    case MSG_KEY_ANNOUNCE:
        return apply_key_announce(ch, msg);
    case MSG_KEY_SWITCH:
        return apply_key_switch(ch, msg);
    case MSG_CANCEL_REQUEST:
        return apply_cancel_request(ch, msg, moved);
    case MSG_CANCEL_ANSWER:
        return apply_cancel_answer(ch, msg, moved);
    case MSG_FX_PROPOSAL:
        return apply_fx_proposal(ch, msg, moved);
    case MSG_CYCLE_PROPOSAL:
        return cycles_apply_proposal(ch, msg);
    case MSG_CYCLE_ANSWER:
        return cycles_apply_answer(ch, msg);
    case MSG_NET_SETTLEMENT:
        return cycles_apply_net_settlement(ch, msg, moved);
    case MSG_SETOFF_RELAY:
        return setoffs_apply_relay(ch, msg);
    case MSG_SETOFF_DECISION:
        return setoffs_apply_decision(ch, msg);
    default:
        return LEDGER_OK;
    }
}

/* The peer's next message to apply; none until a Hello that passed the rollback checks has
 * brought the channel UP: a node restored from a backup must not answer under numbers its peer
 * applied from the lost history before the Hellos have shown the rollback (PROTOCOL.md 2.3). */
static envelope_message_t *next_in_order(const channel_t *ch)
{
    if (ch->state != CHANNEL_UP) {
        return NULL;
    }
    envelope_message_t *msg = ch->hold[(ch->applied_seq + 1) % CHANNEL_HOLD_MAX];
    return msg != NULL && msg->sequence == ch->applied_seq + 1 ? msg : NULL;
}

/* When the peer's allowance lets the next message be applied. */
static int64_t allowance_back_ms(const channel_t *ch)
{
    int64_t applied = costlimit_next_ms(&ch->applied_bytes);
    int64_t rejected = costlimit_next_ms(&ch->idle_bytes);
    return applied > rejected ? applied : rejected;
}

ledger_err_t channel_apply(channel_t *ch, int64_t now_ms)
{
    channel_check_invariants(ch);
    assert(ledger_in_transaction(ch->ctx.ledger));
    ledger_t *l = ch->ctx.ledger;
    const char *peer = ch->peer->card.name;
    ledger_err_t rc = LEDGER_OK;
    envelope_message_t *last = NULL; /* the last applied: its signed bytes prove how far */
    envelope_message_t *msg;
    if (ch->rotate_to != NULL && channel_rotation_ready(ch) &&
        (rc = channel_rotate(ch, ch->rotate_to, 0)) != LEDGER_OK) {
        return rc; /* the node's rotation, announced now that the peer takes announcements */
    }
    while ((msg = next_in_order(ch)) != NULL) {
        if (allowance_back_ms(ch) > now_ms) { /* backpressure: it waits, unacknowledged */
            ch->stats.backpressure++;
            if (!ch->slowed) {
                log_event(ch->ctx.node_name, peer, NULL,
                          "applying the peer's messages slowed: over its allowance of %u KiB/s "
                          "(%u KiB/s of ones that move no money)",
                          CHANNEL_APPLIED_UNIT / 1024 * CHANNEL_APPLIED_PER_S,
                          CHANNEL_IDLE_UNIT / 1024 * CHANNEL_IDLE_PER_S);
                ch->slowed = true;
            }
            break;
        }
        ch->hold[msg->sequence % CHANNEL_HOLD_MAX] = NULL;
        ch->stats.held--;
        uint64_t size = held_size(msg);
        ch->stats.held_bytes -= size;
        if (!signer_in_range(ch, msg)) { /* not applied nor acknowledged: the peer resends */
            log_event(ch->ctx.node_name, peer, NULL,
                      "dropped message %llu: signed by a key whose range an announcement ended",
                      (unsigned long long)msg->sequence);
            free_message(msg);
            msg = NULL;
            break;
        }
        if (ch->keys->previous_control && msg->sequence > ch->keys->previous_through) {
            close_peer_previous(ch); /* signed by the new key: the peer had our Ack */
        }
        free_message(last);
        last = msg;
        bool moved = false;
        if ((rc = apply_one(ch, msg, &moved)) != LEDGER_OK) {
            ch->apply_work = 0;
            goto done;
        }
        ch->applied_seq++;
        size += ch->apply_work;
        ch->apply_work = 0;
        costlimit_charge(&ch->applied_bytes, now_ms, size);
        if (!moved) {
            costlimit_charge(&ch->idle_bytes, now_ms, size);
        }
    }
    if (msg == NULL) {
        ch->slowed = false;
    }
    /* Written in this transaction: if it fails, the node calls channel_reload. The Ack for
     * what was applied goes out in channel_after_commit, which runs only after the commit. */
    if (ch->applied_seq != ch->applied_persisted) {
        assert(last != NULL && last->sequence == ch->applied_seq);
        if ((rc = ledger_channel_set_applied(l, peer, ch->applied_seq, last->evidence,
                                             last->evidence_len)) != LEDGER_OK) {
            goto done;
        }
        ch->applied_persisted = ch->applied_seq;
        ch->ack_due = true;
    }
    if (ch->acked_seq != ch->acked_persisted) {
        if ((rc = ledger_channel_set_acked(l, peer, ch->acked_seq)) != LEDGER_OK) {
            goto done;
        }
        ch->acked_persisted = ch->acked_seq;
    }
    bool diverged = ch->state == CHANNEL_DIVERGED;
    if (diverged != ch->diverged_persisted) {
        if ((rc = ledger_channel_set_diverged(l, peer, diverged)) != LEDGER_OK) {
            goto done;
        }
        ch->diverged_persisted = diverged;
    }
    if (ch->wire_version != ch->wire_version_persisted) {
        if ((rc = ledger_channel_set_version(l, peer, ch->wire_version)) != LEDGER_OK) {
            goto done;
        }
        ch->wire_version_persisted = ch->wire_version;
    }
    if (ch->been_up && ch->peer_features != ch->peer_features_persisted) {
        if ((rc = ledger_channel_set_features(l, peer, ch->peer_features)) != LEDGER_OK) {
            goto done;
        }
        ch->peer_features_persisted = ch->peer_features;
    }

done:
    free_message(last);
    assert(rc != LEDGER_OK || ch->applied_persisted == ch->applied_seq);
    channel_check_invariants(ch);
    return rc;
}

bool channel_has_work(const channel_t *ch, int64_t now_ms)
{
    bool ready = next_in_order(ch) != NULL && allowance_back_ms(ch) <= now_ms;
    return ready || (ch->rotate_to != NULL && channel_rotation_ready(ch)) ||
           ch->acked_seq != ch->acked_persisted ||
           (ch->state == CHANNEL_DIVERGED) != ch->diverged_persisted ||
           ch->wire_version != ch->wire_version_persisted ||
           (ch->been_up && ch->peer_features != ch->peer_features_persisted);
}

ledger_err_t channel_send_settlement(channel_t *ch, const settlement_t *s,
                                     ledger_outcome_t *outcome)
{
    channel_check_invariants(ch);
    assert(s != NULL && outcome != NULL && s->direction == DIRECTION_OUT);
    assert(strcmp(s->peer, ch->peer->card.name) == 0);
    uint8_t *body = NULL, *signed_msg = NULL;
    size_t body_len = 0, signed_len = 0;
    if (settlement_encode(s, &body, &body_len) != 0) {
        return LEDGER_E_STORAGE;
    }
    uint64_t seq = ch->sent_seq + 1;
    msg_type_t type = settlement_is_return(s) ? MSG_RETURN : MSG_SETTLEMENT;
    ledger_err_t rc = LEDGER_E_STORAGE;
    if (envelope_sign_version(ch->own, ch->wire_version, ch->keys->key_id, type, seq, body,
                              body_len, &signed_msg, &signed_len) != ENV_OK) {
        goto cleanup;
    }
    rc = ledger_send(ch->ctx.ledger, s, signed_msg, signed_len, seq, outcome);
    if (rc != LEDGER_OK || outcome->repeated) {
        goto cleanup; /* a repeat keeps its first message; a conflict queues nothing */
    }
    rc = ledger_outbox_put(ch->ctx.ledger, s->peer, seq, (int)type, signed_msg, signed_len);
    if (rc == LEDGER_OK) {
        ch->sent_seq = seq;
    }

cleanup:
    free(body);
    free(signed_msg);
    channel_check_invariants(ch);
    return rc;
}

ledger_err_t channel_prepare_return(channel_t *ch, const char *original_uetr, int64_t amount_minor,
                                    const char *reason, settlement_t *r)
{
    channel_check_invariants(ch);
    assert(ledger_in_transaction(ch->ctx.ledger) && reason_code_check(reason) == VALID_OK);
    assert(amount_minor >= 0 && r != NULL);
    const char *peer = ch->peer->card.name;
    settlement_t original;
    memset(r, 0, sizeof *r);
    ledger_err_t rc = ledger_find(ch->ctx.ledger, peer, original_uetr, &original, NULL);
    if (rc != LEDGER_OK) {
        return rc;
    }
    snprintf(r->peer, sizeof r->peer, "%s", peer);
    r->direction = DIRECTION_OUT;
    snprintf(r->currency, sizeof r->currency, "%s", original.currency);
    snprintf(r->original_uetr, sizeof r->original_uetr, "%s", original_uetr);
    snprintf(r->return_reason, sizeof r->return_reason, "%s", reason);
    r->amount_minor = amount_minor;
    if (amount_minor == 0) { /* the rest */
        int64_t accepted = 0, pending = 0;
        if ((rc = ledger_returns_of(ch->ctx.ledger, peer, original_uetr, DIRECTION_OUT, &accepted,
                                    &pending)) != LEDGER_OK) {
            return rc;
        }
        if (__builtin_sub_overflow(original.amount_minor, accepted, &r->amount_minor) ||
            __builtin_sub_overflow(r->amount_minor, pending, &r->amount_minor)) {
            r->amount_minor = 0; /* edited books: ledger_return_check refuses it */
        }
    }
    const char *why = NULL;
    if ((rc = ledger_return_check(ch->ctx.ledger, r, &why)) != LEDGER_OK) {
        return rc;
    }
    if (why != NULL) {
        return LEDGER_E_STATE; /* ledger_last_error says why */
    }
    if ((rc = original_body_hash(ch, original_uetr, r->original_hash)) != LEDGER_OK) {
        return rc;
    }
    uetr_generate(r->uetr);
    return LEDGER_OK;
}

ledger_err_t channel_send_body(channel_t *ch, msg_type_t type, const uint8_t *body, size_t len)
{
    channel_check_invariants(ch);
    assert(msg_type_sequenced((int)type));
    ledger_err_t rc = queue_message(ch, ch->wire_version, type, body, len, NULL, NULL);
    channel_check_invariants(ch);
    return rc;
}

/* ---- after the commit: the wire -------------------------------------------------------- */

typedef struct {
    channel_t *ch;
    bool blocked;
    int64_t now_ms;
} transmit_state_t;

static bool transmit_one(uint64_t seq, int type, const uint8_t *signed_msg, size_t signed_len,
                         void *arg)
{
    transmit_state_t *ts = arg;
    channel_t *ch = ts->ch;
    if (seq > ch->sent_seq) { /* an outbox row past our counter: the ledger was edited */
        if (!ch->outbox_ahead_logged) {
            log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                      "outbox holds message %llu but the channel sent only %llu (the ledger was "
                      "edited?): transmission stops there; audit the home",
                      (unsigned long long)seq, (unsigned long long)ch->sent_seq);
            ch->outbox_ahead_logged = true;
        }
        ts->blocked = true;
        return false;
    }
    bool again = seq <= ch->transmitted_max;
    uint8_t *wire = NULL, *resigned = NULL;
    size_t wire_len = 0, resigned_len = 0;
    if (seq < ch->own_replaced_from) { /* signed by the key our operator replaced */
        if (envelope_resign(ch->own, signed_msg, signed_len, &resigned, &resigned_len) != ENV_OK) {
            if (!ch->outbox_ahead_logged) {
                log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                          "outbox message %llu cannot be signed again (the ledger was edited?): "
                          "transmission stops there; audit the home",
                          (unsigned long long)seq);
                ch->outbox_ahead_logged = true;
            }
            ts->blocked = true;
            return false;
        }
        signed_msg = resigned;
        signed_len = resigned_len;
    }
    env_err_t wrapped = envelope_wrap_as(author_of(ch, seq), ch->keys, signed_msg, signed_len,
                                         again, &wire, &wire_len);
    free(resigned);
    if (wrapped != ENV_OK) {
        ts->blocked = true;
        return false;
    }
    int sent = ch->ctx.send(ch->ctx.arg, ch->index, (msg_type_t)type, wire, wire_len);
    free(wire);
    if (sent != 0) {
        ts->blocked = true;
        return false;
    }
    if (again) {
        ch->stats.retransmits++;
    } else if (ch->rtt_probe_seq == 0) {
        ch->rtt_probe_seq = seq;
        ch->rtt_probe_sent_ms = ts->now_ms;
    }
    ch->transmit_next = seq + 1;
    if (seq > ch->transmitted_max) {
        ch->transmitted_max = seq;
    }
    return true;
}

static void transmit(channel_t *ch, int64_t now_ms)
{
    if (now_ms < ch->blocked_until_ms) {
        return;
    }
    transmit_state_t ts = {ch, false, now_ms};
    /* after our announcement of new keys, nothing signed by them leaves before the peer
     * acknowledged it: it could not check them yet */
    uint64_t last = ch->acked_seq >= ch->own_rotated_at ? ch->sent_seq : ch->own_rotated_at;
    if (last > ch->acked_seq + CHANNEL_WINDOW) {
        last = ch->acked_seq + CHANNEL_WINDOW;
    }
    while (!ts.blocked && ch->transmit_next <= last) {
        uint64_t before = ch->transmit_next;
        uint64_t room = last - ch->transmit_next + 1;
        size_t limit = room < TRANSMIT_SCAN_BATCH ? (size_t)room : TRANSMIT_SCAN_BATCH;
        if (ledger_outbox_scan(ch->ctx.ledger, ch->peer->card.name, ch->transmit_next, limit,
                               transmit_one, &ts) != LEDGER_OK ||
            ch->transmit_next == before) {
            break;
        }
    }
    if (ts.blocked) {
        ch->blocked_until_ms = now_ms + BLOCKED_RETRY_MS;
    }
    if (ch->transmit_next - 1 > ch->acked_seq && ch->rto_deadline_ms == 0) {
        ch->rto_deadline_ms = now_ms + ch->rto_ms;
    }
}

void channel_after_commit(channel_t *ch, int64_t now_ms)
{
    channel_check_invariants(ch);
    if (ch->state == CHANNEL_UP && now_ms - ch->last_rx_ms > CHANNEL_LIVENESS_MS) {
        set_state(ch, CHANNEL_DOWN);
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "peer down: nothing heard for %d ms", CHANNEL_LIVENESS_MS);
    }
    int64_t interval = ch->state == CHANNEL_DOWN ? CHANNEL_HELLO_MS : CHANNEL_HEARTBEAT_MS;
    if (ch->hello_due || now_ms - ch->last_hello_ms >= interval) {
        send_hello(ch, now_ms);
    }
    if (ch->state == CHANNEL_DIVERGED) {
        return; /* nothing is acknowledged or transmitted until a repair */
    }
    if (ch->ack_due) {
        send_ack(ch);
        ch->ack_due = false;
    }
    if (ch->state != CHANNEL_UP && !switch_unacked(ch)) {
        return;
    }
    if (ch->rto_deadline_ms != 0 && now_ms >= ch->rto_deadline_ms &&
        ch->transmit_next - 1 > ch->acked_seq) {
        ch->transmit_next = ch->acked_seq + 1; /* go back to the first unacknowledged */
        ch->rto_deadline_ms = 0;
        ch->rto_ms = ch->rto_ms * 2 > CHANNEL_RTO_MAX_MS ? CHANNEL_RTO_MAX_MS : ch->rto_ms * 2;
        ch->rtt_probe_seq = 0; /* Karn: what is sent again cannot be timed */
        ch->blocked_until_ms = 0;
    }
    if (ch->resend_first && ch->acked_seq < ch->sent_seq) {
        transmit_state_t ts = {ch, false, now_ms};
        uint64_t keep = ch->transmit_next;
        if (ledger_outbox_scan(ch->ctx.ledger, ch->peer->card.name, ch->acked_seq + 1, 1,
                               transmit_one, &ts) != LEDGER_OK) {
            ts.blocked = true; /* a read error: the retransmission timer tries again */
        }
        ch->transmit_next = keep > ch->transmit_next ? keep : ch->transmit_next;
    }
    ch->resend_first = false;
    transmit(ch, now_ms);
    channel_check_invariants(ch);
}

int64_t channel_next_deadline(const channel_t *ch)
{
    if (ch->hello_due || (ch->ack_due && ch->state != CHANNEL_DIVERGED)) {
        return 0;
    }

    int64_t interval = ch->state == CHANNEL_DOWN ? CHANNEL_HELLO_MS : CHANNEL_HEARTBEAT_MS;
    int64_t next = ch->last_hello_ms + interval;
    if (ch->state == CHANNEL_UP) {
        int64_t silent = ch->last_rx_ms + CHANNEL_LIVENESS_MS + 1;
        next = silent < next ? silent : next;
    }
    if (ch->state == CHANNEL_UP || switch_unacked(ch)) {
        if (ch->rto_deadline_ms != 0 && ch->rto_deadline_ms < next) {
            next = ch->rto_deadline_ms;
        }
        /* as transmit: after our announcement, nothing past it until the peer acknowledged */
        uint64_t last = ch->acked_seq >= ch->own_rotated_at ? ch->sent_seq : ch->own_rotated_at;
        if (ch->transmit_next <= last && ch->transmit_next <= ch->acked_seq + CHANNEL_WINDOW) {
            next = ch->blocked_until_ms < next ? ch->blocked_until_ms : next;
        }
    }
    return next;
}

int64_t channel_apply_after_ms(const channel_t *ch)
{
    return next_in_order(ch) != NULL ? allowance_back_ms(ch) : INT64_MAX;
}

void channel_send_unsequenced(channel_t *ch, msg_type_t type, const uint8_t *body, size_t len)
{
    assert(type == MSG_STATEMENT_REQUEST || type == MSG_STATEMENT);
    send_control(ch, type, body, len);
}

ledger_err_t channel_apply_message(channel_t *ch, const envelope_message_t *msg)
{
    channel_check_invariants(ch);
    assert(msg != NULL && ledger_in_transaction(ch->ctx.ledger));
    bool moved = false; /* a repair's own limits apply (the responder's), not the stream's */
    ledger_err_t rc = apply_one(ch, msg, &moved);
    channel_check_invariants(ch);
    return rc;
}

bool channel_is_diverged(const channel_t *ch)
{
    return ch->state == CHANNEL_DIVERGED;
}

uint64_t channel_sent_seq(const channel_t *ch)
{
    return ch->sent_seq;
}

uint32_t channel_wire_version(const channel_t *ch)
{
    return ch->wire_version;
}

/* ---- holds and expiry (PROTOCOL.md 3.8) ------------------------------------------------------ */

bool channel_decides_held(const channel_t *ch)
{
    return ch->state == CHANNEL_UP || (ch->state == CHANNEL_DOWN && ch->been_up) ||
           (ch->state == CHANNEL_DIVERGED && ch->peer_restored);
}

/* The Inner version and body of the peer's Settlement that opened `uetr`, from our journal (its
 * evidence as we applied it): what our late answer must name. *body is malloc'd. */
/* The body of the message that opened `uetr` on this channel, of `type` (a Settlement, or the
 * FxProposal of a leg), as its author signed it (our journal's evidence). */
static ledger_err_t opening_message(channel_t *ch, const char *uetr, msg_type_t expected,
                                    uint32_t *version, uint8_t **body, size_t *body_len)
{
    uint8_t *evidence = NULL;
    size_t evidence_len = 0;
    ledger_err_t rc = ledger_opening_evidence(ch->ctx.ledger, ch->peer->card.name, uetr, &evidence,
                                              &evidence_len);
    if (rc != LEDGER_OK) {
        return rc;
    }
    int type = 0;
    *body = NULL;
    rc = evidence_body(evidence, evidence_len, &type, version, body, body_len) == ENV_OK &&
                 type == (int)expected
             ? LEDGER_OK
             : LEDGER_E_STORAGE; /* our own journal, as we wrote it */
    if (rc != LEDGER_OK) {
        free(*body);
        *body = NULL;
    }
    free(evidence);
    return rc;
}

static ledger_err_t opening_settlement(channel_t *ch, const char *uetr, uint32_t *version,
                                       uint8_t **body, size_t *body_len)
{
    return opening_message(ch, uetr, MSG_SETTLEMENT, version, body, body_len);
}

static ledger_err_t decide_held_trade(channel_t *ch, const char *fx_id, const char *reason,
                                      ledger_outcome_t *outcome);

ledger_err_t channel_decide_held(channel_t *ch, const char *uetr, const char *reason,
                                 ledger_outcome_t *outcome)
{
    channel_check_invariants(ch);
    assert(uetr != NULL && outcome != NULL && ledger_in_transaction(ch->ctx.ledger));
    assert(reason == NULL || reason_code_check(reason) == VALID_OK);
    const char *peer = ch->peer->card.name;
    settlement_t s;
    ledger_outcome_t now;
    ledger_err_t rc = ledger_fx_find(ch->ctx.ledger, peer, uetr, NULL, NULL);
    if (rc == LEDGER_OK) { /* a trade's id: both legs are decided as one (3.10.4) */
        return decide_held_trade(ch, uetr, reason, outcome);
    }
    if (rc != LEDGER_E_NOT_FOUND && rc != LEDGER_E_CORRUPT) {
        return rc;
    }
    rc = ledger_find(ch->ctx.ledger, peer, uetr, &s, &now);
    if (rc == LEDGER_OK && settlement_is_fx_leg(&s)) { /* a leg's UETR: its trade */
        return decide_held_trade(ch, s.fx_id, reason, outcome);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (s.direction != DIRECTION_IN || now.status != STATUS_HELD) {
        *outcome = now;
        return LEDGER_E_STATE; /* decided meanwhile (or ours): nothing to do */
    }
    if (!channel_decides_held(ch)) {
        /* put back from a copy, we may hold what we decided since: a Hello of the peer shows
         * it (DIVERGED) before anything is decided again, and the repair books our answer */
        *outcome = now;
        return LEDGER_E_STATE; /* callers wait for UP (channel_stats) before deciding */
    }
    if (reason == NULL && s.expires_unix_ms != 0 && ch->wall_ms >= s.expires_unix_ms) {
        reason = reason_code(REASON_EXPIRED); /* a release comes too late: 3.8.1 */
    }
    if ((rc = ledger_decide_held_fits(ch->ctx.ledger, &s, reason == NULL)) != LEDGER_OK) {
        return rc; /* before anything is queued: nothing answered the payer */
    }
    uint32_t version = 0;
    uint8_t *body = NULL, *signed_msg = NULL;
    size_t body_len = 0, signed_len = 0;
    if ((rc = opening_settlement(ch, uetr, &version, &body, &body_len)) != LEDGER_OK) {
        return rc;
    }
    int64_t position = now.position_minor;
    if (reason == NULL && __builtin_add_overflow(now.position_minor, s.amount_minor, &position)) {
        position = now.position_minor; /* ledger_decide_held refuses it below */
    }
    rc = queue_status_report(ch, version, body, body_len, uetr, reason == NULL ? "ACSC" : "RJCT",
                             reason, s.currency, position, REPLY_NONE, &signed_msg, &signed_len);
    if (rc == LEDGER_OK) {
        rc = ledger_decide_held(ch->ctx.ledger, peer, uetr, reason, signed_msg, signed_len, NULL,
                                ch->sent_seq, outcome);
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, uetr, "incoming %lld %s was held, now %s%s%s",
                  (long long)s.amount_minor, s.currency, status_name(outcome->status),
                  reason != NULL ? " " : "", reason != NULL ? reason : "");
    }
    free(body);
    free(signed_msg);
    channel_check_invariants(ch);
    return rc;
}

/* The held payments of one peer whose expiry is due, and the earliest one that is not. */
typedef struct {
    const char *peer;
    int64_t wall_ms;
    char (*due)[CORRIDOR_UETR_LEN + 1];
    size_t count, room;
    int64_t next_ms;
    bool out_of_memory;
} expiry_scan_t;

static void collect_due(const ledger_held_t *h, void *arg)
{
    expiry_scan_t *x = arg;
    if (strcmp(h->s.peer, x->peer) != 0 || h->s.expires_unix_ms == 0) {
        return;
    }
    if (h->s.expires_unix_ms > x->wall_ms) {
        x->next_ms = h->s.expires_unix_ms < x->next_ms ? h->s.expires_unix_ms : x->next_ms;
        return;
    }
    if (x->count == x->room) {
        size_t more = x->room == 0 ? 8 : x->room * 2;
        char(*grown)[CORRIDOR_UETR_LEN + 1] = realloc(x->due, more * sizeof *x->due);
        if (grown == NULL) {
            x->out_of_memory = true;
            return;
        }
        x->due = grown;
        x->room = more;
    }
    snprintf(x->due[x->count++], sizeof x->due[0], "%s", h->s.uetr);
}

int64_t channel_next_expiry_ms(const channel_t *ch)
{
    return ch->next_expiry_ms;
}

ledger_err_t channel_expire_held(channel_t *ch)
{
    assert(ledger_in_transaction(ch->ctx.ledger));
    if (ch->wall_ms == 0 || (ch->next_expiry_ms != 0 && ch->wall_ms < ch->next_expiry_ms) ||
        !channel_decides_held(ch)) {
        return LEDGER_OK; /* not UP: a restore of ours may not show yet (channel_decide_held) */
    }
    expiry_scan_t x = {.peer = ch->peer->card.name, .wall_ms = ch->wall_ms, .next_ms = INT64_MAX};
    ledger_err_t rc = ledger_held(ch->ctx.ledger, collect_due, &x);
    for (size_t i = 0; rc == LEDGER_OK && i < x.count; i++) {
        ledger_outcome_t out;
        rc = channel_decide_held(ch, x.due[i], reason_code(REASON_EXPIRED), &out);
        rc = rc == LEDGER_E_STATE || rc == LEDGER_E_OVERFLOW ? LEDGER_OK : rc;
    }
    /* out of memory: look again next turn */
    ch->next_expiry_ms = rc == LEDGER_OK && !x.out_of_memory ? x.next_ms : 0;
    free(x.due);
    return rc;
}

/* ---- cancellation (PROTOCOL.md 3.8.4) ---------------------------------------------------------
 */

static const char *const CANCEL_REASONS[] = {"CUST", "DUPL", "FRAD", "TECH",
                                             "UPAY", "AM09", "AC03"};

bool channel_cancel_reason_valid(const char *code)
{
    for (size_t i = 0; i < sizeof CANCEL_REASONS / sizeof CANCEL_REASONS[0]; i++) {
        if (strcmp(code, CANCEL_REASONS[i]) == 0) {
            return true;
        }
    }
    return false;
}

ledger_err_t channel_cancel(channel_t *ch, const char *uetr, const char *reason,
                            char cancellation_id[static CORRIDOR_UETR_LEN + 1],
                            ledger_outcome_t *outcome)
{
    channel_check_invariants(ch);
    assert(ledger_in_transaction(ch->ctx.ledger) && channel_cancel_reason_valid(reason));
    const char *peer = ch->peer->card.name;
    settlement_t s;
    ledger_err_t rc = ledger_find(ch->ctx.ledger, peer, uetr, &s, outcome);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (s.direction != DIRECTION_OUT || outcome->status != STATUS_PENDING ||
        outcome->cancel_id[0] != '\0' || settlement_is_return(&s) || settlement_is_fx_leg(&s)) {
        snprintf(cancellation_id, CORRIDOR_UETR_LEN + 1, "%s", outcome->cancel_id);
        return LEDGER_E_STATE;
    }
    /* the request names the body of our Settlement, which the stored record re-encodes */
    uint8_t *body = NULL, hash[SETTLEMENT_HASH_BYTES];
    size_t body_len = 0;
    if (settlement_encode(&s, &body, &body_len) != 0) {
        return LEDGER_E_STORAGE;
    }
    settlement_body_hash(body, body_len, hash);
    free(body);
    uetr_generate(cancellation_id);
    Corridor__CancelRequest req = CORRIDOR__CANCEL_REQUEST__INIT;
    req.cancellation_id = cancellation_id;
    req.uetr = (char *)uetr;
    req.reason = (char *)reason;
    req.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t buf[160];
    assert(corridor__cancel_request__get_packed_size(&req) <= sizeof buf);
    size_t len = corridor__cancel_request__pack(&req, buf);
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    rc =
        queue_message(ch, ch->wire_version, MSG_CANCEL_REQUEST, buf, len, &signed_msg, &signed_len);
    if (rc == LEDGER_OK) {
        rc = ledger_cancel_request(ch->ctx.ledger, peer, uetr, cancellation_id, reason, signed_msg,
                                   signed_len, ch->sent_seq);
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, uetr, "outgoing asked back (%s): cancellation %s",
                  reason, cancellation_id);
        rc = ledger_find(ch->ctx.ledger, peer, uetr, &s, outcome);
    }
    free(signed_msg);
    channel_check_invariants(ch);
    return rc;
}

/* Queues our CancelAnswer; the signed message is handed back (malloc'd) to be kept as a reply. */
static ledger_err_t queue_cancel_answer(channel_t *ch, const Corridor__CancelRequest *req,
                                        const char *confirmation, const char *reason,
                                        const char *status, const char *status_reason,
                                        uint8_t **signed_msg, size_t *signed_len)
{
    Corridor__CancelAnswer ans = CORRIDOR__CANCEL_ANSWER__INIT;
    ans.cancellation_id = req->cancellation_id;
    ans.uetr = req->uetr;
    ans.confirmation = (char *)confirmation;
    ans.reason = (char *)reason;
    ans.status = (char *)status;
    ans.status_reason = (char *)status_reason;
    ans.settlement_hash = req->settlement_hash;
    uint8_t buf[256];
    assert(corridor__cancel_answer__get_packed_size(&ans) <= sizeof buf);
    size_t len = corridor__cancel_answer__pack(&ans, buf);
    return queue_message(ch, ch->wire_version, MSG_CANCEL_ANSWER, buf, len, signed_msg, signed_len);
}

/* The payer asks a payment back (3.8.4): held here, it is cancelled (declined with the request's
 * reason); decided, the request is refused AGNT; unknown to us from this payer, refused NOOR
 * with nothing booked. A request that is malformed, or names another body than the payer's
 * Settlement we hold, is dropped. */
static ledger_err_t apply_cancel_request(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    Corridor__CancelRequest *req = (Corridor__CancelRequest *)wire_unpack(
        &corridor__cancel_request__descriptor, msg->body_len, msg->body);
    ledger_err_t rc = LEDGER_OK;
    uint8_t *signed_msg = NULL, *body = NULL;
    size_t signed_len = 0, body_len = 0;
    if (req == NULL || uetr_check(req->uetr) != VALID_OK ||
        uetr_check(req->cancellation_id) != VALID_OK || !channel_cancel_reason_valid(req->reason) ||
        req->settlement_hash.len != SETTLEMENT_HASH_BYTES) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, NULL, "dropped malformed CancelRequest (sequence %llu)",
                  (unsigned long long)msg->sequence);
        goto done;
    }
    settlement_t s;
    ledger_outcome_t now;
    uint32_t version = 0;
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    bool known = ledger_find(ch->ctx.ledger, peer, req->uetr, &s, &now) == LEDGER_OK &&
                 s.direction == DIRECTION_IN && !settlement_is_return(&s) &&
                 !settlement_is_fx_leg(&s) && /* a leg goes with its trade (3.10) */
                 opening_settlement(ch, req->uetr, &version, &body, &body_len) == LEDGER_OK;
    if (known) {
        settlement_body_hash(body, body_len, hash);
        known = sodium_memcmp(hash, req->settlement_hash.data, sizeof hash) == 0;
    }
    if (!known) { /* not a payment this payer sent us: refused, nothing booked */
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, req->uetr,
                  "CancelRequest refused NOOR: no such payment from the peer");
        rc = queue_cancel_answer(ch, req, "RJCR", "NOOR", "", "", NULL, NULL);
        goto done;
    }
    if (now.status == STATUS_HELD) {
        rc = queue_cancel_answer(ch, req, "CNCL", req->reason, "RJCT", req->reason, &signed_msg,
                                 &signed_len);
        ledger_outcome_t out;
        if (rc == LEDGER_OK) {
            rc = ledger_decide_held(ch->ctx.ledger, peer, req->uetr, req->reason, msg->evidence,
                                    msg->evidence_len, req->cancellation_id, ch->sent_seq, &out);
        }
        if (rc == LEDGER_OK) {
            rc = ledger_attach_reply(ch->ctx.ledger, peer, req->uetr, signed_msg, signed_len);
        }
        if (rc == LEDGER_OK) {
            *moved = true;
            log_event(ch->ctx.node_name, peer, req->uetr, "incoming %lld %s was held, cancelled %s",
                      (long long)s.amount_minor, s.currency, req->reason);
        }
        goto done;
    }
    const char *status = now.status == STATUS_REJECTED ? "RJCT" : "ACSC";
    rc = queue_cancel_answer(ch, req, "RJCR", "AGNT", status,
                             now.status == STATUS_REJECTED ? now.reason : "", &signed_msg,
                             &signed_len);
    if (rc == LEDGER_OK) {
        rc = ledger_cancel_refused_here(ch->ctx.ledger, peer, req->uetr, "AGNT", msg->evidence,
                                        msg->evidence_len);
    }
    if (rc == LEDGER_OK) {
        rc = ledger_attach_reply(ch->ctx.ledger, peer, req->uetr, signed_msg, signed_len);
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, req->uetr, "CancelRequest refused AGNT: it is %s",
                  status_name(now.status));
    }

done:
    free(body);
    free(signed_msg);
    corridor__cancel_request__free_unpacked(req, NULL);
    return rc;
}

/* Whether `hash` is the body hash of our Settlement `uetr` (its stored record re-encodes it). */
static bool names_our_settlement(channel_t *ch, const char *uetr, const uint8_t *hash)
{
    settlement_t s;
    ledger_outcome_t o;
    uint8_t *body = NULL, ours[SETTLEMENT_HASH_BYTES];
    size_t body_len = 0;
    if (ledger_find(ch->ctx.ledger, ch->peer->card.name, uetr, &s, &o) != LEDGER_OK ||
        s.direction != DIRECTION_OUT || settlement_is_fx_leg(&s) || /* no CancelRequest names one */
        settlement_encode(&s, &body, &body_len) != 0) {
        return false;
    }
    settlement_body_hash(body, body_len, ours);
    free(body);
    return sodium_memcmp(ours, hash, sizeof ours) == 0;
}

/* The payee's answer to our CancelRequest: CNCL voids our pending payment, RJCR closes the
 * request. An answer we did not ask for changes nothing. */
static ledger_err_t apply_cancel_answer(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    Corridor__CancelAnswer *ans = (Corridor__CancelAnswer *)wire_unpack(
        &corridor__cancel_answer__descriptor, msg->body_len, msg->body);
    ledger_err_t rc = LEDGER_OK;
    bool cancelled = ans != NULL && strcmp(ans->confirmation, "CNCL") == 0;
    if (ans == NULL || uetr_check(ans->uetr) != VALID_OK ||
        uetr_check(ans->cancellation_id) != VALID_OK ||
        (!cancelled && strcmp(ans->confirmation, "RJCR") != 0) ||
        reason_code_check(ans->reason) != VALID_OK ||
        (cancelled && !channel_cancel_reason_valid(ans->reason)) ||
        ans->settlement_hash.len != SETTLEMENT_HASH_BYTES) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, NULL, "dropped malformed CancelAnswer (sequence %llu)",
                  (unsigned long long)msg->sequence);
        goto done;
    }
    ledger_outcome_t out;
    if (!names_our_settlement(ch, ans->uetr, ans->settlement_hash.data)) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, ans->uetr,
                  "CancelAnswer refused: it names no Settlement of ours");
        goto done;
    }
    rc = ledger_cancel_answered(ch->ctx.ledger, peer, ans->uetr, ans->cancellation_id, cancelled,
                                ans->reason, msg->evidence, msg->evidence_len, msg->sequence, &out);
    if (rc == LEDGER_E_NOT_FOUND || rc == LEDGER_E_STATE) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, ans->uetr, "CancelAnswer %s refused: %s",
                  ans->confirmation, ledger_last_error(ch->ctx.ledger));
        rc = LEDGER_OK;
        goto done;
    }
    if (rc == LEDGER_OK) {
        *moved = cancelled;
        log_event(ch->ctx.node_name, peer, ans->uetr, "outgoing %s by the payee (%s)",
                  cancelled ? "cancelled" : "not cancelled", ans->reason);
        if (cancelled && ch->ctx.on_final != NULL) {
            ch->ctx.on_final(ch->ctx.arg, peer, ans->uetr, &out);
        }
    }

done:
    corridor__cancel_answer__free_unpacked(ans, NULL);
    return rc;
}

/* ---- FX trades (PROTOCOL.md 3.10) ------------------------------------------------------------
 */

/* Our pacs.002 on the peer's trade, naming the FxProposal `body`, kept with both legs as their
 * reply (a PDNG with the held rows' last, nothing decided), as answer_settlement does. */
static ledger_err_t answer_trade(channel_t *ch, const envelope_message_t *msg, const fx_trade_t *t,
                                 const ledger_outcome_t *out)
{
    const char *peer = ch->peer->card.name;
    bool held = out->status == STATUS_HELD;
    const char *status = out->status == STATUS_SETTLED ? "ACSC" : held ? "PDNG" : "RJCT";
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    ledger_err_t rc = queue_status_report(
        ch, msg->version, msg->body, msg->body_len, t->fx_id, status, out->reason,
        t->legs[FX_PAY].currency, out->position_minor, REPLY_NONE, &signed_msg, &signed_len);
    if (rc == LEDGER_OK && !out->repeated && held) {
        rc = ledger_attach_reply(ch->ctx.ledger, peer, t->legs[FX_RECEIVE].uetr, signed_msg,
                                 signed_len);
    }
    for (int i = 0; rc == LEDGER_OK && !out->repeated && !held && i < 2; i++) {
        /* the first leg keeps it as its record's reply; the second's row, the last, too */
        rc = ledger_set_reply(ch->ctx.ledger, peer, t->legs[i].uetr, signed_msg, signed_len,
                              ch->sent_seq);
    }
    free(signed_msg);
    return rc;
}

/* The peer proposes a trade (3.10.4): both legs are booked, held for review or refused as one,
 * and answered by one StatusReport naming the trade. A proposal we cannot key (no trade id, or
 * leg UETRs that are missing, malformed or not distinct) is answered RJCT FF01 and recorded
 * nowhere. */
static ledger_err_t apply_fx_proposal(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    fx_trade_t t;
    reason_t reason = fx_decode(msg->body, msg->body_len, peer, DIRECTION_IN, &t);
    if (uetr_check(t.fx_id) != VALID_OK) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, NULL,
                  "dropped malformed FxProposal (sequence %llu): no valid trade id",
                  (unsigned long long)msg->sequence);
        return LEDGER_OK;
    }
    if (reason == REASON_NONE) {
        reason = fx_check(&t);
    }
    bool keyed = fx_keyed(&t, msg->version);
    if (reason == REASON_NONE && !keyed) {
        reason = REASON_FORMAT; /* version 1 (3.10.1), or an amount of -2^63 */
    }
    const settlement_t *pay = &t.legs[FX_PAY], *receive = &t.legs[FX_RECEIVE];
    if (reason != REASON_NONE) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, t.fx_id, "FxProposal refused %s: %s",
                  reason_code(reason), reason_text(reason));
    }
    if (!keyed) {
        return queue_status_report(ch, msg->version, msg->body, msg->body_len, t.fx_id, "RJCT",
                                   reason_code(REASON_FORMAT), pay->currency, 0, REPLY_NONE, NULL,
                                   NULL);
    }
    for (int i = 0; reason == REASON_NONE && i < 2; i++) {
        if (!config_accepts(ch->ctx.config, t.legs[i].currency)) {
            reason = REASON_CURRENCY;
        }
    }
    if (reason == REASON_NONE && t.expires_unix_ms != 0 && ch->wall_ms >= t.expires_unix_ms) {
        reason = REASON_EXPIRED; /* 3.8.1: it arrived too late */
    }
    const char *hold = NULL;
    if (reason == REASON_NONE) {
        const config_fx_band_t *band = fx_band_find(ch->peer, &t);
        if (band == NULL) {
            hold = LEDGER_HOLD_REVIEW; /* no band for the pair: a person decides */
        } else if (!fx_band_holds(band, &t)) {
            reason = REASON_FX_BAND;
        }
    }
    ledger_outcome_t out;
    /* the cap we grant the proposer, in the currency it pays us */
    int64_t cap = config_peer_limit(ch->peer, pay->currency);
    ledger_err_t rc = ledger_fx_receive(ch->ctx.ledger, t.legs, cap, reason_code(reason), hold,
                                        msg->evidence, msg->evidence_len, msg->sequence, &out);
    if (rc == LEDGER_E_CONFLICT) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, t.fx_id, "FxProposal rejected DUPL: %s",
                  ledger_last_error(ch->ctx.ledger));
        return queue_status_report(ch, msg->version, msg->body, msg->body_len, t.fx_id, "RJCT",
                                   reason_code(REASON_DUPLICATE), pay->currency, 0, REPLY_NONE,
                                   NULL, NULL);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    *moved = out.status == STATUS_SETTLED && !out.repeated;
    if (!out.repeated) {
        log_event(ch->ctx.node_name, peer, t.fx_id, "incoming FX trade: %lld %s for %lld %s %s%s%s",
                  (long long)pay->amount_minor, pay->currency, (long long)receive->amount_minor,
                  receive->currency, status_name(out.status), out.reason[0] ? " " : "", out.reason);
    }
    if (!out.repeated && out.status == STATUS_HELD && t.expires_unix_ms != 0 &&
        ch->next_expiry_ms != 0 && t.expires_unix_ms < ch->next_expiry_ms) {
        ch->next_expiry_ms = t.expires_unix_ms;
    }
    return answer_trade(ch, msg, &t, &out);
}

static ledger_err_t opening_message(channel_t *ch, const char *uetr, msg_type_t expected,
                                    uint32_t *version, uint8_t **body, size_t *body_len);

/* Whether our books hold the legs of our trade as the FxProposal we signed says (its opening
 * evidence): an insider who swapped which leg is which, or edited an amount, must not have the
 * peer's answer move money that way (PROTOCOL.md 3.10.3). */
static bool legs_as_signed(channel_t *ch, const settlement_t legs[2])
{
    uint32_t version = 0;
    uint8_t *body = NULL;
    size_t body_len = 0;
    fx_trade_t signed_trade;
    bool same = opening_message(ch, legs[0].uetr, MSG_FX_PROPOSAL, &version, &body, &body_len) ==
                    LEDGER_OK &&
                fx_decode(body, body_len, ch->peer->card.name, DIRECTION_OUT, &signed_trade) ==
                    REASON_NONE &&
                strcmp(signed_trade.fx_id, legs[0].fx_id) == 0;
    for (int i = 0; same && i < 2; i++) {
        const settlement_t *s = &signed_trade.legs[i];
        same = strcmp(s->uetr, legs[i].uetr) == 0 && s->amount_minor == legs[i].amount_minor &&
               strcmp(s->currency, legs[i].currency) == 0 && s->fx_leg == legs[i].fx_leg &&
               sodium_memcmp(s->original_hash, legs[i].original_hash, SETTLEMENT_HASH_BYTES) == 0;
    }
    free(body);
    return same;
}

/* The acceptor's answer to a trade (a StatusReport whose uetr is the trade's id): ACSC posts both
 * legs, RJCT voids both, PDNG notes that it holds them. An answer for a trade the peer proposed,
 * or naming another FxProposal than ours, changes nothing and is counted. */
static ledger_err_t apply_fx_answer(channel_t *ch, const envelope_message_t *msg,
                                    const Corridor__StatusReport *sr, const settlement_t legs[2],
                                    const ledger_outcome_t *trade, bool *moved)
{
    const char *peer = ch->peer->card.name;
    const char *why = NULL;
    bool settled = strcmp(sr->status, "ACSC") == 0, pending = strcmp(sr->status, "PDNG") == 0;
    if (legs[0].direction != DIRECTION_OUT) {
        why = "a trade the peer proposed";
    } else if (sr->settlement_hash.len != SETTLEMENT_HASH_BYTES ||
               sodium_memcmp(sr->settlement_hash.data, legs[0].original_hash,
                             SETTLEMENT_HASH_BYTES) != 0) {
        why = "it names another FxProposal than ours";
    } else if (!settled && !pending &&
               (strcmp(sr->status, "RJCT") != 0 || reason_code_check(sr->reason) != VALID_OK)) {
        why = "not ACSC, RJCT with a reason, or PDNG";
    }
    if (why != NULL) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, sr->uetr, "answer on trade refused: %s", why);
        return LEDGER_OK;
    }
    ledger_err_t rc = LEDGER_OK;
    ledger_outcome_t out = *trade;
    if (!legs_as_signed(ch, legs)) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, sr->uetr,
                  "answer on trade refused: our books hold its legs other than our FxProposal");
        return LEDGER_OK;
    }
    status_t answer = settled ? STATUS_SETTLED : pending ? STATUS_HELD : STATUS_REJECTED;
    rc = ledger_fx_resolve(ch->ctx.ledger, peer, sr->uetr, sr->settlement_hash.data, answer,
                           settled || pending ? NULL : sr->reason, msg->evidence, msg->evidence_len,
                           msg->sequence, &out);
    if (rc == LEDGER_E_CONFLICT || rc == LEDGER_E_STATE || rc == LEDGER_E_NOT_FOUND ||
        rc == LEDGER_E_CORRUPT) {
        /* a PDNG or another answer after the final one, or edited books: nothing was written */
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, sr->uetr, "answer %s on trade refused: %s", sr->status,
                  ledger_last_error(ch->ctx.ledger));
        return LEDGER_OK;
    }
    if (rc != LEDGER_OK || pending || out.repeated) {
        return rc;
    }
    *moved = true;
    log_event(ch->ctx.node_name, peer, sr->uetr, "outgoing FX trade %s%s%s",
              status_name(out.status), out.reason[0] ? " " : "", out.reason);
    if (ch->ctx.on_final != NULL) {
        ch->ctx.on_final(ch->ctx.arg, peer, sr->uetr, &out);
    }
    return LEDGER_OK;
}

ledger_err_t channel_prepare_fx(channel_t *ch, fx_trade_t *t, const char **why)
{
    assert(t != NULL && why != NULL);
    fx_trade_prepare(t, ch->peer->card.name);
    reason_t reason = fx_check(t);
    *why = reason != REASON_NONE ? reason_code(reason) : NULL;
    if (*why != NULL) {
        return LEDGER_OK;
    }
    const settlement_t *theirs = &t->legs[FX_RECEIVE];
    bool over = false;
    ledger_err_t rc =
        ledger_cap_exceeded(ch->ctx.ledger, theirs->peer, theirs->currency, theirs->amount_minor,
                            config_peer_limit(ch->peer, theirs->currency), &over);
    *why = over ? reason_code(REASON_OVER_CAP) : NULL;
    return rc;
}

ledger_err_t channel_propose_fx(channel_t *ch, fx_trade_t *t, const char **why,
                                ledger_outcome_t *outcome)
{
    channel_check_invariants(ch);
    assert(t != NULL && why != NULL && outcome != NULL && ledger_in_transaction(ch->ctx.ledger));
    const char *peer = ch->peer->card.name;
    ledger_err_t rc = channel_prepare_fx(ch, t, why);
    if (rc != LEDGER_OK || *why != NULL) {
        return rc;
    }
    uint8_t *body = NULL, *signed_msg = NULL;
    size_t body_len = 0, signed_len = 0;
    if (fx_encode(t, &body, &body_len) != 0) {
        return LEDGER_E_STORAGE;
    }
    uint64_t seq = ch->sent_seq + 1;
    rc = LEDGER_E_STORAGE;
    /* the binding of the answer (a version-2 StatusReport) is what makes a trade: version 2 */
    uint32_t version = ch->wire_version >= 2 ? ch->wire_version : 2;
    if (envelope_sign_version(ch->own, version, ch->keys->key_id, MSG_FX_PROPOSAL, seq, body,
                              body_len, &signed_msg, &signed_len) != ENV_OK) {
        goto cleanup;
    }
    int64_t cap = config_peer_limit(ch->peer, t->legs[FX_RECEIVE].currency);
    rc = ledger_fx_propose(ch->ctx.ledger, t->legs, cap, signed_msg, signed_len, seq, why, outcome);
    if (rc != LEDGER_OK || *why != NULL) {
        goto cleanup;
    }
    rc = ledger_outbox_put(ch->ctx.ledger, peer, seq, (int)MSG_FX_PROPOSAL, signed_msg, signed_len);
    if (rc == LEDGER_OK) {
        ch->sent_seq = seq;
        log_event(ch->ctx.node_name, peer, t->fx_id, "outgoing FX trade: %lld %s for %lld %s",
                  (long long)t->legs[FX_PAY].amount_minor, t->legs[FX_PAY].currency,
                  (long long)t->legs[FX_RECEIVE].amount_minor, t->legs[FX_RECEIVE].currency);
    }

cleanup:
    free(body);
    free(signed_msg);
    channel_check_invariants(ch);
    return rc;
}

/* channel_decide_held for a trade the peer proposed and we hold: both legs released, or both
 * declined, on one StatusReport naming the trade. */
static ledger_err_t decide_held_trade(channel_t *ch, const char *fx_id, const char *reason,
                                      ledger_outcome_t *outcome)
{
    const char *peer = ch->peer->card.name;
    settlement_t legs[2];
    ledger_outcome_t now;
    ledger_err_t rc = ledger_fx_find(ch->ctx.ledger, peer, fx_id, legs, &now);
    if (rc == LEDGER_E_CORRUPT) {
        return LEDGER_E_NOT_FOUND; /* edited books: not a trade we can decide */
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (legs[0].direction != DIRECTION_IN || now.status != STATUS_HELD ||
        !channel_decides_held(ch)) {
        *outcome = now;
        return LEDGER_E_STATE; /* decided meanwhile, ours, or not UP (channel_decide_held) */
    }
    if (reason == NULL && legs[0].expires_unix_ms != 0 && ch->wall_ms >= legs[0].expires_unix_ms) {
        reason = reason_code(REASON_EXPIRED);
    }
    for (int i = 0; i < 2; i++) {
        if ((rc = ledger_decide_held_fits(ch->ctx.ledger, &legs[i], reason == NULL)) != LEDGER_OK) {
            return rc; /* before anything is queued */
        }
    }
    uint32_t version = 0;
    uint8_t *body = NULL, *signed_msg = NULL;
    size_t body_len = 0, signed_len = 0;
    rc = opening_message(ch, legs[0].uetr, MSG_FX_PROPOSAL, &version, &body, &body_len);
    if (rc != LEDGER_OK) {
        return rc;
    }
    int64_t position = now.position_minor;
    if (reason == NULL &&
        __builtin_add_overflow(now.position_minor, legs[0].amount_minor, &position)) {
        position = now.position_minor;
    }
    rc = queue_status_report(ch, version, body, body_len, fx_id, reason == NULL ? "ACSC" : "RJCT",
                             reason, legs[0].currency, position, REPLY_NONE, &signed_msg,
                             &signed_len);
    for (int i = 0; rc == LEDGER_OK && i < 2; i++) {
        rc = ledger_decide_held(ch->ctx.ledger, peer, legs[i].uetr, reason, signed_msg, signed_len,
                                NULL, ch->sent_seq, outcome);
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, fx_id, "incoming FX trade was held, now %s%s%s",
                  status_name(outcome->status), reason != NULL ? " " : "",
                  reason != NULL ? reason : "");
    }
    free(body);
    free(signed_msg);
    return rc;
}
