/*
 * Unit tests for node/message/settlement.c: the pacs.008 settlement as the node validates,
 * hashes, encodes and decodes it (proto/PROTOCOL.md 3.2, 3.7.1, 3.7.2).
 *
 * The payee refuses a bad payment with the ISO reason settlement_check gives, so each bad field
 * must map to its code, in the order the specification fixes. The decoder reads a peer's bytes:
 * garbage or a truncated body must come back as a refusal, never a crash or a half-filled
 * settlement that passes. The content hash decides whether a re-sent UETR is the same payment
 * (an idempotent repeat) or another one (DUPL), so it must change with every field it covers
 * and with none it leaves out; the body hash binds a StatusReport to the exact bytes the payer
 * signed, so both sides must compute it alike.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "corridor.pb-c.h"
#include "settlement.h"

#define PEER       "BMJIIRTH"
#define UETR       "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7c"
#define CREATED_MS INT64_C(1700000000000)

/* ---- helpers -------------------------------------------------------------------------------- */

static settlement_t valid_settlement(void)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "%s", PEER);
    s.direction = DIRECTION_OUT;
    snprintf(s.uetr, sizeof s.uetr, "%s", UETR);
    snprintf(s.end_to_end_id, sizeof s.end_to_end_id, "E2E-17");
    s.amount_minor = 125000;
    snprintf(s.currency, sizeof s.currency, "RUB");
    snprintf(s.value_date, sizeof s.value_date, "2024-03-01");
    snprintf(s.debtor_name, sizeof s.debtor_name, "OOO Romashka");
    snprintf(s.debtor_account, sizeof s.debtor_account, "40702810900000000001");
    snprintf(s.creditor_name, sizeof s.creditor_name, "Pars Trading Co");
    snprintf(s.creditor_account, sizeof s.creditor_account, "IR820540102680020817909002");
    snprintf(s.remittance, sizeof s.remittance, "invoice 17");
    s.created_unix_ms = CREATED_MS;
    return s;
}

static void assert_settlement_equal(const settlement_t *a, const settlement_t *b)
{
    assert_string_equal(a->peer, b->peer);
    assert_int_equal(a->direction, b->direction);
    assert_string_equal(a->uetr, b->uetr);
    assert_string_equal(a->end_to_end_id, b->end_to_end_id);
    assert_int_equal(a->amount_minor, b->amount_minor);
    assert_string_equal(a->currency, b->currency);
    assert_string_equal(a->value_date, b->value_date);
    assert_string_equal(a->debtor_name, b->debtor_name);
    assert_string_equal(a->debtor_account, b->debtor_account);
    assert_string_equal(a->creditor_name, b->creditor_name);
    assert_string_equal(a->creditor_account, b->creditor_account);
    assert_string_equal(a->remittance, b->remittance);
    assert_int_equal(a->created_unix_ms, b->created_unix_ms);
}

/* Writes n copies of c and a NUL into dst (which holds at least n + 1 bytes). */
static void fill(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
}

/* Packs a hand-built protobuf Settlement (for bodies settlement_encode would never write). */
static uint8_t *pack(const Corridor__Settlement *msg, size_t *len)
{
    *len = corridor__settlement__get_packed_size(msg);
    uint8_t *out = malloc(*len > 0 ? *len : 1);
    assert_non_null(out);
    assert_int_equal(corridor__settlement__pack(msg, out), *len);
    return out;
}

/* ---- settlement_check ----------------------------------------------------------------------- */

static void test_check_accepts_valid(void **state)
{
    (void)state;
    settlement_t s = valid_settlement();
    assert_int_equal(settlement_check(&s), REASON_NONE);
    s.direction = DIRECTION_IN;
    assert_int_equal(settlement_check(&s), REASON_NONE);
}

static void test_check_accepts_optional_fields_empty(void **state)
{
    (void)state;
    settlement_t s = valid_settlement();
    s.end_to_end_id[0] = s.value_date[0] = s.debtor_name[0] = s.debtor_account[0] = '\0';
    s.creditor_name[0] = s.creditor_account[0] = s.remittance[0] = '\0';
    assert_int_equal(settlement_check(&s), REASON_NONE);
}

