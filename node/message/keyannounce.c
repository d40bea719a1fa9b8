/* The key messages of a rotation: KeyAnnounce and KeySwitch (see keyannounce.h). */
#include "keyannounce.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "corridor.pb-c.h"
#include "envelope.h"
#include "wire.h"

#define POSSESSION_LEN                                                                             \
    (IDENTITY_KEY_ID_BYTES + crypto_sign_PUBLICKEYBYTES + crypto_box_PUBLICKEYBYTES +              \
     IDENTITY_CURVE_KEY_CHARS)

/* Whether `z85` is a CURVE public key as a peer may name it: exactly 40 characters that
 * ZeroMQ's Z85 decoder accepts. */
static bool curve_key_valid(const char *z85)
{
    uint8_t raw[32];
    return z85 != NULL && strlen(z85) == IDENTITY_CURVE_KEY_CHARS &&
           zmq_z85_decode(raw, z85) != NULL;
}

/* What the new key signs: old key id || sign || box || curve (the 40 Z85 characters). */
static void possession_input(const uint8_t *old_key_id, const uint8_t *sign_public,
                             const uint8_t *box_public, const char *curve_public,
                             uint8_t out[static POSSESSION_LEN])
{
    size_t at = 0;
    memcpy(out + at, old_key_id, IDENTITY_KEY_ID_BYTES);
    at += IDENTITY_KEY_ID_BYTES;
    memcpy(out + at, sign_public, crypto_sign_PUBLICKEYBYTES);
    at += crypto_sign_PUBLICKEYBYTES;
    memcpy(out + at, box_public, crypto_box_PUBLICKEYBYTES);
    at += crypto_box_PUBLICKEYBYTES;
    memcpy(out + at, curve_public, IDENTITY_CURVE_KEY_CHARS);
}

/* The CURVE possession proof (PROTOCOL.md 2.16): BLAKE2b-256 keyed with X25519(scalar, point)
 * over domain || old key id || sign_public || curve_public. The announcer computes it with its
 * new CURVE secret and the recipient's box key, the recipient with its box secret and the
 * announced CURVE key: only the holder of either secret can. -1 for a point X25519 refuses. */
static int curve_proof(const uint8_t *scalar, const uint8_t *point, const uint8_t *old_key_id,
                       const uint8_t *sign_public, const char *curve_public,
                       uint8_t out[static KEY_ANNOUNCE_CURVE_PROOF])
{
    uint8_t shared[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(shared, scalar, point) != 0) {
        return -1;
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, shared, sizeof shared, KEY_ANNOUNCE_CURVE_PROOF);
    crypto_generichash_update(&st, (const uint8_t *)KEY_ANNOUNCE_CURVE_DOMAIN,
                              sizeof KEY_ANNOUNCE_CURVE_DOMAIN);
    crypto_generichash_update(&st, old_key_id, IDENTITY_KEY_ID_BYTES);
    crypto_generichash_update(&st, sign_public, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_update(&st, (const uint8_t *)curve_public, IDENTITY_CURVE_KEY_CHARS);
    crypto_generichash_final(&st, out, KEY_ANNOUNCE_CURVE_PROOF);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(&st, sizeof st);
    return 0;
}

bool key_announce_curve_proved(const key_announce_t *ka,
                               const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES],
                               const uint8_t box_secret[static crypto_box_SECRETKEYBYTES])
{
    assert(ka != NULL && old_key_id != NULL && box_secret != NULL);
    uint8_t curve[32], expected[KEY_ANNOUNCE_CURVE_PROOF];
    return ka->has_curve_proof && zmq_z85_decode(curve, ka->curve_public) != NULL &&
           curve_proof(box_secret, curve, old_key_id, ka->sign_public, ka->curve_public,
                       expected) == 0 &&
           sodium_memcmp(expected, ka->curve_proof, sizeof expected) == 0;
}

int key_announce_encode(const identity_t *next,
                        const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES],
                        const uint8_t *recipient_box, uint8_t **body, size_t *body_len)
{
    assert(next != NULL && old_key_id != NULL && body != NULL && body_len != NULL);
    assert(curve_key_valid(next->curve_public));
    *body = NULL;
    *body_len = 0;
    uint8_t input[POSSESSION_LEN], possession[crypto_sign_BYTES];
    possession_input(old_key_id, next->sign_public, next->box_public, next->curve_public, input);
    if (envelope_domain_sign(false, KEY_ANNOUNCE_DOMAIN, input, sizeof input, next->sign_secret,
                             possession) != 0) {
        return -1;
    }
    Corridor__KeyAnnounce ka = CORRIDOR__KEY_ANNOUNCE__INIT;
    ka.sign_public =
        (ProtobufCBinaryData){crypto_sign_PUBLICKEYBYTES, (uint8_t *)next->sign_public};
    ka.box_public = (ProtobufCBinaryData){crypto_box_PUBLICKEYBYTES, (uint8_t *)next->box_public};
    ka.curve_public = (char *)next->curve_public;
    ka.possession = (ProtobufCBinaryData){sizeof possession, possession};
    uint8_t curve_secret[32], proof[KEY_ANNOUNCE_CURVE_PROOF];
    if (recipient_box != NULL) {
        bool decoded = zmq_z85_decode(curve_secret, next->curve_secret) != NULL;
        assert(decoded); /* our own key */
        int proved = curve_proof(curve_secret, recipient_box, old_key_id, next->sign_public,
                                 next->curve_public, proof);
        sodium_memzero(curve_secret, sizeof curve_secret);
        if (proved != 0) {
            return -1; /* a weak box key of the peer's: refused when it announced it */
        }
        ka.curve_possession = (ProtobufCBinaryData){sizeof proof, proof};
    }
    size_t len = corridor__key_announce__get_packed_size(&ka);
    if ((*body = malloc(len)) == NULL) {
        return -1;
    }
    *body_len = corridor__key_announce__pack(&ka, *body);
    return 0;
}

