/* Tests of the envelope: seal/open round trips, known-answer vectors, and every refusal. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "corridor.pb-c.h"
#include "cycle.h"
#include "setoff.h"
#include "envelope.h"
#include "fx.h"
#include "keyannounce.h"
#include "settlement.h"

#define KAT_FILE CORRIDOR_TEST_DATA "/vectors/envelope.kat"

/* Three nodes: A and B trust each other and C; C trusts A and B; D trusts nobody here. */
typedef struct {
    identity_t *id[4];
    peer_card_t card[4];
    envelope_peer_t *peers_of[4]; /* the envelope peers each node trusts, in sodium memory */
    size_t peers_count[4];
    size_t trusted[4][3]; /* which node each entry of peers_of stands for */
} net_t;

enum { A = 0, B = 1, C = 2, D = 3 };

static void trust(net_t *net, int who, int whom)
{
    size_t i = net->peers_count[who]++;
    assert_int_equal(envelope_peer_init(&net->peers_of[who][i], net->id[who], &net->card[whom]),
                     ENV_OK);
    net->trusted[who][i] = (size_t)whom;
}

static int net_setup(void **state)
{
    net_t *net = calloc(1, sizeof *net);
    assert_non_null(net);
    static const char *const names[] = {"BKRURUMM", "BMJIIRTH", "KZKZKZKA", "AMARAM22"};
    for (int i = 0; i < 4; i++) {
        net->id[i] = test_fixed_identity((uint8_t)(i + 1));
        identity_card(net->id[i], names[i], "tcp://127.0.0.1:7000", &net->card[i]);
        net->peers_of[i] = sodium_malloc(3 * sizeof(envelope_peer_t));
        assert_non_null(net->peers_of[i]);
    }
    trust(net, A, B);
    trust(net, A, C);
    trust(net, B, A);
    trust(net, B, C);
    trust(net, C, A);
    trust(net, C, B);
    *state = net;
    return 0;
}

static int net_teardown(void **state)
{
    net_t *net = *state;
    for (int i = 0; i < 4; i++) {
        identity_destroy(&net->id[i]);
        sodium_free(net->peers_of[i]);
    }
    free(net);
    return 0;
}

/* The envelope peer entry `who` keeps for `whom`. */
static const envelope_peer_t *peer_entry(net_t *net, int who, int whom)
{
    for (size_t i = 0; i < net->peers_count[who]; i++) {
        if (net->trusted[who][i] == (size_t)whom) {
            return &net->peers_of[who][i];
        }
    }
    fail_msg("node %d does not trust %d", who, whom);
    return NULL;
}

static env_err_t open_at(net_t *net, int who, const uint8_t *wire, size_t len,
                         envelope_message_t *msg)
{
    return envelope_open(wire, len, net->id[who], net->peers_of[who], net->peers_count[who], msg);
}

static void seal(net_t *net, int from, int to, msg_type_t type, uint64_t seq, const char *body,
                 uint8_t **wire, size_t *len)
{
    assert_int_equal(envelope_seal(net->id[from], peer_entry(net, from, to), type, seq,
                                   (const uint8_t *)body, strlen(body), wire, len),
                     ENV_OK);
}

/* Signs an Inner built field by field, so tests can craft what seal would never produce. */
static void craft_signed(const identity_t *author, const uint8_t *recipient_key_id,
                         uint32_t version, int type, uint64_t seq, bool corrupt_signature,
                         uint8_t **out, size_t *out_len)
{
    Corridor__Inner inner = CORRIDOR__INNER__INIT;
    inner.version = version;
    inner.author_key_id = (ProtobufCBinaryData){16, (uint8_t *)author->key_id};
    inner.recipient_key_id = (ProtobufCBinaryData){16, (uint8_t *)recipient_key_id};
    inner.type = (Corridor__MessageType)type;
    inner.sequence = seq;
    inner.body = (ProtobufCBinaryData){4, (uint8_t *)"body"};
    size_t inner_len = corridor__inner__get_packed_size(&inner);
    uint8_t *buf = malloc(sizeof ENVELOPE_DOMAIN + inner_len);
    memcpy(buf, ENVELOPE_DOMAIN, sizeof ENVELOPE_DOMAIN);
    corridor__inner__pack(&inner, buf + sizeof ENVELOPE_DOMAIN);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, buf, sizeof ENVELOPE_DOMAIN + inner_len, author->sign_secret);
    if (corrupt_signature) {
        sig[10] ^= 1;
    }
    Corridor__SignedMessage sm = CORRIDOR__SIGNED_MESSAGE__INIT;
    sm.inner = (ProtobufCBinaryData){inner_len, buf + sizeof ENVELOPE_DOMAIN};
    sm.signature = (ProtobufCBinaryData){64, sig};
    *out_len = corridor__signed_message__get_packed_size(&sm);
    *out = malloc(*out_len);
    corridor__signed_message__pack(&sm, *out);
    free(buf);
}

static void test_round_trip_every_type(void **state)
{
    net_t *net = *state;
    for (int type = MSG_TYPE_MIN; type <= MSG_TYPE_MAX; type++) {
        char body[64];
        snprintf(body, sizeof body, "body of %s", msg_type_name(type));
        uint8_t *wire = NULL;
        size_t len = 0;
        seal(net, A, B, (msg_type_t)type, (uint64_t)type * 1000, body, &wire, &len);
        envelope_message_t msg;
        assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK);
        assert_int_equal(msg.type, type);
        assert_int_equal(msg.sequence, (uint64_t)type * 1000);
        assert_int_equal(msg.body_len, strlen(body));
        assert_memory_equal(msg.body, body, strlen(body));
        assert_int_equal(net->trusted[B][msg.peer_index], A);
        assert_false(msg.possible_duplicate);
        assert_memory_equal(msg.author_key_id, net->id[A]->key_id, IDENTITY_KEY_ID_BYTES);
        assert_memory_equal(msg.recipient_key_id, net->id[B]->key_id, IDENTITY_KEY_ID_BYTES);
        envelope_message_clear(&msg);
        free(wire);
    }
}

static void test_empty_body(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_ACK, 0, "", &wire, &len);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK);
    assert_int_equal(msg.body_len, 0);
    envelope_message_clear(&msg);
    free(wire);
}

static void test_evidence_verifies_with_public_key_alone(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_SETTLEMENT, 7, "pay 100", &wire, &len);
    envelope_message_t msg, ev;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK);
    assert_int_equal(evidence_verify(msg.evidence, msg.evidence_len, net->card[A].sign_public, &ev),
                     ENV_OK);
    assert_int_equal(ev.type, MSG_SETTLEMENT);
    assert_int_equal(ev.sequence, 7);
    assert_memory_equal(ev.body, "pay 100", 7);
    assert_memory_equal(ev.recipient_key_id, net->id[B]->key_id, IDENTITY_KEY_ID_BYTES);
    envelope_message_clear(&ev);
    /* with another node's key it does not verify */
    assert_int_equal(evidence_verify(msg.evidence, msg.evidence_len, net->card[C].sign_public, &ev),
                     ENV_E_BAD_SIGNATURE);
    /* nor when altered */
    msg.evidence[msg.evidence_len - 1] ^= 0x20;
    assert_int_not_equal(
        evidence_verify(msg.evidence, msg.evidence_len, net->card[A].sign_public, &ev), ENV_OK);
    envelope_message_clear(&msg);
    free(wire);
}

