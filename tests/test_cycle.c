/*
 * Unit tests for node/message/cycle.c: the settlement-cycle statement (PROTOCOL.md 3.11.1) as
 * each side builds it from its own view, its strict decoding, the statement signature (H8) and
 * hash (H9, 3.11.7), the decoding limits of CycleProposal and CycleAnswer (3.11.2), and the
 * rules of a NetSettlement (pacs.009, 3.11.3).
 *
 * Both sides of a channel sign the same statement bytes, so the two views of one cycle must
 * give byte-identical statements, and a decoder must refuse every byte string that does not
 * re-encode to itself: otherwise two honest nodes could disagree on bytes they both accept.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "corridor.pb-c.h"
#include "cycle.h"
#include "validate.h"

#define LOW    "BKRURUMM" /* sorts first */
#define HIGH   "BMJIIRTH"
#define NET_ID "3b2a1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d"

/* ---- helpers -------------------------------------------------------------------------------- */

static void fill_digest(uint8_t d[static DIGEST_BYTES])
{
    for (size_t i = 0; i < DIGEST_BYTES; i++) {
        d[i] = (uint8_t)(0xa0 + i);
    }
}

/* LOW's view of cycle 3: LOW paid 1 250.00 RUB and received 300.00 (4 entries), paid nothing
 * and received 50.00 USD (1 entry). */
static const cycle_view_t low_views[] = {
    {"RUB", 125000, 30000, 4},
    {"USD", 0, 5000, 1},
};

/* HIGH's view of the same cycle: the mirror. */
static const cycle_view_t high_views[] = {
    {"RUB", 30000, 125000, 4},
    {"USD", 5000, 0, 1},
};

/* The statement from LOW's view (its sent bound 17, HIGH's 11). */
static cycle_statement_t low_statement(void)
{
    uint8_t d[DIGEST_BYTES];
    fill_digest(d);
    cycle_statement_t st;
    assert_true(cycle_statement_from_view(&st, LOW, HIGH, 3, 17, 11, low_views, 2, d, 5));
    return st;
}

static uint8_t *encode(const cycle_statement_t *st, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(cycle_statement_encode(st, &out, len), 0);
    return out;
}

/* Whether the statement encodes to bytes that decode (cycle_statement_encode packs anything). */
static bool decodes(const cycle_statement_t *st)
{
    size_t len = 0;
    uint8_t *bytes = encode(st, &len);
    cycle_statement_t back;
    bool ok = cycle_statement_decode(bytes, len, &back);
    if (ok) {
        assert_memory_equal(&back, st, sizeof back);
    } else {
        /* refused: the holder is left zeroed, nothing half-filled */
        cycle_statement_t zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&back, &zero, sizeof back);
    }
    free(bytes);
    return ok;
}

/* The statement as protobuf-c structures, for shapes cycle_statement_t cannot hold. */
typedef struct {
    Corridor__CycleStatement msg;
    Corridor__CycleCurrency wires[CYCLE_CURRENCIES_MAX + 1];
    Corridor__CycleCurrency *ptrs[CYCLE_CURRENCIES_MAX + 1];
    uint8_t digest[DIGEST_BYTES + 1];
} raw_t;

static void raw_from(raw_t *r, const cycle_statement_t *st)
{
    memset(r, 0, sizeof *r);
    corridor__cycle_statement__init(&r->msg);
    r->msg.first = (char *)st->first;
    r->msg.second = (char *)st->second;
    r->msg.cycle = st->cycle;
    r->msg.first_sent = st->first_sent;
    r->msg.second_sent = st->second_sent;
    for (size_t i = 0; i < st->n_currencies; i++) {
        corridor__cycle_currency__init(&r->wires[i]);
        r->wires[i].currency = (char *)st->currencies[i].currency;
        r->wires[i].first_to_second = st->currencies[i].first_to_second;
        r->wires[i].second_to_first = st->currencies[i].second_to_first;
        r->wires[i].net_first = st->currencies[i].net_first;
        r->wires[i].count = st->currencies[i].count;
        r->ptrs[i] = &r->wires[i];
    }
    r->msg.n_currencies = st->n_currencies;
    r->msg.currencies = r->ptrs;
    memcpy(r->digest, st->digest, DIGEST_BYTES);
    r->msg.digest.data = r->digest;
    r->msg.digest.len = DIGEST_BYTES;
    r->msg.entry_count = st->entry_count;
}

static bool raw_decodes(const raw_t *r)
{
    size_t len = corridor__cycle_statement__get_packed_size(&r->msg);
    uint8_t *bytes = malloc(len + 1);
    assert_non_null(bytes);
    assert_int_equal(corridor__cycle_statement__pack(&r->msg, bytes), len);
    cycle_statement_t back;
    bool ok = cycle_statement_decode(bytes, len, &back);
    free(bytes);
    return ok;
}

static void keys(uint8_t b, uint8_t pk[static crypto_sign_PUBLICKEYBYTES],
                 uint8_t sk[static crypto_sign_SECRETKEYBYTES])
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, b, sizeof seed);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

/* ---- the statement from either view --------------------------------------------------------- */

