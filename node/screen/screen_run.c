/*
 * Screening program runs; see screen_run.h.
 *
 * A run goes through these states, and only forward:
 *
 *   QUEUED --(a slot is free)--> RUNNING --(answer, exit, timeout)--> FINISHED --> REPORTED
 *      \                                                                 ^
 *       `---------------------(the program cannot start)----------------'
 *
 * QUEUED runs wait in a ring (FIFO). A RUNNING run has a process and a slot (one of
 * running_max); its verdict is made when the program exits (the answer and the exit status),
 * when its answer overflows, or at its deadline. A FINISHED run has its verdict and waits for
 * the end of screen_collect, which moves it to REPORTED, takes it out of the (peer, uetr)
 * index and calls back. A killed program may outlive its verdict for a moment: its run keeps
 * the slot, REPORTED, until the process is reaped, so running_max bounds processes, not only
 * verdicts pending. Runs that never had a process (spawn failed) wait, FINISHED, in a list.
 *
 * The index of (peer, uetr) is an open-addressing table (linear probing, at most half full,
 * deletion by backward shift) keyed with SipHash-2-4 under a random key, since a peer
 * chooses its UETRs.
 *
 * A program's exit is detected without reaping it (waitid with WNOWAIT): the zombie keeps its
 * pid, so its process group id cannot be reused while we kill the group; only then is it
 * reaped. The answer is what the program wrote to stdout before it exited: the pipe is read
 * once more after the exit, not to its end (a leftover in the group may hold it open until
 * the kill lands).
 */
#include "screen_run.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "corridor/limits.h"

typedef enum {
    RUN_QUEUED,   /* waiting for a slot */
    RUN_RUNNING,  /* the program runs: input going in, answer coming out */
    RUN_FINISHED, /* the verdict is made, to be reported */
    RUN_REPORTED, /* reported; its slot (if any) waits for the process to be reaped */
} run_state_t;

typedef struct run {
    run_state_t state;                        /* see the file header */
    char peer[CORRIDOR_NAME_LEN_MAX + 1];     /* who sent the payment */
    char uetr[CORRIDOR_UETR_LEN + 1];         /* which payment */
    uint64_t key_hash;                        /* SipHash of (peer, uetr), for the index */
    char *input;                              /* what goes to stdin; NULL once written */
    size_t input_len;                         /* its length */
    size_t input_written;                     /* bytes of it written so far */
    pid_t pid;                                /* the program and its group; 0 when none */
    int stdin_fd;                             /* our end of its stdin; -1 when closed */
    int stdout_fd;                            /* our end of its stdout; -1 when closed */
    int pid_fd;                               /* readable when the program exits; -1: none */
    int64_t deadline_ms;                      /* when it times out */
    int64_t finished_ms;                      /* when its verdict was made */
    char answer[SCREEN_ANSWER_BYTES_MAX + 1]; /* its stdout so far: one byte over the limit */
    size_t answer_len;                        /* bytes in answer */
    screen_verdict_t verdict;                 /* once FINISHED */
    struct run *next;                         /* in the list of spawn failures or of reports */
} run_t;

struct screen_runner {
    char *program_path;                     /* what to run */
    int64_t timeout_ms;                     /* each run's time from its start */
    size_t running_max;                     /* slots */
    run_t **slots;                          /* running_max runs with a process, or NULL */
    size_t running;                         /* slots in use */
    run_t **queue;                          /* QUEUED runs, a ring */
    size_t queue_capacity;                  /* a power of two, at most SCREEN_QUEUED_MAX */
    size_t queue_head;                      /* index of the oldest */
    size_t queued;                          /* runs in the ring */
    run_t *failed;                          /* runs that could not start, to be reported */
    run_t *failed_last;                     /* the list's tail (reports keep start order) */
    size_t failed_count;                    /* runs on it */
    run_t **index;                          /* (peer, uetr) to its QUEUED..FINISHED run */
    size_t index_capacity;                  /* a power of two, at least twice index_count */
    size_t index_count;                     /* runs in the index */
    uint8_t key[crypto_shorthash_KEYBYTES]; /* the index's hash key */
    int64_t last_now_ms;                    /* the latest now_ms the caller gave */
};

