/*
 * The offline audit; see audit.h for what it checks.
 *
 * One pass over the journal in order checks the chain, the evidence of each row and
 * accumulates each row's effect on the accounts; set-level checks (duplicates, caches,
 * content) are SQL queries over the read-only ledger. A violation names the row (journal
 * sequence) and the UETR it concerns. After a broken link the chain check continues from the
 * stored hash, so one edited row is reported once, not with every row after it.
 */
#include "audit.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>
#include <unistd.h>

#include "config.h"
#include "corridor.pb-c.h"
#include "cycle.h"
#include "cycles.h"
#include "digest.h"
#include "envelope.h"
#include "fsutil.h"
#include "fx.h"
#include "home.h"
#include "identity.h"
#include "keyannounce.h"
#include "ledger.h"
#include "books.h"
#include "checkpoint.h"
#include "order.h"
#include "setoff.h"
#include "setoffs.h"
#include "trust.h"
#include "validate.h"
#include "wire.h"

#define AUDIT_HOMES_MAX   64
#define AUDIT_THREADS_MAX 16

/* One home being audited. */
typedef struct {
    const char *dir;                         /* as given */
    char ledger_path[CORRIDOR_PATH_LEN_MAX]; /* its ledger, for the evidence workers */
    config_t *config;                        /* its config */
    bool own_known; /* its own public key is known: from the auditor's card of it, else
                       from its key file; without either, own signatures go unchecked */
    uint8_t own_public[crypto_sign_PUBLICKEYBYTES];
    ledger_t *ledger;   /* read-only */
    trust_t *trust;     /* the keys trusted for its peers (the auditor's cards first) */
    trust_t *own_trust; /* its own keys, per channel: own_public, and the key history's */
    bool mismatched[CORRIDOR_PEERS_MAX]; /* per peer: the config's key is on none of its cards */
    int64_t replies_from; /* booking rows from here on carry our reply (0: before schema 4) */
    struct replacement *replacements; /* the operators' key replacements on record */
    size_t replacements_count;
} audited_home_t;

/* A key replacement the journal records (`key replace`, `peer add --replace`: an operator
 * row with action "replace"): on `peer`'s channel, side `side`, key `key_id` took the place
 * of `replaced_key_id`. The hash-chained row vouches for both: the key history's rows alone
 * (outside the chain) are not believed. */
struct replacement {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    key_side_t side;
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    uint8_t replaced_key_id[IDENTITY_KEY_ID_BYTES];
    uint64_t first_seq;    /* where `key_id` begins */
    uint64_t revoked_from; /* every key before it signs nothing from here on */
};

/* Running balance of one (peer, currency) recomputed from the journal. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    ledger_effect_t sum;
} replayed_t;

typedef struct {
    replayed_t *items;
    size_t count, capacity;
} replay_t;

void audit_report_init(audit_report_t *r)
{
    memset(r, 0, sizeof *r);
}

void audit_report_free(audit_report_t *r)
{
    free(r->violations);
    free(r->keys);
    memset(r, 0, sizeof *r);
}

static void violation(audit_report_t *r, const char *home, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void violation(audit_report_t *r, const char *home, const char *kind, const char *fmt, ...)
{
    if (r->violations_count >= AUDIT_VIOLATIONS_MAX) {
        r->violations_dropped++;
        return;
    }
    if (r->violations_count == r->violations_capacity) {
        size_t cap = r->violations_capacity ? 2 * r->violations_capacity : 16;
        audit_violation_t *v = realloc(r->violations, cap * sizeof *v);
        if (v == NULL) {
            r->violations_dropped++;
            return;
        }
        r->violations = v;
        r->violations_capacity = cap;
    }
    audit_violation_t *v = &r->violations[r->violations_count++];
    snprintf(v->home, sizeof v->home, "%s", home);
    snprintf(v->kind, sizeof v->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
}

static replayed_t *replay_slot(replay_t *rp, const char *peer, const char *currency)
{
    for (size_t i = 0; i < rp->count; i++) {
        if (strcmp(rp->items[i].peer, peer) == 0 && strcmp(rp->items[i].currency, currency) == 0) {
            return &rp->items[i];
        }
    }
    if (rp->count == rp->capacity) {
        size_t cap = rp->capacity ? 2 * rp->capacity : 16;
        replayed_t *items = realloc(rp->items, cap * sizeof *items);
        if (items == NULL) {
            return NULL;
        }
        rp->items = items;
        rp->capacity = cap;
    }
    replayed_t *slot = &rp->items[rp->count++];
    memset(slot, 0, sizeof *slot);
    snprintf(slot->peer, sizeof slot->peer, "%s", peer);
    snprintf(slot->currency, sizeof slot->currency, "%s", currency);
    return slot;
}

/* ---- evidence (I4) ------------------------------------------------------------------------ */

/* A journal row as read for the audit. */
typedef struct {
    int64_t seq;
    entry_kind_t kind;
    const char *peer, *uetr, *currency, *reason;
    int64_t amount_minor;
    const uint8_t *evidence;
    size_t evidence_len;
    direction_t original;  /* direction of the settlement the row belongs to */
    int64_t settlement_id; /* that settlement (0 for a channel's re-base row) */
    const uint8_t *reply;  /* our signed StatusReport in a booking row (schema 4), or NULL */
    size_t reply_len;
    /* a return record's (schema 9, PROTOCOL.md 3.9): what it returns and why; "" for a payment */
    const char *original_uetr, *return_reason;
    /* an FX leg's (schema 10, PROTOCOL.md 3.10): its trade and which leg; "" and 0 otherwise */
    const char *fx_id;
    int fx_leg;
} audit_row_t;

/* Whether the row belongs to a return record (3.9) rather than a payment. */
static bool row_is_return(const audit_row_t *row)
{
    return row->original_uetr[0] != '\0';
}

/* Whether the row belongs to a leg of an FX trade (3.10): opened by an FxProposal, answered by
 * a StatusReport naming the trade. A record with either FX column set is checked as one. */
static bool row_is_fx_leg(const audit_row_t *row)
{
    return row->fx_leg != FX_LEG_SETOFF && (row->fx_leg != FX_LEG_NONE || row->fx_id[0] != '\0');
}

/* Whether the row belongs to a leg of a multilateral set-off (3.12.6: fx_leg 3), checked by
 * setoff_checks, not as a payment. */
static bool row_is_setoff_leg(const audit_row_t *row)
{
    return row->fx_leg == FX_LEG_SETOFF;
}

/* The UETR a StatusReport about the row names: a leg's trade is answered as one, by its id. */
static const char *row_answered_as(const audit_row_t *row)
{
    return row_is_fx_leg(row) ? row->fx_id : row->uetr;
}

static audit_row_t row_of(const books_row_t *b)
{
    return (audit_row_t){
        .seq = b->seq,
        .kind = (entry_kind_t)b->kind,
        .peer = b->peer,
        .uetr = b->uetr,
        .currency = b->currency,
        .amount_minor = b->amount_minor,
        .reason = b->reason,
        .evidence = b->evidence,
        .evidence_len = b->evidence_len,
        .original = b->original,
        .settlement_id = b->settlement_id,
        .reply = b->reply,
        .reply_len = b->reply_len,
        .original_uetr = b->original_uetr != NULL ? b->original_uetr : "",
        .return_reason = b->return_reason != NULL ? b->return_reason : "",
        .fx_id = b->fx_id != NULL ? b->fx_id : "",
        .fx_leg = b->fx_leg,
    };
}

/* The message type of stored evidence, unverified (0 when it does not decode): which of two
 * kinds of evidence a row holds, before its signature is checked with the right key. */
static int evidence_type(const audit_row_t *row)
{
    int type = 0;
    uint32_t version = 0;
    return evidence_body(row->evidence, row->evidence_len, &type, &version, NULL, NULL) == ENV_OK
               ? type
               : 0;
}

static msg_type_t expected_type(const audit_row_t *row)
{
    switch (row->kind) {
    case ENTRY_OUT_VOIDED: /* the payee's StatusReport RJCT, or its CancelAnswer CNCL */
        return evidence_type(row) == MSG_CANCEL_ANSWER ? MSG_CANCEL_ANSWER : MSG_STATUS_REPORT;
    case ENTRY_OUT_POSTED:
    case ENTRY_IMPORTED:
    case ENTRY_RELEASED:
    case ENTRY_HELD_AT_PEER:
        return MSG_STATUS_REPORT;
    case ENTRY_DECLINED: /* our StatusReport, or the payer's CancelRequest (3.8.5) */
        return evidence_type(row) == MSG_CANCEL_REQUEST ? MSG_CANCEL_REQUEST : MSG_STATUS_REPORT;
    case ENTRY_CANCEL_REQUESTED:
        return MSG_CANCEL_REQUEST;
    case ENTRY_CANCEL_REFUSED: /* the payee's answer at the payer, the payer's request there */
        return row->original == DIRECTION_OUT ? MSG_CANCEL_ANSWER : MSG_CANCEL_REQUEST;
    case ENTRY_RETURNED:
        return MSG_RETURN;
    case ENTRY_OUT_PENDING: /* a return record opens with the returner's Return (3.9) */
    case ENTRY_IN_BOOKED:   /* a leg with the proposer's FxProposal (3.10) */
    case ENTRY_IN_REFUSED:
        return row_is_fx_leg(row)   ? MSG_FX_PROPOSAL
               : row_is_return(row) ? MSG_RETURN
                                    : MSG_SETTLEMENT;
    case ENTRY_HELD:
        return row_is_fx_leg(row) ? MSG_FX_PROPOSAL : MSG_SETTLEMENT;
    default:
        return MSG_SETTLEMENT;
    }
}

/* Whether this node wrote the row's evidence itself (else the peer did). */
static bool own_evidence(const audit_row_t *row)
{
    return row->kind == ENTRY_OUT_PENDING || row->kind == ENTRY_REBASED ||
           row->kind == ENTRY_RELEASED || row->kind == ENTRY_CANCEL_REQUESTED ||
           (row->kind == ENTRY_DECLINED && expected_type(row) == MSG_STATUS_REPORT) ||
           ((row->kind == ENTRY_RETURNED || row->kind == ENTRY_IMPORTED) &&
            row->original == DIRECTION_IN);
}

/* The StatusReport status a row's evidence must say. */
static const char *expected_report_status(const audit_row_t *row)
{
    switch (row->kind) {
    case ENTRY_OUT_POSTED:
    case ENTRY_RELEASED:
        return "ACSC";
    case ENTRY_IMPORTED:
        return row->reason[0] == '\0' ? "ACSC" : "RJCT";
    case ENTRY_HELD_AT_PEER:
        return "PDNG";
    default:
        return "RJCT";
    }
}

/* The Return (pacs.004) that opens a return record (3.9): pending at the returner, booked or
 * refused at the payer. It must name the row's return id, amount and currency, and the
 * record's original UETR and return reason. A refused return may store "-" for the original
 * UETR and "" for the reason (apply_return: what is malformed is not stored), but only when
 * the Return is malformed: a well-formed one must match exactly. A refused return moves
 * nothing and the totals check skips it, so that is all it needs. NULL or what differs. */
static const char *return_matches(const audit_row_t *row, const envelope_message_t *msg)
{
    settlement_t r;
    reason_t format = return_decode(msg->body, msg->body_len, row->peer, DIRECTION_IN, &r);
    Corridor__Return *ret =
        (Corridor__Return *)wire_unpack(&corridor__return__descriptor, msg->body_len, msg->body);
    if (ret == NULL) {
        return "evidence body is not a Return";
    }
    if (format == REASON_NONE) {
        format = return_check(&r);
    }
    bool malformed = format != REASON_NONE;
    bool refused = row->kind == ENTRY_IN_REFUSED;
    const char *problem = NULL;
    if (malformed && !refused) {
        problem = "a malformed Return sent or booked as a return (only a refusal may answer it)";
    } else if (strcmp(ret->return_id, row->uetr) != 0) {
        problem = "evidence is for another return id";
    } else if (ret->amount_minor != row->amount_minor || strcmp(ret->currency, row->currency)) {
        problem = "evidence amount or currency differs from the entry";
    } else if (strcmp(ret->original_uetr, row->original_uetr) != 0 &&
               !(refused && malformed && strcmp(row->original_uetr, "-") == 0)) {
        problem = "evidence returns another payment than the return record names";
    } else if (strcmp(ret->reason, row->return_reason) != 0 &&
               !(refused && malformed && row->return_reason[0] == '\0')) {
        problem = "evidence return reason differs from the return record";
    }
    corridor__return__free_unpacked(ret, NULL);
    return problem;
}

/* The FxProposal that opens a leg of an FX trade (3.10): pending at the proposer; booked,
 * refused or held at the acceptor, both legs on the same message. The row's record must be one
 * of its legs by fx_leg: the trade's id, the leg's UETR and currency, and the amount as the leg's
 * rows state it (settlement_row_amount: negated for the leg the acceptor pays). A malformed
 * proposal (fx_decode or fx_check) may only be refused. NULL or what differs. */
static const char *fx_leg_matches(const audit_row_t *row, const envelope_message_t *msg)
{
    fx_trade_t t;
    reason_t format = fx_decode(msg->body, msg->body_len, row->peer, row->original, &t);
    if (format != REASON_NONE && t.fx_id[0] == '\0') {
        return "evidence body is not an FxProposal";
    }
    if (!fx_keyed(&t, msg->version)) { /* answered, never recorded (3.10.4 step 2) */
        return "an FxProposal no record is kept of (ids, version or amount)";
    }
    if (format == REASON_NONE) {
        format = fx_check(&t);
    }
    if (format != REASON_NONE && row->kind != ENTRY_IN_REFUSED) {
        return "a malformed FxProposal sent, booked or held (only a refusal may answer it)";
    }
    if (strcmp(t.fx_id, row->fx_id) != 0) {
        return "evidence is for another FX trade than the leg's record names";
    }
    if (row->fx_leg != FX_LEG_PROPOSER_PAYS && row->fx_leg != FX_LEG_ACCEPTOR_PAYS) {
        return "the record names no leg of its FX trade";
    }
    const settlement_t *leg = &t.legs[row->fx_leg == FX_LEG_PROPOSER_PAYS ? FX_PAY : FX_RECEIVE];
    if (strcmp(leg->uetr, row->uetr) != 0) {
        return "evidence is for another UETR";
    }
    if (settlement_row_amount(leg) != row->amount_minor || strcmp(leg->currency, row->currency)) {
        return "evidence amount or currency differs from the entry";
    }
    return NULL;
}

