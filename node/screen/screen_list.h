/*
 * A screening list (sanctions, fraud): the names and accounts an incoming payment's parties
 * must not have, loaded from a file the operator keeps, one entry a line.
 *
 * Entries and the settlement's fields are compared after the same normalization: leading and
 * trailing whitespace dropped, every inner run of whitespace (Unicode White_Space) made one
 * space, and every character case-folded (Unicode simple folding, by the C.UTF-8 locale's
 * towupper then towlower), so "ООО  Ромашка" on the list stops "ооо ромашка" in a payment.
 * Whole fields are compared, never substrings: a list entry "Pars" does not stop "Pars
 * Trading". There is no other normalization (no Unicode NFC, no transliteration): the list
 * should carry each spelling it means to stop.
 *
 * The folded entries live in one hash table (SipHash-2-4 under a random key, so a peer that
 * knows the list cannot choose names that all probe one cluster): a lookup is a few
 * comparisons whatever the list's size.
 */
#ifndef CORRIDOR_SCREEN_LIST_H
#define CORRIDOR_SCREEN_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "settlement.h"

/* A list file's limits: entries (after blanks and comments are dropped, duplicates counted),
 * and bytes a line, its line ending not counted. Checked while reading, before allocating. */
#define SCREEN_LIST_ENTRIES_MAX    1000000
#define SCREEN_LIST_LINE_BYTES_MAX 300

typedef struct screen_list screen_list_t;

/* Reads the list at `path`: UTF-8 text, one name or account a line; blank lines and lines
 * whose first non-blank character is '#' are ignored; a UTF-8 byte order mark at the start
 * is skipped. NULL on failure, with a sentence in err (the line number for a bad line): a
 * line that is not UTF-8, holds a control character or is longer than
 * SCREEN_LIST_LINE_BYTES_MAX bytes, more than SCREEN_LIST_ENTRIES_MAX entries, an unreadable
 * file, no C.UTF-8 locale, or no memory. Calls sodium_init (a no-op when already done). */
screen_list_t *screen_list_load(const char *path, char *err, size_t err_len);

/* Whether the settlement's debtor name, debtor account, creditor name or creditor account,
 * normalized as the entries are, equals an entry. Empty fields (also after normalization)
 * never match, nor does a field that is not valid UTF-8. When it matches and matched_field
 * is not NULL, *matched_field is the field's name ("debtor_name", "debtor_account",
 * "creditor_name" or "creditor_account"), a static string. */
bool screen_list_match(const screen_list_t *l, const settlement_t *s, const char **matched_field);

/* Distinct entries on the list (an entry given twice counts once). */
size_t screen_list_count(const screen_list_t *l);

/* Frees the list and sets *l to NULL; safe on NULL and twice. */
void screen_list_destroy(screen_list_t **l);

#endif
