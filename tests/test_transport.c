/*
 * Unit tests for node/net/transport.c's CURVE key switch (key rotation): a peer's new client
 * key admitted next to its old one for a bounded time, outbound sockets made again as another
 * client or pinned to another server key, and the inbound socket bound again with a new
 * server key.
 *
 * Two transports, A and B, run in this process over real sockets on 127.0.0.1, each in its own
 * ZeroMQ context (the ZAP endpoint, inproc://zeromq.zap.01, is one per context). A small pump
 * answers both ZAP handlers and drains both inbound sockets. Every wait is for a positive
 * signal (a frame seen, a counter moved, a monitor event) with a deadline; the ZAP handler's
 * clock is the test's, moved forward to end an overlap instead of sleeping through it.
 */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "transport.h"

#define NAME_A      "BANKAAAA"
#define NAME_B      "BANKBBBB"
#define NAME_C      "BANKCCCC" /* B's second peer, never running: its keys are another peer's */
#define DEADLINE_MS 5000       /* for one positive signal; it comes in milliseconds */
#define RESEND_MS   50         /* a probe frame is sent again this often until it is seen */
#define PORT_LOW    20000      /* ports are picked below the kernel's ephemeral range */
#define ENDPOINT    64

/* ---- fixture -------------------------------------------------------------------------------- */

/* What one transport received. */
typedef struct {
    uint64_t frames;    /* every frame */
    uint64_t foreign;   /* frames attributed to a peer other than `expect_peer` */
    size_t expect_peer; /* the index the sender has in this transport's peers */
    char expect[32];    /* the probe waited for */
    bool seen;          /* it came, attributed to expect_peer */
} inbox_t;

typedef struct {
    void *ctx_a, *ctx_b;
    identity_t *a, *a2; /* A's keys, and its next ones */
    identity_t *b, *b2; /* B's keys, and its next ones */
    identity_t *c;      /* the keys of B's other peer */
    transport_t *ta, *tb;
    char a_listen[ENDPOINT], b_listen[ENDPOINT], b_stream[ENDPOINT], c_listen[ENDPOINT];
    int64_t clock_offset; /* added to the monotonic clock for the ZAP handlers */
    inbox_t in_a, in_b;
    unsigned probes;
    int port_locks[16]; /* held until teardown, as tests/nodes.c does: see free_port */
    size_t port_locks_count;
} fixture_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The ZAP handlers' clock. */
static int64_t zap_now(const fixture_t *f)
{
    return mono_ms() + f->clock_offset;
}

/* Reserves `port` against the other test programs with an exclusive lock on its file in
 * $TMPDIR/corridor-test-ports, the convention of tests/nodes.c (cluster_free_port): a rebind
 * leaves a port free for a moment. False when another program holds it. */
static bool reserve_port(fixture_t *f, int port)
{
    assert_true(f->port_locks_count < sizeof f->port_locks / sizeof f->port_locks[0]);
    int fd = test_port_lock(port);
    if (fd == -2) {
        return false;
    }
    f->port_locks[f->port_locks_count++] = fd; /* -1: no lock to be had, the bind probe decides */
    return true;
}

static void release_ports(fixture_t *f)
{
    while (f->port_locks_count > 0) {
        int fd = f->port_locks[--f->port_locks_count];
        if (fd >= 0) {
            close(fd);
        }
    }
}

/* A port on 127.0.0.1 nothing listens on now, reserved (reserve_port), below the ephemeral
 * range (so no outgoing connection takes it while a rebind waits for libzmq to release it). */
