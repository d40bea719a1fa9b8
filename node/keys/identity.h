/*
 * Who a node is: its keys, its key file, and the peer card it hands to others.
 *
 * A node has three key pairs: Ed25519 for signing messages (evidence outlives sessions),
 * X25519 for encrypting messages to one peer, and a ZeroMQ CURVE pair for the transport.
 * The secret halves live in one key file in the home, written atomically with mode 0600,
 * and are held in libsodium's guarded, locked memory (sodium_malloc) while loaded; the
 * loader refuses a key file that group or others can read, as ssh does.
 *
 * A peer card is one line that holds everything another node needs to trust this one:
 *   corridor-card-v1 name=BKRURUMM endpoint=tcp://127.0.0.1:7001 stream=tcp://127.0.0.1:7002
 *     sign=<hex> box=<hex> curve=<z85>
 * (one line). `stream=` is optional: where a node takes the sequenced stream, in small frames
 * and a deep queue; `endpoint=` takes everything else (statements, in large frames and a short
 * queue), and the stream too from a peer whose card has no `stream=`. Programs older than
 * `stream=` refuse a card with it: such a peer is given the card without that word.
 * Exchanging cards is the whole trust setup (as in WireGuard): no certificate authority.
 */
#ifndef CORRIDOR_IDENTITY_H
#define CORRIDOR_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "corridor/limits.h"

#define IDENTITY_KEY_ID_BYTES    16 /* BLAKE2b of the signing public key */
#define IDENTITY_CURVE_KEY_CHARS 40 /* a CURVE key in Z85, as ZeroMQ writes it */
#define IDENTITY_KEY_FILE        "node.key"
#define IDENTITY_KEY_FILE_NEXT   "node.key.next"     /* `key rotate`: until its commit */
#define IDENTITY_KEY_FILE_PREV   "node.key.previous" /* until every peer acknowledged */
#define IDENTITY_KEY_FILE_MODE   0600
#define IDENTITY_CARD_PREFIX     "corridor-card-v1"

/* What a node publishes about itself: everything a peer needs to trust it. */
typedef struct {
    char name[CORRIDOR_NAME_LEN_MAX + 1];            /* node code, e.g. BKRURUMM */
    char endpoint[CORRIDOR_ENDPOINT_LEN_MAX + 1];    /* where its inbound socket listens */
    char stream[CORRIDOR_ENDPOINT_LEN_MAX + 1];      /* where it takes the stream; "": endpoint */
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES]; /* Ed25519: verifies its messages */
    uint8_t box_public[crypto_box_PUBLICKEYBYTES];   /* X25519: messages are encrypted to it */
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1]; /* CURVE: admits its transport */
} peer_card_t;

/* A node's own keys. Allocated with sodium_malloc (guarded, locked, wiped on free). */
typedef struct {
    uint8_t sign_secret[crypto_sign_SECRETKEYBYTES]; /* Ed25519 secret (seed || public) */
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES]; /* Ed25519 public */
    uint8_t box_secret[crypto_box_SECRETKEYBYTES];   /* X25519 secret */
    uint8_t box_public[crypto_box_PUBLICKEYBYTES];   /* X25519 public */
    char curve_secret[IDENTITY_CURVE_KEY_CHARS + 1]; /* CURVE secret, Z85 */
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1]; /* CURVE public, Z85 */
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];           /* key id of sign_public */
} identity_t;

typedef enum {
    ID_OK = 0,
    ID_E_IO,          /* the file could not be read or written (errno tells why) */
    ID_E_PERMISSIONS, /* the key file is readable or writable by group or others */
    ID_E_OWNER,       /* the key file belongs to another user */
    ID_E_FORMAT,      /* the key file is not a Corridor key file, or is damaged */
    ID_E_NOMEM,       /* secure memory could not be allocated or locked */
    ID_E_CRYPTO,      /* key generation or derivation failed */
} id_err_t;

const char *id_strerror(id_err_t err);

/* Generates fresh keys. Returns NULL when out of (secure) memory or libsodium fails. */
identity_t *identity_generate(void);

/* Builds an identity from given secrets (Ed25519 seed, X25519 secret, CURVE secret in Z85):
 * for known-answer tests and fuzzing. NULL if out of memory or a secret is malformed. */
