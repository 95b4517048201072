/*
 * dump.h - (mysql-dump private) the state of one dump: its options, the tables it selected with
 * their columns and chunk plan, the snapshot, and the worker pool; shared by dump.c (control
 * flow, consistency, emitting), dump_plan.c (discovery and chunking) and dump_manifest.c.
 */
#ifndef SLUICE_MYSQL_DUMP_H
#define SLUICE_MYSQL_DUMP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sluice/plugin.h>
#include <sluice/match.h>
#include "myconn.h"
#include "dumpfmt.h"

enum { CONS_AUTO = 0, CONS_NONE, CONS_FLUSH, CONS_SNAPSHOT, CONS_LOCK };
enum { MODE_FULL = 0, MODE_DUMP, MODE_LOAD };

typedef struct dump_cfg {
    SL_MYCONN_FIELDS(source);
    SL_MYCONN_FIELDS(target);
    char   *task_name, *source_name, *meta_schema;
    char   *rules;
    int64_t export_threads;
    int     consistency;
    char   *data_dir;
    int64_t chunk_rows;
    int64_t chunk_bytes;
    int     mode;
    int     online_ddl;      /* leave online schema change tools' tables out (oscname.h) */
    int     seed_tracker;    /* write the snapshot's structures as schema tracker versions */
    int     stream;          /* chunks go to the loader through pipes, not files (dumpfmt.h) */
} dump_cfg;

/* A dumped column (generated columns are never dumped: the target computes them). */
typedef struct dcol {
    char   *name;
    char   *data_type;      /* information_schema DATA_TYPE, lower case ("float", "bit", ...) */
    char   *type_text;      /* COLUMN_TYPE ("int(10) unsigned") */
    uint8_t mysql_type;     /* MYSQL_TYPE_* */
    uint8_t flags;          /* SL_COL_* */
    char   *charset;        /* CHARACTER_SET_NAME ("utf8mb4"), NULL for non-character types */
    uint16_t collation;     /* sl_column.charset: the collation id of a character column, 63
                             * (binary) for binary strings and GEOMETRY, 0 for other types */
} dcol;

/* A collation name and its id (the source's information_schema), sorted by name. */
typedef struct dcoll {
    char    *name;
    uint16_t id;
} dcoll;

typedef struct dtable {
    char    *schema, *name;
    char    *create_sql;    /* CREATE TABLE IF NOT EXISTS ... as the source shows it */
    int      nodata;        /* the rule ignores its DML: schema only */
    size_t   ncols;
    dcol    *cols;
    size_t   npk;
    uint32_t pk[16];        /* indexes into cols of the chosen key */
    int      chunk_col;     /* index into cols of the integer column chunks split on, or -1 */
    int      chunk_unsigned;
    size_t   nwalk;         /* > 0: chunks split on the first nwalk key columns by walking the
                             * key in order (non-integer or composite keys, see dump_plan.c) */
    int      key_read;      /* describe_schema saw its unique keys */
    uint64_t est_rows;
    uint64_t avg_row;       /* information_schema AVG_ROW_LENGTH (0 if unknown) */
    size_t   first_chunk, nchunks;
    int      serial;        /* an AUTO_INCREMENT column: as the last table, dumped one chunk
                             * at a time (sl__dump_take_chunk) */
    size_t   dumping;       /* under dump.mu: chunks being dumped now */
    size_t   chunks_done;   /* under dump.mu */
    size_t   chunks_emitted; /* emitting thread only */
    sl_table *meta;         /* built when first emitted (emitting thread only) */
} dtable;

typedef struct dchunk {
    size_t   table;
    size_t   n;             /* index within its table */
    int      has_lo, has_hi;
    __int128 lo, hi;        /* key range [lo, hi) */
    char    *where;         /* walked chunks: the WHERE condition of the range (malloc'd), else NULL */
    char     id[600];       /* "<schema>.<table>.<n>", unique within the task and source */
    char     file[64];      /* file name in the dump dir */
    char     stag[48];      /* stream mode: the pipe's tag (SL_STREAM_TAG...) once it is open */
    uint64_t rows, bytes;
} dchunk;

