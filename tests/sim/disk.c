/* The simulator's disk: an SQLite VFS that keeps every file in memory, the default VFS of the
 * simulator's process, so every connection (a node's writer and reader, the simulator's
 * checker, the audit's workers) sees the same files.
 *
 * Why: speed. SQLite's unix VFS on /dev/shm spent about a quarter of a world's time in the
 * kernel (pwrite, pread, fcntl locks, unlink); here a write is a memcpy and a lock a few
 * integers.
 *
 * Crash semantics stay the simulator's: a file lives, with every byte written to it, until it
 * is deleted (or the world's process ends), whatever connections close, as the page cache
 * keeps a file across a process crash; the simulator models no power loss, so a sync makes
 * nothing more durable. A crash loses only what the simulator puts back (disk_image_put: the
 * ledger files as they were before a lost commit). One node's files can be made to fail
 * writes (SQLITE_FULL) or syncs (SQLITE_IOERR_FSYNC) while the world says its disk is full or
 * failing; a file belongs to the node whose home holds it.
 *
 * What of SQLite's VFS contract it implements, as os_unix.c does within one process (SQLite
 * 3.40; tests/sim/disk_check.c runs the same calls on both and compares):
 *  - files: named by full path (a relative name gets the working directory in front, nothing
 *    else is normalised); a name deleted while open lives on for its handles, as after unlink;
 *    temporary files (no name, or DELETEONCLOSE) are private to their handle; an open without
 *    CREATE of a missing file is SQLITE_CANTOPEN; CREATE|EXCLUSIVE of an existing one opens it
 *    read-only (unixOpen's fallback after a failed read-write open); read-only handles refuse
 *    writes (SQLITE_IOERR_WRITE, as a read-only descriptor does); a read past the end is
 *    zero-filled and SQLITE_IOERR_SHORT_READ; a write past the end grows the file, the gap
 *    reading zero; deleting a missing file is SQLITE_IOERR_DELETE_NOENT.
 *  - xAccess: SQLITE_ACCESS_EXISTS as unixAccess, the file in the table and not empty (an
 *    empty -wal or -journal counts as absent); SQLITE_ACCESS_READWRITE, in the table.
 *  - locks: the database file's NONE/SHARED/RESERVED/PENDING/EXCLUSIVE between the handles of
 *    one file by unixLock's and posixUnlock's in-process rules (a failed EXCLUSIVE leaves
 *    PENDING, which refuses new SHARED locks); xCheckReservedLock, RESERVED or more held.
 *  - wal-index: xShmMap regions shared by every handle of a file, zero-filled, made only when
 *    asked to extend; xShmLock's SQLITE_SHM_NLOCK slots as unixShmLock (shared by any number
 *    of handles or exclusive to one, SQLITE_BUSY at once on a conflict); the regions go when
 *    the last handle detaches, as unix's next first opener truncates the -shm file.
 *  - the device: sector 4096 and SQLITE_IOCAP_POWERSAFE_OVERWRITE, what unix says on Linux and
 *    true here (a write changes no byte it was not given), so SQLite lays out the WAL as it
 *    does in production. No memory-mapped I/O (iVersion 2); no file controls (SQLITE_NOTFOUND).
 * Randomness, sleep, time and the last error are the unix VFS's.
 *
 * Threads: the audit checks a home on several threads; one mutex guards every file once the
 * process has threads. */
#include "disk.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "ledger.h"

typedef struct disk_handle disk_handle_t;

/* Bytes in a mapping of their own (NULL: none yet). */
typedef struct {
    uint8_t *data;
    size_t cap;
} map_t;

#define MAP_FIRST (64u << 20) /* a first mapping: address space only until written */
#define HUGE_PAGE (2u << 20)

/* One file (an inode): in the table while it has a name, freed when it has neither a name nor
 * a handle. */
typedef struct mem_file {
    struct mem_file *next; /* in the table */
    char *path;            /* NULL for a private file */
    bool named;            /* in the table */
    int handles;           /* open handles */
    map_t map;             /* its bytes */
    size_t size;           /* of which it holds */
    int lock;              /* the strongest lock a handle holds (SQLITE_LOCK_*) */
    int shared;            /* handles holding SHARED or more */
    /* the wal-index (a -shm file) */
    int shm_region_size;
    int shm_regions_count;
    void **shm_regions;
    disk_handle_t *shm_users; /* handles that mapped it */
} mem_file_t;

