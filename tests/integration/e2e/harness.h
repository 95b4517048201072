/*
 * harness.h - helpers of the end-to-end tests: a real sluice-server started as a child process
 * (its REST API called over HTTP/1.0), the sandbox source and target through libmariadb,
 * background writers that keep committing transactions (and reconnect when the source goes
 * away), waiting for the task's checkpoint to reach the source's position, and comparing the
 * two sides by CHECKSUM TABLE and row by row.
 *
 * Every failure prints a message and exits 1 (the test is a process; ctest sees the status).
 */
#ifndef SLUICE_TEST_E2E_HARNESS_H
#define SLUICE_TEST_E2E_HARNESS_H

#include <jansson.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* Print "FAIL: ..." with the server log's tail (if a server was started) and exit(1). */
/* Run hook (once) when a check fails, before the process exits with _exit (which skips
 * atexit): for a test that changed a shared server's global setting. */
void e2e_on_fail(void (*hook)(void));
void e2e_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define E2E_CHECK(c, ...) do { if (!(c)) e2e_fail(__VA_ARGS__); } while (0)

/* getenv, failing when the variable is missing or empty. */
const char *e2e_env(const char *name);

/* A scratch directory for this run (server data dirs, dump files, logs), removed by
 * e2e_finish when every check passed. */
const char *e2e_workdir(void);

/* ---- databases ---------------------------------------------------------------------------- */

/* who: "SOURCE" or "TARGET" (SLUICE_<who>_*). Exits on failure. */
MYSQL *e2e_connect(const char *who);
/* Run statements (multi-statements allowed), exit on an error. */
void e2e_sql(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* First column of the first row as text ("" if none), into a static rotating buffer. */
const char *e2e_str(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long long e2e_int(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The source's current binlog position. */
void e2e_master_pos(MYSQL *src, char *file, size_t n, unsigned long long *pos);

/* Compare every table of schema on the source and the target: the same table names, the same
 * CHECKSUM TABLE ... EXTENDED, and the same rows (every column's bytes, duplicates counted)
 * in an order over every column, each named (so INVISIBLE columns count too). Sequences compare
 * too; system-versioned tables by their current rows, without their ROW START/ROW END columns
 * and CHECKSUM TABLE (the target keeps its own history). Returns the number of rows compared;
 * exits on a difference. */
long long e2e_compare_schema(MYSQL *src, MYSQL *dst, const char *schema);

/* ---- sluice-server -------------------------------------------------------------------------- */

typedef struct e2e_server {
    pid_t pid;
    int   port;
    char  dir[512];   /* data dir */
    char  log[600];   /* its stderr/stdout */
} e2e_server;

/* Start sluice-server on a free port with data dir <workdir>/<name>; failpoint (may be NULL) is
 * put in SLUICE_SINK_FAILPOINT of the child. Waits until it serves. */
void e2e_server_start(e2e_server *s, const char *name, const char *failpoint);
/* SIGKILL it and reap it. */
void e2e_server_kill(e2e_server *s);
/* Wait up to timeout_ms for the server to exit by itself; returns its wait status or -1. */
int  e2e_server_wait_exit(e2e_server *s, int timeout_ms);
/* SIGTERM, wait, and check the exit status is 0 and the log holds no sanitizer report. */
void e2e_server_stop(e2e_server *s);

/* HTTP/1.0 request; body may be NULL. Returns the status code and the parsed JSON body (NULL
 * when empty); *out may be NULL. Returns -1 when the server cannot be reached. */
int  e2e_http(e2e_server *s, const char *method, const char *path, const char *body, json_t **out);
/* Same, failing unless the status is 2xx. Returns the JSON (caller decrefs) or NULL. */
json_t *e2e_api(e2e_server *s, const char *method, const char *path, const char *body);

/* POST /sources for the sandbox source named name. */
void e2e_create_source(e2e_server *s, const char *name);
/* POST /tasks: task_mode mode, every table of schema, export/import threads 2, repl_threads 4,
 * dump files under <workdir>/<task>-dump. */
void e2e_create_task(e2e_server *s, const char *task, const char *source, const char *mode,
                     const char *schema);
/* The first subtask's status object (caller decrefs). */
json_t *e2e_task_status(e2e_server *s, const char *task);

/* Drop the task's checkpoint tables on the target. */
void e2e_drop_meta(MYSQL *dst, const char *task);

/* Poll the task until it replicates (incremental phase, Running); fails at once when it is
 * Paused (with its error), and after timeout_s. */
void e2e_wait_sync(e2e_server *s, const char *task, int timeout_s);

/* Wait until the task's syncer checkpoint (worker 0) is at or past the source's current
 * position and the task is Running in its incremental phase; fails after timeout_s. */
void e2e_wait_caught_up(e2e_server *s, MYSQL *src, MYSQL *dst, const char *task, int timeout_s);

/* Prepared XA branches of sluice (xid "sluice-...") on the target. */
long long e2e_xa_branches(MYSQL *dst);

/* The target holds no prepared XA branch and no pending-DDL row of the task. */
void e2e_check_clean(MYSQL *dst, const char *task);

/* ---- writers ------------------------------------------------------------------------------- */

typedef struct e2e_writers e2e_writers;

/* Start n threads that commit transactions on schema (tables made by e2e_make_tables) until
 * stopped: sysbench-like updates, delete+insert of a key, unique key changes, inserts and
 * LIMIT 1 deletes on a table without a key. Connection losses are retried. With reuse, unique
 * values are given back to new rows in the transaction that deletes their old row, and renamed
 * in place (InnoDB then takes next-key locks on the unique index for its duplicate checks);
 * without, every unique value written is new. */
e2e_writers *e2e_writers_start(const char *schema, int n, unsigned seed, int reuse);
/* Transactions committed so far (all threads). */
long long e2e_writers_committed(e2e_writers *w);
/* Wait until at least k more transactions commit than at the call (fails after timeout_s). */
void e2e_writers_wait_more(e2e_writers *w, long long k, int timeout_s);
/* Stop and join; returns the total committed. */
long long e2e_writers_stop(e2e_writers *w);

/* Create schema on the source (dropped first, also on the target) with tables t_pk (rows
 * pk_rows), t_uk, t_nokey, and drop the task's checkpoint tables. */
void e2e_make_tables(MYSQL *src, MYSQL *dst, const char *schema, long pk_rows);

/* Remove the work dir if nothing failed (unless SLUICE_E2E_KEEP is set); print "PASS name". */
void e2e_finish(const char *name);

#endif
