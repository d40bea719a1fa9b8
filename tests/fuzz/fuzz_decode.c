/*
 * Fuzzes the protobuf-c decoders of every wire message directly, without the envelope around
 * them: Envelope is decoded from raw socket bytes before any authentication, the inner layers
 * (Transit, SignedMessage, Inner) and the business bodies after it. Decoding must fail or
 * succeed cleanly with bounded memory, whatever the bytes.
 *
 * Byte 0 selects the message (b % 26, in the order of the table below); the rest is decoded
 * with its descriptor (the generated corridor__<msg>__unpack functions are exactly
 * protobuf_c_message_unpack with that descriptor) and freed. A message that decodes is also
 * re-encoded (to the size it announces) and, when that decodes, the second encoding must equal
 * the first. That the first re-encoding decodes is not required: protobuf-c 1.4.1 keeps a
 * field-0 tag written as a two-byte varint (80 00) as an unknown field and re-encodes it as
 * 00, which it then refuses. Corridor never re-encodes what it decoded (signed bytes are kept
 * verbatim), so that quirk cannot reach the node.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "corridor.pb-c.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const descriptors[] = {
    &corridor__envelope__descriptor,
    &corridor__transit__descriptor,
    &corridor__signed_message__descriptor,
    &corridor__inner__descriptor,
    &corridor__settlement__descriptor,
    &corridor__status_report__descriptor,
    &corridor__return__descriptor,
    &corridor__statement_request__descriptor,
    &corridor__statement__descriptor,
    &corridor__ack__descriptor,
    &corridor__hello__descriptor,
    &corridor__key_announce__descriptor,
    &corridor__key_switch__descriptor,
    &corridor__cancel_request__descriptor,
    &corridor__cancel_answer__descriptor,
    &corridor__checkpoint__descriptor,
    &corridor__fx_proposal__descriptor, /* after the Checkpoint: the seeds' selectors stay */
    &corridor__cycle_proposal__descriptor,
    &corridor__cycle_answer__descriptor,
    &corridor__net_settlement__descriptor,
    &corridor__cycle_statement__descriptor, /* carried as bytes in CycleProposal and Answer */
    &corridor__setoff_relay__descriptor,
    &corridor__setoff_decision__descriptor,
    &corridor__setoff_terms__descriptor,   /* carried as bytes in SetoffRelay and Decision */
    &corridor__setoff_ballot__descriptor,  /* carried as bytes in a SetoffVote */
    &corridor__setoff_verdict__descriptor, /* carried as bytes in SetoffDecision */
};

#define DESCRIPTORS_COUNT (sizeof descriptors / sizeof descriptors[0])
/* The four layers around a body, the body of every message type, and the messages carried as
 * bytes and decoded on their own: the Checkpoint a StatementRequest carries (recon.c), the
 * CycleStatement, and the SetoffTerms, SetoffBallot and SetoffVerdict (setoff.c). A new type
 * fails here (and goes at the end, so that the seeds' first bytes keep selecting what they
 * did). */
_Static_assert(DESCRIPTORS_COUNT == 4 + MSG_TYPE_MAX + 5, "one entry per top-level wire message");

/* Encodes a decoded message; the caller frees the result. */
static uint8_t *repack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *packed = malloc(*len > 0 ? *len : 1);
    assert(packed != NULL);
    size_t written = protobuf_c_message_pack(m, packed);
    assert(written == *len);
    return packed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const ProtobufCMessageDescriptor *desc = descriptors[data[0] % DESCRIPTORS_COUNT];
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
    if (m == NULL) {
        return 0;
    }
    assert(m->descriptor == desc);
    assert(protobuf_c_message_check(m));

    size_t packed_len = 0;
    uint8_t *packed = repack(m, &packed_len);
    ProtobufCMessage *again = protobuf_c_message_unpack(desc, NULL, packed_len, packed);
    if (again != NULL) {
        /* One re-encoding is canonical: doing it again changes nothing. */
        size_t packed_again_len = 0;
        uint8_t *packed_again = repack(again, &packed_again_len);
        assert(packed_again_len == packed_len && memcmp(packed_again, packed, packed_len) == 0);
        free(packed_again);
        protobuf_c_message_free_unpacked(again, NULL);
    }
    free(packed);

    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
