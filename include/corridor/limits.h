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

/* ---- What a peer can make a node hold or do ---------------------------------------------
 * Every limit a peer with valid keys meets, once, with the module that enforces it
 * (proto/PROTOCOL.md 1.11, 2.12, 4.13; README, "Limits a peer meets"). */

/* Transport (node/net/transport.c). Bytes libzmq may queue for one inbound connection before
 * the node reads them, on either endpoint: TRANSPORT_STREAM_QUEUED stream frames, or
 * TRANSPORT_LISTEN_QUEUED frames of the full wire limit (single-part frames: a multipart
 * message is held whole until its last part, which no libzmq 4.3 option bounds). A node without a
 * stream endpoint (a home made before there was one) takes its stream in the short queue, which is
 * slower. */
#define TRANSPORT_CONNECTION_BYTES  (64u << 20)
#define TRANSPORT_STREAM_QUEUED     ((int)(TRANSPORT_CONNECTION_BYTES / CORRIDOR_STREAM_WIRE_BYTES_MAX))
#define TRANSPORT_LISTEN_QUEUED     ((int)(TRANSPORT_CONNECTION_BYTES / CORRIDOR_WIRE_BYTES_MAX))
#define TRANSPORT_HANDSHAKES_PER_S  4  /* a peer's connections admitted a second, on average, */
#define TRANSPORT_HANDSHAKES_BURST  16 /* and at once (a restart, a flapping link) */
#define TRANSPORT_STATEMENTS_QUEUED 8  /* statements queued to send to a peer; the rest dropped */

/* The loop turn (node/app/daemon.c). */
#define INBOUND_PER_TURN    4096        /* frames read per loop turn */
#define INBOUND_TURN_BYTES  (32u << 20) /* the most one turn takes in (the rest comes again) */
#define STATEMENTS_PER_TURN 64          /* statement messages handled per loop turn, each kind */

/* The channel (node/channel/channel.c). */
#define CHANNEL_HOLD_MAX       4096             /* out-of-order messages held per peer */
#define CHANNEL_HOLD_BYTES_MAX (16u << 20)      /* and their bytes (bodies and evidence) */
#define CHANNEL_WINDOW         CHANNEL_HOLD_MAX /* in flight per peer: no more than it can hold */
#define CHANNEL_REWINDS_PER_S  1  /* full retransmissions a peer's Hellos may ask for a second, */
#define CHANNEL_REWINDS_BURST  4  /* and at once */
#define HELLO_VERSIONS_MAX     16 /* versions read from a peer's Hello; the rest are ignored */
/* Backpressure: the bytes of a peer's sequenced messages (body and evidence, as held and
 * stored) we apply a second, and at once; the peer's next message waits, unacknowledged, until
 * its allowance is back. Messages that move no money (rejected, repeated, malformed, ignored)
 * store what nobody needed, so they have a tighter allowance of their own. Dropping or
 * refusing a sequenced message instead would break exactly once. */
#define CHANNEL_APPLIED_UNIT  (32u << 10) /* bytes */
#define CHANNEL_APPLIED_PER_S 1000        /* units: 32 MiB/s, far over honest use, */
#define CHANNEL_APPLIED_BURST 2048        /* 64 MiB at once */
#define CHANNEL_IDLE_UNIT     1024        /* bytes */
#define CHANNEL_IDLE_PER_S    100         /* units: 100 KiB/s, ~140 small rejected payments, */
#define CHANNEL_IDLE_BURST    8192        /* 8 MiB at once: ~11,000 (a batch over a cap) */

/* Statements (node/ledger/statement.c) and the requests answered (node/channel/responder.c). */
#define STATEMENT_PREFIX_MAX     8            /* hex digits before the UETR's first hyphen */
#define STATEMENT_LEAF_MAX       32           /* a differing range this small is answered in full */
#define STATEMENT_RANGES_MAX     256          /* ranges in one request */
#define STATEMENT_BUDGET_BYTES   (192 * 1024) /* an answer stops growing here */
#define STATEMENT_WORK_ENTRIES   (32 * 1024)  /* and stops after reading this many entries */
#define RESPONDER_REQUESTS_PER_S 8            /* a peer's requests answered a second, on average, */
#define RESPONDER_REQUESTS_BURST 16           /* and at once */
#define RESPONDER_WORK_UNIT      1024         /* entries: the unit of the work allowance */
#define RESPONDER_WORK_PER_S     125          /* units a peer's answers may read a second, */
#define RESPONDER_WORK_BURST     64 /* and at once (twice an answer's STATEMENT_WORK_ENTRIES) */
#define REQUEST_ID_MAX           48 /* longer request ids are answered but not cached */
#define STATEMENT_CYCLES_MAX     32 /* settlement cycles stated in one answer (4.13) */

/* Reconciliation (node/channel/recon.c) and cuts (node/ledger/ledger.c). A cut proposed at a
 * peer's counters lies behind ours by what is in flight; one whose settlements touched above it
 * are more than LEDGER_CUT_TOUCHED_MAX is refused. */
#define LEDGER_CUT_TOUCHED_MAX 65536
#define REPAIR_CHUNK_MAX       150 /* imports per repair request: keeps it under the body limit */
#define CUT_RETRY_MS           250 /* a peer that has not reached the cut is asked again after this */
#define CUT_RETRIES            40 /* and at most this many times */

#endif
