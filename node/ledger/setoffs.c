/* The records of multilateral set-offs (proto/PROTOCOL.md 3.12.6); see setoffs.h. */
#include "setoffs.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_db.h"

#define SETOFF_COLUMNS                                                                             \
    "setoff_id, terms, terms_signature, position, currency, amount_minor, state, reason,"          \
    " our_vote, votes, verdict, relay_seq, decision_seq, created_ms, decided_ms, deadline_ms,"     \
    " asked_by"

const char *setoff_state_name(setoff_state_t state)
{
    switch (state) {
    case SETOFF_VOTING:
        return "voting";
    case SETOFF_COMMITTED:
        return "committed";
    case SETOFF_ABORTED:
        return "aborted";
    case SETOFF_ASKED:
        return "asked";
    }
    return "unknown";
}

void ledger_setoff_release(ledger_setoff_t *rec)
{
    free(rec->terms);
    free(rec->our_vote);
    free(rec->votes);
    free(rec->verdict);
    rec->terms = rec->our_vote = rec->votes = rec->verdict = NULL;
    rec->terms_len = rec->our_vote_len = rec->votes_len = rec->verdict_len = 0;
}

/* Reads one row of SETOFF_COLUMNS: false when it is damaged or out of memory. */
static bool read_row(sqlite3_stmt *stmt, ledger_setoff_t *rec)
{
    memset(rec, 0, sizeof *rec);
    snprintf(rec->setoff_id, sizeof rec->setoff_id, "%s", ledger_column_text(stmt, 0));
    rec->terms = ledger_copy_blob(stmt, 1, &rec->terms_len);
    bool ok = rec->terms != NULL && sqlite3_column_bytes(stmt, 2) == 64;
    if (ok) {
        memcpy(rec->terms_signature, sqlite3_column_blob(stmt, 2), 64);
    }
    rec->position = sqlite3_column_int(stmt, 3);
    snprintf(rec->currency, sizeof rec->currency, "%s", ledger_column_text(stmt, 4));
    rec->amount_minor = sqlite3_column_int64(stmt, 5);
    int state = sqlite3_column_int(stmt, 6);
    ok = ok && state >= SETOFF_VOTING && state <= SETOFF_ASKED;
    rec->state = (setoff_state_t)state;
    snprintf(rec->reason, sizeof rec->reason, "%s", ledger_column_text(stmt, 7));
    rec->our_vote = ledger_copy_blob(stmt, 8, &rec->our_vote_len);
    rec->votes = ledger_copy_blob(stmt, 9, &rec->votes_len);
    rec->verdict = ledger_copy_blob(stmt, 10, &rec->verdict_len);
    int64_t relay = sqlite3_column_int64(stmt, 11), decision = sqlite3_column_int64(stmt, 12);
    ok = ok && relay >= 0 && decision >= 0;
    rec->relay_seq = (uint64_t)relay;
    rec->decision_seq = (uint64_t)decision;
    rec->created_ms = sqlite3_column_int64(stmt, 13);
    rec->decided_ms = sqlite3_column_int64(stmt, 14);
    rec->deadline_ms = sqlite3_column_int64(stmt, 15);
    snprintf(rec->asked_by, sizeof rec->asked_by, "%s", ledger_column_text(stmt, 16));
    if (!ok) {
        ledger_setoff_release(rec);
    }
    return ok;
}

ledger_err_t ledger_setoff_get(ledger_t *l, const char *setoff_id, ledger_setoff_t *out,
                               bool *found)
{
    assert(setoff_id != NULL && out != NULL && found != NULL);
    *found = false;
    memset(out, 0, sizeof *out);
    if (ledger_schema_version(l) < 12) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger_db(l),
                           "SELECT " SETOFF_COLUMNS " FROM setoffs WHERE setoff_id = ?1", -1, &stmt,
                           NULL) != SQLITE_OK) {
        return ledger_read_failed(l, "read a set-off");
    }
    sqlite3_bind_text(stmt, 1, setoff_id, -1, SQLITE_STATIC);
    ledger_err_t rc = LEDGER_OK;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *found = true;
        if (!read_row(stmt, out)) {
            rc = ledger_fail(l, LEDGER_E_CORRUPT, "damaged set-off record %s", setoff_id);
        }
    } else if (step != SQLITE_DONE) {
        rc = ledger_read_failed(l, "read a set-off");
    }
    sqlite3_finalize(stmt);
    return rc;
}

