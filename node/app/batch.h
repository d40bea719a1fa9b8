/*
 * Reading a batch of settlements for `corridor send --batch`: CSV (RFC 4180) or JSON Lines.
 *
 * CSV: a header naming the columns (to, amount, currency required; uetr, debtor, creditor,
 * remittance optional), then one settlement per record. A field may be quoted ("...") and then
 * hold commas, line breaks and quotes written twice (""). JSON Lines (a file named *.jsonl):
 * one object per line with those keys; values are strings (amount may be an integer).
 * Blank lines are skipped. Anything else is refused with the line it starts on: an unknown
 * column or key, a record with more or fewer fields than the header, a quote inside an
 * unquoted field, a quoted field never closed, a NUL byte, a record over BATCH_RECORD_MAX.
 * Nothing here checks the values themselves (the caller does, with the line number).
 */
#ifndef CORRIDOR_BATCH_H
#define CORRIDOR_BATCH_H

#include <stddef.h>
#include <stdio.h>

#define BATCH_RECORD_MAX 4096 /* bytes of one record (all its fields) */

/* One settlement as a batch gives it; NULL where a field is absent or empty. */
typedef struct {
    const char *to, *amount, *currency, *uetr, *debtor, *creditor, *remittance;
} batch_row_t;

typedef enum {
    BATCH_FORMAT_CSV,
    BATCH_FORMAT_JSONL,
} batch_format_t;

typedef enum {
    BATCH_OK = 0,
    BATCH_E_MALFORMED, /* err says what and where */
    BATCH_E_READ,      /* the file could not be read */
    BATCH_E_STOPPED,   /* the row callback stopped the reading */
} batch_err_t;

const char *batch_strerror(batch_err_t err);

/* The format a file name implies: .jsonl is JSON Lines, anything else CSV. */
batch_format_t batch_format_of(const char *path);

/* Called with each settlement and the line its record starts on; non-zero stops the read.
 * The row's strings live until the callback returns. */
typedef int (*batch_row_fn)(void *ctx, size_t line, const batch_row_t *row);

/* Reads every record of f; err receives "line N: what" for BATCH_E_MALFORMED. */
batch_err_t batch_read(FILE *f, batch_format_t format, batch_row_fn on_row, void *ctx, char *err,
                       size_t err_size);

#endif
