/*
 * ZeroMQ transport with CURVE and a fail-closed ZAP handler; see transport.h.
 *
 * ZAP (RFC 27): libzmq sends the handler a request of frames
 *   version "1.0", request id, domain, address, routing id, mechanism, credentials...
 * and waits for a reply of
 *   version "1.0", request id, status code, status text, user id, metadata.
 * The handler is answered from the node's loop; the connection waits until then.
 */
#include "transport.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "corridor/limits.h"
#include "log.h"
#include "ratelimit.h"

#define ZAP_ENDPOINT             "inproc://zeromq.zap.01"
#define ZAP_DOMAIN               "corridor"
#define ZAP_FRAMES_MAX           8
#define HEARTBEAT_IVL_MS         2000 /* ZMTP pings: notice a dead TCP connection */
#define HEARTBEAT_TTL_MS         20000 /* generous: a busy peer may not read its socket for a while */
#define RECONNECT_IVL_MS         100
#define RECONNECT_MAX_MS         2000
#define SNDHWM_MESSAGES          20000
#define TRANSPORT_CURVE_OVERHEAD 64 /* at least the 33 bytes CURVE adds to a message */

#define REBIND_PAUSE_MS   10 /* between binds of a port libzmq has not released yet */
#define LAST_ENDPOINT_MAX 256

typedef char curve_key_t[IDENTITY_CURVE_KEY_CHARS + 1]; /* Z85; "" for none */

typedef struct {
    char name[CORRIDOR_NAME_LEN_MAX + 1];
    curve_key_t client_key;   /* the client key the ZAP handler admits for it */
    curve_key_t previous_key; /* and this one ("": none) while before previous_until */
    int64_t previous_until;   /* on transport_handle_zap's clock; 0: no limit */
    char *endpoints[2];       /* where the outbound sockets connect, by lane */
    void *outbound[2];        /* PUSH, CURVE clients pinned to its server key, by lane */
    ratelimit_t handshakes;   /* connections admitted with its keys */
} peer_socket_t;

/* One endpoint of the inbound socket and the limits of its listener. */
typedef struct {
    char *endpoint; /* as bound (ZMQ_LAST_ENDPOINT): a rebind takes the same port */
    int64_t frame_max;
    int queued;
} listener_t;

struct transport {
    void *ctx;
    void *zap;               /* REP on inproc://zeromq.zap.01 */
    void *inbound;           /* PULL, CURVE server, on the stream endpoint and the other */
    listener_t listeners[2]; /* the stream endpoint (if any) first, then the other */
    size_t listeners_count;
    peer_socket_t *peers; /* one per configured peer */
    size_t peers_count;
    transport_stats_t stats;
};

static int set_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof value);
}

/* Options both directions share: liveness heartbeats, bounded queues, no linger (the outbox
 * is durable: a message lost in a socket queue is sent again). */
static int common_options(void *socket)
{
    return set_int(socket, ZMQ_LINGER, 0) | set_int(socket, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS) |
           set_int(socket, ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS) |
           set_int(socket, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TTL_MS);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Whether `z85` is a CURVE key as ZeroMQ writes it: 40 characters that decode to 32 bytes.
 * zmq_setsockopt would refuse a bad one too, but the ZAP handler only compares strings. */
static bool curve_key_valid(const char *z85)
{
    uint8_t key[32];
    return z85 != NULL && strnlen(z85, IDENTITY_CURVE_KEY_CHARS + 1) == IDENTITY_CURVE_KEY_CHARS &&
           zmq_z85_decode(key, z85) != NULL;
}

/* A new inbound socket (PULL, CURVE server with `self`'s key, under the ZAP domain), not yet
 * bound; NULL on failure (zmq_errno says why). */
static void *inbound_socket(void *ctx, const identity_t *self)
{
    void *s = zmq_socket(ctx, ZMQ_PULL);
    if (s != NULL && (common_options(s) != 0 || set_int(s, ZMQ_CURVE_SERVER, 1) != 0 ||
                      zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, self->curve_secret,
                                     IDENTITY_CURVE_KEY_CHARS) != 0 ||
                      zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0)) {
        int saved = zmq_errno();
        zmq_close(s);
        errno = saved;
        return NULL;
    }
    return s;
}

