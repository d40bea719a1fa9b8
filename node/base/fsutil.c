/* Durable file writes and careful reads; see fsutil.h. */
#include "fsutil.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corridor/limits.h"

int fs_join(char *out, size_t out_size, const char *dir, const char *name)
{
    assert(out != NULL && dir != NULL && name != NULL);
    int n = snprintf(out, out_size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= out_size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int fs_sync_dir(const char *dir)
{
    assert(dir != NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    assert(path != NULL && (data != NULL || len == 0));
    char tmp[CORRIDOR_PATH_LEN_MAX];
    char dir[CORRIDOR_PATH_LEN_MAX];
    int fd = -1;
    int rc = -1;
    int saved = 0;

    int n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp || strlen(path) >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(dir, path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        goto cleanup;
    }
    tmp[0] = '\0'; /* renamed: nothing to remove */
    rc = fs_sync_dir(dirname(dir));

cleanup:
    saved = errno;
    if (fd >= 0) {
        close(fd);
    }
    if (tmp[0] != '\0') {
        unlink(tmp);
    }
    errno = saved;
    return rc;
}

ssize_t fs_read_bounded(const char *path, char *buf, size_t max_len)
{
    assert(path != NULL && buf != NULL);
    /* O_NONBLOCK: a FIFO planted in place of a file must not hang the reader. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return -1;
    }
    ssize_t rc = -1;
    int saved = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto cleanup;
    }
    size_t used = 0;
    for (;;) {
        /* Read one byte past the limit to tell "exactly max_len" from "larger". */
        ssize_t n = read(fd, buf + used, max_len + 1 - used);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto cleanup;
        }
        if (n == 0) {
            break;
        }
        used += (size_t)n;
        if (used > max_len) {
            errno = EFBIG;
            goto cleanup;
        }
    }
    buf[used] = '\0';
    rc = (ssize_t)used;

cleanup:
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fs_dir_private(const char *path, mode_t *mode)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return -1;
    }
    if (mode != NULL) {
        *mode = st.st_mode & 07777;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if ((st.st_mode & 077) != 0) { /* first: open to others is wrong whoever owns it */
        errno = EACCES;
        return -1;
    }
    if (st.st_uid != geteuid()) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int fs_make_private_dir(const char *path, mode_t *mode)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    return fs_dir_private(path, mode);
}