/* Checks that the decoded body says what the row says; returns NULL or what differs. */
static const char *body_matches(const audit_row_t *row, const envelope_message_t *msg)
{
    const char *problem = NULL;
    switch (msg->type) {
    case MSG_SETTLEMENT: {
        Corridor__Settlement *s = (Corridor__Settlement *)wire_unpack(
            &corridor__settlement__descriptor, msg->body_len, msg->body);
        if (s == NULL) {
            return "evidence body is not a Settlement";
        }
        if (strcmp(s->uetr, row->uetr) != 0) {
            problem = "evidence is for another UETR";
        } else if (s->amount_minor != row->amount_minor || strcmp(s->currency, row->currency)) {
            problem = "evidence amount or currency differs from the entry";
        }
        corridor__settlement__free_unpacked(s, NULL);
        return problem;
    }
    case MSG_STATUS_REPORT: {
        Corridor__StatusReport *s = (Corridor__StatusReport *)wire_unpack(
            &corridor__status_report__descriptor, msg->body_len, msg->body);
        if (s == NULL) {
            return "evidence body is not a StatusReport";
        }
        const char *status = expected_report_status(row);
        bool rejected = strcmp(status, "RJCT") == 0;
        if (strcmp(s->uetr, row_answered_as(row)) != 0) {
            problem = "evidence is for another UETR";
        } else if (strcmp(s->status, status) != 0 ||
                   (rejected && strcmp(s->reason, row->reason) != 0)) {
            problem = "evidence status or reason differs from the entry";
        }
        corridor__status_report__free_unpacked(s, NULL);
        return problem;
    }
    case MSG_FX_PROPOSAL:
        return fx_leg_matches(row, msg);
    case MSG_RETURN: {
        if (row->kind != ENTRY_RETURNED) {
            return return_matches(row, msg);
        }
        Corridor__Return *s = (Corridor__Return *)wire_unpack(&corridor__return__descriptor,
                                                              msg->body_len, msg->body);
        if (s == NULL) {
            return "evidence body is not a Return";
        }
        if (strcmp(s->original_uetr, row->uetr) != 0) {
            problem = "evidence is for another UETR";
        } else if (strcmp(s->reason, row->reason) != 0) {
            problem = "evidence reason differs from the entry";
        } else if (s->amount_minor != row->amount_minor || strcmp(s->currency, row->currency)) {
            problem = "evidence amount or currency differs from the entry";
        }
        corridor__return__free_unpacked(s, NULL);
        return problem;
    }
    case MSG_CANCEL_REQUEST: {
        Corridor__CancelRequest *c = (Corridor__CancelRequest *)wire_unpack(
            &corridor__cancel_request__descriptor, msg->body_len, msg->body);
        if (c == NULL) {
            return "evidence body is not a CancelRequest";
        }
        if (strcmp(c->uetr, row->uetr) != 0) {
            problem = "evidence is for another UETR";
        } else if (row->kind != ENTRY_CANCEL_REFUSED && strcmp(c->reason, row->reason) != 0) {
            problem = "evidence reason differs from the entry"; /* refused: the reason is ours */
        }
        corridor__cancel_request__free_unpacked(c, NULL);
        return problem;
    }
    case MSG_CANCEL_ANSWER: {
        Corridor__CancelAnswer *c = (Corridor__CancelAnswer *)wire_unpack(
            &corridor__cancel_answer__descriptor, msg->body_len, msg->body);
        if (c == NULL) {
            return "evidence body is not a CancelAnswer";
        }
        const char *confirmation = row->kind == ENTRY_OUT_VOIDED ? "CNCL" : "RJCR";
        if (strcmp(c->uetr, row->uetr) != 0) {
            problem = "evidence is for another UETR";
        } else if (strcmp(c->confirmation, confirmation) != 0 ||
                   strcmp(c->reason, row->reason) != 0) {
            problem = "evidence confirmation or reason differs from the entry";
        }
        corridor__cancel_answer__free_unpacked(c, NULL);
        return problem;
    }
    default:
        return "evidence is not a business message";
    }
}

/* A version-2 StatusReport must name the hash of the body of the Settlement its settlement's
 * first row keeps (that row's own check verifies the Settlement's signature). An import row's
 * report must be version 2: a version-1 report names no Settlement. `journal`: the cursor the
 * row came from, which finds that first row. */
static const char *report_binding(books_cursor_t *journal, const audit_row_t *row,
                                  const envelope_message_t *status)
{
    if (status->version < 2) {
        return row->kind == ENTRY_IMPORTED
                   ? "an import justified by a version-1 StatusReport (it names no Settlement)"
               /* the proposer takes no answer that names no FxProposal (apply_fx_answer); the
                * acceptor answers a version-1 proposal in kind, as it would a Settlement */
               : row_is_fx_leg(row) && row->original == DIRECTION_OUT
                   ? "a leg of an FX trade answered by a version-1 StatusReport (it names no "
                     "FxProposal)"
                   : NULL;
    }
    Corridor__StatusReport *sr = (Corridor__StatusReport *)wire_unpack(
        &corridor__status_report__descriptor, status->body_len, status->body);
    const char *problem = "the Settlement a StatusReport answers is missing or unreadable";
    Corridor__SignedMessage *sm = NULL;
    Corridor__Inner *inner = NULL;
    const uint8_t *opening = NULL;
    size_t opening_len = 0;
    if (sr == NULL || journal == NULL) {
        goto cleanup;
    }
    if (!books_opening_evidence(journal, row->settlement_id, &opening, &opening_len) ||
        (sm = (Corridor__SignedMessage *)wire_unpack(&corridor__signed_message__descriptor,
                                                     opening_len, opening)) == NULL ||
        (inner = (Corridor__Inner *)wire_unpack(&corridor__inner__descriptor, sm->inner.len,
                                                sm->inner.data)) == NULL) {
        goto cleanup;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(inner->body.data, inner->body.len, hash);
    problem = sr->settlement_hash.len == sizeof hash &&
                      memcmp(sr->settlement_hash.data, hash, sizeof hash) == 0
                  ? NULL
                  : "the StatusReport answers other contents than its Settlement";

cleanup:
    if (inner != NULL) {
        corridor__inner__free_unpacked(inner, NULL);
    }
    if (sm != NULL) {
        corridor__signed_message__free_unpacked(sm, NULL);
    }
    corridor__status_report__free_unpacked(sr, NULL);
    return problem;
}

/* Our reply in a row that books or refuses the peer's `settlement` (schema 4): our own signed
 * StatusReport, saying what the row says and answering that Settlement's body. NULL or what
 * is wrong. Without our key file here, our signatures cannot be checked. */
static const char *reply_problem(const audited_home_t *h, const audit_row_t *row,
                                 const envelope_message_t *settlement)
{
    if (row->reply_len == 0) {
        /* a trade is answered once: on the row of its second leg (3.10) */
        bool answered_elsewhere = row_is_fx_leg(row) && row->fx_leg == FX_LEG_PROPOSER_PAYS;
        return h->replies_from > 0 && row->seq >= h->replies_from && !answered_elsewhere
                   ? "it books or refuses the peer's settlement without our signed answer"
                   : NULL;
    }
    if (!h->own_known) {
        return NULL;
    }
    envelope_message_t msg;
    if (trust_verify(h->own_trust, row->peer, row->reply, row->reply_len, &msg) != ENV_OK) {
        return "our reply kept in the row does not verify with this node's key";
    }
    Corridor__StatusReport *sr =
        msg.type == MSG_STATUS_REPORT
            ? (Corridor__StatusReport *)wire_unpack(&corridor__status_report__descriptor,
                                                    msg.body_len, msg.body)
            : NULL;
    const char *status = row->kind == ENTRY_IN_BOOKED ? "ACSC"
                         : row->kind == ENTRY_HELD    ? "PDNG"
                                                      : "RJCT";
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(settlement->body, settlement->body_len, hash);
    const char *problem = NULL;
    if (sr == NULL) {
        problem = "our reply kept in the row is not a StatusReport";
    } else if (strcmp(sr->uetr, row_answered_as(row)) != 0) {
        problem = "our reply kept in the row is for another UETR";
    } else if (strcmp(sr->status, status) != 0 ||
               (strcmp(status, "RJCT") == 0 && strcmp(sr->reason, row->reason) != 0)) {
        problem = "the row's status contradicts our own signed reply";
    } else if (msg.version >= 2 && (sr->settlement_hash.len != sizeof hash ||
                                    memcmp(sr->settlement_hash.data, hash, sizeof hash) != 0)) {
        problem = "our reply kept in the row answers other contents";
    }
    corridor__status_report__free_unpacked(sr, NULL);
    envelope_message_clear(&msg);
    return problem;
}

/* A re-base row: its evidence is our own sequenced message to the peer, of the sequence the
 * row states (or nothing, for a re-base on nothing proven: sequence 0). */
static const char *rebase_matches(const audit_row_t *row, const envelope_message_t *msg)
{
    if (!msg_type_sequenced((int)msg->type)) {
        return "a re-base proven by a message that is not sequenced";
    }
    return msg->sequence == (uint64_t)row->amount_minor
               ? NULL
               : "a re-base row states another sequence than its proof";
}

/* trust_find's test: whether a trusted key has the key id `arg`. */
static bool key_id_is(void *arg, const uint8_t *sign_public)
{
    uint8_t id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(sign_public, id);
    return sodium_memcmp(id, arg, sizeof id) == 0;
}

/* trust_find's test: whether a trusted key signed the checkpoint in `arg`. */
typedef struct {
    const uint8_t *body;
    size_t body_len;
    const uint8_t *signature;
} signed_checkpoint_t;

static bool signed_checkpoint(void *arg, const uint8_t *sign_public)
{
    const signed_checkpoint_t *c = arg;
    return checkpoint_verify(c->body, c->body_len, c->signature, sign_public);
}

/* An operator row's record: a JSON object with uid, user, at_ms, action and args, for a
 * channel of this home (or none), moving nothing. NULL or what is wrong. */
static const char *operation_problem(const audited_home_t *h, const audit_row_t *row)
{
    json_error_t error;
    json_t *record = json_loadb((const char *)row->evidence, row->evidence_len, 0, &error);
    json_int_t uid = json_integer_value(json_object_get(record, "uid"));
    const char *problem = NULL;
    if (!json_is_object(record)) {
        problem = "an operator row whose record is not a JSON object";
    } else if (!json_is_integer(json_object_get(record, "uid")) || uid < 0 ||
               !json_is_string(json_object_get(record, "user")) ||
               !json_is_integer(json_object_get(record, "at_ms")) ||
               !json_is_string(json_object_get(record, "action")) ||
               !json_is_object(json_object_get(record, "args"))) {
        problem = "an operator row without uid, user, at_ms, action and args";
    } else if (row->amount_minor != 0 || row->currency[0] != '\0' || row->uetr[0] != '\0') {
        problem = "an operator row that names a payment or an amount";
    } else if (row->peer[0] != '\0' && !trust_knows(h->trust, row->peer)) {
        problem = "an operator row for a peer that is not in the config";
    }
    json_decref(record);
    return problem;
}

/* `journal`: the cursor the row came from. */
static void check_evidence(audit_report_t *r, const audited_home_t *h, books_cursor_t *journal,
                           const audit_row_t *row)
{
    if (row->kind == ENTRY_OPERATOR) {
        const char *problem = operation_problem(h, row);
        if (problem != NULL) {
            violation(r, h->dir, "operator", "row %lld: %s", (long long)row->seq, problem);
        }
        return;
    }
    if (row->kind == ENTRY_CHECKPOINT) { /* its signatures: with the anchors (load_checkpoints) */
        if (row->evidence_len <= 2 * crypto_sign_BYTES || row->uetr[0] != '\0' ||
            row->currency[0] != '\0' || row->amount_minor < 0 ||
            !trust_knows(h->trust, row->peer)) {
            violation(r, h->dir, "checkpoint", "row %lld: not a checkpoint of a channel",
                      (long long)row->seq);
        }
        return;
    }
    if (row->kind >= ENTRY_CYCLE || row_is_setoff_leg(row)) {
        return; /* cycles and net settlements: cycle_checks; set-off legs: setoff_checks */
    }
    if (row->kind == ENTRY_REBASED && row->evidence_len == 0) {
        if (row->amount_minor != 0) {
            violation(r, h->dir, "evidence", "row %lld: a re-base to %lld without a proof",
                      (long long)row->seq, (long long)row->amount_minor);
        }
        return;
    }
    if (!trust_knows(h->trust, row->peer)) {
        violation(r, h->dir, "evidence", "row %lld (UETR %s): peer %s is not in the config",
                  (long long)row->seq, row->uetr, row->peer);
        return;
    }
    bool own = own_evidence(row);
    if (own && !h->own_known) {
        return; /* no key file here (an audited copy): own signatures cannot be checked */
    }
    envelope_message_t msg;
    env_err_t rc = trust_verify(own ? h->own_trust : h->trust, row->peer, row->evidence,
                                row->evidence_len, &msg);
    if (rc != ENV_OK) {
        violation(r, h->dir, "evidence", "row %lld (UETR %s): %s with %s's key%s",
                  (long long)row->seq, row->uetr, env_strerror(rc), own ? "this node" : row->peer,
                  own ? "" : "s trusted");
        return;
    }
    const char *problem = NULL;
    if (own ? trust_find(h->trust, row->peer, key_id_is, msg.recipient_key_id) == NULL
            : h->own_known &&
                  trust_find(h->own_trust, row->peer, key_id_is, msg.recipient_key_id) == NULL) {
        problem = "evidence was signed for another recipient";
    } else if (row->kind == ENTRY_REBASED) {
        problem = rebase_matches(row, &msg);
    } else if (msg.type != expected_type(row)) {
        problem = "evidence is a message of the wrong type";
    } else if ((problem = body_matches(row, &msg)) == NULL && msg.type == MSG_STATUS_REPORT) {
        problem = report_binding(journal, row, &msg);
    } else if (problem == NULL && (row->kind == ENTRY_IN_BOOKED || row->kind == ENTRY_IN_REFUSED ||
                                   row->kind == ENTRY_HELD)) {
        problem = reply_problem(h, row, &msg);
    }
    if (problem != NULL) {
        violation(r, h->dir, "evidence", "row %lld (UETR %s): %s", (long long)row->seq, row->uetr,
                  problem);
    }
    envelope_message_clear(&msg);
}

/* ---- the journal pass: chain (I5), evidence (I4), replayed balances -------------------- */

/* A co-signed checkpoint: the journal row and head this node and its peer agreed on. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    uint64_t rows;
    uint8_t head[LEDGER_HASH_BYTES];
    bool seen; /* the journal pass reached that row */
} anchor_t;

typedef struct {
    anchor_t *items; /* sorted by rows once loaded: the journal pass walks them in step */
    size_t count;
    size_t next; /* the first anchor the journal pass has not reached */
} anchors_t;

static int by_rows(const void *x, const void *y)
{
    const anchor_t *a = x, *b = y;
    if (a->rows != b->rows) {
        return a->rows < b->rows ? -1 : 1;
    }
    int peer = strcmp(a->peer, b->peer);
    return peer != 0 ? peer : memcmp(a->head, b->head, LEDGER_HASH_BYTES);
}

/* Drops anchors equal to the one before (sorted): a checkpoint kept in the table and in the
 * chain anchors once. Returns the count left. */
static size_t without_repeats(anchor_t *items, size_t count)
{
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (kept == 0 || by_rows(&items[kept - 1], &items[i]) != 0) {
            items[kept++] = items[i];
        }
    }
    return kept;
}

/* Verifies each stored checkpoint's signatures and fields; keeps what the journal must match. */
static void load_checkpoints(audit_report_t *r, const audited_home_t *h, anchors_t *out)
{
    /* the table, and (schema 4) the checkpoints in the chain: either one anchors the journal */
    books_cursor_t *c = NULL;
    if (books_checkpoints(h->ledger, NULL, true, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "checkpoints: %s", ledger_last_error(h->ledger));
        return;
    }
    books_checkpoint_t stored;
    while (books_checkpoints_next(c, &stored) == 1) {
        const char *peer = stored.peer;
        const uint8_t *body = stored.body;
        size_t body_len = stored.body_len;
        Corridor__Checkpoint *cp =
            body_len > 0 ? (Corridor__Checkpoint *)wire_unpack(&corridor__checkpoint__descriptor,
                                                               body_len, body)
                         : NULL;
        const char *self = h->config->name;
        const char *problem = NULL;
        bool first = cp != NULL && strcmp(cp->first, self) == 0;
        ProtobufCBinaryData head = cp == NULL ? (ProtobufCBinaryData){0, NULL}
                                   : first    ? cp->first_head
                                              : cp->second_head;
        uint64_t rows = cp == NULL ? 0 : first ? cp->first_rows : cp->second_rows;
        signed_checkpoint_t by_peer = {body, body_len, stored.peer_signature};
        signed_checkpoint_t by_us = {body, body_len, stored.own_signature};
        if (!trust_knows(h->trust, peer) || cp == NULL) {
            problem = "a checkpoint with an unknown peer or an unreadable body";
        } else if (stored.peer_signature_len != crypto_sign_BYTES ||
                   trust_find(h->trust, peer, signed_checkpoint, &by_peer) == NULL) {
            problem = "the peer's signature on a checkpoint does not verify";
        } else if (h->own_known &&
                   (stored.own_signature_len != crypto_sign_BYTES ||
                    trust_find(h->own_trust, peer, signed_checkpoint, &by_us) == NULL)) {
            problem = "this node's own signature on a checkpoint does not verify";
        } else if (head.len != LEDGER_HASH_BYTES ||
                   (stored.in_table && /* a journal row stores none */
                    ((uint64_t)stored.own_rows != rows ||
                     stored.own_head_len != LEDGER_HASH_BYTES ||
                     memcmp(stored.own_head, head.data, LEDGER_HASH_BYTES) != 0))) {
            problem = "a checkpoint's stored row or head differs from what was signed";
        }
        static const uint8_t zero_head[LEDGER_HASH_BYTES] = {0};
        if (problem == NULL && rows == 0 && memcmp(head.data, zero_head, LEDGER_HASH_BYTES) != 0) {
            problem = "a checkpoint of an empty journal with a head that is not empty";
        }
        if (problem != NULL) {
            violation(r, h->dir, "checkpoint", "with %s: %s", peer, problem);
        } else if (rows > 0) {
            anchor_t *items = realloc(out->items, (out->count + 1) * sizeof *items);
            if (items != NULL) {
                out->items = items;
                anchor_t *a = &items[out->count++];
                memset(a, 0, sizeof *a);
                snprintf(a->peer, sizeof a->peer, "%s", peer);
                a->rows = rows;
                memcpy(a->head, head.data, LEDGER_HASH_BYTES);
            }
        }
        corridor__checkpoint__free_unpacked(cp, NULL);
    }
    books_close(&c);
}

