/* Real `corridor` processes for the integration tests; see nodes.h. */
#include "support.h"

#include "nodes.h"
#include "validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#define ARGS_MAX       64
#define POLL_STEP_MS   100
#define READ_FILE_MAX  (256u * 1024 * 1024)
#define PORT_TRIES     200
#define PORT_LOW       10000 /* below this: well-known and registered services */
#define STATUS_CALL_MS 5000
#define FAULTS_VAR     "CORRIDOR_FAULTS"

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool nodes_test_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        return false;
    }
    const char *filter = getenv("CORRIDOR_TEST_FILTER");
    if (filter != NULL && filter[0] != '\0') {
        cmocka_set_test_filter(filter);
    }
    return true;
}

char *nodes_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    size_t cap = 64 * 1024, used = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (used == cap) {
            assert_true(cap < READ_FILE_MAX);
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    if (len != NULL) {
        *len = used;
    }
    return buf;
}

void cmd_result_free(cmd_result_t *r)
{
    if (r != NULL) {
        free(r->out);
        free(r->err);
        r->out = r->err = NULL;
    }
}

/* ---- processes ---------------------------------------------------------------------------- */

extern char **environ;

/* fork + exec of a program (argv[0] a path); stdin from /dev/null, stdout and stderr to the
 * given files (appended to when `append`). The environment is the test's without
 * CORRIDOR_FAULTS, set to `faults` instead when that is not NULL (fault injection only where a
 * test asks for it). The child dies with the test. */
static pid_t spawn_program(const char *const *argv, const char *out_path, const char *err_path,
                           bool append, const char *faults)
{
    size_t env_count = 0;
    while (environ[env_count] != NULL) {
        env_count++;
    }
    char **envp = calloc(env_count + 2, sizeof *envp);
    assert_non_null(envp);
    size_t e = 0;
    for (size_t i = 0; i < env_count; i++) {
        if (strncmp(environ[i], FAULTS_VAR "=", strlen(FAULTS_VAR) + 1) != 0) {
            envp[e++] = environ[i];
        }
    }
    char faults_var[256];
    if (faults != NULL) {
        assert_true(strlen(faults) < sizeof faults_var - sizeof FAULTS_VAR - 1);
        snprintf(faults_var, sizeof faults_var, "%s=%s", FAULTS_VAR, faults);
        envp[e++] = faults_var;
    }
    envp[e] = NULL;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(out_path, flags, 0600);
    int err = open(err_path, flags, 0600);
    assert_true(in >= 0 && out >= 0 && err >= 0);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child: nothing but async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(126);
        }
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
            _exit(126);
        }
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    close(in);
    close(out);
    close(err);
    assert_true(pid > 0);
    return pid;
}

/* The corridor program with the given arguments, as spawn_program. */
static pid_t spawn(const char *const *args, const char *out_path, const char *err_path, bool append,
                   const char *faults)
{
    const char *argv[ARGS_MAX + 2];
    size_t n = 0;
    argv[n++] = CORRIDOR_BIN;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return spawn_program(argv, out_path, err_path, append, faults);
}

/* Waits for pid at most timeout_ms; kills it (SIGKILL) when it overstays. Returns the exit
 * status, -1 if it ended by a signal. */
