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
#include "myconn.h"

/* One source table of a target table (several = shard merge: the union is compared). */
typedef struct sl_verify_src {
    const sl_myconn_opts *conn;   /* borrowed, lives as long as the run */
    char *schema, *table;
} sl_verify_src;

typedef struct sl_verify_table {
    char          *tschema, *ttable;
    size_t         nsrc;
    sl_verify_src *src;
    char          *excluded;      /* non-NULL: not compared, and this is why (shown in the report) */
} sl_verify_table;

typedef struct sl_verify_opts {
    const sl_myconn_opts *target;
    size_t   chunk_rows;          /* rows per checksummed chunk (0 = 1000); bounds memory */
    double   chunks_per_second;   /* per run, 0 = unthrottled (spares a production source) */
    unsigned retries;             /* a differing chunk is checksummed again up to this many times,
                                     retry_ms apart, before it is read row by row: changes that
                                     were in flight (replication lag) settle instead of being
                                     reported */
    unsigned retry_ms;
    FILE    *report;              /* differing rows and the summary, one line each */
    FILE    *repair;              /* may be NULL: SQL that would make the target equal */
} sl_verify_opts;

/* Totals of a run. */
typedef struct sl_verify_stats {
    unsigned long long rows, chunks, chunks_differing, missing, extra, different, tables,
                       excluded;
} sl_verify_stats;

/* A run shared by its worker threads: a queue of tables and the totals. */
typedef struct sl_verify {
    sl_verify_opts    o;
    sl_verify_table  *tables;
    size_t            ntables, next;
    pthread_mutex_t   mu;            /* guards next, stats, error and both output files */
    sl_verify_stats   stats;
    int               rc;            /* first error (negative SL_E*), 0 */
    sl_error          err;
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

/* Send one query whose result the caller reads (sl_myconn_exec drains results). Returns 0, or
 * SL_EDB / SL_ECONN with err naming the statement's first 200 bytes. */
int  sl_verify_query(MYSQL *db, const char *sql, size_t len, sl_error *err);

#endif