static void test_check_amount_reasons(void **state)
{
    (void)state;
    static const struct {
        int64_t amount;
        reason_t want;
    } cases[] = {
        {0, REASON_ZERO_AMOUNT},
        {-1, REASON_AMOUNT},
        {INT64_MIN, REASON_AMOUNT},
        {CORRIDOR_AMOUNT_MINOR_MAX + 1, REASON_AMOUNT},
        {INT64_MAX, REASON_AMOUNT},
        {1, REASON_NONE},
        {CORRIDOR_AMOUNT_MINOR_MAX, REASON_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        settlement_t s = valid_settlement();
        s.amount_minor = cases[i].amount;
        if (settlement_check(&s) != cases[i].want) {
            fail_msg("amount %lld: reason %d, expected %d", (long long)cases[i].amount,
                     settlement_check(&s), cases[i].want);
        }
    }
    /* and the codes the payee sends for them */
    assert_string_equal(reason_code(REASON_ZERO_AMOUNT), "AM01");
    assert_string_equal(reason_code(REASON_AMOUNT), "AM12");
}

static void test_check_currency_reasons(void **state)
{
    (void)state;
    static const char *const bad[] = {"XXX", "rub", "", "RU", "ZZZ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        settlement_t s = valid_settlement();
        snprintf(s.currency, sizeof s.currency, "%s", bad[i]);
        if (settlement_check(&s) != REASON_CURRENCY) {
            fail_msg("currency '%s': reason %d", bad[i], settlement_check(&s));
        }
    }
    static const char *const good[] = {"IRR", "JPY", "KWD", "USD", "ZAR", "AED"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        settlement_t s = valid_settlement();
        snprintf(s.currency, sizeof s.currency, "%s", good[i]);
        assert_int_equal(settlement_check(&s), REASON_NONE);
    }
    assert_string_equal(reason_code(REASON_CURRENCY), "AM03");
}

static void test_check_uetr_format(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "3F2A8C1E-7B4D-4E8A-9C1F-2D3E4F5A6B7C", /* upper case */
        "3f2a8c1e-7b4d-1e8a-9c1f-2d3e4f5a6b7c", /* version 1 */
        "3f2a8c1e-7b4d-4e8a-cc1f-2d3e4f5a6b7c", /* variant c */
        "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7",  /* short */
        "3f2a8c1e7b4d-4e8a-9c1f-2d3e4f5a6b7c0", /* hyphen moved */
        "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7g", /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        settlement_t s = valid_settlement();
        snprintf(s.uetr, sizeof s.uetr, "%s", bad[i]);
        if (settlement_check(&s) != REASON_FORMAT) {
            fail_msg("uetr '%s': reason %d", bad[i], settlement_check(&s));
        }
    }
}

static void test_check_peer_code_format(void **state)
{
    (void)state;
    static const char *const bad[] = {"",         "BKR",      "bmjiirth", "1BMJIIRT",
                                      "BMJ-IRTH", "BMJ IRTH", "BMJIIRTh"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        settlement_t s = valid_settlement();
        snprintf(s.peer, sizeof s.peer, "%s", bad[i]);
        if (settlement_check(&s) != REASON_FORMAT) {
            fail_msg("peer '%s': reason %d", bad[i], settlement_check(&s));
        }
    }
}

static void test_check_value_date(void **state)
{
    (void)state;
    static const char *const bad[] = {"2024-13-01", "2024-00-10", "2024-02-32",
                                      "2024-02-00", "2024/02/01", "2024-2-01",
                                      "24-02-01",   "2024-02-0a", "2024-02-1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        settlement_t s = valid_settlement();
        snprintf(s.value_date, sizeof s.value_date, "%s", bad[i]);
        if (settlement_check(&s) != REASON_FORMAT) {
            fail_msg("value date '%s': reason %d", bad[i], settlement_check(&s));
        }
    }
    /* the day within the month and the year are not checked (PROTOCOL.md 3.2.1) */
    static const char *const good[] = {"2026-02-31", "0000-12-31", "9999-01-01"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        settlement_t s = valid_settlement();
        snprintf(s.value_date, sizeof s.value_date, "%s", good[i]);
        assert_int_equal(settlement_check(&s), REASON_NONE);
    }
}