static int wait_bounded(pid_t pid, int timeout_ms, bool *timed_out)
{
    int64_t deadline = mono_ms() + timeout_ms;
    int status = 0;
    *timed_out = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (mono_ms() >= deadline) {
            *timed_out = true;
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        sleep_ms(timeout_ms < 2000 ? 5 : 10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int cluster_run(cluster_t *c, const char *const *argv, int timeout_ms, cmd_result_t *r)
{
    char name[64];
    unsigned seq = c->cmd_seq++;
    snprintf(name, sizeof name, "cmd-%u.out", seq);
    char *out_path = test_path(c->dir, name);
    snprintf(name, sizeof name, "cmd-%u.err", seq);
    char *err_path = test_path(c->dir, name);
    pid_t pid = spawn_program(argv, out_path, err_path, false, NULL);
    bool timed_out = false;
    int rc = wait_bounded(pid, timeout_ms, &timed_out);
    if (timed_out) {
        printf("# %s %s ... killed after %d ms\n", argv[0], argv[1] != NULL ? argv[1] : "",
               timeout_ms);
    }
    if (r != NULL) {
        r->rc = rc;
        r->out = nodes_read_file(out_path, NULL);
        r->err = nodes_read_file(err_path, NULL);
        assert_non_null(r->out);
        assert_non_null(r->err);
    }
    unlink(out_path);
    unlink(err_path);
    free(out_path);
    free(err_path);
    return rc;
}

int cluster_cmdv(cluster_t *c, int timeout_ms, cmd_result_t *r, const char *const *args)
{
    const char *argv[ARGS_MAX + 2];
    size_t n = 0;
    argv[n++] = CORRIDOR_BIN;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return cluster_run(c, argv, timeout_ms, r);
}

int cluster_cmd(cluster_t *c, int timeout_ms, cmd_result_t *r, ...)
{
    const char *args[ARGS_MAX + 1];
    size_t n = 0;
    va_list ap;
    va_start(ap, r);
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        assert_true(n < ARGS_MAX);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return cluster_cmdv(c, timeout_ms, r, args);
}

pid_t cluster_spawn(cluster_t *c, ...)
{
    const char *args[ARGS_MAX + 1];
    size_t n = 0;
    va_list ap;
    va_start(ap, c);
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        assert_true(n < ARGS_MAX);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    spawned_t *slot = NULL;
    for (size_t i = 0; i < CLUSTER_SPAWNED_MAX && slot == NULL; i++) {
        slot = c->spawned[i].pid == 0 ? &c->spawned[i] : NULL;
    }
    assert_non_null(slot);
    char name[64];
    unsigned seq = c->cmd_seq++;
    snprintf(name, sizeof name, "bg-%u.out", seq);
    slot->out_path = test_path(c->dir, name);
    snprintf(name, sizeof name, "bg-%u.err", seq);
    slot->err_path = test_path(c->dir, name);
    slot->pid = spawn(args, slot->out_path, slot->err_path, false, NULL);
    return slot->pid;
}

static void spawned_release(spawned_t *slot)
{
    unlink(slot->out_path);
    unlink(slot->err_path);
    free(slot->out_path);
    free(slot->err_path);
    memset(slot, 0, sizeof *slot);
}

int cluster_wait_spawned(cluster_t *c, pid_t pid, int timeout_ms, cmd_result_t *r)
{
    spawned_t *slot = NULL;
    for (size_t i = 0; i < CLUSTER_SPAWNED_MAX && slot == NULL; i++) {
        slot = c->spawned[i].pid == pid ? &c->spawned[i] : NULL;
    }
    assert_non_null(slot);
    bool timed_out = false;
    int rc = wait_bounded(pid, timeout_ms, &timed_out);
    if (timed_out) {
        printf("# background command %d killed after %d ms\n", (int)pid, timeout_ms);
    }
    if (r != NULL) {
        r->rc = rc;
        r->out = nodes_read_file(slot->out_path, NULL);
        r->err = nodes_read_file(slot->err_path, NULL);
        assert_non_null(r->out);
        assert_non_null(r->err);
    } else if (rc != 0) {
        char *err = nodes_read_file(slot->err_path, NULL);
        printf("# background command %d exited %d: %.1000s\n", (int)pid, rc, err ? err : "");
        free(err);
    }
    spawned_release(slot);
    return rc;
}

/* ---- the cluster ---------------------------------------------------------------------------- */

cluster_t *cluster_new(void)
{
    cluster_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->dir = test_tmpdir();
    return c;
}

void node_print_log_tail(const tnode_t *n, size_t lines)
{
    size_t len = 0;
    char *text = nodes_read_file(n->log, &len);
    printf("# ---- last %zu lines of %s's log (%s) ----\n", lines, n->name, n->log);
    if (text == NULL) {
        printf("# (no log)\n");
        return;
    }
    size_t start = len, seen = 0;
    while (start > 0 && seen <= lines) {
        start--;
        if (text[start] == '\n' && start + 1 < len) {
            seen++;
        }
    }
    if (seen > lines) {
        start++;
    }
    const char *p = text + start;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);
        printf("#   %.*s\n", (int)l, p);
        p += l + (nl != NULL ? 1 : 0);
    }
    free(text);
}

bool node_log_contains(const tnode_t *n, const char *needle)
{
    char *text = nodes_read_file(n->log, NULL);
    bool found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    return found;
}

void cluster_destroy(cluster_t **self_p)
{
    cluster_t *c = *self_p;
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < CLUSTER_SPAWNED_MAX; i++) {
        if (c->spawned[i].pid > 0) {
            kill(c->spawned[i].pid, SIGKILL);
            while (waitpid(c->spawned[i].pid, NULL, 0) < 0 && errno == EINTR) {
            }
            spawned_release(&c->spawned[i]);
        }
    }
    for (size_t i = 0; i < c->count; i++) {
        node_kill9(&c->nodes[i]);
    }
    const char *keep = getenv("CORRIDOR_TEST_KEEP");
    if (!c->passed || (keep != NULL && strcmp(keep, "1") == 0)) {
        for (size_t i = 0; i < c->count; i++) {
            node_print_log_tail(&c->nodes[i], NODE_LOG_TAIL_LINES);
        }
        printf("# scratch directory kept: %s\n", c->dir);
    } else {
        test_rmtree(c->dir);
    }
    for (size_t i = 0; i < c->count; i++) {
        free(c->nodes[i].home);
        free(c->nodes[i].log);
    }
    for (size_t i = 0; i < c->port_locks_count; i++) {
        if (c->port_locks[i] >= 0) {
            close(c->port_locks[i]); /* the ports are free for other programs again */
        }
    }
    free(c->dir);
    free(c);
    *self_p = NULL;
}

