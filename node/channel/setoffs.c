/*
 * Multilateral set-off on the channels (proto/PROTOCOL.md 3.12): the relay goes forward round
 * the ring, each member voting on its own books, and the proposer's decision follows it the same
 * way. A member's step touches two channels (the one the message came on and the one it goes
 * on), so it finds the other through the node (channel_ctx_t.channel_of) and queues there in the
 * same transaction: a message is forwarded exactly when the books that made it commit.
 *
 * On each edge the debtor sends both the relay that opens the leg and the decision that closes
 * it, and a member closes both its legs in the one transaction that applies the decision: a
 * member is never left with one leg posted and the other not. The proposer posts its leg with
 * its successor first and its predecessor's when the decision comes back round: in between it
 * owes less, never more. Nothing here decides on a clock but the proposer's deadline
 * (channel_setoff_expire).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_private.h"
#include "config.h"
#include "cycles.h"
#include "log.h"
#include "setoff.h"
#include "setoffs.h"
#include "validate.h"

#define REASON_NO_DEBT       "AM04" /* no such debt to set off (3.12.2 step 4) */
#define REASON_CURRENCY      "AM03"
#define REASON_LATE          "AB05"
#define REASON_NOT_REACHABLE "NARR" /* a neighbour cannot take set-off messages */
#define REASON_TAKEN         "DUPL" /* the id is used on one of our channels */
#define REASON_TOO_MANY      "AG09" /* too many set-offs open with a neighbour */
#define REASON_KEYS          "RC01" /* a member named with a key it does not sign with */
#define REASON_HORIZON       "FF01" /* a deadline too far away */
#define SETOFF_OPEN_MAX      64     /* pending legs with one neighbour: more are refused */
#define SETOFF_HORIZON_MS    (INT64_C(86400) * 1000 + 600 * 1000) /* a day, and clock skew */
#define SETOFF_DUE_MAX       16 /* deadlines handled per transaction */

/* The Inner version our set-off messages are signed with: at least 2. */
static uint32_t setoff_version(const channel_t *ch)
{
    return ch->wire_version >= 2 ? ch->wire_version : 2;
}

/* Tells the node a set-off it may wait for ended (key "setoff-ID"). */
static void notify(channel_t *ch, const char *setoff_id, bool committed, const char *reason)
{
    if (ch->ctx.on_final == NULL) {
        return;
    }
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    out.status = committed ? STATUS_SETTLED : STATUS_REJECTED;
    snprintf(out.reason, sizeof out.reason, "%s", reason);
    char key[8 + CORRIDOR_UETR_LEN + 1];
    snprintf(key, sizeof key, "setoff-%s", setoff_id);
    ch->ctx.on_final(ch->ctx.arg, CHANNEL_SETOFF_WAITER, key, &out);
}

static void refuse(channel_t *ch, const envelope_message_t *msg, const char *id, const char *why)
{
    ch->stats.unentitled++;
    log_event(ch->ctx.node_name, ch->peer->card.name, id, "%s (sequence %" PRIu64 ") refused: %s",
              msg_type_name((int)msg->type), msg->sequence, why);
}

/* The ring's neighbour at `offset` (+1 successor, -1 predecessor) of position `p`. */
static const setoff_member_t *neighbour(const setoff_terms_t *t, int p, int offset)
{
    int n = (int)t->n;
    return &t->ring[(p + offset + n) % n];
}

/* Whether a ring member's key is one this channel's peer signs with (current, previous, card). */
typedef struct {
    const uint8_t *key_id;
    uint64_t seq;
    bool recorded; /* the peer has keys on record */
    bool valid;    /* key_id is one of them, valid at seq and not revoked there */
} key_probe_t;

static void probe_key(const key_record_t *k, void *arg)
{
    key_probe_t *p = arg;
    if (k->side != KEY_SIDE_THEIRS) {
        return;
    }
    p->recorded = true;
    if (memcmp(k->key_id, p->key_id, IDENTITY_KEY_ID_BYTES) == 0 && k->first_seq <= p->seq &&
        (k->last_seq == 0 || p->seq <= k->last_seq) &&
        (k->revoked_from == 0 || p->seq < k->revoked_from)) {
        p->valid = true;
    }
}

/* Whether a ring member's key is the key this channel's peer signs with at its sequence `seq`
 * (3.12.2 step 1): one of its key history valid there and not revoked there, or, with no key
 * on record, its card's. A key history that cannot be read accepts nothing. */
static bool peer_key_is(const channel_t *ch, const setoff_member_t *m, uint64_t seq)
{
    key_probe_t p = {.key_id = m->key_id, .seq = seq > 0 ? seq : 1};
    if (ledger_keys(ch->ctx.ledger, ch->peer->card.name, probe_key, &p) != LEDGER_OK) {
        return false;
    }
    if (p.recorded) {
        return p.valid;
    }
    uint8_t card_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(ch->peer->card.sign_public, card_id);
    return memcmp(m->key_id, card_id, IDENTITY_KEY_ID_BYTES) == 0;
}

/* Whether set-off messages may go to the peer: it offered them (its latest Hello, kept in the
 * books), or nothing is known of it yet (a channel never up since it was made: an older
 * program would have said what it offers by then). */