struct disk_handle {
    sqlite3_file base; /* pMethods points to disk.methods */
    mem_file_t *file;
    int node; /* the node whose home holds the file, or -1 */
    bool readonly;
    int lock;                           /* this handle's SQLITE_LOCK_* */
    bool shm_mapped;                    /* in file->shm_users */
    disk_handle_t *shm_next;            /* in file->shm_users */
    uint16_t shm_shared, shm_exclusive; /* the xShmLock slots it holds */
};

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *real; /* the unix VFS: randomness, sleep, time */
    sqlite3_io_methods methods;
    pthread_mutex_t mutex;
    mem_file_t *files;
    const char *homes[DISK_NODES_MAX];
    disk_fault_t fault[DISK_NODES_MAX];
} disk = {.mutex = PTHREAD_MUTEX_INITIALIZER};

/* The mutex, taken only once the process has threads (the audit's): every file method takes
 * it, and SQLite calls them often. True when taken. */
static bool enter(void)
{
    if (__libc_single_threaded) {
        return false;
    }
    pthread_mutex_lock(&disk.mutex);
    return true;
}

static void leave(bool locked)
{
    if (locked) {
        pthread_mutex_unlock(&disk.mutex);
    }
}

static disk_handle_t *handle_of(sqlite3_file *f)
{
    return (disk_handle_t *)f;
}

static disk_fault_t fault_of(const disk_handle_t *h)
{
    return h->node >= 0 ? disk.fault[h->node] : DISK_OK;
}

/* `name` as a full path in `out`: the working directory in front of a relative one. */
static int full_path(const char *name, char *out, size_t size)
{
    int n;
    if (name[0] == '/') {
        n = snprintf(out, size, "%s", name);
    } else {
        char cwd[1024];
        if (getcwd(cwd, sizeof cwd) == NULL) {
            return -1;
        }
        n = snprintf(out, size, "%s/%s", cwd, name);
    }
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* ---- mappings ---------------------------------------------------------------------------------
 * A file's bytes, and an image's, live in a mapping of their own: address space reserved up
 * front, grown by mremap (growing copies nothing), aligned on a huge page and marked for the
 * kernel's transparent huge pages, so that writing a node's 4 MiB WAL faults twice rather than
 * a thousand times (page faults were most of the kernel time left). Without transparent huge
 * pages, small ones. */

static void *map_new(size_t cap)
{
    uint8_t *p = mmap(NULL, cap + HUGE_PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return MAP_FAILED;
    }
    uint8_t *at = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (at > p) {
        munmap(p, (size_t)(at - p));
    }
    munmap(at + cap, (size_t)(p + HUGE_PAGE - at));
    (void)madvise(at, cap, MADV_HUGEPAGE); /* a hint */
    return at;
}

/* `m` holding at least `size` bytes (those it held kept); false when out of memory. */
static bool map_reserve(map_t *m, size_t size)
{
    if (size <= m->cap) {
        return true;
    }
    size_t cap = m->cap > 0 ? m->cap : MAP_FIRST;
    while (cap < size) {
        cap *= 2;
    }
    void *data = m->data == NULL ? map_new(cap) : mremap(m->data, m->cap, cap, MREMAP_MAYMOVE);
    if (data == MAP_FAILED) {
        return false;
    }
    m->data = data;
    m->cap = cap;
    return true;
}

static void map_free(map_t *m)
{
    if (m->data != NULL) {
        munmap(m->data, m->cap);
    }
    *m = (map_t){0};
}

/* ---- the table of files (the mutex held) -------------------------------------------------- */

static mem_file_t *file_find(const char *path)
{
    for (mem_file_t *f = disk.files; f != NULL; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            return f;
        }
    }
    return NULL;
}

static void shm_drop(mem_file_t *f)
{
    assert(f->shm_users == NULL);
    for (int i = 0; i < f->shm_regions_count; i++) {
        free(f->shm_regions[i]);
    }
    free(f->shm_regions);
    f->shm_regions = NULL;
    f->shm_regions_count = 0;
}

static void file_free(mem_file_t *f)
{
    shm_drop(f);
    map_free(&f->map);
    free(f->path);
    free(f);
}