static void test_views_mirror(void **state)
{
    (void)state;
    uint8_t d[DIGEST_BYTES];
    fill_digest(d);
    cycle_statement_t a, b;
    /* LOW sent 17 and applied 11 of HIGH's; HIGH sent 11 and applied 17 of LOW's */
    assert_true(cycle_statement_from_view(&a, LOW, HIGH, 3, 17, 11, low_views, 2, d, 5));
    assert_true(cycle_statement_from_view(&b, HIGH, LOW, 3, 11, 17, high_views, 2, d, 5));
    assert_true(cycle_self_first(LOW, HIGH));
    assert_false(cycle_self_first(HIGH, LOW));
    assert_string_equal(a.first, LOW);
    assert_string_equal(a.second, HIGH);
    assert_int_equal(a.first_sent, 17);
    assert_int_equal(a.second_sent, 11);
    assert_int_equal(a.currencies[0].first_to_second, 125000);
    assert_int_equal(a.currencies[0].second_to_first, 30000);
    assert_int_equal(a.currencies[0].net_first, -95000);
    assert_int_equal(a.currencies[1].net_first, 5000);
    assert_memory_equal(&a, &b, sizeof a);
    size_t la = 0, lb = 0;
    uint8_t *ea = encode(&a, &la), *eb = encode(&b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ea, eb, la);
    /* and it decodes to itself */
    cycle_statement_t back;
    assert_true(cycle_statement_decode(ea, la, &back));
    assert_memory_equal(&back, &a, sizeof a);
    /* each side reads its own figures back from it */
    int64_t paid, received, net;
    cycle_currency_view(&back.currencies[0], true, &paid, &received, &net);
    assert_int_equal(paid, 125000);
    assert_int_equal(received, 30000);
    assert_int_equal(net, -95000);
    cycle_currency_view(&back.currencies[0], false, &paid, &received, &net);
    assert_int_equal(paid, 30000);
    assert_int_equal(received, 125000);
    assert_int_equal(net, 95000);
    /* a different figure gives different bytes */
    cycle_view_t other[2];
    memcpy(other, high_views, sizeof other);
    other[0].count = 5;
    assert_true(cycle_statement_from_view(&b, HIGH, LOW, 3, 11, 17, other, 2, d, 5));
    free(eb);
    eb = encode(&b, &lb);
    assert_false(la == lb && memcmp(ea, eb, la) == 0);
    free(ea);
    free(eb);
}

static void test_view_overflow(void **state)
{
    (void)state;
    uint8_t d[DIGEST_BYTES] = {0};
    cycle_statement_t st;
    /* received - paid leaves int64 */
    cycle_view_t v = {"RUB", INT64_MAX, -2, 1};
    assert_false(cycle_statement_from_view(&st, LOW, HIGH, 1, 1, 1, &v, 1, d, 1));
    /* exactly INT64_MIN is refused too: its negation is undefined */
    v = (cycle_view_t){"RUB", INT64_MAX, -1, 1};
    assert_false(cycle_statement_from_view(&st, HIGH, LOW, 1, 1, 1, &v, 1, d, 1));
    /* the largest gross both ways is stated */
    v = (cycle_view_t){"RUB", INT64_MAX, 0, 1};
    assert_true(cycle_statement_from_view(&st, LOW, HIGH, 1, 1, 1, &v, 1, d, 1));
    assert_int_equal(st.currencies[0].net_first, -INT64_MAX);
    assert_true(decodes(&st));
    assert_true(cycle_statement_from_view(&st, HIGH, LOW, 1, 1, 1, &v, 1, d, 1));
    assert_int_equal(st.currencies[0].net_first, INT64_MAX);
    assert_true(decodes(&st));
    /* a cycle with no currency at all (only rejected entries cannot exist: count >= 1) */
    assert_true(cycle_statement_from_view(&st, LOW, HIGH, 1, 0, 0, NULL, 0, d, 0));
    assert_true(decodes(&st));
}

/* ---- strict decoding ------------------------------------------------------------------------ */

