/* Reading a batch of settlements; see batch.h. */
#include "batch.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

enum { COLUMNS = 7, FIELDS_MAX = 16 };

static const char *const column_names[COLUMNS] = {"to",     "amount",   "currency",  "uetr",
                                                  "debtor", "creditor", "remittance"};

const char *batch_strerror(batch_err_t err)
{
    switch (err) {
    case BATCH_OK:
        return "ok";
    case BATCH_E_MALFORMED:
        return "malformed batch";
    case BATCH_E_READ:
        return "cannot read the batch";
    case BATCH_E_STOPPED:
        return "a settlement of the batch was refused";
    }
    return "unknown batch error";
}

batch_format_t batch_format_of(const char *path)
{
    size_t n = strlen(path);
    return n >= 6 && strcmp(path + n - 6, ".jsonl") == 0 ? BATCH_FORMAT_JSONL : BATCH_FORMAT_CSV;
}

static batch_err_t malformed(char *err, size_t err_size, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static batch_err_t malformed(char *err, size_t err_size, size_t line, const char *fmt, ...)
{
    int n = snprintf(err, err_size, "line %zu: ", line);
    if (n > 0 && (size_t)n < err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return BATCH_E_MALFORMED;
}

static int column_index(const char *name)
{
    for (int i = 0; i < COLUMNS; i++) {
        if (strcmp(name, column_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* A row from values by column (empty strings are absent). */
static batch_row_t row_of(const char *const v[COLUMNS])
{
    const char *x[COLUMNS];
    for (int i = 0; i < COLUMNS; i++) {
        x[i] = v[i] != NULL && v[i][0] != '\0' ? v[i] : NULL;
    }
    return (batch_row_t){x[0], x[1], x[2], x[3], x[4], x[5], x[6]};
}

/* ---- CSV (RFC 4180) ------------------------------------------------------------------ */

typedef struct {
    FILE *f;
    size_t line;                /* the line being read */
    char buf[BATCH_RECORD_MAX]; /* the record's fields, each NUL-terminated */
    size_t used;
    char *fields[FIELDS_MAX];
    size_t count;
} csv_t;

static bool csv_put(csv_t *c, char ch)
{
    if (c->used == sizeof c->buf) {
        return false;
    }
    c->buf[c->used++] = ch;
    return true;
}

/* Reads one record. BATCH_OK with c->count fields (0: end of file). */
static batch_err_t csv_record(csv_t *c, size_t *start_line, char *err, size_t err_size)
{
    c->used = 0;
    c->count = 0;
    *start_line = c->line;
    int ch = getc(c->f);
    if (ch == EOF) {
        return ferror(c->f) ? BATCH_E_READ : BATCH_OK;
    }
    for (;;) { /* one field per turn */
        if (c->count == FIELDS_MAX) {
            return malformed(err, err_size, *start_line, "more than %d fields", FIELDS_MAX);
        }
        c->fields[c->count++] = c->buf + c->used;
        bool quoted = ch == '"';
        if (quoted) {
            for (;;) {
                ch = getc(c->f);
                if (ch == EOF) {
                    return ferror(c->f) ? BATCH_E_READ
                                        : malformed(err, err_size, *start_line,
                                                    "a quoted field is never closed");
                }
                if (ch == '"') {
                    ch = getc(c->f);
                    if (ch != '"') {
                        break; /* the closing quote */
                    }
                } else if (ch == '\n') {
                    c->line++;
                }
                if (ch == '\0') {
                    return malformed(err, err_size, c->line, "a NUL byte");
                }
                if (!csv_put(c, (char)ch)) {
                    return malformed(err, err_size, *start_line, "record longer than %d bytes",
                                     BATCH_RECORD_MAX);
                }
            }
            if (ch == '\r') {
                ch = getc(c->f);
            }
            if (ch != ',' && ch != '\n' && ch != EOF) {
                return malformed(err, err_size, c->line, "text after a closing quote");
            }
        } else {
            while (ch != ',' && ch != '\n' && ch != EOF) {
                if (ch == '\r') {
                    int next = getc(c->f);
                    if (next == '\n' || next == EOF) {
                        ch = next;
                        break;
                    }
                    ungetc(next, c->f);
                }
                if (ch == '"') {
                    return malformed(err, err_size, c->line,
                                     "a quote inside an unquoted field (quote the whole field)");
                }
                if (ch == '\0') {
                    return malformed(err, err_size, c->line, "a NUL byte");
                }
                if (!csv_put(c, (char)ch)) {
                    return malformed(err, err_size, *start_line, "record longer than %d bytes",
                                     BATCH_RECORD_MAX);
                }
                ch = getc(c->f);
            }
        }
        if (!csv_put(c, '\0')) {
            return malformed(err, err_size, *start_line, "record longer than %d bytes",
                             BATCH_RECORD_MAX);
        }
        if (ch != ',') {
            if (ch == '\n') {
                c->line++;
            }
            return ferror(c->f) ? BATCH_E_READ : BATCH_OK;
        }
        ch = getc(c->f);
    }
}

static batch_err_t read_csv(FILE *f, batch_row_fn on_row, void *ctx, char *err, size_t err_size)
{
    static csv_t c; /* 4 KiB of record: not on the stack */
    memset(&c, 0, sizeof c);
    c.f = f;
    c.line = 1;
    int column_of[FIELDS_MAX]; /* which column each field is */
    size_t header_fields = 0;
    batch_err_t rc;
    size_t line = 0;
    while ((rc = csv_record(&c, &line, err, err_size)) == BATCH_OK && c.count > 0) {
        if (c.count == 1 && c.fields[0][0] == '\0') {
            continue; /* a blank line */
        }
        if (header_fields == 0) {
            bool seen[COLUMNS] = {false};
            for (size_t i = 0; i < c.count; i++) {
                column_of[i] = column_index(c.fields[i]);
                if (column_of[i] < 0) {
                    return malformed(err, err_size, line,
                                     "unknown column '%.40s' (to, amount, currency, uetr, debtor, "
                                     "creditor, remittance)",
                                     c.fields[i]);
                }
                if (seen[column_of[i]]) {
                    return malformed(err, err_size, line, "column '%s' twice", c.fields[i]);
                }
                seen[column_of[i]] = true;
            }
            if (!seen[0] || !seen[1] || !seen[2]) {
                return malformed(err, err_size, line,
                                 "the header must name at least to,amount,currency");
            }
            header_fields = c.count;
            continue;
        }
        if (c.count != header_fields) {
            return malformed(err, err_size, line, "%zu fields, the header has %zu", c.count,
                             header_fields);
        }
        const char *v[COLUMNS] = {NULL};
        for (size_t i = 0; i < c.count; i++) {
            v[column_of[i]] = c.fields[i];
        }
        batch_row_t row = row_of(v);
        if (on_row(ctx, line, &row) != 0) {
            return BATCH_E_STOPPED;
        }
    }
    if (rc == BATCH_OK && header_fields == 0) {
        return malformed(err, err_size, 1, "no header (to,amount,currency,...)");
    }
    return rc;
}

/* ---- JSON Lines ----------------------------------------------------------------------- */

static batch_err_t read_jsonl(FILE *f, batch_row_fn on_row, void *ctx, char *err, size_t err_size)
{
    static char text[BATCH_RECORD_MAX + 1];
    size_t line = 0;
    int ch = getc(f);
    while (ch != EOF) {
        line++;
        size_t len = 0;
        for (; ch != EOF && ch != '\n'; ch = getc(f)) {
            if (ch == '\0') {
                return malformed(err, err_size, line, "a NUL byte");
            }
            if (len == BATCH_RECORD_MAX) {
                return malformed(err, err_size, line, "line longer than %d bytes",
                                 BATCH_RECORD_MAX);
            }
            text[len++] = (char)ch;
        }
        text[len] = '\0';
        if (ch == '\n') {
            ch = getc(f);
        }
        if (strspn(text, " \t\r") == len) {
            continue;
        }
        json_error_t jerr;
        json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(obj)) {
            json_decref(obj);
            return malformed(err, err_size, line, "%s",
                             obj == NULL ? jerr.text : "not a JSON object");
        }
        const char *v[COLUMNS] = {NULL};
        char amount[24];
        const char *key;
        json_t *value;
        batch_err_t rc = BATCH_OK;
        json_object_foreach(obj, key, value)
        {
            int col = column_index(key);
            if (col < 0) {
                rc = malformed(err, err_size, line, "unknown key '%.40s'", key);
                break;
            }
            if (col == 1 && json_is_integer(value)) {
                snprintf(amount, sizeof amount, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
                v[col] = amount;
            } else if (json_is_string(value) &&
                       strlen(json_string_value(value)) == json_string_length(value)) {
                v[col] = json_string_value(value);
            } else {
                rc = malformed(err, err_size, line, "'%s' must be a string%s", key,
                               col == 1 ? " (such as \"125.50\") or an integer" : "");
                break;
            }
        }
        batch_row_t row = row_of(v);
        if (rc == BATCH_OK && on_row(ctx, line, &row) != 0) {
            rc = BATCH_E_STOPPED;
        }
        json_decref(obj);
        if (rc != BATCH_OK) {
            return rc;
        }
    }
    return ferror(f) ? BATCH_E_READ : BATCH_OK;
}

batch_err_t batch_read(FILE *f, batch_format_t format, batch_row_fn on_row, void *ctx, char *err,
                       size_t err_size)
{
    assert(f != NULL && on_row != NULL && err != NULL && err_size > 0);
    err[0] = '\0';
    return format == BATCH_FORMAT_JSONL ? read_jsonl(f, on_row, ctx, err, err_size)
                                        : read_csv(f, on_row, ctx, err, err_size);
}
