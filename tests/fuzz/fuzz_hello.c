/*
 * Fuzzes the channel's control plane as a trusted (authenticated, maybe hostile or restored)
 * peer drives it: Hellos (counters, the versions list, features), Acks, sequenced business
 * messages, and StatementRequests with a Repair (re-base and its applied_proof), in any order,
 * on a real ledger. Envelope authentication is assumed (fuzz_envelope_signed.c covers it): the
 * harness builds each envelope_message_t as envelope_open would hand it to the channel, signing
 * business messages as the peer for real (their signed bytes become the channel's proof of
 * what it applied).
 *
 * The fixture, built once through the channel itself: node BKRURUMM (fuzz_keys.h identity 0)
 * with peer BMJIIRTH (identity 1) in a temporary directory (synchronous off, fuzzing only).
 * The node queued six settlements to the peer (five RUB, the last USD; all still pending) and
 * applied three of the peer's (sequences 1..3, answered with three StatusReports: nine sent);
 * the peer acknowledged seven. Every input gets a new channel (channel_new: state DOWN, no
 * control message seen) and runs inside one ledger transaction rolled back at the end.
 *
 * Input: byte 0 flags, then up to OPS_MAX records [op][length: 2 bytes, little endian][payload]:
 *   flags 0x01  the channel starts DIVERGED (persisted, as after a restart)
 *         0x02  the channel starts with wire version 2 negotiated (persisted)
 *         0x04  the socket refuses every other business frame (send returns -1)
 *         0x08  the channel keeps no proof of what it applied (a ledger upgraded from schema 2)
 *         0x10  the channel stays DOWN until the input's own Hello; without it the harness
 *               first hands it a Hello consistent with the fixture (stamp (5, 0): the seeds'
 *               control messages continue that incarnation, so they keep what is held;
 *               versions [1], or [1, 2] with 0x02), so that the peer's messages are applied
 *               (only while UP)
 *         0x20  the node screens the peer's payments (PROTOCOL.md 3.8.2): one whose amount is a
 *               multiple of 1000 is on the screening list (RR04), every other one that passes
 *               the checks before screening is held for the screening program (PDNG)
 *         0x40  the node sets a band for the peer's FX trades (PROTOCOL.md 3.10: fx_band.RUB_USD
 *               = 0.5..2, accepted inside, AG01 outside); without it a trade is held for review
 *   op % 8:
 *     0 HELLO    payload: a Hello body, to channel_receive as MSG_HELLO
 *     1 ACK      payload: an Ack body, as MSG_ACK
 *     2 MESSAGE  payload: [type: b % 8 = 0..2 Settlement, StatusReport, Return; 3 KeyAnnounce;
 *                4 KeySwitch; 5 CancelRequest; 6 CancelAnswer; 7 FxProposal][bit 0: Inner
 *                version 2, bit 1:
 *                signed by the peer's next key][sequence: 8 bytes LE][body];
 *                signed by the peer (skipped when envelope_sign_version refuses, as the envelope
 *                would refuse it), with its key or (bit 1) with the next key the key-switch
 *                seed announces (identity 3's signing and CURVE keys, the peer's box key); a
 *                sequence the channel already applied is a duplicate (channel_note_duplicate),
 *                as the daemon's opener reports it. A CancelAnswer whose cancellation_id is
 *                CANCEL_ID_TEMPLATE answers our latest CancelRequest: the harness puts that
 *                request's id (random, uetr_generate) in its place
 *     3 REQUEST  payload: a StatementRequest body, answered by recon_answer; its
 *                repair.applied_proof is signed by the harness when it is a fuzz_proof.h
 *                template (a genuine proof: this node's own message to the peer, at any
 *                sequence, type, version and recipient), else passed raw
 *     4 TICK     payload: 2 bytes LE, the clock moves on 8 ms per unit before the turn runs
 *                (liveness, retransmission, expiry: the wall clock moves with it)
 *     5 SEND     payload: [currency: b % 2 RUB/USD]; channel_send_settlement of a new settlement
 *     6 CANCEL   payload: [which: b % (OUR_SETTLEMENTS + sent so far)][reason: b % 7];
 *                channel_cancel of that settlement of ours (the fixture's, then the SENDs'), as
 *                `corridor cancel` does it: only once the peer offered CHANNEL_FEATURE_HOLDS
 *     7 DECIDE   payload: [which: the peer's settlement number PEER_FIRST + b % 32][verdict: 0
 *                accept, else reject with one of three reasons]; channel_decide_held, as a
 *                review or the screening program's verdict (of a held FX trade too, when that
 *                number is one of its legs' UETRs)
 * Each record is one daemon turn: the receive step, then channel_apply and channel_expire_held
 * (and recon_answer) inside the transaction, then (as if committed) the re-based channel reloaded
 * and channel_after_commit. Every turn sets the wall clock first (ledger and channel), to
 * WALL_START_MS plus the time since the input began.
 *
 * After every turn, whatever the peer sent: the channel's sent, acked and applied counters
 * (channel_stats, and as persisted) are at most CORRIDOR_SEQUENCE_MAX with acked <= sent; sent
 * never moves backwards (no sequence number is reused), nor applied but in a re-base; the wire
 * version never goes down and is 2 only if the peer (or the fixture) offered 2; persisted
 * state matches the channel's; every control frame the channel sends opens at the peer, in
 * that version, with counters in range. A re-base happens exactly when it is well-formed, its
 * proof is empty or genuine and it changes something, and sets the counters exactly as
 * recon.c's rebase describes (a proof moves acked to what it shows, or only forward outside
 * DIVERGED; sent to at least that; in DIVERGED applied back to what our own kept proof shows);
 * a re-base answer's proof is the peer's message of the sequence it states. A payment the
 * channel says it held for the screening program is held in the books; a cancellation of ours
 * that the channel accepts is recorded as open with the id it gave. A return the node accepted
 * (3.9) returns its settled payment to the peer, and the peer's returns of it stay within it. Every
 * FX trade (3.10) is two legs of one id, numbered 1 and 2, sharing their status. No input may
 * stop the ledger.
 *
 * With FUZZ_HELLO_SEEDS=DIR set, the harness writes its seed corpus to DIR and exits.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <sqlite3.h>

#include "channel.h"
#include "config.h"
#include "corridor.pb-c.h"
#include "corridor/limits.h"
#include "envelope.h"
#include "fx.h"
#include "keyannounce.h"
#include "fuzz_fixture.h"
#include "fuzz_keys.h"
#include "fuzz_proof.h"
#include "identity.h"
#include "ledger.h"
#include "ledger_db.h"
#include "recon.h"
#include "settlement.h"
#include "validate.h"
#include "wire.h"

#define SELF_NAME  "BKRURUMM"
#define PEER_NAME  "BMJIIRTH"
#define CURRENCIES "RUB,USD"
#define CAP_MINOR  INT64_C(1000000000000000)

#define OUR_SETTLEMENTS  6    /* 0..4 in RUB, 5 in USD */
#define PEER_SETTLEMENTS 3    /* the peer's, its sequences 1..3 */
#define PEER_FIRST       10   /* settlement_of numbers of the peer's */
#define SEND_FIRST       1000 /* settlement_of numbers of those an input sends */

#define START_DIVERGED 0x01u
#define START_V2       0x02u
#define BLOCK_SOCKET   0x04u
#define START_NO_PROOF 0x08u
#define START_DOWN     0x10u
#define SCREEN         0x20u
#define FX_BAND        0x40u

enum { OP_HELLO, OP_ACK, OP_MESSAGE, OP_REQUEST, OP_TICK, OP_SEND, OP_CANCEL, OP_DECIDE, OP_COUNT };

/* What a MESSAGE record's type byte selects (b % MESSAGE_TYPES_COUNT): every sequenced type. */
static const msg_type_t message_types[] = {
    MSG_SETTLEMENT, MSG_STATUS_REPORT,  MSG_RETURN,        MSG_KEY_ANNOUNCE,
    MSG_KEY_SWITCH, MSG_CANCEL_REQUEST, MSG_CANCEL_ANSWER, MSG_FX_PROPOSAL,
};
#define MESSAGE_TYPES_COUNT (sizeof message_types / sizeof message_types[0])

#define OPS_MAX        64
#define START_MS       INT64_C(1000000)
#define ROUND_MS       10
#define TICK_UNIT_MS   8
#define WALL_START_MS  INT64_C(1767225600000) /* the wall clock at START_MS: 2026-01-01 */
#define SEED_FILES_MAX 40

/* In a CancelAnswer the peer sends, this id stands for the id of our latest CancelRequest. */
#define CANCEL_ID_TEMPLATE "00000000-0000-4000-8000-000000000000"

#define FIXTURE_DIR_PREFIX "corridor-fuzz-hello."       /* + pid + "." + mkdtemp's suffix */
static const char *const fixture_nodes[] = {SELF_NAME}; /* their ledgers in the fixture */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char tmp_dir[256];
static identity_t *self_id, *peer_id, *third_id;
static identity_t *peer_next; /* the peer's next keys (MESSAGE bit 1, the key-switch seed) */
static config_t *config;
static envelope_peer_t *keys; /* [0] how the node sees the peer; [1] how the peer sees it */
static ledger_t *ledger;
static channel_ctx_t channel_ctx;
static ledger_channel_t fixture; /* the fixture's counters */

/* What the current input has seen and may expect (reset per input). */
static struct {
    channel_t *ch;
    bool v2_offered;        /* the fixture or some Hello offered version 2 */
    uint32_t version_floor; /* the highest wire version the channel has used */
    uint64_t sent_floor, applied_floor;
    unsigned business_frames;
    bool block_socket;
    unsigned sends;
    bool screen;                           /* SCREEN: the node screens the peer's payments */
    char cancel_id[CORRIDOR_UETR_LEN + 1]; /* our latest CancelRequest's id, or "" */
} in;

/* ---- helpers -------------------------------------------------------------------------------- */

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "fuzz_hello: %s\n", what);
    abort();
}

