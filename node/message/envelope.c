/* Sealed envelopes: sign, bind, encrypt; open, verify, decode. See envelope.h. */
#include "envelope.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "wire.h"

_Static_assert(ENVELOPE_NONCE_BYTES == 24, "crypto_box nonces are 24 bytes");
_Static_assert((int)MSG_KEY_ANNOUNCE == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_KEY_ANNOUNCE,
               "message type numbers follow corridor.proto");
_Static_assert((int)MSG_KEY_SWITCH == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_KEY_SWITCH,
               "message type numbers follow corridor.proto");
_Static_assert((int)MSG_CANCEL_ANSWER == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_CANCEL_ANSWER,
               "message type numbers follow corridor.proto");
_Static_assert((int)MSG_FX_PROPOSAL == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_FX_PROPOSAL,
               "message type numbers follow corridor.proto");
_Static_assert((int)MSG_NET_SETTLEMENT == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_NET_SETTLEMENT,
               "message type numbers follow corridor.proto");
_Static_assert((int)MSG_SETOFF_DECISION ==
                   (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_SETOFF_DECISION,
               "message type numbers follow corridor.proto");
_Static_assert((int)MSG_HELLO == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_HELLO,
               "msg_type_t follows the proto");
_Static_assert((int)MSG_SETTLEMENT == (int)CORRIDOR__MESSAGE_TYPE__MESSAGE_TYPE_SETTLEMENT,
               "msg_type_t follows the proto");

/* Room for the framing around a body: keys ids, tags, signature, nonce, MAC. */
#define ENVELOPE_OVERHEAD_BYTES 512
_Static_assert(CORRIDOR_BODY_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES <= CORRIDOR_WIRE_BYTES_MAX,
               "the wire limit leaves room for a full body");

const char *msg_type_name(int type)
{
    static const char *const names[] = {
        "unspecified",   "Settlement",   "StatusReport",  "Return",        "StatementRequest",
        "Statement",     "Ack",          "Hello",         "KeyAnnounce",   "KeySwitch",
        "CancelRequest", "CancelAnswer", "FxProposal",    "CycleProposal", "CycleAnswer",
        "NetSettlement", "SetoffRelay",  "SetoffDecision"};
    _Static_assert(sizeof names / sizeof names[0] == MSG_TYPE_MAX + 1, "a name per type");
    if (type < 0 || type > MSG_TYPE_MAX) {
        return "unknown";
    }
    return names[type];
}

bool msg_type_sequenced(int type)
{
    return (type >= MSG_SETTLEMENT && type <= MSG_RETURN) ||
           (type >= MSG_KEY_ANNOUNCE && type <= MSG_SETOFF_DECISION);
}

const char *env_strerror(env_err_t err)
{
    switch (err) {
    case ENV_OK:
        return "ok";
    case ENV_E_TOO_LARGE:
        return "message too large";
    case ENV_E_MALFORMED:
        return "malformed message";
    case ENV_E_VERSION:
        return "unsupported message version";
    case ENV_E_UNKNOWN_SENDER:
        return "sender is not a trusted peer";
    case ENV_E_DECRYPT:
        return "message does not decrypt (altered, or not for this node)";
    case ENV_E_FORWARDED:
        return "message signed by another node than its sender (forwarded)";
    case ENV_E_BAD_SIGNATURE:
        return "signature does not verify";
    case ENV_E_WRONG_RECIPIENT:
        return "message signed for another recipient";
    case ENV_E_BAD_TYPE:
        return "unknown message type";
    case ENV_E_WEAK_KEY:
        return "peer's encryption key is weak";
    case ENV_E_NOMEM:
        return "out of memory";
    case ENV_E_DUPLICATE:
        return "message already applied";
    case ENV_E_STALE_KEY:
        return "signed with a key of the peer not valid for that message";
    case ENV_E_REVOKED:
        return "under a key of the peer that its replacement card revoked (stolen?)";
    }
    return "unknown error";
}

void envelope_message_clear(envelope_message_t *msg)
{
    assert(msg != NULL);
    free(msg->body);
    free(msg->evidence);
    memset(msg, 0, sizeof *msg);
}

env_err_t envelope_peer_init(envelope_peer_t *peer, const identity_t *self, const peer_card_t *card)
{
    assert(peer != NULL && self != NULL && card != NULL);
    memset(peer, 0, sizeof *peer);
    memcpy(peer->sign_public, card->sign_public, sizeof peer->sign_public);
    identity_key_id(card->sign_public, peer->key_id);
    if (crypto_box_beforenm(peer->shared_key, card->box_public, self->box_secret) != 0) {
        envelope_peer_wipe(peer);
        return ENV_E_WEAK_KEY;
    }
    memcpy(peer->open_keys[0], peer->shared_key, sizeof peer->shared_key);
    peer->open_keys_count = 1;
    return ENV_OK;
}

env_err_t envelope_peer_set_box(envelope_peer_t *peer,
                                const uint8_t peer_box[static crypto_box_PUBLICKEYBYTES],
                                const uint8_t *peer_box_previous, const identity_t *ours_seal,
                                const identity_t *ours_other)
{
    assert(peer != NULL && peer_box != NULL && ours_seal != NULL);
    const uint8_t *theirs[2] = {peer_box, peer_box_previous};
    const identity_t *ours[2] = {ours_seal, ours_other};
    uint8_t keys[ENVELOPE_OPEN_KEYS_MAX][crypto_box_BEFORENMBYTES];
    size_t count = 0;
    env_err_t rc = ENV_OK;
    for (size_t o = 0; o < 2 && rc == ENV_OK; o++) {
        for (size_t t = 0; t < 2 && rc == ENV_OK; t++) {
            if (ours[o] == NULL || theirs[t] == NULL) {
                continue;
            }
            if (crypto_box_beforenm(keys[count], theirs[t], ours[o]->box_secret) != 0) {
                rc = ENV_E_WEAK_KEY;
                break;
            }
            bool seen = false;
            for (size_t i = 0; i < count && !seen; i++) {
                seen = sodium_memcmp(keys[i], keys[count], sizeof keys[i]) == 0;
            }
            count += seen ? 0 : 1;
        }
    }
    if (rc == ENV_OK) {
        memcpy(peer->shared_key, keys[0], sizeof peer->shared_key);
        memcpy(peer->open_keys, keys, count * sizeof keys[0]);
        peer->open_keys_count = count;
    }
    sodium_memzero(keys, sizeof keys);
    return rc;
}

void envelope_peer_wipe(envelope_peer_t *peer)
{
    assert(peer != NULL);
    sodium_memzero(peer, sizeof *peer);
}

void envelope_peer_set_key(envelope_peer_t *peer,
                           const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES])
{
    assert(peer != NULL && sign_public != NULL);
    memcpy(peer->sign_public, sign_public, sizeof peer->sign_public);
    identity_key_id(sign_public, peer->key_id);
    sodium_memzero(peer->previous_key_id, sizeof peer->previous_key_id);
    sodium_memzero(peer->previous_sign_public, sizeof peer->previous_sign_public);
    peer->previous_through = 0;
    peer->previous_control = false;
    sodium_memzero(peer->revoked_key_id, sizeof peer->revoked_key_id);
    peer->has_revoked = false;
}

