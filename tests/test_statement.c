/*
 * Unit tests for node/ledger/statement.c on a real ledger: range fingerprints, sub-ranges,
 * entries, the conversion of entries to and from the wire, and the responder's answer
 * (proto/PROTOCOL.md 4.1 to 4.5).
 *
 * Reconciliation trusts these to find every difference between two books with few messages:
 * a range's fingerprint must be exactly the sum of the entry hashes in it (so the whole
 * channel's equals the sum of its 16 children's, and both sides compute the same for the same
 * entries), entries must come back in UETR order with payer and payee by name, a peer's entry
 * must be refused unless every field is as this node would write it, and an answer must stay
 * within the size and work limits whatever a peer asks (include/corridor/limits.h).
 */
#include "support.h"
#include "statement.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "digest.h"
#include "fx.h"
#include "ledger.h"
#include "settlement.h"
#include "validate.h"

#define NODE       "BKRURUMM" /* this node */
#define PEER       "BMJIIRTH" /* the channel under test */
#define PEER_OTHER "BSEPIRTH" /* another channel, which must never show in PEER's */
#define CREATED_MS INT64_C(1700000000000)
#define CAP        INT64_C(1000000000)

/* ---- fixture -------------------------------------------------------------------------------- */

typedef struct {
    char *dir;
    ledger_t *l;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir();
    char *path = test_path(f->dir, LEDGER_FILE);
    char err[256] = "";
    ledger_err_t rc = ledger_open(path, NODE, LEDGER_READ_WRITE, NULL, &f->l, err, sizeof err);
    free(path);
    if (rc != LEDGER_OK) {
        fail_msg("ledger_open: %s (%s)", ledger_strerror(rc), err);
    }
    ledger_set_clock(f->l, CREATED_MS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    ledger_close(&f->l);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* A valid settlement whose UETR starts with `prefix` (hex digits, at most 8). */
static settlement_t make_settlement(direction_t dir, const char *peer, const char *prefix,
                                    const char *currency, int64_t amount)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "%s", peer);
    s.direction = dir;
    uetr_generate(s.uetr);
    memcpy(s.uetr, prefix, strlen(prefix));
    s.amount_minor = amount;
    snprintf(s.currency, sizeof s.currency, "%s", currency);
    snprintf(s.debtor_name, sizeof s.debtor_name, "OOO Romashka");
    snprintf(s.creditor_name, sizeof s.creditor_name, "Pars Trading Co");
    s.created_unix_ms = CREATED_MS;
    assert_int_equal(settlement_check(&s), REASON_NONE);
    return s;
}

/* Evidence is opaque to the ledger; each settlement gets its own, to tell them apart. */
static void evidence_of(const char *kind, const char *uetr, char out[static 64])
{
    snprintf(out, 64, "%s:%s", kind, uetr);
}

static void send_pending(ledger_t *l, const settlement_t *s)
{
    char ev[64];
    evidence_of("settlement", s->uetr, ev);
    ledger_outcome_t o;
    assert_int_equal(ledger_send(l, s, (const uint8_t *)ev, strlen(ev), 0, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_PENDING);
}

static void resolve(ledger_t *l, const settlement_t *s, bool settled, const char *reason)
{
    char ev[64];
    evidence_of("status", s->uetr, ev);
    ledger_outcome_t o;
    assert_int_equal(ledger_resolve(l, s->peer, s->uetr, settled, reason, (const uint8_t *)ev,
                                    strlen(ev), 0, &o),
                     LEDGER_OK);
}

static void receive(ledger_t *l, const settlement_t *s, const char *reject)
{
    char ev[64];
    evidence_of("settlement", s->uetr, ev);
    ledger_outcome_t o;
    assert_int_equal(ledger_receive(l, s, CAP, reject, (const uint8_t *)ev, strlen(ev), 0, &o),
                     LEDGER_OK);
    assert_int_equal(o.status, reject == NULL ? STATUS_SETTLED : STATUS_REJECTED);
}

/* What each booked settlement should look like in a statement. */
typedef struct {
    settlement_t s;
    const char *status;
    const char *reason;
} booked_t;

#define BOOK_MAX 256

typedef struct {
    booked_t items[BOOK_MAX];
    size_t n;
} books_t;

/* Books a mix on PEER's channel, one of each kind per prefix: out pending, out settled, out
 * rejected, in settled, in refused (AM03), with amounts in two currencies. And one entry on
 * PEER_OTHER per prefix. One transaction. */
static void book_mix(ledger_t *l, books_t *b, const char *const prefixes[], size_t n_prefixes)
{
    assert_int_equal(ledger_begin(l), LEDGER_OK);
    for (size_t p = 0; p < n_prefixes; p++) {
        const char *pre = prefixes[p];
        for (int kind = 0; kind < 5; kind++) {
            assert_true(b->n < BOOK_MAX);
            booked_t *e = &b->items[b->n++];
            const char *ccy = kind % 2 == 0 ? "RUB" : "IRR";
            int64_t amount = 100 * (int64_t)(b->n + 1);
            switch (kind) {
            case 0:
                e->s = make_settlement(DIRECTION_OUT, PEER, pre, ccy, amount);
                send_pending(l, &e->s);
                e->status = "pending";
                e->reason = "";
                break;
            case 1:
                e->s = make_settlement(DIRECTION_OUT, PEER, pre, ccy, amount);
                send_pending(l, &e->s);
                resolve(l, &e->s, true, NULL);
                e->status = "settled";
                e->reason = "";
                break;
            case 2:
                e->s = make_settlement(DIRECTION_OUT, PEER, pre, ccy, amount);
                send_pending(l, &e->s);
                resolve(l, &e->s, false, "AM02");
                e->status = "rejected";
                e->reason = "AM02";
                break;
            case 3:
                e->s = make_settlement(DIRECTION_IN, PEER, pre, ccy, amount);
                receive(l, &e->s, NULL);
                e->status = "settled";
                e->reason = "";
                break;
            default:
                e->s = make_settlement(DIRECTION_IN, PEER, pre, ccy, amount);
                receive(l, &e->s, "AM03");
                e->status = "rejected";
                e->reason = "AM03";
                break;
            }
        }
        settlement_t other = make_settlement(DIRECTION_OUT, PEER_OTHER, pre, "RUB", 5);
        send_pending(l, &other);
    }
    assert_int_equal(ledger_commit(l), LEDGER_OK);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The fingerprint of a range computed from what was booked, independently of the ledger. */
static range_fp_t expected_fp(const books_t *b, const char *prefix)
{
    range_fp_t fp;
    memset(&fp, 0, sizeof fp);
    snprintf(fp.prefix, sizeof fp.prefix, "%s", prefix);
    for (size_t i = 0; i < b->n; i++) {
        const booked_t *e = &b->items[i];
        if (!starts_with(e->s.uetr, prefix)) {
            continue;
        }
        bool out = e->s.direction == DIRECTION_OUT;
        uint8_t h[DIGEST_BYTES];
        digest_entry(out ? NODE : PEER, out ? PEER : NODE, e->s.uetr, e->s.amount_minor,
                     e->s.currency, e->status, e->reason, h);
        digest_add(fp.sum, h);
        fp.count++;
    }
    return fp;
}

static void assert_fp_equal(const range_fp_t *got, const range_fp_t *want)
{
    assert_string_equal(got->prefix, want->prefix);
    if (got->count != want->count) {
        fail_msg("range '%s': count %llu, expected %llu", want->prefix,
                 (unsigned long long)got->count, (unsigned long long)want->count);
    }
    if (memcmp(got->sum, want->sum, DIGEST_BYTES) != 0) {
        fail_msg("range '%s': sum differs", want->prefix);
    }
}

static range_fp_t fingerprint(ledger_t *l, const char *peer, const char *prefix)
{
    range_fp_t fp;
    memset(&fp, 0xa5, sizeof fp);
    assert_int_equal(statement_fingerprint(l, peer, prefix, &fp), LEDGER_OK);
    return fp;
}

/* Collects entries from statement_entries. */
typedef struct {
    statement_entry_t items[BOOK_MAX];
    size_t n;
    size_t stop_after; /* 0: never stop */
} collected_t;

static bool collect(const statement_entry_t *e, void *arg)
{
    collected_t *c = arg;
    assert_true(c->n < BOOK_MAX);
    c->items[c->n++] = *e;
    return c->stop_after == 0 || c->n < c->stop_after;
}

static const booked_t *find_booked(const books_t *b, const char *uetr)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->items[i].s.uetr, uetr) == 0) {
            return &b->items[i];
        }
    }
    return NULL;
}

