/*
 * Settlement cycles on the channel (proto/PROTOCOL.md 3.11): closing a cycle at our present cut,
 * countersigning or disputing the peer's proposal, and the net settlement (pacs.009) that the
 * net debtor sends and a person at the creditor confirms.
 *
 * Everything here runs inside the loop's transaction, as the other message kinds do: a
 * proposal is applied in sequence order, so the peer's stream is applied exactly up to its cut
 * when we compute the statement, and what we answer is committed with what we stored.
 */
#include "channel.h"
#include "channel_private.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "cycle.h"
#include "cycles.h"
#include "log.h"
#include "reason.h"
#include "validate.h"

#define REASON_NO_AGREEMENT "AG01" /* no such closed cycle, currency or debtor (3.11.3) */
#define REASON_WRONG_AMOUNT "AM09" /* not the cycle's net */
#define CUT_WORK_BYTES      16     /* charged per settlement touched above a proposal's cut */

/* The Inner version our cycle messages are signed with: at least 2 (answers name bodies). */
static uint32_t cycle_version(const channel_t *ch)
{
    return ch->wire_version >= 2 ? ch->wire_version : 2;
}

/* The signing key the peer signed `msg` with. */
static const uint8_t *author_key(const channel_t *ch, const envelope_message_t *msg)
{
    if (memcmp(msg->author_key_id, ch->keys->key_id, IDENTITY_KEY_ID_BYTES) == 0) {
        return ch->keys->sign_public;
    }
    if (memcmp(msg->author_key_id, ch->keys->previous_key_id, IDENTITY_KEY_ID_BYTES) == 0) {
        return ch->keys->previous_sign_public;
    }
    return ch->keys->sign_public;
}

/* Tells the node that something it may wait for ended: a cycle ("cycle-N") or a net settlement
 * of ours, `done` (closed, confirmed) or refused with `reason`. */
static void notify(channel_t *ch, const char *key, bool done, const char *reason)
{
    if (ch->ctx.on_final == NULL) {
        return;
    }
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    out.status = done ? STATUS_SETTLED : STATUS_REJECTED;
    snprintf(out.reason, sizeof out.reason, "%s", reason);
    ch->ctx.on_final(ch->ctx.arg, ch->peer->card.name, key, &out);
}

static void notify_cycle(channel_t *ch, uint64_t cycle, bool done)
{
    char key[32];
    snprintf(key, sizeof key, "cycle-%" PRIu64, cycle);
    notify(ch, key, done, done ? "" : "CYCL");
}

/* Our statement of `cycle` at the cut (own_sent, peer_sent): *statement malloc'd. A statement we
 * cannot make (too far behind, a figure out of range) sets *why; the figures are kept in `figs`. */
