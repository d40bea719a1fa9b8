/* Multilateral set-off messages (proto/PROTOCOL.md 3.12): terms, ballots, verdicts, their strict
 * decoding, the signatures H10, H11, H12 and the terms hash H13, and the SetoffRelay and
 * SetoffDecision that carry them. */
#include "setoff.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "envelope.h"
#include "validate.h"
#include "wire.h"

/* Copies a decoded string into a fixed field; false if too long (NULL reads as ""). */
static bool copy_text(char *dst, size_t dst_size, const char *src)
{
    size_t len = src != NULL ? strnlen(src, dst_size) : 0;
    if (len >= dst_size) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src != NULL ? src : "", len);
    dst[len] = '\0';
    return true;
}

/* A reason code: exactly SETOFF_REASON_LEN upper-case letters or digits. */
static bool reason_code_valid(const char *text)
{
    if (strnlen(text, SETOFF_REASON_LEN + 1) != SETOFF_REASON_LEN) {
        return false;
    }
    for (size_t i = 0; i < SETOFF_REASON_LEN; i++) {
        bool upper = text[i] >= 'A' && text[i] <= 'Z';
        bool digit = text[i] >= '0' && text[i] <= '9';
        if (!upper && !digit) {
            return false;
        }
    }
    return true;
}

static bool is_setoff_domain(const char *domain)
{
    return strcmp(domain, SETOFF_TERMS_DOMAIN) == 0 || strcmp(domain, SETOFF_VOTE_DOMAIN) == 0 ||
           strcmp(domain, SETOFF_VERDICT_DOMAIN) == 0;
}

/* ---- terms ---------------------------------------------------------------------------------- */

int setoff_terms_encode(const setoff_terms_t *t, uint8_t **out, size_t *out_len)
{
    assert(t != NULL && out != NULL && out_len != NULL && t->n <= SETOFF_RING_MAX);
    Corridor__SetoffMember wires[SETOFF_RING_MAX];
    Corridor__SetoffMember *ptrs[SETOFF_RING_MAX];
    for (size_t i = 0; i < t->n; i++) {
        corridor__setoff_member__init(&wires[i]);
        wires[i].code = (char *)t->ring[i].code;
        wires[i].key_id.data = (uint8_t *)t->ring[i].key_id;
        wires[i].key_id.len = IDENTITY_KEY_ID_BYTES;
        wires[i].signing_key.data = (uint8_t *)t->ring[i].signing_key;
        wires[i].signing_key.len = crypto_sign_PUBLICKEYBYTES;
        ptrs[i] = &wires[i];
    }
    Corridor__SetoffTerms msg = CORRIDOR__SETOFF_TERMS__INIT;
    msg.setoff_id = (char *)t->setoff_id;
    msg.n_ring = t->n;
    msg.ring = ptrs;
    msg.currency = (char *)t->currency;
    msg.amount_minor = t->amount_minor;
    msg.created_unix_ms = t->created_unix_ms;
    msg.deadline_unix_ms = t->deadline_unix_ms;
    size_t len = corridor__setoff_terms__get_packed_size(&msg);
    *out = malloc(len > 0 ? len : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__setoff_terms__pack(&msg, *out);
    assert(*out_len == len);
    return 0;
}

/* One ring member as decoded: a valid code, a 16-byte key id that is the id of its 32-byte key. */
static bool member_valid(const Corridor__SetoffMember *w, setoff_member_t *m)
{
    if (w == NULL || !copy_text(m->code, sizeof m->code, w->code) ||
        node_code_check(m->code) != VALID_OK || w->key_id.len != IDENTITY_KEY_ID_BYTES ||
        w->signing_key.len != crypto_sign_PUBLICKEYBYTES) {
        return false;
    }
    memcpy(m->key_id, w->key_id.data, IDENTITY_KEY_ID_BYTES);
    memcpy(m->signing_key, w->signing_key.data, crypto_sign_PUBLICKEYBYTES);
    uint8_t id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(m->signing_key, id);
    return sodium_memcmp(id, m->key_id, sizeof id) == 0;
}

bool setoff_terms_decode(const uint8_t *bytes, size_t len, setoff_terms_t *t)
{
    assert(t != NULL);
    memset(t, 0, sizeof *t);
    if (bytes == NULL || len == 0 || len > SETOFF_TERMS_MAX) {
        return false;
    }
    Corridor__SetoffTerms *msg =
        (Corridor__SetoffTerms *)wire_unpack(&corridor__setoff_terms__descriptor, len, bytes);
    if (msg == NULL) {
        return false;
    }
    bool ok = copy_text(t->setoff_id, sizeof t->setoff_id, msg->setoff_id) &&
              uetr_check(t->setoff_id) == VALID_OK && msg->n_ring >= SETOFF_RING_MIN &&
              msg->n_ring <= SETOFF_RING_MAX &&
              copy_text(t->currency, sizeof t->currency, msg->currency) &&
              currency_find(t->currency) != NULL && msg->amount_minor >= 0 &&
              msg->amount_minor <= CORRIDOR_AMOUNT_MINOR_MAX && msg->created_unix_ms >= 0 &&
              msg->deadline_unix_ms > msg->created_unix_ms;
    for (size_t i = 0; ok && i < msg->n_ring; i++) {
        ok = member_valid(msg->ring[i], &t->ring[i]);
        for (size_t j = 0; ok && j < i; j++) {
            ok = strcmp(t->ring[j].code, t->ring[i].code) != 0; /* distinct nodes */
        }
    }
    if (ok) {
        t->n = msg->n_ring;
        t->amount_minor = msg->amount_minor;
        t->created_unix_ms = msg->created_unix_ms;
        t->deadline_unix_ms = msg->deadline_unix_ms;
    }
    corridor__setoff_terms__free_unpacked(msg, NULL);
    uint8_t *again = NULL;
    size_t again_len = 0;
    if (ok && setoff_terms_encode(t, &again, &again_len) != 0) {
        ok = false;
    } else if (ok) {
        ok = again_len == len && memcmp(again, bytes, len) == 0; /* canonical bytes only */
    }
    free(again);
    if (!ok) {
        memset(t, 0, sizeof *t);
    }
    return ok;
}

void setoff_terms_hash(const uint8_t *terms, size_t len, uint8_t out[static SETOFF_HASH_BYTES])
{
    assert(terms != NULL || len == 0);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SETOFF_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)SETOFF_HASH_DOMAIN, sizeof SETOFF_HASH_DOMAIN);
    crypto_generichash_update(&st, terms, len);
    crypto_generichash_final(&st, out, SETOFF_HASH_BYTES);
}

