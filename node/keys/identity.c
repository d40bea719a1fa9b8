/*
 * Node keys, the key file and peer cards; see identity.h.
 *
 * Key file format (text, so an operator can see what it is; parsed strictly):
 *   # comment lines
 *   corridor-keys-v1
 *   sign_seed=<64 hex>
 *   box_secret=<64 hex>
 *   curve_secret=<40 Z85>
 * Public keys are derived on load, never trusted from the file. Every buffer that held a
 * secret is wiped before it is released.
 */
#include "identity.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "fsutil.h"
#include "validate.h"

#define KEY_FILE_MAGIC     "corridor-keys-v1"
#define KEY_FILE_BYTES_MAX 1024
#define KEY_ID_DOMAIN      "corridor.key-id.v1"

_Static_assert(crypto_sign_SEEDBYTES == 32, "Ed25519 seeds are 32 bytes");
_Static_assert(crypto_box_SECRETKEYBYTES == 32, "X25519 secrets are 32 bytes");

const char *id_strerror(id_err_t err)
{
    switch (err) {
    case ID_OK:
        return "ok";
    case ID_E_IO:
        return "cannot read or write the key file";
    case ID_E_PERMISSIONS:
        return "key file is accessible by group or others";
    case ID_E_OWNER:
        return "key file belongs to another user";
    case ID_E_FORMAT:
        return "not a Corridor key file, or damaged";
    case ID_E_NOMEM:
        return "cannot allocate locked memory for keys";
    case ID_E_CRYPTO:
        return "key derivation failed";
    }
    return "unknown error";
}

void identity_key_id(const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES],
                     uint8_t key_id[static IDENTITY_KEY_ID_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, IDENTITY_KEY_ID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)KEY_ID_DOMAIN, sizeof KEY_ID_DOMAIN);
    crypto_generichash_update(&st, sign_public, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_final(&st, key_id, IDENTITY_KEY_ID_BYTES);
}

static identity_t *identity_alloc(void)
{
    identity_t *self = sodium_malloc(sizeof *self);
    if (self != NULL) {
        sodium_memzero(self, sizeof *self);
    }
    return self;
}

/* Completes an identity whose secret halves are set: derives every public key. */
static id_err_t identity_derive(identity_t *self, const uint8_t seed[static crypto_sign_SEEDBYTES])
{
    if (crypto_sign_seed_keypair(self->sign_public, self->sign_secret, seed) != 0 ||
        crypto_scalarmult_base(self->box_public, self->box_secret) != 0 ||
        zmq_curve_public(self->curve_public, self->curve_secret) != 0) {
        return ID_E_CRYPTO;
    }
    identity_key_id(self->sign_public, self->key_id);
    return ID_OK;
}

identity_t *identity_generate(void)
{
    identity_t *self = identity_alloc();
    if (self == NULL) {
        return NULL;
    }
    uint8_t seed[crypto_sign_SEEDBYTES];
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(self->box_secret, sizeof self->box_secret);
    bool ok = zmq_curve_keypair(curve_public, self->curve_secret) == 0 &&
              identity_derive(self, seed) == ID_OK;
    sodium_memzero(seed, sizeof seed);
    if (!ok) {
        identity_destroy(&self);
        return NULL;
    }
    assert(strcmp(curve_public, self->curve_public) == 0);
    return self;
}

identity_t *identity_from_secrets(const uint8_t sign_seed[static crypto_sign_SEEDBYTES],
                                  const uint8_t box_secret[static crypto_box_SECRETKEYBYTES],
                                  const char *curve_secret)
{
    assert(sign_seed != NULL && box_secret != NULL && curve_secret != NULL);
    uint8_t raw[32];
    if (strlen(curve_secret) != IDENTITY_CURVE_KEY_CHARS ||
        zmq_z85_decode(raw, curve_secret) == NULL) {
        return NULL;
    }
    sodium_memzero(raw, sizeof raw);
    identity_t *self = identity_alloc();
    if (self == NULL) {
        return NULL;
    }
    memcpy(self->box_secret, box_secret, sizeof self->box_secret);
    memcpy(self->curve_secret, curve_secret, IDENTITY_CURVE_KEY_CHARS + 1);
    if (identity_derive(self, sign_seed) != ID_OK) {
        identity_destroy(&self);
    }
    return self;
}