static void test_decode_refuses_figures(void **state)
{
    (void)state;
    cycle_statement_t st = low_statement();
    assert_true(decodes(&st));

    cycle_statement_t bad = st; /* first does not sort before second */
    snprintf(bad.first, sizeof bad.first, HIGH);
    snprintf(bad.second, sizeof bad.second, LOW);
    assert_false(decodes(&bad));
    bad = st; /* the same code twice */
    snprintf(bad.second, sizeof bad.second, LOW);
    assert_false(decodes(&bad));
    bad = st; /* a missing first */
    bad.first[0] = '\0';
    assert_false(decodes(&bad));
    bad = st; /* a missing second */
    bad.second[0] = '\0';
    assert_false(decodes(&bad));
    bad = st;
    bad.cycle = 0;
    assert_false(decodes(&bad));
    bad = st; /* a bound past the sequence space */
    bad.first_sent = CORRIDOR_SEQUENCE_MAX + 1;
    assert_false(decodes(&bad));
    bad.first_sent = CORRIDOR_SEQUENCE_MAX;
    assert_true(decodes(&bad));
    bad.second_sent = CORRIDOR_SEQUENCE_MAX + 1;
    assert_false(decodes(&bad));
    bad = st; /* unknown currency */
    snprintf(bad.currencies[0].currency, sizeof bad.currencies[0].currency, "XYZ");
    assert_false(decodes(&bad));
    bad = st; /* lower case */
    snprintf(bad.currencies[0].currency, sizeof bad.currencies[0].currency, "rub");
    assert_false(decodes(&bad));
    bad = st; /* empty currency */
    bad.currencies[0].currency[0] = '\0';
    assert_false(decodes(&bad));
    bad = st; /* not ascending */
    cycle_currency_t tmp = bad.currencies[0];
    bad.currencies[0] = bad.currencies[1];
    bad.currencies[1] = tmp;
    assert_false(decodes(&bad));
    bad = st; /* the same currency twice: not strictly ascending */
    bad.currencies[1] = bad.currencies[0];
    assert_false(decodes(&bad));
    bad = st;
    bad.currencies[1].count = 0;
    assert_false(decodes(&bad));
    bad = st; /* a negative gross, with a net that agrees with it */
    bad.currencies[0].first_to_second = -1;
    bad.currencies[0].net_first = 30001;
    assert_false(decodes(&bad));
    bad = st;
    bad.currencies[0].second_to_first = -30000;
    bad.currencies[0].net_first = -155000;
    assert_false(decodes(&bad));
    bad = st; /* net_first inconsistent with the grosses, either sign */
    bad.currencies[0].net_first = 95000;
    assert_false(decodes(&bad));
    bad.currencies[0].net_first = -95001;
    assert_false(decodes(&bad));
    bad = st; /* net INT64_MIN: only with a negative gross, and never accepted */
    bad.currencies[0].first_to_second = 0;
    bad.currencies[0].second_to_first = 0;
    bad.currencies[0].net_first = INT64_MIN;
    assert_false(decodes(&bad));
    bad.currencies[0].first_to_second = INT64_MIN;
    assert_false(decodes(&bad));
    bad = st; /* a gross at INT64_MAX both ways nets to 0 and is accepted */
    bad.currencies[0].first_to_second = INT64_MAX;
    bad.currencies[0].second_to_first = INT64_MAX;
    bad.currencies[0].net_first = 0;
    assert_true(decodes(&bad));
}

static void test_decode_refuses_shapes(void **state)
{
    (void)state;
    cycle_statement_t st = low_statement();
    raw_t r;
    raw_from(&r, &st);
    assert_true(raw_decodes(&r));
    /* digest of 31, 33 and 0 bytes */
    r.msg.digest.len = DIGEST_BYTES - 1;
    assert_false(raw_decodes(&r));
    r.msg.digest.len = DIGEST_BYTES + 1;
    assert_false(raw_decodes(&r));
    r.msg.digest.len = 0;
    assert_false(raw_decodes(&r));
    r.msg.digest.len = DIGEST_BYTES;
    /* names: CORRIDOR_NAME_LEN_MAX is taken, one more is not */
    char longest[CORRIDOR_NAME_LEN_MAX + 2];
    memset(longest, 'Z', CORRIDOR_NAME_LEN_MAX);
    longest[CORRIDOR_NAME_LEN_MAX] = '\0';
    r.msg.second = longest;
    assert_true(raw_decodes(&r));
    longest[CORRIDOR_NAME_LEN_MAX] = 'Z';
    longest[CORRIDOR_NAME_LEN_MAX + 1] = '\0';
    assert_false(raw_decodes(&r));
    char long_first[CORRIDOR_NAME_LEN_MAX + 2];
    memset(long_first, 'A', CORRIDOR_NAME_LEN_MAX + 1);
    long_first[CORRIDOR_NAME_LEN_MAX + 1] = '\0';
    r.msg.second = (char *)st.second;
    r.msg.first = long_first;
    assert_false(raw_decodes(&r));
    r.msg.first = (char *)st.first;
    /* a currency of four letters ("RUBX") */
    r.wires[0].currency = "RUBX";
    assert_false(raw_decodes(&r));
    r.wires[0].currency = (char *)st.currencies[0].currency;
    assert_true(raw_decodes(&r));
    /* more currencies than CYCLE_CURRENCIES_MAX */
    raw_t many;
    raw_from(&many, &st);
    many.msg.n_currencies = CYCLE_CURRENCIES_MAX + 1;
    for (size_t i = 0; i < many.msg.n_currencies; i++) {
        corridor__cycle_currency__init(&many.wires[i]);
        many.wires[i].currency = "RUB";
        many.wires[i].count = 1;
        many.ptrs[i] = &many.wires[i];
    }
    assert_false(raw_decodes(&many));
}

/* Every known currency, with the largest figures: the longest statement there can be still
 * fits CYCLE_STATEMENT_MAX; a buffer past it is refused before decoding. */