int setoff_position(const setoff_terms_t *t, const char *code)
{
    assert(t != NULL && code != NULL && t->n <= SETOFF_RING_MAX);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->ring[i].code, code) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- ballot and verdict --------------------------------------------------------------------- */

size_t setoff_ballot_encode(const setoff_ballot_t *b, uint8_t out[static SETOFF_BALLOT_MAX])
{
    assert(b != NULL && out != NULL && memchr(b->reason, '\0', sizeof b->reason) != NULL);
    Corridor__SetoffBallot msg = CORRIDOR__SETOFF_BALLOT__INIT;
    msg.terms_hash.data = (uint8_t *)b->terms_hash;
    msg.terms_hash.len = SETOFF_HASH_BYTES;
    msg.position = b->position;
    msg.yes = b->yes;
    msg.reason = (char *)b->reason;
    msg.most_minor = b->most_minor;
    size_t len = corridor__setoff_ballot__get_packed_size(&msg);
    if (len > SETOFF_BALLOT_MAX) {
        return 0;
    }
    size_t written = corridor__setoff_ballot__pack(&msg, out);
    assert(written == len);
    return written;
}

bool setoff_ballot_decode(const uint8_t *bytes, size_t len, setoff_ballot_t *b)
{
    assert(b != NULL);
    memset(b, 0, sizeof *b);
    if (bytes == NULL || len == 0 || len > SETOFF_BALLOT_MAX) {
        return false;
    }
    Corridor__SetoffBallot *msg =
        (Corridor__SetoffBallot *)wire_unpack(&corridor__setoff_ballot__descriptor, len, bytes);
    if (msg == NULL) {
        return false;
    }
    bool ok = msg->terms_hash.len == SETOFF_HASH_BYTES && msg->position < SETOFF_RING_MAX &&
              copy_text(b->reason, sizeof b->reason, msg->reason) &&
              (msg->yes ? b->reason[0] == '\0' : reason_code_valid(b->reason)) &&
              msg->most_minor >= 0 && msg->most_minor <= CORRIDOR_AMOUNT_MINOR_MAX;
    if (ok) {
        memcpy(b->terms_hash, msg->terms_hash.data, SETOFF_HASH_BYTES);
        b->position = msg->position;
        b->yes = msg->yes;
        b->most_minor = msg->most_minor;
    }
    corridor__setoff_ballot__free_unpacked(msg, NULL);
    uint8_t again[SETOFF_BALLOT_MAX];
    if (ok) {
        size_t again_len = setoff_ballot_encode(b, again);
        ok = again_len == len && memcmp(again, bytes, len) == 0; /* canonical bytes only */
    }
    if (!ok) {
        memset(b, 0, sizeof *b);
    }
    return ok;
}

