/*
 * Unit tests for node/message/setoff.c: the multilateral set-off's terms, ballots and verdicts
 * (PROTOCOL.md 3.12.1), their strict decoding, the signatures H10, H11, H12 and the terms hash
 * H13 (3.12.8), votes checked against the ring's keys, and the SetoffRelay and SetoffDecision
 * that carry them (3.12.2, 3.12.3).
 *
 * Every node of a ring compares terms, ballots and verdicts by their bytes and by signatures
 * over them: a decoder must refuse every byte string that does not re-encode to itself, and a
 * vote must count only under the key the terms give its position.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "corridor.pb-c.h"
#include "envelope.h"
#include "setoff.h"

#define SETOFF_ID "5f0c6a2e-3b1d-4c7a-9e8f-1a2b3c4d5e6f"
#define KEYS      9 /* one more than a ring may hold */

static identity_t *keys[KEYS];
static const char *const codes[KEYS] = {"BKRURUMM", "BMJIIRTH", "HSBKKZKX", "BKCHCNBJ", "SBININBB",
                                        "AKBBBYBX", "ABOCCNBJ", "VTBRRUMM", "BKMTIRTH"};

static int setup(void **state)
{
    if (test_sodium_setup(state) != 0) {
        return -1;
    }
    for (size_t i = 0; i < KEYS; i++) {
        keys[i] = test_fixed_identity((uint8_t)(i + 1));
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < KEYS; i++) {
        identity_destroy(&keys[i]);
    }
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static setoff_member_t member(size_t i)
{
    setoff_member_t m;
    memset(&m, 0, sizeof m);
    snprintf(m.code, sizeof m.code, "%s", codes[i]);
    memcpy(m.key_id, keys[i]->key_id, sizeof m.key_id);
    memcpy(m.signing_key, keys[i]->sign_public, sizeof m.signing_key);
    return m;
}

/* Terms of a ring of the first `n` keys: 1 000.00 RUB, a minute to vote. */
static setoff_terms_t sample_terms(size_t n)
{
    setoff_terms_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.setoff_id, sizeof t.setoff_id, SETOFF_ID);
    t.n = n;
    for (size_t i = 0; i < n; i++) {
        t.ring[i] = member(i);
    }
    snprintf(t.currency, sizeof t.currency, "RUB");
    t.amount_minor = 100000;
    t.created_unix_ms = INT64_C(1767225600000);
    t.deadline_unix_ms = t.created_unix_ms + 60000;
    return t;
}

static uint8_t *terms_bytes(const setoff_terms_t *t, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(setoff_terms_encode(t, &out, len), 0);
    return out;
}

/* Whether the terms encode to bytes that decode; decoded, they are what was encoded; refused,
 * the holder is all zero. */
static bool terms_decode(const setoff_terms_t *t)
{
    size_t len = 0;
    uint8_t *bytes = terms_bytes(t, &len);
    setoff_terms_t back, zero;
    memset(&back, 0x5a, sizeof back);
    memset(&zero, 0, sizeof zero);
    bool ok = setoff_terms_decode(bytes, len, &back);
    assert_memory_equal(&back, ok ? t : &zero, sizeof back);
    free(bytes);
    return ok;
}

/* Terms packed by protobuf-c straight from members (any number, any lengths). */
static uint8_t *raw_terms(const setoff_terms_t *t, const setoff_member_t *members, size_t n,
                          size_t *len)
{
    Corridor__SetoffMember wires[KEYS];
    Corridor__SetoffMember *ptrs[KEYS];
    assert_true(n <= KEYS);
    for (size_t i = 0; i < n; i++) {
        corridor__setoff_member__init(&wires[i]);
        wires[i].code = (char *)members[i].code;
        wires[i].key_id =
            (ProtobufCBinaryData){sizeof members[i].key_id, (uint8_t *)members[i].key_id};
        wires[i].signing_key =
            (ProtobufCBinaryData){sizeof members[i].signing_key, (uint8_t *)members[i].signing_key};
        ptrs[i] = &wires[i];
    }
    Corridor__SetoffTerms msg = CORRIDOR__SETOFF_TERMS__INIT;
    msg.setoff_id = (char *)t->setoff_id;
    msg.n_ring = n;
    msg.ring = ptrs;
    msg.currency = (char *)t->currency;
    msg.amount_minor = t->amount_minor;
    msg.created_unix_ms = t->created_unix_ms;
    msg.deadline_unix_ms = t->deadline_unix_ms;
    *len = corridor__setoff_terms__get_packed_size(&msg);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    assert_int_equal(corridor__setoff_terms__pack(&msg, out), *len);
    return out;
}

static setoff_ballot_t sample_ballot(const uint8_t hash[static SETOFF_HASH_BYTES], uint32_t pos,
                                     bool yes, const char *reason)
{
    setoff_ballot_t b;
    memset(&b, 0, sizeof b);
    memcpy(b.terms_hash, hash, SETOFF_HASH_BYTES);
    b.position = pos;
    b.yes = yes;
    snprintf(b.reason, sizeof b.reason, "%s", reason);
    return b;
}

