/* Tests of node/base/entropy.c: a seeded process draws the same random bytes again, and every
 * random value Corridor makes (keys, UETRs) follows the seed. */
#include "support.h"

#include <string.h>

#include <sodium.h>

#include "entropy.h"
#include "identity.h"
#include "validate.h"

typedef struct {
    uint8_t bytes[100];
    char uetr[CORRIDOR_UETR_LEN + 1];
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1];
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
} draws_t;

static void draw(uint64_t seed, draws_t *d)
{
    assert_int_equal(entropy_seed(seed), 0);
    randombytes_buf(d->bytes, sizeof d->bytes);
    uetr_generate(d->uetr);
    identity_t *id = identity_generate();
    assert_non_null(id);
    memcpy(d->sign_public, id->sign_public, sizeof d->sign_public);
    memcpy(d->curve_public, id->curve_public, sizeof d->curve_public);
    identity_destroy(&id);
}

static void test_same_seed_same_bytes(void **state)
{
    (void)state;
    draws_t a, b, c;
    draw(20261202, &a);
    draw(20261202, &b);
    draw(20261203, &c);
    assert_memory_equal(&a, &b, sizeof a);
    assert_memory_not_equal(a.bytes, c.bytes, sizeof a.bytes);
    assert_string_not_equal(a.uetr, c.uetr);
    assert_memory_not_equal(a.sign_public, c.sign_public, sizeof a.sign_public);
    assert_int_equal(uetr_check(a.uetr), VALID_OK);
}

static void test_draws_do_not_overlap(void **state)
{
    (void)state;
    uint8_t first[64], second[64];
    assert_int_equal(entropy_seed(7), 0);
    randombytes_buf(first, 1); /* a short draw still uses up its block */
    randombytes_buf(second, sizeof second);
    assert_int_equal(entropy_seed(7), 0);
    randombytes_buf(first, sizeof first);
    assert_memory_not_equal(first, second, sizeof first);
}

int main(void)
{
    /* before sodium_init: no byte of the system's source is drawn first */
    if (entropy_seed(1) != 0 || sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_bytes),
        cmocka_unit_test(test_draws_do_not_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
