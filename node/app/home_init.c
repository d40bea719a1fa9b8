/* Creating a node's home, all or nothing; see home_init.h. */
#include "home_init.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "ledger.h"

const char *home_init_strerror(home_init_err_t err)
{
    switch (err) {
    case HOME_INIT_OK:
        return "ok";
    case HOME_INIT_E_EXISTS:
        return "the directory exists and is not empty; refusing to overwrite a home";
    case HOME_INIT_E_DIR:
        return "cannot create the home directory";
    case HOME_INIT_E_KEYS:
        return "cannot create the node's keys";
    case HOME_INIT_E_LEDGER:
        return "cannot create the ledger";
    case HOME_INIT_E_CONFIG:
        return "cannot write the config";
    }
    return "unknown home creation error";
}

home_init_err_t home_init(const home_t *home, const config_t *config, identity_t **identity,
                          char *err, size_t err_size)
{
    assert(home != NULL && config != NULL && identity != NULL && err != NULL);
    *identity = NULL;
    err[0] = '\0';
    char ledger_path[CORRIDOR_PATH_LEN_MAX] = "";
    ledger_t *ledger = NULL;
    home_init_err_t rc = HOME_INIT_E_DIR;
    if (home_create(home) != 0) {
        rc = errno == EEXIST ? HOME_INIT_E_EXISTS : HOME_INIT_E_DIR;
        snprintf(err, err_size, "%s: %s", home->dir, strerror(errno));
        return rc; /* nothing of ours to undo */
    }
    rc = HOME_INIT_E_KEYS;
    if ((*identity = identity_generate()) == NULL) {
        snprintf(err, err_size, "out of locked memory?");
        goto undo;
    }
    if (identity_save(*identity, home->key_path) != ID_OK) {
        snprintf(err, err_size, "%s: %s", home->key_path, strerror(errno));
        goto undo;
    }
    rc = HOME_INIT_E_LEDGER;
    if (fs_join(ledger_path, sizeof ledger_path, home->dir, LEDGER_FILE) != 0) {
        snprintf(err, err_size, "%s: path too long", home->dir);
        goto undo;
    }
    if (ledger_open(ledger_path, config->name, LEDGER_READ_WRITE, NULL, &ledger, err, err_size) !=
        LEDGER_OK) {
        goto undo;
    }
    ledger_close(&ledger);
    rc = HOME_INIT_E_CONFIG;
    if (config_save(config, home->config_path) != 0) {
        snprintf(err, err_size, "%s: %s", home->config_path, strerror(errno));
        goto undo;
    }
    return HOME_INIT_OK;

undo:
    /* whatever we wrote, in reverse; the directory goes only if nothing else is left in it */
    if (ledger_path[0] != '\0') {
        char side[CORRIDOR_PATH_LEN_MAX + 8];
        unlink(ledger_path);
        snprintf(side, sizeof side, "%s-wal", ledger_path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", ledger_path);
        unlink(side);
    }
    unlink(home->key_path);
    rmdir(home->dir);
    identity_destroy(identity);
    return rc;
}