static void test_retransmission_keeps_signed_bytes(void **state)
{
    net_t *net = *state;
    uint8_t *signed_msg = NULL, *w1 = NULL, *w2 = NULL;
    size_t signed_len = 0, l1 = 0, l2 = 0;
    assert_int_equal(envelope_sign(net->id[A], net->id[B]->key_id, MSG_SETTLEMENT, 3,
                                   (const uint8_t *)"x", 1, &signed_msg, &signed_len),
                     ENV_OK);
    const envelope_peer_t *to_b = peer_entry(net, A, B);
    assert_int_equal(envelope_wrap(net->id[A], to_b, signed_msg, signed_len, false, &w1, &l1),
                     ENV_OK);
    assert_int_equal(envelope_wrap(net->id[A], to_b, signed_msg, signed_len, true, &w2, &l2),
                     ENV_OK);
    assert_false(l1 == l2 && memcmp(w1, w2, l1) == 0); /* fresh random nonce each time */
    envelope_message_t m1, m2;
    assert_int_equal(open_at(net, B, w1, l1, &m1), ENV_OK);
    assert_int_equal(open_at(net, B, w2, l2, &m2), ENV_OK);
    assert_false(m1.possible_duplicate);
    assert_true(m2.possible_duplicate);
    assert_int_equal(m1.evidence_len, m2.evidence_len);
    assert_memory_equal(m1.evidence, m2.evidence, m1.evidence_len);
    envelope_message_clear(&m1);
    envelope_message_clear(&m2);
    free(signed_msg);
    free(w1);
    free(w2);
}

static void test_unknown_sender(void **state)
{
    net_t *net = *state;
    envelope_peer_t to_b;
    assert_int_equal(envelope_peer_init(&to_b, net->id[D], &net->card[B]), ENV_OK);
    uint8_t *wire = NULL;
    size_t len = 0;
    assert_int_equal(
        envelope_seal(net->id[D], &to_b, MSG_SETTLEMENT, 1, (const uint8_t *)"x", 1, &wire, &len),
        ENV_OK);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_UNKNOWN_SENDER);
    assert_null(msg.body);
    envelope_peer_wipe(&to_b);
    free(wire);
}

static void test_reflected_back_to_author(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_ACK, 0, "ack", &wire, &len);
    envelope_message_t msg;
    assert_int_equal(open_at(net, A, wire, len, &msg), ENV_E_UNKNOWN_SENDER);
    free(wire);
}

static void test_delivered_to_another_trusted_node(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_SETTLEMENT, 1, "for B", &wire, &len);
    envelope_message_t msg;
    assert_int_equal(open_at(net, C, wire, len, &msg), ENV_E_DECRYPT);
    free(wire);
}

static void test_signed_for_another_recipient(void **state)
{
    net_t *net = *state;
    uint8_t *signed_msg = NULL, *wire = NULL;
    size_t signed_len = 0, len = 0;
    assert_int_equal(envelope_sign(net->id[A], net->id[C]->key_id, MSG_SETTLEMENT, 1,
                                   (const uint8_t *)"for C", 5, &signed_msg, &signed_len),
                     ENV_OK);
    assert_int_equal(envelope_wrap(net->id[A], peer_entry(net, A, B), signed_msg, signed_len, false,
                                   &wire, &len),
                     ENV_OK);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_WRONG_RECIPIENT);
    free(signed_msg);
    free(wire);
}

static void test_rewrapped_by_third_trusted_node(void **state)
{
    net_t *net = *state;
    /* A signs a settlement for C; C forwards A's signed bytes to B under its own box. */
    uint8_t *signed_msg = NULL, *wire = NULL;
    size_t signed_len = 0, len = 0;
    assert_int_equal(envelope_sign(net->id[A], net->id[C]->key_id, MSG_SETTLEMENT, 1,
                                   (const uint8_t *)"for C", 5, &signed_msg, &signed_len),
                     ENV_OK);
    assert_int_equal(envelope_wrap(net->id[C], peer_entry(net, C, B), signed_msg, signed_len, false,
                                   &wire, &len),
                     ENV_OK);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_FORWARDED);
    free(signed_msg);
    free(wire);
}

static void test_bad_signature(void **state)
{
    net_t *net = *state;
    uint8_t *signed_msg = NULL, *wire = NULL;
    size_t signed_len = 0, len = 0;
    craft_signed(net->id[A], net->id[B]->key_id, ENVELOPE_VERSION, MSG_SETTLEMENT, 1, true,
                 &signed_msg, &signed_len);
    assert_int_equal(envelope_wrap(net->id[A], peer_entry(net, A, B), signed_msg, signed_len, false,
                                   &wire, &len),
                     ENV_OK);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_BAD_SIGNATURE);
    free(signed_msg);
    free(wire);
}

static void test_wrong_inner_version(void **state)
{
    net_t *net = *state;
    uint8_t *signed_msg = NULL, *wire = NULL;
    size_t signed_len = 0, len = 0;
    craft_signed(net->id[A], net->id[B]->key_id, INNER_VERSION_MAX + 1, MSG_SETTLEMENT, 1, false,
                 &signed_msg, &signed_len);
    assert_int_equal(envelope_wrap(net->id[A], peer_entry(net, A, B), signed_msg, signed_len, false,
                                   &wire, &len),
                     ENV_OK);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_VERSION);
    free(signed_msg);
    free(wire);
}

static void test_wrong_outer_version(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_SETTLEMENT, 1, "x", &wire, &len);
    Corridor__Envelope *env = corridor__envelope__unpack(NULL, len, wire);
    assert_non_null(env);
    env->version = 2;
    uint8_t *wire2 = malloc(corridor__envelope__get_packed_size(env));
    size_t len2 = corridor__envelope__pack(env, wire2);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire2, len2, &msg), ENV_E_VERSION);
    corridor__envelope__free_unpacked(env, NULL);
    free(wire);
    free(wire2);
}

static void test_unknown_type(void **state)
{
    net_t *net = *state;
    static const int bad_types[] = {0, MSG_TYPE_MAX + 1, 1000};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        uint8_t *signed_msg = NULL, *wire = NULL;
        size_t signed_len = 0, len = 0;
        craft_signed(net->id[A], net->id[B]->key_id, ENVELOPE_VERSION, bad_types[i], 1, false,
                     &signed_msg, &signed_len);
        assert_int_equal(envelope_wrap(net->id[A], peer_entry(net, A, B), signed_msg, signed_len,
                                       false, &wire, &len),
                         ENV_OK);
        envelope_message_t msg;
        assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_BAD_TYPE);
        free(signed_msg);
        free(wire);
    }
}

static void test_every_flipped_bit_position_is_refused(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_SETTLEMENT, 42, "a settlement body of some length", &wire, &len);
    for (size_t pos = 0; pos < len; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            wire[pos] ^= (uint8_t)(1u << bit);
            envelope_message_t msg;
            env_err_t rc = open_at(net, B, wire, len, &msg);
            if (rc == ENV_OK) {
                fail_msg("flipping bit %d of byte %zu was accepted", bit, pos);
            }
            wire[pos] ^= (uint8_t)(1u << bit);
        }
    }
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK); /* restored: opens again */
    envelope_message_clear(&msg);
    free(wire);
}

static void test_every_truncation_is_refused(void **state)
{
    net_t *net = *state;
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_STATUS_REPORT, 9, "status", &wire, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut > 0 ? cut : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, wire, cut);
        envelope_message_t msg;
        env_err_t rc = open_at(net, B, copy, cut, &msg);
        if (rc == ENV_OK) {
            fail_msg("truncation to %zu of %zu bytes was accepted", cut, len);
        }
        free(copy);
    }
    free(wire);
}

static void test_oversized_input_refused_before_parsing(void **state)
{
    net_t *net = *state;
    size_t len = CORRIDOR_WIRE_BYTES_MAX + 1;
    uint8_t *big = calloc(1, len);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, big, len, &msg), ENV_E_TOO_LARGE);
    free(big);
}

static void test_oversized_body_refused_at_seal(void **state)
{
    net_t *net = *state;
    size_t len = CORRIDOR_BODY_BYTES_MAX + 1;
    uint8_t *body = calloc(1, len);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    assert_int_equal(envelope_seal(net->id[A], peer_entry(net, A, B), MSG_STATEMENT, 1, body, len,
                                   &wire, &wire_len),
                     ENV_E_TOO_LARGE);
    assert_null(wire);
    /* the largest body allowed goes through */
    assert_int_equal(envelope_seal(net->id[A], peer_entry(net, A, B), MSG_STATEMENT, 1, body,
                                   len - 1, &wire, &wire_len),
                     ENV_OK);
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, wire_len, &msg), ENV_OK);
    assert_int_equal(msg.body_len, len - 1);
    envelope_message_clear(&msg);
    free(body);
    free(wire);
}

