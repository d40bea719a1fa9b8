/*
 * Fuzzes card_parse(): a peer card is text an operator pastes from another organisation
 * (`corridor peer add`), and it decides which keys the node trusts. Any text must parse or be
 * refused with a card_err_t; a card that parses must survive card_encode -> card_parse
 * unchanged (what `corridor card` prints must be what a peer reads back), and its keys must
 * be usable by envelope_peer_init (a low-order box key is refused, not a crash).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "fuzz_keys.h"
#include "identity.h"
#include "validate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static identity_t *self; /* the node that would trust the card */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        abort();
    }
    self = fuzz_identity(0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    assert(text != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }
    text[size] = '\0';

    peer_card_t card;
    card_err_t rc = card_parse(text, &card);
    assert(card_strerror(rc) != NULL);
    if (rc != CARD_OK) {
        static const peer_card_t zero;
        assert(memcmp(&card, &zero, sizeof card) == 0); /* zeroed on error */
        free(text);
        return 0;
    }
    assert(node_code_check(card.name) == VALID_OK);
    assert(endpoint_valid(card.endpoint));
    assert(strlen(card.curve_public) == IDENTITY_CURVE_KEY_CHARS);

    char line[CORRIDOR_CARD_LEN_MAX + 1];
    size_t len = card_encode(&card, line, sizeof line);
    assert(len > 0 && len == strlen(line));
    peer_card_t again;
    rc = card_parse(line, &again);
    assert(rc == CARD_OK);
    assert(memcmp(&card, &again, sizeof card) == 0);
    char line_again[CORRIDOR_CARD_LEN_MAX + 1];
    assert(card_encode(&again, line_again, sizeof line_again) == len);
    assert(memcmp(line, line_again, len + 1) == 0);

    envelope_peer_t *peer = sodium_malloc(sizeof *peer);
    assert(peer != NULL);
    env_err_t env_rc = envelope_peer_init(peer, self, &card);
    assert(env_rc == ENV_OK || env_rc == ENV_E_WEAK_KEY);
    envelope_peer_wipe(peer);
    sodium_free(peer);

    free(text);
    return 0;
}