static bool ballot_decodes(const setoff_ballot_t *b)
{
    uint8_t buf[SETOFF_BALLOT_MAX];
    size_t len = setoff_ballot_encode(b, buf);
    assert_true(len > 0);
    setoff_ballot_t back, zero;
    memset(&back, 0x5a, sizeof back);
    memset(&zero, 0, sizeof zero);
    bool ok = setoff_ballot_decode(buf, len, &back);
    assert_memory_equal(&back, ok ? b : &zero, sizeof back);
    return ok;
}

static bool verdict_decodes(const setoff_verdict_t *v)
{
    uint8_t buf[SETOFF_VERDICT_MAX];
    size_t len = setoff_verdict_encode(v, buf);
    assert_true(len > 0);
    setoff_verdict_t back, zero;
    memset(&back, 0x5a, sizeof back);
    memset(&zero, 0, sizeof zero);
    bool ok = setoff_verdict_decode(buf, len, &back);
    assert_memory_equal(&back, ok ? v : &zero, sizeof back);
    return ok;
}

/* ---- terms ---------------------------------------------------------------------------------- */

static void test_terms_round_trip(void **state)
{
    (void)state;
    for (size_t n = SETOFF_RING_MIN; n <= SETOFF_RING_MAX; n++) {
        setoff_terms_t t = sample_terms(n);
        assert_true(terms_decode(&t));
    }
    setoff_terms_t t = sample_terms(3);
    t.amount_minor = 0; /* an asking round */
    assert_true(terms_decode(&t));
    t.amount_minor = CORRIDOR_AMOUNT_MINOR_MAX;
    assert_true(terms_decode(&t));
    t.created_unix_ms = 0;
    t.deadline_unix_ms = 1;
    assert_true(terms_decode(&t));
    t.deadline_unix_ms = INT64_MAX;
    assert_true(terms_decode(&t));
    snprintf(t.currency, sizeof t.currency, "JPY");
    assert_true(terms_decode(&t));
    assert_int_equal(setoff_position(&t, "BKRURUMM"), 0);
    assert_int_equal(setoff_position(&t, "HSBKKZKX"), 2);
    assert_int_equal(setoff_position(&t, "BKCHCNBJ"), -1);
    assert_int_equal(setoff_position(&t, ""), -1);
}

static void test_terms_field_rules(void **state)
{
    (void)state;
    setoff_terms_t t = sample_terms(3);
    t.amount_minor = CORRIDOR_AMOUNT_MINOR_MAX + 1;
    assert_false(terms_decode(&t));
    t.amount_minor = -1;
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.deadline_unix_ms = t.created_unix_ms;
    assert_false(terms_decode(&t));
    t.deadline_unix_ms = t.created_unix_ms - 1;
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.created_unix_ms = -1;
    t.deadline_unix_ms = 5;
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    snprintf(t.currency, sizeof t.currency, "XXQ");
    assert_false(terms_decode(&t));
    snprintf(t.currency, sizeof t.currency, "rub");
    assert_false(terms_decode(&t));
    t.currency[0] = '\0';
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.setoff_id[14] = '1'; /* a UUID of version 1 */
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.setoff_id[0] = 'F'; /* upper case */
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.setoff_id[0] = '\0';
    assert_false(terms_decode(&t));
    /* members: a bad code, one twice, a key id of another key */
    t = sample_terms(3);
    snprintf(t.ring[1].code, sizeof t.ring[1].code, "bmjiirth");
    assert_false(terms_decode(&t));
    t.ring[1].code[0] = '\0';
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.ring[2] = t.ring[0];
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    memcpy(t.ring[2].code, t.ring[1].code, sizeof t.ring[2].code); /* same code, other keys */
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    memcpy(t.ring[1].key_id, keys[2]->key_id, IDENTITY_KEY_ID_BYTES);
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.ring[0].key_id[15] ^= 1;
    assert_false(terms_decode(&t));
    t = sample_terms(3);
    t.ring[2].signing_key[0] ^= 1;
    assert_false(terms_decode(&t));
}

