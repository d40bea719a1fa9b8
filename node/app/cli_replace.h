/*
 * Replacing a stolen key, on a stopped node (PROTOCOL.md 2.15): `corridor key replace` (our
 * own keys) and `corridor peer add --replace` (a peer's). See cli_replace.c.
 */
#ifndef CORRIDOR_CLI_REPLACE_H
#define CORRIDOR_CLI_REPLACE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "home.h"
#include "identity.h"

/* `corridor key replace`: argv[0] is the command's name. */
int cmd_key_replace(int argc, char **argv);

/* `corridor peer add --replace CARD [--from SEQ]`: `card` takes the place of every key of the
 * trusted peer of its name, from the next of its messages not applied; the keys before are
 * revoked from `revoke_from` (0: that same number), and config (loaded from home) is saved
 * with the card. An exit code. */
int peer_replace(const home_t *home, config_t *config, const peer_card_t *card,
                 uint64_t revoke_from, bool json);

#endif
