/*
 * test_lua_e2e.c - the Lua examples (examples/lua/) end to end on the sandbox, run the way users
 * get them: each example task compiled by sl_task_compile (which inserts lua-hook), its "full"
 * phase (mysql-dump -> route -> lua-hook -> loader) and then its "incremental" phase
 * (binlog-reader -> event-filter -> route -> lua-hook -> mysql-sink) run by the core runtime.
 *
 * Target rows are compared byte for byte with the source rows passed through an SQL mirror of
 * each script (plus literal spot checks), rows written in the incremental phase must come out as
 * the same rows did in the full phase, a script error and an endless loop pause the task with
 * file:line and apply nothing past the failing row (so does a pattern that backtracks for
 * hours inside one string.find), two scripts of a task cannot change each other's libraries, a
 * chunk that a script split over several tables resumes without losing or reloading a part, and
 * a script naming one source's tables leaves another source's same-named tables alone. Needs
 * SLUICE_SOURCE_* / SLUICE_TARGET_*.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <mysql.h>
#include <sluice/compiler.h>
#include <sluice/runtime.h>

static MYSQL *src, *dst;
static sl_registry *reg;
static sl_scheduler *sched;
static char tmpdir[256];

/* ---- SQL helpers ------------------------------------------------------------------------------ */

static const char *need(const char *k)
{
    const char *v = getenv(k);
    if (!v || !*v) {
        fprintf(stderr, "FAIL: %s is not set: run eval \"$(scripts/sandbox env)\"\n", k);
        exit(1);
    }
    return v;
}

static const char *pass_of(const char *who)
{
    const char *v = getenv(strcmp(who, "SOURCE") == 0 ? "SLUICE_SOURCE_PASSWORD" : "SLUICE_TARGET_PASSWORD");
    return v ? v : "";
}

static MYSQL *open_db(const char *who)
{
    char k[4][64];
    snprintf(k[0], 64, "SLUICE_%s_HOST", who);
    snprintf(k[1], 64, "SLUICE_%s_PORT", who);
    snprintf(k[2], 64, "SLUICE_%s_USER", who);
    MYSQL *db = mysql_init(NULL);
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(db, need(k[0]), need(k[2]), pass_of(who), NULL, (unsigned)atoi(need(k[1])),
                            NULL, CLIENT_MULTI_STATEMENTS)) {
        fprintf(stderr, "FAIL: connect %s: %s\n", who, mysql_error(db));
        exit(1);
    }
    return db;
}

static void sql(MYSQL *db, const char *fmt, ...)
{
    char *q;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&q, fmt, ap) >= 0);
    va_end(ap);
    if (mysql_real_query(db, q, strlen(q)) != 0)
        fail_msg("%s\n  in: %.400s", mysql_error(db), q);
    do {
        MYSQL_RES *r = mysql_store_result(db);
        if (r)
            mysql_free_result(r);
        if (mysql_errno(db))
            fail_msg("%s\n  in: %.400s", mysql_error(db), q);
    } while (mysql_next_result(db) == 0);
    free(q);
}

/* First column of the first row ("NULL" for NULL, "" for no row). A ring of 4 static buffers. */
static const char *one(MYSQL *db, const char *fmt, ...)
{
    static char out[4][1024];
    static int k;
    char *o = out[k++ & 3], *q;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&q, fmt, ap) >= 0);
    va_end(ap);
    if (mysql_real_query(db, q, strlen(q)) != 0)
        fail_msg("%s\n  in: %.400s", mysql_error(db), q);
    free(q);
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    snprintf(o, 1024, "%s", !row ? "" : row[0] ? row[0] : "NULL");
    if (r)
        mysql_free_result(r);
    return o;
}

/* Every row of a query as text: fields joined by '|', NULL as \N, rows ended by '\n'. Caller frees. */
static char *rows_of(MYSQL *db, const char *q, long *nrows)
{
    if (mysql_real_query(db, q, strlen(q)) != 0)
        fail_msg("%s\n  in: %.400s", mysql_error(db), q);
    MYSQL_RES *r = mysql_store_result(db);
    assert_non_null(r);
    size_t cap = 1024, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    MYSQL_ROW row;
    unsigned nf = mysql_num_fields(r);
    long n = 0;
    while ((row = mysql_fetch_row(r))) {
        unsigned long *l = mysql_fetch_lengths(r);
        for (unsigned i = 0; i < nf; i++) {
            size_t need_ = (row[i] ? l[i] : 2) + 3;
            if (len + need_ >= cap) {
                while (len + need_ >= cap)
                    cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            if (i)
                out[len++] = '|';
            if (row[i]) {
                memcpy(out + len, row[i], l[i]);
                len += l[i];
            } else {
                memcpy(out + len, "\\N", 2);
                len += 2;
            }
        }
        out[len++] = '\n';
        out[len] = '\0';
        n++;
    }
    mysql_free_result(r);
    if (nrows)
        *nrows = n;
    return out;
}

/* The rows of qa on db a equal the rows of qb on db b, in order, byte for byte. Returns the
 * number of rows. */
static long same_rows(MYSQL *a, const char *qa, MYSQL *b, const char *qb)
{
    long na = 0, nb = 0;
    char *ra = rows_of(a, qa, &na), *rb = rows_of(b, qb, &nb);
    if (strcmp(ra, rb) != 0) {
        const char *pa = ra, *pb = rb;
        while (*pa && *pa == *pb) /* first differing line */
            pa++, pb++;
        while (pa > ra && pa[-1] != '\n')
            pa--, pb--;
        fail_msg("rows differ (%ld vs %ld rows)\n  %s\n  %s\n  first difference:\n  expected: %.200s\n  "
                 "got:      %.200s", na, nb, qa, qb, pa, pb);
    }
    free(ra);
    free(rb);
    return na;
}

/* ---- compiling and running example tasks ---------------------------------------------------- */

static void reset_task(const char *task)
{
    sql(dst, "CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS dm_meta.`%s_loader_checkpoint`, "
             "dm_meta.`%s_syncer_checkpoint`", task, task);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/data/%s'", tmpdir, task);
    assert_int_equal(system(cmd), 0);
}

/* An example task (examples/lua/<example>.task.json) pointed at the sandbox: its name, the
 * target_config and the dump directory are the test's; everything else is as shipped. The
 * task's checkpoints are left alone (reset_task starts it afresh). */
static json_t *example_task(const char *example, const char *task)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.task.json", EXAMPLES_DIR, example);
    json_error_t je;
    json_t *t = json_load_file(path, 0, &je);
    if (!t)
        fail_msg("%s: %s", path, je.text);
    json_object_set_new(t, "name", json_string(task));
    json_object_set_new(t, "target_config",
                        json_pack("{s:s,s:i,s:s,s:s}", "host", need("SLUICE_TARGET_HOST"), "port",
                                  atoi(need("SLUICE_TARGET_PORT")), "user", need("SLUICE_TARGET_USER"),
                                  "password", pass_of("TARGET")));
    char dd[300];
    snprintf(dd, sizeof dd, "%s/data", tmpdir);
    json_t *fm = json_object_get(json_object_get(t, "source_config"), "full_migrate_conf");
    json_object_set_new(fm, "data_dir", json_string(dd));
    return t;
}

