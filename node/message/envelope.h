/*
 * Sealed envelopes: how one node's message reaches one peer so that only that peer can read
 * it and anyone can later prove who wrote it. Pure functions: no sockets, no files, no clock.
 *
 * Sealing is two steps, so that a retransmission re-uses the exact signed bytes:
 *   envelope_sign  Inner{version, author key id, recipient key id, type, sequence, body}
 *                  signed with Ed25519 over ENVELOPE_DOMAIN || inner  ->  SignedMessage
 *   envelope_wrap  Transit{signed, possible_duplicate} boxed with the per-peer precomputed
 *                  X25519 key and a random 24-byte nonce  ->  Envelope (the wire bytes)
 * Opening checks, in order (proto/PROTOCOL.md 1.12): size bound (before any allocation), outer
 * version, field sizes, sender key id among the trusted peers, the box (authenticated
 * decryption), that the inner author is the sender (a message re-wrapped by a third node is
 * refused), a copy of a business message already applied (answered as a duplicate without
 * checking its signature again), the signature, the inner version, the sequence bound, the
 * type, the body size, that the key may sign that message (after a rotation each key signs
 * only its own numbers, PROTOCOL.md 2.14), and last the recipient (this node, under any of its
 * keys the peer may address). The SignedMessage bytes are kept as evidence: evidence_verify()
 * checks them later with the author's public key alone.
 */
#ifndef CORRIDOR_ENVELOPE_H
#define CORRIDOR_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "identity.h"

#define ENVELOPE_VERSION 1 /* the outer Envelope's format */
#define INNER_VERSION_MIN                                                                          \
    1 /* the oldest Inner format this node reads (and writes to old peers)                         \
       */
#define INNER_VERSION_MAX    2 /* the newest: a StatusReport names the Settlement's content hash */
#define ENVELOPE_DOMAIN      "corridor.message.v1" /* signed with its NUL */
#define ENVELOPE_NONCE_BYTES crypto_box_NONCEBYTES

/* Message types, as in proto/corridor.proto's MessageType. */
typedef enum {
    MSG_SETTLEMENT = 1,
    MSG_STATUS_REPORT = 2,
    MSG_RETURN = 3,
    MSG_STATEMENT_REQUEST = 4,
    MSG_STATEMENT = 5,
    MSG_ACK = 6,
    MSG_HELLO = 7,
    MSG_KEY_ANNOUNCE = 8,
    MSG_KEY_SWITCH = 9,
    MSG_CANCEL_REQUEST = 10,
    MSG_CANCEL_ANSWER = 11,
    MSG_FX_PROPOSAL = 12,
    MSG_CYCLE_PROPOSAL = 13, /* settlement cycles (PROTOCOL.md 3.11) */
    MSG_CYCLE_ANSWER = 14,
    MSG_NET_SETTLEMENT = 15,
    MSG_SETOFF_RELAY = 16, /* multilateral set-off (PROTOCOL.md 3.12) */
    MSG_SETOFF_DECISION = 17,
} msg_type_t;

#define MSG_TYPE_MIN MSG_SETTLEMENT
#define MSG_TYPE_MAX MSG_SETOFF_DECISION

/* Whether messages of `type` are sequenced (numbered from 1, applied in order, exactly once):
 * Settlement, StatusReport, Return, KeyAnnounce, KeySwitch, CancelRequest and CancelAnswer.
 * The others (statements, Ack, Hello) carry sequence 0. */
bool msg_type_sequenced(int type);

/* The name of a message type ("Settlement", "Ack"...), or "unknown". */
const char *msg_type_name(int type);

/* Ed25519 over `domain` (with its NUL) || msg: signs into sig, or (verify) checks sig.
 * 0 on success, -1 when a signature does not verify, -2 when out of memory. The domain keeps
 * a signature over one kind of bytes from being taken for another (messages, checkpoints). */
int envelope_domain_sign(bool verify, const char *domain, const uint8_t *msg, size_t msg_len,
                         const uint8_t *key, uint8_t sig[static crypto_sign_BYTES]);

