/*
 * Fixed test identities for the envelope harnesses, shared by fuzz_envelope_open.c and
 * fuzz_envelope_signed.c (each harness is one program; this header holds static inline
 * helpers only).
 *
 * identity_generate() draws random keys, which would make a crash depend on the run that
 * found it. These identities are derived from fixed seeds the way identity.c derives a loaded
 * key file (Ed25519 seed -> sign pair, X25519 secret -> public, CURVE secret -> public), so
 * every run, and every reproduction of a crash, sees the same keys.
 */
#ifndef CORRIDOR_FUZZ_KEYS_H
#define CORRIDOR_FUZZ_KEYS_H

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "envelope.h"
#include "identity.h"

#define FUZZ_KEY_DOMAIN "corridor.fuzz.key.v1"

/* Fixed 32 bytes for one purpose ("sign", "box", "curve") of the identity numbered `tag`. */
static inline void fuzz_key_bytes(uint8_t tag, const char *purpose, uint8_t out[static 32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)FUZZ_KEY_DOMAIN, sizeof FUZZ_KEY_DOMAIN);
    crypto_generichash_update(&st, &tag, 1);
    crypto_generichash_update(&st, (const uint8_t *)purpose, strlen(purpose) + 1);
    crypto_generichash_final(&st, out, 32);
}

/* A complete identity in sodium_malloc'd memory, the same for the same tag in every run.
 * Aborts on failure: a harness without its keys can test nothing. */
static inline identity_t *fuzz_identity(uint8_t tag)
{
    identity_t *self = sodium_malloc(sizeof *self);
    if (self == NULL) {
        fprintf(stderr, "fuzz: cannot allocate an identity\n");
        abort();
    }
    sodium_memzero(self, sizeof *self);
    uint8_t seed[crypto_sign_SEEDBYTES];
    uint8_t curve_raw[32];
    fuzz_key_bytes(tag, "sign", seed);
    fuzz_key_bytes(tag, "box", self->box_secret);
    fuzz_key_bytes(tag, "curve", curve_raw);
    if (zmq_z85_encode(self->curve_secret, curve_raw, sizeof curve_raw) == NULL ||
        crypto_sign_seed_keypair(self->sign_public, self->sign_secret, seed) != 0 ||
        crypto_scalarmult_base(self->box_public, self->box_secret) != 0 ||
        zmq_curve_public(self->curve_public, self->curve_secret) != 0) {
        fprintf(stderr, "fuzz: cannot derive identity %u\n", tag);
        abort();
    }
    identity_key_id(self->sign_public, self->key_id);
    return self;
}

/* How `self` sees `other`: the envelope peer built from other's card, as a node would. */
static inline void fuzz_peer(envelope_peer_t *peer, const identity_t *self, const identity_t *other,
                             const char *name)
{
    peer_card_t card;
    identity_card(other, name, "tcp://127.0.0.1:7001", &card);
    if (envelope_peer_init(peer, self, &card) != ENV_OK) {
        fprintf(stderr, "fuzz: cannot prepare peer %s\n", name);
        abort();
    }
}

#endif
