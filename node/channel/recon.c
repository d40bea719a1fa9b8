/* Reconciliation: compare, classify, repair, checkpoint; see recon.h. */
#include "recon.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "cycle.h"
#include "cycles.h"
#include "envelope.h"
#include "fx.h"
#include "log.h"
#include "statement.h"
#include "validate.h"
#include "wire.h"

#define RECON_BREAKS_MAX 100000 /* breaks kept for the report (counted beyond) */
#define RECON_CYCLES_MAX 100000 /* a peer's cycles compared in one session (asked no further) */

/* HEAD: a checkpoint session asks the peer's journal head before it proposes. */
typedef enum { PHASE_HEAD, PHASE_COMPARE, PHASE_REPAIR, PHASE_CHECKPOINT, PHASE_DONE } phase_t;

/* One break and what became of it. */
typedef struct {
    char uetr[CORRIDOR_UETR_LEN + 1];
    const char *kind; /* missing_at_peer ... status_mismatch, return_missing, return_mismatch,
                         fx_leg_missing, fx_mismatch, setoff_missing, setoff_mismatch */
    bool figures;     /* a return_mismatch or fx_mismatch in more than status and reason: needs
                         a person */
    bool has_local, has_peer;
    statement_entry_t local, peer;
    const char *action; /* what the repair did or why it could not */
    bool healed;
    /* a cycle_mismatch (uetr ""): the cycle, each side's state (0: not held) and H9 */
    uint64_t cycle;
    int local_state, peer_state;
    uint8_t local_hash[CYCLE_HASH_BYTES], peer_hash[CYCLE_HASH_BYTES];
} break_t;

/* A closed cycle of the peer's that we lack: imported by a repair (PROTOCOL.md 4.9). */
typedef struct {
    uint64_t cycle;
    bool proposed; /* the peer proposed it */
    uint8_t *statement;
    size_t statement_len;
    uint8_t signature[crypto_sign_BYTES];      /* the peer's */
    uint8_t peer_signature[crypto_sign_BYTES]; /* ours, as the peer holds it */
    size_t break_index;                        /* SIZE_MAX: the break was not listed */
} cycle_import_t;

/* An entry (with evidence) to import, here or at the peer. */
typedef struct {
    statement_entry_t entry;
    uint8_t *settlement_evidence, *status_evidence;
    size_t settlement_len, status_len;
    size_t break_index;
} import_t;

typedef struct {
    void *items;
    size_t count, capacity;
} vec_t;

struct recon {
    recon_ctx_t ctx;
    bool repair;
    phase_t phase;
    vec_t queue; /* range_fp_t: our fingerprints of ranges still to compare */
    range_fp_t asked[STATEMENT_RANGES_MAX]; /* the ranges of the outstanding request */
    size_t asked_count;
    char request_id[40];   /* of the outstanding request; "" when none */
    uint8_t *request_body; /* its encoding, for retries */
    size_t request_len;
    int64_t request_sent_ms;
    bool request_due; /* request_body waits to leave */
    bool sends_held;  /* while the engine's transaction is open (recon_hold_sends) */
    int64_t started_ms;
    unsigned rounds;
    uint64_t bytes_out, bytes_in;
    uint64_t matched;
    vec_t breaks; /* break_t */
    size_t breaks_dropped;
    vec_t local_imports;      /* import_t: applied here */
    vec_t remote_imports;     /* import_t: sent to the peer */
    size_t remote_next;       /* the first remote import not yet sent */
    size_t remote_chunk;      /* how many the outstanding repair request carries */
    Corridor__Statement last; /* counters, positions, head of the peer's latest statement */
    json_t *peer_positions;   /* {currency: net} from the peer's statement */
    bool positions_agree;
    bool rebased;
    bool diverged_at_start;
    uint8_t *checkpoint; /* the proposed checkpoint */
    size_t checkpoint_len;
    uint8_t checkpoint_sig[crypto_sign_BYTES];
    uint64_t own_rows;
    uint8_t own_head[LEDGER_HASH_BYTES];
    int64_t cut_retry_ms; /* when to propose again to a peer behind the cut; 0: not waiting */
    unsigned cut_retries;
    char error[256];      /* why the session ended early, if it did */
    char peer_error[256]; /* why the peer refused the last request (escaped), or "" */
    json_t *checkpoint_report;
    /* cycles (PROTOCOL.md 4.8): the next number to ask (0: none), whether the outstanding
     * request asked, the peer's numbers seen (ascending), whether that list is whole */
    uint64_t cycles_from;
    bool cycles_asked;
    bool cycles_complete;
    vec_t peer_cycles; /* uint64_t */
    uint64_t cycles_matched;
    vec_t cycle_imports; /* cycle_import_t */
};

/* What holds between any two calls into a session, whatever the peer sent: asserted at the
 * edges of every public function (kept in every build; a peer's input never reaches one). */
static bool vec_sound(const vec_t *v)
{
    return v->count <= v->capacity && (v->capacity == 0 || v->items != NULL);
}

static void assert_session(const recon_t *r)
{
    assert(r != NULL && r->phase >= PHASE_HEAD && r->phase <= PHASE_DONE);
    assert(vec_sound(&r->queue) && vec_sound(&r->breaks) && vec_sound(&r->local_imports) &&
           vec_sound(&r->remote_imports));
    assert(r->asked_count <= STATEMENT_RANGES_MAX);
    assert(r->breaks.count <= RECON_BREAKS_MAX);
    assert(r->remote_next <= r->remote_imports.count);
    assert(r->remote_chunk <= REPAIR_CHUNK_MAX);
    /* an outstanding repair request carries imports not yet counted as sent */
    assert(r->phase != PHASE_REPAIR || r->request_id[0] == '\0' ||
           r->remote_chunk <= r->remote_imports.count - r->remote_next);
    assert(r->cut_retries <= CUT_RETRIES);
    /* an outstanding request has its bytes kept for retries; a finished session has none */
    assert(r->request_id[0] == '\0' || (r->request_body != NULL && r->phase != PHASE_DONE));
    assert(r->phase != PHASE_HEAD || r->queue.count == 0);
    assert(r->checkpoint == NULL || r->checkpoint_len > 0);
    assert(r->error[0] == '\0' || r->phase == PHASE_DONE);
}

static bool vec_push(vec_t *v, const void *item, size_t size)
{
    if (v->count == v->capacity) {
        size_t cap = v->capacity ? 2 * v->capacity : 32;
        void *p = realloc(v->items, cap * size);
        if (p == NULL) {
            return false;
        }
        v->items = p;
        v->capacity = cap;
    }
    memcpy((char *)v->items + v->count * size, item, size);
    v->count++;
    return true;
}

static void free_imports(vec_t *v)
{
    import_t *items = v->items;
    for (size_t i = 0; i < v->count; i++) {
        free(items[i].settlement_evidence);
        free(items[i].status_evidence);
    }
    free(v->items);
    memset(v, 0, sizeof *v);
}

recon_t *recon_new(const recon_ctx_t *ctx, bool repair, int64_t now_ms)
{
    assert(ctx != NULL && ctx->self != NULL && ctx->peer != NULL && ctx->ledger != NULL &&
           ctx->channel != NULL);
    recon_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->ctx = *ctx;
    r->repair = repair;
    r->started_ms = now_ms;
    r->phase = PHASE_COMPARE;
    r->diverged_at_start = channel_is_diverged(ctx->channel);
    /* a peer that does not offer cycles holds none and would state none */
    r->cycles_from = channel_peer_offers(ctx->channel, CHANNEL_FEATURE_CYCLES) ? 1 : 0;
    corridor__statement__init(&r->last);
    r->peer_positions = json_object();
    range_fp_t root;
    if (r->peer_positions == NULL ||
        statement_fingerprint(ctx->ledger, ctx->peer->card.name, "", &root) != LEDGER_OK ||
        !vec_push(&r->queue, &root, sizeof root)) {
        recon_destroy(&r);
        return NULL;
    }
    assert_session(r);
    assert(r->queue.count == 1 && r->phase == PHASE_COMPARE);
    return r;
}

recon_t *recon_new_checkpoint(const recon_ctx_t *ctx, int64_t now_ms)
{
    recon_t *r = recon_new(ctx, false, now_ms);
    if (r != NULL) {
        r->queue.count = 0;
        r->cycles_from = 0;
        r->phase = PHASE_HEAD;
        assert_session(r);
    }
    return r;
}

void recon_set_self(recon_t *r, const identity_t *self, const identity_t *self_previous)
{
    assert(r != NULL && self != NULL);
    r->ctx.self = self;
    r->ctx.self_previous = self_previous;
}

void recon_destroy(recon_t **self_p)
{
    recon_t *r = *self_p;
    if (r == NULL) {
        return;
    }
    free(r->queue.items);
    free(r->breaks.items);
    free_imports(&r->local_imports);
    free_imports(&r->remote_imports);
    free(r->request_body);
    free(r->checkpoint);
    free(r->last.journal_head.data);
    free(r->peer_cycles.items);
    cycle_import_t *ci = r->cycle_imports.items;
    for (size_t i = 0; i < r->cycle_imports.count; i++) {
        free(ci[i].statement);
    }
    free(r->cycle_imports.items);
    json_decref(r->peer_positions);
    json_decref(r->checkpoint_report);
    free(r);
    *self_p = NULL;
}

bool recon_done(const recon_t *r)
{
    return r->phase == PHASE_DONE;
}

bool recon_rebased(const recon_t *r)
{
    return r->rebased;
}

int64_t recon_deadline(const recon_t *r)
{
    return r->request_id[0] != '\0' ? r->request_sent_ms + RECON_RETRY_MS : r->cut_retry_ms;
}

static void finish(recon_t *r, const char *error)
{
    if (error != NULL && r->error[0] == '\0') {
        snprintf(r->error, sizeof r->error, "%s", error);
    }
    r->phase = PHASE_DONE;
    r->request_id[0] = '\0';
    assert_session(r);
}

/* Sends the request waiting in request_body unless sends are held: a request may carry our
 * signature over the journal's head (a checkpoint proposal), which must not leave before the
 * rows under it are committed (PROTOCOL.md 2.8). The engine holds a session's sends while its
 * transaction is open and ticks the session after the commit; a failed transaction ends the
 * session unsent. */
static void flush_request(recon_t *r, int64_t now_ms)
{
    if (!r->request_due || r->sends_held) {
        return;
    }
    r->request_due = false;
    r->request_sent_ms = now_ms;
    r->bytes_out += r->request_len;
    channel_send_unsequenced(r->ctx.channel, MSG_STATEMENT_REQUEST, r->request_body,
                             r->request_len);
}

/* Encodes and sends a request; keeps it for retries. */
static void send_request(recon_t *r, Corridor__StatementRequest *req, int64_t now_ms)
{
    assert(r->phase != PHASE_DONE && req != NULL && r->request_id[0] == '\0');
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(r->request_id, sizeof r->request_id, "%s-%u", hex, r->rounds++);
    req->request_id = r->request_id;
    free(r->request_body);
    r->request_len = corridor__statement_request__get_packed_size(req);
    r->request_body = malloc(r->request_len);
    if (r->request_body == NULL) {
        finish(r, "out of memory");
        return;
    }
    corridor__statement_request__pack(req, r->request_body);
    r->request_due = true;
    flush_request(r, now_ms);
}

/* The next comparison round: up to STATEMENT_RANGES_MAX queued ranges. */
static void send_compare(recon_t *r, int64_t now_ms)
{
    assert(r->phase == PHASE_COMPARE || r->phase == PHASE_HEAD);
    range_fp_t *queue = r->queue.items;
    size_t n = r->queue.count < STATEMENT_RANGES_MAX ? r->queue.count : STATEMENT_RANGES_MAX;
    Corridor__RangeFingerprint ranges[STATEMENT_RANGES_MAX];
    Corridor__RangeFingerprint *ptrs[STATEMENT_RANGES_MAX];
    for (size_t i = 0; i < n; i++) {
        r->asked[i] = queue[r->queue.count - n + i];
        corridor__range_fingerprint__init(&ranges[i]);
        ranges[i].prefix = r->asked[i].prefix;
        ranges[i].count = r->asked[i].count;
        ranges[i].sum = (ProtobufCBinaryData){DIGEST_BYTES, r->asked[i].sum};
        ptrs[i] = &ranges[i];
    }
    r->asked_count = n;
    assert(n <= r->queue.count);
    r->queue.count -= n;
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
    req.n_ranges = n;
    req.ranges = ptrs;
    req.with_evidence = r->repair;
    r->cycles_asked = r->phase == PHASE_COMPARE && r->cycles_from != 0;
    req.cycles_from = r->cycles_asked ? r->cycles_from : 0;
    send_request(r, &req, now_ms);
}

static void send_checkpoint(recon_t *r, int64_t now_ms);

void recon_hold_sends(recon_t *r, bool held)
{
    assert(r != NULL);
    r->sends_held = held;
}

void recon_tick(recon_t *r, int64_t now_ms)
{
    assert_session(r);
    if (r->phase == PHASE_DONE) {
        return;
    }
    if (r->request_id[0] != '\0') {
        if (!r->request_due && now_ms - r->request_sent_ms >= RECON_RETRY_MS) { /* lost */
            r->request_due = true;
        }
        flush_request(r, now_ms);
        return;
    }
    if ((r->phase == PHASE_COMPARE && (r->queue.count > 0 || r->cycles_from != 0)) ||
        (r->phase == PHASE_HEAD && r->rounds == 0)) {
        send_compare(r, now_ms); /* for the head: a request of no ranges */
    } else if (r->phase == PHASE_CHECKPOINT && r->cut_retry_ms != 0 && now_ms >= r->cut_retry_ms) {
        r->cut_retry_ms = 0;
        send_checkpoint(r, now_ms);
    }
    assert_session(r);
}

/* ---- comparing -------------------------------------------------------------------------- */