void envelope_peer_add_our_key(envelope_peer_t *peer,
                               const uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
{
    assert(peer != NULL && key_id != NULL);
    assert(peer->our_key_ids_count <= ENVELOPE_OUR_KEYS_MAX);
    if (peer->our_key_ids_count == ENVELOPE_OUR_KEYS_MAX) {
        memmove(peer->our_key_ids[0], peer->our_key_ids[1],
                (ENVELOPE_OUR_KEYS_MAX - 1) * IDENTITY_KEY_ID_BYTES);
        peer->our_key_ids_count--;
    }
    memcpy(peer->our_key_ids[peer->our_key_ids_count++], key_id, IDENTITY_KEY_ID_BYTES);
}

void envelope_peer_rotate(envelope_peer_t *peer,
                          const uint8_t next_sign_public[static crypto_sign_PUBLICKEYBYTES],
                          uint64_t through)
{
    assert(peer != NULL && next_sign_public != NULL && through >= 1);
    memcpy(peer->previous_key_id, peer->key_id, sizeof peer->previous_key_id);
    memcpy(peer->previous_sign_public, peer->sign_public, sizeof peer->previous_sign_public);
    peer->previous_through = through;
    peer->previous_control = true;
    memcpy(peer->sign_public, next_sign_public, sizeof peer->sign_public);
    identity_key_id(next_sign_public, peer->key_id);
}

void envelope_peer_close_previous(envelope_peer_t *peer)
{
    assert(peer != NULL);
    peer->previous_control = false;
}

bool envelope_peer_is_current(const envelope_peer_t *peer,
                              const uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
{
    return sodium_memcmp(peer->key_id, key_id, IDENTITY_KEY_ID_BYTES) == 0;
}

/* Ed25519 over DOMAIN || inner; verify == false signs into sig, true checks sig. */
int envelope_domain_sign(bool verify, const char *domain, const uint8_t *msg, size_t msg_len,
                         const uint8_t *key, uint8_t sig[static crypto_sign_BYTES])
{
    assert(domain != NULL && key != NULL && (msg != NULL || msg_len == 0));
    size_t domain_len = strlen(domain) + 1;
    size_t len = domain_len + msg_len;
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        return -2;
    }
    memcpy(buf, domain, domain_len);
    if (msg_len > 0) {
        memcpy(buf + domain_len, msg, msg_len);
    }
    int rc = verify ? crypto_sign_verify_detached(sig, buf, len, key)
                    : crypto_sign_detached(sig, NULL, buf, len, key);
    free(buf);
    return rc;
}

env_err_t envelope_sign_version(const identity_t *self, uint32_t version,
                                const uint8_t recipient_key_id[static IDENTITY_KEY_ID_BYTES],
                                msg_type_t type, uint64_t sequence, const uint8_t *body,
                                size_t body_len, uint8_t **signed_out, size_t *signed_len)
{
    assert(self != NULL && signed_out != NULL && signed_len != NULL);
    assert(type >= MSG_TYPE_MIN && type <= MSG_TYPE_MAX);
    assert(version >= INNER_VERSION_MIN && version <= INNER_VERSION_MAX);
    assert(body != NULL || body_len == 0);
    *signed_out = NULL;
    *signed_len = 0;
    if (body_len > CORRIDOR_BODY_BYTES_MAX) {
        return ENV_E_TOO_LARGE;
    }
    if (sequence > CORRIDOR_SEQUENCE_MAX) {
        return ENV_E_MALFORMED;
    }
    Corridor__Inner inner = CORRIDOR__INNER__INIT;
    inner.version = version;
    inner.author_key_id = (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)self->key_id};
    inner.recipient_key_id =
        (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)recipient_key_id};
    inner.type = (Corridor__MessageType)type;
    inner.sequence = sequence;
    inner.body = (ProtobufCBinaryData){body_len, (uint8_t *)body};

    env_err_t rc = ENV_E_NOMEM;
    uint8_t sig[crypto_sign_BYTES];
    size_t inner_len = corridor__inner__get_packed_size(&inner);
    uint8_t *inner_buf = malloc(inner_len);
    uint8_t *out = NULL;
    if (inner_buf == NULL) {
        goto cleanup;
    }
    size_t packed = corridor__inner__pack(&inner, inner_buf);
    assert(packed == inner_len);
    if (envelope_domain_sign(false, ENVELOPE_DOMAIN, inner_buf, inner_len, self->sign_secret,
                             sig) != 0) {
        goto cleanup;
    }
    Corridor__SignedMessage sm = CORRIDOR__SIGNED_MESSAGE__INIT;
    sm.inner = (ProtobufCBinaryData){inner_len, inner_buf};
    sm.signature = (ProtobufCBinaryData){sizeof sig, sig};
    size_t out_len = corridor__signed_message__get_packed_size(&sm);
    out = malloc(out_len);
    if (out == NULL) {
        goto cleanup;
    }
    packed = corridor__signed_message__pack(&sm, out);
    assert(packed == out_len);
    *signed_out = out;
    *signed_len = out_len;
    out = NULL;
    rc = ENV_OK;

