/*
 * Unit tests for node/message/fx.c: the FxProposal (PROTOCOL.md 3.10) as the node writes its
 * rate, checks it, encodes and decodes it, and tests it against a peer's rate band; and the
 * band as corridor.conf states it (config_fx_band_parse, `fx_band.BASE_QUOTE` in [peer]).
 *
 * The rate text is part of what the proposer signs and the acceptor recomputes, so both must
 * write it alike to the digit (rounded half up, no trailing zeros, any currency exponent). The
 * band decides whether a peer's trade is accepted, so its edges are inclusive, exact in
 * integers, and the same whichever side pays which currency.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "corridor.pb-c.h"
#include "fx.h"

#define PEER      "BMJIIRTH"
#define FX_ID     "6b1c2d3e-4f50-4a61-8b72-c3d4e5f60718"
#define PAY_UETR  "0a1b2c3d-4e5f-4061-9273-8495a6b7c8d9"
#define RECV_UETR "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"
#define CREATED   INT64_C(1700000000000)
#define EXPIRES   INT64_C(1700000600000)

/* ---- helpers -------------------------------------------------------------------------------- */

static settlement_t leg(const char *currency, int64_t amount)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.currency, sizeof s.currency, "%s", currency);
    s.amount_minor = amount;
    return s;
}

/* The rate text of paying `pay_amount` of pay_ccy for `recv_amount` of recv_ccy. */
static const char *rate(const char *pay_ccy, int64_t pay_amount, const char *recv_ccy,
                        int64_t recv_amount)
{
    static char out[FX_RATE_LEN_MAX + 1];
    settlement_t p = leg(pay_ccy, pay_amount), r = leg(recv_ccy, recv_amount);
    if (!fx_rate_text(&p, &r, out, sizeof out)) {
        return NULL;
    }
    return out;
}

/* A trade we propose to PEER: pay `pay_amount` of pay_ccy, receive recv_amount of recv_ccy. */
static fx_trade_t trade(const char *pay_ccy, int64_t pay_amount, const char *recv_ccy,
                        int64_t recv_amount)
{
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.fx_id, sizeof t.fx_id, "%s", FX_ID);
    t.legs[FX_PAY] = leg(pay_ccy, pay_amount);
    t.legs[FX_RECEIVE] = leg(recv_ccy, recv_amount);
    snprintf(t.legs[FX_PAY].uetr, sizeof t.legs[FX_PAY].uetr, "%s", PAY_UETR);
    snprintf(t.legs[FX_RECEIVE].uetr, sizeof t.legs[FX_RECEIVE].uetr, "%s", RECV_UETR);
    t.created_unix_ms = CREATED;
    t.expires_unix_ms = EXPIRES;
    fx_trade_prepare(&t, PEER);
    return t;
}

/* ---- fx_rate_text --------------------------------------------------------------------------- */

static void test_rate_exact(void **state)
{
    (void)state;
    /* 10 000.00 RUB for 4 500 000.00 IRR */
    assert_string_equal(rate("RUB", 1000000, "IRR", 450000000), "450");
    assert_string_equal(rate("IRR", 450000000, "RUB", 1000000), "0.002222");
    assert_string_equal(rate("RUB", 100, "IRR", 100), "1");
    assert_string_equal(rate("RUB", 200, "IRR", 100), "0.5");
    assert_string_equal(rate("RUB", 100, "IRR", 45050), "450.5");
    /* trailing zeros of the fraction dropped, interior ones kept */
    assert_string_equal(rate("RUB", 100000000, "IRR", 45000000001), "450");
    assert_string_equal(rate("RUB", 1000000, "IRR", 450000100), "450.0001");
}

