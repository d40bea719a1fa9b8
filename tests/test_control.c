/*
 * Unit tests for node/net/control.c, the client side of the control socket that `corridor
 * send`, `status` and `testnet` use to talk to a running node.
 *
 * An operator's command must tell "no node runs here" apart from "the node did not answer",
 * with a sentence that says which home and what to do; a running node must be recognised by
 * its lock alone; and the socket path must work for homes whose path is too long for an ipc://
 * address. Here a fake node (a lock held by this process and a ROUTER socket answering in a
 * thread) stands in for `corridor run`, so the client is tested without starting one.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "control.h"
#include "corridor/limits.h"

/* ---- fixture -------------------------------------------------------------------------------- */

typedef struct {
    char *dir;          /* scratch directory, removed at teardown */
    char cwd[PATH_MAX]; /* the working directory before the test (control_connect may
                           change it for a long home) */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir();
    assert_non_null(getcwd(f->cwd, sizeof f->cwd));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(chdir(f->cwd), 0);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- a fake node ---------------------------------------------------------------------------- */

typedef struct {
    void *ctx;
    void *router;
    int lock_fd;
    pthread_t thread;
    bool started;
    int delay_ms; /* before answering */
    bool answer;  /* false: read the request and never answer */
    bool unlock;  /* release the lock after reading the request (the node "dies") */
    char request[256];
    const char *reply;
} fake_node_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void *fake_node_main(void *arg)
{
    fake_node_t *n = arg;
    zmq_pollitem_t item = {n->router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 10000) != 1) {
        return NULL;
    }
    zmq_msg_t parts[3];
    int got = 0;
    int more = 1;
    while (more && got < 3) {
        zmq_msg_init(&parts[got]);
        if (zmq_msg_recv(&parts[got], n->router, 0) < 0) {
            zmq_msg_close(&parts[got]);
            break;
        }
        more = zmq_msg_more(&parts[got]);
        got++;
    }
    if (got == 3) {
        size_t len = zmq_msg_size(&parts[2]);
        len = len < sizeof n->request - 1 ? len : sizeof n->request - 1;
        memcpy(n->request, zmq_msg_data(&parts[2]), len);
        n->request[len] = '\0';
    }
    if (n->unlock) {
        flock(n->lock_fd, LOCK_UN);
    }
    sleep_ms(n->delay_ms);
    if (n->answer && got == 3) {
        zmq_msg_send(&parts[0], n->router, ZMQ_SNDMORE); /* the REQ's identity */
        zmq_send(n->router, "", 0, ZMQ_SNDMORE);
        zmq_send(n->router, n->reply, strlen(n->reply), 0);
        zmq_msg_close(&parts[1]); /* parts[0] went with the send */
        zmq_msg_close(&parts[2]);
    } else {
        for (int i = 0; i < got; i++) {
            zmq_msg_close(&parts[i]);
        }
    }
    return NULL;
}

/* Locks `lock_path` as `corridor run` does (exclusive, held). */
static int hold_lock(const char *lock_path)
{
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    return fd;
}

/* Starts a fake node in `home` (absolute): holds its lock, binds its control socket (from
 * inside the home when the path is too long, as the node does) and answers in a thread. */
static void fake_node_start(fake_node_t *n, const char *home)
{
    char path[CORRIDOR_PATH_LEN_MAX];
    snprintf(path, sizeof path, "%s/%s", home, CONTROL_DIR);
    assert_int_equal(mkdir(path, CONTROL_DIR_MODE), 0);
    snprintf(path, sizeof path, "%s/%s", home, CONTROL_LOCK_FILE);
    n->lock_fd = hold_lock(path);
    n->ctx = zmq_ctx_new();
    assert_non_null(n->ctx);
    n->router = zmq_socket(n->ctx, ZMQ_ROUTER);
    assert_non_null(n->router);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(n->router, ZMQ_LINGER, &linger, sizeof linger), 0);
    char endpoint[CORRIDOR_PATH_LEN_MAX + 16];
    bool needs_chdir = false;
    assert_int_equal(control_endpoint(home, endpoint, sizeof endpoint, &needs_chdir), 0);
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    if (needs_chdir) {
        assert_int_equal(chdir(home), 0);
    }
    if (zmq_bind(n->router, endpoint) != 0) {
        fail_msg("bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
    }
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(pthread_create(&n->thread, NULL, fake_node_main, n), 0);
    n->started = true;
}

