/*
 * Screening programs: the operator's own program (a sanctions service client, a fraud model)
 * asked about each incoming payment, run beside the node's loop turn rather than inside it.
 *
 * A run is one process of the program per payment: the payment as one JSON line on its
 * stdin (screen_settlement_json), its answer on stdout, one line of at most
 * SCREEN_ANSWER_BYTES_MAX bytes: "accept", "hold" or "reject CODE" (an ISO external reason
 * code, 4 characters A-Z0-9), with or without a final newline. Anything else, and anything
 * that goes wrong (no answer, a crash, a non-zero exit status, a timeout, a program that
 * cannot start), is a hold: a screening run never accepts by default.
 *
 * The runner never blocks and reads no clock: the caller polls screen_poll_fds, wakes up by
 * screen_next_deadline, and calls screen_collect with its own now_ms, which reports each
 * finished run exactly once to a callback. At most running_max programs run at once; later
 * payments wait in a queue (FIFO).
 *
 * Process hygiene: each run is its own process group, so a timeout's SIGKILL reaches what
 * the program started too; when the program exits, whatever it left running in its group is
 * killed (a screening program has nothing to leave behind, and a leftover holding stdout must
 * not hold the run). The program's exit is seen through a pidfd, and the leader is reaped
 * only after its group is killed, so the group id cannot have been reused by then. stderr is
 * the node's, so a program's complaints reach the node's log.
 */
#ifndef CORRIDOR_SCREEN_RUN_H
#define CORRIDOR_SCREEN_RUN_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "settlement.h"

#define SCREEN_INPUT_BYTES_MAX  (16 * 1024)      /* a program's input (a settlement is < 4 KiB) */
#define SCREEN_ANSWER_BYTES_MAX 256              /* what is read of its stdout; more is garbage */
#define SCREEN_QUEUED_MAX       65536            /* runs waiting for a free slot */
#define SCREEN_RUNNING_MAX      64               /* the largest running_max (3 descriptors a run) */
#define SCREEN_TIMEOUT_MS_MAX   INT64_C(3600000) /* the longest timeout (an hour) */
/* Without pidfds (Linux < 5.3), how often runs whose exit nothing else shows are looked at. */
#define SCREEN_EXIT_CHECK_MS 20

typedef enum {
    SCREEN_ACCEPT, /* the program answered accept and exited 0 */
    SCREEN_REJECT, /* the program answered reject CODE and exited 0 */
    SCREEN_HOLD,   /* the program answered hold, or anything went wrong: see why */
} screen_verdict_kind_t;

typedef struct {
    screen_verdict_kind_t kind; /* what to do with the payment */
    char reason[5];             /* REJECT: the ISO code, [A-Z0-9]{4}; otherwise empty */
    char why[160];              /* for the log: "answered accept", "timed out after 2000 ms",
                                   "exit status 3", "garbage answer \"maybe\"", ... */
} screen_verdict_t;

typedef struct screen_runner screen_runner_t;

/* The callback of screen_collect: once per started run. peer, uetr and v are valid only
 * during the call. It may call screen_start (for any payment), not screen_collect nor
 * screen_runner_destroy. */
typedef void screen_done_fn(void *arg, const char *peer, const char *uetr,
                            const screen_verdict_t *v);

/* A runner of the program at program_path (run with no arguments and the node's
 * environment), timeout_ms (1 to SCREEN_TIMEOUT_MS_MAX) from each run's start, at most
 * running_max (1 to SCREEN_RUNNING_MAX) at once. NULL when out of memory or libsodium
 * cannot start. Sets SIGPIPE to SIG_IGN if it is SIG_DFL (a program that exits without
 * reading its input must not kill the node); programs start with every signal at its
 * default and none blocked. */
screen_runner_t *screen_runner_new(const char *program_path, int64_t timeout_ms,
                                   size_t running_max);

/* Starts the program for one payment, or queues it while running_max runs are going. input
 * is written to the program's stdin, which is then closed. peer and uetr identify the run
 * (peer at most CORRIDOR_NAME_LEN_MAX bytes, uetr CORRIDOR_UETR_LEN): while a run of the same
 * (peer, uetr) is queued, running or waiting to be reported, a second start is a no-op
 * returning 0. 0 when queued or started (a program that cannot start is reported as a hold
 * by the next screen_collect); -1 when it cannot be (input over SCREEN_INPUT_BYTES_MAX, the
 * queue full at SCREEN_QUEUED_MAX, out of memory): then no callback comes, and the caller
 * holds the payment. */
int screen_start(screen_runner_t *r, const char *peer, const char *uetr, const char *input,
                 int64_t now_ms);

/* Writes the descriptors to poll into out (at most max; returns the count): POLLIN on the
 * programs' stdout and on their pidfds, POLLOUT on a stdin whose input did not fit the pipe
 * at once. */
size_t screen_poll_fds(const screen_runner_t *r, struct pollfd *out, size_t max);

/* The earliest now_ms at which screen_collect has work without any descriptor being ready: a
 * run's timeout, a run to report (then a time already passed), a look at a run's exit when
 * there are no pidfds. INT64_MAX when none. */
int64_t screen_next_deadline(const screen_runner_t *r);

/* Writes pending input, reads what is ready, kills (SIGKILL to the group) runs past their
 * timeout or over the answer limit, reaps exited programs (killing what they left in their
 * group), starts queued runs in free slots, and then calls done once for each run that
 * finished with its verdict. Never blocks. */
void screen_collect(screen_runner_t *r, int64_t now_ms, screen_done_fn *done, void *arg);

/* Processes the runner has (started and not yet reaped; a killed one counts until reaped). */
size_t screen_running(const screen_runner_t *r);

/* Runs waiting for a slot. */
size_t screen_queued(const screen_runner_t *r);

/* Kills every running program's group, reaps them (this waits for the kills to land), frees
 * the runner and sets *r to NULL; safe on NULL and twice. Runs not yet reported are dropped
 * without a callback. */
void screen_runner_destroy(screen_runner_t **r);

/* The JSON a program reads, one line ending in '\n': {"uetr", "peer", "amount_minor",
 * "currency", "value_date", "end_to_end_id", "debtor": {"name", "account"}, "creditor":
 * {"name", "account"}, "remittance", "created_unix_ms"}, in that order; text as it is in the
 * settlement (an absent value date is ""). malloc'd; NULL when out of memory or a text field
 * is not UTF-8 (settlement_check refuses such a settlement). */
char *screen_settlement_json(const settlement_t *s);

#endif
