/* Unit tests for node/keys/identity.c: key generation, the key file, key ids, peer cards,
 * endpoints. */
#include "support.h"
#include "identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

/* A valid card's fields as text, made once for the group from a fresh identity. */
static struct {
    peer_card_t card;
    char sign_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    char box_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    char curve[IDENTITY_CURVE_KEY_CHARS + 1];
} good;

#define GOOD_NAME     "BKRURUMM"
#define GOOD_ENDPOINT "tcp://127.0.0.1:7001"

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) {
        return -1;
    }
    identity_t *id = identity_generate();
    if (id == NULL) {
        return -1;
    }
    identity_card(id, GOOD_NAME, GOOD_ENDPOINT, &good.card);
    sodium_bin2hex(good.sign_hex, sizeof good.sign_hex, id->sign_public, sizeof id->sign_public);
    sodium_bin2hex(good.box_hex, sizeof good.box_hex, id->box_public, sizeof id->box_public);
    memcpy(good.curve, id->curve_public, sizeof good.curve);
    identity_destroy(&id);
    return 0;
}

/* ---- helpers ---- */

/* Writes a card line from its parts; a NULL part is left out. */
static void card_line(char *out, size_t out_size, const char *name, const char *endpoint,
                      const char *sign, const char *box, const char *curve)
{
    int n = snprintf(out, out_size, "%s", IDENTITY_CARD_PREFIX);
    const char *keys[] = {"name", "endpoint", "sign", "box", "curve"};
    const char *values[] = {name, endpoint, sign, box, curve};
    for (size_t i = 0; i < 5; i++) {
        if (values[i] != NULL) {
            n += snprintf(out + n, out_size - (size_t)n, " %s=%s", keys[i], values[i]);
        }
    }
    assert_true(n > 0 && (size_t)n < out_size);
}

static bool all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Parses text, expecting want; on error the card must come back zeroed. */
static void assert_card_fails(const char *text, card_err_t want)
{
    peer_card_t card;
    memset(&card, 0xa5, sizeof card);
    card_err_t got = card_parse(text, &card);
    if (got != want) {
        print_error("card_parse(\"%s\"): got %d (%s), want %d (%s)\n", text, (int)got,
                    card_strerror(got), (int)want, card_strerror(want));
    }
    assert_int_equal(got, want);
    assert_true(all_zero(&card, sizeof card));
}

/* A card with the good fields except one replaced (field index 0..4) by value. */
static void assert_field_fails(size_t field, const char *value, card_err_t want)
{
    const char *v[] = {GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve};
    v[field] = value;
    char line[2 * CORRIDOR_CARD_LEN_MAX];
    card_line(line, sizeof line, v[0], v[1], v[2], v[3], v[4]);
    assert_card_fails(line, want);
}

static void assert_cards_equal(const peer_card_t *a, const peer_card_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->endpoint, b->endpoint);
    assert_string_equal(a->stream, b->stream);
    assert_memory_equal(a->sign_public, b->sign_public, sizeof a->sign_public);
    assert_memory_equal(a->box_public, b->box_public, sizeof a->box_public);
    assert_string_equal(a->curve_public, b->curve_public);
}

/* Saves a fresh identity into dir/node.key; returns the malloc'd path. */
static char *saved_key_file(const char *dir)
{
    char *path = test_path(dir, IDENTITY_KEY_FILE);
    identity_t *id = identity_generate();
    assert_non_null(id);
    assert_int_equal(identity_save(id, path), ID_OK);
    identity_destroy(&id);
    return path;
}

/* Loads path expecting want; on error *out must be NULL. */
static void assert_load_fails(const char *path, id_err_t want)
{
    static identity_t sentinel;
    identity_t *id = &sentinel; /* not NULL, to see it cleared */
    assert_int_equal(identity_load(path, &id), want);
    assert_null(id);
}

/* Replaces the first occurrence of `from` in the key file with `to` (same mode 0600). */
static void edit_key_file(const char *path, const char *from, const char *to)
{
    size_t len = 0;
    char *text = test_read_file(path, &len);
    assert_non_null(text);
    char *at = strstr(text, from);
    assert_non_null(at);
    size_t from_len = strlen(from);
    size_t to_len = strlen(to);
    char *edited = malloc(len - from_len + to_len + 1);
    assert_non_null(edited);
    size_t head = (size_t)(at - text);
    memcpy(edited, text, head);
    memcpy(edited + head, to, to_len);
    memcpy(edited + head + to_len, at + from_len, len - head - from_len + 1);
    test_write_file(path, edited, len - from_len + to_len, 0600);
    sodium_memzero(text, len);
    free(text);
    free(edited);
}

/* ---- generation and key ids ---- */