static void fake_node_stop(fake_node_t *n)
{
    if (n->started) {
        pthread_join(n->thread, NULL);
    }
    zmq_close(n->router);
    zmq_ctx_term(n->ctx);
    close(n->lock_fd);
}

static json_t *status_request(void)
{
    json_t *req = json_pack("{s:s}", "cmd", "status");
    assert_non_null(req);
    return req;
}

/* ---- control_strerror ----------------------------------------------------------------------- */

static void test_strerror_covers_every_value(void **state)
{
    (void)state;
    static const control_err_t all[] = {CONTROL_OK, CONTROL_E_NOT_RUNNING, CONTROL_E_TIMEOUT,
                                        CONTROL_E_INTERNAL, CONTROL_E_REFUSED};
    const char *unknown = control_strerror((control_err_t)99);
    assert_non_null(unknown);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *text = control_strerror(all[i]);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, unknown);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(text, control_strerror(all[j]));
        }
    }
    assert_string_equal(control_strerror(CONTROL_OK), "ok");
}

/* ---- control_node_running ------------------------------------------------------------------- */

static void test_not_running_in_a_home_never_started(void **state)
{
    fixture_t *f = *state;
    assert_false(control_node_running(f->dir)); /* no lock file at all */
    char *missing = test_path(f->dir, "no-such-home");
    assert_false(control_node_running(missing));
    free(missing);
}

static void test_running_follows_the_lock(void **state)
{
    fixture_t *f = *state;
    char *lock = test_path(f->dir, CONTROL_LOCK_FILE);
    /* a lock file left by a node that stopped: not running */
    test_write_file(lock, "", 0, 0600);
    assert_false(control_node_running(f->dir));
    /* held as `corridor run` holds it */
    int fd = hold_lock(lock);
    assert_true(control_node_running(f->dir));
    assert_true(control_node_running(f->dir)); /* asking takes nothing away */
    /* checking did not leave a lock behind: the holder can still drop and retake it */
    assert_int_equal(flock(fd, LOCK_UN), 0);
    assert_false(control_node_running(f->dir));
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    assert_true(control_node_running(f->dir));
    close(fd);
    assert_false(control_node_running(f->dir));
    /* and a check does not block a node starting afterwards */
    fd = hold_lock(lock);
    close(fd);
    free(lock);
}

static void test_running_false_for_a_path_too_long(void **state)
{
    (void)state;
    char *home = malloc(CORRIDOR_PATH_LEN_MAX + 10);
    assert_non_null(home);
    memset(home, 'x', CORRIDOR_PATH_LEN_MAX + 9);
    home[CORRIDOR_PATH_LEN_MAX + 9] = '\0';
    assert_false(control_node_running(home));
    free(home);
}

/* ---- control_call without a node ------------------------------------------------------------ */

static void test_call_without_node_is_not_running(void **state)
{
    fixture_t *f = *state;
    json_t *req = status_request();
    json_t *reply = (json_t *)0x1; /* must be reset */
    char err[512] = "";
    assert_int_equal(control_call(f->dir, req, 1000, &reply, err, sizeof err),
                     CONTROL_E_NOT_RUNNING);
    assert_null(reply);
    /* the sentence names the home and says what to do */
    assert_non_null(strstr(err, f->dir));
    assert_non_null(strstr(err, "not running"));
    assert_non_null(strstr(err, "corridor run"));

    /* a stale lock file changes nothing */
    char *lock = test_path(f->dir, CONTROL_LOCK_FILE);
    test_write_file(lock, "", 0, 0600);
    err[0] = '\0';
    assert_int_equal(control_call(f->dir, req, 1000, &reply, err, sizeof err),
                     CONTROL_E_NOT_RUNNING);
    assert_null(reply);
    assert_non_null(strstr(err, "not running"));
    free(lock);

    /* control_connect alone says the same, and gives no client */
    control_client_t *c = (control_client_t *)0x1;
    err[0] = '\0';
    assert_int_equal(control_connect(f->dir, &c, err, sizeof err), CONTROL_E_NOT_RUNNING);
    assert_null(c);
    assert_non_null(strstr(err, f->dir));
    control_disconnect(&c); /* of NULL: harmless */
    json_decref(req);
}