void identity_destroy(identity_t **self_p)
{
    assert(self_p != NULL);
    if (*self_p != NULL) {
        sodium_free(*self_p); /* wipes before freeing */
        *self_p = NULL;
    }
}

id_err_t identity_save(const identity_t *self, const char *path)
{
    assert(self != NULL && path != NULL);
    id_err_t rc = ID_E_NOMEM;
    char *text = sodium_malloc(KEY_FILE_BYTES_MAX);
    uint8_t seed[crypto_sign_SEEDBYTES];
    char seed_hex[2 * crypto_sign_SEEDBYTES + 1];
    char box_hex[2 * crypto_box_SECRETKEYBYTES + 1];
    if (text == NULL) {
        goto cleanup;
    }
    crypto_sign_ed25519_sk_to_seed(seed, self->sign_secret);
    sodium_bin2hex(seed_hex, sizeof seed_hex, seed, sizeof seed);
    sodium_bin2hex(box_hex, sizeof box_hex, self->box_secret, sizeof self->box_secret);
    int n = snprintf(text, KEY_FILE_BYTES_MAX,
                     "# Corridor node secret keys. Keep private (mode 0600); never share.\n"
                     "%s\nsign_seed=%s\nbox_secret=%s\ncurve_secret=%s\n",
                     KEY_FILE_MAGIC, seed_hex, box_hex, self->curve_secret);
    assert(n > 0 && n < KEY_FILE_BYTES_MAX);
    rc = fs_write_atomic(path, text, (size_t)n, IDENTITY_KEY_FILE_MODE) == 0 ? ID_OK : ID_E_IO;

cleanup:
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(seed_hex, sizeof seed_hex);
    sodium_memzero(box_hex, sizeof box_hex);
    if (text != NULL) {
        sodium_free(text);
    }
    return rc;
}

id_err_t identity_files_replace(const char *dir)
{
    char next[CORRIDOR_PATH_LEN_MAX], key[CORRIDOR_PATH_LEN_MAX], previous[CORRIDOR_PATH_LEN_MAX];
    if (fs_join(next, sizeof next, dir, IDENTITY_KEY_FILE_NEXT) != 0 ||
        fs_join(key, sizeof key, dir, IDENTITY_KEY_FILE) != 0 ||
        fs_join(previous, sizeof previous, dir, IDENTITY_KEY_FILE_PREV) != 0) {
        errno = ENAMETOOLONG;
        return ID_E_IO;
    }
    if (rename(next, key) != 0 || (unlink(previous) != 0 && errno != ENOENT) ||
        fs_sync_dir(dir) != 0) {
        return ID_E_IO;
    }
    return ID_OK;
}

/* Copies the value of "key=value" at the start of *cursor into out (exactly len chars) and
 * advances past the line. Returns false if the line is not exactly that. */
static bool take_line(char **cursor, const char *key, char *out, size_t len)
{
    char *line = *cursor;
    char *end = strchr(line, '\n');
    if (end == NULL) {
        return false;
    }
    size_t key_len = strlen(key);
    if ((size_t)(end - line) != key_len + 1 + len || memcmp(line, key, key_len) != 0 ||
        line[key_len] != '=') {
        return false;
    }
    memcpy(out, line + key_len + 1, len);
    out[len] = '\0';
    *cursor = end + 1;
    return true;
}

static id_err_t check_key_file_access(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return ID_E_IO;
    }
    if (st.st_uid != geteuid()) {
        return ID_E_OWNER;
    }
    if ((st.st_mode & 077) != 0) {
        return ID_E_PERMISSIONS;
    }
    return ID_OK;
}

