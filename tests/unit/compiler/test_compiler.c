/*
 * test_compiler.c - unit tests of the task compiler (compiler.h) with test-only descriptors that
 * declare PLUGINS.md's option tables: plans and stage options, paths of bare and wrapped tasks,
 * defaults, plugin option checks, known sources, GTID syntax and diagnostics text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/compiler.h"
#include "test_plugins.h"

static sl_registry *reg;

static int setup(void **state)
{
    sl_error err = {0};
    if (sl_registry_new(&reg) < 0 || sl_test_plugins_register(reg, &err) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    sl_registry_free(reg);
    return 0;
}

static const char TASK[] =
    "{\"name\": \"t-1\", \"task_mode\": \"all\","
    " \"target_config\": {\"host\": \"tgt\", \"port\": 4000, \"user\": \"root\", \"password\": \"pw\"},"
    " \"binlog_filter_rule\": {\"f1\": {\"ignore_event\": [\"all dml\"], \"ignore_sql\": [\"^drop\"]}},"
    " \"table_migrate_rule\": ["
    "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"shard_*\", \"table\": \"orders\"},"
    "    \"target\": {\"schema\": \"shop\", \"table\": \"orders\"}, \"binlog_filter_rule\": [\"f1\"]},"
    "   {\"source\": {\"source_name\": \"s2\", \"schema\": \"app\", \"table\": \"\"}}],"
    " \"source_config\": {\"source_conf\": [{\"source_name\": \"s1\"}, {\"source_name\": \"s2\","
    "   \"binlog_name\": \"mysql-bin.000003\", \"binlog_pos\": 77}]}}";

static const sl_diag *find_diag(const sl_diags *d, const char *path, int code)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].path, path) == 0 && d->v[i].code == code)
            return &d->v[i];
    return NULL;
}

static size_t count_at(const sl_diags *d, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += strcmp(d->v[i].path, path) == 0;
    return n;
}

static json_t *stage_opts(const sl_pipeline_spec *p, const char *id)
{
    for (size_t i = 0; i < p->nstages; i++)
        if (strcmp(p->stages[i].id, id) == 0)
            return json_loads(p->stages[i].options_json, 0, NULL);
    return NULL;
}

/* The route's task-wide merge facts: a target table two exact rules of two sources route into
 * (merge_targets: k.t), or that a rule names while another source's rule keeping its tables'
 * names routes into its schema (app.orders, mix.* of s2 into app); a target schema two source
 * schemas go into keeping their tables' names (merge_schemas: shop_1.* of s1 and shop_2.* of s2
 * into shop; app), and not a schema one source schema is only renamed into (solo into
 * solo_copy), nor one a table pattern that cannot name the table fills (pat.t, x.solo_*). */
static void test_merge_facts(void **state)
{
    static const char T[] =
        "{\"name\": \"t-m\", \"task_mode\": \"incremental\","
        " \"target_config\": {\"host\": \"tgt\", \"port\": 4000, \"user\": \"root\", \"password\": \"pw\"},"
        " \"table_migrate_rule\": ["
        "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"shop_1\", \"table\": \"\"}, \"target\": {\"schema\": \"shop\"}},"
        "   {\"source\": {\"source_name\": \"s2\", \"schema\": \"shop_2\", \"table\": \"\"}, \"target\": {\"schema\": \"shop\"}},"
        "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"solo\", \"table\": \"\"}, \"target\": {\"schema\": \"solo_copy\"}},"
        "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"app\", \"table\": \"orders_*\"},"
        "    \"target\": {\"schema\": \"app\", \"table\": \"orders\"}},"
        "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"app\", \"table\": \"\"}},"
        "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"k\", \"table\": \"t\"}, \"target\": {\"schema\": \"k\", \"table\": \"t\"}},"
        "   {\"source\": {\"source_name\": \"s2\", \"schema\": \"k\", \"table\": \"t\"}, \"target\": {\"schema\": \"k\", \"table\": \"t\"}},"
        "   {\"source\": {\"source_name\": \"s2\", \"schema\": \"mix\", \"table\": \"\"}, \"target\": {\"schema\": \"app\"}},"
        "   {\"source\": {\"source_name\": \"s1\", \"schema\": \"p_*\", \"table\": \"t\"}, \"target\": {\"schema\": \"pat\", \"table\": \"t\"}},"
        "   {\"source\": {\"source_name\": \"s2\", \"schema\": \"x\", \"table\": \"solo_*\"}, \"target\": {\"schema\": \"pat\"}}],"
        " \"source_config\": {\"source_conf\": [{\"source_name\": \"s1\", \"binlog_name\": \"b.000001\", \"binlog_pos\": 4},"
        "   {\"source_name\": \"s2\", \"binlog_name\": \"b.000001\", \"binlog_pos\": 4}]}}";
    (void)state;
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(sl_task_compile(T, strlen(T), &o, &plan, &d), 0);
    assert_int_equal(sl_diags_errors(&d), 0);
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        json_t *route = stage_opts(plan->subtasks[i].phases[0], "route");
        char *ms = json_dumps(json_object_get(route, "merge_schemas"), JSON_COMPACT);
        char *mt = json_dumps(json_object_get(route, "merge_targets"), JSON_COMPACT);
        assert_string_equal(ms, "[\"shop\",\"app\"]");
        assert_string_equal(mt, "[{\"schema\":\"k\",\"table\":\"t\"},{\"schema\":\"app\",\"table\":\"orders\"}]");
        free(ms);
        free(mt);
        json_decref(route);
    }
    sl_task_plan_free(plan);
    sl_diags_free(&d);
}