size_t setoff_verdict_encode(const setoff_verdict_t *v, uint8_t out[static SETOFF_VERDICT_MAX])
{
    assert(v != NULL && out != NULL && memchr(v->reason, '\0', sizeof v->reason) != NULL);
    Corridor__SetoffVerdict msg = CORRIDOR__SETOFF_VERDICT__INIT;
    msg.terms_hash.data = (uint8_t *)v->terms_hash;
    msg.terms_hash.len = SETOFF_HASH_BYTES;
    msg.commit = v->commit;
    msg.reason = (char *)v->reason;
    size_t len = corridor__setoff_verdict__get_packed_size(&msg);
    if (len > SETOFF_VERDICT_MAX) {
        return 0;
    }
    size_t written = corridor__setoff_verdict__pack(&msg, out);
    assert(written == len);
    return written;
}

bool setoff_verdict_decode(const uint8_t *bytes, size_t len, setoff_verdict_t *v)
{
    assert(v != NULL);
    memset(v, 0, sizeof *v);
    if (bytes == NULL || len == 0 || len > SETOFF_VERDICT_MAX) {
        return false;
    }
    Corridor__SetoffVerdict *msg =
        (Corridor__SetoffVerdict *)wire_unpack(&corridor__setoff_verdict__descriptor, len, bytes);
    if (msg == NULL) {
        return false;
    }
    bool ok = msg->terms_hash.len == SETOFF_HASH_BYTES &&
              copy_text(v->reason, sizeof v->reason, msg->reason) &&
              (msg->commit ? v->reason[0] == '\0' : reason_code_valid(v->reason));
    if (ok) {
        memcpy(v->terms_hash, msg->terms_hash.data, SETOFF_HASH_BYTES);
        v->commit = msg->commit;
    }
    corridor__setoff_verdict__free_unpacked(msg, NULL);
    uint8_t again[SETOFF_VERDICT_MAX];
    if (ok) {
        size_t again_len = setoff_verdict_encode(v, again);
        ok = again_len == len && memcmp(again, bytes, len) == 0; /* canonical bytes only */
    }
    if (!ok) {
        memset(v, 0, sizeof *v);
    }
    return ok;
}

/* ---- signatures ----------------------------------------------------------------------------- */

int setoff_sign(const char *domain, const uint8_t *bytes, size_t len,
                const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
                uint8_t signature[static crypto_sign_BYTES])
{
    assert(domain != NULL && is_setoff_domain(domain) && (bytes != NULL || len == 0));
    return envelope_domain_sign(false, domain, bytes, len, sign_secret, signature) == 0 ? 0 : -1;
}

bool setoff_verify(const char *domain, const uint8_t *bytes, size_t len,
                   const uint8_t signature[static crypto_sign_BYTES],
                   const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES])
{
    assert(domain != NULL && is_setoff_domain(domain) && (bytes != NULL || len == 0));
    uint8_t sig[crypto_sign_BYTES];
    memcpy(sig, signature, sizeof sig);
    return envelope_domain_sign(true, domain, bytes, len, sign_public, sig) == 0;
}