static ledger_err_t statement_at(channel_t *ch, uint64_t cycle, uint64_t own_sent,
                                 uint64_t peer_sent, ledger_cycle_figures_t *figs,
                                 uint8_t **statement, size_t *len, const char **why)
{
    *statement = NULL;
    *why = NULL;
    ledger_err_t rc =
        ledger_cycle_at_cut(ch->ctx.ledger, ch->peer->card.name, own_sent, peer_sent, figs);
    if (rc == LEDGER_E_STATE || rc == LEDGER_E_OVERFLOW) {
        *why = ledger_last_error(ch->ctx.ledger);
        return LEDGER_OK;
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    cycle_view_t views[CYCLE_CURRENCIES_MAX];
    uint8_t digest[DIGEST_BYTES];
    uint64_t entries = 0;
    ledger_cycle_views(figs, views, digest, &entries);
    cycle_statement_t st;
    if (!cycle_statement_from_view(&st, ch->ctx.node_name, ch->peer->card.name, cycle, own_sent,
                                   peer_sent, views, figs->n, digest, entries)) {
        *why = "a net of the cycle leaves the int64 range";
        return LEDGER_OK;
    }
    return cycle_statement_encode(&st, statement, len) == 0 ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t channel_cycle_close(channel_t *ch, uint64_t *cycle, const char **why)
{
    channel_check_invariants(ch);
    assert(cycle != NULL && why != NULL && ledger_in_transaction(ch->ctx.ledger));
    const char *peer = ch->peer->card.name;
    *why = NULL;
    *cycle = 0;
    ledger_cycle_t last;
    bool found = false;
    ledger_err_t rc = ledger_cycle_latest(ch->ctx.ledger, peer, &last, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (found && last.state == CYCLE_CLOSING) {
        *cycle = last.cycle;
        *why = "a cycle is closing with this peer";
    } else if (found && (last.own_sent > ch->sent_seq || last.peer_sent > ch->applied_seq)) {
        *why = "the last cycle's cut lies ahead of this channel (a restored ledger?)";
    }
    uint64_t number = found ? last.cycle + 1 : 1;
    ledger_cycle_release(&last);
    if (*why != NULL) {
        return LEDGER_OK;
    }
    ledger_cycle_figures_t figs;
    uint8_t *statement = NULL, *body = NULL;
    size_t statement_len = 0, body_len = 0;
    uint8_t signature[crypto_sign_BYTES];
    rc = statement_at(ch, number, ch->sent_seq, ch->applied_seq, &figs, &statement, &statement_len,
                      why);
    if (rc != LEDGER_OK || *why != NULL) {
        goto cleanup;
    }
    rc = LEDGER_E_STORAGE;
    if (cycle_sign(statement, statement_len, ch->own->sign_secret, signature) != 0 ||
        cycle_proposal_encode(statement, statement_len, signature, &body, &body_len) != 0) {
        goto cleanup;
    }
    /* the cut is the present: the proposal itself is the next message on our stream */
    rc = ledger_cycle_propose(ch->ctx.ledger, peer, number, true, ch->sent_seq, ch->applied_seq,
                              statement, statement_len, signature, &figs);
    if (rc == LEDGER_OK) {
        rc = channel_queue(ch, cycle_version(ch), MSG_CYCLE_PROPOSAL, body, body_len, NULL, NULL);
    }
    if (rc == LEDGER_OK) {
        *cycle = number;
        log_event(ch->ctx.node_name, peer, NULL,
                  "cycle %" PRIu64 " proposed at %" PRIu64 "/%" PRIu64, number, ch->sent_seq - 1,
                  ch->applied_seq);
    }

cleanup:
    free(statement);
    free(body);
    channel_check_invariants(ch);
    return rc;
}

/* Answers a proposal we do not take: nothing stored; `hostile`: counted as a message the peer
 * had no right to send. */
static ledger_err_t refuse_proposal(channel_t *ch, uint64_t cycle, const char *error, bool hostile)
{
    ch->stats.unentitled += hostile ? 1 : 0;
    log_event(ch->ctx.node_name, ch->peer->card.name, NULL, "cycle proposal refused: %s", error);
    cycle_answer_t a = {.cycle = cycle};
    snprintf(a.error, sizeof a.error, "%s", error);
    uint8_t *body = NULL;
    size_t len = 0;
    if (cycle_answer_encode(&a, &body, &len) != 0) {
        return LEDGER_E_STORAGE;
    }
    ledger_err_t rc = channel_queue(ch, cycle_version(ch), MSG_CYCLE_ANSWER, body, len, NULL, NULL);
    free(body);
    return rc;
}

/* Whether a statement names this channel, with our and the peer's roles. */
static bool names_channel(const channel_t *ch, const cycle_statement_t *st)
{
    bool first = cycle_self_first(ch->ctx.node_name, ch->peer->card.name);
    return strcmp(st->first, first ? ch->ctx.node_name : ch->peer->card.name) == 0 &&
           strcmp(st->second, first ? ch->peer->card.name : ch->ctx.node_name) == 0;
}

/* The cut a statement states, from our view. */
static void cut_of(const channel_t *ch, const cycle_statement_t *st, uint64_t *own_sent,
                   uint64_t *peer_sent)
{
    bool first = cycle_self_first(ch->ctx.node_name, ch->peer->card.name);
    *own_sent = first ? st->first_sent : st->second_sent;
    *peer_sent = first ? st->second_sent : st->first_sent;
}

/* The cycle number the peer's proposal must carry, and whether ours of that number is closing;
 * the cut of the cycle before it (0, 0 for the first). */
static ledger_err_t next_expected(channel_t *ch, uint64_t *number, bool *ours_closing,
                                  uint64_t *prev_own, uint64_t *prev_peer)
{
    const char *peer = ch->peer->card.name;
    ledger_cycle_t last, before;
    bool found = false, found_before = false;
    *ours_closing = false;
    *prev_own = *prev_peer = 0;
    ledger_err_t rc = ledger_cycle_latest(ch->ctx.ledger, peer, &last, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    *number = found ? last.cycle + 1 : 1;
    if (found && last.state == CYCLE_CLOSING) {
        *number = last.cycle;
        *ours_closing = true;
        if (last.cycle > 1) {
            rc = ledger_cycle_get(ch->ctx.ledger, peer, last.cycle - 1, &before, &found_before);
        }
    } else if (found) {
        *prev_own = last.own_sent;
        *prev_peer = last.peer_sent;
    }
    if (rc == LEDGER_OK && found_before) {
        *prev_own = before.own_sent;
        *prev_peer = before.peer_sent;
        ledger_cycle_release(&before);
    }
    ledger_cycle_release(&last);
    return rc;
}

ledger_err_t cycles_apply_proposal(channel_t *ch, const envelope_message_t *msg)
{
    const char *peer = ch->peer->card.name;
    cycle_answer_t p;
    cycle_statement_t st;
    if (msg->version < 2 || !cycle_proposal_decode(msg->body, msg->body_len, &p)) {
        return refuse_proposal(ch, 0, "the proposal does not decode", true);
    }
    ledger_err_t rc = LEDGER_OK;
    uint8_t *ours = NULL;
    size_t ours_len = 0;
    const char *why = NULL;
    if (!cycle_statement_decode(p.statement, p.statement_len, &st) || !names_channel(ch, &st)) {
        why = "the statement does not decode or names another channel";
    } else if (!cycle_verify(p.statement, p.statement_len, p.signature, author_key(ch, msg))) {
        why = "the statement's signature does not verify";
    }
    uint64_t number = 0, prev_own = 0, prev_peer = 0, own_sent = 0, peer_sent = 0;
    bool ours_closing = false;
    if (why == NULL) {
        rc = next_expected(ch, &number, &ours_closing, &prev_own, &prev_peer);
        cut_of(ch, &st, &own_sent, &peer_sent);
    }
    if (rc != LEDGER_OK || why != NULL) {
        goto refuse;
    }
    if (st.cycle != number) {
        why = "the cycle is not the next";
    } else if (ours_closing && cycle_self_first(ch->ctx.node_name, peer)) {
        /* both proposed it: the proposal of the node that sorts first stands (3.11.2); the peer
         * applies ours before this refusal, which it then ignores, unless it refused ours */
        rc = refuse_proposal(ch, number, "both proposed this cycle: ours stands", false);
        goto cleanup;
    } else if (peer_sent + 1 != msg->sequence || own_sent > ch->sent_seq || own_sent < prev_own ||
               peer_sent < prev_peer) {
        why = "the cut is not the proposer's present";
    }
    ledger_cycle_figures_t figs;
    if (why == NULL) {
        rc = statement_at(ch, number, own_sent, peer_sent, &figs, &ours, &ours_len, &why);
        /* a cut far behind costs the peer's allowance, as bytes of messages that move nothing */
        ch->apply_work += (figs.touched + 1) * CUT_WORK_BYTES;
    }
    if (rc != LEDGER_OK || why != NULL) {
        goto refuse;
    }
    bool agreed = ours_len == p.statement_len && memcmp(ours, p.statement, ours_len) == 0;
    cycle_answer_t a = {.cycle = number, .has_signature = true};
    rc = cycle_sign(ours, ours_len, ch->own->sign_secret, a.signature) == 0 ? LEDGER_OK
                                                                            : LEDGER_E_STORAGE;
    if (rc == LEDGER_OK) {
        rc = ledger_cycle_propose(ch->ctx.ledger, peer, number, false, own_sent, peer_sent, ours,
                                  ours_len, a.signature, &figs);
    }
    if (rc == LEDGER_OK) {
        rc =
            ledger_cycle_finish(ch->ctx.ledger, peer, number, agreed ? NULL : p.statement,
                                p.statement_len, p.signature, agreed ? NULL : "the figures differ");
    }
    if (!agreed) {
        a.statement = ours; /* still owned by `ours` */
        a.statement_len = ours_len;
        snprintf(a.error, sizeof a.error, "the figures differ");
    }
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (rc == LEDGER_OK && cycle_answer_encode(&a, &body, &body_len) != 0) {
        rc = LEDGER_E_STORAGE;
    }
    if (rc == LEDGER_OK) {
        rc = channel_queue(ch, cycle_version(ch), MSG_CYCLE_ANSWER, body, body_len, NULL, NULL);
    }
    free(body);
    if (rc == LEDGER_OK) {
        notify_cycle(ch, number, agreed); /* our own close of it, if we proposed it too */
        log_event(ch->ctx.node_name, peer, NULL, "cycle %" PRIu64 " %s at %" PRIu64 "/%" PRIu64,
                  number, agreed ? "countersigned" : "disputed: the figures differ", own_sent,
                  peer_sent);
    }
    goto cleanup;

refuse:
    if (rc == LEDGER_OK) {
        rc = refuse_proposal(ch, st.cycle, why, true);
    }
cleanup:
    free(ours);
    cycle_answer_release(&p);
    return rc;
}

ledger_err_t cycles_apply_answer(channel_t *ch, const envelope_message_t *msg)
{
    const char *peer = ch->peer->card.name;
    cycle_answer_t a;
    if (!cycle_answer_decode(msg->body, msg->body_len, &a)) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, NULL, "dropped a CycleAnswer that does not decode");
        return LEDGER_OK;
    }
    ledger_cycle_t last;
    bool found = false;
    ledger_err_t rc = ledger_cycle_latest(ch->ctx.ledger, peer, &last, &found);
    const char *why = NULL;
    if (rc != LEDGER_OK) {
        goto cleanup;
    }
    bool refusal = a.statement == NULL && !a.has_signature && a.error[0] != '\0';
    if (refusal && found && last.cycle == a.cycle && !(last.state == CYCLE_CLOSING && last.ours)) {
        /* two proposals of this cycle crossed: we took the peer's, which refuses ours */
        log_event(ch->ctx.node_name, peer, NULL, "cycle %" PRIu64 ": the peer's proposal stood",
                  a.cycle);
    } else if (!found || last.state != CYCLE_CLOSING || !last.ours || last.cycle != a.cycle) {
        why = "it answers no cycle we proposed";
    } else if (a.statement == NULL && a.has_signature && a.error[0] == '\0') {
        if (!cycle_verify(last.statement, last.statement_len, a.signature, author_key(ch, msg))) {
            why = "the countersignature does not verify";
        } else {
            rc = ledger_cycle_finish(ch->ctx.ledger, peer, a.cycle, NULL, 0, a.signature, NULL);
            notify_cycle(ch, a.cycle, true);
            log_event(ch->ctx.node_name, peer, NULL, "cycle %" PRIu64 " closed", a.cycle);
        }
    } else if (a.statement != NULL && a.has_signature) {
        cycle_statement_t theirs, mine;
        uint64_t own_sent = 0, peer_sent = 0;
        bool ok = cycle_statement_decode(a.statement, a.statement_len, &theirs) &&
                  names_channel(ch, &theirs) && theirs.cycle == a.cycle &&
                  cycle_statement_decode(last.statement, last.statement_len, &mine);
        if (ok) {
            cut_of(ch, &theirs, &own_sent, &peer_sent);
        }
        if (!ok || own_sent != last.own_sent || peer_sent != last.peer_sent ||
            !cycle_verify(a.statement, a.statement_len, a.signature, author_key(ch, msg))) {
            why = "the disputed statement is not of our cycle and cut, or not signed";
        } else {
            rc = ledger_cycle_finish(ch->ctx.ledger, peer, a.cycle, a.statement, a.statement_len,
                                     a.signature, a.error[0] != '\0' ? a.error : "disputed");
            notify_cycle(ch, a.cycle, false);
            log_event(ch->ctx.node_name, peer, NULL, "cycle %" PRIu64 " disputed: %s", a.cycle,
                      a.error);
        }
    } else if (a.statement == NULL && !a.has_signature && a.error[0] != '\0') {
        rc = ledger_cycle_forget(ch->ctx.ledger, peer, a.cycle);
        notify_cycle(ch, a.cycle, false);
        log_event(ch->ctx.node_name, peer, NULL, "cycle %" PRIu64 " refused by the peer: %s",
                  a.cycle, a.error);
    } else {
        why = "neither a countersignature, a dispute nor a refusal";
    }
    if (why != NULL) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, NULL, "CycleAnswer for cycle %" PRIu64 " ignored: %s",
                  a.cycle, why);
    }
    ledger_cycle_release(&last);
cleanup:
    cycle_answer_release(&a);
    return rc;
}