/* Every field of a Settlement at its longest (the struct's arrays full) seals to under 4 KiB:
 * a quarter of CORRIDOR_STREAM_WIRE_BYTES_MAX, the most a stream endpoint takes. */
static void test_largest_settlement_fits_the_stream(void **state)
{
    net_t *net = *state;
    settlement_t s;
    memset(&s, 'x', sizeof s);
    char *fields[] = {
        s.uetr,           s.end_to_end_id, s.currency,         s.value_date, s.debtor_name,
        s.debtor_account, s.creditor_name, s.creditor_account, s.remittance, s.peer};
    size_t sizes[] = {sizeof s.uetr,          sizeof s.end_to_end_id,    sizeof s.currency,
                      sizeof s.value_date,    sizeof s.debtor_name,      sizeof s.debtor_account,
                      sizeof s.creditor_name, sizeof s.creditor_account, sizeof s.remittance,
                      sizeof s.peer};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        fields[i][sizes[i] - 1] = '\0';
    }
    s.original_uetr[0] = s.return_reason[0] = '\0'; /* a payment, not a return */
    s.fx_id[0] = '\0';                              /* nor an FX trade's leg */
    s.fx_leg = FX_LEG_NONE;
    s.direction = DIRECTION_OUT;
    s.amount_minor = INT64_MAX;
    s.created_unix_ms = INT64_MIN;
    uint8_t *body = NULL, *wire = NULL;
    size_t body_len = 0, wire_len = 0;
    assert_int_equal(settlement_encode(&s, &body, &body_len), 0);
    assert_int_equal(envelope_seal(net->id[A], peer_entry(net, A, B), MSG_SETTLEMENT,
                                   CORRIDOR_SEQUENCE_MAX, body, body_len, &wire, &wire_len),
                     ENV_OK);
    printf("# the largest Settlement: %zu bytes of body, %zu on the wire\n", body_len, wire_len);
    assert_true(wire_len < 4096 && 4 * 4096 <= CORRIDOR_STREAM_WIRE_BYTES_MAX);
    free(body);
    free(wire);
}

static void test_garbage_and_empty_refused(void **state)
{
    net_t *net = *state;
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, NULL, 0, &msg), ENV_E_MALFORMED);
    uint8_t garbage[300];
    for (int round = 0; round < 200; round++) {
        randombytes_buf(garbage, sizeof garbage);
        assert_int_not_equal(open_at(net, B, garbage, sizeof garbage, &msg), ENV_OK);
    }
}

static void test_weak_box_key_refused(void **state)
{
    net_t *net = *state;
    peer_card_t card = net->card[A];
    memset(card.box_public, 0, sizeof card.box_public);
    envelope_peer_t peer;
    assert_int_equal(envelope_peer_init(&peer, net->id[B], &card), ENV_E_WEAK_KEY);
}

static void test_applied_copy_reported_before_signature_check(void **state)
{
    net_t *net = *state;
    envelope_peer_t *b_from_a = (envelope_peer_t *)peer_entry(net, B, A);
    uint8_t *wire = NULL;
    size_t len = 0;
    seal(net, A, B, MSG_SETTLEMENT, 5, "pay", &wire, &len);
    b_from_a->applied_through = 5;
    envelope_message_t msg;
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_E_DUPLICATE);
    assert_int_equal(msg.sequence, 5);
    assert_int_equal(net->trusted[B][msg.peer_index], A);
    assert_null(msg.body);
    free(wire);
    /* the next sequence is opened as usual; so are Acks, which carry sequence 0 */
    seal(net, A, B, MSG_SETTLEMENT, 6, "pay", &wire, &len);
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK);
    envelope_message_clear(&msg);
    free(wire);
    seal(net, A, B, MSG_ACK, 0, "", &wire, &len);
    assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK);
    envelope_message_clear(&msg);
    free(wire);
    /* a forged copy (bad signature) of an applied sequence is still only a duplicate: it is
     * dropped and acknowledged again, never applied */
    b_from_a->applied_through = 0;
}

static void test_strerror_distinct(void **state)
{
    (void)state;
    for (int a = ENV_OK; a <= ENV_E_DUPLICATE; a++) {
        for (int b = a + 1; b <= ENV_E_DUPLICATE; b++) {
            assert_string_not_equal(env_strerror((env_err_t)a), env_strerror((env_err_t)b));
        }
    }
}

/* ---- KeySwitch bodies (PROTOCOL.md 2.14) ----------------------------------------------- */

/* A KeySwitch body as protobuf-c packs these fields, even ones key_switch_encode refuses. */
static size_t pack_key_switch(const char *curve_public, uint32_t overlap_s, uint8_t *out)
{
    Corridor__KeySwitch ks = CORRIDOR__KEY_SWITCH__INIT;
    ks.curve_public = (char *)curve_public;
    ks.overlap_s = overlap_s;
    assert_true(corridor__key_switch__get_packed_size(&ks) <= 256);
    return corridor__key_switch__pack(&ks, out);
}

/* key_switch_decode refuses body[0..len) and leaves *out zeroed. */
static void assert_key_switch_refused(const uint8_t *body, size_t len)
{
    key_switch_t out, zero;
    memset(&out, 0xa5, sizeof out);
    memset(&zero, 0, sizeof zero);
    assert_int_equal(key_switch_decode(body, len, &out), -1);
    assert_memory_equal(&out, &zero, sizeof out);
}

static void test_key_switch_round_trip(void **state)
{
    net_t *net = *state;
    static const uint32_t overlaps[] = {0, 1, 3600, KEY_SWITCH_OVERLAP_MAX_S - 1,
                                        KEY_SWITCH_OVERLAP_MAX_S};
    for (size_t i = 0; i < sizeof overlaps / sizeof overlaps[0]; i++) {
        key_switch_t ks = {.overlap_s = overlaps[i]};
        memcpy(ks.curve_public, net->id[A]->curve_public, sizeof ks.curve_public);
        uint8_t body[KEY_SWITCH_BODY_MAX];
        size_t len = 0;
        assert_int_equal(key_switch_encode(&ks, body, sizeof body, &len), 0);
        assert_in_range(len, 42, 47); /* 2 + 40, and the overlap as a varint of at most 4 */
        key_switch_t out;
        memset(&out, 0xa5, sizeof out);
        assert_int_equal(key_switch_decode(body, len, &out), 0);
        assert_string_equal(out.curve_public, ks.curve_public);
        assert_int_equal(out.overlap_s, overlaps[i]);
        /* the encoding is protobuf-c's own */
        uint8_t packed[256];
        assert_int_equal(pack_key_switch(ks.curve_public, ks.overlap_s, packed), len);
        assert_memory_equal(packed, body, len);
        /* a buffer one byte short is refused, and one of exactly the size is enough */
        assert_int_equal(key_switch_encode(&ks, body, len - 1, &len), -1);
        assert_int_equal(len, 0);
        assert_int_equal(key_switch_encode(&ks, body, 47, &len), 0);
    }
}