static void test_plan_all(void **state)
{
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), 0);
    assert_non_null(plan);
    assert_int_equal(sl_diags_errors(&d), 0);
    assert_string_equal(plan->name, "t-1");
    assert_string_equal(plan->task_mode, "all");
    assert_int_equal(plan->nsubtasks, 2);

    const sl_subtask_plan *s1 = &plan->subtasks[0];
    assert_string_equal(s1->source_name, "s1");
    assert_int_equal(s1->nphases, 2);
    assert_string_equal(s1->phase_names[0], "full");
    assert_string_equal(s1->phase_names[1], "incremental");
    assert_int_equal(s1->nrules, 1);
    assert_true(s1->shard_merge);       /* shard_* -> one target table */
    assert_false(s1->source_known);

    const sl_pipeline_spec *full = s1->phases[0], *inc = s1->phases[1];
    assert_string_equal(full->name, "t-1/s1/full");
    assert_int_equal(full->nstages, 3);
    assert_string_equal(full->stages[0].plugin, "mysql-dump");
    assert_string_equal(full->stages[1].plugin, "route");
    assert_string_equal(full->stages[2].plugin, "loader");
    assert_int_equal(full->nedges, 2);
    assert_int_equal(full->edges[1].from, 1);
    assert_int_equal(full->edges[1].to, 2);
    assert_int_equal(inc->nstages, 4);
    assert_string_equal(inc->stages[0].plugin, "binlog-reader");
    assert_string_equal(inc->stages[1].plugin, "event-filter");
    assert_string_equal(inc->stages[2].plugin, "route");
    assert_string_equal(inc->stages[3].plugin, "mysql-sink");

    /* defaults and resolved names */
    json_t *dump = stage_opts(full, "dump");
    assert_int_equal(json_integer_value(json_object_get(dump, "export_threads")), 4);
    assert_string_equal(json_string_value(json_object_get(dump, "consistency")), "auto");
    assert_string_equal(json_string_value(json_object_get(dump, "data_dir")), "./dumped_data");
    assert_string_equal(json_string_value(json_object_get(dump, "meta_schema")), "dm_meta");
    assert_string_equal(json_string_value(json_object_get(dump, "target_host")), "tgt");
    assert_string_equal(json_string_value(json_object_get(dump, "mode")), "full");
    json_t *rules = json_object_get(dump, "rules");
    assert_int_equal(json_array_size(rules), 1);
    json_t *r0 = json_array_get(rules, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "schema")), "shard_*");
    assert_string_equal(json_string_value(json_object_get(r0, "target_table")), "orders");
    json_t *f0 = json_array_get(json_object_get(r0, "filters"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "name")), "f1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(f0, "ignore_sql"), 0)), "^drop");
    json_decref(dump);

    json_t *load = stage_opts(full, "load");
    assert_int_equal(json_integer_value(json_object_get(load, "import_threads")), 16);
    assert_string_equal(json_string_value(json_object_get(load, "on_duplicate")), "overwrite");
    json_decref(load);
    json_t *sink = stage_opts(inc, "sink");
    assert_int_equal(json_integer_value(json_object_get(sink, "repl_threads")), 16);
    assert_int_equal(json_integer_value(json_object_get(sink, "repl_batch")), 100);
    /* shard merge is the plan's (and route's) business: the sink takes no such option */
    assert_null(json_object_get(sink, "shard_merge"));
    assert_string_equal(json_string_value(json_object_get(sink, "target_password")), "pw");
    json_decref(sink);

    /* s2: schema-level rule, no merge, start position passed to the reader */
    const sl_subtask_plan *s2 = &plan->subtasks[1];
    assert_false(s2->shard_merge);
    json_t *rd = stage_opts(s2->phases[1], "reader");
    assert_string_equal(json_string_value(json_object_get(rd, "binlog_name")), "mysql-bin.000003");
    assert_int_equal(json_integer_value(json_object_get(rd, "binlog_pos")), 77);
    assert_int_equal(json_array_size(json_object_get(rd, "rules")), 1);
    json_decref(rd);

    /* the normalized task has its defaults */
    json_t *t = json_incref(plan->task);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "meta_schema")), "dm_meta");
    assert_string_equal(json_string_value(json_object_get(t, "on_duplicate")), "overwrite");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(t,
        "source_config"), "incr_migrate_conf"), "repl_batch")), 100);
    json_decref(t);
    sl_task_plan_free(plan);
    sl_diags_free(&d);
}

static char *with(const char *from, const char *to)
{
    const char *p = strstr(TASK, from);
    assert_non_null(p);
    size_t n = strlen(TASK) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(p - TASK), TASK, to, p + strlen(from));
    return s;
}

static void test_modes(void **state)
{
    struct { const char *mode; size_t nphases; const char *first; } cases[] = {
        { "full", 1, "mysql-dump" }, { "dump", 1, "mysql-dump" }, { "load", 1, "mysql-dump" },
    };
    for (size_t i = 0; i < 3; i++) {
        char m[64];
        snprintf(m, sizeof m, "\"task_mode\": \"%s\"", cases[i].mode);
        char *js = with("\"task_mode\": \"all\"", m);
        sl_compile_opts o = { .registry = reg };
        sl_task_plan *plan = NULL;
        assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, NULL), 0);
        assert_int_equal(plan->subtasks[0].nphases, cases[i].nphases);
        json_t *dump = stage_opts(plan->subtasks[0].phases[0], "dump");
        assert_string_equal(json_string_value(json_object_get(dump, "mode")),
                            strcmp(cases[i].mode, "full") ? cases[i].mode : "full");
        json_decref(dump);
        sl_task_plan_free(plan);
        free(js);
    }
    /* incremental: s1 has no start position -> 20022; with GTID it compiles */
    char *js = with("\"task_mode\": \"all\"", "\"task_mode\": \"incremental\"");
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), SL_EINVAL);
    assert_null(plan);
    assert_non_null(find_diag(&d, "/source_config/source_conf/0", SL_TC_NEED_META));
    sl_diags_free(&d);
    free(js);
    char *a = with("\"task_mode\": \"all\"", "\"task_mode\": \"incremental\"");
    char *b = NULL;
    {
        const char *from = "{\"source_name\": \"s1\"}";
        const char *to = "{\"source_name\": \"s1\", \"binlog_gtid\": \"0-1-100\"}";
        const char *p = strstr(a, from);
        size_t n = strlen(a) + strlen(to) + 1;
        b = malloc(n);
        snprintf(b, n, "%.*s%s%s", (int)(p - a), a, to, p + strlen(from));
    }
    assert_int_equal(sl_task_compile(b, strlen(b), &o, &plan, NULL), 0);
    assert_int_equal(plan->subtasks[0].nphases, 1);
    assert_string_equal(plan->subtasks[0].phase_names[0], "incremental");
    sl_task_plan_free(plan);
    free(a);
    free(b);
}

static void test_wrapped_paths(void **state)
{
    const char *js = "{\"task\": {\"name\": \"x\", \"task_mode\": \"nope\"}}";
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), SL_EINVAL);
    assert_non_null(find_diag(&d, "/task/task_mode", SL_TC_ENUM));
    assert_non_null(find_diag(&d, "/task/target_config", SL_TC_REQUIRED));
    assert_non_null(find_diag(&d, "/task/table_migrate_rule", SL_TC_REQUIRED));
    assert_non_null(find_diag(&d, "/task/source_config", SL_TC_REQUIRED));
    assert_null(find_diag(&d, "/task_mode", SL_TC_ENUM));
    sl_diags_free(&d);
}

/* Threads a task does not set follow the machine the compiler is told of (issue 12); a task's
 * own numbers win; sql_log_bin false reaches the loader only when the task says it. */
