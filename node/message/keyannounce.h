/*
 * The key messages of a rotation (proto/PROTOCOL.md 2.14): KeyAnnounce, a node's next keys as
 * it announces them to a peer, and KeySwitch, the later switch of its CURVE transport key.
 *
 * A rotation must not let anyone but the key's holder name its successor, and must not let
 * the holder of a stolen new key claim the old one's history. So the announcement travels as
 * a sequenced message signed by the current key (the Inner around the body), and carries a
 * proof of possession: the new key's signature over the old key id and the new public keys,
 * under a domain of its own, so that no other signed bytes can be taken for it.
 *
 * Once every peer has acknowledged its KeyAnnounce, the node sends a KeySwitch on each channel,
 * sequenced too: from it on, its inbound socket serves the CURVE server key it announced, and
 * the peer reconnects pinned to that key; the peer still admits the node's old CURVE client key
 * for `overlap_s` more seconds. It needs no proof of its own: the Inner around it is signed,
 * and the key it names is the one the announcement proved.
 *
 * Pure functions: no ledger, no clock.
 */
#ifndef CORRIDOR_KEYANNOUNCE_H
#define CORRIDOR_KEYANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"

#define KEY_ANNOUNCE_DOMAIN       "corridor.key-announce.v1" /* signed with its NUL */
#define KEY_ANNOUNCE_BODY_MAX     256 /* the body is 206 bytes at most as we encode it */
#define KEY_ANNOUNCE_CURVE_DOMAIN "corridor.curve-possession.v1" /* hashed with its NUL */
#define KEY_ANNOUNCE_CURVE_PROOF  32

/* The public keys an announcement names. */
typedef struct {
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
    uint8_t box_public[crypto_box_PUBLICKEYBYTES];
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1];
    uint8_t key_id[IDENTITY_KEY_ID_BYTES]; /* of sign_public */
    bool has_curve_proof;                  /* curve_proof holds the announcer's */
    uint8_t curve_proof[KEY_ANNOUNCE_CURVE_PROOF];
} key_announce_t;

/* The KeyAnnounce body by which the node whose current key id is `old_key_id` names `next`'s
 * keys, with `next`'s proof of possession. With `recipient_box` (the recipient's X25519 key
 * the announcer seals to), it also proves to that recipient that it holds `next`'s CURVE
 * secret, for a CURVE key that changes: a CURVE key says who connects, and a peer must not
 * name another's (PROTOCOL.md 2.16); NULL when the CURVE key stays. *body is malloc'd. 0, or
 * -1 when out of memory. */
int key_announce_encode(const identity_t *next,
                        const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES],
                        const uint8_t *recipient_box, uint8_t **body, size_t *body_len)
    __attribute__((warn_unused_result));

/* Whether a decoded announcement proves, to the holder of `box_secret` (one of ours), that its
 * author holds the secret of the CURVE key it names. */
bool key_announce_curve_proved(const key_announce_t *ka,
                               const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES],
                               const uint8_t box_secret[static crypto_box_SECRETKEYBYTES]);

/* Decodes a received KeyAnnounce from the peer whose current key id is `old_key_id` and checks
 * it: exact sizes, a valid Ed25519 point, 40 Z85 characters, a key other than the old one, and
 * the proof of possession. 0 and *out filled, or -1 (out zeroed). Never asserts on `body`. */
int key_announce_decode(const uint8_t *body, size_t body_len,
                        const uint8_t old_key_id[static IDENTITY_KEY_ID_BYTES], key_announce_t *out)
    __attribute__((warn_unused_result));

/* A KeySwitch (the body is 47 bytes at most as we encode it). */
#define KEY_SWITCH_BODY_MAX      64
#define KEY_SWITCH_OVERLAP_MAX_S (30u * 24 * 3600) /* 30 days */

typedef struct {
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1]; /* 40 Z85 characters: the new CURVE key */
    uint32_t overlap_s; /* seconds the old CURVE client key stays admitted */
} key_switch_t;

/* Encodes `ks` into out[0..out_size): 0 and *len set, or -1 when out_size is too small.
 * Asserts that `ks` is well-formed (a CURVE key, an overlap of at most KEY_SWITCH_OVERLAP_MAX_S):
 * it is ours. */
int key_switch_encode(const key_switch_t *ks, uint8_t *out, size_t out_size, size_t *len)
    __attribute__((warn_unused_result));

/* Decodes a received KeySwitch: at most KEY_SWITCH_BODY_MAX bytes, decodable and as long as
 * its fields encode to (no NUL inside curve_public, no overlap past 32 bits, no repeated
 * field), 40 Z85 characters (checked as KeyAnnounce's are), an overlap of at most
 * KEY_SWITCH_OVERLAP_MAX_S. 0 and *out filled, or -1 (out zeroed). Never asserts on `body`. */
int key_switch_decode(const uint8_t *body, size_t len, key_switch_t *out)
    __attribute__((warn_unused_result));

#endif