static void test_key_switch_overlap_bounds(void **state)
{
    net_t *net = *state;
    const char *curve = net->id[B]->curve_public;
    uint8_t body[256];
    key_switch_t out;
    size_t len = pack_key_switch(curve, KEY_SWITCH_OVERLAP_MAX_S, body);
    assert_int_equal(key_switch_decode(body, len, &out), 0);
    assert_int_equal(out.overlap_s, 30u * 24 * 3600);
    len = pack_key_switch(curve, KEY_SWITCH_OVERLAP_MAX_S + 1, body);
    assert_key_switch_refused(body, len);
    len = pack_key_switch(curve, UINT32_MAX, body);
    assert_key_switch_refused(body, len);
    /* no overlap at all: the field is absent, 0 */
    len = pack_key_switch(curve, 0, body);
    assert_int_equal(len, 42);
    assert_int_equal(key_switch_decode(body, len, &out), 0);
    assert_int_equal(out.overlap_s, 0);
    /* 2^32 + 3600 as a varint: protobuf-c would keep the low 32 bits (3600); refused */
    uint8_t wide[64];
    memcpy(wide, body, 42);
    static const uint8_t overlap_2p32_plus_3600[] = {0x10, 0x90, 0x9c, 0x80, 0x80, 0x10};
    memcpy(wide + 42, overlap_2p32_plus_3600, sizeof overlap_2p32_plus_3600);
    assert_key_switch_refused(wide, 42 + sizeof overlap_2p32_plus_3600);
    /* 3600 as an overlong varint (5 bytes for 2), and 0 written out: not as they encode */
    static const uint8_t overlap_3600_overlong[] = {0x10, 0x90, 0x9c, 0x80, 0x80, 0x00};
    memcpy(wide + 42, overlap_3600_overlong, sizeof overlap_3600_overlong);
    assert_key_switch_refused(wide, 42 + sizeof overlap_3600_overlong);
    memcpy(wide + 42, "\x10\x00", 2);
    assert_key_switch_refused(wide, 44);
}

static void test_key_switch_malformed_refused(void **state)
{
    net_t *net = *state;
    const char *curve = net->id[A]->curve_public;
    uint8_t body[256];
    size_t len = pack_key_switch(curve, 3600, body);
    assert_int_equal(len, 45);

    /* not decodable: nothing, garbage, every truncation that cuts a field */
    assert_key_switch_refused(NULL, 0);
    assert_key_switch_refused(NULL, 5);
    assert_key_switch_refused((const uint8_t *)"", 0);
    assert_key_switch_refused((const uint8_t *)"\xff\xff\xff\xff", 4);
    for (size_t cut = 1; cut < len; cut++) {
        if (cut != 42) { /* 42: the whole key and no overlap, which is well-formed */
            assert_key_switch_refused(body, cut);
        }
    }
    /* curve_public sent with the wrong wire type (a varint) */
    assert_key_switch_refused((const uint8_t *)"\x08\x05", 2);

    /* over KEY_SWITCH_BODY_MAX: a well-formed body padded with an unknown field. Up to the
     * limit the padding is skipped, as in every message; one byte more is refused unread. */
    uint8_t padded[KEY_SWITCH_BODY_MAX + 1];
    memcpy(padded, body, len);
    padded[len] = 0x1a; /* field 3, length-delimited */
    padded[len + 1] = (uint8_t)(KEY_SWITCH_BODY_MAX - len - 2);
    memset(padded + len + 2, 'p', KEY_SWITCH_BODY_MAX - len - 2);
    key_switch_t out;
    assert_int_equal(key_switch_decode(padded, KEY_SWITCH_BODY_MAX, &out), 0);
    assert_int_equal(out.overlap_s, 3600);
    padded[len + 1]++;
    padded[KEY_SWITCH_BODY_MAX] = 'p';
    assert_key_switch_refused(padded, KEY_SWITCH_BODY_MAX + 1);

    /* curve_public not exactly 40 characters the Z85 decoder takes */
    char key[2 * IDENTITY_CURVE_KEY_CHARS + 1];
    assert_key_switch_refused(body, pack_key_switch("", 3600, body));
    snprintf(key, sizeof key, "%.39s", curve);
    assert_key_switch_refused(body, pack_key_switch(key, 3600, body));
    snprintf(key, sizeof key, "%sA", curve);
    assert_key_switch_refused(body, pack_key_switch(key, 3600, body));
    snprintf(key, sizeof key, "%s%s", curve, curve);
    assert_key_switch_refused(body, pack_key_switch(key, 3600, body));
    static const char not_z85[] = {' ', '"', '\'', ',', ';', '\\', '_', '`', '|', '~', '\x7f'};
    for (size_t i = 0; i < sizeof not_z85; i++) {
        snprintf(key, sizeof key, "%s", curve);
        key[17] = not_z85[i];
        uint8_t raw[32];
        assert_null(zmq_z85_decode(raw, key)); /* what KeyAnnounce's check refuses too */
        assert_key_switch_refused(body, pack_key_switch(key, 3600, body));
    }
    /* a NUL inside the key's 40 bytes */
    len = pack_key_switch(curve, 3600, body);
    body[2 + 20] = '\0';
    assert_key_switch_refused(body, len);
    /* the 40 characters, a NUL and more (which the decoded C string would not show) */
    snprintf(key, sizeof key, "%sA", curve);
    len = pack_key_switch(key, 3600, body);
    body[2 + 40] = '\0';
    assert_key_switch_refused(body, len);
    /* a field twice (protobuf-c keeps the last): another key, or another overlap, after it */
    len = pack_key_switch(curve, 3600, body);
    size_t more = pack_key_switch(net->id[B]->curve_public, 0, body + len);
    assert_key_switch_refused(body, len + more);
    more = pack_key_switch("", 60, body + len);
    assert_key_switch_refused(body, len + more);
}

/* ---- known-answer vectors: fixed keys, nonce and body give exactly these bytes ---------- */

/* A real Hello body (PROTOCOL.md 2.7): sent 3, applied 2, acked 1, incarnation 1000, counter 7,
 * versions [1, 2], features 1 (echo), echo (2000, 5). It has no zero byte. */
#define HELLO_ECHO_BODY                                                                            \
    "\x08\x03\x10\x02\x18\x01\x30\xe8\x07\x38\x07\x42\x02\x01\x02\x48\x01\x50\xd0\x0f\x58\x05"

typedef struct {
    const char *name;
    uint32_t version; /* Inner format */
    msg_type_t type;
    uint64_t sequence;
    const char *body;
    bool possible_duplicate;
} kat_case_t;

static const kat_case_t kat_cases[] = {
    {"settlement", 1, MSG_SETTLEMENT, 1, "KAT settlement body", false},
    {"status_report", 1, MSG_STATUS_REPORT, 2, "KAT status", false},
    {"retransmission", 1, MSG_SETTLEMENT, 1, "KAT settlement body", true},
    {"ack", 1, MSG_ACK, 0, "", false},
    {"hello", 1, MSG_HELLO, 0, "hello", false},
    {"settlement_v2", 2, MSG_SETTLEMENT, 3, "KAT settlement body", false},
    {"status_report_v2", 2, MSG_STATUS_REPORT, 4, "KAT status v2", false},
    {"hello_v2", 2, MSG_HELLO, 0, "hello v2", false},
    {"hello_echo_v2", 2, MSG_HELLO, 0, HELLO_ECHO_BODY, false},
    /* body NULL: A's KeyAnnounce of the keys from seed 0x5a (its box key kept, CURVE secret
     * 32 x 0x5b, proved to B) */
    {"key_announce_v2", 2, MSG_KEY_ANNOUNCE, 5, NULL, false},
    /* body NULL: A's KeySwitch to the CURVE key of key_announce_v2, with an hour's overlap */
    {"key_switch_v2", 2, MSG_KEY_SWITCH, 6, NULL, false},
    /* body NULL, the holds and cancellation of PROTOCOL.md 3.8 (kat_settlement and after):
     * a real Settlement with an expiry; the StatusReport PDNG that answers one of that body;
     * the CancelRequest that asks it back; the CancelAnswer CNCL that grants the request */
    {"settlement_expiry_v2", 2, MSG_SETTLEMENT, 7, NULL, false},
    {"status_report_pdng_v2", 2, MSG_STATUS_REPORT, 8, NULL, false},
    {"cancel_request_v2", 2, MSG_CANCEL_REQUEST, 9, NULL, false},
    {"cancel_answer_v2", 2, MSG_CANCEL_ANSWER, 10, NULL, false},
    /* body NULL, the two-phase return of PROTOCOL.md 3.9: a Return of 500.00 of that payment,
     * bound to its body (field 6); the StatusReport ACSC that accepts it, naming the Return's
     * body */
    {"return_v2", 2, MSG_RETURN, 11, NULL, false},
    {"status_report_return_v2", 2, MSG_STATUS_REPORT, 12, NULL, false},
    /* body NULL, the FX trade of PROTOCOL.md 3.10: an FxProposal paying 10 000.00 RUB for
     * 4 500 000.00 IRR at 450 with an expiry; the StatusReport ACSC that accepts it, naming the
     * trade's id and the FxProposal's body, the acceptor's RUB position now 10 000.00 */
    {"fx_proposal_v2", 2, MSG_FX_PROPOSAL, 13, NULL, false},
    {"status_report_fx_v2", 2, MSG_STATUS_REPORT, 14, NULL, false},
    /* body NULL, the settlement cycles of PROTOCOL.md 3.11 (kat_cycle_statement): A proposes
     * cycle 1 (those entries: the payment, the return and both FX legs) with its signature
     * (H8); A countersigns cycle 2, which B proposed; A, the net debtor of cycle 1 in RUB,
     * says it paid that net through a clearing system (pacs.009, H9 of cycle 1's statement) */
    {"cycle_proposal_v2", 2, MSG_CYCLE_PROPOSAL, 15, NULL, false},
    {"cycle_answer_v2", 2, MSG_CYCLE_ANSWER, 16, NULL, false},
    {"net_settlement_v2", 2, MSG_NET_SETTLEMENT, 17, NULL, false},
    /* body NULL, the multilateral set-off of PROTOCOL.md 3.12 (kat_setoff_terms): A proposes
     * the ring A, B, C to its successor B with its own yes vote (SetoffRelay); A commits the
     * ring A, C, B and tells its predecessor B, with every member's yes vote (SetoffDecision) */
    {"setoff_relay_v2", 2, MSG_SETOFF_RELAY, 18, NULL, false},
    {"setoff_decision_v2", 2, MSG_SETOFF_DECISION, 19, NULL, false},
};

