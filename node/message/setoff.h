/*
 * Multilateral set-off (proto/PROTOCOL.md 3.12): three to eight banks whose debts in one currency
 * run round a ring take the same amount off every debt, all or nothing, with no central party.
 *
 * The proposer signs the terms (H10); each participant signs a ballot over the terms' hash (H11),
 * so votes can be relayed hop by hop round the ring and checked by anyone who holds the ring's
 * keys; the proposer alone signs the verdict (H12). These are signatures under domains of their
 * own, not Inner messages bound to one recipient. Pure: no I/O, no clock. Every decode is strict:
 * bytes that would not encode back to themselves are refused, so the signed bytes are the only
 * form of a set-off two nodes ever compare.
 */
#ifndef CORRIDOR_SETOFF_H
#define CORRIDOR_SETOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "corridor/limits.h"
#include "identity.h"

#define SETOFF_TERMS_DOMAIN   "corridor.setoff.v1"          /* H10, signed with its NUL */
#define SETOFF_VOTE_DOMAIN    "corridor.setoff-vote.v1"     /* H11 */
#define SETOFF_VERDICT_DOMAIN "corridor.setoff-decision.v1" /* H12 */
#define SETOFF_HASH_DOMAIN    "corridor.setoff-terms.v1"    /* H13, hashed with its NUL */
#define SETOFF_HASH_BYTES     32
#define SETOFF_RING_MIN       3
#define SETOFF_RING_MAX       8
#define SETOFF_TERMS_MAX      1024 /* encoded terms bytes a peer may send */
#define SETOFF_BALLOT_MAX     128  /* encoded ballot bytes */
#define SETOFF_VERDICT_MAX    128  /* encoded verdict bytes */
#define SETOFF_REASON_LEN     4    /* an ISO reason code */

typedef struct {
    char code[CORRIDOR_NAME_LEN_MAX + 1];
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    uint8_t signing_key[crypto_sign_PUBLICKEYBYTES];
} setoff_member_t;

typedef struct {
    char setoff_id[CORRIDOR_UETR_LEN + 1];
    size_t n;                                 /* SETOFF_RING_MIN..SETOFF_RING_MAX */
    setoff_member_t ring[SETOFF_RING_MAX];    /* ring[i] owes ring[i + 1]; ring[0] decides */
    char currency[CORRIDOR_CURRENCY_LEN + 1]; /* ISO 4217, in the table */
    int64_t amount_minor;                     /* 1..CORRIDOR_AMOUNT_MINOR_MAX; 0: an asking round */
    int64_t created_unix_ms;                  /* >= 0 */
    int64_t deadline_unix_ms;                 /* > created_unix_ms */
} setoff_terms_t;

typedef struct {
    uint8_t terms_hash[SETOFF_HASH_BYTES];
    uint32_t position; /* < the ring's n (the decoder checks < SETOFF_RING_MAX) */
    bool yes;
    char reason[SETOFF_REASON_LEN + 1]; /* "" with yes; 4 upper-case letters or digits with no */
    int64_t most_minor;                 /* >= 0; 0 outside an asking round */
} setoff_ballot_t;

typedef struct {
    uint8_t terms_hash[SETOFF_HASH_BYTES];
    bool commit;
    char reason[SETOFF_REASON_LEN + 1]; /* "" with commit; a code with abort */
} setoff_verdict_t;

/* One vote as carried: the ballot's bytes exactly as signed, decoded, and the signature. */
typedef struct {
    uint8_t ballot_bytes[SETOFF_BALLOT_MAX];
    size_t ballot_len;
    setoff_ballot_t ballot;
    uint8_t signature[crypto_sign_BYTES];
} setoff_vote_t;

/* A SetoffRelay (votes) or SetoffDecision (verdict and votes) as carried. `terms_bytes` is a
 * malloc'd copy owned by the holder (setoff_message_release frees it); `terms` is decoded from
 * it. */
typedef struct {
    uint8_t *terms_bytes;
    size_t terms_len;
    setoff_terms_t terms;
    uint8_t terms_signature[crypto_sign_BYTES];
    uint8_t verdict_bytes[SETOFF_VERDICT_MAX]; /* a decision only */
    size_t verdict_len;
    setoff_verdict_t verdict;
    uint8_t verdict_signature[crypto_sign_BYTES];
    size_t n_votes; /* <= SETOFF_RING_MAX */
    setoff_vote_t votes[SETOFF_RING_MAX];
} setoff_message_t;

