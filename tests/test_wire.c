/* Tests of wire_unpack: untrusted protobuf decodes stay within their memory budget. */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "wire.h"

static void test_valid_message_decodes(void **state)
{
    (void)state;
    Corridor__Ack ack = CORRIDOR__ACK__INIT;
    ack.sequence = 42;
    uint8_t buf[32];
    size_t len = corridor__ack__pack(&ack, buf);
    Corridor__Ack *out = wire_unpack(&corridor__ack__descriptor, len, buf);
    assert_non_null(out);
    assert_int_equal(out->sequence, 42);
    corridor__ack__free_unpacked(out, NULL);
}

static void test_amplifying_message_refused(void **state)
{
    (void)state;
    /* 20,000 empty StatementEntry fields (tag 0x2a, length 0): 40 KB of input that would
     * make protobuf-c allocate one struct (~100 bytes) and one pointer each. */
    size_t n = 20000, len = 2 * n;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x2a;
        buf[2 * i + 1] = 0x00;
    }
    Corridor__Statement *plain = corridor__statement__unpack(NULL, len, buf);
    assert_non_null(plain); /* protobuf-c alone accepts it */
    assert_int_equal(plain->n_entries, n);
    corridor__statement__free_unpacked(plain, NULL);
    assert_null(wire_unpack(&corridor__statement__descriptor, len, buf));
    free(buf);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_null(wire_unpack(&corridor__envelope__descriptor, sizeof junk, junk));
    assert_null(wire_unpack(&corridor__envelope__descriptor, 5, NULL));
}

static void test_empty_input_is_an_empty_message(void **state)
{
    (void)state;
    Corridor__Hello *h = wire_unpack(&corridor__hello__descriptor, 0, NULL);
    assert_non_null(h);
    assert_int_equal(h->sent_sequence, 0);
    corridor__hello__free_unpacked(h, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_message_decodes),
        cmocka_unit_test(test_amplifying_message_refused),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_empty_input_is_an_empty_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
