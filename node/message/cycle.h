/*
 * Settlement cycles (proto/PROTOCOL.md 3.11): the statement both sides of a channel sign for a
 * cycle (its cut, per currency gross both ways, net and count, and the digest of its entries),
 * the messages that close a cycle (CycleProposal, CycleAnswer), and the pacs.009 with which the
 * net debtor says it paid (NetSettlement).
 *
 * A statement is stated by node codes (first sorts lower), so both sides sign the same bytes;
 * cycle_statement_from_view turns one node's figures (paid, received) into it. Pure: no I/O, no
 * clock. Every decode is strict: a statement that would not encode back to the same bytes is
 * refused, so two nodes can compare statements by their bytes.
 */
#ifndef CORRIDOR_CYCLE_H
#define CORRIDOR_CYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "corridor/limits.h"
#include "digest.h"

#define CYCLE_DOMAIN           "corridor.cycle.v1"           /* H8, signed with its NUL */
#define CYCLE_STATEMENT_DOMAIN "corridor.cycle-statement.v1" /* H9, hashed with its NUL */
#define CYCLE_HASH_BYTES       32
#define CYCLE_CURRENCIES_MAX   64  /* currencies in one statement */
#define CYCLE_ERROR_MAX        200 /* bytes of a CycleAnswer's error */
#define CYCLE_REFERENCE_MAX    35  /* a NetSettlement's reference and clearing system (Max35Text) */
#define CYCLE_STATEMENT_MAX    4096 /* encoded statement bytes a peer may send */

/* One currency of a statement, by node codes. */
typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t first_to_second;
    int64_t second_to_first;
    int64_t net_first; /* second_to_first - first_to_second */
    uint64_t count;
} cycle_currency_t;

typedef struct {
    char first[CORRIDOR_NAME_LEN_MAX + 1];
    char second[CORRIDOR_NAME_LEN_MAX + 1];
    uint64_t cycle;
    uint64_t first_sent;
    uint64_t second_sent;
    size_t n_currencies;
    cycle_currency_t currencies[CYCLE_CURRENCIES_MAX]; /* ascending by code */
    uint8_t digest[DIGEST_BYTES];
    uint64_t entry_count;
} cycle_statement_t;

/* One node's figures in one currency: what it paid and received in settled entries, and how
 * many entries were final. */
typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t paid;
    int64_t received;
    uint64_t count;
} cycle_view_t;

/* Fills a statement from one node's view: `self` and `peer` by code, its cut (our bound, the
 * peer's bound) and its figures (n <= CYCLE_CURRENCIES_MAX, ascending, no currency twice, none
 * with count 0). false when a net leaves int64. */
bool cycle_statement_from_view(cycle_statement_t *st, const char *self, const char *peer,
                               uint64_t cycle, uint64_t own_sent, uint64_t peer_sent,
                               const cycle_view_t *views, size_t n,
                               const uint8_t digest[static DIGEST_BYTES], uint64_t entry_count);

/* Whether `self` is `first` in statements with `peer`. */
bool cycle_self_first(const char *self, const char *peer);

/* A currency's figures from one node's view (paid, received, net = received - paid). */
void cycle_currency_view(const cycle_currency_t *c, bool self_first, int64_t *paid,
                         int64_t *received, int64_t *net);

/* Encodes a statement (protobuf-c packing). *out is malloc'd; -1 when out of memory. */
int cycle_statement_encode(const cycle_statement_t *st, uint8_t **out, size_t *out_len);

/* Decodes a statement strictly: at most CYCLE_STATEMENT_MAX bytes, names of at most
 * CORRIDOR_NAME_LEN_MAX, first sorting before second, cycle >= 1, currencies known (ISO 4217
 * table), strictly ascending, each with count >= 1 and net_first equal to its grosses' difference,
 * gross >= 0, a 32-byte digest, and the bytes exactly what encoding it gives. false otherwise. */
bool cycle_statement_decode(const uint8_t *body, size_t len, cycle_statement_t *st);

/* H8 over an encoded statement. */
int cycle_sign(const uint8_t *statement, size_t len,
               const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
               uint8_t signature[static crypto_sign_BYTES]);
bool cycle_verify(const uint8_t *statement, size_t len, const uint8_t *signature,
                  const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES]);

/* H9 over an encoded statement. */
void cycle_statement_hash(const uint8_t *statement, size_t len,
                          uint8_t out[static CYCLE_HASH_BYTES]);

/* CycleProposal: the statement bytes and the proposer's signature. Decoded fields point into
 * a malloc'd copy (*owned, free it): statement and signature may be empty or of any length. */
int cycle_proposal_encode(const uint8_t *statement, size_t len,
                          const uint8_t signature[static crypto_sign_BYTES], uint8_t **out,
                          size_t *out_len);

typedef struct {
    uint64_t cycle;
    uint8_t signature[crypto_sign_BYTES];
    bool has_signature; /* 64 bytes were carried */
    uint8_t *statement; /* NULL when absent */
    size_t statement_len;
    char error[CYCLE_ERROR_MAX + 1];
} cycle_answer_t;

/* Decodes a CycleProposal into an answer-shaped holder (cycle 0, error empty): false when it
 * does not decode, the signature is not 64 bytes, or the statement is empty or too long. */
bool cycle_proposal_decode(const uint8_t *body, size_t len, cycle_answer_t *p);

int cycle_answer_encode(const cycle_answer_t *a, uint8_t **out, size_t *out_len);

/* Decodes a CycleAnswer: false when it does not decode, a signature is neither absent nor 64
 * bytes, the statement is over CYCLE_STATEMENT_MAX, or the error over CYCLE_ERROR_MAX. */
bool cycle_answer_decode(const uint8_t *body, size_t len, cycle_answer_t *a);

void cycle_answer_release(cycle_answer_t *a);

/* pacs.009: a cycle's net, paid outside the channel. */
typedef struct {
    char settlement_id[CORRIDOR_UETR_LEN + 1];
    uint64_t cycle;
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t amount_minor;
    char reference[CYCLE_REFERENCE_MAX + 1];
    char method[5];
    char clearing_system[CYCLE_REFERENCE_MAX + 1];
    int64_t created_unix_ms;
    uint8_t statement_hash[CYCLE_HASH_BYTES];
} net_settlement_t;

int net_settlement_encode(const net_settlement_t *n, uint8_t **out, size_t *out_len);

/* Decodes: false when it does not decode or a field does not fit (the id is kept if it fit). */
bool net_settlement_decode(const uint8_t *body, size_t len, net_settlement_t *n);

/* The rules of PROTOCOL.md 3.11.3 beyond decoding: a UUIDv4 id, cycle >= 1, a known currency,
 * amount > 0, a reference and (with CLRG only) a clearing system of 1 to 35 printable ASCII
 * bytes, a known method. NULL when it holds, else why not. */
const char *net_settlement_check(const net_settlement_t *n);

/* Whether `text` is 1 to CYCLE_REFERENCE_MAX printable ASCII bytes. */
bool cycle_reference_valid(const char *text);

#endif