static void test_decode_size(void **state)
{
    (void)state;
    static const char *codes[] = {"AED", "AFN", "AMD", "AZN", "BHD", "BRL", "BYN", "CHF", "CLP",
                                  "CNY", "EGP", "EUR", "GBP", "GEL", "HKD", "IDR", "INR", "IQD",
                                  "IRR", "ISK", "JOD", "JPY", "KGS", "KRW", "KWD", "KZT", "LYD",
                                  "MNT", "MYR", "OMR", "PKR", "QAR", "RUB", "SAR", "SGD", "TJS",
                                  "TMT", "TND", "TRY", "USD", "UZS", "VND", "ZAR"};
    size_t n = sizeof codes / sizeof codes[0];
    assert_true(n <= CYCLE_CURRENCIES_MAX);
    cycle_view_t views[CYCLE_CURRENCIES_MAX];
    for (size_t i = 0; i < n; i++) {
        assert_non_null(currency_find(codes[i]));
        snprintf(views[i].currency, sizeof views[i].currency, "%s", codes[i]);
        views[i].paid = INT64_MAX;
        views[i].received = 1;
        views[i].count = UINT64_MAX;
    }
    uint8_t d[DIGEST_BYTES];
    memset(d, 0xff, sizeof d);
    cycle_statement_t st;
    assert_true(cycle_statement_from_view(&st, "AAAAAAAAAAA", "ZZZZZZZZZZZ", UINT64_MAX,
                                          CORRIDOR_SEQUENCE_MAX, CORRIDOR_SEQUENCE_MAX, views, n, d,
                                          UINT64_MAX));
    size_t len = 0;
    uint8_t *bytes = encode(&st, &len);
    assert_true(len <= CYCLE_STATEMENT_MAX);
    cycle_statement_t back;
    assert_true(cycle_statement_decode(bytes, len, &back));
    assert_memory_equal(&back, &st, sizeof st);
    free(bytes);

    uint8_t big[CYCLE_STATEMENT_MAX + 1];
    st = low_statement();
    bytes = encode(&st, &len);
    memset(big, 0, sizeof big);
    memcpy(big, bytes, len);
    assert_false(cycle_statement_decode(big, sizeof big, &back));
    assert_false(cycle_statement_decode(bytes, 0, &back));
    assert_false(cycle_statement_decode(NULL, 0, &back));
    free(bytes);
}

/* Bytes protobuf-c would accept but that are not what encoding gives. */
static void test_decode_refuses_non_canonical(void **state)
{
    (void)state;
    cycle_statement_t st = low_statement();
    size_t len = 0;
    uint8_t *bytes = encode(&st, &len);
    uint8_t buf[512];
    assert_true(len + 16 < sizeof buf);
    cycle_statement_t back;
    assert_true(cycle_statement_decode(bytes, len, &back));

    /* the cycle repeated at the end (last one wins in protobuf, same value or not) */
    memcpy(buf, bytes, len);
    buf[len] = 0x18;
    buf[len + 1] = 0x03;
    assert_false(cycle_statement_decode(buf, len + 2, &back));
    buf[len + 1] = 0x04;
    assert_false(cycle_statement_decode(buf, len + 2, &back));
    /* an unknown field (20, varint 1) */
    buf[len] = 0xa0;
    buf[len + 1] = 0x01;
    buf[len + 2] = 0x01;
    assert_false(cycle_statement_decode(buf, len + 3, &back));
    /* a default written out: entry_count 0 as 40 00 */
    cycle_statement_t zero_count = st;
    zero_count.entry_count = 0;
    free(bytes);
    bytes = encode(&zero_count, &len);
    assert_true(cycle_statement_decode(bytes, len, &back));
    memcpy(buf, bytes, len);
    buf[len] = 0x40;
    buf[len + 1] = 0x00;
    assert_false(cycle_statement_decode(buf, len + 2, &back));
    free(bytes);

    /* a field out of order: the cycle moved after entry_count */
    cycle_statement_t no_cycle = st;
    no_cycle.cycle = 0;
    bytes = encode(&no_cycle, &len);
    memcpy(buf, bytes, len);
    buf[len] = 0x18;
    buf[len + 1] = 0x03;
    assert_false(cycle_statement_decode(buf, len + 2, &back));
    /* the same bytes in order are accepted (so the refusal above is the order's) */
    free(bytes);
    bytes = encode(&st, &len);
    assert_true(cycle_statement_decode(bytes, len, &back));
    assert_int_equal(back.cycle, 3);

    /* a varint not minimal: cycle 3 as 83 00 */
    size_t at = 0;
    for (at = 0; at + 1 < len && !(bytes[at] == 0x18 && bytes[at + 1] == 0x03); at++) {
    }
    assert_true(at + 1 < len);
    memcpy(buf, bytes, at + 1);
    buf[at + 1] = 0x83;
    buf[at + 2] = 0x00;
    memcpy(buf + at + 3, bytes + at + 2, len - at - 2);
    assert_false(cycle_statement_decode(buf, len + 1, &back));
    /* a packed truncation does not decode */
    assert_false(cycle_statement_decode(bytes, len - 1, &back));
    free(bytes);
}

/* ---- H8 and H9 ------------------------------------------------------------------------------ */