/* Binds the inbound socket on `endpoint` taking frames up to `frame_max` bytes, `queued` of
 * them per connection: libzmq gives each listener (and the connections it accepts) the options
 * set when it was bound. A bind that finds the address in use is tried again until `wait_ms`
 * have passed (a port closed a moment ago is released by libzmq's I/O thread, later). 0, or
 * -1 with zmq_errno set. */
static int listen_on(void *inbound, const char *endpoint, int64_t frame_max, int queued,
                     int wait_ms)
{
    /* libzmq checks the size of the frame as CURVE carries it (the MESSAGE command: name,
     * nonce, MAC and flags around the frame), before it decrypts it */
    frame_max += TRANSPORT_CURVE_OVERHEAD;
    if (zmq_setsockopt(inbound, ZMQ_MAXMSGSIZE, &frame_max, sizeof frame_max) != 0 ||
        set_int(inbound, ZMQ_RCVHWM, queued) != 0) {
        return -1;
    }
    int64_t deadline = monotonic_ms() + wait_ms;
    while (zmq_bind(inbound, endpoint) != 0) {
        if (zmq_errno() != EADDRINUSE || monotonic_ms() >= deadline) {
            return -1;
        }
        pause_ms(REBIND_PAUSE_MS);
    }
    return 0;
}

/* Binds the inbound socket on every listener, the stream's first. wait_ms as for listen_on. On
 * failure writes one line into err. */
static transport_err_t listen_all(transport_t *t, int wait_ms, char *err, size_t err_size)
{
    for (size_t i = 0; i < t->listeners_count; i++) {
        listener_t *l = &t->listeners[i];
        if (listen_on(t->inbound, l->endpoint, l->frame_max, l->queued, wait_ms) != 0) {
            snprintf(err, err_size, "cannot listen on %s: %s", l->endpoint,
                     zmq_strerror(zmq_errno()));
            return TRANSPORT_E_LISTEN;
        }
    }
    return TRANSPORT_OK;
}

/* Adds a listener and binds it (transport_new): it keeps the address libzmq reports, so that a
 * rebind after `tcp://HOST:*` takes the port it got. */
static transport_err_t add_listener(transport_t *t, const char *endpoint, int64_t frame_max,
                                    int queued, char *err, size_t err_size)
{
    assert(t->listeners_count < 2);
    if (listen_on(t->inbound, endpoint, frame_max, queued, 0) != 0) {
        snprintf(err, err_size, "cannot listen on %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return TRANSPORT_E_LISTEN;
    }
    char bound[LAST_ENDPOINT_MAX];
    size_t bound_len = sizeof bound;
    listener_t *l = &t->listeners[t->listeners_count];
    l->endpoint = strdup(zmq_getsockopt(t->inbound, ZMQ_LAST_ENDPOINT, bound, &bound_len) == 0 &&
                                 bound_len > 1 && bound[0] != '\0'
                             ? bound
                             : endpoint);
    if (l->endpoint == NULL) {
        snprintf(err, err_size, "out of memory");
        return TRANSPORT_E_NOMEM;
    }
    l->frame_max = frame_max;
    l->queued = queued;
    t->listeners_count++;
    return TRANSPORT_OK;
}

/* A PUSH socket to `endpoint`, CURVE client as `client` pinned to `server_key`, queueing at
 * most `hwm` frames; NULL on failure (zmq_errno says why). */
static void *connect_outbound(void *ctx, const identity_t *client, const char *server_key,
                              const char *endpoint, int hwm)
{
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    if (s != NULL &&
        (common_options(s) != 0 || set_int(s, ZMQ_IMMEDIATE, 1) != 0 ||
         set_int(s, ZMQ_SNDHWM, hwm) != 0 || set_int(s, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS) != 0 ||
         set_int(s, ZMQ_RECONNECT_IVL_MAX, RECONNECT_MAX_MS) != 0 ||
         zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, IDENTITY_CURVE_KEY_CHARS) != 0 ||
         zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, client->curve_public, IDENTITY_CURVE_KEY_CHARS) !=
             0 ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, client->curve_secret, IDENTITY_CURVE_KEY_CHARS) !=
             0 ||
         zmq_connect(s, endpoint) != 0)) {
        int saved = zmq_errno();
        zmq_close(s);
        errno = saved;
        return NULL;
    }
    return s;
}