/* NULL when out of memory; `path` NULL for a private file. */
static mem_file_t *file_new(const char *path)
{
    mem_file_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    if (path != NULL) {
        if ((f->path = strdup(path)) == NULL) {
            free(f);
            return NULL;
        }
        f->named = true;
        f->next = disk.files;
        disk.files = f;
    }
    return f;
}

/* The name goes; the file with it unless a handle still has it open. */
static void file_unlink(mem_file_t *f)
{
    for (mem_file_t **p = &disk.files; *p != NULL; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    f->named = false;
    f->next = NULL;
    if (f->handles == 0) {
        file_free(f);
    }
}

/* Writes `len` bytes at `off`, the file grown (a gap reads zero); false when out of memory. */
static bool file_write(mem_file_t *f, const void *buf, size_t len, size_t off)
{
    if (!map_reserve(&f->map, off + len)) {
        return false;
    }
    if (off > f->size) { /* what a truncation left there */
        memset(f->map.data + f->size, 0, off - f->size);
    }
    if (len > 0) {
        memcpy(f->map.data + off, buf, len);
    }
    f->size = off + len > f->size ? off + len : f->size;
    return true;
}

/* ---- file methods --------------------------------------------------------------------------- */

static int shm_unmap_locked(disk_handle_t *h);
static void unlock_locked(disk_handle_t *h, int level);

static int d_close(sqlite3_file *file)
{
    disk_handle_t *h = handle_of(file);
    bool locked = enter();
    mem_file_t *f = h->file;
    (void)shm_unmap_locked(h);
    unlock_locked(h, SQLITE_LOCK_NONE); /* as unixClose does first */
    f->handles--;
    if (f->handles == 0 && !f->named) {
        file_free(f);
    }
    h->file = NULL;
    leave(locked);
    return SQLITE_OK;
}

static int d_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off)
{
    assert(n >= 0 && off >= 0);
    disk_handle_t *h = handle_of(file);
    bool locked = enter();
    const mem_file_t *f = h->file;
    size_t want = (size_t)n, at = (size_t)off;
    size_t got = at < f->size ? f->size - at : 0;
    got = got < want ? got : want;
    if (got > 0) {
        memcpy(buf, f->map.data + at, got);
    }
    leave(locked);
    if (got < want) {
        memset((uint8_t *)buf + got, 0, want - got);
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int d_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off)
{
    assert(n >= 0 && off >= 0);
    disk_handle_t *h = handle_of(file);
    if (fault_of(h) == DISK_FULL) {
        return SQLITE_FULL;
    }
    if (h->readonly) {
        return SQLITE_IOERR_WRITE;
    }
    bool locked = enter();
    int rc = file_write(h->file, buf, (size_t)n, (size_t)off) ? SQLITE_OK : SQLITE_IOERR_NOMEM;
    leave(locked);
    return rc;
}

static int d_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    assert(size >= 0);
    disk_handle_t *h = handle_of(file);
    if (h->readonly) {
        return SQLITE_IOERR_TRUNCATE;
    }
    bool locked = enter();
    mem_file_t *f = h->file;
    int rc = SQLITE_OK;
    if ((size_t)size <= f->size) {
        f->size = (size_t)size;
    } else if (!file_write(f, NULL, 0, (size_t)size)) { /* ftruncate grows with zeros */
        rc = SQLITE_IOERR_NOMEM;
    }
    leave(locked);
    return rc;
}

static int d_sync(sqlite3_file *file, int flags)
{
    (void)flags;
    return fault_of(handle_of(file)) == DISK_SYNC_FAILS ? SQLITE_IOERR_FSYNC : SQLITE_OK;
}

static int d_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    disk_handle_t *h = handle_of(file);
    bool locked = enter();
    *size = (sqlite3_int64)h->file->size;
    leave(locked);
    return SQLITE_OK;
}