/* The example task with its table and script replaced (for the error tests). */
static json_t *custom_task(const char *task, const char *schema, const char *table, const char *script)
{
    json_t *t = example_task("mask_email", task);
    json_t *rs = json_object_get(json_array_get(json_object_get(t, "table_migrate_rule"), 0), "source");
    json_object_set_new(rs, "schema", json_string(schema));
    json_object_set_new(rs, "table", json_string(table));
    json_t *ls = json_array_get(json_object_get(t, "lua_scripts"), 0);
    json_t *lt = json_array_get(json_object_get(ls, "tables"), 0);
    json_object_set_new(lt, "schema", json_string(schema));
    json_object_set_new(lt, "table", json_string(table));
    json_object_set_new(ls, "file", json_string(script));
    return t;
}

/* Compile (consumes task) with two known sources, both the sandbox source. */
static sl_task_plan *compile(json_t *task)
{
    char *txt = json_dumps(task, JSON_COMPACT);
    json_decref(task);
    assert_non_null(txt);
    sl_source_def defs[2];
    for (int i = 0; i < 2; i++)
        defs[i] = (sl_source_def){ .name = i ? "mysql-02" : "mysql-01", .host = need("SLUICE_SOURCE_HOST"),
                                   .port = atoi(need("SLUICE_SOURCE_PORT")), .user = need("SLUICE_SOURCE_USER"),
                                   .password = pass_of("SOURCE"), .flavor = "mariadb" };
    sl_compile_opts co = { .registry = reg, .plugin_dir = PLUGIN_DIR, .sources = defs, .nsources = 2,
                           .check_sources = 1, .base_dir = EXAMPLES_DIR };
    sl_task_plan *p = NULL;
    sl_diags d = { 0 };
    int rc = sl_task_compile(txt, strlen(txt), &co, &p, &d);
    if (rc != 0) {
        char *f = sl_diags_format(&d);
        fail_msg("compile: %s\n%s", f ? f : "", txt);
    }
    sl_diags_free(&d);
    free(txt);
    return p;
}

static const sl_pipeline_spec *phase_of(const sl_task_plan *p, size_t sub, const char *name)
{
    assert_true(sub < p->nsubtasks);
    const sl_subtask_plan *s = &p->subtasks[sub];
    for (size_t i = 0; i < s->nphases; i++)
        if (strcmp(s->phase_names[i], name) == 0)
            return s->phases[i];
    fail_msg("no phase %s in the plan", name);
    return NULL;
}

/* 1 if the phase has a stage of this plugin. */
static int has_plugin(const sl_pipeline_spec *spec, const char *plugin)
{
    for (size_t i = 0; i < spec->nstages; i++)
        if (strcmp(spec->stages[i].plugin, plugin) == 0)
            return 1;
    return 0;
}

static sl_pipeline *start_phase(const sl_task_plan *p, size_t sub, const char *name)
{
    const sl_pipeline_spec *spec = phase_of(p, sub, name);
    assert_true(has_plugin(spec, "lua-hook") || sub > 0);
    sl_pipeline *pl = NULL;
    sl_error e = { 0 };
    if (sl_pipeline_new(sched, reg, spec, NULL, &pl, &e) != 0)
        fail_msg("pipeline %s: %s", name, e.msg);
    if (sl_pipeline_start(pl) != 0) {
        sl_pipeline_error(pl, &e);
        fail_msg("start %s: %s", name, e.msg);
    }
    return pl;
}

/* Run a phase that ends (full) to its end; returns its stage and the error text in err. */
static sl_stage run_to_end(const sl_task_plan *p, size_t sub, const char *name, sl_error *err)
{
    sl_pipeline *pl = start_phase(p, sub, name);
    sl_stage st = sl_pipeline_wait(pl, 300000);
    sl_pipeline_error(pl, err);
    sl_pipeline_free(pl);
    return st;
}

static void run_full(const sl_task_plan *p, size_t sub)
{
    sl_error e = { 0 };
    sl_stage st = run_to_end(p, sub, "full", &e);
    if (st != SL_STAGE_FINISHED)
        fail_msg("full phase: %s: %s", sl_stage_name(st), e.msg);
}

