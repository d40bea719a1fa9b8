/*
 * Where random bytes come from. Every random byte Corridor uses (keys, nonces, UETRs,
 * request ids) is drawn through libsodium's randombytes_buf, and libzmq's CURVE keys come
 * from the same libsodium. By default that is the operating system's CSPRNG. A simulation
 * or a test that must replay a run bit for bit installs a seeded stream instead, before
 * sodium_init: ChaCha20 keyed by the seed, so every byte is a function of the seed and the
 * order of the draws. Never in a running node: its nonces would repeat across runs.
 */
#ifndef CORRIDOR_ENTROPY_H
#define CORRIDOR_ENTROPY_H

#include <stdint.h>

/* Makes every later random byte of this process a function of `seed` and restarts the
 * stream: called again with the same seed, the same bytes come again. Call it before
 * sodium_init, so that no byte of the system's source is used first. Returns libsodium's
 * answer (0). */
int entropy_seed(uint64_t seed);

#endif
