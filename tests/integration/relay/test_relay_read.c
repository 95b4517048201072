/*
 * test_relay_read.c - the binlog-reader's local mode (relay_dir) against a relay of the sandbox
 * source written by the relay writer (runtime/relay.c) in this process: the events read from
 * the relay are the events read from the source (kinds, tables, values, positions, GTIDs), across
 * a rotation and a DDL; after the source purged those binlogs the relay still serves them; a
 * position the relay does not hold fails with a clear error; a relay directory whose continue
 * point the source purged is set aside and the relay starts again. Label relay (and mysql).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "relay.h"

#define RULES "\"rules\":[{\"schema\":\"rl_test\",\"table\":\"\",\"target_schema\":\"\"," \
              "\"target_table\":\"\",\"filters\":[]}]"
#define NTXN 60

static int count_kind(rd *r, int kind)
{
    int n = 0;
    FOR_EVENTS(r, ev)
        n += ev->kind == kind;
    return n;
}

static int commits_at_least(rd *r, void *ud) { return count_kind(r, SL_EV_COMMIT) >= *(int *)ud; }
static int failed_pred(rd *r, void *ud) { return r->failed != 0; }

static char *opts(const char *task, const char *file, const char *relay_dir)
{
    char extra[1024];
    snprintf(extra, sizeof extra, ",%s,\"binlog_name\":\"%s\",\"binlog_pos\":4%s%s%s", RULES,
             file, relay_dir ? ",\"relay_dir\":\"" : "", relay_dir ? relay_dir : "",
             relay_dir ? "\"" : "");
    return rd_options(task, extra);
}

static void *relay_thread(void *arg)
{
    sl_error err = { 0 };
    int rc = sl_relay_run(arg, &err);
    if (rc != SL_ESTOPPED)
        fprintf(stderr, "relay: %s\n", err.msg);
    return (void *)(intptr_t)rc;
}

/* The data events of two readers, one by one: same kind, table, position, GTID, first value. */
static void assert_same_events(rd *a, rd *b)
{
    size_t na = 0, nb = 0;
    FOR_EVENTS(a, ev)
        na += ev->kind != SL_EV_HEARTBEAT;
    FOR_EVENTS(b, ev)
        nb += ev->kind != SL_EV_HEARTBEAT;
    assert_int_equal(na, nb);
    sl_event **va = calloc(na, sizeof *va), **vb = calloc(nb, sizeof *vb);
    size_t i = 0;
    FOR_EVENTS(a, ev)
        if (ev->kind != SL_EV_HEARTBEAT)
            va[i++] = ev;
    i = 0;
    FOR_EVENTS(b, ev)
        if (ev->kind != SL_EV_HEARTBEAT)
            vb[i++] = ev;
    for (i = 0; i < na; i++) {
        const sl_event *x = va[i], *y = vb[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->pos.file ? x->pos.file : "", y->pos.file ? y->pos.file : "");
        assert_int_equal(x->pos.offset, y->pos.offset);
        assert_string_equal(x->pos.gtid ? x->pos.gtid : "", y->pos.gtid ? y->pos.gtid : "");
        assert_string_equal(x->table ? x->table : "", y->table ? y->table : "");
        if (x->kind == SL_EV_INSERT || x->kind == SL_EV_UPDATE) {
            assert_int_equal(x->after[0].v.i, y->after[0].v.i);
            assert_int_equal(x->after[1].len, y->after[1].len);
        }
    }
    free(va);
    free(vb);
}