/* Box keys a peer's frames may be sealed with: its current and previous box key, each with
 * our current and previous one. */
#define ENVELOPE_OPEN_KEYS_MAX 4

/* Our earlier keys a peer's messages may still be addressed to: a message signed for one
 * rotated out more than this many rotations ago is refused (ENV_E_WRONG_RECIPIENT). */
#define ENVELOPE_OUR_KEYS_MAX 16

/* A trusted peer as the envelope sees it: its public keys and the precomputed box key.
 * The box key is secret: keep peers in sodium_malloc'd memory and envelope_peer_wipe them. */
typedef struct {
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];           /* key id of sign_public */
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES]; /* verifies what the peer signs */
    uint8_t shared_key[crypto_box_BEFORENMBYTES];    /* crypto_box_beforenm(peer, self): what
                                                        we seal with, which the peer opens */
    /* What the peer's frames may be sealed with, tried in order (the first is shared_key):
     * more than one while a rotation of either side's box key settles (PROTOCOL.md 2.14). */
    uint8_t open_keys[ENVELOPE_OPEN_KEYS_MAX][crypto_box_BEFORENMBYTES];
    size_t open_keys_count;
    uint64_t applied_through; /* business messages up to this sequence were applied: a copy is
                                 answered ENV_E_DUPLICATE without checking its signature */
    /* Once the peer announced new keys (PROTOCOL.md 2.14): its key before, which signs its
     * sequenced messages through `previous_through` (0: no key before) and, while
     * `previous_control`, its control messages; sign_public then signs only those after. */
    uint8_t previous_key_id[IDENTITY_KEY_ID_BYTES];
    uint8_t previous_sign_public[crypto_sign_PUBLICKEYBYTES];
    uint64_t previous_through;
    bool previous_control;
    /* Our keys before our current one, newest last: the peer's messages signed before it
     * applied our announcements name them, and are never signed again (see
     * ENVELOPE_OUR_KEYS_MAX). */
    uint8_t our_key_ids[ENVELOPE_OUR_KEYS_MAX][IDENTITY_KEY_ID_BYTES];
    size_t our_key_ids_count;
    /* The key our operator replaced (PROTOCOL.md 2.15): a frame under it is refused as
     * ENV_E_REVOKED, so the log names the likely thief; nothing it signs is taken. */
    uint8_t revoked_key_id[IDENTITY_KEY_ID_BYTES];
    bool has_revoked;
} envelope_peer_t;

typedef enum {
    ENV_OK = 0,
    ENV_E_TOO_LARGE,       /* over CORRIDOR_WIRE_BYTES_MAX (or a body over the body limit) */
    ENV_E_MALFORMED,       /* not a well-formed envelope, transit, signed or inner message */
    ENV_E_VERSION,         /* an envelope or inner version this node does not speak */
    ENV_E_UNKNOWN_SENDER,  /* the sender key id is not a trusted peer */
    ENV_E_DECRYPT,         /* the box does not open: altered, or not encrypted to this node */
    ENV_E_FORWARDED,       /* signed by another node than the one that sent it (re-wrapped) */
    ENV_E_BAD_SIGNATURE,   /* the signature does not verify */
    ENV_E_WRONG_RECIPIENT, /* signed for another node */
    ENV_E_BAD_TYPE,        /* an unknown message type */
    ENV_E_WEAK_KEY,        /* a peer's box key is a low-order point */
    ENV_E_NOMEM,           /* out of memory */
    ENV_E_DUPLICATE,       /* a business message already applied (see applied_through) */
    ENV_E_STALE_KEY,       /* signed by a key of the peer not valid for that message (2.14) */
    ENV_E_REVOKED,         /* under a key of the peer our operator replaced (2.15) */
} env_err_t;

const char *env_strerror(env_err_t err);

