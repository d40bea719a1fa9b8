/*
 * Multilateral set-off on the channels (proto/PROTOCOL.md 3.12): the relay goes forward round
 * the ring, each member voting on its own books; the proposer's decision comes backward. A
 * member's step touches two channels (the one the message came on and the one it goes on), so
 * it finds the other through the node (channel_ctx_t.channel_of) and queues there in the same
 * transaction: a message is forwarded exactly when the books that made it commit.
 *
 * Nothing here decides on a clock but the proposer's deadline (setoffs_expire): a member's legs
 * stay pending until the proposer's signed verdict reaches it.
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
static bool peer_key_is(const channel_t *ch, const setoff_member_t *m)
{
    uint8_t card_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(ch->peer->card.sign_public, card_id);
    return memcmp(m->key_id, ch->keys->key_id, IDENTITY_KEY_ID_BYTES) == 0 ||
           memcmp(m->key_id, ch->keys->previous_key_id, IDENTITY_KEY_ID_BYTES) == 0 ||
           memcmp(m->key_id, card_id, IDENTITY_KEY_ID_BYTES) == 0;
}

/* The channel of our neighbour `m`, or NULL (not a configured peer). */
static channel_t *channel_of(channel_t *ch, const setoff_member_t *m)
{
    return ch->ctx.channel_of != NULL ? ch->ctx.channel_of(ch->ctx.arg, m->code) : NULL;
}

/* Whether set-off messages may go on `to` (3.12): its peer offered CHANNEL_FEATURE_SETOFF in its
 * latest Hello, or we have had no Hello of it since we started (peer_features 0: a program with
 * set-offs offers other features too). A member that restarted gets a set-off message on one
 * channel once that channel is UP, maybe before the Hello of the one it must go on; dropped then,
 * the relay waited for the deadline and the decision never reached the members before us, whose
 * legs stayed pending for ever. What is queued leaves once the channel is UP. */
static bool takes_setoffs(const channel_t *to)
{
    return to->peer_features == 0 || channel_peer_offers(to, CHANNEL_FEATURE_SETOFF);
}

/* Checks a decoded message against what the terms and the channels say (3.12.2 step 1): the
 * proposer's H10, our place, the sender `from` (+1: our successor, -1: our predecessor), its key
 * the one that signed the message, ours our own. The position, or -1 with *why. */
