/* The simulator's disk (disk.c) checked against SQLite's unix VFS, which it stands in for:
 * the same random sequences of file, lock and wal-index calls on both must answer the same
 * (return codes, bytes read, lock probes), as must the empty and deleted files' corner cases;
 * then SQLite over the disk: faults, and an image put back. `sim_disk_check [ROUNDS]`; exit 0
 * when every check held. */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "disk.h"
#include "ledger.h"

#define HANDLES    4
#define SHM_REGION 32768

static int failures;
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "disk_check:%d: %s: ", __LINE__, #cond);                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned below(unsigned n)
{
    return (unsigned)(rng() % n);
}

/* One VFS's side: handles open on the same file. */
typedef struct {
    sqlite3_vfs *vfs;
    sqlite3_file *h[HANDLES];
} side_t;

static sqlite3_file *file_new(const sqlite3_vfs *vfs)
{
    sqlite3_file *f = calloc(1, (size_t)vfs->szOsFile);
    if (f == NULL) {
        abort();
    }
    return f;
}

static int open_file(sqlite3_vfs *vfs, const char *path, sqlite3_file *f, int flags)
{
    int out = 0;
    return vfs->xOpen(vfs, path, f, flags, &out);
}

static void close_file(sqlite3_file *f)
{
    if (f->pMethods != NULL) {
        f->pMethods->xClose(f);
        f->pMethods = NULL;
    }
}

static const int MAIN_RW = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB;

static void side_open(side_t *s, sqlite3_vfs *vfs, const char *path)
{
    s->vfs = vfs;
    for (int i = 0; i < HANDLES; i++) {
        s->h[i] = file_new(vfs);
        int rc = open_file(vfs, path, s->h[i], MAIN_RW);
        CHECK(rc == SQLITE_OK, "%s: open %s: %d", vfs->zName, path, rc);
    }
}

static void side_close(side_t *s)
{
    for (int i = 0; i < HANDLES; i++) {
        close_file(s->h[i]);
        free(s->h[i]);
    }
}

/* Both sides on `dir`/`name`: unix's first, the disk's second. */
static void sides_open(side_t sides[2], sqlite3_vfs *vfs[2], const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int s = 0; s < 2; s++) {
        side_open(&sides[s], vfs[s], path);
    }
}

static void sides_close(side_t sides[2])
{
    for (int s = 0; s < 2; s++) {
        side_close(&sides[s]);
    }
}

/* ---- the database file's locks ---------------------------------------------------------- */

static void check_locks(sqlite3_vfs *vfs[2], const char *dir, int rounds)
{
    side_t sides[2];
    sides_open(sides, vfs, dir, "locks.db");
    int level[HANDLES] = {0}; /* as the calls answered: what SQLite may ask next */
    for (int r = 0; r < rounds; r++) {
        int i = (int)below(HANDLES);
        sqlite3_file *a = sides[0].h[i], *b = sides[1].h[i];
        int op = (int)below(4), want = 0, ra = 0, rb = 0;
        if (op == 0 || op == 1) { /* lock one step up, as SQLite does */
            want = level[i] == SQLITE_LOCK_NONE ? SQLITE_LOCK_SHARED
                   : level[i] == SQLITE_LOCK_SHARED
                       ? (below(2) ? SQLITE_LOCK_RESERVED : SQLITE_LOCK_EXCLUSIVE)
                       : SQLITE_LOCK_EXCLUSIVE;
            ra = a->pMethods->xLock(a, want);
            rb = b->pMethods->xLock(b, want);
            if (ra == SQLITE_OK) {
                level[i] = want > level[i] ? want : level[i];
            } else if (want == SQLITE_LOCK_EXCLUSIVE) {
                level[i] = SQLITE_LOCK_PENDING;
            }
        } else if (op == 2) {
            want = below(2) ? SQLITE_LOCK_SHARED : SQLITE_LOCK_NONE;
            ra = a->pMethods->xUnlock(a, want);
            rb = b->pMethods->xUnlock(b, want);
            level[i] = want < level[i] ? want : level[i];
        } else {
            int res_a = -1, res_b = -1;
            ra = a->pMethods->xCheckReservedLock(a, &res_a);
            rb = b->pMethods->xCheckReservedLock(b, &res_b);
            CHECK(res_a == res_b, "round %d: reserved %d (unix) vs %d", r, res_a, res_b);
        }
        CHECK(ra == rb, "round %d: op %d on handle %d to %d: %d (unix) vs %d", r, op, i, want, ra,
              rb);
        if (ra != rb) {
            break;
        }
    }
    sides_close(sides);
}

