/*
 * relay.c - the relay writer of one source (relay.h): recovers its directory after a crash,
 * dumps the source's binlog over one replication connection and appends the events to files
 * that mirror the source's byte for byte, with the index and the metadata file kept in an
 * order that survives kill -9 at any instant, and starts again when the source has purged past
 * what the directory holds.
 */
#include "relay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <mariadb_rpl.h>
#include <ma_pvio.h>

#include "decode.h"

#define BINLOG_MAGIC "\xfe" "bin"
#define HDR 19

struct sl_relay {
    /* configuration (copied) */
    char           *dir, *start_file, *start_gtid;
    char           *s_host, *s_user, *s_password, *s_ca, *s_cert, *s_key, *s_cn;
    sl_myconn_opts  src;
    uint32_t        server_id;
    int64_t         sync_ms, hb_ms;
    size_t          buf_cap;
    int64_t         purge_interval_s, purge_expires_h, purge_remain_gb, next_purge_ms;
    int           (*purge_needed)(void *ud, char *file, size_t cap);
    void           *purge_ud;

    int             lock_fd, dir_fd;
    int             fd;              /* the file being written, -1 before the first */
    char            file[256];
    uint64_t        off;             /* its length, buffered bytes included */
    uint8_t        *buf;
    size_t          blen;

    /* Transaction tracking over the events appended (or scanned). */
    sl_bl_format    fmt;
    int             in_group, standalone;
    uint32_t        g_domain, g_server;
    uint64_t        g_seq;
    uint64_t        safe;            /* end of the last whole transaction in file */
    sl_bl_gtid_set  gtid;            /* GTID set at safe */
    char            rotated_to[256]; /* the last event appended was a real ROTATE to this */
    uint64_t        rotated_pos;

    int64_t         last_sync_ms;
    uint64_t        synced_safe;     /* what relay.meta says */

    /* The files were set aside as stale (set_aside): the next file is picked by pick_restart.
     * stale_file/stale_pos: where they ended, for the log ("" after a crash in between). */
    int             restart;
    char            stale_file[256];
    uint64_t        stale_pos;

    MYSQL          *db;
    MARIADB_RPL    *rpl;
    MYSQL          *sdb;             /* status queries */
    int64_t         next_status_ms;
    atomic_int      stop;

    pthread_mutex_t mu;
    sl_relay_status st;
    pthread_mutex_t ix_mu;           /* relay.index: the writer's appends, sl_relay_purge */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int sys_err(sl_error *err, const char *what, const char *dir, const char *name)
{
    return sl_error_set(err, SL_EIO, "relay: %s %s/%s: %s", what, dir, name, strerror(errno));
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_at(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void publish(sl_relay *r)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->st.relay_file, sizeof r->st.relay_file, "%s", r->file);
    r->st.relay_pos = r->safe;
    sl_bl_gtid_set_format(&r->gtid, r->st.relay_gtid, sizeof r->st.relay_gtid);
    pthread_mutex_unlock(&r->mu);
}

/* ---- transaction tracking ----------------------------------------------------------------- */

static int sql_is(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) {
        s++;
        n--;
    }
    return n >= wl && !strncasecmp(s, w, wl) &&
           (n == wl || s[wl] == ' ' || s[wl] == ';' || s[wl] == '\0' || s[wl] == '\n');
}

/*
 * Account for one whole event that now ends at `end` of the current file: its CRC32 is checked
 * (SL_EINVAL when it does not match) and the end of the last whole transaction (safe) and the
 * GTID set there move on. A transaction is a MariaDB GTID group: GTID .. XID, XA PREPARE, a
 * COMMIT/ROLLBACK/XA COMMIT query, or the one query of a standalone (DDL) group; every event
 * outside a group (FORMAT_DESCRIPTION, GTID_LIST, BINLOG_CHECKPOINT, ROTATE) ends at a boundary.
 */
static int track(sl_relay *r, const uint8_t *ev, const sl_bl_header *h, uint64_t end,
                 sl_error *err)
{
    int rc;
    r->rotated_to[0] = '\0';
    if (h->type == SL_BL_FORMAT_DESCRIPTION) {
        if ((rc = sl_bl_parse_fde(ev, h->event_len, 1, &r->fmt, err)) < 0)
            return rc;
        r->in_group = 0;
        r->safe = end;
        return 0;
    }
    const uint8_t *body;
    size_t blen;
    if ((rc = sl_bl_event_body(&r->fmt, ev, h->event_len, 1, &body, &blen, err)) < 0)
        return rc;
    int ends = !r->in_group;
    switch (h->type) {
    case SL_BL_GTID: {
        sl_bl_gtid g;
        if ((rc = sl_bl_parse_gtid(body, blen, &g, err)) < 0)
            return rc;
        /* A group that never ended (cannot happen in a binlog the server wrote) is dropped
         * from the set: its GTID is not counted. */
        r->in_group = 1;
        r->standalone = (g.flags & SL_BL_FL_STANDALONE) != 0;
        r->g_domain = g.domain;
        r->g_server = h->server_id;
        r->g_seq = g.seq;
        return 0;
    }
    case SL_BL_XID:
    case SL_BL_XA_PREPARE:
        ends = 1;
        break;
    case SL_BL_QUERY:
        if (r->in_group) {
            sl_bl_query q;
            if ((rc = sl_bl_parse_query(&r->fmt, body, blen, &q, err)) < 0)
                return rc;
            ends = r->standalone || sql_is(q.sql, q.sql_len, "COMMIT") ||
                   sql_is(q.sql, q.sql_len, "ROLLBACK") || sql_is(q.sql, q.sql_len, "XA COMMIT") ||
                   sql_is(q.sql, q.sql_len, "XA ROLLBACK");
        }
        break;
    case SL_BL_GTID_LIST:
        if (!r->in_group && (rc = sl_bl_parse_gtid_list(body, blen, &r->gtid, err)) < 0)
            return rc;
        break;
    case SL_BL_ROTATE: {
        uint64_t pos;
        const char *name;
        size_t nl;
        if ((rc = sl_bl_parse_rotate(&r->fmt, body, blen, &pos, &name, &nl, err)) < 0)
            return rc;
        if (nl == 0 || nl >= sizeof r->rotated_to || memchr(name, '/', nl) || memchr(name, '\n', nl))
            return sl_error_set(err, SL_EINVAL, "relay: ROTATE to a bad file name");
        memcpy(r->rotated_to, name, nl);
        r->rotated_to[nl] = '\0';
        r->rotated_pos = pos;
        break;
    }
    default:
        break;
    }
    if (ends) {
        if (r->in_group &&
            sl_bl_gtid_set_update(&r->gtid, r->g_domain, r->g_server, r->g_seq) < 0)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        r->in_group = 0;
        r->safe = end;
    }
    return 0;
}

/* ---- files: index, meta, the current binlog file ----------------------------------------- */

static int fsync_dir(sl_relay *r, sl_error *err)
{
    if (fsync(r->dir_fd) != 0)
        return sys_err(err, "fsync", r->dir, ".");
    return 0;
}