/* Both outbound sockets of `p` into sockets[], as `client` pinned to `server_key`; on failure
 * closes those it made, leaves sockets[] NULL and writes one line into err. */
static transport_err_t connect_peer(void *ctx, const peer_socket_t *p, const identity_t *client,
                                    const char *server_key, void *sockets[2], char *err,
                                    size_t err_size)
{
    for (size_t lane = 0; lane < 2; lane++) {
        int hwm = lane == TRANSPORT_STREAM ? SNDHWM_MESSAGES : TRANSPORT_STATEMENTS_QUEUED;
        sockets[lane] = connect_outbound(ctx, client, server_key, p->endpoints[lane], hwm);
        if (sockets[lane] == NULL) {
            snprintf(err, err_size, "cannot connect to %s at %s: %s", p->name, p->endpoints[lane],
                     zmq_strerror(zmq_errno()));
            if (lane > 0) {
                zmq_close(sockets[0]);
                sockets[0] = NULL;
            }
            return TRANSPORT_E_SOCKET;
        }
    }
    return TRANSPORT_OK;
}

transport_err_t transport_new(void *ctx, const identity_t *self, const char *listen,
                              const char *listen_stream, const transport_peer_t *peers,
                              size_t peers_count, transport_t **out, char *err, size_t err_size)
{
    assert(ctx != NULL && self != NULL && listen != NULL && listen_stream != NULL &&
           (peers != NULL || peers_count == 0) && out != NULL);
    *out = NULL;
    transport_t *t = calloc(1, sizeof *t);
    if (t == NULL || (t->peers = calloc(peers_count + 1, sizeof *t->peers)) == NULL) {
        snprintf(err, err_size, "out of memory");
        free(t);
        return TRANSPORT_E_NOMEM;
    }
    transport_err_t rc = TRANSPORT_E_ZAP;
    t->ctx = ctx;
    t->peers_count = peers_count;
    /* 1. The ZAP handler first: without it a CURVE server admits anyone. */
    t->zap = zmq_socket(ctx, ZMQ_REP);
    if (t->zap == NULL || set_int(t->zap, ZMQ_LINGER, 0) != 0 ||
        zmq_bind(t->zap, ZAP_ENDPOINT) != 0) {
        snprintf(err, err_size, "cannot start the ZAP handler: %s (refusing to run without it)",
                 zmq_strerror(zmq_errno()));
        goto fail;
    }
    /* 2. The inbound socket, CURVE server, bounded frames and queues on each endpoint. */
    if ((t->inbound = inbound_socket(ctx, self)) == NULL) {
        snprintf(err, err_size, "cannot set up the inbound socket: %s", zmq_strerror(zmq_errno()));
        rc = TRANSPORT_E_SOCKET;
        goto fail;
    }
    if ((listen_stream[0] != '\0' &&
         (rc = add_listener(t, listen_stream, CORRIDOR_STREAM_WIRE_BYTES_MAX,
                            TRANSPORT_STREAM_QUEUED, err, err_size)) != TRANSPORT_OK) ||
        (rc = add_listener(t, listen, CORRIDOR_WIRE_BYTES_MAX, TRANSPORT_LISTEN_QUEUED, err,
                           err_size)) != TRANSPORT_OK) {
        goto fail;
    }
    /* 3. Two outbound sockets per peer, one per lane. */
    for (size_t i = 0; i < peers_count; i++) {
        peer_socket_t *p = &t->peers[i];
        snprintf(p->name, sizeof p->name, "%s", peers[i].name);
        snprintf(p->client_key, sizeof p->client_key, "%s", peers[i].curve_public);
        ratelimit_init(&p->handshakes, TRANSPORT_HANDSHAKES_PER_S, TRANSPORT_HANDSHAKES_BURST);
        const char *stream = peers[i].stream != NULL && peers[i].stream[0] != '\0'
                                 ? peers[i].stream
                                 : peers[i].endpoint;
        if ((p->endpoints[TRANSPORT_STREAM] = strdup(stream)) == NULL ||
            (p->endpoints[TRANSPORT_STATEMENTS] = strdup(peers[i].endpoint)) == NULL) {
            snprintf(err, err_size, "out of memory");
            rc = TRANSPORT_E_NOMEM;
            goto fail;
        }
        if ((rc = connect_peer(ctx, p, self, peers[i].curve_public, p->outbound, err, err_size)) !=
            TRANSPORT_OK) {
            goto fail;
        }
    }
    *out = t;
    return TRANSPORT_OK;

fail:
    transport_destroy(&t);
    return rc;
}

