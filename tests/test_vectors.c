/*
 * Known-answer vectors for every hash and signature construction proto/PROTOCOL.md defines:
 * key id, message signature, settlement content and body hashes, channel entry hash, channel
 * digest, journal row hash, checkpoint signature, a return's content hash and channel entry
 * hash (3.9), an FX leg's content hash and channel entry hash (3.10), and a settlement cycle's
 * statement signature (H8) and hash (H9, 3.11.7), and a multilateral set-off's terms signature
 * (H10), a vote's (H11), the verdict's (H12) and the terms hash (H13, 3.12.8). The inputs and
 * outputs
 * are written out in tests/vectors/hashes.kat so that a second implementation can check itself
 * against them; this test renders the same file from the code and compares it byte for byte.
 *
 * After a deliberate change of a construction (a new version), regenerate with
 *   CORRIDOR_KAT_WRITE=1 build/tests/test_vectors
 * and say in the specification what changed. Envelope bytes have their own vectors
 * (tests/vectors/envelope.kat, tests/test_envelope.c).
 */
#include "support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "digest.h"
#include "envelope.h"
#include "identity.h"
#include "ledger.h"
#include "checkpoint.h"
#include "cycle.h"
#include "settlement.h"
#include "setoff.h"

#define KAT_FILE   CORRIDOR_TEST_DATA "/vectors/hashes.kat"
#define TEXT_BYTES (64 * 1024)

typedef struct {
    char *text;
    size_t used;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->text + o->used, TEXT_BYTES - o->used, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && o->used + (size_t)n < TEXT_BYTES);
    o->used += (size_t)n;
}

static void put_hex(out_t *o, const char *key, const uint8_t *bytes, size_t len)
{
    char hex[2 * 1024 + 1];
    assert_true(2 * len < sizeof hex);
    sodium_bin2hex(hex, sizeof hex, bytes, len);
    put(o, "%s %s\n", key, len > 0 ? hex : "-");
}

/* An Ed25519 key pair from a seed of 32 bytes all equal to `b`. */
static void keypair(uint8_t b, uint8_t pk[static crypto_sign_PUBLICKEYBYTES],
                    uint8_t sk[static crypto_sign_SECRETKEYBYTES], uint8_t seed[static 32])
{
    memset(seed, b, 32);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void key_id(out_t *o)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], seed[32];
    keypair(0x01, pk, sk, seed);
    uint8_t id[IDENTITY_KEY_ID_BYTES];
    identity_key_id(pk, id);
    put(o, "vector key_id\n");
    put_hex(o, "in sign_public", pk, sizeof pk);
    put_hex(o, "out", id, sizeof id);
}

/* Ed25519 over a domain tag with its NUL, then the bytes: messages and checkpoints. */
static void domain_signature(out_t *o, const char *name, const char *domain, const uint8_t *msg,
                             size_t len)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], seed[32];
    keypair(0x02, pk, sk, seed);
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(envelope_domain_sign(false, domain, msg, len, sk, sig), 0);
    assert_int_equal(envelope_domain_sign(true, domain, msg, len, pk, sig), 0);
    put(o, "vector %s\n", name);
    put(o, "in domain %s\n", domain);
    put_hex(o, "in seed", seed, sizeof seed);
    put_hex(o, "in sign_public", pk, sizeof pk);
    put_hex(o, "in bytes", msg, len);
    put_hex(o, "out", sig, sizeof sig);
}

static settlement_t sample_settlement(direction_t direction)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "%s", direction == DIRECTION_OUT ? "BMJIIRTH" : "BKRURUMM");
    s.direction = direction;
    snprintf(s.uetr, sizeof s.uetr, "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59");
    snprintf(s.end_to_end_id, sizeof s.end_to_end_id, "INV-2026-0042");
    s.amount_minor = 125000;
    snprintf(s.currency, sizeof s.currency, "RUB");
    snprintf(s.value_date, sizeof s.value_date, "2026-12-02");
    snprintf(s.debtor_name, sizeof s.debtor_name, "Импортёр ООО");
    snprintf(s.debtor_account, sizeof s.debtor_account, "RU0204452560040702810412345678901");
    snprintf(s.creditor_name, sizeof s.creditor_name, "Exporter Co");
    snprintf(s.creditor_account, sizeof s.creditor_account, "IR062960000000100324200001");
    snprintf(s.remittance, sizeof s.remittance, "Invoice 42, pistachios");
    s.created_unix_ms = INT64_C(1795000000000);
    return s;
}

