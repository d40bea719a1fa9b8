/*
 * Fuzzes the multilateral set-off message layer (node/message/setoff.c, PROTOCOL.md 3.12): the
 * strict decoders of SetoffTerms, SetoffBallot and SetoffVerdict, and SetoffRelay and
 * SetoffDecision. Terms, ballots and verdicts are what members sign (H10, H11, H12) and compare
 * by their bytes, so one that decodes must be exactly the bytes it encodes to.
 *
 * Every input goes to all five decoders (no selector byte: a seed of one kind is a mutation
 * source for the others), and the terms, ballots and verdict a relay or decision carries go to
 * their decoders too. Properties checked, beyond "no crash, no leak, no undefined behaviour":
 *   terms     decoded: re-encodes to the input byte for byte; 1 to SETOFF_TERMS_MAX bytes; a
 *             UUIDv4 id; 3 to 8 members with valid, distinct codes, each at its own position,
 *             each key id that of its key; a known currency; 0 <= amount <= the maximum;
 *             0 <= created < deadline; H13 is computed. Refused: the holder is all zero.
 *   ballot    decoded: re-encodes to the input; position < SETOFF_RING_MAX; yes with no reason,
 *             no with a 4-character code; 0 <= most_minor <= the maximum. Refused: all zero.
 *   verdict   decoded: re-encodes to the input; commit with no reason, abort with a code.
 *             Refused: all zero.
 *   relay,    decoded: terms that decode strictly to the holder's, at most SETOFF_RING_MAX
 *   decision  votes whose ballots decode strictly to the holder's, (a decision) a verdict that
 *             does; encoding the holder again decodes to the same holder; the signatures are
 *             checked against the terms' keys (any answer, no crash). Refused: the holder is
 *             all zero.
 *
 * Seeds: FUZZ_SETOFF_SEEDS=DIR build-fuzz/tests/fuzz/fuzz_setoff writes valid encodings of each
 * kind to DIR (tests/fuzz/corpus/fuzz_setoff holds them) and exits.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "setoff.h"
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

static bool code_valid(const char *reason)
{
    if (strlen(reason) != SETOFF_REASON_LEN) {
        return false;
    }
    for (size_t i = 0; i < SETOFF_REASON_LEN; i++) {
        char c = reason[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

static void fuzz_terms(const uint8_t *data, size_t size)
{
    setoff_terms_t t;
    if (!setoff_terms_decode(data, size, &t)) {
        assert(all_zero(&t, sizeof t));
        return;
    }
    assert(size > 0 && size <= SETOFF_TERMS_MAX);
    assert(uetr_check(t.setoff_id) == VALID_OK);
    assert(t.n >= SETOFF_RING_MIN && t.n <= SETOFF_RING_MAX);
    for (size_t i = 0; i < t.n; i++) {
        assert(node_code_check(t.ring[i].code) == VALID_OK);
        assert(setoff_position(&t, t.ring[i].code) == (int)i); /* distinct */
        uint8_t id[IDENTITY_KEY_ID_BYTES];
        identity_key_id(t.ring[i].signing_key, id);
        assert(memcmp(id, t.ring[i].key_id, sizeof id) == 0);
    }
    assert(currency_find(t.currency) != NULL);
    assert(t.amount_minor >= 0 && t.amount_minor <= CORRIDOR_AMOUNT_MINOR_MAX);
    assert(t.created_unix_ms >= 0 && t.deadline_unix_ms > t.created_unix_ms);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(setoff_terms_encode(&t, &out, &out_len) == 0);
    assert(out_len == size && memcmp(out, data, size) == 0);
    free(out);
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(data, size, h);
}

static void fuzz_ballot(const uint8_t *data, size_t size)
{
    setoff_ballot_t b;
    if (!setoff_ballot_decode(data, size, &b)) {
        assert(all_zero(&b, sizeof b));
        return;
    }
    assert(size > 0 && size <= SETOFF_BALLOT_MAX && b.position < SETOFF_RING_MAX);
    assert(b.yes ? b.reason[0] == '\0' : code_valid(b.reason));
    assert(b.most_minor >= 0 && b.most_minor <= CORRIDOR_AMOUNT_MINOR_MAX);
    uint8_t out[SETOFF_BALLOT_MAX];
    size_t out_len = setoff_ballot_encode(&b, out);
    assert(out_len == size && memcmp(out, data, size) == 0);
}