const char *transport_strerror(transport_err_t err)
{
    switch (err) {
    case TRANSPORT_OK:
        return "ok";
    case TRANSPORT_E_NOMEM:
        return "out of memory";
    case TRANSPORT_E_ZAP:
        return "the ZAP handler cannot start";
    case TRANSPORT_E_SOCKET:
        return "a socket cannot be set up";
    case TRANSPORT_E_LISTEN:
        return "an endpoint cannot be bound";
    case TRANSPORT_E_KEY:
        return "a CURVE key is malformed or another peer's";
    }
    return "unknown error";
}

void transport_destroy(transport_t **self_p)
{
    assert(self_p != NULL);
    transport_t *t = *self_p;
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; t->peers != NULL && i < t->peers_count; i++) {
        for (size_t lane = 0; lane < 2; lane++) {
            if (t->peers[i].outbound[lane] != NULL) {
                zmq_close(t->peers[i].outbound[lane]);
            }
            free(t->peers[i].endpoints[lane]);
        }
    }
    if (t->inbound != NULL) {
        zmq_close(t->inbound);
    }
    if (t->zap != NULL) {
        zmq_close(t->zap);
    }
    for (size_t i = 0; i < t->listeners_count; i++) {
        free(t->listeners[i].endpoint);
    }
    free(t->peers);
    free(t);
    *self_p = NULL;
}

void *transport_inbound_socket(transport_t *t)
{
    return t->inbound;
}

void *transport_zap_socket(transport_t *t)
{
    return t->zap;
}

transport_stats_t transport_stats(const transport_t *t)
{
    return t->stats;
}

/* Whether `z85` is a key the ZAP handler admits for a peer other than `self`. */
static bool key_of_another_peer(const transport_t *t, const peer_socket_t *self, const char *z85)
{
    for (size_t i = 0; i < t->peers_count; i++) {
        const peer_socket_t *p = &t->peers[i];
        if (p != self && (strcmp(p->client_key, z85) == 0 ||
                          (p->previous_key[0] != '\0' && strcmp(p->previous_key, z85) == 0))) {
            return true;
        }
    }
    return false;
}

transport_err_t transport_peer_admit(transport_t *t, size_t peer_index, const char *current_z85,
                                     const char *previous_z85, int64_t previous_until_ms)
{
    assert(t != NULL && peer_index < t->peers_count);
    peer_socket_t *p = &t->peers[peer_index];
    if (!curve_key_valid(current_z85) || key_of_another_peer(t, p, current_z85) ||
        (previous_z85 != NULL &&
         (!curve_key_valid(previous_z85) || key_of_another_peer(t, p, previous_z85)))) {
        return TRANSPORT_E_KEY;
    }
    snprintf(p->client_key, sizeof p->client_key, "%s", current_z85);
    snprintf(p->previous_key, sizeof p->previous_key, "%s",
             previous_z85 != NULL ? previous_z85 : "");
    p->previous_until = previous_z85 != NULL ? previous_until_ms : 0;
    return TRANSPORT_OK;
}