static void test_machine_threads(void **state)
{
    static const struct { unsigned ncpu; long long e, i; } m[] = {
        {0, 4, 16}, {1, 2, 4}, {2, 2, 4}, {3, 3, 6}, {8, 8, 16}, {24, 16, 48}, {128, 16, 64},
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        long long e = -1, i = -1;
        sl_task_threads(m[k].ncpu, &e, &i);
        assert_int_equal(e, m[k].e);
        assert_int_equal(i, m[k].i);
    }
    sl_compile_opts o = { .registry = reg, .ncpu = 2 };
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), 0);
    json_t *dump = stage_opts(plan->subtasks[0].phases[0], "dump");
    json_t *load = stage_opts(plan->subtasks[0].phases[0], "load");
    assert_int_equal(json_integer_value(json_object_get(dump, "export_threads")), 2);
    assert_int_equal(json_integer_value(json_object_get(load, "import_threads")), 4);
    assert_null(json_object_get(load, "sql_log_bin"));
    json_decref(dump);
    json_decref(load);
    sl_task_plan_free(plan);
    sl_diags_free(&d);

    char *js = with("\"source_config\": {", "\"source_config\": {\"full_migrate_conf\": "
                    "{\"export_threads\": 5, \"sql_log_bin\": false}, ");
    d = (sl_diags){0};
    plan = NULL;
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), 0);
    dump = stage_opts(plan->subtasks[0].phases[0], "dump");
    load = stage_opts(plan->subtasks[0].phases[0], "load");
    assert_int_equal(json_integer_value(json_object_get(dump, "export_threads")), 5);
    assert_int_equal(json_integer_value(json_object_get(load, "import_threads")), 4);
    assert_true(json_is_false(json_object_get(load, "sql_log_bin")));
    json_decref(dump);
    json_decref(load);
    sl_task_plan_free(plan);
    sl_diags_free(&d);
    free(js);
}

/* full_migrate_conf.stream reaches the dump in full and all; where the loader would not read the
 * dump's chunks itself (task_mode dump or load, a sink, Lua scripts) it is an error at its path,
 * and the task compiles to nothing. */
static void test_stream(void **state)
{
    (void)state;
    sl_compile_opts o = { .registry = reg };
    char *js = with("\"source_config\": {", "\"source_config\": {\"full_migrate_conf\": "
                    "{\"stream\": true}, ");
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), 0);
    json_t *dump = stage_opts(plan->subtasks[0].phases[0], "dump");
    assert_true(json_is_true(json_object_get(dump, "stream")));
    json_decref(dump);
    sl_task_plan_free(plan);
    sl_diags_free(&d);
    static const char *const modes[] = { "dump", "load", "incremental" };
    for (size_t i = 0; i < 3; i++) {
        char m[64];
        snprintf(m, sizeof m, "\"task_mode\": \"%s\"", modes[i]);
        char *js2 = with("\"task_mode\": \"all\"", m);
        char *js3 = NULL;
        /* with() works on TASK: redo the stream edit on this copy */
        const char *at = strstr(js2, "\"source_config\": {");
        assert_non_null(at);
        size_t pre = (size_t)(at - js2) + strlen("\"source_config\": {");
        const char *ins = "\"full_migrate_conf\": {\"stream\": true}, ";
        js3 = malloc(strlen(js2) + strlen(ins) + 1);
        sprintf(js3, "%.*s%s%s", (int)pre, js2, ins, js2 + pre);
        d = (sl_diags){0};
        plan = NULL;
        assert_int_equal(sl_task_compile(js3, strlen(js3), &o, &plan, &d), SL_EINVAL);
        assert_null(plan);
        assert_non_null(find_diag(&d, "/source_config/full_migrate_conf/stream", SL_TC_UNSUPPORTED));
        sl_diags_free(&d);
        free(js2);
        free(js3);
    }
    free(js);
}

static void test_every_error_once(void **state)
{
    /* A field the task checks reject is not reported again by the plugin option check. */
    char *js = with("\"source_config\": {", "\"source_config\": {\"full_migrate_conf\": "
                    "{\"export_threads\": 0, \"consistency\": \"bogus\"}, ");
    sl_compile_opts o = { .registry = reg };
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), SL_EINVAL);
    assert_int_equal(count_at(&d, "/source_config/full_migrate_conf/export_threads"), 1);
    assert_int_equal(count_at(&d, "/source_config/full_migrate_conf/consistency"), 1);
    assert_non_null(find_diag(&d, "/source_config/full_migrate_conf/export_threads", SL_TC_RANGE));
    sl_diags_free(&d);
    free(js);
    /* a bad or missing target port is one error, not also each stage's "target_port is required"
     * at its source_conf path */
    const char *ports[] = { "\"port\": \"x\", ", "" };
    for (int i = 0; i < 2; i++) {
        char to[64];
        snprintf(to, sizeof to, "%s\"user\": \"root\", \"password\": \"pw\"}", ports[i]);
        js = with("\"port\": 4000, \"user\": \"root\", \"password\": \"pw\"}", to);
        d = (sl_diags){0};
        plan = NULL;
        assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), SL_EINVAL);
        assert_int_equal(d.n, 1);
        assert_int_equal(count_at(&d, "/target_config/port"), 1);
        sl_diags_free(&d);
        free(js);
    }
}

static void test_missing_plugins(void **state)
{
    sl_compile_opts o = { .registry = NULL, .plugin_dir = "/opt/none" };
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), SL_EINVAL);
    assert_null(plan);
    /* each plugin once, although two sources use it */
    size_t n = 0;
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.v[i].code, SL_TC_PLUGIN);
        n++;
    }
    assert_int_equal(n, 6);
    assert_non_null(strstr(d.v[0].msg, "plugin mysql-dump not found in /opt/none"));
    sl_diags_free(&d);
    /* NULL opts behave the same */
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), NULL, &plan, NULL), SL_EINVAL);
}

static int bad_create(const sl_host *h, sl_ctx *c, const void *cfg, void **self) { return 0; }
static int bad_process(void *self, sl_batch *b) { return 0; }
static int bad_run(void *self) { return 0; }
static void bad_destroy(void *self) {}

static void test_plugin_option_mismatch(void **state)
{
    /* A route plugin that does not declare `rules` but requires `flavour`: both are reported. */
    static const sl_option opts[] = {
        { .name = "flavour", .type = SL_OPT_STRING, .flags = SL_OPTF_REQUIRED }, { .name = NULL }
    };
    static const sl_plugin_descriptor route = {
        .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor), .name = "route",
        .kind = SL_PLUGIN_TRANSFORM, .options = opts, .create = bad_create, .process = bad_process,
        .destroy = bad_destroy, .config_size = 8,
    };
    sl_registry *r = NULL;
    sl_error err = {0};
    assert_int_equal(sl_registry_new(&r), 0);
    assert_int_equal(sl_registry_add(r, &route, &err), 0);
    sl_compile_opts o = { .registry = r, .plugin_dir = "d" };
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), SL_EINVAL);
    const sl_diag *g = find_diag(&d, "/table_migrate_rule", SL_TC_PLUGIN);
    assert_non_null(g);
    assert_non_null(strstr(g->msg, "plugin route"));
    int required = 0;
    for (size_t i = 0; i < d.n; i++)
        required += strstr(d.v[i].msg, "\"flavour\" is required") != NULL;
    assert_true(required >= 1);
    sl_diags_free(&d);
    sl_registry_free(r);
}

/* Plugin capabilities (ABI 1.2): a reader that gives only key columns in before images, in
 * front of a sink that needs full before images, is refused at compile time with the stage and
 * both plugins named; the same reader with a default (pre-1.2) sink compiles its phase fine. */