static bool takes_setoffs(const channel_t *ch)
{
    return channel_peer_offered(ch, CHANNEL_FEATURE_SETOFF) ||
           (!ch->been_up && ch->peer_features_persisted == 0);
}

/* The channel of our neighbour `m`, or NULL (not a configured peer). */
static channel_t *channel_of(channel_t *ch, const setoff_member_t *m)
{
    return ch->ctx.channel_of != NULL ? ch->ctx.channel_of(ch->ctx.arg, m->code) : NULL;
}

/* Whether every member that is a peer of ours is named with a key its key history holds valid
 * (3.12.2 step 1): only the others are taken on the sender's word. */
static bool known_keys_agree(channel_t *ch, const envelope_message_t *msg, const setoff_terms_t *t,
                             int p)
{
    for (size_t i = 0; i < t->n; i++) {
        channel_t *with = (int)i == p ? NULL : channel_of(ch, &t->ring[i]);
        if (with == NULL) {
            continue;
        }
        /* the sender: at the message's sequence; the others: at the last of theirs we applied
         * or the next (a rotation announced and not yet used) */
        bool ok = with == ch ? peer_key_is(with, &t->ring[i], msg->sequence)
                             : peer_key_is(with, &t->ring[i], with->applied_seq) ||
                                   peer_key_is(with, &t->ring[i], with->applied_seq + 1);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Checks a decoded relay or decision from our predecessor against what the terms say (3.12.2
 * step 1): the proposer's H10, our place, the sender our predecessor, our key ours (now or
 * before our last rotation). The position, or -1 with *why. */
static int check_terms(channel_t *ch, const setoff_message_t *m, const char **why)
{
    const setoff_terms_t *t = &m->terms;
    int p = setoff_position(t, ch->ctx.config->name);
    int from = -1;
    *why = NULL;
    if (!setoff_verify(SETOFF_TERMS_DOMAIN, m->terms_bytes, m->terms_len, m->terms_signature,
                       t->ring[0].signing_key)) {
        *why = "the proposer's signature over the terms does not verify";
    } else if (p < 0) {
        *why = "we are not on the ring";
    } else if (strcmp(neighbour(t, p, from)->code, ch->peer->card.name) != 0) {
        *why = "the sender is not our predecessor on the ring";
    } else if (memcmp(t->ring[p].key_id, ch->ctx.self->key_id, IDENTITY_KEY_ID_BYTES) != 0 &&
               (ch->ctx.self_previous == NULL ||
                memcmp(t->ring[p].key_id, ch->ctx.self_previous->key_id, IDENTITY_KEY_ID_BYTES) !=
                    0)) {
        *why = "the ring names another key for us";
    } else {
        return p;
    }
    return -1;
}

/* Whether the votes are those of positions 0, 1, ... in order, valid, yes but for a last
 * refusal; *refusal: its index, or -1. */
static bool votes_in_order(const setoff_message_t *m, const uint8_t hash[SETOFF_HASH_BYTES],
                           int *refusal)
{
    *refusal = -1;
    for (size_t i = 0; i < m->n_votes; i++) {
        const setoff_vote_t *v = &m->votes[i];
        if (v->ballot.position != i || !setoff_vote_valid(&m->terms, hash, v) ||
            (m->terms.amount_minor > 0 && v->ballot.most_minor != 0)) {
            return false;
        }
        if (!v->ballot.yes) {
            if (i + 1 != m->n_votes) {
                return false;
            }
            *refusal = (int)i;
        }
    }
    return true;
}

/* What we can take off the debt we owe `next` and the one `prev` owes us in `currency`, after the
 * legs we voted for that are still pending (3.12.2 step 4): the smaller, >= 0. */
static ledger_err_t room_for_setoff(channel_t *ch, const char *next, const char *prev,
                                    const char *currency, int64_t *room)
{
    ledger_t *l = ch->ctx.ledger;
    int64_t owed_next = 0, owed_by_prev = 0, pend_next = 0, pend_prev = 0, pend_in = 0;
    ledger_err_t rc = ledger_position(l, next, currency, &owed_next, &pend_next);
    if (rc == LEDGER_OK) {
        rc = ledger_position(l, prev, currency, &owed_by_prev, &pend_prev);
    }
    if (rc == LEDGER_OK) {
        rc = ledger_setoff_pending(l, prev, currency, DIRECTION_IN, &pend_in);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    /* net(next) < 0: we owe it; net(prev) > 0: it owes us. What is on its way counts against
     * the set-off (3.12.2 step 4): the pending change of net(next) that lowers our debt (our
     * pending legs with it among them), that of net(prev) that lowers its debt, and our pending
     * legs with prev (which move nothing pending at the creditor). */
    __int128 a = -(__int128)owed_next - (pend_next > 0 ? pend_next : 0);
    __int128 b = (__int128)owed_by_prev + (pend_prev < 0 ? pend_prev : 0) - pend_in;
    __int128 r = a < b ? a : b;
    *room = r < 0 ? 0 : r > CORRIDOR_AMOUNT_MINOR_MAX ? CORRIDOR_AMOUNT_MINOR_MAX : (int64_t)r;
    return LEDGER_OK;
}

/* Our verdict on the terms from our books, at position p: NULL yes, else a reason. *most: in an
 * asking round, the most we can set off. */
static ledger_err_t judge(channel_t *ch, channel_t *next, channel_t *prev, const setoff_terms_t *t,
                          const char **no, int64_t *most)
{
    *no = NULL;
    *most = 0;
    if (!config_accepts(ch->ctx.config, t->currency)) {
        *no = REASON_CURRENCY;
        return LEDGER_OK;
    }
    if (ch->wall_ms >= t->deadline_unix_ms) {
        *no = REASON_LATE;
        return LEDGER_OK;
    }
    if (t->deadline_unix_ms - ch->wall_ms > SETOFF_HORIZON_MS) {
        *no = REASON_HORIZON; /* legs would wait on a decision that long */
        return LEDGER_OK;
    }
    if (next == NULL || prev == NULL || !takes_setoffs(next) || !takes_setoffs(prev) ||
        next->state == CHANNEL_DIVERGED || prev->state == CHANNEL_DIVERGED) {
        *no = REASON_NOT_REACHABLE;
        return LEDGER_OK;
    }
    bool taken = false;
    ledger_err_t rc = LEDGER_OK;
    if (t->amount_minor > 0) {
        for (int i = 0; i < 2 && !taken && rc == LEDGER_OK; i++) {
            rc = ledger_id_taken(ch->ctx.ledger, (i == 0 ? next : prev)->peer->card.name,
                                 t->setoff_id, &taken);
        }
        if (rc != LEDGER_OK) {
            return rc;
        }
        if (taken) {
            *no = REASON_TAKEN;
            return LEDGER_OK;
        }
        int64_t open_next = 0, open_prev = 0;
        if ((rc = ledger_setoff_open_legs(ch->ctx.ledger, next->peer->card.name, &open_next)) !=
                LEDGER_OK ||
            (rc = ledger_setoff_open_legs(ch->ctx.ledger, prev->peer->card.name, &open_prev)) !=
                LEDGER_OK) {
            return rc;
        }
        if (open_next >= SETOFF_OPEN_MAX || open_prev >= SETOFF_OPEN_MAX) {
            *no = REASON_TOO_MANY;
            return LEDGER_OK;
        }
    }
    int64_t room = 0;
    if ((rc = room_for_setoff(ch, next->peer->card.name, prev->peer->card.name, t->currency,
                              &room)) != LEDGER_OK) {
        return rc;
    }
    if (t->amount_minor == 0) {
        *most = room;
        *no = room > 0 ? NULL : REASON_NO_DEBT;
    } else if (room < t->amount_minor) {
        *no = REASON_NO_DEBT;
    }
    return LEDGER_OK;
}

/* Signs our ballot at position p into a vote, with the key the ring names for us. */
static int sign_vote(channel_t *ch, const uint8_t hash[SETOFF_HASH_BYTES], int p,
                     const uint8_t t_key_id[static IDENTITY_KEY_ID_BYTES], const char *no,
                     int64_t most, setoff_vote_t *v)
{
    setoff_ballot_t b;
    memset(&b, 0, sizeof b);
    memcpy(b.terms_hash, hash, SETOFF_HASH_BYTES);
    b.position = (uint32_t)p;
    b.yes = no == NULL;
    snprintf(b.reason, sizeof b.reason, "%s", no != NULL ? no : "");
    b.most_minor = most;
    /* with the key the ring names for us: ours now, or the one before our last rotation */
    const identity_t *key =
        ch->ctx.self_previous != NULL &&
                memcmp(t_key_id, ch->ctx.self_previous->key_id, IDENTITY_KEY_ID_BYTES) == 0
            ? ch->ctx.self_previous
            : ch->ctx.self;
    return setoff_vote_make(&b, key->sign_secret, v);
}

static uint8_t *vote_blob(const setoff_vote_t *v, size_t *len)
{
    uint8_t *p = malloc(v->ballot_len + crypto_sign_BYTES);
    if (p != NULL) {
        memcpy(p, v->ballot_bytes, v->ballot_len);
        memcpy(p + v->ballot_len, v->signature, crypto_sign_BYTES);
        *len = v->ballot_len + crypto_sign_BYTES;
    }
    return p;
}

/* Queues the set-off message `m` (a relay, or a decision) on `to`; *seq its sequence, *signed
 * the SignedMessage (malloc'd; NULL when not wanted). */
static ledger_err_t queue_setoff(channel_t *to, const setoff_message_t *m, bool decision,
                                 uint64_t *seq, uint8_t **signed_msg, size_t *signed_len)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (setoff_message_encode(m, decision, &body, &body_len) != 0) {
        return LEDGER_E_STORAGE;
    }
    ledger_err_t rc =
        channel_queue(to, setoff_version(to), decision ? MSG_SETOFF_DECISION : MSG_SETOFF_RELAY,
                      body, body_len, signed_msg, signed_len);
    free(body);
    *seq = to->sent_seq;
    return rc;
}

/* Opens our leg on the edge with `with` (direction out: we owe it). An id the channel uses for
 * something else (a peer that named a payment with it first), or a balance that would leave
 * int64, opens nothing: logged, *opened false (NULL: not asked), and the transaction goes on,
 * so that no peer can stall a channel. */
static ledger_err_t open_leg_if_free(channel_t *with, const setoff_terms_t *t,
                                     const uint8_t hash[SETOFF_HASH_BYTES], direction_t d,
                                     uint64_t seq, const uint8_t *evidence, size_t evidence_len,
                                     bool *opened)
{
    ledger_setoff_leg_t leg;
    memset(&leg, 0, sizeof leg);
    snprintf(leg.peer, sizeof leg.peer, "%s", with->peer->card.name);
    snprintf(leg.setoff_id, sizeof leg.setoff_id, "%s", t->setoff_id);
    leg.direction = d;
    leg.amount_minor = t->amount_minor;
    snprintf(leg.currency, sizeof leg.currency, "%s", t->currency);
    memcpy(leg.terms_hash, hash, SETOFF_HASH_BYTES);
    leg.created_unix_ms = t->created_unix_ms;
    ledger_err_t rc = ledger_setoff_leg_open(with->ctx.ledger, &leg, seq, evidence, evidence_len);
    if (opened != NULL) {
        *opened = rc == LEDGER_OK;
    }
    if (rc == LEDGER_E_CONFLICT || rc == LEDGER_E_OVERFLOW) {
        log_event(with->ctx.node_name, with->peer->card.name, t->setoff_id,
                  "set-off leg not recorded: %s", ledger_last_error(with->ctx.ledger));
        rc = LEDGER_OK;
    }
    return rc;
}

static ledger_err_t open_leg(channel_t *with, const setoff_terms_t *t,
                             const uint8_t hash[SETOFF_HASH_BYTES], direction_t d, uint64_t seq,
                             const uint8_t *evidence, size_t evidence_len)
{
    return open_leg_if_free(with, t, hash, d, seq, evidence, evidence_len, NULL);
}

/* Closes our leg with `with` if we hold it pending; one we hold otherwise (edited books), or
 * one that would take a balance out of int64, is logged and left: the decision still goes on
 * round the ring. */
static ledger_err_t close_leg(channel_t *with, const char *id, bool commit, const char *reason,
                              uint64_t seq, const uint8_t *evidence, size_t evidence_len)
{
    bool closed = false;
    ledger_err_t rc = ledger_setoff_leg_close(with->ctx.ledger, with->peer->card.name, id, commit,
                                              reason, seq, evidence, evidence_len, &closed);
    if (rc == LEDGER_E_STATE || rc == LEDGER_E_OVERFLOW) {
        log_event(with->ctx.node_name, with->peer->card.name, id, "set-off leg not closed: %s",
                  ledger_last_error(with->ctx.ledger));
        rc = LEDGER_OK;
    }
    return rc;
}

/* A new record for terms we take part in at position p. */
static void record_from(ledger_setoff_t *rec, const setoff_message_t *m, int p, int64_t now_ms)
{
    memset(rec, 0, sizeof *rec);
    snprintf(rec->setoff_id, sizeof rec->setoff_id, "%s", m->terms.setoff_id);
    rec->terms = m->terms_bytes; /* borrowed: never released through rec */
    rec->terms_len = m->terms_len;
    memcpy(rec->terms_signature, m->terms_signature, sizeof rec->terms_signature);
    rec->position = p;
    snprintf(rec->currency, sizeof rec->currency, "%s", m->terms.currency);
    rec->amount_minor = m->terms.amount_minor;
    rec->deadline_ms = m->terms.deadline_unix_ms;
    rec->state = SETOFF_VOTING;
    rec->created_ms = now_ms;
}

/* ---- Deciding (the proposer) ---- */

/* The record takes the verdict `m` carries (commit, or abort with its reason), is written, and
 * the node is told (for `--wait`, the asking round's too). */
static ledger_err_t record_decided(channel_t *ch, ledger_setoff_t *rec, const setoff_message_t *m)
{
    uint8_t *verdict = malloc(m->verdict_len + crypto_sign_BYTES);
    if (verdict == NULL) {
        return LEDGER_E_STORAGE;
    }
    memcpy(verdict, m->verdict_bytes, m->verdict_len);
    memcpy(verdict + m->verdict_len, m->verdict_signature, crypto_sign_BYTES);
    free(rec->verdict);
    rec->verdict = verdict;
    rec->verdict_len = m->verdict_len + crypto_sign_BYTES;
    bool commit = m->verdict.commit;
    const char *reason = commit ? "" : m->verdict.reason;
    rec->state = commit ? SETOFF_COMMITTED : SETOFF_ABORTED;
    snprintf(rec->reason, sizeof rec->reason, "%s", reason);
    rec->decided_ms = ch->wall_ms;
    ledger_err_t rc = ledger_setoff_put(ch->ctx.ledger, rec);
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, NULL, rec->setoff_id, "set-off %s%s%s",
                  commit ? "committed" : "aborted", commit ? "" : " ", reason);
        notify(ch, rec->setoff_id, commit, reason);
        if (rec->asked_by[0] != '\0') {
            notify(ch, rec->asked_by, commit, reason);
        }
    }
    return rc;
}

