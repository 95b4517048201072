/*
 * test_progress.c - replication progress when the stream ends with transactions that put no row
 * on the target: binlog-reader -> event-filter -> route -> lua-hook -> mysql-sink in-process on
 * the sandbox. The tail of the stream is wholly filtered (deletes an ignore_event rule drops,
 * rows a Lua script drops, transactions on unselected tables only), then a binlog rotation.
 * Checks: the checkpoint reaches the source's end position and GTID, the sink reports synced
 * with no lag, and a restart from there applies nothing (a trigger on the target counts every
 * row change the sink makes).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testlib.h"

/* Generous bound for the checkpoint to catch up with an idle source (it takes about one
 * heartbeat period, 200 ms here); a deadline, not a timing assertion. */
#define DEADLINE_S 60

typedef struct srcpos { char file[256]; unsigned long long pos; char gtid[512]; } srcpos;

static void source_pos(MYSQL *src, srcpos *p)
{
    tl_master_pos(src, p->file, sizeof p->file, &p->pos);
    snprintf(p->gtid, sizeof p->gtid, "%s", tl_str(src, "SELECT @@global.gtid_binlog_pos"));
}

/* After a rotation MariaDB writes a BINLOG_CHECKPOINT naming the new file once the old file's
 * transactions are durable in the engines, a little later. Wait for it so the source's end
 * stays put. 1 once it is there. */
static int binlog_checkpoint_written(MYSQL *src, const char *file)
{
    char sql[400];
    snprintf(sql, sizeof sql, "SHOW BINLOG EVENTS IN '%s'", file);
    for (int t = 0; t < DEADLINE_S * 10; t++) {
        int found = 0;
        if (mysql_query(src, sql) == 0) {
            MYSQL_RES *r = mysql_store_result(src);
            MYSQL_ROW row;
            while (r && (row = mysql_fetch_row(r)))
                found |= row[2] && !strcmp(row[2], "Binlog_checkpoint") && row[5] && strstr(row[5], file);
            if (r) mysql_free_result(r);
        }
        if (found)
            return 1;
        usleep(100000);
    }
    return 0;
}

#define CKPT "dm_meta.`prog-task_syncer_checkpoint`"

static int ckpt_at(MYSQL *dst, const srcpos *p)
{
    char f[256];
    unsigned long long pos;
    return tl_syncer_ckpt(dst, "prog-task", f, sizeof f, &pos) && strcmp(f, p->file) == 0 && pos == p->pos;
}

/* ---- the pipeline ------------------------------------------------------------------------ */

static const char *RULES =
    "[{\"schema\":\"prog\",\"table\":\"t\",\"target_schema\":\"\",\"target_table\":\"\","
    "  \"filters\":[{\"name\":\"nodel\",\"ignore_event\":[\"delete\"],\"ignore_sql\":[]}]},"
    " {\"schema\":\"prog\",\"table\":\"l\",\"target_schema\":\"\",\"target_table\":\"\",\"filters\":[]}]";
static const char *SCRIPTS =
    "{\"scripts\":[{\"tables\":[{\"schema\":\"prog\",\"table\":\"l\"}],\"file\":\"\","
    "\"source\":\"function on_row(ev) return false end\",\"on_row\":\"on_row\",\"on_ddl\":\"\"}]}";

static char ropts[4096], fopts[2048], sopts[2048];

static void build_options(const srcpos *start)
{
    char target[1024], source[1024];
    const char *task = "\"task_name\":\"prog-task\",\"source_name\":\"src-1\"";
    tl_conn_json("TARGET", target, sizeof target);
    tl_conn_json("SOURCE", source, sizeof source);
    snprintf(ropts, sizeof ropts,
             "{%s,%s,%s,\"rules\":%s,\"binlog_name\":\"%s\",\"binlog_pos\":%llu,\"heartbeat_ms\":200}",
             target, task, source, RULES, start->file, start->pos);
    snprintf(fopts, sizeof fopts, "{\"rules\":%s}", RULES);
    snprintf(sopts, sizeof sopts, "{%s,%s,\"repl_threads\":4,\"repl_batch\":50}", target, task);
}

static void run_start(tl_pipe *r)
{
    static const char *const plugins[] = { "binlog-reader", "event-filter", "route", "lua-hook", "mysql-sink",
                                           NULL };
    sl_stage_spec st[5] = { { "reader", "binlog-reader", ropts }, { "filter", "event-filter", fopts },
                            { "route", "route", fopts }, { "lua", "lua-hook", (char *)SCRIPTS },
                            { "sink", "mysql-sink", sopts } };
    tl_pipe_new(r, tl_registry(plugins, NULL), "prog-task/src-1/incremental", st, 5, 1);
}

