/*
 * The control socket: how `corridor send` and `corridor status` talk to a running node.
 *
 * An ipc:// socket inside the home (control/socket), reachable only by the home's owner: the
 * home is mode 0700 (`run` refuses another mode), and the socket is bound inside a directory
 * created 0700, so there is no moment when another user could connect. Every connection also
 * passes the ZAP handler (domain TRANSPORT_CONTROL_DOMAIN), which reads the client's uid from
 * the kernel (SO_PEERCRED, as libzmq reports it) and admits only this node's own uid and root;
 * each request carries that uid, so operator actions are recorded with who made them.
 * Requests and replies are one JSON document each (jansson) over ZeroMQ REQ/ROUTER. ipc paths
 * are limited to 107 bytes; when the home's path is longer, both sides use the relative name
 * from inside the home (the node runs there).
 *
 * Requests:
 *   {"cmd":"status"}
 *   {"cmd":"send","wait_ms":N,"items":[{"to","amount_minor","currency","uetr"?,"debtor"?,
 *      "creditor"?,"remittance"?}...]}
 * Replies: {"ok":true,...} or {"ok":false,"error":"...","exit":CODE}. A send reply comes only
 * after the pending entries and their outbox messages are committed, and with wait_ms > 0
 * only once every item is final or the wait is over ("timeout":true).
 */
#ifndef CORRIDOR_CONTROL_H
#define CORRIDOR_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CONTROL_DIR          "control"
#define CONTROL_DIR_MODE     0700
#define CONTROL_SOCKET       CONTROL_DIR "/socket"
#define CONTROL_LOCK_FILE    "node.lock"
#define CONTROL_REQUEST_MAX  (8 * 1024 * 1024) /* bytes of one request (a batch) */
#define CONTROL_ITEMS_MAX    10000             /* settlements in one request */
#define CONTROL_IPC_PATH_MAX 107               /* sun_path minus its NUL */

/* Writes the endpoint for the control socket of `home` into out: ipc://HOME/control/socket if
 * it fits, else ipc://control/socket (then *needs_chdir is true: use it from inside the home). */
int control_endpoint(const char *home, char *out, size_t out_size, bool *needs_chdir);

/* Whether a node process holds the home's lock (a running node). */
bool control_node_running(const char *home);

/* Takes the home's lock for good, as `corridor run` does (`lock_path`: its CONTROL_LOCK_FILE),
 * waiting out a client's instant shared lock (control_node_running). Returns the descriptor
 * that holds it until closed, or -1 with errno (EWOULDBLOCK: a node runs there). */
int control_lock_home(const char *lock_path);

typedef enum {
    CONTROL_OK = 0,
    CONTROL_E_NOT_RUNNING, /* no node holds the home */
    CONTROL_E_TIMEOUT,     /* no reply in time */
    CONTROL_E_INTERNAL,    /* local failure (memory, socket) */
    CONTROL_E_REFUSED,     /* the node refused this user (not its own, not root) */
} control_err_t;

/* What an outcome means, in a few words (the err buffers below say more). */
const char *control_strerror(control_err_t err);

/* A connection to one node's control socket, for a command that sends many requests (a
 * batch goes out in chunks: one ZeroMQ context for all of them, not one per chunk). */
typedef struct control_client control_client_t;

/* Connects to the node of `home`. A home whose socket path is too long for ipc is entered
 * (chdir) until the client disconnects. */
control_err_t control_connect(const char *home, control_client_t **out, char *err, size_t err_size);
void control_disconnect(control_client_t **self_p);

/* Sends one request and waits up to timeout_ms for its reply. After anything but CONTROL_OK
 * the client can only be disconnected. */
control_err_t control_request(control_client_t *c, const json_t *request, int timeout_ms,
                              json_t **reply, char *err, size_t err_size);

/* connect + request + disconnect. */
control_err_t control_call(const char *home, const json_t *request, int timeout_ms, json_t **reply,
                           char *err, size_t err_size);

#endif
