/*
 * task.c - checks a DM OpenAPI Task in one pass (types, enums, names referring to names,
 * patterns, regexes, numbers, GTID sets, start positions, Lua scripts) and reports every
 * problem with its JSON path; the model it builds is handed to plan.c to make the pipelines.
 */
#include "task.h"
#include "sluice/file.h"
#include "sluice/match.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#ifdef SLUICE_HAVE_LUA
#include "sluice/lua.h"
#endif

/* ---- small checks ------------------------------------------------------------------------- */

/* A string member that must be one of choices (NULL-terminated). Returns it, or NULL. */
static const char *get_enum(tc *c, json_t *o, const char *key, const char *const *choices, int req)
{
    json_t *v = sl__tc_get(c, o, key, TC_STR, req);
    if (!v)
        return NULL;
    const char *s = json_string_value(v);
    for (const char *const *ch = choices; *ch; ch++)
        if (strcmp(*ch, s) == 0)
            return *ch;
    char list[512];
    size_t n = 0;
    list[0] = '\0';
    for (const char *const *ch = choices; *ch && n < sizeof list; ch++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s\"%s\"", ch == choices ? "" : ", ", *ch);
    sl__tc_err(c, key, SL_TC_ENUM, "\"%s\" must be one of %s, not \"%s\"", key, list, s);
    return NULL;
}

/* An integer member within [lo, hi]; returns 1 and *out when present and valid. */
static int get_int(tc *c, json_t *o, const char *key, long long lo, long long hi, const char *why,
                   long long *out)
{
    json_t *v = sl__tc_get(c, o, key, TC_INT, 0);
    if (!v)
        return 0;
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        sl__tc_err(c, key, SL_TC_RANGE, "\"%s\" must be between %lld and %lld%s, not %lld", key, lo,
                   hi, why ? why : "", x);
        return 0;
    }
    *out = x;
    return 1;
}

static const char *get_str(tc *c, json_t *o, const char *key, int req)
{
    json_t *v = sl__tc_get(c, o, key, TC_STR, req);
    return v ? json_string_value(v) : NULL;
}

static int get_bool(tc *c, json_t *o, const char *key, int def)
{
    json_t *v = sl__tc_get(c, o, key, TC_BOOL, 0);
    return v ? json_is_true(v) : def;
}

/* An array of strings; wrong elements are reported. Returns the array or NULL. */
static json_t *get_str_array(tc *c, json_t *o, const char *key, int req)
{
    json_t *a = sl__tc_get(c, o, key, TC_ARR, req);
    if (!a)
        return NULL;
    size_t i, m = sl__tc_push(c, key);
    json_t *x;
    int bad = 0;
    json_array_foreach(a, i, x) {
        if (!json_is_string(x)) {
            size_t k = sl__tc_pushi(c, i);
            sl__tc_err(c, NULL, SL_TC_TYPE, "must be a string, not %s", sl__tc_typename(x));
            sl__tc_pop(c, k);
            bad = 1;
        }
    }
    sl__tc_pop(c, m);
    return bad ? NULL : a;
}

/* An SQL identifier we create or name on the target (meta_schema, route targets). */
static int ident_ok(const char *s, const char **why)
{
    size_t n = strlen(s);
    if (n == 0) {
        *why = "must not be empty";
        return 0;
    }
    if (n > 64) {
        *why = "is longer than MySQL's 64-character identifier limit";
        return 0;
    }
    if (s[n - 1] == ' ') {
        *why = "must not end with a space (MySQL strips it)";
        return 0;
    }
    return 1;
}

/* PEM contents (DM takes the certificate itself, not a file name). */
static void check_pem(tc *c, json_t *sec, const char *key)
{
    const char *s = get_str(c, sec, key, 0);
    if (s && *s && !strstr(s, "-----BEGIN "))
        sl__tc_err(c, key, SL_TC_TLS, "\"%s\" must be the PEM content (\"-----BEGIN ...\"), not a "
                   "file name", key);
}

static const char *const SECURITY_FIELDS[] = {
    "ssl_ca_content", "ssl_cert_content", "ssl_key_content", "cert_allowed_cn", NULL
};

static json_t *check_security(tc *c, json_t *o, const char *key, const char **ca,
                              const char **cert, const char **keyc)
{
    json_t *sec = sl__tc_get(c, o, key, TC_OBJ, 0);
    if (!sec)
        return NULL;
    size_t m = sl__tc_push(c, key);
    sl__tc_known(c, sec, SECURITY_FIELDS);
    check_pem(c, sec, "ssl_ca_content");
    check_pem(c, sec, "ssl_cert_content");
    check_pem(c, sec, "ssl_key_content");
    json_t *cns = get_str_array(c, sec, "cert_allowed_cn", 0);
    const char *sca = get_str(c, sec, "ssl_ca_content", 0), *scrt = get_str(c, sec, "ssl_cert_content", 0);
    if (json_array_size(cns) && !(sca && *sca) && !(scrt && *scrt))
        sl__tc_warn(c, "cert_allowed_cn", SL_TC_IGNORED, "cert_allowed_cn applies to TLS "
                    "connections, and without ssl_ca_content or ssl_cert_content this one is not "
                    "TLS: nothing is checked (as in DM)");
    if (ca)
        *ca = get_str(c, sec, "ssl_ca_content", 0);
    if (cert)
        *cert = get_str(c, sec, "ssl_cert_content", 0);
    if (keyc)
        *keyc = get_str(c, sec, "ssl_key_content", 0);
    const char *crt = get_str(c, sec, "ssl_cert_content", 0), *k = get_str(c, sec, "ssl_key_content", 0);
    if ((crt && *crt) != (k && *k))
        sl__tc_err(c, NULL, SL_TC_TLS, "a client certificate needs both ssl_cert_content and ssl_key_content");
    sl__tc_pop(c, m);
    return sec;
}

/* ---- the task's parts ------------------------------------------------------------------- */

static const char *const TASK_FIELDS[] = {
    "name", "task_mode", "shard_mode", "strict_optimistic_shard_mode", "meta_schema", "timezone",
    "enhance_online_schema_change", "on_duplicate", "target_config", "binlog_filter_rule",
    "table_migrate_rule", "source_config", "status_list", "ignore_checking_items", "lua_scripts",
    "plugins", "sink", "verify", NULL
};
static const char *const TASK_MODES[] = { "all", "full", "incremental", "dump", "load", NULL };
static const char *const SHARD_MODES[] = { "pessimistic", "optimistic", NULL };
static const char *const ON_DUP[] = { "overwrite", "replace", "error", "ignore", NULL };
static const char *const ON_DUP_LOGICAL[] = { "replace", "error", "ignore", NULL };
static const char *const CONSISTENCY[] = { "auto", "none", "flush", "snapshot", "lock", NULL };
static const char *const CHECKING_ITEMS[] = {
    "all", "dump_privilege", "replication_privilege", "version", "server_id", "binlog_enable",
    "binlog_format", "binlog_row_image", "table_schema", "schema_of_shard_tables",
    "auto_increment_ID", "online_ddl", "binlog_db", "meta_position", "conn_number",
    "target_privilege", "empty_region", "region_distribution", "downstream_version", "free_space",
    "downstream_mutex_features", "downstream_table_empty", "primary_key", NULL
};

