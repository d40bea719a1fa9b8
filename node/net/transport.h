/*
 * Transport: ZeroMQ sockets with CURVE, and the ZAP handler that decides who may connect.
 *
 * Each node binds one PULL socket for inbound messages (CURVE server) and connects two PUSH
 * sockets per peer for outbound (CURVE clients, pinned to the peer's server key): the stream
 * and the statements lane (see transport_lane_t). The PULL socket listens on two endpoints
 * with different limits (libzmq gives each listener the options set when it was bound): the
 * stream endpoint takes frames up to CORRIDOR_STREAM_WIRE_BYTES_MAX in a deep queue, the
 * other takes frames up to CORRIDOR_WIRE_BYTES_MAX in a short one, so that what a peer can
 * make libzmq hold for one connection is bounded in bytes on both. Debian's
 * libzmq 4.3 has no ZMQ_ZAP_ENFORCE_DOMAIN: a CURVE server without a ZAP handler admits any
 * client key. So the ZAP handler (a REP socket on inproc://zeromq.zap.01, answered from the
 * node's own loop) is bound before the inbound socket, and transport_new fails if it cannot
 * be. It admits only the CURVE keys of configured peers and names each connection with the
 * peer's code as its User-Id; every inbound message is attributed by that User-Id and one
 * without a known one is dropped.
 *
 * The transport knows nothing of the ledger or the envelope: it moves opaque frames. Frames
 * larger than a listener's limit are refused by libzmq (ZMQ_MAXMSGSIZE, which closes that
 * connection) before they are read.
 *
 * CURVE keys change while the node runs (key rotation): a CURVE server has one key per
 * socket and its clients pin it, so the transport cannot serve two server keys at once. It
 * switches at points the caller chooses instead: a peer's new client key is admitted next to
 * its old one for a while (transport_peer_admit), the node's outbound sockets to a peer are
 * made again as another client or pinned to the peer's new server key
 * (transport_peer_reconnect), and the inbound socket is made again with a new server key
 * (transport_rebind). Each is a reconnect as far as the channel is concerned: frames in
 * socket queues are lost and the stream resumes from the gap.
 */
#ifndef CORRIDOR_TRANSPORT_H
#define CORRIDOR_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corridor/limits.h"
#include "identity.h"

typedef struct transport transport_t;

/* A peer as the transport needs it. */
typedef struct {
    const char *name;         /* node code: the User-Id its connections get */
    const char *endpoint;     /* where its inbound socket listens: the statements lane */
    const char *stream;       /* where it takes the stream (its endpoint if it names none) */
    const char *curve_public; /* its CURVE public key (Z85) */
} transport_peer_t;

typedef enum {
    TRANSPORT_OK = 0,
    TRANSPORT_E_NOMEM,  /* out of memory */
    TRANSPORT_E_ZAP,    /* the ZAP handler cannot start: no transport without it */
    TRANSPORT_E_SOCKET, /* a socket cannot be set up (options, CURVE keys, connect) */
    TRANSPORT_E_LISTEN, /* an endpoint cannot be bound (in use, no such address) */
    TRANSPORT_E_KEY,    /* a CURVE key is not 40 Z85 characters of a key, or another peer's */
} transport_err_t;

const char *transport_strerror(transport_err_t err);

/* Sets up the ZAP handler, binds the inbound socket on `listen` and, unless it is "",
 * `listen_stream`, connects the outbound sockets of each peer into *out. On failure writes
 * one line into err. Each peer's own CURVE key is the one client key the ZAP handler admits
 * for it and the server key its outbound sockets pin, until the calls below change them. The
 * transport keeps copies of the endpoints (the addresses actually bound, so that a rebind
 * takes the same port when `listen` asked for any, tcp://HOST:*) and of the context. */
transport_err_t transport_new(void *zmq_context, const identity_t *self, const char *listen,
                              const char *listen_stream, const transport_peer_t *peers,
                              size_t peers_count, transport_t **out, char *err, size_t err_size)
    __attribute__((warn_unused_result));
void transport_destroy(transport_t **self_p);

/* The ZAP domain of the node's control socket (ipc): the handler admits a local connection
 * only from this process's own uid or root, and names it with User-Id "uid:N". */
#define TRANSPORT_CONTROL_DOMAIN "corridor-control"

/* The uid in the address libzmq reports for an ipc connection: it appends ":uid:gid:pid"
 * from SO_PEERCRED ("localhost:1000:1000:4242" on Linux). -1 when there is none. */
long long transport_ipc_uid(const char *address);

/* The sockets the event loop polls for input: inbound and ZAP. The inbound socket is another
 * one after transport_rebind (unless it failed before closing the old one): a caller that
 * keeps it (in a zmq_pollitem_t) fetches it again after every rebind, whatever it returned. */
void *transport_inbound_socket(transport_t *t);
void *transport_zap_socket(transport_t *t);

/* Answers every pending ZAP request (never blocks). A configured peer's key is admitted at
 * most TRANSPORT_HANDSHAKES_PER_S times a second (burst TRANSPORT_HANDSHAKES_BURST): each
 * admitted connection gets its own receive queue, so a peer with valid keys must not open
 * them without bound. `now_ms` is the caller's clock. */
void transport_handle_zap(transport_t *t, int64_t now_ms);