/* Logs and sends the decision (3.12.3): the record, the decision to our successor `next` (every
 * vote with a commit), our leg with it closed by that message. `m` holds the terms and, for a
 * commit, every vote. `rec` is the proposer's record (its buffers the caller's). */
static ledger_err_t decide(channel_t *next, ledger_setoff_t *rec, setoff_message_t *m, bool commit,
                           const char *reason)
{
    uint8_t hash[SETOFF_HASH_BYTES];
    setoff_terms_hash(m->terms_bytes, m->terms_len, hash);
    setoff_verdict_t v;
    memset(&v, 0, sizeof v);
    memcpy(v.terms_hash, hash, sizeof hash);
    v.commit = commit;
    snprintf(v.reason, sizeof v.reason, "%s", commit ? "" : reason);
    m->verdict_len = setoff_verdict_encode(&v, m->verdict_bytes);
    if (m->verdict_len == 0 ||
        setoff_sign(SETOFF_VERDICT_DOMAIN, m->verdict_bytes, m->verdict_len,
                    next->ctx.self->sign_secret, m->verdict_signature) != 0) {
        return LEDGER_E_STORAGE;
    }
    m->verdict = v;
    if (!commit) {
        m->n_votes = 0; /* an abort carries no votes */
    }
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    ledger_err_t rc = queue_setoff(next, m, true, &rec->decision_seq, &signed_msg, &signed_len);
    if (rc == LEDGER_OK) {
        rc = close_leg(next, rec->setoff_id, commit, reason, rec->decision_seq, signed_msg,
                       signed_len);
    }
    free(signed_msg);
    return rc == LEDGER_OK ? record_decided(next, rec, m) : rc;
}