static const char *const mix_prefixes[] = {"0", "3f", "3f0", "9", "9a", "a", "ab", "f"};
#define N_MIX (sizeof mix_prefixes / sizeof mix_prefixes[0])

/* A request of `n` ranges, each the given prefix with count and sum (sum NULL: none). The
 * caller frees with free_request. */
static Corridor__StatementRequest *make_request(size_t n, const char *prefix, uint64_t count,
                                                const uint8_t *sum)
{
    Corridor__StatementRequest *req = calloc(1, sizeof *req);
    assert_non_null(req);
    corridor__statement_request__init(req);
    req->request_id = "req-1";
    req->n_ranges = n;
    req->ranges = calloc(n > 0 ? n : 1, sizeof *req->ranges);
    assert_non_null(req->ranges);
    for (size_t i = 0; i < n; i++) {
        Corridor__RangeFingerprint *r = calloc(1, sizeof *r);
        assert_non_null(r);
        corridor__range_fingerprint__init(r);
        r->prefix = (char *)prefix;
        r->count = count;
        if (sum != NULL) {
            r->sum.len = DIGEST_BYTES;
            r->sum.data = (uint8_t *)sum;
        }
        req->ranges[i] = r;
    }
    return req;
}

static void free_request(Corridor__StatementRequest *req)
{
    for (size_t i = 0; i < req->n_ranges; i++) {
        free(req->ranges[i]);
    }
    free(req->ranges);
    free(req);
}

/* ---- prefixes ------------------------------------------------------------------------------- */

static void test_prefix_valid(void **state)
{
    (void)state;
    static const char *const good[] = {"", "0", "9", "a", "f", "3f", "0123abcd", "ffffffff"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!statement_prefix_valid(good[i])) {
            fail_msg("'%s' refused", good[i]);
        }
    }
    static const char *const bad[] = {"g",         "A",          "3F", "-", " ",       "3f-",
                                      "012345678", "abcdef0123", ":",  "/", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (statement_prefix_valid(bad[i])) {
            fail_msg("'%s' accepted", bad[i]);
        }
    }
}

/* ---- fingerprints --------------------------------------------------------------------------- */

static void test_empty_channel_fingerprints(void **state)
{
    fixture_t *f = *state;
    uint8_t zero[DIGEST_BYTES] = {0};
    /* no channel row at all: the root reads count 0 and a zero sum */
    range_fp_t fp = fingerprint(f->l, PEER, "");
    assert_string_equal(fp.prefix, "");
    assert_int_equal(fp.count, 0);
    assert_memory_equal(fp.sum, zero, DIGEST_BYTES);
    fp = fingerprint(f->l, PEER, "3f");
    assert_string_equal(fp.prefix, "3f");
    assert_int_equal(fp.count, 0);
    assert_memory_equal(fp.sum, zero, DIGEST_BYTES);

    range_fp_t children[16];
    memset(children, 0xa5, sizeof children);
    assert_int_equal(statement_children(f->l, PEER, "3f", children), LEDGER_OK);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        char want[4] = {'3', 'f', hex[i], '\0'};
        assert_string_equal(children[i].prefix, want);
        assert_int_equal(children[i].count, 0);
        assert_memory_equal(children[i].sum, zero, DIGEST_BYTES);
    }
    collected_t c = {.n = 0};
    assert_int_equal(statement_entries(f->l, PEER, "", collect, &c), LEDGER_OK);
    assert_int_equal(c.n, 0);
}

static void test_fingerprint_is_sum_of_entry_hashes(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, N_MIX);

    /* the root (the kept digest) and every prefix (an aggregate over the index) */
    static const char *const ranges[] = {"",  "0", "3",    "3f", "3f0", "9",   "9a",  "a", "ab",
                                         "f", "1", "3f00", "e",  "fe",  "9a0", "abc", "b"};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        range_fp_t want = expected_fp(b, ranges[i]);
        range_fp_t got = fingerprint(f->l, PEER, ranges[i]);
        assert_fp_equal(&got, &want);
    }
    /* and the other channel only holds its own */
    range_fp_t other = fingerprint(f->l, PEER_OTHER, "");
    assert_int_equal(other.count, N_MIX);
    free(b);
}

static void test_fingerprint_equals_sum_of_children(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, N_MIX);
    static const char *const parents[] = {"", "3", "3f", "9", "a", "f", "1", "3f0", "0123456"};
    for (size_t p = 0; p < sizeof parents / sizeof parents[0]; p++) {
        range_fp_t parent = fingerprint(f->l, PEER, parents[p]);
        range_fp_t children[16];
        assert_int_equal(statement_children(f->l, PEER, parents[p], children), LEDGER_OK);
        range_fp_t sum;
        memset(&sum, 0, sizeof sum);
        for (int i = 0; i < 16; i++) {
            assert_int_equal(strlen(children[i].prefix), strlen(parents[p]) + 1);
            assert_true(starts_with(children[i].prefix, parents[p]));
            range_fp_t own = fingerprint(f->l, PEER, children[i].prefix);
            assert_fp_equal(&children[i], &own);
            sum.count += children[i].count;
            digest_add(sum.sum, children[i].sum);
        }
        snprintf(sum.prefix, sizeof sum.prefix, "%s", parents[p]);
        assert_fp_equal(&sum, &parent);
    }
    free(b);
}

static void test_range_bounds_at_digit_letter_edge(void **state)
{
    fixture_t *f = *state;
    /* '9' + 1 is ':', which sorts before 'a': the range "9" must not take "a..." entries, and
     * "f" (upper bound "g") must take every "f..." one */
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    static const char *const edge[] = {"9fffffff", "a0000000", "ffffffff", "00000000"};
    book_mix(f->l, b, edge, 4);
    assert_int_equal(fingerprint(f->l, PEER, "9").count, 5);
    assert_int_equal(fingerprint(f->l, PEER, "a").count, 5);
    assert_int_equal(fingerprint(f->l, PEER, "f").count, 5);
    assert_int_equal(fingerprint(f->l, PEER, "9fffffff").count, 5);
    assert_int_equal(fingerprint(f->l, PEER, "ffffffff").count, 5);
    assert_int_equal(fingerprint(f->l, PEER, "00000000").count, 5);
    assert_int_equal(fingerprint(f->l, PEER, "").count, 20);
    range_fp_t want = expected_fp(b, "f");
    range_fp_t got = fingerprint(f->l, PEER, "f");
    assert_fp_equal(&got, &want);
    free(b);
}