static void test_generate_valid_keys(void **state)
{
    (void)state;
    identity_t *id = identity_generate();
    assert_non_null(id);
    /* Ed25519: the secret key is seed || public, the public key is a valid point. */
    assert_memory_equal(id->sign_secret + crypto_sign_SEEDBYTES, id->sign_public,
                        crypto_sign_PUBLICKEYBYTES);
    assert_int_equal(crypto_core_ed25519_is_valid_point(id->sign_public), 1);
    /* X25519: the public key is derived from the secret. */
    uint8_t box_public[crypto_box_PUBLICKEYBYTES];
    assert_int_equal(crypto_scalarmult_base(box_public, id->box_secret), 0);
    assert_memory_equal(box_public, id->box_public, sizeof box_public);
    /* CURVE: 40 Z85 characters, the public key derived from the secret. */
    assert_int_equal(strlen(id->curve_secret), IDENTITY_CURVE_KEY_CHARS);
    assert_int_equal(strlen(id->curve_public), IDENTITY_CURVE_KEY_CHARS);
    char curve_public[IDENTITY_CURVE_KEY_CHARS + 1];
    assert_int_equal(zmq_curve_public(curve_public, id->curve_secret), 0);
    assert_string_equal(curve_public, id->curve_public);
    /* The key id is that of the signing key. */
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(id->sign_public, key_id);
    assert_memory_equal(key_id, id->key_id, sizeof key_id);
    identity_destroy(&id);
}

static void test_generate_distinct_keys(void **state)
{
    (void)state;
    identity_t *a = identity_generate();
    identity_t *b = identity_generate();
    assert_non_null(a);
    assert_non_null(b);
    assert_memory_not_equal(a->sign_secret, b->sign_secret, sizeof a->sign_secret);
    assert_memory_not_equal(a->sign_public, b->sign_public, sizeof a->sign_public);
    assert_memory_not_equal(a->box_secret, b->box_secret, sizeof a->box_secret);
    assert_memory_not_equal(a->box_public, b->box_public, sizeof a->box_public);
    assert_string_not_equal(a->curve_secret, b->curve_secret);
    assert_string_not_equal(a->curve_public, b->curve_public);
    assert_memory_not_equal(a->key_id, b->key_id, sizeof a->key_id);
    identity_destroy(&a);
    identity_destroy(&b);
}

static void test_generate_sign_verify(void **state)
{
    (void)state;
    identity_t *id = identity_generate();
    assert_non_null(id);
    static const uint8_t msg[] = "pacs.008";
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof msg, id->sign_secret), 0);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, id->sign_public), 0);
    sig[0] ^= 1;
    assert_int_not_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, id->sign_public), 0);
    identity_destroy(&id);
}

static void test_key_id_deterministic(void **state)
{
    (void)state;
    uint8_t a[IDENTITY_KEY_ID_BYTES];
    uint8_t b[IDENTITY_KEY_ID_BYTES];
    memset(a, 0, sizeof a);
    memset(b, 0xff, sizeof b);
    identity_key_id(good.card.sign_public, a);
    identity_key_id(good.card.sign_public, b);
    assert_memory_equal(a, b, sizeof a);
    assert_false(all_zero(a, sizeof a));
}

static void test_key_id_differs_across_keys(void **state)
{
    (void)state;
    uint8_t other[crypto_sign_PUBLICKEYBYTES];
    memcpy(other, good.card.sign_public, sizeof other);
    other[0] ^= 1;
    uint8_t a[IDENTITY_KEY_ID_BYTES];
    uint8_t b[IDENTITY_KEY_ID_BYTES];
    identity_key_id(good.card.sign_public, a);
    identity_key_id(other, b);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_key_id_is_domain_separated(void **state)
{
    (void)state;
    /* Not a bare BLAKE2b-128 of the key: the domain tag is part of the input. */
    uint8_t bare[IDENTITY_KEY_ID_BYTES];
    uint8_t key_id[IDENTITY_KEY_ID_BYTES];
    crypto_generichash(bare, sizeof bare, good.card.sign_public, crypto_sign_PUBLICKEYBYTES, NULL,
                       0);
    identity_key_id(good.card.sign_public, key_id);
    assert_memory_not_equal(bare, key_id, sizeof key_id);
}

/* ---- destroy ---- */

static void test_destroy_null_safe(void **state)
{
    (void)state;
    identity_t *id = NULL;
    identity_destroy(&id);
    assert_null(id);
}

static void test_destroy_clears_pointer_and_twice(void **state)
{
    (void)state;
    identity_t *id = identity_generate();
    assert_non_null(id);
    identity_destroy(&id);
    assert_null(id);
    identity_destroy(&id);
    assert_null(id);
}

/* ---- key file ---- */

static void test_save_load_round_trip(void **state)
{
    char *path = test_path(*state, IDENTITY_KEY_FILE);
    identity_t *orig = identity_generate();
    assert_non_null(orig);
    assert_int_equal(identity_save(orig, path), ID_OK);
    identity_t *loaded = NULL;
    assert_int_equal(identity_load(path, &loaded), ID_OK);
    assert_non_null(loaded);
    assert_memory_equal(loaded->sign_secret, orig->sign_secret, sizeof orig->sign_secret);
    assert_memory_equal(loaded->sign_public, orig->sign_public, sizeof orig->sign_public);
    assert_memory_equal(loaded->box_secret, orig->box_secret, sizeof orig->box_secret);
    assert_memory_equal(loaded->box_public, orig->box_public, sizeof orig->box_public);
    assert_string_equal(loaded->curve_secret, orig->curve_secret);
    assert_string_equal(loaded->curve_public, orig->curve_public);
    assert_memory_equal(loaded->key_id, orig->key_id, sizeof orig->key_id);

    static const uint8_t msg[] = "camt.056";
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof msg, loaded->sign_secret), 0);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, orig->sign_public), 0);

    identity_destroy(&orig);
    identity_destroy(&loaded);
    free(path);
}

