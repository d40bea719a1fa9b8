/* Checkpoint signatures: Ed25519 over the domain tag and the encoded Checkpoint. */
#include "checkpoint.h"

#include <assert.h>
#include <string.h>

#include "envelope.h"

int checkpoint_sign(const uint8_t *body, size_t body_len,
                    const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
                    uint8_t signature[static crypto_sign_BYTES])
{
    assert(body != NULL || body_len == 0);
    return envelope_domain_sign(false, CHECKPOINT_DOMAIN, body, body_len, sign_secret, signature) ==
                   0
               ? 0
               : -1;
}

bool checkpoint_verify(const uint8_t *body, size_t body_len, const uint8_t *signature,
                       const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES])
{
    assert((body != NULL || body_len == 0) && signature != NULL);
    uint8_t sig[crypto_sign_BYTES];
    memcpy(sig, signature, sizeof sig);
    return envelope_domain_sign(true, CHECKPOINT_DOMAIN, body, body_len, sign_public, sig) == 0;
}