static void test_terms_ring_size(void **state)
{
    (void)state;
    setoff_member_t members[KEYS];
    for (size_t i = 0; i < KEYS; i++) {
        members[i] = member(i);
    }
    setoff_terms_t t = sample_terms(3), back;
    for (size_t n = 0; n <= KEYS; n++) {
        size_t len = 0;
        uint8_t *bytes = raw_terms(&t, members, n, &len);
        bool want = n >= SETOFF_RING_MIN && n <= SETOFF_RING_MAX;
        assert_int_equal(setoff_terms_decode(bytes, len, &back), want);
        free(bytes);
    }
    /* key id of 15 bytes, key of 31: packed by hand */
    Corridor__SetoffMember wires[3];
    Corridor__SetoffMember *ptrs[3];
    for (int bad = 0; bad < 2; bad++) {
        for (size_t i = 0; i < 3; i++) {
            corridor__setoff_member__init(&wires[i]);
            wires[i].code = (char *)members[i].code;
            wires[i].key_id = (ProtobufCBinaryData){IDENTITY_KEY_ID_BYTES, members[i].key_id};
            wires[i].signing_key =
                (ProtobufCBinaryData){crypto_sign_PUBLICKEYBYTES, members[i].signing_key};
            ptrs[i] = &wires[i];
        }
        if (bad == 0) {
            wires[1].key_id.len--;
        } else {
            wires[1].signing_key.len--;
        }
        Corridor__SetoffTerms msg = CORRIDOR__SETOFF_TERMS__INIT;
        msg.setoff_id = (char *)t.setoff_id;
        msg.n_ring = 3;
        msg.ring = ptrs;
        msg.currency = "RUB";
        msg.amount_minor = 1;
        msg.created_unix_ms = 1;
        msg.deadline_unix_ms = 2;
        uint8_t buf[SETOFF_TERMS_MAX];
        size_t len = corridor__setoff_terms__pack(&msg, buf);
        assert_false(setoff_terms_decode(buf, len, &back));
    }
}

static void test_terms_canonical_only(void **state)
{
    (void)state;
    setoff_terms_t t = sample_terms(3), back;
    size_t len = 0;
    uint8_t *bytes = terms_bytes(&t, &len);
    assert_true(setoff_terms_decode(bytes, len, &back));
    uint8_t *more = malloc(len + 64);
    assert_non_null(more);
    /* a field encoded twice: currency again at the end (protobuf-c keeps the last) */
    memcpy(more, bytes, len);
    memcpy(more + len, "\x1a\x03RUB", 5);
    assert_false(setoff_terms_decode(more, len + 5, &back));
    /* a default value written out: amount 0 explicitly (an asking round) */
    setoff_terms_t ask = sample_terms(3);
    ask.amount_minor = 0;
    size_t ask_len = 0;
    uint8_t *ask_bytes = terms_bytes(&ask, &ask_len);
    assert_true(setoff_terms_decode(ask_bytes, ask_len, &back));
    memcpy(more, ask_bytes, ask_len);
    memcpy(more + ask_len, "\x20\x00", 2);
    assert_false(setoff_terms_decode(more, ask_len + 2, &back));
    free(ask_bytes);
    /* an unknown field */
    memcpy(more, bytes, len);
    memcpy(more + len, "\x38\x01", 2);
    assert_false(setoff_terms_decode(more, len + 2, &back));
    /* a varint longer than it needs (amount 100000 as 6 bytes instead of 3) */
    const uint8_t amount[] = {0x20, 0xa0, 0x8d, 0x06};
    size_t off = 0;
    while (off + sizeof amount <= len && memcmp(bytes + off, amount, sizeof amount) != 0) {
        off++;
    }
    assert_true(off + sizeof amount <= len);
    memcpy(more, bytes, off);
    const uint8_t padded[] = {0x20, 0xa0, 0x8d, 0x86, 0x80, 0x80, 0x00};
    memcpy(more + off, padded, sizeof padded);
    memcpy(more + off + sizeof padded, bytes + off + sizeof amount, len - off - sizeof amount);
    size_t padded_len = len + sizeof padded - sizeof amount;
    assert_false(setoff_terms_decode(more, padded_len, &back));
    /* truncated, empty, over the limit */
    for (size_t cut = 0; cut < len; cut++) {
        assert_false(setoff_terms_decode(bytes, cut, &back));
    }
    assert_false(setoff_terms_decode(NULL, 0, &back));
    uint8_t *big = calloc(1, SETOFF_TERMS_MAX + 1);
    assert_non_null(big);
    memcpy(big, bytes, len);
    assert_false(setoff_terms_decode(big, SETOFF_TERMS_MAX + 1, &back));
    free(big);
    free(more);
    free(bytes);
    /* the largest honest terms fit the limit */
    t = sample_terms(SETOFF_RING_MAX);
    for (size_t i = 0; i < t.n; i++) {
        snprintf(t.ring[i].code, sizeof t.ring[i].code, "%.10s%c", "ABCDEFGHIJK", (char)('A' + i));
    }
    t.amount_minor = CORRIDOR_AMOUNT_MINOR_MAX;
    t.created_unix_ms = INT64_MAX - 1;
    t.deadline_unix_ms = INT64_MAX;
    bytes = terms_bytes(&t, &len);
    assert_true(len <= SETOFF_TERMS_MAX);
    assert_true(setoff_terms_decode(bytes, len, &back));
    free(bytes);
}

/* ---- ballot and verdict --------------------------------------------------------------------- */