static int free_port(fixture_t *f)
{
    int low = 32768;
    FILE *range = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (range != NULL) {
        int high = 0;
        if (fscanf(range, "%d %d", &low, &high) != 2) {
            low = 32768;
        }
        fclose(range);
    }
    if (low <= PORT_LOW + 1000) {
        low = 32768;
    }
    static unsigned seed;
    if (seed == 0) {
        seed = (unsigned)getpid() ^ (unsigned)mono_ms() ^ 0x9e3779b9u;
    }
    for (int attempt = 0; attempt < 200; attempt++) {
        int port = PORT_LOW + (int)(rand_r(&seed) % (unsigned)(low - PORT_LOW));
        if (!reserve_port(f, port)) {
            continue;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in addr = {0};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons((uint16_t)port);
        int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
        close(fd);
        if (rc == 0) {
            return port;
        }
        int lock = f->port_locks[--f->port_locks_count]; /* in use all the same: let it go */
        if (lock >= 0) {
            close(lock);
        }
    }
    fail_msg("no free port on 127.0.0.1");
    return -1;
}

static void on_frame(size_t peer_index, const uint8_t *data, size_t len, void *arg)
{
    inbox_t *in = arg;
    in->frames++;
    if (peer_index != in->expect_peer) {
        in->foreign++;
        return;
    }
    if (in->expect[0] != '\0' && len == strlen(in->expect) && memcmp(data, in->expect, len) == 0) {
        in->seen = true;
    }
}

/* One turn of both nodes' loops: waits up to wait_ms for input, answers ZAP, drains. */
static void pump(fixture_t *f, int wait_ms)
{
    zmq_pollitem_t items[4] = {
        {transport_inbound_socket(f->ta), 0, ZMQ_POLLIN, 0},
        {transport_zap_socket(f->ta), 0, ZMQ_POLLIN, 0},
        {transport_inbound_socket(f->tb), 0, ZMQ_POLLIN, 0},
        {transport_zap_socket(f->tb), 0, ZMQ_POLLIN, 0},
    };
    (void)zmq_poll(items, 4, wait_ms);
    transport_handle_zap(f->ta, zap_now(f));
    transport_handle_zap(f->tb, zap_now(f));
    (void)transport_drain(f->ta, 64, on_frame, &f->in_a);
    (void)transport_drain(f->tb, 64, on_frame, &f->in_b);
}

/* Sends a new probe from `from` to its peer 0 on `lane` (again every RESEND_MS while the
 * connection is not up or the probe not seen) and pumps until `to` has it or the deadline.
 * Whether it came. */
static bool deliver(fixture_t *f, transport_t *from, inbox_t *to, transport_lane_t lane)
{
    snprintf(to->expect, sizeof to->expect, "probe-%u-%d", ++f->probes, (int)lane);
    to->seen = false;
    int64_t deadline = mono_ms() + DEADLINE_MS;
    int64_t next_send = 0;
    while (!to->seen && mono_ms() < deadline) {
        if (mono_ms() >= next_send) {
            (void)transport_send(from, 0, lane, (const uint8_t *)to->expect, strlen(to->expect));
            next_send = mono_ms() + RESEND_MS;
        }
        pump(f, 10);
    }
    return to->seen;
}

/* A to B on both lanes (B's two listeners) and B to A. */
static void assert_both_ways(fixture_t *f)
{
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STATEMENTS));
    assert_true(deliver(f, f->tb, &f->in_a, TRANSPORT_STREAM));
    assert_int_equal(f->in_a.foreign + f->in_b.foreign, 0);
}

static void endpoint_at(char *out, int port)
{
    snprintf(out, ENDPOINT, "tcp://127.0.0.1:%d", port);
}

