/*
 * Replacing a stolen key in the key history (PROTOCOL.md 2.15): the steps both operators'
 * commands take on a channel, inside their transaction, shared by the command line
 * (node/app/cli_replace.c) and the simulator. A replacement is never a message on the
 * channel: a thief of the key could send one too.
 */
#ifndef CORRIDOR_REPLACE_H
#define CORRIDOR_REPLACE_H

#include <stdbool.h>
#include <stdint.h>

#include "identity.h"
#include "ledger.h"

/* What a replacement did on one channel. */
typedef struct {
    uint64_t first_seq;                             /* the new key signs from here */
    uint8_t replaced_key_id[IDENTITY_KEY_ID_BYTES]; /* the key it took the place of */
    const char *refused; /* LEDGER_E_STATE with nothing written: why (else NULL) */
} key_replaced_t;

/* Inside a transaction: the peer's key on `card` (its name a trusted peer's) signs the peer's
 * messages from the first not applied; every key of the peer before it is revoked from
 * `revoke_from` (1 to that number; 0: that number). `trusted` is the card configured until
 * now: with no key history for the peer, its key is recorded first, as signing from 1.
 * LEDGER_E_STATE (out->refused says why) for a revoke_from past that number, a key the
 * history holds already, or a key replaced from 1 with nothing applied since. */
ledger_err_t replace_peer_key(ledger_t *l, const peer_card_t *trusted, const peer_card_t *card,
                              uint64_t revoke_from, key_replaced_t *out)
    __attribute__((warn_unused_result));

/* Inside a transaction: our key `next` signs our messages to `peer` after the last one queued
 * (those not yet acknowledged are signed again when sent: channel.c); `current` is the key
 * this node signed with until now (recorded first, from 1, on a channel with no history).
 * LEDGER_E_STATE (out->refused) when our key was replaced from 1 and nothing was sent since. */
ledger_err_t replace_own_key(ledger_t *l, const char *peer, const identity_t *current,
                             const identity_t *next, key_replaced_t *out)
    __attribute__((warn_unused_result));

#endif
