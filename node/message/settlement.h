/*
 * A settlement (pacs.008) as the node handles it: the fields, their validation with ISO
 * reason codes, the content hash that makes re-sends idempotent, and the conversion to and
 * from the protobuf body on the wire.
 *
 * Pure: no I/O, no clock (the creation time is a field the caller fills).
 */
#ifndef CORRIDOR_SETTLEMENT_H
#define CORRIDOR_SETTLEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor/limits.h"
#include "reason.h"

#define SETTLEMENT_HASH_BYTES 32
#define VALUE_DATE_LEN        10 /* YYYY-MM-DD */

/* Which way a settlement goes, seen from this node. */
typedef enum {
    DIRECTION_OUT = 0, /* this node pays the peer */
    DIRECTION_IN = 1,  /* the peer pays this node */
} direction_t;

/* Which leg of an FX trade a record is (PROTOCOL.md 3.10). */
typedef enum {
    FX_LEG_NONE = 0,          /* a payment or a return */
    FX_LEG_PROPOSER_PAYS = 1, /* the proposer pays it: money goes the FxProposal's way */
    FX_LEG_ACCEPTOR_PAYS = 2, /* the acceptor pays it: money goes against the FxProposal */
    FX_LEG_SETOFF = 3, /* one edge of a multilateral set-off (PROTOCOL.md 3.12): `fx_id` is the
                          set-off's id, and the money goes against the relay that opened it */
} fx_leg_t;

/* The leg stored in column `fx_leg` (anything else: none). */
static inline fx_leg_t fx_leg_of_column(int column)
{
    return column == FX_LEG_PROPOSER_PAYS   ? FX_LEG_PROPOSER_PAYS
           : column == FX_LEG_ACCEPTOR_PAYS ? FX_LEG_ACCEPTOR_PAYS
           : column == FX_LEG_SETOFF        ? FX_LEG_SETOFF
                                            : FX_LEG_NONE;
}

/* Whether a record of `leg` moves money against the message that opened it. */
static inline bool fx_leg_against(fx_leg_t leg)
{
    return leg == FX_LEG_ACCEPTOR_PAYS || leg == FX_LEG_SETOFF;
}

typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];                /* the other side of the channel */
    direction_t direction;                               /* out: we pay; in: peer pays */
    char uetr[CORRIDOR_UETR_LEN + 1];                    /* PmtId/UETR */
    char end_to_end_id[CORRIDOR_E2E_ID_LEN_MAX + 1];     /* PmtId/EndToEndId */
    int64_t amount_minor;                                /* IntrBkSttlmAmt, minor units */
    char currency[CORRIDOR_CURRENCY_LEN + 1];            /* IntrBkSttlmAmt/@Ccy */
    char value_date[VALUE_DATE_LEN + 1];                 /* IntrBkSttlmDt, or empty */
    char debtor_name[CORRIDOR_PARTY_NAME_LEN_MAX + 1];   /* Dbtr/Nm */
    char debtor_account[CORRIDOR_ACCOUNT_LEN_MAX + 1];   /* DbtrAcct */
    char creditor_name[CORRIDOR_PARTY_NAME_LEN_MAX + 1]; /* Cdtr/Nm */
    char creditor_account[CORRIDOR_ACCOUNT_LEN_MAX + 1]; /* CdtrAcct */
    char remittance[CORRIDOR_REMITTANCE_LEN_MAX + 1];    /* RmtInf/Ustrd */
    int64_t created_unix_ms;                             /* GrpHdr/CreDtTm */
    int64_t expires_unix_ms; /* SttlmTmReq/RjctTm: refused AB05 from then on (3.8.1); 0 none */
    /* A return (pacs.004, PROTOCOL.md 3.9) is kept as a payment of its own, the other way: its
     * `uetr` is the return's id, the descriptive fields above are empty, and these say what it
     * returns. All empty for a payment. */
    char original_uetr[CORRIDOR_UETR_LEN + 1];       /* OrgnlUETR */
    char return_reason[CORRIDOR_REASON_LEN_MAX + 1]; /* RtrRsnInf/Rsn/Cd */
    uint8_t original_hash[32]; /* the original Settlement's body hash (3.7.2); for an FX leg,
                                  the body hash of the FxProposal that opened it (3.10) */
    /* A leg of an FX trade (PROTOCOL.md 3.10) is kept as a payment of its own, opened by the
     * proposer's FxProposal: `direction` is the way that message went (out: we proposed), and
     * the leg the acceptor pays moves money against it. Empty and FX_LEG_NONE otherwise. */
    char fx_id[CORRIDOR_UETR_LEN + 1]; /* the trade's id */
    fx_leg_t fx_leg;
} settlement_t;