int cluster_setup(void **state)
{
    *state = cluster_new();
    return 0;
}

int cluster_teardown(void **state)
{
    cluster_t *c = *state;
    cluster_destroy(&c);
    *state = NULL;
    return 0;
}

static bool port_taken(const cluster_t *c, int port)
{
    for (size_t i = 0; i < c->count; i++) {
        if (c->nodes[i].port == port || c->nodes[i].stream_port == port) {
            return true;
        }
    }
    return false;
}

/* Reserves `port` for this cluster with an exclusive lock on its lock file; false when
 * another test program holds it. */
static bool reserve_port(cluster_t *c, int port)
{
    assert_true(c->port_locks_count < sizeof c->port_locks / sizeof c->port_locks[0]);
    int fd = test_port_lock(port);
    if (fd == -2) {
        return false;
    }
    c->port_locks[c->port_locks_count++] = fd; /* -1: no lock to be had, the bind probe decides */
    return true;
}

int cluster_free_port(cluster_t *c)
{
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        int hi = 0;
        if (fscanf(f, "%d %d", &low, &hi) != 2) {
            low = 32768;
        }
        fclose(f);
    }
    if (low <= PORT_LOW + 1000) {
        low = 32768; /* an unusual range: just use the usual split */
    }
    unsigned seed = (unsigned)getpid() ^ (unsigned)mono_ms();
    for (int attempt = 0; attempt < PORT_TRIES; attempt++) {
        int port = PORT_LOW + (int)(rand_r(&seed) % (unsigned)(low - PORT_LOW));
        if (port_taken(c, port) || !reserve_port(c, port)) {
            continue;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in addr = {0};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons((uint16_t)port);
        int ok = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        close(fd);
        if (ok) {
            return port;
        }
        int lock = c->port_locks[--c->port_locks_count]; /* in use all the same: let it go */
        if (lock >= 0) {
            close(lock);
        }
    }
    /* Fall back on the kernel's choice (inside the ephemeral range). */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof addr;
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

tnode_t *cluster_add(cluster_t *c, const char *name, const char *currencies)
{
    assert_true(c->count < CLUSTER_NODES_MAX);
    tnode_t *n = &c->nodes[c->count];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->home = test_path(c->dir, name);
    char logname[64];
    snprintf(logname, sizeof logname, "%s.log", name);
    n->log = test_path(c->dir, logname);
    n->port = cluster_free_port(c);
    c->count++; /* counted before init, so that cleanup covers it; and its port is taken */
    n->stream_port = cluster_free_port(c);
    snprintf(n->endpoint, sizeof n->endpoint, "tcp://127.0.0.1:%d", n->port);
    snprintf(n->stream, sizeof n->stream, "tcp://127.0.0.1:%d", n->stream_port);
    cmd_result_t r;
    cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "init", "--home", n->home, "--name", name, "--listen",
                n->endpoint, "--listen-stream", n->stream, "--currencies", currencies, NULL);
    if (r.rc != 0) {
        printf("# init %s exited %d: %s\n", name, r.rc, r.err);
    }
    assert_int_equal(r.rc, 0);
    size_t len = strlen(r.out);
    while (len > 0 && (r.out[len - 1] == '\n' || r.out[len - 1] == '\r')) {
        r.out[--len] = '\0';
    }
    assert_true(len > 0 && len < sizeof n->card);
    assert_null(strchr(r.out, '\n')); /* one line */
    memcpy(n->card, r.out, len + 1);
    cmd_result_free(&r);
    return n;
}

