/*
 * test_tasks.c - /api/v1/tasks answered in-process (sl__dispatch) by an offline server (no HTTP,
 * no monitor, no database: sources are accepted without connecting) that knows the compiler's
 * test plugin descriptors and the real loader plugin: the compiler's warnings in check_result,
 * the dump directory removed by DELETE through the loader's cleanup (kept with keep_meta=true
 * and for task_mode dump), and every stage in the subtask status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "sluice/log.h"
#include "test_plugins.h"

static sl_api *api;
static char tmp[256], dumps[320];

/* The compiler's test descriptors have no state layout (every option at offset 0): give each
 * option its own 8-byte slot so a start can build and run their do-nothing pipelines. */
#define MAX_DESCS 16
static sl_plugin_descriptor descs[MAX_DESCS];
static sl_option *desc_opts[MAX_DESCS];

static void register_plugins(sl_registry *into)
{
    sl_registry *reg = NULL;
    sl_error err = { 0 };
    /* The real loader: a task's dump files are its to remove (its cleanup slot). Its target is
     * not there (offline), so the checkpoint part of its cleanup fails and is logged. */
    if (sl_registry_load(into, SLUICE_LOADER_SO, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_test_plugins_register(reg, &err), 0);
    for (size_t i = 0; i < sl_registry_count(reg) && i < MAX_DESCS; i++) {
        const sl_plugin_descriptor *d = sl_registry_at(reg, i);
        if (sl_registry_find(into, d->name))
            continue;
        size_t n = 0;
        while (d->options && d->options[n].name)
            n++;
        desc_opts[i] = calloc(n + 1, sizeof *desc_opts[i]);
        assert_non_null(desc_opts[i]);
        for (size_t k = 0; k < n; k++) {
            desc_opts[i][k] = d->options[k];
            desc_opts[i][k].offset = k * 8;
        }
        descs[i] = *d;
        descs[i].options = desc_opts[i];
        descs[i].config_size = (n ? n : 1) * 8;
        assert_int_equal(sl_registry_add(into, &descs[i], &err), 0);
    }
    sl_registry_free(reg);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* One request; returns the status and (when out is given) the parsed JSON body. */
static unsigned req(const char *method, const char *path, const sl_query_arg *args, size_t nargs,
                    const char *body, json_t **out)
{
    sl_req r;
    sl__dispatch(api, &r, method, path, args, nargs, body, body ? strlen(body) : 0);
    unsigned st = r.status;
    if (out) {
        const char *b = r.out_blob ? r.out_blob->data : r.out;
        size_t len = r.out_blob ? r.out_blob->len : r.out_len;
        *out = b && len ? json_loadb(b, len, 0, NULL) : NULL;
    }
    sl__req_reset(&r);
    return st;
}

/* A task on source s1 with table rules on the given sources (a rule naming a source that is not
 * in source_conf is a compiler warning). Caller frees. */
static char *task_json(const char *name, const char *mode, const char *rule_sources)
{
    char *s = NULL;
    json_t *rules = json_array();
    char *copy = strdup(rule_sources), *save = NULL;
    for (char *src = strtok_r(copy, ",", &save); src; src = strtok_r(NULL, ",", &save))
        json_array_append_new(rules, json_pack("{s:{s:s,s:s,s:s}}", "source", "source_name", src,
                                               "schema", "db", "table", "*"));
    free(copy);
    json_t *t = json_pack("{s:s,s:s,s:{s:s,s:i,s:s,s:s},s:o,s:{s:{s:s},s:[{s:s}]}}",
                          "name", name, "task_mode", mode,
                          "target_config", "host", "127.0.0.1", "port", 3306, "user", "root",
                          "password", "pw",
                          "table_migrate_rule", rules,
                          "source_config", "full_migrate_conf", "data_dir", dumps,
                          "source_conf", "source_name", "s1");
    assert_non_null(t);
    json_t *body = json_pack("{s:o}", "task", t);
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return s;
}

static int setup(void **state)
{
    char data[300], plugins[300];
    snprintf(tmp, sizeof tmp, "%s/sluice-test-tasks-XXXXXX", access("/dev/shm", W_OK) == 0 ?
             "/dev/shm" : "/tmp");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(plugins, sizeof plugins, "%s/plugins", tmp);
    snprintf(dumps, sizeof dumps, "%s/dumps", tmp);
    if (mkdir(plugins, 0700) != 0)
        return -1;
    sl_log_set_level(SL_LOG_ERROR);
    sl_api_opts o = { .addr = "127.0.0.1:0", .data_dir = data, .plugin_dir = plugins,
                      .http_threads = 1, .openapi = 1 };
    sl_error err = { 0 };
    if (sl__api_open(&o, SL__API_NO_HTTP | SL__API_NO_MONITOR | SL__API_OFFLINE, &api, &err) != 0)
        return -1;
    register_plugins(api->registry);
    if (req("POST", "/api/v1/sources", NULL, 0, "{\"source_name\":\"s1\",\"host\":\"127.0.0.1\","
            "\"port\":3306,\"user\":\"root\",\"password\":\"x\",\"enable\":true}", NULL) != 201)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    sl_api_free(api);
    for (size_t i = 0; i < MAX_DESCS; i++)
        free(desc_opts[i]);
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* POST and PUT answer the task (DM's Task shape) and, only when the compiler warned, DM's
 * check_result with every warning and its path. */
static void test_warnings_in_check_result(void **state)
{
    json_t *o = NULL;
    char *clean = task_json("warn-task", "full", "s1");
    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, clean, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "warn-task");
    assert_null(json_object_get(o, "check_result"));
    json_decref(o);

    char *warned = task_json("warn-task", "full", "s1,ghost,phantom");
    assert_int_equal(req("PUT", "/api/v1/tasks/warn-task", NULL, 0, warned, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "warn-task");
    assert_string_equal(json_string_value(json_object_get(o, "target_config") ?
                        json_object_get(json_object_get(o, "target_config"), "password") : NULL),
                        "******");
    const char *cr = json_string_value(json_object_get(o, "check_result"));
    assert_non_null(cr);
    assert_true(!strncmp(cr, "task updated with 2 warnings: ", 30));
    assert_non_null(strstr(cr, "/task/table_migrate_rule/1/source/source_name: source ghost is not "
                               "in source_config.source_conf"));
    assert_non_null(strstr(cr, "; /task/table_migrate_rule/2/source/source_name: source phantom"));
    json_decref(o);
    /* the stored task is the task: check_result is in the answer only */
    assert_int_equal(req("GET", "/api/v1/tasks/warn-task", NULL, 0, NULL, &o), 200);
    assert_null(json_object_get(o, "check_result"));
    json_decref(o);

    sl_query_arg force = { "force", "true" };
    assert_int_equal(req("DELETE", "/api/v1/tasks/warn-task", &force, 1, NULL, NULL), 204);
    char *one = task_json("warn-task-2", "full", "s1,ghost");
    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, one, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "check_result")),
                        "task created with 1 warning: /task/table_migrate_rule/1/source/source_name: "
                        "source ghost is not in source_config.source_conf: this rule selects nothing");
    json_decref(o);
    assert_int_equal(req("DELETE", "/api/v1/tasks/warn-task-2", &force, 1, NULL, NULL), 204);
    free(clean);
    free(warned);
    free(one);
}

static void make_dump_files(const char *task)
{
    char p[600];
    snprintf(p, sizeof p, "%s", dumps);
    mkdir(p, 0750);
    snprintf(p, sizeof p, "%s/%s", dumps, task);
    assert_int_equal(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/%s/s1", dumps, task);
    assert_int_equal(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/%s/s1/db.t.0.tsv", dumps, task);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("1\tx\n", f);
    fclose(f);
    /* a link out of the directory is removed, never followed */
    snprintf(p, sizeof p, "%s/%s/s1/outside", dumps, task);
    assert_int_equal(symlink(tmp, p), 0);
}

static int exists(const char *task)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dumps, task);
    return stat(p, &st) == 0;
}

/* DELETE removes <data_dir>/<task> (unless keep_meta=true, or the task is a task_mode dump task
 * whose files are its product); nothing else in data_dir is touched. */
static void test_delete_removes_dump_dir(void **state)
{
    sl_query_arg keep = { "keep_meta", "true" };
    char *t = task_json("del-task", "all", "s1");
    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, t, NULL), 200);
    make_dump_files("del-task");
    make_dump_files("other-task");
    assert_int_equal(req("DELETE", "/api/v1/tasks/del-task", NULL, 0, NULL, NULL), 204);
    assert_false(exists("del-task"));
    assert_true(exists("other-task"));
    assert_true(exists("."));
    {
        /* the detached copy is gone too: only other-task is left in data_dir */
        DIR *d = opendir(dumps);
        struct dirent *e;
        int n = 0;
        assert_non_null(d);
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                n++;
        closedir(d);
        assert_int_equal(n, 1);
    }
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);   /* the link's target survived */

    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, t, NULL), 200);
    make_dump_files("del-task");
    assert_int_equal(req("DELETE", "/api/v1/tasks/del-task", &keep, 1, NULL, NULL), 204);
    assert_true(exists("del-task/s1/db.t.0.tsv"));
    free(t);

    char *d = task_json("del-task", "dump", "s1");
    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, d, NULL), 200);
    assert_int_equal(req("DELETE", "/api/v1/tasks/del-task", NULL, 0, NULL, NULL), 204);
    assert_true(exists("del-task/s1/db.t.0.tsv"));
    free(d);

    /* no dump directory at all: nothing to do, still 204 */
    char *n = task_json("never-ran", "full", "s1");
    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, n, NULL), 200);
    assert_int_equal(req("DELETE", "/api/v1/tasks/never-ran", NULL, 0, NULL, NULL), 204);
    free(n);
}