/* Makes both transports; a port taken between the probe and the bind is picked again. */
static void start_pair(fixture_t *f)
{
    char err[256];
    for (int attempt = 0;; attempt++) {
        assert_true(attempt < 5);
        release_ports(f);
        endpoint_at(f->a_listen, free_port(f));
        endpoint_at(f->b_listen, free_port(f));
        endpoint_at(f->b_stream, free_port(f));
        endpoint_at(f->c_listen, free_port(f));
        transport_peer_t peer_b = {NAME_B, f->b_listen, f->b_stream, f->b->curve_public};
        transport_err_t rc =
            transport_new(f->ctx_a, f->a, f->a_listen, "", &peer_b, 1, &f->ta, err, sizeof err);
        if (rc == TRANSPORT_E_LISTEN) {
            fprintf(stderr, "# %s: picking other ports\n", err);
            continue;
        }
        assert_int_equal(rc, TRANSPORT_OK);
        transport_peer_t peers_b[2] = {
            {NAME_A, f->a_listen, f->a_listen, f->a->curve_public},
            {NAME_C, f->c_listen, f->c_listen, f->c->curve_public},
        };
        rc = transport_new(f->ctx_b, f->b, f->b_listen, f->b_stream, peers_b, 2, &f->tb, err,
                           sizeof err);
        if (rc == TRANSPORT_E_LISTEN) {
            fprintf(stderr, "# %s: picking other ports\n", err);
            transport_destroy(&f->ta);
            continue;
        }
        assert_int_equal(rc, TRANSPORT_OK);
        return;
    }
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_non_null(f->ctx_a = zmq_ctx_new());
    assert_non_null(f->ctx_b = zmq_ctx_new());
    assert_non_null(f->a = identity_generate());
    assert_non_null(f->a2 = identity_generate());
    assert_non_null(f->b = identity_generate());
    assert_non_null(f->b2 = identity_generate());
    assert_non_null(f->c = identity_generate());
    f->in_a.expect_peer = 0; /* B is A's only peer */
    f->in_b.expect_peer = 0; /* A is B's first */
    start_pair(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    transport_destroy(&f->ta);
    transport_destroy(&f->tb);
    zmq_ctx_term(f->ctx_a);
    zmq_ctx_term(f->ctx_b);
    identity_destroy(&f->a);
    identity_destroy(&f->a2);
    identity_destroy(&f->b);
    identity_destroy(&f->b2);
    identity_destroy(&f->c);
    release_ports(f);
    free(f);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* Frames flow both ways, on both of B's listeners, attributed to the sender. */
static void test_baseline(void **state)
{
    fixture_t *f = *state;
    assert_both_ways(f);
    transport_stats_t sb = transport_stats(f->tb);
    assert_true(sb.zap_admitted >= 2); /* A's two lanes */
    assert_int_equal(sb.zap_refused, 0);
    assert_int_equal(sb.zap_previous, 0);
}

/* B admits A's new key next to the old one until a time on its ZAP clock: A connects with
 * either until then, and with the old one no more after it. */
static void test_admit_new_client_key_with_overlap(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));

    int64_t until = zap_now(f) + 60000;
    assert_int_equal(transport_peer_admit(f->tb, 0, f->a2->curve_public, f->a->curve_public, until),
                     TRANSPORT_OK);
    /* A as its new self, still pinned to B's one server key. */
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a2, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_int_equal(transport_stats(f->ta).reconnects, 1);
    uint64_t previous = transport_stats(f->tb).zap_previous;
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STATEMENTS));
    assert_int_equal(transport_stats(f->tb).zap_previous, previous);

    /* The old key, inside the overlap: admitted, as the previous one, under A's name. */
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
    assert_true(transport_stats(f->tb).zap_previous > previous);

    /* The overlap ends (B's clock passes `until`); the old key connects again: refused, and
     * not a frame from A is taken in the meantime. */
    f->clock_offset += 61000;
    uint64_t refused = transport_stats(f->tb).zap_refused;
    uint64_t frames = f->in_b.frames;
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    snprintf(f->in_b.expect, sizeof f->in_b.expect, "refused-probe");
    f->in_b.seen = false;
    int sent = 0;
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while (transport_stats(f->tb).zap_refused < refused + 2 && mono_ms() < deadline) {
        sent +=
            transport_send(f->ta, 0, TRANSPORT_STREAM, (const uint8_t *)"refused-probe", 13) == 0;
        pump(f, 10);
    }
    assert_true(transport_stats(f->tb).zap_refused >= refused + 2); /* both lanes */
    assert_int_equal(sent, 0); /* no connection came up to send on */
    assert_int_equal(f->in_b.frames, frames);
    assert_false(f->in_b.seen);

    /* With the new key A is back. */
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a2, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
    assert_int_equal(f->in_b.foreign, 0);
}

/* Waits for a monitor event among `events` on `monitor`; its number or 0 at the deadline. */
static uint16_t wait_monitor_event(fixture_t *f, void *monitor, uint16_t events)
{
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while (mono_ms() < deadline) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            pump(f, 10);
            continue;
        }
        uint16_t event = 0;
        bool more = zmq_msg_more(&msg);
        if (zmq_msg_size(&msg) >= 2) {
            memcpy(&event, zmq_msg_data(&msg), sizeof event);
        }
        zmq_msg_close(&msg);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&msg);
            more = zmq_msg_recv(&msg, monitor, 0) >= 0 && zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
        if ((event & events) != 0) {
            return event;
        }
    }
    return 0;
}

/* B serves a new server key: A pinned to the old one fails its handshake with B's new socket;
 * pinned to the new one it delivers on both of B's listeners. And back to the first key, which
 * binds the same ports again right after closing them. */
