/*
 * cleanup.c - a deleted task's traces: its tables in the target's meta schema and its dump
 * directory (cleanup.h), for the loader's and the sink's cleanup slot.
 */
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "myconn.h"

int sl_cleanup_meta_tables(MYSQL *db, const char *meta, const char *task,
                           const char *const *suffixes, sl_error *err)
{
    int rc = 0;
    sl_sbuf b, name;
    sl_sbuf_init(&b);
    sl_sbuf_init(&name);
    for (size_t i = 0; suffixes[i]; i++) {
        sl_sbuf_reset(&b);
        sl_sbuf_reset(&name);
        sl_sbuf_adds(&name, task);
        sl_sbuf_adds(&name, suffixes[i]);
        sl_sbuf_adds(&b, "DROP TABLE IF EXISTS ");
        if (!name.oom && sl_sbuf_reserve(&name, 1) == 0) {
            name.p[name.len] = '\0';
            sl_sbuf_add_qname(&b, meta, name.p);
        }
        sl_error e = { 0 };
        int r = b.oom || name.oom ? sl_error_set(&e, SL_ENOMEM, "out of memory")
                                  : sl_myconn_exec(db, b.p, b.len, &e);
        if (r < 0 && rc == 0) {
            rc = r;
            sl_error_set(err, r, "%s", e.msg);
        }
    }
    sl_sbuf_free(&b);
    sl_sbuf_free(&name);
    return rc;
}

/*
 * Remove the entries of the directory open as dfd (closed here), depth first, going on past a
 * failure so that what can be removed is; the first failure is kept in *rc/err. A walk of our
 * own rather than nftw, whose callback has no user pointer: its state would be thread-local,
 * and a _Thread_local in a dlopen'ed plugin is dynamic TLS that LeakSanitizer's scan crashes on
 * once the plugin is unloaded.
 */
static void remove_entries(int dfd, const char *path, int depth, int *rc, sl_error *err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        if (*rc == 0)
            *rc = sl_error_set(err, SL_EIO, "cannot read %s: %s", path, strerror(errno));
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        int isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            isdir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (isdir && depth < 16) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                remove_entries(sub, e->d_name, depth + 1, rc, err);
        }
        if (unlinkat(dirfd(d), e->d_name, isdir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT &&
            *rc == 0)
            *rc = sl_error_set(err, SL_EIO, "cannot remove %s/%s: %s", path, e->d_name,
                               strerror(errno));
    }
    closedir(d);
}

static int remove_tree(const char *path, sl_error *err)
{
    int rc = 0;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTDIR && errno != ELOOP)
            return sl_error_set(err, SL_EIO, "cannot remove %s: %s", path, strerror(errno));
        /* not a directory: a file or a symbolic link, removed itself */
        return unlink(path) != 0 && errno != ENOENT
            ? sl_error_set(err, SL_EIO, "cannot remove %s: %s", path, strerror(errno)) : 0;
    }
    remove_entries(dfd, path, 0, &rc, err);
    if (rmdir(path) != 0 && errno != ENOENT && rc == 0)
        rc = sl_error_set(err, SL_EIO, "cannot remove %s: %s", path, strerror(errno));
    return rc;
}

int sl_cleanup_dump_dir(const char *source_dir, sl_error *err)
{
    char task_dir[PATH_MAX], data_dir[PATH_MAX];
    int rc = remove_tree(source_dir, err);
    const char *slash = strrchr(source_dir, '/');
    if (!slash || (size_t)(slash - source_dir) >= sizeof task_dir)
        return rc;
    snprintf(task_dir, sizeof task_dir, "%.*s", (int)(slash - source_dir), source_dir);
    if (rmdir(task_dir) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST && rc == 0)
        rc = sl_error_set(err, SL_EIO, "cannot remove %s: %s", task_dir, strerror(errno));
    /* leftovers of older servers: <data_dir>/.<task>.deleted.<pid>.<n> */
    const char *tslash = strrchr(task_dir, '/');
    if (!tslash)
        return rc;
    snprintf(data_dir, sizeof data_dir, "%.*s", (int)(tslash - task_dir), task_dir);
    char prefix[NAME_MAX + 16];
    snprintf(prefix, sizeof prefix, ".%s.deleted.", tslash + 1);
    DIR *d = opendir(data_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        char path[PATH_MAX];
        sl_error le = { 0 };
        if (snprintf(path, sizeof path, "%s/%s", data_dir, e->d_name) < (int)sizeof path &&
            remove_tree(path, &le) != 0 && rc == 0)
            rc = sl_error_set(err, le.code, "%s", le.msg);
    }
    if (d)
        closedir(d);
    return rc;
}
