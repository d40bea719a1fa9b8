/*
 * Fuzzes the settlement-cycle message layer (node/message/cycle.c, PROTOCOL.md 3.11): the strict
 * CycleStatement decoder, CycleProposal, CycleAnswer and NetSettlement (pacs.009). All four are
 * what a peer sends; the statement is also what both sides sign (H8), so a statement that
 * decodes must be exactly the bytes its figures encode to, from either side's view.
 *
 * Every input goes to all four decoders (no selector byte: a seed of one kind is a mutation
 * source for the others), and the statement a proposal or an answer carries goes to the
 * statement decoder too. Properties checked, beyond "no crash, no leak, no undefined
 * behaviour":
 *   statement   decoded: re-encodes to the input byte for byte; cycle_statement_from_view with
 *               the decoded figures, from first's view and from second's, gives the same
 *               statement and bytes; each side's view of a currency nets to received - paid;
 *               its H9 is computed. Refused: the holder is all zero.
 *   proposal    decoded: a 64-byte signature and a statement of 1 to CYCLE_STATEMENT_MAX
 *               bytes; encoding the two again decodes to the same.
 *   answer      decoded: statement at most CYCLE_STATEMENT_MAX, error at most CYCLE_ERROR_MAX;
 *               encoding it again decodes to the same.
 *   net         decoded: encoding again decodes to the same; net_settlement_check passing
 *               implies its rules (UUIDv4 id, cycle >= 1, known currency, amount > 0, printable
 *               reference, a known method, a clearing system with CLRG only).
 *
 * Seeds: FUZZ_CYCLE_SEEDS=DIR build-fuzz/tests/fuzz/fuzz_cycle writes valid encodings of each
 * kind to DIR (tests/fuzz/corpus/fuzz_cycle holds them) and exits.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cycle.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

/* The statement rebuilt from one side's view of the decoded figures must be the same. */
static void check_view(const cycle_statement_t *st, const uint8_t *bytes, size_t len, bool as_first)
{
    cycle_view_t views[CYCLE_CURRENCIES_MAX];
    for (size_t i = 0; i < st->n_currencies; i++) {
        const cycle_currency_t *c = &st->currencies[i];
        int64_t paid, received, net;
        cycle_currency_view(c, as_first, &paid, &received, &net);
        assert(received - paid == net); /* no overflow: grosses are >= 0 */
        memcpy(views[i].currency, c->currency, sizeof views[i].currency);
        views[i].paid = paid;
        views[i].received = received;
        views[i].count = c->count;
    }
    const char *self = as_first ? st->first : st->second;
    const char *peer = as_first ? st->second : st->first;
    uint64_t own_sent = as_first ? st->first_sent : st->second_sent;
    uint64_t peer_sent = as_first ? st->second_sent : st->first_sent;
    cycle_statement_t again;
    bool ok = cycle_statement_from_view(&again, self, peer, st->cycle, own_sent, peer_sent, views,
                                        st->n_currencies, st->digest, st->entry_count);
    assert(ok);
    assert(memcmp(&again, st, sizeof again) == 0);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(cycle_statement_encode(&again, &out, &out_len) == 0);
    assert(out_len == len && memcmp(out, bytes, len) == 0);
    free(out);
}

static void fuzz_statement(const uint8_t *data, size_t size)
{
    cycle_statement_t st;
    if (!cycle_statement_decode(data, size, &st)) {
        assert(all_zero(&st, sizeof st));
        return;
    }
    assert(size > 0 && size <= CYCLE_STATEMENT_MAX);
    assert(st.cycle >= 1 && strcmp(st.first, st.second) < 0);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(cycle_statement_encode(&st, &out, &out_len) == 0);
    assert(out_len == size && memcmp(out, data, size) == 0);
    free(out);
    check_view(&st, data, size, true);
    check_view(&st, data, size, false);
    uint8_t h[CYCLE_HASH_BYTES];
    cycle_statement_hash(data, size, h);
}

static void same_answer(const cycle_answer_t *a, const cycle_answer_t *b)
{
    assert(a->cycle == b->cycle && a->has_signature == b->has_signature);
    assert(!a->has_signature || memcmp(a->signature, b->signature, sizeof a->signature) == 0);
    assert(a->statement_len == b->statement_len);
    assert(a->statement_len == 0 || memcmp(a->statement, b->statement, a->statement_len) == 0);
    assert(strcmp(a->error, b->error) == 0);
}

static void fuzz_proposal(const uint8_t *data, size_t size)
{
    cycle_answer_t p, back;
    if (!cycle_proposal_decode(data, size, &p)) {
        assert(p.statement == NULL);
        return;
    }
    assert(p.has_signature && p.statement != NULL);
    assert(p.statement_len >= 1 && p.statement_len <= CYCLE_STATEMENT_MAX);
    assert(p.cycle == 0 && p.error[0] == '\0');
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(cycle_proposal_encode(p.statement, p.statement_len, p.signature, &out, &out_len) == 0);
    assert(cycle_proposal_decode(out, out_len, &back));
    same_answer(&p, &back);
    free(out);
    cycle_answer_release(&back);
    fuzz_statement(p.statement, p.statement_len);
    cycle_answer_release(&p);
}

static void fuzz_answer(const uint8_t *data, size_t size)
{
    cycle_answer_t a, back;
    if (!cycle_answer_decode(data, size, &a)) {
        assert(a.statement == NULL);
        return;
    }
    assert(a.statement_len <= CYCLE_STATEMENT_MAX);
    assert((a.statement == NULL) == (a.statement_len == 0));
    assert(strlen(a.error) <= CYCLE_ERROR_MAX);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(cycle_answer_encode(&a, &out, &out_len) == 0);
    assert(cycle_answer_decode(out, out_len, &back));
    same_answer(&a, &back);
    free(out);
    cycle_answer_release(&back);
    if (a.statement != NULL) {
        fuzz_statement(a.statement, a.statement_len);
    }
    cycle_answer_release(&a);
}

static bool printable(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CYCLE_REFERENCE_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static void fuzz_net(const uint8_t *data, size_t size)
{
    net_settlement_t n, back;
    if (!net_settlement_decode(data, size, &n)) {
        return;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(net_settlement_encode(&n, &out, &out_len) == 0);
    assert(net_settlement_decode(out, out_len, &back));
    assert(memcmp(&n, &back, sizeof n) == 0);
    free(out);
    const char *why = net_settlement_check(&n);
    if (why == NULL) {
        assert(uetr_check(n.settlement_id) == VALID_OK);
        assert(n.cycle >= 1 && currency_find(n.currency) != NULL && n.amount_minor > 0);
        assert(printable(n.reference));
        bool clrg = strcmp(n.method, "CLRG") == 0;
        assert(clrg || strcmp(n.method, "INDA") == 0 || strcmp(n.method, "INGA") == 0);
        assert(clrg ? printable(n.clearing_system) : n.clearing_system[0] == '\0');
    } else {
        assert(why[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_statement(data, size);
    fuzz_proposal(data, size);
    fuzz_answer(data, size);
    fuzz_net(data, size);
    return 0;
}

/* ---- seeds ---------------------------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, const uint8_t *bytes, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_cycle: cannot write %s\n", path);
        exit(1);
    }
}

static uint8_t *seed_statement(uint64_t cycle, bool self_first, size_t *len)
{
    static const cycle_view_t views[] = {
        {"IRR", 0, 450000000, 1}, {"RUB", 1125000, 50000, 3}, {"USD", INT64_MAX, 0, 1}};
    uint8_t digest[DIGEST_BYTES];
    for (size_t i = 0; i < sizeof digest; i++) {
        digest[i] = (uint8_t)(i * 7 + cycle);
    }
    cycle_statement_t st;
    bool ok = cycle_statement_from_view(&st, self_first ? "BKRURUMM" : "BMJIIRTH",
                                        self_first ? "BMJIIRTH" : "BKRURUMM", cycle, 14, 9, views,
                                        cycle == 1 ? 2 : 3, digest, cycle == 1 ? 4 : 5);
    assert(ok);
    uint8_t *out = NULL;
    assert(cycle_statement_encode(&st, &out, len) == 0);
    return out;
}

static void write_seeds(const char *dir)
{
    printf("fuzz_cycle: writing seeds to %s\n", dir);
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES],
        sk[crypto_sign_SECRETKEYBYTES];
    memset(seed, 0x01, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    size_t len = 0, out_len = 0;
    uint8_t *st = seed_statement(1, true, &len);
    write_seed(dir, "statement", st, len);
    uint8_t *st2 = NULL;
    size_t len2 = 0;
    st2 = seed_statement(2, false, &len2);
    write_seed(dir, "statement_three_currencies", st2, len2);
    uint8_t sig[crypto_sign_BYTES];
    assert(cycle_sign(st, len, sk, sig) == 0);
    uint8_t *out = NULL;
    assert(cycle_proposal_encode(st, len, sig, &out, &out_len) == 0);
    write_seed(dir, "proposal", out, out_len);
    free(out);
    cycle_answer_t a;
    memset(&a, 0, sizeof a);
    a.cycle = 1;
    a.has_signature = true;
    memcpy(a.signature, sig, sizeof sig);
    assert(cycle_answer_encode(&a, &out, &out_len) == 0);
    write_seed(dir, "answer_countersigned", out, out_len);
    free(out);
    a.statement = st2;
    a.statement_len = len2;
    snprintf(a.error, sizeof a.error, "the figures differ");
    assert(cycle_answer_encode(&a, &out, &out_len) == 0);
    write_seed(dir, "answer_disputed", out, out_len);
    free(out);
    memset(&a, 0, sizeof a);
    a.cycle = 7;
    snprintf(a.error, sizeof a.error, "cycle 7 is not the next");
    assert(cycle_answer_encode(&a, &out, &out_len) == 0);
    write_seed(dir, "answer_refused", out, out_len);
    free(out);
    net_settlement_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.settlement_id, sizeof n.settlement_id, "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e");
    n.cycle = 1;
    snprintf(n.currency, sizeof n.currency, "RUB");
    n.amount_minor = 1075000;
    snprintf(n.reference, sizeof n.reference, "KAT-NET-0001");
    snprintf(n.method, sizeof n.method, "CLRG");
    snprintf(n.clearing_system, sizeof n.clearing_system, "KAT RTGS");
    n.created_unix_ms = INT64_C(1767312000000);
    cycle_statement_hash(st, len, n.statement_hash);
    assert(net_settlement_check(&n) == NULL);
    assert(net_settlement_encode(&n, &out, &out_len) == 0);
    write_seed(dir, "net_clrg", out, out_len);
    free(out);
    snprintf(n.method, sizeof n.method, "INDA");
    n.clearing_system[0] = '\0';
    assert(net_settlement_check(&n) == NULL);
    assert(net_settlement_encode(&n, &out, &out_len) == 0);
    write_seed(dir, "net_inda", out, out_len);
    free(out);
    free(st);
    free(st2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        abort();
    }
    const char *seeds = getenv("FUZZ_CYCLE_SEEDS");
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}
