/*
 * task.h - the checked task model shared by task.c (checks) and plan.c (pipelines). Strings
 * point into the jansson document, which outlives the model.
 */
#ifndef SLUICE_TASK_H
#define SLUICE_TASK_H

#include "tc.h"
#include "sluice/match.h"

/* <name>_syncer_sharding_meta (21 more characters) must fit MySQL's 64-character names. */
#define SL__TASK_NAME_MAX 43

typedef struct tk_rule {
    size_t      idx;          /* in table_migrate_rule */
    int         src;          /* index in srcs, -1 if the source is not configured */
    int         valid;        /* patterns compiled and source given */
    const char *source, *schema, *table, *tschema, *ttable;
    sl_pattern *ps, *pt;      /* pt NULL: schema-level rule */
    json_t     *filters;      /* names (validated strings) or NULL */
} tk_rule;

typedef struct tk_source {
    size_t               idx;     /* in source_conf */
    const char          *name, *binlog_name, *binlog_gtid;
    long long            binlog_pos;
    int                  has_pos;
    const sl_source_def *def;     /* known source, or NULL */
    size_t               nrules;
} tk_source;

typedef struct tk_script {
    size_t      idx;
    json_t     *tables;
    const char *file, *source, *on_row, *on_ddl;
    char       *abs_file;        /* resolved path of file (owned) */
} tk_script;

/* A custom stage the task names (sluice extension "plugins"): the plugin, where it goes, in
 * which phases, for which rules (NULL: all), and its options as the user wrote them. */
#define SL__TASK_PLUGINS_MAX 8
typedef struct tk_plugin {
    size_t      idx;          /* in plugins */
    const char *name, *at;    /* at: "after-filter", "after-route", "before-sink" */
    int         full, incr;   /* phases it runs in */
    json_t     *rules;        /* array of table_migrate_rule indexes, or NULL */
    json_t     *options;      /* object (possibly empty) */
} tk_plugin;

typedef struct tk_task {
    json_t     *obj;              /* the task object */
    const char *name, *mode, *shard_mode, *meta_schema, *on_duplicate;
    int         on_duplicate_path_logical;   /* on_duplicate came from full_migrate_conf */
    int         eosc, safe_mode;
    int         strict_optimistic;   /* strict_optimistic_shard_mode */
    struct {
        const char *host, *user, *password, *ssl_ca, *ssl_cert, *ssl_key;
        int port;
    } tgt;
    long long   export_threads, import_threads, repl_threads, repl_batch;
    int         sql_log_bin;      /* full_migrate_conf.sql_log_bin (sluice's extension): 0 = the
                                     user lets the load skip the target's binlog */
    int         stream;           /* full_migrate_conf.stream (sluice's extension): chunks go
                                     from the dump to the loader through pipes, no files */
    const char *data_dir, *consistency;
    json_t     *filters;          /* binlog_filter_rule object or NULL */
    tk_rule    *rules;
    size_t      nrules;
    tk_source  *srcs;
    size_t      nsrcs;
    tk_script  *scripts;
    size_t      nscripts;
    tk_plugin   plugins[SL__TASK_PLUGINS_MAX];
    size_t      nplugins;
    const char *sink;             /* "sink": a plugin replacing mysql-sink, or NULL */
    json_t     *sink_options;
} tk_task;

/* Check everything; problems go to c. Fills t (free with sl__tk_free). */
void sl__tk_check(tc *c, tk_task *t, const sl_compile_opts *opts);
void sl__tk_free(tk_task *t);

#endif