/* Whether s is a return (pacs.004) rather than a payment. */
static inline bool settlement_is_return(const settlement_t *s)
{
    return s->original_uetr[0] != '\0';
}

/* Checks every field. REASON_NONE when valid, else the reason to reject with: FORMAT (UETR,
 * text, date, peer code), ZERO_AMOUNT, AMOUNT (negative or too large), CURRENCY (unknown). */
reason_t settlement_check(const settlement_t *s);

/* BLAKE2b-256 over the content that idempotency compares: peer, direction, amount, currency,
 * parties, remittance and end-to-end id. Not the UETR (the key) nor the times (creation,
 * expiry). A return's is its own construction (PROTOCOL.md 3.7.9) over peer, direction,
 * amount, currency, original UETR and reason, so a return never matches a payment. */
void settlement_content_hash(const settlement_t *s, uint8_t out[static SETTLEMENT_HASH_BYTES]);

/* The hash a version-2 StatusReport names: BLAKE2b-256 of a domain tag and the Settlement body
 * exactly as its payer signed it. Unlike the content hash (which says which side keeps the
 * row), payer and payee compute the same value, so the payee's answer binds to those bytes. */
void settlement_body_hash(const uint8_t *body, size_t body_len,
                          uint8_t out[static SETTLEMENT_HASH_BYTES]);

/* Encodes the wire body: corridor.Settlement, or corridor.Return for a return. *out is
 * malloc'd. -1 when out of memory. */
int settlement_encode(const settlement_t *s, uint8_t **out, size_t *out_len);

/* Decodes a wire body received from `peer` in `direction`. REASON_NONE on success, or
 * REASON_FORMAT when the body is not a Settlement or a field overflows its limit (then *s is
 * zeroed but for peer and direction). Field values are not checked: call settlement_check. */
reason_t settlement_decode(const uint8_t *body, size_t len, const char *peer, direction_t direction,
                           settlement_t *s);

/* Decodes a Return body (corridor.Return) received from `peer` in `direction` into a return:
 * uetr is its return_id. REASON_FORMAT when it is not a Return or a field overflows its limit
 * (then the return_id is kept if it fit, and the amount and currency). Values are not checked:
 * call return_check. */
reason_t return_decode(const uint8_t *body, size_t len, const char *peer, direction_t direction,
                       settlement_t *s);

/* settlement_check for a return: the id, peer, amount and currency as a payment's, and FF01
 * when the original UETR or the reason code is malformed, or a descriptive field is set. */
reason_t return_check(const settlement_t *s);

/* Whether s is a leg of an FX trade or of a set-off (neither is decided on its own). */
static inline bool settlement_is_fx_leg(const settlement_t *s)
{
    return s->fx_leg != FX_LEG_NONE;
}

/* Whether s is a leg of a multilateral set-off (PROTOCOL.md 3.12). */
static inline bool settlement_is_setoff_leg(const settlement_t *s)
{
    return s->fx_leg == FX_LEG_SETOFF;
}

/* Whether the message that decides a record of `leg` going `direction` is ours: the payee's
 * answer decides a payment, a trade or a return (ours when it is incoming); the edge's debtor,
 * who sent the relay, also sends the decision that closes a set-off leg (3.12.3). */
static inline bool settlement_decided_by_us(fx_leg_t leg, direction_t direction)
{
    return leg == FX_LEG_SETOFF ? direction == DIRECTION_OUT : direction == DIRECTION_IN;
}

/* The way the money of s goes, seen from this node: its direction, but for the leg an acceptor
 * pays, which goes against the FxProposal that opened it. */
static inline direction_t settlement_money_direction(const settlement_t *s)
{
    if (!fx_leg_against(s->fx_leg)) {
        return s->direction;
    }
    return s->direction == DIRECTION_OUT ? DIRECTION_IN : DIRECTION_OUT;
}

/* The amount as the rows of s move it: negative for the leg an acceptor pays, whose rows are
 * those of the message's direction with the money the other way (PROTOCOL.md 3.10.5). */
static inline int64_t settlement_row_amount(const settlement_t *s)
{
    return fx_leg_against(s->fx_leg) ? -s->amount_minor : s->amount_minor;
}

const char *direction_name(direction_t d);

#endif
