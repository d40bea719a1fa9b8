/* The simulator's disk (disk.c): SQLite's files in memory; one node's can be made to fail writes or
 * syncs. */
#ifndef CORRIDOR_SIM_DISK_H
#define CORRIDOR_SIM_DISK_H

#include <sqlite3.h>

#define DISK_VFS       "corridor-sim-disk"
#define DISK_NODES_MAX 8

typedef enum {
    DISK_OK = 0,
    DISK_FULL,       /* every write fails SQLITE_FULL */
    DISK_SYNC_FAILS, /* every sync fails SQLITE_IOERR_FSYNC */
} disk_fault_t;

/* Registers the in-memory VFS as SQLite's default (also by the name DISK_VFS); 0, or -1 when
 * SQLite refuses. */
int disk_install(void);

/* The files under `home` (kept by the caller) belong to `node`; its disk is fine. */
void disk_set_home(int node, const char *home);

void disk_set_fault(int node, disk_fault_t fault);

/* A node's ledger files (database and write-ahead log) as they were at one moment. */
typedef struct disk_image disk_image_t;

/* Takes the image of `node`'s ledger files now; NULL with errno when it cannot. */
disk_image_t *disk_image_take(int node);

/* Puts `img` back as `node`'s ledger files, the shared-memory index dropped (SQLite rebuilds
 * it), as a restore from a copy does; every connection to them must be closed. 0, or -1 with
 * errno (EBUSY: a connection is still open). The image stays the caller's. */
int disk_image_put(int node, const disk_image_t *img);

void disk_image_free(disk_image_t **img);

#endif
