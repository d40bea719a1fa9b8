/*
 * Which signing keys an auditor trusts for each peer of an audited home, and what each key
 * was used for.
 *
 * A home's corridor.conf names its peers' keys, but whoever can edit the home can swap a key
 * for one of his own and forge the peer's evidence and countersignatures with it. So `audit`
 * takes peers' keys from cards the auditor brings (`--peer-card`, obtained from the peer, not
 * from the home); only for a peer with no card does it fall back to the home's config, and
 * says so. A peer has a history of keys (several cards over time): evidence verifies if any
 * of its keys signed it, and each key's use is recorded as the first and last of the peer's
 * sequence numbers it signed, so the history can be read off the audit.
 */
#ifndef CORRIDOR_TRUST_H
#define CORRIDOR_TRUST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "identity.h"

/* Where a key's trust comes from: a card the auditor gave, the audited home's config (or key
 * file), or a key history that verified back to one of those (PROTOCOL.md 2.14). */
typedef enum { TRUST_FROM_CARD = 0, TRUST_FROM_HOME = 1, TRUST_FROM_HISTORY = 2 } trust_source_t;

/* One key trusted for one peer, and its use so far. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    trust_source_t source;
    uint64_t rows;      /* evidence rows it verified */
    uint64_t first_seq; /* the lowest and highest sequence numbers among them (0: none) */
    uint64_t last_seq;
    /* the sequenced messages it may sign, by the key history: valid_from..valid_through
     * (0: no bound); a message outside is ENV_E_STALE_KEY */
    uint64_t valid_from;
    uint64_t valid_through;
} trusted_key_t;

typedef struct {
    trusted_key_t *keys;
    size_t count;
    pthread_mutex_t lock; /* the evidence pass records use from every core */
} trust_t;

/* The keys to trust for the peers of `config`: the cards given for a peer's name, else the
 * config's own card of that peer. For each peer whose config key matches none of the cards
 * given for it, mismatch (if not NULL) is called with the peer's name. 0, or -1 when out of
 * memory. */
int trust_build(trust_t *t, const config_t *config, const peer_card_t *cards, size_t cards_count,
                void (*mismatch)(void *arg, const char *peer), void *arg)
    __attribute__((warn_unused_result));
void trust_free(trust_t *t);

/* Trusts `sign_public` for `peer` (once: the same key again is the same entry). 0, or -1 when
 * out of memory. */
int trust_add(trust_t *t, const char *peer, const uint8_t *sign_public, trust_source_t source)
    __attribute__((warn_unused_result));

/* Bounds a key of `peer` to the sequenced messages from..through (0: open) that its verified
 * key history gives it, adding it (TRUST_FROM_HISTORY) if it is not trusted yet. 0, or -1. */
int trust_bound(trust_t *t, const char *peer, const uint8_t *sign_public, uint64_t from,
                uint64_t through) __attribute__((warn_unused_result));

/* Whether `peer` has at least one trusted key. */
bool trust_knows(const trust_t *t, const char *peer);

/* Verifies evidence authored by `peer` with its trusted key of the evidence's author key id,
 * within that key's range, and records the use. ENV_E_UNKNOWN_SENDER: the peer has no key;
 * ENV_E_BAD_SIGNATURE: none with that id, or it does not verify; ENV_E_STALE_KEY: a sequenced
 * message outside the key's range. */
env_err_t trust_verify(trust_t *t, const char *peer, const uint8_t *evidence, size_t evidence_len,
                       envelope_message_t *msg) __attribute__((warn_unused_result));

/* A trusted key of `peer` for which verify(arg, key) is true, or NULL. */
const trusted_key_t *trust_find(const trust_t *t, const char *peer,
                                bool (*verify)(void *arg, const uint8_t *sign_public), void *arg);

#endif