/* Each text field, reached by its offset in settlement_t, with its limit. */
typedef struct {
    const char *name;
    size_t offset;
    size_t size; /* buffer size: limit + 1 */
} text_field_t;

#define TEXT_FIELD(f)                                                                              \
    {                                                                                              \
#f, offsetof(settlement_t, f), sizeof(((settlement_t *)0)->f)                              \
    }
static const text_field_t text_fields[] = {
    TEXT_FIELD(end_to_end_id), TEXT_FIELD(debtor_name),      TEXT_FIELD(debtor_account),
    TEXT_FIELD(creditor_name), TEXT_FIELD(creditor_account), TEXT_FIELD(remittance),
};
#define N_TEXT_FIELDS (sizeof text_fields / sizeof text_fields[0])

static void test_check_bad_text_in_every_field(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "tab\there",         /* control character */
        "del\x7f",           /* DEL */
        "c1 \xc2\x80",       /* U+0080, a C1 control */
        "bad \xc3\x28",      /* missing continuation byte */
        "stray \x80",        /* stray continuation byte */
        "overlong \xc0\xaf", /* overlong '/' */
        "surrogate \xed\xa0\x80",
        "beyond \xf4\x90\x80\x80", /* above U+10FFFF */
        "cut \xe2\x82",            /* truncated sequence at the end */
    };
    for (size_t f = 0; f < N_TEXT_FIELDS; f++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            settlement_t s = valid_settlement();
            char *field = (char *)&s + text_fields[f].offset;
            snprintf(field, text_fields[f].size, "%s", bad[i]);
            if (settlement_check(&s) != REASON_FORMAT) {
                fail_msg("%s = bad text %zu: reason %d", text_fields[f].name, i,
                         settlement_check(&s));
            }
        }
    }
    assert_string_equal(reason_code(REASON_FORMAT), "FF01");
}

static void test_check_text_at_its_limit_and_unicode(void **state)
{
    (void)state;
    for (size_t f = 0; f < N_TEXT_FIELDS; f++) {
        settlement_t s = valid_settlement();
        char *field = (char *)&s + text_fields[f].offset;
        /* exactly the limit: the buffer full */
        fill(field, 'x', text_fields[f].size - 1);
        assert_int_equal(strlen(field), text_fields[f].size - 1);
        if (settlement_check(&s) != REASON_NONE) {
            fail_msg("%s at its limit refused", text_fields[f].name);
        }
        /* any code point outside the controls is allowed: Cyrillic, Persian, an emoji */
        snprintf(field, text_fields[f].size, "%s", "Пётр \xd9\xbe \xf0\x9f\x98\x80");
        if (settlement_check(&s) != REASON_NONE) {
            fail_msg("%s with Unicode refused", text_fields[f].name);
        }
    }
}

static void test_check_order_of_reasons(void **state)
{
    (void)state;
    /* FF01 before AM03 before AM01/AM12 (PROTOCOL.md 3.2.4 steps 3 to 6) */
    settlement_t s = valid_settlement();
    s.uetr[0] = 'X';
    snprintf(s.currency, sizeof s.currency, "XXX");
    s.amount_minor = 0;
    assert_int_equal(settlement_check(&s), REASON_FORMAT);
    s = valid_settlement();
    snprintf(s.currency, sizeof s.currency, "XXX");
    s.amount_minor = -5;
    assert_int_equal(settlement_check(&s), REASON_CURRENCY);
    s = valid_settlement();
    snprintf(s.remittance, sizeof s.remittance, "\x01");
    s.amount_minor = 0;
    assert_int_equal(settlement_check(&s), REASON_FORMAT);
}