static void test_call_without_node_small_err_buffer(void **state)
{
    fixture_t *f = *state;
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[16];
    memset(err, 'z', sizeof err);
    assert_int_equal(control_call(f->dir, req, 1000, &reply, err, sizeof err),
                     CONTROL_E_NOT_RUNNING);
    assert_int_equal(strnlen(err, sizeof err), sizeof err - 1); /* cut, still terminated */
    json_decref(req);
}

/* ---- control_endpoint ----------------------------------------------------------------------- */

static void test_endpoint_short_home(void **state)
{
    (void)state;
    char out[256];
    bool needs_chdir = true;
    assert_int_equal(control_endpoint("/srv/corridor/ru", out, sizeof out, &needs_chdir), 0);
    assert_false(needs_chdir);
    assert_string_equal(out, "ipc:///srv/corridor/ru/control/socket");
    assert_int_equal(control_endpoint("ru", out, sizeof out, &needs_chdir), 0);
    assert_false(needs_chdir);
    assert_string_equal(out, "ipc://ru/control/socket");
}

static void test_endpoint_long_home(void **state)
{
    (void)state;
    /* the socket path (home + "/control/socket") fits in 107 bytes, or the relative name is
     * used from inside the home */
    size_t suffix = strlen("/" CONTROL_SOCKET);
    char home[256], out[512];
    bool needs_chdir = false;

    memset(home, 'h', CONTROL_IPC_PATH_MAX - suffix);
    home[CONTROL_IPC_PATH_MAX - suffix] = '\0'; /* exactly 107 with the suffix */
    assert_int_equal(control_endpoint(home, out, sizeof out, &needs_chdir), 0);
    assert_false(needs_chdir);
    assert_int_equal(strlen(out), strlen("ipc://") + CONTROL_IPC_PATH_MAX);

    memset(home, 'h', CONTROL_IPC_PATH_MAX - suffix + 1);
    home[CONTROL_IPC_PATH_MAX - suffix + 1] = '\0'; /* 108: too long */
    needs_chdir = false;
    assert_int_equal(control_endpoint(home, out, sizeof out, &needs_chdir), 0);
    assert_true(needs_chdir);
    assert_string_equal(out, "ipc://" CONTROL_SOCKET);

    memset(home, 'h', 250);
    home[250] = '\0';
    assert_int_equal(control_endpoint(home, out, sizeof out, &needs_chdir), 0);
    assert_true(needs_chdir);
    assert_string_equal(out, "ipc://" CONTROL_SOCKET);
}

static void test_endpoint_output_too_small(void **state)
{
    (void)state;
    char out[16];
    bool needs_chdir = false;
    assert_int_equal(control_endpoint("/srv/corridor/ru", out, sizeof out, &needs_chdir), -1);
    char exact[sizeof "ipc://ru/control/socket"];
    assert_int_equal(control_endpoint("ru", exact, sizeof exact, &needs_chdir), 0);
    assert_int_equal(control_endpoint("ru", exact, sizeof exact - 1, &needs_chdir), -1);
}

/* ---- control_call with a (fake) node -------------------------------------------------------- */

static void test_call_gets_the_reply(void **state)
{
    fixture_t *f = *state;
    fake_node_t n = {.answer = true, .reply = "{\"ok\":true,\"node\":\"BKRURUMM\"}"};
    fake_node_start(&n, f->dir);
    assert_true(control_node_running(f->dir));
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[512] = "";
    control_err_t rc = control_call(f->dir, req, 5000, &reply, err, sizeof err);
    fake_node_stop(&n);
    if (rc != CONTROL_OK) {
        fail_msg("control_call: %s (%s)", control_strerror(rc), err);
    }
    assert_non_null(reply);
    assert_true(json_is_true(json_object_get(reply, "ok")));
    assert_string_equal(json_string_value(json_object_get(reply, "node")), "BKRURUMM");
    assert_string_equal(n.request, "{\"cmd\":\"status\"}"); /* compact JSON, as sent */
    json_decref(reply);
    json_decref(req);
}