/* Receives up to `max` inbound frames without blocking, calling fn for each with the index of
 * the peer that sent it (by its ZAP identity). Frames with no known identity, and multi-part
 * messages, are dropped and counted. Returns the number of frames handed to fn. */
size_t transport_drain(transport_t *t, size_t max,
                       void (*fn)(size_t peer_index, const uint8_t *data, size_t len, void *arg),
                       void *arg);

/* Two connections to each peer: the stream (sequenced messages, Acks, Hellos: our own, in a
 * window we bound) and statements (requests and answers, which a peer can make us produce; a
 * short queue, TRANSPORT_STATEMENTS_QUEUED frames, and what does not fit is dropped: the
 * requester asks again). */
typedef enum { TRANSPORT_STREAM = 0, TRANSPORT_STATEMENTS = 1 } transport_lane_t;

/* Sends one frame to a peer without blocking. 0 sent; -1 not now (not connected or its
 * queue is full: the caller keeps the message and retries later, or drops it). A stream frame
 * over CORRIDOR_STREAM_WIRE_BYTES_MAX is never sent (-1, errno EMSGSIZE): the peer would
 * close the connection. */
int transport_send(transport_t *t, size_t peer_index, transport_lane_t lane, const uint8_t *data,
                   size_t len);

/* The CURVE client keys the ZAP handler admits for peer `peer_index`, all named with its code
 * (the same User-Id, so frames are attributed to it whichever key it connected with): its
 * `current_z85` key always, and `previous_z85` (NULL: none) for connections whose ZAP request
 * is answered while now_ms < `previous_until_ms` on transport_handle_zap's clock (0: no limit), so
 * that a rotating peer can connect with its new key before it has stopped using the old one.
 * The limit bounds only when a connection may be admitted: one admitted before it lasts until
 * it drops (the rotating peer closes its own when it reconnects with the new key). Both keys
 * must be 40 Z85 characters that decode, and neither another peer's current or previous key
 * (two peers under one key would have one's frames attributed to the other): else
 * TRANSPORT_E_KEY and nothing changes. Sockets are untouched; it takes effect at the next
 * handshake. */
transport_err_t transport_peer_admit(transport_t *t, size_t peer_index, const char *current_z85,
                                     const char *previous_z85, int64_t previous_until_ms)
    __attribute__((warn_unused_result));

/* Makes peer `peer_index`'s two outbound sockets again, connecting as `client` (its CURVE
 * keypair) pinned to the peer's server key `server_z85`, to the same endpoints with the same
 * options: for after our own key changed (the peer admits the new one) or the peer's did (it
 * announced its new server key). The new sockets are connected before the old ones are closed,
 * so on failure (TRANSPORT_E_KEY: server_z85 is malformed; TRANSPORT_E_SOCKET: a socket cannot
 * be set up, with one line in err) the old sockets stay as they were and transport_send goes
 * on using them. On success the frames queued in the old sockets are lost (no linger): the
 * caller's outbox sends them again, as after any reconnect; transport_send returns -1 until
 * the new handshake is done. */
transport_err_t transport_peer_reconnect(transport_t *t, size_t peer_index,
                                         const identity_t *client, const char *server_z85,
                                         char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Serves a new CURVE server key (`self`'s) on the inbound socket: closes it and binds a new one
 * on the same endpoints with the same options and limits. Every inbound connection drops (peers
 * pinned to the old key cannot connect again until they reconnect pinned to the new one) and
 * frames received but not yet drained are lost: drain first. libzmq releases a port some time
 * after zmq_close, so a bind that finds it in use is tried again for up to
 * TRANSPORT_REBIND_WAIT_MS; this call blocks that long at most.
 * The new socket is set up before the old one is closed, so a failure there
 * (TRANSPORT_E_SOCKET: a bad key, no memory) leaves the old socket serving the old key. A bind
 * that still fails (TRANSPORT_E_LISTEN, one line in err) leaves the new socket bound on the
 * endpoints it could take, perhaps none (the old socket is gone: nothing serves the old key),
 * and calling transport_rebind again retries. In every case transport_inbound_socket returns the
 * socket in use, and after a TRANSPORT_E_LISTEN or TRANSPORT_OK it is another one than before. */
#define TRANSPORT_REBIND_WAIT_MS 2000
transport_err_t transport_rebind(transport_t *t, const identity_t *self, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Counters for status and logs. */
typedef struct {
    uint64_t zap_admitted;       /* connections admitted */
    uint64_t zap_refused;        /* connections refused (unknown key, wrong mechanism) */
    uint64_t zap_throttled;      /* a configured peer's connections refused as too frequent */
    uint64_t dropped_frames;     /* inbound frames dropped (no identity, multi-part) */
    uint64_t statements_dropped; /* statements not sent: the peer's lane was full */
    uint64_t control_refused;    /* local connections to the control socket refused (uid) */
    uint64_t zap_previous;       /* of zap_admitted, those with a peer's previous key */
    uint64_t reconnects;         /* peers' outbound sockets made again (transport_peer_reconnect) */
    uint64_t rebinds;            /* inbound sockets made again with a new key (transport_rebind) */
} transport_stats_t;

transport_stats_t transport_stats(const transport_t *t);

#endif
