/*
 * `corridor key replace` and `corridor peer add --replace`: the operators' answer to a stolen
 * key (PROTOCOL.md 2.15). A thief of a signing key could "rotate" to a key of its own, so a
 * replacement is never announced on the channel: the bank whose key leaked makes new keys and
 * hands its new card out of band, as it did the first one, and each peer's operator puts that
 * card in place of every earlier key of the bank from the next sequence number it has not
 * applied. Both act on a stopped node and hold its lock meanwhile: the numbers they fix are
 * the channel's as the books say them, which a running node would move. Each is an operator
 * action on record, in the same transaction as the key history it changes.
 */
#include "cli_replace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "cli_common.h"
#include "fsutil.h"
#include "operation.h"
#include "replace.h"

#define HEX_KEY_ID (2 * IDENTITY_KEY_ID_BYTES + 1)

static void hex_key_id(const uint8_t *key_id, char out[static HEX_KEY_ID])
{
    sodium_bin2hex(out, HEX_KEY_ID, key_id, IDENTITY_KEY_ID_BYTES);
}

/* A stopped node's books, held against `corridor run` until close_books. */
typedef struct {
    int lock_fd;
    ledger_t *ledger;
} held_books_t;

static int open_books(const home_t *home, const config_t *config, held_books_t *b)
{
    char path[CORRIDOR_PATH_LEN_MAX], err[512];
    b->ledger = NULL;
    b->lock_fd = -1;
    if (fs_join(path, sizeof path, home->dir, CONTROL_LOCK_FILE) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    if ((b->lock_fd = control_lock_home(path)) < 0) {
        if (errno == EWOULDBLOCK) {
            complain("the node of %s is running: stop it first (a replacement takes effect at "
                     "the channel's sequence numbers, which a running node moves); nothing "
                     "changed",
                     home->dir);
            return EXIT_USAGE;
        }
        complain("cannot lock %s: %s", path, strerror(errno));
        return EXIT_INTERNAL;
    }
    if (fs_join(path, sizeof path, home->dir, LEDGER_FILE) != 0) {
        complain("home path is too long");
        return EXIT_USAGE;
    }
    if (ledger_open(path, config->name, LEDGER_READ_WRITE, NULL, &b->ledger, err, sizeof err) !=
        LEDGER_OK) {
        complain("%s: %s", path, err);
        return EXIT_INTERNAL;
    }
    ledger_set_clock(b->ledger, operation_wall_ms());
    return EXIT_OK;
}

static void close_books(held_books_t *b)
{
    ledger_close(&b->ledger);
    if (b->lock_fd >= 0) {
        close(b->lock_fd);
        b->lock_fd = -1;
    }
}

static int storage_error(ledger_t *l, const char *doing)
{
    complain("cannot %s: %s; nothing changed", doing, ledger_last_error(l));
    ledger_rollback(l);
    return EXIT_INTERNAL;
}

/* A replacement the key history refuses (nothing written). */
static int refused(ledger_t *l, const char *peer, const key_replaced_t *done)
{
    complain("the channel with %s: %s; nothing changed", peer, done->refused);
    ledger_rollback(l);
    return EXIT_USAGE;
}

/* ---- corridor peer add --replace ------------------------------------------------------------ */

int peer_replace(const home_t *home, config_t *config, const peer_card_t *card,
                 uint64_t revoke_from, bool json)
{
    config_peer_t *peer = NULL;
    for (size_t i = 0; i < config->peers_count; i++) {
        if (strcmp(config->peers[i].card.name, card->name) == 0) {
            peer = &config->peers[i];
        }
    }
    if (peer == NULL) {
        complain("%s is not a peer of this node: --replace takes the new card of a trusted peer "
                 "(to trust a new one: peer add \"CARD\")",
                 card->name);
        return EXIT_USAGE;
    }
    held_books_t books;
    int rc = open_books(home, config, &books);
    if (rc != EXIT_OK) {
        goto cleanup;
    }
    key_replaced_t done;
    if (ledger_begin(books.ledger) != LEDGER_OK) {
        rc = storage_error(books.ledger, "begin a transaction");
        goto cleanup;
    }
    if (replace_peer_key(books.ledger, &peer->card, card, revoke_from, &done) != LEDGER_OK) {
        rc = done.refused != NULL ? refused(books.ledger, card->name, &done)
                                  : storage_error(books.ledger, "record the replacement");
        goto cleanup;
    }
    uint64_t first = done.first_seq;
    revoke_from = revoke_from == 0 ? first : revoke_from;
    char new_hex[HEX_KEY_ID], old_hex[HEX_KEY_ID];
    uint8_t new_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(card->sign_public, new_id);
    hex_key_id(new_id, new_hex);
    hex_key_id(done.replaced_key_id, old_hex);
    json_t *args = json_pack("{s:s, s:s, s:s, s:I, s:I}", "side", "theirs", "key_id", new_hex,
                             "replaced_key_id", old_hex, "first_seq", (json_int_t)first,
                             "revoked_from", (json_int_t)revoke_from);
    if (operation_record(books.ledger, (long long)getuid(), "replace", card->name, args) !=
            LEDGER_OK ||
        ledger_commit(books.ledger) != LEDGER_OK) {
        rc = storage_error(books.ledger, "record the replacement");
        goto cleanup;
    }
    /* the history decides which key signs from now on; the config follows for later cards */
    peer->card = *card;
    if (config_save(config, home->config_path) != 0) {
        complain("the replacement is recorded, but %s cannot be written: %s (the node uses "
                 "the recorded key and says so at start)",
                 home->config_path, strerror(errno));
        rc = EXIT_INTERNAL;
        goto cleanup;
    }
    rc = EXIT_OK;
    if (json) {
        rc = cli_print_document(json_pack(
            "{s:s, s:s, s:s, s:I, s:I}", "peer", card->name, "key_id", new_hex, "replaced_key_id",
            old_hex, "first_seq", (json_int_t)first, "revoked_from", (json_int_t)revoke_from));
    } else {
        printf("replaced the key of %s: %s signs its messages from %" PRIu64
               "; every key before it (%s the last) is revoked from %" PRIu64 "\n",
               card->name, new_hex, first, old_hex, revoke_from);
    }

cleanup:
    close_books(&books);
    return rc;
}

/* ---- corridor key replace ------------------------------------------------------------------- */

static const cli_spec_t key_replace_spec = {
    .usage = "corridor key replace --home DIR [--json]",
    .help = "Replaces this node's signing and box keys after they leaked, with the node\n"
            "stopped. Nothing is announced (a thief could announce too): the new card is\n"
            "printed, to hand to each peer's operator out of band, who runs\n"
            "`corridor peer add --replace \"CARD\"`. Each channel's messages after the last\n"
            "one queued are signed by the new key, and so is every message sent again;\n"
            "the old secret keys are deleted. The CURVE key is new too.\n"
            "Example: corridor key replace --home bank-a > bank-a.card\n",
    .json = true};

int cmd_key_replace(int argc, char **argv)
{
    cli_args_t args;
    home_t home;
    config_t *config = NULL;
    identity_t *current = NULL, *next = NULL;
    held_books_t books = {.lock_fd = -1};
    json_t *channels = NULL;
    char next_path[CORRIDOR_PATH_LEN_MAX];
    bool next_written = false;
    int rc = cli_parse(argc, argv, &key_replace_spec, NULL, NULL, &args);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    if ((rc = cli_open_home(args.home, &home, &config, &current)) != EXIT_OK ||
        (rc = open_books(&home, config, &books)) != EXIT_OK) {
        goto cleanup;
    }
    rc = EXIT_USAGE;
    if (fs_join(next_path, sizeof next_path, home.dir, IDENTITY_KEY_FILE_NEXT) != 0) {
        complain("home path is too long");
        goto cleanup;
    }
    if (access(next_path, F_OK) == 0) {
        complain("%s exists: a key rotation stopped half way; start the node once to finish it, "
                 "then replace",
                 next_path);
        goto cleanup;
    }
    rc = EXIT_INTERNAL;
    /* all new: the thief holds the CURVE secret too, and must not even connect */
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1], curve_secret[IDENTITY_CURVE_KEY_CHARS + 1];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(box, sizeof box);
    next = zmq_curve_keypair(curve_public, curve_secret) == 0
               ? identity_from_secrets(seed, box, curve_secret)
               : NULL;
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(box, sizeof box);
    sodium_memzero(curve_secret, sizeof curve_secret);
    if (next == NULL) {
        complain("cannot make new keys (out of secure memory)");
        goto cleanup;
    }
    if (identity_save(next, next_path) != ID_OK) {
        complain("cannot write %s: %s", next_path, strerror(errno));
        goto cleanup;
    }
    next_written = true;
    char new_hex[HEX_KEY_ID], old_hex[HEX_KEY_ID];
    hex_key_id(next->key_id, new_hex);
    hex_key_id(current->key_id, old_hex);
    if ((channels = json_array()) == NULL || ledger_begin(books.ledger) != LEDGER_OK) {
        rc = storage_error(books.ledger, "begin a transaction");
        goto cleanup;
    }
    /* on each channel the new key signs what follows the last message queued; the ones
     * before, as far as the peer has not acknowledged them, are signed again when sent */
    for (size_t i = 0; i < config->peers_count; i++) {
        const char *peer = config->peers[i].card.name;
        key_replaced_t done;
        if (replace_own_key(books.ledger, peer, current, next, &done) != LEDGER_OK) {
            rc = done.refused != NULL ? refused(books.ledger, peer, &done)
                                      : storage_error(books.ledger, "record the replacement");
            goto cleanup;
        }
        char replaced_hex[HEX_KEY_ID];
        hex_key_id(done.replaced_key_id, replaced_hex);
        json_array_append_new(channels,
                              json_pack("{s:s, s:s, s:I}", "peer", peer, "replaced_key_id",
                                        replaced_hex, "first_seq", (json_int_t)done.first_seq));
    }
    json_t *op_args = json_pack("{s:s, s:s, s:s, s:O}", "side", "ours", "key_id", new_hex,
                                "replaced_key_id", old_hex, "channels", channels);
    if (operation_record(books.ledger, (long long)getuid(), "replace", "", op_args) != LEDGER_OK ||
        ledger_commit(books.ledger) != LEDGER_OK) {
        rc = storage_error(books.ledger, "record the replacement");
        goto cleanup;
    }
    if (identity_files_replace(home.dir) != ID_OK) {
        complain("the replacement is recorded, but the key files could not follow: %s (the "
                 "next start finishes them)",
                 strerror(errno));
        next_written = false; /* the ledger names it: `corridor run` promotes it */
        goto cleanup;
    }
    next_written = false;
    peer_card_t card;
    cli_node_card(next, config, &card);
    rc = EXIT_OK;
    if (args.json) {
        char line[CORRIDOR_CARD_LEN_MAX + 1];
        card_encode(&card, line, sizeof line);
        rc = cli_print_document(json_pack("{s:s, s:s, s:s, s:O}", "key_id", new_hex,
                                          "replaced_key_id", old_hex, "card", line, "channels",
                                          channels));
    } else {
        cli_print_card(&card);
    }

cleanup:
    if (next_written) {
        (void)unlink(next_path);
    }
    json_decref(channels);
    close_books(&books);
    identity_destroy(&next);
    identity_destroy(&current);
    config_destroy(&config);
    return rc;
}
