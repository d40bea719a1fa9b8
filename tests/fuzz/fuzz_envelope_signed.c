/*
 * Fuzzes what lies behind the crypto: the business-message decoders a node runs on a body
 * only after the envelope has authenticated it. Random bytes never pass envelope_open, so
 * here a trusted peer signs and wraps the fuzzer's bytes for real (envelope_sign, then
 * envelope_wrap_nonce with a nonce hashed from the input, so a crash reproduces exactly;
 * envelope_seal is these two steps with a random nonce), and the harness checks that:
 *   - envelope_open accepts it and returns exactly that peer, type, sequence, flag and body;
 *   - the evidence it keeps verifies with the author's key and is the signed bytes verbatim;
 *   - the body decodes, or is refused, as the protobuf message of its type without a crash
 *     or a leak (a peer is trusted, not infallible); a KeySwitch body also through
 *     key_switch_decode, whose result must be a valid switch that encodes and decodes back
 *     to itself, or a refusal with its output zeroed; a Return body also through return_decode
 *     and return_check (a return that passes encodes and decodes back to itself); an FxProposal
 *     body also through fx_decode and fx_check (a trade that passes encodes back to a body that
 *     decodes to exactly itself); a SetoffRelay or SetoffDecision body also through
 *     setoff_message_decode (one that decodes encodes back to a body that decodes to exactly
 *     itself, its terms, ballots and verdict strict; refused, the holder is zeroed).
 *
 * Input layout: byte 0 selects the type (1 + b % MSG_TYPE_MAX, Settlement 1 to SetoffDecision 17),
 * byte 1 bit 0 the possible-duplicate flag, bit 1 which of the two peers sends and bit 2 the
 * Inner version (2 instead of 1), bytes 2..9 the sequence (little endian), and the rest is the
 * body.
 *
 * A sequence above CORRIDOR_SEQUENCE_MAX (2^62) is malformed: envelope_sign_version refuses
 * to sign it, and envelope_open must refuse it even when its author really signed it (the
 * harness then signs the Inner itself, as a peer running other code could).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <zmq.h>

#include "corridor.pb-c.h"
#include "corridor/limits.h"
#include "envelope.h"
#include "fuzz_keys.h"
#include "fx.h"
#include "identity.h"
#include "keyannounce.h"
#include "settlement.h"
#include "setoff.h"
#include "validate.h"

#define PEERS_COUNT  2
#define HEADER_BYTES 10

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static identity_t *self;                 /* the node that opens */
static identity_t *authors[PEERS_COUNT]; /* its trusted peers' own keys: they sign and wrap */
static envelope_peer_t *peers;           /* [0..1] how self sees the peers; [2..3] how each
                                            peer sees self (sodium_malloc'd) */

/* The body's protobuf message, by msg_type_t. */
static const ProtobufCMessageDescriptor *const body_descriptors[MSG_TYPE_MAX + 1] = {
    [MSG_SETTLEMENT] = &corridor__settlement__descriptor,
    [MSG_STATUS_REPORT] = &corridor__status_report__descriptor,
    [MSG_RETURN] = &corridor__return__descriptor,
    [MSG_STATEMENT_REQUEST] = &corridor__statement_request__descriptor,
    [MSG_STATEMENT] = &corridor__statement__descriptor,
    [MSG_ACK] = &corridor__ack__descriptor,
    [MSG_HELLO] = &corridor__hello__descriptor,
    [MSG_KEY_ANNOUNCE] = &corridor__key_announce__descriptor,
    [MSG_KEY_SWITCH] = &corridor__key_switch__descriptor,
    [MSG_CANCEL_REQUEST] = &corridor__cancel_request__descriptor,
    [MSG_CANCEL_ANSWER] = &corridor__cancel_answer__descriptor,
    [MSG_FX_PROPOSAL] = &corridor__fx_proposal__descriptor,
    [MSG_CYCLE_PROPOSAL] = &corridor__cycle_proposal__descriptor,
    [MSG_CYCLE_ANSWER] = &corridor__cycle_answer__descriptor,
    [MSG_NET_SETTLEMENT] = &corridor__net_settlement__descriptor,
    [MSG_SETOFF_RELAY] = &corridor__setoff_relay__descriptor,
    [MSG_SETOFF_DECISION] = &corridor__setoff_decision__descriptor,
};
_Static_assert(MSG_TYPE_MAX == MSG_SETOFF_DECISION, "a body message per type");

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        abort();
    }
    self = fuzz_identity(0);
    authors[0] = fuzz_identity(1);
    authors[1] = fuzz_identity(2);
    peers = sodium_malloc(2 * PEERS_COUNT * sizeof *peers);
    if (peers == NULL) {
        abort();
    }
    fuzz_peer(&peers[0], self, authors[0], "BKRURUMM");
    fuzz_peer(&peers[1], self, authors[1], "BMJIIRTH");
    fuzz_peer(&peers[2], authors[0], self, "BKTESTXX");
    fuzz_peer(&peers[3], authors[1], self, "BKTESTXX");
    return 0;
}