/* ---- encode and decode ---------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    settlement_t s = valid_settlement();
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    assert_true(len > 0);
    settlement_t d;
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(settlement_decode(body, len, PEER, DIRECTION_OUT, &d), REASON_NONE);
    assert_settlement_equal(&d, &s);
    assert_int_equal(settlement_check(&d), REASON_NONE);
    /* the payee decodes the same bytes as incoming */
    assert_int_equal(settlement_decode(body, len, "BKRURUMM", DIRECTION_IN, &d), REASON_NONE);
    assert_string_equal(d.peer, "BKRURUMM");
    assert_int_equal(d.direction, DIRECTION_IN);
    assert_string_equal(d.uetr, s.uetr);
    free(body);
}

static void test_round_trip_extremes(void **state)
{
    (void)state;
    /* every text at its limit, and amounts no valid settlement has: the codec keeps them all */
    static const int64_t amounts[] = {INT64_MIN, -1, 0, CORRIDOR_AMOUNT_MINOR_MAX, INT64_MAX};
    for (size_t a = 0; a < sizeof amounts / sizeof amounts[0]; a++) {
        settlement_t s = valid_settlement();
        for (size_t f = 0; f < N_TEXT_FIELDS; f++) {
            char *field = (char *)&s + text_fields[f].offset;
            fill(field, (char)('a' + f), text_fields[f].size - 1);
        }
        s.amount_minor = amounts[a];
        s.created_unix_ms = -amounts[a] / 2;
        uint8_t *body = NULL;
        size_t len = 0;
        assert_int_equal(settlement_encode(&s, &body, &len), 0);
        settlement_t d;
        assert_int_equal(settlement_decode(body, len, PEER, DIRECTION_OUT, &d), REASON_NONE);
        assert_settlement_equal(&d, &s);
        free(body);
    }
}

static void test_encoding_is_deterministic_and_keeps_parties(void **state)
{
    (void)state;
    /* PROTOCOL.md 3.2.2: debtor (6) and creditor (7) are always present, possibly empty */
    settlement_t s;
    memset(&s, 0, sizeof s);
    uint8_t *body = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    static const uint8_t empty[] = {0x32, 0x00, 0x3a, 0x00};
    assert_int_equal(len, sizeof empty);
    assert_memory_equal(body, empty, sizeof empty);
    free(body);

    s = valid_settlement();
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    assert_int_equal(settlement_encode(&s, &again, &again_len), 0);
    assert_int_equal(len, again_len);
    assert_memory_equal(body, again, len);
    /* field 1, the UETR, comes first */
    assert_int_equal(body[0], 0x0a);
    assert_int_equal(body[1], 36);
    assert_memory_equal(body + 2, UETR, 36);
    free(body);
    free(again);
}

static void test_decode_missing_parties_read_as_empty(void **state)
{
    (void)state;
    Corridor__Settlement msg = CORRIDOR__SETTLEMENT__INIT;
    msg.uetr = UETR;
    msg.currency = "RUB";
    msg.amount_minor = 10;
    size_t len = 0;
    uint8_t *body = pack(&msg, &len);
    settlement_t d;
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(settlement_decode(body, len, PEER, DIRECTION_IN, &d), REASON_NONE);
    assert_string_equal(d.debtor_name, "");
    assert_string_equal(d.debtor_account, "");
    assert_string_equal(d.creditor_name, "");
    assert_string_equal(d.creditor_account, "");
    assert_string_equal(d.uetr, UETR);
    assert_int_equal(d.amount_minor, 10);
    free(body);
}

static void test_decode_empty_body(void **state)
{
    (void)state;
    /* zero bytes are a valid empty Settlement: decode succeeds, check refuses it */
    settlement_t d;
    assert_int_equal(settlement_decode((const uint8_t *)"", 0, PEER, DIRECTION_IN, &d),
                     REASON_NONE);
    assert_string_equal(d.uetr, "");
    assert_int_equal(d.amount_minor, 0);
    assert_int_not_equal(settlement_check(&d), REASON_NONE);
}

static void assert_refused_keeps_only_peer(const settlement_t *d, const char *peer, direction_t dir)
{
    assert_string_equal(d->peer, peer);
    assert_int_equal(d->direction, dir);
    assert_string_equal(d->uetr, "");
    assert_string_equal(d->remittance, "");
    assert_string_equal(d->debtor_name, "");
}