static bool add_break(recon_t *r, const char *kind, bool figures, const statement_entry_t *local,
                      const statement_entry_t *peer)
{
    assert(kind != NULL && (local != NULL || peer != NULL));
    assert(local == NULL || peer == NULL || strcmp(local->uetr, peer->uetr) == 0);
    if (r->breaks.count >= RECON_BREAKS_MAX) {
        r->breaks_dropped++;
        return true;
    }
    break_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.uetr, sizeof b.uetr, "%s", local != NULL ? local->uetr : peer->uetr);
    b.kind = kind;
    b.figures = figures;
    b.has_local = local != NULL;
    b.has_peer = peer != NULL;
    if (local != NULL) {
        b.local = *local;
    }
    if (peer != NULL) {
        b.peer = *peer;
    }
    return vec_push(&r->breaks, &b, sizeof b);
}

/* Compares one entry both sides have; NULL when equal, else the break kind. A return on
 * either side (3.9) differs as return_mismatch, an FX leg on either side (3.10) as fx_mismatch,
 * in any field; *figures then says whether more than its status and reason differ (what the
 * signed evidence cannot settle). */
static const char *compare_entries(const statement_entry_t *a, const statement_entry_t *b,
                                   bool *figures)
{
    *figures = false;
    if (statement_entry_is_setoff_leg(a) || statement_entry_is_setoff_leg(b)) {
        /* a set-off leg (3.12.6) against anything: never repaired, so never `figures` */
        return strcmp(a->setoff_id, b->setoff_id) != 0 || strcmp(a->fx_id, b->fx_id) != 0 ||
                       strcmp(a->original_uetr, b->original_uetr) != 0 ||
                       strcmp(a->payer, b->payer) != 0 || strcmp(a->payee, b->payee) != 0 ||
                       a->amount_minor != b->amount_minor ||
                       strcmp(a->currency, b->currency) != 0 || strcmp(a->status, b->status) != 0 ||
                       strcmp(a->reason, b->reason) != 0
                   ? "setoff_mismatch"
                   : NULL;
    }
    if (statement_entry_is_fx_leg(a) || statement_entry_is_fx_leg(b)) {
        *figures = strcmp(a->payer, b->payer) != 0 || strcmp(a->payee, b->payee) != 0 ||
                   a->amount_minor != b->amount_minor || strcmp(a->currency, b->currency) != 0 ||
                   strcmp(a->fx_id, b->fx_id) != 0 ||
                   strcmp(a->original_uetr, b->original_uetr) != 0 ||
                   strcmp(a->return_reason, b->return_reason) != 0;
        return *figures || strcmp(a->status, b->status) != 0 || strcmp(a->reason, b->reason) != 0
                   ? "fx_mismatch"
                   : NULL;
    }
    if (statement_entry_is_return(a) || statement_entry_is_return(b)) {
        *figures = strcmp(a->payer, b->payer) != 0 || strcmp(a->payee, b->payee) != 0 ||
                   a->amount_minor != b->amount_minor || strcmp(a->currency, b->currency) != 0 ||
                   strcmp(a->original_uetr, b->original_uetr) != 0 ||
                   strcmp(a->return_reason, b->return_reason) != 0;
        return *figures || strcmp(a->status, b->status) != 0 || strcmp(a->reason, b->reason) != 0
                   ? "return_mismatch"
                   : NULL;
    }
    if (strcmp(a->payer, b->payer) != 0 || strcmp(a->payee, b->payee) != 0 ||
        a->amount_minor != b->amount_minor) {
        return "amount_mismatch";
    }
    if (strcmp(a->currency, b->currency) != 0) {
        return "currency_mismatch";
    }
    if (strcmp(a->status, b->status) != 0 || strcmp(a->reason, b->reason) != 0) {
        return "status_mismatch";
    }
    return NULL;
}

/* The kind of break of an entry only one side has: a set-off leg's, a return's or a trade
 * leg's, else the payment's `payment_kind`. */
static const char *missing_kind(const statement_entry_t *e, const char *payment_kind)
{
    return statement_entry_is_setoff_leg(e) ? "setoff_missing"
           : statement_entry_is_fx_leg(e)   ? "fx_leg_missing"
           : statement_entry_is_return(e)   ? "return_missing"
                                            : payment_kind;
}

static int by_uetr(const void *x, const void *y)
{
    return strcmp(((const statement_entry_t *)x)->uetr, ((const statement_entry_t *)y)->uetr);
}

