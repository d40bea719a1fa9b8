/* FX trades: the FxProposal, its checks, its rate and rate bands; see fx.h. */
#include "fx.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "validate.h"
#include "wire.h"

typedef unsigned __int128 u128;

static u128 power_of_ten(unsigned n)
{
    u128 v = 1;
    while (n-- > 0) {
        v *= 10;
    }
    return v;
}

/* Fills the fields every leg of t takes from the trade. */
static void fill_legs(fx_trade_t *t, const char *peer, direction_t direction)
{
    for (int i = 0; i < 2; i++) {
        settlement_t *leg = &t->legs[i];
        snprintf(leg->peer, sizeof leg->peer, "%s", peer);
        leg->direction = direction;
        memcpy(leg->fx_id, t->fx_id, sizeof leg->fx_id);
        leg->fx_leg = i == FX_PAY ? FX_LEG_PROPOSER_PAYS : FX_LEG_ACCEPTOR_PAYS;
        leg->created_unix_ms = t->created_unix_ms;
        leg->expires_unix_ms = t->expires_unix_ms;
    }
}

void fx_trade_prepare(fx_trade_t *t, const char *peer)
{
    assert(t != NULL && peer != NULL);
    fill_legs(t, peer, DIRECTION_OUT);
    if (!fx_rate_text(&t->legs[FX_PAY], &t->legs[FX_RECEIVE], t->rate, sizeof t->rate)) {
        t->rate[0] = '\0'; /* fx_check refuses it */
    }
}

int fx_encode(fx_trade_t *t, uint8_t **out, size_t *out_len)
{
    assert(t != NULL && out != NULL && out_len != NULL);
    Corridor__FxLeg legs[2] = {CORRIDOR__FX_LEG__INIT, CORRIDOR__FX_LEG__INIT};
    for (int i = 0; i < 2; i++) {
        legs[i].uetr = t->legs[i].uetr;
        legs[i].amount_minor = t->legs[i].amount_minor;
        legs[i].currency = t->legs[i].currency;
    }
    Corridor__FxProposal msg = CORRIDOR__FX_PROPOSAL__INIT;
    msg.fx_id = t->fx_id;
    msg.pay = &legs[FX_PAY];
    msg.receive = &legs[FX_RECEIVE];
    msg.rate = t->rate;
    msg.created_unix_ms = t->created_unix_ms;
    msg.expires_unix_ms = t->expires_unix_ms;
    size_t len = corridor__fx_proposal__get_packed_size(&msg);
    *out = malloc(len > 0 ? len : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__fx_proposal__pack(&msg, *out);
    assert(*out_len == len);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(*out, *out_len, hash);
    for (int i = 0; i < 2; i++) {
        memcpy(t->legs[i].original_hash, hash, sizeof hash);
    }
    return 0;
}

/* Copies a decoded string into a fixed field; false if it does not fit. */
static bool copy_text(char *dst, size_t dst_size, const char *src)
{
    size_t len = src != NULL ? strnlen(src, dst_size) : 0;
    if (len >= dst_size) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src != NULL ? src : "", len);
    dst[len] = '\0';
    return true;
}

static bool copy_leg(settlement_t *leg, const Corridor__FxLeg *wire)
{
    if (wire == NULL) {
        return false;
    }
    bool ok = copy_text(leg->uetr, sizeof leg->uetr, wire->uetr);
    ok = copy_text(leg->currency, sizeof leg->currency, wire->currency) && ok;
    leg->amount_minor = wire->amount_minor;
    return ok;
}

reason_t fx_decode(const uint8_t *body, size_t len, const char *peer, direction_t direction,
                   fx_trade_t *t)
{
    assert(peer != NULL && t != NULL);
    memset(t, 0, sizeof *t);
    Corridor__FxProposal *msg =
        (Corridor__FxProposal *)wire_unpack(&corridor__fx_proposal__descriptor, len, body);
    if (msg == NULL) {
        fill_legs(t, peer, direction);
        return REASON_FORMAT;
    }
    bool ok = copy_text(t->fx_id, sizeof t->fx_id, msg->fx_id);
    ok = copy_leg(&t->legs[FX_PAY], msg->pay) && ok;
    ok = copy_leg(&t->legs[FX_RECEIVE], msg->receive) && ok;
    ok = copy_text(t->rate, sizeof t->rate, msg->rate) && ok;
    t->created_unix_ms = msg->created_unix_ms;
    t->expires_unix_ms = msg->expires_unix_ms;
    corridor__fx_proposal__free_unpacked(msg, NULL);
    fill_legs(t, peer, direction);
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, len, hash);
    for (int i = 0; i < 2; i++) {
        memcpy(t->legs[i].original_hash, hash, sizeof hash);
    }
    return ok ? REASON_NONE : REASON_FORMAT;
}

/* The trade's three ids: valid UUIDv4s, all different. */
static bool ids_distinct(const fx_trade_t *t)
{
    const settlement_t *pay = &t->legs[FX_PAY], *receive = &t->legs[FX_RECEIVE];
    return uetr_check(t->fx_id) == VALID_OK && uetr_check(pay->uetr) == VALID_OK &&
           uetr_check(receive->uetr) == VALID_OK && strcmp(pay->uetr, receive->uetr) != 0 &&
           strcmp(pay->uetr, t->fx_id) != 0 && strcmp(receive->uetr, t->fx_id) != 0;
}

