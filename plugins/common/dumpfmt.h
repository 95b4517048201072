/*
 * dumpfmt.h - what the mysql-dump and loader plugins agree on: the chunk file format (LOAD DATA's
 * default text format read with CHARACTER SET binary), the dump directory layout, the snapshot
 * file, and the DDL of the checkpoint tables in the target's meta schema.
 */
#ifndef SLUICE_DUMPFMT_H
#define SLUICE_DUMPFMT_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/err.h>
#include "myconn.h"

/*
 * Chunk files: one row per line, fields separated by TAB, lines ended by LF, NULL written as \N,
 * and inside a field the bytes NUL, TAB, LF and backslash written as \0 \t \n \\. Every other byte
 * is kept as is, so binary, BIT and GEOMETRY payloads and strings in any charset round-trip when
 * the file is read with `LOAD DATA ... CHARACTER SET binary FIELDS TERMINATED BY '\t'
 * ESCAPED BY '\\' LINES TERMINATED BY '\n'` (MariaDB KB "LOAD DATA INFILE", escape sequences).
 */
typedef struct sl_tsv_writer {
    int      fd;
    char    *buf;
    size_t   len, cap;
    uint64_t bytes;      /* bytes written so far (file size once committed) */
    uint64_t rows;
    int      err;        /* sticky errno of the first failed write */
    int      first;      /* next field is the first of its row */
    int      no_sync;    /* set by the caller after open: commit neither fsyncs the file nor its
                          * directory; the caller makes the whole directory durable once with
                          * sl_sync_dir before anything relies on the files surviving a crash
                          * of the machine (two fsyncs per file cost more than the dump of a
                          * small table: 2,000 tables, issue 12) */
    /* a stream (sl_tsv_open_stream): fd is a pipe's write end, rfd its read end */
    int      stream;
    int      rfd;
    int    (*stop)(void *arg);   /* nonzero: give up a write that waits on a full pipe */
    void    *stop_arg;
} sl_tsv_writer;

/* Create tmp_path (truncating it) with an output buffer of bufsize bytes. Returns 0 or SL_EIO /
 * SL_ENOMEM with err filled. Not thread-safe (one writer per thread). */
int  sl_tsv_open(sl_tsv_writer *w, const char *tmp_path, size_t bufsize, sl_error *err);
/* Append one field; s == NULL writes NULL (\N). */
void sl_tsv_field(sl_tsv_writer *w, const char *s, size_t len);
/* End the current row. */
void sl_tsv_end_row(sl_tsv_writer *w);
/* Append bytes as they are (no escaping, no row count): other files written through the same
 * buffered, atomically committed writer (the dump's manifest). */
void sl_tsv_raw(sl_tsv_writer *w, const char *s, size_t len);
/* Flush, fsync, close and rename tmp_path to final_path, then fsync the directory, so a file
 * under its final name is always complete. Returns 0 or SL_EIO with err filled. */
int  sl_tsv_commit(sl_tsv_writer *w, const char *tmp_path, const char *final_path, sl_error *err);
/* Make every file written under dir durable (syncfs of its file system, then fsync of dir), for
 * writers committed with no_sync. Returns 0 or SL_EIO with err filled. */
int  sl_sync_dir(const char *dir, sl_error *err);
/* Close and remove tmp_path (on failure or cancellation). */
void sl_tsv_abort(sl_tsv_writer *w, const char *tmp_path);

/*
 * Streams (full_migrate_conf.stream): a chunk goes to the loader through a pipe of this process
 * instead of a file. The chunk's path names the pipe: "<dir>/<file>#stream:<fd>:<inode>" (the
 * loader opens /proc/self/fd/<fd> and checks the inode, so a descriptor number reused by another
 * file is never read). The bytes are framed: [u32 n][n bytes of the chunk]... and an end frame
 * [u32 0][u64 rows]; a reader that meets the end of the pipe before the end frame reports an
 * error, so a dump that failed in the middle of a chunk can never load as a shorter chunk.
 *
 * sl_tsv_open_stream makes the pipe and fills path (size n) with dir/file and the stream tag.
 * Writes that find the pipe full wait for the reader, asking stop(stop_arg) every 200 ms.
 * sl_tsv_stream_end writes the end frame and waits until the reader has taken every byte (so it
 * had the pipe open) before closing both ends; sl_tsv_stream_abort closes them at once. Both
 * return 0 or SL_EIO / SL_ESTOPPED with err filled.
 */
#define SL_STREAM_TAG "#stream:"
int  sl_tsv_open_stream(sl_tsv_writer *w, size_t bufsize, const char *dir, const char *file,
                        char *path, size_t n, int (*stop)(void *), void *stop_arg, sl_error *err);
int  sl_tsv_stream_end(sl_tsv_writer *w, sl_error *err);
void sl_tsv_stream_abort(sl_tsv_writer *w);