static bool collect_entry(const statement_entry_t *e, void *arg)
{
    return vec_push(arg, e, sizeof *e);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Keeps what a repair needs of a break: the evidence of whichever side has it. */
static void plan_repair(recon_t *r, size_t index, const Corridor__StatementEntry *peer_proto)
{
    break_t *b = &((break_t *)r->breaks.items)[index];
    if (strcmp(b->kind, "setoff_missing") == 0 || strcmp(b->kind, "setoff_mismatch") == 0) {
        b->action = "not repaired: a set-off leg is opened by its relay and closed by its "
                    "set-off's decision only (3.12)";
        return;
    }
    if (strcmp(b->kind, "amount_mismatch") == 0 || strcmp(b->kind, "currency_mismatch") == 0) {
        b->action = "needs a person: both sides hold signed but different figures";
        return;
    }
    if (b->figures) {
        b->action = strcmp(b->kind, "fx_mismatch") == 0
                        ? "needs a person: both sides hold different figures for this trade leg"
                        : "needs a person: both sides hold different figures for this return";
        return;
    }
    bool local_final = b->has_local && strcmp(b->local.status, "pending") != 0;
    bool peer_final = b->has_peer && strcmp(b->peer.status, "pending") != 0;
    if ((b->has_local && strcmp(b->local.status, "returned") == 0) ||
        (b->has_peer && strcmp(b->peer.status, "returned") == 0)) {
        b->action = "needs a person: a returned payment is not repaired automatically";
        return;
    }
    if (b->has_local && b->has_peer && local_final && peer_final) {
        b->action = "needs a person: both sides hold different final outcomes";
        return;
    }
    import_t im;
    memset(&im, 0, sizeof im);
    im.break_index = index;
    bool here = !b->has_local || (peer_final && !local_final);
    if (here) {
        /* we import from the peer's evidence */
        if (peer_proto == NULL || peer_proto->settlement_evidence.len == 0) {
            b->action = "cannot repair: the peer sent no evidence";
            return;
        }
        im.entry = b->peer;
        im.settlement_len = peer_proto->settlement_evidence.len;
        im.settlement_evidence = malloc(im.settlement_len);
        im.status_len = peer_proto->status_evidence.len;
        im.status_evidence = im.status_len > 0 ? malloc(im.status_len) : NULL;
        if (im.settlement_evidence == NULL || (im.status_len > 0 && im.status_evidence == NULL)) {
            free(im.settlement_evidence);
            free(im.status_evidence);
            b->action = "cannot repair: out of memory";
            return;
        }
        memcpy(im.settlement_evidence, peer_proto->settlement_evidence.data, im.settlement_len);
        if (im.status_len > 0) {
            memcpy(im.status_evidence, peer_proto->status_evidence.data, im.status_len);
        }
        if (!vec_push(&r->local_imports, &im, sizeof im)) {
            free(im.settlement_evidence);
            free(im.status_evidence);
        }
        return;
    }
    /* the peer imports from ours */
    im.entry = b->local;
    if (statement_evidence(r->ctx.ledger, r->ctx.peer->card.name, b->uetr, &im.settlement_evidence,
                           &im.settlement_len, &im.status_evidence, &im.status_len) != LEDGER_OK ||
        im.settlement_len == 0) {
        free(im.settlement_evidence);
        free(im.status_evidence);
        b->action = "cannot repair: no evidence here";
        return;
    }

    if (!vec_push(&r->remote_imports, &im, sizeof im)) {
        free(im.settlement_evidence);
        free(im.status_evidence);
    }
}

/* The peer's entry proto for a UETR in this statement, or NULL. */
static const Corridor__StatementEntry *peer_proto_of(const Corridor__Statement *st,
                                                     const char *uetr)
{
    for (size_t i = 0; i < st->n_entries; i++) {
        if (st->entries[i]->uetr != NULL && strcmp(st->entries[i]->uetr, uetr) == 0) {
            return st->entries[i];
        }
    }
    return NULL;
}

/* Compares one leaf: every entry both sides have under the prefix. */
static ledger_err_t compare_leaf(recon_t *r, const char *prefix, const Corridor__Statement *st)
{
    vec_t mine = {0}, theirs = {0};
    ledger_err_t rc =
        statement_entries(r->ctx.ledger, r->ctx.peer->card.name, prefix, collect_entry, &mine);
    for (size_t i = 0; rc == LEDGER_OK && i < st->n_entries; i++) {
        statement_entry_t e;
        if (statement_entry_from_proto(st->entries[i], &e) && has_prefix(e.uetr, prefix) &&
            !vec_push(&theirs, &e, sizeof e)) {
            rc = LEDGER_E_STORAGE;
        }
    }
    if (rc == LEDGER_OK) {
        statement_entry_t *a = mine.items, *b = theirs.items;
        if (theirs.count > 1) {
            qsort(b, theirs.count, sizeof *b, by_uetr);
        }
        size_t i = 0, j = 0;
        while (i < mine.count || j < theirs.count) {
            int cmp = i == mine.count ? 1 : j == theirs.count ? -1 : strcmp(a[i].uetr, b[j].uetr);
            size_t before = r->breaks.count;
            if (cmp < 0) {
                add_break(r, missing_kind(&a[i], "missing_at_peer"), false, &a[i], NULL);
                i++;
            } else if (cmp > 0) {
                add_break(r, missing_kind(&b[j], "missing_local"), false, NULL, &b[j]);
                j++;
            } else {
                bool figures = false;
                const char *kind = compare_entries(&a[i], &b[j], &figures);
                if (kind != NULL) {
                    add_break(r, kind, figures, &a[i], &b[j]);
                } else {
                    r->matched++;
                }
                i++;
                j++;
            }
            if (r->repair && r->breaks.count > before) {
                const break_t *added = &((break_t *)r->breaks.items)[before];
                plan_repair(r, before, peer_proto_of(st, added->uetr));
            }
        }
    }
    free(mine.items);
    free(theirs.items);
    return rc;
}

static bool is_leaf(const Corridor__Statement *st, const char *prefix)
{
    for (size_t i = 0; i < st->n_leaves; i++) {
        if (st->leaves[i] != NULL && strcmp(st->leaves[i], prefix) == 0) {
            return true;
        }
    }
    return false;
}

/* The peer's sub-range fingerprints of prefix, by digit; false if it sent none. */
static bool peer_children(const Corridor__Statement *st, const char *prefix,
                          const Corridor__RangeFingerprint *out[16])
{
    size_t len = strlen(prefix);
    bool any = false;
    memset(out, 0, 16 * sizeof *out);
    for (size_t i = 0; i < st->n_ranges; i++) {
        const Corridor__RangeFingerprint *fp = st->ranges[i];
        if (fp->prefix == NULL || strlen(fp->prefix) != len + 1 ||
            !has_prefix(fp->prefix, prefix)) {
            continue;
        }
        const char *at = strchr("0123456789abcdef", fp->prefix[len]);
        if (at != NULL && fp->prefix[len] != '\0') {
            out[at - "0123456789abcdef"] = fp;
            any = true;
        }
    }
    return any;
}

static ledger_err_t compare_children(recon_t *r, const range_fp_t *asked,
                                     const Corridor__RangeFingerprint *theirs[16])
{
    range_fp_t mine[16];
    ledger_err_t rc =
        statement_children(r->ctx.ledger, r->ctx.peer->card.name, asked->prefix, mine);
    for (int d = 0; rc == LEDGER_OK && d < 16; d++) {
        const Corridor__RangeFingerprint *t = theirs[d];
        uint64_t their_count = t != NULL ? t->count : 0;
        bool equal = mine[d].count == their_count &&
                     (their_count == 0 || (t->sum.len == DIGEST_BYTES &&
                                           memcmp(mine[d].sum, t->sum.data, DIGEST_BYTES) == 0));
        if (equal) {
            r->matched += mine[d].count;
        } else if (!vec_push(&r->queue, &mine[d], sizeof mine[d])) {
            rc = LEDGER_E_STORAGE;
        }
    }
    return rc;
}

/* Keeps the peer's positions, head and counters from its latest statement. */
static void note_statement(recon_t *r, const Corridor__Statement *st)
{
    json_object_clear(r->peer_positions);
    for (size_t i = 0; i < st->n_positions; i++) {
        if (st->positions[i]->currency != NULL) {
            json_object_set_new(r->peer_positions, st->positions[i]->currency,
                                json_integer(st->positions[i]->net_minor));
        }
    }
    free(r->last.journal_head.data);
    r->last.journal_head = (ProtobufCBinaryData){0, NULL};
    if (st->journal_head.len == LEDGER_HASH_BYTES) {
        r->last.journal_head.data = malloc(LEDGER_HASH_BYTES);
        if (r->last.journal_head.data != NULL) {
            memcpy(r->last.journal_head.data, st->journal_head.data, LEDGER_HASH_BYTES);
            r->last.journal_head.len = LEDGER_HASH_BYTES;
        }
    }
    r->last.journal_rows = st->journal_rows;
    r->last.entry_count = st->entry_count;
    r->last.sent_sequence = st->sent_sequence;
    r->last.applied_sequence = st->applied_sequence;
}

static void collect_own_position(const ledger_position_t *p, void *arg)
{
    recon_t *r = arg;
    if (strcmp(p->peer, r->ctx.peer->card.name) != 0) {
        return;
    }
    json_t *theirs = json_object_get(r->peer_positions, p->currency);
    int64_t peer_net = theirs != NULL ? json_integer_value(theirs) : 0;
    if (!position_mirrors(p->net_minor, peer_net)) {
        r->positions_agree = false;
    }
}

static void check_positions(recon_t *r)
{
    r->positions_agree = true;
    if (ledger_positions(r->ctx.ledger, collect_own_position, r) != LEDGER_OK) {
        r->positions_agree = false;
    }
    /* a currency only the peer has a position in must be zero there */
    const char *ccy;
    json_t *v;
    json_object_foreach(r->peer_positions, ccy, v)
    {
        int64_t net = 0, pending = 0;
        if (ledger_position(r->ctx.ledger, r->ctx.peer->card.name, ccy, &net, &pending) !=
                LEDGER_OK ||
            !position_mirrors(net, json_integer_value(v))) {
            r->positions_agree = false;
        }
    }
}

/* ---- repairing -------------------------------------------------------------------------- */

/* Whether a version-2 StatusReport names the hash of exactly this Settlement's body. */
static bool answers_body(const Corridor__StatusReport *sr, const envelope_message_t *settlement)
{
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(settlement->body, settlement->body_len, hash);
    return sr->settlement_hash.len == sizeof hash &&
           sodium_memcmp(sr->settlement_hash.data, hash, sizeof hash) == 0;
}

/* The signing keys one end of the channel has used, as this node knows them: those of the
 * channel's key history, each for the numbers of its range (PROTOCOL.md 2.14), and, for any
 * number, those it holds without a history: ours now and before our last rotation, or the
 * peer's now, before its last rotation, and on its card. Evidence names its author's key id,
 * and a sequenced message signed outside its key's range proves nothing here (a thief of a
 * retired key cannot have it imported), as in the envelope and the audit. */
#define KEYSET_MAX (CHANNEL_KEYS_MAX + 4)

typedef struct {
    uint8_t keys[KEYSET_MAX][crypto_sign_PUBLICKEYBYTES];
    uint64_t from[KEYSET_MAX], through[KEYSET_MAX]; /* the range; through 0: open */
    size_t count;
    key_side_t side; /* while reading the history: the side collected */
} keyset_t;

static void keyset_add_range(keyset_t *ks, const uint8_t *sign_public, uint64_t from,
                             uint64_t through)
{
    for (size_t i = 0; i < ks->count; i++) {
        if (memcmp(ks->keys[i], sign_public, crypto_sign_PUBLICKEYBYTES) == 0) {
            return; /* the history's range, read first, stands */
        }
    }
    if (ks->count < KEYSET_MAX) { /* a longer history than announcements can make: ignored */
        memcpy(ks->keys[ks->count], sign_public, crypto_sign_PUBLICKEYBYTES);
        ks->from[ks->count] = from;
        ks->through[ks->count] = through;
        ks->count++;
    }
}

static void keyset_add(keyset_t *ks, const uint8_t *sign_public)
{
    keyset_add_range(ks, sign_public, 0, 0);
}

static void keyset_add_recorded(const key_record_t *k, void *arg)
{
    keyset_t *ks = arg;
    if (k->side != ks->side) {
        return;
    }
    uint64_t from = k->first_seq, through = k->last_seq;
    if (k->revoked_from != 0 && (through == 0 || k->revoked_from <= through)) {
        through = k->revoked_from - 1;
        if (through < from) {
            from = through = UINT64_MAX; /* revoked from its first number: it signs none */
        }
    }
    keyset_add_range(ks, k->sign_public, from, through);
}

/* The keys of `node` (this node or the peer); count 0 for another node. */
static void keys_of(const recon_ctx_t *ctx, const char *node, keyset_t *ks)
{
    ks->count = 0;
    bool ours = strcmp(node, ledger_node(ctx->ledger)) == 0;
    if (ours || strcmp(node, ctx->peer->card.name) == 0) {
        ks->side = ours ? KEY_SIDE_OURS : KEY_SIDE_THEIRS;
        if (ledger_keys(ctx->ledger, ctx->peer->card.name, keyset_add_recorded, ks) != LEDGER_OK) {
            ks->count = 0; /* unreadable: only the keys held in memory below */
        }
    }
    if (ours) {
        keyset_add(ks, ctx->self->sign_public);
        if (ctx->self_previous != NULL) {
            keyset_add(ks, ctx->self_previous->sign_public);
        }
    } else if (strcmp(node, ctx->peer->card.name) == 0) {
        if (ctx->keys != NULL) {
            keyset_add(ks, ctx->keys->sign_public);
            if (ctx->keys->previous_through != 0) {
                keyset_add(ks, ctx->keys->previous_sign_public);
            }
        }
        keyset_add(ks, ctx->peer->card.sign_public);
    }
}

static bool keyset_has_id(const keyset_t *ks, const uint8_t *key_id)
{
    for (size_t i = 0; i < ks->count; i++) {
        uint8_t id[IDENTITY_KEY_ID_BYTES];
        identity_key_id(ks->keys[i], id);
        if (sodium_memcmp(id, key_id, sizeof id) == 0) {
            return true;
        }
    }
    return false;
}

/* Verifies evidence with the key of the set its author key id names. */
static env_err_t keyset_verify(const keyset_t *ks, const uint8_t *evidence, size_t len,
                               envelope_message_t *msg)
{
    memset(msg, 0, sizeof *msg);
    uint8_t author[IDENTITY_KEY_ID_BYTES];
    env_err_t rc = evidence_author(evidence, len, author);
    for (size_t i = 0; rc == ENV_OK && i < ks->count; i++) {
        uint8_t id[IDENTITY_KEY_ID_BYTES];
        identity_key_id(ks->keys[i], id);
        if (sodium_memcmp(id, author, sizeof id) != 0) {
            continue;
        }
        if ((rc = evidence_verify(evidence, len, ks->keys[i], msg)) != ENV_OK) {
            return rc;
        }
        if (msg_type_sequenced((int)msg->type) && msg->sequence != 0 &&
            (msg->sequence < ks->from[i] ||
             (ks->through[i] != 0 && msg->sequence > ks->through[i]))) {
            envelope_message_clear(msg);
            return ENV_E_STALE_KEY;
        }
        return ENV_OK;
    }
    return rc == ENV_OK ? ENV_E_BAD_SIGNATURE : rc;
}

/* Whether one of the keys of `node` signed a checkpoint (which names no key id). */
static bool keyset_signed_checkpoint(const keyset_t *ks, const uint8_t *body, size_t body_len,
                                     const uint8_t *signature)
{
    for (size_t i = 0; i < ks->count; i++) {
        if (checkpoint_verify(body, body_len, signature, ks->keys[i])) {
            return true;
        }
    }
    return false;
}

/* The answer `tev` shown for an import: a StatusReport signed by the answerer, to the asker, naming
 * `id` (a payment's or return's UETR, or a trade's id) and, in version 2, the body of `opening`;
 * final (a DUPL answers a copy, not the entry). NULL with its status, reason and sequence, or
 * why it proves nothing. */
static const char *verify_answer(const keyset_t *answerer, const keyset_t *asker,
                                 const uint8_t *tev, size_t tev_len, const char *id,
                                 const envelope_message_t *opening, bool trade, status_t *status,
                                 bool *bound, char reason[static CORRIDOR_REASON_LEN_MAX + 1],
                                 uint64_t *status_seq)
{
    envelope_message_t sr_msg;
    if (keyset_verify(answerer, tev, tev_len, &sr_msg) != ENV_OK) {
        return trade ? "the StatusReport evidence does not verify with the acceptor's key"
                     : "the StatusReport evidence does not verify with the payee's key";
    }
    *status_seq = sr_msg.sequence;
    Corridor__StatusReport *sr = NULL;
    const char *problem = NULL;
    if (sr_msg.type != MSG_STATUS_REPORT || !keyset_has_id(asker, sr_msg.recipient_key_id) ||
        (sr = (Corridor__StatusReport *)wire_unpack(&corridor__status_report__descriptor,
                                                    sr_msg.body_len, sr_msg.body)) == NULL ||
        strcmp(sr->uetr, id) != 0) {
        problem = trade ? "the StatusReport evidence is not about this trade"
                        : "the StatusReport evidence is not about this entry";
    } else if (sr_msg.version >= 2 && !answers_body(sr, opening)) {
        problem = trade ? "the StatusReport evidence answers another FxProposal under this trade id"
                        : "the StatusReport evidence answers other contents under this UETR";
    } else if (strcmp(sr->status, "RJCT") == 0 &&
               strcmp(sr->reason, reason_code(REASON_DUPLICATE)) == 0) {
        problem = "a DUPL rejection answers a copy, not the entry: no evidence for an import";
    } else if (strcmp(sr->status, "ACSC") == 0) {
        *status = STATUS_SETTLED;
        *bound = sr_msg.version >= 2;
        reason[0] = '\0';
    } else if (strcmp(sr->status, "RJCT") == 0 && reason_code_check(sr->reason) == VALID_OK) {
        *status = STATUS_REJECTED;
        *bound = sr_msg.version >= 2;
        snprintf(reason, CORRIDOR_REASON_LEN_MAX + 1, "%s", sr->reason);
    } else {
        problem = "the StatusReport evidence has no final status";
    }
    corridor__status_report__free_unpacked(sr, NULL);
    envelope_message_clear(&sr_msg);
    return problem;
}

/* Verifies an entry's evidence and derives what to record. NULL or why it cannot. *bound
 * tells whether the StatusReport names the hash of exactly this Settlement's body (version 2):
 * only such a report may justify booking an entry this node lacks. A version-1 report (no
 * hash) may still resolve the payer's own pending entry, as it would on arrival. */
static const char *verify_import(const recon_ctx_t *ctx, const statement_entry_t *e,
                                 const uint8_t *sev, size_t sev_len, const uint8_t *tev,
                                 size_t tev_len, settlement_t *s, bool *has_status, bool *bound,
                                 status_t *status, char reason[static CORRIDOR_REASON_LEN_MAX + 1],
                                 envelope_message_t *settlement_msg, uint64_t *status_seq)
{
    *bound = false;
    const char *self = ledger_node(ctx->ledger);
    const char *peer = ctx->peer->card.name;
    keyset_t payer_keys, payee_keys;
    keys_of(ctx, e->payer, &payer_keys);
    keys_of(ctx, e->payee, &payee_keys);
    if (payer_keys.count == 0 || payee_keys.count == 0 || strcmp(e->payer, e->payee) == 0) {
        return "the entry is not between this node and the peer";
    }
    /* a return (3.9) is opened by the returner's Return, a payment by its payer's Settlement */
    bool is_return = statement_entry_is_return(e);
    if (keyset_verify(&payer_keys, sev, sev_len, settlement_msg) != ENV_OK ||
        settlement_msg->type != (is_return ? MSG_RETURN : MSG_SETTLEMENT)) {
        return is_return ? "the Return evidence does not verify with the returner's key"
                         : "the Settlement evidence does not verify with the payer's key";
    }
    direction_t dir = strcmp(e->payer, self) == 0 ? DIRECTION_OUT : DIRECTION_IN;
    /* a Settlement its payee rejected for its content (FF01, AM12...) decodes only in part */
    bool decoded =
        (is_return ? return_decode(settlement_msg->body, settlement_msg->body_len, peer, dir, s)
                   : settlement_decode(settlement_msg->body, settlement_msg->body_len, peer, dir,
                                       s)) == REASON_NONE;
    bool valid = decoded && (is_return ? return_check(s) : settlement_check(s)) == REASON_NONE;
    if (is_return && !valid) {
        /* kept as the payer keeps a malformed return it refused (channel.c, apply_return) */
        if (uetr_check(s->original_uetr) != VALID_OK) {
            snprintf(s->original_uetr, sizeof s->original_uetr, "-");
        }
        if (reason_code_check(s->return_reason) != VALID_OK) {
            s->return_reason[0] = '\0';
        }
    }
    if (!keyset_has_id(&payee_keys, settlement_msg->recipient_key_id) ||
        uetr_check(s->uetr) != VALID_OK || strcmp(s->uetr, e->uetr) != 0 ||
        s->amount_minor != e->amount_minor || strcmp(s->currency, e->currency) != 0 ||
        strcmp(s->original_uetr, e->original_uetr) != 0 ||
        strcmp(s->return_reason, e->return_reason) != 0) {
        return is_return ? "the Return evidence does not say what the entry says"
                         : "the Settlement evidence does not say what the entry says";
    }
    *has_status = tev_len > 0;
    if (!valid && !(*has_status && strcmp(e->status, "rejected") == 0)) {
        return is_return ? "the Return is invalid and no rejection of it is shown"
                         : "the Settlement is invalid and no rejection of it is shown";
    }
    if (!*has_status) {
        return NULL;
    }
    return verify_answer(&payee_keys, &payer_keys, tev, tev_len, e->uetr, settlement_msg, false,
                         status, bound, reason, status_seq);
}

/* A return is imported only beside the payment it returns (3.9): a payment of ours to the peer
 * when the peer returns it, one of the peer's to us when we do, in the same currency. NULL
 * when it is here, else why the break is left for a person (*rc a storage error, if any). */
static const char *return_original_problem(ledger_t *l, const settlement_t *r, ledger_err_t *rc)
{
    settlement_t original;
    ledger_outcome_t out;
    *rc = uetr_check(r->original_uetr) == VALID_OK
              ? ledger_find(l, r->peer, r->original_uetr, &original, &out)
              : LEDGER_E_NOT_FOUND;
    if (*rc == LEDGER_E_NOT_FOUND) {
        *rc = LEDGER_OK;
        return "the payment this return names is not in our books: left for a person";
    }
    if (*rc != LEDGER_OK) {
        return ledger_strerror(*rc);
    }
    if (settlement_is_return(&original) || original.direction == r->direction ||
        strcmp(original.currency, r->currency) != 0) {
        return "the payment this return names is not one the other way in its currency: left "
               "for a person";
    }
    return NULL;
}

/* Verifies the evidence of an FX leg (3.10): its trade's FxProposal, signed by the proposer
 * (either node, whoever pays the leg) to the other, and, if any, the acceptor's StatusReport
 * naming the trade and, in version 2, the FxProposal's body hash (*bound). Fills the trade as
 * this node would record it (legs going the FxProposal's way from here). NULL or why not. */
static const char *verify_fx_import(const recon_ctx_t *ctx, const statement_entry_t *e,
                                    const uint8_t *sev, size_t sev_len, const uint8_t *tev,
                                    size_t tev_len, fx_trade_t *t, bool *has_status, bool *bound,
                                    status_t *status,
                                    char reason[static CORRIDOR_REASON_LEN_MAX + 1],
                                    envelope_message_t *fx_msg, uint64_t *status_seq)
{
    *bound = *has_status = false;
    memset(t, 0, sizeof *t);
    const char *self = ledger_node(ctx->ledger);
    const char *peer = ctx->peer->card.name;
    keyset_t ours, theirs;
    keys_of(ctx, self, &ours);
    keys_of(ctx, peer, &theirs);
    bool we_pay = strcmp(e->payer, self) == 0 && strcmp(e->payee, peer) == 0;
    if (!we_pay && !(strcmp(e->payer, peer) == 0 && strcmp(e->payee, self) == 0)) {
        return "the entry is not between this node and the peer";
    }
    /* the proposer signed it: the peer (it came in) or this node (it went out) */
    direction_t dir = DIRECTION_IN;
    const keyset_t *proposer = &theirs, *acceptor = &ours;
    if (keyset_verify(&theirs, sev, sev_len, fx_msg) != ENV_OK) {
        dir = DIRECTION_OUT;
        proposer = &ours;
        acceptor = &theirs;
        if (keyset_verify(&ours, sev, sev_len, fx_msg) != ENV_OK) {
            return "the FxProposal evidence does not verify with the key of either node";
        }
    }
    if (fx_msg->type != MSG_FX_PROPOSAL) {
        return "the evidence of a trade leg is not an FxProposal";
    }
    /* a proposal its acceptor refused for its content (FF01, AM12...) decodes only in part */
    bool decoded = fx_decode(fx_msg->body, fx_msg->body_len, peer, dir, t) == REASON_NONE;
    bool valid = decoded && fx_check(t) == REASON_NONE;
    int k = strcmp(t->legs[FX_PAY].uetr, e->uetr) == 0       ? FX_PAY
            : strcmp(t->legs[FX_RECEIVE].uetr, e->uetr) == 0 ? FX_RECEIVE
                                                             : -1;
    /* the trade as the acceptor keys it (one it answered without recording is no import) */
    bool keyed = fx_keyed(t, fx_msg->version);
    if (!keyset_has_id(acceptor, fx_msg->recipient_key_id) || !keyed || k < 0 ||
        strcmp(t->fx_id, e->fx_id) != 0 || t->legs[k].amount_minor != e->amount_minor ||
        strcmp(t->legs[k].currency, e->currency) != 0 ||
        (settlement_money_direction(&t->legs[k]) == DIRECTION_OUT) != we_pay) {
        return "the FxProposal evidence does not say what the entry says";
    }
    *has_status = tev_len > 0;
    if (!valid && !(*has_status && strcmp(e->status, "rejected") == 0)) {
        return "the FxProposal is invalid and no rejection of it is shown";
    }
    if (!*has_status) {
        return NULL;
    }
    return verify_answer(acceptor, proposer, tev, tev_len, t->fx_id, fx_msg, true, status, bound,
                         reason, status_seq);
}

/* Whether the channel holds a leg's UETR as anything but a leg of trade `fx_id`. */
static bool leg_taken(ledger_t *l, const char *peer, const char *uetr)
{
    settlement_t s;
    ledger_outcome_t out;
    return ledger_find(l, peer, uetr, &s, &out) == LEDGER_OK;
}

/* apply_import for an FX leg: the whole trade, both legs or neither (3.10, 4.9). A trade we
 * lack is imported from its FxProposal and the acceptor's bound StatusReport
 * (ledger_fx_import), or, proposed by the peer and undecided, applied as if it had just
 * arrived; legs pending here that the report decides are resolved both; a trade held here as
 * one leg, or as another trade, is left for a person. The other leg's import then finds the
 * trade known and does nothing. */
static const char *apply_fx_import(const recon_ctx_t *ctx, const statement_entry_t *e,
                                   const uint8_t *sev, size_t sev_len, const uint8_t *tev,
                                   size_t tev_len, ledger_err_t *storage)
{
    fx_trade_t t;
    bool has_status = false, bound = false;
    status_t status = STATUS_PENDING;
    char reason[CORRIDOR_REASON_LEN_MAX + 1] = "";
    envelope_message_t msg;
    memset(&msg, 0, sizeof msg);
    uint64_t status_seq = 0;
    const char *problem = verify_fx_import(ctx, e, sev, sev_len, tev, tev_len, &t, &has_status,
                                           &bound, &status, reason, &msg, &status_seq);
    ledger_t *l = ctx->ledger;
    const char *peer = ctx->peer->card.name;
    ledger_channel_t ch;
    memset(&ch, 0, sizeof ch);
    ledger_err_t rc = LEDGER_OK;
    if (problem == NULL && (rc = ledger_channel_get(l, peer, &ch)) != LEDGER_OK) {
        problem = ledger_strerror(rc);
    }
    /* the sequence caps of apply_import: the peer's FxProposal, or its answer to ours */
    uint64_t in_flight_max = ch.applied_seq + CHANNEL_WINDOW;
    direction_t dir = t.legs[FX_PAY].direction;
    uint64_t proposal_seq = msg.sequence;
    if (dir == DIRECTION_IN && proposal_seq > in_flight_max) {
        proposal_seq = in_flight_max;
    }
    if (dir == DIRECTION_OUT && status_seq > in_flight_max) {
        status_seq = in_flight_max;
    }
    settlement_t legs[2];
    ledger_outcome_t out;
    memset(&out, 0, sizeof out);
    bool known = false;
    if (problem == NULL) {
        rc = ledger_fx_find(l, peer, t.fx_id, legs, &out);
        known = rc == LEDGER_OK;
        if (rc == LEDGER_E_CORRUPT) {
            problem = "this node holds the trade other than as its two legs: left for a person";
            rc = LEDGER_OK;
        } else if (rc == LEDGER_E_NOT_FOUND) {
            rc = LEDGER_OK;
            if (leg_taken(l, peer, t.legs[0].uetr) || leg_taken(l, peer, t.legs[1].uetr) ||
                leg_taken(l, peer, t.fx_id)) {
                problem = "a UETR of the trade is used here by something else: left for a person";
            }
        } else if (rc == LEDGER_OK &&
                   (legs[0].direction != dir || strcmp(legs[0].uetr, t.legs[0].uetr) != 0 ||
                    strcmp(legs[1].uetr, t.legs[1].uetr) != 0)) {
            problem = "this node holds another trade under this id: left for a person";
        }
    }
    if (problem == NULL && rc == LEDGER_OK) {
        if (known && dir == DIRECTION_OUT && has_status && !bound) {
            problem = "a version-1 StatusReport names no FxProposal: left for a person";
        } else if (known && dir == DIRECTION_OUT && has_status) {
            /* both legs or neither (ledger_fx_resolve checks both before writing either) */
            uint8_t answers[SETTLEMENT_HASH_BYTES];
            settlement_body_hash(msg.body, msg.body_len, answers);
            rc = ledger_fx_resolve(l, peer, t.fx_id, answers, status,
                                   status == STATUS_SETTLED ? NULL : reason, tev, tev_len,
                                   status_seq, &out);
            if (rc == LEDGER_E_CONFLICT || rc == LEDGER_E_STATE || rc == LEDGER_E_CORRUPT) {
                problem = "the peer's answer is to another FxProposal of ours with this id, or "
                          "decides otherwise: left to the stream or a person";
                rc = LEDGER_OK;
            }
        } else if (known && dir == DIRECTION_IN && has_status && bound &&
                   out.status == STATUS_HELD) {
            /* we hold the trade, the peer shows our own answer deciding it (3.8.3) */
            const char *why = status == STATUS_SETTLED ? NULL : reason;
            for (int i = 0; rc == LEDGER_OK && i < 2; i++) {
                rc = ledger_decide_held_fits(l, &legs[i], why == NULL);
            }
            for (int i = 0; rc == LEDGER_OK && i < 2; i++) {
                rc = ledger_decide_held(l, peer, legs[i].uetr, why, tev, tev_len, NULL, status_seq,
                                        &out);
            }
            if (rc == LEDGER_E_OVERFLOW) {
                problem = "our answer cannot be booked: a balance would overflow";
                rc = LEDGER_OK;
            }
        } else if (known && dir == DIRECTION_IN && has_status &&
                   status_canonical(out.status) != status) {
            problem = "we hold the trade with another status than our answer the peer shows: "
                      "left for a person";
        } else if (!known && has_status && !bound) {
            problem = "a version-1 StatusReport names no FxProposal: no evidence for an import, "
                      "left for a person";
        } else if (!known && has_status) {
            rc = ledger_fx_import(l, t.legs, status, reason, sev, sev_len, proposal_seq, tev,
                                  tev_len, status_seq);
        } else if (!known && dir == DIRECTION_IN) {
            msg.sequence = proposal_seq; /* still undecided at the proposer */
            rc = channel_apply_message(ctx->channel, &msg);
        } else if (!known) {
            problem = "our own FxProposal without the peer's answer: nothing to import";
        }
    }
    if (rc != LEDGER_OK && problem == NULL) {
        problem = ledger_strerror(rc);
    }
    envelope_message_clear(&msg);
    *storage = rc == LEDGER_E_STORAGE || rc == LEDGER_E_STOPPED ? rc : LEDGER_OK;
    return problem;
}

/* Applies one import here (inside the transaction). Returns NULL or why it could not. */
static const char *apply_import(const recon_ctx_t *ctx, const statement_entry_t *e,
                                const uint8_t *sev, size_t sev_len, const uint8_t *tev,
                                size_t tev_len, ledger_err_t *storage)
{
    assert(ctx != NULL && e != NULL && storage != NULL && (sev != NULL || sev_len == 0) &&
           (tev != NULL || tev_len == 0));
    if (statement_entry_is_setoff_leg(e)) {
        return "a set-off leg is never imported (3.12)";
    }
    if (statement_entry_is_fx_leg(e)) {
        return apply_fx_import(ctx, e, sev, sev_len, tev, tev_len, storage);
    }
    settlement_t s;
    bool has_status = false, bound = false;
    status_t status = STATUS_PENDING;
    char reason[CORRIDOR_REASON_LEN_MAX + 1] = "";
    envelope_message_t msg;
    memset(&msg, 0, sizeof msg);
    uint64_t status_seq = 0;
    const char *problem = verify_import(ctx, e, sev, sev_len, tev, tev_len, &s, &has_status, &bound,
                                        &status, reason, &msg, &status_seq);
    ledger_t *l = ctx->ledger;
    ledger_outcome_t out;
    ledger_channel_t ch;
    memset(&ch, 0, sizeof ch);
    ledger_err_t rc = LEDGER_OK;
    if (problem == NULL && (rc = ledger_channel_get(l, ctx->peer->card.name, &ch)) != LEDGER_OK) {
        problem = ledger_strerror(rc);
    }
    /* An import keeps the sequences its evidence was signed with, so that both sides place it
     * alike at a cut. The peer may sign its message again under any number, though: one above
     * what it could have had in flight to us (our applied sequence plus the window) is taken
     * as that bound, so no import stays above every cut for ever. */
    uint64_t in_flight_max = ch.applied_seq + CHANNEL_WINDOW;
    uint64_t settlement_seq = msg.sequence;
    if (s.direction == DIRECTION_IN && settlement_seq > in_flight_max) {
        settlement_seq = in_flight_max;
    }
    if (s.direction == DIRECTION_OUT && status_seq > in_flight_max) {
        status_seq = in_flight_max;
    }
    if (problem == NULL && settlement_is_return(&s)) {
        problem = return_original_problem(l, &s, &rc);
    }
    if (problem == NULL) {
        bool known = ledger_find(l, s.peer, s.uetr, NULL, &out) == LEDGER_OK;
        if (s.direction == DIRECTION_OUT && known && has_status) {
            /* a bound report resolves only the Settlement it answers: ours may be another one
             * of the same UETR (sent again after a restore from a backup), which the peer will
             * answer on the stream */
            uint8_t answers[SETTLEMENT_HASH_BYTES];
            if (bound) {
                settlement_body_hash(msg.body, msg.body_len, answers);
            }
            rc = ledger_resolve_answering(l, s.peer, s.uetr, bound ? answers : NULL,
                                          status == STATUS_SETTLED, reason, tev, tev_len,
                                          status_seq, &out);
            if (rc == LEDGER_E_CONFLICT) {
                problem = "the peer's answer is to another Settlement of ours with this UETR, or "
                          "decides otherwise: left to the stream or a person";
                rc = LEDGER_OK;
            }
        } else if (s.direction == DIRECTION_IN && known && has_status && bound &&
                   out.status == STATUS_HELD) {
            /* we hold it, but the peer shows our own signed answer deciding it: we were put
             * back from a copy older than that decision (3.8.3), which is booked now */
            rc = ledger_decide_held(l, s.peer, s.uetr, status == STATUS_SETTLED ? NULL : reason,
                                    tev, tev_len, NULL, status_seq, &out);
            if (rc == LEDGER_E_OVERFLOW) {
                problem = "our answer cannot be booked: a balance would overflow";
                rc = LEDGER_OK;
            }
        } else if (s.direction == DIRECTION_IN && known && has_status &&
                   status_canonical(out.status) != status &&
                   !(out.status == STATUS_RETURNED && status == STATUS_SETTLED)) {
            problem = "we hold it with another status than our answer the peer shows: left for a "
                      "person";
        } else if (!known && has_status && !bound) {
            problem = "a version-1 StatusReport names no Settlement contents: no evidence for an "
                      "import, left for a person";
        } else if (!known && has_status) {
            /* an accepted return counts against its payment here as it did where it was
             * decided: with what this side already holds accepted or pending of it (a return
             * made after a restore from a backup, say) it must stay within the payment (3.9) */
            const char *over = NULL;
            if (settlement_is_return(&s) && status == STATUS_SETTLED) {
                rc = ledger_return_check(l, &s, &over);
            }
            if (rc == LEDGER_OK && over != NULL) {
                problem = "with the returns of its payment we hold accepted or pending, this "
                          "accepted return would exceed the payment: left for a person";
            } else if (rc == LEDGER_OK) {
                rc = ledger_import(l, &s, status, reason, sev, sev_len, settlement_seq, tev,
                                   tev_len, status_seq);
            }
        } else if (!known && s.direction == DIRECTION_IN) {
            msg.sequence = settlement_seq; /* still pending at the payer */
            rc = channel_apply_message(ctx->channel, &msg);
        } else if (!known) {
            problem = "our own Settlement without the peer's answer: nothing to import";
        }
        if (rc != LEDGER_OK && problem == NULL) {
            problem = ledger_strerror(rc);
        }
    }
    envelope_message_clear(&msg);
    *storage = rc == LEDGER_E_STORAGE || rc == LEDGER_E_STOPPED ? rc : LEDGER_OK;
    return problem;
}

/* How far the peer proves it applied our stream: the sequence of `proof`, our own signed
 * business message to it, as it kept it; 0 without a proof. *problem says why a proof that
 * was sent does not count. A peer's bare claim about our numbers proves nothing. */
static uint64_t proven_applied(const recon_ctx_t *ctx, const uint8_t *proof, size_t proof_len,
                               const char **problem)
{
    *problem = NULL;
    if (proof_len == 0) {
        return 0;
    }
    envelope_message_t msg;
    keyset_t ours, theirs;
    keys_of(ctx, ledger_node(ctx->ledger), &ours);
    keys_of(ctx, ctx->peer->card.name, &theirs);
    uint64_t proven = 0;
    if (keyset_verify(&ours, proof, proof_len, &msg) != ENV_OK) {
        *problem = "the proof of what was applied is not a message this node signed";
    } else if (!keyset_has_id(&theirs, msg.recipient_key_id) ||
               !msg_type_sequenced((int)msg.type) || msg.sequence == 0) {
        *problem = "the proof of what was applied is not a sequenced message to the peer";
    } else {
        proven = msg.sequence;
    }
    envelope_message_clear(&msg);
    return proven;
}

/* The sequence of our own proof of what we applied of the peer's stream (its signed message we
 * keep with applied_seq), 0 when there is none or it does not verify. */
static uint64_t own_proven(const recon_ctx_t *ctx, const uint8_t *proof, size_t proof_len)
{
    envelope_message_t msg;
    uint64_t seq = 0;
    keyset_t theirs;
    keys_of(ctx, ctx->peer->card.name, &theirs);
    if (proof_len > 0 && keyset_verify(&theirs, proof, proof_len, &msg) == ENV_OK) {
        seq = msg.sequence;
        envelope_message_clear(&msg);
    }
    return seq;
}

/* The re-base, the same on both sides, on proofs alone. `proof` is the peer's: our own signed
 * message of the highest sequence it applied. Our stream continues above both what we sent
 * and that sequence (a restored node never reuses a number the peer applied); acknowledged
 * becomes exactly that sequence, so what the peer lost or what was held while the channel was
 * diverged is sent again. Of the peer's stream we keep as applied only what our own proof
 * shows (the one we send the peer), so the peer resumes right after it; whatever we applied
 * beyond it comes again and is applied idempotently (by UETR).
 * Outside DIVERGED (`full` false: a request from a peer whose own channel diverged) the proof
 * only moves counters forward, and a re-base that changes nothing writes nothing: a peer
 * cannot make us send everything again, or fill the journal, by asking repeatedly. */
static ledger_err_t rebase(const recon_ctx_t *ctx, bool full, const uint8_t *proof,
                           size_t proof_len, ledger_channel_t *before, const char **problem,
                           bool *changed)
{
    assert(ctx != NULL && before != NULL && problem != NULL && changed != NULL &&
           (proof != NULL || proof_len == 0));
    const char *peer = ctx->peer->card.name;
    *changed = false;
    ledger_err_t rc = ledger_channel_get(ctx->ledger, peer, before);
    uint64_t proven = proven_applied(ctx, proof, proof_len, problem);
    if (rc != LEDGER_OK || *problem != NULL) {
        return rc;
    }
    uint8_t *own = NULL;
    size_t own_len = 0;
    if ((rc = ledger_channel_proof(ctx->ledger, peer, &own, &own_len)) != LEDGER_OK) {
        return rc;
    }
    uint64_t own_seq = own_proven(ctx, own, own_len);
    free(own);
    ledger_rebase_t rb = {
        .sent_seq = before->sent_seq > proven ? before->sent_seq : proven,
        .acked_seq = full || proven > before->acked_seq ? proven : before->acked_seq,
        .applied_seq = full && own_seq < before->applied_seq ? own_seq : before->applied_seq,
        .proven_seq = proven,
        .proof = proven > 0 ? proof : NULL,
        .proof_len = proven > 0 ? proof_len : 0,
    };
    if (rb.sent_seq == before->sent_seq && rb.acked_seq == before->acked_seq &&
        rb.applied_seq == before->applied_seq && !before->diverged) {
        return LEDGER_OK;
    }
    log_event(ledger_node(ctx->ledger), peer, NULL,
              "channel re-based after repair: the peer proved it applied %llu of ours; our "
              "stream continues after %llu, %llu sent again; we resume its stream after %llu "
              "(had %llu)",
              (unsigned long long)proven, (unsigned long long)rb.sent_seq,
              (unsigned long long)(rb.sent_seq - rb.acked_seq), (unsigned long long)rb.applied_seq,
              (unsigned long long)before->applied_seq);
    if ((rc = ledger_channel_rebase(ctx->ledger, peer, &rb)) == LEDGER_OK) {
        *changed = true;
        channel_reload(ctx->channel); /* what is queued next must take the new numbers */
    }
    return rc;
}

static void mark_import_result(recon_t *r, const import_t *im, const char *problem,
                               const char *done)
{
    break_t *b = &((break_t *)r->breaks.items)[im->break_index];
    b->healed = problem == NULL;
    b->action = problem != NULL ? problem : done;
}

static ledger_err_t apply_local_imports(recon_t *r)
{
    import_t *items = r->local_imports.items;
    for (size_t i = 0; i < r->local_imports.count; i++) {
        ledger_err_t storage = LEDGER_OK;
        const char *problem = apply_import(&r->ctx, &items[i].entry, items[i].settlement_evidence,
                                           items[i].settlement_len, items[i].status_evidence,
                                           items[i].status_len, &storage);
        if (storage != LEDGER_OK) {
            return storage;
        }
        mark_import_result(r, &items[i], problem, "healed here from the peer's signed messages");
    }
    return LEDGER_OK;
}

/* Sends the peer what it must import (and the re-base, if the channel diverged). */
static void send_repair(recon_t *r, int64_t now_ms)
{
    size_t left = r->remote_imports.count - r->remote_next;
    import_t *items = left > 0 ? (import_t *)r->remote_imports.items + r->remote_next : NULL;
    size_t n = left < REPAIR_CHUNK_MAX ? left : REPAIR_CHUNK_MAX;
    r->remote_chunk = n;
    Corridor__StatementEntry *entries = calloc(n + 1, sizeof *entries);
    Corridor__StatementEntry **ptrs = calloc(n + 1, sizeof *ptrs);
    if (entries == NULL || ptrs == NULL) {
        free(entries);
        free(ptrs);
        finish(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        statement_entry_to_proto(&items[i].entry, &entries[i]);
        entries[i].settlement_evidence =
            (ProtobufCBinaryData){items[i].settlement_len, items[i].settlement_evidence};
        entries[i].status_evidence =
            (ProtobufCBinaryData){items[i].status_len, items[i].status_evidence};
        ptrs[i] = &entries[i];
    }
    ledger_channel_t ch;
    if (ledger_channel_get(r->ctx.ledger, r->ctx.peer->card.name, &ch) != LEDGER_OK) {
        memset(&ch, 0, sizeof ch);
    }
    Corridor__Repair repair = CORRIDOR__REPAIR__INIT;
    repair.n_imports = n;
    repair.imports = ptrs;
    repair.rebase = r->diverged_at_start && r->remote_next == 0; /* with the first chunk */
    repair.sender_sent = ch.sent_seq;
    repair.sender_applied = ch.applied_seq;
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    if (repair.rebase && ledger_channel_proof(r->ctx.ledger, r->ctx.peer->card.name, &proof,
                                              &proof_len) == LEDGER_OK) {
        repair.applied_proof = (ProtobufCBinaryData){proof_len, proof};
    }
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
    req.repair = &repair;
    r->phase = PHASE_REPAIR;
    send_request(r, &req, now_ms);
    free(proof);
    free(entries);
    free(ptrs);
}

/* ---- checkpoints -------------------------------------------------------------------------- */

/* Whether a proposed checkpoint advances past the last one stored with the peer: our journal
 * further on, and its cut nowhere behind. One of the same state proves nothing new; stored
 * again and again it would only fill the disk and lengthen every audit. Only our own rows
 * count: the peer's are its claim, and a peer raising them by one at every proposal would get
 * each one stored. */
static bool checkpoint_advances(ledger_t *l, const char *peer, const Corridor__Checkpoint *cp)
{
    uint8_t *body = NULL;
    size_t len = 0;
    if (ledger_checkpoint_last(l, peer, &body, &len) != LEDGER_OK) {
        return false;
    }
    bool advances = true;
    Corridor__Checkpoint *last =
        body != NULL
            ? (Corridor__Checkpoint *)wire_unpack(&corridor__checkpoint__descriptor, len, body)
            : NULL;
    if (last != NULL) {
        bool first = strcmp(last->first, ledger_node(l)) == 0;
        uint64_t own_rows = first ? cp->first_rows : cp->second_rows;
        advances = own_rows > (first ? last->first_rows : last->second_rows) &&
                   (!last->at_cut || (cp->at_cut && cp->first_sent >= last->first_sent &&
                                      cp->second_sent >= last->second_sent));
        corridor__checkpoint__free_unpacked(last, NULL);
    }
    free(body);
    return advances;
}

/* Whether the spacing this node asks for between checkpoints with the peer has passed: enough
 * sequenced messages on the channel, or enough time, since the last one. */
static bool checkpoint_spaced(const recon_ctx_t *ctx)
{
    if (ctx->checkpoint_every == 0) {
        return true;
    }
    uint64_t last_messages = 0;
    int64_t last_at = 0;
    ledger_channel_t ch;
    if (ledger_checkpoint_when(ctx->ledger, ctx->peer->card.name, &last_messages, &last_at) !=
            LEDGER_OK ||
        ledger_channel_get(ctx->ledger, ctx->peer->card.name, &ch) != LEDGER_OK) {
        return false;
    }

    uint64_t messages = ch.sent_seq + ch.applied_seq;
    /* the checkpoints table is outside the chain: a time or count from the future (edited)
     * counts as due, so an edit cannot stop checkpoints */
    return last_at == 0 || last_at > ctx->wall_now_ms || last_messages > messages ||
           messages - last_messages >= ctx->checkpoint_every ||
           ctx->wall_now_ms - last_at >= (int64_t)ctx->checkpoint_interval_s * 1000;
}

/* Why this node does not propose or sign `cp` now (NULL: it may): it must advance past the last
 * checkpoint and come no sooner than the spacing allows. */
static const char *not_due(const recon_ctx_t *ctx, const Corridor__Checkpoint *cp)
{
    if (!checkpoint_advances(ctx->ledger, ctx->peer->card.name, cp)) {
        return "the checkpoint does not advance past the last one";
    }
    if (!checkpoint_spaced(ctx)) {
        return "the checkpoint comes sooner than checkpoint_every and checkpoint_interval_s allow";
    }
    return NULL;
}

static void skip_checkpoint(recon_t *r, const char *why)
{
    r->checkpoint_report = json_pack("{s:b, s:s}", "signed", 0, "skipped", why);
    finish(r, NULL); /* the comparison, if there was one, stands */
}

/* Sends the proposal (again, to a peer that was behind its cut). A new request id each time:
 * the peer's answer to the last one stands for that one. */
static void send_checkpoint(recon_t *r, int64_t now_ms)
{
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
    req.checkpoint = (ProtobufCBinaryData){r->checkpoint_len, r->checkpoint};
    req.checkpoint_signature = (ProtobufCBinaryData){crypto_sign_BYTES, r->checkpoint_sig};
    r->phase = PHASE_CHECKPOINT;
    send_request(r, &req, now_ms);
}

/* Proposes a checkpoint at the cut where this node stands (everything it sent to the peer and
 * applied of the peer's), with the peer's journal head from its last statement. The peer
 * countersigns once it has applied up to the cut, whatever either side did since. */
static void propose_checkpoint(recon_t *r, int64_t now_ms)
{
    const char *self = ledger_node(r->ctx.ledger);
    const char *peer = r->ctx.peer->card.name;
    bool first = strcmp(self, peer) < 0;
    ledger_channel_t ch;
    ledger_cut_t cut;
    if (r->last.journal_head.len != LEDGER_HASH_BYTES) {
        finish(r, "no checkpoint: the peer's statement names no journal head");
        return;
    }
    if (ledger_head(r->ctx.ledger, r->own_head, &r->own_rows) != LEDGER_OK ||
        ledger_channel_get(r->ctx.ledger, peer, &ch) != LEDGER_OK ||
        ledger_channel_at_cut(r->ctx.ledger, peer, ch.sent_seq, ch.applied_seq, &cut) !=
            LEDGER_OK) {
        snprintf(r->error, sizeof r->error, "no checkpoint: %s", ledger_last_error(r->ctx.ledger));
        finish(r, NULL);
        return;
    }
    Corridor__Position *items = calloc(cut.n_positions + 1, sizeof *items);
    Corridor__Position **positions = calloc(cut.n_positions + 1, sizeof *positions);
    bool stated = items != NULL && positions != NULL;
    for (size_t i = 0; stated && i < cut.n_positions; i++) {
        corridor__position__init(&items[i]);
        items[i].currency = cut.positions[i].currency;
        int64_t net = cut.positions[i].net_minor;
        stated = first || net != INT64_MIN; /* always stated from the first node's side */
        items[i].net_minor = first ? net : -(stated ? net : 0);
        positions[i] = &items[i];
    }
    Corridor__Checkpoint cp = CORRIDOR__CHECKPOINT__INIT;
    cp.first = (char *)(first ? self : peer);
    cp.second = (char *)(first ? peer : self);
    cp.first_rows = first ? r->own_rows : r->last.journal_rows;
    cp.second_rows = first ? r->last.journal_rows : r->own_rows;
    ProtobufCBinaryData own = {LEDGER_HASH_BYTES, r->own_head};
    cp.first_head = first ? own : r->last.journal_head;
    cp.second_head = first ? r->last.journal_head : own;
    cp.channel_digest = (ProtobufCBinaryData){DIGEST_BYTES, cut.digest};
    cp.entry_count = cut.entries;
    cp.n_positions = cut.n_positions;
    cp.positions = positions;
    cp.created_unix_ms = r->ctx.wall_now_ms;
    cp.at_cut = true;
    cp.first_sent = first ? ch.sent_seq : ch.applied_seq;
    cp.second_sent = first ? ch.applied_seq : ch.sent_seq;
    const char *skipped = !stated ? "a position out of range" : not_due(&r->ctx, &cp);
    if (skipped == NULL) {
        r->checkpoint_len = corridor__checkpoint__get_packed_size(&cp);
        r->checkpoint = malloc(r->checkpoint_len);
        if (r->checkpoint != NULL) {
            corridor__checkpoint__pack(&cp, r->checkpoint);
        }
    }
    free(items);
    free(positions);
    ledger_cut_release(&cut);
    if (skipped != NULL) {
        skip_checkpoint(r, skipped);
    } else if (r->checkpoint == NULL ||
               checkpoint_sign(r->checkpoint, r->checkpoint_len, r->ctx.self->sign_secret,
                               r->checkpoint_sig) != 0) {
        finish(r, NULL);
    } else {
        send_checkpoint(r, now_ms);
    }
}

/* Whether the peer's statement says it refused the request; keeps its reason, escaped, in
 * r->peer_error (breaks point at it after the statement is freed; it is printed as text). */
static bool peer_refused(recon_t *r, const Corridor__Statement *st)
{
    if (st->error == NULL || st->error[0] == '\0') {
        return false;
    }
    log_escape(st->error, r->peer_error, sizeof r->peer_error);
    return true;
}

static ledger_err_t on_countersigned(recon_t *r, const Corridor__Statement *st, int64_t now_ms)
{
    if (st->cut_ahead && r->cut_retries < CUT_RETRIES) {
        r->cut_retries++; /* its messages up to the cut are on their way: ask again shortly */
        r->cut_retry_ms = now_ms + CUT_RETRY_MS;
        return LEDGER_OK;
    }
    if (peer_refused(r, st)) {
        r->checkpoint_report = json_pack("{s:b, s:s}", "signed", 0, "refused", r->peer_error);
        finish(r, NULL);
        return LEDGER_OK;
    }
    keyset_t theirs;
    keys_of(&r->ctx, r->ctx.peer->card.name, &theirs);
    if (st->checkpoint_signature.len != crypto_sign_BYTES ||
        !keyset_signed_checkpoint(&theirs, r->checkpoint, r->checkpoint_len,
                                  st->checkpoint_signature.data)) {
        r->checkpoint_report =
            json_pack("{s:b, s:s}", "signed", 0, "refused", "the countersignature does not verify");
        finish(r, NULL);
        return LEDGER_OK;
    }
    ledger_err_t rc = ledger_checkpoint_store(
        r->ctx.ledger, r->ctx.peer->card.name, r->checkpoint, r->checkpoint_len, r->checkpoint_sig,
        st->checkpoint_signature.data, r->own_rows, r->own_head);
    if (rc == LEDGER_OK) {
        char head_hex[2 * LEDGER_HASH_BYTES + 1];
        sodium_bin2hex(head_hex, sizeof head_hex, r->own_head, LEDGER_HASH_BYTES);
        r->checkpoint_report = json_pack("{s:b, s:I, s:s}", "signed", 1, "journal_rows",
                                         (json_int_t)r->own_rows, "head", head_hex);
        log_event(ledger_node(r->ctx.ledger), r->ctx.peer->card.name, NULL,
                  "checkpoint co-signed at journal row %llu", (unsigned long long)r->own_rows);
    }
    finish(r, NULL);
    return rc;
}

/* ---- cycles (PROTOCOL.md 4.8, 4.9) ------------------------------------------------------- */

static bool add_cycle_break(recon_t *r, uint64_t cycle, const ledger_cycle_t *own,
                            const Corridor__StatedCycle *theirs, size_t *index)
{
    *index = SIZE_MAX;
    if (r->breaks.count >= RECON_BREAKS_MAX) {
        r->breaks_dropped++;
        return true;
    }
    break_t b;
    memset(&b, 0, sizeof b);
    b.kind = "cycle_mismatch";
    b.cycle = cycle;
    if (own != NULL) {
        b.local_state = (int)own->state;
        cycle_statement_hash(own->statement, own->statement_len, b.local_hash);
    }
    if (theirs != NULL) {
        b.peer_state = (int)theirs->state;
        cycle_statement_hash(theirs->statement.data, theirs->statement.len, b.peer_hash);
    }
    b.action = own != NULL && theirs == NULL && own->state == CYCLE_CLOSED
                   ? "the peer lacks it: its own reconcile --repair imports it"
                   : "left for a person";
    *index = r->breaks.count;
    return vec_push(&r->breaks, &b, sizeof b);
}

static bool keyset_signed_cycle(const keyset_t *ks, const uint8_t *statement, size_t len,
                                const uint8_t *signature);

#define CYCLE_IMPORTS_MAX 1024 /* cycles one repair session imports (the rest: the next one) */

/* Whether the peer's cycle `number` continues the run a repair can import: our latest plus one,
 * plus those queued already (a hostile peer's far cycles are not kept), within the cap. */
static bool importable_next(recon_t *r, uint64_t number)
{
    ledger_cycle_t latest;
    bool found = false;
    if (r->cycle_imports.count >= CYCLE_IMPORTS_MAX ||
        ledger_cycle_latest(r->ctx.ledger, r->ctx.peer->card.name, &latest, &found) != LEDGER_OK) {
        return false;
    }
    uint64_t next = (found ? latest.cycle + 1 : 1) + r->cycle_imports.count;
    if (found) {
        ledger_cycle_release(&latest);
    }
    return number == next;
}

/* Our cycle `own`, which we proposed and still hold closing, is one the peer holds closed with
 * the same bytes: its countersignature in the statement closes ours (as its CycleAnswer would:
 * a peer that withholds the answer, or one a re-base skipped, must not leave it closing). */
static ledger_err_t finish_from_statement(recon_t *r, const ledger_cycle_t *own,
                                          const Corridor__StatedCycle *c, bool *finished)
{
    keyset_t theirs;
    keys_of(&r->ctx, r->ctx.peer->card.name, &theirs);
    *finished = c->signature.len == crypto_sign_BYTES &&
                keyset_signed_cycle(&theirs, own->statement, own->statement_len, c->signature.data);
    if (!*finished) {
        return LEDGER_OK;
    }
    log_event(ledger_node(r->ctx.ledger), r->ctx.peer->card.name, NULL,
              "cycle %llu closed from the peer's signed statement", (unsigned long long)own->cycle);
    return ledger_cycle_finish(r->ctx.ledger, r->ctx.peer->card.name, own->cycle, NULL, 0,
                               c->signature.data, NULL);
}

/* Compares one cycle the peer stated with ours of its number: a break when one side holds it
 * closed and the other not at all, the statement bytes differ, or either side disputed it. A
 * closing cycle the other side lacks is in flight, not a break; ours closing that the peer holds
 * closed with the same bytes is a break, healed when a repair closes it (finish_from_statement). */
static ledger_err_t compare_cycle(recon_t *r, const Corridor__StatedCycle *c)
{
    ledger_cycle_t own;
    bool found = false;
    ledger_err_t rc =
        ledger_cycle_get(r->ctx.ledger, r->ctx.peer->card.name, c->cycle, &own, &found);
    if (rc != LEDGER_OK) {
        return rc;
    }
    bool differs = found ? own.state == CYCLE_DISPUTED || c->state == CYCLE_DISPUTED ||
                               own.statement_len != c->statement.len ||
                               memcmp(own.statement, c->statement.data, c->statement.len) != 0
                         : c->state == CYCLE_CLOSED || c->state == CYCLE_DISPUTED;
    size_t index = SIZE_MAX;
    bool stuck =
        !differs && found && own.state == CYCLE_CLOSING && own.ours && c->state == CYCLE_CLOSED;
    bool finished = false;
    if (stuck && r->repair) {
        rc = finish_from_statement(r, &own, c, &finished);
    }
    if (rc == LEDGER_OK && stuck) {
        if (!add_cycle_break(r, c->cycle, &own, c, &index)) {
            rc = LEDGER_E_STORAGE;
        } else if (index != SIZE_MAX) { /* a repair's report names what it closed, healed */
            break_t *b = &((break_t *)r->breaks.items)[index];
            b->healed = finished;
            b->action = finished ? "closed here from the peer's signed statement"
                        : r->repair
                            ? "the peer's countersignature does not verify: left for a person"
                            : "closing here, closed at the peer: reconcile --repair closes it";
        }
    } else if (rc != LEDGER_OK) {
        /* the disk failed: the turn is tried again */
    } else if (!differs) {
        r->cycles_matched++;
    } else if (!add_cycle_break(r, c->cycle, found ? &own : NULL, c, &index)) {
        rc = LEDGER_E_STORAGE;
    } else if (!found && c->state == CYCLE_CLOSED && r->repair &&
               c->peer_signature.len == crypto_sign_BYTES && importable_next(r, c->cycle)) {
        cycle_import_t im = {.cycle = c->cycle, .proposed = c->proposed, .break_index = index};
        im.statement = malloc(c->statement.len);
        if (im.statement == NULL) {
            rc = LEDGER_E_STORAGE;
        } else {
            memcpy(im.statement, c->statement.data, c->statement.len);
            im.statement_len = c->statement.len;
            memcpy(im.signature, c->signature.data, crypto_sign_BYTES);
            memcpy(im.peer_signature, c->peer_signature.data, crypto_sign_BYTES);
            if (!vec_push(&r->cycle_imports, &im, sizeof im)) {
                free(im.statement);
                rc = LEDGER_E_STORAGE;
            }
        }
        if (index != SIZE_MAX) {
            ((break_t *)r->breaks.items)[index].action = "to import from the peer's statement";
        }
    }
    ledger_cycle_release(&own);
    return rc;
}

/* Takes the cycles of the peer's answer (asked from r->cycles_from): each is compared as it
 * comes; the next round asks from the one after the last. A peer that states them out of
 * order, outside the asked numbers or malformed is asked no more, and our cycles it would have
 * to lack are not listed (cycles_complete stays false). */
static ledger_err_t take_cycles(recon_t *r, const Corridor__Statement *st, bool had_ranges)
{
    if (!r->cycles_asked) {
        return LEDGER_OK;
    }
    r->cycles_asked = false;
    uint64_t from = r->cycles_from, last = 0;
    r->cycles_from = 0;
    const char *problem = st->n_cycles > STATEMENT_CYCLES_MAX ? "too many cycles" : NULL;
    for (size_t i = 0; problem == NULL && i < st->n_cycles; i++) {
        const Corridor__StatedCycle *c = st->cycles[i];
        if (c->cycle < from || c->cycle <= last || c->cycle > CORRIDOR_SEQUENCE_MAX) {
            problem = "cycles out of order";
        } else if (c->state < CYCLE_CLOSING || c->state > CYCLE_DISPUTED || c->statement.len == 0 ||
                   c->statement.len > CYCLE_STATEMENT_MAX ||
                   c->signature.len != crypto_sign_BYTES ||
                   (c->peer_signature.len != 0 && c->peer_signature.len != crypto_sign_BYTES)) {
            problem = "a malformed cycle";
        } else if (r->peer_cycles.count >= RECON_CYCLES_MAX) {
            problem = "more cycles than a session compares";
        } else {
            last = c->cycle;
            if (!vec_push(&r->peer_cycles, &last, sizeof last)) {
                return LEDGER_E_STORAGE;
            }
            ledger_err_t rc = compare_cycle(r, c);
            if (rc != LEDGER_OK) {
                return rc;
            }
        }
    }
    if (problem == NULL && st->cycles_more && st->n_cycles == 0 && !had_ranges) {
        problem = "more cycles, none stated";
    }
    if (problem != NULL) {
        log_event(ledger_node(r->ctx.ledger), r->ctx.peer->card.name, NULL,
                  "reconcile: the peer's cycles not compared further: %s", problem);
        return LEDGER_OK;
    }
    if (st->cycles_more) {
        r->cycles_from = last != 0 ? last + 1 : from; /* none stated: its bytes went to ranges */
    } else {
        r->cycles_complete = true;
    }
    return LEDGER_OK;
}

static int by_number(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

typedef struct {
    recon_t *r;
    bool failed;
} own_cycles_t;

/* One of our cycles: a break when it is closed or disputed and the peer did not state it. */
static void own_cycle(const ledger_cycle_t *c, void *arg)
{
    own_cycles_t *o = arg;
    recon_t *r = o->r;
    if (c->state == CYCLE_CLOSING || bsearch(&c->cycle, r->peer_cycles.items, r->peer_cycles.count,
                                             sizeof(uint64_t), by_number) != NULL) {
        return;
    }
    size_t index;
    if (!add_cycle_break(r, c->cycle, c, NULL, &index)) {
        o->failed = true;
    }
}

static ledger_err_t compare_own_cycles(recon_t *r)
{
    if (!r->cycles_complete) {
        return LEDGER_OK;
    }
    own_cycles_t o = {.r = r};
    ledger_err_t rc = ledger_cycles(r->ctx.ledger, r->ctx.peer->card.name, own_cycle, &o);
    return rc == LEDGER_OK && o.failed ? LEDGER_E_STORAGE : rc;
}

static bool keyset_signed_cycle(const keyset_t *ks, const uint8_t *statement, size_t len,
                                const uint8_t *signature)
{
    for (size_t i = 0; i < ks->count; i++) {
        if (cycle_verify(statement, len, signature, ks->keys[i])) {
            return true;
        }
    }
    return false;
}

/* Why a closed cycle of the peer's cannot be imported here as the next one, or NULL; fills
 * the cut from our view. */
static const char *check_cycle_import(recon_t *r, const cycle_import_t *im, uint64_t *own_sent,
                                      uint64_t *peer_sent, ledger_err_t *rc)
{
    const char *self = ledger_node(r->ctx.ledger), *peer = r->ctx.peer->card.name;
    ledger_cycle_t latest;
    bool found = false;
    if ((*rc = ledger_cycle_latest(r->ctx.ledger, peer, &latest, &found)) != LEDGER_OK) {
        return "cannot read the ledger";
    }
    uint64_t next = found ? latest.cycle + 1 : 1;
    uint64_t min_own = found ? latest.own_sent : 0, min_peer = found ? latest.peer_sent : 0;
    bool closing = found && latest.state == CYCLE_CLOSING;
    ledger_cycle_release(&latest);
    if (closing) {
        return "a cycle is closing here: left for a person";
    }
    if (im->cycle != next) {
        return "not the next cycle here: left for a person";
    }
    cycle_statement_t st;
    if (!cycle_statement_decode(im->statement, im->statement_len, &st)) {
        return "the peer's statement does not decode";
    }
    bool first = cycle_self_first(self, peer);
    if (strcmp(st.first, first ? self : peer) != 0 || strcmp(st.second, first ? peer : self) != 0 ||
        st.cycle != im->cycle) {
        return "the peer's statement names another channel or cycle";
    }
    *own_sent = first ? st.first_sent : st.second_sent;
    *peer_sent = first ? st.second_sent : st.first_sent;
    if (*own_sent > CORRIDOR_SEQUENCE_MAX || *peer_sent > CORRIDOR_SEQUENCE_MAX ||
        *own_sent < min_own || *peer_sent < min_peer) {
        return "the cycle's cut lies below the last cycle's here";
    }
    keyset_t ours, theirs;
    keys_of(&r->ctx, self, &ours);
    keys_of(&r->ctx, peer, &theirs);
    if (!keyset_signed_cycle(&ours, im->statement, im->statement_len, im->peer_signature)) {
        return "our signature in the peer's copy does not verify with our key: refused";
    }
    if (!keyset_signed_cycle(&theirs, im->statement, im->statement_len, im->signature)) {
        return "the peer's signature does not verify";
    }
    return NULL;
}

/* The repair's cycles (PROTOCOL.md 4.9): each closed cycle of the peer's we lack, in order,
 * recorded closed with its `cycle` row; then our running figures start after the last cut. Run
 * after the entries were imported: they are placed at their cuts by their own sequences. */
static ledger_err_t import_cycles(recon_t *r)
{
    cycle_import_t *items = r->cycle_imports.items;
    uint64_t own_sent = 0, peer_sent = 0, cut_own = 0, cut_peer = 0;
    bool imported = false;
    const char *problem = NULL;
    ledger_err_t rc = LEDGER_OK;
    for (size_t i = 0; rc == LEDGER_OK && i < r->cycle_imports.count; i++) {
        if (problem == NULL) {
            problem = check_cycle_import(r, &items[i], &own_sent, &peer_sent, &rc);
            if (rc == LEDGER_OK && problem == NULL) {
                rc = ledger_cycle_import(r->ctx.ledger, r->ctx.peer->card.name, items[i].cycle,
                                         !items[i].proposed, own_sent, peer_sent,
                                         items[i].statement, items[i].statement_len,
                                         items[i].peer_signature, items[i].signature);
                imported = imported || rc == LEDGER_OK;
                cut_own = own_sent;
                cut_peer = peer_sent;
            }
        }
        if (items[i].break_index != SIZE_MAX) {
            break_t *b = &((break_t *)r->breaks.items)[items[i].break_index];
            b->healed = rc == LEDGER_OK && problem == NULL;
            b->action = problem != NULL ? problem : "imported from the peer's signed statement";
        }
        if (problem != NULL) {
            log_event(ledger_node(r->ctx.ledger), r->ctx.peer->card.name, NULL,
                      "repair: cycle %llu not imported: %s", (unsigned long long)items[i].cycle,
                      problem);
            problem = "an earlier cycle was not imported: left for a person";
        }
    }
    if (rc == LEDGER_OK && imported) {
        rc = ledger_cycle_running_rebuild(r->ctx.ledger, r->ctx.peer->card.name, cut_own, cut_peer);
    }
    return rc;
}

/* ---- the initiator's state machine -------------------------------------------------------- */

/* Puts an import list's returns after its payments, each in its order (UETR order): a return is
 * imported only beside the payment it returns (return_original_problem), and a Return applied
 * as it arrives needs that payment settled, so the payment's own import (missing, or pending
 * here and settled at the peer) must come first, also across Repair chunks. */
static void returns_last(vec_t *imports)
{
    import_t *items = imports->items;
    import_t *sorted = imports->count > 1 ? malloc(imports->count * sizeof *sorted) : NULL;
    if (sorted == NULL) {
        return; /* out of memory: the order stays, such a return is left for the next repair */
    }
    size_t n = 0;
    for (int returns = 0; returns < 2; returns++) {
        for (size_t i = 0; i < imports->count; i++) {
            if (statement_entry_is_return(&items[i].entry) == (returns == 1)) {
                sorted[n++] = items[i];
            }
        }
    }
    memcpy(items, sorted, n * sizeof *sorted);
    free(sorted);
}

static ledger_err_t end_of_comparison(recon_t *r, int64_t now_ms)
{
    ledger_err_t own = compare_own_cycles(r);
    if (own != LEDGER_OK) {
        finish(r, "cannot read the ledger");
        return own;
    }
    check_positions(r);
    /* a DIVERGED channel is re-based by a repair even when the books agree: the re-base
     * travels in the first Repair, with no imports */
    bool rebase_due = r->repair && r->diverged_at_start;
    if (r->breaks.count == 0 && r->breaks_dropped == 0 && !rebase_due) {
        if (r->positions_agree && !r->diverged_at_start) {
            propose_checkpoint(r, now_ms);
        } else {
            finish(r, NULL);
        }
        return LEDGER_OK;
    }
    if (!r->repair) {
        finish(r, NULL);
        return LEDGER_OK;
    }
    returns_last(&r->local_imports);
    returns_last(&r->remote_imports);
    if (!r->diverged_at_start) { /* imports here need no re-base: apply them now */
        ledger_err_t rc = apply_local_imports(r);
        if (rc == LEDGER_OK) {
            rc = import_cycles(r);
        }
        if (rc != LEDGER_OK) {
            return rc;
        }
    }
    if (r->remote_imports.count > 0 || r->diverged_at_start) {
        send_repair(r, now_ms);
    } else {
        finish(r, NULL);
    }
    return LEDGER_OK;
}

/* Whether the peer says it refused the import of `uetr` (its reason is logged here). */
static bool import_refused(recon_t *r, const Corridor__Statement *st, const char *uetr)
{
    for (size_t i = 0; i < st->n_refused_imports && i < REPAIR_CHUNK_MAX; i++) {
        const Corridor__RefusedImport *ri = st->refused_imports[i];
        if (ri->uetr != NULL && strcmp(ri->uetr, uetr) == 0) {
            log_event(ledger_node(r->ctx.ledger), r->ctx.peer->card.name, uetr,
                      "the peer refused our repair's import: %.120s",
                      ri->reason != NULL ? ri->reason : "");
            return true;
        }
    }
    return false;
}

static ledger_err_t on_repaired(recon_t *r, const Corridor__Statement *st, int64_t now_ms)
{
    bool refused = peer_refused(r, st);
    bool first_chunk = r->remote_next == 0;
    import_t *items = r->remote_imports.items;
    for (size_t i = r->remote_next; i < r->remote_next + r->remote_chunk; i++) {
        const char *problem = refused ? r->peer_error
                              : import_refused(r, st, items[i].entry.uetr)
                                  ? "refused by the peer: our evidence did not prove the entry "
                                    "to it (both logs say why)"
                                  : NULL;
        mark_import_result(r, &items[i], problem, "healed at the peer from our signed messages");
    }
    r->remote_next += r->remote_chunk;
    ledger_err_t rc = LEDGER_OK;
    const char *problem = NULL;
    if (!refused && first_chunk && r->diverged_at_start) {
        /* the peer re-based on our proof; we re-base on its, then import ours */
        ledger_channel_t before;
        bool changed = false;
        rc = rebase(&r->ctx, true, st->applied_proof.data, st->applied_proof.len, &before, &problem,
                    &changed);
        r->rebased = rc == LEDGER_OK && problem == NULL;
        if (r->rebased) {
            rc = apply_local_imports(r);
        }
        if (r->rebased && rc == LEDGER_OK) {
            rc = import_cycles(r);
        }
    }
    if (problem != NULL) {
        finish(r, problem);
        return rc;
    }
    if (rc == LEDGER_OK && !refused && r->remote_next < r->remote_imports.count) {
        send_repair(r, now_ms);
        return LEDGER_OK;
    }
    finish(r, refused ? r->peer_error : NULL);
    return rc;
}

static ledger_err_t on_statement(recon_t *r, const Corridor__Statement *st, int64_t now_ms);

ledger_err_t recon_on_statement(recon_t *r, const Corridor__Statement *st, int64_t now_ms)
{
    assert_session(r);
    assert(st != NULL);
    ledger_err_t rc = on_statement(r, st, now_ms);
    if (rc != LEDGER_OK && r->phase != PHASE_DONE) {
        finish(r, "cannot write the ledger"); /* the turn is rolled back; the ledger stops */
    }
    assert_session(r);
    assert(rc == LEDGER_OK || r->phase == PHASE_DONE);
    return rc;
}

static ledger_err_t on_statement(recon_t *r, const Corridor__Statement *st, int64_t now_ms)
{
    if (r->phase == PHASE_DONE || st->request_id == NULL ||
        strcmp(st->request_id, r->request_id) != 0) {
        return LEDGER_OK; /* a late answer to a request we sent again */
    }
    r->request_id[0] = '\0';
    r->bytes_in += corridor__statement__get_packed_size(st);
    if (r->phase == PHASE_REPAIR) {
        return on_repaired(r, st, now_ms);
    }
    if (r->phase == PHASE_CHECKPOINT) {
        return on_countersigned(r, st, now_ms);
    }
    note_statement(r, st);
    if (r->phase == PHASE_HEAD && channel_is_diverged(r->ctx.channel)) {
        finish(r, "no checkpoint: the channel diverged; run corridor reconcile --repair");
        return LEDGER_OK;
    }
    if (r->phase == PHASE_HEAD) { /* a checkpoint session: no comparison */
        propose_checkpoint(r, now_ms);
        return LEDGER_OK;
    }
    size_t answered = st->answered < r->asked_count ? st->answered : r->asked_count;
    ledger_err_t rc = take_cycles(r, st, r->asked_count > 0);
    for (size_t i = 0; rc == LEDGER_OK && i < r->asked_count; i++) {
        const range_fp_t *asked = &r->asked[i];
        const Corridor__RangeFingerprint *children[16];
        if (i >= answered) {
            rc = vec_push(&r->queue, asked, sizeof *asked) ? LEDGER_OK : LEDGER_E_STORAGE;
        } else if (is_leaf(st, asked->prefix) || strlen(asked->prefix) >= STATEMENT_PREFIX_MAX) {
            /* a range as narrow as prefixes go is compared entry by entry, whatever the peer
             * claims about sub-ranges */
            rc = compare_leaf(r, asked->prefix, st);
        } else if (peer_children(st, asked->prefix, children)) {
            rc = compare_children(r, asked, children);
        } else {
            r->matched += asked->count; /* equal fingerprints */
        }
    }
    r->asked_count = 0;
    if (rc != LEDGER_OK) {
        finish(r, "cannot read the ledger");
        return rc;
    }
    if (r->queue.count == 0 && r->cycles_from == 0) {
        return end_of_comparison(r, now_ms);
    }
    send_compare(r, now_ms);
    return LEDGER_OK;
}

/* ---- the report -------------------------------------------------------------------------- */

static json_t *entry_json(const statement_entry_t *e)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s?}", "payer", e->payer, "payee", e->payee,
                          "amount_minor", (json_int_t)e->amount_minor, "currency", e->currency,
                          "status", e->status, "reason", e->reason[0] ? e->reason : NULL);
    if (j != NULL && statement_entry_is_return(e)) {
        json_object_set_new(j, "original_uetr", json_string(e->original_uetr));
        json_object_set_new(j, "return_reason", json_string(e->return_reason));
    }
    if (j != NULL && statement_entry_is_fx_leg(e)) {
        json_object_set_new(j, "fx_id", json_string(e->fx_id));
    }
    if (j != NULL && statement_entry_is_setoff_leg(e)) {
        json_object_set_new(j, "setoff_id", json_string(e->setoff_id));
    }
    return j;
}

