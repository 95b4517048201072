/*
 * test_e2e.c - sluice end to end on the sandbox, through a real sluice-server and its REST API:
 * task_mode all with writers running during the dump and after it, a source restart
 * mid-stream, and SIGKILL of the server at five points (inside a large transaction, between
 * transactions, during a DDL, during the dump, during the load) followed by a restart. After
 * each, the source and the target are compared by CHECKSUM TABLE and row by row (a table
 * without a key shows any duplicate), and the target holds no prepared XA branch.
 *
 *   test_e2e SCENARIO    all | unique-reuse | source-restart | kill-bigtxn | kill-between |
 *                        kill-ddl | kill-dump | kill-load
 *
 * Needs SLUICE_SOURCE_* / SLUICE_TARGET_* and SLUICE_SANDBOX_DIR (fails without them).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SANDBOX_SCRIPT
#error SANDBOX_SCRIPT must be defined (path of scripts/sandbox)
#endif

static MYSQL *src, *dst;

static void ms_sleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fresh tables on the source, nothing of the task on the target. */
static void setup(const char *schema, const char *task, long pk_rows)
{
    src = e2e_connect("SOURCE");
    dst = e2e_connect("TARGET");
    e2e_make_tables(src, dst, schema, pk_rows);
    e2e_drop_meta(dst, task);
}

/* Start a server (data dir name), create the source and an "all" task, and start it. */
static void start_task(e2e_server *sv, const char *name, const char *failpoint, const char *task,
                       const char *schema)
{
    e2e_server_start(sv, name, failpoint);
    e2e_create_source(sv, "src");
    e2e_create_task(sv, task, "src", "all", schema);
    char p[256];
    snprintf(p, sizeof p, "/tasks/%s/start", task);
    json_decref(e2e_api(sv, "POST", p, "{}"));
}

/* The server must die by the failpoint's SIGKILL within timeout_s. */
static void expect_failpoint_kill(e2e_server *sv, const char *fp, int timeout_s)
{
    int st = e2e_server_wait_exit(sv, timeout_s * 1000);
    if (st == -1)
        e2e_fail("the failpoint %s was not reached within %d s", fp, timeout_s);
    E2E_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "sluice-server ended with status %d, not by the "
              "failpoint %s's SIGKILL", st, fp);
    printf("  sluice-server killed by the failpoint %s\n", fp);
}

/* Stop the writers, wait until the target has every transaction, compare, stop the server. */
static void finish(e2e_server *sv, e2e_writers *w, const char *task, const char *schema, const char *name)
{
    long long n = e2e_writers_stop(w);
    printf("  writers committed %lld transactions\n", n);
    e2e_wait_caught_up(sv, src, dst, task, 90);
    long long rows = e2e_compare_schema(src, dst, schema);
    E2E_CHECK(rows > 0, "nothing compared");
    e2e_check_clean(dst, task);
    e2e_server_stop(sv);
    /* passed: leave no large tables behind for the tests that follow on the same sandbox */
    e2e_sql(src, "DROP DATABASE IF EXISTS `%s`", schema);
    e2e_sql(dst, "DROP DATABASE IF EXISTS `%s`", schema);
    e2e_drop_meta(dst, task);
    mysql_close(src);
    mysql_close(dst);
    e2e_finish(name);
}

/* ---- task_mode all with writers before, during and after the full phase -------------------- */

static void scenario_all(void)
{
    const char *S = "e2e_all", *T = "e2e-all";
    setup(S, T, 150000);
    e2e_writers *w = e2e_writers_start(S, 2, 1, 0);
    e2e_writers_wait_more(w, 100, 60);
    e2e_server sv;
    long long before = e2e_writers_committed(w);
    start_task(&sv, "all", NULL, T, S);
    e2e_wait_sync(&sv, T, 90);
    long long during = e2e_writers_committed(w) - before;
    printf("  %lld transactions committed on the source during the full phase\n", during);
    E2E_CHECK(during > 0, "no transaction was written during the dump and load");
    /* the loader recorded the snapshot, and the incremental phase moved past it */
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM `dm_meta`.`%s_loader_checkpoint` WHERE chunk_id = ''", T) == 1,
              "no finish marker in the loader checkpoint");
    e2e_writers_wait_more(w, 1000, 60);
    finish(&sv, w, T, S, "all");
}