/* The journal as recomputed must pass through every head a peer co-signed. Rows come in
 * order and anchors are sorted: linear in rows plus checkpoints. */
static void check_anchor(audit_report_t *r, const audited_home_t *h, anchors_t *anchors,
                         uint64_t seq, const uint8_t computed[static LEDGER_HASH_BYTES])
{
    for (; anchors->next < anchors->count && anchors->items[anchors->next].rows <= seq;
         anchors->next++) {
        anchor_t *a = &anchors->items[anchors->next];
        if (a->rows != seq) {
            continue; /* a row the journal skipped: reported as gone at the end */
        }
        a->seen = true;
        if (memcmp(a->head, computed, LEDGER_HASH_BYTES) != 0) {
            violation(r, h->dir, "checkpoint",
                      "journal up to row %llu no longer matches the checkpoint %s co-signed "
                      "(rows before it were changed, even if the chain was recomputed)",
                      (unsigned long long)seq, a->peer);
        }
    }
}

static int journal_pass(audit_report_t *r, const audited_home_t *h, replay_t *rp,
                        anchors_t *anchors)
{
    books_cursor_t *journal = NULL;
    if (books_journal(h->ledger, h->replies_from > 0, 1, 0, &journal) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "journal: %s", ledger_last_error(h->ledger));
        return -1;
    }
    uint8_t prev[LEDGER_HASH_BYTES] = {0};
    uint8_t recomputed[LEDGER_HASH_BYTES] = {0}; /* the chain as it must be, from row 1 */
    int64_t expected_seq = 1;
    row_order_t *order = row_order_new(); /* NULL (out of memory): said at the first row */
    books_row_t b;
    int more;
    while ((more = books_journal_next(journal, &b)) == 1) {
        audit_row_t row = row_of(&b);
        r->entries_checked++;
        if (row.seq != expected_seq) {
            violation(r, h->dir, "chain", "row %lld follows row %lld: rows missing or reordered",
                      (long long)row.seq, (long long)(expected_seq - 1));
        }
        expected_seq = row.seq + 1;
        uint8_t content_hash[SETTLEMENT_HASH_BYTES] = {0};
        if (b.content_hash_len == SETTLEMENT_HASH_BYTES) {
            memcpy(content_hash, b.content_hash, SETTLEMENT_HASH_BYTES);
        }
        ledger_row_t hashed = {
            .seq = row.seq,
            .kind = row.kind,
            .peer = row.peer,
            .uetr = row.uetr,
            .currency = row.currency,
            .amount_minor = row.amount_minor,
            .reason = row.reason,
            .content_hash = content_hash,
            .evidence = row.evidence,
            .evidence_len = row.evidence_len,
            .created_unix_ms = b.created_unix_ms,
            .reply = row.reply,
            .reply_len = row.reply_len,
        };
        uint8_t computed[LEDGER_HASH_BYTES];
        ledger_row_hash(prev, &hashed, computed);
        if (anchors->count > 0) { /* checkpoints need the chain recomputed from row 1 */
            ledger_row_hash(recomputed, &hashed, recomputed);
            check_anchor(r, h, anchors, (uint64_t)row.seq, recomputed);
        }
        const void *stored = b.hash;
        bool stored_ok = b.hash_len == LEDGER_HASH_BYTES;
        if (!stored_ok || memcmp(computed, stored, LEDGER_HASH_BYTES) != 0) {
            violation(r, h->dir, "chain",
                      "row %lld (UETR %s): hash does not match the row and its predecessor "
                      "(edited, deleted or moved)",
                      (long long)row.seq, row.uetr);
        }
        /* continue from the stored hash: one edited row, one violation */
        memcpy(prev, stored_ok ? stored : computed, LEDGER_HASH_BYTES);
        if (row.kind < ENTRY_OUT_PENDING || row.kind > ENTRY_KIND_MAX) {
            violation(r, h->dir, "chain", "row %lld: unknown entry kind %d", (long long)row.seq,
                      (int)row.kind);
            continue;
        }
        if (row.kind != ENTRY_REBASED && row.kind != ENTRY_OPERATOR &&
            row.kind != ENTRY_CHECKPOINT &&
            (row.kind < ENTRY_CYCLE || row.kind >= ENTRY_SETOFF_PENDING) && !b.has_settlement) {
            violation(r, h->dir, "cache", "row %lld (UETR %s): its settlement row is missing",
                      (long long)row.seq, row.uetr);
        }
        if (b.has_settlement && b.settlement_id > 0) {
            const char *wrong = order != NULL
                                    ? row_order_take(order, b.settlement_id, row.kind, row.original,
                                                     row_is_return(&row), row_is_fx_leg(&row),
                                                     row_is_setoff_leg(&row))
                                    : "out of memory";
            if (wrong != NULL) {
                violation(r, h->dir, "order", "row %lld (UETR %s, %s): %s", (long long)row.seq,
                          row.uetr, entry_kind_name(row.kind), wrong);
            }
        }

        ledger_effect_t e = ledger_row_effect(row.kind, row.original, row.amount_minor);
        if (e.pending != 0 || e.posted != 0) {
            replayed_t *slot = replay_slot(rp, row.peer, row.currency);
            if (slot == NULL) {
                violation(r, h->dir, "unreadable", "out of memory");
                break;
            }
            if (__builtin_add_overflow(slot->sum.pending, e.pending, &slot->sum.pending) ||
                __builtin_add_overflow(slot->sum.posted, e.posted, &slot->sum.posted)) {
                violation(r, h->dir, "balance", "row %lld: %s %s balance overflows",
                          (long long)row.seq, row.peer, row.currency);
            }
        }
    }
    for (size_t i = 0; i < anchors->count; i++) {
        if (!anchors->items[i].seen) {
            violation(r, h->dir, "checkpoint",
                      "the checkpoint %s co-signed names journal row %llu, which is gone "
                      "(rows deleted)",
                      anchors->items[i].peer, (unsigned long long)anchors->items[i].rows);
        }
    }
    int rc = more == 0 ? 0 : -1;
    if (rc != 0) {
        violation(r, h->dir, "unreadable", "journal: %s", ledger_last_error(h->ledger));
    }
    row_order_destroy(&order);
    books_close(&journal);
    return rc;
}

/* ---- the evidence pass (I4), on every core ------------------------------------------------ */

/* Signature checks dominate the audit (one Ed25519 verification per row), so rows are split
 * by sequence number over one worker per core, each with its own read-only connection and
 * its own report, merged afterwards. */
typedef struct {
    const audited_home_t *home;
    unsigned index, count; /* this worker checks rows with seq % count == index */
    audit_report_t report; /* its findings */
} evidence_worker_t;

static void *evidence_worker(void *arg)
{
    evidence_worker_t *w = arg;
    const audited_home_t *h = w->home;
    char err[512];
    ledger_t *l = NULL;
    books_cursor_t *journal = NULL;
    if (ledger_open(h->ledger_path, NULL, LEDGER_READ_ONLY, NULL, &l, err, sizeof err) !=
        LEDGER_OK) {
        violation(&w->report, h->dir, "unreadable", "%s", err);
        return NULL;
    }
    if (books_journal(l, h->replies_from > 0, w->count, w->index, &journal) != LEDGER_OK) {
        violation(&w->report, h->dir, "unreadable", "journal: %s", ledger_last_error(l));
        goto cleanup;
    }
    books_row_t b;
    int more;
    while ((more = books_journal_next(journal, &b)) == 1) {
        audit_row_t row = row_of(&b);
        if (row.kind >= ENTRY_OUT_PENDING && row.kind <= ENTRY_KIND_MAX) {
            check_evidence(&w->report, h, journal, &row);
        }
    }
    if (more < 0) {
        violation(&w->report, h->dir, "unreadable", "journal: %s", ledger_last_error(l));
    }

cleanup:
    books_close(&journal);
    ledger_close(&l);
    return NULL;
}

static unsigned audit_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > AUDIT_THREADS_MAX ? AUDIT_THREADS_MAX : (unsigned)cores;
}

/* Appends every violation of `from` to `to`. */
static void merge_report(audit_report_t *to, const audit_report_t *from)
{
    for (size_t i = 0; i < from->violations_count; i++) {
        const audit_violation_t *v = &from->violations[i];
        violation(to, v->home, v->kind, "%s", v->detail);
    }
    to->violations_dropped += from->violations_dropped;
}

/* The evidence workers of one home, running while the main thread walks the chain. */
typedef struct {
    evidence_worker_t workers[AUDIT_THREADS_MAX];
    pthread_t threads[AUDIT_THREADS_MAX];
    bool started[AUDIT_THREADS_MAX];
    unsigned count;
} evidence_pass_t;

static void evidence_pass_start(evidence_pass_t *p, const audited_home_t *h)
{
    p->count = audit_threads();
    for (unsigned i = 0; i < p->count; i++) {
        p->workers[i] = (evidence_worker_t){.home = h, .index = i, .count = p->count};
        audit_report_init(&p->workers[i].report);
        p->started[i] = pthread_create(&p->threads[i], NULL, evidence_worker, &p->workers[i]) == 0;
    }
}

static void evidence_pass_finish(evidence_pass_t *p, audit_report_t *r)
{
    for (unsigned i = 0; i < p->count; i++) {
        if (p->started[i]) {
            pthread_join(p->threads[i], NULL);
        } else {
            evidence_worker(&p->workers[i]); /* no thread: do its share here */
        }
        merge_report(r, &p->workers[i].report);
        audit_report_free(&p->workers[i].report);
    }
}

/* ---- set-level checks -------------------------------------------------------------------- */

/* Runs a check whose every finding is one violation. */
typedef void (*finding_reporter_t)(audit_report_t *r, const char *home, const books_finding_t *f);

static void report_findings(audit_report_t *r, const audited_home_t *h, books_check_t check,
                            finding_reporter_t report)
{
    books_cursor_t *c = NULL;
    if (books_findings(h->ledger, check, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "%s", ledger_last_error(h->ledger));
        return;
    }
    books_finding_t f;
    int more;
    while ((more = books_findings_next(c, &f)) == 1) {
        report(r, h->dir, &f);
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "%s", ledger_last_error(h->ledger));
    }
    books_close(&c);
}

static void report_duplicate(audit_report_t *r, const char *home, const books_finding_t *f)
{
    violation(r, home, "duplicate", "UETR %s with %s is created %lld times (I3)", f->uetr, f->peer,
              (long long)f->count);
}

static void report_status(audit_report_t *r, const char *home, const books_finding_t *f)
{
    violation(r, home, "cache", "UETR %s with %s: status %d/%s, but its journal says %d/%s",
              f->uetr, f->peer, f->status, f->reason, f->journal_status, f->journal_reason);
}

static void report_orphan(audit_report_t *r, const char *home, const books_finding_t *f)
{
    violation(r, home, "cache", "UETR %s with %s has no journal rows", f->uetr, f->peer);
}

static void report_content(audit_report_t *r, const char *home, const books_finding_t *f)
{
    violation(r, home, "content",
              "row %lld (UETR %s): amount, currency or content differs from its settlement",
              (long long)f->seq, f->uetr);
}

static void set_checks(audit_report_t *r, const audited_home_t *h)
{
    report_findings(r, h, BOOKS_DUPLICATE_OPENINGS, report_duplicate);
    report_findings(r, h, BOOKS_DUPLICATE_SETTLEMENTS, report_duplicate);
    report_findings(r, h, BOOKS_STATUS_CACHE, report_status);
    report_findings(r, h, BOOKS_ORPHANS, report_orphan);
    report_findings(r, h, BOOKS_CONTENT, report_content);
}

/* Each settlement's stored content hash against its fields. */
static void content_hashes(audit_report_t *r, const audited_home_t *h)
{
    books_cursor_t *c = NULL;
    if (books_settlements(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "settlements: %s", ledger_last_error(h->ledger));
        return;
    }
    settlement_t s;
    const uint8_t *stored = NULL;
    size_t stored_len = 0;
    while (books_settlements_next(c, &s, &stored, &stored_len) == 1) {
        uint8_t hash[SETTLEMENT_HASH_BYTES];
        settlement_content_hash(&s, hash);
        if (stored_len != SETTLEMENT_HASH_BYTES || memcmp(hash, stored, sizeof hash) != 0) {
            violation(r, h->dir, "content", "UETR %s with %s: fields do not match their hash",
                      s.uetr, s.peer);
        }
    }
    books_close(&c);
}

/* The return totals (PROTOCOL.md 3.9): each return not refused gives back part of a payment
 * the channel settled the other way, in its currency, and the returns of one payment settled
 * or pending stay within its amount. A refused return is exempt: the peer may send anything,
 * and it moved nothing. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char original_uetr[CORRIDOR_UETR_LEN + 1];
    bool valid;         /* the original was found, a settled payment: its cap applies */
    int64_t cap, total; /* its amount; the returns of it settled or pending so far */
    bool overflowed;    /* the total does not fit */
} return_group_t;

static void returns_group_end(audit_report_t *r, const audited_home_t *h, const return_group_t *g)
{
    if (g->valid && (g->overflowed || g->total > g->cap)) {
        violation(r, h->dir, "returns",
                  "the returns of %s with %s settled or pending total %s%lld, over its %lld",
                  g->original_uetr, g->peer, g->overflowed ? "more than " : "", (long long)g->total,
                  (long long)g->cap);
    }
}

/* Whether the return's Return names, by its settlement_hash, the body of the Settlement that
 * opened its original (3.7.2): the payer accepts a return only for the payment it signed.
 * Evidence that does not decode as the right type is the evidence pass's to report: true. */