void node_trust(cluster_t *c, tnode_t *self, const tnode_t *peer, const char *limits)
{
    const char *args[ARGS_MAX + 1];
    size_t n = 0;
    char copy[512] = "";
    args[n++] = "peer";
    args[n++] = "add";
    args[n++] = "--home";
    args[n++] = self->home;
    args[n++] = peer->card;
    if (limits != NULL) {
        assert_true(strlen(limits) < sizeof copy);
        snprintf(copy, sizeof copy, "%s", limits);
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            assert_true(n + 2 < ARGS_MAX);
            args[n++] = "--limit";
            args[n++] = tok;
        }
    }
    args[n] = NULL;
    cmd_result_t r;
    cluster_cmdv(c, NODE_CMD_TIMEOUT_MS, &r, args);
    if (r.rc != 0) {
        printf("# peer add %s at %s exited %d: %s\n", peer->name, self->name, r.rc, r.err);
    }
    assert_int_equal(r.rc, 0);
    cmd_result_free(&r);
}

void cluster_link(cluster_t *c, tnode_t *a, tnode_t *b, const char *limits)
{
    node_trust(c, a, b, limits);
    node_trust(c, b, a, limits);
}

/* ---- node processes ------------------------------------------------------------------------ */

bool node_alive(tnode_t *n)
{
    if (n->pid <= 0) {
        return false;
    }
    int status = 0;
    pid_t r = waitpid(n->pid, &status, WNOHANG);
    if (r == n->pid) {
        n->last_exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        n->pid = 0;
        return false;
    }
    return true;
}

static pid_t start_run(tnode_t *n, const char *faults)
{
    const char *args[] = {"run", "--home", n->home, NULL};
    return spawn(args, n->log, n->log, true, faults);
}

pid_t node_start_raw(cluster_t *c, tnode_t *n)
{
    (void)c;
    return start_run(n, NULL);
}

void node_start(cluster_t *c, tnode_t *n)
{
    node_start_faults(c, n, NULL);
}

void node_start_faults(cluster_t *c, tnode_t *n, const char *faults)
{
    assert_int_equal(n->pid, 0);
    n->pid = start_run(n, faults);
    int64_t deadline = mono_ms() + NODE_READY_MS;
    for (;;) {
        if (!node_alive(n)) {
            printf("# node %s exited at start with %d\n", n->name, n->last_exit);
            node_print_log_tail(n, 10);
            fail_msg("node %s did not start", n->name);
        }
        cmd_result_t r;
        int rc = cluster_cmd(c, STATUS_CALL_MS, &r, "status", "--home", n->home, "--json", NULL);
        cmd_result_free(&r);
        if (rc == 0) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("node %s did not answer status within %d ms", n->name, NODE_READY_MS);
        }
        sleep_ms(POLL_STEP_MS);
    }
}

int node_stop(cluster_t *c, tnode_t *n)
{
    (void)c;
    if (n->pid <= 0) {
        return n->last_exit;
    }
    kill(n->pid, SIGTERM);
    bool timed_out = false;
    int rc = wait_bounded(n->pid, NODE_STOP_MS, &timed_out);
    n->pid = 0;
    n->last_exit = rc;
    if (timed_out) {
        printf("# node %s did not stop within %d ms of SIGTERM\n", n->name, NODE_STOP_MS);
    }
    return rc;
}

void node_kill9(tnode_t *n)
{
    if (n->pid > 0) {
        kill(n->pid, SIGKILL);
        int status = 0;
        while (waitpid(n->pid, &status, 0) < 0 && errno == EINTR) {
        }
        n->pid = 0;
        n->last_exit = -1;
    }
}

/* ---- JSON views ------------------------------------------------------------------------------ */

