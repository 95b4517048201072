/*
 * cleanup.c - a deleted task's traces: its tables in the target's meta schema and its dump
 * directory (cleanup.h), for the loader's and the sink's cleanup slot.
 */
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
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

/* nftw keeps no user pointer: the first failure of one walk (walks run one at a time per
 * thread). */
static _Thread_local sl_error *walk_err;
static _Thread_local int walk_rc;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT && walk_rc == 0)
        walk_rc = sl_error_set(walk_err, SL_EIO, "cannot remove %s: %s", path, strerror(errno));
    return 0;   /* go on: remove what can be removed */
}

static int remove_tree(const char *path, sl_error *err)
{
    walk_err = err;
    walk_rc = 0;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT && walk_rc == 0)
        walk_rc = sl_error_set(err, SL_EIO, "cannot remove %s: %s", path, strerror(errno));
    return walk_rc;
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
