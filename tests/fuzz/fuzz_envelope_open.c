/*
 * Fuzzes envelope_open(): the first code that touches bytes from the network. A node opens
 * whatever a socket delivers, before knowing who sent it, so arbitrary bytes here must end in
 * an env_err_t, never a crash, an assertion, a leak or an unbounded allocation.
 *
 * The node under test ("self") trusts two peers; all keys are fixed (fuzz_keys.h), so a crash
 * reproduces from its input alone. Random bytes cannot forge a box or a signature, so the
 * seed corpus holds real envelopes (from either peer, signed for another node, re-wrapped by
 * the wrong peer, marked as duplicates) whose mutations exercise the decoder and every
 * refusal. When an input does open, its evidence must verify with the author's key alone.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "fuzz_keys.h"
#include "identity.h"

#define PEERS_COUNT 2

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static identity_t *self;                 /* the node that opens */
static identity_t *authors[PEERS_COUNT]; /* its trusted peers' own keys */
static envelope_peer_t *peers;           /* how self sees them (sodium_malloc'd) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        abort();
    }
    self = fuzz_identity(0);
    authors[0] = fuzz_identity(1);
    authors[1] = fuzz_identity(2);
    peers = sodium_malloc(PEERS_COUNT * sizeof *peers);
    if (peers == NULL) {
        abort();
    }
    fuzz_peer(&peers[0], self, authors[0], "BKRURUMM");
    fuzz_peer(&peers[1], self, authors[1], "BMJIIRTH");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope_message_t msg;
    env_err_t rc = envelope_open(data, size, self, peers, PEERS_COUNT, &msg);
    if (rc != ENV_OK) {
        /* On error the message is zeroed: nothing to release. */
        assert(msg.body == NULL && msg.evidence == NULL);
        assert(env_strerror(rc) != NULL);
        return 0;
    }
    assert(msg.peer_index < PEERS_COUNT);
    assert(msg.type >= MSG_TYPE_MIN && msg.type <= MSG_TYPE_MAX);
    assert(msg.body != NULL && msg.evidence != NULL);
    assert(msg.body_len <= CORRIDOR_BODY_BYTES_MAX);
    assert(memcmp(msg.author_key_id, peers[msg.peer_index].key_id, IDENTITY_KEY_ID_BYTES) == 0);
    assert(memcmp(msg.recipient_key_id, self->key_id, IDENTITY_KEY_ID_BYTES) == 0);

    /* Non-repudiation: the stored evidence verifies with the author's public key alone and
     * says the same thing the envelope did. */
    envelope_message_t ev;
    env_err_t ev_rc =
        evidence_verify(msg.evidence, msg.evidence_len, peers[msg.peer_index].sign_public, &ev);
    assert(ev_rc == ENV_OK);
    assert(ev.peer_index == SIZE_MAX && !ev.possible_duplicate);
    assert(ev.type == msg.type && ev.sequence == msg.sequence);
    assert(ev.body_len == msg.body_len && memcmp(ev.body, msg.body, msg.body_len) == 0);
    assert(ev.evidence_len == msg.evidence_len &&
           memcmp(ev.evidence, msg.evidence, msg.evidence_len) == 0);
    envelope_message_clear(&ev);

    /* The other peer's key must not verify it. */
    size_t other = 1 - msg.peer_index;
    ev_rc = evidence_verify(msg.evidence, msg.evidence_len, peers[other].sign_public, &ev);
    assert(ev_rc == ENV_E_BAD_SIGNATURE);
    assert(ev.body == NULL && ev.evidence == NULL);

    envelope_message_clear(&msg);
    return 0;
}