static bool names_original(const books_return_t *ret)
{
    uint8_t *body = NULL, *original = NULL;
    size_t body_len = 0, original_len = 0;
    int type = 0, original_type = 0;
    uint32_t version = 0;
    Corridor__Return *msg = NULL;
    bool named = true;
    if (ret->evidence == NULL || ret->original_evidence == NULL ||
        evidence_body(ret->evidence, ret->evidence_len, &type, &version, &body, &body_len) !=
            ENV_OK ||
        type != MSG_RETURN ||
        evidence_body(ret->original_evidence, ret->original_evidence_len, &original_type, &version,
                      &original, &original_len) != ENV_OK ||
        original_type != MSG_SETTLEMENT ||
        (msg = (Corridor__Return *)wire_unpack(&corridor__return__descriptor, body_len, body)) ==
            NULL) {
        goto done;
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(original, original_len, hash);
    named = msg->settlement_hash.len == sizeof hash &&
            memcmp(msg->settlement_hash.data, hash, sizeof hash) == 0;

done:
    if (msg != NULL) {
        corridor__return__free_unpacked(msg, NULL);
    }
    free(body);
    free(original);
    return named;
}

static void returns_totals(audit_report_t *r, const audited_home_t *h)
{
    books_cursor_t *c = NULL;
    if (books_returns(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "returns: %s", ledger_last_error(h->ledger));
        return;
    }
    return_group_t g;
    memset(&g, 0, sizeof g);
    bool open = false;
    books_return_t ret;
    int more;
    while ((more = books_returns_next(c, &ret)) == 1) {
        if (!open || strcmp(g.peer, ret.peer) != 0 ||
            strcmp(g.original_uetr, ret.original_uetr) != 0) {
            if (open) {
                returns_group_end(r, h, &g);
            }
            memset(&g, 0, sizeof g);
            snprintf(g.peer, sizeof g.peer, "%s", ret.peer);
            snprintf(g.original_uetr, sizeof g.original_uetr, "%s", ret.original_uetr);
            g.cap = ret.original_amount_minor;
            g.valid = true;
            open = true;
        }
        const char *problem = NULL;
        if (!ret.found) {
            problem = "its original is not on record";
        } else if (ret.original_is_return) {
            problem = "its original is a return, not a payment";
        } else if (ret.original_direction == ret.direction) {
            problem = "it goes the same way as its original";
        } else if (strcmp(ret.original_currency, ret.currency) != 0) {
            problem = "it is in another currency than its original";
        } else if (ret.original_status != STATUS_SETTLED) {
            problem = "its original is not settled";
        } else if (!names_original(&ret)) {
            problem = "its Return names another body than its original's Settlement";
        }
        if (problem != NULL) {
            g.valid = false; /* no payment to hold the returns to */
            violation(r, h->dir, "returns", "return %s of %s with %s: %s", ret.uetr,
                      ret.original_uetr, ret.peer, problem);
        }
        if ((ret.status == STATUS_SETTLED || ret.status == STATUS_PENDING) &&
            __builtin_add_overflow(g.total, ret.amount_minor, &g.total)) {
            g.overflowed = true;
        }
    }
    if (open) {
        returns_group_end(r, h, &g);
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "returns: %s", ledger_last_error(h->ledger));
    }
    books_close(&c);
}

/* The FX trades (PROTOCOL.md 3.10): every trade holds both legs or neither, one of each
 * (fx_leg 1 and 2), on the same FxProposal (original_hash, the body hash of each leg's opening
 * evidence), going the same way (so their money goes opposite ways), in different currencies,
 * with one status and reason. Each leg's canonical entry hash (digest_fx_leg_entry, its payer
 * the side that pays the leg) must be the one its fields give. Kind "fx". */
typedef struct {
    int fx_leg;
    direction_t direction;
    char uetr[CORRIDOR_UETR_LEN + 1];
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    char reason[32]; /* as stored, whatever its length */
    int status;
    size_t original_hash_len;
    uint8_t original_hash[SETTLEMENT_HASH_BYTES];
} fx_leg_seen_t;

typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char fx_id[CORRIDOR_UETR_LEN + 1];
    size_t count;          /* records of the trade */
    fx_leg_seen_t legs[2]; /* the first two */
} fx_group_t;

static void fx_group_end(audit_report_t *r, const audited_home_t *h, const fx_group_t *g)
{
    const fx_leg_seen_t *a = &g->legs[0], *b = &g->legs[1];
    const char *problem = NULL;
    if (g->count == 1) {
        problem = a->fx_leg == FX_LEG_PROPOSER_PAYS   ? "it holds its first leg only"
                  : a->fx_leg == FX_LEG_ACCEPTOR_PAYS ? "it holds its second leg only"
                                                      : "it holds one record, which is no leg";
    } else if (g->count > 2) {
        problem = "it holds more than two legs";
    } else if (a->fx_leg != FX_LEG_PROPOSER_PAYS || b->fx_leg != FX_LEG_ACCEPTOR_PAYS) {
        problem = "its two records are not one leg of each kind";
    } else if (a->direction != b->direction) {
        problem = "its legs' money goes the same way";
    } else if (strcmp(a->currency, b->currency) == 0) {
        problem = "its legs are in the same currency";
    } else if (a->status != b->status || strcmp(a->reason, b->reason) != 0) {
        problem = "its legs differ in status or reason";
    } else if (a->original_hash_len != SETTLEMENT_HASH_BYTES ||
               b->original_hash_len != SETTLEMENT_HASH_BYTES ||
               memcmp(a->original_hash, b->original_hash, SETTLEMENT_HASH_BYTES) != 0) {
        problem = "its legs name different FxProposals";
    }
    if (problem != NULL) {
        violation(r, h->dir, "fx", "trade %s with %s (UETR %s): %s", g->fx_id, g->peer, a->uetr,
                  problem);
    }
}

/* What is wrong with one leg on its own: its ids, its canonical entry hash, the FxProposal it
 * names against its opening evidence. NULL or what. */
static const char *fx_leg_problem(const audited_home_t *h, const books_fx_leg_t *leg)
{
    if (leg->fx_id[0] == '\0') {
        return "a leg without its trade's id";
    }
    if (leg->fx_leg != FX_LEG_PROPOSER_PAYS && leg->fx_leg != FX_LEG_ACCEPTOR_PAYS) {
        return "a record of a trade that is neither of its legs";
    }
    if (leg->status < STATUS_PENDING || leg->status > STATUS_MAX) {
        return NULL; /* the cache check reports an unknown status */
    }
    bool we_pay = (leg->direction == DIRECTION_OUT) != (leg->fx_leg == FX_LEG_ACCEPTOR_PAYS);
    const char *self = h->config->name;
    uint8_t canon[DIGEST_BYTES];
    digest_fx_leg_entry(we_pay ? self : leg->peer, we_pay ? leg->peer : self, leg->uetr, leg->fx_id,
                        leg->amount_minor, leg->currency,
                        status_name(status_canonical((status_t)leg->status)), leg->reason, canon);
    if (leg->canon_hash_len != DIGEST_BYTES || memcmp(canon, leg->canon_hash, DIGEST_BYTES) != 0) {
        return "its canonical entry hash does not match its fields";
    }
    uint8_t *body = NULL;
    size_t body_len = 0;
    int type = 0;
    uint32_t version = 0;
    const char *problem = NULL;
    if (leg->evidence != NULL &&
        evidence_body(leg->evidence, leg->evidence_len, &type, &version, &body, &body_len) ==
            ENV_OK &&
        type == MSG_FX_PROPOSAL) { /* other evidence: the evidence pass reports it */
        uint8_t hash[SETTLEMENT_HASH_BYTES];
        settlement_body_hash(body, body_len, hash);
        if (leg->original_hash_len != sizeof hash ||
            memcmp(leg->original_hash, hash, sizeof hash) != 0) {
            problem = "it names another FxProposal than the one that opened it";
        }
    }
    free(body);
    return problem;
}

static void fx_trades(audit_report_t *r, const audited_home_t *h)
{
    books_cursor_t *c = NULL;
    if (books_fx_legs(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "FX legs: %s", ledger_last_error(h->ledger));
        return;
    }
    fx_group_t g;
    memset(&g, 0, sizeof g);
    bool open = false;
    books_fx_leg_t leg;
    int more;
    while ((more = books_fx_legs_next(c, &leg)) == 1) {
        if (leg.fx_leg == FX_LEG_SETOFF) {
            continue; /* a set-off leg (3.12.6), no FX trade: setoff_checks */
        }
        if (!open || strcmp(g.peer, leg.peer) != 0 || strcmp(g.fx_id, leg.fx_id) != 0) {
            if (open) {
                fx_group_end(r, h, &g);
            }
            memset(&g, 0, sizeof g);
            snprintf(g.peer, sizeof g.peer, "%s", leg.peer);
            snprintf(g.fx_id, sizeof g.fx_id, "%s", leg.fx_id);
            open = true;
        }
        if (g.count < 2) {
            fx_leg_seen_t *seen = &g.legs[g.count];
            seen->fx_leg = leg.fx_leg;
            seen->direction = leg.direction;
            snprintf(seen->uetr, sizeof seen->uetr, "%s", leg.uetr);
            snprintf(seen->currency, sizeof seen->currency, "%s", leg.currency);
            snprintf(seen->reason, sizeof seen->reason, "%s", leg.reason);
            seen->status = leg.status;
            seen->original_hash_len = leg.original_hash_len;
            if (leg.original_hash_len == SETTLEMENT_HASH_BYTES) {
                memcpy(seen->original_hash, leg.original_hash, SETTLEMENT_HASH_BYTES);
            }
        }
        g.count++;
        const char *problem = fx_leg_problem(h, &leg);
        if (problem != NULL) {
            violation(r, h->dir, "fx", "leg %s of trade %s with %s: %s", leg.uetr, leg.fx_id,
                      leg.peer, problem);
        }
    }
    if (open) {
        fx_group_end(r, h, &g);
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "FX legs: %s", ledger_last_error(h->ledger));
    }
    books_close(&c);
}

/* ---- multilateral set-offs (schema 12, PROTOCOL.md 3.12; kind "setoff") --------------------- */

/* A set-off record as the audit keeps it while checking the legs that name it. */
typedef struct {
    char id[CORRIDOR_UETR_LEN + 1];
    bool terms_ok; /* its terms decode and the proposer's H10 verifies */
    setoff_terms_t terms;
    uint8_t hash[SETOFF_HASH_BYTES]; /* H13 of its terms */
    int position;
    int state;
    char reason[CORRIDOR_REASON_LEN_MAX + 1];
    unsigned legs_out, legs_in; /* its legs on record: with our successor, with our predecessor */
} audited_setoff_t;

typedef struct {
    audited_setoff_t *items;
    size_t count;
    bool failed;
    audit_report_t *r;
    const audited_home_t *h;
} setoff_book_t;

static audited_setoff_t *setoff_find(const setoff_book_t *b, const char *id)
{
    for (size_t i = 0; i < b->count; i++) {
        if (strcmp(b->items[i].id, id) == 0) {
            return &b->items[i];
        }
    }
    return NULL;
}

/* A vote as stored in a record (ballot bytes || signature): into *v; false when it is no vote. */
static bool stored_vote(const uint8_t *blob, size_t len, setoff_vote_t *v)
{
    memset(v, 0, sizeof *v);
    if (blob == NULL || len <= crypto_sign_BYTES || len - crypto_sign_BYTES > SETOFF_BALLOT_MAX) {
        return false;
    }
    v->ballot_len = len - crypto_sign_BYTES;
    memcpy(v->ballot_bytes, blob, v->ballot_len);
    memcpy(v->signature, blob + v->ballot_len, crypto_sign_BYTES);
    return setoff_ballot_decode(v->ballot_bytes, v->ballot_len, &v->ballot);
}

/* Whether the message holds the valid votes of positions 0 .. count-1 in order, every one yes. */
static bool setoff_yes_votes(const setoff_message_t *m, const setoff_terms_t *t,
                             const uint8_t hash[static SETOFF_HASH_BYTES], size_t count)
{
    if (m->n_votes != count) {
        return false;
    }
    for (size_t i = 0; i < m->n_votes; i++) {
        const setoff_vote_t *v = &m->votes[i];
        if (v->ballot.position != i || !v->ballot.yes || !setoff_vote_valid(t, hash, v)) {
            return false;
        }
    }
    return true;
}

/* What is wrong with a set-off record on its own (its terms, our vote, the verdict), or NULL. */
static const char *setoff_record_problem(const audited_home_t *h, const ledger_setoff_t *rec,
                                         audited_setoff_t *a)
{
    const setoff_terms_t *t = &a->terms;
    if (rec->terms == NULL || !setoff_terms_decode(rec->terms, rec->terms_len, &a->terms)) {
        return "its terms do not decode";
    }
    setoff_terms_hash(rec->terms, rec->terms_len, a->hash);
    if (!setoff_verify(SETOFF_TERMS_DOMAIN, rec->terms, rec->terms_len, rec->terms_signature,
                       t->ring[0].signing_key)) {
        return "the proposer's signature over its terms (H10) does not verify";
    }
    a->terms_ok = true;
    if (strcmp(t->setoff_id, rec->setoff_id) != 0) {
        return "its terms name another set-off id";
    }
    if (rec->position < 0 || setoff_position(t, h->config->name) != rec->position) {
        return "its position is not this node's place on the ring";
    }
    if (strcmp(t->currency, rec->currency) != 0 || t->amount_minor != rec->amount_minor) {
        return "its currency or amount differs from its terms";
    }
    if (rec->state < SETOFF_VOTING || rec->state > SETOFF_ASKED) {
        return "an unknown state";
    }
    bool asking = t->amount_minor == 0;
    if (asking ? rec->state != SETOFF_VOTING && rec->state != SETOFF_ASKED
               : rec->state == SETOFF_ASKED) {
        return "an asking round decided, or a set-off of an amount marked asked";
    }
    setoff_vote_t v;
    if (rec->our_vote != NULL &&
        (!stored_vote(rec->our_vote, rec->our_vote_len, &v) ||
         v.ballot.position != (uint32_t)rec->position || !setoff_vote_valid(t, a->hash, &v))) {
        return "our vote on record is not our valid vote on these terms";
    }
    if (rec->state != SETOFF_COMMITTED && rec->state != SETOFF_ABORTED) {
        return NULL;
    }
    setoff_verdict_t verdict;
    if (rec->verdict == NULL || rec->verdict_len <= crypto_sign_BYTES ||
        !setoff_verdict_decode(rec->verdict, rec->verdict_len - crypto_sign_BYTES, &verdict)) {
        return "a decided set-off without a verdict that decodes";
    }
    if (!setoff_verify(SETOFF_VERDICT_DOMAIN, rec->verdict, rec->verdict_len - crypto_sign_BYTES,
                       rec->verdict + rec->verdict_len - crypto_sign_BYTES,
                       t->ring[0].signing_key) ||
        memcmp(verdict.terms_hash, a->hash, SETOFF_HASH_BYTES) != 0) {
        return "its verdict is not the proposer's (H12) over these terms";
    }
    if (verdict.commit != (rec->state == SETOFF_COMMITTED) ||
        (!verdict.commit && strcmp(verdict.reason, rec->reason) != 0)) {
        return "its state or reason differs from its verdict";
    }
    if (verdict.commit && rec->position == 0) { /* the proposer keeps the votes it decided on */
        setoff_message_t m;
        memset(&m, 0, sizeof m);
        bool complete = rec->votes != NULL &&
                        setoff_message_decode(rec->votes, rec->votes_len, false, &m) &&
                        m.terms_len == rec->terms_len &&
                        memcmp(m.terms_bytes, rec->terms, rec->terms_len) == 0 &&
                        setoff_yes_votes(&m, t, a->hash, t->n);
        setoff_message_release(&m);
        if (!complete) {
            return "a commit without every member's valid yes vote on record";
        }
    }
    return NULL;
}

static bool collect_setoff(const ledger_setoff_t *rec, void *arg)
{
    setoff_book_t *b = arg;
    audited_setoff_t *items = realloc(b->items, (b->count + 1) * sizeof *items);
    if (items == NULL) {
        b->failed = true;
        return false;
    }
    b->items = items;
    audited_setoff_t *a = &items[b->count++];
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", rec->setoff_id);
    a->position = rec->position;
    a->state = (int)rec->state;
    snprintf(a->reason, sizeof a->reason, "%s", rec->reason);
    const char *problem = setoff_record_problem(b->h, rec, a);
    if (problem != NULL) {
        violation(b->r, b->h->dir, "setoff", "set-off %s: %s", rec->setoff_id, problem);
    }
    return true;
}

/* Whether the terms make the channel with `peer` the edge of the ring this node's leg says:
 * direction out, we owe the peer (it is our successor); in, it owes us. *debtor: the edge's
 * debtor's position. */