/* Write relay.meta: the durable position. Called after the file was fdatasync'ed up to safe. */
static int write_meta(sl_relay *r, sl_error *err)
{
    char gt[1024];
    sl_bl_gtid_set_format(&r->gtid, gt, sizeof gt);
    json_t *o = json_pack("{s:s, s:I, s:s}", "binlog_name", r->file, "binlog_pos",
                          (json_int_t)r->safe, "binlog_gtid", gt);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    int fd = openat(r->dir_fd, "relay.meta.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int bad = fd < 0 || write_all(fd, s, strlen(s)) < 0 || write_all(fd, "\n", 1) < 0 ||
              fdatasync(fd) != 0;
    free(s);
    if (fd >= 0)
        close(fd);
    if (bad || renameat(r->dir_fd, "relay.meta.tmp", r->dir_fd, "relay.meta") != 0)
        return sys_err(err, "writing", r->dir, "relay.meta");
    r->synced_safe = r->safe;
    return fsync_dir(r, err);
}

/*
 * relay.error holds why the relay stopped, while it is stopped by an error: readers of the
 * directory (binlog-reader's local mode) then read the source instead of waiting for a relay
 * that will not grow. Written after the last bytes were made durable; best effort (a reader
 * that misses it waits, as for a slow relay, and the error still shows in relay_status).
 */
static void error_file_set(sl_relay *r, const char *msg)
{
    int fd = openat(r->dir_fd, "relay.error.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    int bad = write_all(fd, msg, strlen(msg)) < 0 || write_all(fd, "\n", 1) < 0;
    close(fd);
    if (bad || renameat(r->dir_fd, "relay.error.tmp", r->dir_fd, "relay.error") != 0)
        unlinkat(r->dir_fd, "relay.error.tmp", 0);
}

static void error_file_clear(sl_relay *r)
{
    unlinkat(r->dir_fd, "relay.error", 0);
}

static int flush_buf(sl_relay *r, sl_error *err)
{
    if (r->blen == 0)
        return 0;
    if (write_all(r->fd, r->buf, r->blen) < 0)
        return sys_err(err, "writing", r->dir, r->file);
    pthread_mutex_lock(&r->mu);
    r->st.bytes_written += r->blen;
    pthread_mutex_unlock(&r->mu);
    r->blen = 0;
    return 0;
}

/* Everything appended is written; make it durable and say so in relay.meta. */
static int sync_all(sl_relay *r, sl_error *err)
{
    int rc = flush_buf(r, err);
    if (rc < 0)
        return rc;
    if (r->fd >= 0 && fdatasync(r->fd) != 0)
        return sys_err(err, "fdatasync", r->dir, r->file);
    r->last_sync_ms = now_ms();
    publish(r);
    if (r->fd >= 0 && r->safe != r->synced_safe)
        return write_meta(r, err);
    return 0;
}

/*
 * Start the binlog file `name` (the source's next, or the first): named in relay.index first,
 * then created holding the 4-byte magic, so a crash in between leaves an index naming a file
 * that recovery creates, never a file the index does not know.
 */
static int open_new_file(sl_relay *r, const char *name, sl_error *err)
{
    int rc;
    if (r->fd >= 0) {
        if ((rc = sync_all(r, err)) < 0)
            return rc;
        close(r->fd);
        r->fd = -1;
    }
    pthread_mutex_lock(&r->ix_mu);
    int ix = openat(r->dir_fd, "relay.index", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ix < 0 || write_all(ix, name, strlen(name)) < 0 || write_all(ix, "\n", 1) < 0 ||
        fdatasync(ix) != 0) {
        if (ix >= 0)
            close(ix);
        pthread_mutex_unlock(&r->ix_mu);
        return sys_err(err, "appending to", r->dir, "relay.index");
    }
    close(ix);
    pthread_mutex_unlock(&r->ix_mu);
    if ((rc = fsync_dir(r, err)) < 0)
        return rc;
    r->fd = openat(r->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (r->fd < 0 || write_all(r->fd, BINLOG_MAGIC, 4) < 0 || fdatasync(r->fd) != 0)
        return sys_err(err, "creating", r->dir, name);
    if ((rc = fsync_dir(r, err)) < 0)
        return rc;
    snprintf(r->file, sizeof r->file, "%s", name);
    r->off = r->safe = 4;
    r->in_group = 0;
    /* r->fmt stays: the fake ROTATE the source sends before the new file's FORMAT_DESCRIPTION
     * is checksummed as the events before it were. */
    publish(r);
    return 0;
}

/* The last name in relay.index ("" when none), dropping a torn last line. */
static int read_index(sl_relay *r, char *last, size_t cap, sl_error *err)
{
    last[0] = '\0';
    int ix = openat(r->dir_fd, "relay.index", O_RDWR | O_CLOEXEC);
    if (ix < 0) {
        if (errno == ENOENT)
            return 0;
        return sys_err(err, "opening", r->dir, "relay.index");
    }
    struct stat sb;
    if (fstat(ix, &sb) != 0) {
        close(ix);
        return sys_err(err, "reading", r->dir, "relay.index");
    }
    size_t n = (size_t)sb.st_size;
    char *s = malloc(n + 1);
    if (!s) {
        close(ix);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    if (n && read_at(ix, s, n, 0) < 0) {
        free(s);
        close(ix);
        return sys_err(err, "reading", r->dir, "relay.index");
    }
    s[n] = '\0';
    size_t keep = n;
    while (keep && s[keep - 1] != '\n')
        keep--;       /* a torn append: its file was never created */
    if (keep != n && (ftruncate(ix, (off_t)keep) != 0 || fdatasync(ix) != 0)) {
        free(s);
        close(ix);
        return sys_err(err, "truncating", r->dir, "relay.index");
    }
    close(ix);
    if (keep) {
        s[keep - 1] = '\0';
        char *nl = strrchr(s, '\n');
        snprintf(last, cap, "%s", nl ? nl + 1 : s);
    }
    free(s);
    return 0;
}

/*
 * Scan the last file from its start, checking each event (length, end_log_pos, CRC32), and
 * cut it back to the end of its last whole transaction: what a crash tore or left half-written
 * is fetched again from the source.
 */
static int recover_file(sl_relay *r, const char *name, sl_error *err)
{
    snprintf(r->file, sizeof r->file, "%s", name);
    r->fd = openat(r->dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->fd < 0)
        return sys_err(err, "opening", r->dir, name);
    struct stat sb;
    if (fstat(r->fd, &sb) != 0)
        return sys_err(err, "reading", r->dir, name);
    uint64_t size = (uint64_t)sb.st_size;
    uint8_t magic[4];
    if (size < 4) {
        /* created, crash before its magic was written */
        if (ftruncate(r->fd, 0) != 0 || pwrite(r->fd, BINLOG_MAGIC, 4, 0) != 4)
            return sys_err(err, "writing", r->dir, name);
        size = 4;
    } else if (read_at(r->fd, magic, 4, 0) < 0 || memcmp(magic, BINLOG_MAGIC, 4) != 0) {
        return sl_error_set(err, SL_EINVAL, "relay: %s/%s is not a binlog file", r->dir, name);
    }
    sl_bl_format_init(&r->fmt);
    r->in_group = 0;
    r->safe = 4;
    char rot[256] = "";
    uint64_t rot_pos = 4, rot_end = 0;
    uint8_t *ev = NULL;
    size_t cap = 0;
    uint64_t off = 4;
    const char *why = NULL;
    sl_error e2 = { 0 };
    while (off < size) {
        uint8_t hb[HDR];
        if (size - off < HDR) {
            why = "a torn event header";
            break;
        }
        if (read_at(r->fd, hb, HDR, off) < 0)
            return sys_err(err, "reading", r->dir, name);
        sl_bl_header h = {
            .timestamp = u32(hb), .type = hb[4], .server_id = u32(hb + 5),
            .event_len = u32(hb + 9), .next_pos = u32(hb + 13),
            .flags = (uint16_t)(hb[17] | hb[18] << 8),
        };
        if (h.event_len < HDR || (uint64_t)h.next_pos != off + h.event_len ||
            (off == 4 && h.type != SL_BL_FORMAT_DESCRIPTION)) {
            why = "an event out of place";
            break;
        }
        if (size - off < h.event_len) {
            why = "a torn event";
            break;
        }
        if (h.event_len > cap) {
            uint8_t *p = realloc(ev, h.event_len);
            if (!p) {
                free(ev);
                return sl_error_set(err, SL_ENOMEM, "out of memory");
            }
            ev = p;
            cap = h.event_len;
        }
        if (read_at(r->fd, ev, h.event_len, off) < 0) {
            free(ev);
            return sys_err(err, "reading", r->dir, name);
        }
        memset(&e2, 0, sizeof e2);
        if (track(r, ev, &h, off + h.event_len, &e2) < 0) {
            why = e2.msg;
            break;
        }
        off += h.event_len;
        if (r->rotated_to[0]) {
            snprintf(rot, sizeof rot, "%s", r->rotated_to);
            rot_pos = r->rotated_pos;
            rot_end = off;
        }
    }
    free(ev);
    if (off < size || r->safe < size) {
        uint64_t cut = size - r->safe;
        fprintf(stderr, "relay: %s/%s: %s at %llu: cutting %llu bytes back to the end of the "
                "last whole transaction (%llu)\n", r->dir, name,
                why ? why : "a transaction without its end", (unsigned long long)off,
                (unsigned long long)cut, (unsigned long long)r->safe);
        if (ftruncate(r->fd, (off_t)r->safe) != 0 || fdatasync(r->fd) != 0)
            return sys_err(err, "truncating", r->dir, name);
        r->st.truncated_bytes += cut;
    }
    r->off = r->safe;
    r->in_group = 0;
    if (lseek(r->fd, (off_t)r->off, SEEK_SET) < 0)
        return sys_err(err, "seeking", r->dir, name);
    /* A file that ends with its ROTATE is complete: go on with the next one. */
    if (rot[0] && rot_end == r->safe) {
        (void)rot_pos;
        return open_new_file(r, rot, err);
    }
    return 0;
}

/* Remove the files of the directory fd (flat: binlogs, relay.index, relay.meta) and fd. */
static int empty_dir(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            unlinkat(dirfd(d), e->d_name, 0) != 0)
            rc = -1;
    closedir(d);
    return rc;
}

/*
 * The relay's files are stale: the source no longer has the file the relay goes on from, so it
 * purged that file's tail and every file up to what it has now - a hole no dump can fill. Move
 * them into <dir>/stale (where mariadb-binlog still reads them: they may hold the only copy of
 * transactions the source purged), relay.meta and relay.index last, and start over with no
 * file. A stale/ that holds a relay.index is an older set-aside and is removed first, so the
 * disk keeps one old relay at most; one without is this move cut short by a crash (opening the
 * directory then recreated the index's last file empty, and found it stale again), which goes
 * on: a file already in stale/ is kept and the one left behind removed. Readers that have an
 * old file open see it leave the directory (binlog-reader's local.c) and read the source.
 */
static int set_aside(sl_relay *r, sl_error *err)
{
    int rc;
    if (r->fd >= 0) {
        if ((rc = sync_all(r, err)) < 0)
            return rc;
        close(r->fd);
        r->fd = -1;
    }
    snprintf(r->stale_file, sizeof r->stale_file, "%s", r->file);
    r->stale_pos = r->safe;
    int sd = openat(r->dir_fd, "stale", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sd >= 0 && faccessat(sd, "relay.index", F_OK, 0) == 0) {
        if (empty_dir(sd) != 0 || unlinkat(r->dir_fd, "stale", AT_REMOVEDIR) != 0)
            return sys_err(err, "removing the older set-aside relay", r->dir, "stale");
        sd = -1;
    }
    if (sd < 0 && (mkdirat(r->dir_fd, "stale", 0755) != 0 ||
                   (sd = openat(r->dir_fd, "stale", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0))
        return sys_err(err, "creating", r->dir, "stale");
    pthread_mutex_lock(&r->ix_mu);      /* no purge while the index goes */
    FILE *f = NULL;
    int ix = openat(r->dir_fd, "relay.index", O_RDONLY | O_CLOEXEC);
    if (ix >= 0 && !(f = fdopen(ix, "r")))
        close(ix);
    char line[300];
    rc = 0;
    while (rc == 0 && f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0])
            continue;
        if (faccessat(sd, line, F_OK, 0) == 0 ? unlinkat(r->dir_fd, line, 0) != 0 && errno != ENOENT
                                              : renameat(r->dir_fd, line, sd, line) != 0 &&
                                                errno != ENOENT)
            rc = sys_err(err, "setting aside", r->dir, line);
    }
    if (f)
        fclose(f);
    if (rc == 0 && renameat(r->dir_fd, "relay.meta", sd, "relay.meta") != 0 && errno != ENOENT)
        rc = sys_err(err, "setting aside", r->dir, "relay.meta");
    if (rc == 0 && fsync(sd) != 0)
        rc = sys_err(err, "fsync", r->dir, "stale");
    if (rc == 0 && renameat(r->dir_fd, "relay.index", sd, "relay.index") != 0 && errno != ENOENT)
        rc = sys_err(err, "setting aside", r->dir, "relay.index");
    pthread_mutex_unlock(&r->ix_mu);
    if (rc == 0 && fsync(sd) != 0)
        rc = sys_err(err, "fsync", r->dir, "stale");
    close(sd);
    if (rc < 0 || (rc = fsync_dir(r, err)) < 0)
        return rc;
    r->file[0] = '\0';
    r->off = r->safe = r->synced_safe = 0;
    r->in_group = 0;
    r->rotated_to[0] = '\0';
    sl_bl_gtid_set_free(&r->gtid);
    memset(&r->gtid, 0, sizeof r->gtid);
    r->restart = 1;
    publish(r);
    return 0;
}

/* ---- public: open, free ------------------------------------------------------------------ */

static char *dupz(const char *s)
{
    return strdup(s ? s : "");
}

int sl_relay_new(const sl_relay_opts *o, sl_relay **out, sl_error *err)
{
    *out = NULL;
    if (!o->dir || !o->dir[0])
        return sl_error_set(err, SL_EINVAL, "relay: no relay_dir");
    sl_relay *r = calloc(1, sizeof *r);
    if (!r)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    r->lock_fd = r->dir_fd = r->fd = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->ix_mu, NULL);
    r->dir = dupz(o->dir);
    r->start_file = dupz(o->start_file);
    r->start_gtid = dupz(o->start_gtid);
    r->s_host = dupz(o->source.host);
    r->s_user = dupz(o->source.user);
    r->s_password = dupz(o->source.password);
    r->s_ca = dupz(o->source.ssl_ca);
    r->s_cert = dupz(o->source.ssl_cert);
    r->s_key = dupz(o->source.ssl_key);
    r->s_cn = dupz(o->source.cert_allowed_cn);
    r->src = o->source;
    r->src.host = r->s_host;
    r->src.user = r->s_user;
    r->src.password = r->s_password;
    r->src.ssl_ca = r->s_ca;
    r->src.ssl_cert = r->s_cert;
    r->src.ssl_key = r->s_key;
    r->src.cert_allowed_cn = r->s_cn;
    r->src.init_sql = NULL;
    r->server_id = o->server_id ? o->server_id : 4200000001u;
    r->sync_ms = o->sync_ms > 0 ? o->sync_ms : 1000;
    r->hb_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 1000;
    r->buf_cap = o->buf_bytes ? o->buf_bytes : (size_t)1 << 20;
    r->purge_interval_s = o->purge_interval_s;
    r->purge_expires_h = o->purge_expires_h;
    r->purge_remain_gb = o->purge_remain_gb;
    r->purge_needed = o->purge_needed;
    r->purge_ud = o->purge_ud;
    r->buf = malloc(r->buf_cap);
    int rc = 0;
    if (!r->dir || !r->start_file || !r->start_gtid || !r->s_host || !r->s_user || !r->s_password || !r->s_ca ||
        !r->s_cert || !r->s_key || !r->s_cn || !r->buf) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    if (mkdir(r->dir, 0755) != 0 && errno != EEXIST) {
        rc = sl_error_set(err, SL_EIO, "relay: creating relay_dir %s: %s", r->dir, strerror(errno));
        goto fail;
    }
    r->dir_fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dir_fd < 0) {
        rc = sl_error_set(err, SL_EIO, "relay: opening relay_dir %s: %s", r->dir, strerror(errno));
        goto fail;
    }
    r->lock_fd = openat(r->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0) {
        rc = sl_error_set(err, SL_EIO, "relay: relay_dir %s is not writable: %s", r->dir,
                          strerror(errno));
        goto fail;
    }
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = sl_error_set(err, SL_EIO, "relay: relay_dir %s is in use by another relay writer",
                          r->dir);
        goto fail;
    }
    char last[256];
    if ((rc = read_index(r, last, sizeof last, err)) < 0 ||
        (last[0] && (rc = recover_file(r, last, err)) < 0) ||
        (r->fd >= 0 && (rc = write_meta(r, err)) < 0)) {
        error_file_set(r, err->msg);   /* the directory is ours (locked): say why */
        goto fail;
    }
    /* set aside (stale/relay.index), and a crash before the next file was named */
    r->restart = r->fd < 0 && faccessat(r->dir_fd, "stale/relay.index", F_OK, 0) == 0;
    error_file_clear(r);
    publish(r);
    *out = r;
    return 0;
fail:
    sl_relay_free(r);
    return rc;
}

