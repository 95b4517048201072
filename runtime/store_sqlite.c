/*
 * store_sqlite.c - the default metadata store: one SQLite file (WAL) under the data dir, one
 * table (kind, name) -> value, one transaction per batch of changes. A crash at any instant
 * leaves either the whole batch or none of it (SQLite's atomic commit).
 */
#include "store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct sqlite_store {
    sl_meta_store base;
    sqlite3 *db;
    pthread_mutex_t mu;     /* one connection, serialized: writes are serialized by SQLite anyway */
    sqlite3_stmt *st_get, *st_put, *st_ins, *st_upd, *st_del, *st_delp, *st_scan;
} sqlite_store;

static int db_err(sqlite_store *s, sl_error *err, const char *what)
{
    return sl_error_set(err, SL_EIO, "metadata store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(sqlite_store *s, const char *sql, sl_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = sl_error_set(err, SL_EIO, "metadata store: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* Upper bound of names starting with prefix: prefix followed by U+10FFFF-ish bytes. */
static void bind_prefix(sqlite3_stmt *st, int idx, const char *prefix)
{
    size_t n = strlen(prefix);
    char *hi = malloc(n + 2);
    if (!hi) {
        sqlite3_bind_null(st, idx);
        return;
    }
    memcpy(hi, prefix, n);
    hi[n] = (char)0xff;
    hi[n + 1] = 0;
    sqlite3_bind_text(st, idx, prefix, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, idx + 1, hi, (int)n + 1, SQLITE_TRANSIENT);
    free(hi);
}

static int st_apply(sl_meta_store *base, const sl_meta_op *ops, size_t n, sl_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if ((rc = exec(s, "BEGIN IMMEDIATE", err)) != 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl_meta_op *o = &ops[i];
        sqlite3_stmt *st;
        switch (o->type) {
        case SL_META_PUT: st = s->st_put; break;
        case SL_META_CREATE: st = s->st_ins; break;
        case SL_META_UPDATE: st = s->st_upd; break;
        case SL_META_DELETE: st = s->st_del; break;
        case SL_META_DELETE_PREFIX: st = s->st_delp; break;
        default: rc = sl_error_set(err, SL_EINVAL, "metadata store: bad op %d", o->type); continue;
        }
        sqlite3_bind_text(st, 1, o->kind, -1, SQLITE_STATIC);
        if (o->type == SL_META_DELETE_PREFIX) {
            bind_prefix(st, 2, o->name);
        } else {
            sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
            if (o->type != SL_META_DELETE)
                sqlite3_bind_text(st, 3, o->value ? o->value : "", -1, SQLITE_STATIC);
        }
        int src = sqlite3_step(st);
        int changes = sqlite3_changes(s->db);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (src == SQLITE_CONSTRAINT && o->type == SL_META_CREATE)
            rc = sl_error_set(err, SL_EEXIST, "%s %s already exists", o->kind, o->name);
        else if (src != SQLITE_DONE)
            rc = db_err(s, err, "write");
        else if (o->type == SL_META_UPDATE && changes == 0)
            rc = sl_error_set(err, SL_ENOENT, "%s %s does not exist", o->kind, o->name);
    }
    if (rc == 0) {
        if ((rc = exec(s, "COMMIT", err)) != 0)
            exec(s, "ROLLBACK", NULL);
    } else {
        exec(s, "ROLLBACK", NULL);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int st_get(sl_meta_store *base, const char *kind, const char *name, char **value,
                  sl_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc;
    *value = NULL;
    pthread_mutex_lock(&s->mu);
    sqlite3_bind_text(s->st_get, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->st_get, 2, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s->st_get);
    if (src == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s->st_get, 0);
        *value = strdup(v ? v : "");
        rc = *value ? 0 : sl_error_set(err, SL_ENOMEM, "out of memory");
    } else if (src == SQLITE_DONE) {
        rc = sl_error_set(err, SL_ENOENT, "%s %s does not exist", kind, name);
    } else {
        rc = db_err(s, err, "read");
    }
    sqlite3_reset(s->st_get);
    sqlite3_clear_bindings(s->st_get);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Rows are copied out under the lock and visited after it is released, so a visitor may call
 * the store again (restoring a task reads its stage records). */
static int st_scan(sl_meta_store *base, const char *kind, const char *prefix, sl_meta_visit_fn fn,
                   void *ud, sl_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc = 0, src;
    size_t n = 0, cap = 0;
    char **rows = NULL;   /* name, value, name, value, ... */
    pthread_mutex_lock(&s->mu);
    sqlite3_bind_text(s->st_scan, 1, kind, -1, SQLITE_STATIC);
    bind_prefix(s->st_scan, 2, prefix ? prefix : "");
    while ((src = sqlite3_step(s->st_scan)) == SQLITE_ROW) {
        const char *nm = (const char *)sqlite3_column_text(s->st_scan, 0);
        const char *v = (const char *)sqlite3_column_text(s->st_scan, 1);
        if (n + 2 > cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nr = realloc(rows, nc * sizeof *nr);
            if (!nr) {
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                break;
            }
            rows = nr;
            cap = nc;
        }
        rows[n] = strdup(nm ? nm : "");
        rows[n + 1] = strdup(v ? v : "");
        n += 2;
        if (!rows[n - 2] || !rows[n - 1]) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            break;
        }
    }
    if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = db_err(s, err, "scan");
    sqlite3_reset(s->st_scan);
    sqlite3_clear_bindings(s->st_scan);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; rc == 0 && i < n; i += 2)
        if (fn(ud, rows[i], rows[i + 1]))
            break;
    for (size_t i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    return rc;
}

static void st_close(sl_meta_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *sts[] = { s->st_get, s->st_put, s->st_ins, s->st_upd, s->st_del, s->st_delp, s->st_scan };
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++)
        sqlite3_finalize(sts[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const sl_meta_store_ops sqlite_ops = {
    .apply = st_apply, .get = st_get, .scan = st_scan, .close = st_close,
};

int sl_meta_sqlite_open(const char *path, sl_meta_store **out, sl_error *err)
{
    sqlite_store *s = calloc(1, sizeof *s);
    int rc;
    if (!s)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->mu, NULL);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        rc = sl_error_set(err, SL_EIO, "cannot open metadata store %s: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* WAL + synchronous=FULL: a commit that returned is on disk, whatever kills the process. */
    if ((rc = exec(s, "PRAGMA journal_mode=WAL", err)) != 0 ||
        (rc = exec(s, "PRAGMA synchronous=FULL", err)) != 0 ||
        (rc = exec(s, "CREATE TABLE IF NOT EXISTS meta (kind TEXT NOT NULL, name TEXT NOT NULL, "
                      "value TEXT NOT NULL, PRIMARY KEY (kind, name)) WITHOUT ROWID", err)) != 0)
        goto fail;
    struct { sqlite3_stmt **st; const char *sql; } prep[] = {
        { &s->st_get, "SELECT value FROM meta WHERE kind=?1 AND name=?2" },
        { &s->st_put, "INSERT OR REPLACE INTO meta(kind,name,value) VALUES(?1,?2,?3)" },
        { &s->st_ins, "INSERT INTO meta(kind,name,value) VALUES(?1,?2,?3)" },
        { &s->st_upd, "UPDATE meta SET value=?3 WHERE kind=?1 AND name=?2" },
        { &s->st_del, "DELETE FROM meta WHERE kind=?1 AND name=?2" },
        { &s->st_delp, "DELETE FROM meta WHERE kind=?1 AND name>=?2 AND name<?3" },
        { &s->st_scan, "SELECT name, value FROM meta WHERE kind=?1 AND name>=?2 AND name<?3 ORDER BY name" },
    };
    for (size_t i = 0; i < sizeof prep / sizeof prep[0]; i++)
        if (sqlite3_prepare_v2(s->db, prep[i].sql, -1, prep[i].st, NULL) != SQLITE_OK) {
            rc = db_err(s, err, prep[i].sql);
            goto fail;
        }
    *out = &s->base;
    return 0;
fail:
    st_close(&s->base);
    return rc;
}
