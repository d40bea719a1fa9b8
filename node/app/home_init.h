/*
 * Creating a node's home: directory, keys, ledger and config, all or nothing.
 *
 * `corridor init` and `corridor testnet up` both create homes; a failure half-way leaves no
 * half-made home behind (a directory that is there but empty can be used again). The config
 * is written last: a home with a config is a complete home.
 */
#ifndef CORRIDOR_HOME_INIT_H
#define CORRIDOR_HOME_INIT_H

#include <stddef.h>

#include "config.h"
#include "home.h"
#include "identity.h"

typedef enum {
    HOME_INIT_OK = 0,
    HOME_INIT_E_EXISTS, /* the directory exists and is not empty */
    HOME_INIT_E_DIR,    /* the directory cannot be created */
    HOME_INIT_E_KEYS,   /* keys cannot be generated or written */
    HOME_INIT_E_LEDGER, /* the ledger cannot be created */
    HOME_INIT_E_CONFIG, /* the config cannot be written */
} home_init_err_t;

const char *home_init_strerror(home_init_err_t err);

/* Creates `home` for `config` (its name, endpoints and currencies set) with new keys, which
 * *identity receives (the caller destroys them). err receives the detail (a path, errno's
 * text). */
home_init_err_t home_init(const home_t *home, const config_t *config, identity_t **identity,
                          char *err, size_t err_size);

#endif