static void close_dump(sl_relay *r)
{
    if (r->sdb)
        mysql_close(r->sdb);
    r->sdb = NULL;
    if (r->rpl)
        mariadb_rpl_close(r->rpl);
    r->rpl = NULL;
    if (r->db)
        mysql_close(r->db);
    r->db = NULL;
}

void sl_relay_free(sl_relay *r)
{
    if (!r)
        return;
    close_dump(r);
    if (r->fd >= 0) {
        sl_error e = { 0 };
        sync_all(r, &e);
        close(r->fd);
    }
    if (r->lock_fd >= 0)
        close(r->lock_fd);      /* releases the flock */
    if (r->dir_fd >= 0)
        close(r->dir_fd);
    sl_bl_gtid_set_free(&r->gtid);
    free(r->buf);
    free(r->dir);
    free(r->start_file);
    free(r->start_gtid);
    free(r->s_host);
    free(r->s_user);
    free(r->s_password);
    free(r->s_ca);
    free(r->s_cert);
    free(r->s_key);
    free(r->s_cn);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->ix_mu);
    free(r);
}

int sl_relay_purge(sl_relay *r, const char *before, const char *keep_from, sl_error *err)
{
    if (keep_from && keep_from[0] && strcmp(before, keep_from) > 0)
        return sl_error_set(err, SL_ESTATE, "relay: files before %s cannot go: %s is still "
                            "needed", before, keep_from);
    pthread_mutex_lock(&r->ix_mu);
    int rc = 0;
    char *s = NULL;
    size_t n = 0;
    FILE *f = NULL;
    int ix = openat(r->dir_fd, "relay.index", O_RDONLY | O_CLOEXEC);
    if (ix >= 0)
        f = fdopen(ix, "r");
    if (!f) {
        if (ix >= 0)
            close(ix);
        rc = sl_error_set(err, SL_ENOENT, "relay: %s holds no file %s", r->dir, before);
        goto out;
    }
    /* the names before `before`, one a line, and what stays */
    char line[300];
    size_t cut = 0;
    int found = 0;
    char *keep = NULL;
    size_t klen = 0;
    FILE *k = open_memstream(&keep, &klen);
    FILE *g = open_memstream(&s, &n);
    while (k && g && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strcmp(line, before))
            found = 1;
        if (found)
            fprintf(k, "%s\n", line);
        else {
            fprintf(g, "%s\n", line);
            cut++;
        }
    }
    fclose(f);
    if (k)
        fclose(k);
    if (g)
        fclose(g);
    if (!k || !g) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    } else if (!found) {
        rc = sl_error_set(err, SL_ENOENT, "relay: %s holds no file %s", r->dir, before);
    } else if (cut) {
        /* the index first (a crash after it leaves files nobody names, not names of no file) */
        int fd = openat(r->dir_fd, "relay.index.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0644);
        if (fd < 0 || write_all(fd, keep, klen) < 0 || fdatasync(fd) != 0 ||
            renameat(r->dir_fd, "relay.index.tmp", r->dir_fd, "relay.index") != 0) {
            rc = sys_err(err, "rewriting", r->dir, "relay.index");
        } else if ((rc = fsync_dir(r, err)) == 0) {
            for (char *p = s, *e; p && *p; p = e + 1) {
                if (!(e = strchr(p, '\n')))
                    break;
                *e = '\0';
                if (unlinkat(r->dir_fd, p, 0) != 0 && errno != ENOENT) {
                    rc = sys_err(err, "removing", r->dir, p);
                    break;
                }
            }
        }
        if (fd >= 0)
            close(fd);
    }
    free(keep);
out:
    free(s);
    pthread_mutex_unlock(&r->ix_mu);
    return rc;
}