/* The next keys key_announce_v2 announces: Ed25519 seed 0x5a, old's X25519 key, and the CURVE
 * key whose secret is 32 bytes 0x5b (PROTOCOL.md 2.16). */
static identity_t *kat_next_keys(const identity_t *old)
{
    uint8_t seed[crypto_sign_SEEDBYTES], curve_raw[32];
    char curve_secret[IDENTITY_CURVE_KEY_CHARS + 1];
    memset(seed, 0x5a, sizeof seed);
    memset(curve_raw, 0x5b, sizeof curve_raw);
    assert_non_null(zmq_z85_encode(curve_secret, curve_raw, sizeof curve_raw));
    identity_t *next = identity_from_secrets(seed, old->box_secret, curve_secret);
    assert_non_null(next);
    return next;
}

/* The KeyAnnounce body of key_announce_v2 (PROTOCOL.md 2.14), with its CURVE possession
 * proof to `to` (2.16); *len set. Deterministic: Ed25519 signatures, X25519 and BLAKE2b are. */
static uint8_t *kat_key_announce(const identity_t *old, const identity_t *to, size_t *len)
{
    identity_t *next = kat_next_keys(old);
    uint8_t *body = NULL;
    assert_int_equal(key_announce_encode(next, old->key_id, to->box_public, &body, len), 0);
    key_announce_t decoded;
    assert_int_equal(key_announce_decode(body, *len, old->key_id, &decoded), 0);
    assert_memory_equal(decoded.sign_public, next->sign_public, crypto_sign_PUBLICKEYBYTES);
    assert_true(key_announce_curve_proved(&decoded, old->key_id, to->box_secret));
    assert_false(key_announce_curve_proved(&decoded, old->key_id, old->box_secret));
    identity_destroy(&next);
    return body;
}

/* The KeySwitch body of key_switch_v2 (PROTOCOL.md 2.14), malloc'd; *len set. */
static uint8_t *kat_key_switch(const identity_t *old, size_t *len)
{
    identity_t *next = kat_next_keys(old);
    key_switch_t ks = {.overlap_s = 3600};
    memcpy(ks.curve_public, next->curve_public, sizeof ks.curve_public);
    identity_destroy(&next);
    uint8_t *body = malloc(KEY_SWITCH_BODY_MAX);
    assert_non_null(body);
    assert_int_equal(key_switch_encode(&ks, body, KEY_SWITCH_BODY_MAX, len), 0);
    key_switch_t decoded;
    assert_int_equal(key_switch_decode(body, *len, &decoded), 0);
    assert_string_equal(decoded.curve_public, ks.curve_public);
    assert_int_equal(decoded.overlap_s, ks.overlap_s);
    return body;
}

/* The payment of settlement_expiry_v2 (PROTOCOL.md 3.2, 3.8.1): every field set, created
 * 2026-01-01T00:00:00Z, expiring a day later. The three vectors after it name its body. */
#define KAT_UETR          "0f8fad5b-d9cb-469f-a165-70867728950e"
#define KAT_CANCEL_ID     "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define KAT_CREATED_MS    INT64_C(1767225600000)
#define KAT_EXPIRES_MS    (KAT_CREATED_MS + INT64_C(86400000))
#define KAT_CANCEL_REASON "CUST"
#define KAT_RETURN_ID     "16fd2706-8baf-433b-82eb-8c7fada847da"

static void kat_settlement(settlement_t *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "BMJIIRTH");
    s->direction = DIRECTION_OUT;
    snprintf(s->uetr, sizeof s->uetr, KAT_UETR);
    snprintf(s->end_to_end_id, sizeof s->end_to_end_id, "KAT-E2E-0001");
    s->amount_minor = 125000;
    snprintf(s->currency, sizeof s->currency, "RUB");
    snprintf(s->value_date, sizeof s->value_date, "2026-01-01");
    snprintf(s->debtor_name, sizeof s->debtor_name, "KAT Debtor");
    snprintf(s->debtor_account, sizeof s->debtor_account, "40702810000000000001");
    snprintf(s->creditor_name, sizeof s->creditor_name, "KAT Creditor");
    snprintf(s->creditor_account, sizeof s->creditor_account, "40702810900000000002");
    snprintf(s->remittance, sizeof s->remittance, "KAT expiry");
    s->created_unix_ms = KAT_CREATED_MS;
    s->expires_unix_ms = KAT_EXPIRES_MS;
}

/* The body of settlement_expiry_v2, malloc'd; *len set. It decodes back to every field, the
 * expiry included. */
static uint8_t *kat_settlement_body(size_t *len)
{
    settlement_t s, back;
    kat_settlement(&s);
    assert_int_equal(settlement_check(&s), REASON_NONE);
    uint8_t *body = NULL;
    assert_int_equal(settlement_encode(&s, &body, len), 0);
    assert_int_equal(settlement_decode(body, *len, s.peer, s.direction, &back), REASON_NONE);
    assert_memory_equal(&back, &s, sizeof s);
    return body;
}

/* The body hash (H2) of settlement_expiry_v2's body: what the vectors after it name. */
static void kat_settlement_hash(uint8_t hash[static SETTLEMENT_HASH_BYTES])
{
    size_t len = 0;
    uint8_t *body = kat_settlement_body(&len);
    settlement_body_hash(body, len, hash);
    free(body);
}

/* A packed body, malloc'd (protobuf-c packs into a buffer of the announced size). */
static uint8_t *kat_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *body = malloc(*len);
    assert_non_null(body);
    assert_int_equal(protobuf_c_message_pack(m, body), *len);
    return body;
}

/* The body of status_report_pdng_v2 (PROTOCOL.md 3.8.2): the payee holds the payment, its
 * position unchanged (0, so omitted); version 2, so it names the Settlement's body. */
