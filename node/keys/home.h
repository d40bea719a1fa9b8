/*
 * A node's home: the directory that holds its config, key file, ledger and control socket.
 *
 * Every path inside a home is relative to it, so a home can be copied or moved and audited
 * elsewhere. This module only names the files and creates the directory; the modules that
 * own each file read and write it.
 */
#ifndef CORRIDOR_HOME_H
#define CORRIDOR_HOME_H

#include <stddef.h>

#include "corridor/limits.h"

#define HOME_DEFAULT  "./.corridor"
#define HOME_ENV      "CORRIDOR_HOME"
#define HOME_DIR_MODE 0700

typedef struct {
    char dir[CORRIDOR_PATH_LEN_MAX];         /* the home directory as given */
    char config_path[CORRIDOR_PATH_LEN_MAX]; /* dir/corridor.conf */
    char key_path[CORRIDOR_PATH_LEN_MAX];    /* dir/node.key */
} home_t;

/* Resolves the home from --home (may be NULL), else $CORRIDOR_HOME, else ./.corridor, and
 * fills in the paths. -1 (errno ENAMETOOLONG) if a path does not fit. */
int home_resolve(home_t *home, const char *option);

/* Creates the home directory with mode 0700 for `corridor init`. An existing empty directory
 * is taken over (and set to 0700); an existing non-empty one is refused with EEXIST. */
int home_create(const home_t *home);

#endif
