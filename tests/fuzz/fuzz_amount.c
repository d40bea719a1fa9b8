/*
 * Fuzzes the validators of payment fields: amounts, currencies, node codes, UETRs, reason
 * codes and ISO 20022 text. They judge what users type and what peers send, so no text may
 * crash them, and an amount must mean one thing: amount_parse(amount_format(x)) == x.
 *
 * Input "CCY:amount-text": when CCY is a known currency, the amount text is parsed with and
 * without allow_zero, and a parsed amount is formatted and parsed back. The last 8 bytes
 * are also read as an int64 and formatted in that currency (including negative and
 * out-of-range values). The whole input, as text, goes through every other validator.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Enough for any formatted amount (amount_format promises 32 suffice). */
#define AMOUNT_TEXT_BYTES 32

static void check_amount_text(const char *text, const currency_t *c)
{
    int64_t minor = -1;
    int64_t minor_zero_ok = -1;
    valid_err_t rc = amount_parse(text, c, false, &minor);
    valid_err_t rc_zero_ok = amount_parse(text, c, true, &minor_zero_ok);
    assert(valid_strerror(rc) != NULL && valid_strerror(rc_zero_ok) != NULL);
    if (rc == VALID_OK) {
        /* Positive amounts do not depend on allow_zero. */
        assert(rc_zero_ok == VALID_OK && minor_zero_ok == minor);
        assert(amount_check(minor) == VALID_OK);
    } else if (rc == VALID_E_ZERO) {
        assert(rc_zero_ok == VALID_OK && minor_zero_ok == 0);
        assert(minor == -1); /* untouched on error */
    } else {
        assert(rc_zero_ok == rc && minor == -1 && minor_zero_ok == -1);
    }
    if (rc_zero_ok != VALID_OK) {
        return;
    }
    assert(minor_zero_ok >= 0 && minor_zero_ok <= CORRIDOR_AMOUNT_MINOR_MAX);
    char out[AMOUNT_TEXT_BYTES];
    size_t len = amount_format(minor_zero_ok, c->exponent, out, sizeof out);
    assert(len > 0 && len == strlen(out));
    int64_t back = -1;
    assert(amount_parse(out, c, true, &back) == VALID_OK);
    assert(back == minor_zero_ok);
}

/* Formats an arbitrary int64 in currency c; values a settlement may carry parse back. */
static void check_format(int64_t minor, const currency_t *c)
{
    char out[AMOUNT_TEXT_BYTES];
    size_t len = amount_format(minor, c->exponent, out, sizeof out);
    assert(len > 0 && len == strlen(out));
    int64_t back = -1;
    valid_err_t rc = amount_parse(out, c, true, &back);
    if (minor < 0) {
        assert(out[0] == '-' && rc == VALID_E_NEGATIVE);
    } else if (minor <= CORRIDOR_AMOUNT_MINOR_MAX) {
        assert(rc == VALID_OK && back == minor);
    } else {
        assert(rc == VALID_E_TOO_LARGE);
    }
    int64_t sum = 0;
    int64_t expected = 0;
    bool overflow = __builtin_add_overflow(minor, CORRIDOR_AMOUNT_MINOR_MAX, &expected);
    assert((amount_add(minor, CORRIDOR_AMOUNT_MINOR_MAX, &sum) == VALID_OK) == !overflow);
    assert(overflow || sum == expected);
    overflow = __builtin_sub_overflow(minor, CORRIDOR_AMOUNT_MINOR_MAX, &expected);
    assert((amount_sub(minor, CORRIDOR_AMOUNT_MINOR_MAX, &sum) == VALID_OK) == !overflow);
    assert(overflow || sum == expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    assert(text != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }
    text[size] = '\0';

    /* Every validator on the whole input: none may crash or read past the NUL. */
    static const size_t text_limits[] = {0, CORRIDOR_REASON_LEN_MAX, CORRIDOR_E2E_ID_LEN_MAX,
                                         CORRIDOR_PARTY_NAME_LEN_MAX, SIZE_MAX};
    for (size_t i = 0; i < sizeof text_limits / sizeof text_limits[0]; i++) {
        size_t limit = text_limits[i] == SIZE_MAX ? size : text_limits[i];
        valid_err_t rc = text_check(text, limit);
        assert(rc == VALID_OK || rc == VALID_E_TOO_LONG || rc == VALID_E_NOT_UTF8 ||
               rc == VALID_E_BAD_CHAR);
        assert(rc != VALID_E_TOO_LONG || strlen(text) > limit);
    }
    valid_err_t rc = uetr_check(text);
    assert(rc != VALID_OK || strlen(text) == CORRIDOR_UETR_LEN);
    rc = node_code_check(text);
    assert(rc != VALID_OK ||
           (strlen(text) >= CORRIDOR_NAME_LEN_MIN && strlen(text) <= CORRIDOR_NAME_LEN_MAX));
    rc = reason_code_check(text);
    assert(rc != VALID_OK || strlen(text) == CORRIDOR_REASON_LEN_MAX);
    const currency_t *whole = currency_find(text);
    assert(whole == NULL || strcmp(whole->code, text) == 0);

    /* "CCY:amount-text". */
    char *colon = strchr(text, ':');
    if (colon != NULL) {
        *colon = '\0';
        const currency_t *c = currency_find(text);
        if (c != NULL) {
            assert(strcmp(c->code, text) == 0);
            check_amount_text(colon + 1, c);
            if (size >= 8) {
                int64_t minor = 0;
                memcpy(&minor, data + size - 8, sizeof minor);
                check_format(minor, c);
            }
        }
    }
    free(text);
    return 0;
}