static void test_ballot_rules(void **state)
{
    (void)state;
    uint8_t hash[SETOFF_HASH_BYTES];
    memset(hash, 0xab, sizeof hash);
    setoff_ballot_t b = sample_ballot(hash, 0, true, "");
    assert_true(ballot_decodes(&b));
    b.position = SETOFF_RING_MAX - 1;
    b.most_minor = CORRIDOR_AMOUNT_MINOR_MAX;
    assert_true(ballot_decodes(&b));
    b = sample_ballot(hash, 2, false, "AM04");
    assert_true(ballot_decodes(&b));
    b = sample_ballot(hash, 2, false, "AB05");
    assert_true(ballot_decodes(&b));
    /* refused */
    b = sample_ballot(hash, SETOFF_RING_MAX, true, "");
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, UINT32_MAX, true, "");
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, 1, true, "AM04"); /* yes with a reason */
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, 1, false, ""); /* no without one */
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, 1, false, "am04");
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, 1, false, "AM0");
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, 1, false, "AM 4");
    assert_false(ballot_decodes(&b));
    b = sample_ballot(hash, 1, true, "");
    b.most_minor = -1;
    assert_false(ballot_decodes(&b));
    b.most_minor = CORRIDOR_AMOUNT_MINOR_MAX + 1;
    assert_false(ballot_decodes(&b));

    setoff_ballot_t back;
    /* a reason of 5 characters, a hash of 31 bytes: packed by hand */
    Corridor__SetoffBallot msg = CORRIDOR__SETOFF_BALLOT__INIT;
    msg.terms_hash = (ProtobufCBinaryData){SETOFF_HASH_BYTES, hash};
    msg.position = 1;
    msg.reason = "AM045";
    uint8_t buf[256];
    size_t len = corridor__setoff_ballot__pack(&msg, buf);
    assert_false(setoff_ballot_decode(buf, len, &back));
    msg.reason = "AM04";
    len = corridor__setoff_ballot__pack(&msg, buf);
    assert_true(setoff_ballot_decode(buf, len, &back));
    msg.terms_hash.len = SETOFF_HASH_BYTES - 1;
    len = corridor__setoff_ballot__pack(&msg, buf);
    assert_false(setoff_ballot_decode(buf, len, &back));
    msg.terms_hash.len = 0;
    len = corridor__setoff_ballot__pack(&msg, buf);
    assert_false(setoff_ballot_decode(buf, len, &back));

    /* not canonical: position 0 written out; yes twice; an unknown field */
    uint8_t canon[SETOFF_BALLOT_MAX];
    b = sample_ballot(hash, 0, true, "");
    size_t clen = setoff_ballot_encode(&b, canon);
    assert_int_equal(clen, 2 + SETOFF_HASH_BYTES + 2);
    assert_true(setoff_ballot_decode(canon, clen, &back));
    memcpy(buf, canon, 2 + SETOFF_HASH_BYTES);
    memcpy(buf + 2 + SETOFF_HASH_BYTES, "\x10\x00\x18\x01", 4);
    assert_false(setoff_ballot_decode(buf, clen + 2, &back));
    memcpy(buf, canon, clen);
    memcpy(buf + clen, "\x18\x01", 2);
    assert_false(setoff_ballot_decode(buf, clen + 2, &back));
    memcpy(buf + clen, "\x30\x01", 2);
    assert_false(setoff_ballot_decode(buf, clen + 2, &back));
    assert_false(setoff_ballot_decode(buf, 0, &back));
    assert_false(setoff_ballot_decode(buf, SETOFF_BALLOT_MAX + 1, &back));
}

static void test_verdict_rules(void **state)
{
    (void)state;
    uint8_t hash[SETOFF_HASH_BYTES];
    memset(hash, 0xcd, sizeof hash);
    setoff_verdict_t v;
    memset(&v, 0, sizeof v);
    memcpy(v.terms_hash, hash, sizeof hash);
    v.commit = true;
    assert_true(verdict_decodes(&v));
    snprintf(v.reason, sizeof v.reason, "AB05");
    assert_false(verdict_decodes(&v)); /* commit with a reason */
    v.commit = false;
    assert_true(verdict_decodes(&v));
    snprintf(v.reason, sizeof v.reason, "AM04");
    assert_true(verdict_decodes(&v));
    snprintf(v.reason, sizeof v.reason, "ab05");
    assert_false(verdict_decodes(&v));
    v.reason[0] = '\0';
    assert_false(verdict_decodes(&v)); /* abort without a reason */
    snprintf(v.reason, sizeof v.reason, "AB5");
    assert_false(verdict_decodes(&v));

    /* not canonical: commit false written out; the hash twice; a short hash */
    setoff_verdict_t back;
    uint8_t canon[SETOFF_VERDICT_MAX], buf[256];
    snprintf(v.reason, sizeof v.reason, "AB05");
    size_t clen = setoff_verdict_encode(&v, canon);
    assert_true(setoff_verdict_decode(canon, clen, &back));
    memcpy(buf, canon, 2 + SETOFF_HASH_BYTES);
    memcpy(buf + 2 + SETOFF_HASH_BYTES, "\x10\x00", 2);
    memcpy(buf + 4 + SETOFF_HASH_BYTES, canon + 2 + SETOFF_HASH_BYTES,
           clen - 2 - SETOFF_HASH_BYTES);
    assert_false(setoff_verdict_decode(buf, clen + 2, &back));
    memcpy(buf, canon, clen);
    memcpy(buf + clen, canon, 2 + SETOFF_HASH_BYTES);
    assert_false(setoff_verdict_decode(buf, clen + 2 + SETOFF_HASH_BYTES, &back));
    Corridor__SetoffVerdict msg = CORRIDOR__SETOFF_VERDICT__INIT;
    msg.terms_hash = (ProtobufCBinaryData){SETOFF_HASH_BYTES - 1, hash};
    msg.commit = true;
    size_t len = corridor__setoff_verdict__pack(&msg, buf);
    assert_false(setoff_verdict_decode(buf, len, &back));
    assert_false(setoff_verdict_decode(buf, 0, &back));
    assert_false(setoff_verdict_decode(buf, SETOFF_VERDICT_MAX + 1, &back));
}