static void test_caps_misfit(void **state)
{
    static const sl_plugin_caps minimal = {
        .struct_size = sizeof(sl_plugin_caps), .gives = SL_CAP_EV_ALL,
        .gives_images = SL_CAP_IMG_KEY | SL_CAP_IMG_AFTER, .order = SL_CAP_ORDER_KEEPS,
    };
    static const sl_plugin_caps full_before = {
        .struct_size = sizeof(sl_plugin_caps), .takes = SL_CAP_EV_ALL,
        .needs_images = SL_CAP_IMG_BEFORE, .order = SL_CAP_ORDER_NEEDS,
        .delivery = SL_CAP_EXACTLY_ONCE,
    };
#define CAPS_DESC(nm, k, c) { .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor), \
    .name = nm, .kind = k, .create = bad_create, .run = bad_run, .process = bad_process, \
    .destroy = bad_destroy, .caps = c }
    static const sl_plugin_descriptor descs[] = {
        CAPS_DESC("binlog-reader", SL_PLUGIN_SOURCE, &minimal),
        CAPS_DESC("event-filter", SL_PLUGIN_TRANSFORM, NULL),
        CAPS_DESC("route", SL_PLUGIN_TRANSFORM, NULL),
        CAPS_DESC("mysql-sink", SL_PLUGIN_SINK, &full_before),
        CAPS_DESC("mysql-sink", SL_PLUGIN_SINK, NULL),
    };
#undef CAPS_DESC
    const char *want = "incremental phase of source s1: stage sink does not fit: mysql-sink "
                       "needs full before images, but route gives only the key columns in before "
                       "images";
    for (int fits = 0; fits <= 1; fits++) {
        sl_registry *r = NULL;
        sl_error err = {0};
        assert_int_equal(sl_registry_new(&r), 0);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(sl_registry_add(r, &descs[i == 3 ? 3 + (size_t)fits : i], &err), 0);
        sl_compile_opts o = { .registry = r, .plugin_dir = "d" };
        sl_diags d = {0};
        sl_task_plan *plan = NULL;
        /* Errors either way (options undeclared, mysql-dump and loader missing); look for ours. */
        assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), SL_EINVAL);
        int found = 0;
        for (size_t i = 0; i < d.n; i++)
            if (strcmp(d.v[i].msg, want) == 0) {
                assert_int_equal(d.v[i].code, SL_TC_PLUGIN);
                found++;
            }
        assert_int_equal(found, fits ? 0 : 1);
        sl_diags_free(&d);
        sl_registry_free(r);
    }
}

/* Compiles TASK with its task_mode replaced and the given members added at its end. */
static int compile_with(const char *mode, const char *extra, sl_task_plan **plan, sl_diags *d)
{
    char buf[4096];
    const char *m = strstr(TASK, "\"all\"");
    int n = snprintf(buf, sizeof buf, "%.*s\"%s\"%.*s, %s}", (int)(m - TASK), TASK, mode,
                     (int)(strlen(TASK) - (size_t)(m - TASK) - 5 - 1), m + 5, extra);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    sl_compile_opts o = { .registry = reg, .plugin_dir = "/opt/sluice/plugins" };
    return sl_task_compile(buf, strlen(buf), &o, plan, d);
}

static const sl_pipeline_spec *phase_of(const sl_task_plan *p, const char *src, const char *ph)
{
    for (size_t i = 0; i < p->nsubtasks; i++)
        for (size_t j = 0; strcmp(p->subtasks[i].source_name, src) == 0 && j < p->subtasks[i].nphases; j++)
            if (strcmp(p->subtasks[i].phase_names[j], ph) == 0)
                return p->subtasks[i].phases[j];
    return NULL;
}

static void assert_stages(const sl_pipeline_spec *p, const char *const *ids)
{
    size_t n = 0;
    assert_non_null(p);
    for (; ids[n]; n++) {
        assert_true(n < p->nstages);
        assert_string_equal(p->stages[n].id, ids[n]);
    }
    assert_int_equal(p->nstages, n);
    assert_int_equal(p->nedges + 1, n);
}

/* "plugins" puts custom transforms at their point in the phases they name, with their options
 * and only the rules they name; "sink" replaces mysql-sink in an incremental task. */
static void test_custom_stages(void **state)
{
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(compile_with("all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"after-route\","
                                  " \"rules\": [0], \"options\": {\"tag\": \"x\", \"every\": 5}},"
                                  " {\"name\": \"tag-rows\", \"at\": \"after-filter\", \"phase\": "
                                  "\"incremental\", \"options\": {\"tag\": \"y\"}}]", &plan, &d), 0);
    static const char *const full[] = { "dump", "route", "plugin0", "load", NULL };
    static const char *const incr[] = { "reader", "filter", "plugin1", "route", "plugin0", "sink", NULL };
    assert_stages(phase_of(plan, "s1", "full"), full);
    assert_stages(phase_of(plan, "s1", "incremental"), incr);
    const sl_pipeline_spec *p = phase_of(plan, "s1", "full");
    assert_string_equal(p->stages[2].plugin, "tag-rows");
    json_t *o = stage_opts(p, "plugin0");
    assert_string_equal(json_string_value(json_object_get(o, "tag")), "x");
    assert_int_equal(json_integer_value(json_object_get(o, "every")), 5);
    assert_string_equal(json_string_value(json_object_get(o, "task_name")), "t-1");
    assert_int_equal(json_array_size(json_object_get(o, "rules")), 1);
    json_decref(o);
    /* rule 0 is s1's: the same stage on s2 gets no rule, stage plugin1 gets all of s2's */
    o = stage_opts(phase_of(plan, "s2", "incremental"), "plugin0");
    assert_int_equal(json_array_size(json_object_get(o, "rules")), 0);
    json_decref(o);
    o = stage_opts(phase_of(plan, "s2", "incremental"), "plugin1");
    assert_int_equal(json_array_size(json_object_get(o, "rules")), 1);
    json_decref(o);
    sl_task_plan_free(plan);
    plan = NULL;
    sl_diags_free(&d);

    static const char INCR[] =
        "{\"name\": \"t-2\", \"task_mode\": \"incremental\","
        " \"target_config\": {\"host\": \"tgt\", \"port\": 4000, \"user\": \"root\"},"
        " \"table_migrate_rule\": [{\"source\": {\"source_name\": \"s1\", \"schema\": \"app\"}}],"
        " \"source_config\": {\"source_conf\": [{\"source_name\": \"s1\","
        "   \"binlog_name\": \"mysql-bin.000003\", \"binlog_pos\": 77}]},"
        " \"sink\": {\"name\": \"jsonl-sink\", \"options\": {\"path\": \"/data/out.jsonl\"}}}";
    sl_compile_opts co = { .registry = reg };
    assert_int_equal(sl_task_compile(INCR, strlen(INCR), &co, &plan, &d), 0);
    static const char *const sinked[] = { "reader", "filter", "route", "sink", NULL };
    p = phase_of(plan, "s1", "incremental");
    assert_stages(p, sinked);
    assert_string_equal(p->stages[3].plugin, "jsonl-sink");
    o = stage_opts(p, "sink");
    assert_string_equal(json_string_value(json_object_get(o, "path")), "/data/out.jsonl");
    assert_string_equal(json_string_value(json_object_get(o, "source_name")), "s1");
    assert_null(json_object_get(o, "target_host"));   /* mysql-sink's options are not forced on it */
    json_decref(o);
    sl_task_plan_free(plan);
    sl_diags_free(&d);
}