/* Decodes a body as the message of its type; the generated corridor__<type>__unpack
 * functions are exactly protobuf_c_message_unpack with their descriptor. */
static void decode_body(msg_type_t type, const uint8_t *body, size_t body_len)
{
    const ProtobufCMessageDescriptor *desc = body_descriptors[type];
    assert(desc != NULL);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, body_len, body);
    if (m == NULL) {
        return;
    }
    assert(m->descriptor == desc);
    assert(protobuf_c_message_check(m));
    protobuf_c_message_free_unpacked(m, NULL);
}

/* key_switch_decode on a body: accepted only as a switch it encodes back to (no larger than
 * the body, which may carry unknown fields), refused with nothing left in its output. */
static void decode_key_switch(const uint8_t *body, size_t body_len)
{
    key_switch_t ks;
    memset(&ks, 0xa5, sizeof ks);
    if (key_switch_decode(body, body_len, &ks) != 0) {
        static const key_switch_t zero;
        assert(memcmp(&ks, &zero, sizeof ks) == 0);
        return;
    }
    uint8_t raw[32];
    assert(body_len <= KEY_SWITCH_BODY_MAX);
    assert(strlen(ks.curve_public) == IDENTITY_CURVE_KEY_CHARS);
    assert(zmq_z85_decode(raw, ks.curve_public) != NULL);
    assert(ks.overlap_s <= KEY_SWITCH_OVERLAP_MAX_S);
    uint8_t again[KEY_SWITCH_BODY_MAX];
    size_t len = 0;
    assert(key_switch_encode(&ks, again, sizeof again, &len) == 0 && len <= body_len);
    key_switch_t back;
    assert(key_switch_decode(again, len, &back) == 0);
    assert(strcmp(back.curve_public, ks.curve_public) == 0 && back.overlap_s == ks.overlap_s);
}

/* return_decode on a Return body (PROTOCOL.md 3.9), as channel.c's apply_return runs it: a
 * refusal is FF01 and leaves the binding unset; a decoded return that return_check accepts is a
 * return (original UETR and reason set, no payment field) that encodes to a Return decoding
 * back to exactly itself, and whose content hash is not a payment's. */
