/*
 * Decoding untrusted protobuf bytes with a memory budget.
 *
 * protobuf-c allocates as it decodes; what it allocates grows with the input, but a crafted
 * message (many tiny repeated fields, say) can make it allocate several times its own size.
 * Every decode of bytes from a peer or a file goes through wire_unpack, whose allocator
 * refuses to hand out more than WIRE_ALLOC_FACTOR times the input plus WIRE_ALLOC_SLACK_BYTES
 * in all: the decode then fails cleanly. Memory comes from malloc, so the message is released
 * as usual with its free_unpacked(msg, NULL).
 */
#ifndef CORRIDOR_WIRE_H
#define CORRIDOR_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define WIRE_ALLOC_FACTOR      8
#define WIRE_ALLOC_SLACK_BYTES 4096

/* Unpacks `len` bytes as a message of `desc`; NULL if malformed or over the budget. */
void *wire_unpack(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data);

#endif