static void content_hash(out_t *o, direction_t direction)
{
    settlement_t s = sample_settlement(direction);
    uint8_t h[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&s, h);
    put(o, "vector settlement_content_hash_%s\n", direction_name(direction));
    put(o, "in amount_minor %lld\nin direction %d\nin peer %s\nin currency %s\n",
        (long long)s.amount_minor, (int)s.direction, s.peer, s.currency);
    put(o, "in end_to_end_id %s\nin debtor_name %s\nin debtor_account %s\n", s.end_to_end_id,
        s.debtor_name, s.debtor_account);
    put(o, "in creditor_name %s\nin creditor_account %s\nin remittance %s\n", s.creditor_name,
        s.creditor_account, s.remittance);
    put_hex(o, "out", h, sizeof h);
}

static void body_hash(out_t *o)
{
    settlement_t s = sample_settlement(DIRECTION_OUT);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(settlement_encode(&s, &body, &len), 0);
    uint8_t h[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, len, h);
    put(o, "vector settlement_body_hash\n");
    put_hex(o, "in body", body, len);
    put_hex(o, "out", h, sizeof h);
    free(body);
}

typedef struct {
    const char *payer, *payee, *uetr;
    int64_t amount_minor;
    const char *currency, *status, *reason;
} entry_t;

static const entry_t entries[] = {
    {"BKRURUMM", "BMJIIRTH", "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", 125000, "RUB", "settled", ""},
    {"BMJIIRTH", "BKRURUMM", "0b1c2d3e-4f50-4617-8a9b-acbdcedfe0f1", 200000000, "RUB", "rejected",
     "AM02"},
};

static void entry_hash(out_t *o, size_t i, uint8_t out[static DIGEST_BYTES])
{
    const entry_t *e = &entries[i];
    digest_entry(e->payer, e->payee, e->uetr, e->amount_minor, e->currency, e->status, e->reason,
                 out);
    put(o, "vector channel_entry_hash_%zu\n", i + 1);
    put(o, "in uetr %s\nin payer %s\nin payee %s\nin amount_minor %lld\n", e->uetr, e->payer,
        e->payee, (long long)e->amount_minor);
    put(o, "in currency %s\nin status %s\nin reason %s\n", e->currency, e->status,
        e->reason[0] != '\0' ? e->reason : "-");
    put_hex(o, "out", out, DIGEST_BYTES);
}

static void channel_digest(out_t *o)
{
    uint8_t h[2][DIGEST_BYTES], sum[DIGEST_BYTES] = {0};
    for (size_t i = 0; i < 2; i++) {
        entry_hash(o, i, h[i]);
        put(o, "\n");
        digest_add(sum, h[i]);
    }
    put(o, "vector channel_digest\n");
    put_hex(o, "in entry", h[0], DIGEST_BYTES);
    put_hex(o, "in entry", h[1], DIGEST_BYTES);
    put_hex(o, "out", sum, DIGEST_BYTES);
    /* the sum wraps modulo 2^256 */
    uint8_t all_ones[DIGEST_BYTES], two[DIGEST_BYTES] = {2};
    memset(all_ones, 0xff, sizeof all_ones);
    digest_add(all_ones, two);
    put(o, "\nvector channel_digest_wraps\n");
    memset(sum, 0xff, sizeof sum);
    put_hex(o, "in entry", sum, DIGEST_BYTES);
    put_hex(o, "in entry", two, DIGEST_BYTES);
    put_hex(o, "out", all_ones, DIGEST_BYTES);
}