static bool setoff_edge(const audited_home_t *h, const setoff_terms_t *t, const char *peer,
                        direction_t direction, size_t *debtor)
{
    int self = setoff_position(t, h->config->name), other = setoff_position(t, peer);
    if (self < 0 || other < 0) {
        return false;
    }
    size_t d = (size_t)(direction == DIRECTION_OUT ? self : other);
    size_t c = (size_t)(direction == DIRECTION_OUT ? other : self);
    *debtor = d;
    return (d + 1) % t->n == c;
}

/* A journal row of a set-off leg (21 setoff_pending, 22 setoff_posted, 23 setoff_voided): its
 * SignedMessage verifies with its author's key (the edge's debtor sends both the relay and the
 * decision, 3.12.3) and names this set-off, its terms, and for a decision the proposer's
 * verdict. NULL or what is wrong. */
static const char *setoff_row_problem(const audited_home_t *h, const books_setoff_row_t *row)
{
    if (!trust_knows(h->trust, row->peer)) {
        return "a row of a peer that is not in the config";
    }
    if (strcmp(row->fx_id, row->uetr) != 0) {
        return "a leg whose record names another set-off";
    }
    if (row->amount_minor != -row->record_amount_minor) {
        return "the row's amount is not the leg's negated (-m)";
    }
    bool pending = row->kind == ENTRY_SETOFF_PENDING;
    bool own = row->direction == DIRECTION_OUT; /* the debtor relays and decides */
    envelope_message_t msg;
    memset(&msg, 0, sizeof msg);
    int type = 0;
    if (own && !h->own_known) { /* our signature cannot be checked here; the contents can */
        if (evidence_body(row->evidence, row->evidence_len, &type, &msg.version, &msg.body,
                          &msg.body_len) != ENV_OK) {
            return "its evidence is not a SignedMessage";
        }
        msg.type = (msg_type_t)type;
    } else {
        env_err_t rc = trust_verify(own ? h->own_trust : h->trust, row->peer, row->evidence,
                                    row->evidence_len, &msg);
        if (rc != ENV_OK) {
            return own ? "its evidence does not verify with this node's key"
                       : "its evidence does not verify with a key trusted for the peer";
        }
        if (own ? trust_find(h->trust, row->peer, key_id_is, msg.recipient_key_id) == NULL
                : h->own_known && trust_find(h->own_trust, row->peer, key_id_is,
                                             msg.recipient_key_id) == NULL) {
            envelope_message_clear(&msg);
            return "evidence was signed for another recipient";
        }
    }
    const char *problem = NULL;
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    const setoff_terms_t *t = &m.terms;
    uint8_t hash[SETOFF_HASH_BYTES];
    size_t debtor = 0;
    if (msg.type != (pending ? MSG_SETOFF_RELAY : MSG_SETOFF_DECISION)) {
        problem =
            pending ? "its evidence is not a SetoffRelay" : "its evidence is not a SetoffDecision";
    } else if (!setoff_message_decode(msg.body, msg.body_len, !pending, &m)) {
        problem = "its evidence's body does not decode";
    } else if (strcmp(t->setoff_id, row->uetr) != 0 ||
               t->amount_minor != row->record_amount_minor ||
               strcmp(t->currency, row->currency) != 0) {
        problem = "its terms name another set-off id, amount or currency";
    } else if (setoff_terms_hash(m.terms_bytes, m.terms_len, hash),
               row->original_hash_len != SETOFF_HASH_BYTES ||
                   memcmp(hash, row->original_hash, SETOFF_HASH_BYTES) != 0) {
        problem = "its terms are not those the leg names (H13)";
    } else if (!setoff_verify(SETOFF_TERMS_DOMAIN, m.terms_bytes, m.terms_len, m.terms_signature,
                              t->ring[0].signing_key)) {
        problem = "the proposer's signature over its terms (H10) does not verify";
    } else if (!setoff_edge(h, t, row->peer, row->direction, &debtor)) {
        problem = "its terms do not make this channel the leg's edge of the ring";
    } else if (pending) {
        if (!setoff_yes_votes(&m, t, hash, debtor + 1)) {
            problem = "its votes are not the valid yes votes of the ring up to the edge's debtor";
        }
    } else if (!setoff_verify(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len,
                              m.verdict_signature, t->ring[0].signing_key) ||
               memcmp(m.verdict.terms_hash, hash, SETOFF_HASH_BYTES) != 0) {
        problem = "its verdict is not the proposer's (H12) over these terms";
    } else if (m.verdict.commit != (row->kind == ENTRY_SETOFF_POSTED)) {
        problem = row->kind == ENTRY_SETOFF_POSTED ? "a leg posted by an abort"
                                                   : "a leg voided by a commit";
    } else if (m.verdict.commit && !setoff_yes_votes(&m, t, hash, t->n)) {
        problem = "a commit without every member's valid yes vote";
    } else if (!m.verdict.commit && strcmp(m.verdict.reason, row->reason) != 0) {
        problem = "the row's reason differs from the abort's";
    }
    setoff_message_release(&m);
    if (own && !h->own_known) {
        free(msg.body);
    } else {
        envelope_message_clear(&msg);
    }
    return problem;
}

/* One leg's record against its set-off's: the edge, the amount, the terms, and its status under
 * the set-off's state (a leg posted under an abort, or voided under a commit, is money moved
 * against the proposer's verdict). NULL or what is wrong. */
static const char *setoff_leg_problem(const audited_home_t *h, const setoff_book_t *book,
                                      const books_fx_leg_t *leg)
{
    if (strcmp(leg->fx_id, leg->uetr) != 0) {
        return "a leg whose UETR is not its set-off id";
    }
    if (leg->status < STATUS_PENDING || leg->status > STATUS_MAX) {
        return NULL; /* the cache check reports an unknown status */
    }
    bool we_pay = leg->direction == DIRECTION_IN; /* the money goes against the relay */
    const char *self = h->config->name;
    uint8_t canon[DIGEST_BYTES];
    digest_setoff_leg_entry(
        we_pay ? self : leg->peer, we_pay ? leg->peer : self, leg->uetr, leg->amount_minor,
        leg->currency, status_name(status_canonical((status_t)leg->status)), leg->reason, canon);
    if (leg->canon_hash_len != DIGEST_BYTES || memcmp(canon, leg->canon_hash, DIGEST_BYTES) != 0) {
        return "its canonical entry hash does not match its fields";
    }
    audited_setoff_t *s = setoff_find(book, leg->uetr);
    if (s == NULL) {
        return "no set-off of that id is on record";
    }
    if (!s->terms_ok) {
        return NULL; /* the record's problem is reported */
    }
    size_t debtor = 0;
    if (!setoff_edge(h, &s->terms, leg->peer, leg->direction, &debtor)) {
        return "the set-off's ring has no such edge with the peer";
    }
    if (leg->amount_minor != s->terms.amount_minor || strcmp(leg->currency, s->terms.currency)) {
        return "its amount or currency differs from the set-off's";
    }
    if (leg->original_hash_len != SETOFF_HASH_BYTES ||
        memcmp(leg->original_hash, s->hash, SETOFF_HASH_BYTES) != 0) {
        return "it names other terms than the set-off's (H13)";
    }
    if (leg->direction == DIRECTION_OUT) {
        s->legs_out++;
    } else {
        s->legs_in++;
    }
    /* the proposer's leg with ring[n-1] waits for the decision to come back round the ring */
    bool may_wait = s->position == 0 && leg->direction == DIRECTION_IN;
    switch (s->state) {
    case SETOFF_VOTING:
        return leg->status == STATUS_PENDING ? NULL
                                             : "a leg decided under a set-off undecided here";
    case SETOFF_COMMITTED:
        return leg->status == STATUS_SETTLED || (leg->status == STATUS_PENDING && may_wait) ? NULL
               : leg->status == STATUS_REJECTED ? "a leg voided under a committed set-off"
                                                : "a leg not posted under a committed set-off";
    case SETOFF_ABORTED:
        return leg->status == STATUS_REJECTED
                   ? (strcmp(leg->reason, s->reason) == 0
                          ? NULL
                          : "a leg voided for another reason than the set-off's abort")
               : leg->status == STATUS_PENDING && may_wait ? NULL
               : leg->status == STATUS_SETTLED             ? "a leg posted under an aborted set-off"
                                               : "a leg not voided under an aborted set-off";
    default:
        return "a leg of an asking round (it has none)";
    }
}

static void setoff_checks(audit_report_t *r, const audited_home_t *h)
{
    setoff_book_t book = {.r = r, .h = h};
    if (ledger_setoff_each(h->ledger, collect_setoff, &book) != LEDGER_OK || book.failed) {
        violation(r, h->dir, "unreadable", "set-offs: %s",
                  book.failed ? "out of memory" : ledger_last_error(h->ledger));
        free(book.items);
        return;
    }
    books_cursor_t *c = NULL;
    int more = 0;
    if (books_fx_legs(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "set-off legs: %s", ledger_last_error(h->ledger));
    } else {
        books_fx_leg_t leg;
        while ((more = books_fx_legs_next(c, &leg)) == 1) {
            if (leg.fx_leg != FX_LEG_SETOFF) {
                continue;
            }
            const char *problem = setoff_leg_problem(h, &book, &leg);
            if (problem != NULL) {
                violation(r, h->dir, "setoff", "leg %s with %s: %s", leg.uetr, leg.peer, problem);
            }
        }
        if (more < 0) {
            violation(r, h->dir, "unreadable", "set-off legs: %s", ledger_last_error(h->ledger));
        }
        books_close(&c);
    }
    for (size_t i = 0; i < book.count; i++) {
        const audited_setoff_t *s = &book.items[i];
        if (!s->terms_ok) {
            continue;
        }
        if (s->legs_out > 1 || s->legs_in > 1) {
            violation(r, h->dir, "setoff", "set-off %s: more than one leg on an edge", s->id);
        } else if (s->state == SETOFF_COMMITTED && (s->legs_out != 1 || s->legs_in != 1)) {
            violation(r, h->dir, "setoff", "set-off %s: committed without its leg with %s", s->id,
                      s->legs_out != 1 ? "our successor" : "our predecessor");
        }
    }
    free(book.items);
    if (books_setoff_rows(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "set-off rows: %s", ledger_last_error(h->ledger));
        return;
    }
    books_setoff_row_t row;
    while ((more = books_setoff_rows_next(c, &row)) == 1) {
        if (row.fx_leg != FX_LEG_SETOFF || row.kind < ENTRY_SETOFF_PENDING ||
            row.kind > ENTRY_SETOFF_VOIDED) {
            continue; /* a row of another kind, or of a record of another kind: `order` */
        }
        const char *problem = setoff_row_problem(h, &row);
        if (problem != NULL) {
            violation(r, h->dir, "setoff", "row %lld (%s %s with %s): %s", (long long)row.seq,
                      entry_kind_name((entry_kind_t)row.kind), row.uetr, row.peer, problem);
        }
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "set-off rows: %s", ledger_last_error(h->ledger));
    }
    books_close(&c);
}

/* ---- settlement cycles (schema 11, PROTOCOL.md 3.11; kind "cycle") ------------------------ */

/* A cycle of one channel as the audit keeps it while checking the channel. */
typedef struct {
    int64_t cycle, own_sent, peer_sent;
    int state;
    uint8_t *statement; /* ours as stored (copied) */
    size_t statement_len;
    bool row_seen;                /* a `cycle` row names it */
    size_t n;                     /* currencies in `figures` */
    struct cycle_figure *figures; /* recomputed from the entries, per currency */
    bool figures_failed;          /* out of memory, or more currencies than a statement */
} audited_cycle_t;

struct cycle_figure {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    __int128 paid, received, count;
    uint8_t digest[DIGEST_BYTES];
};

typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    audited_cycle_t *items;
    size_t count;
} cycle_channel_t;

typedef struct {
    cycle_channel_t *items;
    size_t count;
    bool failed;
} cycle_book_t;

static void cycle_book_free(cycle_book_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        for (size_t j = 0; j < b->items[i].count; j++) {
            free(b->items[i].items[j].statement);
            free(b->items[i].items[j].figures);
        }
        free(b->items[i].items);
    }
    free(b->items);
    memset(b, 0, sizeof *b);
}

static cycle_channel_t *cycle_channel(const cycle_book_t *b, const char *peer)
{
    for (size_t i = 0; i < b->count; i++) {
        if (strcmp(b->items[i].peer, peer) == 0) {
            return &b->items[i];
        }
    }
    return NULL;
}

static audited_cycle_t *cycle_find(const cycle_book_t *b, const char *peer, int64_t number)
{
    cycle_channel_t *ch = cycle_channel(b, peer);
    for (size_t i = 0; ch != NULL && i < ch->count; i++) {
        if (ch->items[i].cycle == number) {
            return &ch->items[i];
        }
    }
    return NULL;
}

/* Reads table `cycles` (ordered by peer and number) into the book. */
static void load_cycles(audit_report_t *r, const audited_home_t *h, cycle_book_t *out)
{
    books_cursor_t *c = NULL;
    if (books_cycles(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "cycles: %s", ledger_last_error(h->ledger));
        out->failed = true;
        return;
    }
    books_cycle_t cy;
    int more;
    while ((more = books_cycles_next(c, &cy)) == 1 && !out->failed) {
        cycle_channel_t *ch = cycle_channel(out, cy.peer);
        if (ch == NULL) {
            cycle_channel_t *items = realloc(out->items, (out->count + 1) * sizeof *items);
            if (items == NULL) {
                out->failed = true;
                break;
            }
            out->items = items;
            ch = &items[out->count++];
            memset(ch, 0, sizeof *ch);
            snprintf(ch->peer, sizeof ch->peer, "%s", cy.peer);
        }
        audited_cycle_t *items = realloc(ch->items, (ch->count + 1) * sizeof *items);
        if (items == NULL) {
            out->failed = true;
            break;
        }
        ch->items = items;
        audited_cycle_t *a = &items[ch->count++];
        memset(a, 0, sizeof *a);
        a->cycle = cy.cycle;
        a->own_sent = cy.own_sent;
        a->peer_sent = cy.peer_sent;
        a->state = cy.state;
        if (cy.statement_len > 0 && (a->statement = malloc(cy.statement_len)) != NULL) {
            memcpy(a->statement, cy.statement, cy.statement_len);
            a->statement_len = cy.statement_len;
        }
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "cycles: %s", ledger_last_error(h->ledger));
        out->failed = true;
    }
    if (out->failed && more >= 0) {
        violation(r, h->dir, "unreadable", "cycles: out of memory");
    }
    books_close(&c);
}

/* The index of the first cycle of the channel whose cut holds the payee's message of `seq`
 * (`ours`: the bound on our stream, else on the peer's), or ch->count when none does yet.
 * Cuts only grow (checked by check_cycle), so the first is the cycle the message belongs to. */
static size_t cycle_of(const cycle_channel_t *ch, bool ours, int64_t seq)
{
    for (size_t i = 0; i < ch->count; i++) {
        if ((ours ? ch->items[i].own_sent : ch->items[i].peer_sent) >= seq) {
            return i;
        }
    }
    return ch->count;
}

/* Adds (sign 1) or takes away (-1) one entry in `status` from a cycle's recomputed figures. */
static void cycle_add(audited_cycle_t *cy, const char *currency, bool we_pay, int status,
                      int64_t amount, const uint8_t hash[static DIGEST_BYTES], int sign)
{
    struct cycle_figure *f = NULL;
    for (size_t i = 0; i < cy->n && f == NULL; i++) {
        if (strcmp(cy->figures[i].currency, currency) == 0) {
            f = &cy->figures[i];
        }
    }
    if (f == NULL) {
        struct cycle_figure *grown =
            cy->n < CYCLE_CURRENCIES_MAX ? realloc(cy->figures, (cy->n + 1) * sizeof *grown) : NULL;
        if (grown == NULL) {
            cy->figures_failed = true;
            return;
        }
        cy->figures = grown;
        f = &grown[cy->n++];
        memset(f, 0, sizeof *f);
        snprintf(f->currency, sizeof f->currency, "%s", currency);
    }
    f->count += sign;
    (sign > 0 ? digest_add : digest_sub)(f->digest, hash);
    if (status == STATUS_SETTLED) {
        *(we_pay ? &f->paid : &f->received) += sign * (__int128)amount;
    }
}