static void test_decode_garbage_refused(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } garbage[] = {
        {"\xff\xff\xff\xff", 4},                              /* bad varint key */
        {"\x0a\x7f", 2},                                      /* string longer than the body */
        {"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11}, /* absurd length */
        {"\x1a\x05", 2},         /* amount as a length-delimited field */
        {"\x32\x05\x0a\x10", 4}, /* party whose name overruns it */
        {"\x07", 1},             /* wire type 7 */
        {"\x18", 1},             /* varint key with no value */
        {"\x18\x80\x80", 3},     /* unterminated varint */
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        settlement_t d;
        memset(&d, 0xa5, sizeof d);
        reason_t r = settlement_decode((const uint8_t *)garbage[i].bytes, garbage[i].len, PEER,
                                       DIRECTION_IN, &d);
        if (r != REASON_FORMAT) {
            fail_msg("garbage %zu: reason %d", i, r);
        }
        assert_refused_keeps_only_peer(&d, PEER, DIRECTION_IN);
        assert_int_equal(d.amount_minor, 0);
    }
    /* random bytes: never a crash, and never a settlement that passes the check */
    uint8_t buf[256];
    for (int round = 0; round < 5000; round++) {
        size_t len = 1 + randombytes_uniform(sizeof buf);
        randombytes_buf(buf, len);
        settlement_t d;
        reason_t r = settlement_decode(buf, len, PEER, DIRECTION_IN, &d);
        assert_true(r == REASON_NONE || r == REASON_FORMAT);
        assert_string_equal(d.peer, PEER);
        assert_int_not_equal(settlement_check(&d), REASON_NONE);
    }
}

static void test_decode_every_truncation(void **state)
{
    (void)state;
    settlement_t s = valid_settlement();
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    size_t refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut > 0 ? cut : 1); /* exact size: ASan sees any over-read */
        assert_non_null(copy);
        memcpy(copy, body, cut);
        settlement_t d;
        reason_t r = settlement_decode(copy, cut, PEER, DIRECTION_OUT, &d);
        free(copy);
        if (r == REASON_FORMAT) {
            refused++;
            assert_refused_keeps_only_peer(&d, PEER, DIRECTION_OUT);
            continue;
        }
        /* a cut at a field boundary is a shorter valid message: it must not equal the whole */
        assert_int_equal(r, REASON_NONE);
        uint8_t a[SETTLEMENT_HASH_BYTES], b[SETTLEMENT_HASH_BYTES];
        settlement_content_hash(&s, a);
        settlement_content_hash(&d, b);
        bool same = memcmp(a, b, sizeof a) == 0 && d.created_unix_ms == s.created_unix_ms &&
                    strcmp(d.uetr, s.uetr) == 0 && strcmp(d.value_date, s.value_date) == 0;
        assert_false(same);
    }
    assert_true(refused > len / 2); /* most cuts fall inside a field */
    free(body);
}

