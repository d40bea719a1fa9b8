/*
 * Real `corridor` processes for the integration tests: homes in a scratch directory, free
 * loopback ports, commands run by fork/exec (never a shell: peer cards hold characters a shell
 * would interpret), nodes started with their log in the scratch directory, and every child
 * killed and reaped at the end. Children get the test's environment without CORRIDOR_FAULTS.
 *
 * A cluster owns a scratch directory and up to CLUSTER_NODES_MAX nodes. Every wait is bounded;
 * on a timeout the helper kills what it started and fails the test with cmocka. The test marks
 * a cluster `passed` as its last statement: cluster_destroy (called from the cmocka teardown,
 * which also runs after a failed assertion) prints the tail of every node's log when it is not
 * set, and keeps the scratch directory for a post-mortem.
 */
#ifndef CORRIDOR_TEST_NODES_H
#define CORRIDOR_TEST_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "corridor/limits.h"

#define CLUSTER_NODES_MAX   4
#define CLUSTER_SPAWNED_MAX 8
#define NODE_CARD_LEN_MAX   1024
#define NODE_READY_MS       15000 /* from `corridor run` to a status answer */
#define NODE_STOP_MS        20000 /* from SIGTERM to exit (the contract's bound) */
#define NODE_CMD_TIMEOUT_MS 60000 /* default bound for one command-line call */
#define NODE_LOG_TAIL_LINES 40

/* One node: its home and, while it runs, its process. */
typedef struct {
    char name[16];                /* node code */
    char *home;                   /* home directory */
    char *log;                    /* stderr of every `corridor run` of this home */
    char endpoint[64];            /* tcp://127.0.0.1:PORT */
    char stream[64];              /* tcp://127.0.0.1:STREAM_PORT: where peers send the stream */
    char card[NODE_CARD_LEN_MAX]; /* its peer card, as `init` printed it */
    int port;                     /* its listen port */
    int stream_port;              /* its stream port */
    pid_t pid;                    /* the running `corridor run`, or 0 */
    int last_exit;                /* exit status of the last run (-1: killed by a signal) */
} tnode_t;

/* A command running in the background, its output going to files. */
typedef struct {
    pid_t pid;      /* 0: a free slot */
    char *out_path; /* its stdout */
    char *err_path; /* its stderr */
} spawned_t;

/* A scratch directory with nodes and the background commands started in it. */
typedef struct {
    char *dir;                              /* scratch directory */
    tnode_t nodes[CLUSTER_NODES_MAX];       /* nodes made so far */
    size_t count;                           /* entries used in nodes */
    spawned_t spawned[CLUSTER_SPAWNED_MAX]; /* background commands not reaped yet */
    unsigned cmd_seq;                       /* names the files of captured output */
    bool passed;                            /* set by the test as its last statement */
    int port_locks[2 * CLUSTER_NODES_MAX];  /* ports reserved for this cluster's nodes */
    size_t port_locks_count;
} cluster_t;

/* What a finished command left. */
typedef struct {
    int rc;    /* exit status; -1 if it was killed (timeout or signal) */
    char *out; /* its stdout, NUL-terminated */
    char *err; /* its stderr, NUL-terminated */
} cmd_result_t;

void cmd_result_free(cmd_result_t *r);

/* A fresh scratch directory; asserts on failure. */
cluster_t *cluster_new(void);

/* Kills (SIGKILL) and reaps every node and background command, prints log tails unless the
 * test passed, removes the scratch directory if it did (and CORRIDOR_TEST_KEEP is not 1).
 * Sets *self_p to NULL; NULL is fine. */
void cluster_destroy(cluster_t **self_p);

/* cmocka's group fixtures for a test file whose tests each get a fresh cluster as *state. */
int cluster_setup(void **state);
int cluster_teardown(void **state);

/* A free TCP port on 127.0.0.1 outside the kernel's ephemeral range (a node that is down
 * would otherwise see a peer's reconnect attempts take its port, or connect to itself),
 * reserved for the cluster's life: test programs that ctest runs side by side take a lock
 * file per port ($TMPDIR/corridor-test-ports/PORT), so none picks a port another one's
 * stopped node will bind again. */
int cluster_free_port(cluster_t *c);

/* `corridor init` of a new node NAME in the scratch directory, listening on a free port. */
tnode_t *cluster_add(cluster_t *c, const char *name, const char *currencies);

/* `corridor peer add` at `self` of `peer`'s card, with `limits` ("RUB=1000,USD=5" or NULL):
 * the caps `self` grants `peer`. */
void node_trust(cluster_t *c, tnode_t *self, const tnode_t *peer, const char *limits);

/* Both directions, the same limits. */
void cluster_link(cluster_t *c, tnode_t *a, tnode_t *b, const char *limits);

/* Runs `corridor ARGS...` (NULL-terminated), stdin from /dev/null, waiting at most
 * timeout_ms; fills *r (the caller frees it with cmd_result_free). Returns the exit status,
 * -1 if it had to be killed. */
int cluster_cmd(cluster_t *c, int timeout_ms, cmd_result_t *r, ...) __attribute__((sentinel));