/* Places one final entry in the cycles of its channel by the rule of 3.11.1: the cycle whose cut
 * first holds the message that made it final (the payee's: for our outgoing record the peer's
 * stream bound, for an incoming one ours), in its final status then. A payment returned in a
 * later cycle counts there as the move from settled to returned (as the running figures move). */
static void cycle_place(const audited_home_t *h, cycle_channel_t *ch, const books_final_t *e)
{
    if (!e->decided || e->canon_hash_len != DIGEST_BYTES) {
        return; /* not final (decided_seq NULL), or a damaged row the cache checks report */
    }
    /* our message decided it: we are the payee (a set-off leg: we sent its relay) */
    bool ours = settlement_decided_by_us(fx_leg_of_column(e->fx_leg), e->direction);
    size_t decided = cycle_of(ch, ours, e->decided_seq);
    size_t returned =
        e->status == STATUS_RETURNED && e->returned ? cycle_of(ch, ours, e->returned_seq) : decided;
    /* the money's way: our outgoing record pays, except FX leg 2, which the acceptor pays, and a
     * set-off leg, whose money goes against the relay (3.12.6) */
    bool we_pay = (e->direction == DIRECTION_OUT) != fx_leg_against(fx_leg_of_column(e->fx_leg));
    if (returned == decided) {
        if (decided < ch->count) {
            cycle_add(&ch->items[decided], e->currency, we_pay, e->status, e->amount_minor,
                      e->canon_hash, 1);
        }
        return;
    }
    /* settled in one cycle, returned in a later one (only a payment is returned: digest_entry) */
    uint8_t settled[DIGEST_BYTES];
    const char *self = h->config->name;
    digest_entry(we_pay ? self : e->peer, we_pay ? e->peer : self, e->uetr, e->amount_minor,
                 e->currency, "settled", "", settled);
    if (decided < ch->count) {
        cycle_add(&ch->items[decided], e->currency, we_pay, STATUS_SETTLED, e->amount_minor,
                  settled, 1);
    }
    if (returned < ch->count) {
        cycle_add(&ch->items[returned], e->currency, we_pay, STATUS_SETTLED, e->amount_minor,
                  settled, -1);
        cycle_add(&ch->items[returned], e->currency, we_pay, STATUS_RETURNED, e->amount_minor,
                  e->canon_hash, 1);
    }
}

static int by_currency(const void *x, const void *y)
{
    return strcmp(((const struct cycle_figure *)x)->currency,
                  ((const struct cycle_figure *)y)->currency);
}

/* The statement the recomputed figures give, encoded (*out malloc'd), or false when they cannot
 * be stated (a figure out of range, too many currencies). */
static bool cycle_recomputed(const audited_home_t *h, const char *peer, audited_cycle_t *cy,
                             uint8_t **out, size_t *out_len)
{
    *out = NULL;
    if (cy->figures_failed || cy->own_sent < 0 || cy->peer_sent < 0 || cy->cycle < 1) {
        return false;
    }
    if (cy->n > 1) {
        qsort(cy->figures, cy->n, sizeof *cy->figures, by_currency);
    }
    cycle_view_t views[CYCLE_CURRENCIES_MAX];
    uint8_t digest[DIGEST_BYTES] = {0};
    __int128 entries = 0;
    size_t n = 0;
    for (size_t i = 0; i < cy->n; i++) {
        const struct cycle_figure *f = &cy->figures[i];
        if (f->count == 0) {
            continue; /* as ledger_cycle_at_cut: a currency without entries is not stated */
        }
        digest_add(digest, f->digest);
        entries += f->count;
        if (f->paid < 0 || f->paid > INT64_MAX || f->received < 0 || f->received > INT64_MAX ||
            f->count < 0 || f->count > INT64_MAX) {
            return false;
        }
        views[n] = (cycle_view_t){.paid = (int64_t)f->paid,
                                  .received = (int64_t)f->received,
                                  .count = (uint64_t)f->count};
        snprintf(views[n].currency, sizeof views[n].currency, "%s", f->currency);
        n++;
    }
    cycle_statement_t st;
    return entries >= 0 && entries <= INT64_MAX &&
           cycle_statement_from_view(&st, h->config->name, peer, (uint64_t)cy->cycle,
                                     (uint64_t)cy->own_sent, (uint64_t)cy->peer_sent, views, n,
                                     digest, (uint64_t)entries) &&
           cycle_statement_encode(&st, out, out_len) == 0;
}

/* trust_find's test: whether a trusted key signed the cycle statement in `arg` (H8). */
typedef struct {
    const uint8_t *statement;
    size_t statement_len;
    const uint8_t *signature;
} signed_cycle_t;

static bool signed_cycle(void *arg, const uint8_t *sign_public)
{
    const signed_cycle_t *c = arg;
    return cycle_verify(c->statement, c->statement_len, c->signature, sign_public);
}

/* A `cycle` row (17): our statement, our signature and the peer's, both verifying, the statement
 * naming this channel and the row's cycle, equal to the `cycles` row's. NULL or what is wrong. */
static const char *cycle_row_problem(audited_home_t *h, const cycle_book_t *book,
                                     const books_cycle_row_t *row)
{
    size_t sig = crypto_sign_BYTES;
    if (row->evidence_len <= 2 * sig) {
        return "its evidence is not a statement and two signatures";
    }
    size_t statement_len = row->evidence_len - 2 * sig;
    const uint8_t *own = row->evidence + statement_len, *peer = own + sig;
    cycle_statement_t st;
    if (!cycle_statement_decode(row->evidence, statement_len, &st)) {
        return "its statement does not decode";
    }
    bool self_first = cycle_self_first(h->config->name, row->peer);
    const char *self = h->config->name;
    char number[24];
    snprintf(number, sizeof number, "%llu", (unsigned long long)st.cycle);
    if (strcmp(self_first ? st.first : st.second, self) != 0 ||
        strcmp(self_first ? st.second : st.first, row->peer) != 0) {
        return "its statement names another channel";
    }
    if (strcmp(row->uetr, number) != 0) {
        return "the row names another cycle than its statement";
    }
    signed_cycle_t by_us = {row->evidence, statement_len, own};
    signed_cycle_t by_peer = {row->evidence, statement_len, peer};
    if (h->own_known && trust_find(h->own_trust, row->peer, signed_cycle, &by_us) == NULL) {
        return "this node's signature on the cycle does not verify";
    }
    if (trust_find(h->trust, row->peer, signed_cycle, &by_peer) == NULL) {
        return "the peer's signature on the cycle does not verify";
    }
    audited_cycle_t *cy = cycle_find(book, row->peer, (int64_t)st.cycle);
    if (cy == NULL || cy->state != CYCLE_CLOSED) {
        return "no closed cycle of that number is on record";
    }
    if (cy->row_seen) {
        return "a second row for the cycle";
    }
    cy->row_seen = true;
    if (cy->statement_len != statement_len ||
        memcmp(cy->statement, row->evidence, statement_len) != 0) {
        return "its statement differs from the cycle on record";
    }
    return NULL;
}

/* The net settlement a row names, as recorded (by peer and id), or NULL. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char id[CORRIDOR_UETR_LEN + 1];
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t cycle, amount_minor;
    bool we_owe;
    int status;
    bool body_hash_ok;
    uint8_t body_hash[SETTLEMENT_HASH_BYTES];
    bool settled_row;                                  /* a net_settled row names it */
    unsigned claimed_rows, settled_rows, refused_rows; /* rows naming it, by kind */
} audited_net_t;

typedef struct {
    audited_net_t *items;
    size_t count;
} net_book_t;

static audited_net_t *net_find(const net_book_t *b, const char *peer, const char *id)
{
    for (size_t i = 0; i < b->count; i++) {
        if (strcmp(b->items[i].peer, peer) == 0 && strcmp(b->items[i].id, id) == 0) {
            return &b->items[i];
        }
    }
    return NULL;
}

static void load_nets(audit_report_t *r, const audited_home_t *h, net_book_t *out)
{
    books_cursor_t *c = NULL;
    if (books_nets(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "net settlements: %s", ledger_last_error(h->ledger));
        return;
    }
    books_net_t n;
    int more;
    while ((more = books_nets_next(c, &n)) == 1) {
        audited_net_t *items = realloc(out->items, (out->count + 1) * sizeof *items);
        if (items == NULL) {
            violation(r, h->dir, "unreadable", "net settlements: out of memory");
            break;
        }
        out->items = items;
        audited_net_t *a = &items[out->count++];
        memset(a, 0, sizeof *a);
        snprintf(a->peer, sizeof a->peer, "%s", n.peer);
        snprintf(a->id, sizeof a->id, "%s", n.id);
        snprintf(a->currency, sizeof a->currency, "%s", n.currency);
        a->cycle = n.cycle;
        a->amount_minor = n.amount_minor;
        a->we_owe = n.we_owe;
        a->status = n.status;
        a->body_hash_ok = n.body_hash_len == SETTLEMENT_HASH_BYTES;
        if (a->body_hash_ok) {
            memcpy(a->body_hash, n.body_hash, SETTLEMENT_HASH_BYTES);
        }
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "net settlements: %s", ledger_last_error(h->ledger));
    }
    books_close(&c);
}

/* A row of a net settlement (18 net_claimed, 19 net_settled, 20 net_refused): its SignedMessage
 * verifies with its author's key (the NetSettlement the debtor's, the StatusReport the
 * creditor's) and says what the row and the record say. NULL or what is wrong. */
static const char *net_row_problem(audited_home_t *h, const net_book_t *nets,
                                   const books_cycle_row_t *row)
{
    audited_net_t *n = net_find(nets, row->peer, row->uetr);
    if (n == NULL) {
        return "no net settlement of that id is on record";
    }
    bool claim = row->kind == ENTRY_NET_CLAIMED;
    bool own = claim == n->we_owe; /* the debtor signs the claim, the creditor the answer */
    n->claimed_rows += claim ? 1 : 0;
    n->settled_rows += row->kind == ENTRY_NET_SETTLED ? 1 : 0;
    n->refused_rows += row->kind == ENTRY_NET_REFUSED ? 1 : 0;
    if (strcmp(row->currency, n->currency) != 0) {
        return "the row's currency differs from the net settlement's";
    }
    int64_t want = claim                            ? n->amount_minor
                   : row->kind == ENTRY_NET_REFUSED ? 0
                   : n->we_owe                      ? n->amount_minor
                                                    : -n->amount_minor;
    if (row->amount_minor != want) {
        return "the row's amount is not the net settlement's (+m at the debtor, -m at the "
               "creditor)";
    }
    if (row->kind == ENTRY_NET_SETTLED) {
        n->settled_row = true;
    }
    if (own && !h->own_known) {
        return NULL; /* our own signature cannot be checked here */
    }
    envelope_message_t msg;
    env_err_t rc = trust_verify(own ? h->own_trust : h->trust, row->peer, row->evidence,
                                row->evidence_len, &msg);
    if (rc != ENV_OK) {
        return own ? "its evidence does not verify with this node's key"
                   : "its evidence does not verify with a key trusted for the peer";
    }
    const char *problem = NULL;
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    if (claim) {
        net_settlement_t ns;
        settlement_body_hash(msg.body, msg.body_len, hash);
        if (msg.type != MSG_NET_SETTLEMENT || !net_settlement_decode(msg.body, msg.body_len, &ns)) {
            problem = "its evidence is not a NetSettlement";
        } else if (strcmp(ns.settlement_id, row->uetr) != 0 ||
                   strcmp(ns.currency, row->currency) != 0 ||
                   ns.amount_minor != row->amount_minor || (int64_t)ns.cycle != n->cycle) {
            problem = "its NetSettlement names another id, cycle, currency or amount";
        } else if (!n->body_hash_ok || memcmp(hash, n->body_hash, sizeof hash) != 0) {
            problem = "the record names another NetSettlement than the row holds";
        }
    } else {
        Corridor__StatusReport *sr =
            msg.type == MSG_STATUS_REPORT
                ? (Corridor__StatusReport *)wire_unpack(&corridor__status_report__descriptor,
                                                        msg.body_len, msg.body)
                : NULL;
        const char *status = row->kind == ENTRY_NET_SETTLED ? "ACSC" : "RJCT";
        if (sr == NULL) {
            problem = "its evidence is not a StatusReport";
        } else if (strcmp(sr->uetr, row->uetr) != 0 || strcmp(sr->status, status) != 0) {
            problem = "its StatusReport names another id or status";
        } else if (!n->body_hash_ok || sr->settlement_hash.len != SETTLEMENT_HASH_BYTES ||
                   memcmp(sr->settlement_hash.data, n->body_hash, SETTLEMENT_HASH_BYTES) != 0) {
            problem = "its StatusReport answers another NetSettlement";
        }
        corridor__status_report__free_unpacked(sr, NULL);
    }
    envelope_message_clear(&msg);
    return problem;
}

/* The journal's rows of kinds 17 to 20: rows of no settlement, of a known peer. */
static void cycle_rows(audit_report_t *r, audited_home_t *h, const cycle_book_t *book,
                       const net_book_t *nets)
{
    books_cursor_t *c = NULL;
    if (books_cycle_rows(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "cycle rows: %s", ledger_last_error(h->ledger));
        return;
    }
    books_cycle_row_t row;
    int more;
    while ((more = books_cycle_rows_next(c, &row)) == 1) {
        const char *problem = NULL;
        if (row.settlement_id != 0 || !trust_knows(h->trust, row.peer)) {
            problem = "a row of a settlement, or of a peer that is not in the config";
        } else if (row.kind == ENTRY_CYCLE) {
            problem = row.amount_minor != 0 || row.currency[0] != '\0'
                          ? "a cycle row that names an amount or a currency"
                          : cycle_row_problem(h, book, &row);
        } else {
            problem = net_row_problem(h, nets, &row);
        }
        if (problem != NULL) {
            violation(r, h->dir, "cycle", "row %lld (%s %s with %s): %s", (long long)row.seq,
                      entry_kind_name((entry_kind_t)row.kind), row.uetr, row.peer, problem);
        }
    }
    if (more < 0) {
        violation(r, h->dir, "unreadable", "cycle rows: %s", ledger_last_error(h->ledger));
    }
    books_close(&c);
}

/* One cycle of a channel, its rows read and its figures recomputed. A closing cycle that is not
 * the channel's latest, and a disputed cycle, are violations: the audit has no warnings, and
 * like a break found by `mirror` they are books that do not stand on both signatures (a node
 * never proposes while a cycle is closing, so an older closing one was left behind or edited; a
 * disputed one is two sets of signed figures at one cut, never to be settled). The latest
 * closing cycle may be in flight and is not reported. */
static void check_cycle(audit_report_t *r, audited_home_t *h, const cycle_channel_t *ch, size_t i)
{
    audited_cycle_t *cy = &ch->items[i];
    const audited_cycle_t *prev = i > 0 ? &ch->items[i - 1] : NULL;
    const char *problem = NULL;
    uint8_t *recomputed = NULL;
    size_t recomputed_len = 0;
    if (cy->cycle != (prev != NULL ? prev->cycle + 1 : 1)) {
        problem = "cycles are not numbered 1, 2, 3, ...";
    } else if (prev != NULL && (cy->own_sent < prev->own_sent || cy->peer_sent < prev->peer_sent)) {
        problem = "its cut lies below the cycle before";
    } else if (cy->state == CYCLE_CLOSING) {
        problem =
            i + 1 < ch->count ? "one-sided: signed by one side only, and not the latest" : NULL;
    } else if (cy->state == CYCLE_DISPUTED) {
        problem = "disputed: the two sides signed different figures at its cut";
    } else if (cy->state != CYCLE_CLOSED) {
        problem = "an unknown state";
    } else if (!cy->row_seen) {
        problem = "closed, but no valid cycle row with both signatures is in the journal";
    } else if (!cycle_recomputed(h, ch->peer, cy, &recomputed, &recomputed_len) ||
               recomputed_len != cy->statement_len ||
               memcmp(recomputed, cy->statement, recomputed_len) != 0) {
        problem = "its statement differs from the figures the entries give";
    }
    if (problem != NULL) {
        violation(r, h->dir, "cycle", "cycle %lld with %s: %s", (long long)cy->cycle, ch->peer,
                  problem);
    }
    free(recomputed);
}

