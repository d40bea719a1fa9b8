/*
 * Durable file writes and careful reads.
 *
 * A file that matters (keys, config) is replaced atomically: write a temporary file in the
 * same directory, fsync it, rename it over the old name, then fsync the directory so the
 * rename itself survives a crash (redis issue 3487 is the bug that taught this). Any error
 * is returned with errno preserved; nothing is retried.
 */
#ifndef CORRIDOR_FSUTIL_H
#define CORRIDOR_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Atomically replaces `path` with `len` bytes of `data`, created with `mode`.
 * Returns 0, or -1 with errno set (the old file, if any, is left untouched). */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a regular file of at most `max_len` bytes into `buf` (which must hold max_len + 1
 * bytes; a NUL is appended). Returns the length, or -1 with errno set: EFBIG when the file is
 * larger than max_len, EINVAL when it is not a regular file. */
ssize_t fs_read_bounded(const char *path, char *buf, size_t max_len);

/* Whether `path` is a directory (not a symbolic link) of this process's user that group and
 * others cannot access. 0, or -1 with errno: ENOTDIR, EACCES (group or others have access,
 * whoever owns it), EPERM (another user's); *mode (if not NULL) receives its bits. */
int fs_dir_private(const char *path, mode_t *mode);

/* Creates `path` as a directory of mode 0700 (never wider, whatever the umask: nobody else
 * can enter it at any moment), or checks an existing one with fs_dir_private. */
int fs_make_private_dir(const char *path, mode_t *mode);

/* fsyncs a directory (so that a create or rename inside it is durable). */
int fs_sync_dir(const char *dir);

/* Joins dir and name into out; -1 with errno ENAMETOOLONG if it does not fit. */
int fs_join(char *out, size_t out_size, const char *dir, const char *name);

#endif