static void verdict_set(run_t *run, screen_verdict_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verdict_set(run_t *run, screen_verdict_kind_t kind, const char *fmt, ...)
{
    memset(&run->verdict, 0, sizeof run->verdict);
    run->verdict.kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->verdict.why, sizeof run->verdict.why, fmt, ap);
    va_end(ap);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void run_free(run_t *run)
{
    if (run == NULL) {
        return;
    }
    assert(run->pid == 0);
    close_fd(&run->stdin_fd);
    close_fd(&run->stdout_fd);
    close_fd(&run->pid_fd);
    free(run->input);
    free(run);
}

/* ---- The (peer, uetr) index ------------------------------------------------------------ */

static uint64_t key_hash(const screen_runner_t *r, const char *peer, const char *uetr)
{
    unsigned char key[CORRIDOR_NAME_LEN_MAX + 1 + CORRIDOR_UETR_LEN];
    size_t peer_len = strlen(peer), uetr_len = strlen(uetr);
    assert(peer_len + 1 + uetr_len <= sizeof key);
    memcpy(key, peer, peer_len);
    key[peer_len] = 0; /* so that ("AB", "C...") and ("A", "BC...") differ */
    memcpy(key + peer_len + 1, uetr, uetr_len);
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, peer_len + 1 + uetr_len, r->key);
    uint64_t h;
    _Static_assert(sizeof h == sizeof out, "SipHash-2-4 gives 64 bits");
    memcpy(&h, out, sizeof h);
    return h;
}

/* The index slot of the run of (peer, uetr), or the empty slot where it would go. */
static size_t index_find(const screen_runner_t *r, uint64_t hash, const char *peer,
                         const char *uetr)
{
    size_t mask = r->index_capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        const run_t *run = r->index[i];
        if (run == NULL || (run->key_hash == hash && strcmp(run->peer, peer) == 0 &&
                            strcmp(run->uetr, uetr) == 0)) {
            return i;
        }
    }
}

/* Makes room for one more run in the index. -1 when out of memory. */
static int index_reserve(screen_runner_t *r)
{
    if ((r->index_count + 1) * 2 <= r->index_capacity) {
        return 0;
    }
    size_t capacity = r->index_capacity * 2;
    run_t **index = calloc(capacity, sizeof *index);
    if (index == NULL) {
        return -1;
    }
    for (size_t k = 0; k < r->index_capacity; k++) {
        run_t *run = r->index[k];
        if (run != NULL) {
            size_t i = (size_t)run->key_hash & (capacity - 1);
            while (index[i] != NULL) {
                i = (i + 1) & (capacity - 1);
            }
            index[i] = run;
        }
    }
    free(r->index);
    r->index = index;
    r->index_capacity = capacity;
    return 0;
}

static void index_remove(screen_runner_t *r, const run_t *run)
{
    size_t mask = r->index_capacity - 1;
    size_t i = index_find(r, run->key_hash, run->peer, run->uetr);
    assert(r->index[i] == run);
    /* backward shift: move up every later run of the cluster that may live in the hole */
    for (;;) {
        r->index[i] = NULL;
        size_t j = i;
        for (;;) {
            j = (j + 1) & mask;
            if (r->index[j] == NULL) {
                r->index_count--;
                return;
            }
            size_t home = (size_t)r->index[j]->key_hash & mask;
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays) {
                break;
            }
        }
        r->index[i] = r->index[j];
        i = j;
    }
}

/* ---- One process -------------------------------------------------------------------- */

/* Moves a pipe end above stdin, stdout and stderr, so the child's dup2 onto 0 and 1 cannot
 * clobber the other end (a parent started with a standard descriptor closed). */