/* Whether two ballots say the same, field by field (a holder's padding is not compared). */
static bool same_ballot(const setoff_ballot_t *a, const setoff_ballot_t *b)
{
    return memcmp(a->terms_hash, b->terms_hash, SETOFF_HASH_BYTES) == 0 &&
           a->position == b->position && a->yes == b->yes &&
           strncmp(a->reason, b->reason, sizeof a->reason) == 0 && a->most_minor == b->most_minor;
}

bool setoff_vote_valid(const setoff_terms_t *t, const uint8_t terms_hash[static SETOFF_HASH_BYTES],
                       const setoff_vote_t *v)
{
    assert(t != NULL && v != NULL && t->n <= SETOFF_RING_MAX);
    /* the bytes are what was signed: they, not the holder's copy, say what the vote is */
    setoff_ballot_t ballot;
    if (v->ballot_len > SETOFF_BALLOT_MAX ||
        !setoff_ballot_decode(v->ballot_bytes, v->ballot_len, &ballot) ||
        !same_ballot(&ballot, &v->ballot) ||
        sodium_memcmp(ballot.terms_hash, terms_hash, SETOFF_HASH_BYTES) != 0 ||
        ballot.position >= t->n) {
        return false;
    }
    return setoff_verify(SETOFF_VOTE_DOMAIN, v->ballot_bytes, v->ballot_len, v->signature,
                         t->ring[ballot.position].signing_key);
}