static json_t *parse_or_fail(const char *what, const tnode_t *n, cmd_result_t *r)
{
    if (r->rc != 0) {
        printf("# %s of %s exited %d: %s\n", what, n->name, r->rc, r->err);
    }
    assert_int_equal(r->rc, 0);
    json_error_t jerr;
    json_t *doc = json_loads(r->out, 0, &jerr);
    if (doc == NULL) {
        printf("# %s of %s is not JSON: %s (line %d)\n", what, n->name, jerr.text, jerr.line);
    }
    assert_non_null(doc);
    cmd_result_free(r);
    return doc;
}

json_t *node_ledger(cluster_t *c, tnode_t *n)
{
    cmd_result_t r;
    cluster_cmd(c, NODE_CMD_TIMEOUT_MS, &r, "ledger", "--home", n->home, "--json", NULL);
    return parse_or_fail("ledger --json", n, &r);
}

json_t *node_status(cluster_t *c, tnode_t *n)
{
    cmd_result_t r;
    cluster_cmd(c, STATUS_CALL_MS * 2, &r, "status", "--home", n->home, "--json", NULL);
    return parse_or_fail("status --json", n, &r);
}

int64_t ledger_count(json_t *ledger, const char *status)
{
    json_t *v = json_object_get(json_object_get(ledger, "counts"), status);
    assert_true(json_is_integer(v));
    return (int64_t)json_integer_value(v);
}

static int64_t position_field(json_t *ledger, const char *peer, const char *currency,
                              const char *field)
{
    json_t *positions = json_object_get(ledger, "positions");
    assert_true(json_is_array(positions));
    size_t i;
    json_t *p;
    json_array_foreach(positions, i, p)
    {
        const char *pp = json_string_value(json_object_get(p, "peer"));
        const char *pc = json_string_value(json_object_get(p, "currency"));
        if (pp != NULL && pc != NULL && strcmp(pp, peer) == 0 && strcmp(pc, currency) == 0) {
            json_t *v = json_object_get(p, field);
            assert_true(json_is_integer(v));
            return (int64_t)json_integer_value(v);
        }
    }
    return 0;
}

int64_t ledger_net(json_t *ledger, const char *peer, const char *currency)
{
    return position_field(ledger, peer, currency, "net_minor");
}

int64_t ledger_pending(json_t *ledger, const char *peer, const char *currency)
{
    return position_field(ledger, peer, currency, "pending_minor");
}

json_t *ledger_json_find(json_t *ledger, const char *peer, const char *uetr, size_t *times)
{
    json_t *list = json_object_get(ledger, "settlements");
    assert_true(json_is_array(list));
    json_t *found = NULL;
    size_t count = 0, i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *u = json_string_value(json_object_get(s, "uetr"));
        const char *p = json_string_value(json_object_get(s, "peer"));
        if (u != NULL && p != NULL && strcmp(u, uetr) == 0 && strcmp(p, peer) == 0) {
            found = found != NULL ? found : s;
            count++;
        }
    }
    if (times != NULL) {
        *times = count;
    }
    return found;
}

json_t *ledger_index(json_t *ledger, const char *peer)
{
    json_t *list = json_object_get(ledger, "settlements");
    assert_true(json_is_array(list));
    json_t *index = json_object();
    assert_non_null(index);
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *u = json_string_value(json_object_get(s, "uetr"));
        const char *p = json_string_value(json_object_get(s, "peer"));
        assert_non_null(u);
        assert_non_null(p);
        if (peer != NULL && strcmp(p, peer) != 0) {
            continue;
        }
        if (json_object_get(index, u) != NULL) {
            fail_msg("UETR %s appears twice in %s's ledger", u,
                     json_string_value(json_object_get(ledger, "node")));
        }
        json_object_set(index, u, s);
    }
    return index;
}

json_t *status_peer(json_t *status, const char *peer)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(status, "peers"), i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name != NULL && strcmp(name, peer) == 0) {
            return p;
        }
    }
    return NULL;
}

/* ---- the usual nodes, and what they say ----------------------------------------------------- */

void cluster_pair(cluster_t *c, const char *caps, tnode_t **a, tnode_t **b)
{
    *a = cluster_add(c, NAME_A, NODES_CURRENCIES);
    *b = cluster_add(c, NAME_B, NODES_CURRENCIES);
    cluster_link(c, *a, *b, caps);
}

void cluster_started_pair(cluster_t *c, tnode_t **a, tnode_t **b)
{
    cluster_pair(c, NODES_GENEROUS_CAPS, a, b);
    node_start(c, *a);
    node_start(c, *b);
}