/* ---- net settlement ---------------------------------------------------------------------- */

/* Whether `signature` over `statement` is ours (`own`) or the peer's: by the keys the channel
 * holds now, else by any key of that side the key history records (a cycle signed before
 * rotations). */
static bool signed_by_side(channel_t *ch, bool own, const uint8_t *statement, size_t len,
                           const uint8_t *signature)
{
    if (own ? cycle_verify(statement, len, signature, ch->own->sign_public) ||
                  (ch->own_previous != NULL &&
                   cycle_verify(statement, len, signature, ch->own_previous->sign_public))
            : cycle_verify(statement, len, signature, ch->keys->sign_public) ||
                  cycle_verify(statement, len, signature, ch->keys->previous_sign_public) ||
                  cycle_verify(statement, len, signature, ch->peer->card.sign_public)) {
        return true;
    }
    return ledger_cycle_signed_by(ch->ctx.ledger, ch->peer->card.name,
                                  own ? KEY_SIDE_OURS : KEY_SIDE_THEIRS, statement, len, signature);
}

/* Whether a net settlement record says what its stored NetSettlement says (id, cycle, currency,
 * amount, body): an insider's edit of the record must not change what is booked. The decoded
 * message's Inner version and body are handed back when asked (malloc'd body). */
static ledger_err_t net_as_signed(channel_t *ch, const ledger_net_t *rec, bool *same,
                                  uint32_t *version, uint8_t **body, size_t *body_len)
{
    uint8_t *evidence = NULL, *reply = NULL, *b = NULL;
    size_t evidence_len = 0, reply_len = 0, b_len = 0;
    int type = 0;
    uint32_t v = 0;
    net_settlement_t n;
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    *same = false;
    ledger_err_t rc = ledger_net_messages(ch->ctx.ledger, ch->peer->card.name, rec->id, &evidence,
                                          &evidence_len, &reply, &reply_len);
    if (rc == LEDGER_OK && evidence_body(evidence, evidence_len, &type, &v, &b, &b_len) == ENV_OK &&
        type == MSG_NET_SETTLEMENT && net_settlement_decode(b, b_len, &n)) {
        settlement_body_hash(b, b_len, hash);
        *same = strcmp(n.settlement_id, rec->id) == 0 && n.cycle == rec->cycle &&
                strcmp(n.currency, rec->currency) == 0 && n.amount_minor == rec->amount_minor &&
                memcmp(hash, rec->body_hash, sizeof hash) == 0;
    }
    if (!*same && rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, ch->peer->card.name, rec->id,
                  "net settlement record differs from its signed NetSettlement (edited books?)");
    }
    if (body != NULL && *same) {
        *body = b;
        *body_len = b_len;
        *version = v;
        b = NULL;
    }
    free(b);
    free(evidence);
    free(reply);
    return rc;
}