static void test_sign_verify(void **state)
{
    (void)state;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
    keys(0x31, pk, sk);
    keys(0x32, pk2, sk2);
    cycle_statement_t st = low_statement();
    size_t len = 0;
    uint8_t *bytes = encode(&st, &len);
    uint8_t sig[crypto_sign_BYTES], sig2[crypto_sign_BYTES];
    assert_int_equal(cycle_sign(bytes, len, sk, sig), 0);
    assert_true(cycle_verify(bytes, len, sig, pk));
    assert_false(cycle_verify(bytes, len, sig, pk2)); /* another key */
    /* H8 is Ed25519 over "corridor.cycle.v1" 0x00 || bytes, nothing else */
    size_t dl = sizeof CYCLE_DOMAIN;
    assert_int_equal(dl, 18);
    uint8_t *msg = malloc(dl + len);
    assert_non_null(msg);
    memcpy(msg, CYCLE_DOMAIN, dl);
    memcpy(msg + dl, bytes, len);
    assert_int_equal(crypto_sign_detached(sig2, NULL, msg, dl + len, sk), 0);
    assert_memory_equal(sig, sig2, sizeof sig);
    /* the same bytes signed bare or under another domain do not verify */
    assert_int_equal(crypto_sign_detached(sig2, NULL, bytes, len, sk), 0);
    assert_false(cycle_verify(bytes, len, sig2, pk));
    static const char checkpoint_domain[] = "corridor.checkpoint.v1";
    uint8_t *cmsg = malloc(sizeof checkpoint_domain + len);
    assert_non_null(cmsg);
    memcpy(cmsg, checkpoint_domain, sizeof checkpoint_domain);
    memcpy(cmsg + sizeof checkpoint_domain, bytes, len);
    assert_int_equal(crypto_sign_detached(sig2, NULL, cmsg, sizeof checkpoint_domain + len, sk), 0);
    assert_false(cycle_verify(bytes, len, sig2, pk));
    free(cmsg);
    /* every flipped byte of the statement, and of the signature, fails */
    for (size_t i = 0; i < len; i++) {
        bytes[i] ^= 0x01;
        assert_false(cycle_verify(bytes, len, sig, pk));
        bytes[i] ^= 0x01;
    }
    for (size_t i = 0; i < sizeof sig; i++) {
        memcpy(sig2, sig, sizeof sig);
        sig2[i] ^= 0x80;
        assert_false(cycle_verify(bytes, len, sig2, pk));
    }
    assert_true(cycle_verify(bytes, len, sig, pk));
    /* both sides sign the same bytes: each signature verifies with its own key only */
    assert_int_equal(cycle_sign(bytes, len, sk2, sig2), 0);
    assert_true(cycle_verify(bytes, len, sig2, pk2));
    assert_false(cycle_verify(bytes, len, sig2, pk));
    free(msg);
    free(bytes);
}

static void test_hash(void **state)
{
    (void)state;
    cycle_statement_t st = low_statement();
    size_t len = 0;
    uint8_t *bytes = encode(&st, &len);
    uint8_t h[CYCLE_HASH_BYTES], want[CYCLE_HASH_BYTES], h8dom[CYCLE_HASH_BYTES];
    cycle_statement_hash(bytes, len, h);
    size_t dl = sizeof CYCLE_STATEMENT_DOMAIN;
    assert_int_equal(dl, 28);
    uint8_t *msg = malloc(dl + len);
    assert_non_null(msg);
    memcpy(msg, CYCLE_STATEMENT_DOMAIN, dl);
    memcpy(msg + dl, bytes, len);
    crypto_generichash(want, sizeof want, msg, dl + len, NULL, 0);
    assert_memory_equal(h, want, sizeof h);
    /* not the hash under H8's domain, nor of the bare bytes */
    assert_string_not_equal(CYCLE_DOMAIN, CYCLE_STATEMENT_DOMAIN);
    uint8_t *msg8 = malloc(sizeof CYCLE_DOMAIN + len);
    assert_non_null(msg8);
    memcpy(msg8, CYCLE_DOMAIN, sizeof CYCLE_DOMAIN);
    memcpy(msg8 + sizeof CYCLE_DOMAIN, bytes, len);
    crypto_generichash(h8dom, sizeof h8dom, msg8, sizeof CYCLE_DOMAIN + len, NULL, 0);
    assert_memory_not_equal(h, h8dom, sizeof h);
    crypto_generichash(h8dom, sizeof h8dom, bytes, len, NULL, 0);
    assert_memory_not_equal(h, h8dom, sizeof h);
    /* another statement, another hash */
    bytes[len - 1] ^= 1;
    cycle_statement_hash(bytes, len, h8dom);
    assert_memory_not_equal(h, h8dom, sizeof h);
    free(msg8);
    free(msg);
    free(bytes);
}

/* ---- CycleProposal and CycleAnswer ---------------------------------------------------------- */

static uint8_t *pack_proposal(const uint8_t *statement, size_t slen, const uint8_t *sig,
                              size_t sig_len, size_t *len)
{
    Corridor__CycleProposal msg = CORRIDOR__CYCLE_PROPOSAL__INIT;
    msg.statement = (ProtobufCBinaryData){slen, (uint8_t *)statement};
    msg.signature = (ProtobufCBinaryData){sig_len, (uint8_t *)sig};
    *len = corridor__cycle_proposal__get_packed_size(&msg);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    corridor__cycle_proposal__pack(&msg, out);
    return out;
}

