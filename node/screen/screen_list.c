/*
 * The screening list; see screen_list.h.
 *
 * Loading reads the file in blocks with a line buffer of the line limit, so a file without
 * newlines costs no more memory than a short line. Each line is decoded as strict UTF-8
 * (Unicode table 3-7: no overlongs, no surrogates, nothing above U+10FFFF), normalized and
 * folded (normalize) and stored once: the folded texts back to back in one buffer, an array
 * of entries pointing into it, and an open-addressing table (linear probing, at most half
 * full) of indexes into that array. Matching folds each field the same way and probes the
 * table.
 *
 * Folding never more than doubles a text's length: ASCII folds to ASCII, a whitespace run
 * becomes at most one byte, and a character of two or more bytes folds to one of at most
 * four.
 */
#include "screen_list.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wctype.h>

#include <sodium.h>

/* A folded text is at most this long (see the file header). */
#define FOLDED_BYTES_MAX (2 * SCREEN_LIST_LINE_BYTES_MAX + 4)
/* A line as read: the limit and a '\r' of a CRLF ending. */
#define LINE_BUFFER_BYTES (SCREEN_LIST_LINE_BYTES_MAX + 1)
#define READ_BLOCK_BYTES  (64 * 1024)

_Static_assert(SCREEN_LIST_ENTRIES_MAX < UINT32_MAX / 4, "slots hold entry indexes in 32 bits");
_Static_assert(FOLDED_BYTES_MAX <= UINT16_MAX, "entry lengths are 16 bits");

typedef struct {
    uint64_t hash;   /* SipHash-2-4 of the folded text under the list's key */
    size_t offset;   /* where the folded text starts in the list's text buffer */
    uint16_t length; /* its length in bytes (not NUL-terminated) */
} entry_t;

struct screen_list {
    locale_t ctype;                         /* C.UTF-8, for towupper_l and towlower_l */
    uint8_t key[crypto_shorthash_KEYBYTES]; /* the table's hash key, random per list */
    char *text;                             /* every folded entry, back to back */
    size_t text_length;                     /* bytes of text in use */
    size_t text_capacity;                   /* bytes of text allocated */
    entry_t *entries;                       /* the distinct entries, in file order */
    size_t count;                           /* entries in use */
    size_t entries_capacity;                /* entries allocated */
    uint32_t *slots;                        /* the table: entry index + 1, or 0 when empty */
    size_t slots_capacity;                  /* a power of two, at least twice count */
};

typedef enum {
    FOLD_OK = 0,
    FOLD_NOT_UTF8, /* a byte sequence that is not strict UTF-8 */
    FOLD_CONTROL,  /* a control character (C0 but whitespace, DEL, C1 but NEL) */
} fold_err_t;

/* Decodes one strict UTF-8 sequence from s (avail bytes left, at least one); returns its
 * length, or 0 when it is not valid. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    assert(avail >= 1);
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0Fu;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07u;
        lo = c == 0xF0 ? 0x90 : 0x80; /* no overlongs */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        unsigned char b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) {
            return 0;
        }
        v = (v << 6) | (b & 0x3Fu);
    }
    *cp = v;
    return n;
}

/* Encodes a code point (at most U+10FFFF, no surrogate) into out; returns its length. */
static size_t utf8_encode(uint32_t cp, char *out)
{
    assert(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF));
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unicode's White_Space property (PropList.txt), not the locale's iswspace, which leaves out
 * the no-break spaces that names copied from web pages carry. */
static bool is_white_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* Normalizes and folds len bytes of in into out (FOLDED_BYTES_MAX bytes, len at most
 * LINE_BUFFER_BYTES): whitespace trimmed and runs made one space, each character folded. */
static fold_err_t normalize(locale_t ctype, const char *in, size_t len, char *out, size_t *out_len)
{
    assert(len <= LINE_BUFFER_BYTES);
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    bool space_pending = false;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            return FOLD_NOT_UTF8;
        }
        i += n;
        if (is_white_space(cp)) {
            space_pending = o > 0;
            continue;
        }
        if (is_control(cp)) {
            return FOLD_CONTROL;
        }
        if (space_pending) {
            out[o++] = ' ';
            space_pending = false;
        }
        if (cp < 0x80) {
            out[o++] = (char)(cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp);
            continue;
        }
        /* simple case folding: upper then lower also joins forms that towlower alone keeps
         * apart (final sigma, long s, dotless i) */
        wint_t folded = towlower_l(towupper_l((wint_t)cp, ctype), ctype);
        if (folded > 0x10FFFF || (folded >= 0xD800 && folded <= 0xDFFF)) {
            folded = (wint_t)cp;
        }
        assert(o + 4 <= FOLDED_BYTES_MAX);
        o += utf8_encode((uint32_t)folded, out + o);
    }
    assert(o <= FOLDED_BYTES_MAX);
    *out_len = o;
    return FOLD_OK;
}

