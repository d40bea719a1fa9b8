/*
 * Fuzzes statement processing: what a node does with a StatementRequest or a Statement from a
 * trusted peer (reconciliation, recon.h and statement.h). Envelope authentication is assumed
 * (fuzz_envelope_signed.c covers it): the bytes here are bodies as the daemon hands them to
 * wire_unpack.
 *
 * The fixture, built once: node BKRURUMM with a ledger in a temporary directory (synchronous
 * off, fuzzing only) holding 48 settlements with its peer BMJIIRTH, recorded through the
 * ledger API with real signed evidence (fuzz_keys.h identities 0 and 1): outgoing pending,
 * settled, rejected and returned, incoming booked and refused, in three currencies, spread
 * over every first UETR digit, a few two-phase returns (PROTOCOL.md 3.9) of half a settled
 * payment either way, accepted FX trades (3.10) proposed by either side (two legs each; the
 * fixture lacks one it proposed, the seed generator's second node one it proposed), plus a few
 * with a third peer that no statement may show. A config, the envelope keys both ways and a
 * channel (its frames are not sent anywhere; the last StatementRequest is kept so that the
 * harness can answer it as the peer would).
 *
 * Every input runs inside ledger_begin .. ledger_rollback (then channel_reload), so every
 * input sees the same fixture. Byte 0 chooses the path (bits 0-1) and flags (bits 2-7):
 *
 *   0, 3  responder: the rest is a StatementRequest; recon_answer must answer it with a
 *         Statement that fits in an envelope, decodes, carries the request id and the
 *         channel's digest, and has entries only under the leaves it names; after any
 *         write (repair, checkpoint) the channel digest must still equal the sum of its
 *         entries' canonical hashes.
 *   1     initiator: recon_new + recon_tick, then rounds: the rest is a sequence of Statements,
 *         each preceded by its length (2 bytes, little endian), fed to recon_on_statement as
 *         answers to the outstanding request (whose id the harness reads from the frame the
 *         channel sent, as the peer would); then recon_report. Every request the session says
 *         is outstanding must have been sent, and must open and decode at the peer.
 *   2     statement functions: the rest is a range prefix, a NUL and a UETR; for a valid prefix
 *         the fingerprint must equal the sum of its entries' canonical hashes and of its 16
 *         sub-ranges, entries must come in UETR order under the prefix, between the two nodes,
 *         and their evidence must verify with the payer's and payee's keys.
 *
 *   0x04  SIGN_EVIDENCE: evidence bytes of repair imports (responder) or statement entries
 *         (initiator) are bodies; the harness signs them as the entry's payer (the Settlement)
 *         and payee (the StatusReport) would, so repairs get past signature checks.
 *   0x08  SIGN_CHECKPOINT: the responder sees the request's checkpoint signed by the peer; the
 *         initiator sees the peer countersign the checkpoint it proposed.
 *   0x10  DIVERGED: the channel is marked DIVERGED first (re-base paths).
 *   0x20  REPAIR: the initiator's session repairs (--repair).
 *   0x40  KEEP_ID: the initiator's statements keep their own request_id (late answers).
 *         NO_PROOF: the responder's channel keeps no proof of what it applied (as a ledger
 *         upgraded from schema 2), so a re-base in DIVERGED resumes the peer's stream from 0.
 *   0x80  RETRY: the initiator's clock passes the retry interval between rounds.
 *
 * Proofs of what was applied (the request's Repair.applied_proof, a Statement's applied_proof)
 * must be the receiving node's own signed message: fuzz_proof.h describes the template bytes
 * the harness signs as that node (or, as the template says, as the peer, for a third node, at
 * any sequence and type), whatever the flags; other bytes reach the node raw. The fixture
 * keeps a proof with its applied counter (the peer's signed message of that sequence), so a
 * re-base answer carries one: it must verify with the peer's key and name the sequence the
 * answer states. After every input the channel's counters (in memory and in the ledger) stay
 * at most CORRIDOR_SEQUENCE_MAX, with acknowledged at most sent.
 *
 * Any storage error stops the ledger for good (ledger.h); no input may do that, so the harness
 * checks after each one. With FUZZ_STATEMENT_SEEDS=DIR set, the harness instead writes its seed
 * corpus to DIR and exits: initiator sessions answered by a second node whose books differ in
 * known ways (its own ledger, answering with recon_answer), that node's repair requests for the
 * responder path, checkpoint proposals and a few crafted requests.
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

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <sqlite3.h>

#include "channel.h"
#include "config.h"
#include "corridor.pb-c.h"
#include "digest.h"
#include "envelope.h"
#include "fx.h"
#include "fuzz_fixture.h"
#include "fuzz_keys.h"
#include "fuzz_proof.h"
#include "identity.h"
#include "ledger.h"
#include "ledger_db.h"
#include "checkpoint.h"
#include "recon.h"
#include "settlement.h"
#include "statement.h"
#include "validate.h"
#include "wire.h"

#define SELF_NAME  "BKRURUMM"
#define PEER_NAME  "BMJIIRTH"
#define THIRD_NAME "BKTHIRDX" /* a channel no statement with PEER_NAME may show */
#define CURRENCIES "RUB,USD,KZT"

#define ENTRIES             48 /* settlements with the peer: over STATEMENT_LEAF_MAX, so "" splits */
#define KINDS               6  /* see entry_kind(): how each settlement ended */
#define EXTRA_FIRST         100 /* the seed generator's second node has two settlements ... */
#define EXTRAS              2   /* ... that the fixture lacks */
#define THIRD_FIRST         200
#define THIRD_COUNT         4
#define LACKED_INDEX        3   /* the settlement the second node lacks */
#define RETURN_LACKED_INDEX 2   /* and the settlement whose return it lacks */
#define KIND_UNSENT         100 /* the extras: pending at their payer, never seen by the payee */
#define TRADES              4   /* accepted FX trades (3.10): even ones the fixture proposes */
#define TRADE_FIRST         300 /* trade k: uetr_of(TRADE_FIRST + 3k), its legs + 1 and + 2 */
#define TRADE_LACKED        1   /* the trade the second node (its proposer) lacks */
#define TRADE_SELF_LACKED   2   /* the trade the fixture (its proposer) lacks */
#define CAP_MINOR           INT64_C(1000000000000000)

#define PATH_MASK       0x03u
#define PATH_RESPONDER  0u
#define PATH_INITIATOR  1u
#define PATH_STATEMENTS 2u
#define SIGN_EVIDENCE   0x04u
#define SIGN_CHECKPOINT 0x08u
#define DIVERGED        0x10u
#define REPAIR          0x20u
#define KEEP_ID         0x40u
#define NO_PROOF        0x40u /* the responder's meaning of the bit */
#define RETRY           0x80u

#define ROUNDS_MAX      16 /* statements per initiator input */
#define SIGN_MAX        16 /* entries whose evidence one input may have signed */
#define EVIDENCE_CHECKS 6  /* entries whose stored evidence one input verifies */
#define START_MS        INT64_C(1000000)
#define ROUND_MS        10
#define SEED_FILES_MAX  28

#define FIXTURE_DIR_PREFIX "corridor-fuzz-statement." /* + pid + "." + mkdtemp's suffix */
static const char *const fixture_nodes[] = {SELF_NAME,
                                            PEER_NAME}; /* their ledgers in the fixture */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One node: its keys, books, config and channel with the other node. */
typedef struct {
    const char *name;
    identity_t *id;
    const identity_t *other_id;
    config_t *config;
    envelope_peer_t *keys; /* how this node sees the other (sodium_malloc'd) */
    ledger_t *ledger;
    channel_t *channel;
    recon_ctx_t ctx;
    uint8_t *request; /* the last StatementRequest frame the channel sent */
    size_t request_len;
    uint64_t requests_sent; /* StatementRequest frames the channel sent */
    char path[512];
} node_t;

/* What the other side reads from a node's outstanding request. */
typedef struct {
    char id[64];
    uint8_t *checkpoint; /* malloc'd copy, or NULL */
    size_t checkpoint_len;
} request_seen_t;

static char tmp_dir[256];
static node_t self_node;     /* the node under test: SELF_NAME */
static node_t peer_node;     /* PEER_NAME: its keys open the fixture's requests; its books are
                                filled only by the seed generator */
static identity_t *third_id; /* THIRD_NAME: a recipient no proof for the peer may name */

/* ---- small helpers ------------------------------------------------------------------------ */

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "fuzz_statement: %s\n", what);
    abort();
}