/* A sink whose caps take dump chunks replaces the loader in the full phase of task_mode all,
 * full and load (and mysql-sink in the incremental phase); one that does not (or declares no
 * caps) is refused at /sink, naming the plugin, once however many sources; task_mode dump has
 * no sink at all. */
static void test_full_sink(void **state)
{
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    const char *sink = "\"sink\": {\"name\": \"chunk-sink\", \"options\": {\"path\": \"/o\"}}";
    assert_int_equal(compile_with("all", sink, &plan, &d), 0);
    static const char *const full[] = { "dump", "route", "sink", NULL };
    static const char *const incr[] = { "reader", "filter", "route", "sink", NULL };
    for (int s = 1; s <= 2; s++) {
        const char *src = s == 1 ? "s1" : "s2";
        assert_stages(phase_of(plan, src, "full"), full);
        assert_stages(phase_of(plan, src, "incremental"), incr);
        assert_string_equal(phase_of(plan, src, "full")->stages[2].plugin, "chunk-sink");
        assert_string_equal(phase_of(plan, src, "incremental")->stages[3].plugin, "chunk-sink");
        json_t *o = stage_opts(phase_of(plan, src, "full"), "sink");
        assert_string_equal(json_string_value(json_object_get(o, "path")), "/o");
        assert_string_equal(json_string_value(json_object_get(o, "source_name")), src);
        assert_null(json_object_get(o, "import_threads"));   /* the loader's options stay its own */
        json_decref(o);
    }
    sl_task_plan_free(plan);
    plan = NULL;
    sl_diags_free(&d);
    for (int m = 0; m < 2; m++) {
        assert_int_equal(compile_with(m ? "load" : "full", sink, &plan, &d), 0);
        assert_stages(phase_of(plan, "s1", "full"), full);
        assert_null(phase_of(plan, "s1", "incremental"));
        sl_task_plan_free(plan);
        plan = NULL;
        sl_diags_free(&d);
    }

    static const struct { const char *mode, *extra, *text; } bad[] = {
        { "all", "\"sink\": {\"name\": \"jsonl-sink\", \"options\": {\"path\": \"/o\"}}",
          "sink jsonl-sink does not take dump chunks (its caps do not declare SL_EV_CHUNK), so it "
          "cannot load the full copy of task_mode \"all\": use it in task_mode \"incremental\"" },
        { "full", "\"sink\": {\"name\": \"jsonl-sink\", \"options\": {\"path\": \"/o\"}}",
          "sink jsonl-sink does not take dump chunks" },
        { "dump", "\"sink\": {\"name\": \"chunk-sink\", \"options\": {\"path\": \"/o\"}}",
          "task_mode \"dump\" only writes the dump files: it has no sink" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&d, 0, sizeof d);
        assert_int_equal(compile_with(bad[i].mode, bad[i].extra, &plan, &d), SL_EINVAL);
        assert_null(plan);
        size_t at_sink = 0;
        for (size_t k = 0; k < d.n; k++)
            if (!strcmp(d.v[k].path, "/sink")) {
                at_sink++;
                assert_int_equal(d.v[k].code, SL_TC_UNSUPPORTED);
                if (!strstr(d.v[k].msg, bad[i].text))
                    fail_msg("case %zu: want \"%s\", got \"%s\"", i, bad[i].text, d.v[k].msg);
            }
        if (at_sink != 1 || d.n != 1) {   /* once for both sources, and nothing else */
            char *all = sl_diags_format(&d);
            fail_msg("case %zu: want one error at /sink, got:\n%s", i, all ? all : "");
        }
        sl_diags_free(&d);
    }
}

/* Each wrong custom stage is refused at the field that says it. */
static void test_custom_stage_errors(void **state)
{
    static const struct { const char *mode, *extra, *path; int code; const char *text; } cases[] = {
        { "all", "\"plugins\": [{\"name\": \"nope\", \"at\": \"after-route\"}]", "/plugins/0/name",
          SL_TC_PLUGIN, "plugin nope not found in /opt/sluice/plugins" },
        { "all", "\"plugins\": [{\"name\": \"jsonl-sink\", \"at\": \"before-sink\", \"options\": "
          "{\"path\": \"p\"}}]", "/plugins/0/name", SL_TC_PLUGIN, "a task has one sink" },
        { "incremental", "\"sink\": {\"name\": \"tag-rows\", \"options\": {\"tag\": \"t\"}}",
          "/sink/name", SL_TC_PLUGIN, "plugin tag-rows is a transform" },
        { "all", "\"sink\": {\"name\": \"jsonl-sink\"}", "/sink", SL_TC_UNSUPPORTED, "incremental" },
        { "all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"after-route\", \"options\": "
          "{\"tag\": \"t\", \"evary\": 2}}]", "/plugins/0/options/evary", SL_TC_PLUGIN,
          "unknown option \"evary\" for plugin tag-rows (did you mean \"every\"?)" },
        { "all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"after-route\", \"options\": "
          "{\"tag\": \"t\", \"every\": 0}}]", "/plugins/0/options/every", SL_TC_PLUGIN, "every" },
        { "all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"after-route\"}]",
          "/plugins/0/options", SL_TC_PLUGIN, "tag" },
        { "all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"middle\"}]", "/plugins/0/at",
          SL_TC_ENUM, "\"middle\"" },
        { "all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"after-route\", \"rules\": [2]}]",
          "/plugins/0/rules/0", SL_TC_RANGE, "no entry 2" },
        { "all", "\"plugins\": [{\"name\": \"tag-rows\", \"at\": \"after-route\", \"opts\": {}}]",
          "/plugins/0/opts", SL_TC_UNKNOWN_FIELD, NULL },
        { "all", "\"plugins\": {\"name\": \"tag-rows\"}", "/plugins", SL_TC_TYPE, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_task_plan *plan = NULL;
        sl_diags d = {0};
        assert_int_equal(compile_with(cases[i].mode, cases[i].extra, &plan, &d), SL_EINVAL);
        assert_null(plan);
        const sl_diag *g = find_diag(&d, cases[i].path, cases[i].code);
        if (!g || (cases[i].text && !strstr(g->msg, cases[i].text))) {
            char *all = sl_diags_format(&d);
            fail_msg("case %zu: want %s %d %s, got:\n%s", i, cases[i].path, cases[i].code,
                     cases[i].text ? cases[i].text : "", all ? all : "");
        }
        sl_diags_free(&d);
    }
}

/* The "verify" extension: a good one compiles and stays in the plan's task; each bad field is
 * refused at its path. */
static void test_verify_option(void **state)
{
    (void)state;
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(compile_with("all", "\"verify\": {\"threads\": 2, \"chunk_rows\": 500, "
                                  "\"chunks_per_second\": 2.5, \"retries\": 4, \"retry_delay_ms\": "
                                  "250, \"max_rows\": 10}", &plan, &d), 0);
    assert_non_null(plan);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(plan->task, "verify"),
                                                        "chunk_rows")), 500);
    sl_task_plan_free(plan);
    sl_diags_free(&d);
    static const struct { const char *extra, *path; int code; } cases[] = {
        { "\"verify\": {\"threads\": 0}", "/verify/threads", SL_TC_RANGE },
        { "\"verify\": {\"chunk_rows\": \"9\"}", "/verify/chunk_rows", SL_TC_TYPE },
        { "\"verify\": {\"chunks_per_second\": -1}", "/verify/chunks_per_second", SL_TC_RANGE },
        { "\"verify\": {\"chunks_per_second\": true}", "/verify/chunks_per_second", SL_TC_TYPE },
        { "\"verify\": {\"retries\": 21}", "/verify/retries", SL_TC_RANGE },
        { "\"verify\": {\"max_rows\": -1}", "/verify/max_rows", SL_TC_RANGE },
        { "\"verify\": {\"retry_delay\": 5}", "/verify/retry_delay", SL_TC_UNKNOWN_FIELD },
        { "\"verify\": [1]", "/verify", SL_TC_TYPE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan = NULL;
        memset(&d, 0, sizeof d);
        assert_int_equal(compile_with("all", cases[i].extra, &plan, &d), SL_EINVAL);
        assert_null(plan);
        if (!find_diag(&d, cases[i].path, cases[i].code)) {
            char *all = sl_diags_format(&d);
            fail_msg("case %zu: want %s %d, got:\n%s", i, cases[i].path, cases[i].code, all ? all : "");
        }
        sl_diags_free(&d);
    }
}