cleanup:
    free(inner_buf);
    free(out);
    return rc;
}

env_err_t envelope_sign(const identity_t *self,
                        const uint8_t recipient_key_id[static IDENTITY_KEY_ID_BYTES],
                        msg_type_t type, uint64_t sequence, const uint8_t *body, size_t body_len,
                        uint8_t **signed_out, size_t *signed_len)
{
    return envelope_sign_version(self, INNER_VERSION_MIN, recipient_key_id, type, sequence, body,
                                 body_len, signed_out, signed_len);
}

/* Boxes signed bytes to `peer` under `nonce`, naming `sender_key_id` on the Envelope. */
static env_err_t wrap(const uint8_t *sender_key_id, const envelope_peer_t *peer,
                      const uint8_t *signed_msg, size_t signed_len, bool possible_duplicate,
                      const uint8_t *nonce, uint8_t **wire_out, size_t *wire_len)
{
    assert(sender_key_id != NULL && peer != NULL && signed_msg != NULL && wire_out != NULL &&
           wire_len != NULL);
    *wire_out = NULL;
    *wire_len = 0;
    if (signed_len > CORRIDOR_WIRE_BYTES_MAX - ENVELOPE_OVERHEAD_BYTES) {
        return ENV_E_TOO_LARGE;
    }
    Corridor__Transit transit = CORRIDOR__TRANSIT__INIT;
    transit.signed_message = (ProtobufCBinaryData){signed_len, (uint8_t *)signed_msg};
    transit.possible_duplicate = possible_duplicate;

    env_err_t rc = ENV_E_NOMEM;
    size_t plain_len = corridor__transit__get_packed_size(&transit);
    size_t cipher_len = plain_len + crypto_box_MACBYTES;
    uint8_t *plain = malloc(plain_len);
    uint8_t *cipher = malloc(cipher_len);
    uint8_t *out = NULL;
    if (plain == NULL || cipher == NULL) {
        goto cleanup;
    }
    size_t packed = corridor__transit__pack(&transit, plain);
    assert(packed == plain_len);
    int boxed = crypto_box_easy_afternm(cipher, plain, plain_len, nonce, peer->shared_key);
    assert(boxed == 0);
    Corridor__Envelope env = CORRIDOR__ENVELOPE__INIT;
    env.version = ENVELOPE_VERSION;
    env.sender_key_id = (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, (uint8_t *)sender_key_id};
    env.nonce = (ProtobufCBinaryData){ENVELOPE_NONCE_BYTES, (uint8_t *)nonce};
    env.ciphertext = (ProtobufCBinaryData){cipher_len, cipher};
    size_t out_len = corridor__envelope__get_packed_size(&env);
    out = malloc(out_len);
    if (out == NULL) {
        goto cleanup;
    }
    packed = corridor__envelope__pack(&env, out);
    assert(packed == out_len && out_len <= CORRIDOR_WIRE_BYTES_MAX);
    *wire_out = out;
    *wire_len = out_len;
    rc = ENV_OK;

cleanup:
    free(plain);
    free(cipher);
    return rc;
}