static void journal_row(out_t *o, bool with_reply)
{
    uint8_t prev[LEDGER_HASH_BYTES], content[SETTLEMENT_HASH_BYTES], out[LEDGER_HASH_BYTES];
    memset(prev, 0x11, sizeof prev);
    memset(content, 0x22, sizeof content);
    static const uint8_t evidence[] = "signed settlement bytes";
    static const uint8_t reply[] = "signed status report bytes";
    ledger_row_t row = {
        .seq = 7,
        .kind = ENTRY_IN_BOOKED,
        .peer = "BKRURUMM",
        .uetr = "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59",
        .currency = "RUB",
        .amount_minor = 125000,
        .reason = "",
        .content_hash = content,
        .evidence = evidence,
        .evidence_len = sizeof evidence - 1,
        .created_unix_ms = INT64_C(1795000000123),
        .reply = with_reply ? reply : NULL,
        .reply_len = with_reply ? sizeof reply - 1 : 0,
    };
    ledger_row_hash(prev, &row, out);
    put(o, "vector journal_row_hash%s\n", with_reply ? "_with_reply" : "");
    put_hex(o, "in prev", prev, sizeof prev);
    put(o, "in seq %lld\nin kind %d\nin peer %s\nin uetr %s\nin currency %s\n", (long long)row.seq,
        (int)row.kind, row.peer, row.uetr, row.currency);
    put(o, "in amount_minor %lld\nin reason -\n", (long long)row.amount_minor);
    put_hex(o, "in content_hash", content, sizeof content);
    put_hex(o, "in evidence", row.evidence, row.evidence_len);
    put(o, "in created_unix_ms %lld\n", (long long)row.created_unix_ms);
    put_hex(o, "in reply", row.reply, row.reply_len);
    put_hex(o, "out", out, sizeof out);
}

/* A return (PROTOCOL.md 3.9) of 500.00 of sample_settlement's payment, for AC04, under its own
 * id; `direction` as the side that keeps it sees it (out: the returner). */
static settlement_t sample_return(direction_t direction)
{
    settlement_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.peer, sizeof r.peer, "%s", direction == DIRECTION_OUT ? "BKRURUMM" : "BMJIIRTH");
    r.direction = direction;
    snprintf(r.uetr, sizeof r.uetr, "3d7e1b2c-5a4f-4e6d-8c9b-1a2b3c4d5e6f");
    snprintf(r.original_uetr, sizeof r.original_uetr, "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59");
    snprintf(r.return_reason, sizeof r.return_reason, "AC04");
    r.amount_minor = 50000;
    snprintf(r.currency, sizeof r.currency, "RUB");
    assert_int_equal(return_check(&r), REASON_NONE);
    return r;
}

static void return_content_hash(out_t *o, direction_t direction)
{
    settlement_t r = sample_return(direction);
    uint8_t h[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&r, h);
    put(o, "vector return_content_hash_%s\n", direction_name(direction));
    put(o, "in amount_minor %lld\nin direction %d\nin peer %s\nin currency %s\n",
        (long long)r.amount_minor, (int)r.direction, r.peer, r.currency);
    put(o, "in original_uetr %s\nin return_reason %s\n", r.original_uetr, r.return_reason);
    put_hex(o, "out", h, sizeof h);
    /* never the content of a payment with those fields */
    uint8_t payment[SETTLEMENT_HASH_BYTES];
    settlement_t s = r;
    s.original_uetr[0] = '\0';
    settlement_content_hash(&s, payment);
    assert_memory_not_equal(h, payment, sizeof h);
}

typedef struct {
    const char *payer, *payee, *return_id, *original_uetr;
    int64_t amount_minor;
    const char *currency, *status, *reason, *return_reason;
} return_entry_t;

/* payer: the returner (the payee of the original) */
static const return_entry_t return_entries[] = {
    {"BMJIIRTH", "BKRURUMM", "3d7e1b2c-5a4f-4e6d-8c9b-1a2b3c4d5e6f",
     "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", 50000, "RUB", "settled", "", "AC04"},
    {"BMJIIRTH", "BKRURUMM", "6e5d4c3b-2a19-4f08-9e7d-6c5b4a392817",
     "9f3c2a1e-7b4d-4c8e-9a2f-0e1d2c3b4a59", 100000, "RUB", "rejected", "AM09", "MD06"},
};

