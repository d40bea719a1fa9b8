/*
 * Channel digests: how two nodes prove, in one comparison, that they hold the same set of
 * settlements for their channel, and find where they differ with few more.
 *
 * Each settlement of a channel has a canonical entry hash computed the same way on both sides
 * (its UETR, payer and payee by name, never "in" or "out"; amount, currency, final status and
 * reason).
 * A set's fingerprint is the sum of its entry hashes modulo 2^256 with the count beside it, as
 * in the Negentropy protocol: order does not matter, one entry can be added or removed without
 * touching the others (so the ledger keeps each channel's digest up to date in O(1) per
 * change), and the fingerprint of any range of UETRs is one aggregate over an index range.
 */
#ifndef CORRIDOR_DIGEST_H
#define CORRIDOR_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define DIGEST_BYTES 32

/* acc += x and acc -= x, modulo 2^256 (little-endian). */
void digest_add(uint8_t acc[static DIGEST_BYTES], const uint8_t x[static DIGEST_BYTES]);
void digest_sub(uint8_t acc[static DIGEST_BYTES], const uint8_t x[static DIGEST_BYTES]);

/* The canonical hash of one channel entry (proto/PROTOCOL.md 4.1; status as the JSON names it:
 * pending, settled, rejected, returned; reason "" when none). */
void digest_entry(const char *payer, const char *payee, const char *uetr, int64_t amount_minor,
                  const char *currency, const char *status, const char *reason,
                  uint8_t out[static DIGEST_BYTES]);

/* The canonical hash of a return (PROTOCOL.md 3.7.9): as digest_entry, under its own tag, with
 * the UETR of the payment it returns and its return reason. `payer` is the returner. */
void digest_return_entry(const char *payer, const char *payee, const char *return_id,
                         const char *original_uetr, int64_t amount_minor, const char *currency,
                         const char *status, const char *reason, const char *return_reason,
                         uint8_t out[static DIGEST_BYTES]);

/* The canonical hash of a leg of an FX trade (PROTOCOL.md 3.7.12): as digest_entry, under its own
 * tag, with the trade's id after the leg's UETR. `payer` is the node that pays the leg. */
void digest_fx_leg_entry(const char *payer, const char *payee, const char *uetr, const char *fx_id,
                         int64_t amount_minor, const char *currency, const char *status,
                         const char *reason, uint8_t out[static DIGEST_BYTES]);

/* The canonical hash of one edge's leg of a multilateral set-off (PROTOCOL.md 3.7.13): as
 * digest_entry, under its own tag. `uetr` is the set-off's id; `payer` is the edge's creditor,
 * whose claim the set-off takes down. */
void digest_setoff_leg_entry(const char *payer, const char *payee, const char *uetr,
                             int64_t amount_minor, const char *currency, const char *status,
                             const char *reason, uint8_t out[static DIGEST_BYTES]);

/* Registers the SQL functions the ledger uses on a connection:
 *   corridor_digest_update(digest, sub, add)  digest - sub + add (sub/add may be NULL)
 *   corridor_sum256(hash)                     aggregate: the sum of 32-byte hashes
 * Returns an SQLite result code. */
int digest_register_sql(sqlite3 *db);

#endif
