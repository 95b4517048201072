/*
 * jsonl_sink.c - the jsonl-sink plugin: the change stream of a subtask as JSON lines (one object
 * per row change or DDL, format.h) in numbered files under a directory, rotated by size, with a
 * checkpoint that makes the files exactly-once up to the last checkpoint.
 *
 * Exactly once. Lines are appended with write(); at a transaction boundary (a COMMIT, a DDL, or
 * a batch that ends at one) the sink remembers (file number, offset, binlog position). When no
 * more input waits, or sync_bytes were written since the last checkpoint, it makes the lines
 * durable (fdatasync) and then replaces "<prefix>.checkpoint" atomically (write a temporary
 * file, fsync, rename, fsync the directory) with that boundary. A kill -9 at any instant leaves
 * a checkpoint whose lines are all on disk, and maybe lines after it; on start the sink cuts the
 * current file back to the checkpoint's offset and removes later files, and the runtime starts
 * the binlog-reader at the checkpoint's position (ctl "checkpoint", plugin.h), so the lines after
 * the checkpoint are written again once and nothing before it twice. A consumer that reads a
 * file only up to the checkpoint's offset (or that tolerates a cut last part after a crash)
 * sees every row change exactly once.
 *
 * Files are "<dir>/<task>.<source>.NNNNNN.jsonl" (six digits, from 000001), one series per
 * subtask, so the subtasks of a task and several tasks can share a directory.
 */
#include "format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct config {
    char   *dir;
    char   *task_name;
    char   *source_name;
    int64_t max_file_bytes;
    int64_t sync_bytes;
} config;

#define OPT(n, t, d, dsc, field, lo, hi, f) \
    { .name = n, .type = t, .def = d, .desc = dsc, .offset = offsetof(config, field), \
      .min = lo, .max = hi, .flags = f }

static const sl_option options[] = {
    OPT("dir", SL_OPT_STRING, NULL, "directory of the JSON-lines files and their checkpoint "
        "(created if missing)", dir, 1, 4096, SL_OPTF_REQUIRED),
    OPT("task_name", SL_OPT_STRING, NULL, "task name (given by the compiler)", task_name, 0, 0,
        SL_OPTF_REQUIRED),
    OPT("source_name", SL_OPT_STRING, NULL, "source name (given by the compiler)", source_name,
        0, 0, SL_OPTF_REQUIRED),
    OPT("max_file_bytes", SL_OPT_INT, "67108864", "a file is closed and the next one started "
        "at the first transaction boundary past this size", max_file_bytes, 4096, INT64_MAX, 0),
    OPT("sync_bytes", SL_OPT_INT, "4194304", "bytes written after which a checkpoint is taken "
        "at the next transaction boundary even while more input waits", sync_bytes, 1,
        INT64_MAX, 0),
    { .name = NULL },
};

/* A transaction boundary: where the lines of whole transactions end, and the binlog position
 * after them. */
typedef struct boundary {
    uint32_t file_no;
    uint64_t offset;
    char     binlog_name[256];   /* "" = no position yet (nothing read since the task began) */
    uint64_t binlog_pos;
    char    *binlog_gtid;        /* malloc'd or NULL */
    uint64_t seq;
} boundary;

typedef struct jsonl {
    const sl_host *host;
    sl_ctx        *ctx;
    const config  *cfg;
    char          *prefix;       /* "<dir>/<task>.<source>" */
    int            fd;           /* the current file, -1 when not started */
    int            dirfd;
    uint32_t       file_no;
    uint64_t       off;          /* its size */
    boundary       last;         /* the latest boundary seen */
    boundary       ckpt;         /* the one the checkpoint file holds */
    int            dirty;        /* last differs from ckpt */
    sl_sbuf        buf;          /* lines of the batch in hand */
} jsonl;

static void boundary_set(boundary *b, uint32_t file_no, uint64_t offset, const sl_position *p,
                         uint64_t seq)
{
    b->file_no = file_no;
    b->offset = offset;
    if (p && p->file) {
        snprintf(b->binlog_name, sizeof b->binlog_name, "%s", p->file);
        b->binlog_pos = p->offset;
        free(b->binlog_gtid);
        b->binlog_gtid = p->gtid ? strdup(p->gtid) : NULL;
        if (seq)
            b->seq = seq;
    }
}

