/*
 * A payment-versus-payment FX trade (PROTOCOL.md 3.10): one signed FxProposal holds both legs,
 * so that one decision of the acceptor books both or neither and nobody pays a leg without
 * receiving the other (Herstatt risk). Each leg is then kept as a payment of its own
 * (settlement_t with fx_id and fx_leg), so digests, statements, cuts and repairs carry it.
 *
 * This module converts the FxProposal to and from its legs, checks it, writes the rate it must
 * state, and tests a rate band, all in integers: the legs are the trade, the rate text only
 * describes them. Pure: no I/O, no clock.
 */
#ifndef CORRIDOR_FX_H
#define CORRIDOR_FX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "settlement.h"

#define FX_RATE_LEN_MAX  40 /* the rate text, e.g. "450.123456" */
#define FX_RATE_DECIMALS 6  /* digits after the point fx_rate_text writes at most */

/* The two legs, in this order in fx_trade_t.legs. */
#define FX_PAY     0 /* the proposer pays it (FX_LEG_PROPOSER_PAYS) */
#define FX_RECEIVE 1 /* the proposer receives it (FX_LEG_ACCEPTOR_PAYS) */

typedef struct {
    char fx_id[CORRIDOR_UETR_LEN + 1];
    settlement_t legs[2]; /* FX_PAY, FX_RECEIVE: peer, direction, uetr, amount, currency,
                             fx_id, fx_leg, times and the body hash (original_hash) */
    char rate[FX_RATE_LEN_MAX + 1];
    int64_t created_unix_ms;
    int64_t expires_unix_ms; /* 0: none */
} fx_trade_t;

/* Completes a trade we propose to `peer`: the caller has set fx_id, the legs' uetr, amount and
 * currency, and the times; this fills the legs' peer, direction (out), fx fields and times, and
 * the rate text the legs imply. */
void fx_trade_prepare(fx_trade_t *t, const char *peer);

/* Encodes the FxProposal; then sets each leg's original_hash to its body hash. *out is
 * malloc'd. -1 when out of memory. */
int fx_encode(fx_trade_t *t, uint8_t **out, size_t *out_len);

/* Decodes an FxProposal received from `peer` in `direction`. REASON_FORMAT when it does not
 * decode, a leg is missing, or a field overflows its limit (then fx_id is kept if it fit, and
 * each leg's uetr, amount and currency that fit). Values are not checked: call fx_check. */
reason_t fx_decode(const uint8_t *body, size_t len, const char *peer, direction_t direction,
                   fx_trade_t *t);

/* Checks a decoded or prepared trade: ids are UUIDv4 and all three differ, each leg as a
 * payment (settlement_check), the currencies differ, the rate is the one the legs imply.
 * REASON_NONE or the reason to refuse it with. */
reason_t fx_check(const fx_trade_t *t);

/* Whether a received trade can be recorded by its legs' UETRs (PROTOCOL.md 3.10.4 step 2): its
 * three ids valid and all different, both amounts negatable (leg 2's rows carry -m), and the
 * Inner that carried it of version 2 (the answer must name its body). One that is not is answered
 * RJCT FF01 and recorded nowhere, nor imported by a repair. */
bool fx_keyed(const fx_trade_t *t, uint32_t inner_version);

/* The rate the legs imply: units of the receive currency per unit of the pay currency, at most
 * FX_RATE_DECIMALS decimals, rounded half up, no trailing zeros ("450", "0.002222"). false when
 * a currency is unknown or an amount is not positive. */
bool fx_rate_text(const settlement_t *pay, const settlement_t *receive, char *out, size_t out_size);

/* The band the peer's config sets for the trade's pair (`fx_band.BASE_QUOTE`, either way round),
 * or NULL when none does. */
const config_fx_band_t *fx_band_find(const config_peer_t *peer, const fx_trade_t *t);

/* Whether the rate the legs imply (quote per base, exactly, in integers) lies within the band,
 * which must be for the trade's pair. */
bool fx_band_holds(const config_fx_band_t *band, const fx_trade_t *t);

#endif