static void test_local_reads_what_remote_reads(void **state)
{
    MYSQL *db = src_connect();
    sqlf(db, "DROP DATABASE IF EXISTS rl_test");
    sqlf(db, "CREATE DATABASE rl_test");
    sqlf(db, "CREATE TABLE rl_test.t (id INT PRIMARY KEY, v VARCHAR(64), b MEDIUMBLOB)");
    sqlf(db, "FLUSH BINARY LOGS");
    char first[256], last[256];
    unsigned long long p;
    master_pos(db, first, sizeof first, &p);

    char dir[] = "/tmp/sluice-relay-read.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char rdir[300];
    snprintf(rdir, sizeof rdir, "%s/relay", dir);
    sl_relay_opts ro = {
        .dir = rdir, .start_file = first, .server_id = 4100000002u, .sync_ms = 100,
        .heartbeat_ms = 200,
        .source = { .host = env_or_die("SLUICE_SOURCE_HOST"),
                    .port = atoi(env_or_die("SLUICE_SOURCE_PORT")),
                    .user = env_or_die("SLUICE_SOURCE_USER"),
                    .password = getenv("SLUICE_SOURCE_PASSWORD") },
    };
    sl_error err = { 0 };
    sl_relay *relay;
    assert_int_equal(sl_relay_new(&ro, &relay, &err), 0);
    pthread_t th;
    pthread_create(&th, NULL, relay_thread, relay);

    /* A local reader started before the data exists follows the relay as it grows. */
    rd early;
    char *o = opts("rl-early", first, rdir);
    assert_int_equal(rd_open(&early, o, 1), 0);
    free(o);

    for (int i = 1; i <= NTXN; i++) {
        sqlf(db, "INSERT INTO rl_test.t (id, v, b) VALUES (%d, 'v%d', REPEAT('x', %d))", i, i, i * 1000);
        if (i % 3 == 0)
            sqlf(db, "UPDATE rl_test.t SET v = CONCAT(v, '!') WHERE id = %d", i - 1);
        if (i % 7 == 0)
            sqlf(db, "DELETE FROM rl_test.t WHERE id = %d", i - 2);
        if (i == NTXN / 2) {
            sqlf(db, "FLUSH BINARY LOGS");
            sqlf(db, "ALTER TABLE rl_test.t ADD COLUMN c INT");
        }
    }
    int ncommits = NTXN + NTXN / 3 + NTXN / 7;
    master_pos(db, last, sizeof last, &p);
    assert_string_not_equal(first, last);

    rd remote, local;
    o = opts("rl-remote", first, NULL);
    assert_int_equal(rd_open(&remote, o, 1), 0);
    free(o);
    o = opts("rl-local", first, rdir);
    assert_int_equal(rd_open(&local, o, 1), 0);
    free(o);
    assert_true(rd_wait(&remote, commits_at_least, &ncommits, 60));
    assert_true(rd_wait(&local, commits_at_least, &ncommits, 60));
    assert_true(rd_wait(&early, commits_at_least, &ncommits, 60));
    assert_int_equal(count_kind(&local, SL_EV_DDL), 1);
    assert_same_events(&remote, &local);
    assert_same_events(&remote, &early);
    char *st = local.d->status(local.self);
    assert_non_null(strstr(st, "\"binlog_type\":\"local\""));
    free(st);
    rd_close(&early);
    rd_close(&remote);

    /* The source purges the binlogs the relay took: a reader of the relay still reads them. */
    for (int tries = 0; tries < 100; tries++) {
        sqlf(db, "PURGE BINARY LOGS TO '%s'", last);
        mysql_query(db, "SHOW BINARY LOGS");
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW row = mysql_fetch_row(res);
        int gone = row && strcmp(row[0], first) != 0;
        mysql_free_result(res);
        if (gone)
            break;
        usleep(100000);
    }
    rd after;
    o = opts("rl-after-purge", first, rdir);
    assert_int_equal(rd_open(&after, o, 1), 0);
    free(o);
    assert_true(rd_wait(&after, commits_at_least, &ncommits, 60));
    assert_same_events(&local, &after);
    rd_close(&after);
    rd_close(&local);

    /* A file the relay has created but not yet written its FORMAT_DESCRIPTION into: a reader
     * that starts inside it waits for the event instead of failing (cluster.relay once saw
     * "has no FORMAT_DESCRIPTION event" in that moment), then reads on. */
    {
        char src[700], dir2[400], dst[800];
        snprintf(src, sizeof src, "%s/%s", rdir, first);
        snprintf(dir2, sizeof dir2, "%s/relay2", dir);
        assert_int_equal(mkdir(dir2, 0700), 0);
        snprintf(dst, sizeof dst, "%s/%s", dir2, first);
        FILE *in = fopen(src, "rb");
        assert_non_null(in);
        static unsigned char whole[1 << 22];
        size_t n = fread(whole, 1, sizeof whole, in);
        fclose(in);
        assert_true(n > 4 + 19 && n < sizeof whole);
        uint32_t fde_len = (uint32_t)whole[13] | (uint32_t)whole[14] << 8 |
                           (uint32_t)whole[15] << 16 | (uint32_t)whole[16] << 24;
        FILE *out = fopen(dst, "wb");
        assert_non_null(out);
        assert_int_equal(fwrite(whole, 1, 4, out), 4);     /* the magic only */
        fclose(out);
        /* the relay's index and synced position, which say how far the file may be read */
        char cmd2[1200];
        snprintf(cmd2, sizeof cmd2, "cp '%s/relay.index' '%s/relay.meta' '%s/'", rdir, rdir, dir2);
        assert_int_equal(system(cmd2), 0);
        char extra[1024];
        snprintf(extra, sizeof extra, ",%s,\"binlog_name\":\"%s\",\"binlog_pos\":%u,"
                 "\"relay_dir\":\"%s\"", RULES, first, 4 + fde_len, dir2);
        o = rd_options("rl-fde", extra);
        rd fde;
        assert_int_equal(rd_open(&fde, o, 1), 0);
        free(o);
        assert_false(rd_wait(&fde, failed_pred, NULL, 1));
        out = fopen(dst, "ab");
        assert_non_null(out);
        assert_int_equal(fwrite(whole + 4, 1, n - 4, out), n - 4);
        fclose(out);
        int some = NTXN / 2;
        assert_true(rd_wait(&fde, commits_at_least, &some, 30));
        assert_int_equal(fde.failed, 0);
        rd_close(&fde);
    }

    /* A position the relay never held: a clear failure, not a silent wait. */
    rd gone;
    o = opts("rl-gone", "mysql-bin.000000", rdir);
    assert_int_equal(rd_open(&gone, o, 1), 0);
    free(o);
    assert_true(rd_wait(&gone, failed_pred, NULL, 30));
    sl_error e;
    rd_error(&gone, &e);
    assert_non_null(strstr(e.msg, "no longer holds (mysql-bin.000000, 4)"));
    rd_close(&gone);

    /* Purge: refused while a reader needs a file before the one named, refused for a file the
     * relay does not hold; then the files before `last` go, and a reader that needs them fails
     * clearly while one that starts at `last` reads. */
    memset(&err, 0, sizeof err);
    assert_int_equal(sl_relay_purge(relay, last, first, &err), SL_ESTATE);
    assert_non_null(strstr(err.msg, first));
    assert_int_equal(sl_relay_purge(relay, "mysql-bin.999998", NULL, &err), SL_ENOENT);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", rdir, first);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(sl_relay_purge(relay, last, last, &err), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/%s", rdir, last);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/relay.index", rdir);
    FILE *ix = fopen(path, "r");
    assert_non_null(ix);
    char line[300];
    assert_non_null(fgets(line, sizeof line, ix));
    line[strcspn(line, "\n")] = '\0';
    assert_string_equal(line, last);
    fclose(ix);
    rd purged;
    o = opts("rl-purged", first, rdir);
    assert_int_equal(rd_open(&purged, o, 1), 0);
    free(o);
    assert_true(rd_wait(&purged, failed_pred, NULL, 30));
    rd_error(&purged, &e);
    assert_non_null(strstr(e.msg, "no longer holds"));
    rd_close(&purged);
    sqlf(db, "INSERT INTO rl_test.t (id, v) VALUES (1000, 'after purge')");
    rd tail;
    o = opts("rl-tail", last, rdir);
    assert_int_equal(rd_open(&tail, o, 1), 0);
    free(o);
    int one = 1;
    assert_true(rd_wait(&tail, commits_at_least, &one, 30));
    rd_close(&tail);

    sl_relay_stop(relay);
    void *rc;
    pthread_join(th, &rc);
    assert_int_equal((int)(intptr_t)rc, SL_ESTOPPED);
    sl_relay_free(relay);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    sqlf(db, "DROP DATABASE rl_test");
    mysql_close(db);
}