transport_err_t transport_peer_reconnect(transport_t *t, size_t peer_index,
                                         const identity_t *client, const char *server_z85,
                                         char *err, size_t err_size)
{
    assert(t != NULL && peer_index < t->peers_count && client != NULL);
    peer_socket_t *p = &t->peers[peer_index];
    if (!curve_key_valid(server_z85)) {
        snprintf(err, err_size, "%s's server key is not a CURVE key in Z85", p->name);
        return TRANSPORT_E_KEY;
    }
    void *sockets[2] = {NULL, NULL};
    transport_err_t rc = connect_peer(t->ctx, p, client, server_z85, sockets, err, err_size);
    if (rc != TRANSPORT_OK) {
        return rc; /* the old sockets stay */
    }
    for (size_t lane = 0; lane < 2; lane++) {
        zmq_close(p->outbound[lane]); /* no linger: what it queued is the outbox's to resend */
        p->outbound[lane] = sockets[lane];
    }
    t->stats.reconnects++;
    return TRANSPORT_OK;
}

transport_err_t transport_rebind(transport_t *t, const identity_t *self, char *err, size_t err_size)
{
    assert(t != NULL && self != NULL);
    /* Everything that can fail without the ports first: until then the old socket serves. */
    void *fresh = inbound_socket(t->ctx, self);
    if (fresh == NULL) {
        snprintf(err, err_size, "cannot set up the inbound socket: %s", zmq_strerror(zmq_errno()));
        return TRANSPORT_E_SOCKET;
    }
    /* One CURVE server key per socket, and the ports are the old socket's until it is closed:
     * from here on the old key is not served again, whatever happens. */
    zmq_close(t->inbound);
    t->inbound = fresh;
    transport_err_t rc = listen_all(t, TRANSPORT_REBIND_WAIT_MS, err, err_size);
    if (rc == TRANSPORT_OK) {
        t->stats.rebinds++;
    }
    return rc;
}

/* Reads one whole ZAP request (at most ZAP_FRAMES_MAX frames); returns the frame count or -1. */
static int zap_read(void *zap, zmq_msg_t *frames)
{
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = count < ZAP_FRAMES_MAX ? &frames[count] : &scratch;
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, zap, count == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(frame);
            return count == 0 ? -1 : count;
        }
        more = zmq_msg_more(frame);
        if (frame == &scratch) {
            zmq_msg_close(frame); /* more frames than a request has: counted, not kept */
        }
        count++;
    }
    return count;
}

static bool frame_is(zmq_msg_t *frame, const char *text)
{
    size_t len = strlen(text);
    return zmq_msg_size(frame) == len && memcmp(zmq_msg_data(frame), text, len) == 0;
}