static void test_rate_rounds_half_up(void **state)
{
    (void)state;
    assert_string_equal(rate("RUB", 300, "IRR", 100), "0.333333"); /* 0.3333333.. down */
    assert_string_equal(rate("RUB", 300, "IRR", 200), "0.666667"); /* 0.6666666.. up */
    /* exactly half a millionth: 0.01 / 20 000.00 = 0.0000005 goes up */
    assert_string_equal(rate("RUB", 2000000, "IRR", 1), "0.000001");
    /* just under half: down to zero */
    assert_string_equal(rate("RUB", 2000001, "IRR", 1), "0");
    /* 450.0000005 up, 450.00000049.. down */
    assert_string_equal(rate("RUB", 200000000, "IRR", 90000000100), "450.000001");
    assert_string_equal(rate("RUB", 200000001, "IRR", 90000000550), "450");
}

static void test_rate_exponents(void **state)
{
    (void)state;
    /* JPY has no minor unit, KWD three decimals */
    assert_string_equal(rate("JPY", 1000, "RUB", 650), "0.0065");
    assert_string_equal(rate("RUB", 650, "JPY", 1000), "153.846154");
    assert_string_equal(rate("KWD", 1000, "RUB", 30000), "300");
    assert_string_equal(rate("KWD", 1, "IRR", 12345), "123450");
    assert_string_equal(rate("JPY", 1, "KWD", 1), "0.001");
    assert_string_equal(rate("KWD", 1, "JPY", 1), "1000");
    assert_string_equal(rate("KWD", 3, "JPY", 1), "333.333333");
    /* the largest amounts fit */
    _Static_assert(CORRIDOR_AMOUNT_MINOR_MAX == INT64_C(100000000000000000), "10^17");
    assert_string_equal(rate("KWD", 1, "JPY", CORRIDOR_AMOUNT_MINOR_MAX), "100000000000000000000");
    assert_string_equal(rate("JPY", CORRIDOR_AMOUNT_MINOR_MAX, "KWD", 1), "0");
}

static void test_rate_refused(void **state)
{
    (void)state;
    assert_null(rate("RUB", 0, "IRR", 100));
    assert_null(rate("RUB", 100, "IRR", 0));
    assert_null(rate("RUB", -100, "IRR", 100));
    assert_null(rate("RUB", 100, "IRR", CORRIDOR_AMOUNT_MINOR_MAX + 1));
    assert_null(rate("XXX", 100, "IRR", 100));
    assert_null(rate("RUB", 100, "", 100));
}

/* ---- fx_check ------------------------------------------------------------------------------- */

static void test_prepare_fills_legs(void **state)
{
    (void)state;
    fx_trade_t t = trade("RUB", 1000000, "IRR", 450000000);
    assert_string_equal(t.rate, "450");
    for (int i = 0; i < 2; i++) {
        assert_string_equal(t.legs[i].peer, PEER);
        assert_int_equal(t.legs[i].direction, DIRECTION_OUT);
        assert_string_equal(t.legs[i].fx_id, FX_ID);
        assert_int_equal(t.legs[i].created_unix_ms, CREATED);
        assert_int_equal(t.legs[i].expires_unix_ms, EXPIRES);
        assert_true(settlement_is_fx_leg(&t.legs[i]));
    }
    assert_int_equal(t.legs[FX_PAY].fx_leg, FX_LEG_PROPOSER_PAYS);
    assert_int_equal(t.legs[FX_RECEIVE].fx_leg, FX_LEG_ACCEPTOR_PAYS);
    /* money of the leg the acceptor pays goes against the proposal */
    assert_int_equal(settlement_money_direction(&t.legs[FX_PAY]), DIRECTION_OUT);
    assert_int_equal(settlement_money_direction(&t.legs[FX_RECEIVE]), DIRECTION_IN);
    assert_int_equal(settlement_row_amount(&t.legs[FX_PAY]), 1000000);
    assert_int_equal(settlement_row_amount(&t.legs[FX_RECEIVE]), -450000000);
    assert_int_equal(fx_check(&t), REASON_NONE);
}