static void test_fingerprint_follows_status_changes(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    static const char *const one[] = {"5"};
    book_mix(f->l, b, one, 1);
    range_fp_t before = fingerprint(f->l, PEER, "");
    /* the pending one (kind 0) settles: root and range move the same way */
    assert_int_equal(ledger_begin(f->l), LEDGER_OK);
    resolve(f->l, &b->items[0].s, true, NULL);
    assert_int_equal(ledger_commit(f->l), LEDGER_OK);
    b->items[0].status = "settled";
    range_fp_t after = fingerprint(f->l, PEER, "");
    assert_int_equal(after.count, before.count);
    assert_memory_not_equal(after.sum, before.sum, DIGEST_BYTES);
    range_fp_t want = expected_fp(b, "");
    assert_fp_equal(&after, &want);
    range_fp_t five = fingerprint(f->l, PEER, "5");
    want = expected_fp(b, "5");
    assert_fp_equal(&five, &want);
    free(b);
}

/* ---- entries -------------------------------------------------------------------------------- */

static void test_entries_in_uetr_order_with_names(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    collected_t *c = calloc(1, sizeof *c);
    assert_non_null(b);
    assert_non_null(c);
    book_mix(f->l, b, mix_prefixes, N_MIX);

    assert_int_equal(statement_entries(f->l, PEER, "", collect, c), LEDGER_OK);
    assert_int_equal(c->n, b->n);
    for (size_t i = 0; i < c->n; i++) {
        const statement_entry_t *e = &c->items[i];
        if (i > 0) {
            assert_true(strcmp(c->items[i - 1].uetr, e->uetr) < 0);
        }
        const booked_t *k = find_booked(b, e->uetr);
        assert_non_null(k);
        bool out = k->s.direction == DIRECTION_OUT;
        assert_string_equal(e->payer, out ? NODE : PEER);
        assert_string_equal(e->payee, out ? PEER : NODE);
        assert_int_equal(e->amount_minor, k->s.amount_minor);
        assert_string_equal(e->currency, k->s.currency);
        assert_string_equal(e->status, k->status);
        assert_string_equal(e->reason, k->reason);
    }

    /* a range holds only its own; "3f" takes "3f0" too */
    c->n = 0;
    assert_int_equal(statement_entries(f->l, PEER, "3f", collect, c), LEDGER_OK);
    assert_int_equal(c->n, 10);
    for (size_t i = 0; i < c->n; i++) {
        assert_true(starts_with(c->items[i].uetr, "3f"));
    }
    c->n = 0;
    assert_int_equal(statement_entries(f->l, PEER, "3f0", collect, c), LEDGER_OK);
    assert_int_equal(c->n, expected_fp(b, "3f0").count);
    free(b);
    free(c);
}

static void test_entries_stop_when_asked(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    collected_t *c = calloc(1, sizeof *c);
    assert_non_null(b);
    assert_non_null(c);
    book_mix(f->l, b, mix_prefixes, N_MIX);
    c->stop_after = 3;
    assert_int_equal(statement_entries(f->l, PEER, "", collect, c), LEDGER_OK);
    assert_int_equal(c->n, 3);
    free(b);
    free(c);
}

/* ---- the wire form of an entry -------------------------------------------------------------- */

static statement_entry_t valid_entry(void)
{
    statement_entry_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.uetr, sizeof e.uetr, "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7c");
    snprintf(e.payer, sizeof e.payer, NODE);
    snprintf(e.payee, sizeof e.payee, PEER);
    e.amount_minor = 125000;
    snprintf(e.currency, sizeof e.currency, "RUB");
    snprintf(e.status, sizeof e.status, "rejected");
    snprintf(e.reason, sizeof e.reason, "AM02");
    return e;
}

static void test_entry_proto_round_trip(void **state)
{
    (void)state;
    static const char *const statuses[] = {"pending", "settled", "rejected", "returned"};
    for (int i = 0; i < 4; i++) {
        statement_entry_t e = valid_entry();
        snprintf(e.status, sizeof e.status, "%s", statuses[i]);
        if (i < 2) {
            e.reason[0] = '\0';
        }
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        /* through real bytes, as a peer would send it */
        size_t len = corridor__statement_entry__get_packed_size(&p);
        uint8_t *buf = malloc(len);
        assert_non_null(buf);
        assert_int_equal(corridor__statement_entry__pack(&p, buf), len);
        Corridor__StatementEntry *back = corridor__statement_entry__unpack(NULL, len, buf);
        assert_non_null(back);
        statement_entry_t d;
        memset(&d, 0xa5, sizeof d);
        assert_true(statement_entry_from_proto(back, &d));
        assert_string_equal(d.uetr, e.uetr);
        assert_string_equal(d.payer, e.payer);
        assert_string_equal(d.payee, e.payee);
        assert_int_equal(d.amount_minor, e.amount_minor);
        assert_string_equal(d.currency, e.currency);
        assert_string_equal(d.status, e.status);
        assert_string_equal(d.reason, e.reason);
        corridor__statement_entry__free_unpacked(back, NULL);
        free(buf);
    }
}

static void test_entry_from_proto_refuses_bad_fields(void **state)
{
    (void)state;
    static const struct {
        int field; /* 0 uetr, 1 payer, 2 payee, 3 currency, 4 status, 5 reason */
        const char *value;
    } bad[] = {
        {0, ""},
        {0, "3F2A8C1E-7B4D-4E8A-9C1F-2D3E4F5A6B7C"},
        {0, "3f2a8c1e-7b4d-1e8a-9c1f-2d3e4f5a6b7c"},
        {0, "3f2a8c1e-7b4d-4e8a-9c1f-2d3e4f5a6b7c0"}, /* longer than a UETR */
        {1, ""},
        {1, "bkrurumm"},
        {1, "BKR"},
        {1, "BKRURUMM1234"}, /* 12: longer than any code */
        {2, "1BMJIIRT"},
        {2, "BMJ IRTH"},
        {3, "RUBL"},
        {3, "R\x01"
            "B"},
        {3, "R\xc3\xa9"},
        {4, "unknown"},
        {4, "Settled"},
        {4, ""},
        {4, "settled-and-more"}, /* longer than the buffer */
        {5, "AM0"},
        {5, "am02"},
        {5, "AM02X"},
        {5, "AM-2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        statement_entry_t e = valid_entry();
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        char **fields[] = {&p.uetr, &p.payer, &p.payee, &p.currency, &p.status, &p.reason};
        *fields[bad[i].field] = (char *)bad[i].value;
        statement_entry_t d;
        if (statement_entry_from_proto(&p, &d)) {
            fail_msg("bad entry %zu (field %d = '%s') accepted", i, bad[i].field, bad[i].value);
        }
    }
    /* a field absent from a hand-built message (NULL) is refused, not read */
    for (int field = 0; field < 6; field++) {
        statement_entry_t e = valid_entry();
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        char **fields[] = {&p.uetr, &p.payer, &p.payee, &p.currency, &p.status, &p.reason};
        *fields[field] = NULL;
        statement_entry_t d;
        assert_false(statement_entry_from_proto(&p, &d));
    }
}

static void test_entry_from_proto_accepts_what_spec_allows(void **state)
{
    (void)state;
    /* an empty reason, and a currency "as stated" (printable, up to 3 bytes, not necessarily
     * one this node knows: a rejected Settlement keeps what it said) */
    static const char *const currencies[] = {"RUB", "XXX", "", "r b"};
    for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++) {
        statement_entry_t e = valid_entry();
        e.reason[0] = '\0';
        snprintf(e.currency, sizeof e.currency, "%s", currencies[i]);
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        statement_entry_t d;
        if (!statement_entry_from_proto(&p, &d)) {
            fail_msg("currency '%s' refused", currencies[i]);
        }
        assert_string_equal(d.currency, currencies[i]);
    }
}