/* Secrets read from the key file, in locked memory while they are parsed. */
typedef struct {
    char text[KEY_FILE_BYTES_MAX + 1];
    char seed_hex[2 * crypto_sign_SEEDBYTES + 1];
    char box_hex[2 * crypto_box_SECRETKEYBYTES + 1];
    char curve_secret[IDENTITY_CURVE_KEY_CHARS + 1];
    uint8_t seed[crypto_sign_SEEDBYTES];
    uint8_t box_secret[crypto_box_SECRETKEYBYTES];
} key_file_scratch_t;

/* Parses the key file text in s->text into s's binary secrets. */
static bool parse_key_file(key_file_scratch_t *s)
{
    char *cursor = s->text;
    while (*cursor == '#') { /* leading comment lines */
        char *nl = strchr(cursor, '\n');
        if (nl == NULL) {
            return false;
        }
        cursor = nl + 1;
    }
    size_t magic_len = strlen(KEY_FILE_MAGIC);
    if (strncmp(cursor, KEY_FILE_MAGIC, magic_len) != 0 || cursor[magic_len] != '\n') {
        return false;
    }
    cursor += magic_len + 1;
    size_t seed_len = 0, box_len = 0;
    return take_line(&cursor, "sign_seed", s->seed_hex, sizeof s->seed_hex - 1) &&
           take_line(&cursor, "box_secret", s->box_hex, sizeof s->box_hex - 1) &&
           take_line(&cursor, "curve_secret", s->curve_secret, IDENTITY_CURVE_KEY_CHARS) &&
           *cursor == '\0' &&
           sodium_hex2bin(s->seed, sizeof s->seed, s->seed_hex, strlen(s->seed_hex), NULL,
                          &seed_len, NULL) == 0 &&
           seed_len == sizeof s->seed &&
           sodium_hex2bin(s->box_secret, sizeof s->box_secret, s->box_hex, strlen(s->box_hex), NULL,
                          &box_len, NULL) == 0 &&
           box_len == sizeof s->box_secret;
}

id_err_t identity_load(const char *path, identity_t **out)
{
    assert(path != NULL && out != NULL);
    *out = NULL;
    id_err_t rc = check_key_file_access(path);
    if (rc != ID_OK) {
        return rc;
    }
    key_file_scratch_t *s = sodium_malloc(sizeof *s);
    if (s == NULL) {
        return ID_E_NOMEM;
    }
    ssize_t n = fs_read_bounded(path, s->text, KEY_FILE_BYTES_MAX);
    if (n < 0) {
        rc = errno == EFBIG ? ID_E_FORMAT : ID_E_IO;
    } else if (!parse_key_file(s)) {
        rc = ID_E_FORMAT;
    } else {
        *out = identity_from_secrets(s->seed, s->box_secret, s->curve_secret);
        rc = *out != NULL ? ID_OK : ID_E_FORMAT;
    }
    sodium_free(s);
    return rc;
}

void identity_card(const identity_t *self, const char *name, const char *endpoint,
                   peer_card_t *card)
{
    assert(self != NULL && name != NULL && endpoint != NULL && card != NULL);
    assert(strlen(name) <= CORRIDOR_NAME_LEN_MAX && strlen(endpoint) <= CORRIDOR_ENDPOINT_LEN_MAX);
    memset(card, 0, sizeof *card);
    strcpy(card->name, name);
    strcpy(card->endpoint, endpoint);
    memcpy(card->sign_public, self->sign_public, sizeof card->sign_public);
    memcpy(card->box_public, self->box_public, sizeof card->box_public);
    memcpy(card->curve_public, self->curve_public, sizeof card->curve_public);
}