static void decode_return(const uint8_t *body, size_t body_len)
{
    settlement_t r;
    memset(&r, 0xa5, sizeof r);
    reason_t reason = return_decode(body, body_len, "BMJIIRTH", DIRECTION_IN, &r);
    assert(r.direction == DIRECTION_IN && strcmp(r.peer, "BMJIIRTH") == 0);
    assert(strlen(r.uetr) < sizeof r.uetr && strlen(r.currency) < sizeof r.currency);
    if (reason != REASON_NONE) {
        assert(reason == REASON_FORMAT);
        assert(r.original_uetr[0] == '\0' && r.return_reason[0] == '\0');
        return;
    }
    if (return_check(&r) != REASON_NONE) {
        return;
    }
    assert(settlement_is_return(&r) && uetr_check(r.uetr) == VALID_OK);
    assert(r.end_to_end_id[0] == '\0' && r.debtor_name[0] == '\0' && r.remittance[0] == '\0');
    uint8_t *again = NULL;
    size_t len = 0;
    assert(settlement_encode(&r, &again, &len) == 0 && len <= body_len);
    settlement_t back;
    assert(return_decode(again, len, "BMJIIRTH", DIRECTION_IN, &back) == REASON_NONE);
    assert(memcmp(&back, &r, sizeof r) == 0);
    free(again);
    uint8_t h[SETTLEMENT_HASH_BYTES], payment[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&r, h);
    back.original_uetr[0] = '\0';
    settlement_content_hash(&back, payment);
    assert(memcmp(h, payment, sizeof h) != 0);
}

/* setoff_message_decode on a SetoffRelay or SetoffDecision body (PROTOCOL.md 3.12): refused,
 * the holder is zeroed; decoded, its terms (and verdict) decode strictly to what it holds, and
 * encoding it again gives a body that decodes to the same holder. */
static void decode_setoff(const uint8_t *body, size_t body_len, bool decision)
{
    setoff_message_t m, back;
    if (!setoff_message_decode(body, body_len, decision, &m)) {
        static const setoff_message_t zero;
        assert(memcmp(&m, &zero, sizeof m) == 0);
        return;
    }
    setoff_terms_t t;
    assert(setoff_terms_decode(m.terms_bytes, m.terms_len, &t));
    assert(memcmp(&t, &m.terms, sizeof t) == 0 && m.n_votes <= SETOFF_RING_MAX);
    setoff_verdict_t v;
    assert(!decision || setoff_verdict_decode(m.verdict_bytes, m.verdict_len, &v));
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(setoff_message_encode(&m, decision, &out, &out_len) == 0);
    assert(setoff_message_decode(out, out_len, decision, &back));
    assert(back.terms_len == m.terms_len &&
           memcmp(back.terms_bytes, m.terms_bytes, m.terms_len) == 0);
    assert(back.n_votes == m.n_votes && memcmp(back.votes, m.votes, sizeof m.votes) == 0);
    assert(back.verdict_len == m.verdict_len &&
           memcmp(back.verdict_bytes, m.verdict_bytes, sizeof m.verdict_bytes) == 0);
    free(out);
    setoff_message_release(&back);
    setoff_message_release(&m);
}

/* fx_decode on an FxProposal body (PROTOCOL.md 3.10), as channel.c's apply_fx_proposal runs it:
 * whatever the bytes, both legs carry the peer, direction, trade id and leg number; a refusal is
 * FF01, else both legs carry the body hash; a trade fx_check accepts has two different currencies,
 * three different ids and the rate its legs imply, and fx_encode writes a body that decodes back to
 * exactly it, whose legs' content hashes differ. */