/* ---- returns (3.9) in statements ------------------------------------------------------------ */

/* A return of `original` (the other way), its id starting with `prefix`. */
static settlement_t make_return(const settlement_t *original, const char *prefix, int64_t amount,
                                const char *return_reason)
{
    settlement_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.peer, sizeof r.peer, "%s", original->peer);
    r.direction = original->direction == DIRECTION_IN ? DIRECTION_OUT : DIRECTION_IN;
    uetr_generate(r.uetr);
    memcpy(r.uetr, prefix, strlen(prefix));
    r.amount_minor = amount;
    snprintf(r.currency, sizeof r.currency, "%s", original->currency);
    snprintf(r.original_uetr, sizeof r.original_uetr, "%s", original->uetr);
    snprintf(r.return_reason, sizeof r.return_reason, "%s", return_reason);
    return r;
}

static const statement_entry_t *collected_find(const collected_t *c, const char *uetr)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].uetr, uetr) == 0) {
            return &c->items[i];
        }
    }
    return NULL;
}

/* A return travels in statements with the payment it returns and its reason, its returner as
 * payer; a range's fingerprint is the sum of digest_return_entry over its returns and
 * digest_entry over its payments (4.1), as statement_entry_hash computes them from a peer's
 * entries; the wire form carries both fields and brings them back exactly. */
static void test_return_entries_on_the_statement(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(ledger_begin(f->l), LEDGER_OK);
    settlement_t in = make_settlement(DIRECTION_IN, PEER, "a1", "RUB", 1000);
    receive(f->l, &in, NULL);
    settlement_t out = make_settlement(DIRECTION_OUT, PEER, "b2", "IRR", 700);
    send_pending(f->l, &out);
    resolve(f->l, &out, true, NULL);
    settlement_t ours = make_return(&in, "a1", 400, "AC04"); /* we return part of theirs */
    send_pending(f->l, &ours);
    resolve(f->l, &ours, true, NULL);
    settlement_t theirs = make_return(&out, "a1", 700, "MD06"); /* they return all of ours */
    receive(f->l, &theirs, NULL);
    settlement_t malformed = make_return(&out, "a1", 5, "");
    snprintf(malformed.original_uetr, sizeof malformed.original_uetr, "-");
    receive(f->l, &malformed, "FF01"); /* refused, kept as a return */
    assert_int_equal(ledger_commit(f->l), LEDGER_OK);

    collected_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(statement_entries(f->l, PEER, "", collect, c), LEDGER_OK);
    assert_int_equal(c->n, 5);
    const statement_entry_t *e = collected_find(c, ours.uetr);
    assert_non_null(e);
    assert_string_equal(e->payer, NODE);
    assert_string_equal(e->payee, PEER);
    assert_string_equal(e->original_uetr, in.uetr);
    assert_string_equal(e->return_reason, "AC04");
    assert_string_equal(e->status, "settled");
    assert_true(statement_entry_is_return(e));
    e = collected_find(c, theirs.uetr);
    assert_non_null(e);
    assert_string_equal(e->payer, PEER);
    assert_string_equal(e->payee, NODE);
    assert_string_equal(e->original_uetr, out.uetr);
    assert_string_equal(e->return_reason, "MD06");
    e = collected_find(c, malformed.uetr);
    assert_non_null(e);
    assert_string_equal(e->original_uetr, "-");
    assert_string_equal(e->return_reason, "");
    assert_string_equal(e->status, "rejected");
    assert_string_equal(e->reason, "FF01");
    e = collected_find(c, in.uetr);
    assert_non_null(e);
    assert_false(statement_entry_is_return(e));
    assert_string_equal(e->original_uetr, "");

    /* the fingerprints, computed independently of the ledger and of statement.c */
    const char *const prefixes[] = {"", "a1", "b2"};
    for (size_t k = 0; k < 3; k++) {
        uint8_t want[DIGEST_BYTES] = {0}, via_entries[DIGEST_BYTES] = {0};
        uint64_t count = 0;
        for (size_t i = 0; i < c->n; i++) {
            const statement_entry_t *x = &c->items[i];
            if (!starts_with(x->uetr, prefixes[k])) {
                continue;
            }
            uint8_t h[DIGEST_BYTES];
            if (x->original_uetr[0] != '\0') {
                digest_return_entry(x->payer, x->payee, x->uetr, x->original_uetr, x->amount_minor,
                                    x->currency, x->status, x->reason, x->return_reason, h);
            } else {
                digest_entry(x->payer, x->payee, x->uetr, x->amount_minor, x->currency, x->status,
                             x->reason, h);
            }
            digest_add(want, h);
            statement_entry_hash(x, h);
            digest_add(via_entries, h);
            count++;
        }
        range_fp_t fp = fingerprint(f->l, PEER, prefixes[k]);
        assert_int_equal(fp.count, count);
        assert_memory_equal(fp.sum, want, DIGEST_BYTES);
        assert_memory_equal(via_entries, want, DIGEST_BYTES);
    }

    /* the responder's leaf carries them; through real bytes they come back exactly */
    Corridor__StatementRequest *req = make_request(1, "a1", 0, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.n_entries, 4);
    size_t len = corridor__statement__get_packed_size(&st);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(corridor__statement__pack(&st, buf), len);
    Corridor__Statement *back = corridor__statement__unpack(NULL, len, buf);
    assert_non_null(back);
    for (size_t i = 0; i < back->n_entries; i++) {
        statement_entry_t d;
        memset(&d, 0xa5, sizeof d);
        assert_true(statement_entry_from_proto(back->entries[i], &d));
        const statement_entry_t *want = collected_find(c, d.uetr);
        assert_non_null(want);
        assert_memory_equal(&d, want, sizeof d);
    }
    corridor__statement__free_unpacked(back, NULL);
    free(buf);
    statement_release(&st);
    free_request(req);
    free(c);
}

