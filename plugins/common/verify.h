/*
 * verify.h - compare a routed table on the target with the union of its source tables: chunks
 * by key range checksummed on each server (only the checksums cross the network), a differing
 * chunk re-read row by row, each differing row reported by key and kind, repair SQL written on
 * request and never applied. Used by `sluice verify`; written to be usable by the server too.
 */
#ifndef SLUICE_VERIFY_H
#define SLUICE_VERIFY_H

#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include "myconn.h"

/* One source table of a target table (several = shard merge: the union is compared). */
typedef struct sl_verify_src {
    const sl_myconn_opts *conn;   /* borrowed, lives as long as the run */
    char *schema, *table;
} sl_verify_src;

/* Totals of a run, or of one table. */
typedef struct sl_verify_stats {
    unsigned long long rows, chunks, chunks_differing, missing, extra, different, tables,
                       excluded;
} sl_verify_stats;

/* Where a table is in a run (read under sl_verify.mu). */
typedef enum sl_verify_state {
    SL_VERIFY_PENDING = 0, SL_VERIFY_RUNNING, SL_VERIFY_DONE, SL_VERIFY_EXCLUDED, SL_VERIFY_FAILED
} sl_verify_state;

typedef struct sl_verify_table {
    char          *tschema, *ttable;
    size_t         nsrc;
    sl_verify_src *src;
    char          *excluded;      /* non-NULL: not compared, and this is why (shown in the report) */
    /* filled by the run, under sl_verify.mu: */
    sl_verify_state state;
    sl_verify_stats st;           /* this table's counts (tables/excluded unused) */
} sl_verify_table;

/* A differing row as it is reported: kind "missing", "extra" or "different"; key is the
 * `col`=literal list of its key; columns (different only, else NULL) the differing column
 * names joined by ','. Called under sl_verify.mu, so it must not call back into the run. */
typedef void (*sl_verify_diff_fn)(void *arg, const sl_verify_table *vt, const char *kind,
                                  const char *key, const char *columns);

typedef struct sl_verify_opts {
    const sl_myconn_opts *target;
    size_t   chunk_rows;          /* rows per checksummed chunk (0 = 1000); bounds memory */
    double   chunks_per_second;   /* per run, 0 = unthrottled (spares a production source) */
    unsigned retries;             /* a differing chunk is checksummed again up to this many times,
                                     retry_ms apart, before it is read row by row: changes that
                                     were in flight (replication lag) settle instead of being
                                     reported */
    unsigned retry_ms;
    size_t   row_cap;             /* 0, or at most this many rows held per side of a differing
                                     chunk: more source rows within one chunk's key range (a
                                     target missing most of a range) fail the table with SL_ELIMIT
                                     rather than growing memory with the data */
    int      backoff;             /* 1: the delay doubles after each re-check (at most 30 s) */
    FILE    *report;              /* may be NULL: differing rows and exclusions, one line each */
    sl_verify_diff_fn on_diff;    /* may be NULL: each reported row, as it is reported */
    void    *diff_arg;
    /* May be NULL. Before each re-check of a differing chunk, called for each source table's
     * connection (src is the sl_verify_src's conn, sdb its open connection, no result pending):
     * wait until the target has what that source had written when called (the task's
     * replication checkpoint passed the source's current position). Returns 0 when it did, a
     * negative SL_E* when it cannot tell (not replicating, timed out): then the re-check waits
     * its timed delay instead. Called without the run's lock. */
    int    (*wait_applied)(void *arg, const sl_myconn_opts *src, MYSQL *sdb);
    void    *wait_arg;
    FILE    *repair;              /* may be NULL: SQL that would make the target equal */
} sl_verify_opts;

/* A run shared by its worker threads: a queue of tables and the totals. */
typedef struct sl_verify {
    sl_verify_opts    o;
    sl_verify_table  *tables;
    size_t            ntables, next;
    pthread_mutex_t   mu;            /* guards next, stats, error and both output files */
    sl_verify_stats   stats;
    int               rc;            /* first error (negative SL_E*), 0 */
    sl_error          err;
    atomic_int        cancel;        /* set by sl_verify_cancel: workers stop at the next chunk */
} sl_verify;

/* Prepare a run over tables (borrowed; not copied). Returns 0 or SL_ENOMEM. */
int  sl_verify_init(sl_verify *v, const sl_verify_opts *o, sl_verify_table *tables, size_t n);
void sl_verify_destroy(sl_verify *v);

/*
 * The body of one worker thread: takes tables from the queue until none is left and compares
 * each. Run it on as many threads as the run should use (the caller creates them: the CLI with
 * threads of its own, the server through its scheduler). Returns 0, or the first error of the
 * run (also kept in v->rc / v->err). Thread-safe.
 */
int  sl_verify_work(sl_verify *v);

/* Ask the workers of a run to stop at their next chunk (the run ends with SL_ESTOPPED).
 * Thread-safe. */
void sl_verify_cancel(sl_verify *v);

/* Send one query whose result the caller reads (sl_myconn_exec drains results). Returns 0, or
 * SL_EDB / SL_ECONN with err naming the statement's first 200 bytes. */
int  sl_verify_query(MYSQL *db, const char *sql, size_t len, sl_error *err);

/* ---- a task's tables (verify_task.c) ---------------------------------------------------- */

/* What a verification of a task compares: its sources (connections and compiled rules) and the
 * tables, grouped by target table. */
typedef struct sl_verify_task {
    struct sl_verify_tsrc *src;
    size_t                 nsrc, cap;
    sl_myconn_opts         target;      /* strings owned by the last source's options */
    sl_verify_table       *tables;
    size_t                 ntables, tcap;
} sl_verify_task;

/* Room for nsources sources. Returns 0 or SL_ENOMEM; free with sl_verify_task_free (also after
 * a failure). */
int  sl_verify_task_init(sl_verify_task *t, size_t nsources);
/* One source: stage_opts is the options JSON of its first compiled stage (rules, source_* and
 * target_* connection fields), lua_opts those of its lua-hook stage or NULL. Both are copied.
 * Returns 0, SL_EPARSE or the rules' error, with err saying which source. */
int  sl_verify_task_add_source(sl_verify_task *t, const char *name, const char *stage_opts,
                               const char *lua_opts, sl_error *err);
/* Connect to each source and list the base tables its rules select (names only). Returns 0,
 * SL_ECONN / SL_EDB / SL_ENOMEM with err. */
int  sl_verify_task_collect(sl_verify_task *t, sl_error *err);
/* The index (in the order sources were added) of the source whose connection options are conn,
 * or -1. */
int  sl_verify_task_source(const sl_verify_task *t, const sl_myconn_opts *conn);
/* The name of source i (in the order sources were added), "" when there is none. */
const char *sl_verify_task_source_name(const sl_verify_task *t, size_t i);
void sl_verify_task_free(sl_verify_task *t);

#endif