static void bind_blob_or_null(sqlite3_stmt *stmt, int col, const uint8_t *p, size_t len)
{
    if (p == NULL) {
        sqlite3_bind_null(stmt, col);
    } else {
        sqlite3_bind_blob(stmt, col, p, (int)len, SQLITE_STATIC);
    }
}

ledger_err_t ledger_setoff_put(ledger_t *l, const ledger_setoff_t *rec)
{
    assert(rec != NULL && rec->terms != NULL);
    ledger_err_t rc = ledger_write_begin(l);
    if (rc != LEDGER_OK) {
        return rc;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger_db(l),
                           "INSERT OR REPLACE INTO setoffs(" SETOFF_COLUMNS
                           ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return ledger_read_failed(l, "write a set-off");
    }
    sqlite3_bind_text(stmt, 1, rec->setoff_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, rec->terms, (int)rec->terms_len, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 3, rec->terms_signature, 64, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, rec->position);
    sqlite3_bind_text(stmt, 5, rec->currency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, rec->amount_minor);
    sqlite3_bind_int(stmt, 7, (int)rec->state);
    sqlite3_bind_text(stmt, 8, rec->reason, -1, SQLITE_STATIC);
    bind_blob_or_null(stmt, 9, rec->our_vote, rec->our_vote_len);
    bind_blob_or_null(stmt, 10, rec->votes, rec->votes_len);
    bind_blob_or_null(stmt, 11, rec->verdict, rec->verdict_len);
    sqlite3_bind_int64(stmt, 12, (int64_t)rec->relay_seq);
    sqlite3_bind_int64(stmt, 13, (int64_t)rec->decision_seq);
    sqlite3_bind_int64(stmt, 14, rec->created_ms);
    sqlite3_bind_int64(stmt, 15, rec->decided_ms);
    sqlite3_bind_int64(stmt, 16, rec->deadline_ms);
    sqlite3_bind_text(stmt, 17, rec->asked_by, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : ledger_read_failed(l, "write a set-off");
}

ledger_err_t ledger_setoff_each(ledger_t *l, bool (*fn)(const ledger_setoff_t *rec, void *arg),
                                void *arg)
{
    if (ledger_schema_version(l) < 12) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger_db(l),
                           "SELECT " SETOFF_COLUMNS " FROM setoffs ORDER BY created_ms, setoff_id",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return ledger_read_failed(l, "list set-offs");
    }
    ledger_err_t rc = LEDGER_OK;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ledger_setoff_t rec;
        if (!read_row(stmt, &rec)) {
            rc = ledger_fail(l, LEDGER_E_CORRUPT, "damaged set-off record");
            break;
        }
        bool more = fn(&rec, arg);
        ledger_setoff_release(&rec);
        if (!more) {
            break;
        }
    }
    if (rc == LEDGER_OK && step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = ledger_read_failed(l, "list set-offs");
    }
    sqlite3_finalize(stmt);
    return rc;
}

ledger_err_t ledger_setoff_due(ledger_t *l, int64_t wall_ms, char (*ids)[CORRIDOR_UETR_LEN + 1],
                               size_t max, size_t *n, int64_t *next)
{
    *n = 0;
    *next = INT64_MAX;
    if (ledger_schema_version(l) < 12) {
        return LEDGER_OK;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger_db(l),
                           "SELECT setoff_id, deadline_ms FROM setoffs WHERE state = 0 AND"
                           " position = 0 ORDER BY deadline_ms LIMIT ?1",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return ledger_read_failed(l, "find set-offs due");
    }
    sqlite3_bind_int64(stmt, 1, (int64_t)max + 1);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t deadline = sqlite3_column_int64(stmt, 1);
        if (deadline > wall_ms || *n == max) {
            *next = deadline;
            break;
        }
        snprintf(ids[*n], CORRIDOR_UETR_LEN + 1, "%s", ledger_column_text(stmt, 0));
        (*n)++;
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_OK
                                                     : ledger_read_failed(l, "find set-offs due");
}

ledger_err_t ledger_setoff_open_legs(ledger_t *l, const char *peer, int64_t *count)
{
    *count = 0;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger_db(l),
                           "SELECT count(*) FROM settlements WHERE peer = ?1 AND fx_leg = 3"
                           " AND status = 0",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return ledger_read_failed(l, "count open set-off legs");
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *count = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW ? LEDGER_OK : ledger_read_failed(l, "count open set-off legs");
}
