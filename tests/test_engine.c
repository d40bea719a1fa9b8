/* Tests of node/engine/engine.c that need no sockets: when a daily automatic cycle close
 * (PROTOCOL.md 3.11.5) is due. */
#include "support.h"

#include <stdint.h>

#include "engine.h"

#define MINUTE_MS (60LL * 1000)
#define DAY_MS    (24LL * 60 * MINUTE_MS)
#define DAY       (20425LL * DAY_MS) /* 2025-12-03 00:00 UTC */

/* cycle_at 18:00: due once 18:00 has passed since the last cycle, not before, once a day. */
static void test_cycle_at_once_a_day(void **state)
{
    (void)state;
    int32_t at = 18 * 60;
    int64_t last = DAY - DAY_MS + 18 * 60 * MINUTE_MS + 5; /* yesterday's close, at 18:00 */
    assert_false(engine_cycle_at_due(DAY + 17 * 60 * MINUTE_MS, at, last));
    assert_false(engine_cycle_at_due(DAY + at * MINUTE_MS - 1, at, last));
    assert_true(engine_cycle_at_due(DAY + at * MINUTE_MS, at, last));
    assert_true(engine_cycle_at_due(DAY + 23 * 60 * MINUTE_MS, at, last));
    /* closed today at 18:00: not again today, nor after midnight, but tomorrow at 18:00 */
    int64_t today = DAY + at * MINUTE_MS + 300;
    assert_false(engine_cycle_at_due(DAY + 18 * 60 * MINUTE_MS + 1000, at, today));
    assert_false(engine_cycle_at_due(DAY + DAY_MS + 1, at, today));
    assert_false(engine_cycle_at_due(DAY + DAY_MS + at * MINUTE_MS - 1, at, today));
    assert_true(engine_cycle_at_due(DAY + DAY_MS + at * MINUTE_MS, at, today));
    /* a node down over 18:00 closes when it is back, even after midnight */
    assert_true(engine_cycle_at_due(DAY + DAY_MS + 5 * MINUTE_MS, at, last));
}

/* cycle_at 00:00 and 23:59: the day boundary. */
static void test_cycle_at_day_boundary(void **state)
{
    (void)state;
    int64_t before_midnight = DAY - 1;
    assert_false(engine_cycle_at_due(before_midnight, 0, DAY - DAY_MS));
    assert_true(engine_cycle_at_due(DAY, 0, DAY - DAY_MS));
    assert_true(engine_cycle_at_due(DAY, 0, DAY - 1));
    assert_false(engine_cycle_at_due(DAY, 0, DAY));
    assert_false(engine_cycle_at_due(DAY + DAY_MS - 1, 0, DAY));
    assert_true(engine_cycle_at_due(DAY + DAY_MS, 0, DAY));
    int32_t late = 23 * 60 + 59;
    int64_t at = DAY + late * MINUTE_MS;
    assert_false(engine_cycle_at_due(at - 1, late, at - DAY_MS));
    assert_true(engine_cycle_at_due(at, late, at - DAY_MS));
    assert_false(engine_cycle_at_due(DAY + DAY_MS, late, at)); /* just after midnight */
    assert_true(engine_cycle_at_due(DAY + DAY_MS, late, at - 1));
}

/* Off (-1) or without a wall clock: never. */
static void test_cycle_at_off(void **state)
{
    (void)state;
    assert_false(engine_cycle_at_due(DAY + 12 * 60 * MINUTE_MS, -1, 0));
    assert_false(engine_cycle_at_due(0, 0, -1));
    assert_true(engine_cycle_at_due(DAY + 12 * 60 * MINUTE_MS, 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cycle_at_once_a_day),
        cmocka_unit_test(test_cycle_at_day_boundary),
        cmocka_unit_test(test_cycle_at_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