/* Starts set-off `t` as its proposer (position 0) with `next` (ring[1]) and `prev` (ring[n-1]):
 * signs the terms, votes on our books, records it and sends the relay; asked_by names the asking
 * round it follows ("" none). *why: NULL when sent, else our own refusal's reason (nothing
 * written). */
static ledger_err_t propose(channel_t *next, channel_t *prev, const setoff_terms_t *t,
                            const char *asked_by, const char **why)
{
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    m.terms = *t;
    *why = NULL;
    if (setoff_terms_encode(t, &m.terms_bytes, &m.terms_len) != 0) {
        return LEDGER_E_STORAGE;
    }
    uint8_t hash[SETOFF_HASH_BYTES];
    setoff_terms_hash(m.terms_bytes, m.terms_len, hash);
    const char *no = NULL;
    int64_t most = 0;
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    ledger_setoff_t rec;
    record_from(&rec, &m, 0, next->wall_ms);
    snprintf(rec.asked_by, sizeof rec.asked_by, "%s", asked_by);
    ledger_err_t rc = judge(next, next, prev, t, &no, &most);
    if (rc != LEDGER_OK || no != NULL) {
        *why = no;
        goto done;
    }
    if (setoff_sign(SETOFF_TERMS_DOMAIN, m.terms_bytes, m.terms_len, next->ctx.self->sign_secret,
                    m.terms_signature) != 0 ||
        sign_vote(next, hash, 0, t->ring[0].key_id, NULL, most, &m.votes[0]) != 0) {
        rc = LEDGER_E_STORAGE;
        goto done;
    }
    memcpy(rec.terms_signature, m.terms_signature, sizeof rec.terms_signature);
    m.n_votes = 1;
    if ((rc = queue_setoff(next, &m, false, &rec.relay_seq, &signed_msg, &signed_len)) !=
        LEDGER_OK) {
        goto done;
    }
    if (t->amount_minor > 0 && (rc = open_leg(next, t, hash, DIRECTION_OUT, rec.relay_seq,
                                              signed_msg, signed_len)) != LEDGER_OK) {
        goto done;
    }
    if ((rec.our_vote = vote_blob(&m.votes[0], &rec.our_vote_len)) == NULL) {
        rc = LEDGER_E_STORAGE;
        goto done;
    }
    rc = ledger_setoff_put(next->ctx.ledger, &rec);
    log_event(next->ctx.node_name, NULL, t->setoff_id,
              "set-off proposed: %zu members, %" PRId64 " %s%s", t->n, t->amount_minor, t->currency,
              t->amount_minor == 0 ? " (asking round)" : "");
done:
    free(rec.our_vote);
    free(signed_msg);
    free(m.terms_bytes);
    return rc;
}

