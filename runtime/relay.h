/*
 * relay.h - the relay log of one source: a single replication connection to the source whose
 * binlog is written to a local directory as real binlog files (byte for byte the source's own,
 * named as on the source), an index and a small metadata file, crash-safe, for the source's
 * tasks to read instead of the source.
 *
 * Layout of relay_dir: the files themselves (e.g. mysql-bin.000007), relay.index (their names,
 * one a line, oldest first), relay.meta (JSON: the last position made durable and the GTID set
 * there), LOCK (one writer per directory) and, while the relay is stopped by an error,
 * relay.error (its message): the sign for readers that the relay will not grow, so they read
 * the source instead (binlog-reader's local.c). A relay whose continue point the source has
 * purged (the relay was stopped, or away on another worker, while the source purged) is stale:
 * it can never be filled in. Its files, relay.index and relay.meta go to stale/ (the one older
 * set-aside there is removed) and it starts again; relay.restart names the file it started
 * again in, before which readers ask the source (which still has the position, or says errno
 * 1236).
 *
 * Crash safety: events are appended as the source sends them; the file is fdatasync'ed before
 * relay.meta names a position in it, and a new file is named in relay.index before it exists.
 * Opening a relay directory scans its last file, checks every event (length, position, CRC32)
 * and truncates the tail back to the end of the last whole transaction, so a kill -9 at any
 * moment resumes with no gap (dumping again from that offset) and no duplicate (the torn part
 * is gone). The files mirror the source's offsets exactly, so "resume from (file, offset)" is
 * the same position on both sides and every event's end_log_pos is checked against the file.
 */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <stdint.h>
#include <sluice/err.h>
#include "myconn.h"

typedef struct sl_relay sl_relay;

typedef struct sl_relay_opts {
    const char    *dir;          /* relay_dir; created when missing */
    sl_myconn_opts source;       /* user needs REPLICATION SLAVE (and CLIENT for status) */
    uint32_t       server_id;    /* replica server id of the one dump connection */
    const char    *start_file;   /* a new relay starts at this file's beginning, which the source
                                    must still have; a stale one starts again there if the
                                    source has it, else at the source's oldest file */
    const char    *start_gtid;   /* without start_file: at the beginning of the source's file
                                    that holds the transactions after this GTID set (the newest
                                    whose GTID_LIST it covers); neither: the source's current
                                    file */
    int64_t        sync_ms;      /* fdatasync and relay.meta at most this often (0: 1000) */
    size_t         buf_bytes;    /* write buffer (0: 1 MiB); an event larger is written alone */
    int64_t        heartbeat_ms; /* asked of the source (0: 1000) */
    /* Automatic purge (the source's DM "purge" settings), checked every purge_interval_s
     * (0: never) while the relay is idle: the oldest files go while they are older than
     * purge_expires_h hours (0: no age limit) or while the relay's disk has less than
     * purge_remain_gb GB free (0: no space limit), never the file being written and never a
     * file from the one purge_needed names on: it fills the oldest file a reader still needs
     * and returns 1, returns 0 when no reader needs any, or -1 when it cannot tell now (nothing
     * is purged then). Called on the relay's thread; it must not wait for the caller of
     * sl_relay_unit_free. */
    int64_t        purge_interval_s, purge_expires_h, purge_remain_gb;
    int          (*purge_needed)(void *ud, char *file, size_t cap);
    void          *purge_ud;
} sl_relay_opts;

/* What status shows; filled by sl_relay_status. */
typedef struct sl_relay_status {
    char     relay_file[256];    /* the file being written and its length up to the last whole
                                    transaction */
    uint64_t relay_pos;
    char     relay_gtid[1024];   /* GTID set at that position */
    char     master_file[256];   /* what the source has (SHOW MASTER STATUS every 2 s, and
                                    its heartbeats) */
    uint64_t master_pos;
    char     master_gtid[1024];  /* its gtid_binlog_pos */
    uint64_t bytes_written;      /* since sl_relay_new */
    uint64_t truncated_bytes;    /* cut from a torn tail when the directory was opened */
    int      running;
    char     error_msg[SL_ERRMSG_MAX];
} sl_relay_status;

/*
 * Open (or create) the relay directory o->dir: take its lock, read the index, recover the last
 * file (torn tail truncated, see above) and settle where dumping resumes. Connects to nothing.
 * 0 with *out (free with sl_relay_free), or a negative SL_E* with err: SL_EIO for the directory
 * (not creatable, not writable, locked by another writer: the message names the path),
 * SL_EINVAL for a relay file that is not a binlog (written to relay.error too). A stale
 * relay.error is removed. o's strings are copied.
 */
int  sl_relay_new(const sl_relay_opts *o, sl_relay **out, sl_error *err);

/*
 * Run the relay until sl_relay_stop: dump the source from the resume position and append. Each
 * connection first asks the source (SHOW BINARY LOGS) whether it still has the file the relay
 * goes on in; when it does not, the files are set aside in stale/ and the relay starts again
 * (see the top of this file), saying so on stderr. A lost source is retried with backoff;
 * returns SL_ESTOPPED after a stop, or a negative code with err for what retrying cannot mend
 * (a new relay's start_file or start_gtid not on the source (SL_ENOENT), errno 1236; a gap in
 * what it sends; the disk), which is also written to relay.error. Call from one thread.
 */
int  sl_relay_run(sl_relay *r, sl_error *err);

/* Ask sl_relay_run to return (within about heartbeat_ms). Thread-safe, async-signal-safe. */
void sl_relay_stop(sl_relay *r);

/* Copy the relay's state into st. Thread-safe. */
void sl_relay_status_get(sl_relay *r, sl_relay_status *st);

/*
 * Delete the relay files before `before` (which the relay must hold: SL_ENOENT otherwise) from
 * the index, then from the disk. keep_from is the oldest file some reader still needs (NULL or
 * "" = none): a `before` after it is refused with SL_ESTATE and nothing is deleted. The file
 * being written is never before a file the relay holds, so it stays. Thread-safe (with the
 * writer's rotations).
 */
int  sl_relay_purge(sl_relay *r, const char *before, const char *keep_from, sl_error *err);

/* Flush what is buffered, make it durable, release the lock and free r. NULL is a no-op. */
void sl_relay_free(sl_relay *r);

/* ---- the relay of a source in the server (relay_unit.c) ----------------------------------- */

#include <jansson.h>
#include "sluice/runtime.h"

typedef struct sl_relay_unit sl_relay_unit;

/* Open the relay o names (sl_relay_new: its errors come back here, with nothing left running)
 * and run it on a thread of s. Caller frees with sl_relay_unit_free. Thread-safe. */
int  sl_relay_unit_start(sl_scheduler *s, const sl_relay_opts *o, sl_relay_unit **out,
                         sl_error *err);
/* Stop the relay (within about its heartbeat), join its thread, free. NULL is a no-op. */
void sl_relay_unit_free(sl_relay_unit *u);
/* DM's relay_status (master_binlog, master_binlog_gtid, relay_dir, relay_binlog_gtid,
 * relay_catch_up_master, stage, error_msg when it failed) plus relay_binlog, bytes_written and
 * truncated_bytes; relay_dir_shown is the relay_dir as the user gave it (NULL: the path). Caller
 * decrefs. Thread-safe. */
json_t *sl_relay_unit_status(sl_relay_unit *u, const char *relay_dir_shown);
/* sl_relay_purge on the running relay. Thread-safe. */
int  sl_relay_unit_purge(sl_relay_unit *u, const char *before, const char *keep_from,
                         sl_error *err);

#endif