static void test_check_refusals(void **state)
{
    (void)state;
    fx_trade_t t = trade("RUB", 100, "RUB", 200); /* one currency both ways */
    assert_int_equal(fx_check(&t), REASON_FORMAT);

    t = trade("RUB", 1000000, "IRR", 450000000);
    snprintf(t.legs[FX_RECEIVE].uetr, sizeof t.legs[FX_RECEIVE].uetr, "%s", PAY_UETR);
    assert_int_equal(fx_check(&t), REASON_FORMAT); /* both legs one uetr */
    t = trade("RUB", 1000000, "IRR", 450000000);
    snprintf(t.legs[FX_PAY].uetr, sizeof t.legs[FX_PAY].uetr, "%s", FX_ID);
    assert_int_equal(fx_check(&t), REASON_FORMAT); /* a leg's uetr is the trade's */
    t = trade("RUB", 1000000, "IRR", 450000000);
    snprintf(t.legs[FX_RECEIVE].uetr, sizeof t.legs[FX_RECEIVE].uetr, "%s", FX_ID);
    assert_int_equal(fx_check(&t), REASON_FORMAT);
    t = trade("RUB", 1000000, "IRR", 450000000);
    snprintf(t.fx_id, sizeof t.fx_id, "not-a-uuid");
    assert_int_equal(fx_check(&t), REASON_FORMAT);

    /* the rate must be the one the legs imply, to the character */
    static const char *const wrong[] = {"451", "450.0", "450.000000", "0450", "", "450 "};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        t = trade("RUB", 1000000, "IRR", 450000000);
        snprintf(t.rate, sizeof t.rate, "%s", wrong[i]);
        assert_int_equal(fx_check(&t), REASON_FORMAT);
    }

    /* legs as payments: zero AM01, negative or too large AM12, unknown currency AM03 */
    for (int side = 0; side < 2; side++) {
        t = trade("RUB", 1000000, "IRR", 450000000);
        t.legs[side].amount_minor = 0;
        assert_int_equal(fx_check(&t), REASON_ZERO_AMOUNT);
        t.legs[side].amount_minor = -5;
        assert_int_equal(fx_check(&t), REASON_AMOUNT);
        t.legs[side].amount_minor = CORRIDOR_AMOUNT_MINOR_MAX + 1;
        assert_int_equal(fx_check(&t), REASON_AMOUNT);
        t = trade("RUB", 1000000, "IRR", 450000000);
        snprintf(t.legs[side].currency, sizeof t.legs[side].currency, "XXX");
        assert_int_equal(fx_check(&t), REASON_CURRENCY);
    }
    /* the largest amount is a valid leg */
    t = trade("RUB", CORRIDOR_AMOUNT_MINOR_MAX, "IRR", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_string_equal(t.rate, "1");
    assert_int_equal(fx_check(&t), REASON_NONE);
}

/* ---- encode / decode ------------------------------------------------------------------------ */

/* What a record can be keyed by: distinct valid ids, negatable amounts, a version-2 Inner (the
 * answer names its body); a proposal that is not is answered unrecorded, and never imported. */
static void test_keyed(void **state)
{
    (void)state;
    fx_trade_t t = trade("RUB", 100000, "IRR", 45000000);
    assert_true(fx_keyed(&t, 2));
    assert_false(fx_keyed(&t, 1));
    fx_trade_t low = t;
    low.legs[FX_RECEIVE].amount_minor = INT64_MIN;
    assert_false(fx_keyed(&low, 2));
    low.legs[FX_RECEIVE].amount_minor = -1; /* refused AM12, but recorded */
    assert_true(fx_keyed(&low, 2));
    fx_trade_t same = t;
    memcpy(same.legs[FX_RECEIVE].uetr, same.legs[FX_PAY].uetr, sizeof same.legs[FX_PAY].uetr);
    assert_false(fx_keyed(&same, 2));
    fx_trade_t id_as_leg = t;
    memcpy(id_as_leg.fx_id, id_as_leg.legs[FX_PAY].uetr, sizeof id_as_leg.fx_id);
    assert_false(fx_keyed(&id_as_leg, 2));
}

