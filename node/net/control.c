/* The control socket's client side and shared names; see control.h. */
#include "control.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "corridor/limits.h"

#define CONTROL_POLL_SLICE_MS 500

int control_endpoint(const char *home, char *out, size_t out_size, bool *needs_chdir)
{
    assert(home != NULL && out != NULL && needs_chdir != NULL);
    size_t path_len = strlen(home) + 1 + strlen(CONTROL_SOCKET);
    *needs_chdir = path_len > CONTROL_IPC_PATH_MAX;
    int n = *needs_chdir ? snprintf(out, out_size, "ipc://%s", CONTROL_SOCKET)
                         : snprintf(out, out_size, "ipc://%s/%s", home, CONTROL_SOCKET);
    return n > 0 && (size_t)n < out_size ? 0 : -1;
}

bool control_node_running(const char *home)
{
    char path[CORRIDOR_PATH_LEN_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", home, CONTROL_LOCK_FILE);
    if (n < 0 || (size_t)n >= sizeof path) {
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false; /* never started here */
    }
    bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases the shared lock if we got it */
    return held;
}

#define LOCK_ATTEMPTS 50 /* x LOCK_PAUSE_MS: how long a probe's shared lock may last */
#define LOCK_PAUSE_MS 10

int control_lock_home(const char *lock_path)
{
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    for (int attempt = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; attempt++) {
        if (errno != EWOULDBLOCK || attempt == LOCK_ATTEMPTS) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        struct timespec pause = {0, LOCK_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return fd;
}

#define CONTROL_MONITOR "inproc://corridor-control-monitor"

struct control_client {
    char home[CORRIDOR_PATH_LEN_MAX]; /* absolute: the working directory may be the home's */
    int cwd_fd; /* the working directory before a chdir into the home (-1: none), restored at
                 * disconnect: libzmq resolves a relative ipc path whenever it (re)connects */
    void *ctx;
    void *sock;    /* REQ: one request, one reply, in turn */
    void *monitor; /* PAIR: the REQ socket's failed handshakes (a refused user) */
};

/* Says in err why the node of `home` cannot be reached (it holds no lock). */
static control_err_t not_running(const char *home, char *err, size_t err_size)
{
    char lock[CORRIDOR_PATH_LEN_MAX];
    int n = snprintf(lock, sizeof lock, "%s/%s", home, CONTROL_LOCK_FILE);
    if (n > 0 && (size_t)n < sizeof lock && access(lock, F_OK) != 0 && errno == EACCES) {
        snprintf(err, err_size,
                 "cannot reach the node of %s: permission denied (its home belongs to "
                 "another user)",
                 home);
    } else {
        snprintf(err, err_size, "the node of %s is not running (start it with corridor run)", home);
    }
    return CONTROL_E_NOT_RUNNING;
}

const char *control_strerror(control_err_t err)
{
    switch (err) {
    case CONTROL_OK:
        return "ok";
    case CONTROL_E_NOT_RUNNING:
        return "the node is not running";
    case CONTROL_E_TIMEOUT:
        return "the node did not answer in time";
    case CONTROL_E_INTERNAL:
        return "local failure talking to the node";
    case CONTROL_E_REFUSED:
        return "the node refused this user";
    }
    return "unknown control error";
}

control_err_t control_connect(const char *home, control_client_t **out, char *err, size_t err_size)
{
    assert(home != NULL && out != NULL);
    *out = NULL;
    if (!control_node_running(home)) {
        return not_running(home, err, err_size);
    }
    char endpoint[CORRIDOR_PATH_LEN_MAX + 16];
    bool needs_chdir = false;
    control_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, err_size, "out of memory");
        return CONTROL_E_INTERNAL;
    }
    c->cwd_fd = -1;
    char absolute[PATH_MAX];
    bool resolved = realpath(home, absolute) != NULL && strlen(absolute) < sizeof c->home;
    snprintf(c->home, sizeof c->home, "%s", resolved ? absolute : home);
    if (control_endpoint(c->home, endpoint, sizeof endpoint, &needs_chdir) != 0 ||
        (needs_chdir && ((c->cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
                         chdir(c->home) != 0))) {
        snprintf(err, err_size, "cannot reach %s: %s", home, strerror(errno));
        control_disconnect(&c);
        return CONTROL_E_INTERNAL;
    }
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx != NULL ? zmq_socket(c->ctx, ZMQ_REQ) : NULL;
    int linger = 0;
    if (c->sock == NULL || zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_socket_monitor(c->sock, CONTROL_MONITOR, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
        (c->monitor = zmq_socket(c->ctx, ZMQ_PAIR)) == NULL ||
        zmq_setsockopt(c->monitor, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(c->monitor, CONTROL_MONITOR) != 0 || zmq_connect(c->sock, endpoint) != 0) {
        snprintf(err, err_size, "cannot talk to the node: %s", zmq_strerror(zmq_errno()));
        control_disconnect(&c);
        return CONTROL_E_INTERNAL;
    }
    *out = c;
    return CONTROL_OK;
}

void control_disconnect(control_client_t **self_p)
{
    assert(self_p != NULL);
    control_client_t *c = *self_p;
    if (c == NULL) {
        return;
    }
    if (c->monitor != NULL) {
        zmq_close(c->monitor);
    }
    if (c->sock != NULL) {
        zmq_close(c->sock);
    }
    if (c->ctx != NULL) {
        zmq_ctx_term(c->ctx);
    }
    if (c->cwd_fd >= 0) {
        if (fchdir(c->cwd_fd) != 0) {
            /* the directory we came from is gone: nothing relative is left to resolve */
        }
        close(c->cwd_fd);
    }
    free(c);
    *self_p = NULL;
}

control_err_t control_request(control_client_t *c, const json_t *request, int timeout_ms,
                              json_t **reply, char *err, size_t err_size)
{
    assert(c != NULL && request != NULL && reply != NULL);
    *reply = NULL;
    control_err_t rc = CONTROL_E_INTERNAL;
    char *text = json_dumps(request, JSON_COMPACT);
    if (text == NULL || zmq_send(c->sock, text, strlen(text), 0) < 0) {
        snprintf(err, err_size, "cannot talk to the node: %s",
                 text == NULL ? "out of memory" : zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    /* Wait in slices: a node that dies meanwhile is reported at once, not at the timeout. */
    zmq_pollitem_t items[2] = {{c->sock, 0, ZMQ_POLLIN, 0}, {c->monitor, 0, ZMQ_POLLIN, 0}};
    int ready = 0;
    for (int waited = 0; ready == 0 && waited < timeout_ms; waited += CONTROL_POLL_SLICE_MS) {
        int slice = timeout_ms - waited < CONTROL_POLL_SLICE_MS ? timeout_ms - waited
                                                                : CONTROL_POLL_SLICE_MS;
        ready = zmq_poll(items, 2, slice);
        if (ready > 0 && (items[1].revents & ZMQ_POLLIN) != 0) {
            snprintf(err, err_size,
                     "the node of %s refused this user: only its own user and root may "
                     "control it",
                     c->home);
            rc = CONTROL_E_REFUSED;
            goto cleanup;
        }
        if (ready == 0 && !control_node_running(c->home)) {
            snprintf(err, err_size, "the node of %s stopped before answering", c->home);
            rc = CONTROL_E_NOT_RUNNING;
            goto cleanup;
        }
    }
    if (ready <= 0) {
        snprintf(err, err_size, "no answer from the node within %d ms", timeout_ms);
        rc = CONTROL_E_TIMEOUT;
        goto cleanup;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
        zmq_msg_close(&msg);
        snprintf(err, err_size, "cannot read the node's answer: %s", zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    json_error_t jerr;
    *reply = json_loadb(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, &jerr);
    zmq_msg_close(&msg);
    if (*reply == NULL) {
        snprintf(err, err_size, "the node's answer is not JSON: %s", jerr.text);
        goto cleanup;
    }
    rc = CONTROL_OK;

cleanup:
    free(text);
    return rc;
}

control_err_t control_call(const char *home, const json_t *request, int timeout_ms, json_t **reply,
                           char *err, size_t err_size)
{
    assert(home != NULL && request != NULL && reply != NULL);
    *reply = NULL;
    control_client_t *c = NULL;
    control_err_t rc = control_connect(home, &c, err, err_size);
    if (rc == CONTROL_OK) {
        rc = control_request(c, request, timeout_ms, reply, err, err_size);
    }
    control_disconnect(&c);
    return rc;
}
