/*
 * Inside the ledger layer only: the SQLite connection under a ledger, for the modules of this
 * layer that read it with SQL of their own (statement.c, books.c). The build gives this folder
 * to the ledger library alone (CMakeLists.txt), so no layer above can run SQL on the books.
 */
#ifndef CORRIDOR_LEDGER_DB_H
#define CORRIDOR_LEDGER_DB_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "ledger.h"

/* The connection. */
sqlite3 *ledger_db(ledger_t *l);

/* The schema version of the ledger's file (a reader may hold an older one than it writes). */
int ledger_schema_version(const ledger_t *l);

/* Records SQLite's last error on the connection as the ledger's last error, prefixed with
 * `what`; returns LEDGER_E_STORAGE. */
ledger_err_t ledger_read_failed(ledger_t *l, const char *what);

/* Text column `col` of a row, "" when NULL. */
const char *ledger_column_text(sqlite3_stmt *stmt, int col);

/* A malloc'd copy of blob column `col` of a row (NULL and *len 0 when empty or out of memory). */
uint8_t *ledger_copy_blob(sqlite3_stmt *stmt, int col, size_t *len);

/* For the ledger's own modules that write (cycles.c): the open write transaction (or why not),
 * a row of no settlement appended with its effect checked first and applied, the error text,
 * the caller's clock. */
ledger_err_t ledger_write_begin(ledger_t *l);
ledger_err_t ledger_append_free_row(ledger_t *l, const char *peer, entry_kind_t kind,
                                    const char *uetr, const char *currency, int64_t amount_minor,
                                    const char *reason, const uint8_t *evidence,
                                    size_t evidence_len);
ledger_err_t ledger_fail(ledger_t *l, ledger_err_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t ledger_clock(const ledger_t *l);

#endif
