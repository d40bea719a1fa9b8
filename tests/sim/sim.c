/*
 * A deterministic simulator of Corridor (issue 16, first slice): 2 to 5 nodes in one process,
 * each with its real keys, config, ledger (SQLite, one file per node in a temporary directory)
 * and engine (node/engine: the loop turn without sockets or clocks), joined by a simulated
 * network, on a simulated clock, with every decision drawn from one seed:
 *
 *   world     node count, topology (which pairs are channels), currencies, caps, checkpoint
 *             spacing, network rates, partitions, crashes and the workload, all from the seed;
 *             every random byte the node code draws (nonces, UETRs) comes from entropy_seed.
 *   network   the engine's send callback puts each sealed frame in flight with a delivery
 *             time; frames are lost, duplicated, delayed (so reordered), refused ("not now")
 *             and cut by partitions that come and go.
 *   turn      as node/app/daemon.c does it: engine_begin, opener_run then engine_deliver for
 *             each frame that arrived, engine_transaction (the workload's sends inside it, as
 *             the control socket's "send" does), engine_after.
 *   faults    crashes between turns, after a commit before anything left, and inside a commit
 *             (the ledger's files as they were before the transaction put back); the node
 *             restarts from its files after a while.
 *   rotation  in one world in three without a restore a node rotates its keys once or twice
 *             (PROTOCOL.md 2.14), and in half of those one of its peers too, a moment later (two
 *             CURVE switches at once: the tie-break of engine.c curve_switch_due). As daemon.c
 *             handle_rotate: a new CURVE key (its secret from the world's seed) when every
 *             channel's peer offered CHANNEL_FEATURE_CURVE since the start, an overlap of 0 to
 *             180 s (engine_set_curve_overlap), then engine_rotate (which refuses, and the node
 *             tries again a second later, while the last rotation is not done on a channel or
 *             channel_previous_keys_needed); the node keeps its previous keys (node.key.previous)
 *             as daemon.c forget_previous_file does: until every peer acknowledged, its KeySwitch
 *             is queued and no channel_previous_keys_needed (it applied what each peer sent
 *             before that peer took its announcement: a CURVE proof to its old box key).
 *   CURVE     the transport (ZeroMQ CURVE + ZAP, PROTOCOL.md 1.11, 2.16) is not here; a model of
 *   model     its admission and pinning decides, when node X sends to node Y (net_send; Y up),
 *             whether there is a connection: (a) the server key X's channel to Y pins
 *             (channel_transport(X's channel).pin) is the one Y's inbound socket serves
 *             (engine_curve_server(Y)->curve_public), and (b) the client key X connects with
 *             (.client->curve_public) is one Y admits for X (channel_transport(Y's channel to X):
 *             admit_current, or admit_previous while Y's wall clock is before
 *             previous_until_wall_ms, or for ever when that is 0). Else the send fails as with no
 *             connection (ZMQ_IMMEDIATE: -1), counted as refused by CURVE. It is computed from
 *             the engines of the moment (rotations, KeySwitches, restarts reloading the key
 *             history); a connection made before lasts (frames in flight arrive), except that a
 *             node whose served key changes binds its inbound socket again: what was in flight
 *             to it is lost (serve_epoch). Hostile copies and forged control messages are not
 *             checked (the receiver drops them anyway). A compromised node that rotates
 *             forges rollback Hellos too (attack), so a channel may be DIVERGED when its peer
 *             switches: channel.c pins such a KeySwitch (pin_switch_while_diverged) and a node
 *             does not switch while a channel of its is DIVERGED.
 *   stolen    in one world in four without a key rotation or a restore, a node's signing and box
 *   key       keys leak (PROTOCOL.md 2.15): a thief copies its home (keys, CURVE key, outbox)
 *             and, connecting as that node, keeps sending under the stolen keys: the node's own
 *             stored messages wrapped again, and once a peer replaced them forged Settlements at
 *             the numbers the new key signs and forged Acks. Each operator (the node's, and each
 *             peer's, at times of their own, in either order) stops their node, records the
 *             replacement in its books as `corridor key replace` and `corridor peer add
 *             --replace` do (node/ledger/replace.c, an operator row of uid 0), gives it its new
 *             keys (a new CURVE key too) or card, and starts it again; the channel waits in
 *             between (each side pins or admits a CURVE key the other no longer has). The
 *             thief's frames pass the CURVE model with the stolen CURVE key (pinning what the
 *             peer serves): a peer that replaced it refuses them there; in half these worlds
 *             (thief_past_curve) they skip the model, and the envelope must refuse them alone.
 *             Two known gaps of replace.c are steered clear of (gaps_block; --replace-anytime
 *             shows them).
 *   holds     PROTOCOL.md 3.8, from a stream of its own. In two worlds in five some nodes screen:
 *             the engine's screen callback is screening.c screening_check over a real screening
 *             list (screen_list.c; a file in the home naming the creditor some payments carry:
 *             CHANNEL_SCREEN_LISTED, refused RR04) and a program for every other payment
 *             (CHANNEL_SCREEN_PROGRAM: held, PDNG). The program is a local event driven as
 *             screening.c drives the real one: on_held notes the payment; once the transaction
 *             commits the program starts (SCREEN_SLOTS at once, the others queued) if the payment
 *             still waits for it; its verdict (the payment's own: accept, reject CODE or hold; or
 *             a failure or a timeout: hold) comes after a random delay and a later transaction
 *             applies it as screening_apply does (channel_decide_held, or ledger_hold_for_review;
 *             dropped when the payment no longer waits for it). A restart loses the programs and
 *             their verdicts; at start the payments held waiting for the program are screened
 *             again (screening_resume). The node's operator looks at `review list` every few
 *             seconds and decides each payment held for review a while later, as daemon.c
 *             handle_review does (operation_record "review" and channel_decide_held in one
 *             transaction; refused once it is decided). In two worlds in five payments expire
 *             (Settlement.expires_unix_ms 50 ms to 60 s after they are made, the default day, or
 *             none): some on arrival (AB05, after a partition or a downtime), some while held
 *             (channel_expire_held through the engine, on the world's wall clock). In two worlds
 *             in five the payer's operator asks some payments back, as daemon.c handle_cancel
 *             (operation_record "cancel" and channel_cancel in one transaction; only to a peer
 *             that offered CHANNEL_FEATURE_HOLDS, else again a second later), racing verdicts,
 *             reviews and expiry; none to or from a node restored from a copy. The compromised
 *             node also sends a CancelAnswer nobody asked for, a PDNG after its final answer and a
 *             CancelRequest for a payment it did not send (forge_sequenced): each must be counted
 *             by the receiver (channel_stats().unentitled) and book nothing. A node restored from
 *             a copy does not screen unless --restore-holds: at start it re-decides what its copy
 *             holds (expiry, program, review) before its channels show the rollback, against
 *             what it signed after the copy (a known gap of node/).
 *   checks    after every commit I1 (each currency sums to zero over the node's accounts); no
 *             frame leaves inside a transaction; sends answer as idempotency says; at the end,
 *             after faults stop: liveness (every settlement final at both ends within 10
 *             simulated minutes), the same status and reason at both ends and one the payment's
 *             model allows (settled, AM02, AM03; with holds RR04 for a listed creditor, the
 *             program's verdict, the review's decision, AB05 when it expires, the cancellation's
 *             reason when asked back: outcomes_allowed), cancelled at both ends or neither and
 *             only when asked, no CancelRequest unanswered, nothing held at any node, mirrored
 *             positions, each channel's digest the same at both ends, each UETR once per side,
 *             every unentitled message of the compromised node counted by its receiver (unless
 *             their channel was DIVERGED), and the audit of every home (I1-I5, I2). The summary
 *             counts held, released and declined rows, payments expired (AB05) and listed (RR04),
 *             cancelled, cancels refused, reviews and unentitled messages. With a
 *             stolen key: every frame of the thief a peer opens after its replacement is refused
 *             (ENV_E_REVOKED; ENV_E_UNKNOWN_SENDER for a replacement from 1), each peer refuses
 *             at least one, and no peer holds (journal evidence, or the proof of what it applied)
 *             a message the stolen key signed at or above the number its replacement begins at.
 *             The run's summary counts the worlds that replaced a key and the thief's frames
 *             refused. Once quiet, every node serves its newest CURVE key (engine_curve_pending
 *             false), every peer pins it and admits its client key, and the peers applied one
 *             KeySwitch per channel for each rotation that made a new CURVE key (their key
 *             history: switch_seq of that key). The summary counts the worlds with a CURVE
 *             switch, the KeySwitches applied, the frames the CURVE model refused, and the
 *             worlds where two nodes' switches overlapped (and where the tie-break held one).
 *   returns   PROTOCOL.md 3.9, from a stream of their own, in half the worlds (with a restore
 *             too: the operator's repair imports a return the restore left known to one side
 *             only, 4.9, after the payment it returns). The payees (never the compromised node) of
 * some payments return them a little after they were made, as daemon.c handle_return does
 * (channel_prepare_return, the operator row "return", channel_send_settlement in one transaction;
 * again a second later while the original is not settled or the peer has not offered
 * CHANNEL_FEATURE_RETURNS): one to three returns each, a part of what is left or all of it, and now
 * and then more than is left, which channel_prepare_return must refuse (LEDGER_E_STATE) writing
 * nothing (the books' counts and the channel's number unchanged). A return lost with its
 * transaction is made again under a new id. The compromised node books hostile Returns as its own
 *             (channel_send_settlement past the checks: of its own payment or of none, over the
 *             amount, naming other contents), each to be refused NOOR or AM09, and sends one
 *             under the id of a payment the receiver holds unbooked (DUPL, stored nowhere). Once
 *             quiet (check_returns): each return id once per node and channel, the returner and
 *             the payer hold the same returns with the same amount, original, reason and
 *             status, every honest return accepted and every hostile one refused, none pending;
 *             per payment the accepted returns within its amount at both ends and equal to its
 *             returned_minor; the positions mirror (I2) and the reconciliations match the
 *             returns too, and the audit is clean on return rows as on any other. A restore:
 *             a return its restored returner made after the copy (restore_lost) is held by both
 *             ends once repaired (the operator repairs again while its last repair left breaks:
 *             the import of a lost return waits for the payer's AM09 on one the restored
 *             returner made since, 4.9), or by neither when its Return never left (lost with the
 * node, as a payment is; not made again: the operator cannot tell, and the payer may hold it); the
 * restored returner's later return of the same payment, made from books without that one, may be
 * refused AM09 (stale_books: the payer's check of 3.9 at work, both ends agree). The summary counts
 * returns sent, accepted, refused by reason and refused locally.
 *   FX        PROTOCOL.md 3.10, from streams of their own, in half the worlds (with a restore too:
 *             a trade its proposer lost with the copy before it left is held by neither end, one
 *             the acceptor holds again is reviewed again or repaired). Nodes propose
 * RUB/CNY/INR/KZT/IRR trades to peers as daemon.c handle_fx does (channel_prepare_fx, the operator
 * row "fx", channel_propose_fx; made again under new ids when the transaction is lost), at rates
 * inside the band the acceptor's config sets for the proposer and pair (accepted), far outside it
 *             (AG01), in a pair with no band (held for review: the acceptor's operator accepts
 *             or rejects RR04 a while later, as handle_review does with the trade's id, or lets
 *             it expire, AB05 by channel_expire_held), or in a currency the acceptor does not
 *             deal in (AM03); some expire on the way. The compromised node sends hostile
 *             FxProposals (a leg missing: FF01, recorded nowhere; a rate its legs do not imply,
 *             booked by it: FF01 at both ends) and answers (naming no trade; naming the
 *             receiver's own trade with other contents), each counted as unentitled but the
 *             answer to no trade (channel.c ignores it uncounted). Once quiet (fx_final,
 *             check_fx): every trade final at both ends with both legs in one status and
 *             reason, the one its kind allows; no leg of a trade nobody proposed; each node's
 *             positions equal to what its settled records move (both currencies of each
 *             accepted trade); the cap each node grants whole (no reservation left); the final
 *             reconciliations match both legs.
 *   cycles    PROTOCOL.md 3.11, from streams of their own, in half the worlds without a restore
 *             (3.11 promises nothing of a cycle a restore loses but what a repair does) or a
 *             stolen key (a known gap: see world_build). Operators close cycles at random moments
 *             as daemon.c handle_cycle_close does (channel_cycle_close, the operator row
 *             "cycle_close"; again while refused), a third of the time both ends of a channel at
 *             once; every few seconds each operator looks at its cycles: the net debtor of a
 *             closed cycle settles it (channel_cycle_settle, as handle_cycle_settle), the
 *             creditor confirms a held net settlement (channel_net_decide, as handle_review_net)
 *             or, while faults go on, now and then refuses it (RR04: the debtor settles again).
 *             The compromised node does not close; it sends CycleProposals of a number not the
 *             next, with a cut not its present or a bad signature, and NetSettlements over the net
 *             (AM09) or of no closed cycle (AG01). Once quiet (cycles_final, check_cycles): no
 *             cycle closing, every net decided, every closed cycle settled; both ends hold the
 *             same closed cycles (statement bytes, cut, both signatures), none disputed; each
 *             statement is what the entries say by decided_seq and the cuts (3.11.1), the
 *             cycles and the running figures hold every final entry; net settlements the same
 *             at both ends, each of its cycle's net; the hostile ones refused by their creditor
 *             alone; positions equal to what settled records and nets move (check_fx).
 *   set-offs  PROTOCOL.md 3.12, from streams of their own, in seven worlds in ten of three nodes
 *             or more without a restore, a stolen key or a key rotation (known gap 23: a repair
 *             imports no set-off leg; a member's key is checked against the key that signs each
 *             message). One or two rings of 3 to 5 nodes (every pair of a ring's nodes a
 *             channel: the proposer needs a card of each member), circular debts round them
 *             (large RUB payments from each member to its successor early on), then 3 to 8
 *             operators' `setoff propose` at members while faults go on, as daemon.c
 *             handle_setoff_propose (the ring turned, keys as it takes them,
 *             channel_setoff_propose and the operator row "setoff"), a third of the time two at
 *             one moment round shared edges: amounts inside the debts, more than a later
 *             member's debt (from the books when proposed: AM04 on the way), or a 1 to 2.5 s
 *             deadline with ring[1] crashed as the proposal commits and down past it (AB05 by the
 *             engine's expiry, on the world's wall clock); refused by the proposer's own books
 *             (AM04 while the debts are not there yet), tried again a few times. After most
 *             proposals a member (the proposer too) crashes within 3 s, of any kind. The
 *             compromised node sends a commit with no vote, a decision from a node not the
 *             successor and a relay with no vote: each refused and counted unentitled. Once quiet
 *             (setoffs_final, check_setoffs): every proposal decided alike at every member (never
 *             committed at one and aborted at another; one reason, AM04 AB05 NARR AM03 DUPL), no
 *             leg pending anywhere; each edge's two legs both there or neither (all of them for a
 *             commit), of the terms' amount and currency, settled for a commit and rejected with
 *             the abort's reason for an abort, naming the same terms; no leg of a set-off nobody
 *             proposed; each node's positions per currency summed over its peers what its records
 *             but set-off legs move, its settled legs summing to nothing (check_fx); cycle
 *             statements count a leg's money its way (cy_recompute); the final reconciliations
 *             match the legs. The summary counts proposals, refusals by the proposer's books,
 *             commits, aborts by reason, those a member crashed during, the hostile messages.
 *
 * Each world runs in a child process (an abort in the node code is a failed world, not a
 * failed run). `sim --seeds N [--from S] [--nodes K] [--replace-anytime] [--restore-holds]
 * [--trace]`; see
 * scripts/sim.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "audit.h"
#include "disk.h"
#include "books.h"
#include "channel.h"
#include "config.h"
#include "corridor.pb-c.h"
#include "cycles.h"
#include "engine.h"
#include "entropy.h"
#include "envelope.h"
#include "identity.h"
#include "ledger.h"
#include "log.h"
#include "opener.h"
#include "operation.h"
#include "reason.h"
#include "replace.h"
#include "screen_list.h"
#include "screen_run.h"
#include "setoffs.h"
#include "statement.h"
#include "wire.h"
#include "settlement.h"
#include "validate.h"

#define NODES_MAX       5
#define WALL_START      INT64_C(1798761600000) /* 2027-01-01T00:00:00Z */
#define POLL_MAX_MS     250                    /* daemon.c: the longest sleep between turns */
#define LIVENESS_MS     (10 * 60 * 1000)       /* after faults stop, everything final by then */
#define STEPS_MAX       5000000                /* a world that takes more steps is stuck */
#define FRAMES_PER_TURN 4096                   /* INBOUND_PER_TURN */
#define CAP_MINOR       INT64_C(1000000000000) /* the caps every channel grants, both ways */
#define AMOUNT_MAX      INT64_C(1000000)       /* normal payments: 1 to this, minor units */
#define OVER_CAP_MINOR  (CAP_MINOR + INT64_C(10000000000)) /* over whatever the position is */
#define FINAL_CHECK_MS  30000           /* after faults stop, books checked this often at least */
#define RECONCILE_MS    (5 * 60 * 1000) /* the final reconciliations report by then */

static const char *const NAMES[NODES_MAX] = {"BKRURUMM", "BMJIIRTH", "KZKZKZKA", "CNBJCNBJ",
                                             "INDLINBB"};
static const char *const CURRENCIES[] = {"RUB", "IRR", "CNY", "INR", "KZT"};
#define CURRENCIES_COUNT (sizeof CURRENCIES / sizeof CURRENCIES[0])

/* ---- the world's random numbers: splitmix64 ------------------------------------------------- */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0; the bias of a modulo is irrelevant here). */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    return rng_next(r) % n;
}

static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo + 1));
}

/* True with probability per_mille / 1000. */
static bool rng_chance(rng_t *r, unsigned per_mille)
{
    return rng_below(r, 1000) < per_mille;
}

/* ---- the world ------------------------------------------------------------------------------ */

typedef struct {
    int64_t at;     /* delivery time */
    uint64_t order; /* ties: the order they were sent */
    int from, to;
    msg_type_t type;
    uint8_t *data;
    size_t len;
    bool thief;     /* sent by the thief of a stolen key (struct world: stolen) */
    uint32_t epoch; /* the recipient's serve_epoch when it was sent */
} frame_t;

/* A message the thief of a node's keys found in the copy of its home: signed with those keys. */
typedef struct {
    int to; /* the peer's node */
    msg_type_t type;
    uint8_t *signed_msg;
    size_t len;
} loot_t;

typedef enum {
    ITEM_NORMAL,    /* settles */
    ITEM_OVER_CAP,  /* rejected AM02 by the payee */
    ITEM_BAD_CCY,   /* a currency the payer deals in and the payee does not: AM03 */
    ITEM_DUP_SAME,  /* the UETR of an earlier item, same content: repeated, nothing new */
    ITEM_DUP_OTHER, /* the UETR of an earlier item, other content: refused DUPL at the payer */
} item_kind_t;

static const char *const ITEM_KIND_NAMES[] = {"normal", "over-cap", "bad-currency", "duplicate",
                                              "conflicting duplicate"};

/* One settlement the workload submits at its payer. */
typedef struct {
    int64_t due_ms;
    int payer, payee;
    size_t peer_index; /* the payee in the payer's config */
    item_kind_t kind;
    size_t orig; /* for duplicates: the item whose UETR they use */
    char uetr[CORRIDOR_UETR_LEN + 1];
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t amount;
    unsigned tag;    /* in the remittance text (content) */
    bool done;       /* submitted in a turn whose transaction committed (or in the open one) */
    bool committed;  /* that transaction committed and survived */
    bool in_turn;    /* submitted in the transaction of the current turn */
    bool final_seen; /* on_final named it (a hint: the books decide) */
    bool resubmit;   /* lost in a restore: the client sends it again once the channel is whole */
    uint64_t commit_turn; /* the payer's turn whose transaction committed it */
    /* holds, expiry and cancellation (PROTOCOL.md 3.8; the header) */
    int64_t expires_in;            /* its Settlement expires this long after it is made; 0 never */
    bool listed;                   /* its creditor is the name on the screening lists */
    screen_verdict_kind_t verdict; /* what a screening program answers for it */
    bool verdict_fails;            /* the program fails (crash, garbage, timeout): hold */
    char verdict_reason[5];        /* reject CODE */
    bool review_accept;            /* what a person decides once it is held for review */
    char review_reason[5];         /* their rejection's --reason ("": the default, RR04) */
    int64_t cancel_ms;             /* its payer's operator asks it back then (0: never) */
    char cancel_reason[5];         /* with this reason */
    bool cancel_done, cancel_in_turn; /* asked (or final, nothing to ask); in this turn */
    bool cancel_sent;                 /* a CancelRequest committed */
} item_t;

/* A return (pacs.004, PROTOCOL.md 3.9): the payee of a settled item gives back all or part of it,
 * as `corridor return` (daemon.c handle_return) does; or a hostile Return of the compromised
 * node's (forge_sequenced). */
typedef enum {
    RET_PARTIAL, /* a part of what is left */
    RET_FULL,    /* all that is left (amount 0) */
    RET_OVER,    /* more than what is left: refused by channel_prepare_return, nothing written */
    RET_HOSTILE, /* the compromised node's, booked by it: refused NOOR or AM09 by the payer */
} ret_kind_t;

typedef struct {
    int64_t due_ms;
    int returner, payer;
    size_t item;       /* the original payment (payer to returner) */
    size_t peer_index; /* the payer in the returner's config */
    ret_kind_t kind;
    bool done, in_turn, committed;
    bool abandoned;       /* the original never settled, or nothing was left of it */
    uint64_t commit_turn; /* the returner's turn whose transaction committed it */
    /* the returner was restored from a copy that does not hold it: held by both ends once the
     * operator's repair imported it, or by neither (its Return never reached the payer) */
    bool restore_lost;
    bool after_restore; /* made by a restored returner after its restore */
    char id[CORRIDOR_UETR_LEN + 1];
    int64_t amount;
} ret_t;

/* the summary's counts of returns (check_returns; RETURN_STATS) */
enum {
    RET_STAT_SENT,     /* returns booked by their returner (honest and hostile) */
    RET_STAT_ACCEPTED, /* accepted (settled at both ends) */
    RET_STAT_NOOR,     /* refused NOOR */
    RET_STAT_AM09,     /* refused AM09 */
    RET_STAT_DUPL,     /* hostile Returns under a reused id: refused DUPL, stored nowhere */
    RET_STAT_OTHER,    /* refused with another reason */
    RET_STAT_LOCAL,    /* over-total attempts channel_prepare_return refused, nothing written */
    RET_STAT_PARTIAL,  /* originals with several accepted returns */
    RET_STAT_RESTORE,  /* returns a restore lost at their returner (restore_lost) */
    RET_STAT_GONE,     /* of them, held by neither end (their Return never left) */
    RET_STAT_STALE,    /* honest returns refused AM09 for stale books (stale_books) */
    RETURN_STATS
};

/* An FX trade (PROTOCOL.md 3.10): its proposer's operator runs `corridor fx` (daemon.c
 * handle_fx: channel_prepare_fx, the operator row "fx", channel_propose_fx in one transaction);
 * what the acceptor decides follows from its config for the proposer (fx_band) and, with no
 * band for the pair, from its operator's review. Or the compromised node's hostile trade with a
 * rate its legs do not imply, booked by it (refused FF01 at both ends). */
typedef enum {
    FX_IN_BAND,       /* inside the acceptor's band: accepted */
    FX_OUT_BAND,      /* outside it: refused AG01 */
    FX_BAD_CCY,       /* a currency the acceptor does not deal in: AM03 */
    FX_REVIEW_ACCEPT, /* no band: held, then accepted by its operator (AB05 once expired) */
    FX_REVIEW_REJECT, /* no band: held, then rejected RR04 (or AB05) */
    FX_REVIEW_EXPIRE, /* no band: held until it expires, declined AB05 */
    FX_HOSTILE_RATE,  /* the compromised node's: a rate its legs do not imply, FF01 */
    FX_KINDS
} fx_kind_t;

static const char *const FX_KIND_NAMES[] = {"in band",       "out of band",   "bad currency",
                                            "review accept", "review reject", "review expire",
                                            "hostile rate"};

typedef struct {
    int64_t due_ms;
    int proposer, acceptor;
    size_t peer_index; /* the acceptor in the proposer's config */
    fx_kind_t kind;
    char pay_ccy[CORRIDOR_CURRENCY_LEN + 1], recv_ccy[CORRIDOR_CURRENCY_LEN + 1];
    int64_t pay_minor, recv_minor;
    int64_t expires_in; /* its FxProposal expires this long after it is made; 0 never */
    int64_t decide_ms;  /* review kinds: the acceptor's operator decides then */
    bool decided, decide_in_turn;
    bool done, in_turn, committed;
    uint64_t commit_turn; /* the proposer's turn that committed it */
    bool restore_lost;    /* its proposer was put back from a copy taken before it: the acceptor
                             may hold it (the repair then brings it back), or nobody does */
    char fx_id[CORRIDOR_UETR_LEN + 1];
    char uetr[2][CORRIDOR_UETR_LEN + 1]; /* FX_PAY, FX_RECEIVE */
} fx_t;

/* the summary's counts of FX trades (check_fx; FX_STATS) */
enum {
    FX_STAT_SENT,     /* trades booked by their proposer (honest and hostile) */
    FX_STAT_ACCEPTED, /* settled at both ends */
    FX_STAT_AG01,     /* refused outside the band */
    FX_STAT_RR04,     /* rejected by a review */
    FX_STAT_AB05,     /* expired */
    FX_STAT_AM03,     /* a currency the acceptor does not deal in */
    FX_STAT_FF01,     /* hostile: a rate its legs do not imply */
    FX_STAT_REVIEWED, /* held trades an operator decided */
    FX_STAT_FORGED,   /* hostile FxProposals and answers queued by the compromised node */
    FX_STAT_GONE,     /* lost by a restore of their proposer before they left: held by neither */
    FX_STATS
};

/* A settlement cycle's close (PROTOCOL.md 3.11): an operator runs `corridor cycle close --peer P`
 * (daemon.c handle_cycle_close: channel_cycle_close and the operator row "cycle_close" in one
 * transaction); `both`: the peer's operator closes at the same moment (concurrent proposals). */
typedef struct {
    int64_t due_ms;
    int node, peer;
    size_t peer_index; /* the peer in the node's config */
    bool both;
    bool done, in_turn;
    int tries; /* refused ("a cycle is closing"): the operator tries again, a few times */
} cyc_t;

/* the summary's counts of cycles (check_cycles; CY_STATS) */
enum {
    CY_STAT_CLOSES,   /* `cycle close` runs that proposed (committed) */
    CY_STAT_LOCAL,    /* runs refused locally (a cycle closing with the peer), not tried again */
    CY_STAT_CLOSED,   /* cycles closed at both ends (per channel) */
    CY_STAT_BOTH,     /* closes of both ends of a channel at one moment */
    CY_STAT_NETS,     /* net settlements sent by debtors (honest) */
    CY_STAT_SETTLED,  /* of them, confirmed at both ends */
    CY_STAT_REJECTED, /* of them, refused by the creditor's operator */
    CY_STAT_FORGED,   /* hostile CycleProposals and NetSettlements queued (committed or not) */
    CY_STAT_REFUSED,  /* hostile NetSettlements the creditor recorded as refused */
    CY_STAT_SETTLED_CYCLES, /* closed cycles whose every net is settled */
    CY_STATS
};

/* A multilateral set-off (PROTOCOL.md 3.12): an operator runs `corridor setoff propose --ring
 * ...` at a member (daemon.c handle_setoff_propose: the ring turned so the proposer is first,
 * channel_setoff_propose and the operator row "setoff" in one transaction). ring[i] owes
 * ring[i + 1] (circular debts the workload built, ring_items); ring[0] proposes. */
typedef enum {
    SO_NORMAL,   /* an amount inside the ring's debts (as the books stand: may still be refused) */
    SO_OVER,     /* more than one member's debt but not the proposer's: refused AM04 on the way
                    (or by the proposer's own books: refused locally) */
    SO_DEADLINE, /* a short deadline, ring[1] down from just after the proposal until after it:
                    the proposer aborts AB05 while a member is down */
    SO_KINDS
} so_kind_t;

static const char *const SO_KIND_NAMES[] = {"normal", "over a debt", "deadline"};

typedef struct {
    int64_t due_ms;
    int ring[NODES_MAX]; /* nodes; ring[0] the proposer */
    size_t k;            /* 3..5 */
    so_kind_t kind;
    int64_t amount;      /* SO_NORMAL: drawn; SO_OVER: chosen from the books when proposed */
    int64_t deadline_ms; /* after its creation */
    bool concurrent;     /* proposed at the same moment as another over a shared edge */
    bool done, in_turn, committed;
    bool local;   /* refused by the proposer's own books (why), nothing written; not run again */
    char why[8];  /* that refusal's code */
    int tries;    /* refused locally while its debts were not there yet: run again a few times */
    bool crashed; /* a member crashed while it was in flight (so_note_crash) */
    char id[CORRIDOR_UETR_LEN + 1];
} so_t;

/* the summary's counts of set-offs (check_setoffs; SO_STATS) */
enum {
    SO_STAT_PROPOSED,   /* proposals committed at their proposer */
    SO_STAT_LOCAL,      /* refused by the proposer's own books, nothing sent */
    SO_STAT_COMMITTED,  /* committed at every member */
    SO_STAT_AM04,       /* aborted: a member's debt too small */
    SO_STAT_AB05,       /* aborted: the deadline */
    SO_STAT_OTHER,      /* aborted with another reason */
    SO_STAT_CRASHED,    /* a member (the proposer included) crashed while it was in flight */
    SO_STAT_CONCURRENT, /* proposed at the same moment as another sharing an edge */
    SO_STAT_LEGS,       /* legs checked (both records of every edge) */
    SO_STAT_DEADLINE,   /* SO_DEADLINE proposals committed at their proposer */
    SO_STAT_FORGED,     /* hostile set-off messages the compromised node queued (committed) */
    SO_STATS
};

typedef struct world world_t;

/* A payment a node screens (PROTOCOL.md 3.8.2): held in the open transaction, its program
 * running (a verdict at `at`), or the verdict waiting for the next transaction. */
typedef struct {
    char peer[CORRIDOR_NAME_LEN_MAX + 1];
    char uetr[CORRIDOR_UETR_LEN + 1];
    int64_t at;
    screen_verdict_t verdict;
} screened_t;

/* A person's decision on a payment held for review (`corridor review accept|reject`). */
typedef struct {
    char uetr[CORRIDOR_UETR_LEN + 1];
    int64_t at;
    bool accept;
    char reason[5]; /* "": the default (RR04) */
    bool in_turn;   /* decided in the open transaction */
} review_t;

typedef struct {
    screened_t *v;
    size_t count, cap;
} screened_list_t;

typedef struct {
    world_t *w;
    int idx;
    const char *name;
    char home[512];
    identity_t *id;
    identity_t *id_previous; /* its keys before its last rotation, or NULL */
    identity_t *id_next;     /* announced in the open transaction: its keys once it commits */
    bool previous_gone;      /* every peer took its new keys, its KeySwitch is queued and no
                                channel needs the previous ones: the node no longer holds them
                                after a restart (daemon.c forget_previous_file removes the
                                file) */
    int rotations_wanted, rotations_done;       /* its key rotations (0 wanted: none) */
    int64_t rotate_at;                          /* its next one, or a try again */
    bool next_new_curve;                        /* the rotation of the open transaction makes a new
                                                   CURVE key */
    char serving[IDENTITY_CURVE_KEY_CHARS + 1]; /* the CURVE key its inbound socket serves */
    uint32_t serve_epoch;                       /* bumped each time that changes (a rebind) */
    bool curve_pending;                         /* engine_curve_pending after its last turn */
    config_t *config;
    int peer_node[NODES_MAX];   /* the node of each configured peer */
    size_t index_of[NODES_MAX]; /* by node: its index among the configured peers, or SIZE_MAX */
    envelope_peer_t *keys;      /* per configured peer (sodium memory) */
    ledger_t *ledger, *reader;
    engine_t *engine;
    bool up;
    int64_t wake_ms;    /* its next turn */
    int64_t busy_until; /* a turn takes time: no next turn before */
    int64_t restart_ms; /* when down: when it comes back */
    frame_t *inbox;     /* frames arrived, for its next turn */
    size_t inbox_count, inbox_cap;
    size_t *items; /* its items (indices), by due time */
    size_t items_count, items_first_open;
    int crash_armed;            /* 0, or a crash kind waiting for the node's next transaction */
    sqlite3 *db;                /* a read-only connection of the checker's own */
    sqlite3_stmt *journal_from; /* the journal's rows after a given one */
    int64_t chain_rows;         /* I5: rows checked so far, */
    uint8_t chain_head[LEDGER_HASH_BYTES]; /* and the hash of the last */
    int reconcile_wanted[NODES_MAX];  /* per configured peer: start a reconciliation (RECON_*) */
    int64_t repair_at[NODES_MAX];     /* per configured peer: its operator repairs then; 0: no */
    bool repairing[NODES_MAX];        /* per configured peer: the reconciliation running repairs */
    bool repair_left[NODES_MAX];      /* its last repair left breaks: the operator tries again */
    int repairs_again[NODES_MAX];     /* how often it did (REPAIRS_AGAIN_MAX at most) */
    bool up_since_restore[NODES_MAX]; /* per configured peer: the channel was up since */
    int64_t reconcile_retry_ms;       /* a final one could not start yet: try again then */
    bool final_reconcile[NODES_MAX];  /* per configured peer: the final one runs */
    json_t *reports[NODES_MAX];       /* per configured peer: the final one's report */
    uint64_t turns, commits, crashes;
    /* screening (the header: holds): a list and a program, modelled as daemon.c and
     * screening.c drive them; programs and their verdicts are lost with a restart */
    bool screens;
    screen_list_t *list;
    screened_list_t held_now; /* held in the open transaction (on_held) */
    screened_list_t running;  /* programs running: a verdict at `at` (at most SCREEN_SLOTS) */
    screened_list_t queued;   /* waiting for a slot */
    screened_list_t verdicts; /* for the next transaction (screening_apply) */
    int64_t review_scan_ms;   /* its operator looks at `corridor review list` then */
    review_t *reviews;        /* the operator's decisions to come */
    size_t reviews_count, reviews_cap;
    size_t *cancels; /* its items its operator asks back (indices) */
    size_t cancels_count;
    uint64_t unentitled_from[NODES_MAX]; /* by node: channel_stats().unentitled, every start */
    uint64_t forged_in_turn[NODES_MAX];  /* by node: the compromised node's unentitled messages
                                            queued in the open transaction */
    uint64_t dupl_in_turn;               /* its hostile Returns under a reused id, this turn */
    uint64_t local_in_turn;              /* its over-total returns refused locally, this turn */
    uint64_t fx_forged_in_turn;          /* its hostile trade messages, this turn */
    int64_t cy_scan_ms; /* its operator looks at `corridor cycle list` and `review list` then */
    uint64_t cy_nets_in_turn, cy_rejects_in_turn; /* net settlements sent, refused, this turn */
    uint64_t so_forged_in_turn; /* the compromised node's hostile set-off messages, this turn */
} node_t;

/* while faults go on / at the end / an operator's --repair of a DIVERGED channel */
enum { RECON_NONE, RECON_DURING, RECON_FINAL, RECON_REPAIR };

/* A node put back from an older copy of its home (its ledger files as they were at one of its
 * turns), then repaired as its operator would: `corridor reconcile --repair` with every peer
 * whose channel is DIVERGED, and its clients sending again what it had accepted since. */
typedef struct {
    int node; /* -1: none in this world */
    int64_t image_ms, restore_ms, down_ms;
    disk_image_t *image;
    uint64_t image_turn; /* the node's first turn the image does not hold */
    bool restored;
} restore_t;

/* An operator's reconciliation while faults go on: it must end, whatever it reports. */
typedef struct {
    int64_t at;
    int node;
    size_t peer_index;
    bool fired;
} recon_event_t;

typedef enum {
    CRASH_BETWEEN = 1,  /* between turns */
    CRASH_AFTER_COMMIT, /* committed, nothing sent yet */
    CRASH_LOST_COMMIT,  /* inside the commit: the transaction never reached the disk */
} crash_kind_t;

typedef struct {
    int64_t at;
    int node;
    crash_kind_t kind;
    int64_t down_ms;
} crash_t;

/* A node's disk full (writes fail) or failing (syncs fail) for a while. */
typedef struct {
    int node;
    disk_fault_t fault;
    int64_t from_ms, to_ms;
} disk_event_t;

typedef struct {
    int a, b; /* the pair */
    int64_t from_ms, to_ms;
} partition_t;

struct world {
    uint64_t seed;
    rng_t rng;
    bool trace;
    char dir[256];
    int64_t now;
    int n;
    node_t node[NODES_MAX];
    bool channel[NODES_MAX][NODES_MAX];
    opener_t *opener;
    /* network */
    unsigned loss, dup, refuse, spike; /* per mille */
    unsigned hostile;  /* per mille: a copy re-sent much later, or to a peer it is not for */
    rng_t hostile_rng; /* its own stream: worlds without hostile copies run as they did */
    uint64_t frames_hostile;
    int attacker;     /* a compromised node (valid keys, hostile content), or -1 */
    rng_t attack_rng; /* its own stream */
    uint64_t forged;  /* control messages it forged */
    bool forging;     /* it also signs sequenced messages of hostile content (forge_sequenced) */
    rng_t forge_rng;  /* their own stream */
    int64_t forge_due_ms;
    uint64_t forged_sequenced;
    int rotator;      /* a node that rotates its keys (PROTOCOL.md 2.14), or -1 */
    int rotator2;     /* a peer of it that rotates at about the same time, or -1 */
    rng_t rotate_rng; /* their own stream */
    /* the CURVE model and switch (the header) */
    uint64_t frames_curve;       /* sends refused by the CURVE model (thief's not counted) */
    uint64_t frames_rebound;     /* frames in flight lost to a rebind of their recipient */
    uint64_t thief_curve;        /* the thief's frames refused by it after the replacement */
    bool thief_past_curve;       /* the thief's frames skip the model (the envelope alone) */
    int curve_rotations;         /* committed rotations that made a new CURVE key */
    uint64_t keyswitches_wanted; /* one per channel of each of those */
    uint64_t keyswitches;        /* applied, as the peers' key histories say at the end */
    bool curve_overlap;          /* two peers' CURVE switches pending at once */
    bool curve_held;             /* the tie-break held a node's switch back */
    /* a node whose signing and box keys are stolen, then replaced by the operators of both
     * ends of each of its channels (PROTOCOL.md 2.15), from a stream of its own */
    int stolen;             /* that node, or -1 */
    rng_t replace_rng;      /* its own stream */
    int64_t steal_ms;       /* the thief copies its home: keys and outbox */
    int64_t own_replace_ms; /* its operator's `key replace` (node stopped) */
    bool own_replaced;
    int64_t peer_replace_ms[NODES_MAX]; /* by node: each peer's `peer add --replace` (stopped) */
    bool peer_replaced[NODES_MAX];
    uint64_t peer_first_seq[NODES_MAX]; /* by node: R, the new key signs from there */
    identity_t *replacement;            /* the new keys (a new CURVE key too) */
    identity_t *thief;                  /* the keys as stolen */
    envelope_peer_t *thief_keys;        /* per configured peer of the stolen node */
    loot_t *loot;                       /* its outbox as copied */
    size_t loot_count;
    int64_t thief_due_ms, thief_end_ms; /* the thief's next frame; it stops then, once each
                                           peer refused one after its replacement (else a
                                           minute later) */
    uint64_t refused_by[NODES_MAX];     /* by node: the thief's frames it refused since */
    uint64_t thief_sent, thief_after;   /* its frames; those sent after the peer replaced */
    bool replace_anytime; /* the operators act as drawn, whatever the known gaps (see gaps_block) */
    uint64_t thief_revoked, thief_unknown; /* refused after the replacement: ENV_E_REVOKED, or
                                              ENV_E_UNKNOWN_SENDER (replaced from 1: no
                                              revoked key on record) */
    int64_t delay_min, delay_jitter;
    bool fifo; /* each lane delivers in order, as a TCP connection does (else frames overtake) */
    int64_t lane_last[NODES_MAX][NODES_MAX][2]; /* fifo: the last delivery time of each lane */
    frame_t *flight;                            /* a binary heap by (at, order) */
    size_t flight_count, flight_cap;
    uint64_t order;
    partition_t partitions[64];
    size_t partitions_count;
    crash_t crashes[64]; /* the world's, then those set-offs add (so_crash_add) */
    disk_event_t disks[4];
    recon_event_t recons[4];
    size_t recons_count;
    rng_t recon_rng; /* its own stream: worlds without them run as they did */
    size_t disks_count;
    rng_t disk_rng; /* its own stream: worlds without disk faults run as they did */
    restore_t restore;
    rng_t restore_rng; /* its own stream, as are operators' repairs */
    uint64_t ledger_stops;
    size_t crashes_count, crashes_next;
    int64_t faults_end;
    /* workload */
    item_t *items;
    size_t items_count;
    /* holds, expiry and cancellation (PROTOCOL.md 3.8), from a stream of their own */
    rng_t hold_rng;
    bool screening, expiry, cancelling;       /* which of them this world has */
    uint64_t reviews;                         /* review decisions committed */
    uint64_t forged_holds_to[NODES_MAX];      /* by node: unentitled messages the compromised node
                                                 queued to it (committed) */
    bool diverged_ever[NODES_MAX][NODES_MAX]; /* [node][peer node]: its channel was DIVERGED */
    uint64_t forged_holds;                    /* all of them */
    uint64_t holds_stats[9]; /* at the end: HOLD_STAT_* (check_holds; HOLD_STATS) */
    /* returns (PROTOCOL.md 3.9), from a stream of their own */
    rng_t ret_rng;
    bool returning;
    ret_t *rets;
    size_t rets_count, rets_cap;
    uint64_t rets_dupl, rets_local; /* hostile DUPLs queued; over-total attempts refused
                                       (committed turns) */
    uint64_t ret_stats[RETURN_STATS];
    /* FX trades (PROTOCOL.md 3.10), from streams of their own */
    rng_t fx_rng, fx_forge_rng;
    bool fx;
    fx_t *fxs;
    size_t fxs_count;
    int64_t fx_forge_due_ms;
    uint64_t fx_reviews, fx_forged; /* committed */
    uint64_t fx_stats[FX_STATS];
    /* settlement cycles (PROTOCOL.md 3.11), from streams of their own */
    rng_t cy_rng, cy_forge_rng;
    bool cycles;
    cyc_t *cys;
    size_t cys_count;
    int64_t cy_forge_due_ms;
    char (*cy_forged)[CORRIDOR_UETR_LEN + 1]; /* ids of the hostile NetSettlements */
    size_t cy_forged_count;
    uint64_t cy_stats[CY_STATS];
    /* multilateral set-offs (PROTOCOL.md 3.12), from a stream of their own */
    rng_t so_rng, so_forge_rng;
    int64_t so_forge_due_ms;
    bool setoffs;
    int rings[2][NODES_MAX]; /* the rings the workload's circular debts run round */
    size_t ring_len[2], rings_count;
    so_t *sos;
    size_t sos_count;
    uint64_t so_stats[SO_STATS];
    /* checks */
    bool in_transaction; /* inside some node's engine_transaction */
    int turn_node;       /* whose turn it is */
    bool failed;
    char failure[1024];
    uint64_t steps, frames_sent, frames_lost, frames_dup, frames_refused;
    size_t reconciles; /* reconciliations started at the end */
};

static world_t *current; /* for log_set_clock */

static int64_t wall_of(int64_t now)
{
    return WALL_START + now;
}

static int64_t sim_clock(void)
{
    return current != NULL ? wall_of(current->now) : WALL_START;
}

static void fail(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(world_t *w, const char *fmt, ...)
{
    if (w->failed) {
        return;
    }
    w->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->failure, sizeof w->failure, fmt, ap);
    va_end(ap);
    if (w->trace) {
        fprintf(stderr, "SIM t=%" PRId64 " FAILED: %s\n", w->now, w->failure);
    }
}

static void trace(world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(world_t *w, const char *fmt, ...)
{
    if (!w->trace) {
        return;
    }
    fprintf(stderr, "SIM t=%" PRId64 " ", w->now);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *type_name(msg_type_t t)
{
    static const char *const names[] = {"?",      "Settlement",  "StatusReport",
                                        "Return", "StmtRequest", "Statement",
                                        "Ack",    "Hello",       "KeyAnnounce"};
    /* a type newer than this table by the envelope's own name */
    return t >= MSG_TYPE_MIN && (size_t)t < sizeof names / sizeof names[0] ? names[t]
                                                                           : msg_type_name(t);
}

/* ---- frames in flight: a binary heap ----------------------------------------------------------
 */

static bool frame_before(const frame_t *a, const frame_t *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void flight_push(world_t *w, frame_t f)
{
    if (w->flight_count == w->flight_cap) {
        w->flight_cap = w->flight_cap ? 2 * w->flight_cap : 256;
        w->flight = realloc(w->flight, w->flight_cap * sizeof *w->flight);
        if (w->flight == NULL) {
            abort();
        }
    }
    f.epoch = w->node[f.to].serve_epoch;
    size_t i = w->flight_count++;
    while (i > 0 && frame_before(&f, &w->flight[(i - 1) / 2])) {
        w->flight[i] = w->flight[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->flight[i] = f;
}

static frame_t flight_pop(world_t *w)
{
    frame_t top = w->flight[0];
    frame_t last = w->flight[--w->flight_count];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->flight_count) {
            break;
        }
        if (c + 1 < w->flight_count && frame_before(&w->flight[c + 1], &w->flight[c])) {
            c++;
        }
        if (!frame_before(&w->flight[c], &last)) {
            break;
        }
        w->flight[i] = w->flight[c];
        i = c;
    }
    if (w->flight_count > 0) {
        w->flight[i] = last;
    }
    return top;
}

static bool partitioned(const world_t *w, int a, int b, int64_t at)
{
    for (size_t i = 0; i < w->partitions_count; i++) {
        const partition_t *p = &w->partitions[i];
        if (((p->a == a && p->b == b) || (p->a == b && p->b == a)) && at >= p->from_ms &&
            at < p->to_ms) {
            return true;
        }
    }
    return false;
}

/* ---- the CURVE model (the header) -------------------------------------------------------------
 */

/* The CURVE key node n's inbound socket serves now; a change is a rebind (daemon.c
 * steer_transport), which loses what was in flight to it. */
static void curve_serve(world_t *w, node_t *n)
{
    const char *key = engine_curve_server(n->engine)->curve_public;
    if (strcmp(n->serving, key) != 0) {
        if (n->serving[0] != '\0') {
            n->serve_epoch++;
            trace(w, "%s's inbound socket serves CURVE key %.8s... (was %.8s...)", n->name, key,
                  n->serving);
        }
        snprintf(n->serving, sizeof n->serving, "%s", key);
    }
}

/* Whether a connection to node y (up) that pins `pin` as y's server key and connects with the
 * CURVE client key `client` as node `from` gets through: NULL, or why not. */
static const char *curve_refusal(const world_t *w, const node_t *y, int from, const char *pin,
                                 const char *client)
{
    if (strcmp(pin, engine_curve_server(y->engine)->curve_public) != 0) {
        return "pins a server key the peer does not serve";
    }
    size_t q = y->index_of[from];
    if (q == SIZE_MAX) {
        return "not a configured peer";
    }
    channel_transport_t t;
    channel_transport(engine_channel(y->engine, q), &t);
    if (strcmp(client, t.admit_current) == 0 ||
        (t.admit_previous != NULL && strcmp(client, t.admit_previous) == 0 &&
         (t.previous_until_wall_ms == 0 || wall_of(w->now) < t.previous_until_wall_ms))) {
        return NULL;
    }
    return "connects with a client key the peer does not admit";
}

/* A hostile copy of a frame n sends to `to`: the same bytes again 1 to 20 s later (an old
 * message re-sent), or to another peer on n's connection, or forwarded by `to` to one of its
 * peers. Each is for the receiver to drop; none may change the books. */
static void hostile_copy(world_t *w, node_t *n, int to, msg_type_t type, const uint8_t *wire,
                         size_t len)
{
    rng_t *r = &w->hostile_rng;
    frame_t f = {.at = w->now + rng_range(r, 1, 20) * 1000,
                 .order = w->order++,
                 .from = n->idx,
                 .to = to,
                 .type = type,
                 .len = len};
    const char *what = "re-sent late";
    unsigned how = (unsigned)rng_below(r, 3);
    const node_t *relay = how == 1 ? n : &w->node[to];
    if (how > 0 && relay->config->peers_count > 1) {
        int other = relay->peer_node[rng_below(r, relay->config->peers_count)];
        if (other != to && other != n->idx) {
            f.from = relay->idx;
            f.to = other;
            f.at = w->now + rng_range(r, 1, 300);
            what = how == 1 ? "sent to a peer it is not for" : "forwarded by its recipient";
        }
    }
    if ((f.data = malloc(len)) == NULL) {
        abort();
    }
    memcpy(f.data, wire, len);
    w->frames_hostile++;
    trace(w, "%s->%s %s %zu bytes: hostile copy (%s) from %s, arrives t=%" PRId64, n->name,
          w->node[to].name, type_name(type), len, what, w->node[f.from].name, f.at);
    flight_push(w, f);
}

/* The compromised node's control messages, forged after a real one it sends `to` (opened with
 * the receiver's keys to learn its stamp, so that the forgery is fresh): an Ack claiming more
 * than the receiver sent, or a malformed one; a Hello asking for everything again; or two
 * Hellos in a row claiming the receiver was rolled back (it diverges, and its operator
 * repairs on proofs). Nothing of it may change the books. */
static void attack(world_t *w, node_t *x, int to, const uint8_t *wire, size_t len, int64_t at)
{
    node_t *y = &w->node[to];
    if (!y->up) {
        return;
    }
    envelope_message_t real;
    if (envelope_open(wire, len, y->id, y->keys, y->config->peers_count, &real) != ENV_OK) {
        return;
    }
    uint64_t incarnation = 0, counter = 0;
    Corridor__Hello *hello = NULL;
    if (real.type == MSG_ACK) {
        Corridor__Ack *a =
            (Corridor__Ack *)wire_unpack(&corridor__ack__descriptor, real.body_len, real.body);
        if (a != NULL) {
            incarnation = a->incarnation;
            counter = a->counter;
        }
        corridor__ack__free_unpacked(a, NULL);
    } else if (real.type == MSG_HELLO) {
        hello =
            (Corridor__Hello *)wire_unpack(&corridor__hello__descriptor, real.body_len, real.body);
        if (hello != NULL) {
            incarnation = hello->incarnation;
            counter = hello->counter;
        }
    }
    size_t p = 0;
    while (p < x->config->peers_count && x->peer_node[p] != to) {
        p++;
    }
    channel_stats_t ys = channel_stats(engine_channel(y->engine, real.peer_index));
    unsigned kind = (unsigned)rng_below(&w->attack_rng, 4);
    int copies = kind == 3 ? 2 : 1;
    static const char *const kinds[] = {"an Ack beyond what it sent", "a malformed Ack",
                                        "a Hello asking for everything again",
                                        "two Hellos claiming it was rolled back"};
    for (int c = 0; c < copies && incarnation != 0 && p < x->config->peers_count; c++) {
        uint8_t body[256];
        size_t body_len = 0;
        msg_type_t type = MSG_ACK;
        if (kind < 2) {
            Corridor__Ack a = CORRIDOR__ACK__INIT;
            a.sequence = kind == 0 ? ys.sent_seq + 1 + rng_below(&w->attack_rng, 1000)
                                   : CORRIDOR_SEQUENCE_MAX + 1;
            a.incarnation = incarnation;
            a.counter = counter + 1 + (uint64_t)c;
            body_len = corridor__ack__pack(&a, body);
        } else if (hello != NULL) {
            Corridor__Hello h = *hello;
            h.incarnation = incarnation;
            h.counter = counter + 1 + (uint64_t)c;
            h.reply_wanted = kind == 2;
            if (kind == 3) {
                h.applied_sequence = ys.sent_seq + 1000;
            }
            body_len = corridor__hello__pack(&h, body);
            type = MSG_HELLO;
        } else {
            break; /* a Hello is forged after a real Hello only */
        }
        uint8_t *forged = NULL;
        size_t forged_len = 0;
        if (envelope_seal_version(x->id, &x->keys[p], real.version, type, 0, body, body_len,
                                  &forged, &forged_len) != ENV_OK) {
            break;
        }
        frame_t f = {.at = at + 1 + c,
                     .order = w->order++,
                     .from = x->idx,
                     .to = to,
                     .type = type,
                     .data = forged,
                     .len = forged_len};
        flight_push(w, f);
        w->forged++;
        trace(w, "%s->%s %s: forged by the compromised %s (%s), arrives t=%" PRId64, x->name,
              y->name, type_name(type), x->name, kinds[kind], f.at);
    }
    corridor__hello__free_unpacked(hello, NULL);
    envelope_message_clear(&real);
}

/* engine_ctx_t.send: the frame goes into flight (or not), as the seed says. */
static int net_send(void *arg, size_t peer_index, msg_type_t type, const uint8_t *wire, size_t len)
{
    node_t *n = arg;
    world_t *w = n->w;
    if (w->in_transaction) { /* PROTOCOL.md 2.8: nothing leaves before the commit */
        fail(w, "%s sent a %s to %s inside a transaction (before its commit)", n->name,
             type_name(type), n->config->peers[peer_index].card.name);
    }
    if (peer_index >= n->config->peers_count) {
        fail(w, "%s sent to peer index %zu of %zu", n->name, peer_index, n->config->peers_count);
        return -1;
    }
    int to = n->peer_node[peer_index];
    w->frames_sent++;
    if (n->engine != NULL && w->node[to].up) { /* the CURVE model: a connection, or none */
        channel_transport_t t;
        channel_transport(engine_channel(n->engine, peer_index), &t);
        const char *why = curve_refusal(w, &w->node[to], n->idx, t.pin, t.client->curve_public);
        if (why != NULL) {
            w->frames_curve++;
            trace(w, "%s->%s %s %zu bytes: refused by CURVE (%s %.8s..., %s %.8s...): %s", n->name,
                  w->node[to].name, type_name(type), len, "pinning", t.pin, "as",
                  t.client->curve_public, why);
            return -1; /* ZMQ_IMMEDIATE: no connection, the send fails */
        }
    }
    bool faulty = w->now < w->faults_end;
    if (faulty && rng_chance(&w->rng, w->refuse)) {
        w->frames_refused++;
        trace(w, "%s->%s %s %zu bytes: refused (not now)", n->name, w->node[to].name,
              type_name(type), len);
        return -1;
    }
    int copies = 1;
    if (faulty && (partitioned(w, n->idx, to, w->now) || rng_chance(&w->rng, w->loss))) {
        copies = 0;
        w->frames_lost++;
    } else if (faulty && rng_chance(&w->rng, w->dup)) {
        copies = 2;
        w->frames_dup++;
    }
    for (int c = 0; c < copies; c++) {
        int64_t delay = w->delay_min + (int64_t)rng_below(&w->rng, (uint64_t)w->delay_jitter + 1);
        if (faulty && rng_chance(&w->rng, w->spike)) {
            delay += rng_range(&w->rng, 100, 3000);
        }
        int64_t at = w->now + delay;
        if (w->fifo) { /* statements go on a lane of their own (daemon.c send_to_socket) */
            int64_t *last =
                &w->lane_last[n->idx][to][type == MSG_STATEMENT || type == MSG_STATEMENT_REQUEST];
            at = at > *last ? at : *last;
            *last = at;
        }
        frame_t f = {.at = at,
                     .order = w->order++,
                     .from = n->idx,
                     .to = to,
                     .type = type,
                     .data = malloc(len),
                     .len = len};
        if (f.data == NULL) {
            abort();
        }
        memcpy(f.data, wire, len);
        flight_push(w, f);
        trace(w, "%s->%s %s %zu bytes: arrives t=%" PRId64 "%s", n->name, w->node[to].name,
              type_name(type), len, f.at, copies == 2 ? " (duplicated)" : "");
        if (faulty && n->idx == w->attacker && c == 0 && (type == MSG_ACK || type == MSG_HELLO) &&
            rng_chance(&w->attack_rng, 100)) {
            attack(w, n, to, wire, len, f.at);
        }
    }
    if (copies == 0) {
        trace(w, "%s->%s %s %zu bytes: lost", n->name, w->node[to].name, type_name(type), len);
    }
    if (faulty && w->hostile > 0 && rng_chance(&w->hostile_rng, w->hostile)) {
        hostile_copy(w, n, to, type, wire, len);
    }
    return 0;
}

/* The fault of node i's disk now (faults stop at faults_end). */
static disk_fault_t disk_fault_at(const world_t *w, int node, int64_t at)
{
    for (size_t k = 0; k < w->disks_count && at < w->faults_end; k++) {
        const disk_event_t *d = &w->disks[k];
        if (d->node == node && at >= d->from_ms && at < d->to_ms) {
            return d->fault;
        }
    }
    return DISK_OK;
}

/* engine_ctx_t.on_final: a hint that the payer's books may be final for this UETR. */
static void on_final(void *arg, const char *peer, const char *uetr, const ledger_outcome_t *o)
{
    node_t *n = arg;
    (void)peer;
    for (size_t k = 0; k < n->items_count; k++) {
        item_t *it = &n->w->items[n->items[k]];
        if (it->kind != ITEM_DUP_SAME && it->kind != ITEM_DUP_OTHER &&
            strcmp(it->uetr, uetr) == 0) {
            it->final_seen = true;
        }
    }
    trace(n->w, "%s final %s: %s %s", n->name, uetr, status_name(o->status), o->reason);
}

#define REPAIRS_AGAIN_MAX 8 /* repairs an operator runs again on a channel that is not DIVERGED */

/* engine_ctx_t.on_report: a reconciliation the simulator started ended. */
static void on_report(void *arg, size_t peer_index, json_t *doc)
{
    node_t *n = arg;
    if (n->final_reconcile[peer_index]) {
        json_decref(n->reports[peer_index]);
        n->reports[peer_index] = json_incref(json_object_get(doc, "report"));
    }
    /* a repair that left breaks (an import that must wait, PROTOCOL.md 4.9: a lost return
     * beside one the restored returner made since, until the payer refuses that one) is run
     * again later, as an operator reading its report would */
    if (n->repairing[peer_index] &&
        json_integer_value(json_object_get(json_object_get(doc, "report"), "breaks_remaining")) >
            0 &&
        n->repairs_again[peer_index] < REPAIRS_AGAIN_MAX) {
        n->repair_left[peer_index] = true;
        n->repairs_again[peer_index]++;
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    trace(n->w, "%s reconcile report: %s", n->name, text != NULL ? text : "?");
    free(text);
}

/* ---- holds: screening, review, cancellation (PROTOCOL.md 3.8; the header) ---------------------
 */

#define SCREEN_SLOTS     4             /* screening.c SCREENING_RUNNING_MAX: programs at once */
#define SCREEN_TIMEOUT   2000          /* screen_timeout_ms of a screening node */
#define SCREEN_LIST_FILE "screen.list" /* in its home */
#define LISTED_NAME      "Listed Party Ltd" /* the creditor some payments name */

static int item_by_uetr(const world_t *w, const char *uetr, int payer, int payee);

static int node_by_name(const world_t *w, const char *name)
{
    for (int i = 0; i < w->n; i++) {
        if (strcmp(w->node[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

static void screened_push(screened_list_t *l, const char *peer, const char *uetr, int64_t at,
                          const screen_verdict_t *v)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        if ((l->v = realloc(l->v, l->cap * sizeof *l->v)) == NULL) {
            abort();
        }
    }
    screened_t *s = &l->v[l->count++];
    memset(s, 0, sizeof *s);
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    snprintf(s->uetr, sizeof s->uetr, "%s", uetr);
    s->at = at;
    if (v != NULL) {
        s->verdict = *v;
    }
}

static screened_t screened_take(screened_list_t *l, size_t i)
{
    screened_t s = l->v[i];
    memmove(&l->v[i], &l->v[i + 1], (l->count - i - 1) * sizeof *l->v);
    l->count--;
    return s;
}

/* engine_ctx_t.screen: screening.c screening_check with a list and a program. */
static channel_screen_t sim_screen(void *arg, const settlement_t *s)
{
    node_t *n = arg;
    const char *field = NULL;
    if (screen_list_match(n->list, s, &field)) {
        trace(n->w, "%s screens %s from %s: the %s is listed", n->name, s->uetr, s->peer, field);
        return CHANNEL_SCREEN_LISTED;
    }
    return CHANNEL_SCREEN_PROGRAM;
}

/* engine_ctx_t.on_held: screening.c screening_on_held. */
static void sim_on_held(void *arg, const char *peer, const char *uetr)
{
    node_t *n = arg;
    screened_push(&n->held_now, peer, uetr, 0, NULL);
}

/* What the program answers for one held payment, and after how long (the payment's item
 * decides the answer; a run may fail or time out: hold, as screen_run.c says). */
static screen_verdict_t program_run(world_t *w, node_t *n, const char *peer, const char *uetr,
                                    int64_t *delay)
{
    rng_t *r = &w->hold_rng;
    screen_verdict_t v = {.kind = SCREEN_HOLD};
    int k = item_by_uetr(w, uetr, node_by_name(w, peer), n->idx);
    *delay = rng_chance(r, 80) ? rng_range(r, SCREEN_TIMEOUT / 2, 2 * SCREEN_TIMEOUT)
                               : rng_range(r, 5, 1500);
    if (*delay >= SCREEN_TIMEOUT) {
        *delay = SCREEN_TIMEOUT;
        snprintf(v.why, sizeof v.why, "timed out after %d ms", SCREEN_TIMEOUT);
    } else if (k < 0 || w->items[k].verdict_fails || rng_chance(r, 50)) {
        snprintf(v.why, sizeof v.why, "%s", k < 0 ? "exit status 3" : "garbage answer \"maybe\"");
    } else {
        v.kind = w->items[k].verdict;
        snprintf(v.reason, sizeof v.reason, "%s",
                 v.kind == SCREEN_REJECT ? w->items[k].verdict_reason : "");
        snprintf(v.why, sizeof v.why, "answered %s%s%s",
                 v.kind == SCREEN_ACCEPT   ? "accept"
                 : v.kind == SCREEN_REJECT ? "reject"
                                           : "hold",
                 v.reason[0] ? " " : "", v.reason);
    }
    return v;
}

/* screening.c start: the program for one held payment, if it still waits for it (read back
 * from the books); a free slot, else the queue. */
static void program_start(world_t *w, node_t *n, const char *peer, const char *uetr)
{
    settlement_t s;
    ledger_outcome_t o;
    if (ledger_find(n->ledger, peer, uetr, &s, &o) != LEDGER_OK || o.status != STATUS_HELD ||
        strcmp(o.hold, LEDGER_HOLD_SCREENING) != 0) {
        return;
    }
    int64_t delay = 0;
    screen_verdict_t v = program_run(w, n, peer, uetr, &delay);
    if (n->running.count < SCREEN_SLOTS) {
        screened_push(&n->running, peer, uetr, w->now + delay, &v);
        trace(w, "%s screening program for %s from %s: %s at t=%" PRId64, n->name, uetr, peer,
              v.why, w->now + delay);
    } else {
        screened_push(&n->queued, peer, uetr, delay, &v);
    }
}

/* screening_after_commit: the programs for what the transaction held (if it committed). */
static void screening_after(world_t *w, node_t *n, bool committed)
{
    for (size_t i = 0; committed && i < n->held_now.count; i++) {
        program_start(w, n, n->held_now.v[i].peer, n->held_now.v[i].uetr);
    }
    n->held_now.count = 0;
}

static void resume_one(const ledger_held_t *h, void *arg)
{
    node_t *n = arg;
    if (strcmp(h->hold, LEDGER_HOLD_SCREENING) == 0) {
        screened_push(&n->held_now, h->s.peer, h->s.uetr, 0, NULL);
    }
}

/* screening_resume, at start: the program again for every payment held waiting for it. */
static void screening_restart(world_t *w, node_t *n)
{
    if (ledger_held(n->ledger, resume_one, n) != LEDGER_OK) {
        fail(w, "%s: cannot list its held payments: %s", n->name, ledger_last_error(n->ledger));
        return;
    }
    if (n->held_now.count > 0) {
        trace(w, "%s screens again %zu payments held when it stopped", n->name, n->held_now.count);
    }
    screening_after(w, n, true);
}

/* screening_collect, at the start of a turn: the verdicts of programs that finished; queued
 * payments take the slots they free. */
static void screening_collect_sim(world_t *w, node_t *n)
{
    for (size_t i = 0; i < n->running.count;) {
        if (n->running.v[i].at > w->now) {
            i++;
            continue;
        }
        screened_t s = screened_take(&n->running, i);
        trace(w, "%s screening program for %s: %s", n->name, s.uetr, s.verdict.why);
        screened_push(&n->verdicts, s.peer, s.uetr, 0, &s.verdict);
    }
    while (n->running.count < SCREEN_SLOTS && n->queued.count > 0) {
        screened_t s = screened_take(&n->queued, 0);
        screened_push(&n->running, s.peer, s.uetr, w->now + s.at, &s.verdict);
    }
}

/* screening_apply, inside the transaction: each verdict for a payment still waiting for it. */
static ledger_err_t screening_apply_sim(world_t *w, node_t *n)
{
    ledger_err_t rc = LEDGER_OK;
    size_t kept = 0; /* as screening_apply: a verdict for a channel not UP waits */
    for (size_t i = 0; rc == LEDGER_OK && i < n->verdicts.count; i++) {
        const screened_t *s = &n->verdicts.v[i];
        size_t index = n->index_of[node_by_name(w, s->peer)];
        if (s->verdict.kind != SCREEN_HOLD &&
            !channel_decides_held(engine_channel(n->engine, index))) {
            n->verdicts.v[kept++] = *s;
            continue;
        }
        settlement_t st;
        ledger_outcome_t o;
        if (ledger_find(n->ledger, s->peer, s->uetr, &st, &o) != LEDGER_OK ||
            o.status != STATUS_HELD || strcmp(o.hold, LEDGER_HOLD_SCREENING) != 0) {
            trace(w, "%s: the verdict for %s dropped: the payment no longer waits for it", n->name,
                  s->uetr);
            continue;
        }
        if (s->verdict.kind == SCREEN_HOLD) {
            rc = ledger_hold_for_review(n->ledger, s->peer, s->uetr);
        } else {
            rc = channel_decide_held(engine_channel(n->engine, index), s->uetr,
                                     s->verdict.kind == SCREEN_ACCEPT ? NULL : s->verdict.reason,
                                     &o);
        }
        rc = rc == LEDGER_E_STATE ? LEDGER_OK : rc;
    }
    if (rc == LEDGER_OK) {
        n->verdicts.count = kept;
    } else if (disk_fault_at(w, n->idx, w->now) == DISK_OK) {
        fail(w, "%s: applying a screening verdict failed: %s (%s)", n->name, ledger_strerror(rc),
             ledger_last_error(n->ledger));
    }
    return rc;
}

static void review_one(const ledger_held_t *h, void *arg)
{
    node_t *n = arg;
    world_t *w = n->w;
    if (strcmp(h->hold, LEDGER_HOLD_REVIEW) != 0 || settlement_is_fx_leg(&h->s)) {
        return; /* a trade held for review is its operator's in fx_decide_due */
    }
    for (size_t i = 0; i < n->reviews_count; i++) {
        if (strcmp(n->reviews[i].uetr, h->s.uetr) == 0) {
            return; /* on the person's list already */
        }
    }
    if (n->reviews_count == n->reviews_cap) {
        n->reviews_cap = n->reviews_cap ? 2 * n->reviews_cap : 16;
        if ((n->reviews = realloc(n->reviews, n->reviews_cap * sizeof *n->reviews)) == NULL) {
            abort();
        }
    }
    review_t *r = &n->reviews[n->reviews_count++];
    memset(r, 0, sizeof *r);
    snprintf(r->uetr, sizeof r->uetr, "%s", h->s.uetr);
    r->at = w->now + rng_range(&w->hold_rng, 200, 6000);
    int k = item_by_uetr(w, h->s.uetr, node_by_name(w, h->s.peer), n->idx);
    r->accept = k >= 0 && w->items[k].review_accept;
    snprintf(r->reason, sizeof r->reason, "%s", k >= 0 ? w->items[k].review_reason : "");
    trace(w, "%s's operator sees %s held for review: decides at t=%" PRId64, n->name, r->uetr,
          r->at);
}

/* Its operator's `corridor review list` (a pure read), every few seconds. */
static void review_scan(world_t *w, node_t *n)
{
    if (!n->screens || w->now < n->review_scan_ms) {
        return;
    }
    n->review_scan_ms = w->now + rng_range(&w->hold_rng, 500, 2000);
    if (ledger_held(n->reader, review_one, n) != LEDGER_OK) {
        fail(w, "%s: cannot list its held payments: %s", n->name, ledger_last_error(n->reader));
    }
}

/* Inside the transaction: the person's decisions that are due, as daemon.c handle_review (the
 * operator row and the decision together). */
static void reviews_due(world_t *w, node_t *n)
{
    for (size_t i = 0; i < n->reviews_count; i++) {
        review_t *r = &n->reviews[i];
        if (r->in_turn || r->at > w->now) {
            continue;
        }
        size_t index = SIZE_MAX;
        settlement_t s;
        ledger_outcome_t now_out;
        for (size_t p = 0; p < n->config->peers_count && index == SIZE_MAX; p++) {
            if (ledger_find(n->ledger, n->config->peers[p].card.name, r->uetr, &s, &now_out) ==
                    LEDGER_OK &&
                s.direction == DIRECTION_IN) {
                index = p;
            }
        }
        if (index == SIZE_MAX || now_out.status != STATUS_HELD) {
            trace(w, "%s: review %s refused: %s", n->name, r->uetr,
                  index == SIZE_MAX ? "no incoming payment with this id"
                                    : "not held (decided already)");
            n->reviews[i--] = n->reviews[--n->reviews_count];
            continue;
        }
        if (!channel_decides_held(engine_channel(n->engine, index))) {
            trace(w, "%s: review %s refused: the channel is not up (exit 1, tried again)", n->name,
                  r->uetr);
            r->at = w->now + 500; /* as handle_review: decisions wait until it is up */
            continue;
        }
        const char *reason = r->accept      ? NULL
                             : r->reason[0] ? r->reason
                                            : reason_code(REASON_REGULATORY);
        const char *peer = n->config->peers[index].card.name;
        json_t *args =
            json_pack("{s:s, s:s, s:o}", "id", r->uetr, "decision", r->accept ? "accept" : "reject",
                      "reason", reason != NULL ? json_string(reason) : json_null());
        ledger_outcome_t out;
        ledger_err_t rc = operation_record(n->ledger, 0, "review", peer, args);
        if (rc == LEDGER_OK) {
            rc = channel_decide_held(engine_channel(n->engine, index), r->uetr, reason, &out);
        }
        trace(w, "%s's operator reviews %s from %s: %s%s%s: %s", n->name, r->uetr, peer,
              r->accept ? "accept" : "reject", reason ? " " : "", reason ? reason : "",
              ledger_strerror(rc));
        r->in_turn = true;
        if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
            fail(w, "%s: a review of %s failed: %s (%s)", n->name, r->uetr, ledger_strerror(rc),
                 ledger_last_error(n->ledger));
        }
    }
}

/* After the transaction: its reviews done, or to do again (the command failed). */
static void reviews_settle(world_t *w, node_t *n, bool committed)
{
    for (size_t i = 0; i < n->reviews_count; i++) {
        if (!n->reviews[i].in_turn) {
            continue;
        }
        n->reviews[i].in_turn = false;
        if (committed) {
            w->reviews++;
            n->reviews[i--] = n->reviews[--n->reviews_count];
        }
    }
}

/* Inside the transaction: its operator's cancellations that are due, as daemon.c handle_cancel
 * (only to a peer that offered CHANNEL_FEATURE_HOLDS; else refused, and asked again later). */
/* Inside n's transaction: its operator's returns that are due, as daemon.c handle_return does
 * them (channel_prepare_return, the operator row "return", channel_send_settlement). The
 * original first settles (else again a second later; given up once it is final otherwise, or a
 * minute after the faults stopped); the peer must offer CHANNEL_FEATURE_RETURNS. */
static void returns_due(world_t *w, node_t *n)
{
    static const char *const reasons[] = {"AC04", "MS03", "FOCR", "CUST", "AM05"};
    for (size_t k = 0; k < w->rets_count && !w->failed; k++) {
        ret_t *rt = &w->rets[k];
        if (rt->returner != n->idx || rt->done || rt->in_turn || rt->due_ms > w->now) {
            continue;
        }
        const item_t *it = &w->items[rt->item];
        const char *peer = w->node[rt->payer].name;
        channel_t *ch = engine_channel(n->engine, rt->peer_index);
        settlement_t s;
        ledger_outcome_t out;
        ledger_err_t rc = ledger_find(n->ledger, peer, it->uetr, &s, &out);
        bool settled = rc == LEDGER_OK && out.status == STATUS_SETTLED;
        bool final = rc == LEDGER_OK && (out.status == STATUS_REJECTED || settled);
        if (final && !settled) {
            rt->done = rt->abandoned = true; /* nothing to return */
            continue;
        }
        if (!settled || !channel_peer_offers(ch, CHANNEL_FEATURE_RETURNS)) {
            if (w->now > w->faults_end + 60000) {
                rt->done = rt->abandoned = true;
            }
            rt->due_ms = w->now + 1000;
            continue;
        }
        int64_t accepted = 0, pending = 0;
        bool disk_ok = disk_fault_at(w, n->idx, w->now) == DISK_OK;
        if (ledger_returns_of(n->ledger, peer, it->uetr, DIRECTION_OUT, &accepted, &pending) !=
            LEDGER_OK) {
            if (disk_ok) {
                fail(w, "%s: cannot read the returns of %s", n->name, it->uetr);
                return;
            }
            rt->due_ms = w->now + 1000; /* the disk: the command fails, the operator tries later */
            continue;
        }
        int64_t rest = s.amount_minor - accepted - pending;
        const char *reason = reasons[rng_below(&w->ret_rng, 5)];
        settlement_t r;
        if (rt->kind == RET_OVER) {
            /* refused by the command, nothing written: no row, no number, no operator row */
            ledger_counts_t before, after;
            uint64_t seq = channel_stats(ch).sent_seq;
            int64_t amount = rest + 1 + (int64_t)rng_below(&w->ret_rng, 100);
            if (ledger_counts(n->ledger, &before) != LEDGER_OK ||
                (rc = channel_prepare_return(ch, it->uetr, amount, reason, &r)) ==
                    LEDGER_E_STORAGE ||
                ledger_counts(n->ledger, &after) != LEDGER_OK) {
                if (disk_ok) {
                    fail(w, "%s: cannot read its books", n->name);
                    return;
                }
                rt->due_ms = w->now + 1000;
                continue;
            }
            trace(w, "%s's operator returns %" PRId64 " of %s (rest %" PRId64 "): %s (%s)", n->name,
                  amount, it->uetr, rest, ledger_strerror(rc), ledger_last_error(n->ledger));
            if (rc != LEDGER_E_STATE || channel_stats(ch).sent_seq != seq ||
                memcmp(&before, &after, sizeof before) != 0) {
                fail(w, "%s: a return of %" PRId64 " of %s with %" PRId64 " left answered %s%s",
                     n->name, amount, it->uetr, rest, ledger_strerror(rc),
                     rc == LEDGER_E_STATE ? " and wrote something" : ", not LEDGER_E_STATE");
                return;
            }
            rt->done = true;
            rt->abandoned = true;
            n->local_in_turn++;
            continue;
        }
        if (rest <= 0) {
            rt->done = rt->abandoned = true; /* all of it returned or on its way */
            continue;
        }
        int64_t amount =
            rt->kind == RET_FULL || rest == 1 ? 0 : rng_range(&w->ret_rng, 1, rest - 1);
        rc = channel_prepare_return(ch, it->uetr, amount, reason, &r);
        if (rc != LEDGER_OK && !disk_ok) {
            rt->due_ms = w->now + 1000;
            continue;
        }
        if (rc != LEDGER_OK) {
            fail(w, "%s: returning %" PRId64 " of %s (%" PRId64 " left): %s (%s)", n->name, amount,
                 it->uetr, rest, ledger_strerror(rc), ledger_last_error(n->ledger));
            return;
        }
        json_t *args = json_pack("{s:s, s:s, s:s, s:I}", "uetr", it->uetr, "return_id", r.uetr,
                                 "reason", reason, "amount_minor", (json_int_t)r.amount_minor);
        rc = operation_record(n->ledger, 0, "return", peer, args);
        if (rc == LEDGER_OK) {
            rc = channel_send_settlement(ch, &r, &out);
        }
        trace(w, "%s's operator returns %" PRId64 " of %s to %s (%s), return %s: %s", n->name,
              r.amount_minor, it->uetr, peer, reason, r.uetr, ledger_strerror(rc));
        rt->done = rt->in_turn = true;
        rt->amount = r.amount_minor;
        snprintf(rt->id, sizeof rt->id, "%s", r.uetr);
        if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
            fail(w, "%s: returning %s failed: %s (%s)", n->name, it->uetr, ledger_strerror(rc),
                 ledger_last_error(n->ledger));
        }
    }
}

static void cancels_due(world_t *w, node_t *n)
{
    for (size_t c = 0; c < n->cancels_count; c++) {
        item_t *it = &w->items[n->cancels[c]];
        if (it->cancel_done || it->cancel_in_turn || it->cancel_ms > w->now) {
            continue;
        }
        if (!it->committed) {
            it->cancel_ms = w->now + 1000; /* the payment first */
            continue;
        }
        const char *peer = w->node[it->payee].name;
        channel_t *ch = engine_channel(n->engine, it->peer_index);
        settlement_t s;
        ledger_outcome_t out;
        if (ledger_find(n->ledger, peer, it->uetr, &s, &out) != LEDGER_OK ||
            s.direction != DIRECTION_OUT) {
            fail(w, "%s: its payment %s to %s is not in its books", n->name, it->uetr, peer);
            return;
        }
        bool open = out.status == STATUS_PENDING && out.cancel_id[0] == '\0';
        if (open && !channel_peer_offers(ch, CHANNEL_FEATURE_HOLDS)) {
            trace(w, "%s: cancel %s refused: %s has not offered cancellations", n->name, it->uetr,
                  peer);
            it->cancel_ms = w->now + 1000;
            continue;
        }
        if (!open) { /* final, or asked already: the command answers as it stands */
            trace(w, "%s: cancel %s: it is %s, nothing sent", n->name, it->uetr,
                  status_name(out.status));
            it->cancel_done = true;
            continue;
        }
        json_t *args = json_pack("{s:s, s:s}", "uetr", it->uetr, "reason", it->cancel_reason);
        char id[CORRIDOR_UETR_LEN + 1] = "";
        ledger_err_t rc = operation_record(n->ledger, 0, "cancel", peer, args);
        if (rc == LEDGER_OK) {
            rc = channel_cancel(ch, it->uetr, it->cancel_reason, id, &out);
        }
        trace(w, "%s's operator cancels %s to %s (%s): %s, cancellation %s", n->name, it->uetr,
              peer, it->cancel_reason, ledger_strerror(rc), id);
        it->cancel_in_turn = true;
        if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
            fail(w, "%s: cancelling %s failed: %s (%s)", n->name, it->uetr, ledger_strerror(rc),
                 ledger_last_error(n->ledger));
        }
    }
}

/* The earliest of its programs' verdicts, its operator's next look and decisions, and its
 * cancellations. */
static int64_t holds_next(const world_t *w, const node_t *n)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < n->running.count; i++) {
        next = n->running.v[i].at < next ? n->running.v[i].at : next;
    }
    for (size_t i = 0; i < n->reviews_count; i++) {
        next = n->reviews[i].at < next ? n->reviews[i].at : next;
    }
    for (size_t c = 0; c < n->cancels_count; c++) {
        const item_t *it = &w->items[n->cancels[c]];
        next = !it->cancel_done && it->cancel_ms < next ? it->cancel_ms : next;
    }
    return next;
}

/* Whether its transaction has work of the holds: a verdict, a decision or a cancellation. */
static bool holds_work(const world_t *w, const node_t *n)
{
    if (n->verdicts.count > 0) {
        return true;
    }
    for (size_t i = 0; i < n->reviews_count; i++) {
        if (n->reviews[i].at <= w->now) {
            return true;
        }
    }
    for (size_t c = 0; c < n->cancels_count; c++) {
        const item_t *it = &w->items[n->cancels[c]];
        if (!it->cancel_done && it->cancel_ms <= w->now) {
            return true;
        }
    }
    return false;
}

/* ---- nodes: start, crash, restart -------------------------------------------------------------
 */

static bool node_open(world_t *w, node_t *n)
{
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/%s", n->home, LEDGER_FILE);
    disk_set_fault(n->idx, DISK_OK); /* an operator starts it once the disk is fine */
    if (ledger_open(path, n->name, LEDGER_READ_WRITE, DISK_VFS, &n->ledger, err, sizeof err) !=
            LEDGER_OK ||
        ledger_open(path, n->name, LEDGER_READ_ONLY, DISK_VFS, &n->reader, err, sizeof err) !=
            LEDGER_OK) {
        fail(w, "%s: cannot open its ledger: %s", n->name, err);
        return false;
    }
    size_t count = n->config->peers_count;
    n->keys = sodium_malloc((count + 1) * sizeof *n->keys);
    if (n->keys == NULL) {
        abort();
    }
    for (size_t i = 0; i < count; i++) {
        if (envelope_peer_init(&n->keys[i], n->id, &n->config->peers[i].card) != ENV_OK) {
            fail(w, "%s: envelope_peer_init", n->name);
            return false;
        }
    }
    engine_ctx_t ctx = {
        .self = n->id,
        .self_previous = n->previous_gone ? NULL : n->id_previous,
        .config = n->config,
        .ledger = n->ledger,
        .reader = n->reader,
        .keys = n->keys,
        .send = net_send,
        .on_final = on_final,
        .on_report = on_report,
        .screen = n->screens ? sim_screen : NULL,
        .on_held = n->screens ? sim_on_held : NULL,
        .arg = n,
        .incarnation = (uint64_t)wall_of(w->now) * 1000 + (uint64_t)n->idx,
    };
    if ((n->engine = engine_new(&ctx, w->now, wall_of(w->now))) == NULL) {
        fail(w, "%s: engine_new: %s", n->name, ledger_last_error(n->ledger));
        return false;
    }
    curve_serve(w, n); /* the key history's: mid-rotation, the previous keys' */
    if (n->screens) {
        screening_restart(w, n);
    }
    if (sqlite3_open_v2(path, &n->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(n->db,
                           "SELECT seq, kind, peer, uetr, currency, amount_minor, reason,"
                           " content_hash, evidence, created_ms, reply, hash FROM journal"
                           " WHERE seq > ?1 ORDER BY seq",
                           -1, &n->journal_from, NULL) != SQLITE_OK) {
        fail(w, "%s: cannot read its journal: %s", n->name, sqlite3_errmsg(n->db));
        return false;
    }
    n->chain_rows = 0; /* after a restart the whole chain is checked again */
    memset(n->chain_head, 0, sizeof n->chain_head);
    n->up = true;
    n->wake_ms = w->now;
    n->busy_until = w->now;
    return true;
}

static void inbox_clear(node_t *n)
{
    for (size_t i = 0; i < n->inbox_count; i++) {
        free(n->inbox[i].data);
    }
    n->inbox_count = 0;
}

/* Everything in memory is dropped: only what the ledger committed survives. */
static void node_close(node_t *n)
{
    sqlite3_finalize(n->journal_from);
    n->journal_from = NULL;
    sqlite3_close(n->db);
    n->db = NULL;
    for (size_t p = 0; n->engine != NULL && p < n->config->peers_count; p++) {
        n->unentitled_from[n->peer_node[p]] +=
            channel_stats(engine_channel(n->engine, p)).unentitled;
    }
    engine_free(&n->engine);
    /* the programs running and their verdicts die with the process */
    n->held_now.count = n->running.count = n->queued.count = n->verdicts.count = 0;
    ledger_close(&n->reader);
    ledger_close(&n->ledger);
    if (n->keys != NULL) {
        for (size_t i = 0; i < n->config->peers_count; i++) {
            envelope_peer_wipe(&n->keys[i]);
        }
        sodium_free(n->keys);
        n->keys = NULL;
    }
    inbox_clear(n);
    n->up = false;
    n->curve_pending = false;
    for (int i = 0; i < NODES_MAX; i++) {
        json_decref(n->reports[i]);
        n->reports[i] = NULL;
    }
}

static void so_note_crash(world_t *w, node_t *n);

static void node_crash(world_t *w, node_t *n, int64_t down_ms, const char *how)
{
    so_note_crash(w, n);
    node_close(n);
    n->crashes++;
    n->restart_ms = w->now + down_ms;
    trace(w, "%s CRASH (%s), back at t=%" PRId64, n->name, how, n->restart_ms);
}

/* ---- checks -----------------------------------------------------------------------------------
 */

/* I5, incrementally: the journal rows written since the last check continue the hash chain
 * (each row's hash recomputed over the row and its predecessor's), and the head the writer
 * keeps in memory (the next row chains to it) is the last of them. */
static void check_chain(world_t *w, node_t *n)
{
    sqlite3_stmt *st = n->journal_from;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, n->chain_rows);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ledger_row_t row = {
            .seq = sqlite3_column_int64(st, 0),
            .kind = (entry_kind_t)sqlite3_column_int(st, 1),
            .peer = (const char *)sqlite3_column_text(st, 2),
            .uetr = (const char *)sqlite3_column_text(st, 3),
            .currency = (const char *)sqlite3_column_text(st, 4),
            .amount_minor = sqlite3_column_int64(st, 5),
            .reason = (const char *)sqlite3_column_text(st, 6),
            .content_hash = sqlite3_column_blob(st, 7),
            .evidence = sqlite3_column_blob(st, 8),
            .evidence_len = (size_t)sqlite3_column_bytes(st, 8),
            .created_unix_ms = sqlite3_column_int64(st, 9),
            .reply = sqlite3_column_blob(st, 10),
            .reply_len = (size_t)sqlite3_column_bytes(st, 10),
        };
        uint8_t hash[LEDGER_HASH_BYTES];
        if (row.seq != n->chain_rows + 1 || sqlite3_column_bytes(st, 7) != SETTLEMENT_HASH_BYTES ||
            sqlite3_column_bytes(st, 11) != LEDGER_HASH_BYTES) {
            fail(w, "I5: %s's journal row %lld follows row %lld or is malformed", n->name,
                 (long long)row.seq, (long long)n->chain_rows);
            break;
        }
        ledger_row_hash(n->chain_head, &row, hash);
        if (memcmp(hash, sqlite3_column_blob(st, 11), LEDGER_HASH_BYTES) != 0) {
            fail(w, "I5: %s's journal row %lld does not hash to what is stored", n->name,
                 (long long)row.seq);
            break;
        }
        memcpy(n->chain_head, hash, sizeof hash);
        n->chain_rows = row.seq;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fail(w, "%s: cannot read its journal: %s", n->name, sqlite3_errmsg(n->db));
    }
    sqlite3_reset(st);
    uint8_t head[LEDGER_HASH_BYTES];
    uint64_t rows = 0;
    if (!w->failed &&
        (ledger_head(n->ledger, head, &rows) != LEDGER_OK || rows != (uint64_t)n->chain_rows ||
         memcmp(head, n->chain_head, sizeof head) != 0)) {
        fail(w, "I5: %s's ledger names a head of %llu rows other than its journal's %lld", n->name,
             (unsigned long long)rows, (long long)n->chain_rows);
    }
}

/* I1: every currency sums to zero over the node's accounts, posted and pending. */
static void check_balances(world_t *w, node_t *n)
{
    books_cursor_t *c = NULL;
    if (books_accounts(n->reader, &c) != LEDGER_OK) {
        fail(w, "%s: cannot read its accounts: %s", n->name, ledger_last_error(n->reader));
        return;
    }
    char currency[CORRIDOR_CURRENCY_LEN + 1] = "";
    int64_t posted = 0, pending = 0;
    books_account_t a;
    int rc;
    while ((rc = books_accounts_next(c, &a)) == 1 || currency[0] != '\0') {
        if (rc != 1 || strcmp(a.currency, currency) != 0) { /* ordered by currency */
            if (currency[0] != '\0' && (posted != 0 || pending != 0)) {
                fail(w, "I1: %s's accounts in %s sum to %" PRId64 " posted, %" PRId64 " pending",
                     n->name, currency, posted, pending);
            }
            if (rc != 1) {
                break;
            }
            snprintf(currency, sizeof currency, "%s", a.currency);
            posted = pending = 0;
        }
        posted += a.posted_net;
        pending += a.pending_net;
    }
    if (rc < 0) {
        fail(w, "%s: cannot read its accounts: %s", n->name, ledger_last_error(n->reader));
    }
    books_close(&c);
}

/* ---- the workload, inside a turn's transaction ------------------------------------------------
 */

static void item_settlement(const world_t *w, const item_t *it, settlement_t *s)
{
    memset(s, 0, sizeof *s);
    const node_t *payer = &w->node[it->payer];
    snprintf(s->peer, sizeof s->peer, "%s", w->node[it->payee].name);
    s->direction = DIRECTION_OUT;
    snprintf(s->uetr, sizeof s->uetr, "%s", it->uetr);
    s->amount_minor = it->amount;
    snprintf(s->currency, sizeof s->currency, "%s", it->currency);
    snprintf(s->debtor_name, sizeof s->debtor_name, "Debtor of %s", payer->name);
    if (it->listed) {
        snprintf(s->creditor_name, sizeof s->creditor_name, "%s", LISTED_NAME);
    } else {
        snprintf(s->creditor_name, sizeof s->creditor_name, "Creditor of %s", s->peer);
    }
    snprintf(s->remittance, sizeof s->remittance, "sim %u", it->tag);
    s->created_unix_ms = wall_of(w->now);
    s->expires_unix_ms = it->expires_in > 0 ? s->created_unix_ms + it->expires_in : 0;
    time_t t = (time_t)(wall_of(w->now) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s->value_date, sizeof s->value_date, "%Y-%m-%d", &tm);
}

static void make_uetr(rng_t *r, char out[static CORRIDOR_UETR_LEN + 1]);

/* The compromised node's sequenced messages: contents an honest node never sends, signed with
 * its valid keys at its next sequence number on its real channel (channel_send_body), so its
 * own numbering stays whole and the receiver must apply each as nothing (PROTOCOL.md 3.3). Its
 * own books know none of them: any effect on the receiver's books breaks a count, a mirror, a
 * reconciliation or the audit at the end. A UETR is named only once the item holding it has
 * committed where the forgery collides with it, and there is no forging in a world with a
 * restore (a rolled-back node may honestly see a lost UETR taken). */
typedef enum {
    FORGE_REPORT_ELSEWHERE,  /* an answer to the receiver's payment to a third node, or to none */
    FORGE_REPORT_OTHER_BODY, /* an answer to the receiver's payment to it, naming other contents */
    FORGE_SETTLEMENT_THEIR_UETR, /* a payment under the UETR of the receiver's payment to it */
    FORGE_SETTLEMENT_CONFLICT,   /* the UETR of its own earlier payment, another amount */
    FORGE_RETURN, /* a hostile Return (forge_return): of no payment of the receiver's to it, over
                     what is left, naming other contents, or under a reused id */
    /* unentitled (PROTOCOL.md 3.8.4): each must be counted by the receiver and change nothing */
    FORGE_CANCEL_ANSWER,  /* a CancelAnswer to the receiver's payment to it, nobody asked */
    FORGE_PDNG_AFTER,     /* a PDNG for the receiver's payment to it, after its final answer */
    FORGE_CANCEL_REQUEST, /* a CancelRequest for the receiver's payment to it, or for none */
    FORGE_KINDS
} forge_kind_t;

static const char *const FORGE_NAMES[] = {"an answer to a payment made elsewhere",
                                          "an answer naming other contents",
                                          "a Settlement under the receiver's own UETR",
                                          "a Settlement reusing its UETR, other amount",
                                          "a hostile Return",
                                          "a CancelAnswer nobody asked for",
                                          "a PDNG after its final answer",
                                          "a CancelRequest for a payment it did not send"};

/* The body hash of y's payment to x as x holds it (the body x's record re-encodes: what y
 * names too); false when x does not hold it. */
static bool forge_body_hash(node_t *x, const char *y, const char *uetr, uint8_t hash[32],
                            ledger_outcome_t *o)
{
    settlement_t s;
    uint8_t *body = NULL;
    size_t len = 0;
    if (ledger_find(x->reader, y, uetr, &s, o) != LEDGER_OK || s.direction != DIRECTION_IN ||
        settlement_encode(&s, &body, &len) != 0) {
        return false;
    }
    settlement_body_hash(body, len, hash);
    free(body);
    return true;
}

static ret_t *ret_push(world_t *w)
{
    if (w->rets_count == w->rets_cap) {
        w->rets_cap = w->rets_cap ? 2 * w->rets_cap : 64;
        if ((w->rets = realloc(w->rets, w->rets_cap * sizeof *w->rets)) == NULL) {
            abort();
        }
    }
    ret_t *r = &w->rets[w->rets_count++];
    memset(r, 0, sizeof *r);
    return r;
}

/* An item between `payer` and `payee` (-1: any node but `not`) that committed at `at`, from a
 * random start; -1 if none. */
static int forge_pick(world_t *w, int payer, int payee, int not, int at)
{
    if (w->items_count == 0) {
        return -1;
    }
    size_t start = (size_t)rng_below(&w->forge_rng, w->items_count);
    for (size_t i = 0; i < w->items_count; i++) {
        const item_t *it = &w->items[(start + i) % w->items_count];
        bool dup = it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER;
        if (!dup && it->payer == payer && (payee < 0 ? it->payee != not : it->payee == payee) &&
            it->committed && it->payer == at) {
            return (int)((start + i) % w->items_count);
        }
    }
    return -1;
}

/* Inside the compromised node x's transaction: one forged message to a random peer. */
static void forge_sequenced(world_t *w, node_t *x)
{
    w->forge_due_ms = w->now + rng_range(&w->forge_rng, 200, 2000);
    size_t p = (size_t)rng_below(&w->forge_rng, x->config->peers_count);
    int y = x->peer_node[p];
    channel_t *ch = engine_channel(x->engine, p);
    forge_kind_t kind = (forge_kind_t)rng_below(&w->forge_rng, FORGE_KINDS);
    uint8_t hash[32];
    for (size_t i = 0; i < sizeof hash; i++) {
        hash[i] = (uint8_t)rng_next(&w->forge_rng);
    }
    char uetr[CORRIDOR_UETR_LEN + 1];
    make_uetr(&w->forge_rng, uetr);
    uint8_t *body = NULL;
    size_t len = 0;
    msg_type_t type = MSG_STATUS_REPORT;
    int k = -1;
    if (kind == FORGE_REPORT_ELSEWHERE || kind == FORGE_REPORT_OTHER_BODY) {
        k = kind == FORGE_REPORT_ELSEWHERE ? forge_pick(w, y, -1, x->idx, y)
                                           : forge_pick(w, y, x->idx, -1, y);
        if (kind == FORGE_REPORT_OTHER_BODY && (k < 0 || channel_wire_version(ch) < 2)) {
            return; /* a version-1 answer names no contents: it would be an honest one */
        }
        Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
        bool settled = rng_chance(&w->forge_rng, 500);
        sr.uetr = k >= 0 ? w->items[k].uetr : uetr;
        sr.status = settled ? "ACSC" : "RJCT";
        sr.reason = settled ? "" : "AM04";
        sr.currency = k >= 0 ? w->items[k].currency : "RUB";
        sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
        len = corridor__status_report__get_packed_size(&sr);
        if ((body = malloc(len)) == NULL) {
            abort();
        }
        corridor__status_report__pack(&sr, body);
    } else if (kind == FORGE_SETTLEMENT_THEIR_UETR || kind == FORGE_SETTLEMENT_CONFLICT) {
        k = kind == FORGE_SETTLEMENT_THEIR_UETR ? forge_pick(w, y, x->idx, -1, y)
                                                : forge_pick(w, x->idx, y, -1, x->idx);
        if (k < 0) {
            return;
        }
        item_t it = w->items[k];
        it.payer = x->idx;
        it.payee = y;
        it.amount += 1 + (int64_t)rng_below(&w->forge_rng, 100);
        settlement_t st;
        item_settlement(w, &it, &st);
        type = MSG_SETTLEMENT;
        if (settlement_encode(&st, &body, &len) != 0) {
            abort();
        }
    } else if (kind == FORGE_CANCEL_ANSWER || kind == FORGE_PDNG_AFTER ||
               kind == FORGE_CANCEL_REQUEST) {
        k = forge_pick(w, y, x->idx, -1, y);
        ledger_outcome_t o;
        bool known = k >= 0 && forge_body_hash(x, w->node[y].name, w->items[k].uetr, hash, &o);
        bool final = known && (o.status == STATUS_SETTLED || o.status == STATUS_REJECTED ||
                               o.status == STATUS_RETURNED);
        if ((kind == FORGE_PDNG_AFTER && !final) || (kind == FORGE_CANCEL_ANSWER && !known)) {
            return; /* an answer after ours, to what we hold */
        }
        if (kind == FORGE_CANCEL_REQUEST && rng_chance(&w->forge_rng, 300)) {
            k = -1; /* a payment nobody made */
        }
        const char *target = k >= 0 ? w->items[k].uetr : uetr;
        char id[CORRIDOR_UETR_LEN + 1];
        make_uetr(&w->forge_rng, id);
        if (kind == FORGE_CANCEL_ANSWER) {
            bool cncl = rng_chance(&w->forge_rng, 500);
            Corridor__CancelAnswer a = CORRIDOR__CANCEL_ANSWER__INIT;
            a.cancellation_id = id;
            a.uetr = (char *)target;
            a.confirmation = cncl ? "CNCL" : "RJCR";
            a.reason = cncl ? "CUST" : "AGNT";
            a.status = cncl || o.status == STATUS_REJECTED ? "RJCT" : "ACSC";
            a.status_reason = cncl ? "CUST" : o.status == STATUS_REJECTED ? o.reason : "";
            a.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
            type = MSG_CANCEL_ANSWER;
            len = corridor__cancel_answer__get_packed_size(&a);
            if ((body = malloc(len)) == NULL) {
                abort();
            }
            corridor__cancel_answer__pack(&a, body);
        } else if (kind == FORGE_PDNG_AFTER) {
            Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
            sr.uetr = (char *)target;
            sr.status = "PDNG";
            sr.reason = "";
            sr.currency = w->items[k].currency;
            sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
            len = corridor__status_report__get_packed_size(&sr);
            if ((body = malloc(len)) == NULL) {
                abort();
            }
            corridor__status_report__pack(&sr, body);
        } else {
            Corridor__CancelRequest r = CORRIDOR__CANCEL_REQUEST__INIT;
            r.cancellation_id = id;
            r.uetr = (char *)target;
            r.reason = "FRAD";
            r.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
            type = MSG_CANCEL_REQUEST;
            len = corridor__cancel_request__get_packed_size(&r);
            if ((body = malloc(len)) == NULL) {
                abort();
            }
            corridor__cancel_request__pack(&r, body);
        }
        x->forged_in_turn[y]++;
    } else {
        /* a hostile Return (PROTOCOL.md 3.9.2). Booked in its own books as an honest returner's
         * (channel_send_settlement, bypassing channel_prepare_return's checks), so that both
         * ends hold the refused return: of its own payment to the receiver, or a payment nobody
         * made (NOOR); of the receiver's settled payment to it, over the amount (AM09) or naming
         * other contents (NOOR). Under the id of a payment the receiver holds, unbooked
         * (channel_send_body): DUPL, stored nowhere. */
        int choice = (int)rng_below(&w->forge_rng, 4);
        k = choice == 0 ? forge_pick(w, x->idx, y, -1, x->idx) : forge_pick(w, y, x->idx, -1, y);
        settlement_t r, o;
        ledger_outcome_t oo;
        memset(&r, 0, sizeof r);
        snprintf(r.peer, sizeof r.peer, "%s", w->node[y].name);
        r.direction = DIRECTION_OUT;
        snprintf(r.return_reason, sizeof r.return_reason, "AC04");
        make_uetr(&w->forge_rng, r.uetr);
        if (k < 0) {
            return;
        }
        const item_t *orig = &w->items[k];
        snprintf(r.currency, sizeof r.currency, "%s", orig->currency);
        snprintf(r.original_uetr, sizeof r.original_uetr, "%s",
                 choice == 0 && rng_chance(&w->forge_rng, 300) ? uetr : orig->uetr);
        r.amount_minor = orig->amount;
        memcpy(r.original_hash, hash, sizeof hash);
        if (choice > 0) { /* the receiver's payment to it: one it holds settled */
            if (ledger_find(x->ledger, r.peer, orig->uetr, &o, &oo) != LEDGER_OK ||
                o.direction != DIRECTION_IN || oo.status != STATUS_SETTLED ||
                !forge_body_hash(x, r.peer, orig->uetr, r.original_hash, &oo)) {
                return;
            }
            r.amount_minor = choice == 1
                                 ? orig->amount + 1 + (int64_t)rng_below(&w->forge_rng, 100)
                                 : 1 + (int64_t)rng_below(&w->forge_rng, (uint64_t)orig->amount);
            if (choice == 2) {
                memcpy(r.original_hash, hash, sizeof hash); /* other contents */
            }
        }
        if (choice == 3) {
            snprintf(r.uetr, sizeof r.uetr, "%s", orig->uetr); /* the id of its payment */
            type = MSG_RETURN;
            if (settlement_encode(&r, &body, &len) != 0) {
                abort();
            }
            x->dupl_in_turn++;
        } else {
            ledger_outcome_t out;
            ledger_err_t rc = channel_send_settlement(ch, &r, &out);
            if (rc != LEDGER_OK && disk_fault_at(w, x->idx, w->now) == DISK_OK) {
                fail(w, "%s: booking a hostile Return failed: %s", x->name, ledger_strerror(rc));
                return;
            }
            if (rc == LEDGER_OK) {
                ret_t *rt = ret_push(w);
                rt->returner = x->idx;
                rt->payer = y;
                rt->item = (size_t)k;
                rt->peer_index = p;
                rt->kind = RET_HOSTILE;
                rt->done = true;
                rt->in_turn = true;
                rt->amount = r.amount_minor;
                snprintf(rt->id, sizeof rt->id, "%s", r.uetr);
            }
            w->forged_sequenced++;
            trace(w,
                  "%s->%s Return %s: hostile, booked by the compromised %s (%s of %s, %" PRId64 ")",
                  x->name, w->node[y].name, r.uetr, x->name,
                  choice == 0   ? "no payment of the receiver's"
                  : choice == 1 ? "over the amount"
                                : "other contents",
                  r.original_uetr, r.amount_minor);
            return;
        }
    }
    ledger_err_t rc = channel_send_body(ch, type, body, len);
    free(body);
    if (rc != LEDGER_OK && kind >= FORGE_CANCEL_ANSWER) {
        x->forged_in_turn[y]--;
    }
    if (rc != LEDGER_OK && disk_fault_at(w, x->idx, w->now) == DISK_OK) {
        fail(w, "%s: queueing a forged %s failed: %s", x->name, type_name(type),
             ledger_strerror(rc));
        return;
    }
    w->forged_sequenced++;
    trace(w, "%s->%s %s: forged by the compromised %s (%s%s%s)", x->name, w->node[y].name,
          type_name(type), x->name, FORGE_NAMES[kind], k >= 0 ? ", UETR " : "",
          k >= 0 ? w->items[k].uetr : "");
}

/* Inside the rotating node's transaction: new signing and box keys announced on every
 * channel, as `corridor key rotate --overlap` does (daemon.c handle_rotate): a new CURVE key too
 * when every channel's peer offered CHANNEL_FEATURE_CURVE since the start; not ready (a peer
 * not heard since the start, the last announcement unacknowledged, its CURVE switch not
 * queued, or channel_previous_keys_needed): again a second later. */
static void rotate_keys(world_t *w, node_t *n)
{
    rng_t *r = &w->rotate_rng;
    if (engine_curve_pending(n->engine)) {
        trace(w, "%s cannot rotate yet: its last CURVE switch is not done", n->name);
        n->rotate_at = w->now + 1000;
        return;
    }
    bool new_curve = true;
    for (size_t i = 0; i < n->config->peers_count; i++) {
        new_curve &= channel_peer_offers(engine_channel(n->engine, i), CHANNEL_FEATURE_CURVE);
    }
    uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES], curve_raw[32];
    char curve_secret[IDENTITY_CURVE_KEY_CHARS + 1];
    for (size_t i = 0; i < sizeof seed; i++) {
        seed[i] = (uint8_t)rng_next(r);
        box[i] = (uint8_t)rng_next(r);
        curve_raw[i] = (uint8_t)rng_next(r);
    }
    if (zmq_z85_encode(curve_secret, curve_raw, sizeof curve_raw) == NULL) {
        abort();
    }
    int64_t overlap_ms = rng_chance(r, 250) ? 0 : rng_range(r, 1, 180) * 1000;
    identity_t *next =
        identity_from_secrets(seed, box, new_curve ? curve_secret : n->id->curve_secret);
    if (next == NULL) {
        abort();
    }
    size_t not_ready = 0;
    engine_set_curve_overlap(n->engine, overlap_ms);
    ledger_err_t rc = engine_rotate(n->engine, next, &not_ready);
    if (rc == LEDGER_OK) {
        n->id_next = next;
        n->next_new_curve = new_curve;
        trace(w, "%s rotates its keys (announced on every channel)%s, overlap %" PRId64 " s",
              n->name, new_curve ? " with a new CURVE key" : ", keeping its CURVE key",
              overlap_ms / 1000);
        return;
    }
    identity_destroy(&next);
    if (rc == LEDGER_E_STATE) {
        trace(w, "%s cannot rotate yet: %s not ready%s", n->name,
              n->config->peers[not_ready].card.name,
              channel_previous_keys_needed(engine_channel(n->engine, not_ready))
                  ? " (it may still send what needs the previous keys)"
                  : "");
        n->rotate_at = w->now + 1000;
    } else if (disk_fault_at(w, n->idx, w->now) == DISK_OK) {
        fail(w, "%s: rotating its key failed: %s (%s)", n->name, ledger_strerror(rc),
             ledger_last_error(n->ledger));
    }
}

/* After the rotating node's transaction: its new keys are its own if the commit stands. */
static void rotation_settle(world_t *w, node_t *n, bool committed)
{
    if (n->id_next == NULL) {
        return;
    }
    if (!committed) {
        identity_destroy(&n->id_next);
        return;
    }
    identity_destroy(&n->id_previous);
    n->id_previous = n->id;
    n->id = n->id_next;
    n->id_next = NULL;
    n->previous_gone = false;
    n->rotations_done++;
    n->rotate_at = w->now + rng_range(&w->rotate_rng, 2000, 10000);
    if (n->next_new_curve) {
        w->curve_rotations++;
        w->keyswitches_wanted += n->config->peers_count;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/%s", n->home, IDENTITY_KEY_FILE);
    if (identity_save(n->id, path) != ID_OK) {
        fail(w, "identity_save %s", path);
    }
}

/* engine_transaction's work: the node's items that are due, as daemon.c's handle_send. */
/* ---- FX trades (PROTOCOL.md 3.10) -------------------------------------------------------------
 */

static bool accepts(const node_t *n, const char *ccy);

static int64_t minor_per_unit(const char *ccy)
{
    const currency_t *c = currency_find(ccy);
    int64_t p = 1;
    for (unsigned i = 0; c != NULL && i < c->exponent; i++) {
        p *= 10;
    }
    return p;
}

/* Inside n's transaction: its operator's trades that are due, as daemon.c handle_fx does them
 * (channel_prepare_fx, the operator row "fx", channel_propose_fx); again a second later while
 * the peer has not offered CHANNEL_FEATURE_FX. A trade lost with its transaction is proposed
 * again under new ids (the operator runs `corridor fx` again). */
static void fx_due(world_t *w, node_t *n)
{
    for (size_t k = 0; k < w->fxs_count && !w->failed; k++) {
        fx_t *f = &w->fxs[k];
        if (f->proposer != n->idx || f->kind == FX_HOSTILE_RATE || f->done || f->in_turn ||
            f->due_ms > w->now) {
            continue;
        }
        channel_t *ch = engine_channel(n->engine, f->peer_index);
        const char *peer = w->node[f->acceptor].name;
        if (w->restore.restored && w->restore.node == n->idx &&
            !n->up_since_restore[f->peer_index]) {
            f->due_ms = w->now + 1000; /* as submit_due: once the channel is whole again */
            continue;
        }
        if (!channel_peer_offers(ch, CHANNEL_FEATURE_FX)) {
            f->due_ms = w->now + 1000; /* handle_fx refuses: the operator tries again */
            continue;
        }
        fx_trade_t t;
        memset(&t, 0, sizeof t);
        make_uetr(&w->fx_rng, t.fx_id);
        make_uetr(&w->fx_rng, t.legs[FX_PAY].uetr);
        make_uetr(&w->fx_rng, t.legs[FX_RECEIVE].uetr);
        snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "%s", f->pay_ccy);
        snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "%s",
                 f->recv_ccy);
        t.legs[FX_PAY].amount_minor = f->pay_minor;
        t.legs[FX_RECEIVE].amount_minor = f->recv_minor;
        t.created_unix_ms = wall_of(w->now);
        t.expires_unix_ms = f->expires_in > 0 ? t.created_unix_ms + f->expires_in : 0;
        bool disk_ok = disk_fault_at(w, n->idx, w->now) == DISK_OK;
        const char *why = NULL;
        ledger_err_t rc = channel_prepare_fx(ch, &t, &why);
        if (rc != LEDGER_OK && !disk_ok) {
            f->due_ms = w->now + 1000; /* the disk: the command fails, the operator tries later */
            continue;
        }
        if (rc != LEDGER_OK || why != NULL) {
            fail(w, "%s: preparing the %s trade %s with %s: %s%s%s", n->name,
                 FX_KIND_NAMES[f->kind], t.fx_id, peer, ledger_strerror(rc), why ? " " : "",
                 why ? why : "");
            return;
        }
        json_t *args =
            json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "fx_id", t.fx_id, "pay_currency",
                      f->pay_ccy, "pay_minor", (json_int_t)f->pay_minor, "receive_currency",
                      f->recv_ccy, "receive_minor", (json_int_t)f->recv_minor, "rate", t.rate);
        rc = operation_record(n->ledger, 0, "fx", peer, args);
        ledger_outcome_t out;
        if (rc == LEDGER_OK) {
            rc = channel_propose_fx(ch, &t, &why, &out);
        }
        trace(w,
              "%s's operator proposes %s trade %s to %s: pays %" PRId64 " %s for %" PRId64
              " %s (rate %s, expires in %" PRId64 " ms): %s%s%s",
              n->name, FX_KIND_NAMES[f->kind], t.fx_id, peer, f->pay_minor, f->pay_ccy,
              f->recv_minor, f->recv_ccy, t.rate, f->expires_in, ledger_strerror(rc),
              why ? " " : "", why ? why : "");
        f->done = f->in_turn = true;
        snprintf(f->fx_id, sizeof f->fx_id, "%s", t.fx_id);
        for (int i = 0; i < 2; i++) {
            memcpy(f->uetr[i], t.legs[i].uetr, sizeof f->uetr[i]);
        }
        if ((rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) ||
            (rc == LEDGER_OK && why != NULL)) {
            fail(w, "%s: proposing trade %s failed: %s%s%s (%s)", n->name, t.fx_id,
                 ledger_strerror(rc), why ? " " : "", why ? why : "", ledger_last_error(n->ledger));
        }
    }
}

/* Inside n's transaction: its operator's decisions on the trades it holds for review, as
 * daemon.c handle_review does them (the operator row "review" and channel_decide_held naming
 * the trade's id). A trade not arrived yet, or a channel not UP, waits: again half a second
 * later; a trade decided meanwhile (expired) is left. */
static void fx_decide_due(world_t *w, node_t *n)
{
    for (size_t k = 0; k < w->fxs_count && !w->failed; k++) {
        fx_t *f = &w->fxs[k];
        if (f->acceptor != n->idx || !f->committed || f->decided || f->decide_in_turn ||
            f->decide_ms == 0 || f->decide_ms > w->now) {
            continue;
        }
        const char *peer = w->node[f->proposer].name;
        size_t index = n->index_of[f->proposer];
        channel_t *ch = engine_channel(n->engine, index);
        settlement_t legs[2];
        ledger_outcome_t now_out;
        ledger_err_t rc = ledger_fx_find(n->ledger, peer, f->fx_id, legs, &now_out);
        bool disk_ok = disk_fault_at(w, n->idx, w->now) == DISK_OK;
        if (rc == LEDGER_E_NOT_FOUND || (rc != LEDGER_OK && !disk_ok)) {
            f->decide_ms = w->now + 500; /* not in `review list` yet */
            continue;
        }
        if (rc != LEDGER_OK) {
            fail(w, "%s: cannot find trade %s: %s", n->name, f->fx_id, ledger_strerror(rc));
            return;
        }
        if (now_out.status != STATUS_HELD) {
            f->decided = true; /* refused on arrival, or expired meanwhile */
            continue;
        }
        if (!channel_decides_held(ch)) {
            f->decide_ms = w->now + 500; /* handle_review: decisions wait until it is up */
            continue;
        }
        bool accept = f->kind == FX_REVIEW_ACCEPT;
        const char *reason = accept ? NULL : "RR04";
        json_t *args =
            json_pack("{s:s, s:s, s:o}", "id", f->fx_id, "decision", accept ? "accept" : "reject",
                      "reason", reason != NULL ? json_string(reason) : json_null());
        ledger_outcome_t out;
        rc = operation_record(n->ledger, 0, "review", peer, args);
        if (rc == LEDGER_OK) {
            rc = channel_decide_held(ch, f->fx_id, reason, &out);
        }
        trace(w, "%s's operator reviews trade %s from %s: %s: %s", n->name, f->fx_id, peer,
              accept ? "accept" : "reject RR04", ledger_strerror(rc));
        f->decide_in_turn = true;
        if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
            fail(w, "%s: a review of trade %s failed: %s (%s)", n->name, f->fx_id,
                 ledger_strerror(rc), ledger_last_error(n->ledger));
        }
    }
}

static fx_t *fx_push(world_t *w)
{
    fx_t *v = realloc(w->fxs, (w->fxs_count + 1) * sizeof *w->fxs);
    if (v == NULL) {
        abort();
    }
    w->fxs = v;
    fx_t *f = &w->fxs[w->fxs_count++];
    memset(f, 0, sizeof *f);
    return f;
}

typedef struct {
    uint8_t *msg;
    size_t len;
} grabbed_t;

static bool grab_message(uint64_t seq, int type, const uint8_t *signed_msg, size_t signed_len,
                         void *arg)
{
    (void)seq;
    (void)type;
    grabbed_t *g = arg;
    if ((g->msg = malloc(signed_len)) == NULL) {
        abort();
    }
    memcpy(g->msg, signed_msg, signed_len);
    g->len = signed_len;
    return false;
}

/* Inside the compromised node x's transaction: one hostile trade message to a random peer, on
 * its real channel (channel_send_body): an FxProposal with a leg missing (refused FF01, recorded
 * nowhere), one whose rate its legs do not imply (booked by x as its own proposal, as the hostile
 * Returns are, so that both ends hold the refused trade: FF01), an answer naming a trade nobody
 * proposed, or one naming the receiver's own trade to x with other contents. Each is refused,
 * and all but the answer to no trade are counted as unentitled (an answer to an unknown id looks
 * like one to a payment a restore lost: channel.c ignores it uncounted). */
static void fx_forge(world_t *w, node_t *x)
{
    rng_t *r = &w->fx_forge_rng;
    w->fx_forge_due_ms = w->now + rng_range(r, 300, 3000);
    if (x->config->peers_count == 0) {
        return;
    }
    size_t p = (size_t)rng_below(r, x->config->peers_count);
    int y = x->peer_node[p];
    const char *peer = w->node[y].name;
    channel_t *ch = engine_channel(x->engine, p);
    int choice = (int)rng_below(r, 4);
    if (!channel_peer_offers(ch, CHANNEL_FEATURE_FX) || channel_wire_version(ch) < 2) {
        return;
    }
    fx_trade_t t;
    memset(&t, 0, sizeof t);
    make_uetr(r, t.fx_id);
    make_uetr(r, t.legs[FX_PAY].uetr);
    make_uetr(r, t.legs[FX_RECEIVE].uetr);
    snprintf(t.legs[FX_PAY].currency, sizeof t.legs[FX_PAY].currency, "RUB");
    t.legs[FX_PAY].amount_minor = rng_range(r, 100, 100000);
    const char *other = NULL;
    for (size_t c = 1; c < CURRENCIES_COUNT && other == NULL; c++) {
        if (accepts(x, CURRENCIES[c]) && accepts(&w->node[y], CURRENCIES[c])) {
            other = CURRENCIES[c];
        }
    }
    snprintf(t.legs[FX_RECEIVE].currency, sizeof t.legs[FX_RECEIVE].currency, "%s",
             other != NULL ? other : "IRR");
    t.legs[FX_RECEIVE].amount_minor = rng_range(r, 100, 100000);
    t.created_unix_ms = wall_of(w->now);
    fx_trade_prepare(&t, peer);
    uint8_t hash[32];
    for (size_t i = 0; i < sizeof hash; i++) {
        hash[i] = (uint8_t)rng_next(r);
    }
    const fx_t *theirs = NULL; /* choice 3: y's trade to x */
    size_t start = w->fxs_count > 0 ? (size_t)rng_below(r, w->fxs_count) : 0;
    for (size_t i = 0; i < w->fxs_count && choice == 3 && theirs == NULL; i++) {
        const fx_t *f = &w->fxs[(start + i) % w->fxs_count];
        theirs =
            f->proposer == y && f->acceptor == x->idx && f->committed && f->kind != FX_HOSTILE_RATE
                ? f
                : NULL;
    }
    choice = choice == 3 && theirs == NULL ? 2 : choice;
    if (choice == 1 && other == NULL) {
        choice = 0; /* a rate needs two currencies both deal in */
    }
    uint8_t *body = NULL;
    size_t len = 0;
    msg_type_t type = MSG_FX_PROPOSAL;
    if (choice == 0 || choice == 1) {
        Corridor__FxLeg legs[2] = {CORRIDOR__FX_LEG__INIT, CORRIDOR__FX_LEG__INIT};
        for (int i = 0; i < 2; i++) {
            legs[i].uetr = t.legs[i].uetr;
            legs[i].amount_minor = t.legs[i].amount_minor;
            legs[i].currency = t.legs[i].currency;
        }
        Corridor__FxProposal m = CORRIDOR__FX_PROPOSAL__INIT;
        m.fx_id = t.fx_id;
        bool pay_missing = rng_chance(r, 500);
        m.pay = choice == 0 && pay_missing ? NULL : &legs[FX_PAY];
        m.receive = choice == 0 && !pay_missing ? NULL : &legs[FX_RECEIVE];
        if (choice == 1) {
            /* the rate of other legs: twice the receive leg */
            settlement_t doubled = t.legs[FX_RECEIVE];
            doubled.amount_minor *= 2;
            if (!fx_rate_text(&t.legs[FX_PAY], &doubled, t.rate, sizeof t.rate)) {
                return;
            }
        }
        m.rate = t.rate;
        m.created_unix_ms = t.created_unix_ms;
        len = corridor__fx_proposal__get_packed_size(&m);
        if ((body = malloc(len)) == NULL) {
            abort();
        }
        corridor__fx_proposal__pack(&m, body);
        settlement_body_hash(body, len, t.legs[0].original_hash);
        memcpy(t.legs[1].original_hash, t.legs[0].original_hash, sizeof t.legs[1].original_hash);
    } else {
        Corridor__StatusReport sr = CORRIDOR__STATUS_REPORT__INIT;
        sr.uetr = choice == 3 ? (char *)theirs->fx_id : t.fx_id;
        sr.status = "ACSC";
        sr.reason = "";
        sr.currency = choice == 3 ? (char *)theirs->pay_ccy : "RUB";
        sr.settlement_hash = (ProtobufCBinaryData){sizeof hash, hash};
        type = MSG_STATUS_REPORT;
        len = corridor__status_report__get_packed_size(&sr);
        if ((body = malloc(len)) == NULL) {
            abort();
        }
        corridor__status_report__pack(&sr, body);
    }
    bool over = false;
    if (choice == 1 &&
        (ledger_cap_exceeded(x->ledger, peer, t.legs[FX_RECEIVE].currency,
                             t.legs[FX_RECEIVE].amount_minor, CAP_MINOR, &over) != LEDGER_OK ||
         over)) {
        free(body);
        return;
    }
    uint64_t seq = channel_stats(ch).sent_seq + 1;
    ledger_err_t rc = channel_send_body(ch, type, body, len);
    free(body);
    if (rc == LEDGER_OK && choice == 1) {
        grabbed_t g = {NULL, 0};
        const char *why = NULL;
        ledger_outcome_t out;
        rc = ledger_outbox_scan(x->ledger, peer, seq, 1, grab_message, &g);
        if (rc == LEDGER_OK && g.msg == NULL) {
            rc = LEDGER_E_NOT_FOUND;
        }
        if (rc == LEDGER_OK) {
            rc = ledger_fx_propose(x->ledger, t.legs, CAP_MINOR, g.msg, g.len, seq, &why, &out);
        }
        free(g.msg);
        if (rc == LEDGER_OK && why != NULL) {
            fail(w, "%s: booking its hostile trade %s: %s", x->name, t.fx_id, why);
            return;
        }
        if (rc == LEDGER_OK) {
            fx_t *f = fx_push(w);
            f->proposer = x->idx;
            f->acceptor = y;
            f->peer_index = p;
            f->kind = FX_HOSTILE_RATE;
            f->done = f->in_turn = true;
            snprintf(f->pay_ccy, sizeof f->pay_ccy, "%s", t.legs[FX_PAY].currency);
            snprintf(f->recv_ccy, sizeof f->recv_ccy, "%s", t.legs[FX_RECEIVE].currency);
            f->pay_minor = t.legs[FX_PAY].amount_minor;
            f->recv_minor = t.legs[FX_RECEIVE].amount_minor;
            snprintf(f->fx_id, sizeof f->fx_id, "%s", t.fx_id);
            for (int i = 0; i < 2; i++) {
                memcpy(f->uetr[i], t.legs[i].uetr, sizeof f->uetr[i]);
            }
        }
    }
    if (rc != LEDGER_OK) {
        if (disk_fault_at(w, x->idx, w->now) == DISK_OK) {
            fail(w, "%s: queueing a hostile trade message failed: %s", x->name,
                 ledger_strerror(rc));
        }
        return;
    }
    if (choice != 2) {
        x->forged_in_turn[y]++;
    }
    x->fx_forged_in_turn++;
    static const char *const what[] = {"an FxProposal with a leg missing",
                                       "an FxProposal whose rate its legs do not imply",
                                       "an answer naming a trade nobody proposed",
                                       "an answer naming the receiver's trade, other contents"};
    trace(w, "%s->%s %s: hostile, by the compromised %s (%s, %s)", x->name, peer, type_name(type),
          x->name, what[choice], choice == 3 ? theirs->fx_id : t.fx_id);
}

/* After n's transaction: its trades and decisions committed, or to do again. */
static void fx_settle(world_t *w, node_t *n, bool committed)
{
    for (size_t k = 0; k < w->fxs_count; k++) {
        fx_t *f = &w->fxs[k];
        if (f->in_turn && f->proposer == n->idx) {
            f->in_turn = false;
            f->committed = committed;
            f->commit_turn = n->turns;
            if (!committed && f->kind != FX_HOSTILE_RATE) {
                f->done = false; /* the operator runs `corridor fx` again: new ids */
                f->fx_id[0] = '\0';
            }
        }
        if (f->decide_in_turn && f->acceptor == n->idx) {
            f->decide_in_turn = false;
            f->decided = committed;
            w->fx_reviews += committed;
        }
    }
    w->fx_forged += committed ? n->fx_forged_in_turn : 0;
    n->fx_forged_in_turn = 0;
}

/* ---- settlement cycles (PROTOCOL.md 3.11) -------------------------------------------------------
 */

/* Inside n's transaction: its operator's `cycle close` runs that are due, as daemon.c
 * handle_cycle_close does them (channel_cycle_close, then the operator row "cycle_close"); again
 * a second later while the peer has not offered CHANNEL_FEATURE_CYCLES, a while later when a
 * cycle is closing with the peer (exit 1; a few times). Lost with its transaction: run again. */
static void cycles_due(world_t *w, node_t *n)
{
    for (size_t k = 0; k < w->cys_count && !w->failed; k++) {
        cyc_t *c = &w->cys[k];
        if (c->node != n->idx || c->done || c->in_turn || c->due_ms > w->now) {
            continue;
        }
        channel_t *ch = engine_channel(n->engine, c->peer_index);
        const char *peer = w->node[c->peer].name;
        if (!channel_peer_offers(ch, CHANNEL_FEATURE_CYCLES)) {
            c->due_ms = w->now + 1000; /* cycle_channel refuses: the operator tries again */
            continue;
        }
        uint64_t number = 0;
        const char *why = NULL;
        ledger_err_t rc = channel_cycle_close(ch, &number, &why);
        if (rc == LEDGER_OK && why != NULL) {
            trace(w, "%s's operator closes a cycle with %s: refused: %s", n->name, peer, why);
            if (++c->tries < 4) {
                c->due_ms = w->now + rng_range(&w->cy_rng, 500, 5000);
            } else {
                c->done = true;
                w->cy_stats[CY_STAT_LOCAL]++;
            }
            continue;
        }
        if (rc == LEDGER_OK) {
            rc = operation_record(n->ledger, 0, "cycle_close", peer,
                                  json_pack("{s:I}", "cycle", (json_int_t)number));
        }
        trace(w, "%s's operator closes cycle %" PRIu64 " with %s%s: %s", n->name, number, peer,
              c->both ? " (its peer at the same moment)" : "", ledger_strerror(rc));
        c->in_turn = true;
        if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
            fail(w, "%s: closing a cycle with %s failed: %s (%s)", n->name, peer,
                 ledger_strerror(rc), ledger_last_error(n->ledger));
        }
    }
}

typedef struct {
    uint64_t number;
    cycle_state_t state;
    bool ours;
    uint64_t own_sent, peer_sent;
    uint8_t *statement, *peer_statement;
    size_t statement_len, peer_statement_len;
    uint8_t own_signature[crypto_sign_BYTES], peer_signature[crypto_sign_BYTES];
    bool has_peer_signature;
} cy_row_t;

typedef struct {
    cy_row_t *v;
    size_t count;
} cy_rows_t;

static void cy_collect(const ledger_cycle_t *c, void *arg)
{
    cy_rows_t *rows = arg;
    cy_row_t *v = realloc(rows->v, (rows->count + 1) * sizeof *v);
    if (v == NULL) {
        abort();
    }
    rows->v = v;
    cy_row_t *r = &v[rows->count++];
    memset(r, 0, sizeof *r);
    r->number = c->cycle;
    r->state = c->state;
    r->ours = c->ours;
    r->own_sent = c->own_sent;
    r->peer_sent = c->peer_sent;
    if ((r->statement = malloc(c->statement_len + 1)) == NULL) {
        abort();
    }
    memcpy(r->statement, c->statement, c->statement_len);
    r->statement_len = c->statement_len;
    if (c->peer_statement != NULL) {
        if ((r->peer_statement = malloc(c->peer_statement_len + 1)) == NULL) {
            abort();
        }
        memcpy(r->peer_statement, c->peer_statement, c->peer_statement_len);
        r->peer_statement_len = c->peer_statement_len;
    }
    memcpy(r->own_signature, c->own_signature, sizeof r->own_signature);
    memcpy(r->peer_signature, c->peer_signature, sizeof r->peer_signature);
    r->has_peer_signature = c->has_peer_signature;
}

static void cy_rows_free(cy_rows_t *rows)
{
    for (size_t i = 0; i < rows->count; i++) {
        free(rows->v[i].statement);
        free(rows->v[i].peer_statement);
    }
    free(rows->v);
    rows->v = NULL;
    rows->count = 0;
}

typedef struct {
    ledger_net_t *v;
    size_t count;
} net_rows_t;

static void net_collect(const ledger_net_t *n, void *arg)
{
    net_rows_t *rows = arg;
    ledger_net_t *v = realloc(rows->v, (rows->count + 1) * sizeof *v);
    if (v == NULL) {
        abort();
    }
    rows->v = v;
    rows->v[rows->count++] = *n;
}

/* Inside n's transaction, every few seconds: its operator looks at `cycle list` and `review
 * list`. As the net debtor of a closed cycle it pays what it owes outside the channel and runs
 * `cycle settle` (daemon.c handle_cycle_settle: the operator row "cycle_settle", then
 * channel_cycle_settle per currency), now and then a scan later; as the creditor it confirms a
 * held net settlement (`review accept --id`: the operator row "review", channel_net_decide) or,
 * while faults go on, now and then refuses it (RR04; the debtor settles again). */
static void cycles_scan(world_t *w, node_t *n)
{
    if (!w->cycles || n->cy_scan_ms > w->now) {
        return;
    }
    bool faults = w->now < w->faults_end;
    n->cy_scan_ms = w->now + rng_range(&w->cy_rng, 300, faults ? 4000 : 1500);
    for (size_t p = 0; p < n->config->peers_count && !w->failed; p++) {
        channel_t *ch = engine_channel(n->engine, p);
        const char *peer = n->config->peers[p].card.name;
        if (!channel_peer_offers(ch, CHANNEL_FEATURE_CYCLES) ||
            (w->restore.restored && w->restore.node == n->idx && !n->up_since_restore[p])) {
            continue;
        }
        cy_rows_t rows = {0};
        net_rows_t nets = {0};
        if (ledger_cycles(n->ledger, peer, cy_collect, &rows) != LEDGER_OK ||
            ledger_nets(n->ledger, peer, net_collect, &nets) != LEDGER_OK) {
            if (disk_fault_at(w, n->idx, w->now) == DISK_OK) {
                fail(w, "%s: cannot list its cycles with %s: %s", n->name, peer,
                     ledger_last_error(n->ledger));
            }
            cy_rows_free(&rows);
            free(nets.v);
            return;
        }
        bool first = cycle_self_first(n->name, peer);
        for (size_t i = 0; i < rows.count && !w->failed; i++) {
            cycle_statement_t st;
            if (rows.v[i].state != CYCLE_CLOSED ||
                !cycle_statement_decode(rows.v[i].statement, rows.v[i].statement_len, &st) ||
                (faults && !rng_chance(&w->cy_rng, 600))) {
                continue;
            }
            for (size_t c = 0; c < st.n_currencies && !w->failed; c++) {
                int64_t paid, received, net;
                bool open = true;
                cycle_currency_view(&st.currencies[c], first, &paid, &received, &net);
                if (net >= 0 ||
                    ledger_net_open(n->ledger, peer, st.cycle, st.currencies[c].currency, &open) !=
                        LEDGER_OK ||
                    open) {
                    continue;
                }
                net_settlement_t ns;
                memset(&ns, 0, sizeof ns);
                make_uetr(&w->cy_rng, ns.settlement_id);
                ns.cycle = st.cycle;
                snprintf(ns.currency, sizeof ns.currency, "%s", st.currencies[c].currency);
                snprintf(ns.reference, sizeof ns.reference, "SIM %s %" PRIu64 " %s", n->name,
                         st.cycle, ns.currency);
                unsigned m = (unsigned)rng_below(&w->cy_rng, 3);
                snprintf(ns.method, sizeof ns.method, "%s",
                         m == 0   ? "INDA"
                         : m == 1 ? "INGA"
                                  : "CLRG");
                snprintf(ns.clearing_system, sizeof ns.clearing_system, "%s",
                         m == 2 ? "SIMRTGS" : "");
                ns.created_unix_ms = wall_of(w->now);
                const char *why = NULL;
                ledger_err_t rc = operation_record(
                    n->ledger, 0, "cycle_settle", peer,
                    json_pack("{s:I, s:s, s:s, s:[s]}", "cycle", (json_int_t)ns.cycle, "reference",
                              ns.reference, "method", ns.method, "currencies", ns.currency));
                if (rc == LEDGER_OK) {
                    rc = channel_cycle_settle(ch, &ns, &why);
                }
                trace(w,
                      "%s's operator settles cycle %" PRIu64 " with %s: %" PRId64
                      " %s (%s): %s%s%s",
                      n->name, ns.cycle, peer, ns.amount_minor, ns.currency, ns.settlement_id,
                      ledger_strerror(rc), why ? ": " : "", why ? why : "");
                if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
                    fail(w, "%s: settling cycle %" PRIu64 " with %s failed: %s (%s)", n->name,
                         ns.cycle, peer, ledger_strerror(rc), ledger_last_error(n->ledger));
                } else if (rc == LEDGER_OK && why != NULL) {
                    fail(w, "%s: cycle settle refused what it owes in cycle %" PRIu64 ": %s",
                         n->name, ns.cycle, why);
                } else if (rc == LEDGER_OK) {
                    n->cy_nets_in_turn++;
                }
            }
        }
        for (size_t i = 0; i < nets.count && !w->failed; i++) {
            const ledger_net_t *net = &nets.v[i];
            if (net->we_owe || net->status != STATUS_HELD || !channel_decides_held(ch)) {
                continue;
            }
            bool accept = !faults || rng_chance(&w->cy_rng, 850);
            const char *reason = accept ? NULL : "RR04";
            status_t status = STATUS_PENDING;
            ledger_err_t rc =
                operation_record(n->ledger, 0, "review", peer,
                                 json_pack("{s:s, s:s, s:o}", "id", net->id, "decision",
                                           accept ? "accept" : "reject", "reason",
                                           reason != NULL ? json_string(reason) : json_null()));
            if (rc == LEDGER_OK) {
                rc = channel_net_decide(ch, net->id, reason, &status);
            }
            trace(w, "%s's operator reviews net settlement %s of cycle %" PRIu64 " from %s: %s: %s",
                  n->name, net->id, net->cycle, peer, accept ? "accept" : "reject RR04",
                  ledger_strerror(rc));
            if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
                fail(w, "%s: a review of net settlement %s failed: %s (%s)", n->name, net->id,
                     ledger_strerror(rc), ledger_last_error(n->ledger));
            }
            n->cy_rejects_in_turn += rc == LEDGER_OK && !accept;
        }
        cy_rows_free(&rows);
        free(nets.v);
    }
}

/* Inside the compromised node x's transaction: one hostile cycle message to a random peer, on its
 * real channel (channel_send_body): a CycleProposal of a number that is not the next, one whose
 * cut is not its present, one whose signature does not verify (each refused with an answer,
 * nothing stored), or a NetSettlement of a closed cycle it owes for over the net (AM09), or of a
 * cycle not closed (AG01): recorded refused by the creditor, nowhere else. */
static void cy_forge(world_t *w, node_t *x)
{
    rng_t *r = &w->cy_forge_rng;
    w->cy_forge_due_ms = w->now + rng_range(r, 500, 4000);
    if (x->config->peers_count == 0) {
        return;
    }
    size_t p = (size_t)rng_below(r, x->config->peers_count);
    int y = x->peer_node[p];
    const char *peer = w->node[y].name;
    channel_t *ch = engine_channel(x->engine, p);
    if (!channel_peer_offers(ch, CHANNEL_FEATURE_CYCLES) || channel_wire_version(ch) < 2) {
        return;
    }
    ledger_cycle_t last;
    bool found = false;
    if (ledger_cycle_latest(x->ledger, peer, &last, &found) != LEDGER_OK) {
        return;
    }
    uint64_t next = found ? last.cycle + 1 : 1;
    int choice = (int)rng_below(r, 4);
    uint8_t *body = NULL;
    size_t len = 0;
    msg_type_t type = MSG_CYCLE_PROPOSAL;
    channel_stats_t cs = channel_stats(ch);
    bool first = cycle_self_first(x->name, peer);
    if (choice < 3) {
        cycle_statement_t st;
        memset(&st, 0, sizeof st);
        snprintf(st.first, sizeof st.first, "%s", first ? x->name : peer);
        snprintf(st.second, sizeof st.second, "%s", first ? peer : x->name);
        st.cycle = choice == 0 ? next + (uint64_t)rng_range(r, 1, 5) : next;
        uint64_t own = choice == 1 ? cs.sent_seq + (uint64_t)rng_range(r, 2, 9) : cs.sent_seq;
        st.first_sent = first ? own : cs.applied_seq;
        st.second_sent = first ? cs.applied_seq : own;
        uint8_t *stb = NULL;
        size_t stl = 0;
        uint8_t sig[crypto_sign_BYTES];
        if (cycle_statement_encode(&st, &stb, &stl) != 0 ||
            cycle_sign(stb, stl, x->id->sign_secret, sig) != 0) {
            abort();
        }
        if (choice == 2) {
            sig[rng_below(r, sizeof sig)] ^= 0x20;
        }
        if (cycle_proposal_encode(stb, stl, sig, &body, &len) != 0) {
            abort();
        }
        free(stb);
    } else {
        type = MSG_NET_SETTLEMENT;
        net_settlement_t ns;
        memset(&ns, 0, sizeof ns);
        make_uetr(r, ns.settlement_id);
        ns.cycle = next + 2; /* no such cycle: AG01 */
        snprintf(ns.currency, sizeof ns.currency, "%s", x->config->currencies[0]);
        ns.amount_minor = rng_range(r, 1, 100000);
        cycle_statement_t st;
        if (found && last.state == CYCLE_CLOSED &&
            cycle_statement_decode(last.statement, last.statement_len, &st)) {
            for (size_t c = 0; c < st.n_currencies; c++) {
                int64_t paid, received, net;
                cycle_currency_view(&st.currencies[c], first, &paid, &received, &net);
                if (net < 0) { /* it owes: over the net, AM09 */
                    ns.cycle = st.cycle;
                    snprintf(ns.currency, sizeof ns.currency, "%s", st.currencies[c].currency);
                    ns.amount_minor = -net + rng_range(r, 1, 1000);
                    cycle_statement_hash(last.statement, last.statement_len, ns.statement_hash);
                }
            }
        }
        snprintf(ns.reference, sizeof ns.reference, "FORGED");
        snprintf(ns.method, sizeof ns.method, "INDA");
        ns.created_unix_ms = wall_of(w->now);
        if (net_settlement_encode(&ns, &body, &len) != 0) {
            abort();
        }
        char(*v)[CORRIDOR_UETR_LEN + 1] =
            realloc(w->cy_forged, (w->cy_forged_count + 1) * sizeof *w->cy_forged);
        if (v == NULL) {
            abort();
        }
        w->cy_forged = v;
        snprintf(w->cy_forged[w->cy_forged_count++], CORRIDOR_UETR_LEN + 1, "%s", ns.settlement_id);
    }
    if (found) {
        ledger_cycle_release(&last);
    }
    ledger_err_t rc = channel_send_body(ch, type, body, len);
    free(body);
    if (rc != LEDGER_OK) {
        if (disk_fault_at(w, x->idx, w->now) == DISK_OK) {
            fail(w, "%s: queueing a hostile cycle message failed: %s", x->name,
                 ledger_strerror(rc));
        }
        return;
    }
    w->cy_stats[CY_STAT_FORGED]++;
    static const char *const what[] = {"a CycleProposal not of the next number",
                                       "a CycleProposal whose cut is not its present",
                                       "a CycleProposal whose signature does not verify",
                                       "a NetSettlement over the net or of no closed cycle"};
    trace(w, "%s->%s %s: hostile, by the compromised %s (%s)", x->name, peer, type_name(type),
          x->name, what[choice]);
}

/* After n's transaction: its closes and settlements committed, or to do again. */
static void cycles_settle(world_t *w, node_t *n, bool committed)
{
    for (size_t k = 0; k < w->cys_count; k++) {
        cyc_t *c = &w->cys[k];
        if (c->in_turn && c->node == n->idx) {
            c->in_turn = false;
            c->done = committed; /* lost: the operator runs `cycle close` again */
            w->cy_stats[CY_STAT_CLOSES] += committed;
        }
    }
    w->cy_stats[CY_STAT_NETS] += committed ? n->cy_nets_in_turn : 0;
    w->cy_stats[CY_STAT_REJECTED] += committed ? n->cy_rejects_in_turn : 0;
    n->cy_nets_in_turn = n->cy_rejects_in_turn = 0;
}

/* ---- multilateral set-offs (PROTOCOL.md 3.12) ---------------------------------------------------
 */

/* A crash of node `node` at `at` (not before now, only while faults go on), in time order among
 * those still to come. */
static void so_crash_add(world_t *w, int node, int64_t at, crash_kind_t kind, int64_t down_ms)
{
    if (w->crashes_count == sizeof w->crashes / sizeof w->crashes[0] || at >= w->faults_end ||
        at < w->now) {
        return;
    }
    size_t i = w->crashes_count++;
    while (i > w->crashes_next && w->crashes[i - 1].at > at) {
        w->crashes[i] = w->crashes[i - 1];
        i--;
    }
    w->crashes[i] = (crash_t){.at = at, .node = node, .kind = kind, .down_ms = down_ms};
    trace(w, "%s will crash at t=%" PRId64 " (kind %d, down %" PRId64 " ms): a set-off in flight",
          w->node[node].name, at, (int)kind, down_ms);
}

/* What ring member p can set off as its books stand (3.12.2 step 4: the smaller of what it owes
 * its successor and what its predecessor owes it, after the legs it voted for that are still
 * pending); INT64_MAX when it is down. The turn's node reads through its own connection. */
static int64_t so_room(world_t *w, const so_t *so, size_t p)
{
    node_t *m = &w->node[so->ring[p]];
    ledger_t *l = w->in_transaction && m->idx == w->turn_node ? m->ledger : m->reader;
    if (!m->up || l == NULL) {
        return INT64_MAX;
    }
    const char *next = w->node[so->ring[(p + 1) % so->k]].name;
    const char *prev = w->node[so->ring[(p + so->k - 1) % so->k]].name;
    int64_t owed_next = 0, owed_by_prev = 0, pending = 0, pend_out = 0, pend_in = 0;
    if (ledger_position(l, next, "RUB", &owed_next, &pending) != LEDGER_OK ||
        ledger_position(l, prev, "RUB", &owed_by_prev, &pending) != LEDGER_OK ||
        ledger_setoff_pending(l, next, "RUB", DIRECTION_OUT, &pend_out) != LEDGER_OK ||
        ledger_setoff_pending(l, prev, "RUB", DIRECTION_IN, &pend_in) != LEDGER_OK) {
        return INT64_MAX;
    }
    int64_t a = -owed_next - pend_out, b = owed_by_prev - pend_in;
    int64_t r = a < b ? a : b;
    return r < 0 ? 0 : r;
}

/* Inside the proposer n's transaction: its operator's `setoff propose` runs that are due, as
 * daemon.c handle_setoff_propose does them (the terms with the ring turned so n is first: its own
 * key, its neighbours' as their channels hold them, the others' from its cards; a fresh id;
 * channel_setoff_propose and the operator row "setoff"). Refused as a usage error while a
 * neighbour has not offered set-offs (tried again a second later); refused by n's own books
 * (AM04 while the debts are not there yet, NARR while a neighbour's channel is DIVERGED: tried
 * again a few times); lost with its transaction: run again under a new id. */
static void setoffs_due(world_t *w, node_t *n)
{
    for (size_t q = 0; q < w->sos_count && !w->failed; q++) {
        so_t *so = &w->sos[q];
        if (so->ring[0] != n->idx || so->done || so->in_turn || so->due_ms > w->now) {
            continue;
        }
        channel_t *next = engine_channel(n->engine, n->index_of[so->ring[1]]);
        channel_t *prev = engine_channel(n->engine, n->index_of[so->ring[so->k - 1]]);
        if (!channel_peer_offers(next, CHANNEL_FEATURE_SETOFF) ||
            !channel_peer_offers(prev, CHANNEL_FEATURE_SETOFF)) {
            so->due_ms = w->now + 1000; /* not heard from since this node started */
            continue;
        }
        if (so->kind == SO_OVER) { /* more than a later member can set off, not than we can */
            int64_t own = so_room(w, so, 0), least = INT64_MAX;
            for (size_t p = 1; p < so->k; p++) {
                int64_t r = so_room(w, so, p);
                least = r < least ? r : least;
            }
            so->amount = least < own && least != INT64_MAX
                             ? least + 1 + (int64_t)rng_below(&w->so_rng, (uint64_t)(own - least))
                             : own + 1;
            so->amount =
                so->amount > CORRIDOR_AMOUNT_MINOR_MAX ? CORRIDOR_AMOUNT_MINOR_MAX : so->amount;
        }
        setoff_terms_t t;
        memset(&t, 0, sizeof t);
        t.n = so->k;
        for (size_t k = 0; k < so->k; k++) {
            setoff_member_t *m = &t.ring[k];
            snprintf(m->code, sizeof m->code, "%s", w->node[so->ring[k]].name);
            size_t pi = n->index_of[so->ring[k]];
            const uint8_t *key = k == 0 ? n->id->sign_public
                                        : channel_peer_sign_public(engine_channel(n->engine, pi));
            memcpy(m->signing_key, key, sizeof m->signing_key);
            identity_key_id(key, m->key_id);
        }
        make_uetr(&w->so_rng, t.setoff_id);
        snprintf(t.currency, sizeof t.currency, "RUB");
        t.amount_minor = so->amount;
        t.created_unix_ms = wall_of(w->now);
        t.deadline_unix_ms = t.created_unix_ms + so->deadline_ms;
        const char *why = NULL;
        ledger_err_t rc = channel_setoff_propose(next, prev, &t, &why);
        if (rc == LEDGER_OK && why != NULL) {
            trace(w,
                  "%s's operator proposes a %s set-off of %" PRId64 " RUB round %zu: refused "
                  "by its books: %s (it can set off %" PRId64 ")",
                  n->name, SO_KIND_NAMES[so->kind], so->amount, so->k, why, so_room(w, so, 0));
            bool again =
                strcmp(why, "NARR") == 0 || (so->kind != SO_OVER && strcmp(why, "AM04") == 0);
            if (again && ++so->tries < 4 && w->now < w->faults_end) {
                so->due_ms = w->now + rng_range(&w->so_rng, 1000, 4000);
            } else {
                so->done = so->local = true;
                snprintf(so->why, sizeof so->why, "%s", why);
                w->so_stats[SO_STAT_LOCAL]++;
            }
            continue;
        }
        if (rc == LEDGER_OK) {
            json_t *members = json_array();
            for (size_t k = 0; k < so->k; k++) {
                json_array_append_new(members, json_string(t.ring[k].code));
            }
            rc = operation_record(n->ledger, 0, "setoff", "",
                                  json_pack("{s:s, s:o, s:s, s:I}", "setoff_id", t.setoff_id,
                                            "ring", members, "currency", t.currency, "amount_minor",
                                            (json_int_t)t.amount_minor));
        }
        snprintf(so->id, sizeof so->id, "%s", t.setoff_id);
        so->in_turn = true;
        trace(w,
              "%s's operator proposes %s set-off %s of %" PRId64 " RUB round %zu nodes%s, "
              "deadline %" PRId64 " ms: %s",
              n->name, SO_KIND_NAMES[so->kind], so->id, so->amount, so->k,
              so->concurrent ? " (another at the same moment)" : "", so->deadline_ms,
              ledger_strerror(rc));
        if (rc != LEDGER_OK && disk_fault_at(w, n->idx, w->now) == DISK_OK) {
            fail(w, "%s: proposing set-off %s failed: %s (%s)", n->name, so->id,
                 ledger_strerror(rc), ledger_last_error(n->ledger));
        }
    }
}

/* After the proposer n's transaction: its proposals committed (then crashes of members while
 * they are in flight: ring[1] down past the deadline of a SO_DEADLINE one, now and then any
 * member, the proposer included, at any step), or to run again under a new id. */
static void setoffs_settle(world_t *w, node_t *n, bool committed)
{
    for (size_t q = 0; q < w->sos_count; q++) {
        so_t *so = &w->sos[q];
        if (!so->in_turn || so->ring[0] != n->idx) {
            continue;
        }
        so->in_turn = false;
        so->done = so->committed = committed;
        if (!committed) {
            so->id[0] = '\0';
            continue;
        }
        w->so_stats[SO_STAT_PROPOSED]++;
        w->so_stats[SO_STAT_DEADLINE] += so->kind == SO_DEADLINE;
        if (so->kind == SO_DEADLINE) {
            so_crash_add(w, so->ring[1], w->now, CRASH_BETWEEN,
                         so->deadline_ms + rng_range(&w->so_rng, 1000, 4000));
        }
        if (rng_chance(&w->so_rng, 600)) {
            int who = so->ring[rng_below(&w->so_rng, so->k)];
            crash_kind_t kind =
                (crash_kind_t)rng_range(&w->so_rng, CRASH_BETWEEN, CRASH_LOST_COMMIT);
            so_crash_add(w, who, w->now + rng_range(&w->so_rng, 0, 3000), kind,
                         rng_range(&w->so_rng, 10, 5000));
        }
    }
    w->so_stats[SO_STAT_FORGED] += committed ? n->so_forged_in_turn : 0;
    n->so_forged_in_turn = 0;
}

/* Inside the compromised node x's transaction: one hostile set-off message to a random peer y, on
 * its real channel (channel_send_body), over terms x proposes and signs round x, y and a third
 * node: a SetoffDecision committing with no vote (x proposer, y its predecessor), one from a
 * node that is not y's successor, or a SetoffRelay carrying no vote. Each is refused by y and
 * counted unentitled (channel_stats), nothing recorded (check_setoffs: no leg nobody proposed). */
static void so_forge(world_t *w, node_t *x)
{
    rng_t *r = &w->so_forge_rng;
    w->so_forge_due_ms = w->now + rng_range(r, 500, 4000);
    if (x->config->peers_count == 0) {
        return;
    }
    size_t pi = (size_t)rng_below(r, x->config->peers_count);
    int y = x->peer_node[pi], z = -1;
    for (int i = 0; i < w->n && z < 0; i++) {
        z = i != x->idx && i != y ? i : -1;
    }
    channel_t *ch = engine_channel(x->engine, pi);
    if (z < 0 || !channel_peer_offers(ch, CHANNEL_FEATURE_SETOFF) || channel_wire_version(ch) < 2) {
        return;
    }
    int choice = (int)rng_below(r, 3);
    int order[3] = {x->idx, choice == 0 ? z : y, choice == 0 ? y : z};
    setoff_message_t m;
    memset(&m, 0, sizeof m);
    setoff_terms_t *t = &m.terms;
    t->n = 3;
    for (size_t k = 0; k < 3; k++) {
        snprintf(t->ring[k].code, sizeof t->ring[k].code, "%s", w->node[order[k]].name);
        memcpy(t->ring[k].signing_key, w->node[order[k]].id->sign_public,
               sizeof t->ring[k].signing_key);
        identity_key_id(t->ring[k].signing_key, t->ring[k].key_id);
    }
    make_uetr(r, t->setoff_id);
    snprintf(t->currency, sizeof t->currency, "RUB");
    t->amount_minor = rng_range(r, 1, AMOUNT_MAX);
    t->created_unix_ms = wall_of(w->now);
    t->deadline_unix_ms = t->created_unix_ms + 30000;
    bool decision = choice != 2;
    uint8_t *body = NULL;
    size_t len = 0;
    if (setoff_terms_encode(t, &m.terms_bytes, &m.terms_len) != 0 ||
        setoff_sign(SETOFF_TERMS_DOMAIN, m.terms_bytes, m.terms_len, x->id->sign_secret,
                    m.terms_signature) != 0) {
        abort();
    }
    if (decision) {
        setoff_terms_hash(m.terms_bytes, m.terms_len, m.verdict.terms_hash);
        m.verdict.commit = true;
        m.verdict_len = setoff_verdict_encode(&m.verdict, m.verdict_bytes);
        if (m.verdict_len == 0 || setoff_sign(SETOFF_VERDICT_DOMAIN, m.verdict_bytes, m.verdict_len,
                                              x->id->sign_secret, m.verdict_signature) != 0) {
            abort();
        }
    }
    if (setoff_message_encode(&m, decision, &body, &len) != 0) {
        abort();
    }
    free(m.terms_bytes);
    ledger_err_t rc =
        channel_send_body(ch, decision ? MSG_SETOFF_DECISION : MSG_SETOFF_RELAY, body, len);
    free(body);
    if (rc != LEDGER_OK) {
        if (disk_fault_at(w, x->idx, w->now) == DISK_OK) {
            fail(w, "%s: queueing a hostile set-off message failed: %s", x->name,
                 ledger_strerror(rc));
        }
        return;
    }
    x->forged_in_turn[y]++;
    x->so_forged_in_turn++;
    static const char *const what[] = {"a commit with no vote",
                                       "a decision from a node not its successor",
                                       "a relay with no vote"};
    trace(w, "%s->%s %s: hostile, by the compromised %s (%s)", x->name, w->node[y].name,
          decision ? "SetoffDecision" : "SetoffRelay", x->name, what[choice]);
}

/* Whether set-off so is in flight: a member that is up holds no decision of it yet. */
static bool so_in_flight(world_t *w, const so_t *so)
{
    for (size_t p = 0; p < so->k; p++) {
        node_t *m = &w->node[so->ring[p]];
        if (!m->up || m->reader == NULL) {
            continue;
        }
        ledger_setoff_t rec;
        bool found = false;
        if (ledger_setoff_get(m->reader, so->id, &rec, &found) != LEDGER_OK) {
            continue;
        }
        bool open = !found || rec.state == SETOFF_VOTING;
        if (found) {
            ledger_setoff_release(&rec);
        }
        if (open) {
            return true;
        }
    }
    return false;
}

/* n crashes: the set-offs it is a member of that are in flight had a crash during. */
static void so_note_crash(world_t *w, node_t *n)
{
    for (size_t q = 0; q < w->sos_count && w->setoffs; q++) {
        so_t *so = &w->sos[q];
        bool member = false;
        for (size_t p = 0; p < so->k; p++) {
            member |= so->ring[p] == n->idx;
        }
        if (member && so->committed && !so->crashed && so_in_flight(w, so)) {
            so->crashed = true;
            trace(w, "%s crashes while set-off %s is in flight", n->name, so->id);
        }
    }
}

static void submit_due(void *arg)
{
    node_t *n = arg;
    world_t *w = n->w;
    if (n->verdicts.count > 0 && screening_apply_sim(w, n) != LEDGER_OK) {
        return; /* the ledger stopped: the transaction rolls back (daemon.c take_control) */
    }
    for (size_t k = n->items_first_open; k < n->items_count; k++) {
        item_t *it = &w->items[n->items[k]];
        if (it->done || it->due_ms > w->now) {
            continue;
        }
        bool dup = it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER;
        if (w->restore.restored && w->restore.node == n->idx &&
            !n->up_since_restore[it->peer_index]) {
            /* a restored node's operator opens for business with a peer once the channel is up
             * (repaired if it diverged): a number queued before may be one the peer applied
             * from the lost history, and such a message never reaches it (PROTOCOL.md 6) */
            it->due_ms = w->now + 1000;
            continue;
        }
        if (dup && !w->items[it->orig].committed) {
            it->due_ms = w->now + 1000; /* the client sends it again once the first is in */
            continue;
        }
        settlement_t s;
        item_settlement(w, it, &s);
        if (settlement_check(&s) != REASON_NONE) {
            fail(w, "the simulator made an invalid settlement (%s)",
                 reason_text(settlement_check(&s)));
            return;
        }
        ledger_outcome_t out;
        ledger_err_t rc =
            channel_send_settlement(engine_channel(n->engine, it->peer_index), &s, &out);
        trace(w, "%s submits %s %s %" PRId64 " %s to %s: %s%s", n->name, ITEM_KIND_NAMES[it->kind],
              it->uetr, it->amount, it->currency, s.peer, ledger_strerror(rc),
              rc == LEDGER_OK && out.repeated ? " (repeated)" : "");
        it->done = true;
        it->in_turn = true;
        if ((rc == LEDGER_E_STORAGE || rc == LEDGER_E_STOPPED) &&
            disk_fault_at(w, n->idx, w->now) != DISK_OK) {
            continue; /* the disk: the transaction fails, the client sends it again */
        }
        if (it->kind == ITEM_DUP_OTHER) {
            if (rc != LEDGER_E_CONFLICT) {
                fail(w, "%s: a send of UETR %s with other content answered %s, not DUPL", n->name,
                     it->uetr, ledger_strerror(rc));
            }
        } else if (rc != LEDGER_OK) {
            fail(w, "%s: sending %s %s failed: %s (%s)", n->name, ITEM_KIND_NAMES[it->kind],
                 it->uetr, ledger_strerror(rc), ledger_last_error(n->ledger));
        } else if (it->kind == ITEM_DUP_SAME && !out.repeated) {
            fail(w, "%s: a repeated send of %s was not recognised as repeated", n->name, it->uetr);
        }
    }
    while (n->items_first_open < n->items_count && w->items[n->items[n->items_first_open]].done) {
        n->items_first_open++;
    }
    reviews_due(w, n);
    cancels_due(w, n);
    returns_due(w, n);
    fx_due(w, n);
    fx_decide_due(w, n);
    if (w->cycles) {
        cycles_due(w, n);
        cycles_scan(w, n);
    }
    if (w->setoffs) {
        setoffs_due(w, n);
    }
    if (n->idx == w->attacker && w->forging && w->forge_due_ms <= w->now &&
        w->now < w->faults_end) {
        forge_sequenced(w, n);
    }
    if (n->idx == w->attacker && w->forging && w->fx && w->fx_forge_due_ms <= w->now &&
        w->now < w->faults_end) {
        fx_forge(w, n);
    }
    if (n->idx == w->attacker && w->forging && w->cycles && w->cy_forge_due_ms <= w->now &&
        w->now < w->faults_end) {
        cy_forge(w, n);
    }
    if (n->idx == w->attacker && w->forging && w->setoffs && w->so_forge_due_ms <= w->now &&
        w->now < w->faults_end) {
        so_forge(w, n);
    }
    if (n->rotations_done < n->rotations_wanted && n->rotate_at <= w->now &&
        w->now < w->faults_end) {
        rotate_keys(w, n);
    }
    /* an operator's `corridor reconcile` (daemon.c handle_reconcile; --repair for RECON_REPAIR) */
    for (size_t p = 0; p < n->config->peers_count && w->now >= n->reconcile_retry_ms; p++) {
        int kind = n->reconcile_wanted[p];
        if (kind == RECON_NONE) {
            continue;
        }
        int64_t deadline = w->now + (kind == RECON_FINAL ? RECONCILE_MS : 30000);
        int rc = engine_session_start(n->engine, p, kind == RECON_REPAIR, deadline);
        if (rc == -1 && kind != RECON_DURING) { /* one of those during the faults still runs */
            n->reconcile_retry_ms = w->now + 1000;
            continue;
        }
        n->reconcile_wanted[p] = RECON_NONE;
        if (rc == -1) {
            continue; /* the operator finds one running and leaves it */
        }
        if (rc != 0) {
            fail(w, "%s: a reconciliation with %s could not start (%d)", n->name,
                 n->config->peers[p].card.name, rc);
            return;
        }
        n->final_reconcile[p] = kind == RECON_FINAL;
        n->repairing[p] = kind == RECON_REPAIR;
        trace(w, "%s reconciles with %s%s", n->name, n->config->peers[p].card.name,
              kind == RECON_FINAL    ? ""
              : kind == RECON_REPAIR ? " --repair (DIVERGED, or breaks left)"
                                     : " (while faults go on)");
        engine_session_go(n->engine, p);
    }
}

static bool reconcile_wanted(const node_t *n)
{
    for (size_t p = 0; p < n->config->peers_count; p++) {
        if (n->reconcile_wanted[p] != RECON_NONE && n->w->now >= n->reconcile_retry_ms) {
            return true;
        }
    }
    return false;
}

static int64_t next_due(const world_t *w, const node_t *n)
{
    int64_t next = INT64_MAX;
    for (size_t k = n->items_first_open; k < n->items_count; k++) {
        const item_t *it = &w->items[n->items[k]];
        if (!it->done && it->due_ms < next) {
            next = it->due_ms;
        }
    }
    /* forgeries and rotations stop with the faults (submit_due): one left due then, its node
     * down when the faults stopped, is no reason for a turn every millisecond */
    bool faults = w->now < w->faults_end;
    if (faults && n->idx == w->attacker && w->forging && w->forge_due_ms < w->faults_end &&
        w->forge_due_ms < next) {
        next = w->forge_due_ms;
    }
    if (faults && n->rotations_done < n->rotations_wanted && n->rotate_at < w->faults_end &&
        n->rotate_at < next) {
        next = n->rotate_at;
    }
    for (size_t k = 0; k < w->rets_count; k++) {
        const ret_t *rt = &w->rets[k];
        if (rt->returner == n->idx && !rt->done && !rt->in_turn && rt->due_ms < next) {
            next = rt->due_ms;
        }
    }
    for (size_t k = 0; k < w->fxs_count; k++) {
        const fx_t *f = &w->fxs[k];
        if (f->proposer == n->idx && !f->done && !f->in_turn && f->due_ms < next) {
            next = f->due_ms;
        }
        if (f->acceptor == n->idx && f->committed && !f->decided && !f->decide_in_turn &&
            f->decide_ms != 0 && f->decide_ms < next) {
            next = f->decide_ms;
        }
    }
    if (faults && n->idx == w->attacker && w->forging && w->fx &&
        w->fx_forge_due_ms < w->faults_end && w->fx_forge_due_ms < next) {
        next = w->fx_forge_due_ms;
    }
    for (size_t k = 0; k < w->cys_count; k++) {
        const cyc_t *c = &w->cys[k];
        if (c->node == n->idx && !c->done && !c->in_turn && c->due_ms < next) {
            next = c->due_ms;
        }
    }
    if (w->cycles && n->cy_scan_ms < next) {
        next = n->cy_scan_ms;
    }
    if (faults && n->idx == w->attacker && w->forging && w->cycles &&
        w->cy_forge_due_ms < w->faults_end && w->cy_forge_due_ms < next) {
        next = w->cy_forge_due_ms;
    }
    for (size_t q = 0; q < w->sos_count; q++) {
        const so_t *so = &w->sos[q];
        if (so->ring[0] == n->idx && !so->done && !so->in_turn && so->due_ms < next) {
            next = so->due_ms;
        }
    }
    if (faults && n->idx == w->attacker && w->forging && w->setoffs &&
        w->so_forge_due_ms < w->faults_end && w->so_forge_due_ms < next) {
        next = w->so_forge_due_ms;
    }
    return next;
}

/* The items of this turn's transaction: committed, or lost with it. */
static void items_settle(world_t *w, node_t *n, bool committed)
{
    for (size_t k = 0; k < n->items_count; k++) {
        item_t *it = &w->items[n->items[k]];
        if (it->in_turn) {
            it->in_turn = false;
            it->committed = committed;
            it->done = committed;
            it->commit_turn = n->turns;
            if (!committed && k < n->items_first_open) {
                n->items_first_open = k;
            }
        }
        if (it->cancel_in_turn) {
            it->cancel_in_turn = false;
            it->cancel_done = it->cancel_sent = committed;
        }
    }
    reviews_settle(w, n, committed);
    for (size_t k = 0; k < w->rets_count; k++) {
        ret_t *r = &w->rets[k];
        if (r->in_turn && r->returner == n->idx) {
            r->in_turn = false;
            r->committed = committed;
            r->commit_turn = n->turns;
            r->after_restore = w->restore.restored && w->restore.node == n->idx;
            if (!committed && r->kind != RET_HOSTILE) {
                r->done = false; /* the operator runs `corridor return` again */
                r->id[0] = '\0';
            }
        }
    }
    fx_settle(w, n, committed);
    cycles_settle(w, n, committed);
    setoffs_settle(w, n, committed);
    w->rets_dupl += committed ? n->dupl_in_turn : 0;
    w->rets_local += committed ? n->local_in_turn : 0;
    n->dupl_in_turn = n->local_in_turn = 0;
    for (int y = 0; y < w->n; y++) { /* the compromised node's unentitled messages */
        w->forged_holds_to[y] += committed ? n->forged_in_turn[y] : 0;
        w->forged_holds += committed ? n->forged_in_turn[y] : 0;
        n->forged_in_turn[y] = 0;
    }
}

/* ---- a stolen key, replaced by the operators (PROTOCOL.md 2.15) -------------------------------
 *
 * The stolen node X's keys leak at steal_ms: the thief copies its home (keys, and its outbox:
 * messages signed with them). X's operator makes new keys (a new CURVE key too) and hands the
 * new card to each peer's operator out of band. Each operator, a different person, stops their
 * node when they get to it, records the replacement in its books exactly as `corridor key
 * replace` (X) and `corridor peer add --replace` (each peer Y) do, and starts it again: in
 * either order, and the channel waits in between (Y pins and admits X's old CURVE key until its
 * replacement). The thief, connecting as X with the stolen CURVE key, keeps sending under the
 * stolen keys: before Y's replacement only X's own messages again (the stolen keys are still
 * X's there: a forgery would be taken, which no replacement can undo), after it also forged
 * Settlements at the numbers the new key signs and forged Acks. After Y's replacement the CURVE
 * model refuses every one of its frames (unless thief_past_curve), and every one Y opens must be
 * refused. (`corridor key replace` makes the new
 * keys in the same run that records them; a peer here that replaces before X stands for a card
 * made and handed out before X's books were changed; the channel waits as in the other order.) */

static void hex_key_id(const uint8_t *key_id, char out[static 2 * IDENTITY_KEY_ID_BYTES + 1])
{
    sodium_bin2hex(out, 2 * IDENTITY_KEY_ID_BYTES + 1, key_id, IDENTITY_KEY_ID_BYTES);
}

static identity_t *identity_copy(const identity_t *id)
{
    identity_t *copy = identity_from_secrets(id->sign_secret, id->box_secret, id->curve_secret);
    if (copy == NULL) {
        abort();
    }
    return copy;
}

/* Whether the thief sends again: until thief_end_ms, and a minute more while a peer of the
 * stolen node refused none of its frames since its replacement. */
static bool thief_busy(const world_t *w)
{
    if (w->stolen < 0 || w->thief == NULL) {
        return false;
    }
    bool unrefused = false;
    for (int y = 0; y < w->n; y++) {
        unrefused |= w->channel[w->stolen][y] && w->refused_by[y] == 0;
    }
    return w->thief_due_ms < w->thief_end_ms + (unrefused ? 60000 : 0);
}

/* The earliest of the thief's copy, the operators' replacements and its next frame. */
static int64_t replace_next(const world_t *w)
{
    if (w->stolen < 0) {
        return INT64_MAX;
    }
    if (w->thief == NULL) {
        return w->steal_ms;
    }
    int64_t t = thief_busy(w) ? w->thief_due_ms : INT64_MAX;
    if (!w->own_replaced && w->own_replace_ms < t) {
        t = w->own_replace_ms;
    }
    for (int y = 0; y < w->n; y++) {
        if (w->channel[w->stolen][y] && !w->peer_replaced[y] && w->peer_replace_ms[y] < t) {
            t = w->peer_replace_ms[y];
        }
    }
    return t;
}

static bool replacements_pending(const world_t *w)
{
    bool pending = w->stolen >= 0 && !w->own_replaced;
    for (int y = 0; y < w->n && w->stolen >= 0; y++) {
        pending |= w->channel[w->stolen][y] && !w->peer_replaced[y];
    }
    return pending;
}

static bool keep_loot(uint64_t seq, int type, const uint8_t *signed_msg, size_t signed_len,
                      void *arg)
{
    (void)seq;
    world_t *w = ((node_t *)arg)->w;
    loot_t *l = &w->loot[w->loot_count++];
    l->to = ((node_t *)arg)->idx; /* the peer, not the stolen node: see steal_keys */
    l->type = (msg_type_t)type;
    l->len = signed_len;
    if ((l->signed_msg = malloc(signed_len)) == NULL) {
        abort();
    }
    memcpy(l->signed_msg, signed_msg, signed_len);
    return true;
}

#define LOOT_PER_PEER 32 /* the newest messages of each channel's outbox the thief keeps */

/* The thief copies the stolen node's home: its keys, and the newest messages of its outbox. */
static void steal_keys(world_t *w)
{
    node_t *x = &w->node[w->stolen];
    w->thief = identity_copy(x->id);
    size_t count = x->config->peers_count;
    w->thief_keys = sodium_malloc((count + 1) * sizeof *w->thief_keys);
    w->loot = calloc(count * LOOT_PER_PEER + 1, sizeof *w->loot);
    if (w->thief_keys == NULL || w->loot == NULL) {
        abort();
    }
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/%s", x->home, LEDGER_FILE);
    ledger_t *l = NULL;
    if (ledger_open(path, x->name, LEDGER_READ_ONLY, DISK_VFS, &l, err, sizeof err) != LEDGER_OK) {
        fail(w, "the thief cannot read %s's ledger: %s", x->name, err);
        return;
    }
    for (size_t p = 0; p < count; p++) {
        if (envelope_peer_init(&w->thief_keys[p], w->thief, &x->config->peers[p].card) != ENV_OK) {
            fail(w, "envelope_peer_init for the thief");
            break;
        }
        ledger_channel_t ch;
        const char *peer = x->config->peers[p].card.name;
        if (ledger_channel_get(l, peer, &ch) != LEDGER_OK ||
            ledger_outbox_scan(l, peer,
                               ch.sent_seq > LOOT_PER_PEER ? ch.sent_seq - LOOT_PER_PEER + 1 : 1,
                               LOOT_PER_PEER, keep_loot, &w->node[x->peer_node[p]]) != LEDGER_OK) {
            fail(w, "the thief cannot read %s's outbox: %s", x->name, ledger_last_error(l));
            break;
        }
    }
    ledger_close(&l);
    /* found later than drawn (gap 1): the operators act as much later */
    int64_t late = w->now - w->steal_ms;
    w->own_replace_ms += late;
    for (int y = 0; y < w->n; y++) {
        w->peer_replace_ms[y] += w->channel[x->idx][y] ? late : 0;
    }
    w->thief_end_ms += late;
    w->thief_due_ms = w->now + rng_range(&w->replace_rng, 10, 300);
    trace(w, "%s's signing and box keys are STOLEN, with a copy of its outbox (%zu messages)",
          x->name, w->loot_count);
}

/* An operator stops the node for its replacement (a node already down stays down as it was),
 * and starts it again a little later. */
static void operator_stop(world_t *w, node_t *n)
{
    if (n->up) {
        node_close(n);
        n->restart_ms = w->now + rng_range(&w->replace_rng, 200, 3000);
        trace(w, "%s STOPPED by its operator, back at t=%" PRId64, n->name, n->restart_ms);
    }
}

/* The stopped node's books, for an operator's command (its disk is fine by then). */
static ledger_t *operator_books(world_t *w, node_t *n)
{
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/%s", n->home, LEDGER_FILE);
    disk_set_fault(n->idx, DISK_OK);
    ledger_t *l = NULL;
    if (ledger_open(path, n->name, LEDGER_READ_WRITE, DISK_VFS, &l, err, sizeof err) != LEDGER_OK) {
        fail(w, "%s: its operator cannot open its ledger: %s", n->name, err);
        return NULL;
    }
    ledger_set_clock(l, wall_of(w->now));
    if (ledger_begin(l) != LEDGER_OK) {
        fail(w, "%s: its operator cannot begin a transaction: %s", n->name, ledger_last_error(l));
        ledger_close(&l);
    }
    return l;
}

static void operator_commit(world_t *w, node_t *n, ledger_t *l, json_t *args, const char *peer)
{
    if (operation_record(l, 0, "replace", peer, args) != LEDGER_OK ||
        ledger_commit(l) != LEDGER_OK) {
        fail(w, "%s: its operator cannot record the replacement: %s", n->name,
             ledger_last_error(l));
        ledger_rollback(l);
    }
}

/* `corridor key replace` on the stolen node (cli_replace.c cmd_key_replace): on each channel
 * the new key signs from the message after the last one queued. */
static void replace_own(world_t *w)
{
    node_t *x = &w->node[w->stolen];
    w->own_replaced = true;
    operator_stop(w, x);
    ledger_t *l = operator_books(w, x);
    if (l == NULL) {
        return;
    }
    char new_hex[2 * IDENTITY_KEY_ID_BYTES + 1], old_hex[2 * IDENTITY_KEY_ID_BYTES + 1];
    hex_key_id(w->replacement->key_id, new_hex);
    hex_key_id(x->id->key_id, old_hex);
    json_t *channels = json_array();
    for (size_t p = 0; p < x->config->peers_count && !w->failed; p++) {
        const char *peer = x->config->peers[p].card.name;
        key_replaced_t done;
        if (replace_own_key(l, peer, x->id, w->replacement, &done) != LEDGER_OK) {
            fail(w, "%s: key replace on the channel with %s: %s", x->name, peer,
                 done.refused != NULL ? done.refused : ledger_last_error(l));
            break;
        }
        char replaced_hex[2 * IDENTITY_KEY_ID_BYTES + 1];
        hex_key_id(done.replaced_key_id, replaced_hex);
        json_array_append_new(channels,
                              json_pack("{s:s, s:s, s:I}", "peer", peer, "replaced_key_id",
                                        replaced_hex, "first_seq", (json_int_t)done.first_seq));
        trace(w, "%s's operator: its new key signs to %s from %" PRIu64, x->name, peer,
              done.first_seq);
    }
    if (w->failed) {
        ledger_rollback(l);
    } else {
        operator_commit(w, x, l,
                        json_pack("{s:s, s:s, s:s, s:O}", "side", "ours", "key_id", new_hex,
                                  "replaced_key_id", old_hex, "channels", channels),
                        "");
    }
    json_decref(channels);
    ledger_close(&l);
    identity_destroy(&x->id);
    x->id = identity_copy(w->replacement);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", x->home, IDENTITY_KEY_FILE);
    if (identity_save(x->id, path) != ID_OK) {
        fail(w, "identity_save %s", path);
    }
}

/* `corridor peer add --replace CARD` on a peer of the stolen node (cli_replace.c peer_replace):
 * the new key signs from the first message not applied; the keys before it are revoked. */
static void replace_peer(world_t *w, int yi)
{
    node_t *y = &w->node[yi], *x = &w->node[w->stolen];
    w->peer_replaced[yi] = true;
    size_t q = 0;
    while (q < y->config->peers_count && y->peer_node[q] != x->idx) {
        q++;
    }
    operator_stop(w, y);
    ledger_t *l = operator_books(w, y);
    if (l == NULL) {
        return;
    }
    config_peer_t *peer = &y->config->peers[q];
    peer_card_t card;
    identity_card(w->replacement, x->name, peer->card.endpoint, &card);
    key_replaced_t done;
    if (replace_peer_key(l, &peer->card, &card, 0, &done) != LEDGER_OK) {
        fail(w, "%s: peer add --replace of %s: %s", y->name, x->name,
             done.refused != NULL ? done.refused : ledger_last_error(l));
        ledger_rollback(l);
        ledger_close(&l);
        return;
    }
    char new_hex[2 * IDENTITY_KEY_ID_BYTES + 1], old_hex[2 * IDENTITY_KEY_ID_BYTES + 1];
    hex_key_id(w->replacement->key_id, new_hex);
    hex_key_id(done.replaced_key_id, old_hex);
    operator_commit(w, y, l,
                    json_pack("{s:s, s:s, s:s, s:I, s:I}", "side", "theirs", "key_id", new_hex,
                              "replaced_key_id", old_hex, "first_seq", (json_int_t)done.first_seq,
                              "revoked_from", (json_int_t)done.first_seq),
                    x->name);
    ledger_close(&l);
    w->peer_first_seq[yi] = done.first_seq;
    peer->card = card;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", y->home, CONFIG_FILE);
    if (config_save(y->config, path) != CONFIG_OK) {
        fail(w, "config_save %s: %s", path, strerror(errno));
    }
    trace(w,
          "%s's operator: %s's new key signs its messages from %" PRIu64
          ", every key before it revoked",
          y->name, x->name, done.first_seq);
}

/* One frame of the thief to a peer of the stolen node, under the stolen keys. */
static void thief_send(world_t *w)
{
    rng_t *r = &w->replace_rng;
    w->thief_due_ms = w->now + rng_range(r, 50, 1000);
    node_t *x = &w->node[w->stolen];
    size_t p = (size_t)rng_below(r, x->config->peers_count);
    int to = x->peer_node[p];
    bool after = w->peer_replaced[to];
    size_t mine = 0;
    for (size_t k = 0; k < w->loot_count; k++) {
        mine += w->loot[k].to == to;
    }
    unsigned kind = after ? (unsigned)rng_below(r, 3) : 0;
    if (kind == 0 && mine == 0) {
        if (!after) {
            return; /* nothing of X's own to send again; a forgery would be taken */
        }
        kind = 1 + (unsigned)rng_below(r, 2);
    }
    uint8_t *wire = NULL;
    size_t len = 0;
    msg_type_t type = MSG_ACK;
    env_err_t rc = ENV_OK;
    const char *what = "";
    if (kind == 0) {
        size_t pick = (size_t)rng_below(r, mine);
        const loot_t *l = NULL;
        for (size_t k = 0; l == NULL; k++) {
            if (w->loot[k].to == to && pick-- == 0) {
                l = &w->loot[k];
            }
        }
        type = l->type;
        what = "a message of the stolen outbox, wrapped again";
        rc = envelope_wrap(w->thief, &w->thief_keys[p], l->signed_msg, l->len, true, &wire, &len);
    } else if (kind == 1) {
        item_t it = {.payer = x->idx, .payee = to, .amount = rng_range(r, 1, AMOUNT_MAX)};
        it.tag = 1000000 + (unsigned)w->thief_sent;
        snprintf(it.currency, sizeof it.currency, "RUB");
        make_uetr(r, it.uetr);
        settlement_t s;
        item_settlement(w, &it, &s);
        uint8_t *body = NULL;
        size_t body_len = 0;
        if (settlement_encode(&s, &body, &body_len) != 0) {
            abort();
        }
        type = MSG_SETTLEMENT;
        what = "a forged Settlement at the numbers the new key signs";
        rc = envelope_seal_version(w->thief, &w->thief_keys[p], INNER_VERSION_MIN, type,
                                   w->peer_first_seq[to] + rng_below(r, 3), body, body_len, &wire,
                                   &len);
        free(body);
    } else {
        Corridor__Ack a = CORRIDOR__ACK__INIT;
        a.sequence = rng_below(r, 1000);
        a.incarnation = (uint64_t)wall_of(w->now) * 1000;
        a.counter = 1 + rng_below(r, 1000);
        uint8_t body[64];
        size_t body_len = corridor__ack__pack(&a, body);
        what = "a forged Ack";
        rc = envelope_seal_version(w->thief, &w->thief_keys[p], INNER_VERSION_MIN, type, 0, body,
                                   body_len, &wire, &len);
    }
    if (rc != ENV_OK) {
        fail(w, "the thief cannot seal a frame: %s", env_strerror(rc));
        return;
    }
    node_t *y = &w->node[to];
    if (!w->thief_past_curve && y->up) { /* it connects with the stolen CURVE key */
        const char *why = curve_refusal(w, y, x->idx, engine_curve_server(y->engine)->curve_public,
                                        w->thief->curve_public);
        if (after != (why != NULL)) {
            fail(w, "%s %s the stolen CURVE key of %s %s replacing its keys%s%s", y->name,
                 why != NULL ? "refused" : "admitted", x->name, after ? "after" : "before",
                 why != NULL ? ": " : "", why != NULL ? why : "");
        }
        if (why != NULL) {
            w->thief_sent++;
            w->thief_after += after;
            w->thief_curve++;
            w->refused_by[to]++;
            trace(w,
                  "%s->%s %s %zu bytes: by the thief of %s's old keys (%s): refused by CURVE: %s",
                  x->name, y->name, type_name(type), len, x->name, what, why);
            free(wire);
            return;
        }
    }
    frame_t f = {.at = w->now + w->delay_min + (int64_t)rng_below(r, (uint64_t)w->delay_jitter + 1),
                 .order = w->order++,
                 .from = x->idx,
                 .to = to,
                 .type = type,
                 .data = wire,
                 .len = len,
                 .thief = true};
    flight_push(w, f);
    w->thief_sent++;
    w->thief_after += after;
    trace(w, "%s->%s %s %zu bytes: by the thief of %s's old keys (%s%s), arrives t=%" PRId64,
          x->name, w->node[to].name, type_name(type), len, x->name, what,
          after ? "; the peer replaced them" : "", f.at);
}

/* ---- two known gaps of the replacement (node/ledger/replace.c), which this world steers clear
 * of unless --replace-anytime:
 *  1. A replacement from 1 (our side: nothing queued to that peer, S = 0; the peer's side:
 *     nothing of it applied, R = 1) on a channel with no key history records only the new key:
 *     the key it replaced is in no history. A stolen node replaced from 1 then refuses for ever
 *     the messages its peer signed for its old key (ENV_E_WRONG_RECIPIENT: they are never
 *     signed again), and the audit reports the evidence a node holds addressed to that key
 *     ("signed for another recipient"). So the leak is found (steal_keys) only once, on every
 *     channel of the stolen node, it queued a message (S >= 1) and the peer applied one
 *     (R >= 2); not found by a minute after faults stop: no leak in that world.
 *  2. R is what the peer applied, plus one; a reconciliation can heal the stolen node's
 *     messages above that (recorded from their signed evidence), which the replacement then
 *     revokes: the audit reports them ("a key of the peer not valid for that message"). So an
 *     operator waits while a peer not yet replaced holds such a message (the stream brings
 *     it, under the old key, before long).
 * With --replace-anytime every world acts as drawn (the same draws), and the gaps show. */

/* A channel's counters in `n`'s books (a node down too: a read-only connection of our own). */
static bool counters_of(world_t *w, node_t *n, const char *peer, ledger_channel_t *out)
{
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/%s", n->home, LEDGER_FILE);
    ledger_t *l = NULL;
    bool ok =
        ledger_open(path, n->name, LEDGER_READ_ONLY, DISK_VFS, &l, err, sizeof err) == LEDGER_OK &&
        ledger_channel_get(l, peer, out) == LEDGER_OK;
    if (!ok) {
        fail(w, "%s: cannot read its channel with %s: %s", n->name, peer,
             l != NULL ? ledger_last_error(l) : err);
    }
    ledger_close(&l);
    return ok;
}

/* Gap 1: whether on every channel of the stolen node it queued a message and the peer applied
 * one. */
static bool leak_findable(world_t *w)
{
    node_t *x = &w->node[w->stolen];
    for (size_t p = 0; p < x->config->peers_count && !w->failed; p++) {
        node_t *y = &w->node[x->peer_node[p]];
        ledger_channel_t xc, yc;
        if (!counters_of(w, x, y->name, &xc) || !counters_of(w, y, x->name, &yc) ||
            xc.sent_seq == 0 || yc.applied_seq == 0) {
            return false;
        }
    }
    return true;
}

/* Gap 2: whether peer y, not yet replaced, holds a message the stolen key signed above what it
 * applied of the stolen node's. */
static bool holds_ahead(world_t *w, node_t *y)
{
    node_t *x = &w->node[w->stolen];
    ledger_channel_t yc;
    if (w->peer_replaced[y->idx] || !counters_of(w, y, x->name, &yc)) {
        return false;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/%s", y->home, LEDGER_FILE);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT evidence FROM journal WHERE peer = ?1 AND (kind BETWEEN 2 AND 7"
                           " OR kind BETWEEN 11 AND 16) AND length(evidence) > 0",
                           -1, &st, NULL) != SQLITE_OK) {
        fail(w, "%s: cannot read its journal: %s", y->name, sqlite3_errmsg(db));
        sqlite3_close(db);
        return false;
    }
    sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
    bool ahead = false;
    while (!ahead && sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *ev = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        uint8_t author[IDENTITY_KEY_ID_BYTES];
        envelope_message_t m;
        if (evidence_author(ev, len, author) == ENV_OK &&
            sodium_memcmp(author, w->thief->key_id, sizeof author) == 0 &&
            evidence_verify(ev, len, w->thief->sign_public, &m) == ENV_OK) {
            ahead = m.sequence > yc.applied_seq;
            envelope_message_clear(&m);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ahead;
}

/* Whether an operator's replacement (of the stolen node's own keys: y < 0; else of peer y's)
 * waits: gap 2. */
static bool gaps_block(world_t *w, int y)
{
    if (w->replace_anytime) {
        return false;
    }
    for (int i = 0; i < w->n; i++) {
        if ((y < 0 ? w->channel[w->stolen][i] : i == y) && holds_ahead(w, &w->node[i])) {
            trace(w, "%s holds a message of %s's above what it applied: %s's operator waits",
                  w->node[i].name, w->node[w->stolen].name, w->node[y < 0 ? w->stolen : y].name);
            return true;
        }
    }
    return false;
}

/* What is due now of the stolen key's events (replace_next). */
static void replace_step(world_t *w)
{
    if (w->thief == NULL) {
        if (!w->replace_anytime && !leak_findable(w)) { /* gap 1 */
            if (w->now >= w->faults_end + 60000) {
                trace(w, "a channel of %s never carried a message of its: no leak",
                      w->node[w->stolen].name);
                w->stolen = -1;
            } else {
                w->steal_ms = w->now + 500;
            }
            return;
        }
        steal_keys(w);
        return;
    }
    if (!w->own_replaced && w->own_replace_ms <= w->now) {
        if (gaps_block(w, -1)) {
            w->own_replace_ms = w->now + 500;
            return;
        }
        replace_own(w);
        return;
    }
    for (int y = 0; y < w->n; y++) {
        if (w->channel[w->stolen][y] && !w->peer_replaced[y] && w->peer_replace_ms[y] <= w->now) {
            if (gaps_block(w, y)) {
                w->peer_replace_ms[y] = w->now + 500;
                return;
            }
            replace_peer(w, y);
            return;
        }
    }
    thief_send(w);
}

/* A thief's frame as the peer opened it: once that peer replaced the stolen keys, refused. */
static void thief_frame_opened(world_t *w, const node_t *y, const opener_frame_t *f)
{
    if (w->stolen < 0 || !w->peer_replaced[y->idx]) {
        return; /* the stolen keys are still the stolen node's there */
    }
    if (f->rc == ENV_E_REVOKED) {
        w->thief_revoked++;
        w->refused_by[y->idx]++;
    } else if (f->rc == ENV_E_UNKNOWN_SENDER && w->peer_first_seq[y->idx] == 1) {
        w->thief_unknown++; /* replaced from 1: the history holds no key to name as revoked */
        w->refused_by[y->idx]++;
    } else {
        fail(w, "%s opened a frame under %s's stolen keys after replacing them: %s", y->name,
             w->node[w->stolen].name, f->rc == ENV_OK ? "accepted" : env_strerror(f->rc));
    }
}

/* One message a peer keeps of the stolen node's (`where`): if the stolen key signed it, its
 * number is below R. */
static void check_stolen_message(world_t *w, const node_t *y, const uint8_t *ev, size_t ev_len,
                                 const char *where)
{
    uint8_t author[IDENTITY_KEY_ID_BYTES];
    if (evidence_author(ev, ev_len, author) != ENV_OK ||
        sodium_memcmp(author, w->thief->key_id, sizeof author) != 0) {
        return;
    }
    envelope_message_t m;
    env_err_t rc = evidence_verify(ev, ev_len, w->thief->sign_public, &m);
    if (rc != ENV_OK || m.sequence >= w->peer_first_seq[y->idx]) {
        fail(w,
             "%s's %s is a message of %s under its stolen key, number %" PRIu64
             " (its replacement signs from %" PRIu64 ")%s",
             y->name, where, w->node[w->stolen].name, m.sequence, w->peer_first_seq[y->idx],
             rc != ENV_OK ? ", and it does not verify" : "");
    }
    envelope_message_clear(&m);
}

/* At the end: every operator replaced the stolen keys, and no peer applied, imported or keeps
 * as proof a message the stolen key signed at or after the number its replacement begins at
 * (R). */
static void check_stolen_evidence(world_t *w)
{
    if (w->stolen < 0) {
        return;
    }
    node_t *x = &w->node[w->stolen];
    if (replacements_pending(w) || w->thief == NULL) {
        fail(w, "the replacement of %s's stolen keys did not happen on every node", x->name);
        return;
    }
    for (int yi = 0; yi < w->n && !w->failed; yi++) {
        node_t *y = &w->node[yi];
        if (!w->channel[x->idx][yi]) {
            continue;
        }
        if (w->refused_by[yi] == 0) {
            fail(w, "%s refused none of the frames of the thief of %s's keys after replacing them",
                 y->name, x->name);
            return;
        }
        uint8_t *proof = NULL;
        size_t proof_len = 0;
        if (ledger_channel_proof(y->ledger, x->name, &proof, &proof_len) != LEDGER_OK) {
            fail(w, "%s: cannot read its proof of the channel with %s", y->name, x->name);
        } else if (proof != NULL) {
            check_stolen_message(w, y, proof, proof_len, "proof of the channel");
        }
        free(proof);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(y->db,
                               "SELECT seq, evidence, kind, uetr FROM journal WHERE peer = ?1 AND"
                               " (kind BETWEEN 2 AND 7 OR kind BETWEEN 11 AND 16) AND"
                               " length(evidence) > 0",
                               -1, &st, NULL) != SQLITE_OK) {
            fail(w, "%s: cannot read its journal: %s", y->name, sqlite3_errmsg(y->db));
            return;
        }
        sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
        while (!w->failed && sqlite3_step(st) == SQLITE_ROW) {
            char where[128];
            snprintf(where, sizeof where, "journal row %lld (kind %d, UETR %s)",
                     (long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 2),
                     (const char *)sqlite3_column_text(st, 3));
            check_stolen_message(w, y, sqlite3_column_blob(st, 1),
                                 (size_t)sqlite3_column_bytes(st, 1), where);
        }
        sqlite3_finalize(st);
    }
}

/* ---- one turn ---------------------------------------------------------------------------------
 */

/* The restore of this world, at the start of the node's turn: its image taken between two
 * turns (what a backup of a running node holds: everything committed), and later put back
 * after a crash. What it had accepted since is lost with it; the clients send it again.
 * Returns true when the node went down. */
static bool restore_step(world_t *w, node_t *n)
{
    restore_t *r = &w->restore;
    if (r->node != n->idx || r->restored) {
        return false;
    }
    if (r->image == NULL && w->now >= r->image_ms) {
        if ((r->image = disk_image_take(n->idx)) == NULL) {
            fail(w, "%s: cannot copy its ledger files: %s", n->name, strerror(errno));
        }
        r->image_turn = n->turns + 1;
        trace(w, "%s BACKUP of its home taken", n->name);
        return false;
    }
    if (r->image == NULL || w->now < r->restore_ms) {
        return false;
    }
    node_crash(w, n, r->down_ms, "restored from the backup");
    if (disk_image_put(n->idx, r->image) != 0) {
        fail(w, "%s: cannot put its backup back: %s", n->name, strerror(errno));
    }
    disk_image_free(&r->image);
    r->restored = true;
    memset(n->up_since_restore, 0, sizeof n->up_since_restore);
    size_t lost = 0;
    for (size_t k = 0; k < n->items_count; k++) {
        item_t *it = &w->items[n->items[k]];
        if (it->committed && it->commit_turn >= r->image_turn) {
            it->done = it->committed = it->final_seen = false;
            it->resubmit = true;
            it->due_ms = it->due_ms > n->restart_ms ? it->due_ms : n->restart_ms;
            lost++;
        }
    }
    n->items_first_open = 0;
    trace(w, "%s lost %zu of its sends with the restore: its clients send them again", n->name,
          lost);
    for (size_t k = 0; k < w->rets_count; k++) {
        ret_t *rt = &w->rets[k];
        if (rt->returner == n->idx && rt->committed && rt->id[0] != '\0' &&
            rt->commit_turn >= r->image_turn) {
            rt->restore_lost = true; /* not made again: the payer may hold it */
            trace(w, "%s lost its return %s of %s with the restore", n->name, rt->id,
                  w->items[rt->item].uetr);
        }
    }
    for (size_t k = 0; k < w->fxs_count; k++) {
        fx_t *f = &w->fxs[k];
        if (f->proposer == n->idx && f->committed && f->commit_turn >= r->image_turn) {
            f->restore_lost = true; /* not proposed again: the acceptor may hold it */
            trace(w, "%s lost its trade %s with the restore", n->name, f->fx_id);
        }
        if (f->acceptor == n->idx && f->decided && f->decide_ms != 0) {
            /* the copy may hold it again: its operator looks at `review list` once more (one
             * no longer held, the repair having booked the answer, is left) */
            f->decided = false;
            f->decide_ms = f->decide_ms > n->restart_ms ? f->decide_ms : n->restart_ms;
        }
    }
    return true;
}

/* An operator who sees a channel DIVERGED runs `corridor reconcile --repair` with that peer
 * after a while, and again while it stays so, or while its last repair left breaks. */
static void operator_repairs(world_t *w, node_t *n)
{
    for (size_t p = 0; p < n->config->peers_count; p++) {
        if (channel_stats(engine_channel(n->engine, p)).state == CHANNEL_UP) {
            n->up_since_restore[p] = true;
        }
        if (channel_is_diverged(engine_channel(n->engine, p))) {
            w->diverged_ever[n->idx][n->peer_node[p]] = true;
        }
        if (!channel_is_diverged(engine_channel(n->engine, p)) && !n->repair_left[p]) {
            n->repair_at[p] = 0;
        } else if (n->repair_at[p] == 0) {
            n->repair_at[p] = w->now + rng_range(&w->restore_rng, 1000, 10000);
        } else if (w->now >= n->repair_at[p] && n->reconcile_wanted[p] == RECON_NONE) {
            n->reconcile_wanted[p] = RECON_REPAIR;
            n->repair_at[p] = 0;
            n->repair_left[p] = false;
        }
    }
}

/* After node n's turn in a world with rotations: whether its CURVE switch is pending while a
 * peer's is too (two switches at once), and whether the tie-break (engine.c curve_switch_due)
 * holds it back: every peer acknowledged its announcement, but a peer with a lower node code
 * has announced a CURVE key whose KeySwitch n has not applied. */
static void curve_watch(world_t *w, node_t *n)
{
    n->curve_pending = engine_curve_pending(n->engine);
    if (!n->curve_pending) {
        return;
    }
    bool acked = true, held = false;
    for (size_t p = 0; p < n->config->peers_count; p++) {
        const channel_t *ch = engine_channel(n->engine, p);
        acked &= channel_rotation_acked(ch);
        held |=
            channel_peer_curve_pending(ch) && strcmp(n->config->peers[p].card.name, n->name) < 0;
        if (w->node[n->peer_node[p]].curve_pending && !w->curve_overlap) {
            w->curve_overlap = true;
            trace(w, "%s and %s both have a CURVE switch pending", n->name,
                  n->config->peers[p].card.name);
        }
    }
    if (acked && held && !w->curve_held) {
        w->curve_held = true;
        trace(w, "%s's CURVE switch waits for the KeySwitch of a peer with a lower node code",
              n->name);
    }
}

static void node_turn(world_t *w, node_t *n)
{
    int64_t now = w->now;
    disk_fault_t disk = disk_fault_at(w, n->idx, now);
    disk_set_fault(n->idx, disk);
    if (ledger_stopped(n->ledger) && disk == DISK_OK) {
        /* an operator freed the disk and starts the node again */
        node_close(n);
        trace(w, "%s RESTART (its disk is fine again)", n->name);
        node_open(w, n);
        return;
    }
    if (restore_step(w, n)) {
        return;
    }
    operator_repairs(w, n);
    review_scan(w, n);
    n->turns++;
    w->turn_node = n->idx;
    engine_begin(n->engine, now, wall_of(now));
    screening_collect_sim(w, n);
    size_t count = n->inbox_count < FRAMES_PER_TURN ? n->inbox_count : FRAMES_PER_TURN;
    opener_frame_t *frames = calloc(count + 1, sizeof *frames);
    if (frames == NULL) {
        abort();
    }
    for (size_t i = 0; i < count; i++) {
        size_t peer = SIZE_MAX;
        for (size_t p = 0; p < n->config->peers_count; p++) {
            if (n->peer_node[p] == n->inbox[i].from) {
                peer = p;
            }
        }
        frames[i] =
            (opener_frame_t){.peer_index = peer, .data = n->inbox[i].data, .len = n->inbox[i].len};
    }
    opener_run(w->opener, frames, count, n->id, n->keys, n->config->peers_count);
    for (size_t i = 0; i < count; i++) {
        if (n->inbox[i].thief) {
            thief_frame_opened(w, n, &frames[i]);
        }
        engine_deliver(n->engine, &frames[i]); /* takes the message */
    }
    free(frames);
    for (size_t i = 0; i < count; i++) {
        free(n->inbox[i].data);
    }
    if (count > 0) {
        memmove(n->inbox, n->inbox + count, (n->inbox_count - count) * sizeof *n->inbox);
        n->inbox_count -= count;
    }

    for (size_t k = 0; k < w->recons_count; k++) {
        recon_event_t *r = &w->recons[k];
        if (!r->fired && r->node == n->idx && r->at <= now && now < w->faults_end) {
            r->fired = true;
            n->reconcile_wanted[r->peer_index] = RECON_DURING;
        }
    }
    bool stopped = ledger_stopped(n->ledger);
    bool committed = true, transaction = false;
    if (!stopped && (engine_has_work(n->engine) || next_due(w, n) <= now || reconcile_wanted(n) ||
                     holds_work(w, n))) {
        transaction = true;
        crash_kind_t crash = now < w->faults_end ? (crash_kind_t)n->crash_armed : 0;
        n->crash_armed = (int)crash;
        disk_image_t *before = NULL; /* the files to put back when the commit is lost */
        if (crash == CRASH_LOST_COMMIT && (before = disk_image_take(n->idx)) == NULL) {
            fail(w, "%s: cannot keep its ledger files: %s", n->name, strerror(errno));
            return;
        }
        w->in_transaction = true;
        ledger_err_t rc = engine_transaction(n->engine, submit_due, n);
        w->in_transaction = false;
        committed = rc == LEDGER_OK;
        if (!committed && disk != DISK_OK) {
            w->ledger_stops++;
            trace(w, "%s: the transaction failed on its %s disk: %s (%s)", n->name,
                  disk == DISK_FULL ? "full" : "failing", ledger_strerror(rc),
                  ledger_last_error(n->ledger));
        } else if (!committed) {
            fail(w, "%s: the transaction failed: %s (%s)", n->name, ledger_strerror(rc),
                 ledger_last_error(n->ledger));
        }
        n->commits++;
        if (crash != 0) {
            n->crash_armed = 0;
            int64_t down = rng_range(&w->rng, 10, 5000);
            if (crash == CRASH_LOST_COMMIT) {
                items_settle(w, n, false);
                rotation_settle(w, n, false);
                node_crash(w, n, down, "inside a commit: the transaction is lost");
                if (disk_image_put(n->idx, before) != 0) {
                    fail(w, "%s: cannot put its ledger files back: %s", n->name, strerror(errno));
                }
                disk_image_free(&before);
            } else {
                items_settle(w, n, committed);
                rotation_settle(w, n, committed);
                node_crash(w, n, down, "after a commit, before anything was sent");
            }
            return;
        }
        items_settle(w, n, committed);
        rotation_settle(w, n, committed);
        screening_after(w, n, committed);
    }
    engine_after(n->engine, committed && !stopped);
    curve_serve(w, n);
    if (w->rotator >= 0) {
        curve_watch(w, n);
    }
    if (n->id_previous != NULL && !n->previous_gone) {
        bool all = !engine_curve_pending(n->engine); /* daemon.c forget_previous_file */
        for (size_t p = 0; p < n->config->peers_count && all; p++) {
            const channel_t *ch = engine_channel(n->engine, p);
            all = channel_rotation_acked(ch) && !channel_previous_keys_needed(ch);
        }
        if (all) {
            n->previous_gone = true;
            trace(w,
                  "%s: every peer took its new keys and nothing it sent needs the previous "
                  "ones; they are gone at its next start",
                  n->name);
        }
    }
    if (transaction && committed) {
        check_balances(w, n);
        check_chain(w, n);
    }
    int64_t wake = engine_next_deadline(n->engine, now + POLL_MAX_MS);
    int64_t due = ledger_stopped(n->ledger) ? INT64_MAX : next_due(w, n); /* sends refused */
    wake = due < wake ? due : wake;
    due = ledger_stopped(n->ledger) ? INT64_MAX : holds_next(w, n);
    wake = due < wake ? due : wake;
    wake = n->screens && n->review_scan_ms < wake ? n->review_scan_ms : wake;
    n->busy_until = now + 1 + (int64_t)(count / 256);
    n->wake_ms = wake > n->busy_until ? wake : n->busy_until;
}

/* ---- building a world from its seed -----------------------------------------------------------
 */

static identity_t *make_identity(rng_t *r)
{
    uint8_t sign[32], box[32], curve_raw[32];
    char curve[41];
    for (size_t i = 0; i < 32; i++) {
        sign[i] = (uint8_t)rng_next(r);
        box[i] = (uint8_t)rng_next(r);
        curve_raw[i] = (uint8_t)rng_next(r);
    }
    if (zmq_z85_encode(curve, curve_raw, sizeof curve_raw) == NULL) {
        return NULL;
    }
    return identity_from_secrets(sign, box, curve);
}

static void make_uetr(rng_t *r, char out[static CORRIDOR_UETR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    for (size_t i = 0; i < 16; i++) {
        b[i] = (uint8_t)rng_next(r);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    size_t pos = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[pos++] = '-';
        }
        out[pos++] = hex[b[i] >> 4];
        out[pos++] = hex[b[i] & 0x0f];
    }
    out[pos] = '\0';
}

static bool accepts(const node_t *n, const char *ccy)
{
    return config_accepts(n->config, ccy);
}

typedef struct {
    int nodes; /* 0: from the seed */
    size_t settlements;
    bool trace;
    bool fifo;            /* every world's lanes deliver in order */
    bool no_lost_commits; /* every transaction commits: no crash inside one, no disk faults */
    bool replace_anytime; /* key replacements as drawn, whatever the known gaps (gaps_block) */
    bool restore_holds;   /* a node restored from a copy screens too (the known gap) */
} options_t;

static bool world_build(world_t *w, const options_t *opt)
{
    rng_t *r = &w->rng;
    w->n = opt->nodes > 0 ? opt->nodes : (int)rng_range(r, 2, NODES_MAX);
    /* topology: a random tree, then more channels */
    for (int i = 1; i < w->n; i++) {
        int j = (int)rng_below(r, (uint64_t)i);
        w->channel[i][j] = w->channel[j][i] = true;
    }
    unsigned extra = (unsigned)rng_below(r, 1001);
    for (int i = 0; i < w->n; i++) {
        for (int j = i + 1; j < w->n; j++) {
            if (!w->channel[i][j] && rng_chance(r, extra)) {
                w->channel[i][j] = w->channel[j][i] = true;
            }
        }
    }
    /* multilateral set-offs (PROTOCOL.md 3.12), from a stream of their own, in seven worlds in
     * ten of three nodes or more without a restore (a repair does not import a set-off leg: known
     * gap 23), a stolen key (`key replace` signs queued messages again under the new key) or a
     * key rotation (a member's key in the terms is its card's, or the one its neighbour's
     * channel held when it was proposed, and is checked against the key that signs the message
     * carrying it: a rotation while one is in flight leaves legs pending, gap 23). Which worlds
     * have those is the first draw of their own streams, so it is known here, before the
     * topology is final: one or two rings of 3 to 5 nodes, every pair of a ring's nodes joined
     * (the proposer needs a card of each member), worlds without set-offs as they were. */
    w->so_rng.s = w->seed ^ UINT64_C(0x7365746f66667321);
    w->so_forge_rng.s = w->seed ^ UINT64_C(0x736f666f72676521);
    w->so_forge_due_ms = rng_range(&w->so_forge_rng, 0, 3000);
    {
        rng_t rs = {w->seed ^ UINT64_C(0x726573746f726521)};
        rng_t ro = {w->seed ^ UINT64_C(0x726f746174652121)};
        rng_t rp = {w->seed ^ UINT64_C(0x7265706c61636521)};
        bool restore = !opt->no_lost_commits && rng_chance(&rs, 200);
        bool rotation = !restore && rng_chance(&ro, 333);
        bool stolen = !rotation && !restore && rng_chance(&rp, 250);
        w->setoffs = w->n >= 3 && !restore && !rotation && !stolen && rng_chance(&w->so_rng, 700);
    }
    if (w->setoffs) {
        w->rings_count = w->n >= 4 && rng_chance(&w->so_rng, 600) ? 2 : 1;
        for (size_t q = 0; q < w->rings_count; q++) {
            int order[NODES_MAX];
            for (int i = 0; i < w->n; i++) {
                order[i] = i;
            }
            for (int i = w->n - 1; i > 0; i--) {
                int j = (int)rng_below(&w->so_rng, (uint64_t)i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            w->ring_len[q] = (size_t)rng_range(&w->so_rng, 3, w->n);
            for (size_t a = 0; a < w->ring_len[q]; a++) {
                w->rings[q][a] = order[a];
                for (size_t b = 0; b < a; b++) {
                    w->channel[order[a]][order[b]] = w->channel[order[b]][order[a]] = true;
                }
            }
        }
    }
    /* network */
    static const unsigned loss[] = {0, 0, 10, 50, 200};
    w->loss = loss[rng_below(r, 5)];
    w->dup = (unsigned)rng_below(r, 4) * 30;
    w->refuse = (unsigned)rng_below(r, 3) * 10;
    w->spike = (unsigned)rng_below(r, 3) * 20;
    w->hostile_rng.s = w->seed ^ UINT64_C(0x686f7374696c6521);
    w->hostile = (unsigned)rng_below(&w->hostile_rng, 3) * 10;
    /* one world in four has a compromised node, from a stream of its own */
    w->attack_rng.s = w->seed ^ UINT64_C(0x61747461636b2121);
    w->attacker =
        rng_chance(&w->attack_rng, 250) ? (int)rng_below(&w->attack_rng, (uint64_t)w->n) : -1;
    w->delay_min = rng_range(r, 0, 30);
    w->delay_jitter = rng_range(r, 0, 1) ? rng_range(r, 0, 200) : 0;
    w->fifo = rng_chance(r, 500) || opt->fifo;
    int64_t span = rng_range(r, 2000, 30000); /* the workload's length */
    w->faults_end = span + rng_range(r, 0, 10000);
    /* nodes */
    size_t ccy_count[NODES_MAX];
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        n->w = w;
        n->idx = i;
        n->name = NAMES[i];
        snprintf(n->home, sizeof n->home, "%s/%s", w->dir, n->name);
        disk_set_home(i, n->home);
        if (mkdir(n->home, 0700) != 0) {
            fail(w, "mkdir %s: %s", n->home, strerror(errno));
            return false;
        }
        if ((n->id = make_identity(r)) == NULL || (n->config = config_new()) == NULL) {
            fail(w, "out of memory");
            return false;
        }
        /* RUB everywhere (every pair shares one), others by chance */
        char list[64] = "RUB";
        for (size_t c = 1; c < CURRENCIES_COUNT; c++) {
            if (rng_chance(r, 500)) {
                strcat(list, ",");
                strcat(list, CURRENCIES[c]);
            }
        }
        ccy_count[i] = 1;
        char err[256];
        snprintf(n->config->name, sizeof n->config->name, "%s", n->name);
        snprintf(n->config->listen, sizeof n->config->listen, "tcp://127.0.0.1:%d", 7001 + 2 * i);
        if (config_set_currencies(n->config, list, err, sizeof err) != CONFIG_OK) {
            fail(w, "config: %s", err);
            return false;
        }
        static const uint32_t every[] = {0, 10, 50, 300};
        static const uint32_t interval[] = {0, 5, 30};
        n->config->checkpoint_every = every[rng_below(r, 4)];
        n->config->checkpoint_interval_s = interval[rng_below(r, 3)];
    }
    (void)ccy_count;
    /* one node in five worlds restored from an older copy of its home, from its own stream */
    w->restore_rng.s = w->seed ^ UINT64_C(0x726573746f726521);
    w->restore.node = -1;
    if (!opt->no_lost_commits && rng_chance(&w->restore_rng, 200)) {
        restore_t *rs = &w->restore;
        rs->node = (int)rng_below(&w->restore_rng, (uint64_t)w->n);
        rs->image_ms = rng_range(&w->restore_rng, 0, w->faults_end / 2);
        rs->restore_ms = rng_range(&w->restore_rng, rs->image_ms + 1, w->faults_end);
        /* a restore takes longer than any frame stays in flight (hostile copies: 20 s), so no
         * frame of the lost history reaches a peer after the restored node is back (a
         * replay of a captured one then could fill a number it reuses: PROTOCOL.md 6) */
        rs->down_ms = rng_range(&w->restore_rng, 21000, 30000);
    }
    /* holds, expiry and cancellation (PROTOCOL.md 3.8), from a stream of their own: in some
     * worlds some nodes screen (a list and a program), some payments expire, some are asked
     * back */
    rng_t *hr = &w->hold_rng;
    hr->s = w->seed ^ UINT64_C(0x686f6c6473213821);
    w->screening = rng_chance(hr, 400);
    w->expiry = rng_chance(hr, 400);
    w->cancelling = rng_chance(hr, 400);
    int first_screen = (int)rng_below(hr, (uint64_t)w->n);
    for (int i = 0; i < w->n && w->screening; i++) {
        node_t *n = &w->node[i];
        n->screens = i == first_screen || rng_chance(hr, 500);
        /* a restored node re-decides the payments its copy holds at start, before its
         * channels show the rollback: steered clear of unless --restore-holds (the header) */
        n->screens &= i != w->restore.node || opt->restore_holds;
        if (!n->screens) {
            continue;
        }
        char path[600], err[256];
        snprintf(path, sizeof path, "%s/%s", n->home, SCREEN_LIST_FILE);
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs("# the simulator's screening list\n  LISTED   party LTD\n", f) < 0 ||
            fclose(f) != 0) {
            fail(w, "cannot write %s: %s", path, strerror(errno));
            return false;
        }
        if ((n->list = screen_list_load(path, err, sizeof err)) == NULL) {
            fail(w, "%s: %s", path, err);
            return false;
        }
        snprintf(n->config->screen_list, sizeof n->config->screen_list, "%s", SCREEN_LIST_FILE);
        snprintf(n->config->screen_program, sizeof n->config->screen_program, "screen.sh");
        n->config->screen_timeout_ms = SCREEN_TIMEOUT;
        n->review_scan_ms = rng_range(hr, 0, 2000);
    }
    /* FX trades (PROTOCOL.md 3.10), from streams of their own, in half the worlds: a nominal
     * rate for each
     * pair of currencies, and for some pairs a peer's trades may come in, a band around it in
     * the acceptor's config for that peer (either way round: fx_band.BASE_QUOTE) */
    w->fx_rng.s = w->seed ^ UINT64_C(0x667874726164652e);
    w->fx_forge_rng.s = w->seed ^ UINT64_C(0x6678666f72676521);
    w->fx = rng_chance(&w->fx_rng, 500);
    w->fx_forge_due_ms = rng_range(&w->fx_forge_rng, 0, 2000);
    int64_t fx_rate[CURRENCIES_COUNT][CURRENCIES_COUNT]; /* [a][b], a < b: millionths of b per a */
    memset(fx_rate, 0, sizeof fx_rate);
    for (size_t a = 0; a < CURRENCIES_COUNT; a++) {
        for (size_t b = a + 1; b < CURRENCIES_COUNT && w->fx; b++) {
            fx_rate[a][b] = rng_range(&w->fx_rng, 10000, 100000000);
        }
    }
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        for (int j = 0; j < NODES_MAX; j++) {
            n->index_of[j] = SIZE_MAX;
        }
        for (int j = 0; j < w->n; j++) {
            if (!w->channel[i][j]) {
                continue;
            }
            config_peer_t *p = &n->config->peers[n->config->peers_count];
            n->index_of[j] = n->config->peers_count;
            n->peer_node[n->config->peers_count++] = j;
            char endpoint[64];
            snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", 7001 + 2 * j);
            identity_card(w->node[j].id, w->node[j].name, endpoint, &p->card);
            for (size_t c = 0; c < n->config->currencies_count; c++) {
                if (config_peer_set_limit(p, n->config->currencies[c], CAP_MINOR) != CONFIG_OK) {
                    fail(w, "config_peer_set_limit");
                    return false;
                }
            }
            for (size_t a = 0; a < CURRENCIES_COUNT && w->fx; a++) {
                for (size_t b = a + 1; b < CURRENCIES_COUNT; b++) {
                    if (!accepts(n, CURRENCIES[a]) || !accepts(n, CURRENCIES[b]) ||
                        !accepts(&w->node[j], CURRENCIES[a]) ||
                        !accepts(&w->node[j], CURRENCIES[b]) || !rng_chance(&w->fx_rng, 500)) {
                        continue;
                    }
                    config_fx_band_t *band = &p->fx_bands[p->fx_bands_count++];
                    int64_t low = fx_rate[a][b] / 100 * 95, high = fx_rate[a][b] / 100 * 105;
                    bool straight = rng_chance(&w->fx_rng, 500);
                    snprintf(band->base, sizeof band->base, "%s", CURRENCIES[straight ? a : b]);
                    snprintf(band->quote, sizeof band->quote, "%s", CURRENCIES[straight ? b : a]);
                    /* the other way round: 10^12 / rate, widened by the rounding */
                    band->low = straight ? low : INT64_C(1000000000000) / high;
                    band->high = straight ? high : INT64_C(1000000000000) / low + 1;
                }
            }
        }
        char path[600];
        snprintf(path, sizeof path, "%s/%s", n->home, CONFIG_FILE);
        if (config_save(n->config, path) != CONFIG_OK) {
            fail(w, "config_save %s: %s", path, strerror(errno));
            return false;
        }
        snprintf(path, sizeof path, "%s/%s", n->home, IDENTITY_KEY_FILE);
        if (identity_save(n->id, path) != ID_OK) {
            fail(w, "identity_save %s", path);
            return false;
        }
    }
    /* the workload */
    size_t total = opt->settlements;
    w->items = calloc(total + 1, sizeof *w->items);
    if (w->items == NULL) {
        abort();
    }
    for (size_t k = 0; k < total; k++) {
        item_t *it = &w->items[w->items_count];
        it->payer = (int)rng_below(r, (uint64_t)w->n);
        node_t *payer = &w->node[it->payer];
        if (payer->config->peers_count == 0) {
            continue;
        }
        it->peer_index = (size_t)rng_below(r, payer->config->peers_count);
        it->payee = payer->peer_node[it->peer_index];
        node_t *payee = &w->node[it->payee];
        it->due_ms = rng_range(r, 0, span / 10) * 10; /* clustered: batches in one turn */
        it->tag = (unsigned)k;
        unsigned roll = (unsigned)rng_below(r, 100);
        size_t earlier = w->items_count;
        if (roll < 5 && earlier > 0) {
            /* a duplicate of an earlier original, later in time */
            size_t o = (size_t)rng_below(r, earlier);
            while (o > 0 &&
                   (w->items[o].kind == ITEM_DUP_SAME || w->items[o].kind == ITEM_DUP_OTHER)) {
                o--;
            }
            if (w->items[o].kind != ITEM_DUP_SAME && w->items[o].kind != ITEM_DUP_OTHER) {
                item_t *orig = &w->items[o];
                *it = *orig;
                it->kind = roll < 3 ? ITEM_DUP_SAME : ITEM_DUP_OTHER;
                it->orig = o;
                it->due_ms = orig->due_ms + rng_range(r, 0, 5000);
                if (it->kind == ITEM_DUP_OTHER) {
                    it->amount = orig->amount + 1;
                }
                w->items_count++;
                continue;
            }
        }
        make_uetr(r, it->uetr);
        /* a currency both deal in (RUB at least), or one only the payer deals in */
        const char *both[CURRENCIES_COUNT], *payer_only[CURRENCIES_COUNT];
        size_t nb = 0, np = 0;
        for (size_t c = 0; c < CURRENCIES_COUNT; c++) {
            if (accepts(payer, CURRENCIES[c]) && accepts(payee, CURRENCIES[c])) {
                both[nb++] = CURRENCIES[c];
            } else if (accepts(payer, CURRENCIES[c])) {
                payer_only[np++] = CURRENCIES[c];
            }
        }
        if (roll >= 5 && roll < 8 && np > 0) {
            it->kind = ITEM_BAD_CCY;
            snprintf(it->currency, sizeof it->currency, "%s", payer_only[rng_below(r, np)]);
            it->amount = rng_range(r, 1, AMOUNT_MAX);
        } else if (roll >= 8 && roll < 12) {
            it->kind = ITEM_OVER_CAP;
            snprintf(it->currency, sizeof it->currency, "%s", both[rng_below(r, nb)]);
            it->amount = OVER_CAP_MINOR + rng_range(r, 0, AMOUNT_MAX);
        } else {
            it->kind = ITEM_NORMAL;
            snprintf(it->currency, sizeof it->currency, "%s", both[rng_below(r, nb)]);
            it->amount = rng_range(r, 1, AMOUNT_MAX);
        }
        w->items_count++;
    }
    /* set-offs: circular debts round each ring (RUB, which every node deals in: payments from
     * each member to its successor early in the workload, larger than the other payments, whose
     * traffic both ways would otherwise leave no debt round the ring; screened, cancelled or
     * expired as any other), then the proposals during the faults, by members other than the
     * compromised node (it forges), some two at the same moment round one ring (concurrent,
     * overlapping) */
    if (w->setoffs) {
        size_t more = 0;
        for (size_t q = 0; q < w->rings_count; q++) {
            more += 5 * w->ring_len[q];
        }
        item_t *v = realloc(w->items, (w->items_count + more + 1) * sizeof *w->items);
        if (v == NULL) {
            abort();
        }
        w->items = v;
        for (size_t q = 0; q < w->rings_count; q++) {
            for (size_t a = 0; a < w->ring_len[q]; a++) {
                int payer = w->rings[q][a], payee = w->rings[q][(a + 1) % w->ring_len[q]];
                int64_t count = rng_range(&w->so_rng, 3, 5);
                for (int64_t c = 0; c < count; c++) {
                    item_t *it = &w->items[w->items_count];
                    memset(it, 0, sizeof *it);
                    it->payer = payer;
                    it->payee = payee;
                    it->peer_index = w->node[payer].index_of[payee];
                    it->due_ms = rng_range(&w->so_rng, 0, span / 80) * 10;
                    it->tag = (unsigned)(total + w->items_count);
                    it->kind = ITEM_NORMAL;
                    make_uetr(&w->so_rng, it->uetr);
                    snprintf(it->currency, sizeof it->currency, "RUB");
                    it->amount = rng_range(&w->so_rng, 5 * AMOUNT_MAX, 20 * AMOUNT_MAX);
                    w->items_count++;
                }
            }
        }
        int64_t count = rng_range(&w->so_rng, 3, 8);
        for (int64_t c = 0; c < count; c++) {
            size_t q = (size_t)rng_below(&w->so_rng, w->rings_count);
            size_t len = w->ring_len[q], rot = (size_t)rng_below(&w->so_rng, len);
            int64_t due = rng_range(&w->so_rng, span / 4, w->faults_end - 1000);
            bool twice = rng_chance(&w->so_rng, 350);
            size_t before = w->sos_count;
            for (int side = 0; side < (twice ? 2 : 1); side++) {
                if (side == 1) { /* another member, or a member of the other ring, at once */
                    q = (size_t)rng_below(&w->so_rng, w->rings_count);
                    len = w->ring_len[q];
                    rot = (size_t)rng_below(&w->so_rng, len);
                }
                if (w->forging && w->rings[q][rot] == w->attacker) {
                    continue;
                }
                so_t *nv = realloc(w->sos, (w->sos_count + 1) * sizeof *w->sos);
                if (nv == NULL) {
                    abort();
                }
                w->sos = nv;
                so_t *so = &w->sos[w->sos_count++];
                memset(so, 0, sizeof *so);
                so->k = len;
                for (size_t p = 0; p < len; p++) {
                    so->ring[p] = w->rings[q][(rot + p) % len];
                }
                unsigned roll = (unsigned)rng_below(&w->so_rng, 100);
                so->kind = twice       ? SO_NORMAL
                           : roll < 20 ? SO_OVER
                           : roll < 40 ? SO_DEADLINE
                                       : SO_NORMAL;
                so->due_ms = due + (side == 1 ? rng_range(&w->so_rng, 0, 20) : 0);
                so->amount = rng_range(&w->so_rng, 1, AMOUNT_MAX);
                so->deadline_ms = so->kind == SO_DEADLINE ? rng_range(&w->so_rng, 1000, 2500)
                                  : rng_chance(&w->so_rng, 500)
                                      ? 30000
                                      : rng_range(&w->so_rng, 5000, 60000);
                so->concurrent = twice;
            }
            for (size_t i = before; twice && w->sos_count - before < 2 && i < w->sos_count; i++) {
                w->sos[i].concurrent = false; /* the other was the compromised node's */
            }
        }
    }
    /* each node's items, by due time (then by index) */
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        n->items = calloc(w->items_count + 1, sizeof *n->items);
        if (n->items == NULL) {
            abort();
        }
        for (size_t k = 0; k < w->items_count; k++) {
            if (w->items[k].payer == i) {
                n->items[n->items_count++] = k;
            }
        }
    }
    /* partitions and crashes, inside the time of faults */
    size_t parts = (size_t)rng_below(r, 6);
    for (size_t k = 0; k < parts && w->n >= 2; k++) {
        partition_t *p = &w->partitions[w->partitions_count++];
        p->a = (int)rng_below(r, (uint64_t)w->n);
        p->b = (int)((p->a + 1 + (int)rng_below(r, (uint64_t)w->n - 1)) % w->n);
        p->from_ms = rng_range(r, 0, w->faults_end);
        p->to_ms = p->from_ms + rng_range(r, 200, 15000);
    }
    /* full and failing disks, from a stream of their own */
    w->disk_rng.s = w->seed ^ UINT64_C(0x6469736b66756c6c);
    size_t disks = rng_chance(&w->disk_rng, 333) ? (size_t)rng_range(&w->disk_rng, 1, 3) : 0;
    disks = opt->no_lost_commits ? 0 : disks;
    for (size_t k = 0; k < disks; k++) {
        disk_event_t *d = &w->disks[w->disks_count++];
        d->node = (int)rng_below(&w->disk_rng, (uint64_t)w->n);
        d->fault = rng_chance(&w->disk_rng, 500) ? DISK_FULL : DISK_SYNC_FAILS;
        d->from_ms = rng_range(&w->disk_rng, 0, w->faults_end);
        d->to_ms = d->from_ms + rng_range(&w->disk_rng, 100, 8000);
    }
    /* one world in three without a restore: a node rotates its signing key once or twice */
    w->rotate_rng.s = w->seed ^ UINT64_C(0x726f746174652121);
    w->rotator = w->restore.node < 0 && rng_chance(&w->rotate_rng, 333)
                     ? (int)rng_below(&w->rotate_rng, (uint64_t)w->n)
                     : -1;
    w->rotator2 = -1;
    if (w->rotator >= 0) {
        rng_t *rr = &w->rotate_rng;
        node_t *a = &w->node[w->rotator];
        a->rotations_wanted = 1 + (int)rng_below(rr, 2);
        a->rotate_at = rng_range(rr, 0, w->faults_end / 2);
        /* in half these worlds a peer of it rotates too, a moment later: both switch at once */
        if (rng_chance(rr, 500) && a->config->peers_count > 0) {
            node_t *b = &w->node[a->peer_node[rng_below(rr, a->config->peers_count)]];
            w->rotator2 = b->idx;
            b->rotations_wanted = 1 + (int)rng_below(rr, 2);
            b->rotate_at = a->rotate_at + rng_range(rr, 0, 300);
        }
    }
    /* one world in four without a rotation or a restore: a node's keys are stolen, and the
     * operators of both ends of its channels replace them (a restore could put back books from
     * before the replacement, under keys deleted since) */
    w->replace_rng.s = w->seed ^ UINT64_C(0x7265706c61636521);
    w->stolen = -1;
    if (w->rotator < 0 && w->restore.node < 0 && rng_chance(&w->replace_rng, 250)) {
        rng_t *rr = &w->replace_rng;
        w->stolen = (int)rng_below(rr, (uint64_t)w->n);
        w->steal_ms = rng_range(rr, 0, w->faults_end / 2);
        /* as drawn, every operator acts before faults stop, in any order (each is another
         * person); as much later as the leak is found later (gap 1, replace_step) */
        w->own_replace_ms = rng_range(rr, w->steal_ms + 100, w->faults_end - 1);
        int64_t last = w->own_replace_ms;
        for (int y = 0; y < w->n; y++) {
            if (w->channel[w->stolen][y]) {
                w->peer_replace_ms[y] = rng_range(rr, w->steal_ms + 100, w->faults_end - 1);
                last = w->peer_replace_ms[y] > last ? w->peer_replace_ms[y] : last;
            }
        }
        w->thief_end_ms = last + rng_range(rr, 5000, 15000);
        uint8_t seed[crypto_sign_SEEDBYTES], box[crypto_box_SECRETKEYBYTES];
        for (size_t i = 0; i < sizeof seed; i++) {
            seed[i] = (uint8_t)rng_next(rr);
            box[i] = (uint8_t)rng_next(rr);
        }
        uint8_t curve_raw[32]; /* `corridor key replace` makes a new CURVE key too */
        char curve[IDENTITY_CURVE_KEY_CHARS + 1];
        for (size_t i = 0; i < sizeof curve_raw; i++) {
            curve_raw[i] = (uint8_t)rng_next(rr);
        }
        if (zmq_z85_encode(curve, curve_raw, sizeof curve_raw) == NULL) {
            abort();
        }
        /* the thief's frames skip the CURVE model in half these worlds (their own stream) */
        rng_t past = {w->seed ^ UINT64_C(0x6375727665707373)};
        w->thief_past_curve = rng_chance(&past, 500);
        if ((w->replacement = identity_from_secrets(seed, box, curve)) == NULL) {
            fail(w, "out of memory");
            return false;
        }
    }
    /* each payment's expiry, listing, screening verdict, review and cancellation: with a
     * restore, no cancellation to or from the restored node (its books lose what it asked or
     * answered after the copy, while the payments are sent again) */
    static const char *const verdict_reasons[] = {"RR01", "RR02", "RR03", "FF01"};
    static const char *const review_reasons[] = {"", "", "RR05", "AG01"};
    static const char *const cancel_reasons[] = {"CUST", "DUPL", "FRAD", "TECH",
                                                 "UPAY", "AM09", "AC03"};
    for (size_t k = 0; k < w->items_count; k++) {
        item_t *it = &w->items[k];
        if (it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER) {
            it->expires_in = w->items[it->orig].expires_in; /* another is a repeat too */
            it->listed = w->items[it->orig].listed;
            continue;
        }
        if (w->expiry) {
            unsigned e = (unsigned)rng_below(hr, 10);
            it->expires_in = e < 2   ? rng_range(hr, 50, 3000)    /* short */
                             : e < 4 ? rng_range(hr, 3000, 60000) /* held a while */
                             : e < 5 ? 0                          /* --expires-in 0 */
                                     : INT64_C(86400000);         /* the default */
        }
        it->listed = w->screening && rng_chance(hr, 50);
        unsigned v = (unsigned)rng_below(hr, 100);
        it->verdict = v < 50 ? SCREEN_ACCEPT : v < 75 ? SCREEN_REJECT : SCREEN_HOLD;
        it->verdict_fails = rng_chance(hr, 100);
        snprintf(it->verdict_reason, sizeof it->verdict_reason, "%s",
                 verdict_reasons[rng_below(hr, 4)]);
        it->review_accept = rng_chance(hr, 600);
        snprintf(it->review_reason, sizeof it->review_reason, "%s",
                 review_reasons[rng_below(hr, 4)]);
        bool restored = w->restore.node == it->payer || w->restore.node == it->payee;
        if (w->cancelling && !restored && rng_chance(hr, 150)) {
            it->cancel_ms = it->due_ms + rng_range(hr, 0, 6000);
            snprintf(it->cancel_reason, sizeof it->cancel_reason, "%s",
                     cancel_reasons[rng_below(hr, 7)]);
        }
    }
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        n->cancels = calloc(n->items_count + 1, sizeof *n->cancels);
        if (n->cancels == NULL) {
            abort();
        }
        for (size_t k = 0; k < n->items_count; k++) {
            if (w->items[n->items[k]].cancel_ms > 0) {
                n->cancels[n->cancels_count++] = n->items[k];
            }
        }
    }
    /* the compromised node of a world without a restore also forges sequenced messages */
    w->forge_rng.s = w->seed ^ UINT64_C(0x666f72676572792e);
    w->forging = w->attacker >= 0 && w->restore.node < 0;
    w->forge_due_ms = rng_range(&w->forge_rng, 0, 2000);
    /* returns (PROTOCOL.md 3.9), from a stream of their own: in half the worlds, the payees of
     * some payments return them, in one go or in parts, a little after they were made; now and
     * then the operator asks more than is left (refused locally) */
    w->ret_rng.s = w->seed ^ UINT64_C(0x72657475726e7321);
    w->returning = rng_chance(&w->ret_rng, 500);
    for (size_t k = 0; k < w->items_count && w->returning; k++) {
        const item_t *it = &w->items[k];
        if (it->kind != ITEM_NORMAL || it->payee == w->attacker || !rng_chance(&w->ret_rng, 200)) {
            continue;
        }
        int attempts = (int)rng_range(&w->ret_rng, 1, 3);
        int64_t at = it->due_ms + rng_range(&w->ret_rng, 200, 8000);
        bool over = rng_chance(&w->ret_rng, 250);
        int over_at = (int)rng_below(&w->ret_rng, (uint64_t)attempts + 1);
        for (int a = 0; a <= attempts; a++) {
            if (a == attempts && !(over && over_at == attempts)) {
                break;
            }
            ret_t *rt = ret_push(w);
            rt->returner = it->payee;
            rt->payer = it->payer;
            rt->item = k;
            rt->peer_index = w->node[it->payee].index_of[it->payer];
            rt->kind = over && a == over_at           ? RET_OVER
                       : rng_chance(&w->ret_rng, 600) ? RET_PARTIAL
                                                      : RET_FULL;
            rt->due_ms = at;
            at += rng_range(&w->ret_rng, 0, 5000);
        }
    }
    /* the trades: proposed by a node to a peer in a pair both deal in, inside the band the peer
     * set for it (accepted) or outside (AG01); for a pair without a band held for review and
     * decided by the acceptor's operator a while later (accepted, RR04) or left to expire
     * (AB05); now and then in a currency the acceptor does not deal in (AM03). Some expire. */
    int64_t fx_count = w->fx ? rng_range(&w->fx_rng, 2, 2 + (int64_t)opt->settlements / 10) : 0;
    for (int64_t k = 0; k < fx_count; k++) {
        rng_t *fr = &w->fx_rng;
        int P = (int)rng_below(fr, (uint64_t)w->n);
        node_t *pn = &w->node[P];
        if (pn->config->peers_count == 0) {
            continue;
        }
        size_t pi = (size_t)rng_below(fr, pn->config->peers_count);
        int A = pn->peer_node[pi];
        node_t *an = &w->node[A];
        size_t common[CURRENCIES_COUNT], cc = 0, only = CURRENCIES_COUNT;
        for (size_t c = 0; c < CURRENCIES_COUNT; c++) {
            if (accepts(pn, CURRENCIES[c]) && accepts(an, CURRENCIES[c])) {
                common[cc++] = c;
            } else if (accepts(pn, CURRENCIES[c])) {
                only = c;
            }
        }
        bool bad = only != CURRENCIES_COUNT && rng_chance(fr, cc < 2 ? 300 : 100);
        if (!bad && cc < 2) {
            continue;
        }
        size_t a = 0, b = only;
        if (!bad) {
            size_t x = (size_t)rng_below(fr, cc), y = (size_t)rng_below(fr, cc - 1);
            y += y >= x;
            a = common[x] < common[y] ? common[x] : common[y];
            b = common[x] < common[y] ? common[y] : common[x];
        }
        const config_peer_t *ap = &an->config->peers[an->index_of[P]];
        bool banded = false;
        for (size_t i = 0; i < ap->fx_bands_count; i++) {
            const config_fx_band_t *bd = &ap->fx_bands[i];
            banded |=
                (strcmp(bd->base, CURRENCIES[a]) == 0 && strcmp(bd->quote, CURRENCIES[b]) == 0) ||
                (strcmp(bd->base, CURRENCIES[b]) == 0 && strcmp(bd->quote, CURRENCIES[a]) == 0);
        }
        fx_t *f = fx_push(w);
        f->proposer = P;
        f->acceptor = A;
        f->peer_index = pi;
        f->due_ms = rng_range(fr, 0, span / 10) * 10;
        unsigned roll = (unsigned)rng_below(fr, 100);
        f->kind = bad         ? FX_BAD_CCY
                  : banded    ? (roll < 70 ? FX_IN_BAND : FX_OUT_BAND)
                  : roll < 45 ? FX_REVIEW_ACCEPT
                  : roll < 75 ? FX_REVIEW_REJECT
                              : FX_REVIEW_EXPIRE;
        /* the rate: within 2% of the nominal one, or far outside the band's 5% */
        int64_t factor = f->kind != FX_OUT_BAND ? rng_range(fr, 980000, 1020000)
                         : rng_chance(fr, 500)  ? rng_range(fr, 500000, 900000)
                                                : rng_range(fr, 1100000, 2000000);
        __int128 rr = (__int128)fx_rate[a][b] * factor / 1000000;
        int64_t ua = minor_per_unit(CURRENCIES[a]), ub = minor_per_unit(CURRENCIES[b]);
        int64_t base = rng_range(fr, 100, 2000) * ua + (int64_t)rng_below(fr, (uint64_t)ua);
        int64_t quote = 0;
        for (;;) {
            quote = (int64_t)((__int128)base * rr * ub / ((__int128)ua * 1000000));
            if (quote >= 10000) {
                break; /* rounded by at most 0.01%: well inside or outside the band */
            }
            base *= 10;
        }
        bool pays_base = rng_chance(fr, 500);
        snprintf(f->pay_ccy, sizeof f->pay_ccy, "%s", CURRENCIES[pays_base ? a : b]);
        snprintf(f->recv_ccy, sizeof f->recv_ccy, "%s", CURRENCIES[pays_base ? b : a]);
        f->pay_minor = pays_base ? base : quote;
        f->recv_minor = pays_base ? quote : base;
        f->expires_in = f->kind == FX_REVIEW_EXPIRE                    ? rng_range(fr, 300, 5000)
                        : f->kind != FX_BAD_CCY && rng_chance(fr, 300) ? rng_range(fr, 5000, 60000)
                                                                       : 0;
        f->decide_ms = f->kind == FX_REVIEW_ACCEPT || f->kind == FX_REVIEW_REJECT
                           ? f->due_ms + rng_range(fr, 500, 8000)
                           : 0;
    }
    /* settlement cycles (PROTOCOL.md 3.11), from streams of their own, in half the worlds
     * without a restore (3.11 promises nothing of a cycle a restore loses but what the repair
     * does) nor a stolen key (a known gap: `key replace` signs the queued messages again under
     * the new key, but a CycleAnswer's countersignature inside stays by the replaced key, which
     * the peer ignores, and its cycle stays closing): operators close cycles at random moments,
     * now and then both ends of a channel at once; the compromised node does not close (it
     * countersigns), it forges */
    w->cy_rng.s = w->seed ^ UINT64_C(0x6379636c65732121);
    w->cy_forge_rng.s = w->seed ^ UINT64_C(0x6379666f72676521);
    w->cycles = w->restore.node < 0 && w->stolen < 0 && rng_chance(&w->cy_rng, 500);
    w->cy_forge_due_ms = rng_range(&w->cy_forge_rng, 0, 3000);
    int64_t cy_count = w->cycles ? rng_range(&w->cy_rng, 2, 4 + (int64_t)opt->settlements / 25) : 0;
    for (int64_t k = 0; k < cy_count; k++) {
        int i = (int)rng_below(&w->cy_rng, (uint64_t)w->n);
        node_t *cn = &w->node[i];
        bool both = rng_chance(&w->cy_rng, 300);
        int64_t at = rng_range(&w->cy_rng, 0, w->faults_end);
        if (cn->config->peers_count == 0 || (w->forging && i == w->attacker)) {
            continue;
        }
        size_t pi = (size_t)rng_below(&w->cy_rng, cn->config->peers_count);
        int j = cn->peer_node[pi];
        both = both && !(w->forging && j == w->attacker);
        for (int side = 0; side < (both ? 2 : 1); side++) {
            cyc_t *v = realloc(w->cys, (w->cys_count + 1) * sizeof *w->cys);
            if (v == NULL) {
                abort();
            }
            w->cys = v;
            cyc_t *c = &w->cys[w->cys_count++];
            memset(c, 0, sizeof *c);
            c->node = side == 0 ? i : j;
            c->peer = side == 0 ? j : i;
            c->peer_index = w->node[c->node].index_of[c->peer];
            c->due_ms = at;
            c->both = both;
        }
        w->cy_stats[CY_STAT_BOTH] += both;
    }
    for (int i = 0; i < w->n && w->cycles; i++) {
        w->node[i].cy_scan_ms = rng_range(&w->cy_rng, 0, 3000);
    }
    /* reconciliations while faults go on, from a stream of their own */
    w->recon_rng.s = w->seed ^ UINT64_C(0x7265636f6e63696c);
    size_t recons = rng_chance(&w->recon_rng, 500) ? (size_t)rng_range(&w->recon_rng, 1, 4) : 0;
    for (size_t k = 0; k < recons; k++) {
        recon_event_t *e = &w->recons[w->recons_count];
        e->node = (int)rng_below(&w->recon_rng, (uint64_t)w->n);
        e->at = rng_range(&w->recon_rng, 0, w->faults_end);
        size_t peers = w->node[e->node].config->peers_count;
        if (peers > 0) {
            e->peer_index = (size_t)rng_below(&w->recon_rng, peers);
            w->recons_count++;
        }
    }
    size_t crashes = (size_t)rng_below(r, 5);
    for (size_t k = 0; k < crashes; k++) {
        crash_t *c = &w->crashes[w->crashes_count++];
        c->at = rng_range(r, 0, w->faults_end);
        c->node = (int)rng_below(r, (uint64_t)w->n);
        c->kind = (crash_kind_t)rng_range(r, CRASH_BETWEEN, CRASH_LOST_COMMIT);
        if (c->kind == CRASH_LOST_COMMIT && opt->no_lost_commits) {
            c->kind = CRASH_AFTER_COMMIT;
        }
        c->down_ms = rng_range(r, 10, 5000);
    }
    /* crashes in time order */
    for (size_t a = 1; a < w->crashes_count; a++) {
        for (size_t b = a; b > 0 && w->crashes[b].at < w->crashes[b - 1].at; b--) {
            crash_t t = w->crashes[b];
            w->crashes[b] = w->crashes[b - 1];
            w->crashes[b - 1] = t;
        }
    }
    trace(w,
          "world seed %" PRIu64 ": %d nodes, %zu items, loss %u dup %u refuse %u spike %u per "
          "mille, hostile %u, delay %" PRId64 "+%" PRId64 " ms%s, %zu partitions, %zu crashes, "
          "%zu disk faults, %zu reconciliations, faults until t=%" PRId64,
          w->seed, w->n, w->items_count, w->loss, w->dup, w->refuse, w->spike, w->hostile,
          w->delay_min, w->delay_jitter, w->fifo ? " in order" : "", w->partitions_count,
          w->crashes_count, w->disks_count, w->recons_count, w->faults_end);
    for (int i = 0; i < w->n; i++) {
        if (w->node[i].rotations_wanted > 0) {
            trace(w, "%s rotates its keys %d times, first at t=%" PRId64, w->node[i].name,
                  w->node[i].rotations_wanted, w->node[i].rotate_at);
        }
    }
    if (w->stolen >= 0) {
        trace(w,
              "%s's keys are stolen at t=%" PRId64 "; its operator replaces them at t=%" PRId64
              ", its peers' operators theirs:",
              w->node[w->stolen].name, w->steal_ms, w->own_replace_ms);
        for (int y = 0; y < w->n; y++) {
            if (w->channel[w->stolen][y]) {
                trace(w, "  %s at t=%" PRId64, w->node[y].name, w->peer_replace_ms[y]);
            }
        }
    }
    for (size_t q = 0; q < w->rings_count; q++) {
        char ring[64] = "";
        for (size_t a = 0; a < w->ring_len[q]; a++) {
            strcat(ring, " ");
            strcat(ring, w->node[w->rings[q][a]].name);
        }
        trace(w, "set-offs round%s (%zu proposals in the world)", ring, w->sos_count);
    }
    if (w->attacker >= 0) {
        trace(w, "%s is compromised: it forges control messages%s", w->node[w->attacker].name,
              w->forging ? " and sequenced ones" : "");
    }
    if (w->restore.node >= 0) {
        trace(w, "%s backed up at t=%" PRId64 ", restored from it at t=%" PRId64,
              w->node[w->restore.node].name, w->restore.image_ms, w->restore.restore_ms);
    }
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        char peers[128] = "";
        for (size_t p = 0; p < n->config->peers_count; p++) {
            strcat(peers, " ");
            strcat(peers, w->node[n->peer_node[p]].name);
        }
        trace(w, "node %s: %zu currencies, checkpoint every %u / %u s, peers:%s", n->name,
              n->config->currencies_count, n->config->checkpoint_every,
              n->config->checkpoint_interval_s, peers);
    }
    for (int i = 0; i < w->n; i++) {
        if (!node_open(w, &w->node[i])) {
            return false;
        }
    }
    return true;
}

/* ---- the end of a world: liveness, then the books ----------------------------------------------
 */

/* The outcomes an item may end in (PROTOCOL.md 3.2.4 with 3.8): the payee's checks in their
 * order (currency AM03, expiry AB05, list RR04, cap AM02, program), then what decides a held
 * payment: the program's verdict, a person's review (after hold, a failure or a timeout), its
 * expiry, its cancellation. Up to 6, as "status reason" ("settled ", "rejected AM02"). */
static size_t outcomes_allowed(const world_t *w, const item_t *it, char out[6][24])
{
    size_t count = 0;
    const node_t *payee = &w->node[it->payee];
#define ALLOW(st, why) snprintf(out[count++], sizeof out[0], "%s %s", status_name(st), (why))
    if (it->kind == ITEM_BAD_CCY) {
        ALLOW(STATUS_REJECTED, reason_code(REASON_CURRENCY));
        return count;
    }
    if (it->expires_in > 0) {
        ALLOW(STATUS_REJECTED, reason_code(REASON_EXPIRED));
    }
    if (payee->screens && it->listed) {
        ALLOW(STATUS_REJECTED, reason_code(REASON_REGULATORY));
    } else if (it->kind == ITEM_OVER_CAP) {
        ALLOW(STATUS_REJECTED, reason_code(REASON_OVER_CAP));
    } else if (!payee->screens) {
        ALLOW(STATUS_SETTLED, "");
    } else {
        if (it->verdict == SCREEN_ACCEPT) {
            ALLOW(STATUS_SETTLED, "");
        } else if (it->verdict == SCREEN_REJECT) {
            ALLOW(STATUS_REJECTED, it->verdict_reason);
        }
        if (it->review_accept) {
            ALLOW(STATUS_SETTLED, "");
        } else {
            ALLOW(STATUS_REJECTED,
                  it->review_reason[0] ? it->review_reason : reason_code(REASON_REGULATORY));
        }
        if (it->cancel_sent) {
            ALLOW(STATUS_REJECTED, it->cancel_reason);
        }
    }
#undef ALLOW
    return count;
}

/* The status of trade f's two legs at node n (its records of both leg UETRs): false when a leg
 * is missing or the legs differ in status or reason (reported with `strict`). */
static bool fx_status_at(world_t *w, const fx_t *f, const node_t *n, bool strict,
                         ledger_outcome_t *o)
{
    const char *peer = w->node[n->idx == f->proposer ? f->acceptor : f->proposer].name;
    settlement_t s[2];
    ledger_outcome_t lo[2];
    ledger_err_t rc[2];
    for (int i = 0; i < 2; i++) {
        rc[i] = ledger_find(n->reader, peer, f->uetr[i], &s[i], &lo[i]);
    }
    if (rc[0] != LEDGER_OK || rc[1] != LEDGER_OK) {
        if (strict) {
            fail(w, "%s trade %s from %s to %s: %s holds %s of its two legs",
                 FX_KIND_NAMES[f->kind], f->fx_id, w->node[f->proposer].name,
                 w->node[f->acceptor].name, n->name, rc[0] == rc[1] ? "neither" : "one");
        }
        return false;
    }
    if (lo[0].status != lo[1].status || strcmp(lo[0].reason, lo[1].reason) != 0 ||
        strcmp(s[0].fx_id, f->fx_id) != 0 || strcmp(s[1].fx_id, f->fx_id) != 0 ||
        s[0].fx_leg != FX_LEG_PROPOSER_PAYS || s[1].fx_leg != FX_LEG_ACCEPTOR_PAYS) {
        fail(w,
             "trade %s at %s: legs %s %s (leg %d of %s) and %s %s (leg %d of %s) are not one "
             "trade's",
             f->fx_id, n->name, status_name(lo[0].status), lo[0].reason, (int)s[0].fx_leg,
             s[0].fx_id, status_name(lo[1].status), lo[1].reason, (int)s[1].fx_leg, s[1].fx_id);
        return false;
    }
    *o = lo[0];
    return true;
}

/* Whether every trade was proposed and is final at both ends; `strict` reports what is not. */
static bool fx_final(world_t *w, bool strict)
{
    for (size_t k = 0; k < w->fxs_count && !w->failed; k++) {
        const fx_t *f = &w->fxs[k];
        node_t *a = &w->node[f->proposer], *b = &w->node[f->acceptor];
        if (!f->done || f->in_turn || !a->up || !b->up) {
            if (strict) {
                fail(w, "liveness: %s trade from %s to %s not proposed or a node is down",
                     FX_KIND_NAMES[f->kind], a->name, b->name);
            }
            return false;
        }
        if (!f->committed) {
            continue; /* a hostile one lost with its transaction: it never happened */
        }
        ledger_outcome_t ao, bo;
        if (f->restore_lost && !fx_status_at(w, f, a, false, &ao) &&
            !fx_status_at(w, f, b, false, &bo)) {
            continue; /* lost with its proposer's restore before it left: nothing to wait for */
        }
        if (!fx_status_at(w, f, a, strict, &ao) || !fx_status_at(w, f, b, strict, &bo)) {
            return false;
        }
        if (ao.status == STATUS_PENDING || bo.status == STATUS_PENDING ||
            bo.status == STATUS_HELD) {
            if (strict) {
                fail(w,
                     "liveness: %s trade %s from %s to %s not final at both ends %d s after "
                     "faults stopped: proposer %s, acceptor %s",
                     FX_KIND_NAMES[f->kind], f->fx_id, a->name, b->name, LIVENESS_MS / 1000,
                     status_name(ao.status), status_name(bo.status));
            }
            return false;
        }
    }
    return true;
}

typedef struct {
    world_t *w;
    node_t *n;
    size_t legs;
    int64_t net[NODES_MAX][CURRENCIES_COUNT];    /* by peer node: what the settled records move */
    int64_t so_net[NODES_MAX][CURRENCIES_COUNT]; /* of them, set-off legs (PROTOCOL.md 3.12) */
} fx_walk_t;

static void fx_walk(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    fx_walk_t *c = arg;
    world_t *w = c->w;
    int other = node_by_name(w, s->peer);
    size_t ccy = CURRENCIES_COUNT;
    for (size_t i = 0; i < CURRENCIES_COUNT; i++) {
        ccy = strcmp(CURRENCIES[i], s->currency) == 0 ? i : ccy;
    }
    if (other < 0 || ccy == CURRENCIES_COUNT) {
        fail(w, "%s holds %s with %s in %s", c->n->name, s->uetr, s->peer, s->currency);
        return;
    }
    if (o->status == STATUS_SETTLED) {
        c->net[other][ccy] +=
            settlement_money_direction(s) == DIRECTION_IN ? s->amount_minor : -s->amount_minor;
    }
    if (settlement_is_setoff_leg(s)) { /* check_setoffs */
        if (o->status == STATUS_SETTLED) {
            c->so_net[other][ccy] +=
                settlement_money_direction(s) == DIRECTION_IN ? s->amount_minor : -s->amount_minor;
        }
        return;
    }
    if (!settlement_is_fx_leg(s)) {
        return;
    }
    c->legs++;
    bool out = s->direction == DIRECTION_OUT;
    int proposer = out ? c->n->idx : other, acceptor = out ? other : c->n->idx;
    for (size_t k = 0; k < w->fxs_count; k++) {
        const fx_t *f = &w->fxs[k];
        if (f->committed && f->proposer == proposer && f->acceptor == acceptor &&
            strcmp(f->fx_id, s->fx_id) == 0) {
            int i = s->fx_leg == FX_LEG_PROPOSER_PAYS ? FX_PAY : FX_RECEIVE;
            const char *ccy_want = i == FX_PAY ? f->pay_ccy : f->recv_ccy;
            int64_t want = i == FX_PAY ? f->pay_minor : f->recv_minor;
            if (strcmp(s->uetr, f->uetr[i]) != 0 || strcmp(s->currency, ccy_want) != 0 ||
                s->amount_minor != want) {
                fail(w, "%s holds leg %s of trade %s as %" PRId64 " %s, proposed %" PRId64 " %s",
                     c->n->name, s->uetr, s->fx_id, s->amount_minor, s->currency, want, ccy_want);
            }
            return;
        }
    }
    fail(w, "%s holds leg %s of a trade %s with %s that nobody proposed", c->n->name, s->uetr,
         s->fx_id, s->peer);
}

/* Once quiet: each trade held by both ends in the same final state (both legs, one status and
 * reason, one the model allows), no leg of a trade nobody proposed (the hostile ones with a leg
 * missing), positions equal to what the settled records move (both currencies of each accepted
 * trade), and no reservation left (the cap the proposer grants whole again). */
static int64_t nets_moved(world_t *w, node_t *n, const char *peer, const char *currency);

static void check_fx(world_t *w)
{
    uint64_t *st = w->fx_stats;
    for (size_t k = 0; k < w->fxs_count && !w->failed; k++) {
        const fx_t *f = &w->fxs[k];
        if (!f->committed) {
            continue;
        }
        st[FX_STAT_SENT]++;
        ledger_outcome_t ao, bo;
        if (f->restore_lost && !fx_status_at(w, f, &w->node[f->proposer], false, &ao) &&
            !fx_status_at(w, f, &w->node[f->acceptor], false, &bo)) {
            st[FX_STAT_GONE]++; /* its FxProposal never left the copy: held by neither end */
            continue;
        }
        if (!fx_status_at(w, f, &w->node[f->proposer], true, &ao) ||
            !fx_status_at(w, f, &w->node[f->acceptor], true, &bo)) {
            return;
        }
        const char *want[2] = {NULL, NULL}; /* "" settled, else the reason of a refusal */
        switch (f->kind) {
        case FX_IN_BAND:
        case FX_REVIEW_ACCEPT:
            want[0] = "";
            break;
        case FX_OUT_BAND:
            want[0] = reason_code(REASON_FX_BAND);
            break;
        case FX_BAD_CCY:
            want[0] = reason_code(REASON_CURRENCY);
            break;
        case FX_REVIEW_REJECT:
            want[0] = "RR04";
            break;
        case FX_REVIEW_EXPIRE:
            want[0] = reason_code(REASON_EXPIRED);
            break;
        case FX_HOSTILE_RATE:
        case FX_KINDS:
            want[0] = reason_code(REASON_FORMAT);
            break;
        }
        if (f->expires_in > 0 && f->kind != FX_BAD_CCY) {
            want[1] = reason_code(REASON_EXPIRED);
        }
        bool ok = false;
        for (int i = 0; i < 2; i++) {
            if (want[i] != NULL) {
                ok |= want[i][0] == '\0'
                          ? bo.status == STATUS_SETTLED
                          : bo.status == STATUS_REJECTED && strcmp(bo.reason, want[i]) == 0;
            }
        }
        if (ao.status != bo.status || strcmp(ao.reason, bo.reason) != 0 || !ok) {
            fail(w, "%s trade %s from %s to %s: proposer %s %s, acceptor %s %s; expected %s%s%s",
                 FX_KIND_NAMES[f->kind], f->fx_id, w->node[f->proposer].name,
                 w->node[f->acceptor].name, status_name(ao.status), ao.reason,
                 status_name(bo.status), bo.reason, want[0][0] ? want[0] : "settled",
                 want[1] ? " | " : "", want[1] ? want[1] : "");
            return;
        }
        bool rejected = bo.status == STATUS_REJECTED;
        st[FX_STAT_ACCEPTED] += !rejected;
        st[FX_STAT_AG01] += rejected && strcmp(bo.reason, "AG01") == 0;
        st[FX_STAT_RR04] += rejected && strcmp(bo.reason, "RR04") == 0;
        st[FX_STAT_AB05] += rejected && strcmp(bo.reason, "AB05") == 0;
        st[FX_STAT_AM03] += rejected && strcmp(bo.reason, "AM03") == 0;
        st[FX_STAT_FF01] += rejected && strcmp(bo.reason, "FF01") == 0;
    }
    st[FX_STAT_REVIEWED] = w->fx_reviews;
    st[FX_STAT_FORGED] = w->fx_forged;
    for (int i = 0; i < w->n && !w->failed; i++) {
        node_t *n = &w->node[i];
        fx_walk_t *c = calloc(1, sizeof *c);
        if (c == NULL) {
            abort();
        }
        c->w = w;
        c->n = n;
        if (ledger_settlements(n->reader, fx_walk, c) != LEDGER_OK) {
            fail(w, "%s: cannot list settlements", n->name);
        }
        size_t want = 0;
        for (size_t k = 0; k < w->fxs_count; k++) {
            const fx_t *f = &w->fxs[k];
            ledger_outcome_t o;
            bool gone = f->restore_lost && !fx_status_at(w, f, n, false, &o);
            want += f->committed && !gone && (f->proposer == i || f->acceptor == i) ? 2 : 0;
        }
        if (!w->failed && c->legs != want) {
            fail(w, "%s holds %zu legs of trades, %zu were proposed with it", n->name, c->legs,
                 want);
        }
        int64_t total[CURRENCIES_COUNT] = {0}; /* its positions summed over its peers */
        for (size_t p = 0; p < n->config->peers_count && !w->failed; p++) {
            int j = n->peer_node[p];
            for (size_t ccy = 0; ccy < CURRENCIES_COUNT && !w->failed; ccy++) {
                int64_t net = 0, pending = 0;
                bool over_at = false, over_past = true;
                if (ledger_position(n->reader, w->node[j].name, CURRENCIES[ccy], &net, &pending) !=
                    LEDGER_OK) {
                    fail(w, "%s: cannot read its position with %s", n->name, w->node[j].name);
                    break;
                }
                c->net[j][ccy] += nets_moved(w, n, w->node[j].name, CURRENCIES[ccy]);
                total[ccy] += net;
                if (net != c->net[j][ccy]) {
                    fail(w,
                         "%s's position with %s in %s is %" PRId64
                         ", its settled records move %" PRId64,
                         n->name, w->node[j].name, CURRENCIES[ccy], net, c->net[j][ccy]);
                    break;
                }
                if (!accepts(n, CURRENCIES[ccy]) || net > CAP_MINOR) {
                    continue;
                }
                /* no reservation left: the cap we grant the peer takes exactly what is left */
                if (ledger_cap_exceeded(n->ledger, w->node[j].name, CURRENCIES[ccy],
                                        CAP_MINOR - net, CAP_MINOR, &over_at) != LEDGER_OK ||
                    ledger_cap_exceeded(n->ledger, w->node[j].name, CURRENCIES[ccy],
                                        CAP_MINOR - net + 1, CAP_MINOR, &over_past) != LEDGER_OK ||
                    over_at || !over_past) {
                    fail(w,
                         "%s: the cap it grants %s in %s is not whole once quiet (position %" PRId64
                         "): a reservation or a hold left",
                         n->name, w->node[j].name, CURRENCIES[ccy], net);
                }
            }
        }
        /* set-offs move debts round a ring and nothing else: each node's net position in each
         * currency, summed over its peers, is what its payments (and everything else but the
         * set-off legs) made it, and the set-off legs it holds settled sum to nothing */
        for (size_t ccy = 0; ccy < CURRENCIES_COUNT && !w->failed; ccy++) {
            int64_t legs = 0, others = 0;
            for (int j = 0; j < w->n; j++) {
                legs += c->so_net[j][ccy];
                others += c->net[j][ccy] - c->so_net[j][ccy];
            }
            if (legs != 0 || total[ccy] != others) {
                fail(w,
                     "%s's net position in %s over its peers is %" PRId64
                     ", its records but set-offs move %" PRId64
                     "; its settled set-off legs %" PRId64,
                     n->name, CURRENCIES[ccy], total[ccy], others, legs);
            }
        }
        free(c);
    }
}

/* ---- settlement cycles once quiet (PROTOCOL.md 3.11) ------------------------------------------
 */

/* Whether every close ran, no cycle is closing anywhere, no net settlement is pending or held,
 * and every net a node owes from a closed cycle is settled; `strict` reports what is not. */
static bool cycles_final(world_t *w, bool strict)
{
    if (!w->cycles) {
        return true;
    }
    for (size_t k = 0; k < w->cys_count; k++) {
        const cyc_t *c = &w->cys[k];
        if (!c->done || c->in_turn) {
            if (strict) {
                fail(w, "liveness: %s's cycle close with %s never ran", w->node[c->node].name,
                     w->node[c->peer].name);
            }
            return false;
        }
    }
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        if (!n->up) {
            if (strict) {
                fail(w, "liveness: %s is down", n->name);
            }
            return false;
        }
        for (size_t p = 0; p < n->config->peers_count; p++) {
            const char *peer = n->config->peers[p].card.name;
            cy_rows_t rows = {0};
            net_rows_t nets = {0};
            const char *what = NULL;
            char detail[160] = "";
            if (ledger_cycles(n->reader, peer, cy_collect, &rows) != LEDGER_OK ||
                ledger_nets(n->reader, peer, net_collect, &nets) != LEDGER_OK) {
                what = "cannot list its cycles";
            }
            for (size_t k = 0; k < rows.count && what == NULL; k++) {
                cycle_statement_t st;
                if (rows.v[k].state == CYCLE_CLOSING) {
                    what = "a cycle is still closing";
                    snprintf(detail, sizeof detail, " (cycle %" PRIu64 ")", rows.v[k].number);
                    break;
                }
                if (rows.v[k].state != CYCLE_CLOSED ||
                    !cycle_statement_decode(rows.v[k].statement, rows.v[k].statement_len, &st)) {
                    continue; /* check_cycles says what is wrong */
                }
                for (size_t c = 0; c < st.n_currencies && what == NULL; c++) {
                    int64_t paid, received, net;
                    bool settled = false;
                    cycle_currency_view(&st.currencies[c], cycle_self_first(n->name, peer), &paid,
                                        &received, &net);
                    if (net < 0 &&
                        (ledger_net_settled(n->reader, peer, st.cycle, st.currencies[c].currency,
                                            &settled) != LEDGER_OK ||
                         !settled)) {
                        what = "a closed cycle it owes for is not settled";
                        snprintf(detail, sizeof detail, " (cycle %" PRIu64 ", %s)", st.cycle,
                                 st.currencies[c].currency);
                    }
                }
            }
            for (size_t k = 0; k < nets.count && what == NULL; k++) {
                if (nets.v[k].status == STATUS_PENDING || nets.v[k].status == STATUS_HELD) {
                    what = "a net settlement is not decided";
                    snprintf(detail, sizeof detail, " (%s, %s)", nets.v[k].id,
                             status_name(nets.v[k].status));
                }
            }
            cy_rows_free(&rows);
            free(nets.v);
            if (what != NULL) {
                if (strict) {
                    fail(w, "liveness: %s with %s: %s%s %d s after faults stopped", n->name, peer,
                         what, detail, LIVENESS_MS / 1000);
                }
                return false;
            }
        }
    }
    return true;
}

/* Whether `sig` over `statement` verifies with a key node i signed with (its keys now, before
 * its last rotation, or as stolen); true too for a node that rotated twice (an older key). */
static bool cy_signed_by(const world_t *w, int i, const uint8_t *statement, size_t len,
                         const uint8_t *sig)
{
    const node_t *n = &w->node[i];
    const identity_t *keys[4] = {n->id, n->id_previous, w->stolen == i ? w->thief : NULL,
                                 w->stolen == i ? w->replacement : NULL};
    for (size_t k = 0; k < 4; k++) {
        if (keys[k] != NULL && cycle_verify(statement, len, sig, keys[k]->sign_public)) {
            return true;
        }
    }
    return n->rotations_done >= 2;
}

typedef struct {
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    int64_t paid, received;
    uint64_t count;
    uint8_t digest[DIGEST_BYTES];
} cy_fig_t;

typedef struct {
    cy_fig_t f[CURRENCIES_COUNT];
    size_t n;
    uint64_t entries;
    uint8_t digest[DIGEST_BYTES];
} cy_figs_t;

static cy_fig_t *cy_fig(cy_figs_t *figs, const char *currency)
{
    for (size_t i = 0; i < figs->n; i++) {
        if (strcmp(figs->f[i].currency, currency) == 0) {
            return &figs->f[i];
        }
    }
    if (figs->n == CURRENCIES_COUNT) {
        return NULL;
    }
    cy_fig_t *f = &figs->f[figs->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->currency, sizeof f->currency, "%s", currency);
    return f;
}

/* Whether figures equal a statement's from node `self`'s view (count 0 currencies left out). */
static bool cy_figs_equal(const cy_figs_t *figs, const cycle_statement_t *st, bool self_first,
                          bool digests, char *why, size_t why_len)
{
    size_t counted = 0;
    for (size_t i = 0; i < figs->n; i++) {
        const cy_fig_t *f = &figs->f[i];
        if (f->count == 0 && f->paid == 0 && f->received == 0) {
            continue;
        }
        counted++;
        const cycle_currency_t *c = NULL;
        for (size_t k = 0; k < st->n_currencies; k++) {
            c = strcmp(st->currencies[k].currency, f->currency) == 0 ? &st->currencies[k] : c;
        }
        int64_t paid = 0, received = 0, net = 0;
        if (c != NULL) {
            cycle_currency_view(c, self_first, &paid, &received, &net);
        }
        if (c == NULL || paid != f->paid || received != f->received || c->count != f->count) {
            snprintf(why, why_len,
                     "%s: the entries say paid %" PRId64 " received %" PRId64 " count %" PRIu64
                     ", the statement %s%" PRId64 " %" PRId64 " %" PRIu64,
                     f->currency, f->paid, f->received, f->count, c == NULL ? "(none) " : "", paid,
                     received, c != NULL ? c->count : 0);
            return false;
        }
    }
    if (counted != st->n_currencies || figs->entries != st->entry_count) {
        snprintf(why, why_len,
                 "%zu currencies and %" PRIu64 " entries, the statement %zu and %" PRIu64, counted,
                 figs->entries, st->n_currencies, st->entry_count);
        return false;
    }
    if (digests && memcmp(figs->digest, st->digest, DIGEST_BYTES) != 0) {
        snprintf(why, why_len, "the digest of the entries is not the statement's");
        return false;
    }
    return true;
}

/* Node n's cycles with `peer` (rows, closed, ascending) against its entries, by the rule of
 * PROTOCOL.md 3.11.1: an entry belongs to the first cycle whose cut holds its decider's message
 * (decided_seq on the payee's stream: ours when it is incoming; a set-off leg's on its debtor's,
 * settlement_decided_by_us); the figures of what no cut holds
 * are the running ones. And the sum: every final entry is in one cycle or the running figures. */
static void cy_recompute(world_t *w, node_t *n, const char *peer, const cy_rows_t *rows)
{
    size_t buckets = rows->count + 1; /* the last: the open cycle */
    cy_figs_t *want = calloc(buckets, sizeof *want);
    cy_figs_t all, stated;
    memset(&all, 0, sizeof all);
    memset(&stated, 0, sizeof stated);
    if (want == NULL) {
        abort();
    }
    bool returned = false;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT direction, amount_minor, currency, status, decided_seq,"
                           " returned_seq, fx_leg, canon_hash FROM settlements"
                           " WHERE peer = ?1 AND status IN (1, 2, 3)",
                           -1, &q, NULL) != SQLITE_OK) {
        fail(w, "%s: cannot read its settlements: %s", n->name, sqlite3_errmsg(n->db));
        free(want);
        return;
    }
    sqlite3_bind_text(q, 1, peer, -1, SQLITE_STATIC);
    while (sqlite3_step(q) == SQLITE_ROW && !w->failed) {
        bool in = sqlite3_column_int(q, 0) == DIRECTION_IN;
        int64_t amount = sqlite3_column_int64(q, 1);
        const char *ccy = (const char *)sqlite3_column_text(q, 2);
        int status = sqlite3_column_int(q, 3);
        uint64_t decided = (uint64_t)sqlite3_column_int64(q, 4);
        uint64_t ret = (uint64_t)sqlite3_column_int64(q, 5);
        fx_leg_t leg = fx_leg_of_column(sqlite3_column_int(q, 6));
        bool money_out = fx_leg_against(leg) ? in : !in;
        /* decided by our message: the payee's answer, or a set-off leg's debtor's decision */
        bool ours = settlement_decided_by_us(leg, in ? DIRECTION_IN : DIRECTION_OUT);
        const uint8_t *hash = sqlite3_column_blob(q, 7);
        if (sqlite3_column_bytes(q, 7) != DIGEST_BYTES || ccy == NULL) {
            fail(w, "%s: a damaged settlement row with %s", n->name, peer);
            break;
        }
        size_t k = 0, kr = 0;
        while (k < rows->count && (ours ? rows->v[k].own_sent : rows->v[k].peer_sent) < decided) {
            k++;
        }
        while (kr < rows->count && (in ? rows->v[kr].own_sent : rows->v[kr].peer_sent) < ret) {
            kr++;
        }
        cy_fig_t *f = cy_fig(&want[k], ccy), *a = cy_fig(&all, ccy);
        if (f == NULL || a == NULL) {
            fail(w, "%s: more currencies with %s than the world has", n->name, peer);
            break;
        }
        f->count++;
        a->count++;
        want[k].entries++;
        all.entries++;
        digest_add(want[k].digest, hash);
        digest_add(all.digest, hash);
        if (status == STATUS_SETTLED || status == STATUS_RETURNED) { /* settled when decided */
            *(money_out ? &f->paid : &f->received) += amount;
            *(money_out ? &a->paid : &a->received) += amount;
        }
        if (status == STATUS_RETURNED) { /* the money went back in the cycle of the return */
            returned = true;
            cy_fig_t *g = cy_fig(&want[kr], ccy);
            *(money_out ? &g->paid : &g->received) -= amount;
            *(money_out ? &a->paid : &a->received) -= amount;
        }
    }
    sqlite3_finalize(q);
    bool first = cycle_self_first(n->name, peer);
    char why[300];
    for (size_t k = 0; k < rows->count && !w->failed; k++) {
        cycle_statement_t st;
        if (!cycle_statement_decode(rows->v[k].statement, rows->v[k].statement_len, &st)) {
            fail(w, "%s: cycle %" PRIu64 " with %s: its statement does not decode", n->name,
                 rows->v[k].number, peer);
            break;
        }
        if (!cy_figs_equal(&want[k], &st, first, !returned, why, sizeof why)) {
            fail(w, "%s: cycle %" PRIu64 " with %s is not what its entries say (3.11.1): %s",
                 n->name, rows->v[k].number, peer, why);
            break;
        }
        for (size_t c = 0; c < st.n_currencies; c++) {
            int64_t paid, received, net;
            cycle_currency_view(&st.currencies[c], first, &paid, &received, &net);
            cy_fig_t *s = cy_fig(&stated, st.currencies[c].currency);
            s->paid += paid;
            s->received += received;
            s->count += st.currencies[c].count;
        }
        stated.entries += st.entry_count;
        digest_add(stated.digest, st.digest);
    }
    /* the running figures: what no cut holds yet */
    cy_figs_t running;
    memset(&running, 0, sizeof running);
    if (!w->failed && sqlite3_prepare_v2(n->db,
                                         "SELECT currency, paid, received, count, digest FROM"
                                         " cycle_running WHERE peer = ?1",
                                         -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, peer, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *ccy = (const char *)sqlite3_column_text(q, 0);
            cy_fig_t *f = ccy != NULL ? cy_fig(&running, ccy) : NULL;
            cy_fig_t *s = ccy != NULL ? cy_fig(&stated, ccy) : NULL;
            if (f == NULL || s == NULL || sqlite3_column_bytes(q, 4) != DIGEST_BYTES) {
                continue;
            }
            f->paid = sqlite3_column_int64(q, 1);
            f->received = sqlite3_column_int64(q, 2);
            f->count = (uint64_t)sqlite3_column_int64(q, 3);
            s->paid += f->paid;
            s->received += f->received;
            s->count += f->count;
            stated.entries += f->count;
            digest_add(stated.digest, sqlite3_column_blob(q, 4));
            digest_add(running.digest, sqlite3_column_blob(q, 4));
        }
        sqlite3_finalize(q);
    }
    for (size_t i = 0; i < want[rows->count].n && !w->failed; i++) {
        const cy_fig_t *f = &want[rows->count].f[i];
        cy_fig_t *r = cy_fig(&running, f->currency);
        if (r == NULL || r->paid != f->paid || r->received != f->received || r->count != f->count) {
            fail(w,
                 "%s: the running cycle figures with %s in %s are paid %" PRId64
                 " received %" PRId64 " count %" PRIu64
                 ", the entries above the last cut say %" PRId64 " %" PRId64 " %" PRIu64,
                 n->name, peer, f->currency, r ? r->paid : 0, r ? r->received : 0, r ? r->count : 0,
                 f->paid, f->received, f->count);
        }
    }
    for (size_t i = 0; i < all.n && !w->failed; i++) {
        const cy_fig_t *a = &all.f[i];
        cy_fig_t *s = cy_fig(&stated, a->currency);
        if (s == NULL || s->paid != a->paid || s->received != a->received || s->count != a->count) {
            fail(w,
                 "%s: its cycles with %s and the running figures hold paid %" PRId64
                 " received %" PRId64 " count %" PRIu64 " in %s, its final entries %" PRId64
                 " %" PRId64 " %" PRIu64,
                 n->name, peer, s ? s->paid : 0, s ? s->received : 0, s ? s->count : 0, a->currency,
                 a->paid, a->received, a->count);
        }
    }
    if (!w->failed &&
        (stated.entries != all.entries || memcmp(stated.digest, all.digest, DIGEST_BYTES) != 0)) {
        fail(w,
             "%s: its cycles with %s and the running figures hold %" PRIu64
             " entries (digest %s), its final entries are %" PRIu64,
             n->name, peer, stated.entries,
             memcmp(stated.digest, all.digest, DIGEST_BYTES) == 0 ? "equal" : "differs",
             all.entries);
    }
    free(want);
}

static bool cy_forged_id(const world_t *w, const char *id)
{
    for (size_t k = 0; k < w->cy_forged_count; k++) {
        if (strcmp(w->cy_forged[k], id) == 0) {
            return true;
        }
    }
    return false;
}

/* The settled net settlements of node n with `peer` in `currency`: what they moved its position
 * by (+m where it owed, -m where it was owed). */
static int64_t nets_moved(world_t *w, node_t *n, const char *peer, const char *currency)
{
    net_rows_t nets = {0};
    int64_t moved = 0;
    if (ledger_nets(n->reader, peer, net_collect, &nets) != LEDGER_OK) {
        fail(w, "%s: cannot list its net settlements with %s", n->name, peer);
    }
    for (size_t k = 0; k < nets.count; k++) {
        const ledger_net_t *v = &nets.v[k];
        if (v->status == STATUS_SETTLED && strcmp(v->currency, currency) == 0) {
            moved += v->we_owe ? v->amount_minor : -v->amount_minor;
        }
    }
    free(nets.v);
    return moved;
}

/* Once quiet, for every channel: both ends hold the same cycles, each closed with one statement
 * and two signatures that verify, at one cut (none disputed: nobody edited a ledger); each
 * statement is what the entries say (cy_recompute); the same net settlements at both ends with
 * one status, amount, cycle and currency, each of a cycle's net, and none pending or held; the
 * hostile ones recorded refused by their creditor alone. (Positions mirror: check_books.) */
static void check_cycles(world_t *w)
{
    uint64_t *st = w->cy_stats;
    for (int i = 0; i < w->n && !w->failed; i++) {
        for (int j = i + 1; j < w->n && !w->failed; j++) {
            if (!w->channel[i][j]) {
                continue;
            }
            node_t *a = &w->node[i], *b = &w->node[j];
            cy_rows_t ra = {0}, rb = {0};
            net_rows_t na = {0}, nb = {0};
            if (ledger_cycles(a->reader, b->name, cy_collect, &ra) != LEDGER_OK ||
                ledger_cycles(b->reader, a->name, cy_collect, &rb) != LEDGER_OK ||
                ledger_nets(a->reader, b->name, net_collect, &na) != LEDGER_OK ||
                ledger_nets(b->reader, a->name, net_collect, &nb) != LEDGER_OK) {
                fail(w, "cannot list the cycles of %s-%s", a->name, b->name);
            }
            if (!w->failed && ra.count != rb.count) {
                fail(w, "%s holds %zu cycles with %s, %s holds %zu", a->name, ra.count, b->name,
                     b->name, rb.count);
            }
            for (size_t k = 0; k < ra.count && !w->failed; k++) {
                const cy_row_t *x = &ra.v[k], *y = &rb.v[k];
                cycle_statement_t s;
                if (x->number != k + 1 || y->number != k + 1) {
                    fail(w, "%s-%s: cycle %zu is %" PRIu64 " at %s, %" PRIu64 " at %s", a->name,
                         b->name, k + 1, x->number, a->name, y->number, b->name);
                } else if (x->state != CYCLE_CLOSED || y->state != CYCLE_CLOSED) {
                    fail(w, "%s-%s: cycle %" PRIu64 " is %s at %s, %s at %s (no insider edit)",
                         a->name, b->name, x->number, cycle_state_name(x->state), a->name,
                         cycle_state_name(y->state), b->name);
                } else if (x->statement_len != y->statement_len ||
                           memcmp(x->statement, y->statement, x->statement_len) != 0 ||
                           !cycle_statement_decode(x->statement, x->statement_len, &s) ||
                           s.cycle != x->number) {
                    fail(w, "%s-%s: cycle %" PRIu64 ": the statements differ", a->name, b->name,
                         x->number);
                } else if (x->own_sent != y->peer_sent || x->peer_sent != y->own_sent ||
                           x->ours == y->ours) {
                    fail(w, "%s-%s: cycle %" PRIu64 ": the cut or the proposer differ", a->name,
                         b->name, x->number);
                } else if (!x->has_peer_signature || !y->has_peer_signature ||
                           memcmp(x->peer_signature, y->own_signature, crypto_sign_BYTES) != 0 ||
                           memcmp(y->peer_signature, x->own_signature, crypto_sign_BYTES) != 0 ||
                           !cy_signed_by(w, i, x->statement, x->statement_len, x->own_signature) ||
                           !cy_signed_by(w, j, y->statement, y->statement_len, y->own_signature)) {
                    fail(w, "%s-%s: cycle %" PRIu64 ": the two signatures do not verify", a->name,
                         b->name, x->number);
                }
                st[CY_STAT_CLOSED]++;
            }
            if (!w->failed) {
                cy_recompute(w, a, b->name, &ra);
            }
            if (!w->failed) {
                cy_recompute(w, b, a->name, &rb);
            }
            for (int side = 0; side < 2 && !w->failed; side++) {
                net_rows_t *mine = side == 0 ? &na : &nb, *theirs = side == 0 ? &nb : &na;
                node_t *me = side == 0 ? a : b;
                int other = side == 0 ? j : i;
                for (size_t k = 0; k < mine->count && !w->failed; k++) {
                    const ledger_net_t *v = &mine->v[k], *u = NULL;
                    for (size_t m = 0; m < theirs->count; m++) {
                        u = strcmp(theirs->v[m].id, v->id) == 0 ? &theirs->v[m] : u;
                    }
                    if (u == NULL) {
                        bool hostile = other == w->attacker && !v->we_owe && cy_forged_id(w, v->id);
                        if (!hostile || v->status != STATUS_REJECTED ||
                            (strcmp(v->reason, "AM09") != 0 && strcmp(v->reason, "AG01") != 0)) {
                            fail(w, "%s holds net settlement %s with %s (%s %s), %s does not",
                                 me->name, v->id, w->node[other].name, status_name(v->status),
                                 v->reason, w->node[other].name);
                        }
                        st[CY_STAT_REFUSED]++;
                        continue;
                    }
                    if (side == 1) {
                        continue; /* compared once */
                    }
                    if (u->status != v->status || strcmp(u->reason, v->reason) != 0 ||
                        u->amount_minor != v->amount_minor || u->cycle != v->cycle ||
                        strcmp(u->currency, v->currency) != 0 || u->we_owe == v->we_owe ||
                        v->status == STATUS_PENDING || v->status == STATUS_HELD) {
                        fail(w,
                             "net settlement %s of cycle %" PRIu64 ": %s holds %s %s %" PRId64
                             " %s, %s holds %s %s %" PRId64 " %s",
                             v->id, v->cycle, a->name, status_name(v->status), v->reason,
                             v->amount_minor, v->currency, b->name, status_name(u->status),
                             u->reason, u->amount_minor, u->currency);
                        break;
                    }
                    st[CY_STAT_SETTLED] += v->status == STATUS_SETTLED;
                    /* of the cycle's net, from its debtor's statement */
                    const ledger_net_t *debt = v->we_owe ? v : u;
                    const cy_rows_t *rows = v->we_owe ? &ra : &rb;
                    const char *debtor = v->we_owe ? a->name : b->name;
                    const char *creditor = v->we_owe ? b->name : a->name;
                    cycle_statement_t s;
                    int64_t owed = 0;
                    if (debt->cycle >= 1 && debt->cycle <= rows->count &&
                        cycle_statement_decode(rows->v[debt->cycle - 1].statement,
                                               rows->v[debt->cycle - 1].statement_len, &s)) {
                        for (size_t c = 0; c < s.n_currencies; c++) {
                            int64_t paid, received, net;
                            cycle_currency_view(&s.currencies[c],
                                                cycle_self_first(debtor, creditor), &paid,
                                                &received, &net);
                            owed =
                                strcmp(s.currencies[c].currency, debt->currency) == 0 ? -net : owed;
                        }
                    }
                    if (owed != debt->amount_minor) {
                        fail(w,
                             "net settlement %s: %" PRId64 " %s, %s owes %" PRId64
                             " in cycle %" PRIu64,
                             debt->id, debt->amount_minor, debt->currency, debtor, owed,
                             debt->cycle);
                    }
                }
            }
            for (size_t k = 0; k < ra.count && !w->failed; k++) {
                cycle_statement_t s;
                bool all = cycle_statement_decode(ra.v[k].statement, ra.v[k].statement_len, &s);
                for (size_t c = 0; c < s.n_currencies && all; c++) {
                    bool settled = false;
                    all = s.currencies[c].net_first == 0 ||
                          (ledger_net_settled(a->reader, b->name, s.cycle, s.currencies[c].currency,
                                              &settled) == LEDGER_OK &&
                           settled);
                }
                st[CY_STAT_SETTLED_CYCLES] += all;
            }
            cy_rows_free(&ra);
            cy_rows_free(&rb);
            free(na.v);
            free(nb.v);
        }
    }
}

/* ---- set-offs once quiet (PROTOCOL.md 3.12) ---------------------------------------------------
 */

/* One set-off leg as a node holds it. */
typedef struct {
    int peer;
    char id[CORRIDOR_UETR_LEN + 1];
    direction_t direction;
    int64_t amount;
    char currency[CORRIDOR_CURRENCY_LEN + 1];
    status_t status;
    char reason[CORRIDOR_REASON_LEN_MAX + 1];
    uint8_t hash[32];
} so_leg_t;

typedef struct {
    world_t *w;
    so_leg_t *v;
    size_t count, cap;
} so_legs_t;

static void so_leg_collect(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    so_legs_t *c = arg;
    if (!settlement_is_setoff_leg(s)) {
        return;
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        if (c->v == NULL) {
            abort();
        }
    }
    so_leg_t *l = &c->v[c->count++];
    memset(l, 0, sizeof *l);
    l->peer = node_by_name(c->w, s->peer);
    snprintf(l->id, sizeof l->id, "%s", s->fx_id);
    l->direction = s->direction;
    l->amount = s->amount_minor;
    snprintf(l->currency, sizeof l->currency, "%s", s->currency);
    l->status = o->status;
    snprintf(l->reason, sizeof l->reason, "%s", o->reason);
    memcpy(l->hash, s->original_hash, sizeof l->hash);
}

/* Node n's set-off legs (c->v malloc'd; the caller frees it); false when they cannot be read. */
static bool so_legs_of(world_t *w, node_t *n, so_legs_t *c)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    if (ledger_settlements(n->reader, so_leg_collect, c) != LEDGER_OK) {
        fail(w, "%s: cannot list settlements", n->name);
        return false;
    }
    return true;
}

static const so_leg_t *so_leg_find(const so_legs_t *c, int peer, const char *id)
{
    for (size_t i = 0; i < c->count; i++) {
        if (c->v[i].peer == peer && strcmp(c->v[i].id, id) == 0) {
            return &c->v[i];
        }
    }
    return NULL;
}

/* Whether every set-off was proposed (or refused by its proposer's books), every member holds
 * the decision of each one proposed, and no node holds a set-off leg pending; `strict` reports
 * what is not. */
static bool setoffs_final(world_t *w, bool strict)
{
    if (!w->setoffs) {
        return true;
    }
    for (size_t q = 0; q < w->sos_count && !w->failed; q++) {
        const so_t *so = &w->sos[q];
        if (!so->done || so->in_turn) {
            if (strict) {
                fail(w, "liveness: the %s set-off %s's operator runs was never proposed",
                     SO_KIND_NAMES[so->kind], w->node[so->ring[0]].name);
            }
            return false;
        }
        for (size_t p = 0; so->committed && p < so->k; p++) {
            node_t *m = &w->node[so->ring[p]];
            ledger_setoff_t rec;
            bool found = false;
            if (!m->up || ledger_setoff_get(m->reader, so->id, &rec, &found) != LEDGER_OK) {
                if (strict) {
                    fail(w, "liveness: set-off %s: %s is down or its record unreadable", so->id,
                         m->name);
                }
                return false;
            }
            setoff_state_t state = found ? rec.state : SETOFF_VOTING;
            if (found) {
                ledger_setoff_release(&rec);
            }
            if (state != SETOFF_COMMITTED && state != SETOFF_ABORTED) {
                if (strict) {
                    fail(w,
                         "liveness: %s set-off %s proposed by %s not decided at %s (%s) %d s "
                         "after faults stopped",
                         SO_KIND_NAMES[so->kind], so->id, w->node[so->ring[0]].name, m->name,
                         found ? setoff_state_name(state) : "no record", LIVENESS_MS / 1000);
                }
                return false;
            }
        }
    }
    for (int i = 0; i < w->n && !w->failed; i++) {
        so_legs_t c;
        if (!w->node[i].up || !so_legs_of(w, &w->node[i], &c)) {
            return false;
        }
        bool pending = false;
        for (size_t k = 0; k < c.count && !pending; k++) {
            if (c.v[k].status != STATUS_SETTLED && c.v[k].status != STATUS_REJECTED) {
                pending = true;
                if (strict) {
                    fail(w, "liveness: %s holds its leg of set-off %s with %s %s", w->node[i].name,
                         c.v[k].id, c.v[k].peer >= 0 ? w->node[c.v[k].peer].name : "?",
                         status_name(c.v[k].status));
                }
            }
        }
        free(c.v);
        if (pending) {
            return false;
        }
    }
    return true;
}

/* Once quiet: every leg a node holds is one of a set-off proposed round a ring it is on, with its
 * successor (out) or its predecessor (in); each set-off decided alike at every member (never
 * committed at one and aborted at another, with one reason); every edge's two records both there
 * or neither (all of them for a commit), of the terms' amount and currency, settled for a commit
 * and rejected with the abort's reason for an abort, and naming the same terms (H13). That the
 * set-offs leave each node's net position per currency as its payments made it is check_fx's
 * (so_net). */
static void check_setoffs(world_t *w)
{
    if (!w->setoffs) {
        return;
    }
    uint64_t *st = w->so_stats;
    so_legs_t legs[NODES_MAX];
    memset(legs, 0, sizeof legs);
    for (int i = 0; i < w->n && !w->failed; i++) {
        so_legs_of(w, &w->node[i], &legs[i]);
    }
    for (int i = 0; i < w->n && !w->failed; i++) {
        for (size_t k = 0; k < legs[i].count && !w->failed; k++) {
            const so_leg_t *l = &legs[i].v[k];
            bool known = false;
            for (size_t q = 0; q < w->sos_count && !known; q++) {
                const so_t *so = &w->sos[q];
                if (!so->committed || strcmp(so->id, l->id) != 0) {
                    continue;
                }
                for (size_t p = 0; p < so->k; p++) {
                    int want = l->direction == DIRECTION_OUT ? so->ring[(p + 1) % so->k]
                                                             : so->ring[(p + so->k - 1) % so->k];
                    known |= so->ring[p] == i && l->peer == want;
                }
            }
            if (!known) {
                fail(w, "%s holds a leg %s with %s of set-off %s that no ring of it proposed",
                     w->node[i].name, l->direction == DIRECTION_OUT ? "out" : "in",
                     l->peer >= 0 ? w->node[l->peer].name : "?", l->id);
            }
        }
    }
    for (size_t q = 0; q < w->sos_count && !w->failed; q++) {
        const so_t *so = &w->sos[q];
        if (!so->committed) {
            continue;
        }
        setoff_state_t state[NODES_MAX] = {SETOFF_VOTING};
        char reason[NODES_MAX][CORRIDOR_REASON_LEN_MAX + 1];
        for (size_t p = 0; p < so->k; p++) {
            ledger_setoff_t rec;
            bool found = false;
            state[p] = SETOFF_VOTING;
            reason[p][0] = '\0';
            if (ledger_setoff_get(w->node[so->ring[p]].reader, so->id, &rec, &found) == LEDGER_OK &&
                found) {
                state[p] = rec.state;
                snprintf(reason[p], sizeof reason[p], "%s", rec.reason);
                ledger_setoff_release(&rec);
            }
        }
        for (size_t p = 1; p < so->k; p++) {
            if (state[p] != state[0] || strcmp(reason[p], reason[0]) != 0) {
                fail(w, "set-off %s (%s, by %s): %s at %s, %s %s at %s", so->id,
                     SO_KIND_NAMES[so->kind], w->node[so->ring[0]].name,
                     setoff_state_name(state[0]), w->node[so->ring[0]].name,
                     setoff_state_name(state[p]), reason[p], w->node[so->ring[p]].name);
                break;
            }
        }
        bool commit = state[0] == SETOFF_COMMITTED;
        static const char *const aborts[] = {"AM04", "AB05", "NARR", "AM03", "DUPL"};
        bool known_reason = commit && reason[0][0] == '\0';
        for (size_t a = 0; a < sizeof aborts / sizeof aborts[0]; a++) {
            known_reason |= !commit && strcmp(reason[0], aborts[a]) == 0;
        }
        if (!w->failed && !known_reason) {
            fail(w, "set-off %s ended %s with reason '%s'", so->id, setoff_state_name(state[0]),
                 reason[0]);
        }
        for (size_t p = 0; p < so->k && !w->failed; p++) {
            int a = so->ring[p], b = so->ring[(p + 1) % so->k];
            const so_leg_t *la = so_leg_find(&legs[a], b, so->id);
            const so_leg_t *lb = so_leg_find(&legs[b], a, so->id);
            if ((la == NULL) != (lb == NULL) || (commit && la == NULL)) {
                fail(w, "set-off %s %s: the edge %s owes %s: %s holds %s leg, %s %s", so->id,
                     setoff_state_name(state[0]), w->node[a].name, w->node[b].name, w->node[a].name,
                     la != NULL ? "its" : "no", w->node[b].name, lb != NULL ? "its" : "none");
                break;
            }
            if (la == NULL) {
                continue;
            }
            status_t want = commit ? STATUS_SETTLED : STATUS_REJECTED;
            if (la->direction != DIRECTION_OUT || lb->direction != DIRECTION_IN ||
                la->amount != so->amount || lb->amount != so->amount ||
                strcmp(la->currency, "RUB") != 0 || strcmp(lb->currency, "RUB") != 0 ||
                la->status != want || lb->status != want || strcmp(la->reason, reason[0]) != 0 ||
                strcmp(lb->reason, reason[0]) != 0 || memcmp(la->hash, lb->hash, 32) != 0) {
                fail(w,
                     "set-off %s %s %s of %" PRId64 " RUB: the edge %s owes %s: %s holds %s "
                     "%" PRId64 " %s %s %s, %s holds %s %" PRId64 " %s %s %s%s",
                     so->id, setoff_state_name(state[0]), reason[0], so->amount, w->node[a].name,
                     w->node[b].name, w->node[a].name,
                     la->direction == DIRECTION_OUT ? "out" : "in", la->amount, la->currency,
                     status_name(la->status), la->reason, w->node[b].name,
                     lb->direction == DIRECTION_OUT ? "out" : "in", lb->amount, lb->currency,
                     status_name(lb->status), lb->reason,
                     memcmp(la->hash, lb->hash, 32) != 0 ? " (other terms)" : "");
                break;
            }
            st[SO_STAT_LEGS] += 2;
        }
        st[SO_STAT_COMMITTED] += commit;
        st[SO_STAT_AM04] += !commit && strcmp(reason[0], "AM04") == 0;
        st[SO_STAT_AB05] += !commit && strcmp(reason[0], "AB05") == 0;
        st[SO_STAT_OTHER] +=
            !commit && strcmp(reason[0], "AM04") != 0 && strcmp(reason[0], "AB05") != 0;
        st[SO_STAT_CRASHED] += so->crashed;
        st[SO_STAT_CONCURRENT] += so->concurrent;
        trace(w, "set-off %s (%s, %zu members, by %s, %" PRId64 " RUB): %s %s%s", so->id,
              SO_KIND_NAMES[so->kind], so->k, w->node[so->ring[0]].name, so->amount,
              setoff_state_name(state[0]), reason[0], so->crashed ? " (a crash during)" : "");
    }
    for (int i = 0; i < w->n; i++) {
        free(legs[i].v);
    }
}

static bool returns_final(world_t *w, bool strict);

/* Whether no channel is DIVERGED (its operator's repair, operator_repairs, still to come: the
 * compromised node's rollback Hellos diverge a channel late in some worlds, and a KeySwitch that
 * reached it is applied only after the repair); `strict` reports one that is. */
static bool channels_whole(world_t *w, bool strict)
{
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        for (size_t p = 0; n->up && p < n->config->peers_count; p++) {
            if (channel_is_diverged(engine_channel(n->engine, p))) {
                if (strict) {
                    fail(w, "liveness: %s's channel with %s is still DIVERGED", n->name,
                         n->config->peers[p].card.name);
                }
                return false;
            }
        }
    }
    return true;
}

/* Whether every item is final at both ends, as expected; `strict` reports what is not. */
static bool books_final(world_t *w, bool strict)
{
    if (!channels_whole(w, strict)) {
        return false;
    }
    if (!returns_final(w, strict)) {
        return false;
    }
    if (!fx_final(w, strict)) {
        return false;
    }
    if (!cycles_final(w, strict)) {
        return false;
    }
    if (!setoffs_final(w, strict)) {
        return false;
    }
    for (size_t k = 0; k < w->items_count; k++) {
        const item_t *it = &w->items[k];
        if (it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER) {
            if (!it->done && strict) {
                fail(w, "item %zu (%s of %s) was never submitted", k, ITEM_KIND_NAMES[it->kind],
                     it->uetr);
            }
            if (!it->done) {
                return false;
            }
            continue;
        }
        node_t *payer = &w->node[it->payer], *payee = &w->node[it->payee];
        if (!it->done || !payer->up || !payee->up) {
            if (strict) {
                fail(w, "liveness: %s %s from %s to %s not submitted or a node is down",
                     ITEM_KIND_NAMES[it->kind], it->uetr, payer->name, payee->name);
            }
            return false;
        }
        settlement_t s;
        ledger_outcome_t po, qo;
        ledger_err_t prc = ledger_find(payer->reader, payee->name, it->uetr, &s, &po);
        ledger_err_t qrc = ledger_find(payee->reader, payer->name, it->uetr, &s, &qo);
        /* a CancelRequest not answered yet (the payment decided meanwhile) is pending too */
        if (prc != LEDGER_OK || qrc != LEDGER_OK || po.status == STATUS_PENDING ||
            qo.status == STATUS_PENDING || qo.status == STATUS_HELD ||
            (po.cancel_id[0] != '\0' && !qo.cancelled)) {
            if (strict) {
                fail(w,
                     "liveness: %s %s from %s to %s not final at both ends %d s after faults "
                     "stopped: payer %s%s, payee %s",
                     ITEM_KIND_NAMES[it->kind], it->uetr, payer->name, payee->name,
                     LIVENESS_MS / 1000,
                     prc == LEDGER_OK ? status_name(po.status) : ledger_strerror(prc),
                     prc == LEDGER_OK && po.cancel_id[0]
                         ? " (asked back: no answer yet, or cancelled where the payee did not)"
                         : "",
                     qrc == LEDGER_OK ? status_name(qo.status) : ledger_strerror(qrc));
            }
            return false;
        }
        if (!strict) {
            continue;
        }
        /* the same status and reason at both ends, one the model allows; cancelled at both
         * ends or neither, and only by a CancelRequest its payer's operator sent */
        char allowed[6][24], got[24], expected[6 * 24 + 8] = "";
        size_t count = outcomes_allowed(w, it, allowed);
        snprintf(got, sizeof got, "%s %s", status_name(qo.status), qo.reason);
        bool ok = false;
        for (size_t a = 0; a < count; a++) {
            ok |= strcmp(got, allowed[a]) == 0;
            strcat(expected, a > 0 ? " | " : "");
            strcat(expected, allowed[a]);
        }
        bool cancel_ok = po.cancelled == qo.cancelled &&
                         (!qo.cancelled || (it->cancel_sent && qo.status == STATUS_REJECTED &&
                                            strcmp(qo.reason, it->cancel_reason) == 0));
        if (po.status != qo.status || strcmp(po.reason, qo.reason) != 0 || !ok || !cancel_ok) {
            fail(w, "%s %s from %s to %s: payer %s %s%s, payee %s %s%s; expected %s%s",
                 ITEM_KIND_NAMES[it->kind], it->uetr, payer->name, payee->name,
                 status_name(po.status), po.reason, po.cancelled ? " (cancelled)" : "",
                 status_name(qo.status), qo.reason, qo.cancelled ? " (cancelled)" : "", expected,
                 it->cancel_sent ? " (asked back)" : "");
        }
    }
    return true;
}

typedef struct {
    world_t *w;
    node_t *n;
    size_t rows;
} count_ctx_t;

static int item_by_uetr(const world_t *w, const char *uetr, int payer, int payee)
{
    for (size_t k = 0; k < w->items_count; k++) {
        const item_t *it = &w->items[k];
        if (it->kind != ITEM_DUP_SAME && it->kind != ITEM_DUP_OTHER && it->payer == payer &&
            it->payee == payee && strcmp(it->uetr, uetr) == 0) {
            return (int)k;
        }
    }
    return -1;
}

static void count_settlement(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    count_ctx_t *c = arg;
    (void)o;
    if (settlement_is_return(s) || settlement_is_fx_leg(s)) {
        return; /* a return record (PROTOCOL.md 3.9): check_returns; a trade's leg: check_fx */
    }
    c->rows++;
    int other = -1;
    for (int i = 0; i < c->w->n; i++) {
        if (strcmp(c->w->node[i].name, s->peer) == 0) {
            other = i;
        }
    }
    bool out = s->direction == DIRECTION_OUT;
    if (other < 0 ||
        item_by_uetr(c->w, s->uetr, out ? c->n->idx : other, out ? other : c->n->idx) < 0) {
        fail(c->w, "%s holds settlement %s with %s that nobody submitted", c->n->name, s->uetr,
             s->peer);
    }
}

static void check_books(world_t *w)
{
    /* each UETR once per side: as many rows as items each node pays or is paid */
    for (int i = 0; i < w->n && !w->failed; i++) {
        node_t *n = &w->node[i];
        size_t want = 0;
        for (size_t k = 0; k < w->items_count; k++) {
            const item_t *it = &w->items[k];
            if (it->kind != ITEM_DUP_SAME && it->kind != ITEM_DUP_OTHER &&
                (it->payer == i || it->payee == i)) {
                want++;
            }
        }
        count_ctx_t c = {w, n, 0};
        if (ledger_settlements(n->reader, count_settlement, &c) != LEDGER_OK) {
            fail(w, "%s: cannot list settlements", n->name);
        } else if (c.rows != want) {
            fail(w, "%s holds %zu settlements, %zu were made with it", n->name, c.rows, want);
        }
    }
    /* mirrors: each pair's positions are opposite, nothing pending */
    for (int i = 0; i < w->n && !w->failed; i++) {
        for (int j = i + 1; j < w->n; j++) {
            if (!w->channel[i][j]) {
                continue;
            }
            for (size_t c = 0; c < CURRENCIES_COUNT; c++) {
                int64_t a_net = 0, a_pend = 0, b_net = 0, b_pend = 0;
                if (ledger_position(w->node[i].reader, w->node[j].name, CURRENCIES[c], &a_net,
                                    &a_pend) != LEDGER_OK ||
                    ledger_position(w->node[j].reader, w->node[i].name, CURRENCIES[c], &b_net,
                                    &b_pend) != LEDGER_OK) {
                    fail(w, "cannot read positions of %s-%s", w->node[i].name, w->node[j].name);
                    continue;
                }
                if (a_net != -b_net || a_pend != 0 || b_pend != 0) {
                    fail(w,
                         "I2: %s's position with %s in %s is %" PRId64 " (pending %" PRId64
                         "), %s's is %" PRId64 " (pending %" PRId64 ")",
                         w->node[i].name, w->node[j].name, CURRENCIES[c], a_net, a_pend,
                         w->node[j].name, b_net, b_pend);
                }
            }
        }
    }
}

/* Whether every return was made (or given up) and every return booked is final at both ends. */
static bool returns_final(world_t *w, bool strict)
{
    for (size_t k = 0; k < w->rets_count; k++) {
        const ret_t *rt = &w->rets[k];
        if (!rt->done || rt->in_turn) {
            if (strict) {
                fail(w, "liveness: the return of %s by %s was never made", w->items[rt->item].uetr,
                     w->node[rt->returner].name);
            }
            return false;
        }
        if (!rt->committed || rt->id[0] == '\0') {
            continue;
        }
        node_t *x = &w->node[rt->returner], *y = &w->node[rt->payer];
        settlement_t s;
        ledger_outcome_t xo, yo;
        ledger_err_t xrc =
            x->up ? ledger_find(x->reader, y->name, rt->id, &s, &xo) : LEDGER_E_STATE;
        ledger_err_t yrc =
            y->up ? ledger_find(y->reader, x->name, rt->id, &s, &yo) : LEDGER_E_STATE;
        if (rt->restore_lost && xrc == LEDGER_E_NOT_FOUND && yrc == LEDGER_E_NOT_FOUND) {
            continue; /* lost with the restore before its Return left: it never happened */
        }
        if (!x->up || !y->up || xrc != LEDGER_OK || yrc != LEDGER_OK ||
            xo.status == STATUS_PENDING || yo.status == STATUS_PENDING) {
            if (strict) {
                fail(w,
                     "liveness: return %s of %s from %s to %s not final at both ends: returner "
                     "%s, payer %s",
                     rt->id, w->items[rt->item].uetr, x->name, y->name,
                     xrc == LEDGER_OK ? status_name(xo.status) : ledger_strerror(xrc),
                     yrc == LEDGER_OK ? status_name(yo.status) : ledger_strerror(yrc));
            }
            return false;
        }
    }
    return true;
}

/* One return record as a node's books hold it. */
typedef struct {
    int node;
    settlement_t s;
    ledger_outcome_t o;
} ret_row_t;

typedef struct {
    world_t *w;
    int node;
    ret_row_t *v;
    size_t count, cap;
} ret_rows_t;

static void collect_return(const settlement_t *s, const ledger_outcome_t *o, void *arg)
{
    ret_rows_t *c = arg;
    if (!settlement_is_return(s)) {
        return;
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        if ((c->v = realloc(c->v, c->cap * sizeof *c->v)) == NULL) {
            abort();
        }
    }
    c->v[c->count++] = (ret_row_t){c->node, *s, *o};
}

static const ret_row_t *ret_row_find(const ret_rows_t *c, int node, const char *peer,
                                     const char *id)
{
    for (size_t i = 0; i < c->count; i++) {
        if (c->v[i].node == node && strcmp(c->v[i].s.peer, peer) == 0 &&
            strcmp(c->v[i].s.uetr, id) == 0) {
            return &c->v[i];
        }
    }
    return NULL;
}

static const ret_t *ret_by_id(const world_t *w, int returner, const char *id)
{
    for (size_t k = 0; k < w->rets_count; k++) {
        if (w->rets[k].returner == returner && w->rets[k].committed &&
            strcmp(w->rets[k].id, id) == 0) {
            return &w->rets[k];
        }
    }
    return NULL;
}

/* Whether an honest return was made from books that lost another return of its payment: its
 * returner, restored from a copy without that one, made it after the restore, before the
 * repair brought the lost one back, so that together they may exceed the payment; the payer
 * refuses it AM09 (3.9), as it must. */
static bool stale_books(const world_t *w, const ret_t *rt)
{
    for (size_t k = 0; k < w->rets_count && rt->after_restore; k++) {
        if (w->rets[k].item == rt->item && w->rets[k].returner == rt->returner &&
            w->rets[k].restore_lost) {
            return true;
        }
    }
    return false;
}

/* Once quiet, the returns (PROTOCOL.md 3.9): each return id once per node and channel; the
 * returner and the payer hold the same returns (amount, original, reason, status); each one
 * booked is one the workload made (an honest one accepted, a hostile one refused NOOR or AM09);
 * per original payment the accepted returns stay within its amount at both ends and are what
 * its returned_minor says, and nothing is pending. The counts of the summary. */
static void check_returns(world_t *w)
{
    ret_rows_t c = {w, 0, NULL, 0, 0};
    for (int i = 0; i < w->n; i++) {
        c.node = i;
        if (ledger_settlements(w->node[i].reader, collect_return, &c) != LEDGER_OK) {
            fail(w, "%s: cannot list settlements", w->node[i].name);
        }
    }
    uint64_t *st = w->ret_stats;
    for (size_t i = 0; i < c.count && !w->failed; i++) {
        const ret_row_t *a = &c.v[i];
        const node_t *n = &w->node[a->node];
        int other = node_by_name(w, a->s.peer);
        for (size_t j = i + 1; j < c.count; j++) {
            if (c.v[j].node == a->node && strcmp(c.v[j].s.peer, a->s.peer) == 0 &&
                strcmp(c.v[j].s.uetr, a->s.uetr) == 0) {
                fail(w, "%s holds return %s with %s twice", n->name, a->s.uetr, a->s.peer);
            }
        }
        const ret_row_t *b = other >= 0 ? ret_row_find(&c, other, n->name, a->s.uetr) : NULL;
        if (b == NULL || b->s.direction == a->s.direction ||
            b->s.amount_minor != a->s.amount_minor || b->o.status != a->o.status ||
            strcmp(b->o.reason, a->o.reason) != 0 ||
            strcmp(b->s.original_uetr, a->s.original_uetr) != 0 ||
            strcmp(b->s.return_reason, a->s.return_reason) != 0 ||
            strcmp(b->s.currency, a->s.currency) != 0) {
            char theirs[160] = "not at all";
            if (b != NULL) {
                snprintf(theirs, sizeof theirs, "%s %" PRId64 " %s of %s %s %s",
                         direction_name(b->s.direction), b->s.amount_minor, b->s.currency,
                         b->s.original_uetr, status_name(b->o.status), b->o.reason);
            }
            fail(w, "return %s: %s holds it %s %" PRId64 " %s of %s %s %s, %s %s", a->s.uetr,
                 n->name, direction_name(a->s.direction), a->s.amount_minor, a->s.currency,
                 a->s.original_uetr, status_name(a->o.status), a->o.reason, a->s.peer, theirs);
            break;
        }
        if (a->s.direction != DIRECTION_OUT) {
            continue;
        }
        const ret_t *rt = ret_by_id(w, a->node, a->s.uetr);
        if (rt == NULL) {
            fail(w, "%s holds return %s to %s that nobody made", n->name, a->s.uetr, a->s.peer);
            break;
        }
        bool noor = strcmp(a->o.reason, reason_code(REASON_NO_ORIGINAL)) == 0;
        bool am09 = strcmp(a->o.reason, reason_code(REASON_RETURN_EXCEEDS)) == 0;
        bool ok = rt->kind == RET_HOSTILE
                      ? a->o.status == STATUS_REJECTED && (noor || am09)
                      : (a->o.status == STATUS_SETTLED ||
                         (a->o.status == STATUS_REJECTED && am09 && stale_books(w, rt))) &&
                            strcmp(a->s.original_uetr, w->items[rt->item].uetr) == 0;
        if (!ok || a->s.amount_minor != rt->amount) {
            fail(w, "%s return %s of %s by %s to %s of %" PRId64 ": %s %s",
                 rt->kind == RET_HOSTILE ? "hostile" : "honest", a->s.uetr, a->s.original_uetr,
                 n->name, a->s.peer, a->s.amount_minor, status_name(a->o.status), a->o.reason);
            break;
        }
        st[RET_STAT_SENT]++;
        st[RET_STAT_STALE] += rt->kind != RET_HOSTILE && a->o.status != STATUS_SETTLED;
        st[a->o.status == STATUS_SETTLED ? RET_STAT_ACCEPTED
           : noor                        ? RET_STAT_NOOR
           : am09                        ? RET_STAT_AM09
                                         : RET_STAT_OTHER]++;
    }
    /* every return booked is held by both ends (the rows above), and by its returner */
    for (size_t k = 0; k < w->rets_count && !w->failed; k++) {
        const ret_t *rt = &w->rets[k];
        bool held = rt->committed && rt->id[0] != '\0' &&
                    ret_row_find(&c, rt->returner, w->node[rt->payer].name, rt->id) != NULL;
        st[RET_STAT_RESTORE] += rt->restore_lost;
        st[RET_STAT_GONE] += rt->restore_lost && !held;
        if (rt->committed && rt->id[0] != '\0' && !rt->restore_lost && !held) {
            fail(w, "%s made return %s to %s, its books do not hold it", w->node[rt->returner].name,
                 rt->id, w->node[rt->payer].name);
        }
    }
    /* per original payment: accepted within the amount at both ends, returned_minor says so */
    for (size_t k = 0; k < w->items_count && !w->failed; k++) {
        const item_t *it = &w->items[k];
        if (it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER) {
            continue;
        }
        int ends[2] = {it->payer, it->payee};
        int64_t sums[2][2] = {{0, 0}, {0, 0}}; /* [end][accepted, pending] */
        size_t accepted = 0;
        for (size_t i = 0; i < c.count; i++) {
            const ret_row_t *a = &c.v[i];
            for (int e = 0; e < 2; e++) {
                if (a->node == ends[e] && strcmp(a->s.peer, w->node[ends[1 - e]].name) == 0 &&
                    strcmp(a->s.original_uetr, it->uetr) == 0) {
                    sums[e][0] += a->o.status == STATUS_SETTLED ? a->s.amount_minor : 0;
                    sums[e][1] += a->o.status == STATUS_PENDING ? a->s.amount_minor : 0;
                    accepted += e == 1 && a->o.status == STATUS_SETTLED;
                }
            }
        }
        st[RET_STAT_PARTIAL] += accepted > 1;
        for (int e = 0; e < 2; e++) {
            settlement_t s;
            ledger_outcome_t o;
            const node_t *n = &w->node[ends[e]];
            if (ledger_find(n->reader, w->node[ends[1 - e]].name, it->uetr, &s, &o) != LEDGER_OK) {
                continue;
            }
            if (sums[e][0] > s.amount_minor || sums[e][0] + sums[e][1] > s.amount_minor ||
                sums[e][1] != 0 || o.returned_minor != sums[e][0] ||
                (sums[e][0] > 0 && o.status != STATUS_SETTLED)) {
                fail(w,
                     "%s: payment %s of %" PRId64 " (%s) has %" PRId64 " accepted, %" PRId64
                     " pending in returns, returned_minor %" PRId64,
                     n->name, it->uetr, s.amount_minor, status_name(o.status), sums[e][0],
                     sums[e][1], o.returned_minor);
                break;
            }
        }
    }
    st[RET_STAT_DUPL] = w->rets_dupl;
    st[RET_STAT_LOCAL] = w->rets_local;
    free(c.v);
}

enum {
    HOLD_STAT_HELD,       /* journal rows `held` */
    HOLD_STAT_RELEASED,   /* `released` */
    HOLD_STAT_DECLINED,   /* `declined` */
    HOLD_STAT_EXPIRED,    /* payments final AB05 */
    HOLD_STAT_LISTED,     /* refused RR04 by a screening list */
    HOLD_STAT_CANCELLED,  /* cancelled at both ends */
    HOLD_STAT_REFUSED,    /* asked back and not cancelled (RJCR) */
    HOLD_STAT_REVIEWS,    /* review decisions committed */
    HOLD_STAT_UNENTITLED, /* messages the receivers counted as unentitled */
    HOLD_STATS
};

static void count_held(const ledger_held_t *h, void *arg)
{
    (void)h;
    (*(size_t *)arg)++;
}

/* Once quiet: nothing held at any node (every review done), each channel's digest the same at
 * both ends, every unentitled message of the compromised node counted by its receiver (unless
 * the channel was DIVERGED: a repair may re-base past what it held); and the counts of the
 * summary. */
static void check_holds(world_t *w)
{
    uint64_t *st = w->holds_stats;
    for (int i = 0; i < w->n && !w->failed; i++) {
        node_t *n = &w->node[i];
        size_t held = 0;
        if (ledger_held(n->reader, count_held, &held) != LEDGER_OK || held != 0) {
            fail(w, "%s still holds %zu payments once quiet (%s)", n->name, held,
                 ledger_last_error(n->reader));
            return;
        }
        for (size_t p = 0; p < n->config->peers_count; p++) {
            int j = n->peer_node[p];
            uint64_t unentitled =
                n->unentitled_from[j] + channel_stats(engine_channel(n->engine, p)).unentitled;
            st[HOLD_STAT_UNENTITLED] += unentitled;
            bool caught_up =
                channel_stats(engine_channel(n->engine, p)).applied_seq ==
                channel_stats(engine_channel(w->node[j].engine, w->node[j].index_of[i]))
                    .sent_seq; /* it applied all the attacker sent */
            if (j == w->attacker && unentitled < w->forged_holds_to[i] && caught_up &&
                !w->diverged_ever[i][j]) {
                fail(w,
                     "%s counted %" PRIu64 " unentitled messages of the compromised %s, which "
                     "sent it %" PRIu64,
                     n->name, unentitled, w->node[j].name, w->forged_holds_to[i]);
            }
            range_fp_t a, b;
            if (j < i) {
                continue;
            }
            if (statement_fingerprint(n->reader, w->node[j].name, "", &a) != LEDGER_OK ||
                statement_fingerprint(w->node[j].reader, n->name, "", &b) != LEDGER_OK) {
                fail(w, "cannot read the digests of %s-%s", n->name, w->node[j].name);
            } else if (a.count != b.count || memcmp(a.sum, b.sum, sizeof a.sum) != 0) {
                fail(w, "the channel digests of %s-%s differ: %" PRIu64 " entries, %" PRIu64,
                     n->name, w->node[j].name, a.count, b.count);
            }
        }
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(n->db,
                               "SELECT kind, count(*) FROM journal WHERE kind IN (11, 12, 13)"
                               " GROUP BY kind",
                               -1, &q, NULL) != SQLITE_OK) {
            fail(w, "%s: cannot read its journal: %s", n->name, sqlite3_errmsg(n->db));
            return;
        }
        while (sqlite3_step(q) == SQLITE_ROW) {
            int kind = sqlite3_column_int(q, 0);
            st[kind == ENTRY_HELD       ? HOLD_STAT_HELD
               : kind == ENTRY_RELEASED ? HOLD_STAT_RELEASED
                                        : HOLD_STAT_DECLINED] +=
                (uint64_t)sqlite3_column_int64(q, 1);
        }
        sqlite3_finalize(q);
    }
    for (size_t k = 0; k < w->items_count && !w->failed; k++) {
        const item_t *it = &w->items[k];
        settlement_t s;
        ledger_outcome_t o;
        if (it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER ||
            ledger_find(w->node[it->payee].reader, w->node[it->payer].name, it->uetr, &s, &o) !=
                LEDGER_OK) {
            continue;
        }
        bool rejected = o.status == STATUS_REJECTED;
        st[HOLD_STAT_EXPIRED] += rejected && strcmp(o.reason, reason_code(REASON_EXPIRED)) == 0;
        st[HOLD_STAT_LISTED] += rejected && it->listed && w->node[it->payee].screens &&
                                strcmp(o.reason, reason_code(REASON_REGULATORY)) == 0;
        st[HOLD_STAT_CANCELLED] += o.cancelled;
        st[HOLD_STAT_REFUSED] += it->cancel_sent && !o.cancelled;
    }
    st[HOLD_STAT_REVIEWS] = w->reviews;
}

/* Every channel reconciled once from one side, as an operator would: no breaks. */
static void start_reconciles(world_t *w)
{
    for (int i = 0; i < w->n; i++) {
        for (int j = i + 1; j < w->n; j++) {
            if (!w->channel[i][j]) {
                continue;
            }
            node_t *n = &w->node[rng_chance(&w->rng, 500) ? i : j];
            int other = n->idx == i ? j : i;
            for (size_t p = 0; p < n->config->peers_count; p++) {
                if (n->peer_node[p] == other) {
                    n->reconcile_wanted[p] = RECON_FINAL;
                    json_decref(n->reports[p]);
                    n->reports[p] = NULL;
                    w->reconciles++;
                }
            }
            n->wake_ms = w->now > n->busy_until ? w->now : n->busy_until;
        }
    }
}

/* Whether every reconciliation reported; `strict`: each must have found nothing. */
static bool reconciles_done(world_t *w, bool strict)
{
    size_t reported = 0;
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        for (size_t p = 0; p < n->config->peers_count; p++) {
            json_t *r = n->reports[p];
            if (r == NULL) {
                continue;
            }
            reported++;
            if (!strict) {
                continue;
            }
            const char *peer = n->config->peers[p].card.name;
            const char *error = json_string_value(json_object_get(r, "error"));
            json_int_t entries = 0; /* the channel's settlements */
            for (size_t k = 0; k < w->items_count; k++) {
                const item_t *it = &w->items[k];
                entries += it->kind != ITEM_DUP_SAME && it->kind != ITEM_DUP_OTHER &&
                           ((it->payer == i && it->payee == n->peer_node[p]) ||
                            (it->payee == i && it->payer == n->peer_node[p]));
            }
            ret_rows_t held = {w, i, NULL, 0, 0}; /* and its returns (3.9) */
            if (ledger_settlements(n->reader, collect_return, &held) != LEDGER_OK) {
                fail(w, "%s: cannot list settlements", n->name);
            }
            for (size_t k = 0; k < held.count; k++) {
                entries += strcmp(held.v[k].s.peer, peer) == 0;
            }
            free(held.v);
            for (size_t k = 0; k < w->fxs_count; k++) { /* and both legs of its trades (3.10) */
                const fx_t *f = &w->fxs[k];
                ledger_outcome_t o; /* but those a restore lost before they left */
                bool gone = f->restore_lost && !fx_status_at(w, f, n, false, &o);
                entries += f->committed && !gone &&
                                   ((f->proposer == i && f->acceptor == n->peer_node[p]) ||
                                    (f->acceptor == i && f->proposer == n->peer_node[p]))
                               ? 2
                               : 0;
            }
            so_legs_t legs; /* and its set-off legs (3.12; check_setoffs says they are right) */
            if (w->setoffs && so_legs_of(w, n, &legs)) {
                for (size_t k = 0; k < legs.count; k++) {
                    entries += legs.v[k].peer == n->peer_node[p];
                }
                free(legs.v);
            }
            json_int_t matched = json_integer_value(json_object_get(r, "matched"));
            if (error != NULL) {
                fail(w, "I6: %s's reconciliation with %s: %s", n->name, peer, error);
            } else if (json_array_size(json_object_get(r, "breaks")) != 0 ||
                       json_integer_value(json_object_get(r, "breaks_remaining")) != 0 ||
                       !json_is_true(json_object_get(r, "positions_agree"))) {
                char *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
                fail(w, "I6: %s's reconciliation with %s found differences: %.600s", n->name, peer,
                     text != NULL ? text : "?");
                free(text);
            } else if (matched != entries) {
                fail(w, "I6: %s's reconciliation with %s matched %lld entries of %lld", n->name,
                     peer, (long long)matched, (long long)entries);
            }
        }
    }
    return reported == w->reconciles;
}

/* Once quiet, the CURVE keys (PROTOCOL.md 2.16): every node serves its newest CURVE key (no
 * switch pending), connects with it, and every peer pins it and admits it; `strict` reports
 * what is not. */
static bool curve_quiet(world_t *w, bool strict)
{
    for (int i = 0; i < w->n; i++) {
        node_t *x = &w->node[i];
        if (!x->up) {
            return false; /* books_final says so */
        }
        const char *newest = x->id->curve_public, *why = NULL;
        int other = -1;
        if (engine_curve_pending(x->engine)) {
            why = "its CURVE switch is still pending";
        } else if (strcmp(engine_curve_server(x->engine)->curve_public, newest) != 0) {
            why = "it serves a CURVE key other than its newest";
        }
        for (size_t p = 0; p < x->config->peers_count && why == NULL; p++) {
            node_t *y = &w->node[x->peer_node[p]];
            channel_transport_t t, u;
            channel_transport(engine_channel(x->engine, p), &t);
            channel_transport(engine_channel(y->engine, y->index_of[i]), &u);
            other = y->idx;
            why = strcmp(t.client->curve_public, newest) != 0 ? "it connects with an old key"
                  : strcmp(u.pin, newest) != 0                ? "the peer pins an old key of its"
                  : strcmp(u.admit_current, newest) != 0 ? "the peer does not admit its newest key"
                                                         : NULL;
        }
        if (why != NULL) {
            if (strict) {
                fail(w, "CURVE: %s%s%s, %d s after faults stopped: %s", x->name,
                     other >= 0 ? ", with " : "", other >= 0 ? w->node[other].name : "",
                     LIVENESS_MS / 1000, why);
            }
            return false;
        }
    }
    return true;
}

typedef struct {
    uint64_t ours, theirs; /* keys with a switch_seq */
} switch_count_t;

static void count_switch(const key_record_t *k, void *arg)
{
    switch_count_t *c = arg;
    if (k->switch_seq != 0) {
        *(k->side == KEY_SIDE_OURS ? &c->ours : &c->theirs) += 1;
    }
}

/* At the end: one KeySwitch queued (our key history) and applied (the peer's) per channel of
 * every rotation that made a new CURVE key. */
static void check_keyswitches(world_t *w)
{
    switch_count_t c = {0, 0};
    for (int i = 0; i < w->n; i++) {
        if (ledger_keys(w->node[i].reader, NULL, count_switch, &c) != LEDGER_OK) {
            fail(w, "%s: cannot read its key history: %s", w->node[i].name,
                 ledger_last_error(w->node[i].reader));
            return;
        }
    }
    w->keyswitches = c.theirs;
    if (c.ours != w->keyswitches_wanted || c.theirs != w->keyswitches_wanted) {
        fail(w,
             "CURVE: %d rotations with a new CURVE key on %" PRIu64 " channels in all: %" PRIu64
             " KeySwitches queued, %" PRIu64 " applied",
             w->curve_rotations, w->keyswitches_wanted, c.ours, c.theirs);
    }
}

/* I1-I5 in every home and I2 between every pair, by `corridor audit`'s code. */
static void audit_all(world_t *w)
{
    const char *homes[NODES_MAX];
    for (int i = 0; i < w->n; i++) {
        homes[i] = w->node[i].home;
    }
    audit_report_t report;
    audit_report_init(&report);
    int rc = audit_homes(homes, (size_t)w->n, NULL, 0, &report);
    /* a node restored from a backup no longer holds the journal it co-signed in checkpoints
     * after the backup: the audit must say so (`history`), and nothing else */
    const char *restored = w->restore.restored ? w->node[w->restore.node].home : NULL;
    const audit_violation_t *first = NULL;
    size_t unexpected = 0;
    for (size_t i = 0; i < report.violations_count; i++) {
        const audit_violation_t *v = &report.violations[i];
        if (restored != NULL && strcmp(v->kind, "history") == 0 && strcmp(v->home, restored) == 0) {
            trace(w, "audit, as expected after the restore: %s", v->detail);
        } else if (w->attacker >= 0 && strcmp(v->home, w->node[w->attacker].home) == 0 &&
                   strcmp(v->kind, "evidence") == 0 &&
                   strstr(v->detail, "a malformed FxProposal sent") != NULL) {
            /* the compromised node booked its hostile proposal (a rate its legs do not imply) as
             * its own: its books show what it sent, and the audit must say so */
            trace(w, "audit, as expected in the compromised node's books: %s", v->detail);
        } else if (unexpected++ == 0) {
            first = v;
        }
    }
    if (rc != 0 || unexpected > 0) {
        fail(w, "audit: %zu violations; the first: %s %s: %s", unexpected,
             first != NULL ? strrchr(first->home, '/') + 1 : "-", first != NULL ? first->kind : "-",
             first != NULL ? first->detail : "-");
    }
    audit_report_free(&report);
}

/* ---- the loop -----------------------------------------------------------------------------------
 */

static void world_step(world_t *w)
{
    /* the next event: a frame's arrival, a crash, a node's turn or restart (ties: frames, then
     * crashes, then nodes in order) */
    int64_t t_frame = w->flight_count > 0 ? w->flight[0].at : INT64_MAX;
    int64_t t_crash =
        w->crashes_next < w->crashes_count ? w->crashes[w->crashes_next].at : INT64_MAX;
    int64_t t_replace = replace_next(w); /* the stolen key's events */
    int64_t t_node = INT64_MAX;
    int who = -1;
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        int64_t t = n->up ? n->wake_ms : n->restart_ms;
        if (t < t_node) {
            t_node = t;
            who = i;
        }
    }
    if (t_frame <= t_crash && t_frame <= t_node && t_frame <= t_replace && t_frame != INT64_MAX) {
        frame_t f = flight_pop(w);
        w->now = f.at > w->now ? f.at : w->now;
        node_t *to = &w->node[f.to];
        bool cut = w->now < w->faults_end && partitioned(w, f.from, f.to, w->now);
        bool rebound = to->up && f.epoch != to->serve_epoch;
        if (!to->up || cut || rebound) {
            trace(w, "%s->%s %s dropped: %s", w->node[f.from].name, to->name, type_name(f.type),
                  cut       ? "partitioned"
                  : rebound ? "its inbound socket was bound again since (a CURVE switch)"
                            : "node down");
            w->frames_rebound += rebound && !cut;
            free(f.data);
            return;
        }
        if (to->inbox_count == to->inbox_cap) {
            to->inbox_cap = to->inbox_cap ? 2 * to->inbox_cap : 64;
            to->inbox = realloc(to->inbox, to->inbox_cap * sizeof *to->inbox);
            if (to->inbox == NULL) {
                abort();
            }
        }
        to->inbox[to->inbox_count++] = f;
        int64_t wake = w->now > to->busy_until ? w->now : to->busy_until;
        to->wake_ms = wake < to->wake_ms ? wake : to->wake_ms;
        return;
    }
    if (t_crash <= t_node && t_crash <= t_replace && t_crash != INT64_MAX) {
        crash_t *c = &w->crashes[w->crashes_next++];
        w->now = c->at > w->now ? c->at : w->now;
        node_t *n = &w->node[c->node];
        if (!n->up) {
            return;
        }
        if (c->kind == CRASH_BETWEEN) {
            node_crash(w, n, c->down_ms, "between turns");
        } else {
            n->crash_armed = (int)c->kind; /* at its next transaction */
        }
        return;
    }
    if (t_replace <= t_node && t_replace != INT64_MAX) {
        w->now = t_replace > w->now ? t_replace : w->now;
        replace_step(w);
        return;
    }
    if (who < 0) {
        fail(w, "nothing left to happen");
        return;
    }
    node_t *n = &w->node[who];
    w->now = t_node > w->now ? t_node : w->now;
    if (!n->up) {
        trace(w, "%s RESTART", n->name);
        node_open(w, n);
        return;
    }
    node_turn(w, n);
}

static void world_free(world_t *w)
{
    free(w->rets);
    w->rets = NULL;
    free(w->fxs);
    free(w->cys);
    free(w->sos);
    free(w->cy_forged);
    w->fxs = NULL;
    if (w->thief_keys != NULL) { /* before the configs that count them go */
        for (size_t p = 0; p < w->node[w->stolen].config->peers_count; p++) {
            envelope_peer_wipe(&w->thief_keys[p]);
        }
        sodium_free(w->thief_keys);
        w->thief_keys = NULL;
    }
    for (int i = 0; i < w->n; i++) {
        node_t *n = &w->node[i];
        node_close(n);
        free(n->inbox);
        free(n->items);
        identity_destroy(&n->id);
        identity_destroy(&n->id_previous);
        identity_destroy(&n->id_next);
        config_destroy(&n->config);
        screen_list_destroy(&n->list);
        free(n->held_now.v);
        free(n->running.v);
        free(n->queued.v);
        free(n->verdicts.v);
        free(n->reviews);
        free(n->cancels);
    }
    for (size_t i = 0; i < w->flight_count; i++) {
        free(w->flight[i].data);
    }
    disk_image_free(&w->restore.image);
    for (size_t k = 0; k < w->loot_count; k++) {
        free(w->loot[k].signed_msg);
    }
    free(w->loot);
    identity_destroy(&w->thief);
    identity_destroy(&w->replacement);
    free(w->flight);
    free(w->items);
    opener_free(&w->opener);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Runs one world; 0 passed, 1 failed (the reason on stdout). */
static int world_run(uint64_t seed, const options_t *opt, const char *dir)
{
    static world_t world;
    world_t *w = &world;
    memset(w, 0, sizeof *w);
    w->seed = seed;
    w->rng.s = seed;
    (void)rng_next(&w->rng);
    w->trace = opt->trace;
    w->replace_anytime = opt->replace_anytime;
    current = w;
    log_set_clock(sim_clock);
    entropy_seed(seed);
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->opener = opener_new(0);
    bool ok = w->opener != NULL && world_build(w, opt);
    int64_t final_check = 0, reconcile_end = 0, seen_check = 0;
    bool done = false, reconciling = false;
    while (ok && !w->failed && !done) {
        if (++w->steps > STEPS_MAX) {
            fail(w, "stuck: %d steps by t=%" PRId64 " ms", STEPS_MAX, w->now);
            break;
        }
        world_step(w);
        if (reconciling) {
            if (reconciles_done(w, false)) {
                reconciles_done(w, true);
                done = true;
            } else if (w->now > reconcile_end) {
                fail(w, "I6: not every reconciliation reported within %d s", RECONCILE_MS / 1000);
            }
        } else if (w->now >= w->faults_end) {
            bool all_seen = true;
            for (size_t k = 0; k < w->items_count && all_seen; k++) {
                const item_t *it = &w->items[k];
                all_seen = it->kind == ITEM_DUP_SAME || it->kind == ITEM_DUP_OTHER ? it->done
                                                                                   : it->final_seen;
            }
            bool final = false;
            /* a restore, a replacement or the thief still to come */
            bool restore_due = (w->restore.node >= 0 && !w->restore.restored) ||
                               replacements_pending(w) || thief_busy(w);
            /* all seen final at the payers: the books are read again every 50 ms until they
             * agree (an answer to a CancelRequest, a CURVE switch may still be on the way) */
            if (((all_seen && w->now >= seen_check) || w->now >= final_check) && !w->failed &&
                !restore_due) {
                final_check = w->now + FINAL_CHECK_MS;
                seen_check = w->now + 50;
                final = books_final(w, false) && curve_quiet(w, false);
            }
            if (final) {
                trace(w, "all final; checking the books, then reconciling every channel");
                books_final(w, true);
                curve_quiet(w, true);
                if (!w->failed) {
                    check_books(w);
                }
                if (!w->failed) {
                    check_holds(w);
                }
                if (!w->failed) {
                    check_returns(w);
                }
                if (!w->failed) {
                    check_fx(w);
                }
                if (!w->failed) {
                    check_cycles(w);
                }
                if (!w->failed) {
                    check_setoffs(w);
                }
                start_reconciles(w);
                reconciling = true;
                reconcile_end = w->now + RECONCILE_MS;
            } else if (w->now > w->faults_end + LIVENESS_MS) {
                bool up = true;
                for (int i = 0; i < w->n; i++) {
                    up &= w->node[i].up;
                }
                if (up) { /* a transport stuck on old CURVE keys first: what blocks the rest */
                    curve_quiet(w, true);
                }
                books_final(w, true);
                if (!w->failed) {
                    fail(w, "liveness: not done %d s after faults stopped", LIVENESS_MS / 1000);
                }
            }
        }
    }
    if (done && !w->failed) {
        check_keyswitches(w);
    }
    if (done && !w->failed) {
        check_stolen_evidence(w);
        trace(w, "reconciled; auditing every home");
        audit_all(w);
    }
    uint64_t turns = 0, commits = 0, crashes = 0;
    for (int i = 0; i < w->n; i++) {
        turns += w->node[i].turns;
        commits += w->node[i].commits;
        crashes += w->node[i].crashes;
    }
    if (w->failed) {
        printf("seed %" PRIu64 ": FAILED at t=%" PRId64 " ms: %s\n", seed, w->now, w->failure);
    } else if (opt->trace) {
        fprintf(
            stderr,
            "SIM seed %" PRIu64 " passed: %d nodes, %zu items, t=%" PRId64 " ms, %" PRIu64
            " steps, %" PRIu64 " turns, %" PRIu64 " commits, %" PRIu64 " crashes, %" PRIu64
            " frames (%" PRIu64 " lost, %" PRIu64 " duplicated, %" PRIu64 " refused, %" PRIu64
            " hostile copies, %" PRIu64 " forged, %" PRIu64 " sequenced, %" PRIu64
            " by a thief of %s's keys, %" PRIu64 " after a replacement, %" PRIu64
            " refused as revoked, %" PRIu64 " as unknown, %" PRIu64
            " by CURVE); CURVE: %d rotations with a new key, %" PRIu64
            " KeySwitches applied, %" PRIu64 " sends refused, %" PRIu64
            " frames lost to a rebind%s%s; holds: %" PRIu64 " held, %" PRIu64 " released, %" PRIu64
            " declined, %" PRIu64 " expired, %" PRIu64 " listed, %" PRIu64 " cancelled, %" PRIu64
            " cancels refused, %" PRIu64 " reviews, %" PRIu64 " unentitled\n",
            seed, w->n, w->items_count, w->now, w->steps, turns, commits, crashes, w->frames_sent,
            w->frames_lost, w->frames_dup, w->frames_refused, w->frames_hostile, w->forged,
            w->forged_sequenced, w->thief_sent,
            w->stolen >= 0 ? w->node[w->stolen].name : "no node", w->thief_after, w->thief_revoked,
            w->thief_unknown, w->thief_curve, w->curve_rotations, w->keyswitches, w->frames_curve,
            w->frames_rebound, w->curve_overlap ? ", two switches at once" : "",
            w->curve_held ? ", the tie-break held one" : "", w->holds_stats[0], w->holds_stats[1],
            w->holds_stats[2], w->holds_stats[3], w->holds_stats[4], w->holds_stats[5],
            w->holds_stats[6], w->holds_stats[7], w->holds_stats[8]);
    }
    /* for the run's summary (job_done) */
    char path[300];
    snprintf(path, sizeof path, "%s/stats", dir);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f,
                "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %d %" PRIu64 " %" PRIu64
                " %" PRIu64 " %d %d",
                w->stolen >= 0 && w->own_replaced, w->thief_after, w->thief_revoked,
                w->thief_unknown, w->thief_curve, w->curve_rotations > 0, w->keyswitches,
                w->frames_curve, w->frames_rebound, w->curve_overlap, w->curve_held);
        for (size_t k = 0; k < HOLD_STATS; k++) {
            fprintf(f, " %" PRIu64, w->holds_stats[k]);
        }
        fprintf(f, " %" PRIu64 " %d", w->forged_holds, w->screening || w->expiry || w->cancelling);
        for (size_t k = 0; k < RETURN_STATS; k++) {
            fprintf(f, " %" PRIu64, w->ret_stats[k]);
        }
        fprintf(f, " %d", w->returning);
        for (size_t k = 0; k < FX_STATS; k++) {
            fprintf(f, " %" PRIu64, w->fx_stats[k]);
        }
        fprintf(f, " %d", w->fx);
        for (size_t k = 0; k < CY_STATS; k++) {
            fprintf(f, " %" PRIu64, w->cy_stats[k]);
        }
        fprintf(f, " %d", w->cycles);
        for (size_t k = 0; k < SO_STATS; k++) {
            fprintf(f, " %" PRIu64, w->so_stats[k]);
        }
        fprintf(f, " %d\n", w->setoffs);
        fclose(f);
    }
    fflush(stdout);
    fflush(stderr);
    bool failed = w->failed || !ok;
    world_free(w);
    current = NULL;
    return failed ? 1 : 0;
}

/* ---- the driver ---------------------------------------------------------------------------------
 */

static void usage(FILE *f)
{
    fprintf(f, "usage: sim [--seeds N] [--from S] [--nodes K] [--settlements M] [--jobs J] "
               "[--fifo] [--no-lost-commits] [--replace-anytime] [--restore-holds] "
               "[--trace]\n"
               "  runs N worlds, seeds S..S+N-1 (default 1 from 1); K nodes (2-5; default from "
               "the seed);\n"
               "  M settlements each (default 200); J worlds at a time (default 1); --trace "
               "writes every\n"
               "  event and log line of the world on stderr. Ends with 'N passed, N failed'.\n"
               "  --fifo: every lane delivers in order (as TCP; else half the worlds reorder);\n"
               "  --no-lost-commits: every transaction commits (crashes between turns or after a\n"
               "  commit only; no full or failing disk).\n"
               "  --replace-anytime: the operators replace a stolen key as drawn, also where\n"
               "  node/ledger/replace.c has known gaps (sim.c: gaps_block).\n"
               "  --restore-holds: a node restored from a copy screens too (it re-decides what\n"
               "  its copy holds before its channels show the rollback: a known gap).\n"
               "  CORRIDOR_SIM_DIR: where homes are made (default /dev/shm); "
               "CORRIDOR_SIM_KEEP=1 keeps a failed world's homes.\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s != NULL ? s : "", &end, 10);
    if (s == NULL || *s == '\0' || *s == '-' || *end != '\0' || errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

/* SIGABRT in a world (an assert, a sanitizer): its buffered log and message first. */
static void flush_and_abort(int sig)
{
    fflush(stderr);
    signal(sig, SIG_DFL);
    raise(sig);
}

typedef struct {
    pid_t pid;
    uint64_t seed;
    char dir[256]; /* the world's homes, and its stderr (stderr.log) when not traced */
} job_t;

/* The last lines of a failed world's stderr that are not log lines (what a sanitizer, an
 * assert or abort said). */
static void show_errors(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char lines[8][512];
    size_t count = 0;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        bool log_line = strlen(line) > 24 && line[4] == '-' && line[10] == 'T' && line[23] == 'Z';
        if (!log_line) {
            snprintf(lines[count % 8], sizeof lines[0], "%s", line);
            count++;
        }
    }
    fclose(f);
    for (size_t i = count > 8 ? count - 8 : 0; i < count; i++) {
        printf("  | %s", lines[i % 8]);
    }
}

static void replay_line(uint64_t seed, const options_t *opt)
{
    char nodes[32] = "", settlements[40] = "";
    const char *fifo = opt->fifo ? " --fifo" : "";
    const char *lost = opt->no_lost_commits ? " --no-lost-commits" : "";
    const char *anytime = opt->replace_anytime ? " --replace-anytime" : "";
    const char *holds = opt->restore_holds ? " --restore-holds" : "";
    if (opt->nodes > 0) {
        snprintf(nodes, sizeof nodes, " --nodes %d", opt->nodes);
    }
    if (opt->settlements != 200) {
        snprintf(settlements, sizeof settlements, " --settlements %zu", opt->settlements);
    }
    printf("FAILED seed %" PRIu64 "; replay: scripts/sim.sh --seeds 1 --from %" PRIu64
           "%s%s%s%s%s%s --trace\n",
           seed, seed, nodes, settlements, fifo, lost, anytime, holds);
}

/* What the worlds of a run did with stolen keys (world_run writes each world's). */
typedef struct {
    uint64_t replaced;           /* worlds whose operators replaced a stolen key */
    uint64_t thief_after;        /* the thief's frames sent after the peer replaced its keys */
    uint64_t thief_revoked;      /* refused as under a revoked key (ENV_E_REVOKED) */
    uint64_t thief_unknown;      /* refused as an unknown sender (a replacement from 1) */
    uint64_t thief_curve;        /* refused by the CURVE model */
    uint64_t curve_worlds;       /* worlds with a rotation that made a new CURVE key */
    uint64_t keyswitches;        /* KeySwitches applied */
    uint64_t frames_curve;       /* sends the CURVE model refused */
    uint64_t rebound;            /* frames lost to a rebind */
    uint64_t overlap;            /* worlds where two nodes' CURVE switches were pending at once */
    uint64_t held;               /* worlds where the tie-break held a switch back */
    uint64_t holds[9];           /* HOLD_STAT_*, summed */
    uint64_t forged_holds;       /* unentitled messages the compromised nodes sent */
    uint64_t holds_worlds;       /* worlds with screening, expiry or cancellation */
    uint64_t rets[RETURN_STATS]; /* RET_STAT_*, summed */
    uint64_t rets_worlds;        /* worlds with honest returns */
    uint64_t fx[FX_STATS];       /* FX_STAT_*, summed */
    uint64_t fx_worlds;          /* worlds with FX trades */
    uint64_t cy[CY_STATS];       /* CY_STAT_*, summed */
    uint64_t cy_worlds;          /* worlds with settlement cycles */
    uint64_t so[SO_STATS];       /* SO_STAT_*, summed */
    uint64_t so_worlds;          /* worlds with set-offs */
} run_stats_t;

static bool job_done(job_t *j, int status, const options_t *opt, run_stats_t *stats)
{
    bool passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char path[300];
    snprintf(path, sizeof path, "%s/stats", j->dir);
    FILE *f = fopen(path, "r");
    enum { FIELDS = 26 + RETURN_STATS + FX_STATS + CY_STATS + SO_STATS };
    unsigned long long v[FIELDS] = {0};
    size_t got = 0;
    while (f != NULL && got < FIELDS && fscanf(f, "%llu", &v[got]) == 1) {
        got++;
    }
    if (got == FIELDS) {
        for (size_t k = 0; k < FX_STATS; k++) {
            stats->fx[k] += v[23 + RETURN_STATS + k];
        }
        stats->fx_worlds += v[23 + RETURN_STATS + FX_STATS];
        for (size_t k = 0; k < CY_STATS; k++) {
            stats->cy[k] += v[24 + RETURN_STATS + FX_STATS + k];
        }
        stats->cy_worlds += v[24 + RETURN_STATS + FX_STATS + CY_STATS];
        for (size_t k = 0; k < SO_STATS; k++) {
            stats->so[k] += v[25 + RETURN_STATS + FX_STATS + CY_STATS + k];
        }
        stats->so_worlds += v[25 + RETURN_STATS + FX_STATS + CY_STATS + SO_STATS];
        for (size_t k = 0; k < RETURN_STATS; k++) {
            stats->rets[k] += v[22 + k];
        }
        stats->rets_worlds += v[22 + RETURN_STATS];
        for (size_t k = 0; k < 9; k++) {
            stats->holds[k] += v[11 + k];
        }
        stats->forged_holds += v[20];
        stats->holds_worlds += v[21];
        stats->replaced += v[0];
        stats->thief_after += v[1];
        stats->thief_revoked += v[2];
        stats->thief_unknown += v[3];
        stats->thief_curve += v[4];
        stats->curve_worlds += v[5];
        stats->keyswitches += v[6];
        stats->frames_curve += v[7];
        stats->rebound += v[8];
        stats->overlap += v[9];
        stats->held += v[10];
    }
    if (f != NULL) {
        fclose(f);
    }
    if (!passed) {
        if (WIFSIGNALED(status)) {
            printf("seed %" PRIu64 ": the world died of signal %d (%s)\n", j->seed,
                   WTERMSIG(status), strsignal(WTERMSIG(status)));
        }
        char err[300];
        snprintf(err, sizeof err, "%s/stderr.log", j->dir);
        show_errors(err);
        replay_line(j->seed, opt);
    }
    if (!passed && getenv("CORRIDOR_SIM_KEEP") != NULL) {
        printf("seed %" PRIu64 ": homes kept in %s\n", j->seed, j->dir);
    } else {
        nftw(j->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    fflush(stdout);
    return passed;
}

int main(int argc, char **argv)
{
    options_t opt = {.nodes = 0, .settlements = 200, .trace = false};
    uint64_t seeds = 1, from = 1, jobs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v = 0;
        bool value = i + 1 < argc;
        if (strcmp(a, "--trace") == 0) {
            opt.trace = true;
        } else if (strcmp(a, "--fifo") == 0) {
            opt.fifo = true;
        } else if (strcmp(a, "--no-lost-commits") == 0) {
            opt.no_lost_commits = true;
        } else if (strcmp(a, "--replace-anytime") == 0) {
            opt.replace_anytime = true;
        } else if (strcmp(a, "--restore-holds") == 0) {
            opt.restore_holds = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--seeds") == 0 && value && parse_u64(argv[++i], &v) && v > 0) {
            seeds = v;
        } else if (strcmp(a, "--from") == 0 && value && parse_u64(argv[++i], &v)) {
            from = v;
        } else if (strcmp(a, "--nodes") == 0 && value && parse_u64(argv[++i], &v) && v >= 2 &&
                   v <= NODES_MAX) {
            opt.nodes = (int)v;
        } else if (strcmp(a, "--settlements") == 0 && value && parse_u64(argv[++i], &v) &&
                   v <= 100000) {
            opt.settlements = (size_t)v;
        } else if (strcmp(a, "--jobs") == 0 && value && parse_u64(argv[++i], &v) && v > 0 &&
                   v <= 64) {
            jobs = v;
        } else {
            fprintf(stderr, "sim: bad argument: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (opt.trace) {
        jobs = 1;
    }
    const char *base = getenv("CORRIDOR_SIM_DIR");
    if (base == NULL || *base == '\0') {
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    }
    /* every random byte of the node code from the world's seed (re-seeded in each world) */
    entropy_seed(0);
    if (disk_install() != 0) {
        fprintf(stderr, "sim: cannot register the simulated disk with SQLite\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "sim: sodium_init failed\n");
        return 2;
    }
    uint64_t passed = 0, failed = 0, next = 0;
    run_stats_t stats = {0};
    bool unrefused = false; /* the thief's frames after replacements, none refused */
    job_t running[64];
    size_t active = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0); /* the driver's own speed, never the world's clock */
    while (next < seeds || active > 0) {
        while (next < seeds && active < jobs) {
            uint64_t seed = from + next++;
            job_t *j = &running[active];
            j->seed = seed;
            snprintf(j->dir, sizeof j->dir, "%s/corridor-sim.XXXXXX", base);
            if (mkdtemp(j->dir) == NULL) {
                fprintf(stderr, "sim: cannot make a directory under %s: %s\n", base,
                        strerror(errno));
                return 2;
            }
            char err[300];
            snprintf(err, sizeof err, "%s/stderr.log", j->dir);
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid < 0) {
                perror("sim: fork");
                return 2;
            }
            if (pid == 0) {
                if (!opt.trace && freopen(err, "w", stderr) == NULL) {
                    _exit(2);
                }
                static char buffer[1 << 16];
                setvbuf(stderr, buffer, _IOFBF, sizeof buffer);
                signal(SIGABRT, flush_and_abort); /* what an assert said reaches the file */
                alarm(600); /* a safety net only: worlds end on simulated time */
                int rc = world_run(seed, &opt, j->dir);
                fflush(stdout);
                _exit(rc);
            }
            j->pid = pid;
            active++;
        }
        int status = 0;
        pid_t pid = wait(&status);
        if (pid < 0) {
            perror("sim: wait");
            return 2;
        }
        for (size_t k = 0; k < active; k++) {
            if (running[k].pid == pid) {
                if (job_done(&running[k], status, &opt, &stats)) {
                    passed++;
                } else {
                    failed++;
                }
                running[k] = running[--active];
                break;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t thief_refused = stats.thief_revoked + stats.thief_unknown + stats.thief_curve;
    printf("%" PRIu64 " worlds in %.1f s (%.0f a minute); %" PRIu64
           " replaced a stolen key, %" PRIu64 " of the thief's frames refused (%" PRIu64
           " as revoked, %" PRIu64 " as unknown, %" PRIu64 " by CURVE; %" PRIu64
           " sent after a replacement)\n",
           seeds, s, s > 0 ? (double)seeds * 60.0 / s : 0.0, stats.replaced, thief_refused,
           stats.thief_revoked, stats.thief_unknown, stats.thief_curve, stats.thief_after);
    printf("%" PRIu64 " worlds with a CURVE switch (%" PRIu64
           " with two nodes' switches pending at once, %" PRIu64
           " where the tie-break held one back); %" PRIu64 " KeySwitches applied; %" PRIu64
           " frames refused by the CURVE model, %" PRIu64 " lost to a rebind\n",
           stats.curve_worlds, stats.overlap, stats.held, stats.keyswitches, stats.frames_curve,
           stats.rebound);
    const uint64_t *h = stats.holds;
    printf("%" PRIu64 " worlds with holds, expiry or cancellation: %" PRIu64 " held, %" PRIu64
           " released, %" PRIu64 " declined; %" PRIu64 " expired (AB05), %" PRIu64
           " listed (RR04), %" PRIu64 " cancelled, %" PRIu64 " cancels refused, %" PRIu64
           " reviews; %" PRIu64 " unentitled messages (%" PRIu64 " sent by compromised nodes)\n",
           stats.holds_worlds, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8],
           stats.forged_holds);
    const uint64_t *rs = stats.rets;
    printf("%" PRIu64 " worlds with returns: %" PRIu64 " returns sent, %" PRIu64
           " accepted (%" PRIu64 " payments returned in several parts), %" PRIu64
           " refused (NOOR %" PRIu64 ", AM09 %" PRIu64 ", DUPL %" PRIu64 ", other %" PRIu64
           "), %" PRIu64 " refused locally; %" PRIu64 " lost by a restore at the returner (%" PRIu64
           " held by neither end, the others repaired), %" PRIu64
           " honest ones refused AM09 for books a restore left stale\n",
           stats.rets_worlds, rs[RET_STAT_SENT] + rs[RET_STAT_DUPL], rs[RET_STAT_ACCEPTED],
           rs[RET_STAT_PARTIAL],
           rs[RET_STAT_NOOR] + rs[RET_STAT_AM09] + rs[RET_STAT_DUPL] + rs[RET_STAT_OTHER],
           rs[RET_STAT_NOOR], rs[RET_STAT_AM09], rs[RET_STAT_DUPL], rs[RET_STAT_OTHER],
           rs[RET_STAT_LOCAL], rs[RET_STAT_RESTORE], rs[RET_STAT_GONE], rs[RET_STAT_STALE]);
    const uint64_t *fs = stats.fx;
    printf("%" PRIu64 " worlds with FX trades: %" PRIu64 " trades proposed, %" PRIu64
           " accepted, %" PRIu64 " refused (AG01 %" PRIu64 ", RR04 %" PRIu64 ", AB05 %" PRIu64
           ", AM03 %" PRIu64 ", FF01 %" PRIu64 "); %" PRIu64 " reviewed; %" PRIu64
           " hostile trade messages; %" PRIu64 " lost by a restore of the proposer\n",
           stats.fx_worlds, fs[FX_STAT_SENT], fs[FX_STAT_ACCEPTED],
           fs[FX_STAT_SENT] - fs[FX_STAT_ACCEPTED], fs[FX_STAT_AG01], fs[FX_STAT_RR04],
           fs[FX_STAT_AB05], fs[FX_STAT_AM03], fs[FX_STAT_FF01], fs[FX_STAT_REVIEWED],
           fs[FX_STAT_FORGED], fs[FX_STAT_GONE]);
    const uint64_t *cs = stats.cy;
    printf("%" PRIu64 " worlds with settlement cycles: %" PRIu64 " closes run (%" PRIu64
           " of both ends at once, %" PRIu64 " refused locally), %" PRIu64
           " cycles closed at both ends, %" PRIu64 " settled; %" PRIu64
           " net settlements sent, %" PRIu64 " confirmed, %" PRIu64 " refused by a review; %" PRIu64
           " hostile cycle messages, %" PRIu64 " hostile net settlements refused\n",
           stats.cy_worlds, cs[CY_STAT_CLOSES], cs[CY_STAT_BOTH], cs[CY_STAT_LOCAL],
           cs[CY_STAT_CLOSED], cs[CY_STAT_SETTLED_CYCLES], cs[CY_STAT_NETS], cs[CY_STAT_SETTLED],
           cs[CY_STAT_REJECTED], cs[CY_STAT_FORGED], cs[CY_STAT_REFUSED]);
    const uint64_t *ss = stats.so;
    printf("%" PRIu64 " worlds with set-offs: %" PRIu64 " proposed (%" PRIu64
           " with a short deadline and a member down, %" PRIu64
           " at the same moment as another round a shared edge), %" PRIu64
           " refused by the proposer's books; %" PRIu64 " committed, %" PRIu64
           " aborted (AM04 %" PRIu64 ", AB05 %" PRIu64 ", other %" PRIu64 "); %" PRIu64
           " with a member crashed while in flight; %" PRIu64 " legs checked; %" PRIu64
           " hostile set-off messages\n",
           stats.so_worlds, ss[SO_STAT_PROPOSED], ss[SO_STAT_DEADLINE], ss[SO_STAT_CONCURRENT],
           ss[SO_STAT_LOCAL], ss[SO_STAT_COMMITTED],
           ss[SO_STAT_AM04] + ss[SO_STAT_AB05] + ss[SO_STAT_OTHER], ss[SO_STAT_AM04],
           ss[SO_STAT_AB05], ss[SO_STAT_OTHER], ss[SO_STAT_CRASHED], ss[SO_STAT_LEGS],
           ss[SO_STAT_FORGED]);
    if (stats.thief_after > 0 && thief_refused == 0) {
        printf("FAILED: the thief sent %" PRIu64
               " frames after replacements and none was refused\n",
               stats.thief_after);
        unrefused = true;
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed == 0 && !unrefused ? 0 : 1;
}