/* sluice runs DM's shard-merge prechecks only (precheck.h: a start, POST /tasks/check,
 * check-task --precheck); the other items a task may skip have nothing to skip here. */
static void warn_unchecked_items(tc *c, const json_t *ic)
{
    static const char *const RUN[] = { "all", "auto_increment_ID", "schema_of_shard_tables", NULL };
    char names[512] = "";
    size_t n = 0, i;
    json_t *x;
    json_array_foreach(ic, i, x) {
        const char *s = json_string_value(x);
        int run = 0;
        for (const char *const *p = RUN; s && *p && !run; p++)
            run = strcmp(*p, s) == 0;
        if (!s || run)
            continue;
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", n++ ? ", " : "", s);
    }
    if (n)
        sl__tc_warn(c, "ignore_checking_items", SL_TC_IGNORED, "sluice runs DM's shard-merge "
                    "prechecks only (auto_increment_ID, schema_of_shard_tables, when a task starts "
                    "and in POST /tasks/check): %s ha%s nothing to skip", names, n == 1 ? "s" : "ve");
}

static void check_name(tc *c, tk_task *t)
{
    t->name = get_str(c, t->obj, "name", 1);
    if (!t->name)
        return;
    const char *s = t->name;
    size_t n = strlen(s);
    int ok = n > 0 && isalnum((unsigned char)s[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_';
    if (!ok)
        sl__tc_err(c, "name", SL_TC_NAME, "task name \"%s\" must start with a letter or digit and "
                   "contain only letters, digits, '-' and '_'", s);
    else if (!strcmp(s, "templates") || !strcmp(s, "converters"))
        sl__tc_err(c, "name", SL_TC_NAME, "task name \"%s\" is reserved: /api/v1/tasks/%s is "
                   "another endpoint of the DM OpenAPI, so the task could not be managed", s, s);
    else if (n > SL__TASK_NAME_MAX)
        sl__tc_err(c, "name", SL_TC_NAME, "task name is %zu characters long; at most %d fit in the "
                   "checkpoint table names (<name>_syncer_sharding_meta must fit in 64)", n,
                   SL__TASK_NAME_MAX);
}

static const char *const TARGET_FIELDS[] = { "host", "port", "user", "password", "security", "session", NULL };
static const char *const SESSION_FIELDS[] = { "foreign_key_checks", NULL };
static const char *const FK_CHECKS[] = { "0", "1", NULL };

static void check_target(tc *c, tk_task *t)
{
    json_t *o = sl__tc_get(c, t->obj, "target_config", TC_OBJ, 1);
    if (!o)
        return;
    size_t m = sl__tc_push(c, "target_config");
    sl__tc_known(c, o, TARGET_FIELDS);
    t->tgt.host = get_str(c, o, "host", 1);
    if (t->tgt.host && !*t->tgt.host)
        sl__tc_err(c, "host", SL_TC_REQUIRED, "\"host\" must not be empty");
    long long port;
    if (sl__tc_get(c, o, "port", TC_INT, 1) && get_int(c, o, "port", 1, 65535, NULL, &port))
        t->tgt.port = (int)port;
    t->tgt.user = get_str(c, o, "user", 1);
    t->tgt.password = get_str(c, o, "password", 0);
    check_security(c, o, "security", &t->tgt.ssl_ca, &t->tgt.ssl_cert, &t->tgt.ssl_key);
    json_t *ses = sl__tc_get(c, o, "session", TC_OBJ, 0);
    if (ses) {
        size_t k = sl__tc_push(c, "session");
        sl__tc_known(c, ses, SESSION_FIELDS);
        if (get_enum(c, ses, "foreign_key_checks", FK_CHECKS, 0))
            sl__tc_warn(c, "foreign_key_checks", SL_TC_IGNORED, "session.foreign_key_checks is "
                        "not applied: the loader loads with foreign key checks off and the sink "
                        "sets them itself (docs/replication.md: foreign keys)");
        sl__tc_pop(c, k);
    }
    sl__tc_pop(c, m);
}

static const char *const FILTER_FIELDS[] = { "ignore_event", "ignore_sql", NULL };

/* The DDL types a statement is classified as (sl_ddl_event_type), as the warning names them. */
#define STATEMENT_TYPES "create/drop/alter database, create/drop/alter/truncate/rename table, " \
                        "create/drop index, create/drop view"

/* 1 if an ignore_event name can match something: a group, a row kind, or a DDL type that
 * sl_ddl_event_type gives a statement. */
static int statement_type(const char *name)
{
    static const char *const ok[] = {
        "create database", "drop database", "alter database", "create table", "drop table",
        "alter table", "truncate table", "rename table", "create index", "drop index",
        "create view", "drop view", NULL };
    sl_event_class k = sl_event_type_class(name);
    if (k == SL_EVCLASS_GROUP || k == SL_EVCLASS_DML)
        return 1;
    const char *canon = sl_event_type_canonical(name);
    for (int i = 0; canon && ok[i]; i++)
        if (!strcmp(canon, ok[i]))
            return 1;
    return 0;
}

static void check_filters(tc *c, tk_task *t)
{
    json_t *o = sl__tc_get(c, t->obj, "binlog_filter_rule", TC_OBJ, 0);
    t->filters = o;
    if (!o)
        return;
    size_t m = sl__tc_push(c, "binlog_filter_rule");
    const char *name;
    json_t *f;
    json_object_foreach(o, name, f) {
        size_t k = sl__tc_push(c, name);
        if (!*name)
            sl__tc_err(c, NULL, SL_TC_NAME, "a filter rule name must not be empty");
        if (!json_is_object(f)) {
            sl__tc_err(c, NULL, SL_TC_TYPE, "filter rule \"%s\" must be an object, not %s", name,
                       sl__tc_typename(f));
            sl__tc_pop(c, k);
            continue;
        }
        sl__tc_known(c, f, FILTER_FIELDS);
        json_t *ev = get_str_array(c, f, "ignore_event", 0);
        size_t i;
        json_t *x;
        if (ev) {
            size_t e = sl__tc_push(c, "ignore_event");
            json_array_foreach(ev, i, x) {
                if (sl_event_type_class(json_string_value(x)) == SL_EVCLASS_UNKNOWN) {
                    size_t q = sl__tc_pushi(c, i);
                    sl__tc_err(c, NULL, SL_TC_EVENT, "unknown event type \"%s\" (DM's names: all, "
                               "all dml, all ddl, none, insert, update, delete, create table, drop "
                               "table, truncate table, alter table, rename table, create database, "
                               "drop database, create index, drop index, create view, drop view, ...)",
                               json_string_value(x));
                    sl__tc_pop(c, q);
                } else if (!statement_type(json_string_value(x))) {
                    /* DM takes these names too, and matches nothing with them either: a DDL is
                     * classified by its statement (AstToDDLEvent), "drop column" is an ALTER */
                    size_t q = sl__tc_pushi(c, i);
                    sl__tc_warn(c, NULL, SL_TC_EVENT, "\"%s\" is one of DM's names but no "
                                "statement is of that type (a DDL is classified by its statement: "
                                "%s): it filters nothing; use \"alter table\" or an ignore_sql "
                                "pattern", json_string_value(x), STATEMENT_TYPES);
                    sl__tc_pop(c, q);
                }
            }
            sl__tc_pop(c, e);
        }
        json_t *sq = get_str_array(c, f, "ignore_sql", 0);
        if (sq) {
            size_t e = sl__tc_push(c, "ignore_sql");
            json_array_foreach(sq, i, x) {
                sl_error err = {0};
                if (sl_regex_check(json_string_value(x), &err) < 0) {
                    size_t q = sl__tc_pushi(c, i);
                    sl__tc_err(c, NULL, SL_TC_REGEX, "invalid regular expression \"%s\": %s",
                               json_string_value(x), err.msg);
                    sl__tc_pop(c, q);
                }
            }
            sl__tc_pop(c, e);
        }
        sl__tc_pop(c, k);
    }
    sl__tc_pop(c, m);
}

static const char *const MRULE_FIELDS[] = { "source", "target", "binlog_filter_rule", NULL };
static const char *const MSRC_FIELDS[] = { "source_name", "schema", "table", NULL };
static const char *const MTGT_FIELDS[] = { "schema", "table", NULL };

static sl_pattern *compile_pattern(tc *c, const char *key, const char *text)
{
    sl_pattern *p = NULL;
    sl_error err = {0};
    if (sl_pattern_compile(text, &p, &err) < 0) {
        if (err.code == SL_ENOMEM)
            c->oom = 1;
        else
            sl__tc_err(c, key, SL_TC_PATTERN, "%s", err.msg);
        return NULL;
    }
    return p;
}

static void check_target_name(tc *c, const char *key, const char *s)
{
    const char *why;
    if (!s || !*s)
        return;
    if (s[0] == '~' || strpbrk(s, "*?"))
        sl__tc_err(c, key, SL_TC_ROUTE, "target %s \"%s\" must be a plain name: targets do not "
                   "support wildcards", key, s);
    else if (!ident_ok(s, &why))
        sl__tc_err(c, key, SL_TC_NAME, "target %s \"%s\" %s", key, s, why);
}

static void check_rules(tc *c, tk_task *t)
{
    json_t *a = sl__tc_get(c, t->obj, "table_migrate_rule", TC_ARR, 1);
    if (!a)
        return;
    size_t m = sl__tc_push(c, "table_migrate_rule");
    if (json_array_size(a) == 0)
        sl__tc_err(c, NULL, SL_TC_REQUIRED, "at least one table_migrate_rule is needed: tables no "
                   "rule selects are not migrated");
    t->rules = calloc(json_array_size(a) + 1, sizeof *t->rules);
    if (!t->rules) {
        c->oom = 1;
        sl__tc_pop(c, m);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(a, i, r) {
        size_t k = sl__tc_pushi(c, i);
        tk_rule *ru = &t->rules[t->nrules++];
        ru->idx = i;
        if (!json_is_object(r)) {
            sl__tc_err(c, NULL, SL_TC_TYPE, "a table_migrate_rule must be an object, not %s",
                       sl__tc_typename(r));
            sl__tc_pop(c, k);
            continue;
        }
        sl__tc_known(c, r, MRULE_FIELDS);
        int ok = 1;
        json_t *src = sl__tc_get(c, r, "source", TC_OBJ, 1);
        if (src) {
            size_t q = sl__tc_push(c, "source");
            sl__tc_known(c, src, MSRC_FIELDS);
            ru->source = get_str(c, src, "source_name", 1);
            ru->schema = get_str(c, src, "schema", 1);
            ru->table = get_str(c, src, "table", 0);
            if (ru->schema && !*ru->schema) {
                sl__tc_err(c, "schema", SL_TC_PATTERN, "the schema pattern must not be empty (use \"*\" for every schema)");
                ru->schema = NULL;
            }
            if (ru->schema && !(ru->ps = compile_pattern(c, "schema", ru->schema)))
                ok = 0;
            if (ru->table && *ru->table && !(ru->pt = compile_pattern(c, "table", ru->table)))
                ok = 0;
            sl__tc_pop(c, q);
        }
        ru->valid = ok && ru->source && ru->ps;
        json_t *tgt = sl__tc_get(c, r, "target", TC_OBJ, 0);
        if (tgt) {
            size_t q = sl__tc_push(c, "target");
            sl__tc_known(c, tgt, MTGT_FIELDS);
            ru->tschema = get_str(c, tgt, "schema", 0);
            ru->ttable = get_str(c, tgt, "table", 0);
            check_target_name(c, "schema", ru->tschema);
            check_target_name(c, "table", ru->ttable);
            if (ru->ttable && *ru->ttable && !(ru->tschema && *ru->tschema))
                sl__tc_err(c, NULL, SL_TC_ROUTE, "a target table needs a target schema (DM: target "
                           "schema of table route rule should not be empty)");
            sl__tc_pop(c, q);
        }
        json_t *fl = get_str_array(c, r, "binlog_filter_rule", 0);
        if (fl) {
            ru->filters = fl;
            size_t q = sl__tc_push(c, "binlog_filter_rule"), j;
            json_t *x;
            json_array_foreach(fl, j, x) {
                const char *fn = json_string_value(x);
                size_t e = sl__tc_pushi(c, j);
                if (!t->filters || !json_object_get(t->filters, fn))
                    sl__tc_err(c, NULL, SL_TC_FILTER_UNKNOWN, "filter rule name %s not found in "
                               "binlog_filter_rule", fn);
                for (size_t p = 0; p < j; p++)
                    if (strcmp(json_string_value(json_array_get(fl, p)), fn) == 0)
                        sl__tc_warn(c, NULL, SL_TC_DUPLICATE, "filter rule %s is named twice", fn);
                sl__tc_pop(c, e);
            }
            sl__tc_pop(c, q);
        }
        sl__tc_pop(c, k);
    }
    sl__tc_pop(c, m);
}

static const char *const SRCCFG_FIELDS[] = { "full_migrate_conf", "incr_migrate_conf", "source_conf", NULL };
static const char *const FULL_FIELDS[] = {
    "export_threads", "import_threads", "data_dir", "consistency", "import_mode", "sorting_dir",
    "disk_quota", "checksum", "analyze", "range_concurrency", "compress-kv-pairs", "pd_addr",
    "security", "on_duplicate_logical", "on_duplicate_physical", "sql_log_bin", "stream", NULL
};
static const char *const IMPORT_MODES[] = { "logical", "sql", "loader", "physical", "import-into", NULL };
static const char *const CHECKSUM[] = { "required", "optional", "off", NULL };
static const char *const ON_DUP_PHYS[] = { "none", "manual", NULL };
static const char *const INCR_FIELDS[] = { "repl_threads", "repl_batch", "safe_mode", NULL };
static const char *const SCONF_FIELDS[] = { "source_name", "binlog_name", "binlog_pos", "binlog_gtid", NULL };

static void check_full(tc *c, tk_task *t, json_t *sc)
{
    json_t *o = sl__tc_get(c, sc, "full_migrate_conf", TC_OBJ, 0);
    if (!o)
        return;
    size_t m = sl__tc_push(c, "full_migrate_conf");
    sl__tc_known(c, o, FULL_FIELDS);
    get_int(c, o, "export_threads", 1, 1024, NULL, &t->export_threads);
    get_int(c, o, "import_threads", 1, 1024, NULL, &t->import_threads);
    t->sql_log_bin = get_bool(c, o, "sql_log_bin", 1);
    t->stream = get_bool(c, o, "stream", 0);
    const char *dd = get_str(c, o, "data_dir", 0);
    if (dd) {
        if (!*dd)
            sl__tc_err(c, "data_dir", SL_TC_REQUIRED, "\"data_dir\" must not be empty");
        else if (strstr(dd, "://"))
            sl__tc_err(c, "data_dir", SL_TC_UNSUPPORTED, "\"data_dir\" must be a local directory: "
                       "shared storage URIs (%s) are not supported", dd);
        else
            t->data_dir = dd;
    }
    const char *cs = get_enum(c, o, "consistency", CONSISTENCY, 0);
    if (cs)
        t->consistency = cs;
    const char *im = get_enum(c, o, "import_mode", IMPORT_MODES, 0);
    if (im && (strcmp(im, "physical") == 0 || strcmp(im, "import-into") == 0))
        sl__tc_err(c, "import_mode", SL_TC_UNSUPPORTED, "import_mode \"%s\" is TiDB-only; sluice "
                   "imports logically (\"logical\")", im);
    get_str(c, o, "sorting_dir", 0);
    get_str(c, o, "disk_quota", 0);
    get_enum(c, o, "checksum", CHECKSUM, 0);
    get_enum(c, o, "analyze", CHECKSUM, 0);
    long long rc;
    get_int(c, o, "range_concurrency", 0, 1024, NULL, &rc);
    get_str(c, o, "compress-kv-pairs", 0);
    get_str(c, o, "pd_addr", 0);
    check_security(c, o, "security", NULL, NULL, NULL);
    const char *odl = get_enum(c, o, "on_duplicate_logical", ON_DUP_LOGICAL, 0);
    if (odl) {
        t->on_duplicate = odl;
        t->on_duplicate_path_logical = 1;
    }
    get_enum(c, o, "on_duplicate_physical", ON_DUP_PHYS, 0);
    sl__tc_pop(c, m);
}

static void check_incr(tc *c, tk_task *t, json_t *sc)
{
    json_t *o = sl__tc_get(c, sc, "incr_migrate_conf", TC_OBJ, 0);
    if (!o)
        return;
    size_t m = sl__tc_push(c, "incr_migrate_conf");
    sl__tc_known(c, o, INCR_FIELDS);
    get_int(c, o, "repl_threads", 1, 1024, NULL, &t->repl_threads);
    get_int(c, o, "repl_batch", 1, 100000, NULL, &t->repl_batch);
    t->safe_mode = get_bool(c, o, "safe_mode", 0);
    sl__tc_pop(c, m);
}

static int binlog_name_ok(const char *s)
{
    const char *dot = strrchr(s, '.');
    if (!*s || strchr(s, '/') || strchr(s, '\\') || !dot || dot == s || !dot[1])
        return 0;
    for (const char *p = dot + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20)
            return 0;
    return 1;
}

static const sl_source_def *find_def(const sl_compile_opts *o, const char *name)
{
    for (size_t i = 0; o && name && i < o->nsources; i++)
        if (o->sources[i].name && strcmp(o->sources[i].name, name) == 0)
            return &o->sources[i];
    return NULL;
}

static void check_source_conf(tc *c, tk_task *t, json_t *sc, const sl_compile_opts *opts)
{
    json_t *a = sl__tc_get(c, sc, "source_conf", TC_ARR, 1);
    if (!a)
        return;
    size_t m = sl__tc_push(c, "source_conf");
    if (json_array_size(a) == 0)
        sl__tc_err(c, NULL, SL_TC_REQUIRED, "at least one source is needed in source_conf");
    t->srcs = calloc(json_array_size(a) + 1, sizeof *t->srcs);
    if (!t->srcs) {
        c->oom = 1;
        sl__tc_pop(c, m);
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        size_t k = sl__tc_pushi(c, i);
        tk_source *s = &t->srcs[t->nsrcs];
        s->idx = i;
        if (!json_is_object(o)) {
            sl__tc_err(c, NULL, SL_TC_TYPE, "a source_conf entry must be an object, not %s",
                       sl__tc_typename(o));
            sl__tc_pop(c, k);
            continue;
        }
        sl__tc_known(c, o, SCONF_FIELDS);
        s->name = get_str(c, o, "source_name", 1);
        if (s->name && !*s->name) {
            sl__tc_err(c, "source_name", SL_TC_NAME, "\"source_name\" must not be empty");
            s->name = NULL;
        } else if (s->name && !sl_name_check(s->name)) {
            sl__tc_err(c, "source_name", SL_TC_NAME, "source name \"%s\" %s", s->name,
                       sl_name_rule());
            s->name = NULL;
        }
        s->binlog_name = get_str(c, o, "binlog_name", 0);
        if (s->binlog_name && *s->binlog_name && !binlog_name_ok(s->binlog_name))
            sl__tc_err(c, "binlog_name", SL_TC_BINLOG, "binlog_name \"%s\" is not a binlog file name "
                       "(like mysql-bin.000001)", s->binlog_name);
        if (s->binlog_name && !*s->binlog_name)
            s->binlog_name = NULL;
        json_t *pos = sl__tc_get(c, o, "binlog_pos", TC_INT, 0);
        if (pos) {
            long long p;
            if (get_int(c, o, "binlog_pos", 4, LLONG_MAX, " (a binlog starts at position 4)", &p)) {
                s->binlog_pos = p;
                s->has_pos = 1;
            }
            if (!s->binlog_name)
                sl__tc_err(c, "binlog_pos", SL_TC_BINLOG, "binlog_pos needs binlog_name: a position "
                           "is an offset in one binlog file");
        }
        s->binlog_gtid = get_str(c, o, "binlog_gtid", 0);
        if (s->binlog_gtid && !*s->binlog_gtid)
            s->binlog_gtid = NULL;
        if (s->name) {
            for (size_t j = 0; j < t->nsrcs; j++)
                if (t->srcs[j].name && strcmp(t->srcs[j].name, s->name) == 0)
                    sl__tc_err(c, "source_name", SL_TC_DUPLICATE, "source %s is already configured "
                               "at source_conf/%zu", s->name, t->srcs[j].idx);
            s->def = find_def(opts, s->name);
            if (!s->def && opts && opts->check_sources)
                sl__tc_err(c, "source_name", SL_TC_SOURCE_UNKNOWN, "source config with ID %s not "
                           "exists", s->name);
        }
        const char *flavor = s->def ? s->def->flavor : NULL;
        char why[256];
        if (s->binlog_gtid && sl_gtid_set_check(s->binlog_gtid, flavor, why, sizeof why) < 0)
            sl__tc_err(c, "binlog_gtid", SL_TC_GTID, "invalid %s%sGTID set \"%s\": %s",
                       flavor ? flavor : "", flavor ? " " : "", s->binlog_gtid, why);
        /* DM needs a start position ("meta") for an incremental-only task (20022). */
        if (t->mode && strcmp(t->mode, "incremental") == 0) {
            if (!s->binlog_name && !s->binlog_gtid)
                sl__tc_err(c, NULL, SL_TC_NEED_META, "mysql-instance(%s) must set meta for task-mode "
                           "incremental: give binlog_name and binlog_pos, or binlog_gtid",
                           s->name ? s->name : "?");
            else if (!s->binlog_name && s->def && !s->def->enable_gtid)
                sl__tc_err(c, NULL, SL_TC_NEED_META, "source %s does not have enable_gtid, so "
                           "binlog_gtid cannot be its start position: give binlog_name and binlog_pos",
                           s->name);
            /* sluice does not follow MySQL GTID sets yet: starting "at" one would start at the
             * source's current position and skip what happened in between. Refuse, not skip. */
            else if (!s->binlog_name && s->binlog_gtid &&
                     ((flavor && !strcmp(flavor, "mysql")) ||
                      (!flavor && sl_gtid_set_check(s->binlog_gtid, "mariadb", why, sizeof why) < 0)))
                sl__tc_err(c, "binlog_gtid", SL_TC_UNSUPPORTED, "a MySQL GTID set cannot be the "
                           "start position of %s yet (sluice follows MariaDB GTIDs only): give "
                           "binlog_name and binlog_pos", s->name ? s->name : "the source");
        }
        t->nsrcs++;
        sl__tc_pop(c, k);
    }
    sl__tc_pop(c, m);
}

static void check_source_config(tc *c, tk_task *t, const sl_compile_opts *opts)
{
    json_t *sc = sl__tc_get(c, t->obj, "source_config", TC_OBJ, 1);
    if (!sc)
        return;
    size_t m = sl__tc_push(c, "source_config");
    sl__tc_known(c, sc, SRCCFG_FIELDS);
    check_full(c, t, sc);
    check_incr(c, t, sc);
    check_source_conf(c, t, sc, opts);
    sl__tc_pop(c, m);
}

/* ---- Lua scripts (sluice's extension) -------------------------------------------------- */

static const char *const LUA_FIELDS[] = { "tables", "file", "source", "on_row", "on_ddl", NULL };
static const char *const LUA_TABLE_FIELDS[] = { "source_name", "schema", "table", NULL };

static void check_lua_code(tc *c, tk_script *s, const char *src, size_t len, const char *chunk)
{
#ifdef SLUICE_HAVE_LUA
    const char *fns[3] = { s->on_row, s->on_ddl, NULL };
    sl_error err = {0};
    if (sl_lua_check(src, len, chunk, fns, &err) < 0)
        sl__tc_err(c, s->file ? "file" : "source", SL_TC_LUA, "%s", err.msg);
#else
    (void)s; (void)src; (void)len; (void)chunk;
#endif
}

/* A relative path that climbs out of the directory it is relative to ("../x", "a/../../x"),
 * judged on its text alone. */
static int climbs_out(const char *rel)
{
    int depth = 0;
    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 1;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        p += *p == '/';
    }
    return 0;
}

/*
 * The absolute path of a task's script file (caller frees), or NULL with why set. Without a
 * script root (sluice check-task) a relative name resolves against base_dir, and any file the
 * user can read is theirs to name. With one (the server, which compiles tasks sent over the
 * network) the file must be inside it: an absolute path or a name that climbs out is refused on
 * its text, before any file system access; a name that resolves to nothing, or (through a link)
 * to something outside, gets one answer whichever it is, so that a task cannot probe which files
 * exist on the server. Only regular files are read: a FIFO or a device would block the request.
 */
static char *script_path(const char *file, const sl_compile_opts *opts, char *why, size_t n)
{
    const char *root = opts && opts->script_root && *opts->script_root ? opts->script_root : NULL;
    const char *base = root ? root : (opts && opts->base_dir && *opts->base_dir ? opts->base_dir : NULL);
    char path[PATH_MAX];
    if (root && file[0] == '/') {
        snprintf(why, n, "absolute paths are not accepted here; put the script under %s and name it "
                 "relative to that directory, or give it inline as \"source\"", root);
        return NULL;
    }
    if (root && climbs_out(file)) {
        snprintf(why, n, "it is outside the script directory %s", root);
        return NULL;
    }
    int len = file[0] != '/' && base ? snprintf(path, sizeof path, "%s/%s", base, file)
                                     : snprintf(path, sizeof path, "%s", file);
    if (len < 0 || (size_t)len >= sizeof path) {
        snprintf(why, n, "the path is too long");
        return NULL;
    }
    char *abs = realpath(path, NULL);
    if (root) {
        char *rootabs = realpath(root, NULL);
        size_t rl = rootabs ? strlen(rootabs) : 0;
        int inside = abs && rootabs && strncmp(abs, rootabs, rl) == 0 && abs[rl] == '/';
        free(rootabs);
        if (!inside) {
            free(abs);
            snprintf(why, n, "no such file in the script directory %s (links out of it are not "
                     "followed)", root);
            return NULL;
        }
    } else if (!abs) {
        snprintf(why, n, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (stat(abs, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(abs);
        snprintf(why, n, "not a regular file");
        return NULL;
    }
    return abs;
}

static void check_lua(tc *c, tk_task *t, const sl_compile_opts *opts)
{
    json_t *a = sl__tc_get(c, t->obj, "lua_scripts", TC_ARR, 0);
    if (!a)
        return;
    size_t m = sl__tc_push(c, "lua_scripts");
#ifndef SLUICE_HAVE_LUA
    if (json_array_size(a) > 0)
        sl__tc_err(c, NULL, SL_TC_LUA, "Lua support is not built into this sluice");
#endif
    t->scripts = calloc(json_array_size(a) + 1, sizeof *t->scripts);
    if (!t->scripts) {
        c->oom = 1;
        sl__tc_pop(c, m);
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        size_t k = sl__tc_pushi(c, i);
        tk_script *s = &t->scripts[t->nscripts++];
        s->idx = i;
        if (!json_is_object(o)) {
            sl__tc_err(c, NULL, SL_TC_TYPE, "a Lua script entry must be an object, not %s",
                       sl__tc_typename(o));
            sl__tc_pop(c, k);
            continue;
        }
        sl__tc_known(c, o, LUA_FIELDS);
        s->file = get_str(c, o, "file", 0);
        s->source = get_str(c, o, "source", 0);
        if (s->file && !*s->file)
            s->file = NULL;
        if (s->source && !*s->source)
            s->source = NULL;
        json_t *r = sl__tc_get(c, o, "on_row", TC_STR, 0), *d = sl__tc_get(c, o, "on_ddl", TC_STR, 0);
        s->on_row = r ? json_string_value(r) : (json_object_get(o, "on_row") ? "" : "on_row");
        s->on_ddl = d ? json_string_value(d) : "";
        if (!*s->on_row && !*s->on_ddl)
            sl__tc_err(c, NULL, SL_TC_LUA, "a Lua script needs an entry function: on_row or on_ddl");
        if (!s->file == !s->source)
            sl__tc_err(c, NULL, SL_TC_LUA, "give the script either as \"file\" (a path) or as "
                       "\"source\" (its text), not %s", s->file ? "both" : "neither");
        json_t *tabs = sl__tc_get(c, o, "tables", TC_ARR, 1);
        if (tabs) {
            s->tables = tabs;
            size_t q = sl__tc_push(c, "tables"), j;
            json_t *x;
            if (json_array_size(tabs) == 0)
                sl__tc_err(c, NULL, SL_TC_REQUIRED, "a Lua script needs at least one table pattern");
            json_array_foreach(tabs, j, x) {
                size_t e = sl__tc_pushi(c, j);
                if (!json_is_object(x)) {
                    sl__tc_err(c, NULL, SL_TC_TYPE, "a table must be an object, not %s", sl__tc_typename(x));
                } else {
                    sl__tc_known(c, x, LUA_TABLE_FIELDS);
                    const char *sn = get_str(c, x, "source_name", 0);
                    const char *sch = get_str(c, x, "schema", 1), *tb = get_str(c, x, "table", 0);
                    if (sn) {
                        int found = 0;
                        for (size_t z = 0; z < t->nsrcs && !found; z++)
                            found = t->srcs[z].name && strcmp(t->srcs[z].name, sn) == 0;
                        if (!found)
                            sl__tc_err(c, "source_name", SL_TC_SOURCE_REF, "source %s is not in "
                                       "source_config.source_conf", sn);
                    }
                    sl_pattern *p1 = sch ? compile_pattern(c, "schema", sch) : NULL;
                    sl_pattern *p2 = tb && *tb ? compile_pattern(c, "table", tb) : NULL;
                    sl_pattern_free(p1);
                    sl_pattern_free(p2);
                }
                sl__tc_pop(c, e);
            }
            sl__tc_pop(c, q);
        }
        /* Load the script now: a syntax error or a missing entry function fails the task here,
         * never at the first event. */
        if (s->file && !s->source) {
            char why[SL_ERRMSG_MAX] = "";
            char *abs = script_path(s->file, opts, why, sizeof why);
            size_t len = 0;
            char *src = NULL;
            sl_error rerr = {0};
            if (abs && sl_file_read(abs, 16u << 20, &src, &len, &rerr) != 0)
                snprintf(why, sizeof why, "%s", rerr.msg);
            if (!src)
                sl__tc_err(c, "file", SL_TC_LUA, "cannot read Lua script %s: %s", s->file, why);
            else
                check_lua_code(c, s, src, len, s->file);
            free(src);
            s->abs_file = abs;
        } else if (s->source && !s->file) {
            char chunk[64];
            snprintf(chunk, sizeof chunk, "lua_scripts[%zu]", i);
            check_lua_code(c, s, s->source, strlen(s->source), chunk);
        }
        sl__tc_pop(c, k);
    }
    sl__tc_pop(c, m);
}

/* ---- custom stages (sluice extension) ------------------------------------------------------ */

static const char *const PLUGIN_FIELDS[] = { "name", "at", "phase", "rules", "options", NULL };
static const char *const SINK_FIELDS[] = { "name", "options", NULL };
static const char *const PLUGIN_AT[] = { "after-filter", "after-route", "before-sink", NULL };
static const char *const PLUGIN_PHASE[] = { "incremental", "full", "both", NULL };

/* The shape of "plugins" and "sink"; whether each plugin is loaded, of the right kind and takes
 * these options is for plan.c, which has the registry and builds the stages. */
static void check_plugins(tc *c, tk_task *t)
{
    json_t *a = sl__tc_get(c, t->obj, "plugins", TC_ARR, 0);
    if (a) {
        size_t m = sl__tc_push(c, "plugins"), i;
        json_t *o;
        if (json_array_size(a) > SL__TASK_PLUGINS_MAX)
            sl__tc_err(c, NULL, SL_TC_RANGE, "a task names at most %d plugins, not %zu",
                       SL__TASK_PLUGINS_MAX, json_array_size(a));
        json_array_foreach(a, i, o) {
            size_t k = sl__tc_pushi(c, i);
            if (!json_is_object(o)) {
                sl__tc_err(c, NULL, SL_TC_TYPE, "a plugin entry must be an object, not %s",
                           sl__tc_typename(o));
                sl__tc_pop(c, k);
                continue;
            }
            sl__tc_known(c, o, PLUGIN_FIELDS);
            tk_plugin p = { .idx = i };
            p.name = get_str(c, o, "name", 1);
            if (p.name && !*p.name)
                sl__tc_err(c, "name", SL_TC_REQUIRED, "a plugin name must not be empty");
            /* lua-hook would read the "file" of its options unchecked: lua_scripts is the only
             * way to scripts, where a file is held to the server's script directory */
            int lua = p.name && strcmp(p.name, "lua-hook") == 0;
            if (lua)
                sl__tc_err(c, "name", SL_TC_PLUGIN, "lua-hook is the stage of the task's "
                           "lua_scripts: give the scripts there, not as a stage in \"plugins\"");
            p.at = get_enum(c, o, "at", PLUGIN_AT, 1);
            const char *ph = get_enum(c, o, "phase", PLUGIN_PHASE, 0);
            ph = ph ? ph : "both";
            p.full = strcmp(ph, "incremental") != 0;
            p.incr = strcmp(ph, "full") != 0;
            p.options = sl__tc_get(c, o, "options", TC_OBJ, 0);
            json_t *r = sl__tc_get(c, o, "rules", TC_ARR, 0);
            int ok = p.name && *p.name && !lua && p.at && (json_object_get(o, "options") == NULL || p.options);
            if (r) {
                size_t q = sl__tc_push(c, "rules"), j;
                json_t *x;
                if (json_array_size(r) == 0) {
                    sl__tc_err(c, NULL, SL_TC_REQUIRED, "list at least one table_migrate_rule "
                               "index, or leave \"rules\" out to run on the whole task");
                    ok = 0;
                }
                json_array_foreach(r, j, x) {
                    size_t e = sl__tc_pushi(c, j);
                    if (!json_is_integer(x)) {
                        sl__tc_err(c, NULL, SL_TC_TYPE, "a rule index must be an integer, not %s",
                                   sl__tc_typename(x));
                        ok = 0;
                    } else if (json_integer_value(x) < 0 ||
                               (size_t)json_integer_value(x) >= json_array_size(
                                   json_object_get(t->obj, "table_migrate_rule"))) {
                        sl__tc_err(c, NULL, SL_TC_RANGE, "table_migrate_rule has no entry %lld",
                                   (long long)json_integer_value(x));
                        ok = 0;
                    }
                    sl__tc_pop(c, e);
                }
                sl__tc_pop(c, q);
                p.rules = r;
            }
            if (ok && t->nplugins < SL__TASK_PLUGINS_MAX)
                t->plugins[t->nplugins++] = p;
            sl__tc_pop(c, k);
        }
        sl__tc_pop(c, m);
    }
    json_t *s = sl__tc_get(c, t->obj, "sink", TC_OBJ, 0);
    if (s) {
        size_t m = sl__tc_push(c, "sink");
        sl__tc_known(c, s, SINK_FIELDS);
        const char *n = get_str(c, s, "name", 1);
        json_t *op = sl__tc_get(c, s, "options", TC_OBJ, 0);
        if (n && !*n)
            sl__tc_err(c, "name", SL_TC_REQUIRED, "a sink name must not be empty");
        sl__tc_pop(c, m);
        /* task_mode dump stops at the files: nothing is sunk. In full, all and load the sink
         * replaces the loader too, which only a sink that takes dump chunks can do; the plan
         * checks that against the plugin's caps (plan.c, full_sink_takes_chunks). */
        if (t->mode && strcmp(t->mode, "dump") == 0)
            sl__tc_err(c, "sink", SL_TC_UNSUPPORTED, "task_mode \"dump\" only writes the dump "
                       "files: it has no sink");
        else if (n && *n && (op || !json_object_get(s, "options"))) {
            t->sink = n;
            t->sink_options = op;
        }
    }
}

/* ---- verification (sluice extension) ------------------------------------------------------ */

static const char *const VERIFY_FIELDS[] = {
    "threads", "chunk_rows", "chunks_per_second", "retries", "retry_delay_ms", "max_rows", NULL
};

/* "verify": how POST /api/v1/tasks/{name}/verify compares this task's tables (runtime/
 * tverify.c reads it, with its defaults, when a run starts). Ranges keep one run's memory and
 * load bounded: threads x chunk_rows rows per side at most, max_rows differing rows listed. */
static void check_verify(tc *c, tk_task *t)
{
    json_t *o = sl__tc_get(c, t->obj, "verify", TC_OBJ, 0);
    if (!o)
        return;
    size_t m = sl__tc_push(c, "verify");
    long long x;
    sl__tc_known(c, o, VERIFY_FIELDS);
    get_int(c, o, "threads", 1, 16, NULL, &x);
    get_int(c, o, "chunk_rows", 1, 100000, NULL, &x);
    get_int(c, o, "retries", 0, 20, NULL, &x);
    get_int(c, o, "retry_delay_ms", 0, 600000, NULL, &x);
    get_int(c, o, "max_rows", 0, 100000, " (rows listed by the status; the repair SQL has all)", &x);
    json_t *cps = json_object_get(o, "chunks_per_second");
    if (cps && !json_is_null(cps)) {
        if (!json_is_number(cps))
            sl__tc_err(c, "chunks_per_second", SL_TC_TYPE, "\"chunks_per_second\" must be a "
                       "number, not %s", sl__tc_typename(cps));
        else if (json_number_value(cps) < 0 || json_number_value(cps) > 1e6)
            sl__tc_err(c, "chunks_per_second", SL_TC_RANGE, "\"chunks_per_second\" must be "
                       "between 0 (no limit) and 1000000, not %g", json_number_value(cps));
    }
    sl__tc_pop(c, m);
}

/* ---- cross checks --------------------------------------------------------------------- */

/* Could two patterns select the same name? 1 = certainly, 0 = not seen statically. */
static int overlap(const sl_pattern *a, const sl_pattern *b)
{
    const char *ta = sl_pattern_text(a), *tb = sl_pattern_text(b);
    if (strcasecmp(ta, tb) == 0)
        return 1;
    if (sl_pattern_is_exact(a))
        return sl_pattern_match(b, ta);
    if (sl_pattern_is_exact(b))
        return sl_pattern_match(a, tb);
    /* Two prefix wildcards ("db_*", "db_1*"): overlap when one prefix extends the other. */
    size_t la = strlen(ta), lb = strlen(tb);
    if (ta[0] != '~' && tb[0] != '~' && la && lb && ta[la - 1] == '*' && tb[lb - 1] == '*' &&
        !strpbrk(ta, "?[") && !strpbrk(tb, "?[")) {
        size_t n = (la < lb ? la : lb) - 1;
        return strncasecmp(ta, tb, n) == 0;
    }
    return 0;
}

static void check_cross(tc *c, tk_task *t)
{
    /* rules -> sources */
    for (size_t i = 0; i < t->nrules; i++) {
        tk_rule *r = &t->rules[i];
        r->src = -1;
        if (!r->source)
            continue;
        for (size_t j = 0; j < t->nsrcs; j++)
            if (t->srcs[j].name && strcmp(t->srcs[j].name, r->source) == 0) {
                r->src = (int)j;
                t->srcs[j].nrules++;
                break;
            }
        if (r->src < 0 && t->srcs) {
            size_t m = sl__tc_push(c, "table_migrate_rule");
            size_t k = sl__tc_pushi(c, r->idx);
            sl__tc_push(c, "source");
            sl__tc_warn(c, "source_name", SL_TC_SOURCE_REF, "source %s is not in "
                        "source_config.source_conf: this rule selects nothing", r->source);
            sl__tc_pop(c, k);
            sl__tc_pop(c, m);
        }
    }
    /* two rules at the same level selecting the same tables */
    for (size_t j = 0; j < t->nrules; j++) {
        tk_rule *b = &t->rules[j];
        if (!b->valid || b->src < 0)
            continue;
        for (size_t i = 0; i < j; i++) {
            tk_rule *a = &t->rules[i];
            if (!a->valid || a->src != b->src || !a->pt != !b->pt)
                continue;
            if (!overlap(a->ps, b->ps) || (a->pt && !overlap(a->pt, b->pt)))
                continue;
            size_t m = sl__tc_push(c, "table_migrate_rule");
            size_t k = sl__tc_pushi(c, b->idx);
            sl__tc_err(c, "source", SL_TC_OVERLAP, "selects the same %s as table_migrate_rule/%zu "
                       "(%s%s%s): a table may be selected by one %s-level rule only", b->pt ? "tables"
                       : "schemas", a->idx, a->schema, a->pt ? "." : "", a->pt ? a->table : "",
                       b->pt ? "table" : "schema");
            sl__tc_pop(c, k);
            sl__tc_pop(c, m);
            break;
        }
    }
    /* sources with no rule */
    for (size_t j = 0; j < t->nsrcs; j++) {
        if (t->srcs[j].name && t->srcs[j].nrules == 0 && t->nrules > 0) {
            size_t m = sl__tc_push(c, "source_config");
            size_t k = sl__tc_push(c, "source_conf");
            size_t q = sl__tc_pushi(c, t->srcs[j].idx);
            sl__tc_warn(c, "source_name", SL_TC_NO_RULES, "no table_migrate_rule names source %s: "
                        "nothing will be migrated from it", t->srcs[j].name);
            sl__tc_pop(c, q);
            sl__tc_pop(c, k);
            sl__tc_pop(c, m);
        }
    }
}

/* full_migrate_conf.stream: only where the loader itself takes the chunks of a dump it runs. */
static void check_stream(tc *c, tk_task *t)
{
    if (!t->stream)
        return;
    const char *why = NULL;
    int full_plugin = 0;
    for (size_t i = 0; i < t->nplugins; i++)
        full_plugin |= t->plugins[i].full;
    if (t->mode && (!strcmp(t->mode, "dump") || !strcmp(t->mode, "load") ||
                    !strcmp(t->mode, "incremental")))
        why = "task_mode \"dump\" keeps the dump files, \"load\" reads them and \"incremental\" "
              "has no dump: only \"full\" and \"all\" stream";
    else if (t->sink)
        why = "a custom sink reads chunk files";
    else if (t->nscripts)
        why = "lua_scripts rewrite the chunk files of the full phase";
    else if (full_plugin)
        why = "a custom plugin of the full phase may read chunk files";
    if (!why)
        return;
    size_t m = sl__tc_push(c, "source_config");
    size_t k = sl__tc_push(c, "full_migrate_conf");
    sl__tc_err(c, "stream", SL_TC_UNSUPPORTED, "\"stream\": true cannot be used here: %s", why);
    sl__tc_pop(c, k);
    sl__tc_pop(c, m);
}

/* ---- entry -------------------------------------------------------------------------------- */

void sl_task_threads(unsigned ncpu, long long *export_threads, long long *import_threads)
{
    if (!ncpu) {
        *export_threads = 4;
        *import_threads = 16;
        return;
    }
    long long e = ncpu > 2 ? (long long)ncpu : 2, i = ncpu > 2 ? 2 * (long long)ncpu : 4;
    *export_threads = e < 16 ? e : 16;
    *import_threads = i < 64 ? i : 64;
}

void sl__tk_check(tc *c, tk_task *t, const sl_compile_opts *opts)
{
    json_t *o = t->obj;
    sl__tc_known(c, o, TASK_FIELDS);
    check_name(c, t);
    t->mode = get_enum(c, o, "task_mode", TASK_MODES, 1);
    t->shard_mode = get_enum(c, o, "shard_mode", SHARD_MODES, 0);
    t->strict_optimistic = get_bool(c, o, "strict_optimistic_shard_mode", 0);
    t->meta_schema = "dm_meta";
    const char *ms = get_str(c, o, "meta_schema", 0), *why;
    if (ms) {
        if (!ident_ok(ms, &why))
            sl__tc_err(c, "meta_schema", SL_TC_NAME, "meta_schema \"%s\" %s", ms, why);
        else
            t->meta_schema = ms;
    }
    const char *tz = get_str(c, o, "timezone", 0);
    if (tz) {
        int ok = 1;
        for (const char *p = tz; *p && ok; p++)
            ok = isalnum((unsigned char)*p) || strchr("_+-/:", *p);
        if (!ok)
            sl__tc_err(c, "timezone", SL_TC_NAME, "timezone \"%s\" is neither a zone name "
                       "(Asia/Shanghai) nor an offset (+08:00)", tz);
        else
            sl__tc_warn(c, "timezone", SL_TC_IGNORED, "timezone is not used: sluice reads and "
                        "writes TIMESTAMP values in UTC on both sides (session time_zone "
                        "'+00:00'), so they arrive exactly whatever the servers' zones are");
    }
    t->eosc = get_bool(c, o, "enhance_online_schema_change", 1);
    const char *od = get_enum(c, o, "on_duplicate", ON_DUP, 0);
    t->on_duplicate = od ? od : "overwrite";
    sl_task_threads(opts ? opts->ncpu : 0, &t->export_threads, &t->import_threads);
    t->sql_log_bin = 1;
    t->repl_threads = 16;
    t->repl_batch = 100;
    t->data_dir = "./dumped_data";
    t->consistency = "auto";
    check_target(c, t);
    check_filters(c, t);
    check_source_config(c, t, opts);
    check_rules(c, t);
    sl__tc_get(c, o, "status_list", TC_ARR, 0);   /* output of GET; accepted and ignored */
    json_t *ic = get_str_array(c, o, "ignore_checking_items", 0);
    warn_unchecked_items(c, ic);
    if (ic) {
        size_t m = sl__tc_push(c, "ignore_checking_items"), i;
        json_t *x;
        json_array_foreach(ic, i, x) {
            int ok = 0;
            for (const char *const *p = CHECKING_ITEMS; *p && !ok; p++)
                ok = strcmp(*p, json_string_value(x)) == 0;
            if (!ok) {
                size_t k = sl__tc_pushi(c, i);
                sl__tc_err(c, NULL, SL_TC_ENUM, "unknown precheck item \"%s\"", json_string_value(x));
                sl__tc_pop(c, k);
            }
        }
        sl__tc_pop(c, m);
    }
    check_lua(c, t, opts);
    check_plugins(c, t);
    check_verify(c, t);
    check_stream(c, t);
    check_cross(c, t);
}

void sl__tk_free(tk_task *t)
{
    for (size_t i = 0; i < t->nrules; i++) {
        sl_pattern_free(t->rules[i].ps);
        sl_pattern_free(t->rules[i].pt);
    }
    free(t->rules);
    free(t->srcs);
    for (size_t i = 0; i < t->nscripts; i++)
        free(t->scripts[i].abs_file);
    free(t->scripts);
}