static void return_entry_hash(out_t *o, size_t i)
{
    const return_entry_t *e = &return_entries[i];
    uint8_t out[DIGEST_BYTES], entry[DIGEST_BYTES];
    digest_return_entry(e->payer, e->payee, e->return_id, e->original_uetr, e->amount_minor,
                        e->currency, e->status, e->reason, e->return_reason, out);
    digest_entry(e->payer, e->payee, e->return_id, e->amount_minor, e->currency, e->status,
                 e->reason, entry);
    assert_memory_not_equal(out, entry, sizeof out); /* its own tag */
    put(o, "vector channel_return_entry_hash_%zu\n", i + 1);
    put(o, "in return_id %s\nin original_uetr %s\nin payer %s\nin payee %s\n", e->return_id,
        e->original_uetr, e->payer, e->payee);
    put(o, "in amount_minor %lld\nin currency %s\nin status %s\nin reason %s\n",
        (long long)e->amount_minor, e->currency, e->status, e->reason[0] != '\0' ? e->reason : "-");
    put(o, "in return_reason %s\n", e->return_reason);
    put_hex(o, "out", out, DIGEST_BYTES);
}

/* The legs of an FX trade (PROTOCOL.md 3.10): BKRURUMM proposes to BMJIIRTH, paying 10 000.00
 * RUB (leg 1) for 4 500 000.00 IRR (leg 2); each side keeps both legs in the FxProposal's
 * direction (out at the proposer, in at the acceptor). */
#define FX_KAT_ID "9b2e4f6a-1c3d-4e5f-8a7b-6c5d4e3f2a1b"

static settlement_t sample_fx_leg(direction_t direction, fx_leg_t which)
{
    settlement_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.peer, sizeof s.peer, "%s", direction == DIRECTION_OUT ? "BMJIIRTH" : "BKRURUMM");
    s.direction = direction;
    bool first = which == FX_LEG_PROPOSER_PAYS;
    snprintf(s.uetr, sizeof s.uetr, "%s",
             first ? "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f70"
                   : "5e7a9c1b-3d5f-4b7d-8f1a-3c5e7a9c1b3d");
    snprintf(s.fx_id, sizeof s.fx_id, FX_KAT_ID);
    s.fx_leg = which;
    s.amount_minor = first ? 1000000 : 450000000;
    snprintf(s.currency, sizeof s.currency, "%s", first ? "RUB" : "IRR");
    assert_int_equal(settlement_check(&s), REASON_NONE);
    return s;
}

static void fx_leg_content_hash(out_t *o, direction_t direction, fx_leg_t which)
{
    settlement_t s = sample_fx_leg(direction, which);
    uint8_t h[SETTLEMENT_HASH_BYTES];
    settlement_content_hash(&s, h);
    put(o, "vector fx_leg_content_hash_%d_%s\n", (int)which, direction_name(direction));
    put(o, "in amount_minor %lld\nin direction %d\nin peer %s\nin currency %s\n",
        (long long)s.amount_minor, (int)s.direction, s.peer, s.currency);
    put(o, "in fx_id %s\nin fx_leg %d\n", s.fx_id, (int)s.fx_leg);
    put_hex(o, "out", h, sizeof h);
    /* never the content of a payment, nor of the other leg */
    uint8_t other[SETTLEMENT_HASH_BYTES];
    settlement_t p = s;
    p.fx_id[0] = '\0';
    p.fx_leg = FX_LEG_NONE;
    settlement_content_hash(&p, other);
    assert_memory_not_equal(h, other, sizeof h);
    p = s;
    p.fx_leg = which == FX_LEG_PROPOSER_PAYS ? FX_LEG_ACCEPTOR_PAYS : FX_LEG_PROPOSER_PAYS;
    settlement_content_hash(&p, other);
    assert_memory_not_equal(h, other, sizeof h);
}

