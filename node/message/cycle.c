/* Settlement cycle statements and messages (proto/PROTOCOL.md 3.11): encoding, strict decoding,
 * the statement signature (H8) and hash (H9). */
#include "cycle.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "corridor.pb-c.h"
#include "envelope.h"
#include "validate.h"
#include "wire.h"

bool cycle_self_first(const char *self, const char *peer)
{
    return strcmp(self, peer) < 0;
}

void cycle_currency_view(const cycle_currency_t *c, bool self_first, int64_t *paid,
                         int64_t *received, int64_t *net)
{
    *paid = self_first ? c->first_to_second : c->second_to_first;
    *received = self_first ? c->second_to_first : c->first_to_second;
    *net = self_first ? c->net_first : -c->net_first; /* decode refuses INT64_MIN */
}

bool cycle_statement_from_view(cycle_statement_t *st, const char *self, const char *peer,
                               uint64_t cycle, uint64_t own_sent, uint64_t peer_sent,
                               const cycle_view_t *views, size_t n,
                               const uint8_t digest[static DIGEST_BYTES], uint64_t entry_count)
{
    assert(st != NULL && self != NULL && peer != NULL && n <= CYCLE_CURRENCIES_MAX);
    memset(st, 0, sizeof *st);
    bool first = cycle_self_first(self, peer);
    snprintf(st->first, sizeof st->first, "%s", first ? self : peer);
    snprintf(st->second, sizeof st->second, "%s", first ? peer : self);
    st->cycle = cycle;
    st->first_sent = first ? own_sent : peer_sent;
    st->second_sent = first ? peer_sent : own_sent;
    for (size_t i = 0; i < n; i++) {
        cycle_currency_t *c = &st->currencies[i];
        snprintf(c->currency, sizeof c->currency, "%s", views[i].currency);
        c->first_to_second = first ? views[i].paid : views[i].received;
        c->second_to_first = first ? views[i].received : views[i].paid;
        if (__builtin_sub_overflow(c->second_to_first, c->first_to_second, &c->net_first) ||
            c->net_first == INT64_MIN) {
            return false;
        }
        c->count = views[i].count;
    }
    st->n_currencies = n;
    memcpy(st->digest, digest, DIGEST_BYTES);
    st->entry_count = entry_count;
    return true;
}

int cycle_statement_encode(const cycle_statement_t *st, uint8_t **out, size_t *out_len)
{
    assert(st != NULL && out != NULL && out_len != NULL &&
           st->n_currencies <= CYCLE_CURRENCIES_MAX);
    Corridor__CycleCurrency wires[CYCLE_CURRENCIES_MAX];
    Corridor__CycleCurrency *ptrs[CYCLE_CURRENCIES_MAX];
    for (size_t i = 0; i < st->n_currencies; i++) {
        corridor__cycle_currency__init(&wires[i]);
        wires[i].currency = (char *)st->currencies[i].currency;
        wires[i].first_to_second = st->currencies[i].first_to_second;
        wires[i].second_to_first = st->currencies[i].second_to_first;
        wires[i].net_first = st->currencies[i].net_first;
        wires[i].count = st->currencies[i].count;
        ptrs[i] = &wires[i];
    }
    Corridor__CycleStatement msg = CORRIDOR__CYCLE_STATEMENT__INIT;
    msg.first = (char *)st->first;
    msg.second = (char *)st->second;
    msg.cycle = st->cycle;
    msg.first_sent = st->first_sent;
    msg.second_sent = st->second_sent;
    msg.n_currencies = st->n_currencies;
    msg.currencies = ptrs;
    msg.digest.data = (uint8_t *)st->digest;
    msg.digest.len = DIGEST_BYTES;
    msg.entry_count = st->entry_count;
    size_t len = corridor__cycle_statement__get_packed_size(&msg);
    *out = malloc(len > 0 ? len : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__cycle_statement__pack(&msg, *out);
    assert(*out_len == len);
    return 0;
}

/* Copies a decoded string into a fixed field; false if absent-and-required or too long. */
static bool copy_text(char *dst, size_t dst_size, const char *src)
{
    size_t len = src != NULL ? strnlen(src, dst_size) : 0;
    if (len >= dst_size) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src != NULL ? src : "", len);
    dst[len] = '\0';
    return true;
}

static bool currency_valid(const Corridor__CycleCurrency *w, cycle_currency_t *c,
                           const char *previous)
{
    if (w == NULL || !copy_text(c->currency, sizeof c->currency, w->currency) ||
        currency_find(c->currency) == NULL ||
        (previous != NULL && strcmp(previous, c->currency) >= 0) || w->count == 0 ||
        w->first_to_second < 0 || w->second_to_first < 0) {
        return false;
    }
    c->first_to_second = w->first_to_second;
    c->second_to_first = w->second_to_first;
    c->net_first = w->net_first;
    c->count = w->count;
    int64_t net;
    return !__builtin_sub_overflow(w->second_to_first, w->first_to_second, &net) &&
           net == w->net_first && net != INT64_MIN;
}