const char *card_strerror(card_err_t err)
{
    switch (err) {
    case CARD_OK:
        return "ok";
    case CARD_E_EMPTY:
        return "the card is empty";
    case CARD_E_TOO_LONG:
        return "the card is too long, or spans more than one line";
    case CARD_E_PREFIX:
        return "the card does not start with " IDENTITY_CARD_PREFIX;
    case CARD_E_FIELD:
        return "the card has a word that is not a known key=value, or a key twice";
    case CARD_E_MISSING:
        return "the card lacks one of name=, endpoint=, sign=, box=, curve=";
    case CARD_E_NAME:
        return "the card's name= is not a node code (4-11 of A-Z, 0-9, starting with a letter)";
    case CARD_E_ENDPOINT:
        return "the card's endpoint= or stream= is not tcp://HOST:PORT or ipc://PATH";
    case CARD_E_SIGN_KEY:
        return "the card's sign= is not an Ed25519 public key in 64 hex digits";
    case CARD_E_BOX_KEY:
        return "the card's box= is not an X25519 public key in 64 hex digits";
    case CARD_E_CURVE_KEY:
        return "the card's curve= is not a CURVE public key in 40 Z85 characters";
    }
    return "unknown error";
}

size_t card_encode(const peer_card_t *card, char *out, size_t out_size)
{
    assert(card != NULL && out != NULL);
    char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    char box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    sodium_bin2hex(sign_hex, sizeof sign_hex, card->sign_public, sizeof card->sign_public);
    sodium_bin2hex(box_hex, sizeof box_hex, card->box_public, sizeof card->box_public);
    int n = snprintf(out, out_size, "%s name=%s endpoint=%s%s%s sign=%s box=%s curve=%s",
                     IDENTITY_CARD_PREFIX, card->name, card->endpoint,
                     card->stream[0] != '\0' ? " stream=" : "", card->stream, sign_hex, box_hex,
                     card->curve_public);
    if (n < 0 || (size_t)n >= out_size) {
        if (out_size > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    return (size_t)n;
}

bool endpoint_valid(const char *endpoint)
{
    assert(endpoint != NULL);
    size_t len = strlen(endpoint);
    if (len == 0 || len > CORRIDOR_ENDPOINT_LEN_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (endpoint[i] <= ' ' || endpoint[i] >= 0x7f) {
            return false;
        }
    }
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        return len > 6;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0) {
        return false;
    }
    const char *colon = strrchr(endpoint + 6, ':');
    if (colon == NULL || colon == endpoint + 6 || colon[1] == '\0') {
        return false;
    }
    unsigned long port = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || p - colon > 5) {
            return false;
        }
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return port >= 1 && port <= 65535;
}

static bool parse_hex_key(const char *hex, uint8_t *out, size_t len)
{
    size_t bin_len = 0;
    return strlen(hex) == 2 * len &&
           sodium_hex2bin(out, len, hex, 2 * len, NULL, &bin_len, NULL) == 0 && bin_len == len;
}

static const char *const card_keys[] = {"name", "endpoint", "sign", "box", "curve", "stream"};
_Static_assert(sizeof card_keys / sizeof card_keys[0] == 6 && CARD_FIELDS_ALL == 0x3fu,
               "one bit per card key");

const char *card_stream_endpoint(const peer_card_t *card)
{
    assert(card != NULL);
    return card->stream[0] != '\0' ? card->stream : card->endpoint;
}

bool endpoint_stream_default(const char *listen, char *out, size_t out_size)
{
    assert(listen != NULL && out != NULL && endpoint_valid(listen));
    int n;
    if (strncmp(listen, "ipc://", 6) == 0) {
        n = snprintf(out, out_size, "%s-stream", listen);
    } else {
        const char *colon = strrchr(listen, ':');
        unsigned long port = strtoul(colon + 1, NULL, 10);
        if (port >= 65535) {
            return false;
        }
        n = snprintf(out, out_size, "%.*s:%lu", (int)(colon - listen), listen, port + 1);
    }
    return n > 0 && (size_t)n < out_size && endpoint_valid(out);
}