typedef struct {
    const char *payer, *payee, *uetr, *fx_id;
    int64_t amount_minor;
    const char *currency, *status, *reason;
} fx_leg_entry_t;

/* payer: who pays the leg (the proposer leg 1, the acceptor leg 2) */
static const fx_leg_entry_t fx_leg_entries[] = {
    {"BKRURUMM", "BMJIIRTH", "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f70", FX_KAT_ID, 1000000, "RUB",
     "settled", ""},
    {"BMJIIRTH", "BKRURUMM", "5e7a9c1b-3d5f-4b7d-8f1a-3c5e7a9c1b3d", FX_KAT_ID, 450000000, "IRR",
     "rejected", "AG01"},
};

static void fx_leg_entry_hash(out_t *o, size_t i)
{
    const fx_leg_entry_t *e = &fx_leg_entries[i];
    uint8_t out[DIGEST_BYTES], entry[DIGEST_BYTES];
    digest_fx_leg_entry(e->payer, e->payee, e->uetr, e->fx_id, e->amount_minor, e->currency,
                        e->status, e->reason, out);
    digest_entry(e->payer, e->payee, e->uetr, e->amount_minor, e->currency, e->status, e->reason,
                 entry);
    assert_memory_not_equal(out, entry, sizeof out); /* its own tag */
    put(o, "vector channel_fx_leg_entry_hash_%zu\n", i + 1);
    put(o, "in uetr %s\nin fx_id %s\nin payer %s\nin payee %s\n", e->uetr, e->fx_id, e->payer,
        e->payee);
    put(o, "in amount_minor %lld\nin currency %s\nin status %s\nin reason %s\n",
        (long long)e->amount_minor, e->currency, e->status, e->reason[0] != '\0' ? e->reason : "-");
    put_hex(o, "out", out, DIGEST_BYTES);
}

/* The statement of cycle 1 of tests/vectors/envelope.kat's cycle_proposal_v2 (PROTOCOL.md
 * 3.11.1): BKRURUMM first, cut (14, 9), IRR 0 / 4 500 000.00 (1 entry), RUB 11 250.00 / 500.00
 * (3 entries), digest 00 01 .. 1f, 4 entries. Malloc'd, *len set. */
static uint8_t *cycle_statement(size_t *len)
{
    static const cycle_view_t views[] = {{"IRR", 0, 450000000, 1}, {"RUB", 1125000, 50000, 3}};
    uint8_t digest[DIGEST_BYTES];
    for (size_t i = 0; i < sizeof digest; i++) {
        digest[i] = (uint8_t)i;
    }
    cycle_statement_t st, back;
    assert_true(
        cycle_statement_from_view(&st, "BKRURUMM", "BMJIIRTH", 1, 14, 9, views, 2, digest, 4));
    uint8_t *out = NULL;
    assert_int_equal(cycle_statement_encode(&st, &out, len), 0);
    assert_true(cycle_statement_decode(out, *len, &back));
    return out;
}

/* H8 (cycle_sign: Ed25519 over corridor.cycle.v1 0x00 || statement) and H9
 * (cycle_statement_hash: BLAKE2b-32 over corridor.cycle-statement.v1 0x00 || statement). */
static void cycle_constructions(out_t *o)
{
    size_t len = 0;
    uint8_t *statement = cycle_statement(&len);
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], seed[32];
    keypair(0x02, pk, sk, seed);
    uint8_t sig[crypto_sign_BYTES], generic[crypto_sign_BYTES];
    assert_int_equal(cycle_sign(statement, len, sk, sig), 0);
    assert_true(cycle_verify(statement, len, sig, pk));
    assert_int_equal(envelope_domain_sign(false, CYCLE_DOMAIN, statement, len, sk, generic), 0);
    assert_memory_equal(sig, generic, sizeof sig);
    put(o, "vector cycle_statement_signature\n");
    put(o, "in domain %s\n", CYCLE_DOMAIN);
    put_hex(o, "in seed", seed, sizeof seed);
    put_hex(o, "in sign_public", pk, sizeof pk);
    put_hex(o, "in bytes", statement, len);
    put_hex(o, "out", sig, sizeof sig);
    uint8_t h[CYCLE_HASH_BYTES];
    cycle_statement_hash(statement, len, h);
    put(o, "\nvector cycle_statement_hash\n");
    put_hex(o, "in statement", statement, len);
    put_hex(o, "out", h, sizeof h);
    free(statement);
}

