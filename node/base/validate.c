/*
 * Validation of amounts, currencies, node codes, UETRs and ISO 20022 text.
 *
 * Everything here judges input that a user or a peer controls, so nothing asserts on the
 * content of that input: malformed text yields a valid_err_t. Asserts guard only the
 * caller's side of the contract (non-NULL pointers, sane buffer sizes). Amounts are parsed
 * digit by digit with the bound checked before each multiplication, so input of any length
 * cannot overflow int64. Text is checked as strict UTF-8 (Unicode table 3-7: no overlongs,
 * no surrogates, nothing above U+10FFFF).
 */
#include "validate.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

/* Largest exponent amount_format accepts: 10^19 is the largest power of ten in a uint64_t,
 * and "-0." followed by 19 digits still fits in 32 bytes. */
#define EXPONENT_MAX 19

/* Scratch space for a formatted amount: sign, up to 20 digits, point, NUL, with slack. */
#define FORMAT_BYTES 32

/* ISO 4217 currencies with their minor-unit exponents, sorted by code for binary search. */
static const currency_t currencies[] = {
    {"AED", 2}, {"AFN", 2}, {"AMD", 2}, {"AZN", 2}, {"BHD", 3}, {"BRL", 2}, {"BYN", 2}, {"CHF", 2},
    {"CLP", 0}, {"CNY", 2}, {"EGP", 2}, {"EUR", 2}, {"GBP", 2}, {"GEL", 2}, {"HKD", 2}, {"IDR", 2},
    {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KGS", 2}, {"KRW", 0},
    {"KWD", 3}, {"KZT", 2}, {"LYD", 3}, {"MNT", 2}, {"MYR", 2}, {"OMR", 3}, {"PKR", 2}, {"QAR", 2},
    {"RUB", 2}, {"SAR", 2}, {"SGD", 2}, {"TJS", 2}, {"TMT", 2}, {"TND", 3}, {"TRY", 2}, {"USD", 2},
    {"UZS", 2}, {"VND", 0}, {"ZAR", 2},
};

_Static_assert(sizeof currencies / sizeof currencies[0] > 0, "currency table is empty");
_Static_assert(CORRIDOR_AMOUNT_MINOR_MAX > 0 && CORRIDOR_AMOUNT_MINOR_MAX < INT64_MAX / 10,
               "amount_parse relies on headroom below INT64_MAX");
_Static_assert(CORRIDOR_UETR_LEN == 36, "UETR is the 8-4-4-4-12 UUID form");

const char *valid_strerror(valid_err_t err)
{
    switch (err) {
    case VALID_OK:
        return "ok";
    case VALID_E_EMPTY:
        return "empty";
    case VALID_E_SYNTAX:
        return "malformed";
    case VALID_E_NEGATIVE:
        return "negative amount";
    case VALID_E_ZERO:
        return "zero where a positive amount is required";
    case VALID_E_DECIMALS:
        return "more decimals than the currency allows";
    case VALID_E_TOO_LARGE:
        return "amount too large";
    case VALID_E_UNKNOWN_CURRENCY:
        return "unknown currency";
    case VALID_E_TOO_LONG:
        return "too long";
    case VALID_E_BAD_CHAR:
        return "character not allowed";
    case VALID_E_NOT_UTF8:
        return "not valid utf-8";
    case VALID_E_UETR_VERSION:
        return "uetr is not a version 4 uuid";
    case VALID_E_OVERFLOW:
        return "amount arithmetic overflow";
    default:
        return "unknown error";
    }
}

/* Length of s, but stops counting at limit + 1 so hostile input is never scanned far. */
static size_t length_bounded(const char *s, size_t limit)
{
    assert(s != NULL);
    size_t len = 0;
    while (len <= limit && s[len] != '\0') {
        len++;
    }
    return len;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

const currency_t *currency_find(const char *code)
{
    assert(code != NULL);
    if (length_bounded(code, CORRIDOR_CURRENCY_LEN) != CORRIDOR_CURRENCY_LEN) {
        return NULL;
    }
    size_t lo = 0;
    size_t hi = sizeof currencies / sizeof currencies[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(code, currencies[mid].code, CORRIDOR_CURRENCY_LEN);
        if (cmp == 0) {
            return &currencies[mid];
        }
        if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

/* Appends one decimal digit to *value, refusing to exceed CORRIDOR_AMOUNT_MINOR_MAX. */
static valid_err_t amount_push_digit(int64_t *value, int digit)
{
    assert(value != NULL && *value >= 0);
    assert(digit >= 0 && digit <= 9);
    if (*value > (CORRIDOR_AMOUNT_MINOR_MAX - digit) / 10) {
        return VALID_E_TOO_LARGE;
    }
    *value = *value * 10 + digit;
    return VALID_OK;
}

/* Checks the form digits[.digits] and reports where the integer and fraction parts end. */
static valid_err_t amount_syntax(const char *text, size_t *int_len, size_t *frac_len)
{
    size_t i = 0;
    while (is_digit(text[i])) {
        i++;
    }
    if (i == 0) {
        return VALID_E_SYNTAX; /* "+1", " 1", ".5", "x" */
    }
    *int_len = i;
    *frac_len = 0;
    if (text[i] == '\0') {
        return VALID_OK;
    }
    if (text[i] != '.') {
        return VALID_E_SYNTAX; /* "1e5", "1,000", "1 " */
    }
    i++;
    size_t start = i;
    while (is_digit(text[i])) {
        i++;
    }
    if (i == start || text[i] != '\0') {
        return VALID_E_SYNTAX; /* "1.", "1.5x" */
    }
    *frac_len = i - start;
    return VALID_OK;
}

valid_err_t amount_parse(const char *text, const currency_t *currency, bool allow_zero,
                         int64_t *minor)
{
    assert(text != NULL && currency != NULL && minor != NULL);
    assert(currency->exponent <= EXPONENT_MAX);
    if (text[0] == '\0') {
        return VALID_E_EMPTY;
    }
    if (text[0] == '-') {
        return VALID_E_NEGATIVE;
    }
    size_t int_len = 0;
    size_t frac_len = 0;
    valid_err_t err = amount_syntax(text, &int_len, &frac_len);
    if (err != VALID_OK) {
        return err;
    }
    if (frac_len > currency->exponent) {
        return VALID_E_DECIMALS;
    }
    int64_t value = 0;
    size_t digits = int_len + (frac_len > 0 ? 1 + frac_len : 0);
    for (size_t i = 0; i < digits && err == VALID_OK; i++) {
        if (text[i] != '.') {
            err = amount_push_digit(&value, text[i] - '0');
        }
    }
    for (size_t i = frac_len; i < currency->exponent && err == VALID_OK; i++) {
        err = amount_push_digit(&value, 0);
    }
    if (err != VALID_OK) {
        return err;
    }
    if (value == 0 && !allow_zero) {
        return VALID_E_ZERO;
    }
    assert(value >= 0 && value <= CORRIDOR_AMOUNT_MINOR_MAX);
    *minor = value;
    return VALID_OK;
}

size_t amount_format(int64_t minor, uint8_t exponent, char *out, size_t out_size)
{
    assert(out != NULL && out_size > 0);
    assert(exponent <= EXPONENT_MAX);
    /* The magnitude in uint64_t: negating in unsigned arithmetic is defined for INT64_MIN. */
    uint64_t magnitude = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    char digits[FORMAT_BYTES]; /* least significant first */
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0 || count <= exponent);

    char text[FORMAT_BYTES];
    size_t len = 0;
    if (minor < 0) {
        text[len++] = '-';
    }
    while (count > 0) {
        if (count == exponent && exponent > 0) {
            text[len++] = '.';
        }
        text[len++] = digits[--count];
    }
    assert(len < sizeof text);
    assert(len < out_size); /* 32 bytes always suffice; anything less is the caller's bug */
    if (len >= out_size) {
        len = out_size - 1;
    }
    memcpy(out, text, len);
    out[len] = '\0';
    return len;
}

valid_err_t amount_add(int64_t a, int64_t b, int64_t *out)
{
    assert(out != NULL);
    int64_t sum;
    if (__builtin_add_overflow(a, b, &sum)) {
        return VALID_E_OVERFLOW;
    }
    *out = sum;
    return VALID_OK;
}

valid_err_t amount_sub(int64_t a, int64_t b, int64_t *out)
{
    assert(out != NULL);
    int64_t difference;
    if (__builtin_sub_overflow(a, b, &difference)) {
        return VALID_E_OVERFLOW;
    }
    *out = difference;
    return VALID_OK;
}

bool position_mirrors(int64_t ours, int64_t theirs)
{
    return theirs != INT64_MIN && ours == -theirs;
}

valid_err_t amount_check(int64_t minor)
{
    if (minor < 0) {
        return VALID_E_NEGATIVE;
    }
    if (minor == 0) {
        return VALID_E_ZERO;
    }
    if (minor > CORRIDOR_AMOUNT_MINOR_MAX) {
        return VALID_E_TOO_LARGE;
    }
    return VALID_OK;
}

valid_err_t node_code_check(const char *code)
{
    assert(code != NULL);
    size_t len = length_bounded(code, CORRIDOR_NAME_LEN_MAX);
    if (len == 0) {
        return VALID_E_EMPTY;
    }
    if (len > CORRIDOR_NAME_LEN_MAX) {
        return VALID_E_TOO_LONG;
    }
    if (len < CORRIDOR_NAME_LEN_MIN) {
        return VALID_E_SYNTAX;
    }
    if (!is_upper(code[0])) {
        return VALID_E_BAD_CHAR;
    }
    for (size_t i = 1; i < len; i++) {
        if (!is_upper(code[i]) && !is_digit(code[i])) {
            return VALID_E_BAD_CHAR;
        }
    }
    return VALID_OK;
}

static bool uetr_is_hyphen_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

valid_err_t uetr_check(const char *text)
{
    assert(text != NULL);
    size_t len = length_bounded(text, CORRIDOR_UETR_LEN);
    if (len == 0) {
        return VALID_E_EMPTY;
    }
    if (len != CORRIDOR_UETR_LEN) {
        return VALID_E_SYNTAX;
    }
    for (size_t i = 0; i < len; i++) {
        bool ok = uetr_is_hyphen_position(i) ? text[i] == '-' : is_lower_hex(text[i]);
        if (!ok) {
            return VALID_E_SYNTAX; /* includes upper-case hex: ISO's pattern is lower case */
        }
    }
    if (text[14] != '4') {
        return VALID_E_UETR_VERSION;
    }
    char variant = text[19];
    if (variant != '8' && variant != '9' && variant != 'a' && variant != 'b') {
        return VALID_E_UETR_VERSION;
    }
    return VALID_OK;
}

void uetr_generate(char out[static CORRIDOR_UETR_LEN + 1])
{
    assert(out != NULL);
    static const char hex[] = "0123456789abcdef";
    uint8_t bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t pos = 0;
    for (size_t i = 0; i < sizeof bytes; i++) {
        if (uetr_is_hyphen_position(pos)) {
            out[pos++] = '-';
        }
        out[pos++] = hex[bytes[i] >> 4];
        out[pos++] = hex[bytes[i] & 0x0f];
    }
    out[pos] = '\0';
    assert(pos == CORRIDOR_UETR_LEN);
    assert(uetr_check(out) == VALID_OK);
}

/* Continuation byte 10xxxxxx within [lo, hi] (the first one is narrowed by the lead byte). */
static bool utf8_cont(unsigned char c, unsigned char lo, unsigned char hi)
{
    return c >= lo && c <= hi;
}

/* Decodes one strict UTF-8 sequence from s (avail bytes left); returns its length, or 0 if
 * malformed, and the code point in *cp. Ranges follow Unicode table 3-7. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        *cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        *cp = b & 0x0Fu;
        lo = b == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
        hi = b == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be a surrogate */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        *cp = b & 0x07u;
        lo = b == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
        hi = b == 0xF4 ? 0x8F : 0xBF; /* F4 90.. would exceed U+10FFFF */
    } else {
        return 0; /* stray continuation, C0/C1 overlong lead, or F5..FF */
    }
    if (n > avail) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (!utf8_cont(s[i], i == 1 ? lo : 0x80, i == 1 ? hi : 0xBF)) {
            return 0;
        }
        *cp = (*cp << 6) | (s[i] & 0x3Fu);
    }
    return n;
}

/* C0 controls, DEL and C1 controls: Unicode general category Cc. */
static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

valid_err_t text_check(const char *text, size_t max_len)
{
    assert(text != NULL);
    size_t len = length_bounded(text, max_len);
    if (len > max_len) {
        return VALID_E_TOO_LONG;
    }
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            return VALID_E_NOT_UTF8;
        }
        if (is_control(cp)) {
            return VALID_E_BAD_CHAR;
        }
        i += n;
    }
    assert(i == len);
    return VALID_OK;
}

valid_err_t reason_code_check(const char *code)
{
    assert(code != NULL);
    size_t len = length_bounded(code, CORRIDOR_REASON_LEN_MAX);
    if (len == 0) {
        return VALID_E_EMPTY;
    }
    if (len > CORRIDOR_REASON_LEN_MAX) {
        return VALID_E_TOO_LONG;
    }
    if (len < CORRIDOR_REASON_LEN_MAX) {
        return VALID_E_SYNTAX;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_upper(code[i]) && !is_digit(code[i])) {
            return VALID_E_BAD_CHAR;
        }
    }
    return VALID_OK;
}