/* The reading side. sl_stream_open: 1 and r ready if path is a stream, 0 if it is a plain file
 * (r untouched), -1 with r->err set if it names a stream that is gone. sl_stream_read: bytes of
 * the chunk (> 0), 0 at the end frame (r->rows set), -1 with r->err set (EPIPE: the writer went
 * away before the end frame). */
typedef struct sl_stream_reader {
    int      fd;
    uint32_t left;          /* bytes of the current frame still to read */
    int      done;
    uint64_t rows;
    int      err;
} sl_stream_reader;
int  sl_stream_open(sl_stream_reader *r, const char *path);
long sl_stream_read(sl_stream_reader *r, char *buf, size_t len);
void sl_stream_close(sl_stream_reader *r);
/* 1 if a chunk path names a stream. */
int  sl_stream_path(const char *path);

/* Escape one field into out (room for 2*len bytes); returns the bytes written. Pure. */
size_t sl_tsv_escape(char *out, const char *s, size_t len);

/*
 * Parse one line (without its LF) of a chunk file into fields, unescaping in place. Fields are
 * returned as (pointer, length) pairs, NULL pointer for \N. Returns the number of fields (at most
 * max) or SL_EPARSE (more than max fields, or a backslash that ends the line). Used by the
 * loader's bulk path, lua-hook's chunk reader and tests. Pure.
 */
int  sl_tsv_split(char *line, size_t len, const char **fields, size_t *lens, size_t max);

/* ---- the dump directory ------------------------------------------------------------------ */

/* data_dir/<task>/<source>, with '/' and a leading '.' in names replaced by '_'. Returns 0 or
 * SL_ELIMIT if it does not fit. */
int  sl_dump_dir(char *buf, size_t size, const char *data_dir, const char *task, const char *source);
/* mkdir -p with mode 0750. Returns 0 or SL_EIO with err filled. */
int  sl_mkdir_p(const char *path, sl_error *err);

/* Write a file atomically (tmp file, fsync, rename, fsync dir). Returns 0 or SL_EIO. */
int  sl_write_file_atomic(const char *path, const char *data, size_t len, sl_error *err);
/* Read a whole (small) file; caller frees *out with free(). SL_ENOENT if absent, SL_EIO. */
int  sl_read_file(const char *path, char **out, size_t *len, sl_error *err);

/*
 * The snapshot a dump was taken at: written by mysql-dump to <dump dir>/snapshot before it emits
 * any event, read by the loader to label its checkpoint rows.
 */
typedef struct sl_snapshot_info {
    char     id[64];         /* unique per dump: "<unix time hex>-<random hex>" */
    char     file[256];      /* binlog file, "" when the source has no binlog */
    uint64_t pos;
    char    *gtid;           /* malloc'd GTID set text ("" if none) */
} sl_snapshot_info;

/* Make a new random id into s->id. */
void sl_snapshot_new_id(sl_snapshot_info *s);
int  sl_snapshot_write(const char *dir, const sl_snapshot_info *s, sl_error *err);
/* SL_ENOENT when there is no snapshot file. Caller frees with sl_snapshot_clear. */
int  sl_snapshot_read(const char *dir, sl_snapshot_info *s, sl_error *err);
void sl_snapshot_clear(sl_snapshot_info *s);

/*
 * The total bytes of the chunk files of a finished dump, from <dir>/manifest.json (written by
 * mysql-dump; "complete" once every chunk is on disk). Returns 0 and *bytes, SL_ENOENT when there
 * is no complete manifest, SL_EIO/SL_EPARSE. Reads the file: callers poll it sparingly.
 */
int  sl_dump_manifest_total(const char *dir, uint64_t *bytes);

/* ---- checkpoint tables (PLUGINS.md) ------------------------------------------------------ */

/* Append `CREATE DATABASE IF NOT EXISTS <meta>` / the CREATE TABLE IF NOT EXISTS statement of
 * `<meta>`.`<task>_loader_checkpoint` (the syncer checkpoint's is in ckpt.h). */
void sl_ckpt_schema_sql(sl_sbuf *b, const char *meta);
void sl_ckpt_loader_table_sql(sl_sbuf *b, const char *meta, const char *task);
/* `<meta>`.`<task>_loader_checkpoint` (or _syncer_checkpoint when syncer is 1). */
void sl_ckpt_table_name(sl_sbuf *b, const char *meta, const char *task, int syncer);

/*
 * `<meta>`.`<task>_loader_tables`: which source of the task loads into which target table (one
 * row per source and target table, written by the loader before it loads the table's first
 * chunk and never removed), and whether the table already held rows that no source of the task
 * had loaded when this source claimed it (foreign_rows). A source whose dump must be redone from
 * a new snapshot empties a target table only when it is the table's sole claimant and the table
 * held no foreign rows; otherwise it stops and tells the operator (a shard merge across sources
 * must not lose the other sources' rows).
 */
void sl_ckpt_loader_tables_name(sl_sbuf *b, const char *meta, const char *task);
void sl_ckpt_loader_tables_sql(sl_sbuf *b, const char *meta, const char *task);

#endif
