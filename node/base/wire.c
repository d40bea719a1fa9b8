/* Decoding untrusted protobuf bytes with a memory budget; see wire.h. */
#include "wire.h"

#include <assert.h>
#include <stdlib.h>

typedef struct {
    size_t used;  /* bytes handed out so far */
    size_t limit; /* the most this decode may have */
} budget_t;

static void *budget_alloc(void *data, size_t size)
{
    budget_t *b = data;
    if (size > b->limit - b->used) {
        return NULL; /* protobuf-c turns this into a failed unpack */
    }
    b->used += size;
    return malloc(size);
}

static void budget_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

void *wire_unpack(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data)
{
    assert(desc != NULL);
    if (data == NULL && len > 0) {
        return NULL;
    }
    budget_t budget = {0, WIRE_ALLOC_FACTOR * len + WIRE_ALLOC_SLACK_BYTES};
    ProtobufCAllocator allocator = {budget_alloc, budget_free, &budget};
    return protobuf_c_message_unpack(desc, &allocator, len, data);
}