static void test_encode_decode_round_trip(void **state)
{
    (void)state;
    fx_trade_t t = trade("KWD", 1000, "JPY", 480000);
    assert_string_equal(t.rate, "480000");
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(fx_encode(&t, &body, &len), 0);
    assert_true(len > 0);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, len, hash);
    assert_memory_equal(t.legs[FX_PAY].original_hash, hash, sizeof hash);
    assert_memory_equal(t.legs[FX_RECEIVE].original_hash, hash, sizeof hash);

    fx_trade_t d;
    assert_int_equal(fx_decode(body, len, "BKRURUMM", DIRECTION_IN, &d), REASON_NONE);
    assert_string_equal(d.fx_id, FX_ID);
    assert_string_equal(d.rate, "480000");
    assert_int_equal(d.created_unix_ms, CREATED);
    assert_int_equal(d.expires_unix_ms, EXPIRES);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(d.legs[i].uetr, t.legs[i].uetr);
        assert_string_equal(d.legs[i].currency, t.legs[i].currency);
        assert_int_equal(d.legs[i].amount_minor, t.legs[i].amount_minor);
        assert_string_equal(d.legs[i].peer, "BKRURUMM");
        assert_int_equal(d.legs[i].direction, DIRECTION_IN);
        assert_string_equal(d.legs[i].fx_id, FX_ID);
        assert_int_equal(d.legs[i].fx_leg, t.legs[i].fx_leg);
        assert_memory_equal(d.legs[i].original_hash, hash, sizeof hash);
    }
    /* at the acceptor the leg it pays goes out, the other comes in */
    assert_int_equal(settlement_money_direction(&d.legs[FX_PAY]), DIRECTION_IN);
    assert_int_equal(settlement_money_direction(&d.legs[FX_RECEIVE]), DIRECTION_OUT);
    assert_int_equal(fx_check(&d), REASON_NONE);

    /* encoding is deterministic; any other trade has another body hash */
    uint8_t *again = NULL;
    size_t again_len = 0;
    assert_int_equal(fx_encode(&t, &again, &again_len), 0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, body, len);
    free(again);
    fx_trade_t other = trade("KWD", 1000, "JPY", 480001);
    assert_int_equal(fx_encode(&other, &again, &again_len), 0);
    assert_memory_not_equal(other.legs[FX_PAY].original_hash, hash, sizeof hash);
    free(again);

    /* the legs' content hashes differ from each other and from a payment's */
    uint8_t h0[SETTLEMENT_HASH_BYTES], h1[SETTLEMENT_HASH_BYTES], h2[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&t.legs[FX_PAY], h0);
    settlement_content_hash(&t.legs[FX_RECEIVE], h1);
    assert_memory_not_equal(h0, h1, sizeof h0);
    settlement_t plain = t.legs[FX_PAY];
    plain.fx_id[0] = '\0';
    plain.fx_leg = FX_LEG_NONE;
    settlement_content_hash(&plain, h2);
    assert_memory_not_equal(h0, h2, sizeof h0);
    /* the content hash covers the trade's id */
    settlement_t moved = t.legs[FX_PAY];
    moved.fx_id[0] = 'f';
    settlement_content_hash(&moved, h2);
    assert_memory_not_equal(h0, h2, sizeof h0);
    free(body);
}

/* Packs a hand-made FxProposal. */
static uint8_t *pack(const Corridor__FxProposal *msg, size_t *len)
{
    *len = corridor__fx_proposal__get_packed_size(msg);
    uint8_t *out = malloc(*len > 0 ? *len : 1);
    assert_non_null(out);
    assert_int_equal(corridor__fx_proposal__pack(msg, out), *len);
    return out;
}

