/*
 * `corridor testnet up|status|down|audit`: a network of nodes on this machine in one
 * command, for people who try Corridor and for their own tests (what `bitcoind -regtest` or
 * a Hardhat node give their users).
 *
 * `up` creates a home per node under DIR (DIR/CODE) on free loopback ports, exchanges cards
 * along the topology, grants the caps, starts every node in the background (its log in
 * DIR/CODE/node.log, its pid in DIR/CODE.pid) and waits until every channel is up. The
 * network is described in DIR/testnet.json, which the other subcommands read; `up` on a
 * network that is down, or partly, starts the nodes that are down.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"
#include "fsutil.h"
#include "home_init.h"
#include "validate.h"

#define TESTNET_NODES_MAX   16
#define TESTNET_EDGES_MAX   (TESTNET_NODES_MAX * (TESTNET_NODES_MAX - 1) / 2)
#define TESTNET_STATE       "testnet.json"
#define TESTNET_STATE_MAX   (64 * 1024)
#define TESTNET_CAPS_MAX    CORRIDOR_CURRENCIES_MAX
#define TESTNET_DEFAULT_CAP "1000000" /* in currency units, each way, when no --cap is given */
#define START_TIMEOUT_MS    10000     /* for one node to hold its home */
#define UP_TIMEOUT_MS       60000     /* for every channel to come up */
#define STOP_TIMEOUT_MS     30000     /* for one node to stop after SIGTERM */
#define POLL_MS             50

