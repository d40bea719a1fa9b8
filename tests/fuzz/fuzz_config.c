/*
 * Fuzzes config_parse(): corridor.conf is edited by hand and carries the peers' keys and the
 * caps granted to them, so a typo or a hostile file must be refused with a message, never
 * crash the node or be half-applied. A config that parses must also survive the node's own
 * round trip, config_format -> config_parse -> config_format, unchanged: `corridor peer add`
 * rewrites the file with config_format, and a node must be able to start from the file it
 * wrote itself.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Room for the largest config the formatter can produce: every peer with every limit. */
#define FORMAT_BYTES (1024 * 1024)

static char formatted[FORMAT_BYTES];
static char formatted_again[FORMAT_BYTES];

/* Checks what config_parse promises of a config it accepts. */
static void check_config(const config_t *config)
{
    assert(node_code_check(config->name) == VALID_OK);
    assert(endpoint_valid(config->listen));
    assert(config->currencies_count > 0 && config->currencies_count <= CORRIDOR_CURRENCIES_MAX);
    for (size_t i = 0; i < config->currencies_count; i++) {
        assert(currency_find(config->currencies[i]) != NULL);
        assert(config_accepts(config, config->currencies[i]));
    }
    assert(config_cycle_every(config, NULL) <= CONFIG_CYCLE_EVERY_MAX);
    assert(config_cycle_at_min(config, NULL) >= -1 &&
           config_cycle_at_min(config, NULL) <= CONFIG_CYCLE_AT_MIN_MAX);
    assert(config->peers_count <= CORRIDOR_PEERS_MAX);
    for (size_t i = 0; i < config->peers_count; i++) {
        const config_peer_t *p = &config->peers[i];
        assert(config_find_peer_const(config, p->card.name) == p);
        assert(p->cycle_every <= CONFIG_CYCLE_EVERY_MAX);
        assert(config_cycle_every(config, p->card.name) ==
               (p->cycle_every != 0 ? p->cycle_every : config->cycle_every));
        int32_t at = config_cycle_at_min(config, p->card.name);
        assert(at >= -1 && at <= CONFIG_CYCLE_AT_MIN_MAX);
        assert(endpoint_valid(p->card.endpoint));
        assert(p->limits_count <= CORRIDOR_CURRENCIES_MAX);
        for (size_t j = 0; j < p->limits_count; j++) {
            assert(currency_find(p->limits[j].currency) != NULL);
            assert(p->limits[j].minor >= 0 && p->limits[j].minor <= CORRIDOR_AMOUNT_MINOR_MAX);
            assert(config_peer_limit(p, p->limits[j].currency) == p->limits[j].minor);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    config_t *config = config_new();
    config_t *reread = config_new();
    assert(text != NULL && config != NULL && reread != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }
    text[size] = '\0';

    char err[256] = "";
    if (config_parse(text, "fuzz.conf", config, err, sizeof err) != 0) {
        /* Refused with a message naming the file; the config is left zeroed. */
        assert(strncmp(err, "fuzz.conf", strlen("fuzz.conf")) == 0);
        assert(config->peers_count == 0 && config->name[0] == '\0');
        goto cleanup;
    }
    check_config(config);

    size_t len = config_format(config, formatted, sizeof formatted);
    assert(len > 0 && len == strlen(formatted));
    err[0] = '\0';
    if (config_parse(formatted, "formatted.conf", reread, err, sizeof err) != 0) {
        fprintf(stderr, "config_format wrote a file config_parse refuses: %s\n%s", err, formatted);
        abort();
    }
    check_config(reread);
    size_t len_again = config_format(reread, formatted_again, sizeof formatted_again);
    assert(len_again == len && memcmp(formatted, formatted_again, len) == 0);

cleanup:
    config_destroy(&reread);
    config_destroy(&config);
    free(text);
    return 0;
}
