/* Tests of the opener: a batch opened on several threads gives, frame by frame, what
 * envelope_open gives on one thread (good frames, forgeries, replays, garbage alike). */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "opener.h"

#define FRAMES 300

typedef struct {
    identity_t *a, *b;
    envelope_peer_t *a_at_b; /* B's entry for A */
    envelope_peer_t *b_at_a; /* A's entry for B (to seal from A) */
    uint8_t *wire[FRAMES];
    size_t len[FRAMES];
} batch_t;

/* Frames from A to B: most good, every 7th with a flipped byte, every 11th cut short, every
 * 13th a business message B has already applied (a replay). */
static int batch_setup(void **state)
{
    batch_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->a = identity_generate();
    t->b = identity_generate();
    assert_non_null(t->a);
    assert_non_null(t->b);
    peer_card_t card_a, card_b;
    identity_card(t->a, "BKRURUMM", "tcp://127.0.0.1:7000", &card_a);
    identity_card(t->b, "BMJIIRTH", "tcp://127.0.0.1:7001", &card_b);
    t->a_at_b = sodium_malloc(sizeof *t->a_at_b);
    t->b_at_a = sodium_malloc(sizeof *t->b_at_a);
    assert_non_null(t->a_at_b);
    assert_non_null(t->b_at_a);
    assert_int_equal(envelope_peer_init(t->a_at_b, t->b, &card_a), ENV_OK);
    assert_int_equal(envelope_peer_init(t->b_at_a, t->a, &card_b), ENV_OK);
    t->a_at_b->applied_through = 20; /* business messages 1..20 are old news at B */
    for (size_t i = 0; i < FRAMES; i++) {
        uint8_t body[64];
        memset(body, (int)i, sizeof body);
        uint64_t seq = i % 13 == 0 ? 5 : 100 + i;
        assert_int_equal(envelope_seal(t->a, t->b_at_a, MSG_SETTLEMENT, seq, body, sizeof body,
                                       &t->wire[i], &t->len[i]),
                         ENV_OK);
        if (i % 7 == 3) {
            t->wire[i][t->len[i] / 2] ^= 0x20;
        } else if (i % 11 == 5) {
            t->len[i] /= 3;
        }
    }
    *state = t;
    return 0;
}

static int batch_teardown(void **state)
{
    batch_t *t = *state;
    for (size_t i = 0; i < FRAMES; i++) {
        free(t->wire[i]);
    }
    envelope_peer_wipe(t->a_at_b);
    envelope_peer_wipe(t->b_at_a);
    sodium_free(t->a_at_b);
    sodium_free(t->b_at_a);
    identity_destroy(&t->a);
    identity_destroy(&t->b);
    free(t);
    return 0;
}

/* Opens the first `count` frames with `workers` threads and compares with envelope_open. */
static void check_batch(batch_t *t, size_t workers, size_t count)
{
    opener_t *o = opener_new(workers);
    assert_non_null(o);
    opener_frame_t *frames = calloc(count, sizeof *frames);
    assert_non_null(frames);
    for (int round = 0; round < 3; round++) { /* the workers serve batch after batch */
        for (size_t i = 0; i < count; i++) {
            frames[i] = (opener_frame_t){.peer_index = 0, .data = t->wire[i], .len = t->len[i]};
        }
        opener_run(o, frames, count, t->b, t->a_at_b, 1);
        size_t good = 0;
        for (size_t i = 0; i < count; i++) {
            envelope_message_t alone;
            env_err_t rc = envelope_open(t->wire[i], t->len[i], t->b, t->a_at_b, 1, &alone);
            assert_int_equal(frames[i].rc, rc);
            if (rc == ENV_OK) {
                good++;
                assert_int_equal(frames[i].msg.sequence, alone.sequence);
                assert_int_equal(frames[i].msg.body_len, alone.body_len);
                assert_memory_equal(frames[i].msg.body, alone.body, alone.body_len);
            }
            envelope_message_clear(&alone);
            envelope_message_clear(&frames[i].msg);
        }
        if (count >= 20) { /* the batch holds both kinds */
            assert_true(good > 0 && good < count);
        }
    }
    free(frames);
    opener_free(&o);
    assert_null(o);
}

static void test_one_thread_opens_like_envelope_open(void **state)
{
    check_batch(*state, 0, FRAMES);
}

static void test_workers_open_like_envelope_open(void **state)
{
    check_batch(*state, 3, FRAMES);
}

static void test_small_batches_and_odd_sizes(void **state)
{
    for (size_t count = 1; count < 40; count += 3) {
        check_batch(*state, 2, count);
    }
}

static void test_empty_batch(void **state)
{
    (void)state;
    opener_t *o = opener_new(2);
    assert_non_null(o);
    identity_t *self = identity_generate();
    assert_non_null(self);
    opener_run(o, NULL, 0, self, NULL, 0);
    identity_destroy(&self);
    opener_free(&o);
    opener_free(&o); /* freeing twice is harmless */
}

static void test_default_workers_leave_a_core(void **state)
{
    (void)state;
    assert_true(opener_default_workers() <= 7);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_thread_opens_like_envelope_open, batch_setup,
                                        batch_teardown),
        cmocka_unit_test_setup_teardown(test_workers_open_like_envelope_open, batch_setup,
                                        batch_teardown),
        cmocka_unit_test_setup_teardown(test_small_batches_and_odd_sizes, batch_setup,
                                        batch_teardown),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_default_workers_leave_a_core),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