static void decode_fx(const uint8_t *body, size_t body_len)
{
    fx_trade_t t;
    memset(&t, 0xa5, sizeof t);
    reason_t reason = fx_decode(body, body_len, "BMJIIRTH", DIRECTION_IN, &t);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, hash);
    assert(strlen(t.fx_id) < sizeof t.fx_id && strlen(t.rate) < sizeof t.rate);
    for (int i = 0; i < 2; i++) {
        const settlement_t *leg = &t.legs[i];
        assert(leg->direction == DIRECTION_IN && strcmp(leg->peer, "BMJIIRTH") == 0);
        assert(strcmp(leg->fx_id, t.fx_id) == 0);
        assert(leg->fx_leg == (i == FX_PAY ? FX_LEG_PROPOSER_PAYS : FX_LEG_ACCEPTOR_PAYS));
        assert(strlen(leg->uetr) < sizeof leg->uetr &&
               strlen(leg->currency) < sizeof leg->currency);
    }
    if (reason != REASON_NONE) {
        assert(reason == REASON_FORMAT);
        return;
    }
    for (int i = 0; i < 2; i++) { /* what the answer names */
        assert(memcmp(t.legs[i].original_hash, hash, sizeof hash) == 0);
    }
    if (fx_check(&t) != REASON_NONE) {
        return;
    }
    const settlement_t *pay = &t.legs[FX_PAY], *receive = &t.legs[FX_RECEIVE];
    assert(strcmp(pay->currency, receive->currency) != 0);
    assert(strcmp(pay->uetr, receive->uetr) != 0 && strcmp(pay->uetr, t.fx_id) != 0 &&
           strcmp(receive->uetr, t.fx_id) != 0);
    char rate[FX_RATE_LEN_MAX + 1];
    assert(fx_rate_text(pay, receive, rate, sizeof rate) && strcmp(rate, t.rate) == 0);
    uint8_t *again = NULL;
    size_t len = 0;
    fx_trade_t copy = t;
    assert(fx_encode(&copy, &again, &len) == 0 && len <= body_len);
    fx_trade_t back;
    assert(fx_decode(again, len, "BMJIIRTH", DIRECTION_IN, &back) == REASON_NONE);
    assert(strcmp(back.fx_id, t.fx_id) == 0 && strcmp(back.rate, t.rate) == 0);
    assert(back.created_unix_ms == t.created_unix_ms && back.expires_unix_ms == t.expires_unix_ms);
    for (int i = 0; i < 2; i++) {
        assert(strcmp(back.legs[i].uetr, t.legs[i].uetr) == 0);
        assert(strcmp(back.legs[i].currency, t.legs[i].currency) == 0);
        assert(back.legs[i].amount_minor == t.legs[i].amount_minor);
    }
    free(again);
    uint8_t h0[SETTLEMENT_HASH_BYTES], h1[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(pay, h0);
    settlement_content_hash(receive, h1);
    assert(memcmp(h0, h1, sizeof h0) != 0);
}

/* A peer's genuinely signed message with a sequence above 2^62 (signed here directly, as
 * envelope_sign_version refuses): envelope_open and evidence_verify must both refuse it. */
