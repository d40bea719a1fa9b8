/* A seeded stream for libsodium's randombytes: ChaCha20 (IETF) keyed by the seed, with a
 * block counter that advances with every draw. */
#include "entropy.h"

#include <string.h>

#include <sodium.h>

static uint8_t stream_key[crypto_stream_chacha20_ietf_KEYBYTES];
static uint64_t stream_offset; /* bytes of the stream handed out so far */

static const char *seeded_name(void)
{
    return "corridor-seeded";
}

static void seeded_buf(void *const buf, const size_t size)
{
    /* One nonce per 2^32 blocks of 64 bytes; a draw starts at a fresh block. */
    uint64_t block = stream_offset / 64;
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    for (int i = 0; i < 4; i++) {
        nonce[i] = (uint8_t)((block >> 32) >> (8 * i));
    }
    memset(buf, 0, size);
    crypto_stream_chacha20_ietf_xor_ic(buf, buf, size, nonce, (uint32_t)block, stream_key);
    stream_offset = (block + (size + 63) / 64) * 64;
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
    memset(stream_key, 0, sizeof stream_key);
    for (int i = 0; i < 8; i++) {
        stream_key[i] = (uint8_t)(seed >> (8 * i));
    }
    stream_offset = 0;
    return randombytes_set_implementation(&seeded);
}