/* A verified message. Owns body and evidence; release with envelope_message_clear. */
typedef struct {
    size_t peer_index;                               /* which trusted peer sent it */
    msg_type_t type;                                 /* what body holds */
    uint64_t sequence;                               /* per-direction sequence number */
    uint32_t version;                                /* Inner.version the author signed */
    bool possible_duplicate;                         /* marked as a retransmission */
    uint8_t author_key_id[IDENTITY_KEY_ID_BYTES];    /* who signed it */
    uint8_t recipient_key_id[IDENTITY_KEY_ID_BYTES]; /* for whom */
    uint8_t *body;                                   /* the encoded business message */
    size_t body_len;
    uint8_t *evidence; /* the SignedMessage bytes */
    size_t evidence_len;
} envelope_message_t;

void envelope_message_clear(envelope_message_t *msg);

/* Prepares a trusted peer from its card and this node's keys. */
env_err_t envelope_peer_init(envelope_peer_t *peer, const identity_t *self, const peer_card_t *card)
    __attribute__((warn_unused_result));
void envelope_peer_wipe(envelope_peer_t *peer);

/* Sets the box keys of a peer whose box keys are `peer_box` (current) and `peer_box_previous`
 * (or NULL): we seal with `ours_seal`'s (the one the peer can open now), and open with both
 * of ours (`ours_other` may be NULL). ENV_E_WEAK_KEY (nothing changed) on a weak key. */
env_err_t envelope_peer_set_box(envelope_peer_t *peer,
                                const uint8_t peer_box[static crypto_box_PUBLICKEYBYTES],
                                const uint8_t *peer_box_previous, const identity_t *ours_seal,
                                const identity_t *ours_other) __attribute__((warn_unused_result));

/* Sets the peer's current signing key (as its card or key history says) and forgets any key
 * before it. */
void envelope_peer_set_key(envelope_peer_t *peer,
                           const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES]);

/* We announced new keys to the peer: `key_id`, ours until now, stays ours for its messages
 * (the oldest is forgotten beyond ENVELOPE_OUR_KEYS_MAX). */
void envelope_peer_add_our_key(envelope_peer_t *peer,
                               const uint8_t key_id[static IDENTITY_KEY_ID_BYTES]);

/* The peer announced `next_sign_public` in its sequenced message `through`: its current key
 * becomes the previous one (valid through `through`, and for control messages until
 * envelope_peer_close_previous), the new one signs what follows. */
void envelope_peer_rotate(envelope_peer_t *peer,
                          const uint8_t next_sign_public[static crypto_sign_PUBLICKEYBYTES],
                          uint64_t through);

/* The peer's previous key no longer signs control messages (one of its control messages
 * arrived under the new key). */
void envelope_peer_close_previous(envelope_peer_t *peer);

/* Whether `key_id` is the peer's current key (true) or its previous one (false). */
bool envelope_peer_is_current(const envelope_peer_t *peer,
                              const uint8_t key_id[static IDENTITY_KEY_ID_BYTES]);

/* Signs a message for `recipient_key_id` in Inner format `version` (INNER_VERSION_MIN..MAX).
 * *signed_out is malloc'd (the caller frees it). */
env_err_t envelope_sign_version(const identity_t *self, uint32_t version,
                                const uint8_t recipient_key_id[static IDENTITY_KEY_ID_BYTES],
                                msg_type_t type, uint64_t sequence, const uint8_t *body,
                                size_t body_len, uint8_t **signed_out, size_t *signed_len)
    __attribute__((warn_unused_result));

/* envelope_sign_version in format 1, which every node reads. */
env_err_t envelope_sign(const identity_t *self,
                        const uint8_t recipient_key_id[static IDENTITY_KEY_ID_BYTES],
                        msg_type_t type, uint64_t sequence, const uint8_t *body, size_t body_len,
                        uint8_t **signed_out, size_t *signed_len)
    __attribute__((warn_unused_result));