/* ---- unique values given back to new rows, in parallel ---------------------------------------
 * Rows with different keys go to different workers, but InnoDB's duplicate checks on a unique
 * index take next-key locks around delete-marked entries, so the branches of one group can
 * still wait for each other (deadlock, or a wait on a prepared branch). The task must go on. */

static void scenario_unique_reuse(void)
{
    const char *S = "e2e_ur", *T = "e2e-ur";
    setup(S, T, 5000);
    e2e_writers *w = e2e_writers_start(S, 3, 8, 1);
    e2e_server sv;
    start_task(&sv, "ur", NULL, T, S);
    e2e_wait_sync(&sv, T, 60);
    e2e_writers_wait_more(w, 1500, 90);
    finish(&sv, w, T, S, "unique-reuse");
}

/* ---- the source restarts while the task replicates ------------------------------------------ */

static void scenario_source_restart(void)
{
    const char *S = "e2e_rs", *T = "e2e-rs";
    setup(S, T, 5000);
    e2e_writers *w = e2e_writers_start(S, 2, 2, 0);
    e2e_server sv;
    start_task(&sv, "rs", NULL, T, S);
    e2e_wait_sync(&sv, T, 60);
    e2e_writers_wait_more(w, 300, 60);                  /* before */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' restart source >/dev/null", SANDBOX_SCRIPT);
    e2e_env("SLUICE_SANDBOX_DIR");
    mysql_close(src);
    long long at = e2e_writers_committed(w);
    int rc = system(cmd);
    E2E_CHECK(rc == 0, "%s failed (%d)", cmd, rc);
    src = e2e_connect("SOURCE");
    e2e_writers_wait_more(w, 300, 60);                  /* during the reader's reconnection, and after */
    printf("  source restarted; %lld transactions committed since the restart began\n",
           e2e_writers_committed(w) - at);
    json_t *st = e2e_task_status(&sv, T);
    const char *stage = json_string_value(json_object_get(st, "stage"));
    E2E_CHECK(stage && !strcmp(stage, "Running"), "task %s after the source restart: %s (%s)", T,
              stage ? stage : "?", json_string_value(json_object_get(st, "error_msg")) ?: "");
    json_decref(st);
    e2e_writers_wait_more(w, 200, 60);
    finish(&sv, w, T, S, "source-restart");
}

/* ---- SIGKILL inside a large transaction ------------------------------------------------------ */

static void scenario_kill_bigtxn(void)
{
    const char *S = "e2e_kb", *T = "e2e-kb";
    setup(S, T, 5000);
    e2e_writers *w = e2e_writers_start(S, 2, 3, 0);
    e2e_server sv;
    start_task(&sv, "kb", "serial-open:1", T, S);
    e2e_wait_sync(&sv, T, 60);
    e2e_writers_wait_more(w, 200, 60);
    /* One transaction of ~9,000 events (more than a reader batch): the sink applies it alone on
     * one connection in pieces and commits it with the checkpoint at its COMMIT. */
    size_t cap = 1 << 20, len = 0;
    char *q = malloc(cap);
    len += (size_t)snprintf(q + len, cap - len, "BEGIN;");
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(q + len, cap - len, "UPDATE `%s`.t_pk SET k = k + 1000, pad = 'big' WHERE id = %d;",
                                S, 1001 + i);
    len += (size_t)snprintf(q + len, cap - len, "INSERT INTO `%s`.t_nokey (a, b) SELECT seq %% 50, 'big' FROM "
                            "`%s`.seq_1_to_2000; COMMIT", S, S);
    e2e_sql(src, "%s", q);
    free(q);
    expect_failpoint_kill(&sv, "serial-open:1", 60);
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM `%s`.t_nokey WHERE b = 'big'", S) == 0,
              "part of the large transaction is visible on the target after the crash");
    e2e_writers_wait_more(w, 100, 60);                  /* while sluice is down */
    e2e_server_start(&sv, "kb", NULL);
    e2e_writers_wait_more(w, 200, 60);
    finish(&sv, w, T, S, "kill-bigtxn");
}