/* unixLock's rules between handles of one process (SQLite 3.40). */
static int d_lock(sqlite3_file *file, int level)
{
    disk_handle_t *h = handle_of(file);
    if (h->lock >= level) {
        return SQLITE_OK;
    }
    assert(level != SQLITE_LOCK_PENDING);
    assert(h->lock != SQLITE_LOCK_NONE || level == SQLITE_LOCK_SHARED);
    assert(level != SQLITE_LOCK_RESERVED || h->lock == SQLITE_LOCK_SHARED);
    bool locked = enter();
    mem_file_t *f = h->file;
    int rc = SQLITE_OK;
    if (h->lock != f->lock && (f->lock >= SQLITE_LOCK_PENDING || level > SQLITE_LOCK_SHARED)) {
        rc = SQLITE_BUSY; /* another handle holds a lock that precludes it */
    } else if (level == SQLITE_LOCK_SHARED) {
        assert(f->lock <= SQLITE_LOCK_RESERVED && h->lock == SQLITE_LOCK_NONE);
        f->shared++;
        h->lock = SQLITE_LOCK_SHARED;
        f->lock = f->lock > SQLITE_LOCK_SHARED ? f->lock : SQLITE_LOCK_SHARED;
    } else if (level == SQLITE_LOCK_EXCLUSIVE && f->shared > 1) {
        h->lock = f->lock = SQLITE_LOCK_PENDING; /* others still read: new readers wait */
        rc = SQLITE_BUSY;
    } else {
        h->lock = f->lock = level;
    }
    leave(locked);
    return rc;
}

/* posixUnlock's; the mutex held. */
static void unlock_locked(disk_handle_t *h, int level)
{
    assert(level <= SQLITE_LOCK_SHARED);
    if (h->lock <= level) {
        return;
    }
    mem_file_t *f = h->file;
    if (h->lock > SQLITE_LOCK_SHARED) {
        assert(f->lock == h->lock);
        f->lock = SQLITE_LOCK_SHARED;
    }
    if (level == SQLITE_LOCK_NONE) {
        f->shared--;
        if (f->shared == 0) {
            f->lock = SQLITE_LOCK_NONE;
        }
    }
    h->lock = level;
}

static int d_unlock(sqlite3_file *file, int level)
{
    bool locked = enter();
    unlock_locked(handle_of(file), level);
    leave(locked);
    return SQLITE_OK;
}

static int d_check_reserved_lock(sqlite3_file *file, int *out)
{
    disk_handle_t *h = handle_of(file);
    bool locked = enter();
    *out = h->file->lock > SQLITE_LOCK_SHARED;
    leave(locked);
    return SQLITE_OK;
}

static int d_file_control(sqlite3_file *file, int op, void *arg)
{
    (void)file;
    (void)op;
    (void)arg;
    return SQLITE_NOTFOUND;
}

static int d_sector_size(sqlite3_file *file)
{
    (void)file;
    return 4096;
}

static int d_device_characteristics(sqlite3_file *file)
{
    (void)file;
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static int d_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
    disk_handle_t *h = handle_of(file);
    bool locked = enter();
    mem_file_t *f = h->file;
    int rc = SQLITE_OK;
    if (!h->shm_mapped) {
        h->shm_mapped = true;
        h->shm_shared = h->shm_exclusive = 0;
        h->shm_next = f->shm_users;
        f->shm_users = h;
    }
    assert(f->shm_regions_count == 0 || f->shm_region_size == size);
    if (region >= f->shm_regions_count && extend) {
        void **regions = realloc(f->shm_regions, (size_t)(region + 1) * sizeof *regions);
        if (regions == NULL) {
            rc = SQLITE_IOERR_NOMEM;
        } else {
            f->shm_regions = regions;
            f->shm_region_size = size;
            while (f->shm_regions_count <= region) {
                void *p = calloc(1, (size_t)size);
                if (p == NULL) {
                    rc = SQLITE_IOERR_NOMEM;
                    break;
                }
                f->shm_regions[f->shm_regions_count++] = p;
            }
        }
    }
    *out = region < f->shm_regions_count ? f->shm_regions[region] : NULL;
    leave(locked);
    return rc;
}