ledger_err_t channel_setoff_propose(channel_t *next, channel_t *prev, const setoff_terms_t *t,
                                    const char **why)
{
    assert(next != NULL && prev != NULL && t != NULL && why != NULL);
    return propose(next, prev, t, "", why);
}

/* Keeps the relay's body in the record (for the listing and the audit). */
static ledger_err_t keep_relay(ledger_setoff_t *rec, const envelope_message_t *msg)
{
    free(rec->votes);
    rec->votes = malloc(msg->body_len);
    if (rec->votes == NULL) {
        return LEDGER_E_STORAGE;
    }
    memcpy(rec->votes, msg->body, msg->body_len);
    rec->votes_len = msg->body_len;
    return LEDGER_OK;
}

/* The asking round came back (3.12.5): recorded `asked`, and proposed again with the smallest
 * answer when every member answered. */
static ledger_err_t asking_returned(channel_t *ch, setoff_message_t *m, ledger_setoff_t *rec,
                                    int refusal)
{
    const setoff_terms_t *t = &m->terms;
    bool all_yes = refusal < 0 && m->n_votes == t->n;
    int64_t least = CORRIDOR_AMOUNT_MINOR_MAX;
    for (size_t i = 0; all_yes && i < m->n_votes; i++) {
        least = m->votes[i].ballot.most_minor < least ? m->votes[i].ballot.most_minor : least;
    }
    rec->state = SETOFF_ASKED;
    snprintf(rec->reason, sizeof rec->reason, "%s", all_yes ? "" : m->votes[refusal].ballot.reason);
    rec->decided_ms = ch->wall_ms;
    ledger_err_t rc = ledger_setoff_put(ch->ctx.ledger, rec);
    channel_t *next = channel_of(ch, &t->ring[1]);
    const char *why = rec->reason[0] != '\0' ? rec->reason : REASON_NO_DEBT;
    if (rc == LEDGER_OK && all_yes && least > 0 && next != NULL) {
        setoff_terms_t again = *t; /* the same ring and keys, a fresh id and deadline */
        uetr_generate(again.setoff_id);
        again.amount_minor = least;
        again.created_unix_ms = ch->wall_ms;
        again.deadline_unix_ms = ch->wall_ms + (t->deadline_unix_ms - t->created_unix_ms);
        why = NULL;
        rc = propose(next, ch, &again, t->setoff_id, &why);
    }
    if (rc == LEDGER_OK && why != NULL) {
        notify(ch, t->setoff_id, false, why);
    }
    return rc;
}

