/*
 * The temporary directory of a harness's ledger fixture, and the channel callbacks it ignores,
 * shared by fuzz_statement.c and fuzz_hello.c (static inline helpers only, like fuzz_keys.h). The
 * directory is named PREFIX + pid + "." + mkdtemp's suffix and holds SQLite files "<node>.db" (with
 * -wal and -shm): a harness removes its own at exit, and at start those that crashed processes left
 * behind.
 */
#ifndef CORRIDOR_FUZZ_FIXTURE_H
#define CORRIDOR_FUZZ_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "ledger.h"

/* Channel callbacks a harness has no use for: a final outcome, a statement (freed). */
static inline void fixture_ignore_final(void *arg, const char *peer, const char *uetr,
                                        const ledger_outcome_t *outcome)
{
    (void)arg;
    (void)peer;
    (void)uetr;
    (void)outcome;
}

static inline void fixture_ignore_statement(void *arg, size_t peer_index, envelope_message_t *msg)
{
    (void)arg;
    (void)peer_index;
    envelope_message_clear(msg);
}

/* Removes the ledger files of `nodes` (count of them) in dir, then dir. */
static inline void fixture_remove_dir(const char *dir, const char *const *nodes, size_t count)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < 3; k++) {
            char file[900];
            snprintf(file, sizeof file, "%s/%s.db%s", dir, nodes[i], suffixes[k]);
            unlink(file);
        }
    }
    rmdir(dir);
}

/* A crash ends the process without atexit: removes the fixture directories named `prefix`
 * in `base` whose process no longer runs. */
static inline void fixture_remove_stale(const char *base, const char *prefix,
                                        const char *const *nodes, size_t count)
{
    DIR *d = opendir(base);
    if (d == NULL) {
        return;
    }
    size_t prefix_len = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = 0;
        int end = 0;
        if (strncmp(e->d_name, prefix, prefix_len) != 0 ||
            sscanf(e->d_name + prefix_len, "%ld.%n", &pid, &end) != 1 || end == 0 || pid <= 0 ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
            continue;
        }
        char dir[700];
        snprintf(dir, sizeof dir, "%s/%s", base, e->d_name);
        fixture_remove_dir(dir, nodes, count);
    }
    closedir(d);
}

/* Makes this process's fixture directory in $TMPDIR (or /tmp) after removing stale ones;
 * `out` receives its path. Aborts with a message if it cannot. */
static inline void fixture_make_dir(const char *harness, const char *prefix,
                                    const char *const *nodes, size_t count, char *out,
                                    size_t out_size)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    fixture_remove_stale(base, prefix, nodes, count);
    snprintf(out, out_size, "%s/%s%ld.XXXXXX", base, prefix, (long)getpid());
    if (mkdtemp(out) == NULL) {
        fprintf(stderr, "%s: mkdtemp %s: %s\n", harness, out, strerror(errno));
        abort();
    }
}

#endif