static void test_decode_missing_leg(void **state)
{
    (void)state;
    Corridor__FxLeg pay = CORRIDOR__FX_LEG__INIT, receive = CORRIDOR__FX_LEG__INIT;
    pay.uetr = PAY_UETR;
    pay.amount_minor = 1000000;
    pay.currency = "RUB";
    receive.uetr = RECV_UETR;
    receive.amount_minor = 450000000;
    receive.currency = "IRR";
    for (int missing = 0; missing < 3; missing++) {
        Corridor__FxProposal msg = CORRIDOR__FX_PROPOSAL__INIT;
        msg.fx_id = FX_ID;
        msg.pay = missing == 0 ? NULL : &pay;
        msg.receive = missing == 1 ? NULL : &receive;
        msg.rate = "450";
        msg.created_unix_ms = CREATED;
        size_t len;
        uint8_t *body = pack(&msg, &len);
        fx_trade_t d;
        reason_t r = fx_decode(body, len, PEER, DIRECTION_IN, &d);
        if (missing == 2) {
            assert_int_equal(r, REASON_NONE);
            assert_int_equal(fx_check(&d), REASON_NONE);
        } else {
            assert_int_equal(r, REASON_FORMAT);
            assert_string_equal(d.fx_id, FX_ID); /* kept: the refusal can name the trade */
            assert_string_equal(d.legs[missing].uetr, "");
            assert_int_not_equal(fx_check(&d), REASON_NONE);
        }
        free(body);
    }

    /* a field over its limit, and garbage */
    Corridor__FxProposal msg = CORRIDOR__FX_PROPOSAL__INIT;
    char longer[200];
    memset(longer, '7', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    msg.fx_id = FX_ID;
    msg.pay = &pay;
    msg.receive = &receive;
    msg.rate = longer;
    size_t len;
    uint8_t *body = pack(&msg, &len);
    fx_trade_t d;
    assert_int_equal(fx_decode(body, len, PEER, DIRECTION_IN, &d), REASON_FORMAT);
    free(body);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x0f, 0x12};
    assert_int_equal(fx_decode(garbage, sizeof garbage, PEER, DIRECTION_IN, &d), REASON_FORMAT);
    assert_string_equal(d.legs[FX_PAY].peer, PEER);
}

/* ---- bands ---------------------------------------------------------------------------------- */

static config_fx_band_t band(const char *base, const char *quote, const char *text)
{
    config_fx_band_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.base, sizeof b.base, "%s", base);
    snprintf(b.quote, sizeof b.quote, "%s", quote);
    assert_null(config_fx_band_parse(text, &b));
    return b;
}

static void test_band_parse(void **state)
{
    (void)state;
    config_fx_band_t b = band("RUB", "IRR", "440..460");
    assert_int_equal(b.low, INT64_C(440000000));
    assert_int_equal(b.high, INT64_C(460000000));
    b = band("RUB", "IRR", "0.000001..999999999.999999");
    assert_int_equal(b.low, 1);
    assert_int_equal(b.high, INT64_C(999999999999999));
    b = band("RUB", "IRR", "440.5..440.5");
    assert_int_equal(b.low, INT64_C(440500000));
    assert_int_equal(b.high, b.low);
    char text[80];
    config_fx_band_format(&b, text, sizeof text);
    assert_string_equal(text, "440.5..440.5");
    b = band("RUB", "IRR", "0.002222..460.000010");
    config_fx_band_format(&b, text, sizeof text);
    assert_string_equal(text, "0.002222..460.00001");

    static const char *const bad[] = {
        "",
        "440",
        "440..",
        "..460",
        "460..440",
        "0..460",
        "0..0",
        "-1..460",
        "440...460",
        "440..460..470",
        "440.1234567..460",
        "1234567890..1234567891",
        "4e2..460",
        "440. ..460",
        "440...",
        " 440..460",
        "440..460x",
        "440.,5..460",
        ".5..460",
        "440..460.",
        "+440..460",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_fx_band_t z;
        memset(&z, 0, sizeof z);
        if (config_fx_band_parse(bad[i], &z) == NULL) {
            fail_msg("band \"%s\" accepted", bad[i]);
        }
        assert_int_equal(z.low, 0);
        assert_int_equal(z.high, 0);
    }
}

/* A config text with one peer whose section ends with `extra` lines. */
static char *config_text(const char *extra)
{
    identity_t *id = test_fixed_identity(7);
    assert_non_null(id);
    peer_card_t card;
    identity_card(id, PEER, "tcp://127.0.0.1:7002", &card);
    char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1], box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    sodium_bin2hex(sign_hex, sizeof sign_hex, id->sign_public, sizeof id->sign_public);
    sodium_bin2hex(box_hex, sizeof box_hex, id->box_public, sizeof id->box_public);
    identity_destroy(&id);
    char *text = malloc(4096);
    assert_non_null(text);
    snprintf(text, 4096,
             "[node]\nname = BKRURUMM\nlisten = tcp://127.0.0.1:7001\ncurrencies = RUB,IRR,JPY\n"
             "[peer %s]\nendpoint = %s\nsign = %s\nbox = %s\ncurve = %s\n%s",
             PEER, card.endpoint, sign_hex, box_hex, card.curve_public, extra);
    return text;
}

