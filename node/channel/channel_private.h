/*
 * Inside the channel layer only: the channel's state, for the modules that apply and send
 * message kinds of their own (cycles.c) beside channel.c, and the two ways they queue a signed
 * message. The build gives this folder's headers to the channel library's sources alone.
 */
#ifndef CORRIDOR_CHANNEL_PRIVATE_H
#define CORRIDOR_CHANNEL_PRIVATE_H

#include "channel.h"
#include "corridor.pb-c.h"
#include "ratelimit.h"

struct channel {
    channel_ctx_t ctx;         /* the node around us */
    size_t index;              /* our peer's index in the config and transport */
    const config_peer_t *peer; /* its name and the caps we grant it */
    envelope_peer_t *keys;     /* its public keys and our shared box key */
    /* Our keys on this stream (PROTOCOL.md 2.14): `own` signs our sequenced messages after
     * `own_rotated_at` (0: no rotation on record), `own_previous` (NULL: not held) those
     * through it, and our control messages until the peer acknowledged the announcement. */
    const identity_t *own;
    const identity_t *own_previous;
    uint64_t own_rotated_at;
    uint8_t own_previous_key_id[IDENTITY_KEY_ID_BYTES]; /* signed ours through own_rotated_at */
    /* Our operator replaced our keys (`key replace`, PROTOCOL.md 2.15) from this sequence on
     * (0: never): the peer takes nothing the replaced key signs, so a stored message before
     * it is signed again by `own` whenever it is sent. */
    uint64_t own_replaced_from;
    /* The peer's sent counter in its first Hello showing it applied our last announcement:
     * what it signed before then may prove its CURVE key to our box key before the current
     * one (PROTOCOL.md 2.16), so we keep that key until we applied up to here. */
    uint64_t peer_sent_at_ack;
    bool peer_sent_at_ack_known;
    /* The CURVE transport keys (PROTOCOL.md 2.16). The peer's: of its current key, of the key
     * before it when that one differs (""), the number of its KeySwitch we applied (0: not
     * yet: its inbound socket still serves the old one) and until when (wall ms) we admit
     * the old one after it. Ours: the CURVE key of our key before the open one when it
     * differs (""), the number of our KeySwitch (0: not sent) and the overlap asked for. */
    char peer_curve[IDENTITY_CURVE_KEY_CHARS + 1];
    char peer_curve_previous[IDENTITY_CURVE_KEY_CHARS + 1];
    uint64_t peer_switch_seq;
    int64_t peer_switch_until_ms;
    bool peer_switch_heard; /* its KeySwitch reached us DIVERGED: pinned, applied after repair */
    bool peer_restored;     /* DIVERGED because the peer was put back (our books are whole) */
    bool been_up;           /* a Hello of the peer's agreed with our books since the start */
    int64_t next_expiry_ms; /* the earliest expiry of a payment of the peer's we hold (wall ms);
                               0: unknown (look), INT64_MAX: none */
    char own_curve_previous[IDENTITY_CURVE_KEY_CHARS + 1];
    uint64_t own_switch_seq;
    int64_t own_overlap_ms;
    int64_t wall_ms;             /* the turn's wall clock (channel_set_wall) */
    const identity_t *rotate_to; /* the node rotated, but the peer has not shown it takes
                                    announcements: announced once it does (NULL: none) */
    uint8_t peer_box[crypto_box_PUBLICKEYBYTES];          /* the peer's box key, */
    uint8_t peer_box_previous[crypto_box_PUBLICKEYBYTES]; /* and the one before its rotation, */
    bool has_peer_box_previous;                           /* if there was one */
    channel_state_t state;                                /* see the diagram in channel.h */
    uint64_t sent_seq;                /* highest of ours queued (committed or in this txn) */
    uint64_t acked_seq;               /* highest of ours the peer acknowledged */
    uint64_t applied_seq;             /* highest of the peer's applied */
    uint64_t acked_persisted;         /* acked_seq as last written to the ledger */
    uint64_t applied_persisted;       /* applied_seq as last written to the ledger */
    bool diverged_persisted;          /* DIVERGED as last written to the ledger */
    uint32_t wire_version;            /* the Inner format we sign with: the highest both speak */
    uint32_t wire_version_persisted;  /* as last written to the ledger (never lowered) */
    uint64_t peer_features;           /* feature flags of the peer's latest Hello */
    uint64_t peer_features_persisted; /* as last written to the ledger: what the peer offered
                                         before this process started, until its first Hello */
    uint32_t refused_offer;           /* the last version refused as a downgrade (logged once) */
    ratelimit_t rewinds;              /* full retransmissions a peer's Hellos may ask for */
    costlimit_t applied_bytes;        /* bytes of the peer's messages we may apply, */
    costlimit_t idle_bytes;           /* and of those that move no money */
    bool slowed;                      /* the peer's messages wait for its allowance (logged) */
    uint64_t transmit_next;           /* next sequence to put on the wire this session */
    uint64_t transmitted_max;         /* highest ever put on the wire by this process */
    int64_t last_rx_ms;               /* when we last heard from the peer */
    int64_t last_hello_ms;            /* when we last sent a Hello */
    int64_t rto_deadline_ms;          /* retransmit if no progress by then; 0 = none */
    int64_t rto_ms;                   /* current retransmission timeout */
    int64_t srtt_ms, rttvar_ms;       /* smoothed round trip and its variation (RFC 6298) */
    uint64_t rtt_probe_seq;           /* a first transmission being timed; 0 = none */
    int64_t rtt_probe_sent_ms;        /* when it went out */
    int64_t last_fast_retransmit_ms;  /* rate limit for gap-triggered re-sends */
    int64_t blocked_until_ms;         /* the socket refused a frame: wait till then */
    bool ack_due;                     /* an Ack should follow the next commit */
    bool hello_due;                   /* a Hello should be sent now */
    bool resend_first;                /* the peer lacks acked + 1: send it again */
    uint64_t control_counter;         /* Acks and Hellos we sent to the peer */
    bool hello_contradicted;          /* the last fresh Hello contradicted our counters */
    uint64_t probe_counter;           /* a Hello of ours whose echo judges the peer; 0 = none */
    uint64_t probe_applied;           /* our applied when that Hello left */
    bool outbox_ahead_logged;         /* an outbox row past sent_seq was reported */
    uint64_t peer_incarnation;        /* stamp of the newest control message from the peer */
    uint64_t peer_counter;
    envelope_message_t *hold[CHANNEL_HOLD_MAX]; /* held business messages by seq % MAX */
    channel_stats_t stats;                      /* counters for status */
    uint64_t apply_work; /* what applying the last message cost beyond its bytes, charged as
                            bytes (a cycle proposal's settlements touched above its cut) */
};