static void test_rebind_new_server_key(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_both_ways(f);

    void *before = transport_inbound_socket(f->tb);
    uint64_t frames = f->in_b.frames;
    assert_int_equal(transport_rebind(f->tb, f->b2, err, sizeof err), TRANSPORT_OK);
    void *inbound = transport_inbound_socket(f->tb);
    assert_ptr_not_equal(inbound, before);
    assert_int_equal(transport_stats(f->tb).rebinds, 1);

    /* A's sockets, pinned to B's old key, reconnect: B's new socket cannot open their HELLO. */
    assert_int_equal(
        zmq_socket_monitor(inbound, "inproc://test-transport-monitor",
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
        0);
    void *monitor = zmq_socket(f->ctx_b, ZMQ_PAIR);
    assert_non_null(monitor);
    assert_int_equal(zmq_connect(monitor, "inproc://test-transport-monitor"), 0);
    uint16_t event = wait_monitor_event(
        f, monitor, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(event, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
    assert_int_equal(f->in_b.frames, frames);
    zmq_close(monitor);
    assert_int_equal(zmq_socket_monitor(inbound, NULL, 0), 0);

    /* Pinned to the new key, A delivers again on both listeners; B's outbound never moved. */
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b2->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_both_ways(f);

    /* Rebinding at once: the ports were released a moment ago, or are being. */
    assert_int_equal(transport_rebind(f->tb, f->b, err, sizeof err), TRANSPORT_OK);
    assert_int_equal(transport_stats(f->tb).rebinds, 2);
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_both_ways(f);
}

/* Malformed keys are refused with an error and change nothing: frames still flow. */
static void test_bad_input_changes_nothing(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_both_ways(f);

    char tilde[IDENTITY_CURVE_KEY_CHARS + 1]; /* '~' is not a Z85 character */
    memset(tilde, '~', IDENTITY_CURVE_KEY_CHARS);
    tilde[IDENTITY_CURVE_KEY_CHARS] = '\0';
    char over[IDENTITY_CURVE_KEY_CHARS + 1]; /* "#####" is more than 32 bits */
    memset(over, '#', IDENTITY_CURVE_KEY_CHARS);
    over[IDENTITY_CURVE_KEY_CHARS] = '\0';
    char longer[IDENTITY_CURVE_KEY_CHARS + 6];
    snprintf(longer, sizeof longer, "%s00000", f->a2->curve_public);
    const char *bad[] = {NULL, "", "short", tilde, over, longer};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(transport_peer_admit(f->tb, 0, bad[i], NULL, 0), TRANSPORT_E_KEY);
        if (bad[i] != NULL) {
            assert_int_equal(transport_peer_admit(f->tb, 0, f->a2->curve_public, bad[i], 0),
                             TRANSPORT_E_KEY);
            err[0] = '\0';
            assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a2, bad[i], err, sizeof err),
                             TRANSPORT_E_KEY);
            assert_true(err[0] != '\0');
        }
    }
    /* Another peer's key, as current or previous, would attribute one's frames to the other. */
    assert_int_equal(transport_peer_admit(f->tb, 0, f->c->curve_public, NULL, 0), TRANSPORT_E_KEY);
    assert_int_equal(transport_peer_admit(f->tb, 0, f->a2->curve_public, f->c->curve_public, 0),
                     TRANSPORT_E_KEY);
    assert_int_equal(transport_stats(f->ta).reconnects, 0);

    /* A bad server secret fails before the old socket is closed: it still serves. */
    identity_t broken = *f->b2;
    memcpy(broken.curve_secret, tilde, sizeof broken.curve_secret);
    void *inbound = transport_inbound_socket(f->tb);
    err[0] = '\0';
    assert_int_equal(transport_rebind(f->tb, &broken, err, sizeof err), TRANSPORT_E_SOCKET);
    sodium_memzero(&broken, sizeof broken);
    assert_true(err[0] != '\0');
    assert_ptr_equal(transport_inbound_socket(f->tb), inbound);
    assert_int_equal(transport_stats(f->tb).rebinds, 0);

    /* Frames flow on the connections there were... */
    assert_both_ways(f);
    /* ...and a new handshake with A's first key is admitted: none of the refused calls changed
     * what B admits (the one with a good current key and a bad previous one included). */
    uint64_t admitted = transport_stats(f->tb).zap_admitted;
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
    assert_true(transport_stats(f->tb).zap_admitted > admitted);
    assert_int_equal(transport_stats(f->tb).zap_refused, 0);
}

/* A peer admitted with no limit on its previous key keeps it; admitting again with no previous
 * key ends it at once. */
static void test_previous_without_limit_and_withdrawn(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_int_equal(transport_peer_admit(f->tb, 0, f->a2->curve_public, f->a->curve_public, 0),
                     TRANSPORT_OK);
    f->clock_offset += 365LL * 24 * 3600 * 1000;
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
    assert_true(transport_stats(f->tb).zap_previous >= 1);

    assert_int_equal(transport_peer_admit(f->tb, 0, f->a2->curve_public, NULL, 12345),
                     TRANSPORT_OK);
    uint64_t refused = transport_stats(f->tb).zap_refused;
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while (transport_stats(f->tb).zap_refused == refused && mono_ms() < deadline) {
        pump(f, 10);
    }
    assert_true(transport_stats(f->tb).zap_refused > refused);
    assert_int_equal(transport_peer_reconnect(f->ta, 0, f->a2, f->b->curve_public, err, sizeof err),
                     TRANSPORT_OK);
    assert_true(deliver(f, f->ta, &f->in_b, TRANSPORT_STREAM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_baseline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_new_client_key_with_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebind_new_server_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_without_limit_and_withdrawn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, test_sodium_setup, NULL);
}