static void open_oversized(size_t sender, uint32_t version, msg_type_t type, uint64_t sequence,
                           const uint8_t *body, size_t body_len, const uint8_t *data, size_t size)
{
    Corridor__Inner inner = CORRIDOR__INNER__INIT;
    inner.version = version;
    inner.author_key_id =
        (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)authors[sender]->key_id};
    inner.recipient_key_id = (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)self->key_id};
    inner.type = (Corridor__MessageType)type;
    inner.sequence = sequence;
    inner.body = (ProtobufCBinaryData){body_len, (uint8_t *)body};
    size_t inner_len = corridor__inner__get_packed_size(&inner);
    uint8_t *inner_bytes = malloc(inner_len);
    assert(inner_bytes != NULL);
    corridor__inner__pack(&inner, inner_bytes);
    uint8_t sig[crypto_sign_BYTES];
    assert(envelope_domain_sign(false, ENVELOPE_DOMAIN, inner_bytes, inner_len,
                                authors[sender]->sign_secret, sig) == 0);
    Corridor__SignedMessage sm = CORRIDOR__SIGNED_MESSAGE__INIT;
    sm.inner = (ProtobufCBinaryData){inner_len, inner_bytes};
    sm.signature = (ProtobufCBinaryData){sizeof sig, sig};
    size_t signed_len = corridor__signed_message__get_packed_size(&sm);
    uint8_t *signed_msg = malloc(signed_len);
    assert(signed_msg != NULL);
    corridor__signed_message__pack(&sm, signed_msg);
    free(inner_bytes);

    envelope_message_t msg;
    assert(evidence_verify(signed_msg, signed_len, authors[sender]->sign_public, &msg) != ENV_OK);
    uint8_t nonce[ENVELOPE_NONCE_BYTES];
    crypto_generichash(nonce, sizeof nonce, data, size, NULL, 0);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    env_err_t rc = envelope_wrap_nonce(authors[sender], &peers[PEERS_COUNT + sender], signed_msg,
                                       signed_len, false, nonce, &wire, &wire_len);
    if (rc == ENV_OK) { /* a body near the limit may not fit once wrapped */
        rc = envelope_open(wire, wire_len, self, peers, PEERS_COUNT, &msg);
        assert(rc != ENV_OK && msg.body == NULL);
    }
    free(wire);
    free(signed_msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_BYTES) {
        return 0;
    }
    msg_type_t type = (msg_type_t)(MSG_TYPE_MIN + data[0] % MSG_TYPE_MAX);
    bool duplicate = (data[1] & 1u) != 0;
    size_t sender = (data[1] >> 1) & 1u;
    uint64_t sequence = 0;
    for (size_t i = 0; i < 8; i++) {
        sequence |= (uint64_t)data[2 + i] << (8 * i);
    }
    uint32_t version = (data[1] & 4u) ? INNER_VERSION_MIN + 1 : INNER_VERSION_MIN;
    const uint8_t *body = data + HEADER_BYTES;
    size_t body_len = size - HEADER_BYTES;

    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    env_err_t rc = envelope_sign_version(authors[sender], version, self->key_id, type, sequence,
                                         body, body_len, &signed_msg, &signed_len);
    if (body_len > CORRIDOR_BODY_BYTES_MAX) {
        assert(rc == ENV_E_TOO_LARGE && signed_msg == NULL);
        return 0;
    }
    if (sequence > CORRIDOR_SEQUENCE_MAX) {
        assert(rc == ENV_E_MALFORMED && signed_msg == NULL);
        open_oversized(sender, version, type, sequence, body, body_len, data, size);
        return 0;
    }
    assert(rc == ENV_OK && signed_msg != NULL);

    uint8_t nonce[ENVELOPE_NONCE_BYTES];
    crypto_generichash(nonce, sizeof nonce, data, size, NULL, 0);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    rc = envelope_wrap_nonce(authors[sender], &peers[PEERS_COUNT + sender], signed_msg, signed_len,
                             duplicate, nonce, &wire, &wire_len);
    assert(rc == ENV_OK && wire != NULL && wire_len <= CORRIDOR_WIRE_BYTES_MAX);

    envelope_message_t msg;
    rc = envelope_open(wire, wire_len, self, peers, PEERS_COUNT, &msg);
    assert(rc == ENV_OK);
    assert(msg.peer_index == sender);
    assert(msg.type == type && msg.sequence == sequence && msg.version == version);
    assert(msg.possible_duplicate == duplicate);
    assert(msg.body_len == body_len && memcmp(msg.body, body, body_len) == 0);
    assert(memcmp(msg.author_key_id, authors[sender]->key_id, IDENTITY_KEY_ID_BYTES) == 0);
    assert(memcmp(msg.recipient_key_id, self->key_id, IDENTITY_KEY_ID_BYTES) == 0);
    assert(msg.evidence_len == signed_len && memcmp(msg.evidence, signed_msg, signed_len) == 0);

    envelope_message_t ev;
    rc = evidence_verify(msg.evidence, msg.evidence_len, authors[sender]->sign_public, &ev);
    assert(rc == ENV_OK);
    assert(ev.type == type && ev.sequence == sequence && ev.body_len == body_len);
    envelope_message_clear(&ev);

    decode_body(msg.type, msg.body, msg.body_len);
    if (msg.type == MSG_KEY_SWITCH) {
        decode_key_switch(msg.body, msg.body_len);
    }
    if (msg.type == MSG_RETURN) {
        decode_return(msg.body, msg.body_len);
    }
    if (msg.type == MSG_FX_PROPOSAL) {
        decode_fx(msg.body, msg.body_len);
    }
    if (msg.type == MSG_SETOFF_RELAY || msg.type == MSG_SETOFF_DECISION) {
        decode_setoff(msg.body, msg.body_len, msg.type == MSG_SETOFF_DECISION);
    }

    envelope_message_clear(&msg);
    free(wire);
    free(signed_msg);
    return 0;
}