static void fuzz_verdict(const uint8_t *data, size_t size)
{
    setoff_verdict_t v;
    if (!setoff_verdict_decode(data, size, &v)) {
        assert(all_zero(&v, sizeof v));
        return;
    }
    assert(size > 0 && size <= SETOFF_VERDICT_MAX);
    assert(v.commit ? v.reason[0] == '\0' : code_valid(v.reason));
    uint8_t out[SETOFF_VERDICT_MAX];
    size_t out_len = setoff_verdict_encode(&v, out);
    assert(out_len == size && memcmp(out, data, size) == 0);
}

static void same_message(const setoff_message_t *a, const setoff_message_t *b)
{
    assert(a->terms_len == b->terms_len);
    assert(memcmp(a->terms_bytes, b->terms_bytes, a->terms_len) == 0);
    assert(memcmp(&a->terms, &b->terms, sizeof a->terms) == 0);
    assert(memcmp(a->terms_signature, b->terms_signature, sizeof a->terms_signature) == 0);
    assert(a->verdict_len == b->verdict_len);
    assert(memcmp(a->verdict_bytes, b->verdict_bytes, sizeof a->verdict_bytes) == 0);
    assert(memcmp(&a->verdict, &b->verdict, sizeof a->verdict) == 0);
    assert(memcmp(a->verdict_signature, b->verdict_signature, sizeof a->verdict_signature) == 0);
    assert(a->n_votes == b->n_votes);
    assert(memcmp(a->votes, b->votes, sizeof a->votes) == 0);
}