/* Encrypts signed bytes to a peer with a random nonce. *wire_out is malloc'd. */
env_err_t envelope_wrap(const identity_t *self, const envelope_peer_t *peer,
                        const uint8_t *signed_msg, size_t signed_len, bool possible_duplicate,
                        uint8_t **wire_out, size_t *wire_len) __attribute__((warn_unused_result));

/* As envelope_wrap, naming `sender_key_id` on the Envelope: the key id of the author of
 * `signed_msg`, which a message signed before a rotation keeps (no secret key needed). */
env_err_t envelope_wrap_as(const uint8_t sender_key_id[static IDENTITY_KEY_ID_BYTES],
                           const envelope_peer_t *peer, const uint8_t *signed_msg,
                           size_t signed_len, bool possible_duplicate, uint8_t **wire_out,
                           size_t *wire_len) __attribute__((warn_unused_result));

/* As envelope_wrap with a given nonce: for known-answer tests only. */
env_err_t envelope_wrap_nonce(const identity_t *self, const envelope_peer_t *peer,
                              const uint8_t *signed_msg, size_t signed_len, bool possible_duplicate,
                              const uint8_t nonce[static ENVELOPE_NONCE_BYTES], uint8_t **wire_out,
                              size_t *wire_len) __attribute__((warn_unused_result));

/* sign + wrap, in Inner format 1 (envelope_seal_version: in `version`). */
env_err_t envelope_seal(const identity_t *self, const envelope_peer_t *peer, msg_type_t type,
                        uint64_t sequence, const uint8_t *body, size_t body_len, uint8_t **wire_out,
                        size_t *wire_len) __attribute__((warn_unused_result));
env_err_t envelope_seal_version(const identity_t *self, const envelope_peer_t *peer,
                                uint32_t version, msg_type_t type, uint64_t sequence,
                                const uint8_t *body, size_t body_len, uint8_t **wire_out,
                                size_t *wire_len) __attribute__((warn_unused_result));

/* Opens wire bytes from one of `peers`. On success *msg owns its buffers; on error it is
 * zeroed. Never asserts on anything in `wire`. */
env_err_t envelope_open(const uint8_t *wire, size_t wire_len, const identity_t *self,
                        const envelope_peer_t *peers, size_t peers_count, envelope_message_t *msg)
    __attribute__((warn_unused_result));

/* The author key id named inside stored evidence (SignedMessage bytes), unverified: which of
 * several keys to verify it with. ENV_OK, or ENV_E_MALFORMED / ENV_E_TOO_LARGE. */
env_err_t evidence_author(const uint8_t *evidence, size_t evidence_len,
                          uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
    __attribute__((warn_unused_result));

/* The type, Inner version and (when `body` is not NULL, malloc'd) body of stored evidence,
 * unverified: evidence this node keeps, read back. ENV_OK, or ENV_E_MALFORMED / TOO_LARGE /
 * NOMEM. */
env_err_t evidence_body(const uint8_t *evidence, size_t evidence_len, int *type, uint32_t *version,
                        uint8_t **body, size_t *body_len) __attribute__((warn_unused_result));

/* Signs again, with `self`, the Inner of our stored message `signed_msg` (same version,
 * recipient, type, sequence and body): after an operator replaced our keys (PROTOCOL.md 2.15)
 * the peer refuses what the replaced key signs. *signed_out is malloc'd. ENV_E_MALFORMED
 * for bytes that are not such a message. */
env_err_t envelope_resign(const identity_t *self, const uint8_t *signed_msg, size_t signed_len,
                          uint8_t **signed_out, size_t *out_len)
    __attribute__((warn_unused_result));

/* Verifies stored evidence (SignedMessage bytes) with the author's signing key alone. On
 * success *msg holds the decoded fields (peer_index is SIZE_MAX, possible_duplicate false). */
env_err_t evidence_verify(const uint8_t *evidence, size_t evidence_len,
                          const uint8_t author_sign_public[static crypto_sign_PUBLICKEYBYTES],
                          envelope_message_t *msg) __attribute__((warn_unused_result));

#endif