static void must(ledger_t *l, ledger_err_t rc, const char *what)
{
    if (rc != LEDGER_OK) {
        fprintf(stderr, "fuzz_statement: %s: %s (%s)\n", what, ledger_strerror(rc),
                l != NULL ? ledger_last_error(l) : "");
        abort();
    }
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The UETR of settlement i: fixed, a valid UUIDv4, its first digit i % 16. */
static void uetr_of(unsigned i, char out[static CORRIDOR_UETR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t in[2] = {(uint8_t)i, (uint8_t)(i >> 8)};
    uint8_t h[16];
    crypto_generichash(h, sizeof h, in, sizeof in, (const uint8_t *)"corridor.fuzz.uetr", 18);
    char digits[33];
    for (size_t k = 0; k < 16; k++) {
        digits[2 * k] = hex[h[k] >> 4];
        digits[2 * k + 1] = hex[h[k] & 15];
    }
    digits[0] = hex[i % 16];
    digits[12] = '4';
    digits[16] = "89ab"[h[8] & 3];
    snprintf(out, CORRIDOR_UETR_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", digits, digits + 8,
             digits + 12, digits + 16, digits + 20);
}

/* The envelope signature of `body` by `author` for `recipient`; NULL if it is too large. */
static uint8_t *sign_body(const identity_t *author, const identity_t *recipient, msg_type_t type,
                          uint64_t sequence, const uint8_t *body, size_t body_len, size_t *out_len)
{
    uint8_t *out = NULL;
    if (envelope_sign(author, recipient->key_id, type, sequence, body, body_len, &out, out_len) !=
        ENV_OK) {
        return NULL;
    }
    return out;
}

/* A signed StatusReport from the payee to the payer. */
static uint8_t *sign_status(const identity_t *payee, const identity_t *payer, const char *uetr,
                            bool settled, const char *reason, const char *currency, size_t *len)
{
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = (char *)uetr;
    sr.status = settled ? "ACSC" : "RJCT";
    sr.reason = (char *)(settled ? "" : reason);
    sr.currency = (char *)currency;
    uint8_t body[256];
    size_t body_len = corridor__status_report__get_packed_size(&sr);
    assert(body_len <= sizeof body);
    corridor__status_report__pack(&sr, body);
    uint8_t *out = sign_body(payee, payer, MSG_STATUS_REPORT, 1, body, body_len, len);
    if (out == NULL) {
        fail("cannot sign a StatusReport");
    }
    return out;
}

/* The other node's signature of a checkpoint, as recon.c makes it. */
static void sign_checkpoint_as(const identity_t *signer, const uint8_t *body, size_t len,
                               uint8_t sig[static crypto_sign_BYTES])
{
    if (checkpoint_sign(body, len, signer->sign_secret, sig) != 0) {
        fail("out of memory");
    }
}

/* ---- nodes --------------------------------------------------------------------------------- */

static node_t *node_of(void *arg)
{
    return arg;
}

/* channel_ctx_t.send: frames go nowhere; the last StatementRequest is kept (see above). */
static int keep_request(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire,
                        size_t len)
{
    (void)peer_index;
    node_t *n = node_of(arg);
    if (type != MSG_STATEMENT_REQUEST) {
        return 0;
    }
    free(n->request);
    n->request = malloc(len);
    if (n->request == NULL) {
        fail("out of memory");
    }
    memcpy(n->request, wire, len);
    n->request_len = len;
    n->requests_sent++;
    return 0;
}

static void forget_request(node_t *n)
{
    free(n->request);
    n->request = NULL;
    n->request_len = 0;
}

/* Opens a node (taking `id`) that trusts `other_name` with keys `other_id`. */
static void node_open(node_t *n, const char *name, identity_t *id, const char *other_name,
                      const identity_t *other_id)
{
    n->name = name;
    n->id = id;
    n->other_id = other_id;
    n->config = config_new();
    n->keys = sodium_malloc(sizeof *n->keys);
    if (n->config == NULL || n->keys == NULL) {
        fail("out of memory");
    }
    char err[256];
    snprintf(n->config->name, sizeof n->config->name, "%s", name);
    snprintf(n->config->listen, sizeof n->config->listen, "tcp://127.0.0.1:7001");
    if (config_set_currencies(n->config, CURRENCIES, err, sizeof err) != 0) {
        fail(err);
    }
    n->config->peers_count = 1;
    config_peer_t *peer = &n->config->peers[0];
    identity_card(other_id, other_name, "tcp://127.0.0.1:7002", &peer->card);
    if (config_peer_set_limit(peer, "RUB", CAP_MINOR) != 0 ||
        config_peer_set_limit(peer, "USD", CAP_MINOR) != 0 ||
        config_peer_set_limit(peer, "KZT", CAP_MINOR) != 0) {
        fail("cannot set limits");
    }
    fuzz_peer(n->keys, n->id, other_id, other_name);
    snprintf(n->path, sizeof n->path, "%s/%s.db", tmp_dir, name);
    if (ledger_open(n->path, name, LEDGER_READ_WRITE, NULL, &n->ledger, err, sizeof err) !=
        LEDGER_OK) {
        fail(err);
    }
    if (sqlite3_exec(ledger_db(n->ledger), "PRAGMA synchronous=OFF", NULL, NULL, NULL) !=
        SQLITE_OK) {
        fail("cannot turn synchronous off");
    }
}

static void node_start_channel(node_t *n)
{
    channel_ctx_t cctx = {
        .self = n->id,
        .config = n->config,
        .ledger = n->ledger,
        .send = keep_request,
        .on_final = fixture_ignore_final,
        .on_statement = fixture_ignore_statement,
        .arg = n,
        .node_name = n->name,
        .incarnation = 1,
    };
    n->channel = channel_new(&cctx, 0, &n->config->peers[0], n->keys, START_MS);
    if (n->channel == NULL) {
        fail("cannot create the channel");
    }
    n->ctx = (recon_ctx_t){
        .self = n->id, .peer = &n->config->peers[0], .ledger = n->ledger, .channel = n->channel};
}

static void node_close(node_t *n)
{
    if (n->name == NULL) {
        return;
    }
    channel_destroy(&n->channel);
    ledger_close(&n->ledger);
    forget_request(n);
    if (n->keys != NULL) {
        envelope_peer_wipe(n->keys);
        sodium_free(n->keys);
    }
    config_destroy(&n->config);
    sodium_free(n->id);
    memset(n, 0, sizeof *n);
}

static void cleanup(void)
{
    node_close(&self_node);
    node_close(&peer_node);
    if (third_id != NULL) {
        sodium_free(third_id);
        third_id = NULL;
    }
    if (tmp_dir[0] != '\0') {
        fixture_remove_dir(tmp_dir, fixture_nodes, sizeof fixture_nodes / sizeof fixture_nodes[0]);
    }
}

/* ---- the books ----------------------------------------------------------------------------- */

/* How settlement i ended: 0 the payee booked it but the payer still has it pending (its
 * StatusReport is in flight), 1 settled, 2 rejected AM04, 3 settled, 4 rejected AC01, 5
 * settled and then returned by the payee. SELF_NAME pays kinds 0, 1, 2, 5; PEER_NAME 3, 4. */
static unsigned entry_kind(unsigned i)
{
    return i % 12 == 0 ? 0 : 1 + i % (KINDS - 1); /* few of kind 0: the seeds stay small */
}

static void settlement_of(unsigned i, const char *peer, direction_t dir, settlement_t *s)
{
    static const char *const ccy[] = {"RUB", "USD", "KZT"};
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    s->direction = dir;
    uetr_of(i, s->uetr);
    snprintf(s->end_to_end_id, sizeof s->end_to_end_id, "E2E-%u", i);
    s->amount_minor = 100 + 37 * (int64_t)i;
    snprintf(s->currency, sizeof s->currency, "%s", ccy[i % 3]);
    snprintf(s->value_date, sizeof s->value_date, "2026-01-15");
    snprintf(s->debtor_name, sizeof s->debtor_name, "Debtor %u", i);
    snprintf(s->debtor_account, sizeof s->debtor_account, "40702810000000000%03u", i);
    snprintf(s->creditor_name, sizeof s->creditor_name, "Creditor %u", i);
    snprintf(s->creditor_account, sizeof s->creditor_account, "40702810900000000%03u", i);
    snprintf(s->remittance, sizeof s->remittance, "invoice %u", i);
    s->created_unix_ms = INT64_C(1767225600000) + i;
}

/* Whether settlement i (of `kind`) is returned in part by its payee, two-phase (3.9), in n's
 * books: a few of either side's settled payments, but the seed generator's second node lacks
 * the return of RETURN_LACKED_INDEX. */
static bool returned_in_part(const node_t *n, unsigned i, unsigned kind)
{
    return (kind == 1 || kind == 3) && i % 20 < 3 && !(n == &peer_node && i == RETURN_LACKED_INDEX);
}

/* Records the accepted two-phase return of half of settlement `s` (i), whose body hash is
 * `original_hash`, in n's books: `returner_here` n is its payee and returns it. */
static void record_return(node_t *n, unsigned i, const settlement_t *s,
                          const uint8_t original_hash[static SETTLEMENT_HASH_BYTES],
                          bool returner_here, const char *other, const identity_t *other_id,
                          uint64_t *sent)
{
    ledger_t *l = n->ledger;
    const identity_t *returner = returner_here ? n->id : other_id;
    const identity_t *payer = returner_here ? other_id : n->id;
    settlement_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.peer, sizeof r.peer, "%s", other);
    r.direction = returner_here ? DIRECTION_OUT : DIRECTION_IN;
    uetr_of(i + 3000, r.uetr);
    r.amount_minor = s->amount_minor / 2;
    snprintf(r.currency, sizeof r.currency, "%s", s->currency);
    snprintf(r.original_uetr, sizeof r.original_uetr, "%s", s->uetr);
    snprintf(r.return_reason, sizeof r.return_reason, "MD06");
    memcpy(r.original_hash, original_hash, SETTLEMENT_HASH_BYTES);
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (settlement_encode(&r, &body, &body_len) != 0) {
        fail("cannot encode a Return");
    }
    size_t rev_len = 0, tev_len = 0;
    uint8_t *rev = sign_body(returner, payer, MSG_RETURN, i + 2, body, body_len, &rev_len);
    /* the payer's acceptance, bound to the Return's body (version 2): proof enough to import */
    uint8_t return_hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, return_hash);
    free(body);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = r.uetr;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = r.currency;
    sr.settlement_hash = (ProtobufCBinaryData){sizeof return_hash, return_hash};
    uint8_t sr_body[256];
    size_t sr_len = corridor__status_report__get_packed_size(&sr);
    assert(sr_len <= sizeof sr_body);
    corridor__status_report__pack(&sr, sr_body);
    uint8_t *tev = NULL;
    if (rev == NULL || envelope_sign_version(payer, 2, returner->key_id, MSG_STATUS_REPORT, i + 2,
                                             sr_body, sr_len, &tev, &tev_len) != ENV_OK) {
        fail("cannot sign a Return or its StatusReport");
    }
    ledger_outcome_t out;
    if (returner_here) {
        must(l, ledger_send(l, &r, rev, rev_len, i + 2, &out), "ledger_send (return)");
        if (other_id == n->other_id) {
            *sent += 1;
            must(l, ledger_outbox_put(l, other, *sent, MSG_RETURN, rev, rev_len),
                 "ledger_outbox_put");
        }
        must(l, ledger_resolve(l, other, r.uetr, true, "", tev, tev_len, i + 2, &out),
             "ledger_resolve (return)");
    } else {
        must(l, ledger_receive(l, &r, CAP_MINOR, NULL, rev, rev_len, i + 2, &out),
             "ledger_receive (return)");
        must(l, ledger_set_reply(l, other, r.uetr, tev, tev_len, i + 2), "ledger_set_reply");
    }
    free(rev);
    free(tev);
}