static int fd_above_stdio(int fd)
{
    if (fd > STDERR_FILENO) {
        return fd;
    }
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

static int pidfd_open_or_none(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? (int)fd : -1;
#else
    (void)pid;
    return -1;
#endif
}

/* Writes what the pipe takes of the input; closes stdin once all of it is written, or when
 * the program will not read it (it still may answer). */
static void input_write(run_t *run)
{
    while (run->stdin_fd >= 0 && run->input_written < run->input_len) {
        ssize_t n = write(run->stdin_fd, run->input + run->input_written,
                          run->input_len - run->input_written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* POLLOUT brings us back */
        }
        if (n < 0) {
            break; /* EPIPE: the program closed its stdin, or exited */
        }
        run->input_written += (size_t)n;
    }
    close_fd(&run->stdin_fd);
    free(run->input);
    run->input = NULL;
}

/* Reads what is ready of the answer, one byte over the limit at most. -1 on a read error. */
static int answer_read(run_t *run)
{
    while (run->stdout_fd >= 0 && run->answer_len < sizeof run->answer) {
        ssize_t n = read(run->stdout_fd, run->answer + run->answer_len,
                         sizeof run->answer - run->answer_len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            close_fd(&run->stdout_fd); /* every writer closed it */
            return 0;
        }
        run->answer_len += (size_t)n;
    }
    return 0;
}

/* Kills the run's process group, and the program itself should it have left the group. */
static void group_kill(const run_t *run)
{
    assert(run->pid > 0);
    kill(-run->pid, SIGKILL);
    kill(run->pid, SIGKILL);
}

/* Reaps the program if it is gone. true when it was (or cannot be waited for any more). */
static bool process_reap(run_t *run, int *status)
{
    assert(run->pid > 0);
    for (;;) {
        pid_t got = waitpid(run->pid, status, WNOHANG);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got == 0) {
            return false;
        }
        if (got < 0) {
            *status = -1; /* ECHILD: reaped by someone else (SIGCHLD ignored) */
        }
        run->pid = 0;
        close_fd(&run->pid_fd);
        return true;
    }
}