/* A return's break names the payment returned (`uetr`, local side first) and the return
 * (`id`); a trade leg's the leg (`uetr`) and its trade (`id` = fx_id, local side first); any
 * other break its entry (`uetr`), with `id` null. */
static json_t *cycle_side_json(int state, const uint8_t hash[static CYCLE_HASH_BYTES])
{
    if (state == 0) {
        return json_null();
    }
    char hex[2 * CYCLE_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, hash, CYCLE_HASH_BYTES);
    return json_pack("{s:s, s:s}", "state", cycle_state_name((cycle_state_t)state),
                     "statement_hash", hex);
}

static const char *break_uetr(const break_t *b, const char **id)
{
    const statement_entry_t *setoff =
        b->has_local && statement_entry_is_setoff_leg(&b->local) ? &b->local
        : b->has_peer && statement_entry_is_setoff_leg(&b->peer) ? &b->peer
                                                                 : NULL;
    if (setoff != NULL) { /* a set-off leg: its UETR is the set-off's id (3.12.6) */
        *id = setoff->setoff_id;
        return b->uetr;
    }
    const statement_entry_t *leg = b->has_local && statement_entry_is_fx_leg(&b->local) ? &b->local
                                   : b->has_peer && statement_entry_is_fx_leg(&b->peer) ? &b->peer
                                                                                        : NULL;
    if (leg != NULL) {
        *id = leg->fx_id;
        return b->uetr;
    }
    const statement_entry_t *e = b->has_local && statement_entry_is_return(&b->local) ? &b->local
                                 : b->has_peer && statement_entry_is_return(&b->peer) ? &b->peer
                                                                                      : NULL;
    *id = e != NULL ? b->uetr : NULL;
    return e != NULL ? e->original_uetr : b->uetr;
}