static void test_save_mode_0600(void **state)
{
    char *path = saved_key_file(*state);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, IDENTITY_KEY_FILE_MODE);
    free(path);
}

static void test_save_replaces_existing(void **state)
{
    char *path = test_path(*state, IDENTITY_KEY_FILE);
    test_write_file(path, "old\n", 4, 0644);
    identity_t *id = identity_generate();
    assert_non_null(id);
    assert_int_equal(identity_save(id, path), ID_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    identity_t *loaded = NULL;
    assert_int_equal(identity_load(path, &loaded), ID_OK);
    assert_memory_equal(loaded->key_id, id->key_id, sizeof id->key_id);
    identity_destroy(&id);
    identity_destroy(&loaded);
    free(path);
}

static void test_save_into_missing_dir_io(void **state)
{
    char *dir = test_path(*state, "absent");
    char *path = test_path(dir, IDENTITY_KEY_FILE);
    identity_t *id = identity_generate();
    assert_non_null(id);
    assert_int_equal(identity_save(id, path), ID_E_IO);
    assert_int_equal(access(dir, F_OK), -1);
    identity_destroy(&id);
    free(path);
    free(dir);
}

static void assert_mode_refused(const char *dir, mode_t mode)
{
    char *path = saved_key_file(dir);
    assert_int_equal(chmod(path, mode), 0);
    assert_load_fails(path, ID_E_PERMISSIONS);
    free(path);
}

static void test_load_refuses_0640(void **state)
{
    assert_mode_refused(*state, 0640);
}

static void test_load_refuses_0604(void **state)
{
    assert_mode_refused(*state, 0604);
}

static void test_load_refuses_0644(void **state)
{
    assert_mode_refused(*state, 0644);
}

static void test_load_refuses_0620(void **state)
{
    assert_mode_refused(*state, 0620);
}

static void test_load_accepts_0400(void **state)
{
    char *path = saved_key_file(*state);
    assert_int_equal(chmod(path, 0400), 0);
    identity_t *id = NULL;
    assert_int_equal(identity_load(path, &id), ID_OK);
    assert_non_null(id);
    identity_destroy(&id);
    free(path);
}

static void test_load_refuses_other_owner(void **state)
{
    if (geteuid() != 0) {
        skip(); /* only root can give a file away */
    }
    char *path = saved_key_file(*state);
    assert_int_equal(chown(path, 4242, (gid_t)-1), 0);
    assert_load_fails(path, ID_E_OWNER);
    free(path);
}

static void test_load_missing_io(void **state)
{
    char *path = test_path(*state, IDENTITY_KEY_FILE);
    assert_load_fails(path, ID_E_IO);
    free(path);
}

static void test_load_directory_refused(void **state)
{
    char *path = test_path(*state, IDENTITY_KEY_FILE);
    assert_int_equal(mkdir(path, 0700), 0);
    identity_t *id = NULL;
    assert_int_not_equal(identity_load(path, &id), ID_OK);
    assert_null(id);
    free(path);
}

static void test_load_truncated_format(void **state)
{
    char *path = saved_key_file(*state);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    assert_non_null(text);
    test_write_file(path, text, len / 2, 0600);
    assert_load_fails(path, ID_E_FORMAT);
    /* Also without only the final newline. */
    test_write_file(path, text, len - 1, 0600);
    assert_load_fails(path, ID_E_FORMAT);
    free(text);
    free(path);
}

static void test_load_wrong_magic_format(void **state)
{
    char *path = saved_key_file(*state);
    edit_key_file(path, "corridor-keys-v1\n", "corridor-keys-v2\n");
    assert_load_fails(path, ID_E_FORMAT);
    free(path);
}

/* Overwrites one character of the key file, `offset` past the first `key`. */
static void poke_key_file(const char *path, const char *key, size_t offset, char c)
{
    size_t len = 0;
    char *text = test_read_file(path, &len);
    assert_non_null(text);
    char *at = strstr(text, key);
    assert_non_null(at);
    at[strlen(key) + offset] = c;
    test_write_file(path, text, len, 0600);
    free(text);
}

static void test_load_bad_hex_format(void **state)
{
    char *path = saved_key_file(*state);
    poke_key_file(path, "sign_seed=", 0, 'g');
    assert_load_fails(path, ID_E_FORMAT);
    free(path);
}

static void test_load_bad_box_hex_format(void **state)
{
    char *path = saved_key_file(*state);
    poke_key_file(path, "box_secret=", 5, 'x');
    assert_load_fails(path, ID_E_FORMAT);
    free(path);
}

static void test_load_bad_curve_format(void **state)
{
    char *path = saved_key_file(*state);
    poke_key_file(path, "curve_secret=", 0, '~'); /* not a Z85 character */
    assert_load_fails(path, ID_E_FORMAT);
    free(path);
}

static void test_load_extra_line_format(void **state)
{
    char *path = saved_key_file(*state);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    char *longer = malloc(len + 32);
    assert_non_null(longer);
    int n = snprintf(longer, len + 32, "%sextra=1\n", text);
    test_write_file(path, longer, (size_t)n, 0600);
    assert_load_fails(path, ID_E_FORMAT);
    free(longer);
    free(text);
    free(path);
}

static void test_load_missing_line_format(void **state)
{
    char *path = saved_key_file(*state);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    char *start = strstr(text, "box_secret=");
    assert_non_null(start);
    char *end = strchr(start, '\n');
    assert_non_null(end);
    memmove(start, end + 1, strlen(end + 1) + 1);
    test_write_file(path, text, strlen(text), 0600);
    assert_load_fails(path, ID_E_FORMAT);
    free(text);
    free(path);
}

static void test_load_empty_format(void **state)
{
    char *path = test_path(*state, IDENTITY_KEY_FILE);
    test_write_file(path, "", 0, 0600);
    assert_load_fails(path, ID_E_FORMAT);
    free(path);
}

/* Pads a valid key file with leading comment lines to exactly `total` bytes. */
static void pad_key_file(const char *path, size_t total)
{
    size_t len = 0;
    char *text = test_read_file(path, &len);
    assert_non_null(text);
    assert_true(total > len + 2);
    char *padded = malloc(total + 1);
    assert_non_null(padded);
    size_t pad = total - len;
    padded[0] = '#';
    memset(padded + 1, 'x', pad - 2);
    padded[pad - 1] = '\n';
    memcpy(padded + pad, text, len);
    test_write_file(path, padded, total, 0600);
    free(padded);
    free(text);
}

static void test_load_1024_bytes_ok(void **state)
{
    char *path = saved_key_file(*state);
    pad_key_file(path, 1024);
    identity_t *id = NULL;
    assert_int_equal(identity_load(path, &id), ID_OK);
    assert_non_null(id);
    identity_destroy(&id);
    free(path);
}

static void test_load_1025_bytes_format(void **state)
{
    char *path = saved_key_file(*state);
    pad_key_file(path, 1025);
    assert_load_fails(path, ID_E_FORMAT);
    free(path);
}

static void test_load_symlink_refused(void **state)
{
    char *path = saved_key_file(*state);
    char *link = test_path(*state, "link.key");
    assert_int_equal(symlink(path, link), 0);
    identity_t *id = NULL;
    assert_int_not_equal(identity_load(link, &id), ID_OK);
    assert_null(id);
    free(link);
    free(path);
}

static void test_id_strerror_distinct(void **state)
{
    (void)state;
    for (int a = ID_OK; a <= ID_E_CRYPTO; a++) {
        assert_non_null(id_strerror((id_err_t)a));
        assert_true(strlen(id_strerror((id_err_t)a)) > 0);
        for (int b = a + 1; b <= ID_E_CRYPTO; b++) {
            assert_string_not_equal(id_strerror((id_err_t)a), id_strerror((id_err_t)b));
        }
    }
}

/* ---- cards ---- */

static void test_card_encode_parse_round_trip(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    size_t len = card_encode(&good.card, line, sizeof line);
    assert_true(len > 0);
    assert_int_equal(len, strlen(line));
    assert_null(strchr(line, '\n'));
    assert_int_equal(strncmp(line, IDENTITY_CARD_PREFIX " ", strlen(IDENTITY_CARD_PREFIX) + 1), 0);
    peer_card_t card;
    assert_int_equal(card_parse(line, &card), CARD_OK);
    assert_cards_equal(&card, &good.card);
}

static void test_card_from_identity(void **state)
{
    (void)state;
    identity_t *id = identity_generate();
    assert_non_null(id);
    peer_card_t card;
    memset(&card, 0xa5, sizeof card);
    identity_card(id, "BMJIIRTH", "ipc:///tmp/corridor", &card);
    assert_string_equal(card.name, "BMJIIRTH");
    assert_string_equal(card.endpoint, "ipc:///tmp/corridor");
    assert_memory_equal(card.sign_public, id->sign_public, sizeof card.sign_public);
    assert_memory_equal(card.box_public, id->box_public, sizeof card.box_public);
    assert_string_equal(card.curve_public, id->curve_public);
    identity_destroy(&id);
}

static void test_card_encode_small_buffer(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    size_t len = card_encode(&good.card, line, sizeof line);
    assert_true(len > 0);
    char small[CORRIDOR_CARD_LEN_MAX + 1];
    memset(small, 'x', sizeof small);
    assert_int_equal(card_encode(&good.card, small, len), 0);
    assert_int_equal(small[0], '\0');
    assert_int_equal(card_encode(&good.card, small, len + 1), len);
    assert_string_equal(small, line);
}

static void test_card_parse_trailing_newline_and_spaces(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    assert_true(card_encode(&good.card, line, sizeof line) > 0);
    char text[CORRIDOR_CARD_LEN_MAX + 16];
    peer_card_t card;

    snprintf(text, sizeof text, "%s\n", line);
    assert_int_equal(card_parse(text, &card), CARD_OK);
    assert_cards_equal(&card, &good.card);

    snprintf(text, sizeof text, "   %s   \n", line);
    assert_int_equal(card_parse(text, &card), CARD_OK);
    assert_cards_equal(&card, &good.card);
}

static void test_card_parse_fields_any_order(void **state)
{
    (void)state;
    char text[CORRIDOR_CARD_LEN_MAX + 1];
    snprintf(text, sizeof text, "%s curve=%s box=%s sign=%s endpoint=%s name=%s",
             IDENTITY_CARD_PREFIX, good.curve, good.box_hex, good.sign_hex, GOOD_ENDPOINT,
             GOOD_NAME);
    peer_card_t card;
    assert_int_equal(card_parse(text, &card), CARD_OK);
    assert_cards_equal(&card, &good.card);
}

static void test_card_empty(void **state)
{
    (void)state;
    assert_card_fails("", CARD_E_EMPTY);
    assert_card_fails("   ", CARD_E_EMPTY);
    assert_card_fails("\n", CARD_E_EMPTY);
}

static void test_card_wrong_prefix(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve);
    line[strlen(IDENTITY_CARD_PREFIX) - 1] = '2'; /* corridor-card-v2 */
    assert_card_fails(line, CARD_E_PREFIX);
    assert_card_fails("name=BKRURUMM", CARD_E_PREFIX);
    assert_card_fails("CORRIDOR-CARD-V1 name=BKRURUMM", CARD_E_PREFIX);
    assert_card_fails("corridor-card-v1x name=BKRURUMM", CARD_E_PREFIX);
}