/* ---- SIGKILL between transactions: after the checkpoint, before the XA commits; then after
 * the XA prepares, before the checkpoint ------------------------------------------------------ */

static void scenario_kill_between(void)
{
    const char *S = "e2e_kt", *T = "e2e-kt";
    setup(S, T, 5000);
    e2e_writers *w = e2e_writers_start(S, 3, 4, 0);
    e2e_server sv;
    start_task(&sv, "kt", "after-checkpoint:30", T, S);
    expect_failpoint_kill(&sv, "after-checkpoint:30", 90);
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM `dm_meta`.`%s_syncer_checkpoint` WHERE worker = 0", T) == 1,
              "no checkpoint before the crash");
    /* the group's branches are prepared and checkpointed: the restart must commit them */
    long long xa = e2e_xa_branches(dst);
    E2E_CHECK(xa >= 2, "%lld prepared XA branches after the crash at after-checkpoint (expected >= 2)", xa);
    printf("  %lld prepared branches left by the crash, to commit\n", xa);
    e2e_writers_wait_more(w, 100, 60);
    e2e_server_start(&sv, "kt", "after-prepare:20");
    expect_failpoint_kill(&sv, "after-prepare:20", 90);
    /* prepared, not checkpointed: the restart must roll them back and replay */
    xa = e2e_xa_branches(dst);
    E2E_CHECK(xa >= 2, "%lld prepared XA branches after the crash at after-prepare (expected >= 2)", xa);
    printf("  %lld prepared branches left by the crash, to roll back\n", xa);
    e2e_writers_wait_more(w, 100, 60);
    e2e_server_start(&sv, "kt", NULL);
    e2e_writers_wait_more(w, 300, 60);
    finish(&sv, w, T, S, "kill-between");
}

/* ---- SIGKILL during a DDL (applied on the target, checkpoint not moved) ---------------------- */

static void scenario_kill_ddl(void)
{
    const char *S = "e2e_kd", *T = "e2e-kd";
    setup(S, T, 5000);
    e2e_writers *w = e2e_writers_start(S, 2, 5, 0);
    e2e_server sv;
    start_task(&sv, "kd", "after-ddl:1", T, S);
    e2e_wait_sync(&sv, T, 60);
    e2e_writers_wait_more(w, 200, 60);
    e2e_sql(src, "ALTER TABLE `%s`.t_pk ADD COLUMN extra INT NOT NULL DEFAULT 7, ADD KEY k_extra (extra, k)", S);
    expect_failpoint_kill(&sv, "after-ddl:1", 60);
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' AND "
                      "TABLE_NAME = 't_pk' AND COLUMN_NAME = 'extra'", S) == 1,
              "the DDL is not on the target at the failpoint after-ddl");
    e2e_writers_wait_more(w, 100, 60);
    e2e_server_start(&sv, "kd", NULL);                 /* replays the DDL: "already done" is tolerated */
    e2e_writers_wait_more(w, 100, 60);
    /* more DDL while the writers write, after the restart */
    e2e_sql(src, "UPDATE `%s`.t_pk SET extra = id %% 13 WHERE id <= 500", S);
    e2e_sql(src, "CREATE TABLE `%s`.t_new (id INT PRIMARY KEY, v VARCHAR(10)); "
            "INSERT INTO `%s`.t_new SELECT seq, 'n' FROM `%s`.seq_1_to_300; "
            "CREATE INDEX k_v ON `%s`.t_uk (v); RENAME TABLE `%s`.t_new TO `%s`.t_renamed; "
            "ALTER TABLE `%s`.t_renamed MODIFY v VARCHAR(30) NOT NULL; "
            "UPDATE `%s`.t_renamed SET v = 'longer value' WHERE id < 50", S, S, S, S, S, S, S, S);
    e2e_writers_wait_more(w, 200, 60);
    finish(&sv, w, T, S, "kill-ddl");
}

/* ---- SIGKILL during the dump, and during the load -------------------------------------------- */

static long long chunks_loaded(const char *task)
{
    if (e2e_int(dst, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dm_meta' AND "
                "TABLE_NAME = '%s_loader_checkpoint'", task) != 1)
        return 0;
    return e2e_int(dst, "SELECT COUNT(*) FROM `dm_meta`.`%s_loader_checkpoint` WHERE chunk_id <> ''", task);
}