/* The proposer's relay came back from ring[n-1] (3.12.3): ring[n-1]'s leg, then the decision,
 * unless the deadline decided already (the leg then waits for that decision to come round). */
static ledger_err_t relay_returned(channel_t *ch, const envelope_message_t *msg,
                                   setoff_message_t *m, ledger_setoff_t *rec, int refusal)
{
    const setoff_terms_t *t = &m->terms;
    ledger_err_t rc = keep_relay(rec, msg);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (t->amount_minor == 0) {
        return asking_returned(ch, m, rec, refusal);
    }
    uint8_t hash[SETOFF_HASH_BYTES];
    setoff_terms_hash(m->terms_bytes, m->terms_len, hash);
    bool all_yes = refusal < 0, opened = false; /* then ring[n-1] voted yes, last */
    if (all_yes && (rc = open_leg_if_free(ch, t, hash, DIRECTION_IN, msg->sequence, msg->evidence,
                                          msg->evidence_len, &opened)) != LEDGER_OK) {
        return rc;
    }
    if (rec->state != SETOFF_VOTING) {
        return ledger_setoff_put(ch->ctx.ledger, rec);
    }
    channel_t *next = channel_of(ch, &t->ring[1]);
    bool commit = all_yes && opened && ch->wall_ms < t->deadline_unix_ms;
    const char *reason = commit     ? ""
                         : !all_yes ? m->votes[refusal].ballot.reason
                         : !opened  ? REASON_TAKEN
                                    : REASON_LATE;
    if (next == NULL) { /* our successor is no longer a peer: nothing can be sent */
        rec->state = SETOFF_ABORTED;
        snprintf(rec->reason, sizeof rec->reason, "%s", REASON_NOT_REACHABLE);
        return ledger_setoff_put(ch->ctx.ledger, rec);
    }
    next->wall_ms = ch->wall_ms;
    return decide(next, rec, m, commit, reason);
}

/* Decodes a relay or decision from our predecessor and checks its terms (3.12.2 step 1): our
 * position, with *m decoded and `hash` its terms' H13; -1 when refused (logged, counted).
 * *keys_ok (a relay's): every member that is a peer of ours is named with a key its history
 * holds valid; a decision's terms are the ones we took with the relay. */
static int open_message(channel_t *ch, const envelope_message_t *msg, bool decision,
                        setoff_message_t *m, uint8_t hash[static SETOFF_HASH_BYTES], bool *keys_ok)
{
    const char *why = NULL;
    if (!setoff_message_decode(msg->body, msg->body_len, decision, m)) {
        refuse(ch, msg, NULL, "it does not decode");
        return -1;
    }
    int p = check_terms(ch, m, &why);
    if (p < 0) {
        refuse(ch, msg, m->terms.setoff_id, why);
        return -1;
    }
    setoff_terms_hash(m->terms_bytes, m->terms_len, hash);
    *keys_ok = decision || known_keys_agree(ch, msg, &m->terms, p);
    return p;
}