/* The closed cycle `number` and, in `currency`, our net from it (received - paid); *why when
 * there is no such closed cycle or currency. `statement_hash` gets H9 of the statement. */
static ledger_err_t cycle_net(channel_t *ch, uint64_t number, const char *currency, int64_t *net,
                              uint8_t statement_hash[static CYCLE_HASH_BYTES], const char **why)
{
    ledger_cycle_t c;
    bool found = false;
    *why = NULL;
    *net = 0;
    ledger_err_t rc =
        number == 0 ? LEDGER_OK
                    : ledger_cycle_get(ch->ctx.ledger, ch->peer->card.name, number, &c, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    cycle_statement_t st;
    if (!found || c.state != CYCLE_CLOSED) {
        *why = "no such closed cycle with this peer";
    } else if (!cycle_statement_decode(c.statement, c.statement_len, &st) ||
               !c.has_peer_signature || !names_channel(ch, &st) ||
               !signed_by_side(ch, true, c.statement, c.statement_len, c.own_signature) ||
               !signed_by_side(ch, false, c.statement, c.statement_len, c.peer_signature)) {
        /* our own books, not as both sides signed them: an edit */
        *why = "the stored cycle is not as both sides signed it (edited books?)";
        log_event(ch->ctx.node_name, ch->peer->card.name, NULL,
                  "cycle %" PRIu64 ": stored statement or signatures do not verify", number);
    } else {
        *why = "the currency is not in the cycle";
        bool first = cycle_self_first(ch->ctx.node_name, ch->peer->card.name);
        for (size_t i = 0; i < st.n_currencies; i++) {
            if (strcmp(st.currencies[i].currency, currency) == 0) {
                int64_t paid, received;
                cycle_currency_view(&st.currencies[i], first, &paid, &received, net);
                *why = NULL;
            }
        }
        cycle_statement_hash(c.statement, c.statement_len, statement_hash);
    }
    if (found) {
        ledger_cycle_release(&c);
    }
    return rc;
}

ledger_err_t channel_cycle_settle_check(channel_t *ch, net_settlement_t *n, const char **why)
{
    assert(n != NULL && why != NULL);
    const char *peer = ch->peer->card.name;
    int64_t net = 0;
    ledger_err_t rc = cycle_net(ch, n->cycle, n->currency, &net, n->statement_hash, why);
    bool open = false;
    if (rc == LEDGER_OK && *why == NULL && net >= 0) {
        *why = "this node is not the cycle's net debtor in that currency";
    }
    if (rc == LEDGER_OK && *why == NULL) {
        n->amount_minor = -net;
        *why = net_settlement_check(n);
    }
    if (rc == LEDGER_OK && *why == NULL) {
        rc = ledger_net_open(ch->ctx.ledger, peer, n->cycle, n->currency, &open);
        *why = open ? "a net settlement of that cycle and currency is pending or settled" : NULL;
    }
    return rc;
}

ledger_err_t channel_cycle_settle(channel_t *ch, net_settlement_t *n, const char **why)
{
    channel_check_invariants(ch);
    assert(n != NULL && why != NULL && ledger_in_transaction(ch->ctx.ledger));
    const char *peer = ch->peer->card.name;
    ledger_err_t rc = channel_cycle_settle_check(ch, n, why);
    if (rc != LEDGER_OK || *why != NULL) {
        return rc;
    }
    uint8_t *body = NULL, *signed_msg = NULL;
    size_t body_len = 0, signed_len = 0;
    if (net_settlement_encode(n, &body, &body_len) != 0) {
        return LEDGER_E_STORAGE;
    }
    rc = channel_queue(ch, cycle_version(ch), MSG_NET_SETTLEMENT, body, body_len, &signed_msg,
                       &signed_len);
    ledger_net_t rec = {.cycle = n->cycle,
                        .amount_minor = n->amount_minor,
                        .we_owe = true,
                        .status = STATUS_PENDING,
                        .created_ms = n->created_unix_ms};
    snprintf(rec.peer, sizeof rec.peer, "%s", peer);
    snprintf(rec.id, sizeof rec.id, "%s", n->settlement_id);
    snprintf(rec.currency, sizeof rec.currency, "%s", n->currency);
    snprintf(rec.reference, sizeof rec.reference, "%s", n->reference);
    settlement_body_hash(body, body_len, rec.body_hash);
    if (rc == LEDGER_OK) {
        rc = ledger_net_record(ch->ctx.ledger, &rec, signed_msg, signed_len);
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, n->settlement_id,
                  "net settlement of cycle %" PRIu64 ": %lld %s sent", n->cycle,
                  (long long)n->amount_minor, n->currency);
    }
    free(body);
    free(signed_msg);
    return rc;
}