json_t *recon_report(const recon_t *r)
{
    json_t *breaks = json_array();
    const break_t *items = r->breaks.items;
    size_t healed = 0;
    for (size_t i = 0; breaks != NULL && i < r->breaks.count; i++) {
        const break_t *b = &items[i];
        healed += b->healed;
        if (b->cycle != 0) { /* a cycle_mismatch: no entry, id the cycle's number */
            char number[24];
            snprintf(number, sizeof number, "%llu", (unsigned long long)b->cycle);
            json_array_append_new(breaks,
                                  json_pack("{s:n, s:s, s:s, s:o, s:o, s:b, s:s?}", "uetr", "id",
                                            number, "kind", b->kind, "local",
                                            cycle_side_json(b->local_state, b->local_hash), "peer",
                                            cycle_side_json(b->peer_state, b->peer_hash), "healed",
                                            b->healed, "action", b->action));
            continue;
        }
        const char *id = NULL;
        const char *uetr = break_uetr(b, &id);
        json_array_append_new(breaks,
                              json_pack("{s:s, s:o, s:s, s:o, s:o, s:b, s:s?}", "uetr", uetr, "id",
                                        id != NULL ? json_string(id) : json_null(), "kind", b->kind,
                                        "local", b->has_local ? entry_json(&b->local) : json_null(),
                                        "peer", b->has_peer ? entry_json(&b->peer) : json_null(),
                                        "healed", b->healed, "action", b->action));
    }
    size_t remaining = r->breaks.count - healed + r->breaks_dropped;
    json_t *doc =
        json_pack("{s:s, s:I, s:o, s:b, s:I, s:I, s:b, s:I, s:I, s:I, s:I}", "peer",
                  r->ctx.peer->card.name, "matched", (json_int_t)r->matched, "breaks", breaks,
                  "positions_agree", r->positions_agree, "breaks_remaining", (json_int_t)remaining,
                  "healed", (json_int_t)healed, "repaired_channel", r->rebased, "rounds",
                  (json_int_t)r->rounds, "bytes_sent", (json_int_t)r->bytes_out, "bytes_received",
                  (json_int_t)r->bytes_in, "breaks_not_listed", (json_int_t)r->breaks_dropped);
    if (doc != NULL) {
        json_object_set(doc, "checkpoint",
                        r->checkpoint_report ? r->checkpoint_report : json_null());
        json_object_set_new(doc, "cycles_matched", json_integer((json_int_t)r->cycles_matched));
        if (r->error[0] != '\0') {
            json_object_set_new(doc, "error", json_string(r->error));
        }
    }
    return doc;
}