static void test_decode_over_limit_keeps_only_the_key(void **state)
{
    (void)state;
    /* PROTOCOL.md 3.2.3 case 2: a field over its limit keeps UETR, currency, amount and time */
    Corridor__Party debtor = CORRIDOR__PARTY__INIT, creditor = CORRIDOR__PARTY__INIT;
    char long_name[CORRIDOR_PARTY_NAME_LEN_MAX + 2];
    fill(long_name, 'n', CORRIDOR_PARTY_NAME_LEN_MAX + 1);
    char long_account[CORRIDOR_ACCOUNT_LEN_MAX + 2];
    fill(long_account, 'a', CORRIDOR_ACCOUNT_LEN_MAX + 1);
    char long_e2e[CORRIDOR_E2E_ID_LEN_MAX + 2];
    fill(long_e2e, 'e', CORRIDOR_E2E_ID_LEN_MAX + 1);
    char long_rmt[CORRIDOR_REMITTANCE_LEN_MAX + 2];
    fill(long_rmt, 'r', CORRIDOR_REMITTANCE_LEN_MAX + 1);

    for (int which = 0; which < 7; which++) {
        Corridor__Settlement msg = CORRIDOR__SETTLEMENT__INIT;
        debtor.name = creditor.name = "name";
        debtor.account = creditor.account = "acct";
        msg.uetr = UETR;
        msg.currency = "IRR";
        msg.amount_minor = 777;
        msg.created_unix_ms = CREATED_MS;
        msg.end_to_end_id = "e2e";
        msg.remittance = "rmt";
        msg.value_date = "2024-03-01";
        msg.debtor = &debtor;
        msg.creditor = &creditor;
        switch (which) {
        case 0:
            debtor.name = long_name;
            break;
        case 1:
            debtor.account = long_account;
            break;
        case 2:
            creditor.name = long_name;
            break;
        case 3:
            creditor.account = long_account;
            break;
        case 4:
            msg.end_to_end_id = long_e2e;
            break;
        case 5:
            msg.remittance = long_rmt;
            break;
        case 6:
            msg.value_date = "2024-03-01X";
            break;
        }
        size_t len = 0;
        uint8_t *body = pack(&msg, &len);
        settlement_t d;
        assert_int_equal(settlement_decode(body, len, PEER, DIRECTION_IN, &d), REASON_FORMAT);
        assert_string_equal(d.peer, PEER);
        assert_int_equal(d.direction, DIRECTION_IN);
        assert_string_equal(d.uetr, UETR);
        assert_string_equal(d.currency, "IRR");
        assert_int_equal(d.amount_minor, 777);
        assert_int_equal(d.created_unix_ms, CREATED_MS);
        assert_string_equal(d.end_to_end_id, "");
        assert_string_equal(d.remittance, "");
        assert_string_equal(d.value_date, "");
        assert_string_equal(d.debtor_name, "");
        assert_string_equal(d.debtor_account, "");
        assert_string_equal(d.creditor_name, "");
        assert_string_equal(d.creditor_account, "");
        free(body);
    }
}

static void test_decode_over_limit_key_gives_no_uetr(void **state)
{
    (void)state;
    /* PROTOCOL.md 3.2.3 case 1: a UETR or currency too long leaves no UETR at all */
    static const char *const uetrs[] = {UETR "0", UETR};
    static const char *const currencies[] = {"RUB", "RUBL"};
    for (int i = 0; i < 2; i++) {
        Corridor__Settlement msg = CORRIDOR__SETTLEMENT__INIT;
        msg.uetr = (char *)uetrs[i];
        msg.currency = (char *)currencies[i];
        msg.amount_minor = 777;
        size_t len = 0;
        uint8_t *body = pack(&msg, &len);
        settlement_t d;
        assert_int_equal(settlement_decode(body, len, PEER, DIRECTION_IN, &d), REASON_FORMAT);
        assert_string_equal(d.uetr, "");
        assert_string_equal(d.currency, "");
        assert_int_equal(d.amount_minor, 0);
        assert_string_equal(d.peer, PEER);
        free(body);
    }
}

static void test_decode_values_are_not_checked(void **state)
{
    (void)state;
    /* decode only parses: a zero amount and an unknown currency decode fine, check refuses */
    settlement_t s = valid_settlement();
    s.amount_minor = 0;
    snprintf(s.currency, sizeof s.currency, "XXX");
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    settlement_t d;
    assert_int_equal(settlement_decode(body, len, PEER, DIRECTION_OUT, &d), REASON_NONE);
    assert_int_equal(settlement_check(&d), REASON_CURRENCY);
    free(body);
}

/* ---- hashes --------------------------------------------------------------------------------- */

static void content_hash(const settlement_t *s, uint8_t out[static SETTLEMENT_HASH_BYTES])
{
    settlement_content_hash(s, out);
}