/* A peer's return fields are checked like the others: a UETR or "-", a reason code or "". */
static void test_return_entry_from_proto(void **state)
{
    (void)state;
    static const struct {
        const char *original, *reason;
        bool ok;
    } cases[] = {
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "AC04", true},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "", true},
        {"-", "", true},
        {"-", "AC04", true},
        {"", "", true},      /* a payment */
        {"", "AC04", false}, /* a reason without a payment returned */
        {"9F3C2A1E-7B4D-4C8E-9A2F-0E1D2C3B4A59", "AC04", false},
        {"9f3c2a1e-7b4d-1c8e-9a2f-0e1d2c3b4a59", "AC04", false},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a590", "AC04", false}, /* longer than a UETR */
        {"--", "", false},
        {"x", "", false},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "ac04", false},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "AC04X", false},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "AC-4", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        statement_entry_t e = valid_entry();
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        p.original_uetr = (char *)cases[i].original;
        p.return_reason = (char *)cases[i].reason;
        statement_entry_t d;
        bool ok = statement_entry_from_proto(&p, &d);
        if (ok != cases[i].ok) {
            fail_msg("return fields '%s' '%s': %s", cases[i].original, cases[i].reason,
                     ok ? "accepted" : "refused");
        }
        if (ok) {
            assert_string_equal(d.original_uetr, cases[i].original);
            assert_string_equal(d.return_reason, cases[i].reason);
        }
    }
    /* an older peer's entry has neither field: a payment */
    statement_entry_t e = valid_entry();
    Corridor__StatementEntry p;
    statement_entry_to_proto(&e, &p);
    p.original_uetr = NULL;
    p.return_reason = NULL;
    statement_entry_t d;
    assert_true(statement_entry_from_proto(&p, &d));
    assert_false(statement_entry_is_return(&d));
}

/* A trade `prefix` names: legs whose UETRs start with `pay_prefix` and `receive_prefix`, as
 * fx_trade_prepare makes them for the proposer, going `dir` (the FxProposal's way). */
static fx_trade_t make_trade(direction_t dir, const char *pay_prefix, const char *receive_prefix)
{
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    uetr_generate(t.fx_id);
    uetr_generate(t.legs[FX_PAY].uetr);
    memcpy(t.legs[FX_PAY].uetr, pay_prefix, strlen(pay_prefix));
    uetr_generate(t.legs[FX_RECEIVE].uetr);
    memcpy(t.legs[FX_RECEIVE].uetr, receive_prefix, strlen(receive_prefix));
    t.legs[FX_PAY].amount_minor = 100000000;
    snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "RUB");
    t.legs[FX_RECEIVE].amount_minor = 45000000000;
    snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "IRR");
    t.created_unix_ms = CREATED_MS;
    fx_trade_prepare(&t, PEER);
    assert_int_equal(fx_check(&t), REASON_NONE);
    for (int i = 0; i < 2; i++) {
        t.legs[i].direction = dir;
    }
    return t;
}

/* A trade's legs travel in statements as entries of their own: the leg's UETR, its payer the
 * node that pays the leg (the leg the acceptor pays goes against the FxProposal), the trade's
 * fx_id; their hashes are digest_fx_leg_entry, equal to what the ledger sums into the channel's
 * digest (4.1), and the wire form brings them back exactly. */
static void test_fx_legs_on_the_statement(void **state)
{
    fixture_t *f = *state;
    fx_trade_t ours = make_trade(DIRECTION_OUT, "c1", "c2");  /* we propose it */
    fx_trade_t theirs = make_trade(DIRECTION_IN, "c1", "d4"); /* the peer proposes it */
    const char ev[] = "fx-proposal";
    const char *why = NULL;
    ledger_outcome_t o;
    assert_int_equal(ledger_begin(f->l), LEDGER_OK);
    settlement_t pay = make_settlement(DIRECTION_IN, PEER, "c1", "RUB", 5);
    receive(f->l, &pay, NULL); /* a payment beside them */
    assert_int_equal(ledger_fx_propose(f->l, ours.legs, INT64_C(1000000000000), (const uint8_t *)ev,
                                       sizeof ev, 0, &why, &o),
                     LEDGER_OK);
    assert_null(why);
    assert_int_equal(ledger_fx_receive(f->l, theirs.legs, INT64_C(1000000000000), NULL, NULL,
                                       (const uint8_t *)ev, sizeof ev, 0, &o),
                     LEDGER_OK);
    assert_int_equal(o.status, STATUS_SETTLED);
    assert_int_equal(ledger_commit(f->l), LEDGER_OK);

    collected_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(statement_entries(f->l, PEER, "", collect, c), LEDGER_OK);
    assert_int_equal(c->n, 5);
    const struct {
        const settlement_t *leg;
        const char *payer, *payee, *status;
    } want[] = {
        {&ours.legs[FX_PAY], NODE, PEER, "pending"},       /* we pay it */
        {&ours.legs[FX_RECEIVE], PEER, NODE, "pending"},   /* the peer pays it us */
        {&theirs.legs[FX_PAY], PEER, NODE, "settled"},     /* the proposer (peer) pays it */
        {&theirs.legs[FX_RECEIVE], NODE, PEER, "settled"}, /* we, the acceptor, pay it */
    };
    for (size_t i = 0; i < 4; i++) {
        const statement_entry_t *e = collected_find(c, want[i].leg->uetr);
        assert_non_null(e);
        assert_true(statement_entry_is_fx_leg(e));
        assert_false(statement_entry_is_return(e));
        assert_string_equal(e->fx_id, want[i].leg->fx_id);
        assert_string_equal(e->payer, want[i].payer);
        assert_string_equal(e->payee, want[i].payee);
        assert_string_equal(e->status, want[i].status);
        assert_int_equal(e->amount_minor, want[i].leg->amount_minor);
        assert_string_equal(e->currency, want[i].leg->currency);
    }
    assert_false(statement_entry_is_fx_leg(collected_find(c, pay.uetr)));

    /* the fingerprints, from digest_fx_leg_entry and digest_entry computed here */
    const char *const prefixes[] = {"", "c", "c1", "c2", "d4"};
    for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++) {
        uint8_t sum[DIGEST_BYTES] = {0}, via_entries[DIGEST_BYTES] = {0};
        uint64_t count = 0;
        for (size_t i = 0; i < c->n; i++) {
            const statement_entry_t *x = &c->items[i];
            if (!starts_with(x->uetr, prefixes[k])) {
                continue;
            }
            uint8_t h[DIGEST_BYTES];
            if (x->fx_id[0] != '\0') {
                digest_fx_leg_entry(x->payer, x->payee, x->uetr, x->fx_id, x->amount_minor,
                                    x->currency, x->status, x->reason, h);
            } else {
                digest_entry(x->payer, x->payee, x->uetr, x->amount_minor, x->currency, x->status,
                             x->reason, h);
            }
            digest_add(sum, h);
            statement_entry_hash(x, h);
            digest_add(via_entries, h);
            count++;
        }
        range_fp_t fp = fingerprint(f->l, PEER, prefixes[k]);
        assert_int_equal(fp.count, count);
        assert_memory_equal(fp.sum, sum, DIGEST_BYTES);
        assert_memory_equal(via_entries, sum, DIGEST_BYTES);
    }

    /* a leaf carries them; through real bytes they come back exactly */
    Corridor__StatementRequest *req = make_request(1, "c", 0, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.n_entries, 4);
    size_t len = corridor__statement__get_packed_size(&st);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(corridor__statement__pack(&st, buf), len);
    Corridor__Statement *back = corridor__statement__unpack(NULL, len, buf);
    assert_non_null(back);
    for (size_t i = 0; i < back->n_entries; i++) {
        statement_entry_t d;
        memset(&d, 0xa5, sizeof d);
        assert_true(statement_entry_from_proto(back->entries[i], &d));
        const statement_entry_t *x = collected_find(c, d.uetr);
        assert_non_null(x);
        assert_memory_equal(&d, x, sizeof d);
    }
    corridor__statement__free_unpacked(back, NULL);
    free(buf);
    statement_release(&st);
    free_request(req);
    free(c);
}

