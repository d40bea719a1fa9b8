/* Settlements: validation, content hash and wire conversion; see settlement.h. */
#include "settlement.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "corridor.pb-c.h"
#include "validate.h"
#include "wire.h"

#define CONTENT_HASH_DOMAIN "corridor.settlement-content.v1"
#define BODY_HASH_DOMAIN    "corridor.settlement-body.v2" /* hashed with its NUL */
#define RETURN_HASH_DOMAIN  "corridor.return-content.v1"
#define FX_LEG_HASH_DOMAIN  "corridor.fx-leg-content.v1"

const char *direction_name(direction_t d)
{
    return d == DIRECTION_OUT ? "out" : "in";
}

static bool value_date_valid(const char *d)
{
    if (d[0] == '\0') {
        return true; /* optional */
    }
    if (strlen(d) != VALUE_DATE_LEN || d[4] != '-' || d[7] != '-') {
        return false;
    }
    for (int i = 0; i < VALUE_DATE_LEN; i++) {
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) {
            return false;
        }
    }
    int month = (d[5] - '0') * 10 + (d[6] - '0');
    int day = (d[8] - '0') * 10 + (d[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

reason_t settlement_check(const settlement_t *s)
{
    assert(s != NULL);
    if (node_code_check(s->peer) != VALID_OK || uetr_check(s->uetr) != VALID_OK ||
        !value_date_valid(s->value_date) ||
        text_check(s->end_to_end_id, CORRIDOR_E2E_ID_LEN_MAX) != VALID_OK ||
        text_check(s->debtor_name, CORRIDOR_PARTY_NAME_LEN_MAX) != VALID_OK ||
        text_check(s->debtor_account, CORRIDOR_ACCOUNT_LEN_MAX) != VALID_OK ||
        text_check(s->creditor_name, CORRIDOR_PARTY_NAME_LEN_MAX) != VALID_OK ||
        text_check(s->creditor_account, CORRIDOR_ACCOUNT_LEN_MAX) != VALID_OK ||
        text_check(s->remittance, CORRIDOR_REMITTANCE_LEN_MAX) != VALID_OK) {
        return REASON_FORMAT;
    }
    if (currency_find(s->currency) == NULL) {
        return REASON_CURRENCY;
    }
    switch (amount_check(s->amount_minor)) {
    case VALID_OK:
        return REASON_NONE;
    case VALID_E_ZERO:
        return REASON_ZERO_AMOUNT;
    default:
        return REASON_AMOUNT;
    }
}

static void hash_field(crypto_generichash_state *st, const char *text)
{
    uint32_t len = (uint32_t)strlen(text);
    uint8_t len_le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
    crypto_generichash_update(st, len_le, sizeof len_le);
    crypto_generichash_update(st, (const uint8_t *)text, len);
}

void settlement_content_hash(const settlement_t *s, uint8_t out[static SETTLEMENT_HASH_BYTES])
{
    assert(s != NULL && out != NULL);
    bool is_return = settlement_is_return(s);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SETTLEMENT_HASH_BYTES);
    if (settlement_is_fx_leg(s)) {
        crypto_generichash_update(&st, (const uint8_t *)FX_LEG_HASH_DOMAIN,
                                  sizeof FX_LEG_HASH_DOMAIN);
    } else if (is_return) {
        crypto_generichash_update(&st, (const uint8_t *)RETURN_HASH_DOMAIN,
                                  sizeof RETURN_HASH_DOMAIN);
    } else {
        crypto_generichash_update(&st, (const uint8_t *)CONTENT_HASH_DOMAIN,
                                  sizeof CONTENT_HASH_DOMAIN);
    }
    uint8_t fixed[9];
    uint64_t amount = (uint64_t)s->amount_minor;
    for (int i = 0; i < 8; i++) {
        fixed[i] = (uint8_t)(amount >> (8 * i));
    }
    fixed[8] = (uint8_t)s->direction;
    crypto_generichash_update(&st, fixed, sizeof fixed);
    hash_field(&st, s->peer);
    hash_field(&st, s->currency);
    if (settlement_is_fx_leg(s)) {
        uint8_t leg = (uint8_t)s->fx_leg;
        hash_field(&st, s->fx_id);
        crypto_generichash_update(&st, &leg, 1);
        crypto_generichash_final(&st, out, SETTLEMENT_HASH_BYTES);
        return;
    }
    if (is_return) {
        hash_field(&st, s->original_uetr);
        hash_field(&st, s->return_reason);
        crypto_generichash_final(&st, out, SETTLEMENT_HASH_BYTES);
        return;
    }
    hash_field(&st, s->end_to_end_id);
    hash_field(&st, s->debtor_name);
    hash_field(&st, s->debtor_account);
    hash_field(&st, s->creditor_name);
    hash_field(&st, s->creditor_account);
    hash_field(&st, s->remittance);
    crypto_generichash_final(&st, out, SETTLEMENT_HASH_BYTES);
}

void settlement_body_hash(const uint8_t *body, size_t body_len,
                          uint8_t out[static SETTLEMENT_HASH_BYTES])
{
    assert(body != NULL || body_len == 0);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SETTLEMENT_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)BODY_HASH_DOMAIN, sizeof BODY_HASH_DOMAIN);
    if (body_len > 0) {
        crypto_generichash_update(&st, body, body_len);
    }
    crypto_generichash_final(&st, out, SETTLEMENT_HASH_BYTES);
}