typedef struct dump {
    const sl_host  *host;
    sl_ctx         *ctx;
    const dump_cfg *cfg;
    sl_rules       *rules;
    char            dir[4096];
    sl_snapshot_info snap;
    int             have_snap;
    uint64_t        seq;

    char          **schemas;      /* selected schemas, in order */
    char          **schema_sql;   /* CREATE DATABASE IF NOT EXISTS ... */
    size_t          nschemas;
    dtable         *tables;
    size_t          ntables;
    dchunk         *chunks;
    size_t          nchunks;
    dcoll          *colls;        /* read once per plan, when the first character column needs it */
    size_t          ncolls;
    int             colls_read;

    /* workers */
    MYSQL          *main;
    MYSQL         **wconn;
    size_t          nworkers;
    void          **threads;
    size_t          nthreads;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    size_t          next_job;
    size_t         *done_ring;    /* indexes of chunks finished and not yet emitted */
    size_t          done_head, done_tail;
    size_t          nrunning;
    atomic_int      quit;
    int             werr;
    sl_error        werr_msg;
    int             locked;       /* main holds FTWRL/LOCK TABLES/BACKUP STAGE */

    /* status */
    atomic_uint_fast64_t finished_bytes, finished_rows, completed_tables;
    uint64_t        est_total_rows;
    size_t          total_tables;
    /* selected objects the dump does not copy (views, triggers, routines, events): a JSON array
     * of their names (at most NOT_COPIED_MAX) and their count; set once under mu */
    char           *not_copied;
    size_t          n_not_copied;
} dump;

#define NOT_COPIED_MAX 100

/* dump_plan.c: name, in d->not_copied and the log, the views, triggers, routines and events of
 * the selected schemas and tables, which a dump does not copy. Returns 0 or a negative code
 * after host->fail. */
int  sl__dump_not_copied(dump *d);

/* dump_plan.c: list the tables the rules select, their columns, keys and CREATE statements, and
 * split each into chunks. Uses d->main. Returns 0 or a negative code after host->fail. */
int  sl__dump_discover(dump *d);
int  sl__dump_plan_chunks(dump *d);
/* After the snapshot is taken: read every table's CREATE again and fail (transient, errno 1412)
 * when one differs from what discovery read, so rows of one structure are never loaded into a
 * table of another (a DDL between discovery and the snapshot). A DDL after this is in the binlog
 * after the snapshot position and is replayed; the chunks name their columns. */
int  sl__dump_recheck(dump *d);
/* The collation id of a COLUMNS.COLLATION_NAME (0 if the source does not know it). Uses d->main
 * (reads the source's collations once per plan). Returns 0 or a negative code after host->fail. */
int  sl__dump_collation_id(dump *d, const char *name, uint16_t *id);
/* 1 for the DATA_TYPEs whose values are bytes without a charset (BINARY, VARBINARY, the BLOBs,
 * the spatial types): their sl_column.charset is 63, as the binlog gives them. */
int  sl__dump_binary_type(const char *data_type);
/* Free the tables, schemas, chunks and the collation table. */
void sl__dump_free_plan(dump *d);
/* Format a 128-bit integer in decimal into buf (>= 48 bytes). */
void sl__i128_str(__int128 v, char *buf);

/* dump_manifest.c: write <dir>/manifest.json (complete or not) / read a complete one back into
 * d's tables and chunks. read returns SL_ENOENT if there is none or it is incomplete. */
int  sl__dump_manifest_write(dump *d, int complete);
int  sl__dump_manifest_read(dump *d);

/* Run one statement on the source, logging and failing the instance on error. */
int  sl__dump_exec(dump *d, MYSQL *db, const char *sql);

/*
 * The next chunk for a dump worker, under d->mu: the plan's order, table by table. Returns 1 with
 * *ci set (the caller decrements its table's dumping when it is dumped), 0 when every chunk is
 * taken, -1 when the worker is to wait: the chunks left are all of one table with an
 * AUTO_INCREMENT column, and another worker is dumping one of them.
 *
 * Why: the target takes inserts into such a table one at a time (InnoDB holds its AUTO-INC lock
 * for a whole LOAD DATA, and for every row it inserts it updates the counter in the clustered
 * index's root page under the page's latch), so the loader gives it one connection (take_job in
 * the loader): more would wait on each other. Once it is the last table to dump, more workers
 * on it only run ahead of that connection, and where source, target and sluice share a machine
 * they take CPU from the one connection that paces the rest of the copy. One table of 4,000,000
 * rows, two cores: 11-15% of the rows were in when the four-worker dump ended (3.7-4.7 s), and
 * 24-33% with one chunk at a time (4.6-6.2 s); the copy took 18.8 s (median of 13) against
 * 19.8 s. While other tables are left, a waiting worker would idle, and a worker moving on to
 * the next table loads tables side by side sooner: with 8 tables of 500,000 rows, their ends
 * came together and the copy took 0.4 s longer (medians of seven). So the rule holds for the
 * last table only.
 */
static inline int sl__dump_take_chunk(dump *d, size_t *ci)
{
    if (d->next_job >= d->nchunks)
        return 0;
    dtable *t = &d->tables[d->chunks[d->next_job].table];
    if (t->serial && t->dumping && t->first_chunk + t->nchunks == d->nchunks)
        return -1;                  /* its chunks are the plan's last: no table follows */
    *ci = d->next_job++;
    t->dumping++;
    return 1;
}

#endif
