/*
 * Input-driven signing of "applied" proofs, shared by fuzz_statement.c and fuzz_hello.c (each
 * harness is one program; this header holds static inline helpers only, like fuzz_keys.h).
 *
 * Repair.applied_proof and Statement.applied_proof must be the receiving node's OWN signed
 * message to its peer (recon.c, proven_applied): random bytes never verify, so a harness that
 * only passed them through would never reach a re-base. The harness therefore signs some of
 * them. Proof bytes whose first byte has bit 0x80 set are a template:
 *
 *   [0]     0x80 | type selector: Inner type 1 + (b & 0x7f) % MSG_TYPE_MAX (Settlement ..
 *           SetoffDecision)
 *   [1]     bits 0-1 the recipient: 1 the node itself, 2 a third node, otherwise the peer;
 *           bit 2 Inner version 2 instead of 1; bit 3 signed by the peer instead of the node
 *   [2..9]  the sequence, little endian (any value: above 2^62 signing is refused)
 *   [10..]  the body
 *
 * and are replaced by that signed message (SignedMessage bytes, as envelope_sign_version makes
 * them). When envelope_sign_version refuses (a sequence above 2^62, a body over the limit) the
 * template stays as it is, raw. Any other bytes (first byte without 0x80, e.g. a genuine
 * SignedMessage, which starts with 0x0a) reach the node raw.
 */
#ifndef CORRIDOR_FUZZ_PROOF_H
#define CORRIDOR_FUZZ_PROOF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "envelope.h"
#include "identity.h"

#define FUZZ_PROOF_SIGN       0x80u /* bit of byte 0: a template to sign */
#define FUZZ_PROOF_HEADER     10    /* template bytes before the body */
#define FUZZ_PROOF_TO_SELF    1u    /* byte 1 bits 0-1 */
#define FUZZ_PROOF_TO_THIRD   2u
#define FUZZ_PROOF_VERSION_2  0x04u /* byte 1 */
#define FUZZ_PROOF_PEER_SIGNS 0x08u /* byte 1 */

/* Writes a template (header only, empty body) into out[FUZZ_PROOF_HEADER]. */
static inline void fuzz_proof_template(uint8_t out[static FUZZ_PROOF_HEADER], msg_type_t type,
                                       unsigned selector, uint64_t sequence)
{
    out[0] = (uint8_t)(FUZZ_PROOF_SIGN | (unsigned)(type - MSG_TYPE_MIN));
    out[1] = (uint8_t)selector;
    for (size_t i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t)(sequence >> (8 * i));
    }
}

/* Replaces a template in *proof (malloc'd data, as wire_unpack leaves it) by the message it
 * describes, signed by `self` (or `peer`, bit 3) for the recipient it names. Returns whether
 * it signed; the sequence it signed goes to *sequence, and *genuine says whether it is a
 * sequenced message (of any sequenced type, as recon.c's proven_applied takes it) signed by
 * self for the peer: the only kind of proof the node may believe. */
static inline bool fuzz_sign_proof(const identity_t *self, const identity_t *peer,
                                   const identity_t *third, ProtobufCBinaryData *proof,
                                   uint64_t *sequence, bool *genuine)
{
    *sequence = 0;
    *genuine = false;
    if (proof->len < FUZZ_PROOF_HEADER || (proof->data[0] & FUZZ_PROOF_SIGN) == 0) {
        return false;
    }
    const uint8_t *t = proof->data;
    msg_type_t type = (msg_type_t)(MSG_TYPE_MIN + (t[0] & 0x7fu) % MSG_TYPE_MAX);
    unsigned to = t[1] & 3u;
    const identity_t *recipient = to == FUZZ_PROOF_TO_SELF    ? self
                                  : to == FUZZ_PROOF_TO_THIRD ? third
                                                              : peer;
    uint32_t version = (t[1] & FUZZ_PROOF_VERSION_2) ? INNER_VERSION_MIN + 1 : INNER_VERSION_MIN;
    const identity_t *author = (t[1] & FUZZ_PROOF_PEER_SIGNS) ? peer : self;
    uint64_t seq = 0;
    for (size_t i = 0; i < 8; i++) {
        seq |= (uint64_t)t[2 + i] << (8 * i);
    }
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    if (envelope_sign_version(author, version, recipient->key_id, type, seq,
                              proof->data + FUZZ_PROOF_HEADER, proof->len - FUZZ_PROOF_HEADER,
                              &signed_msg, &signed_len) != ENV_OK) {
        return false;
    }
    free(proof->data);
    proof->data = signed_msg;
    proof->len = signed_len;
    *sequence = seq;
    *genuine = author == self && recipient == peer && msg_type_sequenced((int)type) && seq != 0;
    return true;
}

#endif
