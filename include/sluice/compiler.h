/*
 * compiler.h - the task compiler: a DM OpenAPI `Task` (JSON) is checked in one pass (every
 * problem reported with its JSON path and an error code) and compiled into one subtask per
 * source, each a sequence of pipeline phases (pipeline.h) whose stage options are validated
 * against the plugins' own option tables. Serves both `POST /api/v1/tasks` and `sluice check-task`.
 *
 * Error codes (sl_diag.code) are listed in docs/errors.md: DM's codes where DM has one (20005,
 * 20022, 46008, 49001), otherwise sluice's 491xx.
 */
#ifndef SLUICE_COMPILER_H
#define SLUICE_COMPILER_H

#include <stddef.h>
#include <jansson.h>
#include "err.h"
#include "pipeline.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- diagnostics ---------------------------------------------------------------------------- */

#define SL_DIAG_ERROR   0
#define SL_DIAG_WARNING 1

/* One problem. path is a JSON pointer into the document as given ("/task/binlog_filter_rule/
 * rule-1/ignore_sql/0"; "" = the whole document). */
typedef struct sl_diag {
    char *path;
    char *msg;
    int   code;        /* see docs/errors.md */
    int   severity;    /* SL_DIAG_ERROR or SL_DIAG_WARNING (a warning does not fail the task) */
} sl_diag;

/* A growing list of diagnostics. Zero-initialize; free with sl_diags_free. */
typedef struct sl_diags { size_t n, cap; sl_diag *v; } sl_diags;