/* ---- signatures and votes ------------------------------------------------------------------- */

static void test_terms_and_verdict_signatures(void **state)
{
    (void)state;
    setoff_terms_t t = sample_terms(3);
    size_t len = 0;
    uint8_t *bytes = terms_bytes(&t, &len);
    uint8_t sig[crypto_sign_BYTES], other[crypto_sign_BYTES];
    assert_int_equal(setoff_sign(SETOFF_TERMS_DOMAIN, bytes, len, keys[0]->sign_secret, sig), 0);
    assert_true(setoff_verify(SETOFF_TERMS_DOMAIN, bytes, len, sig, keys[0]->sign_public));
    assert_false(setoff_verify(SETOFF_TERMS_DOMAIN, bytes, len, sig, keys[1]->sign_public));
    /* a signature under one domain is not one under another */
    assert_false(setoff_verify(SETOFF_VERDICT_DOMAIN, bytes, len, sig, keys[0]->sign_public));
    assert_false(setoff_verify(SETOFF_VOTE_DOMAIN, bytes, len, sig, keys[0]->sign_public));
    assert_int_equal(
        envelope_domain_sign(false, SETOFF_TERMS_DOMAIN, bytes, len, keys[0]->sign_secret, other),
        0);
    assert_memory_equal(sig, other, sizeof sig);
    /* tampered bytes or signature */
    for (size_t i = 0; i < len; i += 7) {
        bytes[i] ^= 0x01;
        assert_false(setoff_verify(SETOFF_TERMS_DOMAIN, bytes, len, sig, keys[0]->sign_public));
        bytes[i] ^= 0x01;
    }
    sig[10] ^= 0x80;
    assert_false(setoff_verify(SETOFF_TERMS_DOMAIN, bytes, len, sig, keys[0]->sign_public));
    sig[10] ^= 0x80;

    /* H13: BLAKE2b-256 over the domain with its NUL, then the bytes */
    uint8_t h[SETOFF_HASH_BYTES], want[SETOFF_HASH_BYTES];
    setoff_terms_hash(bytes, len, h);
    uint8_t *input = malloc(sizeof SETOFF_HASH_DOMAIN + len);
    assert_non_null(input);
    memcpy(input, SETOFF_HASH_DOMAIN, sizeof SETOFF_HASH_DOMAIN);
    memcpy(input + sizeof SETOFF_HASH_DOMAIN, bytes, len);
    crypto_generichash(want, sizeof want, input, sizeof SETOFF_HASH_DOMAIN + len, NULL, 0);
    assert_memory_equal(h, want, sizeof h);
    free(input);

    /* H12 over a verdict */
    setoff_verdict_t v;
    memset(&v, 0, sizeof v);
    memcpy(v.terms_hash, h, sizeof h);
    v.commit = true;
    uint8_t vb[SETOFF_VERDICT_MAX];
    size_t vlen = setoff_verdict_encode(&v, vb);
    assert_true(vlen > 0);
    assert_int_equal(setoff_sign(SETOFF_VERDICT_DOMAIN, vb, vlen, keys[0]->sign_secret, sig), 0);
    assert_true(setoff_verify(SETOFF_VERDICT_DOMAIN, vb, vlen, sig, keys[0]->sign_public));
    assert_false(setoff_verify(SETOFF_VERDICT_DOMAIN, vb, vlen, sig, keys[2]->sign_public));
    assert_false(setoff_verify(SETOFF_TERMS_DOMAIN, vb, vlen, sig, keys[0]->sign_public));
    vb[vlen - 1] ^= 1; /* commit true -> a byte of another value */
    assert_false(setoff_verify(SETOFF_VERDICT_DOMAIN, vb, vlen, sig, keys[0]->sign_public));
    free(bytes);
}

static void test_votes(void **state)
{
    (void)state;
    setoff_terms_t t = sample_terms(4);
    size_t len = 0;
    uint8_t *bytes = terms_bytes(&t, &len);
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(bytes, len, h);
    for (uint32_t pos = 0; pos < 4; pos++) {
        setoff_ballot_t b = sample_ballot(h, pos, pos != 3, pos != 3 ? "" : "AM04");
        setoff_vote_t v;
        assert_int_equal(setoff_vote_make(&b, keys[pos]->sign_secret, &v), 0);
        assert_memory_equal(&v.ballot, &b, sizeof b);
        assert_true(setoff_vote_valid(&t, h, &v));
        assert_true(setoff_verify(SETOFF_VOTE_DOMAIN, v.ballot_bytes, v.ballot_len, v.signature,
                                  keys[pos]->sign_public));
        /* by the wrong key: the key of another member, or of no member */
        setoff_vote_t wrong;
        assert_int_equal(setoff_vote_make(&b, keys[(pos + 1) % 4]->sign_secret, &wrong), 0);
        assert_false(setoff_vote_valid(&t, h, &wrong));
        assert_int_equal(setoff_vote_make(&b, keys[8]->sign_secret, &wrong), 0);
        assert_false(setoff_vote_valid(&t, h, &wrong));
        /* a tampered signature or ballot */
        wrong = v;
        wrong.signature[0] ^= 1;
        assert_false(setoff_vote_valid(&t, h, &wrong));
        wrong = v;
        wrong.ballot_bytes[5] ^= 1;
        assert_false(setoff_vote_valid(&t, h, &wrong));
        /* a holder whose decoded ballot says other than its bytes */
        wrong = v;
        wrong.ballot.yes = !wrong.ballot.yes;
        assert_false(setoff_vote_valid(&t, h, &wrong));
        wrong = v;
        wrong.ballot_len = 0;
        assert_false(setoff_vote_valid(&t, h, &wrong));
        wrong.ballot_len = SETOFF_BALLOT_MAX + 1;
        assert_false(setoff_vote_valid(&t, h, &wrong));
    }
    /* for other terms: another id, so another hash */
    setoff_terms_t t2 = t;
    t2.setoff_id[0] = '6';
    size_t len2 = 0;
    uint8_t *bytes2 = terms_bytes(&t2, &len2);
    uint8_t h2[SETOFF_HASH_BYTES];
    setoff_terms_hash(bytes2, len2, h2);
    setoff_ballot_t b = sample_ballot(h2, 1, true, "");
    setoff_vote_t v;
    assert_int_equal(setoff_vote_make(&b, keys[1]->sign_secret, &v), 0);
    assert_true(setoff_vote_valid(&t2, h2, &v));
    assert_false(setoff_vote_valid(&t, h, &v));
    assert_false(setoff_vote_valid(&t2, h, &v));
    /* a position outside the ring (but under SETOFF_RING_MAX), signed by a key of no member */
    b = sample_ballot(h, 4, true, "");
    assert_int_equal(setoff_vote_make(&b, keys[4]->sign_secret, &v), 0);
    assert_false(setoff_vote_valid(&t, h, &v));
    setoff_terms_t t5 = sample_terms(5); /* the same vote counts in a ring where 4 is inside */
    assert_true(setoff_vote_valid(&t5, h, &v));
    /* a ballot that would not decode is not made into a vote */
    b = sample_ballot(h, 1, true, "AM04");
    memset(&v, 0x5a, sizeof v);
    assert_int_equal(setoff_vote_make(&b, keys[1]->sign_secret, &v), -1);
    setoff_vote_t zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&v, &zero, sizeof v);
    b = sample_ballot(h, SETOFF_RING_MAX, true, "");
    assert_int_equal(setoff_vote_make(&b, keys[1]->sign_secret, &v), -1);
    free(bytes);
    free(bytes2);
}

/* ---- SetoffRelay and SetoffDecision --------------------------------------------------------- */

/* A holder for the terms of `n` members, signed by ring[0], with the yes votes of the first
 * `votes` members, and (a decision) ring[0]'s commit. terms_bytes malloc'd. */
static setoff_message_t sample_message(size_t n, size_t votes, bool decision)
{
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    m.terms = sample_terms(n);
    assert_int_equal(setoff_terms_encode(&m.terms, &m.terms_bytes, &m.terms_len), 0);
    assert_int_equal(setoff_sign(SETOFF_TERMS_DOMAIN, m.terms_bytes, m.terms_len,
                                 keys[0]->sign_secret, m.terms_signature),
                     0);
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(m.terms_bytes, m.terms_len, h);
    for (size_t i = 0; i < votes; i++) {
        setoff_ballot_t b = sample_ballot(h, (uint32_t)i, true, "");
        assert_int_equal(setoff_vote_make(&b, keys[i]->sign_secret, &m.votes[i]), 0);
    }
    m.n_votes = votes;
    if (decision) {
        memcpy(m.verdict.terms_hash, h, sizeof h);
        m.verdict.commit = true;
        m.verdict_len = setoff_verdict_encode(&m.verdict, m.verdict_bytes);
        assert_true(m.verdict_len > 0);
        assert_int_equal(setoff_sign(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len,
                                     keys[0]->sign_secret, m.verdict_signature),
                         0);
    }
    return m;
}