/* The first line of dir/name into out ("" when none). */
static void first_line(const char *dir, const char *name, char *out, size_t cap)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f && fgets(out, (int)cap, f))
        out[strcspn(out, "\n")] = '\0';
    if (f)
        fclose(f);
}

/* first_line once the relay has written one (up to 30 s): a reader may see its file set aside
 * before the relay names the next, and a new relay.index is created before its first name is
 * appended. */
static void wait_first_line(const char *dir, const char *name, char *out, size_t cap)
{
    for (int i = 0; i < 300; i++) {
        first_line(dir, name, out, cap);
        if (out[0])
            return;
        usleep(100000);
    }
}

static int exists(const char *dir, const char *name)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* The source keeps its current file only; that file into cur. */
static void purge_all_but_current(MYSQL *db, char *cur, size_t cap)
{
    unsigned long long p;
    master_pos(db, cur, cap, &p);
    for (int tries = 0; tries < 100; tries++) {
        sqlf(db, "PURGE BINARY LOGS TO '%s'", cur);
        mysql_query(db, "SHOW BINARY LOGS");
        MYSQL_RES *res = mysql_store_result(db);
        int one = res && mysql_num_rows(res) == 1;
        mysql_free_result(res);
        if (one)
            return;
        usleep(100000);
    }
    fail_msg("the source kept more than %s", cur);
}