static int check_terms(channel_t *ch, const envelope_message_t *msg, const setoff_message_t *m,
                       int from, const char **why)
{
    const setoff_terms_t *t = &m->terms;
    int p = setoff_position(t, ch->ctx.config->name);
    *why = NULL;
    if (!setoff_verify(SETOFF_TERMS_DOMAIN, m->terms_bytes, m->terms_len, m->terms_signature,
                       t->ring[0].signing_key)) {
        *why = "the proposer's signature over the terms does not verify";
    } else if (p < 0) {
        *why = "we are not on the ring";
    } else if (strcmp(neighbour(t, p, from)->code, ch->peer->card.name) != 0) {
        *why = from > 0 ? "the sender is not our successor on the ring"
                        : "the sender is not our predecessor on the ring";
    } else if (memcmp(neighbour(t, p, from)->key_id, msg->author_key_id, IDENTITY_KEY_ID_BYTES) !=
               0) {
        *why = "the ring names another key for the sender than the one that signed the message";
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
    int64_t owed_next = 0, owed_by_prev = 0, pending = 0, pend_out = 0, pend_in = 0;
    ledger_err_t rc = ledger_position(l, next, currency, &owed_next, &pending);
    if (rc == LEDGER_OK) {
        rc = ledger_position(l, prev, currency, &owed_by_prev, &pending);
    }
    if (rc == LEDGER_OK) {
        rc = ledger_setoff_pending(l, next, currency, DIRECTION_OUT, &pend_out);
    }
    if (rc == LEDGER_OK) {
        rc = ledger_setoff_pending(l, prev, currency, DIRECTION_IN, &pend_in);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    /* net(next) < 0: we owe it; net(prev) > 0: it owes us */
    __int128 a = -(__int128)owed_next - pend_out, b = (__int128)owed_by_prev - pend_in;
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

/* Signs our ballot at position p into a vote. */
static int sign_vote(channel_t *ch, const uint8_t hash[SETOFF_HASH_BYTES], int p, const char *no,
                     int64_t most, setoff_vote_t *v)
{
    setoff_ballot_t b;
    memset(&b, 0, sizeof b);
    memcpy(b.terms_hash, hash, SETOFF_HASH_BYTES);
    b.position = (uint32_t)p;
    b.yes = no == NULL;
    snprintf(b.reason, sizeof b.reason, "%s", no != NULL ? no : "");
    b.most_minor = most;
    return setoff_vote_make(&b, ch->ctx.self->sign_secret, v);
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

/* Opens our leg on the edge with `with` (direction out: we owe it). */
static ledger_err_t open_leg(channel_t *with, const setoff_terms_t *t,
                             const uint8_t hash[SETOFF_HASH_BYTES], direction_t d, uint64_t seq,
                             const uint8_t *evidence, size_t evidence_len)
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
    return ledger_setoff_leg_open(with->ctx.ledger, &leg, seq, evidence, evidence_len);
}

static ledger_err_t close_leg(channel_t *with, const char *id, bool commit, const char *reason,
                              uint64_t seq, const uint8_t *evidence, size_t evidence_len)
{
    bool closed = false;
    return ledger_setoff_leg_close(with->ctx.ledger, with->peer->card.name, id, commit, reason, seq,
                                   evidence, evidence_len, &closed);
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
    rec->state = SETOFF_VOTING;
    rec->created_ms = now_ms;
}

/* ---- Deciding (the proposer) ---- */

/* Logs and sends the decision (3.12.3): the record, the decision to our predecessor `prev` with
 * every vote for a commit, our leg with it closed by that message. `m` holds the terms and, for a
 * commit, every vote. `rec` is the proposer's record (its buffers the caller's). */
static ledger_err_t decide(channel_t *prev, ledger_setoff_t *rec, setoff_message_t *m, bool commit,
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
                    prev->ctx.self->sign_secret, m->verdict_signature) != 0) {
        return LEDGER_E_STORAGE;
    }
    m->verdict = v;
    if (!commit) {
        m->n_votes = 0; /* an abort carries no votes */
    }
    uint64_t seq = 0;
    uint8_t *signed_msg = NULL, *verdict = NULL;
    size_t signed_len = 0;
    ledger_err_t rc = queue_setoff(prev, m, true, &seq, &signed_msg, &signed_len);
    if (rc == LEDGER_OK) {
        rc = close_leg(prev, rec->setoff_id, commit, reason, seq, signed_msg, signed_len);
    }
    if (rc == LEDGER_OK && (verdict = malloc(m->verdict_len + crypto_sign_BYTES)) == NULL) {
        rc = LEDGER_E_STORAGE;
    }
    if (rc == LEDGER_OK) {
        memcpy(verdict, m->verdict_bytes, m->verdict_len);
        memcpy(verdict + m->verdict_len, m->verdict_signature, crypto_sign_BYTES);
        rec->verdict = verdict;
        rec->verdict_len = m->verdict_len + crypto_sign_BYTES;
        rec->decision_sent = signed_msg;
        rec->decision_sent_len = signed_len;
        rec->decision_seq = seq;
        rec->state = commit ? SETOFF_COMMITTED : SETOFF_ABORTED;
        snprintf(rec->reason, sizeof rec->reason, "%s", commit ? "" : reason);
        rec->decided_ms = prev->wall_ms;
        rc = ledger_setoff_put(prev->ctx.ledger, rec);
        rec->verdict = rec->decision_sent = NULL;
        rec->verdict_len = rec->decision_sent_len = 0;
    }
    free(verdict);
    free(signed_msg);
    if (rc == LEDGER_OK) {
        log_event(prev->ctx.node_name, NULL, rec->setoff_id, "set-off %s%s%s",
                  commit ? "committed" : "aborted", commit ? "" : " ", commit ? "" : reason);
        notify(prev, rec->setoff_id, commit, commit ? "" : reason);
        if (rec->asked_by[0] != '\0') {
            notify(prev, rec->asked_by, commit, commit ? "" : reason);
        }
    }
    return rc;
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
        sign_vote(next, hash, 0, NULL, most, &m.votes[0]) != 0) {
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

/* The proposer's relay came back (3.12.3): ring[n-1]'s leg, then the decision; an asking round
 * proposes again with the smallest answer (3.12.5). */
static ledger_err_t relay_returned(channel_t *ch, const envelope_message_t *msg,
                                   setoff_message_t *m, ledger_setoff_t *rec, int refusal)
{
    const setoff_terms_t *t = &m->terms;
    uint8_t hash[SETOFF_HASH_BYTES];
    setoff_terms_hash(m->terms_bytes, m->terms_len, hash);
    bool all_yes = refusal < 0 && m->n_votes == t->n;
    if (!all_yes && refusal < 0) {
        refuse(ch, msg, t->setoff_id, "the relay came back without every vote");
        return LEDGER_OK;
    }
    free(rec->votes);
    rec->votes = malloc(msg->body_len);
    if (rec->votes == NULL) {
        return LEDGER_E_STORAGE;
    }
    memcpy(rec->votes, msg->body, msg->body_len);
    rec->votes_len = msg->body_len;
    if (t->amount_minor == 0) { /* the asking round: no legs, no decision */
        int64_t least = CORRIDOR_AMOUNT_MINOR_MAX;
        for (size_t i = 0; all_yes && i < m->n_votes; i++) {
            least = m->votes[i].ballot.most_minor < least ? m->votes[i].ballot.most_minor : least;
        }
        rec->state = SETOFF_ASKED;
        snprintf(rec->reason, sizeof rec->reason, "%s",
                 all_yes ? "" : m->votes[refusal].ballot.reason);
        rec->decided_ms = ch->wall_ms;
        ledger_err_t rc = ledger_setoff_put(ch->ctx.ledger, rec);
        channel_t *next = channel_of(ch, &t->ring[1]);
        if (rc != LEDGER_OK || !all_yes || least <= 0 || next == NULL) {
            if (rc == LEDGER_OK) {
                notify(ch, t->setoff_id, false, rec->reason[0] != '\0' ? rec->reason : "AM04");
            }
            return rc;
        }
        setoff_terms_t again = *t;
        uetr_generate(again.setoff_id);
        again.amount_minor = least;
        again.created_unix_ms = ch->wall_ms;
        const char *why = NULL;
        rc = propose(next, ch, &again, t->setoff_id, &why);
        if (rc == LEDGER_OK && why != NULL) {
            notify(ch, t->setoff_id, false, why);
        }
        return rc;
    }
    ledger_err_t rc = LEDGER_OK;
    bool prev_voted = all_yes; /* ring[n-1] voted yes only when every vote is yes */
    if (prev_voted) {
        rc = open_leg(ch, t, hash, DIRECTION_IN, msg->sequence, msg->evidence, msg->evidence_len);
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (rec->state != SETOFF_VOTING) { /* decided before it came back: the deadline */
        if (prev_voted) {
            rc = close_leg(ch, t->setoff_id, rec->state == SETOFF_COMMITTED, rec->reason,
                           rec->decision_seq, rec->decision_sent, rec->decision_sent_len);
        }
        return rc == LEDGER_OK ? ledger_setoff_put(ch->ctx.ledger, rec) : rc;
    }
    bool commit = all_yes && ch->wall_ms < t->deadline_unix_ms;
    const char *reason = commit ? "" : all_yes ? REASON_LATE : m->votes[refusal].ballot.reason;
    return decide(ch, rec, m, commit, reason);
}

/* The decision we hold (rec, decided) never went on to our predecessor, whose relay has just come
 * on `ch`: it goes now, and rec keeps it as the evidence of our leg with that peer. A decision
 * can overtake the relay only when it aborts (a commit carries our own vote): no votes. `m`
 * holds the relay's terms. */
static ledger_err_t decision_again(channel_t *ch, setoff_message_t *m, ledger_setoff_t *rec)
{
    if (rec->verdict == NULL || rec->verdict_len <= crypto_sign_BYTES ||
        rec->verdict_len - crypto_sign_BYTES > sizeof m->verdict_bytes ||
        !setoff_verdict_decode(rec->verdict, rec->verdict_len - crypto_sign_BYTES, &m->verdict) ||
        m->verdict.commit) {
        log_event(ch->ctx.node_name, ch->peer->card.name, rec->setoff_id,
                  "set-off decision held without a verdict to send on");
        return LEDGER_OK;
    }
    m->verdict_len = rec->verdict_len - crypto_sign_BYTES;
    memcpy(m->verdict_bytes, rec->verdict, m->verdict_len);
    memcpy(m->verdict_signature, rec->verdict + m->verdict_len, crypto_sign_BYTES);
    m->n_votes = 0;
    free(rec->decision_sent);
    rec->decision_sent = NULL;
    return queue_setoff(ch, m, true, &rec->decision_seq, &rec->decision_sent,
                        &rec->decision_sent_len);
}

ledger_err_t setoffs_apply_relay(channel_t *ch, const envelope_message_t *msg)
{
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    ledger_setoff_t rec;
    memset(&rec, 0, sizeof rec);
    const char *why = NULL;
    bool found = false;
    ledger_err_t rc = LEDGER_OK;
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    if (!setoff_message_decode(msg->body, msg->body_len, false, &m)) {
        refuse(ch, msg, NULL, "it does not decode");
        goto done;
    }
    const setoff_terms_t *t = &m.terms;
    int p = check_terms(ch, msg, &m, -1, &why);
    if (p < 0) {
        refuse(ch, msg, t->setoff_id, why);
        goto done;
    }
    uint8_t hash[SETOFF_HASH_BYTES];
    setoff_terms_hash(m.terms_bytes, m.terms_len, hash);
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
            goto done;
        }
        rc = relay_returned(ch, msg, &m, &rec, refusal);
        goto done;
    }
    bool prev_voted = refusal < 0 && t->amount_minor > 0; /* the predecessor's yes is the last */
    if (!found) {
        ledger_setoff_t fresh;
        record_from(&fresh, &m, p, ch->wall_ms);
        rec = fresh;
        rec.terms = malloc(m.terms_len);
        if (rec.terms == NULL) {
            rc = LEDGER_E_STORAGE;
            goto done;
        }
        memcpy(rec.terms, m.terms_bytes, m.terms_len);
    }
    if ((rec.votes = malloc(msg->body_len)) == NULL) {
        rc = LEDGER_E_STORAGE;
        goto done;
    }
    memcpy(rec.votes, msg->body, msg->body_len);
    rec.votes_len = msg->body_len;
    if (rec.state != SETOFF_VOTING) { /* the decision overtook the relay (3.12.2 step 2) */
        if (rec.decision_sent == NULL && (rc = decision_again(ch, &m, &rec)) != LEDGER_OK) {
            goto done;
        }
        prev_voted = prev_voted && rec.decision_sent != NULL; /* no evidence: nothing to close */
        if (prev_voted && (rc = open_leg(ch, t, hash, DIRECTION_IN, msg->sequence, msg->evidence,
                                         msg->evidence_len)) != LEDGER_OK) {
            goto done;
        }
        if (prev_voted) {
            rc = close_leg(ch, t->setoff_id, rec.state == SETOFF_COMMITTED, rec.reason,
                           rec.decision_seq, rec.decision_sent, rec.decision_sent_len);
        }
        if (rc == LEDGER_OK) {
            rc = ledger_setoff_put(ch->ctx.ledger, &rec);
        }
        goto done;
    }
    channel_t *next = channel_of(ch, neighbour(t, p, +1));
    if (next == NULL || !takes_setoffs(next) || !peer_key_is(next, neighbour(t, p, +1))) {
        /* nowhere to send it on: the proposer's deadline aborts it */
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
    if ((rc = judge(ch, next, ch, t, &no, &most)) != LEDGER_OK ||
        (prev_voted && (rc = open_leg(ch, t, hash, DIRECTION_IN, msg->sequence, msg->evidence,
                                      msg->evidence_len)) != LEDGER_OK)) {
        goto done;
    }
    if (sign_vote(ch, hash, p, no, most, &m.votes[m.n_votes]) != 0) {
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
    const char *why = NULL;
    bool found = false;
    ledger_err_t rc = LEDGER_OK;
    uint8_t *signed_msg = NULL, *verdict = NULL;
    size_t signed_len = 0;
    if (!setoff_message_decode(msg->body, msg->body_len, true, &m)) {
        refuse(ch, msg, NULL, "it does not decode");
        goto done;
    }
    const setoff_terms_t *t = &m.terms;
    int p = check_terms(ch, msg, &m, +1, &why);
    if (p < 0) {
        refuse(ch, msg, t->setoff_id, why);
        goto done;
    }
    uint8_t hash[SETOFF_HASH_BYTES];
    setoff_terms_hash(m.terms_bytes, m.terms_len, hash);
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
    if (found && (rec.terms_len != m.terms_len || memcmp(rec.terms, m.terms_bytes, m.terms_len))) {
        refuse(ch, msg, t->setoff_id, "the id names other terms here");
        goto done;
    }
    const char *reason = m.verdict.commit ? "" : m.verdict.reason;
    if (p == 0) { /* back at the proposer: our leg with ring[1] */
        bool same = found && rec.verdict != NULL && rec.verdict_len == m.verdict_len + 64 &&
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
            refuse(ch, msg, t->setoff_id, "our leg is decided already");
            rc = LEDGER_OK;
        }
        goto done;
    }
    if (found && rec.state != SETOFF_VOTING) {
        refuse(ch, msg, t->setoff_id, "we had its decision already");
        goto done;
    }
    if (!found) { /* the decision overtook the relay: known from now on (3.12.2 step 2) */
        ledger_setoff_t fresh;
        record_from(&fresh, &m, p, ch->wall_ms);
        rec = fresh;
        if ((rec.terms = malloc(m.terms_len)) == NULL) {
            rc = LEDGER_E_STORAGE;
            goto done;
        }
        memcpy(rec.terms, m.terms_bytes, m.terms_len);
    }
    bool closed = false;
    if ((rc = ledger_setoff_leg_close(ch->ctx.ledger, ch->peer->card.name, t->setoff_id,
                                      m.verdict.commit, reason, msg->sequence, msg->evidence,
                                      msg->evidence_len, &closed)) != LEDGER_OK) {
        goto done;
    }
    channel_t *prev = channel_of(ch, neighbour(t, p, -1));
    if (prev != NULL && takes_setoffs(prev)) {
        if ((rc = queue_setoff(prev, &m, true, &rec.decision_seq, &signed_msg, &signed_len)) !=
                LEDGER_OK ||
            (rc = close_leg(prev, t->setoff_id, m.verdict.commit, reason, rec.decision_seq,
                            signed_msg, signed_len)) != LEDGER_OK) {
            goto done;
        }
    } else {
        log_event(ch->ctx.node_name, ch->peer->card.name, t->setoff_id,
                  "set-off decision cannot go on to %s", neighbour(t, p, -1)->code);
    }
    if ((verdict = malloc(m.verdict_len + crypto_sign_BYTES)) == NULL) {
        rc = LEDGER_E_STORAGE;
        goto done;
    }
    memcpy(verdict, m.verdict_bytes, m.verdict_len);
    memcpy(verdict + m.verdict_len, m.verdict_signature, crypto_sign_BYTES);
    free(rec.verdict);
    rec.verdict = verdict;
    rec.verdict_len = m.verdict_len + crypto_sign_BYTES;
    verdict = NULL;
    free(rec.decision_sent);
    rec.decision_sent = signed_msg;
    rec.decision_sent_len = signed_len;
    signed_msg = NULL;
    rec.state = m.verdict.commit ? SETOFF_COMMITTED : SETOFF_ABORTED;
    snprintf(rec.reason, sizeof rec.reason, "%s", reason);
    rec.decided_ms = ch->wall_ms;
    if ((rc = ledger_setoff_put(ch->ctx.ledger, &rec)) == LEDGER_OK) {
        log_event(ch->ctx.node_name, NULL, t->setoff_id, "set-off %s%s%s",
                  m.verdict.commit ? "committed" : "aborted", reason[0] != '\0' ? " " : "", reason);
        notify(ch, t->setoff_id, m.verdict.commit, reason);
    }
done:
    free(verdict);
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

typedef struct {
    channel_t *ch;
    int64_t wall_ms;
    char due[16][CORRIDOR_UETR_LEN + 1];
    size_t n_due;
} due_t;

static bool collect_due(const ledger_setoff_t *rec, void *arg)
{
    due_t *d = arg;
    setoff_terms_t t;
    if (rec->position == 0 && setoff_terms_decode(rec->terms, rec->terms_len, &t) &&
        t.amount_minor > 0 && d->wall_ms >= t.deadline_unix_ms) {
        snprintf(d->due[d->n_due], sizeof d->due[d->n_due], "%s", rec->setoff_id);
        d->n_due++;
    }
    return d->n_due < sizeof d->due / sizeof d->due[0];
}

ledger_err_t channel_setoff_expire(channel_t *any, int64_t wall_ms, size_t *aborted)
{
    due_t d = {.ch = any, .wall_ms = wall_ms};
    *aborted = 0;
    ledger_err_t rc = ledger_setoff_each(any->ctx.ledger, true, collect_due, &d);
    for (size_t i = 0; rc == LEDGER_OK && i < d.n_due; i++) {
        ledger_setoff_t rec;
        bool found = false;
        setoff_message_t m;
        memset(&m, 0, sizeof m);
        if ((rc = ledger_setoff_get(any->ctx.ledger, d.due[i], &rec, &found)) != LEDGER_OK ||
            !found) {
            continue;
        }
        if (setoff_terms_decode(rec.terms, rec.terms_len, &m.terms)) {
            channel_t *prev = channel_of(any, &m.terms.ring[m.terms.n - 1]);
            m.terms_bytes = rec.terms;
            m.terms_len = rec.terms_len;
            memcpy(m.terms_signature, rec.terms_signature, sizeof m.terms_signature);
            if (prev != NULL) {
                prev->wall_ms = wall_ms;
                rc = decide(prev, &rec, &m, false, REASON_LATE);
                *aborted += rc == LEDGER_OK ? 1 : 0;
            }
        }
        ledger_setoff_release(&rec);
    }
    return rc;
}