bool cycle_statement_decode(const uint8_t *body, size_t len, cycle_statement_t *st)
{
    assert(st != NULL);
    memset(st, 0, sizeof *st);
    if (len == 0 || len > CYCLE_STATEMENT_MAX) {
        return false;
    }
    Corridor__CycleStatement *msg =
        (Corridor__CycleStatement *)wire_unpack(&corridor__cycle_statement__descriptor, len, body);
    if (msg == NULL) {
        return false;
    }
    bool ok = copy_text(st->first, sizeof st->first, msg->first) &&
              copy_text(st->second, sizeof st->second, msg->second) && st->first[0] != '\0' &&
              strcmp(st->first, st->second) < 0 && msg->cycle >= 1 &&
              msg->first_sent <= CORRIDOR_SEQUENCE_MAX &&
              msg->second_sent <= CORRIDOR_SEQUENCE_MAX &&
              msg->n_currencies <= CYCLE_CURRENCIES_MAX && msg->digest.len == DIGEST_BYTES;
    for (size_t i = 0; ok && i < msg->n_currencies; i++) {
        ok = currency_valid(msg->currencies[i], &st->currencies[i],
                            i > 0 ? st->currencies[i - 1].currency : NULL);
    }
    if (ok) {
        st->cycle = msg->cycle;
        st->first_sent = msg->first_sent;
        st->second_sent = msg->second_sent;
        st->n_currencies = msg->n_currencies;
        memcpy(st->digest, msg->digest.data, DIGEST_BYTES);
        st->entry_count = msg->entry_count;
    }
    corridor__cycle_statement__free_unpacked(msg, NULL);
    uint8_t *again = NULL;
    size_t again_len = 0;
    if (ok && cycle_statement_encode(st, &again, &again_len) != 0) {
        ok = false;
    } else if (ok) {
        ok = again_len == len && memcmp(again, body, len) == 0; /* canonical bytes only */
    }
    free(again);
    if (!ok) {
        memset(st, 0, sizeof *st);
    }
    return ok;
}

int cycle_sign(const uint8_t *statement, size_t len,
               const uint8_t sign_secret[static crypto_sign_SECRETKEYBYTES],
               uint8_t signature[static crypto_sign_BYTES])
{
    assert(statement != NULL || len == 0);
    return envelope_domain_sign(false, CYCLE_DOMAIN, statement, len, sign_secret, signature) == 0
               ? 0
               : -1;
}

bool cycle_verify(const uint8_t *statement, size_t len, const uint8_t *signature,
                  const uint8_t sign_public[static crypto_sign_PUBLICKEYBYTES])
{
    assert((statement != NULL || len == 0) && signature != NULL);
    uint8_t sig[crypto_sign_BYTES];
    memcpy(sig, signature, sizeof sig);
    return envelope_domain_sign(true, CYCLE_DOMAIN, statement, len, sign_public, sig) == 0;
}

void cycle_statement_hash(const uint8_t *statement, size_t len,
                          uint8_t out[static CYCLE_HASH_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, CYCLE_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)CYCLE_STATEMENT_DOMAIN,
                              sizeof CYCLE_STATEMENT_DOMAIN);
    crypto_generichash_update(&st, statement, len);
    crypto_generichash_final(&st, out, CYCLE_HASH_BYTES);
}