/* A settled net settlement has its net_settled row, pays a closed cycle's net in its currency
 * from the side that owes it. */
static void check_net(audit_report_t *r, const audited_home_t *h, const cycle_book_t *book,
                      const audited_net_t *n)
{
    /* one claim, then at most one outcome, the one the record's status says: a second
     * net_settled row (its evidence reused) would renew the headroom twice */
    bool settled = n->status == STATUS_SETTLED, refused = n->status == STATUS_REJECTED;
    if (n->claimed_rows != 1 || n->settled_rows != (settled ? 1u : 0u) ||
        n->refused_rows != (refused ? 1u : 0u)) {
        violation(r, h->dir, "cycle",
                  "net settlement %s with %s: %u net_claimed, %u net_settled and %u net_refused "
                  "rows for status %s (one claim, then its one outcome)",
                  n->id, n->peer, n->claimed_rows, n->settled_rows, n->refused_rows,
                  status_name((status_t)n->status));
    }
    if (!settled) {
        return;
    }
    const audited_cycle_t *cy = cycle_find(book, n->peer, n->cycle);
    cycle_statement_t st;
    const char *problem = NULL;
    if (!n->settled_row) {
        problem = "settled without a net_settled row";
    } else if (cy == NULL || cy->state != CYCLE_CLOSED) {
        problem = "its cycle is not closed";
    } else if (!cycle_statement_decode(cy->statement, cy->statement_len, &st)) {
        problem = "its cycle's statement does not decode";
    } else {
        int64_t net = 0, paid = 0, received = 0;
        for (size_t i = 0; i < st.n_currencies; i++) {
            if (strcmp(st.currencies[i].currency, n->currency) == 0) {
                cycle_currency_view(&st.currencies[i], cycle_self_first(h->config->name, n->peer),
                                    &paid, &received, &net);
            }
        }
        /* we owe when our net is negative: the debtor pays -net, the creditor is paid net */
        if (net == 0 || (net < 0) != n->we_owe || n->amount_minor != (n->we_owe ? -net : net)) {
            problem = "its amount is not the cycle's net owed in that currency";
        }
    }
    if (problem != NULL) {
        violation(r, h->dir, "cycle", "net settlement %s of cycle %lld with %s: %s", n->id,
                  (long long)n->cycle, n->peer, problem);
    }
}

static void cycle_checks(audit_report_t *r, audited_home_t *h)
{
    cycle_book_t book = {0};
    net_book_t nets = {0};
    load_cycles(r, h, &book);
    load_nets(r, h, &nets);
    if (!book.failed) {
        cycle_rows(r, h, &book, &nets);
        books_cursor_t *c = NULL;
        if (books_finals(h->ledger, &c) != LEDGER_OK) {
            violation(r, h->dir, "unreadable", "settlements: %s", ledger_last_error(h->ledger));
        } else {
            books_final_t e;
            int more;
            while ((more = books_finals_next(c, &e)) == 1) {
                cycle_channel_t *ch = cycle_channel(&book, e.peer);
                if (ch != NULL) {
                    cycle_place(h, ch, &e);
                }
            }
            if (more < 0) {
                violation(r, h->dir, "unreadable", "settlements: %s", ledger_last_error(h->ledger));
            }
            books_close(&c);
        }
        for (size_t i = 0; i < book.count; i++) {
            if (!trust_knows(h->trust, book.items[i].peer)) {
                violation(r, h->dir, "cycle", "cycles with %s, which is not a configured peer",
                          book.items[i].peer);
                continue;
            }
            for (size_t j = 0; j < book.items[i].count; j++) {
                check_cycle(r, h, &book.items[i], j);
            }
        }
        for (size_t i = 0; i < nets.count; i++) {
            check_net(r, h, &book, &nets.items[i]);
        }
    }
    free(nets.items);
    cycle_book_free(&book);
}

/* Cached balances against the replay, and I1 per currency over the cache: the clearing
 * account of a currency must hold exactly the opposite of all its peer accounts. */
static void balances(audit_report_t *r, const audited_home_t *h, const replay_t *rp)
{
    books_cursor_t *c = NULL;
    if (books_accounts(h->ledger, &c) != LEDGER_OK) {
        violation(r, h->dir, "unreadable", "accounts: %s", ledger_last_error(h->ledger));
        return;
    }
    replay_t totals = {0}; /* per currency: the sum over every account */
    size_t peer_accounts_seen = 0;
    books_account_t account;
    while (books_accounts_next(c, &account) == 1) {
        bool is_peer = account.is_peer;
        const char *peer = account.peer;
        const char *ccy = account.currency;
        ledger_effect_t cached = {.pending = account.pending_net, .posted = account.posted_net};
        replayed_t *total = replay_slot(&totals, "", ccy);
        if (total == NULL) {
            break;
        }
        /* wrapping sums: a tampered cache may be anything, and must not be undefined */
        total->sum.pending = (int64_t)((uint64_t)total->sum.pending + (uint64_t)cached.pending);
        total->sum.posted = (int64_t)((uint64_t)total->sum.posted + (uint64_t)cached.posted);
        if (!is_peer) {
            continue;
        }
        peer_accounts_seen++;
        ledger_effect_t want = {0, 0};
        for (size_t i = 0; i < rp->count; i++) {
            if (strcmp(rp->items[i].peer, peer) == 0 && strcmp(rp->items[i].currency, ccy) == 0) {
                want = rp->items[i].sum;
            }
        }
        if (want.posted != cached.posted || want.pending != cached.pending) {
            violation(r, h->dir, "balance",
                      "account %s %s: cached net %lld, journal gives %lld (pending %lld vs %lld)",
                      peer, ccy, (long long)cached.posted, (long long)want.posted,
                      (long long)cached.pending, (long long)want.pending);
        }
    }
    books_close(&c);
    for (size_t i = 0; i < totals.count; i++) {
        if (totals.items[i].sum.posted != 0 || totals.items[i].sum.pending != 0) {
            violation(r, h->dir, "balance",
                      "%s: debits and credits differ by %lld posted, %lld pending (I1)",
                      totals.items[i].currency, (long long)totals.items[i].sum.posted,
                      (long long)totals.items[i].sum.pending);
        }
    }
    free(totals.items);
    if (peer_accounts_seen < rp->count) {
        violation(r, h->dir, "balance", "%zu accounts the journal moves are missing",
                  rp->count - peer_accounts_seen);
    }
}

/* ---- pairs (I2) ------------------------------------------------------------------------- */

static int64_t count_pending(ledger_t *l, const char *peer)
{
    int64_t n = -1;
    return books_pending_count(l, peer, &n) == LEDGER_OK ? n : -1;
}

static void mirror_currency(audit_report_t *r, audited_home_t *a, audited_home_t *b,
                            const char *ccy)
{
    const char *na = a->config->name, *nb = b->config->name;
    int64_t net_a = 0, net_b = 0, pending = 0;
    if (ledger_position(a->ledger, nb, ccy, &net_a, &pending) != LEDGER_OK ||
        ledger_position(b->ledger, na, ccy, &net_b, &pending) != LEDGER_OK) {
        violation(r, a->dir, "unreadable", "positions with %s", nb);
    } else if (!position_mirrors(net_a, net_b)) {
        violation(r, a->dir, "mirror", "%s.net(%s, %s) = %lld but %s.net(%s, %s) = %lld (I2)", na,
                  nb, ccy, (long long)net_a, nb, na, ccy, (long long)net_b);
    }
}

static void mirror(audit_report_t *r, audited_home_t *a, audited_home_t *b)
{
    const char *na = a->config->name, *nb = b->config->name;
    if (config_find_peer(a->config, nb) == NULL || config_find_peer(b->config, na) == NULL) {
        return; /* not a channel */
    }
    if (count_pending(a->ledger, nb) != 0 || count_pending(b->ledger, na) != 0) {
        return; /* I2 holds only when nothing is in flight */
    }
    for (size_t i = 0; i < a->config->currencies_count; i++) {
        mirror_currency(r, a, b, a->config->currencies[i]);
    }
    for (size_t i = 0; i < b->config->currencies_count; i++) {
        if (!config_accepts(a->config, b->config->currencies[i])) {
            mirror_currency(r, a, b, b->config->currencies[i]);
        }
    }
}

/* ---- history across a pair: truncation, rollback, flips --------------------------------- */

/* What `a` decided with `b` must be in b's books: a final status at one side was signed by the
 * other side or answered to it. b lacking it, or saying otherwise, means b's history was cut,
 * put back from an older copy, or changed; a single home cannot show that, two homes can. */
static void history_of_settlements(audit_report_t *r, audited_home_t *a, audited_home_t *b)
{
    const char *na = a->config->name, *nb = b->config->name;
    books_cursor_t *ours = NULL, *theirs = NULL;
    if (books_decided(a->ledger, nb, &ours) != LEDGER_OK ||
        books_finder(b->ledger, na, &theirs) != LEDGER_OK) {
        violation(r, a->dir, "unreadable", "settlements of %s and %s: %s", na, nb,
                  ledger_last_error(ours == NULL ? a->ledger : b->ledger));
        goto cleanup;
    }
    const char *uetr = NULL;
    direction_t direction = DIRECTION_OUT, their_direction = DIRECTION_OUT;
    status_t status = STATUS_PENDING;
    int more;
    while ((more = books_decided_next(ours, &uetr, &direction, &status)) == 1) {
        bool out = direction == DIRECTION_OUT;
        int their_status = -1;
        bool found = books_find(theirs, uetr, &their_direction, &their_status) == 1;
        bool mirrored = found && (their_direction == DIRECTION_OUT) != out;
        if (!found || !mirrored) {
            violation(r, b->dir, "history",
                      "UETR %s: %s holds it %s with %s, %s has no such settlement (its journal "
                      "was cut, or an older copy put back)",
                      uetr, na, status_name(status), nb, nb);
        } else if (out && their_status != (int)status && their_status != STATUS_RETURNED) {
            /* once, from the payer's side: which side's signature contradicts which is for
             * each home's own audit (our reply in the booking row) and for reconcile */
            violation(r, a->dir, "history", "UETR %s: %s holds it %s, %s holds it %s", uetr, na,
                      status_name(status), nb,
                      their_status >= STATUS_PENDING && their_status <= STATUS_RETURNED
                          ? status_name((status_t)their_status)
                          : "unknown");
        }
    }
    if (more < 0) {
        violation(r, a->dir, "unreadable", "settlements: %s", ledger_last_error(a->ledger));
    }

cleanup:
    books_close(&ours);
    books_close(&theirs);
}

/* Every checkpoint `a` holds with `b` names b's journal: its row count and head, which b
 * signed. b's journal must still pass through that head. Whether b stored the checkpoint too
 * does not matter (its countersignature may have been lost on the way back). */
static void history_of_checkpoints(audit_report_t *r, audited_home_t *a, audited_home_t *b)
{
    books_cursor_t *ours = NULL;
    if (books_checkpoints(a->ledger, b->config->name, false, &ours) != LEDGER_OK) {
        violation(r, a->dir, "unreadable", "checkpoints: %s", ledger_last_error(a->ledger));
        return;
    }
    books_checkpoint_t stored;
    int more;
    while ((more = books_checkpoints_next(ours, &stored)) == 1) {
        Corridor__Checkpoint *cp = (Corridor__Checkpoint *)wire_unpack(
            &corridor__checkpoint__descriptor, stored.body_len, stored.body);
        if (cp == NULL) {
            continue; /* a's own audit reports an unreadable checkpoint */
        }
        bool b_first = strcmp(cp->first, b->config->name) == 0;
        uint64_t rows = b_first ? cp->first_rows : cp->second_rows;
        ProtobufCBinaryData head = b_first ? cp->first_head : cp->second_head;
        uint8_t at[LEDGER_HASH_BYTES];
        ledger_err_t rc = rows == 0 ? LEDGER_OK : ledger_row_hash_at(b->ledger, rows, at);
        if (rows > 0 && head.len == LEDGER_HASH_BYTES &&
            (rc != LEDGER_OK || memcmp(at, head.data, LEDGER_HASH_BYTES) != 0)) {
            violation(r, b->dir, "history",
                      "%s's journal no longer passes through row %llu as it co-signed with %s "
                      "(%s)",
                      b->config->name, (unsigned long long)rows, a->config->name,
                      rc == LEDGER_E_NOT_FOUND ? "the row is gone: its journal was cut, or an "
                                                 "older copy put back"
                                               : "the rows up to it were changed");
        }
        corridor__checkpoint__free_unpacked(cp, NULL);
    }
    if (more < 0) {
        violation(r, a->dir, "unreadable", "checkpoints: %s", ledger_last_error(a->ledger));
    }
    books_close(&ours);
}

static void history(audit_report_t *r, audited_home_t *a, audited_home_t *b)
{
    if (config_find_peer(a->config, b->config->name) == NULL &&
        config_find_peer(b->config, a->config->name) == NULL) {
        return; /* not a channel (one side dropping the other does not hide its books) */
    }
    history_of_settlements(r, a, b);
    history_of_settlements(r, b, a);
    history_of_checkpoints(r, a, b);
    history_of_checkpoints(r, b, a);
}

/* ---- driver ----------------------------------------------------------------------------- */

/* Notes a home whose own signatures cannot be checked (no card of it, no key file). */
static void report_own_unchecked(audit_report_t *r, const char *dir)
{
    if (r->own_unchecked_count < AUDIT_HOMES_NOTED) {
        snprintf(r->own_unchecked[r->own_unchecked_count++], sizeof r->own_unchecked[0], "%s", dir);
    }
}

/* trust_build's report of a peer whose config key is on none of its cards: decided once the
 * key history is read (the config keeps the card a peer had before it rotated its keys). */
static void key_mismatch(void *arg, const char *peer)
{
    audited_home_t *h = arg;
    for (size_t p = 0; p < h->config->peers_count; p++) {
        if (strcmp(h->config->peers[p].card.name, peer) == 0) {
            h->mismatched[p] = true;
        }
    }
}

static void report_mismatches(audit_report_t *r, audited_home_t *h)
{
    for (size_t p = 0; p < h->config->peers_count; p++) {
        const peer_card_t *card = &h->config->peers[p].card;
        uint8_t id[IDENTITY_KEY_ID_BYTES];
        identity_key_id(card->sign_public, id);
        if (h->mismatched[p] && trust_find(h->trust, card->name, key_id_is, id) == NULL) {
            violation(r, h->dir, "key",
                      "corridor.conf trusts a key for %s that none of the cards given for it "
                      "holds, nor its key history (swapped, or a card is missing)",
                      card->name);
        }
    }
}

/* ---- the key history (PROTOCOL.md 2.14) ---------------------------------------------------- */

typedef struct {
    key_record_t *items;
    size_t count, capacity;
    bool failed; /* out of memory */
} key_list_t;

static void keep_key(const key_record_t *k, void *arg)
{
    key_list_t *l = arg;
    if (l->failed) {
        return;
    }
    if (l->count == l->capacity) {
        size_t cap = l->capacity == 0 ? 8 : 2 * l->capacity;
        key_record_t *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            l->failed = true;
            return;
        }
        l->items = items;
        l->capacity = cap;
    }
    key_record_t *out = &l->items[l->count];
    *out = *k;
    out->evidence = NULL;
    if (k->evidence_len > 0 && (out->evidence = malloc(k->evidence_len)) == NULL) {
        l->failed = true;
        return;
    }
    if (k->evidence_len > 0) {
        memcpy(out->evidence, k->evidence, k->evidence_len);
    }
    l->count++;
}

/* Whether `next` follows `prev` in a key history: its announcement, signed by `prev` at the
 * number before `next`'s first, names exactly `next`'s keys with their proof of possession.
 * NULL, or what is wrong. */