static void test_card_word_without_equals(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve);
    strcat(line, " stray");
    assert_card_fails(line, CARD_E_FIELD);
}

static void test_card_unknown_key(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve);
    strcat(line, " color=blue");
    assert_card_fails(line, CARD_E_FIELD);
}

static void test_card_duplicated_key(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve);
    strcat(line, " name=" GOOD_NAME);
    assert_card_fails(line, CARD_E_FIELD);
}

static void test_card_missing_each_field(void **state)
{
    (void)state;
    for (size_t omit = 0; omit < 5; omit++) {
        const char *v[] = {GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve};
        v[omit] = NULL;
        char line[CORRIDOR_CARD_LEN_MAX + 1];
        card_line(line, sizeof line, v[0], v[1], v[2], v[3], v[4]);
        assert_card_fails(line, CARD_E_MISSING);
    }
    assert_card_fails(IDENTITY_CARD_PREFIX, CARD_E_MISSING);
}

static void test_card_bad_name(void **state)
{
    (void)state;
    assert_field_fails(0, "bkrurumm", CARD_E_NAME);
    assert_field_fails(0, "BKR", CARD_E_NAME);
    assert_field_fails(0, "BKRURUMMXXXX", CARD_E_NAME);
    assert_field_fails(0, "1BKRURUM", CARD_E_NAME);
    assert_field_fails(0, "", CARD_E_NAME);
}