/* unixShmLock's: a slot is shared by any number of handles or exclusive to one. */
static int d_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    disk_handle_t *h = handle_of(file);
    assert(offset >= 0 && n >= 1 && offset + n <= SQLITE_SHM_NLOCK);
    assert(n == 1 || (flags & SQLITE_SHM_EXCLUSIVE) != 0);
    if (!h->shm_mapped) {
        return SQLITE_IOERR_SHMLOCK;
    }
    uint16_t mask = (uint16_t)((1u << (offset + n)) - (1u << offset));
    int rc = SQLITE_OK;
    bool locked = enter();
    if (flags & SQLITE_SHM_UNLOCK) {
        h->shm_shared &= (uint16_t)~mask;
        h->shm_exclusive &= (uint16_t)~mask;
    } else if (flags & SQLITE_SHM_SHARED) {
        for (const disk_handle_t *x = h->file->shm_users; x != NULL; x = x->shm_next) {
            if (x->shm_exclusive & mask) {
                rc = SQLITE_BUSY;
            }
        }
        if (rc == SQLITE_OK) {
            h->shm_shared |= mask;
        }
    } else {
        for (const disk_handle_t *x = h->file->shm_users; x != NULL; x = x->shm_next) {
            if ((x->shm_exclusive | x->shm_shared) & mask) {
                rc = SQLITE_BUSY;
            }
        }
        if (rc == SQLITE_OK) {
            h->shm_exclusive |= mask;
        }
    }
    leave(locked);
    return rc;
}

static void d_shm_barrier(sqlite3_file *file)
{
    (void)file;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool locked = enter();
    leave(locked);
}

/* The mutex held. */
static int shm_unmap_locked(disk_handle_t *h)
{
    if (!h->shm_mapped) {
        return SQLITE_OK;
    }
    mem_file_t *f = h->file;
    for (disk_handle_t **p = &f->shm_users; *p != NULL; p = &(*p)->shm_next) {
        if (*p == h) {
            *p = h->shm_next;
            break;
        }
    }
    h->shm_mapped = false;
    h->shm_next = NULL;
    h->shm_shared = h->shm_exclusive = 0;
    if (f->shm_users == NULL) {
        shm_drop(f); /* with or without delete_flag: unix's next first opener truncates it */
    }
    return SQLITE_OK;
}

static int d_shm_unmap(sqlite3_file *file, int delete_flag)
{
    (void)delete_flag;
    bool locked = enter();
    int rc = shm_unmap_locked(handle_of(file));
    leave(locked);
    return rc;
}

/* ---- the VFS -------------------------------------------------------------------------------- */

static int node_of(const char *path)
{
    int node = -1;
    for (int i = 0; path != NULL && i < DISK_NODES_MAX; i++) {
        char home[1024];
        if (disk.homes[i] == NULL || full_path(disk.homes[i], home, sizeof home) != 0) {
            continue;
        }
        size_t len = strlen(home);
        if (len > 0 && strncmp(path, home, len) == 0 && path[len] == '/') {
            node = i;
        }
    }
    return node;
}

static int d_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                  int *out_flags)
{
    (void)vfs;
    disk_handle_t *h = handle_of(file);
    memset(h, 0, sizeof *h);
    h->node = node_of(name);
    h->readonly = (flags & SQLITE_OPEN_READONLY) != 0;
    bool private = name == NULL || (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
    bool locked = enter();
    mem_file_t *f = private ? NULL : file_find(name);
    int rc = SQLITE_OK;
    if (f != NULL && (flags & SQLITE_OPEN_EXCLUSIVE) && (flags & SQLITE_OPEN_CREATE)) {
        /* O_CREAT|O_EXCL fails; unixOpen then opens it read-only, as after any failed
         * read-write open */
        flags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
        h->readonly = true;
    } else if (f == NULL && !private && !(flags & SQLITE_OPEN_CREATE)) {
        rc = SQLITE_CANTOPEN;
    } else if (f == NULL && (f = file_new(private ? NULL : name)) == NULL) {
        rc = SQLITE_NOMEM;
    }
    if (rc == SQLITE_OK) {
        f->handles++;
        h->file = f;
        h->base.pMethods = &disk.methods;
        if (out_flags != NULL) {
            *out_flags = flags;
        }
    }
    leave(locked);
    return rc;
}

static int d_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    (void)sync_dir;
    bool locked = enter();
    mem_file_t *f = file_find(name);
    if (f != NULL) {
        file_unlink(f);
    }
    leave(locked);
    return f != NULL ? SQLITE_OK : SQLITE_IOERR_DELETE_NOENT;
}

static int d_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    bool locked = enter();
    const mem_file_t *f = file_find(name);
    *out = f != NULL && (flags != SQLITE_ACCESS_EXISTS || f->size > 0);
    leave(locked);
    return SQLITE_OK;
}

static int d_full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out)
{
    (void)vfs;
    return full_path(name, out, (size_t)size) == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
}