typedef struct {
    int64_t rub, irr;
} nets_t;

static void net_of(const ledger_position_t *p, void *arg)
{
    nets_t *n = arg;
    if (strcmp(p->peer, PEER) == 0 && strcmp(p->currency, "RUB") == 0) {
        n->rub = p->net_minor;
    } else if (strcmp(p->peer, PEER) == 0 && strcmp(p->currency, "IRR") == 0) {
        n->irr = p->net_minor;
    }
}

/* ledger_fx_import (4.9) records a trade with both legs as the acceptor's answer decided it: at
 * the proposer settled (positions move in both currencies), at the acceptor refused with the
 * reason; the legs' statement entries hash to what the channel digest sums, their evidence is
 * the FxProposal and the answer; a trade whose ids are taken is refused whole. */
static void test_fx_import_records_both_legs(void **state)
{
    fixture_t *f = *state;
    fx_trade_t ours = make_trade(DIRECTION_OUT, "e1", "e2");
    fx_trade_t theirs = make_trade(DIRECTION_IN, "f1", "f2");
    const char proposal[] = "fx-proposal", answer[] = "status-report";
    assert_int_equal(ledger_begin(f->l), LEDGER_OK);
    assert_int_equal(ledger_fx_import(f->l, ours.legs, STATUS_SETTLED, "",
                                      (const uint8_t *)proposal, sizeof proposal, 3,
                                      (const uint8_t *)answer, sizeof answer, 4),
                     LEDGER_OK);
    assert_int_equal(ledger_fx_import(f->l, theirs.legs, STATUS_REJECTED, "AG01",
                                      (const uint8_t *)proposal, sizeof proposal, 5,
                                      (const uint8_t *)answer, sizeof answer, 6),
                     LEDGER_OK);
    /* again, or another trade reusing a leg's UETR: nothing written */
    assert_int_equal(ledger_fx_import(f->l, ours.legs, STATUS_SETTLED, "",
                                      (const uint8_t *)proposal, sizeof proposal, 3,
                                      (const uint8_t *)answer, sizeof answer, 4),
                     LEDGER_E_CONFLICT);
    assert_int_equal(ledger_commit(f->l), LEDGER_OK);

    nets_t nets = {0, 0};
    assert_int_equal(ledger_positions(f->l, net_of, &nets), LEDGER_OK);
    assert_int_equal(nets.rub, -ours.legs[FX_PAY].amount_minor);
    assert_int_equal(nets.irr, ours.legs[FX_RECEIVE].amount_minor);

    collected_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(statement_entries(f->l, PEER, "", collect, c), LEDGER_OK);
    assert_int_equal(c->n, 4);
    uint8_t sum[DIGEST_BYTES] = {0};
    for (size_t i = 0; i < c->n; i++) {
        const statement_entry_t *e = &c->items[i];
        bool settled = strcmp(e->fx_id, ours.fx_id) == 0;
        assert_true(settled || strcmp(e->fx_id, theirs.fx_id) == 0);
        assert_string_equal(e->status, settled ? "settled" : "rejected");
        assert_string_equal(e->reason, settled ? "" : "AG01");
        uint8_t h[DIGEST_BYTES];
        statement_entry_hash(e, h);
        digest_add(sum, h);
        uint8_t *sev = NULL, *tev = NULL;
        size_t sev_len = 0, tev_len = 0;
        assert_int_equal(statement_evidence(f->l, PEER, e->uetr, &sev, &sev_len, &tev, &tev_len),
                         LEDGER_OK);
        assert_int_equal(sev_len, sizeof proposal);
        assert_memory_equal(sev, proposal, sizeof proposal);
        assert_int_equal(tev_len, sizeof answer);
        assert_memory_equal(tev, answer, sizeof answer);
        free(sev);
        free(tev);
    }
    assert_string_equal(collected_find(c, theirs.legs[FX_RECEIVE].uetr)->payer, NODE);
    assert_string_equal(collected_find(c, ours.legs[FX_RECEIVE].uetr)->payer, PEER);
    range_fp_t fp = fingerprint(f->l, PEER, "");
    assert_int_equal(fp.count, 4);
    assert_memory_equal(fp.sum, sum, DIGEST_BYTES);
    settlement_t legs[2];
    ledger_outcome_t o;
    assert_int_equal(ledger_fx_find(f->l, PEER, theirs.fx_id, legs, &o), LEDGER_OK);
    assert_int_equal(o.status, STATUS_REJECTED);
    assert_string_equal(legs[1].uetr, theirs.legs[FX_RECEIVE].uetr);
    free(c);
}

/* A peer's fx_id is a UUIDv4 other than the leg's own UETR, on an entry that is no return; an
 * older peer leaves it out (a payment). */
static void test_fx_entry_from_proto(void **state)
{
    (void)state;
    statement_entry_t e = valid_entry();
    static const struct {
        const char *fx_id, *original;
        bool ok;
    } cases[] = {
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "", true},
        {"", "", true},
        {"9F3C2A1E-7B4D-4C8E-9A2F-0E1D2C3B4A59", "", false},
        {"9f3c2a1e-7b4d-1c8e-9a2f-0e1d2c3b4a59", "", false},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a590", "", false},
        {"x", "", false},
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "-", false}, /* a leg is no return */
        {NULL, "", true},                                     /* the leg's own UETR, below */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        p.fx_id = (char *)(cases[i].fx_id != NULL ? cases[i].fx_id : e.uetr);
        p.original_uetr = (char *)cases[i].original;
        statement_entry_t d;
        bool ok = statement_entry_from_proto(&p, &d);
        bool want = cases[i].fx_id != NULL ? cases[i].ok : false;
        if (ok != want) {
            fail_msg("fx_id '%s': %s", p.fx_id, ok ? "accepted" : "refused");
        }
        if (ok) {
            assert_string_equal(d.fx_id, p.fx_id);
        }
    }
    Corridor__StatementEntry p;
    statement_entry_to_proto(&e, &p);
    p.fx_id = NULL;
    statement_entry_t d;
    assert_true(statement_entry_from_proto(&p, &d));
    assert_false(statement_entry_is_fx_leg(&d));
}

/* A peer's setoff_id is its entry's own UETR (a set-off leg is keyed by its set-off's id), on an
 * entry that is neither a trade's leg nor a return; its entry hash is digest_setoff_leg_entry. */
