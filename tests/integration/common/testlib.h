/*
 * testlib.h - what the integration tests against the sandbox share: failing with a message,
 * counted non-fatal checks, the SLUICE_SOURCE_* / SLUICE_TARGET_* environment, connections and
 * SQL helpers, comparing source and target tables, and in-process pipelines of built plugins.
 *
 * A fatal failure goes through tl_fail: it prints "FAIL: ..." and exits 1, unless a test installs
 * its own hook (a cmocka test turns it into fail_msg, the e2e harness adds the server's log).
 * Not thread-safe except where a function says so.
 */
#ifndef SLUICE_TESTLIB_H
#define SLUICE_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <mysql.h>
#include <sluice/runtime.h>

/* ---- failing and checking --------------------------------------------------------------------- */

/* Called with the formatted message of a fatal failure; must not return (if it does, the process
 * exits 1). NULL restores the default (print "FAIL: msg", exit 1). */
typedef void (*tl_fail_hook)(const char *msg);
void tl_set_fail_hook(tl_fail_hook hook);

/* Fail the test: the message goes to the hook. Never returns. Thread-safe. */
void tl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Checks that fail count, print "FAIL file:line: msg" and go on. */
extern int tl_failures;
void tl_check_failed(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define TL_CHECK(c, ...) do { if (!(c)) tl_check_failed(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* The end of a test program: prints "N check(s) failed" or "<name>: all checks passed" and
 * returns the exit status (1 if a check failed). */
int tl_finish(const char *name);

/* ---- environment ------------------------------------------------------------------------------ */

/* getenv, failing when the variable is missing or empty (the tests need the sandbox). */
const char *tl_env(const char *name);
/* getenv, or def when missing (passwords may be empty). */
const char *tl_env_or(const char *name, const char *def);

/* "\"target_host\":...,\"target_password\":\"...\"" (no braces) from SLUICE_TARGET_*, or the
 * same with "source_" from SLUICE_SOURCE_* (who "SOURCE"), into out. Returns out. */
char *tl_conn_json(const char *who, char *out, size_t n);

/* ---- databases -------------------------------------------------------------------------------- */

/* Connect to SLUICE_<who>_* (who "SOURCE" or "TARGET"): utf8mb4, multi-statements, 10 s connect
 * timeout, 1 GiB max packet. tl_connect fails the test on an error; tl_try_connect puts the
 * error in err and returns NULL. Caller closes with mysql_close. */
MYSQL *tl_connect(const char *who);
MYSQL *tl_try_connect(const char *who, char *err, size_t n);

/* Run statements (multi-statements allowed, every result read), failing the test with the
 * server's error. */
void tl_sql(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Column col of the first row as text ("" for no row or NULL), failing the test on an SQL error.
 * The text is in a ring of 4 thread-local buffers (16 KiB each): valid until 4 more calls. */
const char *tl_str(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tl_col(MYSQL *db, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, but an SQL error is a value: "ERROR <message>" (polling a table that may not exist
 * yet, or checking that one does not). */
const char *tl_peek(MYSQL *db, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* First column of the first row as a number, -1 for no row or NULL; fails on an SQL error. */
long long tl_int(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The source's current binlog file and position (SHOW MASTER STATUS); fails without them. */
void tl_master_pos(MYSQL *src, char *file, size_t n, unsigned long long *pos);

/* CHECKSUM TABLE <table> EXTENDED (table as written in SQL, e.g. "`s`.`t`"); fails when there
 * is no checksum (a missing table). */
long long tl_checksum(MYSQL *db, const char *table);

/* Compare the rows of qsrc on src with those of qdst on dst, in order, byte for byte (binary
 * results, time_zone +00:00; character_set_results is utf8mb4 again after). Each difference
 * (a NULL on one side, other bytes, other column or row counts) is a failed check (TL_CHECK,
 * the first 5 printed) named by what. Returns the number of rows compared, or -1 if they differ.
 * Rows are streamed, unless src and dst are one connection (both results are then held). */
long long tl_compare_rows(MYSQL *src, MYSQL *dst, const char *qsrc, const char *qdst, const char *what);

/* The task's syncer checkpoint (worker 0 of dm_meta.`<task>_syncer_checkpoint` on dst) into
 * file and pos. Returns 1, or 0 while there is none (no table or no row yet). */
int tl_syncer_ckpt(MYSQL *dst, const char *task, char *file, size_t n, unsigned long long *pos);

/* ---- pipelines -------------------------------------------------------------------------------- */

/* The directory of the built plugins (the build's plugin output dir). */
const char *tl_plugin_dir(void);

/* A registry with sluice-<name>.so of the plugin dir for each of plugins (NULL-terminated) and
 * each descriptor of descs (NULL-terminated, may be NULL). Fails the test on an error. Caller
 * frees with sl_registry_free (or through tl_pipe_free). */
sl_registry *tl_registry(const char *const *plugins, const sl_plugin_descriptor *const *descs);

/* A pipeline with its scheduler and registry. */
typedef struct tl_pipe { sl_registry *reg; sl_scheduler *sched; sl_pipeline *p; } tl_pipe;

/* Build the chain stages[0] -> stages[1] -> ... -> stages[n-1] named name on reg (owned by the
 * pipe from here on) and start it unless start is 0. Fails the test on an error. */
void tl_pipe_new(tl_pipe *r, sl_registry *reg, const char *name, const sl_stage_spec *stages, uint32_t n,
                 int start);
/* Stop it and free the pipeline, the scheduler and the registry. */
void tl_pipe_free(tl_pipe *r);

/* Run a started pipe until it ends (or timeout_ms passes): its stage, and its error in err. The
 * pipe is freed. */
sl_stage tl_pipe_run(tl_pipe *r, int timeout_ms, sl_error *err);

/* Wait while the pipe runs, polling every 100 ms up to deadline_s, until the task's syncer
 * checkpoint is in file at or past pos. Returns 1 if it got there. */
int tl_wait_ckpt(tl_pipe *r, MYSQL *dst, const char *task, const char *file, unsigned long long pos,
                 int deadline_s);

/* The value of the first "name": member in the pipeline's status JSON as a number, -1 without. */
long long tl_pipe_metric(tl_pipe *r, const char *name);

#endif