static const char *link_problem(const key_record_t *prev, const key_record_t *next)
{
    if (prev->last_seq == 0 || prev->last_seq + 1 != next->first_seq) {
        return "the ranges of two keys in a row do not meet";
    }
    if (strcmp(next->source, "announced") != 0 || next->evidence_len == 0) {
        return "a key that is not introduced by its announcement";
    }
    envelope_message_t msg;
    if (evidence_verify(next->evidence, next->evidence_len, prev->sign_public, &msg) != ENV_OK) {
        return "an announcement that the key before does not sign";
    }
    key_announce_t ka;
    const char *problem = NULL;
    if (msg.type != MSG_KEY_ANNOUNCE || msg.sequence != prev->last_seq) {
        problem = "an announcement of another type or number than the key's range says";
    } else if (key_announce_decode(msg.body, msg.body_len, prev->key_id, &ka) != 0) {
        problem = "an announcement without a valid proof of possession";
    } else if (memcmp(ka.sign_public, next->sign_public, sizeof ka.sign_public) != 0 ||
               memcmp(ka.box_public, next->box_public, sizeof ka.box_public) != 0 ||
               strcmp(ka.curve_public, next->curve_public) != 0) {
        problem = "an announcement that names other keys than the history holds";
    }
    envelope_message_clear(&msg);
    return problem;
}

/* What is wrong with items[i], a replaced key, against the replacement the journal records
 * (struct replacement): NULL if a row names it in place of items[i - 1], from the same number,
 * and every key before it that reaches the row's revocation point is revoked there. */
static const char *replacement_problem(const audited_home_t *h, const key_record_t *items, size_t i)
{
    const key_record_t *prev = &items[i - 1], *next = &items[i];
    if (prev->last_seq + 1 != next->first_seq) {
        return "the ranges of two keys in a row do not meet";
    }
    const struct replacement *rp = NULL;
    for (size_t r = 0; r < h->replacements_count && rp == NULL; r++) {
        const struct replacement *c = &h->replacements[r];
        if (strcmp(c->peer, next->peer) == 0 && c->side == next->side &&
            memcmp(c->key_id, next->key_id, IDENTITY_KEY_ID_BYTES) == 0 &&
            memcmp(c->replaced_key_id, prev->key_id, IDENTITY_KEY_ID_BYTES) == 0) {
            rp = c;
        }
    }
    if (rp == NULL) {
        return "a replaced key that no operator action on record names";
    }
    if (rp->first_seq != next->first_seq) {
        return "a replaced key whose range begins elsewhere than its operator action says";
    }
    for (size_t j = 0; j < i; j++) {
        bool reaches = items[j].last_seq >= rp->revoked_from;
        if (reaches && (items[j].revoked_from == 0 || items[j].revoked_from > rp->revoked_from)) {
            return "a key before a replacement not revoked where its operator action says";
        }
    }
    return NULL;
}

/* One side of one channel's history, items[from..to): checked, then each key trusted for its
 * range. The history is a chain of announcements, cut where an operator replaced a key
 * (PROTOCOL.md 2.15): each piece must hold a key trusted already (a card, the config or the
 * key file), or end with the key a replacement on record names. */
static void verify_keys(audit_report_t *r, audited_home_t *h, const key_record_t *items,
                        size_t count)
{
    const key_record_t *first = &items[0];
    bool ours = first->side == KEY_SIDE_OURS;
    trust_t *set = ours ? h->own_trust : h->trust;
    const char *whose = ours ? "our keys" : "the peer's keys";
    if (!trust_knows(set, first->peer)) {
        violation(r, h->dir, "keys", "a key history for %s, which is not a configured peer",
                  first->peer);
        return;
    }
    const char *problem = first->first_seq == 1 ? NULL : "the first key does not sign from 1";
    size_t last_piece = 0; /* where the piece with the open key begins */
    for (size_t i = 1; i < count && problem == NULL; i++) {
        if (strcmp(items[i].source, "replaced") != 0) {
            problem = link_problem(&items[i - 1], &items[i]);
        } else if ((problem = replacement_problem(h, items, i)) == NULL) {
            last_piece = i; /* the piece before: the recorded replacement vouches for it */
        }
    }
    bool anchored = false;
    for (size_t i = last_piece; i < count; i++) {
        anchored |= trust_find(set, first->peer, key_id_is, (void *)items[i].key_id) != NULL;
    }
    if (problem == NULL && items[count - 1].last_seq != 0) {
        problem = "the newest key is closed";
    }
    if (problem == NULL && !anchored && (!ours || h->own_known)) {
        problem = "none of its keys is trusted (by a card, the config or the key file)";
    }
    if (problem != NULL) {
        violation(r, h->dir, "keys", "key history of %s on the channel with %s: %s", whose,
                  first->peer, problem);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t from = items[i].first_seq, through = items[i].last_seq;
        bool none = items[i].last_seq != 0 && items[i].last_seq < from; /* closed empty */
        if (items[i].revoked_from != 0 && (through == 0 || items[i].revoked_from <= through)) {
            through = items[i].revoked_from - 1; /* revoked: nothing from there on */
            none |= through < from;
        }
        if (none) { /* revoked from its first number: it signs none */
            from = UINT64_MAX;
            through = UINT64_MAX;
        }
        if (trust_bound(set, first->peer, items[i].sign_public, from, through) != 0) {
            violation(r, h->dir, "unreadable", "out of memory");
            return;
        }
    }
}

static bool hex_key_id(json_t *v, uint8_t out[static IDENTITY_KEY_ID_BYTES])
{
    const char *hex = json_string_value(v);
    size_t len = 0;
    return hex != NULL && strlen(hex) == 2 * IDENTITY_KEY_ID_BYTES &&
           sodium_hex2bin(out, IDENTITY_KEY_ID_BYTES, hex, strlen(hex), NULL, &len, NULL) == 0 &&
           len == IDENTITY_KEY_ID_BYTES;
}

typedef struct {
    audited_home_t *h;
    bool failed; /* out of memory */
} replacements_t;

static void add_replacement(replacements_t *out, const char *peer, key_side_t side, json_t *key_id,
                            json_t *replaced, json_t *first_seq, json_t *revoked_from)
{
    struct replacement rp;
    memset(&rp, 0, sizeof rp);
    if (strlen(peer) >= sizeof rp.peer || !hex_key_id(key_id, rp.key_id) ||
        !hex_key_id(replaced, rp.replaced_key_id) || !json_is_integer(first_seq) ||
        json_integer_value(first_seq) < 1 || !json_is_integer(revoked_from) ||
        json_integer_value(revoked_from) < 1) {
        return; /* names nothing a history can hold: vouches for nothing */
    }
    rp.first_seq = (uint64_t)json_integer_value(first_seq);
    rp.revoked_from = (uint64_t)json_integer_value(revoked_from);
    snprintf(rp.peer, sizeof rp.peer, "%s", peer);
    rp.side = side;
    audited_home_t *h = out->h;
    struct replacement *grown =
        realloc(h->replacements, (h->replacements_count + 1) * sizeof *grown);
    if (grown == NULL) {
        out->failed = true;
        return;
    }
    h->replacements = grown;
    h->replacements[h->replacements_count++] = rp;
}

/* An operator row with action "replace": {"side":"theirs","key_id","replaced_key_id",
 * "first_seq","revoked_from"} on the peer's channel (the row's peer), or {"side":"ours",
 * "key_id","channels":[{"peer","replaced_key_id","first_seq"}]} for our own keys on each
 * channel, revoked from first_seq (cli_replace.c). */
static void collect_replacement(const ledger_operation_t *op, void *arg)
{
    json_t *record = json_loads(op->record, 0, NULL);
    json_t *args = json_object_get(record, "args");
    const char *action = json_string_value(json_object_get(record, "action"));
    const char *side = json_string_value(json_object_get(args, "side"));
    if (action != NULL && strcmp(action, "replace") == 0 && side != NULL) {
        json_t *key_id = json_object_get(args, "key_id");
        if (strcmp(side, "theirs") == 0) {
            add_replacement(
                arg, op->peer, KEY_SIDE_THEIRS, key_id, json_object_get(args, "replaced_key_id"),
                json_object_get(args, "first_seq"), json_object_get(args, "revoked_from"));
        } else if (strcmp(side, "ours") == 0) {
            size_t i;
            json_t *ch;
            json_array_foreach(json_object_get(args, "channels"), i, ch)
            {
                const char *peer = json_string_value(json_object_get(ch, "peer"));
                if (peer != NULL) {
                    json_t *first = json_object_get(ch, "first_seq");
                    add_replacement(arg, peer, KEY_SIDE_OURS, key_id,
                                    json_object_get(ch, "replaced_key_id"), first, first);
                }
            }
        }
    }
    json_decref(record);
}

/* Reads the home's key history and trusts each verified key for its range. */
static void load_key_history(audit_report_t *r, audited_home_t *h)
{
    key_list_t l = {0};
    if (ledger_keys(h->ledger, NULL, keep_key, &l) != LEDGER_OK || l.failed) {
        violation(r, h->dir, "keys", "the key history cannot be read: %s",
                  l.failed ? "out of memory" : ledger_last_error(h->ledger));
    } else {
        size_t from = 0;
        for (size_t i = 1; i <= l.count; i++) { /* ordered by peer, side, first_seq */
            if (i == l.count || strcmp(l.items[i].peer, l.items[from].peer) != 0 ||
                l.items[i].side != l.items[from].side) {
                verify_keys(r, h, &l.items[from], i - from);
                from = i;
            }
        }
    }
    for (size_t i = 0; i < l.count; i++) {
        free(l.items[i].evidence);
    }
    free(l.items);
}

static int open_home(audit_report_t *r, const char *dir, const peer_card_t *cards,
                     size_t cards_count, audited_home_t *h)
{
    memset(h, 0, sizeof *h);
    h->dir = dir;
    home_t home;
    char err[512];
    if (home_resolve(&home, dir) != 0) {
        violation(r, dir, "unreadable", "home path too long");
        return -1;
    }
    if (config_load(home.config_path, &h->config, err, sizeof err) != 0) {
        violation(r, dir, "unreadable", "%s", err);
        return -1;
    }
    /* our own key: the auditor's card of this node first (the key file is in the home an
     * insider may edit), else the key file */
    identity_t *identity = NULL;
    for (size_t i = 0; i < cards_count; i++) {
        if (strcmp(cards[i].name, h->config->name) == 0) {
            memcpy(h->own_public, cards[i].sign_public, sizeof h->own_public);
            h->own_known = true;
        }
    }
    if (!h->own_known && identity_load(home.key_path, &identity) == ID_OK) {
        memcpy(h->own_public, identity->sign_public, sizeof h->own_public);
        h->own_known = true;
    }
    identity_destroy(&identity);
    if (!h->own_known) {
        report_own_unchecked(r, dir);
    }
    if ((h->trust = calloc(1, sizeof *h->trust)) == NULL ||
        (h->own_trust = calloc(1, sizeof *h->own_trust)) == NULL ||
        trust_build(h->trust, h->config, cards, cards_count, key_mismatch, h) != 0 ||
        trust_build(h->own_trust, h->config, NULL, 0, NULL, NULL) != 0) {
        violation(r, dir, "unreadable", "out of memory");
        return -1;
    }
    /* our own keys per channel: the key from the card or key file, then the history's */
    for (size_t p = 0; p < h->own_trust->count; p++) {
        trusted_key_t *k = &h->own_trust->keys[p];
        memcpy(k->sign_public, h->own_public, sizeof k->sign_public);
        identity_key_id(k->sign_public, k->key_id);
    }
    if (fs_join(h->ledger_path, sizeof h->ledger_path, dir, LEDGER_FILE) != 0 ||
        ledger_open(h->ledger_path, h->config->name, LEDGER_READ_ONLY, NULL, &h->ledger, err,
                    sizeof err) != LEDGER_OK) {
        violation(r, dir, "unreadable", "%s: %s", LEDGER_FILE, err);
        return -1;
    }
    if (ledger_replies_from(h->ledger, &h->replies_from) != LEDGER_OK) {
        violation(r, dir, "unreadable", "%s", ledger_last_error(h->ledger));
        return -1;
    }
    replacements_t found = {h, false};
    if (ledger_operations(h->ledger, collect_replacement, &found) != LEDGER_OK || found.failed) {
        violation(r, dir, "unreadable", "the operator actions cannot be read: %s",
                  found.failed ? "out of memory" : ledger_last_error(h->ledger));
    }
    load_key_history(r, h);
    report_mismatches(r, h);
    return 0;
}

/* Appends the home's trusted keys and their use to the report. */
static void report_keys(audit_report_t *r, const audited_home_t *h)
{
    if (h->trust->count == 0) {
        return;
    }
    audit_key_t *keys = realloc(r->keys, (r->keys_count + h->trust->count) * sizeof *keys);
    if (keys == NULL) {
        return;
    }
    r->keys = keys;
    for (size_t i = 0; i < h->trust->count; i++) {
        const trusted_key_t *k = &h->trust->keys[i];
        audit_key_t *out = &r->keys[r->keys_count++];
        memset(out, 0, sizeof *out);
        snprintf(out->home, sizeof out->home, "%s", h->dir);
        snprintf(out->peer, sizeof out->peer, "%s", k->peer);
        sodium_bin2hex(out->key_id, sizeof out->key_id, k->key_id, sizeof k->key_id);
        out->from_card = k->source == TRUST_FROM_CARD;
        out->rows = k->rows;
        out->first_seq = k->first_seq;
        out->last_seq = k->last_seq;
    }
}

static void close_home(audited_home_t *h)
{
    trust_t **sets[] = {&h->trust, &h->own_trust};
    for (size_t i = 0; i < 2; i++) {
        if (*sets[i] != NULL) {
            trust_free(*sets[i]);
            free(*sets[i]);
            *sets[i] = NULL;
        }
    }
    ledger_close(&h->ledger);
    free(h->replacements);
    h->replacements = NULL;
    config_destroy(&h->config);
}

int audit_homes(const char *const *homes, size_t homes_count, const peer_card_t *cards,
                size_t cards_count, audit_report_t *report)
{
    assert(homes != NULL && report != NULL && (cards != NULL || cards_count == 0));
    assert(homes_count >= 1 && homes_count <= AUDIT_HOMES_MAX);
    audited_home_t opened[AUDIT_HOMES_MAX];
    bool ok[AUDIT_HOMES_MAX];
    int rc = 0;
    for (size_t i = 0; i < homes_count; i++) {
        ok[i] = open_home(report, homes[i], cards, cards_count, &opened[i]) == 0;
        if (!ok[i]) {
            rc = -1;
            continue;
        }
        replay_t rp = {0};
        anchors_t anchors = {0};
        evidence_pass_t evidence;
        evidence_pass_start(&evidence, &opened[i]); /* signatures on every core, meanwhile: */
        load_checkpoints(report, &opened[i], &anchors);
        if (anchors.count > 1) {
            qsort(anchors.items, anchors.count, sizeof *anchors.items, by_rows);
            anchors.count = without_repeats(anchors.items, anchors.count);
        }
        if (journal_pass(report, &opened[i], &rp, &anchors) == 0) {
            balances(report, &opened[i], &rp);
        }
        evidence_pass_finish(&evidence, report);
        free(rp.items);
        free(anchors.items);
        set_checks(report, &opened[i]);
        content_hashes(report, &opened[i]);
        returns_totals(report, &opened[i]);
        fx_trades(report, &opened[i]);
        setoff_checks(report, &opened[i]);
        cycle_checks(report, &opened[i]);
        report_keys(report, &opened[i]);
    }
    for (size_t i = 0; i < homes_count; i++) {
        for (size_t j = i + 1; j < homes_count; j++) {
            if (ok[i] && ok[j]) {
                mirror(report, &opened[i], &opened[j]);
                history(report, &opened[i], &opened[j]);
            }
        }
    }
    for (size_t i = 0; i < homes_count; i++) {
        close_home(&opened[i]);
    }
    return rc;
}