static void test_card_bad_endpoint(void **state)
{
    (void)state;
    assert_field_fails(1, "udp://x:1", CARD_E_ENDPOINT);
    assert_field_fails(1, "tcp://host", CARD_E_ENDPOINT);
    assert_field_fails(1, "tcp://host:0", CARD_E_ENDPOINT);
    assert_field_fails(1, "tcp://host:65536", CARD_E_ENDPOINT);
    assert_field_fails(1, "tcp://:1", CARD_E_ENDPOINT);
    assert_field_fails(1, "", CARD_E_ENDPOINT);
}

static void test_card_endpoint_with_space(void **state)
{
    (void)state;
    /* In a card a space splits the endpoint: the rest is a word without '='. */
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, "tcp://host :1", good.sign_hex, good.box_hex,
              good.curve);
    assert_card_fails(line, CARD_E_ENDPOINT);
    /* Through card_set_field, which the config file uses, the space itself is refused. */
    peer_card_t card;
    memset(&card, 0, sizeof card);
    assert_int_equal(card_set_field(&card, "endpoint", "tcp://host :1"), CARD_E_ENDPOINT);
}

static void test_card_bad_sign_key(void **state)
{
    (void)state;
    char hex[2 * crypto_sign_PUBLICKEYBYTES + 3];
    /* Wrong lengths. */
    snprintf(hex, sizeof hex, "%.62s", good.sign_hex);
    assert_field_fails(2, hex, CARD_E_SIGN_KEY);
    snprintf(hex, sizeof hex, "%s00", good.sign_hex);
    assert_field_fails(2, hex, CARD_E_SIGN_KEY);
    /* Not hex. */
    snprintf(hex, sizeof hex, "zz%.62s", good.sign_hex + 2);
    assert_field_fails(2, hex, CARD_E_SIGN_KEY);
    /* Hex, but not a valid Ed25519 point: all zero (small order), the identity (y = 1), and a
     * non-canonical encoding (y = 2^255 - 1). */
    assert_field_fails(2, "0000000000000000000000000000000000000000000000000000000000000000",
                       CARD_E_SIGN_KEY);
    assert_field_fails(2, "0100000000000000000000000000000000000000000000000000000000000000",
                       CARD_E_SIGN_KEY);
    assert_field_fails(2, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                       CARD_E_SIGN_KEY);
}

