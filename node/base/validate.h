/*
 * Validation of everything that names or measures a payment: amounts, currencies, node
 * codes, UETRs and ISO 20022 text fields.
 *
 * Pure functions: no I/O, no allocation, no clock. Amounts are int64 minor units of the
 * currency's ISO 4217 exponent everywhere inside Corridor; only the command line speaks
 * decimals, and it converts them here. Every function that can fail on outside input
 * returns a valid_err_t, described by valid_strerror().
 */
#ifndef CORRIDOR_VALIDATE_H
#define CORRIDOR_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor/limits.h"

typedef enum {
    VALID_OK = 0,
    VALID_E_EMPTY,            /* nothing given */
    VALID_E_SYNTAX,           /* not of the expected form */
    VALID_E_NEGATIVE,         /* a sign where none is allowed */
    VALID_E_ZERO,             /* zero where a positive amount is required */
    VALID_E_DECIMALS,         /* more decimals than the currency's exponent */
    VALID_E_TOO_LARGE,        /* above CORRIDOR_AMOUNT_MINOR_MAX (or int64 overflow) */
    VALID_E_UNKNOWN_CURRENCY, /* not in the ISO 4217 table */
    VALID_E_TOO_LONG,         /* text longer than its limit */
    VALID_E_BAD_CHAR,         /* a character the field does not allow */
    VALID_E_NOT_UTF8,         /* text that is not valid UTF-8 */
    VALID_E_UETR_VERSION,     /* a UUID, but not version 4 / RFC 4122 variant */
    VALID_E_OVERFLOW,         /* arithmetic on amounts left the int64 range */
} valid_err_t;

/* A human-readable sentence fragment for an error, e.g. "more decimals than the currency allows".
 */
const char *valid_strerror(valid_err_t err);

/* An ISO 4217 currency Corridor knows. */
typedef struct {
    char code[CORRIDOR_CURRENCY_LEN + 1]; /* alphabetic code, e.g. "RUB" */
    uint8_t exponent;                     /* minor unit digits: 2 for RUB, 0 for JPY, 3 for KWD */
} currency_t;

/* Looks up a currency by its three-letter upper-case code; NULL if unknown. */
const currency_t *currency_find(const char *code);

/* Parses a decimal amount such as "1234.56" into minor units of `currency`.
 * Accepts only digits with an optional '.' followed by 1..exponent digits: no sign, no
 * spaces, no exponent notation, no thousands separators. Zero is accepted only when
 * allow_zero is true (caps may be zero; settlements may not). The result is at most
 * CORRIDOR_AMOUNT_MINOR_MAX. *minor is written only on success. */
valid_err_t amount_parse(const char *text, const currency_t *currency, bool allow_zero,
                         int64_t *minor);

/* Writes minor units as a decimal with exactly `exponent` decimals ("1234.56", "-0.05", "7").
 * out_size of 32 always suffices. Returns the length written. */
size_t amount_format(int64_t minor, uint8_t exponent, char *out, size_t out_size);

/* Overflow-checked arithmetic on amounts: VALID_E_OVERFLOW and *out untouched on overflow. */
valid_err_t amount_add(int64_t a, int64_t b, int64_t *out);
valid_err_t amount_sub(int64_t a, int64_t b, int64_t *out);

/* Whether `theirs`, a position a peer states towards us, is the mirror of `ours` (ours ==
 * -theirs), without negating INT64_MIN: a peer's number never reaches undefined arithmetic. */
bool position_mirrors(int64_t ours, int64_t theirs);

/* A settlement amount: 0 < minor <= CORRIDOR_AMOUNT_MINOR_MAX. */
valid_err_t amount_check(int64_t minor);

/* Node code: CORRIDOR_NAME_LEN_MIN..MAX characters of A-Z and 0-9, first a letter. */
valid_err_t node_code_check(const char *code);

/* UETR: a UUIDv4 in canonical lower-case form, xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx. */
valid_err_t uetr_check(const char *text);

/* Writes a fresh random UETR (libsodium's randombytes) and a terminating NUL. */
void uetr_generate(char out[static CORRIDOR_UETR_LEN + 1]);

/* ISO 20022 free text: valid UTF-8, no control characters, at most max_len bytes.
 * Empty text is allowed (optional fields). */
valid_err_t text_check(const char *text, size_t max_len);

/* ISO external reason code: exactly 4 characters A-Z0-9 (e.g. "AM02"). */
valid_err_t reason_code_check(const char *code);

#endif