/* Records settlement i in n's books as it ended there. `payer_here`: n paid it; `kind` as
 * entry_kind(); `other` names the other side, `other_id` its keys. */
static void record(node_t *n, unsigned i, unsigned kind, bool payer_here, const char *other,
                   const identity_t *other_id, uint64_t *sent)
{
    ledger_t *l = n->ledger;
    const identity_t *payer = payer_here ? n->id : other_id;
    const identity_t *payee = payer_here ? other_id : n->id;
    settlement_t s;
    settlement_of(i, other, payer_here ? DIRECTION_OUT : DIRECTION_IN, &s);
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (settlement_encode(&s, &body, &body_len) != 0) {
        fail("cannot encode a settlement");
    }
    size_t sev_len = 0;
    uint8_t *sev = sign_body(payer, payee, MSG_SETTLEMENT, i + 1, body, body_len, &sev_len);
    uint8_t original_hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, original_hash);
    free(body);
    if (sev == NULL) {
        fail("cannot sign a settlement");
    }
    bool settled = kind != 2 && kind != 4;
    const char *reason = kind == 2 ? "AM04" : kind == 4 ? "AC01" : "";
    size_t tev_len = 0;
    uint8_t *tev = sign_status(payee, payer, s.uetr, settled, reason, s.currency, &tev_len);
    ledger_outcome_t out;
    if (payer_here) {
        must(l, ledger_send(l, &s, sev, sev_len, i + 1, &out), "ledger_send");
        if (other_id == n->other_id) {
            *sent += 1;
            must(l, ledger_outbox_put(l, other, *sent, MSG_SETTLEMENT, sev, sev_len),
                 "ledger_outbox_put");
        }
        if (kind != 0 && kind != KIND_UNSENT) {
            must(l, ledger_resolve(l, other, s.uetr, settled, reason, tev, tev_len, i + 1, &out),
                 "ledger_resolve");
        }
    } else {
        must(l,
             ledger_receive(l, &s, CAP_MINOR, settled ? NULL : reason, sev, sev_len, i + 1, &out),
             "ledger_receive");
        must(l, ledger_set_reply(l, other, s.uetr, tev, tev_len, i + 1), "ledger_set_reply");
    }
    if (kind == 5) {
        Corridor__Return ret = CORRIDOR__RETURN__INIT;
        char return_id[CORRIDOR_UETR_LEN + 1];
        uetr_of(i + 1000, return_id);
        ret.return_id = return_id;
        ret.original_uetr = s.uetr;
        ret.amount_minor = s.amount_minor;
        ret.currency = s.currency;
        ret.reason = "AC04";
        uint8_t rbody[256];
        size_t rlen = corridor__return__get_packed_size(&ret);
        assert(rlen <= sizeof rbody);
        corridor__return__pack(&ret, rbody);
        size_t rev_len = 0;
        uint8_t *rev = sign_body(payee, payer, MSG_RETURN, i + 1, rbody, rlen, &rev_len);
        if (rev == NULL) {
            fail("cannot sign a Return");
        }
        must(l, ledger_return(l, other, s.uetr, "AC04", rev, rev_len, i + 2, &out),
             "ledger_return");
        free(rev);
    }
    if (returned_in_part(n, i, kind)) {
        record_return(n, i, &s, original_hash, !payer_here, other, other_id, sent);
    }
    free(sev);
    free(tev);
}

/* Records accepted FX trade k (3.10) in n's books, `proposer_here` n proposed it: legs of RUB
 * and KZT, the FxProposal signed by its proposer, the acceptor's StatusReport naming the trade
 * and bound to the FxProposal's body (version 2), as the channel records them. */
static void record_trade(node_t *n, unsigned k, bool proposer_here, const char *other,
                         uint64_t *sent)
{
    ledger_t *l = n->ledger;
    const identity_t *proposer = proposer_here ? n->id : n->other_id;
    const identity_t *acceptor = proposer_here ? n->other_id : n->id;
    unsigned base = TRADE_FIRST + 3 * k;
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    uetr_of(base, t.fx_id);
    uetr_of(base + 1, t.legs[FX_PAY].uetr);
    uetr_of(base + 2, t.legs[FX_RECEIVE].uetr);
    t.legs[FX_PAY].amount_minor = 1000 + (int64_t)k;
    snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "RUB");
    t.legs[FX_RECEIVE].amount_minor = 5000 + 3 * (int64_t)k;
    snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "KZT");
    t.created_unix_ms = INT64_C(1767225600000) + base;
    fx_trade_prepare(&t, other);
    uint8_t *body = NULL, *sev = NULL, *tev = NULL;
    size_t body_len = 0, sev_len = 0, tev_len = 0;
    if (fx_check(&t) != REASON_NONE || fx_encode(&t, &body, &body_len) != 0 ||
        envelope_sign_version(proposer, 2, acceptor->key_id, MSG_FX_PROPOSAL, base, body, body_len,
                              &sev, &sev_len) != ENV_OK) {
        fail("cannot make an FxProposal");
    }
    uint8_t hash[SETTLEMENT_HASH_BYTES];
    settlement_body_hash(body, body_len, hash);
    free(body);
    Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
    sr.uetr = t.fx_id;
    sr.status = "ACSC";
    sr.reason = "";
    sr.currency = t.legs[FX_PAY].currency;
    sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
    uint8_t sr_body[256];
    size_t sr_len = corridor__status_report__get_packed_size(&sr);
    assert(sr_len <= sizeof sr_body);
    corridor__status_report__pack(&sr, sr_body);
    if (envelope_sign_version(acceptor, 2, proposer->key_id, MSG_STATUS_REPORT, base, sr_body,
                              sr_len, &tev, &tev_len) != ENV_OK) {
        fail("cannot sign a StatusReport on a trade");
    }
    ledger_outcome_t out;
    if (proposer_here) {
        const char *why = NULL;
        must(l, ledger_fx_propose(l, t.legs, CAP_MINOR, sev, sev_len, base, &why, &out),
             "ledger_fx_propose");
        assert(why == NULL);
        *sent += 1;
        must(l, ledger_outbox_put(l, other, *sent, MSG_FX_PROPOSAL, sev, sev_len),
             "ledger_outbox_put");
        must(l,
             ledger_fx_resolve(l, other, t.fx_id, hash, STATUS_SETTLED, NULL, tev, tev_len, base,
                               &out),
             "ledger_fx_resolve");
    } else {
        t.legs[FX_PAY].direction = t.legs[FX_RECEIVE].direction = DIRECTION_IN;
        must(l, ledger_fx_receive(l, t.legs, CAP_MINOR, NULL, NULL, sev, sev_len, base, &out),
             "ledger_fx_receive");
        assert(out.status == STATUS_SETTLED);
        for (int i = 0; i < 2; i++) {
            must(l, ledger_set_reply(l, other, t.legs[i].uetr, tev, tev_len, base),
                 "ledger_set_reply (trade)");
        }
    }
    free(sev);
    free(tev);
}

/* n's books. The fixture (SELF_NAME) has every settlement; the seed generator's second node
 * (PEER_NAME) mirrors them except that kind 0 is booked there, it lacks LACKED_INDEX and has
 * EXTRAS pending settlements of its own that the fixture lacks. */