/* ---- the wal-index: shared regions and xShmLock ---------------------------------------------- */

static void check_shm(sqlite3_vfs *vfs[2], const char *dir, int rounds)
{
    side_t sides[2];
    sides_open(sides, vfs, dir, "shm.db");
    for (int s = 0; s < 2; s++) {
        sqlite3_file *f0 = sides[s].h[0], *f1 = sides[s].h[1];
        void volatile *p = NULL, *q = NULL;
        int rc = f0->pMethods->xShmMap(f0, 0, SHM_REGION, 0, &p);
        CHECK(rc == SQLITE_OK && p == NULL, "%s: no region 0 yet: %d", sides[s].vfs->zName, rc);
        rc = f0->pMethods->xShmMap(f0, 1, SHM_REGION, 1, &p);
        CHECK(rc == SQLITE_OK && p != NULL, "%s: region 1 made: %d", sides[s].vfs->zName, rc);
        rc = f1->pMethods->xShmMap(f1, 1, SHM_REGION, 0, &q);
        CHECK(rc == SQLITE_OK && q != NULL && ((volatile char *)q)[100] == 0,
              "%s: region 1 seen by another handle, zero", sides[s].vfs->zName);
        ((volatile char *)p)[100] = 42;
        CHECK(q != NULL && ((volatile char *)q)[100] == 42, "%s: the region is shared",
              sides[s].vfs->zName);
        rc = f1->pMethods->xShmMap(f1, 0, SHM_REGION, 0, &q);
        CHECK(rc == SQLITE_OK && q != NULL, "%s: region 0 made with region 1", sides[s].vfs->zName);
        /* every handle detached: the next first one finds it zeroed (unix truncates it) */
        f0->pMethods->xShmUnmap(f0, 0);
        f1->pMethods->xShmUnmap(f1, 0);
        rc = f0->pMethods->xShmMap(f0, 1, SHM_REGION, 0, &p);
        CHECK(rc == SQLITE_OK && (p == NULL || ((volatile char *)p)[100] == 0),
              "%s: a wal-index nobody maps is dropped", sides[s].vfs->zName);
        for (int i = 0; i < HANDLES; i++) {
            sqlite3_file *f = sides[s].h[i];
            rc = f->pMethods->xShmMap(f, 0, SHM_REGION, 1, &p);
            CHECK(rc == SQLITE_OK && p != NULL, "%s: map", sides[s].vfs->zName);
        }
    }
    uint16_t shared[HANDLES] = {0}, exclusive[HANDLES] = {0};
    for (int r = 0; r < rounds; r++) {
        int i = (int)below(HANDLES);
        int ofst = (int)below(SQLITE_SHM_NLOCK), n = 1, flags;
        int kind = (int)below(3);
        if (kind == 1) {
            n = 1 + (int)below((unsigned)(SQLITE_SHM_NLOCK - ofst));
        }
        uint16_t mask = (uint16_t)((1u << (ofst + n)) - (1u << ofst));
        uint16_t held = (uint16_t)(shared[i] | exclusive[i]);
        if (kind == 0 && (held & mask) == 0) {
            flags = SQLITE_SHM_LOCK | SQLITE_SHM_SHARED;
        } else if (kind == 1 && (held & mask) == 0) {
            flags = SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE;
        } else if (shared[i] & (1u << ofst)) {
            n = 1;
            mask = (uint16_t)(1u << ofst);
            flags = SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED;
        } else if (exclusive[i] & (1u << ofst)) {
            n = 1;
            while (ofst + n < SQLITE_SHM_NLOCK && (exclusive[i] & (1u << (ofst + n)))) {
                n++;
            }
            mask = (uint16_t)((1u << (ofst + n)) - (1u << ofst));
            flags = SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE;
        } else {
            continue;
        }
        sqlite3_file *a = sides[0].h[i], *b = sides[1].h[i];
        int ra = a->pMethods->xShmLock(a, ofst, n, flags);
        int rb = b->pMethods->xShmLock(b, ofst, n, flags);
        CHECK(ra == rb, "round %d: handle %d slots %d+%d flags %d: %d (unix) vs %d", r, i, ofst, n,
              flags, ra, rb);
        if (ra != rb) {
            break;
        }
        if (ra == SQLITE_OK && (flags & SQLITE_SHM_UNLOCK)) {
            shared[i] &= (uint16_t)~mask;
            exclusive[i] &= (uint16_t)~mask;
        } else if (ra == SQLITE_OK && (flags & SQLITE_SHM_SHARED)) {
            shared[i] |= mask;
        } else if (ra == SQLITE_OK) {
            exclusive[i] |= mask;
        }
    }
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < HANDLES; i++) {
            sqlite3_file *f = sides[s].h[i];
            f->pMethods->xShmUnmap(f, 1);
        }
    }
    sides_close(sides);
}