int node_send(cluster_t *c, tnode_t *from, const tnode_t *to, const char *amount,
              const char *currency, const char *uetr, const char *wait, cmd_result_t *r)
{
    const char *args[16];
    size_t n = 0;
    args[n++] = "send";
    args[n++] = "--home";
    args[n++] = from->home;
    args[n++] = "--to";
    args[n++] = to->name;
    args[n++] = "--amount";
    args[n++] = amount;
    args[n++] = "--currency";
    args[n++] = currency;
    if (uetr != NULL) {
        args[n++] = "--uetr";
        args[n++] = uetr;
    }
    if (wait != NULL) {
        args[n++] = "--wait";
        args[n++] = wait;
    }
    args[n] = NULL;
    return cluster_cmdv(c, NODE_SEND_MS, r, args);
}

char *plan_write_batch(cluster_t *c, const plan_t *p, size_t from, size_t start, size_t end)
{
    char file[64];
    snprintf(file, sizeof file, "batch-%u.csv", c->cmd_seq++);
    char *path = test_path(c->dir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "to,amount,currency,uetr\n");
    size_t lines = 0;
    for (size_t i = start; i < end; i++) {
        const planned_t *s = &p->items[i];
        if (s->from != from) {
            continue;
        }
        char amount[32];
        format_amount(s->minor, amount);
        fprintf(f, "%s,%s,%s,%s\n", c->nodes[s->to].name, amount, s->currency, s->uetr);
        lines++;
    }
    assert_int_equal(fclose(f), 0);
    if (lines == 0) {
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

char *node_ledger_head(cluster_t *c, tnode_t *n)
{
    json_t *l = node_ledger(c, n);
    const char *head = json_string_value(json_object_get(l, "head"));
    assert_non_null(head);
    char *copy = strdup(head);
    assert_non_null(copy);
    json_decref(l);
    return copy;
}

json_t *ledger_expect_entry(json_t *ledger, const char *peer, const char *uetr, const char *status)
{
    size_t times = 0;
    json_t *e = ledger_json_find(ledger, peer, uetr, &times);
    if (e == NULL) {
        fail_msg("%s: no settlement %s", json_string_value(json_object_get(ledger, "node")), uetr);
    }
    assert_int_equal(times, 1);
    const char *got = json_string_value(json_object_get(e, "status"));
    if (got == NULL || strcmp(got, status) != 0) {
        fail_msg("%s: settlement %s is %s, expected %s",
                 json_string_value(json_object_get(ledger, "node")), uetr,
                 got != NULL ? got : "(none)", status);
    }
    return e;
}

int64_t node_peer_field(cluster_t *c, tnode_t *n, const char *peer, const char *field)
{
    json_t *st = node_status(c, n);
    json_t *p = status_peer(st, peer);
    assert_non_null(p);
    json_t *v = json_object_get(p, field);
    assert_true(json_is_integer(v));
    int64_t value = (int64_t)json_integer_value(v);
    json_decref(st);
    return value;
}

void node_wait_peer_field(cluster_t *c, tnode_t *n, const char *peer, const char *field,
                          int64_t want, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms, have = 0;
    while ((have = node_peer_field(c, n, peer, field)) != want) {
        if (mono_ms() >= deadline) {
            fail_msg("%s: %s of %s is %lld after %d ms, expected %lld", n->name, field, peer,
                     (long long)have, timeout_ms, (long long)want);
        }
        sleep_ms(50);
    }
}

const char *node_peer_state(cluster_t *c, tnode_t *n, const char *peer)
{
    static char state[32];
    json_t *st = node_status(c, n);
    json_t *p = status_peer(st, peer);
    assert_non_null(p);
    const char *s = json_string_value(json_object_get(p, "state"));
    assert_non_null(s);
    snprintf(state, sizeof state, "%s", s);
    json_decref(st);
    return state;
}

bool node_peer_state_is(cluster_t *c, tnode_t *n, const char *peer, const char *state)
{
    return strcmp(node_peer_state(c, n, peer), state) == 0;
}

void pair_wait_state(cluster_t *c, tnode_t *a, tnode_t *b, const char *state, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        char sa[32];
        snprintf(sa, sizeof sa, "%s", node_peer_state(c, a, b->name));
        const char *sb = node_peer_state(c, b, a->name);
        if (strcmp(sa, state) == 0 && strcmp(sb, state) == 0) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("channel not %s on both sides after %d ms: %s sees %s, %s sees %s", state,
                     timeout_ms, a->name, sa, b->name, sb);
        }
        sleep_ms(50);
    }
}