static void populate(node_t *n, bool is_self)
{
    ledger_t *l = n->ledger;
    const char *other = is_self ? PEER_NAME : SELF_NAME;
    uint64_t sent = 0, received = 0;
    must(l, ledger_begin(l), "begin");
    for (unsigned i = 0; i < ENTRIES; i++) {
        unsigned kind = entry_kind(i);
        bool self_pays = kind == 0 || kind == 1 || kind == 2 || kind == 5;
        if (!is_self && i == LACKED_INDEX) {
            continue;
        }
        bool payer_here = self_pays == is_self;
        received += !payer_here;
        received += payer_here && returned_in_part(n, i, kind); /* the peer's Return */
        record(n, i, kind, payer_here, other, n->other_id, &sent);
    }
    for (unsigned k = 0; k < TRADES; k++) {
        bool proposer_here = (k % 2 == 0) == is_self;
        if ((!is_self && k == TRADE_LACKED) || (is_self && k == TRADE_SELF_LACKED)) {
            continue;
        }
        received += !proposer_here; /* the peer's FxProposal */
        record_trade(n, k, proposer_here, other, &sent);
    }
    if (is_self) {
        identity_t *third = fuzz_identity(2);
        for (unsigned i = THIRD_FIRST; i < THIRD_FIRST + THIRD_COUNT; i++) {
            record(n, i, i % 2 ? 3 : 1, i % 2 == 0, THIRD_NAME, third, &sent);
        }
        sodium_free(third);
    } else {
        for (unsigned i = EXTRA_FIRST; i < EXTRA_FIRST + EXTRAS; i++) {
            record(n, i, KIND_UNSENT, true, other, n->other_id, &sent);
        }
    }
    must(l, ledger_channel_set_acked(l, other, sent > 2 ? sent - 2 : 0), "set acked");
    /* the other side's signed message of sequence `received`, as channel_apply keeps it */
    static const uint8_t proof_body[] = "applied";
    size_t proof_len = 0;
    uint8_t *proof = received > 0 ? sign_body(n->other_id, n->id, MSG_SETTLEMENT, received,
                                              proof_body, sizeof proof_body, &proof_len)
                                  : NULL;
    must(l, ledger_channel_set_applied(l, other, received, proof, proof_len), "set applied");
    free(proof);
    must(l, ledger_commit(l), "commit");
    channel_reload(n->channel);
}

/* ---- reading what a node sent -------------------------------------------------------------- */

/* Opens n's last request as the other node (its identity `other_self`, its view of n
 * `other_keys`) would, and reads its id and checkpoint (and body, if body_out is not NULL);
 * false if n sent none. Aborts if what n's channel sent does not open or decode there. */
static bool read_request(const node_t *n, const identity_t *other_self,
                         const envelope_peer_t *other_keys, request_seen_t *seen,
                         uint8_t **body_out, size_t *body_len_out)
{
    memset(seen, 0, sizeof *seen);
    if (n->request == NULL) {
        return false;
    }
    envelope_message_t msg;
    if (envelope_open(n->request, n->request_len, other_self, other_keys, 1, &msg) != ENV_OK ||
        msg.type != MSG_STATEMENT_REQUEST) {
        fail("a request the channel sent does not open at the peer");
    }
    Corridor__StatementRequest *req = (Corridor__StatementRequest *)wire_unpack(
        &corridor__statement_request__descriptor, msg.body_len, msg.body);
    if (req == NULL || req->request_id == NULL || strlen(req->request_id) >= sizeof seen->id) {
        fail("a request the session sent does not decode at the peer");
    }
    snprintf(seen->id, sizeof seen->id, "%s", req->request_id);
    if (req->checkpoint.len > 0) {
        seen->checkpoint = malloc(req->checkpoint.len);
        if (seen->checkpoint == NULL) {
            fail("out of memory");
        }
        memcpy(seen->checkpoint, req->checkpoint.data, req->checkpoint.len);
        seen->checkpoint_len = req->checkpoint.len;
    }
    corridor__statement_request__free_unpacked(req, NULL);
    if (body_out != NULL) {
        *body_out = msg.body;
        *body_len_out = msg.body_len;
        msg.body = NULL;
    }
    envelope_message_clear(&msg);
    return true;
}

/* ---- oracles ------------------------------------------------------------------------------- */

typedef struct {
    node_t *n;
    const char *prefix;
    uint64_t count;
    uint8_t sum[DIGEST_BYTES];
    char last[CORRIDOR_UETR_LEN + 1];
    size_t evidence; /* check the evidence of this many entries (signatures are slow) */
} sum_acc_t;

static const identity_t *key_of(node_t *n, const char *name)
{
    if (strcmp(name, n->name) == 0) {
        return n->id;
    }
    return strcmp(name, n->config->peers[0].card.name) == 0 ? n->other_id : NULL;
}

static void check_evidence(node_t *n, const statement_entry_t *e)
{
    uint8_t *sev = NULL, *tev = NULL;
    size_t sev_len = 0, tev_len = 0;
    must(n->ledger,
         statement_evidence(n->ledger, n->config->peers[0].card.name, e->uetr, &sev, &sev_len, &tev,
                            &tev_len),
         "statement_evidence");
    envelope_message_t msg;
    const identity_t *payer = key_of(n, e->payer), *payee = key_of(n, e->payee);
    assert(payer != NULL && payee != NULL);
    assert(sev_len > 0);
    if (statement_entry_is_fx_leg(e) &&
        evidence_verify(sev, sev_len, payer->sign_public, &msg) != ENV_OK) {
        /* an FX leg opens with its proposer's FxProposal: the leg the acceptor pays */
        const identity_t *proposer = payee;
        payee = payer;
        payer = proposer;
    } else if (statement_entry_is_fx_leg(e)) {
        envelope_message_clear(&msg);
    }
    assert(evidence_verify(sev, sev_len, payer->sign_public, &msg) == ENV_OK);
    assert(msg.type == (statement_entry_is_fx_leg(e)   ? MSG_FX_PROPOSAL
                        : statement_entry_is_return(e) ? MSG_RETURN
                                                       : MSG_SETTLEMENT));
    envelope_message_clear(&msg);
    if (strcmp(e->status, "pending") == 0) {
        assert(tev_len == 0);
    } else {
        assert(tev_len > 0);
        assert(evidence_verify(tev, tev_len, payee->sign_public, &msg) == ENV_OK);
        assert(msg.type == MSG_STATUS_REPORT);
        envelope_message_clear(&msg);
    }
    free(sev);
    free(tev);
}

static bool sum_entry(const statement_entry_t *e, void *arg)
{
    sum_acc_t *acc = arg;
    assert(has_prefix(e->uetr, acc->prefix));
    assert(strcmp(acc->last, e->uetr) < 0); /* UETR order, each once */
    snprintf(acc->last, sizeof acc->last, "%s", e->uetr);
    assert(key_of(acc->n, e->payer) != NULL && key_of(acc->n, e->payee) != NULL);
    assert(strcmp(e->payer, e->payee) != 0);
    statement_entry_t back; /* both forms are zero-filled: the round trip is exact */
    Corridor__StatementEntry proto;
    statement_entry_to_proto(e, &proto);
    assert(statement_entry_from_proto(&proto, &back));
    assert(memcmp(&back, e, sizeof back) == 0);
    uint8_t h[DIGEST_BYTES];
    statement_entry_hash(e, h); /* digest_return_entry for a return, as canon_hash */
    digest_add(acc->sum, h);
    acc->count++;
    if (acc->evidence > 0) {
        check_evidence(acc->n, e);
        acc->evidence--;
    }
    return true;
}

/* The range's fingerprint is the sum of its entries' canonical hashes and of its sub-ranges. */
static void check_range(node_t *n, const char *prefix, size_t evidence)
{
    ledger_t *l = n->ledger;
    const char *peer = n->config->peers[0].card.name;
    range_fp_t fp;
    must(l, statement_fingerprint(l, peer, prefix, &fp), "statement_fingerprint");
    assert(strcmp(fp.prefix, prefix) == 0);
    sum_acc_t acc = {.n = n, .prefix = prefix, .evidence = evidence};
    must(l, statement_entries(l, peer, prefix, sum_entry, &acc), "statement_entries");
    assert(acc.count == fp.count);
    assert(memcmp(acc.sum, fp.sum, DIGEST_BYTES) == 0);
    if (strlen(prefix) < STATEMENT_PREFIX_MAX) {
        range_fp_t children[16];
        must(l, statement_children(l, peer, prefix, children), "statement_children");
        uint8_t sum[DIGEST_BYTES] = {0};
        uint64_t count = 0;
        for (size_t d = 0; d < 16; d++) {
            assert(strlen(children[d].prefix) == strlen(prefix) + 1);
            assert(has_prefix(children[d].prefix, prefix));
            digest_add(sum, children[d].sum);
            count += children[d].count;
        }
        assert(count == fp.count);
        assert(memcmp(sum, fp.sum, DIGEST_BYTES) == 0);
    }
}

