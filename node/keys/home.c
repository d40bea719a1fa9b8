/* A node's home directory and the names of the files in it; see home.h. */
#include "home.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fsutil.h"
#include "identity.h"

int home_resolve(home_t *home, const char *option)
{
    assert(home != NULL);
    memset(home, 0, sizeof *home);
    const char *dir = option;
    if (dir == NULL || dir[0] == '\0') {
        dir = getenv(HOME_ENV);
    }
    if (dir == NULL || dir[0] == '\0') {
        dir = HOME_DEFAULT;
    }
    if (strlen(dir) >= sizeof home->dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(home->dir, dir);
    if (fs_join(home->config_path, sizeof home->config_path, dir, CONFIG_FILE) != 0 ||
        fs_join(home->key_path, sizeof home->key_path, dir, IDENTITY_KEY_FILE) != 0) {
        return -1;
    }
    return 0;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return false;
    }
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL) {
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    }
    closedir(d);
    return empty;
}

int home_create(const home_t *home)
{
    assert(home != NULL);
    if (mkdir(home->dir, HOME_DIR_MODE) == 0) {
        return chmod(home->dir, HOME_DIR_MODE); /* exactly 0700, whatever the umask */
    }
    if (errno != EEXIST) {
        return -1;
    }
    struct stat st;
    if (stat(home->dir, &st) != 0) {
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if (!dir_is_empty(home->dir)) {
        errno = EEXIST;
        return -1;
    }
    return chmod(home->dir, HOME_DIR_MODE);
}