static void same_message(const setoff_message_t *a, const setoff_message_t *b)
{
    assert_int_equal(a->terms_len, b->terms_len);
    assert_memory_equal(a->terms_bytes, b->terms_bytes, a->terms_len);
    assert_memory_equal(&a->terms, &b->terms, sizeof a->terms);
    assert_memory_equal(a->terms_signature, b->terms_signature, sizeof a->terms_signature);
    assert_int_equal(a->verdict_len, b->verdict_len);
    assert_memory_equal(a->verdict_bytes, b->verdict_bytes, a->verdict_len);
    assert_memory_equal(&a->verdict, &b->verdict, sizeof a->verdict);
    assert_memory_equal(a->verdict_signature, b->verdict_signature, sizeof a->verdict_signature);
    assert_int_equal(a->n_votes, b->n_votes);
    for (size_t i = 0; i < a->n_votes; i++) {
        assert_memory_equal(&a->votes[i], &b->votes[i], sizeof a->votes[i]);
    }
}

static void test_message_round_trip(void **state)
{
    (void)state;
    for (int decision = 0; decision < 2; decision++) {
        for (size_t votes = 0; votes <= 3; votes++) {
            setoff_message_t m = sample_message(3, votes, decision), back;
            uint8_t *body = NULL;
            size_t len = 0;
            assert_int_equal(setoff_message_encode(&m, decision, &body, &len), 0);
            assert_true(setoff_message_decode(body, len, decision, &back));
            same_message(&m, &back);
            uint8_t h[SETOFF_HASH_BYTES];
            setoff_terms_hash(back.terms_bytes, back.terms_len, h);
            assert_true(setoff_verify(SETOFF_TERMS_DOMAIN, back.terms_bytes, back.terms_len,
                                      back.terms_signature, back.terms.ring[0].signing_key));
            for (size_t i = 0; i < back.n_votes; i++) {
                assert_true(setoff_vote_valid(&back.terms, h, &back.votes[i]));
            }
            if (decision) {
                assert_true(setoff_verify(SETOFF_VERDICT_DOMAIN, back.verdict_bytes,
                                          back.verdict_len, back.verdict_signature,
                                          back.terms.ring[0].signing_key));
            }
            setoff_message_release(&back);
            assert_null(back.terms_bytes);
            free(body);
            setoff_message_release(&m);
        }
    }
    /* every member of the largest ring votes */
    setoff_message_t m = sample_message(SETOFF_RING_MAX, SETOFF_RING_MAX, true), back;
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(setoff_message_encode(&m, true, &body, &len), 0);
    assert_true(setoff_message_decode(body, len, true, &back));
    same_message(&m, &back);
    setoff_message_release(&back);
    free(body);
    setoff_message_release(&m);
}

/* Packs a relay or decision by hand from a holder, with `votes` vote entries (repeating the
 * holder's cyclically) and the given lengths of signature and verdict. */
static uint8_t *raw_message(const setoff_message_t *m, bool decision, size_t votes,
                            size_t terms_sig_len, size_t vote_sig_len, size_t verdict_len,
                            size_t *len)
{
    Corridor__SetoffVote wires[SETOFF_RING_MAX + 2];
    Corridor__SetoffVote *ptrs[SETOFF_RING_MAX + 2];
    assert_true(votes <= SETOFF_RING_MAX + 2 && m->n_votes > 0);
    for (size_t i = 0; i < votes; i++) {
        const setoff_vote_t *v = &m->votes[i % m->n_votes];
        corridor__setoff_vote__init(&wires[i]);
        wires[i].ballot = (ProtobufCBinaryData){v->ballot_len, (uint8_t *)v->ballot_bytes};
        wires[i].signature = (ProtobufCBinaryData){vote_sig_len, (uint8_t *)v->signature};
        ptrs[i] = &wires[i];
    }
    uint8_t sig[crypto_sign_BYTES + 1] = {0};
    memcpy(sig, m->terms_signature, crypto_sign_BYTES);
    uint8_t *out = NULL;
    if (decision) {
        Corridor__SetoffDecision msg = CORRIDOR__SETOFF_DECISION__INIT;
        msg.terms = (ProtobufCBinaryData){m->terms_len, m->terms_bytes};
        msg.terms_signature = (ProtobufCBinaryData){terms_sig_len, sig};
        msg.verdict = (ProtobufCBinaryData){verdict_len, (uint8_t *)m->verdict_bytes};
        msg.verdict_signature = (ProtobufCBinaryData){crypto_sign_BYTES, sig};
        msg.n_votes = votes;
        msg.votes = ptrs;
        *len = corridor__setoff_decision__get_packed_size(&msg);
        out = malloc(*len);
        assert_non_null(out);
        corridor__setoff_decision__pack(&msg, out);
    } else {
        Corridor__SetoffRelay msg = CORRIDOR__SETOFF_RELAY__INIT;
        msg.terms = (ProtobufCBinaryData){m->terms_len, m->terms_bytes};
        msg.terms_signature = (ProtobufCBinaryData){terms_sig_len, sig};
        msg.n_votes = votes;
        msg.votes = ptrs;
        *len = corridor__setoff_relay__get_packed_size(&msg);
        out = malloc(*len);
        assert_non_null(out);
        corridor__setoff_relay__pack(&msg, out);
    }
    return out;
}