static void test_proposal_decode(void **state)
{
    (void)state;
    cycle_statement_t st = low_statement();
    size_t slen = 0, len = 0;
    uint8_t *statement = encode(&st, &slen);
    uint8_t sig[crypto_sign_BYTES + 1];
    memset(sig, 0x77, sizeof sig);
    uint8_t *body = NULL;
    assert_int_equal(cycle_proposal_encode(statement, slen, sig, &body, &len), 0);
    cycle_answer_t p;
    assert_true(cycle_proposal_decode(body, len, &p));
    assert_true(p.has_signature);
    assert_memory_equal(p.signature, sig, crypto_sign_BYTES);
    assert_int_equal(p.statement_len, slen);
    assert_memory_equal(p.statement, statement, slen);
    assert_int_equal(p.cycle, 0);
    assert_string_equal(p.error, "");
    cycle_answer_release(&p);
    assert_null(p.statement);
    free(body);

    /* the signature 63, 65 or 0 bytes */
    static const size_t sig_lens[] = {crypto_sign_BYTES - 1, crypto_sign_BYTES + 1, 0};
    for (size_t i = 0; i < 3; i++) {
        body = pack_proposal(statement, slen, sig, sig_lens[i], &len);
        assert_false(cycle_proposal_decode(body, len, &p));
        assert_null(p.statement);
        free(body);
    }
    /* no statement */
    body = pack_proposal(NULL, 0, sig, crypto_sign_BYTES, &len);
    assert_false(cycle_proposal_decode(body, len, &p));
    free(body);
    /* a statement of CYCLE_STATEMENT_MAX bytes is carried (decoding it is the caller's), one
     * more is not */
    uint8_t *huge = calloc(1, CYCLE_STATEMENT_MAX + 1);
    assert_non_null(huge);
    body = pack_proposal(huge, CYCLE_STATEMENT_MAX, sig, crypto_sign_BYTES, &len);
    assert_true(cycle_proposal_decode(body, len, &p));
    assert_int_equal(p.statement_len, CYCLE_STATEMENT_MAX);
    cycle_answer_release(&p);
    free(body);
    body = pack_proposal(huge, CYCLE_STATEMENT_MAX + 1, sig, crypto_sign_BYTES, &len);
    assert_false(cycle_proposal_decode(body, len, &p));
    assert_null(p.statement);
    free(body);
    free(huge);
    /* garbage does not decode */
    static const uint8_t junk[] = {0x0a, 0x05, 0x01};
    assert_false(cycle_proposal_decode(junk, sizeof junk, &p));
    free(statement);
}

static uint8_t *pack_answer(uint64_t cycle, const uint8_t *sig, size_t sig_len,
                            const uint8_t *statement, size_t slen, const char *error, size_t *len)
{
    Corridor__CycleAnswer msg = CORRIDOR__CYCLE_ANSWER__INIT;
    msg.cycle = cycle;
    msg.signature = (ProtobufCBinaryData){sig_len, (uint8_t *)sig};
    msg.statement = (ProtobufCBinaryData){slen, (uint8_t *)statement};
    msg.error = (char *)error;
    *len = corridor__cycle_answer__get_packed_size(&msg);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    corridor__cycle_answer__pack(&msg, out);
    return out;
}

static void test_answer_decode(void **state)
{
    (void)state;
    uint8_t sig[crypto_sign_BYTES + 1];
    memset(sig, 0x5e, sizeof sig);
    cycle_statement_t st = low_statement();
    size_t slen = 0, len = 0;
    uint8_t *statement = encode(&st, &slen);

    /* the three shapes round-trip: countersignature, dispute, refusal */
    cycle_answer_t a, back;
    memset(&a, 0, sizeof a);
    a.cycle = 3;
    a.has_signature = true;
    memcpy(a.signature, sig, crypto_sign_BYTES);
    uint8_t *body = NULL;
    assert_int_equal(cycle_answer_encode(&a, &body, &len), 0);
    assert_true(cycle_answer_decode(body, len, &back));
    assert_int_equal(back.cycle, 3);
    assert_true(back.has_signature);
    assert_memory_equal(back.signature, sig, crypto_sign_BYTES);
    assert_null(back.statement);
    assert_string_equal(back.error, "");
    free(body);
    a.statement = statement;
    a.statement_len = slen;
    snprintf(a.error, sizeof a.error, "the figures differ");
    assert_int_equal(cycle_answer_encode(&a, &body, &len), 0);
    assert_true(cycle_answer_decode(body, len, &back));
    assert_int_equal(back.statement_len, slen);
    assert_memory_equal(back.statement, statement, slen);
    assert_string_equal(back.error, "the figures differ");
    cycle_answer_release(&back);
    free(body);
    memset(&a, 0, sizeof a);
    a.cycle = 4;
    snprintf(a.error, sizeof a.error, "cycle 4 is not the next");
    assert_int_equal(cycle_answer_encode(&a, &body, &len), 0);
    assert_true(cycle_answer_decode(body, len, &back));
    assert_false(back.has_signature);
    assert_string_equal(back.error, "cycle 4 is not the next");
    free(body);

    /* a signature neither absent nor 64 bytes */
    body = pack_answer(3, sig, crypto_sign_BYTES - 1, NULL, 0, "", &len);
    assert_false(cycle_answer_decode(body, len, &back));
    free(body);
    body = pack_answer(3, sig, crypto_sign_BYTES + 1, NULL, 0, "", &len);
    assert_false(cycle_answer_decode(body, len, &back));
    free(body);
    /* an error of CYCLE_ERROR_MAX bytes, and one more */
    char error[CYCLE_ERROR_MAX + 2];
    memset(error, 'e', CYCLE_ERROR_MAX);
    error[CYCLE_ERROR_MAX] = '\0';
    body = pack_answer(3, NULL, 0, NULL, 0, error, &len);
    assert_true(cycle_answer_decode(body, len, &back));
    assert_int_equal(strlen(back.error), CYCLE_ERROR_MAX);
    free(body);
    error[CYCLE_ERROR_MAX] = 'e';
    error[CYCLE_ERROR_MAX + 1] = '\0';
    body = pack_answer(3, NULL, 0, NULL, 0, error, &len);
    assert_false(cycle_answer_decode(body, len, &back));
    assert_string_equal(back.error, "");
    free(body);
    /* a statement over CYCLE_STATEMENT_MAX, with a good signature: nothing kept */
    uint8_t *huge = calloc(1, CYCLE_STATEMENT_MAX + 1);
    assert_non_null(huge);
    body = pack_answer(3, sig, crypto_sign_BYTES, huge, CYCLE_STATEMENT_MAX + 1, "", &len);
    assert_false(cycle_answer_decode(body, len, &back));
    assert_null(back.statement);
    free(body);
    body = pack_answer(3, sig, crypto_sign_BYTES, huge, CYCLE_STATEMENT_MAX, "", &len);
    assert_true(cycle_answer_decode(body, len, &back));
    assert_int_equal(back.statement_len, CYCLE_STATEMENT_MAX);
    cycle_answer_release(&back);
    free(body);
    /* a bad error after a good statement: the statement is released */
    body = pack_answer(3, sig, crypto_sign_BYTES, huge, 16, error, &len);
    assert_false(cycle_answer_decode(body, len, &back));
    assert_null(back.statement);
    free(body);
    free(huge);
    free(statement);
}