static void boundary_copy(boundary *to, const boundary *from)
{
    free(to->binlog_gtid);
    *to = *from;
    to->binlog_gtid = from->binlog_gtid ? strdup(from->binlog_gtid) : NULL;
}

/* "<prefix>.NNNNNN.jsonl", "<prefix>.checkpoint" (suffix "" for the prefix alone). malloc'd. */
static char *path_of(const jsonl *j, const char *suffix, uint32_t file_no)
{
    size_t n = strlen(j->prefix) + strlen(suffix) + 32;
    char *p = malloc(n);
    if (p) {
        if (file_no)
            snprintf(p, n, "%s.%06" PRIu32 ".jsonl", j->prefix, file_no);
        else
            snprintf(p, n, "%s%s", j->prefix, suffix);
    }
    return p;
}

static int js_create(const sl_host *host, sl_ctx *ctx, const void *cfgp, void **self)
{
    const config *cfg = cfgp;
    jsonl *j = host->calloc(1, sizeof *j);
    if (!j)
        return host->fail(ctx, SL_ENOMEM, "jsonl-sink: out of memory");
    j->host = host;
    j->ctx = ctx;
    j->cfg = cfg;
    j->fd = j->dirfd = -1;
    sl_sbuf_init(&j->buf);
    size_t n = strlen(cfg->dir) + strlen(cfg->task_name) + strlen(cfg->source_name) + 4;
    if (!(j->prefix = malloc(n))) {
        host->free(j);
        return host->fail(ctx, SL_ENOMEM, "jsonl-sink: out of memory");
    }
    snprintf(j->prefix, n, "%s/%s.%s", cfg->dir, cfg->task_name, cfg->source_name);
    /* the names become file names: a '/' in them would point elsewhere */
    for (char *p = j->prefix + strlen(cfg->dir) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    *self = j;
    return 0;
}

/* Read the checkpoint file into b. 0, SL_ENOENT when there is none, SL_EIO/SL_EINVAL after
 * host->fail. */
static int read_ckpt(jsonl *j, boundary *b)
{
    memset(b, 0, sizeof *b);
    char *path = path_of(j, ".checkpoint", 0);
    if (!path)
        return j->host->fail(j->ctx, SL_ENOMEM, "jsonl-sink: out of memory");
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    int rc = 0;
    if (!o) {
        /* no file, or no directory yet (start makes it, or says why it cannot) */
        rc = access(path, F_OK) != 0 && (errno == ENOENT || errno == ENOTDIR) ? SL_ENOENT :
             j->host->fail(j->ctx, SL_EIO, "jsonl-sink: the checkpoint %s cannot be read: %s",
                           path, je.text);
        free(path);
        return rc;
    }
    json_t *fno = json_object_get(o, "file_no"), *off = json_object_get(o, "offset");
    const char *name = json_string_value(json_object_get(o, "binlog_name"));
    const char *gtid = json_string_value(json_object_get(o, "binlog_gtid"));
    if (!json_is_integer(fno) || json_integer_value(fno) < 1 || json_integer_value(fno) > 999999 ||
        !json_is_integer(off) || json_integer_value(off) < 0 ||
        (name && strlen(name) >= sizeof b->binlog_name))
        rc = j->host->fail(j->ctx, SL_EINVAL, "jsonl-sink: the checkpoint %s is not one "
                           "(file_no, offset): remove the directory's files of this task to "
                           "start over", path);
    else {
        b->file_no = (uint32_t)json_integer_value(fno);
        b->offset = (uint64_t)json_integer_value(off);
        snprintf(b->binlog_name, sizeof b->binlog_name, "%s", name ? name : "");
        b->binlog_pos = (uint64_t)json_integer_value(json_object_get(o, "binlog_pos"));
        b->binlog_gtid = gtid ? strdup(gtid) : NULL;
        b->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    }
    json_decref(o);
    free(path);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Make the lines up to b durable and b the checkpoint: fdatasync the current file, then replace
 * the checkpoint file atomically. 0 or SL_EIO after host->fail. */
static int put_ckpt(jsonl *j, const boundary *b)
{
    if (j->fd >= 0 && fdatasync(j->fd) != 0)
        return j->host->fail(j->ctx, SL_EIO, "jsonl-sink: fdatasync of file %06" PRIu32 ": %s",
                             j->file_no, strerror(errno));
    json_t *o = json_pack("{s:I, s:I}", "file_no", (json_int_t)b->file_no, "offset",
                          (json_int_t)b->offset);
    if (o && b->binlog_name[0]) {
        json_object_set_new(o, "binlog_name", json_string(b->binlog_name));
        json_object_set_new(o, "binlog_pos", json_integer((json_int_t)b->binlog_pos));
        json_object_set_new(o, "seq", json_integer((json_int_t)b->seq));
    }
    if (o && b->binlog_gtid)
        json_object_set_new(o, "binlog_gtid", json_string(b->binlog_gtid));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *path = path_of(j, ".checkpoint", 0), *tmp = path_of(j, ".checkpoint.tmp", 0);
    int rc = 0;
    if (!text || !path || !tmp)
        rc = j->host->fail(j->ctx, SL_ENOMEM, "jsonl-sink: out of memory");
    else {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int bad = fd < 0 || write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) ||
                  fsync(fd) != 0;
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (bad || rename(tmp, path) != 0 || fsync(j->dirfd) != 0)
            rc = j->host->fail(j->ctx, SL_EIO, "jsonl-sink: writing the checkpoint %s: %s", path,
                               strerror(bad ? e : errno));
    }
    free(text);
    free(path);
    free(tmp);
    if (rc == 0) {
        if (b != &j->ckpt)
            boundary_copy(&j->ckpt, b);
        j->dirty = 0;
        j->host->metric_add(j->ctx, "checkpoints", 1);
    }
    return rc;
}

/* Open file file_no (created if missing) at size off, after cutting it there. */
static int open_file(jsonl *j, uint32_t file_no, uint64_t off)
{
    char *path = path_of(j, "", file_no);
    if (!path)
        return j->host->fail(j->ctx, SL_ENOMEM, "jsonl-sink: out of memory");
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    int rc = 0;
    if (fd < 0 || fstat(fd, &st) != 0)
        rc = j->host->fail(j->ctx, SL_EIO, "jsonl-sink: cannot open %s: %s", path, strerror(errno));
    else if ((uint64_t)st.st_size < off)
        rc = j->host->fail(j->ctx, SL_EIO, "jsonl-sink: %s has %lld bytes, fewer than the %llu "
                           "of its checkpoint: the file was changed outside sluice", path,
                           (long long)st.st_size, (unsigned long long)off);
    else if (ftruncate(fd, (off_t)off) != 0 || lseek(fd, (off_t)off, SEEK_SET) < 0 ||
             fdatasync(fd) != 0)
        rc = j->host->fail(j->ctx, SL_EIO, "jsonl-sink: cannot cut %s back to its checkpoint: %s",
                           path, strerror(errno));
    else if ((uint64_t)st.st_size > off)
        j->host->log(j->ctx, SL_LOG_INFO, "jsonl-sink: %s cut from %lld to %llu bytes (lines "
                     "after the checkpoint are written again)", path, (long long)st.st_size,
                     (unsigned long long)off);
    free(path);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (j->fd >= 0)
        close(j->fd);
    j->fd = fd;
    j->file_no = file_no;
    j->off = off;
    return 0;
}

/* The highest file number of this subtask in the directory (0 if none). */
static uint32_t last_file_no(jsonl *j)
{
    const char *base = j->prefix + strlen(j->cfg->dir) + 1;
    size_t bl = strlen(base);
    uint32_t max = 0;
    DIR *d = opendir(j->cfg->dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        unsigned n;
        char tail[8];
        if (!strncmp(de->d_name, base, bl) && de->d_name[bl] == '.' &&
            sscanf(de->d_name + bl + 1, "%6u.jsonl%1s", &n, tail) == 1 && n > max)
            max = n;
    }
    if (d)
        closedir(d);
    return max;
}

static int js_start(void *self)
{
    jsonl *j = self;
    if (mkdir(j->cfg->dir, 0755) != 0 && errno != EEXIST)
        return j->host->fail(j->ctx, SL_EIO, "jsonl-sink: cannot create %s: %s", j->cfg->dir,
                             strerror(errno));
    if (j->dirfd >= 0)
        close(j->dirfd);
    if ((j->dirfd = open(j->cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return j->host->fail(j->ctx, SL_EIO, "jsonl-sink: cannot open %s: %s", j->cfg->dir,
                             strerror(errno));
    boundary b;
    int rc = read_ckpt(j, &b);
    if (rc == SL_ENOENT) {
        /* A first start: a new series after any file an earlier task of this name left, and a
         * checkpoint at its start at once, so that lines written before the first real one are
         * cut on a restart too. */
        memset(&b, 0, sizeof b);
        b.file_no = last_file_no(j) + 1;
        if ((rc = open_file(j, b.file_no, 0)) == 0)
            rc = put_ckpt(j, &b);
    } else if (rc == 0) {
        rc = open_file(j, b.file_no, b.offset);
        /* files after the checkpoint's were started after it: their lines come again */
        for (uint32_t n = b.file_no + 1; rc == 0; n++) {
            char *p = path_of(j, "", n);
            int gone = !p || unlink(p) != 0;
            free(p);
            if (gone)
                break;
        }
        if (rc == 0 && fsync(j->dirfd) != 0)
            rc = j->host->fail(j->ctx, SL_EIO, "jsonl-sink: fsync %s: %s", j->cfg->dir,
                               strerror(errno));
    }
    if (rc == 0) {
        boundary_copy(&j->ckpt, &b);
        boundary_copy(&j->last, &b);
        j->dirty = 0;
    }
    free(b.binlog_gtid);
    return rc;
}

/* Close the current file and start the next one, once everything in it is checkpointed. */
static int rotate(jsonl *j)
{
    int rc = open_file(j, j->file_no + 1, 0);
    if (rc < 0)
        return rc;
    j->last.file_no = j->file_no;
    j->last.offset = 0;
    j->host->metric_add(j->ctx, "files", 1);
    return put_ckpt(j, &j->last);
}

static int js_process(void *self, sl_batch *b)
{
    jsonl *j = self;
    if (j->fd < 0)
        return j->host->fail(j->ctx, SL_ESTATE, "jsonl-sink: process before start");
    sl_sbuf_reset(&j->buf);
    int64_t rows = 0;
    /* boundaries inside the batch, as offsets into buf: applied once buf is written */
    uint64_t bound_len = 0;
    const sl_event *bound_ev = NULL;
    for (uint32_t i = 0; i < b->n; i++) {
        const sl_event *e = &b->events[i];
        if (e->kind == SL_EV_COMMIT) {
            bound_len = j->buf.len;
            bound_ev = e;
            continue;
        }
        if (e->flags & SL_EVF_DROPPED)
            continue;
        int r = sl_jsonl_format(&j->buf, e);
        if (r < 0)
            return j->host->fail(j->ctx, r, "jsonl-sink: out of memory");
        rows += r == 1 && e->kind != SL_EV_DDL;
        if (e->kind == SL_EV_DDL) {   /* a DDL is a transaction of its own */
            bound_len = j->buf.len;
            bound_ev = e;
        }
    }
    if (j->buf.len && write_all(j->fd, j->buf.p, j->buf.len) != 0)
        return j->host->fail(j->ctx, SL_EIO, "jsonl-sink: writing file %06" PRIu32 ": %s",
                             j->file_no, strerror(errno));
    uint64_t start = j->off;
    j->off += j->buf.len;
    if (bound_ev) {
        boundary_set(&j->last, j->file_no, start + bound_len, &bound_ev->pos, bound_ev->seq);
        j->dirty = 1;
    }
    if ((b->flags & SL_BATCH_TXN_END) && b->ckpt.file) {
        boundary_set(&j->last, j->file_no, j->off, &b->ckpt, 0);
        j->dirty = 1;
    }
    if (rows)
        j->host->metric_add(j->ctx, "rows", rows);
    j->host->metric_add(j->ctx, "bytes", (int64_t)j->buf.len);

    int idle = !SL_HOST_HAS(j->host, input_pending) || j->host->input_pending(j->ctx) == 0;
    if (j->dirty && (idle || j->off - (j->ckpt.file_no == j->file_no ? j->ckpt.offset : 0) >=
                                 (uint64_t)j->cfg->sync_bytes)) {
        int rc = put_ckpt(j, &j->last);
        if (rc < 0)
            return rc;
        if (j->off >= (uint64_t)j->cfg->max_file_bytes && j->last.offset == j->off &&
            (rc = rotate(j)) < 0)
            return rc;
    }
    return 0;
}

static int js_flush(void *self)
{
    jsonl *j = self;
    return j->fd >= 0 && j->dirty ? put_ckpt(j, &j->last) : 0;
}

static void js_stop(void *self)
{
    jsonl *j = self;
    if (j->fd >= 0 && j->dirty)
        put_ckpt(j, &j->last);   /* a failure is recorded; the next start cuts back anyway */
    if (j->fd >= 0)
        close(j->fd);
    if (j->dirfd >= 0)
        close(j->dirfd);
    j->fd = j->dirfd = -1;
}

static void js_destroy(void *self)
{
    jsonl *j = self;
    if (j->fd >= 0 || j->dirfd >= 0)
        js_stop(j);
    free(j->last.binlog_gtid);
    free(j->ckpt.binlog_gtid);
    sl_sbuf_free(&j->buf);
    free(j->prefix);
    j->host->free(j);
}

static char *js_status(void *self)
{
    jsonl *j = self;
    char *path = j->fd >= 0 ? path_of(j, "", j->file_no) : NULL;
    json_t *o = json_pack("{s:s?, s:I, s:{s:I, s:I, s:s, s:I}}", "file", path, "offset",
                          (json_int_t)j->off, "checkpoint", "file_no", (json_int_t)j->ckpt.file_no,
                          "offset", (json_int_t)j->ckpt.offset, "binlog_name",
                          j->ckpt.binlog_name, "binlog_pos", (json_int_t)j->ckpt.binlog_pos);
    free(path);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = t ? j->host->alloc(strlen(t) + 1) : NULL;
    if (out)
        memcpy(out, t, strlen(t) + 1);
    free(t);
    return out;
}

/* ctl {"op":"checkpoint"}: the binlog position after the last checkpointed line (plugin.h). */
static int js_ctl(void *self, const char *request, char **reply)
{
    jsonl *j = self;
    *reply = NULL;
    json_t *rq = json_loads(request, 0, NULL);
    const char *op = json_string_value(json_object_get(rq, "op"));
    int is_ckpt = op && !strcmp(op, "checkpoint");
    json_decref(rq);
    if (!is_ckpt)
        return j->host->fail(j->ctx, SL_ENOTSUP, "jsonl-sink: unknown request %.100s", request);
    boundary b;
    int rc = read_ckpt(j, &b);
    if (rc == 0 && !b.binlog_name[0])
        rc = SL_ENOENT;   /* started, but no transaction reached it yet */
    if (rc == 0) {
        json_t *o = json_pack("{s:s, s:I, s:I}", "binlog_name", b.binlog_name, "binlog_pos",
                              (json_int_t)b.binlog_pos, "seq", (json_int_t)b.seq);
        if (o && b.binlog_gtid)
            json_object_set_new(o, "binlog_gtid", json_string(b.binlog_gtid));
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (t && (*reply = j->host->alloc(strlen(t) + 1)))
            memcpy(*reply, t, strlen(t) + 1);
        else
            rc = j->host->fail(j->ctx, SL_ENOMEM, "jsonl-sink: out of memory");
        free(t);
    }
    free(b.binlog_gtid);
    return rc;
}

/* Deleting the task forgets where it was (the checkpoint); the data files stay: they are the
 * output, and a new task of the same name starts a new series after them. */
static int js_cleanup(void *self, unsigned what)
{
    jsonl *j = self;
    if (!(what & SL_CLEANUP_META))
        return 0;
    char *path = path_of(j, ".checkpoint", 0);
    int rc = 0;
    if (!path)
        rc = j->host->fail(j->ctx, SL_ENOMEM, "jsonl-sink: out of memory");
    else if (unlink(path) != 0 && errno != ENOENT)
        rc = j->host->fail(j->ctx, SL_EIO, "jsonl-sink: cannot remove %s: %s", path,
                           strerror(errno));
    free(path);
    return rc;
}

static const sl_plugin_caps caps = {
    .struct_size = sizeof(sl_plugin_caps),
    .takes = SL_CAP_EV_ROWS | SL_CAP_EV(SL_EV_DDL) | SL_CAP_EV_TXN | SL_CAP_EV(SL_EV_HEARTBEAT),
    .order = SL_CAP_ORDER_NEEDS,
    .delivery = SL_CAP_EXACTLY_ONCE,
};

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "jsonl-sink",
    .kind = SL_PLUGIN_SINK,
    .description = "the change stream as JSON lines in rotating files, exactly once up to the "
                   "last checkpoint",
    .options = options,
    .config_size = sizeof(config),
    .create = js_create,
    .start = js_start,
    .process = js_process,
    .flush = js_flush,
    .stop = js_stop,
    .destroy = js_destroy,
    .status = js_status,
    .cleanup = js_cleanup,
    .caps = &caps,
    .ctl = js_ctl,
};
