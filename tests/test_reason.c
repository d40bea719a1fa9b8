/* Tests of node/message/reason.c: the one table of the reasons Corridor emits. */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include "reason.h"
#include "settlement.h"
#include "validate.h"

static void test_every_reason_is_a_distinct_iso_code(void **state)
{
    (void)state;
    assert_null(reason_code(REASON_NONE));
    for (int r = REASON_FORMAT; r <= REASON_DUPLICATE; r++) {
        const char *code = reason_code((reason_t)r);
        assert_non_null(code);
        assert_int_equal(reason_code_check(code), VALID_OK);
        assert_true(strlen(reason_text((reason_t)r)) > 0);
        for (int other = REASON_FORMAT; other < r; other++) {
            assert_string_not_equal(code, reason_code((reason_t)other));
        }
    }
}

/* A currency error is reported as one, not as an amount error (AM03 starts with 'A'). */
static void test_currency_is_not_an_amount_error(void **state)
{
    (void)state;
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "BMJIIRTH");
    uetr_generate(s.uetr);
    snprintf(s.currency, sizeof s.currency, "XXQ");
    s.amount_minor = 100;
    assert_int_equal(settlement_check(&s), REASON_CURRENCY);
    assert_string_equal(reason_code(REASON_CURRENCY), "AM03");
    assert_non_null(strstr(reason_text(REASON_CURRENCY), "currency"));
    snprintf(s.currency, sizeof s.currency, "RUB");
    s.amount_minor = 0;
    assert_int_equal(settlement_check(&s), REASON_ZERO_AMOUNT);
    s.amount_minor = -1;
    assert_int_equal(settlement_check(&s), REASON_AMOUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_reason_is_a_distinct_iso_code),
        cmocka_unit_test(test_currency_is_not_an_amount_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