/* Terms: encode (protobuf-c packing; *out malloc'd; -1 out of memory) and strict decode: at most
 * SETOFF_TERMS_MAX bytes, a UUIDv4 id (uetr_check), 3..8 members with valid node codes
 * (node_code_check), all distinct, 16-byte key ids equal to identity_key_id of their 32-byte keys,
 * a currency of the table, 0 <= amount <= CORRIDOR_AMOUNT_MINOR_MAX, created >= 0, deadline >
 * created, and the bytes exactly what encoding gives. false otherwise. */
int setoff_terms_encode(const setoff_terms_t *t, uint8_t **out, size_t *out_len);
bool setoff_terms_decode(const uint8_t *bytes, size_t len, setoff_terms_t *t);

/* H13: BLAKE2b-256 over SETOFF_HASH_DOMAIN with its NUL || the terms bytes. */
void setoff_terms_hash(const uint8_t *terms, size_t len, uint8_t out[static SETOFF_HASH_BYTES]);

/* The member's index in the ring, or -1. */
int setoff_position(const setoff_terms_t *t, const char *code);

/* Ballot and verdict: encode into a caller's buffer of SETOFF_BALLOT_MAX / SETOFF_VERDICT_MAX
 * (returns the length, or 0 when it does not fit) and decode strictly (as the terms). */
size_t setoff_ballot_encode(const setoff_ballot_t *b, uint8_t out[static SETOFF_BALLOT_MAX]);
bool setoff_ballot_decode(const uint8_t *bytes, size_t len, setoff_ballot_t *b);
size_t setoff_verdict_encode(const setoff_verdict_t *v, uint8_t out[static SETOFF_VERDICT_MAX]);
bool setoff_verdict_decode(const uint8_t *bytes, size_t len, setoff_verdict_t *v);

/* H10, H11, H12: Ed25519 under the domain (one of SETOFF_TERMS_DOMAIN, SETOFF_VOTE_DOMAIN,
 * SETOFF_VERDICT_DOMAIN; any other is a programmer's error) over the bytes exactly as carried
 * (through envelope_domain_sign). sign: 0, or -1 out of memory. verify: whether it verifies. */
int setoff_sign(const char *domain, const uint8_t *bytes, size_t len,
                const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
                uint8_t signature[static crypto_sign_BYTES]);
bool setoff_verify(const char *domain, const uint8_t *bytes, size_t len,
                   const uint8_t signature[static crypto_sign_BYTES],
                   const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES]);

/* Whether vote `v` is a valid signature by the ring member at its ballot's position over these
 * terms: its ballot bytes decode strictly to what its `ballot` says, the ballot names
 * `terms_hash`, its position is inside the ring (< t->n), and H11 verifies with that member's
 * key of the terms. */
bool setoff_vote_valid(const setoff_terms_t *t, const uint8_t terms_hash[static SETOFF_HASH_BYTES],
                       const setoff_vote_t *v);

/* Signs a ballot with `sign_secret` (the voter's key of the ring) into a vote: its bytes, the
 * ballot decoded back from them, and H11. 0, or -1 (does not fit, would not decode strictly, no
 * memory; *out is then zeroed). */
int setoff_vote_make(const setoff_ballot_t *b,
                     const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
                     setoff_vote_t *out);

/* SetoffRelay (decision false) and SetoffDecision (decision true): encode from a holder (the
 * verdict fields are used by a decision only; *out malloc'd; -1 out of memory) and decode: false
 * when the body does not decode, a field is over its limit (terms SETOFF_TERMS_MAX, a signature
 * not 64 bytes, more than SETOFF_RING_MAX votes), the terms, a ballot or the verdict does not
 * decode strictly. Decode checks no signature: the caller checks them against the keys it trusts
 * (setoff_vote_valid, setoff_verify). */
int setoff_message_encode(const setoff_message_t *m, bool decision, uint8_t **out, size_t *out_len);
bool setoff_message_decode(const uint8_t *body, size_t len, bool decision, setoff_message_t *m);
void setoff_message_release(setoff_message_t *m);

#endif