/* The mysql-sink's status object (caller decrefs), or NULL. */
static json_t *sink_status(tl_pipe *r)
{
    char *t = sl_pipeline_status_json(r->p);
    json_t *root = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    json_t *out = NULL, *st;
    size_t i;
    json_array_foreach(json_object_get(root, "stages"), i, st) {
        const char *pl = json_string_value(json_object_get(st, "plugin"));
        if (pl && !strcmp(pl, "mysql-sink"))
            out = json_incref(json_object_get(st, "status"));
    }
    json_decref(root);
    return out;
}

/* Wait until the checkpoint is at the source's position (read again each time into p: after a
 * rotation, MariaDB writes a BINLOG_CHECKPOINT event by itself a little later) and the sink
 * says synced; 1 if it happened in time. */
static int wait_synced(tl_pipe *r, MYSQL *src, MYSQL *dst, srcpos *p)
{
    for (int t = 0; t < DEADLINE_S * 10; t++) {
        if (sl_pipeline_stage(r->p) != SL_STAGE_RUNNING)
            return 0;
        source_pos(src, p);
        json_t *st = sink_status(r);
        int synced = json_is_true(json_object_get(st, "synced"));
        json_decref(st);
        if (synced && ckpt_at(dst, p))
            return 1;
        usleep(100000);
    }
    return 0;
}

static void report(tl_pipe *r, MYSQL *dst, const char *what, const srcpos *p)
{
    sl_error e = {0};
    sl_pipeline_error(r->p, &e);
    char *st = sl_pipeline_status_json(r->p);
    fprintf(stderr, "%s: the checkpoint is at (%s, %s), the source at (%s, %llu); stage %s, error '%s'\n"
            "status: %s\n", what, tl_peek(dst, 0, "SELECT binlog_name FROM " CKPT " WHERE worker = 0"),
            tl_peek(dst, 0, "SELECT binlog_pos FROM " CKPT " WHERE worker = 0"), p->file, p->pos,
            sl_stage_name(sl_pipeline_stage(r->p)), e.msg, st ? st : "(null)");
    free(st);
}

/* The sink's status once synced: no lag, its position is the source's. */
static void check_status(tl_pipe *r, const srcpos *p, const char *what)
{
    json_t *st = sink_status(r);
    char want[400];
    snprintf(want, sizeof want, "(%s, %llu)", p->file, p->pos);
    const char *got = json_string_value(json_object_get(st, "syncer_binlog"));
    TL_CHECK(got && !strcmp(got, want), "%s: syncer_binlog %s, expected %s", what, got ? got : "(none)", want);
    const char *g = json_string_value(json_object_get(st, "syncer_binlog_gtid"));
    TL_CHECK(g && !strcmp(g, p->gtid), "%s: syncer_binlog_gtid '%s', expected '%s'", what, g ? g : "(none)", p->gtid);
    json_t *sbm = json_object_get(st, "seconds_behind_master");
    TL_CHECK(json_is_integer(sbm) && json_integer_value(sbm) == 0, "%s: seconds_behind_master %lld",
          what, sbm ? (long long)json_integer_value(sbm) : -1LL);
    json_decref(st);
}