static void test_known_sources(void **state)
{
    const char *srcjs =
        "{\"data\": [{\"source_name\": \"s1\", \"host\": \"h1\", \"port\": 3306, \"user\": \"u\","
        " \"password\": \"p\", \"flavor\": \"mariadb\", \"enable_gtid\": true,"
        " \"security\": {\"ssl_ca_content\": \"CA\", \"ssl_cert_content\": \"\", \"ssl_key_content\": \"\"}},"
        " {\"source_name\": \"s2\", \"host\": \"h2\", \"port\": 3307, \"user\": \"u2\"}], \"total\": 2}";
    sl_source_def *defs = NULL;
    size_t n = 0;
    sl_diags d = {0};
    /* "total" is not a Source field: the list form is {"data": [...]} and total is ignored */
    assert_int_equal(sl_source_defs_parse(srcjs, strlen(srcjs), &defs, &n, &d), 0);
    assert_int_equal(n, 2);
    assert_string_equal(defs[0].flavor, "mariadb");
    assert_string_equal(defs[0].ssl_ca, "CA");
    assert_int_equal(defs[1].port, 3307);
    sl_compile_opts o = { .registry = reg, .sources = defs, .nsources = n, .check_sources = 1 };
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), 0);
    assert_true(plan->subtasks[0].source_known);
    json_t *rd = stage_opts(plan->subtasks[0].phases[1], "reader");
    assert_string_equal(json_string_value(json_object_get(rd, "source_host")), "h1");
    assert_string_equal(json_string_value(json_object_get(rd, "flavor")), "mariadb");
    assert_true(json_is_true(json_object_get(rd, "enable_gtid")));
    assert_string_equal(json_string_value(json_object_get(rd, "source_ssl_ca")), "CA");
    json_decref(rd);
    sl_task_plan_free(plan);

    /* only s1 known: s2 is reported */
    o.nsources = 1;
    assert_int_equal(sl_task_compile(TASK, strlen(TASK), &o, &plan, &d), SL_EINVAL);
    const sl_diag *g = find_diag(&d, "/source_config/source_conf/1/source_name", SL_TC_SOURCE_UNKNOWN);
    assert_non_null(g);
    assert_string_equal(g->msg, "source config with ID s2 not exists");
    sl_diags_free(&d);
    sl_source_defs_free(defs, n);

    const char *bad = "[{\"source_name\": \"a\", \"host\": \"h\", \"port\": 0, \"user\": \"u\", \"flavor\": \"pg\"}]";
    assert_int_equal(sl_source_defs_parse(bad, strlen(bad), &defs, &n, &d), SL_EINVAL);
    assert_non_null(find_diag(&d, "/0/port", SL_TC_RANGE));
    assert_non_null(find_diag(&d, "/0/flavor", SL_TC_ENUM));
    sl_diags_free(&d);
    assert_int_equal(sl_source_defs_parse("{", 1, &defs, &n, &d), SL_EPARSE);
    sl_diags_free(&d);
}

static void test_lua_stage(void **state)
{
    char *js = with("\"source_config\"", "\"lua_scripts\": [{\"tables\": [{\"source_name\": \"s2\", "
                    "\"schema\": \"app\", \"table\": \"*\"}], \"source\": \"function on_row(ev) return true end\"}], "
                    "\"source_config\"");
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    int rc = sl_task_compile(js, strlen(js), &o, &plan, &d);
#ifdef SLUICE_TEST_HAVE_LUA
    assert_int_equal(rc, 0);
    /* s1 has no script: no lua stage; s2 has one in both phases, before the sink/loader */
    assert_int_equal(plan->subtasks[0].phases[1]->nstages, 4);
    const sl_pipeline_spec *inc = plan->subtasks[1].phases[1], *full = plan->subtasks[1].phases[0];
    assert_int_equal(inc->nstages, 5);
    assert_string_equal(inc->stages[3].plugin, "lua-hook");
    assert_string_equal(inc->stages[4].plugin, "mysql-sink");
    assert_string_equal(full->stages[2].plugin, "lua-hook");
    json_t *l = stage_opts(inc, "lua");
    json_t *s0 = json_array_get(json_object_get(l, "scripts"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "on_row")), "on_row");
    assert_string_equal(json_string_value(json_object_get(s0, "on_ddl")), "");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(s0, "tables"), 0),
                                                          "table")), "*");
    json_decref(l);
    sl_task_plan_free(plan);
#else
    assert_int_equal(rc, SL_EINVAL);
    assert_non_null(find_diag(&d, "/lua_scripts", SL_TC_LUA));
#endif
    sl_diags_free(&d);
    free(js);
}

#ifdef SLUICE_TEST_HAVE_LUA
/* Compile the task with one script file under opts; returns the message of the /lua_scripts/0/file
 * diagnostic, or NULL when the task compiled. */