/* ---- bytes: reads, writes, truncation, size, and the files' corner cases --------------------- */

static void check_bytes(sqlite3_vfs *vfs[2], const char *dir, int rounds)
{
    char path[512], other[512];
    snprintf(path, sizeof path, "%s/bytes.db", dir);
    snprintf(other, sizeof other, "%s/missing.db", dir);
    sqlite3_file *f[2], *ro[2];
    const int rw = MAIN_RW;
    for (int s = 0; s < 2; s++) {
        f[s] = file_new(vfs[s]);
        ro[s] = file_new(vfs[s]);
        int res = -1;
        int rc = open_file(vfs[s], other, ro[s], SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB);
        CHECK(rc == SQLITE_CANTOPEN && ro[s]->pMethods == NULL, "%s: missing, no CREATE: %d",
              vfs[s]->zName, rc);
        rc = vfs[s]->xDelete(vfs[s], other, 0);
        CHECK(rc == SQLITE_IOERR_DELETE_NOENT, "%s: delete a missing file: %d", vfs[s]->zName, rc);
        rc = open_file(vfs[s], path, f[s], rw);
        CHECK(rc == SQLITE_OK, "%s: open: %d", vfs[s]->zName, rc);
        vfs[s]->xAccess(vfs[s], path, SQLITE_ACCESS_EXISTS, &res);
        CHECK(res == 0, "%s: an empty file does not exist (unixAccess)", vfs[s]->zName);
        vfs[s]->xAccess(vfs[s], path, SQLITE_ACCESS_READWRITE, &res);
        CHECK(res == 1, "%s: an empty file can be written", vfs[s]->zName);
        int out = 0;
        rc = vfs[s]->xOpen(vfs[s], path, ro[s], rw | SQLITE_OPEN_EXCLUSIVE, &out);
        CHECK(rc == SQLITE_OK && (out & SQLITE_OPEN_READONLY) && !(out & SQLITE_OPEN_READWRITE),
              "%s: CREATE|EXCLUSIVE of an existing file: %d, read-only", vfs[s]->zName, rc);
        close_file(ro[s]);
        rc = open_file(vfs[s], path, ro[s], SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB);
        CHECK(rc == SQLITE_OK, "%s: read-only open: %d", vfs[s]->zName, rc);
        CHECK(f[s]->pMethods->xSectorSize(f[s]) == 4096, "%s: sector", vfs[s]->zName);
    }
    CHECK(f[0]->pMethods->xDeviceCharacteristics(f[0]) ==
              f[1]->pMethods->xDeviceCharacteristics(f[1]),
          "device characteristics %x (unix) vs %x", f[0]->pMethods->xDeviceCharacteristics(f[0]),
          f[1]->pMethods->xDeviceCharacteristics(f[1]));
    static uint8_t buf[2][70000], data[70000];
    for (int r = 0; r < rounds; r++) {
        int op = (int)below(4);
        int n = 1 + (int)below(below(8) == 0 ? sizeof data : 5000);
        sqlite3_int64 off = (sqlite3_int64)below(200000);
        int rc[2];
        sqlite3_int64 size[2];
        for (size_t k = 0; k < (size_t)n; k++) {
            data[k] = (uint8_t)rng();
        }
        bool readonly = below(5) == 0;
        for (int s = 0; s < 2; s++) {
            memset(buf[s], 0xa5, sizeof buf[s]);
            sqlite3_file *x = readonly ? ro[s] : f[s];
            switch (op) {
            case 0:
                rc[s] = x->pMethods->xWrite(x, data, n, off);
                break;
            case 1:
                rc[s] = x->pMethods->xRead(x, buf[s], n, off);
                break;
            case 2:
                rc[s] = x->pMethods->xTruncate(x, off / 2);
                break;
            default:
                rc[s] = x->pMethods->xFileSize(x, &size[s]);
                CHECK(size[0] == size[s], "round %d: size %lld (unix) vs %lld", r,
                      (long long)size[0], (long long)size[s]);
                break;
            }
        }
        CHECK(rc[0] == rc[1], "round %d: op %d n %d off %lld: %d (unix) vs %d", r, op, n,
              (long long)off, rc[0], rc[1]);
        CHECK(op != 1 || memcmp(buf[0], buf[1], (size_t)n) == 0, "round %d: bytes read differ", r);
        if (failures > 0) {
            break;
        }
    }
    /* a name deleted while open: its handle keeps the bytes, the name is a new file */
    for (int s = 0; s < 2; s++) {
        sqlite3_int64 before = 0, after = -1, reopened = -1;
        f[s]->pMethods->xFileSize(f[s], &before);
        int rc = vfs[s]->xDelete(vfs[s], path, 0);
        CHECK(rc == SQLITE_OK, "%s: delete: %d", vfs[s]->zName, rc);
        f[s]->pMethods->xFileSize(f[s], &after);
        CHECK(before == after, "%s: deleted while open", vfs[s]->zName);
        sqlite3_file *g = file_new(vfs[s]);
        rc = open_file(vfs[s], path, g, rw);
        g->pMethods->xFileSize(g, &reopened);
        CHECK(rc == SQLITE_OK && reopened == 0, "%s: the name again is a new file", vfs[s]->zName);
        close_file(g);
        free(g);
        close_file(f[s]);
        close_file(ro[s]);
        free(f[s]);
        free(ro[s]);
        vfs[s]->xDelete(vfs[s], path, 0);
    }
}