static void master_pos(char *file, size_t n, unsigned long long *pos)
{
    if (mysql_query(src, "SHOW MASTER STATUS") != 0)
        fail_msg("%s", mysql_error(src));
    MYSQL_RES *r = mysql_store_result(src);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    assert_non_null(row);
    snprintf(file, n, "%s", row[0]);
    *pos = strtoull(row[1], NULL, 10);
    mysql_free_result(r);
}

/* The task's global syncer checkpoint of source mysql-01 ("" when there is none). */
static void ckpt_pos(const char *task, char *file, size_t n, unsigned long long *pos)
{
    snprintf(file, n, "%s", one(dst, "SELECT binlog_name FROM dm_meta.`%s_syncer_checkpoint` WHERE "
                                     "source_name = 'mysql-01' AND worker = 0", task));
    *pos = strtoull(one(dst, "SELECT binlog_pos FROM dm_meta.`%s_syncer_checkpoint` WHERE "
                             "source_name = 'mysql-01' AND worker = 0", task), NULL, 10);
}

/* Wait until the running incremental phase has applied everything written on the source so far
 * (its checkpoint is at the source's end). The last transaction written must keep a row: the sink
 * writes the position of transactions whose rows were all dropped at most once a second, with the
 * next batch, so a dropped tail only shows in the checkpoint when more comes (or at pause). */
static void catch_up(sl_pipeline *pl, const char *task)
{
    char end[256], at[256];
    unsigned long long endpos, pos;
    master_pos(end, sizeof end, &endpos);
    for (int i = 0; i < 1200; i++) {
        if (sl_pipeline_stage(pl) != SL_STAGE_RUNNING)
            break;
        ckpt_pos(task, at, sizeof at, &pos);
        if (at[0] && (strcmp(at, end) > 0 || (strcmp(at, end) == 0 && pos >= endpos)))
            return;
        usleep(100000);
    }
    sl_error e = { 0 };
    sl_pipeline_error(pl, &e);
    sl_stage st = sl_pipeline_stage(pl);
    sl_pipeline_stop(pl);
    sl_pipeline_free(pl);
    ckpt_pos(task, at, sizeof at, &pos);
    fail_msg("the incremental phase did not reach (%s, %llu): checkpoint (%s, %llu), stage %s, error: %s",
             end, endpos, at, pos, sl_stage_name(st), e.msg);
}