static void fuzz_message(const uint8_t *data, size_t size, bool decision)
{
    setoff_message_t m, back;
    if (!setoff_message_decode(data, size, decision, &m)) {
        assert(all_zero(&m, sizeof m));
        return;
    }
    assert(m.terms_bytes != NULL && m.terms_len > 0 && m.terms_len <= SETOFF_TERMS_MAX);
    setoff_terms_t t;
    assert(setoff_terms_decode(m.terms_bytes, m.terms_len, &t));
    assert(memcmp(&t, &m.terms, sizeof t) == 0);
    fuzz_terms(m.terms_bytes, m.terms_len);
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(m.terms_bytes, m.terms_len, h);
    (void)setoff_verify(SETOFF_TERMS_DOMAIN, m.terms_bytes, m.terms_len, m.terms_signature,
                        m.terms.ring[0].signing_key);
    assert(m.n_votes <= SETOFF_RING_MAX);
    for (size_t i = 0; i < m.n_votes; i++) {
        const setoff_vote_t *v = &m.votes[i];
        setoff_ballot_t b;
        assert(setoff_ballot_decode(v->ballot_bytes, v->ballot_len, &b));
        assert(memcmp(&b, &v->ballot, sizeof b) == 0);
        fuzz_ballot(v->ballot_bytes, v->ballot_len);
        bool valid = setoff_vote_valid(&m.terms, h, v);
        assert(!valid ||
               (v->ballot.position < m.terms.n && memcmp(v->ballot.terms_hash, h, sizeof h) == 0));
    }
    if (decision) {
        setoff_verdict_t verdict;
        assert(setoff_verdict_decode(m.verdict_bytes, m.verdict_len, &verdict));
        assert(memcmp(&verdict, &m.verdict, sizeof verdict) == 0);
        fuzz_verdict(m.verdict_bytes, m.verdict_len);
        (void)setoff_verify(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len,
                            m.verdict_signature, m.terms.ring[0].signing_key);
    } else {
        assert(m.verdict_len == 0 && all_zero(&m.verdict, sizeof m.verdict));
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert(setoff_message_encode(&m, decision, &out, &out_len) == 0);
    assert(setoff_message_decode(out, out_len, decision, &back));
    same_message(&m, &back);
    free(out);
    setoff_message_release(&back);
    setoff_message_release(&m);
    assert(m.terms_bytes == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_terms(data, size);
    fuzz_ballot(data, size);
    fuzz_verdict(data, size);
    fuzz_message(data, size, false);
    fuzz_message(data, size, true);
    return 0;
}

/* ---- seeds ---------------------------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, const uint8_t *bytes, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_setoff: cannot write %s\n", path);
        exit(1);
    }
}

static void write_seeds(const char *dir)
{
    printf("fuzz_setoff: writing seeds to %s\n", dir);
    static const char *const codes[] = {"BKRURUMM", "BMJIIRTH", "KZKZKZKA", "BKCHCNBJ"};
    uint8_t secrets[4][crypto_sign_SECRETKEYBYTES];
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    setoff_terms_t *t = &m.terms;
    snprintf(t->setoff_id, sizeof t->setoff_id, "c56a4180-65aa-42ec-a945-5fd21dec0538");
    t->n = 4;
    for (size_t i = 0; i < t->n; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        memset(seed, (int)(i + 1), sizeof seed);
        crypto_sign_seed_keypair(t->ring[i].signing_key, secrets[i], seed);
        identity_key_id(t->ring[i].signing_key, t->ring[i].key_id);
        snprintf(t->ring[i].code, sizeof t->ring[i].code, "%s", codes[i]);
    }
    snprintf(t->currency, sizeof t->currency, "RUB");
    t->amount_minor = 100000;
    t->created_unix_ms = INT64_C(1767225600000);
    t->deadline_unix_ms = t->created_unix_ms + 3600000;
    int rc = setoff_terms_encode(t, &m.terms_bytes, &m.terms_len);
    assert(rc == 0);
    write_seed(dir, "terms", m.terms_bytes, m.terms_len);
    rc =
        setoff_sign(SETOFF_TERMS_DOMAIN, m.terms_bytes, m.terms_len, secrets[0], m.terms_signature);
    assert(rc == 0);
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(m.terms_bytes, m.terms_len, h);
    for (uint32_t i = 0; i < 4; i++) {
        setoff_ballot_t b;
        memset(&b, 0, sizeof b);
        memcpy(b.terms_hash, h, sizeof h);
        b.position = i;
        b.yes = i != 3;
        snprintf(b.reason, sizeof b.reason, "%s", i != 3 ? "" : "AM04");
        b.most_minor = i == 2 ? 250000 : 0;
        rc = setoff_vote_make(&b, secrets[i], &m.votes[i]);
        assert(rc == 0);
    }
    write_seed(dir, "ballot_yes", m.votes[0].ballot_bytes, m.votes[0].ballot_len);
    write_seed(dir, "ballot_asking", m.votes[2].ballot_bytes, m.votes[2].ballot_len);
    write_seed(dir, "ballot_no", m.votes[3].ballot_bytes, m.votes[3].ballot_len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    m.n_votes = 4; /* three yes votes, then a refusal */
    rc = setoff_message_encode(&m, false, &out, &out_len);
    assert(rc == 0);
    write_seed(dir, "relay_refused", out, out_len);
    free(out);
    m.n_votes = 1;
    rc = setoff_message_encode(&m, false, &out, &out_len);
    assert(rc == 0);
    write_seed(dir, "relay", out, out_len);
    free(out);
    memcpy(m.verdict.terms_hash, h, sizeof h);
    snprintf(m.verdict.reason, sizeof m.verdict.reason, "AM04");
    m.verdict_len = setoff_verdict_encode(&m.verdict, m.verdict_bytes);
    assert(m.verdict_len > 0);
    write_seed(dir, "verdict_abort", m.verdict_bytes, m.verdict_len);
    rc = setoff_sign(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len, secrets[0],
                     m.verdict_signature);
    assert(rc == 0);
    m.n_votes = 0;
    rc = setoff_message_encode(&m, true, &out, &out_len);
    assert(rc == 0);
    write_seed(dir, "decision_abort", out, out_len);
    free(out);
    m.verdict.commit = true;
    m.verdict.reason[0] = '\0';
    m.verdict_len = setoff_verdict_encode(&m.verdict, m.verdict_bytes);
    write_seed(dir, "verdict_commit", m.verdict_bytes, m.verdict_len);
    rc = setoff_sign(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len, secrets[0],
                     m.verdict_signature);
    assert(rc == 0);
    m.n_votes = 3;
    rc = setoff_message_encode(&m, true, &out, &out_len);
    assert(rc == 0);
    write_seed(dir, "decision_commit", out, out_len);
    free(out);
    setoff_message_release(&m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        abort();
    }
    const char *seeds = getenv("FUZZ_SETOFF_SEEDS");
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}