static void must(ledger_err_t rc, const char *what)
{
    if (rc != LEDGER_OK) {
        fprintf(stderr, "fuzz_hello: %s: %s (%s)\n", what, ledger_strerror(rc),
                ledger != NULL ? ledger_last_error(ledger) : "");
        abort();
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL) {
        fail("out of memory");
    }
    return p;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* evidence_verify with whichever of the peer's keys, its first or its next, the evidence names
 * as author: what the channel applied may be signed by either. */
static env_err_t peer_verify(const uint8_t *evidence, size_t len, envelope_message_t *m)
{
    uint8_t author[IDENTITY_KEY_ID_BYTES];
    env_err_t rc = evidence_author(evidence, len, author);
    if (rc != ENV_OK) {
        memset(m, 0, sizeof *m);
        return rc;
    }
    const identity_t *key =
        memcmp(author, peer_next->key_id, IDENTITY_KEY_ID_BYTES) == 0 ? peer_next : peer_id;
    return evidence_verify(evidence, len, key->sign_public, m);
}

/* The UETR of settlement i: fixed, a valid UUIDv4. */
static void uetr_of(unsigned i, char out[static CORRIDOR_UETR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t num[2] = {(uint8_t)i, (uint8_t)(i >> 8)};
    uint8_t h[16];
    crypto_generichash(h, sizeof h, num, sizeof num, (const uint8_t *)"corridor.fuzz.hello", 19);
    char digits[33];
    for (size_t k = 0; k < 16; k++) {
        digits[2 * k] = hex[h[k] >> 4];
        digits[2 * k + 1] = hex[h[k] & 15];
    }
    digits[12] = '4';
    digits[16] = "89ab"[h[8] & 3];
    snprintf(out, CORRIDOR_UETR_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", digits, digits + 8,
             digits + 12, digits + 16, digits + 20);
}

static void settlement_of(unsigned i, direction_t dir, const char *currency, settlement_t *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", PEER_NAME);
    s->direction = dir;
    uetr_of(i, s->uetr);
    snprintf(s->end_to_end_id, sizeof s->end_to_end_id, "E2E-%u", i);
    s->amount_minor = 1000 + 7 * (int64_t)i;
    snprintf(s->currency, sizeof s->currency, "%s", currency);
    snprintf(s->value_date, sizeof s->value_date, "2026-01-15");
    snprintf(s->debtor_name, sizeof s->debtor_name, "Debtor %u", i);
    snprintf(s->debtor_account, sizeof s->debtor_account, "40702810000000000%03u", i % 1000);
    snprintf(s->creditor_name, sizeof s->creditor_name, "Creditor %u", i);
    snprintf(s->creditor_account, sizeof s->creditor_account, "40702810900000000%03u", i % 1000);
    snprintf(s->remittance, sizeof s->remittance, "invoice %u", i);
    s->created_unix_ms = INT64_C(1767225600000) + i;
}

/* ---- the channel's surroundings --------------------------------------------------------- */

/* channel_ctx_t.send: every control frame must open at the peer, in a version the peer
 * offered, with counters in range. Business frames are not opened (it is slow). */
static int capture(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len)
{
    (void)arg;
    assert(peer_index == 0);
    if (msg_type_sequenced((int)type)) {
        in.business_frames++;
        return in.block_socket && (in.business_frames & 1u) ? -1 : 0;
    }
    envelope_message_t m;
    bool known = keys[0].previous_through == 0;
    for (size_t i = 0; i < keys[1].our_key_ids_count && !known; i++) {
        known = memcmp(keys[1].our_key_ids[i], keys[0].key_id, IDENTITY_KEY_ID_BYTES) == 0;
    }
    if (!known) { /* the peer announced a new key (the input's KeyAnnounce): the channel now
                     addresses that one, which the peer holds */
        envelope_peer_add_our_key(&keys[1], keys[0].key_id);
    }
    env_err_t rc = envelope_open(wire, len, peer_id, &keys[1], 1, &m);
    if (rc != ENV_OK) {
        fprintf(stderr, "fuzz_hello: a %s the channel sent does not open at the peer: %s\n",
                msg_type_name((int)type), env_strerror(rc));
        abort();
    }
    assert(m.type == type && m.sequence == 0);
    assert(m.version == INNER_VERSION_MIN || (m.version <= INNER_VERSION_MAX && in.v2_offered));
    if (type == MSG_HELLO) {
        Corridor__Hello *h =
            (Corridor__Hello *)wire_unpack(&corridor__hello__descriptor, m.body_len, m.body);
        assert(h != NULL);
        assert(h->sent_sequence <= CORRIDOR_SEQUENCE_MAX);
        assert(h->applied_sequence <= CORRIDOR_SEQUENCE_MAX);
        assert(h->acked_sequence <= h->sent_sequence);
        assert(h->n_versions >= 1 && h->versions[0] == INNER_VERSION_MIN);
        corridor__hello__free_unpacked(h, NULL);
    } else if (type == MSG_ACK) {
        Corridor__Ack *a =
            (Corridor__Ack *)wire_unpack(&corridor__ack__descriptor, m.body_len, m.body);
        assert(a != NULL && a->sequence <= CORRIDOR_SEQUENCE_MAX);
        corridor__ack__free_unpacked(a, NULL);
    }
    envelope_message_clear(&m);
    return 0;
}

/* channel_ctx_t.screen (PROTOCOL.md 3.8.2): with SCREEN, the list names a payment whose amount is
 * a multiple of 1000 and the program holds every other one; without it every payment passes. */
static channel_screen_t screen_payment(void *arg, const settlement_t *s)
{
    (void)arg;
    assert(s != NULL && s->direction == DIRECTION_IN && strcmp(s->peer, PEER_NAME) == 0);
    if (!in.screen) {
        return CHANNEL_SCREEN_PASS;
    }
    return s->amount_minor % 1000 == 0 ? CHANNEL_SCREEN_LISTED : CHANNEL_SCREEN_PROGRAM;
}

/* channel_ctx_t.on_held: told inside the transaction, so the books hold the payment already,
 * waiting for the program. */
static void payment_held(void *arg, const char *peer, const char *uetr)
{
    (void)arg;
    assert(in.screen && strcmp(peer, PEER_NAME) == 0);
    settlement_t s;
    ledger_outcome_t o;
    must(ledger_find(ledger, peer, uetr, &s, &o), "ledger_find (held)");
    assert(s.direction == DIRECTION_IN && o.status == STATUS_HELD);
    assert(strcmp(o.hold, LEDGER_HOLD_SCREENING) == 0);
}

/* Hands the channel an unsequenced control message (Hello, Ack) with body `body`. */
static void deliver_control(channel_t *ch, msg_type_t type, const uint8_t *body, size_t len,
                            int64_t now)
{
    envelope_message_t m;
    memset(&m, 0, sizeof m);
    m.peer_index = 0;
    m.type = type;
    m.version = INNER_VERSION_MIN;
    m.body = xmalloc(len);
    if (len > 0) {
        memcpy(m.body, body, len);
    }
    m.body_len = len;
    memcpy(m.author_key_id, peer_id->key_id, IDENTITY_KEY_ID_BYTES);
    memcpy(m.recipient_key_id, self_id->key_id, IDENTITY_KEY_ID_BYTES);
    channel_receive(ch, &m, now);
}

/* Hands the channel a business message the peer signed (with `author`, its first or its next
 * key), as the opener would: a duplicate of what was applied only as channel_note_duplicate.
 * False when it cannot be signed. */
static bool deliver_signed(channel_t *ch, const identity_t *author, msg_type_t type,
                           uint32_t version, uint64_t seq, const uint8_t *body, size_t len,
                           int64_t now)
{
    uint8_t *signed_msg = NULL;
    size_t signed_len = 0;
    if (envelope_sign_version(author, version, self_id->key_id, type, seq, body, len, &signed_msg,
                              &signed_len) != ENV_OK) {
        return false; /* above 2^62 or too large: the envelope would refuse it */
    }
    if (seq != 0 && seq <= keys[0].applied_through) {
        free(signed_msg);
        channel_note_duplicate(ch);
        return true;
    }
    envelope_message_t m;
    memset(&m, 0, sizeof m);
    m.peer_index = 0;
    m.type = type;
    m.sequence = seq;
    m.version = version;
    m.body = xmalloc(len);
    if (len > 0) {
        memcpy(m.body, body, len);
    }
    m.body_len = len;
    m.evidence = signed_msg;
    m.evidence_len = signed_len;
    memcpy(m.author_key_id, author->key_id, IDENTITY_KEY_ID_BYTES);
    memcpy(m.recipient_key_id, self_id->key_id, IDENTITY_KEY_ID_BYTES);
    channel_receive(ch, &m, now);
    return true;
}

static channel_t *new_channel(int64_t now)
{
    channel_t *ch = channel_new(&channel_ctx, 0, &config->peers[0], &keys[0], now);
    if (ch == NULL) {
        fail("cannot create the channel");
    }
    return ch;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void cleanup(void)
{
    if (ledger != NULL) {
        ledger_close(&ledger);
    }
    if (tmp_dir[0] != '\0') {
        fixture_remove_dir(tmp_dir, fixture_nodes, sizeof fixture_nodes / sizeof fixture_nodes[0]);
    }
}

static void build_fixture(void)
{
    config = config_new();
    keys = sodium_malloc(2 * sizeof *keys);
    if (config == NULL || keys == NULL) {
        fail("out of memory");
    }
    char err[256];
    snprintf(config->name, sizeof config->name, "%s", SELF_NAME);
    snprintf(config->listen, sizeof config->listen, "tcp://127.0.0.1:7001");
    if (config_set_currencies(config, CURRENCIES, err, sizeof err) != 0) {
        fail(err);
    }
    config->peers_count = 1;
    config_peer_t *peer = &config->peers[0];
    identity_card(peer_id, PEER_NAME, "tcp://127.0.0.1:7002", &peer->card);
    if (config_peer_set_limit(peer, "RUB", CAP_MINOR) != 0 ||
        config_peer_set_limit(peer, "USD", CAP_MINOR) != 0) {
        fail("cannot set limits");
    }
    /* the band FX_BAND turns on (fx_bands_count 1) */
    snprintf(peer->fx_bands[0].base, sizeof peer->fx_bands[0].base, "RUB");
    snprintf(peer->fx_bands[0].quote, sizeof peer->fx_bands[0].quote, "USD");
    if (config_fx_band_parse("0.5..2", &peer->fx_bands[0]) != NULL) {
        fail("cannot set the band");
    }
    fuzz_peer(&keys[0], self_id, peer_id, PEER_NAME);
    fuzz_peer(&keys[1], peer_id, self_id, SELF_NAME);
    char path[600];
    snprintf(path, sizeof path, "%s/%s.db", tmp_dir, SELF_NAME);
    if (ledger_open(path, SELF_NAME, LEDGER_READ_WRITE, NULL, &ledger, err, sizeof err) !=
        LEDGER_OK) {
        fail(err);
    }
    if (sqlite3_exec(ledger_db(ledger), "PRAGMA synchronous=OFF", NULL, NULL, NULL) != SQLITE_OK) {
        fail("cannot turn synchronous off");
    }
    channel_ctx = (channel_ctx_t){
        .self = self_id,
        .config = config,
        .ledger = ledger,
        .send = capture,
        .on_final = fixture_ignore_final,
        .on_statement = fixture_ignore_statement,
        .screen = screen_payment,
        .on_held = payment_held,
        .arg = NULL,
        .node_name = SELF_NAME,
        .incarnation = 1,
    };
    int64_t now = START_MS;
    channel_t *ch = new_channel(now);

    /* our settlements, queued */
    must(ledger_begin(ledger), "begin");
    for (unsigned i = 0; i < OUR_SETTLEMENTS; i++) {
        settlement_t s;
        settlement_of(i, DIRECTION_OUT, i + 1 < OUR_SETTLEMENTS ? "RUB" : "USD", &s);
        ledger_outcome_t out;
        must(channel_send_settlement(ch, &s, &out), "channel_send_settlement");
    }
    must(ledger_commit(ledger), "commit");

    /* the peer's Hello (it sent three; messages are applied only while UP), then its
     * settlements, applied in order (each answered with our StatusReport) */
    static const uint32_t v1[] = {1};
    Corridor__Hello hello = CORRIDOR__HELLO__INIT;
    hello.sent_sequence = PEER_SETTLEMENTS;
    hello.incarnation = 1;
    hello.counter = 1;
    hello.n_versions = 1;
    hello.versions = (uint32_t *)v1;
    uint8_t hello_body[64];
    size_t hello_len = corridor__hello__pack(&hello, hello_body);
    deliver_control(ch, MSG_HELLO, hello_body, hello_len, now);
    for (unsigned i = 0; i < PEER_SETTLEMENTS; i++) {
        settlement_t s;
        settlement_of(PEER_FIRST + i, DIRECTION_IN, "RUB", &s);
        uint8_t *body = NULL;
        size_t len = 0;
        if (settlement_encode(&s, &body, &len) != 0 ||
            !deliver_signed(ch, peer_id, MSG_SETTLEMENT, INNER_VERSION_MIN, i + 1, body, len,
                            now)) {
            fail("cannot deliver a fixture settlement");
        }
        free(body);
    }
    must(ledger_begin(ledger), "begin");
    must(channel_apply(ch, now), "channel_apply");
    must(ledger_commit(ledger), "commit");

    /* the peer acknowledged all but the last two */
    channel_stats_t st = channel_stats(ch);
    Corridor__Ack ack = CORRIDOR__ACK__INIT;
    ack.sequence = st.sent_seq - 2;
    ack.incarnation = 1;
    ack.counter = 2;
    uint8_t buf[64];
    size_t alen = corridor__ack__pack(&ack, buf);
    deliver_control(ch, MSG_ACK, buf, alen, now);
    must(ledger_begin(ledger), "begin");
    must(channel_apply(ch, now), "channel_apply");
    must(ledger_commit(ledger), "commit");
    channel_destroy(&ch);

    must(ledger_channel_get(ledger, PEER_NAME, &fixture), "ledger_channel_get");
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    must(ledger_channel_proof(ledger, PEER_NAME, &proof, &proof_len), "ledger_channel_proof");
    if (fixture.sent_seq != OUR_SETTLEMENTS + PEER_SETTLEMENTS ||
        fixture.acked_seq + 2 != fixture.sent_seq || fixture.applied_seq != PEER_SETTLEMENTS ||
        fixture.diverged || proof == NULL) {
        fail("the fixture is not as designed");
    }
    free(proof);
}

/* ---- checks ----------------------------------------------------------------------------- */

static void check_turn(channel_t *ch)
{
    channel_stats_t st = channel_stats(ch);
    assert(st.sent_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(st.acked_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(st.applied_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(st.acked_seq <= st.sent_seq);
    assert(st.sent_seq >= in.sent_floor);       /* a sequence number is never used twice */
    assert(st.applied_seq >= in.applied_floor); /* what was applied stays (but for a re-base) */
    in.sent_floor = st.sent_seq;
    in.applied_floor = st.applied_seq;
    uint32_t v = channel_wire_version(ch);
    assert(v >= INNER_VERSION_MIN && v <= INNER_VERSION_MAX);
    assert(v == INNER_VERSION_MIN || in.v2_offered);
    assert(v >= in.version_floor); /* no downgrade */
    in.version_floor = v;
    ledger_channel_t saved;
    must(ledger_channel_get(ledger, PEER_NAME, &saved), "ledger_channel_get");
    assert(saved.sent_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(saved.applied_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(saved.acked_seq <= saved.sent_seq);
    assert(saved.diverged == channel_is_diverged(ch));
    assert(saved.wire_version == v);
    assert(!ledger_stopped(ledger));
}

/* Whether a Hello body offers version 2 among the entries the channel reads. */
static bool offers_v2(const uint8_t *body, size_t len)
{
    Corridor__Hello *h = (Corridor__Hello *)wire_unpack(&corridor__hello__descriptor, len, body);
    bool v2 = false;
    for (size_t i = 0; h != NULL && i < h->n_versions; i++) {
        v2 = v2 || h->versions[i] == INNER_VERSION_MIN + 1;
    }
    corridor__hello__free_unpacked(h, NULL);
    return v2;
}

/* The sequence of the peer's message kept as our proof of what we applied; 0 without one. */
static uint64_t own_proof_seq(void)
{
    uint8_t *own = NULL;
    size_t own_len = 0;
    must(ledger_channel_proof(ledger, PEER_NAME, &own, &own_len), "ledger_channel_proof");
    uint64_t seq = 0;
    envelope_message_t m;
    if (own_len > 0 && peer_verify(own, own_len, &m) == ENV_OK) {
        seq = m.sequence;
        envelope_message_clear(&m);
    }
    free(own);
    return seq;
}

/* ---- the turns ------------------------------------------------------------------------------ */

/* Answers a request as the responder; false when the turn fails (the daemon rolls back). */
static bool answer(channel_t *ch, const uint8_t *data, size_t size)
{
    Corridor__StatementRequest *req = (Corridor__StatementRequest *)wire_unpack(
        &corridor__statement_request__descriptor, size, data);
    if (req == NULL) {
        return true;
    }
    uint64_t proof_seq = 0;
    bool genuine = false, signed_here = false, malformed = false;
    size_t proof_len = 0;
    if (req->repair != NULL) {
        signed_here = fuzz_sign_proof(self_id, peer_id, third_id, &req->repair->applied_proof,
                                      &proof_seq, &genuine);
        proof_len = req->repair->applied_proof.len;
        malformed = req->repair->sender_sent > CORRIDOR_SEQUENCE_MAX ||
                    req->repair->sender_applied > CORRIDOR_SEQUENCE_MAX;
    }
    ledger_channel_t before;
    must(ledger_channel_get(ledger, PEER_NAME, &before), "ledger_channel_get");
    /* what a re-base may do (recon.c, rebase): our stream continues above what we sent and
     * what the proof shows; in full (our side DIVERGED too) acked becomes what it shows and we
     * keep as applied of the peer's stream only what our own kept proof shows, else the proof
     * only moves acked forward; a re-base that changes nothing writes nothing */
    bool full = channel_is_diverged(ch);
    uint64_t own = own_proof_seq();
    bool accepted = req->repair != NULL && req->repair->rebase && !malformed &&
                    (proof_len == 0 || (signed_here && genuine));
    uint64_t proven = proof_len == 0 ? 0 : proof_seq;
    uint64_t want_sent = before.sent_seq > proven ? before.sent_seq : proven;
    uint64_t want_acked = full || proven > before.acked_seq ? proven : before.acked_seq;
    uint64_t want_applied = full && own < before.applied_seq ? own : before.applied_seq;
    bool changes = want_sent != before.sent_seq || want_acked != before.acked_seq ||
                   want_applied != before.applied_seq || before.diverged;
    recon_ctx_t ctx = {.self = self_id, .peer = &config->peers[0], .ledger = ledger, .channel = ch};
    uint8_t *body = NULL;
    size_t len = 0;
    bool rebased = false;
    uint64_t work = 0;
    ledger_err_t rc = recon_answer(&ctx, req, &body, &len, &rebased, &work);
    assert((rc == LEDGER_OK) == (body != NULL));
    if (rc == LEDGER_OK) {
        Corridor__Statement *st =
            (Corridor__Statement *)wire_unpack(&corridor__statement__descriptor, len, body);
        assert(st != NULL);
        assert(strcmp(st->request_id, req->request_id != NULL ? req->request_id : "") == 0);
        if (st->applied_proof.len > 0) { /* ours: the peer's message of what we applied */
            envelope_message_t m;
            assert(peer_verify(st->applied_proof.data, st->applied_proof.len, &m) == ENV_OK);
            assert(m.sequence == st->applied_sequence);
            assert(memcmp(m.recipient_key_id, self_id->key_id, IDENTITY_KEY_ID_BYTES) == 0);
            envelope_message_clear(&m);
        }
        corridor__statement__free_unpacked(st, NULL);
    }
    free(body);
    assert(rc != LEDGER_OK || rebased == (accepted && changes));
    if (rebased) {
        /* only a proof moves our counters, exactly as far as it shows */
        channel_reload(ch); /* the daemon does it after the commit */
        channel_stats_t st = channel_stats(ch);
        assert(st.sent_seq >= want_sent); /* imports may queue answers above it */
        assert(st.acked_seq == want_acked);
        assert(st.applied_seq == want_applied);
        assert(!channel_is_diverged(ch));
        in.applied_floor = st.applied_seq; /* the one way applied may go back (re-applied) */
    }
    corridor__statement_request__free_unpacked(req, NULL);
    return rc == LEDGER_OK;
}

static bool send_one(channel_t *ch, const uint8_t *data, size_t size)
{
    settlement_t s;
    settlement_of(SEND_FIRST + in.sends++, DIRECTION_OUT, size > 0 && (data[0] & 1) ? "USD" : "RUB",
                  &s);
    ledger_outcome_t out;
    ledger_err_t rc = channel_send_settlement(ch, &s, &out);
    return rc != LEDGER_E_STORAGE && rc != LEDGER_E_STOPPED;
}

/* The operator asks one of our settlements back, as `corridor cancel` does (daemon.c): only once
 * the peer offered cancellations. The request the channel accepts is open under the id given. */
static bool cancel_one(channel_t *ch, const uint8_t *data, size_t size)
{
    static const char *const reasons[] = {"CUST", "DUPL", "FRAD", "TECH", "UPAY", "AM09", "AC03"};
    if (size < 2 || !channel_peer_offers(ch, CHANNEL_FEATURE_HOLDS)) {
        return true;
    }
    unsigned which = data[0] % (OUR_SETTLEMENTS + in.sends);
    char uetr[CORRIDOR_UETR_LEN + 1], id[CORRIDOR_UETR_LEN + 1] = "";
    uetr_of(which < OUR_SETTLEMENTS ? which : SEND_FIRST + which - OUR_SETTLEMENTS, uetr);
    const char *reason = reasons[data[1] % (sizeof reasons / sizeof reasons[0])];
    assert(channel_cancel_reason_valid(reason));
    ledger_outcome_t out;
    ledger_err_t rc = channel_cancel(ch, uetr, reason, id, &out);
    if (rc == LEDGER_OK) {
        assert(uetr_check(id) == VALID_OK && strcmp(out.cancel_id, id) == 0);
        assert(out.status == STATUS_PENDING);
        snprintf(in.cancel_id, sizeof in.cancel_id, "%s", id);
    }
    return rc == LEDGER_OK || rc == LEDGER_E_STATE || rc == LEDGER_E_NOT_FOUND;
}

/* A review (or the screening program's verdict) decides one of the peer's payments we hold. */
static bool decide_one(channel_t *ch, const uint8_t *data, size_t size)
{
    static const char *const reasons[] = {"RR04", "AM04", "AC01"};
    if (size < 2) {
        return true;
    }
    char uetr[CORRIDOR_UETR_LEN + 1];
    uetr_of(PEER_FIRST + data[0] % 32u, uetr);
    const char *reason =
        data[1] == 0 ? NULL : reasons[data[1] % (sizeof reasons / sizeof reasons[0])];
    ledger_outcome_t out;
    ledger_err_t rc = channel_decide_held(ch, uetr, reason, &out);
    if (rc == LEDGER_OK) {
        assert(out.status == (reason == NULL ? STATUS_SETTLED : STATUS_REJECTED));
        assert(out.hold[0] == '\0');
    }
    return rc == LEDGER_OK || rc == LEDGER_E_STATE || rc == LEDGER_E_NOT_FOUND;
}

/* A CancelAnswer whose id is CANCEL_ID_TEMPLATE answers our latest CancelRequest: the body again
 * with that request's id (malloc'd, *out_len set); NULL to deliver the bytes as they are. */
static uint8_t *answer_latest_cancel(const uint8_t *body, size_t len, size_t *out_len)
{
    if (in.cancel_id[0] == '\0') {
        return NULL;
    }
    Corridor__CancelAnswer *ans =
        (Corridor__CancelAnswer *)wire_unpack(&corridor__cancel_answer__descriptor, len, body);
    uint8_t *out = NULL;
    if (ans != NULL && strcmp(ans->cancellation_id, CANCEL_ID_TEMPLATE) == 0) {
        char *given = ans->cancellation_id;
        ans->cancellation_id = in.cancel_id;
        *out_len = corridor__cancel_answer__get_packed_size(ans);
        out = xmalloc(*out_len);
        corridor__cancel_answer__pack(ans, out);
        ans->cancellation_id = given;
    }
    corridor__cancel_answer__free_unpacked(ans, NULL);
    return out;
}

/* One record: false ends the input (a turn the daemon would roll back). */
static bool turn(unsigned op, const uint8_t *p, size_t n, int64_t *now)
{
    channel_t *ch = in.ch;
    *now += ROUND_MS;
    if (op % OP_COUNT == OP_TICK && n >= 2) { /* the turn runs once the time has passed */
        *now += TICK_UNIT_MS * (int64_t)(p[0] | (unsigned)p[1] << 8);
    }
    int64_t wall = WALL_START_MS + (*now - START_MS); /* as engine_begin sets it */
    ledger_set_clock(ledger, wall);
    channel_set_wall(ch, wall);
    bool ok = true;
    switch (op % OP_COUNT) {
    case OP_HELLO:
        in.v2_offered = in.v2_offered || offers_v2(p, n);
        deliver_control(ch, MSG_HELLO, p, n, *now);
        break;
    case OP_ACK:
        deliver_control(ch, MSG_ACK, p, n, *now);
        break;
    case OP_MESSAGE:
        if (n >= 10) {
            msg_type_t type = message_types[p[0] % MESSAGE_TYPES_COUNT];
            uint32_t version = (p[1] & 1) ? INNER_VERSION_MIN + 1 : INNER_VERSION_MIN;
            const identity_t *author = (p[1] & 2) ? peer_next : peer_id;
            size_t body_len = n - 10;
            uint8_t *answer =
                type == MSG_CANCEL_ANSWER ? answer_latest_cancel(p + 10, n - 10, &body_len) : NULL;
            (void)deliver_signed(ch, author, type, version, le64(p + 2),
                                 answer != NULL ? answer : p + 10, body_len, *now);
            free(answer);
        }
        break;
    case OP_TICK: /* the clock moved on above */
        break;
    case OP_SEND:
        ok = send_one(ch, p, n);
        break;
    case OP_CANCEL:
        ok = cancel_one(ch, p, n);
        break;
    case OP_DECIDE:
        ok = decide_one(ch, p, n);
        break;
    default: /* OP_REQUEST: answered after channel_apply, as in the daemon */
        break;
    }
    if (ok) {
        ok = channel_apply(ch, *now) == LEDGER_OK;
    }
    if (ok) { /* engine_transaction: held payments whose expiry passed are declined AB05 */
        ok = channel_expire_held(ch) == LEDGER_OK;
    }
    if (ok && op % OP_COUNT == OP_REQUEST) {
        ok = answer(ch, p, n);
    }
    assert(!ledger_stopped(ledger)); /* no input may stop the books */
    if (!ok) {
        return false;
    }
    channel_after_commit(ch, *now);
    keys[0].applied_through = channel_applied_seq(ch);
    check_turn(ch);
    return true;
}

/* ---- the seed corpus ----------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len;
} buf_t;

static void buf_add(buf_t *b, const void *data, size_t len)
{
    uint8_t *p = realloc(b->data, b->len + len + 1);
    if (p == NULL) {
        fail("out of memory");
    }
    b->data = p;
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
}

static void seed_op(buf_t *b, unsigned op, const uint8_t *payload, size_t len)
{
    if (len > 0xffff) {
        fail("a seed record is too long");
    }
    uint8_t hdr[3] = {(uint8_t)op, (uint8_t)len, (uint8_t)(len >> 8)};
    buf_add(b, hdr, sizeof hdr);
    buf_add(b, payload, len);
}

static void seed_hello(buf_t *b, uint64_t sent, uint64_t applied, uint64_t acked, uint64_t counter,
                       const uint32_t *versions, size_t n_versions, bool reply_wanted)
{
    Corridor__Hello h = CORRIDOR__HELLO__INIT;
    h.sent_sequence = sent;
    h.applied_sequence = applied;
    h.acked_sequence = acked;
    h.reply_wanted = reply_wanted;
    h.incarnation = 5;
    h.counter = counter;
    h.n_versions = n_versions;
    h.versions = (uint32_t *)versions;
    size_t len = corridor__hello__get_packed_size(&h);
    uint8_t *body = xmalloc(len);
    corridor__hello__pack(&h, body);
    seed_op(b, OP_HELLO, body, len);
    free(body);
}

/* A Hello of a peer offering `features` (CHANNEL_FEATURE_ECHO among them): it took our control
 * message numbered `echo_counter` (0: none yet) before writing this one. Our channel's
 * incarnation is 1. */
static void seed_hello_offering(buf_t *b, uint64_t sent, uint64_t applied, uint64_t acked,
                                uint64_t counter, uint64_t echo_counter, uint64_t features)
{
    static const uint32_t both[] = {1, 2};
    Corridor__Hello h = CORRIDOR__HELLO__INIT;
    h.sent_sequence = sent;
    h.applied_sequence = applied;
    h.acked_sequence = acked;
    h.incarnation = 5;
    h.counter = counter;
    h.n_versions = 2;
    h.versions = (uint32_t *)both;
    h.features = features;
    h.echo_incarnation = echo_counter != 0 ? 1 : 0;
    h.echo_counter = echo_counter;
    uint8_t body[128];
    assert(corridor__hello__get_packed_size(&h) <= sizeof body);
    size_t len = corridor__hello__pack(&h, body);
    seed_op(b, OP_HELLO, body, len);
}

/* A Hello of a peer that echoes (CHANNEL_FEATURE_ECHO) and offers nothing else. */
static void seed_hello_echo(buf_t *b, uint64_t sent, uint64_t applied, uint64_t acked,
                            uint64_t counter, uint64_t echo_counter)
{
    seed_hello_offering(b, sent, applied, acked, counter, echo_counter, CHANNEL_FEATURE_ECHO);
}

static void seed_ack(buf_t *b, uint64_t sequence, uint64_t counter)
{
    Corridor__Ack a = CORRIDOR__ACK__INIT;
    a.sequence = sequence;
    a.incarnation = 5;
    a.counter = counter;
    uint8_t body[64];
    size_t len = corridor__ack__pack(&a, body);
    seed_op(b, OP_ACK, body, len);
}

/* A MESSAGE record; `next`: signed by the peer's next key (peer_next). */
static void seed_message_by(buf_t *b, msg_type_t type, bool v2, bool next, uint64_t seq,
                            const uint8_t *body, size_t len)
{
    uint8_t *p = xmalloc(10 + len);
    size_t k = 0;
    while (k < MESSAGE_TYPES_COUNT && message_types[k] != type) {
        k++;
    }
    assert(k < MESSAGE_TYPES_COUNT);
    p[0] = (uint8_t)k;
    p[1] = (uint8_t)((v2 ? 1 : 0) | (next ? 2 : 0));
    for (size_t i = 0; i < 8; i++) {
        p[2 + i] = (uint8_t)(seq >> (8 * i));
    }
    if (len > 0) {
        memcpy(p + 10, body, len);
    }
    seed_op(b, OP_MESSAGE, p, 10 + len);
    free(p);
}

static void seed_message(buf_t *b, msg_type_t type, bool v2, uint64_t seq, const uint8_t *body,
                         size_t len)
{
    seed_message_by(b, type, v2, false, seq, body, len);
}

/* A KeySwitch record signed by the peer's next key; a body key_switch_encode would refuse
 * (overlap past the limit) is packed directly. */
static void seed_key_switch(buf_t *b, uint64_t seq, const char *curve_public, uint32_t overlap_s)
{
    Corridor__KeySwitch ks = CORRIDOR__KEY_SWITCH__INIT;
    ks.curve_public = (char *)curve_public;
    ks.overlap_s = overlap_s;
    uint8_t body[128];
    if (corridor__key_switch__get_packed_size(&ks) > sizeof body) {
        fail("a KeySwitch seed is too long");
    }
    size_t len = corridor__key_switch__pack(&ks, body);
    seed_message_by(b, MSG_KEY_SWITCH, true, true, seq, body, len);
}

static void seed_settlement(buf_t *b, unsigned i, uint64_t seq)
{
    settlement_t s;
    settlement_of(i, DIRECTION_IN, "RUB", &s);
    uint8_t *body = NULL;
    size_t len = 0;
    if (settlement_encode(&s, &body, &len) != 0) {
        fail("cannot encode");
    }
    seed_message(b, MSG_SETTLEMENT, false, seq, body, len);
    free(body);
}

/* A re-base request: rebase set, the counters given, a proof template of `proof_seq` (to the
 * peer when proof_to is 0) or none when proof_seq is 0. */
static void seed_rebase(buf_t *b, const char *id, uint64_t sender_sent, uint64_t sender_applied,
                        uint64_t proof_seq, unsigned proof_to)
{
    Corridor__Repair repair = CORRIDOR__REPAIR__INIT;
    repair.rebase = true;
    repair.sender_sent = sender_sent;
    repair.sender_applied = sender_applied;
    uint8_t proof[FUZZ_PROOF_HEADER];
    if (proof_seq != 0) {
        fuzz_proof_template(proof, MSG_SETTLEMENT, proof_to, proof_seq);
        repair.applied_proof = (ProtobufCBinaryData){sizeof proof, proof};
    }
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;
    req.request_id = (char *)id;
    req.repair = &repair;
    size_t len = corridor__statement_request__get_packed_size(&req);
    uint8_t *body = xmalloc(len);
    corridor__statement_request__pack(&req, body);
    seed_op(b, OP_REQUEST, body, len);
    free(body);
}

/* The body of the peer's payment i (amount_minor: its own when 0) that expires at
 * expires_unix_ms (0: never), malloc'd; its body hash (H2) in `hash` when not NULL. */
static uint8_t *payment_body(unsigned i, int64_t amount_minor, int64_t expires_unix_ms, size_t *len,
                             uint8_t hash[SETTLEMENT_HASH_BYTES])
{
    settlement_t s;
    settlement_of(i, DIRECTION_IN, "RUB", &s);
    s.amount_minor = amount_minor != 0 ? amount_minor : s.amount_minor;
    s.expires_unix_ms = expires_unix_ms;
    uint8_t *body = NULL;
    if (settlement_encode(&s, &body, len) != 0) {
        fail("cannot encode");
    }
    if (hash != NULL) {
        settlement_body_hash(body, *len, hash);
    }
    return body;
}

/* A Settlement record of the peer's payment i, in version 2 (see payment_body). */
static void seed_payment(buf_t *b, unsigned i, int64_t amount_minor, int64_t expires_unix_ms,
                         uint64_t seq)
{
    size_t len = 0;
    uint8_t *body = payment_body(i, amount_minor, expires_unix_ms, &len, NULL);
    seed_message(b, MSG_SETTLEMENT, true, seq, body, len);
    free(body);
}

/* The body hash (H2) of the peer's payment i (see payment_body). */
static void payment_hash(unsigned i, int64_t amount_minor, int64_t expires_unix_ms,
                         uint8_t hash[SETTLEMENT_HASH_BYTES])
{
    size_t len = 0;
    free(payment_body(i, amount_minor, expires_unix_ms, &len, hash));
}

/* The body hash (H2) of our settlement i as the ledger keeps it (as fixture and SEND queue it). */
static void our_hash(unsigned i, const char *currency, uint8_t hash[SETTLEMENT_HASH_BYTES])
{
    settlement_t s;
    settlement_of(i, DIRECTION_OUT, currency, &s);
    uint8_t *body = NULL;
    size_t len = 0;
    if (settlement_encode(&s, &body, &len) != 0) {
        fail("cannot encode");
    }
    settlement_body_hash(body, len, hash);
    free(body);
}

/* A StatusReport record of the peer's about our settlement `uetr`: version 2 naming `hash`, or
 * version 1 naming nothing when hash is NULL. */
static void seed_status(buf_t *b, uint64_t seq, const char *uetr, const char *status,
                        const char *reason, const char *currency, const uint8_t *hash)
{
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = (char *)uetr;
    sr.status = (char *)status;
    sr.reason = (char *)reason;
    sr.currency = (char *)currency;
    if (hash != NULL) {
        sr.settlement_hash = (ProtobufCBinaryData){SETTLEMENT_HASH_BYTES, (uint8_t *)hash};
    }
    uint8_t body[256];
    assert(corridor__status_report__get_packed_size(&sr) <= sizeof body);
    seed_message(b, MSG_STATUS_REPORT, hash != NULL, seq, body,
                 corridor__status_report__pack(&sr, body));
}

/* A CancelRequest record of the peer's (PROTOCOL.md 3.8.4), version 2. */
static void seed_cancel_request(buf_t *b, uint64_t seq, const char *id, const char *uetr,
                                const char *reason, const uint8_t hash[SETTLEMENT_HASH_BYTES])
{
    Corridor__CancelRequest req = CORRIDOR__CANCEL_REQUEST__INIT;
    req.cancellation_id = (char *)id;
    req.uetr = (char *)uetr;
    req.reason = (char *)reason;
    req.settlement_hash = (ProtobufCBinaryData){SETTLEMENT_HASH_BYTES, (uint8_t *)hash};
    uint8_t body[256];
    assert(corridor__cancel_request__get_packed_size(&req) <= sizeof body);
    seed_message(b, MSG_CANCEL_REQUEST, true, seq, body,
                 corridor__cancel_request__pack(&req, body));
}

/* A CancelAnswer record of the peer's (PROTOCOL.md 3.8.4), version 2; id CANCEL_ID_TEMPLATE
 * answers our latest CancelRequest. */
static void seed_cancel_answer(buf_t *b, uint64_t seq, const char *id, const char *uetr,
                               const char *confirmation, const char *reason, const char *status,
                               const char *status_reason, const uint8_t hash[SETTLEMENT_HASH_BYTES])
{
    Corridor__CancelAnswer ans = CORRIDOR__CANCEL_ANSWER__INIT;
    ans.cancellation_id = (char *)id;
    ans.uetr = (char *)uetr;
    ans.confirmation = (char *)confirmation;
    ans.reason = (char *)reason;
    ans.status = (char *)status;
    ans.status_reason = (char *)status_reason;
    ans.settlement_hash = (ProtobufCBinaryData){SETTLEMENT_HASH_BYTES, (uint8_t *)hash};
    uint8_t body[256];
    assert(corridor__cancel_answer__get_packed_size(&ans) <= sizeof body);
    seed_message(b, MSG_CANCEL_ANSWER, true, seq, body, corridor__cancel_answer__pack(&ans, body));
}

/* A CANCEL record: our settlement `which` (0..5 the fixture's), reason index `reason` (0 CUST). */
static void seed_cancel(buf_t *b, unsigned which, unsigned reason)
{
    uint8_t p[2] = {(uint8_t)which, (uint8_t)reason};
    seed_op(b, OP_CANCEL, p, sizeof p);
}

/* A DECIDE record: the peer's payment PEER_FIRST + offset accepted (verdict 0) or rejected. */
static void seed_decide(buf_t *b, unsigned offset, unsigned verdict)
{
    uint8_t p[2] = {(uint8_t)offset, (uint8_t)verdict};
    seed_op(b, OP_DECIDE, p, sizeof p);
}

static void seed_tick(buf_t *b, int64_t ms)
{
    uint64_t units = (uint64_t)ms / TICK_UNIT_MS;
    uint8_t p[2] = {(uint8_t)units, (uint8_t)(units >> 8)};
    seed_op(b, OP_TICK, p, 2);
}

static unsigned seeds_written;

static void write_seed(const char *dir, const char *name, unsigned flags, buf_t *b)
{
    if (seeds_written >= SEED_FILES_MAX) {
        fail("too many seed files");
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint8_t first = (uint8_t)flags;
    if (f == NULL || fwrite(&first, 1, 1, f) != 1 ||
        (b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len) || fclose(f) != 0) {
        fail("cannot write a seed");
    }
    seeds_written++;
    printf("  %-40s %zu bytes\n", name, b->len + 1);
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* The seeds of holds, expiry and cancellation (PROTOCOL.md 3.8). */
static void write_hold_seeds(const char *dir)
{
    const uint64_t acked = fixture.acked_seq, applied = fixture.applied_seq;
    buf_t b = {0};
    char uetr[CORRIDOR_UETR_LEN + 1], other[CORRIDOR_UETR_LEN + 1];
    uint8_t hash[SETTLEMENT_HASH_BYTES], hash_usd[SETTLEMENT_HASH_BYTES];
    uint8_t hash_a[SETTLEMENT_HASH_BYTES], hash_b[SETTLEMENT_HASH_BYTES];

    /* the payer's side of a hold: the peer holds our USD payment (PDNG naming its body), again,
     * then PDNGs naming another body, in version 1 (naming none), in version 2 without a hash;
     * then settles it, and sends a PDNG for it once it is final */
    uetr_of(OUR_SETTLEMENTS - 1, uetr);
    our_hash(OUR_SETTLEMENTS - 1, "USD", hash_usd);
    seed_status(&b, applied + 1, uetr, "PDNG", "", "USD", hash_usd);
    seed_status(&b, applied + 2, uetr, "PDNG", "", "USD", hash_usd);
    uetr_of(0, other);
    seed_status(&b, applied + 3, other, "PDNG", "", "RUB", hash_usd);
    uetr_of(1, other);
    seed_status(&b, applied + 4, other, "PDNG", "", "RUB", NULL);
    Corridor__StatusReport bare = CORRIDOR__STATUS_REPORT__INIT;
    uetr_of(2, other);
    bare.uetr = other;
    bare.status = "PDNG";
    uint8_t body[256];
    seed_message(&b, MSG_STATUS_REPORT, true, applied + 5, body,
                 corridor__status_report__pack(&bare, body));
    seed_status(&b, applied + 6, uetr, "ACSC", "", "USD", hash_usd);
    seed_status(&b, applied + 7, uetr, "PDNG", "", "USD", hash_usd);
    write_seed(dir, "hold-pdng", 0, &b);

    /* the payer cancels (the peer offered cancellations first): RUB 0, answered CNCL (voided);
     * RUB 0 again (final now: nothing sent); RUB 1, answered RJCR AGNT (the peer says it is
     * settled); then an answer to a request we never made; RUB 2, answered with another
     * payment's body, then with a confirmation that is neither; a StatusReport settling RUB 0,
     * which was voided */
    seed_hello_offering(&b, applied, acked, applied, 1, 0, CHANNEL_FEATURES);
    uetr_of(0, uetr);
    our_hash(0, "RUB", hash_a);
    seed_cancel(&b, 0, 0);
    seed_cancel_answer(&b, applied + 1, CANCEL_ID_TEMPLATE, uetr, "CNCL", "CUST", "RJCT", "CUST",
                       hash_a);
    seed_cancel(&b, 0, 2);
    uetr_of(1, other);
    our_hash(1, "RUB", hash_b);
    seed_cancel(&b, 1, 2);
    seed_cancel_answer(&b, applied + 2, CANCEL_ID_TEMPLATE, other, "RJCR", "AGNT", "ACSC", "",
                       hash_b);
    seed_cancel_answer(&b, applied + 3, "7c9e6679-7425-40de-944b-e07fc1f90ae7", other, "CNCL",
                       "FRAD", "RJCT", "FRAD", hash_b);
    uetr_of(2, other);
    seed_cancel(&b, 2, 3);
    seed_cancel_answer(&b, applied + 4, CANCEL_ID_TEMPLATE, other, "CNCL", "TECH", "RJCT", "TECH",
                       hash_a);
    seed_cancel_answer(&b, applied + 5, CANCEL_ID_TEMPLATE, other, "MAYB", "TECH", "RJCT", "TECH",
                       hash_a);
    seed_status(&b, applied + 6, uetr, "ACSC", "", "RUB", hash_a);
    write_seed(dir, "cancel-answer", 0, &b);

    /* the payee's side (screening on): a payment held (PDNG) and one on the list (RR04); the
     * payer asks the held one back (CNCL), again (RJCR AGNT, now rejected), then a settled and
     * a refused one (AGNT), one we never got, one naming another body (NOOR), one with a reason
     * not of the list, and one for a payment of ours (NOOR) */
    seed_payment(&b, PEER_FIRST + 3, 0, 0, applied + 1);
    payment_hash(PEER_FIRST + 3, 0, 0, hash);
    payment_hash(PEER_FIRST + 4, 2000, 0, hash_b);
    seed_payment(&b, PEER_FIRST + 4, 2000, 0, applied + 2);
    uetr_of(PEER_FIRST + 3, uetr);
    seed_cancel_request(&b, applied + 3, "11111111-1111-4111-8111-111111111111", uetr, "CUST",
                        hash);
    seed_cancel_request(&b, applied + 4, "22222222-2222-4222-9222-222222222222", uetr, "DUPL",
                        hash);
    uetr_of(PEER_FIRST, other);
    payment_hash(PEER_FIRST, 0, 0, hash_a);
    seed_cancel_request(&b, applied + 5, "33333333-3333-4333-a333-333333333333", other, "FRAD",
                        hash_a);
    uetr_of(PEER_FIRST + 4, other);
    seed_cancel_request(&b, applied + 6, "44444444-4444-4444-b444-444444444444", other, "TECH",
                        hash_b);
    uetr_of(PEER_FIRST + 20, other);
    seed_cancel_request(&b, applied + 7, "55555555-5555-4555-8555-555555555555", other, "UPAY",
                        hash_b);
    seed_cancel_request(&b, applied + 8, "66666666-6666-4666-8666-666666666666", uetr, "AM09",
                        hash_b);
    seed_cancel_request(&b, applied + 9, "77777777-7777-4777-8777-777777777777", uetr, "RR04",
                        hash);
    uetr_of(0, other);
    our_hash(0, "RUB", hash_a);
    seed_cancel_request(&b, applied + 10, "88888888-8888-4888-8888-888888888888", other, "AC03",
                        hash_a);
    write_seed(dir, "cancel-request", SCREEN, &b);

    /* expiry (screening on): a payment expired on arrival (AB05), one a second away and one
     * without expiry (both held), one expiring at -1 ms (AB05); the clock passes the second
     * (the first held one is declined AB05); the payer asks that one back (RJCR AGNT); a review
     * accepts the other */
    seed_payment(&b, PEER_FIRST + 5, 0, WALL_START_MS, applied + 1);
    seed_payment(&b, PEER_FIRST + 6, 0, WALL_START_MS + 1000, applied + 2);
    seed_payment(&b, PEER_FIRST + 7, 0, 0, applied + 3);
    seed_payment(&b, PEER_FIRST + 8, 0, -1, applied + 4);
    seed_tick(&b, 1200);
    payment_hash(PEER_FIRST + 6, 0, WALL_START_MS + 1000, hash);
    uetr_of(PEER_FIRST + 6, uetr);
    seed_cancel_request(&b, applied + 5, "99999999-9999-4999-9999-999999999999", uetr, "CUST",
                        hash);
    seed_decide(&b, 7, 0);
    write_seed(dir, "hold-expiry", SCREEN | START_V2, &b);

    /* decisions (screening on): three held; accept one, reject it again (decided: nothing),
     * reject the second, decide one never received and a settled one (nothing); the payer
     * cancels the third (CNCL), a review accepts it after (nothing); the payer asks the
     * accepted one back (RJCR AGNT) */
    seed_payment(&b, PEER_FIRST + 3, 0, 0, applied + 1);
    seed_payment(&b, PEER_FIRST + 4, 0, 0, applied + 2);
    seed_payment(&b, PEER_FIRST + 5, 0, WALL_START_MS + 60000, applied + 3);
    seed_decide(&b, 3, 0);
    seed_decide(&b, 3, 1);
    seed_decide(&b, 4, 2);
    seed_decide(&b, 20, 0);
    seed_decide(&b, 0, 0);
    payment_hash(PEER_FIRST + 5, 0, WALL_START_MS + 60000, hash);
    uetr_of(PEER_FIRST + 5, uetr);
    seed_cancel_request(&b, applied + 4, "aaaaaaaa-aaaa-4aaa-aaaa-aaaaaaaaaaaa", uetr, "FRAD",
                        hash);
    seed_decide(&b, 5, 0);
    payment_hash(PEER_FIRST + 3, 0, 0, hash);
    uetr_of(PEER_FIRST + 3, uetr);
    seed_cancel_request(&b, applied + 5, "bbbbbbbb-bbbb-4bbb-bbbb-bbbbbbbbbbbb", uetr, "CUST",
                        hash);
    write_seed(dir, "hold-decide", SCREEN, &b);
}

/* A Return record of the peer's (PROTOCOL.md 3.9), version 2: `hash_len` bytes of `hash` as
 * its settlement_hash (field 6). */
static void seed_return(buf_t *b, uint64_t seq, const char *id, const char *original,
                        int64_t amount_minor, const char *currency, const char *reason,
                        const uint8_t *hash, size_t hash_len)
{
    Corridor__Return ret = CORRIDOR__RETURN__INIT;
    ret.return_id = (char *)id;
    ret.original_uetr = (char *)original;
    ret.amount_minor = amount_minor;
    ret.currency = (char *)currency;
    ret.reason = (char *)reason;
    ret.settlement_hash = (ProtobufCBinaryData){hash_len, (uint8_t *)hash};
    uint8_t body[256];
    assert(corridor__return__get_packed_size(&ret) <= sizeof body);
    seed_message(b, MSG_RETURN, true, seq, body, corridor__return__pack(&ret, body));
}

/* The seeds of two-phase returns (PROTOCOL.md 3.9), the node the original payer: the peer
 * settles our USD payment, then returns part of it (accepted), sends that Return again (answered
 * as before), returns more than is left (AM09), names another body, our pending RUB payment and
 * its own payment to us (NOOR), reuses our payment's UETR as a return id (DUPL), sends one whose
 * binding is not 32 bytes (FF01) and one with no return id (dropped), then returns the rest. */
static void write_return_seeds(const char *dir)
{
    const uint64_t applied = fixture.applied_seq;
    buf_t b = {0};
    char usd[CORRIDOR_UETR_LEN + 1], rub[CORRIDOR_UETR_LEN + 1], theirs[CORRIDOR_UETR_LEN + 1];
    char id[8][CORRIDOR_UETR_LEN + 1];
    uint8_t hash_usd[SETTLEMENT_HASH_BYTES], hash_rub[SETTLEMENT_HASH_BYTES];
    uint8_t hash_theirs[SETTLEMENT_HASH_BYTES];
    uetr_of(OUR_SETTLEMENTS - 1, usd);
    uetr_of(0, rub);
    uetr_of(PEER_FIRST, theirs);
    for (unsigned i = 0; i < 8; i++) {
        uetr_of(2000 + i, id[i]);
    }
    our_hash(OUR_SETTLEMENTS - 1, "USD", hash_usd);
    our_hash(0, "RUB", hash_rub);
    payment_hash(PEER_FIRST, 0, 0, hash_theirs);
    const int64_t amount = 1000 + 7 * (OUR_SETTLEMENTS - 1); /* settlement_of's */

    seed_hello_offering(&b, applied, fixture.acked_seq, applied, 1, 0,
                        CHANNEL_FEATURE_ECHO | CHANNEL_FEATURE_HOLDS | CHANNEL_FEATURE_RETURNS);
    seed_status(&b, applied + 1, usd, "ACSC", "", "USD", hash_usd);
    seed_return(&b, applied + 2, id[0], usd, 500, "USD", "AC04", hash_usd, sizeof hash_usd);
    seed_return(&b, applied + 3, id[0], usd, 500, "USD", "AC04", hash_usd, sizeof hash_usd);
    seed_return(&b, applied + 4, id[1], usd, amount - 499, "USD", "MD06", hash_usd,
                sizeof hash_usd);
    seed_return(&b, applied + 5, id[2], usd, 10, "USD", "AC04", hash_rub, sizeof hash_rub);
    seed_return(&b, applied + 6, id[3], rub, 10, "RUB", "AC04", hash_rub, sizeof hash_rub);
    seed_return(&b, applied + 7, id[4], theirs, 10, "RUB", "AC04", hash_theirs, sizeof hash_theirs);
    seed_return(&b, applied + 8, rub, usd, 10, "USD", "AC04", hash_usd, sizeof hash_usd);
    seed_return(&b, applied + 9, id[5], usd, 10, "USD", "AC04", hash_usd, 5);
    seed_return(&b, applied + 10, "", usd, 10, "USD", "AC04", hash_usd, sizeof hash_usd);
    seed_return(&b, applied + 11, id[6], usd, amount - 500, "USD", "CUST", hash_usd,
                sizeof hash_usd);
    seed_tick(&b, 100);
    write_seed(dir, "return-partial-and-refused", START_V2, &b);
}

/* An FxProposal record of the peer's (PROTOCOL.md 3.10), version 2: the peer pays `pay_minor` of
 * pay_ccy and receives `recv_minor` of recv_ccy; a NULL leg uetr leaves that leg out; rate NULL:
 * the one the legs imply. */
static void seed_fx(buf_t *b, uint64_t seq, const char *fx_id, const char *pay_uetr,
                    int64_t pay_minor, const char *pay_ccy, const char *recv_uetr,
                    int64_t recv_minor, const char *recv_ccy, const char *rate, int64_t expires)
{
    Corridor__FxLeg pay = CORRIDOR__FX_LEG__INIT, receive = CORRIDOR__FX_LEG__INIT;
    pay.uetr = (char *)pay_uetr;
    pay.amount_minor = pay_minor;
    pay.currency = (char *)pay_ccy;
    receive.uetr = (char *)recv_uetr;
    receive.amount_minor = recv_minor;
    receive.currency = (char *)recv_ccy;
    char implied[FX_RATE_LEN_MAX + 1] = "";
    settlement_t p, r;
    memset(&p, 0, sizeof p);
    memset(&r, 0, sizeof r);
    p.amount_minor = pay_minor;
    r.amount_minor = recv_minor;
    snprintf(p.currency, sizeof p.currency, "%s", pay_ccy);
    snprintf(r.currency, sizeof r.currency, "%s", recv_ccy);
    (void)fx_rate_text(&p, &r, implied, sizeof implied);
    Corridor__FxProposal fx = CORRIDOR__FX_PROPOSAL__INIT;
    fx.fx_id = (char *)fx_id;
    fx.pay = pay_uetr != NULL ? &pay : NULL;
    fx.receive = recv_uetr != NULL ? &receive : NULL;
    fx.rate = rate != NULL ? (char *)rate : implied;
    fx.created_unix_ms = WALL_START_MS;
    fx.expires_unix_ms = expires;
    uint8_t body[512];
    assert(corridor__fx_proposal__get_packed_size(&fx) <= sizeof body);
    seed_message(b, MSG_FX_PROPOSAL, true, seq, body, corridor__fx_proposal__pack(&fx, body));
}

/* The seeds of FX trades the peer proposes (PROTOCOL.md 3.10). With the band: accepted inside it,
 * the same trade again (answered as before), refused AG01 outside it either way round, hostile
 * ones (a leg missing, one UETR for both legs, a rate its legs do not imply, a leg's UETR taken
 * by another trade: DUPL), and the peer's answer to its own trade. Without: two trades held for
 * review (their legs PEER_FIRST + 20 .. 23), one released by a leg's UETR, one expiring. */
static void write_fx_seeds(const char *dir)
{
    const uint64_t applied = fixture.applied_seq;
    buf_t b = {0};
    char id[8][CORRIDOR_UETR_LEN + 1], leg[12][CORRIDOR_UETR_LEN + 1];
    for (unsigned i = 0; i < 8; i++) {
        uetr_of(3000 + i, id[i]);
    }
    for (unsigned i = 0; i < 12; i++) {
        uetr_of(PEER_FIRST + 20 + i, leg[i]);
    }
    const uint64_t features =
        CHANNEL_FEATURE_ECHO | CHANNEL_FEATURE_HOLDS | CHANNEL_FEATURE_RETURNS | CHANNEL_FEATURE_FX;
    seed_hello_offering(&b, applied, fixture.acked_seq, applied, 1, 0, features);
    seed_fx(&b, applied + 1, id[0], leg[0], 100000, "RUB", leg[1], 100000, "USD", NULL, 0);
    seed_fx(&b, applied + 2, id[0], leg[0], 100000, "RUB", leg[1], 100000, "USD", NULL, 0);
    seed_fx(&b, applied + 3, id[1], leg[2], 100000, "RUB", leg[3], 300000, "USD", NULL, 0);
    seed_fx(&b, applied + 4, id[2], leg[4], 300000, "USD", leg[5], 100000, "RUB", NULL, 0);
    seed_fx(&b, applied + 5, id[3], leg[6], 100000, "RUB", NULL, 0, "", "1", 0);
    seed_fx(&b, applied + 6, id[4], leg[7], 100000, "RUB", leg[7], 100000, "USD", "1", 0);
    seed_fx(&b, applied + 7, id[5], leg[8], 100000, "RUB", leg[9], 100000, "USD", "1.5", 0);
    seed_fx(&b, applied + 8, id[6], leg[0], 200, "RUB", leg[10], 200, "USD", NULL, 0);
    seed_status(&b, applied + 9, id[0], "RJCT", "AG01", "RUB", NULL);
    seed_tick(&b, 100);
    write_seed(dir, "fx-band-and-hostile", START_V2 | FX_BAND, &b);

    seed_hello_offering(&b, applied, fixture.acked_seq, applied, 1, 0, features);
    seed_fx(&b, applied + 1, id[0], leg[0], 100000, "RUB", leg[1], 150000, "USD", NULL,
            WALL_START_MS + 60000);
    seed_fx(&b, applied + 2, id[1], leg[2], 5000, "USD", leg[3], 9000, "RUB", NULL,
            WALL_START_MS + 500);
    seed_decide(&b, 21, 0); /* by the second leg's UETR: both released */
    seed_decide(&b, 20, 1); /* decided already */
    seed_tick(&b, 1000);    /* the second trade expires: both declined AB05 */
    write_seed(dir, "fx-review-and-expiry", START_V2, &b);
}

static void write_seeds(const char *dir)
{
    printf("fuzz_hello: writing seeds to %s\n", dir);
    static const uint32_t both[] = {1, 2}, only1[] = {1}, only2[] = {2};
    const uint64_t sent = fixture.sent_seq, acked = fixture.acked_seq;
    const uint64_t applied = fixture.applied_seq; /* the peer sent this many */
    const uint64_t max = CORRIDOR_SEQUENCE_MAX;
    buf_t b = {0};

    /* a peer that resumes: consistent counters, both versions; then it acknowledges all */
    seed_hello(&b, applied, acked + 1, applied, 1, both, 2, true);
    seed_tick(&b, 100);
    seed_ack(&b, sent, 2);
    write_seed(dir, "hello-resume", 0, &b);

    /* the peer claims to have applied 5 more than we sent (we look restored): DIVERGED; then
     * a re-base whose sender_applied is 2^64-1 (malformed), then a proper one proving the 5,
     * then a new settlement (it must take sent + 6) and a Hello that resumes */
    seed_hello(&b, applied, sent + 5, applied, 1, both, 2, false);
    seed_rebase(&b, "seed-rebase-max", applied, UINT64_MAX, sent + 5, 0);
    seed_rebase(&b, "seed-rebase", applied, sent + 5, sent + 5, 0);
    seed_op(&b, OP_SEND, (const uint8_t *)"\0", 1);
    seed_hello(&b, applied, sent + 5, applied, 2, both, 2, true);
    write_seed(dir, "hello-diverged-rebase-max", 0, &b);

    /* two Hellos overtaken by the peer's messages (they say it sent none) that echo nothing
     * of ours: not judged, no divergence; then one echoing our first Hello, consistent */
    seed_hello_echo(&b, 0, acked, applied, 1, 0);
    seed_hello_echo(&b, 0, acked, applied, 2, 0);
    seed_tick(&b, 100);
    seed_hello_echo(&b, applied, acked, applied, 3, 1);
    write_seed(dir, "hello-echo-overtaken", 0, &b);

    /* a peer restored from an old copy (it sent one of the three we applied), echoing our
     * first Hello (the probe, sent after the first turn): DIVERGED at the second */
    seed_tick(&b, 1);
    seed_hello_echo(&b, 1, acked, 1, 1, 1);
    seed_hello_echo(&b, 1, acked, 1, 2, 2);
    write_seed(dir, "hello-echo-restored", 0, &b);

    /* echoes of control messages we never sent (another incarnation, a counter ahead) */
    seed_tick(&b, 1);
    seed_hello_echo(&b, 0, acked, applied, 1, UINT64_MAX);
    seed_hello_echo(&b, 0, acked, applied, 2, 1000);
    write_seed(dir, "hello-echo-forged", 0, &b);

    /* counters just above 2^62, each in turn, then the boundary itself (accepted: DIVERGED) */
    seed_hello(&b, max + 1, acked, applied, 1, both, 2, false);
    seed_hello(&b, applied, max + 1, applied, 2, both, 2, false);
    seed_hello(&b, applied, acked, max + 1, 3, both, 2, false);
    seed_hello(&b, applied, max, applied, 4, both, 2, false);
    write_seed(dir, "hello-counters-2p62", 0, &b);

    /* every counter 2^64-1; then a consistent Hello whose counter is 2^64-1 too */
    seed_hello(&b, UINT64_MAX, UINT64_MAX, UINT64_MAX, 1, both, 2, false);
    seed_hello(&b, applied, acked, applied, UINT64_MAX, both, 2, true);
    seed_hello(&b, applied, acked, applied, 1, both, 2, true); /* not fresh any more */
    write_seed(dir, "hello-counters-2p64", 0, &b);

    /* versions [2], a settlement signed in 2, then a Hello listing only [1] (a downgrade,
     * refused), another settlement, and a Hello listing none (version 1 only) */
    seed_hello(&b, applied, acked, applied, 1, only2, 1, true);
    seed_op(&b, OP_SEND, (const uint8_t *)"\0", 1);
    seed_hello(&b, applied, acked, applied, 2, only1, 1, false);
    seed_op(&b, OP_SEND, (const uint8_t *)"\1", 1);
    seed_hello(&b, applied, acked, applied, 3, NULL, 0, false);
    seed_settlement(&b, PEER_FIRST + 3, applied + 1);
    write_seed(dir, "hello-downgrade", 0, &b);

    /* a channel already at version 2 (persisted) offered only [1] */
    seed_hello(&b, applied, acked, applied, 1, only1, 1, true);
    seed_tick(&b, 1500);
    write_seed(dir, "hello-downgrade-persisted", START_V2, &b);

    /* 10,000 versions: first 3, 4, ... with 2 only at the end (beyond what is read), then
     * 10,000 times 2 */
    uint32_t *many = xmalloc(10000 * sizeof *many);
    for (size_t i = 0; i < 10000; i++) {
        many[i] = (uint32_t)(3 + i);
    }
    many[9999] = 2;
    seed_hello(&b, applied, acked, applied, 1, many, 10000, true);
    for (size_t i = 0; i < 10000; i++) {
        many[i] = 2;
    }
    seed_hello(&b, applied, acked, applied, 2, many, 10000, false);
    free(many);
    write_seed(dir, "hello-10000-versions", 0, &b);

    /* Acks: beyond what was sent, above 2^62, 2^64-1, then everything */
    seed_ack(&b, sent + 1, 1);
    seed_ack(&b, max + 1, 2);
    seed_ack(&b, UINT64_MAX, 3);
    seed_ack(&b, sent, 4);
    write_seed(dir, "ack-out-of-range", 0, &b);

    /* all acknowledged (so the continuous check runs), then the peer's StatusReport settling
     * our USD payment states its position as INT64_MIN (never negated) */
    seed_ack(&b, sent, 1);
    char uetr[CORRIDOR_UETR_LEN + 1];
    uetr_of(OUR_SETTLEMENTS - 1, uetr);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = uetr;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = "USD";
    sr.position_minor = INT64_MIN;
    uint8_t body[256];
    size_t len = corridor__status_report__pack(&sr, body);
    seed_message(&b, MSG_STATUS_REPORT, false, applied + 1, body, len);
    write_seed(dir, "status-report-int64min", 0, &b);

    /* the same in version 2, naming our Settlement's body hash (so it is applied), then a
     * version-2 report naming other contents for a RUB one (ignored) */
    settlement_t ours;
    settlement_of(OUR_SETTLEMENTS - 1, DIRECTION_OUT, "USD", &ours);
    uint8_t *ours_body = NULL;
    size_t ours_len = 0;
    if (settlement_encode(&ours, &ours_body, &ours_len) != 0) {
        fail("cannot encode");
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(ours_body, ours_len, hash);
    free(ours_body);
    sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    len = corridor__status_report__pack(&sr, body);
    seed_ack(&b, sent, 1);
    seed_message(&b, MSG_STATUS_REPORT, true, applied + 1, body, len);
    uetr_of(0, uetr);
    sr.currency = "RUB";
    sr.position_minor = 5;
    len = corridor__status_report__pack(&sr, body);
    seed_message(&b, MSG_STATUS_REPORT, true, applied + 2, body, len);
    write_seed(dir, "status-report-v2-int64min", 0, &b);

    /* the peer's messages out of order, a duplicate, one too far ahead, one at 2^62 */
    seed_settlement(&b, PEER_FIRST + 5, applied + 2);
    seed_settlement(&b, PEER_FIRST + 4, applied + 1);
    seed_settlement(&b, PEER_FIRST + 4, applied + 1);
    seed_settlement(&b, PEER_FIRST + 6, applied + CHANNEL_HOLD_MAX + 3);
    seed_settlement(&b, PEER_FIRST + 7, max);
    write_seed(dir, "messages-order", 0, &b);

    /* the peer announces a new signing key (PROTOCOL.md 2.14), then a second announcement
     * signed by the retired key (consumed as nothing), then one whose proof of possession is
     * broken, then a payment */
    uint8_t seed_bytes[crypto_sign_SEEDBYTES];
    memset(seed_bytes, 0x77, sizeof seed_bytes);
    identity_t *next =
        identity_from_secrets(seed_bytes, peer_id->box_secret, peer_id->curve_secret);
    uint8_t *announce = NULL;
    size_t announce_len = 0;
    if (next == NULL ||
        key_announce_encode(next, peer_id->key_id, NULL, &announce, &announce_len) != 0) {
        fail("cannot encode a KeyAnnounce");
    }
    seed_message(&b, MSG_KEY_ANNOUNCE, true, applied + 1, announce, announce_len);
    seed_message(&b, MSG_KEY_ANNOUNCE, true, applied + 2, announce, announce_len);
    announce[announce_len - 1] ^= 1;
    seed_message(&b, MSG_KEY_ANNOUNCE, true, applied + 3, announce, announce_len);
    seed_settlement(&b, PEER_FIRST + 8, applied + 4);
    write_seed(dir, "key-announce", 0, &b);
    free(announce);
    identity_destroy(&next);

    /* the CURVE key switch (PROTOCOL.md 2.14): the peer announces peer_next (a new CURVE key),
     * switches to it (signed by the new key, an hour's overlap), switches again at the longest
     * overlap, then sends a switch to a key it never announced, one over the longest overlap,
     * one whose key is not Z85, and a payment under the new key */
    if (key_announce_encode(peer_next, peer_id->key_id, self_id->box_public, &announce,
                            &announce_len) != 0) {
        fail("cannot encode a KeyAnnounce");
    }
    seed_message(&b, MSG_KEY_ANNOUNCE, true, applied + 1, announce, announce_len);
    free(announce);
    seed_key_switch(&b, applied + 2, peer_next->curve_public, 3600);
    seed_key_switch(&b, applied + 3, peer_next->curve_public, KEY_SWITCH_OVERLAP_MAX_S);
    seed_key_switch(&b, applied + 4, third_id->curve_public, 60);
    seed_key_switch(&b, applied + 5, peer_next->curve_public, KEY_SWITCH_OVERLAP_MAX_S + 1);
    char not_z85[IDENTITY_CURVE_KEY_CHARS + 1];
    snprintf(not_z85, sizeof not_z85, "%s", peer_next->curve_public);
    not_z85[7] = '~';
    seed_key_switch(&b, applied + 6, not_z85, 60);
    settlement_t s;
    settlement_of(PEER_FIRST + 9, DIRECTION_IN, "RUB", &s);
    uint8_t *pay = NULL;
    size_t pay_len = 0;
    if (settlement_encode(&s, &pay, &pay_len) != 0) {
        fail("cannot encode");
    }
    seed_message_by(&b, MSG_SETTLEMENT, true, true, applied + 7, pay, pay_len);
    free(pay);
    write_seed(dir, "key-switch", 0, &b);

    /* a KeySwitch with no announcement before it, under the peer's first key */
    Corridor__KeySwitch early = CORRIDOR__KEY_SWITCH__INIT;
    early.curve_public = (char *)peer_next->curve_public;
    early.overlap_s = 3600;
    uint8_t early_body[128];
    seed_message(&b, MSG_KEY_SWITCH, true, applied + 1, early_body,
                 corridor__key_switch__pack(&early, early_body));
    write_seed(dir, "key-switch-unannounced", 0, &b);

    /* restarted DIVERGED: a consistent Hello keeps it so; a re-base proving what the peer
     * acknowledged reopens it; the peer resumes */
    seed_hello(&b, applied, acked, applied, 1, both, 2, true);
    seed_rebase(&b, "seed-reopen", applied, acked, acked, 0);
    seed_hello(&b, applied, acked, applied, 2, both, 2, true);
    seed_tick(&b, 200);
    write_seed(dir, "diverged-rebase-proven", START_DIVERGED, &b);

    /* restarted DIVERGED from a ledger without a kept proof of what it applied (upgraded from
     * schema 2): the re-base resumes the peer's stream from 0, which comes again */
    seed_rebase(&b, "seed-no-own-proof", applied, acked, acked, 0);
    seed_hello(&b, applied, acked, 0, 1, both, 2, true);
    seed_settlement(&b, PEER_FIRST, 1);
    seed_settlement(&b, PEER_FIRST + 1, 2);
    write_seed(dir, "diverged-rebase-no-own-proof", START_DIVERGED | START_NO_PROOF, &b);

    /* re-bases that must not move anything: a proof signed for a third node, one signed by
     * the peer itself, a counter above 2^62; then one without any proof on a channel that
     * never diverged (accepted: acked goes back to 0, everything is sent again) */
    seed_rebase(&b, "seed-third", applied, acked, acked, FUZZ_PROOF_TO_THIRD);
    seed_rebase(&b, "seed-peer-signed", applied, acked, acked, FUZZ_PROOF_PEER_SIGNS);
    seed_rebase(&b, "seed-over", max + 1, acked, acked, 0);
    seed_rebase(&b, "seed-unproven", applied, acked, 0, 0);
    seed_hello(&b, applied, acked, applied, 1, both, 2, true);
    seed_tick(&b, 100);
    write_seed(dir, "rebase-refused-and-unproven", 0, &b);

    /* up, then silence past the liveness limit and retransmission timeouts, with a socket
     * that refuses every other frame */
    seed_hello(&b, applied, acked, applied, 1, both, 2, true);
    seed_tick(&b, CHANNEL_RTO_INIT_MS + 10);
    seed_tick(&b, CHANNEL_LIVENESS_MS + 10);
    seed_hello(&b, applied, acked, applied, 2, both, 2, true);
    seed_tick(&b, CHANNEL_RTO_MAX_MS);
    write_seed(dir, "liveness-retransmit", BLOCK_SOCKET, &b);

    /* the peer shows it was restored (applied less than it acknowledged) */
    seed_hello(&b, applied, acked - 1, applied, 1, both, 2, false);
    seed_ack(&b, sent, 2);
    seed_settlement(&b, PEER_FIRST + 4, applied + 1);
    write_seed(dir, "hello-peer-restored", 0, &b);

    write_hold_seeds(dir);
    write_return_seeds(dir);
    write_fx_seeds(dir);
}

/* ---- libFuzzer ------------------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        fail("sodium_init failed");
    }
    fixture_make_dir("fuzz_hello", FIXTURE_DIR_PREFIX, fixture_nodes,
                     sizeof fixture_nodes / sizeof fixture_nodes[0], tmp_dir, sizeof tmp_dir);
    atexit(cleanup);
    self_id = fuzz_identity(0);
    peer_id = fuzz_identity(1);
    third_id = fuzz_identity(2);
    /* the peer's next keys: identity 3's signing and CURVE keys with the peer's box key, so
     * that what the channel seals to the peer still opens with keys[1] */
    identity_t *three = fuzz_identity(3);
    uint8_t next_seed[crypto_sign_SEEDBYTES];
    fuzz_key_bytes(3, "sign", next_seed);
    peer_next = identity_from_secrets(next_seed, peer_id->box_secret, three->curve_secret);
    sodium_free(three);
    if (peer_next == NULL) {
        fail("cannot derive the peer's next keys");
    }
    build_fixture();
    const char *seeds = getenv("FUZZ_HELLO_SEEDS");
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

/* ---- returns (PROTOCOL.md 3.9): what the peer returned never exceeds what we paid ---------- */

#define RETURNS_CHECKED_MAX 64

typedef struct {
    settlement_t r[RETURNS_CHECKED_MAX];
    size_t count;
} returns_seen_t;

static void see_return(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    returns_seen_t *seen = arg;
    if (settlement_is_return(s) && o->status == STATUS_SETTLED &&
        seen->count < RETURNS_CHECKED_MAX) {
        seen->r[seen->count++] = *s;
    }
}

/* Every return we accepted returns our settled payment to the peer in its currency, and what
 * the peer returned of it (accepted and pending) stays within it. */
static void check_returns(void)
{
    static returns_seen_t seen;
    seen.count = 0;
    assert(ledger_settlements(ledger, see_return, &seen) == LEDGER_OK);
    for (size_t i = 0; i < seen.count; i++) {
        const settlement_t *r = &seen.r[i];
        settlement_t original;
        ledger_outcome_t o;
        assert(r->direction == DIRECTION_IN);
        assert(ledger_find(ledger, PEER_NAME, r->original_uetr, &original, &o) == LEDGER_OK);
        assert(!settlement_is_return(&original) && original.direction == DIRECTION_OUT);
        assert(o.status == STATUS_SETTLED && strcmp(original.currency, r->currency) == 0);
        int64_t accepted = 0, pending = 0;
        assert(ledger_returns_of(ledger, PEER_NAME, r->original_uetr, DIRECTION_IN, &accepted,
                                 &pending) == LEDGER_OK);
        assert(accepted >= r->amount_minor && accepted + pending <= original.amount_minor);
        assert(o.returned_minor == accepted);
    }
}

static void see_trade(const settlement_t legs[2], const ledger_outcome_t *o, void *arg)
{
    (void)arg;
    assert(strcmp(legs[0].fx_id, legs[1].fx_id) == 0 && uetr_check(legs[0].fx_id) == VALID_OK);
    assert(legs[0].fx_leg == FX_LEG_PROPOSER_PAYS && legs[1].fx_leg == FX_LEG_ACCEPTOR_PAYS);
    assert(legs[0].direction == legs[1].direction);
    for (int i = 0; i < 2; i++) {
        settlement_t s;
        ledger_outcome_t leg;
        assert(ledger_find(ledger, PEER_NAME, legs[i].uetr, &s, &leg) == LEDGER_OK);
        assert(leg.status == o->status && strcmp(leg.reason, o->reason) == 0);
    }
}

/* Every FX trade is both legs of one id, in one direction, sharing their status and reason (a
 * refused one may have any legs: a hostile trade is recorded as the peer wrote it). */
static void check_trades(void)
{
    assert(ledger_fx_trades(ledger, see_trade, NULL) == LEDGER_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned flags = data[0];
    data++;
    size--;
    int64_t now = START_MS;
    memset(&in, 0, sizeof in);
    in.block_socket = (flags & BLOCK_SOCKET) != 0;
    in.screen = (flags & SCREEN) != 0;
    config->peers[0].fx_bands_count = (flags & FX_BAND) != 0 ? 1 : 0;
    keys[0].applied_through = fixture.applied_seq;
    must(ledger_begin(ledger), "begin");
    if (flags & START_DIVERGED) {
        must(ledger_channel_set_diverged(ledger, PEER_NAME, true), "set diverged");
    }
    if (flags & START_V2) {
        must(ledger_channel_set_version(ledger, PEER_NAME, INNER_VERSION_MIN + 1), "set version");
        in.v2_offered = true;
    }
    if (flags & START_NO_PROOF) { /* as a ledger upgraded from schema 2 */
        must(ledger_channel_set_applied(ledger, PEER_NAME, fixture.applied_seq, NULL, 0),
             "set applied");
    }
    in.ch = new_channel(now);
    ledger_set_clock(ledger, WALL_START_MS);
    channel_set_wall(in.ch, WALL_START_MS);
    if ((flags & START_DOWN) == 0) {
        static const uint32_t one[] = {1}, both[] = {1, 2};
        Corridor__Hello h = CORRIDOR__HELLO__INIT;
        h.sent_sequence = fixture.applied_seq; /* the peer sent what we applied */
        h.applied_sequence = fixture.acked_seq;
        h.acked_sequence = fixture.applied_seq;
        h.incarnation = 5;
        h.counter = 0;
        h.n_versions = flags & START_V2 ? 2 : 1;
        h.versions = (uint32_t *)(flags & START_V2 ? both : one);
        uint8_t body[64];
        size_t len = corridor__hello__pack(&h, body);
        deliver_control(in.ch, MSG_HELLO, body, len, now);
    }
    in.version_floor = channel_wire_version(in.ch);
    in.sent_floor = fixture.sent_seq;
    in.applied_floor = fixture.applied_seq;
    for (unsigned k = 0; k < OPS_MAX && size >= 3; k++) {
        unsigned op = data[0];
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (len > size) {
            len = size;
        }
        const uint8_t *payload = data;
        data += len;
        size -= len;
        if (!turn(op, payload, len, &now)) {
            break;
        }
    }
    check_returns();
    check_trades();
    channel_destroy(&in.ch);
    ledger_rollback(ledger);
    assert(!ledger_stopped(ledger));
    return 0;
}