/* Whether the program has exited, leaving it a zombie. -1 when it cannot be waited for. */
static int process_exited(const run_t *run)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        if (waitid(P_PID, (id_t)run->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
            return info.si_pid == run->pid ? 1 : 0;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

static void run_finish(run_t *run, int64_t now_ms)
{
    assert(run->state == RUN_RUNNING);
    run->state = RUN_FINISHED;
    run->finished_ms = now_ms;
    close_fd(&run->stdin_fd);
    close_fd(&run->stdout_fd);
    free(run->input);
    run->input = NULL;
}

/* Ends a run that has not exited: kills its group, and tries to reap it at once. */
static void run_kill(run_t *run, int64_t now_ms)
{
    group_kill(run);
    run_finish(run, now_ms);
    int status;
    process_reap(run, &status);
}

static bool is_code_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The verdict of a program that exited with `status` having written its answer. */
static void verdict_from_answer(run_t *run, int status)
{
    if (status == -1) {
        verdict_set(run, SCREEN_HOLD, "exit status lost (is SIGCHLD ignored?)");
        return;
    }
    if (WIFSIGNALED(status)) {
        verdict_set(run, SCREEN_HOLD, "killed by signal %d", WTERMSIG(status));
        return;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        verdict_set(run, SCREEN_HOLD, "exit status %d", WEXITSTATUS(status));
        return;
    }
    if (run->answer_len > SCREEN_ANSWER_BYTES_MAX) {
        verdict_set(run, SCREEN_HOLD, "answer longer than %d bytes", SCREEN_ANSWER_BYTES_MAX);
        return;
    }
    const char *a = run->answer;
    size_t len = run->answer_len;
    if (len > 0 && a[len - 1] == '\n') {
        len--;
    }
    if (run->answer_len == 0) {
        verdict_set(run, SCREEN_HOLD, "empty answer");
    } else if (len == 6 && memcmp(a, "accept", 6) == 0) {
        verdict_set(run, SCREEN_ACCEPT, "answered accept");
    } else if (len == 4 && memcmp(a, "hold", 4) == 0) {
        verdict_set(run, SCREEN_HOLD, "answered hold");
    } else if (len == 11 && memcmp(a, "reject ", 7) == 0 && is_code_char(a[7]) &&
               is_code_char(a[8]) && is_code_char(a[9]) && is_code_char(a[10])) {
        verdict_set(run, SCREEN_REJECT, "answered reject %.4s", a + 7);
        memcpy(run->verdict.reason, a + 7, 4);
        run->verdict.reason[4] = '\0';
    } else {
        char shown[49]; /* the answer's start, printable ASCII, for the log */
        size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
        for (size_t i = 0; i < n; i++) {
            shown[i] = a[i] >= 0x20 && a[i] < 0x7F && a[i] != '"' ? a[i] : (char)'?';
        }
        shown[n] = '\0';
        verdict_set(run, SCREEN_HOLD, "garbage answer \"%s\"", shown);
    }
}

/* Moves a RUNNING run forward by what its pipes and process show at now_ms. */
static void run_step(screen_runner_t *r, run_t *run, int64_t now_ms)
{
    assert(run->state == RUN_RUNNING && run->pid > 0);
    input_write(run);
    if (answer_read(run) != 0) {
        verdict_set(run, SCREEN_HOLD, "cannot read the answer: %s", strerror(errno));
        run_kill(run, now_ms);
        return;
    }
    if (run->answer_len > SCREEN_ANSWER_BYTES_MAX) {
        verdict_set(run, SCREEN_HOLD, "answer longer than %d bytes", SCREEN_ANSWER_BYTES_MAX);
        run_kill(run, now_ms);
        return;
    }
    int exited = process_exited(run);
    if (exited == 1) {
        /* the leader is a zombie: its group id is still ours to kill, and what it wrote
         * before exiting is in the pipe */
        group_kill(run);
        int status = -1;
        int read_rc = answer_read(run);
        bool reaped = process_reap(run, &status);
        assert(reaped);
        if (read_rc != 0) {
            verdict_set(run, SCREEN_HOLD, "cannot read the answer: %s", strerror(errno));
        } else {
            verdict_from_answer(run, status);
        }
        run_finish(run, now_ms);
        return;
    }
    if (exited < 0) {
        /* reaped behind our back (SIGCHLD ignored): its group id may be another's now */
        verdict_set(run, SCREEN_HOLD, "exit status lost (is SIGCHLD ignored?)");
        run->pid = 0;
        close_fd(&run->pid_fd);
        run_finish(run, now_ms);
        return;
    }
    if (now_ms >= run->deadline_ms) {
        verdict_set(run, SCREEN_HOLD, "timed out after %lld ms", (long long)r->timeout_ms);
        run_kill(run, now_ms);
    }
}

/* Starts the program for a run: RUNNING with a process, or FINISHED with a hold when it
 * cannot start. */
static void run_spawn(screen_runner_t *r, run_t *run, int64_t now_ms)
{
    assert(run->pid == 0 && run->stdin_fd < 0 && run->stdout_fd < 0);
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    bool actions_made = false, attr_made = false;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = 0;
    run->state = RUN_RUNNING;
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
        rc = errno;
        goto cleanup;
    }
    for (size_t i = 0; i < 2; i++) {
        in_pipe[i] = fd_above_stdio(in_pipe[i]);
        out_pipe[i] = fd_above_stdio(out_pipe[i]);
        if (in_pipe[i] < 0 || out_pipe[i] < 0) {
            rc = errno;
            goto cleanup;
        }
    }
    /* our ends only: the child's are other open file descriptions, and stay blocking */
    if (fcntl(in_pipe[1], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(out_pipe[0], F_SETFL, O_NONBLOCK) != 0) {
        rc = errno;
        goto cleanup;
    }
    if ((rc = posix_spawn_file_actions_init(&actions)) != 0) {
        goto cleanup;
    }
    actions_made = true;
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        goto cleanup;
    }
    attr_made = true;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO)) != 0 ||
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0) {
        goto cleanup;
    }
    char *argv[] = {r->program_path, NULL};
    pid_t pid = 0;
    if ((rc = posix_spawn(&pid, r->program_path, &actions, &attr, argv, environ)) != 0) {
        goto cleanup;
    }
    assert(pid > 0);
    run->pid = pid;
    run->stdin_fd = in_pipe[1];
    run->stdout_fd = out_pipe[0];
    in_pipe[1] = out_pipe[0] = -1;
    run->pid_fd = pidfd_open_or_none(pid);
    run->deadline_ms = now_ms > INT64_MAX - r->timeout_ms ? INT64_MAX : now_ms + r->timeout_ms;
    input_write(run);