/* Queues our pacs.002 on the NetSettlement `msg` (or stored evidence) and decides or records it:
 * `status` ACSC, RJCT or PDNG. */
static ledger_err_t answer_net(channel_t *ch, uint32_t version, const uint8_t *body,
                               size_t body_len, const ledger_net_t *rec, const char *status,
                               const char *reason)
{
    int64_t position = 0, pending = 0;
    ledger_err_t rc =
        ledger_position(ch->ctx.ledger, ch->peer->card.name, rec->currency, &position, &pending);
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    bool settled = strcmp(status, "ACSC") == 0;
    if (rc == LEDGER_OK && settled &&
        __builtin_sub_overflow(position, rec->amount_minor, &position)) {
        return LEDGER_E_OVERFLOW; /* the booking below would leave int64 too: nothing queued */
    }
    if (rc == LEDGER_OK) {
        rc = channel_queue_report(ch, version, body, body_len, rec->id, status, reason,
                                  rec->currency, position, &signed_msg, &signed_len);
    }
    if (rc == LEDGER_OK && strcmp(status, "PDNG") != 0) {
        rc = ledger_net_decide(ch->ctx.ledger, ch->peer->card.name, rec->id, settled, reason,
                               ch->sent_seq, signed_msg, signed_len, signed_msg, signed_len);
    }
    free(signed_msg);
    return rc;
}