/* ---- the responder ----------------------------------------------------------------------- */

/* Whether a proposed checkpoint states the channel as this node computes it at the cut: the
 * same digest and count, and the same non-zero positions (mirrored when we are second). A
 * proposal from before cuts may list zero positions too. */
static bool cut_matches(const ledger_cut_t *cut, const Corridor__Checkpoint *cp, bool first)
{
    if (cp->entry_count != cut->entries || cp->channel_digest.len != DIGEST_BYTES ||
        sodium_memcmp(cp->channel_digest.data, cut->digest, DIGEST_BYTES) != 0) {
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; i < cp->n_positions; i++) {
        const Corridor__Position *p = cp->positions[i];
        if (p->net_minor == 0 && cp->at_cut) {
            return false; /* a cut lists exactly the non-zero positions: nothing else is signed */
        }
        if (p->net_minor == 0) {
            continue;
        }
        if (n >= cut->n_positions || p->currency == NULL ||
            strcmp(p->currency, cut->positions[n].currency) != 0) {
            return false;
        }
        int64_t ours = cut->positions[n++].net_minor;
        if (first ? ours != p->net_minor : !position_mirrors(ours, p->net_minor)) {
            return false;
        }
    }
    return n == cut->n_positions;
}

/* Checks a proposal against this node's books at its cut (a proposal from before cuts: at
 * the channel as it is). NULL when it matches; else why not, with *ahead set when the cut
 * names messages of the peer's this node has not applied yet. */