/* The set-off of tests/vectors/envelope.kat's setoff_relay_v2 (PROTOCOL.md 3.12.1): the ring
 * BKRURUMM (seed 01), BMJIIRTH (seed 02), KZKZKZKA (seed 03), 1 000.00 RUB, an hour to vote.
 * Decoded strictly, it is what was encoded. Malloc'd, *len set. */
#define SETOFF_KAT_ID "c56a4180-65aa-42ec-a945-5fd21dec0538"

static uint8_t *setoff_terms(size_t *len)
{
    static const char *const codes[] = {"BKRURUMM", "BMJIIRTH", "KZKZKZKA"};
    setoff_terms_t t, back;
    memset(&t, 0, sizeof t);
    snprintf(t.setoff_id, sizeof t.setoff_id, SETOFF_KAT_ID);
    t.n = 3;
    for (size_t i = 0; i < t.n; i++) {
        uint8_t sk[crypto_sign_SECRETKEYBYTES], seed[32];
        keypair((uint8_t)(i + 1), t.ring[i].signing_key, sk, seed);
        identity_key_id(t.ring[i].signing_key, t.ring[i].key_id);
        snprintf(t.ring[i].code, sizeof t.ring[i].code, "%s", codes[i]);
    }
    snprintf(t.currency, sizeof t.currency, "RUB");
    t.amount_minor = 100000;
    t.created_unix_ms = INT64_C(1767225600000);
    t.deadline_unix_ms = t.created_unix_ms + INT64_C(3600000);
    uint8_t *out = NULL;
    assert_int_equal(setoff_terms_encode(&t, &out, len), 0);
    assert_true(setoff_terms_decode(out, *len, &back));
    assert_memory_equal(&back, &t, sizeof t);
    return out;
}

/* A set-off signature (setoff_sign, one of H10, H11, H12) by the key of seed `b`. */
static void setoff_signature(out_t *o, const char *name, const char *domain, uint8_t b,
                             const uint8_t *msg, size_t len)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], seed[32];
    keypair(b, pk, sk, seed);
    uint8_t sig[crypto_sign_BYTES], generic[crypto_sign_BYTES];
    assert_int_equal(setoff_sign(domain, msg, len, sk, sig), 0);
    assert_true(setoff_verify(domain, msg, len, sig, pk));
    assert_int_equal(envelope_domain_sign(false, domain, msg, len, sk, generic), 0);
    assert_memory_equal(sig, generic, sizeof sig);
    put(o, "vector %s\n", name);
    put(o, "in domain %s\n", domain);
    put_hex(o, "in seed", seed, sizeof seed);
    put_hex(o, "in sign_public", pk, sizeof pk);
    put_hex(o, "in bytes", msg, len);
    put_hex(o, "out", sig, sizeof sig);
}

/* H10 by ring[0] over the terms, H13 of the terms, H11 of BMJIIRTH's yes vote (position 1) and
 * H12 of the proposer's commit (3.12.8). */
