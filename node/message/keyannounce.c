/* A node's next keys, as it announces them (see keyannounce.h). */
#include "keyannounce.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "corridor.pb-c.h"
#include "envelope.h"
#include "wire.h"

#define POSSESSION_LEN                                                                             \
    (IDENTITY_KEY_ID_BYTES + crypto_sign_PUBLICKEYBYTES + crypto_box_PUBLICKEYBYTES +              \
     IDENTITY_CURVE_KEY_CHARS)

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

int key_announce_encode(const identity_t *next,
                        const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES], uint8_t **body,
                        size_t *body_len)
{
    assert(next != NULL && old_key_id != NULL && body != NULL && body_len != NULL);
    assert(strlen(next->curve_public) == IDENTITY_CURVE_KEY_CHARS);
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
    uint8_t curve_raw[32];
    Corridor__KeyAnnounce *ka = body_len <= KEY_ANNOUNCE_BODY_MAX
                                    ? (Corridor__KeyAnnounce *)wire_unpack(
                                          &corridor__key_announce__descriptor, body_len, body)
                                    : NULL;
    if (ka == NULL || ka->sign_public.len != crypto_sign_PUBLICKEYBYTES ||
        ka->box_public.len != crypto_box_PUBLICKEYBYTES ||
        ka->possession.len != crypto_sign_BYTES || ka->curve_public == NULL ||
        strlen(ka->curve_public) != IDENTITY_CURVE_KEY_CHARS ||
        zmq_z85_decode(curve_raw, ka->curve_public) == NULL ||
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
    rc = 0;

cleanup:
    if (ka != NULL) {
        corridor__key_announce__free_unpacked(ka, NULL);
    }
    return rc;
}