static uint64_t text_hash(const screen_list_t *l, const char *text, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)text, len, l->key);
    uint64_t h;
    _Static_assert(sizeof h == sizeof out, "SipHash-2-4 gives 64 bits");
    memcpy(&h, out, sizeof h);
    return h;
}

/* The slot holding the entry equal to text, or the empty slot where it would go. */
static size_t table_find(const screen_list_t *l, uint64_t hash, const char *text, size_t len)
{
    assert(l->slots_capacity > 0 && (l->slots_capacity & (l->slots_capacity - 1)) == 0);
    size_t mask = l->slots_capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        uint32_t slot = l->slots[i];
        if (slot == 0) {
            return i;
        }
        const entry_t *e = &l->entries[slot - 1];
        if (e->hash == hash && e->length == len && memcmp(l->text + e->offset, text, len) == 0) {
            return i;
        }
    }
}

/* Doubles the table and places every entry again. -1 when out of memory. */
static int table_grow(screen_list_t *l)
{
    size_t capacity = l->slots_capacity * 2;
    uint32_t *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL) {
        return -1;
    }
    free(l->slots);
    l->slots = slots;
    l->slots_capacity = capacity;
    size_t mask = capacity - 1;
    for (size_t k = 0; k < l->count; k++) {
        size_t i = (size_t)l->entries[k].hash & mask;
        while (slots[i] != 0) {
            i = (i + 1) & mask;
        }
        slots[i] = (uint32_t)(k + 1);
    }
    return 0;
}

/* Adds a folded entry unless it is there already. -1 when out of memory. */
static int list_add(screen_list_t *l, const char *text, size_t len)
{
    assert(len > 0 && len <= FOLDED_BYTES_MAX);
    if ((l->count + 1) * 2 > l->slots_capacity && table_grow(l) != 0) {
        return -1;
    }
    uint64_t hash = text_hash(l, text, len);
    size_t i = table_find(l, hash, text, len);
    if (l->slots[i] != 0) {
        return 0; /* a duplicate */
    }
    if (l->count == l->entries_capacity) {
        size_t capacity = l->entries_capacity * 2;
        entry_t *entries = realloc(l->entries, capacity * sizeof *entries);
        if (entries == NULL) {
            return -1;
        }
        l->entries = entries;
        l->entries_capacity = capacity;
    }
    if (l->text_capacity - l->text_length < len) {
        size_t capacity = l->text_capacity * 2;
        char *text_new = realloc(l->text, capacity);
        if (text_new == NULL) {
            return -1;
        }
        l->text = text_new;
        l->text_capacity = capacity;
    }
    memcpy(l->text + l->text_length, text, len);
    l->entries[l->count] =
        (entry_t){.hash = hash, .offset = l->text_length, .length = (uint16_t)len};
    l->text_length += len;
    l->count++;
    l->slots[i] = (uint32_t)l->count;
    assert(l->count * 2 <= l->slots_capacity);
    return 0;
}