int setoff_vote_make(const setoff_ballot_t *b,
                     const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
                     setoff_vote_t *out)
{
    assert(b != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    int rc = -1;
    out->ballot_len = setoff_ballot_encode(b, out->ballot_bytes);
    /* a ballot that would not decode strictly is a vote nobody counts: refused here */
    if (out->ballot_len == 0 ||
        !setoff_ballot_decode(out->ballot_bytes, out->ballot_len, &out->ballot)) {
        goto done;
    }
    if (setoff_sign(SETOFF_VOTE_DOMAIN, out->ballot_bytes, out->ballot_len, sign_secret,
                    out->signature) != 0) {
        goto done;
    }
    rc = 0;
done:
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- SetoffRelay and SetoffDecision --------------------------------------------------------- */

int setoff_message_encode(const setoff_message_t *m, bool decision, uint8_t **out, size_t *out_len)
{
    assert(m != NULL && out != NULL && out_len != NULL && m->n_votes <= SETOFF_RING_MAX &&
           (m->terms_bytes != NULL || m->terms_len == 0) && m->verdict_len <= SETOFF_VERDICT_MAX);
    Corridor__SetoffVote wires[SETOFF_RING_MAX];
    Corridor__SetoffVote *ptrs[SETOFF_RING_MAX];
    for (size_t i = 0; i < m->n_votes; i++) {
        assert(m->votes[i].ballot_len <= SETOFF_BALLOT_MAX);
        corridor__setoff_vote__init(&wires[i]);
        wires[i].ballot.data = (uint8_t *)m->votes[i].ballot_bytes;
        wires[i].ballot.len = m->votes[i].ballot_len;
        wires[i].signature.data = (uint8_t *)m->votes[i].signature;
        wires[i].signature.len = crypto_sign_BYTES;
        ptrs[i] = &wires[i];
    }
    size_t len = 0;
    if (decision) {
        Corridor__SetoffDecision msg = CORRIDOR__SETOFF_DECISION__INIT;
        msg.terms.data = m->terms_bytes;
        msg.terms.len = m->terms_len;
        msg.terms_signature.data = (uint8_t *)m->terms_signature;
        msg.terms_signature.len = crypto_sign_BYTES;
        msg.verdict.data = (uint8_t *)m->verdict_bytes;
        msg.verdict.len = m->verdict_len;
        msg.verdict_signature.data = (uint8_t *)m->verdict_signature;
        msg.verdict_signature.len = crypto_sign_BYTES;
        msg.n_votes = m->n_votes;
        msg.votes = ptrs;
        len = corridor__setoff_decision__get_packed_size(&msg);
        if ((*out = malloc(len > 0 ? len : 1)) == NULL) {
            return -1;
        }
        *out_len = corridor__setoff_decision__pack(&msg, *out);
    } else {
        Corridor__SetoffRelay msg = CORRIDOR__SETOFF_RELAY__INIT;
        msg.terms.data = m->terms_bytes;
        msg.terms.len = m->terms_len;
        msg.terms_signature.data = (uint8_t *)m->terms_signature;
        msg.terms_signature.len = crypto_sign_BYTES;
        msg.n_votes = m->n_votes;
        msg.votes = ptrs;
        len = corridor__setoff_relay__get_packed_size(&msg);
        if ((*out = malloc(len > 0 ? len : 1)) == NULL) {
            return -1;
        }
        *out_len = corridor__setoff_relay__pack(&msg, *out);
    }
    assert(*out_len == len);
    return 0;
}

/* A carried vote: a ballot that decodes strictly and a 64-byte signature. */
static bool vote_decode(const Corridor__SetoffVote *w, setoff_vote_t *v)
{
    if (w == NULL || w->ballot.len == 0 || w->ballot.len > SETOFF_BALLOT_MAX ||
        w->signature.len != crypto_sign_BYTES ||
        !setoff_ballot_decode(w->ballot.data, w->ballot.len, &v->ballot)) {
        return false;
    }
    memcpy(v->ballot_bytes, w->ballot.data, w->ballot.len);
    v->ballot_len = w->ballot.len;
    memcpy(v->signature, w->signature.data, crypto_sign_BYTES);
    return true;
}

/* The terms and their signature, as both messages carry them (fields 1 and 2). */
static bool terms_keep(const ProtobufCBinaryData *terms, const ProtobufCBinaryData *signature,
                       setoff_message_t *m)
{
    if (terms->len == 0 || terms->len > SETOFF_TERMS_MAX || signature->len != crypto_sign_BYTES ||
        !setoff_terms_decode(terms->data, terms->len, &m->terms) ||
        (m->terms_bytes = malloc(terms->len)) == NULL) {
        return false;
    }
    memcpy(m->terms_bytes, terms->data, terms->len);
    m->terms_len = terms->len;
    memcpy(m->terms_signature, signature->data, crypto_sign_BYTES);
    return true;
}

static bool votes_keep(size_t n, Corridor__SetoffVote *const *votes, setoff_message_t *m)
{
    if (n > SETOFF_RING_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!vote_decode(votes[i], &m->votes[i])) {
            return false;
        }
    }
    m->n_votes = n;
    return true;
}

bool setoff_message_decode(const uint8_t *body, size_t len, bool decision, setoff_message_t *m)
{
    assert(m != NULL);
    memset(m, 0, sizeof *m);
    bool ok = false;
    if (body == NULL && len > 0) {
        goto done;
    }
    if (decision) {
        Corridor__SetoffDecision *msg = (Corridor__SetoffDecision *)wire_unpack(
            &corridor__setoff_decision__descriptor, len, body);
        if (msg == NULL) {
            goto done;
        }
        ok = terms_keep(&msg->terms, &msg->terms_signature, m) &&
             msg->verdict.len <= SETOFF_VERDICT_MAX &&
             msg->verdict_signature.len == crypto_sign_BYTES &&
             setoff_verdict_decode(msg->verdict.data, msg->verdict.len, &m->verdict) &&
             votes_keep(msg->n_votes, msg->votes, m);
        if (ok) {
            memcpy(m->verdict_bytes, msg->verdict.data, msg->verdict.len);
            m->verdict_len = msg->verdict.len;
            memcpy(m->verdict_signature, msg->verdict_signature.data, crypto_sign_BYTES);
        }
        corridor__setoff_decision__free_unpacked(msg, NULL);
    } else {
        Corridor__SetoffRelay *msg =
            (Corridor__SetoffRelay *)wire_unpack(&corridor__setoff_relay__descriptor, len, body);
        if (msg == NULL) {
            goto done;
        }
        ok = terms_keep(&msg->terms, &msg->terms_signature, m) &&
             votes_keep(msg->n_votes, msg->votes, m);
        corridor__setoff_relay__free_unpacked(msg, NULL);
    }
done:
    if (!ok) {
        setoff_message_release(m);
    }
    return ok;
}

void setoff_message_release(setoff_message_t *m)
{
    if (m == NULL) {
        return;
    }
    free(m->terms_bytes);
    memset(m, 0, sizeof *m);
}