void sl_relay_stop(sl_relay *r)
{
    atomic_store(&r->stop, 1);
}

void sl_relay_status_get(sl_relay *r, sl_relay_status *st)
{
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    pthread_mutex_unlock(&r->mu);
}

/* ---- the dump ----------------------------------------------------------------------------- */

static int first_row(MYSQL *db, const char *sql, char *a, size_t acap, sl_error *err)
{
    if (mysql_query(db, sql) != 0) {
        unsigned e = mysql_errno(db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "relay: %s: %s (errno %u)", sql, mysql_error(db), e);
    }
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    int rc = row ? 0 : SL_ENOENT;
    if (row)
        snprintf(a, acap, "%s", row[0] ? row[0] : "");
    if (res)
        mysql_free_result(res);
    if (rc < 0)
        sl_error_set(err, SL_EINVAL, "relay: %s returned no row (no binary log?)", sql);
    return rc;
}

/* The Info of the GTID_LIST event at the start of the source's binlog file `name`, parsed into
 * out: the GTID state before the file's first transaction. */
static int file_gtid_list(MYSQL *db, const char *name, sl_bl_gtid_set *out, sl_error *err)
{
    char esc[520], sql[600];
    mysql_real_escape_string(db, esc, name, (unsigned long)strlen(name));
    snprintf(sql, sizeof sql, "SHOW BINLOG EVENTS IN '%s' LIMIT 4", esc);
    if (mysql_query(db, sql) != 0) {
        unsigned e = mysql_errno(db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "relay: %s: %s (errno %u)", sql, mysql_error(db), e);
    }
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW row;
    int rc = sl_error_set(err, SL_EINVAL, "relay: the source's %s has no GTID_LIST event "
                          "(not a MariaDB binlog?)", name);
    while (res && mysql_num_fields(res) >= 6 && (row = mysql_fetch_row(res)))
        if (row[2] && !strcasecmp(row[2], "Gtid_list") && row[5]) {
            char t[1024];
            snprintf(t, sizeof t, "%s", row[5] + (row[5][0] == '['));
            t[strcspn(t, "]")] = '\0';
            memset(err, 0, sizeof *err);
            rc = sl_bl_gtid_set_parse(out, t, err);
            break;
        }
    if (res)
        mysql_free_result(res);
    return rc;
}