/* What a creditor finds wrong with a NetSettlement it has not recorded (3.11.3 steps 4 to 6). */
static ledger_err_t net_refusal(channel_t *ch, const net_settlement_t *n, const char **reason)
{
    int64_t net = 0;
    uint8_t hash[CYCLE_HASH_BYTES];
    const char *why = NULL;
    ledger_err_t rc = cycle_net(ch, n->cycle, n->currency, &net, hash, &why);
    bool open = false;
    *reason = NULL;
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (why != NULL || net <= 0 || memcmp(hash, n->statement_hash, CYCLE_HASH_BYTES) != 0) {
        *reason = REASON_NO_AGREEMENT;
    } else if (n->amount_minor != net) {
        *reason = REASON_WRONG_AMOUNT;
    } else if ((rc = ledger_net_open(ch->ctx.ledger, ch->peer->card.name, n->cycle, n->currency,
                                     &open)) == LEDGER_OK &&
               open) {
        *reason = reason_code(REASON_DUPLICATE);
    }
    return rc;
}

ledger_err_t cycles_apply_net_settlement(channel_t *ch, const envelope_message_t *msg, bool *moved)
{
    const char *peer = ch->peer->card.name;
    net_settlement_t n;
    *moved = false;
    bool decoded = net_settlement_decode(msg->body, msg->body_len, &n);
    if (uetr_check(n.settlement_id) != VALID_OK) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, NULL, "dropped a NetSettlement with no valid id");
        return LEDGER_OK;
    }
    ledger_net_t rec = {0}, stored;
    snprintf(rec.peer, sizeof rec.peer, "%s", peer);
    snprintf(rec.id, sizeof rec.id, "%s", n.settlement_id);
    snprintf(rec.currency, sizeof rec.currency, "%s", decoded ? n.currency : "");
    settlement_body_hash(msg->body, msg->body_len, rec.body_hash);
    bool found = false;
    ledger_err_t rc = ledger_net_find(ch->ctx.ledger, peer, n.settlement_id, &stored, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    if (found) { /* a repeat: the stored answer again; other content: DUPL, nothing recorded */
        bool same =
            memcmp(stored.body_hash, rec.body_hash, SETTLEMENT_HASH_BYTES) == 0 && !stored.we_owe;
        const char *status = !same                              ? "RJCT"
                             : stored.status == STATUS_SETTLED  ? "ACSC"
                             : stored.status == STATUS_REJECTED ? "RJCT"
                                                                : "PDNG";
        const char *reason = same ? stored.reason : reason_code(REASON_DUPLICATE);
        if (!same) {
            ch->stats.unentitled++;
        }
        return channel_queue_report(ch, msg->version, msg->body, msg->body_len, rec.id, status,
                                    reason, rec.currency, 0, NULL, NULL);
    }
    bool taken = false;
    if (!decoded || msg->version < 2 || net_settlement_check(&n) != NULL ||
        (rc = ledger_id_taken(ch->ctx.ledger, peer, n.settlement_id, &taken)) != LEDGER_OK ||
        taken) {
        /* malformed, or an id the channel uses otherwise (a payment's: a person reviewing it
         * must not confirm this): answered, recorded nowhere (3.11.3 steps 2 and 3) */
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, rec.id, "NetSettlement refused: %s",
                  taken ? "its id names another record of the channel" : "malformed");
        return rc != LEDGER_OK
                   ? rc
                   : channel_queue_report(ch, msg->version, msg->body, msg->body_len, rec.id,
                                          "RJCT",
                                          reason_code(taken ? REASON_DUPLICATE : REASON_FORMAT),
                                          rec.currency, 0, NULL, NULL);
    }
    const char *reason = NULL;
    if ((rc = net_refusal(ch, &n, &reason)) != LEDGER_OK) {
        return rc;
    }
    rec.cycle = n.cycle;
    rec.amount_minor = n.amount_minor > 0 ? n.amount_minor : 0;
    rec.we_owe = false;
    rec.status = STATUS_HELD;
    snprintf(rec.reference, sizeof rec.reference, "%s", n.reference);
    rec.created_ms = ch->wall_ms;
    rc = ledger_net_record(ch->ctx.ledger, &rec, msg->evidence, msg->evidence_len);
    if (rc == LEDGER_OK) {
        rc = answer_net(ch, msg->version, msg->body, msg->body_len, &rec,
                        reason != NULL ? "RJCT" : "PDNG", reason);
    }
    if (rc == LEDGER_OK) {
        log_event(ch->ctx.node_name, peer, rec.id,
                  "net settlement of cycle %" PRIu64 ": %lld %s %s%s", rec.cycle,
                  (long long)rec.amount_minor, rec.currency,
                  reason != NULL ? "refused " : "held until a person confirms the funds",
                  reason != NULL ? reason : "");
    }
    return rc;
}