cleanup:
    if (rc != 0) {
        verdict_set(run, SCREEN_HOLD, "cannot start %s: %s", r->program_path, strerror(rc));
        run_finish(run, now_ms);
    }
    for (size_t i = 0; i < 2; i++) {
        close_fd(&in_pipe[i]);
        close_fd(&out_pipe[i]);
    }
    if (actions_made) {
        posix_spawn_file_actions_destroy(&actions);
    }
    if (attr_made) {
        posix_spawnattr_destroy(&attr);
    }
}

/* Gives a freshly spawned (or failed) run its place: a slot, or the list of failures. */
static void run_place(screen_runner_t *r, run_t *run, run_t ***failures_tail)
{
    if (run->pid == 0) {
        assert(run->state == RUN_FINISHED);
        run->next = NULL;
        **failures_tail = run;
        *failures_tail = &run->next;
        return;
    }
    for (size_t i = 0; i < r->running_max; i++) {
        if (r->slots[i] == NULL) {
            r->slots[i] = run;
            r->running++;
            return;
        }
    }
    assert(false && "a run spawned without a free slot");
}

/* ---- The runner ---------------------------------------------------------------------- */

screen_runner_t *screen_runner_new(const char *program_path, int64_t timeout_ms, size_t running_max)
{
    assert(program_path != NULL);
    assert(timeout_ms >= 1 && timeout_ms <= SCREEN_TIMEOUT_MS_MAX);
    assert(running_max >= 1 && running_max <= SCREEN_RUNNING_MAX);
    if (sodium_init() < 0) {
        return NULL;
    }
    screen_runner_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->timeout_ms = timeout_ms;
    r->running_max = running_max;
    r->queue_capacity = 64;
    r->index_capacity = 128;
    r->program_path = strdup(program_path);
    r->slots = calloc(running_max, sizeof *r->slots);
    r->queue = calloc(r->queue_capacity, sizeof *r->queue);
    r->index = calloc(r->index_capacity, sizeof *r->index);
    if (r->program_path == NULL || r->slots == NULL || r->queue == NULL || r->index == NULL) {
        screen_runner_destroy(&r);
        return NULL;
    }
    randombytes_buf(r->key, sizeof r->key);
    r->last_now_ms = INT64_MIN;
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        old.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
    }
    return r;
}

