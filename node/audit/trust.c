/* The keys an auditor trusts for each peer, and their use; see trust.h. */
#include "trust.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static trusted_key_t *find_key(trust_t *t, const char *peer, const uint8_t *sign_public)
{
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->keys[i].peer, peer) == 0 &&
            memcmp(t->keys[i].sign_public, sign_public, crypto_sign_PUBLICKEYBYTES) == 0) {
            return &t->keys[i];
        }
    }
    return NULL;
}

int trust_add(trust_t *t, const char *peer, const uint8_t *sign_public, trust_source_t source)
{
    if (find_key(t, peer, sign_public) != NULL) { /* the same card given twice is one key */
        return 0;
    }
    trusted_key_t *keys = realloc(t->keys, (t->count + 1) * sizeof *keys);
    if (keys == NULL) {
        return -1;
    }
    t->keys = keys;
    trusted_key_t *k = &keys[t->count++];
    memset(k, 0, sizeof *k);
    snprintf(k->peer, sizeof k->peer, "%s", peer);
    memcpy(k->sign_public, sign_public, crypto_sign_PUBLICKEYBYTES);
    identity_key_id(sign_public, k->key_id);
    k->source = source;
    return 0;
}

int trust_build(trust_t *t, const config_t *config, const peer_card_t *cards, size_t cards_count,
                void (*mismatch)(void *arg, const char *peer), void *arg)
{
    assert(t != NULL && config != NULL && (cards != NULL || cards_count == 0));
    memset(t, 0, sizeof *t);
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        return -1;
    }
    for (size_t p = 0; p < config->peers_count; p++) {
        const peer_card_t *own = &config->peers[p].card;
        bool carded = false, matched = false;
        for (size_t c = 0; c < cards_count; c++) {
            if (strcmp(cards[c].name, own->name) != 0) {
                continue;
            }
            carded = true;
            matched |= memcmp(cards[c].sign_public, own->sign_public, sizeof own->sign_public) == 0;
            if (trust_add(t, own->name, cards[c].sign_public, TRUST_FROM_CARD) != 0) {
                return -1;
            }
        }
        if (!carded && trust_add(t, own->name, own->sign_public, TRUST_FROM_HOME) != 0) {
            return -1;
        }
        if (carded && !matched && mismatch != NULL) {
            mismatch(arg, own->name);
        }
    }
    return 0;
}

int trust_bound(trust_t *t, const char *peer, const uint8_t *sign_public, uint64_t from,
                uint64_t through)
{
    trusted_key_t *k = find_key(t, peer, sign_public);
    if (k == NULL) {
        if (trust_add(t, peer, sign_public, TRUST_FROM_HISTORY) != 0) {
            return -1;
        }
        k = &t->keys[t->count - 1];
    }
    k->valid_from = from;
    k->valid_through = through;
    return 0;
}

void trust_free(trust_t *t)
{
    free(t->keys);
    pthread_mutex_destroy(&t->lock);
    memset(t, 0, sizeof *t);
}

bool trust_knows(const trust_t *t, const char *peer)
{
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->keys[i].peer, peer) == 0) {
            return true;
        }
    }
    return false;
}

static void record_use(trust_t *t, trusted_key_t *k, uint64_t seq)
{
    pthread_mutex_lock(&t->lock);
    k->rows++;
    if (seq != 0 && (k->first_seq == 0 || seq < k->first_seq)) {
        k->first_seq = seq;
    }
    if (seq > k->last_seq) {
        k->last_seq = seq;
    }
    pthread_mutex_unlock(&t->lock);
}

env_err_t trust_verify(trust_t *t, const char *peer, const uint8_t *evidence, size_t evidence_len,
                       envelope_message_t *msg)
{
    assert(t != NULL && peer != NULL && msg != NULL);
    memset(msg, 0, sizeof *msg);
    size_t keys = 0;
    for (size_t i = 0; i < t->count; i++) {
        keys += strcmp(t->keys[i].peer, peer) == 0;
    }
    if (keys == 0) {
        return ENV_E_UNKNOWN_SENDER;
    }
    /* with several keys (a history, several cards), the evidence's author id picks one; with
     * one, evidence_verify compares the author id itself (the audit's common case: one
     * decode of the evidence, not two) */
    uint8_t author[IDENTITY_KEY_ID_BYTES];
    env_err_t rc = keys > 1 ? evidence_author(evidence, evidence_len, author) : ENV_OK;
    if (rc != ENV_OK) {
        return rc;
    }
    for (size_t i = 0; i < t->count; i++) {
        trusted_key_t *k = &t->keys[i];
        if (strcmp(k->peer, peer) != 0 ||
            (keys > 1 && memcmp(k->key_id, author, IDENTITY_KEY_ID_BYTES) != 0)) {
            continue;
        }
        if ((rc = evidence_verify(evidence, evidence_len, k->sign_public, msg)) != ENV_OK) {
            return rc;
        }
        bool bounded = msg_type_sequenced((int)msg->type) && msg->sequence != 0;
        if (bounded && (msg->sequence < k->valid_from ||
                        (k->valid_through != 0 && msg->sequence > k->valid_through))) {
            envelope_message_clear(msg);
            return ENV_E_STALE_KEY;
        }
        record_use(t, k, msg->sequence);
        return ENV_OK;
    }
    return ENV_E_BAD_SIGNATURE; /* signed by no key trusted for the peer */
}

const trusted_key_t *trust_find(const trust_t *t, const char *peer,
                                bool (*verify)(void *arg, const uint8_t *sign_public), void *arg)
{
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->keys[i].peer, peer) == 0 && verify(arg, t->keys[i].sign_public)) {
            return &t->keys[i];
        }
    }
    return NULL;
}
