/*
 * Helpers shared by the cmocka test programs: scratch directories and small file utilities.
 * cmocka's headers need <stdarg.h>, <stddef.h>, <stdint.h> and <setjmp.h> first; this header
 * includes them, so a test includes "support.h" and then <cmocka.h>.
 */
#ifndef CORRIDOR_TEST_SUPPORT_H
#define CORRIDOR_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "identity.h"

/* Makes a fresh directory under $TMPDIR (or /tmp); the caller frees the path. */
char *test_tmpdir(void);

/* Removes a directory tree (bounded depth); ignores what is already gone. */
void test_rmtree(const char *path);

/* Writes `len` bytes to path with the given mode, replacing it. Asserts on failure. */
void test_write_file(const char *path, const void *data, size_t len, unsigned mode);

/* Reads a whole file (at most 1 MiB) into a NUL-terminated malloc'd buffer; NULL if absent. */
char *test_read_file(const char *path, size_t *len);

/* Joins dir and name into a malloc'd path. */
char *test_path(const char *dir, const char *name);

/* cmocka fixtures: a fresh scratch directory (test_tmpdir) in *state, and its removal. */
int test_dir_setup(void **state);
int test_dir_teardown(void **state);

/* Keys made from `tag` alone (every byte of the seeds), the same in every run: for tests that
 * need several nodes' keys without generating them. */
identity_t *test_fixed_identity(uint8_t tag);

/* cmocka group setup of a program that needs libsodium: sodium_init, -1 when it fails. */
int test_sodium_setup(void **state);

/* Reserves TCP `port` against the other test programs running at once: an exclusive lock on
 * its file in $TMPDIR/corridor-test-ports (a port a test binds, or rebinds, may be free for a
 * moment). The descriptor holding it (close it to release), -1 when no lock file can be had
 * (the caller's bind probe decides), or -2 when another program holds the port. */
int test_port_lock(int port);

/* Recomputes journal.hash of row `from_seq` and every later one, as an attacker with the
 * source code can: the chain then links whatever the rows now say. Returns the rows
 * rewritten. */
struct sqlite3;
int64_t test_rechain(struct sqlite3 *db, int64_t from_seq);

#endif