/* ---- SQLite over the disk: faults and images --------------------------------------------------
 */

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static long long count_rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void check_sqlite(const char *dir)
{
    char home[512], path[600];
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(path, sizeof path, "%s/%s", home, LEDGER_FILE);
    disk_set_home(0, home);
    sqlite3 *db = NULL, *reader = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, DISK_VFS);
    CHECK(rc == SQLITE_OK, "open: %d", rc);
    rc = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                  "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);");
    CHECK(rc == SQLITE_OK, "create: %s", sqlite3_errmsg(db));
    CHECK(access(path, F_OK) != 0 && errno == ENOENT, "%s is in memory only", path);
    rc = sqlite3_open_v2(path, &reader, SQLITE_OPEN_READONLY, NULL); /* the default VFS */
    CHECK(rc == SQLITE_OK && count_rows(path) == 2, "another connection sees the rows");
    sqlite3_extended_result_codes(db, 1);
    disk_set_fault(0, DISK_SYNC_FAILS);
    rc = exec(db, "INSERT INTO t VALUES (3)");
    CHECK(rc == SQLITE_IOERR_FSYNC, "a failing sync: %d", rc);
    disk_set_fault(0, DISK_FULL);
    rc = exec(db, "INSERT INTO t VALUES (4)");
    CHECK(rc == SQLITE_FULL, "a full disk: %d", rc);
    disk_set_fault(0, DISK_OK);
    sqlite3_close(db);
    sqlite3_close(reader);
    db = reader = NULL;
    long long rows = count_rows(path);
    CHECK(rows == 2 || rows == 3, "after the faults: %lld rows", rows);

    disk_image_t *img = disk_image_take(0);
    CHECK(img != NULL, "take: %s", strerror(errno));
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    CHECK(rc == SQLITE_OK && exec(db, "INSERT INTO t VALUES (5)") == SQLITE_OK, "a commit");
    CHECK(img == NULL || disk_image_put(0, img) != 0, "put refused while a connection is open");
    sqlite3_close(db);
    CHECK(count_rows(path) == rows + 1, "the commit is there");
    CHECK(img != NULL && disk_image_put(0, img) == 0, "put: %s", strerror(errno));
    CHECK(count_rows(path) == rows, "the commit is lost after the image is put back");
    disk_image_free(&img);
    CHECK(img == NULL, "freed");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    char dir[] = "/tmp/corridor-disk-check.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
    if (unix_vfs == NULL || disk_install() != 0) {
        fprintf(stderr, "disk_check: no unix VFS, or the disk cannot be installed\n");
        return 2;
    }
    sqlite3_vfs *mem = sqlite3_vfs_find(NULL);
    if (mem != sqlite3_vfs_find(DISK_VFS)) {
        fprintf(stderr, "disk_check: the disk is not the default VFS\n");
        return 1;
    }
    sqlite3_vfs *vfs[2] = {unix_vfs, mem};
    check_locks(vfs, dir, rounds);
    check_shm(vfs, dir, rounds);
    check_bytes(vfs, dir, rounds / 4);
    check_sqlite(dir);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("disk_check: %s (%d rounds)\n", failures == 0 ? "ok" : "FAILED", rounds);
    return failures == 0 ? 0 : 1;
}