/* 1 when the GTID state `want` is at or after `list` in every domain `list` names. */
static int gtid_covers(const sl_bl_gtid_set *want, const sl_bl_gtid_set *list)
{
    for (uint32_t i = 0; i < list->n; i++) {
        uint32_t j = 0;
        while (j < want->n && want->v[j].domain != list->v[i].domain)
            j++;
        if (j == want->n || want->v[j].seq < list->v[i].seq)
            return 0;
    }
    return 1;
}

/* The source's binlog files, oldest first (SHOW BINARY LOGS): *k names in *names, which the
 * caller frees (NULL when none). */
static int source_binlogs(MYSQL *db, char (**names)[256], size_t *k, sl_error *err)
{
    *names = NULL;
    *k = 0;
    if (mysql_query(db, "SHOW BINARY LOGS") != 0) {
        unsigned e = mysql_errno(db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "relay: SHOW BINARY LOGS: %s (errno %u)", mysql_error(db), e);
    }
    MYSQL_RES *res = mysql_store_result(db);
    size_t n = res ? (size_t)mysql_num_rows(res) : 0;
    char (*v)[256] = n ? calloc(n, sizeof *v) : NULL;
    MYSQL_ROW row;
    while (v && *k < n && (row = mysql_fetch_row(res)))
        snprintf(v[(*k)++], sizeof v[0], "%s", row[0] ? row[0] : "");
    if (res)
        mysql_free_result(res);
    if (n && !v)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    *names = v;
    return 0;
}

/*
 * The file a new relay starts in: start_file, which the source must still have; else the
 * newest file whose GTID_LIST start_gtid covers (what MariaDB itself does to serve a GTID
 * dump: the transactions after start_gtid are in it or after it); else the source's current
 * file. SL_ENOENT with err when the source no longer has what was asked for.
 */
static int pick_start(sl_relay *r, char *f, size_t cap, sl_error *err)
{
    if (!r->start_file[0] && !r->start_gtid[0])
        return first_row(r->db, "SHOW MASTER STATUS", f, cap, err);
    sl_bl_gtid_set want = { 0 }, list = { 0 };
    int rc;
    sl_error e2 = { 0 };
    if (!r->start_file[0] && (rc = sl_bl_gtid_set_parse(&want, r->start_gtid, &e2)) < 0) {
        sl_bl_gtid_set_free(&want);
        return sl_error_set(err, rc, "relay: relay_binlog_gtid '%s': %s", r->start_gtid,
                            e2.msg);
    }
    char (*names)[256];
    size_t k;
    if ((rc = source_binlogs(r->db, &names, &k, err)) < 0) {
        sl_bl_gtid_set_free(&want);
        return rc;
    }
    rc = SL_ENOENT;
    f[0] = '\0';
    if (r->start_file[0]) {
        for (size_t i = 0; i < k && rc == SL_ENOENT; i++)
            if (!strcmp(names[i], r->start_file))
                rc = 0;
        if (rc == 0)
            snprintf(f, cap, "%s", r->start_file);
        else
            sl_error_set(err, SL_ENOENT, "relay: the source no longer has %s, where the relay "
                         "was to start (relay_binlog_name, or else the oldest checkpoint of the "
                         "source's tasks); it has %s .. %s", r->start_file,
                         k ? names[0] : "no binlog", k ? names[k - 1] : "");
    } else {
        for (size_t i = k; i-- > 0 && rc == SL_ENOENT;) {
            if ((rc = file_gtid_list(r->db, names[i], &list, err)) < 0)
                break;
            rc = gtid_covers(&want, &list) ? 0 : SL_ENOENT;
            if (rc == 0)
                snprintf(f, cap, "%s", names[i]);
        }
        if (rc == SL_ENOENT)
            sl_error_set(err, SL_ENOENT, "relay: the source no longer has the binlog after "
                         "relay_binlog_gtid %s: its oldest file %s starts after it",
                         r->start_gtid, k ? names[0] : "(none)");
    }
    free(names);
    sl_bl_gtid_set_free(&want);
    sl_bl_gtid_set_free(&list);
    return rc;
}