int screen_start(screen_runner_t *r, const char *peer, const char *uetr, const char *input,
                 int64_t now_ms)
{
    assert(r != NULL && peer != NULL && uetr != NULL && input != NULL);
    assert(strlen(peer) <= CORRIDOR_NAME_LEN_MAX && strlen(uetr) <= CORRIDOR_UETR_LEN);
    if (now_ms > r->last_now_ms) {
        r->last_now_ms = now_ms;
    }
    uint64_t hash = key_hash(r, peer, uetr);
    if (r->index[index_find(r, hash, peer, uetr)] != NULL) {
        return 0; /* this payment is being screened */
    }
    size_t input_len = strlen(input);
    if (input_len > SCREEN_INPUT_BYTES_MAX || r->queued + r->failed_count >= SCREEN_QUEUED_MAX) {
        return -1;
    }
    bool spawn_now = r->queued == 0 && r->running < r->running_max;
    if (!spawn_now && r->queued == r->queue_capacity) {
        /* grow the ring, keeping its order */
        size_t capacity = r->queue_capacity * 2;
        assert(capacity <= SCREEN_QUEUED_MAX);
        run_t **queue = calloc(capacity, sizeof *queue);
        if (queue == NULL) {
            return -1;
        }
        for (size_t k = 0; k < r->queued; k++) {
            queue[k] = r->queue[(r->queue_head + k) & (r->queue_capacity - 1)];
        }
        free(r->queue);
        r->queue = queue;
        r->queue_capacity = capacity;
        r->queue_head = 0;
    }
    if (index_reserve(r) != 0) {
        return -1;
    }
    run_t *run = calloc(1, sizeof *run);
    if (run == NULL) {
        return -1;
    }
    run->input = malloc(input_len + 1);
    if (run->input == NULL) {
        free(run);
        return -1;
    }
    memcpy(run->input, input, input_len + 1);
    run->input_len = input_len;
    run->stdin_fd = run->stdout_fd = run->pid_fd = -1;
    run->key_hash = hash;
    snprintf(run->peer, sizeof run->peer, "%s", peer);
    snprintf(run->uetr, sizeof run->uetr, "%s", uetr);
    size_t slot = index_find(r, hash, peer, uetr);
    assert(r->index[slot] == NULL);
    r->index[slot] = run;
    r->index_count++;
    if (spawn_now) {
        run_spawn(r, run, now_ms);
        run_t **tail = r->failed_last != NULL ? &r->failed_last->next : &r->failed;
        run_place(r, run, &tail);
        if (run->pid == 0) {
            r->failed_last = run;
            r->failed_count++;
        }
    } else {
        run->state = RUN_QUEUED;
        r->queue[(r->queue_head + r->queued) & (r->queue_capacity - 1)] = run;
        r->queued++;
    }
    return 0;
}

size_t screen_poll_fds(const screen_runner_t *r, struct pollfd *out, size_t max)
{
    assert(r != NULL && (out != NULL || max == 0));
    size_t n = 0;
    for (size_t i = 0; i < r->running_max; i++) {
        const run_t *run = r->slots[i];
        if (run == NULL) {
            continue;
        }
        const struct pollfd want[] = {
            {.fd = run->stdout_fd, .events = POLLIN},
            {.fd = run->pid_fd, .events = POLLIN},
            {.fd = run->input != NULL ? run->stdin_fd : -1, .events = POLLOUT},
        };
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
            if (want[k].fd >= 0 && n < max) {
                out[n++] = want[k];
            }
        }
    }
    return n;
}

int64_t screen_next_deadline(const screen_runner_t *r)
{
    assert(r != NULL);
    int64_t next = INT64_MAX;
    if (r->failed != NULL) {
        next = r->failed->finished_ms; /* passed: reports are waiting */
    }
    int64_t check_ms = r->last_now_ms > INT64_MAX - SCREEN_EXIT_CHECK_MS
                           ? INT64_MAX
                           : r->last_now_ms + SCREEN_EXIT_CHECK_MS;
    for (size_t i = 0; i < r->running_max; i++) {
        const run_t *run = r->slots[i];
        if (run == NULL) {
            continue;
        }
        if (run->state == RUN_RUNNING && run->deadline_ms < next) {
            next = run->deadline_ms;
        }
        if (run->pid_fd < 0 && check_ms < next) {
            next = check_ms; /* no pidfd: nothing else shows the exit */
        }
    }
    return next;
}

