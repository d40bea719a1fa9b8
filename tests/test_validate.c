/* Unit tests for node/base/validate.c: currencies, amounts, node codes, UETRs and ISO 20022 text.
 */
#include "support.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* An output value no successful parse in these tests produces, to see it left untouched. */
#define UNTOUCHED INT64_C(-777)

static const currency_t *currency(const char *code)
{
    const currency_t *c = currency_find(code);
    assert_non_null(c);
    return c;
}

/* Parses text in the named currency; *minor is preset to UNTOUCHED. */
static valid_err_t parse(const char *text, const char *code, bool allow_zero, int64_t *minor)
{
    *minor = UNTOUCHED;
    return amount_parse(text, currency(code), allow_zero, minor);
}

/* Checks that text in the named currency is rejected with want and *minor is not written. */
static void assert_parse_fails(const char *text, const char *code, valid_err_t want)
{
    int64_t minor;
    assert_int_equal(parse(text, code, true, &minor), want);
    assert_true(minor == UNTOUCHED);
}

/* Checks that text in the named currency parses to want minor units. */
static void assert_parse_ok(const char *text, const char *code, int64_t want)
{
    int64_t minor;
    assert_int_equal(parse(text, code, false, &minor), VALID_OK);
    assert_true(minor == want);
}

/* Checks amount_format's text and returned length. */
static void assert_format(int64_t minor, uint8_t exponent, const char *want)
{
    char out[32];
    size_t len = amount_format(minor, exponent, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
}

/* ---- currencies ---- */

static void test_currency_exponents(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        uint8_t exponent;
    } want[] = {
        {"RUB", 2}, {"IRR", 2}, {"CNY", 2}, {"INR", 2}, {"AED", 2}, {"TRY", 2}, {"KZT", 2},
        {"BYN", 2}, {"AMD", 2}, {"AZN", 2}, {"USD", 2}, {"EUR", 2}, {"JPY", 0}, {"KWD", 3},
        {"GBP", 2}, {"CHF", 2}, {"BHD", 3}, {"OMR", 3}, {"JOD", 3}, {"IQD", 3}, {"UZS", 2},
        {"KGS", 2}, {"TJS", 2}, {"TMT", 2}, {"VND", 0}, {"KRW", 0}, {"SAR", 2}, {"QAR", 2},
        {"HKD", 2}, {"SGD", 2}, {"MYR", 2}, {"IDR", 2}, {"BRL", 2}, {"ZAR", 2}, {"EGP", 2},
        {"PKR", 2}, {"AFN", 2}, {"GEL", 2}, {"MNT", 2}, {"TND", 3}, {"LYD", 3}, {"CLP", 0},
        {"ISK", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const currency_t *c = currency_find(want[i].code);
        assert_non_null(c);
        assert_string_equal(c->code, want[i].code);
        assert_int_equal(c->exponent, want[i].exponent);
    }
}

static void test_currency_unknown(void **state)
{
    (void)state;
    assert_null(currency_find("XXX"));
    assert_null(currency_find("AAA"));
    assert_null(currency_find("ZZZ"));
}

static void test_currency_lowercase(void **state)
{
    (void)state;
    assert_null(currency_find("rub"));
    assert_null(currency_find("Rub"));
}

static void test_currency_wrong_length(void **state)
{
    (void)state;
    assert_null(currency_find(""));
    assert_null(currency_find("RU"));
    assert_null(currency_find("RUBX"));
    assert_null(currency_find("RUB "));
}

/* ---- amount_parse: accepted forms ---- */

static void test_parse_integer(void **state)
{
    (void)state;
    assert_parse_ok("1234", "RUB", 123400);
}

static void test_parse_two_decimals(void **state)
{
    (void)state;
    assert_parse_ok("1234.56", "RUB", 123456);
}

static void test_parse_one_decimal(void **state)
{
    (void)state;
    assert_parse_ok("1.5", "RUB", 150);
}

static void test_parse_leading_zeros(void **state)
{
    (void)state;
    assert_parse_ok("007.5", "RUB", 750);
}

static void test_parse_jpy_integer(void **state)
{
    (void)state;
    assert_parse_ok("100", "JPY", 100);
}

static void test_parse_kwd_three_decimals(void **state)
{
    (void)state;
    assert_parse_ok("1.234", "KWD", 1234);
}

static void test_parse_max_accepted(void **state)
{
    (void)state;
    assert_parse_ok("1000000000000000.00", "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_parse_ok("1000000000000000", "RUB", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_parse_ok("100000000000000000", "JPY", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_parse_ok("100000000000000.000", "KWD", CORRIDOR_AMOUNT_MINOR_MAX);
}

static void test_parse_zero_allowed(void **state)
{
    (void)state;
    int64_t minor;
    assert_int_equal(parse("0.00", "RUB", true, &minor), VALID_OK);
    assert_true(minor == 0);
    assert_int_equal(parse("0", "JPY", true, &minor), VALID_OK);
    assert_true(minor == 0);
}

/* ---- amount_parse: rejected forms ---- */

static void test_parse_zero_rejected(void **state)
{
    (void)state;
    int64_t minor;
    assert_int_equal(parse("0", "RUB", false, &minor), VALID_E_ZERO);
    assert_true(minor == UNTOUCHED);
}

static void test_parse_zero_decimals_rejected(void **state)
{
    (void)state;
    int64_t minor;
    assert_int_equal(parse("0.00", "RUB", false, &minor), VALID_E_ZERO);
    assert_true(minor == UNTOUCHED);
}

static void test_parse_negative(void **state)
{
    (void)state;
    assert_parse_fails("-1", "RUB", VALID_E_NEGATIVE);
    assert_parse_fails("-0", "RUB", VALID_E_NEGATIVE);
}

static void test_parse_too_many_decimals_rub(void **state)
{
    (void)state;
    assert_parse_fails("1.234", "RUB", VALID_E_DECIMALS);
}

static void test_parse_decimals_jpy(void **state)
{
    (void)state;
    assert_parse_fails("1.5", "JPY", VALID_E_DECIMALS);
}

static void test_parse_too_many_decimals_kwd(void **state)
{
    (void)state;
    assert_parse_fails("1.2345", "KWD", VALID_E_DECIMALS);
}

static void test_parse_int64_overflow(void **state)
{
    (void)state;
    assert_parse_fails("99999999999999999999", "RUB", VALID_E_TOO_LARGE);
    assert_parse_fails("99999999999999999999", "JPY", VALID_E_TOO_LARGE);
    assert_parse_fails("9223372036854775808", "JPY", VALID_E_TOO_LARGE);
}

static void test_parse_very_long(void **state)
{
    (void)state;
    char text[301];
    memset(text, '9', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_parse_fails(text, "JPY", VALID_E_TOO_LARGE);
}

static void test_parse_max_plus_one(void **state)
{
    (void)state;
    assert_parse_fails("1000000000000000.01", "RUB", VALID_E_TOO_LARGE);
    assert_parse_fails("100000000000000001", "JPY", VALID_E_TOO_LARGE);
    assert_parse_fails("100000000000000.001", "KWD", VALID_E_TOO_LARGE);
}

static void test_parse_empty(void **state)
{
    (void)state;
    assert_parse_fails("", "RUB", VALID_E_EMPTY);
}

static void test_parse_leading_space(void **state)
{
    (void)state;
    assert_parse_fails(" 1", "RUB", VALID_E_SYNTAX);
}

static void test_parse_trailing_space(void **state)
{
    (void)state;
    assert_parse_fails("1 ", "RUB", VALID_E_SYNTAX);
}

static void test_parse_inner_space(void **state)
{
    (void)state;
    assert_parse_fails("1 000", "RUB", VALID_E_SYNTAX);
    assert_parse_fails("1. 5", "RUB", VALID_E_SYNTAX);
}

static void test_parse_exponent_notation(void **state)
{
    (void)state;
    assert_parse_fails("1e5", "RUB", VALID_E_SYNTAX);
    assert_parse_fails("1E5", "RUB", VALID_E_SYNTAX);
}

static void test_parse_plus(void **state)
{
    (void)state;
    assert_parse_fails("+1", "RUB", VALID_E_SYNTAX);
}

static void test_parse_leading_dot(void **state)
{
    (void)state;
    assert_parse_fails(".5", "RUB", VALID_E_SYNTAX);
}

static void test_parse_trailing_dot(void **state)
{
    (void)state;
    assert_parse_fails("1.", "RUB", VALID_E_SYNTAX);
    assert_parse_fails("1.", "JPY", VALID_E_SYNTAX);
}

static void test_parse_thousands_separator(void **state)
{
    (void)state;
    assert_parse_fails("1,000", "RUB", VALID_E_SYNTAX);
    assert_parse_fails("1,5", "RUB", VALID_E_SYNTAX);
}

static void test_parse_two_points(void **state)
{
    (void)state;
    assert_parse_fails("1.2.3", "KWD", VALID_E_SYNTAX);
}

static void test_parse_letters(void **state)
{
    (void)state;
    assert_parse_fails("abc", "RUB", VALID_E_SYNTAX);
    assert_parse_fails("12x", "RUB", VALID_E_SYNTAX);
}

/* ---- amount_format ---- */

static void test_format_two_decimals(void **state)
{
    (void)state;
    assert_format(123456, 2, "1234.56");
}

static void test_format_small_negative(void **state)
{
    (void)state;
    assert_format(-5, 2, "-0.05");
    assert_format(-123456, 2, "-1234.56");
}

static void test_format_zero_exponent(void **state)
{
    (void)state;
    assert_format(7, 0, "7");
    assert_format(-7, 0, "-7");
}

static void test_format_three_decimals(void **state)
{
    (void)state;
    assert_format(1234, 3, "1.234");
    assert_format(1, 3, "0.001");
}

static void test_format_zero(void **state)
{
    (void)state;
    assert_format(0, 2, "0.00");
    assert_format(0, 0, "0");
}

static void test_format_int64_min(void **state)
{
    (void)state;
    assert_format(INT64_MIN, 0, "-9223372036854775808");
    assert_format(INT64_MIN, 2, "-92233720368547758.08");
    assert_format(INT64_MIN, 19, "-0.9223372036854775808");
}

static void test_format_int64_max(void **state)
{
    (void)state;
    assert_format(INT64_MAX, 0, "9223372036854775807");
    assert_format(INT64_MAX, 3, "9223372036854775.807");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    static const struct {
        int64_t minor;
        const char *code;
    } cases[] = {
        {1, "RUB"},
        {99, "RUB"},
        {100, "RUB"},
        {123456, "IRR"},
        {1, "JPY"},
        {1000, "KRW"},
        {1, "KWD"},
        {1001, "BHD"},
        {999999, "TND"},
        {CORRIDOR_AMOUNT_MINOR_MAX, "RUB"},
        {CORRIDOR_AMOUNT_MINOR_MAX, "JPY"},
        {CORRIDOR_AMOUNT_MINOR_MAX, "KWD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const currency_t *c = currency(cases[i].code);
        char text[32];
        amount_format(cases[i].minor, c->exponent, text, sizeof text);
        int64_t back = UNTOUCHED;
        assert_int_equal(amount_parse(text, c, false, &back), VALID_OK);
        assert_true(back == cases[i].minor);
    }
}

/* ---- amount arithmetic and range ---- */

static void test_add_ok(void **state)
{
    (void)state;
    int64_t out = UNTOUCHED;
    assert_int_equal(amount_add(150, -50, &out), VALID_OK);
    assert_true(out == 100);
    assert_int_equal(amount_add(INT64_MAX - 1, 1, &out), VALID_OK);
    assert_true(out == INT64_MAX);
}

static void test_add_overflow(void **state)
{
    (void)state;
    int64_t out = UNTOUCHED;
    assert_int_equal(amount_add(INT64_MAX, 1, &out), VALID_E_OVERFLOW);
    assert_int_equal(amount_add(INT64_MIN, -1, &out), VALID_E_OVERFLOW);
    assert_true(out == UNTOUCHED);
}

static void test_sub_ok(void **state)
{
    (void)state;
    int64_t out = UNTOUCHED;
    assert_int_equal(amount_sub(100, 250, &out), VALID_OK);
    assert_true(out == -150);
    assert_int_equal(amount_sub(INT64_MIN + 1, 1, &out), VALID_OK);
    assert_true(out == INT64_MIN);
}

static void test_sub_overflow(void **state)
{
    (void)state;
    int64_t out = UNTOUCHED;
    assert_int_equal(amount_sub(INT64_MIN, 1, &out), VALID_E_OVERFLOW);
    assert_int_equal(amount_sub(0, INT64_MIN, &out), VALID_E_OVERFLOW);
    assert_int_equal(amount_sub(INT64_MAX, -1, &out), VALID_E_OVERFLOW);
    assert_true(out == UNTOUCHED);
}

static void test_check_range(void **state)
{
    (void)state;
    assert_int_equal(amount_check(1), VALID_OK);
    assert_int_equal(amount_check(CORRIDOR_AMOUNT_MINOR_MAX), VALID_OK);
}

static void test_check_zero(void **state)
{
    (void)state;
    assert_int_equal(amount_check(0), VALID_E_ZERO);
}

static void test_check_negative(void **state)
{
    (void)state;
    assert_int_equal(amount_check(-1), VALID_E_NEGATIVE);
    assert_int_equal(amount_check(INT64_MIN), VALID_E_NEGATIVE);
}

static void test_check_too_large(void **state)
{
    (void)state;
    assert_int_equal(amount_check(CORRIDOR_AMOUNT_MINOR_MAX + 1), VALID_E_TOO_LARGE);
    assert_int_equal(amount_check(INT64_MAX), VALID_E_TOO_LARGE);
}

/* ---- node codes ---- */

static void test_node_code_valid(void **state)
{
    (void)state;
    assert_int_equal(node_code_check("BANK"), VALID_OK);
    assert_int_equal(node_code_check("SBERRUMM"), VALID_OK);
    assert_int_equal(node_code_check("A1B2C3D4E5F"), VALID_OK);
}

static void test_node_code_empty(void **state)
{
    (void)state;
    assert_int_equal(node_code_check(""), VALID_E_EMPTY);
}

static void test_node_code_too_long(void **state)
{
    (void)state;
    assert_int_equal(node_code_check("ABCDEFGHIJKL"), VALID_E_TOO_LONG);
}

static void test_node_code_too_short(void **state)
{
    (void)state;
    assert_int_equal(node_code_check("ABC"), VALID_E_SYNTAX);
}

static void test_node_code_lowercase(void **state)
{
    (void)state;
    assert_int_equal(node_code_check("bank"), VALID_E_BAD_CHAR);
    assert_int_equal(node_code_check("BANk"), VALID_E_BAD_CHAR);
}

static void test_node_code_digit_first(void **state)
{
    (void)state;
    assert_int_equal(node_code_check("1BANK"), VALID_E_BAD_CHAR);
}

static void test_node_code_punctuation(void **state)
{
    (void)state;
    assert_int_equal(node_code_check("BA-NK"), VALID_E_BAD_CHAR);
    assert_int_equal(node_code_check("BANK "), VALID_E_BAD_CHAR);
    assert_int_equal(node_code_check("BANK\xc3\x89"), VALID_E_BAD_CHAR);
}

/* ---- UETRs ---- */

static const char uetr_good[] = "eb6305c9-1f7f-49de-aed0-16487c27b42d";

static void test_uetr_valid(void **state)
{
    (void)state;
    assert_int_equal(uetr_check(uetr_good), VALID_OK);
    assert_int_equal(uetr_check("00000000-0000-4000-8000-000000000000"), VALID_OK);
    assert_int_equal(uetr_check("ffffffff-ffff-4fff-bfff-ffffffffffff"), VALID_OK);
}

static void test_uetr_uppercase(void **state)
{
    (void)state;
    assert_int_equal(uetr_check("EB6305C9-1F7F-49DE-AED0-16487C27B42D"), VALID_E_SYNTAX);
    assert_int_equal(uetr_check("eb6305c9-1f7f-49de-aed0-16487c27b42D"), VALID_E_SYNTAX);
}

static void test_uetr_wrong_version(void **state)
{
    (void)state;
    assert_int_equal(uetr_check("eb6305c9-1f7f-19de-aed0-16487c27b42d"), VALID_E_UETR_VERSION);
    assert_int_equal(uetr_check("eb6305c9-1f7f-59de-aed0-16487c27b42d"), VALID_E_UETR_VERSION);
}

static void test_uetr_wrong_variant(void **state)
{
    (void)state;
    assert_int_equal(uetr_check("eb6305c9-1f7f-49de-ced0-16487c27b42d"), VALID_E_UETR_VERSION);
    assert_int_equal(uetr_check("eb6305c9-1f7f-49de-7ed0-16487c27b42d"), VALID_E_UETR_VERSION);
}

static void test_uetr_wrong_length(void **state)
{
    (void)state;
    assert_int_equal(uetr_check("eb6305c9-1f7f-49de-aed0-16487c27b42"), VALID_E_SYNTAX);
    assert_int_equal(uetr_check("eb6305c9-1f7f-49de-aed0-16487c27b42d0"), VALID_E_SYNTAX);
    assert_int_equal(uetr_check("eb6305c91f7f49deaed016487c27b42d"), VALID_E_SYNTAX);
}

static void test_uetr_empty(void **state)
{
    (void)state;
    assert_int_equal(uetr_check(""), VALID_E_EMPTY);
}

static void test_uetr_misplaced_hyphen(void **state)
{
    (void)state;
    assert_int_equal(uetr_check("eb6305c-91f7f-49de-aed0-16487c27b42d"), VALID_E_SYNTAX);
    assert_int_equal(uetr_check("eb6305c9-1f7f-49de-aed016487-c27b42d"), VALID_E_SYNTAX);
}

static void test_uetr_not_hex(void **state)
{
    (void)state;
    assert_int_equal(uetr_check("gb6305c9-1f7f-49de-aed0-16487c27b42d"), VALID_E_SYNTAX);
    assert_int_equal(uetr_check("{b6305c9-1f7f-49de-aed0-16487c27b42d"), VALID_E_SYNTAX);
}

#define UETR_SAMPLES 1000

static int compare_uetr(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uetr_generate_valid(void **state)
{
    (void)state;
    for (int i = 0; i < UETR_SAMPLES; i++) {
        char uetr[CORRIDOR_UETR_LEN + 1];
        uetr_generate(uetr);
        assert_int_equal(strlen(uetr), CORRIDOR_UETR_LEN);
        assert_int_equal(uetr_check(uetr), VALID_OK);
    }
}

static void test_uetr_generate_distinct(void **state)
{
    (void)state;
    static char uetrs[UETR_SAMPLES][CORRIDOR_UETR_LEN + 1];
    for (int i = 0; i < UETR_SAMPLES; i++) {
        uetr_generate(uetrs[i]);
    }
    assert_string_not_equal(uetrs[0], uetrs[1]);
    qsort(uetrs, UETR_SAMPLES, sizeof uetrs[0], compare_uetr);
    for (int i = 1; i < UETR_SAMPLES; i++) {
        assert_string_not_equal(uetrs[i - 1], uetrs[i]);
    }
}

/* ---- ISO 20022 text ---- */

static void test_text_empty(void **state)
{
    (void)state;
    assert_int_equal(text_check("", CORRIDOR_PARTY_NAME_LEN_MAX), VALID_OK);
    assert_int_equal(text_check("", 0), VALID_OK);
}

static void test_text_ascii(void **state)
{
    (void)state;
    assert_int_equal(text_check("ACME Trading LLC, invoice #42/7", 140), VALID_OK);
}

static void test_text_multibyte(void **state)
{
    (void)state;
    assert_int_equal(
        text_check("\xd0\x9e\xd0\x9e\xd0\x9e \xc2\xab\xd0\xa0\xd0\xbe\xd0\xb3\xc2\xbb", 140),
        VALID_OK);                                                           /* Cyrillic */
    assert_int_equal(text_check("\xe4\xb8\xad\xe5\x9b\xbd", 140), VALID_OK); /* CJK */
    assert_int_equal(text_check("\xf0\x9f\x92\xb0", 140), VALID_OK);         /* U+1F4B0 */
    assert_int_equal(text_check("\xf4\x8f\xbf\xbf", 140), VALID_OK);         /* U+10FFFF */
    assert_int_equal(text_check("\xef\xbf\xbd", 140), VALID_OK);             /* U+FFFD */
}

static void test_text_overlong(void **state)
{
    (void)state;
    assert_int_equal(text_check("\xc0\x80", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xc1\xbf", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xe0\x80\x80", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xf0\x80\x80\x80", 140), VALID_E_NOT_UTF8);
}

static void test_text_surrogate(void **state)
{
    (void)state;
    assert_int_equal(text_check("\xed\xa0\x80", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xed\xbf\xbf", 140), VALID_E_NOT_UTF8);
}

static void test_text_above_max_code_point(void **state)
{
    (void)state;
    assert_int_equal(text_check("\xf4\x90\x80\x80", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xf5\x80\x80\x80", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xff", 140), VALID_E_NOT_UTF8);
}

static void test_text_truncated(void **state)
{
    (void)state;
    assert_int_equal(text_check("abc\xd0", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xe4\xb8", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xf0\x9f\x92", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("\xe4\xb8x", 140), VALID_E_NOT_UTF8);
}

static void test_text_stray_continuation(void **state)
{
    (void)state;
    assert_int_equal(text_check("\x80", 140), VALID_E_NOT_UTF8);
    assert_int_equal(text_check("a\xbf"
                                "b",
                                140),
                     VALID_E_NOT_UTF8);
}

static void test_text_control_chars(void **state)
{
    (void)state;
    assert_int_equal(text_check("line\nbreak", 140), VALID_E_BAD_CHAR);
    assert_int_equal(text_check("tab\there", 140), VALID_E_BAD_CHAR);
    assert_int_equal(text_check("\x01", 140), VALID_E_BAD_CHAR);
    assert_int_equal(text_check("\x1f", 140), VALID_E_BAD_CHAR);
    assert_int_equal(text_check("\x1b[31m", 140), VALID_E_BAD_CHAR);
}

static void test_text_del(void **state)
{
    (void)state;
    assert_int_equal(text_check("abc\x7f", 140), VALID_E_BAD_CHAR);
}

static void test_text_c1_control(void **state)
{
    (void)state;
    assert_int_equal(text_check("\xc2\x85", 140), VALID_E_BAD_CHAR); /* U+0085 NEL */
    assert_int_equal(text_check("\xc2\x9b", 140), VALID_E_BAD_CHAR); /* U+009B CSI */
    assert_int_equal(text_check("\xc2\xa0", 140), VALID_OK);         /* U+00A0 is not one */
}

static void test_text_exactly_max(void **state)
{
    (void)state;
    char text[CORRIDOR_E2E_ID_LEN_MAX + 1];
    memset(text, 'a', CORRIDOR_E2E_ID_LEN_MAX);
    text[CORRIDOR_E2E_ID_LEN_MAX] = '\0';
    assert_int_equal(text_check(text, CORRIDOR_E2E_ID_LEN_MAX), VALID_OK);
}

static void test_text_max_plus_one(void **state)
{
    (void)state;
    char text[CORRIDOR_E2E_ID_LEN_MAX + 2];
    memset(text, 'a', CORRIDOR_E2E_ID_LEN_MAX + 1);
    text[CORRIDOR_E2E_ID_LEN_MAX + 1] = '\0';
    assert_int_equal(text_check(text, CORRIDOR_E2E_ID_LEN_MAX), VALID_E_TOO_LONG);
}

static void test_text_limit_counts_bytes(void **state)
{
    (void)state;
    /* Six Cyrillic letters are twelve bytes. */
    const char *text = "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82";
    assert_int_equal(text_check(text, 12), VALID_OK);
    assert_int_equal(text_check(text, 11), VALID_E_TOO_LONG);
}

/* ---- reason codes ---- */

static void test_reason_valid(void **state)
{
    (void)state;
    assert_int_equal(reason_code_check("AM02"), VALID_OK);
    assert_int_equal(reason_code_check("AC01"), VALID_OK);
    assert_int_equal(reason_code_check("DUPL"), VALID_OK);
}

static void test_reason_empty(void **state)
{
    (void)state;
    assert_int_equal(reason_code_check(""), VALID_E_EMPTY);
}

static void test_reason_wrong_length(void **state)
{
    (void)state;
    assert_int_equal(reason_code_check("AM0"), VALID_E_SYNTAX);
    assert_int_equal(reason_code_check("AM023"), VALID_E_TOO_LONG);
}

static void test_reason_bad_char(void **state)
{
    (void)state;
    assert_int_equal(reason_code_check("am02"), VALID_E_BAD_CHAR);
    assert_int_equal(reason_code_check("AM-2"), VALID_E_BAD_CHAR);
    assert_int_equal(reason_code_check("AM0 "), VALID_E_BAD_CHAR);
}

/* ---- valid_strerror ---- */

static void test_strerror_distinct(void **state)
{
    (void)state;
    const char *seen[VALID_E_OVERFLOW + 1];
    for (int e = VALID_OK; e <= VALID_E_OVERFLOW; e++) {
        const char *text = valid_strerror((valid_err_t)e);
        assert_non_null(text);
        assert_true(text[0] != '\0');
        assert_string_not_equal(text, "unknown error");
        for (int j = 0; j < e; j++) {
            assert_string_not_equal(text, seen[j]);
        }
        seen[e] = text;
    }
}

static void test_strerror_decimals(void **state)
{
    (void)state;
    assert_string_equal(valid_strerror(VALID_E_DECIMALS), "more decimals than the currency allows");
}

static void test_strerror_unknown(void **state)
{
    (void)state;
    assert_string_equal(valid_strerror((valid_err_t)(VALID_E_OVERFLOW + 1)), "unknown error");
    assert_string_equal(valid_strerror((valid_err_t)-1), "unknown error");
}

/* A position a peer states is compared as a mirror without negating it: INT64_MIN (whose
 * negation is undefined) is simply not a mirror of anything. */
static void test_position_mirrors(void **state)
{
    (void)state;
    assert_true(position_mirrors(0, 0));
    assert_true(position_mirrors(-1250, 1250));
    assert_true(position_mirrors(INT64_MAX, -INT64_MAX));
    assert_false(position_mirrors(1250, 1250));
    assert_false(position_mirrors(INT64_MIN, INT64_MIN));
    assert_false(position_mirrors(INT64_MAX, INT64_MIN));
    assert_false(position_mirrors(0, INT64_MIN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_currency_exponents),
        cmocka_unit_test(test_currency_unknown),
        cmocka_unit_test(test_currency_lowercase),
        cmocka_unit_test(test_currency_wrong_length),
        cmocka_unit_test(test_parse_integer),
        cmocka_unit_test(test_parse_two_decimals),
        cmocka_unit_test(test_parse_one_decimal),
        cmocka_unit_test(test_parse_leading_zeros),
        cmocka_unit_test(test_parse_jpy_integer),
        cmocka_unit_test(test_parse_kwd_three_decimals),
        cmocka_unit_test(test_parse_max_accepted),
        cmocka_unit_test(test_parse_zero_allowed),
        cmocka_unit_test(test_parse_zero_rejected),
        cmocka_unit_test(test_parse_zero_decimals_rejected),
        cmocka_unit_test(test_parse_negative),
        cmocka_unit_test(test_parse_too_many_decimals_rub),
        cmocka_unit_test(test_parse_decimals_jpy),
        cmocka_unit_test(test_parse_too_many_decimals_kwd),
        cmocka_unit_test(test_parse_int64_overflow),
        cmocka_unit_test(test_parse_very_long),
        cmocka_unit_test(test_parse_max_plus_one),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_leading_space),
        cmocka_unit_test(test_parse_trailing_space),
        cmocka_unit_test(test_parse_inner_space),
        cmocka_unit_test(test_parse_exponent_notation),
        cmocka_unit_test(test_parse_plus),
        cmocka_unit_test(test_parse_leading_dot),
        cmocka_unit_test(test_parse_trailing_dot),
        cmocka_unit_test(test_parse_thousands_separator),
        cmocka_unit_test(test_parse_two_points),
        cmocka_unit_test(test_parse_letters),
        cmocka_unit_test(test_format_two_decimals),
        cmocka_unit_test(test_format_small_negative),
        cmocka_unit_test(test_format_zero_exponent),
        cmocka_unit_test(test_format_three_decimals),
        cmocka_unit_test(test_format_zero),
        cmocka_unit_test(test_format_int64_min),
        cmocka_unit_test(test_format_int64_max),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_add_ok),
        cmocka_unit_test(test_add_overflow),
        cmocka_unit_test(test_sub_ok),
        cmocka_unit_test(test_sub_overflow),
        cmocka_unit_test(test_check_range),
        cmocka_unit_test(test_check_zero),
        cmocka_unit_test(test_check_negative),
        cmocka_unit_test(test_check_too_large),
        cmocka_unit_test(test_node_code_valid),
        cmocka_unit_test(test_node_code_empty),
        cmocka_unit_test(test_node_code_too_long),
        cmocka_unit_test(test_node_code_too_short),
        cmocka_unit_test(test_node_code_lowercase),
        cmocka_unit_test(test_node_code_digit_first),
        cmocka_unit_test(test_node_code_punctuation),
        cmocka_unit_test(test_uetr_valid),
        cmocka_unit_test(test_uetr_uppercase),
        cmocka_unit_test(test_uetr_wrong_version),
        cmocka_unit_test(test_uetr_wrong_variant),
        cmocka_unit_test(test_uetr_wrong_length),
        cmocka_unit_test(test_uetr_empty),
        cmocka_unit_test(test_uetr_misplaced_hyphen),
        cmocka_unit_test(test_uetr_not_hex),
        cmocka_unit_test(test_uetr_generate_valid),
        cmocka_unit_test(test_uetr_generate_distinct),
        cmocka_unit_test(test_text_empty),
        cmocka_unit_test(test_text_ascii),
        cmocka_unit_test(test_text_multibyte),
        cmocka_unit_test(test_text_overlong),
        cmocka_unit_test(test_text_surrogate),
        cmocka_unit_test(test_text_above_max_code_point),
        cmocka_unit_test(test_text_truncated),
        cmocka_unit_test(test_text_stray_continuation),
        cmocka_unit_test(test_text_control_chars),
        cmocka_unit_test(test_text_del),
        cmocka_unit_test(test_text_c1_control),
        cmocka_unit_test(test_text_exactly_max),
        cmocka_unit_test(test_text_max_plus_one),
        cmocka_unit_test(test_text_limit_counts_bytes),
        cmocka_unit_test(test_reason_valid),
        cmocka_unit_test(test_reason_empty),
        cmocka_unit_test(test_reason_wrong_length),
        cmocka_unit_test(test_reason_bad_char),
        cmocka_unit_test(test_strerror_distinct),
        cmocka_unit_test(test_strerror_decimals),
        cmocka_unit_test(test_strerror_unknown),
        cmocka_unit_test(test_position_mirrors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
