/* Statements: range fingerprints, entries and evidence of a channel; see statement.h. */
#include "statement.h"
#include "ledger_db.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cycles.h"
#include "validate.h"

bool statement_prefix_valid(const char *prefix)
{
    size_t len = strnlen(prefix, STATEMENT_PREFIX_MAX + 1);
    if (len > STATEMENT_PREFIX_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = prefix[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* The UETR bounds of a prefix: lo <= uetr < hi. "" spans everything ("g" sorts after hex). */
static void prefix_bounds(const char *prefix, char lo[static STATEMENT_PREFIX_MAX + 2],
                          char hi[static STATEMENT_PREFIX_MAX + 2])
{
    size_t len = strlen(prefix);
    assert(len <= STATEMENT_PREFIX_MAX);
    memcpy(lo, prefix, len + 1);
    if (len == 0) {
        strcpy(hi, "g");
        return;
    }
    memcpy(hi, prefix, len + 1);
    hi[len - 1] = (char)(hi[len - 1] + 1); /* '9' + 1 = ':' sorts before 'a': still a bound */
}

static void read_fp(sqlite3_stmt *stmt, int sum_col, int count_col, range_fp_t *out)
{
    memset(out->sum, 0, sizeof out->sum);
    if (sqlite3_column_bytes(stmt, sum_col) == DIGEST_BYTES) {
        memcpy(out->sum, sqlite3_column_blob(stmt, sum_col), DIGEST_BYTES);
    }
    out->count = (uint64_t)sqlite3_column_int64(stmt, count_col);
}

ledger_err_t statement_fingerprint(ledger_t *l, const char *peer, const char *prefix,
                                   range_fp_t *out)
{
    assert(l != NULL && peer != NULL && out != NULL && statement_prefix_valid(prefix));
    memset(out, 0, sizeof *out);
    strcpy(out->prefix, prefix);
    sqlite3_stmt *stmt = NULL;
    char lo[STATEMENT_PREFIX_MAX + 2], hi[STATEMENT_PREFIX_MAX + 2];
    prefix_bounds(prefix, lo, hi);
    const char *sql = prefix[0] == '\0'
                          ? "SELECT digest, entries FROM channels WHERE peer = ?1"
                          : "SELECT corridor_sum256(canon_hash), count(*) FROM settlements"
                            " WHERE peer = ?1 AND uetr >= ?2 AND uetr < ?3";
    if (sqlite3_prepare_v2(ledger_db(l), sql, -1, &stmt, NULL) != SQLITE_OK) {
        return LEDGER_E_STORAGE;
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    if (prefix[0] != '\0') {
        sqlite3_bind_text(stmt, 2, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, hi, -1, SQLITE_STATIC);
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        read_fp(stmt, 0, 1, out);
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t statement_children(ledger_t *l, const char *peer, const char *prefix,
                                range_fp_t out[static 16])
{
    assert(l != NULL && peer != NULL && statement_prefix_valid(prefix));
    size_t len = strlen(prefix);
    assert(len < STATEMENT_PREFIX_MAX);
    static const char hex[] = "0123456789abcdef";
    /* one index range per digit: the (peer, uetr, canon_hash) index covers it, in order, with
     * no sorting (a GROUP BY over the whole range would build a temporary tree) */
    sqlite3_stmt *stmt = NULL;
    const char *sql = "SELECT corridor_sum256(canon_hash), count(*) FROM settlements"
                      " WHERE peer = ?1 AND uetr >= ?2 AND uetr < ?3";
    if (sqlite3_prepare_v2(ledger_db(l), sql, -1, &stmt, NULL) != SQLITE_OK) {
        return LEDGER_E_STORAGE;
    }
    ledger_err_t rc = LEDGER_OK;
    for (int i = 0; rc == LEDGER_OK && i < 16; i++) {
        memset(&out[i], 0, sizeof out[i]);
        memcpy(out[i].prefix, prefix, len);
        out[i].prefix[len] = hex[i];
        out[i].prefix[len + 1] = '\0';
        char lo[STATEMENT_PREFIX_MAX + 2], hi[STATEMENT_PREFIX_MAX + 2];
        prefix_bounds(out[i].prefix, lo, hi);
        sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, hi, -1, SQLITE_STATIC);
        int step = sqlite3_step(stmt);
        if (step == SQLITE_ROW) {
            read_fp(stmt, 0, 1, &out[i]);
        } else {
            rc = LEDGER_E_STORAGE;
        }
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return rc;
}

ledger_err_t statement_entries(ledger_t *l, const char *peer, const char *prefix,
                               bool (*fn)(const statement_entry_t *e, void *arg), void *arg)
{
    assert(l != NULL && peer != NULL && fn != NULL && statement_prefix_valid(prefix));
    char lo[STATEMENT_PREFIX_MAX + 2], hi[STATEMENT_PREFIX_MAX + 2];
    prefix_bounds(prefix, lo, hi);
    sqlite3_stmt *stmt = NULL;
    /* a ledger of schema 8 or older (a reader's) holds no returns, of schema 9 no trades */
    int schema = ledger_schema_version(l);
    const char *sql =
        schema >= 10  ? "SELECT uetr, direction, amount_minor, currency, status, reason,"
                        " original_uetr, return_reason, fx_id, fx_leg"
                        " FROM settlements WHERE peer = ?1 AND uetr >= ?2 AND uetr < ?3"
                        " ORDER BY uetr"
        : schema >= 9 ? "SELECT uetr, direction, amount_minor, currency, status, reason,"
                        " original_uetr, return_reason, '', 0"
                        " FROM settlements WHERE peer = ?1 AND uetr >= ?2 AND uetr < ?3"
                        " ORDER BY uetr"
                      : "SELECT uetr, direction, amount_minor, currency, status, reason, '', '',"
                        " '', 0"
                        " FROM settlements WHERE peer = ?1 AND uetr >= ?2 AND uetr < ?3"
                        " ORDER BY uetr";
    if (sqlite3_prepare_v2(ledger_db(l), sql, -1, &stmt, NULL) != SQLITE_OK) {
        return LEDGER_E_STORAGE;
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, hi, -1, SQLITE_STATIC);
    const char *self = ledger_node(l);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        statement_entry_t e;
        memset(&e, 0, sizeof e);
        /* a leg's payer is who pays it: the leg the acceptor pays goes against its message */
        bool out = (sqlite3_column_int(stmt, 1) == DIRECTION_OUT) !=
                   fx_leg_against(fx_leg_of_column(sqlite3_column_int(stmt, 9)));
        snprintf(e.uetr, sizeof e.uetr, "%s", ledger_column_text(stmt, 0));
        snprintf(e.payer, sizeof e.payer, "%s", out ? self : peer);
        snprintf(e.payee, sizeof e.payee, "%s", out ? peer : self);
        e.amount_minor = sqlite3_column_int64(stmt, 2);
        snprintf(e.currency, sizeof e.currency, "%s", ledger_column_text(stmt, 3));
        int status = sqlite3_column_int(stmt, 4);
        snprintf(e.status, sizeof e.status, "%s",
                 status >= STATUS_PENDING && status <= STATUS_MAX
                     ? status_name(status_canonical((status_t)status))
                     : "unknown");
        snprintf(e.reason, sizeof e.reason, "%s", ledger_column_text(stmt, 5));
        snprintf(e.original_uetr, sizeof e.original_uetr, "%s", ledger_column_text(stmt, 6));
        snprintf(e.return_reason, sizeof e.return_reason, "%s", ledger_column_text(stmt, 7));
        /* a set-off leg keeps its id in fx_id (ledger.h); its entry states it as setoff_id */
        bool setoff = fx_leg_of_column(sqlite3_column_int(stmt, 9)) == FX_LEG_SETOFF;
        snprintf(setoff ? e.setoff_id : e.fx_id, sizeof e.fx_id, "%s", ledger_column_text(stmt, 8));
        if (!fn(&e, arg)) {
            step = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? LEDGER_OK : LEDGER_E_STORAGE;
}

ledger_err_t statement_evidence(ledger_t *l, const char *peer, const char *uetr,
                                uint8_t **settlement, size_t *settlement_len, uint8_t **status,
                                size_t *status_len)
{
    assert(l && peer && uetr && settlement && settlement_len && status && status_len);
    *settlement = *status = NULL;
    *settlement_len = *status_len = 0;
    sqlite3_stmt *stmt = NULL;
    const char *sql =
        "SELECT (SELECT evidence FROM journal WHERE settlement_id = s.id AND kind IN (1, 4, 5, 11)"
        "        ORDER BY seq LIMIT 1),"
        " CASE WHEN s.direction = 0 THEN (SELECT evidence FROM journal WHERE settlement_id = s.id"
        "        AND kind IN (2, 3) ORDER BY seq DESC LIMIT 1) ELSE s.reply END"
        " FROM settlements s WHERE s.peer = ?1 AND s.uetr = ?2";
    if (sqlite3_prepare_v2(ledger_db(l), sql, -1, &stmt, NULL) != SQLITE_OK) {
        return LEDGER_E_STORAGE;
    }
    sqlite3_bind_text(stmt, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, uetr, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *settlement = ledger_copy_blob(stmt, 0, settlement_len);
        *status = ledger_copy_blob(stmt, 1, status_len);
    }
    sqlite3_finalize(stmt);
    if (step == SQLITE_DONE) {
        return LEDGER_E_NOT_FOUND;
    }
    return step == SQLITE_ROW ? LEDGER_OK : LEDGER_E_STORAGE;
}

typedef struct {
    const char *peer;
    Corridor__Position **items;
    size_t count, capacity;
    bool failed;
} positions_acc_t;

static void collect_position(const ledger_position_t *p, void *arg)
{
    positions_acc_t *acc = arg;
    if (strcmp(p->peer, acc->peer) != 0 || acc->failed) {
        return;
    }
    if (acc->count == acc->capacity) {
        size_t cap = acc->capacity ? 2 * acc->capacity : 8;
        Corridor__Position **items = realloc(acc->items, cap * sizeof *items);
        if (items == NULL) {
            acc->failed = true;
            return;
        }
        acc->items = items;
        acc->capacity = cap;
    }
    Corridor__Position *pos = malloc(sizeof *pos);
    char *ccy = strdup(p->currency);
    if (pos == NULL || ccy == NULL) {
        free(pos);
        free(ccy);
        acc->failed = true;
        return;
    }
    corridor__position__init(pos);
    pos->currency = ccy;
    pos->net_minor = p->net_minor;
    acc->items[acc->count++] = pos;
}

ledger_err_t statement_positions(ledger_t *l, const char *peer, Corridor__Position ***out,
                                 size_t *count)
{
    positions_acc_t acc = {.peer = peer};
    ledger_err_t rc = ledger_positions(l, collect_position, &acc);
    if (rc == LEDGER_OK && acc.failed) {
        rc = LEDGER_E_STORAGE;
    }
    if (rc != LEDGER_OK) {
        statement_free_positions(acc.items, acc.count);
        return rc;
    }
    *out = acc.items;
    *count = acc.count;
    return LEDGER_OK;
}

void statement_free_positions(Corridor__Position **positions, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(positions[i]->currency);
        free(positions[i]);
    }
    free(positions);
}

void statement_entry_to_proto(const statement_entry_t *e, Corridor__StatementEntry *p)
{
    corridor__statement_entry__init(p);
    p->uetr = (char *)e->uetr;
    p->payer = (char *)e->payer;
    p->payee = (char *)e->payee;
    p->amount_minor = e->amount_minor;
    p->currency = (char *)e->currency;
    p->status = (char *)e->status;
    p->reason = (char *)e->reason;
    p->original_uetr = (char *)e->original_uetr;
    p->return_reason = (char *)e->return_reason;
    p->fx_id = (char *)e->fx_id;
    p->setoff_id = (char *)e->setoff_id;
}

void statement_entry_hash(const statement_entry_t *e, uint8_t out[static DIGEST_BYTES])
{
    assert(e != NULL && out != NULL);
    if (statement_entry_is_setoff_leg(e)) {
        digest_setoff_leg_entry(e->payer, e->payee, e->uetr, e->amount_minor, e->currency,
                                e->status, e->reason, out);
    } else if (statement_entry_is_fx_leg(e)) {
        digest_fx_leg_entry(e->payer, e->payee, e->uetr, e->fx_id, e->amount_minor, e->currency,
                            e->status, e->reason, out);
    } else if (statement_entry_is_return(e)) {
        digest_return_entry(e->payer, e->payee, e->uetr, e->original_uetr, e->amount_minor,
                            e->currency, e->status, e->reason, e->return_reason, out);
    } else {
        digest_entry(e->payer, e->payee, e->uetr, e->amount_minor, e->currency, e->status,
                     e->reason, out);
    }
}

static bool is_status_name(const char *s)
{
    return strcmp(s, "pending") == 0 || strcmp(s, "settled") == 0 || strcmp(s, "rejected") == 0 ||
           strcmp(s, "returned") == 0;
}

/* Printable ASCII only (a currency as stated: a rejected Settlement keeps what it said). */
static bool is_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e) {
            return false;
        }
    }
    return true;
}

bool statement_entry_from_proto(const Corridor__StatementEntry *p, statement_entry_t *e)
{
    memset(e, 0, sizeof *e);
#define FIELD(dst, src)                                                                            \
    (src != NULL && strlen(src) < sizeof(dst) && (memcpy(dst, src, strlen(src) + 1), true))
    bool copied = FIELD(e->uetr, p->uetr) && FIELD(e->payer, p->payer) &&
                  FIELD(e->payee, p->payee) && FIELD(e->currency, p->currency) &&
                  FIELD(e->status, p->status) && FIELD(e->reason, p->reason);
    /* a return's fields: absent (NULL) from a hand-built message is a payment's "" */
    copied = copied && (p->original_uetr == NULL || FIELD(e->original_uetr, p->original_uetr)) &&
             (p->return_reason == NULL || FIELD(e->return_reason, p->return_reason)) &&
             (p->fx_id == NULL || FIELD(e->fx_id, p->fx_id)) &&
             (p->setoff_id == NULL || FIELD(e->setoff_id, p->setoff_id));
#undef FIELD
    e->amount_minor = p->amount_minor;
    /* a return names its payment (or "-": malformed, kept refused) and a reason code, or ""
     * when it was malformed; a payment has neither */
    bool is_return = e->original_uetr[0] != '\0';
    bool return_ok =
        is_return
            ? (strcmp(e->original_uetr, "-") == 0 || uetr_check(e->original_uetr) == VALID_OK) &&
                  (e->return_reason[0] == '\0' || reason_code_check(e->return_reason) == VALID_OK)
            : e->return_reason[0] == '\0';
    /* an FX leg names its trade by a UUIDv4 other than its own UETR, and is not a return */
    bool fx_ok = e->fx_id[0] == '\0' ||
                 (uetr_check(e->fx_id) == VALID_OK && strcmp(e->fx_id, e->uetr) != 0 && !is_return);
    /* a set-off leg is named by the set-off's id, which is its UETR; it is neither a trade's
     * leg nor a return */
    bool setoff_ok = e->setoff_id[0] == '\0' ||
                     (strcmp(e->setoff_id, e->uetr) == 0 && e->fx_id[0] == '\0' && !is_return);
    /* every field as the node itself would write it: what a peer states is shown to people */
    return copied && uetr_check(e->uetr) == VALID_OK && node_code_check(e->payer) == VALID_OK &&
           node_code_check(e->payee) == VALID_OK && is_printable(e->currency) &&
           is_status_name(e->status) &&
           (e->reason[0] == '\0' || reason_code_check(e->reason) == VALID_OK) && return_ok &&
           fx_ok && setoff_ok;
}

/* ---- the responder --------------------------------------------------------------------- */

/* A Statement under construction: growable arrays owned here. */
typedef struct {
    Corridor__Statement *st;
    size_t bytes; /* estimated encoded size so far */
    size_t ranges_cap, leaves_cap, entries_cap;
    bool with_evidence;
    uint64_t scanned; /* entries read so far (fingerprints, sub-ranges, leaves) */
    ledger_t *l;
    const char *peer;
    bool failed;
    size_t cycles_cap;
    bool cycles_cut; /* a cycle was left out for the bytes: the rest are too */
} builder_t;

static bool grow(void **array, size_t *cap, size_t count, size_t item)
{
    if (count < *cap) {
        return true;
    }
    size_t next = *cap ? 2 * *cap : 16;
    void *p = realloc(*array, next * item);
    if (p == NULL) {
        return false;
    }
    *array = p;
    *cap = next;
    return true;
}

static bool add_range(builder_t *b, const range_fp_t *fp)
{
    Corridor__Statement *st = b->st;
    Corridor__RangeFingerprint *r = malloc(sizeof *r);
    char *prefix = strdup(fp->prefix);
    uint8_t *sum = malloc(DIGEST_BYTES);
    if (r == NULL || prefix == NULL || sum == NULL ||
        !grow((void **)&st->ranges, &b->ranges_cap, st->n_ranges, sizeof *st->ranges)) {
        free(r);
        free(prefix);
        free(sum);
        return false;
    }
    corridor__range_fingerprint__init(r);
    memcpy(sum, fp->sum, DIGEST_BYTES);
    r->prefix = prefix;
    r->count = fp->count;
    r->sum = (ProtobufCBinaryData){DIGEST_BYTES, sum};
    st->ranges[st->n_ranges++] = r;
    b->bytes += 16 + strlen(prefix) + DIGEST_BYTES;
    return true;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static bool add_entry(const statement_entry_t *e, void *arg)
{
    builder_t *b = arg;
    Corridor__Statement *st = b->st;
    Corridor__StatementEntry *p = calloc(1, sizeof *p);
    if (p == NULL ||
        !grow((void **)&st->entries, &b->entries_cap, st->n_entries, sizeof *st->entries)) {
        free(p);
        b->failed = true;
        return false;
    }
    corridor__statement_entry__init(p);
    p->uetr = dup_or_empty(e->uetr);
    p->payer = dup_or_empty(e->payer);
    p->payee = dup_or_empty(e->payee);
    p->currency = dup_or_empty(e->currency);
    p->status = dup_or_empty(e->status);
    p->reason = dup_or_empty(e->reason);
    p->original_uetr = dup_or_empty(e->original_uetr);
    p->return_reason = dup_or_empty(e->return_reason);
    p->fx_id = dup_or_empty(e->fx_id);
    p->setoff_id = dup_or_empty(e->setoff_id);
    p->amount_minor = e->amount_minor;
    st->entries[st->n_entries++] = p;
    b->bytes += 80 + strlen(e->payer) + strlen(e->payee) + strlen(e->original_uetr) +
                strlen(e->return_reason) + strlen(e->fx_id) + strlen(e->setoff_id);
    if (p->uetr == NULL || p->payer == NULL || p->payee == NULL || p->currency == NULL ||
        p->status == NULL || p->reason == NULL || p->original_uetr == NULL ||
        p->return_reason == NULL || p->fx_id == NULL || p->setoff_id == NULL) {
        b->failed = true;
        return false;
    }
    if (b->with_evidence) {
        uint8_t *settlement = NULL, *status = NULL;
        size_t settlement_len = 0, status_len = 0;
        if (statement_evidence(b->l, b->peer, e->uetr, &settlement, &settlement_len, &status,
                               &status_len) == LEDGER_OK) {
            p->settlement_evidence = (ProtobufCBinaryData){settlement_len, settlement};
            p->status_evidence = (ProtobufCBinaryData){status_len, status};
            b->bytes += settlement_len + status_len;
        }
    }
    return true;
}

static bool add_leaf(builder_t *b, const char *prefix)
{
    Corridor__Statement *st = b->st;
    char *copy = strdup(prefix);
    if (copy == NULL ||
        !grow((void **)&st->leaves, &b->leaves_cap, st->n_leaves, sizeof *st->leaves)) {
        free(copy);
        return false;
    }
    st->leaves[st->n_leaves++] = copy;
    return statement_entries(b->l, b->peer, prefix, add_entry, b) == LEDGER_OK && !b->failed;
}

static uint8_t *copy_bytes(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len > 0 ? len : 1);
    if (c != NULL && len > 0) {
        memcpy(c, p, len);
    }
    return c;
}

/* States one of our cycles (PROTOCOL.md 4.8) while the answer's bytes allow. */
static void add_cycle(const ledger_cycle_t *c, void *arg)
{
    builder_t *b = arg;
    Corridor__Statement *st = b->st;
    if (b->failed || b->cycles_cut || b->bytes >= STATEMENT_BUDGET_BYTES) {
        b->cycles_cut = true;
        return;
    }
    Corridor__StatedCycle *p = calloc(1, sizeof *p);
    if (p == NULL ||
        !grow((void **)&st->cycles, &b->cycles_cap, st->n_cycles, sizeof *st->cycles)) {
        free(p);
        b->failed = true;
        return;
    }
    corridor__stated_cycle__init(p);
    st->cycles[st->n_cycles++] = p;
    p->cycle = c->cycle;
    p->state = (uint32_t)c->state;
    p->proposed = c->ours;
    p->statement =
        (ProtobufCBinaryData){c->statement_len, copy_bytes(c->statement, c->statement_len)};
    p->signature =
        (ProtobufCBinaryData){crypto_sign_BYTES, copy_bytes(c->own_signature, crypto_sign_BYTES)};
    if (c->has_peer_signature) {
        p->peer_signature = (ProtobufCBinaryData){crypto_sign_BYTES,
                                                  copy_bytes(c->peer_signature, crypto_sign_BYTES)};
    }
    b->bytes += 32 + c->statement_len + 2 * crypto_sign_BYTES;
    b->scanned++;
    if (p->statement.data == NULL || p->signature.data == NULL ||
        (c->has_peer_signature && p->peer_signature.data == NULL)) {
        b->failed = true;
    }
}

/* Answers one range; false when the statement could not be built (storage, memory). */
static bool answer_range(builder_t *b, const Corridor__RangeFingerprint *r)
{
    range_fp_t own;
    if (!statement_prefix_valid(r->prefix)) {
        return true; /* a peer's malformed prefix: nothing to answer for it */
    }
    if (statement_fingerprint(b->l, b->peer, r->prefix, &own) != LEDGER_OK) {
        return false;
    }
    b->scanned += r->prefix[0] != '\0' ? own.count : 0; /* the whole channel: its kept digest */
    bool equal = own.count == r->count && r->sum.len == DIGEST_BYTES &&
                 memcmp(own.sum, r->sum.data, DIGEST_BYTES) == 0;
    if (equal) {
        return true;
    }
    if (own.count <= STATEMENT_LEAF_MAX || strlen(r->prefix) >= STATEMENT_PREFIX_MAX) {
        return add_leaf(b, r->prefix);
    }
    range_fp_t children[16];
    if (statement_children(b->l, b->peer, r->prefix, children) != LEDGER_OK) {
        return false;
    }
    b->scanned += own.count;
    for (int i = 0; i < 16; i++) {
        if (!add_range(b, &children[i])) {
            return false;
        }
    }
    return true;
}

ledger_err_t statement_answer(ledger_t *l, const char *peer, const Corridor__StatementRequest *req,
                              Corridor__Statement *st, uint64_t *work)
{
    assert(l != NULL && peer != NULL && req != NULL && st != NULL && work != NULL);
    corridor__statement__init(st);
    st->request_id = strdup(req->request_id != NULL ? req->request_id : "");
    builder_t b = {.st = st, .with_evidence = req->with_evidence, .l = l, .peer = peer};
    size_t answered = 0;
    size_t asked = req->n_ranges < STATEMENT_RANGES_MAX ? req->n_ranges : STATEMENT_RANGES_MAX;
    /* whatever the request asks (up to 256 ranges, repeats allowed), an answer costs a bounded
     * read: the requester asks again for what `answered` leaves out */
    for (;
         answered < asked && b.bytes < STATEMENT_BUDGET_BYTES && b.scanned < STATEMENT_WORK_ENTRIES;
         answered++) {
        if (!answer_range(&b, req->ranges[answered])) {
            statement_release(st);
            return LEDGER_E_STORAGE;
        }
    }
    st->answered = (uint32_t)answered;
    if (req->cycles_from > 0) {
        bool more = false;
        if (ledger_cycles_from(l, peer, req->cycles_from, STATEMENT_CYCLES_MAX, add_cycle, &b,
                               &more) != LEDGER_OK ||
            b.failed) {
            statement_release(st);
            return LEDGER_E_STORAGE;
        }
        st->cycles_more = more || b.cycles_cut;
    }
    *work = b.scanned;
    range_fp_t whole;
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    ledger_channel_t ch;
    size_t n_positions = 0;
    if (st->request_id == NULL || statement_fingerprint(l, peer, "", &whole) != LEDGER_OK ||
        ledger_head(l, head, &rows) != LEDGER_OK || ledger_channel_get(l, peer, &ch) != LEDGER_OK ||
        statement_positions(l, peer, &st->positions, &n_positions) != LEDGER_OK) {
        statement_release(st);
        return LEDGER_E_STORAGE;
    }
    st->n_positions = n_positions;
    st->channel_digest.data = malloc(DIGEST_BYTES);
    st->journal_head.data = malloc(LEDGER_HASH_BYTES);
    if (st->channel_digest.data == NULL || st->journal_head.data == NULL) {
        statement_release(st);
        return LEDGER_E_STORAGE;
    }
    memcpy(st->channel_digest.data, whole.sum, DIGEST_BYTES);
    st->channel_digest.len = DIGEST_BYTES;
    memcpy(st->journal_head.data, head, LEDGER_HASH_BYTES);
    st->journal_head.len = LEDGER_HASH_BYTES;
    st->entry_count = whole.count;
    st->journal_rows = rows;
    st->sent_sequence = ch.sent_seq;
    st->applied_sequence = ch.applied_seq;
    return LEDGER_OK;
}

void statement_release(Corridor__Statement *st)
{
    if (st == NULL) {
        return;
    }
    if (st->request_id != protobuf_c_empty_string) { /* released before: re-initialised */
        free(st->request_id);
    }
    statement_free_positions(st->positions, st->n_positions);
    for (size_t i = 0; i < st->n_ranges; i++) {
        free(st->ranges[i]->prefix);
        free(st->ranges[i]->sum.data);
        free(st->ranges[i]);
    }
    free(st->ranges);
    for (size_t i = 0; i < st->n_leaves; i++) {
        free(st->leaves[i]);
    }
    free(st->leaves);
    for (size_t i = 0; i < st->n_entries; i++) {
        Corridor__StatementEntry *e = st->entries[i];
        free(e->uetr);
        free(e->payer);
        free(e->payee);
        free(e->currency);
        free(e->status);
        free(e->reason);
        free(e->original_uetr);
        free(e->return_reason);
        free(e->fx_id);
        free(e->setoff_id);
        free(e->settlement_evidence.data);
        free(e->status_evidence.data);
        free(e);
    }
    free(st->entries);
    free(st->channel_digest.data);
    free(st->journal_head.data);
    free(st->checkpoint_signature.data);
    if (st->error != NULL && st->error != protobuf_c_empty_string) {
        free(st->error);
    }
    for (size_t i = 0; i < st->n_refused_imports; i++) {
        free(st->refused_imports[i]->uetr);
        free(st->refused_imports[i]->reason);
        free(st->refused_imports[i]);
    }
    free(st->refused_imports);
    for (size_t i = 0; i < st->n_cycles; i++) {
        free(st->cycles[i]->statement.data);
        free(st->cycles[i]->signature.data);
        free(st->cycles[i]->peer_signature.data);
        free(st->cycles[i]);
    }
    free(st->cycles);
    corridor__statement__init(st);
}