static void relay_start(sl_relay_opts *ro, sl_relay **relay, pthread_t *th)
{
    sl_error err = { 0 };
    assert_int_equal(sl_relay_new(ro, relay, &err), 0);
    pthread_create(th, NULL, relay_thread, *relay);
}

static void relay_end(sl_relay *relay, pthread_t th)
{
    sl_relay_stop(relay);
    void *rc;
    pthread_join(th, &rc);
    assert_int_equal((int)(intptr_t)rc, SL_ESTOPPED);
    sl_relay_free(relay);
}

static int failed_1236(rd *r, const char *at)
{
    sl_error e;
    rd_error(r, &e);
    if (!strstr(e.msg, "errno 1236") || !strstr(e.msg, at))
        fprintf(stderr, "unexpected error: %s\n", e.msg);
    return strstr(e.msg, "errno 1236") && strstr(e.msg, at);
}

/*
 * A relay directory whose continue point the source purged (the relay stopped meanwhile): the
 * relay opened on it again sets its files aside in stale/ and starts again at the source's
 * oldest file (no task position given) instead of stopping on errno 1236. A reader that waited
 * at the end of the old last file sees it leave and asks the source, which answers 1236 for
 * that position; so does a reader whose position is before the restart; a reader of the new
 * file reads it. A crash after the set-aside and before the next file was named starts again
 * at the source's oldest file too, not at its current one.
 */