static uint8_t *kat_pending_report(size_t *len)
{
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    kat_settlement_hash(hash);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = KAT_UETR;
    sr.status = "PDNG";
    sr.reason = "";
    sr.currency = "RUB";
    sr.position_minor = 0;
    sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t *body = kat_pack(&sr.base, len);
    Corridor__StatusReport *back = corridor__status_report__unpack(NULL, *len, body);
    assert_non_null(back);
    assert_string_equal(back->status, "PDNG");
    assert_int_equal(back->settlement_hash.len, sizeof hash);
    assert_memory_equal(back->settlement_hash.data, hash, sizeof hash);
    corridor__status_report__free_unpacked(back, NULL);
    return body;
}

/* The body of cancel_request_v2 (PROTOCOL.md 3.8.4): the payer asks the payment back. */
static uint8_t *kat_cancel_request(size_t *len)
{
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    kat_settlement_hash(hash);
    Corridor__CancelRequest req = CORRIDOR__CANCEL_REQUEST__INIT;
    req.cancellation_id = KAT_CANCEL_ID;
    req.uetr = KAT_UETR;
    req.reason = KAT_CANCEL_REASON;
    req.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t *body = kat_pack(&req.base, len);
    Corridor__CancelRequest *back = corridor__cancel_request__unpack(NULL, *len, body);
    assert_non_null(back);
    assert_string_equal(back->cancellation_id, KAT_CANCEL_ID);
    assert_string_equal(back->reason, KAT_CANCEL_REASON);
    assert_memory_equal(back->settlement_hash.data, hash, sizeof hash);
    corridor__cancel_request__free_unpacked(back, NULL);
    return body;
}

/* The body of cancel_answer_v2 (PROTOCOL.md 3.8.4): the payee held the payment and grants the
 * request (CNCL): declined with the request's reason, the request's id and binding echoed. */
static uint8_t *kat_cancel_answer(size_t *len)
{
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    kat_settlement_hash(hash);
    Corridor__CancelAnswer ans = CORRIDOR__CANCEL_ANSWER__INIT;
    ans.cancellation_id = KAT_CANCEL_ID;
    ans.uetr = KAT_UETR;
    ans.confirmation = "CNCL";
    ans.reason = KAT_CANCEL_REASON;
    ans.status = "RJCT";
    ans.status_reason = KAT_CANCEL_REASON;
    ans.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t *body = kat_pack(&ans.base, len);
    Corridor__CancelAnswer *back = corridor__cancel_answer__unpack(NULL, *len, body);
    assert_non_null(back);
    assert_string_equal(back->confirmation, "CNCL");
    assert_string_equal(back->status_reason, KAT_CANCEL_REASON);
    assert_memory_equal(back->settlement_hash.data, hash, sizeof hash);
    corridor__cancel_answer__free_unpacked(back, NULL);
    return body;
}

/* The body of return_v2 (PROTOCOL.md 3.9): 500.00 of settlement_expiry_v2's payment given back
 * for AC04 under its own id, bound to the payment's body hash (field 6). Encoded by
 * settlement_encode, it decodes back to the same return. */
static uint8_t *kat_return_body(size_t *len)
{
    settlement_t r, back;
    memset(&r, 0, sizeof r);
    snprintf(r.peer, sizeof r.peer, "BMJIIRTH");
    r.direction = DIRECTION_OUT;
    snprintf(r.uetr, sizeof r.uetr, KAT_RETURN_ID);
    snprintf(r.original_uetr, sizeof r.original_uetr, KAT_UETR);
    snprintf(r.return_reason, sizeof r.return_reason, "AC04");
    r.amount_minor = 50000;
    snprintf(r.currency, sizeof r.currency, "RUB");
    kat_settlement_hash(r.original_hash);
    assert_int_equal(return_check(&r), REASON_NONE);
    uint8_t *body = NULL;
    assert_int_equal(settlement_encode(&r, &body, len), 0);
    assert_int_equal(return_decode(body, *len, r.peer, r.direction, &back), REASON_NONE);
    assert_memory_equal(&back, &r, sizeof r);
    return body;
}

/* The body of status_report_return_v2: the payer accepts the return (ACSC), its position
 * towards the returner now -750.00, naming the Return's body (3.7.2 over Inner.body). */
static uint8_t *kat_return_report(size_t *len)
{
    size_t return_len = 0;
    uint8_t *ret = kat_return_body(&return_len);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(ret, return_len, hash);
    free(ret);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = KAT_RETURN_ID;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = "RUB";
    sr.position_minor = -75000;
    sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    return kat_pack(&sr.base, len);
}

#define KAT_FX_ID        "9b2e4f6a-1c3d-4e5f-8a7b-6c5d4e3f2a1b"
#define KAT_FX_PAY_UETR  "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f70"
#define KAT_FX_RECV_UETR "5e7a9c1b-3d5f-4b7d-8f1a-3c5e7a9c1b3d"

/* The body of fx_proposal_v2 (PROTOCOL.md 3.10): A pays 10 000.00 RUB and receives
 * 4 500 000.00 IRR, rate "450", expiring a day after it is made. Encoded by fx_encode, it
 * decodes back to the same trade and passes fx_check. */
static uint8_t *kat_fx_body(size_t *len)
{
    fx_trade_t t, back;
    memset(&t, 0, sizeof t);
    snprintf(t.fx_id, sizeof t.fx_id, KAT_FX_ID);
    snprintf(t.legs[FX_PAY].uetr, sizeof t.legs[FX_PAY].uetr, KAT_FX_PAY_UETR);
    snprintf(t.legs[FX_RECEIVE].uetr, sizeof t.legs[FX_RECEIVE].uetr, KAT_FX_RECV_UETR);
    t.legs[FX_PAY].amount_minor = 1000000;
    snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "RUB");
    t.legs[FX_RECEIVE].amount_minor = 450000000;
    snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "IRR");
    t.created_unix_ms = KAT_CREATED_MS;
    t.expires_unix_ms = KAT_EXPIRES_MS;
    fx_trade_prepare(&t, "BMJIIRTH");
    assert_string_equal(t.rate, "450");
    assert_int_equal(fx_check(&t), REASON_NONE);
    uint8_t *body = NULL;
    assert_int_equal(fx_encode(&t, &body, len), 0);
    assert_int_equal(fx_decode(body, *len, "BMJIIRTH", DIRECTION_OUT, &back), REASON_NONE);
    assert_memory_equal(&back, &t, sizeof t);
    return body;
}

/* The body of status_report_fx_v2: the acceptor books both legs (ACSC) under the trade's id,
 * naming the FxProposal's body (3.7.2 over Inner.body), in the pay leg's currency. */
static uint8_t *kat_fx_report(size_t *len)
{
    size_t fx_len = 0;
    uint8_t *fx = kat_fx_body(&fx_len);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(fx, fx_len, hash);
    free(fx);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = KAT_FX_ID;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = "RUB";
    sr.position_minor = 1000000;
    sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    return kat_pack(&sr.base, len);
}

/* The statement of cycle 1 or 2 between A (BKRURUMM, first) and B (BMJIIRTH), PROTOCOL.md
 * 3.11.1, encoded; malloc'd, *len set. Cycle 1 at cut (14, 9): the vectors above, settled
 * (RUB: 1 250.00 and 10 000.00 from A, the 500.00 return from B; IRR: 4 500 000.00 from B),
 * digest 00 01 .. 1f, 4 entries. Cycle 2 at cut (15, 20): 2 500.00 RUB from B in two entries
 * (one rejected), digest 20 21 .. 3f. Decoded strictly, they are what was encoded. */