static config_err_t parse(const char *extra, config_t **out, char *err, size_t err_size)
{
    char *text = config_text(extra);
    config_t *c = config_new();
    assert_non_null(c);
    config_err_t rc = config_parse(text, "test.conf", c, err, err_size);
    free(text);
    *out = c;
    return rc;
}

static void test_band_in_config(void **state)
{
    (void)state;
    config_t *c = NULL;
    char err[512] = "";
    config_err_t rc = parse("limit_minor.RUB = 100\nfx_band.RUB_IRR = 440..460\n"
                            "fx_band.JPY_RUB = 0.5..0.75\n",
                            &c, err, sizeof err);
    if (rc != 0) {
        fail_msg("config_parse: %s", err);
    }
    const config_peer_t *p = config_find_peer_const(c, PEER);
    assert_non_null(p);
    assert_int_equal(p->fx_bands_count, 2);
    assert_string_equal(p->fx_bands[0].base, "RUB");
    assert_string_equal(p->fx_bands[0].quote, "IRR");
    assert_int_equal(p->fx_bands[0].low, INT64_C(440000000));
    assert_int_equal(p->fx_bands[0].high, INT64_C(460000000));
    assert_int_equal(p->fx_bands[1].low, INT64_C(500000));

    /* found for its pair either way round, not for another pair */
    fx_trade_t t = trade("RUB", 1000000, "IRR", 450000000);
    assert_ptr_equal(fx_band_find(p, &t), &p->fx_bands[0]);
    t = trade("IRR", 450000000, "RUB", 1000000);
    assert_ptr_equal(fx_band_find(p, &t), &p->fx_bands[0]);
    t = trade("RUB", 100, "JPY", 150);
    assert_ptr_equal(fx_band_find(p, &t), &p->fx_bands[1]);
    t = trade("IRR", 100, "JPY", 150);
    assert_null(fx_band_find(p, &t));

    /* written back as read */
    char *text = malloc(8192);
    assert_non_null(text);
    assert_true(config_format(c, text, 8192) > 0);
    assert_non_null(strstr(text, "\nfx_band.RUB_IRR = 440..460\n"));
    assert_non_null(strstr(text, "\nfx_band.JPY_RUB = 0.5..0.75\n"));
    config_t *again = config_new();
    assert_non_null(again);
    assert_int_equal(config_parse(text, "again.conf", again, err, sizeof err), 0);
    const config_peer_t *q = config_find_peer_const(again, PEER);
    assert_int_equal(q->fx_bands_count, 2);
    assert_memory_equal(q->fx_bands, p->fx_bands, 2 * sizeof p->fx_bands[0]);
    config_destroy(&again);
    config_destroy(&c);
    free(text);

    /* refused: bad values, bad pairs, a pair twice (either way round) */
    static const char *const bad[] = {
        "fx_band.RUB_IRR = 460..440\n",
        "fx_band.RUB_IRR = 0..460\n",
        "fx_band.RUB_IRR = 440\n",
        "fx_band.RUB_IRR = 440.1234567..460\n",
        "fx_band.RUB_IRR = abc\n",
        "fx_band.RUB_RUB = 1..2\n",
        "fx_band.RUB_XXX = 1..2\n",
        "fx_band.RUBIRR = 1..2\n",
        "fx_band.RUB_IRRR = 1..2\n",
        "fx_band.RUB_IRR = 440..460\nfx_band.IRR_RUB = 0.002..0.003\n",
        "fx_band.RUB_IRR = 440..460\nfx_band.RUB_IRR = 440..460\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        rc = parse(bad[i], &c, err, sizeof err);
        if (rc == 0) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_true(strstr(err, "line") != NULL || strstr(err, "test.conf") != NULL);
        config_destroy(&c);
    }
}