static void test_card_sign_key_upper_case_hex(void **state)
{
    (void)state;
    char upper[sizeof good.sign_hex];
    for (size_t i = 0; i < sizeof upper; i++) {
        upper[i] = (good.sign_hex[i] >= 'a' && good.sign_hex[i] <= 'f') ? good.sign_hex[i] - 32
                                                                        : good.sign_hex[i];
    }
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, GOOD_ENDPOINT, upper, good.box_hex, good.curve);
    peer_card_t card;
    assert_int_equal(card_parse(line, &card), CARD_OK);
    assert_memory_equal(card.sign_public, good.card.sign_public, sizeof card.sign_public);
}

static void test_card_bad_box_key(void **state)
{
    (void)state;
    char hex[2 * crypto_box_PUBLICKEYBYTES + 3];
    snprintf(hex, sizeof hex, "%.62s", good.box_hex);
    assert_field_fails(3, hex, CARD_E_BOX_KEY);
    snprintf(hex, sizeof hex, "%s00", good.box_hex);
    assert_field_fails(3, hex, CARD_E_BOX_KEY);
    snprintf(hex, sizeof hex, "%.63sg", good.box_hex);
    assert_field_fails(3, hex, CARD_E_BOX_KEY);
    assert_field_fails(3, "", CARD_E_BOX_KEY);
}

static void test_card_bad_curve_key(void **state)
{
    (void)state;
    char curve[IDENTITY_CURVE_KEY_CHARS + 2];
    snprintf(curve, sizeof curve, "%.39s", good.curve);
    assert_field_fails(4, curve, CARD_E_CURVE_KEY);
    snprintf(curve, sizeof curve, "%s0", good.curve);
    assert_field_fails(4, curve, CARD_E_CURVE_KEY);
    snprintf(curve, sizeof curve, "~%.39s", good.curve + 1);
    assert_field_fails(4, curve, CARD_E_CURVE_KEY);
    snprintf(curve, sizeof curve, ",%.39s", good.curve + 1);
    assert_field_fails(4, curve, CARD_E_CURVE_KEY);
    assert_field_fails(4, "", CARD_E_CURVE_KEY);
}

/* A valid card padded with extra spaces between words to exactly `total` characters. */
static void padded_card(char *out, size_t out_size, size_t total)
{
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    size_t len = card_encode(&good.card, line, sizeof line);
    assert_true(len > 0 && total >= len && total < out_size);
    size_t prefix = strlen(IDENTITY_CARD_PREFIX);
    memcpy(out, line, prefix);
    memset(out + prefix, ' ', total - len);
    memcpy(out + prefix + (total - len), line + prefix, len - prefix + 1);
    assert_int_equal(strlen(out), total);
}

static void test_card_max_length_ok(void **state)
{
    (void)state;
    char text[2 * CORRIDOR_CARD_LEN_MAX];
    padded_card(text, sizeof text, CORRIDOR_CARD_LEN_MAX);
    peer_card_t card;
    assert_int_equal(card_parse(text, &card), CARD_OK);
    assert_cards_equal(&card, &good.card);
}

static void test_card_too_long(void **state)
{
    (void)state;
    char text[2 * CORRIDOR_CARD_LEN_MAX];
    padded_card(text, sizeof text, CORRIDOR_CARD_LEN_MAX + 1);
    assert_card_fails(text, CARD_E_TOO_LONG);
    padded_card(text, sizeof text, 2 * CORRIDOR_CARD_LEN_MAX - 1);
    assert_card_fails(text, CARD_E_TOO_LONG);
}

static void test_card_embedded_newline(void **state)
{
    (void)state;
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    card_line(line, sizeof line, GOOD_NAME, GOOD_ENDPOINT, good.sign_hex, good.box_hex, good.curve);
    char *space = strchr(line, ' ');
    assert_non_null(space);
    space = strchr(space + 1, ' '); /* between name= and endpoint= */
    assert_non_null(space);
    *space = '\n';
    assert_card_fails(line, CARD_E_TOO_LONG);
    *space = '\r';
    assert_card_fails(line, CARD_E_TOO_LONG);
}