static void test_stale_relay_set_aside(void **state)
{
    MYSQL *db = src_connect();
    sqlf(db, "DROP DATABASE IF EXISTS rl_test");
    sqlf(db, "CREATE DATABASE rl_test");
    sqlf(db, "CREATE TABLE rl_test.t (id INT PRIMARY KEY, v VARCHAR(64))");
    sqlf(db, "FLUSH BINARY LOGS");
    char first[256], old_last[256], restart[256], cur[256], line[300];
    unsigned long long p;
    master_pos(db, first, sizeof first, &p);
    char dir[] = "/tmp/sluice-relay-stale.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char rdir[300], sdir[320];
    snprintf(rdir, sizeof rdir, "%s/relay", dir);
    snprintf(sdir, sizeof sdir, "%s/stale", rdir);
    sl_relay_opts ro = {
        .dir = rdir, .start_file = first, .server_id = 4100000003u, .sync_ms = 100,
        .heartbeat_ms = 200,
        .source = { .host = env_or_die("SLUICE_SOURCE_HOST"),
                    .port = atoi(env_or_die("SLUICE_SOURCE_PORT")),
                    .user = env_or_die("SLUICE_SOURCE_USER"),
                    .password = getenv("SLUICE_SOURCE_PASSWORD") },
    };
    sl_relay *relay;
    pthread_t th;
    relay_start(&ro, &relay, &th);
    for (int i = 1; i <= 10; i++) {
        sqlf(db, "INSERT INTO rl_test.t VALUES (%d, 'v%d')", i, i);
        if (i == 5)
            sqlf(db, "FLUSH BINARY LOGS");
    }
    master_pos(db, old_last, sizeof old_last, &p);
    rd waiting;
    char *o = opts("rl-waiting", first, rdir);
    assert_int_equal(rd_open(&waiting, o, 1), 0);
    free(o);
    int ten = 10;
    assert_true(rd_wait(&waiting, commits_at_least, &ten, 60));
    relay_end(relay, th);

    /* The relay stopped, the source rotates and purges past everything it holds. */
    for (int i = 11; i <= 13; i++) {
        sqlf(db, "INSERT INTO rl_test.t VALUES (%d, 'v%d')", i, i);
        sqlf(db, "FLUSH BINARY LOGS");
    }
    sqlf(db, "INSERT INTO rl_test.t VALUES (14, 'v14')");
    purge_all_but_current(db, restart, sizeof restart);
    assert_false(waiting.failed);

    ro.start_file = "";
    relay_start(&ro, &relay, &th);
    assert_true(rd_wait(&waiting, failed_pred, NULL, 30));
    assert_true(failed_1236(&waiting, old_last));
    rd_close(&waiting);
    wait_first_line(rdir, "relay.index", line, sizeof line);
    assert_string_equal(line, restart);
    first_line(rdir, "relay.restart", line, sizeof line);
    assert_string_equal(line, restart);
    assert_true(exists(sdir, first) && exists(sdir, old_last) && exists(sdir, "relay.index") &&
                exists(sdir, "relay.meta"));
    assert_false(exists(rdir, first) || exists(rdir, old_last));

    /* Before the restart: the source answers for it (1236). On the new file: read. */
    rd before;
    o = opts("rl-before", first, rdir);
    assert_int_equal(rd_open(&before, o, 1), 0);
    free(o);
    assert_true(rd_wait(&before, failed_pred, NULL, 30));
    assert_true(failed_1236(&before, first));
    rd_close(&before);
    rd fresh;
    o = opts("rl-fresh", restart, rdir);
    assert_int_equal(rd_open(&fresh, o, 1), 0);
    free(o);
    sqlf(db, "INSERT INTO rl_test.t VALUES (15, 'v15')");
    int two = 2;
    assert_true(rd_wait(&fresh, commits_at_least, &two, 30));
    assert_false(fresh.failed);
    char *st = fresh.d->status(fresh.self);
    assert_non_null(strstr(st, "\"binlog_type\":\"local\""));
    free(st);
    rd_close(&fresh);
    relay_end(relay, th);

    /* A crash after the set-aside, before the next file was named: stale/relay.index and no
     * relay.index. The relay starts again at the source's oldest file, not its current one. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && rm -f relay.index relay.meta relay.restart '%s'", rdir,
             restart);
    assert_int_equal(system(cmd), 0);
    sqlf(db, "FLUSH BINARY LOGS");
    master_pos(db, cur, sizeof cur, &p);
    assert_string_not_equal(cur, restart);
    relay_start(&ro, &relay, &th);
    wait_first_line(rdir, "relay.index", line, sizeof line);
    assert_string_equal(line, restart);
    relay_end(relay, th);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    sqlf(db, "DROP DATABASE rl_test");
    mysql_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_reads_what_remote_reads),
        cmocka_unit_test(test_stale_relay_set_aside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
