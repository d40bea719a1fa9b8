/*
 * Replacing a stolen key in the key history: see replace.h. The new key's range begins where
 * the channel stands in the books; a key before it whose range would begin at the same number
 * signed nothing and is closed empty (ledger_key_add).
 */
#include "replace.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* The open (newest) key of one side of a channel in the key history, if any. */
typedef struct {
    key_side_t side;
    bool found;
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    uint64_t first_seq;
    const uint8_t *sign; /* a key to look for among the side's */
    const uint8_t *box;  /* and a box key */
    bool seen_sign, seen_box;
} open_key_t;

static void find_open(const key_record_t *k, void *arg)
{
    open_key_t *o = arg;
    if (k->side != o->side) {
        return;
    }
    if (o->sign != NULL && sodium_memcmp(k->sign_public, o->sign, sizeof k->sign_public) == 0) {
        o->seen_sign = true;
    }
    if (o->box != NULL && sodium_memcmp(k->box_public, o->box, sizeof k->box_public) == 0) {
        o->seen_box = true;
    }
    if (k->last_seq == 0) {
        o->found = true;
        memcpy(o->key_id, k->key_id, sizeof o->key_id);
        o->first_seq = k->first_seq;
    }
}

static void fill_key(key_record_t *k, const char *peer, key_side_t side, const uint8_t *sign,
                     const uint8_t *box, const char *curve, uint64_t first_seq, const char *source)
{
    memset(k, 0, sizeof *k);
    snprintf(k->peer, sizeof k->peer, "%s", peer);
    k->side = side;
    memcpy(k->sign_public, sign, sizeof k->sign_public);
    identity_key_id(sign, k->key_id);
    memcpy(k->box_public, box, sizeof k->box_public);
    snprintf(k->curve_public, sizeof k->curve_public, "%s", curve);
    k->first_seq = first_seq;
    snprintf(k->source, sizeof k->source, "%s", source);
}

/* `k` (source "replaced") from k->first_seq; every key before it revoked from revoke_from; a
 * side with no history records `before` from 1 first, unless k starts at 1. */
static ledger_err_t replace_side(ledger_t *l, const open_key_t *open, const key_record_t *k,
                                 const key_record_t *before, uint64_t revoke_from,
                                 key_replaced_t *out)
{
    memcpy(out->replaced_key_id, open->found ? open->key_id : before->key_id,
           IDENTITY_KEY_ID_BYTES);
    out->first_seq = k->first_seq;
    /* a key from 1 that signed nothing cannot be closed before it (its range would be 1..0) */
    if (open->found && open->first_seq == 1 && k->first_seq == 1) {
        out->refused = "the key was replaced already, and the channel carried no message since";
        return LEDGER_E_STATE;
    }
    ledger_err_t rc = LEDGER_OK;
    if (!open->found && k->first_seq > 1 && (rc = ledger_key_add(l, before)) != LEDGER_OK) {
        return rc;
    }
    if ((open->found || k->first_seq > 1) &&
        (rc = ledger_key_revoke(l, k->peer, k->side, revoke_from, NULL)) != LEDGER_OK) {
        return rc;
    }
    return ledger_key_add(l, k);
}

ledger_err_t replace_peer_key(ledger_t *l, const peer_card_t *trusted, const peer_card_t *card,
                              uint64_t revoke_from, key_replaced_t *out)
{
    assert(l != NULL && trusted != NULL && card != NULL && out != NULL);
    assert(strcmp(trusted->name, card->name) == 0);
    memset(out, 0, sizeof *out);
    ledger_channel_t counters;
    open_key_t open = {.side = KEY_SIDE_THEIRS, .sign = card->sign_public, .box = card->box_public};
    ledger_err_t rc = ledger_channel_get(l, card->name, &counters);
    if (rc != LEDGER_OK || (rc = ledger_keys(l, card->name, find_open, &open)) != LEDGER_OK) {
        return rc;
    }
    uint64_t first = counters.applied_seq + 1;
    out->first_seq = first;
    if (open.seen_sign || open.seen_box ||
        sodium_memcmp(card->sign_public, trusted->sign_public, sizeof card->sign_public) == 0 ||
        sodium_memcmp(card->box_public, trusted->box_public, sizeof card->box_public) == 0) {
        out->refused = "the card names a signing or box key the peer had already: a "
                       "replacement is made of new keys";
        return LEDGER_E_STATE;
    }
    if (revoke_from > first) {
        out->refused = "the revocation cannot begin after the first message not applied";
        return LEDGER_E_STATE;
    }
    key_record_t k, before;
    fill_key(&k, card->name, KEY_SIDE_THEIRS, card->sign_public, card->box_public,
             card->curve_public, first, "replaced");
    fill_key(&before, card->name, KEY_SIDE_THEIRS, trusted->sign_public, trusted->box_public,
             trusted->curve_public, 1, "card");
    return replace_side(l, &open, &k, &before, revoke_from == 0 ? first : revoke_from, out);
}

ledger_err_t replace_own_key(ledger_t *l, const char *peer, const identity_t *current,
                             const identity_t *next, key_replaced_t *out)
{
    assert(l != NULL && peer != NULL && current != NULL && next != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    ledger_channel_t counters;
    open_key_t open = {.side = KEY_SIDE_OURS};
    ledger_err_t rc = ledger_channel_get(l, peer, &counters);
    if (rc != LEDGER_OK || (rc = ledger_keys(l, peer, find_open, &open)) != LEDGER_OK) {
        return rc;
    }
    uint64_t first = counters.sent_seq + 1;
    key_record_t k, before;
    fill_key(&k, peer, KEY_SIDE_OURS, next->sign_public, next->box_public, next->curve_public,
             first, "replaced");
    fill_key(&before, peer, KEY_SIDE_OURS, current->sign_public, current->box_public,
             current->curve_public, 1, "card");
    return replace_side(l, &open, &k, &before, first, out);
}
