/* A seeded stream for libsodium's randombytes: ChaCha20 (IETF) keyed by the seed, with a
 * block counter that advances with every draw. libzmq's I/O threads draw through it too
 * (CURVE keys and nonces), so a draw takes its blocks under a lock. */
#include "entropy.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

static uint8_t stream_key[crypto_stream_chacha20_ietf_KEYBYTES];
static uint64_t stream_offset; /* bytes of the stream handed out so far */
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *seeded_name(void)
{
    return "corridor-seeded";
}

static void seeded_buf(void *const buf, const size_t size)
{
    /* A draw starts at a fresh block of 64 bytes; the nonce holds the block number's high
     * half, the counter its low half, and a draw never runs across a change of nonce. */
    pthread_mutex_lock(&stream_lock);
    uint64_t block = stream_offset / 64;
    stream_offset = (block + (size + 63) / 64) * 64;
    pthread_mutex_unlock(&stream_lock);
    uint8_t *out = buf;
    size_t left = size;
    memset(buf, 0, size);
    while (left > 0) {
        uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
        for (int i = 0; i < 4; i++) {
            nonce[i] = (uint8_t)((block >> 32) >> (8 * i));
        }
        uint64_t blocks_here = (UINT64_C(1) << 32) - (block & 0xffffffffu);
        size_t n = (uint64_t)left / 64 + 1 > blocks_here ? (size_t)(blocks_here * 64) : left;
        crypto_stream_chacha20_ietf_xor_ic(out, out, n, nonce, (uint32_t)block, stream_key);
        out += n;
        left -= n;
        block += (n + 63) / 64;
    }
}

static uint32_t seeded_random(void)
{
    uint32_t v;
    seeded_buf(&v, sizeof v);
    return v;
}

static struct randombytes_implementation seeded = {
    .implementation_name = seeded_name,
    .random = seeded_random,
    .stir = NULL,
    .uniform = NULL,
    .buf = seeded_buf,
    .close = NULL,
};

int entropy_seed(uint64_t seed)
{
    pthread_mutex_lock(&stream_lock);
    memset(stream_key, 0, sizeof stream_key);
    for (int i = 0; i < 8; i++) {
        stream_key[i] = (uint8_t)(seed >> (8 * i));
    }
    stream_offset = 0;
    pthread_mutex_unlock(&stream_lock);
    return randombytes_set_implementation(&seeded);
}
