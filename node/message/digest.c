/* Channel digests: sums of canonical entry hashes modulo 2^256; see digest.h. */
#include "digest.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#define ENTRY_DOMAIN      "corridor.channel-entry.v1"
#define RETURN_DOMAIN     "corridor.channel-return.v1"
#define FX_LEG_DOMAIN     "corridor.channel-fx-leg.v1"
#define SETOFF_LEG_DOMAIN "corridor.channel-setoff-leg.v1"

void digest_add(uint8_t acc[static DIGEST_BYTES], const uint8_t x[static DIGEST_BYTES])
{
    unsigned carry = 0;
    for (size_t i = 0; i < DIGEST_BYTES; i++) {
        unsigned sum = (unsigned)acc[i] + x[i] + carry;
        acc[i] = (uint8_t)sum;
        carry = sum >> 8;
    }
}

void digest_sub(uint8_t acc[static DIGEST_BYTES], const uint8_t x[static DIGEST_BYTES])
{
    unsigned borrow = 0;
    for (size_t i = 0; i < DIGEST_BYTES; i++) {
        unsigned sub = (unsigned)x[i] + borrow;
        borrow = acc[i] < sub;
        acc[i] = (uint8_t)((unsigned)acc[i] + (borrow << 8) - sub);
    }
}

static void hash_text(crypto_generichash_state *st, const char *text)
{
    uint8_t len = (uint8_t)strnlen(text, 255);
    crypto_generichash_update(st, &len, 1);
    crypto_generichash_update(st, (const uint8_t *)text, len);
}

/* One canonical entry hash: under `domain`, the id, for a return the payment it returns, the
 * parties, amount, currency, status, reason, and for a return its reason (3.7.4, 3.7.10). */
static void entry_digest(const char *domain, size_t domain_size, const char *id,
                         const char *original_uetr, const char *payer, const char *payee,
                         int64_t amount_minor, const char *currency, const char *status,
                         const char *reason, const char *return_reason,
                         uint8_t out[static DIGEST_BYTES])
{
    assert(id && payer && payee && currency && status && reason && out);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DIGEST_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, domain_size);
    hash_text(&st, id);
    if (original_uetr != NULL) {
        hash_text(&st, original_uetr);
    }
    hash_text(&st, payer);
    hash_text(&st, payee);
    uint8_t amount[8];
    for (int i = 0; i < 8; i++) {
        amount[i] = (uint8_t)((uint64_t)amount_minor >> (8 * i));
    }
    crypto_generichash_update(&st, amount, sizeof amount);
    hash_text(&st, currency);
    hash_text(&st, status);
    hash_text(&st, reason);
    if (return_reason != NULL) {
        hash_text(&st, return_reason);
    }
    crypto_generichash_final(&st, out, DIGEST_BYTES);
}

void digest_entry(const char *payer, const char *payee, const char *uetr, int64_t amount_minor,
                  const char *currency, const char *status, const char *reason,
                  uint8_t out[static DIGEST_BYTES])
{
    entry_digest(ENTRY_DOMAIN, sizeof ENTRY_DOMAIN, uetr, NULL, payer, payee, amount_minor,
                 currency, status, reason, NULL, out);
}

void digest_return_entry(const char *payer, const char *payee, const char *return_id,
                         const char *original_uetr, int64_t amount_minor, const char *currency,
                         const char *status, const char *reason, const char *return_reason,
                         uint8_t out[static DIGEST_BYTES])
{
    assert(original_uetr != NULL && return_reason != NULL);
    entry_digest(RETURN_DOMAIN, sizeof RETURN_DOMAIN, return_id, original_uetr, payer, payee,
                 amount_minor, currency, status, reason, return_reason, out);
}

void digest_fx_leg_entry(const char *payer, const char *payee, const char *uetr, const char *fx_id,
                         int64_t amount_minor, const char *currency, const char *status,
                         const char *reason, uint8_t out[static DIGEST_BYTES])
{
    assert(fx_id != NULL);
    /* the trade's id where a return's entry hashes the payment it returns */
    entry_digest(FX_LEG_DOMAIN, sizeof FX_LEG_DOMAIN, uetr, fx_id, payer, payee, amount_minor,
                 currency, status, reason, NULL, out);
}

void digest_setoff_leg_entry(const char *payer, const char *payee, const char *uetr,
                             int64_t amount_minor, const char *currency, const char *status,
                             const char *reason, uint8_t out[static DIGEST_BYTES])
{
    entry_digest(SETOFF_LEG_DOMAIN, sizeof SETOFF_LEG_DOMAIN, uetr, NULL, payer, payee,
                 amount_minor, currency, status, reason, NULL, out);
}

/* corridor_digest_update(digest, sub, add) */
static void sql_update(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    assert(argc == 3);
    uint8_t acc[DIGEST_BYTES] = {0};
    if (sqlite3_value_bytes(argv[0]) == DIGEST_BYTES) {
        memcpy(acc, sqlite3_value_blob(argv[0]), DIGEST_BYTES);
    }
    if (sqlite3_value_bytes(argv[1]) == DIGEST_BYTES) {
        digest_sub(acc, sqlite3_value_blob(argv[1]));
    }
    if (sqlite3_value_bytes(argv[2]) == DIGEST_BYTES) {
        digest_add(acc, sqlite3_value_blob(argv[2]));
    }
    sqlite3_result_blob(ctx, acc, DIGEST_BYTES, SQLITE_TRANSIENT);
}

static void sql_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    assert(argc == 1);
    uint8_t *acc = sqlite3_aggregate_context(ctx, DIGEST_BYTES);
    if (acc != NULL && sqlite3_value_bytes(argv[0]) == DIGEST_BYTES) {
        digest_add(acc, sqlite3_value_blob(argv[0]));
    }
}

static void sql_sum_final(sqlite3_context *ctx)
{
    uint8_t *acc = sqlite3_aggregate_context(ctx, DIGEST_BYTES); /* zeroed when no rows */
    if (acc == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_blob(ctx, acc, DIGEST_BYTES, SQLITE_TRANSIENT);
}

int digest_register_sql(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
    int rc = sqlite3_create_function(db, "corridor_digest_update", 3, flags, NULL, sql_update, NULL,
                                     NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function(db, "corridor_sum256", 1, flags, NULL, NULL, sql_sum_step,
                                     sql_sum_final);
    }
    return rc;
}