int main(void)
{
    MYSQL *src = tl_connect("SOURCE"), *dst = tl_connect("TARGET");
    tl_sql(src, "DROP DATABASE IF EXISTS prog; CREATE DATABASE prog;"
           "CREATE TABLE prog.t (id INT PRIMARY KEY, v INT);"
           "CREATE TABLE prog.l (id INT PRIMARY KEY, v INT);"
           "CREATE TABLE prog.u (id INT PRIMARY KEY, v INT)");
    /* the target's tables exist already; triggers count every row change the sink makes */
    tl_sql(dst, "DROP DATABASE IF EXISTS prog; CREATE DATABASE prog;"
           "CREATE TABLE prog.t (id INT PRIMARY KEY, v INT);"
           "CREATE TABLE prog.l (id INT PRIMARY KEY, v INT);"
           /* a log, not a counter row: parallel workers do not contend on it */
           "CREATE TABLE prog.applied (n BIGINT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(8));"
           "CREATE TRIGGER prog.t_ins AFTER INSERT ON prog.t FOR EACH ROW INSERT INTO prog.applied (what) VALUES ('t+');"
           "CREATE TRIGGER prog.t_upd AFTER UPDATE ON prog.t FOR EACH ROW INSERT INTO prog.applied (what) VALUES ('t=');"
           "CREATE TRIGGER prog.t_del AFTER DELETE ON prog.t FOR EACH ROW INSERT INTO prog.applied (what) VALUES ('t-');"
           "CREATE TRIGGER prog.l_ins AFTER INSERT ON prog.l FOR EACH ROW INSERT INTO prog.applied (what) VALUES ('l+');"
           "CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS " CKPT);
    srcpos start, end, end2;
    source_pos(src, &start);
    build_options(&start);

    tl_pipe r;
    run_start(&r);
    /* rows that are applied, with unselected transactions in between */
    for (int k = 1; k <= 50; k++)
        tl_sql(src, "INSERT INTO prog.t VALUES (%d, %d), (%d, %d); INSERT INTO prog.u VALUES (%d, 0)",
               2 * k, k, 2 * k + 1, k, k);
    /* the tail: nothing of it reaches the target */
    for (int k = 1; k <= 20; k++) {
        tl_sql(src, "DELETE FROM prog.t WHERE id = %d", 2 * k);       /* ignore_event */
        tl_sql(src, "INSERT INTO prog.l VALUES (%d, %d)", k, k);     /* Lua drops it */
    }
    tl_sql(src, "BEGIN; DELETE FROM prog.t WHERE id > 90; INSERT INTO prog.l VALUES (100, 0); "
           "UPDATE prog.u SET v = 1; COMMIT");                                      /* all three */
    for (int k = 1; k <= 20; k++)
        tl_sql(src, "UPDATE prog.u SET v = v + 1 WHERE id = %d", k);  /* unselected */
    source_pos(src, &end);

    int ok = wait_synced(&r, src, dst, &end);
    if (!ok)
        report(&r, dst, "filtered tail", &end);
    TL_CHECK(ok, "filtered tail: the checkpoint did not reach the source's end and synced within %d s", DEADLINE_S);
    TL_CHECK(!strcmp(tl_peek(dst, 0, "SELECT binlog_gtid FROM " CKPT " WHERE worker = 0"), end.gtid),
          "checkpoint gtid '%s', source '%s'", tl_peek(dst, 0, "SELECT binlog_gtid FROM " CKPT " WHERE worker = 0"), end.gtid);
    check_status(&r, &end, "filtered tail");
    TL_CHECK(!strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.applied"), "100"), "row changes applied: %s (expected 100)",
          tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.applied"));
    TL_CHECK(!strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.t"), "100"), "prog.t rows: %s",
          tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.t"));
    TL_CHECK(!strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.l"), "0"), "prog.l rows: %s",
          tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.l"));

    /* a rotation: only non-transaction events (ROTATE, FORMAT_DESCRIPTION, GTID_LIST,
     * BINLOG_CHECKPOINT) after the last commit */
    tl_sql(src, "FLUSH BINARY LOGS");
    source_pos(src, &end2);
    TL_CHECK(binlog_checkpoint_written(src, end2.file), "no Binlog_checkpoint in %s", end2.file);
    source_pos(src, &end2);
    TL_CHECK(strcmp(end2.file, end.file) != 0, "FLUSH BINARY LOGS did not rotate (%s)", end2.file);
    ok = wait_synced(&r, src, dst, &end2);
    if (!ok)
        report(&r, dst, "after a rotation", &end2);
    TL_CHECK(ok, "rotation: the checkpoint did not reach the new file's end and synced within %d s", DEADLINE_S);
    check_status(&r, &end2, "after a rotation");
    tl_pipe_free(&r);
    TL_CHECK(ckpt_at(dst, &end2), "the checkpoint moved at stop");

    /* a restart from there applies nothing and is synced again */
    char applied[32];
    snprintf(applied, sizeof applied, "%s", tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.applied"));
    run_start(&r);
    ok = wait_synced(&r, src, dst, &end2);
    if (!ok)
        report(&r, dst, "restart", &end2);
    TL_CHECK(ok, "restart: not synced within %d s", DEADLINE_S);
    json_t *st = sink_status(&r);
    TL_CHECK(json_integer_value(json_object_get(st, "total_events")) == 0, "restart: %lld events applied",
          (long long)json_integer_value(json_object_get(st, "total_events")));
    json_decref(st);
    check_status(&r, &end2, "restart");
    tl_pipe_free(&r);
    TL_CHECK(!strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.applied"), applied), "restart re-applied rows: %s -> %s",
          applied, tl_peek(dst, 0, "SELECT COUNT(*) FROM prog.applied"));
    TL_CHECK(ckpt_at(dst, &end2), "restart: the checkpoint moved");

    mysql_close(src);
    mysql_close(dst);
    return tl_finish("sync progress");
}
