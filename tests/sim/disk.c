/* The simulator's disk: an SQLite VFS that forwards to the default one and fails the writes
 * (SQLITE_FULL) or the syncs (SQLITE_IOERR_FSYNC) of one node's files while the world says
 * its disk is full or failing. (tests/test_ledger.c has the same forwarding for one flag; this
 * one knows which node a file belongs to.) */
#include "disk.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"

typedef struct {
    sqlite3_file base;  /* pMethods points to disk.methods */
    int node;           /* the node whose home holds the file, or -1 */
    int pad;            /* keeps the real file after this struct 8-byte aligned */
    sqlite3_file *real; /* the default VFS's file, stored right after this struct */
} disk_file_t;

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *real;
    sqlite3_io_methods methods;
    const char *homes[DISK_NODES_MAX];
    disk_fault_t fault[DISK_NODES_MAX];
} disk;

static sqlite3_file *real_of(sqlite3_file *file)
{
    return ((disk_file_t *)file)->real;
}

static disk_fault_t fault_of(sqlite3_file *file)
{
    int node = ((disk_file_t *)file)->node;
    return node >= 0 ? disk.fault[node] : DISK_OK;
}

static int d_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}

static int d_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

static int d_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    if (fault_of(f) == DISK_FULL) {
        return SQLITE_FULL;
    }
    return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}

static int d_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int d_sync(sqlite3_file *f, int flags)
{
    if (fault_of(f) == DISK_SYNC_FAILS) {
        return SQLITE_IOERR_FSYNC;
    }
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int d_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int d_lock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int d_unlock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int d_check_reserved_lock(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int d_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int d_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int d_device_characteristics(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int d_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}

static int d_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void d_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int d_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int d_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}

static int d_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static int d_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                  int *out_flags)
{
    (void)vfs;
    disk_file_t *f = (disk_file_t *)file;
    f->real = (sqlite3_file *)(f + 1);
    f->node = -1;
    for (int i = 0; name != NULL && i < DISK_NODES_MAX; i++) {
        size_t len = disk.homes[i] != NULL ? strlen(disk.homes[i]) : 0;
        if (len > 0 && strncmp(name, disk.homes[i], len) == 0 && name[len] == '/') {
            f->node = i;
        }
    }
    int rc = disk.real->xOpen(disk.real, name, f->real, flags, out_flags);
    if (f->real->pMethods == NULL) {
        f->base.pMethods = NULL; /* nothing to close */
        return rc;
    }
    int version = f->real->pMethods->iVersion;
    assert(version >= 2); /* WAL needs the shared-memory methods */
    disk.methods.iVersion = version < 3 ? version : 3;
    f->base.pMethods = &disk.methods;
    return rc;
}

int disk_install(void)
{
    if (disk.real != NULL) {
        return 0;
    }
    disk.real = sqlite3_vfs_find(NULL);
    if (disk.real == NULL) {
        return -1;
    }
    _Static_assert(sizeof(disk_file_t) % 8 == 0, "the real file after it stays aligned");
    disk.vfs = *disk.real;
    disk.vfs.pNext = NULL;
    disk.vfs.zName = DISK_VFS;
    disk.vfs.szOsFile = (int)sizeof(disk_file_t) + disk.real->szOsFile;
    disk.vfs.xOpen = d_open;
    disk.methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = d_close,
        .xRead = d_read,
        .xWrite = d_write,
        .xTruncate = d_truncate,
        .xSync = d_sync,
        .xFileSize = d_file_size,
        .xLock = d_lock,
        .xUnlock = d_unlock,
        .xCheckReservedLock = d_check_reserved_lock,
        .xFileControl = d_file_control,
        .xSectorSize = d_sector_size,
        .xDeviceCharacteristics = d_device_characteristics,
        .xShmMap = d_shm_map,
        .xShmLock = d_shm_lock,
        .xShmBarrier = d_shm_barrier,
        .xShmUnmap = d_shm_unmap,
        .xFetch = d_fetch,
        .xUnfetch = d_unfetch,
    };
    return sqlite3_vfs_register(&disk.vfs, 0) == SQLITE_OK ? 0 : -1;
}

void disk_set_home(int node, const char *home)
{
    assert(node >= 0 && node < DISK_NODES_MAX);
    disk.homes[node] = home;
    disk.fault[node] = DISK_OK;
}

void disk_set_fault(int node, disk_fault_t fault)
{
    assert(node >= 0 && node < DISK_NODES_MAX);
    disk.fault[node] = fault;
}

/* ---- images ---------------------------------------------------------------------------------- */

static const char *const IMAGE_FILES[] = {LEDGER_FILE, LEDGER_FILE "-wal"};
#define IMAGE_FILES_COUNT (sizeof IMAGE_FILES / sizeof IMAGE_FILES[0])

struct disk_image {
    bool present[IMAGE_FILES_COUNT];
    uint8_t *data[IMAGE_FILES_COUNT];
    size_t len[IMAGE_FILES_COUNT];
};

static int image_path(char *out, size_t size, int node, const char *file)
{
    assert(node >= 0 && node < DISK_NODES_MAX && disk.homes[node] != NULL);
    int n = snprintf(out, size, "%s/%s", disk.homes[node], file);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Reads a whole file; 1 when it does not exist. */
static int read_whole(const char *path, uint8_t **data, size_t *len)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        return errno == ENOENT ? 1 : -1;
    }
    size_t cap = 1 << 16, used = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        used += fread(buf + used, 1, cap - used, in);
        if (used < cap) {
            break;
        }
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int rc = buf != NULL && !ferror(in) ? 0 : -1;
    fclose(in);
    if (rc != 0) {
        free(buf);
        errno = EIO;
        return -1;
    }
    *data = buf;
    *len = used;
    return 0;
}

disk_image_t *disk_image_take(int node)
{
    disk_image_t *img = calloc(1, sizeof *img);
    if (img == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        char path[1024];
        int rc = image_path(path, sizeof path, node, IMAGE_FILES[i]);
        if (rc == 0) {
            rc = read_whole(path, &img->data[i], &img->len[i]);
        }
        if (rc < 0) {
            disk_image_free(&img);
            return NULL;
        }
        img->present[i] = rc == 0;
    }
    return img;
}

int disk_image_put(int node, const disk_image_t *img)
{
    char path[1024];
    if (image_path(path, sizeof path, node, LEDGER_FILE "-shm") != 0 ||
        (unlink(path) != 0 && errno != ENOENT)) {
        return -1;
    }
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        if (image_path(path, sizeof path, node, IMAGE_FILES[i]) != 0) {
            return -1;
        }
        if (!img->present[i]) {
            if (unlink(path) != 0 && errno != ENOENT) {
                return -1;
            }
            continue;
        }
        FILE *out = fopen(path, "wb");
        if (out == NULL) {
            return -1;
        }
        size_t put = fwrite(img->data[i], 1, img->len[i], out);
        if (fclose(out) != 0 || put != img->len[i]) {
            return -1;
        }
    }
    return 0;
}

void disk_image_free(disk_image_t **img)
{
    if (*img == NULL) {
        return;
    }
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        free((*img)->data[i]);
    }
    free(*img);
    *img = NULL;
}