static void test_call_reply_not_json(void **state)
{
    fixture_t *f = *state;
    fake_node_t n = {.answer = true, .reply = "not json {"};
    fake_node_start(&n, f->dir);
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[512] = "";
    control_err_t rc = control_call(f->dir, req, 5000, &reply, err, sizeof err);
    fake_node_stop(&n);
    assert_int_equal(rc, CONTROL_E_INTERNAL);
    assert_null(reply);
    assert_non_null(strstr(err, "not JSON"));
    json_decref(req);
}

static void test_call_times_out(void **state)
{
    fixture_t *f = *state;
    fake_node_t n = {.answer = false};
    fake_node_start(&n, f->dir);
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[512] = "";
    control_err_t rc = control_call(f->dir, req, 300, &reply, err, sizeof err);
    fake_node_stop(&n);
    assert_int_equal(rc, CONTROL_E_TIMEOUT);
    assert_null(reply);
    assert_non_null(strstr(err, "300 ms"));
    json_decref(req);
}

static void test_call_node_stops_before_answering(void **state)
{
    fixture_t *f = *state;
    /* the node reads the request, then its lock goes: reported at the next slice, not at the
     * 10 s timeout */
    fake_node_t n = {.answer = false, .unlock = true};
    fake_node_start(&n, f->dir);
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[512] = "";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    control_err_t rc = control_call(f->dir, req, 10000, &reply, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fake_node_stop(&n);
    assert_int_equal(rc, CONTROL_E_NOT_RUNNING);
    assert_non_null(strstr(err, "stopped before answering"));
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 5000);
    json_decref(req);
}

/* A home whose socket path is too long for ipc://: makes DIR/<long name> and returns the long
 * name (static). */
static const char *make_long_home(const char *dir, char *abs, size_t abs_size)
{
    static char name[160];
    memset(name, 'L', 150);
    name[150] = '\0';
    snprintf(abs, abs_size, "%s/%s", dir, name);
    assert_int_equal(mkdir(abs, 0700), 0);
    return name;
}

static void test_call_long_absolute_home(void **state)
{
    fixture_t *f = *state;
    char home[CORRIDOR_PATH_LEN_MAX];
    make_long_home(f->dir, home, sizeof home);
    bool needs_chdir = false;
    char endpoint[512];
    assert_int_equal(control_endpoint(home, endpoint, sizeof endpoint, &needs_chdir), 0);
    assert_true(needs_chdir);
    /* answering late: the client looks at the node's lock while it waits */
    fake_node_t n = {.answer = true, .reply = "{\"ok\":true}", .delay_ms = 800};
    fake_node_start(&n, home);
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[512] = "";
    control_err_t rc = control_call(home, req, 5000, &reply, err, sizeof err);
    fake_node_stop(&n);
    if (rc != CONTROL_OK) {
        fail_msg("control_call: %s (%s)", control_strerror(rc), err);
    }
    assert_true(json_is_true(json_object_get(reply, "ok")));
    json_decref(reply);
    json_decref(req);
}

/* A relative home too long for ipc:// (the client enters it to connect): the lock check while
 * waiting for a late answer, and any later call in the same process, must still find the
 * node (they did not, before the client kept the home absolute and went back at disconnect). */
static void call_failed(control_err_t rc, const char *err, const char *what)
{
    fail_msg("%s: %s (%s)", what, control_strerror(rc), err);
}