static void test_card_strerror_distinct(void **state)
{
    (void)state;
    for (int a = CARD_OK; a <= CARD_E_CURVE_KEY; a++) {
        assert_non_null(card_strerror((card_err_t)a));
        assert_true(strlen(card_strerror((card_err_t)a)) > 0);
        for (int b = a + 1; b <= CARD_E_CURVE_KEY; b++) {
            assert_string_not_equal(card_strerror((card_err_t)a), card_strerror((card_err_t)b));
        }
    }
}

static void test_card_field_bits(void **state)
{
    (void)state;
    const char *keys[] = {"name", "endpoint", "sign", "box", "curve", "stream"};
    unsigned all = 0;
    for (size_t i = 0; i < 6; i++) {
        unsigned bit = card_field_bit(keys[i]);
        assert_int_not_equal(bit, 0);
        assert_int_equal(bit & (bit - 1), 0); /* one bit */
        assert_int_equal(all & bit, 0);       /* distinct */
        all |= bit;
    }
    assert_int_equal(all, CARD_FIELDS_ALL);
    assert_int_equal(CARD_FIELDS_ALL & ~CARD_FIELDS_REQUIRED, card_field_bit("stream"));
    assert_int_equal(card_field_bit("color"), 0);
    assert_int_equal(card_field_bit(""), 0);
    assert_int_equal(card_field_bit("Name"), 0);
}

/* A card may name where its node takes the stream; without it, the endpoint takes all. */
static void test_card_stream_endpoint(void **state)
{
    (void)state;
    peer_card_t card = good.card;
    assert_string_equal(card_stream_endpoint(&card), GOOD_ENDPOINT);
    snprintf(card.stream, sizeof card.stream, "tcp://127.0.0.1:7002");
    char line[CORRIDOR_CARD_LEN_MAX + 1];
    assert_true(card_encode(&card, line, sizeof line) > 0);
    assert_non_null(strstr(line, " stream=tcp://127.0.0.1:7002 "));
    peer_card_t back;
    assert_int_equal(card_parse(line, &back), CARD_OK);
    assert_cards_equal(&back, &card);
    assert_string_equal(card_stream_endpoint(&back), "tcp://127.0.0.1:7002");
    /* a bad stream= or one given twice is refused */
    char bad[2 * CORRIDOR_CARD_LEN_MAX];
    snprintf(bad, sizeof bad, "%s stream=tcp://nowhere", line);
    assert_card_fails(bad, CARD_E_FIELD);
    card_line(bad, sizeof bad, GOOD_NAME, GOOD_ENDPOINT " stream=udp://x:1", good.sign_hex,
              good.box_hex, good.curve);
    assert_card_fails(bad, CARD_E_ENDPOINT);
    /* the longest card, both endpoints at their limit, fits */
    memset(card.endpoint, 'e', CORRIDOR_ENDPOINT_LEN_MAX);
    memcpy(card.endpoint, "ipc://", 6);
    card.endpoint[CORRIDOR_ENDPOINT_LEN_MAX] = '\0';
    memcpy(card.stream, card.endpoint, sizeof card.stream);
    card.stream[CORRIDOR_ENDPOINT_LEN_MAX - 1] = 's';
    snprintf(card.name, sizeof card.name, "BKRURUMMXXX");
    assert_true(card_encode(&card, line, sizeof line) > 0);
    assert_int_equal(card_parse(line, &back), CARD_OK);
    assert_cards_equal(&back, &card);
}