static void setoff_constructions(out_t *o)
{
    size_t len = 0;
    uint8_t *terms = setoff_terms(&len);
    setoff_signature(o, "setoff_terms_signature", SETOFF_TERMS_DOMAIN, 0x01, terms, len);
    uint8_t h[SETOFF_HASH_BYTES];
    setoff_terms_hash(terms, len, h);
    put(o, "\nvector setoff_terms_hash\n");
    put_hex(o, "in terms", terms, len);
    put_hex(o, "out", h, sizeof h);
    free(terms);
    setoff_ballot_t b, bback;
    memset(&b, 0, sizeof b);
    memcpy(b.terms_hash, h, sizeof h);
    b.position = 1;
    b.yes = true;
    uint8_t ballot[SETOFF_BALLOT_MAX];
    size_t blen = setoff_ballot_encode(&b, ballot);
    assert_true(blen > 0 && setoff_ballot_decode(ballot, blen, &bback));
    put(o, "\n");
    setoff_signature(o, "setoff_vote_signature", SETOFF_VOTE_DOMAIN, 0x02, ballot, blen);
    setoff_verdict_t v, vback;
    memset(&v, 0, sizeof v);
    memcpy(v.terms_hash, h, sizeof h);
    v.commit = true;
    uint8_t verdict[SETOFF_VERDICT_MAX];
    size_t vlen = setoff_verdict_encode(&v, verdict);
    assert_true(vlen > 0 && setoff_verdict_decode(verdict, vlen, &vback));
    put(o, "\n");
    setoff_signature(o, "setoff_verdict_signature", SETOFF_VERDICT_DOMAIN, 0x01, verdict, vlen);
}

static void render(out_t *o)
{
    put(o, "# Known answers for the hash and signature constructions of proto/PROTOCOL.md.\n"
           "# A block: \"vector NAME\", its inputs (\"in FIELD VALUE\": text as is, \"-\" for an\n"
           "# empty one; bytes in hex; integers in decimal), then \"out HEX\". Ed25519 keys come\n"
           "# from the seed shown. Checked by tests/test_vectors.c.\n\n");
    key_id(o);
    static const uint8_t inner[] = "an encoded Inner";
    put(o, "\n");
    domain_signature(o, "message_signature", ENVELOPE_DOMAIN, inner, sizeof inner - 1);
    static const uint8_t checkpoint[] = "an encoded Checkpoint";
    put(o, "\n");
    domain_signature(o, "checkpoint_signature", CHECKPOINT_DOMAIN, checkpoint,
                     sizeof checkpoint - 1);
    put(o, "\n");
    content_hash(o, DIRECTION_OUT);
    put(o, "\n");
    content_hash(o, DIRECTION_IN);
    put(o, "\n");
    body_hash(o);
    put(o, "\n");
    channel_digest(o);
    put(o, "\n");
    journal_row(o, false);
    put(o, "\n");
    journal_row(o, true);
    put(o, "\n");
    return_content_hash(o, DIRECTION_OUT);
    put(o, "\n");
    return_content_hash(o, DIRECTION_IN);
    for (size_t i = 0; i < sizeof return_entries / sizeof return_entries[0]; i++) {
        put(o, "\n");
        return_entry_hash(o, i);
    }
    put(o, "\n");
    fx_leg_content_hash(o, DIRECTION_OUT, FX_LEG_PROPOSER_PAYS);
    put(o, "\n");
    fx_leg_content_hash(o, DIRECTION_IN, FX_LEG_ACCEPTOR_PAYS);
    for (size_t i = 0; i < sizeof fx_leg_entries / sizeof fx_leg_entries[0]; i++) {
        put(o, "\n");
        fx_leg_entry_hash(o, i);
    }
    put(o, "\n");
    cycle_constructions(o);
    put(o, "\n");
    setoff_constructions(o);
}

static void test_known_answers(void **state)
{
    (void)state;
    out_t o = {calloc(1, TEXT_BYTES), 0};
    assert_non_null(o.text);
    render(&o);
    if (getenv("CORRIDOR_KAT_WRITE") != NULL) {
        FILE *f = fopen(KAT_FILE, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(o.text, 1, o.used, f), o.used);
        assert_int_equal(fclose(f), 0);
    }
    size_t len = 0;
    char *want = test_read_file(KAT_FILE, &len);
    assert_non_null(want);
    if (len != o.used || memcmp(want, o.text, len) != 0) {
        printf("# %s differs from what the code computes:\n%s", KAT_FILE, o.text);
    }
    assert_int_equal(len, o.used);
    assert_memory_equal(want, o.text, len);
    free(want);
    free(o.text);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