static uint8_t *kat_cycle_statement(uint64_t cycle, size_t *len)
{
    static const cycle_view_t one[] = {{"IRR", 0, 450000000, 1}, {"RUB", 1125000, 50000, 3}};
    static const cycle_view_t two[] = {{"RUB", 0, 250000, 2}};
    uint8_t digest[DIGEST_BYTES];
    for (size_t i = 0; i < sizeof digest; i++) {
        digest[i] = (uint8_t)(cycle == 1 ? i : 0x20 + i);
    }
    cycle_statement_t st, back;
    if (cycle == 1) {
        assert_true(
            cycle_statement_from_view(&st, "BKRURUMM", "BMJIIRTH", 1, 14, 9, one, 2, digest, 4));
    } else {
        assert_true(
            cycle_statement_from_view(&st, "BKRURUMM", "BMJIIRTH", 2, 15, 20, two, 1, digest, 2));
    }
    assert_int_equal(st.currencies[st.n_currencies - 1].net_first, cycle == 1 ? -1075000 : 250000);
    uint8_t *out = NULL;
    assert_int_equal(cycle_statement_encode(&st, &out, len), 0);
    assert_true(cycle_statement_decode(out, *len, &back));
    assert_memory_equal(&back, &st, sizeof st);
    return out;
}

/* cycle_proposal_v2: A's statement of cycle 1 and A's signature over it (H8). */
static uint8_t *kat_cycle_proposal(const identity_t *a, size_t *len)
{
    size_t slen = 0;
    uint8_t *statement = kat_cycle_statement(1, &slen);
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(cycle_sign(statement, slen, a->sign_secret, sig), 0);
    assert_true(cycle_verify(statement, slen, sig, a->sign_public));
    uint8_t *body = NULL;
    assert_int_equal(cycle_proposal_encode(statement, slen, sig, &body, len), 0);
    cycle_answer_t p;
    assert_true(cycle_proposal_decode(body, *len, &p));
    assert_int_equal(p.statement_len, slen);
    assert_memory_equal(p.statement, statement, slen);
    cycle_answer_release(&p);
    free(statement);
    return body;
}

/* cycle_answer_v2: A countersigns B's proposal of cycle 2: `cycle` 2, A's H8 signature over
 * the statement of cycle 2, no statement, no error. */
static uint8_t *kat_cycle_answer(const identity_t *a, size_t *len)
{
    size_t slen = 0;
    uint8_t *statement = kat_cycle_statement(2, &slen);
    cycle_answer_t ans, back;
    memset(&ans, 0, sizeof ans);
    ans.cycle = 2;
    ans.has_signature = true;
    assert_int_equal(cycle_sign(statement, slen, a->sign_secret, ans.signature), 0);
    free(statement);
    uint8_t *body = NULL;
    assert_int_equal(cycle_answer_encode(&ans, &body, len), 0);
    assert_true(cycle_answer_decode(body, *len, &back));
    assert_memory_equal(&back, &ans, sizeof ans);
    return body;
}

#define KAT_NET_ID "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"

/* net_settlement_v2: A paid cycle 1's RUB net (10 750.00) through a clearing system. */
static uint8_t *kat_net_settlement(size_t *len)
{
    net_settlement_t n, back;
    memset(&n, 0, sizeof n);
    snprintf(n.settlement_id, sizeof n.settlement_id, KAT_NET_ID);
    n.cycle = 1;
    snprintf(n.currency, sizeof n.currency, "RUB");
    n.amount_minor = 1075000;
    snprintf(n.reference, sizeof n.reference, "KAT-NET-0001");
    snprintf(n.method, sizeof n.method, "CLRG");
    snprintf(n.clearing_system, sizeof n.clearing_system, "KAT RTGS");
    n.created_unix_ms = KAT_EXPIRES_MS;
    size_t slen = 0;
    uint8_t *statement = kat_cycle_statement(1, &slen);
    cycle_statement_hash(statement, slen, n.statement_hash);
    free(statement);
    assert_null(net_settlement_check(&n));
    uint8_t *body = NULL;
    assert_int_equal(net_settlement_encode(&n, &body, len), 0);
    assert_true(net_settlement_decode(body, *len, &back));
    assert_memory_equal(&back, &n, sizeof n);
    return body;
}

/* The terms of a set-off (PROTOCOL.md 3.12.1) of the ring `order` (indexes of net's nodes, A
 * first: it proposes), 1 000.00 RUB, an hour to vote, encoded into m (terms_bytes malloc'd) and
 * signed by A (H10). Decoded strictly, they are what was encoded. */
static void kat_setoff_terms(net_t *net, const char *id, const int order[static 3],
                             setoff_message_t *m)
{
    static const char *const names[] = {"BKRURUMM", "BMJIIRTH", "KZKZKZKA"};
    memset(m, 0, sizeof *m);
    setoff_terms_t *t = &m->terms, back;
    snprintf(t->setoff_id, sizeof t->setoff_id, "%s", id);
    t->n = 3;
    for (size_t i = 0; i < 3; i++) {
        const identity_t *who = net->id[order[i]];
        snprintf(t->ring[i].code, sizeof t->ring[i].code, "%s", names[order[i]]);
        memcpy(t->ring[i].key_id, who->key_id, IDENTITY_KEY_ID_BYTES);
        memcpy(t->ring[i].signing_key, who->sign_public, crypto_sign_PUBLICKEYBYTES);
    }
    snprintf(t->currency, sizeof t->currency, "RUB");
    t->amount_minor = 100000;
    t->created_unix_ms = KAT_CREATED_MS;
    t->deadline_unix_ms = KAT_CREATED_MS + INT64_C(3600000);
    assert_int_equal(setoff_terms_encode(t, &m->terms_bytes, &m->terms_len), 0);
    assert_true(setoff_terms_decode(m->terms_bytes, m->terms_len, &back));
    assert_memory_equal(&back, t, sizeof back);
    assert_int_equal(setoff_sign(SETOFF_TERMS_DOMAIN, m->terms_bytes, m->terms_len,
                                 net->id[A]->sign_secret, m->terms_signature),
                     0);
}

/* The yes vote of the member at `position` (H11 by `who`'s key). */
static void kat_setoff_vote(const setoff_message_t *m, uint32_t position, const identity_t *who,
                            setoff_vote_t *v)
{
    setoff_ballot_t b;
    memset(&b, 0, sizeof b);
    setoff_terms_hash(m->terms_bytes, m->terms_len, b.terms_hash);
    b.position = position;
    b.yes = true;
    assert_int_equal(setoff_vote_make(&b, who->sign_secret, v), 0);
}

/* The body of a set-off message, encoded, decoded back and checked: every signature verifies
 * with the keys of the terms. */
static uint8_t *kat_setoff_body(setoff_message_t *m, bool decision, size_t *len)
{
    uint8_t *body = NULL;
    assert_int_equal(setoff_message_encode(m, decision, &body, len), 0);
    setoff_message_t back;
    assert_true(setoff_message_decode(body, *len, decision, &back));
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(back.terms_bytes, back.terms_len, h);
    assert_true(setoff_verify(SETOFF_TERMS_DOMAIN, back.terms_bytes, back.terms_len,
                              back.terms_signature, back.terms.ring[0].signing_key));
    assert_int_equal(back.n_votes, m->n_votes);
    for (size_t i = 0; i < back.n_votes; i++) {
        assert_true(setoff_vote_valid(&back.terms, h, &back.votes[i]));
    }
    assert_true(!decision ||
                setoff_verify(SETOFF_VERDICT_DOMAIN, back.verdict_bytes, back.verdict_len,
                              back.verdict_signature, back.terms.ring[0].signing_key));
    setoff_message_release(&back);
    setoff_message_release(m);
    return body;
}

/* setoff_relay_v2: A's relay of the ring A, B, C to B, with A's yes vote. */
static uint8_t *kat_setoff_relay(net_t *net, size_t *len)
{
    static const int order[] = {A, B, C};
    setoff_message_t m;
    kat_setoff_terms(net, "c56a4180-65aa-42ec-a945-5fd21dec0538", order, &m);
    kat_setoff_vote(&m, 0, net->id[A], &m.votes[0]);
    m.n_votes = 1;
    return kat_setoff_body(&m, false, len);
}

/* setoff_decision_v2: A commits the ring A, C, B (H12) and tells B, its predecessor, with the
 * yes votes of A, C and B. */