static void test_content_hash_changes_with_every_covered_field(void **state)
{
    (void)state;
    const settlement_t base = valid_settlement();
    enum { N = 13 };
    settlement_t v[N];
    for (int i = 0; i < N; i++) {
        v[i] = base;
    }
    snprintf(v[0].peer, sizeof v[0].peer, "BSEPIRTH");
    v[1].direction = DIRECTION_IN;
    v[2].amount_minor = base.amount_minor + 1;
    v[3].amount_minor = base.amount_minor + (INT64_C(1) << 48); /* a high byte */
    snprintf(v[4].currency, sizeof v[4].currency, "IRR");
    snprintf(v[5].end_to_end_id, sizeof v[5].end_to_end_id, "E2E-18");
    snprintf(v[6].debtor_name, sizeof v[6].debtor_name, "OOO Vasilek");
    snprintf(v[7].debtor_account, sizeof v[7].debtor_account, "40702810900000000002");
    snprintf(v[8].creditor_name, sizeof v[8].creditor_name, "Pars Trading Ltd");
    snprintf(v[9].creditor_account, sizeof v[9].creditor_account, "IR820540102680020817909003");
    snprintf(v[10].remittance, sizeof v[10].remittance, "invoice 18");
    /* text moved from one field to the next: the length prefixes tell them apart */
    snprintf(v[11].debtor_name, sizeof v[11].debtor_name, "OOO Romashka4");
    snprintf(v[11].debtor_account, sizeof v[11].debtor_account, "0702810900000000001");
    v[12].remittance[0] = '\0';
    uint8_t h[N + 1][SETTLEMENT_HASH_BYTES];
    content_hash(&base, h[N]);
    for (int i = 0; i < N; i++) {
        content_hash(&v[i], h[i]);
    }
    for (int i = 0; i <= N; i++) {
        for (int j = i + 1; j <= N; j++) {
            if (memcmp(h[i], h[j], SETTLEMENT_HASH_BYTES) == 0) {
                fail_msg("content hash variants %d and %d equal", i, j);
            }
        }
    }
}

static void test_content_hash_ignores_key_and_times(void **state)
{
    (void)state;
    /* PROTOCOL.md 3.7.1: not the UETR (the key), the value date nor the creation time */
    const settlement_t base = valid_settlement();
    uint8_t want[SETTLEMENT_HASH_BYTES], got[SETTLEMENT_HASH_BYTES];
    content_hash(&base, want);
    settlement_t s = base;
    snprintf(s.uetr, sizeof s.uetr, "00000000-0000-4000-8000-000000000000");
    content_hash(&s, got);
    assert_memory_equal(got, want, sizeof want);
    s = base;
    s.created_unix_ms = 1;
    content_hash(&s, got);
    assert_memory_equal(got, want, sizeof want);
    s = base;
    s.value_date[0] = '\0';
    content_hash(&s, got);
    assert_memory_equal(got, want, sizeof want);
}