static void stop_phase(sl_pipeline *pl)
{
    assert_int_equal(sl_pipeline_stage(pl), SL_STAGE_RUNNING);
    sl_pipeline_stop(pl);
    sl_pipeline_free(pl);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- mask_email ------------------------------------------------------------------------------- */

static void insert_users(int from, int to, int offset)
{
    for (int i = from; i <= to; i++) {
        const int k = i % 5;
        char email[128];
        if (k == 0)
            snprintf(email, sizeof email, "'user%d@example.com'", i);
        else if (k == 1)
            snprintf(email, sizeof email, "NULL");
        else if (k == 2)
            snprintf(email, sizeof email, "'not-an-address-%d'", i);
        else if (k == 3)
            snprintf(email, sizeof email, "'zo\xc3\xab%d@ex\xc3\xa4mple.org'", i);
        else
            snprintf(email, sizeof email, "'%d@x.io'", i);
        sql(src, "INSERT INTO shop.users VALUES (%d, %s, '%s %d')", i + offset, email,
            i % 7 == 0 ? "O''Brien" : "name", i);
    }
}

/* mask_email.lua in SQL (ASCII first characters only: Lua's sub(1, 1) is a byte). */
#define MASK_SRC "SELECT id, IF(email REGEXP '^[^@]+@.+$', CONCAT(LEFT(email, 1), '****@', " \
                 "SUBSTRING(email, LOCATE('@', email) + 1)), email), name FROM shop.users ORDER BY id"
#define MASK_DST "SELECT id, email, name FROM shop.users ORDER BY id"

static void test_mask_email(void **state)
{
    const char *task = "luae2e-mask";
    reset_task(task);
    sql(src, "CREATE DATABASE IF NOT EXISTS shop; DROP TABLE IF EXISTS shop.users; "
             "CREATE TABLE shop.users (id INT PRIMARY KEY, email VARCHAR(100) NULL, name VARCHAR(50)) "
             "DEFAULT CHARSET = utf8mb4");
    sql(dst, "DROP TABLE IF EXISTS shop.users");
    insert_users(1, 40, 0);
    sl_task_plan *p = compile(example_task("mask_email", task));
    assert_string_equal(p->task_mode, "all");

    run_full(p, 0);
    assert_int_equal(same_rows(src, MASK_SRC, dst, MASK_DST), 40);
    assert_string_equal(one(dst, "SELECT email FROM shop.users WHERE id = 5"), "u****@example.com");
    assert_string_equal(one(dst, "SELECT email FROM shop.users WHERE id = 3"), "z****@ex\xc3\xa4mple.org");
    assert_string_equal(one(dst, "SELECT email FROM shop.users WHERE id = 2"), "not-an-address-2");
    assert_string_equal(one(dst, "SELECT email FROM shop.users WHERE id = 1"), "NULL");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM shop.users WHERE email LIKE 'user%%'"), "0");

    sl_pipeline *pl = start_phase(p, 0, "incremental");
    /* the same rows again: the incremental phase must produce what the full phase did */
    insert_users(1, 40, 1000);
    catch_up(pl, task);
    same_rows(dst, "SELECT id - 1000, email, name FROM shop.users WHERE id > 1000 ORDER BY id",
              dst, "SELECT id, email, name FROM shop.users WHERE id < 1000 ORDER BY id");
    assert_int_equal(same_rows(src, MASK_SRC, dst, MASK_DST), 80);

    /* updates and deletes find the masked rows (both images are masked) */
    sql(src, "UPDATE shop.users SET email = 'new.mail@corp.example' WHERE id = 2");
    sql(src, "UPDATE shop.users SET name = 'renamed' WHERE id = 5");
    sql(src, "UPDATE shop.users SET email = NULL WHERE id = 3");
    sql(src, "DELETE FROM shop.users WHERE id = 10");
    sql(src, "BEGIN; UPDATE shop.users SET email = CONCAT('b', email) WHERE id BETWEEN 1011 AND 1020; "
             "DELETE FROM shop.users WHERE id = 1005; COMMIT");
    catch_up(pl, task);
    stop_phase(pl);
    assert_int_equal(same_rows(src, MASK_SRC, dst, MASK_DST), 78);
    assert_string_equal(one(dst, "SELECT email FROM shop.users WHERE id = 2"), "n****@corp.example");
    assert_string_equal(one(dst, "SELECT CONCAT(email, ' ', name) FROM shop.users WHERE id = 5"),
                        "u****@example.com renamed");
    assert_string_equal(one(dst, "SELECT email FROM shop.users WHERE id = 1015"), "b****@example.com");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM shop.users WHERE id IN (10, 1005)"), "0");
    sl_task_plan_free(p);
}

/* ---- drop_soft_deleted -------------------------------------------------------------------------- */

static void insert_posts(int from, int to, int offset)
{
    for (int i = from; i <= to; i++) {
        char del[64];
        if (i % 4 == 2)     /* not the last row: see catch_up */
            snprintf(del, sizeof del, "'2024-01-%02d 10:00:00'", i % 28 + 1);
        else
            snprintf(del, sizeof del, "NULL");
        sql(src, "INSERT INTO blog.posts VALUES (%d, 'title %d', REPEAT('body %d ', %d), %s)", i + offset, i, i,
            i % 9 + 1, del);
    }
}

#define POSTS_SRC "SELECT id, title, body, deleted_at FROM blog.posts WHERE deleted_at IS NULL ORDER BY id"
#define POSTS_DST "SELECT id, title, body, deleted_at FROM blog.posts ORDER BY id"

static void test_drop_soft_deleted(void **state)
{
    const char *task = "luae2e-soft";
    reset_task(task);
    sql(src, "CREATE DATABASE IF NOT EXISTS blog; DROP TABLE IF EXISTS blog.posts; "
             "CREATE TABLE blog.posts (id INT PRIMARY KEY, title VARCHAR(100), body TEXT, deleted_at DATETIME NULL)");
    sql(dst, "DROP TABLE IF EXISTS blog.posts");
    insert_posts(1, 40, 0);
    sl_task_plan *p = compile(example_task("drop_soft_deleted", task));

    run_full(p, 0);
    assert_int_equal(same_rows(src, POSTS_SRC, dst, POSTS_DST), 30);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM blog.posts WHERE id %% 4 = 2"), "0");

    sl_pipeline *pl = start_phase(p, 0, "incremental");
    insert_posts(1, 40, 1000);
    catch_up(pl, task);
    same_rows(dst, "SELECT id - 1000, title, body, deleted_at FROM blog.posts WHERE id > 1000 ORDER BY id",
              dst, "SELECT id, title, body, deleted_at FROM blog.posts WHERE id < 1000 ORDER BY id");
    assert_int_equal(same_rows(src, POSTS_SRC, dst, POSTS_DST), 60);

    sql(src, "UPDATE blog.posts SET deleted_at = '2024-06-01 00:00:00' WHERE id = 1");  /* soft delete */
    sql(src, "UPDATE blog.posts SET deleted_at = NULL, title = 'restored' WHERE id = 2"); /* dumped as deleted */
    sql(src, "UPDATE blog.posts SET title = 'still gone' WHERE id = 6");                  /* deleted both */
    sql(src, "DELETE FROM blog.posts WHERE id IN (10, 3)");                               /* deleted / live */
    sql(src, "UPDATE blog.posts SET body = 'edited' WHERE id = 4");
    sql(src, "BEGIN; UPDATE blog.posts SET deleted_at = NULL WHERE id = 1006; "
             "UPDATE blog.posts SET deleted_at = '2024-06-02 00:00:00' WHERE id = 1005; COMMIT");
    catch_up(pl, task);
    stop_phase(pl);
    assert_int_equal(same_rows(src, POSTS_SRC, dst, POSTS_DST), 59);
    assert_string_equal(one(dst, "SELECT title FROM blog.posts WHERE id = 2"), "restored");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM blog.posts WHERE id IN (1, 3, 6, 10, 1005)"), "0");
    assert_string_equal(one(dst, "SELECT body FROM blog.posts WHERE id = 4"), "edited");
    sl_task_plan_free(p);
}

/* ---- computed_column ---------------------------------------------------------------------------- */

static void insert_customers(int from, int to, int offset)
{
    for (int i = from; i <= to; i++) {
        char first[64], last[64];
        snprintf(first, sizeof first, i % 4 < 2 ? (i % 3 ? "'Ada%d'" : "'Zo\xc3\xab%d'") : "NULL", i);
        snprintf(last, sizeof last, i % 4 == 0 || i % 4 == 2 ? "'Lovelace%d'" : "NULL", i);
        sql(src, "INSERT INTO crm.customers VALUES (%d, %s, %s, 'c%d@example.com')", i + offset, first, last, i);
    }
}

#define CUST_SRC "SELECT id, first_name, last_name, IF(first_name IS NOT NULL AND last_name IS NOT NULL, " \
                 "CONCAT(first_name, ' ', last_name), COALESCE(first_name, last_name)), email " \
                 "FROM crm.customers ORDER BY id"
#define CUST_DST "SELECT id, first_name, last_name, full_name, email FROM crm.customers ORDER BY id"

static void test_computed_column(void **state)
{
    const char *task = "luae2e-computed";
    reset_task(task);
    static const char *cols = "id INT PRIMARY KEY, first_name VARCHAR(50) NULL, last_name VARCHAR(50) NULL, "
                              "email VARCHAR(100)";
    sql(src, "CREATE DATABASE IF NOT EXISTS crm; DROP TABLE IF EXISTS crm.customers; "
             "CREATE TABLE crm.customers (%s) DEFAULT CHARSET = utf8mb4", cols);
    /* the target has the derived column (docs/lua.md): the loader's CREATE ... IF NOT EXISTS keeps it */
    sql(dst, "CREATE DATABASE IF NOT EXISTS crm; DROP TABLE IF EXISTS crm.customers; "
             "CREATE TABLE crm.customers (%s, full_name VARCHAR(101) NULL) DEFAULT CHARSET = utf8mb4", cols);
    insert_customers(1, 40, 0);
    sl_task_plan *p = compile(example_task("computed_column", task));

    run_full(p, 0);
    assert_int_equal(same_rows(src, CUST_SRC, dst, CUST_DST), 40);
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 4"), "Ada4 Lovelace4");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 12"), "Zo\xc3\xab" "12 Lovelace12");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 9"), "Zo\xc3\xab" "9");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 1"), "Ada1");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 2"), "Lovelace2");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 3"), "NULL");

    sl_pipeline *pl = start_phase(p, 0, "incremental");
    insert_customers(1, 40, 1000);
    catch_up(pl, task);
    same_rows(dst, "SELECT id - 1000, first_name, last_name, full_name, email FROM crm.customers "
                   "WHERE id > 1000 ORDER BY id",
              dst, "SELECT id, first_name, last_name, full_name, email FROM crm.customers WHERE id < 1000 ORDER BY id");
    assert_int_equal(same_rows(src, CUST_SRC, dst, CUST_DST), 80);

    sql(src, "UPDATE crm.customers SET first_name = 'Grace' WHERE id = 4");
    sql(src, "UPDATE crm.customers SET last_name = NULL WHERE id = 8");
    sql(src, "UPDATE crm.customers SET first_name = 'New' WHERE id = 3");
    sql(src, "UPDATE crm.customers SET email = 'x@y.z' WHERE id = 1002");   /* derived value recomputed */
    sql(src, "DELETE FROM crm.customers WHERE id IN (5, 1006)");
    catch_up(pl, task);
    stop_phase(pl);
    assert_int_equal(same_rows(src, CUST_SRC, dst, CUST_DST), 78);
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 4"), "Grace Lovelace4");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 8"), "Ada8");
    assert_string_equal(one(dst, "SELECT full_name FROM crm.customers WHERE id = 3"), "New");
    sl_task_plan_free(p);
}