unsigned card_field_bit(const char *key)
{
    assert(key != NULL);
    for (size_t i = 0; i < sizeof card_keys / sizeof card_keys[0]; i++) {
        if (strcmp(key, card_keys[i]) == 0) {
            return 1u << i;
        }
    }
    return 0;
}

card_err_t card_set_field(peer_card_t *card, const char *key, const char *value)
{
    assert(card != NULL && key != NULL && value != NULL);
    if (strcmp(key, "name") == 0) {
        if (node_code_check(value) != VALID_OK) {
            return CARD_E_NAME;
        }
        strcpy(card->name, value);
    } else if (strcmp(key, "endpoint") == 0) {
        if (!endpoint_valid(value)) {
            return CARD_E_ENDPOINT;
        }
        strcpy(card->endpoint, value);
    } else if (strcmp(key, "stream") == 0) {
        if (!endpoint_valid(value)) {
            return CARD_E_ENDPOINT;
        }
        strcpy(card->stream, value);
    } else if (strcmp(key, "sign") == 0) {
        if (!parse_hex_key(value, card->sign_public, sizeof card->sign_public) ||
            crypto_core_ed25519_is_valid_point(card->sign_public) != 1) {
            return CARD_E_SIGN_KEY;
        }
    } else if (strcmp(key, "box") == 0) {
        if (!parse_hex_key(value, card->box_public, sizeof card->box_public)) {
            return CARD_E_BOX_KEY;
        }
    } else if (strcmp(key, "curve") == 0) {
        uint8_t raw[32];
        if (strlen(value) != IDENTITY_CURVE_KEY_CHARS || zmq_z85_decode(raw, value) == NULL) {
            return CARD_E_CURVE_KEY;
        }
        strcpy(card->curve_public, value);
    } else {
        return CARD_E_FIELD;
    }
    return CARD_OK;
}

/* Applies one key=value word of a card; `seen` tracks which fields were given. */
static card_err_t card_word(char *word, peer_card_t *card, unsigned *seen)
{
    char *eq = strchr(word, '=');
    if (eq == NULL) {
        return CARD_E_FIELD;
    }
    *eq = '\0';
    unsigned bit = card_field_bit(word);
    if (bit == 0 || (*seen & bit) != 0) {
        return CARD_E_FIELD;
    }
    *seen |= bit;
    return card_set_field(card, word, eq + 1);
}

card_err_t card_parse(const char *text, peer_card_t *card)
{
    assert(text != NULL && card != NULL);
    memset(card, 0, sizeof *card);
    char buf[CORRIDOR_CARD_LEN_MAX + 2];
    size_t len = strnlen(text, CORRIDOR_CARD_LEN_MAX + 2);
    if (len > CORRIDOR_CARD_LEN_MAX + 1) {
        return CARD_E_TOO_LONG;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\n')) {
        buf[--len] = '\0';
    }
    char *start = buf;
    while (*start == ' ') {
        start++;
    }
    if (*start == '\0') {
        return CARD_E_EMPTY;
    }
    if (strlen(start) > CORRIDOR_CARD_LEN_MAX || strpbrk(start, "\r\n") != NULL) {
        return CARD_E_TOO_LONG;
    }
    char *save = NULL;
    char *word = strtok_r(start, " \t", &save);
    if (word == NULL || strcmp(word, IDENTITY_CARD_PREFIX) != 0) {
        return CARD_E_PREFIX;
    }
    unsigned seen = 0;
    card_err_t rc = CARD_OK;
    while (rc == CARD_OK && (word = strtok_r(NULL, " \t", &save)) != NULL) {
        rc = card_word(word, card, &seen);
    }
    if (rc == CARD_OK && (seen & CARD_FIELDS_REQUIRED) != CARD_FIELDS_REQUIRED) {
        rc = CARD_E_MISSING;
    }
    if (rc != CARD_OK) {
        memset(card, 0, sizeof *card);
    }
    return rc;
}