ledger_err_t channel_net_decide(channel_t *ch, const char *id, const char *reason, status_t *status)
{
    channel_check_invariants(ch);
    assert(id != NULL && status != NULL && ledger_in_transaction(ch->ctx.ledger));
    const char *peer = ch->peer->card.name;
    ledger_net_t rec;
    bool found = false;
    ledger_err_t rc = ledger_net_find(ch->ctx.ledger, peer, id, &rec, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    *status = rec.status;
    if (!found) {
        return LEDGER_E_NOT_FOUND;
    }
    if (rec.we_owe || rec.status != STATUS_HELD || !channel_decides_held(ch)) {
        return LEDGER_E_STATE;
    }
    uint8_t *body = NULL;
    size_t body_len = 0;
    uint32_t version = 0;
    bool same = false;
    rc = net_as_signed(ch, &rec, &same, &version, &body, &body_len);
    if (rc == LEDGER_OK && !same) {
        rc = LEDGER_E_CORRUPT; /* our own books, not as the debtor signed them: an edit */
    }
    if (rc == LEDGER_OK) {
        rc =
            answer_net(ch, version, body, body_len, &rec, reason == NULL ? "ACSC" : "RJCT", reason);
    }
    if (rc == LEDGER_OK) {
        *status = reason == NULL ? STATUS_SETTLED : STATUS_REJECTED;
        log_event(ch->ctx.node_name, peer, id, "net settlement of cycle %" PRIu64 " %s%s%s",
                  rec.cycle, reason == NULL ? "confirmed: the funds arrived" : "refused",
                  reason != NULL ? " " : "", reason != NULL ? reason : "");
    }
    free(body);
    return rc;
}

bool cycles_apply_net_answer(channel_t *ch, const envelope_message_t *msg,
                             const Corridor__StatusReport *sr, bool *moved, ledger_err_t *rc)
{
    const char *peer = ch->peer->card.name;
    ledger_net_t rec;
    bool found = false;
    /* every StatusReport comes here first: a prepared probe, the full read only for a net id */
    *rc = ledger_net_known(ch->ctx.ledger, peer, sr->uetr, &found);
    if (*rc == LEDGER_OK && found) {
        *rc = ledger_net_find(ch->ctx.ledger, peer, sr->uetr, &rec, &found);
    }
    if (*rc != LEDGER_OK || !found || !rec.we_owe) {
        return *rc != LEDGER_OK; /* the peer's own net settlement ids name nothing it answers */
    }
    bool settled = strcmp(sr->status, "ACSC") == 0, pending = strcmp(sr->status, "PDNG") == 0;
    const char *why = NULL;
    if (sr->settlement_hash.len != SETTLEMENT_HASH_BYTES ||
        memcmp(sr->settlement_hash.data, rec.body_hash, SETTLEMENT_HASH_BYTES) != 0) {
        why = "it names another NetSettlement";
    } else if (!settled && !pending &&
               (strcmp(sr->status, "RJCT") != 0 || reason_code_check(sr->reason) != VALID_OK)) {
        why = "its status is not ACSC, RJCT or PDNG";
    } else if (rec.status != STATUS_PENDING) {
        if ((rec.status == STATUS_SETTLED) == settled && !pending) {
            return true; /* a repeat of the final answer */
        }
        why = "a different answer after the final one";
    }
    if (why != NULL) {
        ch->stats.unentitled++;
        log_event(ch->ctx.node_name, peer, sr->uetr, "StatusReport ignored: %s", why);
        return true;
    }
    if (pending) {
        log_event(ch->ctx.node_name, peer, sr->uetr, "net settlement held by the peer for review");
        return true;
    }
    bool same = false;
    if ((*rc = net_as_signed(ch, &rec, &same, NULL, NULL, NULL)) != LEDGER_OK || !same) {
        return true; /* an edited record books nothing (logged); the answer waits for a repair */
    }
    *rc = ledger_net_decide(ch->ctx.ledger, peer, sr->uetr, settled, settled ? NULL : sr->reason,
                            msg->sequence, msg->evidence, msg->evidence_len, NULL, 0);
    if (*rc == LEDGER_OK) {
        *moved = settled;
        notify(ch, sr->uetr, settled, settled ? "" : sr->reason);
        log_event(ch->ctx.node_name, peer, sr->uetr, "net settlement of cycle %" PRIu64 " %s%s%s",
                  rec.cycle, settled ? "confirmed by the creditor" : "refused", settled ? "" : " ",
                  settled ? "" : sr->reason);
    }
    return true;
}