/* How our pacs.002 is kept with the settlement it answers. */
typedef enum {
    REPLY_NONE,       /* not kept (a repeat, a DUPL) */
    REPLY_SETTLEMENT, /* the decision on arrival: the booking row's and the record's reply */
    REPLY_ROW,        /* a PDNG: the held row's reply only (nothing is decided) */
} reply_keep_t;

/* Signs a business message in Inner format `version` with the next sequence number and queues
 * it in the outbox; *signed_out (if not NULL) receives the signed bytes (malloc'd). */
ledger_err_t channel_queue(channel_t *ch, uint32_t version, msg_type_t type, const uint8_t *body,
                           size_t len, uint8_t **signed_out, size_t *signed_len);

/* Queues our pacs.002 `status` for the message of `answered_version` with body `body` (version 2
 * names its hash), about `id`; kept nowhere by the channel: the caller stores it. */
ledger_err_t channel_queue_report(channel_t *ch, uint32_t answered_version, const uint8_t *body,
                                  size_t body_len, const char *id, const char *status,
                                  const char *reason, const char *currency, int64_t position,
                                  uint8_t **signed_out, size_t *signed_out_len);

/* Settlement cycles (cycles.c, PROTOCOL.md 3.11), applied in sequence order. */
ledger_err_t cycles_apply_proposal(channel_t *ch, const envelope_message_t *msg);
ledger_err_t cycles_apply_answer(channel_t *ch, const envelope_message_t *msg);
ledger_err_t cycles_apply_net_settlement(channel_t *ch, const envelope_message_t *msg, bool *moved);

/* Multilateral set-off (setoffs.c, PROTOCOL.md 3.12), applied in sequence order. */
ledger_err_t setoffs_apply_relay(channel_t *ch, const envelope_message_t *msg);
ledger_err_t setoffs_apply_decision(channel_t *ch, const envelope_message_t *msg);

/* Whether the StatusReport `sr` is about a net settlement of the channel (then it was applied or
 * refused here, *rc says how the books took it); false: it is about something else. */
bool cycles_apply_net_answer(channel_t *ch, const envelope_message_t *msg,
                             const Corridor__StatusReport *sr, bool *moved, ledger_err_t *rc);

#endif