static int return_encode(const settlement_t *s, uint8_t **out, size_t *out_len)
{
    Corridor__Return msg = CORRIDOR__RETURN__INIT;
    msg.return_id = (char *)s->uetr;
    msg.original_uetr = (char *)s->original_uetr;
    msg.amount_minor = s->amount_minor;
    msg.currency = (char *)s->currency;
    msg.reason = (char *)s->return_reason;
    msg.settlement_hash =
        (ProtobufCBinaryData){sizeof s->original_hash, (uint8_t *)s->original_hash};
    size_t len = corridor__return__get_packed_size(&msg);
    *out = malloc(len > 0 ? len : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__return__pack(&msg, *out);
    assert(*out_len == len);
    return 0;
}

int settlement_encode(const settlement_t *s, uint8_t **out, size_t *out_len)
{
    assert(s != NULL && out != NULL && out_len != NULL);
    assert(!settlement_is_fx_leg(s) && "a leg travels in its trade's FxProposal (fx_encode)");
    if (settlement_is_return(s)) {
        return return_encode(s, out, out_len);
    }
    Corridor__Party debtor = CORRIDOR__PARTY__INIT;
    Corridor__Party creditor = CORRIDOR__PARTY__INIT;
    Corridor__Settlement msg = CORRIDOR__SETTLEMENT__INIT;
    debtor.name = (char *)s->debtor_name;
    debtor.account = (char *)s->debtor_account;
    creditor.name = (char *)s->creditor_name;
    creditor.account = (char *)s->creditor_account;
    msg.uetr = (char *)s->uetr;
    msg.end_to_end_id = (char *)s->end_to_end_id;
    msg.amount_minor = s->amount_minor;
    msg.currency = (char *)s->currency;
    msg.value_date = (char *)s->value_date;
    msg.debtor = &debtor;
    msg.creditor = &creditor;
    msg.remittance = (char *)s->remittance;
    msg.created_unix_ms = s->created_unix_ms;
    msg.expires_unix_ms = s->expires_unix_ms;
    size_t len = corridor__settlement__get_packed_size(&msg);
    *out = malloc(len > 0 ? len : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__settlement__pack(&msg, *out);
    assert(*out_len == len);
    return 0;
}

/* Copies a decoded string into a fixed field; false if it does not fit. */
static bool copy_field(char *dst, size_t dst_size, const char *src)
{
    if (src == NULL) {
        dst[0] = '\0';
        return true;
    }
    size_t len = strnlen(src, dst_size);
    if (len >= dst_size) {
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

#define COPY(field, src) copy_field(s->field, sizeof s->field, (src))

reason_t settlement_decode(const uint8_t *body, size_t len, const char *peer, direction_t direction,
                           settlement_t *s)
{
    assert(peer != NULL && s != NULL);
    memset(s, 0, sizeof *s);
    bool ok = COPY(peer, peer);
    s->direction = direction;
    Corridor__Settlement *msg =
        (Corridor__Settlement *)wire_unpack(&corridor__settlement__descriptor, len, body);
    if (msg == NULL) {
        return REASON_FORMAT;
    }
    bool keyed = COPY(uetr, msg->uetr) && COPY(currency, msg->currency);
    ok = ok && keyed && COPY(end_to_end_id, msg->end_to_end_id) &&
         COPY(value_date, msg->value_date) && COPY(remittance, msg->remittance);
    if (ok && msg->debtor != NULL) {
        ok = COPY(debtor_name, msg->debtor->name) && COPY(debtor_account, msg->debtor->account);
    }
    if (ok && msg->creditor != NULL) {
        ok = COPY(creditor_name, msg->creditor->name) &&
             COPY(creditor_account, msg->creditor->account);
    }
    s->amount_minor = msg->amount_minor;
    s->created_unix_ms = msg->created_unix_ms;
    s->expires_unix_ms = msg->expires_unix_ms;
    corridor__settlement__free_unpacked(msg, NULL);
    if (!ok) {
        /* a field over its limit: keep what identifies the payment, so that it can still be
         * rejected FF01 and answered, and drop the rest */
        settlement_t kept = *s;
        memset(s, 0, sizeof *s);
        COPY(peer, peer);
        s->direction = direction;
        if (keyed) {
            memcpy(s->uetr, kept.uetr, sizeof s->uetr);
            memcpy(s->currency, kept.currency, sizeof s->currency);
            s->amount_minor = kept.amount_minor;
            s->created_unix_ms = kept.created_unix_ms;
            s->expires_unix_ms = kept.expires_unix_ms;
        }
        return REASON_FORMAT;
    }
    return REASON_NONE;
}

reason_t return_decode(const uint8_t *body, size_t len, const char *peer, direction_t direction,
                       settlement_t *s)
{
    assert(peer != NULL && s != NULL);
    memset(s, 0, sizeof *s);
    bool ok = COPY(peer, peer);
    s->direction = direction;
    Corridor__Return *msg =
        (Corridor__Return *)wire_unpack(&corridor__return__descriptor, len, body);
    if (msg == NULL) {
        return REASON_FORMAT;
    }
    bool keyed = COPY(uetr, msg->return_id) && COPY(currency, msg->currency);
    if (!keyed) {
        s->uetr[0] = '\0';
    }
    s->amount_minor = msg->amount_minor;
    ok = ok && keyed && COPY(original_uetr, msg->original_uetr) &&
         COPY(return_reason, msg->reason) && msg->settlement_hash.len == sizeof s->original_hash;
    if (ok) {
        memcpy(s->original_hash, msg->settlement_hash.data, sizeof s->original_hash);
    } else {
        s->original_uetr[0] = '\0';
        s->return_reason[0] = '\0';
    }
    corridor__return__free_unpacked(msg, NULL);
    return ok ? REASON_NONE : REASON_FORMAT;
}

reason_t return_check(const settlement_t *s)
{
    assert(s != NULL);
    if (uetr_check(s->original_uetr) != VALID_OK ||
        reason_code_check(s->return_reason) != VALID_OK || s->end_to_end_id[0] != '\0' ||
        s->value_date[0] != '\0' || s->debtor_name[0] != '\0' || s->debtor_account[0] != '\0' ||
        s->creditor_name[0] != '\0' || s->creditor_account[0] != '\0' || s->remittance[0] != '\0') {
        return REASON_FORMAT;
    }
    return settlement_check(s);
}