static int has_name(char (*names)[256], size_t k, const char *name)
{
    for (size_t i = 0; i < k; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

/*
 * Before dumping from (r->file, r->off): is r->file still on the source? When it is not, the
 * source purged it, and the binlog between the relay's end and the source's oldest file with
 * it: dumping would stop on errno 1236 for good, whichever way it is resumed. The files are
 * set aside then (set_aside) and the relay starts over (pick_restart). The check costs one
 * SHOW BINARY LOGS a connection; a source that cannot answer it (no privilege for it) is dumped
 * from as before.
 */
static int check_stale(sl_relay *r, sl_error *err)
{
    char (*names)[256];
    size_t k;
    sl_error e2 = { 0 };
    int rc = source_binlogs(r->db, &names, &k, &e2);
    if (rc < 0) {
        if (rc == SL_ECONN || rc == SL_ENOMEM)
            return sl_error_set(err, rc, "%s", e2.msg);
        return 0;
    }
    int gone = k && !has_name(names, k, r->file);
    free(names);
    return gone ? set_aside(r, err) : 0;
}

/* relay.restart: the file this relay started again in after a set-aside. A reader whose
 * position is before it (binlog-reader's local.c) asks the source instead: the relay never
 * held it, and the source either still has it or says it purged it (errno 1236). */
static int write_restart(sl_relay *r, const char *file, sl_error *err)
{
    int fd = openat(r->dir_fd, "relay.restart.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0644);
    int bad = fd < 0 || write_all(fd, file, strlen(file)) < 0 || write_all(fd, "\n", 1) < 0 ||
              fdatasync(fd) != 0;
    if (fd >= 0)
        close(fd);
    if (bad || renameat(r->dir_fd, "relay.restart.tmp", r->dir_fd, "relay.restart") != 0)
        return sys_err(err, "writing", r->dir, "relay.restart");
    return fsync_dir(r, err);
}

/*
 * The file a relay starts again in after its files were set aside: start_file (the oldest file
 * the source's tasks resume from, or relay_binlog_name) when the source still has it, else the
 * source's oldest file. Never a later one: every task whose position the source still has must
 * find it in the relay, or before the relay's start (then it reads the source); a task whose
 * position is purged gets the source's errno 1236 for itself, not a relay that skips ahead.
 * Not the source's current file either, as a new relay without a start would: the tasks'
 * positions may not be known (at a server start the relays start before the tasks are read).
 */
static int pick_restart(sl_relay *r, char *f, size_t cap, sl_error *err)
{
    char (*names)[256];
    size_t k;
    int rc = source_binlogs(r->db, &names, &k, err);
    if (rc < 0)
        return rc;
    if (!k)
        return sl_error_set(err, SL_EINVAL, "relay: SHOW BINARY LOGS returned no row (no binary "
                            "log?)");
    int need = r->start_file[0] && has_name(names, k, r->start_file);
    snprintf(f, cap, "%s", need ? r->start_file : names[0]);
    char why[400];
    if (need)
        snprintf(why, sizeof why, "the oldest file the source's tasks resume from (or "
                 "relay_binlog_name)");
    else if (r->start_file[0])
        snprintf(why, sizeof why, "the source's oldest file: it no longer has %s, the oldest "
                 "file the source's tasks resume from (or relay_binlog_name)", r->start_file);
    else
        snprintf(why, sizeof why, "the source's oldest file (no file the source's tasks "
                 "resume from is known)");
    if (r->stale_file[0])
        fprintf(stderr, "relay: %s: the source no longer has %s, where the relay goes on (from "
                "%llu; the source has %s .. %s): the relay's files are set aside in %s/stale, "
                "and it starts again at (%s, 4), %s\n", r->dir, r->stale_file,
                (unsigned long long)r->stale_pos, names[0], names[k - 1], r->dir, f, why);
    else
        fprintf(stderr, "relay: %s: its files were set aside in %s/stale; it starts again at "
                "(%s, 4), %s\n", r->dir, r->dir, f, why);
    free(names);
    return write_restart(r, f, err);
}

/* Connect and send COM_BINLOG_DUMP from (r->file, r->off); a new relay first picks its file. */
static int open_dump(sl_relay *r, sl_error *err)
{
    sl_myconn_opts o = r->src;
    /* A silent source heartbeats every hb_ms: a read that waits much longer is a dead link. */
    unsigned rw = (unsigned)(r->hb_ms * 4 / 1000);
    o.rw_timeout = rw < 10 ? 10 : rw;
    if (!(r->db = sl_myconn_open(&o, err)))
        return err->code ? err->code : SL_ECONN;
    int rc;
    if (r->fd >= 0 && (rc = check_stale(r, err)) < 0)
        return rc;
    if (r->fd < 0) {
        char f[256];
        rc = r->restart ? pick_restart(r, f, sizeof f, err) : pick_start(r, f, sizeof f, err);
        if (rc < 0)
            return rc;
        r->restart = 0;
        if (!f[0] || strchr(f, '/'))
            return sl_error_set(err, SL_EINVAL, "relay: bad binlog file name '%s'", f);
        if ((rc = open_new_file(r, f, err)) < 0)
            return rc;
    }
    char sql[200];
    const char *setup[] = {
        "SET @master_binlog_checksum = @@global.binlog_checksum",
        /* GTID events as they are (MARIA_SLAVE_CAPABILITY_GTID), not rewritten to BEGIN */
        "SET @mariadb_slave_capability = 4",
    };
    for (size_t i = 0; i < 2; i++)
        if ((rc = sl_myconn_exec(r->db, setup[i], strlen(setup[i]), err)) < 0)
            return rc;
    snprintf(sql, sizeof sql, "SET @master_heartbeat_period = %lld",
             (long long)r->hb_ms * 1000000LL);
    if ((rc = sl_myconn_exec(r->db, sql, strlen(sql), err)) < 0)
        return rc;
    char ck[32] = "";
    if ((rc = first_row(r->db, "SELECT @master_binlog_checksum", ck, sizeof ck, err)) < 0)
        return rc;
    /* The fake ROTATE sent before the first FORMAT_DESCRIPTION carries a checksum iff the
     * checksum just asked for is on; a file resumed in its middle already told us. */
    if (r->off <= 4) {
        sl_bl_format_init(&r->fmt);
        r->fmt.checksum_alg = strcasecmp(ck, "NONE") && ck[0] ? SL_BL_CHECKSUM_CRC32
                                                              : SL_BL_CHECKSUM_OFF;
    }
    if (!(r->rpl = mariadb_rpl_init(r->db)))
        return sl_error_set(err, SL_ENOMEM, "mariadb_rpl_init: %s", mysql_error(r->db));
    mariadb_rpl_optionsv(r->rpl, MARIADB_RPL_SERVER_ID, (unsigned int)r->server_id);
    mariadb_rpl_optionsv(r->rpl, MARIADB_RPL_FILENAME, r->file, strlen(r->file));
    mariadb_rpl_optionsv(r->rpl, MARIADB_RPL_START, (unsigned long)r->off);
    /* ANNOTATE_ROWS too: a server skips them otherwise, and the copy would have holes. */
    mariadb_rpl_optionsv(r->rpl, MARIADB_RPL_FLAGS,
                         (unsigned int)MARIADB_RPL_BINLOG_SEND_ANNOTATE_ROWS);
    if (mariadb_rpl_open(r->rpl) != 0) {
        unsigned e = mysql_errno(r->db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "relay: COM_BINLOG_DUMP from (%s, %llu): %s (errno %u)", r->file,
                            (unsigned long long)r->off, mysql_error(r->db), e);
    }
    return 0;
}

/* Where the source stands, for status: at most every 2 s, on a connection of its own. */
static void refresh_master(sl_relay *r)
{
    int64_t now = now_ms();
    if (now < r->next_status_ms)
        return;
    r->next_status_ms = now + 2000;
    sl_error err = { 0 };
    if (!r->sdb) {
        sl_myconn_opts o = r->src;
        o.connect_timeout = 5;
        o.rw_timeout = 5;
        if (!(r->sdb = sl_myconn_open(&o, &err)))
            return;
    }
    char f[256] = "", g[1024] = "";
    if (mysql_query(r->sdb, "SHOW MASTER STATUS") != 0) {
        mysql_close(r->sdb);
        r->sdb = NULL;
        return;
    }
    MYSQL_RES *res = mysql_store_result(r->sdb);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    uint64_t pos = 0;
    if (row && row[0] && row[1]) {
        snprintf(f, sizeof f, "%s", row[0]);
        pos = strtoull(row[1], NULL, 10);
    }
    if (res)
        mysql_free_result(res);
    first_row(r->sdb, "SELECT @@GLOBAL.gtid_binlog_pos", g, sizeof g, &err);
    if (!f[0])
        return;
    pthread_mutex_lock(&r->mu);
    snprintf(r->st.master_file, sizeof r->st.master_file, "%s", f);
    r->st.master_pos = pos;
    snprintf(r->st.master_gtid, sizeof r->st.master_gtid, "%s", g);
    pthread_mutex_unlock(&r->mu);
}

static int data_pending(sl_relay *r)
{
    MARIADB_PVIO *pvio = r->db->net.pvio;
    if (pvio && pvio->cache && pvio->cache_pos < pvio->cache + pvio->cache_size)
        return 1;
    struct pollfd pfd = { .fd = (int)mysql_get_socket(r->db), .events = POLLIN };
    return poll(&pfd, 1, 0) > 0;
}

/* The source's purge settings (sl_relay_opts): find the first file that stays, bounded by what
 * readers need, and purge before it. Failures are left for the next round. */
static void auto_purge(sl_relay *r)
{
    int64_t now = now_ms();
    if (r->purge_interval_s <= 0 || now < r->next_purge_ms ||
        (r->purge_expires_h <= 0 && r->purge_remain_gb <= 0))
        return;
    r->next_purge_ms = now + r->purge_interval_s * 1000;
    char need[256] = "";
    int known = r->purge_needed ? r->purge_needed(r->purge_ud, need, sizeof need) : 0;
    if (known < 0)
        return;
    int low_space = 0;
    struct statvfs vs;
    if (r->purge_remain_gb > 0 && fstatvfs(r->dir_fd, &vs) == 0)
        low_space = (uint64_t)vs.f_bavail * vs.f_frsize < (uint64_t)r->purge_remain_gb << 30;
    pthread_mutex_lock(&r->ix_mu);
    FILE *f = NULL;
    int ix = openat(r->dir_fd, "relay.index", O_RDONLY | O_CLOEXEC);
    if (ix >= 0 && !(f = fdopen(ix, "r")))
        close(ix);
    char line[300], stay[300] = "";
    time_t cutoff = time(NULL) - (time_t)(r->purge_expires_h * 3600);
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        struct stat sb;
        int old = r->purge_expires_h > 0 && fstatat(r->dir_fd, line, &sb, 0) == 0 &&
                  sb.st_mtime < cutoff;
        if (!strcmp(line, r->file) || (known == 1 && strcmp(line, need) >= 0) ||
            !(old || low_space)) {
            snprintf(stay, sizeof stay, "%s", line);
            break;
        }
    }
    if (f)
        fclose(f);
    pthread_mutex_unlock(&r->ix_mu);
    sl_error err = { 0 };
    if (stay[0] && sl_relay_purge(r, stay, known == 1 ? need : NULL, &err) < 0)
        fprintf(stderr, "relay: automatic purge: %s\n", err.msg);
}

/* SL_EAGAIN-like: reconnect from where the file stands. */
#define RECONNECT 1

static int on_event(sl_relay *r, const uint8_t *ev, size_t len, sl_error *err);

/* 1 if name (nl bytes) is a later binlog file than cur: the same base, a higher number (binlog
 * names end in a fixed-width sequence number, so they sort as they come). */
static int later_file(const char *name, size_t nl, const char *cur)
{
    const char *dot = strrchr(cur, '.');
    size_t base = dot ? (size_t)(dot - cur) + 1 : 0;
    return base && nl == strlen(cur) && memcmp(name, cur, base) == 0 &&
           memcmp(name + base, cur + base, nl - base) > 0;
}

/*
 * The source's file ended without a ROTATE (the source crashed, or was killed, while it was the
 * current file), and its dump goes on at (name, 4) with an artificial ROTATE. End our copy with
 * the ROTATE the source would have written there, so that tasks reading the relay move on as
 * at any rotation, and go on in the new file. It is the one event of the relay log that the
 * source did not send; its position is past the end of the source's own file.
 */
static int end_without_rotate(sl_relay *r, const char *name, size_t nl, sl_error *err)
{
    uint8_t ev[HDR + 8 + 256 + 4];
    if (nl == 0 || nl >= 256 || memchr(name, '/', nl) || memchr(name, '\n', nl))
        return sl_error_set(err, SL_EINVAL, "relay: ROTATE to a bad file name");
    int crc = r->fmt.checksum_alg == SL_BL_CHECKSUM_CRC32;
    size_t len = HDR + 8 + nl + (crc ? 4 : 0);
    uint64_t next = r->off + len;
    if (next > UINT32_MAX)
        return sl_error_set(err, SL_EINVAL, "relay: %s is too long to end with a ROTATE", r->file);
    memset(ev, 0, HDR + 8);
    uint32_t ts = (uint32_t)time(NULL);
    for (int i = 0; i < 4; i++) {
        ev[i] = (uint8_t)(ts >> (8 * i));
        ev[9 + i] = (uint8_t)(len >> (8 * i));
        ev[13 + i] = (uint8_t)(next >> (8 * i));
    }
    ev[4] = SL_BL_ROTATE;
    ev[HDR] = 4;                    /* the position in the new file, 8 bytes little-endian */
    memcpy(ev + HDR + 8, name, nl);
    if (crc) {
        uint32_t c = sl_bl_crc32(0, ev, HDR + 8 + nl);
        for (int i = 0; i < 4; i++)
            ev[HDR + 8 + nl + i] = (uint8_t)(c >> (8 * i));
    }
    fprintf(stderr, "relay: %s ended without a ROTATE at %llu (the source restarted): ending "
            "the relay's copy with one, on to %.*s\n", r->file, (unsigned long long)r->off,
            (int)nl, name);
    return on_event(r, ev, len, err);
}

/* One event of the dump: 0 written or skipped, RECONNECT, or a negative code with err. */
static int on_event(sl_relay *r, const uint8_t *ev, size_t len, sl_error *err)
{
    if (len < HDR)
        return sl_error_set(err, SL_EINVAL, "relay: short event (%zu bytes)", len);
    sl_bl_header h = {
        .timestamp = u32(ev), .type = ev[4], .server_id = u32(ev + 5), .event_len = u32(ev + 9),
        .next_pos = u32(ev + 13), .flags = (uint16_t)(ev[17] | ev[18] << 8),
    };
    if (h.event_len != len)
        return sl_error_set(err, SL_EINVAL, "relay: event length %u in a packet of %zu",
                            h.event_len, len);
    int artificial = (h.flags & SL_BL_LOG_EVENT_ARTIFICIAL_F) || h.next_pos == 0;
    if (h.type == SL_BL_HEARTBEAT) {
        const uint8_t *body;
        size_t blen;
        if (sl_bl_event_body(&r->fmt, ev, len, 0, &body, &blen, NULL) == 0 && blen < 256) {
            pthread_mutex_lock(&r->mu);
            memcpy(r->st.master_file, body, blen);
            r->st.master_file[blen] = '\0';
            r->st.master_pos = h.next_pos;
            pthread_mutex_unlock(&r->mu);
        }
        return 0;
    }
    if (artificial) {
        /* The fake ROTATE naming the file the dump starts in, a FORMAT_DESCRIPTION resent for a
         * dump that starts mid-file, a fake GTID_LIST: not part of the file. */
        if (h.type == SL_BL_FORMAT_DESCRIPTION)
            return sl_bl_parse_fde(ev, len, 1, &r->fmt, err);
        if (h.type == SL_BL_ROTATE) {
            const uint8_t *body;
            size_t blen, nl;
            uint64_t pos;
            const char *name;
            int rc = sl_bl_event_body(&r->fmt, ev, len, 1, &body, &blen, err);
            if (rc == 0)
                rc = sl_bl_parse_rotate(&r->fmt, body, blen, &pos, &name, &nl, err);
            if (rc < 0)
                return rc;
            if (nl != strlen(r->file) || memcmp(name, r->file, nl) != 0 || pos != r->off) {
                if (pos == 4 && !r->in_group && later_file(name, nl, r->file))
                    return end_without_rotate(r, name, nl, err);
                return sl_error_set(err, SL_EINVAL, "relay: asked for (%s, %llu), the source "
                                    "starts at (%.*s, %llu)", r->file,
                                    (unsigned long long)r->off, (int)nl, name,
                                    (unsigned long long)pos);
            }
        }
        return 0;
    }
    uint64_t start = (uint64_t)h.next_pos - h.event_len;
    if (h.next_pos < h.event_len || start != r->off) {
        if (start < r->off)
            return RECONNECT;    /* resent what is written: dump again from our end */
        return sl_error_set(err, SL_EINVAL, "relay: gap in the binlog the source sent: %s "
                            "ends at %llu, the next event starts at %llu", r->file,
                            (unsigned long long)r->off, (unsigned long long)start);
    }
    int rc = track(r, ev, &h, r->off + len, err);
    if (rc < 0)
        return RECONNECT;    /* a CRC mismatch on the wire: fetch it again */
    if (r->blen + len > r->buf_cap && (rc = flush_buf(r, err)) < 0)
        return rc;
    if (len > r->buf_cap) {
        if (write_all(r->fd, ev, len) < 0)
            return sys_err(err, "writing", r->dir, r->file);
        pthread_mutex_lock(&r->mu);
        r->st.bytes_written += len;
        pthread_mutex_unlock(&r->mu);
    } else {
        memcpy(r->buf + r->blen, ev, len);
        r->blen += len;
    }
    r->off += len;
    if (r->rotated_to[0]) {
        char next[256];
        snprintf(next, sizeof next, "%s", r->rotated_to);
        pthread_mutex_lock(&r->mu);
        snprintf(r->st.master_file, sizeof r->st.master_file, "%s", next);
        r->st.master_pos = r->rotated_pos;
        pthread_mutex_unlock(&r->mu);
        if ((rc = open_new_file(r, next, err)) < 0)
            return rc;
    }
    return 0;
}

int sl_relay_run(sl_relay *r, sl_error *err)
{
    int backoff = 100, rc = 0;
    pthread_mutex_lock(&r->mu);
    r->st.running = 1;
    r->st.error_msg[0] = '\0';
    pthread_mutex_unlock(&r->mu);
    r->next_purge_ms = now_ms() + r->purge_interval_s * 1000;   /* one interval after a start */
    while (!atomic_load(&r->stop)) {
        if (!r->rpl) {
            memset(err, 0, sizeof *err);
            rc = open_dump(r, err);
            if (rc < 0) {
                close_dump(r);
                if (rc != SL_ECONN)
                    break;
                for (int w = 0; w < backoff && !atomic_load(&r->stop); w += 50)
                    sleep_ms(50);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
        }
        /* Nothing more right now: write out what is buffered, and now and then make it
         * durable (fdatasync, then relay.meta). */
        if (!data_pending(r)) {
            if ((rc = flush_buf(r, err)) < 0)
                break;
            if (now_ms() - r->last_sync_ms >= r->sync_ms && (rc = sync_all(r, err)) < 0)
                break;
            publish(r);
            refresh_master(r);
            auto_purge(r);
        }
        unsigned long len = mysql_net_read_packet(r->db);
        if (len == 0 || len >= 0xFFFFFFFFul) {
            unsigned e = mysql_errno(r->db);
            if (e == 1236) {
                rc = sl_error_set(err, SL_EDB, "relay: the source cannot send the binlog from "
                                  "(%s, %llu): %s (errno 1236)", r->file,
                                  (unsigned long long)r->off, mysql_error(r->db));
                break;
            }
            close_dump(r);
            continue;
        }
        const uint8_t *pkt = r->db->net.read_pos;
        if (pkt[0] == 0xFE && len < 9) {
            close_dump(r);       /* the server ended the dump (shutdown) */
            continue;
        }
        unsigned e;
        const char *msg;
        size_t ml;
        if (sl_bl_dump_error(pkt, len, &e, &msg, &ml)) {
            if (e == 1236) {
                rc = sl_error_set(err, SL_EDB, "relay: the source cannot send the binlog from "
                                  "(%s, %llu): %.*s (errno 1236)", r->file,
                                  (unsigned long long)r->off, (int)ml, msg);
                break;
            }
            close_dump(r);       /* shutdown, killed: dump again */
            continue;
        }
        if (pkt[0] != 0x00) {
            close_dump(r);
            continue;
        }
        backoff = 100;
        rc = on_event(r, pkt + 1, len - 1, err);
        if (rc == RECONNECT) {
            /* What is appended is whole, checked events at their own offsets: dumping again
             * from r->off goes on from there, inside a transaction or not. */
            close_dump(r);
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
    }
    close_dump(r);
    sl_error e2 = { 0 };
    int src = sync_all(r, rc < 0 ? &e2 : err);
    if (rc == 0 && src < 0)
        rc = src;
    pthread_mutex_lock(&r->mu);
    r->st.running = 0;
    if (rc < 0)
        snprintf(r->st.error_msg, sizeof r->st.error_msg, "%s", err->msg);
    pthread_mutex_unlock(&r->mu);
    if (rc < 0) {
        error_file_set(r, err->msg);
        return rc;
    }
    return SL_ESTOPPED;
}