static void test_band_holds_edges(void **state)
{
    (void)state;
    config_fx_band_t b = band("RUB", "IRR", "440..460");
    /* 1 000.00 RUB against IRR: 440, 460 inside; a millionth beyond either edge outside */
    static const struct {
        int64_t irr_minor; /* for 100000 RUB minor (1 000.00 RUB) */
        bool inside;
    } cases[] = {
        {44000000, true},
        {46000000, true},
        {45000000, true},
        {43999999, false},
        {46000001, false},
        {1, false},
        {CORRIDOR_AMOUNT_MINOR_MAX, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_trade_t pays_rub = trade("RUB", 100000, "IRR", cases[i].irr_minor);
        fx_trade_t pays_irr = trade("IRR", cases[i].irr_minor, "RUB", 100000);
        if (fx_band_holds(&b, &pays_rub) != cases[i].inside ||
            fx_band_holds(&b, &pays_irr) != cases[i].inside) {
            fail_msg("IRR %lld for RUB 100000: expected %s", (long long)cases[i].irr_minor,
                     cases[i].inside ? "inside" : "outside");
        }
    }
    /* 439.999999 and 460.000001 exactly (100 RUB minor is 1.00 RUB) */
    fx_trade_t t = trade("RUB", 100000000, "IRR", INT64_C(43999999900));
    assert_string_equal(t.rate, "439.999999");
    assert_false(fx_band_holds(&b, &t));
    t = trade("IRR", INT64_C(43999999900), "RUB", 100000000);
    assert_false(fx_band_holds(&b, &t));
    t = trade("RUB", 100000000, "IRR", INT64_C(46000000100));
    assert_false(fx_band_holds(&b, &t));
    t = trade("IRR", INT64_C(46000000100), "RUB", 100000000);
    assert_false(fx_band_holds(&b, &t));
    /* a rate whose text rounds into the band is still outside it: the legs decide */
    t = trade("RUB", 1000000000, "IRR", INT64_C(439999999600));
    assert_string_equal(t.rate, "440");
    assert_false(fx_band_holds(&b, &t));
    t = trade("IRR", INT64_C(439999999600), "RUB", 1000000000);
    assert_false(fx_band_holds(&b, &t));

    /* exponents: JPY (0) per KWD (3), band 480..490 */
    config_fx_band_t k = band("KWD", "JPY", "480..490");
    t = trade("KWD", 1000, "JPY", 480);
    assert_true(fx_band_holds(&k, &t));
    t = trade("JPY", 490, "KWD", 1000);
    assert_true(fx_band_holds(&k, &t));
    t = trade("JPY", 491, "KWD", 1000);
    assert_false(fx_band_holds(&k, &t));
    t = trade("KWD", 1001, "JPY", 480);
    assert_false(fx_band_holds(&k, &t));
    /* the largest amounts on both legs do not overflow */
    config_fx_band_t wide = band("RUB", "IRR", "0.000001..999999999.999999");
    t = trade("RUB", CORRIDOR_AMOUNT_MINOR_MAX, "IRR", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_true(fx_band_holds(&wide, &t));
    t = trade("RUB", 1, "IRR", CORRIDOR_AMOUNT_MINOR_MAX);
    assert_false(fx_band_holds(&wide, &t));
    t = trade("RUB", CORRIDOR_AMOUNT_MINOR_MAX, "IRR", 1);
    assert_false(fx_band_holds(&wide, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_exact),
        cmocka_unit_test(test_rate_rounds_half_up),
        cmocka_unit_test(test_rate_exponents),
        cmocka_unit_test(test_rate_refused),
        cmocka_unit_test(test_prepare_fills_legs),
        cmocka_unit_test(test_check_refusals),
        cmocka_unit_test(test_keyed),
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_decode_missing_leg),
        cmocka_unit_test(test_band_parse),
        cmocka_unit_test(test_band_in_config),
        cmocka_unit_test(test_band_holds_edges),
    };
    return cmocka_run_group_tests_name("fx", tests, test_sodium_setup, NULL);
}