ledger_err_t setoffs_apply_relay(channel_t *ch, const envelope_message_t *msg)
{
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    ledger_setoff_t rec;
    memset(&rec, 0, sizeof rec);
    bool found = false;
    ledger_err_t rc = LEDGER_OK;
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    uint8_t hash[SETOFF_HASH_BYTES];
    const setoff_terms_t *t = &m.terms;
    bool keys_ok = true;
    int p = open_message(ch, msg, false, &m, hash, &keys_ok);
    if (p < 0) {
        goto done;
    }
    int refusal = -1;
    size_t expected = p == 0 ? t->n : (size_t)p;
    if (!votes_in_order(&m, hash, &refusal) || (refusal < 0 && m.n_votes != expected) ||
        m.n_votes > expected || m.n_votes == 0) {
        refuse(ch, msg, t->setoff_id, "its votes are not the valid votes of the members before us");
        goto done;
    }
    if ((rc = ledger_setoff_get(ch->ctx.ledger, t->setoff_id, &rec, &found)) != LEDGER_OK) {
        goto done;
    }
    if (found && (rec.terms_len != m.terms_len ||
                  memcmp(rec.terms, m.terms_bytes, m.terms_len) != 0 || rec.votes != NULL)) {
        refuse(ch, msg, t->setoff_id,
               rec.votes != NULL ? "we had its relay already" : "the id names other terms here");
        goto done;
    }
    if (p == 0) {
        if (!found) {
            refuse(ch, msg, t->setoff_id, "we never proposed it");
        } else {
            rc = relay_returned(ch, msg, &m, &rec, refusal);
        }
        goto done;
    }
    if (found) { /* only a relay makes a member's record */
        refuse(ch, msg, t->setoff_id, "the id is known here already");
        goto done;
    }
    record_from(&rec, &m, p, ch->wall_ms);
    rec.terms = malloc(m.terms_len);
    if (rec.terms == NULL || (rc = keep_relay(&rec, msg)) != LEDGER_OK) {
        rc = LEDGER_E_STORAGE;
        goto done;
    }
    memcpy(rec.terms, m.terms_bytes, m.terms_len);
    if (t->amount_minor == 0) {
        rec.state = SETOFF_ASKED; /* an asking round is never decided (3.12.5) */
    }
    /* W's yes is the last vote when nobody refused: its leg with us is pending at W. Whatever
     * we answer, at most SETOFF_OPEN_MAX of its legs wait here (a refusal for a past deadline or
     * a currency must not let a peer pile them up: their sum is read in int64) */
    bool prev_voted = refusal < 0 && t->amount_minor > 0;
    int64_t open_prev = 0;
    if (prev_voted && (rc = ledger_setoff_open_legs(ch->ctx.ledger, ch->peer->card.name,
                                                    &open_prev)) != LEDGER_OK) {
        goto done;
    }
    prev_voted = prev_voted && open_prev < SETOFF_OPEN_MAX;
    channel_t *next = channel_of(ch, neighbour(t, p, +1));
    if (next == NULL || !takes_setoffs(next) ||
        (!peer_key_is(next, neighbour(t, p, +1), next->applied_seq) &&
         !peer_key_is(next, neighbour(t, p, +1), next->applied_seq + 1))) {
        /* nowhere to send it on: the proposer's deadline aborts it, and the abort closes W's
         * leg here */
        log_event(ch->ctx.node_name, ch->peer->card.name, t->setoff_id,
                  "set-off relay cannot go on to %s (no channel, no set-off, or another key)",
                  neighbour(t, p, +1)->code);
        if (prev_voted) {
            rc = open_leg(ch, t, hash, DIRECTION_IN, msg->sequence, msg->evidence,
                          msg->evidence_len);
        }
        rc = rc == LEDGER_OK ? ledger_setoff_put(ch->ctx.ledger, &rec) : rc;
        goto done;
    }
    if (refusal >= 0) { /* an earlier member refused: on to the proposer, no vote of ours */
        rc = queue_setoff(next, &m, false, &rec.relay_seq, NULL, NULL);
        if (rc == LEDGER_OK) {
            rc = ledger_setoff_put(ch->ctx.ledger, &rec);
        }
        goto done;
    }
    const char *no = NULL;
    int64_t most = 0; /* judged before W's leg is opened: its id is free, its amount not ours */
    if ((rc = judge(ch, next, ch, t, &no, &most)) != LEDGER_OK) {
        goto done;
    }
    if (!keys_ok) { /* a member we know named with a key it does not hold: we vote no */
        no = REASON_KEYS;
        most = 0;
    }
    if (prev_voted && (rc = open_leg(ch, t, hash, DIRECTION_IN, msg->sequence, msg->evidence,
                                     msg->evidence_len)) != LEDGER_OK) {
        goto done;
    }
    if (sign_vote(ch, hash, p, t->ring[p].key_id, no, most, &m.votes[m.n_votes]) != 0) {
        rc = LEDGER_E_STORAGE;
        goto done;
    }
    rec.our_vote = vote_blob(&m.votes[m.n_votes], &rec.our_vote_len);
    m.n_votes++;
    if (rec.our_vote == NULL || (rc = queue_setoff(next, &m, false, &rec.relay_seq, &signed_msg,
                                                   &signed_len)) != LEDGER_OK) {
        rc = rc != LEDGER_OK ? rc : LEDGER_E_STORAGE;
        goto done;
    }
    if (no == NULL && t->amount_minor > 0) {
        rc = open_leg(next, t, hash, DIRECTION_OUT, rec.relay_seq, signed_msg, signed_len);
    }
    if (no != NULL) {
        snprintf(rec.reason, sizeof rec.reason, "%s", no);
        log_event(ch->ctx.node_name, NULL, t->setoff_id, "set-off refused: %s", no);
    }
    if (rc == LEDGER_OK) {
        rc = ledger_setoff_put(ch->ctx.ledger, &rec);
    }
done:
    free(signed_msg);
    ledger_setoff_release(&rec);
    setoff_message_release(&m);
    return rc;
}