static void lp32(uint8_t *buf, size_t *n, const char *text)
{
    uint32_t len = (uint32_t)strlen(text);
    for (int i = 0; i < 4; i++) {
        buf[(*n)++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(buf + *n, text, len);
    *n += len;
}

static void test_content_hash_matches_specified_construction(void **state)
{
    (void)state;
    settlement_t s = valid_settlement();
    s.direction = DIRECTION_IN;
    s.amount_minor = INT64_C(0x0102030405060708);
    uint8_t input[1024];
    size_t n = 0;
    static const char tag[] = "corridor.settlement-content.v1";
    assert_int_equal(sizeof tag, 31);
    memcpy(input, tag, sizeof tag);
    n += sizeof tag;
    static const uint8_t amount_le[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    memcpy(input + n, amount_le, 8);
    n += 8;
    input[n++] = 1; /* direction in */
    lp32(input, &n, s.peer);
    lp32(input, &n, s.currency);
    lp32(input, &n, s.end_to_end_id);
    lp32(input, &n, s.debtor_name);
    lp32(input, &n, s.debtor_account);
    lp32(input, &n, s.creditor_name);
    lp32(input, &n, s.creditor_account);
    lp32(input, &n, s.remittance);
    uint8_t want[SETTLEMENT_HASH_BYTES], got[SETTLEMENT_HASH_BYTES];
    crypto_generichash(want, sizeof want, input, n, NULL, 0);
    content_hash(&s, got);
    assert_memory_equal(got, want, sizeof want);
}

static void test_content_hash_survives_round_trip(void **state)
{
    (void)state;
    /* what the payer hashed before sending, the payer's decode of its own body hashes alike */
    settlement_t s = valid_settlement();
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    settlement_t d;
    assert_int_equal(settlement_decode(body, len, s.peer, s.direction, &d), REASON_NONE);
    uint8_t a[SETTLEMENT_HASH_BYTES], b[SETTLEMENT_HASH_BYTES];
    content_hash(&s, a);
    content_hash(&d, b);
    assert_memory_equal(a, b, sizeof a);
    free(body);
}

static void test_body_hash(void **state)
{
    (void)state;
    settlement_t s = valid_settlement();
    uint8_t *body = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    assert_int_equal(settlement_encode(&s, &again, &again_len), 0);
    uint8_t a[SETTLEMENT_HASH_BYTES], b[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, len, a);
    settlement_body_hash(again, again_len, b); /* a copy of the same bytes */
    assert_memory_equal(a, b, sizeof a);

    /* PROTOCOL.md 3.7.2: BLAKE2b-256 of the 28-byte tag and the body */
    static const char tag[] = "corridor.settlement-body.v2";
    assert_int_equal(sizeof tag, 28);
    uint8_t *input = malloc(sizeof tag + len);
    assert_non_null(input);
    memcpy(input, tag, sizeof tag);
    memcpy(input + sizeof tag, body, len);
    uint8_t want[SETTLEMENT_HASH_BYTES];
    crypto_generichash(want, sizeof want, input, sizeof tag + len, NULL, 0);
    assert_memory_equal(a, want, sizeof want);
    free(input);

    /* any other byte, or one byte fewer, is another body */
    body[len - 1] ^= 1;
    settlement_body_hash(body, len, b);
    assert_memory_not_equal(a, b, sizeof a);
    body[len - 1] ^= 1;
    settlement_body_hash(body, len - 1, b);
    assert_memory_not_equal(a, b, sizeof a);

    /* the body hash is of bytes, not content: a field the content hash ignores changes it */
    s.created_unix_ms++;
    free(again);
    assert_int_equal(settlement_encode(&s, &again, &again_len), 0);
    settlement_body_hash(again, again_len, b);
    assert_memory_not_equal(a, b, sizeof a);

    /* an empty body is allowed and differs from one zero byte */
    settlement_body_hash(NULL, 0, a);
    settlement_body_hash((const uint8_t *)"", 1, b);
    assert_memory_not_equal(a, b, sizeof a);
    free(body);
    free(again);
}

static void test_direction_names(void **state)
{
    (void)state;
    assert_string_equal(direction_name(DIRECTION_OUT), "out");
    assert_string_equal(direction_name(DIRECTION_IN), "in");
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts_valid),
        cmocka_unit_test(test_check_accepts_optional_fields_empty),
        cmocka_unit_test(test_check_amount_reasons),
        cmocka_unit_test(test_check_currency_reasons),
        cmocka_unit_test(test_check_uetr_format),
        cmocka_unit_test(test_check_peer_code_format),
        cmocka_unit_test(test_check_value_date),
        cmocka_unit_test(test_check_bad_text_in_every_field),
        cmocka_unit_test(test_check_text_at_its_limit_and_unicode),
        cmocka_unit_test(test_check_order_of_reasons),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_extremes),
        cmocka_unit_test(test_encoding_is_deterministic_and_keeps_parties),
        cmocka_unit_test(test_decode_missing_parties_read_as_empty),
        cmocka_unit_test(test_decode_empty_body),
        cmocka_unit_test(test_decode_garbage_refused),
        cmocka_unit_test(test_decode_every_truncation),
        cmocka_unit_test(test_decode_over_limit_keeps_only_the_key),
        cmocka_unit_test(test_decode_over_limit_key_gives_no_uetr),
        cmocka_unit_test(test_decode_values_are_not_checked),
        cmocka_unit_test(test_content_hash_changes_with_every_covered_field),
        cmocka_unit_test(test_content_hash_ignores_key_and_times),
        cmocka_unit_test(test_content_hash_matches_specified_construction),
        cmocka_unit_test(test_content_hash_survives_round_trip),
        cmocka_unit_test(test_body_hash),
        cmocka_unit_test(test_direction_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