env_err_t envelope_wrap_nonce(const identity_t *self, const envelope_peer_t *peer,
                              const uint8_t *signed_msg, size_t signed_len, bool possible_duplicate,
                              const uint8_t nonce[static ENVELOPE_NONCE_BYTES], uint8_t **wire_out,
                              size_t *wire_len)
{
    assert(self != NULL);
    return wrap(self->key_id, peer, signed_msg, signed_len, possible_duplicate, nonce, wire_out,
                wire_len);
}

env_err_t envelope_wrap_as(const uint8_t sender_key_id[static IDENTITY_KEY_ID_BYTES],
                           const envelope_peer_t *peer, const uint8_t *signed_msg,
                           size_t signed_len, bool possible_duplicate, uint8_t **wire_out,
                           size_t *wire_len)
{
    uint8_t nonce[ENVELOPE_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    return wrap(sender_key_id, peer, signed_msg, signed_len, possible_duplicate, nonce, wire_out,
                wire_len);
}

env_err_t envelope_wrap(const identity_t *self, const envelope_peer_t *peer,
                        const uint8_t *signed_msg, size_t signed_len, bool possible_duplicate,
                        uint8_t **wire_out, size_t *wire_len)
{
    assert(self != NULL);
    return envelope_wrap_as(self->key_id, peer, signed_msg, signed_len, possible_duplicate,
                            wire_out, wire_len);
}

env_err_t envelope_seal_version(const identity_t *self, const envelope_peer_t *peer,
                                uint32_t version, msg_type_t type, uint64_t sequence,
                                const uint8_t *body, size_t body_len, uint8_t **wire_out,
                                size_t *wire_len)
{
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    env_err_t rc = envelope_sign_version(self, version, peer->key_id, type, sequence, body,
                                         body_len, &signed_msg, &signed_len);
    if (rc == ENV_OK) {
        rc = envelope_wrap(self, peer, signed_msg, signed_len, false, wire_out, wire_len);
    }
    free(signed_msg);
    return rc;
}

env_err_t envelope_seal(const identity_t *self, const envelope_peer_t *peer, msg_type_t type,
                        uint64_t sequence, const uint8_t *body, size_t body_len, uint8_t **wire_out,
                        size_t *wire_len)
{
    return envelope_seal_version(self, peer, INNER_VERSION_MIN, type, sequence, body, body_len,
                                 wire_out, wire_len);
}

static bool is_key_id(const ProtobufCBinaryData *b)
{
    return b->len == IDENTITY_KEY_ID_BYTES;
}

/* Decodes and verifies SignedMessage bytes. The inner author must be `author_key_id`, else
 * `mismatch` is returned. Fills msg's type, sequence, key ids and body. */
static env_err_t verify_signed(const uint8_t *bytes, size_t len, const uint8_t *sign_public,
                               const uint8_t *author_key_id, env_err_t mismatch,
                               uint64_t applied_through, envelope_message_t *msg)
{
    env_err_t rc = ENV_E_MALFORMED;
    Corridor__Inner *inner = NULL;
    Corridor__SignedMessage *sm =
        (Corridor__SignedMessage *)wire_unpack(&corridor__signed_message__descriptor, len, bytes);
    if (sm == NULL || sm->signature.len != crypto_sign_BYTES) {
        goto cleanup;
    }
    inner =
        (Corridor__Inner *)wire_unpack(&corridor__inner__descriptor, sm->inner.len, sm->inner.data);
    if (inner == NULL || !is_key_id(&inner->author_key_id) ||
        !is_key_id(&inner->recipient_key_id)) {
        goto cleanup;
    }
    if (sodium_memcmp(inner->author_key_id.data, author_key_id, IDENTITY_KEY_ID_BYTES) != 0) {
        rc = mismatch;
        goto cleanup;
    }
    /* A retransmission of what was applied needs no signature check: it is only dropped and
     * acknowledged again, and the box already showed that the peer (or we) sealed it. */
    if (inner->sequence != 0 && inner->sequence <= applied_through &&
        msg_type_sequenced((int)inner->type)) {
        msg->type = (msg_type_t)inner->type;
        msg->sequence = inner->sequence;
        rc = ENV_E_DUPLICATE;
        goto cleanup;
    }
    int verified = envelope_domain_sign(true, ENVELOPE_DOMAIN, sm->inner.data, sm->inner.len,
                                        sign_public, sm->signature.data);
    if (verified != 0) {
        rc = verified == -2 ? ENV_E_NOMEM : ENV_E_BAD_SIGNATURE;
        goto cleanup;
    }
    if (inner->version < INNER_VERSION_MIN || inner->version > INNER_VERSION_MAX) {
        rc = ENV_E_VERSION;
        goto cleanup;
    }
    if (inner->sequence > CORRIDOR_SEQUENCE_MAX) {
        goto cleanup; /* no counter a peer sends may come near wrapping */
    }
    if ((int)inner->type < MSG_TYPE_MIN || (int)inner->type > MSG_TYPE_MAX) {
        rc = ENV_E_BAD_TYPE;
        goto cleanup;
    }
    if (inner->body.len > CORRIDOR_BODY_BYTES_MAX) {
        rc = ENV_E_TOO_LARGE;
        goto cleanup;
    }
    msg->body = malloc(inner->body.len > 0 ? inner->body.len : 1);
    if (msg->body == NULL) {
        rc = ENV_E_NOMEM;
        goto cleanup;
    }
    if (inner->body.len > 0) {
        memcpy(msg->body, inner->body.data, inner->body.len);
    }
    msg->body_len = inner->body.len;
    msg->type = (msg_type_t)inner->type;
    msg->sequence = inner->sequence;
    msg->version = inner->version;
    memcpy(msg->author_key_id, inner->author_key_id.data, IDENTITY_KEY_ID_BYTES);
    memcpy(msg->recipient_key_id, inner->recipient_key_id.data, IDENTITY_KEY_ID_BYTES);
    rc = ENV_OK;

cleanup:
    if (inner != NULL) {
        corridor__inner__free_unpacked(inner, NULL);
    }
    if (sm != NULL) {
        corridor__signed_message__free_unpacked(sm, NULL);
    }
    return rc;
}

static env_err_t keep_evidence(envelope_message_t *msg, const uint8_t *bytes, size_t len)
{
    msg->evidence = malloc(len > 0 ? len : 1);
    if (msg->evidence == NULL) {
        return ENV_E_NOMEM;
    }
    memcpy(msg->evidence, bytes, len);
    msg->evidence_len = len;
    return ENV_OK;
}

/* The trusted peer with key id `key_id`, current or (*previous) the one before; SIZE_MAX if
 * none. */
static size_t find_peer(const envelope_peer_t *peers, size_t count, const uint8_t *key_id,
                        bool *previous)
{
    for (size_t i = 0; i < count; i++) {
        if (sodium_memcmp(peers[i].key_id, key_id, IDENTITY_KEY_ID_BYTES) == 0) {
            *previous = false;
            return i;
        }
        if (peers[i].previous_through != 0 &&
            sodium_memcmp(peers[i].previous_key_id, key_id, IDENTITY_KEY_ID_BYTES) == 0) {
            *previous = true;
            return i;
        }
    }
    return SIZE_MAX;
}

/* Whether the peer's key (its previous one if `previous`) may sign `msg` (PROTOCOL.md 2.14):
 * the previous key its sequenced messages through the announcement and, until closed, its
 * control messages; the current key everything else. */
static bool key_valid_for(const envelope_peer_t *peer, bool previous, const envelope_message_t *msg)
{
    bool sequenced = msg_type_sequenced((int)msg->type);
    if (previous) {
        return sequenced ? msg->sequence <= peer->previous_through : peer->previous_control;
    }
    return !sequenced || peer->previous_through == 0 || msg->sequence > peer->previous_through;
}

/* Whether `key_id` names us for this peer: our key, or one before our announcements to it. */
static bool addressed_to_us(const envelope_peer_t *peer, const identity_t *self,
                            const uint8_t *key_id)
{
    if (sodium_memcmp(key_id, self->key_id, IDENTITY_KEY_ID_BYTES) == 0) {
        return true;
    }
    for (size_t i = 0; i < peer->our_key_ids_count; i++) {
        if (sodium_memcmp(key_id, peer->our_key_ids[i], IDENTITY_KEY_ID_BYTES) == 0) {
            return true;
        }
    }
    return false;
}

env_err_t envelope_open(const uint8_t *wire, size_t wire_len, const identity_t *self,
                        const envelope_peer_t *peers, size_t peers_count, envelope_message_t *msg)
{
    assert(self != NULL && msg != NULL && (peers != NULL || peers_count == 0));
    memset(msg, 0, sizeof *msg);
    if (wire_len > CORRIDOR_WIRE_BYTES_MAX) {
        return ENV_E_TOO_LARGE;
    }
    if (wire == NULL || wire_len == 0) {
        return ENV_E_MALFORMED;
    }
    env_err_t rc = ENV_E_MALFORMED;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    Corridor__Transit *transit = NULL;
    Corridor__Envelope *env =
        (Corridor__Envelope *)wire_unpack(&corridor__envelope__descriptor, wire_len, wire);
    if (env == NULL) {
        goto cleanup;
    }
    if (env->version != ENVELOPE_VERSION) {
        rc = ENV_E_VERSION;
        goto cleanup;
    }
    if (!is_key_id(&env->sender_key_id) || env->nonce.len != ENVELOPE_NONCE_BYTES ||
        env->ciphertext.len < crypto_box_MACBYTES) {
        goto cleanup;
    }
    bool previous = false;
    size_t index = find_peer(peers, peers_count, env->sender_key_id.data, &previous);
    if (index == SIZE_MAX) {
        rc = ENV_E_UNKNOWN_SENDER;
        for (size_t i = 0; i < peers_count; i++) {
            if (peers[i].has_revoked &&
                sodium_memcmp(peers[i].revoked_key_id, env->sender_key_id.data,
                              IDENTITY_KEY_ID_BYTES) == 0) {
                rc = ENV_E_REVOKED;
            }
        }
        goto cleanup;
    }
    const envelope_peer_t *peer = &peers[index];
    plain_len = env->ciphertext.len - crypto_box_MACBYTES;
    plain = malloc(plain_len > 0 ? plain_len : 1);
    if (plain == NULL) {
        rc = ENV_E_NOMEM;
        goto cleanup;
    }
    bool opened = false;
    for (size_t i = 0; i < peer->open_keys_count && !opened; i++) {
        opened = crypto_box_open_easy_afternm(plain, env->ciphertext.data, env->ciphertext.len,
                                              env->nonce.data, peer->open_keys[i]) == 0;
    }
    if (!opened) {
        rc = ENV_E_DECRYPT;
        goto cleanup;
    }
    transit = (Corridor__Transit *)wire_unpack(&corridor__transit__descriptor, plain_len, plain);
    if (transit == NULL) {
        goto cleanup;
    }
    rc = verify_signed(transit->signed_message.data, transit->signed_message.len,
                       previous ? peer->previous_sign_public : peer->sign_public,
                       previous ? peer->previous_key_id : peer->key_id, ENV_E_FORWARDED,
                       peer->applied_through, msg);
    msg->peer_index = index; /* also for ENV_E_DUPLICATE: the caller acknowledges again */
    if (rc != ENV_OK) {
        goto cleanup;
    }
    if (!key_valid_for(peer, previous, msg)) {
        rc = ENV_E_STALE_KEY;
        goto cleanup;
    }
    if (!addressed_to_us(peer, self, msg->recipient_key_id)) {
        rc = ENV_E_WRONG_RECIPIENT;
        goto cleanup;
    }
    rc = keep_evidence(msg, transit->signed_message.data, transit->signed_message.len);
    msg->possible_duplicate = transit->possible_duplicate;

cleanup:
    if (rc != ENV_OK) {
        envelope_message_t keep = {
            .peer_index = msg->peer_index, .sequence = msg->sequence, .type = msg->type};
        envelope_message_clear(msg);
        if (rc == ENV_E_DUPLICATE) {
            *msg = keep;
        }
    }
    if (transit != NULL) {
        corridor__transit__free_unpacked(transit, NULL);
    }
    if (plain != NULL) {
        sodium_memzero(plain, plain_len);
        free(plain);
    }
    if (env != NULL) {
        corridor__envelope__free_unpacked(env, NULL);
    }
    return rc;
}

/* The Inner of stored evidence, unverified; NULL when it does not decode (*rc says why). The
 * caller frees both with free_evidence. */
static Corridor__Inner *unpack_evidence(const uint8_t *evidence, size_t evidence_len,
                                        Corridor__SignedMessage **sm, env_err_t *rc)
{
    *sm = NULL;
    *rc = evidence_len > CORRIDOR_WIRE_BYTES_MAX ? ENV_E_TOO_LARGE : ENV_E_MALFORMED;
    if (evidence == NULL || evidence_len == 0 || evidence_len > CORRIDOR_WIRE_BYTES_MAX) {
        return NULL;
    }
    *sm = (Corridor__SignedMessage *)wire_unpack(&corridor__signed_message__descriptor,
                                                 evidence_len, evidence);
    return *sm != NULL ? (Corridor__Inner *)wire_unpack(&corridor__inner__descriptor,
                                                        (*sm)->inner.len, (*sm)->inner.data)
                       : NULL;
}

static void free_evidence(Corridor__SignedMessage *sm, Corridor__Inner *inner)
{
    if (inner != NULL) {
        corridor__inner__free_unpacked(inner, NULL);
    }
    if (sm != NULL) {
        corridor__signed_message__free_unpacked(sm, NULL);
    }
}

env_err_t evidence_author(const uint8_t *evidence, size_t evidence_len,
                          uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
{
    assert(key_id != NULL);
    Corridor__SignedMessage *sm = NULL;
    env_err_t rc = ENV_E_MALFORMED;
    Corridor__Inner *inner = unpack_evidence(evidence, evidence_len, &sm, &rc);
    rc = inner == NULL ? rc : is_key_id(&inner->author_key_id) ? ENV_OK : ENV_E_MALFORMED;
    if (rc == ENV_OK) {
        memcpy(key_id, inner->author_key_id.data, IDENTITY_KEY_ID_BYTES);
    }
    free_evidence(sm, inner);
    return rc;
}

env_err_t evidence_body(const uint8_t *evidence, size_t evidence_len, int *type, uint32_t *version,
                        uint8_t **body, size_t *body_len)
{
    assert(type != NULL && version != NULL);
    Corridor__SignedMessage *sm = NULL;
    env_err_t rc = ENV_E_MALFORMED;
    Corridor__Inner *inner = unpack_evidence(evidence, evidence_len, &sm, &rc);
    if (inner != NULL) {
        rc = ENV_OK;
        *type = (int)inner->type;
        *version = inner->version;
        if (body != NULL) {
            *body_len = inner->body.len;
            *body = malloc(inner->body.len > 0 ? inner->body.len : 1);
            rc = *body != NULL ? ENV_OK : ENV_E_NOMEM;
            if (*body != NULL && inner->body.len > 0) {
                memcpy(*body, inner->body.data, inner->body.len);
            }
        }
    }
    free_evidence(sm, inner);
    return rc;
}

env_err_t envelope_resign(const identity_t *self, const uint8_t *signed_msg, size_t signed_len,
                          uint8_t **signed_out, size_t *out_len)
{
    assert(self != NULL && signed_out != NULL && out_len != NULL);
    *signed_out = NULL;
    *out_len = 0;
    if (signed_len > CORRIDOR_WIRE_BYTES_MAX) {
        return ENV_E_TOO_LARGE;
    }
    if (signed_msg == NULL || signed_len == 0) {
        return ENV_E_MALFORMED;
    }
    env_err_t rc = ENV_E_MALFORMED;
    Corridor__Inner *inner = NULL;
    Corridor__SignedMessage *sm = (Corridor__SignedMessage *)wire_unpack(
        &corridor__signed_message__descriptor, signed_len, signed_msg);
    if (sm != NULL) {
        inner = (Corridor__Inner *)wire_unpack(&corridor__inner__descriptor, sm->inner.len,
                                               sm->inner.data);
    }
    /* our own stored message, but an edited file may hold anything */
    if (inner != NULL && is_key_id(&inner->recipient_key_id) &&
        inner->version >= INNER_VERSION_MIN && inner->version <= INNER_VERSION_MAX &&
        (int)inner->type >= MSG_TYPE_MIN && (int)inner->type <= MSG_TYPE_MAX &&
        inner->body.len <= CORRIDOR_BODY_BYTES_MAX) {
        rc = envelope_sign_version(self, inner->version, inner->recipient_key_id.data,
                                   (msg_type_t)inner->type, inner->sequence, inner->body.data,
                                   inner->body.len, signed_out, out_len);
    }
    if (inner != NULL) {
        corridor__inner__free_unpacked(inner, NULL);
    }
    if (sm != NULL) {
        corridor__signed_message__free_unpacked(sm, NULL);
    }
    return rc;
}

env_err_t evidence_verify(const uint8_t *evidence, size_t evidence_len,
                          const uint8_t author_sign_public[static crypto_sign_PUBLICKEYBYTES],
                          envelope_message_t *msg)
{
    assert(author_sign_public != NULL && msg != NULL);
    memset(msg, 0, sizeof *msg);
    if (evidence_len > CORRIDOR_WIRE_BYTES_MAX) {
        return ENV_E_TOO_LARGE;
    }
    if (evidence == NULL || evidence_len == 0) {
        return ENV_E_MALFORMED;
    }
    uint8_t author_key_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(author_sign_public, author_key_id);
    env_err_t rc = verify_signed(evidence, evidence_len, author_sign_public, author_key_id,
                                 ENV_E_BAD_SIGNATURE, 0, msg);
    if (rc == ENV_OK) {
        rc = keep_evidence(msg, evidence, evidence_len);
    }
    if (rc != ENV_OK) {
        envelope_message_clear(msg);
    } else {
        msg->peer_index = SIZE_MAX;
    }
    return rc;
}