static void test_setoff_entry_from_proto(void **state)
{
    (void)state;
    statement_entry_t e = valid_entry();
    static const struct {
        const char *setoff_id, *fx_id, *original;
        bool ok;
    } cases[] = {
        {NULL, "", "", true},                                      /* NULL: the entry's own UETR */
        {"", "", "", true},                                        /* no set-off leg */
        {"9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "", "", false},   /* another id */
        {NULL, "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", "", false}, /* a trade's leg too */
        {NULL, "", "-", false},                                    /* a return too */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Corridor__StatementEntry p;
        statement_entry_to_proto(&e, &p);
        p.setoff_id = (char *)(cases[i].setoff_id != NULL ? cases[i].setoff_id : e.uetr);
        p.fx_id = (char *)cases[i].fx_id;
        p.original_uetr = (char *)cases[i].original;
        statement_entry_t d;
        bool ok = statement_entry_from_proto(&p, &d);
        if (ok != cases[i].ok) {
            fail_msg("case %zu (setoff_id '%s'): %s", i, p.setoff_id, ok ? "accepted" : "refused");
        }
        if (ok) {
            assert_string_equal(d.setoff_id, p.setoff_id);
            assert_int_equal(statement_entry_is_setoff_leg(&d), p.setoff_id[0] != '\0');
        }
    }
    snprintf(e.setoff_id, sizeof e.setoff_id, "%s", e.uetr);
    uint8_t got[DIGEST_BYTES], want[DIGEST_BYTES], as_payment[DIGEST_BYTES];
    statement_entry_hash(&e, got);
    digest_setoff_leg_entry(e.payer, e.payee, e.uetr, e.amount_minor, e.currency, e.status,
                            e.reason, want);
    digest_entry(e.payer, e.payee, e.uetr, e.amount_minor, e.currency, e.status, e.reason,
                 as_payment);
    assert_memory_equal(got, want, DIGEST_BYTES);
    assert_memory_not_equal(got, as_payment, DIGEST_BYTES);
}

/* ---- the responder -------------------------------------------------------------------------- */

static void assert_answer_header(ledger_t *l, const Corridor__Statement *st)
{
    range_fp_t whole = fingerprint(l, PEER, "");
    assert_int_equal(st->channel_digest.len, DIGEST_BYTES);
    assert_memory_equal(st->channel_digest.data, whole.sum, DIGEST_BYTES);
    assert_int_equal(st->entry_count, whole.count);
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    assert_int_equal(ledger_head(l, head, &rows), LEDGER_OK);
    assert_int_equal(st->journal_rows, rows);
    assert_int_equal(st->journal_head.len, LEDGER_HASH_BYTES);
    assert_memory_equal(st->journal_head.data, head, LEDGER_HASH_BYTES);
}

static void test_answer_equal_range_needs_nothing(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, N_MIX);
    range_fp_t whole = fingerprint(f->l, PEER, "");
    range_fp_t three = fingerprint(f->l, PEER, "3f");
    Corridor__StatementRequest *req = make_request(2, "", whole.count, whole.sum);
    req->ranges[1]->prefix = "3f";
    req->ranges[1]->count = three.count;
    req->ranges[1]->sum.data = three.sum;
    Corridor__Statement st;
    uint64_t work = 99;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_string_equal(st.request_id, "req-1");
    assert_int_equal(st.answered, 2);
    assert_int_equal(st.n_ranges, 0);
    assert_int_equal(st.n_leaves, 0);
    assert_int_equal(st.n_entries, 0);
    assert_int_equal(work, three.count); /* the root costs nothing; a prefix its count */
    assert_answer_header(f->l, &st);
    /* positions towards PEER: one per currency with an account, ascending */
    assert_int_equal(st.n_positions, 2);
    assert_string_equal(st.positions[0]->currency, "IRR");
    assert_string_equal(st.positions[1]->currency, "RUB");
    for (size_t i = 0; i < st.n_positions; i++) {
        int64_t net = 0, pending = 0;
        assert_int_equal(ledger_position(f->l, PEER, st.positions[i]->currency, &net, &pending),
                         LEDGER_OK);
        assert_int_equal(st.positions[i]->net_minor, net);
    }
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_small_difference_is_a_leaf(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, 2); /* 10 entries: under STATEMENT_LEAF_MAX */
    /* the requester claims more than the stater has: the stater's own count decides */
    Corridor__StatementRequest *req = make_request(1, "", 1000, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.answered, 1);
    assert_int_equal(st.n_ranges, 0);
    assert_int_equal(st.n_leaves, 1);
    assert_string_equal(st.leaves[0], "");
    assert_int_equal(st.n_entries, 10);
    for (size_t i = 0; i < st.n_entries; i++) {
        statement_entry_t e;
        assert_true(statement_entry_from_proto(st.entries[i], &e));
        const booked_t *k = find_booked(b, e.uetr);
        assert_non_null(k);
        assert_string_equal(e.status, k->status);
        assert_int_equal(st.entries[i]->settlement_evidence.len, 0); /* none asked */
        if (i > 0) {
            assert_true(strcmp(st.entries[i - 1]->uetr, e.uetr) < 0);
        }
    }
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_large_difference_gives_children(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, N_MIX); /* 40 entries: over STATEMENT_LEAF_MAX */
    assert_true(b->n > STATEMENT_LEAF_MAX);
    Corridor__StatementRequest *req = make_request(1, "", 0, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.answered, 1);
    assert_int_equal(st.n_leaves, 0);
    assert_int_equal(st.n_entries, 0);
    assert_int_equal(st.n_ranges, 16); /* every child, empty ones included */
    assert_int_equal(work, b->n);      /* descending costs the range's count */
    range_fp_t children[16];
    assert_int_equal(statement_children(f->l, PEER, "", children), LEDGER_OK);
    uint64_t total = 0;
    for (int i = 0; i < 16; i++) {
        assert_string_equal(st.ranges[i]->prefix, children[i].prefix);
        assert_int_equal(st.ranges[i]->count, children[i].count);
        assert_int_equal(st.ranges[i]->sum.len, DIGEST_BYTES);
        assert_memory_equal(st.ranges[i]->sum.data, children[i].sum, DIGEST_BYTES);
        total += st.ranges[i]->count;
    }
    assert_int_equal(total, b->n);
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_full_length_prefix_is_always_a_leaf(void **state)
{
    fixture_t *f = *state;
    /* at STATEMENT_PREFIX_MAX digits there are no children to give: however many entries
     * share the prefix, they are a leaf (PROTOCOL.md 4.5 step 3; known gap 8: unbounded) */
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    static const char *const same[] = {"abcdef01", "abcdef01", "abcdef01", "abcdef01",
                                       "abcdef01", "abcdef01", "abcdef01", "abcdef01"};
    book_mix(f->l, b, same, 8);
    assert_true(b->n > STATEMENT_LEAF_MAX);
    Corridor__StatementRequest *req = make_request(1, "abcdef01", 0, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.n_ranges, 0);
    assert_int_equal(st.n_leaves, 1);
    assert_string_equal(st.leaves[0], "abcdef01");
    assert_int_equal(st.n_entries, b->n);
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_with_evidence(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, 1);
    Corridor__StatementRequest *req = make_request(1, "0", 0, NULL);
    req->with_evidence = true;
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.n_entries, 5);
    for (size_t i = 0; i < st.n_entries; i++) {
        const Corridor__StatementEntry *p = st.entries[i];
        const booked_t *k = find_booked(b, p->uetr);
        assert_non_null(k);
        char want[64];
        evidence_of("settlement", p->uetr, want);
        assert_int_equal(p->settlement_evidence.len, strlen(want));
        assert_memory_equal(p->settlement_evidence.data, want, strlen(want));
        bool resolved = k->s.direction == DIRECTION_OUT && strcmp(k->status, "pending") != 0;
        if (resolved) { /* the payee's StatusReport */
            evidence_of("status", p->uetr, want);
            assert_int_equal(p->status_evidence.len, strlen(want));
            assert_memory_equal(p->status_evidence.data, want, strlen(want));
        } else { /* pending, or received without a kept reply */
            assert_int_equal(p->status_evidence.len, 0);
        }
    }
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_skips_invalid_prefix_and_caps_ranges(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, 2);
    /* an invalid prefix counts as answered and adds nothing */
    static const char *const invalid[] = {"G", "3F", "012345678", "-"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        Corridor__StatementRequest *req = make_request(1, invalid[i], 7, NULL);
        Corridor__Statement st;
        uint64_t work = 0;
        assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
        assert_int_equal(st.answered, 1);
        assert_int_equal(st.n_ranges + st.n_leaves + st.n_entries, 0);
        assert_int_equal(work, 0);
        statement_release(&st);
        free_request(req);
    }
    /* more than STATEMENT_RANGES_MAX ranges: only that many are read */
    range_fp_t whole = fingerprint(f->l, PEER, "");
    Corridor__StatementRequest *req =
        make_request(STATEMENT_RANGES_MAX + 44, "", whole.count, whole.sum);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_int_equal(st.answered, STATEMENT_RANGES_MAX);
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_without_request_id_or_channel(void **state)
{
    fixture_t *f = *state;
    /* an empty ledger, a request with nothing: a valid answer of an empty channel */
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
    req.request_id = NULL;
    Corridor__Statement st;
    uint64_t work = 5;
    assert_int_equal(statement_answer(f->l, PEER, &req, &st, &work), LEDGER_OK);
    assert_string_equal(st.request_id, "");
    assert_int_equal(st.answered, 0);
    assert_int_equal(work, 0);
    assert_int_equal(st.entry_count, 0);
    assert_int_equal(st.journal_rows, 0);
    assert_int_equal(st.n_positions, 0);
    uint8_t zero[DIGEST_BYTES] = {0};
    assert_memory_equal(st.channel_digest.data, zero, DIGEST_BYTES);
    assert_memory_equal(st.journal_head.data, zero, DIGEST_BYTES);
    statement_release(&st);
}

static void test_answer_bounded_by_bytes(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    /* 30 entries in one range: each repeat of the range is a leaf of 30 entries */
    static const char *const six[] = {"1", "1", "1", "1", "1", "1"};
    book_mix(f->l, b, six, 6);
    assert_int_equal(fingerprint(f->l, PEER, "1").count, 30);
    Corridor__StatementRequest *req = make_request(STATEMENT_RANGES_MAX, "1", 0, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_true(st.answered >= 1);
    assert_true(st.answered < STATEMENT_RANGES_MAX); /* the byte budget stopped it */
    assert_int_equal(st.n_leaves, st.answered);
    assert_int_equal(st.n_entries, 30 * (size_t)st.answered);
    /* the answer is sealed as one body: it must fit, however many ranges were asked */
    size_t packed = corridor__statement__get_packed_size(&st);
    assert_true(packed <= CORRIDOR_BODY_BYTES_MAX);
    /* and it stopped as soon as the budget was spent, not one range before */
    size_t per_range = 30 * (80 + strlen(NODE) + strlen(PEER));
    assert_true((st.answered - 1) * per_range < STATEMENT_BUDGET_BYTES);
    assert_true(st.answered * per_range >= STATEMENT_BUDGET_BYTES);
    statement_release(&st);
    free_request(req);
    free(b);
}

static void test_answer_bounded_by_work(void **state)
{
    fixture_t *f = *state;
    /* 200 entries under prefix "a": each repeat of a differing "a" reads them twice (its
     * fingerprint, then its children) and adds only 16 small ranges */
    assert_int_equal(ledger_begin(f->l), LEDGER_OK);
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        char prefix[3];
        snprintf(prefix, sizeof prefix, "a%x", i % 16);
        settlement_t s = make_settlement(DIRECTION_OUT, PEER, prefix, "RUB", 1 + i);
        send_pending(f->l, &s);
    }
    assert_int_equal(ledger_commit(f->l), LEDGER_OK);
    Corridor__StatementRequest *req = make_request(STATEMENT_RANGES_MAX, "a", 0, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    size_t per_range = 2 * N;
    size_t expect = (STATEMENT_WORK_ENTRIES + per_range - 1) / per_range; /* 82 */
    assert_int_equal(st.answered, expect);
    assert_int_equal(st.n_ranges, 16 * expect);
    assert_int_equal(work, expect * per_range);
    assert_true(work >= STATEMENT_WORK_ENTRIES);
    assert_true(work - per_range < STATEMENT_WORK_ENTRIES);
    statement_release(&st);
    free_request(req);
}

static void test_release_leaves_an_empty_statement(void **state)
{
    fixture_t *f = *state;
    books_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    book_mix(f->l, b, mix_prefixes, 1);
    Corridor__StatementRequest *req = make_request(1, "", 3, NULL);
    Corridor__Statement st;
    uint64_t work = 0;
    assert_int_equal(statement_answer(f->l, PEER, req, &st, &work), LEDGER_OK);
    assert_true(st.n_entries > 0 && st.n_positions > 0);
    statement_release(&st);
    assert_int_equal(st.n_entries + st.n_leaves + st.n_ranges + st.n_positions, 0);
    assert_null(st.entries);
    assert_null(st.channel_digest.data);
    assert_string_equal(st.request_id, ""); /* the static empty string: not to be freed again */
    statement_release(NULL);
    free_request(req);
    free(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_valid),
        T(test_empty_channel_fingerprints),
        T(test_fingerprint_is_sum_of_entry_hashes),
        T(test_fingerprint_equals_sum_of_children),
        T(test_range_bounds_at_digit_letter_edge),
        T(test_fingerprint_follows_status_changes),
        T(test_entries_in_uetr_order_with_names),
        T(test_entries_stop_when_asked),
        cmocka_unit_test(test_entry_proto_round_trip),
        cmocka_unit_test(test_entry_from_proto_refuses_bad_fields),
        cmocka_unit_test(test_entry_from_proto_accepts_what_spec_allows),
        cmocka_unit_test(test_return_entry_from_proto),
        T(test_return_entries_on_the_statement),
        cmocka_unit_test(test_fx_entry_from_proto),
        cmocka_unit_test(test_setoff_entry_from_proto),
        T(test_fx_legs_on_the_statement),
        T(test_fx_import_records_both_legs),
        T(test_answer_equal_range_needs_nothing),
        T(test_answer_small_difference_is_a_leaf),
        T(test_answer_large_difference_gives_children),
        T(test_answer_full_length_prefix_is_always_a_leaf),
        T(test_answer_with_evidence),
        T(test_answer_skips_invalid_prefix_and_caps_ranges),
        T(test_answer_without_request_id_or_channel),
        T(test_answer_bounded_by_bytes),
        T(test_answer_bounded_by_work),
        T(test_release_leaves_an_empty_statement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