static int d_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return disk.real->xRandomness(disk.real, n, out);
}

static int d_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return disk.real->xSleep(disk.real, us);
}

static int d_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return disk.real->xCurrentTime(disk.real, out);
}

static int d_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return disk.real->xGetLastError(disk.real, n, out);
}

static int d_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return disk.real->xCurrentTimeInt64(disk.real, out);
}

int disk_install(void)
{
    if (disk.real != NULL) {
        return 0;
    }
    disk.real = sqlite3_vfs_find(NULL);
    if (disk.real == NULL || disk.real->iVersion < 2) {
        return -1;
    }
    disk.vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(disk_handle_t),
        .mxPathname = disk.real->mxPathname,
        .zName = DISK_VFS,
        .xOpen = d_open,
        .xDelete = d_delete,
        .xAccess = d_access,
        .xFullPathname = d_full_pathname,
        .xRandomness = d_randomness,
        .xSleep = d_sleep,
        .xCurrentTime = d_current_time,
        .xGetLastError = d_get_last_error,
        .xCurrentTimeInt64 = d_current_time_int64,
    };
    disk.methods = (sqlite3_io_methods){
        .iVersion = 2,
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
    };
    return sqlite3_vfs_register(&disk.vfs, 1) == SQLITE_OK ? 0 : -1;
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
    map_t bytes[IMAGE_FILES_COUNT];
    size_t len[IMAGE_FILES_COUNT];
};

static int image_path(char *out, size_t size, int node, const char *file)
{
    assert(node >= 0 && node < DISK_NODES_MAX && disk.homes[node] != NULL);
    char name[1024];
    int n = snprintf(name, sizeof name, "%s/%s", disk.homes[node], file);
    if (n < 0 || (size_t)n >= sizeof name) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return full_path(name, out, size);
}

static int image_paths(char paths[IMAGE_FILES_COUNT][1024], int node)
{
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        if (image_path(paths[i], sizeof paths[i], node, IMAGE_FILES[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The mutex held. */
static void image_free_locked(disk_image_t *img)
{
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        map_free(&img->bytes[i]);
    }
    free(img);
}

disk_image_t *disk_image_take(int node)
{
    char paths[IMAGE_FILES_COUNT][1024];
    disk_image_t *img = NULL;
    if (image_paths(paths, node) != 0 || (img = calloc(1, sizeof *img)) == NULL) {
        return NULL;
    }
    bool locked = enter();
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        const mem_file_t *f = file_find(paths[i]);
        img->present[i] = f != NULL;
        if (f == NULL) {
            continue;
        }
        if (!map_reserve(&img->bytes[i], f->size)) {
            image_free_locked(img);
            img = NULL;
            errno = ENOMEM;
            break;
        }
        if (f->size > 0) {
            memcpy(img->bytes[i].data, f->map.data, f->size);
        }
        img->len[i] = f->size;
    }
    leave(locked);
    return img;
}

int disk_image_put(int node, const disk_image_t *img)
{
    char paths[IMAGE_FILES_COUNT][1024];
    if (image_paths(paths, node) != 0) {
        return -1;
    }
    int rc = 0;
    bool locked = enter();
    for (size_t i = 0; i < IMAGE_FILES_COUNT; i++) {
        const mem_file_t *f = file_find(paths[i]);
        if (f != NULL && f->handles > 0) {
            errno = EBUSY; /* a connection to it is still open */
            rc = -1;
        }
    }
    for (size_t i = 0; i < IMAGE_FILES_COUNT && rc == 0; i++) {
        mem_file_t *f = file_find(paths[i]);
        if (!img->present[i]) {
            if (f != NULL) {
                file_unlink(f);
            }
            continue;
        }
        if (f == NULL && (f = file_new(paths[i])) == NULL) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        shm_drop(f); /* no handle maps it: SQLite rebuilds it from the WAL */
        f->size = 0;
        if (!file_write(f, img->bytes[i].data, img->len[i], 0)) {
            errno = ENOMEM;
            rc = -1;
        }
    }
    leave(locked);
    return rc;
}

void disk_image_free(disk_image_t **img)
{
    if (*img == NULL) {
        return;
    }
    bool locked = enter();
    image_free_locked(*img);
    leave(locked);
    *img = NULL;
}