int cycle_proposal_encode(const uint8_t *statement, size_t len,
                          const uint8_t signature[static crypto_sign_BYTES], uint8_t **out,
                          size_t *out_len)
{
    Corridor__CycleProposal msg = CORRIDOR__CYCLE_PROPOSAL__INIT;
    msg.statement.data = (uint8_t *)statement;
    msg.statement.len = len;
    msg.signature.data = (uint8_t *)signature;
    msg.signature.len = crypto_sign_BYTES;
    size_t size = corridor__cycle_proposal__get_packed_size(&msg);
    *out = malloc(size > 0 ? size : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__cycle_proposal__pack(&msg, *out);
    return 0;
}

/* Keeps a copy of the statement bytes in the holder. */
static bool keep_statement(cycle_answer_t *a, const ProtobufCBinaryData *b)
{
    if (b->len == 0) {
        return true;
    }
    if (b->len > CYCLE_STATEMENT_MAX || (a->statement = malloc(b->len)) == NULL) {
        return false;
    }
    memcpy(a->statement, b->data, b->len);
    a->statement_len = b->len;
    return true;
}

static bool keep_signature(cycle_answer_t *a, const ProtobufCBinaryData *b)
{
    if (b->len == 0) {
        return true;
    }
    if (b->len != crypto_sign_BYTES) {
        return false;
    }
    memcpy(a->signature, b->data, crypto_sign_BYTES);
    a->has_signature = true;
    return true;
}

bool cycle_proposal_decode(const uint8_t *body, size_t len, cycle_answer_t *p)
{
    memset(p, 0, sizeof *p);
    Corridor__CycleProposal *msg =
        (Corridor__CycleProposal *)wire_unpack(&corridor__cycle_proposal__descriptor, len, body);
    if (msg == NULL) {
        return false;
    }
    bool ok = keep_signature(p, &msg->signature) && p->has_signature && msg->statement.len > 0 &&
              keep_statement(p, &msg->statement);
    corridor__cycle_proposal__free_unpacked(msg, NULL);
    if (!ok) {
        cycle_answer_release(p);
    }
    return ok;
}

int cycle_answer_encode(const cycle_answer_t *a, uint8_t **out, size_t *out_len)
{
    Corridor__CycleAnswer msg = CORRIDOR__CYCLE_ANSWER__INIT;
    msg.cycle = a->cycle;
    if (a->has_signature) {
        msg.signature.data = (uint8_t *)a->signature;
        msg.signature.len = crypto_sign_BYTES;
    }
    msg.statement.data = a->statement;
    msg.statement.len = a->statement_len;
    msg.error = (char *)a->error;
    size_t size = corridor__cycle_answer__get_packed_size(&msg);
    *out = malloc(size > 0 ? size : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__cycle_answer__pack(&msg, *out);
    return 0;
}

bool cycle_answer_decode(const uint8_t *body, size_t len, cycle_answer_t *a)
{
    memset(a, 0, sizeof *a);
    Corridor__CycleAnswer *msg =
        (Corridor__CycleAnswer *)wire_unpack(&corridor__cycle_answer__descriptor, len, body);
    if (msg == NULL) {
        return false;
    }
    a->cycle = msg->cycle;
    bool ok = keep_signature(a, &msg->signature) && keep_statement(a, &msg->statement) &&
              copy_text(a->error, sizeof a->error, msg->error);
    corridor__cycle_answer__free_unpacked(msg, NULL);
    if (!ok) {
        cycle_answer_release(a);
    }
    return ok;
}

void cycle_answer_release(cycle_answer_t *a)
{
    free(a->statement);
    a->statement = NULL;
    a->statement_len = 0;
}

int net_settlement_encode(const net_settlement_t *n, uint8_t **out, size_t *out_len)
{
    Corridor__NetSettlement msg = CORRIDOR__NET_SETTLEMENT__INIT;
    msg.settlement_id = (char *)n->settlement_id;
    msg.cycle = n->cycle;
    msg.currency = (char *)n->currency;
    msg.amount_minor = n->amount_minor;
    msg.reference = (char *)n->reference;
    msg.method = (char *)n->method;
    msg.clearing_system = (char *)n->clearing_system;
    msg.created_unix_ms = n->created_unix_ms;
    msg.statement_hash.data = (uint8_t *)n->statement_hash;
    msg.statement_hash.len = CYCLE_HASH_BYTES;
    size_t size = corridor__net_settlement__get_packed_size(&msg);
    *out = malloc(size > 0 ? size : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = corridor__net_settlement__pack(&msg, *out);
    return 0;
}

bool net_settlement_decode(const uint8_t *body, size_t len, net_settlement_t *n)
{
    memset(n, 0, sizeof *n);
    Corridor__NetSettlement *msg =
        (Corridor__NetSettlement *)wire_unpack(&corridor__net_settlement__descriptor, len, body);
    if (msg == NULL) {
        return false;
    }
    bool ok = copy_text(n->settlement_id, sizeof n->settlement_id, msg->settlement_id);
    ok = copy_text(n->currency, sizeof n->currency, msg->currency) && ok;
    ok = copy_text(n->reference, sizeof n->reference, msg->reference) && ok;
    ok = copy_text(n->method, sizeof n->method, msg->method) && ok;
    ok = copy_text(n->clearing_system, sizeof n->clearing_system, msg->clearing_system) && ok;
    ok = msg->statement_hash.len == CYCLE_HASH_BYTES && ok;
    if (msg->statement_hash.len == CYCLE_HASH_BYTES) {
        memcpy(n->statement_hash, msg->statement_hash.data, CYCLE_HASH_BYTES);
    }
    n->cycle = msg->cycle;
    n->amount_minor = msg->amount_minor;
    n->created_unix_ms = msg->created_unix_ms;
    corridor__net_settlement__free_unpacked(msg, NULL);
    return ok;
}

bool cycle_reference_valid(const char *text)
{
    size_t len = strnlen(text, CYCLE_REFERENCE_MAX + 1);
    if (len == 0 || len > CYCLE_REFERENCE_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < 0x20 || text[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

const char *net_settlement_check(const net_settlement_t *n)
{
    if (uetr_check(n->settlement_id) != VALID_OK) {
        return "the settlement id is not a UUIDv4";
    }
    if (n->cycle == 0) {
        return "cycle 0";
    }
    if (currency_find(n->currency) == NULL) {
        return "an unknown currency";
    }
    if (n->amount_minor <= 0) {
        return "an amount that is not positive";
    }
    if (!cycle_reference_valid(n->reference)) {
        return "the reference is not 1 to 35 printable ASCII bytes";
    }
    bool clearing = strcmp(n->method, "CLRG") == 0;
    if (!clearing && strcmp(n->method, "INDA") != 0 && strcmp(n->method, "INGA") != 0) {
        return "the method is not INDA, INGA or CLRG";
    }
    if (clearing ? !cycle_reference_valid(n->clearing_system) : n->clearing_system[0] != '\0') {
        return "a clearing system is named with CLRG, and only then";
    }
    return NULL;
}