/* sent_seq and outbox of n's channel with `peer`, from one status. */
static void peer_queue(cluster_t *c, tnode_t *n, const char *peer, int64_t *sent, int64_t *outbox)
{
    json_t *st = node_status(c, n);
    json_t *p = status_peer(st, peer);
    assert_non_null(p);
    json_t *s = json_object_get(p, "sent_seq"), *o = json_object_get(p, "outbox");
    assert_true(json_is_integer(s) && json_is_integer(o));
    *sent = (int64_t)json_integer_value(s);
    *outbox = (int64_t)json_integer_value(o);
    json_decref(st);
}

void pair_wait_idle(cluster_t *c, tnode_t *a, tnode_t *b, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    int64_t last_a = -1, last_b = -1;
    for (;;) {
        int64_t sent_a, outbox_a, sent_b, outbox_b;
        peer_queue(c, a, b->name, &sent_a, &outbox_a);
        peer_queue(c, b, a->name, &sent_b, &outbox_b);
        if (outbox_a == 0 && outbox_b == 0 && sent_a == last_a && sent_b == last_b) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("%s and %s still exchange after %d ms: outboxes %lld and %lld", a->name,
                     b->name, timeout_ms, (long long)outbox_a, (long long)outbox_b);
        }
        if (outbox_a != 0 || outbox_b != 0) {
            sleep_ms(50);
        }
        last_a = sent_a;
        last_b = sent_b;
    }
}

int64_t node_transport_counter(cluster_t *c, tnode_t *n, const char *name)
{
    json_t *st = node_status(c, n);
    json_t *v = json_object_get(json_object_get(st, "transport"), name);
    assert_true(json_is_integer(v));
    int64_t value = (int64_t)json_integer_value(v);
    json_decref(st);
    return value;
}

int64_t node_faults_counter(cluster_t *c, tnode_t *n, const char *name)
{
    json_t *st = node_status(c, n);
    json_t *v = json_object_get(json_object_get(st, "faults"), name);
    if (!json_is_integer(v)) {
        fail_msg("%s reports no faults.%s: not run with CORRIDOR_FAULTS?", n->name, name);
    }
    int64_t value = (int64_t)json_integer_value(v);
    json_decref(st);
    return value;
}

int64_t node_journal_rows(cluster_t *c, tnode_t *n)
{
    json_t *l = node_ledger(c, n);
    json_t *v = json_object_get(l, "journal_rows");
    assert_true(json_is_integer(v));
    int64_t rows = (int64_t)json_integer_value(v);
    json_decref(l);
    return rows;
}

size_t node_log_count(const tnode_t *n, const char *needle)
{
    char *text = nodes_read_file(n->log, NULL);
    size_t count = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p++) {
        count++;
    }
    free(text);
    return count;
}

void node_wait_log(const tnode_t *n, const char *needle, size_t count, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (node_log_count(n, needle) < count) {
        if (mono_ms() >= deadline) {
            fail_msg("%s logged '%s' %zu times in %d ms, expected %zu", n->name, needle,
                     node_log_count(n, needle), timeout_ms, count);
        }
        sleep_ms(50);
    }
}

void cluster_quiesce(cluster_t *c, tnode_t *const *nodes, size_t count, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        bool busy = false;
        char why[256] = "";
        for (size_t i = 0; i < count; i++) {
            if (nodes[i]->pid > 0 && !node_alive(nodes[i])) {
                fail_msg("node %s died while waiting for quiet (exit %d)", nodes[i]->name,
                         nodes[i]->last_exit);
            }
            json_t *l = node_ledger(c, nodes[i]);
            int64_t pending = ledger_count(l, "pending");
            json_decref(l);
            if (pending != 0) {
                busy = true;
                snprintf(why, sizeof why, "%s has %lld pending", nodes[i]->name,
                         (long long)pending);
                break;
            }
        }
        if (!busy) {
            return;
        }
        if (mono_ms() >= deadline) {
            fail_msg("not quiet after %d ms: %s", timeout_ms, why);
        }
        sleep_ms(500);
    }
}