void   sl_diags_free(sl_diags *d);
/* Append one (path may be NULL = ""). Returns 0 or SL_ENOMEM. */
int    sl_diags_add(sl_diags *d, int severity, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Number of entries with severity SL_DIAG_ERROR. */
size_t sl_diags_errors(const sl_diags *d);
/* Every entry, one line each: "PATH: message (code N)" ("warning: " before warnings; "/" for an
 * empty path). Caller frees with free(). */
char  *sl_diags_format(const sl_diags *d);

/* Error codes of the compiler (docs/errors.md). */
#define SL_TC_JSON            20005  /* malformed JSON */
#define SL_TC_NEED_META       20022  /* incremental task without a start position for a source */
#define SL_TC_SOURCE_UNKNOWN  46008  /* source config with ID X not exists */
#define SL_TC_FILTER_UNKNOWN  49001  /* filter rule name X not found */
#define SL_TC_UNKNOWN_FIELD   49100
#define SL_TC_TYPE            49101
#define SL_TC_REQUIRED        49102
#define SL_TC_ENUM            49103
#define SL_TC_RANGE           49104
#define SL_TC_NAME            49105  /* invalid task / schema / rule name */
#define SL_TC_DUPLICATE       49106
#define SL_TC_SOURCE_REF      49107  /* a rule or script names a source not in source_conf */
#define SL_TC_PATTERN         49108  /* invalid table pattern */
#define SL_TC_OVERLAP         49109  /* two rules at the same level select the same tables */
#define SL_TC_EVENT           49110  /* unknown ignore_event value */
#define SL_TC_REGEX           49111  /* invalid ignore_sql regular expression */
#define SL_TC_GTID            49112  /* invalid GTID set */
#define SL_TC_BINLOG          49113  /* invalid binlog file name or position */
#define SL_TC_PLUGIN          49114  /* plugin missing or plugin option rejected */
#define SL_TC_LUA             49115  /* Lua script unreadable, invalid, or Lua not built */
#define SL_TC_UNSUPPORTED     49116  /* a DM feature sluice does not implement */
#define SL_TC_ROUTE           49117  /* invalid route target */
#define SL_TC_NO_RULES        49118  /* a source with no table_migrate_rule (warning) */
#define SL_TC_TLS             49119  /* security contents that are not PEM */
#define SL_TC_IGNORED         49120  /* accepted DM field that sluice does not act on (warning) */
#define SL_TC_NOT_COPIED      49121  /* selected source objects the task does not copy (warning,
                                        from the server's look at the source) */

/* ---- names ---------------------------------------------------------------------------------- */

/* Source and worker names: 1 if s is 1..SL_NAME_MAX characters of ASCII letters, digits, '-',
 * '_' and '.', starting with a letter or digit (they become directory names, etcd keys, SQL
 * values and URL segments); 0 otherwise. sl_name_rule() says so in words (static text). Task
 * names are stricter (letters, digits, '-', '_'; see docs/tasks.md). */
#define SL_NAME_MAX 64
int         sl_name_check(const char *s);
const char *sl_name_rule(void);

/* ---- known sources -------------------------------------------------------------------------- */

/* A source as registered with the server (DM `Source`). Strings may be NULL (= ""). */
typedef struct sl_source_def {
    const char *name, *host;
    int         port;
    const char *user, *password, *flavor;   /* flavor: "mysql", "mariadb" or NULL (unknown) */
    int         enable_gtid;
    const char *ssl_ca, *ssl_cert, *ssl_key; /* PEM contents */
    const char *cert_allowed_cn;             /* comma-separated common names, or NULL */
    const char *relay_dir;                   /* the source's relay log directory when its relay
                                                is enabled (binlog-reader reads it), or NULL */
} sl_source_def;

/* security.cert_allowed_cn (an array of strings) as the comma-separated list the connection
 * options take; NULL when absent or empty. Caller frees with free(). */
char *sl_cert_allowed_cn_join(const json_t *security);

/*
 * Parse sources from JSON: one DM Source object, {"source": {...}}, an array of them, or a
 * GET /api/v1/sources answer ({"data": [...]}). Problems go to diags (paths in that document).
 * Returns 0 with *out (caller frees with sl_source_defs_free(*out, *n)), or SL_EINVAL/SL_ENOMEM.
 */
int  sl_source_defs_parse(const char *json, size_t len, sl_source_def **out, size_t *n,
                          sl_diags *diags);
void sl_source_defs_free(sl_source_def *v, size_t n);

/* ---- compiling ------------------------------------------------------------------------------ */

typedef struct sl_compile_opts {
    const sl_registry   *registry;      /* plugins whose option tables validate the stages; NULL
                                           = none loaded (each plugin is reported missing) */
    const char          *plugin_dir;    /* only for messages ("plugin X not found in DIR") */
    const sl_source_def *sources;       /* known sources (connection details), may be NULL */
    size_t               nsources;
    int                  check_sources; /* 1: every source_conf name must be in sources */
    const char          *base_dir;      /* relative Lua script files are read from here (NULL = cwd) */
    const char          *script_root;   /* if set (the server): Lua script files must be regular
                                           files inside this directory; relative names resolve
                                           here, absolute paths and escapes are refused, and a
                                           path outside gets the same answer whether or not a
                                           file is there */
    unsigned             ncpu;          /* CPUs of the machine that runs the task (the server's,
                                           sysconf): export_threads and import_threads a task does
                                           not set are sized to it (sl_task_threads); 0 = unknown:
                                           DM's defaults, 4 and 16 */
} sl_compile_opts;

typedef struct sl_subtask_plan {
    char              *source_name;
    size_t             nphases;
    sl_pipeline_spec **phases;        /* each freed by sl_pipeline_spec_free (by sl_task_plan_free) */
    char             **phase_names;   /* "full" | "incremental" */
    size_t             nrules;        /* table_migrate_rules of this source */
    int                shard_merge;   /* its DDL is shard DDL: the rules merge, or shard_mode is set */
    int                merges;        /* several source tables route into one target table */
    int                source_known;  /* connection details came from a known source */
} sl_subtask_plan;

typedef struct sl_task_plan {
    char            *name;
    char            *task_mode;       /* all | full | incremental | dump | load */
    json_t          *task;            /* the task object (unwrapped), defaults filled in: what the
                                         server stores and shows (owned by the plan) */
    size_t           nsubtasks;
    sl_subtask_plan *subtasks;        /* in source_conf order */
} sl_task_plan;

/*
 * Check and compile a task given as JSON text (bare `{"name": ...}` or wrapped `{"task": {...}}`;
 * diagnostic paths follow the document as given: "/name" or "/task/name"). Every problem found
 * is appended to diags (errors and warnings). Returns 0 and *out (caller frees with
 * sl_task_plan_free) when there is no error; SL_EINVAL (or SL_EPARSE for malformed JSON) with
 * *out = NULL otherwise; SL_ENOMEM. Thread-safe (opts and the registry are only read).
 */
/* The dump and load threads of a task that does not set them, on a machine of ncpu CPUs (issue
 * 12): export = max(2, ncpu), import = max(4, 2 * ncpu), each at most DM's default (4 and 16) times
 * four; ncpu 0: DM's defaults. A dump connection keeps a source core busy formatting rows, and a
 * load connection waits on the target's I/O half its time, hence twice as many. */
void sl_task_threads(unsigned ncpu, long long *export_threads, long long *import_threads);

int  sl_task_compile(const char *json, size_t len, const sl_compile_opts *opts,
                     sl_task_plan **out, sl_diags *diags);
/* The same for a document already parsed (the server parses a request body once): root is only
 * read, never changed; the plan's task is a new object. */
int  sl_task_compile_json(json_t *root, const sl_compile_opts *opts, sl_task_plan **out,
                          sl_diags *diags);
void sl_task_plan_free(sl_task_plan *p);
/* A plan with the task's name and sources (its source_conf, in order) and no phases, for a
 * stored task that no longer compiles: it stays visible and can be fixed or deleted, but its
 * subtasks cannot start. task is referenced, not copied. NULL when out of memory. */
sl_task_plan *sl_task_plan_bare(json_t *task);

/*
 * GTID set syntax: flavor "mysql" (uuid:1-5:7,uuid2:1-3; tags of MySQL 8.3 allowed), "mariadb"
 * (domain-server-seq,... one per domain), or NULL (either). "" is valid (no GTID). Returns 0, or
 * SL_EINVAL with a reason in msg.
 */
int  sl_gtid_set_check(const char *gtid, const char *flavor, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif
