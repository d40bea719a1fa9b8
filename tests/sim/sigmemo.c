/*
 * Memoised Ed25519 verification for the simulator only (linked with -Wl,--wrap): a
 * verification's answer is a function of (signature, message, public key), so a success is
 * remembered under the BLAKE2b-256 of the three and the same check again costs one hash. Every
 * world verifies the same evidence many times over (retransmissions, reconciliation, the final
 * audit of every home); failures are never remembered, so a forged or altered copy is checked
 * by libsodium every time. The audit verifies on several threads: one lock guards the table.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

int __real_crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                       unsigned long long mlen, const unsigned char *pk);
int __wrap_crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                       unsigned long long mlen, const unsigned char *pk);

#define MEMO_SLOTS 65536u /* a power of two; a full table forgets (overwrites) */

static uint8_t memo[MEMO_SLOTS][32];
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

int __wrap_crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                       unsigned long long mlen, const unsigned char *pk)
{
    uint8_t key[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof key);
    crypto_generichash_update(&st, sig, crypto_sign_BYTES);
    crypto_generichash_update(&st, pk, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_update(&st, m, mlen);
    crypto_generichash_final(&st, key, sizeof key);
    uint32_t slot;
    memcpy(&slot, key, sizeof slot);
    slot &= MEMO_SLOTS - 1;
    pthread_mutex_lock(&memo_lock);
    bool known = sodium_memcmp(memo[slot], key, sizeof key) == 0;
    pthread_mutex_unlock(&memo_lock);
    if (known) {
        return 0;
    }
    int rc = __real_crypto_sign_verify_detached(sig, m, mlen, pk);
    if (rc == 0) {
        pthread_mutex_lock(&memo_lock);
        memcpy(memo[slot], key, sizeof key);
        pthread_mutex_unlock(&memo_lock);
    }
    return rc;
}