ledger_err_t setoffs_apply_decision(channel_t *ch, const envelope_message_t *msg)
{
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    ledger_setoff_t rec;
    memset(&rec, 0, sizeof rec);
    bool found = false;
    ledger_err_t rc = LEDGER_OK;
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    uint8_t hash[SETOFF_HASH_BYTES];
    const setoff_terms_t *t = &m.terms;
    bool keys_ok = true;
    int p = open_message(ch, msg, true, &m, hash, &keys_ok);
    if (p < 0) {
        goto done;
    }
    int refusal = -1;
    if (!setoff_verify(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len, m.verdict_signature,
                       t->ring[0].signing_key) ||
        memcmp(m.verdict.terms_hash, hash, SETOFF_HASH_BYTES) != 0) {
        refuse(ch, msg, t->setoff_id, "the proposer's verdict does not verify for these terms");
        goto done;
    }
    if (t->amount_minor == 0 || (m.verdict.commit && (!votes_in_order(&m, hash, &refusal) ||
                                                      refusal >= 0 || m.n_votes != t->n))) {
        refuse(ch, msg, t->setoff_id, "a commit without every member's yes vote");
        goto done;
    }
    if ((rc = ledger_setoff_get(ch->ctx.ledger, t->setoff_id, &rec, &found)) != LEDGER_OK) {
        goto done;
    }
    if (!found || rec.terms_len != m.terms_len ||
        memcmp(rec.terms, m.terms_bytes, m.terms_len) != 0 || rec.votes == NULL) {
        refuse(ch, msg, t->setoff_id, "no relay of these terms came first");
        goto done;
    }
    const char *reason = m.verdict.commit ? "" : m.verdict.reason;
    if (p == 0) { /* back at the proposer: ring[n-1]'s leg */
        bool same = rec.verdict != NULL && rec.verdict_len == m.verdict_len + crypto_sign_BYTES &&
                    memcmp(rec.verdict, m.verdict_bytes, m.verdict_len) == 0;
        if (!same) {
            refuse(ch, msg, t->setoff_id, "not the verdict we gave");
            goto done;
        }
        bool closed = false;
        rc = ledger_setoff_leg_close(ch->ctx.ledger, ch->peer->card.name, t->setoff_id,
                                     m.verdict.commit, reason, msg->sequence, msg->evidence,
                                     msg->evidence_len, &closed);
        if (rc == LEDGER_E_STATE) {
            refuse(ch, msg, t->setoff_id, "its leg is decided already");
            rc = LEDGER_OK;
        }
        goto done;
    }
    if (rec.state != SETOFF_VOTING) {
        refuse(ch, msg, t->setoff_id, "we had its decision already");
        goto done;
    }
    /* both our legs in this transaction: W's by its message, ours with S by the one we send on */
    if ((rc = close_leg(ch, t->setoff_id, m.verdict.commit, reason, msg->sequence, msg->evidence,
                        msg->evidence_len)) != LEDGER_OK) {
        goto done;
    }
    channel_t *next = channel_of(ch, neighbour(t, p, +1));
    if (rec.relay_seq != 0 && next != NULL) { /* it took our relay: it takes the decision */
        if ((rc = queue_setoff(next, &m, true, &rec.decision_seq, &signed_msg, &signed_len)) !=
                LEDGER_OK ||
            (rc = close_leg(next, t->setoff_id, m.verdict.commit, reason, rec.decision_seq,
                            signed_msg, signed_len)) != LEDGER_OK) {
            goto done;
        }
    }
    rc = record_decided(ch, &rec, &m);
done:
    free(signed_msg);
    ledger_setoff_release(&rec);
    setoff_message_release(&m);
    return rc;
}

const uint8_t *channel_peer_sign_public(const channel_t *ch)
{
    return ch->keys->sign_public;
}

/* ---- The proposer's deadline ---- */

ledger_err_t channel_setoff_expire(channel_t *any, int64_t wall_ms, size_t *aborted,
                                   int64_t *next_due)
{
    char ids[SETOFF_DUE_MAX][CORRIDOR_UETR_LEN + 1];
    size_t n = 0;
    *aborted = 0;
    ledger_err_t rc =
        ledger_setoff_due(any->ctx.ledger, wall_ms, ids, SETOFF_DUE_MAX, &n, next_due);
    for (size_t i = 0; rc == LEDGER_OK && i < n; i++) {
        ledger_setoff_t rec;
        bool found = false;
        setoff_message_t m;
        memset(&m, 0, sizeof m);
        if ((rc = ledger_setoff_get(any->ctx.ledger, ids[i], &rec, &found)) != LEDGER_OK ||
            !found) {
            continue;
        }
        channel_t *next = NULL;
        if (setoff_terms_decode(rec.terms, rec.terms_len, &m.terms)) {
            next = channel_of(any, &m.terms.ring[1]);
        }
        if (next == NULL || m.terms.amount_minor == 0) {
            /* nothing to send it on (terms damaged, a peer removed): aborted here alone */
            rec.state = SETOFF_ABORTED;
            snprintf(rec.reason, sizeof rec.reason, "%s", REASON_LATE);
            rec.decided_ms = wall_ms;
            rc = ledger_setoff_put(any->ctx.ledger, &rec);
        } else {
            m.terms_bytes = rec.terms;
            m.terms_len = rec.terms_len;
            memcpy(m.terms_signature, rec.terms_signature, sizeof m.terms_signature);
            next->wall_ms = wall_ms;
            rc = decide(next, &rec, &m, false, REASON_LATE);
        }
        *aborted += rc == LEDGER_OK ? 1 : 0;
        ledger_setoff_release(&rec);
    }
    return rc;
}