int key_announce_decode(const uint8_t *body, size_t body_len,
                        const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES], key_announce_t *out)
{
    assert(old_key_id != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    int rc = -1;
    Corridor__KeyAnnounce *ka = body_len <= KEY_ANNOUNCE_BODY_MAX
                                    ? (Corridor__KeyAnnounce *)wire_unpack(
                                          &corridor__key_announce__descriptor, body_len, body)
                                    : NULL;
    if (ka == NULL || ka->sign_public.len != crypto_sign_PUBLICKEYBYTES ||
        ka->box_public.len != crypto_box_PUBLICKEYBYTES ||
        ka->possession.len != crypto_sign_BYTES || !curve_key_valid(ka->curve_public) ||
        (ka->curve_possession.len != 0 && ka->curve_possession.len != KEY_ANNOUNCE_CURVE_PROOF) ||
        crypto_core_ed25519_is_valid_point(ka->sign_public.data) != 1) {
        goto cleanup;
    }
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(ka->sign_public.data, key_id);
    if (sodium_memcmp(key_id, old_key_id, sizeof key_id) == 0) {
        goto cleanup; /* not a new key */
    }
    uint8_t input[POSSESSION_LEN];
    possession_input(old_key_id, ka->sign_public.data, ka->box_public.data, ka->curve_public,
                     input);
    if (envelope_domain_sign(true, KEY_ANNOUNCE_DOMAIN, input, sizeof input, ka->sign_public.data,
                             ka->possession.data) != 0) {
        goto cleanup;
    }
    memcpy(out->sign_public, ka->sign_public.data, sizeof out->sign_public);
    memcpy(out->box_public, ka->box_public.data, sizeof out->box_public);
    memcpy(out->curve_public, ka->curve_public, IDENTITY_CURVE_KEY_CHARS + 1);
    memcpy(out->key_id, key_id, sizeof key_id);
    out->has_curve_proof = ka->curve_possession.len == KEY_ANNOUNCE_CURVE_PROOF;
    if (out->has_curve_proof) {
        memcpy(out->curve_proof, ka->curve_possession.data, sizeof out->curve_proof);
    }
    rc = 0;

cleanup:
    if (ka != NULL) {
        corridor__key_announce__free_unpacked(ka, NULL);
    }
    return rc;
}

int key_switch_encode(const key_switch_t *ks, uint8_t *out, size_t out_size, size_t *len)
{
    assert(ks != NULL && out != NULL && len != NULL);
    assert(curve_key_valid(ks->curve_public) && ks->overlap_s <= KEY_SWITCH_OVERLAP_MAX_S);
    *len = 0;
    Corridor__KeySwitch msg = CORRIDOR__KEY_SWITCH__INIT;
    msg.curve_public = (char *)ks->curve_public;
    msg.overlap_s = ks->overlap_s;
    size_t packed = corridor__key_switch__get_packed_size(&msg);
    assert(packed <= KEY_SWITCH_BODY_MAX);
    if (packed > out_size) {
        return -1;
    }
    *len = corridor__key_switch__pack(&msg, out);
    return 0;
}

int key_switch_decode(const uint8_t *body, size_t len, key_switch_t *out)
{
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    Corridor__KeySwitch *ks =
        len <= KEY_SWITCH_BODY_MAX
            ? (Corridor__KeySwitch *)wire_unpack(&corridor__key_switch__descriptor, len, body)
            : NULL;
    int rc = -1;
    /* The size check refuses what protobuf-c reads but would not encode back to as many bytes
     * (unknown fields are kept and count): a NUL inside curve_public, which its C string would
     * cut, an overlap varint past 32 bits, which protobuf-c would truncate, a repeated field. */
    if (ks != NULL && corridor__key_switch__get_packed_size(ks) == len &&
        curve_key_valid(ks->curve_public) && ks->overlap_s <= KEY_SWITCH_OVERLAP_MAX_S) {
        memcpy(out->curve_public, ks->curve_public, IDENTITY_CURVE_KEY_CHARS + 1);
        out->overlap_s = ks->overlap_s;
        rc = 0;
    }
    if (ks != NULL) {
        corridor__key_switch__free_unpacked(ks, NULL);
    }
    return rc;
}