/* The same with an argv array (argv[0] is the first argument after the program). */
int cluster_cmdv(cluster_t *c, int timeout_ms, cmd_result_t *r, const char *const *args);

/* Runs any program (argv[0] a path, NULL-terminated argv) as cluster_cmdv runs corridor: output
 * captured into *r, killed after timeout_ms. Returns the exit status, -1 if it was killed. */
int cluster_run(cluster_t *c, const char *const *argv, int timeout_ms, cmd_result_t *r);

/* Starts `corridor ARGS...` (NULL-terminated) in the background, stdin from /dev/null, its
 * output to files in the scratch directory. */
pid_t cluster_spawn(cluster_t *c, ...) __attribute__((sentinel));

/* Waits (bounded) for a background command and fills *r (may be NULL) with its exit status and
 * output. Returns the exit status, -1 if it had to be killed. */
int cluster_wait_spawned(cluster_t *c, pid_t pid, int timeout_ms, cmd_result_t *r);

/* Starts `corridor run` for the node and waits until `status --json` answers. */
void node_start(cluster_t *c, tnode_t *n);

/* The same with CORRIDOR_FAULTS=faults in its environment (NULL: none), its log appended to
 * the node's like every run's. */
void node_start_faults(cluster_t *c, tnode_t *n, const char *faults);

/* Starts `corridor run` and returns at once (for tests of refusals); the caller reaps it. */
pid_t node_start_raw(cluster_t *c, tnode_t *n);

/* SIGTERM and wait up to NODE_STOP_MS; returns the exit status (-1 if it had to be killed). */
int node_stop(cluster_t *c, tnode_t *n);

/* SIGKILL and reap. */
void node_kill9(tnode_t *n);

/* Whether the node's process is still running (reaps it if it has exited). */
bool node_alive(tnode_t *n);

/* `ledger --json` / `status --json` of a node, parsed; asserts exit 0 and valid JSON. */
json_t *node_ledger(cluster_t *c, tnode_t *n);
json_t *node_status(cluster_t *c, tnode_t *n);

/* Waits until every given node's ledger shows counts.pending == 0; fails after timeout_ms,
 * or at once when a node that was running has died. */
void cluster_quiesce(cluster_t *c, tnode_t *const *nodes, size_t count, int timeout_ms);

/* `audit --home ... --json` over the given nodes' homes; asserts exit 0, ok true, and that
 * at least `entries_min` entries were checked. */
void cluster_audit_clean(cluster_t *c, tnode_t *const *nodes, size_t count, int64_t entries_min);

/* Prints the last `lines` lines of a node's log to stdout. */
void node_print_log_tail(const tnode_t *n, size_t lines);

/* Whether the node's log contains `needle`. */
bool node_log_contains(const tnode_t *n, const char *needle);

/* Runs any program (argv[0] a path) with stdin from /dev/null and stdout/stderr discarded,
 * bounded by timeout_ms; returns its exit status, -1 if it was killed. */
int nodes_run_program(const char *const *argv, int timeout_ms);

/* Reads a whole file (any size) into a NUL-terminated malloc'd buffer; NULL if absent. */
char *nodes_read_file(const char *path, size_t *len);

/* ---- reading ledger JSON ------------------------------------------------------------------ */

int64_t ledger_count(json_t *ledger, const char *status);
/* net_minor / pending_minor of (peer, currency); 0 when the position is absent. */
int64_t ledger_net(json_t *ledger, const char *peer, const char *currency);
int64_t ledger_pending(json_t *ledger, const char *peer, const char *currency);
/* The settlement with this UETR and peer, or NULL; *times (if not NULL) counts them. */
json_t *ledger_json_find(json_t *ledger, const char *peer, const char *uetr, size_t *times);
/* A JSON object keyed by UETR (the settlements of `peer`, or all when NULL); fails the test
 * if one UETR appears twice on one channel side. The caller decrefs it. */
json_t *ledger_index(json_t *ledger, const char *peer);

/* The status --json entry for a peer, or NULL. */
json_t *status_peer(json_t *status, const char *peer);

/* ---- the nodes most tests use, and what they say ------------------------------------------- */

#define NAME_A              "BKRURUMM" /* node codes of the usual nodes A, B and C */
#define NAME_B              "BMJIIRTH"
#define NAME_C              "KZKZKZKA"
#define NODES_GENEROUS_CAPS "RUB=100000000,USD=100000000,KZT=100000000" /* caps never reached */
#define NODE_SEND_MS        60000 /* bound for one `send` call */

/* Nodes A and B (NODES_CURRENCIES), each granting the other `caps`; not started. */
void cluster_pair(cluster_t *c, const char *caps, tnode_t **a, tnode_t **b);

/* Nodes A and B with generous caps, both started. */
void cluster_started_pair(cluster_t *c, tnode_t **a, tnode_t **b);

/* `corridor send` of one settlement from -> to; `uetr` and `wait` (seconds) may be NULL. Fills
 * *r (the caller frees it) and returns the exit status. */