static void zap_reply(void *zap, zmq_msg_t *request_id, const char *code, const char *text,
                      const char *user_id)
{
    zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(zap, zmq_msg_data(request_id), zmq_msg_size(request_id), ZMQ_SNDMORE);
    zmq_send(zap, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(zap, user_id, strlen(user_id), ZMQ_SNDMORE);
    zmq_send(zap, "", 0, 0);
}

/* The peer admitted with the 32-byte CURVE client key `key` at now_ms, or NULL; *previous
 * tells whether it is the peer's previous key. */
static peer_socket_t *peer_by_curve_key(const transport_t *t, const uint8_t *key, int64_t now_ms,
                                        bool *previous)
{
    char z85[IDENTITY_CURVE_KEY_CHARS + 1];
    *previous = false;
    if (zmq_z85_encode(z85, key, 32) == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < t->peers_count; i++) {
        if (strcmp(t->peers[i].client_key, z85) == 0) {
            return &t->peers[i];
        }
    }
    for (size_t i = 0; i < t->peers_count; i++) {
        const peer_socket_t *p = &t->peers[i];
        if (p->previous_key[0] != '\0' && strcmp(p->previous_key, z85) == 0 &&
            (p->previous_until == 0 || now_ms < p->previous_until)) {
            *previous = true;
            return &t->peers[i];
        }
    }
    return NULL;
}

/* The peer whose previous key, no longer admitted, is the 32-byte `key`, or NULL: for the log. */
static const peer_socket_t *peer_by_expired_key(const transport_t *t, const uint8_t *key)
{
    char z85[IDENTITY_CURVE_KEY_CHARS + 1];
    if (zmq_z85_encode(z85, key, 32) == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < t->peers_count; i++) {
        if (t->peers[i].previous_key[0] != '\0' && strcmp(t->peers[i].previous_key, z85) == 0) {
            return &t->peers[i];
        }
    }
    return NULL;
}

long long transport_ipc_uid(const char *address)
{
    if (address == NULL) {
        return -1;
    }
    const char *colon[3] = {NULL, NULL, NULL}; /* the last three: before uid, gid and pid */
    for (const char *p = address; *p != '\0'; p++) {
        if (*p == ':') {
            colon[0] = colon[1];
            colon[1] = colon[2];
            colon[2] = p;
        }
    }
    if (colon[0] == NULL) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long long uid = strtoll(colon[0] + 1, &end, 10);
    return errno == 0 && end == colon[1] && end != colon[0] + 1 && uid >= 0 ? uid : -1;
}

/* transport_ipc_uid of a ZAP Address frame. */
static long long ipc_peer_uid(zmq_msg_t *address)
{
    char text[128];
    size_t len = zmq_msg_size(address);
    if (len == 0 || len >= sizeof text) {
        return -1;
    }
    memcpy(text, zmq_msg_data(address), len);
    text[len] = '\0';
    return transport_ipc_uid(text);
}

/* A connection to the control socket: this node's own user or root, else refused. */
static void zap_control(transport_t *t, zmq_msg_t *frames)
{
    long long uid = frame_is(&frames[5], "NULL") ? ipc_peer_uid(&frames[3]) : -1;
    if (uid >= 0 && (uid == 0 || uid == (long long)geteuid())) {
        char user_id[32];
        snprintf(user_id, sizeof user_id, "uid:%lld", uid);
        zap_reply(t->zap, &frames[1], "200", "OK", user_id);
        return;
    }
    t->stats.control_refused++;
    zap_reply(t->zap, &frames[1], "400", "not this node's user", "");
    fprintf(stderr,
            "corridor: refused a control connection from uid %lld: only uid %lld and "
            "root may control this node\n",
            uid, (long long)geteuid());
}

void transport_handle_zap(transport_t *t, int64_t now_ms)
{
    assert(t != NULL);
    for (;;) {
        zmq_msg_t frames[ZAP_FRAMES_MAX];
        int count = zap_read(t->zap, frames);
        if (count < 0) {
            return; /* nothing pending */
        }
        int kept = count < ZAP_FRAMES_MAX ? count : ZAP_FRAMES_MAX;
        /* frames: 0 version, 1 request id, 2 domain, 3 address, 4 routing id, 5 mechanism,
         * 6 credentials (CURVE: the client's 32-byte public key) */
        if (kept == 6 && frame_is(&frames[0], "1.0") &&
            frame_is(&frames[2], TRANSPORT_CONTROL_DOMAIN)) {
            zap_control(t, frames);
            for (int i = 0; i < kept; i++) {
                zmq_msg_close(&frames[i]);
            }
            continue;
        }
        peer_socket_t *peer = NULL;
        bool previous = false;
        if (kept == 7 && frame_is(&frames[0], "1.0") && frame_is(&frames[2], ZAP_DOMAIN) &&
            frame_is(&frames[5], "CURVE") && zmq_msg_size(&frames[6]) == 32) {
            peer = peer_by_curve_key(t, zmq_msg_data(&frames[6]), now_ms, &previous);
        }
        if (kept >= 2) {
            if (peer != NULL && !ratelimit_take(&peer->handshakes, now_ms)) {
                t->stats.zap_throttled++;
                zap_reply(t->zap, &frames[1], "400", "too many connections", "");
                if (peer->handshakes.refused % 1024 == 1) {
                    fprintf(stderr,
                            "corridor: refused connections with %s's key: more than %d a second "
                            "(%llu refused)\n",
                            peer->name, TRANSPORT_HANDSHAKES_PER_S,
                            (unsigned long long)peer->handshakes.refused);
                }
            } else if (peer != NULL) {
                t->stats.zap_admitted++;
                t->stats.zap_previous += previous;
                zap_reply(t->zap, &frames[1], "200", "OK", peer->name);
            } else {
                t->stats.zap_refused++;
                zap_reply(t->zap, &frames[1], "400", "not a configured peer", "");
                const peer_socket_t *old = kept == 7 && zmq_msg_size(&frames[6]) == 32
                                               ? peer_by_expired_key(t, zmq_msg_data(&frames[6]))
                                               : NULL;
                if (old != NULL) {
                    fprintf(stderr,
                            "corridor: refused a connection with %s's previous key: its overlap "
                            "has ended\n",
                            old->name);
                } else {
                    fprintf(stderr,
                            "corridor: refused a connection: not a configured peer's key\n");
                }
            }
        } else {
            /* too short to answer: REP still needs a reply to stay usable */
            zmq_send(t->zap, "", 0, 0);
        }
        for (int i = 0; i < kept; i++) {
            zmq_msg_close(&frames[i]);
        }
    }
}

/* The index of the peer named `user_id`, or SIZE_MAX. */
static size_t peer_index_of(const transport_t *t, const char *user_id)
{
    for (size_t i = 0; user_id != NULL && i < t->peers_count; i++) {
        if (strcmp(t->peers[i].name, user_id) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

size_t transport_drain(transport_t *t, size_t max,
                       void (*fn)(size_t peer_index, const uint8_t *data, size_t len, void *arg),
                       void *arg)
{
    assert(t != NULL && fn != NULL);
    size_t delivered = 0;
    for (size_t i = 0; i < max; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, t->inbound, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        bool multipart = zmq_msg_more(&msg);
        size_t peer = peer_index_of(t, zmq_msg_gets(&msg, "User-Id"));
        if (multipart || peer == SIZE_MAX) {
            t->stats.dropped_frames++;
            log_event(NULL, peer == SIZE_MAX ? NULL : t->peers[peer].name, NULL, "dropped a %s",
                      multipart ? "multi-part message" : "frame from an unknown connection");
            while (multipart) { /* discard the rest of the message */
                zmq_msg_close(&msg);
                zmq_msg_init(&msg);
                multipart = zmq_msg_recv(&msg, t->inbound, 0) >= 0 && zmq_msg_more(&msg);
            }
        } else {
            fn(peer, zmq_msg_data(&msg), zmq_msg_size(&msg), arg);
            delivered++;
        }
        zmq_msg_close(&msg);
    }
    return delivered;
}

int transport_send(transport_t *t, size_t peer_index, transport_lane_t lane, const uint8_t *data,
                   size_t len)
{
    assert(t != NULL && peer_index < t->peers_count);
    assert(lane == TRANSPORT_STREAM || lane == TRANSPORT_STATEMENTS);
    if (lane == TRANSPORT_STREAM && len > CORRIDOR_STREAM_WIRE_BYTES_MAX) {
        errno = EMSGSIZE; /* never from a message we make; an edited outbox, say */
        return -1;
    }
    if (zmq_send(t->peers[peer_index].outbound[lane], data, len, ZMQ_DONTWAIT) < 0) {
        t->stats.statements_dropped += lane == TRANSPORT_STATEMENTS;
        return -1;
    }
    return 0;
}