static char *compile_script_file(const char *file, const sl_compile_opts *o)
{
    char frag[512];
    snprintf(frag, sizeof frag, "\"lua_scripts\": [{\"tables\": [{\"source_name\": \"s2\", "
             "\"schema\": \"app\", \"table\": \"*\"}], \"file\": \"%s\"}], \"source_config\"", file);
    char *js = with("\"source_config\"", frag);
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    int rc = sl_task_compile(js, strlen(js), o, &plan, &d);
    char *msg = NULL;
    if (rc != 0) {
        const sl_diag *g = find_diag(&d, "/lua_scripts/0/file", SL_TC_LUA);
        assert_non_null(g);
        msg = strdup(g->msg);
    }
    sl_task_plan_free(plan);
    sl_diags_free(&d);
    free(js);
    return msg;
}
#endif

#ifdef SLUICE_TEST_HAVE_LUA
/* The reason after "cannot read Lua script NAME: " (the name differs between the paths compared). */
static const char *why_of(const char *msg)
{
    const char *w = msg ? strstr(msg, ": ") : NULL;
    if (!w)
        fail_msg("no reason in '%s'", msg ? msg : "(compiled)");
    return w + 2;
}
#endif

/* The server compiles tasks from the network: a script file must be a regular file inside its
 * script directory, never any file the server can read; and what it answers about a path
 * outside must not depend on whether something exists there (it told "No such file or
 * directory" from "outside the script directory", an oracle for the server's files). */
static void test_script_root(void **state)
{
#ifdef SLUICE_TEST_HAVE_LUA
    char root[] = "/tmp/sluice-lua-root-XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[512], outside[600], missing[600], link[512], dangling[512], sub[512];
    snprintf(path, sizeof path, "%s/ok.lua", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("function on_row(ev) return true end\n", f);
    fclose(f);
    snprintf(outside, sizeof outside, "%s-outside.lua", root);
    snprintf(missing, sizeof missing, "%s-missing.lua", root);
    assert_non_null(f = fopen(outside, "w"));
    fputs("function on_row(ev) return true end\n", f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/sub", root);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/fifo.lua", root);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(link, sizeof link, "%s/link.lua", root);
    assert_int_equal(symlink(outside, link), 0);
    snprintf(dangling, sizeof dangling, "%s/dangling.lua", root);
    assert_int_equal(symlink(missing, dangling), 0);

    sl_compile_opts o = { .registry = reg, .script_root = root };
    char *m = compile_script_file("ok.lua", &o);
    assert_null(m);
    assert_non_null(m = compile_script_file("/etc/hostname", &o));
    assert_non_null(strstr(m, "absolute paths are not accepted here"));
    free(m);
    /* names that climb out: refused on their text, whether something is there or not */
    char rel[5][700];
    snprintf(rel[0], sizeof rel[0], "../%s", strrchr(outside, '/') + 1);
    snprintf(rel[1], sizeof rel[1], "../%s", strrchr(missing, '/') + 1);
    snprintf(rel[2], sizeof rel[2], "sub/../../%s", strrchr(outside, '/') + 1);
    snprintf(rel[3], sizeof rel[3], "./sub/../../%s", strrchr(missing, '/') + 1);
    snprintf(rel[4], sizeof rel[4], "../..%s", outside);
    char *first = compile_script_file(rel[0], &o);
    assert_non_null(strstr(why_of(first), "it is outside the script directory"));
    for (int i = 1; i < 5; i++) {
        m = compile_script_file(rel[i], &o);
        if (strcmp(why_of(m), why_of(first)) != 0)
            fail_msg("%s: '%s', but %s: '%s'", rel[0], first, rel[i], m);
        free(m);
    }
    free(first);
    /* links out (to a file or to nothing) and a missing file: one answer for all three */
    first = compile_script_file("link.lua", &o);
    assert_non_null(strstr(why_of(first), "no such file in the script directory"));
    static const char *const same[] = { "dangling.lua", "missing.lua", "sub/missing.lua",
                                        "sub/../link.lua" };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        m = compile_script_file(same[i], &o);
        if (strcmp(why_of(m), why_of(first)) != 0)
            fail_msg("link.lua: '%s', but %s: '%s'", first, same[i], m);
        free(m);
    }
    free(first);
    assert_non_null(m = compile_script_file("fifo.lua", &o));    /* would block the request */
    assert_non_null(strstr(m, "not a regular file"));
    free(m);
    /* Without a root (sluice check-task), paths are the user's own business, but a FIFO is
     * still refused rather than waited on. */
    sl_compile_opts cli = { .registry = reg, .base_dir = root };
    assert_null(compile_script_file(outside, &cli));
    assert_non_null(m = compile_script_file("fifo.lua", &cli));
    free(m);
    unlink(link);
    unlink(dangling);
    unlink(path);
    unlink(outside);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/ok.lua", root);
    unlink(path);
    rmdir(root);
#else
    fail_msg("sluice is built without Lua: the script-root policy cannot be tested");
#endif
}

static void test_json_errors(void **state)
{
    const char *js = "{\n  \"name\": \"a\",\n  \"b\": [1,\n        2,\n  ]\n}";
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(js, strlen(js), NULL, &plan, &d), SL_EPARSE);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].path, "");
    assert_int_equal(d.v[0].code, SL_TC_JSON);
    assert_non_null(strstr(d.v[0].msg, "line 5, column 3"));
    assert_non_null(strstr(d.v[0].msg, "trailing comma (line 4, column 10)"));
    sl_diags_free(&d);
    /* a multi-character token is reported where it starts */
    js = "{\"name\": \"a\" \"task_mode\": 1}";
    assert_int_equal(sl_task_compile(js, strlen(js), NULL, &plan, &d), SL_EPARSE);
    assert_non_null(strstr(d.v[0].msg, "line 1, column 14"));
    sl_diags_free(&d);
    assert_int_equal(sl_task_compile(NULL, 0, NULL, &plan, &d), SL_EPARSE);
    sl_diags_free(&d);
}

static void test_gtid(void **state)
{
    char m[256];
    const char *u = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
    char s[256];
    snprintf(s, sizeof s, "%s:1-5:7:9-10, 03fc0263-28c7-11e7-a653-6c0b84d59f30:1", u);
    assert_int_equal(sl_gtid_set_check(s, "mysql", m, sizeof m), 0);
    assert_int_equal(sl_gtid_set_check(s, NULL, m, sizeof m), 0);
    assert_int_equal(sl_gtid_set_check(s, "mariadb", m, sizeof m), SL_EINVAL);
    snprintf(s, sizeof s, "%s:tag_1:1-3", u);
    assert_int_equal(sl_gtid_set_check(s, "mysql", m, sizeof m), 0);
    snprintf(s, sizeof s, "%s", u);
    assert_int_equal(sl_gtid_set_check(s, "mysql", m, sizeof m), SL_EINVAL);
    snprintf(s, sizeof s, "%s:5-3", u);
    assert_int_equal(sl_gtid_set_check(s, "mysql", m, sizeof m), SL_EINVAL);
    snprintf(s, sizeof s, "%s:1-3,", u);
    assert_int_equal(sl_gtid_set_check(s, "mysql", m, sizeof m), SL_EINVAL);
    assert_int_equal(sl_gtid_set_check("0-1-100,1-2-5", "mariadb", m, sizeof m), 0);
    assert_int_equal(sl_gtid_set_check("0-1-100, 1-2-5", NULL, m, sizeof m), 0);
    assert_int_equal(sl_gtid_set_check("0-1-100,0-2-5", "mariadb", m, sizeof m), SL_EINVAL);
    assert_non_null(strstr(m, "domain 0"));
    assert_int_equal(sl_gtid_set_check("0-1", "mariadb", m, sizeof m), SL_EINVAL);
    assert_int_equal(sl_gtid_set_check("4294967296-1-1", "mariadb", m, sizeof m), SL_EINVAL);
    assert_int_equal(sl_gtid_set_check("0-1-18446744073709551616", "mariadb", m, sizeof m), SL_EINVAL);
    assert_int_equal(sl_gtid_set_check("", "mysql", m, sizeof m), 0);
    assert_int_equal(sl_gtid_set_check(NULL, NULL, NULL, 0), 0);
}

