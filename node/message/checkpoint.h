/*
 * Checkpoint signatures: both sides of a channel sign the same encoded Checkpoint (the state
 * of their books at a sequence cut, proto/PROTOCOL.md 4.10) under their own domain tag. Apart
 * from reconciliation, which proposes and countersigns, so that `audit` checks stored
 * checkpoints with this alone and needs no channel code.
 */
#ifndef CORRIDOR_CHECKPOINT_H
#define CORRIDOR_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define CHECKPOINT_DOMAIN "corridor.checkpoint.v1" /* signed with its NUL */

/* Signs an encoded Checkpoint: 0, or -1 when out of memory. */
int checkpoint_sign(const uint8_t *body, size_t body_len,
                    const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
                    uint8_t signature[static crypto_sign_BYTES]);

/* Whether `signature` (crypto_sign_BYTES) signs the encoded Checkpoint under `sign_public`. */
bool checkpoint_verify(const uint8_t *body, size_t body_len, const uint8_t *signature,
                       const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES]);

#endif