int node_send(cluster_t *c, tnode_t *from, const tnode_t *to, const char *amount,
              const char *currency, const char *uetr, const char *wait, cmd_result_t *r);

/* The hash-chain head of a node's journal (hex, malloc'd): any journal row changes it. */
char *node_ledger_head(cluster_t *c, tnode_t *n);

/* Asserts that the ledger holds the UETR with that peer exactly once, with that status;
 * returns the entry (owned by the ledger). */
json_t *ledger_expect_entry(json_t *ledger, const char *peer, const char *uetr, const char *status);

/* One integer field of the status --json entry of `peer` at node n (asserts it is there). */
int64_t node_peer_field(cluster_t *c, tnode_t *n, const char *peer, const char *field);

/* Waits until that field equals `want`; fails the test after timeout_ms. */
void node_wait_peer_field(cluster_t *c, tnode_t *n, const char *peer, const char *field,
                          int64_t want, int timeout_ms);

/* The state of n's channel with `peer` ("up", "down", "diverged"), in a static buffer. */
const char *node_peer_state(cluster_t *c, tnode_t *n, const char *peer);

/* Whether n's channel with `peer` is in `state`. */
bool node_peer_state_is(cluster_t *c, tnode_t *n, const char *peer, const char *state);

/* Waits until both a and b show their channel in `state`; fails the test after timeout_ms. */
void pair_wait_state(cluster_t *c, tnode_t *a, tnode_t *b, const char *state, int timeout_ms);

/* Waits until nothing is in flight between a and b: each side's outbox to the other is empty
 * (whatever it sent, the other applied, committed and acknowledged) and neither sent more
 * between two looks. Whatever either node queued before this call has then been handled by
 * the other (and the answers to it too); fails the test after timeout_ms. */
void pair_wait_idle(cluster_t *c, tnode_t *a, tnode_t *b, int timeout_ms);

/* A counter of the status --json "transport" object (admitted, refused, dropped_frames...). */
int64_t node_transport_counter(cluster_t *c, tnode_t *n, const char *name);

/* The fault injector's counter `name` (dropped, duplicated...) of a node run with
 * CORRIDOR_FAULTS; fails the test if the node reports no faults. */
int64_t node_faults_counter(cluster_t *c, tnode_t *n, const char *name);

/* journal_rows of `ledger --json`: every write adds rows. */
int64_t node_journal_rows(cluster_t *c, tnode_t *n);

/* How often `needle` occurs in the node's log (a line each, for the node's messages). */
size_t node_log_count(const tnode_t *n, const char *needle);

/* Waits until the log holds `needle` at least `count` times; fails the test after timeout_ms. */
void node_wait_log(const tnode_t *n, const char *needle, size_t count, int timeout_ms);

void sleep_ms(int ms);
int64_t mono_ms(void);

/* What a node test program does first in main: SIGPIPE ignored, libsodium initialized, and
 * CORRIDOR_TEST_FILTER (e.g. test_rollback*) given to cmocka as a filter of the tests to run.
 * False when libsodium cannot start. */
bool nodes_test_init(void);

/* ---- the test's own ZeroMQ clients ------------------------------------------------------------
 */

/* Monitors `sock` (in context `ctx`) for the events in the mask `events`: returns a PAIR socket
 * that receives them (the caller closes it before the socket's context ends). */
void *nodes_monitor(void *ctx, void *sock, int events);

/* Waits until the monitor reports one of the events in the mask `events` and returns it; fails
 * the test after timeout_ms. */
int nodes_wait_event(void *monitor, int events, int timeout_ms);

/* ---- settlement plans: what a test sends, reproducibly ------------------------------------ */

#define NODES_CURRENCIES     "RUB,USD,KZT" /* the currencies test nodes deal in */
#define NODES_CURRENCY_COUNT 3
extern const char *const nodes_currencies[NODES_CURRENCY_COUNT]; /* all with two decimals */

#define PLAN_MAX 4096

/* One settlement a test sends. */
typedef struct {
    char uetr[CORRIDOR_UETR_LEN + 1];
    size_t from, to;      /* node indexes in the cluster */
    const char *currency; /* a 2-decimal currency */
    int64_t minor;        /* amount in minor units */
} planned_t;

typedef struct {
    planned_t items[PLAN_MAX];
    size_t count;
    uint32_t rng; /* amounts are reproducible from the seed */
} plan_t;

/* The plan (one at a time: tests run one after the other, nothing to free on failure). */
plan_t *plan_new(uint32_t seed);
uint32_t plan_next(plan_t *p);
/* Adds `count` settlements from -> to, amounts 0.01 .. 1000.00, currencies drawn at random. */
void plan_add(plan_t *p, size_t from, size_t to, size_t count);
/* Minor units of a 2-decimal currency as the command line takes them ("12.34"). */
void format_amount(int64_t minor, char out[static 32]);

/* Writes the batch CSV of plan items [start, end) that node `from` sends into the scratch
 * directory; returns its path (malloc'd), or NULL when `from` sends none of them. */
char *plan_write_batch(cluster_t *c, const plan_t *p, size_t from, size_t start, size_t end);

#endif