/* What recon_answer produced must decode and describe this node's channel. */
static void check_answer(node_t *n, const Corridor__StatementRequest *req, const uint8_t *body,
                         size_t len)
{
    assert(len <= CORRIDOR_BODY_BYTES_MAX); /* else the daemon could not seal it */
    Corridor__Statement *st =
        (Corridor__Statement *)wire_unpack(&corridor__statement__descriptor, len, body);
    assert(st != NULL);
    assert(strcmp(st->request_id, req->request_id != NULL ? req->request_id : "") == 0);
    assert(st->answered <= req->n_ranges && st->answered <= STATEMENT_RANGES_MAX);
    range_fp_t whole;
    must(n->ledger, statement_fingerprint(n->ledger, n->config->peers[0].card.name, "", &whole),
         "statement_fingerprint");
    assert(st->entry_count == whole.count);
    assert(st->channel_digest.len == DIGEST_BYTES &&
           memcmp(st->channel_digest.data, whole.sum, DIGEST_BYTES) == 0);
    assert(st->journal_head.len == LEDGER_HASH_BYTES);
    for (size_t i = 0; i < st->n_entries; i++) {
        bool under_leaf = false;
        for (size_t k = 0; k < st->n_leaves && !under_leaf; k++) {
            under_leaf = has_prefix(st->entries[i]->uetr, st->leaves[k]);
        }
        assert(under_leaf);
        assert(key_of(n, st->entries[i]->payer) != NULL);
    }
    for (size_t i = 0; i < st->n_ranges; i++) {
        assert(statement_prefix_valid(st->ranges[i]->prefix));
        assert(st->ranges[i]->sum.len == DIGEST_BYTES);
    }
    /* a re-base answer shows the peer's own message of the sequence it states we applied */
    if (st->applied_proof.len > 0) {
        envelope_message_t m;
        assert(evidence_verify(st->applied_proof.data, st->applied_proof.len,
                               n->other_id->sign_public, &m) == ENV_OK);
        assert(m.sequence == st->applied_sequence);
        assert(memcmp(m.recipient_key_id, n->id->key_id, IDENTITY_KEY_ID_BYTES) == 0);
        envelope_message_clear(&m);
    }
    assert(st->sent_sequence <= CORRIDOR_SEQUENCE_MAX &&
           st->applied_sequence <= CORRIDOR_SEQUENCE_MAX);
    /* refused imports: bounded, each a valid UETR the repair offered, with a reason */
    assert(st->n_refused_imports <= REPAIR_CHUNK_MAX);
    for (size_t i = 0; i < st->n_refused_imports; i++) {
        const Corridor__RefusedImport *ri = st->refused_imports[i];
        assert(uetr_check(ri->uetr) == VALID_OK && ri->reason[0] != '\0');
        bool offered = false;
        for (size_t k = 0; req->repair != NULL && k < req->repair->n_imports && !offered; k++) {
            offered = req->repair->imports[k]->uetr != NULL &&
                      strcmp(req->repair->imports[k]->uetr, ri->uetr) == 0;
        }
        assert(offered);
    }
    corridor__statement__free_unpacked(st, NULL);
}

/* Whatever the peer sent: counters at most 2^62 and acknowledged at most sent, in memory and
 * in the books (read inside the input's transaction). */