/* ---- NetSettlement -------------------------------------------------------------------------- */

static net_settlement_t net(void)
{
    net_settlement_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.settlement_id, sizeof n.settlement_id, NET_ID);
    n.cycle = 3;
    snprintf(n.currency, sizeof n.currency, "RUB");
    n.amount_minor = 95000;
    snprintf(n.reference, sizeof n.reference, "RTGS-2026-0001");
    snprintf(n.method, sizeof n.method, "INDA");
    n.created_unix_ms = INT64_C(1767225600000);
    memset(n.statement_hash, 0x42, sizeof n.statement_hash);
    return n;
}

static void test_net_settlement_round_trip(void **state)
{
    (void)state;
    net_settlement_t n = net(), back;
    snprintf(n.method, sizeof n.method, "CLRG");
    snprintf(n.clearing_system, sizeof n.clearing_system, "BESP");
    assert_null(net_settlement_check(&n));
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(net_settlement_encode(&n, &body, &len), 0);
    assert_true(net_settlement_decode(body, len, &back));
    assert_memory_equal(&back, &n, sizeof n);
    free(body);
}

/* A NetSettlement with fields the holder cannot carry (too long, a short hash). */
static bool raw_net_decodes(const char *reference, const char *clearing, size_t hash_len)
{
    uint8_t hash[CYCLE_HASH_BYTES + 1];
    memset(hash, 0x42, sizeof hash);
    Corridor__NetSettlement msg = CORRIDOR__NET_SETTLEMENT__INIT;
    msg.settlement_id = NET_ID;
    msg.cycle = 3;
    msg.currency = "RUB";
    msg.amount_minor = 95000;
    msg.reference = (char *)reference;
    msg.method = clearing[0] != '\0' ? "CLRG" : "INDA";
    msg.clearing_system = (char *)clearing;
    msg.statement_hash = (ProtobufCBinaryData){hash_len, hash};
    size_t len = corridor__net_settlement__get_packed_size(&msg);
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    corridor__net_settlement__pack(&msg, body);
    net_settlement_t n;
    bool ok = net_settlement_decode(body, len, &n) && net_settlement_check(&n) == NULL;
    free(body);
    return ok;
}

static void test_net_settlement_decode_limits(void **state)
{
    (void)state;
    char ref[CYCLE_REFERENCE_MAX + 2];
    memset(ref, 'R', CYCLE_REFERENCE_MAX);
    ref[CYCLE_REFERENCE_MAX] = '\0';
    assert_true(raw_net_decodes(ref, "", CYCLE_HASH_BYTES));
    assert_true(raw_net_decodes("R", ref, CYCLE_HASH_BYTES));
    ref[CYCLE_REFERENCE_MAX] = 'R';
    ref[CYCLE_REFERENCE_MAX + 1] = '\0';
    assert_false(raw_net_decodes(ref, "", CYCLE_HASH_BYTES)); /* 36 bytes */
    assert_false(raw_net_decodes("R", ref, CYCLE_HASH_BYTES));
    assert_false(raw_net_decodes("R", "", CYCLE_HASH_BYTES - 1));
    assert_false(raw_net_decodes("R", "", CYCLE_HASH_BYTES + 1));
    assert_false(raw_net_decodes("R", "", 0));
    /* a method of five letters does not fit */
    Corridor__NetSettlement msg = CORRIDOR__NET_SETTLEMENT__INIT;
    uint8_t hash[CYCLE_HASH_BYTES] = {0};
    msg.settlement_id = NET_ID;
    msg.method = "INDAX";
    msg.statement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t body[256];
    size_t len = corridor__net_settlement__pack(&msg, body);
    net_settlement_t n;
    assert_false(net_settlement_decode(body, len, &n));
    assert_string_equal(n.settlement_id, NET_ID); /* the id is kept when it fit */
    static const uint8_t junk[] = {0x0a, 0x40};
    assert_false(net_settlement_decode(junk, sizeof junk, &n));
}