static long long load_finished(const char *task)
{
    if (e2e_int(dst, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dm_meta' AND "
                "TABLE_NAME = '%s_loader_checkpoint'", task) != 1)
        return 0;
    return e2e_int(dst, "SELECT COUNT(*) FROM `dm_meta`.`%s_loader_checkpoint` WHERE chunk_id = ''", task);
}

static void scenario_kill_full(int during_load)
{
    const char *S = during_load ? "e2e_kl" : "e2e_kf", *T = during_load ? "e2e-kl" : "e2e-kf";
    setup(S, T, 400000);
    e2e_writers *w = e2e_writers_start(S, 2, during_load ? 6 : 7, 0);
    e2e_writers_wait_more(w, 50, 60);
    e2e_server sv;
    start_task(&sv, during_load ? "kl" : "kf", NULL, T, S);
    double t0 = now_s();
    for (;;) {
        E2E_CHECK(now_s() - t0 < 60, "no moment to kill %s the %s within 60 s", "during", during_load ? "load" : "dump");
        if (during_load) {
            long long c = chunks_loaded(T);
            if (c >= 1 && !load_finished(T)) {
                e2e_server_kill(&sv);
                printf("  sluice-server killed during the load, %lld chunk(s) loaded\n", c);
                break;
            }
            E2E_CHECK(!load_finished(T), "the load finished before it could be killed");
        } else {
            json_t *st = e2e_task_status(&sv, T);
            json_t *d = json_object_get(st, "dump_status");
            double rows = json_number_value(json_object_get(d, "finished_rows"));
            double done = json_number_value(json_object_get(d, "completed_tables"));
            double total = json_number_value(json_object_get(d, "total_tables"));
            const char *unit = json_string_value(json_object_get(st, "unit"));
            int dumping = unit && !strcmp(unit, "Dump") && rows > 0 && done < total;
            json_decref(st);
            if (dumping && chunks_loaded(T) == 0) {
                e2e_server_kill(&sv);
                printf("  sluice-server killed during the dump (%.0f rows dumped, no chunk loaded)\n", rows);
                break;
            }
            E2E_CHECK(chunks_loaded(T) == 0, "a chunk was loaded before the dump could be killed");
        }
        ms_sleep(10);
    }
    E2E_CHECK(!load_finished(T), "the load finished before the kill");
    e2e_writers_wait_more(w, 100, 60);
    e2e_server_start(&sv, during_load ? "kl" : "kf", NULL);
    e2e_wait_sync(&sv, T, 90);
    e2e_writers_wait_more(w, 200, 60);
    finish(&sv, w, T, S, during_load ? "kill-load" : "kill-dump");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s all|unique-reuse|source-restart|kill-bigtxn|kill-between|kill-ddl|kill-dump|kill-load\n",
                argv[0]);
        return 2;
    }
    e2e_env("SLUICE_SOURCE_HOST");
    e2e_env("SLUICE_TARGET_HOST");
    e2e_env("SLUICE_SANDBOX_DIR");
    /* The client library (and OpenSSL under it) is initialised once and never ended:
     * mysql_library_end() leaves OpenSSL's one-time state unreachable for LeakSanitizer. */
    mysql_library_init(0, NULL, NULL);
    signal(SIGPIPE, SIG_IGN);
    const char *s = argv[1];
    if (!strcmp(s, "all"))
        scenario_all();
    else if (!strcmp(s, "unique-reuse"))
        scenario_unique_reuse();
    else if (!strcmp(s, "source-restart"))
        scenario_source_restart();
    else if (!strcmp(s, "kill-bigtxn"))
        scenario_kill_bigtxn();
    else if (!strcmp(s, "kill-between"))
        scenario_kill_between();
    else if (!strcmp(s, "kill-ddl"))
        scenario_kill_ddl();
    else if (!strcmp(s, "kill-dump"))
        scenario_kill_full(0);
    else if (!strcmp(s, "kill-load"))
        scenario_kill_full(1);
    else {
        fprintf(stderr, "unknown scenario %s\n", s);
        return 2;
    }
    return 0;
}