static const char *check_at_cut(const recon_ctx_t *ctx, const Corridor__Checkpoint *cp, bool first,
                                bool *ahead, uint64_t *work)
{
    const char *peer = ctx->peer->card.name;
    ledger_channel_t ch;
    if (ledger_channel_get(ctx->ledger, peer, &ch) != LEDGER_OK) {
        return "cannot read the channel";
    }
    uint64_t sent = !cp->at_cut ? ch.sent_seq : first ? cp->first_sent : cp->second_sent;
    uint64_t applied = !cp->at_cut ? ch.applied_seq : first ? cp->second_sent : cp->first_sent;
    if (!cp->at_cut && (cp->first_sent != 0 || cp->second_sent != 0)) {
        return "a checkpoint of the channel as it stands names no cut";
    }
    if (sent > ch.sent_seq) {
        return "the cut names messages this node never sent";
    }
    if (applied > ch.applied_seq) {
        *ahead = true;
        return "the cut is ahead of what this node has applied";
    }
    ledger_cut_t cut;
    ledger_err_t rc = ledger_channel_at_cut(ctx->ledger, peer, sent, applied, &cut);
    *work += rc == LEDGER_OK ? cut.touched : LEDGER_CUT_TOUCHED_MAX;
    if (rc == LEDGER_E_STATE) {
        return "the cut lies too far behind the channel";
    }
    if (rc != LEDGER_OK) {
        return "cannot compute the channel at the cut";
    }
    bool matches = cut_matches(&cut, cp, first);
    ledger_cut_release(&cut);
    return matches ? NULL : "the channel differs at the cut";
}