static uint8_t *kat_setoff_decision(net_t *net, size_t *len)
{
    static const int order[] = {A, C, B};
    setoff_message_t m;
    kat_setoff_terms(net, "e2f8a1b4-7c3d-4e5f-9a6b-8c7d6e5f4a3b", order, &m);
    for (uint32_t i = 0; i < 3; i++) {
        kat_setoff_vote(&m, i, net->id[order[i]], &m.votes[i]);
    }
    m.n_votes = 3;
    setoff_terms_hash(m.terms_bytes, m.terms_len, m.verdict.terms_hash);
    m.verdict.commit = true;
    m.verdict_len = setoff_verdict_encode(&m.verdict, m.verdict_bytes);
    assert_true(m.verdict_len > 0);
    assert_int_equal(setoff_sign(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len,
                                 net->id[A]->sign_secret, m.verdict_signature),
                     0);
    return kat_setoff_body(&m, true, len);
}

/* The body of a vector kat_cases gives as NULL, by its type; malloc'd, *len set. */
static uint8_t *kat_body(net_t *net, const kat_case_t *k, size_t *len)
{
    if (strcmp(k->name, "status_report_return_v2") == 0) {
        return kat_return_report(len);
    }
    if (strcmp(k->name, "status_report_fx_v2") == 0) {
        return kat_fx_report(len);
    }
    switch (k->type) {
    case MSG_KEY_ANNOUNCE:
        return kat_key_announce(net->id[A], net->id[B], len);
    case MSG_KEY_SWITCH:
        return kat_key_switch(net->id[A], len);
    case MSG_SETTLEMENT:
        return kat_settlement_body(len);
    case MSG_STATUS_REPORT:
        return kat_pending_report(len);
    case MSG_CANCEL_REQUEST:
        return kat_cancel_request(len);
    case MSG_CANCEL_ANSWER:
        return kat_cancel_answer(len);
    case MSG_RETURN:
        return kat_return_body(len);
    case MSG_FX_PROPOSAL:
        return kat_fx_body(len);
    case MSG_CYCLE_PROPOSAL:
        return kat_cycle_proposal(net->id[A], len);
    case MSG_CYCLE_ANSWER:
        return kat_cycle_answer(net->id[A], len);
    case MSG_NET_SETTLEMENT:
        return kat_net_settlement(len);
    case MSG_SETOFF_RELAY:
        return kat_setoff_relay(net, len);
    case MSG_SETOFF_DECISION:
        return kat_setoff_decision(net, len);
    default:
        fail_msg("no made body for type %d", (int)k->type);
        return NULL;
    }
}

static char *kat_hex(net_t *net, const kat_case_t *k)
{
    uint8_t nonce[ENVELOPE_NONCE_BYTES];
    for (size_t i = 0; i < sizeof nonce; i++) {
        nonce[i] = (uint8_t)i;
    }
    uint8_t *signed_msg = NULL, *wire = NULL, *made = NULL;
    size_t signed_len = 0, len = 0, body_len = k->body != NULL ? strlen(k->body) : 0;
    const uint8_t *body = (const uint8_t *)k->body;
    if (body == NULL) {
        body = made = kat_body(net, k, &body_len);
    }
    assert_int_equal(envelope_sign_version(net->id[A], k->version, net->id[B]->key_id, k->type,
                                           k->sequence, body, body_len, &signed_msg, &signed_len),
                     ENV_OK);
    free(made);
    assert_int_equal(envelope_wrap_nonce(net->id[A], peer_entry(net, A, B), signed_msg, signed_len,
                                         k->possible_duplicate, nonce, &wire, &len),
                     ENV_OK);
    char *hex = malloc(2 * len + 1);
    sodium_bin2hex(hex, 2 * len + 1, wire, len);
    free(signed_msg);
    free(wire);
    return hex;
}

static void test_known_answer_vectors(void **state)
{
    net_t *net = *state;
    /* the Hello of hello_echo_v2 is what protobuf-c encodes */
    uint32_t versions[] = {1, 2};
    Corridor__Hello hello = CORRIDOR__HELLO__INIT;
    hello.sent_sequence = 3;
    hello.applied_sequence = 2;
    hello.acked_sequence = 1;
    hello.incarnation = 1000;
    hello.counter = 7;
    hello.n_versions = 2;
    hello.versions = versions;
    hello.features = 1;
    hello.echo_incarnation = 2000;
    hello.echo_counter = 5;
    uint8_t hello_buf[64];
    size_t hello_len = corridor__hello__pack(&hello, hello_buf);
    assert_int_equal(hello_len, strlen(HELLO_ECHO_BODY));
    assert_memory_equal(hello_buf, HELLO_ECHO_BODY, hello_len);
    size_t n_cases = sizeof kat_cases / sizeof kat_cases[0];
    if (getenv("CORRIDOR_KAT_WRITE") != NULL) { /* regenerate after a deliberate format change */
        FILE *f = fopen(KAT_FILE, "w");
        assert_non_null(f);
        fprintf(f, "# Envelope known-answer vectors: name, then the sealed bytes in hex.\n"
                   "# Keys from fixed seeds, nonce 00..17; see tests/test_envelope.c.\n");
        for (size_t i = 0; i < n_cases; i++) {
            char *hex = kat_hex(net, &kat_cases[i]);
            fprintf(f, "%s %s\n", kat_cases[i].name, hex);
            free(hex);
        }
        fclose(f);
    }
    char *text = test_read_file(KAT_FILE, NULL);
    assert_non_null(text);
    size_t matched = 0;
    for (size_t i = 0; i < n_cases; i++) {
        char *hex = kat_hex(net, &kat_cases[i]);
        char line[4096];
        snprintf(line, sizeof line, "\n%s %s\n", kat_cases[i].name, hex);
        if (strstr(text, line) == NULL) {
            fail_msg("vector %s differs from %s: the wire format changed", kat_cases[i].name,
                     KAT_FILE);
        }
        /* and the vector opens to what was sealed */
        size_t len = strlen(hex) / 2;
        uint8_t *wire = malloc(len);
        assert_int_equal(sodium_hex2bin(wire, len, hex, strlen(hex), NULL, NULL, NULL), 0);
        envelope_message_t msg;
        assert_int_equal(open_at(net, B, wire, len, &msg), ENV_OK);
        assert_int_equal(msg.possible_duplicate, kat_cases[i].possible_duplicate);
        assert_int_equal(msg.version, kat_cases[i].version);
        assert_int_equal(msg.type, kat_cases[i].type);
        assert_int_equal(msg.sequence, kat_cases[i].sequence);
        envelope_message_clear(&msg);
        free(wire);
        free(hex);
        matched++;
    }
    assert_int_equal(matched, n_cases);
    free(text);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_evidence_verifies_with_public_key_alone),
        cmocka_unit_test(test_retransmission_keeps_signed_bytes),
        cmocka_unit_test(test_unknown_sender),
        cmocka_unit_test(test_reflected_back_to_author),
        cmocka_unit_test(test_delivered_to_another_trusted_node),
        cmocka_unit_test(test_signed_for_another_recipient),
        cmocka_unit_test(test_rewrapped_by_third_trusted_node),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_wrong_inner_version),
        cmocka_unit_test(test_wrong_outer_version),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_every_flipped_bit_position_is_refused),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_oversized_input_refused_before_parsing),
        cmocka_unit_test(test_oversized_body_refused_at_seal),
        cmocka_unit_test(test_largest_settlement_fits_the_stream),
        cmocka_unit_test(test_garbage_and_empty_refused),
        cmocka_unit_test(test_weak_box_key_refused),
        cmocka_unit_test(test_applied_copy_reported_before_signature_check),
        cmocka_unit_test(test_strerror_distinct),
        cmocka_unit_test(test_key_switch_round_trip),
        cmocka_unit_test(test_key_switch_overlap_bounds),
        cmocka_unit_test(test_key_switch_malformed_refused),
        cmocka_unit_test(test_known_answer_vectors),
    };
    return cmocka_run_group_tests(tests, net_setup, net_teardown);
}
