/*
 * Every size and count limit in Corridor, in one place.
 *
 * Anything a peer, a file or the command line can influence is bounded by a constant
 * here and checked before memory is allocated for it. Names end in their unit.
 */
#ifndef CORRIDOR_LIMITS_H
#define CORRIDOR_LIMITS_H

#include <stdint.h>

/* Node codes: BIC-like, 4 to 11 upper-case letters and digits, starting with a letter. */
#define CORRIDOR_NAME_LEN_MIN 4
#define CORRIDOR_NAME_LEN_MAX 11

/* A ZeroMQ endpoint such as tcp://127.0.0.1:7001 (kept short: libinih reads 200-byte lines). */
#define CORRIDOR_ENDPOINT_LEN_MAX 128

/* Largest amount of one settlement, in minor units: 10^17 (10^15 units of a 2-decimal
 * currency; Iranian rial amounts are large). Keeps sums of many amounts far from INT64_MAX. */
#define CORRIDOR_AMOUNT_MINOR_MAX INT64_C(100000000000000000)

/* ISO 20022 text limits. */
#define CORRIDOR_PARTY_NAME_LEN_MAX 140 /* Max140Text */
#define CORRIDOR_ACCOUNT_LEN_MAX    34  /* IBAN / Max34Text */
#define CORRIDOR_REMITTANCE_LEN_MAX 140 /* RmtInf/Ustrd, Max140Text */
#define CORRIDOR_E2E_ID_LEN_MAX     35  /* EndToEndId, Max35Text */
#define CORRIDOR_REASON_LEN_MAX     4   /* ISO external reason codes are 4 characters */

/* UETR as text: 8-4-4-4-12 lower-case hex. */
#define CORRIDOR_UETR_LEN 36

/* Currencies a node may accept. */
#define CORRIDOR_CURRENCIES_MAX 32
#define CORRIDOR_CURRENCY_LEN   3

/* Peers per node. */
#define CORRIDOR_PEERS_MAX 64

/* Peer card: one line; keys in hex and Z85 plus name and endpoint. */
#define CORRIDOR_CARD_LEN_MAX 512

/* Config file: libinih (Debian 12, r55) reads lines into a 200-byte buffer, newline and NUL
 * included, and splits a longer one silently: 198 bytes of text is the most that stays whole. */
#define CORRIDOR_CONFIG_LINE_LEN_MAX 198
#define CORRIDOR_CONFIG_BYTES_MAX    (64 * 1024)

/* Business message body, and the whole sealed message on the wire. */
#define CORRIDOR_BODY_BYTES_MAX (256 * 1024)
#define CORRIDOR_WIRE_BYTES_MAX (CORRIDOR_BODY_BYTES_MAX + 1024)

/* The largest message of the stream (sequenced messages, Acks, Hellos) on the wire. The
 * largest valid Settlement seals to under 4 KiB (tests/test_envelope.c checks it); only
 * statements need the full wire limit, and they travel apart. A node whose card names a
 * stream endpoint takes nothing larger there, so the queue a peer can fill on it is small in
 * bytes. */
#define CORRIDOR_STREAM_WIRE_BYTES_MAX (16 * 1024)

/* Sequence numbers and every counter a peer states (Hello, Ack, Repair): never above 2^62, so
 * that no sum or increment of them can wrap; a larger claim is malformed. */
#define CORRIDOR_SEQUENCE_MAX (UINT64_C(1) << 62)

/* Paths inside a home. */
#define CORRIDOR_PATH_LEN_MAX 4096

#endif