void screen_collect(screen_runner_t *r, int64_t now_ms, screen_done_fn *done, void *arg)
{
    assert(r != NULL && done != NULL);
    if (now_ms > r->last_now_ms) {
        r->last_now_ms = now_ms;
    }
    /* the reports of this call: the failures of screen_start first, in start order */
    run_t *reports = r->failed;
    run_t **tail = reports != NULL ? &r->failed_last->next : &reports;
    r->failed = r->failed_last = NULL;
    r->failed_count = 0;
    for (size_t i = 0; i < r->running_max; i++) {
        run_t *run = r->slots[i];
        if (run == NULL) {
            continue;
        }
        if (run->state == RUN_RUNNING) {
            run_step(r, run, now_ms);
        }
        if (run->state == RUN_FINISHED) {
            run->next = NULL;
            *tail = run;
            tail = &run->next;
        }
        int status;
        if (run->pid != 0 && run->state != RUN_RUNNING && !process_reap(run, &status)) {
            continue; /* killed, not yet gone: keeps its slot */
        }
        if (run->pid == 0) {
            r->slots[i] = NULL;
            r->running--;
            if (run->state == RUN_REPORTED) {
                run_free(run); /* reported by an earlier call */
            }
        }
    }
    while (r->queued > 0 && r->running < r->running_max) {
        run_t *run = r->queue[r->queue_head];
        r->queue_head = (r->queue_head + 1) & (r->queue_capacity - 1);
        r->queued--;
        assert(run->state == RUN_QUEUED);
        run_spawn(r, run, now_ms);
        run_place(r, run, &tail);
    }
    for (run_t *run = reports; run != NULL; run = run->next) {
        assert(run->state == RUN_FINISHED);
        index_remove(r, run);
        run->state = RUN_REPORTED;
    }
    while (reports != NULL) {
        run_t *run = reports;
        reports = run->next;
        run->next = NULL;
        done(arg, run->peer, run->uetr, &run->verdict);
        if (run->pid == 0) {
            run_free(run); /* otherwise its slot frees it once reaped */
        }
    }
}

size_t screen_running(const screen_runner_t *r)
{
    assert(r != NULL);
    return r->running;
}

size_t screen_queued(const screen_runner_t *r)
{
    assert(r != NULL);
    return r->queued;
}

void screen_runner_destroy(screen_runner_t **r)
{
    assert(r != NULL);
    screen_runner_t *self = *r;
    if (self == NULL) {
        return;
    }
    for (size_t i = 0; self->slots != NULL && i < self->running_max; i++) {
        run_t *run = self->slots[i];
        if (run == NULL) {
            continue;
        }
        group_kill(run);
        close_fd(&run->stdin_fd);
        close_fd(&run->stdout_fd);
        int status;
        while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR) {
        }
        run->pid = 0;
        run_free(run);
    }
    for (size_t k = 0; self->queue != NULL && k < self->queued; k++) {
        run_free(self->queue[(self->queue_head + k) & (self->queue_capacity - 1)]);
    }
    while (self->failed != NULL) {
        run_t *run = self->failed;
        self->failed = run->next;
        run_free(run);
    }
    free(self->index);
    free(self->queue);
    free(self->slots);
    free(self->program_path);
    free(self);
    *r = NULL;
}

/* ---- The program's input ------------------------------------------------------------- */

char *screen_settlement_json(const settlement_t *s)
{
    assert(s != NULL);
    char *text = NULL;
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:I}", "uetr",
                  s->uetr, "peer", s->peer, "amount_minor", (json_int_t)s->amount_minor, "currency",
                  s->currency, "value_date", s->value_date, "end_to_end_id", s->end_to_end_id,
                  "debtor", "name", s->debtor_name, "account", s->debtor_account, "creditor",
                  "name", s->creditor_name, "account", s->creditor_account, "remittance",
                  s->remittance, "created_unix_ms", (json_int_t)s->created_unix_ms);
    if (o == NULL) {
        goto cleanup;
    }
    char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (body == NULL) {
        goto cleanup;
    }
    size_t len = strlen(body);
    text = malloc(len + 2);
    if (text != NULL) {
        memcpy(text, body, len);
        text[len] = '\n';
        text[len + 1] = '\0';
    }
    free(body);
cleanup:
    json_decref(o);
    return text;
}