/* ---- route_by_value ----------------------------------------------------------------------------- */

static void insert_orders(int from, int to, int offset)
{
    static const char *const regions[] = { "'eu'", "'US'", "'apac'", "NULL", "'Eu'" };
    for (int i = from; i <= to; i++)
        sql(src, "INSERT INTO shop.orders VALUES (%d, %s, %d.%02d, 'note %d')", i + offset, regions[i % 5],
            i * 10, i % 100, i);
}

#define ORD_COLS "id, region, amount, note"
#define ORD_SRC(where) "SELECT " ORD_COLS " FROM shop.orders WHERE " where " ORDER BY id"
#define ORD_WHERE_EU "LOWER(region) = 'eu'"
#define ORD_WHERE_US "LOWER(region) = 'us'"
#define ORD_WHERE_REST "(region IS NULL OR LOWER(region) NOT IN ('eu', 'us'))"

/* Every routed table holds exactly its share of the source rows. */
static long check_orders(void)
{
    long n = same_rows(src, ORD_SRC(ORD_WHERE_EU), dst, "SELECT " ORD_COLS " FROM dw.orders_eu ORDER BY id");
    n += same_rows(src, ORD_SRC(ORD_WHERE_US), dst, "SELECT " ORD_COLS " FROM dw.orders_us ORDER BY id");
    n += same_rows(src, ORD_SRC(ORD_WHERE_REST), dst, "SELECT " ORD_COLS " FROM dw.orders ORDER BY id");
    return n;
}