/* The precheck items sluice runs (precheck.h) are acted on: ignoring them draws no 49120
 * warning; any other item does, and names only the others. */
static void test_checking_items_acted_on(void **state)
{
    (void)state;
    char *js = with("\"task_mode\": \"all\"", "\"task_mode\": \"all\", \"ignore_checking_items\": "
                    "[\"auto_increment_ID\", \"schema_of_shard_tables\", \"all\"]");
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), 0);
    assert_null(find_diag(&d, "/ignore_checking_items", SL_TC_IGNORED));
    sl_diags_free(&d);
    sl_task_plan_free(plan);
    free(js);
    js = with("\"task_mode\": \"all\"", "\"task_mode\": \"all\", \"ignore_checking_items\": "
              "[\"auto_increment_ID\", \"version\"]");
    plan = NULL;
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), 0);
    const sl_diag *w = find_diag(&d, "/ignore_checking_items", SL_TC_IGNORED);
    assert_non_null(w);
    assert_non_null(strstr(w->msg, ": version has nothing to skip"));
    sl_diags_free(&d);
    sl_task_plan_free(plan);
    free(js);
}

/* DM fields sluice accepts without acting on them are named in warnings (49120), not ignored
 * silently; a MySQL GTID set as an incremental start position is refused. */
static void test_ignored_fields_warn(void **state)
{
    char *js = with("\"task_mode\": \"all\"", "\"task_mode\": \"all\", \"timezone\": \"+08:00\", "
                    "\"ignore_checking_items\": [\"version\"]");
    char *js2 = NULL;
    {
        const char *from = "\"password\": \"pw\"}";
        const char *to = "\"password\": \"pw\", \"session\": {\"foreign_key_checks\": \"1\"}, "
                         "\"security\": {\"cert_allowed_cn\": [\"db\"]}}";   /* no TLS: nothing to check */
        const char *p = strstr(js, from);
        assert_non_null(p);
        size_t n = strlen(js) + strlen(to) + 1;
        js2 = malloc(n);
        snprintf(js2, n, "%.*s%s%s", (int)(p - js), js, to, p + strlen(from));
    }
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    sl_diags d = {0};
    assert_int_equal(sl_task_compile(js2, strlen(js2), &o, &plan, &d), 0);
    const char *paths[] = { "/timezone", "/ignore_checking_items", "/target_config/session/foreign_key_checks",
                            "/target_config/security/cert_allowed_cn" };
    for (size_t i = 0; i < 4; i++) {
        const sl_diag *w = find_diag(&d, paths[i], SL_TC_IGNORED);
        if (!w)
            fail_msg("no 49120 warning at %s", paths[i]);
        assert_int_equal(w->severity, SL_DIAG_WARNING);
    }
    sl_diags_free(&d);
    sl_task_plan_free(plan);
    free(js);
    free(js2);

    js = with("\"task_mode\": \"all\"", "\"task_mode\": \"incremental\"");
    char *js3 = NULL;
    {
        const char *from = "{\"source_name\": \"s1\"}";
        const char *to = "{\"source_name\": \"s1\", \"binlog_gtid\": \"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5\"}";
        const char *p = strstr(js, from);
        assert_non_null(p);
        size_t n = strlen(js) + strlen(to) + 1;
        js3 = malloc(n);
        snprintf(js3, n, "%.*s%s%s", (int)(p - js), js, to, p + strlen(from));
    }
    assert_int_equal(sl_task_compile(js3, strlen(js3), &o, &plan, &d), SL_EINVAL);
    assert_non_null(find_diag(&d, "/source_config/source_conf/0/binlog_gtid", SL_TC_UNSUPPORTED));
    sl_diags_free(&d);
    free(js);
    free(js3);
}

static void test_diags_format(void **state)
{
    sl_diags d = {0};
    assert_int_equal(sl_diags_add(&d, SL_DIAG_ERROR, 49101, "/a/b", "bad %d", 7), 0);
    assert_int_equal(sl_diags_add(&d, SL_DIAG_WARNING, 49118, NULL, "hmm"), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(sl_diags_add(&d, SL_DIAG_ERROR, 1, "/x", "%s", "y"), 0);
    assert_int_equal(sl_diags_errors(&d), 21);
    char *s = sl_diags_format(&d);
    assert_non_null(s);
    assert_true(strncmp(s, "/a/b: bad 7 (code 49101)\nwarning: /: hmm (code 49118)\n/x: y (code 1)\n", 67) == 0);
    free(s);
    sl_diags_free(&d);
    assert_int_equal(d.n, 0);
    sl_diags_free(NULL);
    sl_task_plan_free(NULL);
}

static void test_pointer_escapes(void **state)
{
    char *js = with("\"f1\": {", "\"a/b~c\": {\"ignore_event\": [\"nope\"]}, \"f1\": {");
    sl_diags d = {0};
    sl_compile_opts o = { .registry = reg };
    sl_task_plan *plan = NULL;
    assert_int_equal(sl_task_compile(js, strlen(js), &o, &plan, &d), SL_EINVAL);
    assert_non_null(find_diag(&d, "/binlog_filter_rule/a~1b~0c/ignore_event/0", SL_TC_EVENT));
    sl_diags_free(&d);
    free(js);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_facts),
        cmocka_unit_test(test_plan_all),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_wrapped_paths),
        cmocka_unit_test(test_verify_option),
        cmocka_unit_test(test_every_error_once),
        cmocka_unit_test(test_missing_plugins),
        cmocka_unit_test(test_plugin_option_mismatch),
        cmocka_unit_test(test_known_sources),
        cmocka_unit_test(test_lua_stage),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_gtid),
        cmocka_unit_test(test_diags_format),
        cmocka_unit_test(test_ignored_fields_warn),
        cmocka_unit_test(test_checking_items_acted_on),
        cmocka_unit_test(test_pointer_escapes),
        cmocka_unit_test(test_script_root),
        cmocka_unit_test(test_caps_misfit),
        cmocka_unit_test(test_custom_stages),
        cmocka_unit_test(test_custom_stage_errors),
        cmocka_unit_test(test_full_sink),
        cmocka_unit_test(test_machine_threads),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