static bool raw_decodes(const setoff_message_t *m, bool decision, size_t votes,
                        size_t terms_sig_len, size_t vote_sig_len, size_t verdict_len)
{
    size_t len = 0;
    uint8_t *body = raw_message(m, decision, votes, terms_sig_len, vote_sig_len, verdict_len, &len);
    setoff_message_t back, zero;
    memset(&zero, 0, sizeof zero);
    bool ok = setoff_message_decode(body, len, decision, &back);
    if (!ok) {
        assert_memory_equal(&back, &zero, sizeof back);
    }
    setoff_message_release(&back);
    free(body);
    return ok;
}

static void test_message_decode_limits(void **state)
{
    (void)state;
    setoff_message_t m = sample_message(3, 3, true);
    size_t vlen = m.verdict_len;
    for (int decision = 0; decision < 2; decision++) {
        assert_true(raw_decodes(&m, decision, 3, 64, 64, vlen));
        assert_true(raw_decodes(&m, decision, SETOFF_RING_MAX, 64, 64, vlen));
        assert_false(raw_decodes(&m, decision, SETOFF_RING_MAX + 1, 64, 64, vlen));
        assert_false(raw_decodes(&m, decision, 3, 63, 64, vlen));
        assert_false(raw_decodes(&m, decision, 3, 65, 64, vlen));
        assert_false(raw_decodes(&m, decision, 3, 0, 64, vlen));
        assert_false(raw_decodes(&m, decision, 3, 64, 63, vlen));
        assert_false(raw_decodes(&m, decision, 3, 64, 0, vlen));
    }
    /* a decision must carry a verdict that decodes */
    assert_false(raw_decodes(&m, true, 3, 64, 64, 0));
    assert_false(raw_decodes(&m, true, 3, 64, 64, vlen - 1));
    /* terms that do not decode strictly, or none */
    setoff_message_t bad = m;
    uint8_t *copy = malloc(m.terms_len + 2);
    assert_non_null(copy);
    memcpy(copy, m.terms_bytes, m.terms_len);
    memcpy(copy + m.terms_len, "\x38\x01", 2);
    bad.terms_bytes = copy;
    bad.terms_len = m.terms_len + 2;
    assert_false(raw_decodes(&bad, false, 3, 64, 64, vlen));
    assert_false(raw_decodes(&bad, true, 3, 64, 64, vlen));
    bad.terms_len = 0;
    assert_false(raw_decodes(&bad, false, 3, 64, 64, vlen));
    free(copy);
    /* a vote whose ballot does not decode strictly */
    bad = m;
    bad.votes[1].ballot_bytes[bad.votes[1].ballot_len++] = 0x30; /* an unknown field 6 = 0 */
    bad.votes[1].ballot_bytes[bad.votes[1].ballot_len++] = 0x00;
    assert_false(raw_decodes(&bad, false, 3, 64, 64, vlen));
    assert_false(raw_decodes(&bad, true, 3, 64, 64, vlen));
    bad = m;
    bad.votes[2].ballot_len = 0;
    assert_false(raw_decodes(&bad, false, 3, 64, 64, vlen));
    /* garbage, empty and truncated bodies */
    setoff_message_t back;
    assert_false(setoff_message_decode((const uint8_t *)"\xff\xff\xff", 3, false, &back));
    assert_false(setoff_message_decode(NULL, 0, false, &back));
    assert_false(setoff_message_decode(NULL, 0, true, &back));
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(setoff_message_encode(&m, true, &body, &len), 0);
    /* cut short: refused, unless the cut falls between two votes (the votes are last) */
    size_t decoded = 0;
    for (size_t cut = 0; cut < len; cut++) {
        if (setoff_message_decode(body, cut, true, &back)) {
            assert_true(back.n_votes < m.n_votes);
            assert_memory_equal(&back.votes[0], &m.votes[0], back.n_votes * sizeof m.votes[0]);
            decoded++;
        }
        setoff_message_release(&back);
        assert_null(back.terms_bytes);
    }
    assert_int_equal(decoded, m.n_votes);
    /* a decision's bytes are not a relay's: field 3 is the verdict there, a vote here */
    assert_false(setoff_message_decode(body, len, false, &back));
    free(body);
    setoff_message_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_round_trip),
        cmocka_unit_test(test_terms_field_rules),
        cmocka_unit_test(test_terms_ring_size),
        cmocka_unit_test(test_terms_canonical_only),
        cmocka_unit_test(test_ballot_rules),
        cmocka_unit_test(test_verdict_rules),
        cmocka_unit_test(test_terms_and_verdict_signatures),
        cmocka_unit_test(test_votes),
        cmocka_unit_test(test_message_round_trip),
        cmocka_unit_test(test_message_decode_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
