/* Tests of node/base/ratelimit.c: a burst at once, then the average rate, whatever the clock does.
 */
#include "support.h"

#include "ratelimit.h"

static void test_burst_then_rate(void **state)
{
    (void)state;
    ratelimit_t r;
    ratelimit_init(&r, 10, 4); /* 10 a second, 4 at once */
    int64_t t = 1000000;
    for (int i = 0; i < 4; i++) {
        assert_true(ratelimit_take(&r, t));
    }
    assert_false(ratelimit_take(&r, t));
    assert_false(ratelimit_take(&r, t + 99));
    assert_int_equal(ratelimit_next_ms(&r), t + 100);
    assert_true(ratelimit_take(&r, t + 100)); /* one interval later: one more */
    assert_false(ratelimit_take(&r, t + 100));
    assert_int_equal(r.refused, 3);
    /* over ten seconds at a steady 1,000 attempts a second: about 10 a second get through */
    int taken = 0;
    for (int ms = 0; ms < 10000; ms++) {
        taken += ratelimit_take(&r, t + 200 + ms);
    }
    assert_in_range(taken, 100, 104);
}

static void test_idle_refills_to_burst_only(void **state)
{
    (void)state;
    ratelimit_t r;
    ratelimit_init(&r, 2, 3);
    assert_true(ratelimit_take(&r, 0));
    int64_t later = 3600 * 1000; /* an hour idle gives a burst, not an hour's worth */
    int taken = 0;
    for (int i = 0; i < 10; i++) {
        taken += ratelimit_take(&r, later);
    }
    assert_int_equal(taken, 3);
}

static void test_clock_going_back_does_not_grant(void **state)
{
    (void)state;
    ratelimit_t r;
    ratelimit_init(&r, 1, 1);
    assert_true(ratelimit_take(&r, 5000));
    assert_false(ratelimit_take(&r, 0)); /* an earlier time is no new allowance */
    assert_false(ratelimit_take(&r, 5999));
    assert_true(ratelimit_take(&r, 6000));
}

static void test_charged_work_is_a_debt(void **state)
{
    (void)state;
    ratelimit_t r;
    ratelimit_init(&r, 100, 10); /* 100 units a second, 10 at once */
    int64_t t = 50000;
    assert_true(ratelimit_next_ms(&r) <= t);
    ratelimit_charge(&r, t, 250); /* an answer that cost 2.5 s of allowance */
    assert_int_equal(ratelimit_next_ms(&r), t + 2500 - 90);
    assert_false(ratelimit_take(&r, t + 2409));
    assert_true(ratelimit_take(&r, t + 2410));
    ratelimit_charge(&r, t, UINT64_MAX); /* no overflow: the peer waits for ever */
    assert_false(ratelimit_take(&r, INT64_MAX - 1000));
}

static void test_costs_below_a_unit_add_up(void **state)
{
    (void)state;
    costlimit_t c;
    costlimit_init(&c, 1024, 100, 1); /* 100 KiB a second, 1 KiB at once */
    int64_t t = 7000;
    for (int i = 0; i < 10; i++) {
        costlimit_charge(&c, t, 100); /* 1,000 bytes: still under a unit */
    }
    assert_true(costlimit_next_ms(&c) <= t);
    costlimit_charge(&c, t, 100); /* 1,100 bytes: one unit owed, 76 carried */
    assert_int_equal(costlimit_next_ms(&c), t + 10);
    assert_int_equal(c.carry, 76);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_idle_refills_to_burst_only),
        cmocka_unit_test(test_clock_going_back_does_not_grant),
        cmocka_unit_test(test_charged_work_is_a_debt),
        cmocka_unit_test(test_costs_below_a_unit_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