static void test_route_by_value(void **state)
{
    const char *task = "luae2e-route";
    reset_task(task);
    static const char *cols = "id INT PRIMARY KEY, region VARCHAR(8) NULL, amount DECIMAL(10,2), note VARCHAR(40)";
    sql(src, "CREATE DATABASE IF NOT EXISTS shop; DROP TABLE IF EXISTS shop.orders; CREATE TABLE shop.orders (%s)", cols);
    /* the tables the script routes to must exist (docs/lua.md); dw.orders comes from the task's route */
    sql(dst, "DROP DATABASE IF EXISTS dw; CREATE DATABASE dw; CREATE TABLE dw.orders_eu (%s); "
             "CREATE TABLE dw.orders_us (%s)", cols, cols);
    insert_orders(1, 40, 0);
    sl_task_plan *p = compile(example_task("route_by_value", task));

    run_full(p, 0);
    assert_int_equal(check_orders(), 40);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM dw.orders_eu"), "16");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM dw.orders_us"), "8");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM dw.orders"), "16");
    /* one dumped chunk, three parts: each part recorded under an id that names its target table
     * (and nothing else), so a resume re-creates the same parts whatever order rows come in */
    const char *ck = "SELECT GROUP_CONCAT(SUBSTRING_INDEX(chunk_id, '/', -1) ORDER BY chunk_id SEPARATOR ',') "
                     "FROM dm_meta.`luae2e-route_loader_checkpoint` WHERE source_name = 'mysql-01' AND chunk_id LIKE '%%/%%'";
    assert_string_equal(one(dst, ck), "dw.orders_eu,dw.orders_us");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM dm_meta.`%s_loader_checkpoint` WHERE chunk_id <> ''", task), "3");

    /* A crash between the parts of the chunk: the _us part and the finish marker were never
     * committed. The resumed full phase must load exactly the missing part: the rows of the parts
     * already loaded are not loaded again (a changed row there would be overwritten). */
    sql(dst, "DELETE FROM dm_meta.`%s_loader_checkpoint` WHERE chunk_id = '' OR chunk_id LIKE '%%/dw.orders_us'", task);
    sql(dst, "DELETE FROM dw.orders_us; UPDATE dw.orders_eu SET note = 'kept' WHERE id = 5; "
             "UPDATE dw.orders SET note = 'kept' WHERE id = 2");
    run_full(p, 0);
    same_rows(src, ORD_SRC(ORD_WHERE_US), dst, "SELECT " ORD_COLS " FROM dw.orders_us ORDER BY id");
    assert_string_equal(one(dst, "SELECT note FROM dw.orders_eu WHERE id = 5"), "kept");
    assert_string_equal(one(dst, "SELECT note FROM dw.orders WHERE id = 2"), "kept");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM dm_meta.`%s_loader_checkpoint`", task), "4");
    sql(dst, "UPDATE dw.orders_eu SET note = 'note 5' WHERE id = 5; UPDATE dw.orders SET note = 'note 2' WHERE id = 2");
    assert_int_equal(check_orders(), 40);

    sl_pipeline *pl = start_phase(p, 0, "incremental");
    insert_orders(1, 40, 1000);
    catch_up(pl, task);
    static const char *const tabs[] = { "dw.orders_eu", "dw.orders_us", "dw.orders" };
    for (int i = 0; i < 3; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "SELECT id - 1000, region, amount, note FROM %s WHERE id > 1000 ORDER BY id", tabs[i]);
        snprintf(b, sizeof b, "SELECT id, region, amount, note FROM %s WHERE id < 1000 ORDER BY id", tabs[i]);
        assert_true(same_rows(dst, a, dst, b) >= 8);
    }
    assert_int_equal(check_orders(), 80);

    sql(src, "UPDATE shop.orders SET amount = 1.23 WHERE id = 5");       /* eu */
    sql(src, "UPDATE shop.orders SET note = 'changed' WHERE id = 1");    /* us */
    sql(src, "DELETE FROM shop.orders WHERE id IN (6, 3)");              /* us, rest */
    sql(src, "BEGIN; UPDATE shop.orders SET amount = amount + 1 WHERE id BETWEEN 1001 AND 1010; "
             "DELETE FROM shop.orders WHERE id = 1010; COMMIT");
    catch_up(pl, task);
    stop_phase(pl);
    assert_int_equal(check_orders(), 77);
    assert_string_equal(one(dst, "SELECT amount FROM dw.orders_eu WHERE id = 5"), "1.23");
    assert_string_equal(one(dst, "SELECT note FROM dw.orders_us WHERE id = 1"), "changed");
    sl_task_plan_free(p);
}

/* ---- errors pause the task ------------------------------------------------------------------- */

static const char *BOOM_ON_3 =
    "-- fails on one row\n"
    "function on_row(ev)\n"
    "  if ev.after and ev.after.v == 3 then error('boom on ' .. ev.after.v) end\n"
    "  return true\n"
    "end\n";
static const char *BOOM_ON_13 =
    "-- fails on one row\n"
    "function on_row(ev)\n"
    "  if ev.after and ev.after.v == 13 then error('boom on ' .. ev.after.v) end\n"
    "  return true\n"
    "end\n";
static const char *FIXED =
    "-- fixed\n"
    "function on_row(ev)\n"
    "  return true\n"
    "end\n";

static void insert_t(const char *table, int from, int to)
{
    for (int i = from; i <= to; i++)
        sql(src, "INSERT INTO luae2e.`%s` VALUES (%d, %d)", table, i, i);
}

static void test_script_error(void **state)
{
    const char *task = "luae2e-error";
    reset_task(task);
    char script[512];
    snprintf(script, sizeof script, "%s/boom.lua", tmpdir);
    sql(src, "CREATE DATABASE IF NOT EXISTS luae2e; DROP TABLE IF EXISTS luae2e.t; "
             "CREATE TABLE luae2e.t (id INT PRIMARY KEY, v INT)");
    sql(dst, "DROP TABLE IF EXISTS luae2e.t");
    insert_t("t", 1, 5);

    /* full phase: the chunk holding the failing row is not loaded at all */
    write_file(script, BOOM_ON_3);
    sl_task_plan *p = compile(custom_task(task, "luae2e", "t", script));
    sl_error e = { 0 };
    sl_stage st = run_to_end(p, 0, "full", &e);
    sl_task_plan_free(p);
    assert_int_equal(st, SL_STAGE_PAUSED);
    if (!strstr(e.msg, "lua-hook: ") || !strstr(e.msg, "boom.lua:3: boom on 3"))
        fail_msg("full phase error: %s", e.msg);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.t"), "0");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM dm_meta.`%s_loader_checkpoint`", task), "0");

    /* fixed for the full phase; the incremental phase fails on v = 13 */
    write_file(script, BOOM_ON_13);
    p = compile(custom_task(task, "luae2e", "t", script));
    run_full(p, 0);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.t"), "5");
    sl_pipeline *pl = start_phase(p, 0, "incremental");
    insert_t("t", 6, 12);
    char f13[256];
    unsigned long long p13;
    master_pos(f13, sizeof f13, &p13);      /* where the failing row's transaction starts */
    insert_t("t", 13, 20);
    st = sl_pipeline_wait(pl, 60000);
    sl_pipeline_error(pl, &e);
    sl_pipeline_free(pl);
    sl_task_plan_free(p);
    assert_int_equal(st, SL_STAGE_PAUSED);
    if (!strstr(e.msg, "lua-hook: ") || !strstr(e.msg, "boom.lua:3: boom on 13") || !strstr(e.msg, "luae2e.t"))
        fail_msg("incremental error: %s", e.msg);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.t WHERE id >= 13"), "0");
    char at[256];
    unsigned long long pos;
    ckpt_pos(task, at, sizeof at, &pos);
    if (strcmp(at, f13) > 0 || (strcmp(at, f13) == 0 && pos > p13))
        fail_msg("checkpoint (%s, %llu) is past the failing row's transaction at (%s, %llu)", at, pos, f13, p13);

    /* resumed with the script fixed: starts again before the failing row, every row once */
    write_file(script, FIXED);
    p = compile(custom_task(task, "luae2e", "t", script));
    pl = start_phase(p, 0, "incremental");
    catch_up(pl, task);
    stop_phase(pl);
    sl_task_plan_free(p);
    assert_int_equal(same_rows(src, "SELECT id, v FROM luae2e.t ORDER BY id", dst,
                               "SELECT id, v FROM luae2e.t ORDER BY id"), 20);
}