bool fx_keyed(const fx_trade_t *t, uint32_t inner_version)
{
    assert(t != NULL);
    return ids_distinct(t) && inner_version >= 2 && t->legs[FX_PAY].amount_minor != INT64_MIN &&
           t->legs[FX_RECEIVE].amount_minor != INT64_MIN;
}

reason_t fx_check(const fx_trade_t *t)
{
    assert(t != NULL);
    const settlement_t *pay = &t->legs[FX_PAY], *receive = &t->legs[FX_RECEIVE];
    if (!ids_distinct(t)) {
        return REASON_FORMAT;
    }
    for (int i = 0; i < 2; i++) {
        reason_t r = settlement_check(&t->legs[i]);
        if (r != REASON_NONE) {
            return r;
        }
    }
    char rate[FX_RATE_LEN_MAX + 1];
    if (strcmp(pay->currency, receive->currency) == 0 ||
        !fx_rate_text(pay, receive, rate, sizeof rate) || strcmp(rate, t->rate) != 0) {
        return REASON_FORMAT; /* one currency both ways, or a rate its legs do not imply */
    }
    return REASON_NONE;
}

/* Writes v / 10^decimals with at most `decimals` digits after the point, none trailing. */
static void format_scaled(u128 v, unsigned decimals, char *out, size_t out_size)
{
    char digits[64];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + (unsigned)(v % 10));
        v /= 10;
    } while (v > 0 || n <= decimals);
    size_t first_kept = 0; /* trailing zeros of the fraction are dropped */
    while (first_kept < decimals && digits[first_kept] == '0') {
        first_kept++;
    }
    char text[72];
    size_t k = 0;
    for (size_t i = n; i-- > decimals;) {
        text[k++] = digits[i];
    }
    if (first_kept < decimals) {
        text[k++] = '.';
        for (size_t i = decimals; i-- > first_kept;) {
            text[k++] = digits[i];
        }
    }
    text[k] = '\0';
    snprintf(out, out_size, "%s", text);
}

bool fx_rate_text(const settlement_t *pay, const settlement_t *receive, char *out, size_t out_size)
{
    assert(pay != NULL && receive != NULL && out != NULL);
    const currency_t *cp = currency_find(pay->currency), *cr = currency_find(receive->currency);
    if (cp == NULL || cr == NULL || pay->amount_minor <= 0 || receive->amount_minor <= 0 ||
        pay->amount_minor > CORRIDOR_AMOUNT_MINOR_MAX ||
        receive->amount_minor > CORRIDOR_AMOUNT_MINOR_MAX) {
        return false;
    }
    /* receive / 10^er per pay / 10^ep, in millionths, rounded half up: at most 10^17 * 10^4 *
     * 10^6 over at least 1, well inside 128 bits */
    u128 num =
        (u128)receive->amount_minor * power_of_ten(cp->exponent) * power_of_ten(FX_RATE_DECIMALS);
    u128 den = (u128)pay->amount_minor * power_of_ten(cr->exponent);
    u128 q = (2 * num + den) / (2 * den);
    format_scaled(q, FX_RATE_DECIMALS, out, out_size);
    return true;
}

static bool band_applies(const config_fx_band_t *band, const fx_trade_t *t)
{
    const char *a = t->legs[FX_PAY].currency, *b = t->legs[FX_RECEIVE].currency;
    return (strcmp(a, band->base) == 0 && strcmp(b, band->quote) == 0) ||
           (strcmp(b, band->base) == 0 && strcmp(a, band->quote) == 0);
}

const config_fx_band_t *fx_band_find(const config_peer_t *peer, const fx_trade_t *t)
{
    for (size_t i = 0; i < peer->fx_bands_count; i++) {
        if (band_applies(&peer->fx_bands[i], t)) {
            return &peer->fx_bands[i];
        }
    }
    return NULL;
}

bool fx_band_holds(const config_fx_band_t *band, const fx_trade_t *t)
{
    assert(band_applies(band, t));
    bool base_first = strcmp(t->legs[FX_PAY].currency, band->base) == 0;
    const settlement_t *base = &t->legs[base_first ? FX_PAY : FX_RECEIVE];
    const settlement_t *quote = &t->legs[base_first ? FX_RECEIVE : FX_PAY];
    const currency_t *cb = currency_find(base->currency), *cq = currency_find(quote->currency);
    if (cb == NULL || cq == NULL || base->amount_minor <= 0 || quote->amount_minor <= 0) {
        return false;
    }
    /* rate = (quote / 10^eq) / (base / 10^eb); low / 10^6 <= rate <= high / 10^6, multiplied
     * out: at most 10^15 * 10^17 * 10^4 on the left, inside 128 bits */
    u128 rate_side = (u128)quote->amount_minor * power_of_ten(cb->exponent) * CONFIG_FX_BAND_SCALE;
    u128 base_side = (u128)base->amount_minor * power_of_ten(cq->exponent);
    return (u128)band->low * base_side <= rate_side && rate_side <= (u128)band->high * base_side;
}