/* Countersigns a proposed checkpoint if it matches this node's books; else says why not. */
static const char *countersign(const recon_ctx_t *ctx, const Corridor__StatementRequest *req,
                               uint8_t sig[static crypto_sign_BYTES], bool *ahead, uint64_t *work)
{
    assert(ctx != NULL && req != NULL && req->checkpoint.len > 0 && ahead != NULL && work != NULL);
    const char *self = ledger_node(ctx->ledger);
    const char *peer = ctx->peer->card.name;
    keyset_t theirs;
    keys_of(ctx, peer, &theirs);
    if (req->checkpoint_signature.len != crypto_sign_BYTES ||
        !keyset_signed_checkpoint(&theirs, req->checkpoint.data, req->checkpoint.len,
                                  req->checkpoint_signature.data)) {
        return "the proposer's signature does not verify";
    }
    Corridor__Checkpoint *cp = (Corridor__Checkpoint *)wire_unpack(
        &corridor__checkpoint__descriptor, req->checkpoint.len, req->checkpoint.data);
    const char *problem = NULL;
    uint8_t at_row[LEDGER_HASH_BYTES];
    if (cp == NULL) {
        return "not a checkpoint";
    }
    bool first = strcmp(cp->first, self) == 0;
    uint64_t my_rows = first ? cp->first_rows : cp->second_rows;
    ProtobufCBinaryData my_head = first ? cp->first_head : cp->second_head;
    if (!((first && strcmp(cp->second, peer) == 0) ||
          (strcmp(cp->second, self) == 0 && strcmp(cp->first, peer) == 0)) ||
        (first != (strcmp(self, peer) < 0))) {
        problem = "the checkpoint is not for this channel";
    } else if (my_head.len != LEDGER_HASH_BYTES ||
               (my_rows == 0 ? (memset(at_row, 0, sizeof at_row), false)
                             : ledger_row_hash_at(ctx->ledger, my_rows, at_row) != LEDGER_OK) ||
               memcmp(at_row, my_head.data, LEDGER_HASH_BYTES) != 0) {
        problem = "the checkpoint names a journal head this node does not have";
    } else if ((problem = not_due(ctx, cp)) == NULL) {
        problem = check_at_cut(ctx, cp, first, ahead, work);
    }
    if (problem == NULL &&
        (checkpoint_sign(req->checkpoint.data, req->checkpoint.len, ctx->self->sign_secret, sig) !=
             0 ||
         ledger_checkpoint_store(ctx->ledger, peer, req->checkpoint.data, req->checkpoint.len, sig,
                                 req->checkpoint_signature.data, my_rows,
                                 my_head.data) != LEDGER_OK)) {
        problem = "cannot store the checkpoint";
    }
    corridor__checkpoint__free_unpacked(cp, NULL);
    if (problem == NULL) {
        log_event(self, peer, NULL, "checkpoint co-signed at journal row %llu",
                  (unsigned long long)my_rows);
    }
    return problem;
}

bool recon_request_reads_only(const Corridor__StatementRequest *req)
{
    return req->repair == NULL && req->checkpoint.len == 0;
}

ledger_err_t recon_answer(const recon_ctx_t *ctx, const Corridor__StatementRequest *req,
                          uint8_t **body, size_t *body_len, bool *rebased, uint64_t *work)
{
    assert(ctx != NULL && req != NULL && body != NULL && body_len != NULL && rebased != NULL &&
           work != NULL);
    *rebased = false;
    *work = 0;
    *body = NULL;
    const char *problem = NULL;
    ledger_channel_t before;
    bool have_before = false;
    ledger_err_t rc = LEDGER_OK;
    struct {
        char uetr[CORRIDOR_UETR_LEN + 1];
        const char *why; /* a static text of verify_import's */
    } refused[REPAIR_CHUNK_MAX];
    size_t refused_count = 0;
    if (req->repair != NULL) {
        if (req->repair->sender_sent > CORRIDOR_SEQUENCE_MAX ||
            req->repair->sender_applied > CORRIDOR_SEQUENCE_MAX) {
            problem = "malformed repair: a counter above 2^62";
        } else if (req->repair->rebase) {
            /* in any state, but in full only when our side diverged too (see rebase) */
            rc = rebase(ctx, channel_is_diverged(ctx->channel), req->repair->applied_proof.data,
                        req->repair->applied_proof.len, &before, &problem, rebased);
            have_before = rc == LEDGER_OK && problem == NULL;
        }
        for (size_t i = 0; rc == LEDGER_OK && problem == NULL && i < req->repair->n_imports; i++) {
            const Corridor__StatementEntry *p = req->repair->imports[i];
            statement_entry_t e;
            ledger_err_t storage = LEDGER_OK;
            const char *why =
                statement_entry_from_proto(p, &e)
                    ? apply_import(ctx, &e, p->settlement_evidence.data, p->settlement_evidence.len,
                                   p->status_evidence.data, p->status_evidence.len, &storage)
                    : "malformed entry";
            rc = storage;
            if (why != NULL) {
                log_event(ledger_node(ctx->ledger), ctx->peer->card.name, e.uetr,
                          "repair import refused: %s", why);
            }
            /* said back to the requester (a valid UETR only: it names its own import), so its
             * report does not call the entry healed; beyond a chunk's worth, only logged */
            if (why != NULL && refused_count < REPAIR_CHUNK_MAX &&
                uetr_check(p->uetr) == VALID_OK) {
                snprintf(refused[refused_count].uetr, sizeof refused[0].uetr, "%s", p->uetr);
                refused[refused_count++].why = why;
            }
        }
    }
    uint8_t sig[crypto_sign_BYTES];
    bool signed_checkpoint = false, cut_ahead = false;
    uint64_t cut_work = 0; /* settlements read at the cut: charged with the answer's */
    if (rc == LEDGER_OK && problem == NULL && req->checkpoint.len > 0) {
        problem = countersign(ctx, req, sig, &cut_ahead, &cut_work);
        signed_checkpoint = problem == NULL;
        if (ledger_stopped(ctx->ledger)) {
            rc = LEDGER_E_STOPPED; /* a storage error, not the peer's doing: the turn fails */
        }
    }
    if (rc != LEDGER_OK) {
        return rc;
    }
    Corridor__Statement st;
    if ((rc = statement_answer(ctx->ledger, ctx->peer->card.name, req, &st, work)) != LEDGER_OK) {
        return rc;
    }
    *work += cut_work;
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    if (have_before) { /* the counters as they were, and our proof: the initiator re-bases */
        st.sent_sequence = before.sent_seq;
        st.applied_sequence = before.applied_seq;
        if ((rc = ledger_channel_proof(ctx->ledger, ctx->peer->card.name, &proof, &proof_len)) !=
            LEDGER_OK) {
            statement_release(&st);
            return rc;
        }
        st.applied_proof = (ProtobufCBinaryData){proof_len, proof};
    }
    if (problem != NULL && !cut_ahead) { /* a peer ahead of us is no news */
        log_event(ledger_node(ctx->ledger), ctx->peer->card.name, NULL,
                  "statement request refused: %s", problem);
    }
    if (problem != NULL) {
        st.error = strdup(problem);
        st.cut_ahead = cut_ahead;
    }
    if (refused_count > 0 &&
        (st.refused_imports = calloc(refused_count, sizeof *st.refused_imports)) != NULL) {
        for (size_t i = 0; i < refused_count; i++) {
            Corridor__RefusedImport *ri = malloc(sizeof *ri);
            if (ri == NULL) {
                break; /* what was not said stays in our log */
            }
            corridor__refused_import__init(ri);
            ri->uetr = strdup(refused[i].uetr);
            ri->reason = strdup(refused[i].why);
            st.refused_imports[st.n_refused_imports++] = ri;
            if (ri->uetr == NULL || ri->reason == NULL) {
                break;
            }
        }
    }
    if (signed_checkpoint) {
        st.checkpoint_signature.data = malloc(sizeof sig);
        if (st.checkpoint_signature.data != NULL) {
            memcpy(st.checkpoint_signature.data, sig, sizeof sig);
            st.checkpoint_signature.len = sizeof sig;
        }
    }
    *body_len = corridor__statement__get_packed_size(&st);
    *body = malloc(*body_len);
    if (*body != NULL) {
        corridor__statement__pack(&st, *body);
    }
    st.applied_proof = (ProtobufCBinaryData){0, NULL};
    free(proof);
    statement_release(&st);
    return *body != NULL ? LEDGER_OK : LEDGER_E_STORAGE;
}