static void test_endless_loop(void **state)
{
    const char *task = "luae2e-loop";
    reset_task(task);
    char script[512];
    snprintf(script, sizeof script, "%s/loop.lua", tmpdir);
    write_file(script, "function on_row(ev)\n"
                       "  while ev.after and ev.after.v == 7 do end\n"
                       "  return true\n"
                       "end\n");
    sql(src, "CREATE DATABASE IF NOT EXISTS luae2e; DROP TABLE IF EXISTS luae2e.l; "
             "CREATE TABLE luae2e.l (id INT PRIMARY KEY, v INT)");
    sql(dst, "DROP TABLE IF EXISTS luae2e.l");
    insert_t("l", 1, 3);
    sl_task_plan *p = compile(custom_task(task, "luae2e", "l", script));
    run_full(p, 0);
    sl_pipeline *pl = start_phase(p, 0, "incremental");
    insert_t("l", 4, 10);
    sl_stage st = sl_pipeline_wait(pl, 60000);
    sl_error e = { 0 };
    sl_pipeline_error(pl, &e);
    sl_pipeline_free(pl);
    sl_task_plan_free(p);
    assert_int_equal(st, SL_STAGE_PAUSED);
    if (!strstr(e.msg, "loop.lua:2: instruction budget of 1000000 exceeded in on_row"))
        fail_msg("budget error: %s", e.msg);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.l WHERE id >= 7"), "0");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.l WHERE id <= 3"), "3");
}

/* A pattern that backtracks for hours inside one string.find: Lua's own matcher cannot be
 * interrupted by the instruction budget, so the subtask spun with the row in hand. The sandbox's
 * matcher counts its steps against the budget: the task pauses on the row, naming the call. */
static void test_pathological_pattern(void **state)
{
    const char *task = "luae2e-pattern";
    reset_task(task);
    char script[512];
    snprintf(script, sizeof script, "%s/pattern.lua", tmpdir);
    write_file(script, "function on_row(ev)\n"
                       "  local v = ev.after and ev.after.v\n"
                       "  if v == 7 then return string.find(('a'):rep(28), ('a*'):rep(28) .. 'b') == nil end\n"
                       "  return true\n"
                       "end\n");
    sql(src, "CREATE DATABASE IF NOT EXISTS luae2e; DROP TABLE IF EXISTS luae2e.pat; "
             "CREATE TABLE luae2e.pat (id INT PRIMARY KEY, v INT)");
    sql(dst, "DROP TABLE IF EXISTS luae2e.pat");
    insert_t("pat", 1, 3);
    sl_task_plan *p = compile(custom_task(task, "luae2e", "pat", script));
    run_full(p, 0);
    sl_pipeline *pl = start_phase(p, 0, "incremental");
    insert_t("pat", 4, 10);
    sl_stage st = sl_pipeline_wait(pl, 60000);
    sl_error e = { 0 };
    sl_pipeline_error(pl, &e);
    if (st != SL_STAGE_PAUSED)   /* its worker spins: stopping it would wait for ever */
        fail_msg("the subtask did not pause on the pattern within 60 s: %s", sl_stage_name(st));
    sl_pipeline_free(pl);
    sl_task_plan_free(p);
    if (!strstr(e.msg, "pattern.lua:3: string.find: pattern too complex: instruction budget of 1000000 "
                       "exceeded in on_row") || !strstr(e.msg, "luae2e.pat"))
        fail_msg("pattern error: %s", e.msg);
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.pat WHERE id >= 7"), "0");
    assert_string_equal(one(dst, "SELECT COUNT(*) FROM luae2e.pat WHERE id <= 3"), "3");
}

/* Two scripts of one task on one table run in the same Lua state: the first one's top level
 * replaces string.upper (and adds a helper to its string library), the second one upper-cases a
 * column with string.upper and the method call. The libraries were shared: the second script
 * wrote the first one's replacement into the target. */