static void test_net_settlement_check(void **state)
{
    (void)state;
    net_settlement_t n = net();
    assert_null(net_settlement_check(&n));
    snprintf(n.method, sizeof n.method, "INGA");
    assert_null(net_settlement_check(&n));

    n = net(); /* not a UUIDv4: version 1, upper case, empty */
    snprintf(n.settlement_id, sizeof n.settlement_id, "3b2a1c0d-9e8f-1a7b-8c6d-5e4f3a2b1c0d");
    assert_non_null(net_settlement_check(&n));
    snprintf(n.settlement_id, sizeof n.settlement_id, "3B2A1C0D-9E8F-4A7B-8C6D-5E4F3A2B1C0D");
    assert_non_null(net_settlement_check(&n));
    n.settlement_id[0] = '\0';
    assert_non_null(net_settlement_check(&n));
    n = net();
    n.cycle = 0;
    assert_string_equal(net_settlement_check(&n), "cycle 0");
    n = net();
    snprintf(n.currency, sizeof n.currency, "XYZ");
    assert_string_equal(net_settlement_check(&n), "an unknown currency");
    n.currency[0] = '\0';
    assert_string_equal(net_settlement_check(&n), "an unknown currency");
    n = net();
    n.amount_minor = 0;
    assert_string_equal(net_settlement_check(&n), "an amount that is not positive");
    n.amount_minor = -1;
    assert_non_null(net_settlement_check(&n));
    n.amount_minor = INT64_MIN;
    assert_non_null(net_settlement_check(&n));
    n.amount_minor = INT64_MAX;
    assert_null(net_settlement_check(&n));
    n = net(); /* reference: empty, 35 bytes, not printable */
    n.reference[0] = '\0';
    assert_non_null(net_settlement_check(&n));
    memset(n.reference, '~', CYCLE_REFERENCE_MAX);
    n.reference[CYCLE_REFERENCE_MAX] = '\0';
    assert_null(net_settlement_check(&n));
    snprintf(n.reference, sizeof n.reference, "RTGS\t1");
    assert_non_null(net_settlement_check(&n));
    snprintf(n.reference, sizeof n.reference, "RTGS\x7f");
    assert_non_null(net_settlement_check(&n));
    snprintf(n.reference, sizeof n.reference, "RTGS\xc3\xa9"); /* UTF-8, not ASCII */
    assert_non_null(net_settlement_check(&n));
    snprintf(n.reference, sizeof n.reference, " ");
    assert_null(net_settlement_check(&n));
    assert_false(cycle_reference_valid(""));
    assert_true(cycle_reference_valid("A"));
    char ref36[CYCLE_REFERENCE_MAX + 2];
    memset(ref36, 'A', CYCLE_REFERENCE_MAX + 1);
    ref36[CYCLE_REFERENCE_MAX + 1] = '\0';
    assert_false(cycle_reference_valid(ref36)); /* 36 bytes */
    n = net();                                  /* methods */
    static const char *bad_methods[] = {"", "inda", "CLR", "NONE", "INDB"};
    for (size_t i = 0; i < sizeof bad_methods / sizeof bad_methods[0]; i++) {
        snprintf(n.method, sizeof n.method, "%s", bad_methods[i]);
        assert_string_equal(net_settlement_check(&n), "the method is not INDA, INGA or CLRG");
    }
    n = net(); /* CLRG needs a clearing system, and only CLRG has one */
    snprintf(n.method, sizeof n.method, "CLRG");
    assert_non_null(net_settlement_check(&n));
    snprintf(n.clearing_system, sizeof n.clearing_system, "BESP");
    assert_null(net_settlement_check(&n));
    snprintf(n.clearing_system, sizeof n.clearing_system, "BE\nSP");
    assert_non_null(net_settlement_check(&n));
    snprintf(n.clearing_system, sizeof n.clearing_system, "BESP");
    snprintf(n.method, sizeof n.method, "INDA");
    assert_string_equal(net_settlement_check(&n),
                        "a clearing system is named with CLRG, and only then");
    snprintf(n.method, sizeof n.method, "INGA");
    assert_non_null(net_settlement_check(&n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_mirror),
        cmocka_unit_test(test_view_overflow),
        cmocka_unit_test(test_decode_refuses_figures),
        cmocka_unit_test(test_decode_refuses_shapes),
        cmocka_unit_test(test_decode_size),
        cmocka_unit_test(test_decode_refuses_non_canonical),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_proposal_decode),
        cmocka_unit_test(test_answer_decode),
        cmocka_unit_test(test_net_settlement_round_trip),
        cmocka_unit_test(test_net_settlement_decode_limits),
        cmocka_unit_test(test_net_settlement_check),
    };
    return cmocka_run_group_tests(tests, test_sodium_setup, NULL);
}