static void test_call_long_relative_home(void **state)
{
    fixture_t *f = *state;
    /* `--home` as given on the command line is often relative. With a path too long for
     * ipc://, the client must still find the node's lock while it waits for a late answer. */
    char abs[CORRIDOR_PATH_LEN_MAX];
    const char *rel = make_long_home(f->dir, abs, sizeof abs);
    fake_node_t n = {.answer = true, .reply = "{\"ok\":true}", .delay_ms = 800};
    fake_node_start(&n, abs);
    assert_int_equal(chdir(f->dir), 0);
    assert_true(control_node_running(rel));
    json_t *req = status_request();
    json_t *reply = NULL;
    char err[512] = "";
    control_err_t rc = control_call(rel, req, 5000, &reply, err, sizeof err);
    fake_node_stop(&n);
    json_decref(reply);
    json_decref(req);
    if (rc != CONTROL_OK) {
        call_failed(rc, err, "late answer, relative long home");
    }
}

static void test_two_calls_to_long_relative_homes(void **state)
{
    fixture_t *f = *state;
    /* what `corridor testnet status --dir REL` does: one process asks node after node */
    char abs1[CORRIDOR_PATH_LEN_MAX], abs2[CORRIDOR_PATH_LEN_MAX];
    char rel1[200], rel2[210];
    snprintf(rel1, sizeof rel1, "%s", make_long_home(f->dir, abs1, sizeof abs1));
    snprintf(abs2, sizeof abs2, "%s/%s", f->dir, "M");
    assert_int_equal(mkdir(abs2, 0700), 0);
    snprintf(rel2, sizeof rel2, "M/%s", rel1);
    snprintf(abs2, sizeof abs2, "%s/%s", f->dir, rel2);
    assert_int_equal(mkdir(abs2, 0700), 0);
    fake_node_t n1 = {.answer = true, .reply = "{\"node\":1}"};
    fake_node_t n2 = {.answer = true, .reply = "{\"node\":2}"};
    fake_node_start(&n1, abs1);
    fake_node_start(&n2, abs2);
    assert_int_equal(chdir(f->dir), 0);
    json_t *req = status_request();
    json_t *reply1 = NULL, *reply2 = NULL;
    char err1[512] = "", err2[512] = "";
    control_err_t rc1 = control_call(rel1, req, 5000, &reply1, err1, sizeof err1);
    control_err_t rc2 = control_call(rel2, req, 1000, &reply2, err2, sizeof err2);
    /* unblock the second fake node if the call never reached it */
    if (rc2 != CONTROL_OK) {
        void *ctx = zmq_ctx_new();
        void *s = zmq_socket(ctx, ZMQ_REQ);
        int linger = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        assert_int_equal(chdir(abs2), 0);
        zmq_connect(s, "ipc://" CONTROL_SOCKET);
        zmq_send(s, "{}", 2, 0);
        char buf[64];
        zmq_recv(s, buf, sizeof buf, 0);
        zmq_close(s);
        zmq_ctx_term(ctx);
    }
    fake_node_stop(&n1);
    fake_node_stop(&n2);
    if (rc1 != CONTROL_OK) {
        fail_msg("first call: %s (%s)", control_strerror(rc1), err1);
    }
    assert_int_equal(json_integer_value(json_object_get(reply1, "node")), 1);
    json_decref(reply1);
    json_decref(req);
    if (rc2 != CONTROL_OK) {
        call_failed(rc2, err2, "second call in the same process");
    }
    assert_int_equal(json_integer_value(json_object_get(reply2, "node")), 2);
    json_decref(reply2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_covers_every_value),
        T(test_not_running_in_a_home_never_started),
        T(test_running_follows_the_lock),
        T(test_running_false_for_a_path_too_long),
        T(test_call_without_node_is_not_running),
        T(test_call_without_node_small_err_buffer),
        cmocka_unit_test(test_endpoint_short_home),
        cmocka_unit_test(test_endpoint_long_home),
        cmocka_unit_test(test_endpoint_output_too_small),
        T(test_call_gets_the_reply),
        T(test_call_reply_not_json),
        T(test_call_times_out),
        T(test_call_node_stops_before_answering),
        T(test_call_long_absolute_home),
        T(test_call_long_relative_home),
        T(test_two_calls_to_long_relative_homes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