typedef struct {
    char name[CORRIDOR_NAME_LEN_MAX + 1];
    char home[CORRIDOR_PATH_LEN_MAX];
    char endpoint[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    char stream[CORRIDOR_ENDPOINT_LEN_MAX + 1];
    peer_card_t card;
} tn_node_t;

typedef struct {
    char dir[CORRIDOR_PATH_LEN_MAX];
    char topology[8];
    tn_node_t nodes[TESTNET_NODES_MAX];
    size_t count;
    size_t edges[TESTNET_EDGES_MAX][2]; /* channels, by node index */
    size_t edges_count;
} testnet_t;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int path_in(char *out, size_t size, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(out, size, "%s/%s%s", dir, name, suffix);
    if (n < 0 || (size_t)n >= size) {
        complain("%s: path too long", dir);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* ---- the description in DIR/testnet.json ------------------------------------------------ */

static int save_state(const testnet_t *t)
{
    json_t *nodes = json_array(), *channels = json_array();
    for (size_t i = 0; i < t->count; i++) {
        const tn_node_t *n = &t->nodes[i];
        char card[CORRIDOR_CARD_LEN_MAX + 1];
        card_encode(&n->card, card, sizeof card);
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", n->name, "home",
                                               n->home, "endpoint", n->endpoint, "stream_endpoint",
                                               n->stream, "card", card));
    }
    for (size_t e = 0; e < t->edges_count; e++) {
        json_array_append_new(channels, json_pack("[s, s]", t->nodes[t->edges[e][0]].name,
                                                  t->nodes[t->edges[e][1]].name));
    }
    json_t *doc =
        json_pack("{s:s, s:o, s:o}", "topology", t->topology, "nodes", nodes, "channels", channels);
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    char path[CORRIDOR_PATH_LEN_MAX];
    int rc = text == NULL ? EXIT_INTERNAL : path_in(path, sizeof path, t->dir, TESTNET_STATE, "");
    if (rc == EXIT_OK && fs_write_atomic(path, text, strlen(text), 0600) != 0) {
        complain("cannot write %s: %s", path, strerror(errno));
        rc = EXIT_INTERNAL;
    }
    free(text);
    return rc;
}

static int find_node(const testnet_t *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->nodes[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Reads DIR/testnet.json. EXIT_NEGATIVE (quietly) when there is none. */
static int load_state(testnet_t *t, const char *dir)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    char path[CORRIDOR_PATH_LEN_MAX];
    static char text[TESTNET_STATE_MAX + 1];
    if (path_in(path, sizeof path, dir, TESTNET_STATE, "") != EXIT_OK) {
        return EXIT_USAGE;
    }
    ssize_t len = fs_read_bounded(path, text, TESTNET_STATE_MAX);
    if (len < 0) {
        if (errno == ENOENT) {
            return EXIT_NEGATIVE;
        }
        complain("%s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, (size_t)len, 0, &jerr);
    json_t *nodes = json_object_get(doc, "nodes"), *channels = json_object_get(doc, "channels");
    const char *topology = json_string_value(json_object_get(doc, "topology"));
    int rc = EXIT_USAGE;
    if (!json_is_array(nodes) || !json_is_array(channels) || topology == NULL ||
        json_array_size(nodes) > TESTNET_NODES_MAX ||
        json_array_size(channels) > TESTNET_EDGES_MAX) {
        complain("%s: not a testnet description%s%s", path, doc == NULL ? ": " : "",
                 doc == NULL ? jerr.text : "");
        goto done;
    }
    snprintf(t->topology, sizeof t->topology, "%s", topology);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        tn_node_t *node = &t->nodes[t->count];
        peer_card_t card;
        const char *card_text = json_string_value(json_object_get(n, "card"));
        const char *home = json_string_value(json_object_get(n, "home"));
        if (card_text == NULL || home == NULL || card_parse(card_text, &card) != CARD_OK ||
            strlen(home) >= sizeof node->home || find_node(t, card.name) >= 0) {
            complain("%s: node %zu is malformed", path, i + 1);
            goto done;
        }
        node->card = card;
        snprintf(node->name, sizeof node->name, "%s", card.name);
        snprintf(node->home, sizeof node->home, "%s", home);
        snprintf(node->endpoint, sizeof node->endpoint, "%s", card.endpoint);
        snprintf(node->stream, sizeof node->stream, "%s", card_stream_endpoint(&card));
        t->count++;
    }
    json_t *c;
    json_array_foreach(channels, i, c)
    {
        int a = find_node(t, json_string_value(json_array_get(c, 0)) ?: "");
        int b = find_node(t, json_string_value(json_array_get(c, 1)) ?: "");
        if (a < 0 || b < 0) {
            complain("%s: channel %zu names an unknown node", path, i + 1);
            goto done;
        }
        t->edges[t->edges_count][0] = (size_t)a;
        t->edges[t->edges_count][1] = (size_t)b;
        t->edges_count++;
    }
    rc = EXIT_OK;

done:
    json_decref(doc);
    return rc;
}

/* ---- processes --------------------------------------------------------------------------- */

static pid_t read_pid(const testnet_t *t, size_t i)
{
    char path[CORRIDOR_PATH_LEN_MAX], text[32];
    if (path_in(path, sizeof path, t->dir, t->nodes[i].name, ".pid") != EXIT_OK ||
        fs_read_bounded(path, text, sizeof text - 1) < 0) {
        return 0;
    }
    long pid = strtol(text, NULL, 10);
    return pid > 1 ? (pid_t)pid : 0;
}

static bool node_running(const testnet_t *t, size_t i)
{
    return control_node_running(t->nodes[i].home);
}

/* Starts one node in the background and waits until it holds its home. */
static int start_node(const testnet_t *t, size_t i)
{
    const tn_node_t *n = &t->nodes[i];
    char exe[CORRIDOR_PATH_LEN_MAX], log[CORRIDOR_PATH_LEN_MAX], pidfile[CORRIDOR_PATH_LEN_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0 || (size_t)len >= sizeof exe - 1) {
        complain("cannot find this program: %s", strerror(errno));
        return EXIT_INTERNAL;
    }
    exe[len] = '\0';
    if (path_in(log, sizeof log, n->home, "node.log", "") != EXIT_OK ||
        path_in(pidfile, sizeof pidfile, t->dir, n->name, ".pid") != EXIT_OK) {
        return EXIT_USAGE;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        complain("cannot start %s: %s", n->name, strerror(errno));
        return EXIT_INTERNAL;
    }
    if (pid == 0) { /* the node: its own session, its log in its home */
        int null = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (null < 0 || out < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
            dup2(out, STDERR_FILENO) < 0 || setsid() < 0) {
            _exit(EXIT_INTERNAL);
        }
        execl(exe, "corridor", "run", "--home", n->home, (char *)NULL);
        _exit(EXIT_INTERNAL);
    }
    char text[32];
    int tl = snprintf(text, sizeof text, "%ld\n", (long)pid);
    if (fs_write_atomic(pidfile, text, (size_t)tl, 0600) != 0) {
        complain("cannot write %s: %s", pidfile, strerror(errno));
    }
    for (int64_t deadline = monotonic_ms() + START_TIMEOUT_MS; monotonic_ms() < deadline;) {
        if (node_running(t, i)) {
            return EXIT_OK;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            complain("%s stopped as it started (exit %d); see %s", n->name,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1, log);
            return EXIT_INTERNAL;
        }
        pause_ms(POLL_MS / 5);
    }
    complain("%s did not start within %d s; see %s", n->name, START_TIMEOUT_MS / 1000, log);
    return EXIT_TIMEOUT;
}

/* The state of every channel of a running node, from its status: how many are up. */
static size_t channels_up(const tn_node_t *n, json_t **status)
{
    json_t *req = json_pack("{s:s}", "cmd", "status"), *reply = NULL;
    char err[256] = "";
    control_err_t rc = control_call(n->home, req, 2000, &reply, err, sizeof err);
    json_decref(req);
    size_t up = 0, i;
    json_t *p;
    if (rc == CONTROL_OK) {
        json_array_foreach(json_object_get(reply, "peers"), i, p)
        {
            const char *state = json_string_value(json_object_get(p, "state"));
            up += state != NULL && strcmp(state, "up") == 0;
        }
    }
    if (status != NULL) {
        *status = reply;
    } else {
        json_decref(reply);
    }
    return up;
}

/* Waits until both ends of every channel say it is up; a progress line on a terminal. */
static int wait_up(const testnet_t *t)
{
    size_t want = 2 * t->edges_count, up = 0;
    bool tty = isatty(STDERR_FILENO);
    for (int64_t deadline = monotonic_ms() + UP_TIMEOUT_MS; monotonic_ms() < deadline;) {
        up = 0;
        for (size_t i = 0; i < t->count; i++) {
            up += channels_up(&t->nodes[i], NULL);
        }
        if (tty) {
            fprintf(stderr, "\rwaiting for channels: %zu of %zu ends up ", up, want);
        }
        if (up >= want) {
            if (tty) {
                fputc('\n', stderr);
            }
            return EXIT_OK;
        }
        pause_ms(POLL_MS);
    }
    if (tty) {
        fputc('\n', stderr);
    }
    complain("only %zu of %zu channel ends came up within %d s; see the node.log of each home", up,
             want, UP_TIMEOUT_MS / 1000);
    return EXIT_TIMEOUT;
}

/* Stops one node: SIGTERM, then waits for it to let go of its home. */
static int stop_node(const testnet_t *t, size_t i)
{
    pid_t pid = read_pid(t, i);
    if (!node_running(t, i)) {
        return EXIT_OK;
    }
    if (pid == 0 || kill(pid, SIGTERM) != 0) {
        complain("%s runs but its pid is unknown (%s/%s.pid); stop it yourself", t->nodes[i].name,
                 t->dir, t->nodes[i].name);
        return EXIT_INTERNAL;
    }
    for (int64_t deadline = monotonic_ms() + STOP_TIMEOUT_MS; monotonic_ms() < deadline;) {
        (void)waitpid(pid, NULL, WNOHANG); /* ours when up started it in this process */
        if (!node_running(t, i)) {
            char path[CORRIDOR_PATH_LEN_MAX];
            if (path_in(path, sizeof path, t->dir, t->nodes[i].name, ".pid") == EXIT_OK) {
                unlink(path);
            }
            return EXIT_OK;
        }
        pause_ms(POLL_MS);
    }
    complain("%s (pid %ld) did not stop within %d s", t->nodes[i].name, (long)pid,
             STOP_TIMEOUT_MS / 1000);
    return EXIT_TIMEOUT;
}

/* ---- creating a network ----------------------------------------------------------------- */

typedef struct {
    const char *dir, *nodes, *currencies, *topology;
    const char *caps[TESTNET_CAPS_MAX];
    size_t caps_count;
} up_args_t;

/* Free loopback ports: bound all at once (so none repeats), then released for the nodes. */
static int free_ports(unsigned short *ports, size_t count)
{
    int fds[2 * TESTNET_NODES_MAX];
    assert(count <= sizeof fds / sizeof fds[0]);
    int rc = EXIT_OK;
    size_t opened = 0;
    for (; opened < count; opened++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof a;
        fds[opened] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[opened] < 0 || bind(fds[opened], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[opened], (struct sockaddr *)&a, &alen) != 0) {
            complain("cannot find a free loopback port: %s", strerror(errno));
            rc = EXIT_INTERNAL;
            opened += fds[opened] >= 0;
            break;
        }
        ports[opened] = ntohs(a.sin_port);
    }
    for (size_t i = 0; i < opened; i++) {
        close(fds[i]);
    }
    return rc;
}

/* The channels of a topology over count nodes. */
static int plan_edges(testnet_t *t, const char *topology)
{
    snprintf(t->topology, sizeof t->topology, "%s", topology);
    for (size_t i = 0; i < t->count; i++) {
        for (size_t j = i + 1; j < t->count; j++) {
            bool take = strcmp(topology, "mesh") == 0 ||
                        (strcmp(topology, "star") == 0 && i == 0) ||
                        (strcmp(topology, "ring") == 0 &&
                         (j == i + 1 || (i == 0 && j == t->count - 1 && t->count > 2)));
            if (take) {
                t->edges[t->edges_count][0] = i;
                t->edges[t->edges_count][1] = j;
                t->edges_count++;
            }
        }
    }
    if (strcmp(topology, "mesh") != 0 && strcmp(topology, "ring") != 0 &&
        strcmp(topology, "star") != 0) {
        complain("--topology %s: expected mesh, ring or star", topology);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int parse_nodes(testnet_t *t, const char *list)
{
    char copy[TESTNET_NODES_MAX * (CORRIDOR_NAME_LEN_MAX + 1) + 1];
    if (strlen(list) >= sizeof copy) {
        complain("--nodes: at most %d nodes", TESTNET_NODES_MAX);
        return EXIT_USAGE;
    }
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        valid_err_t verr = node_code_check(name);
        if (verr != VALID_OK) {
            complain("--nodes: %s: %s (a node code is 4-11 of A-Z, 0-9, starting with a letter)",
                     name, valid_strerror(verr));
            return EXIT_USAGE;
        }
        if (find_node(t, name) >= 0 || t->count == TESTNET_NODES_MAX) {
            complain("--nodes: %s", t->count == TESTNET_NODES_MAX ? "too many nodes (16 at most)"
                                                                  : "a node named twice");
            return EXIT_USAGE;
        }
        snprintf(t->nodes[t->count++].name, sizeof t->nodes[0].name, "%s", name);
    }
    if (t->count < 2) {
        complain("--nodes: name at least two nodes, e.g. --nodes BKRURUMM,BMJIIRTH");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Grants `peer` the caps given (default: TESTNET_DEFAULT_CAP of every currency). */
static int grant_caps(const config_t *config, config_peer_t *peer, const up_args_t *a)
{
    unsigned given = 0;
    for (size_t c = 0; c < a->caps_count; c++) {
        int rc = cli_apply_cap(config, peer, "--cap", a->caps[c], &given);
        if (rc != EXIT_OK) {
            return rc;
        }
    }
    for (size_t c = 0; a->caps_count == 0 && c < config->currencies_count; c++) {
        char cap[32];
        snprintf(cap, sizeof cap, "%s=%s", config->currencies[c], TESTNET_DEFAULT_CAP);
        int rc = cli_apply_cap(config, peer, "--cap", cap, &given);
        if (rc != EXIT_OK) {
            return rc;
        }
    }
    return EXIT_OK;
}

/* Creates every home, then makes the nodes of each channel trust each other. */
static int create_network(testnet_t *t, const up_args_t *a)
{
    static config_t *configs[TESTNET_NODES_MAX];
    unsigned short ports[2 * TESTNET_NODES_MAX];
    int rc = free_ports(ports, 2 * t->count);
    for (size_t i = 0; rc == EXIT_OK && i < t->count; i++) {
        tn_node_t *n = &t->nodes[i];
        char err[512];
        home_t home;
        identity_t *identity = NULL;
        snprintf(n->endpoint, sizeof n->endpoint, "tcp://127.0.0.1:%u", ports[2 * i]);
        snprintf(n->stream, sizeof n->stream, "tcp://127.0.0.1:%u", ports[2 * i + 1]);
        if ((rc = path_in(n->home, sizeof n->home, t->dir, n->name, "")) != EXIT_OK ||
            (rc = cli_home(&home, n->home)) != EXIT_OK) {
            break;
        }
        configs[i] = config_new();
        if (configs[i] == NULL ||
            config_set_currencies(configs[i], a->currencies, err, sizeof err) != 0) {
            complain("--%s", configs[i] == NULL ? "out of memory" : err);
            rc = EXIT_USAGE;
            break;
        }
        snprintf(configs[i]->name, sizeof configs[i]->name, "%s", n->name);
        snprintf(configs[i]->listen, sizeof configs[i]->listen, "%s", n->endpoint);
        snprintf(configs[i]->listen_stream, sizeof configs[i]->listen_stream, "%s", n->stream);
        home_init_err_t made = home_init(&home, configs[i], &identity, err, sizeof err);
        if (made != HOME_INIT_OK) {
            complain("%s: %s: %s", n->name, home_init_strerror(made), err);
            rc = made == HOME_INIT_E_EXISTS ? EXIT_USAGE : EXIT_INTERNAL;
            break;
        }
        cli_node_card(identity, configs[i], &n->card);
        identity_destroy(&identity);
    }
    for (size_t e = 0; rc == EXIT_OK && e < t->edges_count; e++) {
        for (int side = 0; rc == EXIT_OK && side < 2; side++) {
            size_t self = t->edges[e][side], other = t->edges[e][1 - side];
            config_t *config = configs[self];
            config_peer_t *peer = &config->peers[config->peers_count++];
            memset(peer, 0, sizeof *peer);
            peer->card = t->nodes[other].card;
            rc = grant_caps(config, peer, a);
        }
    }
    for (size_t i = 0; rc == EXIT_OK && i < t->count; i++) {
        home_t home;
        if (cli_home(&home, t->nodes[i].home) != EXIT_OK ||
            config_save(configs[i], home.config_path) != 0) {
            complain("cannot write %s's config: %s", t->nodes[i].name, strerror(errno));
            rc = EXIT_INTERNAL;
        }
    }
    for (size_t i = 0; i < t->count; i++) {
        config_destroy(&configs[i]);
    }
    return rc == EXIT_OK ? save_state(t) : rc;
}

static void print_network(const testnet_t *t, bool json)
{
    if (json) {
        json_t *nodes = json_array();
        for (size_t i = 0; i < t->count; i++) {
            const tn_node_t *n = &t->nodes[i];
            json_array_append_new(nodes,
                                  json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", n->name,
                                            "endpoint", n->endpoint, "stream_endpoint", n->stream,
                                            "home", n->home, "pid", (json_int_t)read_pid(t, i)));
        }
        (void)cli_print_document(json_pack("{s:s, s:s, s:o, s:I}", "dir", t->dir, "topology",
                                           t->topology, "nodes", nodes, "channels",
                                           (json_int_t)t->edges_count));
        return;
    }
    printf("testnet in %s: %zu nodes, %zu channels (%s), every channel up\n", t->dir, t->count,
           t->edges_count, t->topology);
    for (size_t i = 0; i < t->count; i++) {
        printf("  %-11s %-24s %s\n", t->nodes[i].name, t->nodes[i].endpoint, t->nodes[i].home);
    }
    const tn_node_t *a = &t->nodes[t->edges[0][0]], *b = &t->nodes[t->edges[0][1]];
    home_t home;
    config_t *config = NULL;
    if (cli_home(&home, a->home) == EXIT_OK && cli_load_config(&home, &config) == EXIT_OK) {
        printf("try:\n  corridor send --home %s --to %s --amount 100 --currency %s --wait 10\n",
               a->home, b->name, config->currencies[0]);
    }
    config_destroy(&config);
    printf("  corridor testnet audit --dir %s\n  corridor testnet down --dir %s\n", t->dir, t->dir);
}

/* ---- the subcommands -------------------------------------------------------------------- */

enum { OPT_DIR = 1, OPT_NODES, OPT_CURRENCIES, OPT_CAP, OPT_TOPOLOGY };

static int up_option(void *ctx, int key, const char *value)
{
    up_args_t *a = ctx;
    switch (key) {
    case OPT_DIR:
        a->dir = value;
        break;
    case OPT_NODES:
        a->nodes = value;
        break;
    case OPT_CURRENCIES:
        a->currencies = value;
        break;
    case OPT_TOPOLOGY:
        a->topology = value;
        break;
    default:
        assert(key == OPT_CAP);
        if (a->caps_count == TESTNET_CAPS_MAX) {
            complain("more than %d --cap options", TESTNET_CAPS_MAX);
            return EXIT_USAGE;
        }
        a->caps[a->caps_count++] = value;
        break;
    }
    return EXIT_OK;
}

static const struct option up_options[] = {{"dir", required_argument, NULL, OPT_DIR},
                                           {"nodes", required_argument, NULL, OPT_NODES},
                                           {"currencies", required_argument, NULL, OPT_CURRENCIES},
                                           {"cap", required_argument, NULL, OPT_CAP},
                                           {"topology", required_argument, NULL, OPT_TOPOLOGY},
                                           {NULL, 0, NULL, 0}};
static const struct option dir_options[] = {{"dir", required_argument, NULL, OPT_DIR},
                                            {NULL, 0, NULL, 0}};

static const cli_spec_t up_spec = {
    .usage = "corridor testnet up --dir DIR --nodes CODE,CODE[,...] [--currencies RUB,IRR]\n"
             "              [--cap CCY=AMOUNT]... [--topology mesh|ring|star] [--json]",
    .help =
        "Creates a home per node under DIR (DIR/CODE) on free loopback ports, makes the "
        "nodes of each\nchannel trust each other with the caps given (default " TESTNET_DEFAULT_CAP
        " of each currency,\nboth ways), starts every node in the background (log: "
        "DIR/CODE/node.log) and waits until\nevery channel is up. Topology: mesh (default: "
        "every pair), ring, or star (the first node\nwith every other). On a network that is "
        "down (or partly),\nstarts the nodes that are down.\n"
        "Example: corridor testnet up --dir /tmp/net --nodes BKRURUMM,BMJIIRTH,KZKZKZKA "
        "--cap RUB=50000\n",
    .json = true,
    .options = up_options};

static const cli_spec_t status_spec = {
    .usage = "corridor testnet status --dir DIR [--json]",
    .help = "Each node of the network: running or not, and the state of its channels.\n"
            "Exit 0 when every node runs, 1 when one does not.\n"
            "Example: corridor testnet status --dir /tmp/net --json\n",
    .json = true,
    .options = dir_options};

static const cli_spec_t down_spec = {
    .usage = "corridor testnet down --dir DIR",
    .help = "Stops every node of the network (SIGTERM), waiting for each; the homes stay.\n"
            "Example: corridor testnet down --dir /tmp/net\n",
    .options = dir_options};

static const cli_spec_t audit_spec = {
    .usage = "corridor testnet audit --dir DIR [--json]",
    .help = "Audits every home together (with every node's card), then reconciles every "
            "channel whose\nnodes run. Exit 0 clean, 1 violations or breaks.\n"
            "Example: corridor testnet audit --dir /tmp/net --json\n",
    .json = true,
    .options = dir_options};

/* Parses a subcommand's options and reads the network of --dir (want_state: it must exist). */
static int open_network(int argc, char **argv, const cli_spec_t *spec, up_args_t *a,
                        cli_args_t *args, testnet_t *t, bool want_state)
{
    int rc = cli_parse(argc, argv, spec, up_option, a, args);
    if (rc != EXIT_OK || args->help) {
        return rc;
    }
    if (a->dir == NULL) {
        complain("--dir DIR is required; usage: %s", spec->usage);
        return EXIT_USAGE;
    }
    rc = load_state(t, a->dir);
    if (rc == EXIT_NEGATIVE && want_state) {
        complain("no testnet in %s (no %s); create one with `corridor testnet up`", a->dir,
                 TESTNET_STATE);
        return EXIT_USAGE;
    }
    return rc;
}

static int testnet_up(int argc, char **argv)
{
    static testnet_t t;
    up_args_t a = {.currencies = DEFAULT_CURRENCIES, .topology = "mesh"};
    cli_args_t args;
    int rc = open_network(argc, argv, &up_spec, &a, &args, &t, false);
    if (args.help || (rc != EXIT_OK && rc != EXIT_NEGATIVE)) {
        return rc;
    }
    if (rc == EXIT_OK) { /* a network is described here already */
        size_t running = 0;
        for (size_t i = 0; i < t.count; i++) {
            running += node_running(&t, i);
        }
        if (running == t.count) {
            complain("the testnet in %s is already up (%zu nodes run); `corridor testnet down "
                     "--dir %s` first",
                     a.dir, running, a.dir);
            return EXIT_USAGE;
        }
        if (a.nodes != NULL) {
            complain("a testnet is described in %s already: starting the nodes that are down "
                     "(--nodes ignored)",
                     a.dir);
        }
    } else {
        if (a.nodes == NULL) {
            complain("--nodes CODE,CODE[,...] is required; usage: %s", up_spec.usage);
            return EXIT_USAGE;
        }
        snprintf(t.dir, sizeof t.dir, "%s", a.dir);
        mode_t mode = 0;
        if ((rc = parse_nodes(&t, a.nodes)) != EXIT_OK ||
            (rc = plan_edges(&t, a.topology)) != EXIT_OK) {
            return rc;
        }
        char absolute[PATH_MAX];
        if (fs_make_private_dir(a.dir, &mode) != 0 || realpath(a.dir, absolute) == NULL) {
            complain("%s: %s", a.dir, strerror(errno));
            return EXIT_USAGE;
        }
        if (strlen(absolute) + 2 * CORRIDOR_NAME_LEN_MAX + 16 >= sizeof t.dir) {
            complain("%s: path too long", absolute);
            return EXIT_USAGE;
        }
        snprintf(t.dir, sizeof t.dir, "%s", absolute); /* homes usable from anywhere */
        if ((rc = create_network(&t, &a)) != EXIT_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < t.count; i++) {
        if (!node_running(&t, i) && (rc = start_node(&t, i)) != EXIT_OK) {
            return rc; /* `down` stops what runs */
        }
    }
    if ((rc = wait_up(&t)) != EXIT_OK) {
        return rc;
    }
    print_network(&t, args.json);
    return EXIT_OK;
}

static int testnet_status(int argc, char **argv)
{
    static testnet_t t;
    up_args_t a = {0};
    cli_args_t args;
    int rc = open_network(argc, argv, &status_spec, &a, &args, &t, true);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    json_t *nodes = json_array();
    size_t running = 0;
    if (!args.json) {
        printf("testnet in %s (%s):\n", t.dir, t.topology);
    }
    for (size_t i = 0; i < t.count; i++) {
        const tn_node_t *n = &t.nodes[i];
        bool runs = node_running(&t, i);
        json_t *status = NULL;
        size_t up = runs ? channels_up(n, &status) : 0;
        running += runs;
        json_t *peers = json_array();
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(status, "peers"), k, p)
        {
            json_array_append_new(peers, json_pack("{s:O, s:O}", "name", json_object_get(p, "name"),
                                                   "state", json_object_get(p, "state")));
        }
        if (!args.json && runs) {
            printf("  %-11s running  %zu of %zu channels up  %s\n", n->name, up,
                   json_array_size(peers), n->home);
        } else if (!args.json) {
            printf("  %-11s DOWN     see %s/node.log\n", n->name, n->home);
        }
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:b, s:I, s:o}", "name", n->name, "home",
                                        n->home, "running", runs, "pid",
                                        (json_int_t)(runs ? read_pid(&t, i) : 0), "peers", peers));
        json_decref(status);
    }
    bool all = running == t.count;
    if (args.json) {
        rc = cli_print_document(
            json_pack("{s:s, s:b, s:o}", "dir", t.dir, "up", all, "nodes", nodes));
    } else {
        json_decref(nodes);
    }
    return rc != EXIT_OK ? rc : all ? EXIT_OK : EXIT_NEGATIVE;
}

static int testnet_down(int argc, char **argv)
{
    static testnet_t t;
    up_args_t a = {0};
    cli_args_t args;
    int rc = open_network(argc, argv, &down_spec, &a, &args, &t, true);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    size_t stopped = 0;
    for (size_t i = 0; i < t.count; i++) {
        bool was = node_running(&t, i);
        int one = stop_node(&t, i);
        stopped += was && one == EXIT_OK;
        rc = one != EXIT_OK ? one : rc;
    }
    printf("testnet in %s: %zu node%s stopped\n", t.dir, stopped, stopped == 1 ? "" : "s");
    return rc;
}

static int testnet_audit(int argc, char **argv)
{
    static testnet_t t;
    up_args_t a = {0};
    cli_args_t args;
    int rc = open_network(argc, argv, &audit_spec, &a, &args, &t, true);
    if (rc != EXIT_OK || args.help) {
        return rc;
    }
    static peer_card_t cards[TESTNET_NODES_MAX];
    const char *homes[TESTNET_NODES_MAX];
    for (size_t i = 0; i < t.count; i++) {
        cards[i] = t.nodes[i].card;
        homes[i] = t.nodes[i].home;
    }
    json_t *audit = NULL;
    int audited = cli_audit_homes(homes, t.count, cards, t.count, false, &audit);
    if (audit == NULL) {
        return audited != EXIT_OK ? audited : EXIT_INTERNAL;
    }
    json_t *reconciliations = json_array();
    bool clean = audited == EXIT_OK;
    for (size_t e = 0; e < t.edges_count; e++) {
        const tn_node_t *x = &t.nodes[t.edges[e][0]], *y = &t.nodes[t.edges[e][1]];
        json_t *report = NULL;
        int r = EXIT_UNREACHABLE;
        if (node_running(&t, t.edges[e][0]) && node_running(&t, t.edges[e][1])) {
            home_t home;
            if (cli_home(&home, x->home) == EXIT_OK) {
                r = cli_reconcile(&home, y->name, false, 60000, false, &report);
            }
        }
        clean = clean && r == EXIT_OK;
        json_array_append_new(reconciliations, json_pack("{s:s, s:s, s:i, s:o}", "node", x->name,
                                                         "peer", y->name, "exit", r, "report",
                                                         report != NULL ? report : json_null()));
    }
    if (args.json) {
        rc = cli_print_document(json_pack("{s:b, s:o, s:o}", "ok", clean, "audit", audit,
                                          "reconciliations", reconciliations));
    } else {
        json_t *v;
        size_t i;
        json_array_foreach(json_object_get(audit, "violations"), i, v)
        {
            printf("VIOLATION %-10s %s: %s\n", json_string_value(json_object_get(v, "kind")),
                   json_string_value(json_object_get(v, "home")),
                   json_string_value(json_object_get(v, "detail")));
        }
        printf("audit of %zu homes: %lld entries checked, %s\n", t.count,
               (long long)json_integer_value(json_object_get(audit, "entries_checked")),
               audited == EXIT_OK ? "clean" : "VIOLATIONS FOUND");
        json_array_foreach(reconciliations, i, v)
        {
            json_t *report = json_object_get(v, "report");
            int r = (int)json_integer_value(json_object_get(v, "exit"));
            printf("reconcile %s-%s: %s", json_string_value(json_object_get(v, "node")),
                   json_string_value(json_object_get(v, "peer")),
                   r == EXIT_OK            ? "books agree"
                   : r == EXIT_UNREACHABLE ? "not run (a node is down)"
                   : r == EXIT_TIMEOUT     ? "the peer did not answer in time"
                                           : "BREAKS");
            if (json_is_object(report)) {
                printf(" (%lld matched, %lld breaks)",
                       (long long)json_integer_value(json_object_get(report, "matched")),
                       (long long)json_integer_value(json_object_get(report, "breaks_remaining")));
            }
            putchar('\n');
        }
        json_decref(audit);
        json_decref(reconciliations);
    }
    return rc != EXIT_OK ? rc : clean ? EXIT_OK : EXIT_NEGATIVE;
}

int cmd_testnet(int argc, char **argv)
{
    static const struct {
        const char *name, *full_name;
        int (*run)(int, char **);
    } subs[] = {{"up", "corridor testnet up", testnet_up},
                {"status", "corridor testnet status", testnet_status},
                {"down", "corridor testnet down", testnet_down},
                {"audit", "corridor testnet audit", testnet_audit}};
    for (size_t i = 0; argc >= 2 && i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            cli_set_command(subs[i].full_name);
            return subs[i].run(argc - 1, argv + 1);
        }
    }
    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        printf("usage: %s\n       %s\n       %s\n       %s\n", up_spec.usage, status_spec.usage,
               down_spec.usage, audit_spec.usage);
        return EXIT_OK;
    }
    complain("expected a subcommand: up, status, down or audit (see corridor testnet --help)");
    return EXIT_USAGE;
}