/* The subtask status lists every stage of the pipeline (id, plugin, metrics, status), not only
 * the built-in plugins DM's fields are filled from. */
static void test_status_lists_every_stage(void **state)
{
    json_t *o = NULL;
    char *t = task_json("stage-task", "incremental", "s1");
    /* incremental needs a start position */
    json_t *body = json_loads(t, 0, NULL);
    json_object_set_new(json_array_get(json_object_get(json_object_get(json_object_get(body, "task"),
                        "source_config"), "source_conf"), 0), "binlog_name",
                        json_string("mysql-bin.000001"));
    json_object_set_new(json_array_get(json_object_get(json_object_get(json_object_get(body, "task"),
                        "source_config"), "source_conf"), 0), "binlog_pos", json_integer(4));
    free(t);
    t = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    assert_int_equal(req("POST", "/api/v1/tasks", NULL, 0, t, NULL), 200);
    assert_int_equal(req("GET", "/api/v1/tasks/stage-task/status", NULL, 0, NULL, &o), 200);
    json_t *st = json_object_get(json_array_get(json_object_get(o, "data"), 0), "stages");
    assert_true(json_is_array(st));
    assert_int_equal(json_array_size(st), 0);        /* never started */
    json_decref(o);

    assert_int_equal(req("POST", "/api/v1/tasks/stage-task/start", NULL, 0, "{}", NULL), 200);
    assert_int_equal(req("GET", "/api/v1/tasks/stage-task/status", NULL, 0, NULL, &o), 200);
    json_t *s0 = json_array_get(json_object_get(o, "data"), 0);
    st = json_object_get(s0, "stages");
    const char *want[] = { "binlog-reader", "event-filter", "route", "mysql-sink" };
    assert_int_equal(json_array_size(st), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(st, i);
        assert_string_equal(json_string_value(json_object_get(e, "plugin")), want[i]);
        assert_true(json_string_length(json_object_get(e, "id")) > 0);
        assert_true(json_is_object(json_object_get(e, "metrics")));
        assert_true(json_is_object(json_object_get(e, "status")));
    }
    /* DM's fields are still there */
    assert_true(json_is_object(json_object_get(s0, "sync_status")));
    assert_true(json_is_object(json_object_get(s0, "load_status")));
    assert_string_equal(json_string_value(json_object_get(s0, "unit")), "Sync");
    json_decref(o);
    sl_query_arg force = { "force", "true" };
    assert_int_equal(req("DELETE", "/api/v1/tasks/stage-task", &force, 1, NULL, NULL), 204);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warnings_in_check_result),
        cmocka_unit_test(test_delete_removes_dump_dir),
        cmocka_unit_test(test_status_lists_every_stage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