identity_t *identity_from_secrets(const uint8_t sign_seed[static crypto_sign_SEEDBYTES],
                                  const uint8_t box_secret[static crypto_box_SECRETKEYBYTES],
                                  const char *curve_secret);

/* Frees (and wipes) an identity; sets *self_p to NULL; safe on NULL and twice. */
void identity_destroy(identity_t **self_p);

/* Writes the secret keys to `path` atomically with mode 0600. */
id_err_t identity_save(const identity_t *self, const char *path)
    __attribute__((warn_unused_result));

/* After an operator's key replacement committed (PROTOCOL.md 2.15): in directory `dir`,
 * node.key.next becomes node.key and node.key.previous (a rotation's keys before, as
 * compromised as the rest) is removed, durably. ID_E_IO (errno) when a step failed. */
id_err_t identity_files_replace(const char *dir) __attribute__((warn_unused_result));

/* Loads keys from `path`, refusing a file readable by group or others or owned by someone
 * else. On success *out is a new identity the caller destroys. */
id_err_t identity_load(const char *path, identity_t **out) __attribute__((warn_unused_result));

/* The key id of a signing public key: BLAKE2b-128 over a domain tag and the key. Evidence
 * names its author by key id, so it stays verifiable after a key rotation. */
void identity_key_id(const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES],
                     uint8_t key_id[static IDENTITY_KEY_ID_BYTES]);

/* Fills a card with this identity's public keys and the given name and endpoint. */
void identity_card(const identity_t *self, const char *name, const char *endpoint,
                   peer_card_t *card);

typedef enum {
    CARD_OK = 0,
    CARD_E_EMPTY,     /* no text */
    CARD_E_TOO_LONG,  /* longer than CORRIDOR_CARD_LEN_MAX or has a line break */
    CARD_E_PREFIX,    /* does not start with corridor-card-v1 */
    CARD_E_FIELD,     /* a word that is not key=value, an unknown key or a repeated key */
    CARD_E_MISSING,   /* a required field is absent */
    CARD_E_NAME,      /* name is not a valid node code */
    CARD_E_ENDPOINT,  /* endpoint or stream is not tcp://HOST:PORT or ipc://PATH within limits */
    CARD_E_SIGN_KEY,  /* sign= is not 64 hex digits of a valid Ed25519 point */
    CARD_E_BOX_KEY,   /* box= is not 64 hex digits */
    CARD_E_CURVE_KEY, /* curve= is not 40 Z85 characters */
} card_err_t;

const char *card_strerror(card_err_t err);

/* Writes the card as one line (no newline) into out; returns its length, or 0 if out_size
 * is too small (CORRIDOR_CARD_LEN_MAX + 1 always suffices). */
size_t card_encode(const peer_card_t *card, char *out, size_t out_size);

/* Parses one card line (leading spaces, and trailing spaces and line feeds, are ignored; a
 * carriage return is refused as a second line). On error
 * *card is zeroed. */
card_err_t card_parse(const char *text, peer_card_t *card) __attribute__((warn_unused_result));

/* The fields of a card, by key: name, endpoint, sign, box, curve (required), stream. */
#define CARD_FIELDS_REQUIRED 0x1fu
#define CARD_FIELDS_ALL      0x3fu

/* The bit of a card field's key in CARD_FIELDS_ALL; 0 for an unknown key. */
unsigned card_field_bit(const char *key);

/* Where a peer takes its stream: its stream endpoint, or its endpoint when it names none. */
const char *card_stream_endpoint(const peer_card_t *card);

/* The stream endpoint `corridor init` proposes next to `listen`: the next TCP port, or the
 * ipc path with "-stream" appended. Returns false when there is none (port 65535, too long). */
bool endpoint_stream_default(const char *listen, char *out, size_t out_size);

/* Sets one field of a card from its text form (as in the card line). The one place where
 * card fields are validated: the config file uses it too. */
card_err_t card_set_field(peer_card_t *card, const char *key, const char *value)
    __attribute__((warn_unused_result));

/* Checks an endpoint: tcp://HOST:PORT (port 1..65535) or ipc://PATH, printable, no spaces. */
bool endpoint_valid(const char *endpoint);

#endif
