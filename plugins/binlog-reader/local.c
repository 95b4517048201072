/*
 * local.c - the binlog-reader's local mode: the binlog read from the source's relay log (the
 * source's own files, byte for byte, as runtime/relay.c writes them into relay_dir) instead of
 * over a replication connection, following the last file as it grows. Each task keeps its own
 * checkpoint: relay files and source files share one position space, so a checkpoint taken
 * while reading the source resumes here, and the other way round. That is also what lets a
 * reader leave a relay stopped by an error (relay.error), or one that set its files aside
 * because its source had purged what followed them (relay.restart), for the source at the
 * same position.
 */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 19
/* Read-ahead: one pread for many events (two preads an event cost the relay's readers a third
 * more time than reading the source in bench/incremental.sh); an event larger is read alone. */
#define RB_CAP ((size_t)256 << 10)

typedef struct lr {
    br      *r;
    int      dir_fd, fd, ino;
    char     name[256];     /* the file fd is open on */
    uint8_t *ev;            /* an event larger than rb, and the FORMAT_DESCRIPTION fed */
    size_t   cap;
    uint8_t *rb;            /* RB_CAP bytes of the file from rb_off, rb_len of them read */
    uint64_t rb_off;
    size_t   rb_len;
} lr;

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Bytes at off: n read, 0 not (yet) there, < 0 with errno. */
static ssize_t read_at(int fd, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (uint8_t *)p + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return 0;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* 1 if relay.index names file, or names only files before it (the relay has not created it yet:
 * binlog names end in a fixed-width number, so they sort as they come); 0 if the relay no
 * longer holds it (purged, or before where the relay started). */
static int relay_will_have(lr *l, const char *file)
{
    int fd = openat(l->dir_fd, "relay.index", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;   /* the relay has not written its first file yet */
    char line[300], c;
    size_t n = 0;
    int listed = 0, later = 0, any = 0;
    ssize_t k;
    while ((k = read(fd, &c, 1)) == 1 || (k < 0 && errno == EINTR)) {
        if (k < 0)
            continue;
        if (c != '\n') {
            if (n + 1 < sizeof line)
                line[n++] = c;
            continue;
        }
        line[n] = '\0';
        n = 0;
        any = 1;
        if (!strcmp(line, file))
            listed = 1;
        else if (strcmp(line, file) > 0)
            later = 1;
    }
    close(fd);
    return listed || (any && !later);
}

/* 1 with the relay's error in msg when the relay is stopped by an error (runtime/relay.c writes
 * relay.error then and removes it when it starts again), 0 when it runs. */
static int relay_failed(lr *l, char *msg, size_t cap)
{
    int fd = openat(l->dir_fd, "relay.error", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t k = read(fd, msg, cap - 1);
    close(fd);
    msg[k > 0 ? k : 0] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    if (!msg[0])
        snprintf(msg, cap, "the relay stopped on an error (its source's relay_status says which)");
    return 1;
}

/* 1 with the file in `start` when the relay started again after setting aside its files as
 * stale (runtime/relay.c writes relay.restart then) and `file` is before that file: the relay
 * never held it, and only the source can tell whether it still has it. */
static int before_restart(lr *l, const char *file, char *start, size_t cap)
{
    int fd = openat(l->dir_fd, "relay.restart", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t k = read(fd, start, cap - 1);
    close(fd);
    start[k > 0 ? k : 0] = '\0';
    start[strcspn(start, "\n")] = '\0';
    return start[0] && strcmp(file, start) < 0;
}

/* 1 when the file the reader has open is no longer the relay's (the relay set it aside as
 * stale: its source purged what followed it): it will not grow. */
static int file_gone(lr *l)
{
    struct stat a, b;
    if (l->fd < 0 || fstat(l->fd, &a) != 0)
        return 0;
    return fstatat(l->dir_fd, l->name, &b, 0) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

/* 1 with why in msg when the relay will not write more of what this reader waits for: it
 * stopped on an error (relay_failed), or the reader's file left the directory (file_gone). */
static int relay_left(lr *l, char *msg, size_t cap)
{
    if (relay_failed(l, msg, cap))
        return 1;
    if (!file_gone(l))
        return 0;
    snprintf(msg, cap, "the relay set %s aside (its source had purged what followed it) and "
             "will not write to it again", l->name);
    return 1;
}

/* The relay cannot serve this reader now: say why, reset as for a new dump and let br_run read
 * the source from the same position (BR_FROM_SOURCE). */
static int to_source(lr *l, const char *why)
{
    br *r = l->r;
    r->host->log(r->ctx, SL_LOG_WARN, "reading the source instead of the relay log in %s from "
                 "(%s, %llu): %s", r->cfg->relay_dir, r->file, (unsigned long long)r->pos, why);
    br_reset_for_redump(r);
    pthread_mutex_lock(&r->mu);
    r->st_local = 0;
    pthread_mutex_unlock(&r->mu);
    return BR_FROM_SOURCE;
}

/* Wait up to 200 ms for the relay to write (its writes wake the inotify watch): 0, or
 * SL_ESTOPPED, or BR_FROM_SOURCE when the relay stopped on an error or set the reader's file
 * aside. */
static int wait_relay(lr *l)
{
    if (l->r->host->should_stop(l->r->ctx))
        return SL_ESTOPPED;
    char why[SL_ERRMSG_MAX];
    if (relay_left(l, why, sizeof why))
        return to_source(l, why);
    struct pollfd p = { .fd = l->ino, .events = POLLIN };
    if (poll(&p, 1, 200) > 0) {
        char buf[4096];
        while (read(l->ino, buf, sizeof buf) > 0) {
        }
    }
    return 0;
}

/* Open l->r->file (waiting while the relay has not created it yet): 0, SL_ESTOPPED,
 * BR_FROM_SOURCE when the relay stopped on an error or started again after the file (its
 * source's position, which only the source can serve now), or the failure recorded. */
static int open_file(lr *l)
{
    br *r = l->r;
    const sl_host *h = r->host;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    for (;;) {
        l->fd = openat(l->dir_fd, r->file, O_RDONLY | O_CLOEXEC);
        if (l->fd >= 0)
            break;
        if (errno != ENOENT)
            return h->fail(r->ctx, SL_EIO, "binlog-reader: opening %s/%s: %s", r->cfg->relay_dir,
                           r->file, strerror(errno));
        if (!relay_will_have(l, r->file)) {
            char start[256], why[400];
            if (before_restart(l, r->file, start, sizeof start)) {
                snprintf(why, sizeof why, "the relay started again at (%s, 4) after setting "
                         "aside its files, whose source had purged what followed them", start);
                return to_source(l, why);
            }
            return h->fail(r->ctx, SL_ENOENT, "binlog-reader: the relay log in %s no longer "
                           "holds (%s, %llu), where this task resumes: it was purged or the "
                           "relay started after it; start the relay at or before %s",
                           r->cfg->relay_dir, r->file, (unsigned long long)r->pos, r->file);
        }
        /* what came before the ROTATE goes on while the relay has not made the next file */
        int w = (r->b || r->ckpt_dirty) ? br_flush(r) : 0;
        if (w < 0)
            return w;
        if ((w = wait_relay(l)) != 0)
            return w;
    }
    snprintf(l->name, sizeof l->name, "%s", r->file);
    l->rb_len = 0;
    return 0;
}

static int grow(lr *l, size_t n)
{
    if (n <= l->cap)
        return 0;
    uint8_t *p = realloc(l->ev, n);
    if (!p)
        return SL_ENOMEM;
    l->ev = p;
    l->cap = n;
    return 0;
}

/* Read what the file holds from off into rb, up to RB_CAP bytes: 0, or SL_EIO with errno. */
static int fill(lr *l, uint64_t off)
{
    size_t got = 0;
    while (got < RB_CAP) {
        ssize_t k = pread(l->fd, l->rb + got, RB_CAP - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return SL_EIO;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    l->rb_off = off;
    l->rb_len = got;
    return 0;
}

/*
 * The event at off of the open file: 1 with *ev and *len (valid until the next call), 0 when
 * it is not wholly written yet, SL_EIO with errno, SL_EINVAL for a length shorter than a
 * header (*len set), SL_ENOMEM.
 */
static int next_event(lr *l, uint64_t off, const uint8_t **ev, uint32_t *len)
{
    for (int pass = 0;; pass++) {
        if (off >= l->rb_off && off + HDR <= l->rb_off + l->rb_len) {
            const uint8_t *p = l->rb + (off - l->rb_off);
            uint32_t n = u32(p + 9);
            *len = n;
            if (n < HDR)
                return SL_EINVAL;
            if (off + n <= l->rb_off + l->rb_len) {
                *ev = p;
                return 1;
            }
            if (n > RB_CAP) {
                if (grow(l, n) < 0)
                    return SL_ENOMEM;
                ssize_t k = read_at(l->fd, l->ev, n, off);
                if (k <= 0)
                    return k < 0 ? SL_EIO : 0;
                *ev = l->ev;
                return 1;
            }
        }
        if (pass)
            return 0;
        if (fill(l, off) < 0)
            return SL_EIO;
    }
}

/*
 * Starting inside a file: hand the reader the file's FORMAT_DESCRIPTION first, marked as a
 * source's dump marks it when it starts mid-file (end_log_pos 0, CRC32 recomputed: MariaDB
 * sql_repl.cc), so it sets the format without moving the position.
 */
static int feed_fde(lr *l, sl_error *err)
{
    br *r = l->r;
    uint32_t len;
    for (;;) {
        uint8_t hb[HDR];
        ssize_t k = read_at(l->fd, hb, HDR, 4);
        len = k == HDR ? u32(hb + 9) : 0;
        if (k < 0)
            return sl_error_set(err, SL_EIO, "reading %s/%s: %s", r->cfg->relay_dir, r->file,
                                strerror(errno));
        if (k == HDR && (hb[4] != SL_BL_FORMAT_DESCRIPTION || len < HDR + 5))
            return sl_error_set(err, SL_EINVAL, "%s/%s has no FORMAT_DESCRIPTION event",
                                r->cfg->relay_dir, r->file);
        if (k == HDR && grow(l, len) < 0)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        if (k == HDR && read_at(l->fd, l->ev, len, 4) == (ssize_t)len)
            break;
        /* A file the relay has just created: its FORMAT_DESCRIPTION is not wholly written yet
         * (cluster.relay met this as "has no FORMAT_DESCRIPTION event" once). */
        int w = wait_relay(l);
        if (w)
            return w;
    }
    put32(l->ev + 13, 0);
    if (l->ev[len - 5] == SL_BL_CHECKSUM_CRC32)
        put32(l->ev + len - 4, sl_bl_crc32(0, l->ev, len - 4));
    return br_handle_event(r, l->ev, len, err);
}

int br_run_local(br *r)
{
    const sl_host *h = r->host;
    lr l = { .r = r, .dir_fd = -1, .fd = -1, .ino = -1, .rb = malloc(RB_CAP) };
    sl_error err = { 0 };
    int rc = 0;
    char why[SL_ERRMSG_MAX];
    pthread_mutex_lock(&r->mu);
    r->st_local = 1;
    pthread_mutex_unlock(&r->mu);
    if (!l.rb) {
        rc = h->fail(r->ctx, SL_ENOMEM, "out of memory");
        goto out;
    }
    if (r->gtid_start) {
        /* Relay files are found by name and offset; a GTID set alone is resolved by the
         * source's dump (until the first transaction gives a file position). */
        rc = to_source(&l, "this task starts from a GTID set alone");
        goto out;
    }
    l.dir_fd = open(r->cfg->relay_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l.dir_fd < 0) {
        rc = h->fail(r->ctx, SL_EIO, "binlog-reader: relay_dir %s: %s", r->cfg->relay_dir,
                     strerror(errno));
        goto out;
    }
    /* The relay's writes wake the reader at the end of the last file: no polling loop. */
    l.ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (l.ino < 0 || inotify_add_watch(l.ino, r->cfg->relay_dir,
                                       IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
        rc = h->fail(r->ctx, SL_EIO, "binlog-reader: watching %s: %s", r->cfg->relay_dir,
                     strerror(errno));
        goto out;
    }
    if (relay_failed(&l, why, sizeof why)) {
        rc = to_source(&l, why);
        goto out;
    }
    if ((rc = open_file(&l)) != 0)
        goto out;
    h->log(r->ctx, SL_LOG_INFO, "reading the relay log %s from (%s, %llu)", r->cfg->relay_dir,
           r->file, (unsigned long long)r->pos);
    if (r->pos > 4 && (rc = feed_fde(&l, &err)) != 0) {
        if (rc < 0 && rc != SL_ESTOPPED)
            rc = h->fail(r->ctx, rc, "binlog-reader: %s", err.msg);
        goto out;
    }
    if (r->pos < 4)
        r->pos = 4;
    while (!h->should_stop(r->ctx)) {
        const uint8_t *ev = NULL;
        uint32_t len = 0;
        int k = next_event(&l, r->pos, &ev, &len);
        if (k == SL_EINVAL || k == SL_ENOMEM) {
            rc = h->fail(r->ctx, k, "binlog-reader: %s %u at (%s, %llu) of the relay log",
                         k == SL_ENOMEM ? "out of memory for an event of" : "bad event length",
                         len, r->file, (unsigned long long)r->pos);
            break;
        }
        if (k < 0) {
            rc = h->fail(r->ctx, SL_EIO, "binlog-reader: reading %s/%s: %s", r->cfg->relay_dir,
                         r->file, strerror(errno));
            break;
        }
        if (k == 0) {
            /* The end of what the relay has written: hand over what is batched, then wait for
             * the relay to write more - unless it stopped on an error, and wrote its last
             * bytes before saying so (the read again sees them). */
            if ((r->b || r->ckpt_dirty) && (rc = br_flush(r)) < 0)
                break;
            uint8_t b1;
            if (relay_left(&l, why, sizeof why) && read_at(l.fd, &b1, 1, r->pos) == 0) {
                rc = to_source(&l, why);
                break;
            }
            br_refresh_master_status(r);
            struct pollfd p = { .fd = l.ino, .events = POLLIN };
            if (poll(&p, 1, (int)r->cfg->heartbeat_ms) > 0) {
                char buf[4096];
                while (read(l.ino, buf, sizeof buf) > 0) {
                }
            }
            continue;
        }
        uint64_t at = r->pos;
        memset(&err, 0, sizeof err);
        rc = br_handle_event(r, ev, len, &err);
        if (rc < 0) {
            if (rc != SL_ESTOPPED)
                rc = h->fail(r->ctx, rc, "binlog-reader: at (%s, %llu) of the relay log: %s",
                             r->file, (unsigned long long)at,
                             err.msg[0] ? err.msg : sl_strerror(rc));
            break;
        }
        if (strcmp(r->file, l.name) != 0) {
            /* a ROTATE: on to the next file, from its beginning */
            if ((rc = open_file(&l)) != 0)
                break;
        } else if (r->pos != at + len) {
            rc = h->fail(r->ctx, SL_EINVAL, "binlog-reader: the event at (%s, %llu) of the "
                         "relay log ends at %llu, not at %llu", r->file,
                         (unsigned long long)at, (unsigned long long)r->pos,
                         (unsigned long long)(at + len));
            break;
        }
    }
out:
    if (l.fd >= 0)
        close(l.fd);
    if (l.ino >= 0)
        close(l.ino);
    if (l.dir_fd >= 0)
        close(l.dir_fd);
    free(l.ev);
    free(l.rb);
    if (rc == SL_ESTOPPED || h->should_stop(r->ctx))
        return SL_ESTOPPED;
    return rc;   /* BR_FROM_SOURCE too */
}