static void check_counters(node_t *n)
{
    channel_stats_t cs = channel_stats(n->channel);
    assert(cs.sent_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(cs.acked_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(cs.applied_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(cs.acked_seq <= cs.sent_seq);
    ledger_channel_t saved;
    must(n->ledger, ledger_channel_get(n->ledger, n->config->peers[0].card.name, &saved),
         "ledger_channel_get");
    assert(saved.sent_seq <= CORRIDOR_SEQUENCE_MAX && saved.applied_seq <= CORRIDOR_SEQUENCE_MAX);
    assert(saved.acked_seq <= saved.sent_seq);
}

/* ---- input-driven signing ------------------------------------------------------------------ */

static void replace_bytes(ProtobufCBinaryData *field, uint8_t *data, size_t len)
{
    free(field->data); /* wire_unpack allocates with malloc (wire.h) */
    field->data = data;
    field->len = len;
}

/* Signs an entry's evidence bytes as the payer's Settlement (a return's: the returner's
 * Return) and the payee's StatusReport. */
static void sign_entry(node_t *n, Corridor__StatementEntry *p)
{
    bool is_return = p->original_uetr != NULL && p->original_uetr[0] != '\0';
    const identity_t *payer = p->payer != NULL ? key_of(n, p->payer) : NULL;
    if (payer == NULL) {
        payer = n->other_id;
    }
    const identity_t *payee = payer == n->id ? n->other_id : n->id;
    size_t len = 0;
    if (p->settlement_evidence.len > 0) {
        uint8_t *s = sign_body(payer, payee, is_return ? MSG_RETURN : MSG_SETTLEMENT, 1,
                               p->settlement_evidence.data, p->settlement_evidence.len, &len);
        if (s != NULL) {
            replace_bytes(&p->settlement_evidence, s, len);
        }
    }
    if (p->status_evidence.len > 0) {
        uint8_t *s = sign_body(payee, payer, MSG_STATUS_REPORT, 1, p->status_evidence.data,
                               p->status_evidence.len, &len);
        if (s != NULL) {
            replace_bytes(&p->status_evidence, s, len);
        }
    }
}

static void sign_entries(node_t *n, Corridor__StatementEntry **entries, size_t count)
{
    for (size_t i = 0; i < count && i < SIGN_MAX; i++) {
        sign_entry(n, entries[i]);
    }
}

/* Signs a proof template (fuzz_proof.h) as node n would have signed its message to the peer. */
static void sign_proof(node_t *n, ProtobufCBinaryData *proof)
{
    uint64_t seq = 0;
    bool genuine = false;
    (void)fuzz_sign_proof(n->id, n->other_id, third_id, proof, &seq, &genuine);
}

/* A proposer knows this node's journal head from its statement, but the fixture's head
 * differs from run to run (journal rows carry the time): when the checkpoint names one of this
 * node's journal rows, its head for this node becomes that row's hash. */
static void fill_own_head(node_t *n, ProtobufCBinaryData *checkpoint)
{
    Corridor__Checkpoint *cp = (Corridor__Checkpoint *)wire_unpack(
        &corridor__checkpoint__descriptor, checkpoint->len, checkpoint->data);
    if (cp == NULL) {
        return;
    }
    bool first = strcmp(cp->first, n->name) == 0;
    uint64_t rows = first ? cp->first_rows : cp->second_rows;
    uint8_t *head = malloc(LEDGER_HASH_BYTES);
    if (head == NULL) {
        fail("out of memory");
    }
    if (rows > 0 && ledger_row_hash_at(n->ledger, rows, head) == LEDGER_OK) {
        replace_bytes(first ? &cp->first_head : &cp->second_head, head, LEDGER_HASH_BYTES);
        size_t len = corridor__checkpoint__get_packed_size(cp);
        uint8_t *body = malloc(len);
        if (body == NULL) {
            fail("out of memory");
        }
        corridor__checkpoint__pack(cp, body);
        replace_bytes(checkpoint, body, len);
    } else {
        free(head);
    }
    corridor__checkpoint__free_unpacked(cp, NULL);
}

static void set_diverged(node_t *n)
{
    must(n->ledger, ledger_channel_set_diverged(n->ledger, n->config->peers[0].card.name, true),
         "set diverged");
    channel_reload(n->channel);
}

static void end_input(node_t *n)
{
    ledger_rollback(n->ledger);
    channel_reload(n->channel);
    forget_request(n);
    assert(!ledger_stopped(n->ledger)); /* no input may stop the books */
}

/* ---- the three paths ----------------------------------------------------------------------- */

static void run_responder(unsigned flags, const uint8_t *data, size_t size)
{
    node_t *n = &self_node;
    Corridor__StatementRequest *req = (Corridor__StatementRequest *)wire_unpack(
        &corridor__statement_request__descriptor, size, data);
    if (req == NULL) {
        return;
    }
    must(n->ledger, ledger_begin(n->ledger), "begin");
    if (flags & DIVERGED) {
        set_diverged(n);
    }
    if (flags & NO_PROOF) {
        ledger_channel_t ch;
        must(n->ledger, ledger_channel_get(n->ledger, PEER_NAME, &ch), "ledger_channel_get");
        must(n->ledger, ledger_channel_set_applied(n->ledger, PEER_NAME, ch.applied_seq, NULL, 0),
             "set applied");
        channel_reload(n->channel);
    }
    if ((flags & SIGN_EVIDENCE) && req->repair != NULL) {
        sign_entries(n, req->repair->imports, req->repair->n_imports);
    }
    if (req->repair != NULL) {
        sign_proof(n, &req->repair->applied_proof);
    }
    if ((flags & SIGN_CHECKPOINT) && req->checkpoint.len > 0) {
        fill_own_head(n, &req->checkpoint);
        uint8_t *sig = malloc(crypto_sign_BYTES);
        if (sig == NULL) {
            fail("out of memory");
        }
        sign_checkpoint_as(n->other_id, req->checkpoint.data, req->checkpoint.len, sig);
        replace_bytes(&req->checkpoint_signature, sig, crypto_sign_BYTES);
    }
    uint8_t *body = NULL;
    size_t len = 0;
    bool rebased = false;
    uint64_t work = 0;
    ledger_err_t rc = recon_answer(&n->ctx, req, &body, &len, &rebased, &work);
    assert((rc == LEDGER_OK) == (body != NULL));
    if (body != NULL) {
        check_answer(n, req, body, len);
    }
    if (rc == LEDGER_OK && (req->repair != NULL || req->checkpoint.len > 0)) {
        check_range(n, "", 0); /* the digest kept in O(1) still sums the entries */
    }
    free(body);
    corridor__statement_request__free_unpacked(req, NULL);
    if (rebased) {
        channel_reload(n->channel);
        assert(!channel_is_diverged(n->channel)); /* a re-base reopens the channel */
    }
    if (rc == LEDGER_OK) {
        check_counters(n);
    }
    end_input(n);
}

static void run_initiator(unsigned flags, const uint8_t *data, size_t size)
{
    node_t *n = &self_node;
    must(n->ledger, ledger_begin(n->ledger), "begin");
    if (flags & DIVERGED) {
        set_diverged(n);
    }
    int64_t now = START_MS;
    recon_t *r = recon_new(&n->ctx, (flags & REPAIR) != 0, now);
    assert(r != NULL);
    forget_request(n);
    recon_tick(r, now);
    bool failed = false; /* a turn the daemon would roll back */
    for (unsigned round = 0; round < ROUNDS_MAX && size >= 2 && !recon_done(r); round++) {
        size_t len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (len > size) {
            len = size;
        }
        const uint8_t *chunk = data;
        data += len;
        size -= len;
        request_seen_t seen;
        bool outstanding = recon_deadline(r) != 0;
        /* what the session waits for was sent, and opens and decodes at the peer */
        bool sent = read_request(n, n->other_id, peer_node.keys, &seen, NULL, NULL);
        assert(sent || !outstanding);
        Corridor__Statement *st =
            (Corridor__Statement *)wire_unpack(&corridor__statement__descriptor, len, chunk);
        if (st != NULL) {
            char *own_id = st->request_id;
            if (!(flags & KEEP_ID) && outstanding) {
                st->request_id = seen.id;
            }
            if (flags & SIGN_EVIDENCE) {
                sign_entries(n, st->entries, st->n_entries);
            }
            sign_proof(n, &st->applied_proof);
            if ((flags & SIGN_CHECKPOINT) && seen.checkpoint != NULL) {
                uint8_t *sig = malloc(crypto_sign_BYTES);
                if (sig == NULL) {
                    fail("out of memory");
                }
                sign_checkpoint_as(n->other_id, seen.checkpoint, seen.checkpoint_len, sig);
                replace_bytes(&st->checkpoint_signature, sig, crypto_sign_BYTES);
            }
            bool answers = outstanding && strcmp(st->request_id, seen.id) == 0;
            uint64_t sent_before = n->requests_sent;
            ledger_err_t rc = recon_on_statement(r, st, now);
            st->request_id = own_id;
            corridor__statement__free_unpacked(st, NULL);
            if (rc != LEDGER_OK) {
                free(seen.checkpoint);
                failed = true;
                break; /* the daemon rolls the turn back */
            }
            /* a new request the session waits for must have gone out */
            assert(!answers || recon_deadline(r) == 0 || n->requests_sent > sent_before);
        }
        free(seen.checkpoint);
        now += (flags & RETRY) ? RECON_RETRY_MS : ROUND_MS;
        recon_tick(r, now);
    }
    json_t *report = recon_report(r);
    assert(report != NULL);
    assert(strcmp(json_string_value(json_object_get(report, "peer")), PEER_NAME) == 0);
    json_decref(report);
    bool rebased = recon_rebased(r);
    recon_destroy(&r);
    if (rebased) {
        channel_reload(n->channel);
    }
    if (!failed) {
        check_counters(n);
    }
    end_input(n);
}

static void run_statements(const uint8_t *data, size_t size)
{
    node_t *n = &self_node;
    char prefix[STATEMENT_PREFIX_MAX + 2];
    size_t len = 0;
    while (len < size && len < sizeof prefix - 1 && data[len] != 0) {
        prefix[len] = (char)data[len];
        len++;
    }
    prefix[len] = '\0';
    if (!statement_prefix_valid(prefix)) {
        return;
    }
    check_range(n, prefix, EVIDENCE_CHECKS);
    if (len < size) { /* after the NUL: a UETR (any text) to look up */
        char uetr[CORRIDOR_UETR_LEN + 2];
        size_t ulen = size - len - 1 < sizeof uetr - 1 ? size - len - 1 : sizeof uetr - 1;
        memcpy(uetr, data + len + 1, ulen);
        uetr[ulen] = '\0';
        uint8_t *sev = NULL, *tev = NULL;
        size_t sev_len = 0, tev_len = 0;
        ledger_err_t rc =
            statement_evidence(n->ledger, PEER_NAME, uetr, &sev, &sev_len, &tev, &tev_len);
        assert(rc == LEDGER_OK || rc == LEDGER_E_NOT_FOUND);
        assert(rc == LEDGER_OK || (sev == NULL && tev == NULL));
        free(sev);
        free(tev);
    }
    assert(!ledger_stopped(n->ledger));
}

/* ---- the seed corpus ----------------------------------------------------------------------- */

static unsigned seeds_written;

static void write_seed(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    if (seeds_written >= SEED_FILES_MAX) {
        fail("too many seed files");
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fail("cannot write a seed");
    }
    seeds_written++;
    printf("  %-40s %zu bytes\n", name, len);
}

/* A growing byte buffer. */
typedef struct {
    uint8_t *data;
    size_t len;
} buf_t;

static void buf_add(buf_t *b, const uint8_t *data, size_t len)
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

static void buf_chunk(buf_t *b, const uint8_t *data, size_t len)
{
    assert(len <= 0xffff);
    uint8_t hdr[2] = {(uint8_t)len, (uint8_t)(len >> 8)};
    buf_add(b, hdr, 2);
    buf_add(b, data, len);
}

/* How the answering side of a seed session answers one request body. */
typedef enum {
    ANSWER_PEER_BOOKS,
    ANSWER_OWN_BOOKS,
    ANSWER_OWN_BOOKS_INT64_MIN, /* as ANSWER_OWN_BOOKS, every position stated as INT64_MIN */
} answerer_t;

/* When not 0: the seed session's re-base answer (a Statement with counters) carries, instead
 * of the answering node's proof, a template (fuzz_proof.h) of the initiator's Settlement of
 * this sequence: the chunk keeps the template, the live session sees it signed. */
static uint64_t craft_proof_seq;

/* Answers as a peer whose books equal `n`'s: statement_answer on n's own ledger (canonical
 * hashes name payer and payee, so both sides' digests agree), positions mirrored. */
static void answer_own_books(node_t *n, const Corridor__StatementRequest *req, bool int64_min,
                             uint8_t **body, size_t *len)
{
    Corridor__Statement st;
    uint64_t work = 0;
    if (req->checkpoint.len > 0) { /* the countersignature is added by SIGN_CHECKPOINT */
        corridor__statement__init(&st);
        st.request_id = req->request_id;
        *len = corridor__statement__get_packed_size(&st);
        *body = malloc(*len);
        if (*body == NULL) {
            fail("out of memory");
        }
        corridor__statement__pack(&st, *body);
        return;
    }
    must(n->ledger, statement_answer(n->ledger, PEER_NAME, req, &st, &work), "statement_answer");
    for (size_t i = 0; i < st.n_positions; i++) {
        st.positions[i]->net_minor = int64_min ? INT64_MIN : -st.positions[i]->net_minor;
    }
    *len = corridor__statement__get_packed_size(&st);
    *body = malloc(*len);
    if (*body == NULL) {
        fail("out of memory");
    }
    corridor__statement__pack(&st, *body);
    statement_release(&st);
}

/* Runs a whole session, both sides inside transactions rolled back at the end: `init`
 * reconciles against `resp`, which answers from its own books (or, ANSWER_OWN_BOOKS, from
 * init's). Appends each answer as a length-prefixed chunk to `answers` (an initiator seed), and
 * the request of round k to requests[k] when that is not NULL (responder seeds). */
static void session(node_t *init, node_t *resp, answerer_t answerer, bool repair, bool diverged,
                    buf_t *answers, buf_t *requests[], size_t requests_max)
{
    int64_t now = START_MS;
    must(init->ledger, ledger_begin(init->ledger), "begin");
    if (resp != init) {
        must(resp->ledger, ledger_begin(resp->ledger), "begin");
    }
    if (diverged) {
        set_diverged(init);
        if (resp != init) {
            set_diverged(resp);
        }
    }
    recon_t *r = recon_new(&init->ctx, repair, now);
    assert(r != NULL);
    forget_request(init);
    recon_tick(r, now);
    for (size_t round = 0; round < ROUNDS_MAX && !recon_done(r); round++) {
        request_seen_t seen;
        uint8_t *req_body = NULL;
        size_t req_len = 0;
        node_t *reader = resp != init ? resp : &peer_node;
        if (!read_request(init, reader->id, reader->keys, &seen, &req_body, &req_len)) {
            break;
        }
        if (requests != NULL && round < requests_max && requests[round] != NULL) {
            buf_add(requests[round], req_body, req_len);
        }
        Corridor__StatementRequest *req = (Corridor__StatementRequest *)wire_unpack(
            &corridor__statement_request__descriptor, req_len, req_body);
        assert(req != NULL);
        uint8_t *body = NULL;
        size_t len = 0;
        if (answerer != ANSWER_PEER_BOOKS) {
            answer_own_books(init, req, answerer == ANSWER_OWN_BOOKS_INT64_MIN, &body, &len);
        } else {
            bool rebased = false;
            uint64_t work = 0;
            must(resp->ledger, recon_answer(&resp->ctx, req, &body, &len, &rebased, &work),
                 "recon_answer");
        }
        corridor__statement_request__free_unpacked(req, NULL);
        free(req_body);
        Corridor__Statement *st =
            (Corridor__Statement *)wire_unpack(&corridor__statement__descriptor, len, body);
        assert(st != NULL);
        if (craft_proof_seq != 0 && (st->sent_sequence != 0 || st->applied_sequence != 0)) {
            uint8_t *t = malloc(FUZZ_PROOF_HEADER);
            if (t == NULL) {
                fail("out of memory");
            }
            fuzz_proof_template(t, MSG_SETTLEMENT, 0, craft_proof_seq);
            replace_bytes(&st->applied_proof, t, FUZZ_PROOF_HEADER);
            free(body);
            len = corridor__statement__get_packed_size(st);
            body = malloc(len);
            if (body == NULL) {
                fail("out of memory");
            }
            corridor__statement__pack(st, body);
            sign_proof(init, &st->applied_proof); /* as the harness will */
        }
        if (answers != NULL) {
            buf_chunk(answers, body, len);
        }
        if (seen.checkpoint != NULL) {
            uint8_t *sig = malloc(crypto_sign_BYTES);
            if (sig == NULL) {
                fail("out of memory");
            }
            sign_checkpoint_as(init->other_id, seen.checkpoint, seen.checkpoint_len, sig);
            replace_bytes(&st->checkpoint_signature, sig, crypto_sign_BYTES);
        }
        forget_request(init);
        must(init->ledger, recon_on_statement(r, st, now), "recon_on_statement");
        corridor__statement__free_unpacked(st, NULL);
        free(body);
        free(seen.checkpoint);
        now += ROUND_MS;
        recon_tick(r, now);
    }
    json_t *report = recon_report(r);
    char *text = json_dumps(report, JSON_COMPACT);
    printf("  session %s -> %s: %s\n", init->name, resp->name, text != NULL ? text : "?");
    free(text);
    json_decref(report);
    recon_destroy(&r);
    end_input(init);
    if (resp != init) {
        end_input(resp);
    }
}

static void write_initiator_seed(const char *dir, const char *name, unsigned flags, buf_t *b)
{
    buf_t out = {0};
    uint8_t first = (uint8_t)(PATH_INITIATOR | flags);
    buf_add(&out, &first, 1);
    buf_add(&out, b->data, b->len);
    write_seed(dir, name, out.data, out.len);
    free(out.data);
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void write_request_seed(const char *dir, const char *name, unsigned flags,
                               Corridor__StatementRequest *req)
{
    size_t len = corridor__statement_request__get_packed_size(req);
    uint8_t *out = malloc(len + 1);
    if (out == NULL) {
        fail("out of memory");
    }
    out[0] = (uint8_t)(PATH_RESPONDER | flags);
    corridor__statement_request__pack(req, out + 1);
    write_seed(dir, name, out, len + 1);
    free(out);
}

static void write_raw_request_seed(const char *dir, const char *name, unsigned flags, buf_t *b)
{
    buf_t out = {0};
    uint8_t first = (uint8_t)(PATH_RESPONDER | flags);
    buf_add(&out, &first, 1);
    buf_add(&out, b->data, b->len);
    write_seed(dir, name, out.data, out.len);
    free(out.data);
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void crafted_request_seeds(const char *dir)
{
    node_t *n = &self_node;
    range_fp_t whole;
    must(n->ledger, statement_fingerprint(n->ledger, PEER_NAME, "", &whole), "fingerprint");

    Corridor__RangeFingerprint fps[16];
    Corridor__RangeFingerprint *ptrs[16];
    char prefixes[16][STATEMENT_PREFIX_MAX + 2];
    for (size_t i = 0; i < 16; i++) {
        corridor__range_fingerprint__init(&fps[i]);
        ptrs[i] = &fps[i];
    }
    Corridor__StatementRequest req = CORRIDOR__STATEMENT_REQUEST__INIT;

    /* the whole channel, a different fingerprint: answered with 16 sub-ranges */
    req.request_id = "seed-whole";
    fps[0].prefix = "";
    fps[0].count = 0;
    req.n_ranges = 1;
    req.ranges = ptrs;
    write_request_seed(dir, "responder-whole-differs", 0, &req);

    /* every one-digit range with evidence: answered with leaves */
    req.request_id = "seed-leaves";
    req.with_evidence = true;
    for (size_t i = 0; i < 16; i++) {
        snprintf(prefixes[i], sizeof prefixes[i], "%x", (unsigned)i);
        fps[i].prefix = prefixes[i];
        fps[i].count = 1;
    }
    req.n_ranges = 16;
    write_request_seed(dir, "responder-leaves-evidence", 0, &req);
    req.with_evidence = false;

    /* odd prefixes: two digits, the longest, too long, not hex, and the equal whole */
    ProtobufCBinaryData sum = {DIGEST_BYTES, whole.sum};
    const char *odd[] = {"3f", "12345678", "123456789", "G", "", "f"};
    for (size_t i = 0; i < 6; i++) {
        corridor__range_fingerprint__init(&fps[i]);
        fps[i].prefix = (char *)odd[i];
    }
    fps[4].count = whole.count;
    fps[4].sum = sum;
    req.request_id = "seed-odd";
    req.n_ranges = 6;
    write_request_seed(dir, "responder-odd-prefixes", 0, &req);

    /* a checkpoint proposal that matches the books (the harness signs it as the peer) */
    Corridor__Checkpoint cp = CORRIDOR__CHECKPOINT__INIT;
    uint8_t head[LEDGER_HASH_BYTES], peer_head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    must(n->ledger, ledger_head(n->ledger, head, &rows), "ledger_head");
    memset(peer_head, 0x5a, sizeof peer_head);
    Corridor__Position **positions = NULL;
    size_t n_positions = 0;
    must(n->ledger, statement_positions(n->ledger, PEER_NAME, &positions, &n_positions),
         "statement_positions");
    cp.first = SELF_NAME; /* it sorts first */
    cp.second = PEER_NAME;
    cp.first_rows = rows;
    cp.first_head = (ProtobufCBinaryData){sizeof head, head};
    cp.second_rows = 77;
    cp.second_head = (ProtobufCBinaryData){sizeof peer_head, peer_head};
    cp.channel_digest = (ProtobufCBinaryData){DIGEST_BYTES, whole.sum};
    cp.entry_count = whole.count;
    cp.n_positions = n_positions;
    cp.positions = positions;
    cp.created_unix_ms = INT64_C(1767225600000);
    size_t cp_len = corridor__checkpoint__get_packed_size(&cp);
    uint8_t *cp_body = malloc(cp_len);
    if (cp_body == NULL) {
        fail("out of memory");
    }
    corridor__checkpoint__pack(&cp, cp_body);
    statement_free_positions(positions, n_positions);
    uint8_t zero_sig[crypto_sign_BYTES] = {0};
    Corridor__StatementRequest creq = CORRIDOR__STATEMENT_REQUEST__INIT;
    creq.request_id = "seed-checkpoint";
    creq.checkpoint = (ProtobufCBinaryData){cp_len, cp_body};
    creq.checkpoint_signature = (ProtobufCBinaryData){sizeof zero_sig, zero_sig};
    write_request_seed(dir, "responder-checkpoint", SIGN_CHECKPOINT, &creq);
    free(cp_body);

    /* the same proposal with every position INT64_MIN (never negated: position_mirrors) */
    must(n->ledger, statement_positions(n->ledger, PEER_NAME, &positions, &n_positions),
         "statement_positions");
    for (size_t i = 0; i < n_positions; i++) {
        positions[i]->net_minor = INT64_MIN;
    }
    cp.n_positions = n_positions;
    cp.positions = positions;
    cp_len = corridor__checkpoint__get_packed_size(&cp);
    cp_body = malloc(cp_len);
    if (cp_body == NULL) {
        fail("out of memory");
    }
    corridor__checkpoint__pack(&cp, cp_body);
    statement_free_positions(positions, n_positions);
    creq.request_id = "seed-checkpoint-int64-min";
    creq.checkpoint = (ProtobufCBinaryData){cp_len, cp_body};
    write_request_seed(dir, "responder-checkpoint-int64min", SIGN_CHECKPOINT, &creq);
    free(cp_body);

    /* proposals at a sequence cut: at the channel's own counters, as the node computes the
     * channel there (it matches), and the same with the peer's stream ahead of what it applied */
    ledger_channel_t ch;
    ledger_cut_t cut;
    must(n->ledger, ledger_channel_get(n->ledger, PEER_NAME, &ch), "ledger_channel_get");
    must(n->ledger, ledger_channel_at_cut(n->ledger, PEER_NAME, ch.sent_seq, ch.applied_seq, &cut),
         "ledger_channel_at_cut");
    Corridor__Position cut_items[CORRIDOR_CURRENCIES_MAX];
    Corridor__Position *cut_positions[CORRIDOR_CURRENCIES_MAX];
    assert(cut.n_positions <= CORRIDOR_CURRENCIES_MAX);
    for (size_t i = 0; i < cut.n_positions; i++) {
        corridor__position__init(&cut_items[i]);
        cut_items[i].currency = cut.positions[i].currency;
        cut_items[i].net_minor = cut.positions[i].net_minor;
        cut_positions[i] = &cut_items[i];
    }
    cp.channel_digest = (ProtobufCBinaryData){DIGEST_BYTES, cut.digest};
    cp.entry_count = cut.entries;
    cp.n_positions = cut.n_positions;
    cp.positions = cut_positions;
    cp.at_cut = true;
    cp.first_sent = ch.sent_seq;
    for (int ahead = 0; ahead < 2; ahead++) {
        cp.second_sent = ch.applied_seq + (ahead ? 3 : 0);
        cp_len = corridor__checkpoint__get_packed_size(&cp);
        cp_body = malloc(cp_len);
        if (cp_body == NULL) {
            fail("out of memory");
        }
        corridor__checkpoint__pack(&cp, cp_body);
        creq.request_id = ahead ? "seed-checkpoint-cut-ahead" : "seed-checkpoint-at-cut";
        creq.checkpoint = (ProtobufCBinaryData){cp_len, cp_body};
        write_request_seed(dir,
                           ahead ? "responder-checkpoint-cut-ahead" : "responder-checkpoint-at-cut",
                           SIGN_CHECKPOINT, &creq);
        free(cp_body);
    }
    ledger_cut_release(&cut);

    /* repair imports whose evidence the harness signs: a new incoming settled payment, a new
     * incoming one still pending at the payer, our pending one the peer settled, a new outgoing
     * one the peer rejected, and one between strangers */
    Corridor__StatementEntry entries[5];
    Corridor__StatementEntry *eptrs[5];
    settlement_t s[5];
    uint8_t *sbody[5] = {NULL}, *tbody[5] = {NULL};
    size_t slen[5] = {0}, tlen[5] = {0};
    const unsigned which[5] = {300, 301, 12, 302, 303};
    const bool self_pays[5] = {false, false, true, true, false};
    const char *status[5] = {"settled", "pending", "settled", "rejected", "settled"};
    for (size_t i = 0; i < 5; i++) {
        settlement_of(which[i], PEER_NAME, self_pays[i] ? DIRECTION_OUT : DIRECTION_IN, &s[i]);
        if (settlement_encode(&s[i], &sbody[i], &slen[i]) != 0) {
            fail("cannot encode");
        }
        Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
        sr.uetr = s[i].uetr;
        sr.status = strcmp(status[i], "rejected") == 0 ? "RJCT" : "ACSC";
        sr.reason = strcmp(status[i], "rejected") == 0 ? "AM04" : "";
        sr.currency = s[i].currency;
        if (strcmp(status[i], "pending") != 0) {
            tlen[i] = corridor__status_report__get_packed_size(&sr);
            tbody[i] = malloc(tlen[i]);
            if (tbody[i] == NULL) {
                fail("out of memory");
            }
            corridor__status_report__pack(&sr, tbody[i]);
        }
        corridor__statement_entry__init(&entries[i]);
        entries[i].uetr = s[i].uetr;
        entries[i].payer = self_pays[i] ? SELF_NAME : PEER_NAME;
        entries[i].payee = self_pays[i] ? PEER_NAME : SELF_NAME;
        entries[i].amount_minor = s[i].amount_minor;
        entries[i].currency = s[i].currency;
        entries[i].status = (char *)status[i];
        entries[i].reason = strcmp(status[i], "rejected") == 0 ? "AM04" : "";
        entries[i].settlement_evidence = (ProtobufCBinaryData){slen[i], sbody[i]};
        entries[i].status_evidence = (ProtobufCBinaryData){tlen[i], tbody[i]};
        eptrs[i] = &entries[i];
    }
    entries[4].payer = THIRD_NAME;
    Corridor__Repair repair = CORRIDOR__REPAIR__INIT;
    repair.n_imports = 5;
    repair.imports = eptrs;
    Corridor__StatementRequest rreq = CORRIDOR__STATEMENT_REQUEST__INIT;
    rreq.request_id = "seed-repair";
    rreq.repair = &repair;
    write_request_seed(dir, "responder-repair-signed", SIGN_EVIDENCE, &rreq);

    /* a re-base after a rollback, with one import */
    repair.n_imports = 1;
    repair.rebase = true;
    repair.sender_sent = 40;
    repair.sender_applied = 50;
    rreq.request_id = "seed-rebase";
    write_request_seed(dir, "responder-rebase-signed", SIGN_EVIDENCE | DIVERGED, &rreq);

    /* re-bases with proofs of what the peer applied (fuzz_proof.h templates, signed by the
     * harness): ours to the peer above what we remember sending (we were restored); one to a
     * third node; a raw message the peer signed itself; a counter of 2^64-1; none at all on
     * a channel that never diverged */
    uint64_t sent = channel_sent_seq(n->channel);
    uint8_t proof[FUZZ_PROOF_HEADER];
    repair.n_imports = 0;
    repair.sender_sent = 30;
    repair.sender_applied = sent + 3;
    fuzz_proof_template(proof, MSG_SETTLEMENT, 0, sent + 3);
    repair.applied_proof = (ProtobufCBinaryData){sizeof proof, proof};
    rreq.request_id = "seed-rebase-proof";
    write_request_seed(dir, "responder-rebase-proof-signed", DIVERGED, &rreq);
    write_request_seed(dir, "responder-rebase-no-own-proof", DIVERGED | NO_PROOF, &rreq);
    fuzz_proof_template(proof, MSG_SETTLEMENT, FUZZ_PROOF_TO_THIRD, sent + 3);
    write_request_seed(dir, "responder-rebase-proof-to-third", DIVERGED, &rreq);
    size_t raw_len = 0;
    uint8_t *raw =
        sign_body(n->other_id, n->id, MSG_SETTLEMENT, sent + 3, proof, sizeof proof, &raw_len);
    if (raw == NULL) {
        fail("cannot sign");
    }
    repair.applied_proof = (ProtobufCBinaryData){raw_len, raw};
    write_request_seed(dir, "responder-rebase-proof-raw", DIVERGED, &rreq);
    free(raw);
    repair.sender_applied = UINT64_MAX;
    fuzz_proof_template(proof, MSG_SETTLEMENT, 0, sent);
    repair.applied_proof = (ProtobufCBinaryData){sizeof proof, proof};
    write_request_seed(dir, "responder-rebase-applied-max", DIVERGED, &rreq);
    repair.sender_applied = 0;
    repair.applied_proof = (ProtobufCBinaryData){0, NULL};
    rreq.request_id = "seed-rebase-unproven";
    write_request_seed(dir, "responder-rebase-not-diverged", 0, &rreq);
    for (size_t i = 0; i < 5; i++) {
        free(sbody[i]);
        free(tbody[i]);
    }
}

static void write_seeds(const char *dir)
{
    printf("fuzz_statement: writing seeds to %s\n", dir);
    node_t *a = &self_node, *b = &peer_node;
    crafted_request_seeds(dir);

    /* B's books differ from A's in known ways; B answers with its own recon_answer */
    buf_t answers = {0};
    session(a, b, ANSWER_PEER_BOOKS, false, false, &answers, NULL, 0);
    write_initiator_seed(dir, "initiator-compare", 0, &answers);
    session(a, b, ANSWER_PEER_BOOKS, true, false, &answers, NULL, 0);
    write_initiator_seed(dir, "initiator-repair", REPAIR, &answers);
    session(a, b, ANSWER_PEER_BOOKS, true, true, &answers, NULL, 0);
    write_initiator_seed(dir, "initiator-repair-diverged", REPAIR | DIVERGED, &answers);

    /* a peer with the same books: equal fingerprints, then a checkpoint */
    session(a, a, ANSWER_OWN_BOOKS, false, false, &answers, NULL, 0);
    write_initiator_seed(dir, "initiator-agree-checkpoint", SIGN_CHECKPOINT, &answers);
    session(a, a, ANSWER_OWN_BOOKS_INT64_MIN, false, false, &answers, NULL, 0);
    write_initiator_seed(dir, "initiator-positions-int64min", 0, &answers);

    /* the peer proves it applied more of ours than we remember sending (a template proof) */
    craft_proof_seq = channel_sent_seq(a->channel) + 2;
    session(a, b, ANSWER_PEER_BOOKS, true, true, &answers, NULL, 0);
    write_initiator_seed(dir, "initiator-repair-diverged-proof", REPAIR | DIVERGED, &answers);
    craft_proof_seq = 0;

    /* B reconciles against A with --repair: its second request (the sub-ranges, with
     * evidence) and third (the repair) are what A's responder sees */
    buf_t ranges = {0}, repair = {0};
    buf_t *reqs[3] = {NULL, &ranges, &repair};
    session(b, a, ANSWER_PEER_BOOKS, true, false, NULL, reqs, 3);
    write_raw_request_seed(dir, "responder-peer-ranges", 0, &ranges);
    write_raw_request_seed(dir, "responder-peer-repair", 0, &repair);
    buf_t *rebase_reqs[3] = {NULL, NULL, &repair};
    session(b, a, ANSWER_PEER_BOOKS, true, true, NULL, rebase_reqs, 3);
    write_raw_request_seed(dir, "responder-peer-rebase", DIVERGED, &repair);

    /* the statement functions: a digit, two digits, the whole channel with a UETR */
    char uetr[CORRIDOR_UETR_LEN + 1];
    uetr_of(6, uetr);
    uint8_t sf[64];
    sf[0] = PATH_STATEMENTS;
    sf[1] = '\0';
    memcpy(sf + 2, uetr, CORRIDOR_UETR_LEN);
    write_seed(dir, "statements-whole-uetr", sf, 2 + CORRIDOR_UETR_LEN);
    const uint8_t two[] = {PATH_STATEMENTS, 'a', '7'};
    write_seed(dir, "statements-prefix", two, sizeof two);
}

/* ---- libFuzzer ------------------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0) {
        fail("sodium_init failed");
    }
    fixture_make_dir("fuzz_statement", FIXTURE_DIR_PREFIX, fixture_nodes,
                     sizeof fixture_nodes / sizeof fixture_nodes[0], tmp_dir, sizeof tmp_dir);
    atexit(cleanup);
    const char *seeds = getenv("FUZZ_STATEMENT_SEEDS");
    identity_t *a_id = fuzz_identity(0), *b_id = fuzz_identity(1);
    third_id = fuzz_identity(2);
    node_open(&self_node, SELF_NAME, a_id, PEER_NAME, b_id);
    node_start_channel(&self_node);
    populate(&self_node, true);
    /* the peer always has its keys (the harness opens the fixture's requests as the peer
     * would); its books are filled only for the seed generator */
    node_open(&peer_node, PEER_NAME, b_id, SELF_NAME, a_id);
    node_start_channel(&peer_node);
    if (seeds != NULL) {
        populate(&peer_node, false);
    }
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned flags = data[0];
    switch (flags & PATH_MASK) {
    case PATH_INITIATOR:
        run_initiator(flags, data + 1, size - 1);
        break;
    case PATH_STATEMENTS:
        run_statements(data + 1, size - 1);
        break;
    default:
        run_responder(flags, data + 1, size - 1);
        break;
    }
    return 0;
}