static void test_endpoint_stream_default(void **state)
{
    (void)state;
    char out[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    assert_true(endpoint_stream_default("tcp://127.0.0.1:7001", out, sizeof out));
    assert_string_equal(out, "tcp://127.0.0.1:7002");
    assert_true(endpoint_stream_default("tcp://[::1]:80", out, sizeof out));
    assert_string_equal(out, "tcp://[::1]:81");
    assert_true(endpoint_stream_default("tcp://host:65534", out, sizeof out));
    assert_string_equal(out, "tcp://host:65535");
    assert_false(endpoint_stream_default("tcp://host:65535", out, sizeof out));
    assert_true(endpoint_stream_default("ipc:///tmp/corridor", out, sizeof out));
    assert_string_equal(out, "ipc:///tmp/corridor-stream");
    char longest[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    memset(longest, 'p', CORRIDOR_ENDPOINT_LEN_MAX);
    memcpy(longest, "ipc://", 6);
    longest[CORRIDOR_ENDPOINT_LEN_MAX] = '\0';
    assert_false(endpoint_stream_default(longest, out, sizeof out));
}

static void test_card_set_field_unknown_key(void **state)
{
    (void)state;
    peer_card_t card;
    memset(&card, 0, sizeof card);
    assert_int_equal(card_set_field(&card, "color", "blue"), CARD_E_FIELD);
}

/* ---- endpoints ---- */

static void test_endpoint_valid_accepts(void **state)
{
    (void)state;
    assert_true(endpoint_valid("tcp://127.0.0.1:7001"));
    assert_true(endpoint_valid("tcp://localhost:1"));
    assert_true(endpoint_valid("tcp://host:65535"));
    assert_true(endpoint_valid("tcp://[::1]:80")); /* the port follows the last ':' */
    assert_true(endpoint_valid("ipc:///tmp/x"));
}

static void test_endpoint_valid_rejects(void **state)
{
    (void)state;
    assert_false(endpoint_valid(""));
    assert_false(endpoint_valid("udp://x:1"));
    assert_false(endpoint_valid("tcp://host"));
    assert_false(endpoint_valid("tcp://host:"));
    assert_false(endpoint_valid("tcp://host:0"));
    assert_false(endpoint_valid("tcp://host:65536"));
    assert_false(endpoint_valid("tcp://host:123456"));
    assert_false(endpoint_valid("tcp://host:12a"));
    assert_false(endpoint_valid("tcp://host:-1"));
    assert_false(endpoint_valid("tcp://:1"));
    assert_false(endpoint_valid("tcp://host :1"));
    assert_false(endpoint_valid("tcp://host:1 "));
    assert_false(endpoint_valid("tcp://ho\tst:1"));
    assert_false(endpoint_valid("tcp://h\x7fst:1"));
    assert_false(endpoint_valid("tcp://h\xc3\xa9st:1"));
    assert_false(endpoint_valid("ipc://"));
    assert_false(endpoint_valid("TCP://host:1"));
}

static void test_endpoint_length_limit(void **state)
{
    (void)state;
    char ep[CORRIDOR_ENDPOINT_LEN_MAX + 2];
    memcpy(ep, "ipc://", 6);
    memset(ep + 6, 'a', CORRIDOR_ENDPOINT_LEN_MAX - 6);
    ep[CORRIDOR_ENDPOINT_LEN_MAX] = '\0';
    assert_true(endpoint_valid(ep));
    ep[CORRIDOR_ENDPOINT_LEN_MAX] = 'a';
    ep[CORRIDOR_ENDPOINT_LEN_MAX + 1] = '\0';
    assert_false(endpoint_valid(ep));
}

int main(void)
{
#define T(f)  cmocka_unit_test(f)
#define TD(f) cmocka_unit_test_setup_teardown(f, test_dir_setup, test_dir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_generate_valid_keys),
        T(test_generate_distinct_keys),
        T(test_generate_sign_verify),
        T(test_key_id_deterministic),
        T(test_key_id_differs_across_keys),
        T(test_key_id_is_domain_separated),
        T(test_destroy_null_safe),
        T(test_destroy_clears_pointer_and_twice),
        TD(test_save_load_round_trip),
        TD(test_save_mode_0600),
        TD(test_save_replaces_existing),
        TD(test_save_into_missing_dir_io),
        TD(test_load_refuses_0640),
        TD(test_load_refuses_0604),
        TD(test_load_refuses_0644),
        TD(test_load_refuses_0620),
        TD(test_load_accepts_0400),
        TD(test_load_refuses_other_owner),
        TD(test_load_missing_io),
        TD(test_load_directory_refused),
        TD(test_load_truncated_format),
        TD(test_load_wrong_magic_format),
        TD(test_load_bad_hex_format),
        TD(test_load_bad_box_hex_format),
        TD(test_load_bad_curve_format),
        TD(test_load_extra_line_format),
        TD(test_load_missing_line_format),
        TD(test_load_empty_format),
        TD(test_load_1024_bytes_ok),
        TD(test_load_1025_bytes_format),
        TD(test_load_symlink_refused),
        T(test_id_strerror_distinct),
        T(test_card_encode_parse_round_trip),
        T(test_card_from_identity),
        T(test_card_encode_small_buffer),
        T(test_card_parse_trailing_newline_and_spaces),
        T(test_card_parse_fields_any_order),
        T(test_card_empty),
        T(test_card_wrong_prefix),
        T(test_card_word_without_equals),
        T(test_card_unknown_key),
        T(test_card_duplicated_key),
        T(test_card_missing_each_field),
        T(test_card_bad_name),
        T(test_card_bad_endpoint),
        T(test_card_endpoint_with_space),
        T(test_card_bad_sign_key),
        T(test_card_sign_key_upper_case_hex),
        T(test_card_bad_box_key),
        T(test_card_bad_curve_key),
        T(test_card_max_length_ok),
        T(test_card_too_long),
        T(test_card_embedded_newline),
        T(test_card_strerror_distinct),
        T(test_card_field_bits),
        T(test_card_set_field_unknown_key),
        T(test_card_stream_endpoint),
        T(test_endpoint_stream_default),
        T(test_endpoint_valid_accepts),
        T(test_endpoint_valid_rejects),
        T(test_endpoint_length_limit),
    };
#undef T
#undef TD
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
