/* Unit tests for node/base/fsutil.c (atomic writes, bounded reads, paths) and node/keys/home.c. */
#include "support.h"
#include "fsutil.h"
#include "home.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "identity.h"

/* Per-test state: a scratch directory, and $CORRIDOR_HOME and the umask as they were. */
typedef struct {
    char *dir;
    char *saved_env; /* NULL if it was unset */
    mode_t saved_umask;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir();
    const char *env = getenv(HOME_ENV);
    f->saved_env = env != NULL ? strdup(env) : NULL;
    f->saved_umask = umask(022);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    umask(f->saved_umask);
    if (f->saved_env != NULL) {
        setenv(HOME_ENV, f->saved_env, 1);
    } else {
        unsetenv(HOME_ENV);
    }
    test_rmtree(f->dir);
    free(f->dir);
    free(f->saved_env);
    free(f);
    return 0;
}

static const char *dir_of(void **state)
{
    return ((fixture_t *)*state)->dir;
}

/* ---- helpers ---- */

/* The number of entries in a directory, other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Whether any entry of dir has ".tmp." in its name. */
static bool has_temp_file(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        found = found || strstr(e->d_name, ".tmp.") != NULL;
    }
    closedir(d);
    return found;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void assert_file_content(const char *path, const char *want)
{
    size_t len = 0;
    char *got = test_read_file(path, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

/* A string of n copies of c; the caller frees it. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- fs_write_atomic ---- */

static void test_write_creates_with_mode(void **state)
{
    char *path = test_path(dir_of(state), "file");
    assert_int_equal(fs_write_atomic(path, "hello\n", 6, 0600), 0);
    assert_file_content(path, "hello\n");
    assert_int_equal(mode_of(path), 0600);
    free(path);
}

static void test_write_mode_ignores_umask(void **state)
{
    char *path = test_path(dir_of(state), "file");
    umask(077);
    assert_int_equal(fs_write_atomic(path, "x", 1, 0644), 0);
    assert_int_equal(mode_of(path), 0644);
    free(path);
}

static void test_write_replaces_existing(void **state)
{
    char *path = test_path(dir_of(state), "file");
    test_write_file(path, "old content, longer than the new\n", 33, 0644);
    assert_int_equal(fs_write_atomic(path, "new\n", 4, 0600), 0);
    assert_file_content(path, "new\n");
    assert_int_equal(mode_of(path), 0600);
    free(path);
}

static void test_write_leaves_no_temp_files(void **state)
{
    char *path = test_path(dir_of(state), "file");
    assert_int_equal(fs_write_atomic(path, "one", 3, 0600), 0);
    assert_int_equal(fs_write_atomic(path, "two", 3, 0600), 0);
    assert_int_equal(count_entries(dir_of(state)), 1);
    assert_false(has_temp_file(dir_of(state)));
    free(path);
}

static void test_write_empty(void **state)
{
    char *path = test_path(dir_of(state), "file");
    assert_int_equal(fs_write_atomic(path, NULL, 0, 0600), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 0);
    free(path);
}

static void test_write_missing_dir(void **state)
{
    char *sub = test_path(dir_of(state), "absent");
    char *path = test_path(sub, "file");
    errno = 0;
    assert_int_equal(fs_write_atomic(path, "x", 1, 0600), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(access(sub, F_OK), -1);
    assert_int_equal(count_entries(dir_of(state)), 0);
    free(path);
    free(sub);
}

static void test_write_over_directory_fails_cleanly(void **state)
{
    /* rename() cannot replace a non-empty directory: the write fails after the temporary file
     * was made, which must then be removed, and the directory left as it was. */
    char *target = test_path(dir_of(state), "target");
    assert_int_equal(mkdir(target, 0700), 0);
    char *inner = test_path(target, "inner");
    test_write_file(inner, "keep", 4, 0600);
    errno = 0;
    assert_int_equal(fs_write_atomic(target, "x", 1, 0600), -1);
    assert_int_equal(errno, EISDIR);
    assert_false(has_temp_file(dir_of(state)));
    assert_int_equal(count_entries(dir_of(state)), 1);
    assert_file_content(inner, "keep");
    free(inner);
    free(target);
}

static void test_write_name_too_long(void **state)
{
    (void)state;
    char *path = repeat('a', CORRIDOR_PATH_LEN_MAX);
    path[0] = '/';
    errno = 0;
    assert_int_equal(fs_write_atomic(path, "x", 1, 0600), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    free(path);
}

static void test_write_relative_path(void **state)
{
    char cwd[CORRIDOR_PATH_LEN_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir_of(state)), 0);
    int rc = fs_write_atomic("plain", "x", 1, 0600);
    int saved = errno;
    assert_int_equal(chdir(cwd), 0);
    errno = saved;
    assert_int_equal(rc, 0);
    char *path = test_path(dir_of(state), "plain");
    assert_file_content(path, "x");
    free(path);
}

/* ---- fs_read_bounded ---- */

static void test_read_exact_size(void **state)
{
    char *path = test_path(dir_of(state), "file");
    char *data = repeat('z', 100);
    test_write_file(path, data, 100, 0600);
    char buf[101];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(fs_read_bounded(path, buf, 100), 100);
    assert_memory_equal(buf, data, 100);
    assert_int_equal(buf[100], '\0');
    free(data);
    free(path);
}

static void test_read_smaller(void **state)
{
    char *path = test_path(dir_of(state), "file");
    test_write_file(path, "abc", 3, 0600);
    char buf[101];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(fs_read_bounded(path, buf, 100), 3);
    assert_string_equal(buf, "abc");
    free(path);
}

static void test_read_one_byte_over(void **state)
{
    char *path = test_path(dir_of(state), "file");
    char *data = repeat('z', 101);
    test_write_file(path, data, 101, 0600);
    char buf[101];
    errno = 0;
    assert_int_equal(fs_read_bounded(path, buf, 100), -1);
    assert_int_equal(errno, EFBIG);
    free(data);
    free(path);
}

static void test_read_empty(void **state)
{
    char *path = test_path(dir_of(state), "file");
    test_write_file(path, "", 0, 0600);
    char buf[8];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(fs_read_bounded(path, buf, 7), 0);
    assert_int_equal(buf[0], '\0');
    /* With max_len 0 an empty file fits and a one-byte file does not. */
    assert_int_equal(fs_read_bounded(path, buf, 0), 0);
    test_write_file(path, "x", 1, 0600);
    errno = 0;
    assert_int_equal(fs_read_bounded(path, buf, 0), -1);
    assert_int_equal(errno, EFBIG);
    free(path);
}

static void test_read_directory(void **state)
{
    char buf[16];
    errno = 0;
    assert_int_equal(fs_read_bounded(dir_of(state), buf, 15), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_read_device(void **state)
{
    (void)state;
    char buf[16];
    errno = 0;
    assert_int_equal(fs_read_bounded("/dev/null", buf, 15), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_read_missing(void **state)
{
    char *path = test_path(dir_of(state), "absent");
    char buf[16];
    errno = 0;
    assert_int_equal(fs_read_bounded(path, buf, 15), -1);
    assert_int_equal(errno, ENOENT);
    free(path);
}

static void test_read_symlink_refused(void **state)
{
    char *path = test_path(dir_of(state), "file");
    char *link = test_path(dir_of(state), "link");
    test_write_file(path, "abc", 3, 0600);
    assert_int_equal(symlink(path, link), 0);
    char buf[16];
    errno = 0;
    assert_int_equal(fs_read_bounded(link, buf, 15), -1);
    assert_int_equal(errno, ELOOP);
    free(link);
    free(path);
}

static void test_read_fifo_does_not_block(void **state)
{
    /* A FIFO is not a regular file: EINVAL, at once. Opening one for reading blocks until a
     * writer comes, so the read runs in a child that an alarm ends if it hangs. */
    char *path = test_path(dir_of(state), "fifo");
    assert_int_equal(mkfifo(path, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(2);
        char buf[16];
        ssize_t n = fs_read_bounded(path, buf, 15);
        _exit(n == -1 && errno == EINVAL ? 0 : 1);
    }
    free(path);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        print_error("fs_read_bounded blocked on a FIFO (child killed by signal %d)\n",
                    WTERMSIG(status));
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- fs_join, fs_sync_dir ---- */

static void test_join(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(fs_join(out, sizeof out, "dir", "name"), 0);
    assert_string_equal(out, "dir/name");
}

static void test_join_exact_fit(void **state)
{
    (void)state;
    char out[9]; /* "dir/name" and its NUL */
    assert_int_equal(fs_join(out, sizeof out, "dir", "name"), 0);
    assert_string_equal(out, "dir/name");
}

static void test_join_too_long(void **state)
{
    (void)state;
    char out[8];
    errno = 0;
    assert_int_equal(fs_join(out, sizeof out, "dir", "name"), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static void test_sync_dir(void **state)
{
    assert_int_equal(fs_sync_dir(dir_of(state)), 0);
    char *missing = test_path(dir_of(state), "absent");
    errno = 0;
    assert_int_equal(fs_sync_dir(missing), -1);
    assert_int_equal(errno, ENOENT);
    char *file = test_path(dir_of(state), "file");
    test_write_file(file, "x", 1, 0600);
    errno = 0;
    assert_int_equal(fs_sync_dir(file), -1);
    assert_int_equal(errno, ENOTDIR);
    free(file);
    free(missing);
}

/* ---- home_resolve ---- */

static void test_home_option_wins(void **state)
{
    (void)state;
    assert_int_equal(setenv(HOME_ENV, "/from/env", 1), 0);
    home_t home;
    assert_int_equal(home_resolve(&home, "/from/option"), 0);
    assert_string_equal(home.dir, "/from/option");
    assert_string_equal(home.config_path, "/from/option/" CONFIG_FILE);
    assert_string_equal(home.key_path, "/from/option/" IDENTITY_KEY_FILE);
}

static void test_home_env_without_option(void **state)
{
    (void)state;
    assert_int_equal(setenv(HOME_ENV, "/from/env", 1), 0);
    home_t home;
    assert_int_equal(home_resolve(&home, NULL), 0);
    assert_string_equal(home.dir, "/from/env");
    assert_string_equal(home.config_path, "/from/env/corridor.conf");
    assert_string_equal(home.key_path, "/from/env/node.key");
    /* An empty option counts as none. */
    assert_int_equal(home_resolve(&home, ""), 0);
    assert_string_equal(home.dir, "/from/env");
}

static void test_home_default(void **state)
{
    (void)state;
    assert_int_equal(unsetenv(HOME_ENV), 0);
    home_t home;
    assert_int_equal(home_resolve(&home, NULL), 0);
    assert_string_equal(home.dir, HOME_DEFAULT);
    assert_string_equal(home.dir, "./.corridor");
    assert_string_equal(home.config_path, "./.corridor/corridor.conf");
    assert_string_equal(home.key_path, "./.corridor/node.key");
    /* An empty $CORRIDOR_HOME counts as unset. */
    assert_int_equal(setenv(HOME_ENV, "", 1), 0);
    assert_int_equal(home_resolve(&home, NULL), 0);
    assert_string_equal(home.dir, HOME_DEFAULT);
}

static void test_home_too_long(void **state)
{
    (void)state;
    home_t home;
    char *dir = repeat('d', CORRIDOR_PATH_LEN_MAX);
    errno = 0;
    assert_int_equal(home_resolve(&home, dir), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    free(dir);
}

static void test_home_longest_fitting(void **state)
{
    (void)state;
    /* dir + "/corridor.conf" + NUL must fit in CORRIDOR_PATH_LEN_MAX. */
    size_t longest = CORRIDOR_PATH_LEN_MAX - 1 - strlen("/" CONFIG_FILE);
    home_t home;
    char *dir = repeat('d', longest);
    assert_int_equal(home_resolve(&home, dir), 0);
    assert_int_equal(strlen(home.config_path), CORRIDOR_PATH_LEN_MAX - 1);
    free(dir);
    dir = repeat('d', longest + 1);
    errno = 0;
    assert_int_equal(home_resolve(&home, dir), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    free(dir);
}

/* ---- home_create ---- */

static void resolve_in(void **state, const char *name, home_t *home)
{
    char *dir = test_path(dir_of(state), name);
    assert_int_equal(home_resolve(home, dir), 0);
    free(dir);
}

static void test_home_create_new(void **state)
{
    home_t home;
    resolve_in(state, "home", &home);
    assert_int_equal(home_create(&home), 0);
    struct stat st;
    assert_int_equal(stat(home.dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, HOME_DIR_MODE);
    assert_int_equal(HOME_DIR_MODE, 0700);
}

static void test_home_create_existing_empty(void **state)
{
    home_t home;
    resolve_in(state, "home", &home);
    assert_int_equal(mkdir(home.dir, 0755), 0);
    assert_int_equal(chmod(home.dir, 0755), 0);
    assert_int_equal(home_create(&home), 0);
    assert_int_equal(mode_of(home.dir), 0700);
}

static void test_home_create_existing_not_empty(void **state)
{
    home_t home;
    resolve_in(state, "home", &home);
    assert_int_equal(mkdir(home.dir, 0755), 0);
    assert_int_equal(chmod(home.dir, 0755), 0);
    test_write_file(home.config_path, "keep", 4, 0600);
    errno = 0;
    assert_int_equal(home_create(&home), -1);
    assert_int_equal(errno, EEXIST);
    assert_file_content(home.config_path, "keep");
    assert_int_equal(mode_of(home.dir), 0755); /* refused: left alone */
}

static void test_home_create_over_file(void **state)
{
    home_t home;
    resolve_in(state, "home", &home);
    test_write_file(home.dir, "file", 4, 0600);
    errno = 0;
    assert_int_equal(home_create(&home), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_file_content(home.dir, "file");
}

static void test_home_create_missing_parent(void **state)
{
    char *parent = test_path(dir_of(state), "absent");
    char *dir = test_path(parent, "home");
    home_t home;
    assert_int_equal(home_resolve(&home, dir), 0);
    errno = 0;
    assert_int_equal(home_create(&home), -1);
    assert_int_equal(errno, ENOENT);
    free(dir);
    free(parent);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_write_creates_with_mode),
        T(test_write_mode_ignores_umask),
        T(test_write_replaces_existing),
        T(test_write_leaves_no_temp_files),
        T(test_write_empty),
        T(test_write_missing_dir),
        T(test_write_over_directory_fails_cleanly),
        T(test_write_name_too_long),
        T(test_write_relative_path),
        T(test_read_exact_size),
        T(test_read_smaller),
        T(test_read_one_byte_over),
        T(test_read_empty),
        T(test_read_directory),
        T(test_read_device),
        T(test_read_missing),
        T(test_read_symlink_refused),
        T(test_read_fifo_does_not_block),
        T(test_join),
        T(test_join_exact_fit),
        T(test_join_too_long),
        T(test_sync_dir),
        T(test_home_option_wins),
        T(test_home_env_without_option),
        T(test_home_default),
        T(test_home_too_long),
        T(test_home_longest_fitting),
        T(test_home_create_new),
        T(test_home_create_existing_empty),
        T(test_home_create_existing_not_empty),
        T(test_home_create_over_file),
        T(test_home_create_missing_parent),
    };
#undef T
    return cmocka_run_group_tests(tests, test_sodium_setup, NULL);
}