/* Takes one line (its '\n' removed). 0, or -1 with err written. */
static int take_line(screen_list_t *l, const char *path, char *line, size_t len, size_t line_no,
                     size_t *entries_seen, char *err, size_t err_len)
{
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    if (len > SCREEN_LIST_LINE_BYTES_MAX) {
        snprintf(err, err_len, "%s line %zu: longer than %d bytes", path, line_no,
                 SCREEN_LIST_LINE_BYTES_MAX);
        return -1;
    }
    if (line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* a byte order mark */
        len -= 3;
    }
    char folded[FOLDED_BYTES_MAX];
    size_t folded_len = 0;
    switch (normalize(l->ctype, line, len, folded, &folded_len)) {
    case FOLD_OK:
        break;
    case FOLD_NOT_UTF8:
        snprintf(err, err_len, "%s line %zu: not valid UTF-8", path, line_no);
        return -1;
    case FOLD_CONTROL:
        snprintf(err, err_len, "%s line %zu: a control character", path, line_no);
        return -1;
    }
    if (folded_len == 0 || folded[0] == '#') {
        return 0;
    }
    if (*entries_seen >= SCREEN_LIST_ENTRIES_MAX) {
        snprintf(err, err_len, "%s line %zu: more than %d entries", path, line_no,
                 SCREEN_LIST_ENTRIES_MAX);
        return -1;
    }
    (*entries_seen)++;
    if (list_add(l, folded, folded_len) != 0) {
        snprintf(err, err_len, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

/* Reads the lines of fd into l. 0, or -1 with err written. */
static int read_lines(screen_list_t *l, const char *path, int fd, char *err, size_t err_len)
{
    char line[LINE_BUFFER_BYTES];
    size_t line_len = 0;
    bool line_long = false; /* the current line went past the buffer */
    size_t line_no = 1;
    size_t entries_seen = 0;
    char *block = malloc(READ_BLOCK_BYTES);
    if (block == NULL) {
        snprintf(err, err_len, "%s: out of memory", path);
        return -1;
    }
    int rc = -1;
    for (;;) {
        ssize_t got = read(fd, block, READ_BLOCK_BYTES);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
            goto cleanup;
        }
        if (got == 0) {
            break;
        }
        const char *p = block;
        const char *end = block + got;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t piece = (size_t)((nl != NULL ? nl : end) - p);
            if (piece > sizeof line - line_len) {
                line_long = true;
            } else {
                memcpy(line + line_len, p, piece);
                line_len += piece;
            }
            if (line_long) {
                snprintf(err, err_len, "%s line %zu: longer than %d bytes", path, line_no,
                         SCREEN_LIST_LINE_BYTES_MAX);
                goto cleanup;
            }
            if (nl == NULL) {
                break;
            }
            if (take_line(l, path, line, line_len, line_no, &entries_seen, err, err_len) != 0) {
                goto cleanup;
            }
            line_len = 0;
            line_no++;
            p = nl + 1;
        }
    }
    if (line_len > 0 &&
        take_line(l, path, line, line_len, line_no, &entries_seen, err, err_len) != 0) {
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(block);
    return rc;
}

screen_list_t *screen_list_load(const char *path, char *err, size_t err_len)
{
    assert(path != NULL && err != NULL && err_len > 0);
    err[0] = '\0';
    int fd = -1;
    screen_list_t *l = NULL;
    if (sodium_init() < 0) {
        snprintf(err, err_len, "libsodium cannot start");
        goto fail;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, err_len, "%s: out of memory", path);
        goto fail;
    }
    l->ctype = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (l->ctype == (locale_t)0) {
        snprintf(err, err_len, "no C.UTF-8 locale: %s", strerror(errno));
        goto fail;
    }
    randombytes_buf(l->key, sizeof l->key);
    l->entries_capacity = 64;
    l->text_capacity = 4096;
    l->slots_capacity = 128;
    l->entries = malloc(l->entries_capacity * sizeof *l->entries);
    l->text = malloc(l->text_capacity);
    l->slots = calloc(l->slots_capacity, sizeof *l->slots);
    if (l->entries == NULL || l->text == NULL || l->slots == NULL) {
        snprintf(err, err_len, "%s: out of memory", path);
        goto fail;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (read_lines(l, path, fd, err, err_len) != 0) {
        goto fail;
    }
    close(fd);
    assert(l->count <= SCREEN_LIST_ENTRIES_MAX && l->count * 2 <= l->slots_capacity);
    return l;
fail:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    screen_list_destroy(&l);
    return NULL;
}

/* Whether one field, normalized, is on the list. */
static bool field_listed(const screen_list_t *l, const char *field, size_t field_size)
{
    size_t len = strnlen(field, field_size);
    if (len == 0 || len == field_size || len > LINE_BUFFER_BYTES) {
        return false; /* empty, not terminated, or longer than any entry can be */
    }
    char folded[FOLDED_BYTES_MAX];
    size_t folded_len = 0;
    if (normalize(l->ctype, field, len, folded, &folded_len) != FOLD_OK || folded_len == 0) {
        return false;
    }
    uint64_t hash = text_hash(l, folded, folded_len);
    return l->slots[table_find(l, hash, folded, folded_len)] != 0;
}

bool screen_list_match(const screen_list_t *l, const settlement_t *s, const char **matched_field)
{
    assert(l != NULL && s != NULL);
    const struct {
        const char *name;
        const char *value;
        size_t size;
    } fields[] = {
        {"debtor_name", s->debtor_name, sizeof s->debtor_name},
        {"debtor_account", s->debtor_account, sizeof s->debtor_account},
        {"creditor_name", s->creditor_name, sizeof s->creditor_name},
        {"creditor_account", s->creditor_account, sizeof s->creditor_account},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (field_listed(l, fields[i].value, fields[i].size)) {
            if (matched_field != NULL) {
                *matched_field = fields[i].name;
            }
            return true;
        }
    }
    return false;
}

size_t screen_list_count(const screen_list_t *l)
{
    assert(l != NULL);
    return l->count;
}

void screen_list_destroy(screen_list_t **l)
{
    assert(l != NULL);
    screen_list_t *self = *l;
    if (self == NULL) {
        return;
    }
    if (self->ctype != (locale_t)0) {
        freelocale(self->ctype);
    }
    free(self->slots);
    free(self->entries);
    free(self->text);
    free(self);
    *l = NULL;
}