void cluster_audit_clean(cluster_t *c, tnode_t *const *nodes, size_t count, int64_t entries_min)
{
    const char *args[ARGS_MAX + 1];
    size_t n = 0;
    args[n++] = "audit";
    for (size_t i = 0; i < count; i++) {
        assert_true(n + 3 < ARGS_MAX);
        args[n++] = "--home";
        args[n++] = nodes[i]->home;
    }
    args[n++] = "--json";
    args[n] = NULL;
    cmd_result_t r;
    cluster_cmdv(c, 120000, &r, args);
    if (r.rc != 0) {
        printf("# audit exited %d\n# stdout: %.2000s\n# stderr: %.500s\n", r.rc, r.out, r.err);
    }
    assert_int_equal(r.rc, 0);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    assert_true(json_is_true(json_object_get(doc, "ok")));
    json_t *checked = json_object_get(doc, "entries_checked");
    assert_true(json_is_integer(checked));
    if (json_integer_value(checked) < entries_min) {
        fail_msg("audit checked %lld entries, expected at least %lld",
                 (long long)json_integer_value(checked), (long long)entries_min);
    }
    assert_int_equal(json_array_size(json_object_get(doc, "violations")), 0);
    json_decref(doc);
    cmd_result_free(&r);
}

int nodes_run_program(const char *const *argv, int timeout_ms)
{
    int in = open("/dev/null", O_RDWR | O_CLOEXEC);
    assert_true(in >= 0);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || dup2(in, 0) < 0 || dup2(in, 1) < 0 || dup2(in, 2) < 0) {
            _exit(126);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in);
    assert_true(pid > 0);
    bool timed_out = false;
    return wait_bounded(pid, timeout_ms, &timed_out);
}

/* ---- the test's own ZeroMQ clients ------------------------------------------------------------
 */

void *nodes_monitor(void *ctx, void *sock, int events)
{
    static unsigned monitors;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://nodes-monitor-%u", monitors++);
    assert_int_equal(zmq_socket_monitor(sock, endpoint, events), 0);
    void *monitor = zmq_socket(ctx, ZMQ_PAIR);
    assert_non_null(monitor);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(monitor, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_connect(monitor, endpoint), 0);
    return monitor;
}

int nodes_wait_event(void *monitor, int events, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - mono_ms());
        if (left <= 0) {
            fail_msg("no socket event 0x%x within %d ms", (unsigned)events, timeout_ms);
        }
        assert_int_equal(zmq_setsockopt(monitor, ZMQ_RCVTIMEO, &left, sizeof left), 0);
        zmq_msg_t event;
        zmq_msg_init(&event);
        int rc = zmq_msg_recv(&event, monitor, 0);
        uint16_t id = 0;
        if (rc >= 2) {
            memcpy(&id, zmq_msg_data(&event), sizeof id);
        }
        bool more = rc >= 0 && zmq_msg_more(&event);
        zmq_msg_close(&event);
        if (more) { /* the event's second frame: the endpoint */
            zmq_msg_init(&event);
            (void)zmq_msg_recv(&event, monitor, 0);
            zmq_msg_close(&event);
        }
        if (rc >= 0 && (id & events) != 0) {
            return id;
        }
    }
}

/* ---- settlement plans ---------------------------------------------------------------------- */

const char *const nodes_currencies[NODES_CURRENCY_COUNT] = {"RUB", "USD", "KZT"};

static plan_t the_plan;

plan_t *plan_new(uint32_t seed)
{
    memset(&the_plan, 0, sizeof the_plan);
    the_plan.rng = seed;
    return &the_plan;
}

uint32_t plan_next(plan_t *p)
{
    p->rng = p->rng * 1664525u + 1013904223u;
    return p->rng >> 8;
}

void plan_add(plan_t *p, size_t from, size_t to, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        assert_true(p->count < PLAN_MAX);
        planned_t *s = &p->items[p->count++];
        uetr_generate(s->uetr);
        s->from = from;
        s->to = to;
        s->currency = nodes_currencies[plan_next(p) % NODES_CURRENCY_COUNT];
        s->minor = 1 + (int64_t)(plan_next(p) % 100000);
    }
}

void format_amount(int64_t minor, char out[static 32])
{
    snprintf(out, 32, "%lld.%02lld", (long long)(minor / 100), (long long)(minor % 100));
}
