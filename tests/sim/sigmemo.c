/*
 * Memoised Ed25519 verification for the simulator only (linked with -Wl,--wrap): a
 * verification's answer is a function of (signature, message, public key), so a success is
 * remembered under the BLAKE2b-256 of the three and the same check again costs one hash.
 *
 * Two things fill the memo. A successful verification: every world verifies the same evidence
 * many times over (retransmissions, reconciliation, the final audit of every home). And a
 * signature as it is made: Ed25519 verifies every signature made with a well-formed key, so the
 * real signing call's output is remembered as valid under the key's public half, and the peer's
 * first check of an honest frame costs a hash instead of a verification (half of a world's time
 * before). A well-formed key is one whose public half is the one its seed derives; each signing
 * key is checked once, so a malformed key is never trusted. Failures are never remembered: a
 * forged or altered copy is checked by libsodium every time. The audit verifies on several
 * threads: one lock guards the tables.
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
int __real_crypto_sign_detached(unsigned char *sig, unsigned long long *siglen,
                                const unsigned char *m, unsigned long long mlen,
                                const unsigned char *sk);
int __wrap_crypto_sign_detached(unsigned char *sig, unsigned long long *siglen,
                                const unsigned char *m, unsigned long long mlen,
                                const unsigned char *sk);

#define MEMO_SLOTS 65536u /* a power of two; a full table forgets (overwrites) */

static uint8_t memo[MEMO_SLOTS][32];
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

#define KEY_SLOTS 256u /* signing keys checked well-formed; a world has a few */

static uint8_t good_keys[KEY_SLOTS][crypto_sign_SECRETKEYBYTES];

static uint32_t memo_key(uint8_t key[32], const unsigned char *sig, const unsigned char *m,
                         unsigned long long mlen, const unsigned char *pk)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, sig, crypto_sign_BYTES);
    crypto_generichash_update(&st, pk, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_update(&st, m, mlen);
    crypto_generichash_final(&st, key, 32);
    uint32_t slot;
    memcpy(&slot, key, sizeof slot);
    return slot & (MEMO_SLOTS - 1);
}

/* Whether sk's public half is the one its seed derives (checked once per key, then known). */
static bool key_well_formed(const unsigned char *sk)
{
    uint32_t slot;
    memcpy(&slot, sk + crypto_sign_SEEDBYTES, sizeof slot);
    slot &= KEY_SLOTS - 1;
    pthread_mutex_lock(&memo_lock);
    bool known = sodium_memcmp(good_keys[slot], sk, crypto_sign_SECRETKEYBYTES) == 0;
    pthread_mutex_unlock(&memo_lock);
    if (known) {
        return true;
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char derived[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, derived, sk);
    bool good = sodium_memcmp(derived, sk, sizeof derived) == 0;
    if (good) {
        pthread_mutex_lock(&memo_lock);
        memcpy(good_keys[slot], sk, crypto_sign_SECRETKEYBYTES);
        pthread_mutex_unlock(&memo_lock);
    }
    sodium_memzero(derived, sizeof derived);
    return good;
}

int __wrap_crypto_sign_detached(unsigned char *sig, unsigned long long *siglen,
                                const unsigned char *m, unsigned long long mlen,
                                const unsigned char *sk)
{
    int rc = __real_crypto_sign_detached(sig, siglen, m, mlen, sk);
    if (rc == 0 && key_well_formed(sk)) {
        uint8_t key[32];
        uint32_t slot = memo_key(key, sig, m, mlen, sk + crypto_sign_SEEDBYTES);
        pthread_mutex_lock(&memo_lock);
        memcpy(memo[slot], key, sizeof key);
        pthread_mutex_unlock(&memo_lock);
    }
    return rc;
}

int __wrap_crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                       unsigned long long mlen, const unsigned char *pk)
{
    uint8_t key[32];
    uint32_t slot = memo_key(key, sig, m, mlen, pk);
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