static void test_scripts_keep_their_libraries(void **state)
{
    const char *task = "luae2e-libs";
    reset_task(task);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/changer.lua", tmpdir);
    snprintf(b, sizeof b, "%s/upper.lua", tmpdir);
    write_file(a, "string.upper = function() return 'changed' end\n"
                  "function string.shout(s) return s:upper() end\n"
                  "function on_row(ev) return true end\n");
    write_file(b, "function on_row(ev)\n"
                  "  if ev.after then\n"
                  "    ev.after.name = string.upper(ev.after.name) .. '/' .. ev.after.name:upper()\n"
                  "  end\n"
                  "  return true\n"
                  "end\n");
    sql(src, "CREATE DATABASE IF NOT EXISTS luae2e; DROP TABLE IF EXISTS luae2e.libs; "
             "CREATE TABLE luae2e.libs (id INT PRIMARY KEY, name VARCHAR(40)); "
             "INSERT INTO luae2e.libs VALUES (1, 'alice'), (2, 'bob')");
    sql(dst, "DROP TABLE IF EXISTS luae2e.libs");
    json_t *t = custom_task(task, "luae2e", "libs", a);
    json_t *scripts = json_object_get(t, "lua_scripts");
    json_t *second = json_deep_copy(json_array_get(scripts, 0));
    json_object_set_new(second, "file", json_string(b));
    json_array_append_new(scripts, second);
    sl_task_plan *p = compile(t);
    run_full(p, 0);
    sl_pipeline *pl = start_phase(p, 0, "incremental");
    sql(src, "INSERT INTO luae2e.libs VALUES (3, 'carol')");
    catch_up(pl, task);
    stop_phase(pl);
    sl_task_plan_free(p);
    assert_string_equal(one(dst, "SELECT GROUP_CONCAT(name ORDER BY id) FROM luae2e.libs"),
                        "ALICE/ALICE,BOB/BOB,CAROL/CAROL");
}

/* ---- a script's tables of one source ---------------------------------------------------------- */

static void test_source_name(void **state)
{
    const char *task = "luae2e-sources";
    reset_task(task);
    sql(src, "CREATE DATABASE IF NOT EXISTS sn; DROP TABLE IF EXISTS sn.users; "
             "CREATE TABLE sn.users (id INT PRIMARY KEY, email VARCHAR(100) NULL, name VARCHAR(50)); "
             "INSERT INTO sn.users VALUES (1, 'alice@example.com', 'a'), (2, 'bob@example.org', 'b'), (3, NULL, 'c')");
    sql(dst, "DROP DATABASE IF EXISTS sn_a; DROP DATABASE IF EXISTS sn_b");
    json_t *t = example_task("mask_email", task);
    json_object_set_new(t, "task_mode", json_string("full"));
    json_object_set_new(t, "table_migrate_rule", json_pack(
        "[{s:{s:s,s:s,s:s},s:{s:s}},{s:{s:s,s:s,s:s},s:{s:s}}]",
        "source", "source_name", "mysql-01", "schema", "sn", "table", "users", "target", "schema", "sn_a",
        "source", "source_name", "mysql-02", "schema", "sn", "table", "users", "target", "schema", "sn_b"));
    json_object_set_new(json_object_get(t, "source_config"), "source_conf",
                        json_pack("[{s:s},{s:s}]", "source_name", "mysql-01", "source_name", "mysql-02"));
    json_object_set_new(t, "lua_scripts", json_pack("[{s:[{s:s,s:s,s:s}],s:s,s:s}]", "tables", "source_name",
                        "mysql-01", "schema", "sn", "table", "users", "file", "mask_email.lua", "on_row", "on_row"));
    sl_task_plan *p = compile(t);
    assert_int_equal(p->nsubtasks, 2);
    assert_string_equal(p->subtasks[1].source_name, "mysql-02");
    assert_true(has_plugin(phase_of(p, 0, "full"), "lua-hook"));
    assert_false(has_plugin(phase_of(p, 1, "full"), "lua-hook"));
    run_full(p, 0);
    run_full(p, 1);
    sl_task_plan_free(p);
    assert_string_equal(one(dst, "SELECT GROUP_CONCAT(IFNULL(email, '-') ORDER BY id) FROM sn_a.users"),
                        "a****@example.com,b****@example.org,-");
    assert_string_equal(one(dst, "SELECT GROUP_CONCAT(IFNULL(email, '-') ORDER BY id) FROM sn_b.users"),
                        "alice@example.com,bob@example.org,-");
}

/* ---- setup ------------------------------------------------------------------------------------- */

static int setup(void **state)
{
    mysql_library_init(0, NULL, NULL);
    src = open_db("SOURCE");
    dst = open_db("TARGET");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/luae2e-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    if (sl_registry_new(&reg) != 0 || sl_scheduler_new(NULL, &sched) != 0)
        return -1;
    static const char *const plugins[] = { "mysql-dump", "route", "lua-hook", "loader", "binlog-reader",
                                           "event-filter", "mysql-sink" };
    for (size_t i = 0; i < sizeof plugins / sizeof *plugins; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sluice-%s.so", PLUGIN_DIR, plugins[i]);
        /* RTLD_NODELETE: what a plugin's static libraries set up once stays mapped after the
         * registry's dlclose, so the leak checker can symbolize anything it reports */
        if (!dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) {
            fprintf(stderr, "%s\n", dlerror());
            return -1;
        }
        sl_error e = { 0 };
        if (sl_registry_load(reg, path, &e) != 0) {
            fprintf(stderr, "%s\n", e.msg);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state)
{
    sl_scheduler_free(sched);
    sl_registry_free(reg);
    mysql_close(src);
    mysql_close(dst);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    /* fail, not skip, without a sandbox */
    need("SLUICE_SOURCE_HOST"), need("SLUICE_SOURCE_PORT"), need("SLUICE_SOURCE_USER");
    need("SLUICE_TARGET_HOST"), need("SLUICE_TARGET_PORT"), need("SLUICE_TARGET_USER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_email),
        cmocka_unit_test(test_drop_soft_deleted),
        cmocka_unit_test(test_computed_column),
        cmocka_unit_test(test_route_by_value),
        cmocka_unit_test(test_script_error),
        cmocka_unit_test(test_endless_loop),
        cmocka_unit_test(test_pathological_pattern),
        cmocka_unit_test(test_scripts_keep_their_libraries),
        cmocka_unit_test(test_source_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
